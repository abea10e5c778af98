#!/usr/bin/env python3
"""Render latency, throughput and memory: rendervisor against a reference
peer (bench/peers/reference.js: puppeteer-core doing what the reference
Grafana image renderer does in its best mode), in one run, on the same
Chromium, rendering the same page.

    bench/render.py BUILD_DIR [--renders N] [--seconds S] [--concurrency C]
                    [--browser shell|chromium] [--requests N] [--tracing]
                    [--skip-rendervisor] [--skip-peer]

bench/pages/ is served on 127.0.0.1 by a thread. For each side: 5 warm-up
renders (the first is checked: a 1000x500 PNG with the panel's late-drawn
marker), N sequential renders of pages/panel.html at 1000x500 (with
--requests R, the page first fetches R small files from its server, as a
dashboard's queries would: what a per-request cost shows in), then C
threads rendering it for S seconds; then 2 s idle and the resident memory:
for rendervisor the supervisor, exporter and renderer processes (not the
browsers), for the peer its node process (not Chromium).

rendervisor runs from BUILD_DIR with a temporary config: one browser with
the command of etc/rendervisor.ini, the renderer on a free 127.0.0.1 port.
Both sides run the same browser program: --browser shell (the default, and
the default config's: Debian's chromium-headless-shell) or --browser
chromium (the full browser, `chromium --headless`).

Besides latency and throughput it reports the CPU time the whole machine
spent per render during the concurrent run (/proc/stat; the machine must be
otherwise quiet for it to mean anything) and where a sequential render's
time went, step by step: for rendervisor from its step histograms, for the
peer from its Server-Timing header.
With --tracing, rendervisor runs with [tracing] on (sample_ratio 1: every
render's spans exported, and its page's requests given a traceparent) to an
OTLP/HTTP stand-in on 127.0.0.1 that counts the spans it is posted and
answers 200; the spans received are reported.
It is skipped, with a message, while BUILD_DIR/renderer/rendervisor-renderer
does not exist. The peer needs `npm ci` in bench/peers first; it is skipped,
with a message, without it. Everything listens on 127.0.0.1 only."""
import argparse
import configparser
import functools
import http.client
import http.server
import json
import math
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
PAGES = os.path.join(HERE, 'pages')
PEER_DIR = os.path.join(HERE, 'peers')
TOKEN = '-'
WIDTH, HEIGHT = 1000, 500
WARMUP = 5
# The marker square panel.html paints with the panel, and its colour.
MARKER_XY = (40, 70)
MARKER_RGB = (0x73, 0xbf, 0x69)
REQUEST_TIMEOUT = 60
GOALS = {'p50': 0.2, 'rps': 3.0, 'rss_mib': 12.0}
# --browser: the program both sides run, and what it needs to be headless.
BROWSERS = {
    'shell': ('/usr/lib/chromium/chromium-headless-shell', []),
    'chromium': ('/usr/bin/chromium', ['--headless']),
}


# ---- small helpers -------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_range(count):
    for base in range(41000, 49000, 37):
        socks = []
        try:
            for i in range(count):
                s = socket.socket()
                s.bind(('127.0.0.1', base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit('no free port range for the browsers')


def default_browser_command(browser='shell'):
    """[browsers] command of etc/rendervisor.ini with the program of
    BROWSERS[browser], as indented continuation lines (a config line holds
    at most 199 characters)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(';',))
    cp.read(os.path.join(SOURCE, 'etc', 'rendervisor.ini'))
    program, extra = BROWSERS[browser]
    words = [program] + extra + cp['browsers']['command'].split()[1:]
    lines, line = [], ''
    for w in words:
        if line and len(line) + 1 + len(w) > 100:
            lines.append(line)
            line = w
        else:
            line = (line + ' ' + w).strip()
    lines.append(line)
    return '\n    '.join(lines)


def rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(ppid):
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(')') + 2:].split()[1]) == ppid:
            out.append(int(name))
    return out


def exe_name(pid):
    try:
        return os.path.basename(os.readlink('/proc/%d/exe' % pid))
    except OSError:
        return ''


# Where our processes' resident memory is, by what maps it (shared libraries
# count in full in every process that maps them).
RSS_GROUPS = [
    ('libc + ld.so', ('/libc.so', '/ld-linux', '/libpthread.so', '/libdl.so')),
    ('gnutls and its libraries (libmicrohttpd links them)',
     ('gnutls', 'p11-kit', 'nettle', 'hogweed', 'gmp', 'tasn1', 'idn2', 'unistring', 'ffi')),
    ('libmicrohttpd', ('microhttpd',)),
    ('OpenSSL (libwebsockets links it)', ('/libcrypto.', '/libssl.')),
    ('libwebsockets, libz, jansson', ('websockets', '/libz.', 'jansson')),
    ('libproc2 and what it links (libsystemd, libgcrypt, ...)',
     ('proc2', 'systemd', 'gcrypt', 'gpg-error', 'zstd', 'lzma', 'lz4', 'numa')),
    ('libcap, inih', ('/libcap.', 'inih')),
    ('our binaries', ('rendervisor',)),
]


def rss_breakdown(named_pids):
    """A markdown table: RSS in KiB by RSS_GROUPS for each (name, pid), and
    the total RSS and PSS."""
    cols = []
    for _, pid in named_pids:
        rss, pss, group = {}, 0, None
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                w = line.split()
                if not w[0].endswith(':'):
                    path = w[5] if len(w) > 5 else ''
                    group = next((g for g, keys in RSS_GROUPS if any(k in path for k in keys)),
                                 'heap, stacks, anonymous' if not path.startswith('/') else 'other files')
                elif w[0] == 'Rss:':
                    rss[group] = rss.get(group, 0) + int(w[1])
                elif w[0] == 'Pss:':
                    pss += int(w[1])
        cols.append((rss, pss))
    groups = sorted({g for rss, _ in cols for g in rss}, key=lambda g: -sum(c[0].get(g, 0) for c in cols))
    out = ['| KiB | %s | all |' % ' | '.join(n for n, _ in named_pids),
           '|---|' + '---:|' * (len(named_pids) + 1)]
    for g in groups:
        v = [c[0].get(g, 0) for c in cols]
        out.append('| %s | %s | %d |' % (g, ' | '.join(map(str, v)), sum(v)))
    v = [sum(c[0].values()) for c in cols]
    out.append('| **RSS** | %s | **%d** |' % (' | '.join(map(str, v)), sum(v)))
    v = [c[1] for c in cols]
    out.append('| PSS | %s | %d |' % (' | '.join(map(str, v)), sum(v)))
    return '\n'.join(out)


def percentile(values, p):
    s = sorted(values)
    if not s:
        return float('nan')
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def png_check(data, width, height):
    """None if data is a width x height PNG whose marker pixel has the
    panel's colour, else what is wrong. Decodes 8-bit RGB/RGBA PNGs."""
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        return 'not a PNG'
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
        pos += 12 + length
    if not ihdr:
        return 'no IHDR'
    w, h, depth, ctype, _, _, interlace = ihdr
    if (w, h) != (width, height):
        return 'size %dx%d, wanted %dx%d' % (w, h, width, height)
    if depth != 8 or ctype not in (2, 6) or interlace:
        return 'unexpected PNG format (depth %d, colour type %d)' % (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    x, y = MARKER_XY
    for row in range(y + 1):
        off = row * (stride + 1)
        ftype, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        prev = line
    px = tuple(prev[x * bpp:x * bpp + 3])
    if any(abs(p - q) > 8 for p, q in zip(px, MARKER_RGB)):
        return 'marker pixel (%d,%d) is #%02x%02x%02x, not the panel\'s green' % ((x, y) + px)
    return None


# ---- the page server -----------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def start_pages():
    handler = functools.partial(QuietHandler, directory=PAGES)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


# ---- an OTLP/HTTP stand-in (--tracing) ----------------------------------

class OtlpCounter(http.server.BaseHTTPRequestHandler):
    """Takes OTLP/HTTP JSON posts and counts their spans."""
    protocol_version = 'HTTP/1.1'
    posts = 0
    spans = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        n = sum(len(ss.get('spans', [])) for rs in json.loads(body).get('resourceSpans', [])
                for ss in rs.get('scopeSpans', []))
        with self.lock:
            OtlpCounter.posts += 1
            OtlpCounter.spans += n
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'{}')


def start_otlp():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), OtlpCounter)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- load ----------------------------------------------------------------

def render_once(port, path):
    """(status, seconds, body, Server-Timing header or None); status 0 for a
    connection failure."""
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=REQUEST_TIMEOUT)
        c.request('GET', path, headers={'X-Auth-Token': TOKEN})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, time.monotonic() - t0, body, r.getheader('Server-Timing')
    except (OSError, http.client.HTTPException) as e:
        return 0, time.monotonic() - t0, str(e).encode(), None


def host_cpu_seconds():
    """CPU time the whole machine has spent (user, nice, system, irq,
    softirq), from /proc/stat."""
    with open('/proc/stat') as f:
        fields = f.readline().split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / os.sysconf('SC_CLK_TCK')


def add_server_timing(steps, header):
    """Adds a Server-Timing header's durations (ms) to steps {name: [ms]}."""
    for part in (header or '').split(','):
        name, _, params = part.strip().partition(';')
        if params.startswith('dur=') and name != 'total':
            steps.setdefault(name, []).append(float(params[4:]))


def metrics_steps(port):
    """{"step": {step: (sum seconds, count)}, "rule": {rule: (sum, count)}}
    from the renderer's /metrics: the step histogram and the readiness
    rules' (rendervisor_renderer_readiness_wait_seconds, one observation
    per rule for every render that reached readiness)."""
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    c.request('GET', '/metrics')
    text = c.getresponse().read().decode()
    c.close()
    out = {'step': {}, 'rule': {}}
    families = {'grafana_image_renderer_step_duration_seconds_': 'step',
                'rendervisor_renderer_readiness_wait_seconds_': 'rule'}
    for line in text.splitlines():
        label = next((l for f, l in families.items() if line.startswith(f)), None)
        if not label:
            continue
        name, _, value = line.rpartition(' ')
        kind = name.split('{')[0].rsplit('_', 1)[1]
        if kind in ('sum', 'count') and label + '="' in name:
            key = name.split(label + '="')[1].split('"')[0]
            s, n = out[label].get(key, (0.0, 0))
            out[label][key] = (s + float(value), n) if kind == 'sum' else (s, n + int(float(value)))
    return out


def mean_ms(before, after):
    """{name: mean ms} of the observations between two metrics_steps()."""
    return {k: (v[0] - before.get(k, (0, 0))[0]) / (v[1] - before.get(k, (0, 0))[1]) * 1000
            for k, v in after.items() if v[1] > before.get(k, (0, 0))[1]}


def run_load(name, port, page_url, args, rss_of, steps_of=None):
    path = '/render?' + urllib.parse.urlencode({
        'url': page_url, 'width': WIDTH, 'height': HEIGHT, 'deviceScaleFactor': 1})
    res = {'name': name, 'invalid': None}
    print('%s: warm-up (%d renders)' % (name, WARMUP), flush=True)
    for i in range(WARMUP):
        status, _, body, _ = render_once(port, path)
        if status != 200:
            res['invalid'] = 'warm-up render %d: status %d: %s' % (i + 1, status, body[:200])
            return res
        if i == 0:
            bad = png_check(body, WIDTH, HEIGHT)
            if bad:
                res['invalid'] = 'first render: ' + bad
                return res

    print('%s: %d sequential renders' % (name, args.renders), flush=True)
    seq, seq_err, timing = [], 0, {}
    before = steps_of() if steps_of else None
    t0 = time.monotonic()
    for _ in range(args.renders):
        status, dt, _, server_timing = render_once(port, path)
        if status == 200:
            seq.append(dt)
            add_server_timing(timing, server_timing)
        else:
            seq_err += 1
    seq_wall = time.monotonic() - t0
    rules = {}
    if steps_of:
        after = steps_of()
        steps = mean_ms(before['step'], after['step'])
        rules = mean_ms(before['rule'], after['rule'])
    else:
        steps = {k: sum(v) / len(v) for k, v in timing.items()}

    print('%s: concurrency %d for %d s' % (name, args.concurrency, args.seconds), flush=True)
    lock = threading.Lock()
    conc, conc_err = [], [0]
    start = time.monotonic()
    deadline = start + args.seconds

    def worker():
        while time.monotonic() < deadline:
            status, dt, _, _ = render_once(port, path)
            with lock:
                if status == 200:
                    conc.append(dt)
                else:
                    conc_err[0] += 1

    cpu0 = host_cpu_seconds()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conc_wall = time.monotonic() - start
    cpu = host_cpu_seconds() - cpu0

    time.sleep(2)
    res.update({
        'seq': seq, 'seq_err': seq_err, 'seq_rps': len(seq) / seq_wall if seq_wall else 0,
        'conc': conc, 'conc_err': conc_err[0], 'conc_rps': len(conc) / conc_wall if conc_wall else 0,
        'cpu_per_render': cpu / len(conc) if conc else float('nan'),
        'cpu_busy': cpu / conc_wall / os.cpu_count() if conc_wall else float('nan'),
        'steps': steps,
        'rules': rules,
        'rss': rss_of(),
    })
    return res


# ---- rendervisor ---------------------------------------------------------

class Rendervisor:
    """The real supervisor with a temporary config: `browsers` browsers with
    the default config's command, everything else at its default but for the
    ports and runtime_dir, and renderer: more [renderer] settings. popen_kw
    goes to the supervisor's Popen (bench/memory.py starts it inside a memory
    cgroup)."""
    def __init__(self, build, tmp, browser, browsers=1, popen_kw=None, renderer=None, tracing=None):
        self.build = build
        self.renderer = renderer or {}
        self.tracing = tracing or {}
        self.browser = browser
        self.browsers = browsers
        self.popen_kw = popen_kw or {}
        self.tmp = tmp
        self.port = free_port()
        self.proc = None
        self.log = os.path.join(tmp, 'rendervisor.log')

    def start(self):
        cfg = os.path.join(self.tmp, 'rendervisor.ini')
        with open(cfg, 'w') as f:
            f.write('[supervisor]\nruntime_dir = %s\nlog_level = warn\n'
                    '[exporter]\ncommand = %s\nlisten =\n'
                    '[renderer]\ncommand = %s\nlisten = 127.0.0.1:%d\n'
                    '[browsers]\ncount = %d\ncommand = %s\nport_base = %d\n' % (
                        os.path.join(self.tmp, 'run'),
                        os.path.join(self.build, 'exporter', 'rendervisor-exporter'),
                        os.path.join(self.build, 'renderer', 'rendervisor-renderer'),
                        self.port, self.browsers, default_browser_command(self.browser),
                        free_port_range(self.browsers)))
            f.write('[renderer]\n' + ''.join('%s = %s\n' % kv for kv in self.renderer.items()))
            if self.tracing:
                f.write('[tracing]\n' + ''.join('%s = %s\n' % kv for kv in self.tracing.items()))
        self.logf = open(self.log, 'wb')
        self.proc = subprocess.Popen([os.path.join(self.build, 'supervisor', 'rendervisor'), '--config', cfg],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                                     **self.popen_kw)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('rendervisor exited with %d' % self.proc.returncode)
            try:
                c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=2)
                c.request('GET', '/healthz')
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError('/healthz did not answer 200 within 60 s')

    def pids(self):
        """The supervisor, its exporter and its renderer (not the browsers)."""
        pids = [self.proc.pid]
        for pid in children(self.proc.pid):
            if exe_name(pid) in ('rendervisor-exporter', 'rendervisor-renderer'):
                pids.append(pid)
        return pids

    def rss(self):
        pids = self.pids()
        if len(pids) != 3:
            print('warning: found %d of the 3 rendervisor processes' % len(pids), file=sys.stderr)
        return sum(rss_kib(p) for p in pids)

    def log_tail(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read()[-3000:].decode(errors='replace')
        except OSError:
            return ''

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                print('rendervisor did not stop within 30 s: SIGKILL', file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()


# ---- the peer ------------------------------------------------------------

class Peer:
    """bench/peers/reference.js; popen_kw goes to node's Popen."""
    def __init__(self, browser, popen_kw=None):
        self.browser = browser
        self.popen_kw = popen_kw or {}
        self.port = free_port()
        self.proc = None
        self.browser_pid = None

    def start(self):
        env = dict(os.environ, PEER_CHROMIUM=BROWSERS[self.browser][0], PEER_TOKEN=TOKEN)
        self.proc = subprocess.Popen(['node', os.path.join(PEER_DIR, 'reference.js'), str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env,
                                     **self.popen_kw)
        deadline = time.monotonic() + 60
        line = b''
        while time.monotonic() < deadline and not line.endswith(b'\n'):
            if self.proc.poll() is not None:
                raise RuntimeError('the peer exited with %d' % self.proc.returncode)
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line += os.read(self.proc.stdout.fileno(), 200)
        words = line.split()
        if len(words) != 3 or words[0] != b'ready':
            raise RuntimeError('the peer did not get ready within 60 s (%r)' % line)
        self.browser_pid = int(words[2])

    def rss(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        # puppeteer starts Chromium in its own process group: if node died
        # without closing it, end that one browser (checked to be Chromium).
        if self.browser_pid:
            try:
                with open('/proc/%d/cmdline' % self.browser_pid, 'rb') as f:
                    if b'chrom' in f.read().split(b'\0')[0]:
                        os.kill(self.browser_pid, signal.SIGKILL)
            except OSError:
                pass


# ---- report --------------------------------------------------------------

def ms(v):
    return '%.0f' % (v * 1000)


def report(results):
    print()
    print('| | seq p50 ms | seq p90 ms | seq p99 ms | seq renders/s | c%d p50 ms | c%d p90 ms | c%d p99 ms '
          '| c%d renders/s | errors | idle RSS MiB | mean ms each readiness rule added (seq) |'
          % ((ARGS.concurrency,) * 4))
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for r in results:
        if r.get('invalid'):
            print('| %s | invalid: %s |' % (r['name'], r['invalid']))
            continue
        s, c = r['seq'], r['conc']
        # Ours: the rules that held a render back (rules at 0 left out). The
        # peer has one fixed rule: the network idle for 500 ms (in its navigate).
        rules = ', '.join('%s %.1f' % kv for kv in r['rules'].items() if kv[1] >= 0.05) if r['rules'] else (
            'network idle 500 ms (fixed, in navigate)' if r['name'] != 'rendervisor' else 'none reported')
        print('| %s | %s | %s | %s | %.2f | %s | %s | %s | %.2f | %d | %.1f | %s |' % (
            r['name'], ms(percentile(s, 50)), ms(percentile(s, 90)), ms(percentile(s, 99)), r['seq_rps'],
            ms(percentile(c, 50)), ms(percentile(c, 90)), ms(percentile(c, 99)), r['conc_rps'],
            r['seq_err'] + r['conc_err'], r['rss'] / 1024, rules or 'none'))
    print()
    for r in results:
        if r.get('invalid'):
            continue
        print('%s: at concurrency %d the machine spent %.0f ms of CPU per render (%.0f%% of its CPUs busy)' % (
            r['name'], ARGS.concurrency, r['cpu_per_render'] * 1000, r['cpu_busy'] * 100))
        print('%s: mean step times of a sequential render: %s' % (
            r['name'], ', '.join('%s %.0f ms' % kv for kv in r['steps'].items()) or 'none reported'))
    for r in results:
        if r.get('rss_table'):
            print()
            print('%s: resident memory after the runs, by what maps it' % r['name'])
            print(r['rss_table'])
    ok = {r['name']: r for r in results if not r.get('invalid')}
    ours, peer = ok.get('rendervisor'), ok.get('reference peer')
    print()
    if ours:
        rss = ours['rss'] / 1024
        print('rendervisor RSS (supervisor + exporter + renderer): %.1f MiB (goal < %.0f MiB: %s)' % (
            rss, GOALS['rss_mib'], 'met' if rss < GOALS['rss_mib'] else 'NOT met'))
    if ours and peer:
        p50 = percentile(ours['seq'], 50) / percentile(peer['seq'], 50)
        rps = ours['conc_rps'] / peer['conc_rps'] if peer['conc_rps'] else float('inf')
        rss = ours['rss'] / peer['rss'] if peer['rss'] else float('nan')
        print('p50 ours/peer: %.2fx (goal <= %.1fx: %s)' % (p50, GOALS['p50'], 'met' if p50 <= GOALS['p50'] else 'NOT met'))
        print('renders/s at concurrency %d ours/peer: %.2fx (goal >= %.0fx: %s)' % (
            ARGS.concurrency, rps, GOALS['rps'], 'met' if rps >= GOALS['rps'] else 'NOT met'))
        print('idle RSS ours/peer node: %.3fx' % rss)


def peer_missing():
    """Why the reference peer cannot run here, or None."""
    if not os.path.isdir(os.path.join(PEER_DIR, 'node_modules', 'puppeteer-core')):
        return 'puppeteer-core is not installed (run `npm ci` in bench/peers)'
    if not shutil.which('node'):
        return 'node is not in PATH'
    return None


def browser_version(browser):
    program = BROWSERS[browser][0]
    try:
        out = subprocess.run([program, '--version'], capture_output=True, timeout=20, text=True).stdout
        return '%s (%s)' % (out.split(' built')[0].strip(), program)
    except (OSError, subprocess.TimeoutExpired):
        return 'unknown (%s)' % program


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('build', nargs='?', default='build')
    ap.add_argument('--renders', type=int, default=50, help='sequential renders (default 50)')
    ap.add_argument('--seconds', type=float, default=20, help='length of the concurrent run (default 20)')
    ap.add_argument('--concurrency', type=int, default=4, help='concurrent clients (default 4)')
    ap.add_argument('--requests', type=int, default=0,
                    help='the page first fetches this many small resources from its server (default 0)')
    ap.add_argument('--browser', choices=sorted(BROWSERS), default='shell',
                    help='the browser both sides run (default shell: chromium-headless-shell)')
    ap.add_argument('--tracing', action='store_true',
                    help='rendervisor with [tracing] on, to a local OTLP/HTTP stand-in (sample_ratio 1)')
    ap.add_argument('--skip-rendervisor', action='store_true')
    ap.add_argument('--skip-peer', action='store_true')
    ARGS = args = ap.parse_args()
    build = os.path.abspath(args.build)

    run_ours = not args.skip_rendervisor
    if run_ours and not os.path.exists(os.path.join(build, 'renderer', 'rendervisor-renderer')):
        print('skipping rendervisor: %s/renderer/rendervisor-renderer does not exist yet (build it first)' % build)
        run_ours = False
    run_peer = not args.skip_peer
    if run_peer and peer_missing():
        print('skipping the reference peer: ' + peer_missing())
        run_peer = False
    if not run_ours and not run_peer:
        raise SystemExit('nothing to run')
    if not os.access(BROWSERS[args.browser][0], os.X_OK):
        raise SystemExit('%s is not installed' % BROWSERS[args.browser][0])

    print('%s, %d CPUs; page %dx%d; %d sequential renders; concurrency %d for %g s' % (
        browser_version(args.browser), os.cpu_count(), WIDTH, HEIGHT, args.renders, args.concurrency, args.seconds))
    pages, pages_thread = start_pages()
    page_url = 'http://127.0.0.1:%d/panel.html' % pages.server_address[1]
    if args.requests:
        page_url += '?requests=%d' % args.requests
    tmp = tempfile.mkdtemp(prefix='rv-bench-render.')
    results = []
    try:
        if run_ours:
            otlp = start_otlp() if args.tracing else None
            tracing = {'endpoint': 'http://127.0.0.1:%d/v1/traces' % otlp.server_address[1],
                       'sample_ratio': '1'} if otlp else None
            rv = Rendervisor(build, tmp, args.browser, tracing=tracing)
            try:
                rv.start()
                results.append(run_load('rendervisor', rv.port, page_url, args, rv.rss,
                                        lambda: metrics_steps(rv.port)))
                results[-1]['rss_table'] = rss_breakdown([(exe_name(p), p) for p in rv.pids()])
            except Exception as e:
                results.append({'name': 'rendervisor', 'invalid': str(e)})
                print('rendervisor failed: %s\n%s' % (e, rv.log_tail()), file=sys.stderr)
            finally:
                rv.stop()
                if otlp:
                    print('tracing: the stand-in received %d spans in %d posts' % (OtlpCounter.spans,
                                                                                   OtlpCounter.posts))
                    otlp.shutdown()
                    otlp.server_close()
        if run_peer:
            peer = Peer(args.browser)
            try:
                peer.start()
                results.append(run_load('reference peer', peer.port, page_url, args, peer.rss))
            except Exception as e:
                results.append({'name': 'reference peer', 'invalid': str(e)})
                print('the peer failed: %s' % e, file=sys.stderr)
            finally:
                peer.stop()
    finally:
        pages.shutdown()
        pages.server_close()
        pages_thread.join(5)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    if any(r.get('invalid') for r in results):
        sys.exit(1)


if __name__ == '__main__':
    main()
