#!/usr/bin/env bats
# Exemplars end to end: a traced build records the per-command duration
# histogram with each command's trace_id as an exemplar; tally-httpd serves
# it in OpenMetrics; a real Prometheus with exemplar storage scrapes it and
# gives the exemplars back through its API.

load ../lib/common
load ../lib/prometheus

setup_file() {
	tally_setup
	export BUILD_LOG_DIR=$BATS_FILE_TMPDIR/logs TALLY_METRICS_DIR=$BATS_FILE_TMPDIR/metrics
	export OTEL_ENABLED=true ENABLE_JSON_LOGGING=true
	mkdir -p "$TALLY_METRICS_DIR"
	# Two RUN steps: a quick and a slow command, and a failing one.
	dash -c '. "$TALLY_HOME/lib/base/logging.sh"
		log_feature_start fast 1 && log_command "Quick" true && log_feature_end' || return 1
	dash -c '. "$TALLY_HOME/lib/base/logging.sh"
		log_feature_start slow 1 && log_command "Nap" sleep 0.6
		log_command "Break" sh -c "exit 3"; log_feature_end' || return 1

	httpd_serve httpd "$TALLY_METRICS_DIR" || return 1
	read -r HTTPD_PORT <"$BATS_FILE_TMPDIR/httpd.port"

	cat >"$BATS_FILE_TMPDIR/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  scrape_timeout: 1s
		scrape_configs:
		  - job_name: build
		    static_configs:
		      - targets: ['127.0.0.1:$HTTPD_PORT']
	EOF
	PROM_FLAGS=--enable-feature=exemplar-storage prom_start "$BATS_FILE_TMPDIR/prometheus.yml" "$BATS_FILE_TMPDIR"
}

teardown_file() {
	stop_recorded prometheus httpd
}

setup() {
	read -r PROM_PORT <"$BATS_FILE_TMPDIR/prometheus.port"
	read -r HTTPD_PORT <"$BATS_FILE_TMPDIR/httpd.port"
	LOGS=$BATS_FILE_TMPDIR/logs
}

# command_spans: prints "trace_id span_id" of every recorded command span.
command_spans() {
	jq -r '.resourceSpans[].scopeSpans[].spans[]
		| select(any(.attributes[]; .key == "process.exit.code"))
		| .traceId + " " + .spanId' "$LOGS/traces.jsonl" | sort
}

@test "the OpenMetrics body carries each command's trace as a bucket exemplar" {
	curl -fsS -o body -D head -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
		"http://127.0.0.1:$HTTPD_PORT/metrics"
	run grep -i '^content-type:' head
	assert_output --regexp '^[Cc]ontent-[Tt]ype: application/openmetrics-text; version=1\.0\.0; charset=utf-8'
	# Every exemplar of the command histogram, as "trace_id span_id".
	run sh -c "sed -n 's/^container_build_command_duration_seconds_bucket{.*} [0-9]* # {span_id=\"\\([0-9a-f]*\\)\",trace_id=\"\\([0-9a-f]*\\)\"} [0-9.e+-]* [0-9.]*\$/\\2 \\1/p' body | sort"
	assert_success
	assert_output "$(command_spans)"
	[ "${#lines[@]}" -eq 3 ]
	run tail -n 1 body
	assert_output "# EOF"
}

@test "the text 0.0.4 body with the same data passes promtool" {
	curl -fsS -o body "http://127.0.0.1:$HTTPD_PORT/metrics"
	run promtool check metrics <body
	assert_success
	assert_output ""
}

@test "a real Prometheus stores the exemplars and gives back the build's trace ids" {
	local i answer=''
	for i in $(seq 300); do
		answer=$(curl -fsS --get "http://127.0.0.1:$PROM_PORT/api/v1/query_exemplars" \
			--data-urlencode 'query=container_build_command_duration_seconds_bucket' \
			--data-urlencode "start=$(($(date +%s) - 600))" --data-urlencode "end=$(($(date +%s) + 60))")
		[ "$(jq '[.data[].exemplars[]] | length' <<<"$answer")" -ge 3 ] && break
		sleep 0.1
	done
	run jq -r '[.data[].exemplars[].labels | .trace_id + " " + .span_id] | unique | .[]' <<<"$answer"
	assert_success
	assert_output "$(command_spans)"
	run curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/targets"
	run jq -r '.data.activeTargets[] | [.health, .lastError] | @tsv' <<<"$output"
	assert_output "up	"
}
