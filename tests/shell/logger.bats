#!/usr/bin/env bats
# logging.sh's logger (tally-log --serve, one per shell) under the shell in
# TALLY_TEST_SHELL: the same logs as one tally-log per call, and every case
# where a call must do without it. The scripts run with stdout and stderr
# on a pipe, as a RUN step's are.

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	export ENABLE_JSON_LOGGING=true METRICS_ENABLED=true NO_COLOR=1
}

# build SCRIPT: runs SCRIPT (a file) under the shell being tested, the
# libraries sourced first, its stdout and stderr on one pipe; bats' `run`.
build() {
	printf '. "$TALLY_HOME/lib/base/logging.sh"\n' >prelude.sh
	# shellcheck disable=SC2086
	run bash -c "cat prelude.sh '$1' >whole.sh && $TEST_SHELL whole.sh 2>&1 | cat"
}

# normalize DIR: the logs of DIR with what changes from run to run (times,
# durations, the correlation id) as fixed words: the text logs, the JSON
# logs (through jq), commands.tsv, master-summary.log and build.prom.
normalize() {
	local d=$1 f
	for f in "$d"/logs/*.log; do
		printf '== %s\n' "${f##*/}"
		sed -e 's/^\[[0-9:]*\]/[T]/' -e 's/after [0-9]* ms/after N ms/' \
			-e 's/([0-9.]*s/(Ts/' -e 's/[0-9][0-9]*: no-such/N: no-such/' "$f"
	done
	for f in "$d"/logs/json/*.jsonl; do
		printf '== %s\n' "${f##*/}"
		jq -c 'del(.timestamp) | if .duration_ms then .duration_ms = "N" else . end
			| if (.correlation_id | startswith("build-")) then .correlation_id = "C" else . end
			| .message |= sub("[0-9]+: no-such"; "N: no-such")' "$f"
	done
	printf '== commands.tsv\n'
	cut -f 2- "$d/logs/.tally/commands.tsv"
	printf '== build.prom\n'
	grep -v -e '_seconds_bucket' -e '_seconds_sum' -e 'timestamp_seconds ' -e '^container_build_duration_seconds{' \
		-e '^container_build_info' "$d/metrics/build.prom"
}

# The script of the first test: every kind of command and line.
all_kinds() {
	cat >kinds.sh <<'EOF'
f() { echo "in f: $1"; return 4; }
log_feature_start kinds 1.0
log_info "starting, token=abc123secret"
log_command "Say lines" sh -c 'echo one; echo "two: warning: x" >&2; printf "no newline"'
log_command "Fail" sh -c 'echo before; exit 3'
echo "rc=$?"
log_command "A function" f arg
echo "rc=$?"
log_command "A builtin" true
log_command "Odd arguments" printf '[%s]\n' "" "a b" "new
line" "--" "-x" "password=hunter2"
log_command "Much output" awk 'BEGIN { for (i = 0; i < 20000; i++) print "line " i }'
log_command "Not found" no-such-command-here
echo "rc=$?"
export TALLY_REDACT=0 TZ=XYZ-5
log_command "Unredacted" sh -c 'echo password=visible'
log_info "unredacted token=visible"
unset TALLY_REDACT TZ
export BUILD_CORRELATION_ID=changed-id
log_command "A new id" true
log_warn "careful"
log_feature_end
log_feature_start second
log_command "Quiet" true
log_feature_end
echo "logger=${_tally_srv:-none}"
EOF
}

@test "with its logger, a build writes the same console, logs and metrics as with one tally-log per call" {
	all_kinds
	BUILD_LOG_DIR=$PWD/a/logs TALLY_METRICS_DIR=$PWD/a/metrics build kinds.sh
	assert_success
	local with=$output
	[[ "$with" == *"logger="[0-9]* ]] || fail "the logger was not used: $with"
	TALLY_LOGGER=0 BUILD_LOG_DIR=$PWD/b/logs TALLY_METRICS_DIR=$PWD/b/metrics build kinds.sh
	assert_success
	local without=$output
	[[ "$without" == *"logger=none"* ]] || fail "TALLY_LOGGER=0 still used a logger: $without"
	# The console: the same lines in the same order, but the times (and
	# the line of logging.sh the shell names in "not found").
	local times='s/^\[[0-9:]*\]/[T]/; s/([0-9.]*s/(Ts/; s/[0-9][0-9]*: no-such/N: no-such/; /^logger=/d'
	assert_equal "$(sed -e "$times" <<<"$with")" "$(sed -e "$times" <<<"$without")"
	grep -qx 'rc=3' <<<"$with"
	grep -qx 'rc=4' <<<"$with"
	grep -qx 'rc=127' <<<"$with"
	grep -qx 'line 19999' <<<"$with"
	[[ "$with" != *abc123secret* && "$with" != *hunter2* ]]
	# The environment changed after the logger started counts.
	grep -qx 'password=visible' <<<"$with"
	grep -q 'INFO  unredacted token=visible$' <<<"$with"
	run jq -r 'select(.command == "A new id") | .correlation_id' a/logs/json/kinds.jsonl
	assert_output "changed-id"
	run normalize a
	assert_success
	local la=$output
	run normalize b
	assert_success
	assert_equal "$la" "$output"
	# And they are whole: 20000 output lines became 20000 events.
	run jq -c 'select(.message | test("^line [0-9]+$"))' a/logs/json/kinds.jsonl
	assert_equal "${#lines[@]}" 20000
	# No FIFO, directory or scratch file is left behind.
	run find a/logs/.tally -name '.tally-log.*'
	assert_output ""
}

@test "a job, a command substitution and a redirected call do without the logger and keep their output" {
	cat >script.sh <<'EOF'
log_feature_start mixed
log_command "First" sh -c 'echo first'
log_command "In a job" sh -c 'echo job' &
log_command "Beside the job" sh -c 'echo beside'
wait
v=$(log_command "In a substitution" sh -c 'echo substituted')
echo "v=$v"
log_command "Redirected" sh -c 'echo redirected' >out.txt
echo "out=$(cat out.txt)"
log_command "Stderr redirected" sh -c 'echo to-stdout-too >&2' 2>err.txt
echo "err=$(grep -c 'Running: Stderr redirected' err.txt)"
log_command "Last" sh -c 'echo last'
log_feature_end
echo "logger=${_tally_srv:-none}"
EOF
	build script.sh
	assert_success
	assert_line "v=substituted"
	assert_line "out=redirected"
	assert_line "err=1"
	assert_line "to-stdout-too"
	assert_line "job"
	assert_line "beside"
	assert_line "last"
	assert_line --regexp '^logger=[0-9]+$'
	# Every command once in the JSON log, each line of it valid.
	run jq -r 'select(.message | startswith("Command finished")) | .command' "$BUILD_LOG_DIR/json/mixed.jsonl"
	assert_success
	assert_equal "$(sort <<<"$output")" "$(printf '%s\n' "Beside the job" First "In a job" "In a substitution" Last Redirected "Stderr redirected" | sort)"
	run cut -f 2,5 "$BUILD_LOG_DIR/.tally/commands.tsv"
	assert_equal "${#lines[@]}" 7
}

@test "the script's own fds 7 to 9 are left alone, before and after the logger starts" {
	cat >script.sh <<'EOF'
exec 7>mine
log_feature_start fds
log_command "Before" sh -c 'echo before'
echo "logger=${_tally_srv:-none}"
echo "seven" >&7
exec 7>&-
EOF
	build script.sh
	assert_success
	assert_line "before"
	assert_line "logger=-"
	assert_equal "$(cat mine)" "seven"
	cat >script.sh <<'EOF'
log_feature_start fds2
log_command "Starts the logger" true
exec 8>theirs
log_command "After the script took fd 8" sh -c 'echo after'
echo "eight" >&8
log_command "Once more" sh -c 'echo more'
log_feature_end
EOF
	build script.sh
	assert_success
	assert_line "after"
	assert_line "more"
	assert_equal "$(cat theirs)" "eight"
	run jq -r 'select(.message | startswith("Command finished")) | .command' "$BUILD_LOG_DIR/json/fds2.jsonl"
	assert_output "Starts the logger
After the script took fd 8
Once more"
}

@test "the logger ends with its shell and leaves nothing behind" {
	cat >script.sh <<'EOF'
log_feature_start ends
log_command "One" true
echo "logger=${_tally_srv:-none}"
log_feature_end
EOF
	build script.sh
	assert_success
	local pid
	pid=$(sed -n 's/^logger=\([0-9][0-9]*\)$/\1/p' <<<"$output")
	[ -n "$pid" ] || fail "no logger: $output"
	local i=0
	while [ -e "/proc/$pid" ] && grep -q -- '--serve' "/proc/$pid/cmdline" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 50 ] || fail "the logger $pid still runs after its shell ended"
		sleep 0.1
	done
	run find "$BUILD_LOG_DIR" -name '.tally-log.*'
	assert_output ""
}

@test "a logger killed in the middle of a build: the next commands run under tally-log, nothing is lost" {
	cat >script.sh <<'EOF'
log_feature_start killed
log_command "Before" sh -c 'echo before'
kill -KILL "$_tally_srv"
while [ -e "/proc/$_tally_srv/fd/3" ]; do :; done
log_command "After" sh -c 'echo after'
echo "rc=$?"
log_command "Failing after" sh -c 'exit 5'
echo "rc=$?"
log_feature_end
echo "logger=${_tally_srv:-none}"
EOF
	build script.sh
	assert_success
	assert_line "before"
	assert_line "after"
	assert_line "rc=0"
	assert_line "rc=5"
	assert_line "logger=-"
	run jq -r 'select(.message | startswith("Command finished")) | "\(.command) \(.exit_code)"' "$BUILD_LOG_DIR/json/killed.jsonl"
	assert_output "Before 0
After 0
Failing after 5"
	run cat "$BUILD_LOG_DIR/master-summary.log"
	assert_output --regexp '^killed: 1 errors, 0 warnings \([0-9.]+s\)$'
}

@test "a command that is itself a script using log_command is logged by both shells" {
	cat >inner.sh <<'EOF'
. "$TALLY_HOME/lib/base/logging.sh"
log_feature_start inner
log_command "Inner step" sh -c 'echo from-inner'
log_feature_end
EOF
	cat >script.sh <<EOF
log_feature_start outer
log_command "Outer step" $TEST_SHELL inner.sh
echo "rc=\$?"
log_feature_end
EOF
	build script.sh
	assert_success
	assert_line "from-inner"
	assert_line "rc=0"
	run jq -r 'select(.message | startswith("Command finished")) | .command' "$BUILD_LOG_DIR/json/inner.jsonl" "$BUILD_LOG_DIR/json/outer.jsonl"
	assert_output "Inner step
Outer step"
}
