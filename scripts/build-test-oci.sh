#!/usr/bin/env bash
# Builds the containers' test image — an OCI image layout (as a tar archive) holding
# Debian's static busybox — with umoci, from the machine's own packages (no registry is
# reached). Its default command serves HTTP on port 8080 (busybox httpd) and prints a
# line a second. Usage: build-test-oci.sh OUT_DIR; cached by the inputs' checksum.
set -euo pipefail
out=${1:?usage: build-test-oci.sh OUT_DIR}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-static is needed ($busybox)" >&2; exit 1; }
stamp=$( (sha256sum "$busybox"; sha256sum "$0") | sha256sum | cut -c1-16)
if [ -f "$out/testoci.tar" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"
mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
cp "$busybox" "$root/bin/busybox"
for cmd in sh echo cat ls sleep httpd hostname date head tr dd env wget true seq; do
  ln -sf busybox "$root/bin/$cmd"
done
echo 'hello from the test container' > "$root/www/index.html"
umoci repack --image "$layout:latest" "$work/bundle"
umoci config --image "$layout:latest" \
  --config.env PATH=/bin \
  --config.cmd /bin/sh --config.cmd -c \
  --config.cmd 'httpd -p 8080 -h /www; i=0; while true; do i=$((i+1)); echo "tick $i on $(hostname)"; sleep 1; done'
umoci gc --layout "$layout"
tar -C "$layout" -cf "$out/testoci.tar.tmp" .
mv "$out/testoci.tar.tmp" "$out/testoci.tar"
echo "$stamp" > "$out/stamp"
echo "test container image built in $out/testoci.tar"
