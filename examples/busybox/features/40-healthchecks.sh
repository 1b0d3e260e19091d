#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 40-healthchecks.sh: feature "healthchecks": installs the custom checks
# that /opt/tally/bin/healthcheck runs from /etc/healthcheck.d, and runs
# them once.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start healthchecks 1.0
log_command "Checking the checks' syntax" sh -c \
	'for f in /build/healthcheck.d/*; do sh -n "$f" || exit 1; done' || fail_feature healthchecks
log_command "Installing /etc/healthcheck.d" sh -c \
	'mkdir -p /etc/healthcheck.d && cp /build/healthcheck.d/* /etc/healthcheck.d/ && chmod 0755 /etc/healthcheck.d/*' ||
	fail_feature healthchecks
case ${METRICS_ENABLED:-true} in
false | 0 | no)
	log_info "Build metrics are off (ENABLE_BUILD_METRICS=false): no build-metrics check"
	rm -f /etc/healthcheck.d/20-build-metrics
	;;
esac
log_command "Running the checks once" /opt/tally/bin/healthcheck --no-record ||
	fail_feature healthchecks
log_feature_end
