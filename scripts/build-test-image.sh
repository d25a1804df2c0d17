#!/usr/bin/env bash
# Builds the Continuum test image from Debian packages: the cloud kernel and a busybox
# initramfs (images/testvm/init) that serves HTTP on port 80 and writes a counter to its
# console. It boots in seconds under TCG. Output: OUTDIR/vmlinuz, OUTDIR/initrd.img,
# OUTDIR/cmdline. Rebuilt only when the init script or the kernel package changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-.cache/testvm}
mkdir -p "$out"

resolve_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1
}
kernel_pkg=$(resolve_kernel)
if [ -z "$kernel_pkg" ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  kernel_pkg=$(resolve_kernel)
fi
if [ -z "$kernel_pkg" ]; then
  echo "cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi
stamp="$kernel_pkg $(sha256sum images/testvm/init | cut -d' ' -f1) $(sha256sum "$0" | cut -d' ' -f1)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$kernel_pkg" >/dev/null 2>&1) || { echo "apt-get download $kernel_pkg failed" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")

root="$work/root"
mkdir -p "$root"/{bin,lib/modules,proc,sys,dev,tmp,seed,www,run}
cp /bin/busybox "$root/bin/busybox"
for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk cdrom isofs; do
  f=$(find "$work/k/lib/modules/$kver" -name "$m.ko" | head -1)
  [ -n "$f" ] || { echo "module $m not found in $kernel_pkg" >&2; exit 1; }
  cp "$f" "$root/lib/modules/"
done
install -m 0755 images/testvm/init "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$out/initrd.img.tmp"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "console=ttyS0 panic=-1" >"$out/cmdline"
echo "$stamp" >"$out/stamp"
echo "test image built in $out ($kernel_pkg)" >&2
