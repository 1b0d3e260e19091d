#!/usr/bin/env bats
# End to end: a real Prometheus (2.42, default scrape settings but for a 1 s
# interval) scrapes two tally-httpd servers on 127.0.0.1. Job "openmetrics"
# serves a realistic build directory that OpenMetrics can express exactly
# (its container_build_info gauge becomes an OpenMetrics info family), so
# Prometheus' default Accept header gets OpenMetrics 1.0; job "text" adds a
# gauge named *_created (a suffix OpenMetrics reserves), so the same header
# gets text 0.0.4. Which format each job got is read back from
# tally_httpd_scrapes_total{format,encoding}, as Prometheus stored it.

load ../lib/common
load ../lib/prometheus

# fixture DIR [EXTRA]: writes a build's metrics directory: build metrics with
# a per-command duration histogram, the healthcheck result and disk usage.
# EXTRA 1 adds container_image_created (not expressible in OpenMetrics).
fixture() {
	mkdir -p "$1"
	cat >"$1/build.prom" <<-'EOF'
		# HELP container_build_duration_seconds Duration of a feature's installation.
		# TYPE container_build_duration_seconds gauge
		container_build_duration_seconds{feature="node",status="success"} 41.2
		container_build_duration_seconds{feature="optional-mirror",status="failure"} 0.4
		container_build_duration_seconds{feature="python-dev",status="success"} 12.5
		# HELP container_build_errors_total Errors logged while installing a feature.
		# TYPE container_build_errors_total counter
		container_build_errors_total{feature="node"} 0
		container_build_errors_total{feature="optional-mirror"} 1
		container_build_errors_total{feature="python-dev"} 0
		# HELP container_build_warnings_total Warnings logged while installing a feature.
		# TYPE container_build_warnings_total counter
		container_build_warnings_total{feature="node"} 3
		container_build_warnings_total{feature="optional-mirror"} 0
		container_build_warnings_total{feature="python-dev"} 7
		# HELP container_build_command_duration_seconds Duration of each logged command.
		# TYPE container_build_command_duration_seconds histogram
		container_build_command_duration_seconds_bucket{feature="node",le="0.1"} 2
		container_build_command_duration_seconds_bucket{feature="node",le="1"} 5
		container_build_command_duration_seconds_bucket{feature="node",le="10"} 8
		container_build_command_duration_seconds_bucket{feature="node",le="+Inf"} 9
		container_build_command_duration_seconds_sum{feature="node"} 41.2
		container_build_command_duration_seconds_count{feature="node"} 9
		container_build_command_duration_seconds_bucket{feature="python-dev",le="0.1"} 0
		container_build_command_duration_seconds_bucket{feature="python-dev",le="1"} 1
		container_build_command_duration_seconds_bucket{feature="python-dev",le="10"} 3
		container_build_command_duration_seconds_bucket{feature="python-dev",le="+Inf"} 3
		container_build_command_duration_seconds_sum{feature="python-dev"} 12.5
		container_build_command_duration_seconds_count{feature="python-dev"} 3
		# HELP container_features_installed Features installed in the image.
		# TYPE container_features_installed gauge
		container_features_installed 3
	EOF
	cat >"$1/healthcheck.prom" <<-'EOF'
		# HELP container_healthcheck_status Current health status (1=healthy, 0=unhealthy)
		# TYPE container_healthcheck_status gauge
		container_healthcheck_status 1
		# HELP container_healthcheck_duration_seconds Time taken for last healthcheck
		# TYPE container_healthcheck_duration_seconds gauge
		container_healthcheck_duration_seconds 0.012
		# HELP container_healthcheck_check_status Result of each check of the last healthcheck (1=ok, 0=failed)
		# TYPE container_healthcheck_check_status gauge
		container_healthcheck_check_status{check="disk:/data"} 1
		container_healthcheck_check_status{check="tcp:127.0.0.1:8080"} 1
	EOF
	cat >"$1/disk.prom" <<-'EOF'
		# HELP container_disk_usage_bytes Bytes used under each configured path.
		# TYPE container_disk_usage_bytes gauge
		container_disk_usage_bytes{path="/data"} 1.048576e+07
		container_disk_usage_bytes{path="/var/log/container-build"} 40960
	EOF
	cat >"$1/info.prom" <<-'EOF'
		# HELP container_build_info The image's build, as labels.
		# TYPE container_build_info gauge
		container_build_info{base="debian:bookworm",version="1.4.2"} 1
	EOF
	if [ "${2-}" = 1 ]; then
		cat >"$1/created.prom" <<-'EOF'
			# HELP container_image_created Unix time the image was created.
			# TYPE container_image_created gauge
			container_image_created 1.7e+09
		EOF
	fi
}

# start_httpd NAME: serves $BATS_FILE_TMPDIR/NAME on a free port (httpd_serve).
start_httpd() {
	httpd_serve "$1" "$BATS_FILE_TMPDIR/$1"
}

setup_file() {
	tally_setup
	fixture "$BATS_FILE_TMPDIR/om"
	fixture "$BATS_FILE_TMPDIR/text" 1
	start_httpd om || return 1
	start_httpd text || return 1

	# Only the interval and timeout differ from Prometheus' defaults: no
	# scrape headers, no honor_labels, the default Accept and Accept-Encoding.
	cat >"$BATS_FILE_TMPDIR/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  scrape_timeout: 1s
		scrape_configs:
		  - job_name: openmetrics
		    static_configs:
		      - targets: ['127.0.0.1:$(cat "$BATS_FILE_TMPDIR/om.port")']
		  - job_name: text
		    static_configs:
		      - targets: ['127.0.0.1:$(cat "$BATS_FILE_TMPDIR/text.port")']
	EOF
	promtool check config "$BATS_FILE_TMPDIR/prometheus.yml" >/dev/null || return 1

	prom_start "$BATS_FILE_TMPDIR/prometheus.yml" "$BATS_FILE_TMPDIR"
}

teardown_file() {
	stop_recorded prometheus om text
}

setup() {
	read -r PROM_PORT <"$BATS_FILE_TMPDIR/prometheus.port"
}

# value PROMQL: prints the value of PROMQL's only result ("" if none).
value() {
	prom_query "$1" | jq -r '.data.result[0].value[1] // ""'
}

# series_of JOB: prints every series Prometheus holds for JOB from the
# textfiles (name{labels} with labels sorted, job and instance left out).
series_of() {
	curl -fsS --get "http://127.0.0.1:$PROM_PORT/api/v1/series" \
		--data-urlencode "match[]={job=\"$1\",__name__=~\"container_(build|features|healthcheck|disk|image)_.*\"}" |
		jq -r '.data[] | .__name__ + "{" + ([to_entries | sort_by(.key)[]
			| select(.key != "__name__" and .key != "job" and .key != "instance")
			| "\(.key)=\"\(.value)\""] | join(",")) + "}"' | sed 's/{}$//' | sort
}

# series_in DIR: prints the series of the fixture files of DIR, the same way.
series_in() {
	cat "$BATS_FILE_TMPDIR/$1"/*.prom | grep -v '^#' | sed 's/ [^ ]*$//' | sort
}

@test "Prometheus scrapes both jobs with up == 1 and no scrape error" {
	wait_for_series 'sum by (job) (tally_httpd_scrapes_total) >= 3'
	wait_for_series 'count(up == 1) == 2'
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/targets' |
		jq -r '.data.activeTargets[] | [.labels.job, .health, .lastError] | @tsv' | sort"
	assert_success
	assert_output "$(printf 'openmetrics\tup\t\ntext\tup\t')"
	assert_equal "$(value 'up{job="openmetrics"}')" 1
	assert_equal "$(value 'up{job="text"}')" 1
}

@test "Prometheus' own counters show no rejected sample in either job" {
	wait_for_series 'sum by (job) (tally_httpd_scrapes_total) >= 3'
	curl -fsS -o prom-metrics "http://127.0.0.1:$PROM_PORT/metrics"
	run awk '/^prometheus_target_scrapes_(exceeded_sample_limit|sample_duplicate_timestamp|sample_out_of_bounds|sample_out_of_order|exemplar_out_of_order)_total / { print $1, $2 }' prom-metrics
	assert_success
	assert_output "$(printf '%s 0\n' prometheus_target_scrapes_exceeded_sample_limit_total \
		prometheus_target_scrapes_exemplar_out_of_order_total \
		prometheus_target_scrapes_sample_duplicate_timestamp_total \
		prometheus_target_scrapes_sample_out_of_bounds_total \
		prometheus_target_scrapes_sample_out_of_order_total)"
}

@test "the openmetrics job got OpenMetrics 1.0, gzip, on every scrape" {
	wait_for_series 'tally_httpd_scrapes_total{job="openmetrics",format="openmetrics",encoding="gzip"} >= 3'
	run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/query' \
		--data-urlencode 'query=tally_httpd_scrapes_total{job=\"openmetrics\"} > 0' |
		jq -r '.data.result[].metric | .format + \" \" + .encoding'"
	assert_success
	assert_output 'openmetrics gzip'
}

@test "the text job got text 0.0.4, gzip, on every scrape" {
	wait_for_series 'tally_httpd_scrapes_total{job="text",format="text",encoding="gzip"} >= 3'
	run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/query' \
		--data-urlencode 'query=tally_httpd_scrapes_total{job=\"text\"} > 0' |
		jq -r '.data.result[].metric | .format + \" \" + .encoding'"
	assert_success
	assert_output 'text gzip'
}

@test "every series of the openmetrics job's directory is stored exactly" {
	wait_for_series 'container_features_installed{job="openmetrics"}'
	run series_of openmetrics
	assert_success
	assert_output "$(series_in om)"
	assert_equal "$(value 'container_build_errors_total{job="openmetrics",feature="optional-mirror"}')" 1
	assert_equal "$(value 'container_build_command_duration_seconds_count{job="openmetrics",feature="node"}')" 9
	assert_equal "$(value 'container_disk_usage_bytes{job="openmetrics",path="/data"}')" 10485760
	assert_equal "$(value 'container_build_info{job="openmetrics",version="1.4.2"}')" 1
}

@test "every series of the text job's directory is stored exactly" {
	wait_for_series 'container_image_created{job="text"}'
	run series_of text
	assert_success
	assert_output "$(series_in text)"
	assert_equal "$(value 'container_build_info{job="text",version="1.4.2"}')" 1
	assert_equal "$(value 'container_image_created{job="text"}')" 1700000000
	assert_equal "$(value 'container_build_warnings_total{job="text",feature="python-dev"}')" 7
}

@test "the built-in families reach Prometheus in both formats" {
	wait_for_series 'container_uptime_seconds{job="text"}'
	wait_for_series 'container_uptime_seconds{job="openmetrics"}'
	for job in openmetrics:om:4 text:text:5; do
		IFS=: read -r name dir files <<<"$job"
		assert_equal "$(value "count(process_resident_memory_bytes{job=\"$name\"} > 0)")" 1
		assert_equal "$(value "count(process_cpu_seconds_total{job=\"$name\"})")" 1
		assert_equal "$(value "count(tally_textfile_scrape_error{job=\"$name\"} == 0)")" "$files"
		assert_equal "$(value "sum(tally_textfile_conflicts{job=\"$name\"}) or vector(0)")" 0
		assert_equal "$(ls "$BATS_FILE_TMPDIR/$dir"/*.prom | wc -l)" "$files"
	done
}
