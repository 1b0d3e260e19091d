#!/usr/bin/env bats
# OpenTelemetry tracing of builds (OTEL_ENABLED=true) through logging.sh,
# under the shell in TALLY_TEST_SHELL (dash, busybox ash, bash). Each RUN
# step of a build is a separate shell invocation here, as in a Dockerfile.
# The protobuf decoding of the same files is in tests/e2e/otlp.bats.

load ../lib/common

setup() {
	tally_setup
	[ -x "$TALLY_BUILD/bin/tally-trace" ] || skip "build/bin/tally-trace is not built (make build/bin/tally-trace)"
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export ENABLE_JSON_LOGGING=true
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
	TRACES=$BUILD_LOG_DIR/traces.jsonl
}

# spans: every span of traces.jsonl as one compact JSON object per line,
# after checking that each line is one TracesData object of the file
# exporter's shape with one span, hex ids and nanosecond times as strings.
spans() {
	jq -e -c '
		if (keys != ["resourceSpans"]) then error("not TracesData") else . end
		| .resourceSpans[] | .scopeSpans[] | .spans[]
		| if ((.traceId | test("^[0-9a-f]{32}$")) and (.spanId | test("^[0-9a-f]{16}$"))
		      and ((.parentSpanId // "0000000000000000") | test("^[0-9a-f]{16}$"))
		      and (.startTimeUnixNano | test("^[0-9]{19}$")) and (.endTimeUnixNano | test("^[0-9]{19}$"))
		      and ((.startTimeUnixNano | tonumber) <= (.endTimeUnixNano | tonumber)) and .kind == 1)
		  then . else error("bad span: \(.)") end' "$TRACES"
}

# tree: "NAME <- PARENT_NAME status CODE MESSAGE" per span, sorted, with
# parents named by their span ids (ROOT: no parent).
tree() {
	spans | jq -s -r '
		(map({(.spanId): .name}) | add) as $n
		| .[] | "\(.name) <- \(if .parentSpanId then $n[.parentSpanId] // "?" else "ROOT" end) status \(.status.code // 0) \(.status.message // "")"' |
		sort
}

# build: a three-step build (three shell invocations), one of whose
# commands fails, then log_build_end.
build() {
	run $TEST_SHELL -c "$LIB; log_feature_start python 3.13 && log_command 'fetch' sh -c 'echo got it' && log_command 'compile' sh -c 'echo warning: old; exit 4'; log_feature_end"
	assert_success
	run $TEST_SHELL -c "$LIB; log_info 'between features'; log_command 'check disk' true; log_feature_start jq 1.7 && log_command 'install jq' sh -c 'printf \"%s\\n\" \"\$TRACEPARENT\" >\"\$BUILD_LOG_DIR/tp.txt\"' && log_feature_end"
	assert_success
	run $TEST_SHELL -c "$LIB; log_build_end"
	assert_success
}

@test "with OTEL_ENABLED unset nothing is traced and commands get no TRACEPARENT" {
	run $TEST_SHELL -c "$LIB; log_feature_start a && log_command 'env' sh -c 'printf \"[%s]\\n\" \"\${TRACEPARENT-unset}\"' && log_feature_end; log_build_end; echo end=\$?"
	assert_success
	assert_line '[unset]'
	assert_line 'end=1'
	[ ! -e "$TRACES" ] || fail "traces.jsonl written with tracing off"
	[ ! -e "$BUILD_LOG_DIR/.tally/trace-context" ] || fail "trace context written with tracing off"
	run jq -e -s 'map(select(has("trace_id") or has("span_id"))) | length == 0' "$BUILD_LOG_DIR"/json/a.jsonl
	assert_success
}

@test "a multi-step build is one trace nesting build > feature > command, failures marked" {
	export OTEL_ENABLED=true
	build
	run tree
	assert_success
	assert_output 'build <- ROOT status 2 1 failed step
check disk <- build status 0 
compile <- feature python status 2 exit status 4
feature jq <- build status 0 
feature python <- build status 2 1 errors
fetch <- feature python status 0 
install jq <- feature jq status 0 '
	run sh -c "jq -r '.resourceSpans[].scopeSpans[].spans[].traceId' '$TRACES' | sort -u | wc -l"
	assert_output 1
	# The build span has the same trace as the context file every step read.
	run sh -c "cut -c4-35 '$BUILD_LOG_DIR/.tally/trace-context'"
	assert_output "$(jq -r '.resourceSpans[].scopeSpans[].spans[].traceId' "$TRACES" | head -1)"
}

@test "spans carry semantic-convention and tally attributes" {
	export OTEL_ENABLED=true OTEL_SERVICE_NAME=image-build OTEL_RESOURCE_ATTRIBUTES='team=platform,service.version=2%2E0'
	build
	run sh -c "$(declare -f spans); TRACES='$TRACES'; spans | jq -c 'select(.name == \"compile\") | [.attributes[] | {(.key): (.value | to_entries[0].value)}] | add'"
	assert_output '{"process.command_line":"sh -c echo warning: old; exit 4","process.executable.name":"sh","process.exit.code":"4","tally.feature.name":"python","tally.feature.version":"3.13","tally.command.warning_count":"1","tally.duration_ms":"'"$(spans | jq -r 'select(.name == "compile") | .attributes[] | select(.key == "tally.duration_ms") | .value.intValue')"'"}'
	run sh -c "$(declare -f spans); TRACES='$TRACES'; spans | jq -c 'select(.name == \"feature python\") | [.attributes[] | select(.key != \"tally.duration_ms\") | {(.key): (.value | to_entries[0].value)}] | add'"
	assert_output '{"tally.feature.command_count":"2","tally.feature.error_count":"1","tally.feature.warning_count":"1","tally.feature.name":"python","tally.feature.version":"3.13"}'
	run jq -c -s 'map(.resourceSpans[].resource.attributes | map({(.key): .value.stringValue}) | add) | unique' "$TRACES"
	assert_output '[{"service.name":"image-build","team":"platform","service.version":"2.0"}]'
}

@test "JSON log events carry the trace_id and span_id of their span" {
	export OTEL_ENABLED=true
	build
	# Every event of a command carries that command's span; feature events
	# the feature's; events outside a feature the build's.
	run sh -c "$(declare -f spans); TRACES='$TRACES'; spans | jq -s -c 'map({(.spanId): .name}) | add' >ids.json &&
		cat '$BUILD_LOG_DIR'/json/*.jsonl | jq -c --slurpfile ids ids.json '[.message, \$ids[0][.span_id]]' | sort"
	assert_success
	assert_output '["Command finished: check disk","check disk"]
["Command finished: compile","compile"]
["Command finished: fetch","fetch"]
["Command finished: install jq","install jq"]
["Feature jq finished","feature jq"]
["Feature jq finished","feature jq"]
["Feature jq started","feature jq"]
["Feature python finished","feature python"]
["Feature python finished","feature python"]
["Feature python started","feature python"]
["between features","build"]
["got it","fetch"]
["warning: old","compile"]'
	run sh -c "cat '$BUILD_LOG_DIR'/json/*.jsonl | jq -r .trace_id | sort -u"
	assert_output "$(cut -c4-35 "$BUILD_LOG_DIR/.tally/trace-context")"
}

@test "a command runs with its own span as TRACEPARENT, and the caller's shell keeps its own" {
	export OTEL_ENABLED=true
	build
	run cat "$BUILD_LOG_DIR/tp.txt"
	assert_output "$(jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == "install jq") | "00-\(.traceId)-\(.spanId)-01"' "$TRACES")"
	run $TEST_SHELL -c "$LIB; log_feature_start x && log_command c true && log_feature_end; printf '[%s]\n' \"\${TRACEPARENT-unset}\"; env | grep -c '^TRACEPARENT=' || :"
	assert_success
	assert_line '[unset]'
	assert_line '0'
}

@test "an incoming valid TRACEPARENT becomes the build span's parent" {
	export OTEL_ENABLED=true TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	build
	run sh -c "jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == \"build\") | \"\(.traceId) \(.parentSpanId)\"' '$TRACES'"
	assert_output '4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7'
	run sh -c "jq -r '.resourceSpans[].scopeSpans[].spans[].traceId' '$TRACES' | sort -u"
	assert_output 4bf92f3577b34da6a3ce929d0e0e4736
}

@test "a malformed or all-zero TRACEPARENT is ignored: a new trace without a parent" {
	local tp
	export OTEL_ENABLED=true
	for tp in 00-00000000000000000000000000000000-00f067aa0ba902b7-01 \
		00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01 \
		00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01 \
		ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 garbage; do
		rm -rf "$BUILD_LOG_DIR"
		TRACEPARENT=$tp run $TEST_SHELL -c "$LIB; log_feature_start a && log_command c true && log_feature_end && log_build_end"
		assert_success
		run sh -c "jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == \"build\") | \"\(.traceId) \(.parentSpanId // \"none\")\"' '$TRACES'"
		[[ $output =~ ^[0-9a-f]{32}\ none$ ]] || fail "$tp: $output"
		[[ $output != 4bf92f3577b34da6a3ce929d0e0e4736* ]] || fail "$tp: its trace id was used"
	done
}

@test "the command duration histogram keeps each command's trace_id and span_id as exemplars that promtool accepts" {
	export OTEL_ENABLED=true
	build
	# One per series (of its last command), on the bucket its duration
	# falls in: value <= le (bounds and values vary with the machine).
	run sh -c "grep '^# EXEMPLAR ' '$TALLY_METRICS_DIR/build.prom' | awk '{ le = \$3; sub(/.*le=\"/, \"\", le); sub(/\".*/, \"\", le);
		if (!(\$5 + 0 <= le + 0) || \$6 !~ /^[0-9]+(\\.[0-9]+)?\$/) print \"BAD \" \$0 }
		{ sub(/,?le=\"[^\"]*\"/, \"\"); print \$1, \$2, \$3, \$4 }' | sort"
	assert_success
	local compile check install
	compile=$(jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == "compile") | "span_id=\"\(.spanId)\",trace_id=\"\(.traceId)\""' "$TRACES")
	check=$(jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == "check disk") | "span_id=\"\(.spanId)\",trace_id=\"\(.traceId)\""' "$TRACES")
	install=$(jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == "install jq") | "span_id=\"\(.spanId)\",trace_id=\"\(.traceId)\""' "$TRACES")
	assert_output "# EXEMPLAR container_build_command_duration_seconds_bucket{feature=\"jq\"} {$install}
# EXEMPLAR container_build_command_duration_seconds_bucket{feature=\"python\"} {$compile}
# EXEMPLAR container_build_command_duration_seconds_bucket{} {$check}"
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ''
}

@test "log_command returns the command's status under set -e with tracing on, and log_build_end runs once" {
	export OTEL_ENABLED=true
	run $TEST_SHELL -c "set -e; $LIB; log_feature_start a; rc=0; log_command boom sh -c 'exit 7' || rc=\$?; echo rc=\$rc; log_feature_end; log_build_end; echo first=\$?; log_build_end || echo second=\$?"
	assert_success
	assert_line 'rc=7'
	assert_line 'first=0'
	assert_line 'second=1'
	run sh -c "jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name == \"build\") | .name' '$TRACES' | wc -l"
	assert_output 1
}

@test "a function or builtin run by log_command is a span too" {
	export OTEL_ENABLED=true
	run $TEST_SHELL -c "$LIB; myfn() { echo in-fn; return 3; }; log_feature_start f; log_command 'my function' myfn; log_feature_end"
	assert_success
	run tree
	assert_output 'feature f <- ? status 2 1 errors
my function <- feature f status 2 exit status 3'
}
