# shellcheck shell=sh
# lib.sh: sourced by this example's feature scripts, after tally's
# logging.sh. One function:
#
#   fail_feature <feature>
#
# Closes the feature (its summary line, metrics and closing JSON event are
# written), copies the feature's ERROR JSON events to stderr, so that they
# appear in the build output where a log shipper reading CI logs sees the
# failed build as JSON too, and exits 1, which fails the RUN step.
#
# Usage: log_command "Fetching the sources" fetch-sources || fail_feature sources

fail_feature() {
	log_feature_end
	if [ -r "${BUILD_LOG_DIR:-/var/log/container-build}/json/$1.jsonl" ]; then
		grep '"level":"ERROR"' "${BUILD_LOG_DIR:-/var/log/container-build}/json/$1.jsonl" >&2
	fi
	log_error "Feature $1 failed: see ${BUILD_LOG_DIR:-/var/log/container-build}/$1.log"
	exit 1
}
