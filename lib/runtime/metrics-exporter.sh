#!/bin/sh
# metrics-exporter: serves the collected build, runtime and healthcheck
# metrics for Prometheus to scrape, optionally beside the container's app.
#
# Usage: metrics-exporter [--listen [ADDR]:PORT] [--dir DIR] [--runtime-dir DIR]
#                         [--backend NAME] [--healthcheck-interval SECONDS]
#                         [-- APP [ARG...]]
#        metrics-exporter --help
#
# Serves /metrics, /healthz, /readyz (and with tally-httpd /health and /)
# on --listen (default ":$METRICS_PORT", METRICS_PORT default 9090): the
# *.prom files of the runtime directory (--runtime-dir, TALLY_RUNTIME_DIR,
# default /run/tally, else /tmp/tally) and of DIR (--dir, TALLY_METRICS_DIR,
# default /var/lib/container-build/metrics), merged, the runtime directory
# first.
#
# Backends (--backend, TALLY_EXPORTER_BACKEND, default auto: the first that
# is installed): tally-httpd, socat, busybox-httpd, nc (busybox nc -ll -e),
# file (writes the merged metrics to TALLY_NODE_EXPORTER_FILE, default
# /var/lib/prometheus/node-exporter/tally.prom, for a node_exporter textfile
# collector on the host, every METRICS_REFRESH_INTERVAL seconds).
#
# Every METRICS_REFRESH_INTERVAL seconds (default 15) it writes
# container_disk_usage_bytes{path} of the paths in TALLY_DISK_USAGE_PATHS
# (space-separated; du -skx, at most TALLY_DISK_USAGE_TIMEOUT seconds each,
# default 10) to disk-usage.prom in the runtime directory. With
# --healthcheck-interval N (TALLY_HEALTHCHECK_INTERVAL) it runs
# $TALLY_HOME/bin/healthcheck $TALLY_HEALTHCHECK_ARGS every N seconds.
#
# Without APP it serves until SIGTERM or SIGINT. With "-- APP [ARG...]" it
# runs APP beside the exporter, forwards TERM, INT, HUP, QUIT, USR1 and USR2
# to it, reaps orphans when it is PID 1, stops the exporter when APP ends
# and exits with APP's status. METRICS_ENABLED=false serves nothing (APP, if
# given, still runs).
#
# Exit status: APP's status; else 0 after SIGTERM; 100 usage error; 111 the
# backend cannot start (tally-httpd cannot listen, a forced backend is not
# installed, nothing writable for the file backend).
# Reference: docs/reference/metrics-exporter.md
set -u
LC_ALL=C
export LC_ALL

prog=metrics-exporter
usage="usage: metrics-exporter [--listen [ADDR]:PORT] [--dir DIR] [--runtime-dir DIR] [--backend NAME] [--healthcheck-interval SECONDS] [-- APP [ARG...]]"
self=$0
here=${0%/*}
[ "$here" != "$0" ] || here=.

# say MSG: prints "metrics-exporter: MSG" on stderr.
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
# die_usage MSG: prints MSG and the usage on stderr, exits 100.
die_usage() { say "$1"; say "$usage"; exit 100; }

# is_uint V: true when V is a non-empty string of digits.
is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

# ---- the shell this script runs under, for the processes it starts -------
# The responders run under the same shell as this script (dash, busybox
# ash, bash), found through /proc; else /bin/sh.
shell_words() {
	_exe=$(readlink "/proc/$$/exe" 2>/dev/null) || _exe=
	case ${_exe##*/} in
	'') printf '/bin/sh' ;;
	busybox*) printf '%s ash' "$_exe" ;;
	*) printf '%s' "$_exe" ;;
	esac
}

# quote S: prints S single-quoted for sh -c.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ---- the merge (fallback backends) ---------------------------------------
# The awk program that merges the *.prom files named in its arguments (read
# with getline, so a vanished file is just absent) into text format 0.0.4,
# and answers one request: mode "body" prints the body only; mode "http"
# prints a whole HTTP/1.1 response for method M and path P.
# shellcheck disable=SC2016
merge_awk='
function bad(f, why) { ferr[f] = why; return 0 }
# valid_sample(s): parses a sample line into S_name, S_labels, S_value; 1 or 0.
function valid_sample(s,   i, n, c, ln, seen, v) {
	if (!match(s, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) return 0
	S_name = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1); S_labels = ""
	if (substr(s, 1, 1) == "{") {
		S_labels = "{"; s = substr(s, 2); split("", seen)
		while (substr(s, 1, 1) != "}") {
			if (!match(s, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) return 0
			ln = substr(s, 1, RLENGTH - 2)
			if (ln in seen) return 0
			seen[ln] = 1
			S_labels = S_labels (S_labels == "{" ? "" : ",") substr(s, 1, RLENGTH)
			s = substr(s, RLENGTH + 1); n = length(s)
			for (i = 1; i <= n; i++) {
				c = substr(s, i, 1)
				if (c == "\\") {
					if (substr(s, i + 1, 1) !~ /^[\\"n]$/) return 0
					i++; continue
				}
				if (c == "\"") break
			}
			if (i > n) return 0
			S_labels = S_labels substr(s, 1, i); s = substr(s, i + 1)
			if (substr(s, 1, 1) == ",") s = substr(s, 2)
			else if (substr(s, 1, 1) != "}") return 0
		}
		S_labels = S_labels "}"; s = substr(s, 2)
		if (S_labels == "{}") S_labels = ""
	}
	if (!match(s, /^[ \t]+/)) return 0
	s = substr(s, RLENGTH + 1); sub(/[ \t]+$/, "", s)
	n = split(s, v, /[ \t]+/)
	if (n < 1 || n > 2) return 0
	if (v[1] !~ /^[-+]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?|Inf|inf|NaN)$/) return 0
	if (n == 2 && v[2] !~ /^-?[0-9]+$/) return 0
	S_value = v[1]; S_ts = (n == 2)
	return 1
}
# typ(f): the TYPE of family f, "" when untyped (never creates ftype[f]).
function typ(f) { return (f in ftype) ? ftype[f] : "" }
# family_of(name): the family a sample called name belongs to.
function family_of(name,   b, t) {
	t = typ(ctx)
	if (ctx != "" && (name == ctx || ((t == "histogram" || t == "summary") &&
	    (name == ctx "_sum" || name == ctx "_count" || (t == "histogram" && name == ctx "_bucket")))))
		return ctx
	b = name; sub(/_(bucket|sum|count)$/, "", b)
	t = typ(b)
	if (b != name && (t == "histogram" || t == "summary")) return b
	return name
}
function add_family(f, file) {
	if (!(f in known)) { known[f] = 1; order[++nfam] = f; origin[f] = file }
}
function conflict(file, kind) { conf[file, kind]++; if (!((file, kind) in confseen)) { confseen[file, kind] = 1; conflist[++nconf] = file SUBSEP kind } }
# esc(s): s escaped as a label value (no gsub: its backslash rules differ between awks).
function esc(s,   o, i, c) {
	o = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\\") o = o "\\\\"; else if (c == "\"") o = o "\\\""; else if (c == "\n") o = o "\\n"; else o = o c
	}
	return o
}
# load(path, label): checks the file whole, then merges it.
function load(path, label,   line, n, i, t, f, key, a, r) {
	n = 0
	while ((r = (getline line < path)) > 0) buf[++n] = line
	close(path)
	if (r < 0) return
	files[++nfiles] = label
	for (i = 1; i <= n; i++) {
		line = buf[i]
		if (line ~ /^[ \t]*$/) continue
		if (line ~ /^[ \t]*#/) {
			split(line, a, /[ \t]+/)
			if (a[1] == "" ) { a[1] = a[2]; a[2] = a[3]; a[3] = a[4]; a[4] = a[5] }
			if (a[2] == "TYPE" && (a[3] !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/ || a[4] !~ /^(counter|gauge|histogram|summary|untyped)$/))
				return bad(label, "TYPE")
			if (a[2] == "HELP" && a[3] !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/)
				return bad(label, "HELP")
			continue
		}
		if (!valid_sample(line)) return bad(label, "sample")
	}
	ctx = ""; split("", skip)
	for (i = 1; i <= n; i++) {
		line = buf[i]
		if (line ~ /^[ \t]*$/) continue
		if (line ~ /^[ \t]*#/) {
			split(line, a, /[ \t]+/)
			if (a[1] == "" ) { a[1] = a[2]; a[2] = a[3]; a[3] = a[4]; a[4] = a[5] }
			if (a[2] == "TYPE") {
				f = a[3]; ctx = f
				if (f in reserved) continue
				if ((f in ftype) && ftype[f] != a[4]) { skip[f] = 1; conflict(label, "type"); continue }
				if (!(f in ftype) && (f in known)) { skip[f] = 1; conflict(label, "type"); continue }
				ftype[f] = a[4]; add_family(f, label)
			} else if (a[2] == "HELP") {
				f = a[3]; ctx = f
				t = line; sub(/^[ \t]*#[ \t]+HELP[ \t]+[^ \t]+[ \t]?/, "", t)
				if (!(f in help)) help[f] = t
				else if (help[f] != t) conflict(label, "help")
			}
			continue
		}
		valid_sample(line)
		f = family_of(S_name)
		if (f in reserved) { conflict(label, "reserved"); continue }
		if (f in skip) continue
		add_family(f, label)
		key = S_name S_labels
		if (key in series) { conflict(label, "duplicate"); continue }
		series[key] = 1
		if (S_ts) conflict(label, "timestamp")
		samples[f] = samples[f] S_name S_labels " " S_value "\n"
		if (!(f in origin)) origin[f] = label
		if (path ~ /(^|\/)healthcheck[.]prom$/) {
			if (S_name == "container_healthcheck_status" && S_labels == "") hc_status[label] = S_value
			if (S_name == "container_healthcheck_last_run_timestamp_seconds" && S_labels == "") hc_time[label] = S_value + 0
		}
	}
}
function lint_ok(f, t) {
	t = typ(f)
	if (t == "counter") return f ~ /_total$/
	if (t == "gauge" || t == "histogram" || t == "summary") return f !~ /_total$/
	return 1
}
function proc_line(path,   l) { l = ""; if ((getline l < path) <= 0) l = ""; close(path); return l }
function builtins(   up, st, a, n, btime, l, start, tck) {
	out = out "# HELP tally_exporter_backend The backend serving these metrics (1 for the one in use).\n# TYPE tally_exporter_backend gauge\ntally_exporter_backend{backend=\"" backend "\"} 1\n"
	up = proc_line("/proc/uptime"); st = proc_line("/proc/1/stat")
	if (up == "" || st == "") return
	btime = ""
	while ((getline l < "/proc/stat") > 0) if (l ~ /^btime /) { split(l, a, " "); btime = a[2] }
	close("/proc/stat")
	sub(/^.*\) /, "", st); n = split(st, a, " ")
	tck = clk + 0; if (tck <= 0) tck = 100
	if (n < 20 || btime == "") return
	start = a[20] / tck; split(up, a, " ")
	out = out "# HELP container_uptime_seconds Seconds since the container'"'"'s first process (PID 1) started.\n# TYPE container_uptime_seconds gauge\n"
	out = out sprintf("container_uptime_seconds %.3f\n", a[1] - start)
	out = out "# HELP container_start_time_seconds Start time of the container'"'"'s first process (PID 1), seconds since the epoch.\n# TYPE container_start_time_seconds gauge\n"
	out = out sprintf("container_start_time_seconds %.2f\n", btime + start)
	started = btime + start
}
function render(   i, f, k, p) {
	out = ""
	for (i = 1; i <= nfam; i++) {
		f = order[i]
		if (samples[f] == "") continue
		if (!lint_ok(f)) { conflict(origin[f], "lint"); continue }
		out = out "# HELP " f " " ((f in help) ? help[f] : "Metric read from " origin[f] ".") "\n"
		if (f in ftype) out = out "# TYPE " f " " ftype[f] "\n"
		out = out samples[f]
	}
	if (nfiles) {
		out = out "# HELP tally_textfile_scrape_error 1 when a *.prom file was left out whole (unreadable or malformed), else 0.\n# TYPE tally_textfile_scrape_error gauge\n"
		for (i = 1; i <= nfiles; i++)
			out = out "tally_textfile_scrape_error{file=\"" esc(files[i]) "\"} " ((files[i] in ferr) ? 1 : 0) "\n"
	}
	if (nconf) {
		out = out "# HELP tally_textfile_conflicts Families, series or timestamps of a *.prom file left out by the merge rule, by kind.\n# TYPE tally_textfile_conflicts gauge\n"
		for (i = 1; i <= nconf; i++) {
			split(conflist[i], p, SUBSEP)
			out = out "tally_textfile_conflicts{file=\"" esc(p[1]) "\",kind=\"" p[2] "\"} " conf[p[1], p[2]] "\n"
		}
	}
	builtins()
}
function respond(code, reason, ct, body, extra) {
	printf "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s", code, reason, ct, length(body), extra, (method == "HEAD" ? "" : body)
}
function ready(   best, bt, f, age) {
	if (!dirok) return "metrics directory unreadable"
	best = ""
	for (f in hc_status) if (best == "" || hc_time[f] > bt) { best = f; bt = hc_time[f] }
	if (best == "") return ""
	if (started != "" && bt > 0 && bt + 1 < started) return ""
	age = now - bt
	if (maxage > 0 && bt > 0 && age > maxage) return "the latest result is " int(age) " s old (limit " maxage " s)"
	if (hc_status[best] != 1) return "container_healthcheck_status is " hc_status[best]
	return ""
}
BEGIN {
	reserved["container_uptime_seconds"]; reserved["container_start_time_seconds"]
	reserved["tally_textfile_scrape_error"]; reserved["tally_textfile_conflicts"]; reserved["tally_exporter_backend"]
	for (i = 1; i < ARGC; i++) {
		split(ARGV[i], pl, "\t")
		load(pl[1], pl[2])
		delete ARGV[i]
	}
	render()
	if (mode == "body") { printf "%s", out; exit 0 }
	p = path; sub(/[?].*$/, "", p)
	if (cgi) { sub(/\/$/, "", p); sub(/^\/cgi-bin\//, "/", p) }
	known_path = (p == "/metrics" || p == "/healthz" || p == "/readyz")
	if (!known_path) { respond(404, "Not Found", "text/plain; charset=utf-8", "not found\n", ""); exit 0 }
	if (method != "GET" && method != "HEAD") { respond(405, "Method Not Allowed", "text/plain; charset=utf-8", "method not allowed\n", "Allow: GET, HEAD\r\n"); exit 0 }
	if (p == "/healthz") { respond(200, "OK", "text/plain; charset=utf-8", "ok\n", ""); exit 0 }
	if (p == "/readyz") {
		why = ready()
		if (why == "") respond(200, "OK", "text/plain; charset=utf-8", "ok\n", "")
		else respond(503, "Service Unavailable", "text/plain; charset=utf-8", "readyz check failed: " why "\n", "")
		exit 0
	}
	respond(200, "OK", "text/plain; version=0.0.4; charset=utf-8", out, "Vary: Accept-Encoding\r\n")
}'

# render MODE [METHOD PATH]: runs the merge over the runtime directory and
# DIR (the runtime directory first; file labels: NAME in the first, DIR/NAME
# in the second) and prints the body or the HTTP response.
render() {
	_n=0
	set -- "$1" "${2-GET}" "${3-/metrics}"
	_mode=$1 _method=$2 _path=$3
	shift 3
	for _d in "$runtime_dir" "$metrics_dir"; do
		[ "$_n" -eq 1 ] && [ "$_d" = "$runtime_dir" ] && continue
		for _f in "$_d"/*.prom; do
			[ -f "$_f" ] || continue
			if [ "$_n" -eq 0 ]; then _l=${_f##*/}; else _l=$_f; fi
			set -- "$@" "$_f	$_l"
		done
		_n=1
	done
	_dirok=0
	[ -r "$metrics_dir" ] && [ -x "$metrics_dir" ] && _dirok=1
	awk -v mode="$_mode" -v method="$_method" -v path="$_path" -v cgi="${_tally_cgi-}" \
		-v clk="$(getconf CLK_TCK 2>/dev/null || echo 100)" -v backend="$backend" \
		-v now="$(date +%s)" -v maxage="${TALLY_HEALTH_MAX_AGE:-90}" -v dirok="$_dirok" \
		"$merge_awk" "$@"
}

# respond: reads one HTTP request on stdin (request line, then header lines
# up to the blank line, at most 100) and writes the response on stdout.
respond() {
	_cr=$(printf '\r')
	IFS=' ' read -r _m _t _v || return 0
	_i=0
	while IFS= read -r _h; do
		_h=${_h%"$_cr"}
		[ -n "$_h" ] || break
		_i=$((_i + 1))
		[ "$_i" -le 100 ] || break
	done
	_m=${_m%"$_cr"}
	_t=${_t%"$_cr"}
	render http "$_m" "$_t"
}

# ---- directories -----------------------------------------------------------

# writable_dir D: creates D when missing; true when it is a writable directory.
writable_dir() {
	mkdir -p "$1" 2>/dev/null
	[ -d "$1" ] && [ -w "$1" ] && [ -x "$1" ]
}

# atomic_write FILE: writes stdin to FILE through a hidden temporary file
# in the same directory and a rename; returns non-zero (FILE untouched) on
# failure.
atomic_write() {
	_dir=${1%/*}
	[ "$_dir" != "$1" ] || _dir=.
	_base=${1##*/}
	_tmp=$(mktemp "$_dir/.$_base.XXXXXX" 2>/dev/null) || _tmp=$_dir/.$_base.$$
	if cat >"$_tmp" && chmod 0644 "$_tmp" && mv -f "$_tmp" "$1"; then
		return 0
	fi
	rm -f "$_tmp"
	return 1
}

# ---- runtime metrics ----------------------------------------------------------

# du_limited PATH: prints the kilobytes du -skx reports for PATH, within
# TALLY_DISK_USAGE_TIMEOUT seconds; nothing when it fails or runs out of time.
du_limited() {
	if [ -n "$timeout_cmd" ]; then
		$timeout_cmd -s KILL "$du_timeout" du -skx "$1" 2>/dev/null | awk 'NR == 1 { print $1 }'
		return 0
	fi
	_out=$(mktemp "$runtime_dir/.du.XXXXXX" 2>/dev/null) || return 0
	du -skx "$1" >"$_out" 2>/dev/null &
	_dp=$!
	_i=0
	while kill -0 "$_dp" 2>/dev/null; do
		if [ "$_i" -ge "$((du_timeout * 10))" ]; then
			kill -9 "$_dp" 2>/dev/null
			break
		fi
		sleep 0.1 2>/dev/null || sleep 1
		_i=$((_i + 1))
	done
	if wait "$_dp" 2>/dev/null; then
		awk 'NR == 1 { print $1 }' "$_out"
	fi
	rm -f "$_out"
}

# disk_usage: writes disk-usage.prom in the runtime directory:
# container_disk_usage_bytes{path} for each path of TALLY_DISK_USAGE_PATHS
# that du measured in time, and tally_disk_usage_error{path} (1: failed or
# timed out, the bytes then absent).
disk_usage() {
	[ -n "${TALLY_DISK_USAGE_PATHS-}" ] || return 0
	_lines=
	set -f
	for _p in $TALLY_DISK_USAGE_PATHS; do
		_k=$(du_limited "$_p")
		_lines="$_lines$_p	$_k
"
	done
	set +f
	printf '%s' "$_lines" | awk -F '\t' '
		function esc(s,   o, i, c) {
			o = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c == "\\") o = o "\\\\"; else if (c == "\"") o = o "\\\""; else o = o c
			}
			return o
		}
		NF >= 1 && $1 != "" { p[++n] = $1; k[n] = $2 }
		END {
			print "# HELP container_disk_usage_bytes Disk space used under each configured path (du -skx), in bytes."
			print "# TYPE container_disk_usage_bytes gauge"
			for (i = 1; i <= n; i++) if (k[i] ~ /^[0-9]+$/) printf "container_disk_usage_bytes{path=\"%s\"} %.0f\n", esc(p[i]), k[i] * 1024
			print "# HELP tally_disk_usage_error 1 when du failed or ran past TALLY_DISK_USAGE_TIMEOUT for the path, else 0."
			print "# TYPE tally_disk_usage_error gauge"
			for (i = 1; i <= n; i++) printf "tally_disk_usage_error{path=\"%s\"} %d\n", esc(p[i]), (k[i] !~ /^[0-9]+$/)
		}' | atomic_write "$runtime_dir/disk-usage.prom" ||
		say "warning: unable to write $runtime_dir/disk-usage.prom"
}

# run_healthcheck: runs the healthcheck with TALLY_HEALTHCHECK_ARGS; it
# records healthcheck.prom itself.
run_healthcheck() {
	# shellcheck disable=SC2086
	"$healthcheck" ${TALLY_HEALTHCHECK_ARGS-} >/dev/null 2>&1 </dev/null
}

# refresher: the loop that refreshes disk usage every refresh seconds, runs
# the healthcheck every hc_interval seconds and (file backend) rewrites the
# node_exporter file; ends on TERM.
refresher() {
	_sp=
	trap '[ -z "$_sp" ] || kill "$_sp" 2>/dev/null; exit 0' TERM INT
	trap '' HUP
	_next_du=0 _next_hc=0
	while :; do
		_now=$(date +%s)
		if [ "$_now" -ge "$_next_du" ]; then
			disk_usage
			if [ "$backend" = file ]; then
				render body | atomic_write "$node_file" ||
					say "warning: unable to write $node_file"
			fi
			_next_du=$((_now + refresh))
		fi
		if [ "$hc_interval" -gt 0 ] && [ "$_now" -ge "$_next_hc" ]; then
			run_healthcheck
			_next_hc=$(($(date +%s) + hc_interval))
		fi
		_now=$(date +%s)
		_wake=$_next_du
		[ "$hc_interval" -eq 0 ] || [ "$_next_hc" -ge "$_wake" ] || _wake=$_next_hc
		_s=$((_wake - _now))
		[ "$_s" -ge 1 ] || _s=1
		sleep "$_s" &
		_sp=$!
		wait "$_sp"
		_sp=
	done
}

# ---- options -------------------------------------------------------------------

listen=":${METRICS_PORT:-9090}"
metrics_dir=${TALLY_METRICS_DIR:-/var/lib/container-build/metrics}
runtime_arg=${TALLY_RUNTIME_DIR-}
backend=${TALLY_EXPORTER_BACKEND:-auto}
hc_interval=${TALLY_HEALTHCHECK_INTERVAL:-0}
mode=serve

while [ $# -gt 0 ]; do
	case $1 in
	--help | -h)
		sed -n '2,/^set -u/{ /^set -u/d; s/^# \{0,1\}//; p; }' "$self"
		exit 0
		;;
	--listen | --dir | --runtime-dir | --backend | --healthcheck-interval)
		[ $# -ge 2 ] || die_usage "$1 needs a value"
		case $1 in
		--listen) listen=$2 ;;
		--dir) metrics_dir=$2 ;;
		--runtime-dir) runtime_arg=$2 ;;
		--backend) backend=$2 ;;
		--healthcheck-interval) hc_interval=$2 ;;
		esac
		shift 2
		;;
	--respond | --cgi | --render)
		# internal: the per-request side of the fallback backends
		mode=${1#--}
		shift
		;;
	--)
		shift
		[ $# -ge 1 ] || die_usage "-- needs an APP"
		break
		;;
	*)
		die_usage "unknown option: $1"
		;;
	esac
done

refresh=${METRICS_REFRESH_INTERVAL:-15}
{ is_uint "$refresh" && [ "$refresh" -ge 1 ]; } || die_usage "METRICS_REFRESH_INTERVAL '$refresh' is not a whole number of seconds >= 1"
is_uint "$hc_interval" || die_usage "--healthcheck-interval '$hc_interval' is not a whole number of seconds"
du_timeout=${TALLY_DISK_USAGE_TIMEOUT:-10}
{ is_uint "$du_timeout" && [ "$du_timeout" -ge 1 ]; } || die_usage "TALLY_DISK_USAGE_TIMEOUT '$du_timeout' is not a whole number of seconds >= 1"
[ -n "$metrics_dir" ] || die_usage "--dir is empty"
case $backend in
auto | tally-httpd | socat | busybox-httpd | nc | file) ;;
*) die_usage "unknown backend '$backend' (auto, tally-httpd, socat, busybox-httpd, nc, file)" ;;
esac
case $listen in
\[*\]:*) addr=${listen%]:*}; addr=${addr#\[}; port=${listen##*]:} ;;
*:*) addr=${listen%:*}; port=${listen##*:} ;;
*) die_usage "--listen '$listen' is not [ADDR]:PORT" ;;
esac
{ is_uint "$port" && [ "$port" -le 65535 ]; } || die_usage "--listen '$listen' is not [ADDR]:PORT"
node_file=${TALLY_NODE_EXPORTER_FILE:-/var/lib/prometheus/node-exporter/tally.prom}

# The runtime directory: the one asked for (default /run/tally) when it can
# be created and written, else /tmp/tally; the responders get it resolved.
if [ "$mode" = serve ]; then
	runtime_dir=
	for _d in "${runtime_arg:-/run/tally}" /tmp/tally; do
		if writable_dir "$_d"; then
			runtime_dir=$_d
			break
		fi
	done
	[ -n "$runtime_dir" ] || { say "warning: no writable runtime directory (${runtime_arg:-/run/tally}, /tmp/tally)"; runtime_dir=${runtime_arg:-/run/tally}; }
else
	runtime_dir=${runtime_arg:-/run/tally}
fi
TALLY_RUNTIME_DIR=$runtime_dir
TALLY_METRICS_DIR=$metrics_dir
export TALLY_RUNTIME_DIR TALLY_METRICS_DIR

# ---- the per-request modes -------------------------------------------------------
case $mode in
respond)
	respond
	exit 0
	;;
cgi)
	_tally_cgi=1
	render http "${REQUEST_METHOD:-GET}" "${REQUEST_URI:-/metrics}"
	exit 0
	;;
render)
	render body
	exit 0
	;;
esac

# ---- finding the tools -------------------------------------------------------------

# find_tally NAME: prints the path of tally's NAME ($TALLY_HOME/bin, beside
# this command, the build tree, then PATH), or nothing.
find_tally() {
	for _c in "${TALLY_HOME:-/opt/tally}/bin/$1" "$here/$1" "$here/../../bin/$1"; do
		[ -x "$_c" ] && [ ! -d "$_c" ] && { printf '%s\n' "$_c"; return 0; }
	done
	command -v "$1" 2>/dev/null
}

# have_busybox APPLET: true when busybox has APPLET.
have_busybox() {
	command -v busybox >/dev/null 2>&1 && busybox --list 2>/dev/null | grep -qx "$1"
}

httpd=$(find_tally tally-httpd) || httpd=
healthcheck=$(find_tally healthcheck) || healthcheck=
timeout_cmd=
if command -v timeout >/dev/null 2>&1 && timeout -s KILL 5 true 2>/dev/null; then
	timeout_cmd=timeout
fi

# available NAME: true when backend NAME can run here.
available() {
	case $1 in
	tally-httpd) [ -n "$httpd" ] ;;
	socat) command -v socat >/dev/null 2>&1 ;;
	busybox-httpd) have_busybox httpd ;;
	nc) have_busybox nc ;;
	file) writable_dir "${node_file%/*}" ;;
	esac
}

enabled=1
case ${METRICS_ENABLED-} in false | FALSE | 0 | no) enabled= ;; esac

if [ -n "$enabled" ]; then
	if [ "$backend" = auto ]; then
		for _b in tally-httpd socat busybox-httpd nc file; do
			if available "$_b"; then
				backend=$_b
				break
			fi
		done
		if [ "$backend" = auto ]; then
			say "fatal: no backend: tally-httpd, socat and busybox are missing and ${node_file%/*} is not writable"
			exit 111
		fi
		[ "$backend" = tally-httpd ] || say "tally-httpd not found: serving with $backend"
	elif ! available "$backend"; then
		case $backend in
		tally-httpd) say "fatal: tally-httpd not found in ${TALLY_HOME:-/opt/tally}/bin, beside this command or on PATH" ;;
		file) say "fatal: ${node_file%/*} is not a writable directory" ;;
		*) say "fatal: backend $backend is not installed" ;;
		esac
		exit 111
	fi
fi
if [ "$hc_interval" -gt 0 ] && [ -z "$healthcheck" ]; then
	say "warning: healthcheck not found: --healthcheck-interval ignored"
	hc_interval=0
fi
# The age limit of /readyz follows the healthcheck interval run here.
if [ "$hc_interval" -gt 0 ] && [ -z "${TALLY_HEALTH_MAX_AGE-}" ]; then
	TALLY_HEALTH_MAX_AGE=$((hc_interval * 3))
	[ "$TALLY_HEALTH_MAX_AGE" -ge 90 ] || TALLY_HEALTH_MAX_AGE=90
	export TALLY_HEALTH_MAX_AGE
fi

# ---- starting the backend ---------------------------------------------------------

TALLY_EXPORTER_BACKEND=$backend
export TALLY_EXPORTER_BACKEND
sh_words=$(shell_words)
respond_cmd="exec $sh_words $(quote "$self") --respond"

# start_backend: starts the backend in the background; sets bpid ("" for
# the file backend, which the refresher is).
start_backend() {
	bpid=
	case $backend in
	tally-httpd)
		if [ "$runtime_dir" = "$metrics_dir" ]; then
			"$httpd" --listen "$listen" --dir "$metrics_dir" &
		else
			"$httpd" --listen "$listen" --dir "$runtime_dir" --dir "$metrics_dir" &
		fi
		;;
	socat)
		case $listen in
		\[*) _spec="TCP6-LISTEN:$port,bind=[$addr],ipv6only=1" ;;
		:*) _spec="TCP-LISTEN:$port" ;;
		*) _spec="TCP4-LISTEN:$port,bind=$addr" ;;
		esac
		socat -T 10 "$_spec,reuseaddr,fork,max-children=32" "SYSTEM:$respond_cmd" &
		;;
	busybox-httpd)
		_www=$runtime_dir/.httpd
		mkdir -p "$_www/cgi-bin" "$_www/metrics" "$_www/healthz" "$_www/readyz" || return 1
		printf '#!/bin/sh\n%s --cgi\n' "$respond_cmd" >"$_www/cgi-bin/index.cgi.tmp" &&
			chmod 0755 "$_www/cgi-bin/index.cgi.tmp" &&
			mv -f "$_www/cgi-bin/index.cgi.tmp" "$_www/cgi-bin/index.cgi" || return 1
		for _p in metrics healthz readyz; do
			ln -sf index.cgi "$_www/cgi-bin/$_p"
		done
		: >"$runtime_dir/.httpd.conf"
		case $listen in
		\[* | :*) _p=$port ;;
		*) _p=$addr:$port ;;
		esac
		busybox httpd -f -p "$_p" -h "$_www" -c "$runtime_dir/.httpd.conf" &
		;;
	nc)
		# a client that stalls is cut off after 10 s where timeout exists
		# shellcheck disable=SC2086
		busybox nc -ll -p "$port" -e ${timeout_cmd:+$timeout_cmd 10} $sh_words "$self" --respond &
		;;
	file)
		return 0
		;;
	esac
	bpid=$!
}

# ---- running ---------------------------------------------------------------------

# Without APP and with nothing to refresh, tally-httpd is the process.
if [ $# -eq 0 ] && [ -n "$enabled" ] && [ "$backend" = tally-httpd ] &&
	[ -z "${TALLY_DISK_USAGE_PATHS-}" ] && [ "$hc_interval" -eq 0 ]; then
	if [ "$runtime_dir" = "$metrics_dir" ]; then
		exec "$httpd" --listen "$listen" --dir "$metrics_dir"
	fi
	exec "$httpd" --listen "$listen" --dir "$runtime_dir" --dir "$metrics_dir"
fi
if [ $# -eq 0 ] && [ -z "$enabled" ]; then
	say "METRICS_ENABLED=false: nothing to serve"
	exit 0
fi

bpid='' rpid='' apid='' trapped=''
if [ -n "$enabled" ]; then
	start_backend || { say "fatal: unable to start the $backend backend"; exit 111; }
	if [ -n "${TALLY_DISK_USAGE_PATHS-}" ] || [ "$hc_interval" -gt 0 ] || [ "$backend" = file ]; then
		refresher &
		rpid=$!
	fi
fi

# forward SIG: sends SIG to APP (or, without APP, to the backend); INT and
# QUIT go as TERM to a process that ignores them (background commands of
# dash and busybox ash start with INT and QUIT ignored). Run by the traps.
# shellcheck disable=SC2317
forward() {
	trapped=1
	_to=${apid:-$bpid}
	[ -n "$_to" ] || _to=$rpid
	[ -n "$_to" ] || return 0
	_sig=$1
	case $1 in
	INT | QUIT)
		_bit=2
		[ "$1" = INT ] || _bit=4
		_ign=$(awk '$1 == "SigIgn:" { print $2 }' "/proc/$_to/status" 2>/dev/null) || _ign=
		if [ -n "$_ign" ] && [ $((0x$_ign & _bit)) -ne 0 ]; then _sig=TERM; fi
		;;
	esac
	kill "-$_sig" "$_to" 2>/dev/null
}
for _s in TERM INT HUP QUIT USR1 USR2; do
	# shellcheck disable=SC2064
	trap "forward $_s" "$_s"
done

if [ $# -gt 0 ]; then
	"$@" &
	apid=$!
fi
main=${apid:-$bpid}
[ -n "$main" ] || main=$rpid

# wait returns early (status > 128) when a trapped signal arrives, and
# reaps every child (orphans too, when this is PID 1); wait again until
# the main process has really ended, and take its own status (the shell
# keeps it) rather than the interrupted wait's.
while :; do
	trapped=
	wait "$main" 2>/dev/null
	rc=$?
	[ -n "$trapped" ] || break
	kill -0 "$main" 2>/dev/null && continue
	wait "$main" 2>/dev/null
	_rc=$?
	[ "$_rc" -eq 127 ] || rc=$_rc
	break
done
for _p in $bpid $rpid; do
	[ "$_p" = "$main" ] && continue
	kill -TERM "$_p" 2>/dev/null
done
for _p in $bpid $rpid; do
	[ "$_p" = "$main" ] || wait "$_p" 2>/dev/null
done
# a backend stopped by our TERM (without APP) exits 0
if [ -z "$apid" ] && [ "$rc" -eq 143 ]; then rc=0; fi
exit "$rc"
