#!/usr/bin/env node
// Reference peer for bench/render.py: renders pages the way the reference
// Grafana image renderer does in its best mode, so rendervisor can be measured
// against it on the same Chromium in the same run.
//
//   node bench/peers/reference.js PORT
//
// One browser is launched at start and kept. Each GET /render?url=&width=
// &height=&deviceScaleFactor=[&timeout=&renderKey=&domain=] gets a new
// incognito browser context and page: viewport, navigation waiting for the
// network to stay idle (networkidle0), a polled wait for window.panelsRendered
// to reach the panel count (or, on a scenes page, for the running query count
// to fall to 0), a PNG screenshot, and the context is closed whatever happened.
// Listens on 127.0.0.1 only. Prints one line "ready <port> <browser pid>"
// when it can take renders; SIGTERM closes the browser and exits.
//
// Environment: PEER_CHROMIUM (default /usr/lib/chromium/chromium-headless-shell,
// the browser of rendervisor's default config; /usr/bin/chromium for the full
// browser in its new headless mode), PEER_TOKEN (the X-Auth-Token to require,
// default "-"; empty disables the check).
'use strict';

const http = require('http');
const puppeteer = require('puppeteer-core');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node reference.js PORT');
  process.exit(2);
}
const chromium = process.env.PEER_CHROMIUM || '/usr/lib/chromium/chromium-headless-shell';
// puppeteer's 'shell' mode is plain --headless, what the headless shell takes;
// `true` is the full browser's new headless mode.
const headless = /headless-shell/.test(chromium) ? 'shell' : true;
const token = process.env.PEER_TOKEN === undefined ? '-' : process.env.PEER_TOKEN;

// Flags as rendervisor's default browser command; puppeteer adds its own
// defaults, as it does for the reference service.
const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

let browser = null;
let closing = false;

function fail(res, status, message) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function numParam(q, name, def, min, max) {
  const v = q.get(name);
  if (v === null || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`bad ${name}`);
  return n;
}

// Runs in the page: is the Grafana page done drawing?
function grafanaReady() {
  if (window.__grafanaSceneContext) return window.__grafanaRunningQueryCount === 0;
  let panels = document.querySelectorAll('.panel-solo').length;
  if (panels === 0) panels = document.querySelectorAll("[class$='panel-container']").length;
  return window.panelsRendered === undefined ? panels === 0 : window.panelsRendered >= panels;
}

async function render(q) {
  const url = q.get('url');
  if (!url) throw Object.assign(new Error('missing url'), { status: 400 });
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw Object.assign(new Error('bad url'), { status: 400 });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw Object.assign(new Error('forbidden url'), { status: 403 });
  let width, height, scale, timeoutMs;
  try {
    width = numParam(q, 'width', 1000, 10, 10000);
    height = numParam(q, 'height', 500, 10, 10000);
    scale = numParam(q, 'deviceScaleFactor', 1, 0.1, 4);
    timeoutMs = numParam(q, 'timeout', 60, 1, 300) * 1000;
  } catch (e) {
    throw Object.assign(e, { status: 400 });
  }

  const steps = {};
  let t = performance.now();
  const step = (name) => {
    const now = performance.now();
    steps[name] = now - t;
    t = now;
  };

  const context = await browser.createBrowserContext();
  try {
    const page = await context.newPage();
    step('newPage');
    await page.setViewport({ width, height, deviceScaleFactor: scale });
    const renderKey = q.get('renderKey');
    if (renderKey)
      await page.setCookie({ name: 'renderKey', value: renderKey, domain: q.get('domain') || parsed.hostname });
    step('prepare');
    await page.goto(url, { waitUntil: 'networkidle0', timeout: timeoutMs });
    step('navigate');
    await page.waitForFunction(grafanaReady, { polling: 100, timeout: timeoutMs });
    step('panelsRendered');
    const png = await page.screenshot({ type: 'png', captureBeyondViewport: false });
    step('screenshot');
    return { png, steps };
  } finally {
    await context.close().catch(() => {});
  }
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (req.method !== 'GET') return fail(res, 405, 'method not allowed');
  if (u.pathname === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('rendervisor bench reference peer (puppeteer-core)\n');
  }
  if (u.pathname !== '/render') return fail(res, 404, 'not found');
  if (token !== '' && req.headers['x-auth-token'] !== token) return fail(res, 401, 'unauthorized');
  if (closing || !browser) return fail(res, 503, 'shutting down');
  const start = performance.now();
  render(u.searchParams).then(({ png, steps }) => {
    const timing = Object.entries(steps).map(([k, v]) => `${k};dur=${v.toFixed(1)}`);
    timing.push(`total;dur=${(performance.now() - start).toFixed(1)}`);
    res.writeHead(200, {
      'Content-Type': 'image/png',
      'Content-Length': png.length,
      'Server-Timing': timing.join(', '),
    });
    res.end(png);
  }, (err) => {
    const status = err.status || (err.name === 'TimeoutError' ? 408 : 500);
    fail(res, status, String(err.message || err));
  });
});

async function shutdown(code) {
  if (closing) return;
  closing = true;
  server.close();
  const done = browser ? browser.close().catch(() => {}) : Promise.resolve();
  const timer = setTimeout(() => {
    const p = browser && browser.process();
    if (p && p.exitCode === null) p.kill('SIGKILL');
    process.exit(code);
  }, 5000);
  await done;
  clearTimeout(timer);
  process.exit(code);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));

(async () => {
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless,
    args: chromiumArgs,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  browser.on('disconnected', () => {
    if (!closing) {
      console.error('reference peer: the browser went away');
      shutdown(1);
    }
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(`ready ${port} ${browser.process().pid}`);
  });
})().catch((err) => {
  console.error('reference peer:', err);
  process.exit(1);
});
