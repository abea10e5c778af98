"""The Debian package (issue 16, docs/install.md "From the Debian package"):
deploy/debian/build-deb.sh builds it from a copy of this tree, and it is
installed, used, upgraded and purged in a Debian 12 container whose PID 1 is
systemd, as on an operator's host: after `dpkg -i` the unit is enabled and
inactive, the user exists, the configuration holds a token of its own and is
closed to others; `systemctl start` makes the service active, a render of a
Grafana-like page served from the host answers 200 with every panel drawn over
the configured port, the metrics answer and count it, `systemd-analyze
verify` prints nothing; an upgrade keeps the configuration and restarts the
service; `dpkg --purge` stops it, removes the unit and the user, and leaves
the container's files as they were before the install.

The container (podman with runc, systemd as PID 1) is made by mmdebstrap from
this machine's apt sources with systemd and the package's dependencies
preinstalled, so `dpkg -i` needs no network; it is kept as an image named by
the hash of its inputs and built again only when they change. Needs root,
podman, runc, mmdebstrap, dpkg-dev and debhelper (scripts/install-deps.sh).
About 3-4 minutes with a fresh image, 1.5 without."""
import hashlib
import os
import re
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
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'integration'))
sys.path.insert(0, os.path.join(SOURCE, 'tests', 'install'))
from harness import free_port, http_get, wait_until  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402
from test_readiness import WIDTH, HEIGHT, case, png_problems  # noqa: E402
from test_install import documented_paths  # noqa: E402

BUILD_DEB = os.path.join(SOURCE, 'deploy', 'debian', 'build-deb.sh')
CONFIG = '/etc/rendervisor/rendervisor.ini'
TOKENS = '/etc/rendervisor/tokens'
UNIT = 'rendervisor.service'
IMAGE = 'localhost/rendervisor-systemd'
# Podman's default limits are above what these machines allow (docs/install.md,
# "In a container"). CAP_SYS_ADMIN: systemd sets up the unit's sandboxing
# (ProtectSystem=, PrivateTmp=, ...) in a mount namespace, which it cannot
# make without it ("Failed to set up mount namespacing: Operation not
# supported", status=226/NAMESPACE).
RUN_OPTS = ['--runtime', 'runc', '--systemd=always', '--cap-add', 'SYS_ADMIN',
            '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096']
# What the container image adds to the package's dependencies: systemd as
# init, curl to reach the listeners on the container's loopback, man-db as an
# operator's host has it (systemd-analyze verify checks Documentation=).
IMAGE_EXTRA = ['systemd', 'systemd-sysv', 'curl', 'man-db']
CASE = case('package', 'n=3&q1=200&q2=400', n=3)
# What the file listings before the install and after the purge leave out:
# the kernel's and the runtime's file systems, the test's own /tmp, logs
# (dpkg's, the journal), man-db's index (its dpkg trigger runs at both), and
# the backups shadow's tools keep of /etc/passwd, group, shadow and gshadow
# (rewritten by every user change; the files themselves are compared, by
# content).
LISTING = r'''find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \
  -o -path /var/log -o -path /var/cache/man -o -path /etc/passwd- -o -path /etc/group- \
  -o -path /etc/shadow- -o -path /etc/gshadow- \) -prune -o -printf '%p %y %m %u %g %l\n' | LC_ALL=C sort
cat /etc/passwd /etc/group /etc/shadow /etc/gshadow'''


def run(cmd, check=True, timeout=120, input=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s%s' % (' '.join(cmd), r.returncode, r.stdout[-2000:],
                                                      r.stderr[-3000:]))
    return r


def podman(*args, **kw):
    return run(['podman'] + list(args), **kw).stdout.strip()


def depends(deb):
    """The first alternative of each of the .deb's Depends, without versions."""
    field = run(['dpkg-deb', '-f', deb, 'Depends']).stdout
    return [d.split('|')[0].split('(')[0].strip() for d in field.split(',') if d.strip()]


def apt_sources():
    for f in ('/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'):
        if os.path.isfile(f):
            return f
    raise AssertionError('no apt sources file for mmdebstrap')


def systemd_image(packages):
    """A Debian 12 image with systemd as init and packages installed, named by
    the hash of its inputs (this recipe, the packages, the apt sources and
    this machine's apt lists); built when no image of that name exists."""
    sources = apt_sources()
    h = hashlib.sha256()
    with open(__file__, 'rb') as f:
        recipe = f.read()
    h.update(recipe[recipe.index(b'def systemd_image'):recipe.index(b'@unittest.skipUnless')])
    h.update(' '.join(sorted(packages)).encode())
    with open(sources, 'rb') as f:
        h.update(f.read())
    lists = '/var/lib/apt/lists'
    for name in sorted(os.listdir(lists)):
        if '_Packages' in name:
            with open(os.path.join(lists, name), 'rb') as f:
                h.update(hashlib.sha256(f.read()).digest())
    tag = '%s:%s' % (IMAGE, h.hexdigest()[:16])
    if run(['podman', 'image', 'exists', tag], check=False).returncode == 0:
        print('image %s kept (same inputs)' % tag)
        return tag
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix='rendervisor-systemd-image.', dir='/var/tmp')
    try:
        tar = os.path.join(work, 'rootfs.tar')
        run(['mmdebstrap', '--variant=essential', '--mode=root', '--format=tar',
             '--aptopt=APT::Install-Recommends "false"',
             '--include=' + ','.join(sorted(packages)),
             '--dpkgopt=path-exclude=/usr/share/locale/*',
             '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
             'bookworm', tar, sources], timeout=900)
        old = podman('images', '--format', '{{.Repository}}:{{.Tag}}', IMAGE, check=False).splitlines()
        podman('import', '--change', 'CMD ["/sbin/init"]', '--change', 'STOPSIGNAL SIGRTMIN+3',
               '--change', 'LABEL rendervisor.test=package', tar, tag, timeout=600)
        for o in old:   # images of older inputs, unless a container uses one
            if o != tag:
                podman('rmi', o, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('image %s built in %.0f s' % (tag, time.monotonic() - t0))
    return tag


@unittest.skipUnless(os.geteuid() == 0, 'needs root (rootful podman, mmdebstrap)')
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ('podman', 'runc', 'mmdebstrap', 'dpkg-buildpackage', 'dh'):
            if not shutil.which(tool):
                raise AssertionError('%s is not installed: run scripts/install-deps.sh' % tool)
        cls.name = 'rv-pkg-%s' % uuid.uuid4().hex[:10]
        cls.web = None
        cls.out = tempfile.mkdtemp(prefix='rendervisor-pkg-test.')
        try:
            t0 = time.monotonic()
            r = run([BUILD_DEB, cls.out], timeout=900)
            cls.deb = r.stdout.strip().splitlines()[-1]
            print('%s built in %.0f s' % (os.path.basename(cls.deb), time.monotonic() - t0))
            cls.image = systemd_image(IMAGE_EXTRA + depends(cls.deb))
            cls.port = free_port()
            podman('run', '-d', '--name', cls.name, *RUN_OPTS, '-p', '127.0.0.1:%d:8081' % cls.port, cls.image)
            # systemctl fails until systemd has its socket; then --wait waits
            # for the boot to finish
            states = []

            def booted():
                states.append(cls.sh('systemctl is-system-running --wait', check=False, timeout=120).stdout.strip())
                return states[-1] in ('running', 'degraded')
            try:
                wait_until(booted, 120, interval=0.5, what='systemd in the container to boot')
            except AssertionError as e:
                raise AssertionError('%s: %s\n%s' % (e, states[-3:], cls.sh('systemctl --failed --no-pager',
                                                                          check=False).stdout))
            # the Grafana-like site, on the address the container reaches the host by
            gateway = cls.sh("awk '$2 == \"host.containers.internal\" { print $1 }' /etc/hosts").stdout.strip()
            if not gateway:
                raise AssertionError('no host.containers.internal in the container\'s /etc/hosts')
            Site.stopping.clear()
            cls.web = SiteServer((gateway, 0), Site)
            threading.Thread(target=cls.web.serve_forever, daemon=True).start()
            cls.site = 'http://host.containers.internal:%d' % cls.web.server_address[1]
            cls.before = cls.sh(LISTING).stdout
            podman('cp', cls.deb, '%s:/tmp/rendervisor.deb' % cls.name)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        if cls.web:
            cls.web.shutdown()
            cls.web.server_close()
        podman('rm', '--force', '--time', '0', cls.name, check=False)
        shutil.rmtree(cls.out, ignore_errors=True)

    @classmethod
    def sh(cls, script, check=True, timeout=120):
        return run(['podman', 'exec', cls.name, 'sh', '-c', script], check=check, timeout=timeout)

    def unit_state(self):
        return (self.sh('systemctl is-enabled %s' % UNIT, check=False).stdout.strip(),
                self.sh('systemctl is-active %s' % UNIT, check=False).stdout.strip())

    def token(self):
        lines = [l.strip() for l in self.sh('cat %s' % TOKENS).stdout.splitlines()]
        tokens = [l for l in lines if l and not l.startswith('#')]
        self.assertEqual(len(tokens), 1, '%s: %s' % (TOKENS, lines))
        return tokens[0]

    def main_pid(self):
        return int(self.sh('systemctl show -p MainPID --value %s' % UNIT).stdout.strip())

    def render(self, token):
        url = '%s/d/fx-%s/fixture?orgId=1&from=now-6h&to=now&kiosk&%s&render=1' % (
            self.site, CASE['name'], CASE['query'])
        params = {'url': url, 'renderKey': uuid.uuid4().hex, 'width': str(WIDTH), 'height': str(HEIGHT),
                  'domain': 'host.containers.internal', 'encoding': 'png', 'timeout': '20'}
        return http_get(self.port, '/render?' + urllib.parse.urlencode(sorted(params.items())),
                        {'X-Auth-Token': token, 'User-Agent': 'Grafana/11.3.0'}, timeout=60)

    def test_1_contents(self):
        """The .deb: its version is meson.build's, its dependencies (and the
        libcurl tracing loads, recommended), it holds what `meson install
        --prefix=/usr` installs (docs/install.md's table) with the unit where
        Debian 12's systemd looks, the configuration is its one conffile."""
        with open(os.path.join(SOURCE, 'meson.build')) as f:
            version = re.search(r"version : '([^']+)'", f.read()).group(1)
        self.assertEqual(run(['dpkg-deb', '-f', self.deb, 'Version']).stdout.strip(), version + '-1')
        deps = run(['dpkg-deb', '-f', self.deb, 'Depends']).stdout
        for d in ('chromium-headless-shell | chromium', 'adduser', 'procps', 'fonts-liberation', 'libwebsockets17'):
            self.assertIn(d, deps, 'Depends of the .deb')
        # the renderer loads libcurl with dlopen (tracing), which shlibs cannot see
        self.assertIn('libcurl3-gnutls', run(['dpkg-deb', '-f', self.deb, 'Recommends']).stdout,
                      'Recommends of the .deb')
        tar = subprocess.run('dpkg-deb --fsys-tarfile %s | tar -tvf -' % self.deb, shell=True,
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        paths = set()
        for line in tar.splitlines():
            if line.startswith('-'):
                paths.add(line.split()[-1].lstrip('.'))
        expected = set()
        for p in documented_paths()['/usr']:
            if p.startswith('/usr/lib/systemd/system/'):
                p = p[len('/usr'):]
            elif p.startswith('/usr/share/man/'):
                p += '.gz'
            expected.add(p)
        expected |= {'/usr/share/doc/rendervisor/copyright', '/usr/share/doc/rendervisor/changelog.Debian.gz',
                     '/usr/share/doc/rendervisor/changelog.gz'}
        self.assertEqual(sorted(paths - expected), [], 'in the .deb, not in docs/install.md')
        self.assertEqual(sorted(expected - paths), [], 'in docs/install.md, not in the .deb')
        conffiles = subprocess.run('dpkg-deb --ctrl-tarfile %s | tar -xOf - ./conffiles' % self.deb, shell=True,
                                   stdout=subprocess.PIPE, text=True, check=True).stdout.split()
        self.assertEqual(conffiles, [CONFIG])

    def test_1_build_depends(self):
        """Every dependency() of meson.build is in debian/control's
        Build-Depends: the package of its pkg-config file on this machine."""
        names = set()
        for top, _, files in os.walk(SOURCE):
            if 'meson.build' in files and not top.startswith(os.path.join(SOURCE, 'tests')):
                with open(os.path.join(top, 'meson.build')) as f:
                    names |= set(re.findall(r"\bdependency\('([^']+)'", f.read()))
        names -= {'threads', 'dl'}  # the C library's, no package
        names -= {'cmocka'}       # the tests' only; debian/rules builds without them
        self.assertIn('libwebsockets', names, 'no dependency() found in meson.build')
        with open(os.path.join(SOURCE, 'debian', 'control')) as f:
            control = f.read()
        m = re.search(r'^Build-Depends:(.*?)^\S', control, re.M | re.S)
        build_depends = {d.split('(')[0].strip() for d in m.group(1).split(',')}
        for name in sorted(names):
            pcdir = run(['pkg-config', '--variable=pcfiledir', name]).stdout.strip()
            owner = run(['dpkg-query', '-S', os.path.join(pcdir, name + '.pc')]).stdout.split(':')[0]
            self.assertIn(owner, build_depends, 'meson.build\'s dependency(%r) is %s, not in Build-Depends'
                          % (name, owner))

    def test_2_install(self):
        """dpkg -i: the unit enabled and not started, the user there, the
        conffile as shipped, naming a token file with a generated token,
        mode 0640 root:rendervisor."""
        r = self.sh('dpkg -i /tmp/rendervisor.deb', check=False, timeout=300)
        self.assertEqual(r.returncode, 0, 'dpkg -i failed:\n' + r.stdout + r.stderr)
        self.assertEqual(self.unit_state(), ('enabled', 'inactive'))
        self.assertEqual(self.main_pid(), 0, 'the install started the service')
        user = self.sh('getent passwd rendervisor', check=False).stdout.strip().split(':')
        self.assertEqual(len(user), 7, 'no user rendervisor after the install')
        self.assertLess(int(user[2]), 1000, 'rendervisor is not a system user: %s' % user)
        self.assertEqual(user[6], '/usr/sbin/nologin')
        self.assertEqual(self.sh('stat -c "%a %U %G" ' + CONFIG).stdout.strip(), '644 root root')
        self.assertEqual(self.sh('stat -c "%a %U %G" ' + TOKENS).stdout.strip(), '640 root rendervisor')
        self.assertRegex(self.token(), r'^[0-9a-f]{64}$', 'the install did not generate a token')
        self.assertIn('\nauth_token_file = %s ' % TOKENS, self.sh('cat ' + CONFIG).stdout)
        self.assertEqual(self.sh('cmp %s /usr/share/rendervisor/rendervisor.ini' % CONFIG, check=False).returncode,
                         0, 'the default kept for comparing is not the conffile as shipped')
        self.assertEqual(self.sh('dpkg --verify rendervisor', check=False).stdout, '',
                         'the install changed a file of the package (the conffile)')
        r = self.sh('runuser -u rendervisor -- rendervisor --check-config %s' % CONFIG, check=False)
        self.assertEqual(r.returncode, 0, 'the installed configuration fails --check-config as rendervisor:\n'
                         + r.stdout + r.stderr)

    def test_3_start_and_render(self):
        """systemctl start: active; a render over the configured port, with
        the generated token, draws every panel; a wrong token is refused; the
        metrics count the render; every process runs as rendervisor;
        systemctl reload works; systemd-analyze verify prints nothing."""
        r = self.sh('systemctl start %s' % UNIT, check=False, timeout=120)
        self.assertEqual(r.returncode, 0, 'systemctl start failed:\n%s\n%s' % (
            r.stderr, self.sh('journalctl -u %s --no-pager | tail -n 30' % UNIT, check=False).stdout))
        self.assertEqual(self.unit_state(), ('enabled', 'active'))
        wait_until(lambda: b'2 of 2' in http_get(self.port, '/healthz', timeout=5)[2], 90, interval=0.2,
                   what='the packaged renderer connected to both browsers')
        status, _, body = self.render(self.token())
        self.assertEqual(status, 200, 'render answered %d: %r' % (status, body[:300]))
        self.assertTrue(body.startswith(b'\x89PNG'), 'not a PNG: %r' % body[:40])
        self.assertEqual(png_problems(CASE, body), [], 'the picture rendered by the package')
        status, _, body = self.render('-')
        self.assertEqual(status, 401, 'Grafana\'s default token "-" answered %d: %r' % (status, body[:200]))
        metrics = self.sh('curl -sS -f http://127.0.0.1:9465/metrics').stdout
        line = 'grafana_image_renderer_service_http_request_duration_seconds_count{status_code="200"}'
        counts = [float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)]
        self.assertTrue(counts and counts[0] >= 1, '/metrics does not count the render: %s' % counts)
        uid = self.sh('id -u rendervisor').stdout.strip()
        # the unit's processes: those in its cgroup (of systemd's hierarchy)
        owners = self.sh('for p in /proc/[0-9]*; do grep -qs "/%s$" $p/cgroup && '
                         'echo "$(stat -c %%u $p) $(cat $p/comm)"; done; true' % UNIT).stdout.split('\n')
        owners = [o for o in owners if o.strip()]
        self.assertGreaterEqual(len(owners), 5, 'the unit\'s processes: %s' % owners)
        for o in owners:
            self.assertEqual(o.split()[0], uid, 'a process of the unit not run as rendervisor: %s' % o)
        # ExecReload runs --check-config as rendervisor: the 0640 file must
        # be readable to it, and the reload keeps the supervisor
        pid = self.main_pid()
        r = self.sh('systemctl reload %s' % UNIT, check=False, timeout=120)
        self.assertEqual(r.returncode, 0, 'systemctl reload failed:\n%s\n%s' % (
            r.stderr, self.sh('journalctl -u %s --no-pager | tail -n 20' % UNIT, check=False).stdout))
        self.assertEqual((self.unit_state(), self.main_pid()), (('enabled', 'active'), pid))
        r = self.sh('systemd-analyze verify %s' % UNIT, check=False)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ''), 'systemd-analyze verify')

    def test_4_upgrade(self):
        """A newer version of the same package: the configuration an
        operator edited kept as edited (dpkg asks nothing: the package's
        default did not change), the token file (its token, its mode) kept,
        the running service restarted onto it."""
        token, pid = self.token(), self.main_pid()
        mark = '; edited by the operator before the upgrade %s' % uuid.uuid4().hex
        self.sh("printf '%%s\\n' '%s' >> %s" % (mark, CONFIG))
        edited = self.sh('cat ' + CONFIG).stdout
        self.assertIn('\n' + mark + '\n', edited)
        work = os.path.join(self.out, 'upgrade')
        run(['dpkg-deb', '-R', self.deb, work])
        control = os.path.join(work, 'DEBIAN', 'control')
        with open(control) as f:
            text = f.read()
        with open(control, 'w') as f:
            f.write(re.sub(r'^Version: (\S+)$', r'Version: \g<1>.1', text, flags=re.M))
        newer = os.path.join(self.out, 'newer.deb')
        run(['dpkg-deb', '--root-owner-group', '-b', work, newer])
        podman('cp', newer, '%s:/tmp/newer.deb' % self.name)
        r = self.sh('dpkg -i /tmp/newer.deb', check=False, timeout=300)
        self.assertEqual(r.returncode, 0, 'the upgrade failed:\n' + r.stdout + r.stderr)
        self.assertEqual(self.sh("dpkg-query -W -f '${Version}' rendervisor").stdout.strip(),
                         run(['dpkg-deb', '-f', newer, 'Version']).stdout.strip())
        self.assertEqual(self.sh('cat ' + CONFIG).stdout, edited, 'the upgrade changed the edited configuration')
        self.assertEqual(self.sh('ls /etc/rendervisor').stdout.split(), ['rendervisor.ini', 'tokens'],
                         'the upgrade left a .dpkg-* copy beside the configuration')
        self.assertEqual(self.token(), token, 'the upgrade changed the token')
        self.assertEqual(self.sh('stat -c "%a %U %G" ' + TOKENS).stdout.strip(), '640 root rendervisor')
        self.assertEqual(self.unit_state(), ('enabled', 'active'))
        self.assertNotEqual(self.main_pid(), pid, 'the upgrade did not restart the service')
        wait_until(lambda: b'2 of 2' in http_get(self.port, '/healthz', timeout=5)[2], 90, interval=0.2,
                   what='the upgraded renderer connected to both browsers')

    def test_5_purge(self):
        """dpkg --purge: the service stopped, its processes gone, the unit and
        the user gone, and the files as they were before the install."""
        r = self.sh('dpkg --purge rendervisor', check=False, timeout=300)
        self.assertEqual(r.returncode, 0, 'dpkg --purge failed:\n' + r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), '', 'dpkg --purge complained')
        r = self.sh('systemctl list-unit-files --no-legend %s' % UNIT, check=False)
        self.assertEqual(r.stdout.strip(), '', 'the unit is still known to systemd')
        self.assertEqual(self.sh('systemctl is-active %s' % UNIT, check=False).stdout.strip(), 'inactive')
        procs = self.sh('for p in /proc/[0-9]*; do echo "$(stat -c %u $p) $(cat $p/comm)"; done',
                        check=False).stdout.splitlines()
        left = [p for p in procs if p.strip() and (not p.startswith('0 ') or 'rendervisor' in p or 'chrom' in p)]
        self.assertEqual(left, [], 'processes left after the purge')
        self.assertEqual(self.sh('getent passwd rendervisor; getent group rendervisor', check=False).stdout, '')
        after = self.sh(LISTING).stdout
        if after != self.before:
            import difflib
            diff = ''.join(difflib.unified_diff(self.before.splitlines(True), after.splitlines(True),
                                                'before the install', 'after the purge', n=0))
            self.fail('the purge left the container different from before the install:\n' + diff[:6000])


if __name__ == '__main__':
    unittest.main()
