#!/usr/bin/env bats
# The healthcheck command, run by the shell in TALLY_TEST_SHELL (dash,
# busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	mkdir -p "$TALLY_METRICS_DIR" checks
	HC="$TALLY_HOME/lib/runtime/healthcheck"
}

# check NAME STATUS: makes an executable check that exits with STATUS.
check() {
	printf '#!/bin/sh\necho noise\nexit %s\n' "$2" >"checks/$1"
	chmod +x "checks/$1"
}

@test "healthcheck with passing checks prints one line per check in order and exits 0" {
	check 20-b 0
	check 10-a 0
	printf 'not executable\n' >checks/30-data
	run $TEST_SHELL "$HC" --dir checks
	assert_success
	assert_output "[+]10-a ok
[+]20-b ok
healthcheck passed"
}

@test "healthcheck with a failing check exits 1 and names it" {
	check 10-a 0
	check 20-b 3
	run $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	assert_output "[+]10-a ok
[-]20-b failed: exit 3
healthcheck failed: 1 of the checks failed"
}

@test "healthcheck kills a check that runs past its time limit" {
	printf '#!/bin/sh\nexec sleep 30\n' >checks/10-hang
	chmod +x checks/10-hang
	SECONDS=0
	run $TEST_SHELL "$HC" --dir checks --timeout 1
	assert_failure 1
	assert_output "[-]10-hang failed: timed out after 1s
healthcheck failed: 1 of the checks failed"
	[ "$SECONDS" -lt 10 ]
}

@test "healthcheck reads HEALTHCHECK_CUSTOM_DIR and passes with no checks at all" {
	export HEALTHCHECK_CUSTOM_DIR=$BATS_TEST_TMPDIR/none
	run $TEST_SHELL "$HC"
	assert_success
	assert_output "healthcheck passed"
}

@test "healthcheck usage errors exit 100, --help exits 0" {
	run $TEST_SHELL "$HC" --bogus
	assert_failure 100
	run $TEST_SHELL "$HC" --timeout
	assert_failure 100
	run $TEST_SHELL "$HC" --timeout x
	assert_failure 100
	run $TEST_SHELL "$HC" --help
	assert_success
	assert_line --index 0 "healthcheck: the container healthcheck, for Docker HEALTHCHECK and"
}

@test "healthcheck records its status and duration as metrics valid for promtool" {
	check 10-a 5
	run $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	run promtool check metrics <"$TALLY_METRICS_DIR/healthcheck.prom"
	assert_success
	assert_output ""
	run sed 's/^\(container_healthcheck_duration_seconds\) [0-9.]*$/\1 D/' "$TALLY_METRICS_DIR/healthcheck.prom"
	assert_output '# HELP container_healthcheck_status Current health status (1=healthy, 0=unhealthy)
# TYPE container_healthcheck_status gauge
container_healthcheck_status 0
# HELP container_healthcheck_duration_seconds Time taken for last healthcheck
# TYPE container_healthcheck_duration_seconds gauge
container_healthcheck_duration_seconds D'
}
