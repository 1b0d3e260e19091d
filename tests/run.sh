#!/bin/sh
# run.sh: runs every bats suite and closes with one line
# "tests: N passed, M failed, K skipped".
#
# Usage: TEST_SHELLS="dash busybox-ash bash" sh tests/run.sh
#
# tests/shell/ (the sourced libraries and runtime commands) runs once under
# each shell of TEST_SHELLS ("busybox-ash" means `busybox ash`);
# tests/helpers/ (the C helpers), tests/faults/ (fault injection) and
# tests/e2e/ (real Prometheus, fleet, OCI image builds) run once.
# Exit status: 0 when no test failed, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1

shells=${TEST_SHELLS:-dash busybox-ash bash}
pass=0
fail=0
skip=0
mkdir -p build/test
tap=build/test/last.tap

# suite LABEL BATS-ARGS...: runs one bats invocation, shows its TAP output
# and adds its results to the counts.
suite() {
	label=$1
	shift
	printf '\n== %s ==\n' "$label"
	bats --tap "$@" >"$tap" 2>&1
	cat "$tap"
	p=$(grep -c '^ok .*# skip' "$tap")
	skip=$((skip + p))
	p=$(grep '^ok ' "$tap" | grep -vc '# skip')
	pass=$((pass + p))
	p=$(grep -c '^not ok ' "$tap")
	fail=$((fail + p))
	# A suite that ran no test at all (a load error) is a failure.
	if ! grep -q '^1\.\.[1-9]' "$tap"; then
		printf '%s: bats ran no test\n' "$label"
		fail=$((fail + 1))
	fi
}

for s in $shells; do
	case $s in
	busybox-ash) cmd="busybox ash" ;;
	*) cmd=$s ;;
	esac
	if ! command -v "${cmd%% *}" >/dev/null 2>&1; then
		printf '%s is not installed: run sh tests/deps.sh test\n' "$cmd"
		fail=$((fail + 1))
		continue
	fi
	TALLY_TEST_SHELL=$cmd suite "shell libraries under $cmd" tests/shell
done
suite "C helpers" tests/helpers
suite "faults: full disks, killed writers, read-only root, directory faults, load, soak" tests/faults
suite "end to end: real Prometheus scrapes, the fleet, real OCI image builds" tests/e2e

printf '\ntests: %d passed, %d failed, %d skipped\n' "$pass" "$fail" "$skip"
[ "$fail" -eq 0 ]
