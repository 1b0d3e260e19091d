#!/usr/bin/env bats
# The observability assets of examples/observability/, checked offline with
# the real tools: promtool (rules, their unit tests, the scrape
# configuration), amtool (Alertmanager), jq and python3's YAML parser (the
# dashboards, compose, Kubernetes and log-shipping files), and the runbooks'
# structure. tests/e2e/fleet.bats proves the same assets against a live
# Prometheus.

load ../lib/common
load ../lib/fleet

setup() {
	tally_setup
	RULES=$OBS_DIR/prometheus/tally-rules.yml
	RULE_TESTS=$OBS_DIR/prometheus/tally-rules.test.yml
}

# py SCRIPT [ARG...]: runs python3 SCRIPT with ARGs (under bats' run).
py() {
	local script=$1
	shift
	run --separate-stderr python3 -c "$script" "$@"
}

@test "promtool check rules accepts tally-rules.yml: 8 recording rules and 13 alerts" {
	run promtool check rules "$RULES"
	assert_success
	assert_output --partial "SUCCESS: 21 rules found"
	py 'import sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
print(sum("record" in r for r in rules), sum("alert" in r for r in rules))' "$RULES"
	assert_output "8 13"
}

@test "promtool test rules passes: every alert at the boundaries of its threshold and for" {
	run promtool test rules "$RULE_TESTS"
	assert_success
	assert_output --partial SUCCESS
}

@test "every alert is unit-tested both firing and not firing" {
	py 'import sys, yaml
alerts = [r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
fires, silent = set(), set()
for t in yaml.safe_load(open(sys.argv[2]))["tests"]:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else silent).add(a["alertname"])
        for e in a.get("exp_alerts") or []:
            assert set(e["exp_annotations"]) == {"summary", "description", "runbook_url"}, a
for a in alerts:
    print(a, a in fires, a in silent)' "$RULES" "$RULE_TESTS"
	assert_success
	[ "${#lines[@]}" -eq 13 ]
	refute_output --partial False
}

# The unit tests must notice a threshold or a duration moved by one step,
# and the two mistakes of the old toolkit coming back.
@test "the rule unit tests fail when a threshold, a window or a for duration moves" {
	local mutations n=0 alert field from to
	mutations='ContainerBuildErrors expr > 0|>= 0
ContainerBuildErrors for 1m|45s
ContainerBuildSlow expr > 600|>= 600
ContainerBuildSlow for 1m|45s
ContainerUnhealthy for 2m|105s
ContainerHealthcheckSlow expr > 10|>= 10
ContainerHealthcheckSlow for 5m|285s
ContainerRestarted expr [15m]|[16m]
ContainerRestarted expr container_start_time_seconds|container_uptime_seconds
ContainerFlapping expr >= 3|> 3
ContainerFlapping expr [1h]|[61m]
ContainerDiskUsageHigh expr > 10737418240|>= 10737418240
ContainerDiskUsageHigh for 15m|885s
ContainerMetricsStale expr > 300|>= 300
ContainerMetricsStale for 2m|105s
ContainerMetricsMissing for 5m|285s
ContainerExporterDown for 5m|285s
FleetUnhealthyRatioHigh expr > 0.2|>= 0.2
FleetUnhealthyRatioHigh for 5m|285s
FleetBuildFailureRatioHigh expr > 0.25|>= 0.25
FleetBuildFailureRatioHigh for 5m|285s
FleetTargetsMissing for 10m|585s
job:container_healthcheck_unhealthy:count expr (1 - container_healthcheck_status)|(container_healthcheck_status == 0)
instance:container_build_failed_features:count expr {status="failure"}|{status="failure"} > 5'
	cp "$RULE_TESTS" "$BATS_TEST_TMPDIR/tally-rules.test.yml"
	while read -r alert field rest; do
		from=${rest%%|*}
		to=${rest#*|}
		n=$((n + 1))
		py 'import sys, yaml
name, field, frm, to = sys.argv[2:6]
doc = yaml.safe_load(open(sys.argv[1]))
hits = 0
for g in doc["groups"]:
    for r in g["rules"]:
        if r.get("alert", r.get("record")) == name:
            assert frm in str(r[field]), (name, field, frm, r[field])
            r[field] = str(r[field]).replace(frm, to)
            hits += 1
assert hits == 1
yaml.safe_dump(doc, open(sys.argv[6], "w"), sort_keys=False)' \
			"$RULES" "$alert" "$field" "$from" "$to" "$BATS_TEST_TMPDIR/tally-rules.yml"
		assert_success
		run promtool test rules "$BATS_TEST_TMPDIR/tally-rules.test.yml"
		[ "$status" -ne 0 ] || { echo "not caught: $alert $field $from -> $to"; false; }
	done <<<"$mutations"
	[ "$n" -eq 24 ]
	# and the unmutated copy passes (the YAML round trip changes nothing)
	py 'import sys, yaml
yaml.safe_dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"), sort_keys=False)' \
		"$RULES" "$BATS_TEST_TMPDIR/tally-rules.yml"
	run promtool test rules "$BATS_TEST_TMPDIR/tally-rules.test.yml"
	assert_success
}

@test "every alert has a severity, a summary, a description and a runbook_url to its runbook" {
	py 'import sys, yaml, os
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        a, ann = r["alert"], r.get("annotations", {})
        assert r.get("labels", {}).get("severity") in ("critical", "warning", "info"), a
        assert ann.get("summary", "").strip() and ann.get("description", "").strip(), a
        suffix = "/docs/observability/runbooks/%s.md" % a
        assert ann.get("runbook_url", "").startswith("https://") and ann["runbook_url"].endswith(suffix), a
        assert os.path.isfile(sys.argv[2] + suffix), a
        print(a, r["labels"]["severity"])' "$RULES" "$TALLY_ROOT"
	assert_success
	[ "${#lines[@]}" -eq 13 ]
}

@test "one runbook per alert, each with alert name, severity, description, impact, diagnosis, resolution and prevention" {
	local alert severity rb
	py 'import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            print(r["alert"], r["labels"]["severity"])' "$RULES"
	assert_success
	local alerts=$output
	[ "$(ls "$RUNBOOK_DIR" | wc -l)" -eq 13 ]
	while read -r alert severity; do
		rb=$RUNBOOK_DIR/$alert.md
		[ -f "$rb" ]
		run head -n 1 "$rb"
		assert_output "# $alert"
		grep -qxF "| Alert name | \`$alert\` |" "$rb"
		grep -qxF "| Severity | $severity |" "$rb"
		run grep -E '^## ' "$rb"
		assert_output "## Description
## Impact
## Diagnosis
## Resolution
## Prevention"
		[ "$(doc_blocks "$rb" diagnosis | tr -cd '\0' | wc -c)" -ge 1 ]
	done <<<"$alerts"
}

@test "every dashboard query is valid PromQL (promtool, with the variables substituted)" {
	local f expr i=0
	{
		echo "groups:"
		echo "  - name: dashboards"
		echo "    rules:"
		for f in "$OBS_DIR"/grafana/*.json; do
			while IFS=$'\t' read -r _ expr; do
				i=$((i + 1))
				printf '      - record: dashboard_query_%d\n        expr: %s\n' "$i" \
					"$(jq -Rn --arg e "$expr" '$e')"
			done < <(dashboard_exprs "$f" tally '.*' 1h)
		done
	} >"$BATS_TEST_TMPDIR/queries.yml"
	run promtool check rules "$BATS_TEST_TMPDIR/queries.yml"
	assert_success
	assert_output --partial "SUCCESS: $i rules found"
	[ "$i" -ge 30 ]
}

@test "the three dashboards are Grafana dashboard JSON models with datasource, job and instance variables" {
	local f
	run sh -c "jq -r .title '$OBS_DIR'/grafana/*.json | sort"
	assert_output "Container Build Overview
Container Runtime Health
Multi-Container Fleet"
	for f in "$OBS_DIR"/grafana/*.json; do
		run jq -e '
			(.schemaVersion | type == "number" and . >= 30) and
			(.uid | type == "string" and length > 0 and length <= 40) and
			(.panels | length > 0) and
			([.panels[].id] | length == (unique | length)) and
			(.templating.list | map(select(.name == "datasource"))[0] |
				.type == "datasource" and .query == "prometheus") and
			(.templating.list | map(select(.name == "job"))[0] |
				.type == "query" and .datasource.uid == "${datasource}" and (.query.query | startswith("label_values("))) and
			(.templating.list | map(select(.name == "instance"))[0] |
				.type == "query" and (.query.query | contains("$job"))) and
			all(.panels[];
				(.gridPos | (.x | type == "number") and (.y | type == "number") and .w > 0 and .h > 0 and .x + .w <= 24) and
				.datasource.uid == "${datasource}" and .datasource.type == "prometheus" and
				(.targets | length > 0) and
				([.targets[].refId] | length == (unique | length)) and
				all(.targets[]; (.expr | type == "string" and length > 0) and .datasource.uid == "${datasource}"))
		' "$f"
		assert_success
		assert_output true
		# no two panels overlap on the grid
		run jq -r '[.panels[] | .gridPos] as $g | [range(0; $g | length) as $i | range($i + 1; $g | length) as $j
			| select($g[$i].x < $g[$j].x + $g[$j].w and $g[$j].x < $g[$i].x + $g[$i].w and
			         $g[$i].y < $g[$j].y + $g[$j].h and $g[$j].y < $g[$i].y + $g[$i].h) | [$i, $j]] | length' "$f"
		assert_output 0
	done
}

@test "the dashboards cover what the issue names: duration, errors, status, slowest commands, health, uptime, restarts, disk, fleet" {
	run sh -c "jq -r '.title + \": \" + (.panels[].title)' '$OBS_DIR'/grafana/*.json"
	assert_success
	for t in "Container Build Overview: Build duration by feature" \
		"Container Build Overview: Errors and warnings by feature" \
		"Container Build Overview: Status per feature" \
		"Container Build Overview: Slowest commands (p95 by feature)" \
		"Container Runtime Health: Health status over time" \
		"Container Runtime Health: Healthcheck duration" \
		"Container Runtime Health: Uptime" \
		"Container Runtime Health: Restarts in the time range" \
		"Container Runtime Health: Disk usage by path" \
		"Multi-Container Fleet: Health by container" \
		"Multi-Container Fleet: Build failures across the fleet" \
		"Multi-Container Fleet: Feature distribution" \
		"Multi-Container Fleet: Error hotspots by feature"; do
		assert_line "$t"
	done
	# restarts from the start time, never changes() of the uptime
	run grep -l 'changes(container_uptime_seconds' "$OBS_DIR"/grafana/*.json "$RULES"
	assert_failure
}

@test "the scrape configuration example passes promtool check config" {
	cp "$OBS_DIR/prometheus/prometheus.yml" "$RULES" "$BATS_TEST_TMPDIR/"
	run promtool check config "$BATS_TEST_TMPDIR/prometheus.yml"
	assert_success
	assert_output --partial "SUCCESS: 21 rules found"
	py 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
print([j["job_name"] for j in c["scrape_configs"]][0], c["rule_files"])' "$OBS_DIR/prometheus/prometheus.yml"
	assert_output "tally ['tally-rules.yml']"
}

@test "amtool check-config accepts the Alertmanager example" {
	run amtool check-config "$OBS_DIR/alertmanager/alertmanager.yml"
	assert_success
	assert_output --partial SUCCESS
	assert_output --partial "4 inhibit rules"
}

@test "Alertmanager routes critical to on-call, warning to team-chat, info to tickets" {
	local sev want
	for sev in critical:on-call warning:team-chat info:tickets; do
		want=${sev#*:}
		run amtool config routes test --config.file="$OBS_DIR/alertmanager/alertmanager.yml" \
			"severity=${sev%%:*}" alertname=ContainerUnhealthy
		assert_output --partial "$want"
		assert_line "$want"
	done
	# the inhibitions name alerts that exist
	py 'import sys, yaml, re
alerts = {r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
am = yaml.safe_load(open(sys.argv[2]))
for rule in am["inhibit_rules"]:
    for m in rule["source_matchers"] + rule["target_matchers"]:
        names = re.match(r"alertname=~?\"(.*)\"$", m).group(1).split("|")
        assert set(names) <= alerts, names
print("ok")' "$RULES" "$OBS_DIR/alertmanager/alertmanager.yml"
	assert_output ok
}

@test "the compose file parses, runs the four services and everything it mounts or builds exists" {
	py 'import sys, os, yaml
d = os.path.dirname(sys.argv[1])
c = yaml.safe_load(open(sys.argv[1]))
print(" ".join(sorted(c["services"])))
for name, s in c["services"].items():
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            assert os.path.exists(os.path.join(d, src)), (name, src)
    if "build" in s:
        ctx = os.path.join(d, s["build"]["context"])
        assert os.path.isfile(os.path.join(ctx, s["build"]["dockerfile"])), name
        assert os.path.isfile(os.path.join(ctx, "Makefile")), name
for f in ("grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/tally.yml"):
    assert yaml.safe_load(open(os.path.join(d, f)))["apiVersion"] == 1, f' "$OBS_DIR/compose/compose.yaml"
	assert_success
	assert_output "alertmanager app grafana prometheus"
	# the app image runs the toolkit's installed commands
	run grep -E '^(HEALTHCHECK|CMD|  CMD)' "$OBS_DIR/compose/app.Dockerfile"
	assert_output --partial '"/opt/tally/bin/healthcheck"'
	assert_output --partial '"/opt/tally/bin/metrics-exporter", "--"'
}

@test "the PrometheusRule holds exactly tally-rules.yml, and promtool accepts its spec" {
	py 'import sys, yaml
pr = yaml.safe_load(open(sys.argv[1]))
assert pr["kind"] == "PrometheusRule" and pr["apiVersion"] == "monitoring.coreos.com/v1"
assert pr["spec"]["groups"] == yaml.safe_load(open(sys.argv[2]))["groups"], "PrometheusRule differs from tally-rules.yml"
yaml.safe_dump({"groups": pr["spec"]["groups"]}, open(sys.argv[3], "w"))' \
		"$OBS_DIR/kubernetes/prometheusrule.yaml" "$RULES" "$BATS_TEST_TMPDIR/spec.yml"
	assert_success
	run promtool check rules "$BATS_TEST_TMPDIR/spec.yml"
	assert_success
	assert_output --partial "SUCCESS: 21 rules found"
}

@test "the Kubernetes Deployment probes with the healthcheck and the PodMonitor scrapes its metrics port as job tally" {
	py 'import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
dep = [d for d in docs if d["kind"] == "Deployment"][0]
svc = [d for d in docs if d["kind"] == "Service"][0]
pm = yaml.safe_load(open(sys.argv[2]))
pod = dep["spec"]["template"]
assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
assert pm["kind"] == "PodMonitor"
assert pm["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
c = pod["spec"]["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
ep = pm["spec"]["podMetricsEndpoints"][0]
assert ep["port"] in ports and ports[ep["port"]] == 9090 and ep["path"] == "/metrics"
assert any(r.get("targetLabel") == "job" and r.get("replacement") == "tally" for r in ep["relabelings"])
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    cmd = c[probe]["exec"]["command"]
    assert cmd[0] == "/opt/tally/bin/healthcheck", probe
    assert c[probe]["timeoutSeconds"] > int(cmd[cmd.index("--total-timeout") + 1]), probe
assert "--no-record" in c["livenessProbe"]["exec"]["command"]
assert "--no-record" not in c["readinessProbe"]["exec"]["command"]
print("ok")' "$OBS_DIR/kubernetes/deployment.yaml" "$OBS_DIR/kubernetes/podmonitor.yaml"
	assert_success
	assert_output ok
}

@test "the log shipping configurations read json/*.jsonl, parse real timestamps and label level and feature, not correlation_id" {
	local ts
	ts=$("$TALLY_BUILD/bin/tally-log" --level INFO --feature demo "shipping test" | jq -r .timestamp)
	[[ "$ts" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]
	py 'import sys, re, yaml
d, ts = sys.argv[1], sys.argv[2]
# strptime-like formats as regular expressions: Fluent Bit (%L) and chrono (%.3f)
tok = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}",
       "%S": r"\d{2}", "%L": r"\d+", "%.3f": r"\.\d{3}"}
def fmt_re(f):
    out, i = "", 0
    while i < len(f):
        for k in sorted(tok, key=len, reverse=True):
            if f.startswith(k, i):
                out += tok[k]; i += len(k); break
        else:
            out += re.escape(f[i]); i += 1
    return "^" + out + "$"
glob = "/var/log/container-build/json/*.jsonl"

fb = yaml.safe_load(open(d + "/fluent-bit.yaml"))
tail = fb["pipeline"]["inputs"][0]
assert tail["name"] == "tail" and tail["path"] == glob and tail["parser"] == "tally_json"
parsers, cur = {}, None
for line in open(d + "/" + fb["service"]["parsers_file"]):
    line = line.strip()
    if line == "[PARSER]":
        cur = {}
    elif line and not line.startswith("#") and cur is not None:
        k, v = line.split(None, 1); cur[k] = v
        if k == "Name": parsers[v] = cur
p = parsers["tally_json"]
assert p["Format"] == "json" and p["Time_Key"] == "timestamp"
assert re.match(fmt_re(p["Time_Format"]), ts), p["Time_Format"]
loki = [o for o in fb["pipeline"]["outputs"] if o["name"] == "loki"][0]
labels = dict(kv.strip().split("=", 1) for kv in loki["labels"].split(","))
assert labels["level"] == "$level" and labels["feature"] == "$feature" and "correlation_id" not in labels

v = yaml.safe_load(open(d + "/vector.yaml"))
src = v["sources"]["tally_json"]
assert src["type"] == "file" and src["include"] == [glob]
remap = v["transforms"]["tally_parse"]["source"]
m = re.search(r"parse_timestamp!\(\.timestamp, format: \"([^\"]+)\"\)", remap)
assert m and re.match(fmt_re(m.group(1)), ts), remap
vl = v["sinks"]["loki"]["labels"]
assert vl["level"] == "{{ level }}" and vl["feature"] == "{{ feature }}" and "correlation_id" not in vl

pt = yaml.safe_load(open(d + "/promtail.yaml"))
sc = pt["scrape_configs"][0]
assert sc["static_configs"][0]["labels"]["__path__"] == glob
stages = {list(s)[0]: list(s.values())[0] for s in sc["pipeline_stages"]}
assert stages["timestamp"] == {"source": "timestamp", "format": "RFC3339Nano"}
assert set(stages["labels"]) == {"level", "feature"}
print("ok")' "$OBS_DIR/logging" "$ts"
	assert_success
	assert_output ok
	# Go's RFC3339Nano layout (Promtail) reads the same timestamp
	run python3 -c 'import sys, datetime; print(datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%S.%f%z").isoformat())' "$ts"
	assert_success
	assert_output --regexp '^[0-9-]{10}T[0-9:]{8}\.[0-9]{6}\+00:00$'
}
