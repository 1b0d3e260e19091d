# shellcheck shell=sh disable=SC2016
# metric.sh: tally-metric against the shell ways of updating a .prom file,
# in the same run, on the same file system (BENCH_TMP):
#  1. one counter increment: tally-metric (default mode) against flock plus
#     a sed/printf/mv rewrite; the --sync mode's cost printed beside it;
#  2. 4 racing writers: tally-metric loses nothing, the shell temp-and-mv
#     approach without a lock loses most increments (both counts printed);
#  3. one update in a file of 10,000 series (target: under 10 ms);
#  4. the ext4 writeback a rename over the old file starts, counted with
#     perf when it can (tally-metric swaps the names instead: 0).
# Returns 1 when a target of issue 4 does not hold: ratio 1 below 4x, a
# lost tally update, or 3 above 10 ms.
bench_need flock dash || return 1
export BENCH_N BIN BENCH_TMP
_m_fail=0

# 1. One increment.
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
_m_sync_n=$((BENCH_N / 5 + 1))
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $1 ]; do "$BIN/tally-metric" inc --sync -f "$BENCH_TMP/s.prom" bench_total; i=$((i+1)); done' sh "$_m_sync_n"
e=$(now_ns)
y=$(bench_us "$s" "$e" "$_m_sync_n")
printf '%-36s tally %9.3f ms   (default mode %.3f ms: --sync adds %.3f ms for 2 fsyncs)\n' \
	"one increment with --sync" "$(awk -v v="$y" 'BEGIN { print v / 1000 }')" \
	"$(awk -v v="$t" 'BEGIN { print v / 1000 }')" "$(awk -v a="$y" -v b="$t" 'BEGIN { print (a - b) / 1000 }')"
printf '  check: tally counter %s, shell counter %s (both should be %s)\n' \
	"$(sed -n 's/^bench_total //p' "$BENCH_TMP/a.prom")" \
	"$(sed -n 's/^bench_total //p' "$BENCH_TMP/b.prom")" "$BENCH_N"
if [ "$((p / (t > 0 ? t : 1)))" -lt 4 ]; then
	printf '  FAIL: one update is not 4x cheaper than flock+sed+mv\n'
	_m_fail=1
fi

# 2. Four racing writers, BENCH_N / 4 increments each.
_m_each=$((BENCH_N / 4))
printf '# TYPE race_total counter\nrace_total 0\n' >"$BENCH_TMP/r.prom"
for _m_w in 1 2 3 4; do
	dash -c 'i=0; while [ $i -lt $1 ]; do "$BIN/tally-metric" inc -f "$BENCH_TMP/t.prom" race_total; i=$((i+1)); done' sh "$_m_each" &
	dash -c 'i=0; while [ $i -lt $1 ]; do
		v=$(sed -n "s/^race_total //p" "$BENCH_TMP/r.prom")
		printf "# TYPE race_total counter\nrace_total %s\n" $((v+1)) >"$BENCH_TMP/r.prom.$$" && mv "$BENCH_TMP/r.prom.$$" "$BENCH_TMP/r.prom"
		i=$((i+1)); done' sh "$_m_each" &
done
unset _m_w
wait
_m_t=$(sed -n 's/^race_total //p' "$BENCH_TMP/t.prom")
_m_s=$(sed -n 's/^race_total //p' "$BENCH_TMP/r.prom")
printf '%-36s tally %5s of %s kept (%s lost)   temp+mv without lock %5s kept (%s lost)\n' \
	"4 racing writers, $_m_each inc each" "$_m_t" "$((_m_each * 4))" "$((_m_each * 4 - _m_t))" \
	"$_m_s" "$((_m_each * 4 - _m_s))"
if [ "$_m_t" != "$((_m_each * 4))" ]; then
	printf '  FAIL: tally-metric lost updates\n'
	_m_fail=1
fi

# 3. One update in a file of 10,000 series.
awk 'BEGIN { print "# HELP big_bytes Big.\n# TYPE big_bytes gauge"
	for (i = 0; i < 10000; i++) printf "big_bytes{id=\"%05d\",path=\"/var/lib/app/%d\"} %d.5\n", i, i, i * 1024 }' >"$BENCH_TMP/big.prom"
_m_big_n=$((BENCH_N / 10 + 1))
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $1 ]; do "$BIN/tally-metric" set -f "$BENCH_TMP/big.prom" --label id=05000 --label path=/var/lib/app/5000 big_bytes $i; i=$((i+1)); done' sh "$_m_big_n"
e=$(now_ns)
b=$(bench_us "$s" "$e" "$_m_big_n")
printf '%-36s tally %9.3f ms   (target: under 10 ms; file of %s bytes)\n' \
	"one update in 10,000 series" "$(awk -v b="$b" 'BEGIN { print b / 1000 }')" "$(wc -c <"$BENCH_TMP/big.prom")"
if [ "$b" -ge 10000 ]; then
	printf '  FAIL: one update in 10,000 series takes 10 ms or more\n'
	_m_fail=1
fi

# 4. Writeback started at the rename (ext4 auto_da_alloc), per 100 updates.
if [ "$(stat -f -c %T "$BENCH_TMP")" = ext2/ext3 ] && command -v perf >/dev/null 2>&1 &&
	perf stat -e ext4:ext4_writepages -x, -o "$BENCH_TMP/probe" true 2>/dev/null; then
	perf stat -e ext4:ext4_writepages -x, -o "$BENCH_TMP/pt" dash -c 'i=0; while [ $i -lt 100 ]; do
		"$BIN/tally-metric" inc -f "$BENCH_TMP/a.prom" bench_total; i=$((i+1)); done'
	perf stat -e ext4:ext4_writepages -x, -o "$BENCH_TMP/ps" dash -c 'i=0; while [ $i -lt 100 ]; do
		printf "x 1\n" >"$BENCH_TMP/m.tmp" && mv "$BENCH_TMP/m.tmp" "$BENCH_TMP/m.prom"; i=$((i+1)); done'
	printf '%-36s tally %5s writebacks            printf+mv %5s writebacks (ext4 auto_da_alloc)\n' \
		"100 updates: data flushed at rename" "$(awk -F, '/ext4_writepages/ { print $1 }' "$BENCH_TMP/pt")" \
		"$(awk -F, '/ext4_writepages/ { print $1 }' "$BENCH_TMP/ps")"
else
	printf '%-36s (not measured: needs ext4 and perf with ext4 tracepoints)\n' "100 updates: data flushed at rename"
fi
[ "$_m_fail" -eq 0 ]
