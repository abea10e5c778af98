"""The container image (issue 15): deploy/container/build-image.sh builds it
(or keeps the image already built from the same inputs), podman runs it with
runc and explicit ulimits, and it is checked as an operator would: the
image's settings, a render of a Grafana-like page served from the host
answers 200 with every panel drawn on a read-only root file system (the
font cache built into the image is valid), /metrics answers and counts it, the
supervisor is PID 1 and root while the exporter, the renderer and every
browser process run as the image's user `rendervisor`, Chromium's sandbox is
on (its renderers in user namespaces of their own, under a seccomp filter of
Chromium's on top of podman's), a browser killed with its descendants is
reaped and restarted, and SIGTERM with a render in flight lets it finish
(the renderer's drain) and stops the container within the grace period with
exit code 0, leaving no process on the host.

Needs root and podman (scripts/install-deps.sh); a first build takes about a
minute (mmdebstrap), a run about 30 s."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

SOURCE = os.environ.get('RV_SOURCE', os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))
BUILD = os.environ.get('RV_BUILD', os.path.join(SOURCE, 'build'))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
from harness import cgroup_pids, cmdline, free_port, http_get, process_tree, start_time, wait_until  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402
from test_readiness import WIDTH, HEIGHT, case, png_problems  # noqa: E402

SCRIPT = os.path.join(SOURCE, 'deploy', 'container', 'build-image.sh')
CONFIG = '/etc/rendervisor/rendervisor.ini'
GRACE_S = 30          # Kubernetes' default terminationGracePeriodSeconds
ULIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096']
TOKEN = '-'           # the image's configuration keeps Grafana's default token
CASE = case('container-slow', 'n=4&q1=250&q2=900&q3=400', n=4)
SLOW = case('container-stop', 'n=2&q1=3000', n=2)    # one query of 3 s


def podman(*args, check=True, timeout=120):
    r = subprocess.run(['podman'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError('podman %s failed (%d): %s' % (' '.join(args), r.returncode, r.stderr.strip()))
    return r.stdout.strip()


def status_of(pid):
    """{key: value} of /proc/PID/status, or None when the process is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)
    except OSError:
        return None


def container_logs(name):
    """A container's output (the supervisor logs to stderr)."""
    return subprocess.run(['podman', 'logs', name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=30).stdout


def userns(pid):
    try:
        return os.readlink('/proc/%d/ns/user' % pid)
    except OSError:
        return None


_image = []


def image():
    """The image's name, from build-image.sh: built once per run of this file
    (kept as it is when an image of the same inputs exists)."""
    if not _image:
        for tool in ('podman', 'mmdebstrap', 'runc'):
            if not shutil.which(tool):
                raise AssertionError('%s is not installed: run scripts/install-deps.sh' % tool)
        t0 = time.monotonic()
        r = subprocess.run([SCRIPT, BUILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        if r.returncode != 0:
            raise AssertionError('build-image.sh failed (%d):\n%s' % (r.returncode, r.stderr[-4000:]))
        _image.append(r.stdout.strip().splitlines()[-1])
        print('image %s ready in %.0f s: %s' % (_image[0], time.monotonic() - t0, r.stderr.strip().splitlines()[-1]))
    return _image[0]


def docker_like_seccomp(path):
    """podman's default seccomp profile with the three rules of Docker's
    default profile (moby's profiles/seccomp/default.json, which containerd's
    RuntimeDefault follows) that touch namespaces, for a container without
    CAP_SYS_ADMIN: clone() only without namespace flags, clone3() ENOSYS,
    unshare() and setns() refused; EPERM for what is not allowed."""
    with open('/usr/share/containers/seccomp.json') as f:
        prof = json.load(f)
    gated = ('clone', 'clone3', 'unshare', 'setns')
    for rule in prof['syscalls']:
        if rule['action'] == 'SCMP_ACT_ALLOW' and not (rule.get('args') or rule.get('includes') or rule.get('excludes')):
            rule['names'] = [n for n in rule['names'] if n not in gated]
    namespaces = 0x7E020000   # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
    prof['syscalls'] += [
        {'names': ['clone'], 'action': 'SCMP_ACT_ALLOW',
         'args': [{'index': 0, 'value': namespaces, 'valueTwo': 0, 'op': 'SCMP_CMP_MASKED_EQ'}]},
        {'names': ['clone3'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38},
    ]
    prof['defaultErrnoRet'] = 1
    with open(path, 'w') as f:
        json.dump(prof, f)


@unittest.skipUnless(os.geteuid() == 0, 'needs root (rootful podman, mmdebstrap)')
class ContainerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = 'rv-test-%s' % uuid.uuid4().hex[:10]
        cls.cid = None
        cls.web = None
        cls.image = image()
        cls.port, cls.metrics_port = free_port(), free_port()
        try:
            # a read-only root file system, as the Kubernetes manifests give
            # it (podman adds tmpfs on /run, /tmp and /var/tmp)
            cls.cid = podman('run', '-d', '--name', cls.name, '--runtime', 'runc', *ULIMITS, '--read-only',
                             '-p', '127.0.0.1:%d:8081' % cls.port, '-p', '127.0.0.1:%d:9465' % cls.metrics_port,
                             cls.image)
            cls.pid1 = int(podman('inspect', '--format', '{{.State.Pid}}', cls.name))
            # the Grafana-like site, on the address the container reaches the host by
            gateway = podman('exec', cls.name, 'sh', '-c',
                             "awk '$2 == \"host.containers.internal\" { print $1 }' /etc/hosts")
            if not gateway:
                raise AssertionError('no host.containers.internal in the container\'s /etc/hosts')
            Site.stopping.clear()
            cls.web = SiteServer((gateway, 0), Site)
            threading.Thread(target=cls.web.serve_forever, daemon=True).start()
            cls.site = 'http://host.containers.internal:%d' % cls.web.server_address[1]
            wait_until(lambda: b'2 of 2' in cls.healthz(), 90, interval=0.2,
                       what='the renderer in the container connected to both browsers')
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def healthz(cls):
        try:
            return http_get(cls.port, '/healthz', timeout=5)[2]
        except OSError:
            return b''

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        if cls.web:
            cls.web.shutdown()
            cls.web.server_close()
        podman('rm', '--force', '--time', '0', cls.name, check=False)

    def logs(self):
        return container_logs(self.name)

    def tree(self):
        """(pid, uid, argv, {status}) of every process in the container, read
        from the host's /proc."""
        out = []
        for pid in cgroup_pids(self.cid):
            st, cmd = status_of(pid), cmdline(pid)
            if st is not None:
                out.append((pid, int(st['Uid'].split()[0]), cmd, st))
        return out

    def render(self, c=CASE):
        url = '%s/d/fx-%s/fixture?orgId=1&from=now-6h&to=now&kiosk&%s&render=1' % (self.site, c['name'], c['query'])
        params = {'url': url, 'renderKey': uuid.uuid4().hex, 'width': str(WIDTH), 'height': str(HEIGHT),
                  'domain': 'host.containers.internal', 'timezone': 'Europe/Paris', 'encoding': 'png',
                  'timeout': '15', 'deviceScaleFactor': '%f' % 1.0}
        query = urllib.parse.urlencode(sorted(params.items()))
        return http_get(self.port, '/render?' + query, {'X-Auth-Token': TOKEN, 'User-Agent': 'Grafana/11.3.0'},
                        timeout=40)

    def in_flight(self):
        """Renders in flight, as /metrics says."""
        text = http_get(self.metrics_port, '/metrics', timeout=5)[2].decode()
        return sum(float(x.split()[-1]) for x in text.splitlines()
                   if x.startswith('grafana_image_renderer_http_request_in_flight '))

    def test_1_image_settings(self):
        fmt = '{{json .Config.Entrypoint}} {{.Config.StopSignal}} {{json .Config.ExposedPorts}}'
        out = podman('image', 'inspect', '--format', fmt, self.image)
        self.assertIn('"--config","%s"]' % CONFIG, out, 'the entrypoint runs the supervisor with the shipped config')
        self.assertIn('rendervisor', out.split()[0])
        self.assertIn('8081/tcp', out)
        self.assertIn('9465/tcp', out)
        self.assertIn(' 15 ', out, 'STOPSIGNAL is SIGTERM (15): %s' % out)
        label = podman('image', 'inspect', '--format', '{{index .Labels "rendervisor.inputs"}}', self.image)
        self.assertRegex(label, '^[0-9a-f]{64}$', 'the image carries the hash of its inputs')
        shipped = podman('exec', self.name, 'cat', CONFIG)
        with open(os.path.join(SOURCE, 'deploy', 'kubernetes', 'base', 'rendervisor.ini')) as f:
            self.assertEqual(shipped.strip(), f.read().strip(),
                             '%s in the image is not deploy/kubernetes/base/rendervisor.ini' % CONFIG)
        # deploy/compose's configuration passes the image's own --check-config
        compose_ini = os.path.join(SOURCE, 'deploy', 'compose', 'rendervisor.ini')
        supervisor = json.loads(podman('image', 'inspect', '--format', '{{json .Config.Entrypoint}}', self.image))[0]
        r = subprocess.run(['podman', 'run', '--rm', '--runtime', 'runc', *ULIMITS, '--network', 'none',
                            '-v', '%s:%s:ro' % (compose_ini, CONFIG), '--entrypoint', supervisor,
                            self.image, '--check-config', CONFIG],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, 'deploy/compose/rendervisor.ini fails --check-config in the image:\n' + r.stdout)

    def test_2_render_and_metrics(self):
        status, headers, body = self.render()
        self.assertEqual(status, 200, 'render through the container answered %d: %r' % (status, body[:300]))
        self.assertTrue(body.startswith(b'\x89PNG'), 'the render is not a PNG: %r' % body[:40])
        self.assertEqual(png_problems(CASE, body), [], 'the picture rendered in the container')
        status, _, bad = http_get(self.port, '/render?url=' + urllib.parse.quote(self.site + '/plain.html'),
                                  {'X-Auth-Token': 'wrong'}, timeout=20)
        self.assertEqual(status, 401, 'a wrong X-Auth-Token answered %d: %r' % (status, bad[:200]))
        status, _, metrics = http_get(self.metrics_port, '/metrics', timeout=10)
        self.assertEqual(status, 200, '/metrics on 9465 answered %d' % status)
        text = metrics.decode()
        line = 'grafana_image_renderer_service_http_request_duration_seconds_count{status_code="200"}'
        counts = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
        self.assertTrue(counts and counts[0] >= 1, '/metrics does not count the render: %s' % counts)
        self.assertIn('rendervisor_', text)

    def test_3_users_and_sandbox(self):
        uid = int(podman('exec', self.name, 'id', '-u', 'rendervisor'))
        self.assertNotEqual(uid, 0)
        procs = self.tree()
        self.assertIn(self.pid1, [p[0] for p in procs], 'PID 1 is not in the container\'s cgroup')
        by_pid = {p[0]: p for p in procs}
        self.assertIn('/rendervisor --config %s' % CONFIG, by_pid[self.pid1][2])
        self.assertEqual(by_pid[self.pid1][1], 0, 'the supervisor (PID 1) runs as root')
        children = [p for p in procs if 'rendervisor --config' not in p[2]]
        kinds = {'exporter': 0, 'renderer': 0, 'browser': 0}
        for pid, puid, cmd, _ in children:
            self.assertEqual(puid, uid, 'process %d (%s) runs as uid %d, not rendervisor (%d)'
                             % (pid, cmd[:120], puid, uid))
            if cmd.startswith('rendervisor-exporter'):
                kinds['exporter'] += 1
            elif cmd.startswith('rendervisor-renderer'):
                kinds['renderer'] += 1
            elif 'chromium-headless-shell' in cmd:
                kinds['browser'] += 1
        self.assertEqual(kinds['exporter'], 1, kinds)
        self.assertEqual(kinds['renderer'], 1, kinds)
        self.assertGreaterEqual(kinds['browser'], 2, kinds)
        # the sandbox: Chromium's renderer processes sit in user namespaces
        # of their own, under one more seccomp filter than the browser
        browsers = [p for p in children if 'chromium-headless-shell' in p[2] and '--type=' not in p[2]]
        renderers = [p for p in children if '--type=renderer' in p[2]]
        self.assertTrue(renderers, 'no Chromium renderer process (a page was rendered)')
        base_filters = int(browsers[0][3].get('Seccomp_filters', '0'))
        for pid, _, cmd, st in renderers:
            self.assertNotEqual(userns(pid), userns(self.pid1),
                                'Chromium renderer %d is in the container\'s user namespace: no sandbox' % pid)
            self.assertEqual(st['Seccomp'], '2')
            self.assertGreater(int(st.get('Seccomp_filters', '0')), base_filters,
                               'Chromium renderer %d has no seccomp filter of its own' % pid)
        self.assertNotIn('--no-sandbox', ' '.join(p[2] for p in children))
        logs = self.logs()
        self.assertNotIn("sandbox is off", logs)
        # the font cache in the image is valid: no browser rescans the fonts
        for complaint in ('Fontconfig error', 'Read-only file system'):
            self.assertNotIn(complaint, logs, 'the browsers on a read-only root file system')

    def test_4_reaps_a_killed_browser(self):
        procs = self.tree()
        browser = next(p for p in procs if 'chromium-headless-shell' in p[2] and '--type=' not in p[2])
        # the processes under the browser (zygotes, renderers, utilities),
        # as (pid, start time), which tells them from a later pid's owner
        descendants = {(pid, start_time(pid)) for pid in process_tree(browser[0])[1:]}
        self.assertTrue(descendants, 'browser %d has no process under it' % browser[0])
        os.kill(browser[0], 9)

        def settled():
            tree = self.tree()
            zombies = [p for p in tree if p[3]['State'].startswith('Z')]
            left = [pid for pid, st in descendants if start_time(pid) == st]
            return (not zombies and not left and browser[0] not in [p[0] for p in tree]
                    and b'2 of 2' in self.healthz())
        wait_until(settled, 60, interval=0.2,
                   what='the killed browser and every process under it gone (no zombie in the container), '
                        'and a new browser connected')
        status, _, body = self.render()
        self.assertEqual(status, 200, 'render after a browser restart answered %d: %r' % (status, body[:300]))

    def test_5_sigterm(self):
        # (pid, start time, argv) of each process, which identify it across pid reuse;
        # one that ends before its start time is read is not counted
        before = [(p[0], start_time(p[0]), p[2]) for p in self.tree()]
        before = [b for b in before if b[1] is not None]
        self.assertGreaterEqual(len(before), 6)
        # a render in flight when SIGTERM comes is finished (the renderer's
        # drain, docs/supervisor.md "Shutdown") before the container exits
        result = {}

        def slow_render():
            result['r'] = self.render(SLOW)
        th = threading.Thread(target=slow_render)
        th.start()
        wait_until(self.in_flight, 2.5, interval=0.05, what='the slow render in flight (/metrics)')
        t0 = time.monotonic()
        podman('kill', '--signal', 'TERM', self.name)

        def stopped():
            return podman('inspect', '--format', '{{.State.Status}}', self.name) in ('exited', 'stopped')
        wait_until(stopped, GRACE_S, interval=0.1, what='the container stopped on SIGTERM within %d s' % GRACE_S)
        took = time.monotonic() - t0
        th.join(40)
        status, _, body = result['r']
        self.assertEqual(status, 200, 'the render in flight at SIGTERM answered %d: %r' % (status, body[:200]))
        self.assertEqual(png_problems(SLOW, body), [], 'the render in flight at SIGTERM')
        code = int(podman('inspect', '--format', '{{.State.ExitCode}}', self.name))
        self.assertEqual(code, 0, 'the supervisor exited %d on SIGTERM:\n%s' % (code, self.logs()[-3000:]))

        def left():
            return [(pid, cmd[:100], status_of(pid) and status_of(pid).get('State'))
                    for pid, st, cmd in before if start_time(pid) == st]
        self.assertEqual(left(), [], 'processes of the container still on the host after its exit')
        self.assertEqual(cgroup_pids(self.cid), [], 'processes still in the container\'s cgroup')
        self.assertIn('all children stopped, exiting', self.logs())
        print('stopped in %.1f s, exit 0' % took)


@unittest.skipUnless(os.geteuid() == 0, 'needs root (rootful podman, mmdebstrap)')
class SeccompTest(unittest.TestCase):
    """The sandbox decision's evidence (docs/install.md, "Chromium's sandbox
    in a container"): with Docker's namespace rules the browsers cannot
    start; with seccomp=unconfined (what deploy/compose and the Kubernetes
    manifests set) they do, sandboxed by Chromium's own filter."""

    def run_image(self, seccomp):
        name = 'rv-test-%s' % uuid.uuid4().hex[:10]
        self.addCleanup(podman, 'rm', '--force', '--time', '0', name, check=False)
        port = free_port()
        cid = podman('run', '-d', '--name', name, '--runtime', 'runc', *ULIMITS, '--security-opt',
                     'seccomp=' + seccomp, '-p', '127.0.0.1:%d:8081' % port, image())
        return name, cid, port

    def test_docker_rules_stop_the_browsers(self):
        with tempfile.NamedTemporaryFile(suffix='.json') as prof:
            docker_like_seccomp(prof.name)
            name, cid, port = self.run_image(prof.name)
            wait_until(lambda: container_logs(name).count('"child killed","child":"browser-0"') >= 2, 30,
                       interval=0.2, what='browser-0 dying at start under Docker\'s namespace rules')
            status, _, body = http_get(port, '/healthz', timeout=5)
            self.assertEqual(status, 503, 'healthz %d %r with browsers that cannot start' % (status, body))
            self.assertIn(b'0 of 2', body)
            self.assertIn('FATAL:sandbox/linux', container_logs(name))

    def test_unconfined_keeps_the_sandbox(self):
        name, cid, port = self.run_image('unconfined')
        wait_until(lambda: b'2 of 2' in http_get(port, '/healthz', timeout=5)[2], 60, interval=0.2,
                   what='both browsers connected with seccomp=unconfined')
        status, _, body = http_get(port, '/render?url=http://127.0.0.1:9465/&width=400&height=300',
                                   {'X-Auth-Token': TOKEN}, timeout=40)
        self.assertEqual(status, 200, 'render with seccomp=unconfined answered %d: %r' % (status, body[:200]))
        pid1 = int(podman('inspect', '--format', '{{.State.Pid}}', name))
        renderers = [p for p in cgroup_pids(cid) if '--type=renderer' in cmdline(p)]
        self.assertTrue(renderers, 'no Chromium renderer process')
        for pid in renderers:
            st = status_of(pid)
            self.assertNotEqual(userns(pid), userns(pid1), 'renderer %d shares the container\'s user namespace' % pid)
            self.assertEqual(st['Seccomp'], '2', 'renderer %d has no seccomp filter of Chromium\'s' % pid)
        self.assertEqual(status_of(pid1)['Seccomp'], '0', 'PID 1 is filtered: not unconfined')


if __name__ == '__main__':
    unittest.main()
