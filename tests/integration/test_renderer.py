"""The real renderer with the real supervisor, exporter and Chromium (the
default browser command of etc/rendervisor.ini), rendering fixture pages
served on localhost that behave like Grafana: an old-style panel that
reports window.panelsRendered late, and a scenes page whose running-query
count falls to 0 late. Asserts on the PNG itself and on the HTTP API."""
import configparser
import http.client
import http.server
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, wait_until  # noqa: E402

EXPORTER = os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter')
RENDERER = os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer')
SOURCE = os.environ.get('RV_SOURCE', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
TOKEN = 'test-token-1234'

# Painted late, after the page's load event: a render that does not wait
# for Grafana's signal captures white instead.
PANELS_PAGE = b"""<!doctype html><html><head><style>
html,body{margin:0;background:#fff}
.panel-solo{position:absolute;left:0;top:0;width:100px;height:100px}
</style></head><body><div class="panel-solo" id="p"></div><script>
setTimeout(function(){
  document.getElementById('p').style.background='rgb(255,0,0)';
  requestAnimationFrame(function(){ window.panelsRendered = 1; });
}, 300);
</script></body></html>"""

SCENES_PAGE = b"""<!doctype html><html><head><style>
html,body{margin:0;background:#fff}
#q{position:absolute;left:20px;top:20px;width:120px;height:60px}
</style></head><body><div id="q"></div><script>
window.__grafanaSceneContext = {};
window.__grafanaRunningQueryCount = 2;
setTimeout(function(){ window.__grafanaRunningQueryCount = 1; }, 150);
setTimeout(function(){
  document.getElementById('q').style.background='rgb(0,0,255)';
  requestAnimationFrame(function(){ window.__grafanaRunningQueryCount = 0; });
}, 400);
</script></body></html>"""


def read_png(data):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        elif kind == b'IEND':
            break
    width, height, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
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
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_range(count):
    """A base port with count free ports after it, from a quiet range."""
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
    raise RuntimeError('no free port range')


def default_browser_command():
    """The [browsers] command of etc/rendervisor.ini, written back as
    indented continuation lines (inih reads at most 199 characters a line)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(';',))
    cp.read(os.path.join(SOURCE, 'etc', 'rendervisor.ini'))
    words = cp['browsers']['command'].split()
    lines, line = [], ''
    for w in words:
        if line and len(line) + 1 + len(w) > 100:
            lines.append(line)
            line = w
        else:
            line = (line + ' ' + w).strip()
    lines.append(line)
    return '\n    '.join(lines)


class Pages(http.server.BaseHTTPRequestHandler):
    pages = {'/panels.html': PANELS_PAGE, '/scenes.html': SCENES_PAGE}

    def do_GET(self):
        body = self.pages.get(urllib.parse.urlsplit(self.path).path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class RendererTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Pages)
        cls.web.daemon_threads = True
        threading.Thread(target=cls.web.serve_forever, daemon=True).start()
        cls.site = 'http://127.0.0.1:%d' % cls.web.server_address[1]
        cls.port = free_port()
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                             renderer=os.path.abspath(RENDERER), browser_count=2,
                             sample_interval='500ms', stop_timeout='3s', collect=False,
                             extra={'renderer': {'listen': '127.0.0.1:%d' % cls.port, 'auth_token': TOKEN,
                                                 'concurrency': '2'},
                                    'browsers': {'port_base': str(free_port_range(2))}})
        cls.rv.start()
        try:
            wait_until(lambda: cls.get('/healthz')[0] == 200, 60, interval=0.1,
                       what='the renderer connected to a browser')
        except Exception:
            print(cls.rv.log_text())
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()

    @classmethod
    def get(cls, path, headers=None, timeout=60):
        try:
            c = http.client.HTTPConnection('127.0.0.1', cls.port, timeout=timeout)
            c.request('GET', path, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            out = r.status, dict(r.getheaders()), data
            c.close()
            return out
        except OSError:
            return 0, {}, b''

    def render(self, page, **params):
        q = dict(url=self.site + page, **params)
        status, headers, body = self.get('/render?' + urllib.parse.urlencode(q), {'X-Auth-Token': TOKEN})
        if status != 200:
            print(self.rv.log_text()[-4000:])
        self.assertEqual(status, 200, body[:500])
        self.assertEqual(headers['Content-Type'], 'image/png')
        return read_png(body)

    # ---- pictures ------------------------------------------------------------
    def test_panels_page_waits_for_panels_rendered(self):
        w, h, rows = self.render('/panels.html', width=300, height=200, deviceScaleFactor=2)
        self.assertEqual((w, h), (600, 400))
        self.assertEqual(rows[100][100], (255, 0, 0))   # CSS (50, 50): painted after 300 ms
        self.assertEqual(rows[190][190], (255, 0, 0))   # CSS (95, 95)
        self.assertEqual(rows[300][500], (255, 255, 255))

    def test_scenes_page_waits_for_queries(self):
        w, h, rows = self.render('/scenes.html', width=400, height=300, deviceScaleFactor=1)
        self.assertEqual((w, h), (400, 300))
        self.assertEqual(rows[50][80], (0, 0, 255))
        self.assertEqual(rows[10][10], (255, 255, 255))

    def test_fractional_scale(self):
        w, h, rows = self.render('/panels.html', width=200, height=100, deviceScaleFactor=1.5)
        self.assertEqual((w, h), (300, 150))
        self.assertEqual(rows[75][75], (255, 0, 0))

    def test_concurrent_renders(self):
        results = []

        def one():
            q = urllib.parse.urlencode(dict(url=self.site + '/scenes.html', width=200, height=100))
            results.append(self.get('/render?' + q, {'X-Auth-Token': TOKEN})[0])
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 4)

    # ---- errors -----------------------------------------------------------------
    def test_no_token_is_401(self):
        q = urllib.parse.urlencode(dict(url=self.site + '/panels.html'))
        self.assertEqual(self.get('/render?' + q)[0], 401)
        self.assertEqual(self.get('/render?' + q, {'X-Auth-Token': 'wrong'})[0], 401)

    def test_bad_parameter_is_400_naming_it(self):
        q = urllib.parse.urlencode(dict(url=self.site + '/panels.html', width='abc'))
        status, headers, body = self.get('/render?' + q, {'X-Auth-Token': TOKEN})
        self.assertEqual(status, 400)
        self.assertTrue(json.loads(body)['error'].startswith('width:'), body)

    def test_file_url_is_403(self):
        q = urllib.parse.urlencode(dict(url='file:///etc/passwd'))
        status, headers, body = self.get('/render?' + q, {'X-Auth-Token': TOKEN})
        self.assertEqual(status, 403)
        self.assertIn('url', json.loads(body)['error'])

    def test_unknown_path_is_404(self):
        self.assertEqual(self.get('/nothing')[0], 404)

    # ---- the other routes -----------------------------------------------------
    def test_version(self):
        status, headers, body = self.get('/render/version')
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {'version': '0.1.0'})

    def test_root_and_healthz(self):
        status, _, body = self.get('/')
        self.assertEqual(status, 200)
        self.assertIn(b'rendervisor', body)
        self.assertEqual(self.get('/healthz')[0], 200)

    def test_metrics_are_proxied_with_step_timings(self):
        self.render('/panels.html', width=100, height=100)

        def metrics():
            status, headers, body = self.get('/metrics')
            text = body.decode()
            ok = (status == 200 and
                  'grafana_image_renderer_step_duration_seconds_count{step="navigate"}' in text and
                  'grafana_image_renderer_service_http_request_duration_seconds_count{status_code="200"}'
                  in text)
            return text if ok else None
        text = wait_until(metrics, 10, interval=0.1, what='step timings in the proxied /metrics')
        self.assertIn('grafana_image_renderer_browser_info{version="Chrome/', text)
        for step in ('launch', 'newPage', 'prepare', 'panelsRendered', 'screenshot'):
            self.assertIn('grafana_image_renderer_step_duration_seconds_count{step="%s"}' % step, text)


    def test_zzz_renderer_and_exporter_stop_cleanly(self):
        # last: SIGTERM to the supervisor stops every child with SIGTERM; the
        # renderer and the exporter must exit 0 (a leak under ASan makes it 23)
        rv = self.rv
        rv.signal(signal.SIGTERM)
        self.assertEqual(rv.proc.wait(20), 0)
        for child in ('renderer', 'exporter'):
            exits = rv.records('child exited', child=child)
            self.assertTrue(exits, rv.log_text()[-3000:])
            self.assertEqual(exits[-1][1]['code'], '0', rv.log_text()[-3000:])

if __name__ == '__main__':
    unittest.main()
