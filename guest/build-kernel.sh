#!/usr/bin/env bash
# build-kernel.sh OUTDIR
#
# Fetches Debian's newest linux-image-*-cloud-amd64 (the package the meta-package
# linux-image-cloud-amd64 depends on) with apt, unpacks it (never installs it), and writes:
#   OUTDIR/vmlinux            PVH-bootable ELF extracted from the bzImage's compressed payload
#   OUTDIR/version            kernel release string, e.g. 6.1.0-56-cloud-amd64
#   OUTDIR/modules/*.ko       the guest's modules (virtio_mmio virtio_blk virtio_net
#                             virtio_console virtio_rng + dependencies), uncompressed
#   OUTDIR/modules/load-order module file names in dependency order, one per line
#   OUTDIR/package            "<package> <package version>" (the skip stamp)
# Downloads are cached in OUTDIR/.cache (or $VMSAN_CACHE_DIR). Idempotent: does nothing when OUTDIR already holds
# the candidate package version.
set -euo pipefail

log() { echo "build-kernel: $*" >&2; }
die() { echo "build-kernel: ERROR: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
OUTDIR=$1
META=${VMSAN_KERNEL_META:-linux-image-cloud-amd64}
# Modules the guest needs; their modules.dep closure is added.
WANTED_MODULES=(virtio_mmio virtio_blk virtio_net virtio_console virtio_rng)

for tool in apt-cache apt-get dpkg-deb readelf od depmod lz4 xz gzip zstd; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
CACHE=${VMSAN_CACHE_DIR:-$OUTDIR/.cache}
mkdir -p "$CACHE"

# --- 1. resolve the package --------------------------------------------------------------
# The meta-package depends on e.g. linux-image-6.1.0-56-cloud-amd64 (signed) or on the
# -unsigned flavour; take whatever it depends on, newest candidate.
PKG=$(apt-cache depends "$META" 2>/dev/null \
      | sed -n 's/^ *[|]\{0,1\}Depends: \(linux-image-[0-9].*-cloud-amd64\(-unsigned\)\{0,1\}\)$/\1/p' \
      | sort -V | tail -n1)
if [[ -z $PKG ]]; then
    # Fallback: newest versioned cloud image package known to apt.
    PKG=$(apt-cache pkgnames linux-image- 2>/dev/null \
          | grep -E '^linux-image-[0-9].*-cloud-amd64(-unsigned)?$' | sort -V | tail -n1 || true)
fi
[[ -n $PKG ]] || die "no linux-image-*-cloud-amd64 package known to apt (run apt-get update)"
PKGVER=$(apt-cache policy "$PKG" | sed -n 's/^ *Candidate: //p')
[[ -n $PKGVER && $PKGVER != "(none)" ]] || die "no installable candidate for $PKG"
STAMP="$PKG $PKGVER"
log "candidate: $STAMP"

if [[ -f $OUTDIR/package && $(cat "$OUTDIR/package") == "$STAMP" \
      && -s $OUTDIR/vmlinux && -s $OUTDIR/version && -s $OUTDIR/modules/load-order ]]; then
    log "up to date ($(cat "$OUTDIR/version")), nothing to do"
    exit 0
fi

# --- 2. download and unpack --------------------------------------------------------------
DEB=$(ls "$CACHE"/"${PKG}"_*.deb 2>/dev/null | head -n1 || true)
if [[ -n $DEB ]] && [[ $(dpkg-deb -f "$DEB" Version) != "$PKGVER" ]]; then
    rm -f "$DEB"; DEB=
fi
if [[ -z $DEB ]]; then
    log "downloading $PKG=$PKGVER"
    rm -f "$CACHE"/linux-image-*.deb
    (cd "$CACHE" && apt-get download -q -o APT::Sandbox::User=root "$PKG=$PKGVER" >&2) || die "apt-get download $PKG failed"
    DEB=$(ls "$CACHE"/"${PKG}"_*.deb | head -n1)
fi

WORK=$(mktemp -d "$OUTDIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "unpacking $(basename "$DEB")"
dpkg-deb -x "$DEB" "$WORK/pkg"

BZIMAGE=$(ls "$WORK"/pkg/boot/vmlinuz-* | head -n1)
[[ -f $BZIMAGE ]] || die "no /boot/vmlinuz-* in $DEB"
RELEASE=${BZIMAGE##*/vmlinuz-}
MODDIR=$WORK/pkg/lib/modules/$RELEASE
[[ -d $MODDIR ]] || MODDIR=$WORK/pkg/usr/lib/modules/$RELEASE
[[ -d $MODDIR ]] || die "no lib/modules/$RELEASE in $DEB"
# The package ships no modules.dep (depmod runs at install time): generate it in the tree.
if [[ ! -s $MODDIR/modules.dep ]]; then
    command -v depmod >/dev/null || die "missing tool: depmod (apt-get install kmod)"
    depmod -b "${MODDIR%/lib/modules/*}" "$RELEASE" || die "depmod failed"
fi
[[ -s $MODDIR/modules.dep ]] || die "no modules.dep for $RELEASE"
log "kernel release $RELEASE"

# --- 3. extract vmlinux from the bzImage -------------------------------------------------
u8()  { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n'; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' \n'; }

# Magic of each compressor; the first one found decides. Prefer the exact location from the
# boot protocol header (payload_offset at 0x248 relative to the protected-mode code, which
# starts at (setup_sects+1)*512), fall back to scanning for magic bytes.
decompress_at() { # file offset method -> vmlinux on stdout
    local f=$1 off=$2 method=$3
    case $method in
        lz4)  tail -c +"$((off + 1))" "$f" | lz4 -dc 2>/dev/null ;;
        xz)   tail -c +"$((off + 1))" "$f" | xz -dc --single-stream 2>/dev/null ;;
        gzip) tail -c +"$((off + 1))" "$f" | gzip -dc 2>/dev/null ;;
        zstd) tail -c +"$((off + 1))" "$f" | zstd -dc 2>/dev/null ;;
    esac
}
is_pvh_elf() { # file -> 0 when it is an ELF with the Xen PVH entry note
    [[ $(head -c4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] || return 1
    readelf -n "$1" 2>/dev/null | grep -Eq 'Xen.*(0x00000012|PHYS32_ENTRY)'
}

magic_of() { # file offset -> method name or nothing
    local hex
    hex=$(od -An -tx1 -j "$2" -N6 "$1" | tr -d ' \n')
    case $hex in
        02214c18*)     echo lz4 ;;
        fd377a585a00*) echo xz ;;
        1f8b08*)       echo gzip ;;
        28b52ffd*)     echo zstd ;;
    esac
}

VMLINUX_TMP=$WORK/vmlinux
found=
setup_sects=$(u8 "$BZIMAGE" $((0x1f1)))
[[ $setup_sects -eq 0 ]] && setup_sects=4
payload_off=$(u32 "$BZIMAGE" $((0x248)))
pm_start=$(( (setup_sects + 1) * 512 ))
candidates=()
if [[ -n $payload_off ]]; then
    candidates+=("$((pm_start + payload_off))")
fi
# Magic scan fallback (grep -obUaP prints byte offsets).
for pat in '\x02\x21\x4c\x18' '\xfd\x37\x7a\x58\x5a\x00' '\x1f\x8b\x08' '\x28\xb5\x2f\xfd'; do
    while IFS=: read -r off _; do candidates+=("$off"); done \
        < <(LC_ALL=C grep -obUaP "$pat" "$BZIMAGE" 2>/dev/null | head -n 8 || true)
done
for off in "${candidates[@]}"; do
    method=$(magic_of "$BZIMAGE" "$off")
    [[ -n $method ]] || continue
    log "trying $method payload at offset $off"
    decompress_at "$BZIMAGE" "$off" "$method" > "$VMLINUX_TMP" || true
    if [[ -s $VMLINUX_TMP ]] && is_pvh_elf "$VMLINUX_TMP"; then
        found=$method; break
    fi
done
[[ -n $found ]] || die "could not extract a PVH ELF vmlinux from $BZIMAGE"
log "vmlinux: $found payload, $(stat -c %s "$VMLINUX_TMP") bytes, PVH note present"

# --- 4. module closure -------------------------------------------------------------------
declare -A DEP_OF=()   # normalized name -> "relpath: deps..."
declare -A PATH_OF=()  # normalized name -> relpath
norm() { local b=${1##*/}; b=${b%%.ko*}; echo "${b//-/_}"; }
while IFS= read -r line; do
    rel=${line%%:*}
    n=$(norm "$rel")
    PATH_OF[$n]=$rel
    DEP_OF[$n]=${line#*:}
done < "$MODDIR/modules.dep"

declare -A BUILTIN=()
if [[ -f $MODDIR/modules.builtin ]]; then
    while IFS= read -r rel; do BUILTIN[$(norm "$rel")]=1; done < "$MODDIR/modules.builtin"
fi

declare -A SEEN=()
ORDER=()
visit() {
    local n=$1 d
    [[ -n ${SEEN[$n]:-} ]] && return 0
    SEEN[$n]=1
    for d in ${DEP_OF[$n]}; do visit "$(norm "$d")"; done
    ORDER+=("$n")
}
for m in "${WANTED_MODULES[@]}"; do
    m=${m//-/_}
    if [[ -n ${PATH_OF[$m]:-} ]]; then
        visit "$m"
    elif [[ -n ${BUILTIN[$m]:-} ]]; then
        log "module $m is built in"
    else
        die "module $m is neither in modules.dep nor built in"
    fi
done

rm -rf "$WORK/modules"; mkdir -p "$WORK/modules"
: > "$WORK/modules/load-order"
for n in "${ORDER[@]}"; do
    src=$MODDIR/${PATH_OF[$n]}
    case $src in
        *.ko.xz)  xz -dc "$src"   > "$WORK/modules/$n.ko" ;;
        *.ko.zst) zstd -qdc "$src" > "$WORK/modules/$n.ko" ;;
        *.ko.gz)  gzip -dc "$src" > "$WORK/modules/$n.ko" ;;
        *.ko)     cp "$src" "$WORK/modules/$n.ko" ;;
        *) die "unexpected module file $src" ;;
    esac
    echo "$n.ko" >> "$WORK/modules/load-order"
done
log "modules: $(tr '\n' ' ' < "$WORK/modules/load-order")"

# --- 5. install atomically-ish --------------------------------------------------------
rm -rf "$OUTDIR/modules"
mv "$WORK/modules" "$OUTDIR/modules"
mv -f "$VMLINUX_TMP" "$OUTDIR/vmlinux"
echo "$RELEASE" > "$OUTDIR/version"
echo "$STAMP" > "$OUTDIR/package"
# Keep only the current .deb in the cache.
find "$CACHE" -maxdepth 1 -name 'linux-image-*.deb' ! -name "$(basename "$DEB")" -delete
log "done: $OUTDIR/vmlinux ($RELEASE)"
