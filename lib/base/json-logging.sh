# shellcheck shell=sh disable=SC3043
# json-logging.sh: the JSON side of every log call, through tally-log.
#
# Public functions:
#   log_json <level> <message> [key=value...]   one JSON event
#
# With ENABLE_JSON_LOGGING=true, every log_* call, feature start, command
# (each output line and its end) and feature end also becomes one JSON line
# in BUILD_LOG_DIR/json/<feature>.jsonl (BUILD_LOG_DIR/json/build.jsonl
# outside a feature), and each finished feature one line in
# BUILD_LOG_DIR/json/build-summary.jsonl. The event schema is
# docs/reference/json-log-schema.md.
#
# Globals read: ENABLE_JSON_LOGGING, BUILD_LOG_DIR, BUILD_CORRELATION_ID,
# TRACEPARENT, OTEL_ENABLED, TALLY_REDACT, TALLY_HOME. Every event carries
# trace_id and span_id: with OTEL_ENABLED=true those of the span it belongs
# to (logging.sh passes the context in effect to tally-log), else those of
# a valid TRACEPARENT. This file needs logging.sh (it
# holds the tally-log lookup and its awk fallback) and sources it when it
# is not loaded yet. Without tally-log the awk fallback writes the same
# events (tested equal apart from timestamps).
# Reference: docs/reference/logging.md

[ -n "${_tally_json_loaded-}" ] && return 0
_tally_json_loaded=1

if [ -z "${_tally_logging_loaded-}" ] && [ -r "${TALLY_HOME:-/opt/tally}/lib/base/logging.sh" ]; then
	# shellcheck source=lib/base/logging.sh
	. "${TALLY_HOME:-/opt/tally}/lib/base/logging.sh"
fi

# _tally_json_on: returns 0 when JSON logging is enabled.
_tally_json_on() {
	case ${ENABLE_JSON_LOGGING-} in
	true | TRUE | True | 1 | yes | YES) return 0 ;;
	esac
	return 1
}

# _tally_json_cid: sets _tally_cid to the build's correlation id:
# BUILD_CORRELATION_ID when set; else the id stored by an earlier RUN step
# in BUILD_LOG_DIR/.correlation-id; else a new "build-<UTC time>-<12 hex
# digits>" (from tally-log --new-correlation-id, one static process; without
# tally-log from date, od and tr on /dev/urandom), stored there for the
# later steps (the first writer wins a race: the file is created with
# noclobber).
_tally_json_cid() {
	local file='' hex='' id=''
	if [ -n "${BUILD_CORRELATION_ID-}" ]; then
		_tally_cid=$BUILD_CORRELATION_ID
		return 0
	fi
	[ -n "${_tally_cid-}" ] && return 0
	file="${BUILD_LOG_DIR:-/var/log/container-build}/.correlation-id"
	if [ ! -s "$file" ]; then
		_tally_tool
		[ -z "$_tally_tlog" ] || id=$("$_tally_tlog" --new-correlation-id 2>/dev/null) || id=
		case $id in
		build-????????T??????Z-????????????) ;;
		*)
			hex=$(od -An -N6 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')
			id="build-$(date -u +%Y%m%dT%H%M%SZ)-${hex:-$$}"
			;;
		esac
		[ -d "${file%/*}" ] || mkdir -p "${file%/*}" 2>/dev/null || :
		(set -C && printf '%s\n' "$id" >"$file") 2>/dev/null || :
	fi
	{ read -r _tally_cid; } 2>/dev/null <"$file" || _tally_cid="build-unknown-$$"
}

# _tally_json_target: when JSON logging is on, sets _tally_cid and
# _tally_jfile to the open feature's (or the build's) JSON log and creates
# its directory; else sets _tally_jfile to "". Called by logging.sh.
_tally_json_target() {
	_tally_jfile=
	_tally_json_on || return 0
	_tally_json_cid
	_tally_jfile="${BUILD_LOG_DIR:-/var/log/container-build}/json"
	[ -d "$_tally_jfile" ] || mkdir -p "$_tally_jfile" 2>/dev/null || :
	_tally_jfile="$_tally_jfile/${_tally_feature:-build}.jsonl"
}

# Usage: log_json <level> <message> [key=value...]
# Writes one JSON event (level DEBUG|INFO|WARN|ERROR|FATAL) with the build's
# correlation id and the open feature, the key=value pairs in "metadata"
# (values redacted; a key that names a secret gets "[REDACTED]"), to the
# feature's (or the build's) JSON log. Does nothing unless
# ENABLE_JSON_LOGGING=true. Returns 0 (a write failure is reported on
# stderr), or 100 when the level or a pair is malformed.
# Example: log_json INFO "cache restored" cache=pip size_bytes=1234
log_json() {
	local level="${1-}" msg="${2-}" kv=''
	case $level in
	DEBUG | INFO | WARN | ERROR | FATAL) ;;
	*)
		printf '%s\n' "log_json: usage: log_json DEBUG|INFO|WARN|ERROR|FATAL <message> [key=value...]" >&2
		return 100
		;;
	esac
	shift
	[ $# -eq 0 ] || shift
	for kv in "$@"; do
		case $kv in
		?*=*) ;;
		*)
			printf '%s\n' "log_json: not a key=value pair: $kv" >&2
			return 100
			;;
		esac
	done
	_tally_json_on || return 0
	# Each pair becomes --meta pair; rebuild "$@" in place (no arrays in sh).
	for kv in "$@"; do
		set -- "$@" --meta "$kv"
		shift
	done
	_tally_emit j "$level" "$msg" "$@"
}
