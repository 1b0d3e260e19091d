load ../lib/common
setup() { tally_setup; }

bats_require_minimum_version 1.5.0

TP_VALID=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

# assert_json_lines FILE: FILE ends in a newline and each of its lines is
# exactly one JSON object, for jq and for python3's strict parser (strict
# UTF-8, no NaN/Infinity) when python3 is installed.
assert_json_lines() {
	local file=$1 lines objects
	[ -s "$file" ] || fail "$file is empty"
	[ -z "$(tail -c 1 "$file")" ] || fail "$file does not end in a newline"
	lines=$(wc -l <"$file")
	objects=$(jq -c 'if type == "object" then . else error("not an object") end' "$file" | wc -l) ||
		fail "jq cannot parse $file"
	[ "$lines" -eq "$objects" ] || fail "$file: $lines lines but $objects JSON objects"
	command -v python3 >/dev/null || return 0
	python3 -c '
import json, sys
def refuse(name):
    raise ValueError("non-standard constant " + name)
for raw in sys.stdin.buffer:
    assert raw.endswith(b"\n"), "line without newline"
    obj = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    assert isinstance(obj, dict), "not an object"
' <"$file" || fail "python3 json refuses $file"
}

# log_to FILE ARG...: runs tally-log ARG... with stdout to FILE; fails the
# test unless it exits 0.
log_to() {
	local file=$1
	shift
	tally-log "$@" >"$file" || fail "tally-log $* exited $?"
}

@test "tally-log --help prints the usage on stdout and exits 0" {
	run --separate-stderr tally-log --help
	assert_success
	assert_equal "$stderr" ""
	assert_line --index 0 "usage: tally-log [options] MESSAGE"
	assert_line --index 1 "       tally-log --stream [options] [--tee]"
}

@test "an event has every key in the documented order and the exact values" {
	export BUILD_CORRELATION_ID=build-42 TRACEPARENT=$TP_VALID
	log_to out.jsonl --level error --feature python-dev --version 3.13.1 \
		--stage install --field who=me --num duration_ms=1234 \
		--bool ok=false --num ratio=-1.25e-3 --meta platform=debian:trixie \
		--meta arch=amd64 'Installing Python'
	assert_json_lines out.jsonl
	run jq -r 'keys_unsorted | join(",")' out.jsonl
	assert_output "timestamp,level,correlation_id,trace_id,span_id,feature,version,stage,message,who,duration_ms,ok,ratio,metadata"
	run jq -c 'del(.timestamp)' out.jsonl
	assert_output '{"level":"ERROR","correlation_id":"build-42","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","feature":"python-dev","version":"3.13.1","stage":"install","message":"Installing Python","who":"me","duration_ms":1234,"ok":false,"ratio":-0.00125,"metadata":{"platform":"debian:trixie","arch":"amd64"}}'
}

@test "absent and empty options are left out, never written as empty strings" {
	log_to a.jsonl hello
	log_to b.jsonl --feature '' --version '' --stage '' --correlation-id '' \
		--field empty= --meta empty= hello
	log_to c.jsonl ''
	for f in a.jsonl b.jsonl; do
		assert_json_lines "$f"
		run jq -c 'del(.timestamp)' "$f"
		assert_output '{"level":"INFO","message":"hello"}'
	done
	assert_json_lines c.jsonl
	run jq -c 'keys_unsorted' c.jsonl
	assert_output '["timestamp","level"]'
}

@test "the timestamp is RFC 3339 UTC with milliseconds and within a few seconds of now" {
	log_to out.jsonl now
	run jq -e '.timestamp | test("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$")' out.jsonl
	assert_success
	run jq -e '(.timestamp[0:19] + "Z" | fromdateiso8601) - now | fabs < 5' out.jsonl
	assert_success
}

@test "levels are accepted in any case and WARNING is WARN" {
	local in want
	for pair in debug:DEBUG Info:INFO WARN:WARN warning:WARN WaRnInG:WARN error:ERROR fatal:FATAL; do
		in=${pair%%:*} want=${pair#*:}
		log_to out.jsonl --level "$in" msg
		run jq -r .level out.jsonl
		assert_output "$want"
	done
	log_to out.jsonl msg
	run jq -r .level out.jsonl
	assert_output INFO
}

@test "an unknown level is a usage error" {
	run --separate-stderr tally-log --level trace msg
	assert_failure 100
	assert_output ""
	[[ $stderr == "tally-log: usage: "* ]] || fail "stderr: $stderr"
}

@test "the correlation id comes from BUILD_CORRELATION_ID unless --correlation-id is given" {
	BUILD_CORRELATION_ID=from-env log_to a.jsonl m
	BUILD_CORRELATION_ID=from-env log_to b.jsonl --correlation-id from-opt m
	BUILD_CORRELATION_ID= log_to c.jsonl m
	run jq -c '[.correlation_id]' a.jsonl b.jsonl c.jsonl
	assert_output $'["from-env"]\n["from-opt"]\n[null]'
	run jq -c 'has("correlation_id")' c.jsonl
	assert_output false
}

@test "a valid TRACEPARENT adds trace_id and span_id" {
	TRACEPARENT=$TP_VALID log_to a.jsonl m
	TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00 log_to b.jsonl m
	run jq -c '[.trace_id, .span_id]' a.jsonl b.jsonl
	assert_output $'["4bf92f3577b34da6a3ce929d0e0e4736","00f067aa0ba902b7"]\n["0af7651916cd43dd8448eb211c80319c","b7ad6b7169203331"]'
}

@test "an invalid TRACEPARENT is ignored silently" {
	local tp
	for tp in '' garbage \
		00-00000000000000000000000000000000-00f067aa0ba902b7-01 \
		00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01 \
		00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01 \
		ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \
		00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra \
		00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01 \
		00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1; do
		TRACEPARENT=$tp run --separate-stderr tally-log m
		assert_success
		assert_equal "$stderr" ""
		printf '%s\n' "$output" >out.jsonl
		run jq -c 'del(.timestamp)' out.jsonl
		assert_output '{"level":"INFO","message":"m"}'
	done
}

@test "an invalid --num is refused with exit 1 and nothing is written" {
	local n
	for n in 01 +1 .5 1. 1e NaN Infinity 0x10 '' ' 1' '1 ' -; do
		run --separate-stderr tally-log --num "x=$n" -o out.jsonl msg
		assert_failure 1
		assert_output ""
		[[ $stderr == "tally-log: fatal: --num x=$n: not a JSON number"* ]] || fail "stderr: $stderr"
		[ ! -e out.jsonl ] || fail "--num x=$n created the output file"
	done
}

@test "valid --num values are written as the same JSON numbers" {
	log_to out.jsonl --num a=0 --num b=-0 --num c=1.5e10 --num d=1E+2 --num e=-1.25e-3 m
	assert_json_lines out.jsonl
	# The bytes after "message" are the numbers exactly as given.
	run jq -c 'del(.timestamp, .level, .message)' out.jsonl
	assert_output '{"a":0,"b":-0,"c":15000000000,"d":100,"e":-0.00125}'
	run cut -d, -f4- out.jsonl
	assert_output '"a":0,"b":-0,"c":1.5e10,"d":1E+2,"e":-1.25e-3}'
}

@test "--bool takes only true or false" {
	log_to out.jsonl --bool a=true --bool b=false m
	run jq -c '[.a, .b]' out.jsonl
	assert_output '[true,false]'
	run --separate-stderr tally-log --bool a=yes m
	assert_failure 1
	assert_output ""
}

@test "a repeated key keeps the last value at the place of the first" {
	log_to out.jsonl --field a=1 --field b=2 --num a=3 --meta m=x --meta n=y --meta m=z msg
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp)' out.jsonl
	assert_output '{"level":"INFO","message":"msg","a":3,"b":"2","metadata":{"m":"z","n":"y"}}'
}

@test "a field that names a built-in key is a usage error" {
	local k
	for k in timestamp level correlation_id trace_id span_id feature version stage message truncated metadata; do
		run --separate-stderr tally-log --field "$k=x" msg
		assert_failure 100
		assert_output ""
	done
	log_to out.jsonl --meta level=x msg
	run jq -c .metadata out.jsonl
	assert_output '{"level":"x"}'
}

@test "usage errors print a usage line on stderr and exit 100" {
	local args
	while IFS= read -r args; do
		eval "run --separate-stderr tally-log $args"
		[ "$status" -eq 100 ] || fail "tally-log $args: status $status"
		assert_output ""
		[[ $stderr == "tally-log: usage: "* ]] || fail "tally-log $args: stderr $stderr"
	done <<'EOF'

--bogus msg
one two
--field novalue msg
--field =v msg
--meta novalue msg
--num =1 msg
--level
--feature
-o
-o '' msg
--stream msg
--tee msg
--stream --tee
--level bogus msg
EOF
}

@test "a field key with any bytes is escaped into a valid key" {
	log_to out.jsonl --field $'q"\\\t\x01k=v' --meta $'\xff=w' msg
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp, .level, .message)' out.jsonl
	assert_output '{"q\"\\\t\u0001k":"v","metadata":{"�":"w"}}'
}

@test "every byte 0x01-0xFF in a message gives valid JSON, invalid UTF-8 as U+FFFD" {
	local i
	: >ascii.bin
	for i in $(seq 1 127); do printf "\\$(printf %03o "$i")" >>ascii.bin; done
	cp ascii.bin all.bin
	cp ascii.bin want.bin
	for i in $(seq 128 255); do
		printf "\\$(printf %03o "$i")" >>all.bin
		printf '\357\277\275' >>want.bin
	done
	[ "$(wc -c <all.bin)" -eq 255 ] || fail "input is not 255 bytes"
	log_to out.jsonl "$(cat all.bin)"
	assert_json_lines out.jsonl
	jq -j .message out.jsonl >got.bin
	cmp got.bin want.bin
	# The ASCII part alone is valid UTF-8 and comes back unchanged.
	log_to ascii.jsonl "$(cat ascii.bin)"
	assert_json_lines ascii.jsonl
	jq -j .message ascii.jsonl >got-ascii.bin
	cmp got-ascii.bin ascii.bin
}

@test "valid multi-byte UTF-8 comes back unchanged" {
	local s=$'caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbf \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \x7f'
	log_to out.jsonl "$s"
	assert_json_lines out.jsonl
	run jq -j .message out.jsonl
	assert_output "$s"
}

@test "invalid UTF-8 becomes U+FFFD per maximal subpart" {
	local r=$'\xef\xbf\xbd' in want
	while IFS=: read -r in want; do
		log_to out.jsonl "$(printf "$in")"
		assert_json_lines out.jsonl
		run jq -j .message out.jsonl
		assert_output "$(printf "$want" | sed "s/R/$r/g")"
	done <<'EOF'
a\300\200b:aRRb
\340\200\200:RRR
\360\200\200\200:RRRR
\355\240\200:RRR
\355\277\277:RRR
\364\220\200\200:RRRR
\365\366\367\370\371\372\373\374\375\376\377:RRRRRRRRRRR
x\342\202:xR
\342\202y:Ry
\200:R
\303\251\377\303\251:\303\251R\303\251
a\361\200\200\341\200\302b\200c\200\277d:aRRRbRcRRd
EOF
}

@test "-o appends one line per call to a file created 0644" {
	umask 022
	tally-log -o out.jsonl --field n=1 first
	tally-log -o out.jsonl --field n=2 second
	tally-log -o out.jsonl --field n=3 third
	assert_json_lines out.jsonl
	run jq -c '[.message, .n]' out.jsonl
	assert_output $'["first","1"]\n["second","2"]\n["third","3"]'
	run stat -c %a out.jsonl
	assert_output 644
}

@test "20 concurrent writers of 200 lines each give 4000 whole lines" {
	local w pids=
	local pad
	pad=$(printf '%03000d' 0)
	for w in $(seq 1 20); do
		(for i in $(seq 1 200); do
			tally-log -o out.jsonl --num w="$w" --num i="$i" "$pad" || exit 1
		done) &
		pids="$pids $!"
	done
	for w in $pids; do wait "$w"; done
	assert_json_lines out.jsonl
	run wc -l <out.jsonl
	assert_output 4000
	run jq -s -c 'group_by(.w) | map([.[0].w, length, (map(.i) | unique | length)])' out.jsonl
	assert_output "$(seq 1 20 | jq -s -c 'map([., 200, 200])')"
}

@test "--new-correlation-id prints build-<UTC time>-<12 hex digits>, a new one each time, and goes alone" {
	run --separate-stderr tally-log --new-correlation-id
	assert_success
	assert_equal "$stderr" ''
	[[ $output =~ ^build-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$ ]] || fail "id: $output"
	first=$output
	# The time is UTC now, to the second (jq's strptime reads it).
	run jq -nr --arg t "${first:6:16}" '$t | strptime("%Y%m%dT%H%M%SZ") | mktime'
	assert_success
	[ $(($(date +%s) - output)) -le 2 ] || fail "id time $output, now $(date +%s)"
	run tally-log --new-correlation-id
	[ "$output" != "$first" ] || fail "two ids alike: $output"
	run --separate-stderr tally-log --new-correlation-id --level INFO
	assert_failure 100
	assert_equal "$output" ''
	assert_equal "$stderr" 'tally-log: usage: --new-correlation-id goes alone (see tally-log --help)'
}

@test "one event goes to every -o file, the text line may have its own words and level, --clock prints the time first" {
	run --separate-stderr tally-log --clock -o a.jsonl -o b.jsonl --console --text-log t.log \
		--level ERROR --text-level INFO --text-message "Feature x finished: failure (1.0s)" \
		--stage end --num duration_ms=1000 -- "Feature x finished"
	assert_success
	[[ $output =~ ^[0-9]{13}$ ]] || fail "clock: $output"
	cmp a.jsonl b.jsonl
	run jq -c 'del(.timestamp)' a.jsonl
	assert_output '{"level":"ERROR","stage":"end","message":"Feature x finished","duration_ms":1000}'
	[[ $(cat t.log) =~ ^\[[0-9]{2}:[0-9]{2}:[0-9]{2}\]\ INFO\ \ Feature\ x\ finished:\ failure\ \(1\.0s\)$ ]] ||
		fail "text log: $(cat t.log)"
	assert_equal "$(cat t.log)" "${stderr}"
	# The clock is the event's time, to the millisecond.
	run jq -r '.timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdate' a.jsonl
	clock=$(tally-log --clock)
	[ $((clock / 1000 - output)) -le 2 ] || fail "event at $output, now $clock"
	run tally-log --clock -- msg
	assert_failure 100
	run tally-log --text-message x msg
	assert_failure 100
	run tally-log -o 1 -o 2 -o 3 -o 4 -o 5 msg
	assert_failure 100
	run tally-log --stream -o 1 -o 2 </dev/null
	assert_failure 100
}

@test "a torn last line left by a killed writer is cut off by the next writer; text that is not an event is kept" {
	printf '{"a":1}\n{"timestamp":"2026-' >log.jsonl
	tally-log -o log.jsonl next
	run jq -r '.message // .a' log.jsonl
	assert_output "$(printf '1\nnext')"
	# A torn first and only line goes too.
	printf '{"timest' >one.jsonl
	tally-log -o one.jsonl only
	run jq -r .message one.jsonl
	assert_output only
	# A last line that is not an event's start is ended, not removed.
	printf 'written by someone else' >other.jsonl
	tally-log -o other.jsonl mine
	run head -1 other.jsonl
	assert_output 'written by someone else'
	run sh -c 'tail -1 other.jsonl | jq -r .message'
	assert_output mine
	# --stream repairs before its first write too.
	printf '{"torn' >s.jsonl
	printf 'x\ny\n' | tally-log --stream -o s.jsonl
	run jq -r .message s.jsonl
	assert_output "$(printf 'x\ny')"
}

@test "only the first failed write is reported; --quiet-write-errors reports none, and the status still tells" {
	run --separate-stderr tally-log -o /nonexistent/a -o /nonexistent/b --text-log /nonexistent/c --console msg
	assert_failure 111
	# The first failure, then the console line: nothing about b or c.
	[ "${#stderr_lines[@]}" -eq 2 ] || fail "stderr: $stderr"
	assert_equal "${stderr_lines[0]}" 'tally-log: warning: unable to open /nonexistent/a: No such file or directory'
	[[ ${stderr_lines[1]} =~ ^\[[0-9:]{8}\]\ INFO\ \ msg$ ]] || fail "stderr: $stderr"
	run --separate-stderr tally-log --quiet-write-errors -o /nonexistent/a --console msg
	assert_failure 111
	[[ $stderr =~ ^\[[0-9:]{8}\]\ INFO\ \ msg$ ]] || fail "stderr: $stderr"
	run --separate-stderr tally-log --run --quiet-write-errors -o /nonexistent/a --text-log /nonexistent/b \
		--result res -- sh -c 'echo out; exit 4'
	assert_failure 4
	assert_equal "$(grep -c 'unable to' <<<"$stderr")" 0
	run cat res
	[[ ${lines[0]} =~ ^4\ [0-9]+\ 0\ 1$ ]] || fail "result: $output"
}

@test "a write failure exits 111" {
	run --separate-stderr tally-log -o /nonexistent/dir/log.jsonl msg
	assert_failure 111
	assert_equal "$stderr" "tally-log: warning: unable to open /nonexistent/dir/log.jsonl: No such file or directory"
	if [ -w /dev/full ]; then
		run sh -c 'tally-log msg >/dev/full'
		assert_failure 111
		assert_output "tally-log: fatal: unable to write to stdout: No space left on device"
		run tally-log -o /dev/full msg
		assert_failure 111
		run sh -c 'printf "a\nb\n" | tally-log --stream -o /dev/full --tee'
		assert_failure 111
		assert_line --index 0 a
		assert_line --index 1 b
	fi
}

@test "--stream turns each line into one event, with or without a final newline" {
	printf 'one\ntwo\n' | tally-log --stream --feature f >a.jsonl
	printf 'one\ntwo' | tally-log --stream --feature f >b.jsonl
	for f in a.jsonl b.jsonl; do
		assert_json_lines "$f"
		run jq -c 'del(.timestamp)' "$f"
		assert_output $'{"level":"INFO","feature":"f","message":"one"}\n{"level":"INFO","feature":"f","message":"two"}'
	done
	printf '' | tally-log --stream >c.jsonl
	[ ! -s c.jsonl ] || fail "empty input gave events"
}

@test "--stream strips CR before LF, keeps NUL bytes and skips empty lines" {
	printf 'a\r\nb\0c\r\n\n\r\nd\re\n\r' | tally-log --stream >out.jsonl
	assert_json_lines out.jsonl
	run jq -c '.message' out.jsonl
	assert_output $'"a"\n"b\\u0000c"\n"d\\re"\n"\\r"'
}

@test "--stream applies every option to every event" {
	printf 'x\ny\n' | BUILD_CORRELATION_ID=c1 TRACEPARENT=$TP_VALID \
		tally-log --stream --level warn --stage s --num n=1 --meta k=v >out.jsonl
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp)' out.jsonl
	assert_output - <<'EOF'
{"level":"WARN","correlation_id":"c1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","stage":"s","message":"x","n":1,"metadata":{"k":"v"}}
{"level":"WARN","correlation_id":"c1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","stage":"s","message":"y","n":1,"metadata":{"k":"v"}}
EOF
}

@test "--stream --tee copies stdin to stdout byte for byte while events go to -o" {
	printf 'plain\n\0nul\r\n\xff\xfe bad utf8\n\n  spaced  \nno newline at end' >in.bin
	tally-log --stream --tee -o out.jsonl <in.bin >tee.bin
	cmp in.bin tee.bin
	assert_json_lines out.jsonl
	run jq -c .message out.jsonl
	assert_output $'"plain"\n"\\u0000nul"\n"�� bad utf8"\n"  spaced  "\n"no newline at end"'
}

@test "--stream output parses for a large input of every byte value" {
	head -c 300000 /dev/urandom >rand.bin
	tally-log --stream <rand.bin >out.jsonl
	assert_json_lines out.jsonl
}

@test "--stream writes events while its input is still open" {
	mkfifo in.fifo
	tally-log --stream -o out.jsonl <in.fifo 3>&- &
	local pid=$!
	exec 7>in.fifo
	printf 'first\n' >&7
	wait_for_file out.jsonl 5 || fail "no event while input is open"
	run jq -r .message out.jsonl
	assert_output first
	printf 'second\n' >&7
	exec 7>&-
	wait "$pid"
	run jq -r .message out.jsonl
	assert_output $'first\nsecond'
}

@test "a message longer than 65536 bytes is cut at a UTF-8 boundary and marked truncated" {
	local a
	a=$(head -c 65536 /dev/zero | tr '\0' a)
	log_to exact.jsonl "$a"
	run jq -c '[(.message | length), .truncated]' exact.jsonl
	assert_output '[65536,null]'
	log_to long.jsonl "${a}b"
	run jq -c '[(.message | length), .truncated]' long.jsonl
	assert_output '[65536,true]'
	# 65535 bytes then a 3-byte character: the whole character goes.
	log_to utf8.jsonl "${a:1}"$'\xe2\x82\xac'
	assert_json_lines utf8.jsonl
	run jq -c '[(.message | length), (.message | test("^a+$")), .truncated]' utf8.jsonl
	assert_output '[65535,true,true]'
}

@test "a --stream line longer than 65536 bytes becomes several events, all but the last marked truncated" {
	head -c 150000 /dev/zero | tr '\0' x >line.txt
	printf '\nnext\n' >>line.txt
	tally-log --stream <line.txt >out.jsonl
	assert_json_lines out.jsonl
	run jq -c '[(.message | length), .truncated]' out.jsonl
	assert_output $'[65536,true]\n[65536,true]\n[18928,null]\n[4,null]'
	jq -j .message out.jsonl | head -c 150000 >joined.txt
	head -c 150000 line.txt | cmp - joined.txt
}

@test "at most 64 fields and 64 metadata pairs are accepted" {
	local args=() m=()
	for i in $(seq 1 64); do args+=(--field "k$i=v"); m+=(--meta "k$i=v"); done
	log_to out.jsonl "${args[@]}" "${m[@]}" msg
	run jq -c '[(keys | length), (.metadata | keys | length)]' out.jsonl
	assert_output '[68,64]'
	run --separate-stderr tally-log "${args[@]}" --num k65=1 msg
	assert_failure 100
	run --separate-stderr tally-log "${m[@]}" --meta k65=1 msg
	assert_failure 100
}

@test "--console prints a human line on stderr and --text-log appends it, with no JSON on stdout" {
	run --separate-stderr tally-log --level warn --console --text-log t.log 'disk almost full'
	assert_success
	assert_equal "$output" ""
	[[ $stderr =~ ^\[[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\]\ WARN\ \ disk\ almost\ full$ ]] || fail "stderr: $stderr"
	run cat t.log
	[[ $output =~ ^\[[0-9:]{8}\]\ WARN\ \ disk\ almost\ full$ ]] || fail "text log: $output"
	tally-log --level error --text-log t.log --console -o out.jsonl 'x' 2>/dev/null
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp)' out.jsonl
	assert_output '{"level":"ERROR","message":"x"}'
}

@test "console lines are plain without a terminal and with NO_COLOR, coloured on a terminal" {
	command -v script >/dev/null || skip "script(1) is not installed"
	run --separate-stderr tally-log --level error --console boom
	[[ $stderr != *$'\033'* ]] || fail "colour without a terminal"
	run script -qec "tally-log --level error --console boom" /dev/null
	[[ $output == *$'\033[31mERROR\033[0m boom'* ]] || fail "no colour on a terminal: $output"
	run script -qec "NO_COLOR=1 tally-log --level error --console boom" /dev/null
	[[ $output != *$'\033'* ]] || fail "colour with NO_COLOR: $output"
}

@test "--run runs the command, shows its output, logs it and exits with its status" {
	run --separate-stderr tally-log --run --console --text-log t.log -o out.jsonl \
		--result res --record rec --feature f --version 1 --correlation-id c \
		--command 'Build it' -- sh -c 'echo one; echo "warning: two" >&2; printf three; exit 3'
	assert_failure 3
	assert_equal "$output" $'one\nwarning: two\nthree'
	run sed -E 's/^\[[0-9:]{8}\] //; s/after [0-9]+ ms/after T ms/; s/[0-9]+\.[0-9]s\)/Ss)/' t.log
	assert_output - <<'EOF2'
INFO  Running: Build it
$ sh -c echo one; echo "warning: two" >&2; printf three; exit 3
one
warning: two
three
$ exit 3 after T ms
ERROR Failed: Build it (exit 3, Ss)
EOF2
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp) | if has("duration_ms") then .duration_ms = "D" else . end' out.jsonl
	assert_output - <<'EOF2'
{"level":"INFO","correlation_id":"c","feature":"f","version":"1","stage":"command","message":"one","command":"Build it"}
{"level":"WARN","correlation_id":"c","feature":"f","version":"1","stage":"command","message":"warning: two","command":"Build it"}
{"level":"INFO","correlation_id":"c","feature":"f","version":"1","stage":"command","message":"three","command":"Build it"}
{"level":"ERROR","correlation_id":"c","feature":"f","version":"1","stage":"command","message":"Command finished: Build it","command":"Build it","exit_code":3,"duration_ms":"D","warning_count":1}
EOF2
	# 64 bytes: the line "STATUS DURATION_MS WARNINGS WRITE_FAILED", then
	# spaces (a shell's read stops at the newline).
	[ "$(wc -c <res)" -eq 64 ] || fail "result is not 64 bytes"
	run cat res
	[[ ${lines[0]} =~ ^3\ [0-9]+\ 1\ 0$ ]] || fail "result: $output"
	[[ ${lines[1]} =~ ^\ +$ ]] && [ "${#lines[@]}" -eq 2 ] || fail "result: $output"
	run cut -f2- rec
	assert_output $'3\t1\tf\tBuild it'
}

@test "--run reports 127 for a missing command and 128+N for a signal" {
	run -127 --separate-stderr tally-log --run -- /nonexistent/cmd
	# The message is part of the command's output: shown and logged.
	[[ $output == *"unable to run /nonexistent/cmd"* ]] || fail "output: $output"
	run --separate-stderr tally-log --run -- sh -c 'kill -TERM $$'
	assert_failure 143
	run --separate-stderr tally-log --run --console --command ok -- true
	assert_success
	[[ $stderr == *"INFO  Done: ok ("*"s)" ]] || fail "stderr: $stderr"
}

@test "--run --status-file reads the output from stdin and the status from the file" {
	printf '5\n' >status
	run --separate-stderr sh -c 'printf "a\nb warn c\n" | tally-log --run --status-file status --result res --command d -- my_function arg'
	assert_failure 5
	assert_equal "$output" $'a\nb warn c'
	run cat res
	[[ ${lines[0]} =~ ^5\ [0-9]+\ 1\ 0$ ]] || fail "result: $output"
	: >status
	run --separate-stderr sh -c 'echo x | tally-log --run --status-file status -- f'
	assert_failure 1
	[[ $stderr == *"no exit status in status"* ]] || fail "stderr: $stderr"
}

@test "--run holds a partial line until its end, or shows it after 100 ms without input" {
	run --separate-stderr tally-log --run -- sh -c 'printf "50%%"; sleep 0.5; printf " done token=abc\n"'
	assert_success
	assert_equal "$output" "50% done token=[REDACTED]"
}

@test "secrets are redacted in the message, every string field, metadata and --stream lines" {
	tally-log --field 'url=https://u:hunter2@h/x' --field db_password=abc --meta api_key=k \
		--meta note='token=t1' --version 'v password=x' 'login with password=hunter2' >out.jsonl
	assert_json_lines out.jsonl
	run jq -c 'del(.timestamp)' out.jsonl
	assert_output '{"level":"INFO","version":"v password=[REDACTED]","message":"login with password=[REDACTED]","url":"https://u:[REDACTED]@h/x","db_password":"[REDACTED]","metadata":{"api_key":"[REDACTED]","note":"token=[REDACTED]"}}'
	printf 'ok\nAuthorization: Bearer abc\n' | tally-log --stream --tee -o s.jsonl >tee.out
	run jq -r .message s.jsonl
	assert_output $'ok\nAuthorization: [REDACTED]'
	run cat tee.out
	assert_output $'ok\nAuthorization: [REDACTED]'
}

@test "TALLY_REDACT=0 turns redaction off everywhere" {
	TALLY_REDACT=0 tally-log --meta api_key=k 'password=hunter2' >out.jsonl
	run jq -c '[.message, .metadata.api_key]' out.jsonl
	assert_output '["password=hunter2","k"]'
	run sh -c 'printf "token=abc\n" | TALLY_REDACT=0 tally-log --stream --tee -o s.jsonl'
	assert_output 'token=abc'
}

@test "--run usage errors exit 100" {
	local args
	while IFS= read -r args; do
		eval "run --separate-stderr tally-log $args"
		[ "$status" -eq 100 ] || fail "tally-log $args: status $status"
		[[ $stderr == "tally-log: usage: "* ]] || fail "tally-log $args: stderr $stderr"
	done <<'EOF2'
--run
--run msg
--run --stream -- true
--run --field command=x -- true
--command x msg
--result r msg
--stream --console
--text-log '' msg
EOF2
}

@test "--serve usage errors exit 100, a directory it cannot use 111" {
	run -100 tally-log --serve
	assert_output --partial "usage"
	run -100 tally-log --serve "$PWD"
	run -100 tally-log --serve "$PWD" 0
	run -100 tally-log --serve "$PWD" 2147483647
	run -100 tally-log --serve "$PWD" "$$" extra
	run -111 tally-log --serve "$PWD/missing/dir" "$$"
	assert_output --partial "unable to make a directory in $PWD/missing/dir"
	run find "$PWD" -name '.tally-log.*'
	assert_output ""
}

# The logger spoken to by hand: hello, a command's begin, its output and
# end, a message, then a request it does not know.
@test "--serve: the logger answers the protocol of docs/reference/tally-log.md" {
	cat >client.sh <<'EOF2'
set -u
out=$(tally-log --serve "$PWD" "$$" 8>console.out 9>console.err) || exit 1
pid=${out%% *} dir=${out#* }
exec 7<>"$dir/go" 8>"$dir/out" 9<"$dir/ack"
printf 'H\0' >&7
read -r a <&9
echo "hello=$a"
[ -e "$dir" ] && echo "dir still there" || echo "dir removed"
# The logger stopped until the begin, the output and the end are all
# there (as when it wakes late): the output is still the command's.
kill -STOP "$pid"
printf '%s\0' B "" "" "" "" "" 9 --run --console -o "$PWD/cmd.jsonl" --command "Two lines" -- printf x >&7
printf 'one\ntwo password=hunter2\nwarning: three' >&8
printf 'E\0%s\0' 3 >&7
kill -CONT "$pid"
read -r st ms warn wfail <&9
echo "end=$st warn=$warn wfail=$wfail ms_is_number=$(case $ms in *[!0-9]* | '') echo no ;; *) echo yes ;; esac)"
# A quick command: its begin and end in one write, read together.
printf '%s\0' B "" "" "" "" "" 7 --run -o "$PWD/quick.jsonl" --command Quick -- true E 0 >&7
read -r st ms warn wfail <&9
echo "quick=$st"
printf '%s\0' M "" "=0" "" "=build-1" "=UTC" 5 --console -o "$PWD/msg.jsonl" -- "token=abc" >&7
read -r st <&9
echo "message=$st"
printf 'X\0' >&7
if read -r st <&9; then echo "answered $st"; else echo "no answer: the logger ended"; fi
i=0
while [ -e "/proc/$pid" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "/proc/$pid" ] && echo "logger still runs" || echo "logger ended"
EOF2
	run timeout 60 bash client.sh
	assert_success
	assert_output "hello=ok
dir removed
end=3 warn=1 wfail=0 ms_is_number=yes
quick=0
message=0
no answer: the logger ended
logger ended"
	# The command's lines on the console's stdout (redacted, the last
	# line ended), its Running and Failed lines on the console's stderr.
	assert_equal "$(cat console.out)" "one
two password=[REDACTED]
warning: three"
	run sed -e 's/^\[[0-9:]*\] //' -e 's/, [0-9.]*s)/, Ts)/' console.err
	assert_output "INFO  Running: Two lines
ERROR Failed: Two lines (exit 3, Ts)
INFO  token=abc
tally-log: warning: logger: a request it does not know: ending"
	assert_json_lines cmd.jsonl
	run jq -c '[.level, .message, .exit_code, .warning_count]' cmd.jsonl
	assert_output '["INFO","one",null,null]
["INFO","two password=[REDACTED]",null,null]
["WARN","warning: three",null,null]
["ERROR","Command finished: Two lines",3,1]'
	run jq -r '.message' quick.jsonl
	assert_output "Command finished: Quick"
	# TALLY_REDACT=0 and BUILD_CORRELATION_ID came with the message.
	assert_json_lines msg.jsonl
	run jq -c '[.message, .correlation_id]' msg.jsonl
	assert_output '["token=abc","build-1"]'
}
