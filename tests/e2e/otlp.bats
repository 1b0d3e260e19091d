#!/usr/bin/env bats
# OpenTelemetry end to end: a multi-step traced build (separate dash
# invocations for its RUN steps) whose recorded traces.jsonl decodes with
# the official OpenTelemetry protobuf definitions (tests/otlp/decode.js,
# protobufjs code generated from opentelemetry-proto, with the OTLP/JSON hex
# id mapping), which tally-trace send delivers to a test OTLP/HTTP receiver
# (tests/otlp/receiver.js) whose body decodes to the same spans, and whose
# exemplars survive promtool and a real node_exporter.
#
# The node packages are installed from tests/otlp/package-lock.json with
# `npm ci` into build/otlp-node (not into the repository), once.

load ../lib/common

NODE_DIR=$TALLY_BUILD/otlp-node

setup_file() {
	local lock=$TALLY_ROOT/tests/otlp/package-lock.json
	export OTLP_SKIP=
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		export OTLP_SKIP="node and npm are needed to decode OTLP with protobufjs (apt-get install nodejs npm)"
		return 0
	fi
	mkdir -p "$NODE_DIR"
	(
		flock 9
		if ! cmp -s "$lock" "$NODE_DIR/package-lock.json" || [ ! -d "$NODE_DIR/node_modules/@opentelemetry/otlp-transformer" ]; then
			cp "$TALLY_ROOT/tests/otlp/package.json" "$lock" "$NODE_DIR/"
			cd "$NODE_DIR" && npm_config_cache="$NODE_DIR/.npm-cache" npm ci --ignore-scripts \
				--no-audit --no-fund --loglevel=error >npm.log 2>&1
		fi
	) 9>"$NODE_DIR.lock" ||
		export OTLP_SKIP="npm ci failed in $NODE_DIR (no registry?): see $NODE_DIR/npm.log"
}

setup() {
	tally_setup
	[ -x "$TALLY_BUILD/bin/tally-trace" ] || skip "build/bin/tally-trace is not built (make build/bin/tally-trace)"
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export ENABLE_JSON_LOGGING=true OTEL_ENABLED=true OTEL_SERVICE_NAME=example-image
	RX_PID= NE_PID=
}

teardown() {
	local p
	for p in "${RX_PID-}" "${NE_PID-}"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null || :
		wait "$p" 2>/dev/null || :
	done
}

# need_node: skips with the reason when the decoder cannot run.
need_node() {
	[ -z "$OTLP_SKIP" ] || skip "$OTLP_SKIP"
}

# decode FILE...: the spans of FILE decoded with the official definitions.
decode() {
	NODE_PATH=$NODE_DIR/node_modules node "$TALLY_ROOT/tests/otlp/decode.js" "$@"
}

# build: three RUN steps under dash, one command failing, then
# log_build_end in a fourth.
build() {
	local lib='. "$TALLY_HOME/lib/base/logging.sh"'
	dash -c "$lib; log_feature_start python 3.13 && log_command 'fetch' sh -c 'echo fetched' && log_command 'compile' sh -c 'exit 2'; log_feature_end" >/dev/null 2>&1
	dash -c "$lib; log_command 'check disk' true; log_feature_start jq 1.7 && log_command 'install jq' true && log_feature_end" >/dev/null 2>&1
	dash -c "$lib; log_feature_start cleanup && log_command 'apt clean' true && log_feature_end" >/dev/null 2>&1
	dash -c "$lib; log_build_end" >/dev/null 2>&1
}

# tree: from decoded spans on stdin, "NAME <- PARENT status CODE" sorted.
tree() {
	jq -s -r '(map({(.spanId): .name}) | add) as $n | .[] |
		"\(.name) <- \(if .parentSpanId != "" then $n[.parentSpanId] // "?" else "ROOT" end) status \(.status.code // 0)"' | sort
}

@test "the recorded traces decode with the official OpenTelemetry definitions and nest build > feature > command" {
	need_node
	build
	run decode "$BUILD_LOG_DIR/traces.jsonl"
	assert_success
	printf '%s\n' "$output" >decoded.jsonl
	run tree <decoded.jsonl
	assert_output 'apt clean <- feature cleanup status 0
build <- ROOT status 2
check disk <- build status 0
compile <- feature python status 2
feature cleanup <- build status 0
feature jq <- build status 0
feature python <- build status 2
fetch <- feature python status 0
install jq <- feature jq status 0'
	run jq -r -s 'map(.traceId) | unique | length' decoded.jsonl
	assert_output 1
	run jq -c -s 'map(select(.name == "compile"))[0] | [.attributes["process.exit.code"], .attributes["tally.feature.name"], .status.message, .resource["service.name"], .scope.name]' decoded.jsonl
	assert_output '["2","python","exit status 2","example-image","tally"]'
	# The JSON logs carry the same trace and each command's span.
	run sh -c "jq -r 'select(.message == \"Command finished: compile\") | .trace_id + \" \" + .span_id' '$BUILD_LOG_DIR/json/python.jsonl'"
	assert_output "$(jq -r 'select(.name == "compile") | .traceId + " " + .spanId' decoded.jsonl)"
}

@test "the decoder refuses a line the definitions do not allow" {
	need_node
	build
	head -1 "$BUILD_LOG_DIR/traces.jsonl" | sed 's/"kind":1/"kind":1,"colour":"red"/' >bad.jsonl
	run decode bad.jsonl
	assert_failure 1
	assert_output --partial 'colour (not in the protobuf definition'
	head -1 "$BUILD_LOG_DIR/traces.jsonl" | sed 's|"traceId":"[0-9a-f]*"|"traceId":"S/mTNXezTaajzpKdDg5HNg=="|' >b64.jsonl
	run decode b64.jsonl
	assert_failure 1
	assert_output --partial 'is not 32 lowercase hex digits'
}

@test "tally-trace send delivers the build to an OTLP/HTTP receiver: method, path, headers, content type and a body that decodes to the same spans" {
	need_node
	build
	mkdir rx
	NODE_PATH=$NODE_DIR/node_modules node "$TALLY_ROOT/tests/otlp/receiver.js" rx.port rx &
	RX_PID=$!
	wait_for_file rx.port 10 || fail "the receiver did not start"
	export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$(cat rx.port)
	export OTEL_EXPORTER_OTLP_HEADERS='authorization=Basic%20dGFsbHk6dGVzdA=='
	run tally-trace send --strict
	assert_success
	assert_output "tally-trace: sent 9 spans to $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces in 1 requests, 0 failed"
	run jq -r '[.method, .url, .httpVersion, .headers["content-type"], .headers.authorization] | @tsv' rx/request-1.json
	assert_output "$(printf 'POST\t/v1/traces\t1.1\tapplication/json\tBasic dGFsbHk6dGVzdA==')"
	jq -r .body rx/request-1.json >body.json
	run decode body.json
	assert_success
	printf '%s\n' "$output" | jq -S -c . | sort >sent.txt
	decode "$BUILD_LOG_DIR/traces.jsonl" | jq -S -c . | sort >recorded.txt
	run diff recorded.txt sent.txt
	assert_success
	run wc -l <sent.txt
	assert_output 9
}

@test "exemplars in the stored metrics file pass promtool and a real node_exporter" {
	command -v prometheus-node-exporter >/dev/null ||
		skip "prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)"
	local i=0 port
	build
	run grep -c '^# EXEMPLAR container_build_command_duration_seconds_bucket{' "$TALLY_METRICS_DIR/build.prom"
	assert_output 4
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ''
	port=$(free_port)
	prometheus-node-exporter --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$TALLY_METRICS_DIR" \
		--web.listen-address="127.0.0.1:$port" >ne.log 2>&1 &
	NE_PID=$!
	until curl -fsS -o scraped.txt "http://127.0.0.1:$port/metrics" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le 200 ] || { cat ne.log; fail "node_exporter did not start"; }
		sleep 0.05
	done
	run grep -E '^node_textfile_scrape_error ' scraped.txt
	assert_output 'node_textfile_scrape_error 0'
	# Every bucket of the file is served with its value (node_exporter
	# writes the label the file leaves out as feature="").
	run sh -c "grep '^container_build_command_duration_seconds_bucket' '$TALLY_METRICS_DIR/build.prom' | sort"
	assert_equal "$output" "$(grep '^container_build_command_duration_seconds_bucket' scraped.txt | sed 's/feature="",//' | sort)"
}
