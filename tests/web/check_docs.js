'use strict';
// The reference page (GET /docs) in a real browser: Debian's Chromium,
// headless, driven by playwright-core, against a real octopusd.
//
//   - The page renders every path and method of the served /openapi
//     document (one element with data-operation="METHOD /path" each, and
//     nothing else), with each documented status, parameter and request
//     body, the requests no operation lists, and every schema.
//   - It asks nothing of any other origin: every request the page makes is
//     seen (and any to another origin refused, so none leaves the
//     machine). Its Content-Security-Policy keeps it so, and the page
//     works under that policy, with no errors on the console.
//   - It reads the document by a relative URL: served under a prefix, as
//     a gateway may, it asks for <prefix>/openapi.
//   - The checks can fail: a page that loads from elsewhere, a document
//     that cannot be read, an operation left out are each caught.
//
// Run by tests/check_docs.sh; modules from $NODE_TOOLS, the browser from
// $OCTO_CHROMIUM (default /usr/bin/chromium).
const http = require('http');
const path = require('path');
const { start, tally } = require('./daemon');

const { chromium } = require(path.join(process.env.NODE_TOOLS, 'playwright-core'));
const BROWSER = process.env.OCTO_CHROMIUM || '/usr/bin/chromium';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const t = tally();

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}

function deref(doc, obj) {
  while (obj && obj.$ref) obj = obj.$ref.slice(2).split('/').reduce((o, k) => o[k], doc);
  return obj;
}

function documentedOperations(doc) {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths))
    for (const m of METHODS) if (item[m]) out.push({ id: `${m.toUpperCase()} ${p}`, path: p, op: item[m], shared: item.parameters || [] });
  return out;
}

// What the rendered page lacks, or has beyond the document.
function compare(doc, page) {
  const problems = [];
  const rendered = new Map();
  for (const r of page.ops) {
    if (rendered.has(r.id)) problems.push(`${r.id} is rendered twice`);
    rendered.set(r.id, r);
  }
  const ops = documentedOperations(doc);
  for (const { id, op, shared } of ops) {
    const r = rendered.get(id);
    if (!r) { problems.push(`${id} is not rendered (no data-operation="${id}")`); continue; }
    if (!r.visible) problems.push(`${id} is rendered but not visible`);
    const want = Object.keys(op.responses).join(' ');
    if (r.statuses.join(' ') !== want) problems.push(`${id}: statuses ${r.statuses.join(' ')}, the document has ${want}`);
    for (const raw of shared.concat(op.parameters || [])) {
      const p = deref(doc, raw);
      if (!r.text.includes(p.name)) problems.push(`${id}: parameter ${p.name} is not shown`);
    }
    if (op.summary && !r.text.includes(op.summary)) problems.push(`${id}: its summary is not shown`);
    if (op.requestBody && !/Request body/.test(r.text)) problems.push(`${id}: its request body is not shown`);
  }
  const ids = new Set(ops.map((o) => o.id));
  for (const id of rendered.keys()) if (!ids.has(id)) problems.push(`${id} is rendered but not in the document`);
  const other = Object.keys((doc['x-other-requests'] || {}).responses || {}).join(' ');
  if (page.other.join(' ') !== other) problems.push(`other requests: statuses ${page.other.join(' ')}, the document has ${other}`);
  for (const name of Object.keys(doc.components.schemas))
    if (!page.schemas.includes(name)) problems.push(`schema ${name} is not shown`);
  if (!page.title.includes(doc.info.title)) problems.push(`title "${page.title}" does not name ${doc.info.title}`);
  return problems;
}

// Loads `url` in a fresh context and reads what the page rendered.
// `serve(route, url)` may answer a request itself (return true).
async function load(browser, url, { enforceCsp = false, serve } = {}) {
  const origin = new URL(url).origin;
  // Without the policy the page's own behaviour is seen: anything it
  // tried to load from elsewhere shows up below instead of being blocked
  // unseen by the browser.
  const context = await browser.newContext({ bypassCSP: !enforceCsp });
  const seen = { requests: [], foreign: [], errors: [], csp: null };
  await context.route('**/*', async (route) => {
    const u = new URL(route.request().url());
    seen.requests.push(u.href);
    if (serve && (await serve(route, u))) return;
    if (u.origin !== origin) {
      seen.foreign.push(u.href);
      await route.abort('blockedbyclient');
      return;
    }
    await route.continue();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => seen.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || /Refused to/.test(m.text())) seen.errors.push(`console: ${m.text()}`); });
  try {
    const res = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    seen.csp = res ? (await res.allHeaders())['content-security-policy'] || null : null;
    await page.waitForFunction(() => document.body.getAttribute('data-state') !== 'loading', null, { timeout: 20000 });
    Object.assign(seen, await page.evaluate(() => ({
      state: document.body.getAttribute('data-state'),
      title: document.title,
      ops: Array.from(document.querySelectorAll('[data-operation]')).map((s) => ({
        id: s.getAttribute('data-operation'),
        statuses: Array.from(s.querySelectorAll('[data-status]')).map((e) => e.getAttribute('data-status')),
        text: s.textContent,
        visible: s.getBoundingClientRect().height > 0,
      })),
      other: Array.from(document.querySelectorAll('[data-other-requests] [data-status]')).map((e) => e.getAttribute('data-status')),
      schemas: Array.from(document.querySelectorAll('[data-schema]')).map((e) => e.getAttribute('data-schema')),
      notice: (document.getElementById('status') || {}).textContent || '',
    })));
  } finally {
    await context.close();
  }
  return seen;
}

async function main() {
  const svc = await start({ settings: { RATE_LIMIT_MAX_REQUESTS: '0' } });
  let browser;
  try {
    const served = await get(`${svc.base}/openapi`);
    const doc = JSON.parse(served.text);
    browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 60000 });

    const page = await load(browser, `${svc.base}/docs`);
    t.check('the page reads /openapi and renders', page.state === 'ready' ? [] : [`state ${page.state}: ${page.notice}`]);
    t.check(`every path and method of /openapi is rendered (${documentedOperations(doc).length} operations), with its statuses, parameters and body`, compare(doc, page));
    t.check('the page asks nothing of another origin',
      page.foreign.map((u) => `it asked for ${u}`).concat(page.requests.length ? [] : ['no request was seen at all']));
    t.check('it reads the document from its own origin, /openapi',
      page.requests.includes(`${svc.base}/openapi`) ? [] : [`requests: ${page.requests.join(', ')}`]);
    t.check('no error on the console', page.errors);

    const csp = page.csp || '';
    t.check('its Content-Security-Policy allows only its own origin',
      /default-src 'none'/.test(csp) && /connect-src 'self'/.test(csp) && !/https?:|\*/.test(csp) ? [] : [`Content-Security-Policy: ${csp || 'none'}`]);
    const strict = await load(browser, `${svc.base}/docs`, { enforceCsp: true });
    t.check('it works under that policy', strict.state === 'ready' && !compare(doc, strict).length ? [] : [`state ${strict.state}`, ...compare(doc, strict)]);
    t.check('the policy blocks nothing the page needs (no violation reported)', strict.errors);

    // As a gateway may serve it: under a prefix.
    const prefixed = await load(browser, `${svc.base}/gateway/docs`, {
      serve: async (route, u) => {
        if (!u.pathname.startsWith('/gateway/')) return false;
        const res = await route.fetch({ url: `${svc.base}${u.pathname.slice('/gateway'.length)}` });
        await route.fulfill({ response: res });
        return true;
      },
    });
    t.check('under a prefix it reads <prefix>/openapi (a relative URL)',
      prefixed.state === 'ready' && prefixed.requests.includes(`${svc.base}/gateway/openapi`) && !prefixed.requests.includes(`${svc.base}/openapi`)
        ? [] : [`state ${prefixed.state}; requests: ${prefixed.requests.join(', ')}`]);

    // The checks can fail.
    const html = (await get(`${svc.base}/docs`)).text;
    const leaky = await load(browser, `${svc.base}/docs`, {
      serve: async (route, u) => {
        if (u.pathname !== '/docs') return false;
        await route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html.replace('</body>', '<img src="https://cdn.example.invalid/pixel.png"></body>') });
        return true;
      },
    });
    t.check('a page that loads from another origin is caught', leaky.foreign.includes('https://cdn.example.invalid/pixel.png') ? [] : ['it went unseen']);
    const broken = await load(browser, `${svc.base}/docs`, {
      serve: async (route, u) => {
        if (u.pathname !== '/openapi') return false;
        await route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"busy"}' });
        return true;
      },
    });
    t.check('a document that cannot be read is reported, not rendered as empty',
      broken.state === 'error' && /could not be loaded/.test(broken.notice) ? [] : [`state ${broken.state}: ${broken.notice}`]);
    const more = JSON.parse(served.text);
    more.paths['/v1/extra'] = { get: { operationId: 'extra', responses: { 200: { description: 'x' } } } };
    t.check('an operation the page leaves out is caught', compare(more, page).some((p) => p.startsWith('GET /v1/extra is not rendered')) ? [] : ['it went unseen']);
  } catch (e) {
    t.fail('the run', `${e.stack}\n--- octopusd's log:\n${svc.log()}`);
  } finally {
    if (browser) await browser.close();
    const end = await svc.stop();
    t.check('octopusd stops cleanly on SIGTERM (exit 0)', end.code === 0 ? [] : [`it ended with ${end.signal || `exit ${end.code}`}\n${svc.log()}`]);
  }
  return t.finish();
}

main().then((code) => process.exit(code), (e) => { console.log(`FAIL: ${e.stack}`); process.exit(1); });
