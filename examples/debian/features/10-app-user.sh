#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 10-app-user.sh: feature "app-user": the system account and directories
# the worker runs with.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start app-user 1.0
log_command "Creating the app group" groupadd --system app || fail_feature app-user
log_command "Creating the app user" useradd --system --gid app --home-dir /var/lib/app \
	--no-create-home --shell /usr/sbin/nologin app || fail_feature app-user
log_command "Creating the state and cache directories" \
	install -d -o app -g app -m 0750 /var/lib/app /var/cache/app || fail_feature app-user
log_command "Checking the account" id app || fail_feature app-user
log_feature_end
