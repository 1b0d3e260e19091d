#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 30-server.sh: feature "server": the web server's configuration and the
# app script that starts it.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start server 1.35.0
log_command "Checking that busybox has httpd" sh -c 'busybox --list | grep -x httpd' ||
	fail_feature server
log_command "Writing /etc/httpd.conf" sh -c '
	printf "%s\n" ".html:text/html; charset=utf-8" ".txt:text/plain" \
		"E404:/index.html" >/etc/httpd.conf' || fail_feature server
log_command "Checking the app script's syntax" sh -n /build/app/serve.sh ||
	fail_feature server
log_command "Installing the app as /usr/local/bin/app" sh -c \
	'mkdir -p /usr/local/bin && cp /build/app/serve.sh /usr/local/bin/app && chmod 0755 /usr/local/bin/app' ||
	fail_feature server
log_feature_end
