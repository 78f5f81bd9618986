#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing Anchor need,
# when they are missing. Safe to run repeatedly.
set -euo pipefail

need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v certbot >/dev/null 2>&1 || need+=(certbot)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages: ${need[*]}; run as root or install sudo" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
