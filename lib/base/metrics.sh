# shellcheck shell=sh disable=SC3043
# metrics.sh: build metrics in Prometheus text files, through tally-metric.
#
# Public functions:
#   metrics_record_feature <feature> <status> <duration_seconds> <errors> <warnings>
#
# log_feature_end (logging.sh) calls metrics_record_feature for every
# finished feature, and log_command calls _tally_metrics_command_end for
# every command. The families, all in TALLY_METRICS_DIR/build.prom
# (docs/reference/metrics.md):
#   container_build_duration_seconds{feature,status}         gauge
#   container_build_errors_total{feature}                     counter
#   container_build_warnings_total{feature}                   counter
#   container_features_installed                              gauge
#   container_build_info{correlation_id,version,base_image}   gauge, always 1
#   container_build_last_finished_timestamp_seconds           gauge
#   container_build_command_duration_seconds{feature}         histogram
#   container_build_commands_total{feature,status}            counter
# Each call is one `tally-metric batch`: one process, one lock, one rename,
# and all of its updates or none.
#
# Globals read: METRICS_ENABLED (false turns build metrics off; default on),
# TALLY_METRICS_DIR (default /var/lib/container-build/metrics), BUILD_LOG_DIR,
# BUILD_CORRELATION_ID, TALLY_VERSION, TALLY_HOME. tally-metric is looked up
# in $TALLY_HOME/bin, then PATH.
# Reference: docs/reference/metrics.md

[ -n "${_tally_metrics_loaded-}" ] && return 0
_tally_metrics_loaded=1
# Per-command updates held back until the feature's batch (see
# _tally_metrics_command_end): the feature, its commands' durations (words
# "SECONDS", or "SECONDS:TRACE_ID:SPAN_ID" when traced), how many
# succeeded and failed; and the HELP texts of their families.
_tally_mfeat=
_tally_mvals=
_tally_mok=0
_tally_mfail=0
_tally_mnpending=0
_tally_metrics_pending_max=64
_tally_help_cmd_duration="Duration of each command run through log_command, by feature"
_tally_help_cmd_total="Commands run through log_command, by feature and outcome"
_tally_metrics_warned=
_tally_metrics_base=
# Set after a batch failed with status 111 (reported once); see
# _tally_metrics_batch.
_tally_mquiet=

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

# _tally_metrics_file: sets _tally_tmetric (see _tally_metrics_tool) and
# _tally_mfile to TALLY_METRICS_DIR/build.prom, creating the directory.
# Returns 1 (after a warning) when metrics cannot be written.
_tally_metrics_file() {
	local dir=''
	_tally_metrics_tool
	[ -n "$_tally_tmetric" ] || return 1
	dir=${TALLY_METRICS_DIR:-/var/lib/container-build/metrics}
	[ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null || {
		printf '%s\n' "tally: warning: unable to create metrics directory $dir" >&2
		return 1
	}
	_tally_mfile="$dir/build.prom"
}

# _tally_metrics_base_image: sets _tally_metrics_base (once per shell) to
# the base image from /etc/os-release (else /usr/lib/os-release): ID:VERSION_ID
# ("debian:12", "alpine:3.20.3"), else PRETTY_NAME, else ID, else "unknown".
_tally_metrics_base_image() {
	local f='' line='' id='' ver='' pretty='' v=''
	[ -n "$_tally_metrics_base" ] && return 0
	for f in /etc/os-release /usr/lib/os-release; do
		[ -r "$f" ] && break
	done
	if [ -r "$f" ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			v=${line#*=}
			case $v in
			\"*\")
				v=${v#\"}
				v=${v%\"}
				;;
			\'*\')
				v=${v#\'}
				v=${v%\'}
				;;
			esac
			case $line in
			ID=*) id=$v ;;
			VERSION_ID=*) ver=$v ;;
			PRETTY_NAME=*) pretty=$v ;;
			esac
		done <"$f"
	fi
	if [ -n "$id" ] && [ -n "$ver" ]; then
		_tally_metrics_base="$id:$ver"
	elif [ -n "$pretty" ]; then
		_tally_metrics_base=$pretty
	else
		_tally_metrics_base=${id:-unknown}
	fi
}

# _tally_metrics_info: sets _tally_mcid, _tally_mversion and
# _tally_metrics_base, the labels of container_build_info.
_tally_metrics_info() {
	local f=''
	_tally_mcid=
	if [ -n "${_tally_json_loaded-}" ]; then
		_tally_json_cid && _tally_mcid=${_tally_cid-}
	fi
	if [ -z "$_tally_mcid" ]; then
		_tally_mcid=${BUILD_CORRELATION_ID-}
		f="${BUILD_LOG_DIR:-/var/log/container-build}/.correlation-id"
		[ -n "$_tally_mcid" ] || [ ! -r "$f" ] || read -r _tally_mcid <"$f" || :
		_tally_mcid=${_tally_mcid:-unknown}
	fi
	_tally_mversion=${TALLY_VERSION-}
	f="${TALLY_HOME:-/opt/tally}/VERSION"
	[ -n "$_tally_mversion" ] || [ ! -r "$f" ] || read -r _tally_mversion <"$f" || :
	_tally_mversion=${_tally_mversion:-unknown}
	_tally_metrics_base_image
}

# _tally_metrics_features: sets _tally_mfeatures to the number of distinct
# features finished in this build: the files of
# BUILD_LOG_DIR/.tally/features.d (one per feature, made by
# log_feature_end), counted by a glob; else the distinct names of
# BUILD_LOG_DIR/master-summary.log (lines "F: N errors, M warnings (Ss)").
# No fork either way.
_tally_metrics_features() {
	local line='' name='' seen='' nl='
'
	_tally_mfeatures=0
	if [ -d "${BUILD_LOG_DIR:-/var/log/container-build}/.tally/features.d" ]; then
		set -- "${BUILD_LOG_DIR:-/var/log/container-build}/.tally/features.d"/*
		[ -e "$1" ] && _tally_mfeatures=$#
		return 0
	fi
	[ -r "${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log" ] || return 0
	while IFS= read -r line; do
		name=${line%: * errors, * warnings (*)}
		[ "$name" != "$line" ] || continue
		case "$nl$seen" in
		*"$nl$name$nl"*) ;;
		*)
			seen="$seen$name$nl"
			_tally_mfeatures=$((_tally_mfeatures + 1))
			;;
		esac
	done <"${BUILD_LOG_DIR:-/var/log/container-build}/master-summary.log"
}

# Usage: metrics_record_feature <feature> <status> <duration_seconds> <errors> <warnings> [finished_unix_seconds]
# Records one finished feature in TALLY_METRICS_DIR/build.prom, in one
# tally-metric batch: sets container_build_duration_seconds{feature,status}
# (and removes the series of the other status), adds the errors and
# warnings to their counters, sets container_features_installed to the
# number of distinct features in BUILD_LOG_DIR/master-summary.log, sets
# container_build_last_finished_timestamp_seconds to FINISHED_UNIX_SECONDS
# (default: now, from `date`) and replaces
# container_build_info{correlation_id,version,base_image}. STATUS is success
# or failure. Returns 0; a failure is reported on stderr and never breaks
# the build.
# Example: metrics_record_feature python-dev success 145.3 0 2
metrics_record_feature() {
	local feature="${1-}" status="${2-}" secs="${3-}" errors="${4-0}" warnings="${5-0}"
	local other='' now=''
	_tally_metrics_on || return 0
	case $status in
	success) other=failure ;;
	failure) other=success ;;
	*)
		printf '%s\n' "metrics_record_feature: status must be success or failure, not '$status'" >&2
		return 0
		;;
	esac
	_tally_metrics_file || return 0
	_tally_metrics_features
	_tally_metrics_info
	now=${6-}
	case $now in '' | *[!0-9]*) now=$(date +%s 2>/dev/null) || now= ;; esac
	case $now in '' | *[!0-9]*) now=0 ;; esac
	# The feature's commands held back by _tally_metrics_command_end go
	# into the same batch.
	_tally_metrics_pending \
		delete --label feature="$feature" --label status="$other" \
		container_build_duration_seconds ';' \
		set --type gauge --help-text "Time taken to build container features" \
		--label feature="$feature" --label status="$status" \
		container_build_duration_seconds "$secs" ';' \
		add --type counter --help-text "Total errors during container build" \
		--label feature="$feature" container_build_errors_total "$errors" ';' \
		add --type counter --help-text "Total warnings during container build" \
		--label feature="$feature" container_build_warnings_total "$warnings" ';' \
		set --type gauge --help-text "Total number of features installed" \
		container_features_installed "$_tally_mfeatures" ';' \
		set --type gauge --help-text "Unix time at which the last feature of the build finished" \
		container_build_last_finished_timestamp_seconds "$now" ';' \
		delete container_build_info ';' \
		set --type gauge --help-text "Build information: correlation id, tally version and base image; always 1" \
		--label correlation_id="$_tally_mcid" --label version="$_tally_mversion" \
		--label base_image="$_tally_metrics_base" container_build_info 1 ';'
	return 0
}

# _tally_metrics_feature_end FEATURE STATUS SECONDS ERRORS WARNINGS
# FINISHED_UNIX_SECONDS: the hook log_feature_end calls.
_tally_metrics_feature_end() {
	metrics_record_feature "$@"
}

# _tally_metrics_command_end FEATURE DESCRIPTION EXIT_STATUS DURATION_MS
# [TRACE_ID SPAN_ID]: the hook log_command calls after each command. The
# duration goes into container_build_command_duration_seconds{feature}
# (default buckets 0.1 ... 3600 s), with TRACE_ID and SPAN_ID (given when
# tracing is on) as the exemplar of the bucket it falls in
# (docs/reference/metrics.md, "Exemplars"), and the command is counted in
# container_build_commands_total{feature,status} (status success when
# EXIT_STATUS is 0, else failure). The description is not a label (it
# would make a series per command). Inside a feature the updates wait in
# _tally_mvals and the counts, and go into the feature's one batch at
# log_feature_end (no process per command); outside a feature they are
# written at once.
# Returns 0, whatever happens.
_tally_metrics_command_end() {
	local feature="${1-}" rc="${3-}" ms="${4-}" tid="${5-}" sid="${6-}" status=success
	_tally_metrics_on || return 0
	case $ms in '' | *[!0-9]*) return 0 ;; esac
	[ "$rc" = 0 ] || status=failure
	if [ -n "$feature" ]; then
		# Held back as a word of _tally_mvals and a count: a few
		# assignments per command, no process. The ids are hex (else left
		# out), so a word never holds a space or a glob character; a
		# feature name with a quote is not held (see _tally_metrics_pending).
		case $feature in *\'*) return 0 ;; esac
		case $tid$sid in *[!0-9a-f]*) tid='' ;; esac
		[ -n "$sid" ] || tid=
		[ "$feature" = "$_tally_mfeat" ] || [ "$_tally_mnpending" -eq 0 ] || {
			_tally_metrics_file && _tally_metrics_pending
		}
		_tally_mfeat=$feature
		_tally_metrics_seconds "$ms"
		_tally_mvals="$_tally_mvals $_tally_msecs${tid:+:$tid:$sid}"
		case $status in
		success) _tally_mok=$((_tally_mok + 1)) ;;
		*) _tally_mfail=$((_tally_mfail + 1)) ;;
		esac
		_tally_mnpending=$((_tally_mnpending + 1))
		# Bounded: a feature of thousands of commands costs one batch per
		# _tally_metrics_pending_max commands, not one huge argument list.
		[ "$_tally_mnpending" -lt "$_tally_metrics_pending_max" ] || {
			_tally_metrics_file && _tally_metrics_pending
		}
		return 0
	fi
	_tally_metrics_file || return 0
	_tally_metrics_seconds "$ms"
	_tally_metrics_batch \
		observe --help-text "$_tally_help_cmd_duration" \
		${tid:+--exemplar trace_id="$tid"} ${sid:+--exemplar span_id="$sid"} \
		container_build_command_duration_seconds "$_tally_msecs" ';' \
		inc --type counter --help-text "$_tally_help_cmd_total" \
		--label status="$status" container_build_commands_total
	return 0
}

# _tally_metrics_batch UPDATE...: one `tally-metric batch -f _tally_mfile`
# of the updates (its messages on stderr). A system failure (status 111: a
# full disk, a read-only directory) is reported by the first batch that
# meets it only: later batches pass --quiet-write-errors until one succeeds
# again (_tally_mquiet). Returns 0.
_tally_metrics_batch() {
	local rc=0
	"$_tally_tmetric" batch -f "$_tally_mfile" ${_tally_mquiet:+--quiet-write-errors} "$@" &&
		rc=0 || rc=$?
	case $rc in
	0) _tally_mquiet= ;;
	111) _tally_mquiet=1 ;;
	esac
	return 0
}

# _tally_metrics_pending [UPDATE...]: one batch of the commands' updates
# held back in _tally_mvals and _tally_mok/_tally_mfail (one observe of
# every untraced duration, one per traced duration for its exemplar, one
# add per status), then the given updates (each ending in ';', the last
# one too); empties them. Needs _tally_metrics_file first.
_tally_metrics_pending() {
	local w='' tid='' vals='' words='' IFS=' '
	if [ "$_tally_mnpending" -gt 0 ]; then
		# Shell words for one eval, built from checked values only (a
		# feature name without a quote, digits, hex ids): the held-back
		# updates go first, as their families came first in the file.
		# shellcheck disable=SC2016 # the single quotes are data, for eval
		for w in $_tally_mvals; do
			case $w in
			*:*)
				tid=${w#*:}
				words="$words observe --help-text \"\$_tally_help_cmd_duration\" --label 'feature=$_tally_mfeat' --exemplar trace_id=${tid%:*} --exemplar span_id=${tid#*:} container_build_command_duration_seconds ${w%%:*} ';'"
				;;
			*) vals="$vals $w" ;;
			esac
		done
		# shellcheck disable=SC2016
		[ -z "$vals" ] || words="observe --help-text \"\$_tally_help_cmd_duration\" --label 'feature=$_tally_mfeat' container_build_command_duration_seconds$vals ';'$words"
		# shellcheck disable=SC2016
		[ "$_tally_mok" -eq 0 ] || words="$words add --type counter --help-text \"\$_tally_help_cmd_total\" --label 'feature=$_tally_mfeat' --label status=success container_build_commands_total $_tally_mok ';'"
		# shellcheck disable=SC2016
		[ "$_tally_mfail" -eq 0 ] || words="$words add --type counter --help-text \"\$_tally_help_cmd_total\" --label 'feature=$_tally_mfeat' --label status=failure container_build_commands_total $_tally_mfail ';'"
		eval "set -- $words \"\$@\""
	fi
	_tally_mvals=
	_tally_mok=0
	_tally_mfail=0
	_tally_mnpending=0
	[ $# -eq 0 ] || _tally_metrics_batch "$@"
}

# _tally_metrics_seconds MS: sets _tally_msecs to MS milliseconds written as
# seconds with three decimals.
_tally_metrics_seconds() {
	_tally_msecs=$(($1 % 1000))
	case $_tally_msecs in
	?) _tally_msecs=00$_tally_msecs ;;
	??) _tally_msecs=0$_tally_msecs ;;
	esac
	_tally_msecs=$(($1 / 1000)).$_tally_msecs
}
