# shellcheck shell=sh disable=SC2016
# metric.sh: tally-metric inc against flock + rewrite in sh.
bench_need flock dash || return 1
export BENCH_N BIN BENCH_TMP
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $BENCH_N ]; do "$BIN/tally-metric" inc -f "$BENCH_TMP/a.prom" bench_total; i=$((i+1)); done'
e=$(now_ns)
t=$(bench_us "$s" "$e" "$BENCH_N")
printf '# TYPE bench_total counter\nbench_total 0\n' >"$BENCH_TMP/b.prom"
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $BENCH_N ]; do
	flock "$BENCH_TMP/b.lock" sh -c "v=\$(sed -n \"s/^bench_total //p\" \"$BENCH_TMP/b.prom\"); printf \"# TYPE bench_total counter\\nbench_total %s\\n\" \$((v+1)) >\"$BENCH_TMP/b.tmp\" && mv \"$BENCH_TMP/b.tmp\" \"$BENCH_TMP/b.prom\""
	i=$((i+1)); done'
e=$(now_ns)
p=$(bench_us "$s" "$e" "$BENCH_N")
bench_report "one counter increment" "$t" "flock+sed+mv" "$p"
printf '  check: tally counter %s, shell counter %s (both should be %s)\n' \
	"$(sed -n 's/^bench_total //p' "$BENCH_TMP/a.prom")" \
	"$(sed -n 's/^bench_total //p' "$BENCH_TMP/b.prom")" "$BENCH_N"
