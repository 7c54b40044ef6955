#!/usr/bin/env bash
# build-rootfs.sh RUNTIME OUT_DIR
#
# Builds a runtime's read-only root disk: Debian trixie minbase (debootstrap) + the runtime's
# extras, written as a new version OUT_DIR/rootfs-VERSION.ext4 (4 GiB sparse ext4, made with
# mkfs.ext4 -d) with its OUT_DIR/rootfs-VERSION.json, then published by renaming the symlink
# OUT_DIR/rootfs.ext4 to point at it (manifest.json likewise). A version is never written again once
# published: VMs' overlays name the version file itself, so a rebuild never changes what they read;
# `vmsan runtimes prune` removes versions nothing uses. RUNTIME is a recipe name (base, python3.13, node22).
# Idempotent: skips the build when OUT_DIR holds a rootfs made from the same inputs (stamp).
#
# Environment (optional):
#   VMSAN_DEBIAN_MIRROR  default http://deb.debian.org/debian
#   VMSAN_ROOTFS_SIZE    filesystem size for mkfs.ext4, default 4G (= the default --disk, so a default
#                        VM needs no online resize at boot; the file is sparse)
#   VMSAN_CACHE_DIR      where downloaded .debs are kept, shared by every runtime's build, default
#                        OUT_DIR/../.cache (each build works on its own hard-linked copy of it)
set -euo pipefail

log() { echo "build-rootfs: $*" >&2; }
die() { echo "build-rootfs: ERROR: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 RUNTIME OUT_DIR (run by \`vmsan runtimes build RUNTIME\`)"
RUNTIME=$1
OUT_DIR=$2
SUITE=trixie
MIRROR=${VMSAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
FS_SIZE=${VMSAN_ROOTFS_SIZE:-4G}

# --- runtime definition ------------------------------------------------------------------
# The recipe (guest/runtimes/NAME.json, installed into $VMSAN_ASSETS/recipes) is data; `vmsan
# runtimes build NAME` reads it and hands it over in these variables:
#   VMSAN_RECIPE_DEBS     extra Debian packages for debootstrap --include (space separated)
#   VMSAN_RECIPE_NPM      npm packages, one per line: SPEC|DEST|PATH[,PATH...] (PATH inside the package)
#   VMSAN_RECIPE_LINKS    symlinks, one per line: LINK|TARGET
#   VMSAN_RECIPE_VERSION  command run in the chroot at the end; its output is the manifest's "version"
#   VMSAN_BUILD_INPUTS    digest of the recipe, the agent and the base recipe (part of the stamp)
read -r -a EXTRA_DEBS <<< "${VMSAN_RECIPE_DEBS:-}"
EXTRA_NPM=${VMSAN_RECIPE_NPM:-}
LINKS=${VMSAN_RECIPE_LINKS:-}
CHECK_CMD=${VMSAN_RECIPE_VERSION:-}

for tool in debootstrap mkfs.ext4 sha256sum chroot flock; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap)"

KEYRING=/usr/share/keyrings/debian-archive-trixie-stable.gpg
[[ -f $KEYRING ]] || KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f $KEYRING ]] || die "no Debian archive keyring (apt-get install debian-archive-keyring)"

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
CACHE=${VMSAN_CACHE_DIR:-$(dirname "$OUT_DIR")/.cache}
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd)

# --- one build at a time, and what killed builds left ---------------------------------------
# The lock's fd is inherited by every process of the build (debootstrap, dpkg in the chroot, npm), so
# it stays held while any of them lives, even after this shell was SIGKILLed; whoever holds it may
# remove every earlier build's temp tree and temp files.
exec 9> "$OUT_DIR/.build.lock"
if ! flock -n 9; then
    echo "build-rootfs: ERROR: another build of $RUNTIME is running (lock $OUT_DIR/.build.lock)" >&2
    exit 75
fi
umount_below() {
    # debootstrap mounts /proc and /sys in its target and leaves them mounted when it dies: never rm
    # through them.
    local m
    for m in $(awk -v r="$1" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}
for old in "$OUT_DIR"/.build.*; do
    [[ -e $old && $old != "$OUT_DIR/.build.lock" ]] || continue
    log "$RUNTIME: removing $old, left by a build that was killed"
    umount_below "$old/"
    rm -rf --one-file-system "$old"
done
rm -f "$OUT_DIR"/rootfs*.tmp "$OUT_DIR"/manifest.json.tmp
# Builds before the shared cache kept their own .debs: they join it (hard links, same filesystem).
if [[ -d $OUT_DIR/.cache ]]; then
    cp -al -n "$OUT_DIR/.cache/debs/." "$CACHE/debs/" 2>/dev/null || true
    rm -rf "$OUT_DIR/.cache"
fi

# A build's processes live in their own process group (`vmsan runtimes build` starts this script with
# setsid). When the vmsan that started it dies (SIGKILL included), or this shell does, the watchdog
# kills the whole group, so nothing keeps writing into a temp tree that nobody will publish.
alive() {   # a zombie (killed, not yet reaped) counts as dead
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ ${st:0:1} != Z && ${st:0:1} != X ]]
}
pgid=$(cat /proc/$$/stat); pgid=${pgid##*) }; read -r _ _ pgid _ <<< "$pgid"
if [[ -n ${VMSAN_BUILD_PARENT:-} && $pgid == "$$" ]]; then
    ( exec 9>&-
      while alive "$VMSAN_BUILD_PARENT" && alive $$; do sleep 1; done
      kill -KILL -- -$$ 2>/dev/null ) &
    WATCHDOG=$!
fi
stop_watchdog() { [[ -z ${WATCHDOG:-} ]] || kill "$WATCHDOG" 2>/dev/null || true; }
trap stop_watchdog EXIT
# A signal waits until the foreground child ends; `vmsan` sends it to the whole group, so it does.
trap 'exit 143' TERM INT HUP

# --- skip when unchanged -----------------------------------------------------------------
STAMP=$( { sha256sum < "${BASH_SOURCE[0]}";
           echo "$RUNTIME $SUITE $MIRROR $FS_SIZE ${EXTRA_DEBS[*]} $EXTRA_NPM $LINKS ${VMSAN_BUILD_INPUTS:-}"; } | sha256sum | cut -d' ' -f1)
if [[ -L $OUT_DIR/rootfs.ext4 && -s $OUT_DIR/rootfs.ext4 && -s $OUT_DIR/manifest.json && -f $OUT_DIR/.stamp \
      && $(cat "$OUT_DIR/.stamp") == "$STAMP" ]]; then
    log "$RUNTIME: up to date, nothing to do"
    exit 0
fi

# The temp tree lives beside the image (not in /var/tmp), where the next build finds what a killed one left.
ROOT=$(mktemp -d "$OUT_DIR/.build.XXXXXX")
cleanup() {
    stop_watchdog
    umount_below "$ROOT/"
    rm -rf --one-file-system "$ROOT" "$ROOT.log" "$ROOT.debs" "$ROOT.npm"
    rm -f "$OUT_DIR"/rootfs*.tmp "$OUT_DIR/manifest.json.tmp"
}
trap cleanup EXIT


# --- debootstrap -------------------------------------------------------------------------
INCLUDE=
if [[ ${#EXTRA_DEBS[@]} -gt 0 ]]; then
    INCLUDE=--include=$(IFS=,; echo "${EXTRA_DEBS[*]}")
fi
# debootstrap writes downloads straight into its --cache-dir and deletes a file whose checksum it
# doubts, so two builds must not share one: each gets hard links of the shared cache (instant, no
# copy), and what it downloaded joins the shared cache afterwards by rename (atomic per file).
cp -al "$CACHE/debs" "$ROOT.debs"
cached=$(find "$ROOT.debs" -name '*.deb' | wc -l)
log "$RUNTIME: debootstrap --variant=minbase $SUITE ${INCLUDE} ($cached .debs cached in $CACHE/debs)"
t0=$(date +%s)
debootstrap --variant=minbase --keyring="$KEYRING" --cache-dir="$ROOT.debs" \
    ${INCLUDE:+"$INCLUDE"} "$SUITE" "$ROOT" "$MIRROR" > "$ROOT.log" 2>&1 || {
    tail -n 30 "$ROOT.log" >&2; rm -f "$ROOT.log"; die "debootstrap failed"; }
rm -f "$ROOT.log"
fetched=0
for f in "$ROOT.debs"/*.deb; do
    [[ -f $f && ! $f -ef $CACHE/debs/${f##*/} ]] || continue
    ln -f "$f" "$CACHE/debs/.${f##*/}.$$" && mv -f "$CACHE/debs/.${f##*/}.$$" "$CACHE/debs/${f##*/}"
    fetched=$((fetched + 1))
done
rm -rf "$ROOT.debs"
log "$RUNTIME: debootstrap done in $(( $(date +%s) - t0 )) s ($fetched .debs downloaded)"

# --- npm-packaged files -------------------------------------------------------------------
if [[ -n $EXTRA_NPM ]]; then
    command -v npm >/dev/null || die "npm is needed for: $EXTRA_NPM"
    # npm keeps its own (concurrency-safe) cache of what it downloaded; the tarballs are this build's.
    mkdir -p "$ROOT.npm"
    while IFS='|' read -r spec dest paths; do
        [[ -n $spec ]] || continue
        log "$RUNTIME: npm pack $spec -> $dest"
        TGZ=$(cd "$ROOT.npm" && npm pack --silent "$spec" | tail -n1)
        [[ -f $ROOT.npm/$TGZ ]] || die "npm pack $spec produced nothing"
        rm -rf "$ROOT/tmp/npm"; mkdir -p "$ROOT/tmp/npm" "$ROOT$dest"
        tar -xzf "$ROOT.npm/$TGZ" -C "$ROOT/tmp/npm"
        IFS=',' read -r -a plist <<< "$paths"
        for p in "${plist[@]}"; do
            [[ -e $ROOT/tmp/npm/package/$p ]] || die "$TGZ has no package/$p"
            if [[ $p == . ]]; then
                cp -a "$ROOT/tmp/npm/package/." "$ROOT$dest/"
            else
                mkdir -p "$ROOT$dest/$(dirname "$p")"
                cp -a "$ROOT/tmp/npm/package/$p" "$ROOT$dest/$p"
            fi
        done
        rm -rf "$ROOT/tmp/npm"
    done <<< "$EXTRA_NPM"
fi
if [[ -n $LINKS ]]; then
    while IFS='|' read -r link target; do
        [[ -n $link ]] || continue
        mkdir -p "$ROOT$(dirname "$link")"
        ln -sfn "$target" "$ROOT$link"
    done <<< "$LINKS"
fi

# --- configuration -----------------------------------------------------------------------
log "$RUNTIME: configuring"
chroot "$ROOT" /usr/sbin/useradd --create-home --uid 1000 --user-group \
    --home-dir /home/user --shell /bin/bash user
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
: > "$ROOT/etc/hostname"
# The host's resolver must not leak into the image; the initramfs writes the VM's one.
rm -f "$ROOT/etc/resolv.conf"; : > "$ROOT/etc/resolv.conf"
: > "$ROOT/etc/fstab"
for d in run tmp proc sys dev; do mkdir -p "$ROOT/$d"; done
chmod 1777 "$ROOT/tmp"
chmod 0755 "$ROOT/run"

VERSION=
if [[ -n $CHECK_CMD ]]; then
    VERSION=$(chroot "$ROOT" /bin/sh -c "$CHECK_CMD" 2>&1 | head -n1) \
        || die "$RUNTIME: '$CHECK_CMD' failed in the image: $VERSION"
    log "$RUNTIME: $VERSION"
fi

# --- shrink --------------------------------------------------------------------------------
chroot "$ROOT" /usr/bin/apt-get clean >/dev/null 2>&1 || true
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
       "$ROOT"/usr/share/lintian "$ROOT"/usr/share/linda \
       "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* \
       "$ROOT"/debootstrap
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
# __pycache__ stays: Debian compiles its Python modules at install time, and the default user cannot
# write them in /usr, so without them every python3 start compiles what it imports again (under TCG,
# `python3 -m venv --without-pip` took 21 s without them and 4 s with them).
CONTENT_BYTES=$(du -sb --apparent-size "$ROOT" | cut -f1)

# --- mkfs ----------------------------------------------------------------------------------
# A new version name each build (time, then the inputs' stamp), never reused: the image a VM's overlay
# names is never replaced.
VERSION_ID=$(date -u +%Y%m%dT%H%M%SZ)-${STAMP:0:8}
while [[ -e $OUT_DIR/rootfs-$VERSION_ID.ext4 ]]; do VERSION_ID=$VERSION_ID-x; done
IMAGE=rootfs-$VERSION_ID.ext4
log "$RUNTIME: mkfs.ext4 -d ($FS_SIZE, content $((CONTENT_BYTES / 1048576)) MiB) -> $IMAGE"
truncate -s "$FS_SIZE" "$OUT_DIR/$IMAGE.tmp"
# lazy_*_init=0: initialise inode tables and journal now, so the guest's ext4lazyinit thread
# does not write them into every VM's overlay. -m 0: no root-reserved blocks in a sandbox.
mkfs.ext4 -q -F -L vmsan-root -m 0 -E lazy_itable_init=0,lazy_journal_init=0 \
    -d "$ROOT" "$OUT_DIR/$IMAGE.tmp" || die "mkfs.ext4 failed"
chmod 0444 "$OUT_DIR/$IMAGE.tmp"
mv -f "$OUT_DIR/$IMAGE.tmp" "$OUT_DIR/$IMAGE"

SIZE_BYTES=$(stat -c %s "$OUT_DIR/$IMAGE")
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
{
    printf '{"name":%s,"image":%s,"builtAt":%s,"sizeBytes":%s,"contentBytes":%s,"debianSuite":%s' \
        "$(json_str "$RUNTIME")" "$(json_str "$IMAGE")" "$(json_str "$BUILT_AT")" "$SIZE_BYTES" "$CONTENT_BYTES" "$(json_str "$SUITE")"
    [[ -n $VERSION ]] && printf ',"version":%s' "$(json_str "$VERSION")"
    printf '}\n'
} > "$OUT_DIR/rootfs-$VERSION_ID.json"

# --- publish -------------------------------------------------------------------------------
# An image from before versioned builds is a plain file named rootfs.ext4: it keeps its bytes under a
# version name (a hard link) before the name becomes the pointer. (`vmsan runtimes build` refuses to
# get here while a VM or snapshot still names the plain rootfs.ext4.)
if [[ -f $OUT_DIR/rootfs.ext4 && ! -L $OUT_DIR/rootfs.ext4 ]]; then
    legacy=rootfs-$(date -u -r "$OUT_DIR/rootfs.ext4" +%Y%m%dT%H%M%SZ)-unversioned.ext4
    ln -f "$OUT_DIR/rootfs.ext4" "$OUT_DIR/$legacy"
    log "$RUNTIME: the unversioned image is kept as $legacy"
fi
# The pointers: a rename of a symlink is atomic, so a create sees either the old or the new version.
ln -sfn "$IMAGE" "$OUT_DIR/rootfs.ext4.tmp" && mv -Tf "$OUT_DIR/rootfs.ext4.tmp" "$OUT_DIR/rootfs.ext4"
ln -sfn "rootfs-$VERSION_ID.json" "$OUT_DIR/manifest.json.tmp" && mv -Tf "$OUT_DIR/manifest.json.tmp" "$OUT_DIR/manifest.json"
echo "$STAMP" > "$OUT_DIR/.stamp"
log "$RUNTIME: done: $OUT_DIR/$IMAGE ($(du -k "$OUT_DIR/$IMAGE" | cut -f1) KiB allocated), now rootfs.ext4"
