# shellcheck shell=sh disable=SC3043
# build.sh: the build overhead of tally, sourced by tests/bench.sh (`make
# bench`). One realistic example build, BENCH_BUILD_FEATURES features
# (default 22) of nine real commands each (generating sources, compiling
# four of tally's own C files at -O2, archiving them, building and running
# a tool, generating a data set, packing, unpacking and checksumming a
# release), run twice per round: bare (the same script, with
# log_feature_start/log_command/log_feature_end as no-op shims) and with
# tally's text logging, JSON logging and build metrics on. In each round
# the two real builds run a feature at a time in turn (see _bb_real), so
# the machine's drift (other load, clock speed) hits both alike and
# neither slows the other; BENCH_BUILD_RUNS rounds (default 5). CPU time
# is counted by a subreaper (tests/bench/reap.c), so processes that
# outlive their parent (the shell's logger) count. Tally's own cost is measured apart,
# with /bin/true for every command (and then two per step, to split it per
# command and per feature), each no-op build BENCH_BUILD_NOOP_REPEAT times.
#
# The features run directly under /bin/sh on the host, as the RUN steps of
# examples/*/Dockerfile run them, not through buildah: one `buildah bud`
# of the same build varies by more than the 1% to be measured.
#
# Prints the median (the lower one for an even count) and the spread
# (min..max) of each mode, the measured overhead (the median of the rounds'
# paired ratios) and its range, tally's own cost from the no-op builds, per
# command and per feature, and the overhead that cost makes. Target: both
# under 1%.

bench_need cc ar tar gzip sha256sum awk || return 1

_bb_runs=${BENCH_BUILD_RUNS:-5}
_bb_noop_reps=${BENCH_BUILD_NOOP_REPEAT:-10}
_bb_features=${BENCH_BUILD_FEATURES:-22}
_bb_root=$(pwd)

# A snapshot of the sources the build compiles, so both modes compile the
# same bytes however the tree changes meanwhile.
mkdir -p "$BENCH_TMP/src"
cp lib/c/*.c lib/c/*.h "$BENCH_TMP/src/"
# reap: the CPU time of a build and of every process it starts.
cc -O2 -o "$BENCH_TMP/reap" tests/bench/reap.c || return 1

cat >"$BENCH_TMP/build-features.sh" <<'SCRIPT'
#!/bin/sh
# The example build: FEATURES features, each in its own directory of WORK.
# BUILD_MODE=tally sources tally's logging.sh (with JSON logging and
# metrics); BUILD_MODE=bare defines no-op shims with the same interface.
set -eu
if [ "$BUILD_MODE" = tally ]; then
	. "$TALLY_HOME/lib/base/logging.sh"
else
	log_feature_start() { :; }
	log_feature_end() { :; }
	log_command() {
		shift
		"$@"
	}
fi

# step DESCRIPTION COMMAND [ARG...]: one build command; with
# BUILD_WORK=noop, /bin/true stands in for it (tally's own cost), with
# noop2 two of them (the cost of a command apart from a feature's).
step() {
	case $BUILD_WORK in
	noop) log_command "$1" /bin/true ;;
	noop2)
		log_command "$1" /bin/true
		log_command "$1" /bin/true
		;;
	*) log_command "$@" ;;
	esac
}

# feature N: one feature; compiles four of the sources, chosen by N.
feature() {
	n=$1
	d=$WORK/feature-$n
	mkdir -p "$d/out"
	cd "$d"
	set -- "$SRC"/*.c
	nsrc=$#
	files=
	k=0
	while [ "$k" -lt 4 ]; do
		j=$(((n * 4 + k) % nsrc + 1))
		eval "files=\"\$files \${$j}\""
		k=$((k + 1))
	done
	log_feature_start "feature-$n" "1.$n.0"
	step "Generating the tool's sources" sh -c '
		printf "%s\n" "#include <stdio.h>" "#include <string.h>" \
			"static const char name[] = \"feature-$1\";" \
			"int main(void) { unsigned h = 5381; const char *p;" \
			"  for (p = name; *p; p++) h = h * 33 + (unsigned char)*p;" \
			"  printf(\"%s %u\\n\", name, h); return strlen(name) == 0; }" >tool.c' sh "$n"
	# shellcheck disable=SC2086
	step "Compiling the library" cc -O2 -std=c99 -D_DEFAULT_SOURCE -I"$SRC" -c $files
	step "Archiving the library" sh -c 'ar rcs libfeature.a ./*.o'
	step "Building the tool" cc -O2 -o tool tool.c
	step "Running the tool's self-test" ./tool
	step "Generating the data set" sh -c \
		'awk -v n="$1" "BEGIN { for (i = 1; i <= 20000; i++) printf \"%d,%d,%d\n\", n, i, (n * i) % 9973 }" >data.csv' sh "$n"
	step "Packing the release" tar -czf release.tar.gz tool libfeature.a data.csv
	step "Unpacking the release" tar -xzf release.tar.gz -C out
	step "Checksumming the release" sh -c \
		'sha256sum tool libfeature.a data.csv >SHA256SUMS && cd out && sha256sum -c ../SHA256SUMS'
	log_feature_end
}

# With GATE=1, each feature waits for a line on fd 5 and writes one to
# fd 6 when it is done: the bench runs the two builds' features in turn.
i=1
while [ "$i" -le "$FEATURES" ]; do
	[ "${GATE:-0}" = 0 ] || read -r _ <&5
	feature "$i"
	[ "${GATE:-0}" = 0 ] || echo done >&6
	i=$((i + 1))
done
SCRIPT

# _bb_run MODE WORK ROUND: runs the build in MODE (bare, tally) with the
# real commands (WORK=real) or /bin/true for each (noop; noop2: two), in a
# fresh directory; a no-op build runs BENCH_BUILD_NOOP_REPEAT times
# (default 10) in a row, as one lasts about 0.2 s. Prints "WALL_US CPU_US"
# for one build (CPU: user + system time of every process of the build,
# counted by tests/bench/reap.c); returns 1 when a build failed.
_bb_run() {
	local d='' t0='' t1='' cpu='' reps=1 k=1
	case $2 in noop*) reps=$_bb_noop_reps ;; esac
	# The directories are made outside the measure, and all removed at the
	# end of the bench, none in between: right after thousands of files
	# were removed, ext4 takes up to 0.5 ms to find a free inode for a new
	# file (it skips recently deleted ones), which would charge the bench's
	# own clean-up to the mode that creates files (tally's logs).
	d=$BENCH_TMP/run-$2-$3-$1
	while [ "$k" -le "$reps" ]; do
		mkdir -p "$d.$k/work"
		k=$((k + 1))
	done
	t0=$(now_ns)
	k=1
	while [ "$k" -le "$reps" ]; do
		# The output goes through a pipe, as a RUN step's goes to the
		# image builder.
		{
			BUILD_MODE=$1 BUILD_WORK=$2 FEATURES=$_bb_features SRC=$BENCH_TMP/src WORK=$d.$k/work \
				TALLY_HOME=$_bb_root/build BUILD_LOG_DIR=$d.$k/logs TALLY_METRICS_DIR=$d.$k/metrics \
				ENABLE_JSON_LOGGING=true METRICS_ENABLED=true NO_COLOR=1 GATE=${_bb_gate:-0} \
				"$BENCH_TMP/reap" "$d.$k/cpu" /bin/sh "$BENCH_TMP/build-features.sh" 2>&1 ||
				: >"$d.$k/failed"
		} | cat >"$d.$k/out"
		if [ -e "$d.$k/failed" ] || [ ! -s "$d.$k/cpu" ]; then
			printf 'bench: the %s build failed:\n' "$1" >&2
			tail -20 "$d.$k/out" >&2
			return 1
		fi
		k=$((k + 1))
	done
	t1=$(now_ns)
	# The user and system time of every process of the builds (reap:
	# also those that outlive their parent, like a shell's logger).
	cpu=$(cat "$d".[0-9]*/cpu | awk -v reps="$reps" '{ t += $1 + $2 } END { printf "%d", t / reps }')
	printf '%s %s\n' "$(((t1 - t0) / 1000 / reps))" "$cpu"
}

# _bb_check WORK ROUND: the (last) tally build of WORK in ROUND logged
# every feature as a success, in JSON, and recorded its metrics; returns 1
# otherwise.
_bb_check() {
	local d="$BENCH_TMP/run-$1-$2-tally.1" n=''
	n=$(grep -c ': 0 errors, ' "$d/logs/master-summary.log" 2>/dev/null) || n=0
	if [ "$n" = "$_bb_features" ] && [ -s "$d/logs/json/build-summary.jsonl" ] &&
		grep -q "^container_features_installed $_bb_features\$" "$d/metrics/build.prom"; then
		return 0
	fi
	printf 'bench: the tally build did not log and measure all %s features\n' "$_bb_features" >&2
	return 1
}

# _bb_real ROUND: one round of the real builds, bare and tally, started
# together but run a feature at a time in turn (never both at once, so
# neither slows the other; the drift of the machine between two turns is
# that of half a second): feature 1 bare then tally, feature 2 tally then
# bare, and so on, the first mode alternating from round to round too.
# Writes each build's line "WALL_US CPU_US" (WALL: its features' own
# time, the turns summed) to BENCH_TMP/t-MODE; returns 1 when one failed.
_bb_real() {
	local g="$BENCH_TMP/gate" i=1 m='' first=bare second=tally t0='' t1='' wb=0 wt=0 ok=0
	rm -rf "$g"
	mkdir "$g" && mkfifo "$g/go.bare" "$g/done.bare" "$g/go.tally" "$g/done.tally" || return 1
	[ $(($1 % 2)) = 1 ] || first=tally second=bare
	for m in bare tally; do
		_bb_gate=1 _bb_run "$m" real "$1" >"$BENCH_TMP/t-$m" 5<"$g/go.$m" 6>"$g/done.$m" &
	done
	# Fds 3/4: bare's turn and its end; 7/8: tally's.
	exec 3>"$g/go.bare" 4<"$g/done.bare" 7>"$g/go.tally" 8<"$g/done.tally"
	while [ "$i" -le "$_bb_features" ]; do
		for m in $first $second; do
			t0=$(now_ns)
			if [ "$m" = bare ]; then
				{ echo go >&3 && read -r _ <&4; } || break 2
			else
				{ echo go >&7 && read -r _ <&8; } || break 2
			fi
			t1=$(now_ns)
			if [ "$m" = bare ]; then wb=$((wb + t1 - t0)); else wt=$((wt + t1 - t0)); fi
		done
		m=$first first=$second second=$m
		i=$((i + 1))
	done
	exec 3>&- 4<&- 7>&- 8<&-
	wait && ok=1
	[ "$ok" = 1 ] && [ "$i" -gt "$_bb_features" ] || return 1
	# The wall time of each build: its turns.
	for m in bare tally; do
		read -r t0 t1 <"$BENCH_TMP/t-$m"
		if [ "$m" = bare ]; then t0=$((wb / 1000)); else t0=$((wt / 1000)); fi
		printf '%s %s\n' "$t0" "$t1" >"$BENCH_TMP/t-$m"
	done
}

# The real build, BENCH_BUILD_RUNS rounds, then the no-op builds as many
# times: lines "WORK ROUND MODE WALL_US CPU_US".
: >"$BENCH_TMP/times"
_bb_ok=1
for _bb_w in real noop noop2; do
	_bb_r=1
	while [ "$_bb_r" -le "$_bb_runs" ]; do
		if [ "$_bb_w" = real ]; then
			_bb_real "$_bb_r" || _bb_ok=0
		else
			# The no-op builds (tally's own cost) one after the other,
			# in alternating order.
			if [ $((_bb_r % 2)) = 1 ]; then _bb_order="bare tally"; else _bb_order="tally bare"; fi
			for _bb_m in $_bb_order; do
				_bb_run "$_bb_m" "$_bb_w" "$_bb_r" >"$BENCH_TMP/t-$_bb_m" || _bb_ok=0
			done
		fi
		[ "$_bb_ok" = 1 ] || break 2
		for _bb_m in bare tally; do
			read -r _bb_t <"$BENCH_TMP/t-$_bb_m"
			printf '%s %s %s %s\n' "$_bb_w" "$_bb_r" "$_bb_m" "$_bb_t" >>"$BENCH_TMP/times"
		done
		_bb_check "$_bb_w" "$_bb_r" || {
			_bb_ok=0
			break 2
		}
		_bb_r=$((_bb_r + 1))
	done
done

if [ "$_bb_ok" = 1 ]; then
	printf 'build: %s features, %s commands (compiling, archiving, generating, packing, checksumming),\n' \
		"$_bb_features" "$((_bb_features * 9))"
	printf '  run by /bin/sh (%s) on the host, not through buildah (whose own spread swamps 1%%);\n' \
		"$(readlink -f /bin/sh)"
	printf '  %s rounds of bare and tally (text logs, JSON logs, metrics), a feature of each in turn\n' "$_bb_runs"
	awk -v cmds="$((_bb_features * 9))" -v feats="$_bb_features" '
		{ t[$1, $3, $2, "wall"] = $4; t[$1, $3, $2, "cpu"] = $5; n = ($2 > n ? $2 : n) }
		# med(W, M, K): the (lower) median of K over the rounds; sets lo, hi.
		function med(w, m, k,   i, j, v, a) {
			for (i = 1; i <= n; i++) a[i] = t[w, m, i, k]
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
			lo = a[1]; hi = a[n]
			return a[int((n + 1) / 2)]
		}
		# pairs(W, K): the (lower) median of the rounds overheads in % (each
		# round: tally against the bare build that ran beside it); sets
		# plo, phi to their range.
		function pairs(w, k,   i, j, v, a) {
			for (i = 1; i <= n; i++)
				a[i] = (t[w, "tally", i, k] - t[w, "bare", i, k]) / t[w, "bare", i, k] * 100
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { v = a[i]; a[i] = a[j]; a[j] = v }
			plo = a[1]; phi = a[n]
			return a[int((n + 1) / 2)]
		}
		END {
			for (m = 0; m < 2; m++) {
				mode = (m ? "tally" : "bare")
				w = med("real", mode, "wall"); wl = lo; wh = hi
				c = med("real", mode, "cpu"); cl = lo; ch = hi
				printf "  %-11s wall median %7.3f s (%.3f..%.3f)   cpu median %7.3f s (%.3f..%.3f)\n",
					(m ? "with tally" : "bare build"), w / 1e6, wl / 1e6, wh / 1e6, c / 1e6, cl / 1e6, ch / 1e6
				W[mode] = w; C[mode] = c
			}
			# The overhead measured: the median of the rounds (paired, so
			# drift between rounds cancels), with their range.
			pw = pairs("real", "wall"); wlo = plo; whi = phi
			pc = pairs("real", "cpu")
			printf "  measured    overhead wall %+.2f%% (rounds %+.2f%%..%+.2f%%), cpu %+.2f%% (rounds %+.2f%%..%+.2f%%), median of the rounds\n",
				pw, wlo, whi, pc, plo, phi
			# The no-op build: what tally itself costs, in CPU time (user +
			# system of every process), which other load on the machine
			# hardly changes.
			own = med("noop", "tally", "cpu") - med("noop", "bare", "cpu")
			printf "  tally own   %.0f ms of CPU for the build (no-op commands): %.2f ms per command, features included\n",
				own / 1000, own / 1000 / cmds
			# Twice the commands: what one command costs; the rest is what
			# the features cost (start and end lines, metrics batch).
			percmd = (med("noop2", "tally", "cpu") - med("noop2", "bare", "cpu") - own) / cmds
			printf "  split       %.2f ms per command (log_command), %.2f ms per feature (log_feature_start and _end)\n",
				percmd / 1000, (own - percmd * cmds) / feats / 1000
			printf "  computed    overhead %+.2f%% of the bare build'"'"'s CPU time; under 1%% when commands average %.0f ms or more (here %.0f ms)\n",
				own / C["bare"] * 100, own / 1000 / cmds * 100, C["bare"] / 1000 / cmds
			printf "  target      under 1%%: %s on this build\n",
				(pc < 1 && own / C["bare"] < 0.01 ? "met" : "NOT met")
			print W["tally"], W["bare"] > "/dev/stderr"
		}' "$BENCH_TMP/times" 2>"$BENCH_TMP/medians"
	read -r _bb_t _bb_b <"$BENCH_TMP/medians"
	bench_report "build, $_bb_features features (median)" "$_bb_t" "bare build" "$_bb_b"
fi
[ "$_bb_ok" = 1 ]
