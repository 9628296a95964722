#!/usr/bin/env bash
# Builds the `dynamo-node` Docker image from nothing, without a registry.
#
# Why this shape: the Docker engine here cannot pull anything, so there is no
# base image to build FROM. Instead we make a Debian root filesystem with
# debootstrap (iptables for partitions, iproute2 for tc netem, libfaketime for
# clock skew, procps for debugging, etcd-server and redis-server as peer
# stores, fuse3 for the lazy filesystem of power-loss runs), strip what a
# container never reads, keep it as a tar in a cache keyed by the recipe,
# append the node binary, the link proxy (`dynamo-linkproxy`, which performs
# link faults where the kernel has no sch_netem) and the lazy filesystem
# (`dynamo-lazyfs`, the power-loss nemesis) and hand the result to `docker import`. No Dockerfile, no builder, no network access
# beyond the Debian mirror apt already uses (and only on a cold cache).
#
# Layers of caching:
#   1. rootfs-<recipe-key>.tar in $DWB_CACHE_DIR: rebuilt only when the recipe
#      string below changes (suite, packages, strip steps).
#   2. the image tag dynamo-node:<12 hex of sha256(recipe key + binaries' sha)>:
#      `docker import` is skipped when that tag already exists.
#
# Outputs: the tag (also tagged dynamo-node:latest) on stdout's last line and
# in target/dynamo-node.image.
#
# Environment:
#   DWB_CACHE_DIR        rootfs cache (default ~/.cache/dynamo-workbench)
#   DWB_DEBIAN_MIRROR    Debian mirror (default: the one apt uses, else deb.debian.org)
#   DWB_NODE_BIN         use this binary instead of building dynamo-node
#                        (`make image` passes the one `make build` made)
#   DWB_LINKPROXY_BIN    likewise for dynamo-linkproxy
#   DWB_LAZYFS_BIN       likewise for dynamo-lazyfs
#   DWB_SKIP_VERIFY=1    skip the in-image tool checks
#   DWB_KEEP_OLD_IMAGES=1  keep older dynamo-node:<hash> tags (default: untag those
#                        no registered checkout names; see named_tags)
#   DWB_IMAGE_VARIANT=ssh-host  the same image with openssh-server and sudo added, as
#                        dynamo-ssh-host:<hash> (tag in target/dynamo-ssh-host.image):
#                        the test hosts of the SSH backend (scripts/ssh-test.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${DWB_CACHE_DIR:-$HOME/.cache/dynamo-workbench}"
LABEL="dynamo-workbench"
START=$SECONDS

SUITE="bookworm"
# etcd-server and redis-server are the peer stores the workbench compares
# against (issue 7); they ride in the same image so one debootstrap serves
# all three, and a peer container just picks another entrypoint.
PACKAGES="iptables,iproute2,libfaketime,faketime,ca-certificates,procps,etcd-server,redis-server,fuse3"
# The image's name; the ssh-host variant adds an SSH server, so that the SSH
# backend can be tested against containers that it reaches only over SSH,
# and sudo, for its logins other than root.
REPO="dynamo-node"
case "${DWB_IMAGE_VARIANT:-node}" in
    node) ;;
    ssh-host) PACKAGES="$PACKAGES,openssh-server,sudo"; REPO="dynamo-ssh-host" ;;
    *) echo "[image] error: DWB_IMAGE_VARIANT must be node or ssh-host" >&2; exit 1 ;;
esac
# Globs relative to the rootfs; expanded only inside it (see strip_rootfs).
STRIP_PATTERNS='var/cache/apt/archives/*.deb var/lib/apt/lists/* usr/share/doc usr/share/locale usr/share/man usr/share/info'
# Everything that decides the rootfs contents; bump "v1" when changing steps.
RECIPE="v1|debootstrap --variant=minbase|${SUITE}|${PACKAGES}|strip:${STRIP_PATTERNS}"
WORK_DIRS=()    # temp dirs removed on exit, whatever happens
ROOTFS_BUILD="" # an unfinished rootfs, removed on exit (if nothing is mounted in it)
cleanup() {
    local d
    for d in "${WORK_DIRS[@]}"; do rm -rf "$d"; done
    if [ -n "$ROOTFS_BUILD" ] && [ -d "$ROOTFS_BUILD" ]; then safe_rm_tree "$ROOTFS_BUILD"; fi
}
trap cleanup EXIT

log() { echo "[image] $*" >&2; }
die() { echo "[image] error: $*" >&2; exit 1; }
sha256_of_string() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The mirror apt already uses: deb822 .sources first, then sources.list.
detect_mirror() {
    if [ -n "${DWB_DEBIAN_MIRROR:-}" ]; then echo "$DWB_DEBIAN_MIRROR"; return; fi
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | tr ' ' '\n' \
            | grep -E '^https?://.*/debian/?$' | head -n1 || true)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' \
            /etc/apt/sources.list || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# True when a directory is a finished debootstrap holding every package we need.
rootfs_dir_matches() {
    local dir="$1" status="$1/var/lib/dpkg/status" pkg
    [ -f "$status" ] || return 1
    [ ! -e "$dir/debootstrap" ] || return 1 # left behind only by an unfinished run
    for pkg in ${PACKAGES//,/ }; do
        grep -qx "Package: $pkg" "$status" || return 1
    done
}

# Refuse to delete a tree that still has something mounted under it (/proc...).
safe_rm_tree() {
    local dir; dir="$(realpath "$1")"
    if awk -v d="$dir/" 'index($2"/", d) == 1 { found=1 } END { exit !found }' /proc/mounts; then
        die "something is still mounted under $dir; not removing it"
    fi
    as_root rm -rf "$dir"
}

# Deletes what a container never reads; the globs expand inside the rootfs.
strip_rootfs() {
    local dir="$1" before after
    # The tree is root's (debootstrap ran as root): measure it as root too.
    before="$(as_root du -sm "$dir" | cut -f1)"
    # shellcheck disable=SC2086 # word splitting and globbing are the point
    (cd "$dir" && shopt -s nullglob && set -- $STRIP_PATTERNS && { [ $# -eq 0 ] || as_root rm -rf -- "$@"; })
    after="$(as_root du -sm "$dir" | cut -f1)"
    log "stripped the rootfs from ${before} MB to ${after} MB"
}

build_rootfs_tar() {
    local out="$1" dir="$CACHE/rootfs-build.$$"
    ROOTFS_BUILD="$dir"
    if [ -d "$CACHE/rootfs-tmp" ] && rootfs_dir_matches "$CACHE/rootfs-tmp"; then
        log "reusing the finished debootstrap in $CACHE/rootfs-tmp"
        mv "$CACHE/rootfs-tmp" "$dir"
    else
        # Debian puts it in /usr/sbin, which is on root's PATH but not on a
        # user's (who runs it through sudo): look there too, and run it by path.
        local debootstrap; debootstrap="$(PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap)" \
            || die "debootstrap is not installed (apt-get install debootstrap)"
        local mirror; mirror="$(detect_mirror)"
        log "debootstrap $SUITE from $mirror (takes ~80 s)"
        as_root "$debootstrap" --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$mirror" >&2
    fi
    strip_rootfs "$dir"
    as_root tar --numeric-owner -C "$dir" -cf "$out.tmp" .
    mv "$out.tmp" "$out"
    safe_rm_tree "$dir"
    ROOTFS_BUILD=""
}

# Prints the node binary's path, then the link proxy's, then the lazy
# filesystem's: built from this workspace unless DWB_NODE_BIN /
# DWB_LINKPROXY_BIN / DWB_LAZYFS_BIN name them.
build_binaries() {
    local packages=()
    [ -n "${DWB_NODE_BIN:-}" ] && log "using DWB_NODE_BIN=$DWB_NODE_BIN" || packages+=(-p dynamo-node)
    [ -n "${DWB_LINKPROXY_BIN:-}" ] && log "using DWB_LINKPROXY_BIN=$DWB_LINKPROXY_BIN" || packages+=(-p linkproxy)
    [ -n "${DWB_LAZYFS_BIN:-}" ] && log "using DWB_LAZYFS_BIN=$DWB_LAZYFS_BIN" || packages+=(-p dynamo-lazyfs)
    if [ "${#packages[@]}" -gt 0 ]; then
        (cd "$ROOT" && cargo build --release "${packages[@]}" >&2)
    fi
    echo "${DWB_NODE_BIN:-$ROOT/target/release/dynamo-node}"
    echo "${DWB_LINKPROXY_BIN:-$ROOT/target/release/dynamo-linkproxy}"
    echo "${DWB_LAZYFS_BIN:-$ROOT/target/release/dynamo-lazyfs}"
}

import_image() {
    local rootfs_tar="$1" bin="$2" proxy="$3" lazyfs="$4" tag="$5" work
    work="$(mktemp -d "$CACHE/import.XXXXXX")"
    WORK_DIRS+=("$work")
    cp "$rootfs_tar" "$work/image.tar"
    mkdir -p "$work/stage/usr/local/bin"
    install -m 0755 "$bin" "$work/stage/usr/local/bin/dynamo-node"
    install -m 0755 "$proxy" "$work/stage/usr/local/bin/dynamo-linkproxy"
    install -m 0755 "$lazyfs" "$work/stage/usr/local/bin/dynamo-lazyfs"
    tar --numeric-owner --owner=0 --group=0 -C "$work/stage" -rf "$work/image.tar" \
        ./usr/local/bin/dynamo-node ./usr/local/bin/dynamo-linkproxy ./usr/local/bin/dynamo-lazyfs
    docker import \
        --change 'ENTRYPOINT ["/usr/local/bin/dynamo-node"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL dynamo-workbench.image=$REPO" \
        "$work/image.tar" "$tag" >&2
    rm -rf "$work"
}

# Runs a tool inside the image in a throwaway, network-less, labeled container.
verify_in_image() {
    local tag="$1"
    docker run --rm --network none --label "$LABEL=1" --entrypoint iptables "$tag" --version >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint tc "$tag" -V >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint ls "$tag" \
        /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint etcd "$tag" --version >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint redis-server "$tag" --version >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint dynamo-linkproxy "$tag" --version >&2
    docker run --rm --network none --label "$LABEL=1" --entrypoint dynamo-lazyfs "$tag" --help >/dev/null
    docker run --rm --network none --label "$LABEL=1" --entrypoint fusermount3 "$tag" -V >&2
    if [ "$REPO" = dynamo-ssh-host ]; then
        docker run --rm --network none --label "$LABEL=1" --entrypoint ls "$tag" /usr/sbin/sshd /usr/bin/sudo >&2
    fi
}

# Every checkout that built an image registers its root here, so a build in
# one clone never untags the image another clone's target/dynamo-node.image
# still names (that clone's next campaign would find it missing).
CHECKOUTS="$CACHE/checkouts"
register_checkout() {
    mkdir -p "$CHECKOUTS"
    printf '%s\n' "$ROOT" > "$CHECKOUTS/$(sha256_of_string "$ROOT" | cut -c1-16)"
}

# The tags registered checkouts name now; forgets checkouts that are gone.
named_tags() {
    local entry root
    [ -d "$CHECKOUTS" ] || return 0
    for entry in "$CHECKOUTS"/*; do
        [ -f "$entry" ] || continue
        root="$(cat "$entry")"
        if [ -f "$root/target/$REPO.image" ]; then
            tr -d '[:space:]' < "$root/target/$REPO.image"; echo
        else
            rm -f "$entry"
        fi
    done
}

# Untags older dynamo-node:<hash> images (~190 MB each) so rebuilds do not
# fill the disk. Never one a registered checkout names (see named_tags); the
# newest KEEP_IMAGES tags survive too, for a clone that built before checkouts
# were registered. An image a container still uses is kept too (rmi refuses).
KEEP_IMAGES=3
remove_old_images() {
    local keep="$1" old seen=0 named
    [ "${DWB_KEEP_OLD_IMAGES:-0}" = 1 ] && return
    named="$(named_tags)"
    # `docker image ls` lists newest first.
    for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO"); do
        case "$old" in "$keep" | "$REPO":latest | *"<none>"*) continue ;; esac
        seen=$((seen + 1))
        [ "$seen" -lt "$KEEP_IMAGES" ] && continue
        if grep -qxF "$old" <<< "$named"; then
            log "keeping $old: a checkout's target/$REPO.image names it"
            continue
        fi
        docker rmi "$old" >/dev/null 2>&1 && log "removed the old image $old" || true
    done
}

main() {
    mkdir -p "$CACHE" "$ROOT/target"
    exec 9>"$CACHE/.build.lock"
    flock 9 # one build at a time per cache

    local binaries bin proxy lazyfs
    binaries="$(build_binaries)"
    bin="$(sed -n 1p <<< "$binaries")"
    proxy="$(sed -n 2p <<< "$binaries")"
    lazyfs="$(sed -n 3p <<< "$binaries")"
    [ -x "$bin" ] || die "node binary $bin is missing or not executable"
    [ -x "$proxy" ] || die "link proxy binary $proxy is missing or not executable"
    [ -x "$lazyfs" ] || die "lazy filesystem binary $lazyfs is missing or not executable"

    local key; key="$(sha256_of_string "$RECIPE")"
    local rootfs_tar="$CACHE/rootfs-$key.tar"
    if [ -f "$rootfs_tar" ]; then
        log "rootfs cached: $rootfs_tar"
    else
        build_rootfs_tar "$rootfs_tar"
    fi

    local bin_sha; bin_sha="$(cat "$bin" "$proxy" "$lazyfs" | sha256sum | cut -d' ' -f1)"
    local tag; tag="$REPO:$(sha256_of_string "$key$bin_sha" | cut -c1-12)"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "image $tag already exists"
    else
        import_image "$rootfs_tar" "$bin" "$proxy" "$lazyfs" "$tag"
    fi
    docker tag "$tag" "$REPO":latest
    [ "${DWB_SKIP_VERIFY:-0}" = 1 ] || verify_in_image "$tag"

    echo "$tag" > "$ROOT/target/$REPO.image"
    register_checkout
    remove_old_images "$tag"
    log "done in $((SECONDS - START)) s; size $(docker image inspect -f '{{.Size}}' "$tag") bytes"
    echo "$tag"
}

main "$@"
