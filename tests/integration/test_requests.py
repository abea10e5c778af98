"""[renderer] allowed_hosts on every request of the page (issue 13), with the
real supervisor, renderer, exporter and Chromium. A dashboard-like page on
a listed host (127.0.0.1:P1) reaches for a host that is not listed
(127.0.0.2:P2, a server of this test that records every request it gets):
an image, an image whose URL on the listed host redirects there, an
iframe, fetch(), a WebSocket, a dedicated worker's fetch(), and an iframe
on another listed host (localhost:P1, another site: with
--site-per-process a frame of its own process) that loads an image and
fetch()es from it too. The other server must receive nothing,
the render must answer 200, the picture shows what each attempt became
(blue where the page saw a refusal, red where something got through) and
/metrics and the log count the refusals. With no list, a page that loads
http://169.254.169.254/ has it refused as link_local."""
import http.server
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, free_port, free_port_range, http_get, serve, wait_until  # noqa: E402
from test_renderer import EXPORTER, RENDERER, TOKEN, default_browser_command, read_png  # noqa: E402

GREEN, RED, BLUE, WHITE = (0, 255, 0), (255, 0, 0), (0, 0, 255), (255, 255, 255)

# Each 50x50 cell at (x, 0) starts white; the page paints it blue when the
# attempt failed, red when it worked. The first cell is the page's own
# (green, painted without any request), the last a fetch() of the page's
# own host, which must still work (green).
PAGE = """<!doctype html><html><head><style>
html,body{margin:0;background:#fff}
.c{position:absolute;top:0;width:50px;height:50px}
img{position:absolute;top:60px;width:50px;height:50px}
iframe{position:absolute;border:0}
</style></head><body>
<div class="c" id="own" style="left:0"></div>
<div class="c" id="img" style="left:50px"></div>
<div class="c" id="redir" style="left:100px"></div>
<div class="c" id="fetch" style="left:150px"></div>
<div class="c" id="ws" style="left:200px"></div>
<div class="c" id="child" style="left:250px"></div>
<div class="c" id="same" style="left:300px"></div>
<div class="c" id="worker" style="left:350px"></div>
<iframe id="other" src="%(other)s/frame.html" style="left:0;top:120px;width:100px;height:50px"></iframe>
<iframe id="sub" src="%(child)s/child.html" style="left:100px;top:120px;width:100px;height:50px"></iframe>
<script>
var left = 7;
function paint(id, ok) {
  document.getElementById(id).style.background = ok ? 'rgb(255,0,0)' : 'rgb(0,0,255)';
  if (--left === 0) requestAnimationFrame(function(){ window.panelsRendered = 1; });
}
document.getElementById('own').style.background = 'rgb(0,255,0)';
function image(id, src) {
  var i = new Image();
  i.onload = function(){ paint(id, true); };
  i.onerror = function(){ paint(id, false); };
  i.src = src;
}
image('img', '%(other)s/pixel.png?img');
image('redir', '/redirect?to=' + encodeURIComponent('%(other)s/pixel.png?redirect'));
fetch('%(other)s/data?fetch').then(function(){ paint('fetch', true); }, function(){ paint('fetch', false); });
try {
  var ws = new WebSocket('%(other_ws)s/ws'), done = false;
  ws.onopen = function(){ if (!done) { done = true; paint('ws', true); } };
  ws.onerror = ws.onclose = function(){ if (!done) { done = true; paint('ws', false); } };
} catch (e) { paint('ws', false); }
window.addEventListener('message', function(e){ paint('child', e.data === 'got-through'); });
var worker = new Worker(URL.createObjectURL(new Blob(["fetch('%(other)s/data?worker')" +
  ".then(function(){ postMessage(true); }, function(){ postMessage(false); });"])));
worker.onmessage = function(e){ paint('worker', e.data); };
fetch('/data?same').then(function(r){ return r.text(); }).then(function(t){
  document.getElementById('same').style.background = t === 'own' ? 'rgb(0,255,0)' : 'rgb(255,0,0)';
  if (--left === 0) requestAnimationFrame(function(){ window.panelsRendered = 1; });
}, function(){ paint('same', true); });
</script></body></html>"""

# On another listed host, so in a process of its own: green when it runs,
# then it tries the other host twice and tells its parent what happened.
CHILD = """<!doctype html><html><body style="margin:0;background:rgb(0,255,0)"><script>
var i = new Image(), n = 2, through = false;
function one(ok) { through = through || ok; if (--n === 0) parent.postMessage(through ? 'got-through' : 'refused', '*'); }
i.onload = function(){ one(true); };
i.onerror = function(){ one(false); };
i.src = '%(other)s/pixel.png?child-img';
fetch('%(other)s/data?child-fetch').then(function(){ one(true); }, function(){ one(false); });
</script></body></html>"""

METADATA = """<!doctype html><html><head><style>
html,body{margin:0;background:#fff} .c{position:absolute;top:0;left:0;width:50px;height:50px}
</style></head><body><div class="c" id="c"></div><script>
var left = 2;
function done(ok) {
  if (ok) document.getElementById('c').style.background = 'rgb(255,0,0)';
  if (--left === 0) { if (!ok) document.getElementById('c').style.background = 'rgb(0,0,255)';
                      requestAnimationFrame(function(){ window.panelsRendered = 1; }); }
}
var i = new Image();
i.onload = function(){ done(true); };
i.onerror = function(){ done(false); };
i.src = 'http://169.254.169.254/latest/meta-data/?img';
fetch('http://169.254.169.254/latest/meta-data/').then(function(){ done(true); }, function(){ done(false); });
</script></body></html>"""

# A 1x1 red PNG.
PIXEL = bytes.fromhex('89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de'
                      '0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082')


class Site(http.server.BaseHTTPRequestHandler):
    """The listed host: the pages, a redirect, its own data."""
    vars = {}

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == '/redirect':
            to = urllib.parse.parse_qs(u.query)['to'][0]
            self.send_response(302)
            self.send_header('Location', to)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        bodies = {'/page.html': PAGE % self.vars, '/child.html': CHILD % self.vars,
                  '/metadata.html': METADATA, '/data': 'own'}
        body = bodies.get(u.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain' if u.path == '/data' else 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


class Other(http.server.BaseHTTPRequestHandler):
    """The host that is not listed: answers everything, records everything
    (WebSocket handshakes included, which it accepts)."""
    seen = []
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            self.seen.append(self.path)
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            import base64
            import hashlib
            key = self.headers['Sec-WebSocket-Key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
            self.send_response(101)
            self.send_header('Upgrade', 'websocket')
            self.send_header('Connection', 'Upgrade')
            self.send_header('Sec-WebSocket-Accept', base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
            self.end_headers()
            time.sleep(1)
            return
        body = PIXEL if self.path.startswith('/pixel.png') else b'<body style="background:rgb(255,0,0)">'
        self.send_response(200)
        self.send_header('Content-Type', 'image/png' if body is PIXEL else 'text/html')
        self.send_header('Access-Control-Allow-Origin', '*')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class RequestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = serve(('127.0.0.1', 0), Site)
        p1 = cls.site.server_address[1]
        cls.other = serve(('127.0.0.2', 0), Other)
        p2 = cls.other.server_address[1]
        Site.vars = {'other': 'http://127.0.0.2:%d' % p2, 'other_ws': 'ws://127.0.0.2:%d' % p2,
                     'child': 'http://localhost:%d' % p1}
        cls.p1 = p1
        cls.p2 = p2
        cls.rvs = []

    @classmethod
    def tearDownClass(cls):
        for rv in cls.rvs:
            rv.stop()
        for s in (cls.site, cls.other):
            s.shutdown()
            s.server_close()

    def start(self, renderer, browsers=None):
        port = free_port()
        settings = {'listen': '127.0.0.1:%d' % port, 'auth_token': TOKEN, 'concurrency': '2'}
        settings.update(renderer)
        rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=browsers or default_browser_command(),
                         renderer=os.path.abspath(RENDERER), browser_count=1,
                         sample_interval='500ms', stop_timeout='3s', collect=False,
                         extra={'renderer': settings, 'browsers': {'port_base': str(free_port_range(1))}})
        self.rvs.append(rv)
        rv.start()
        wait_until(lambda: http_get(port, '/healthz')[0] == 200, 60, interval=0.1,
                   what='the renderer connected to its browser')
        return rv, port

    def render(self, port, url):
        q = urllib.parse.urlencode(dict(url=url, width=400, height=200, timeout=20))
        return http_get(port, '/render?' + q, {'X-Auth-Token': TOKEN}, 60)

    def metric(self, port, reason):
        line = 'rendervisor_renderer_requests_refused_total{reason="%s"}' % reason
        status, _, body = http_get(port, '/metrics')
        if status != 200:
            return None
        for l in body.decode().splitlines():
            name, _, value = l.rpartition(' ')
            if name == line:
                return float(value)
        return None

    def refused_lines(self, rv):
        return [f for _, f in rv.child_records('renderer', 'render refused requests')]

    def test_a_listed_page_reaches_no_other_host(self):
        self.listed_page(default_browser_command())

    def test_frames_in_processes_of_their_own_are_checked_too(self):
        # Chromium's headless shell keeps a cross-site iframe in its page's
        # process (the page's session pauses its requests; a dedicated
        # worker's too). With --site-per-process the localhost iframe is a
        # target of its own, attached through Target.setAutoAttach: its image
        # and fetch() are refused by its own session's Fetch.enable.
        self.listed_page(default_browser_command() + '\n    --site-per-process')

    def listed_page(self, browsers):
        rv, port = self.start({'allowed_hosts': '127.0.0.1:%d localhost:%d' % (self.p1, self.p1)}, browsers)
        with Other.lock:
            del Other.seen[:]
        status, headers, body = self.render(port, 'http://127.0.0.1:%d/page.html' % self.p1)
        if status != 200:
            print(rv.log_text()[-4000:])
        self.assertEqual(status, 200, body[:300])
        w, h, rows = read_png(body)
        with Other.lock:
            self.assertEqual(Other.seen, [], 'the host that is not listed was asked')
        cells = {name: rows[25][25 + 50 * i] for i, name in
                 enumerate(['own', 'img', 'redir', 'fetch', 'ws', 'child', 'same', 'worker'])}
        self.assertEqual(cells, {'own': GREEN, 'img': BLUE, 'redir': BLUE, 'fetch': BLUE, 'ws': BLUE,
                                 'child': BLUE, 'same': GREEN, 'worker': BLUE})
        # the listed iframe ran (green); the other one drew none of its red
        self.assertEqual(rows[145][150], GREEN)
        self.assertNotEqual(rows[145][50], RED)

        # one line for the render: the refusals by reason, the first host,
        # nothing of a path or query
        lines = wait_until(lambda: self.refused_lines(rv), 5, what='the refusal log line')
        self.assertEqual(len(lines), 1, lines)
        f = lines[0]
        # img, the redirect's second hop, fetch, the WebSocket, the other
        # iframe, the listed iframe's image and fetch, the worker's fetch
        self.assertEqual(int(f['not_allowed']), 8, f)
        self.assertEqual(int(f['refused']), int(f['not_allowed']), f)
        self.assertEqual(f['first_host'], '127.0.0.2:%d' % self.p2)
        self.assertNotIn('pixel', json.dumps(f))
        wait_until(lambda: self.metric(port, 'not_allowed') == 8, 10,
                   what='the refusals in /metrics')
        self.assertEqual(self.metric(port, 'link_local'), 0)

    def test_no_list_still_refuses_link_local(self):
        rv, port = self.start({})
        status, headers, body = self.render(port, 'http://127.0.0.1:%d/metadata.html' % self.p1)
        if status != 200:
            print(rv.log_text()[-4000:])
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(read_png(body)[2][25][25], BLUE)
        lines = wait_until(lambda: self.refused_lines(rv), 5, what='the refusal log line')
        self.assertEqual(int(lines[0]['link_local']), 2, lines)
        self.assertEqual(lines[0]['first_host'], '169.254.169.254')
        wait_until(lambda: self.metric(port, 'link_local') == 2, 10, what='link_local in /metrics')
        # the render's own url too, with no list
        status, _, body = self.render(port, 'http://169.254.169.254/latest/meta-data/')
        self.assertEqual(status, 403, body)
        self.assertIn('link-local', json.loads(body)['error'])
        # and the other host, not listed anywhere, is just another host
        status, _, body = self.render(port, 'http://127.0.0.1:%d/page.html' % self.p1)
        self.assertEqual(status, 200, body[:300])


if __name__ == '__main__':
    unittest.main()
