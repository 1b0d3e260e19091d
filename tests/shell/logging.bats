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

@test "log_build_summary prints every feature of earlier RUN steps, the totals and the slowest commands" {
	run $TEST_SHELL -c "$LIB; log_feature_start a; log_command ok sleep 0.1; log_command slow sleep 0.4; log_feature_end"
	assert_success
	run $TEST_SHELL -c "$LIB; log_feature_start b 2; log_command bad false; log_warn careful; log_feature_end"
	assert_success
	run --separate-stderr $TEST_SHELL -c "$LIB; log_build_summary"
	assert_success
	assert_equal "$stderr" ""
	printf '%s\n' "$output" >summary.txt
	run sed -E 's/[0-9]+\.[0-9]/S.s/' summary.txt
	assert_output "FEATURE                  STATUS     SECONDS  COMMANDS  ERRORS  WARNINGS
a                        success        S.s         2       0         0
b                        failure        S.s         1       1         1
2 features               1 failed       S.s         3       1         1

slowest commands:
 SECONDS  EXIT  FEATURE                  COMMAND
     S.s     0  a                        slow
     S.s     0  a                        ok
     S.s     1  b                        bad"
	# The slow command took at least 0.3 s, the feature a as long.
	run awk '$NF == "slow" && $1 >= 0.3 { ok++ } $1 == "a" && $3 >= 0.3 { ok++ } END { print ok + 0 }' summary.txt
	assert_output 2
}

@test "log_build_summary returns 1 before any feature has finished" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_build_summary"
	assert_failure 1
	assert_equal "$output" ""
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

@test "log_command runs shell functions and builtins and returns their status, also after exit" {
	run --separate-stderr $TEST_SHELL -c "$LIB; f() { echo \"in f \$1\"; return 4; }; g() { echo bye; exit 6; }
		log_feature_start fn; log_command 'Func' f arg; echo \"rc=\$?\"; log_command 'Exit' g; echo \"rc=\$?\"
		log_command 'Builtin' printf '%s\n' built; echo \"rc=\$?\"; log_feature_end"
	assert_success
	assert_equal "$output" "in f arg
rc=4
bye
rc=6
built
rc=0"
	run cat "$BUILD_LOG_DIR/master-summary.log"
	[[ "$output" =~ ^fn:\ 2\ errors,\ 0\ warnings\ \([0-9]+\.[0-9]s\)$ ]] || fail "$output"
	run sed -n -e 's/after [0-9]* ms/after T ms/' -e 's/^\$ //p' "$BUILD_LOG_DIR/fn.log"
	assert_output 'f arg
exit 4 after T ms
g
exit 6 after T ms
printf %s\n built
exit 0 after T ms'
}

@test "log_command returns a function's status under set -e and set -u, and stops the script without ||" {
	run $TEST_SHELL -c "set -eu; $LIB; f() { echo in-f; return 3; }; log_feature_start f; rc=0; log_command 'Func' f || rc=\$?; echo \"rc=\$rc\"; log_command 'Func again' f; echo not-reached"
	assert_failure 3
	assert_line "rc=3"
	refute_line "not-reached"
}

@test "console lines read [HH:MM:SS] LEVEL message, coloured only on a terminal and never with NO_COLOR" {
	run --separate-stderr $TEST_SHELL -c "$LIB; log_warn 'disk low'; log_error 'broken'"
	assert_success
	[[ "${stderr}" =~ ^\[[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\]\ WARN\ \ disk\ low$'\n'\[[0-9:]{8}\]\ ERROR\ broken$ ]] || fail "$stderr"
	command -v script >/dev/null || skip "script(1) is not installed"
	run script -qec "$TEST_SHELL -c '$LIB; log_warn w'" /dev/null
	[[ $output == *$'\033[33mWARN\033[0m  w'* ]] || fail "no colour on a terminal: $output"
	run script -qec "NO_COLOR=1 $TEST_SHELL -c '$LIB; log_warn w'" /dev/null
	[[ $output != *$'\033'* ]] || fail "colour with NO_COLOR: $output"
}

@test "log_command calls _tally_metrics_command_end with feature, description, status and duration" {
	run --separate-stderr $TEST_SHELL -c "$LIB; _tally_metrics_command_end() { printf 'hook:%s|%s|%s|%s\n' \"\$@\" >>hook.txt; }
		log_feature_start m; log_command 'Sleep' sleep 0.2; log_command 'Fail' false; log_feature_end"
	assert_success
	run sed 's/|[0-9]*$/|D/' hook.txt
	assert_output "hook:m|Sleep|0|D
hook:m|Fail|1|D"
	run awk -F'|' 'NR == 1 && $4 >= 200 && $4 < 5000 { print "ok" }' hook.txt
	assert_output ok
}

@test "without tally-log log_command behaves the same: output, status, counts, text log" {
	mkdir -p "$BATS_TEST_TMPDIR/home/lib"
	cp -R "$TALLY_HOME/lib/base" "$BATS_TEST_TMPDIR/home/lib/"
	export TALLY_HOME=$BATS_TEST_TMPDIR/home
	run --separate-stderr env PATH=/usr/bin:/bin $TEST_SHELL -c "$LIB; log_feature_start demo 1.0 && log_command 'Say two lines' sh -c 'echo one; echo warning: two >&2; exit 2'; echo \"rc=\$?\"; log_feature_end"
	assert_success
	assert_equal "$output" "one
warning: two
rc=2"
	run sed -e 's/^\[[0-9:]*\] //' -e 's/[0-9.]*s)/Ts)/' -e 's/after [0-9]* ms/after T ms/' "$BUILD_LOG_DIR/demo.log"
	assert_output "INFO  Feature demo 1.0 started
INFO  Running: Say two lines
\$ sh -c echo one; echo warning: two >&2; exit 2
one
warning: two
\$ exit 2 after T ms
ERROR Failed: Say two lines (exit 2, Ts)
INFO  Feature demo finished: failure, 1 errors, 1 warnings (Ts)"
}
