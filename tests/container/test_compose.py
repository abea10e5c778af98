"""deploy/compose/compose.yaml (issue 15) agrees with the image and with the
configuration it mounts: no Grafana image can be pulled here, so the file is
checked instead of run. The renderer service runs rendervisor:<project
version> with explicit ulimits and the mounted rendervisor.ini at the path
the image's entrypoint reads; Grafana's GF_RENDERING_SERVER_URL names the
renderer service, the port its [renderer] listen uses and /render; its
GF_RENDERING_CALLBACK_URL names the Grafana service on its port and is in
allowed_hosts; GF_RENDERING_RENDERER_TOKEN is the [renderer] auth_token
(not Grafana's default '-'); and the mounted rendervisor.ini differs from
the image's own (deploy/kubernetes/base/rendervisor.ini) only in those two
keys; its stop_grace_period holds drain_timeout + 2 x stop_timeout; the
renderer's seccomp is not Docker's default, which Chromium's
sandbox cannot work under (docs/install.md). Each check is also run on a
broken copy, which it must catch."""
import configparser
import copy
import os
import re
import unittest
import urllib.parse

import yaml

SOURCE = os.environ.get('RV_SOURCE', os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))
COMPOSE = os.path.join(SOURCE, 'deploy', 'compose', 'compose.yaml')
BASE_INI = os.path.join(SOURCE, 'deploy', 'kubernetes', 'base', 'rendervisor.ini')
BUILD_SCRIPT = os.path.join(SOURCE, 'deploy', 'container', 'build-image.sh')
CHANGED_KEYS = {('renderer', 'auth_token'), ('renderer', 'allowed_hosts')}


def project_version():
    with open(os.path.join(SOURCE, 'meson.build')) as f:
        return re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)


def entrypoint_config():
    """The --config path of the image's ENTRYPOINT in build-image.sh."""
    with open(BUILD_SCRIPT) as f:
        m = re.search(r'ENTRYPOINT \[.*--config\\", \\"([^"\\]+)\\"\]', f.read())
    assert m, 'no ENTRYPOINT with --config in build-image.sh'
    return m.group(1)


def read_ini(path):
    # inline comments start with ' ;' as inih takes them; continuation lines
    # (the browser command) are indented
    p = configparser.ConfigParser(inline_comment_prefixes=(';',), interpolation=None, strict=True)
    with open(path) as f:
        p.read_file(f)
    return {(s, k): v for s in p.sections() for k, v in p.items(s)}


def host_port(netloc, default):
    host, _, port = netloc.rpartition(':')
    return (host, int(port)) if host else (netloc, default)


def problems(compose, ini, base, version, config_path):
    """What is inconsistent in a compose file (parsed) with its mounted ini."""
    bad = []
    services = compose.get('services', {})
    renderer = next((n for n, s in services.items() if str(s.get('image', '')).split('/')[-1].startswith('rendervisor:')), None)
    grafana = next((n for n, s in services.items() if 'GF_RENDERING_SERVER_URL' in (s.get('environment') or {})), None)
    if renderer is None:
        return ['no service runs the rendervisor image']
    if grafana is None:
        return ['no service sets GF_RENDERING_SERVER_URL']
    r, g = services[renderer], services[grafana]
    if r['image'].split('/')[-1] != 'rendervisor:%s' % version:
        bad.append('renderer image %s is not rendervisor:%s' % (r['image'], version))
    ulimits = r.get('ulimits') or {}
    for name in ('nofile', 'nproc'):
        if not isinstance(ulimits.get(name), dict) or 'soft' not in ulimits[name] or 'hard' not in ulimits[name]:
            bad.append('renderer has no explicit ulimits.%s soft/hard' % name)
    mounts = [v.split(':') for v in r.get('volumes', [])]
    if not any(m[1] == config_path for m in mounts if len(m) >= 2):
        bad.append('renderer mounts nothing at %s, the path its entrypoint reads' % config_path)
    # Chromium's sandbox needs namespaces Docker's default seccomp refuses
    # (docs/install.md): unconfined or a profile file, or --no-sandbox
    # ('builtin' names Docker's default: moby's SeccompProfileDefault)
    seccomp = [o for o in r.get('security_opt', []) if o.startswith('seccomp')
               and o[len('seccomp') + 1:] != 'builtin']
    if not seccomp and '--no-sandbox' not in ini.get(('browsers', 'command'), ''):
        bad.append('renderer has Docker\'s default seccomp profile, under which the sandboxed browsers cannot start')
    # the whole stop (docs/supervisor.md, "Shutdown") fits the grace period
    def seconds(v):
        m = re.fullmatch(r'(\d+)(ms|s|m)', str(v).strip())
        return int(m.group(1)) * {'ms': 0.001, 's': 1, 'm': 60}[m.group(2)] if m else None
    stop = seconds(ini.get(('renderer', 'drain_timeout'), '15s')) + 2 * seconds(ini.get(('supervisor', 'stop_timeout'), '5s'))
    grace = seconds(r.get('stop_grace_period', '10s'))
    if grace is None or grace < stop:
        bad.append('stop_grace_period %s is shorter than drain_timeout + 2 x stop_timeout (%g s)'
                   % (r.get('stop_grace_period', '10s (the default)'), stop))
    env = g['environment']
    listen_port = int(ini[('renderer', 'listen')].rsplit(':', 1)[1])
    server = urllib.parse.urlsplit(env.get('GF_RENDERING_SERVER_URL', ''))
    shost, sport = host_port(server.netloc, 80)
    if (shost, sport, server.path) != (renderer, listen_port, '/render'):
        bad.append('GF_RENDERING_SERVER_URL %s is not http://%s:%d/render' % (env.get('GF_RENDERING_SERVER_URL'),
                                                                              renderer, listen_port))
    callback = urllib.parse.urlsplit(env.get('GF_RENDERING_CALLBACK_URL', ''))
    chost, cport = host_port(callback.netloc, 80)
    gport = int(env.get('GF_SERVER_HTTP_PORT', 3000))
    if (chost, cport) != (grafana, gport):
        bad.append('GF_RENDERING_CALLBACK_URL %s is not Grafana\'s service %s:%d'
                   % (env.get('GF_RENDERING_CALLBACK_URL'), grafana, gport))
    allowed = ini.get(('renderer', 'allowed_hosts'), '').split()
    if allowed and '%s:%d' % (chost, cport) not in allowed and chost not in allowed:
        bad.append('allowed_hosts %s does not let the browser open %s' % (allowed, callback.netloc))
    token = env.get('GF_RENDERING_RENDERER_TOKEN')
    if token != ini.get(('renderer', 'auth_token')):
        bad.append('GF_RENDERING_RENDERER_TOKEN %r is not [renderer] auth_token %r'
                   % (token, ini.get(('renderer', 'auth_token'))))
    if token in (None, '-'):
        bad.append('the token is Grafana\'s default %r' % token)
    for key in sorted(set(ini) | set(base)):
        if key not in CHANGED_KEYS and ini.get(key) != base.get(key):
            bad.append('%s.%s is %r in the mounted ini, %r in the image\'s' % (key[0], key[1], ini.get(key), base.get(key)))
    return bad


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(COMPOSE) as f:
            cls.compose = yaml.safe_load(f)
        renderer = cls.compose['services']['renderer']
        source = renderer['volumes'][0].split(':')[0]
        cls.ini_path = os.path.join(os.path.dirname(COMPOSE), source)
        cls.ini = read_ini(cls.ini_path)
        cls.base = read_ini(BASE_INI)
        cls.version = project_version()
        cls.config_path = entrypoint_config()

    def check(self, compose=None, ini=None):
        return problems(compose or self.compose, ini or self.ini, self.base, self.version, self.config_path)

    def test_consistent(self):
        self.assertEqual(self.check(), [], 'deploy/compose/compose.yaml and its rendervisor.ini disagree')

    def test_catches_breakage(self):
        def broken(fn):
            c, i = copy.deepcopy(self.compose), dict(self.ini)
            fn(c, i)
            return self.check(c, i)
        grafana_env = lambda c: c['services']['grafana']['environment']  # noqa: E731
        cases = {
            'image': lambda c, i: c['services']['renderer'].__setitem__('image', 'rendervisor:0.0.9'),
            'server url port': lambda c, i: grafana_env(c).__setitem__('GF_RENDERING_SERVER_URL', 'http://renderer:8080/render'),
            'server url host': lambda c, i: grafana_env(c).__setitem__('GF_RENDERING_SERVER_URL', 'http://rv:8081/render'),
            'callback': lambda c, i: grafana_env(c).__setitem__('GF_RENDERING_CALLBACK_URL', 'http://localhost:3000/'),
            'token': lambda c, i: grafana_env(c).__setitem__('GF_RENDERING_RENDERER_TOKEN', 'other'),
            'default token': lambda c, i: (grafana_env(c).__setitem__('GF_RENDERING_RENDERER_TOKEN', '-'),
                                           i.__setitem__(('renderer', 'auth_token'), '-')),
            'listen': lambda c, i: i.__setitem__(('renderer', 'listen'), '0.0.0.0:9000'),
            'ini drift': lambda c, i: i.__setitem__(('browsers', 'count'), '3'),
            'ulimits': lambda c, i: c['services']['renderer'].pop('ulimits'),
            'mount': lambda c, i: c['services']['renderer'].__setitem__('volumes', ['./x.ini:/etc/x.ini:ro']),
            'seccomp': lambda c, i: c['services']['renderer'].pop('security_opt'),
            'seccomp builtin': lambda c, i: c['services']['renderer'].__setitem__('security_opt', ['seccomp=builtin']),
            'grace': lambda c, i: c['services']['renderer'].__setitem__('stop_grace_period', '20s'),
            'no grace': lambda c, i: c['services']['renderer'].pop('stop_grace_period'),
            'allowed_hosts': lambda c, i: i.__setitem__(('renderer', 'allowed_hosts'), 'grafana.example.com'),
        }
        for name, fn in cases.items():
            with self.subTest(name):
                self.assertNotEqual(broken(fn), [], 'a broken %s went unnoticed' % name)

    def test_ini_readable_by_the_image_user(self):
        # the image's own supervisor --check-configs it in test_container.py
        self.assertTrue(os.stat(self.ini_path).st_mode & 0o004,
                        '%s is not readable by others (uid 999 in the image)' % self.ini_path)


if __name__ == '__main__':
    unittest.main()
