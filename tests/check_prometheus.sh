#!/bin/sh
# Checks the observability deployment files with the real tools:
#
#   docker/prometheus.yml          promtool check config (which also loads
#                                  the rule file it names), plus the
#                                  scrape jobs and targets the stack needs
#   docker/prometheus-alerts.yml   promtool check rules, and promtool test
#                                  rules on tests/prometheus/alerts.test.yml;
#                                  every alert must have a test where it
#                                  fires and one where it stays quiet
#   docker/grafana-datasources.yml YAML parse and the data sources the
#   docker/grafana-dashboards.yml  dashboards rely on; the provider
#   docker/grafana/dashboards/*.json  strict JSON parse (node) and the
#                                  dashboard model; its PromQL parses
#                                  (promtool, as recording rules)
#   all PromQL                     names only metrics octopusd exports (with
#                                  the labels each has) and scrape jobs
#                                  prometheus.yml defines, so a renamed
#                                  metric, label or job fails here
#
# Tools: promtool (Debian package prometheus), node, and python3 with its
# yaml module (Debian package python3-yaml) for the YAML files, which
# promtool cannot parse as generic YAML. ./dev installs them. A missing
# tool skips this test (exit 77), or fails it when OCTO_REQUIRE_TOOLS=1.
#
# Run by `make check` from the build directory, with $srcdir from automake;
# by hand: srcdir=. sh tests/check_prometheus.sh (default: the script's ../).
# Prints PASS/FAIL per check, what failed, and a Check-style summary line.

# shellcheck disable=SC2317 # functions called through run()
set -u

: "${srcdir:=$(dirname "$0")/..}"
top=$(cd "$srcdir" 2>/dev/null && pwd) || {
	echo "check_prometheus: srcdir '$srcdir' not found" >&2
	exit 99
}

prom_config=$top/docker/prometheus.yml
prom_rules=$top/docker/prometheus-alerts.yml
prom_tests=$top/tests/prometheus/alerts.test.yml
gf_datasources=$top/docker/grafana-datasources.yml
gf_dashboards=$top/docker/grafana-dashboards.yml
dashboard_dir=$top/docker/grafana/dashboards

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_prometheus.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

checks=0
failures=0
missing=

# run NAME CMD...: runs one check, prints PASS or FAIL and, on failure,
# what the command printed.
run() {
	name=$1
	shift
	checks=$((checks + 1))
	if "$@" >"$tmp/out" 2>&1; then
		echo "PASS: $name"
	else
		failures=$((failures + 1))
		echo "FAIL: $name"
		sed 's/^/    /' "$tmp/out"
	fi
}

# skip NAME TOOL: the check needs a tool that is not installed.
skip() {
	echo "SKIP: $1 ($2 not found)"
	case " $missing " in *" $2 "*) ;; *) missing="$missing $2" ;; esac
}

# --- the tools --------------------------------------------------------------
promtool=$(command -v promtool 2>/dev/null || true)
node=$(command -v node 2>/dev/null || command -v nodejs 2>/dev/null || true)
python=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' >/dev/null 2>&1; then
		python=$p
		break
	fi
done

# --- python: YAML files and PromQL names --------------------------------------
# Subcommands (each prints what is wrong and exits 1):
#   yaml FILE...                 parses (duplicate keys rejected)
#   prometheus-config FILE       scrape jobs, targets, rule_files, no secrets
#   grafana DATASOURCES PROVIDERS DASHBOARD_DIR   provisioning files, and
#                                the data source uids the dashboards use
#   coverage RULES TESTS         every alert tested firing and quiet
#   names CONFIG RULES DASHBOARD_DIR   metric, label and job names in PromQL
#   dashboard-rules OUT DASHBOARD_DIR  writes the dashboards' PromQL as
#                                recording rules, for promtool
cat >"$tmp/check.py" <<'PYTHON'
import glob
import json
import os
import re
import sys

import yaml

# What octopusd exports at GET /metrics: name -> its own labels (job and
# instance come from the scrape). Histograms also get _bucket (with le),
# _sum and _count.
COUNTERS_GAUGES = {
    "http_requests_total": {"method", "route", "status"},
    "active_downloads": set(),
    "download_queue_depth": set(),
    "download_jobs_submitted_total": set(),
    "download_jobs_total": {"status"},
    "download_files_retried_total": set(),
    "download_files_rescued_total": set(),
    "storage_requests_total": {"operation", "result"},
    "log_records_dropped_total": set(),
    "octopus_build_info": {"version"},
    "process_resident_memory_bytes": set(),
    "process_virtual_memory_bytes": set(),
    "process_cpu_seconds_total": set(),
    "process_open_fds": set(),
    "process_max_fds": set(),
    "process_start_time_seconds": set(),
    "up": set(),
}
HISTOGRAMS = {
    "http_request_duration_seconds": {"method", "route"},
    "download_processing_duration_seconds": set(),
    "storage_request_duration_seconds": {"operation"},
}
TARGET_LABELS = {"job", "instance"}
METRICS = {n: l | TARGET_LABELS for n, l in COUNTERS_GAUGES.items()}
for h, l in HISTOGRAMS.items():
    METRICS[h + "_bucket"] = l | TARGET_LABELS | {"le"}
    METRICS[h + "_sum"] = l | TARGET_LABELS
    METRICS[h + "_count"] = l | TARGET_LABELS
ALL_LABELS = set().union(*METRICS.values())

KEYWORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring",
    "group_left", "group_right", "offset", "inf", "nan",
    # aggregation operators, which may be followed by a by/without clause
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}
STRING = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'
GRAFANA_RANGES = re.compile(
    r"\$\{?__(rate_interval|interval_ms|interval|range_ms|range_s|range)\}?")

errors = []


def err(msg):
    if msg not in errors:
        errors.append(msg)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=StrictLoader)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def finish():
    for e in errors:
        print(e)
    sys.exit(1 if errors else 0)


def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))  # collapsed rows


def dashboard_exprs(path):
    """(where, expr) of every Prometheus query of a dashboard."""
    d = load_json(path)
    name = path.rsplit("/", 1)[-1]
    out = []
    for p in walk_panels(d.get("panels")):
        for t in p.get("targets") or []:
            ds = t.get("datasource") or p.get("datasource") or {}
            if ds.get("type") == "prometheus" or "expr" in t:
                out.append(("%s panel %r target %s" % (
                    name, p.get("title"), t.get("refId")), t.get("expr", "")))
    for v in (d.get("templating") or {}).get("list") or []:
        if (v.get("datasource") or {}).get("type") == "prometheus":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append(("%s variable %r" % (name, v.get("name")), q or ""))
    return out


def rule_exprs(path):
    out = []
    for g in load_yaml(path).get("groups") or []:
        for r in g.get("rules") or []:
            what = r.get("alert") or r.get("record")
            out.append(("%s rule %s" % (path.rsplit("/", 1)[-1], what),
                        str(r.get("expr", ""))))
    return out


def scrape_jobs(config_path):
    return {j.get("job_name") for j in load_yaml(config_path).get("scrape_configs") or []}


def check_promql(where, expr, jobs):
    """Metric, label and job names of one PromQL expression."""
    if not expr.strip():
        err("%s: empty expression" % where)
        return set()
    s = GRAFANA_RANGES.sub("5m", expr)
    s = re.sub(r"#[^\n]*", " ", s)  # comments
    # Selectors with their matchers: name{label op "value", ...}
    for m in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{((?:%s|[^}\"'`])*)\}" % STRING, s):
        metric, body = m.group(1), m.group(2)
        for lm in re.finditer(r"([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*(%s)" % STRING, body):
            label, op, value = lm.group(1), lm.group(2), lm.group(3)[1:-1]
            if label == "__name__":
                err("%s: select metrics by name, not {__name__=...}" % where)
                continue
            known = METRICS.get(metric, ALL_LABELS) if metric else ALL_LABELS
            if label not in known:
                err("%s: label %r is not one %s has" % (
                    where, label, metric or "any octopusd metric"))
            if label == "job" and op in ("=", "=~"):
                alts = value.split("|") if op == "=~" else [value]
                for a in alts:
                    if re.fullmatch(r"[\w-]+", a) and a not in jobs:
                        err("%s: job %r is not a scrape job of prometheus.yml "
                            "(%s)" % (where, a, ", ".join(sorted(jobs))))
    # Blank strings, then drop matchers, ranges, grouping label lists.
    s = re.sub(STRING, '""', s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    for g in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", s):
        for label in re.findall(r"[A-Za-z_]\w*", g.group(2)):
            if label not in ALL_LABELS:
                err("%s: %s (%s): label %r is not one octopusd exports" % (
                    where, g.group(1), g.group(2).strip(), label))
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    s = re.sub(r"@\s*(start\(\)|end\(\)|[\d.]+)", " ", s)
    s = re.sub(r"(?<![\w:.])(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", s):
        ident = m.group(0)
        if ident.lower() in KEYWORDS or re.match(r"\s*\(", s[m.end():]):
            continue  # operator, aggregation or function
        names.add(ident)
        if ident not in METRICS:
            err("%s: metric %r is not one octopusd exports" % (where, ident))
    return names


def cmd_yaml(paths):
    for p in paths:
        try:
            if load_yaml(p) is None:
                err("%s: empty" % p)
        except (OSError, yaml.YAMLError) as e:
            err("%s: %s" % (p, e))


def cmd_prometheus_config(path):
    c = load_yaml(path)
    g = c.get("global") or {}
    for k in ("scrape_interval", "evaluation_interval"):
        if g.get(k) != "15s":
            err("global.%s is %r, want 15s" % (k, g.get(k)))
    if c.get("rule_files") != ["prometheus-alerts.yml"]:
        err("rule_files is %r, want [prometheus-alerts.yml] (relative: "
            "next to prometheus.yml)" % (c.get("rule_files"),))
    want = {
        "prometheus": ("/metrics", "localhost:9090"),
        "octopus": ("/metrics", "octopus-api:3000"),
        "minio": ("/minio/v2/metrics/cluster", "minio:9000"),
        "elasticsearch": ("/metrics", "elasticsearch-exporter:9114"),
    }
    jobs = {j.get("job_name"): j for j in c.get("scrape_configs") or []}
    for name, (path_, target) in want.items():
        j = jobs.get(name)
        if j is None:
            err("no scrape job %r" % name)
            continue
        if j.get("metrics_path", "/metrics") != path_:
            err("job %s: metrics_path %r, want %r" % (name, j.get("metrics_path"), path_))
        targets = [t for sc in j.get("static_configs") or [] for t in sc.get("targets") or []]
        # DNS discovery: one target per address the name resolves to.
        targets += ["%s:%s" % (n, sd.get("port")) for sd in j.get("dns_sd_configs") or []
                    for n in sd.get("names") or []]
        if target not in targets:
            err("job %s: target %s missing (has %s)" % (name, target, targets))
    text = open(path, encoding="utf-8").read()
    for secret in ("password", "bearer_token", "credentials", "authorization", "basic_auth"):
        if re.search(r"^\s*[^#\n]*\b%s\b\s*:" % secret, text, re.M | re.I):
            err("%s: %s: no secrets in this file (configuration comes from .env)" % (path, secret))


def cmd_grafana(ds_path, prov_path, dashboards):
    ds = load_yaml(ds_path)
    if ds.get("apiVersion") != 1:
        err("%s: apiVersion must be 1" % ds_path)
    sources = ds.get("datasources") or []
    by_uid = {}
    for s in sources:
        for k in ("name", "type", "uid", "url", "access"):
            if not s.get(k):
                err("%s: data source %r: no %s" % (ds_path, s.get("name"), k))
        if s.get("uid") in by_uid:
            err("%s: uid %r given twice" % (ds_path, s.get("uid")))
        by_uid[s.get("uid")] = s
        for secret in ("secureJsonData", "basicAuthPassword", "password"):
            if secret in s:
                err("%s: data source %r: %s: no secrets here" % (ds_path, s.get("name"), secret))
    defaults = [s.get("uid") for s in sources if s.get("isDefault")]
    if defaults != ["prometheus"]:
        err("%s: the one default data source must be uid prometheus, not %s" % (ds_path, defaults))
    p = by_uid.get("prometheus") or {}
    if (p.get("type"), p.get("url")) != ("prometheus", "http://prometheus:9090"):
        err("%s: uid prometheus must be type prometheus at http://prometheus:9090" % ds_path)
    e = by_uid.get("elasticsearch") or {}
    jd = e.get("jsonData") or {}
    if (e.get("type"), e.get("url")) != ("elasticsearch", "http://elasticsearch:9200"):
        err("%s: uid elasticsearch must be type elasticsearch at http://elasticsearch:9200" % ds_path)
    if jd.get("index") != "logs-octopus-*" or jd.get("timeField") != "@timestamp":
        err("%s: elasticsearch jsonData needs index logs-octopus-* and timeField @timestamp" % ds_path)

    prov = load_yaml(prov_path)
    if prov.get("apiVersion") != 1:
        err("%s: apiVersion must be 1" % prov_path)
    providers = prov.get("providers") or []
    if not providers:
        err("%s: no providers" % prov_path)
    for pr in providers:
        path = (pr.get("options") or {}).get("path", "")
        if pr.get("type") != "file" or not path.startswith("/") or not pr.get("name"):
            err("%s: provider %r: want name, type file and an absolute options.path"
                % (prov_path, pr.get("name")))

    for dpath in dashboards:
        d = load_json(dpath)
        refs = [("annotation %r" % a.get("name"), a.get("datasource"))
                for a in (d.get("annotations") or {}).get("list") or []]
        for panel in walk_panels(d.get("panels")):
            refs.append(("panel %r" % panel.get("title"), panel.get("datasource")))
            for t in panel.get("targets") or []:
                refs.append(("panel %r target %s" % (panel.get("title"), t.get("refId")),
                             t.get("datasource")))
        for where, ref in refs:
            if ref is None or (isinstance(ref, dict) and ref.get("type") == "grafana"):
                continue
            if not isinstance(ref, dict):
                err("%s: %s: datasource must be {type, uid}, not %r" % (dpath, where, ref))
                continue
            s = by_uid.get(ref.get("uid"))
            if s is None:
                err("%s: %s: datasource uid %r is not provisioned in %s"
                    % (dpath, where, ref.get("uid"), ds_path))
            elif s.get("type") != ref.get("type"):
                err("%s: %s: datasource %r is type %s, not %s"
                    % (dpath, where, ref.get("uid"), s.get("type"), ref.get("type")))


def cmd_coverage(rules_path, tests_path):
    alerts = [r.get("alert") for g in load_yaml(rules_path).get("groups") or []
              for r in g.get("rules") or [] if r.get("alert")]
    fires, quiet = set(), set()
    for group in load_yaml(tests_path).get("tests") or []:
        for t in group.get("alert_rule_test") or []:
            name = t.get("alertname")
            if name not in alerts:
                err("%s: test of %r, which no rule defines" % (tests_path, name))
            (fires if t.get("exp_alerts") else quiet).add(name)
    for a in alerts:
        if a not in fires:
            err("alert %s: no test where it fires (non-empty exp_alerts)" % a)
        if a not in quiet:
            err("alert %s: no test where it stays quiet (exp_alerts: [])" % a)


def cmd_names(config_path, rules_path, dashboards):
    jobs = scrape_jobs(config_path)
    for where, expr in rule_exprs(rules_path):
        check_promql(where, expr, jobs)
    # The dashboards must show what the service is about.
    want = {"http_requests_total", "http_request_duration_seconds_bucket",
            "active_downloads", "download_queue_depth", "download_jobs_total",
            "download_processing_duration_seconds_bucket",
            "storage_requests_total", "log_records_dropped_total"}
    used = set()
    for d in dashboards:
        for where, expr in dashboard_exprs(d):
            used |= check_promql(where, expr, jobs)
    for m in sorted(want - used):
        err("no dashboard panel uses %s" % m)


def cmd_dashboard_rules(out, dashboards):
    rules = []
    for d in dashboards:
        for i, (where, expr) in enumerate(dashboard_exprs(d)):
            rules.append({"record": "dashboard:query:%d_%d" % (len(rules), i),
                          "expr": GRAFANA_RANGES.sub("5m", expr),
                          "labels": {"source": where}})
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)


def dashboard_files(dirs):
    files = []
    for d in dirs:
        found = sorted(glob.glob(os.path.join(glob.escape(d), "*.json")))
        if not found:
            err("%s: no dashboard" % d)
        files += found
    return files


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "yaml":
            cmd_yaml(args)
        elif cmd == "prometheus-config":
            cmd_prometheus_config(args[0])
        elif cmd == "grafana":
            cmd_grafana(args[0], args[1], dashboard_files(args[2:]))
        elif cmd == "coverage":
            cmd_coverage(args[0], args[1])
        elif cmd == "names":
            cmd_names(args[0], args[1], dashboard_files(args[2:]))
        elif cmd == "dashboard-rules":
            cmd_dashboard_rules(args[0], dashboard_files(args[1:]))
        else:
            err("unknown subcommand %s" % cmd)
    except (OSError, ValueError, yaml.YAMLError, AttributeError, TypeError) as e:
        err("%s: %s: %s" % (cmd, type(e).__name__, e))
    finish()


main()
PYTHON

# --- node: the dashboards' JSON ----------------------------------------------
cat >"$tmp/dashboard.js" <<'NODE'
'use strict';
// Strict JSON parse of each dashboard (*.json of the directory given), and
// the parts of the Grafana model provisioning and the panels need. Prints
// what is wrong; exit 1 if any.
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const errors = [];
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f));
if (files.length === 0) errors.push(`${dir}: no dashboard`);
for (const file of files) {
  const e = (m) => errors.push(`${file}: ${m}`);
  let d;
  try {
    d = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (x) {
    e(`not valid JSON: ${x.message}`);
    continue;
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) { e('not a JSON object'); continue; }
  if (typeof d.uid !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(d.uid)) e('uid must be 1-40 of [A-Za-z0-9_-]');
  if (file.endsWith('/octopus-api.json') && d.uid !== 'octopus-api') e('uid must be "octopus-api"');
  if (typeof d.title !== 'string' || !d.title) e('no title');
  if (!Number.isInteger(d.schemaVersion) || d.schemaVersion < 36) e('schemaVersion must be an integer >= 36');
  if (d.id !== undefined && d.id !== null) e('id must be null (provisioning assigns it)');
  if (!Array.isArray(d.panels) || d.panels.length === 0) { e('no panels'); continue; }
  const ids = new Set();
  const all = [];
  const walk = (ps) => { for (const p of ps || []) { all.push(p); walk(p.panels); } };
  walk(d.panels);
  let logs = 0;
  for (const p of all) {
    const where = `panel ${JSON.stringify(p.title)}`;
    if (!Number.isInteger(p.id) || ids.has(p.id)) e(`${where}: id missing or repeated`);
    ids.add(p.id);
    if (typeof p.type !== 'string' || !p.title) e(`${where}: needs a type and a title`);
    const g = p.gridPos || {};
    if (!['x', 'y', 'w', 'h'].every((k) => Number.isInteger(g[k]) && g[k] >= 0) || g.x + g.w > 24 || g.w === 0 || g.h === 0)
      e(`${where}: gridPos needs integers x, y, w, h within 24 columns`);
    if (p.type === 'row') continue;
    if (!Array.isArray(p.targets) || p.targets.length === 0) { e(`${where}: no targets`); continue; }
    const refs = new Set();
    for (const t of p.targets) {
      if (!t.refId || refs.has(t.refId)) e(`${where}: target refId missing or repeated`);
      refs.add(t.refId);
      const ds = t.datasource || p.datasource || {};
      if (!ds.uid || !ds.type) e(`${where} target ${t.refId}: datasource needs type and uid`);
      if (ds.type === 'prometheus' && (typeof t.expr !== 'string' || !t.expr.trim()))
        e(`${where} target ${t.refId}: no expr`);
      if (ds.type === 'elasticsearch' && (!Array.isArray(t.metrics) || !t.timeField))
        e(`${where} target ${t.refId}: elasticsearch target needs metrics and timeField`);
    }
    if (p.type === 'logs' && (p.datasource || {}).type === 'elasticsearch') logs++;
  }
  if (logs === 0) e('no logs panel on the Elasticsearch data source');
}
for (const m of errors) console.log(m);
process.exit(errors.length ? 1 : 0);
NODE

# --- the checks --------------------------------------------------------------
if ! ls "$dashboard_dir"/*.json >/dev/null 2>&1; then
	checks=$((checks + 1)) failures=$((failures + 1))
	echo "FAIL: no dashboard (*.json) in $dashboard_dir"
fi

if [ -n "$promtool" ]; then
	run "promtool check config docker/prometheus.yml" \
		"$promtool" check config --lint-fatal "$prom_config"
	run "promtool check rules docker/prometheus-alerts.yml" \
		"$promtool" check rules --lint-fatal "$prom_rules"
	run "promtool test rules tests/prometheus/alerts.test.yml" \
		"$promtool" test rules "$prom_tests"
else
	skip "promtool check config, check rules, test rules" promtool
fi

if [ -n "$node" ]; then
	run "dashboard JSON (node JSON.parse and model)" \
		"$node" "$tmp/dashboard.js" "$dashboard_dir"
else
	skip "dashboard JSON" node
fi

if [ -n "$python" ]; then
	py() { "$python" "$tmp/check.py" "$@"; }
	run "YAML parses: prometheus, alerts, tests, grafana" \
		py yaml "$prom_config" "$prom_rules" "$prom_tests" "$gf_datasources" "$gf_dashboards"
	run "prometheus.yml scrape jobs, targets and rule_files" \
		py prometheus-config "$prom_config"
	run "every alert tested firing and quiet" \
		py coverage "$prom_rules" "$prom_tests"
	run "grafana provisioning and dashboard data sources" \
		py grafana "$gf_datasources" "$gf_dashboards" "$dashboard_dir"
	run "alerts and dashboards use only octopusd metrics, labels and scrape jobs" \
		py names "$prom_config" "$prom_rules" "$dashboard_dir"
	if [ -n "$promtool" ]; then
		dashboard_promql() {
			py dashboard-rules "$tmp/dashboards.rules.yml" "$dashboard_dir" &&
				"$promtool" check rules "$tmp/dashboards.rules.yml"
		}
		run "dashboard PromQL parses (promtool check rules)" dashboard_promql
	fi
else
	skip "YAML files, metric names" python3-yaml
fi

# --- the verdict -------------------------------------------------------------
if [ -n "$missing" ] && [ "${OCTO_REQUIRE_TOOLS:-0}" = 1 ]; then
	for t in $missing; do
		checks=$((checks + 1)) failures=$((failures + 1))
		echo "FAIL: $t is required (OCTO_REQUIRE_TOOLS=1) but not installed"
	done
fi
if [ "$checks" -gt 0 ]; then
	echo "$(((checks - failures) * 100 / checks))%: Checks: $checks, Failures: $failures, Errors: 0"
fi
[ "$failures" -eq 0 ] || exit 1
[ -z "$missing" ] || exit 77
exit 0
