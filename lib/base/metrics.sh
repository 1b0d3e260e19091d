# shellcheck shell=sh disable=SC3043
# metrics.sh: build metrics in Prometheus text files, through tally-metric.
#
# Public functions:
#   metrics_record_feature <feature> <status> <duration_seconds> <errors> <warnings>
#
# log_feature_end (logging.sh) calls metrics_record_feature for every
# finished feature. The families (docs/reference/metrics.md):
#   container_build_duration_seconds{feature,status}  gauge
#   container_build_errors_total{feature}              counter
#   container_build_warnings_total{feature}            counter
#   container_features_installed                       gauge
# all in TALLY_METRICS_DIR/build.prom.
#
# Globals read: METRICS_ENABLED (false turns build metrics off; default on),
# TALLY_METRICS_DIR (default /var/lib/container-build/metrics), BUILD_LOG_DIR,
# TALLY_HOME. tally-metric is looked up in $TALLY_HOME/bin, then PATH.
# Reference: docs/reference/metrics.md

[ -n "${_tally_metrics_loaded-}" ] && return 0
_tally_metrics_loaded=1
_tally_metrics_warned=

# _tally_metrics_on: returns 0 unless METRICS_ENABLED says false.
_tally_metrics_on() {
	case ${METRICS_ENABLED-} in
	false | FALSE | False | 0 | no | NO) return 1 ;;
	esac
	return 0
}

# _tally_metrics_tool: sets _tally_tmetric to the tally-metric to run, or
# to "" (after one warning on stderr) when there is none.
_tally_metrics_tool() {
	if [ -x "${TALLY_HOME:-/opt/tally}/bin/tally-metric" ]; then
		_tally_tmetric="${TALLY_HOME:-/opt/tally}/bin/tally-metric"
	elif command -v tally-metric >/dev/null 2>&1; then
		_tally_tmetric=tally-metric
	else
		_tally_tmetric=
		if [ -z "$_tally_metrics_warned" ]; then
			printf '%s\n' "tally: warning: tally-metric not found in ${TALLY_HOME:-/opt/tally}/bin or PATH; build metrics are not recorded" >&2
			_tally_metrics_warned=1
		fi
	fi
}

# Usage: metrics_record_feature <feature> <status> <duration_seconds> <errors> <warnings>
# Records one finished feature in TALLY_METRICS_DIR/build.prom: sets
# container_build_duration_seconds{feature,status} (and removes the series
# of the other status), adds the errors and warnings to their counters and
# sets container_features_installed to the number of distinct features in
# BUILD_LOG_DIR/master-summary.log. STATUS is success or failure. Returns 0;
# a failure is reported on stderr and never breaks the build.
# Example: metrics_record_feature python-dev success 145.3 0 2
metrics_record_feature() {
	local feature="${1-}" status="${2-}" secs="${3-}" errors="${4-0}" warnings="${5-0}"
	local file='' other='' dir='' n=''
	_tally_metrics_on || return 0
	case $status in
	success) other=failure ;;
	failure) other=success ;;
	*)
		printf '%s\n' "metrics_record_feature: status must be success or failure, not '$status'" >&2
		return 0
		;;
	esac
	_tally_metrics_tool
	[ -n "$_tally_tmetric" ] || return 0
	dir=${TALLY_METRICS_DIR:-/var/lib/container-build/metrics}
	[ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null || {
		printf '%s\n' "tally: warning: unable to create metrics directory $dir" >&2
		return 0
	}
	file="$dir/build.prom"
	"$_tally_tmetric" delete -f "$file" --label feature="$feature" \
		--label status="$other" container_build_duration_seconds 2>/dev/null || :
	"$_tally_tmetric" set -f "$file" --type gauge \
		--help-text "Time taken to build container features" \
		--label feature="$feature" --label status="$status" \
		container_build_duration_seconds "$secs" || :
	"$_tally_tmetric" add -f "$file" --type counter \
		--help-text "Total errors during container build" \
		--label feature="$feature" container_build_errors_total "$errors" || :
	"$_tally_tmetric" add -f "$file" --type counter \
		--help-text "Total warnings during container build" \
		--label feature="$feature" container_build_warnings_total "$warnings" || :
	n=$(awk '{ sub(/: [0-9]+ errors.*$/, "") } !seen[$0]++ { n++ } END { print n + 0 }' \
		"${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log" 2>/dev/null) || n=0
	"$_tally_tmetric" set -f "$file" --type gauge \
		--help-text "Total number of features installed" \
		container_features_installed "${n:-0}" || :
	return 0
}

# _tally_metrics_feature_end FEATURE STATUS SECONDS ERRORS WARNINGS: the
# hook log_feature_end calls.
_tally_metrics_feature_end() {
	metrics_record_feature "$@"
}
