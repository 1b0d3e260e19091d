# faults.bash: helpers for tests/faults/*.bats (fault injection and load).
# `load ../lib/faults` after `load ../lib/common`.
#
# Provides: small_tmpfs, faults_teardown, httpd_start, httpd_stop,
# httpd_fds, httpd_alive, scrape_ok, jsonl_ok. Every mount and background
# process a test makes is recorded here and undone by faults_teardown (call
# it from teardown).

FAULT_MOUNTS=()
FAULT_PIDS=()
HTTPD_CMD=()

# small_tmpfs DIR SIZE: mounts a tmpfs of SIZE (e.g. 256k) on DIR (created),
# or skips the test with the reason when that is not permitted here.
small_tmpfs() {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0755" tally-fault "$1" 2>/dev/null ||
		skip "mount -t tmpfs is not permitted here"
	FAULT_MOUNTS+=("$(cd "$1" && pwd)")
}

# faults_teardown: kills the recorded background processes (by PID) and
# unmounts the recorded tmpfs mounts.
faults_teardown() {
	local p m
	for p in "${FAULT_PIDS[@]}" "${HTTPD_PID-}"; do
		[ -n "$p" ] || continue
		kill -9 "$p" 2>/dev/null || :
		wait "$p" 2>/dev/null || :
	done
	for m in "${FAULT_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :
	done
}

# httpd_start ARG...: starts tally-httpd on 127.0.0.1 (port 0, learnt from
# --port-file) with ARG (e.g. --dir DIR); sets HTTPD_PID, PORT and URL.
# Reads HTTPD_NOFILE, when set: the descriptor limit it runs under (ulimit
# -n); HTTPD_CMD, when set (an array): the command run in place of
# tally-httpd (e.g. valgrind OPTIONS ./tally-httpd).
httpd_start() {
	local cmd=(tally-httpd)
	[ "${#HTTPD_CMD[@]}" -eq 0 ] || cmd=("${HTTPD_CMD[@]}")
	rm -f "$BATS_TEST_TMPDIR/port"
	(
		[ -z "${HTTPD_NOFILE-}" ] || ulimit -n "$HTTPD_NOFILE" || exit 111
		exec "${cmd[@]}" --listen 127.0.0.1:0 --port-file "$BATS_TEST_TMPDIR/port" "$@"
	) 2>>"$BATS_TEST_TMPDIR/httpd.err" 3>&- &
	HTTPD_PID=$!
	wait_for_file "$BATS_TEST_TMPDIR/port" 30 || fail "tally-httpd wrote no port file"
	PORT=$(cat "$BATS_TEST_TMPDIR/port")
	URL=http://127.0.0.1:$PORT
}

# httpd_alive: succeeds while the server runs (a zombie does not count).
httpd_alive() {
	local state=
	[ -r "/proc/$HTTPD_PID/stat" ] || return 1
	state=$(sed 's/.*) //; s/ .*//' "/proc/$HTTPD_PID/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# httpd_stop [SECONDS]: stops the server with SIGTERM and waits for it to
# exit, at most SECONDS (default 10; then SIGKILL); returns its exit
# status and forgets HTTPD_PID.
httpd_stop() {
	local i=0 limit=$((${1:-10} * 20)) rc=0
	kill -TERM "$HTTPD_PID" 2>/dev/null || return 1
	while httpd_alive; do
		i=$((i + 1))
		if [ "$i" -gt "$limit" ]; then
			kill -9 "$HTTPD_PID" 2>/dev/null || :
			break
		fi
		sleep 0.05
	done
	wait "$HTTPD_PID" || rc=$?
	HTTPD_PID=
	return "$rc"
}

# httpd_fds: prints the number of descriptors the server has open.
httpd_fds() {
	local fds=("/proc/$HTTPD_PID/fd/"*)
	printf '%s\n' "${#fds[@]}"
}

# scrape_ok [URL]: one scrape of URL/metrics (default $URL); succeeds when
# the answer is 200 with a body promtool accepts.
scrape_ok() {
	local u=${1:-$URL} code
	code=$(curl -sS --max-time 5 -o "$BATS_TEST_TMPDIR/scrape.body" -w '%{http_code}' "$u/metrics") || return 1
	[ "$code" = 200 ] || return 1
	promtool check metrics <"$BATS_TEST_TMPDIR/scrape.body" >/dev/null 2>&1
}

# jsonl_ok FILE...: succeeds when every line of every FILE is one JSON
# object and each FILE ends with a newline (or is empty); prints the number
# of lines. The check is python3's json, one line at a time.
jsonl_ok() {
	python3 - "$@" <<'EOF'
import json, sys
n = 0
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    if data and not data.endswith(b'\n'):
        sys.exit('%s: the last line is not terminated' % path)
    for i, line in enumerate(data.split(b'\n')[:-1], 1):
        try:
            obj = json.loads(line.decode('utf-8'))
        except Exception as e:
            sys.exit('%s:%d: %s: %r' % (path, i, e, line[:120]))
        if not isinstance(obj, dict):
            sys.exit('%s:%d: not an object' % (path, i))
        n += 1
print(n)
EOF
}
