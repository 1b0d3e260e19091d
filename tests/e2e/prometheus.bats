#!/usr/bin/env bats
# End to end: the demo build's metrics, served by tally-httpd on 127.0.0.1,
# scraped by a real Prometheus server and read back through its HTTP API.

load ../lib/common
load ../lib/prometheus

setup_file() {
	tally_setup
	export DEMO_OUT=$BATS_FILE_TMPDIR/demo DEMO_TALLY_HOME=$TALLY_BUILD
	sh "$TALLY_ROOT/examples/demo-build.sh" >"$BATS_FILE_TMPDIR/demo.out" 2>&1 || {
		cat "$BATS_FILE_TMPDIR/demo.out" >&3
		return 1
	}

	httpd_serve httpd "$DEMO_OUT/metrics" || return 1
	read -r HTTPD_PORT <"$BATS_FILE_TMPDIR/httpd.port"

	cat >"$BATS_FILE_TMPDIR/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  scrape_timeout: 1s
		scrape_configs:
		  - job_name: tally
		    static_configs:
		      - targets: ['127.0.0.1:$HTTPD_PORT']
	EOF
	promtool check config "$BATS_FILE_TMPDIR/prometheus.yml" >/dev/null || return 1

	prom_start "$BATS_FILE_TMPDIR/prometheus.yml" "$BATS_FILE_TMPDIR"
}

teardown_file() {
	stop_recorded prometheus httpd
}

setup() {
	read -r PROM_PORT <"$BATS_FILE_TMPDIR/prometheus.port"
	read -r HTTPD_PORT <"$BATS_FILE_TMPDIR/httpd.port"
	DEMO_OUT=$BATS_FILE_TMPDIR/demo
}

# qjq PROMQL FILTER: runs PROMQL and prints jq -r FILTER of the answer.
qjq() {
	prom_query "$1" | jq -r "$2"
}

@test "the demo build prints its summary and the scraped metrics" {
	run cat "$BATS_FILE_TMPDIR/demo.out"
	assert_line "== build summary =="
	assert_line --regexp '^tally-helpers +success +[0-9]+\.[0-9] +[0-9]+ +0 +0$'
	assert_line --regexp '^legacy-parser +success +[0-9]+\.[0-9] +[0-9]+ +0 +[1-9][0-9]*$'
	assert_line --regexp '^optional-mirror +failure +[0-9]+\.[0-9] +[0-9]+ +1 +0$'
	assert_line --regexp '^package +success +[0-9]+\.[0-9] +[0-9]+ +0 +0$'
	assert_line --regexp '^== scraped http://127\.0\.0\.1:[0-9]+/metrics ==$'
}

@test "every JSON line of the demo build parses and carries one correlation id" {
	run sh -c "cat '$DEMO_OUT'/logs/json/*.jsonl | jq -e -r '.correlation_id' | sort -u"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^build-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$ ]]
}

@test "the /metrics body of tally-httpd passes promtool check metrics" {
	curl -fsS -o "$BATS_TEST_TMPDIR/body" "http://127.0.0.1:$HTTPD_PORT/metrics"
	run promtool check metrics <"$BATS_TEST_TMPDIR/body"
	assert_success
	assert_output ""
}

@test "Prometheus scrapes tally-httpd: the target is up" {
	wait_for_series 'up{job="tally"} == 1'
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/targets' | jq -r '.data.activeTargets[] | [.health, .lastError] | @tsv'"
	assert_success
	assert_output "up	"
}

@test "Prometheus has a container_build_duration_seconds series for every demo feature" {
	wait_for_series 'container_build_duration_seconds'
	run qjq container_build_duration_seconds '.data.result[].metric | .feature + " " + .status'
	assert_success
	output=$(printf '%s\n' "$output" | sort)
	expected=$(sed 's/: \([0-9]*\) errors.*/ \1/' "$DEMO_OUT/logs/master-summary.log" |
		awk '{ print $1, ($2 > 0 ? "failure" : "success") }' | sort)
	assert_output "$expected"
	[ "${#lines[@]}" -eq 4 ]
}

@test "Prometheus sees the build's errors, warnings and feature count" {
	wait_for_series 'container_features_installed'
	run qjq container_features_installed '.data.result[0].value[1]'
	assert_output 4
	run qjq 'container_build_errors_total{feature="optional-mirror"}' '.data.result[0].value[1]'
	assert_output 1
	run qjq 'container_build_warnings_total{feature="legacy-parser"} > 0' '.data.result | length'
	assert_output 1
	run qjq container_healthcheck_status '.data.result[0].value[1]'
	assert_output 1
}
