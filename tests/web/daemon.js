'use strict';
// Starts the octopusd under test ($OCTOPUSD) for the node checks of
// tests/web: loopback, a port of its choosing, a fresh data directory,
// the settings given and nothing else of the caller's configuration. It
// is ready when it says where it listens (a line on standard output),
// which is awaited, not guessed with a delay.
const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

// Variables octopusd reads: none may leak in from the caller's shell.
const OWN = /^(OCTO_|S3_|RATE_LIMIT_|DOWNLOAD_|LOG_|ELASTICSEARCH_URL$|CORS_ORIGINS$|TRUSTED_PROXIES$|JOB_RETENTION_S$|REQUEST_TIMEOUT_MS$|PORT$|HOST$)/;
const START_TIMEOUT_MS = 20000;

function cleanEnv(settings) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!OWN.test(k)) env[k] = v;
  return Object.assign(env, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', OCTO_SHUTDOWN_GRACE_S: '1' }, settings);
}

// start({ settings, files }) -> { base, port, dir, dataDir, stop(), log() }
// `files` maps storage keys to contents put in the data directory first.
function start(opts = {}) {
  const binary = process.env.OCTOPUSD;
  if (!binary) return Promise.reject(new Error('$OCTOPUSD is not set (make check sets it)'));
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'octo-web.'));
  const dataDir = path.join(dir, 'data');
  for (const [key, content] of Object.entries(opts.files || {})) {
    fs.mkdirSync(path.dirname(path.join(dataDir, key)), { recursive: true });
    fs.writeFileSync(path.join(dataDir, key), content);
  }
  const proc = childProcess.spawn(binary, [], {
    env: cleanEnv(Object.assign({ OCTO_DATA_DIR: dataDir }, opts.settings)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));

  // Stops it as an operator would (SIGTERM) and tells how it ended:
  // { code, signal }; code 0 is a clean stop (sanitizer builds report
  // their findings by exiting otherwise).
  const stop = async () => {
    let timer;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    }
    const end = await exited;
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
    return end;
  };
  process.on('exit', () => { if (proc.exitCode === null) proc.kill('SIGKILL'); });

  return new Promise((resolve, reject) => {
    let out = '';
    let settled = false;
    const fail = async (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      await stop();
      reject(new Error(`octopusd did not start: ${why}\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    proc.on('error', (e) => fail(e.message));
    exited.then(({ code, signal }) => { if (!/listening on/.test(out)) fail(`it exited (${signal || code})`); });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      proc.stdout.removeAllListeners('data');
      proc.stdout.resume();
      const port = Number(m[1]);
      resolve({ base: `http://127.0.0.1:${port}`, port, dir, dataDir, stop, log: () => stderr });
    });
  });
}

// The version octopusd reports: "octopusd 0.1.0 (...)" -> "0.1.0".
function version() {
  const out = childProcess.execFileSync(process.env.OCTOPUSD, ['--version'], { env: cleanEnv({}), encoding: 'utf8' });
  const m = /^octopusd (\S+)/.exec(out);
  if (!m) throw new Error(`octopusd --version said: ${out}`);
  return m[1];
}

// A tally printed the way the other suites print theirs, so ./dev's
// summary counts it: PASS/FAIL lines, then "N%: Checks: ...".
function tally() {
  let checks = 0;
  let failures = 0;
  return {
    pass(name) { checks++; console.log(`PASS: ${name}`); },
    fail(name, why) {
      checks++;
      failures++;
      console.log(`FAIL: ${name}`);
      for (const line of String(why).split('\n')) console.log(`    ${line}`);
    },
    check(name, problems) {
      if (problems.length) this.fail(name, problems.join('\n'));
      else this.pass(name);
    },
    finish() {
      const pct = checks ? Math.floor(((checks - failures) * 100) / checks) : 0;
      console.log(`${pct}%: Checks: ${checks}, Failures: ${failures}, Errors: 0`);
      return failures === 0 && checks > 0 ? 0 : 1;
    },
  };
}

module.exports = { start, version, tally };
