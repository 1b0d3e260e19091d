# shellcheck shell=sh disable=SC2016
# log.sh: tally-log against jq for one JSON event.
bench_need jq dash || return 1
export BENCH_N BIN BENCH_TMP
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $BENCH_N ]; do "$BIN/tally-log" --level INFO --feature f --field k=v -o "$BENCH_TMP/a.jsonl" "message $i"; i=$((i+1)); done'
e=$(now_ns)
t=$(bench_us "$s" "$e" "$BENCH_N")
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $BENCH_N ]; do jq -nc --arg m "message $i" --arg f f --arg k v "{level:\"INFO\",feature:\$f,message:\$m,k:\$k}" >>"$BENCH_TMP/b.jsonl"; i=$((i+1)); done'
e=$(now_ns)
p=$(bench_us "$s" "$e" "$BENCH_N")
bench_report "one JSON event" "$t" "jq -nc --arg" "$p"
