#!/usr/bin/env bats
# tally-metric: the Prometheus metrics-file writer. Every file written is
# checked whole, byte for byte, and by `promtool check metrics`.

load ../lib/common
setup() { tally_setup; }

bats_require_minimum_version 1.5.0

# expect_file FILE: FILE must equal stdin byte for byte.
expect_file() {
	cat >"$BATS_TEST_TMPDIR/expected"
	diff -u "$BATS_TEST_TMPDIR/expected" "$1"
}

# promtool_ok FILE: promtool parses FILE and reports no lint problem.
promtool_ok() {
	run promtool check metrics <"$1"
	assert_success
	assert_output ''
}

# values_as_v FILE: prints FILE with every sample value replaced by V, after
# checking each value is a number >= 0.
values_as_v() {
	awk '/^#/ { print; next }
	     { if ($NF !~ /^[0-9]+(\.[0-9]+)?(e-[0-9]+)?$/) { print "bad value: " $NF; exit 1 }
	       $NF = "V"; print }' "$1"
}

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr tally-metric --help
	assert_success
	assert_equal "$stderr" ''
	assert_line --index 0 'usage: tally-metric inc|add|set [-f FILE] [--type T] [--help-text H] [--label K=V]... NAME [VALUE]'
	assert_line --index 1 '       tally-metric observe [-f FILE] [--help-text H] [--label K=V]... [--buckets B,...] NAME VALUE...'
	assert_line --index 2 '       tally-metric delete [-f FILE] [--label K=V]... NAME'
	assert_line --index 3 '       tally-metric time [-f FILE] [--help-text H] [--label K=V]... NAME -- COMMAND [ARG...]'
	assert_line --index 4 "       tally-metric batch [-f FILE] [--sync] [--quiet-write-errors] UPDATE [';' UPDATE]..."
	assert_line --index 5 '       tally-metric --help'
	run --separate-stderr tally-metric set --help
	assert_success
	assert_line --index 0 'usage: tally-metric inc|add|set [-f FILE] [--type T] [--help-text H] [--label K=V]... NAME [VALUE]'
}

@test "usage errors exit 100 with a usage message and write nothing" {
	local args
	while IFS= read -r args; do
		eval "set -- $args"
		run --separate-stderr tally-metric "$@"
		[ "$status" -eq 100 ] || fail "tally-metric $args: status $status, want 100"
		case $stderr in
		"tally-metric: usage: "*) ;;
		*) fail "tally-metric $args: stderr is: $stderr" ;;
		esac
		assert_equal "$output" ''
	done <<'EOF'

bogus -f m.prom x
inc -f m.prom --bogus x
inc -f m.prom
inc -f
add -f m.prom x
set -f m.prom x
observe -f m.prom x
inc -f m.prom x 1 2
inc -f m.prom --type summary x
inc -f m.prom --type bogus x
inc -f m.prom --type histogram x
observe -f m.prom --type gauge x 1
observe -f m.prom --exemplar trace_id=ab x 1 2
set -f m.prom --buckets 1,2 x 1
delete -f m.prom --type gauge x
delete -f m.prom --help-text h x
time -f m.prom x true
time -f m.prom x --
time -f m.prom --type gauge x -- true
EOF
	[ ! -e m.prom ]
	[ ! -e .m.prom.lock ]
}

@test "inc without a value adds 1 and writes HELP and TYPE" {
	tally-metric inc -f m.prom builds_total
	tally-metric inc -f m.prom builds_total
	expect_file m.prom <<'EOF'
# HELP builds_total builds_total, written by tally-metric
# TYPE builds_total counter
builds_total 2
EOF
	promtool_ok m.prom
}

@test "add adds its value and a negative add on a counter is refused" {
	tally-metric add -f m.prom --help-text 'Errors seen.' container_build_errors_total 2.5
	tally-metric inc -f m.prom container_build_errors_total 3
	cp m.prom before
	run --separate-stderr tally-metric add -f m.prom container_build_errors_total -1
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: counter container_build_errors_total can only go up: refusing to add -1 (use --type gauge)'
	cmp before m.prom
	expect_file m.prom <<'EOF'
# HELP container_build_errors_total Errors seen.
# TYPE container_build_errors_total counter
container_build_errors_total 5.5
EOF
	promtool_ok m.prom
}

@test "add takes a negative value for a gauge and set replaces the value" {
	tally-metric add -f m.prom --type gauge queue_depth 5
	tally-metric add -f m.prom --type gauge queue_depth -7
	tally-metric set -f m.prom container_features_installed 3
	tally-metric set -f m.prom container_features_installed 4
	expect_file m.prom <<'EOF'
# HELP queue_depth queue_depth, written by tally-metric
# TYPE queue_depth gauge
queue_depth -2
# HELP container_features_installed container_features_installed, written by tally-metric
# TYPE container_features_installed gauge
container_features_installed 4
EOF
	promtool_ok m.prom
}

@test "hostile label values are escaped, empty ones left out, labels sorted by name and series by label string" {
	tally-metric set -f m.prom --label 'z=last' --label $'path=/a"b\\c\nd \xc3\xa9\xe2\x82\xac' container_disk_usage_bytes 1
	tally-metric set -f m.prom --label 'path=C:\dir' container_disk_usage_bytes 2
	tally-metric set -f m.prom --label 'path=' container_disk_usage_bytes 3
	tally-metric set -f m.prom --label $'path={},="\'' container_disk_usage_bytes 4
	expect_file m.prom <<'EOF'
# HELP container_disk_usage_bytes container_disk_usage_bytes, written by tally-metric
# TYPE container_disk_usage_bytes gauge
container_disk_usage_bytes 3
container_disk_usage_bytes{path="/a\"b\\c\nd é€",z="last"} 1
container_disk_usage_bytes{path="C:\\dir"} 2
container_disk_usage_bytes{path="{},=\"'"} 4
EOF
	promtool_ok m.prom
}

@test "HELP text with a backslash and a newline is escaped and kept unless --help-text is given" {
	tally-metric set -f m.prom --help-text $'Disk use of C:\\data\nin bytes.' disk_bytes 1
	tally-metric set -f m.prom disk_bytes 2
	expect_file m.prom <<'EOF'
# HELP disk_bytes Disk use of C:\\data\nin bytes.
# TYPE disk_bytes gauge
disk_bytes 2
EOF
	promtool_ok m.prom
	tally-metric set -f m.prom --help-text 'Disk use in bytes.' disk_bytes 3
	expect_file m.prom <<'EOF'
# HELP disk_bytes Disk use in bytes.
# TYPE disk_bytes gauge
disk_bytes 3
EOF
	promtool_ok m.prom
}

@test "a type conflict is refused and the file stays byte-identical" {
	tally-metric inc -f m.prom builds_total
	cp m.prom before
	run --separate-stderr tally-metric set -f m.prom builds_total 5
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: builds_total is a counter, not a gauge; refusing to change its type'
	cmp before m.prom
	run --separate-stderr tally-metric observe -f m.prom builds_total 5
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: builds_total is a counter, not a histogram; refusing to change its type'
	cmp before m.prom
}

@test "a name that collides with a histogram's samples is refused" {
	tally-metric observe -f m.prom step_seconds 1
	cp m.prom before
	run --separate-stderr tally-metric set -f m.prom step_seconds_count 5
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: gauge step_seconds_count would collide with histogram step_seconds'
	cmp before m.prom
}

@test "an unparsable hand-edited file is refused with file:line and left unchanged" {
	mkdir d
	printf '# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\na_total{x="1} 2\n' >d/m.prom
	cp d/m.prom before
	run --separate-stderr tally-metric inc -f d/m.prom a_total
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: d/m.prom:5: unterminated value of label x; not modifying it'
	cmp before d/m.prom
	printf 'ok_total 1\nbad_total 1,5\n' >d/m.prom
	cp d/m.prom before
	run --separate-stderr tally-metric inc -f d/m.prom a_total
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: d/m.prom:2: invalid value "1,5" for bad_total; not modifying it'
	cmp before d/m.prom
	ls -A d >listing
	expect_file listing <<'EOF'
.m.prom.lock
m.prom
EOF
}

@test "a hand-written file is accepted, completed with HELP and TYPE, normalized, and its timestamps dropped" {
	cat >m.prom <<'EOF'
# A file someone wrote by hand.

# HELP jobs_total Jobs.
# TYPE jobs_total counter
jobs_total{queue="b"}   2
jobs_total{queue="a"} 1 1700000000000
	temperature_celsius 21.50
EOF
	tally-metric inc -f m.prom --label queue=b jobs_total
	expect_file m.prom <<'EOF'
# HELP jobs_total Jobs.
# TYPE jobs_total counter
jobs_total{queue="a"} 1
jobs_total{queue="b"} 3
# HELP temperature_celsius temperature_celsius, written by tally-metric
# TYPE temperature_celsius untyped
temperature_celsius 21.5
EOF
	promtool_ok m.prom
}

@test "observe with the default buckets writes a cumulative histogram with +Inf equal to _count" {
	tally-metric observe -f m.prom --label feature=python container_build_step_seconds 3
	tally-metric observe -f m.prom --label feature=python container_build_step_seconds 0.05
	tally-metric observe -f m.prom --label feature=python container_build_step_seconds 4000
	expect_file m.prom <<'EOF'
# HELP container_build_step_seconds container_build_step_seconds, written by tally-metric
# TYPE container_build_step_seconds histogram
container_build_step_seconds_bucket{feature="python",le="0.1"} 1
container_build_step_seconds_bucket{feature="python",le="0.5"} 1
container_build_step_seconds_bucket{feature="python",le="1"} 1
container_build_step_seconds_bucket{feature="python",le="2.5"} 1
container_build_step_seconds_bucket{feature="python",le="5"} 2
container_build_step_seconds_bucket{feature="python",le="10"} 2
container_build_step_seconds_bucket{feature="python",le="30"} 2
container_build_step_seconds_bucket{feature="python",le="60"} 2
container_build_step_seconds_bucket{feature="python",le="120"} 2
container_build_step_seconds_bucket{feature="python",le="300"} 2
container_build_step_seconds_bucket{feature="python",le="600"} 2
container_build_step_seconds_bucket{feature="python",le="1800"} 2
container_build_step_seconds_bucket{feature="python",le="3600"} 2
container_build_step_seconds_bucket{feature="python",le="+Inf"} 3
container_build_step_seconds_sum{feature="python"} 4003.05
container_build_step_seconds_count{feature="python"} 3
EOF
	promtool_ok m.prom
}

@test "observe of several values writes the same file as that many observes of one, and refuses a NaN among them" {
	tally-metric observe -f one.prom --label feature=python container_build_step_seconds 3
	tally-metric observe -f one.prom --label feature=python container_build_step_seconds 0.05
	tally-metric observe -f one.prom --label feature=python container_build_step_seconds 4000
	tally-metric observe -f one.prom --label feature=python container_build_step_seconds 0.1
	tally-metric observe -f many.prom --label feature=python container_build_step_seconds 3 0.05
	tally-metric batch -f many.prom observe --label feature=python container_build_step_seconds 4000 0.1 ';' \
		inc last_total
	tally-metric inc -f one.prom last_total
	cmp one.prom many.prom
	promtool_ok many.prom
	cp many.prom before
	run --separate-stderr tally-metric observe -f many.prom --label feature=python container_build_step_seconds 1 NaN 2
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: refusing to observe NaN into container_build_step_seconds'
	run --separate-stderr tally-metric observe -f many.prom container_build_step_seconds 1 x
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: invalid value "x": want a number, NaN, +Inf or -Inf'
	cmp before many.prom
}

@test "observe with custom buckets sorts them, keeps them, and refuses different ones" {
	tally-metric observe -f m.prom --buckets 5,1,2 request_seconds 2
	tally-metric observe -f m.prom request_seconds 7
	tally-metric observe -f m.prom --buckets 1,2,5 request_seconds 0.5
	cp m.prom before
	run --separate-stderr tally-metric observe -f m.prom --buckets 1,2 request_seconds 1
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: histogram request_seconds{} already has other buckets than --buckets gives'
	cmp before m.prom
	run --separate-stderr tally-metric observe -f m.prom --label le=1 request_seconds 1
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: label le is reserved for histogram bucket samples'
	expect_file m.prom <<'EOF'
# HELP request_seconds request_seconds, written by tally-metric
# TYPE request_seconds histogram
request_seconds_bucket{le="1"} 1
request_seconds_bucket{le="2"} 2
request_seconds_bucket{le="5"} 2
request_seconds_bucket{le="+Inf"} 3
request_seconds_sum 9.5
request_seconds_count 3
EOF
	promtool_ok m.prom
}

@test "time passes through exit statuses 0, 3 and 127 and records the status label" {
	run tally-metric time -f m.prom --label step=ok build_step_duration_seconds -- true
	assert_success
	assert_output ''
	run tally-metric time -f m.prom --label step=three build_step_duration_seconds -- sh -c 'exit 3'
	assert_failure 3
	assert_output ''
	run -127 --separate-stderr tally-metric time -f m.prom --label step=missing build_step_duration_seconds -- ./no-such-command
	assert_failure 127
	assert_equal "$stderr" 'tally-metric: warning: unable to run ./no-such-command: No such file or directory'
	values_as_v m.prom >normalized
	expect_file normalized <<'EOF'
# HELP build_step_duration_seconds build_step_duration_seconds, written by tally-metric
# TYPE build_step_duration_seconds gauge
build_step_duration_seconds{status="failure",step="missing"} V
build_step_duration_seconds{status="failure",step="three"} V
build_step_duration_seconds{status="success",step="ok"} V
EOF
	promtool_ok m.prom
}

@test "time records the wall time, 126 for a non-executable file and 128+signal for a killed command" {
	run tally-metric time -f m.prom slept_seconds -- sleep 0.3
	assert_success
	run awk '$1 == "slept_seconds{status=\"success\"}" { exit !($2 >= 0.3 && $2 < 10) } END { exit NR != 3 }' m.prom
	assert_success
	printf 'echo hi\n' >not-executable
	chmod 644 not-executable
	run tally-metric time -f m.prom slept_seconds -- ./not-executable
	assert_failure 126
	run tally-metric time -f m.prom slept_seconds -- sh -c 'kill -TERM $$'
	assert_failure 143
	values_as_v m.prom >normalized
	expect_file normalized <<'EOF'
# HELP slept_seconds slept_seconds, written by tally-metric
# TYPE slept_seconds gauge
slept_seconds{status="failure"} V
slept_seconds{status="success"} V
EOF
	promtool_ok m.prom
}

@test "time still exits with the command's status when recording fails" {
	run --separate-stderr tally-metric time -f no-such-dir/m.prom step_seconds -- sh -c 'exit 3'
	assert_failure 3
	assert_equal "$stderr" 'tally-metric: warning: unable to lock no-such-dir/m.prom: its directory does not exist'
	tally-metric inc -f m.prom step_seconds
	cp m.prom before
	run --separate-stderr tally-metric time -f m.prom step_seconds -- true
	assert_success
	assert_equal "$stderr" 'tally-metric: warning: m.prom: step_seconds is a counter, not a gauge; refusing to change its type'
	cmp before m.prom
	run --separate-stderr tally-metric time -f m.prom --label status=x other_seconds -- touch ran
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: label status is set by time; choose another name'
	[ ! -e ran ]
}

@test "8 processes each doing 1,000 inc on one counter end at exactly 8,000, within 2 minutes" {
	local p pids=()
	for p in 1 2 3 4 5 6 7 8; do
		timeout 120 sh -c '
			i=0
			while [ "$i" -lt 1000 ]; do
				tally-metric inc -f m.prom --help-text Builds. builds_total || exit 1
				i=$((i + 1))
			done' &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	expect_file m.prom <<'EOF'
# HELP builds_total Builds.
# TYPE builds_total counter
builds_total 8000
EOF
	promtool_ok m.prom
	run ls -A
	assert_output $'.m.prom.lock\nexpected\nm.prom'
}

@test "two processes writing different series into one file keep both" {
	local w pids=()
	mkdir d
	cd d
	for w in a b; do
		(
			i=0
			while [ "$i" -lt 150 ]; do
				tally-metric inc -f m.prom --label "writer=$w" writes_total || exit 1
				tally-metric set -f m.prom --label "writer=$w" last_write "$i" || exit 1
				i=$((i + 1))
			done
		) &
		pids+=($!)
	done
	for w in "${pids[@]}"; do
		wait "$w"
	done
	expect_file m.prom <<'EOF'
# HELP writes_total writes_total, written by tally-metric
# TYPE writes_total counter
writes_total{writer="a"} 150
writes_total{writer="b"} 150
# HELP last_write last_write, written by tally-metric
# TYPE last_write gauge
last_write{writer="a"} 149
last_write{writer="b"} 149
EOF
	promtool_ok m.prom
	ls -A >../listing
	expect_file ../listing <<'EOF'
.m.prom.lock
m.prom
EOF
}

@test "the file is mode 0644 under umask 077" {
	umask 077
	tally-metric set -f m.prom g 1
	run stat -c %a m.prom
	assert_output 644
	chmod 600 m.prom
	tally-metric set -f m.prom g 2
	run stat -c %a m.prom
	assert_output 644
}

@test "values are written in the shortest form that reads back exactly" {
	local v
	for v in 0 -0 0.1 1e15 1e16 1e21 1e308 5e-324 9007199254740994 NaN +Inf -Inf Inf 0.30000000000000004 1e-7 \
		9223372036854775808 -1.5e300 123456.789; do
		tally-metric set -f m.prom --label "in=$v" value "$v"
	done
	expect_file m.prom <<'EOF'
# HELP value value, written by tally-metric
# TYPE value gauge
value{in="+Inf"} +Inf
value{in="-0"} -0
value{in="-1.5e300"} -1.5e+300
value{in="-Inf"} -Inf
value{in="0"} 0
value{in="0.1"} 0.1
value{in="0.30000000000000004"} 0.30000000000000004
value{in="123456.789"} 123456.789
value{in="1e-7"} 1e-07
value{in="1e15"} 1000000000000000
value{in="1e16"} 10000000000000000
value{in="1e21"} 1e+21
value{in="1e308"} 1e+308
value{in="5e-324"} 5e-324
value{in="9007199254740994"} 9007199254740994
value{in="9223372036854775808"} 9223372036854775808
value{in="Inf"} +Inf
value{in="NaN"} NaN
EOF
	promtool_ok m.prom
}

@test "bad names, labels, values and help texts are refused with exit 1 and write nothing" {
	local args
	while IFS= read -r args; do
		eval "set -- $args"
		run --separate-stderr tally-metric "$@"
		[ "$status" -eq 1 ] || fail "tally-metric $args: status $status, want 1"
		case $stderr in
		"tally-metric: fatal: "*) ;;
		*) fail "tally-metric $args: stderr is: $stderr" ;;
		esac
	done <<'EOF'
set -f m.prom 9lives 1
set -f m.prom bad-name 1
set -f m.prom "" 1
set -f m.prom g abc
set -f m.prom g 0x10
set -f m.prom g 1e999
set -f m.prom g ""
set -f m.prom --label __reserved=1 g 1
set -f m.prom --label bad-label=1 g 1
set -f m.prom --label novalue g 1
set -f m.prom --label a=1 --label a=2 g 1
set -f m.prom --label $'a=\xff' g 1
set -f m.prom --help-text $'\xc3\x28' g 1
set -f m.prom --help-text "" g 1
observe -f m.prom h NaN
observe -f m.prom --buckets 1,,2 h 1
observe -f m.prom --buckets 1,1 h 1
observe -f m.prom --buckets 1,x h 1
EOF
	[ ! -e m.prom ]
}

@test "delete removes one series, or without --label the whole family" {
	tally-metric set -f m.prom --label path=/ disk_bytes 1
	tally-metric set -f m.prom --label path=/var disk_bytes 2
	tally-metric observe -f m.prom --buckets 1 --label step=a step_seconds 0.5
	tally-metric observe -f m.prom --buckets 1 --label step=b step_seconds 2
	tally-metric inc -f m.prom builds_total
	tally-metric delete -f m.prom --label path=/ disk_bytes
	tally-metric delete -f m.prom --label step=a step_seconds
	tally-metric delete -f m.prom builds_total
	tally-metric delete -f m.prom --label no=such disk_bytes
	tally-metric delete -f m.prom no_such_metric
	expect_file m.prom <<'EOF'
# HELP disk_bytes disk_bytes, written by tally-metric
# TYPE disk_bytes gauge
disk_bytes{path="/var"} 2
# HELP step_seconds step_seconds, written by tally-metric
# TYPE step_seconds histogram
step_seconds_bucket{step="b",le="1"} 0
step_seconds_bucket{step="b",le="+Inf"} 1
step_seconds_sum{step="b"} 2
step_seconds_count{step="b"} 1
EOF
	promtool_ok m.prom
	tally-metric delete -f m.prom --label path=/var disk_bytes
	tally-metric delete -f m.prom step_seconds
	[ -f m.prom ] && [ ! -s m.prom ]
}

@test "-f defaults to tally.prom in TALLY_METRICS_DIR, and --sync writes the same" {
	mkdir metrics
	TALLY_METRICS_DIR=$PWD/metrics tally-metric inc --sync builds_total
	expect_file metrics/tally.prom <<'EOF'
# HELP builds_total builds_total, written by tally-metric
# TYPE builds_total counter
builds_total 1
EOF
	promtool_ok metrics/tally.prom
}

@test "a missing directory gives exit 111 with a clear message" {
	run --separate-stderr tally-metric inc -f no/such/dir/m.prom builds_total
	assert_failure 111
	assert_equal "$stderr" 'tally-metric: fatal: unable to lock no/such/dir/m.prom: its directory does not exist'
	[ ! -e no ]
	TALLY_METRICS_DIR=$PWD/missing run --separate-stderr tally-metric inc builds_total
	assert_failure 111
	assert_equal "$stderr" "tally-metric: fatal: unable to lock $PWD/missing/tally.prom: its directory does not exist"
}

@test "a directory it cannot write to gives exit 111 and leaves the file intact" {
	# Root writes anywhere: drop CAP_DAC_OVERRIDE so that mode 0555 holds.
	local drop=()
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null || skip "setpriv is needed to drop root's CAP_DAC_OVERRIDE"
		drop=(setpriv --bounding-set=-dac_override,-dac_read_search)
	fi
	mkdir ro
	tally-metric set -f ro/m.prom g 1
	cp ro/m.prom before
	chmod 555 ro
	if "${drop[@]}" sh -c ': >ro/probe' 2>/dev/null; then
		chmod 755 ro
		skip "cannot make a directory unwritable here"
	fi
	run --separate-stderr "${drop[@]}" tally-metric set -f ro/m.prom g 2
	chmod 755 ro
	assert_failure 111
	assert_equal "$stderr" 'tally-metric: fatal: unable to replace ro/m.prom: Permission denied'
	cmp before ro/m.prom
	ls -A ro >listing
	expect_file listing <<'EOF'
.m.prom.lock
m.prom
EOF
}

@test "a file larger than 16 MiB is refused and left unchanged" {
	head -c $((16 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '\n' >m.prom
	run --separate-stderr tally-metric inc -f m.prom builds_total
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: file too large (more than 16777216 bytes)'
	run stat -c %s m.prom
	assert_output $((16 * 1024 * 1024 + 1))
}

# strict_reader FILE DONE OUT: until DONE exists, reads FILE over and over
# and checks each read is a whole file of the two families the torn-read
# test writes (HELP, TYPE, samples, final newline, values that parse, the
# counter never going down); writes "READS BAD" to OUT.
strict_reader() {
	python3 - "$@" <<'EOF'
import os, re, sys
path, done, out = sys.argv[1:4]
sample = re.compile(r'^(updates_total|last_value)(\{writer="w[0-9]"\})? ([0-9]+(\.[0-9]+)?(e[+-][0-9]+)?)$')
reads = bad = 0
last = 0.0
while True:
    finished = os.path.exists(done)
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8')
    except FileNotFoundError:
        text = None
    if text is not None:
        reads += 1
        lines = text.split('\n')
        ok = text.endswith('\n') and lines[:3] == ['# HELP updates_total Updates.', '# TYPE updates_total counter', lines[2]]
        fams = [l for l in lines if l.startswith('# TYPE ')]
        ok = ok and fams in (['# TYPE updates_total counter'], ['# TYPE updates_total counter', '# TYPE last_value gauge'])
        total = None
        for l in lines[:-1]:
            if l.startswith('#'):
                continue
            m = sample.match(l)
            if not m:
                ok = False
                break
            if m.group(1) == 'updates_total':
                total = float(m.group(3))
        if not ok or total is None or total < last:
            bad += 1
            if bad < 5:
                sys.stderr.write('bad read:\n' + repr(text[:300]) + '\n')
        else:
            last = total
    if finished:
        break
open(out, 'w').write('%d %d\n' % (reads, bad))
EOF
}

@test "a reader parsing the file in a loop during 10,000 updates never sees a torn or unparsable file" {
	local w pids=() reader reads bad
	tally-metric inc -f m.prom --help-text Updates. updates_total 0
	strict_reader m.prom done reader.out 2>reader.err &
	reader=$!
	for w in 1 2 3 4; do
		timeout 120 sh -c '
			i=0
			while [ "$i" -lt 1250 ]; do
				tally-metric inc -f m.prom updates_total || exit 1
				tally-metric set -f m.prom --label writer=w$1 last_value "$i.5" || exit 1
				i=$((i + 1))
			done' sh "$w" &
		pids+=($!)
	done
	for w in "${pids[@]}"; do
		wait "$w"
	done
	: >done
	wait "$reader"
	read -r reads bad <reader.out
	cat reader.err
	echo "# reader: $reads reads, $bad bad" >&3
	assert_equal "$bad" 0
	[ "$reads" -ge 100 ] || fail "the reader read the file only $reads times"
	run sed -n 's/^updates_total //p' m.prom
	assert_output 5000
	promtool_ok m.prom
}

@test "kill -9 in the middle of an update leaves the old or the new file, never a torn one" {
	local i t0 t1 us delay old=0 new=0 tmp=0
	export ASAN_OPTIONS=$KILLED_ASAN_OPTIONS # writers are killed (common.bash)
	mkdir d n
	# A large file, so that an update lasts long enough to be hit.
	awk 'BEGIN { print "# HELP big Big.\n# TYPE big gauge"
		for (i = 0; i < 100000; i++) printf "big{id=\"%06d\"} %d.5\n", i, i }' >d/m.prom
	# How long one update takes here, to spread the kills over it.
	tally-metric inc -f d/m.prom kills_total
	t0=$(date +%s%N)
	tally-metric inc -f d/m.prom kills_total
	t1=$(date +%s%N)
	us=$(((t1 - t0) / 1000))
	for i in $(seq 60); do
		cp d/m.prom before
		cp d/m.prom n/m.prom
		tally-metric inc -f n/m.prom kills_total
		delay=$((us * 3 * i / 2 / 60))
		tally-metric inc -f d/m.prom kills_total &
		sleep "$(printf '0.%06d' "$delay")"
		kill -9 $! 2>/dev/null || :
		wait $! || :
		[ ! -e d/.m.prom.tmp ] || tmp=$((tmp + 1))
		if cmp -s d/m.prom before; then
			old=$((old + 1))
		elif cmp -s d/m.prom n/m.prom; then
			new=$((new + 1))
		else
			diff before d/m.prom | head -5
			fail "after kill $i (${delay} us) the file is neither the old nor the new one"
		fi
	done
	echo "# one update: ${us} us; after 60 kills: $old old, $new new, $tmp temporary files left" >&3
	[ "$old" -gt 0 ] || fail "no kill landed before the rename"
	# The next update removes a temporary file a killed writer left.
	tally-metric inc -f d/m.prom kills_total
	ls -A d >listing
	expect_file listing <<'EOF'
.m.prom.lock
m.prom
EOF
	promtool_ok d/m.prom
}

@test "a full disk gives exit 111 and a clear message, the file intact and no temporary file left" {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
	mkdir full
	mount -t tmpfs -o size=64k,mode=0755 tally-test full 2>/dev/null || skip "mount -t tmpfs is not permitted here"
	MOUNTED=$PWD/full
	tally-metric set -f full/m.prom --label path=/ disk_bytes 1
	cp full/m.prom before
	dd if=/dev/zero of=full/filler bs=4k 2>/dev/null || :
	run --separate-stderr tally-metric set -f full/m.prom --label path=/var disk_bytes 2
	assert_failure 111
	assert_equal "$stderr" 'tally-metric: fatal: unable to replace full/m.prom: No space left on device'
	cmp before full/m.prom
	ls -A full >listing
	expect_file listing <<'EOF'
.m.prom.lock
filler
m.prom
EOF
	# A read-only mount: the same, with its own message.
	rm full/filler
	mount -o remount,ro full
	run --separate-stderr tally-metric set -f full/m.prom --label path=/var disk_bytes 2
	assert_failure 111
	assert_equal "$stderr" 'tally-metric: fatal: unable to replace full/m.prom: Read-only file system'
	cmp before full/m.prom
}

teardown() {
	if [ -n "${MOUNTED-}" ]; then
		umount "$MOUNTED" || :
	fi
}

@test "the default mode makes no fsync and writes the temporary file in one write of its final size" {
	[ -z "${TALLY_SANITIZE-}" ] || skip "LeakSanitizer cannot run under strace"
	command -v strace >/dev/null || skip "strace is not installed"
	tally-metric set -f m.prom --label a=b gauge_one 1
	strace -f -o trace -e trace=openat,open,write,fsync,fdatasync,sync_file_range,syncfs,rename,renameat,renameat2 \
		tally-metric set -f m.prom --label a=c gauge_one 2.5
	size=$(stat -c %s m.prom)
	# Every write of the update, and every flush and rename.
	run awk '/ write\(/ { n++; sub(/.*= /, ""); sizes = sizes " " $0 }
		/fsync|fdatasync|sync_file_range|syncfs/ { f++ }
		/rename/ { r = r $0 }
		END { printf "writes %d:%s flushes %d\n", n, sizes, f; print r }' trace
	assert_line --index 0 "writes 1: $size flushes 0"
	assert_line --index 1 --regexp 'renameat2\(AT_FDCWD, "\.m\.prom\.tmp", AT_FDCWD, "m\.prom", RENAME_EXCHANGE\) = 0'
	strace -f -o trace -e trace=fsync,fdatasync tally-metric set --sync -f m.prom --label a=c gauge_one 3
	run grep -c 'fsync(' trace
	assert_output 2
}

@test "on ext4 an update starts no writeback of the new file (no auto_da_alloc flush at the rename)" {
	[ "$(stat -f -c %T .)" = ext2/ext3 ] || skip "$PWD is not on ext4"
	command -v perf >/dev/null || skip "perf is not installed"
	perf stat -e ext4:ext4_writepages -x, -o probe true 2>/dev/null && grep -q ext4_writepages probe ||
		skip "perf cannot count the ext4:ext4_writepages tracepoint here"
	tally-metric inc -f m.prom updates_total
	perf stat -e ext4:ext4_writepages -x, -o counts sh -c '
		i=0; while [ $i -lt 100 ]; do tally-metric inc -f m.prom updates_total || exit 1; i=$((i + 1)); done'
	run awk -F, '/ext4_writepages/ { print $1 }' counts
	assert_output 0
	run sed -n 's/^updates_total //p' m.prom
	assert_output 101
}

@test "numbers never take the locale's decimal comma, with a live de_DE.UTF-8 locale" {
	mkdir locales
	localedef -i de_DE -f UTF-8 locales/de_DE.UTF-8 >/dev/null 2>&1 ||
		skip "localedef cannot build de_DE.UTF-8 here"
	export LOCPATH=$PWD/locales LC_ALL=de_DE.UTF-8
	# The locale is live: the system printf takes its decimal comma.
	assert_equal "$(/usr/bin/printf '%.1f' 0.5)" '0,5'
	tally-metric set -f m.prom ratio 0.5
	tally-metric add -f m.prom --type gauge ratio 0.25
	tally-metric observe -f m.prom --buckets 0.5,2.5 step_seconds 1.5
	run --separate-stderr tally-metric set -f m.prom ratio 0,5
	assert_failure 1
	unset LC_ALL LOCPATH
	expect_file m.prom <<'EOF'
# HELP ratio ratio, written by tally-metric
# TYPE ratio gauge
ratio 0.75
# HELP step_seconds step_seconds, written by tally-metric
# TYPE step_seconds histogram
step_seconds_bucket{le="0.5"} 0
step_seconds_bucket{le="2.5"} 1
step_seconds_bucket{le="+Inf"} 1
step_seconds_sum 1.5
step_seconds_count 1
EOF
	promtool_ok m.prom
}

@test "a hand-edited histogram that is not cumulative or whose +Inf bucket is not _count is refused with file:line" {
	printf '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n' >m.prom
	cp m.prom before
	run --separate-stderr tally-metric observe -f m.prom h 1
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom:3: histogram h{}: bucket le="+Inf" holds less than the bucket before it (buckets are cumulative); not modifying it'
	cmp before m.prom
	printf '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 5\ng 1\n' >m.prom
	cp m.prom before
	run --separate-stderr tally-metric set -f m.prom g 2
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom:5: histogram h{}: h_count differs from its le="+Inf" bucket; not modifying it'
	cmp before m.prom
}

@test "a hand-written file with interleaved families comes out with one HELP and TYPE per family, contiguous" {
	printf 'a_total 1\nb 2\na_total{x="1"} 3\n# HELP b B.\n' >m.prom
	run --separate-stderr promtool check metrics <m.prom
	assert_failure
	tally-metric set -f m.prom c 4
	expect_file m.prom <<'EOF'
# HELP a_total a_total, written by tally-metric
# TYPE a_total untyped
a_total 1
a_total{x="1"} 3
# HELP b B.
# TYPE b untyped
b 2
# HELP c c, written by tally-metric
# TYPE c gauge
c 4
EOF
	promtool_ok m.prom
}

@test "batch applies every update to the file under one lock with one rename" {
	[ -z "${TALLY_SANITIZE-}" ] || skip "LeakSanitizer cannot run under strace"
	command -v strace >/dev/null || skip "strace is not installed"
	tally-metric set -f m.prom --label feature=a --label status=failure step_seconds 9
	strace -f -o trace -e trace=flock,rename,renameat2 tally-metric batch -f m.prom \
		delete --label feature=a --label status=failure step_seconds ';' \
		set --help-text 'Step time.' --label feature=a --label status=success step_seconds 1.5 ';' \
		inc --label feature=a errors_total 2 ';' \
		observe --buckets 1,10 --label feature=a cmd_seconds 3 ';' \
		inc --label 'k=;' --help-text ';' semi_total
	run grep -cE 'flock\(|rename' trace
	assert_output 2
	expect_file m.prom <<'EOF'
# HELP step_seconds Step time.
# TYPE step_seconds gauge
step_seconds{feature="a",status="success"} 1.5
# HELP errors_total errors_total, written by tally-metric
# TYPE errors_total counter
errors_total{feature="a"} 2
# HELP cmd_seconds cmd_seconds, written by tally-metric
# TYPE cmd_seconds histogram
cmd_seconds_bucket{feature="a",le="1"} 0
cmd_seconds_bucket{feature="a",le="10"} 1
cmd_seconds_bucket{feature="a",le="+Inf"} 1
cmd_seconds_sum{feature="a"} 3
cmd_seconds_count{feature="a"} 1
# HELP semi_total ;
# TYPE semi_total counter
semi_total{k=";"} 1
EOF
}

@test "batch applies all of its updates or none: a refused update leaves the file byte-identical" {
	tally-metric inc -f m.prom builds_total
	cp m.prom before
	run --separate-stderr tally-metric batch -f m.prom set other 1 ';' set builds_total 5
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: m.prom: builds_total is a counter, not a gauge; refusing to change its type'
	cmp before m.prom
	run --separate-stderr tally-metric batch -f m.prom set other 1 ';' set --label __x=1 third 1
	assert_failure 1
	assert_equal "$stderr" 'tally-metric: fatal: update 2: invalid label name "__x" (want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)'
	cmp before m.prom
}

@test "batch usage errors exit 100 and write nothing" {
	local args
	while IFS= read -r args; do
		eval "set -- $args"
		run --separate-stderr tally-metric batch "$@"
		[ "$status" -eq 100 ] || fail "tally-metric batch $args: status $status, want 100"
		case $stderr in
		"tally-metric: usage: "*) ;;
		*) fail "tally-metric batch $args: stderr is: $stderr" ;;
		esac
	done <<'EOF'
-f m.prom
-f m.prom set a 1 ';' ';' set b 1
-f m.prom time a -- true
-f m.prom batch set a 1
-f m.prom set -f x.prom a 1
-f m.prom set --sync a 1
-f m.prom set a
-f m.prom set a 1 2
--bogus set a 1
EOF
	[ ! -e m.prom ]
	[ ! -e x.prom ]
}

@test "batch --quiet-write-errors exits 111 without the message; other errors are still reported" {
	run --separate-stderr tally-metric batch -f /nonexistent/dir/m.prom inc c_total
	assert_failure 111
	assert_equal "$stderr" "tally-metric: fatal: unable to lock /nonexistent/dir/m.prom: its directory does not exist"
	run --separate-stderr tally-metric batch -f /nonexistent/dir/m.prom --quiet-write-errors inc c_total
	assert_failure 111
	assert_equal "$stderr" ""
	run --separate-stderr tally-metric batch -f m.prom --quiet-write-errors set 'bad name' 1
	assert_failure 1
	[[ $stderr == "tally-metric: fatal: invalid metric name"* ]] || fail "stderr: $stderr"
}
