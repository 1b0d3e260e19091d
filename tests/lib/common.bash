# common.bash: shared setup for every bats file. `load ../lib/common`.
# Provides tally_setup, run_sh, free_port and the bats-support/assert helpers.

bats_require_minimum_version 1.5.0

TALLY_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
TALLY_BUILD=${TALLY_TEST_BUILD:-$TALLY_ROOT/build}

bats_load_library_path=/usr/lib/bats
load "$bats_load_library_path/bats-support/load"
load "$bats_load_library_path/bats-assert/load"

# The shell the libraries are tested under: "dash", "busybox ash" or "bash".
# tests/run.sh sets TALLY_TEST_SHELL; "dash" when run by hand.
TEST_SHELL=${TALLY_TEST_SHELL:-dash}

# KILLED_ASAN_OPTIONS: the ASAN_OPTIONS of a helper the test kills with
# SIGKILL (the test does `export ASAN_OPTIONS=$KILLED_ASAN_OPTIONS`): those of
# `make test SANITIZE=1` with LeakSanitizer's exit-time check off. A kill
# that lands during that check kills the process while its tracer (a
# process of its own) is reading the threads' registers; the tracer then
# starts a report ("Unable to get registers from thread") and is killed in
# turn, which can leave an empty or partial report file that fails the run
# although nothing leaked. Every other test still checks for leaks.
KILLED_ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# tally_setup: clears every tally and design variable (but the test
# settings TALLY_TEST_SHELL, TALLY_TEST_BUILD, TALLY_SANITIZE), points TALLY_HOME at
# the build tree, puts its bin/ first on PATH and works in BATS_TEST_TMPDIR.
tally_setup() {
	local v
	for v in $(env | sed -n 's/^\(TALLY_[A-Za-z0-9_]*\)=.*/\1/p'); do
		case $v in
		TALLY_TEST_SHELL | TALLY_TEST_BUILD | TALLY_SANITIZE) ;;
		*) unset "$v" ;;
		esac
	done
	unset BUILD_LOG_DIR LOG_LEVEL ENABLE_JSON_LOGGING BUILD_CORRELATION_ID \
		METRICS_ENABLED METRICS_PORT METRICS_REFRESH_INTERVAL OTEL_ENABLED \
		HEALTHCHECK_CUSTOM_DIR NO_COLOR TRACEPARENT
	for v in $(env | sed -n 's/^\(OTEL_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
	export TALLY_HOME=$TALLY_BUILD
	export PATH=$TALLY_BUILD/bin:$PATH
	cd "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}" || return 1
}

# run_sh SCRIPT [ARG...]: runs SCRIPT under the shell being tested, with
# bats' `run` (status in $status, combined output in $output).
run_sh() {
	local script=$1
	shift
	# shellcheck disable=SC2086
	run $TEST_SHELL -c "$script" tally-test "$@"
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	local p lo=32768 hi
	# Below the kernel's ephemeral range, which outgoing connections (curl,
	# the load tests' thousands of clients) take their local ports from.
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || :
	[ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
	while :; do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
}

# wait_for_file FILE [SECONDS]: waits until FILE exists and is non-empty.
wait_for_file() {
	local i=0 limit=$((${2:-10} * 20))
	while [ ! -s "$1" ]; do
		i=$((i + 1))
		[ "$i" -le "$limit" ] || return 1
		sleep 0.05
	done
}
