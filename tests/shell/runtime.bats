#!/usr/bin/env bats
# The runtime commands (healthcheck, metrics-exporter), run by the shell in
# TALLY_TEST_SHELL (dash, busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	mkdir -p "$TALLY_METRICS_DIR" checks
	HC="$TALLY_HOME/lib/runtime/healthcheck"
	EXP="$TALLY_HOME/lib/runtime/metrics-exporter.sh"
}

teardown() {
	if [ -n "${PID-}" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
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

@test "metrics-exporter serves the metrics directory on the given address" {
	printf '# HELP demo_total A demo.\n# TYPE demo_total counter\ndemo_total 3\n' >"$TALLY_METRICS_DIR/a.prom"
	port=$(free_port)
	$TEST_SHELL "$EXP" --listen "127.0.0.1:$port" 2>"$BATS_TEST_TMPDIR/err" &
	PID=$!
	for _ in $(seq 100); do curl -fsS -o body "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.05; done
	run cat body
	assert_output "$(cat "$TALLY_METRICS_DIR/a.prom")"
	run promtool check metrics <body
	assert_success
}

@test "metrics-exporter runs the app beside the exporter and returns the app's exit status" {
	port=$(free_port)
	run --separate-stderr $TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c "for i in \$(seq 100); do curl -fsS http://127.0.0.1:$port/healthz && exit 5; sleep 0.05; done; exit 9"
	assert_failure 5
	assert_output "ok"
}

@test "metrics-exporter forwards SIGTERM to the app" {
	port=$(free_port)
	$TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c 'trap "exit 42" TERM; echo up >ready; while :; do sleep 0.1; done' &
	PID=$!
	wait_for_file ready
	kill -TERM "$PID"
	status=0
	wait "$PID" || status=$?
	PID=
	[ "$status" -eq 42 ]
}

@test "metrics-exporter usage errors exit 100 and a missing tally-httpd exits 111" {
	run $TEST_SHELL "$EXP" --nope
	assert_failure 100
	run $TEST_SHELL "$EXP" --
	assert_failure 100
	mkdir -p lonely
	cp "$EXP" lonely/metrics-exporter
	run env TALLY_HOME=/nonexistent PATH=/usr/bin:/bin $TEST_SHELL lonely/metrics-exporter
	assert_failure 111
}
