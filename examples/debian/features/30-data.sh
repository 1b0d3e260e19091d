#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 30-data.sh: feature "data": generates the worker's data set, packs it,
# checks the archive and unpacks it where the worker reads it.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start data 2025.11
log_command "Generating the data set" sh -c '
	mkdir -p /tmp/data
	i=1
	while [ "$i" -le 50 ]; do
		awk -v n="$i" "BEGIN { for (j = 1; j <= 200; j++) printf \"%d,%d,%d\n\", n, j, (n * j) % 97 }" \
			>"/tmp/data/part-$i.csv"
		i=$((i + 1))
	done' || fail_feature data
log_command "Packing the data set" tar -czf /tmp/data.tar.gz -C /tmp data || fail_feature data
log_command "Testing the archive" gzip -t /tmp/data.tar.gz || fail_feature data
log_command "Unpacking it for the worker" sh -c \
	'mkdir -p /usr/local/share/app && tar -xzf /tmp/data.tar.gz -C /usr/local/share/app' ||
	fail_feature data
log_command "Checking every file" sh -c \
	'cd /tmp/data && sha256sum -- *.csv >/tmp/data.sha256 && cd /usr/local/share/app/data && sha256sum -c --quiet /tmp/data.sha256' ||
	fail_feature data
log_command "Removing the scratch copies" rm -rf /tmp/data /tmp/data.tar.gz /tmp/data.sha256 ||
	fail_feature data
log_feature_end
