#!/bin/sh
# shellcheck disable=SC2016
# bench.sh: `make bench`. Times tally's helpers against the tools a user
# would otherwise pick, in the same run, and prints the ratios.
#
# Usage: sh tests/bench.sh        (after `make all`)
# Environment: BENCH_N, calls per measurement (default 500).
# Output: one line per comparison, "name: tally X ms/call, peer Y ms/call,
# ratio R" (R > 1: tally is faster). Exit status 0, or 1 when a tool is missing.
set -u
cd "$(dirname "$0")/.." || exit 1
n=${BENCH_N:-500}
bin=build/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# now_ns: prints the wall clock in nanoseconds.
now_ns() { date +%s%N; }

# per_call_us START END: prints microseconds per call.
per_call_us() { echo $((($2 - $1) / n / 1000)); }

# report NAME TALLY_US PEER_US PEER_NAME
report() {
	awk -v name="$1" -v t="$2" -v p="$3" -v peer="$4" 'BEGIN {
		printf "%-40s tally %7.3f ms/call   %-22s %7.3f ms/call   ratio %6.1fx\n",
			name, t / 1000, peer, p / 1000, (t > 0 ? p / t : 0) }'
}

for tool in jq flock dash; do
	command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing" >&2; exit 1; }
done

printf 'bench: %s calls per measurement, from dash loops\n' "$n"

# 1. One JSON event: tally-log vs jq -nc --arg.
export N="$n" BIN="$bin" TMP="$tmp"
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $N ]; do "$BIN/tally-log" --level INFO --feature f --field k=v -o "$TMP/a.jsonl" "message $i"; i=$((i+1)); done'
e=$(now_ns)
t_us=$(per_call_us "$s" "$e")
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $N ]; do jq -nc --arg m "message $i" --arg f f --arg k v "{level:\"INFO\",feature:\$f,message:\$m,k:\$k}" >>"$TMP/b.jsonl"; i=$((i+1)); done'
e=$(now_ns)
p_us=$(per_call_us "$s" "$e")
report "one JSON event" "$t_us" "$p_us" "jq -nc --arg"

# 2. One counter increment: tally-metric inc vs flock + rewrite in sh.
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $N ]; do "$BIN/tally-metric" inc -f "$TMP/a.prom" bench_total; i=$((i+1)); done'
e=$(now_ns)
t_us=$(per_call_us "$s" "$e")
printf '# TYPE bench_total counter\nbench_total 0\n' >"$tmp/b.prom"
s=$(now_ns)
dash -c 'i=0; while [ $i -lt $N ]; do
	flock "$TMP/b.lock" sh -c "v=\$(sed -n \"s/^bench_total //p\" \"$TMP/b.prom\"); printf \"# TYPE bench_total counter\\nbench_total %s\\n\" \$((v+1)) >\"$TMP/b.tmp\" && mv \"$TMP/b.tmp\" \"$TMP/b.prom\""
	i=$((i+1)); done'
e=$(now_ns)
p_us=$(per_call_us "$s" "$e")
report "one counter increment" "$t_us" "$p_us" "flock+sed+mv"
printf 'check: tally counter %s, shell counter %s (both should be %s)\n' \
	"$(sed -n 's/^bench_total //p' "$tmp/a.prom")" "$(sed -n 's/^bench_total //p' "$tmp/b.prom")" "$n"
