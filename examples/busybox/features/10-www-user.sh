#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 10-www-user.sh: feature "www-user": the account the web server runs as
# and the directories it serves and writes.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start www-user 1.0
# Written directly: not every busybox build has adduser and addgroup.
log_command "Creating the www group" sh -c \
	'grep -q "^www:" /etc/group || echo "www:x:101:" >>/etc/group' || fail_feature www-user
log_command "Creating the www user" sh -c \
	'grep -q "^www:" /etc/passwd || echo "www:x:101:101:www:/srv/www:/bin/false" >>/etc/passwd' ||
	fail_feature www-user
log_command "Checking the account" id www || fail_feature www-user
log_command "Creating the document root and the log directory" \
	mkdir -p /srv/www /var/log/www || fail_feature www-user
log_command "Handing the log directory to www" chown www:www /var/log/www ||
	fail_feature www-user
log_feature_end
