load ../lib/common
load ../lib/faults

# The exporter under load: 1,000 clients holding idle or slowloris
# connections open (tests/faults/loadgen.py keeps 1,000 open, opening again
# each one the server closes; the server keeps at most 256 and gives up the
# others), a descriptor limit of 64, and a limit lowered under the running
# server. Each time a scraper does 20 scrapes that must all be 200
# with a body promtool accepts, taken while the connection table is full;
# afterwards the server runs, answers, and holds as many descriptors as
# before the load. Every run is bounded: loadgen by --seconds and
# --max-opens, each request by curl --max-time.

setup() {
	tally_setup
	mkdir m
	awk 'BEGIN { print "# HELP load_value A series of the load test.\n# TYPE load_value gauge"
		for (i = 0; i < 200; i++) printf "load_value{i=\"%d\"} %d\n", i, i }' >m/load.prom
}
teardown() { faults_teardown; }

LOADGEN="python3 $BATS_TEST_DIRNAME/loadgen.py"
SCRAPES=20

# value_of NAME < BODY: prints the value of the sample line NAME (exact).
value_of() {
	awk -v n="$1" 'index($0, n " ") == 1 { print substr($0, length(n) + 2) }'
}

# need_fds N: skips the test when this shell cannot give loadgen N descriptors.
need_fds() {
	local hard
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] || [ "$hard" -ge "$1" ] ||
		skip "loadgen needs $1 descriptors; the hard limit here is $hard"
}

# loadgen_start ARG...: starts loadgen.py against $PORT (writing its
# figures to loadgen.json) and waits, at most 20 s, until each of its
# connections has been established.
loadgen_start() {
	rm -f ready stop
	$LOADGEN --port "$PORT" --ready ready --stop stop --seconds 60 --max-opens 30000 "$@" \
		>loadgen.json 2>loadgen.err 3>&- &
	FAULT_PIDS+=($!)
	LOADGEN_PID=$!
	wait_for_file ready 20 || fail "loadgen did not get its connections open: $(cat loadgen.err)"
}

# loadgen_stop: tells loadgen to stop, waits for it and checks it ran.
loadgen_stop() {
	: >stop
	wait "$LOADGEN_PID" || fail "loadgen failed: $(cat loadgen.err)"
}

# lg FIELD: prints a field of loadgen's figures (jq path, e.g. .opens).
lg() {
	jq -r "$1" loadgen.json
}

# scrapes MIN_CONNS: does $SCRAPES scrapes 0.1 s apart; each must be 200 with
# a body promtool accepts, taken with at least MIN_CONNS client connections
# open (tally_httpd_connections: the load was on); sets SLOWEST to the
# longest scrape in seconds.
scrapes() {
	local i r code t conns
	SLOWEST=0
	for i in $(seq "$SCRAPES"); do
		r=$(curl -sS --max-time 5 -o body -w '%{http_code} %{time_total}' "$URL/metrics") ||
			fail "scrape $i: curl failed"
		code=${r% *}
		t=${r#* }
		[ "$code" = 200 ] || fail "scrape $i: status $code"
		promtool check metrics <body >/dev/null 2>promtool.err || fail "scrape $i: $(cat promtool.err)"
		assert_equal "$(value_of 'load_value{i="199"}' <body)" 199
		conns=$(value_of tally_httpd_connections <body)
		[ "$conns" -ge "$1" ] || fail "scrape $i: only $conns connections open; the load was not on"
		SLOWEST=$(awk -v a="$SLOWEST" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
		sleep 0.1
	done
}

# recovered BASELINE: the server runs, answers /healthz and a scrape, and
# within 10 s holds BASELINE descriptors again and one connection (the
# scrape's own).
recovered() {
	local i
	for i in $(seq 100); do
		[ "$(httpd_fds)" -eq "$1" ] && break
		sleep 0.1
	done
	httpd_alive || fail "the server is gone"
	[ "$(httpd_fds)" -eq "$1" ] ||
		fail "$(httpd_fds) descriptors open, $1 before the load: $(ls -l "/proc/$HTTPD_PID/fd" | tail -n +2); $(ss -tanp 2>/dev/null | grep "pid=$HTTPD_PID," | head -20)"
	run curl -sS --max-time 5 "$URL/healthz"
	assert_success
	assert_output ok
	scrape_ok || fail "the scrape after the load"
	assert_equal "$(value_of tally_httpd_connections <"$BATS_TEST_TMPDIR/scrape.body")" 1
}

# counter NAME: prints NAME's value in the last scrape body.
counter() {
	value_of "$1" <"$BATS_TEST_TMPDIR/scrape.body"
}

@test "1,000 concurrent connections held open: 20 scrapes all succeed beside them, and the exporter recovers when they go" {
	local base rss
	need_fds 1200
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	base=$(httpd_fds)
	loadgen_start --conns 1000 --mode idle
	# every one of the 1,000 is open at the server during every scrape
	scrapes 1000
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$HTTPD_PID/status")
	loadgen_stop
	recovered "$base"
	assert_equal "$(lg .opens)" 1000
	assert_equal "$(lg .closed_by_server)" 0
	assert_equal "$(lg .connect_errors)" 0
	assert_equal "$(counter tally_httpd_connections_refused_total)" 0
	assert_equal "$(counter tally_httpd_connections_evicted_total)" 0
	echo "# 1000 connections held at once by the exporter (VmRSS ${rss} KiB), $SCRAPES/$SCRAPES scrapes ok beside them (slowest ${SLOWEST} s), none closed, descriptors back to $base" >&3
}

@test "1,500 clients holding idle connections, past the cap of 1,024: 20 scrapes all succeed with the table full, and the exporter recovers" {
	local base
	need_fds 1700
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	base=$(httpd_fds)
	loadgen_start --conns 1500 --mode idle
	scrapes 1000
	loadgen_stop
	recovered "$base"
	[ "$(lg .opens)" -gt 1500 ] || fail "the server closed none of the 1,500"
	assert_equal "$(lg .connect_errors)" 0
	assert_equal "$(counter tally_httpd_connections_refused_total)" 0
	[ "$(counter tally_httpd_connections_evicted_total)" -ge 476 ]
	echo "# 1500 clients holding idle connections ($(lg .opens) opened, at most $(lg .open_max) open at once on the clients' side, $(lg .closed_by_server) closed by the server), $SCRAPES/$SCRAPES scrapes ok (slowest ${SLOWEST} s), evicted $(counter tally_httpd_connections_evicted_total), refused $(counter tally_httpd_connections_refused_total), descriptors back to $base" >&3
}

@test "1,000 slowloris clients sending a request head byte by byte: 20 scrapes all succeed, and the exporter recovers" {
	local base
	need_fds 1100
	httpd_start --dir "$BATS_TEST_TMPDIR/m" --head-timeout 2
	base=$(httpd_fds)
	loadgen_start --conns 1000 --mode slow --byte-every 0.2
	scrapes 200
	loadgen_stop
	recovered "$base"
	[ "$(lg .bytes_sent)" -gt 1000 ] || fail "the slow clients sent $(lg .bytes_sent) bytes"
	# a slow client is given up (no response) or, past the 2 s head
	# timeout, answered 408; never anything else
	assert_equal "$(lg '.status | keys - ["408"] | length')" 0
	assert_equal "$(counter tally_httpd_connections_refused_total)" 0
	echo "# 1000 slowloris clients ($(lg .opens) connections opened, $(lg .bytes_sent) head bytes sent, $(lg '.status["408"] // 0') answered 408), $SCRAPES/$SCRAPES scrapes ok (slowest ${SLOWEST} s), evicted $(counter tally_httpd_connections_evicted_total), descriptors back to $base" >&3
}

@test "under ulimit -n 64, 300 connections held (idle and slow): 20 scrapes all succeed and the descriptors stay under the limit" {
	local base cap fds
	HTTPD_NOFILE=64 httpd_start --dir "$BATS_TEST_TMPDIR/m"
	base=$(httpd_fds)
	scrape_ok
	cap=$(counter tally_httpd_connections_limit)
	[ "$cap" -ge 32 ] && [ "$cap" -le $((64 - base - 8)) ] || fail "cap $cap with $base descriptors open"
	assert_equal "$(counter process_max_fds)" 64
	run grep -c "warning: RLIMIT_NOFILE 64 with [0-9]* other descriptors open: at most $cap connections\$" "$BATS_TEST_TMPDIR/httpd.err"
	assert_output 1
	loadgen_start --conns 300 --mode mixed --byte-every 0.2
	scrapes "$((cap / 2))"
	fds=$(value_of process_open_fds <body)
	[ "$fds" -le 56 ] || fail "$fds descriptors open, more than 64 less the reserve of 8"
	loadgen_stop
	recovered "$base"
	assert_equal "$(counter tally_httpd_connections_refused_total)" 0
	echo "# ulimit -n 64: cap $cap, held 300 connections ($(lg .opens) opened), $SCRAPES/$SCRAPES scrapes ok (slowest ${SLOWEST} s), $fds descriptors open at the last, evicted $(counter tally_httpd_connections_evicted_total), descriptors back to $base" >&3
}

@test "the descriptor limit lowered under the running exporter below its connections: it gives connections up instead of failing, scrapes go on, and SIGHUP restores the cap" {
	local base soft cap
	command -v prlimit >/dev/null || skip "prlimit (util-linux) is not installed"
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	base=$(httpd_fds)
	soft=$(prlimit --pid "$HTTPD_PID" --nofile --output SOFT --noheadings | tr -d ' ')
	loadgen_start --conns 240 --mode idle
	scrapes 200
	# 100 descriptors for 240 connections: poll() refuses that many and
	# accept() has none left
	prlimit --pid "$HTTPD_PID" --nofile=100:
	SCRAPES=20 scrapes 40
	cap=$(value_of tally_httpd_connections_limit <body)
	[ "$cap" -le $((100 - base - 8)) ] || fail "cap $cap under a limit of 100"
	run grep -c 'warning: out of file descriptors: at most [0-9]* connections until SIGHUP$' "$BATS_TEST_TMPDIR/httpd.err"
	[ "$output" -ge 1 ] || fail "no warning"
	loadgen_stop
	recovered "$base"
	prlimit --pid "$HTTPD_PID" --nofile="$soft":
	kill -HUP "$HTTPD_PID"
	sleep 0.2
	scrape_ok
	assert_equal "$(counter tally_httpd_connections_limit)" 1024
	echo "# limit lowered to 100 under 240 connections: cap $cap, $SCRAPES/$SCRAPES scrapes ok (slowest ${SLOWEST} s), evicted $(counter tally_httpd_connections_evicted_total), refused $(counter tally_httpd_connections_refused_total); after SIGHUP the cap is 1024 again" >&3
}
