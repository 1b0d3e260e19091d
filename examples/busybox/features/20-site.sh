#!/bin/sh
# shellcheck disable=SC1091,SC2016 # the libraries are sourced inside the image; sh -c bodies are single-quoted on purpose
# 20-site.sh: feature "site": generates the static site, precompresses it,
# records its checksums and keeps a backup archive.
set -eu
. /opt/tally/lib/base/logging.sh
. /build/features/lib.sh

log_feature_start site 3.2.0
log_command "Generating the pages" sh -c '
	for page in index about status docs contact; do
		{
			printf "<!doctype html>\n<title>%s</title>\n<h1>%s</h1>\n" "$page" "$page"
			i=1
			while [ "$i" -le 40 ]; do
				printf "<p>Section %d of the %s page.</p>\n" "$i" "$page"
				i=$((i + 1))
			done
		} >"/srv/www/$page.html"
	done' || fail_feature site
log_command "Precompressing the pages" sh -c \
	'for f in /srv/www/*.html; do gzip -9 -k -f "$f"; done' || fail_feature site
log_command "Recording the checksums" sh -c \
	'cd /srv/www && sha256sum -- *.html *.gz >/srv/www/SHA256SUMS' || fail_feature site
log_command "Verifying the checksums" sh -c \
	'cd /srv/www && sha256sum -c -s SHA256SUMS' || fail_feature site
log_command "Keeping a backup archive of the site" sh -c \
	'mkdir -p /var/backups && tar -czf /var/backups/site.tar.gz -C /srv www' || fail_feature site
log_command "Listing the archive" tar -tzf /var/backups/site.tar.gz || fail_feature site
log_feature_end
