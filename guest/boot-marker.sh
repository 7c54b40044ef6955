#!/usr/bin/env bash
# boot-marker.sh ASSETS [RUNS]
#
# Baseline boot for bench/boot: boots ASSETS/kernel/vmlinux with ASSETS/runtimes/base/rootfs.ext4
# (through a throwaway qcow2 overlay) and a minimal initramfs whose /init only loads the virtio
# modules, mounts /dev/vda, switch_roots and runs `/bin/echo vmsan-marker` from the rootfs, then
# powers off. Prints, per run, the wall time in ms from QEMU spawn to the marker on stdout (one
# number per line); progress goes to stderr. No network device is given to the guest.
#
# Modules come from ASSETS/kernel/modules (build-kernel.sh output) or, when absent, are taken
# out of ASSETS/kernel/initrd.img.
# Environment: VMSAN_ACCEL=tcg|kvm (default: kvm only when it can run a stock kernel),
#   VMSAN_ROOTFS (default ASSETS/runtimes/base/rootfs.ext4), VMSAN_MEMORY (MiB, default 256),
#   VMSAN_BOOT_TIMEOUT (s, default 60).
set -euo pipefail

log() { echo "boot-marker: $*" >&2; }
die() { echo "boot-marker: ERROR: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 ASSETS [RUNS]"
ASSETS=$(cd "$1" && pwd)
RUNS=${2:-1}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
VMLINUX=$ASSETS/kernel/vmlinux
ROOTFS=${VMSAN_ROOTFS:-$ASSETS/runtimes/base/rootfs.ext4}
MEM=${VMSAN_MEMORY:-256}
TIMEOUT=${VMSAN_BOOT_TIMEOUT:-60}
[[ -f $VMLINUX ]] || die "no $VMLINUX"
[[ -f $ROOTFS ]] || die "no $ROOTFS"
QEMU=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not installed"
BUSYBOX=
for c in /bin/busybox /usr/bin/busybox; do
    if [[ -x $c ]] && ! grep -q interpreter <<<"$(readelf -l "$c" 2>/dev/null)"; then BUSYBOX=$c; break; fi
done
[[ -n $BUSYBOX ]] || die "no static busybox (apt-get install busybox-static)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmsan-boot-marker.XXXXXX")
QPID=
cleanup() {
    if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- minimal initramfs -----------------------------------------------------------------------
S=$WORK/stage
mkdir -p "$S"/{bin,dev,proc,sys,newroot,lib/modules}
if [[ -f $ASSETS/kernel/modules/load-order ]]; then
    cp "$ASSETS"/kernel/modules/*.ko "$ASSETS/kernel/modules/load-order" "$S/lib/modules/"
elif [[ -f $ASSETS/kernel/initrd.img ]]; then
    magic=$(od -An -tx1 -N4 "$ASSETS/kernel/initrd.img" | tr -d ' \n')
    case $magic in
        30373037) cat_initrd=(cat) ;;
        1f8b*)    cat_initrd=(gzip -dc) ;;
        28b52ffd) cat_initrd=(zstd -qdc) ;;
        02214c18) cat_initrd=(lz4 -dc) ;;
        *) die "unknown initrd.img format" ;;
    esac
    (cd "$WORK" && "${cat_initrd[@]}" < "$ASSETS/kernel/initrd.img" \
        | cpio -id --quiet 'lib/modules/*' 2>/dev/null) || true
    cp "$WORK"/lib/modules/* "$S/lib/modules/" 2>/dev/null || true
fi
[[ -f $S/lib/modules/load-order ]] || die "no modules (ASSETS/kernel/modules or initrd.img)"
install -m 0755 "$BUSYBOX" "$S/bin/busybox"
for a in sh mount umount insmod usleep switch_root poweroff; do ln -s busybox "$S/bin/$a"; done
mknod -m 0600 "$S/dev/console" c 5 1 2>/dev/null || true
cat > "$S/init" <<'EOF'
#!/bin/sh
export PATH=/bin
fail() { echo "boot-marker-init: FATAL $*"; poweroff -f; }
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; done < /lib/modules/load-order
i=0
while [ ! -b /dev/vda ]; do i=$((i + 1)); [ $i -le 500 ] || fail "no /dev/vda"; usleep 10000; done
mount -t ext4 -o rw /dev/vda /newroot || fail "mount /dev/vda"
umount /dev 2>/dev/null || umount -l /dev
# In the rootfs: print the marker, then power off through sysrq (no init system needed).
exec switch_root /newroot /bin/sh -c \
  '/bin/echo vmsan-marker; mount -t proc proc /proc; echo o > /proc/sysrq-trigger; sleep 10'
EOF
chmod 0755 "$S/init"
(cd "$S" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$WORK/initrd"

# --- accelerator -----------------------------------------------------------------------------
ACCEL=${VMSAN_ACCEL:-}
if [[ -z $ACCEL ]]; then
    ACCEL=tcg
    if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
APPEND="console=ttyS0 quiet i8042.noaux i8042.nokbd i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1 pci=off mitigations=off nokaslr audit=0 cryptomgr.notests random.trust_cpu=on panic=1 rdinit=/init"
if [[ $ACCEL == kvm ]]; then
    ACCEL_ARGS=(-accel kvm -cpu host)
else
    ACCEL_ARGS=(-accel tcg,thread=multi,tb-size=64 -cpu max)
    TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000 + 0.5; exit }' /proc/cpuinfo)
    [[ -n $TSC_KHZ ]] && APPEND+=" tsc_early_khz=$TSC_KHZ"
fi
log "accel=$ACCEL kernel=$(cat "$ASSETS/kernel/version" 2>/dev/null || echo '?') rootfs=$ROOTFS"

# --- boots -----------------------------------------------------------------------------------
for ((run = 1; run <= RUNS; run++)); do
    rm -f "$WORK/overlay.qcow2"
    qemu-img create -q -f qcow2 -F raw -b "$ROOTFS" "$WORK/overlay.qcow2"
    rm -f "$WORK/console"; mkfifo "$WORK/console"
    t0=$EPOCHREALTIME
    "$QEMU" -M microvm,x-option-roms=off,rtc=on "${ACCEL_ARGS[@]}" -m "$MEM" -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio \
        -kernel "$VMLINUX" -initrd "$WORK/initrd" -append "$APPEND" \
        -drive id=root,file="$WORK/overlay.qcow2",format=qcow2,if=none,discard=unmap \
        -device virtio-blk-device,drive=root -no-reboot < /dev/null > "$WORK/console" 2>&1 &
    QPID=$!
    ms=
    deadline=$(( ${t0%[.,]*} + TIMEOUT ))
    while IFS= read -r -t "$TIMEOUT" line; do
        if [[ $line == *vmsan-marker* ]]; then
            t1=$EPOCHREALTIME
            ms=$(( (${t1%[.,]*} * 1000000 + 10#${t1#*[.,]} - ${t0%[.,]*} * 1000000 - 10#${t0#*[.,]}) / 1000 ))
            break
        fi
        [[ $line == *FATAL* ]] && log "guest: $line"
        (( ${EPOCHREALTIME%[.,]*} < deadline )) || break
    done < "$WORK/console"
    # The guest powers itself off; give it a moment, then make sure QEMU is gone.
    for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
    kill "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    QPID=
    [[ -n $ms ]] || die "run $run: no marker within ${TIMEOUT} s"
    log "run $run: ${ms} ms"
    echo "$ms"
done
