#!/bin/sh
# create-token.sh creates a SoftHSM2 token for one Anchor node, laid out as the Go
# function softhsmtest.NewToken lays it out, for operators and container images:
#
#   DIR/softhsm2.conf   SoftHSM2 configuration (directories.tokendir = DIR/tokens)
#   DIR/tokens/         token storage
#   DIR/label           token label
#   DIR/pin             user PIN, 32 random hex digits (mode 0600): hsm.pin_file
#   DIR/so-pin          security officer PIN, 32 random hex digits (mode 0600)
#
# Usage: create-token.sh DIR LABEL
#
# LABEL has 1 to 32 characters from A-Z a-z 0-9 . _ -. DIR must not contain a token
# yet. On success the script prints the "hsm" section of the node configuration. The
# node process needs SOFTHSM2_CONF=DIR/softhsm2.conf in its environment.
#
# NOTE: softhsm2-util 2.6.1 reads PINs only from its arguments or a terminal, so other
# local users can see both PINs in the process list while it runs. Run the script where
# no untrusted user can list processes, for example while building a container image.
set -eu

usage() {
	echo "usage: $0 DIR LABEL" >&2
	exit 2
}

[ $# -eq 2 ] || usage
dir=$1
label=$2

case $label in
'' | *[!A-Za-z0-9._-]*)
	echo "$0: invalid token label '$label': use 1 to 32 characters from A-Z a-z 0-9 . _ -" >&2
	exit 2
	;;
esac
if [ ${#label} -gt 32 ]; then
	echo "$0: token label '$label' is longer than 32 characters" >&2
	exit 2
fi

# The module paths softhsmtest.ModulePath searches, in the same order.
module=
for path in /usr/lib/softhsm/libsofthsm2.so \
	/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
	/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
	/usr/local/lib/softhsm/libsofthsm2.so; do
	if [ -f "$path" ]; then
		module=$path
		break
	fi
done
if [ -z "$module" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
	echo "$0: SoftHSM2 not found: install the softhsm2 package (apt-get install softhsm2)" >&2
	exit 1
fi
if [ -e "$dir/label" ] || [ -e "$dir/pin" ]; then
	echo "$0: $dir already contains a token: choose an empty directory" >&2
	exit 1
fi

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)

random_pin() {
	od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
}
pin=$(random_pin)
so_pin=$(random_pin)

cat >"$dir/softhsm2.conf" <<CONF
# Written by anchor softhsm-test/create-token.sh.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

if ! out=$(SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
	--label "$label" --pin "$pin" --so-pin "$so_pin" 2>&1); then
	echo "$0: softhsm2-util --init-token --label $label failed: $out" >&2
	exit 1
fi

printf '%s\n' "$pin" >"$dir/pin"
printf '%s\n' "$so_pin" >"$dir/so-pin"
printf '%s\n' "$label" >"$dir/label"

cat <<JSON
"hsm": {
  "module_path": "$module",
  "token_label": "$label",
  "pin_file": "$dir/pin"
}
JSON
