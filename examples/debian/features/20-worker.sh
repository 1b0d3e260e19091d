#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 20-worker.sh: feature "worker": installs the app (a worker that processes
# the data set and touches a heartbeat file) and records its checksum.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start worker 1.4.2
log_command "Checking the worker's syntax" sh -n /build/app/worker.sh || fail_feature worker
log_command "Installing the worker as /usr/local/bin/app" \
	install -m 0755 /build/app/worker.sh /usr/local/bin/app || fail_feature worker
log_command "Writing the worker's configuration" sh -c '
	mkdir -p /etc/app
	printf "%s\n" "APP_DATA=/usr/local/share/app/data" "APP_INTERVAL=5" >/etc/app/app.env
	chmod 0644 /etc/app/app.env' || fail_feature worker
log_command "Recording the checksums" sh -c \
	'sha256sum /usr/local/bin/app /etc/app/app.env >/etc/app/SHA256SUMS' || fail_feature worker
log_feature_end
