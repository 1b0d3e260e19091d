#!/usr/bin/env bats
# The metrics-exporter command, run by the shell in TALLY_TEST_SHELL (dash,
# busybox ash, bash): every backend (tally-httpd, socat, busybox httpd,
# busybox nc, a file for node_exporter), the runtime metrics it refreshes,
# the healthcheck it runs, and the app it supervises.

load ../lib/common

setup() {
	tally_setup
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export TALLY_RUNTIME_DIR=$BATS_TEST_TMPDIR/run
	mkdir -p "$TALLY_METRICS_DIR"
	EXP="$TALLY_HOME/lib/runtime/metrics-exporter.sh"
	PIDS=
}

teardown() {
	local p
	for p in ${PID-} $PIDS; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

CT_METRICS='text/plain; version=0.0.4; charset=utf-8'

# fixture: writes two build files to the metrics directory.
fixture() {
	cat >"$TALLY_METRICS_DIR/a.prom" <<-'EOF'
		# HELP container_build_errors_total Errors logged while installing a feature.
		# TYPE container_build_errors_total counter
		container_build_errors_total{feature="node"} 2
		container_build_errors_total{feature="python-dev"} 0
		# HELP container_features_installed Features installed in the image.
		# TYPE container_features_installed gauge
		container_features_installed 2
	EOF
	cat >"$TALLY_METRICS_DIR/b.prom" <<-'EOF'
		# HELP container_build_command_duration_seconds Duration of each logged command.
		# TYPE container_build_command_duration_seconds histogram
		container_build_command_duration_seconds_bucket{le="1"} 3
		container_build_command_duration_seconds_bucket{le="+Inf"} 4
		container_build_command_duration_seconds_sum 7.5
		container_build_command_duration_seconds_count 4
		container_features_installed 9
	EOF
}

# start_exporter [ARG...]: starts the exporter on a free 127.0.0.1 port
# under the tested shell; sets PID, PORT and URL; waits for /healthz.
start_exporter() {
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	$TEST_SHELL "$EXP" --listen "127.0.0.1:$PORT" "$@" 2>"$BATS_TEST_TMPDIR/exporter.err" &
	PID=$!
	local i
	for i in $(seq 100); do
		curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$BATS_TEST_TMPDIR/exporter.err" >&2
	return 1
}

# textfiles_only < BODY: the body without the families whose values change
# (tally_*, the container's uptime and start time).
textfiles_only() {
	awk '{ n = $0; sub(/^# (HELP|TYPE) /, "", n); sub(/[{ ].*/, "", n)
		if (n ~ /^(tally_|process_|container_uptime_seconds|container_start_time_seconds)/) next
		print }'
}

# check_fallback_response: GET /metrics from $URL has the exact head, a
# Content-Length equal to the body's bytes, a body that promtool accepts
# and the textfiles merged by the fallback's rule.
check_fallback_response() {
	curl -fsS -D headers -o body "$URL/metrics"
	tr -d '\r' <headers >h
	run cat h
	assert_line --index 0 'HTTP/1.1 200 OK'
	assert_line "Content-Type: $CT_METRICS"
	assert_line "Content-Length: $(wc -c <body)"
	run promtool check metrics <body
	assert_success
	assert_output ''
	textfiles_only <body >got
	printf '%s\n' \
		'# HELP container_build_errors_total Errors logged while installing a feature.' \
		'# TYPE container_build_errors_total counter' \
		'container_build_errors_total{feature="node"} 2' \
		'container_build_errors_total{feature="python-dev"} 0' \
		'# HELP container_features_installed Features installed in the image.' \
		'# TYPE container_features_installed gauge' \
		'container_features_installed 2' \
		'# HELP container_build_command_duration_seconds Duration of each logged command.' \
		'# TYPE container_build_command_duration_seconds histogram' \
		'container_build_command_duration_seconds_bucket{le="1"} 3' \
		'container_build_command_duration_seconds_bucket{le="+Inf"} 4' \
		'container_build_command_duration_seconds_sum 7.5' \
		'container_build_command_duration_seconds_count 4' >want
	diff -u want got
	grep -qx "tally_textfile_conflicts{file=\"$TALLY_METRICS_DIR/b.prom\",kind=\"duplicate\"} 1" body
}

# check_every_request: 20 requests in a row (GET, HEAD, other paths) each
# get a whole, well-formed answer.
check_every_request() {
	local i len
	for i in $(seq 10); do
		curl -fsS -o body2 "$URL/metrics"
		promtool check metrics <body2
	done
	# HEAD: the GET head (the length may differ by the uptime's digits), no body
	len=$(wc -c <body2)
	curl -fsS -I "$URL/metrics" | tr -d '\r' >h
	hl=$(sed -n 's/^Content-Length: //p' h)
	[ "$hl" -ge $((len - 16)) ] && [ "$hl" -le $((len + 16)) ]
	grep -qx "Content-Type: $CT_METRICS" h
	[ "$(tail -n 1 h)" = '' ]
	run curl -sS -w ' %{http_code} %{content_type}' "$URL/healthz"
	assert_output 'ok
 200 text/plain; charset=utf-8'
	run curl -sS -o /dev/null -w '%{http_code}' "$URL/nothing-here"
	assert_output 404
	run curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$URL/metrics"
	assert_output 405
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
}

@test "metrics-exporter serves the metrics and runtime directories with tally-httpd" {
	fixture
	mkdir -p "$TALLY_RUNTIME_DIR"
	printf '# HELP container_things Runtime things.\n# TYPE container_things gauge\ncontainer_things 3\n' >"$TALLY_RUNTIME_DIR/r.prom"
	start_exporter
	curl -fsS -o body "$URL/metrics"
	run promtool check metrics <body
	assert_success
	assert_output ''
	grep -qx 'container_things 3' body
	grep -qx 'container_features_installed 2' body
	grep -qx 'tally_textfile_scrape_error{file="r.prom"} 0' body
	grep -qx "tally_textfile_scrape_error{file=\"$TALLY_METRICS_DIR/a.prom\"} 0" body
	grep -q '^tally_httpd_requests_total' body
}

@test "without tally-httpd, auto falls back to socat and says so" {
	fixture
	mkdir -p lonely
	cp "$EXP" lonely/metrics-exporter
	EXP=$BATS_TEST_TMPDIR/lonely/metrics-exporter TALLY_HOME=/nonexistent PATH=/usr/bin:/bin start_exporter
	grep -qx 'metrics-exporter: tally-httpd not found: serving with socat' exporter.err
	check_fallback_response
	grep -qx 'tally_exporter_backend{backend="socat"} 1' body
}

@test "the socat backend answers every request with the complete body" {
	fixture
	TALLY_EXPORTER_BACKEND=socat start_exporter
	check_fallback_response
	check_every_request
}

@test "the busybox-httpd backend answers /metrics/ and /metrics (by redirect) with the complete body" {
	fixture
	start_exporter --backend busybox-httpd
	run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/metrics"
	assert_output "302 $URL/metrics/"
	curl -fsSL -o body "$URL/metrics"
	run promtool check metrics <body
	assert_success
	curl -fsS -D headers -o body "$URL/metrics/"
	tr -d '\r' <headers >h
	run cat h
	assert_line --index 0 'HTTP/1.1 200 OK'
	assert_line "Content-Type: $CT_METRICS"
	assert_line "Content-Length: $(wc -c <body)"
	run promtool check metrics <body
	assert_success
	assert_output ''
	grep -qx 'tally_exporter_backend{backend="busybox-httpd"} 1' body
	grep -qx 'container_build_command_duration_seconds_count 4' body
	run curl -sS -L -w ' %{http_code}' "$URL/healthz"
	assert_output 'ok
 200'
	curl -fsS -o body2 "$URL/cgi-bin/metrics"
	promtool check metrics <body2
	grep -qx 'container_build_command_duration_seconds_count 4' body2
}

@test "the nc backend (busybox nc -ll -e) answers every request with the complete body" {
	fixture
	TALLY_EXPORTER_BACKEND=nc start_exporter
	check_fallback_response
	check_every_request
	grep -qx 'tally_exporter_backend{backend="nc"} 1' body
}

@test "the file backend writes the merged metrics for node_exporter's textfile collector" {
	fixture
	mkdir node
	export TALLY_NODE_EXPORTER_FILE=$BATS_TEST_TMPDIR/node/tally.prom
	METRICS_REFRESH_INTERVAL=1 $TEST_SHELL "$EXP" --backend file 2>exporter.err &
	PID=$!
	wait_for_file "$TALLY_NODE_EXPORTER_FILE"
	run promtool check metrics <"$TALLY_NODE_EXPORTER_FILE"
	assert_success
	assert_output ''
	run ls -A node
	assert_output tally.prom
	nport=$(free_port)
	prometheus-node-exporter --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$BATS_TEST_TMPDIR/node" \
		--web.listen-address="127.0.0.1:$nport" 2>node.err 3>&- &
	PIDS=$!
	for _ in $(seq 100); do curl -fsS -o body "http://127.0.0.1:$nport/metrics" 2>/dev/null && break; sleep 0.1; done
	run promtool check metrics <body
	assert_success
	grep -qx 'node_textfile_scrape_error 0' body
	grep -qx 'container_features_installed 2' body
	grep -qx 'container_build_command_duration_seconds_count 4' body
	grep -qx 'tally_exporter_backend{backend="file"} 1' body
	# refreshed every METRICS_REFRESH_INTERVAL seconds
	printf '# HELP late_things Late.\n# TYPE late_things gauge\nlate_things 1\n' >"$TALLY_METRICS_DIR/c.prom"
	for _ in $(seq 50); do grep -qx 'late_things 1' "$TALLY_NODE_EXPORTER_FILE" && break; sleep 0.1; done
	grep -qx 'late_things 1' "$TALLY_NODE_EXPORTER_FILE"
}

@test "disk usage of the configured paths is refreshed every METRICS_REFRESH_INTERVAL into the runtime directory" {
	mkdir -p data
	head -c 204800 /dev/zero >data/blob
	export TALLY_DISK_USAGE_PATHS="$BATS_TEST_TMPDIR/data $BATS_TEST_TMPDIR/missing"
	METRICS_REFRESH_INTERVAL=1 start_exporter
	wait_for_file "$TALLY_RUNTIME_DIR/disk-usage.prom"
	run promtool check metrics <"$TALLY_RUNTIME_DIR/disk-usage.prom"
	assert_success
	want=$(($(du -skx data | cut -f1) * 1024))
	curl -fsS -o body "$URL/metrics"
	grep -qx "container_disk_usage_bytes{path=\"$BATS_TEST_TMPDIR/data\"} $want" body
	grep -qx "tally_disk_usage_error{path=\"$BATS_TEST_TMPDIR/data\"} 0" body
	grep -qx "tally_disk_usage_error{path=\"$BATS_TEST_TMPDIR/missing\"} 1" body
	run grep -c "container_disk_usage_bytes{path=\"$BATS_TEST_TMPDIR/missing\"}" body
	assert_output 0
	head -c 409600 /dev/zero >data/blob2
	want2=$(($(du -skx data | cut -f1) * 1024))
	[ "$want2" -gt "$want" ]
	for _ in $(seq 40); do
		curl -fsS -o body "$URL/metrics"
		grep -qx "container_disk_usage_bytes{path=\"$BATS_TEST_TMPDIR/data\"} $want2" body && break
		sleep 0.1
	done
	grep -qx "container_disk_usage_bytes{path=\"$BATS_TEST_TMPDIR/data\"} $want2" body
	run ls -A "$TALLY_RUNTIME_DIR"
	assert_output disk-usage.prom
}

@test "a du that hangs on a slow mount is cut at TALLY_DISK_USAGE_TIMEOUT and reported" {
	mkdir -p slowbin data
	printf '#!/bin/sh\nexec sleep 60\n' >slowbin/du
	chmod +x slowbin/du
	export TALLY_DISK_USAGE_PATHS="$BATS_TEST_TMPDIR/data" TALLY_DISK_USAGE_TIMEOUT=1
	start=$(date +%s)
	PATH=$BATS_TEST_TMPDIR/slowbin:$PATH METRICS_REFRESH_INTERVAL=30 start_exporter
	wait_for_file "$TALLY_RUNTIME_DIR/disk-usage.prom" 10
	[ $(($(date +%s) - start)) -le 5 ]
	curl -fsS -o body "$URL/metrics"
	grep -qx "tally_disk_usage_error{path=\"$BATS_TEST_TMPDIR/data\"} 1" body
	run curl -fsS -o /dev/null -w '%{http_code}' "$URL/healthz"
	assert_output 200
}

@test "--healthcheck-interval runs the healthcheck, and /readyz follows its latest result" {
	mkdir hc.d
	printf '#!/bin/sh\n[ ! -e %s/broken ]\n' "$BATS_TEST_TMPDIR" >hc.d/10-flag
	chmod +x hc.d/10-flag
	TALLY_HEALTHCHECK_ARGS="--dir $BATS_TEST_TMPDIR/hc.d" start_exporter --healthcheck-interval 1
	wait_for_file "$TALLY_METRICS_DIR/healthcheck.prom"
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
	touch broken
	for _ in $(seq 50); do
		[ "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/readyz")" = 503 ] && break
		sleep 0.1
	done
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[-]healthcheck failed: container_healthcheck_status is 0\nreadyz check failed\n503')"
	curl -fsS -o body "$URL/metrics"
	grep -qx 'container_healthcheck_check_status{check="10-flag"} 0' body
}

@test "with a read-only metrics directory the healthcheck result goes to the runtime directory and is served" {
	mkdir hc.d
	printf '#!/bin/sh\nexit 0\n' >hc.d/10-ok
	chmod +x hc.d/10-ok
	fixture
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	TALLY_HEALTHCHECK_ARGS="--dir $BATS_TEST_TMPDIR/hc.d" unshare -m $TEST_SHELL -c \
		'mount --bind -o ro "$1" "$1" && shift && exec "$@"' sh "$TALLY_METRICS_DIR" \
		$TEST_SHELL "$EXP" --listen "127.0.0.1:$PORT" --healthcheck-interval 1 2>exporter.err &
	PID=$!
	wait_for_file "$TALLY_RUNTIME_DIR/healthcheck.prom" || { cat exporter.err; false; }
	[ ! -e "$TALLY_METRICS_DIR/healthcheck.prom" ]
	for _ in $(seq 50); do curl -fsS -o body "$URL/metrics" 2>/dev/null && break; sleep 0.1; done
	grep -qx 'container_healthcheck_status 1' body
	grep -qx 'tally_textfile_scrape_error{file="healthcheck.prom"} 0' body
	run curl -sS "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[+]healthcheck ok\nreadyz check passed')"
}

@test "metrics-exporter runs the app beside the exporter and returns the app's exit status" {
	port=$(free_port)
	run --separate-stderr $TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c "for i in \$(seq 100); do curl -fsS http://127.0.0.1:$port/healthz && exit 5; sleep 0.05; done; exit 9"
	assert_failure 5
	assert_output "ok"
}

@test "metrics-exporter forwards TERM, HUP and USR1 to the app, and INT as TERM when the app ignores INT" {
	port=$(free_port)
	$TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c 'trap "echo hup >>got" HUP; trap "echo usr1 >>got" USR1; trap "exit 42" TERM; echo up >ready; while :; do sleep 0.1; done' &
	PID=$!
	wait_for_file ready
	# one at a time: bash may drop a trap when two signals arrive within
	# microseconds of each other during wait
	kill -HUP "$PID"
	for _ in $(seq 50); do [ -s got ] && break; sleep 0.1; done
	kill -USR1 "$PID"
	for _ in $(seq 50); do [ "$(wc -l <got)" = 2 ] && break; sleep 0.1; done
	run sort got
	assert_output "$(printf 'hup\nusr1')"
	kill -TERM "$PID"
	status=0
	wait "$PID" || status=$?
	PID=
	[ "$status" -eq 42 ]
	run curl -sS "http://127.0.0.1:$port/healthz"
	assert_failure
	# a background command of the exporter starts with INT ignored (dash,
	# busybox ash), so sleep gets INT as TERM; the exporter itself must not
	# inherit INT ignored from bats' background job, as PID 1 would not.
	env --default-signal=INT $TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sleep 60 &
	PID=$!
	for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break; sleep 0.1; done
	kill -INT "$PID"
	status=0
	wait "$PID" || status=$?
	PID=
	[ "$status" -eq 143 ] || [ "$status" -eq 130 ]
}

@test "an app that exits at once on TERM has its status returned, not the interrupted wait's" {
	for i in $(seq 10); do
		rm -f ready
		port=$(free_port)
		$TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c 'trap "exit 0" TERM; : >ready; while :; do sleep 1 & wait $!; done' 2>/dev/null &
		PID=$!
		for _ in $(seq 50); do [ -e ready ] && break; sleep 0.02; done
		kill -TERM "$PID"
		status=0
		wait "$PID" || status=$?
		PID=
		[ "$status" -eq 0 ] || fail "run $i: exit status $status"
	done
}

@test "as PID 1 it reaps orphaned zombies and returns the app's status" {
	unshare --pid --fork true 2>/dev/null || skip "unshare --pid needs root here"
	port=$(free_port)
	run unshare --pid --fork --mount-proc $TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c '
		for i in 1 2 3 4 5; do sh -c "sleep 0.1 & exit 0"; done
		sleep 1
		for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null; done | awk "\$3 == \"Z\" { z++ } END { print \"zombies:\", z + 0 }"
		[ "$(cut -d" " -f1 /proc/1/stat)" = 1 ] && echo "pid1: $(tr "\0" " " </proc/1/cmdline | cut -c1-80)"
		exit 7'
	assert_failure 7
	assert_line 'zombies: 0'
	assert_line --regexp '^pid1: .*metrics-exporter'
}

@test "METRICS_ENABLED=false serves nothing and still runs the app" {
	port=$(free_port)
	METRICS_ENABLED=false run $TEST_SHELL "$EXP" --listen "127.0.0.1:$port" -- sh -c "curl -fsS http://127.0.0.1:$port/healthz 2>/dev/null && exit 1; exit 3"
	assert_failure 3
	METRICS_ENABLED=false run $TEST_SHELL "$EXP"
	assert_success
	assert_output 'metrics-exporter: METRICS_ENABLED=false: nothing to serve'
}

@test "metrics-exporter usage errors exit 100 and a forced missing backend exits 111" {
	run $TEST_SHELL "$EXP" --nope
	assert_failure 100
	assert_line --index 0 'metrics-exporter: unknown option: --nope'
	run $TEST_SHELL "$EXP" --
	assert_failure 100
	run $TEST_SHELL "$EXP" --backend gopher
	assert_failure 100
	assert_line --index 0 "metrics-exporter: unknown backend 'gopher' (auto, tally-httpd, socat, busybox-httpd, nc, file)"
	METRICS_REFRESH_INTERVAL=0 run $TEST_SHELL "$EXP"
	assert_failure 100
	run $TEST_SHELL "$EXP" --listen 9090
	assert_failure 100
	run $TEST_SHELL "$EXP" --healthcheck-interval soon
	assert_failure 100
	mkdir -p lonely
	cp "$EXP" lonely/metrics-exporter
	run env TALLY_HOME=/nonexistent PATH=/usr/bin:/bin $TEST_SHELL lonely/metrics-exporter --backend tally-httpd
	assert_failure 111
	assert_output "metrics-exporter: fatal: tally-httpd not found in /nonexistent/bin, beside this command or on PATH"
	TALLY_NODE_EXPORTER_FILE=/proc/nope/tally.prom run $TEST_SHELL "$EXP" --backend file
	assert_failure 111
	assert_output 'metrics-exporter: fatal: /proc/nope is not a writable directory'
}
