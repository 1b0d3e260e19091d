# prometheus.bash: a real Prometheus server for the end-to-end tests.
# Load after ../lib/common.

# prom_start CONFIG DIR: starts Prometheus with CONFIG, its database in
# DIR/tsdb and its log in DIR/prometheus.log, on a free 127.0.0.1 port
# (Prometheus cannot be given port 0: up to 5 ports are tried). Writes
# DIR/prometheus.pid and DIR/prometheus.port; waits (up to 20 s each try)
# until /-/ready answers. Returns 1, with the log on fd 3, when it never does.
# PROM_FLAGS, when set, holds more command-line flags (split on spaces).
prom_start() {
	local config=$1 dir=$2 port='' pid=''
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		prometheus --config.file="$config" --storage.tsdb.path="$dir/tsdb" \
			--web.listen-address="127.0.0.1:$port" --web.enable-lifecycle ${PROM_FLAGS-} \
			>"$dir/prometheus.log" 2>&1 3>&- &
		pid=$!
		echo "$pid" >"$dir/prometheus.pid"
		for _ in $(seq 200); do
			if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
				echo "$port" >"$dir/prometheus.port"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	cat "$dir/prometheus.log" >&3
	return 1
}

# prom_query PROMQL: prints the JSON answer of Prometheus' instant-query API
# (PROM_PORT); fails when the HTTP request fails.
prom_query() {
	curl -fsS --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"
}

# wait_for_series PROMQL: waits (up to 30 s) until PROMQL returns a result.
wait_for_series() {
	local i
	for i in $(seq 300); do
		[ "$(prom_query "$1" | jq '.data.result | length')" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# httpd_serve NAME DIR: starts tally-httpd over DIR on a free 127.0.0.1
# port; writes its pid and port to BATS_FILE_TMPDIR/NAME.pid and NAME.port
# and its stderr to NAME.err; waits (up to 10 s) for the port.
httpd_serve() {
	"$TALLY_BUILD/bin/tally-httpd" --listen 127.0.0.1:0 --dir "$2" \
		--port-file "$BATS_FILE_TMPDIR/$1.port" 2>"$BATS_FILE_TMPDIR/$1.err" 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/$1.pid"
	wait_for_file "$BATS_FILE_TMPDIR/$1.port"
}

# stop_recorded NAME...: ends each process whose pid BATS_FILE_TMPDIR/NAME.pid
# holds (only processes the test started).
stop_recorded() {
	local f
	for f in "$@"; do
		if [ -s "$BATS_FILE_TMPDIR/$f.pid" ]; then
			kill "$(cat "$BATS_FILE_TMPDIR/$f.pid")" 2>/dev/null || true
		fi
	done
}
