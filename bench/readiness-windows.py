#!/usr/bin/env python3
"""Measure what the readiness windows of renderer/ready.h rest on, in the
renderer's own browser: Debian's chromium-headless-shell with the flags of
etc/rendervisor.ini's [browsers] command, its pages set up as the renderer
sets them up (a fresh browser context, Page/Runtime/Network enabled,
renderer/ready.js installed before the page's scripts, a 1000x500 viewport).

    bench/readiness-windows.py [--conditions idle,cpu2,render4] [--wait-quiet S]
                               [--only 1,...,6] [--quick] [--markdown FILE] [--json FILE]
                               [--probe FILE] [--probe-variant overdue,idle] [--probe-opts lagMs=5,...]

It starts its own headless shell(s) and a page server on 127.0.0.1, and
measures under each condition:
  idle     nothing of ours besides the measured browser (the machine is
           shared: its load is reported, not controlled);
  cpu2     two busy loops (python `while True: pass`), one per core;
  render4  a second headless shell rendering 4 pages at once without end
           (bench/pages/panel.html, plus 3000 cells of DOM and a canvas of
           20000 strokes each, then a screenshot).

The measurements (docs/benchmarks.md, "Readiness windows", says what each
window rests on):
  1 raf      interval between animation frames of a page that changes its
             DOM every frame                               READY_QUIET_MS
  2 chain    fetch -> json -> next fetch, over CDP: loadingFinished of one
             to requestWillBeSent of the next, 1 KB and 1 MB  READY_NET_QUIET_MS
  3 work     chunked work (5, 10, 20 ms tasks yielding with setTimeout(0)
             or MessageChannel; 60 ms long tasks): the gaps between its
             tasks, and how late a 10 ms setTimeout poll (the probe's) runs
             on an idle page and during the work       READY_LAG_MS, READY_BUSY_MS
  4 body     responseReceived -> loadingFinished for 10 KB, 1 MB, 10 MB and
             a PNG from the local server                   READY_STREAM_MS
  5 afterload  load event -> the request a load handler starts (at once,
             after setTimeout(0), after a frame)           READY_GRACE_MS
  6 probe    the real probe (renderer/probe.js, the values of ready.h) on a
             page doing chunked work or animating its DOM: how often it
             answers "ready" while the page is still busy or changing
Every time is the browser's own (performance.now() in the page, the
timestamps of CDP's events) unless a table says "arrival": when this
script's CDP client received the event, which is what the renderer sees.

--quick takes a tenth of the samples (a smoke run); --only runs some of
the measurements. --wait-quiet waits, before each condition, up to S
seconds for the rest of the machine to use under 25% of its CPU (what it
used is in the first table either way). --markdown writes the tables, --json
every sample, and --from JSON prints the tables of such a file again.
--probe, --probe-variant and --probe-opts run measurement 6
with another probe, with renderer/probe.js changed in one named respect, or
with other option values: what a change would do, before making it. It
takes about 4.5 minutes; every process it starts is stopped when it ends.
"""
import argparse
import base64
import configparser
import importlib.util
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.server
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_spec = importlib.util.spec_from_file_location('cdp_record', os.path.join(ROOT, 'tools', 'cdp-record.py'))
cdp_record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cdp_record)


def read_ready_h():
    """The windows as renderer/ready.h defines them."""
    vals = {}
    with open(os.path.join(ROOT, 'renderer', 'ready.h')) as f:
        for m in re.finditer(r'#define (READY_[A-Z_]+) (\d+)u?', f.read()):
            vals[m.group(1)] = int(m.group(2))
    with open(os.path.join(ROOT, 'renderer', 'ready.js')) as f:
        vals['TIMER_MAX_MS'] = int(re.search(r'TIMER_MAX_MS = (\d+)', f.read()).group(1))
    return vals


W = read_ready_h()


def browser_command():
    """etc/rendervisor.ini's [browsers] command, as the supervisor runs it
    (it adds the debugging port and a fresh profile itself, and, as root,
    where Chromium's sandbox cannot work, --no-sandbox)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(';',))
    cp.read(os.path.join(ROOT, 'etc', 'rendervisor.ini'))
    words = cp['browsers']['command'].split()
    return words + ['--no-sandbox'] if os.geteuid() == 0 else words


# ---- statistics --------------------------------------------------------------

def pct(values, p):
    """Nearest-rank percentile; None without values."""
    s = sorted(values)
    if not s:
        return None
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(values, ps=(50, 99)):
    """n, the percentiles asked (p99.9 only from 1000 samples: below, it is
    the maximum and says nothing more), max."""
    d = {'n': len(values)}
    for p in ps:
        d['p%g' % p] = pct(values, p) if (p < 99.9 or len(values) >= 1000) else None
    d['max'] = max(values) if values else None
    return d


def fmt(v, digits=1):
    if v is None:
        return '—'
    if isinstance(v, float):
        return '%.*f' % (digits, v)
    return str(v)


def table(title, head, rows):
    """A markdown table, printed and returned."""
    out = ['', '### ' + title, '', '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        out.append('| ' + ' | '.join(fmt(c) for c in r) + ' |')
    text = '\n'.join(out)
    print(text, flush=True)
    return text


# ---- the page server -----------------------------------------------------------

def png(width, height, noise):
    """An RGB PNG; noise (0..1) is the share of random pixels, which sets
    how well it compresses."""
    rnd = random.Random(7)
    rows = []
    for y in range(height):
        row = bytearray(b'\0')
        for x in range(width):
            if rnd.random() < noise:
                row += bytes((rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
            else:
                row += bytes(((x * 255) // width, (y * 255) // height, 128))
        rows.append(bytes(row))
    raw = zlib.compress(b''.join(rows), 6)

    def chunk(kind, data):
        c = kind + data
        return len(data).to_bytes(4, 'big') + c + zlib.crc32(c).to_bytes(4, 'big')
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes((8, 2, 0, 0, 0))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', raw) + chunk(b'IEND', b'')


def frames_json(size):
    """A query answer shaped like Grafana's /api/ds/query (one frame, a
    time and a value column) of about size bytes."""
    def doc(n):
        t0 = 1700000000000
        return json.dumps({'results': {'A': {'status': 200, 'frames': [{
            'schema': {'refId': 'A', 'fields': [
                {'name': 'Time', 'type': 'time', 'typeInfo': {'frame': 'time.Time'}},
                {'name': 'Value', 'type': 'number', 'typeInfo': {'frame': 'float64'}}]},
            'data': {'values': [[t0 + 15000 * i for i in range(n)],
                                [round(50 + 40 * math.sin(i / 17.0) + (i % 7) * 0.37, 3) for i in range(n)]]}}]}}},
            separators=(',', ':')).encode()
    n = max(1, size // 24)
    body = doc(n)
    n = max(1, int(n * size / len(body)))
    return doc(n)


BENCH_HTML = r"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<style>html,body{margin:0;background:#111217;color:#ccccdc;font:14px sans-serif}</style></head>
<body><div id="clock">0</div><div id="box" style="width:200px;height:40px;background:#73bf69"></div>
<script>
var B = window.B = {};
B.spin = function (ms) { var e = performance.now() + ms; while (performance.now() < e); };
/* The page's timers are the browser's own: renderer/ready.js wraps
 * window.setTimeout, and the probe's poll uses the original, so does ours. */
var st = window.__rendervisorReadiness;
B.setTimeout = st ? st.setTimeout : window.setTimeout;

/* 1: n+1 animation frames, each changing the DOM (a clock). */
B.raf = function (n) {
  return new Promise(function (res) {
    var el = document.getElementById('clock'), cb = [], fr = [];
    function frame(ts) {
      fr.push(ts); cb.push(performance.now());
      el.textContent = String(cb.length);
      if (cb.length <= n) requestAnimationFrame(frame); else res({cb: cb, frame: fr});
    }
    requestAnimationFrame(frame);
  });
};

/* 2: n fetches, each started when the previous answer's JSON is parsed. */
B.chain = function (n, bytes) {
  var i = 0;
  function next() {
    if (i >= n) return Promise.resolve(n);
    return fetch('/json?bytes=' + bytes + '&i=' + (i++), {cache: 'no-store'})
      .then(function (r) { return r.json(); }).then(next);
  }
  return next();
};

/* 4: n bodies read one after the other; kind 'fetch' or 'img'. */
B.bodies = function (n, path, kind) {
  var i = 0;
  function next() {
    if (i >= n) return Promise.resolve(n);
    var url = path + (path.indexOf('?') < 0 ? '?' : '&') + 'i=' + (i++);
    if (kind === 'img') return new Promise(function (res, rej) {
      var im = new Image(); im.onload = res; im.onerror = rej; im.src = url;
    }).then(next);
    return fetch(url, {cache: 'no-store'}).then(function (r) { return r.arrayBuffer(); }).then(next);
  }
  return next();
};

/* Chunked work: tasks of o.chunk ms for o.workMs, each posting the next
 * with setTimeout(0) (o.via 'timeout') or a MessageChannel ('mc'). */
B.work = function (o, onEnd) {
  var w = {chunks: [], start: performance.now(), end: Infinity};
  var ch = new MessageChannel();
  function task() {
    var s = performance.now();
    B.spin(o.chunk);
    var e = performance.now();
    w.chunks.push([s, e]);
    if (e - w.start < o.workMs) {
      if (o.via === 'mc') ch.port2.postMessage(0); else window.setTimeout(task, 0);
    } else {
      w.end = e;
      ch.port1.close();
      if (onEnd) onEnd(w);
    }
  }
  ch.port1.onmessage = task;
  if (o.via === 'mc') ch.port2.postMessage(0); else window.setTimeout(task, 0);
  return w;
};

/* 3: a 10 ms poll as the probe's (its lateness: when it ran minus when it
 * was due) for o.idleMs on the idle page, then during chunked work; the
 * long tasks the browser reports, with when the observer heard of them;
 * and when idle callbacks (requestIdleCallback) ran. */
B.lateness = function (o) {
  return new Promise(function (res) {
    var polls = [], lts = [], idle = [], w = null, due = performance.now(), t0 = due, stopAt = Infinity;
    try {
      new PerformanceObserver(function (l) {
        var now = performance.now();
        l.getEntries().forEach(function (e) { lts.push([e.startTime, e.duration, now]); });
      }).observe({type: 'longtask'});
    } catch (e) { /* no longtask */ }
    var idleAsked = 0;
    function poll() {
      var t = performance.now();
      polls.push([t, t - due]);
      /* One idle callback asked for at a time, from a poll: on the idle
       * page, how long one waits; during the work, whether any runs. */
      if (!idleAsked) {
        idleAsked = t;
        requestIdleCallback(function () { idle.push([idleAsked, performance.now()]); idleAsked = 0; });
      }
      if (!w && t - t0 >= o.idleMs && o.chunk) w = B.work(o, function () { stopAt = performance.now() + 30; });
      if (!w && t - t0 >= o.idleMs) stopAt = t;
      if (t >= stopAt) {
        return res({polls: polls, longtasks: lts, idle: idle, chunks: w ? w.chunks : [],
                    workStart: w ? w.start : null, workEnd: w ? w.end : null});
      }
      due = t + o.pollMs;
      B.setTimeout.call(window, poll, o.pollMs);
    }
    poll();
  });
};

/* 6: the renderer's probe on this page, while it works or animates; what
 * it answered and when, against when the work ended. */
B.probe = function (probe, opts, o) {
  var w = null, anim = null, frames = [];
  if (o.chunk) w = B.work(o);
  if (o.animate) {
    var el = document.getElementById('clock'), t0 = performance.now();
    anim = function () {
      frames.push(performance.now());
      el.textContent = String(frames.length);
      if (performance.now() - t0 < o.animate) requestAnimationFrame(anim);
    };
    requestAnimationFrame(anim);
  }
  var start = performance.now();
  return probe(opts).then(function (a) {
    var t = performance.now();
    return {answer: a, start: start, at: t, workEnd: w ? (w.end === Infinity ? null : w.end) : null,
            chunks: w ? w.chunks.length : 0, frames: frames.slice()};
  });
};
</script></body></html>"""

AFTERLOAD_HTML = r"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body><img src="/img?small=1" width=20 height=20><script>
window.addEventListener('load', function () {
  var go = function () { fetch('/json?bytes=1000&after=load', {cache: 'no-store'}); };
  var mode = location.search.replace(/.*mode=(\w+).*/, '$1');
  if (mode === 'now') go();
  else if (mode === 'timeout') setTimeout(go, 0);
  else if (mode === 'raf') requestAnimationFrame(go);
});
</script></body></html>"""

HEAVY_JS = r"""<script>
window.addEventListener('load', function () {
  var t = document.createElement('table');
  for (var r = 0; r < 60; r++) {
    var tr = t.insertRow();
    for (var c = 0; c < 50; c++) {
      var td = tr.insertCell();
      td.textContent = (r * c) % 97;
      td.style.background = 'hsl(' + ((r * 7 + c * 13) % 360) + ',50%,30%)';
    }
  }
  document.body.appendChild(t);
  var cv = document.createElement('canvas'); cv.width = 1000; cv.height = 500;
  document.body.appendChild(cv);
  var g = cv.getContext('2d');
  g.beginPath();
  for (var i = 0; i < 20000; i++) g.lineTo((i * 37) % 1000, (i * 91) % 500);
  g.stroke();
  window.heavyDone = true;
});
</script>"""


class Pages:
    """The page server: the bench page, JSON answers, bodies, images."""

    def __init__(self):
        self.json = {}
        self.bins = {}
        self.img = png(600, 400, 0.5)      # a photo-like panel image, ~350 KB
        self.small_img = png(20, 20, 0.0)
        with open(os.path.join(HERE, 'pages', 'panel.html'), 'rb') as f:
            panel = f.read()
        self.heavy = panel.replace(b'</body>', HEAVY_JS.encode() + b'</body>')
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def setup(self):
                super().setup()
                # As Go's net/http (Grafana's server) does: no Nagle, so a
                # body written after its headers is not held for an ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                path, _, query = self.path.partition('?')
                q = dict(kv.partition('=')[::2] for kv in query.split('&') if kv)
                ctype = 'application/json'
                if path == '/bench.html':
                    body, ctype = BENCH_HTML.encode(), 'text/html'
                elif path == '/afterload.html':
                    body, ctype = AFTERLOAD_HTML.encode(), 'text/html'
                elif path == '/heavy.html':
                    body, ctype = pages.heavy, 'text/html'
                elif path == '/json':
                    n = int(q.get('bytes', '1000'))
                    if n not in pages.json:
                        pages.json[n] = frames_json(n)
                    body = pages.json[n]
                elif path == '/bin':
                    n = int(q.get('bytes', '1000'))
                    if n not in pages.bins:
                        pages.bins[n] = os.urandom(n)
                    body, ctype = pages.bins[n], 'application/octet-stream'
                elif path == '/img':
                    body, ctype = (pages.small_img if 'small' in q else pages.img), 'image/png'
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Cache-Control', 'no-store')
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page went away (navigated, or the load's browser stopped)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = 'http://127.0.0.1:%d' % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the browser and CDP ----------------------------------------------------------

class Conn:
    """One CDP websocket (tools/cdp-record.py's client) with a reader
    thread: replies go to their caller, events are kept with the time they
    arrived (time.monotonic_ns) while recording is on."""

    def __init__(self, ws_url):
        self.ws = cdp_record.WebSocket(ws_url)
        self.ws.sock.settimeout(None)
        self.cv = threading.Condition()
        self.send_lock = threading.Lock()
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                raw = self.ws.recv_text()
            except (RuntimeError, OSError):
                with self.cv:
                    self.closed = True
                    self.cv.notify_all()
                return
            t = time.monotonic_ns()
            msg = json.loads(raw)
            with self.cv:
                if 'id' in msg:
                    self.replies[msg['id']] = msg
                else:
                    self.events.append((t, msg))
                self.cv.notify_all()

    def call(self, method, params=None, session=None, timeout=120):
        with self.send_lock:
            self.next_id += 1
            want = self.next_id
            msg = {'id': want, 'method': method, 'params': params or {}}
            if session:
                msg['sessionId'] = session
            self.ws.send_text(json.dumps(msg))
        with self.cv:
            if not self.cv.wait_for(lambda: want in self.replies or self.closed, timeout):
                raise RuntimeError('%s: no reply within %ds' % (method, timeout))
            if want not in self.replies:
                raise RuntimeError('%s: the browser closed the connection' % method)
            reply = self.replies.pop(want)
        if 'error' in reply:
            raise RuntimeError('%s: %s' % (method, reply['error']))
        return reply.get('result', {})

    def clear(self):
        with self.cv:
            self.events = []

    def take(self, session):
        """The events of session so far (and forget them)."""
        with self.cv:
            mine = [(t, m) for t, m in self.events if m.get('sessionId') == session]
            self.events = [(t, m) for t, m in self.events if m.get('sessionId') != session]
        return mine

    def wait_event(self, session, method, timeout=30):
        def find():
            for t, m in self.events:
                if m.get('sessionId') == session and m.get('method') == method:
                    return t, m
            return None
        with self.cv:
            if not self.cv.wait_for(lambda: find() or self.closed, timeout):
                raise RuntimeError('no %s within %ds' % (method, timeout))
            hit = find()
            if not hit:
                raise RuntimeError('the browser closed the connection')
            return hit

    def close(self):
        try:
            self.ws.sock.close()
        except OSError:
            pass


class Browser:
    """A headless shell of our own: the configured command plus a debugging
    port of its choosing and a fresh profile, in its own process group."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix='rv-windows-')
        cmd = browser_command() + ['--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
                                   '--user-data-dir=' + self.profile, 'about:blank']
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = os.path.join(self.profile, 'DevToolsActivePort')
        deadline = time.time() + 30
        while True:
            try:
                with open(port_file) as f:
                    port, path = f.read().split('\n')[:2]
                if port and path:
                    break
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise SystemExit('%s did not start (exit %s)' % (cmd[0], self.proc.returncode))
            time.sleep(0.05)
        self.ws_url = 'ws://127.0.0.1:%s%s' % (port, path)
        self.conn = Conn(self.ws_url)
        self.version = self.conn.call('Browser.getVersion')['product']

    def page(self, conn=None, width=1000, height=500):
        """A page as the renderer makes one: its own context, the domains
        it enables, ready.js before the page's scripts, the viewport."""
        c = conn or self.conn
        ctx = c.call('Target.createBrowserContext', {'disposeOnDetach': True})['browserContextId']
        tid = c.call('Target.createTarget', {'url': 'about:blank', 'browserContextId': ctx})['targetId']
        s = c.call('Target.attachToTarget', {'targetId': tid, 'flatten': True})['sessionId']
        for m in ('Page.enable', 'Runtime.enable', 'Network.enable'):
            c.call(m, None, s)
        with open(os.path.join(ROOT, 'renderer', 'ready.js')) as f:
            c.call('Page.addScriptToEvaluateOnNewDocument', {'source': f.read()}, s)
        c.call('Emulation.setDeviceMetricsOverride',
               {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': False}, s)
        return Page(c, s, ctx)

    def close(self):
        if getattr(self, 'conn', None):
            self.conn.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, conn, session, ctx):
        self.c, self.s, self.ctx = conn, session, ctx

    def goto(self, url, timeout=30):
        self.c.take(self.s)
        self.c.call('Page.navigate', {'url': url}, self.s)
        return self.c.wait_event(self.s, 'Page.loadEventFired', timeout)

    def eval(self, expr, timeout=120):
        r = self.c.call('Runtime.evaluate', {'expression': expr, 'awaitPromise': True,
                                             'returnByValue': True}, self.s, timeout)
        if 'exceptionDetails' in r:
            raise RuntimeError('page: %s' % json.dumps(r['exceptionDetails'])[:400])
        return r['result'].get('value')

    def close(self):
        try:
            self.c.call('Target.disposeBrowserContext', {'browserContextId': self.ctx})
        except RuntimeError:
            pass


# ---- load -----------------------------------------------------------------------------

def host_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[i] for i in (0, 1, 2, 5, 6, 7)), sum(v[:8])


class Load:
    """A condition's load, started and stopped by us."""

    def __init__(self, name, pages):
        self.name, self.pages = name, pages
        self.procs, self.threads, self.browser = [], [], None
        self.stop_ev = threading.Event()
        self.renders = 0
        self.lock = threading.Lock()

    def start(self):
        if self.name == 'cpu2':
            for _ in range(2):
                self.procs.append(subprocess.Popen([sys.executable, '-c', 'while True: pass']))
        elif self.name == 'render4':
            self.browser = Browser()
            for i in range(4):
                t = threading.Thread(target=self._render_loop, args=(i,), daemon=True)
                t.start()
                self.threads.append(t)
        elif self.name != 'idle':
            raise SystemExit('unknown condition %r (idle, cpu2, render4)' % self.name)
        time.sleep(1.0)  # let it get going

    def _render_loop(self, i):
        try:
            conn = Conn(self.browser.ws_url)
            p = self.browser.page(conn)
            while not self.stop_ev.is_set():
                p.goto('%s/heavy.html?r=%d' % (self.pages.base, i))
                p.eval('new Promise(function(r){(function w(){window.heavyDone?r(1):setTimeout(w,5);})();})')
                conn.call('Page.captureScreenshot', {'format': 'png'}, p.s)
                with self.lock:
                    self.renders += 1
        except (RuntimeError, OSError) as e:
            if not self.stop_ev.is_set():
                print('render4 load: %s' % e, file=sys.stderr)

    def stop(self):
        self.stop_ev.set()
        for p in self.procs:
            p.terminate()
            p.wait()
        for t in self.threads:
            t.join(30)
        if self.browser:
            self.browser.close()


# ---- the measurements ------------------------------------------------------------------

def m_raf(page, base, n):
    page.goto(base + '/bench.html')
    r = page.eval('B.raf(%d)' % n)
    cb = [b - a for a, b in zip(r['cb'], r['cb'][1:])]
    fr = [b - a for a, b in zip(r['frame'], r['frame'][1:])]
    return {'callback': cb, 'frame': fr}


def net_events(events):
    """requestId -> {url, sent, resp, done, failed, *_arr}: browser times
    (s) and arrival times (ns)."""
    reqs = {}
    for t, m in events:
        meth, p = m.get('method'), m.get('params', {})
        rid = p.get('requestId')
        if not meth or not meth.startswith('Network.') or rid is None:
            continue
        q = reqs.setdefault(rid, {})
        if meth == 'Network.requestWillBeSent':
            q.update(url=p['request']['url'], sent=p['timestamp'], sent_arr=t)
        elif meth == 'Network.responseReceived':
            q.update(resp=p['timestamp'], resp_arr=t)
        elif meth == 'Network.loadingFinished':
            q.update(done=p['timestamp'], done_arr=t)
        elif meth == 'Network.loadingFailed':
            q.update(failed=True)
    return reqs


def m_chain(page, base, n, nbytes):
    page.goto(base + '/bench.html')
    page.c.take(page.s)
    page.eval('B.chain(%d, %d)' % (n, nbytes))
    time.sleep(0.05)
    reqs = net_events(page.c.take(page.s))
    by_i = {}
    for q in reqs.values():
        m = re.search(r'/json\?bytes=\d+&i=(\d+)$', q.get('url', ''))
        if m:
            by_i[int(m.group(1))] = q
    gap, gap_arr = [], []
    for i in range(n - 1):
        a, b = by_i.get(i), by_i.get(i + 1)
        if not a or not b or 'done' not in a or 'sent' not in b:
            continue
        gap.append((b['sent'] - a['done']) * 1000)
        gap_arr.append((b['sent_arr'] - a['done_arr']) / 1e6)
    return {'gap': gap, 'arrival': gap_arr}


def m_bodies(page, base, n, path, kind):
    page.goto(base + '/bench.html')
    page.c.take(page.s)
    page.eval('B.bodies(%d, %s, %s)' % (n, json.dumps(path), json.dumps(kind)))
    time.sleep(0.05)
    reqs = net_events(page.c.take(page.s))
    body, body_arr = [], []
    for q in reqs.values():
        if path.split('?')[0] in q.get('url', '') and 'resp' in q and 'done' in q:
            body.append((q['done'] - q['resp']) * 1000)
            body_arr.append((q['done_arr'] - q['resp_arr']) / 1e6)
    return {'body': body, 'arrival': body_arr}


def m_afterload(page, base, n, mode):
    """The load event to the request its handler starts: browser times
    and arrival times (negative: the request was seen first)."""
    out, out_arr = [], []
    for i in range(n):
        page.c.take(page.s)
        page.c.call('Page.navigate', {'url': '%s/afterload.html?mode=%s&n=%d' % (base, mode, i)}, page.s)
        t_load, ev = page.c.wait_event(page.s, 'Page.loadEventFired')
        deadline = time.time() + 5
        hit = None
        while time.time() < deadline and not hit:
            with page.c.cv:
                for t, m in page.c.events:
                    if (m.get('sessionId') == page.s and m.get('method') == 'Network.requestWillBeSent'
                            and 'after=load' in m['params']['request']['url']):
                        hit = (t, m)
                        break
                if not hit:
                    page.c.cv.wait(0.5)
        if not hit:
            continue
        out.append((hit[1]['params']['timestamp'] - ev['params']['timestamp']) * 1000)
        out_arr.append((hit[0] - t_load) / 1e6)
    page.c.take(page.s)
    return {'gap': out, 'arrival': out_arr}


def m_work(page, base, chunk, via, work_ms, idle_ms, poll_ms=W['READY_POLL_MS']):
    page.goto(base + '/bench.html')
    o = {'chunk': chunk, 'via': via, 'workMs': work_ms, 'idleMs': idle_ms, 'pollMs': poll_ms}
    return page.eval('B.lateness(%s)' % json.dumps(o))


def lag_verdicts(r, lag_ms, busy_ms):
    """The probe's busy rule replayed on the recorded polls: a poll later
    than lag_ms, or a long task the observer has reported, makes the page
    busy for busy_ms. For each poll during the work (after its first
    task): busy or not; for the idle polls before it: busy (false) or not."""
    polls, lts = r['polls'], r['longtasks']
    ws, we = r['workStart'], r['workEnd']
    first_end = r['chunks'][0][1] if r['chunks'] else None
    busy_end = -1e9
    idle_false, idle_n, work_hit, work_n = 0, 0, 0, 0
    for t, late in polls[1:]:
        if late > lag_ms:
            busy_end = max(busy_end, t)
        for s, d, heard in lts:
            if heard <= t:
                busy_end = max(busy_end, s + d)
        busy = t - busy_end < busy_ms
        if ws is None or t < ws:
            idle_n += 1
            idle_false += busy
        elif first_end is not None and first_end <= t <= (we or 1e18):
            work_n += 1
            work_hit += busy
    return idle_false, idle_n, work_hit, work_n


PROBE_FILE = os.path.join(ROOT, 'renderer', 'probe.js')


# --probe-variant: renderer/probe.js changed in one respect, to measure what
# a change would do before making it. Each is (anchor, replacement) pairs.
PROBE_VARIANTS = {
    # A look (the confirming message's too) takes an overdue poll for a
    # busy main thread, as the poll itself does when it runs.
    'overdue': [('    function look() {\n      if (done) return;\n      var t = performance.now();\n',
                 '    function look() {\n      if (done) return;\n      var t = performance.now();\n'
                 '      if (t - due > o.lagMs) st.busyEnd = Math.max(st.busyEnd, t);\n')],
    # The confirming task is an idle callback (the browser's word that no
    # task is waiting) instead of a message.
    'idle': [('    var posted = false, confirmed = false;\n',
              '    var posted = false, confirmed = false, confirmGen = 0;\n'),
             ('        posted = confirmed = false;\n',
              '        posted = confirmed = false;\n        confirmGen++;\n'),
             ('          confirm.port2.postMessage(0);\n',
              '          var gen = ++confirmGen;\n'
              '          requestIdleCallback(function () {\n'
              '            if (posted && gen === confirmGen) confirmed = true;\n'
              '            look();\n'
              '          });\n')],
}
PROBE_VARIANT = []


def probe_source():
    with open(PROBE_FILE) as f:
        src = f.read()
    for name in PROBE_VARIANT:
        for anchor, repl in PROBE_VARIANTS[name]:
            if src.count(anchor) != 1:
                raise SystemExit('--probe-variant %s: %s no longer has the line it changes (%r)'
                                 % (name, os.path.relpath(PROBE_FILE, ROOT), anchor.strip().split('\n')[0]))
            src = src.replace(anchor, repl)
    return src.strip()


PROBE_OVERRIDES = {}


def probe_opts(wait_ms):
    """The options renderer/ready.c gives the probe, from ready.h (and
    --probe-opts)."""
    o = {'waitMs': wait_ms, 'quietMs': W['READY_QUIET_MS'], 'pollMs': W['READY_POLL_MS'],
         'busyMs': W['READY_BUSY_MS'], 'lagMs': W['READY_LAG_MS'], 'mountMs': W['READY_MOUNT_MS'],
         'bootQuietMs': W['READY_BOOT_QUIET_MS'], 'settleMaxMs': W['READY_SETTLE_MAX_MS']}
    o.update(PROBE_OVERRIDES)
    return o


def m_probe(page, base, n, o, wait_ms):
    """n fresh pages, each probed once (its first probe, as a render's)
    while it works or animates: the answers 'ready' that came while the
    work still ran or the DOM still changed every frame, how long the probe
    took, how often its busy rule held it."""
    src = probe_source()
    opts = probe_opts(wait_ms)
    early, waited, busy_blocked, gaps = 0, [], 0, []
    for _ in range(n):
        page.goto(base + '/bench.html')
        r = page.eval('B.probe(%s, %s, %s)' % (src, json.dumps(opts), json.dumps(o)))
        a = r['answer']
        waited.append(r['at'] - r['start'])
        if a['blocked'].get('busy'):
            busy_blocked += 1
        if not a['ready']:
            continue
        if o.get('chunk') and (r['workEnd'] is None or r['at'] < r['workEnd']):
            early += 1
        if o.get('animate') and r['at'] - r['start'] < o['animate']:
            early += 1
            fr = [f for f in r['frames'] if f <= r['at']]
            gaps.append(r['at'] - fr[-1] if fr else r['at'] - r['start'])
    return {'early': early, 'n': n, 'waited': waited, 'busy_blocked': busy_blocked, 'quiet_at_answer': gaps}


# ---- one condition ------------------------------------------------------------------------

WORK_VARIANTS = [(5, 'mc'), (10, 'timeout'), (10, 'mc'), (20, 'timeout'), (20, 'mc'), (60, 'timeout'), (60, 'mc')]
PROBE_CASES = [('5 ms tasks, MessageChannel', {'chunk': 5, 'via': 'mc', 'workMs': 200}),
               ('10 ms tasks, setTimeout(0)', {'chunk': 10, 'via': 'timeout', 'workMs': 200}),
               ('10 ms tasks, MessageChannel', {'chunk': 10, 'via': 'mc', 'workMs': 200}),
               ('20 ms tasks, setTimeout(0)', {'chunk': 20, 'via': 'timeout', 'workMs': 200}),
               ('20 ms tasks, MessageChannel', {'chunk': 20, 'via': 'mc', 'workMs': 200}),
               ('60 ms tasks, setTimeout(0)', {'chunk': 60, 'via': 'timeout', 'workMs': 200}),
               ('DOM changed every frame', {'animate': 500}),
               ('idle page', {})]
BODY_CASES = [('10 KB', '/bin?bytes=10000', 'fetch', 300), ('1 MB', '/bin?bytes=1000000', 'fetch', 200),
              ('10 MB', '/bin?bytes=10000000', 'fetch', 40), ('PNG', '/img', 'img', 200)]


def background_cpu(seconds=2.0):
    """The machine's CPU use over a short while, before we load it."""
    a = host_cpu()
    time.sleep(seconds)
    b = host_cpu()
    return (b[0] - a[0]) / max(1, b[1] - a[1])


def wait_quiet(seconds):
    """The machine's CPU use by others, waiting up to seconds for it to
    fall under a quarter (the machine is shared)."""
    deadline = time.time() + seconds
    while True:
        busy = background_cpu()
        if busy < 0.25 or time.time() >= deadline:
            return busy
        print('  others keep the machine %.0f%% busy; waiting' % (100 * busy), file=sys.stderr, flush=True)


def run_condition(name, pages, browser, k, only, quiet_s=0):
    """Every measurement under one load; k scales the sample counts."""
    def cnt(v):
        return max(5, int(v * k))

    def step(what):
        print('[%s %5.1fs] %s' % (name, time.time() - t0, what), file=sys.stderr, flush=True)

    res = {'condition': name, 'background_cpu': wait_quiet(quiet_s)}
    load = Load(name, pages)
    load.start()
    cpu0, t0 = host_cpu(), time.time()
    page = browser.page()
    base = pages.base
    try:
        page.goto(base + '/bench.html')  # warm up
        page.eval('B.chain(20, 1000)')
        if '1' in only:
            step('1 raf')
            res['raf'] = m_raf(page, base, cnt(400))
        if '2' in only:
            step('2 chain')
            res['chain'] = {'1 KB': m_chain(page, base, cnt(1001), 1000),
                            '1 MB': m_chain(page, base, cnt(300), 1000000)}
        if '3' in only:
            step('3 work')
            res['work'] = {'idle': m_work(page, base, 0, 'timeout', 0, cnt(2500))}
            for chunk, via in WORK_VARIANTS:
                res['work']['%d/%s' % (chunk, via)] = m_work(page, base, chunk, via, cnt(2000 if chunk < 60 else 2400), 50)
        if '4' in only:
            step('4 body')
            res['body'] = {label: m_bodies(page, base, cnt(n), path, kind) for label, path, kind, n in BODY_CASES}
        if '5' in only:
            step('5 afterload')
            res['afterload'] = {mode: m_afterload(page, base, cnt(70), mode) for mode in ('now', 'timeout', 'raf')}
        if '6' in only:
            step('6 probe')
            res['probe'] = {label: m_probe(page, base, cnt(8 if label != 'idle page' else 40), o, 700)
                            for label, o in PROBE_CASES}
        step('done')
    finally:
        page.close()
        cpu1, t1 = host_cpu(), time.time()
        load.stop()
    res['cpu_busy'] = (cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1])
    res['seconds'] = t1 - t0
    res['load_renders'] = load.renders
    return res


# ---- the report ------------------------------------------------------------------------------

def gaps_of(chunks):
    return [b[0] - a[1] for a, b in zip(chunks, chunks[1:])]


def work_polls(r):
    """Lateness of the polls that ran during the work (after its first
    task ended), and of those on the idle page before it."""
    ws, we = r['workStart'], r['workEnd']
    first_end = r['chunks'][0][1] if r['chunks'] else None
    idle = [l for t, l in r['polls'][1:] if ws is None or t < ws]
    work = [l for t, l in r['polls'][1:] if first_end is not None and first_end <= t <= (we or 1e18)]
    return idle, work


def report(results, meta):
    print('\n%s; %s; %.0f s' % (meta.get('machine', meta['browser']), meta.get('when', '?'),
                                meta.get('seconds', 0)), flush=True)
    out = []
    Q, LAG, BUSY = W['READY_QUIET_MS'], W['READY_LAG_MS'], W['READY_BUSY_MS']
    NETQ, GRACE, STREAM = W['READY_NET_QUIET_MS'], W['READY_GRACE_MS'], W['READY_STREAM_MS']

    def has(key):
        return all(key in r for r in results)

    def share(vals, limit):
        return '%d/%d' % (sum(1 for v in vals if v > limit), len(vals))

    def worst(f):
        """(value, condition) of the condition where f is largest."""
        return max((f(r), r['condition']) for r in results)

    lines = []
    rows = [[r['condition'], '%.0f%%' % (100 * r['background_cpu']), '%.0f%%' % (100 * r['cpu_busy']),
             r['load_renders'] or '—', '%.0f' % r['seconds']] for r in results]
    out.append(table('Conditions', ['condition', 'host CPU busy before it (others)', 'host CPU busy during it',
                                    'load renders done', 'seconds'], rows))

    if has('raf'):
        rows = []
        for r in results:
            for what in ('callback', 'frame'):
                v = r['raf'][what]
                s = summary(v, (50, 99, 99.9))
                rows.append([r['condition'], what, s['n'], s['p50'], s['p99'], s['p99.9'], s['max'],
                             share(v, Q), share(v, 33.4), share(v, 50)])
        out.append(table('1. Interval between animation frames (ms) of a page changing its DOM in every frame: '
                         'between its callbacks (performance.now()) and between the frames\' own times',
                         ['condition', 'time of', 'n', 'p50', 'p99', 'p99.9', 'max', '> %d ms' % Q, '> 33.4 ms',
                          '> 50 ms'], rows))
        v, c = worst(lambda r: pct(r['raf']['callback'], 99))
        m, cm = worst(lambda r: max(r['raf']['callback']))
        over = sum(1 for r in results for x in r['raf']['callback'] if x > Q)
        n = sum(len(r['raf']['callback']) for r in results)
        lines.append('READY_QUIET_MS = %d ms: measured frame interval p99 %.1f ms (%s), max %.1f ms (%s), '
                     '%d/%d intervals over %d ms; margin %+.1f ms at p99, %+.1f ms at max'
                     % (Q, v, c, m, cm, over, n, Q, Q - v, Q - m))

    if has('chain'):
        rows = []
        for r in results:
            for size, v in r['chain'].items():
                a, b = summary(v['arrival'], (50, 99, 99.9)), summary(v['gap'], (50, 99))
                rows.append([r['condition'], size, a['n'], a['p50'], a['p99'], a['p99.9'], a['max'],
                             share(v['arrival'], NETQ), b['p50'], b['p99'], b['max']])
        out.append(table('2. Chained fetch (fetch, json(), next fetch): loadingFinished of one to '
                         'requestWillBeSent of the next (ms)',
                         ['condition', 'answer', 'n', 'arrival p50', 'p99', 'p99.9', 'max', '> %d ms' % NETQ,
                          'browser time p50', 'p99', 'max'], rows))
        allv = lambda r: r['chain']['1 KB']['arrival'] + r['chain']['1 MB']['arrival']  # noqa: E731
        v, c = worst(lambda r: pct(allv(r), 99))
        v9, c9 = worst(lambda r: summary(r['chain']['1 KB']['arrival'], (99.9,))['p99.9'] or -1)
        m, cm = worst(lambda r: max(allv(r)))
        over = sum(1 for r in results for x in allv(r) if x > NETQ)
        n = sum(len(allv(r)) for r in results)
        lines.append('READY_NET_QUIET_MS = %d ms: measured chained-fetch gap as the renderer sees it (arrival) '
                     'p99 %.1f ms (%s), %smax %.1f ms (%s), %d/%d over %d ms; '
                     'margin %+.1f ms at p99, %+.1f ms at max'
                     % (NETQ, v, c, 'p99.9 (1 KB) %.1f ms (%s), ' % (v9, c9) if v9 >= 0 else '',
                        m, cm, over, n, NETQ, NETQ - v, NETQ - m))

    if has('work'):
        rows = []
        for r in results:
            for key, v in r['work'].items():
                if key != 'idle':
                    g = summary(gaps_of(v['chunks']))
                    rows.append([r['condition'], key, g['n'], g['p50'], g['p99'], g['max'],
                                 share(gaps_of(v['chunks']), BUSY)])
        out.append(table('3a. Gap between consecutive tasks of chunked work (ms), by task length (ms) and '
                         'how a task posts the next',
                         ['condition', 'tasks', 'n', 'p50', 'p99', 'max', '> %d ms' % BUSY], rows))

        rows = []
        for r in results:
            for key, v in r['work'].items():
                idle, work = work_polls(v)
                vals = idle if key == 'idle' else work
                s = summary(vals, (50, 90, 99))
                fp, idle_n, hit, work_n = lag_verdicts(v, LAG, BUSY)
                rows.append([r['condition'], 'idle page' if key == 'idle' else key, s['n'], s['p50'], s['p90'],
                             s['p99'], s['max'], share(vals, LAG),
                             '%d/%d' % (fp, idle_n) if key == 'idle' else '%d/%d' % (hit, work_n)])
        out.append(table('3b. Lateness of the probe\'s %d ms setTimeout poll (ms), on the idle page and during '
                         'the work; "busy" replays the probe\'s rule at each poll (a poll > %d ms late, or a long '
                         'task the observer has reported, holds for %d ms)' % (W['READY_POLL_MS'], LAG, BUSY),
                         ['condition', 'page', 'polls', 'p50', 'p90', 'p99', 'max', '> %d ms' % LAG, 'busy'], rows))

        cands = (3, 5, 8, 10, 15)
        rows = []
        for r in results:
            for key in ['idle'] + ['%d/%s' % cv for cv in WORK_VARIANTS if cv[0] <= 20]:
                v = r['work'][key]
                cells = []
                for lag in cands:
                    fp, idle_n, hit, work_n = lag_verdicts(v, lag, BUSY)
                    n, x = (idle_n, fp) if key == 'idle' else (work_n, hit)
                    cells.append('%.0f%%' % (100.0 * x / n) if n else '—')
                rows.append([r['condition'], 'idle page (false busy)' if key == 'idle' else key + ' (busy)'] + cells)
        out.append(table('3c. The same rule replayed with other lag thresholds (held %d ms): share of polls that '
                         'see the page busy' % BUSY, ['condition', 'page'] + ['lag %d ms' % c for c in cands], rows))

        rows = []
        for r in results:
            for key, v in r['work'].items():
                if key == 'idle':
                    lat = summary([t - a for a, t in v['idle']])
                    rows.append([r['condition'], 'idle page', '—', '—', '%d in %.0f ms' % (
                        lat['n'], v['polls'][-1][0] - v['polls'][0][0]),
                        '%s / %s / %s' % (fmt(lat['p50']), fmt(lat['p99']), fmt(lat['max']))])
                    continue
                heard = [h - (s + d) for s, d, h in v['longtasks'] if v['workStart'] and s >= v['workStart'] - 1]
                ws, we = v['workStart'], v['workEnd'] or 1e18
                during = sum(1 for a, t in v['idle'] if ws <= t <= we)
                lt = summary(heard)
                rows.append([r['condition'], key, lt['n'], '%s / %s' % (fmt(lt['p50']), fmt(lt['max'])),
                             '%d in %.0f ms' % (during, we - ws), ''])
        out.append(table('3d. Long tasks the observer reported, and how long after the task ended it heard of '
                         'it (p50 / max ms); idle callbacks (requestIdleCallback, one at a time) that ran '
                         'during the work, and on the idle page how long one asked for from a poll waited (p50 / p99 / max ms)',
                         ['condition', 'page', 'long tasks', 'heard after', 'idle callbacks', 'idle callback waited'],
                         rows))

        chunked = ['%d/%s' % cv for cv in WORK_VARIANTS if cv[0] in (10, 20)]
        v, c = worst(lambda r: pct([g for kk in chunked for g in gaps_of(r['work'][kk]['chunks'])], 99))
        m, cm = worst(lambda r: max(g for kk in chunked for g in gaps_of(r['work'][kk]['chunks'])))
        hit = sum(lag_verdicts(r['work'][kk], LAG, BUSY)[2] for r in results for kk in chunked)
        hit_n = sum(lag_verdicts(r['work'][kk], LAG, BUSY)[3] for r in results for kk in chunked)
        lines.append('READY_BUSY_MS = %d ms: measured gap between 10/20 ms chunked tasks p99 %.1f ms (%s), max '
                     '%.1f ms (%s); margin %+.1f ms at p99; but it holds only after a busy sign, and the probe\'s '
                     'busy rule saw %d/%d polls during that work as busy' % (BUSY, v, c, m, cm, BUSY - v, hit, hit_n))
        fp = sum(lag_verdicts(r['work']['idle'], LAG, BUSY)[0] for r in results)
        fpn = sum(lag_verdicts(r['work']['idle'], LAG, BUSY)[1] for r in results)
        det = []
        for key in chunked:
            w = [x for r in results for x in work_polls(r['work'][key])[1]]
            det.append('%s %d/%d' % (key, sum(1 for x in w if x > LAG), len(w)))
        v, c = worst(lambda r: pct(work_polls(r['work']['idle'])[0], 99))
        lines.append('READY_LAG_MS = %d ms: measured idle-page poll lateness p99 %.1f ms (%s), %d/%d idle polls '
                     'over it (false busy); polls over it during chunked work: %s; margin %+.1f ms over the idle p99'
                     % (LAG, v, c, fp, fpn, ', '.join(det), LAG - v))

    if has('body'):
        rows = []
        for r in results:
            for label, v in r['body'].items():
                a, b = summary(v['arrival']), summary(v['body'])
                rows.append([r['condition'], label, a['n'], a['p50'], a['p99'], a['max'],
                             share(v['arrival'], STREAM), b['p50'], b['p99'], b['max']])
        out.append(table('4. Response headers to the last byte, responseReceived to loadingFinished (ms), from the '
                         'local server (the PNG: %d KB, loaded by an img)' % (meta['png_kb']),
                         ['condition', 'answer', 'n', 'arrival p50', 'p99', 'max', '> %d ms' % STREAM,
                          'browser time p50', 'p99', 'max'], rows))
        v, c = worst(lambda r: pct(r['body']['10 MB']['arrival'], 99))
        m, cm = worst(lambda r: max(r['body']['10 MB']['arrival']))
        m1, cm1 = worst(lambda r: max(r['body']['1 MB']['arrival'] + r['body']['PNG']['arrival']))
        lines.append('READY_STREAM_MS = %d ms: measured headers to last byte (arrival) on loopback: 10 MB p99 '
                     '%.1f ms (%s), max %.1f ms (%s); 1 MB and the PNG max %.1f ms (%s); margin %+.1f ms for '
                     '10 MB at max; a link adds size / rate: 10 MB is 84 ms at 1 Gbit/s, 839 ms at 100 Mbit/s'
                     % (STREAM, v, c, m, cm, m1, cm1, STREAM - m))

    if has('afterload'):
        rows = []
        for r in results:
            for mode, v in r['afterload'].items():
                a, b = summary(v['arrival']), summary(v['gap'])
                rows.append([r['condition'], {'now': 'in the handler', 'timeout': 'setTimeout(0)',
                                              'raf': 'requestAnimationFrame'}[mode],
                             a['n'], a['p50'], a['p99'], a['max'], share(v['arrival'], GRACE),
                             b['p50'], b['p99'], b['max']])
        out.append(table('5. Page.loadEventFired to the requestWillBeSent of a fetch its load handler starts (ms; '
                         'negative: the request came first)',
                         ['condition', 'fetch started', 'n', 'arrival p50', 'p99', 'max', '> %d ms' % GRACE,
                          'browser time p50', 'p99', 'max'], rows))
        v, c = worst(lambda r: pct(r['afterload']['raf']['arrival'], 99))
        m, cm = worst(lambda r: max(max(x['arrival']) for x in r['afterload'].values()))
        extra, worst_ms = '', m
        if has('chain'):
            mc, cc = worst(lambda r: max(r['chain']['1 KB']['arrival'] + r['chain']['1 MB']['arrival']))
            extra = ', chained fetch max %.1f ms (%s)' % (mc, cc)
            worst_ms = max(m, mc)
        lines.append('READY_GRACE_MS = %d ms: measured load to a fetch after a frame (arrival) p99 %.1f ms (%s), '
                     'max of all fetches after load %.1f ms (%s)%s; margin %+.1f ms at the largest'
                     % (GRACE, v, c, m, cm, extra, GRACE - worst_ms))

    if has('probe'):
        pr = meta.get('probe', {})
        rows = []
        for r in results:
            for label, v in r['probe'].items():
                s = summary(v['waited'])
                q = v['quiet_at_answer']
                rows.append([r['condition'], label, '%d/%d' % (v['early'], v['n']), s['p50'], s['max'],
                             '%d/%d' % (v['busy_blocked'], v['n']),
                             ', '.join('%.0f' % x for x in sorted(q)) if q else '—'])
        out.append(table('6. The probe (%s, the values of ready.h%s), each time a fresh page\'s first probe: '
                         'answers "ready" while the page still worked or changed its DOM every frame'
                         % (pr.get('file', 'renderer/probe.js')
                            + (' changed: ' + '+'.join(pr['variant']) if pr.get('variant') else ''),
                            ', with ' + json.dumps(pr['opts']) if pr.get('opts') else ''),
                         ['condition', 'page', 'ready too early', 'answered after p50 (ms)', 'max',
                          'busy rule held it', 'DOM quiet when taken early (ms)'], rows))
        for what, pick in (('chunked work (5-20 ms tasks)', lambda o: o.get('chunk', 99) <= 20),
                           ('long tasks (60 ms)', lambda o: o.get('chunk', 0) == 60),
                           ('a DOM changed every frame', lambda o: 'animate' in o)):
            e = sum(r['probe'][l]['early'] for r in results for l, o in PROBE_CASES if pick(o))
            n = sum(r['probe'][l]['n'] for r in results for l, o in PROBE_CASES if pick(o))
            lines.append('  the probe answered ready during %s %d/%d times' % (what, e, n))
        w, c = worst(lambda r: pct(r['probe']['idle page']['waited'], 50))
        lines.append('  an idle page\'s first probe answered after p50 %.1f ms (%s)' % (w, c))

    print('\n### Summary\n', flush=True)
    for line in lines:
        print(line, flush=True)
    out.append('\n### Summary\n\n' + '\n'.join('- ' + l.strip() for l in lines))
    return '\n'.join(out) + '\n'


def main():
    global PROBE_FILE
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--conditions', default='idle,cpu2,render4',
                    help='comma-separated: idle, cpu2, render4 (default: all three)')
    ap.add_argument('--quick', action='store_true', help='a tenth of the samples (a smoke run)')
    ap.add_argument('--probe', help='measurement 6 with this probe instead of renderer/probe.js')
    ap.add_argument('--probe-variant', default='',
                    help='measurement 6 with the probe changed: overdue, idle, or both (overdue,idle)')
    ap.add_argument('--probe-opts', default='',
                    help='measurement 6 with these probe options changed, e.g. lagMs=5,busyMs=30')
    ap.add_argument('--wait-quiet', type=int, default=0, metavar='SECONDS',
                    help='before each condition wait up to this long for the machine to be under 25%% busy')
    ap.add_argument('--only', default='1,2,3,4,5,6', help='these measurements only, e.g. 3,6')
    ap.add_argument('--json', help='write every sample here')
    ap.add_argument('--from', dest='report_from', metavar='JSON',
                    help='measure nothing: print the tables of an earlier run\'s --json')
    ap.add_argument('--markdown', help='write the tables here')
    args = ap.parse_args()
    if args.report_from:
        try:
            with open(args.report_from) as f:
                data = json.load(f)
            results, meta = data['results'], data['meta']
        except (OSError, ValueError, KeyError) as e:
            ap.error('--from %s: not a --json file of this script (%s)' % (args.report_from, e))
        W.update(meta.get('windows', {}))
        text = report(results, meta)
        if args.markdown:
            with open(args.markdown, 'w') as f:
                f.write(text)
        return
    conds = args.conditions.split(',')
    for c in conds:
        if c not in ('idle', 'cpu2', 'render4'):
            ap.error('unknown condition %r: use idle, cpu2, render4' % c)
    if args.probe:
        if not os.path.isfile(args.probe):
            ap.error('--probe %s: no such file' % args.probe)
        PROBE_FILE = os.path.abspath(args.probe)
    for v in filter(None, args.probe_variant.split(',')):
        if v not in PROBE_VARIANTS:
            ap.error('--probe-variant %r: one of %s' % (v, ', '.join(PROBE_VARIANTS)))
        PROBE_VARIANT.append(v)
    probe_source()  # the variants still apply
    for kv in filter(None, args.probe_opts.split(',')):
        key, _, val = kv.partition('=')
        if key not in probe_opts(0) or not val.isdigit():
            ap.error('--probe-opts %r: want NAME=INTEGER, NAME one of %s' % (kv, ', '.join(sorted(probe_opts(0)))))
        PROBE_OVERRIDES[key] = int(val)
    only = set(args.only.split(','))
    if not only <= set('123456'):
        ap.error('--only %r: measurement numbers 1..6, comma-separated' % args.only)
    k = 0.1 if args.quick else 1.0
    started = time.time()
    pages = Pages()
    browser = Browser()
    results = []
    try:
        for name in conds:
            results.append(run_condition(name, pages, browser, k, only, args.wait_quiet))
    finally:
        browser.close()
        pages.close()
    meta = {'browser': browser.version, 'png_kb': len(pages.img) // 1000, 'cores': os.cpu_count(),
            'command': ' '.join(browser_command()), 'windows': W,
            'machine': '%s, %d cores, %s' % (browser.version, os.cpu_count(), platform_line()),
            'when': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'seconds': time.time() - started,
            'probe': {'file': os.path.relpath(PROBE_FILE, ROOT), 'variant': PROBE_VARIANT, 'opts': PROBE_OVERRIDES}}
    text = report(results, meta)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'meta': meta, 'results': results}, f)


def platform_line():
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, Linux %s' % (model, os.uname().release)


if __name__ == '__main__':
    main()
