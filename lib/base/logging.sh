# shellcheck shell=sh disable=SC3043,SC3013
# (SC3013: test -ef, which dash, busybox ash, bash, ksh and zsh all have.)
# logging.sh: levelled text logs and feature logging for Dockerfile RUN steps.
#
# Public functions:
#   log_debug, log_info, log_warn, log_error   levelled messages
#   log_feature_start <name> [version]        begin a feature
#   log_command <description> <command> [args...]
#                                             run, show, keep and count a command
#   log_feature_end                           close the feature: summary, JSON, metrics
#   log_build_summary                         table of every feature of the build so far
#   log_build_end                             close the build's trace span (OTEL_ENABLED)
#
# Globals read: BUILD_LOG_DIR (default /var/log/container-build), LOG_LEVEL
# (DEBUG|INFO|WARN|ERROR, default INFO), NO_COLOR, TALLY_REDACT (0 turns
# redaction off), TALLY_LOGGER (0: no logger, every line and command gets
# a tally-log process of its own), TALLY_HOME (default /opt/tally), OTEL_ENABLED (true turns
# tracing on), TRACEPARENT and the OTEL_* variables tally-trace reads
# (docs/observability/opentelemetry-integration.md). Sourcing it also sources
# json-logging.sh and metrics.sh from $TALLY_HOME/lib/base when they are
# there. Sourcing changes nothing in the caller's shell but these functions
# and private _tally_* names.
#
# Every line (console, text log, JSON) is written by tally-log
# ($TALLY_HOME/bin, then PATH). Each shell starts one tally-log --serve,
# its logger, at its first log call: from then on the shell runs each
# command itself, its output into the logger through a FIFO, and no
# process but the command's is started per call (see _tally_srv_ready for
# when a call does without it). Without a logger, one tally-log process
# per log call and one per command. Without tally-log, the awk program
# below does the same job with the same output (slower). Secrets are
# redacted either way.
# Machine-readable state for later RUN steps: BUILD_LOG_DIR/.tally/.
# With OTEL_ENABLED=true, the build, each feature and each command become
# OpenTelemetry spans in BUILD_LOG_DIR/traces.jsonl, recorded by tally-trace
# (the build and features) and tally-log (commands, in the process that runs
# them: no extra fork per command); the trace context travels from one RUN
# step to the next in BUILD_LOG_DIR/.tally/trace-context.
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
# Set after a failed write of a log file (reported once), cleared by the
# next write that succeeds: later calls pass --quiet-write-errors.
_tally_wquiet=
# The wall clock at boot in milliseconds, for _tally_now_ms ("" until its
# first call, and where /proc/uptime cannot be read).
_tally_boot_ms=
# Whether /proc/uptime can be read: "" until asked, then 1 or 0.
_tally_uptime_r=
# log_command's answers of `command -v` ("NAME<TAB>ANSWER" lines) and the
# PATH they are for; a newline and a tab for the patterns.
_tally_which_list=
_tally_which_path=
_tally_nl='
'
_tally_tab='	'
# The tally-log found, and the TALLY_HOME and PATH it was looked up for.
_tally_tlog=
_tally_tlog_key=
# This shell's logger (see _tally_srv_ready): its PID, "" before it is
# started, "-" when log_command does without one in this shell.
# _tally_rc, _tally_dur, _tally_warn, _tally_wfail, _tally_r1: the result
# of a command run through it (_tally_rc: of a message too).
_tally_srv=
_tally_rc=
_tally_dur=
_tally_warn=
_tally_wfail=
_tally_r1=
# The text log and the result file that passed their check (see
# _tally_text and log_command); log_command's sinks (text log, JSON log,
# state directory) and what they were looked up for (_tally_ctx_key).
_tally_tfile_ok=
_tally_res_ok=
_tally_ctx_key=
_tally_ctx_tfile=
_tally_ctx_jfile=
_tally_ctx_sdir=
# The JSON destination of the current call ("" when JSON logging is off)
# and the build's correlation id; set by json-logging.sh.
_tally_jfile=
_tally_cid=${_tally_cid-}
# Trace state, private: the build's traceparent and the BUILD_LOG_DIR it
# was read for, the open feature's span and its start (Unix ns), the
# context in effect (_tally_trace_cur), the tally-trace found.
_tally_trace_build=
_tally_trace_key=
_tally_trace_feature=
_tally_trace_fstart=
_tally_trace_cur=
_tally_trace_new=
_tally_trace_now=
_tally_trace_tool=
_tally_trace_warned=

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

# _tally_tool: sets _tally_tlog to the tally-log to run ($TALLY_HOME/bin
# first, then PATH), or to "" when there is none. Looked up once per
# TALLY_HOME and PATH.
_tally_tool() {
	[ "$_tally_tlog_key" = "${TALLY_HOME-}:${PATH-}" ] && return 0
	_tally_tlog_key="${TALLY_HOME-}:${PATH-}"
	if [ -x "${TALLY_HOME:-/opt/tally}/bin/tally-log" ]; then
		_tally_tlog="${TALLY_HOME:-/opt/tally}/bin/tally-log"
	elif command -v tally-log >/dev/null 2>&1; then
		_tally_tlog=tally-log
	else
		_tally_tlog=
	fi
}

# _tally_trace_on: returns 0 when OTEL_ENABLED turns tracing on.
_tally_trace_on() {
	case ${OTEL_ENABLED-} in
	true | TRUE | True | 1 | yes | YES) return 0 ;;
	esac
	return 1
}

# _tally_trace_find: sets _tally_trace_tool to the tally-trace to run
# ($TALLY_HOME/bin, then PATH). Returns 1, after one warning per shell,
# when there is none.
_tally_trace_find() {
	if [ -x "${TALLY_HOME:-/opt/tally}/bin/tally-trace" ]; then
		_tally_trace_tool="${TALLY_HOME:-/opt/tally}/bin/tally-trace"
	elif command -v tally-trace >/dev/null 2>&1; then
		_tally_trace_tool=tally-trace
	else
		_tally_trace_tool=
		if [ -z "$_tally_trace_warned" ]; then
			printf '%s\n' "tally: warning: OTEL_ENABLED is on but tally-trace is not in ${TALLY_HOME:-/opt/tally}/bin or PATH: no spans are recorded" >&2
			_tally_trace_warned=1
		fi
		return 1
	fi
}

# _tally_trace_begin: runs `tally-trace start` (one fork): starts or joins
# the build's trace and sets _tally_trace_build, _tally_trace_new (a new
# child span of the build) and _tally_trace_now (Unix ns). Returns 1 when
# tracing is off or tally-trace failed (it said why on stderr).
_tally_trace_begin() {
	local out=''
	_tally_trace_on && _tally_trace_find || return 1
	out=$("$_tally_trace_tool" start -d "${BUILD_LOG_DIR:-/var/log/container-build}") || return 1
	_tally_trace_build=${out%% *}
	out=${out#* }
	_tally_trace_new=${out%% *}
	_tally_trace_now=${out#* }
	_tally_trace_key=${BUILD_LOG_DIR:-/var/log/container-build}
	return 0
}

# _tally_trace_ctx: sets _tally_trace_cur to the trace context in effect
# (the open feature's span, else the build's), starting or joining the
# build's trace first when this shell has not yet; to "" when tracing is
# off. No fork once the build is known.
_tally_trace_ctx() {
	_tally_trace_cur=
	_tally_trace_on || return 0
	if [ -z "$_tally_trace_build" ] || [ "$_tally_trace_key" != "${BUILD_LOG_DIR:-/var/log/container-build}" ]; then
		_tally_trace_feature=
		_tally_trace_begin || return 0
	fi
	_tally_trace_cur=${_tally_trace_feature:-$_tally_trace_build}
}

# _tally_uptime_ms: sets _tally_up to the time since boot in milliseconds
# from /proc/uptime (a resolution of 10 ms), no process; returns 1 when it
# cannot be read. Whether it can is asked once per shell
# (_tally_uptime_r), so later reads need no redirection of stderr.
_tally_uptime_ms() {
	local up='' cs=''
	case $_tally_uptime_r in
	'') if [ -r /proc/uptime ]; then _tally_uptime_r=1; else _tally_uptime_r=0; fi ;;
	esac
	[ "$_tally_uptime_r" = 1 ] && read -r up cs </proc/uptime || return 1
	case $up in
	*[0-9].[0-9][0-9]) ;;
	*) return 1 ;;
	esac
	cs=${up#*.}
	_tally_up=$((${up%.*} * 1000 + ${cs#0} * 10))
}

# _tally_now_ms: sets _tally_ms to the wall clock in milliseconds since the
# epoch. Where /proc/uptime can be read, without a process: the first call
# of the shell takes the wall clock once (below) and the time since boot
# beside it, later calls add the time since boot read then (a resolution
# of 10 ms, and no fork). Else one `tally-log --clock` (static, the
# cheapest process there is here), else one `date` (whole seconds where
# date lacks %N).
_tally_now_ms() {
	if [ -n "$_tally_boot_ms" ] && _tally_uptime_ms; then
		_tally_ms=$((_tally_boot_ms + _tally_up))
		return 0
	fi
	_tally_tool
	if [ -n "$_tally_tlog" ]; then
		_tally_ms=$("$_tally_tlog" --clock 2>/dev/null) || _tally_ms=
		case $_tally_ms in
		'' | *[!0-9]*) ;;
		*)
			# The wall clock at boot, for the next calls.
			[ -n "$_tally_boot_ms" ] || ! _tally_uptime_ms ||
				_tally_boot_ms=$((_tally_ms - _tally_up))
			return 0
			;;
		esac
	fi
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

# _tally_state: sets _tally_sdir to BUILD_LOG_DIR/.tally (created once), or
# to "" when it cannot be written.
_tally_state() {
	_tally_sdir="${BUILD_LOG_DIR:-/var/log/container-build}/.tally"
	[ -d "$_tally_sdir" ] || mkdir -p "$_tally_sdir" 2>/dev/null || :
	[ -w "$_tally_sdir" ] || _tally_sdir=
}

# _tally_text: sets _tally_tfile to the open feature's text log, or to ""
# outside a feature or when it cannot be appended to.
_tally_text() {
	_tally_tfile=
	[ -n "$_tally_feature" ] || return 0
	_tally_tfile="${BUILD_LOG_DIR:-/var/log/container-build}/$_tally_feature.log"
	# Checked once per file, and again after a failed write.
	[ "$_tally_tfile" = "$_tally_tfile_ok" ] && [ -z "$_tally_wquiet" ] && return 0
	if { true >>"$_tally_tfile"; } 2>/dev/null; then
		_tally_tfile_ok=$_tally_tfile
	else
		_tally_tfile='' _tally_tfile_ok=''
	fi
}

# _tally_json: sets _tally_jfile (and _tally_cid) when JSON logging is on
# and json-logging.sh is loaded, else sets _tally_jfile to "".
_tally_json() {
	_tally_jfile=
	if [ -n "${_tally_json_loaded-}" ]; then
		_tally_json_target || :
	fi
}

# _tally_emit SINKS LEVEL MESSAGE [tally-log options...]: writes one log
# line: with c in SINKS to the console (stderr) and the open feature's text
# log as "[HH:MM:SS] LEVEL message", with j in SINKS as a JSON event in the
# feature's JSON log when JSON logging is on, with s in build-summary.jsonl
# too. The options --text-message M and --text-level L give
# the console and text-log line words and a level of its own. One tally-log
# process (awk without it). A failed write is reported by the first call
# that meets it; later calls pass --quiet-write-errors until one succeeds
# (_tally_wquiet).
_tally_emit() {
	local sinks="$1" level="$2" msg="$3" console='' sfile=
	shift 3
	_tally_tfile=
	_tally_jfile=
	case $sinks in *c*) console=1 && _tally_text ;; esac
	case $sinks in *[js]*) _tally_json ;; esac
	case $sinks in *s*) [ -z "$_tally_jfile" ] || sfile="${_tally_jfile%/*}/build-summary.jsonl" ;; esac
	case $sinks in *j*) ;; *) _tally_jfile=$sfile sfile= ;; esac
	[ -n "$console$_tally_jfile" ] || return 0
	_tally_trace_cur=
	[ -z "$_tally_jfile" ] || _tally_trace_ctx
	_tally_tool
	if [ -n "$_tally_tlog" ]; then
		set -- ${_tally_wquiet:+--quiet-write-errors} --level "$level" ${console:+--console} \
			${_tally_trace_cur:+--traceparent "$_tally_trace_cur"} \
			${_tally_tfile:+--text-log "$_tally_tfile"} \
			${_tally_jfile:+-o "$_tally_jfile" --correlation-id "$_tally_cid"} \
			${sfile:+-o "$sfile"} \
			${_tally_feature:+--feature "$_tally_feature"} \
			${_tally_feature_version:+--version "$_tally_feature_version"} \
			"$@" -- "$msg"
		# Through this shell's logger when there is one (no process).
		if [ -n "$_tally_trace_cur" ] || ! _tally_srv_ready || ! _tally_srv_emit "$@"; then
			"$_tally_tlog" "$@" && _tally_rc=0 || _tally_rc=$?
		fi
		case $_tally_rc in 0) _tally_wquiet= ;; 111) _tally_wquiet=1 ;; esac
		return 0
	fi
	_tally_now_ms
	_tally_awk_opts "$@"
	_tally_a_mode=event _tally_a_level=$level _tally_a_msg=$msg _tally_a_json2=$sfile
	_tally_a_ms=$_tally_ms _tally_a_console=$console
	_tally_awk </dev/null || :
	return 0
}

# _tally_awk_opts [tally-log options...]: turns --stage, --field, --num,
# --meta, --text-message and --text-level options into the _tally_a_*
# values the awk program reads (and clears _tally_a_json2).
_tally_awk_opts() {
	_tally_a_stage=
	_tally_a_fields=
	_tally_a_meta=
	_tally_a_hmsg=
	_tally_a_hlevel=
	_tally_a_json2=
	while [ $# -gt 1 ]; do
		case $1 in
		--stage) _tally_a_stage=$2 ;;
		--text-message) _tally_a_hmsg=$2 ;;
		--text-level) _tally_a_hlevel=$2 ;;
		--field) _tally_a_fields="${_tally_a_fields}s $2
" ;;
		--num) _tally_a_fields="${_tally_a_fields}n $2
" ;;
		--meta) _tally_a_meta="${_tally_a_meta}s $2
" ;;
		esac
		shift 2
	done
}

# _tally_awk: runs the awk fallback of tally-log on stdin. It reads the
# private globals _tally_a_* (mode event, run, end or record; see the
# program's BEGIN), _tally_tfile, _tally_jfile, _tally_cid and the feature
# state, passed in its environment only.
_tally_awk() {
	local colour=''
	[ -t 2 ] && [ -z "${NO_COLOR-}" ] && colour=1
	_TALLY_A_MODE=${_tally_a_mode-} _TALLY_A_LEVEL=${_tally_a_level-} \
		_TALLY_A_MSG=${_tally_a_msg-} _TALLY_A_MS=${_tally_a_ms-0} \
		_TALLY_A_CONSOLE=${_tally_a_console-} _TALLY_A_DESC=${_tally_a_desc-} \
		_TALLY_A_ARGV=${_tally_a_argv-} _TALLY_A_RESULT=${_tally_a_result-} \
		_TALLY_A_STATUS=${_tally_a_status-0} _TALLY_A_DUR=${_tally_a_dur-0} \
		_TALLY_A_WARN=${_tally_a_warn-0} _TALLY_A_HMSG=${_tally_a_hmsg-} \
		_TALLY_A_HLEVEL=${_tally_a_hlevel-} _TALLY_A_JSON2=${_tally_a_json2-} \
		_TALLY_A_JSON=$_tally_jfile _TALLY_A_TEXT=$_tally_tfile \
		_TALLY_A_CID=$_tally_cid _TALLY_A_FEATURE=$_tally_feature \
		_TALLY_A_VERSION=$_tally_feature_version _TALLY_A_STAGE=${_tally_a_stage-} \
		_TALLY_A_FIELDS=${_tally_a_fields-} _TALLY_A_META=${_tally_a_meta-} \
		_TALLY_A_COLOUR=$colour _TALLY_A_HMS="$(date +%H:%M:%S)" \
		TRACEPARENT=${_tally_trace_cur:-${TRACEPARENT-}} \
		LC_ALL=C awk "$_tally_awk_prog"
}

# The awk fallback of tally-log: the redaction of lib/c/redact.c, the JSON
# escaping (with U+FFFD for invalid UTF-8) of lib/c/json.c and the event,
# console and text-log lines of bin/tally-log.c, byte for byte. Run in the
# C locale, so that one character is one byte.
# shellcheck disable=SC2016
_tally_awk_prog='
# ---- classes and tables (C locale: one character is one byte) --------
function tally_init(    i, up, lo, dg, c, w) {
	for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i
	up = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"; lo = "abcdefghijklmnopqrstuvwxyz"; dg = "0123456789"
	for (i = 1; i <= 26; i++) {
		c = substr(up, i, 1); KU[c] = 1; KA[c] = 1; KW[c] = 1
		c = substr(lo, i, 1); KL[c] = 1; KA[c] = 1; KW[c] = 1
	}
	for (i = 1; i <= 10; i++) { c = substr(dg, i, 1); KD[c] = 1; KA[c] = 1; KW[c] = 1 }
	KW["_"] = 1; KW["."] = 1; KW["-"] = 1
	c = " \t\r\n\v\f\"\047&,;"
	for (i = 1; i <= length(c); i++) KE[substr(c, i, 1)] = 1
	c = "/?#\"\047<> \t\r\n\v\f"
	for (i = 1; i <= length(c); i++) KH[substr(c, i, 1)] = 1
	split("password passwd passphrase secret token credential credentials authorization apikey accesskey privatekey", w, " ")
	for (i in w) SW[w[i]] = 1
	KP["api"] = 1; KP["access"] = 1; KP["private"] = 1
	for (i = 0; i < 32; i++) ESC[i] = sprintf("\\u%04x", i)
	ESC[8] = "\\b"; ESC[9] = "\\t"; ESC[10] = "\\n"; ESC[12] = "\\f"; ESC[13] = "\\r"
	ESC[34] = "\\\""; ESC[92] = "\\\\"
	PLAIN = "^[^\"\\\\\001-\037\200-\377]+"
	NEEDS = "[\"\\\\\001-\037\200-\377]"
	CANDIDATE = "[=:]|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|sk-|--"
	REPL = "\357\277\275"
	MARK = "[REDACTED]"
	RED = ENVIRON["TALLY_REDACT"] != "0"
}
# ---- redaction: the scan of lib/c/redact.c, 1-based ------------------
function pbreak(k, n, i,    p, c) {
	p = substr(k, i - 1, 1); c = substr(k, i, 1)
	if ((p in KL) && (c in KU)) return 1
	if ((p in KD) != (c in KD)) return 1
	return (p in KU) && (c in KU) && i + 1 <= n && (substr(k, i + 1, 1) in KL)
}
function keyclass(k,    n, i, st, part, prev, sec, auth) {
	n = length(k); i = 1; prev = ""; sec = 0; auth = 0
	while (i <= n) {
		if (!(substr(k, i, 1) in KA)) { i++; continue }
		st = i++
		while (i <= n && (substr(k, i, 1) in KA) && !pbreak(k, n, i)) i++
		if (i - st > 16) { prev = ""; continue }
		part = tolower(substr(k, st, i - st))
		if (part in SW) sec = 1
		if (part == "authorization") auth = 1
		if (part == "key" && (prev in KP)) sec = 1
		prev = part
	}
	return auth ? 3 : sec
}
function runend(s, i, lim, extra,    c) {
	while (i < lim && (((c = substr(s, i, 1)) in KA) || index(extra, c))) i++
	return i
}
function token_at(s, i, lim,    m, e, c) {
	m = lim - i
	if (m >= 4 && substr(s, i, 2) == "gh" && substr(s, i + 3, 1) == "_" && index("pousr", substr(s, i + 2, 1))) {
		e = runend(s, i + 4, lim, ""); return e - (i + 4) >= 30 ? e : 0
	}
	if (m >= 11 && substr(s, i, 11) == "github_pat_") {
		e = runend(s, i + 11, lim, "_"); return e - (i + 11) >= 22 ? e : 0
	}
	if (m >= 6 && substr(s, i, 6) == "glpat-") {
		e = runend(s, i + 6, lim, "_-"); return e - (i + 6) >= 20 ? e : 0
	}
	if (m >= 5 && substr(s, i, 3) == "xox" && index("abprs", substr(s, i + 3, 1)) && substr(s, i + 4, 1) == "-") {
		e = runend(s, i + 5, lim, "-"); return e - (i + 5) >= 10 ? e : 0
	}
	if (m >= 20 && (substr(s, i, 4) == "AKIA" || substr(s, i, 4) == "ASIA")) {
		for (e = i + 4; e < i + 20 && (((c = substr(s, e, 1)) in KU) || (c in KD)); e++) ;
		return e == i + 20 && (e == lim || !(substr(s, e, 1) in KA)) ? e : 0
	}
	if (m >= 3 && substr(s, i, 3) == "sk-") {
		e = runend(s, i + 3, lim, "_-"); return e - (i + 3) >= 20 ? e : 0
	}
	return 0
}
function keyval(s, n, i, j,    k, flag, kc, q, e, c) {
	k = j; flag = 0
	c = substr(s, k, 1)
	if (k <= n && (c == "\"" || c == "\047")) k++
	while (k <= n && ((c = substr(s, k, 1)) == " " || c == "\t")) k++
	c = substr(s, k, 1)
	if (k <= n && (c == "=" || c == ":")) {
		k++
		while (k <= n && ((c = substr(s, k, 1)) == " " || c == "\t")) k++
	} else if (j - i > 2 && substr(s, i, 2) == "--" && k > j && ((c = substr(s, j, 1)) == " " || c == "\t")) {
		flag = 1
	} else return 0
	if (k > n) return 0
	c = substr(s, k, 1)
	if (flag && c == "-") return 0
	if (!(kc = keyclass(substr(s, i, j - i)))) return 0
	if (c == "\"" || c == "\047") {
		q = c; k++
		for (e = k; e <= n && substr(s, e, 1) != q; e++) ;
	} else if (kc == 3) {
		for (e = k; e <= n && (c = substr(s, e, 1)) != "\"" && c != "\047" && c != "\n" && c != "\r"; e++) ;
	} else {
		for (e = k; e <= n && !(substr(s, e, 1) in KE); e++) ;
	}
	if (e == k) return 0
	VS = k; VE = e
	return 1
}
function urlpw(s, n, i,    a, e, at, p, c) {
	a = i + 3; at = 0
	for (e = a; e <= n && !((c = substr(s, e, 1)) in KH); e++) {
		if (c == "[" && substr(s, e, 10) == MARK && substr(s, e + 10, 1) != "@") break
		if (c == "@") at = e
	}
	if (!at) return 0
	for (p = a; p < at && substr(s, p, 1) != ":"; p++) ;
	if (p + 1 >= at) return 0
	VS = p + 1; VE = at
	return 1
}
function redact(s,    n, i, j, k, e, out, done, c) {
	if (!RED || s !~ CANDIDATE) return s
	n = length(s); i = 1; done = 1; out = ""
	while (i <= n) {
		c = substr(s, i, 1)
		if (c in KW) {
			for (j = i; j <= n && (substr(s, j, 1) in KW); j++) ;
			if ((i == 1 || substr(s, i - 1, 1) != "/") && keyval(s, n, i, j)) {
				out = out substr(s, done, VS - done) MARK; done = i = VE; continue
			}
			for (k = i; k < j; k++) {
				if (k > 1 && (substr(s, k - 1, 1) in KA)) continue
				if (!(e = token_at(s, k, j))) continue
				out = out substr(s, done, k - done) MARK; done = e; k = e - 1
			}
			i = j; continue
		}
		if (c == ":" && substr(s, i + 1, 2) == "//") {
			if (urlpw(s, n, i)) { out = out substr(s, done, VS - done) MARK; done = i = VE; continue }
			i += 3; continue
		}
		i++
	}
	return out substr(s, done)
}
# ---- JSON strings: the escaping of lib/c/json.c ----------------------
function esc(s,    o, n, i, b, len, lo, hi, j, k) {
	if (s !~ NEEDS) return s
	o = ""; n = length(s); i = 1
	while (i <= n) {
		if (match(substr(s, i), PLAIN)) { o = o substr(s, i, RLENGTH); i += RLENGTH; continue }
		b = ORD[substr(s, i, 1)]
		if (b < 128) { o = o ESC[b]; i++; continue }
		if (b >= 194 && b <= 223) { len = 2; lo = 128; hi = 191 }
		else if (b == 224) { len = 3; lo = 160; hi = 191 }
		else if (b == 237) { len = 3; lo = 128; hi = 159 }
		else if (b >= 225 && b <= 239) { len = 3; lo = 128; hi = 191 }
		else if (b == 240) { len = 4; lo = 144; hi = 191 }
		else if (b >= 241 && b <= 243) { len = 4; lo = 128; hi = 191 }
		else if (b == 244) { len = 4; lo = 128; hi = 143 }
		else { o = o REPL; i++; continue }
		k = ORD[substr(s, i + 1, 1)]
		if (i + 1 > n || k < lo || k > hi) { o = o REPL; i++; continue }
		for (j = 2; j < len && i + j <= n && (k = ORD[substr(s, i + j, 1)]) >= 128 && k < 192; j++) ;
		if (j < len) { o = o REPL; i += j; continue }
		o = o substr(s, i, len); i += len
	}
	return o
}
function jstr(s) { return "\"" esc(s) "\"" }
function member(k, v) {
	if (v == "") return ""
	if (RED && keyclass(k)) v = MARK
	return "," jstr(k) ":" jstr(redact(v))
}
# pairs LIST: the members of "TYPE KEY=VALUE" lines (TYPE s or n).
function pairs(list,    n, i, a, t, k, v, o) {
	n = split(list, a, "\n"); o = ""
	for (i = 1; i <= n; i++) {
		if (a[i] == "") continue
		t = substr(a[i], 1, 1); k = substr(a[i], 3); v = k
		sub(/=.*/, "", k); v = substr(v, length(k) + 2)
		o = o (t == "n" ? "," jstr(k) ":" v : member(k, v))
	}
	return o
}
# ---- time: RFC 3339 UTC from milliseconds since the epoch --------------
function rfc3339(ems,    sec, days, r, z, era, doe, yoe, y, doy, mp, d, m) {
	sec = int(ems / 1000); days = int(sec / 86400); r = sec - days * 86400
	z = days + 719468; era = int(z / 146097); doe = z - era * 146097
	yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400; doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
	mp = int((5 * doy + 2) / 153); d = doy - int((153 * mp + 2) / 5) + 1
	m = mp < 10 ? mp + 3 : mp - 9
	if (m <= 2) y++
	return sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, int(r / 3600), int(r % 3600 / 60), r % 60, ems - sec * 1000)
}
function now_ms(    t) { srand(); t = srand(); return t * 1000 }
# ---- events and human lines -----------------------------------------
function head(    h, tp, x, x2, x16) {
	h = member("correlation_id", ENVIRON["_TALLY_A_CID"])
	tp = ENVIRON["TRACEPARENT"]; x = "[0-9a-f]"; x2 = x x; x16 = x2 x2 x2 x2 x2 x2 x2 x2
	if (tp ~ ("^" x2 "-" x16 x16 "-" x16 "-" x2 "(-.*)?$") && substr(tp, 1, 2) != "ff" &&
	    (substr(tp, 1, 2) != "00" || length(tp) == 55) &&
	    substr(tp, 4, 32) !~ /^0+$/ && substr(tp, 37, 16) !~ /^0+$/)
		h = h ",\"trace_id\":\"" substr(tp, 4, 32) "\",\"span_id\":\"" substr(tp, 37, 16) "\""
	return h member("feature", ENVIRON["_TALLY_A_FEATURE"]) \
		member("version", ENVIRON["_TALLY_A_VERSION"]) member("stage", ENVIRON["_TALLY_A_STAGE"])
}
function tail(pre,    m) {
	m = pairs(ENVIRON["_TALLY_A_META"])
	return pre pairs(ENVIRON["_TALLY_A_FIELDS"]) (m == "" ? "" : ",\"metadata\":{" substr(m, 2) "}") "}"
}
function event(ems, level, msg, tl) {
	return "{\"timestamp\":\"" rfc3339(ems) "\",\"level\":\"" level "\"" HEAD \
		(msg == "" ? "" : ",\"message\":" jstr(redact(msg))) tl
}
function json(line) { if (JFILE != "") print line >> JFILE }
function human(level, msg,    l, c) {
	l = (length(level) < 5 ? level " " : level) " " redact(msg)
	if (TEXT != "") print "[" HMS "] " l >> TEXT
	if (!CONSOLE) return
	c = COLOUR ? (level == "DEBUG" ? "\033[2m" : level == "WARN" ? "\033[33m" : level ~ /ERROR|FATAL/ ? "\033[31m" : "") : ""
	if (c != "") l = c level "\033[0m" substr(l, length(level) + 1)
	printf "[%s] %s\n", HMS, l > "/dev/stderr"
}
function warning(s) { return tolower(s) ~ /(^|[^a-z])warn(ing)?([^a-z]|$)/ }
function secs(ms) { ms = int((ms + 50) / 100); return int(ms / 10) "." (ms % 10) }
BEGIN {
	tally_init()
	MODE = ENVIRON["_TALLY_A_MODE"]; JFILE = ENVIRON["_TALLY_A_JSON"]; TEXT = ENVIRON["_TALLY_A_TEXT"]
	CONSOLE = ENVIRON["_TALLY_A_CONSOLE"] == 1; COLOUR = ENVIRON["_TALLY_A_COLOUR"] == 1
	HMS = ENVIRON["_TALLY_A_HMS"]; DESC = ENVIRON["_TALLY_A_DESC"]; HEAD = head()
	if (MODE == "event") {
		human(ENVIRON["_TALLY_A_HLEVEL"] != "" ? ENVIRON["_TALLY_A_HLEVEL"] : ENVIRON["_TALLY_A_LEVEL"],
			ENVIRON["_TALLY_A_HMSG"] != "" ? ENVIRON["_TALLY_A_HMSG"] : ENVIRON["_TALLY_A_MSG"])
		line = event(ENVIRON["_TALLY_A_MS"], ENVIRON["_TALLY_A_LEVEL"], ENVIRON["_TALLY_A_MSG"], tail(""))
		json(line)
		if (JFILE != "" && ENVIRON["_TALLY_A_JSON2"] != "") print line >> ENVIRON["_TALLY_A_JSON2"]
		exit
	}
	if (MODE == "record") {
		d = redact(DESC); gsub(/[\t\r\n]/, " ", d); f = ENVIRON["_TALLY_A_FEATURE"]
		printf "%s\t%s\t%s\t%s\t%s\n", ENVIRON["_TALLY_A_DUR"], ENVIRON["_TALLY_A_STATUS"], ENVIRON["_TALLY_A_WARN"], (f == "" ? "-" : f), d
		exit
	}
	if (MODE == "end") {
		ST = ENVIRON["_TALLY_A_STATUS"]; MS = ENVIRON["_TALLY_A_DUR"]; W = ENVIRON["_TALLY_A_WARN"]
		if (TEXT != "") print "$ exit " ST " after " MS " ms" >> TEXT
		if (ST != 0) human("ERROR", "Failed: " DESC " (exit " ST ", " secs(MS) "s)")
		else human("INFO", "Done: " DESC " (" secs(MS) "s" (W > 0 ? ", " W " warnings" : "") ")")
		json(event(ENVIRON["_TALLY_A_MS"], ST != 0 ? "ERROR" : "INFO", "Command finished: " DESC,
			tail(member("command", DESC) ",\"exit_code\":" ST ",\"duration_ms\":" MS ",\"warning_count\":" W)))
		exit
	}
	# MODE run: BEGIN writes the opening lines; each input line follows.
	human("INFO", "Running: " DESC)
	if (TEXT != "" && ENVIRON["_TALLY_A_ARGV"] != "") print redact("$ " ENVIRON["_TALLY_A_ARGV"]) >> TEXT
	LTAIL = tail(member("command", DESC)); W = 0
}
{
	line = redact($0)
	print line; fflush()
	if (TEXT != "") print line >> TEXT
	sub(/\r$/, "")
	if ($0 == "") next
	level = "INFO"
	if (warning($0)) { W++; level = "WARN" }
	json(event(now_ms(), level, $0, LTAIL))
}
END { if (MODE == "run" && ENVIRON["_TALLY_A_RESULT"] != "") print W > ENVIRON["_TALLY_A_RESULT"] }
'

# _tally_log LEVEL MESSAGE...: filters by LOG_LEVEL, then writes the console
# line, the text-log line and the JSON event (when JSON logging is on), all
# in one tally-log process.
_tally_log() {
	local level="$1" want=''
	shift
	_tally_level_num "${LOG_LEVEL:-INFO}"
	want=$_tally_n
	_tally_level_num "$level"
	[ "$_tally_n" -ge "$want" ] || return 0
	_tally_emit cj "$level" "$*"
}

# Usage: log_debug <message...>
# Prints "[HH:MM:SS] DEBUG message" on stderr when LOG_LEVEL is DEBUG, and
# keeps it in the open feature's log (secrets redacted). Returns 0.
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
# Globals set: the private feature state (_tally_feature...).
# Example: log_feature_start python-dev 3.13.1
log_feature_start() {
	local name="${1-}" version="${2-}" dir='' mdir=''
	case $name in
	'' | .* | *[!A-Za-z0-9._-]*)
		_tally_emit c ERROR "log_feature_start: invalid feature name '$name' (use letters, digits, . _ -)"
		return 1
		;;
	esac
	[ -n "$_tally_feature" ] && log_feature_end
	dir=${BUILD_LOG_DIR:-/var/log/container-build}
	# The directories the feature writes to that are missing, made by one
	# mkdir: the state directory (and BUILD_LOG_DIR with it), the JSON
	# logs' and the metrics' when those are on.
	mdir=${TALLY_METRICS_DIR:-/var/lib/container-build/metrics}
	set --
	[ -d "$dir/.tally/features.d" ] || set -- "$dir/.tally/features.d"
	[ -z "${_tally_json_loaded-}" ] || ! _tally_json_on || [ -d "$dir/json" ] || set -- "$@" "$dir/json"
	[ -z "${_tally_metrics_loaded-}" ] || ! _tally_metrics_on || [ -d "$mdir" ] || set -- "$@" "$mdir"
	[ $# -eq 0 ] || mkdir -p "$@" 2>/dev/null || [ -d "$dir" ] || _tally_emit c WARN "unable to create $dir"
	_tally_feature=$name
	_tally_feature_version=$version
	_tally_feature_commands=0
	_tally_feature_errors=0
	_tally_feature_warnings=0
	_tally_trace_feature=
	if _tally_trace_on && _tally_trace_begin; then
		_tally_trace_feature=$_tally_trace_new
		_tally_trace_fstart=$_tally_trace_now
	fi
	# The text log, made here and known good for _tally_text.
	if { true >>"$dir/$name.log"; } 2>/dev/null; then
		_tally_tfile_ok=$dir/$name.log
	fi
	_tally_now_ms
	_tally_feature_start_ms=$_tally_ms
	# One tally-log: console, text log and JSON event.
	_tally_emit cj INFO "Feature $name started" --stage start \
		--text-message "Feature $name${version:+ $version} started"
	return 0
}

# _tally_run DESCRIPTION STATUS_FILE COMMAND [ARG...]: tally-log --run with
# the sinks of the current call (see log_command); STATUS_FILE "" runs
# COMMAND, else reads its output from stdin and its status from the file.
_tally_run() {
	_tally_run_via "$_tally_tlog" "$_tally_res" "$@"
}

# _tally_run_via PROGRAM RESULT_FILE DESCRIPTION STATUS_FILE COMMAND
# [ARG...]: calls PROGRAM (tally-log, or _tally_srv_begin) with the
# arguments of tally-log --run for the current call; RESULT_FILE "" for
# no --result.
_tally_run_via() {
	local prog="$1" res="$2" desc="$3" sfile="$4"
	shift 4
	"$prog" --run --console ${_tally_wquiet:+--quiet-write-errors} \
		${sfile:+--status-file "$sfile"} \
		${_tally_tfile:+--text-log "$_tally_tfile"} \
		${res:+--result "$res"} ${_tally_rec:+--record "$_tally_rec"} \
		${_tally_jfile:+-o "$_tally_jfile" --correlation-id "$_tally_cid"} \
		${_tally_feature:+--feature "$_tally_feature"} \
		${_tally_feature_version:+--version "$_tally_feature_version"} \
		${_tally_trace_cur:+--traceparent "$_tally_trace_cur" --trace-file "${BUILD_LOG_DIR:-/var/log/container-build}/traces.jsonl"} \
		--command "$desc" -- "$@"
}

# _tally_srv_ready: returns 0 when this shell's logger (tally-log --serve)
# runs, fds 7, 8 and 9 are still its FIFOs and this shell's stdout and
# stderr are still its console, starting it when there is none yet; 1
# when log_command runs the command under its own tally-log instead: in a
# subshell (a pipeline, $(...), a job: $$ is the main shell's there),
# with stdout or stderr redirected since the logger started (or a regular
# file: the logger shares pipes and devices only), without /proc, when
# fds 7-9 were the script's before the first call or are since, or after
# the logger failed or was killed. Cost: a few stat(2) calls, no process.
_tally_srv_ready() {
	case $_tally_srv in -) return 1 ;; esac
	[ "${TALLY_LOGGER-}" != 0 ] || return 1
	[ /proc/self -ef "/proc/$$" ] || {
		[ -e /proc/self ] || _tally_srv=-
		return 1
	}
	[ -n "$_tally_srv" ] || {
		_tally_srv_start
		return
	}
	# A logger gone, or fds 7-9 the script's now: none from then on
	# (the fds are never taken back).
	if ! [ /proc/self/fd/7 -ef "/proc/$_tally_srv/fd/3" ] ||
		! [ /proc/self/fd/8 -ef "/proc/$_tally_srv/fd/4" ] ||
		! [ /proc/self/fd/9 -ef "/proc/$_tally_srv/fd/5" ]; then
		_tally_srv=-
		return 1
	fi
	[ /proc/self/fd/1 -ef "/proc/$_tally_srv/fd/1" ] &&
		[ /proc/self/fd/2 -ef "/proc/$_tally_srv/fd/2" ]
}

# _tally_srv_start: starts this shell's logger (one tally-log --serve
# process, once per shell) with this shell's stdout and stderr as its
# console, and opens its FIFOs as fds 7 (requests, read-write: a logger
# gone is never a SIGPIPE), 8 (the commands' output) and 9 (answers);
# returns 1 (and sets _tally_srv to -) when it cannot.
_tally_srv_start() {
	local out='' pid='' dir='' reply=''
	_tally_srv=-
	# Fds 7-9 must be free: they may be the script's.
	if [ -e /proc/self/fd/7 ] || [ -e /proc/self/fd/8 ] || [ -e /proc/self/fd/9 ]; then
		return 1
	fi
	{ [ -p /proc/self/fd/1 ] || [ -c /proc/self/fd/1 ]; } &&
		{ [ -p /proc/self/fd/2 ] || [ -c /proc/self/fd/2 ]; } || return 1
	_tally_state
	[ -n "$_tally_sdir" ] || return 1
	{ out=$("$_tally_tlog" --serve "$_tally_sdir" "$$" 2>/dev/null); } 8>&1 9>&2 || return 1
	pid=${out%% *} dir=${out#* }
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	[ -p "$dir/go" ] || return 1
	if { command exec 7<>"$dir/go" 8>"$dir/out" 9<"$dir/ack"; } 2>/dev/null &&
		printf 'H\0' >&7 && read -r reply <&9 && [ "$reply" = ok ]; then
		_tally_srv=$pid
		return 0
	fi
	{ command exec 7>&- 8>&- 9>&-; } 2>/dev/null
	return 1
}

# _tally_srv_send TYPE ARG...: sends the logger the request TYPE (B: a
# command begins, M: a message) for tally-log ARG..., with the
# environment tally-log reads; returns 1 (and does without a logger from
# then on) when it cannot.
_tally_srv_send() {
	local type="$1"
	shift
	printf '%s\0' "$type" "${NO_COLOR+=}${NO_COLOR-}" "${TALLY_REDACT+=}${TALLY_REDACT-}" \
		"${TRACEPARENT+=}${TRACEPARENT-}" \
		"${BUILD_CORRELATION_ID+=}${BUILD_CORRELATION_ID-}" "${TZ+=}${TZ-}" "$#" "$@" >&7 &&
		return 0
	_tally_srv=-
	return 1
}

# _tally_srv_begin ARG...: the begin request of tally-log ARG... (--run
# and its options); returns 1 when the logger is gone.
_tally_srv_begin() {
	_tally_srv_send B "$@"
}

# _tally_srv_emit ARG...: tally-log ARG... (a MESSAGE) done by the logger;
# sets _tally_rc to its exit status; returns 1 when the logger is gone.
_tally_srv_emit() {
	_tally_srv_send M "$@" && read -r _tally_rc <&9 && return 0
	_tally_srv=-
	return 1
}

# _tally_srv_run DESCRIPTION PATH COMMAND [ARG...]: log_command through
# the logger: the begin request, the command run by this shell with its
# output to the logger (an external command directly, a function or
# builtin in a subshell, as under tally-log), the end request. Sets
# _tally_rc, _tally_dur, _tally_warn and _tally_wfail. Returns 1 when the
# logger did not take the command (it has not run).
_tally_srv_run() {
	local desc="$1" path="$2"
	shift 2
	_tally_run_via _tally_srv_begin "" "$desc" "" "$@" || return 1
	# Fds 7-9 stay open in the command, as in every command of this shell
	# (closing them would cost six more system calls each time).
	case $path in
	*/*) "$@" >&8 2>&1 && _tally_rc=0 || _tally_rc=$? ;;
	*) ("$@") >&8 2>&1 && _tally_rc=0 || _tally_rc=$? ;;
	esac
	# "STATUS DURATION_MS WARNINGS WRITE_FAILED", once every line is
	# written; a logger gone is a failed write.
	if printf 'E\0%s\0' "$_tally_rc" >&7 &&
		read -r _tally_r1 _tally_dur _tally_warn _tally_wfail <&9 &&
		[ "$_tally_r1" = "$_tally_rc" ]; then
		return 0
	fi
	_tally_dur=0 _tally_warn=0 _tally_wfail=1 _tally_srv=-
	return 0
}

# Usage: log_command <description> <command> [args...]
# Runs the command with stdout and stderr merged, shows its output on stdout
# as it comes, appends it to the open feature's log, counts lines matching
# the warning pattern (the word "warn" or "warning", any case) as warnings
# and a non-zero exit status as an error, and with JSON logging on makes
# each output line a JSON event (level WARN for warning lines) and closes
# with an event carrying exit_code, duration_ms and warning_count. Secrets
# are redacted everywhere. An external command runs under one tally-log
# process; a function or builtin runs in a subshell piped into one. Calls
# _tally_metrics_command_end FEATURE DESCRIPTION STATUS DURATION_MS when
# metrics.sh defines it. Returns the command's own exit status, also under
# `set -e` and `set -u`, without PIPESTATUS; 100 when no command is given.
# Globals: reads BUILD_LOG_DIR, ENABLE_JSON_LOGGING; counts in the feature.
# Example: log_command "Installing Python" apt-get install -y python3
log_command() {
	local desc="${1-}" rc=0 dur=0 warn=0 wfail=0 sfile='' path='' r1='' start='' scratch='' span='' tid='' key=''
	if [ $# -lt 2 ]; then
		_tally_emit c ERROR "log_command: usage: log_command <description> <command> [args...]"
		return 100
	fi
	shift
	[ -n "$_tally_feature" ] && _tally_feature_commands=$((_tally_feature_commands + 1))
	# The sinks, looked up again only when what they depend on changed
	# (or a write failed); with tracing on, every time.
	key="$_tally_feature/${BUILD_LOG_DIR-}/${ENABLE_JSON_LOGGING-}/${BUILD_CORRELATION_ID-}/${TALLY_HOME-}/${PATH-}/$_tally_wquiet"
	if [ "$_tally_ctx_key" = "$key" ] && ! _tally_trace_on; then
		_tally_tfile=$_tally_ctx_tfile _tally_jfile=$_tally_ctx_jfile
		_tally_sdir=$_tally_ctx_sdir _tally_trace_cur=
	else
		_tally_text
		_tally_json
		_tally_state
		_tally_trace_ctx
		_tally_ctx_tfile=$_tally_tfile _tally_ctx_jfile=$_tally_jfile _tally_ctx_sdir=$_tally_sdir
		_tally_ctx_key=$key
	fi
	_tally_rec=${_tally_sdir:+$_tally_sdir/commands.tsv}
	# Scratch files of this shell: the state directory, else TMPDIR.
	scratch=${_tally_sdir:-${TMPDIR:-/tmp}}
	_tally_res="$scratch/result.$$"
	sfile="$scratch/status.$$"
	# An external command (a path) runs under tally-log; a function or
	# builtin (command -v prints its name) in a subshell piped into it.
	# `command -v` goes through a file and `read`: no fork; the answers are
	# kept per name (for this PATH) in _tally_which_list, lines of
	# "NAME<TAB>ANSWER", so a build's commands are looked up once each.
	[ "${PATH-}" = "${_tally_which_path-}" ] || _tally_which_list='' _tally_which_path=${PATH-}
	case $1 in
	*"$_tally_nl"* | *"$_tally_tab"*) _tally_which=none ;;
	*)
		case $_tally_which_list in
		*"$_tally_nl$1$_tally_tab"*)
			_tally_which=${_tally_which_list#*"$_tally_nl$1$_tally_tab"}
			_tally_which=${_tally_which%%"$_tally_nl"*}
			;;
		*) _tally_which=none ;;
		esac
		;;
	esac
	if [ "$_tally_which" = none ]; then
		_tally_which=
		if ! { command -v "$1" >"$sfile" && read -r _tally_which <"$sfile"; } 2>/dev/null; then
			# Not found, or the file cannot be written (a full disk): ask
			# again through a command substitution (a fork, then cached).
			_tally_which=$(command -v "$1" 2>/dev/null) || _tally_which=
		fi
		case $1 in
		*"$_tally_nl"* | *"$_tally_tab"*) ;;
		*)
			# At most about 16 KiB of answers; then start again.
			[ "${#_tally_which_list}" -lt 16384 ] || _tally_which_list=
			_tally_which_list="${_tally_which_list:-$_tally_nl}$1$_tally_tab$_tally_which$_tally_nl"
			;;
		esac
	fi
	path=$_tally_which
	_tally_tool
	if [ -n "$_tally_tlog" ] && [ -z "$_tally_trace_cur" ] && _tally_srv_ready &&
		_tally_srv_run "$desc" "$path" "$@"; then
		# Through this shell's logger: no process but the command's.
		rc=$_tally_rc dur=$_tally_dur warn=$_tally_warn wfail=$_tally_wfail
		case $wfail in 0) _tally_wquiet= ;; *) _tally_wquiet=1 ;; esac
	elif [ -n "$_tally_tlog" ]; then
		# The result file must take a write: checked once per file, and
		# again after a failed write.
		if [ "$_tally_res" != "$_tally_res_ok" ] || [ -n "$_tally_wquiet" ]; then
			if { true >>"$_tally_res"; } 2>/dev/null; then
				_tally_res_ok=$_tally_res
			else
				_tally_res='' _tally_res_ok=''
			fi
		fi
		case $path in
		*/*) _tally_run "$desc" "" "$@" && rc=0 || rc=$? ;;
		*)
			# The status file must take a byte (a full disk would turn every
			# status into 1): else TMPDIR, else no capture at all.
			if ! { printf 0 >"$sfile"; } 2>/dev/null; then
				sfile="${TMPDIR:-/tmp}/status.$$"
				{ printf 0 >"$sfile"; } 2>/dev/null || sfile=
			fi
			if [ -n "$sfile" ]; then
				{ trap 'printf "%s\n" "$?" >"$sfile"' EXIT; "$@"; } 2>&1 |
					_tally_run "$desc" "$sfile" "$@" && rc=0 || rc=$?
			else
				"$@" && rc=0 || rc=$?
			fi
			;;
		esac
		# "STATUS DURATION_MS WARNINGS WRITE_FAILED [SPAN_ID]"; a result
		# that cannot be read back is a failed write too.
		if [ -z "$_tally_res" ] || ! { read -r r1 dur warn wfail span <"$_tally_res"; } 2>/dev/null ||
			[ "$r1" != "$rc" ]; then
			dur=0 warn=0 span='' wfail=1
		fi
		case $wfail in 0) _tally_wquiet= ;; *) _tally_wquiet=1 ;; esac
	else
		# The awk fallback: the status travels on fd 3 through the command
		# substitution; fd 4 is the caller's stdout. No PIPESTATUS.
		{ true >>"$_tally_res"; } 2>/dev/null || _tally_res=
		_tally_now_ms
		start=$_tally_ms
		_tally_awk_opts --stage command
		_tally_a_mode=run _tally_a_desc=$desc _tally_a_argv="$*"
		_tally_a_result=$_tally_res _tally_a_console=1
		{ rc=$( { { "$@" 2>&1 3>&- 4>&- && _tally_rc=0 || _tally_rc=$?
			printf '%s' "$_tally_rc" >&3; } | _tally_awk >&4; } 3>&1); } 4>&1
		case $rc in '' | *[!0-9]*) rc=1 ;; esac
		_tally_now_ms
		dur=$((_tally_ms - start))
		if [ -z "$_tally_res" ] || ! { read -r warn <"$_tally_res"; } 2>/dev/null; then
			warn=0
		fi
		_tally_a_mode=end _tally_a_status=$rc _tally_a_dur=$dur _tally_a_warn=$warn
		_tally_a_ms=$_tally_ms
		_tally_awk </dev/null || :
		if [ -n "$_tally_rec" ]; then
			_tally_a_mode=record
			_tally_awk </dev/null >>"$_tally_rec" 2>/dev/null || :
		fi
	fi
	case $rc in '' | *[!0-9]*) rc=1 ;; esac
	case $dur in '' | *[!0-9]*) dur=0 ;; esac
	case $warn in '' | *[!0-9]*) warn=0 ;; esac
	if [ -n "$_tally_feature" ]; then
		_tally_feature_warnings=$((_tally_feature_warnings + warn))
		[ "$rc" -eq 0 ] || _tally_feature_errors=$((_tally_feature_errors + 1))
	fi
	if [ -n "$span" ] && [ -n "$_tally_trace_cur" ]; then
		tid=${_tally_trace_cur#??-}
		tid=${tid%%-*}
	else
		span=
	fi
	if [ -n "${_tally_metrics_loaded-}" ]; then
		_tally_metrics_command_end "$_tally_feature" "$desc" "$rc" "$dur" ${tid:+"$tid" "$span"} || :
	fi
	return "$rc"
}

# Usage: log_feature_end
# Closes the open feature: appends "<feature>: N errors, M warnings (Ss)" to
# BUILD_LOG_DIR/master-summary.log and a tab-separated line to
# BUILD_LOG_DIR/.tally/features.tsv (for log_build_summary in later RUN
# steps), emits the feature's JSON summary and records its build metrics
# (when those libraries are loaded). Returns 0, or 1 when no feature is open.
# Example: log_feature_start jq 1.7 && log_command "Install jq" true && log_feature_end
log_feature_end() {
	local name="$_tally_feature" dur='' status=success level=INFO line=''
	if [ -z "$name" ]; then
		_tally_emit c WARN "log_feature_end: no feature is open"
		return 1
	fi
	_tally_now_ms
	dur=$((_tally_ms - _tally_feature_start_ms))
	_tally_seconds "$dur"
	[ "$_tally_feature_errors" -eq 0 ] || status=failure level=ERROR
	printf '%s: %s errors, %s warnings (%ss)\n' "$name" "$_tally_feature_errors" \
		"$_tally_feature_warnings" "$_tally_secs" \
		2>/dev/null >>"${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log" ||
		[ -n "$_tally_wquiet" ] ||
		_tally_emit c WARN "unable to write ${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log"
	_tally_state
	if [ -n "$_tally_sdir" ]; then
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$dur" \
			"$_tally_feature_commands" "$_tally_feature_errors" \
			"$_tally_feature_warnings" 2>/dev/null >>"$_tally_sdir/features.tsv" || :
		# One empty file per finished feature: metrics.sh counts them
		# with a glob (no process, whatever the number of RUN steps).
		[ -d "$_tally_sdir/features.d" ] || mkdir "$_tally_sdir/features.d" 2>/dev/null || :
		{ : >"$_tally_sdir/features.d/$name"; } 2>/dev/null || :
	fi
	# log_command's scratch files go with the closing line (tally-log
	# --remove); without tally-log, rm. No option when there are none.
	set -- "${_tally_sdir:-${TMPDIR:-/tmp}}/result.$$" "${_tally_sdir:-${TMPDIR:-/tmp}}/status.$$"
	[ -e "$2" ] || set -- "$1"
	[ -e "$1" ] || shift
	_tally_tool
	if [ -z "$_tally_tlog" ] && [ $# -gt 0 ]; then
		rm -f "$@" 2>/dev/null || :
		set --
	fi
	[ $# -eq 0 ] || set -- --remove "$1" ${2:+--remove "$2"}
	# One tally-log: the console and text-log line, and with JSON logging
	# the closing event in the feature's JSON log and build-summary.jsonl.
	line="Feature $name finished: $status, $_tally_feature_errors errors, $_tally_feature_warnings warnings (${_tally_secs}s)"
	if [ -n "${_tally_json_loaded-}" ] && _tally_json_on; then
		_tally_emit cjs "$level" "Feature $name finished" --text-level INFO --text-message "$line" \
			--stage end --field status="$status" --num duration_ms="$dur" \
			--num command_count="$_tally_feature_commands" \
			--num error_count="$_tally_feature_errors" \
			--num warning_count="$_tally_feature_warnings" "$@"
	else
		_tally_emit c INFO "$line" "$@"
	fi
	if [ -n "${_tally_metrics_loaded-}" ]; then
		_tally_metrics_feature_end "$name" "$status" "$_tally_secs_ms" \
			"$_tally_feature_errors" "$_tally_feature_warnings" "$((_tally_ms / 1000))"
	fi
	_tally_trace_feature_end "$name" "$dur"
	_tally_feature=
	_tally_feature_version=
	_tally_trace_feature=
	return 0
}

# _tally_trace_feature_end NAME DURATION_MS: records the open feature's
# span (one tally-trace process): a child of the build's span, named
# "feature NAME", from log_feature_start to now, with the attributes
# tally.feature.name, tally.feature.version, tally.feature.command_count,
# tally.feature.error_count, tally.feature.warning_count and
# tally.duration_ms; status ERROR when the feature had errors.
_tally_trace_feature_end() {
	[ -n "$_tally_trace_feature" ] && [ -n "$_tally_trace_build" ] || return 0
	_tally_trace_on && _tally_trace_find || return 0
	set -- --name "feature $1" --attr tally.feature.name="$1" --int tally.duration_ms="$2"
	[ -z "$_tally_feature_version" ] || set -- "$@" --attr tally.feature.version="$_tally_feature_version"
	[ "$_tally_feature_errors" -eq 0 ] || set -- "$@" --error "$_tally_feature_errors errors"
	"$_tally_trace_tool" span -d "${BUILD_LOG_DIR:-/var/log/container-build}" \
		--parent "$_tally_trace_build" --span "$_tally_trace_feature" \
		--start "$_tally_trace_fstart" \
		--int tally.feature.command_count="$_tally_feature_commands" \
		--int tally.feature.error_count="$_tally_feature_errors" \
		--int tally.feature.warning_count="$_tally_feature_warnings" "$@" || :
	return 0
}

# Usage: log_build_end
# Closes the build's OpenTelemetry trace (OTEL_ENABLED=true): closes an
# open feature first, then records the build's span in
# BUILD_LOG_DIR/traces.jsonl (from the first traced call of the build, in
# whichever RUN step, to now; status ERROR when a feature or a command
# outside a feature failed), once per build; then, when
# OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
# sends the recorded spans (tally-trace send; a failure is reported on
# stderr and never fails the build). Without log_build_end, `tally-trace
# send` closes the build span at its last child's end. Returns 0; 1 when
# tracing is off, no build is traced, or its span was recorded already.
# Example: log_build_end
log_build_end() {
	local dir="${BUILD_LOG_DIR:-/var/log/container-build}"
	[ -n "$_tally_feature" ] && log_feature_end
	_tally_trace_on && _tally_trace_find || return 1
	"$_tally_trace_tool" end -d "$dir" || return 1
	if [ -n "${OTEL_EXPORTER_OTLP_ENDPOINT-}${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT-}" ]; then
		"$_tally_trace_tool" send -d "$dir" >&2 || :
	fi
	return 0
}

# Usage: log_build_summary
# Prints on stdout a table of every feature finished in this build so far
# (also in earlier RUN steps): status, seconds, commands, errors, warnings,
# a totals line, then the five slowest commands with their seconds, exit
# status and feature. Reads BUILD_LOG_DIR/.tally/features.tsv and
# commands.tsv. Returns 0, or 1 when no feature has finished yet.
# Example: log_build_summary
log_build_summary() {
	local dir=''
	dir="${BUILD_LOG_DIR:-/var/log/container-build}/.tally"
	[ -s "$dir/features.tsv" ] || return 1
	set -- "$dir/features.tsv"
	[ -r "$dir/commands.tsv" ] && set -- "$@" "$dir/commands.tsv"
	awk -F '	' '
		function secs(ms) { return sprintf("%.1f", ms / 1000) }
		FILENAME == ARGV[1] && NF >= 6 {
			if (n == 0) printf "%-24s %-9s %8s %9s %7s %9s\n", "FEATURE", "STATUS", "SECONDS", "COMMANDS", "ERRORS", "WARNINGS"
			printf "%-24s %-9s %8s %9d %7d %9d\n", $1, $2, secs($3), $4, $5, $6
			n++; ms += $3; c += $4; e += $5; w += $6; if ($2 != "success") f++
		}
		FILENAME != ARGV[1] && NF >= 5 && $1 ~ /^[0-9]+$/ {
			for (i = 1; i <= 5; i++) if (!(i in top) || $1 + 0 > tms[i]) break
			if (i > 5) next
			for (j = 5; j > i; j--) if ((j - 1) in top) { top[j] = top[j - 1]; tms[j] = tms[j - 1] }
			top[i] = $0; tms[i] = $1 + 0
		}
		END {
			printf "%-24s %-9s %8s %9d %7d %9d\n", n " features", (f ? f " failed" : "ok"), secs(ms), c, e, w
			if (!(1 in top)) exit
			printf "\nslowest commands:\n%8s %5s  %-24s %s\n", "SECONDS", "EXIT", "FEATURE", "COMMAND"
			for (i = 1; i <= 5 && (i in top); i++) {
				split(top[i], a, "\t"); d = top[i]
				for (k = 1; k <= 4; k++) sub(/^[^\t]*\t/, "", d)
				printf "%8s %5d  %-24s %s\n", secs(a[1]), a[2], a[4], d
			}
		}' "$@"
	return 0
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
