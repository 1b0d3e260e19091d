#!/usr/bin/env bats
# Files written by tally-metric and metrics.sh, read by a real
# prometheus-node-exporter through its textfile collector: it must report
# node_textfile_scrape_error 0 and serve every series of the files, with
# their HELP, TYPE, labels and values (compared parsed, not as text).

load ../lib/common

setup() {
	tally_setup
	command -v prometheus-node-exporter >/dev/null ||
		skip "prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)"
	mkdir textfiles
	NE_PID=
}

teardown() {
	if [ -n "${NE_PID-}" ]; then
		kill "$NE_PID" 2>/dev/null || :
		wait "$NE_PID" 2>/dev/null || :
	fi
}

# start_exporter: starts node_exporter with only the textfile collector on
# textfiles/, on 127.0.0.1, and waits (at most 10 s) until it answers.
start_exporter() {
	local i=0
	NE_PORT=$(free_port)
	prometheus-node-exporter --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$PWD/textfiles" \
		--web.listen-address="127.0.0.1:$NE_PORT" >exporter.log 2>&1 &
	NE_PID=$!
	until curl -fsS -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le 200 ] || { cat exporter.log; fail "node_exporter did not start"; }
		sleep 0.05
	done
}

# promtool_all: every textfiles/*.prom passes promtool check metrics with
# no lint complaint.
promtool_all() {
	local f
	for f in textfiles/*.prom; do
		run promtool check metrics <"$f"
		assert_success
		assert_output ''
	done
}

# scrape: fetches /metrics into scraped.txt.
scrape() {
	curl -fsS "http://127.0.0.1:$NE_PORT/metrics" >scraped.txt
}

# compare: checks scraped.txt against every textfiles/*.prom, parsed: the
# scrape error gauge is 0 and every family of the files is served with the
# same HELP, TYPE and series (labels and values, bit for bit). Prints
# "families F, series S, scrape_error E" on success.
compare() {
	python3 - textfiles scraped.txt <<'EOF'
import glob, math, struct, sys

def unescape(s, quotes):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == '\\' and i + 1 < len(s):
            n = s[i + 1]
            out.append({'n': '\n', '\\': '\\', '"': '"'}.get(n, '\\' + n) if (quotes or n != '"') else '\\"')
            i += 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)

def labels(s, i):
    res = []
    while True:
        while s[i] in ' ,':
            i += 1
        if s[i] == '}':
            return tuple(sorted(res)), i + 1
        j = s.index('=', i)
        name = s[i:j].strip()
        i = s.index('"', j) + 1
        val = []
        while s[i] != '"':
            if s[i] == '\\':
                val.append(s[i:i + 2])
                i += 2
            else:
                val.append(s[i])
                i += 1
        res.append((name, unescape(''.join(val), True)))
        i += 1

def parse(text, where):
    help_, type_, series = {}, {}, {}
    for line in text.split('\n'):
        if not line:
            continue
        if line.startswith('# HELP '):
            name, _, h = line[7:].partition(' ')
            help_[name] = unescape(h, False)
        elif line.startswith('# TYPE '):
            name, t = line[7:].split(' ')
            type_[name] = t
        elif line.startswith('#'):
            continue
        else:
            i = 0
            while i < len(line) and line[i] not in '{ ':
                i += 1
            name = line[:i]
            lab = ()
            if i < len(line) and line[i] == '{':
                lab, i = labels(line, i + 1)
            rest = line[i:].split()
            if len(rest) != 1:
                stamped.append('%s: a timestamp or junk after the value: %r' % (where, line))
            # Prometheus reads an empty label value as no label, and reads
            # le and quantile as numbers (node_exporter writes 1e+06 for 1000000).
            lab = tuple((k, repr(float(v)) if k in ('le', 'quantile') else v) for k, v in lab if v != '')
            key = (name, lab)
            if key in series:
                sys.exit('%s: duplicate series %r' % (where, key))
            series[key] = float(rest[0])
    return help_, type_, series

def family(name, types):
    for suffix in ('_bucket', '_sum', '_count', ''):
        base = name[:len(name) - len(suffix)] if suffix else name
        if name.endswith(suffix) and base in types:
            return base
    return name

def same(a, b):
    # Bit for bit, except that node_exporter serves -0 as 0.
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack('<d', a) == struct.pack('<d', b) or a == b == 0

stamped = []

fh, ft, fs = {}, {}, {}
for path in sorted(glob.glob(sys.argv[1] + '/*.prom')):
    h, t, s = parse(open(path, encoding='utf-8').read(), path)
    fh.update(h); ft.update(t); fs.update(s)
sh, st, ss = parse(open(sys.argv[2], encoding='utf-8').read(), 'scrape')
err = ss.get(('node_textfile_scrape_error', ()))
if err != 0:
    sys.exit('node_textfile_scrape_error is %r' % err)
if stamped:
    sys.exit('\n'.join(stamped))
fams = set(ft) | set(fh)
bad = []
for f in sorted(fams):
    if sh.get(f) != fh.get(f):
        bad.append('HELP of %s: file %r, scrape %r' % (f, fh.get(f), sh.get(f)))
    if st.get(f) != ft.get(f):
        bad.append('TYPE of %s: file %r, scrape %r' % (f, ft.get(f), st.get(f)))
served = {k: v for k, v in ss.items() if family(k[0], st) in fams}
for k in sorted(set(fs) | set(served)):
    if k not in served:
        bad.append('not served: %r' % (k,))
    elif k not in fs:
        bad.append('served but in no file: %r' % (k,))
    elif not same(fs[k], served[k]):
        bad.append('value of %r: file %r, scrape %r' % (k, fs[k], served[k]))
if bad:
    sys.exit('\n'.join(bad[:20]))
print('families %d, series %d, scrape_error 0' % (len(fams), len(fs)))
EOF
}

@test "adversarial label values, HELP texts and floats are served exactly by node_exporter" {
	local v f=textfiles/values.prom
	for v in 0 -0 0.1 1e15 1e16 1e21 1e308 -1e308 5e-324 9007199254740993 9007199254740994 \
		18446744073709551616 NaN +Inf -Inf 0.30000000000000004 1e-7 123456.789; do
		tally-metric set -f "$f" --help-text $'Values: \\ and\nnewline "quoted"' --label "in=$v" tally_value "$v"
	done
	tally-metric set -f textfiles/labels.prom --label $'path=/a"b\\c\nd \xc3\xa9\xe2\x82\xac' --label z=last tally_disk_bytes 1
	tally-metric set -f textfiles/labels.prom --label 'path=C:\dir\' tally_disk_bytes 2
	tally-metric set -f textfiles/labels.prom --label 'path=' --label z= tally_disk_bytes 3
	tally-metric set -f textfiles/labels.prom --label $'path={},="\'\t#' tally_disk_bytes 4
	tally-metric set -f textfiles/labels.prom --label $'path=\\n is not a newline' tally_disk_bytes 5
	tally-metric inc -f textfiles/labels.prom --label 'step=a b' tally_steps_total 9007199254740993
	tally-metric set -f textfiles/labels.prom --type untyped tally_untyped 42
	start_exporter
	scrape
	run compare
	assert_success
	assert_output 'families 4, series 25, scrape_error 0'
	promtool_all
}

@test "histograms with default and custom buckets, after deletes, are served exactly by node_exporter" {
	local v
	for v in 0.05 3 4000 0.5 +Inf; do
		tally-metric observe -f textfiles/h.prom --label feature=python tally_step_seconds "$v"
	done
	tally-metric observe -f textfiles/h.prom --label feature=node tally_step_seconds 12
	tally-metric observe -f textfiles/h.prom --buckets 0.001,1e-6,1e6 tally_tiny_seconds 5e-7
	tally-metric observe -f textfiles/h.prom --buckets 0.001,1e-6,1e6 tally_tiny_seconds -3
	tally-metric observe -f textfiles/h.prom --label x=gone tally_gone_seconds 1
	tally-metric observe -f textfiles/h.prom --label x=kept tally_gone_seconds 2
	tally-metric delete -f textfiles/h.prom --label x=gone tally_gone_seconds
	start_exporter
	scrape
	run compare
	assert_success
	assert_output 'families 3, series 54, scrape_error 0'
	run promtool check metrics <textfiles/h.prom
	assert_success
	assert_output ''
}

@test "a build's build.prom from metrics.sh, and files of concurrent writers, are served exactly by node_exporter" {
	local w pids=()
	export BUILD_LOG_DIR=$PWD/logs TALLY_METRICS_DIR=$PWD/textfiles
	run dash -c '. "$TALLY_HOME/lib/base/logging.sh"
		log_feature_start py-dev 3.13; log_command "ok" true; log_command "warn" sh -c "echo warning: x"; log_feature_end
		log_feature_start broken 1; log_command "fails" false; log_feature_end'
	assert_success
	for w in 1 2 3 4; do
		(
			i=0
			while [ "$i" -lt 50 ]; do
				tally-metric inc -f textfiles/race.prom --label "writer=$w" tally_writes_total || exit 1
				tally-metric observe -f textfiles/race.prom --label "writer=$w" tally_write_seconds "0.$i" || exit 1
				i=$((i + 1))
			done
		) &
		pids+=($!)
	done
	for w in "${pids[@]}"; do
		wait "$w"
	done
	start_exporter
	scrape
	run compare
	assert_success
	assert_output 'families 10, series 111, scrape_error 0'
	promtool_all
	run grep -c '^tally_writes_total{writer="[1-4]"} 50$' scraped.txt
	assert_output 4
}

@test "the oracle works: node_exporter reports an error for a hand-written file with timestamps, none once tally-metric rewrote it" {
	printf '# HELP tally_jobs_total Jobs.\n# TYPE tally_jobs_total counter\ntally_jobs_total{q="a"} 1 1700000000000\n' >textfiles/hand.prom
	start_exporter
	scrape
	run compare
	assert_failure
	assert_output --partial 'node_textfile_scrape_error is 1'
	tally-metric inc -f textfiles/hand.prom --label q=b tally_jobs_total
	scrape
	run compare
	assert_success
	assert_output 'families 1, series 2, scrape_error 0'
}
