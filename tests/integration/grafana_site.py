"""Grafana's backend, as far as the pages of tests/integration/pages/grafana
need it: the dashboard routes answer index.html filled in as Grafana's
server fills it, the page's API calls are answered after the delays the page
asks for, streams never end. Used by test_readiness.py and by
tools/cdp-transcripts.py, which records the renders of the same pages."""
import base64
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

PAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pages', 'grafana')


class Site(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'    # a WebSocket handshake needs it
    stopping = threading.Event()

    def log_message(self, *args):
        pass

    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)

    def delay(self):
        ms = float(self.query().get('delay', ['0'])[0] or 0)
        if ms > 0:
            time.sleep(ms / 1000)

    def send(self, status, ctype, body):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, 'application/json', json.dumps(obj))

    def file(self, name, ctype):
        with open(os.path.join(PAGES, name), 'rb') as f:
            self.send(200, ctype, f.read())

    def index(self):
        """index.html as Grafana's server renders it: the boot data (the user
        authenticated by the render key when the cookie came) and the render
        binding feature flag (here: binding=1 on the page's URL)."""
        cookies = self.headers.get('Cookie', '')
        by_render = any(c.strip().startswith('renderKey=') for c in cookies.split(';'))
        boot = {'user': {'login': 'admin', 'orgRole': 'Admin', 'authenticatedBy': 'render' if by_render else 'password',
                         'theme': 'dark'},
                'settings': {'buildInfo': {'version': '11.3.0'}, 'appSubUrl': ''},
                'navTree': []}
        binding = 'true' if self.query().get('binding') == ['1'] else 'false'
        with open(os.path.join(PAGES, 'index.html')) as f:
            html = f.read().replace('[[BOOT_DATA]]', json.dumps(boot)).replace('[[BINDING]]', binding)
        self.send(200, 'text/html; charset=utf-8', html)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(('/d/', '/d-solo/', '/d-report/')):
            self.index()
        elif path == '/public/build/app.js':
            self.file('app.js', 'application/javascript')
        elif path == '/public/build/grafana.dark.css':
            self.file('grafana.css', 'text/css')
        elif path == '/plain.html':
            self.file('plain.html', 'text/html; charset=utf-8')
        elif path.startswith('/public/plugins/') and path.endswith('/module.js'):
            self.delay()
            self.send(200, 'application/javascript', '/* a plugin module */\n')
        elif path.startswith('/public/tiles/'):
            self.delay()
            self.send(200, 'image/png', b'\x89PNG\r\n\x1a\n')
        elif path.startswith('/api/dashboards/uid/'):
            self.delay()
            self.send_json(200, {'dashboard': {'uid': path.rsplit('/', 1)[1], 'title': 'Fixture'},
                                 'meta': {'canEdit': False}})
        elif path == '/api/annotations':
            self.delay()
            self.send_json(200, [])
        elif path == '/api/data':
            self.delay()
            self.send_json(200, {'colour': '#e02f44'})
        elif path == '/api/live/sse':
            self.stream('text/event-stream', lambda i: b'data: {"seq": %d}\n\n' % i)
        elif path == '/api/ds/stream':
            self.stream('application/json', lambda i: b'{"seq": %d}\n' % i)
        elif path == '/api/live/ws':
            self.websocket()
        else:
            self.send(404, 'text/plain', 'not found')

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)
        if path != '/api/ds/query':
            self.send(404, 'text/plain', 'not found')
            return
        self.delay()
        if self.query().get('status') == ['500']:
            self.send_json(500, {'message': 'fixture: the query failed'})
            return
        self.send_json(200, {'results': {'A': {'status': 200, 'frames': [{'schema': {'fields': []},
                                                                          'data': {'values': []}}]}}})

    def stream(self, ctype, chunk):
        """A response that never ends: a chunk every 250 ms until the client
        (or the test) goes away."""
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Connection', 'close')
        self.end_headers()
        i = 0
        try:
            while not self.stopping.is_set():
                self.wfile.write(chunk(i))
                self.wfile.flush()
                i += 1
                self.stopping.wait(0.25)
        except OSError:
            pass
        self.close_connection = True

    def websocket(self):
        """Grafana Live's WebSocket, reduced to what the page needs: the
        handshake, then a text frame every 250 ms for as long as it is open."""
        key = self.headers.get('Sec-WebSocket-Key', '')
        accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest())
        self.send_response(101)
        self.send_header('Upgrade', 'websocket')
        self.send_header('Connection', 'Upgrade')
        self.send_header('Sec-WebSocket-Accept', accept.decode())
        self.end_headers()
        i = 0
        try:
            while not self.stopping.is_set():
                payload = b'{"seq": %d}' % i
                self.wfile.write(bytes([0x81, len(payload)]) + payload)
                self.wfile.flush()
                i += 1
                self.stopping.wait(0.25)
        except OSError:
            pass
        self.close_connection = True


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a browser context closed under a request: expected, not an error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
