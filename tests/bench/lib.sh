# shellcheck shell=sh disable=SC2034
# lib.sh: helpers shared by the benchmarks in tests/bench/*.sh. Sourced by
# tests/bench.sh before each benchmark, with the working directory at the
# repository root.
#
# Globals set: BIN (build/bin), BENCH_TMP (a scratch directory, removed
# after the benchmark), BENCH_N (calls per measurement, default 500).

BIN=build/bin
BENCH_N=${BENCH_N:-500}

# now_ns: prints the wall clock in nanoseconds.
now_ns() { date +%s%N; }

# bench_us START_NS END_NS CALLS: prints microseconds per call.
bench_us() { echo $((($2 - $1) / $3 / 1000)); }

# bench_report NAME TALLY_US PEER_NAME PEER_US: prints one comparison line;
# the ratio is PEER/TALLY (above 1: tally is faster).
bench_report() {
	awk -v name="$1" -v t="$2" -v peer="$3" -v p="$4" 'BEGIN {
		printf "%-36s tally %9.3f ms   %-24s %9.3f ms   ratio %7.1fx\n",
			name, t / 1000, peer, p / 1000, (t > 0 ? p / t : 0) }'
}

# bench_need TOOL...: returns 1 (after a message) when a tool is missing.
bench_need() {
	for _t in "$@"; do
		command -v "$_t" >/dev/null 2>&1 || {
			printf 'bench: %s is missing: run sh tests/deps.sh bench\n' "$_t" >&2
			return 1
		}
	done
}
