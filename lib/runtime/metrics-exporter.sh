#!/bin/sh
# metrics-exporter: serves the collected build and healthcheck metrics for
# Prometheus to scrape, optionally beside the container's application.
#
# Usage: metrics-exporter [--listen [ADDR]:PORT] [--dir DIR] [-- APP [ARG...]]
#        metrics-exporter --help
#
# Starts tally-httpd on --listen (default ":$METRICS_PORT", METRICS_PORT
# default 9090) over DIR (TALLY_METRICS_DIR, default
# /var/lib/container-build/metrics): GET /metrics, /healthz.
# Without APP it becomes tally-httpd (exec). With "-- APP [ARG...]" it runs
# the exporter in the background and APP in the foreground, forwards TERM,
# INT and HUP to APP, stops the exporter when APP ends and exits with APP's
# exit status. With METRICS_ENABLED=false the exporter is not started (APP,
# if given, still runs).
#
# tally-httpd is looked up in $TALLY_HOME/bin (default /opt/tally), beside
# this command, then on PATH.
#
# Exit status: APP's status; else tally-httpd's (0 on SIGTERM, 111 when it
# cannot listen); 100 usage error; 111 tally-httpd not found.
# Reference: docs/reference/metrics-exporter.md
set -u

prog=metrics-exporter
usage="usage: metrics-exporter [--listen [ADDR]:PORT] [--dir DIR] [-- APP [ARG...]]"
listen=":${METRICS_PORT:-9090}"
dir=${TALLY_METRICS_DIR:-/var/lib/container-build/metrics}

while [ $# -gt 0 ]; do
	case $1 in
	--help | -h)
		sed -n '2,/^set -u/{ /^set -u/d; s/^# \{0,1\}//; p; }' "$0"
		exit 0
		;;
	--listen | --dir)
		[ $# -ge 2 ] || { printf '%s: %s\n' "$prog" "$usage" >&2; exit 100; }
		if [ "$1" = --listen ]; then listen=$2; else dir=$2; fi
		shift 2
		;;
	--)
		shift
		[ $# -ge 1 ] || { printf '%s: %s\n' "$prog" "$usage" >&2; exit 100; }
		break
		;;
	*)
		printf '%s: unknown option: %s\n%s: %s\n' "$prog" "$1" "$prog" "$usage" >&2
		exit 100
		;;
	esac
done

httpd=
here=${0%/*}
for cand in "${TALLY_HOME:-/opt/tally}/bin/tally-httpd" "$here/tally-httpd" "$here/../../bin/tally-httpd"; do
	[ -x "$cand" ] && { httpd=$cand; break; }
done
[ -n "$httpd" ] || httpd=$(command -v tally-httpd 2>/dev/null)

enabled=1
case ${METRICS_ENABLED-} in false | FALSE | 0 | no) enabled= ;; esac

if [ -n "$enabled" ] && [ -z "$httpd" ]; then
	printf '%s: fatal: tally-httpd not found in %s/bin, beside this command or on PATH\n' \
		"$prog" "${TALLY_HOME:-/opt/tally}" >&2
	exit 111
fi

if [ $# -eq 0 ]; then
	if [ -z "$enabled" ]; then
		printf '%s: METRICS_ENABLED=false: nothing to serve\n' "$prog" >&2
		exit 0
	fi
	exec "$httpd" --listen "$listen" --dir "$dir"
fi

# Supervise: the exporter in the background, APP in the foreground.
hpid=
if [ -n "$enabled" ]; then
	"$httpd" --listen "$listen" --dir "$dir" &
	hpid=$!
fi
"$@" &
apid=$!
for sig in TERM INT HUP; do
	# shellcheck disable=SC2064
	trap "kill -$sig $apid 2>/dev/null" "$sig"
done
# wait returns early (status > 128) when a trapped signal arrives; wait
# again until APP has really ended.
while :; do
	wait "$apid"
	rc=$?
	kill -0 "$apid" 2>/dev/null || break
done
[ -n "$hpid" ] && kill -TERM "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
exit "$rc"
