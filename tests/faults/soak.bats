load ../lib/common
load ../lib/faults

# The exporter left running under steady, mixed work for a bounded time:
# scrapes in every format (text, gzip, OpenMetrics, on keep-alive
# connections too) and the other endpoints, while the *.prom files are
# rewritten (new series every time), appended to and truncated, and SIGHUP
# reloads come every second. Its resident memory must stay flat, it must
# stop with status 0 on SIGTERM, and under Valgrind (and under
# LeakSanitizer, with make test SANITIZE=1) no leak and no memory error
# may be reported.

# make test SANITIZE=1 sets TALLY_SANITIZE, which tally_setup clears: read
# it when the file loads.
SANITIZED=${TALLY_SANITIZE-}

setup() { tally_setup; }
teardown() { faults_teardown; }

OM_ACCEPT='Accept: application/openmetrics-text; version=1.0.0'

# all_200 FILE: succeeds when FILE has lines and every one is 200 (curl -w codes).
all_200() {
	[ -s "$1" ] && ! grep -qv '^200$' "$1"
}

# soak_scraper UNTIL: scrapes until the epoch second UNTIL; each round is
# /metrics in text, gzip and OpenMetrics, then /healthz, /readyz, /health
# and / on one keep-alive connection. Every status goes to codes; every
# 10th round's bodies are checked (promtool for text and gzip, "# EOF"
# last for OpenMetrics), failures to scraper.err. Prints the rounds done.
soak_scraper() {
	local n=0
	while [ "$(date +%s)" -lt "$1" ]; do
		n=$((n + 1))
		curl -sS --max-time 10 -o s.txt -w '%{http_code}\n' "$URL/metrics" >>codes 2>>scraper.err
		curl -sS --max-time 10 --compressed -o s.gz.txt -w '%{http_code}\n' "$URL/metrics" >>codes 2>>scraper.err
		curl -sS --max-time 10 -H "$OM_ACCEPT" -o s.om -w '%{http_code}\n' "$URL/metrics" >>codes 2>>scraper.err
		curl -sS --max-time 10 -o /dev/null -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}\n' \
			"$URL/healthz" "$URL/readyz" "$URL/health" "$URL/" >>codes 2>>scraper.err
		if [ $((n % 10)) = 1 ]; then
			promtool check metrics <s.txt >/dev/null 2>>scraper.err || printf 'round %d: text body refused\n' "$n" >>scraper.err
			promtool check metrics <s.gz.txt >/dev/null 2>>scraper.err || printf 'round %d: gzip body refused\n' "$n" >>scraper.err
			[ "$(tail -n 1 s.om)" = '# EOF' ] || printf 'round %d: OpenMetrics body without # EOF\n' "$n" >>scraper.err
		fi
	done
	printf '%s\n' "$n"
}

# soak_writer UNTIL: until the epoch second UNTIL, every 0.1 s: rewrites
# a.prom atomically with 50 new series, appends a line to b.prom (emptied
# every 50 lines), sets a counter in c.prom with tally-metric; prints the
# rounds done.
soak_writer() {
	local n=0 i
	while [ "$(date +%s)" -lt "$1" ]; do
		n=$((n + 1))
		{
			printf '# HELP soak_value Rewritten.\n# TYPE soak_value gauge\n'
			for i in $(seq 50); do printf 'soak_value{round="%d",i="%d"} %d\n' "$n" "$i" "$i"; done
		} >m/.a.tmp
		mv m/.a.tmp m/a.prom
		if [ $((n % 50)) = 0 ]; then
			printf '# TYPE soak_line gauge\n' >m/b.prom
		fi
		printf 'soak_line{n="%d"} %d\n' "$n" "$n" >>m/b.prom
		tally-metric set -f m/c.prom --help-text 'Rounds.' soak_rounds "$n"
		sleep 0.1
	done
	printf '%s\n' "$n"
}

# rss: prints the server's resident memory in KiB (VmRSS).
rss() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$HTTPD_PID/status"
}

# soak SECONDS WARM: runs the scraper, the writer and a SIGHUP every second
# for SECONDS; records in RSS_WARM the largest resident memory seen from
# WARM to 2*WARM seconds in, in RSS_END the largest of the last WARM
# seconds; sets ROUNDS, WRITES, HUPS; fails on any status but 200 or any
# body refused.
soak() {
	local until start t r
	start=$(date +%s)
	until=$((start + $1))
	: >codes
	soak_scraper "$until" >scraper.out 3>&- &
	FAULT_PIDS+=($!)
	soak_writer "$until" >writer.out 3>&- &
	FAULT_PIDS+=($!)
	RSS_WARM=0 RSS_END=0 HUPS=0
	while :; do
		t=$(($(date +%s) - start))
		[ "$t" -lt "$1" ] || break
		kill -HUP "$HTTPD_PID"
		HUPS=$((HUPS + 1))
		r=$(rss)
		if [ "$t" -ge "$2" ] && [ "$t" -lt $(($2 * 2)) ] && [ "$r" -gt "$RSS_WARM" ]; then RSS_WARM=$r; fi
		if [ "$t" -ge $(($1 - $2)) ] && [ "$r" -gt "$RSS_END" ]; then RSS_END=$r; fi
		sleep 1
	done
	wait "${FAULT_PIDS[@]}"
	FAULT_PIDS=()
	ROUNDS=$(cat scraper.out)
	WRITES=$(cat writer.out)
	[ ! -s scraper.err ] || fail "$(head -5 scraper.err)"
	all_200 codes || fail "statuses: $(sort codes | uniq -c | tr '\n' ' ')"
	[ "$ROUNDS" -ge 10 ] || fail "only $ROUNDS scrape rounds"
}

@test "25 s of scrapes in every format, rewrites and SIGHUP reloads: resident memory stays flat and SIGTERM ends the server with status 0" {
	local margin rc
	mkdir m
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	soak 25 5
	# flat: at most 10 % (and 256 KiB) above the largest figure after warm-up
	margin=$((RSS_WARM / 10 > 256 ? RSS_WARM / 10 : 256))
	echo "# $ROUNDS scrape rounds ($(wc -l <codes) requests, all 200), $WRITES rewrites, $HUPS SIGHUP; VmRSS $RSS_WARM KiB after warm-up, $RSS_END KiB at the end" >&3
	if [ -n "$SANITIZED" ]; then
		echo "# resident memory not judged: ASan's quarantine holds freed memory (LeakSanitizer checks for leaks at exit)" >&3
	else
		[ "$RSS_END" -le $((RSS_WARM + margin)) ] || fail "VmRSS grew from $RSS_WARM to $RSS_END KiB"
	fi
	rc=0
	httpd_stop 10 || rc=$?
	assert_equal "exit status $rc" "exit status 0"
}

@test "the same soak under Valgrind: no leak, no memory error, and status 0 on SIGTERM" {
	local log=$BATS_TEST_TMPDIR/valgrind.log rc
	command -v valgrind >/dev/null || skip "valgrind is not installed (Debian package valgrind)"
	# a dynamic glibc build of what the Makefile links into tally-httpd:
	# bin/tally-httpd.c and lib/c/*.c
	cc -std=c99 -D_DEFAULT_SOURCE -g -O1 -I"$TALLY_ROOT/lib/c" -o tally-httpd-vg \
		"$TALLY_ROOT/bin/tally-httpd.c" "$TALLY_ROOT"/lib/c/*.c -lm
	mkdir m
	# shellcheck disable=SC2034,SC2054 # read by httpd_start; the commas are valgrind's
	HTTPD_CMD=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99
		--log-file="$log" ./tally-httpd-vg)
	httpd_start --dir "$BATS_TEST_TMPDIR/m"
	soak 15 3
	rc=0
	httpd_stop 60 || rc=$?
	[ "$rc" = 0 ] || fail "exit status $rc: $(head -40 "$log")"
	# -q: the log holds only errors and leaks, so it must be empty
	[ ! -s "$log" ] || fail "$(head -40 "$log")"
	echo "# under Valgrind: $ROUNDS scrape rounds ($(wc -l <codes) requests, all 200), $WRITES rewrites, $HUPS SIGHUP; exit 0, no error, definitely and indirectly lost 0 bytes" >&3
}
