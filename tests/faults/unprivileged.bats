#!/usr/bin/env bats
# Nothing of the toolkit needs root at run time: a RUN-like build, the
# healthcheck and the exporter, each run as the user nobody (uid 65534)
# with no capabilities (setpriv), in directories that user owns, next to a
# read-only root it cannot write.

load ../lib/common
load ../lib/faults

setup() {
	tally_setup
	[ "$(id -u)" = 0 ] || skip "switching to nobody needs root (the test itself)"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	# bats' own temporary directories are root's (mode 0700): work in a
	# directory of nobody's under /tmp, removed by teardown.
	U=$(mktemp -d /tmp/tally-unprivileged.XXXXXX)
	chmod 0755 "$U"
	mkdir -p "$U/logs" "$U/metrics" "$U/run" "$U/checks"
	chown -R 65534:65534 "$U"
	# TALLY_HOME must be readable by nobody on the way down.
	setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$TALLY_HOME/bin/tally-log" ||
		skip "$TALLY_HOME is not readable by nobody here"
}

teardown() {
	faults_teardown
	[ -z "${U-}" ] || rm -rf "$U"
}

# nobody: sets NOBODY to the command prefix that runs a command as uid/gid
# 65534 without capabilities, with the tally variables pointing into $U.
nobody() {
	NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all
		--bounding-set=-all env HOME="$U" TALLY_HOME="$TALLY_HOME" PATH="$PATH"
		BUILD_LOG_DIR="$U/logs" TALLY_METRICS_DIR="$U/metrics" TALLY_RUNTIME_DIR="$U/run"
		ENABLE_JSON_LOGGING=true BUILD_CORRELATION_ID=build-nobody)
}

# descendants PID: prints the uid of PID and of every process below it.
descendants() {
	ps -e -o pid=,ppid=,uid= | awk -v root="$1" '
		{ parent[$1] = $2; uid[$1] = $3 }
		END { for (p in parent) { q = p
			while (q != "" && q != root && q in parent && q != parent[q]) q = parent[q]
			if (q == root) print uid[p] } }'
}

@test "as nobody: a build logs and records its metrics, the healthcheck answers and records, the exporter serves" {
	cat >"$U/build.sh" <<'SH'
. "$TALLY_HOME/lib/base/logging.sh"
log_feature_start unprivileged 1.0
log_command "compile" sh -c 'echo building; echo "warning: old API"'
log_command "fail" false || :
log_feature_end
[ "$(id -u)" = 65534 ]
SH
	printf '#!/bin/sh\necho fine\n' >"$U/checks/10-ok"
	chmod 0755 "$U/build.sh" "$U/checks/10-ok"
	chown 65534:65534 "$U/build.sh" "$U/checks/10-ok"
	nobody
	run "${NOBODY[@]}" $TEST_SHELL "$U/build.sh"
	assert_success
	run jsonl_ok "$U"/logs/json/*.jsonl
	assert_success
	run jq -r 'select(.stage == "end") | "\(.feature) \(.command_count) \(.error_count) \(.warning_count)"' \
		"$U/logs/json/build-summary.jsonl"
	assert_output "unprivileged 2 1 1"
	promtool check metrics <"$U/metrics/build.prom"
	run stat -c %u "$U/metrics/build.prom" "$U/logs/unprivileged.log"
	assert_output "$(printf '65534\n65534')"
	# The healthcheck: exit 0, its result in the metrics directory.
	run "${NOBODY[@]}" "$TALLY_HOME/bin/healthcheck" --dir "$U/checks"
	assert_success
	run grep -c '^container_healthcheck_status 1$' "$U/metrics/healthcheck.prom"
	assert_output 1
	# The exporter on a port above 1023, scraped by Prometheus' own checker.
	port=$(free_port)
	"${NOBODY[@]}" "$TALLY_HOME/bin/metrics-exporter" --listen "127.0.0.1:$port" --dir "$U/metrics" 3>&- \
		2>"$BATS_TEST_TMPDIR/exporter.err" &
	FAULT_PIDS+=($!)
	for i in $(seq 50); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
		sleep 0.1
	done
	scrape_ok "http://127.0.0.1:$port" || fail "no valid scrape: $(cat "$BATS_TEST_TMPDIR/exporter.err")"
	grep -q '^container_build_errors_total{feature="unprivileged"} 1$' "$BATS_TEST_TMPDIR/scrape.body"
	# Every process of the exporter runs as nobody.
	run descendants "${FAULT_PIDS[0]}"
	assert_success
	[ "${#lines[@]}" -ge 1 ] && ! grep -qv '^65534$' <<<"$output" || fail "uids: $output"
	echo "# as uid 65534 without capabilities: build, healthcheck and exporter ($(wc -l <"$BATS_TEST_TMPDIR/scrape.body") lines scraped)" >&3
}
