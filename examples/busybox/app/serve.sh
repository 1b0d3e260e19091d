#!/bin/sh
# serve.sh: the example's app, installed as /usr/local/bin/app: busybox
# httpd serving /srv/www in the foreground on APP_ADDR:APP_PORT (default
# all addresses, port 8080).
set -u
exec httpd -f -v -c /etc/httpd.conf -h /srv/www -p "${APP_ADDR:+$APP_ADDR:}${APP_PORT:-8080}"
