#!/usr/bin/env bats
# metrics.sh under the shell in TALLY_TEST_SHELL (dash, busybox ash, bash).

load ../lib/common

setup() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs
	export TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	LIB=". \"\$TALLY_HOME/lib/base/logging.sh\""
}

# normalized FILE: FILE with every duration value replaced by D.
normalized() {
	sed 's/^\(container_build_duration_seconds{[^}]*}\) [0-9.e+-]*$/\1 D/' "$1"
}

@test "log_feature_end records the build metrics of every feature, valid for promtool" {
	run $TEST_SHELL -c "$LIB
		log_feature_start good 1; log_command ok sh -c 'echo warning: w1'; log_feature_end
		log_feature_start bad 2; log_command no false; log_command no false; log_feature_end"
	assert_success
	run promtool check metrics <"$TALLY_METRICS_DIR/build.prom"
	assert_success
	assert_output ""
	run normalized "$TALLY_METRICS_DIR/build.prom"
	assert_output '# HELP container_build_duration_seconds Time taken to build container features
# TYPE container_build_duration_seconds gauge
container_build_duration_seconds{feature="bad",status="failure"} D
container_build_duration_seconds{feature="good",status="success"} D
# HELP container_build_errors_total Total errors during container build
# TYPE container_build_errors_total counter
container_build_errors_total{feature="bad"} 2
container_build_errors_total{feature="good"} 0
# HELP container_build_warnings_total Total warnings during container build
# TYPE container_build_warnings_total counter
container_build_warnings_total{feature="bad"} 0
container_build_warnings_total{feature="good"} 1
# HELP container_features_installed Total number of features installed
# TYPE container_features_installed gauge
container_features_installed 2'
}

@test "the duration gauge holds the feature's real duration in seconds" {
	run $TEST_SHELL -c "$LIB; log_feature_start slow; log_command nap sleep 1.2; log_feature_end"
	assert_success
	run sed -n 's/^container_build_duration_seconds{feature="slow",status="success"} //p' "$TALLY_METRICS_DIR/build.prom"
	assert_success
	awk -v v="$output" 'BEGIN { exit !(v >= 1.1 && v < 5) }'
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
	run grep -E '^container_(build_errors_total|features_installed)' "$TALLY_METRICS_DIR/build.prom"
	assert_output 'container_build_errors_total{feature="f"} 1
container_features_installed 1'
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
