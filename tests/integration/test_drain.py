"""The drain at shutdown, with the real supervisor, renderer, exporter and
Chromium: SIGTERM to the supervisor while renders run and wait. The renderer
is stopped first and takes no new render (503 with Retry-After and
Connection: close; /healthz 503 "draining"); the renders it had, running or
queued, are answered 200 with their picture while the browsers stay up; a
render that outlasts [renderer] drain_timeout is answered 503; only then
are the browsers and the exporter stopped, rendervisor exits 0 and no
process of it is left."""
import json
import os
import signal
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Rendervisor, alive, free_port, free_port_range, http_get,  # noqa: E402
                     marked_pids, metrics_sample, wait_until)
from test_renderer import (EXPORTER, RENDERER, TOKEN, Pages, PagesServer,  # noqa: E402
                           default_browser_command, read_png)

DRAIN = 15  # s: room for the queued render to run after the first on a busy machine
STOP = 3    # s: stop_timeout
IN_FLIGHT = 'grafana_image_renderer_http_request_in_flight'


class DrainTest(unittest.TestCase):
    def setUp(self):
        self.web = PagesServer(('127.0.0.1', 0), Pages)
        threading.Thread(target=self.web.serve_forever, daemon=True).start()
        self.addCleanup(self.web.server_close)
        self.addCleanup(self.web.shutdown)
        self.site = 'http://127.0.0.1:%d' % self.web.server_address[1]
        self.port = free_port()
        # One browser, two renders at a time: a third waits in the queue.
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=1,
                              sample_interval='500ms', stop_timeout='%ds' % STOP, collect=False,
                              extra={'renderer': {'listen': '127.0.0.1:%d' % self.port, 'auth_token': TOKEN,
                                                  'concurrency': '2', 'drain_timeout': '%ds' % DRAIN},
                                     'browsers': {'port_base': str(free_port_range(1))}})
        self.addCleanup(self.rv.stop)
        self.rv.start()
        wait_until(lambda: http_get(self.port, '/healthz', timeout=5)[0] == 200, 60, interval=0.1,
                   what='the renderer connected to its browser')

    def render(self, page, **params):
        q = dict(url=self.site + page, width=100, height=100, **params)
        return http_get(self.port, '/render?' + urllib.parse.urlencode(q), {'X-Auth-Token': TOKEN}, 60)

    def assert_red_picture(self, result, what):
        status, headers, body = result
        self.assertEqual(status, 200, '%s: %r' % (what, body[:300]))
        self.assertEqual(headers.get('Content-Type'), 'image/png', what)
        _, _, rows = read_png(body)
        self.assertEqual(rows[10][10], (255, 0, 0), '%s: the panel is not drawn' % what)

    def test_sigterm_drains_renders_in_flight_and_queued(self):
        try:
            self.sigterm_drains()
        except AssertionError:
            print(self.rv.log_text()[-12000:])
            raise

    def sigterm_drains(self):
        tag = 'drain-%d' % time.monotonic_ns()
        # slow: drawn 5 s after its page loads (the third is still queued when
        # SIGTERM comes); never: never says it is drawn.
        pages = {'slow': '/hog.html?mb=1&ready_ms=5000&%s-slow' % tag,
                 'never': '/never.html?%s-never' % tag,
                 'queued': '/hog.html?mb=1&ready_ms=2000&%s-queued' % tag}
        results = {}

        def one(name):
            results[name] = self.render(pages[name], timeout=60)
        threads = {}
        for name in ('slow', 'never', 'queued'):
            threads[name] = threading.Thread(target=one, args=(name,))
            threads[name].start()
            if name != 'queued':
                wait_until(lambda: any(pages[name] in p for p in Pages.seen), 20,
                           what='the page of the %s render requested' % name)
        try:
            wait_until(lambda: metrics_sample(self.port, IN_FLIGHT) == 3, 10, interval=0.05,
                       what='three renders in flight')
            # the third is queued: its page has not been asked for
            self.assertFalse(any(pages['queued'] in p for p in Pages.seen), 'the third render is not queued')
            browser = self.rv.pid('browser-0')
            self.rv.signal(signal.SIGTERM)

            # New renders are refused, for a load balancer to send elsewhere.
            wait_until(lambda: http_get(self.port, '/healthz', timeout=5)[0] == 503, 5, interval=0.05,
                       what='/healthz 503 while draining')
            status, _, body = http_get(self.port, '/healthz', timeout=5)
            self.assertEqual(status, 503, body)
            self.assertTrue(body.startswith(b'draining'), body)
            status, headers, body = self.render('/panels.html?%s-late' % tag)
            self.assertEqual(status, 503, body[:300])
            self.assertEqual(headers.get('Retry-After'), '1')
            self.assertEqual(headers.get('Connection'), 'close')
            self.assertEqual(json.loads(body), {'error': 'the renderer is shutting down and takes no new render'})
            self.assertFalse(any('%s-late' % tag in p for p in Pages.seen), 'a refused render was started')
            # The browser stays while the renderer drains.
            self.assertTrue(alive(browser), 'the browser was stopped before the renderer')
        finally:
            for t in threads.values():
                t.join(DRAIN + 30)
        self.assert_red_picture(results['slow'], 'the render in flight at SIGTERM')
        self.assert_red_picture(results['queued'], 'the render queued at SIGTERM')
        status, _, body = results['never']
        self.assertEqual(status, 503, body[:300])
        self.assertEqual(json.loads(body), {'error': 'the renderer is shutting down'})
        self.assertEqual(self.rv.proc.wait(DRAIN + 2 * STOP + 10), 0)
        wait_until(lambda: not marked_pids(self.rv.mark), 5, what='every process of rendervisor gone')

        # The renderer went first and on its own (code 0, not SIGKILL); the
        # browser and the exporter were told to stop only after it had exited.
        exited = self.rv.records('child exited', child='renderer')
        self.assertTrue(exited, 'the renderer did not exit by itself')
        self.assertEqual(exited[-1][1]['code'], '0')
        self.assertFalse(self.rv.records('child did not stop in time, killing', child='renderer'))
        renderer_stop = self.rv.records('stopping child', child='renderer')[-1][1]
        self.assertEqual(renderer_stop['timeout_ms'], str((DRAIN + STOP) * 1000))
        for child in ('browser-0', 'exporter'):
            stops = self.rv.records('stopping child', child=child)
            self.assertTrue(stops, '%s was not stopped' % child)
            self.assertGreaterEqual(stops[-1][0], exited[-1][0], '%s was stopped before the renderer exited' % child)
        warned = self.rv.child_records('renderer', 'renderer drain over with renders left, they are answered 503')
        self.assertEqual([f['renders'] for _, f in warned], ['1'])


if __name__ == '__main__':
    unittest.main()
