"""OpenTelemetry tracing ([tracing], docs/operations.md "Tracing"): the real
rendervisor with real Chromium renders Grafana-like pages (grafana_site.py)
while a collector stand-in (an http.server decoding the OTLP/HTTP JSON it
is posted) receives the spans. A render that comes with Grafana's
traceparent: its spans carry the incoming trace id, the render span's
parent is the incoming span, the steps' parent is the render span, and
every request of the page to its own origin carries a traceparent of the
render span (a third-party origin gets none), a POST's body unchanged. No
traceparent: a new root trace. A render that fails (5xx): its span an
error; one refused for its query (4xx): not. A parent that is not
sampled: no spans, the context still passed on. A collector that refuses
connections or never answers: renders still 200, the spans dropped and
logged."""
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, free_port, free_port_range, http_get, wait_until  # noqa: E402
from test_renderer import EXPORTER, RENDERER, default_browser_command, read_png  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402

TOKEN = 'tracing-token'
TIMEOUT_S = 20
STEPS = {'launch', 'newPage', 'prepare', 'navigate', 'panelsRendered', 'dashboardScrolling', 'screenshot',
         'downloadCSV'}


class Collector(http.server.BaseHTTPRequestHandler):
    """OTLP/HTTP's receiving end: every body posted to /v1/traces, decoded.
    With hang set, a request is read and never answered."""
    protocol_version = 'HTTP/1.1'
    bodies = []
    raw = []
    lock = threading.Lock()
    hang = threading.Event()
    release = threading.Event()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        if self.hang.is_set():
            self.release.wait(60)
            self.close_connection = True
            return
        ok = self.path == '/v1/traces' and self.headers.get('Content-Type') == 'application/json'
        if ok:
            with self.lock:
                self.raw.append(body)
                self.bodies.append(json.loads(body))
        out = b'{}' if ok else b'{"error":"not OTLP JSON on /v1/traces"}'
        self.send_response(200 if ok else 400)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    @classmethod
    def spans(cls):
        """Every span received: (resource attributes, span)."""
        out = []
        with cls.lock:
            bodies = list(cls.bodies)
        for b in bodies:
            for rs in b['resourceSpans']:
                res = {a['key']: a['value'] for a in rs['resource']['attributes']}
                for ss in rs['scopeSpans']:
                    for s in ss['spans']:
                        out.append((res, s))
        return out


class RecordingSite(Site):
    """grafana_site, noting what each request carried; /tp.html is a page of
    its own that fetches from its origin and from a third party's."""
    seen = []
    posted = []
    third_party_port = 0

    def note(self):
        self.seen.append({'path': self.path, 'traceparent': self.headers.get('traceparent'),
                          'tracestate': self.headers.get('tracestate'), 'cookie': self.headers.get('Cookie', '')})

    def do_GET(self):
        self.note()
        if urllib.parse.urlsplit(self.path).path == '/tp.html':
            page = ('<!doctype html><html><body style="background:#fff"><div id="c">x</div><script>'
                    'fetch("/api/data?delay=10").then(r => r.json()).then(d => {'
                    ' document.getElementById("c").style.color = d.colour; });'
                    'fetch("http://127.0.0.1:%d/other?x=1", {mode: "no-cors"}).catch(() => 0);'
                    '</script></body></html>' % self.third_party_port)
            self.send(200, 'text/html; charset=utf-8', page)
            return
        if urllib.parse.urlsplit(self.path).path == '/post.html':
            # two POSTs to its own origin, as Grafana's /api/ds/query is
            # (with headers of the page's own): a small JSON body and one of
            # 200 KB (above what Chromium puts in Fetch.requestPaused's
            # postData)
            page = ('<!doctype html><html><body style="background:#fff"><div id="c">x</div><script>'
                    'const post = b => fetch("/echo", {method: "POST", headers: {"Content-Type": '
                    '"application/json", "X-Grafana-Org-Id": "1", "X-Panel-Id": "2"}, body: b})'
                    '.then(r => r.json());'
                    'Promise.all([post(JSON.stringify({queries: [{refId: "A", expr: "up"}]})),'
                    ' post(JSON.stringify({pad: "%s"}))]).then(ds => {'
                    ' document.getElementById("c").style.color = ds[0].colour; });'
                    '</script></body></html>' % ('p' * 200000))
            self.send(200, 'text/html; charset=utf-8', page)
            return
        super().do_GET()

    def do_POST(self):
        self.note()
        if urllib.parse.urlsplit(self.path).path == '/echo':
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
            self.posted.append({'traceparent': self.headers.get('traceparent'), 'body': body,
                                'content_type': self.headers.get('Content-Type'),
                                'org': self.headers.get('X-Grafana-Org-Id'),
                                'panel': self.headers.get('X-Panel-Id'),
                                'referer': self.headers.get('Referer')})
            self.send_json(200, {'colour': 'green', 'length': len(body)})
            return
        super().do_POST()


class ThirdParty(http.server.BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append({'path': self.path, 'traceparent': self.headers.get('traceparent'),
                          'tracestate': self.headers.get('tracestate')})
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', '2')
        self.send_header('Access-Control-Allow-Origin', '*')
        self.end_headers()
        self.wfile.write(b'ok')


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def maps_libcurl(pid):
    with open('/proc/%d/maps' % pid) as f:
        return 'libcurl' in f.read()


class TracingBase(unittest.TestCase):
    @classmethod
    def start_rendervisor(cls, endpoint, **tracing):
        cls.port = free_port()
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                             renderer=os.path.abspath(RENDERER), browser_count=1,
                             sample_interval='500ms', stop_timeout='3s', collect=False,
                             extra={'renderer': {'listen': '127.0.0.1:%d' % cls.port, 'auth_token': TOKEN},
                                    'browsers': {'port_base': str(free_port_range(1))},
                                    'tracing': dict({'endpoint': endpoint} if endpoint else {}, **tracing)})
        cls.rv.start()
        try:
            wait_until(lambda: b'1 of 1' in http_get(cls.port, '/healthz')[2], 60, interval=0.1,
                       what='the renderer connected to its browser')
        except Exception:
            print(cls.rv.log_text()[-6000:])
            cls.rv.stop()
            raise

    @classmethod
    def render(cls, url, headers=None, key=None):
        params = {'url': url, 'renderKey': key or uuid.uuid4().hex, 'width': '400', 'height': '300',
                  'domain': '127.0.0.1', 'timezone': 'UTC', 'encoding': 'png', 'timeout': str(TIMEOUT_S),
                  'deviceScaleFactor': '%f' % 1.0}
        h = {'X-Auth-Token': TOKEN, 'User-Agent': 'Grafana/11.3.0'}
        h.update(headers or {})
        return http_get(cls.port, '/render?' + urllib.parse.urlencode(sorted(params.items())), h,
                        timeout=TIMEOUT_S + 15)


class TracingTest(TracingBase):
    @classmethod
    def setUpClass(cls):
        Site.stopping.clear()
        cls.collector = serve(http.server.ThreadingHTTPServer(('127.0.0.1', 0), Collector))
        cls.third = serve(http.server.ThreadingHTTPServer(('127.0.0.1', 0), ThirdParty))
        RecordingSite.third_party_port = cls.third.server_address[1]
        cls.web = serve(SiteServer(('127.0.0.1', 0), RecordingSite))
        cls.site_port = cls.web.server_address[1]
        cls.start_rendervisor('http://127.0.0.1:%d/v1/traces' % cls.collector.server_address[1],
                              service_name='rv-test')

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        cls.rv.stop()
        for s in (cls.web, cls.collector, cls.third):
            s.shutdown()
            s.server_close()

    def dashboard(self, name):
        return 'http://127.0.0.1:%d/d/fx-%s/fixture?orgId=1&from=now-6h&to=now&kiosk&vars=1&ds=30&render=1' % (
            self.site_port, name)

    def trace_spans(self, trace_id, timeout=15):
        """The spans of trace_id, once its render span is in."""
        def have():
            spans = [(r, s) for r, s in Collector.spans() if s['traceId'] == trace_id]
            return spans if any(s['name'] == 'render' for _, s in spans) else None
        return wait_until(have, timeout, interval=0.1, what='the spans of trace %s' % trace_id)

    def seen_with(self, trace_id):
        return [r for r in list(RecordingSite.seen) if r['traceparent'] and r['traceparent'][3:35] == trace_id]

    def check_render_ok(self, status, body):
        self.assertEqual(status, 200, body[:300])
        w, h, _ = read_png(body)
        self.assertEqual((w, h), (400, 300))

    def test_a_grafana_traceparent_is_the_parent(self):
        trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        key = 'key-' + uuid.uuid4().hex
        status, headers, body = self.render(self.dashboard('traced'), {
            'traceparent': '00-%s-%s-01' % (trace_id, parent), 'tracestate': 'grafana=abc,other=1'}, key=key)
        self.check_render_ok(status, body)
        spans = self.trace_spans(trace_id)
        res, render = [(r, s) for r, s in spans if s['name'] == 'render'][0]
        self.assertEqual(res['service.name'], {'stringValue': 'rv-test'})
        self.assertEqual(render['parentSpanId'], parent)
        self.assertEqual(render['kind'], 2)  # SPAN_KIND_SERVER
        self.assertEqual(render['traceState'], 'grafana=abc,other=1')
        attrs = {a['key']: a['value'] for a in render['attributes']}
        self.assertEqual(attrs['http.response.status_code'], {'intValue': '200'})
        self.assertEqual(attrs['http.route'], {'stringValue': '/render'})
        self.assertEqual(attrs['rendervisor.page.host'], {'stringValue': '127.0.0.1:%d' % self.site_port})
        self.assertEqual(attrs['rendervisor.page.path'], {'stringValue': '/d/fx-traced/fixture'})
        self.assertEqual(attrs['rendervisor.width'], {'intValue': '400'})
        self.assertEqual(attrs['rendervisor.browser'], {'intValue': '0'})
        self.assertLess(int(render['startTimeUnixNano']), int(render['endTimeUnixNano']))
        self.assertLess(abs(int(render['startTimeUnixNano']) / 1e9 - time.time()), 120)
        # a child span per step, inside the render span, in order
        steps = [s for _, s in spans if s['name'] != 'render']
        names = [s['name'] for s in steps]
        self.assertTrue(set(names) <= STEPS, names)
        for want in ('navigate', 'panelsRendered', 'screenshot'):
            self.assertIn(want, names)
        for s in steps:
            self.assertEqual(s['parentSpanId'], render['spanId'])
            self.assertEqual(s['kind'], 1)
            self.assertGreaterEqual(int(s['startTimeUnixNano']), int(render['startTimeUnixNano']))
            self.assertLessEqual(int(s['endTimeUnixNano']), int(render['endTimeUnixNano']))
        # the render key and the page's query are nowhere in what was sent
        with Collector.lock:
            raw = b''.join(Collector.raw)
        self.assertNotIn(key.encode(), raw)
        self.assertNotIn(b'renderKey', raw)
        self.assertNotIn(b'orgId', raw)
        # the page's requests to Grafana carry the render span as their parent
        seen = self.seen_with(trace_id)
        paths = [urllib.parse.urlsplit(r['path']).path for r in seen]
        for want in ('/d/fx-traced/fixture', '/public/build/app.js', '/api/ds/query'):
            self.assertIn(want, paths)
        # the answer names the render span too, for the client to look up
        self.assertEqual(headers.get('traceparent'), '00-%s-%s-01' % (trace_id, render['spanId']))
        for r in seen:
            self.assertEqual(r['traceparent'], '00-%s-%s-01' % (trace_id, render['spanId']))
            self.assertEqual(r['tracestate'], 'grafana=abc,other=1')
        # headers replaced through Fetch keep the cookie the render key is in
        doc = [r for r in seen if urllib.parse.urlsplit(r['path']).path == '/d/fx-traced/fixture'][0]
        self.assertIn('renderKey=' + key, doc['cookie'])

    def test_libcurl_is_loaded(self):
        self.assertTrue(maps_libcurl(self.rv.pid('renderer')))

    def test_no_traceparent_starts_a_new_trace(self):
        before = len(RecordingSite.seen)
        status, _, body = self.render(self.dashboard('root'))
        self.check_render_ok(status, body)
        seen = [r for r in RecordingSite.seen[before:]
                if urllib.parse.urlsplit(r['path']).path == '/d/fx-root/fixture']
        self.assertEqual(len(seen), 1)
        tp = seen[0]['traceparent']
        self.assertRegex(tp, r'^00-[0-9a-f]{32}-[0-9a-f]{16}-01$')
        spans = self.trace_spans(tp[3:35])
        render = [s for _, s in spans if s['name'] == 'render'][0]
        self.assertNotIn('parentSpanId', render)
        self.assertEqual(render['spanId'], tp[36:52])

    def test_a_parent_not_sampled_is_honoured(self):
        trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        status, _, body = self.render(self.dashboard('unsampled'),
                                      {'traceparent': '00-%s-%s-00' % (trace_id, parent)})
        self.check_render_ok(status, body)
        seen = self.seen_with(trace_id)
        self.assertTrue(seen)
        for r in seen:
            self.assertRegex(r['traceparent'], r'^00-%s-[0-9a-f]{16}-00$' % trace_id)
            self.assertNotEqual(r['traceparent'][36:52], parent)
        # a later sampled render's spans arrive; the unsampled one's never do
        later = uuid.uuid4().hex
        self.check_render_ok(*self.render(self.dashboard('after'),
                                          {'traceparent': '00-%s-%s-01' % (later, parent)})[::2])
        self.trace_spans(later)
        self.assertEqual([s for _, s in Collector.spans() if s['traceId'] == trace_id], [])

    def test_a_broken_traceparent_starts_a_new_trace(self):
        bad = '00-%s-%s-01' % ('0' * 32, uuid.uuid4().hex[:16])
        before = len(RecordingSite.seen)
        self.check_render_ok(*self.render(self.dashboard('broken'), {'traceparent': bad})[::2])
        doc = [r for r in RecordingSite.seen[before:]
               if urllib.parse.urlsplit(r['path']).path == '/d/fx-broken/fixture'][0]
        self.assertNotEqual(doc['traceparent'][3:35], '0' * 32)
        render = [s for _, s in self.trace_spans(doc['traceparent'][3:35]) if s['name'] == 'render'][0]
        self.assertNotIn('parentSpanId', render)

    def test_third_party_origins_get_no_traceparent(self):
        trace_id = uuid.uuid4().hex
        url = 'http://127.0.0.1:%d/tp.html' % self.site_port
        self.check_render_ok(*self.render(url, {'traceparent': '00-%s-%s-01' % (trace_id, 'a' * 16)})[::2])
        paths = [urllib.parse.urlsplit(r['path']).path for r in self.seen_with(trace_id)]
        self.assertIn('/tp.html', paths)
        self.assertIn('/api/data', paths)
        wait_until(lambda: any(r['path'].startswith('/other') for r in ThirdParty.seen), 10,
                   what='the page reached the third party')
        for r in ThirdParty.seen:
            self.assertIsNone(r['traceparent'], r)
            self.assertIsNone(r['tracestate'], r)

    def test_a_post_keeps_its_body(self):
        """A POST to the page's origin is continued with its headers
        replaced (Fetch.continueRequest): its body, small or large, and the
        headers the page and the browser gave it go on unchanged."""
        trace_id = uuid.uuid4().hex
        before = len(RecordingSite.posted)
        self.check_render_ok(*self.render('http://127.0.0.1:%d/post.html' % self.site_port,
                                          {'traceparent': '00-%s-%s-01' % (trace_id, 'e' * 16)})[::2])
        wait_until(lambda: len(RecordingSite.posted) >= before + 2, 10, what='both POSTs of the page')
        posted = RecordingSite.posted[before:]
        self.assertEqual(sorted(p['body'] for p in posted),
                         sorted([b'{"queries":[{"refId":"A","expr":"up"}]}',
                                 b'{"pad":"' + b'p' * 200000 + b'"}']))
        for p in posted:
            self.assertEqual(p['content_type'], 'application/json')
            self.assertEqual((p['org'], p['panel']), ('1', '2'))
            self.assertEqual(p['referer'], 'http://127.0.0.1:%d/post.html' % self.site_port)
            self.assertRegex(p['traceparent'] or '', r'^00-%s-[0-9a-f]{16}-01$' % trace_id)

    def test_a_failed_render_span_is_an_error(self):
        trace_id = uuid.uuid4().hex
        # a page that cannot load: the render answers 500
        params = urllib.parse.urlencode({'url': 'http://127.0.0.1:%d/' % closed_port(), 'renderKey': 'k',
                                         'width': '10', 'height': '10', 'timeout': str(TIMEOUT_S)})
        status, headers, body = http_get(self.port, '/render?' + params,
                                         {'X-Auth-Token': TOKEN, 'traceparent': '00-%s-%s-01' % (trace_id, 'c' * 16)},
                                         timeout=TIMEOUT_S + 15)
        self.assertEqual(status, 500, body[:300])
        render = [s for _, s in self.trace_spans(trace_id) if s['name'] == 'render'][0]
        attrs = {a['key']: a['value'] for a in render['attributes']}
        self.assertEqual(attrs['http.response.status_code'], {'intValue': '500'})
        self.assertEqual(render['status']['code'], 2)  # STATUS_CODE_ERROR
        self.assertIn('net::ERR_CONNECTION_REFUSED', render['status']['message'])

    def test_a_refused_query_span_is_no_error(self):
        trace_id = uuid.uuid4().hex
        # a refused host: the query is read, the render answers 403
        params = urllib.parse.urlencode({'url': 'ftp://127.0.0.1/x', 'renderKey': 'k', 'width': '10',
                                         'height': '10'})
        status, headers, _ = http_get(self.port, '/render?' + params,
                                      {'X-Auth-Token': TOKEN, 'traceparent': '00-%s-%s-01' % (trace_id, 'b' * 16)})
        self.assertEqual(status, 403)
        self.assertRegex(headers.get('traceparent', ''), r'^00-%s-[0-9a-f]{16}-01$' % trace_id)
        render = [s for _, s in self.trace_spans(trace_id) if s['name'] == 'render'][0]
        attrs = {a['key']: a['value'] for a in render['attributes']}
        self.assertEqual(attrs['http.response.status_code'], {'intValue': '403'})
        self.assertNotIn('status', render)  # a 4xx is the client's error, not the server span's

    def test_no_span_without_the_token(self):
        trace_id = uuid.uuid4().hex
        status, headers, _ = http_get(self.port, '/render?url=x', {'X-Auth-Token': 'wrong',
                                      'traceparent': '00-%s-%s-01' % (trace_id, 'd' * 16)})
        self.assertEqual(status, 401)
        self.assertNotIn('traceparent', headers)
        # a later render's spans arrive; the refused request's never do
        later = uuid.uuid4().hex
        self.check_render_ok(*self.render(self.dashboard('after401'),
                                          {'traceparent': '00-%s-%s-01' % (later, 'd' * 16)})[::2])
        self.trace_spans(later)
        self.assertEqual([s for _, s in Collector.spans() if s['traceId'] == trace_id], [])


class StopWithHungCollectorTest(TracingBase):
    """A collector that takes the connection and never answers, and an
    export timeout of 30 s: the renderer still stops within the 2 s it
    gives what is left (plus libcurl's progress callback's second), not
    after the timeout; what it could not send is logged as dropped."""

    @classmethod
    def setUpClass(cls):
        Site.stopping.clear()
        cls.web = serve(SiteServer(('127.0.0.1', 0), Site))
        cls.site_port = cls.web.server_address[1]
        cls.hung = socket.socket()
        cls.hung.bind(('127.0.0.1', 0))
        cls.hung.listen(16)  # the kernel completes the connections; nobody reads them
        cls.start_rendervisor('http://127.0.0.1:%d/v1/traces' % cls.hung.getsockname()[1], timeout='30s')

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()
        cls.hung.close()

    def test_stop_does_not_wait_for_the_collector(self):
        url = 'http://127.0.0.1:%d/d/fx-stop/fixture?orgId=1&vars=1&ds=30&render=1' % self.site_port
        self.assertEqual(self.render(url)[0], 200)
        time.sleep(1.5)  # the batch goes after 1 s, and hangs
        pid = self.rv.pid('renderer')
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: self.rv.records('child exited', child='renderer', pid=pid), 15, interval=0.05,
                   what='the renderer exited')
        took = time.monotonic() - t0
        self.assertLess(took, 15)  # a bound far from the 30 s timeout, not a speed figure
        drops = self.rv.child_records('renderer', 'tracing dropped spans of renders')
        self.assertTrue(drops)
        self.assertGreater(int(drops[-1][1]['total_export_failed']), 0)


class TracingOffTest(TracingBase):
    """No [tracing] endpoint: a Grafana traceparent changes nothing, the
    page's requests carry none, and libcurl is not even loaded."""

    @classmethod
    def setUpClass(cls):
        Site.stopping.clear()
        cls.web = serve(SiteServer(('127.0.0.1', 0), RecordingSite))
        cls.site_port = cls.web.server_address[1]
        cls.start_rendervisor(None)

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()

    def test_off_passes_nothing_on(self):
        before = len(RecordingSite.seen)
        trace_id = uuid.uuid4().hex
        url = 'http://127.0.0.1:%d/d/fx-off/fixture?orgId=1&vars=1&ds=30&render=1' % self.site_port
        status, headers, body = self.render(url, {'traceparent': '00-%s-%s-01' % (trace_id, 'e' * 16)})
        self.assertEqual(status, 200, body[:300])
        self.assertNotIn('traceparent', headers)
        seen = RecordingSite.seen[before:]
        self.assertIn('/d/fx-off/fixture', [urllib.parse.urlsplit(r['path']).path for r in seen])
        self.assertEqual([r for r in seen if r['traceparent'] or r['tracestate']], [])
        self.assertFalse(maps_libcurl(self.rv.pid('renderer')))
        self.assertEqual(self.rv.child_records('renderer', 'tracing on'), [])


class DeadCollectorTest(TracingBase):
    """Nothing listening, then a collector that never answers: every render
    200 all the same; the spans dropped, counted and logged."""

    @classmethod
    def setUpClass(cls):
        Site.stopping.clear()
        cls.web = serve(SiteServer(('127.0.0.1', 0), Site))
        cls.site_port = cls.web.server_address[1]
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        cls.dead_port = s.getsockname()[1]
        s.close()  # nothing listens there now
        cls.start_rendervisor('http://127.0.0.1:%d/v1/traces' % cls.dead_port, timeout='1s')

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        Collector.release.set()
        Collector.hang.clear()
        cls.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()

    def url(self):
        return 'http://127.0.0.1:%d/d/fx-dead/fixture?orgId=1&vars=1&ds=30&render=1' % self.site_port

    def drops(self):
        return self.rv.child_records('renderer', 'tracing dropped spans of renders')

    def test_dead_then_hanging_collector(self):
        for _ in range(3):
            status, _, body = self.render(self.url(), {'traceparent': '00-%s-%s-01' % (uuid.uuid4().hex, 'c' * 16)})
            self.assertEqual(status, 200, body[:300])
        wait_until(lambda: self.drops(), 10, interval=0.1, what='the drop logged')
        first = self.drops()[0][1]
        self.assertGreater(int(first['export_failed']), 0)
        self.assertIn('127.0.0.1:%d' % self.dead_port, first['endpoint'])

        # a collector that takes the request and never answers
        Collector.hang.set()
        hung = serve(http.server.ThreadingHTTPServer(('127.0.0.1', self.dead_port), Collector))
        try:
            for _ in range(4):
                status, _, body = self.render(self.url())
                self.assertEqual(status, 200, body[:300])
            # the renderer still answers at once while its exporter waits
            self.assertEqual(http_get(self.port, '/healthz', timeout=5)[0], 200)
        finally:
            Collector.release.set()
            hung.shutdown()
            hung.server_close()
        # one line a minute at most: the drops since are in the totals of the next one
        self.assertEqual(len(self.drops()), 1)
        # and counted, reported with the renders' steps
        status, _, body = http_get(self.port, '/metrics')
        self.assertEqual(status, 200)
        dropped = {}
        for line in body.decode().splitlines():
            if line.startswith('rendervisor_renderer_spans_dropped_total{'):
                name, value = line.rsplit(' ', 1)
                dropped[name.split('"')[1]] = float(value)
        self.assertEqual(set(dropped), {'queue_full', 'export_failed'})
        self.assertGreaterEqual(dropped['export_failed'], int(first['export_failed']))


if __name__ == '__main__':
    unittest.main()
