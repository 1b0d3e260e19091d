#!/usr/bin/env bats
# The healthcheck command, run by the shell in TALLY_TEST_SHELL (dash,
# busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export TALLY_RUNTIME_DIR=$BATS_TEST_TMPDIR/run
	mkdir -p "$TALLY_METRICS_DIR" checks
	HC="$TALLY_HOME/lib/runtime/healthcheck"
}

teardown() {
	if [ -n "${PID-}" ]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	# Anything a check left behind and wrote its pid for.
	for f in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
	done
}

# check NAME STATUS [OUTPUT]: makes an executable check that prints OUTPUT
# and exits with STATUS.
check() {
	printf '#!/bin/sh\necho "%s"\nexit %s\n' "${3-noise}" "$2" >"checks/$1"
	chmod +x "checks/$1"
}

# running PID: returns 0 when PID is a live process (not a zombie waiting
# for a parent that does not reap).
running() {
	[ -r "/proc/$1/stat" ] || return 1
	! grep -q '^[0-9]* (.*) Z ' "/proc/$1/stat"
}

# normalized FILE: the metrics file with the duration and time replaced.
normalized() {
	sed -e 's/^\(container_healthcheck_duration_seconds\) [0-9.]*$/\1 D/' \
		-e 's/^\(container_healthcheck_last_run_timestamp_seconds\) [0-9]*$/\1 T/' "$1"
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

@test "healthcheck with a failing check exits 1 and gives the exit status and first output line" {
	check 10-a 0
	check 20-b 3 "database: connection refused"
	run $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	assert_output "[+]10-a ok
[-]20-b failed: exit 3: database: connection refused
healthcheck failed: 1 of 2 checks failed"
}

@test "healthcheck kills a hanging check and its whole process group within the limit" {
	printf '#!/bin/sh\nsleep 60 &\necho $! >"%s/grandchild.pid"\nexec sleep 60\n' "$BATS_TEST_TMPDIR" >checks/10-hang
	chmod +x checks/10-hang
	SECONDS=0
	run $TEST_SHELL "$HC" --dir checks --timeout 1
	assert_failure 1
	assert_output "[-]10-hang failed: timed out after 1s
healthcheck failed: 1 of 1 checks failed"
	[ "$SECONDS" -lt 5 ]
	! running "$(cat "$BATS_TEST_TMPDIR/grandchild.pid")"
}

@test "a check whose grandchild keeps stdout open does not hang the healthcheck" {
	printf '#!/bin/sh\nsleep 60 &\necho $! >"%s/holder.pid"\necho started\nexit 0\n' "$BATS_TEST_TMPDIR" >checks/10-bg
	chmod +x checks/10-bg
	check 20-after 0
	SECONDS=0
	run $TEST_SHELL "$HC" --dir checks --timeout 20
	assert_success
	assert_output "[+]10-bg ok
[+]20-after ok
healthcheck passed"
	[ "$SECONDS" -lt 5 ]
	! running "$(cat "$BATS_TEST_TMPDIR/holder.pid")"
}

@test "the total time limit stops the run and reports the checks it left out" {
	for n in 10 20 30; do
		printf '#!/bin/sh\nexec sleep 60\n' >"checks/$n-hang"
		chmod +x "checks/$n-hang"
	done
	SECONDS=0
	run $TEST_SHELL "$HC" --dir checks --timeout 2 --total-timeout 5
	assert_failure 1
	assert_output "[-]10-hang failed: timed out after 2s
[-]20-hang failed: timed out after 2s
[-]30-hang failed: not run: total time limit of 5s reached
healthcheck failed: 3 of 3 checks failed"
	[ "$SECONDS" -lt 9 ]
}

@test "fifty checks all run and each is recorded as a metric that promtool accepts" {
	for i in $(seq 10 59); do check "$i-check" 0; done
	run $TEST_SHELL "$HC" --dir checks
	assert_success
	[ "${#lines[@]}" -eq 51 ]
	assert_line --index 50 "healthcheck passed"
	run promtool check metrics <"$TALLY_METRICS_DIR/healthcheck.prom"
	assert_success
	assert_output ""
	run grep -c '^container_healthcheck_check_status{check="[0-9]*-check"} 1$' "$TALLY_METRICS_DIR/healthcheck.prom"
	assert_output 50
}

@test "output longer than Docker's 4096-byte health log is cut with a marker" {
	long=$(printf 'x%.0s' $(seq 100))
	for i in $(seq 100 159); do check "$i-$long" 1; done
	run $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	[ "$(printf '%s\n' "$output" | wc -c)" -le 4096 ]
	assert_line --index 0 "[-]100-$long failed: exit 1: noise"
	assert_line --regexp '^\[\.\.\.\] [0-9]+ more lines cut$'
	assert_line --index $((${#lines[@]} - 1)) "healthcheck failed: 60 of 60 checks failed"
	cut=$(printf '%s\n' "$output" | sed -n 's/^\[\.\.\.\] \([0-9]*\) more lines cut$/\1/p')
	[ $((${#lines[@]} - 2 + cut)) -eq 60 ]
}

@test "healthcheck records status, duration, time of the run and each check" {
	check 10-a 5
	check 20-b 0
	run $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	run promtool check metrics <"$TALLY_METRICS_DIR/healthcheck.prom"
	assert_success
	assert_output ""
	run normalized "$TALLY_METRICS_DIR/healthcheck.prom"
	assert_output '# HELP container_healthcheck_status Current health status (1=healthy, 0=unhealthy)
# TYPE container_healthcheck_status gauge
container_healthcheck_status 0
# HELP container_healthcheck_duration_seconds Time taken for last healthcheck
# TYPE container_healthcheck_duration_seconds gauge
container_healthcheck_duration_seconds D
# HELP container_healthcheck_last_run_timestamp_seconds Unix time the last healthcheck finished
# TYPE container_healthcheck_last_run_timestamp_seconds gauge
container_healthcheck_last_run_timestamp_seconds T
# HELP container_healthcheck_check_status Result of each check of the last healthcheck (1=ok, 0=failed)
# TYPE container_healthcheck_check_status gauge
container_healthcheck_check_status{check="10-a"} 0
container_healthcheck_check_status{check="20-b"} 1'
	t=$(sed -n 's/^container_healthcheck_last_run_timestamp_seconds //p' "$TALLY_METRICS_DIR/healthcheck.prom")
	[ $(($(date +%s) - t)) -lt 60 ]
}

@test "with a read-only root the result goes to the runtime directory and checks still report" {
	check 10-a 4 "cache cold"
	run env TALLY_METRICS_DIR=/proc/tally-ro TMPDIR=/proc/tally-ro $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	assert_output "[-]10-a failed: exit 4: cache cold
healthcheck failed: 1 of 1 checks failed"
	run promtool check metrics <"$TALLY_RUNTIME_DIR/healthcheck.prom"
	assert_success
	run grep '^container_healthcheck_status ' "$TALLY_RUNTIME_DIR/healthcheck.prom"
	assert_output "container_healthcheck_status 0"
}

@test "with nothing writable at all the healthcheck still answers correctly" {
	check 10-a 0
	check 20-b 2
	run env TALLY_METRICS_DIR=/proc/tally-ro TMPDIR=/proc/tally-ro TALLY_RUNTIME_DIR=/proc/tally-ro $TEST_SHELL "$HC" --dir checks
	assert_failure 1
	assert_output "[+]10-a ok
[-]20-b failed: exit 2
healthcheck failed: 1 of 2 checks failed"
}

@test "--json prints one JSON document with every check" {
	check 10-a 0
	cat >checks/20-b <<-'EOF'
		#!/bin/sh
		printf '%s\n' 'say "hi" \ bye'
		exit 3
	EOF
	chmod +x checks/20-b
	run --separate-stderr $TEST_SHELL "$HC" --dir checks --json
	assert_failure 1
	run jq -c '.duration_seconds |= type' <<<"$output"
	assert_success
	assert_output '{"status":"unhealthy","duration_seconds":"number","checks":[{"name":"10-a","status":"ok"},{"name":"20-b","status":"failed","reason":"exit 3: say \"hi\" \\ bye"}]}'
}

@test "the built-in pidfile, disk and fresh checks pass and fail as documented" {
	sleep 60 &
	PID=$!
	echo "$PID" >alive.pid
	echo 999999999 >dead.pid
	touch fresh-file
	touch -d '2001-01-01 00:00:00' old-file
	run $TEST_SHELL "$HC" --dir /nonexistent --pidfile alive.pid --pidfile dead.pid \
		--disk .:1K --disk .:100000000G --fresh fresh-file:60 --fresh old-file:60
	assert_failure 1
	run sed 's/[0-9][0-9]* bytes free/N bytes free/; s/modified [0-9]*s ago/modified Ns ago/' <<<"$output"
	assert_output "[+]pidfile:alive.pid ok
[-]pidfile:dead.pid failed: process 999999999 is not running
[+]disk:. ok
[-]disk:. failed: N bytes free, below 100000000G
[+]fresh:fresh-file ok
[-]fresh:old-file failed: modified Ns ago, limit 60s
healthcheck failed: 3 of 6 checks failed"
}

@test "built-in checks also come from TALLY_HEALTHCHECK_* variables" {
	touch f
	run env TALLY_HEALTHCHECK_FRESH="f:60" TALLY_HEALTHCHECK_DISK=".:1 .:1%" $TEST_SHELL "$HC" --dir /nonexistent
	assert_success
	assert_output "[+]disk:. ok
[+]disk:. ok
[+]fresh:f ok
healthcheck passed"
}

@test "--quick runs only the cheap built-ins, not the custom checks" {
	check 10-a 1
	touch f
	run $TEST_SHELL "$HC" --dir checks --quick --fresh f:60
	assert_success
	assert_output "[+]fresh:f ok
healthcheck passed"
}

@test "healthcheck reads HEALTHCHECK_CUSTOM_DIR and passes with no checks at all" {
	export HEALTHCHECK_CUSTOM_DIR=$BATS_TEST_TMPDIR/none
	run $TEST_SHELL "$HC"
	assert_success
	assert_output "healthcheck passed"
}

@test "usage errors exit 100 and say so; --help exits 0" {
	for args in "--bogus" "--timeout" "--timeout x" "--timeout 0" "--total-timeout -1" \
		"--disk /" "--disk /:lots" "--fresh f" "--fresh f:1m" "--tcp host" "--tcp h:p" "--http ftp://x"; do
		# shellcheck disable=SC2086
		run --separate-stderr $TEST_SHELL "$HC" $args
		assert_failure 100
		assert_equal "$output" ""
		[[ "$stderr" == *"healthcheck: usage: healthcheck [--quick]"* ]]
	done
	run $TEST_SHELL "$HC" --help
	assert_success
	assert_line --index 0 "healthcheck: the container healthcheck, for Docker HEALTHCHECK and"
}

@test "the built-in tcp and http checks probe a live server through tally-httpd --probe" {
	mkdir served
	tally-httpd --listen 127.0.0.1:0 --dir served --port-file port 2>/dev/null &
	PID=$!
	wait_for_file port
	read -r port <port
	closed=$(free_port)
	run $TEST_SHELL "$HC" --dir /nonexistent --tcp "127.0.0.1:$port" --tcp "127.0.0.1:$closed" \
		--http "http://127.0.0.1:$port/healthz" --http "http://127.0.0.1:$port/nope"
	assert_failure 1
	assert_output "[+]tcp:127.0.0.1:$port ok
[-]tcp:127.0.0.1:$closed failed: cannot connect to 127.0.0.1: Connection refused
[+]http:http://127.0.0.1:$port/healthz ok
[-]http:http://127.0.0.1:$port/nope failed: HTTP status 404
healthcheck failed: 2 of 4 checks failed"
	run $TEST_SHELL "$HC" --dir /nonexistent --quick --tcp "127.0.0.1:$port" --http "http://127.0.0.1:$port/nope"
	assert_success
	assert_output "[+]tcp:127.0.0.1:$port ok
healthcheck passed"
}
