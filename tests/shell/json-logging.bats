#!/usr/bin/env bats
# json-logging.sh under the shell in TALLY_TEST_SHELL (dash, busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export ENABLE_JSON_LOGGING=true
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
}

# events FILE: prints every line of FILE as compact JSON without the
# timestamp, after checking that each one parses and has a valid timestamp.
events() {
	jq -e -c 'if (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))
		then del(.timestamp) else error("bad timestamp") end' "$1"
}

@test "a feature writes start, output (warning lines at WARN), command end and feature end events that all parse" {
	export BUILD_CORRELATION_ID=build-test-1
	run $TEST_SHELL -c "$LIB; log_feature_start py 3.13 && log_command 'Install' sh -c 'echo fetched; echo \"warning: old pip\"' && log_info 'all good' && log_feature_end"
	assert_success
	run events "$BUILD_LOG_DIR/json/py.jsonl"
	assert_success
	# Durations vary: replace them before comparing the whole output.
	run jq -c 'if has("duration_ms") then .duration_ms = "D" else . end' <<<"$output"
	assert_output '{"level":"INFO","correlation_id":"build-test-1","feature":"py","version":"3.13","stage":"start","message":"Feature py started"}
{"level":"INFO","correlation_id":"build-test-1","feature":"py","version":"3.13","stage":"command","message":"fetched","command":"Install"}
{"level":"WARN","correlation_id":"build-test-1","feature":"py","version":"3.13","stage":"command","message":"warning: old pip","command":"Install"}
{"level":"INFO","correlation_id":"build-test-1","feature":"py","version":"3.13","stage":"command","message":"Command finished: Install","command":"Install","exit_code":0,"duration_ms":"D","warning_count":1}
{"level":"INFO","correlation_id":"build-test-1","feature":"py","version":"3.13","message":"all good"}
{"level":"INFO","correlation_id":"build-test-1","feature":"py","version":"3.13","stage":"end","message":"Feature py finished","status":"success","duration_ms":"D","command_count":1,"error_count":0,"warning_count":1}'
}

@test "a failing command gives an ERROR event with its exit code and a failed feature summary" {
	export BUILD_CORRELATION_ID=build-test-2
	run $TEST_SHELL -c "$LIB; log_feature_start bad; log_command 'Break' sh -c 'exit 4'; log_feature_end"
	assert_success
	run events "$BUILD_LOG_DIR/json/build-summary.jsonl"
	assert_success
	run jq -c '.duration_ms = "D"' <<<"$output"
	assert_output '{"level":"ERROR","correlation_id":"build-test-2","feature":"bad","stage":"end","message":"Feature bad finished","status":"failure","duration_ms":"D","command_count":1,"error_count":1,"warning_count":0}'
	run jq -c 'select(.exit_code) | [.level, .exit_code]' "$BUILD_LOG_DIR/json/bad.jsonl"
	assert_output '["ERROR",4]'
}

@test "separate RUN steps of one build share one generated correlation id" {
	run $TEST_SHELL -c "$LIB; log_feature_start one; log_command a true; log_feature_end"
	assert_success
	run $TEST_SHELL -c "$LIB; log_feature_start two; log_command b true; log_feature_end"
	assert_success
	run sh -c "cat '$BUILD_LOG_DIR'/json/one.jsonl '$BUILD_LOG_DIR'/json/two.jsonl | jq -r .correlation_id | sort -u"
	assert_success
	[[ "$output" =~ ^build-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$ ]]
}

@test "hostile command output becomes valid JSON events" {
	printf 'q"uo\\te\tTAB\001\037\033[31mred\nbad \377\376 utf8\nlast' >"$BATS_TEST_TMPDIR/hostile"
	run $TEST_SHELL -c "$LIB; log_feature_start h; log_command 'Hostile' cat '$BATS_TEST_TMPDIR/hostile'; log_feature_end"
	assert_success
	run jq -c 'select(.stage == "command" and .exit_code == null) | .message' "$BUILD_LOG_DIR/json/h.jsonl"
	assert_success
	assert_output '"q\"uo\\te\tTAB\u0001\u001f\u001b[31mred"
"bad �� utf8"
"last"'
	if command -v python3 >/dev/null; then
		python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="strict")]' "$BUILD_LOG_DIR/json/h.jsonl"
	fi
}

@test "log_json writes key=value pairs into metadata" {
	export BUILD_CORRELATION_ID=c1
	run $TEST_SHELL -c "$LIB; log_json WARN 'cache miss' cache=pip 'path=/a b' 'eq=x=y'"
	assert_success
	run events "$BUILD_LOG_DIR/json/build.jsonl"
	assert_output '{"level":"WARN","correlation_id":"c1","message":"cache miss","metadata":{"cache":"pip","path":"/a b","eq":"x=y"}}'
}

@test "log_json refuses a bad level or a pair without = with status 100" {
	run $TEST_SHELL -c "$LIB; log_json NOTICE hi"
	assert_failure 100
	run $TEST_SHELL -c "$LIB; log_json INFO hi novalue"
	assert_failure 100
	[ ! -e "$BUILD_LOG_DIR/json/build.jsonl" ]
}

@test "with ENABLE_JSON_LOGGING unset no JSON is written" {
	unset ENABLE_JSON_LOGGING
	run $TEST_SHELL -c "$LIB; log_feature_start q; log_command a true; log_json INFO x; log_feature_end"
	assert_success
	[ ! -e "$BUILD_LOG_DIR/json" ]
}

@test "without tally-log the awk fallback writes events that parse, output lines included" {
	mkdir -p "$BATS_TEST_TMPDIR/home/lib"
	cp -R "$TALLY_HOME/lib/base" "$BATS_TEST_TMPDIR/home/lib/"
	export TALLY_HOME=$BATS_TEST_TMPDIR/home BUILD_CORRELATION_ID=c2
	run env PATH=/usr/bin:/bin $TEST_SHELL -c "$LIB; log_feature_start f 1; log_command 'Run' printf 'a\"b\\\\c\tz\n'; log_json INFO 'with meta' k=v; log_feature_end"
	assert_success
	run events "$BUILD_LOG_DIR/json/f.jsonl"
	assert_success
	run jq -c 'if has("duration_ms") then .duration_ms = "D" else . end' <<<"$output"
	assert_output '{"level":"INFO","correlation_id":"c2","feature":"f","version":"1","stage":"start","message":"Feature f started"}
{"level":"INFO","correlation_id":"c2","feature":"f","version":"1","stage":"command","message":"a\"b\\c\tz","command":"Run"}
{"level":"INFO","correlation_id":"c2","feature":"f","version":"1","stage":"command","message":"Command finished: Run","command":"Run","exit_code":0,"duration_ms":"D","warning_count":0}
{"level":"INFO","correlation_id":"c2","feature":"f","version":"1","message":"with meta","metadata":{"k":"v"}}
{"level":"INFO","correlation_id":"c2","feature":"f","version":"1","stage":"end","message":"Feature f finished","status":"success","duration_ms":"D","command_count":1,"error_count":0,"warning_count":0}'
}

# build_hostile: a build whose output holds every kind of hard byte, a
# secret, warnings, a failure and metadata; run under $TEST_SHELL.
build_hostile() {
	printf 'q"uo\\te\tTAB\001\037\033[31mred\r\nbad \377\376 \300\200 \355\240\200 \342\202 utf8\nwarning: old\n\ncaf\303\251 \360\237\230\200 token=abc\nlast' >"$BATS_TEST_TMPDIR/hostile"
	run --separate-stderr $TEST_SHELL -c "$LIB; log_feature_start h 'v\"1'; log_info 'info with \\\\ and \"'; log_command 'Hostile \"cmd\"' cat '$BATS_TEST_TMPDIR/hostile'; log_command 'Fail' sh -c 'echo oops; exit 9'; log_json WARN 'meta' k=v 'p=a b' password=x; log_warn 'w'; log_feature_end; log_json INFO outside"
	assert_success
}

# normalized DIR: every event of DIR's JSON logs, without timestamps and
# with durations replaced, each file in turn.
normalized() {
	local f
	for f in "$1"/json/*.jsonl; do
		printf '== %s\n' "${f##*/}"
		jq -c 'del(.timestamp) | if has("duration_ms") then .duration_ms = "D" else . end' "$f"
	done
}

@test "without tally-log the libraries write the same JSON for the same input, apart from timestamps" {
	export BUILD_CORRELATION_ID=c3 TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/with
	build_hostile
	normalized "$BUILD_LOG_DIR" >with.txt
	mkdir -p "$BATS_TEST_TMPDIR/home/lib"
	cp -R "$TALLY_HOME/lib/base" "$BATS_TEST_TMPDIR/home/lib/"
	export TALLY_HOME=$BATS_TEST_TMPDIR/home PATH=/usr/local/bin:/usr/bin:/bin
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/without
	build_hostile
	normalized "$BUILD_LOG_DIR" >without.txt
	diff with.txt without.txt
	# And what they both wrote is right.
	run grep -c . with.txt
	assert_output 18
	run jq -c 'select(.stage == "command" and .exit_code == null and .command != "Fail") | [.level, .message]' "$BATS_TEST_TMPDIR/with/json/h.jsonl"
	assert_output '["INFO","q\"uo\\te\tTAB\u0001\u001f\u001b[31mred"]
["INFO","bad �� �� ��� � utf8"]
["WARN","warning: old"]
["INFO","café 😀 token=[REDACTED]"]
["INFO","last"]'
	for f in "$BATS_TEST_TMPDIR"/with*/json/*.jsonl "$BATS_TEST_TMPDIR"/without/json/*.jsonl; do
		python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="strict")]' "$f"
	done
}

# recipe NAME: prints the shell lines of the recipe NAME in
# docs/guides/jq-recipes.md.
recipe() {
	sed -n "/^# recipe: $1\$/,/^\`\`\`\$/p" "$TALLY_ROOT/docs/guides/jq-recipes.md" | sed '1d;$d'
}

@test "every jq recipe of docs/guides/jq-recipes.md works on the logs of a real build" {
	export BUILD_CORRELATION_ID=c4
	run $TEST_SHELL -c "$LIB
		log_feature_start python-dev 3.13; log_command 'Fetch' sh -c 'echo warning: slow mirror'; log_command 'Compile' sleep 0.3; log_feature_end
		log_feature_start broken; log_command 'Download' sh -c 'exit 7'; log_error 'checksum mismatch'; log_feature_end
		log_feature_start broken-too; log_error 'checksum mismatch'; log_feature_end"
	assert_success
	[ "$(recipe errors | wc -l)" -eq 3 ] || fail "recipe errors not found"

	run sh -c "$(recipe errors)"
	assert_success
	assert_output '{"feature":"broken","message":"Command finished: Download","exit_code":7}
{"feature":"broken","message":"checksum mismatch","exit_code":null}
{"feature":"broken","message":"Feature broken finished","exit_code":null}
{"feature":"broken-too","message":"checksum mismatch","exit_code":null}
{"feature":"broken-too","message":"Feature broken-too finished","exit_code":null}'

	run sh -c "$(recipe one-feature)"
	assert_success
	assert_output 'INFO Feature python-dev started
WARN warning: slow mirror
INFO Command finished: Fetch
INFO Command finished: Compile
INFO Feature python-dev finished'

	run sh -c "$(recipe timeline)"
	assert_success
	[ "${#lines[@]}" -eq 12 ] || fail "timeline has ${#lines[@]} lines"
	printf '%s\n' "${lines[@]}" | cut -d' ' -f1 >ts.txt
	sort -c ts.txt
	assert_line --index 0 --regexp '^[0-9-]{10}T[0-9:.]{12}Z INFO python-dev Feature python-dev started$'
	assert_line --index 11 --regexp '^[0-9-]{10}T[0-9:.]{12}Z ERROR broken-too Feature broken-too finished$'

	run sh -c "$(recipe errors-by-message)"
	assert_success
	assert_output '{"message":"checksum mismatch","count":2,"features":["broken","broken-too"]}
{"message":"Command finished: Download","count":1,"features":["broken"]}
{"message":"Feature broken finished","count":1,"features":["broken"]}
{"message":"Feature broken-too finished","count":1,"features":["broken-too"]}'

	run sh -c "$(recipe slowest-commands)"
	assert_success
	[ "${#lines[@]}" -eq 3 ] || fail "$output"
	assert_line --index 0 --regexp '^[0-9]+ ms  exit 0  python-dev  Compile$'
	[ "${output%% ms*}" -ge 300 ] || fail "Compile took ${output%% ms*} ms"
	assert_line --index 1 --regexp '^[0-9]+ ms  exit (0  python-dev  Fetch|7  broken  Download)$'
}
