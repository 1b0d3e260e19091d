load ../lib/common
load ../lib/faults

# The exporter's metrics directory under attack while it serves: removed and
# recreated, swapped for a symbolic link (to a directory, in a loop, to
# nothing), a file appended to in pieces while it is read, a file replaced by
# a FIFO or by a huge file. Every answer is checked whole: the status, the
# exact error body, or promtool on the metrics body.

setup() { tally_setup; }
teardown() { faults_teardown; }

UNREADABLE='metrics directory unreadable'

# get PATH: one request to $URL/PATH (5 s at most); sets CODE and leaves the
# body in the file "got". Fails when curl does.
get() {
	CODE=$(curl -sS --max-time 5 -o got -w '%{http_code}' "$URL$1")
}

# metrics_ok: one scrape, which must be 200 with a body promtool accepts
# (left in "got").
metrics_ok() {
	get /metrics || return 1
	[ "$CODE" = 200 ] || { printf 'status %s\n' "$CODE" >&2; return 1; }
	promtool check metrics <got >/dev/null || return 1
}

# unreadable_ok: the scrape answers 503 with the exact short body.
unreadable_ok() {
	get /metrics || return 1
	[ "$CODE" = 503 ] || { printf 'status %s, want 503\n' "$CODE" >&2; return 1; }
	[ "$(cat got)" = "$UNREADABLE" ] || { printf 'body %s\n' "$(head -c 200 got)" >&2; return 1; }
}

# value_of NAME < BODY: prints the value of the sample line NAME (exact).
value_of() {
	awk -v n="$1" 'index($0, n " ") == 1 { print substr($0, length(n) + 2) }'
}

# served NAME: prints the value of NAME in a fresh 200 scrape that promtool
# accepts (the body stays in "got").
served() {
	metrics_ok || return 1
	value_of "$1" <got
}

@test "the metrics directory removed while serving gets 503 with a short body, /healthz stays ok, and it is served again once recreated" {
	local i cycles=20 scrapes=0
	mkdir m
	printf '# TYPE round_number gauge\nround_number 0\n' >m/a.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	assert_equal "$(served round_number)" 0
	for i in $(seq "$cycles"); do
		rm -rf m
		unreadable_ok || fail "cycle $i: the scrape of a removed directory"
		get /healthz && assert_equal "$CODE $(cat got)" "200 ok"
		get '/readyz?verbose'
		assert_equal "$CODE" 503
		assert_equal "$(head -1 got)" "[-]metrics-dir failed: $BATS_TEST_TMPDIR/m: No such file or directory"
		mkdir m
		printf '# TYPE round_number gauge\nround_number %d\n' "$i" >m/a.prom
		assert_equal "$(served round_number)" "$i"
		scrapes=$((scrapes + 4))
	done
	kill -0 "$HTTPD_PID"
	# one warning per spell of failure, not one per request
	run grep -c "unable to read directory $BATS_TEST_TMPDIR/m: No such file or directory" "$BATS_TEST_TMPDIR/httpd.err"
	assert_output "$cycles"
	echo "# $cycles removals and recreations, $scrapes requests, every answer as specified" >&3
}

@test "the metrics directory swapped for a symbolic link to another directory is served from the target" {
	mkdir m one two
	printf '# TYPE where_number gauge\nwhere_number 0\n' >m/a.prom
	printf '# TYPE where_number gauge\nwhere_number 1\n' >one/a.prom
	printf '# TYPE where_number gauge\nwhere_number 2\n' >two/a.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	assert_equal "$(served where_number)" 0
	# a directory replaced by a link: the very next scrape
	rm -rf m
	ln -s one m
	assert_equal "$(served where_number)" 1
	# a change inside the target, watched through the link: the very next scrape
	printf '# TYPE extra_number gauge\nextra_number 5\n' >one/b.prom
	assert_equal "$(served extra_number)" 5
	# the link itself retargeted in one rename (no event inside either
	# target directory): within HTTPD_RESCAN_MS, a second
	ln -s two m.new
	mv -T m.new m
	local start now
	start=$(date +%s%N)
	until [ "$(served where_number)" = 2 ]; do
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -le 1500 ] || fail "still $(value_of where_number <got) after 1.5 s"
		sleep 0.05
	done
	assert_equal "$(value_of extra_number <got)" ''
	kill -0 "$HTTPD_PID"
}

@test "a symbolic link loop or a dangling symbolic link in place of the directory gets a clear 503, and the server goes on" {
	local kind reason
	mkdir m
	printf '# TYPE back_number gauge\nback_number 1\n' >m/a.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	assert_equal "$(served back_number)" 1
	for kind in loop dangling; do
		rm -rf m
		case $kind in
		# strerror(ELOOP) as glibc, then musl word it
		loop) ln -s m m; reason='(Too many levels of symbolic links|Symbolic link loop)' ;;
		dangling) ln -s nowhere m; reason='No such file or directory' ;;
		esac
		unreadable_ok || fail "$kind: the scrape"
		get '/readyz?verbose'
		assert_equal "$CODE" 503
		run head -1 got
		assert_output --regexp "^\\[-\\]metrics-dir failed: $BATS_TEST_TMPDIR/m: $reason\$"
		get /healthz && assert_equal "$CODE $(cat got)" "200 ok"
		run grep -cE "warning: unable to read directory $BATS_TEST_TMPDIR/m: $reason\$" "$BATS_TEST_TMPDIR/httpd.err"
		assert_output 1
		rm m
		mkdir m
		printf '# TYPE back_number gauge\nback_number 2\n' >m/a.prom
		assert_equal "$(served back_number)" 2
	done
	kill -0 "$HTTPD_PID"
}

# grow_check BODY...: checks each scraped body's grow_value samples: every
# value is the line number followed by 00007 (so a value cut short is
# caught: "12" of "1200007"), and the lines are 0..K with no gap; prints
# per body "K ERROR",
# K the number of lines (0 when the file was left out) and ERROR its
# tally_textfile_scrape_error.
grow_check() {
	python3 - "$@" <<'EOF'
import re, sys
for path in sys.argv[1:]:
    seen, err = [], None
    for line in open(path, encoding='utf-8'):
        m = re.match(r'grow_value\{i="(\d+)"\} (\S+)$', line)
        if m:
            i, v = int(m.group(1)), m.group(2)
            if float(v) != i * 100000 + 7:
                sys.exit('%s: torn line: %r' % (path, line))
            seen.append(i)
        m = re.match(r'tally_textfile_scrape_error\{file="grow.prom"\} (\S+)$', line)
        if m:
            err = m.group(1)
    if sorted(seen) != list(range(len(seen))):
        sys.exit('%s: lines missing: %d lines, the largest %d' % (path, len(seen), max(seen)))
    if err is None or (err == '1') != (not seen):
        sys.exit('%s: %d lines with scrape error %s' % (path, len(seen), err))
    print(len(seen), err)
EOF
}

@test "a .prom file appended to in pieces while scraped is served whole or as it was, never torn" {
	local n scrapes=60 appended kept=0 skipped=0 grew=0 prev=1 k err
	mkdir m
	printf '# HELP grow_value Appended.\n# TYPE grow_value gauge\ngrow_value{i="0"} 000007\n' >m/grow.prom
	printf '# TYPE other_value gauge\nother_value 1\n' >m/other.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	# The writer: each line in two write()s, cut inside the value, up to
	# 60,000 lines or until told to stop.
	(
		exec 4>>m/grow.prom
		i=1
		while [ "$i" -le 60000 ] && [ ! -e stop ]; do
			printf 'grow_value{i="%d"} %d' "$i" "$i" >&4
			printf '00007\n' >&4
			i=$((i + 1))
		done
		printf '%s\n' "$((i - 1))" >written
	) &
	FAULT_PIDS+=($!)
	for n in $(seq "$scrapes"); do
		metrics_ok || fail "scrape $n"
		assert_equal "$(value_of other_value <got)" 1
		mv got "body.$n"
	done
	: >stop
	wait "${FAULT_PIDS[0]}"
	FAULT_PIDS=()
	local bodies=()
	for n in $(seq "$scrapes"); do bodies+=("body.$n"); done
	run grow_check "${bodies[@]}"
	assert_success
	for n in $(seq "$scrapes"); do
		read -r k err <<<"${lines[$((n - 1))]}"
		if [ "$err" = 1 ]; then
			skipped=$((skipped + 1))
		elif [ "$k" -gt "$prev" ]; then
			grew=$((grew + 1))
			prev=$k
		else
			kept=$((kept + 1))
		fi
	done
	appended=$(cat written)
	# the writer stopped: the whole file is served, at once or within the
	# settle time of a last line without its newline (none here)
	metrics_ok
	run grow_check got
	assert_output "$((appended + 1)) 0"
	echo "# $appended lines appended in pieces, $scrapes scrapes: $grew grown, $kept as before, $skipped skipped whole; none torn" >&3
	[ "$grew" -ge 1 ] || fail "no scrape saw the file grow"
}

@test "a last line without a newline appended to a served file is served once it has settled, within two seconds" {
	local start now
	mkdir m
	printf '# TYPE late_value gauge\nlate_value{i="1"} 1\n' >m/late.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	assert_equal "$(served 'late_value{i="1"}')" 1
	printf 'late_value{i="2"} 2' >>m/late.prom
	start=$(date +%s%N)
	# taken for a write in progress at first: the file as it was (when the
	# scrape came within the settle time, as it does but on a stalled machine)
	assert_equal "$(served 'late_value{i="1"}')" 1
	now=$(date +%s%N)
	if [ $(((now - start) / 1000000)) -lt 900 ]; then
		assert_equal "$(value_of 'late_value{i="2"}' <got)" ''
	fi
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="late.prom"}' <got)" 0
	until [ "$(served 'late_value{i="2"}')" = 2 ]; do
		now=$(date +%s%N)
		[ $(((now - start) / 1000000)) -le 2500 ] || fail "not served after 2.5 s"
		sleep 0.1
	done
	now=$(date +%s%N)
	echo "# served $(((now - start) / 1000000)) ms after the write" >&3
}

@test "a .prom file replaced by a FIFO or by a huge file does not stall the server: the FIFO is never read, the huge file is skipped" {
	local i swaps=100 scrapes=0 t
	mkdir m
	printf '# TYPE kept_number gauge\nkept_number 1\n' >m/a.prom
	printf '# TYPE swapped_number gauge\nswapped_number 1\n' >m/b.prom
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	assert_equal "$(served swapped_number)" 1
	# a FIFO nobody writes to: opened for reading it would block
	rm m/b.prom
	mkfifo m/b.prom
	t=$(curl -sS --max-time 3 -o got -w '%{http_code} %{time_total}' "$URL/metrics")
	assert_equal "${t% *}" 200
	promtool check metrics <got
	assert_equal "$(value_of kept_number <got)" 1
	assert_equal "$(value_of swapped_number <got)" ''
	run grep -c 'file="b.prom"' got
	assert_output 0
	# swapped back and forth while being scraped, so that some listings
	# see a regular file that is a FIFO by the time it is opened
	for i in $(seq "$swaps"); do
		curl -sS --max-time 3 -o "fifo.$i" -w '%{http_code}\n' "$URL/metrics" >"code.$i" &
		if [ $((i % 2)) = 1 ]; then
			rm m/b.prom
			printf '# TYPE swapped_number gauge\nswapped_number %d\n' "$i" >m/b.prom
		else
			rm m/b.prom
			mkfifo m/b.prom
		fi
		wait $!
		assert_equal "$(cat "code.$i")" 200
		promtool check metrics <"fifo.$i" >/dev/null
		assert_equal "$(value_of kept_number <"fifo.$i")" 1
		scrapes=$((scrapes + 1))
	done
	# symbolic links to a character device and to a directory named *.prom
	ln -s /dev/zero m/zero.prom
	ln -s /tmp m/dir.prom
	# a sparse file past the 16 MiB cap (PROM_MAX_FILE)
	truncate -s 20M m/huge.prom
	t=$(curl -sS --max-time 3 -o got -w '%{http_code} %{time_total}' "$URL/metrics")
	assert_equal "${t% *}" 200
	promtool check metrics <got
	awk -v t="${t#* }" 'BEGIN { exit !(t < 1) }' || fail "the scrape took ${t#* } s"
	assert_equal "$(value_of kept_number <got)" 1
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="huge.prom"}' <got)" 1
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="zero.prom"}' <got)" ''
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="dir.prom"}' <got)" ''
	run grep -c 'huge.prom left out: larger than 16777216 bytes' "$BATS_TEST_TMPDIR/httpd.err"
	assert_output 1
	kill -0 "$HTTPD_PID"
	echo "# $swaps swaps between a file and a FIFO under $scrapes concurrent scrapes, a 20 MiB file, /dev/zero: every scrape 200 in time" >&3
}
