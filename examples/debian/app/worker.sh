#!/bin/sh
# shellcheck disable=SC1091 # /etc/app/app.env exists only in the image
# worker.sh: the example's app, installed as /usr/local/bin/app. Every
# APP_INTERVAL seconds it counts the records of its data set and touches
# APP_HEARTBEAT (default /tmp/app/heartbeat), which the HEALTHCHECK checks
# with `healthcheck --fresh`. Stops on TERM or INT with status 0.
set -u
[ -r /etc/app/app.env ] && . /etc/app/app.env
data=${APP_DATA:-/usr/local/share/app/data}
interval=${APP_INTERVAL:-5}
heartbeat=${APP_HEARTBEAT:-/tmp/app/heartbeat}
mkdir -p "${heartbeat%/*}"
sleeper=
trap 'echo "worker: stopping"; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT
echo "worker: started, data in $data"
while :; do
	records=$(cat "$data"/*.csv | wc -l)
	: >"$heartbeat"
	echo "worker: $records records"
	sleep "$interval" &
	sleeper=$!
	wait "$sleeper"
	sleeper=
done
