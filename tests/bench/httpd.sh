# shellcheck shell=sh
# httpd.sh: tally-httpd against node_exporter (textfile collector only) and
# lighttpd (the same bytes as a static file), in the same run, on the same
# 200-series (~12 KB) directory: the server pinned on CPU 0 (taskset -c 0),
# the load on CPU 1 (taskset -c 1 wrk -t1 -c16 -d${HTTPD_BENCH_SECONDS}s
# --latency, default 5 s). Prints, with the issue 5 targets:
#  1. requests/s: tally / node_exporter (>= 20x), tally / lighttpd (>= 0.5x);
#  2. p99 latency at 16 connections (< 2 ms);
#  3. peak resident memory under load (VmHWM): node_exporter / tally (>= 10x);
#  4. the stripped static binary (<= 200 KiB);
#  5. a 10,000-series (~1 MB) directory: p99 (< 20 ms).
# Returns 1 when a target does not hold or a tool is missing. Every server
# is killed by its pid; traffic goes to 127.0.0.1 only.
bench_need wrk lighttpd prometheus-node-exporter taskset strip curl || return 1
_h_secs=${HTTPD_BENCH_SECONDS:-5}
_h_fail=0
_h_pids=

# _h_port: prints a free TCP port on 127.0.0.1 (bound to 0, then released).
_h_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _h_wait_url URL: waits up to 10 s until URL answers 200.
_h_wait_url() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	printf 'bench: %s did not answer\n' "$1" >&2
	return 1
}

# _h_dir DIR SERIES [PAD]: writes DIR/bench.prom with SERIES gauge series in
# 10 families (about 60 bytes each, PAD bytes more in a label).
_h_dir() {
	mkdir -p "$1"
	awk -v n="$2" -v pad="${3-}" 'BEGIN {
		per = int(n / 10)
		for (f = 0; f < 10; f++) {
			printf "# HELP bench_family_%d_bytes Benchmark family %d.\n# TYPE bench_family_%d_bytes gauge\n", f, f, f
			for (i = 0; i < per; i++)
				printf "bench_family_%d_bytes{feature=\"feature-%04d%s\",status=\"success\"} %d\n", f, i, pad, i * 1024 + f
		}
	}' >"$1/bench.prom"
}

# _h_wrk URL: runs wrk pinned on CPU 1 against URL; prints
# "REQ_PER_S P99_MS P50_MS".
_h_wrk() {
	taskset -c 1 wrk -t1 -c16 -d"${_h_secs}s" --latency "$1" 2>&1 | awk '
		function ms(v,   u) { u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
			return (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
		/^Requests\/sec:/ { rps = $2 }
		$1 == "99%" { p99 = ms($2) }
		$1 == "50%" { p50 = ms($2) }
		/Non-2xx|Socket errors/ { err = err $0 " " }
		END { if (err != "") print "bench: wrk: " err > "/dev/stderr"; printf "%s %s %s\n", rps + 0, p99 + 0, p50 + 0 }'
}

# _h_hwm PID: prints the peak resident memory of PID in KiB.
_h_hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }

# _h_stop: kills the servers this benchmark started.
_h_stop() {
	for _p in $_h_pids; do kill "$_p" 2>/dev/null; done
	for _p in $_h_pids; do wait "$_p" 2>/dev/null; done
	_h_pids=
}

# _h_check WHAT OK: prints "ok" or "MISS" for target WHAT and records a miss.
_h_check() {
	if [ "$2" = 1 ]; then
		printf '  target %-52s ok\n' "$1"
	else
		printf '  target %-52s MISS\n' "$1"
		_h_fail=1
	fi
}

_h_dir "$BENCH_TMP/m200" 200
_h_dir "$BENCH_TMP/m10k" 10000 "-with-a-longer-name-for-one-mb"

# tally-httpd
taskset -c 0 "$BIN/tally-httpd" --listen 127.0.0.1:0 --dir "$BENCH_TMP/m200" \
	--port-file "$BENCH_TMP/tally.port" 2>"$BENCH_TMP/tally.err" &
_h_tpid=$!
_h_pids="$_h_pids $_h_tpid"
i=0
while [ ! -s "$BENCH_TMP/tally.port" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
_h_turl=http://127.0.0.1:$(cat "$BENCH_TMP/tally.port")/metrics
_h_wait_url "$_h_turl" || { _h_stop; return 1; }
curl -fsS -o "$BENCH_TMP/static-metrics" "$_h_turl"
_h_bytes=$(wc -c <"$BENCH_TMP/static-metrics")
# shellcheck disable=SC2046
set -- $(_h_wrk "$_h_turl")
_h_trps=$1 _h_tp99=$2 _h_tp50=$3
_h_tmem=$(_h_hwm "$_h_tpid")

# node_exporter, textfile collector only
_h_np=$(_h_port)
taskset -c 0 prometheus-node-exporter --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$BENCH_TMP/m200" --web.listen-address="127.0.0.1:$_h_np" \
	>"$BENCH_TMP/node.log" 2>&1 &
_h_npid=$!
_h_pids="$_h_pids $_h_npid"
_h_wait_url "http://127.0.0.1:$_h_np/metrics" || { _h_stop; return 1; }
# shellcheck disable=SC2046
set -- $(_h_wrk "http://127.0.0.1:$_h_np/metrics")
_h_nrps=$1 _h_np99=$2 _h_np50=$3
_h_nmem=$(_h_hwm "$_h_npid")

# lighttpd, the tally body as a static file
mkdir -p "$BENCH_TMP/www"
cp "$BENCH_TMP/static-metrics" "$BENCH_TMP/www/metrics"
_h_lp=$(_h_port)
cat >"$BENCH_TMP/lighttpd.conf" <<EOF
server.document-root = "$BENCH_TMP/www"
server.bind = "127.0.0.1"
server.port = $_h_lp
server.errorlog = "$BENCH_TMP/lighttpd.err"
mimetype.assign = ( "" => "text/plain; version=0.0.4; charset=utf-8" )
EOF
taskset -c 0 lighttpd -D -f "$BENCH_TMP/lighttpd.conf" >"$BENCH_TMP/lighttpd.log" 2>&1 &
_h_lpid=$!
_h_pids="$_h_pids $_h_lpid"
_h_wait_url "http://127.0.0.1:$_h_lp/metrics" || { _h_stop; return 1; }
# shellcheck disable=SC2046
set -- $(_h_wrk "http://127.0.0.1:$_h_lp/metrics")
_h_lrps=$1 _h_lp99=$2 _h_lp50=$3
_h_lmem=$(_h_hwm "$_h_lpid")
_h_stop

# 10,000 series
rm -f "$BENCH_TMP/tally.port"
taskset -c 0 "$BIN/tally-httpd" --listen 127.0.0.1:0 --dir "$BENCH_TMP/m10k" \
	--port-file "$BENCH_TMP/tally.port" 2>"$BENCH_TMP/tally10k.err" &
_h_pids=$!
i=0
while [ ! -s "$BENCH_TMP/tally.port" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
_h_kurl=http://127.0.0.1:$(cat "$BENCH_TMP/tally.port")/metrics
_h_wait_url "$_h_kurl" || { _h_stop; return 1; }
_h_kbytes=$(curl -fsS "$_h_kurl" | wc -c)
# shellcheck disable=SC2046
set -- $(_h_wrk "$_h_kurl")
_h_krps=$1 _h_kp99=$2
_h_stop

strip -o "$BENCH_TMP/tally-httpd.stripped" "$BIN/tally-httpd"
_h_size=$(wc -c <"$BENCH_TMP/tally-httpd.stripped")

awk -v b="$_h_bytes" -v t="$_h_trps" -v tp="$_h_tp99" -v tm="$_h_tmem" -v t5="$_h_tp50" \
	-v n="$_h_nrps" -v np="$_h_np99" -v nm="$_h_nmem" -v n5="$_h_np50" \
	-v l="$_h_lrps" -v lp="$_h_lp99" -v lm="$_h_lmem" -v l5="$_h_lp50" \
	-v kb="$_h_kbytes" -v k="$_h_krps" -v kp="$_h_kp99" -v sz="$_h_size" -v secs="$_h_secs" 'BEGIN {
	printf "200 series, %d bytes; wrk -t1 -c16 -d%ss on CPU 1, server on CPU 0\n", b, secs
	printf "  %-16s %10.0f req/s   p50 %6.2f ms   p99 %7.2f ms   VmHWM %7d KiB\n", "tally-httpd", t, t5, tp, tm
	printf "  %-16s %10.0f req/s   p50 %6.2f ms   p99 %7.2f ms   VmHWM %7d KiB\n", "node_exporter", n, n5, np, nm
	printf "  %-16s %10.0f req/s   p50 %6.2f ms   p99 %7.2f ms   VmHWM %7d KiB\n", "lighttpd static", l, l5, lp, lm
	printf "requests/s   tally / node_exporter  %7.1fx   (target >= 20x)\n", (n > 0 ? t / n : 0)
	printf "requests/s   tally / lighttpd       %7.2fx   (target >= 0.5x)\n", (l > 0 ? t / l : 0)
	printf "memory       node_exporter / tally  %7.1fx   (target >= 10x)\n", (tm > 0 ? nm / tm : 0)
	printf "p99 at 16 connections               %7.2f ms (target < 2 ms; lighttpd in this run %.2f ms)\n", tp, lp
	printf "stripped static binary              %7.1f KiB (target <= 200 KiB)\n", sz / 1024
	printf "10,000 series, %d bytes: %.0f req/s, p99 %.2f ms (target < 20 ms)\n", kb, k, kp
}'
_h_check "requests/s >= 20x node_exporter" "$(awk -v t="$_h_trps" -v n="$_h_nrps" 'BEGIN { print (n > 0 && t / n >= 20) }')"
_h_check "requests/s >= 0.5x lighttpd" "$(awk -v t="$_h_trps" -v l="$_h_lrps" 'BEGIN { print (l > 0 && t / l >= 0.5) }')"
_h_check "p99 < 2 ms" "$(awk -v p="$_h_tp99" 'BEGIN { print (p > 0 && p < 2) }')"
_h_check "memory <= 1/10 of node_exporter" "$(awk -v t="$_h_tmem" -v n="$_h_nmem" 'BEGIN { print (t > 0 && n / t >= 10) }')"
_h_check "stripped binary <= 200 KiB" "$(awk -v s="$_h_size" 'BEGIN { print (s <= 200 * 1024) }')"
_h_check "10,000 series p99 < 20 ms" "$(awk -v p="$_h_kp99" 'BEGIN { print (p > 0 && p < 20) }')"
[ "$_h_fail" -eq 0 ]
