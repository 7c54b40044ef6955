#!/usr/bin/env bash
# vmsan installer: everything from Debian/Ubuntu packages, NuGet and npm. Idempotent: a re-run
# skips what is done. Ends by booting a demo VM, running `uname -a` in it and removing it.
#
#   ./install.sh                  install + demo
#   ./install.sh --no-demo        install only (test.sh uses this)
#   ./install.sh --runtime NAME   also build runtime NAME (base is always built)
#   ./install.sh --vmm firecracker  also install Firecracker and its jailer (where reachable)
#
# Environment: VMSAN_ASSETS (default /var/lib/vmsan) receives the kernel, initramfs, agent and
# runtime images; PREFIX (default /usr/local) receives bin/vmsan.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD

ASSETS=${VMSAN_ASSETS:-/var/lib/vmsan}
PREFIX=${PREFIX:-/usr/local}
VMM_USER=vmsan-vmm
DEMO=1
RUNTIMES=(base)
VMMS=(qemu)
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-demo) DEMO=0 ;;
    --runtime) RUNTIMES+=("$2"); shift ;;
    --vmm) case $2 in qemu) ;; firecracker) VMMS+=(firecracker) ;; *) echo "install.sh: --vmm qemu|firecracker" >&2; exit 2 ;; esac; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

step=0
say() { step=$((step + 1)); printf '\n==> [%d] %s\n' "$step" "$*" >&2; }
die() { echo "install.sh: ERROR: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (vmsan creates namespaces, TAP devices and nftables rules)"
[[ -r /etc/os-release ]] && . /etc/os-release
case "${ID:-}:${ID_LIKE:-}" in
  debian:*|ubuntu:*|*:*debian*) ;;
  *) die "supported on Debian 12/13 and Ubuntu (found ${PRETTY_NAME:-unknown})" ;;
esac

say "host packages"
PKGS=(qemu-system-x86 qemu-utils e2fsprogs iproute2 nftables debootstrap zstd cpio kmod
      busybox-static lz4 xz-utils binutils util-linux clang zlib1g-dev libssl-dev ca-certificates
      debian-archive-keyring tmux curl bc libcap2-bin passwd conntrack)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
else
  echo "all ${#PKGS[@]} packages present" >&2
fi

say "VMM account ($VMM_USER)"
# VMMs run unprivileged: each VM under its own uid (a range above every login and subordinate
# uid, no passwd entries needed) with this system account's group. In the kvm group so a VMM
# that opens /dev/kvm after dropping root still can (QEMU opens it before).
getent group kvm >/dev/null || groupadd --system kvm
if ! getent passwd "$VMM_USER" >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --groups kvm --comment "vmsan VMM processes" "$VMM_USER"
  echo "created system user $VMM_USER ($(id "$VMM_USER"))" >&2
else
  id -nG "$VMM_USER" | grep -qw kvm || usermod -aG kvm "$VMM_USER"
  echo "$VMM_USER exists ($(id "$VMM_USER"))" >&2
fi

if [[ " ${VMMS[*]} " == *" firecracker "* ]]; then
  say "Firecracker and its jailer"
  if command -v firecracker >/dev/null && command -v jailer >/dev/null; then
    echo "firecracker $(firecracker --version 2>/dev/null | head -1) and jailer present" >&2
  else
    # Firecracker ships as GitHub release tarballs (no Debian/Ubuntu package). Probe the
    # download without fetching it; on machines where GitHub is unreachable say so plainly.
    FC_URL=https://github.com/firecracker-microvm/firecracker/releases
    if curl -fsSIL --max-time 10 "$FC_URL/latest" >/dev/null 2>&1; then
      arch=$(uname -m)
      ver=$(curl -fsSIL --max-time 10 -o /dev/null -w '%{url_effective}' "$FC_URL/latest" | sed 's#.*/tag/##')
      tmp=$(mktemp -d)
      curl -fsSL --max-time 300 "$FC_URL/download/$ver/firecracker-$ver-$arch.tgz" | tar xz -C "$tmp"
      install -m 0755 "$tmp/release-$ver-$arch/firecracker-$ver-$arch" "$PREFIX/bin/firecracker"
      install -m 0755 "$tmp/release-$ver-$arch/jailer-$ver-$arch" "$PREFIX/bin/jailer"
      rm -rf "$tmp"
      echo "installed firecracker and jailer $ver into $PREFIX/bin" >&2
    else
      echo "install.sh: cannot install Firecracker here: $FC_URL is unreachable from this machine" >&2
      echo "  (Firecracker and its jailer are only published as GitHub release binaries)." >&2
      echo "  Copy firecracker and jailer (same version) onto PATH by hand, then re-run; until" >&2
      echo "  then \`--vmm firecracker\` fails with DEPENDENCY_MISSING and QEMU stays the backend." >&2
    fi
  fi
fi

say ".NET SDK"
if ! command -v dotnet >/dev/null || ! dotnet --list-sdks | grep -qE '^(10|[1-9][1-9])\.'; then
  # Ubuntu ships the SDK in its own archive; Debian does not.
  if [[ ${ID:-} == ubuntu ]] && apt-get install -y -q dotnet-sdk-10.0 >&2; then :; else
    die "the .NET 10 SDK is required (dotnet on PATH); install it and re-run"
  fi
fi
dotnet --version >&2

say "build the vmsan CLI and the guest agent (NativeAOT)"
mkdir -p "$ASSETS/bin" out
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet publish src/Vmsan.Agent -c Release -r linux-x64 -o out/agent -v quiet -nologo >&2
dotnet publish src/Vmsan.Cli -c Release -r linux-x64 -o out/cli -v quiet -nologo >&2
file out/agent/vmsan-agent | grep -q 'statically linked' || die "the agent is not statically linked"
install -m 0755 out/agent/vmsan-agent "$ASSETS/bin/vmsan-agent"
install -m 0755 out/cli/vmsan "$PREFIX/bin/vmsan"
echo "vmsan -> $PREFIX/bin/vmsan, agent -> $ASSETS/bin/vmsan-agent" >&2
# Shell completion, where the shell's completion directory exists (the scripts ask the binary).
for pair in bash:/usr/share/bash-completion/completions/vmsan zsh:/usr/share/zsh/vendor-completions/_vmsan \
            fish:/usr/share/fish/vendor_completions.d/vmsan.fish; do
  shell=${pair%%:*} file=${pair#*:}
  if [[ -d $(dirname "$file") ]]; then
    "$PREFIX/bin/vmsan" completion "$shell" > "$file" && echo "$shell completion -> $file" >&2
  fi
done

say "guest kernel (Debian cloud kernel, PVH vmlinux)"
guest/build-kernel.sh "$ASSETS/kernel"

say "guest initramfs (busybox, virtio modules, agent)"
guest/build-initrd.sh "$ASSETS/kernel" "$ASSETS/bin/vmsan-agent" "$ASSETS/kernel/initrd.img"

say "runtime recipes and their build script"
# Recipes are data (guest/runtimes/NAME.json); `vmsan runtimes build NAME` reads them and runs the
# script, so an installed vmsan builds runtimes without this checkout.
mkdir -p "$ASSETS/recipes" "$ASSETS/lib"
install -m 0644 guest/runtimes/*.json "$ASSETS/recipes/"
install -m 0755 guest/build-rootfs.sh "$ASSETS/lib/build-rootfs.sh"
echo "recipes: $(cd "$ASSETS/recipes" && ls | sed 's/\.json$//' | tr '\n' ' ')" >&2

for rt in "${RUNTIMES[@]}"; do
  [[ -f $ASSETS/recipes/$rt.json ]] || die "no recipe for runtime '$rt' (known: $(cd "$ASSETS/recipes" && ls | sed 's/\.json$//' | tr '\n' ' '))"
  # Recipes that take files from the npm registry need npm on the host.
  if grep -q '"npm"' "$ASSETS/recipes/$rt.json" && ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm >&2
  fi
done
build_runtime() {
  VMSAN_ASSETS=$ASSETS "$PREFIX/bin/vmsan" runtimes build "$1" 2>&1 | sed -u "s/^/[$1] /" >&2
  return "${PIPESTATUS[0]}"
}
# base first: every other runtime's debootstrap reuses its .debs (runtimes/.cache, shared). The others
# then build side by side: each is mostly waiting on downloads and dpkg, one core each.
say "runtime base"
build_runtime base
others=()
for rt in "${RUNTIMES[@]}"; do [[ $rt == base || " ${others[*]} " == *" $rt "* ]] || others+=("$rt"); done
if ((${#others[@]})); then
  say "runtimes ${others[*]} (side by side)"
  pids=()
  for rt in "${others[@]}"; do build_runtime "$rt" & pids+=($!); done
  failed=()
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${others[$i]}"); done
  ((${#failed[@]} == 0)) || die "runtime build failed: ${failed[*]} (its log is above, prefixed [NAME])"
fi

say "check"
VMSAN_ASSETS=$ASSETS "$PREFIX/bin/vmsan" doctor >&2 || die "vmsan doctor found problems (above)"

if ((DEMO)); then
  say "demo: vmsan run --rm -- uname -a"
  VMSAN_ASSETS=$ASSETS "$PREFIX/bin/vmsan" run --rm -- uname -a
fi
echo >&2
echo "vmsan is installed: try \`vmsan create\`, \`vmsan exec ID uname -a\`, \`vmsan rm -f ID\`." >&2
