# fleet.bash: helpers for the observability tests (tests/e2e/fleet.bats,
# tests/helpers/rules.bats): where the assets are, a real Prometheus on
# 127.0.0.1, instant queries, the dashboards' panel expressions and the
# documentation's runnable code blocks. Load after ../lib/common (it loads
# prometheus.bash for prom_start and prom_query).

load "$TALLY_ROOT/tests/lib/prometheus"

# shellcheck disable=SC2034 # used by the files that load this one
OBS_DIR=$TALLY_ROOT/examples/observability
# shellcheck disable=SC2034
RUNBOOK_DIR=$TALLY_ROOT/docs/observability/runbooks
# shellcheck disable=SC2034
OBS_GUIDE=$TALLY_ROOT/docs/observability/README.md


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
