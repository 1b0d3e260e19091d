#!/usr/bin/env bats
# make install: the /opt/tally layout that one COPY carries into an image.

load ../lib/common

setup() {
	tally_setup
}

@test "make install lays out bin/, lib/ and VERSION under DESTDIR/PREFIX and nothing else" {
	run make -s -C "$TALLY_ROOT" install DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/opt/tally
	assert_success
	run sh -c "cd '$BATS_TEST_TMPDIR/root' && find . | LC_ALL=C sort"
	assert_output ".
./opt
./opt/tally
./opt/tally/VERSION
./opt/tally/bin
./opt/tally/bin/healthcheck
./opt/tally/bin/metrics-exporter
./opt/tally/bin/tally-httpd
./opt/tally/bin/tally-log
./opt/tally/bin/tally-metric
./opt/tally/bin/tally-trace
./opt/tally/lib
./opt/tally/lib/base
./opt/tally/lib/base/json-logging.sh
./opt/tally/lib/base/logging.sh
./opt/tally/lib/base/metrics.sh
./opt/tally/lib/runtime
./opt/tally/lib/runtime/healthcheck
./opt/tally/lib/runtime/metrics-exporter.sh"
}

@test "the installed helpers are static executables that need nothing at run time" {
	[ -z "${TALLY_SANITIZE-}" ] || skip "a sanitized build is dynamic"
	make -s -C "$TALLY_ROOT" install DESTDIR="$BATS_TEST_TMPDIR/root" >/dev/null
	for h in tally-log tally-metric tally-httpd tally-trace; do
		run "$BATS_TEST_TMPDIR/root/opt/tally/bin/$h" --help
		assert_success
		# A static binary has no program interpreter (dynamic loader).
		run readelf -l "$BATS_TEST_TMPDIR/root/opt/tally/bin/$h"
		assert_success
		refute_output --partial "INTERP"
	done
}

@test "an installed tree works by itself: logging, JSON, metrics and healthcheck" {
	make -s -C "$TALLY_ROOT" install DESTDIR="$BATS_TEST_TMPDIR/root" >/dev/null
	home=$BATS_TEST_TMPDIR/root/opt/tally
	mkdir metrics
	run env -i PATH=/usr/bin:/bin TALLY_HOME="$home" BUILD_LOG_DIR="$PWD/logs" \
		TALLY_METRICS_DIR="$PWD/metrics" ENABLE_JSON_LOGGING=true sh -c \
		'. "$TALLY_HOME/lib/base/logging.sh" && log_feature_start f 1 && log_command "Say hi" echo hi && log_feature_end && "$TALLY_HOME/bin/healthcheck" --dir /nonexistent'
	assert_success
	run jq -e -s 'length == 4 and all(.feature == "f")' logs/json/f.jsonl
	assert_success
	run promtool check metrics <metrics/build.prom
	assert_success
	assert_output ""
	run promtool check metrics <metrics/healthcheck.prom
	assert_success
}
