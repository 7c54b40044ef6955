#!/usr/bin/env bash
# smoke-test.sh [WORKDIR]
#
# End-to-end check of the guest boot chain without the real agent: builds the kernel, the base
# rootfs and an initramfs whose /vmsan-agent is a tiny static C placeholder (needs gcc and
# libc6-dev), appends a per-VM /vmsan/config archive, and boots QEMU microvm inside a throwaway
# network namespace with a TAP. Checks: init switches root, the placeholder runs as PID 1 with
# agent.env, eth0 has the address and default route, resolv.conf is written, the guest answers
# ping from the namespace, QEMU exits by itself after the guest powers off; and a boot without
# a disk ends with `vmsan-init: FATAL` and QEMU exiting. WORKDIR (default /var/tmp/vmsan-smoke)
# keeps the built assets, so a rerun is quick. Set VMSAN_ASSETS to reuse installed assets'
# kernel and rootfs instead of building them.
set -euo pipefail

log() { echo "smoke-test: $*" >&2; }
die() { echo "smoke-test: FAIL: $*" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${1:-/var/tmp/vmsan-smoke}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
command -v gcc >/dev/null || die "gcc is needed for the placeholder agent"

if [[ -n ${VMSAN_ASSETS:-} ]]; then
    KDIR=$VMSAN_ASSETS/kernel
    ROOTFS=$VMSAN_ASSETS/runtimes/base/rootfs.ext4
else
    KDIR=$WORK/kernel
    ROOTFS=$WORK/runtimes/base/rootfs.ext4
    "$HERE/build-kernel.sh" "$KDIR"
    "$HERE/build-rootfs.sh" base "$WORK/runtimes/base"
fi
if [[ ! -f $KDIR/modules/load-order ]]; then
    die "$KDIR/modules is missing (run build-kernel.sh into $KDIR)"
fi

# --- placeholder agent ------------------------------------------------------------------------
cat > "$WORK/agent.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
static void dump(const char *tag, const char *path) {
    char buf[512]; FILE *f = fopen(path, "r");
    if (!f) { printf("%s: (missing)\n", tag); return; }
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "VMSAN_TOKEN=", 12)) printf("%s: %s", tag, buf); else printf("%s: VMSAN_TOKEN=<redacted>\n", tag);
    fclose(f);
}
int main(void) {
    printf("placeholder-agent: pid=%d\n", getpid());
    mount("proc", "/proc", "proc", 0, NULL);
    dump("env", "/run/vmsan/agent.env");
    dump("route", "/proc/net/route");
    dump("resolv", "/etc/resolv.conf");
    printf("placeholder-agent: ready\n");
    fflush(stdout);
    sleep(3); /* time for the host to ping us */
    sync();
    reboot(RB_POWER_OFF);
    return 1;
}
EOF
gcc -static -O2 -o "$WORK/agent" "$WORK/agent.c"
"$HERE/build-initrd.sh" "$KDIR" "$WORK/agent" "$WORK/initrd.img"

# --- per-VM config archive ---------------------------------------------------------------------
CFG=$WORK/cfg
rm -rf "$CFG"; mkdir -p "$CFG/vmsan"
TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'VMSAN_ID=vm-5m0ke000\nVMSAN_TOKEN=%s\nVMSAN_IP=172.30.0.2/30\nVMSAN_GW=172.30.0.1\nVMSAN_DNS=172.30.0.1\nVMSAN_MTU=1500\n' \
    "$TOKEN" > "$CFG/vmsan/config"
cp "$WORK/initrd.img" "$WORK/pervm.img"
size=$(stat -c %s "$WORK/pervm.img")
if (( size % 4 )); then head -c $(( 4 - size % 4 )) /dev/zero >> "$WORK/pervm.img"; fi
(cd "$CFG" && printf 'vmsan\nvmsan/config\n' | cpio -o -H newc -R 0:0 --quiet) >> "$WORK/pervm.img"

# --- boot ------------------------------------------------------------------------------------
TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000 + 0.5; exit }' /proc/cpuinfo)
APPEND="console=ttyS0 quiet i8042.noaux i8042.nokbd i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1 pci=off mitigations=off nokaslr audit=0 cryptomgr.notests random.trust_cpu=on panic=1 rdinit=/init tsc_early_khz=$TSC_KHZ"
qemu() {
    timeout 60 qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=on \
        -accel tcg,thread=multi,tb-size=64 -cpu max -m 256 -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio \
        -kernel "$KDIR/vmlinux" -initrd "$WORK/pervm.img" -append "$APPEND" -no-reboot "$@" </dev/null
}

NS=vmsan-smoke-$$
ip netns add "$NS"
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" addr add 172.30.0.1/30 dev tap0
ip -n "$NS" link set tap0 up

rm -f "$WORK/overlay.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$ROOTFS" "$WORK/overlay.qcow2"
( sleep 2.5; ip netns exec "$NS" busybox ping -c 2 -W 1 172.30.0.2 > "$WORK/ping.txt" 2>&1 || true ) &
PINGER=$!
t0=$(date +%s%N)
rc=0
ip netns exec "$NS" bash -c "$(declare -f qemu); KDIR='$KDIR' WORK='$WORK' APPEND='$APPEND' qemu \
    -drive id=root,file='$WORK/overlay.qcow2',format=qcow2,if=none,discard=unmap \
    -device virtio-blk-device,drive=root \
    -netdev tap,id=net0,ifname=tap0,script=no,downscript=no \
    -device virtio-net-device,netdev=net0,mac=02:00:ac:1e:00:02" > "$WORK/console.txt" 2>&1 || rc=$?
t1=$(date +%s%N)
wait "$PINGER" || true
log "boot: QEMU exited with $rc after $(( (t1 - t0) / 1000000 )) ms"

c=$WORK/console.txt
grep -q 'vmsan-init: switching root' "$c" || { cat "$c" >&2; die "no 'switching root'"; }
grep -q 'placeholder-agent: pid=1' "$c" || { cat "$c" >&2; die "placeholder agent is not PID 1"; }
grep -q 'env: VMSAN_ID=vm-5m0ke000' "$c" || { cat "$c" >&2; die "agent.env not staged"; }
grep -Eq 'route: eth0[[:space:]]+00000000[[:space:]]+01001EAC' "$c" || { cat "$c" >&2; die "no default route via 172.30.0.1"; }
grep -q 'resolv: nameserver 172.30.0.1' "$c" || { cat "$c" >&2; die "resolv.conf not written"; }
grep -q ' 0% packet loss' "$WORK/ping.txt" || { cat "$WORK/ping.txt" >&2; die "guest did not answer ping"; }
grep -q "$TOKEN" "$c" && die "token leaked on the console"
[[ $rc -eq 0 ]] || die "QEMU exit status $rc (expected 0 after guest power-off)"
log "boot: ok (eth0, route, resolv.conf, ping, agent.env, power-off)"

# --- fatal path: no disk ---------------------------------------------------------------------
rc=0
qemu > "$WORK/console-fatal.txt" 2>&1 || rc=$?
grep -q 'vmsan-init: FATAL /dev/vda did not appear' "$WORK/console-fatal.txt" \
    || { cat "$WORK/console-fatal.txt" >&2; die "no FATAL line without a disk"; }
[[ $rc -eq 0 ]] || die "QEMU exit status $rc on the fatal path"
log "fatal path: ok"
log "PASS"
