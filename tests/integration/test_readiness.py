"""Readiness against pages that load the way Grafana's frontend does (issue 11).

The real supervisor, renderer and Chromium render the fixture corpus in
tests/integration/pages/grafana/ (app.js simulates Grafana's loading,
docs/grafana-signals.md is what it follows), served by a test server that
answers the page's API calls after the delays the page asks for. Each case
is sent to /render exactly as Grafana's pkg/services/rendering/http_mode.go
sends it, and the picture must show EVERY panel drawn: PNG pixels at each
panel's place, PDFs rasterised with pdftoppm and searched for each panel's
colour. A 200 with a panel still loading is an early picture.

All cases share one stack and run concurrently (4 at a time), RV_READINESS_RUNS
times (default 1); the pictures are checked after every render is done, so
decoding does not take CPU from the pages. One summary line per run says which
cases gave early pictures, 408s or anything else."""
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, free_port, free_port_range, http_get, wait_until  # noqa: E402
from test_renderer import EXPORTER, RENDERER, default_browser_command, read_png  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402

TOKEN = 'readiness-token'
RUNS = int(os.environ.get('RV_READINESS_RUNS', '1'))
PARALLEL = 4
TIMEOUT_S = 15            # the `timeout` Grafana sends with every case
WIDTH, HEIGHT = 800, 600

# What each panel paints once its data is drawn (app.js has the same list).
COLOURS = [(0xe0, 0x2f, 0x44), (0x32, 0x74, 0xd9), (0x56, 0xa6, 0x4b), (0xff, 0x98, 0x30),
           (0xa3, 0x52, 0xcc), (0xf2, 0xcc, 0x0c), (0x00, 0xb8, 0xd9), (0xff, 0x6f, 0xb7)]


def case(name, query, n=2, below=-1, kind='png', page='dashboard', route='d'):
    return {'name': name, 'query': query, 'n': n, 'below': below, 'kind': kind, 'page': page, 'route': route}


CASES = [
    # a query variable finishes; the panels' datasource resolves N ms later
    case('gap-0', 'vars=1&ds=0'),
    case('gap-5', 'vars=1&ds=5'),
    case('gap-30', 'vars=1&ds=30'),
    case('gap-150', 'vars=1&ds=150'),
    case('gap-400', 'vars=1&ds=400'),
    case('gap-150-fetch', 'vars=1&ds=150&dskind=fetch'),
    # the same with the load event held back (an app plugin preload) until the
    # variable query runs, so a renderer is already polling when the gap comes
    case('gap-5-late-load', 'vars=1&var_ms=300&load_ms=200&ds=5'),
    case('gap-30-late-load', 'vars=1&var_ms=300&load_ms=200&ds=30'),
    # CPU before the scene context, as one task or yielding every 10 ms
    case('boot-80', 'boot=80'),
    case('boot-80-chunks', 'boot=80&chunks=1'),
    case('boot-200', 'boot=200'),
    case('boot-200-chunks', 'boot=200&chunks=1'),
    case('boot-600', 'boot=600'),
    case('boot-600-chunks', 'boot=600&chunks=1'),
    case('boot-200-transform', 'boot=200&cpu_at=transform'),
    case('boot-200-transform-chunks', 'boot=200&chunks=1&cpu_at=transform'),
    # the count is already 0 when the context appears; queries start later
    case('count0-0', 'pre=1&ds=0'),
    case('count0-30', 'pre=1&ds=30'),
    case('count0-150', 'pre=1&ds=150'),
    case('anno-then-150', 'anno=1&anno_ms=10&ds=150'),
    # no query at all: text panels, the count never set
    case('noquery', 'text=1'),
    # legacy dashboards: panelsRendered
    case('legacy-one-late', 'mode=legacy&n=4&q3=1200', n=4),
    case('legacy-rerender', 'mode=legacy&n=3&q2=800&rerender=1', n=3),
    # lazy rows below the fold
    case('lazy-fullpage', 'lazy=1&n=4&below=2', n=4, below=2, kind='png-full'),
    case('lazy-pdf', 'lazy=1&n=4&below=2', n=4, below=2, kind='pdf'),
    # terminal error, streaming that never ends
    case('error', 'err=1'),
    case('stream-sse', 'stream=1&stream_kind=sse'),
    case('stream-fetch', 'stream=1&stream_kind=fetch'),
    case('stream-ws', 'stream=1&stream_kind=ws'),
    # the newest Grafana: the binding protocol on, a plugin holding readiness
    case('binding', 'binding=1&hold=1'),
    # the same on a report route, where Grafana sends its message and the
    # renderer waits for it
    case('binding-report', 'binding=1&hold=1', route='d-report'),
    # not Grafana
    case('plain', 'delay=300', n=1, page='plain'),
    case('plain-timer', 'wait=150&delay=100', n=1, page='plain'),
    # different query durations, one slow
    case('slow', 'n=4&q1=250&q2=1500&q3=600', n=4),
]


# ---- what a picture must show --------------------------------------------------

def panel_box(i, n_below):
    """(x, y, w) of panel i in CSS px, as app.js lays it out at WIDTH."""
    colw = (WIDTH - 24) // 2
    row = i // 2
    if n_below >= 0 and i >= n_below:
        y = 8 + 1400 + (row - n_below // 2) * 208
    else:
        y = 8 + row * 208
    x = 8 if i % 2 == 0 else 16 + colw
    return x, y, colw


def close(a, b, tol):
    return all(abs(p - q) <= tol for p, q in zip(a, b))


def png_problems(c, body):
    """What is wrong with a PNG of case c: a list of panels not drawn."""
    w, h, rows = read_png(body)
    bad = []
    if c['page'] == 'plain':
        if not close(rows[108][202], COLOURS[0], 2):
            bad.append('content not drawn (%s at 202,108)' % (rows[108][202],))
        return bad
    for i in range(c['n']):
        x, y, colw = panel_box(i, c['below'])
        points = [(x + colw // 2, y + 116), (x + 30, y + 60), (x + colw - 30, y + 170)]
        for px, py in points:
            if py >= h or px >= w:
                bad.append('panel %d outside the %dx%d picture' % (i + 1, w, h))
                break
            if not close(rows[py][px], COLOURS[i], 2):
                bad.append('panel %d not drawn (%s at %d,%d)' % (i + 1, rows[py][px], px, py))
                break
    return bad


def pdf_problems(c, body):
    """Rasterise the PDF at 48 dpi and look for each panel's colour: at 48 dpi
    a drawn panel is thousands of pixels; a panel still loading has none."""
    if not body.startswith(b'%PDF-'):
        return ['not a PDF']
    with tempfile.TemporaryDirectory(prefix='rvpdf') as tmp:
        src = os.path.join(tmp, 'in.pdf')
        with open(src, 'wb') as f:
            f.write(body)
        subprocess.run(['pdftoppm', '-png', '-r', '48', src, os.path.join(tmp, 'page')], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        near = {}    # every colour within 6 of a panel's, to that panel
        for i in range(c['n']):
            r, g, b = COLOURS[i]
            for dr in range(-6, 7):
                for dg in range(-6, 7):
                    for db in range(-6, 7):
                        near[(r + dr, g + dg, b + db)] = i
        counts = [0] * c['n']
        for name in sorted(os.listdir(tmp)):
            if not name.endswith('.png'):
                continue
            with open(os.path.join(tmp, name), 'rb') as f:
                _, _, rows = read_png(f.read())
            for row in rows:
                for px in row:
                    i = near.get(px)
                    if i is not None:
                        counts[i] += 1
    return ['panel %d not drawn (%d pixels of its colour)' % (i + 1, k) for i, k in enumerate(counts) if k < 2000]


# ---- the runs ------------------------------------------------------------------

class ReadinessTest(unittest.TestCase):
    results = {}     # case name -> [(status, headers, body, seconds)], one per run
    verdicts = {}    # case name -> [problems of each run]

    @classmethod
    def setUpClass(cls):
        Site.stopping.clear()
        cls.web = SiteServer(('127.0.0.1', 0), Site)
        threading.Thread(target=cls.web.serve_forever, daemon=True).start()
        cls.site_port = cls.web.server_address[1]
        cls.port = free_port()
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                             renderer=os.path.abspath(RENDERER), browser_count=2,
                             sample_interval='500ms', stop_timeout='3s', collect=False,
                             extra={'renderer': {'listen': '127.0.0.1:%d' % cls.port, 'auth_token': TOKEN},
                                    'browsers': {'port_base': str(free_port_range(2))}})
        cls.rv.start()
        try:
            wait_until(lambda: b'2 of 2' in http_get(cls.port, '/healthz')[2], 60, interval=0.1,
                       what='the renderer connected to both browsers')
            for run in range(RUNS):
                cls.run_all(run)
        except Exception:
            print(cls.rv.log_text()[-6000:])
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()

    @classmethod
    def page_url(cls, c):
        base = 'http://127.0.0.1:%d' % cls.site_port
        if c['page'] == 'plain':
            return '%s/plain.html?%s' % (base, c['query'])
        # a dashboard path as Grafana builds it, with &render=1 appended
        return '%s/%s/fx-%s/fixture?orgId=1&from=now-6h&to=now&kiosk&%s&render=1' % (
            base, c['route'], c['name'], c['query'])

    @classmethod
    def render(cls, c):
        """One render, its query built as http_mode.go builds it: the same
        keys, deviceScaleFactor as %f, url.Values.Encode's sorted order."""
        params = {'url': cls.page_url(c), 'renderKey': uuid.uuid4().hex, 'width': str(WIDTH),
                  'height': str(-1 if c['kind'] == 'png-full' else HEIGHT), 'domain': '127.0.0.1',
                  'timezone': 'Europe/Paris', 'encoding': 'pdf' if c['kind'] == 'pdf' else 'png',
                  'timeout': str(TIMEOUT_S), 'deviceScaleFactor': '%f' % 1.0}
        query = urllib.parse.urlencode(sorted(params.items()))
        headers = {'X-Auth-Token': TOKEN, 'User-Agent': 'Grafana/11.3.0'}
        t0 = time.monotonic()
        status, rheaders, body = http_get(cls.port, '/render?' + query, headers, timeout=TIMEOUT_S + 15)
        return status, rheaders, body, time.monotonic() - t0

    @classmethod
    def run_all(cls, run):
        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = {c['name']: pool.submit(cls.render, c) for c in CASES}
            for name, fut in futures.items():
                cls.results.setdefault(name, []).append(fut.result())
        early, timeouts, other = [], [], []
        for c in CASES:
            status, headers, body, took = cls.results[c['name']][run]
            problems = []
            if status != 200:
                problems.append('status %d: %s' % (status, body[:200]))
                (timeouts if status == 408 else other).append(c['name'])
            else:
                try:
                    problems = (pdf_problems if c['kind'] == 'pdf' else png_problems)(c, body)
                except Exception as e:  # noqa: BLE001 - a picture that cannot be read is a failure
                    problems = ['unreadable answer: %r' % e]
                    other.append(c['name'])
                else:
                    if problems:
                        early.append(c['name'])
            cls.verdicts.setdefault(c['name'], []).append(problems)
        print('\nreadiness run %d/%d: %d cases: %d early pictures %s, %d x 408 %s, %d other %s'
              % (run + 1, RUNS, len(CASES), len(early), early, len(timeouts), timeouts, len(other), other),
              flush=True)

    def test_the_report_route_waited_for_grafanas_message(self):
        # binding-report is the only page with the render binding on a report
        # route: in each run its request line says the page was taken on
        # Grafana's message (page=binding) after waiting for it.
        lines = [line for line in self.rv.log_text().splitlines()
                 if 'msg="render request"' in line and 'page=binding' in line]
        self.assertEqual(len(lines), RUNS, lines)
        self.assertTrue(all('wait_binding_ms=' in line for line in lines), lines)

    def check(self, name):
        for run, problems in enumerate(self.verdicts[name]):
            took = self.results[name][run][3]
            self.assertEqual(problems, [], 'run %d (%.1f s): %s' % (run + 1, took, '; '.join(problems)))


def _add_case(c):
    def test(self):
        self.check(c['name'])
    test.__doc__ = '%s: %s (%s)' % (c['name'], c['query'], c['kind'])
    setattr(ReadinessTest, 'test_' + c['name'].replace('-', '_'), test)


for _c in CASES:
    _add_case(_c)


if __name__ == '__main__':
    unittest.main()
