"""The exporter's status page, rendered to PNG by rendervisor's own renderer
and a real Chromium under the real supervisor, the way an operator (or
Grafana) would render it: every child is shown up at its fixed place, and a
page loaded before a child's restart shows the new restart count after its
next poll, without a reload, exactly as a page served after the restart
does. Also /status.json, the page's headers and ?refresh=.

The pixel positions below follow exporter/status.css (a fixed layout: a
48 px header, a 24 px table head, 48 px rows, fixed column widths)."""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, free_port, free_port_range, http_get, sh, wait_until  # noqa: E402
from test_renderer import default_browser_command, read_png  # noqa: E402

EXPORTER = os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter')
RENDERER = os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer')
TOKEN = 'status-token-5678'
CHILDREN = ['exporter', 'browser-0', 'browser-1', 'renderer']

# The layout of exporter/status.css, in CSS px (= PNG px at deviceScaleFactor 1).
WIDTH, HEIGHT = 1120, 480
SOURCE = (224, 24)               # the centre of the "where the figures come from" swatch
ROW_TOP, ROW_HEIGHT = 72, 48     # the first child's row, and each row's height
SWATCH_X = 32                    # the centre of a row's state swatch
RESTARTS_X = (376, 526)          # the restarts column
CHART_X = (844, 1084)            # a row's PSS chart (the svg inside the last column)

UP = (46, 125, 50)               # tr.up swatch
SERVED = (158, 158, 158)         # #source: figures as served
LIVE = (21, 101, 192)            # #source.live: figures from a poll
CHART_BG = (236, 239, 241)


def row_top(i):
    return ROW_TOP + ROW_HEIGHT * i


def crop(rows, x0, x1, y0, y1):
    return [tuple(r[x0:x1]) for r in rows[y0:y1]]


class Relay:
    """A TCP forwarder in front of the exporter that notes when each request
    passed it and when a page (its </html>) came back: the test's way of
    knowing that a page was served, and when it polled, without touching
    either side."""

    REQUEST = re.compile(rb'(?:GET|HEAD) (\S+) HTTP/1\.[01]\r\n')

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.events = []  # (monotonic time, 'request' or 'page', path)
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(('127.0.0.1', self.upstream), timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, up]
            threading.Thread(target=self._pump, args=(client, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        last_path = None
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b''
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            now = time.monotonic()
            with self.lock:
                if from_client:
                    for m in self.REQUEST.finditer(data):
                        last_path = m.group(1).decode()
                        self.events.append((now, 'request', last_path))
                elif b'</html>' in data:
                    self.events.append((now, 'page', None))
            try:
                dst.sendall(data)
            except OSError:
                return

    def log(self):
        with self.lock:
            return list(self.events)

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass


class StatusPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.eport = free_port()
        cls.port_base = free_port_range(2)
        cls.relay = Relay(cls.eport)
        # The renderer may open the exporter's port (and the relay in front
        # of it) on 127.0.0.1 and nothing else.
        allowed = '127.0.0.1:%d 127.0.0.1:%d' % (cls.eport, cls.relay.port)
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                             renderer=os.path.abspath(RENDERER), browser_count=2,
                             sample_interval='500ms', stop_timeout='3s', collect=False,
                             extra={'exporter': {'listen': '127.0.0.1:%d' % cls.eport, 'memory_limit': '64M'},
                                    'renderer': {'listen': '127.0.0.1:%d' % cls.port, 'auth_token': TOKEN,
                                                 'allowed_hosts': allowed, 'memory_limit': '512M'},
                                    # a test finds which browser renders a page through
                                    # DevTools: the debugging opt-in, devtools = port
                                    'browsers': {'port_base': str(cls.port_base), 'memory_limit': '2G',
                                                 'devtools': 'port'}})
        cls.rv.start()
        try:
            wait_until(lambda: b'2 of 2' in cls.get(cls.port, '/healthz')[2], 60, interval=0.1,
                       what='the renderer connected to both browsers')
        except Exception:
            print(cls.rv.log_text()[-6000:])
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rv.stop()
        cls.relay.close()

    get = staticmethod(http_get)

    def status(self):
        code, _, body = self.get(self.eport, '/status.json', timeout=10)
        self.assertEqual(code, 200, body[:300])
        return json.loads(body)

    def child(self, data, name):
        return next(c for c in data['children'] if c['name'] == name)

    def render(self, page_url, height=HEIGHT):
        q = urllib.parse.urlencode(dict(url=page_url, width=WIDTH, height=height, deviceScaleFactor=1, timeout=30))
        code, headers, body = self.get(self.port, '/render?' + q, {'X-Auth-Token': TOKEN})
        if code != 200:
            print(self.rv.log_text()[-6000:])
        self.assertEqual(code, 200, body[:500])
        self.assertEqual(headers.get('Content-Type'), 'image/png')
        w, h, rows = read_png(body)
        self.assertEqual((w, h), (WIDTH, height))
        if os.environ.get('RV_KEEP_PNG'):
            with open(os.path.join(os.environ['RV_KEEP_PNG'], 'status-%d.png' % height), 'wb') as f:
                f.write(body)
        return rows

    def page(self, refresh, port=None):
        return 'http://127.0.0.1:%d/?refresh=%d' % (port or self.eport, refresh)

    def wait_all_up(self):
        def ready():
            d = self.status()
            return all(c['view']['class'] == 'up' and c['view']['chart']['pss'] for c in d['children'])
        wait_until(ready, 30, interval=0.2, what='every child up, with a PSS chart')

    # ---- (a) every child, up, at its place -----------------------------------------
    def test_a_every_child_is_shown_up(self):
        self.wait_all_up()
        rows = self.render(self.page(0))
        self.assertEqual(rows[SOURCE[1]][SOURCE[0]], SERVED, 'the figures should be the served ones')
        for i, name in enumerate(CHILDREN):
            top = row_top(i)
            self.assertEqual(rows[top + ROW_HEIGHT // 2][SWATCH_X], UP, '%s is not shown up' % name)
            # its PSS chart: drawn at the right (now), empty at the left (ten
            # minutes ago, before the service started)
            bottom = top + 4 + 39
            self.assertEqual(rows[bottom][CHART_X[0] + 1], CHART_BG, name)
            # The last slot (5 s, 2 px) may have had no report yet when the
            # page was fetched just after it began: its neighbour then is.
            right = [rows[bottom][x] for x in range(CHART_X[1] - 4, CHART_X[1])]
            self.assertTrue(any(px != CHART_BG for px in right), '%s: no PSS drawn: %s' % (name, right))
        # no fifth row: below the last one is the page's white
        self.assertEqual(rows[row_top(len(CHILDREN)) + 8][SWATCH_X], (255, 255, 255))

    # ---- (b) a restart shown without a reload -------------------------------------
    def test_b_restart_is_shown_without_reload(self):
        rv = self.rv
        self.wait_all_up()
        before = self.status()

        # A: served now, no polling
        rows_a = self.render(self.page(0))

        # B: a page that polls every 3 s, loaded through the relay; once it
        # has been served, the browser that is not rendering it is killed
        tag = uuid.uuid4().hex
        url_b = self.page(3, self.relay.port) + '&tag=' + tag
        result = []
        t = threading.Thread(target=lambda: result.append(self.render(url_b)))
        t.start()
        try:
            def served():
                seen = False
                for when, kind, path in self.relay.log():
                    if kind == 'request' and path and tag in path:
                        seen = True
                    elif kind == 'page' and seen:
                        return when
                return None
            t_served = wait_until(served, 30, interval=0.01, what='page B served')

            def host():
                found = []
                for i in range(2):
                    code, _, body = self.get(self.port_base + i, '/json/list', timeout=5)
                    if code == 200 and any(tag in tgt.get('url', '') for tgt in json.loads(body)):
                        found.append(i)
                return found
            hosts = wait_until(host, 10, interval=0.05, what='the browser rendering page B')
            self.assertEqual(len(hosts), 1, hosts)
            victim = 'browser-%d' % (1 - hosts[0])
            restarts = self.child(before, victim)['restarts']
            starts = len(rv.starts(victim))
            t_kill = time.monotonic()
            os.kill(rv.pid(victim), signal.SIGKILL)
            rv.wait_started(victim, starts + 1, timeout=10)

            def reported():
                c = self.child(self.status(), victim)
                return c['restarts'] == restarts + 1 and c['up']
            wait_until(reported, 10, interval=0.02, what='the restart reported to the exporter')
            t_reported = time.monotonic()
        finally:
            t.join(60)
        self.assertEqual(len(result), 1, 'render B did not finish')
        rows_b = result[0]

        # C: served after the restart, no polling
        rows_c = self.render(self.page(0))
        self.assertEqual(self.child(self.status(), victim)['restarts'], restarts + 1,
                         'another restart came in between: the comparison would not hold')

        # B was served once, before the kill, and polled after the exporter had the restart
        log = self.relay.log()
        pages = [e for e in log if e[1] == 'request' and tag in e[2]]
        self.assertEqual(len(pages), 1, 'page B was loaded more than once: %s' % pages)
        self.assertLess(t_served, t_kill)
        polls = [when for when, kind, path in log if kind == 'request' and path == '/status.json' and when > t_served]
        self.assertTrue(polls, 'page B never polled')
        self.assertGreater(polls[0], t_reported,
                           'page B polled before the restart was reported: the test cannot tell anything')

        self.assertEqual(rows_a[SOURCE[1]][SOURCE[0]], SERVED)
        self.assertEqual(rows_b[SOURCE[1]][SOURCE[0]], LIVE, 'page B does not show figures from a poll')
        self.assertEqual(rows_c[SOURCE[1]][SOURCE[0]], SERVED)

        row = CHILDREN.index(victim)
        y0, y1 = row_top(row) + 2, row_top(row) + ROW_HEIGHT - 2
        cell_a = crop(rows_a, RESTARTS_X[0] + 2, RESTARTS_X[1] - 2, y0, y1)
        cell_b = crop(rows_b, RESTARTS_X[0] + 2, RESTARTS_X[1] - 2, y0, y1)
        cell_c = crop(rows_c, RESTARTS_X[0] + 2, RESTARTS_X[1] - 2, y0, y1)
        self.assertNotEqual(cell_a, cell_c, 'the restarts cell looks the same before and after the restart')
        diff = sum(1 for ra, rb in zip(cell_b, cell_c) for pa, pb in zip(ra, rb) if pa != pb)
        self.assertEqual(diff, 0, 'the polled page differs from a fresh one in %d pixels of the restarts cell' % diff)
        self.assertEqual(rows_b[row_top(row) + ROW_HEIGHT // 2][SWATCH_X], UP)

    # ---- HTTP ------------------------------------------------------------------------
    def test_c_headers_and_refresh(self):
        code, headers, body = self.get(self.eport, '/')
        self.assertEqual(code, 200)
        csp = headers.get('Content-Security-Policy', '')
        for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"):
            self.assertIn(part, csp)
        self.assertIn(b'data-refresh=2>', body)  # the default
        # no resource from anywhere else
        self.assertNotRegex(body, rb'(src|href)="(https?:)?//')
        self.assertIn(b'data-refresh=0>', self.get(self.eport, '/?refresh=0')[2])
        for bad in ('x', '-1', '3601', '1.5'):
            code, _, body = self.get(self.eport, '/?refresh=' + bad)
            self.assertEqual(code, 400, bad)
            self.assertIn(b'refresh', body)
        for path, kind in (('/status.js', 'text/javascript'), ('/status.css', 'text/css'),
                           ('/status.json', 'application/json')):
            code, headers, body = self.get(self.eport, path)
            self.assertEqual(code, 200, path)
            self.assertTrue(headers['Content-Type'].startswith(kind), headers)
            self.assertGreater(len(body), 100, path)
        self.assertIn(b'panelsRendered', self.get(self.eport, '/status.js')[2])
        d = self.status()
        self.assertEqual([c['name'] for c in d['children']], CHILDREN)
        for c in d['children']:
            self.assertGreater(c['memory_limit_bytes'], 0, c['name'])
            self.assertIsNotNone(c['view']['chart']['limit_y'], c['name'])
        # a render is among the latencies
        count = d['latency']['count']
        self.render(self.page(0))
        wait_until(lambda: self.status()['latency']['count'] > count, 10, what='the render in the latencies')

    # ---- (d) the memory part, drawn ----------------------------------------------------
    def test_d_memory_part_is_drawn(self):
        # The renderer's figures, sent as it sends them; until the renderer
        # reports its own budget these are the only ones, after that its
        # next report replaces them, and the part is drawn either way.
        send_ingest(os.path.join(self.rv.run_dir, 'ingest.sock'), MEMORY_REPORT)
        wait_until(lambda: self.status()['memory'], 5, interval=0.05, what='the memory part in status.json')
        rows = self.render(self.page(0), height=MEMORY_HEIGHT)
        # Below the latency chart, the budget bar: it starts at the page's
        # left padding with the used part, 12 px high, on the chart grey.
        bar = [y for y in range(row_top(len(CHILDREN)), MEMORY_HEIGHT) if rows[y][BAR_X0 + 1] == USED]
        self.assertTrue(bar, 'no budget bar drawn')
        self.assertEqual(bar, list(range(bar[0], bar[0] + 12)), 'the bar is not one 12 px band')
        y = bar[0] + 6
        self.assertEqual(rows[y][BAR_X0 - 2], (255, 255, 255))
        self.assertEqual(rows[y][BAR_X0 + 512 - 1] in (CHART_BG, USED, RESERVED), True, rows[y][BAR_X0 + 511])
        self.assertEqual(rows[y][BAR_X0 + 512 + 2], (255, 255, 255), 'the bar is wider than 512 px')
        # its texts above it: dark pixels in the 32 px of the two lines
        text = crop(rows, BAR_X0, BAR_X0 + 400, bar[0] - 40, bar[0] - 8)
        self.assertTrue(any(sum(px) < 300 for line in text for px in line), 'no text above the bar')


MEMORY_HEIGHT = 640              # the page with its memory part
BAR_X0 = 16                      # the budget bar's left edge (main's padding)
USED = (100, 181, 246)           # .used
RESERVED = (255, 183, 77)        # .reserved

MIB = 1 << 20
DOT = ' \u00b7 '
# What the renderer reports of its memory admission (common/names.h), one
# datagram as it sends them.
MEMORY_REPORT = '\n'.join([
    'rendervisor_renderer_memory_budget_bytes %d' % (700 * MIB),
    'rendervisor_renderer_memory_used_bytes %d' % (412 * MIB),
    'rendervisor_renderer_memory_available_bytes %d' % (288 * MIB),
    'rendervisor_renderer_memory_reserved_bytes %d' % (150 * MIB),
    'rendervisor_renderer_render_memory_estimate_bytes %d' % (120 * MIB),
    'rendervisor_renderer_memory_bound{by="cgroup"} 1',
    'rendervisor_renderer_memory_bound{by="host"} 0',
    'rendervisor_renderer_memory_bound{by="config"} 0',
    'rendervisor_renderer_queued_renders{waiting_for="memory"} 2',
    'rendervisor_renderer_queued_renders{waiting_for="browser"} 1',
    'rendervisor_renderer_memory_waits_total 17',
    'rendervisor_renderer_memory_retries_total 3',
]) + '\n'


def send_ingest(path, text):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(text.encode(), path)
    finally:
        s.close()


class MemoryPartTest(unittest.TestCase):
    """The page's "Memory" part, from real ingest datagrams sent to the real
    exporter under the real supervisor. Its browsers and renderer are
    sleeps, so no one else reports memory figures while the test does."""

    @classmethod
    def setUpClass(cls):
        cls.eport = free_port()
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=sh('exec sleep 1000'),
                             renderer=sh('exec sleep 1000'), browser_count=1, sample_interval='500ms',
                             collect=False, extra={'exporter': {'listen': '127.0.0.1:%d' % cls.eport}})
        cls.rv.start()
        cls.ingest = os.path.join(cls.rv.run_dir, 'ingest.sock')
        try:
            wait_until(lambda: http_get(cls.eport, '/status.json', timeout=2)[0] == 200, 10,
                       what='the exporter serving /status.json')
        except Exception:
            print(cls.rv.log_text()[-6000:])
            cls.rv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rv.stop()

    def status(self):
        code, _, body = http_get(self.eport, '/status.json', timeout=10)
        self.assertEqual(code, 200, body[:300])
        return json.loads(body)

    def page(self):
        code, _, body = http_get(self.eport, '/?refresh=0', timeout=10)
        self.assertEqual(code, 200, body[:300])
        return body.decode()

    def cell(self, page, key):
        m = re.search(r'data-cell=%s>([^<]*)<' % key, page[page.index('<section id=memory'):])
        self.assertIsNotNone(m, key)
        return m.group(1)

    def test_memory_part(self):
        # Before the budget is reported: no memory part, even with other
        # memory figures in.
        send_ingest(self.ingest, 'rendervisor_renderer_memory_available_bytes %d\n' % (288 * MIB))
        wait_until(lambda: 'rendervisor_renderer_memory_available_bytes %d' % (288 * MIB)
                   in http_get(self.eport, '/metrics')[2].decode(), 5, what='available bytes taken')
        self.assertIsNone(self.status()['memory'])
        self.assertNotIn('id=memory', self.page())

        send_ingest(self.ingest, MEMORY_REPORT)
        mem = wait_until(lambda: self.status()['memory'], 5, interval=0.05, what='the memory part in status.json')
        self.assertEqual(mem['budget_bytes'], 700 * MIB)
        self.assertEqual(mem['used_bytes'], 412 * MIB)
        self.assertEqual(mem['reserved_bytes'], 150 * MIB)
        self.assertEqual(mem['available_bytes'], 288 * MIB)
        self.assertEqual(mem['render_estimate_bytes'], 120 * MIB)
        self.assertEqual(mem['bound'], 'cgroup')
        self.assertEqual(mem['queued'], {'memory': 2, 'browser': 1})
        self.assertEqual((mem['waits_total'], mem['retries_total']), (17, 3))
        view = mem['view']
        self.assertEqual(view['class'], 'warn')
        self.assertEqual(view['cells']['memory'],
                         'used 412 MiB of 700 MiB (cgroup)' + DOT + '150 MiB reserved' + DOT + '2 waiting for memory')
        self.assertEqual(view['cells']['memory_detail'],
                         '288 MiB available' + DOT + 'about 120 MiB a render' + DOT + '1 waiting for a browser' + DOT
                         + '17 waited for memory' + DOT + '3 retried')

        # The served page carries the very same texts and bar.
        page = self.page()
        self.assertIn('<section id=memory class=warn><h2>Memory</h2>', page)
        self.assertEqual(self.cell(page, 'memory'), view['cells']['memory'])
        self.assertEqual(self.cell(page, 'memory_detail'), view['cells']['memory_detail'])
        for key in ('used', 'reserved'):
            self.assertTrue(view['chart'][key], key)
            self.assertIn('data-chart=%s d="%s"' % (key, view['chart'][key]), page)

        # A bound outside names_bounds is refused and changes nothing; the
        # queue drains, the host binds.
        send_ingest(self.ingest, 'rendervisor_renderer_memory_bound{by="swap"} 1\n'
                                 'rendervisor_renderer_queued_renders{waiting_for="memory"} 0\n'
                                 'rendervisor_renderer_memory_bound{by="cgroup"} 0\n'
                                 'rendervisor_renderer_memory_bound{by="host"} 1\n')
        mem = wait_until(lambda: (lambda m: m if m['queued']['memory'] == 0 else None)(self.status()['memory']),
                         5, interval=0.05, what='the drained queue shown')
        self.assertEqual(mem['bound'], 'host')
        self.assertEqual(mem['view']['class'], 'ok')
        self.assertIn('(host)' + DOT, mem['view']['cells']['memory'])
        metrics = http_get(self.eport, '/metrics')[2].decode()
        self.assertNotIn('swap', metrics)
        self.assertIn('<section id=memory class=ok>', self.page())


if __name__ == '__main__':
    unittest.main()
