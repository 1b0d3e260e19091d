# shellcheck shell=sh disable=SC2016
# log.sh: tally-log and log_command against what they replace, in one run:
# - one event from a dash loop: tally-log vs the fork+exec of a static
#   `busybox true` (target: at most 1.25x), vs `jq -nc --arg` (target: at
#   least 50x faster) and vs `jo` (target: faster);
# - --stream throughput on 100-byte lines, pinned to one core (target:
#   500,000 lines/s or more);
# - log_command's overhead over the bare command (target: 2 ms or less),
#   JSON logging on, build metrics off (metrics.sh is measured apart).
bench_need jq jo dash busybox taskset || return 1
export BENCH_N BIN BENCH_TMP
bb=$(command -v busybox)
export bb

# loop_ns SCRIPT: runs SCRIPT (dash, pinned to core 0, $i the counter)
# BENCH_N times and prints the nanoseconds per call.
loop_ns() {
	_s=$(now_ns)
	taskset -c 0 dash -c 'i=0; while [ $i -lt $BENCH_N ]; do '"$1"'; i=$((i+1)); done'
	_e=$(now_ns)
	echo $(((_e - _s) / BENCH_N))
}

# ratio_line NAME A_NS B_NAME B_NS TARGET: prints A against B as B/A.
ratio_line() {
	awk -v name="$1" -v a="$2" -v peer="$3" -v b="$4" -v target="$5" 'BEGIN {
		printf "%-34s tally %8.3f ms   %-22s %8.3f ms   %s %6.2fx   (%s)\n",
			name, a / 1e6, peer, b / 1e6, "peer/tally", (a > 0 ? b / a : 0), target }'
}

t_log=$(loop_ns '"$BIN/tally-log" --level INFO --feature f --field k=v -o "$BENCH_TMP/a.jsonl" "message $i"')
t_true=$(loop_ns '"$bb" true')
t_jq=$(loop_ns 'jq -nc --arg m "message $i" --arg f f --arg k v "{level:\"INFO\",feature:\$f,message:\$m,k:\$k}" >>"$BENCH_TMP/b.jsonl"')
t_jo=$(loop_ns 'jo level=INFO feature=f message="message $i" k=v >>"$BENCH_TMP/c.jsonl"')
ratio_line "one JSON event vs busybox true" "$t_log" "static busybox true" "$t_true" "tally cost at most 1.25x: peer/tally >= 0.80"
ratio_line "one JSON event vs jq" "$t_log" "jq -nc --arg" "$t_jq" "target >= 50x"
ratio_line "one JSON event vs jo" "$t_log" "jo" "$t_jo" "target > 1x"

# Streaming: 1,000,000 lines of 100 bytes (99 + newline).
awk 'BEGIN { l = sprintf("%99s", ""); gsub(/ /, "x", l); for (i = 0; i < 1000000; i++) print l }' >"$BENCH_TMP/lines"
s=$(now_ns)
taskset -c 0 "$BIN/tally-log" --stream --feature f -o "$BENCH_TMP/stream.jsonl" <"$BENCH_TMP/lines"
e=$(now_ns)
awk -v ns="$((e - s))" -v n="$(wc -l <"$BENCH_TMP/stream.jsonl")" 'BEGIN {
	printf "%-34s %d events in %.3f s: %.0f lines/s   (target >= 500000)\n",
		"--stream, 100-byte lines, 1 core", n, ns / 1e9, n / (ns / 1e9) }'

# log_command over the bare command, inside a feature, JSON on, the
# output on a pipe as a RUN step's: through the shell's logger, and with
# TALLY_LOGGER=0 (one tally-log --run process per command).
n_cmd=$((BENCH_N / 2))
s=$(now_ns)
taskset -c 0 dash -c 'i=0; while [ $i -lt '"$n_cmd"' ]; do /bin/true; i=$((i+1)); done'
e=$(now_ns)
t_bare=$(((e - s) / n_cmd))
# lc_ns LOGGER: nanoseconds per log_command with TALLY_LOGGER=LOGGER, logs
# in BENCH_TMP/logs-LOGGER.
lc_ns() {
	_s=$(now_ns)
	TALLY_LOGGER=$1 TALLY_HOME=$PWD/build BUILD_LOG_DIR=$BENCH_TMP/logs-$1 ENABLE_JSON_LOGGING=true \
		METRICS_ENABLED=false BUILD_CORRELATION_ID=bench taskset -c 0 dash -c '
		. "$TALLY_HOME/lib/base/logging.sh"
		log_feature_start bench
		i=0; while [ $i -lt '"$n_cmd"' ]; do log_command "Run true" /bin/true; i=$((i+1)); done
		log_feature_end' 2>&1 | cat >/dev/null
	_e=$(now_ns)
	echo $(((_e - _s) / n_cmd))
}
for lg in 1 0; do
	t_lc=$(lc_ns "$lg")
	awk -v a="$t_lc" -v b="$t_bare" -v how="$([ "$lg" = 1 ] && echo 'the logger' || echo 'TALLY_LOGGER=0')" 'BEGIN {
		printf "%-34s %.3f ms per command (bare %.3f ms, log_command %.3f ms)   (target <= 2 ms)\n",
			"log_command overhead, " how, (a - b) / 1e6, b / 1e6, a / 1e6 }'
	printf '  check: %s events per log_command, %s commands logged\n' \
		"$(($(wc -l <"$BENCH_TMP/logs-$lg/json/bench.jsonl") / n_cmd))" \
		"$(grep -c '"exit_code":0' "$BENCH_TMP/logs-$lg/json/bench.jsonl")"
done
