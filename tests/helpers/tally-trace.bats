#!/usr/bin/env bats
# tally-trace: the build's trace context, spans, the build span's end and
# OTLP/HTTP sending (to a small python3 receiver on 127.0.0.1 that records
# each request raw). The protobuf decoding is in tests/e2e/otlp.bats.

load ../lib/common

setup() {
	tally_setup
	[ -x "$TALLY_BUILD/bin/tally-trace" ] || skip "build/bin/tally-trace is not built (make build/bin/tally-trace)"
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	RX_PID=
}

teardown() {
	if [ -n "${RX_PID-}" ]; then
		kill "$RX_PID" 2>/dev/null || :
		wait "$RX_PID" 2>/dev/null || :
	fi
}

# receiver [STATUS [DELAY_S]]: starts a python3 HTTP/1.1 receiver on
# 127.0.0.1 answering STATUS (default 200) after DELAY_S seconds; each
# request is saved as req-N.json {method, path, headers, body}. Sets
# RX_PORT and RX_PID.
receiver() {
	cat >rx.py <<'EOF'
import http.server, json, sys, time
status, delay, n = int(sys.argv[2]), float(sys.argv[3]), [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        n[0] += 1
        with open('req-%d.json' % n[0], 'w') as f:
            json.dump({'method': self.command, 'path': self.path,
                       'headers': {k.lower(): v for k, v in self.headers.items()},
                       'body': body.decode('utf-8')}, f)
        time.sleep(delay)
        out = b'{}' if status < 300 else b'{"message":"quota exceeded"}'
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
open(sys.argv[1] + '.tmp', 'w').write(str(s.server_address[1]))
__import__('os').rename(sys.argv[1] + '.tmp', sys.argv[1])
s.serve_forever()
EOF
	python3 rx.py port "${1:-200}" "${2:-0}" &
	RX_PID=$!
	wait_for_file port 10 || fail "the receiver did not start"
	RX_PORT=$(cat port)
}

# traced_build: records a small trace: a build with one feature holding one
# command.
traced_build() {
	local b c n
	read -r b c n < <(tally-trace start)
	tally-trace span --parent "$b" --span "$c" --name "feature f" --start "$n" --attr tally.feature.name=f
	tally-trace span --parent "$c" --name "cmd" --int process.exit.code=0
}

@test "start creates the build's trace once and every later start joins it" {
	run tally-trace start
	assert_success
	[[ $output =~ ^00-([0-9a-f]{32})-([0-9a-f]{16})-01\ 00-([0-9a-f]{32})-([0-9a-f]{16})-01\ [0-9]{19}$ ]] || fail "$output"
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[3]}" ] || fail "the child is of another trace"
	[ "${BASH_REMATCH[2]}" != "${BASH_REMATCH[4]}" ] || fail "the child has the build's span id"
	local first=${output%% *}
	run cat "$BUILD_LOG_DIR/.tally/trace-context"
	[[ $output =~ ^$first\ [0-9]{19}\ -$ ]] || fail "context file: $output"
	run tally-trace start
	assert_equal "${output%% *}" "$first"
}

@test "concurrent starts of one build agree on one trace" {
	local i
	for i in 1 2 3 4 5 6 7 8; do tally-trace start >"start.$i" & done
	wait
	run sh -c 'cut -d" " -f1 start.* | sort -u | wc -l'
	assert_output 1
	run sh -c 'cut -d" " -f2 start.* | sort -u | wc -l'
	assert_output 8
	run ls -A "$BUILD_LOG_DIR/.tally"
	assert_output trace-context
}

@test "span appends one TracesData line with the given ids, times, attributes and status" {
	run tally-trace span --parent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \
		--span 00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01 --name 'step "one"' \
		--start 1700000000000000000 --end 1700000001500000000 --attr k=v --int n=-5 --error 'it broke'
	assert_success
	assert_output ''
	run cat "$BUILD_LOG_DIR/traces.jsonl"
	assert_output '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"unknown_service:tally"}}]},"scopeSpans":[{"scope":{"name":"tally"},"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"1111111111111111","parentSpanId":"00f067aa0ba902b7","name":"step \"one\"","kind":1,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001500000000","attributes":[{"key":"k","value":{"stringValue":"v"}},{"key":"n","value":{"intValue":"-5"}}],"status":{"code":2,"message":"it broke"}}]}]}]}'
}

@test "span refuses bad input with usage errors" {
	local tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	run tally-trace span --name x
	assert_failure 100
	run tally-trace span --parent "$tp"
	assert_failure 100
	run tally-trace span --parent 00-00000000000000000000000000000000-00f067aa0ba902b7-01 --name x
	assert_failure 100
	run tally-trace span --parent "$tp" --span 00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 --name x
	assert_failure 100
	run tally-trace span --parent "$tp" --name x --start 2 --end 1
	assert_failure 100
	run tally-trace span --parent "$tp" --name x --int n=abc
	assert_failure 100
	run tally-trace bogus
	assert_failure 100
	[ ! -e "$BUILD_LOG_DIR/traces.jsonl" ] || fail "a refused span was written"
}

@test "end records the build span once, ERROR when a child failed" {
	local b c n
	read -r b c n < <(tally-trace start)
	tally-trace span --parent "$b" --span "$c" --name "feature f" --start "$n" --error '1 errors'
	run tally-trace end
	assert_success
	run jq -c '.resourceSpans[].scopeSpans[].spans[] | select(.name == "build") | [.spanId, .parentSpanId, .status, (.attributes | map({(.key): .value.intValue}) | add | .["tally.build.failed_children"])]' "$BUILD_LOG_DIR/traces.jsonl"
	assert_output "[\"$(cut -c37-52 <<<"$b")\",null,{\"code\":2,\"message\":\"1 failed step\"},\"1\"]"
	run --separate-stderr tally-trace end
	assert_failure 1
	assert_equal "$stderr" "tally-trace: warning: the build span of $BUILD_LOG_DIR/.tally/trace-context is already recorded"
	run tally-trace end -d "$BATS_TEST_TMPDIR/nothing-here"
	assert_failure 1
}

@test "send without an endpoint sends nothing and succeeds" {
	traced_build
	run --separate-stderr tally-trace send --strict
	assert_success
	assert_equal "$stderr" "tally-trace: warning: no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or OTEL_TRACES_EXPORTER=none): nothing sent"
	[ ! -e "$BUILD_LOG_DIR/.tally/traces.sent" ] || fail "an offset was recorded"
}

@test "send posts OTLP/HTTP JSON to ENDPOINT/v1/traces with the configured headers, closing the build span" {
	traced_build
	receiver
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT
	export OTEL_EXPORTER_OTLP_HEADERS='Authorization=Bearer%20s3cret, X-Scope-OrgID = tenant-1'
	run tally-trace send
	assert_success
	assert_output "tally-trace: sent 3 spans to http://127.0.0.1:$RX_PORT/v1/traces in 1 requests, 0 failed"
	run jq -r '[.method, .path, .headers["content-type"], .headers.authorization, .headers["x-scope-orgid"], (.headers["content-length"] == (.body | length | tostring))] | @tsv' req-1.json
	assert_output "$(printf 'POST\t/v1/traces\tapplication/json\tBearer s3cret\ttenant-1\ttrue')"
	# The body is the file's lines merged into one TracesData, the build
	# span (closed by send) included.
	run sh -c "jq -c '.body | fromjson | [.resourceSpans[].scopeSpans[].spans[].name]' req-1.json"
	assert_output '["feature f","cmd","build"]'
	run sh -c "jq -c -s '[.[].resourceSpans[]]' '$BUILD_LOG_DIR/traces.jsonl'"
	assert_equal "$output" "$(jq -c '.body | fromjson | .resourceSpans' req-1.json)"
}

@test "send sends only what is new, --all everything, and keeps the build open with --keep-open" {
	local b c n
	receiver
	export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:$RX_PORT/custom/path
	read -r b c n < <(tally-trace start)
	tally-trace span --parent "$b" --name one
	run tally-trace send --keep-open
	assert_success
	run tally-trace send --keep-open
	assert_output "tally-trace: nothing new to send to http://127.0.0.1:$RX_PORT/custom/path"
	tally-trace span --parent "$b" --name two
	run tally-trace send
	assert_success
	run tally-trace send --all
	assert_success
	run sh -c 'for f in req-1.json req-2.json req-3.json; do jq -r "[.path, (.body | fromjson | [.resourceSpans[].scopeSpans[].spans[].name] | join(\",\"))] | @tsv" $f; done'
	assert_output "$(printf '/custom/path\tone\n/custom/path\ttwo,build\n/custom/path\tone,two,build')"
}

@test "send puts OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES of send time into every resource" {
	OTEL_RESOURCE_ATTRIBUTES=recorded=yes traced_build
	receiver
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT/ OTEL_SERVICE_NAME=later
	export OTEL_RESOURCE_ATTRIBUTES='deployment.environment=ci,recorded=overridden'
	run tally-trace send --keep-open
	assert_success
	run jq -c '.body | fromjson | [.resourceSpans[].resource.attributes | map({(.key): .value.stringValue}) | add] | unique' req-1.json
	assert_output '[{"service.name":"later","deployment.environment":"ci","recorded":"overridden"}]'
}

@test "a refused or unreachable endpoint is reported, fails only with --strict, and is retried next time" {
	traced_build
	receiver 429
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT
	run --separate-stderr tally-trace send
	assert_success
	assert_equal "$stderr" "tally-trace: warning: traces not accepted by http://127.0.0.1:$RX_PORT/v1/traces: HTTP 429: {\"message\":\"quota exceeded\"}"
	run --separate-stderr tally-trace send --strict
	assert_failure 1
	[ ! -e "$BUILD_LOG_DIR/.tally/traces.sent" ] || fail "an undelivered send was recorded as sent"
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$(free_port)
	run --separate-stderr tally-trace send --strict
	assert_failure 1
	[[ $stderr =~ "cannot connect to 127.0.0.1:" ]] || fail "$stderr"
}

@test "OTEL_EXPORTER_OTLP_TIMEOUT bounds a send to a silent endpoint" {
	traced_build
	receiver 200 5
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT OTEL_EXPORTER_OTLP_TIMEOUT=300
	local t0=$SECONDS
	run --separate-stderr tally-trace send --strict
	assert_failure 1
	[[ $stderr =~ "timed out waiting for the answer" ]] || fail "$stderr"
	[ $((SECONDS - t0)) -le 2 ] || fail "took $((SECONDS - t0)) s"
}

@test "bad OTEL_EXPORTER_OTLP_HEADERS or endpoint are refused without sending" {
	traced_build
	receiver
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT
	OTEL_EXPORTER_OTLP_HEADERS='novalue' run --separate-stderr tally-trace send --strict
	assert_failure 1
	assert_equal "$stderr" "tally-trace: warning: OTEL_EXPORTER_OTLP_HEADERS refused: member without '=': \"novalue\""
	OTEL_EXPORTER_OTLP_HEADERS='X-A=1%0d%0aX-Injected: 1' run --separate-stderr tally-trace send --strict
	assert_failure 1
	OTEL_EXPORTER_OTLP_ENDPOINT=ftp://x run --separate-stderr tally-trace send
	assert_success
	[ ! -e req-1.json ] || fail "something was sent"
}

@test "send skips a line that is not TracesData and sends the rest" {
	traced_build
	printf '{"resourceSpans":[}\n' >>"$BUILD_LOG_DIR/traces.jsonl"
	receiver
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$RX_PORT
	run --separate-stderr tally-trace send --keep-open
	assert_success
	assert_equal "$stderr" "tally-trace: warning: $BUILD_LOG_DIR/traces.jsonl:3: not an OTLP/JSON TracesData line: skipped"
	run jq -c '.body | fromjson | [.resourceSpans[].scopeSpans[].spans[].name]' req-1.json
	assert_output '["feature f","cmd"]'
}
