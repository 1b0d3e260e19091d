#!/usr/bin/env bats
# Redaction through the libraries, under the shell in TALLY_TEST_SHELL:
# the corpora of tests/corpus/redact/ go through log_command with tally-log
# and with the awk fallback, and must come out the same everywhere.

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export ENABLE_JSON_LOGGING=true BUILD_CORRELATION_ID=c1
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
	corpus=$TALLY_ROOT/tests/corpus/redact
	# in.txt: every corpus input; want.txt: what must come out.
	{ grep -v '^#' "$corpus/must-redact.txt" | sed 's/ => .*//'
	  grep -v '^#' "$corpus/must-survive.txt"; } >in.txt
	{ grep -v '^#' "$corpus/must-redact.txt" | sed 's/.* => //'
	  grep -v '^#' "$corpus/must-survive.txt"; } >want.txt
	[ "$(wc -l <in.txt)" -ge 80 ] || fail "corpus too small"
}

# without_tally_log: points TALLY_HOME at a copy of the libraries without
# bin/ and takes the build tree off PATH.
without_tally_log() {
	mkdir -p "$BATS_TEST_TMPDIR/home/lib"
	cp -R "$TALLY_BUILD/lib/base" "$BATS_TEST_TMPDIR/home/lib/"
	export TALLY_HOME=$BATS_TEST_TMPDIR/home PATH=/usr/local/bin:/usr/bin:/bin
	! command -v tally-log >/dev/null || fail "tally-log still on PATH"
}

# check_corpus: runs the corpus through log_command and checks the console
# copy, the text log and the JSON messages against want.txt.
check_corpus() {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_feature_start r; log_command 'Corpus' cat in.txt; log_feature_end"
	assert_success
	printf '%s\n' "$output" >console.txt
	diff want.txt console.txt || fail "console copy differs"
	sed -n '/^\$ cat in.txt$/,/^\$ exit 0/p' "$BUILD_LOG_DIR/r.log" | sed '1d;$d' >text.txt
	diff want.txt text.txt || fail "text log differs"
	jq -r 'select(.stage == "command" and .exit_code == null) | .message' \
		"$BUILD_LOG_DIR/json/r.jsonl" >json.txt
	diff want.txt json.txt || fail "JSON messages differ"
}

@test "the corpora are redacted exactly in the console, the text log and the JSON with tally-log" {
	check_corpus
}

@test "the corpora are redacted exactly in the console, the text log and the JSON without tally-log" {
	without_tally_log
	check_corpus
}

@test "log messages, the command line and metadata are redacted in every sink" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_feature_start s; log_info 'using password=hunter2'; log_command 'Login https://u:pw@h' sh -c 'true --token abc'; log_json INFO m api_key=k1 note=token=t2; log_feature_end"
	assert_success
	run grep -c -e hunter2 -e pw@ -e abc -e k1 -e t2 "$BUILD_LOG_DIR/s.log" "$BUILD_LOG_DIR/json/s.jsonl"
	assert_output "$BUILD_LOG_DIR/s.log:0
$BUILD_LOG_DIR/json/s.jsonl:0"
	[[ $stderr != *hunter2* && $stderr != *pw@* ]] || fail "console: $stderr"
	run grep -F '$ sh -c true --token [REDACTED]' "$BUILD_LOG_DIR/s.log"
	assert_success
	run jq -c 'select(.metadata) | .metadata' "$BUILD_LOG_DIR/json/s.jsonl"
	assert_output '{"api_key":"[REDACTED]","note":"token=[REDACTED]"}'
}

@test "TALLY_REDACT=0 keeps secrets with and without tally-log" {
	printf 'password=hunter2\n' >in.txt
	run --separate-stderr $TEST_SHELL -c "TALLY_REDACT=0; export TALLY_REDACT; $LIB; log_feature_start k; log_command 'Show' cat in.txt; log_feature_end"
	assert_success
	assert_output "password=hunter2"
	without_tally_log
	run --separate-stderr $TEST_SHELL -c "TALLY_REDACT=0; export TALLY_REDACT; $LIB; log_feature_start k2; log_command 'Show' cat in.txt; log_feature_end"
	assert_output "password=hunter2"
	run jq -r 'select(.exit_code == null and .stage == "command") | .message' "$BUILD_LOG_DIR/json/k2.jsonl"
	assert_output "password=hunter2"
}

@test "the corpora are redacted exactly in the trace file: span names and command lines" {
	# Each corpus line is a command's description and its argument.
	{
		printf '%s\n' "$LIB" 'log_feature_start t'
		while IFS= read -r line; do
			printf "log_command '%s' true '%s'\n" "$(printf '%s' "$line" | sed "s/'/'\\\\''/g")" \
				"$(printf '%s' "$line" | sed "s/'/'\\\\''/g")"
		done <in.txt
		printf '%s\n' 'log_feature_end' 'log_build_end'
	} >traced.sh
	run --separate-stderr env OTEL_ENABLED=true $TEST_SHELL traced.sh
	assert_success
	jq -r '.resourceSpans[].scopeSpans[].spans[] | select(.name != "feature t" and (.name | startswith("build") | not)) | .name' \
		"$BUILD_LOG_DIR/traces.jsonl" >names.txt
	diff want.txt names.txt || fail "span names differ"
	jq -r '.resourceSpans[].scopeSpans[].spans[] | .attributes[]? | select(.key == "process.command_line") | .value.stringValue' \
		"$BUILD_LOG_DIR/traces.jsonl" | sed 's/^true //' >cmdlines.txt
	diff want.txt cmdlines.txt || fail "command lines differ"
}
