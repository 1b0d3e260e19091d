load ../lib/common
setup() { tally_setup; }

# tally-httpd: the metrics directory over HTTP/1.1, /healthz, errors,
# keep-alive, load, signals and exit statuses. Each test starts its own
# server on 127.0.0.1 (port 0, learnt from --port-file) and kills only it.

teardown() {
	if [ -n "${HTTPD_PID-}" ]; then
		kill "$HTTPD_PID" 2>/dev/null || true
		wait "$HTTPD_PID" 2>/dev/null || true
	fi
}

CT_METRICS='text/plain; version=0.0.4; charset=utf-8'
CT_TEXT='text/plain; charset=utf-8'

# write_fixtures: fills m/ with served files (one without a final newline)
# and with files that must not be served; writes the expected body to
# expected (built with cat).
write_fixtures() {
	mkdir -p m/sub.prom
	cat >m/10-build.prom <<'EOF'
# HELP container_build_duration_seconds Duration of a feature's installation.
# TYPE container_build_duration_seconds gauge
container_build_duration_seconds{feature="python-dev",status="success"} 12.5
container_build_duration_seconds{feature="node",status="failed"} 3
EOF
	cat >m/20-errors.prom <<'EOF'
# HELP container_build_errors_total Errors logged while installing a feature.
# TYPE container_build_errors_total counter
container_build_errors_total{feature="python-dev"} 0
container_build_errors_total{feature="node"} 2
EOF
	printf '%s\n%s\n%s' \
		'# HELP container_features_installed Features installed in the image.' \
		'# TYPE container_features_installed gauge' \
		'container_features_installed 2' >m/30-features.prom
	printf 'this is not a metric {\n' >m/.hidden.prom
	printf 'container_features_installed 99\n' >m/40-half.prom.tmp
	printf 'notes 1\n' >m/notes.txt
	printf 'nested 1\n' >m/sub.prom/x.prom
	{
		cat m/10-build.prom m/20-errors.prom m/30-features.prom
		printf '\n'
	} >expected
}

# start_server [ARG...]: starts tally-httpd on 127.0.0.1 with a free port,
# serving m/; sets HTTPD_PID and PORT.
start_server() {
	mkdir -p m
	rm -f port
	tally-httpd --listen 127.0.0.1:0 --dir "$BATS_TEST_TMPDIR/m" \
		--port-file "$BATS_TEST_TMPDIR/port" "$@" 2>"$BATS_TEST_TMPDIR/stderr" 3>&- &
	HTTPD_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/port" 10 || fail "tally-httpd wrote no port file"
	PORT=$(cat port)
	URL=http://127.0.0.1:$PORT
}

# head_of STATUS-LINE CONTENT-TYPE LENGTH CONNECTION [EXTRA-LINE]: prints
# the exact response head tally-httpd sends.
head_of() {
	printf '%s\r\n' "HTTP/1.1 $1" "Content-Type: $2" "Content-Length: $3" \
		"Connection: $4" ${5:+"$5"}
	printf '\r\n'
}

# raw BYTES: sends BYTES (printf format) on one connection, prints the reply.
raw() {
	# shellcheck disable=SC2059
	printf "$1" | socat -t 5 -T 10 - "TCP:127.0.0.1:$PORT"
}

@test "GET /metrics returns the .prom files concatenated byte for byte with exact headers" {
	write_fixtures
	start_server
	curl -sS -D headers -o body "$URL/metrics"
	cmp body expected
	head_of "200 OK" "$CT_METRICS" "$(wc -c <expected)" keep-alive >want
	cmp headers want
}

@test "the /metrics body passes promtool check metrics" {
	write_fixtures
	start_server
	curl -sS -o body "$URL/metrics"
	run promtool check metrics <body
	assert_success
	assert_output ''
}

@test "a file without a final newline is followed by one, an empty file adds nothing" {
	mkdir m
	printf '# HELP a A.\n# TYPE a gauge\na 1' >m/a.prom
	: >m/b.prom
	printf '# HELP c C.\n# TYPE c gauge\nc 3\n' >m/c.prom
	start_server
	curl -sS -o body "$URL/metrics"
	printf '# HELP a A.\n# TYPE a gauge\na 1\n# HELP c C.\n# TYPE c gauge\nc 3\n' >want
	cmp body want
}

@test "hidden files, *.prom.tmp, other names and subdirectories are not served" {
	write_fixtures
	rm m/10-build.prom m/20-errors.prom m/30-features.prom
	start_server
	curl -sS -D headers -o body "$URL/metrics"
	[ ! -s body ]
	head_of "200 OK" "$CT_METRICS" 0 keep-alive >want
	cmp headers want
}

@test "files are served sorted by name in byte order" {
	mkdir m
	for n in b a B 10 9; do
		printf '# HELP m_%s M.\n# TYPE m_%s gauge\nm_%s 1\n' "$n" "$n" "$n" >"m/$n.prom"
	done
	start_server
	curl -sS -o body "$URL/metrics"
	(cd m && cat 10.prom 9.prom B.prom a.prom b.prom) >want
	cmp body want
}

@test "/metrics reads the directory afresh on every request and ignores the query string" {
	write_fixtures
	start_server
	curl -sS -o body1 "$URL/metrics?debug=1&x"
	cmp body1 expected
	printf '# HELP late_total Late.\n# TYPE late_total counter\nlate_total 7\n' >m/50-late.prom
	rm m/10-build.prom
	curl -sS -o body2 "$URL/metrics"
	cat m/20-errors.prom m/30-features.prom >want
	printf '\n' >>want
	cat m/50-late.prom >>want
	cmp body2 want
}

@test "/healthz answers ok with exact headers" {
	start_server
	curl -sS -D headers -o body "$URL/healthz"
	printf 'ok\n' >want
	cmp body want
	head_of "200 OK" "$CT_TEXT" 3 keep-alive >want
	cmp headers want
}

@test "/healthz answers even when the metrics directory does not exist" {
	start_server --dir "$BATS_TEST_TMPDIR/missing"
	run curl -sS "$URL/healthz"
	assert_success
	assert_output 'ok'
}

@test "HEAD sends the GET headers and no body on /metrics and /healthz" {
	write_fixtures
	start_server
	for path in /metrics /healthz; do
		curl -sS -D get-headers -o get-body "$URL$path"
		curl -sS -I -D head-headers -o head-body "$URL$path"
		cmp get-headers head-headers
		[ -s get-body ]
		# curl -I writes the head to -o too; nothing else arrived
		cmp get-headers head-body
	done
	# and nothing follows the head on the wire: the next response starts at once
	raw 'HEAD /healthz HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 keep-alive; head_of "404 Not Found" "$CT_TEXT" 10 close; printf 'not found\n'; } >want
	cmp got want
}

@test "an unknown path gets 404, whatever the method" {
	start_server
	curl -sS -D headers -o body "$URL/metrics/../etc/passwd"
	head_of "404 Not Found" "$CT_TEXT" 10 keep-alive >want
	cmp headers want
	printf 'not found\n' >want
	cmp body want
	run curl -sS -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}\n' -X DELETE "$URL/nope" "$URL/metricsx" "$URL/"
	assert_success
	assert_output "$(printf '404\n404\n404')"
}

@test "another method gets 405 with Allow: GET, HEAD" {
	start_server
	curl -sS -D headers -o body -X POST "$URL/metrics"
	head_of "405 Method Not Allowed" "$CT_TEXT" 19 keep-alive "Allow: GET, HEAD" >want
	cmp headers want
	printf 'method not allowed\n' >want
	cmp body want
}

@test "a POST with a body gets 405 and the connection closes" {
	start_server
	curl -sS -D headers -o body --data 'x=1' "$URL/healthz"
	head_of "405 Method Not Allowed" "$CT_TEXT" 19 close "Allow: GET, HEAD" >want
	cmp headers want
}

@test "garbage gets 400 and the connection closes" {
	start_server
	raw 'garbage\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{ head_of "400 Bad Request" "$CT_TEXT" 12 close; printf 'Bad Request\n'; } >want
	cmp got want
	raw '\026\003\001\002\000\001\000\001\374\003\003' >got
	cmp got want
	raw 'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n' >got
	cmp got want
}

@test "a request for HTTP/2.0 gets 505" {
	start_server
	raw 'GET /healthz HTTP/2.0\r\n\r\n' >got
	{ head_of "505 HTTP Version Not Supported" "$CT_TEXT" 27 close; printf 'HTTP Version Not Supported\n'; } >want
	cmp got want
}

@test "a huge header gets 431" {
	start_server
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	curl -sS -D headers -o body -H "X-Big: $big" "$URL/healthz"
	head_of "431 Request Header Fields Too Large" "$CT_TEXT" 32 close >want
	cmp headers want
	printf 'Request Header Fields Too Large\n' >want
	cmp body want
}

@test "an over-long request line gets 414" {
	start_server
	long=$(head -c 5000 /dev/zero | tr '\0' a)
	curl -sS -D headers -o body "$URL/metrics?$long"
	head_of "414 URI Too Long" "$CT_TEXT" 13 close >want
	cmp headers want
}

@test "curl with two URLs reuses one keep-alive connection" {
	write_fixtures
	start_server
	run curl -sS -o body1 -o body2 -w '%{num_connects} %{http_code}\n' "$URL/metrics" "$URL/healthz"
	assert_success
	assert_output "$(printf '1 200\n0 200')"
	cmp body1 expected
	printf 'ok\n' >want
	cmp body2 want
}

@test "pipelined requests are answered in order on one connection" {
	write_fixtures
	start_server
	raw 'GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		printf 'ok\n'
		head_of "200 OK" "$CT_METRICS" "$(wc -c <expected)" keep-alive
		cat expected
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		head_of "404 Not Found" "$CT_TEXT" 10 close
		printf 'not found\n'
	} >want
	cmp got want
}

@test "HTTP/1.0 closes after the response unless it asks for keep-alive" {
	start_server
	raw 'GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
	raw 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n' >got
	{
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		printf 'ok\n'
		head_of "200 OK" "$CT_TEXT" 3 close
		printf 'ok\n'
	} >want
	cmp got want
}

@test "HTTP/1.1 Connection: close is honoured" {
	start_server
	raw 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
}

@test "bare LF line ends are accepted" {
	start_server
	raw 'GET /healthz HTTP/1.1\nConnection: close\n\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
}

@test "a missing metrics directory gets 503 with a short text body" {
	start_server --dir "$BATS_TEST_TMPDIR/missing"
	curl -sS -D headers -o body "$URL/metrics"
	head_of "503 Service Unavailable" "$CT_TEXT" 29 keep-alive >want
	cmp headers want
	printf 'metrics directory unreadable\n' >want
	cmp body want
}

@test "200 sequential requests all complete" {
	write_fixtures
	start_server
	ok=0
	for i in $(seq 200); do
		curl -sS --max-time 5 -o body "$URL/metrics" && cmp -s body expected && ok=$((ok + 1))
	done
	assert_equal "$ok" 200
}

@test "50 concurrent requests all get the full body" {
	write_fixtures
	# a body large enough to need several writes
	for i in $(seq 2000); do
		printf 'container_build_duration_seconds{feature="f%d",status="success"} %d\n' "$i" "$i"
	done >>m/10-build.prom
	{ cat m/10-build.prom m/20-errors.prom m/30-features.prom; printf '\n'; } >expected
	start_server
	pids=
	for i in $(seq 50); do
		curl -sS --max-time 20 -o "body.$i" "$URL/metrics" 3>&- &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
	for i in $(seq 50); do cmp "body.$i" expected; done
}

@test "a slow client does not block others" {
	start_server
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /heal' >&4
	run curl -sS --max-time 3 "$URL/healthz"
	exec 4>&-
	assert_success
	assert_output 'ok'
}

@test "a client that goes away mid-response does not stop the server" {
	mkdir m
	{
		printf '# HELP big Big.\n# TYPE big gauge\n'
		for i in $(seq 20000); do printf 'big{i="%d"} %d\n' "$i" "$i"; done
	} >m/big.prom
	start_server
	for i in 1 2 3; do
		printf 'GET /metrics HTTP/1.1\r\n\r\n' | socat -u - "TCP:127.0.0.1:$PORT"
	done
	run curl -sS --max-time 3 "$URL/healthz"
	assert_success
	assert_output 'ok'
	kill -0 "$HTTPD_PID"
}

@test "connections past the cap get 503 and are closed, and the server recovers" {
	start_server
	fds=
	for i in $(seq 256); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		fds="$fds $fd"
	done
	run socat -u -T 5 "TCP:127.0.0.1:$PORT" -
	for fd in $fds; do exec {fd}>&-; done
	assert_success
	assert_output "$(head_of "503 Service Unavailable" "$CT_TEXT" 17 close; printf 'too many clients')"
	run curl -sS --max-time 3 "$URL/healthz"
	assert_success
	assert_output 'ok'
}

@test "an idle connection is closed after the idle timeout" {
	start_server
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /heal' >&4
	start=$SECONDS
	run timeout 20 cat <&4
	exec 4>&-
	assert_success
	assert_output ''
	elapsed=$((SECONDS - start))
	[ "$elapsed" -ge 8 ] && [ "$elapsed" -le 13 ] || fail "closed after ${elapsed}s, want about 10"
}

@test "SIGTERM and SIGINT stop the server with status 0" {
	for sig in TERM INT; do
		start_server
		kill -"$sig" "$HTTPD_PID"
		rc=0
		wait "$HTTPD_PID" || rc=$?
		HTTPD_PID=
		assert_equal "SIG$sig exit $rc" "SIG$sig exit 0"
	done
}

@test "the start line names the address and directory, and the port file holds the port" {
	start_server
	assert_equal "$(cat stderr)" "tally-httpd: listening on 127.0.0.1:$PORT, serving $BATS_TEST_TMPDIR/m"
	printf '%s\n' "$PORT" >want
	cmp port want
	[ ! -e port.tmp ]
}

@test "--listen [::1]:PORT serves over IPv6" {
	[ -n "$(sed -n '/^0\{31\}1 /p' /proc/net/if_inet6 2>/dev/null)" ] || skip "no IPv6 loopback"
	mkdir m
	tally-httpd --listen '[::1]:0' --dir m --port-file port 2>stderr 3>&- &
	HTTPD_PID=$!
	wait_for_file port 10
	port=$(cat port)
	run curl -sS --max-time 3 "http://[::1]:$port/healthz"
	assert_success
	assert_output 'ok'
	assert_equal "$(cat stderr)" "tally-httpd: listening on [::1]:$port, serving m"
}

@test "without --listen it serves :METRICS_PORT on every interface, dir from TALLY_METRICS_DIR" {
	mkdir metrics
	printf '# HELP one One.\n# TYPE one gauge\none 1\n' >metrics/one.prom
	port=$(free_port)
	METRICS_PORT=$port TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics \
		tally-httpd --port-file port 2>stderr 3>&- &
	HTTPD_PID=$!
	wait_for_file port 10
	assert_equal "$(cat port)" "$port"
	run curl -sS --max-time 3 "http://127.0.0.1:$port/metrics"
	assert_success
	assert_output "$(cat metrics/one.prom)"
	run cat stderr
	assert_output --regexp "^tally-httpd: listening on (\[::\]|0\.0\.0\.0):$port, serving $BATS_TEST_TMPDIR/metrics\$"
}

@test "a second server on the same port exits 111" {
	start_server
	run tally-httpd --listen "127.0.0.1:$PORT" --dir m
	assert_failure 111
	assert_output --regexp "^tally-httpd: fatal: unable to listen on 127\.0\.0\.1:$PORT: Address (already )?in use\$"
}

@test "usage errors exit 100 with a usage line" {
	syn='tally-httpd [--listen [ADDR]:PORT] [--dir DIR] [--port-file FILE]'
	run tally-httpd --bogus
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (unexpected argument '--bogus')"
	run tally-httpd extra
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (unexpected argument 'extra')"
	run tally-httpd --dir
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (--dir needs a value)"
	for bad in 9090 localhost:9090 :65536 '[::1]9090' 1.2.3:80; do
		run tally-httpd --listen "$bad"
		assert_failure 100
		assert_output "tally-httpd: usage: $syn (--listen '$bad' is not [ADDR]:PORT)"
	done
	METRICS_PORT=http run tally-httpd
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (METRICS_PORT 'http' is not a port)"
}

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr tally-httpd --help
	assert_success
	assert_equal "$stderr" ''
	assert_line --index 0 'usage: tally-httpd [--listen [ADDR]:PORT] [--dir DIR] [--port-file FILE]'
	assert_line --index 1 '       tally-httpd --help'
}
