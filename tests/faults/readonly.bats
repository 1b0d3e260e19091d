#!/usr/bin/env bats
# The runtime pieces on a read-only root filesystem, as with
# `docker run --read-only` or Kubernetes' readOnlyRootFilesystem: the
# root is remounted read-only in a private mount namespace (unshare -m),
# with one small tmpfs as the only writable place (the runtime directory,
# like an emptyDir or `--tmpfs /run`). The healthcheck answers and records
# its result there, the exporter serves the build metrics from the
# read-only image and that result, and nothing is written anywhere else.

load ../lib/common
load ../lib/faults

setup() {
	tally_setup
	[ "$(id -u)" = 0 ] || skip "a mount namespace needs root (the test itself)"
	command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
	unshare -m true 2>/dev/null || skip "mount namespaces are not permitted here"
	mkdir -p metrics checks runtime
	# The image's build metrics, written before the root turns read-only.
	tally-metric set -f metrics/build.prom --type gauge --help-text "Features." container_features_installed 3
	printf '#!/bin/sh\necho fine\n' >checks/10-ok
	chmod +x checks/10-ok
}

teardown() { faults_teardown; }

@test "on a read-only root the healthcheck records to the runtime tmpfs and the exporter serves it" {
	cat >inside.sh <<'SH'
set -u
mount --make-rprivate / && mount -o remount,bind,ro / || exit 90
mount -t tmpfs -o size=1m,mode=0755 tally-runtime "$RT" || exit 91
# Proof that the root is read-only here.
if touch "$PWD/probe" 2>/dev/null; then echo "root still writable"; exit 92; fi
export TALLY_RUNTIME_DIR=$RT TALLY_METRICS_DIR=$PWD/metrics TMPDIR=$RT
"$TALLY_HOME/bin/healthcheck" --dir "$PWD/checks" >"$RT/hc.out" 2>&1
echo "healthcheck $?"
"$TALLY_HOME/bin/metrics-exporter" --listen "127.0.0.1:$port" --runtime-dir "$RT" \
	--dir "$PWD/metrics" 2>"$RT/exporter.err" &
pid=$!
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { cat "$RT/exporter.err"; exit 93; }
	sleep 0.05
done
curl -sS --max-time 5 -o "$RT/body" -w 'scrape %{http_code}\n' "http://127.0.0.1:$port/metrics"
curl -sS --max-time 5 -o /dev/null -w 'readyz %{http_code}\n' "http://127.0.0.1:$port/readyz"
kill "$pid"; wait "$pid"
echo "exporter $?"
echo "runtime $(cd "$RT" && LC_ALL=C ls | tr '\n' ' ')"
cat "$RT/body" >&3
SH
	run --separate-stderr env RT="$PWD/runtime" port="$(free_port)" unshare -m sh inside.sh 3>body
	[ "$status" -eq 0 ] || fail "status $status: $output $stderr"
	assert_output "healthcheck 0
scrape 200
readyz 200
exporter 0
runtime body exporter.err hc.out healthcheck.prom "
	promtool check metrics <body
	run sed -n 's/^container_healthcheck_status //p; s/^container_features_installed //p' body
	assert_output "$(printf '1\n3')"
	# Nothing of it landed outside the namespace's tmpfs.
	run ls -A runtime
	assert_output ''
	echo "# read-only root: healthcheck 0, scrape 200, /readyz 200, SIGTERM exit 0" >&3
}
