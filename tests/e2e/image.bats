#!/usr/bin/env bats
# End to end inside real container builds: buildah builds the toolkit image
# from the repository's Dockerfile, unchanged, then each example of
# examples/ (Debian with dash, busybox with busybox ash) on top of it. The
# tests read the logs and metrics the build left in each image, run the
# healthcheck inside it, start the image's CMD (the exporter around the
# app) inside it and have a real Prometheus scrape it, and break a build to
# see its failure as JSON in the build output.
#
# No image can be pulled: tests/lib/image.bash makes the base images
# (debootstrap, busybox-static) and caches them in build/cache/images/.
# Skipped, saying why, when buildah or debootstrap is not installed or the
# tests do not run as root.

load ../lib/common
load ../lib/image

EXAMPLES="debian busybox"

setup_file() {
	tally_setup
	local t=$BATS_FILE_TMPDIR ex='' c='' root=''
	local tool
	if [ "$(id -u)" != 0 ]; then
		printf '%s\n' "the image test needs root (buildah with vfs storage and chroot isolation, debootstrap)" >"$t/skip"
		return 0
	fi
	for tool in buildah debootstrap dpkg-deb; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			printf '%s is not installed: run sh tests/deps.sh test (apt-get install buildah debootstrap uidmap)\n' \
				"$tool" >"$t/skip"
			return 0
		fi
	done
	image_store_init
	base_images_make >"$t/base.log" 2>&1 || {
		cat "$t/base.log" >&3
		return 1
	}

	# 1. The toolkit image, from the repository's Dockerfile as it is.
	bah_bud -f "$TALLY_ROOT/Dockerfile" -t localhost/tally-test-toolkit \
		--build-arg BUILDER_IMAGE=localhost/tally-test-debian-build \
		--build-arg VERSION="$(head -n1 "$TALLY_ROOT/VERSION")" \
		--build-arg REVISION="$(git -C "$TALLY_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
		--build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		"$TALLY_ROOT" >"$t/toolkit.out" 2>&1 || {
		tail -40 "$t/toolkit.out" >&3
		return 1
	}

	# 2. Each example on top of it, with everything on; its logs and
	# metrics copied out for jq and promtool on the host.
	for ex in $EXAMPLES; do
		bah_bud -t "localhost/tally-test-$ex-example" \
			--build-arg TALLY_IMAGE=localhost/tally-test-toolkit \
			--build-arg BASE_IMAGE="localhost/tally-test-$ex" \
			--build-arg ENABLE_BUILD_METRICS=true \
			--build-arg INCLUDE_OBSERVABILITY=true \
			--build-arg ENABLE_JSON_LOGGING=true \
			"$TALLY_ROOT/examples/$ex" >"$t/$ex.out" 2>&1 || {
			tail -60 "$t/$ex.out" >&3
			return 1
		}
		c=$(bah from --name "tally-test-$ex" "localhost/tally-test-$ex-example") || return 1
		root=$(bah mount "$c") || return 1
		mkdir -p "$t/$ex"
		cp -R "$root/var/log/container-build" "$t/$ex/logs" &&
			cp -R "$root/var/lib/container-build/metrics" "$t/$ex/metrics" || return 1
		bah umount "$c" >/dev/null
		bah inspect --type image "localhost/tally-test-$ex-example" >"$t/$ex.inspect.json" || return 1
	done

	# 4. Each image's CMD inside its container (the exporter around the
	# app), listening on 127.0.0.1, and one Prometheus scraping both.
	local port='' app_port=''
	for ex in $EXAMPLES; do
		port=$(free_port)
		app_port=$(free_port)
		while [ "$app_port" = "$port" ]; do app_port=$(free_port); done
		printf '%s\n' "$port" >"$t/$ex.port"
		printf '%s\n' "$app_port" >"$t/$ex.app_port"
		start_cmd "$ex" "$port" "$app_port" || return 1
	done
	for ex in $EXAMPLES; do
		read -r port <"$t/$ex.port"
		wait_for_url "http://127.0.0.1:$port/metrics" 20 || {
			cat "$t/$ex.cmd.log" >&3
			return 1
		}
	done
	start_prometheus || return 1
}

teardown_file() {
	local t=$BATS_FILE_TMPDIR ex='' pid=''
	[ -e "$t/skip" ] && return 0
	for ex in $EXAMPLES; do
		[ -s "$t/$ex.cmd.pid" ] && stop_group "$(cat "$t/$ex.cmd.pid")"
	done
	if [ -s "$t/prometheus.pid" ]; then
		pid=$(cat "$t/prometheus.pid")
		kill "$pid" 2>/dev/null || true
	fi
	[ -z "${IMAGE_STORE-}" ] || bah rm --all >/dev/null 2>&1 || true
}

setup() {
	if [ -e "$BATS_FILE_TMPDIR/skip" ]; then
		skip "$(cat "$BATS_FILE_TMPDIR/skip")"
	fi
	tally_setup
	T=$BATS_FILE_TMPDIR
	read -r PROM_PORT <"$T/prometheus.port"
}

# ---- helpers ---------------------------------------------------------------

# start_cmd EXAMPLE PORT APP_PORT: runs the image's CMD in its container in
# the background, in a session of its own (its id in EXAMPLE.cmd.pid, the
# exit status of buildah run in EXAMPLE.cmd.rc), the exporter told to
# listen on 127.0.0.1:PORT, the app on 127.0.0.1:APP_PORT.
start_cmd() {
	local ex=$1 port=$2 app_port=$3 t=$BATS_FILE_TMPDIR
	local -a argv
	mapfile -t argv < <(jq -r '.Docker.config.Cmd[]' "$t/$ex.inspect.json")
	[ "${argv[0]}" = /opt/tally/bin/metrics-exporter ] || {
		printf 'the CMD of the %s example is not the exporter: %s\n' "$ex" "${argv[*]}" >&3
		return 1
	}
	# The session leader is a sh that records buildah run's exit status.
	setsid sh -c '"$@"; echo "$?" >"$0"' "$t/$ex.cmd.rc" \
		buildah --root "$IMAGE_STORE/root" --runroot "$IMAGE_STORE/run" \
		--storage-driver vfs run --isolation chroot \
		--env APP_ADDR=127.0.0.1 --env APP_PORT="$app_port" \
		"tally-test-$ex" -- "${argv[0]}" --listen "127.0.0.1:$port" "${argv[@]:1}" \
		</dev/null >"$t/$ex.cmd.log" 2>&1 &
	printf '%s\n' "$!" >"$t/$ex.cmd.pid"
}

# stop_group PID: TERM to the process group PID leads (setsid made it), then
# KILL after 5 s.
stop_group() {
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for _ in $(seq 50); do
		[ -n "$(group_members "$1")" ] || return 0
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
}

# group_members PGID: prints "PID ARGS" of each process of group PGID that
# is not a zombie, from /proc (no procps needed).
group_members() {
	local f='' stat='' state='' pgrp='' pid=''
	for f in /proc/[0-9]*/stat; do
		stat=$(cat "$f" 2>/dev/null) || continue
		read -r state _ pgrp _ <<<"${stat##*) }"
		[ "$pgrp" = "$1" ] && [ "$state" != Z ] || continue
		pid=${f#/proc/}
		pid=${pid%/stat}
		printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
	done
}

# wait_for_url URL SECONDS: waits until URL answers 2xx.
wait_for_url() {
	for _ in $(seq $(($2 * 10))); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_prometheus: a real Prometheus on 127.0.0.1 scraping each example's
# exporter as job tally-EXAMPLE.
start_prometheus() {
	local t=$BATS_FILE_TMPDIR ex='' port=''
	{
		printf '%s\n' 'global:' '  scrape_interval: 1s' '  scrape_timeout: 1s' 'scrape_configs:'
		for ex in $EXAMPLES; do
			read -r port <"$t/$ex.port"
			printf '  - job_name: tally-%s\n    static_configs:\n      - targets: [%s]\n' \
				"$ex" "'127.0.0.1:$port'"
		done
	} >"$t/prometheus.yml"
	promtool check config "$t/prometheus.yml" >/dev/null || return 1
	for _ in 1 2 3 4 5; do
		PROM_PORT=$(free_port)
		prometheus --config.file="$t/prometheus.yml" --storage.tsdb.path="$t/tsdb" \
			--web.listen-address="127.0.0.1:$PROM_PORT" >"$t/prometheus.log" 2>&1 &
		printf '%s\n' "$!" >"$t/prometheus.pid"
		wait_for_url "http://127.0.0.1:$PROM_PORT/-/ready" 20 && break
		kill "$(cat "$t/prometheus.pid")" 2>/dev/null || true
	done
	curl -fsS -o /dev/null "http://127.0.0.1:$PROM_PORT/-/ready" || {
		cat "$t/prometheus.log" >&3
		return 1
	}
	printf '%s\n' "$PROM_PORT" >"$t/prometheus.port"
}

# query PROMQL: prints the JSON answer of Prometheus' instant-query API.
query() {
	curl -fsS --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"
}

# wait_for_count PROMQL N: waits (up to 30 s) until PROMQL has N results.
wait_for_count() {
	for _ in $(seq 300); do
		[ "$(query "$1" | jq '.data.result | length')" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# features EXAMPLE: prints the features the example's scripts start, sorted.
features() {
	sed -n 's/^log_feature_start \([A-Za-z0-9._-]*\).*/\1/p' \
		"$TALLY_ROOT/examples/$1/features/"*.sh | sort
}

# in_image EXAMPLE [OPTION...] -- COMMAND [ARG...]: runs COMMAND inside the
# example's container with buildah run (chroot isolation: the host's
# network and process namespaces), with buildah run's OPTIONs.
in_image() {
	local ex=$1
	local -a opts=()
	shift
	while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	bah run --isolation chroot "${opts[@]}" "tally-test-$ex" -- "$@"
}

# qjq PROMQL FILTER: runs PROMQL and prints jq -r FILTER of the answer.
qjq() {
	query "$1" | jq -r "$2"
}

# ---- 1. the toolkit image ------------------------------------------------------

@test "the toolkit image holds only /opt/tally: static helpers, the libraries and VERSION" {
	local c='' root='' h=''
	c=$(bah from localhost/tally-test-toolkit)
	root=$(bah mount "$c")
	run sh -c "cd '$root' && find . -mindepth 1 | sort"
	bah umount "$c" >/dev/null
	expected=$(
		cd "$TALLY_ROOT" || exit 1
		{
			printf '%s\n' ./opt ./opt/tally ./opt/tally/VERSION ./opt/tally/bin ./opt/tally/lib \
				./opt/tally/lib/base ./opt/tally/lib/runtime ./opt/tally/bin/healthcheck \
				./opt/tally/bin/metrics-exporter ./opt/tally/lib/runtime/healthcheck \
				./opt/tally/lib/runtime/metrics-exporter.sh
			for h in bin/tally-*.c; do h=${h#bin/}; printf './opt/tally/bin/%s\n' "${h%.c}"; done
			for h in lib/base/*.sh; do printf './opt/tally/%s\n' "$h"; done
		} | sort
	)
	assert_output "$expected"
	root=$(bah mount "$c")
	for h in "$root"/opt/tally/bin/tally-*; do
		run readelf -l "$h"
		assert_success
		refute_output --partial 'program interpreter'
	done
	run cat "$root/opt/tally/VERSION"
	assert_output "$(cat "$TALLY_ROOT/VERSION")"
	bah umount "$c" >/dev/null
	bah rm "$c" >/dev/null
}

@test "the toolkit image carries the org.opencontainers.image labels, with the VERSION file's version" {
	bah inspect --type image localhost/tally-test-toolkit >"$BATS_TEST_TMPDIR/inspect.json"
	run jq -r '.OCIv1.config.Labels | to_entries[] | .key + "=" + .value' "$BATS_TEST_TMPDIR/inspect.json"
	assert_success
	assert_line "org.opencontainers.image.title=tally"
	assert_line "org.opencontainers.image.version=$(head -n1 "$TALLY_ROOT/VERSION")"
	assert_line --regexp '^org\.opencontainers\.image\.description=.*COPY --from='
	assert_line --regexp '^org\.opencontainers\.image\.created=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
	assert_line --regexp '^org\.opencontainers\.image\.revision=([0-9a-f]{40}|unknown)$'
	run jq -r '.OCIv1.config.Labels | keys[] | select(startswith("org.opencontainers.image."))' \
		"$BATS_TEST_TMPDIR/inspect.json"
	assert_output "$(printf 'org.opencontainers.image.%s\n' created description \
		revision title version)"
}

# ---- 2, 3. each example, built on the toolkit image ---------------------------------

# check_shell EXAMPLE TARGET: /bin/sh of the image resolves to TARGET.
check_shell() {
	run in_image "$1" -- readlink -f /bin/sh
	assert_success
	assert_output "$2"
}

@test "debian: the example's RUN steps ran under dash" {
	check_shell debian /usr/bin/dash
}

@test "busybox: the example's RUN steps ran under busybox ash" {
	check_shell busybox /bin/busybox
}

# check_json EXAMPLE: every line of every JSON log parses, is an object
# with timestamp, level and correlation_id, and every feature has its file.
check_json() {
	local ex=$1 f='' n='' p=''
	ls "$T/$ex/logs/json/"*.jsonl >/dev/null
	for f in "$T/$ex/logs/json/"*.jsonl; do
		n=$(wc -l <"$f")
		p=$(jq -c 'select(type == "object" and (.timestamp | type) == "string"
			and (.level | test("^(DEBUG|INFO|WARN|ERROR|FATAL)$"))
			and (.correlation_id | type) == "string")' <"$f" | wc -l)
		[ "$n" -gt 0 ] && [ "$p" = "$n" ] || {
			printf '%s: %s lines, %s valid events\n' "$f" "$n" "$p"
			return 1
		}
	done
	for f in $(features "$ex"); do
		[ -s "$T/$ex/logs/json/$f.jsonl" ] || {
			printf 'no JSON log for feature %s\n' "$f"
			return 1
		}
	done
}

@test "debian: every JSON log line of every build step parses with jq" {
	check_json debian
}

@test "busybox: every JSON log line of every build step parses with jq" {
	check_json busybox
}

# check_cid EXAMPLE: the features started in at least three RUN steps, and
# every JSON event and the build-info metric carry one correlation id.
check_cid() {
	local ex=$1 cid=''
	# The RUN step each feature started in, from the build output.
	run awk '/STEP [0-9]+\/[0-9]+: RUN / { step = $0 }
		/ INFO  Feature [^ ]+ .*started$/ { print step }' "$T/$ex.out"
	[ "${#lines[@]}" = "$(features "$ex" | wc -l)" ]
	[ "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" -ge 3 ]
	run sh -c "cat '$T/$ex/logs/json/'*.jsonl | jq -r .correlation_id | sort -u"
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^build-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$ ]]
	cid=${lines[0]}
	run sed -n 's/^container_build_info{.*correlation_id="\([^"]*\)".*} 1$/\1/p' \
		"$T/$ex/metrics/build.prom"
	assert_output "$cid"
}

@test "debian: all RUN steps of the build share one correlation id" {
	check_cid debian
}

@test "busybox: all RUN steps of the build share one correlation id" {
	check_cid busybox
}

# check_features EXAMPLE: master-summary.log, build-summary.jsonl and
# build.prom (which passes promtool) name every feature, each a success.
check_features() {
	local ex=$1 expected=''
	expected=$(features "$ex")
	[ "$(printf '%s\n' "$expected" | wc -l)" -ge 4 ]
	run sh -c "sed 's/: .*//' '$T/$ex/logs/master-summary.log' | sort"
	assert_output "$expected"
	run grep -c ': 0 errors, ' "$T/$ex/logs/master-summary.log"
	assert_output "$(printf '%s\n' "$expected" | wc -l)"
	run sh -c "jq -r 'select(.status == \"success\") | .feature' '$T/$ex/logs/json/build-summary.jsonl' | sort"
	assert_output "$expected"
	run promtool check metrics <"$T/$ex/metrics/build.prom"
	assert_success
	run sh -c "sed -n 's/^container_build_duration_seconds{feature=\"\([^\"]*\)\",status=\"success\"} .*/\1/p' \
		'$T/$ex/metrics/build.prom' | sort"
	assert_output "$expected"
	run sed -n 's/^container_features_installed //p' "$T/$ex/metrics/build.prom"
	assert_output "$(printf '%s\n' "$expected" | wc -l)"
}

@test "debian: master-summary.log and the build metrics name every feature" {
	check_features debian
}

@test "busybox: master-summary.log and the build metrics name every feature" {
	check_features busybox
}

# check_healthcheck EXAMPLE: bin/healthcheck inside the image exits 0 after
# running the example's custom checks.
check_healthcheck() {
	run in_image "$1" -- /opt/tally/bin/healthcheck
	assert_success
	assert_line --regexp '^\[\+\]10-'
	assert_line --regexp '^\[\+\]20-build-metrics ok$'
	assert_line "healthcheck passed"
	refute_line --regexp '^\[-\]'
}

@test "debian: bin/healthcheck exits 0 inside the built image" {
	check_healthcheck debian
}

@test "busybox: bin/healthcheck exits 0 inside the built image" {
	check_healthcheck busybox
}

# ---- 4. the exporter from inside the image, scraped by Prometheus ------------------

# check_scrape EXAMPLE: Prometheus has the target up and, from it, the
# build duration of every feature of the example.
check_scrape() {
	local ex=$1 n=''
	n=$(features "$ex" | wc -l)
	wait_for_count "up{job=\"tally-$ex\"} == 1" 1
	run sh -c "curl -fsS 'http://127.0.0.1:$PROM_PORT/api/v1/targets' |
		jq -r '.data.activeTargets[] | select(.labels.job == \"tally-$ex\") | [.health, .lastError] | @tsv'"
	assert_output "up	"
	wait_for_count "container_build_duration_seconds{job=\"tally-$ex\"}" "$n"
	run qjq "container_build_duration_seconds{job=\"tally-$ex\"}" \
		'.data.result[].metric | .feature + " " + .status'
	assert_success
	output=$(printf '%s\n' "$output" | sort)
	assert_output "$(features "$ex" | sed 's/$/ success/')"
	run qjq "container_features_installed{job=\"tally-$ex\"}" '.data.result[0].value[1]'
	assert_output "$n"
}

@test "debian: Prometheus scrapes the exporter run by the image's CMD: up, every feature's build metrics" {
	check_scrape debian
}

@test "busybox: Prometheus scrapes the exporter run by the image's CMD: up, every feature's build metrics" {
	check_scrape busybox
}

# check_docker_healthcheck EXAMPLE: the image's HEALTHCHECK command passes
# inside the container while the CMD runs.
check_docker_healthcheck() {
	local ex=$1 kind=''
	local -a argv
	kind=$(jq -r '.Docker.config.Healthcheck.Test[0]' "$T/$ex.inspect.json")
	mapfile -t argv < <(jq -r '.Docker.config.Healthcheck.Test[1:][]' "$T/$ex.inspect.json")
	[ "${#argv[@]}" -gt 0 ]
	case $kind in
	CMD) ;;
	CMD-SHELL) argv=(/bin/sh -c "${argv[0]}") ;;
	*) false ;;
	esac
	# The app may still be starting: up to 50 tries (about 25 s).
	for _ in $(seq 50); do
		run in_image "$ex" --env APP_PORT="$(cat "$T/$ex.app_port")" -- "${argv[@]}"
		[ "$status" = 0 ] && break
		sleep 0.2
	done
	assert_success
	assert_line "healthcheck passed"
}

@test "debian: the image's HEALTHCHECK passes while the worker runs beside the exporter" {
	check_docker_healthcheck debian
	run cat "$T/debian.cmd.log"
	assert_line --regexp '^worker: [0-9]+ records$'
}

@test "busybox: the image's HEALTHCHECK passes while busybox httpd serves the site" {
	check_docker_healthcheck busybox
	run curl -fsS "http://127.0.0.1:$(cat "$T/busybox.app_port")/about.html"
	assert_success
	assert_line "<h1>about</h1>"
}

@test "debian: TERM to the exporter stops the worker and the exporter, and the container exits 0" {
	local pg='' pid='' port=''
	read -r pg <"$T/debian.cmd.pid"
	pid=$(group_members "$pg" | awk '$2 == "/bin/sh" && $3 == "/opt/tally/bin/metrics-exporter" { print $1 }')
	[ -n "$pid" ]
	kill -TERM "$pid"
	wait_for_file "$T/debian.cmd.rc" 15
	run cat "$T/debian.cmd.rc"
	assert_output 0
	run cat "$T/debian.cmd.log"
	assert_line "worker: stopping"
	# Nothing of the container is left running (zombies wait for the
	# host's init: inside a real container the exporter, PID 1, reaps them).
	run group_members "$pg"
	assert_output ""
	read -r port <"$T/debian.port"
	run curl -fsS "http://127.0.0.1:$port/metrics"
	assert_failure
}

# ---- 5. a failing build, and the defaults ------------------------------------------

@test "a build whose RUN step fails shows the failure as an ERROR JSON event in the build output" {
	cp -R "$TALLY_ROOT/examples/busybox" "$BATS_TEST_TMPDIR/broken"
	printf '#!/bin/sh\nexec httpd -f -p "${APP_PORT\n' >"$BATS_TEST_TMPDIR/broken/app/serve.sh"
	run bah_bud -t localhost/tally-test-broken \
		--build-arg TALLY_IMAGE=localhost/tally-test-toolkit \
		--build-arg BASE_IMAGE=localhost/tally-test-busybox \
		--build-arg ENABLE_JSON_LOGGING=true \
		"$BATS_TEST_TMPDIR/broken"
	assert_failure
	printf '%s\n' "$output" | grep '^{' >"$BATS_TEST_TMPDIR/events.jsonl" || true
	# Every JSON line of the output parses; one is the failed command.
	[ "$(jq -c . <"$BATS_TEST_TMPDIR/events.jsonl" | wc -l)" = "$(wc -l <"$BATS_TEST_TMPDIR/events.jsonl")" ]
	run jq -r 'select(.level == "ERROR" and .stage == "command") |
		[.feature, .command, (.exit_code | tostring)] | @tsv' "$BATS_TEST_TMPDIR/events.jsonl"
	assert_output "server	Checking the app script's syntax	2"
	run jq -r 'select(.level == "ERROR" and .stage == "end") | .feature + " " + .status' \
		"$BATS_TEST_TMPDIR/events.jsonl"
	assert_line "server failure"
	run sh -c "jq -r .correlation_id '$BATS_TEST_TMPDIR/events.jsonl' | sort -u"
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" =~ ^build-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$ ]]
	run bah images --format '{{.Name}}'
	refute_line --partial tally-test-broken
}

@test "busybox: with the default build arguments the build keeps text logs and metrics, no JSON, and the image serves no metrics" {
	local c='' root=''
	run bah_bud -t localhost/tally-test-busybox-defaults \
		--build-arg TALLY_IMAGE=localhost/tally-test-toolkit \
		--build-arg BASE_IMAGE=localhost/tally-test-busybox \
		"$TALLY_ROOT/examples/busybox"
	assert_success
	c=$(bah from localhost/tally-test-busybox-defaults)
	root=$(bah mount "$c")
	run sh -c "sed 's/: .*//' '$root/var/log/container-build/master-summary.log' | sort"
	assert_output "$(features busybox)"
	[ ! -e "$root/var/log/container-build/json" ]
	run promtool check metrics <"$root/var/lib/container-build/metrics/build.prom"
	assert_success
	bah umount "$c" >/dev/null
	bah rm "$c" >/dev/null
	bah inspect --type image localhost/tally-test-busybox-defaults >"$BATS_TEST_TMPDIR/inspect.json"
	run jq -r '.Docker.config.Env[]' "$BATS_TEST_TMPDIR/inspect.json"
	assert_line METRICS_ENABLED=false
}

@test "busybox: with ENABLE_BUILD_METRICS=false the build writes no build metrics and the healthcheck still passes" {
	local c='' root=''
	run bah_bud -t localhost/tally-test-busybox-nometrics \
		--build-arg TALLY_IMAGE=localhost/tally-test-toolkit \
		--build-arg BASE_IMAGE=localhost/tally-test-busybox \
		--build-arg ENABLE_BUILD_METRICS=false \
		"$TALLY_ROOT/examples/busybox"
	assert_success
	c=$(bah from --name tally-test-nometrics localhost/tally-test-busybox-nometrics)
	root=$(bah mount "$c")
	run sh -c "sed 's/: .*//' '$root/var/log/container-build/master-summary.log' | sort"
	assert_output "$(features busybox)"
	run find "$root/var" -name '*.prom'
	assert_success
	assert_output ""
	[ ! -e "$root/etc/healthcheck.d/20-build-metrics" ]
	bah umount "$c" >/dev/null
	run in_image nometrics -- /opt/tally/bin/healthcheck --no-record
	assert_success
	assert_line "healthcheck passed"
	refute_line --partial 20-build-metrics
	bah rm "$c" >/dev/null
}
