#!/bin/sh
# demo-build.sh: the main job, `make demo`. A real multi-feature build run
# by /bin/sh with tally's libraries sourced, as a Dockerfile's RUN steps
# would: it compiles tally's own helpers from source, compiles code that
# draws compiler warnings, survives a failing step, packages the result and
# runs a healthcheck. Logs and metrics go under build/demo/; then tally-httpd
# serves the metrics on 127.0.0.1, the demo scrapes them once, prints the
# build summary, where the logs are and the scraped metrics, and stops.
#
# Usage: sh examples/demo-build.sh        (after `make all`; `make demo` does both)
#        DEMO_SERVE=1 sh examples/demo-build.sh
#            keep serving on 127.0.0.1:$METRICS_PORT (default 9090) until
#            interrupted.
#        DEMO_OUT=DIR sh examples/demo-build.sh
#            write under DIR instead of build/demo (the tests do).
#        DEMO_TALLY_HOME=DIR sh examples/demo-build.sh
#            use the toolkit staged in DIR instead of build/ (the tests
#            point it at the sanitizer build under `make test SANITIZE=1`).
# Exit status: 0 when the build ran and the scrape succeeded; 1 otherwise.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/build/demo}
work=$out/work
rm -rf "$out"
mkdir -p "$work" "$out/metrics"

TALLY_HOME=${DEMO_TALLY_HOME:-$root/build}
BUILD_LOG_DIR=$out/logs
TALLY_METRICS_DIR=$out/metrics
ENABLE_JSON_LOGGING=true
export TALLY_HOME BUILD_LOG_DIR TALLY_METRICS_DIR ENABLE_JSON_LOGGING

for f in tally-log tally-metric tally-httpd; do
	if [ ! -x "$TALLY_HOME/bin/$f" ]; then
		printf 'demo: %s/bin/%s is missing: run "make all" first\n' "$TALLY_HOME" "$f" >&2
		exit 1
	fi
done

# shellcheck source=lib/base/logging.sh
. "$TALLY_HOME/lib/base/logging.sh"

cd "$root" || exit 1

# Feature 1: compile the toolkit's own helpers from source.
log_feature_start tally-helpers 0.1.0
for h in tally-log tally-metric tally-httpd; do
	log_command "Compiling $h" cc -O2 -std=c99 -D_DEFAULT_SOURCE -Ilib/c \
		-o "$work/$h" "bin/$h.c" lib/c/*.c -lm
done
log_command "Checking the fresh tally-log" "$work/tally-log" --feature demo "self-test"
log_feature_end

# Feature 2: legacy code that builds, with compiler warnings.
log_feature_start legacy-parser 0.9.2
cat >"$work/legacy.c" <<'CODE'
#include <stdio.h>
int parse(const char *s)
{
	int unused;
	unsigned n = 0;
	int i;
	for (i = 0; s[i] != '\0'; i++)
		if (i < n) n++;
	return n;
}
CODE
log_command "Compiling the legacy parser with -Wall -Wextra" \
	cc -Wall -Wextra -c -o "$work/legacy.o" "$work/legacy.c"
log_feature_end

# Feature 3: an optional step fails and the build carries on.
log_feature_start optional-mirror 2.1
if ! log_command "Fetching assets from the optional mirror" \
	sh -c 'echo "mirror.invalid: connection refused" >&2; exit 7'; then
	log_info "Optional mirror unavailable; using the bundled assets instead"
fi
log_command "Copying the bundled assets" cp -R "$root/lib/base" "$work/assets"
log_feature_end

# Feature 4: package the helpers and record checksums.
log_feature_start package 0.1.0
log_command "Archiving the helpers" tar -cf "$work/tally.tar" -C "$work" \
	tally-log tally-metric tally-httpd
log_command "Checksumming the archive" cksum "$work/tally.tar"
log_feature_end

# The container healthcheck, with one custom check.
mkdir -p "$work/healthcheck.d"
printf '#!/bin/sh\ntest -r "%s/build.prom"\n' "$TALLY_METRICS_DIR" >"$work/healthcheck.d/10-build-metrics"
chmod +x "$work/healthcheck.d/10-build-metrics"
printf '\n== healthcheck ==\n'
"$TALLY_HOME/bin/healthcheck" --dir "$work/healthcheck.d"

printf '\n== build summary ==\n'
log_build_summary
printf '\nlogs:    %s/*.log, master-summary.log\n' "$BUILD_LOG_DIR"
printf 'json:    %s/json/*.jsonl\n' "$BUILD_LOG_DIR"
printf 'metrics: %s/*.prom\n' "$TALLY_METRICS_DIR"

# Serve the metrics, scrape once, stop (or keep serving with DEMO_SERVE=1).
if [ "${DEMO_SERVE-}" = 1 ]; then
	printf '\nserving http://127.0.0.1:%s/metrics until interrupted\n' "${METRICS_PORT:-9090}"
	exec "$TALLY_HOME/bin/tally-httpd" --listen "127.0.0.1:${METRICS_PORT:-9090}" \
		--dir "$TALLY_METRICS_DIR"
fi
"$TALLY_HOME/bin/tally-httpd" --listen 127.0.0.1:0 --dir "$TALLY_METRICS_DIR" \
	--port-file "$out/port" 2>"$out/httpd.log" &
hpid=$!
i=0
while [ ! -s "$out/port" ] && [ "$i" -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
port=
[ -s "$out/port" ] && read -r port <"$out/port"
rc=1
if [ -n "$port" ]; then
	printf '\n== scraped http://127.0.0.1:%s/metrics ==\n' "$port"
	curl -fsS "http://127.0.0.1:$port/metrics" && rc=0
else
	printf 'demo: tally-httpd did not start:\n' >&2
	cat "$out/httpd.log" >&2
fi
kill "$hpid" 2>/dev/null
wait "$hpid" 2>/dev/null
exit "$rc"
