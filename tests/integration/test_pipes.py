"""CDP over pipes (devtools = pipe, the default): no browser listens on any
TCP port, renders work, a browser SIGKILLed mid-load comes back with new
pipes and renders go on, and a SIGKILLed renderer gets the live pipes again
from the supervisor and clears what its predecessor left in the browsers.
devtools = port still renders (and the same port check finds its port, so
the check can fail). Real supervisor, renderer, exporter and Chromium."""
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Rendervisor, free_port, free_port_range, http_get, proc_stat, all_pids,  # noqa: E402
                     socket_inodes, wait_until)
from test_renderer import Pages, PagesServer, default_browser_command, read_png  # noqa: E402

EXPORTER = os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter')
RENDERER = os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer')
TOKEN = 'test-token-pipes'


def tree(root):
    """root and every process below it (by parent pid), or in its session."""
    procs = {}
    for p in all_pids():
        st = proc_stat(p)
        if st:
            procs[p] = st
    out, todo = set(), [root]
    sid = procs.get(root, (None, 0, 0, None))[3]
    out.update(p for p, st in procs.items() if sid is not None and st[3] == sid)
    while todo:
        p = todo.pop()
        out.add(p)
        todo += [c for c, st in procs.items() if st[1] == p and c not in out]
    return out


def pipe_fds(pid):
    """How many pipe fds the process holds."""
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            n += os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('pipe:')
        except OSError:
            pass
    return n


def listening_tcp():
    """inode -> local address of every TCP socket in LISTEN state."""
    out = {}
    for name in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(name) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == '0A':  # TCP_LISTEN
                    out[int(cols[9])] = cols[1]
        # one table per family; both are read
    return out


def browser_listeners(rv, count):
    """The listening TCP sockets held by any process of the browsers' trees,
    and how many processes were looked at."""
    pids = set()
    for i in range(count):
        pids |= tree(rv.pid('browser-%d' % i))
    listen = listening_tcp()
    held = {}
    for p in pids:
        for ino in socket_inodes(p) & set(listen):
            held[ino] = (p, listen[ino])
    return held, len(pids)


class PipesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.web = PagesServer(('127.0.0.1', 0), Pages)
        threading.Thread(target=cls.web.serve_forever, daemon=True).start()
        cls.site = 'http://127.0.0.1:%d' % cls.web.server_address[1]
        cls.port = free_port()
        # devtools is left out: pipe is the default.
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                             renderer=os.path.abspath(RENDERER), browser_count=2,
                             sample_interval='500ms', stop_timeout='3s', collect=False,
                             extra={'renderer': {'listen': '127.0.0.1:%d' % cls.port, 'auth_token': TOKEN,
                                                 'concurrency': '2'}})
        cls.rv.start()
        try:
            cls.wait_up()
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
    def wait_up(cls, port=None):
        wait_until(lambda: b'2 of 2' in http_get(port or cls.port, '/healthz')[2], 60, interval=0.1,
                   what='the renderer connected to both browsers')

    def request(self, page, port=None, http_timeout=60, **params):
        import urllib.parse
        q = dict(url=self.site + page, **params)
        return http_get(port or self.port, '/render?' + urllib.parse.urlencode(q), {'X-Auth-Token': TOKEN},
                        http_timeout)

    def render_ok(self, rv, port=None):
        status, headers, body = self.request('/panels.html', port=port, width=100, height=100)
        if status != 200:
            print(rv.log_text()[-6000:])
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers['Content-Type'], 'image/png')
        self.assertEqual(read_png(body)[2][50][50], (255, 0, 0))

    def renderer_records(self, msg, **fields):
        return [f for _, f in self.rv.child_records('renderer', msg, **fields)]

    # ---- no port ------------------------------------------------------------
    def test_no_browser_listens_on_any_tcp_port(self):
        rv = self.rv
        for i in range(2):
            with open('/proc/%d/cmdline' % rv.pid('browser-%d' % i), 'rb') as f:
                argv = f.read().decode().split('\0')
            self.assertIn('--remote-debugging-pipe', argv)
            self.assertFalse([a for a in argv if a.startswith('--remote-debugging-port')], argv)
        self.render_ok(rv)  # the browsers have pages and all their processes now
        held, looked = browser_listeners(rv, 2)
        self.assertGreater(looked, 2)  # the browsers' own children were looked at too
        self.assertEqual(held, {})

    def test_a_render_answers_200_with_a_png(self):
        status, headers, body = self.request('/panels.html', width=100, height=100)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers['Content-Type'], 'image/png')
        self.assertTrue(body.startswith(b'\x89PNG\r\n\x1a\n'))
        self.assertEqual(read_png(body)[2][50][50], (255, 0, 0))

    def test_pipes_from_anyone_but_the_supervisor_are_refused_and_closed(self):
        # Another process that can reach renderer.ctl offers "pipes 0 99"
        # with two fds of its own: refused (not the renderer's parent), the
        # fds closed (nothing the renderer holds grows), browser-0 untouched.
        import socket
        rv = self.rv
        self.wait_up()
        renderer = rv.pid('renderer')
        before = pipe_fds(renderer)
        r, w = os.pipe()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendmsg([b'pipes 0 99\n'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(
                __import__('array').array('i', [w, r]))))], 0, os.path.join(rv.run_dir, 'renderer.ctl'))
        finally:
            s.close()
        os.close(w)
        wait_until(lambda: rv.child_records('renderer', 'control line refused', line='pipes', pid=os.getpid()), 10,
                   what='the line refused')
        # the renderer kept no copy of the write end: the pipe reads as EOF
        os.set_blocking(r, False)
        self.assertEqual(os.read(r, 1), b'')
        os.close(r)
        self.assertEqual(pipe_fds(renderer), before)
        self.assertFalse([f for f in self.renderer_records('browser pipes taken over') if f['generation'] == '99'])
        self.render_ok(rv)

    # ---- a browser killed ---------------------------------------------------
    def test_a_browser_killed_mid_load_comes_back_with_new_pipes(self):
        rv = self.rv
        self.wait_up()
        victim = rv.pid('browser-0')
        starts = len(rv.starts('browser-0'))
        pipes_before = pipe_fds(rv.pid('renderer')), pipe_fds(rv.proc.pid)
        gens = [int(f['generation']) for f in self.renderer_records('browser connected', browser=0)]
        tag = 'pipekill-%d' % time.monotonic_ns()
        result = []
        t = threading.Thread(target=lambda: result.append(
            self.request('/slow.html?' + tag, width=100, height=100, timeout=20)))
        t.start()
        try:
            wait_until(lambda: any(tag in p for p in Pages.seen), 10, what='the page requested')
            time.sleep(0.2)
            os.kill(victim, signal.SIGKILL)
        finally:
            t.join(40)
        self.assertEqual(len(result), 1)
        self.assertEqual(result[0][0], 200, result[0][2][:300])  # retried on browser-1
        rv.wait_started('browser-0', starts + 1, timeout=15)
        self.assertTrue(wait_until(lambda: self.renderer_records('browser connection lost', browser=0), 10,
                                   what='the renderer saw the pipes close'))
        # the new browser's pipes, of a newer generation than any before
        newer = wait_until(lambda: [f for f in self.renderer_records('browser connected', browser=0)
                                    if int(f['generation']) > max(gens)], 30, interval=0.1,
                           what='browser-0 connected over new pipes')
        self.assertEqual(newer[0]['devtools'], 'pipe')
        self.wait_up()
        for _ in range(3):  # both browsers take renders
            self.render_ok(rv)
        # the dead browser's pipe ends closed, in the renderer and the supervisor
        self.assertEqual((pipe_fds(rv.pid('renderer')), pipe_fds(rv.proc.pid)), pipes_before)
        held, _ = browser_listeners(rv, 2)
        self.assertEqual(held, {})

    # ---- the renderer killed ------------------------------------------------
    def test_a_killed_renderer_gets_the_live_pipes_and_clears_the_old_pages(self):
        rv = self.rv
        self.wait_up()
        victim = rv.pid('renderer')
        starts = len(rv.starts('renderer'))
        browser_starts = [len(rv.starts('browser-%d' % i)) for i in range(2)]
        taken = len(self.renderer_records('browser pipes taken over'))
        tag = 'rkill-%d' % time.monotonic_ns()
        t = threading.Thread(target=lambda: self.request('/never.html?' + tag, http_timeout=30,
                                                         width=100, height=100, timeout=20))
        t.start()
        try:
            wait_until(lambda: any(tag in p for p in Pages.seen), 10, what='the page requested')
            time.sleep(0.3)
            os.kill(victim, signal.SIGKILL)
        finally:
            t.join(40)
        rv.wait_started('renderer', starts + 1, timeout=15)
        self.wait_up()
        # the same browsers, not restarted: the new renderer got their live pipes
        self.assertEqual([len(rv.starts('browser-%d' % i)) for i in range(2)], browser_starts)
        over = wait_until(lambda: self.renderer_records('browser pipes taken over')[taken:], 10,
                          what='the new renderer took the pipes over')
        self.assertEqual(sorted(f['browser'] for f in over), ['0', '1'])
        # the render the old renderer left: its context (and page) disposed of
        cleared = sum(int(f['disposed_contexts']) + int(f['closed_targets']) for f in over)
        self.assertGreaterEqual(cleared, 1, over)
        self.render_ok(rv)
        self.render_ok(rv)


class PortModeTest(unittest.TestCase):
    def test_devtools_port_still_renders_and_listens_on_loopback(self):
        web = PagesServer(('127.0.0.1', 0), Pages)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        port, base = free_port(), free_port_range(2)
        rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                         renderer=os.path.abspath(RENDERER), browser_count=2, sample_interval='500ms',
                         stop_timeout='3s', collect=False,
                         extra={'renderer': {'listen': '127.0.0.1:%d' % port, 'auth_token': TOKEN},
                                'browsers': {'devtools': 'port', 'port_base': str(base)}})
        rv.start()
        try:
            wait_until(lambda: b'2 of 2' in http_get(port, '/healthz')[2], 60, interval=0.1, what='both up')
            self.assertTrue(rv.records('devtools = port: each browser\'s DevTools listens on 127.0.0.1, where any '
                                       'local user can drive it and read every render; use it for debugging only'))
            import urllib.parse
            q = urllib.parse.urlencode({'url': 'http://127.0.0.1:%d/panels.html' % web.server_address[1],
                                        'width': 100, 'height': 100})
            status, headers, body = http_get(port, '/render?' + q, {'X-Auth-Token': TOKEN})
            self.assertEqual(status, 200, body[:300])
            self.assertEqual(read_png(body)[2][50][50], (255, 0, 0))
            held, _ = browser_listeners(rv, 2)
            ports = sorted(int(addr.split(':')[1], 16) for _, addr in held.values())
            self.assertEqual(ports, [base, base + 1])
            self.assertTrue(all(addr.startswith('0100007F:') for _, addr in held.values()), held)
        finally:
            rv.stop()
            web.shutdown()
            web.server_close()


    def test_bad_json_version_answers_are_retried_while_others_render(self):
        # devtools = port: each connect starts with a GET of the browser's
        # /json/version, run on the browser thread's loop. Browser 1 is a
        # stand-in (devtools_stub.py) that answers it badly in every way in
        # turn, or not at all; each is read, refused with a reason and
        # retried, while browser 0, a real Chromium, connects and renders.
        web = PagesServer(('127.0.0.1', 0), Pages)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        port, base = free_port(), free_port_range(2)
        stub = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'devtools_stub.py')
        rv = Rendervisor(exporter=os.path.abspath(EXPORTER),
                         browsers='%s %s %d REQUESTS\n    %s' % (sys.executable, stub, base + 1,
                                                                  default_browser_command()),
                         renderer=os.path.abspath(RENDERER), browser_count=2, sample_interval='500ms',
                         stop_timeout='3s', collect=False,
                         extra={'renderer': {'listen': '127.0.0.1:%d' % port, 'auth_token': TOKEN},
                                'browsers': {'devtools': 'port', 'port_base': str(base)}})
        requests = os.path.join(rv.dir, 'requests')
        rv.settings['browsers']['command'] = rv.settings['browsers']['command'].replace('REQUESTS', requests)
        rv.write_config()
        rv.start()
        try:
            wait_until(lambda: b'1 of 2' in http_get(port, '/healthz')[2], 60, interval=0.1, what='browser 0 up')
            import urllib.parse
            q = urllib.parse.urlencode({'url': 'http://127.0.0.1:%d/panels.html' % web.server_address[1],
                                        'width': 100, 'height': 100})
            status, _, body = http_get(port, '/render?' + q, {'X-Auth-Token': TOKEN})
            self.assertEqual(status, 200, body[:300])

            def whys():
                return [f.get('why', '') for f in
                        (f for _, f in rv.child_records('renderer', 'browser not answering yet'))
                        if f.get('browser') == '1']
            expected = ['no answer within 1000 ms', 'not an HTTP/1.x status line',
                        'an answer of more than 65536 bytes', 'closed after 24 of 100 body bytes',
                        'status 404', 'not JSON', 'no usable webSocketDebuggerUrl', 'no answer within 1000 ms']
            def seen():
                return [w for w in whys() if w in expected]
            wait_until(lambda: len(seen()) >= len(expected), 40, interval=0.2,
                       what='every bad answer refused')
            # in that order, each answer read once before the retry
            seen = seen()
            self.assertEqual(seen[:len(expected)], expected)
            with open(requests) as f:
                got = [json.loads(line) for line in f]
            want = 'GET /json/version HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n' % (base + 1)
            self.assertGreaterEqual(len(got), len(expected))
            self.assertEqual(set(got), {want})
            # the browser thread was never held up by them: still 1 of 2, no stall
            status, _, body = http_get(port, '/healthz')
            self.assertEqual((status, body), (200, b'ok: 1 of 2 browsers connected\n'))
            status, _, body = http_get(port, '/render?' + q, {'X-Auth-Token': TOKEN})
            self.assertEqual(status, 200, body[:300])
        finally:
            rv.stop()
            web.shutdown()
            web.server_close()

if __name__ == '__main__':
    unittest.main()
