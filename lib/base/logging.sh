# shellcheck shell=sh disable=SC3043
# logging.sh: levelled text logs and feature logging for Dockerfile RUN steps.
#
# Public functions:
#   log_debug, log_info, log_warn, log_error   levelled messages
#   log_feature_start <name> [version]        begin a feature
#   log_command <description> <command> [args...]
#                                             run, show, keep and count a command
#   log_feature_end                           close the feature: summary, JSON, metrics
#   log_build_summary                         table of every finished feature
#
# Globals read: BUILD_LOG_DIR (default /var/log/container-build), LOG_LEVEL
# (DEBUG|INFO|WARN|ERROR, default INFO), NO_COLOR, TALLY_HOME (default
# /opt/tally). Sourcing it also sources json-logging.sh and metrics.sh from
# $TALLY_HOME/lib/base when they are there. Sourcing changes nothing in the
# caller's shell but these functions and private _tally_* names.
# Reference: docs/reference/logging.md

[ -n "${_tally_logging_loaded-}" ] && return 0
_tally_logging_loaded=1

# Feature state, private: set by log_feature_start, cleared by log_feature_end.
_tally_feature=
_tally_feature_version=
_tally_feature_start_ms=0
_tally_feature_commands=0
_tally_feature_errors=0
_tally_feature_warnings=0

# _tally_level_num LEVEL: sets _tally_n to the level's rank (DEBUG 10 ..
# FATAL 50); an unknown level ranks as INFO.
_tally_level_num() {
	case $1 in
	DEBUG | debug) _tally_n=10 ;;
	INFO | info | '') _tally_n=20 ;;
	WARN | warn | WARNING | warning) _tally_n=30 ;;
	ERROR | error) _tally_n=40 ;;
	FATAL | fatal) _tally_n=50 ;;
	*) _tally_n=20 ;;
	esac
}

# _tally_now_ms: sets _tally_ms to the wall clock in milliseconds since the
# epoch (one `date` fork; whole seconds where date lacks %N).
_tally_now_ms() {
	_tally_ms=$(date +%s%N 2>/dev/null)
	case $_tally_ms in
	*[!0-9]* | '') _tally_ms=$(($(date +%s) * 1000)) ;;
	*) _tally_ms=${_tally_ms%??????} ;;
	esac
}

# _tally_seconds MS: sets _tally_secs to MS milliseconds as seconds with one
# decimal ("145.3"), rounded to the nearest tenth, and _tally_secs_ms to the
# exact seconds with three decimals ("145.312").
_tally_seconds() {
	_tally_secs=$((($1 + 50) / 100))
	_tally_secs=$((_tally_secs / 10)).$((_tally_secs % 10))
	_tally_secs_ms=$(($1 % 1000))
	case $_tally_secs_ms in
	? ) _tally_secs_ms=00$_tally_secs_ms ;;
	?? ) _tally_secs_ms=0$_tally_secs_ms ;;
	esac
	_tally_secs_ms=$(($1 / 1000)).$_tally_secs_ms
}

# _tally_emit LEVEL MESSAGE: writes one console line on stderr and, while a
# feature is open, the same line to its text log.
_tally_emit() {
	local level="$1" msg="$2" stamp='' pad='' colour='' reset=''
	stamp=$(date +%H:%M:%S)
	case $level in
	WARN | INFO) pad=' ' ;;
	esac
	if [ -t 2 ] && [ -z "${NO_COLOR-}" ]; then
		case $level in
		DEBUG) colour='\033[2m' ;;
		WARN) colour='\033[33m' ;;
		ERROR | FATAL) colour='\033[31m' ;;
		esac
		[ -n "$colour" ] && reset='\033[0m'
	fi
	# shellcheck disable=SC2059
	printf "[%s] ${colour}%s${reset}%s %s\n" "$stamp" "$level" "$pad" "$msg" >&2 || :
	if [ -n "$_tally_feature" ]; then
		printf '[%s] %s%s %s\n' "$stamp" "$level" "$pad" "$msg" 2>/dev/null \
			>>"${BUILD_LOG_DIR:-/var/log/container-build}/$_tally_feature.log" || :
	fi
	return 0
}

# _tally_log LEVEL MESSAGE...: filters by LOG_LEVEL, then emits the text line
# and the JSON event (when json-logging.sh is loaded and enabled).
_tally_log() {
	local level="$1" want=''
	shift
	_tally_level_num "${LOG_LEVEL:-INFO}"
	want=$_tally_n
	_tally_level_num "$level"
	[ "$_tally_n" -ge "$want" ] || return 0
	_tally_emit "$level" "$*"
	if command -v _tally_json_event >/dev/null 2>&1; then
		_tally_json_event "$level" "$*"
	fi
	return 0
}

# Usage: log_debug <message...>
# Prints "[HH:MM:SS] DEBUG message" on stderr when LOG_LEVEL is DEBUG, and
# keeps it in the open feature's log. Returns 0.
# Example: log_debug "cache key is $key"
log_debug() { _tally_log DEBUG "$@"; }

# Usage: log_info <message...>
# Like log_debug, at level INFO (shown unless LOG_LEVEL is WARN or ERROR).
# Example: log_info "Installing Python"
log_info() { _tally_log INFO "$@"; }

# Usage: log_warn <message...>
# Like log_debug, at level WARN; counts one warning in the open feature.
# Example: log_warn "falling back to the slow mirror"
log_warn() {
	[ -n "$_tally_feature" ] && _tally_feature_warnings=$((_tally_feature_warnings + 1))
	_tally_log WARN "$@"
}

# Usage: log_error <message...>
# Like log_debug, at level ERROR; counts one error in the open feature.
# Example: log_error "checksum mismatch for $file"
log_error() {
	[ -n "$_tally_feature" ] && _tally_feature_errors=$((_tally_feature_errors + 1))
	_tally_log ERROR "$@"
}

# Usage: log_feature_start <name> [version]
# Opens a feature: creates BUILD_LOG_DIR and BUILD_LOG_DIR/<name>.log,
# resets the feature's counters and starts its clock. A feature still open is
# closed first. Returns 0, or 1 when the name is empty or unsafe as a file
# name (it must match [A-Za-z0-9._-]+ and not start with a dot).
# Example: log_feature_start python-dev 3.13.1
log_feature_start() {
	local name="${1-}" dir=''
	case $name in
	'' | .* | *[!A-Za-z0-9._-]*)
		_tally_emit ERROR "log_feature_start: invalid feature name '$name' (use letters, digits, . _ -)"
		return 1
		;;
	esac
	[ -n "$_tally_feature" ] && log_feature_end
	dir=${BUILD_LOG_DIR:-/var/log/container-build}
	mkdir -p "$dir" 2>/dev/null || _tally_emit WARN "unable to create $dir"
	_tally_feature=$name
	_tally_feature_version=${2-}
	_tally_feature_commands=0
	_tally_feature_errors=0
	_tally_feature_warnings=0
	_tally_now_ms
	_tally_feature_start_ms=$_tally_ms
	true 2>/dev/null >>"$dir/$name.log" || :
	_tally_emit INFO "Feature $name${2:+ $2} started"
	if command -v _tally_json_event >/dev/null 2>&1; then
		_tally_json_event INFO "Feature $name started" --stage start
	fi
	return 0
}

# Usage: log_command <description> <command> [args...]
# Runs the command with stdout and stderr merged, shows its output on stdout
# as it comes, appends it to the open feature's log, counts lines matching
# the warning pattern (a word "warning" or "warn", any case) as warnings and a
# non-zero exit status as an error, and emits JSON events when enabled.
# Returns the command's own exit status, also under `set -e` and `set -u`.
# Runs the command in a subshell, so `cd` or assignments do not persist.
# Example: log_command "Installing Python" apt-get install -y python3
log_command() {
	local desc="${1-}" log='' rc='' start='' dur='' warn='' wfile=''
	if [ $# -lt 2 ]; then
		_tally_emit ERROR "log_command: usage: log_command <description> <command> [args...]"
		return 100
	fi
	shift
	log=/dev/null
	wfile=
	if [ -n "$_tally_feature" ]; then
		log="${BUILD_LOG_DIR:-/var/log/container-build}/$_tally_feature.log"
		wfile="${BUILD_LOG_DIR:-/var/log/container-build}/.$_tally_feature.warnings"
		_tally_feature_commands=$((_tally_feature_commands + 1))
		# awk dies on a file it cannot open: check the log can be appended to.
		if ! { true >>"$log"; } 2>/dev/null; then
			log=/dev/null
			wfile=/dev/null
		fi
	fi
	_tally_emit INFO "Running: $desc"
	printf '$ %s\n' "$*" 2>/dev/null >>"$log" || :
	_tally_now_ms
	start=$_tally_ms
	# The command's status travels on fd 3 through the command substitution;
	# fd 4 is the caller's stdout. No PIPESTATUS, no temporary file.
	{ rc=$( { { "$@" 2>&1 3>&- 4>&- && _tally_rc=0 || _tally_rc=$?
		printf '%s' "$_tally_rc" >&3; } |
		_tally_tee "$log" "${wfile:-/dev/null}" "$desc" >&4; } 3>&1); } 4>&1
	_tally_now_ms
	dur=$((_tally_ms - start))
	warn=0
	if [ -n "$wfile" ] && [ -f "$wfile" ]; then
		read -r warn <"$wfile" || warn=0
		rm -f "$wfile"
		case $warn in '' | *[!0-9]*) warn=0 ;; esac
	fi
	case $rc in '' | *[!0-9]*) rc=1 ;; esac
	if [ -n "$_tally_feature" ]; then
		_tally_feature_warnings=$((_tally_feature_warnings + warn))
		[ "$rc" -eq 0 ] || _tally_feature_errors=$((_tally_feature_errors + 1))
	fi
	printf '$ exit %s after %s ms\n' "$rc" "$dur" 2>/dev/null >>"$log" || :
	_tally_seconds "$dur"
	if [ "$rc" -eq 0 ]; then
		if [ "$warn" -gt 0 ]; then
			_tally_emit INFO "Done: $desc (${_tally_secs}s, $warn warnings)"
		else
			_tally_emit INFO "Done: $desc (${_tally_secs}s)"
		fi
	else
		_tally_emit ERROR "Failed: $desc (exit $rc, ${_tally_secs}s)"
	fi
	if command -v _tally_json_command_end >/dev/null 2>&1; then
		_tally_json_command_end "$desc" "$rc" "$dur" "$warn"
	fi
	return "$rc"
}

# _tally_tee LOG WARNFILE DESCRIPTION: copies stdin to stdout (flushed per
# line) and appends it to LOG; writes the count of warning lines to
# WARNFILE. With JSON logging on, the same lines also become JSON events of
# the command DESCRIPTION, through one streaming tally-log.
_tally_tee() {
	if command -v _tally_json_stream >/dev/null 2>&1 && _tally_json_on; then
		_tally_tee_awk "$1" "$2" | _tally_json_stream "$3"
	else
		_tally_tee_awk "$1" "$2"
	fi
}

# _tally_tee_awk LOG WARNFILE: the awk half of _tally_tee.
_tally_tee_awk() {
	awk -v logf="$1" -v wfile="$2" '
		{ print; fflush(); print >> logf
		  l = tolower($0)
		  if (l ~ /(^|[^a-z])warn(ing)?([^a-z]|$)/) w++ }
		END { printf "%d\n", w > wfile }'
}

# Usage: log_feature_end
# Closes the open feature: appends "<feature>: N errors, M warnings (Ss)" to
# BUILD_LOG_DIR/master-summary.log, emits the feature's JSON summary and
# records its build metrics (when those libraries are loaded). Returns 0, or
# 1 when no feature is open.
# Example: log_feature_start jq 1.7 && log_command "Install jq" true && log_feature_end
log_feature_end() {
	local name="$_tally_feature" dur='' status=success
	if [ -z "$name" ]; then
		_tally_emit WARN "log_feature_end: no feature is open"
		return 1
	fi
	_tally_now_ms
	dur=$((_tally_ms - _tally_feature_start_ms))
	_tally_seconds "$dur"
	[ "$_tally_feature_errors" -eq 0 ] || status=failure
	printf '%s: %s errors, %s warnings (%ss)\n' "$name" "$_tally_feature_errors" \
		"$_tally_feature_warnings" "$_tally_secs" \
		2>/dev/null >>"${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log" ||
		_tally_emit WARN "unable to write ${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log"
	_tally_emit INFO "Feature $name finished: $status, $_tally_feature_errors errors, $_tally_feature_warnings warnings (${_tally_secs}s)"
	if command -v _tally_json_feature_end >/dev/null 2>&1; then
		_tally_json_feature_end "$status" "$dur"
	fi
	if command -v _tally_metrics_feature_end >/dev/null 2>&1; then
		_tally_metrics_feature_end "$name" "$status" "$_tally_secs_ms" \
			"$_tally_feature_errors" "$_tally_feature_warnings"
	fi
	_tally_feature=
	_tally_feature_version=
	return 0
}

# Usage: log_build_summary
# Prints on stdout a table of every feature in master-summary.log: name,
# errors, warnings, duration in seconds, and the totals. Returns 0, or 1
# when there is no summary yet.
# Example: log_build_summary
log_build_summary() {
	local file=''
	file="${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log"
	[ -r "$file" ] || return 1
	awk '
		BEGIN { printf "%-24s %-8s %7s %9s %10s\n", "FEATURE", "STATUS", "ERRORS", "WARNINGS", "SECONDS" }
		{ name = $1; sub(/:$/, "", name); e = $2; w = $4; s = $6
		  gsub(/[()s]/, "", s)
		  st = (e > 0) ? "failure" : "success"
		  printf "%-24s %-8s %7d %9d %10.1f\n", name, st, e, w, s
		  te += e; tw += w; ts += s; n++ }
		END { printf "%-24s %-8s %7d %9d %10.1f\n", n " features", "", te, tw, ts }' "$file"
}

# Load the JSON and metrics halves when they are installed beside us.
if [ -r "${TALLY_HOME:-/opt/tally}/lib/base/json-logging.sh" ]; then
	# shellcheck source=lib/base/json-logging.sh
	. "${TALLY_HOME:-/opt/tally}/lib/base/json-logging.sh"
fi
if [ -r "${TALLY_HOME:-/opt/tally}/lib/base/metrics.sh" ]; then
	# shellcheck source=lib/base/metrics.sh
	. "${TALLY_HOME:-/opt/tally}/lib/base/metrics.sh"
fi
