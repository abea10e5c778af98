"""Issue 16: the environment over the config file, and tokens rotated without
a restart. --check-config --print shows each key's value and where it came
from; a real start where RENDERVISOR_RENDERER_LISTEN moves the renderer to
another port than the file's, and renders answer there; a token file
rotated under load through the supervisor's SIGHUP ({old} -> {old,new} ->
{new}) with clients rendering Grafana-like pages all along: no render
fails, both tokens pass during the overlap, the old one is refused after,
and the renderer is the same process throughout; a token file others may
read is refused by --check-config and on reload, the running tokens kept."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SUPERVISOR, Rendervisor, free_port, free_port_range, http_get,  # noqa: E402
                     wait_until)
from test_renderer import EXPORTER, RENDERER, default_browser_command  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402

PNG = b'\x89PNG\r\n\x1a\n'


def write_tokens(path, tokens, mode=0o600):
    """Replace the token file as an operator's tooling would: a new file
    with its final mode, renamed over the old one."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'w') as f:
        f.write('# rotated by test_envcfg\n' + ''.join(t + '\n' for t in tokens))
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def check_config(args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith('RENDERVISOR_')}
    e.update(env or {})
    return subprocess.run([SUPERVISOR] + args, capture_output=True, text=True, timeout=10, env=e)


class CheckConfigTest(unittest.TestCase):
    """No child started: what --check-config says of the file and the environment."""

    def setUp(self):
        self.rv = Rendervisor(extra={'renderer': {'listen': '127.0.0.1:18081', 'concurrency': '3'}}, collect=False)
        self.addCleanup(self.rv.stop)

    def test_print_shows_values_and_where_they_came_from(self):
        p = check_config(['--check-config', self.rv.config, '--print'],
                         {'RENDERVISOR_RENDERER_LISTEN': '127.0.0.1:18082',
                          'RENDERVISOR_RENDERER_AUTH_TOKEN': 'envsecret1 envsecret2'})
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertIn('listen = 127.0.0.1:18082 ; env RENDERVISOR_RENDERER_LISTEN', lines)
        conc = [l for l in lines if l.startswith('concurrency = ')]
        self.assertEqual(conc, ['concurrency = 3 ; %s:%d' % (self.rv.config, self.line_of('concurrency'))])
        self.assertIn('auth_token = (2 tokens, hidden) ; env RENDERVISOR_RENDERER_AUTH_TOKEN', lines)
        self.assertIn('drain_timeout = 15s ; default', lines)
        self.assertNotIn('envsecret', p.stdout + p.stderr)
        # without the variable the file's value is back
        p = check_config(['--check-config', self.rv.config, '--print'])
        self.assertIn('listen = 127.0.0.1:18081 ; %s:%d' % (self.rv.config, self.line_of('listen')),
                      p.stdout.splitlines())
        # no file: the embedded default, with the environment over it
        p = check_config(['--print'], {'RENDERVISOR_BROWSERS_COUNT': '3'})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('count = 3 ; env RENDERVISOR_BROWSERS_COUNT', p.stdout.splitlines())
        self.assertIn('listen = 0.0.0.0:8081 ; default', p.stdout.splitlines())

    def line_of(self, key):
        """The line of [renderer] key in the file."""
        section = None
        with open(self.rv.config) as f:
            for n, line in enumerate(f, 1):
                if line.startswith('['):
                    section = line.strip()
                elif section == '[renderer]' and line.startswith(key + ' ='):
                    return n
        self.fail('no %s in the file' % key)

    def test_variables_naming_nothing_or_bad_values_are_errors(self):
        p = check_config(['--check-config', self.rv.config],
                         {'RENDERVISOR_RENDERER_LISTN': '127.0.0.1:1', 'RENDERVISOR_BROWSERS_COUNT': '99'})
        self.assertEqual(p.returncode, 1)
        self.assertIn('env=RENDERVISOR_RENDERER_LISTN: unknown key in [renderer]', p.stderr)
        self.assertIn('env=RENDERVISOR_BROWSERS_COUNT key=browsers.count: invalid value "99": must be between 1 '
                      'and 16', p.stderr)
        self.assertNotIn('valid', p.stdout)

    def test_token_file_others_may_read_is_refused(self):
        tokens = os.path.join(self.rv.dir, 'tokens')
        write_tokens(tokens, ['filetoken'], 0o644)
        self.rv.settings['renderer']['auth_token_file'] = tokens
        self.rv.write_config()
        p = check_config(['--check-config', self.rv.config])
        self.assertEqual(p.returncode, 1)
        self.assertIn('key=renderer.auth_token_file: %s: others may read it (mode 0644)' % tokens,
                      p.stderr)
        self.assertNotIn('filetoken', p.stderr)
        # a start is refused the same way, before any child
        p = check_config(['--config', self.rv.config])
        self.assertEqual(p.returncode, 1)
        self.assertIn('others may read it (mode 0644)', p.stderr)
        self.assertNotIn('child started', p.stderr)
        os.chmod(tokens, 0o640)
        p = check_config(['--check-config', self.rv.config, '--print'])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('auth_token = (unused: auth_token_file is set) ; default', p.stdout.splitlines())
        self.assertIn('auth_token_file = %s ; %s:%d, 1 token' % (tokens, self.rv.config,
                                                                 self.line_of('auth_token_file')),
                      p.stdout.splitlines())


class LiveTest(unittest.TestCase):
    """The real supervisor, renderer, exporter and one Chromium, with the
    Grafana-like pages of grafana_site.py."""

    def setUp(self):
        Site.stopping.clear()
        self.web = SiteServer(('127.0.0.1', 0), Site)
        threading.Thread(target=self.web.serve_forever, daemon=True).start()
        self.addCleanup(self.web.server_close)
        self.addCleanup(self.web.shutdown)
        self.addCleanup(Site.stopping.set)
        self.site = 'http://127.0.0.1:%d' % self.web.server_address[1]

    def start(self, renderer, env=None):
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=1,
                              sample_interval='500ms', stop_timeout='3s', collect=False,
                              extra={'renderer': dict(concurrency='2', **renderer),
                                     'browsers': {'port_base': str(free_port_range(1))}})
        self.addCleanup(self.rv.stop)
        self.rv.start(env=env)

    def render(self, port, token):
        url = '%s/d/fx-rot/fixture?orgId=1&from=now-6h&to=now&kiosk&vars=1&ds=0&render=1' % self.site
        q = {'url': url, 'renderKey': uuid.uuid4().hex, 'width': '400', 'height': '300', 'domain': '127.0.0.1',
             'encoding': 'png', 'timeout': '15'}
        return http_get(port, '/render?' + urllib.parse.urlencode(sorted(q.items())),
                        {'X-Auth-Token': token, 'User-Agent': 'Grafana/11.3.0'}, timeout=40)

    def wait_ready(self, port):
        wait_until(lambda: http_get(port, '/healthz', timeout=5)[0] == 200, 60, interval=0.1,
                   what='the renderer connected to its browser')

    def test_environment_moves_the_listener(self):
        file_port, env_port = free_port(), free_port()
        self.start({'listen': '127.0.0.1:%d' % file_port, 'auth_token': 'file-token'},
                   env={'RENDERVISOR_RENDERER_LISTEN': '127.0.0.1:%d' % env_port,
                        'RENDERVISOR_RENDERER_AUTH_TOKEN': 'env-token'})
        try:
            self.wait_ready(env_port)
            status, headers, body = self.render(env_port, 'env-token')
            self.assertEqual(status, 200, body[:300])
            self.assertTrue(body.startswith(PNG))
            self.assertEqual(self.render(env_port, 'file-token')[0], 401)
            self.assertEqual(http_get(file_port, '/healthz', timeout=5)[0], 0)  # nothing listens there
            self.assertTrue(self.rv.records('renderer ready', listen='127.0.0.1:%d' % env_port))
            self.assertTrue(self.rv.records('config key set by the environment', key='renderer.listen',
                                            env='RENDERVISOR_RENDERER_LISTEN'))
            self.assertNotIn('env-token', self.rv.log_text())
            # the browsers read no config, and get none of its variables (a token among them)
            with open('/proc/%d/environ' % self.rv.pid('browser-0'), 'rb') as f:
                browser_env = f.read().split(b'\0')
            self.assertTrue(any(v.startswith(b'RV_TEST_MARK=') for v in browser_env))
            self.assertFalse([v for v in browser_env if v.startswith(b'RENDERVISOR_')])
            with open('/proc/%d/environ' % self.rv.pid('renderer'), 'rb') as f:
                self.assertIn(b'RENDERVISOR_RENDERER_AUTH_TOKEN=env-token', f.read().split(b'\0'))
        except Exception:
            print(self.rv.log_text()[-6000:])
            raise

    def test_token_file_rotated_under_load(self):
        port = free_port()
        tokens = os.path.join(self.rv_dir(), 'tokens')
        write_tokens(tokens, ['old-token'])
        self.start({'listen': '127.0.0.1:%d' % port, 'auth_token_file': tokens})
        try:
            self.rotate(port, tokens)
        except Exception:
            print(self.rv.log_text()[-8000:])
            raise

    def rv_dir(self):
        d = os.path.join('/tmp', 'rvenv-' + uuid.uuid4().hex[:8])
        os.mkdir(d, 0o700)
        self.addCleanup(subprocess.run, ['rm', '-rf', d], check=False)
        return d

    def reloaded(self, count, tokens):
        """Wait for the renderer's reload number count, and check it took tokens."""
        wait_until(lambda: len(self.rv.child_records('renderer', 'renderer config reloaded')) >= count, 20,
                   what='renderer reload %d' % count)
        rec = self.rv.child_records('renderer', 'renderer config reloaded')[count - 1][1]
        self.assertEqual(rec.get('tokens'), str(tokens))

    def rotate(self, port, tokens):
        self.wait_ready(port)
        renderer_pid = self.rv.pid('renderer')
        exporter_pid = self.rv.pid('exporter')
        self.assertEqual(self.render(port, 'old-token')[0], 200)
        self.assertEqual(self.render(port, 'new-token')[0], 401)

        current = {'token': 'old-token'}
        results = []   # (token, status, is png)
        stop = threading.Event()

        def client():
            while not stop.is_set():
                token = current['token']
                try:
                    status, _, body = self.render(port, token)
                    results.append((token, status, body.startswith(PNG)))
                except OSError as e:
                    results.append((token, repr(e), False))

        clients = [threading.Thread(target=client) for _ in range(2)]
        for c in clients:
            c.start()
        try:
            wait_until(lambda: len(results) >= 4, 60, what='renders with the old token')
            # {old} -> {old, new}, SIGHUP: both pass while clients move over
            write_tokens(tokens, ['old-token', 'new-token'])
            self.rv.signal(signal.SIGHUP)
            self.reloaded(1, 2)
            self.assertTrue(self.rv.records('reload passed on', child='renderer'))
            self.assertEqual(self.render(port, 'old-token')[0], 200)
            self.assertEqual(self.render(port, 'new-token')[0], 200)
            current['token'] = 'new-token'
            n = len(results)
            wait_until(lambda: len(results) >= n + 4, 60, what='renders with the new token')
            # {new}, SIGHUP: the old token is refused
            write_tokens(tokens, ['new-token'])
            self.rv.signal(signal.SIGHUP)
            self.reloaded(2, 1)
            n = len(results)
            wait_until(lambda: len(results) >= n + 2, 60, what='renders after the old token went')
        finally:
            stop.set()
            for c in clients:
                c.join(60)
        self.assertEqual(self.render(port, 'old-token')[0], 401)
        self.assertEqual(self.render(port, 'new-token')[0], 200)
        failed = [r for r in results if r[1] != 200 or not r[2]]
        self.assertEqual(failed, [], 'renders failed during the rotation')
        self.assertGreaterEqual(len([r for r in results if r[0] == 'new-token']), 6)

        # a file others may read: the supervisor's reload and the renderer's
        # own are refused, and the running token stays
        write_tokens(tokens, ['bad-token'], 0o644)
        self.rv.signal(signal.SIGHUP)
        wait_until(lambda: any('others may read it (mode 0644)' in f.get('reason', '')
                               for _, f in self.rv.records('config reload refused, keeping the running config')),
                   20, what='the supervisor refusing the reload')
        os.kill(renderer_pid, signal.SIGHUP)
        wait_until(lambda: any('others may read it (mode 0644)' in f.get('reason', '') for _, f in self.rv.child_records(
            'renderer', 'config reload refused, keeping the running tokens and certificate')), 20,
            what='the renderer refusing the reload')
        self.assertEqual(self.render(port, 'new-token')[0], 200)
        self.assertEqual(self.render(port, 'bad-token')[0], 401)
        # one renderer, never restarted
        self.assertEqual(len(self.rv.starts('renderer')), 1)
        self.assertEqual(self.rv.pid('renderer'), renderer_pid)
        self.assertFalse(self.rv.records('child settings changed, restarting'))
        # the exporter got the reloads too, and read the config again in place
        self.assertGreaterEqual(len(self.rv.child_records('exporter', 'exporter config reloaded')), 2)
        self.assertEqual(len(self.rv.starts('exporter')), 1)
        self.assertEqual(self.rv.pid('exporter'), exporter_pid)


if __name__ == '__main__':
    unittest.main()
