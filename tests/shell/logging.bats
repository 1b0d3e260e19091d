#!/usr/bin/env bats
# logging.sh under the shell in TALLY_TEST_SHELL (dash, busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
}

@test "log_info prints a timestamped console line on stderr and nothing on stdout" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_info 'hello  world'"
	assert_success
	assert_equal "$output" ""
	[[ "$stderr" =~ ^\[[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\]\ INFO\ \ hello\ \ world$ ]]
}

@test "LOG_LEVEL=WARN hides debug and info and keeps warn and error" {
	run --separate-stderr $TEST_SHELL -c "$LIB; LOG_LEVEL=WARN; log_debug d; log_info i; log_warn w; log_error e"
	assert_success
	run sed 's/^\[[0-9:]*\] //' <<<"$stderr"
	assert_output "WARN  w
ERROR e"
}

@test "LOG_LEVEL=DEBUG shows every level, and an unknown LOG_LEVEL counts as INFO" {
	run --separate-stderr $TEST_SHELL -c "$LIB; LOG_LEVEL=DEBUG; log_debug d; LOG_LEVEL=bogus; log_debug hidden; log_info i"
	assert_success
	run sed 's/^\[[0-9:]*\] //' <<<"$stderr"
	assert_output "DEBUG d
INFO  i"
}

@test "log_command shows the command's output on stdout and keeps it in the feature log" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_feature_start demo 1.0 && log_command 'Say two lines' sh -c 'echo one; echo two >&2' && log_feature_end"
	assert_success
	assert_equal "$output" "one
two"
	run sed -e 's/^\[[0-9:]*\] //' -e 's/([0-9.]*s)/(Ts)/' -e 's/after [0-9]* ms/after T ms/' "$BUILD_LOG_DIR/demo.log"
	assert_output "INFO  Feature demo 1.0 started
INFO  Running: Say two lines
\$ sh -c echo one; echo two >&2
one
two
\$ exit 0 after T ms
INFO  Done: Say two lines (Ts)
INFO  Feature demo finished: success, 0 errors, 0 warnings (Ts)"
}

@test "log_command returns the command's exit status and counts it as an error" {
	run $TEST_SHELL -c "$LIB; log_feature_start f; log_command 'Fail' sh -c 'exit 3'; echo \"rc=\$?\"; log_feature_end" 
	assert_success
	assert_line "rc=3"
	run cat "$BUILD_LOG_DIR/master-summary.log"
	[[ "$output" =~ ^f:\ 1\ errors,\ 0\ warnings\ \([0-9]+\.[0-9]s\)$ ]]
}

@test "log_command returns the command's exit status under set -e" {
	run $TEST_SHELL -c "set -e; $LIB; log_feature_start f; rc=0; log_command 'Fail' sh -c 'exit 7' || rc=\$?; echo \"rc=\$rc\"; log_command 'Fail again' false; echo unreachable"
	assert_failure 1
	assert_line "rc=7"
	refute_line "unreachable"
}

@test "log_command works under set -u with a caller that never set the design variables" {
	run $TEST_SHELL -c "set -eu; $LIB; log_feature_start f; log_command 'True' true; log_info ok; log_feature_end; echo done"
	assert_success
	assert_line "done"
}

@test "log_command counts lines that say warning as warnings" {
	run $TEST_SHELL -c "$LIB; log_feature_start w 2; log_command 'Warn' sh -c 'echo \"a.c:1: warning: x\"; echo WARN: y; echo forewarned; echo \"warnings: 0\"'; log_warn 'by hand'; log_feature_end"
	assert_success
	run cat "$BUILD_LOG_DIR/master-summary.log"
	[[ "$output" =~ ^w:\ 0\ errors,\ 3\ warnings\ \([0-9]+\.[0-9]s\)$ ]]
}

@test "master-summary.log gets one line per feature in the documented format" {
	run $TEST_SHELL -c "$LIB; log_feature_start a; log_command ok true; log_feature_end; log_feature_start b; log_command bad false; log_feature_end"
	assert_success
	run sed 's/([0-9]*\.[0-9]s)$/(Ss)/' "$BUILD_LOG_DIR/master-summary.log"
	assert_output "a: 0 errors, 0 warnings (Ss)
b: 1 errors, 0 warnings (Ss)"
}

@test "log_command passes arguments with spaces and quotes through unchanged" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_command 'Args' printf '<%s>\n' 'a b' '\"q\"' '' '\$x'"
	assert_success
	assert_equal "$output" '<a b>
<"q">
<>
<$x>'
}

@test "log_command without a command is a usage error with status 100" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_command 'nothing'"
	assert_failure 100
	[[ "$stderr" == *"usage: log_command <description> <command>"* ]]
}

@test "log_feature_start refuses a feature name that is not a safe file name" {
	run $TEST_SHELL -c "$LIB; log_feature_start '../etc/passwd'"
	assert_failure 1
	[ ! -e "$BUILD_LOG_DIR/../etc" ]
	run $TEST_SHELL -c "$LIB; log_feature_start ''"
	assert_failure 1
}

@test "log_feature_end without an open feature returns 1" {
	run $TEST_SHELL -c "$LIB; log_feature_end"
	assert_failure 1
}

@test "log_build_summary prints every feature with status and totals" {
	run $TEST_SHELL -c "$LIB; log_feature_start a; log_command ok true; log_feature_end; log_feature_start b; log_command bad false; log_feature_end" 
	run $TEST_SHELL -c "$LIB; log_build_summary"
	assert_success
	run sed 's/  *[0-9]*\.[0-9]$/ S/' <<<"$output"
	assert_output "FEATURE                  STATUS    ERRORS  WARNINGS    SECONDS
a                        success        0         0 S
b                        failure        1         0 S
2 features                              1         0 S"
}

@test "a log directory that cannot be written does not break the build" {
	run --separate-stderr $TEST_SHELL -c "set -e; BUILD_LOG_DIR=/proc/tally-nope; $LIB; log_feature_start f; log_command 'Echo' echo out; log_feature_end; echo done"
	assert_success
	assert_equal "$output" "out
done"
}

@test "sourcing the libraries changes no options, traps, directory, umask, IFS or public variables" {
	script='
		snap() {
			set +o
			trap
			pwd
			umask
			printf "IFS=%s\n" "$IFS" | od -c
			set | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p" |
				grep -v -e "^_tally_" -e "^_$" -e "^BASH" -e "^LINENO$" -e "^RANDOM$" \
					-e "^SECONDS$" -e "^before$" -e "^PIPESTATUS$" -e "^FUNCNAME$" -e "^OPTIND$" | sort
		}
		set -u
		trap "echo t" USR1
		before=$(snap)
		. "$TALLY_HOME/lib/base/logging.sh"
		. "$TALLY_HOME/lib/base/json-logging.sh"
		. "$TALLY_HOME/lib/base/metrics.sh"
		after=$(snap)
		[ "$before" = "$after" ] && echo same || { printf "%s\n" "$before" >b; printf "%s\n" "$after" >a; diff b a; }
	'
	run --separate-stderr $TEST_SHELL -c "$script"
	assert_success
	assert_equal "$output" "same"
	assert_equal "$stderr" ""
}

@test "sourcing logging.sh twice is harmless" {
	run --separate-stderr $TEST_SHELL -c "$LIB; $LIB; log_info once"
	assert_success
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}
