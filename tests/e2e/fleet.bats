#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by run --separate-stderr
# End to end: a fleet of 24 "containers", each a metrics directory written by
# the real tally-metric, the real healthcheck and the real logging library,
# served by its own tally-httpd on 127.0.0.1 (in its own PID namespace where
# unshare allows, so that its first process, and so container_start_time_seconds,
# is its own), scraped by a real Prometheus with examples/observability's
# rules loaded. Every dashboard query and every rule is evaluated through
# Prometheus' HTTP API, the alerts the fleet's state implies are the ones
# firing, and the runbooks' diagnosis commands run against the fleet.
#
# Prometheus scrapes and evaluates every second, and loads a copy of
# tally-rules.yml whose `for:` durations are read as seconds instead of
# minutes (`for: 5m` becomes `for: 5s`), so the alerts settle within
# seconds; thresholds and windows are unchanged. promtool test rules
# (tests/helpers/rules.bats) tests the real durations.

load ../lib/common
load ../lib/fleet

# The fleet: NAME JOB BUILD HEALTH EXTRA.
#   BUILD:  ok (3 features built), fail (feature app failed), slow (toolchain
#           took 900 s), edge (toolchain took exactly the 600 s threshold),
#           none (no build.prom)
#   HEALTH: ok, fail (a real failing check), slow (the healthcheck took 15 s),
#           stale (last run 900 s ago), none (no healthcheck.prom)
#   EXTRA:  host (no PID namespace: the host's uptime), restart1, restart3
#           (restarted once / three times), disk (12 GiB used on /data),
#           down (its exporter is stopped), - (nothing)
fleet_spec() {
	cat <<-'EOF'
		c01 tally ok ok host
		c02 tally ok ok host
		c03 tally ok ok -
		c04 tally fail ok -
		c05 tally fail ok -
		c06 tally slow ok -
		c07 tally edge ok -
		c08 tally ok fail -
		c09 tally ok fail -
		c10 tally ok slow -
		c11 tally ok stale -
		c12 tally ok none -
		c13 tally none ok -
		c14 tally ok ok restart1
		c15 tally ok ok restart3
		c16 tally ok ok disk
		c17 tally ok ok down
		c18 tally ok ok -
		c19 tally ok ok -
		c20 tally ok ok -
		k01 tally-canary fail fail -
		k02 tally-canary fail ok -
		k03 tally-canary ok fail -
		k04 tally-canary ok ok -
	EOF
}

# expected_alerts: the firing alerts the fleet's state implies, one line
# "ALERTNAME TARGET DETAIL" per alert (TARGET: the container, or the job for
# fleet alerts), sorted. Thresholds: tally-rules.yml. Restarts count only
# when containers have their own PID namespace ($F/ns is not empty).
expected_alerts() {
	local ns=''
	[ -s "$F/ns" ] && ns=1
	fleet_spec | awk -v ns="$ns" '
		{ job[$1] = $2 }
		$3 == "fail" { print "ContainerBuildErrors", $1, "app" }
		$3 == "slow" { print "ContainerBuildSlow", $1, "toolchain" }
		$3 == "none" && $5 != "down" { print "ContainerMetricsMissing", $1, "build" }
		$4 == "fail" { print "ContainerUnhealthy", $1, "-" }
		$4 == "slow" { print "ContainerHealthcheckSlow", $1, "-" }
		$4 == "stale" { print "ContainerMetricsStale", $1, "-" }
		$4 == "none" && $5 != "down" { print "ContainerMetricsMissing", $1, "healthcheck" }
		ns && ($5 == "restart1" || $5 == "restart3") { print "ContainerRestarted", $1, "-" }
		ns && $5 == "restart3" { print "ContainerFlapping", $1, "-" }
		$5 == "disk" { print "ContainerDiskUsageHigh", $1, "/data" }
		$5 == "down" && $2 == "tally" { print "ContainerExporterDown", $1, "-" }
		# fleet ratios, over the containers that report each family
		$5 != "down" && $4 != "none" { hc[$2]++; if ($4 == "fail") bad[$2]++ }
		$5 != "down" && $3 != "none" { bc[$2]++; if ($3 == "fail") failed[$2]++ }
		END {
			for (j in hc) if (bad[j] / hc[j] > 0.2) print "FleetUnhealthyRatioHigh", j, "-"
			for (j in bc) if (failed[j] / bc[j] > 0.25) print "FleetBuildFailureRatioHigh", j, "-"
		}
	' | LC_ALL=C sort
}

# firing_alerts: the alerts Prometheus fires now, in expected_alerts' form.
firing_alerts() {
	prom_api alerts | jq -r --slurpfile names "$F/names.json" '
		.data.alerts[] | select(.state == "firing") | .labels |
		[.alertname,
		 (if .instance then ($names[0][.instance] // .instance) else .job end),
		 (.feature // .path // .missing // "-")] | join(" ")' | LC_ALL=C sort
}

# build_image KIND: a real build with the logging library into $F/builds/KIND
# (logs/ and metrics/build.prom): features base, toolchain (a compiler
# warning) and app, which fails when KIND is fail.
build_image() {
	local kind=$1 app_cmd='echo "installed app 1.4.0"'
	[ "$kind" = fail ] && app_cmd='echo "E: Unable to locate package libfoo1" >&2; exit 100'
	mkdir -p "$F/builds/$kind/metrics"
	BUILD_LOG_DIR=$F/builds/$kind/logs TALLY_METRICS_DIR=$F/builds/$kind/metrics \
		ENABLE_JSON_LOGGING=true BUILD_CORRELATION_ID=build-fleet-$kind APP_CMD=$app_cmd \
		sh -c '
			. "$TALLY_HOME/lib/base/logging.sh"
			log_feature_start base 12
			log_command "Installing the base packages" sh -c "echo ca-certificates curl"
			log_feature_end
			log_feature_start toolchain 14.2
			log_command "Compiling the parser" sh -c "echo \"parser.c:8:23: warning: comparison of integer expressions of different signedness\" >&2"
			log_feature_end
			log_feature_start app 1.4.0
			log_command "Installing the app" sh -c "$APP_CMD"
			log_feature_end
		' >"$F/builds/$kind.out" 2>&1
}

# metric FILE ARGS...: the real tally-metric on FILE.
metric() {
	local file=$1
	shift
	"$TALLY_BUILD/bin/tally-metric" "$1" -f "$file" "${@:2}"
}

# make_container NAME BUILD HEALTH EXTRA: fills $F/c/NAME/metrics.
make_container() {
	local name=$1 build=$2 health=$3 extra=$4 d='' kind=ok now=''
	d=$F/c/$name/metrics
	mkdir -p "$d"
	now=$(date +%s)
	[ "$build" = fail ] && kind=fail
	echo "$kind" >"$F/c/$name/kind"
	if [ "$build" != none ]; then
		cp "$F/builds/$kind/metrics/build.prom" "$d/build.prom"
		case $build in
		slow) metric "$d/build.prom" set --label feature=toolchain --label status=success container_build_duration_seconds 900 ;;
		edge) metric "$d/build.prom" set --label feature=toolchain --label status=success container_build_duration_seconds 600 ;;
		esac
		# The families the logging library may not write (yet): added
		# only when the real build did not.
		if ! grep -q '^# TYPE container_build_command_duration_seconds ' "$d/build.prom"; then
			metric "$d/build.prom" observe --help-text "Duration of the commands run by log_command" \
				--label feature=base container_build_command_duration_seconds 4.2
			metric "$d/build.prom" observe --label feature=toolchain container_build_command_duration_seconds 41
			metric "$d/build.prom" observe --label feature=app container_build_command_duration_seconds 0.3
		fi
		grep -q '^# TYPE container_build_info ' "$d/build.prom" ||
			metric "$d/build.prom" set --help-text "Build identity" --label correlation_id="build-fleet-$kind" \
				--label version=1.4.0 --label base_image=debian:bookworm-slim container_build_info 1
		grep -q '^# TYPE container_build_last_finished_timestamp_seconds ' "$d/build.prom" ||
			metric "$d/build.prom" set --help-text "Unix time the build's last feature finished" \
				container_build_last_finished_timestamp_seconds $((now - 3600))
	fi
	metric "$d/disk.prom" set --help-text "Bytes used under each watched path" \
		--label path=/ container_disk_usage_bytes 2147483648
	[ "$extra" = disk ] && metric "$d/disk.prom" set --label path=/data container_disk_usage_bytes 12884901888
	if [ "$health" != none ]; then
		TALLY_METRICS_DIR=$d "$TALLY_BUILD/bin/healthcheck" --dir "$F/checks/$health" \
			>"$F/c/$name/healthcheck.out" 2>&1 || true
		echo "$F/checks/$health" >"$F/c/$name/checks"
		case $health in
		slow) metric "$d/healthcheck.prom" set container_healthcheck_duration_seconds 15 ;;
		stale) metric "$d/healthcheck.prom" set container_healthcheck_last_run_timestamp_seconds $((now - 900)) ;;
		esac
	fi
}

# exporter_start NAME LISTEN: starts NAME's tally-httpd (in its own PID
# namespace unless NAME is a host container or unshare is unavailable) and
# waits (10 s) for its port file. Records $F/c/NAME/pid (the process to
# stop) and, under unshare, $F/c/NAME/wrapper.
exporter_start() {
	local name=$1 listen=$2 c=$F/c/$1 pid='' child=''
	local -a ns=()
	[ -s "$F/ns" ] && [ "$(cat "$c/extra")" != host ] && read -ra ns <"$F/ns"
	rm -f "$c/port"
	"${ns[@]}" "$TALLY_BUILD/bin/tally-httpd" --listen "$listen" --dir "$c/metrics" \
		--port-file "$c/port" >>"$c/httpd.log" 2>&1 3>&- &
	pid=$!
	wait_for_file "$c/port" 10 || return 1
	if [ "${#ns[@]}" -gt 0 ]; then
		echo "$pid" >"$c/wrapper"
		for _ in $(seq 100); do
			child=$(ps -o pid= --ppid "$pid" | tr -d ' ')
			[ -n "$child" ] && break
			sleep 0.05
		done
		pid=$child
	fi
	echo "$pid" >"$c/pid"
}

# exporter_stop NAME: stops NAME's tally-httpd (and its unshare) by PID and
# waits (up to 5 s each) until they are gone.
exporter_stop() {
	local c=$F/c/$1 p='' pid=''
	for p in pid wrapper; do
		[ -s "$c/$p" ] || continue
		pid=$(cat "$c/$p")
		kill "$pid" 2>/dev/null || true
		# reaps it when it is this shell's child; else polls
		wait "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		rm -f "$c/$p"
	done
}

# start_time NAME: the container_start_time_seconds Prometheus has for NAME.
start_time() {
	prom_query "container_start_time_seconds{instance=\"127.0.0.1:$(cat "$F/c/$1/port")\"}" |
		jq -r '.data.result[0].value[1] // ""'
}

# restart NAME: stops and starts NAME on the same port, then waits (15 s)
# until Prometheus has scraped its new start time.
restart() {
	local name=$1 before='' after='' port=''
	port=$(cat "$F/c/$name/port")
	before=$(start_time "$name")
	exporter_stop "$name"
	exporter_start "$name" "127.0.0.1:$port" || return 1
	for _ in $(seq 150); do
		after=$(start_time "$name")
		[ -n "$after" ] && [ "$after" != "$before" ] && return 0
		sleep 0.1
	done
	echo "restart $name: Prometheus never saw a new start time (still $before)" >&3
	return 1
}

setup_file() {
	tally_setup
	export F=$BATS_FILE_TMPDIR/fleet
	mkdir -p "$F/checks/ok" "$F/checks/fail" "$F/checks/slow" "$F/checks/stale" "$F/c"

	# Containers get their own PID namespace when unshare allows (as root,
	# or unprivileged with a user namespace); else they all share the host's
	# first process and restarts cannot be told apart (those tests skip).
	: >"$F/ns"
	if unshare --pid --fork --mount-proc --kill-child=SIGTERM true 2>/dev/null; then
		echo "unshare --pid --fork --mount-proc --kill-child=SIGTERM" >"$F/ns"
	elif unshare --user --map-root-user --pid --fork --mount-proc --kill-child=SIGTERM true 2>/dev/null; then
		echo "unshare --user --map-root-user --pid --fork --mount-proc --kill-child=SIGTERM" >"$F/ns"
	fi

	# Custom checks for the real healthcheck.
	local h
	for h in ok slow stale fail; do
		printf '#!/bin/sh\necho serving\n' >"$F/checks/$h/10-app"
		chmod +x "$F/checks/$h/10-app"
	done
	printf '#!/bin/sh\necho "app: connection refused on 127.0.0.1:8080"\nexit 1\n' >"$F/checks/fail/20-upstream"
	chmod +x "$F/checks/fail/20-upstream"

	build_image ok || { cat "$F/builds/ok.out" >&3; return 1; }
	build_image fail || { cat "$F/builds/fail.out" >&3; return 1; }

	local name job build health extra
	echo '{}' >"$F/names.json"
	while read -r name job build health extra; do
		make_container "$name" "$build" "$health" "$extra" || return 1
		echo "$extra" >"$F/c/$name/extra"
		echo "$job" >"$F/c/$name/job"
		exporter_start "$name" 127.0.0.1:0 || { cat "$F/c/$name/httpd.log" >&3; return 1; }
		jq --arg i "127.0.0.1:$(cat "$F/c/$name/port")" --arg n "$name" '.[$i] = $n' \
			"$F/names.json" >"$F/names.tmp" && mv "$F/names.tmp" "$F/names.json"
	done < <(fleet_spec)
	# The stopped exporter: its port refuses connections.
	exporter_stop c17

	# Prometheus: the fleet in two jobs, the rules with for: in seconds.
	sed -E 's/^( *for: [0-9]+)m$/\1s/' "$OBS_DIR/prometheus/tally-rules.yml" >"$F/tally-rules.yml"
	targets() {
		local t=''
		for name in $(fleet_spec | awk -v j="$1" '$2 == j { print $1 }'); do
			t="$t${t:+, }'127.0.0.1:$(cat "$F/c/$name/port")'"
		done
		printf '%s' "$t"
	}
	cat >"$F/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  scrape_timeout: 1s
		  evaluation_interval: 1s
		rule_files: ['$F/tally-rules.yml']
		scrape_configs:
		  - job_name: tally
		    static_configs: [{targets: [$(targets tally)]}]
		  - job_name: tally-canary
		    static_configs: [{targets: [$(targets tally-canary)]}]
	EOF
	promtool check config "$F/prometheus.yml" >"$F/promtool.out" 2>&1 || {
		cat "$F/promtool.out" >&3
		return 1
	}
	prom_start "$F/prometheus.yml" "$F" || return 1
	PROM_PORT=$(cat "$F/prometheus.port")

	# Wait (30 s) until every target has been scraped once, then restart.
	local n
	for _ in $(seq 300); do
		n=$(prom_query 'count(up)' | jq -r '.data.result[0].value[1] // 0')
		[ "$n" -eq 24 ] && break
		sleep 0.1
	done
	if [ -s "$F/ns" ]; then
		restart c14 || return 1
		for _ in 1 2 3; do restart c15 || return 1; done
	fi

	# Wait (60 s) until the firing alerts are the expected ones.
	expected_alerts >"$F/expected"
	for _ in $(seq 120); do
		firing_alerts >"$F/firing" 2>/dev/null || true
		cmp -s "$F/expected" "$F/firing" && break
		sleep 0.5
	done
}

teardown_file() {
	local c
	for c in "$BATS_FILE_TMPDIR"/fleet/c/*/; do
		[ -d "$c" ] && exporter_stop "$(basename "$c")"
	done
	if [ -s "$BATS_FILE_TMPDIR/fleet/prometheus.pid" ]; then
		local pid _
		pid=$(cat "$BATS_FILE_TMPDIR/fleet/prometheus.pid")
		kill "$pid" 2>/dev/null || true
		# up to 10 s for it to close its database before bats removes it
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

setup() {
	tally_setup
	F=$BATS_FILE_TMPDIR/fleet
	PROM_PORT=$(cat "$F/prometheus.port")
}

@test "Prometheus scrapes all 24 containers; only the stopped exporter is down" {
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/targets' |
		jq -r --slurpfile n '$F/names.json' '.data.activeTargets[] |
			[\$n[0][.labels.instance], .labels.job, .health] | @tsv' | LC_ALL=C sort"
	assert_success
	expected=$(fleet_spec | awk '{ print $1 "\t" $2 "\t" ($5 == "down" ? "down" : "up") }' | LC_ALL=C sort)
	assert_output "$expected"
}

@test "every exporter's /metrics passes promtool check metrics" {
	local name port
	while read -r name _ _ _ extra; do
		[ "$extra" = down ] && continue
		port=$(cat "$F/c/$name/port")
		curl -fsS -o "$BATS_TEST_TMPDIR/$name.prom" "http://127.0.0.1:$port/metrics"
		run promtool check metrics <"$BATS_TEST_TMPDIR/$name.prom"
		assert_success
	done < <(fleet_spec)
}

@test "the dashboards' job and instance variables list the fleet's jobs and containers" {
	local f q
	for f in "$OBS_DIR"/grafana/*.json; do
		q=$(jq -r '.templating.list[] | select(.name == "job") | .query.query' "$f")
		[ "$q" = 'label_values(container_start_time_seconds, job)' ]
		run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/label/job/values' \
			--data-urlencode 'match[]=container_start_time_seconds' | jq -r '.data[]'"
		assert_output "tally
tally-canary"
		q=$(jq -r '.templating.list[] | select(.name == "instance") | .query.query' "$f")
		[ "$q" = 'label_values(container_start_time_seconds{job=~"$job"}, instance)' ]
		run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/label/instance/values' \
			--data-urlencode 'match[]=container_start_time_seconds{job=~\"tally-canary\"}' | jq -r '.data | length'"
		assert_output 4
	done
}

@test "every query of every dashboard panel returns data from the fleet" {
	local f title expr n=0 bad=''
	for f in "$OBS_DIR"/grafana/*.json; do
		while IFS=$'\t' read -r title expr; do
			n=$((n + 1))
			run prom_query "$expr"
			if [ "$status" -ne 0 ] || [ "$(printf '%s' "$output" | jq -r '.status')" != success ] ||
				[ "$(printf '%s' "$output" | jq '.data.result | length')" -eq 0 ]; then
				bad="$bad
$(basename "$f"): $title: $expr: $output"
			fi
		done < <(dashboard_exprs "$f" 'tally|tally-canary' '.*' 1h)
	done
	[ -z "$bad" ] || { echo "queries without data:$bad"; false; }
	[ "$n" -ge 30 ]
}

@test "every rule loaded from tally-rules.yml evaluates without error" {
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/rules' | jq -r '.data.groups[].rules[] | .name'"
	assert_success
	[ "${#lines[@]}" -eq 21 ]
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/rules' |
		jq -r '.data.groups[].rules[] | select(.health != \"ok\" or (.lastError // \"\") != \"\") | [.name, .health, .lastError] | @tsv'"
	assert_success
	assert_output ""
}

@test "every alert expression that should fire returns data, and each of the others evaluates" {
	local name expr want
	while IFS=$'\t' read -r name expr; do
		run prom_query "$expr"
		assert_success
		[ "$(printf '%s' "$output" | jq -r .status)" = success ]
		want=$(cut -d' ' -f1 "$F/expected" | grep -cx "$name" || true)
		if [ "$want" -gt 0 ]; then
			[ "$(printf '%s' "$output" | jq '.data.result | length')" -gt 0 ] ||
				{ echo "$name: no data from $expr"; false; }
		fi
	done < <(python3 -c '
import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            print(r["alert"] + "\t" + " ".join(r["expr"].split()))
' "$OBS_DIR/prometheus/tally-rules.yml")
}

@test "exactly the alerts the fleet's state implies are firing" {
	run firing_alerts
	assert_success
	assert_output "$(cat "$F/expected")"
	# every kind of container alert fires somewhere in the fleet
	run sh -c "cut -d' ' -f1 '$F/expected' | sort -u | wc -l"
	if [ -s "$F/ns" ]; then assert_output 12; else assert_output 10; fi
}

@test "the alerts the fleet rules out are not firing" {
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/alerts' | jq -r --slurpfile n '$F/names.json' '
		.data.alerts[] | .labels | select(
			.alertname == \"FleetTargetsMissing\" or
			(.alertname | startswith(\"Fleet\")) and .job == \"tally\" or
			(.alertname == \"ContainerBuildSlow\" and \$n[0][.instance] == \"c07\") or
			(.alertname == \"ContainerRestarted\" and (\$n[0][.instance] | IN(\"c01\", \"c03\", \"c18\"))) or
			(.alertname == \"ContainerExporterDown\" and .job == \"tally-canary\"))'"
	assert_success
	assert_output ""
}

@test "restarts are counted from the start time, never from the uptime" {
	[ -s "$F/ns" ] || skip "no PID namespaces here (unshare refused): restarts cannot be staged"
	run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/query' \
		--data-urlencode 'query=instance:container_restarts:changes1h > 0' |
		jq -r --slurpfile n '$F/names.json' '.data.result[] | [\$n[0][.metric.instance], .value[1]] | @tsv' | sort"
	assert_output "c14	1
c15	3"
	# the uptime changes on every scrape of every container that answers
	run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/query' \
		--data-urlencode 'query=changes(container_uptime_seconds[1h]) > 0' | jq '.data.result | length'"
	assert_output 23
	# and the containers' uptimes differ: the host's, and fresh namespaces
	run sh -c "curl -fsS --get 'http://127.0.0.1:$PROM_PORT/api/v1/query' \
		--data-urlencode 'query=container_uptime_seconds' |
		jq -r --slurpfile n '$F/names.json' '.data.result[] | select(\$n[0][.metric.instance] | IN(\"c01\", \"c14\")) | .value[1]'"
	[ "${#lines[@]}" -eq 2 ]
	awk -v a="${lines[0]}" -v b="${lines[1]}" 'BEGIN { exit !(a - b > 5 || b - a > 5) }'
}

# diag_env ALERT: prints the environment the runbook of ALERT is run with:
# INSTANCE, JOB, FEATURE and DISK_PATH from a firing ALERT (or the job tally),
# PROM, and inside-the-container paths of that alert's container.
diag_env() {
	local labels name='' kind=ok
	labels=$(prom_api alerts | jq -c --arg a "$1" '[.data.alerts[] | select(.state == "firing" and .labels.alertname == $a) | .labels][0] // {job: "tally"}')
	printf 'PROM=http://127.0.0.1:%s\n' "$PROM_PORT"
	printf 'JOB=%s\n' "$(printf '%s' "$labels" | jq -r .job)"
	printf '%s' "$labels" | jq -r '"INSTANCE=" + (.instance // ""), "FEATURE=" + (.feature // ""), "DISK_PATH=" + (.path // "")'
	name=$(printf '%s' "$labels" | jq -r --slurpfile n "$F/names.json" '$n[0][.instance // ""] // ""')
	[ -n "$name" ] || name=$(jq -r --arg j "$(printf '%s' "$labels" | jq -r .job)" \
		'to_entries | map(select(.value | startswith(if $j == "tally-canary" then "k" else "c" end)))[0].value' "$F/names.json")
	kind=$(cat "$F/c/$name/kind")
	printf 'BUILD_LOG_DIR=%s\n' "$F/builds/$kind/logs"
	printf 'TALLY_METRICS_DIR=%s\n' "$F/c/$name/metrics"
	printf 'HEALTHCHECK_CUSTOM_DIR=%s\n' "$(cat "$F/c/$name/checks" 2>/dev/null || echo "$F/checks/ok")"
	printf 'TALLY_HOME=%s\n' "$TALLY_BUILD"
}

@test "every runbook's diagnosis commands run against the fleet and print what they promise" {
	local rb alert block n=0 total=0 re
	local -a envv
	for rb in "$RUNBOOK_DIR"/*.md; do
		alert=$(basename "$rb" .md)
		# without PID namespaces no restart was staged: nothing to diagnose
		case $alert in
		ContainerRestarted | ContainerFlapping) [ -s "$F/ns" ] || continue ;;
		esac
		n=0
		mapfile -t envv < <(diag_env "$alert")
		while IFS= read -r -d '' block; do
			n=$((n + 1))
			run --separate-stderr env "${envv[@]}" PATH="$TALLY_BUILD/bin:$PATH" sh -ec "$block"
			[ "$status" -eq 0 ] && [ -n "$output" ] ||
				{ printf '%s block %d failed (%d):\n%s\n--- output:\n%s\n%s\n' "$alert" "$n" "$status" "$block" "$output" "$stderr"; false; }
			while IFS= read -r re; do
				[ -n "$re" ] || continue
				printf '%s\n' "$output" | grep -Eq -- "$re" ||
					{ printf '%s block %d: output does not match /%s/:\n%s\n' "$alert" "$n" "$re" "$output"; false; }
			done < <(block_expect "$block")
		done < <(doc_blocks "$rb" diagnosis)
		[ "$n" -ge 1 ] || { echo "$alert: no diagnosis block"; false; }
		total=$((total + n))
	done
	[ "$total" -ge 13 ]
}

@test "the jq recipes of the observability guide run against the fleet's real JSON logs" {
	local block n=0
	while IFS= read -r -d '' block; do
		n=$((n + 1))
		run --separate-stderr env BUILD_LOG_DIR="$F/builds/fail/logs" sh -ec "$block"
		[ "$status" -eq 0 ] && [ -n "$output" ] ||
			{ printf 'recipe %d failed (%d):\n%s\n--- output:\n%s\n%s\n' "$n" "$status" "$block" "$output" "$stderr"; false; }
		while IFS= read -r re; do
			[ -n "$re" ] || continue
			printf '%s\n' "$output" | grep -Eq -- "$re" ||
				{ printf 'recipe %d: output does not match /%s/:\n%s\n' "$n" "$re" "$output"; false; }
		done < <(block_expect "$block")
	done < <(doc_blocks "$OBS_GUIDE" recipe)
	[ "$n" -ge 4 ]
}
