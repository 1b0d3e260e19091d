load ../lib/common
setup() { tally_setup; }

# tally-httpd: the merged metrics directory over HTTP/1.1, the other
# endpoints, content negotiation, gzip, errors, keep-alive, timeouts, load,
# signals and exit statuses. Each test starts its own
# server on 127.0.0.1 (port 0, learnt from --port-file) and kills only it.

teardown() {
	if [ -n "${HTTPD_PID-}" ]; then
		kill "$HTTPD_PID" 2>/dev/null || true
		wait "$HTTPD_PID" 2>/dev/null || true
	fi
}

CT_METRICS='text/plain; version=0.0.4; charset=utf-8'
CT_OM='application/openmetrics-text; version=1.0.0; charset=utf-8'
CT_TEXT='text/plain; charset=utf-8'
VARY='Vary: Accept, Accept-Encoding'
# Prometheus 2.42's Accept header on every scrape.
PROM_ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

# textfiles_only < BODY: prints the body without the built-in and per-file
# families (whose values change from scrape to scrape), and without # EOF.
textfiles_only() {
	awk '{ n = $0; sub(/^# (HELP|TYPE) /, "", n); sub(/[{ ].*/, "", n)
		if (n ~ /^(tally_|process_|container_uptime_seconds|container_start_time_seconds)/) next
		if ($0 == "# EOF") next
		print }'
}

# value_of NAME < BODY: prints the value of the sample line NAME (exact).
value_of() {
	awk -v n="$1" 'index($0, n " ") == 1 { print substr($0, length(n) + 2) }'
}

# write_fixtures: fills m/ with served files (one without a final newline)
# and with files that must not be served; writes the expected body to
# expected (built with cat).
write_fixtures() {
	mkdir -p m/sub.prom
	cat >m/10-build.prom <<'EOF'
# HELP container_build_duration_seconds Duration of a feature's installation.
# TYPE container_build_duration_seconds gauge
container_build_duration_seconds{feature="python-dev",status="success"} 12.5
container_build_duration_seconds{feature="node",status="failed"} 3
EOF
	cat >m/20-errors.prom <<'EOF'
# HELP container_build_errors_total Errors logged while installing a feature.
# TYPE container_build_errors_total counter
container_build_errors_total{feature="python-dev"} 0
container_build_errors_total{feature="node"} 2
EOF
	printf '%s\n%s\n%s' \
		'# HELP container_features_installed Features installed in the image.' \
		'# TYPE container_features_installed gauge' \
		'container_features_installed 2' >m/30-features.prom
	printf 'this is not a metric {\n' >m/.hidden.prom
	printf 'container_features_installed 99\n' >m/40-half.prom.tmp
	printf 'notes 1\n' >m/notes.txt
	printf 'nested 1\n' >m/sub.prom/x.prom
	printf '%s\n' \
		"# HELP container_build_duration_seconds Duration of a feature's installation." \
		'# TYPE container_build_duration_seconds gauge' \
		'container_build_duration_seconds{feature="node",status="failed"} 3' \
		'container_build_duration_seconds{feature="python-dev",status="success"} 12.5' \
		'# HELP container_build_errors_total Errors logged while installing a feature.' \
		'# TYPE container_build_errors_total counter' \
		'container_build_errors_total{feature="node"} 2' \
		'container_build_errors_total{feature="python-dev"} 0' \
		'# HELP container_features_installed Features installed in the image.' \
		'# TYPE container_features_installed gauge' \
		'container_features_installed 2' >expected
}

# start_server [ARG...]: starts tally-httpd on 127.0.0.1 with a free port,
# serving m/ unless ARG has a --dir; sets HTTPD_PID and PORT.
start_server() {
	local dir=(--dir "$BATS_TEST_TMPDIR/m")
	case " $* " in *" --dir "*) dir=() ;; esac
	mkdir -p m
	rm -f port
	tally-httpd --listen 127.0.0.1:0 "${dir[@]}" \
		--port-file "$BATS_TEST_TMPDIR/port" "$@" 2>"$BATS_TEST_TMPDIR/stderr" 3>&- &
	HTTPD_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/port" 10 || fail "tally-httpd wrote no port file"
	PORT=$(cat port)
	URL=http://127.0.0.1:$PORT
}

# head_of STATUS-LINE CONTENT-TYPE LENGTH CONNECTION [EXTRA-LINE...]: prints
# the exact response head tally-httpd sends.
head_of() {
	printf '%s\r\n' "HTTP/1.1 $1" "Content-Type: $2" "Content-Length: $3" \
		"Connection: $4"
	shift 4
	[ $# -eq 0 ] || printf '%s\r\n' "$@"
	printf '\r\n'
}

# raw BYTES: sends BYTES (printf format) on one connection, prints the reply.
raw() {
	# shellcheck disable=SC2059
	printf "$1" | socat -t 5 -T 10 - "TCP:127.0.0.1:$PORT"
}

@test "GET /metrics returns the merged .prom files and built-ins with exact headers" {
	write_fixtures
	start_server
	curl -sS -D headers -o body "$URL/metrics"
	textfiles_only <body >got
	diff -u expected got
	head_of "200 OK" "$CT_METRICS" "$(wc -c <body)" keep-alive "$VARY" >want
	cmp headers want
	for f in 10-build 20-errors 30-features; do
		assert_equal "$(value_of "tally_textfile_scrape_error{file=\"$f.prom\"}" <body)" 0
		assert_equal "$(value_of "tally_textfile_mtime_seconds{file=\"$f.prom\"}" <body | cut -d. -f1)" "$(stat -c %Y "m/$f.prom")"
	done
}

@test "the /metrics body passes promtool check metrics" {
	write_fixtures
	start_server
	curl -sS -o body "$URL/metrics"
	run promtool check metrics <body
	assert_success
	assert_output ''
}

@test "a file without a final newline is merged, an empty file adds nothing" {
	mkdir m
	printf '# HELP a A.\n# TYPE a gauge\na 1' >m/a.prom
	: >m/b.prom
	printf '# HELP c C.\n# TYPE c gauge\nc 3\n' >m/c.prom
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >got
	printf '# HELP a A.\n# TYPE a gauge\na 1\n# HELP c C.\n# TYPE c gauge\nc 3\n' >want
	diff -u want got
}

@test "hidden files, *.prom.tmp, other names and subdirectories are not served" {
	write_fixtures
	rm m/10-build.prom m/20-errors.prom m/30-features.prom
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >got
	[ ! -s got ]
	run grep -c 'tally_textfile_mtime_seconds{' body
	assert_output 0
}

@test "families appear in the byte order of the files that first give them" {
	mkdir m
	for n in b a B 10 9; do
		printf '# HELP m_%sx M.\n# TYPE m_%sx gauge\nm_%sx 1\n' "$n" "$n" "$n" >"m/$n.prom"
	done
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >got
	(cd m && cat 10.prom 9.prom B.prom a.prom b.prom) >want
	diff -u want got
}

@test "/metrics sees every change of the directory and ignores the query string" {
	write_fixtures
	start_server
	curl -sS -o body1 "$URL/metrics?debug=1&x"
	textfiles_only <body1 >got
	diff -u expected got
	printf '# HELP late_total Late.\n# TYPE late_total counter\nlate_total 7\n' >m/50-late.prom
	rm m/10-build.prom
	printf '# HELP container_features_installed Features installed in the image.\n# TYPE container_features_installed gauge\ncontainer_features_installed 3\n' >m/30-features.prom.new
	mv m/30-features.prom.new m/30-features.prom
	curl -sS -o body2 "$URL/metrics"
	textfiles_only <body2 >got
	{ sed -n '5,11p' expected | sed 's/^container_features_installed 2$/container_features_installed 3/'; cat m/50-late.prom; } >want
	diff -u want got
}

@test "every kind of change is served by the very next request, 200 times in a row" {
	mkdir m
	start_server
	for i in $(seq 200); do
		case $((i % 4)) in
		0) printf '# TYPE step_number gauge\nstep_number %d\n' "$i" >m/a.prom ;;
		1) printf '# TYPE step_number gauge\nstep_number %d\n' "$i" >m/.a.tmp && mv m/.a.tmp m/a.prom ;;
		2) rm m/a.prom; printf '# TYPE step_number gauge\nstep_number %d\n' "$i" >m/b.prom ;;
		3) rm m/b.prom; printf '# TYPE step_number gauge\nstep_number %d\n' "$i" >>m/a.prom ;;
		esac
		got=$(curl -sS "$URL/metrics" | value_of step_number)
		[ "$got" = "$i" ] || fail "step $i: served '$got'"
	done
}

@test "a change inotify cannot see (a symbolic link's target elsewhere) is served within a second" {
	mkdir m elsewhere
	printf '# TYPE linked_number gauge\nlinked_number 1\n' >elsewhere/t.prom
	ln -s ../elsewhere/t.prom m/t.prom
	start_server
	assert_equal "$(curl -sS "$URL/metrics" | value_of linked_number)" 1
	printf '# TYPE linked_number gauge\nlinked_number 22\n' >elsewhere/t.prom
	start=$(date +%s%N)
	for _ in $(seq 30); do
		[ "$(curl -sS "$URL/metrics" | value_of linked_number)" = 22 ] && break
		sleep 0.1
	done
	assert_equal "$(curl -sS "$URL/metrics" | value_of linked_number)" 22
	[ $((($(date +%s%N) - start) / 1000000)) -le 1500 ]
}

@test "an unchanged directory is not parsed again; a changed file is parsed alone" {
	write_fixtures
	start_server
	curl -sS -o body1 "$URL/metrics"
	curl -sS -o body2 "$URL/metrics"
	assert_equal "$(value_of tally_textfile_parses_total <body1)" 3
	assert_equal "$(value_of tally_textfile_parses_total <body2)" 3
	assert_equal "$(value_of tally_textfile_rebuilds_total <body2)" 1
	touch -d '2001-01-01' m/20-errors.prom
	curl -sS -o body3 "$URL/metrics"
	assert_equal "$(value_of tally_textfile_parses_total <body3)" 4
	assert_equal "$(value_of tally_textfile_rebuilds_total <body3)" 2
	assert_equal "$(value_of 'tally_textfile_mtime_seconds{file="20-errors.prom"}' <body3)" 978307200
}

@test "a malformed file is left out whole, counted by name, and the others are served" {
	write_fixtures
	printf '# TYPE broken gauge\nbroken{x="1" 1\n' >m/15-broken.prom
	printf '\377\376 not utf-8\n' >m/16-binary.prom
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >got
	diff -u expected got
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="15-broken.prom"}' <body)" 1
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="16-binary.prom"}' <body)" 1
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="10-build.prom"}' <body)" 0
	run promtool check metrics <body
	assert_success
	run cat stderr
	assert_line --partial "15-broken.prom left out: line 2: "
}

@test "duplicates, HELP and TYPE conflicts, label sets, timestamps and lint follow the merge rule" {
	mkdir m
	printf '# HELP x First.\n# TYPE x gauge\nx{a="1"} 1\n' >m/a.prom
	printf '# HELP x Second.\n# TYPE x gauge\nx{a="1"} 9\nx{a="2"} 2\nx{b="3"} 3\n' >m/b.prom
	printf '# TYPE x untyped\nx{a="4"} 4\n# HELP y Y.\n# TYPE y summary\ny_sum 1 1700000000000\ny_count 2\n' >m/c.prom
	printf '# TYPE process_open_fds gauge\nprocess_open_fds 99\ny_count 1\n# TYPE jobs counter\njobs 1\nz 1\n' >m/d.prom
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >got
	printf '%s\n' '# HELP x First.' '# TYPE x gauge' 'x{a="1"} 1' 'x{a="2"} 2' '# HELP y Y.' '# TYPE y summary' 'y_sum 1' 'y_count 2' \
		'# HELP z Metric read from d.prom.' 'z 1' >want
	diff -u want got
	grep '^tally_textfile_conflicts{' body >got
	printf '%s\n' \
		'tally_textfile_conflicts{file="b.prom",kind="duplicate"} 1' \
		'tally_textfile_conflicts{file="b.prom",kind="help"} 1' \
		'tally_textfile_conflicts{file="b.prom",kind="labels"} 1' \
		'tally_textfile_conflicts{file="c.prom",kind="timestamp"} 1' \
		'tally_textfile_conflicts{file="c.prom",kind="type"} 1' \
		'tally_textfile_conflicts{file="d.prom",kind="clash"} 1' \
		'tally_textfile_conflicts{file="d.prom",kind="lint"} 1' \
		'tally_textfile_conflicts{file="d.prom",kind="reserved"} 1' >want
	diff -u want got
	run promtool check metrics <body
	assert_success
	assert_output ''
}

@test "a file replaced, truncated or deleted between scrapes affects only that file" {
	write_fixtures
	start_server
	for i in $(seq 30); do
		printf '# TYPE churn gauge\nchurn{i="%d"} %d\n' "$i" "$i" >m/99-churn.prom.tmp
		mv m/99-churn.prom.tmp m/99-churn.prom
		curl -sS -o body "$URL/metrics" &
		: >m/99-churn.prom
		rm -f m/99-churn.prom
		wait $!
		textfiles_only <body | grep -v '^churn\|^# TYPE churn' >got
		diff -u expected got
		promtool check metrics <body
	done
}

@test "the built-in families describe the container and the exporter" {
	start_server
	curl -sS -o body "$URL/metrics"
	up=$(value_of container_uptime_seconds <body)
	start=$(value_of container_start_time_seconds <body)
	now=$(date +%s)
	pid1=$(awk '{ print $22 }' /proc/1/stat)
	btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
	hz=$(getconf CLK_TCK)
	awk -v s="$start" -v want="$((btime + pid1 / hz))" 'BEGIN { exit !(s - want < 2 && want - s < 2) }'
	awk -v u="$up" -v s="$start" -v now="$now" 'BEGIN { d = now - s - u; exit !(d < 3 && d > -3) }'
	[ "$(value_of process_resident_memory_bytes <body)" -gt 0 ]
	[ "$(value_of process_open_fds <body)" -ge 3 ]
	assert_equal "$(value_of tally_httpd_connections <body)" 1
	assert_equal "$(value_of 'tally_httpd_scrapes_total{encoding="identity",format="text"}' <body)" 1
	run promtool check metrics <body
	assert_success
	assert_output ''
}

@test "Prometheus' Accept header gets OpenMetrics 1.0 with _total counters and # EOF" {
	write_fixtures
	start_server
	curl -sS -D headers -o body -H "Accept: $PROM_ACCEPT" "$URL/metrics"
	head_of "200 OK" "$CT_OM" "$(wc -c <body)" keep-alive "$VARY" >want
	cmp headers want
	assert_equal "$(tail -n 1 body)" '# EOF'
	textfiles_only <body >got
	printf '%s\n' \
		'# TYPE container_build_duration_seconds gauge' \
		"# HELP container_build_duration_seconds Duration of a feature's installation." \
		'container_build_duration_seconds{feature="node",status="failed"} 3' \
		'container_build_duration_seconds{feature="python-dev",status="success"} 12.5' \
		'# TYPE container_build_errors counter' \
		'# HELP container_build_errors Errors logged while installing a feature.' \
		'container_build_errors_total{feature="node"} 2' \
		'container_build_errors_total{feature="python-dev"} 0' \
		'# TYPE container_features_installed gauge' \
		'# HELP container_features_installed Features installed in the image.' \
		'container_features_installed 2' >want
	diff -u want got
	grep -qx '# TYPE process_cpu_seconds counter' body
	grep -q '^process_cpu_seconds_total ' body
	assert_equal "$(grep -c '^# EOF$' body)" 1
}

@test "content that OpenMetrics cannot express exactly is served as text 0.0.4" {
	mkdir m
	# An *_info gauge that is not 1 cannot be an OpenMetrics info family.
	printf '# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version="1"} 2\n' >m/a.prom
	start_server
	curl -sS -D headers -o body -H "Accept: $PROM_ACCEPT" "$URL/metrics"
	head_of "200 OK" "$CT_METRICS" "$(wc -c <body)" keep-alive "$VARY" >want
	cmp headers want
	run promtool check metrics <body
	assert_success
	assert_output ''
	printf '# HELP ok_total OK.\n# TYPE ok_total counter\nok_total 1\n' >m/a.prom
	for accept in '' 'text/plain' 'application/json' 'application/openmetrics-text;version=0.0.1'; do
		curl -sS -D headers -o body ${accept:+-H "Accept: $accept"} "$URL/metrics"
		grep -qx "Content-Type: $CT_METRICS"$'\r' headers
	done
}

@test "Accept-Encoding: gzip gets a gzip body that inflates to the identity body" {
	write_fixtures
	for i in $(seq 300); do printf 'container_build_duration_seconds{feature="f%d",status="success"} %d\n' "$i" "$i"; done >>m/10-build.prom
	start_server
	for accept in text/plain "$PROM_ACCEPT"; do
		curl -sS -D gz-headers -o body.gz -H 'Accept-Encoding: gzip' -H "Accept: $accept" "$URL/metrics"
		curl -sS -o body -H "Accept: $accept" "$URL/metrics"
		grep -qx $'Content-Encoding: gzip\r' gz-headers
		grep -qx "Content-Length: $(wc -c <body.gz)"$'\r' gz-headers
		gzip -t body.gz
		python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1], "rb").read()))' body.gz >inflated
		textfiles_only <inflated >a
		textfiles_only <body >b
		cmp a b
		[ "$(wc -c <body.gz)" -lt "$(($(wc -c <body) / 3))" ]
	done
	curl -sS -D headers -o body -H 'Accept-Encoding: gzip;q=0, identity' "$URL/metrics"
	run grep -ci 'content-encoding' headers
	assert_output 0
	run promtool check metrics <body
	assert_success
	run curl -sS --compressed -o body "$URL/metrics"
	assert_success
	run promtool check metrics <body
	assert_success
}

@test "/healthz answers ok with exact headers" {
	start_server
	curl -sS -D headers -o body "$URL/healthz"
	printf 'ok\n' >want
	cmp body want
	head_of "200 OK" "$CT_TEXT" 3 keep-alive >want
	cmp headers want
}

@test "/healthz answers even when the metrics directory does not exist" {
	start_server --dir "$BATS_TEST_TMPDIR/missing"
	run curl -sS "$URL/healthz"
	assert_success
	assert_output 'ok'
}

@test "/readyz is ready with a readable directory and no or a passing healthcheck result" {
	mkdir m
	start_server
	curl -sS -D headers -o body "$URL/readyz"
	head_of "200 OK" "$CT_TEXT" 3 keep-alive >want
	cmp headers want
	assert_equal "$(cat body)" ok
	run curl -sS "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[+]healthcheck ok\nreadyz check passed')"
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 1\n' >m/healthcheck.prom
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 0\n' >m/healthcheck.prom
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[-]healthcheck failed: container_healthcheck_status is 0\nreadyz check failed\n503')"
	rm -r m
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[-]metrics-dir failed: %s/m: No such file or directory\n[-]healthcheck failed: metrics directory unreadable\nreadyz check failed\n503' "$BATS_TEST_TMPDIR")"
}

@test "/health is the readiness as JSON with the uptime" {
	mkdir m
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 0\n' >m/healthcheck.prom
	start_server
	curl -sS -D headers -o body "$URL/health"
	head_of "503 Service Unavailable" application/json "$(wc -c <body)" keep-alive >want
	cmp headers want
	run jq -c '{status, checks, up: (.uptime_seconds > 0), start: (.start_time_seconds > 1e9), exp: (.exporter_uptime_seconds >= 0)}' body
	assert_output '{"status":"failed","checks":[{"name":"metrics-dir","status":"ok"},{"name":"healthcheck","status":"failed","message":"container_healthcheck_status is 0"}],"up":true,"start":true,"exp":true}'
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 1\n' >m/healthcheck.prom
	run sh -c "curl -sS '$URL/health' | jq -c '[.status, .checks[].status]'"
	assert_output '["ok","ok","ok"]'
}

# hc_result STATUS AGE: prints a healthcheck.prom as bin/healthcheck writes
# it, of a run AGE seconds ago with container_healthcheck_status STATUS.
hc_result() {
	printf '%s\n' '# HELP container_healthcheck_status Current health status (1=healthy, 0=unhealthy)' \
		'# TYPE container_healthcheck_status gauge' "container_healthcheck_status $1" \
		'# HELP container_healthcheck_last_run_timestamp_seconds Unix time the last healthcheck finished' \
		'# TYPE container_healthcheck_last_run_timestamp_seconds gauge' \
		"container_healthcheck_last_run_timestamp_seconds $(($(date +%s) - $2))"
}

@test "several --dir are merged in order and the runtime dir's healthcheck result drives /readyz" {
	mkdir m run
	printf '# HELP build_things Things.\n# TYPE build_things gauge\nbuild_things 1\n' >m/build.prom
	printf '# HELP build_things Things.\n# TYPE build_things gauge\nbuild_things 2\n' >run/a.prom
	hc_result 0 5 >run/healthcheck.prom
	start_server --dir "$BATS_TEST_TMPDIR/run" --dir "$BATS_TEST_TMPDIR/m"
	curl -sS -o body "$URL/metrics"
	run promtool check metrics <body
	assert_success
	assert_equal "$(value_of build_things <body)" 2
	assert_equal "$(value_of 'tally_textfile_conflicts{file="'"$BATS_TEST_TMPDIR"'/m/build.prom",kind="duplicate"}' <body)" 1
	assert_equal "$(value_of 'tally_textfile_scrape_error{file="healthcheck.prom"}' <body)" 0
	assert_equal "$(value_of container_healthcheck_status <body)" 0
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[-]healthcheck failed: container_healthcheck_status is 0\nreadyz check failed\n503')"
	# a result in the other directory that is newer wins
	hc_result 1 1 >m/healthcheck.prom
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
	grep -qx "tally-httpd: listening on 127.0.0.1:$PORT, serving $BATS_TEST_TMPDIR/run, $BATS_TEST_TMPDIR/m" stderr
}

@test "a missing second --dir fails readiness but /metrics serves the first" {
	mkdir m
	printf '# HELP build_things Things.\n# TYPE build_things gauge\nbuild_things 1\n' >m/build.prom
	start_server --dir "$BATS_TEST_TMPDIR/m" --dir "$BATS_TEST_TMPDIR/gone"
	curl -sS -o body -w '%{http_code}' "$URL/metrics" >code
	assert_equal "$(cat code)" 200
	assert_equal "$(value_of build_things <body)" 1
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[-]metrics-dir failed: %s/gone: No such file or directory\n[+]healthcheck ok\nreadyz check failed\n503' "$BATS_TEST_TMPDIR")"
	grep -qx "tally-httpd: warning: unable to read directory $BATS_TEST_TMPDIR/gone: No such file or directory" stderr
}

@test "/readyz and /health go unready when the latest healthcheck result is older than --health-max-age" {
	mkdir m
	hc_result 1 30 >m/healthcheck.prom
	start_server --health-max-age 20
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output --regexp "^$(printf '\\[\\+]metrics-dir ok\n\\[-]healthcheck failed: the latest result is 3[01] s old \\(limit 20 s\\)\nreadyz check failed\n503')\$"
	run sh -c "curl -sS '$URL/health' | jq -c '[.status, .checks[1].message]'"
	assert_output --regexp '^\["failed","the latest result is 3[01] s old \(limit 20 s\)"\]$'
	hc_result 1 0 >m/healthcheck.prom
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
}

@test "the default age limit is 90 s, TALLY_HEALTH_MAX_AGE sets it and 0 turns it off" {
	mkdir m
	hc_result 1 100 >m/healthcheck.prom
	start_server
	run curl -sS "$URL/readyz?verbose"
	assert_line --index 1 --regexp '^\[-]healthcheck failed: the latest result is 10[01] s old \(limit 90 s\)$'
	kill "$HTTPD_PID"; wait "$HTTPD_PID" || true
	TALLY_HEALTH_MAX_AGE=200 start_server
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
	kill "$HTTPD_PID"; wait "$HTTPD_PID" || true
	hc_result 1 100000 >m/healthcheck.prom
	TALLY_HEALTH_MAX_AGE=0 start_server
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
}

@test "a healthcheck result from before the container started (the image build) is no result yet" {
	mkdir m
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 0\n# TYPE container_healthcheck_last_run_timestamp_seconds gauge\ncontainer_healthcheck_last_run_timestamp_seconds 1000\n' >m/healthcheck.prom
	start_server
	run curl -sS -w '%{http_code}\n' "$URL/readyz?verbose"
	assert_output "$(printf '[+]metrics-dir ok\n[+]healthcheck ok\nreadyz check passed\n200')"
	run sh -c "curl -sS '$URL/health' | jq -c '[.status, .checks[1].message]'"
	assert_output '["ok","no result since the container started"]'
	# without the timestamp, the file's modification time counts
	printf '# TYPE container_healthcheck_status gauge\ncontainer_healthcheck_status 0\n' >m/healthcheck.prom
	touch -d @1000 m/healthcheck.prom
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'ok
 200'
	touch m/healthcheck.prom
	run curl -sS -w ' %{http_code}' "$URL/readyz"
	assert_output 'readyz check failed
 503'
}

@test "/ is an HTML page linking the endpoints and showing the build summary, escaped" {
	mkdir m logs
	printf 'python-dev: 0 errors, 2 warnings (12s)\n<script>x</script>: 1 errors, 0 warnings (1s)\n' >logs/master-summary.log
	BUILD_LOG_DIR=$BATS_TEST_TMPDIR/logs start_server
	curl -sS -D headers -o body "$URL/"
	head_of "200 OK" "text/html; charset=utf-8" "$(wc -c <body)" keep-alive >want
	cmp headers want
	python3 - body <<'PY'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.links = []; s.pre = ''; s.inpre = False
    def handle_starttag(s, t, a):
        if t == 'a': s.links.append(dict(a)['href'])
        if t == 'pre': s.inpre = True
    def handle_endtag(s, t):
        if t == 'pre': s.inpre = False
    def handle_data(s, d):
        if s.inpre: s.pre += d
p = P(); p.feed(open(sys.argv[1]).read())
assert p.links == ['/metrics', '/healthz', '/readyz?verbose', '/health'], p.links
assert p.pre == open('logs/master-summary.log').read(), repr(p.pre)
PY
	! grep -q '<script>' body
}

@test "HEAD sends the GET headers and no body" {
	write_fixtures
	start_server
	for path in /healthz /readyz /; do
		curl -sS -D get-headers -o get-body "$URL$path"
		curl -sS -I -D head-headers -o head-body "$URL$path"
		cmp get-headers head-headers
		[ -s get-body ]
		# curl -I writes the head to -o too; nothing else arrived
		cmp get-headers head-body
	done
	curl -sS -I -o head-body "$URL/metrics"
	curl -sS -o get-body "$URL/metrics"
	grep -qx "Content-Length: $(wc -c <get-body)"$'\r' head-body
	# and nothing follows the head on the wire: the next response starts at once
	raw 'HEAD /healthz HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 keep-alive; head_of "404 Not Found" "$CT_TEXT" 10 close; printf 'not found\n'; } >want
	cmp got want
}

@test "an unknown path gets 404, whatever the method" {
	start_server
	curl -sS -D headers -o body "$URL/metrics/../etc/passwd"
	head_of "404 Not Found" "$CT_TEXT" 10 keep-alive >want
	cmp headers want
	printf 'not found\n' >want
	cmp body want
	run curl -sS -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}\n' -X DELETE "$URL/nope" "$URL/metricsx" "$URL/index.html"
	assert_success
	assert_output "$(printf '404\n404\n404')"
}

@test "another method gets 405 with Allow: GET, HEAD" {
	start_server
	curl -sS -D headers -o body -X POST "$URL/metrics"
	head_of "405 Method Not Allowed" "$CT_TEXT" 19 keep-alive "Allow: GET, HEAD" >want
	cmp headers want
	printf 'method not allowed\n' >want
	cmp body want
}

@test "a POST with a body gets 405 and the connection closes" {
	start_server
	curl -sS -D headers -o body --data 'x=1' "$URL/healthz"
	head_of "405 Method Not Allowed" "$CT_TEXT" 19 close "Allow: GET, HEAD" >want
	cmp headers want
}

@test "a request body over the cap or chunked gets 413" {
	start_server
	raw 'GET /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\nxx' >got
	{ head_of "413 Content Too Large" "$CT_TEXT" 23 close; printf 'request body too large\n'; } >want
	cmp got want
	raw 'POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >got
	cmp got want
}

@test "garbage gets 400 and the connection closes" {
	start_server
	raw 'garbage\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{ head_of "400 Bad Request" "$CT_TEXT" 12 close; printf 'Bad Request\n'; } >want
	cmp got want
	raw '\026\003\001\002\000\001\000\001\374\003\003' >got
	cmp got want
	raw 'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n' >got
	cmp got want
}

@test "a request for HTTP/2.0 gets 505" {
	start_server
	raw 'GET /healthz HTTP/2.0\r\n\r\n' >got
	{ head_of "505 HTTP Version Not Supported" "$CT_TEXT" 27 close; printf 'HTTP Version Not Supported\n'; } >want
	cmp got want
}

@test "a huge header gets 431" {
	start_server
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	curl -sS -D headers -o body -H "X-Big: $big" "$URL/healthz"
	head_of "431 Request Header Fields Too Large" "$CT_TEXT" 32 close >want
	cmp headers want
	printf 'Request Header Fields Too Large\n' >want
	cmp body want
}

@test "an over-long request line gets 414" {
	start_server
	long=$(head -c 5000 /dev/zero | tr '\0' a)
	curl -sS -D headers -o body "$URL/metrics?$long"
	head_of "414 URI Too Long" "$CT_TEXT" 13 close >want
	cmp headers want
}

@test "curl with two URLs reuses one keep-alive connection" {
	write_fixtures
	start_server
	run curl -sS -o body1 -o body2 -w '%{num_connects} %{http_code}\n' "$URL/metrics" "$URL/healthz"
	assert_success
	assert_output "$(printf '1 200\n0 200')"
	textfiles_only <body1 >got
	diff -u expected got
	printf 'ok\n' >want
	cmp body2 want
}

@test "pipelined requests are answered in order on one connection" {
	write_fixtures
	start_server
	raw 'GET /healthz HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		printf 'ok\n'
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		printf 'ok\n'
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		head_of "404 Not Found" "$CT_TEXT" 10 close
		printf 'not found\n'
	} >want
	cmp got want
}

@test "HTTP/1.0 closes after the response unless it asks for keep-alive" {
	start_server
	raw 'GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
	raw 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n' >got
	{
		head_of "200 OK" "$CT_TEXT" 3 keep-alive
		printf 'ok\n'
		head_of "200 OK" "$CT_TEXT" 3 close
		printf 'ok\n'
	} >want
	cmp got want
}

@test "HTTP/1.1 Connection: close is honoured" {
	start_server
	raw 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
}

@test "bare LF line ends are accepted" {
	start_server
	raw 'GET /healthz HTTP/1.1\nConnection: close\n\n' >got
	{ head_of "200 OK" "$CT_TEXT" 3 close; printf 'ok\n'; } >want
	cmp got want
}

@test "a missing metrics directory gets 503 with a short text body" {
	start_server --dir "$BATS_TEST_TMPDIR/missing"
	curl -sS -D headers -o body "$URL/metrics"
	head_of "503 Service Unavailable" "$CT_TEXT" 29 keep-alive >want
	cmp headers want
	printf 'metrics directory unreadable\n' >want
	cmp body want
}

@test "200 sequential requests all complete" {
	write_fixtures
	start_server
	ok=0
	for i in $(seq 200); do
		curl -sS --max-time 5 -o body "$URL/metrics" && textfiles_only <body | cmp -s - expected && ok=$((ok + 1))
	done
	assert_equal "$ok" 200
}

@test "50 concurrent requests all get the full body" {
	write_fixtures
	# a body large enough to need several writes
	for i in $(seq 2000); do
		printf 'container_build_duration_seconds{feature="f%d",status="success"} %d\n' "$i" "$i"
	done >>m/10-build.prom
	start_server
	curl -sS -o body "$URL/metrics"
	textfiles_only <body >expected
	[ "$(wc -l <expected)" -gt 2000 ]
	pids=
	for i in $(seq 50); do
		curl -sS --max-time 20 -o "body.$i" "$URL/metrics" 3>&- &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p"; done
	for i in $(seq 50); do textfiles_only <"body.$i" | cmp - expected; done
}

@test "a slow client does not block others" {
	start_server
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /heal' >&4
	run curl -sS --max-time 3 "$URL/healthz"
	exec 4>&-
	assert_success
	assert_output 'ok'
}

@test "a client that goes away mid-response does not stop the server" {
	mkdir m
	{
		printf '# HELP big Big.\n# TYPE big gauge\n'
		for i in $(seq 20000); do printf 'big{i="%d"} %d\n' "$i" "$i"; done
	} >m/big.prom
	start_server
	for i in 1 2 3; do
		printf 'GET /metrics HTTP/1.1\r\n\r\n' | socat -u - "TCP:127.0.0.1:$PORT"
	done
	run curl -sS --max-time 3 "$URL/healthz"
	assert_success
	assert_output 'ok'
	kill -0 "$HTTPD_PID"
}

# start_capped NOFILE [ARG...]: starts the server under `ulimit -n NOFILE`
# (soft and hard), so that its connection cap is a few; sets CAP to it.
start_capped() {
	local n=$1
	shift
	mkdir -p m
	(ulimit -n "$n" && exec tally-httpd --listen 127.0.0.1:0 --dir "$BATS_TEST_TMPDIR/m" \
		--port-file "$BATS_TEST_TMPDIR/port" "$@" 2>"$BATS_TEST_TMPDIR/stderr" 3>&-) &
	HTTPD_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/port" 10 || fail "tally-httpd wrote no port file"
	PORT=$(cat port)
	URL=http://127.0.0.1:$PORT
	curl -sS --max-time 10 -o body "$URL/metrics"
	CAP=$(value_of tally_httpd_connections_limit <body)
}

@test "past the connection cap a new connection takes the place of the oldest idle one, and the server recovers" {
	start_capped 40
	[ "$CAP" -ge 8 ] && [ "$CAP" -le 32 ] || fail "cap $CAP"
	sleep 1.1 # the scrape's connection is idle, and so are the ones below
	fds=()
	for i in $(seq "$CAP"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		fds+=("$fd")
	done
	sleep 1.1
	run curl -sS --max-time 3 "$URL/healthz"
	assert_success
	assert_output 'ok'
	# the oldest was closed without a response; the newest is still open
	run timeout 2 cat <&"${fds[0]}"
	assert_success
	assert_output ''
	run timeout 0.3 cat <&"${fds[$((CAP - 1))]}"
	assert_equal "$status" 124
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	curl -sS --max-time 3 -o body "$URL/metrics"
	promtool check metrics <body
	assert_equal "$(value_of tally_httpd_connections_evicted_total <body)" 1
	assert_equal "$(value_of tally_httpd_connections_refused_total <body)" 0
}

@test "the connection cap is 1,024, the soft descriptor limit raised for it as far as the hard one allows" {
	start_capped 4096
	assert_equal "$CAP" 1024
	run grep -c 'RLIMIT_NOFILE' stderr
	assert_output 0
	kill "$HTTPD_PID"; wait "$HTTPD_PID" || :
	# soft 100 with a hard limit of 4096: raised, so the cap is the most
	(ulimit -Sn 100 && ulimit -Hn 4096 && exec tally-httpd --listen 127.0.0.1:0 \
		--dir "$BATS_TEST_TMPDIR/m" --port-file "$BATS_TEST_TMPDIR/port2" 2>stderr2 3>&-) &
	HTTPD_PID=$!
	wait_for_file port2 10 || fail "no port file"
	curl -sS --max-time 10 -o body "http://127.0.0.1:$(cat port2)/metrics"
	assert_equal "$(value_of tally_httpd_connections_limit <body)" 1024
	run grep '^Max open files' "/proc/$HTTPD_PID/limits"
	[[ $output =~ ^Max\ open\ files\ +([0-9]+)\ +4096 ]] && [ "${BASH_REMATCH[1]}" -ge 1088 ] ||
		fail "limits: $output"
}

@test "when every connection is busy sending a response a new one gets 503 and is closed, and the server recovers" {
	mkdir m
	# a body no socket buffer holds whole (10 MB), so that a client that
	# does not read keeps its connection sending
	awk 'BEGIN { print "# HELP big_value Big.\n# TYPE big_value gauge"
		for (i = 0; i < 400000; i++) printf "big_value{i=\"%07d\"} %d\n", i, i }' >m/big.prom
	# a descriptor limit low enough for a cap of a few connections
	start_capped 24
	cap=$CAP
	[ "$cap" -ge 1 ] && [ "$cap" -le 16 ] || fail "cap $cap"
	run grep -c "^tally-httpd: warning: RLIMIT_NOFILE 24 with [0-9]* other descriptors open: at most $cap connections\$" stderr
	assert_output 1
	fds=()
	for i in $(seq "$cap"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET /metrics HTTP/1.1\r\n\r\n' >&"$fd"
		fds+=("$fd")
	done
	sleep 0.5
	run socat -u -T 5 "TCP:127.0.0.1:$PORT" -
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	assert_success
	assert_output "$(head_of "503 Service Unavailable" "$CT_TEXT" 17 close; printf 'too many clients')"
	run curl -sS --max-time 3 "$URL/healthz"
	assert_success
	assert_output 'ok'
	curl -sS --max-time 10 -o body "$URL/metrics"
	assert_equal "$(value_of tally_httpd_connections_refused_total <body)" 1
	assert_equal "$(value_of tally_httpd_connections_evicted_total <body)" 0
}

@test "a half-sent request gets 408 after the head timeout, an idle connection is closed" {
	start_server --head-timeout 1 --idle-timeout 2
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /heal' >&4
	start=$SECONDS
	run timeout 10 cat <&4
	exec 4>&-
	assert_success
	assert_output "$(head_of "408 Request Timeout" "$CT_TEXT" 16 close; printf 'Request Timeout')"
	[ $((SECONDS - start)) -le 3 ]
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	start=$SECONDS
	run timeout 10 cat <&4
	exec 4>&-
	assert_success
	assert_output ''
	elapsed=$((SECONDS - start))
	[ "$elapsed" -ge 1 ] && [ "$elapsed" -le 4 ] || fail "closed after ${elapsed}s, want about 2"
}

@test "a client that stalls mid-request does not delay another client's scrape" {
	write_fixtures
	start_server
	exec 4<>"/dev/tcp/127.0.0.1/$PORT"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /metrics HTTP/1.1\r\nHost: x' >&4
	printf 'GET /metrics HTTP/1.1\r\n\r\n' >&5  # and never reads the answer
	run curl -sS --max-time 2 -w '%{time_total}' -o body "$URL/metrics"
	exec 4>&- 5>&-
	assert_success
	awk -v t="$output" 'BEGIN { exit !(t < 0.5) }'
	textfiles_only <body | cmp - expected
}

@test "SIGTERM and SIGINT stop the server with status 0" {
	for sig in TERM INT; do
		start_server
		kill -"$sig" "$HTTPD_PID"
		rc=0
		wait "$HTTPD_PID" || rc=$?
		HTTPD_PID=
		assert_equal "SIG$sig exit $rc" "SIG$sig exit 0"
	done
}

@test "basic authentication protects /metrics, /health and /, not the probes; SIGHUP reloads it" {
	write_fixtures
	printf 'prom:s3cret\n' >auth
	start_server --auth-file "$BATS_TEST_TMPDIR/auth"
	for path in /metrics /health /; do
		curl -sS -D headers -o body "$URL$path"
		head_of "401 Unauthorized" "$CT_TEXT" 13 keep-alive 'WWW-Authenticate: Basic realm="tally", charset="UTF-8"' >want
		cmp headers want
		run curl -sS -o /dev/null -w '%{http_code}' -u prom:wrong "$URL$path"
		assert_output 401
		run curl -sS -o /dev/null -w '%{http_code}' -u prom:s3cret "$URL$path"
		assert_output 200
	done
	run curl -sS "$URL/healthz" "$URL/readyz"
	assert_output "$(printf 'ok\nok')"
	printf 'prom:n3w\n' >auth
	kill -HUP "$HTTPD_PID"
	for _ in $(seq 50); do
		[ "$(curl -sS -o /dev/null -w '%{http_code}' -u prom:n3w "$URL/metrics")" = 200 ] && break
		sleep 0.1
	done
	run curl -sS -o /dev/null -w '%{http_code}' -u prom:n3w "$URL/metrics"
	assert_output 200
	run curl -sS -o /dev/null -w '%{http_code}' -u prom:s3cret "$URL/metrics"
	assert_output 401
	kill -0 "$HTTPD_PID"
}

@test "the start line names the address and directory, and the port file holds the port" {
	start_server
	assert_equal "$(cat stderr)" "tally-httpd: listening on 127.0.0.1:$PORT, serving $BATS_TEST_TMPDIR/m"
	printf '%s\n' "$PORT" >want
	cmp port want
	[ ! -e port.tmp ]
}

@test "--listen [::1]:PORT serves over IPv6" {
	[ -n "$(sed -n '/^0\{31\}1 /p' /proc/net/if_inet6 2>/dev/null)" ] || skip "no IPv6 loopback"
	mkdir m
	tally-httpd --listen '[::1]:0' --dir m --port-file port 2>stderr 3>&- &
	HTTPD_PID=$!
	wait_for_file port 10
	port=$(cat port)
	run curl -sS --max-time 3 "http://[::1]:$port/healthz"
	assert_success
	assert_output 'ok'
	assert_equal "$(cat stderr)" "tally-httpd: listening on [::1]:$port, serving m"
}

@test "without --listen it serves :METRICS_PORT on every interface, dir from TALLY_METRICS_DIR" {
	mkdir metrics
	printf '# HELP one One.\n# TYPE one gauge\none 1\n' >metrics/one.prom
	port=$(free_port)
	METRICS_PORT=$port TALLY_METRICS_DIR=$BATS_TEST_TMPDIR/metrics \
		tally-httpd --port-file port 2>stderr 3>&- &
	HTTPD_PID=$!
	wait_for_file port 10
	assert_equal "$(cat port)" "$port"
	run sh -c "curl -sS --max-time 3 http://127.0.0.1:$port/metrics | grep '^one '"
	assert_success
	assert_output "one 1"
	run cat stderr
	assert_output --regexp "^tally-httpd: listening on (\[::\]|0\.0\.0\.0):$port, serving $BATS_TEST_TMPDIR/metrics\$"
}

@test "a second server on the same port exits 111" {
	start_server
	run tally-httpd --listen "127.0.0.1:$PORT" --dir m
	assert_failure 111
	assert_output --regexp "^tally-httpd: fatal: unable to listen on 127\.0\.0\.1:$PORT: Address (already )?in use\$"
}

@test "usage errors exit 100 with a usage line" {
	syn='tally-httpd [--listen [ADDR]:PORT] [--dir DIR]... [--port-file FILE] [--auth-file FILE]'
	run tally-httpd --bogus
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (unexpected argument '--bogus')"
	run tally-httpd extra
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (unexpected argument 'extra')"
	run tally-httpd --dir
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (--dir needs a value)"
	for bad in 9090 localhost:9090 :65536 '[::1]9090' 1.2.3:80; do
		run tally-httpd --listen "$bad"
		assert_failure 100
		assert_output "tally-httpd: usage: $syn (--listen '$bad' is not [ADDR]:PORT)"
	done
	METRICS_PORT=http run tally-httpd
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (METRICS_PORT 'http' is not a port)"
	run tally-httpd --idle-timeout 0
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (--idle-timeout '0' is not 1 to 3600 seconds)"
	run tally-httpd --health-max-age 1s
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (--health-max-age '1s' is not 0 to 604800 seconds)"
	TALLY_HEALTH_MAX_AGE=-1 run tally-httpd
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (TALLY_HEALTH_MAX_AGE '-1' is not 0 to 604800 seconds)"
	run tally-httpd --dir a --dir b --dir c --dir d --dir e --dir f --dir g --dir h --dir i
	assert_failure 100
	assert_output "tally-httpd: usage: $syn (more than 8 --dir)"
	run tally-httpd --listen 127.0.0.1:0 --auth-file "$BATS_TEST_TMPDIR/none"
	assert_failure 111
	assert_output "tally-httpd: fatal: unable to read $BATS_TEST_TMPDIR/none: No such file or directory"
}

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr tally-httpd --help
	assert_success
	assert_equal "$stderr" ''
	assert_line --index 0 'usage: tally-httpd [--listen [ADDR]:PORT] [--dir DIR]... [--port-file FILE] [--auth-file FILE]'
	assert_line --index 1 '       [--idle-timeout SECONDS] [--head-timeout SECONDS] [--health-max-age SECONDS]'
	assert_line --index 2 '       tally-httpd --probe URL [--probe-timeout SECONDS]'
	assert_line --index 3 '       tally-httpd --help'
}
