#!/usr/bin/env bash
# Builds the base image of the node image from Debian packages, for machines
# whose Docker engine cannot pull images:
#
#   deploy/docker/base-image.sh [IMAGE]     (default anchor-base:bookworm)
#
# debootstrap lays out a minimal Debian 12 (bookworm) root file system from
# the mirror this machine's apt uses, apt-get installs the packages a node
# needs inside it with security updates applied, and `docker import` turns
# the tree into an image. It needs root (debootstrap and chroot) and installs
# debootstrap with apt-get when it is missing. An existing IMAGE is kept:
# remove it with `docker image rm` to rebuild.
#
# Environment: DEBIAN_MIRROR and DEBIAN_SECURITY_MIRROR override the mirrors
# read from apt's sources.
set -euo pipefail

image="${1:-anchor-base:bookworm}"
suite=bookworm
packages=(softhsm2 openssl ca-certificates)

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists; remove it with 'docker image rm $image' to rebuild"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "base-image.sh: debootstrap needs root: run it with sudo" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

# repo_uri prints the first configured apt repository serving SUITE main.
repo_uri() {
  apt-get indextargets --no-release-info \
    --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(IDENTIFIER)' |
    awk -v suite="$1" '$2 == suite && $3 == "main" && $4 == "Packages" { print $1; exit }'
}
mirror="${DEBIAN_MIRROR:-$(repo_uri "$suite")}"
mirror="${mirror:-http://deb.debian.org/debian/}"
security="${DEBIAN_SECURITY_MIRROR:-$(repo_uri "$suite-security")}"

work="$(mktemp -d /var/tmp/anchor-base.XXXXXX)"
rootfs="$work/rootfs"
log="$work/build.log"
cleanup() {
  if mountpoint -q "$rootfs/proc"; then
    umount -l "$rootfs/proc"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "base-image.sh: $1 failed; last lines of its output:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

echo "debootstrap $suite from $mirror into $rootfs"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$log" 2>&1 || fail debootstrap

{
  echo "deb $mirror $suite main"
  echo "deb $mirror $suite-updates main"
  if [ -n "$security" ]; then
    echo "deb $security $suite-security main"
  fi
} >"$rootfs/etc/apt/sources.list"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"

echo "installing ${packages[*]} with updates"
# APT::Sandbox::User=root: apt cannot hand the downloads to its _apt user
# in this chroot, so it downloads as root.
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -euc "
  apt='apt-get -q -y -o APT::Sandbox::User=root'
  \$apt update
  \$apt upgrade
  \$apt install --no-install-recommends ${packages[*]}
  \$apt clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
" >"$log" 2>&1 || fail "apt-get in the chroot"
umount -l "$rootfs/proc"
# The engine provides resolv.conf to each container.
: >"$rootfs/etc/resolv.conf"

echo "importing $rootfs as $image"
tar -C "$rootfs" --numeric-owner -c . |
  docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
docker image ls "$image"
