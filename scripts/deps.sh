#!/usr/bin/env bash
# Installs the system packages a make target needs and the machine lacks,
# before anything compiles. The workspace itself needs none (its protos,
# etcd's included, are compiled with protox): only the node image, the
# peer stores and the timeline page's browser test do.
#
# Usage: scripts/deps.sh ROLE...   (roles, each a reason for packages)
#   image            debootstrap: the node image's Debian root filesystem
#   image-if-docker  the same, but only when a Docker engine answers
#   peers            etcd-server, redis-server: the peer stores as local
#                    processes (installed, never started as services)
#   browser          chromium: the test that renders timeline.html headless
#   valgrind         valgrind: make bench-instructions counts instructions
#                    with its callgrind tool
#   lazyfs           fuse3: fusermount3, with which dynamo-lazyfs mounts when
#                    not root and clears stale mounts (root mounts directly)
#   ssh-test         debootstrap (the ssh-host image) and openssh-client
#                    (ssh-keygen makes the test's key pair)
#
# It says exactly what it installs. As root it runs apt-get itself;
# otherwise through sudo (without a prompt when sudo allows it, with one
# only on a terminal). Where it cannot install (no apt-get, no root, no
# usable sudo), it stops with one line naming the packages and exit code 1.
set -euo pipefail

want=()
for role in "$@"; do
    case "$role" in
        image) want+=(debootstrap) ;;
        image-if-docker) if docker info >/dev/null 2>&1; then want+=(debootstrap); fi ;;
        peers) want+=(etcd-server redis-server) ;;
        browser) want+=(chromium) ;;
        valgrind) want+=(valgrind) ;;
        lazyfs) want+=(fuse3) ;;
        ssh-test) want+=(debootstrap openssh-client) ;;
        *) echo "deps: unknown role '$role' (image, image-if-docker, peers, browser, valgrind, lazyfs, ssh-test)" >&2; exit 2 ;;
    esac
done

# A package counts as present when dpkg says it is installed; on a machine
# without dpkg, when the program it provides is on PATH (or in sbin).
installed() {
    local pkg="$1" prog
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'
        return
    fi
    case "$pkg" in etcd-server) prog=etcd ;; fuse3) prog=fusermount3 ;; openssh-client) prog=ssh-keygen ;; *) prog="$pkg" ;; esac
    PATH="$PATH:/usr/sbin:/sbin" command -v "$prog" >/dev/null 2>&1
}

missing=()
for pkg in "${want[@]+"${want[@]}"}"; do
    installed "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

list="${missing[*]}"
cannot() {
    echo "deps: missing Debian packages: $list ($1); install them with: apt-get install -y $list" >&2
    exit 1
}
command -v apt-get >/dev/null 2>&1 || cannot "no apt-get on this machine"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
    as_root=(sudo)
else
    cannot "not root, and no sudo that can run without a terminal"
fi

echo "deps: installing $list with ${as_root[*]:-(as root)} apt-get" >&2
"${as_root[@]+"${as_root[@]}"}" apt-get update -qq
"${as_root[@]+"${as_root[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
    installed "$pkg" || { echo "deps: apt-get finished but $pkg is still not installed" >&2; exit 1; }
done
echo "deps: installed $list" >&2
