#!/usr/bin/env bats
# The metrics-exporter command, run by the shell in TALLY_TEST_SHELL (dash,
# busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	mkdir -p "$TALLY_METRICS_DIR"
	EXP="$TALLY_HOME/lib/runtime/metrics-exporter.sh"
}

teardown() {
	if [ -n "${PID-}" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
}

@test "metrics-exporter serves the metrics directory on the given address" {
	printf '# HELP demo_total A demo.\n# TYPE demo_total counter\ndemo_total 3\n' >"$TALLY_METRICS_DIR/a.prom"
	port=$(free_port)
	$TEST_SHELL "$EXP" --listen "127.0.0.1:$port" 2>"$BATS_TEST_TMPDIR/err" &
	PID=$!
	for _ in $(seq 100); do curl -fsS -o body "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.05; done
	run grep -A2 -x '# HELP demo_total A demo.' body
	assert_output "$(cat "$TALLY_METRICS_DIR/a.prom")"
	run promtool check metrics <body
	assert_success
	assert_output ''
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
