"""Chromium's sandbox (issue 13): the default browser command run by a root
supervisor as [supervisor] user keeps the sandbox on (each browser's
renderer processes under seccomp-bpf, no --no-sandbox on its command line);
run as root, the supervisor adds --no-sandbox and says so once in its log.
--check-config prints the same warnings, and the one for Grafana's default
token on a listen address beyond loopback, and still passes."""
import http.server
import os
import pwd
import shutil
import subprocess
import sys
import threading
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SUPERVISOR, Rendervisor, free_port, http_get, process_tree, wait_until  # noqa: E402
from test_renderer import default_browser_command, read_png  # noqa: E402

EXPORTER = os.path.abspath(os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter'))
RENDERER = os.path.abspath(os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer'))
SHELL = '/usr/lib/chromium/chromium-headless-shell'
TOKEN = 'sandbox-token'
ROOT_WARNING = "browsers run as root: Chromium's sandbox is off"
TOKEN_WARNING = "the renderer takes Grafana's default auth_token"


def cmdline(pid):
    """A process's argv, or None when it is gone."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().decode('utf-8', 'replace').split('\0')[:-1]
    except OSError:
        return None


def seccomp(pid):
    """(Seccomp mode (0 none, 1 strict, 2 filter), real uid) of a process,
    from /proc/PID/status; None when it is gone."""
    out = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                key, _, rest = line.partition(':')
                if key in ('Seccomp', 'Uid'):
                    out[key] = int(rest.split()[0])
    except OSError:
        return None
    return out['Seccomp'], out['Uid']


def renderer_processes(browser_pid):
    """The --type=renderer processes in a browser's process tree. A process
    the zygote forks rewrites its title: its argv is then one string of
    words, so the words are looked for across all of them."""
    return [p for p in process_tree(browser_pid) if '--type=renderer' in ' '.join(cmdline(p) or []).split()]


class HeldPage(http.server.BaseHTTPRequestHandler):
    """/page?i=N embeds /held?i=N, which is answered only when the test
    releases it: while a render waits for it, its Chromium renderer lives."""
    arrived = None   # set of i whose /held request came in
    release = None   # threading.Event
    lock = threading.Lock()

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        i = urllib.parse.parse_qs(url.query).get('i', ['0'])[0]
        if url.path == '/page':
            body = ('<!doctype html><html><body style="margin:0;background:rgb(0,0,255)">'
                    '<img src="/held?i=%s" width="1" height="1"></body></html>' % i).encode()
            ctype = 'text/html'
        else:
            with self.lock:
                self.arrived.add(i)
            self.release.wait(60)
            body, ctype = b'GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'image/gif'
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SandboxTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest('needs root: only a root supervisor runs its children as another user')
        if not shutil.which('useradd') or not os.path.exists(SHELL):
            self.skipTest('needs useradd and %s' % SHELL)

    def make_user(self):
        name = 'rvsb%s' % uuid.uuid4().hex[:8]
        subprocess.run(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
                        '--shell', '/usr/sbin/nologin', name], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ['groupdel', name], capture_output=True)
        self.addCleanup(subprocess.run, ['userdel', '-f', name], capture_output=True)
        return name

    def start(self, user=None, count=1):
        """A supervisor with the real children and the default browser
        command; renders one at a time per browser, so that n concurrent
        renders land on n browsers."""
        rport = free_port()
        supervisor = {'user': user} if user else {}
        r = Rendervisor(exporter=EXPORTER, renderer=RENDERER, browsers=default_browser_command(),
                        browser_count=count, collect=False,
                        extra={'supervisor': supervisor,
                               'renderer': {'listen': '127.0.0.1:%d' % rport, 'auth_token': TOKEN,
                                            'concurrency': '1'}})
        self.addCleanup(r.stop)
        # the children read the config file as that user
        os.chmod(r.dir, 0o711)
        os.chmod(r.config, 0o644)
        r.start()
        try:
            wait_until(lambda: http_get(rport, '/healthz', timeout=2)[0] == 200, 90, interval=0.2,
                       what='the renderer connected to its browsers')
        except AssertionError:
            print(r.log_text()[-4000:])
            raise
        return r, rport

    def browser_argv(self, r, child):
        """The browser's own command line, once it has exec'd (a fork still
        shows the supervisor's argv)."""
        pid = r.pid(child)
        return wait_until(lambda: (lambda a: a if a and any(w.startswith('--user-data-dir=') for w in a) else None)(
            cmdline(pid)), 10, what='%s exec\'d' % child)

    def render_held(self, r, rport, count):
        """count renders at once, each held on a subresource until every
        browser's renderer processes have been looked at; returns
        {browser: [(pid, (seccomp mode, uid) or None if gone)]} and the
        answers."""
        HeldPage.arrived, HeldPage.release = set(), threading.Event()
        web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), HeldPage)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        self.addCleanup(web.server_close)
        self.addCleanup(web.shutdown)
        self.addCleanup(HeldPage.release.set)
        answers = [None] * count

        def render(i):
            q = urllib.parse.urlencode(dict(url='http://127.0.0.1:%d/page?i=%d' % (web.server_address[1], i),
                                            width=60, height=40))
            answers[i] = http_get(rport, '/render?' + q, {'X-Auth-Token': TOKEN}, timeout=90)
        threads = [threading.Thread(target=render, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(HeldPage.arrived) == count, 60, interval=0.1,
                       what='every page loaded up to its held image')
            modes = {}
            for i in range(count):
                child = 'browser-%d' % i
                pids = wait_until(lambda: renderer_processes(r.pid(child)), 10, interval=0.1,
                                  what='a renderer process in %s' % child)
                modes[child] = [(p, seccomp(p)) for p in pids]
        finally:
            HeldPage.release.set()
            for t in threads:
                t.join(120)
        return modes, answers

    def assert_png(self, answer):
        status, headers, body = answer
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers.get('Content-Type'), 'image/png')
        w, h, rows = read_png(body)
        self.assertEqual((w, h), (60, 40))
        self.assertEqual(rows[20][30], (0, 0, 255))

    def sandbox_records(self, r):
        return [f for _, f in r.records() if f.get('sandbox') == 'off']

    def test_the_sandbox_is_on_as_a_user(self):
        name = self.make_user()
        r, rport = self.start(user=name, count=2)
        uid = pwd.getpwnam(name).pw_uid
        for child in ('browser-0', 'browser-1'):
            argv = self.browser_argv(r, child)
            self.assertFalse([w for w in argv if 'no-sandbox' in w], argv)
        modes, answers = self.render_held(r, rport, 2)
        self.assertEqual(sorted(modes), ['browser-0', 'browser-1'])
        for child, procs in modes.items():
            seen = [(pid, m) for pid, m in procs if m is not None]  # None: gone since
            self.assertTrue(seen, '%s: its renderers ended too soon' % child)
            for pid, m in seen:
                self.assertEqual(m, (2, uid), '%s renderer pid %d' % (child, pid))
        for a in answers:
            self.assert_png(a)
        # nothing to warn about: a user, a real token on loopback
        self.assertEqual(self.sandbox_records(r), [])
        self.assertEqual([f for _, f in r.records() if f.get('level') == 'warn' and f.get('component') == 'supervisor'
                          and 'auth_token' in f.get('msg', '')], [])

    def test_as_root_no_sandbox_is_added_and_said(self):
        r, rport = self.start()
        argv = self.browser_argv(r, 'browser-0')
        self.assertEqual(argv.count('--no-sandbox'), 1, argv)
        # appended after the operator's words: theirs do not have it
        self.assertNotIn('--no-sandbox', default_browser_command().split())
        records = self.sandbox_records(r)
        self.assertEqual(len(records), 1, records)
        self.assertEqual(records[0]['level'], 'warn')
        self.assertEqual(records[0]['component'], 'supervisor')
        self.assertEqual(records[0]['reason'], 'root')
        self.assertIn(ROOT_WARNING, records[0]['msg'])
        self.assertIn('set [supervisor] user', records[0]['msg'])
        # the check above is not blind: without the sandbox the same
        # renderers run with no seccomp filter
        modes, answers = self.render_held(r, rport, 1)
        seen = [m for _, m in modes['browser-0'] if m is not None]
        self.assertTrue(seen, 'browser-0: its renderers ended too soon')
        self.assertEqual([m for m in seen if m != (0, 0)], [])
        self.assert_png(answers[0])

    def check_config(self, settings):
        r = Rendervisor(browsers=default_browser_command(), collect=False, extra=settings)
        self.addCleanup(r.stop)
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, '%s: valid\n' % r.config)
        return [line[len(r.config) + 2:] for line in p.stderr.splitlines() if line.startswith(r.config + ': ')]

    def test_check_config_warns_and_passes(self):
        name = self.make_user()
        # the default's listen and token, as root: both warnings, saying what to do
        out = self.check_config({'renderer': {'listen': '0.0.0.0:%d' % free_port()}})
        self.assertEqual(len(out), 2, out)
        self.assertTrue(out[0].startswith('warning: ' + ROOT_WARNING), out)
        self.assertIn('set [supervisor] user', out[0])
        self.assertTrue(out[1].startswith('warning: ' + TOKEN_WARNING), out)
        self.assertIn("set auth_token to Grafana's [rendering] renderer_token, or listen on 127.0.0.1", out[1])
        # [::] is no more loopback than 0.0.0.0; a user turns the sandbox on
        out = self.check_config({'supervisor': {'user': name}, 'renderer': {'listen': '[::]:%d' % free_port()}})
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith('warning: ' + TOKEN_WARNING), out)
        # a real token, or loopback: no token warning
        self.assertEqual(self.check_config({'supervisor': {'user': name},
                                            'renderer': {'listen': '0.0.0.0:%d' % free_port(),
                                                         'auth_token': TOKEN}}), [])
        self.assertEqual(self.check_config({'supervisor': {'user': name},
                                            'renderer': {'listen': '127.0.0.1:%d' % free_port()}}), [])
        # the operator's own --no-sandbox as a user: kept, and said
        out = self.check_config({'supervisor': {'user': name},
                                 'renderer': {'listen': '127.0.0.1:%d' % free_port()},
                                 'browsers': {'command': default_browser_command() + ' --no-sandbox'}})
        self.assertEqual(len(out), 1, out)
        self.assertIn("the browsers' command has --no-sandbox", out[0])
        self.assertIn('reason=command uid=%d' % pwd.getpwnam(name).pw_uid, out[0])


if __name__ == '__main__':
    unittest.main()
