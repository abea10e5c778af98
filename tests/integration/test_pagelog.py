"""The page's log (issue 16): with the real supervisor, renderer and
Chromium, a page that writes console.error and console.warn, throws an
uncaught exception, fetch()es a 404, a host off allowed_hosts and a closed
port, and echoes its render key into its console and into a request's path
and query. With [renderer] log_page = true each of these is a line of its
own, at info, with the render's id (the same as its "render request"
line's), the URL as host and path only; the render key appears nowhere in
the whole log; a page with 100 errors gives PAGELOG_ENTRIES_MAX lines and
one "page log limit" line; a render that times out says on its render line
how many errors and failed requests its page had. At log_level = debug the
same lines come at debug without log_page; at info without it there are
none (and the render line has no counts)."""
import http.server
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, free_port, free_port_range, http_get, serve, wait_until  # noqa: E402
from test_renderer import EXPORTER, RENDERER, TOKEN, default_browser_command  # noqa: E402

KEY = 'rk7Hq2ZpW9sLx4Vb8NcT1yUe5RaD3fGk'  # as Grafana makes them: 32 letters and digits
ENTRIES_MAX = 20  # renderer/pagelog.h PAGELOG_ENTRIES_MAX

# Everything a blank panel's page may have to say. The key comes from the
# request's cookie (the server writes it into the page, as a page that
# shows document.cookie or its own URL would).
PAGE = """<!doctype html><html><body style="margin:0;background:#fff"><div>page</div><script>
var key = "%(key)s";
console.log('a log line, never logged: ' + key);
console.info('info, never logged');
console.error('panel failed with key ' + key + ' in the url /api?renderKey=' + key + '&orgId=1');
console.warn('a warning of the page', 42, {a: 1});
setTimeout(function(){ throw new Error('boom from the page'); }, 0);
var left = 4;
function one() { if (--left === 0) requestAnimationFrame(function(){ window.panelsRendered = 1; }); }
fetch('/missing/' + key + '/data.json?renderKey=' + key + '#frag').then(one, one);
fetch('%(off_list)s/off-list/query?renderKey=' + key).then(one, one);
fetch('%(closed)s/closed-port').then(one, one);
fetch('%(other_origin)s/cors.json').then(one, one);
</script></body></html>"""

MANY = """<!doctype html><html><body style="background:#fff"><script>
for (var i = 0; i < 100; i++) console.error('error number ' + i);
requestAnimationFrame(function(){ window.panelsRendered = 1; });
</script></body></html>"""

# Never ready: a request that never ends holds the render until its timeout.
HANGS = """<!doctype html><html><body style="background:#fff"><script>
console.error('about to hang');
fetch('/nope-404');
fetch('/hang');
</script></body></html>"""


class Site(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    vars = {}

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == '/hang':
            time.sleep(30)
            return
        if path == '/cors.json':  # no Access-Control-Allow-Origin: the page may not read it
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(b'{}')
            return
        cookies = dict(c.strip().split('=', 1) for c in self.headers.get('Cookie', '').split(';') if '=' in c)
        pages = {'/page.html': PAGE % dict(self.vars, key=cookies.get('renderKey', 'none')),
                 '/many.html': MANY, '/hangs.html': HANGS}
        body = pages.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


class PageLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = serve(('127.0.0.1', 0), Site)
        cls.port = cls.site.server_address[1]
        Site.vars = {'off_list': 'http://127.0.0.2:%d' % cls.port, 'closed': 'http://127.0.0.1:%d' % free_port(),
                     'other_origin': 'http://localhost:%d' % cls.port}
        cls.rvs = []

    @classmethod
    def tearDownClass(cls):
        for rv in cls.rvs:
            rv.stop()
        cls.site.shutdown()
        cls.site.server_close()

    def start(self, log_level, renderer=None):
        port = free_port()
        settings = {'listen': '127.0.0.1:%d' % port, 'auth_token': TOKEN, 'concurrency': '2',
                    'allowed_hosts': '127.0.0.1 localhost'}
        settings.update(renderer or {})
        rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                         renderer=os.path.abspath(RENDERER), browser_count=1,
                         sample_interval='500ms', stop_timeout='3s', collect=False,
                         extra={'supervisor': {'log_level': log_level}, 'renderer': settings,
                                'browsers': {'port_base': str(free_port_range(1))}})
        self.rvs.append(rv)
        self.rv = rv
        rv.start()
        wait_until(lambda: http_get(port, '/healthz')[0] == 200, 60, interval=0.1,
                   what='the renderer connected to its browser')
        return rv, port

    def render(self, port, page, timeout=20):
        """The answer; render_line then waits for this render's line."""
        self.lines_before = len(self.rv.child_records('renderer', 'render request'))
        q = urllib.parse.urlencode(dict(url='http://127.0.0.1:%d/%s?renderKey=%s' % (self.port, page, KEY),
                                        renderKey=KEY, domain='127.0.0.1', width=400, height=200,
                                        timeout=timeout))
        return http_get(port, '/render?' + q, {'X-Auth-Token': TOKEN}, 60)

    def render_line(self, rv, status):
        """The line of the last render (it comes after its page's lines, and
        may come a moment after its answer)."""
        wait_until(lambda: len(rv.child_records('renderer', 'render request')) > self.lines_before, 10,
                   what='the render request line')
        line = rv.child_records('renderer', 'render request')[self.lines_before][1]
        self.assertEqual(line['status'], str(status), line)
        return line

    def page_lines(self, rv, render_id):
        return [f for _, f in rv.child_records('renderer') if f.get('msg', '').startswith('page ')
                and f.get('render_id') == render_id]

    def test_a_page_with_everything_wrong(self):
        rv, port = self.start('info', {'log_page': 'true'})
        status, _, body = self.render(port, 'page.html')
        self.assertEqual(status, 200, body[:300])
        line = self.render_line(rv, 200)
        rid = line['render_id']
        want = {'message': 4, 'failed': 3, 'blocked': 1}
        wait_until(lambda: len(self.page_lines(rv, rid)) >= sum(want.values()), 10,
                   what='the page lines of render %s' % rid)
        lines = self.page_lines(rv, rid)
        for f in lines:
            self.assertEqual(f['level'], 'info', f)
            self.assertEqual(f['browser'], '0', f)
            self.assertEqual(f['url_host'], '127.0.0.1:%d' % self.port, f)
        msgs = [f for f in lines if f['msg'] == 'page message']
        by_type = {}
        for f in msgs:
            by_type.setdefault((f['source'], f['type']), []).append(f)

        err = by_type[('console', 'error')]
        self.assertEqual(len(err), 1, msgs)
        self.assertEqual(err[0]['text'], 'panel failed with key [redacted] in the url /api?renderKey=[redacted]'
                         '&orgId=1')
        self.assertEqual(err[0]['at'], '127.0.0.1:%d/page.html:5' % self.port)
        warn = by_type[('console', 'warning')]
        self.assertEqual(warn[0]['text'], 'a warning of the page 42 Object')
        exc = by_type[('exception', 'error')]
        self.assertEqual(len(exc), 1, msgs)
        self.assertIn('Error: boom from the page', exc[0]['text'])
        self.assertTrue(exc[0]['at'].startswith('127.0.0.1:%d/page.html:' % self.port), exc[0])
        # console.log and console.info are not errors or warnings
        self.assertFalse([f for f in msgs if 'never logged' in f['text']], msgs)

        failed = [f for f in lines if f['msg'] == 'page request failed']
        missing = [f for f in failed if f.get('status') == '404']
        self.assertEqual(len(missing), 1, failed)
        self.assertEqual(missing[0]['request_host'], '127.0.0.1:%d' % self.port)
        self.assertEqual(missing[0]['request_path'], '/missing/[redacted]/data.json')
        self.assertEqual(missing[0]['type'], 'Fetch')
        refused = [f for f in failed if f.get('error') == 'net::ERR_CONNECTION_REFUSED']
        self.assertEqual(len(refused), 1, failed)
        self.assertEqual(refused[0]['request_path'], '/closed-port')
        self.assertEqual(refused[0]['request_host'], Site.vars['closed'][len('http://'):])
        cors = [f for f in failed if 'cors' in f]
        self.assertEqual(len(cors), 1, failed)
        self.assertEqual(cors[0]['cors'], 'MissingAllowOriginHeader')
        self.assertEqual(cors[0]['request_host'], 'localhost:%d' % self.port)
        self.assertEqual(cors[0]['request_path'], '/cors.json')
        # and the browser says why, as an error of its own
        said = [f for f in msgs if 'CORS policy' in f['text']]
        self.assertEqual(len(said), 1, msgs)
        self.assertEqual(said[0]['type'], 'error')
        blocked = [f for f in lines if f['msg'] == 'page request blocked']
        self.assertEqual(len(blocked), 1, lines)
        self.assertEqual(blocked[0]['by'], 'allowed_hosts')
        self.assertEqual(blocked[0]['reason'], 'not_allowed')
        self.assertEqual(blocked[0]['request_host'], '127.0.0.2:%d' % self.port)
        self.assertEqual(blocked[0]['request_path'], '/off-list/query')
        # the render line counts them: the error, the exception and the
        # browser's CORS error; the 404, the closed port, the CORS failure
        # and the refusal
        self.assertEqual(line['page_errors'], '3', line)
        self.assertEqual(line['page_failed'], '4', line)
        # nothing twice: the browser's "Failed to load resource" and its
        # report of our refusal are the request lines already
        self.assertEqual(len(lines), sum(want.values()), lines)

        # a hundred errors: the first ENTRIES_MAX, then how many more
        status, _, body = self.render(port, 'many.html')
        self.assertEqual(status, 200, body[:300])
        line = self.render_line(rv, 200)
        rid = line['render_id']
        wait_until(lambda: any(f['msg'] == 'page log limit' for f in self.page_lines(rv, rid)), 10,
                   what='the limit line')
        lines = self.page_lines(rv, rid)
        entries = [f for f in lines if f['msg'] != 'page log limit']
        self.assertEqual(len(entries), ENTRIES_MAX, entries)
        self.assertEqual([f['text'] for f in entries], ['error number %d' % i for i in range(ENTRIES_MAX)])
        limit = [f for f in lines if f['msg'] == 'page log limit']
        self.assertEqual(len(limit), 1)
        self.assertEqual(limit[0]['logged'], str(ENTRIES_MAX))
        self.assertEqual(limit[0]['more'], str(100 - ENTRIES_MAX))
        self.assertEqual(line['page_errors'], '100', line)

        # a render that times out: its line says what the page had
        status, _, body = self.render(port, 'hangs.html', timeout=2)
        self.assertEqual(status, 408, body[:300])
        line = self.render_line(rv, 408)
        self.assertEqual(line['page_errors'], '1', line)
        self.assertEqual(line['page_failed'], '1', line)
        self.assertTrue(self.page_lines(rv, line['render_id']))

        # the key, whole, nowhere: not in a URL, a console text, a header
        self.assertNotIn(KEY, rv.log_text())
        self.assertNotIn(KEY[:16], rv.log_text())

    def test_at_debug_level_without_log_page(self):
        rv, port = self.start('debug')
        status, _, body = self.render(port, 'page.html')
        self.assertEqual(status, 200, body[:300])
        rid = self.render_line(rv, 200)['render_id']
        wait_until(lambda: len(self.page_lines(rv, rid)) >= 6, 10, what='the page lines at debug')
        self.assertEqual({f['level'] for f in self.page_lines(rv, rid)}, {'debug'})
        self.assertNotIn(KEY, rv.log_text())

    def test_on_by_a_reload(self):
        """log_page = true on SIGHUP, without a restart: the next render's
        page has its lines, also when it takes the page the browser kept
        ready (made before the reload)."""
        rv, port = self.start('info')
        status, _, body = self.render(port, 'page.html')
        self.assertEqual(status, 200, body[:300])
        self.assertNotIn('page_errors', self.render_line(rv, 200))
        renderer = rv.pid('renderer')
        rv.settings['renderer']['log_page'] = 'true'
        rv.write_config()
        rv.signal(signal.SIGHUP)
        wait_until(lambda: rv.child_records('renderer', 'renderer config reloaded'), 20,
                   what='the renderer reloaded')
        self.assertEqual(rv.child_records('renderer', 'renderer config reloaded')[-1][1]['log_page'], 'true')
        self.assertEqual(rv.pid('renderer'), renderer)
        for _ in range(2):
            status, _, body = self.render(port, 'page.html')
            self.assertEqual(status, 200, body[:300])
            line = self.render_line(rv, 200)
            self.assertEqual(line['page_errors'], '3', line)
            self.assertEqual(line['page_failed'], '4', line)
            wait_until(lambda: len(self.page_lines(rv, line['render_id'])) >= 8, 10,
                       what='the page lines of render %s' % line['render_id'])
        self.assertEqual(rv.pid('renderer'), renderer)
        self.assertNotIn(KEY, rv.log_text())

    def test_off_by_default(self):
        rv, port = self.start('info')
        status, _, body = self.render(port, 'page.html')
        self.assertEqual(status, 200, body[:300])
        line = self.render_line(rv, 200)
        self.assertNotIn('page_errors', line)
        time.sleep(0.5)
        self.assertEqual([f for _, f in rv.child_records('renderer') if f.get('msg', '').startswith('page ')], [])
        # nor does the browser copy the page's console to its stderr (the
        # supervisor turns that off), where the key would be whole
        self.assertNotIn('CONSOLE', rv.log_text())
        self.assertNotIn(KEY, rv.log_text())


if __name__ == '__main__':
    unittest.main()
