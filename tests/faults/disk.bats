load ../lib/common
load ../lib/faults

# A full disk under BUILD_LOG_DIR and TALLY_METRICS_DIR (a 256 KiB tmpfs the
# test mounts, filled with dd): the build's commands still run, what was
# already written stays whole and valid, and everything works again once
# space is freed. The full-disk unit tests of the helpers themselves are in
# tests/helpers/tally-metric.bats ("a full disk gives exit 111 ...") and
# tests/helpers/tally-log.bats ("a write failure exits 111").

setup() {
	tally_setup
	small_tmpfs full 256k
	export BUILD_LOG_DIR=$PWD/full/logs TALLY_METRICS_DIR=$PWD/full/metrics
	export ENABLE_JSON_LOGGING=true BUILD_CORRELATION_ID=build-faults
	# One RUN step: a feature with a passing and a failing command, each
	# leaving a mark outside the full disk; the statuses go to status.out.
	cat >build.sh <<'SH'
. "$TALLY_HOME/lib/base/logging.sh"
log_feature_start "$1" 1.0
log_command "passing" sh -c 'echo pass >>side; exit 0'; a=$?
log_command "failing" sh -c 'echo fail >>side; exit 3'; b=$?
log_info "between the commands"
log_feature_end
printf '%s %s\n' "$a" "$b" >>status.out
SH
}

teardown() { faults_teardown; }

# fill: fills the tmpfs to the last block.
fill() {
	dd if=/dev/zero of=full/filler bs=4k 2>/dev/null || :
}

@test "on a full disk every command still runs, and the logs and metrics already written stay whole" {
	dash build.sh before >/dev/null 2>&1
	cp full/metrics/build.prom build.before
	fill
	run --separate-stderr dash build.sh during
	assert_success
	printf '%s\n' pass fail pass fail >want
	cmp want side
	# Nothing half-written: every JSON line parses, the metrics file is the
	# one from before, byte for byte, and no temporary file is left.
	run jsonl_ok full/logs/json/*.jsonl
	assert_success
	cmp build.before full/metrics/build.prom
	promtool check metrics <full/metrics/build.prom
	run ls -A full/metrics
	assert_output "$(printf '%s\n' .build.prom.lock build.prom)"
	echo "# full disk: $(printf '%s\n' "$stderr" | grep -c 'No space left on device') warnings naming ENOSPC" >&3
	# Space freed: the next RUN step logs and records everything again.
	rm full/filler
	dash build.sh after >/dev/null 2>&1
	run jsonl_ok full/logs/json/*.jsonl
	assert_success
	run jq -r '"\(.level) \(.message)"' full/logs/json/after.jsonl
	assert_output "$(printf '%s\n' 'INFO Feature after started' 'INFO Command finished: passing' \
		'ERROR Command finished: failing' 'INFO between the commands' 'ERROR Feature after finished')"
	# (A "during" line may be there too: an append that fits in the file's
	# last page needs no new block.)
	run jq -r 'select(.feature != "during") | "\(.feature) \(.error_count)"' full/logs/json/build-summary.jsonl
	assert_output "$(printf '%s\n' 'before 1' 'after 1')"
	promtool check metrics <full/metrics/build.prom
	grep -q '^container_build_errors_total{feature="after"} 1$' full/metrics/build.prom
}

@test "on a full disk log_command returns each command's own exit status" {
	fill
	run dash build.sh during
	assert_success
	assert_equal "$(cat status.out)" "0 3"
}

@test "a full disk is reported once per directory, not on every log call" {
	fill
	run --separate-stderr dash build.sh during
	assert_success
	run grep -c 'No space left on device' <<<"$stderr"
	[ "$output" -le 2 ] || fail "$output warnings for one full disk"
}
