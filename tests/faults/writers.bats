load ../lib/common
load ../lib/faults

# Writers killed with SIGKILL in the middle of work, over and over, with a
# reader checking throughout; many RUN-like shells writing into the same log
# and metrics files at once. (One killed tally-metric update is covered byte
# for byte by tests/helpers/tally-metric.bats "kill -9 in the middle of an
# update ..."; 20 concurrent tally-log writers by tests/helpers/tally-log.bats
# "20 concurrent writers ...".)

setup() { tally_setup; }
teardown() { faults_teardown; }

# reader FILE DONE KIND: until DONE exists, reads FILE again and again and
# checks it whole (KIND jsonl: every line a JSON object; prom: promtool);
# prints "READS BAD PARTIAL" at the end. A JSON log's last line without
# its newline is a write in progress (or one a killed writer left, which
# the next writer removes): log shippers wait for the newline, and so does
# this reader; such reads are counted in PARTIAL.
reader() {
	local reads=0 bad=0 partial=0 done=''
	while :; do
		[ -e "$2" ] && done=1
		if [ -e "$1" ]; then
			cp "$1" snap
			case $3 in
			jsonl)
				if [ -s snap ] && [ "$(tail -c 1 snap | od -An -tx1 | tr -d ' ')" != 0a ]; then
					partial=$((partial + 1))
					sed '$d' snap >snap.whole && mv snap.whole snap
				fi
				jsonl_ok snap >/dev/null 2>>reader.err || bad=$((bad + 1))
				;;
			prom) promtool check metrics <snap >/dev/null 2>>reader.err || bad=$((bad + 1)) ;;
			esac
			reads=$((reads + 1))
		fi
		[ -z "$done" ] || break
	done
	printf '%s %s %s\n' "$reads" "$bad" "$partial"
}

@test "100 tally-log --stream -o writers killed with SIGKILL mid-stream leave only whole JSON lines, and every finished line is kept" {
	local i pid reads bad partial kills=0 done_lines=0
	export ASAN_OPTIONS=$KILLED_ASAN_OPTIONS # writers are killed (common.bash)
	reader log.jsonl stop jsonl >reader.out &
	FAULT_PIDS+=($!)
	for i in $(seq 100); do
		if [ $((i % 4)) -ne 0 ]; then
			# An endless input, the writer killed after a random 1-20 ms.
			tally-log --stream --feature k$i -o log.jsonl \
				< <(awk 'BEGIN { for (i = 0; ; i++) printf "line %d %0100d\n", i, i }' 2>/dev/null) &
			pid=$!
			sleep "0.0$((RANDOM % 20 + 1))"
			kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
		else
			# One writer in four finishes its 400 lines.
			tally-log --stream --feature k$i -o log.jsonl \
				< <(awk 'BEGIN { for (i = 0; i < 400; i++) printf "line %d %0100d\n", i, i }') &
			pid=$!
			done_lines=$((done_lines + 400))
		fi
		wait "$pid" 2>/dev/null || :
	done
	: >stop
	wait "${FAULT_PIDS[0]}" || :
	FAULT_PIDS=()
	read -r reads bad partial <reader.out
	echo "# $kills writers killed mid-stream, $(wc -l <log.jsonl) lines, $reads reads of the log, $bad bad, $partial with a line in progress" >&3
	[ "$bad" -eq 0 ] || fail "$(head -5 reader.err)"
	[ "$kills" -eq 75 ] || fail "only $kills kills landed"
	run jsonl_ok log.jsonl
	assert_success
	# Every writer that finished has all of its 400 lines there.
	run jq -r 'select((.feature | ltrimstr("k") | tonumber) % 4 == 0) | .feature' log.jsonl
	assert_equal "${#lines[@]}" "$done_lines"
}

@test "tally-metric writers killed with SIGKILL at random never lose a completed update, with promtool reading throughout" {
	local w i ok=0 killed=0 v reads bad partial
	export ASAN_OPTIONS=$KILLED_ASAN_OPTIONS # writers are killed (common.bash)
	# A large file, so that an update lasts long enough to be hit.
	awk 'BEGIN { print "# HELP big Big.\n# TYPE big gauge"
		for (i = 0; i < 50000; i++) printf "big{id=\"%06d\"} %d.5\n", i, i }' >m.prom
	tally-metric inc -f m.prom --help-text 'Completed updates.' done_total 0
	reader m.prom stop prom >reader.out &
	FAULT_PIDS+=($!)
	# 4 writers at once, 40 rounds: each writer's status says whether its
	# update completed (0) or was killed (137).
	for i in $(seq 40); do
		pids=()
		for w in 1 2 3 4; do
			tally-metric inc -f m.prom done_total &
			pids+=($!)
		done
		sleep "0.0$((RANDOM % 30 + 10))"
		kill -9 "${pids[$((RANDOM % 4))]}" 2>/dev/null || :
		for w in "${pids[@]}"; do
			if wait "$w"; then ok=$((ok + 1)); else killed=$((killed + 1)); fi
		done
	done
	: >stop
	wait "${FAULT_PIDS[0]}" || :
	FAULT_PIDS=()
	read -r reads bad partial <reader.out
	v=$(sed -n 's/^done_total //p' m.prom)
	echo "# 160 updates: $ok completed, $killed killed; counter $v; $reads reads, $bad bad" >&3
	[ "$bad" -eq 0 ] || fail "$(head -5 reader.err)"
	[ "$killed" -gt 0 ] || fail "no kill landed"
	# Completed updates are all there; a killed one may or may not be.
	[ "$v" -ge "$ok" ] && [ "$v" -le 160 ] || fail "counter $v, $ok completed updates"
	promtool check metrics <m.prom
}

@test "16 RUN-like shells logging into the same files at once: every line parses and every count adds up" {
	local i
	export BUILD_LOG_DIR=$PWD/logs TALLY_METRICS_DIR=$PWD/metrics ENABLE_JSON_LOGGING=true
	export BUILD_CORRELATION_ID=build-concurrent
	cat >run.sh <<'SH'
. "$TALLY_HOME/lib/base/logging.sh"
log_feature_start "f$1" 1.0
i=0
while [ "$i" -lt 10 ]; do
	log_command "ok $i" true
	log_command "fail $i" false || :
	log_warn "warning $i"
	i=$((i + 1))
done
log_feature_end
SH
	pids=()
	for i in $(seq 16); do
		timeout 120 dash run.sh "$i" >/dev/null 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	run jsonl_ok logs/json/*.jsonl
	assert_success
	echo "# 16 shells: $output JSON lines" >&3
	# One summary per feature, each with exactly its own counts.
	run sh -c "jq -r '\"\\(.feature) \\(.command_count) \\(.error_count) \\(.warning_count)\"' logs/json/build-summary.jsonl | sort -V"
	assert_output "$(for i in $(seq 16); do echo "f$i 20 10 10"; done)"
	promtool check metrics <metrics/build.prom
	run awk '/^container_build_errors_total\{/ { n++; s += $2 } END { print n, s }' metrics/build.prom
	assert_output "16 160"
	run sed -n 's/^container_features_installed //p' metrics/build.prom
	assert_output 16
}
