#!/bin/sh
# bench.sh: `make bench`. Runs every tests/bench/*.sh (except lib.sh), each
# timing tally against the tools a user would otherwise pick in the same run
# and printing the ratios.
#
# Usage: sh tests/bench.sh [NAME...]     (after `make all`; NAME: log, metric, ...)
# Environment: BENCH_N, calls per measurement (default 500).
# Output: lines "what: tally X ms, peer Y ms, ratio R" (R > 1: tally is
# faster), then "bench: N benchmarks run, M failed".
# Exit status: 0, or 1 when a benchmark failed or a tool is missing.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

names=$*
[ -n "$names" ] || names=$(for f in tests/bench/*.sh; do b=${f##*/}; [ "$b" = lib.sh ] || printf '%s\n' "${b%.sh}"; done)
ran=0
failed=0
for name in $names; do
	BENCH_TMP=$(mktemp -d)
	printf '\n== %s (%s calls per measurement) ==\n' "$name" "$BENCH_N"
	# shellcheck disable=SC1090
	if ! . "tests/bench/$name.sh"; then
		failed=$((failed + 1))
	fi
	rm -rf "$BENCH_TMP"
	ran=$((ran + 1))
done
printf '\nbench: %d benchmarks run, %d failed\n' "$ran" "$failed"
[ "$failed" -eq 0 ]
