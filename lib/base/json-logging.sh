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
# TRACEPARENT (read by tally-log), TALLY_HOME. Without tally-log on
# $TALLY_HOME/bin or PATH, events are written by awk instead (slower; see
# the reference for what differs).
# Reference: docs/reference/logging.md

[ -n "${_tally_json_loaded-}" ] && return 0
_tally_json_loaded=1

# The correlation id of this build, once known (see _tally_json_cid).
_tally_cid=
# Feature state, owned by logging.sh; defaults for when this file is
# sourced alone.
_tally_feature=${_tally_feature-}
_tally_feature_version=${_tally_feature_version-}
_tally_feature_commands=${_tally_feature_commands-0}
_tally_feature_errors=${_tally_feature_errors-0}
_tally_feature_warnings=${_tally_feature_warnings-0}

# _tally_json_on: returns 0 when JSON logging is enabled.
_tally_json_on() {
	case ${ENABLE_JSON_LOGGING-} in
	true | TRUE | True | 1 | yes | YES) return 0 ;;
	esac
	return 1
}

# _tally_json_dir: sets _tally_jdir to BUILD_LOG_DIR/json and creates it.
_tally_json_dir() {
	_tally_jdir="${BUILD_LOG_DIR:-/var/log/container-build}/json"
	[ -d "$_tally_jdir" ] || mkdir -p "$_tally_jdir" 2>/dev/null || :
}

# _tally_json_tool: sets _tally_tlog to the tally-log to run ($TALLY_HOME/bin
# first, then PATH), or to "" when there is none.
_tally_json_tool() {
	if [ -x "${TALLY_HOME:-/opt/tally}/bin/tally-log" ]; then
		_tally_tlog="${TALLY_HOME:-/opt/tally}/bin/tally-log"
	elif command -v tally-log >/dev/null 2>&1; then
		_tally_tlog=tally-log
	else
		_tally_tlog=
	fi
}

# _tally_json_cid: sets _tally_cid to the build's correlation id:
# BUILD_CORRELATION_ID when set; else the id stored by an earlier RUN step
# in BUILD_LOG_DIR/.correlation-id; else a new "build-<UTC time>-<12 hex
# digits from /dev/urandom>", stored there for the later steps (the first
# writer wins a race: the file is created with noclobber).
_tally_json_cid() {
	local file='' hex=''
	if [ -n "${BUILD_CORRELATION_ID-}" ]; then
		_tally_cid=$BUILD_CORRELATION_ID
		return 0
	fi
	[ -n "$_tally_cid" ] && return 0
	file="${BUILD_LOG_DIR:-/var/log/container-build}/.correlation-id"
	if [ ! -s "$file" ]; then
		hex=$(od -An -N6 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')
		[ -n "$hex" ] || hex=$$
		mkdir -p "${file%/*}" 2>/dev/null || :
		(set -C && printf '%s\n' "build-$(date -u +%Y%m%dT%H%M%SZ)-$hex" >"$file") 2>/dev/null || :
	fi
	read -r _tally_cid <"$file" 2>/dev/null || _tally_cid="build-unknown-$$"
}

# _tally_json_event LEVEL MESSAGE [tally-log options...]: writes one event
# for the open feature (or the build) when JSON logging is on.
_tally_json_event() {
	local level="$1" msg="$2"
	shift 2
	_tally_json_on || return 0
	_tally_json_write "$level" "$msg" "" "$@"
}

# _tally_json_write LEVEL MESSAGE FILE [tally-log options...]: writes one
# event to FILE (default: the feature's or the build's JSON log). Returns 0;
# a failure is reported on stderr, never to the caller's status.
_tally_json_write() {
	local level="$1" msg="$2" out="$3"
	shift 3
	_tally_json_cid
	_tally_json_dir
	[ -n "$out" ] || out="$_tally_jdir/${_tally_feature:-build}.jsonl"
	_tally_json_tool
	if [ -n "$_tally_tlog" ]; then
		"$_tally_tlog" --level "$level" --correlation-id "$_tally_cid" \
			${_tally_feature:+--feature "$_tally_feature"} \
			${_tally_feature_version:+--version "$_tally_feature_version"} \
			-o "$out" "$@" -- "$msg" || :
	else
		_tally_json_awk "$level" "$msg" "$out" "$@" || :
	fi
	return 0
}

# _tally_json_stream DESCRIPTION: copies stdin to stdout unchanged and
# writes each line as a JSON event of the command DESCRIPTION (stage
# "command") to the feature's JSON log, in one tally-log process.
_tally_json_stream() {
	_tally_json_cid
	_tally_json_dir
	_tally_json_tool
	if [ -n "$_tally_tlog" ]; then
		"$_tally_tlog" --stream --tee --level INFO --correlation-id "$_tally_cid" \
			${_tally_feature:+--feature "$_tally_feature"} \
			${_tally_feature_version:+--version "$_tally_feature_version"} \
			--stage command --field command="$1" \
			-o "$_tally_jdir/${_tally_feature:-build}.jsonl"
	else
		cat
	fi
}

# _tally_json_command_end DESCRIPTION STATUS DURATION_MS WARNINGS: the
# event that closes a command: level ERROR when STATUS is non-zero.
_tally_json_command_end() {
	local level=INFO
	_tally_json_on || return 0
	[ "$2" -eq 0 ] || level=ERROR
	_tally_json_write "$level" "Command finished: $1" "" --stage command \
		--field command="$1" --num exit_code="$2" --num duration_ms="$3" \
		--num warning_count="$4"
}

# _tally_json_feature_end STATUS DURATION_MS: the feature's closing event
# and its line in build-summary.jsonl.
_tally_json_feature_end() {
	local level=INFO
	_tally_json_on || return 0
	[ "$1" = success ] || level=ERROR
	set -- "$1" "$2" --stage end --field status="$1" --num duration_ms="$2" \
		--num command_count="$_tally_feature_commands" \
		--num error_count="$_tally_feature_errors" \
		--num warning_count="$_tally_feature_warnings"
	shift 2
	_tally_json_write "$level" "Feature $_tally_feature finished" "" "$@"
	_tally_json_write "$level" "Feature $_tally_feature finished" \
		"$_tally_jdir/build-summary.jsonl" "$@"
}

# Usage: log_json <level> <message> [key=value...]
# Writes one JSON event (level DEBUG|INFO|WARN|ERROR|FATAL) with the build's
# correlation id and the open feature, the key=value pairs in "metadata",
# to the feature's (or the build's) JSON log. Does nothing unless
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
	[ $# -ge 2 ] && shift 2
	_tally_json_on || return 0
	for kv in "$@"; do
		case $kv in
		?*=*) ;;
		*)
			printf '%s\n' "log_json: not a key=value pair: $kv" >&2
			return 100
			;;
		esac
	done
	# Each pair becomes --meta pair; rebuild "$@" in place (no arrays in sh).
	for kv in "$@"; do
		set -- "$@" --meta "$kv"
		shift
	done
	_tally_json_write "$level" "$msg" "" "$@"
}

# _tally_json_awk LEVEL MESSAGE FILE [tally-log options...]: the fallback
# when tally-log is missing: the same event, built by awk (escapes '"', '\'
# and control bytes; passes other bytes through unchecked).
_tally_json_awk() {
	local level="$1" msg="$2" out="$3" ts='' fields='' meta=''
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--stage) fields="${fields}stage=s$2
" ;;
		--field) fields="${fields}${2%%=*}=s${2#*=}
" ;;
		--num) fields="${fields}${2%%=*}=n${2#*=}
" ;;
		--meta) meta="${meta}${2%%=*}=s${2#*=}
" ;;
		esac
		shift 2
	done
	ts=$(date -u +%Y-%m-%dT%H:%M:%S.%N 2>/dev/null)
	case $ts in
	*.[0-9][0-9][0-9]*) ts="${ts%"${ts#*.???}"}Z" ;;
	*) ts="${ts%%.*}.000Z" ;;
	esac
	_TALLY_J_TS=$ts _TALLY_J_LEVEL=$level _TALLY_J_MSG=$msg \
		_TALLY_J_CID=$_tally_cid _TALLY_J_FEATURE=$_tally_feature \
		_TALLY_J_VERSION=$_tally_feature_version _TALLY_J_FIELDS=$fields \
		_TALLY_J_META=$meta awk '
		function esc(s,   i, c, o) {
			gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s)
			gsub(/\n/, "\\n", s); gsub(/\r/, "\\r", s); gsub(/\t/, "\\t", s)
			o = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c < " " ) o = o sprintf("\\u%04x", ord[c]); else o = o c
			}
			return o
		}
		function str(k, v) { return ",\"" esc(k) "\":\"" esc(v) "\"" }
		function pairs(list,   n, i, a, k, t, v, o) {
			n = split(list, a, "\n"); o = ""
			for (i = 1; i <= n; i++) {
				if (a[i] == "") continue
				k = a[i]; sub(/=.*/, "", k)
				t = substr(a[i], length(k) + 2, 1); v = substr(a[i], length(k) + 3)
				o = o (t == "n" ? ",\"" esc(k) "\":" v : str(k, v))
			}
			return o
		}
		BEGIN {
			for (i = 1; i < 32; i++) ord[sprintf("%c", i)] = i
			line = "{\"timestamp\":\"" ENVIRON["_TALLY_J_TS"] "\"" \
				",\"level\":\"" ENVIRON["_TALLY_J_LEVEL"] "\""
			if (ENVIRON["_TALLY_J_CID"] != "") line = line str("correlation_id", ENVIRON["_TALLY_J_CID"])
			if (ENVIRON["_TALLY_J_FEATURE"] != "") line = line str("feature", ENVIRON["_TALLY_J_FEATURE"])
			if (ENVIRON["_TALLY_J_VERSION"] != "") line = line str("version", ENVIRON["_TALLY_J_VERSION"])
			f = pairs(ENVIRON["_TALLY_J_FIELDS"])
			if (match(f, /^,"stage":"[^"]*"/)) { line = line substr(f, 1, RLENGTH); f = substr(f, RLENGTH + 1) }
			line = line str("message", ENVIRON["_TALLY_J_MSG"]) f
			m = pairs(ENVIRON["_TALLY_J_META"])
			if (m != "") line = line ",\"metadata\":{" substr(m, 2) "}"
			print line "}"
		}' >>"$out"
}
