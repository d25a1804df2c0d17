#!/usr/bin/env bash
# Installs everything Continuum needs on a Debian machine, idempotently: system
# packages (as root), npm packages (when package-lock.json changed) and the build.
# Sourced or run by scripts/run.sh and scripts/test.sh; safe to run any number of times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  log "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# --- system packages ---------------------------------------------------------
# PostgreSQL server binaries: the test suite starts a throwaway server with them when
# CONTINUUM_TEST_DATABASE_URL names none.
apt_packages=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_packages+=(postgresql); fi
# Real VMs: QEMU and qemu-img; genisoimage writes cloud-init seeds; busybox, cpio and
# the kernel package (downloaded, not installed) make the test image; iproute2 makes
# the network namespaces of `continuum dev`.
need() { command -v "$1" >/dev/null 2>&1 || apt_packages+=("$2"); }
need qemu-system-x86_64 qemu-system-x86
need qemu-img qemu-utils
need genisoimage genisoimage
need cpio cpio
need ip iproute2
# The initramfs needs the static busybox.
dpkg -s busybox-static >/dev/null 2>&1 || apt_packages+=(busybox-static)
# The web console's browser tests drive Debian's Chromium (with playwright-core).
need chromium chromium
# OCI containers: runc runs them, umoci unpacks their images (and builds the test image),
# socat forwards their ports.
need runc runc
need umoci umoci
need socat socat
# The Kubernetes API facade's tests drive the real kubectl: the one on the machine, or
# Debian's kubernetes-client.
need kubectl kubernetes-client
# High availability: the PostgreSQL failover test runs a real Patroni cluster (etcd, two
# PostgreSQL nodes) behind HAProxy, all on loopback.
need patroni patroni
need etcd etcd-server
need haproxy haproxy

if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "missing system packages: ${apt_packages[*]} (install them, or run this as root on Debian)"
    exit 1
  fi
  log "installing ${apt_packages[*]}"
  # Installing the server must not create and start a cluster of its own.
  mkdir -p /etc/postgresql-common
  if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# --- npm packages ------------------------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.continuum-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "installing npm packages"
  # `npm install` rather than `npm ci`: npm 11 leaves foreign-platform optional packages
  # out of the lock file and `npm ci` then refuses it. The lock file is still honoured.
  npm install --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >"$stamp"
fi

# --- build -------------------------------------------------------------------
npm run --silent build
# The bootable test image used by the tests and `continuum dev` (cached; rebuilt on change).
bash scripts/build-test-image.sh .cache/testvm
# The containers' test image: busybox in an OCI layout (cached; rebuilt on change).
bash scripts/build-test-oci.sh .cache/testoci
