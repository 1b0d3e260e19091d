#!/usr/bin/env bats
# metrics.sh under the shell in TALLY_TEST_SHELL (dash, busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
}

# normalized FILE: FILE with every value that depends on time replaced:
# durations by D, command duration sums by S, the finish time by T, and
# the correlation id by CID.
normalized() {
	sed -e 's/^\(container_build_duration_seconds{[^}]*}\) [0-9.e+-]*$/\1 D/' \
		-e 's/^\(container_build_command_duration_seconds_sum{[^}]*}\) [0-9.e+-]*$/\1 S/' \
		-e 's/^\(container_build_last_finished_timestamp_seconds\) [0-9]*$/\1 T/' \
		-e 's/correlation_id="build-[0-9TZ]*-[0-9a-f]*"/correlation_id="CID"/' "$1"
}

# base_image: prints what metrics.sh should find in /etc/os-release.
base_image() {
	python3 -c '
import shlex
f = "/etc/os-release"
try:
    open(f)
except OSError:
    f = "/usr/lib/os-release"
d = {}
for line in open(f):
    if "=" in line:
        k, v = line.rstrip("\n").split("=", 1)
        d[k] = (shlex.split(v) or [""])[0]
if d.get("ID") and d.get("VERSION_ID"):
    print(d["ID"] + ":" + d["VERSION_ID"])
else:
    print(d.get("PRETTY_NAME") or d.get("ID") or "unknown")'
}

# histogram NAME FEATURE COUNTS...: prints the bucket lines of histogram
# NAME{feature=FEATURE} with the default bounds and the given cumulative
# counts, then its _sum (S) and _count (the last count).
histogram() {
	local name=$1 feature=$2 le n=''
	shift 2
	for le in 0.1 0.5 1 2.5 5 10 30 60 120 300 600 1800 3600 +Inf; do
		n=$1
		shift
		printf '%s_bucket{feature="%s",le="%s"} %s\n' "$name" "$feature" "$le" "$n"
	done
	printf '%s_sum{feature="%s"} S\n%s_count{feature="%s"} %s\n' "$name" "$feature" "$name" "$feature" "$n"
}

@test "a build of two features writes every build family, once each, valid for promtool" {
	export TALLY_VERSION=1.2.3
	run $TEST_SHELL -c "$LIB
		log_feature_start good 1; log_command ok sh -c 'echo warning: w1'; log_feature_end
		log_feature_start bad 2; log_command no false; log_command no false; log_feature_end"
	assert_success
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ""
	run normalized "$TALLY_METRICS_DIR/build.prom"
	assert_output "# HELP container_build_command_duration_seconds Duration of each command run through log_command, by feature
# TYPE container_build_command_duration_seconds histogram
$(histogram container_build_command_duration_seconds bad 2 2 2 2 2 2 2 2 2 2 2 2 2 2)
$(histogram container_build_command_duration_seconds good 1 1 1 1 1 1 1 1 1 1 1 1 1 1)
# HELP container_build_commands_total Commands run through log_command, by feature and outcome
# TYPE container_build_commands_total counter
container_build_commands_total{feature=\"bad\",status=\"failure\"} 2
container_build_commands_total{feature=\"good\",status=\"success\"} 1
# HELP container_build_duration_seconds Time taken to build container features
# TYPE container_build_duration_seconds gauge
container_build_duration_seconds{feature=\"bad\",status=\"failure\"} D
container_build_duration_seconds{feature=\"good\",status=\"success\"} D
# HELP container_build_errors_total Total errors during container build
# TYPE container_build_errors_total counter
container_build_errors_total{feature=\"bad\"} 2
container_build_errors_total{feature=\"good\"} 0
# HELP container_build_warnings_total Total warnings during container build
# TYPE container_build_warnings_total counter
container_build_warnings_total{feature=\"bad\"} 0
container_build_warnings_total{feature=\"good\"} 1
# HELP container_features_installed Total number of features installed
# TYPE container_features_installed gauge
container_features_installed 2
# HELP container_build_last_finished_timestamp_seconds Unix time at which the last feature of the build finished
# TYPE container_build_last_finished_timestamp_seconds gauge
container_build_last_finished_timestamp_seconds T
# HELP container_build_info Build information: correlation id, tally version and base image; always 1
# TYPE container_build_info gauge
container_build_info{base_image=\"$(base_image)\",correlation_id=\"CID\",version=\"1.2.3\"} 1"
}

@test "the duration gauge and the command histogram hold the real durations in seconds" {
	run $TEST_SHELL -c "$LIB; log_feature_start slow; log_command nap sleep 1.2; log_feature_end"
	assert_success
	run sed -n 's/^container_build_duration_seconds{feature="slow",status="success"} //p' "$TALLY_METRICS_DIR/build.prom"
	assert_success
	awk -v v="$output" 'BEGIN { exit !(v >= 1.1 && v < 5) }'
	run sed -n 's/^container_build_command_duration_seconds_sum{feature="slow"} //p' "$TALLY_METRICS_DIR/build.prom"
	awk -v v="$output" 'BEGIN { exit !(v >= 1.1 && v < 2.5) }'
	run grep -E '^container_build_command_duration_seconds_bucket\{feature="slow",le="(1|2.5)"\}' "$TALLY_METRICS_DIR/build.prom"
	assert_output 'container_build_command_duration_seconds_bucket{feature="slow",le="1"} 0
container_build_command_duration_seconds_bucket{feature="slow",le="2.5"} 1'
}

@test "a feature rebuilt after a failure keeps only its latest status series" {
	run $TEST_SHELL -c "$LIB; log_feature_start f; log_command no false; log_feature_end; log_feature_start f; log_command ok true; log_feature_end"
	assert_success
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	run grep -c '^container_build_duration_seconds{' "$TALLY_METRICS_DIR/build.prom"
	assert_output 1
	run grep '^container_build_duration_seconds{' "$TALLY_METRICS_DIR/build.prom"
	assert_output --regexp '^container_build_duration_seconds\{feature="f",status="success"\} [0-9.]+$'
	run grep -E '^container_(build_errors_total|features_installed|build_commands_total)' "$TALLY_METRICS_DIR/build.prom"
	assert_output 'container_build_commands_total{feature="f",status="failure"} 1
container_build_commands_total{feature="f",status="success"} 1
container_build_errors_total{feature="f"} 1
container_features_installed 1'
}

@test "build info keeps one series: the latest correlation id, the version from TALLY_HOME/VERSION, the base image" {
	mkdir home
	ln -s "$TALLY_BUILD/bin" home/bin
	ln -s "$TALLY_BUILD/lib" home/lib
	printf '4.5.6-test\n' >home/VERSION
	export TALLY_HOME=$PWD/home
	run $TEST_SHELL -c "BUILD_CORRELATION_ID=build-one; $LIB; log_feature_start a; log_feature_end"
	assert_success
	run $TEST_SHELL -c "BUILD_CORRELATION_ID='build \"two\"'; $LIB; log_feature_start b; log_feature_end"
	assert_success
	run grep '^container_build_info' "$TALLY_METRICS_DIR/build.prom"
	assert_output "container_build_info{base_image=\"$(base_image)\",correlation_id=\"build \\\"two\\\"\",version=\"4.5.6-test\"} 1"
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ''
}

@test "the build's finish time is the Unix time of the last log_feature_end" {
	local t0 t1 t
	t0=$(date +%s)
	run $TEST_SHELL -c "$LIB; log_feature_start a; log_feature_end"
	assert_success
	t1=$(date +%s)
	t=$(sed -n 's/^container_build_last_finished_timestamp_seconds //p' "$TALLY_METRICS_DIR/build.prom")
	[ "$t" -ge "$t0" ] && [ "$t" -le "$t1" ] || fail "finish time $t not within [$t0, $t1]"
}

@test "a feature's commands cost no tally-metric call of their own: one per feature, one per command outside a feature" {
	mkdir -p home/bin
	ln -s "$TALLY_BUILD/lib" home/lib
	printf '#!/bin/sh\necho call >>"%s/calls"\nexec "%s/bin/tally-metric" "$@"\n' "$BATS_TEST_TMPDIR" "$TALLY_BUILD" >home/bin/tally-metric
	chmod +x home/bin/tally-metric
	export TALLY_HOME=$PWD/home
	run $TEST_SHELL -c "$LIB; log_command outside true
		log_feature_start a; log_command one true; log_command two false; log_command three true; log_feature_end
		log_feature_start b; log_command four true; log_feature_end"
	assert_success
	run wc -l <calls
	assert_output 3
	run grep '^container_build_commands_total' "$TALLY_METRICS_DIR/build.prom"
	assert_output 'container_build_commands_total{feature="a",status="failure"} 1
container_build_commands_total{feature="a",status="success"} 2
container_build_commands_total{feature="b",status="success"} 1
container_build_commands_total{status="success"} 1'
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ''
}

@test "METRICS_ENABLED=false records nothing" {
	run $TEST_SHELL -c "METRICS_ENABLED=false; $LIB; log_feature_start f; log_command ok true; log_feature_end"
	assert_success
	[ ! -e "$TALLY_METRICS_DIR/build.prom" ]
}

@test "an unwritable metrics directory is reported and the build goes on" {
	export TALLY_METRICS_DIR=/proc/tally-no-such-dir
	run --separate-stderr $TEST_SHELL -c "set -e; $LIB; log_feature_start f; log_command ok true; log_feature_end; echo done"
	assert_success
	assert_equal "$output" "done"
	[[ "$stderr" == *"unable to create metrics directory /proc/tally-no-such-dir"* ]]
}

@test "metrics.sh leaves no variable behind and runs under set -eu" {
	run $TEST_SHELL -c "set -eu; $LIB; before=\$(set | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | grep -v -e '^_tally_' -e '^before$' | sort)
		log_feature_start f; log_command ok true; log_feature_end
		after=\$(set | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | grep -v -e '^_tally_' -e '^before$' | sort)
		[ \"\$before\" = \"\$after\" ] && echo same || printf '%s\\n' \"\$before\" \"==\" \"\$after\""
	assert_success
	assert_line same
}
