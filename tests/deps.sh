#!/bin/sh
# deps.sh: makes sure what `make demo` or `make test` needs is installed.
#
# Usage: sh tests/deps.sh demo|test|bench
#
# Checks for each needed command (and the bats helper libraries). When some
# are missing: as root with apt-get, installs their Debian packages
# (`apt-get update` first); otherwise prints the exact command to run and
# exits 1. Exits 0 when everything is present, 100 on a usage error.
set -u

mode=${1-}
case $mode in
demo | test | bench) ;;
*)
	printf '%s\n' "deps.sh: usage: sh tests/deps.sh demo|test|bench" >&2
	exit 100
	;;
esac

missing=
# need COMMAND PACKAGE: records PACKAGE when COMMAND is not on PATH.
need() {
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
# need_file FILE PACKAGE: records PACKAGE when FILE does not exist.
need_file() {
	[ -e "$1" ] || missing="$missing $2"
}

need cc build-essential
need make build-essential
need ar binutils
need musl-gcc musl-tools
need_file /usr/include/stdio.h libc6-dev
need curl curl
if [ "$mode" != demo ]; then
	need bats bats
	need_file /usr/lib/bats/bats-support/load.bash bats-support
	need_file /usr/lib/bats/bats-assert/load.bash bats-assert
	need shellcheck shellcheck
	need dash dash
	need busybox busybox
	need socat socat
	need jq jq
	need promtool prometheus
	need prometheus prometheus
	need python3 python3
	need clang clang
	# libFuzzer's runtime, whatever the clang version.
	set -- /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a
	need_file "$1" libclang-rt-14-dev
	need prometheus-node-exporter prometheus-node-exporter
	need readelf binutils
	need flock util-linux
	need unshare util-linux
	need ps procps
	need amtool prometheus-alertmanager
	need node nodejs
	need npm npm
	need buildah buildah
	need debootstrap debootstrap
	need valgrind valgrind
	need_file /usr/lib/python3/dist-packages/yaml/__init__.py python3-yaml
fi
if [ "$mode" = bench ]; then
	need wrk wrk
	need lighttpd lighttpd
	need jo jo
	need hyperfine hyperfine
fi

[ -n "$missing" ] || exit 0

# One package each, in a stable order.
# shellcheck disable=SC2086
pkgs=$(printf '%s\n' $missing | sort -u | tr '\n' ' ')
pkgs=${pkgs% }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	printf 'tally: installing %s\n' "$pkgs" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || exit 111
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $pkgs >&2 || exit 111
	exit 0
fi

printf 'tally: missing packages for "make %s": %s\n' "$mode" "$pkgs" >&2
printf 'tally: install them with:\n  sudo apt-get update && sudo apt-get install -y %s\n' "$pkgs" >&2
exit 1
