#!/usr/bin/env bats
# tally-httpd --probe: the healthcheck for images with no shell.

load ../lib/common

setup() {
	tally_setup
	mkdir metrics
	printf '# HELP up_total x\n# TYPE up_total counter\nup_total 1\n' >metrics/a.prom
	tally-httpd --listen 127.0.0.1:0 --dir metrics --port-file port 2>/dev/null &
	PID=$!
	wait_for_file port
	read -r PORT <port
}

teardown() {
	kill "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
}

@test "--probe of a live endpoint exits 0 and prints nothing" {
	for url in "http://127.0.0.1:$PORT/healthz" "http://127.0.0.1:$PORT/readyz" "tcp://127.0.0.1:$PORT"; do
		run --separate-stderr tally-httpd --probe "$url"
		assert_success
		assert_equal "$output$stderr" ""
	done
}

@test "--probe of a 404 path exits 1 and names the status" {
	run --separate-stderr tally-httpd --probe "http://127.0.0.1:$PORT/nope"
	assert_failure 1
	assert_equal "$stderr" "tally-httpd: warning: probe of http://127.0.0.1:$PORT/nope failed: HTTP status 404"
}

@test "--probe of a closed port exits 1 at once" {
	kill "$PID"
	wait "$PID" || true
	SECONDS=0
	run --separate-stderr tally-httpd --probe "tcp://127.0.0.1:$PORT"
	assert_failure 1
	assert_equal "$stderr" "tally-httpd: warning: probe of tcp://127.0.0.1:$PORT failed: cannot connect to 127.0.0.1: Connection refused"
	[ "$SECONDS" -lt 3 ]
}

@test "--probe gives up at --probe-timeout on a server that never answers" {
	# A listener that accepts nothing: socat holds the connection silently.
	port2=$(free_port)
	socat "TCP-LISTEN:$port2,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'sleep 30' &
	SPID=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port2") 2>/dev/null && break; sleep 0.05; done
	SECONDS=0
	run --separate-stderr tally-httpd --probe "http://127.0.0.1:$port2/" --probe-timeout 1
	pkill -P "$SPID" 2>/dev/null || true
	kill "$SPID" 2>/dev/null || true
	assert_failure 1
	assert_equal "$stderr" "tally-httpd: warning: probe of http://127.0.0.1:$port2/ failed: timed out waiting for 127.0.0.1"
	[ "$SECONDS" -lt 4 ]
}

@test "--probe of something that is not a probe URL is a usage error" {
	for url in "ftp://x" "tcp://host" "http://h/a b" ""; do
		run --separate-stderr tally-httpd --probe "$url"
		assert_failure 100
	done
	run tally-httpd --probe "tcp://127.0.0.1:$PORT" --probe-timeout 0
	assert_failure 100
}
