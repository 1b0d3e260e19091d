# fleet.bash: helpers for the observability tests (tests/e2e/fleet.bats,
# tests/helpers/rules.bats): where the assets are, a real Prometheus on
# 127.0.0.1, instant queries, the dashboards' panel expressions and the
# documentation's runnable code blocks. Load after ../lib/common.

# shellcheck disable=SC2034 # used by the files that load this one
OBS_DIR=$TALLY_ROOT/examples/observability
# shellcheck disable=SC2034
RUNBOOK_DIR=$TALLY_ROOT/docs/observability/runbooks
# shellcheck disable=SC2034
OBS_GUIDE=$TALLY_ROOT/docs/observability/README.md

# prom_start CONFIG DIR: starts Prometheus with CONFIG, its database in
# DIR/tsdb and its log in DIR/prometheus.log, on a free 127.0.0.1 port
# (Prometheus cannot be given port 0: up to 5 ports are tried). Writes
# DIR/prometheus.pid and DIR/prometheus.port; waits (up to 20 s each try)
# until /-/ready answers. Returns 1, with the log on fd 3, when it never does.
prom_start() {
	local config=$1 dir=$2 port='' pid=''
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		prometheus --config.file="$config" --storage.tsdb.path="$dir/tsdb" \
			--web.listen-address="127.0.0.1:$port" --web.enable-lifecycle \
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

# prom_api PATH: prints the JSON answer of GET /api/v1/PATH.
prom_api() {
	curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/$1"
}

# dashboard_exprs FILE JOB INSTANCE RANGE: prints one line "TITLE<TAB>EXPR"
# per query of every panel of dashboard FILE, with the template variables
# $job, $instance and $__range replaced by JOB, INSTANCE and RANGE.
dashboard_exprs() {
	jq -r '.panels[] | select(.type != "row") | .title as $t | .targets[] | [$t, .expr] | @tsv' "$1" |
		sed -e "s/\\\$__range/$4/g" -e "s/\\\$job/$2/g" -e "s/\\\$instance/$3/g"
}

# doc_blocks FILE TAG: prints every fenced code block of FILE opened by
# "```sh TAG", each followed by a NUL byte (read them with read -d '').
doc_blocks() {
	awk -v tag="$2" '
		!inb && $0 == "```sh " tag { inb = 1; block = ""; next }
		inb && $0 == "```" { inb = 0; printf "%s%c", block, 0; next }
		inb { block = block $0 "\n" }
	' "$1"
}

# block_expect BLOCK: prints the extended regular expressions given by the
# block's "# expect: ERE" lines, one per line.
block_expect() {
	printf '%s' "$1" | sed -n 's/^# expect: //p'
}
