'use strict';
// The OpenAPI document against the service it describes.
//
//   1. GET /openapi serves lib/openapi.json byte for byte; the document is
//      valid OpenAPI 3 (@seriousme/openapi-schema-validator, the official
//      schemas) and loads in openapi-backend; its version is octopusd's;
//      its paths and methods are exactly the routes[] table of lib/api.c.
//   2. A real octopusd is driven over HTTP through every operation, in its
//      success and error cases, and through requests no operation lists
//      (OPTIONS, other methods, unknown paths). Every answer must have a
//      documented status, a documented Content-Type with a body the schema
//      accepts (openapi-backend's response validator for JSON, the same
//      schemas through ajv for text and event data), every header the
//      document marks as always sent, and no header it does not document.
//   3. The checks can fail: wrong bodies, statuses, types and headers, made
//      up here, must be rejected, and a broken document too.
//
// Run by tests/check_openapi.sh; modules from $NODE_TOOLS.
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { start, version, tally } = require('./daemon');

const NM = process.env.NODE_TOOLS;
const need = (m) => require(path.join(NM, m));
const { Validator } = need('@seriousme/openapi-schema-validator');
const { OpenAPIBackend } = need('openapi-backend');
const Ajv = need('ajv').default;
const addFormats = need('ajv-formats').default || need('ajv-formats');

const SRC = process.env.OCTO_SRCDIR || path.join(__dirname, '..', '..');
const URL_SECRET = 'openapi-check-url-secret-0123456789abcdef';
const STORED = Buffer.from('PK\u0003\u0004 a stored file for the OpenAPI check\n');
const t = tally();

// Headers of HTTP itself, not of the API.
const FRAMING = new Set(['date', 'content-type', 'content-length', 'connection', 'transfer-encoding', 'keep-alive']);

// ---- HTTP ------------------------------------------------------------------

// Each request comes from its own client address (octopusd trusts
// 127.0.0.1 as a proxy here), so rate limiting only bites where a test
// wants it to.
let clients = 0;
const nextClient = () => `2001:db8::${(++clients).toString(16)}`;

function request(base, { method = 'GET', path: p, headers = {}, body, client }) {
  return new Promise((resolve, reject) => {
    const h = Object.assign({ 'X-Forwarded-For': client || nextClient() }, headers);
    if (body !== undefined && h['Content-Length'] === undefined) h['Content-Length'] = Buffer.byteLength(body);
    const req = http.request(base + p, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8'), method });
      });
      res.on('error', reject);
    });
    req.setTimeout(20000, () => req.destroy(new Error(`${method} ${p}: no answer in 20 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A request written by hand, for what node's client refuses to send.
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    sock.setTimeout(20000, () => sock.destroy(new Error('raw request: no answer in 20 s')));
    sock.on('connect', () => sock.write(text));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error('raw request: no complete answer'));
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = all.subarray(end + 4, end + 4 + Number(headers['content-length'] || 0));
      resolve({ status, headers, body, text: body.toString('utf8'), method: 'GET' });
    });
  });
}

// Reads an event stream: every event until the server ends the stream,
// or the first `max` events (then the connection is dropped).
function readEvents(base, p, headers = {}, max = Infinity) {
  return new Promise((resolve, reject) => {
    const req = http.request(base + p, { headers: Object.assign({ 'X-Forwarded-For': nextClient() }, headers), agent: false }, (res) => {
      const out = { status: res.statusCode, headers: res.headers, body: Buffer.alloc(0), text: '', events: [], comments: [], ended: false, method: 'GET' };
      let buf = '';
      const done = () => { clearTimeout(timer); resolve(out); };
      const timer = setTimeout(() => { req.destroy(); reject(new Error(`${p}: the stream neither ended nor sent ${max} events in 20 s`)); }, 20000);
      res.setEncoding('utf8');
      res.on('data', (c) => {
        if (res.statusCode !== 200) { out.text += c; return; }
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { id: null, event: 'message', data: [] };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) { out.comments.push(line); continue; }
            const m = /^([a-z]+): ?(.*)$/.exec(line);
            if (!m) { ev.bad = line; continue; }
            if (m[1] === 'data') ev.data.push(m[2]);
            else ev[m[1]] = m[2];
          }
          if (ev.data.length || ev.id !== null || ev.bad) out.events.push(ev);
          if (out.events.length >= max) { req.destroy(); done(); return; }
        }
      });
      res.on('end', () => { out.ended = true; out.body = Buffer.from(out.text); done(); });
      res.on('error', (e) => { if (out.events.length >= max) done(); else reject(e); });
    });
    req.on('error', (e) => { if (!/socket hang up|aborted/.test(e.message)) reject(e); });
    req.end();
  });
}

// ---- the document ------------------------------------------------------------

function customize(ajv) {
  addFormats(ajv, ['uri', 'uuid', 'date-time']);
  ajv.addFormat('binary', true);
  ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isSafeInteger(n) });
  ajv.addKeyword('example');
  return ajv;
}
const bodyAjv = customize(new Ajv({ allErrors: true, strict: true }));
const headerAjv = customize(new Ajv({ allErrors: true, strict: true, coerceTypes: true }));
const compiled = new Map();
function schemaErrors(ajv, schema, value) {
  let v = compiled.get(schema);
  if (!v) { v = ajv.compile(schema); compiled.set(schema, v); }
  return v(value) ? [] : v.errors.map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params && e.params.additionalProperty ? `: ${e.params.additionalProperty}` : ''}${e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}`);
}

// The routes octopusd serves, from the routes[] table of lib/api.c.
function sourceRoutes() {
  const text = fs.readFileSync(path.join(SRC, 'lib', 'api.c'), 'utf8');
  const prefix = /#define FILES_PREFIX "([^"]*)"/.exec(text);
  const table = /static const route routes\[\] = \{([\s\S]*?)\n\};/.exec(text);
  if (!table) throw new Error('lib/api.c: no routes[] table found');
  const out = new Set();
  const re = /\{\s*(FILES_PREFIX\s+)?"([^"]*)"\s*,\s*([A-Z_| ]+?)\s*,/g;
  let m;
  while ((m = re.exec(table[1])) !== null) {
    const p = (m[1] ? prefix[1] : '') + m[2];
    for (const bit of m[3].split('|').map((s) => s.trim())) out.add(`${bit.replace(/^M_/, '').toLowerCase()} ${p}`);
  }
  return out;
}
function documentRoutes(doc) {
  const out = new Set();
  for (const [p, item] of Object.entries(doc.paths))
    for (const m of ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']) if (item[m]) out.add(`${m} ${p}`);
  return out;
}

// ---- checking one answer ---------------------------------------------------

let api;       // openapi-backend, on the served document
let other;     // x-other-requests, dereferenced
const seen = new Map(); // label -> Set of statuses answered

// What is wrong with `res` as an answer of `target` ({ label, responses,
// op }): op is openapi-backend's operation when there is one.
function verify(target, res) {
  const problems = [];
  const doc = target.responses[String(res.status)];
  if (!doc) return [`status ${res.status} is not documented for ${target.label} (documented: ${Object.keys(target.responses).join(', ')})`];
  const documented = {};
  for (const [name, h] of Object.entries(doc.headers || {})) documented[name.toLowerCase()] = h;
  for (const [name, h] of Object.entries(documented))
    if (h.required && res.headers[name] === undefined) problems.push(`header ${name} is documented as always sent, but missing`);
  for (const name of Object.keys(res.headers))
    if (!FRAMING.has(name) && !documented[name]) problems.push(`header ${name} is not documented for ${res.status}`);
  if (target.op) {
    const r = api.validator.validateResponseHeaders(res.headers, target.op, { statusCode: res.status, setMatchType: 'any' });
    if (r.errors) problems.push(...r.errors.map((e) => `headers: ${e.instancePath} ${e.message}`));
  } else {
    const props = {};
    for (const [name, h] of Object.entries(documented)) if (h.schema) props[name] = h.schema;
    problems.push(...schemaErrors(headerAjv, { type: 'object', properties: props }, Object.assign({}, res.headers)).map((e) => `headers: ${e}`));
  }
  const type = res.headers['content-type'];
  if (!doc.content) {
    if (res.body.length || type) problems.push(`${res.status} is documented without a body, but one came (${type || 'no type'}, ${res.body.length} bytes)`);
    return problems;
  }
  if (res.method === 'HEAD') {
    if (res.body.length) problems.push('HEAD answered with a body');
    return problems;
  }
  const media = (type || '').split(';')[0].trim().toLowerCase();
  const content = doc.content[media];
  if (!content) return problems.concat(`Content-Type ${type} is not documented for ${res.status} (documented: ${Object.keys(doc.content).join(', ')})`);
  if ((media.startsWith('text/') || media === 'application/json') && !/;\s*charset=utf-8/i.test(type))
    problems.push(`Content-Type ${type} does not name charset=utf-8`);
  if (media === 'application/json') {
    let body;
    try { body = JSON.parse(res.text); } catch (e) { return problems.concat(`the body is not JSON: ${e.message}`); }
    if (target.op) {
      const r = api.validator.validateResponse(body, target.op, res.status);
      if (r.errors) problems.push(...r.errors.map((e) => `body: ${e.instancePath || '(root)'} ${e.message}${e.params && e.params.additionalProperty ? `: ${e.params.additionalProperty}` : ''}`));
    } else {
      problems.push(...schemaErrors(bodyAjv, content.schema, body).map((e) => `body: ${e}`));
    }
  } else if (media !== 'text/event-stream' && content.schema && content.schema.format !== 'binary') {
    problems.push(...schemaErrors(bodyAjv, content.schema, res.text).map((e) => `body: ${e}`));
  }
  return problems;
}

// What is wrong with the events of a stream (readEvents()): each one's
// data must fit the schema the document gives for its event name.
function verifyEvents(media, stream) {
  const problems = [];
  const schemas = media['x-event-data'] || {};
  let last = -1;
  if (!stream.events.length) problems.push('no event came');
  for (const ev of stream.events) {
    if (ev.bad) problems.push(`a line of no SSE field: ${ev.bad}`);
    const schema = schemas[ev.event];
    if (!schema) { problems.push(`event "${ev.event}" is not documented`); continue; }
    let data;
    try { data = JSON.parse(ev.data.join('\n')); } catch (e) { problems.push(`event ${ev.event}: data is not JSON`); continue; }
    problems.push(...schemaErrors(bodyAjv, schema, data).map((e) => `event ${ev.event}: ${e}`));
    if (ev.id !== null) {
      if (!/^[0-9]+$/.test(ev.id) || Number(ev.id) <= last) problems.push(`event id ${ev.id} does not grow`);
      last = Number(ev.id);
      if (data.status !== ev.event) problems.push(`event "${ev.event}" carries status "${data.status}"`);
    }
  }
  return problems;
}

function opTarget(id) {
  const op = api.getOperation(id);
  if (!op) throw new Error(`no operation ${id} in the document`);
  return { label: `${op.method.toUpperCase()} ${op.path}`, responses: op.responses, op };
}
const otherTarget = () => ({ label: 'x-other-requests', responses: other.responses });

// Checks an answer; `expect` holds the status the case is about, its
// error code, and more checks (a function returning problems).
function record(name, target, res, expect = {}) {
  const problems = verify(target, res);
  if (expect.status !== undefined && res.status !== expect.status)
    problems.unshift(`status ${res.status}, the case is about ${expect.status}: ${res.text.slice(0, 300)}`);
  if (expect.error) {
    let code;
    try { code = JSON.parse(res.text).error; } catch (e) { code = undefined; }
    if (code !== expect.error) problems.push(`error "${code}", the case is about "${expect.error}"`);
  }
  if (expect.more) {
    try { problems.push(...expect.more(res)); } catch (e) { problems.push(`check threw: ${e.message}`); }
  }
  if (!seen.has(target.label)) seen.set(target.label, new Set());
  seen.get(target.label).add(String(res.status));
  t.check(`${target.label} ${res.status}: ${name}`, problems);
  return res;
}

// Calls an operation: path parameters filled in, its method.
function call(svc, id, params = {}, init = {}) {
  const op = api.getOperation(id);
  const p = op.path.replace(/\{([^}]+)\}/g, (m, n) => String(params[n]));
  return request(svc.base, Object.assign({ method: op.method.toUpperCase(), path: p + (params.query ? `?${params.query}` : '') }, init));
}
const jsonBody = (o) => ({ headers: { 'Content-Type': 'application/json' }, body: typeof o === 'string' ? o : JSON.stringify(o) });
const bodyOf = (res) => JSON.parse(res.text);
const sign = (key, expires) => crypto.createHmac('sha256', URL_SECRET).update(`${key}\n${expires}`).digest('hex');
const uuid = () => crypto.randomUUID();

// ---- the cases -----------------------------------------------------------------

async function documentChecks(svc, docText) {
  const source = fs.readFileSync(path.join(SRC, 'lib', 'openapi.json'));
  t.check('GET /openapi serves lib/openapi.json byte for byte',
    Buffer.from(docText).equals(source) ? [] : ['the served document differs from lib/openapi.json (rebuild?)']);
  const doc = JSON.parse(docText);
  const result = await new Validator({ strict: true }).validate(JSON.parse(docText));
  t.check(`the document is valid OpenAPI ${doc.openapi} (official schema)`,
    result.valid ? [] : [JSON.stringify(result.errors, null, 2).slice(0, 4000)]);
  const broken = JSON.parse(docText);
  delete broken.paths['/'].get.responses['200'].description;
  const rejected = await new Validator({ strict: true }).validate(broken);
  t.check('the document validator rejects a response without a description', rejected.valid ? ['a broken document passed'] : []);
  const want = version();
  t.check(`info.version is octopusd's (${want})`, doc.info.version === want ? [] : [`info.version is ${doc.info.version}`]);
  const src = sourceRoutes();
  const documented = documentRoutes(doc);
  const missing = [...src].filter((r) => !documented.has(r));
  const extra = [...documented].filter((r) => !src.has(r));
  t.check(`paths and methods are exactly the ${src.size} routes of lib/api.c`,
    [...missing.map((r) => `route ${r} is not documented`), ...extra.map((r) => `${r} is documented but no route serves it`)]);
}

async function serviceCases(svc, docText) {
  record('the greeting', opTarget('getRoot'), await call(svc, 'getRoot'), { status: 200 });
  record('HEAD: GET\'s headers, no body', opTarget('getRoot'), await call(svc, 'getRoot', {}, { method: 'HEAD' }), { status: 200 });
  record('X-Request-ID and traceparent are continued', opTarget('getRoot'), await call(svc, 'getRoot', {}, {
    headers: { 'X-Request-ID': 'openapi-check.1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  }), {
    status: 200,
    more: (r) => [
      ...(r.headers['x-request-id'] === 'openapi-check.1' ? [] : [`X-Request-ID ${r.headers['x-request-id']}`]),
      ...(/^00-4bf92f3577b34da6a3ce929d0e0e4736-/.test(r.headers.traceparent) ? [] : [`traceparent ${r.headers.traceparent}`]),
    ],
  });
  record('healthy', opTarget('getHealth'), await call(svc, 'getHealth'), { status: 200 });
  record('Prometheus text', opTarget('getMetrics'), await call(svc, 'getMetrics'), {
    status: 200, more: (r) => (/^http_requests_total\{/m.test(r.text) ? [] : ['no http_requests_total']),
  });
  record('the document', opTarget('getOpenApi'), await call(svc, 'getOpenApi'), {
    status: 200, more: (r) => (r.text === docText ? [] : ['differs from the first fetch']),
  });
  record('the reference page', opTarget('getDocs'), await call(svc, 'getDocs'), {
    status: 200, more: (r) => (/fetch\('openapi'/.test(r.text) ? [] : ['the page does not read openapi relatively']),
  });
}

async function downloadCases(svc, hookPort) {
  const check = opTarget('checkFile');
  record('a stored file', check, await call(svc, 'checkFile', {}, jsonBody({ file_id: 70000 })), {
    status: 200, more: (r) => (bodyOf(r).available === true && bodyOf(r).size === STORED.length ? [] : [r.text]),
  });
  record('a file not in storage', check, await call(svc, 'checkFile', {}, jsonBody({ file_id: 70001 })), {
    status: 200, more: (r) => (bodyOf(r).available === false ? [] : [r.text]),
  });
  record('invalid JSON', check, await call(svc, 'checkFile', {}, jsonBody('{"file_id": ')), { status: 400, error: 'invalid_json' });
  record('a body that is no object', check, await call(svc, 'checkFile', {}, jsonBody('[70000]')), { status: 400, error: 'validation_error' });
  record('file_id out of range', check, await call(svc, 'checkFile', {}, jsonBody({ file_id: 5 })), { status: 400, error: 'validation_error' });
  record('file_id missing', check, await call(svc, 'checkFile', {}, jsonBody({})), { status: 400, error: 'validation_error' });
  record('Content-Type not JSON', check, await call(svc, 'checkFile', {}, { headers: { 'Content-Type': 'text/plain' }, body: '{"file_id":70000}' }),
    { status: 415, error: 'unsupported_media_type' });
  record('a body over OCTO_MAX_BODY_BYTES', check, await call(svc, 'checkFile', {}, jsonBody(`{"file_id":70000,"pad":"${'x'.repeat(2000)}"}`)),
    { status: 413, error: 'payload_too_large' });

  const initiate = opTarget('initiateDownload');
  const located = (r) => (r.headers.location === `/v1/download/status/${bodyOf(r).jobId}` ? [] : [`Location ${r.headers.location}`]);
  const a = bodyOf(record('a job for a stored file, with Idempotency-Key', initiate,
    await call(svc, 'initiateDownload', {}, { headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'openapi-check:1' }, body: '{"file_ids":[70000]}' }),
    { status: 202, more: located }));
  record('the same key and body: the same job', initiate,
    await call(svc, 'initiateDownload', {}, { headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'openapi-check:1' }, body: '{"file_ids":[70000]}' }),
    { status: 202, more: (r) => (bodyOf(r).jobId === a.jobId ? [] : [`another job ${bodyOf(r).jobId}`]) });
  record('the same key, other files', initiate,
    await call(svc, 'initiateDownload', {}, { headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'openapi-check:1' }, body: '{"file_ids":[70001]}' }),
    { status: 409, error: 'conflict' });
  const b = bodyOf(record('a job that takes long', initiate, await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: [70001] })), { status: 202, more: located }));
  const c = bodyOf(record('a job with a webhook', initiate,
    await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: [70000], callbackUrl: `http://127.0.0.1:${hookPort}/hook` })), { status: 202 }));
  record('more files than the queue holds', initiate,
    await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: Array.from({ length: 60 }, (_, i) => 80000 + i) })), { status: 503, error: 'busy' });
  record('no files', initiate, await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: [] })), { status: 400, error: 'validation_error' });
  record('a bad Idempotency-Key', initiate,
    await call(svc, 'initiateDownload', {}, { headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'no spaces allowed' }, body: '{"file_ids":[70000]}' }),
    { status: 400, error: 'validation_error' });
  record('a callbackUrl that is no http URL', initiate,
    await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: [70000], callbackUrl: 'ftp://example.invalid/' })), { status: 400, error: 'validation_error' });

  for (const id of ['initiateDownload', 'startDownload']) {
    record('Content-Type not JSON', opTarget(id), await call(svc, id, {}, { headers: { 'Content-Type': 'text/plain' }, body: '{}' }),
      { status: 415, error: 'unsupported_media_type' });
    record('a body over OCTO_MAX_BODY_BYTES', opTarget(id), await call(svc, id, {}, jsonBody(`{"pad":"${'x'.repeat(2000)}"}`)),
      { status: 413, error: 'payload_too_large' });
  }

  const startOp = opTarget('startDownload');
  record('a stored file answers at once', startOp, await call(svc, 'startDownload', {}, jsonBody({ file_id: 70000 })), {
    status: 200, more: (r) => (bodyOf(r).status === 'completed' && bodyOf(r).downloadUrl ? [] : [r.text]),
  });
  const d = bodyOf(record('still preparing after REQUEST_TIMEOUT_MS', startOp,
    await call(svc, 'startDownload', {}, jsonBody({ file_id: 70002 })), { status: 202, more: located }));
  record('a bad file_id', startOp, await call(svc, 'startDownload', {}, jsonBody({ file_id: 'seventy' })), { status: 400, error: 'validation_error' });
  return { a: a.jobId, b: b.jobId, c: c.jobId, d: d.jobId };
}

async function jobCases(svc, jobs) {
  const status = opTarget('getJobStatus');
  // A stored file completes at once, but on a worker: its event stream
  // ends when the job does.
  await readEvents(svc.base, `/v1/download/${jobs.a}/events`);
  record('a completed job', status, await call(svc, 'getJobStatus', { jobId: jobs.a }), {
    status: 200, more: (r) => (bodyOf(r).status === 'completed' ? [] : [r.text]),
  });
  record('a job with a webhook', status, await call(svc, 'getJobStatus', { jobId: jobs.c }), {
    status: 200, more: (r) => (bodyOf(r).webhook && bodyOf(r).callbackUrl ? [] : ['no webhook members']),
  });
  record('a job in progress', status, await call(svc, 'getJobStatus', { jobId: jobs.b }), {
    status: 200, more: (r) => (['queued', 'processing'].includes(bodyOf(r).status) ? [] : [r.text]),
  });
  record('an id that is no UUID', status, await call(svc, 'getJobStatus', { jobId: 'not-a-job' }), { status: 400, error: 'validation_error' });
  record('an unknown job (requestId echoes X-Request-ID)', status,
    await call(svc, 'getJobStatus', { jobId: uuid() }, { headers: { 'X-Request-ID': 'openapi-check.2' } }),
    { status: 404, error: 'not_found', more: (r) => (bodyOf(r).requestId === 'openapi-check.2' ? [] : [`requestId ${bodyOf(r).requestId}`]) });

  const file = opTarget('getJobFile');
  const redirect = record('a completed file: a signed URL', file, await call(svc, 'getJobFile', { jobId: jobs.a, fileId: 70000 }), { status: 302 });
  record('a file the job does not have', file, await call(svc, 'getJobFile', { jobId: jobs.a, fileId: 70001 }), { status: 404, error: 'not_found' });
  record('a fileId that is no number', file, await call(svc, 'getJobFile', { jobId: jobs.a, fileId: 'abc' }), { status: 404, error: 'not_found' });
  record('a file not ready', file, await call(svc, 'getJobFile', { jobId: jobs.b, fileId: 70001 }), { status: 409, error: 'not_ready' });
  record('an unknown job', file, await call(svc, 'getJobFile', { jobId: uuid(), fileId: 70000 }), { status: 404, error: 'not_found' });

  const events = opTarget('streamJobEvents');
  const media = events.responses['200'].content['text/event-stream'];
  const ended = await readEvents(svc.base, `/v1/download/${jobs.a}/events`);
  record('a finished job: its last state, then the end', events, ended, {
    status: 200,
    more: (r) => [...verifyEvents(media, r), ...(r.ended ? [] : ['the stream did not end']),
      ...(r.events.length && r.events[r.events.length - 1].event === 'completed' ? [] : ['the last event is not "completed"'])],
  });
  const live = await readEvents(svc.base, `/v1/download/${jobs.b}/events`, {}, 1);
  record('a running job: its state at once', events, live, { status: 200, more: (r) => verifyEvents(media, r) });
  record('Last-Event-ID that is no id', events,
    await request(svc.base, { path: `/v1/download/${jobs.a}/events`, headers: { 'Last-Event-ID': 'yesterday' } }), { status: 400, error: 'validation_error' });
  record('an unknown job', events, await request(svc.base, { path: `/v1/download/${uuid()}/events` }), { status: 404, error: 'not_found' });

  const cancel = opTarget('cancelJob');
  record('cancels a running job', cancel, await call(svc, 'cancelJob', { jobId: jobs.b }), {
    status: 200, more: (r) => (bodyOf(r).status === 'cancelled' ? [] : [r.text]),
  });
  record('a finished job stays as it is', cancel, await call(svc, 'cancelJob', { jobId: jobs.a }), {
    status: 200, more: (r) => (bodyOf(r).status === 'completed' ? [] : [r.text]),
  });
  record('an unknown job', cancel, await call(svc, 'cancelJob', { jobId: uuid() }), { status: 404, error: 'not_found' });
  record('an id that is no UUID', cancel, await call(svc, 'cancelJob', { jobId: 'nope' }), { status: 404, error: 'not_found' });

  const getFile = opTarget('getFile');
  const url = new URL(redirect.headers.location);
  const key = url.pathname.replace(/^\/v1\/files\//, '');
  t.check('the signed URL is one this test can make too (OCTO_URL_SECRET)',
    url.searchParams.get('signature') === sign(key, url.searchParams.get('expires')) ? [] : [`${url}`]);
  record('the file, by its signed URL', getFile, await request(svc.base, { path: url.pathname + url.search }), {
    status: 200, more: (r) => (r.body.equals(STORED) ? [] : ['the bytes are not the stored file']),
  });
  const expires = Math.floor(Date.now() / 1000) + 600;
  record('an altered signature', getFile, await call(svc, 'getFile', { key, query: `expires=${expires}&signature=${'0'.repeat(64)}` }), { status: 403, error: 'forbidden' });
  const past = Math.floor(Date.now() / 1000) - 60;
  record('an expired URL', getFile, await call(svc, 'getFile', { key, query: `expires=${past}&signature=${sign(key, past)}` }), { status: 403, error: 'forbidden' });
  record('a signed URL of a file not stored', getFile,
    await call(svc, 'getFile', { key: 'downloads/99999.zip', query: `expires=${expires}&signature=${sign('downloads/99999.zip', expires)}` }), { status: 404, error: 'not_found' });
}

async function otherCases(svc, doc) {
  const any = otherTarget();
  const allow = (want) => (r) => (r.headers.allow === want ? [] : [`Allow: ${r.headers.allow}, not ${want}`]);
  for (const [p, item] of Object.entries(doc.paths)) {
    const concrete = p.replace('{jobId}', uuid()).replace('{fileId}', '70000').replace('{key}', 'downloads/70000.zip');
    const methods = Object.keys(item).filter((m) => m !== 'parameters');
    const want = methods.includes('get') ? 'GET, HEAD, OPTIONS' : methods.includes('post') ? 'POST, OPTIONS' : 'DELETE, OPTIONS';
    record(`OPTIONS ${p}: preflight`, any, await request(svc.base, { method: 'OPTIONS', path: concrete }), { status: 204, more: allow(want) });
    const wrong = methods.includes('post') ? 'GET' : 'POST';
    record(`${wrong} ${p}: not served`, any, await request(svc.base, { method: wrong, path: concrete, headers: { 'Content-Type': 'application/json' }, body: '{}' }),
      { status: 405, error: 'method_not_allowed', more: allow(want) });
  }
  record('a path no route matches', any, await request(svc.base, { path: '/v2/nothing' }), { status: 404, error: 'not_found' });
  record('a malformed header field on a path no route matches', any,
    await rawRequest(svc.port, `GET /v2/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${nextClient()}\r\nBad Header: 1\r\nConnection: close\r\n\r\n`),
    { status: 400, error: 'bad_request' });
  record('a job path whose id is no UUID', any, await request(svc.base, { path: '/v1/download/nope/events' }), { status: 404, error: 'not_found' });
}

// A header field whose name is no token, on every operation: node's
// client will not send one, so these requests are written by hand.
async function malformedHeaderCases(svc, jobs) {
  const params = { jobId: jobs.a, fileId: 70000, key: 'downloads/70000.zip', query: 'expires=1&signature=00' };
  for (const op of api.getOperations()) {
    const p = op.path.replace(/\{([^}]+)\}/g, (m, n) => String(params[n])) + (op.path.includes('{key}') ? `?${params.query}` : '');
    const body = op.requestBody ? '{"file_id":70000,"file_ids":[70000]}' : '';
    const head = `${op.method.toUpperCase()} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${nextClient()}\r\n` +
      'Bad Header: 1\r\nConnection: close\r\n' +
      (body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : '') + '\r\n';
    record('a malformed header field', opTarget(op.operationId), await rawRequest(svc.port, head + body), { status: 400, error: 'bad_request' });
  }
}

// One client past RATE_LIMIT_MAX_REQUESTS: every operation that is rate
// limited answers 429; /health and /metrics still answer.
async function rateLimitCases(svc, jobs) {
  const client = '2001:db8:ffff::1';
  for (let i = 0; i < 5; i++) await request(svc.base, { path: '/', client });
  const params = { jobId: jobs.a, fileId: 70000, key: 'downloads/70000.zip', query: 'expires=1&signature=00' };
  for (const op of api.getOperations()) {
    const init = Object.assign({ client }, op.requestBody ? jsonBody({ file_id: 70000, file_ids: [70000] }) : {});
    const limited = !['getHealth', 'getMetrics'].includes(op.operationId);
    record(limited ? 'one client over the limit' : 'never rate limited, even for that client', opTarget(op.operationId),
      await call(svc, op.operationId, params, init),
      limited ? { status: 429, error: 'rate_limited' } : { status: 200 });
  }
  record('OPTIONS, one client over the limit', otherTarget(), await request(svc.base, { method: 'OPTIONS', path: '/', client }), { status: 429, error: 'rate_limited' });
  record('a path no route matches, one client over the limit', otherTarget(), await request(svc.base, { path: '/v2/nothing', client }), { status: 429, error: 'rate_limited' });
}

// Storage goes away (its directory is no longer usable) and comes back.
async function storageCases(svc, jobs) {
  const tmp = path.join(svc.dataDir, '.tmp');
  fs.renameSync(tmp, `${tmp}.away`);
  try {
    record('storage fails', opTarget('getHealth'), await call(svc, 'getHealth'), { status: 503 });
    record('storage fails', opTarget('checkFile'), await call(svc, 'checkFile', {}, jsonBody({ file_id: 70001 })), { status: 503, error: 'storage_unavailable' });
    record('storage fails', opTarget('initiateDownload'), await call(svc, 'initiateDownload', {}, jsonBody({ file_ids: [70003] })), { status: 503, error: 'storage_unavailable' });
    record('storage fails', opTarget('startDownload'), await call(svc, 'startDownload', {}, jsonBody({ file_id: 70004 })), { status: 503, error: 'storage_unavailable' });
    record('storage fails: the cancel cannot be written', opTarget('cancelJob'), await call(svc, 'cancelJob', { jobId: jobs.d }),
      { status: 503, error: 'storage_unavailable' });
    const expires = Math.floor(Date.now() / 1000) + 600;
    record('storage fails', opTarget('getFile'),
      await call(svc, 'getFile', { key: 'downloads/99999.zip', query: `expires=${expires}&signature=${sign('downloads/99999.zip', expires)}` }),
      { status: 503, error: 'storage_unavailable' });
  } finally {
    fs.renameSync(`${tmp}.away`, tmp);
  }
  record('storage is back', opTarget('getHealth'), await call(svc, 'getHealth'), { status: 200 });
}

// The checks above must be able to fail: answers made up here, each wrong
// in one way, must each be rejected.
function negativeControls(realStatus) {
  const good = Object.assign({}, realStatus, { method: 'GET' });
  const body = bodyOf(good);
  const withBody = (o) => Object.assign({}, good, { text: JSON.stringify(o), body: Buffer.from(JSON.stringify(o)) });
  const status = opTarget('getJobStatus');
  const cases = [
    ['a real status answer', good, true],
    ['an extra member', withBody(Object.assign({}, body, { extra: 1 })), false],
    ['a status that is no job state', withBody(Object.assign({}, body, { status: 'done' })), false],
    ['a missing member', withBody(Object.assign({}, body, { files: undefined })), false],
    ['progress over 1', withBody(Object.assign({}, body, { progress: 2 })), false],
    ['a file with a string size', withBody(Object.assign({}, body, { files: body.files.map((f) => Object.assign({}, f, { size: '1' })) })), false],
    ['an undocumented status', Object.assign({}, good, { status: 418 }), false],
    ['an undocumented Content-Type', Object.assign({}, good, { headers: Object.assign({}, good.headers, { 'content-type': 'text/html; charset=utf-8' }) }), false],
    ['a missing X-Request-ID', Object.assign({}, good, { headers: Object.assign({}, good.headers, { 'x-request-id': undefined }) }), false],
    ['a malformed traceparent', Object.assign({}, good, { headers: Object.assign({}, good.headers, { traceparent: 'nope' }) }), false],
    ['an undocumented header', Object.assign({}, good, { headers: Object.assign({}, good.headers, { 'x-powered-by': 'x' }) }), false],
  ];
  for (const [name, res, ok] of cases) {
    for (const k of Object.keys(res.headers)) if (res.headers[k] === undefined) delete res.headers[k];
    const problems = verify(status, res);
    t.check(`the checker ${ok ? 'accepts' : 'rejects'} ${name}`, ok === (problems.length === 0) ? [] : [ok ? problems.join('\n') : 'it was accepted']);
  }
  const media = opTarget('streamJobEvents').responses['200'].content['text/event-stream'];
  const wrongEvent = { events: [{ id: '1', event: 'completed', data: [JSON.stringify(Object.assign({}, body, { status: 'queued' }))] }] };
  t.check('the checker rejects an event named unlike its status', verifyEvents(media, wrongEvent).length ? [] : ['it was accepted']);
  const badData = { events: [{ id: '1', event: 'queued', data: ['{"jobId":"x"}'] }] };
  t.check('the checker rejects event data that is no status', verifyEvents(media, badData).length ? [] : ['it was accepted']);
}

// A port nobody listens on, for a webhook that must not reach anything.
function closedPort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function main() {
  const svc = await start({
    files: { 'downloads/70000.zip': STORED },
    settings: {
      RATE_LIMIT_MAX_REQUESTS: '5', RATE_LIMIT_WINDOW_MS: '600000', TRUSTED_PROXIES: '127.0.0.1',
      OCTO_MAX_BODY_BYTES: '1024', OCTO_QUEUE_MAX: '50', OCTO_WORKERS: '2',
      DOWNLOAD_DELAY_MIN_MS: '600000', DOWNLOAD_DELAY_MAX_MS: '600000', REQUEST_TIMEOUT_MS: '2000',
      OCTO_URL_SECRET: URL_SECRET, OCTO_WEBHOOK_SECRET: 'openapi-check-webhook-secret', OCTO_WEBHOOK_MAX_ATTEMPTS: '1',
      OCTO_HEALTH_CACHE_MS: '0', JOB_RETENTION_S: '0',
    },
  });
  try {
    const served = await request(svc.base, { path: '/openapi' });
    if (served.status !== 200) throw new Error(`GET /openapi answered ${served.status}`);
    await documentChecks(svc, served.text);
    api = new OpenAPIBackend({
      definition: JSON.parse(served.text), strict: true, validate: true, quick: false,
      ajvOpts: { allErrors: true, strict: true }, customizeAjv: customize,
    });
    await api.init();
    other = api.definition['x-other-requests'];
    await serviceCases(svc, served.text);
    const jobs = await downloadCases(svc, await closedPort());
    await jobCases(svc, jobs);
    await otherCases(svc, api.definition);
    await malformedHeaderCases(svc, jobs);
    negativeControls(await call(svc, 'getJobStatus', { jobId: jobs.a }));
    await rateLimitCases(svc, jobs);
    await storageCases(svc, jobs);
    // Every operation answered at least once with success.
    const idle = api.getOperations().filter((op) => {
      const s = seen.get(`${op.method.toUpperCase()} ${op.path}`) || new Set();
      return ![...s].some((code) => /^[23]/.test(code));
    });
    t.check('every operation was driven to a success', idle.map((op) => `${op.operationId} never succeeded`));
    const untried = [];
    for (const op of api.getOperations())
      for (const code of Object.keys(op.responses))
        if (!(seen.get(`${op.method.toUpperCase()} ${op.path}`) || new Set()).has(code)) untried.push(`${op.operationId} ${code}`);
    console.log(`documented, not provoked here (out of memory, a full disk, no metrics registry, no URL): ${untried.join(', ')}`);
  } catch (e) {
    t.fail('the run', `${e.stack}\n--- octopusd's log:\n${svc.log()}`);
  } finally {
    const end = await svc.stop();
    t.check('octopusd stops cleanly on SIGTERM (exit 0)', end.code === 0 ? [] : [`it ended with ${end.signal || `exit ${end.code}`}\n${svc.log()}`]);
  }
  return t.finish();
}

main().then((code) => process.exit(code), (e) => { console.log(`FAIL: ${e.stack}`); process.exit(1); });
