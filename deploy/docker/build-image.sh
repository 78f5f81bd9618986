#!/usr/bin/env bash
# Builds the node image that docker-compose.yml runs (make docker-image):
#
#   1. picks the base image: $ANCHOR_BASE_IMAGE when set, else
#      debian:bookworm-slim or anchor-base:bookworm when present, else
#      debian:bookworm-slim when it can be pulled, else anchor-base:bookworm,
#      built from Debian packages by base-image.sh;
#   2. builds anchor-node, anchorctl and anchor-setup on this host with cgo
#      (the PKCS#11 bindings need it) into bin/docker/;
#   3. builds $ANCHOR_IMAGE (default anchor-node:local) from
#      deploy/docker/Dockerfile and checks that the binaries find every
#      shared library version they need in it.
#
# The binaries link against the host's glibc, so it must not be newer than
# the image's (2.36 in Debian 12). Step 3 reports a mismatch.
# It prints the base image it used on its last line, as
# ANCHOR_BASE_IMAGE=NAME.
set -euo pipefail
cd "$(dirname "$0")/../.."

image="${ANCHOR_IMAGE:-anchor-node:local}"
local_base=anchor-base:bookworm
default_base=debian:bookworm-slim
go="${GO:-go}"

base="${ANCHOR_BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if docker image inspect "$default_base" >/dev/null 2>&1; then
    base="$default_base"
  elif docker image inspect "$local_base" >/dev/null 2>&1; then
    base="$local_base"
  elif timeout 60 docker pull -q "$default_base" >/dev/null 2>&1; then
    base="$default_base"
  else
    echo "cannot pull $default_base: building $local_base from Debian packages" >&2
    if [ "$(id -u)" -eq 0 ]; then
      deploy/docker/base-image.sh "$local_base" >&2
    else
      sudo deploy/docker/base-image.sh "$local_base" >&2
    fi
    base="$local_base"
  fi
fi

echo "building anchor-node, anchorctl and anchor-setup into bin/docker/" >&2
mkdir -p bin/docker
for cmd in anchor-node anchorctl anchor-setup; do
  CGO_ENABLED=1 "$go" build -trimpath -o "bin/docker/$cmd" "./cmd/$cmd"
done

echo "building $image on $base" >&2
previous="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
docker build -q -f deploy/docker/Dockerfile --build-arg "ANCHOR_BASE_IMAGE=$base" \
  -t "$image" . >/dev/null
# Remove the image this build replaced, unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi

missing="$(docker run --rm --entrypoint sh "$image" -c \
  'for b in anchor-node anchorctl anchor-setup; do ldd "/usr/local/bin/$b" | grep "not found" || true; done')"
if [ -n "$missing" ]; then
  echo "build-image.sh: the host-built binaries need libraries that $image lacks:" >&2
  echo "$missing" >&2
  echo "build on a host whose glibc is not newer than the image's (Debian 12)" >&2
  exit 1
fi
echo "ANCHOR_BASE_IMAGE=$base"
