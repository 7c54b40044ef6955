#!/usr/bin/env bash
# build-initrd.sh KERNELDIR AGENT_BINARY OUT
#
# Builds the base initramfs (newc cpio) holding:
#   /init                 guest/init (busybox sh)
#   /bin/busybox + applet symlinks used by /init
#   /lib/modules/*.ko     KERNELDIR/modules (from build-kernel.sh) + load-order
#   /vmsan-agent          AGENT_BINARY
#   /dev/console, /proc, /sys, /newroot, /vmsan (the per-VM archive adds /vmsan/config)
# The archive is left UNCOMPRESSED by default: under TCG it boots faster than lz4 or gzip
# (the guest kernel decompressing ~15 MB costs more than QEMU copying it; see docs/internals.md).
# Override with VMSAN_INITRD_COMPRESSION=none|lz4|gzip|zstd.
# Idempotent: rebuilds only when an input changed (OUT.stamp holds the inputs' hash).
set -euo pipefail

log() { echo "build-initrd: $*" >&2; }
die() { echo "build-initrd: ERROR: $*" >&2; exit 1; }

[[ $# -eq 3 ]] || die "usage: $0 KERNELDIR AGENT_BINARY OUT"
KERNELDIR=$1
AGENT=$2
OUT=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INIT=${VMSAN_INIT:-$HERE/init}
BUSYBOX=${VMSAN_BUSYBOX:-}
COMPRESSION=${VMSAN_INITRD_COMPRESSION:-none}
# Applets /init uses (plus a few handy for debugging with rdinit=/bin/sh).
APPLETS=(sh ash mount umount insmod ip mkdir cp chmod cat rm sync usleep sleep
         switch_root poweroff reboot ls echo dmesg)

for tool in cpio sha256sum find sort; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ -f $INIT ]] || die "no init script at $INIT"
[[ -f $AGENT ]] || die "no agent binary at $AGENT"
[[ -f $KERNELDIR/modules/load-order ]] || die "no $KERNELDIR/modules/load-order (run build-kernel.sh)"

# A static busybox is required: the initramfs has no libc.
if [[ -z $BUSYBOX ]]; then
    for c in /bin/busybox /usr/bin/busybox /usr/lib/busybox-static/busybox; do
        if [[ -x $c ]] && ! grep -q 'interpreter' <<<"$(readelf -l "$c" 2>/dev/null)"; then BUSYBOX=$c; break; fi
    done
fi
[[ -n $BUSYBOX && -x $BUSYBOX ]] || die "no static busybox found (apt-get install busybox-static)"
if grep -q 'interpreter' <<<"$(readelf -l "$BUSYBOX" 2>/dev/null)"; then
    die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi
# List once: `busybox --list | grep -q` under pipefail fails at random when grep exits early
# and busybox dies of SIGPIPE.
APPLET_LIST=$("$BUSYBOX" --list)
for a in "${APPLETS[@]}"; do
    grep -qx "$a" <<<"$APPLET_LIST" || die "busybox at $BUSYBOX lacks applet $a"
done

case $COMPRESSION in
    none) COMPRESS=(cat) ;;
    lz4)  COMPRESS=(lz4 -l -9 -c) ;;     # the kernel reads only the legacy lz4 format
    gzip) COMPRESS=(gzip -6 -n -c) ;;
    zstd) COMPRESS=(zstd -q -19 -c) ;;
    *) die "unknown VMSAN_INITRD_COMPRESSION=$COMPRESSION" ;;
esac

# --- skip when unchanged -----------------------------------------------------------------
STAMP=$( {
    sha256sum < "${BASH_SOURCE[0]}"
    sha256sum < "$INIT"
    sha256sum < "$BUSYBOX"
    sha256sum < "$AGENT"
    (cd "$KERNELDIR/modules" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    echo "$COMPRESSION ${APPLETS[*]}"
    } | sha256sum | cut -d' ' -f1)
if [[ -s $OUT && -f $OUT.stamp && $(cat "$OUT.stamp") == "$STAMP" ]]; then
    log "up to date, nothing to do"
    exit 0
fi

# --- stage the tree ------------------------------------------------------------------------
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vmsan-initrd.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,newroot,vmsan,lib/modules}
install -m 0755 "$INIT" "$STAGE/init"
install -m 0755 "$BUSYBOX" "$STAGE/bin/busybox"
for a in "${APPLETS[@]}"; do ln -s busybox "$STAGE/bin/$a"; done
ln -s bin "$STAGE/sbin"
install -m 0644 "$KERNELDIR"/modules/*.ko "$STAGE/lib/modules/"
install -m 0644 "$KERNELDIR/modules/load-order" "$STAGE/lib/modules/load-order"
install -m 0755 "$AGENT" "$STAGE/vmsan-agent"
# The kernel opens /dev/console on the initramfs before running /init; without the node the
# init starts with no stdio (guest/init then falls back to devtmpfs' console).
if [[ $(id -u) -eq 0 ]]; then
    mknod -m 0600 "$STAGE/dev/console" c 5 1
else
    log "warning: not root, /dev/console not created in the archive"
fi

# --- pack ----------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio -o -H newc -R 0:0 --quiet --reproducible) | "${COMPRESS[@]}" > "$OUT.tmp"
# The kernel only finds an archive appended after this one (the per-VM /vmsan/config cpio) at
# a 4-byte aligned offset: pad a compressed stream with zeros (it skips them between archives).
size=$(stat -c %s "$OUT.tmp")
if (( size % 4 )); then head -c $(( 4 - size % 4 )) /dev/zero >> "$OUT.tmp"; fi
mv -f "$OUT.tmp" "$OUT"
echo "$STAMP" > "$OUT.stamp"
log "done: $OUT ($COMPRESSION, $(stat -c %s "$OUT") bytes)"
