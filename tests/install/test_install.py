"""`meson install` puts every file where docs/install.md says, and nothing
else: the tree is built and installed (into a temporary --destdir) with
--prefix=/usr, with meson's default prefix, and with a temporary prefix of its
own, and each install is compared, both ways, with the table in
docs/install.md. The unit is checked against the installed paths and the
default config, and by `systemd-analyze verify` on the temporary-prefix
install, whose ExecStart= binary exists on this machine."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get('RV_SOURCE', os.path.join(HERE, '..', '..')))
BUILD = os.environ.get('RV_BUILD')  # the build dir under test, if any
DOC = os.path.join(SOURCE, 'docs', 'install.md')
DEFAULT_INI = os.path.join(SOURCE, 'etc', 'rendervisor.ini')
BINARIES = ('rendervisor', 'rendervisor-exporter', 'rendervisor-renderer')


def run(cmd, **kw):
    """Run cmd; on failure, the assertion shows what it printed."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError('%s exited %d:\n%s' % (' '.join(cmd), r.returncode, r.stdout))
    return r.stdout


def documented_paths():
    """{prefix: [paths]} from the table of installed files in docs/install.md:
    its second column is meson's default prefix, its third --prefix=/usr."""
    with open(DOC) as f:
        text = f.read()
    begin = text.index('<!-- installed-files')
    end = text.index('<!-- end of installed-files -->')
    out = {'/usr/local': [], '/usr': []}
    rows = text[begin:end].splitlines()
    rows = rows[[i for i, l in enumerate(rows) if l.startswith('|---')][0] + 1:]  # below the header
    for line in rows:
        if not line.startswith('|'):
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 3:
            raise AssertionError('docs/install.md: a row of the table has %d cells: %r' % (len(cells), line))
        for prefix, cell in zip(('/usr/local', '/usr'), cells[1:]):
            m = re.fullmatch(r'`(/[^`]+)`', cell)
            if not m:
                raise AssertionError('docs/install.md: not one `path` in a cell: %r' % cell)
            out[prefix].append(m.group(1))
    if len(out['/usr']) < 10:
        raise AssertionError('docs/install.md: the table of installed files has %d rows' % len(out['/usr']))
    return out


def files_under(root):
    """Every file (and symlink) below root, as absolute paths with root cut off."""
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            found.add('/' + os.path.relpath(os.path.join(dirpath, name), root))
    return found


def read_unit(path):
    """{key: [values]} of a unit file, comments left out."""
    unit = {}
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in '#;[':
            continue
        key, _, value = line.partition('=')
        unit.setdefault(key.strip(), []).append(value.strip())
    return unit


def ini_value(path, section, key):
    cur = None
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        s = line.split(' ;')[0].strip()
        if s.startswith('['):
            cur = s.strip('[]')
        elif cur == section and '=' in s and not s.startswith((';', '#')):
            k, _, v = s.partition('=')
            if k.strip() == key:
                return v.strip()
    raise AssertionError('%s: no [%s] %s' % (path, section, key))


def seconds(text):
    m = re.fullmatch(r'(\d+)(ms|s|min|m)?', text)
    if not m:
        raise AssertionError('not a duration: %r' % text)
    return int(m.group(1)) * {'ms': 0.001, 's': 1, None: 1, 'm': 60, 'min': 60}[m.group(2)]


class Install:
    """One configured, built and installed tree."""

    def __init__(self, tmp, name, prefix=None, destdir=True):
        self.build = os.path.join(tmp, 'build-' + name)
        self.destdir = os.path.join(tmp, 'dest-' + name) if destdir else None
        args = ['meson', 'setup', self.build, SOURCE, '-Dtests=false', '-Dbuildtype=plain']
        if prefix:
            args.append('--prefix=' + prefix)
        run(args)
        run(['ninja', '-C', self.build])
        self.install()

    def install(self):
        args = ['meson', 'install', '-C', self.build, '--no-rebuild', '--quiet']
        if self.destdir:
            args += ['--destdir', self.destdir]
        run(args)

    def path(self, path):
        """Where an installed path really is."""
        return self.destdir + path if self.destdir else path


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='rv-install-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.doc = documented_paths()
        cls.usr = Install(cls.tmp, 'usr', '/usr')
        cls.local = Install(cls.tmp, 'local')  # meson's default prefix
        cls.opt_prefix = os.path.join(cls.tmp, 'opt')
        cls.opt = Install(cls.tmp, 'opt', cls.opt_prefix, destdir=False)
        with open(DEFAULT_INI) as f:
            cls.default_ini = f.read()

    def opt_expected(self):
        """Another prefix: what /usr/local gets, inside it, the config too."""
        out = set()
        for p in self.doc['/usr/local']:
            if p.startswith('/usr/local/'):
                out.add(self.opt_prefix + p[len('/usr/local'):])
            elif p.startswith('/etc/'):
                out.add(self.opt_prefix + p)
            else:
                raise AssertionError('docs/install.md: %s is neither under /usr/local nor /etc' % p)
        return out

    def cases(self):
        return [(self.usr, '/usr', set(self.doc['/usr'])),
                (self.local, '/usr/local', set(self.doc['/usr/local'])),
                (self.opt, self.opt_prefix, self.opt_expected())]

    # ---- the layout ------------------------------------------------------
    def test_every_file_is_where_the_docs_say_and_nothing_else(self):
        for inst, prefix, want in self.cases()[:2]:
            got = files_under(inst.destdir)
            self.assertEqual(sorted(got - want), [], 'installed with prefix %s, not in docs/install.md' % prefix)
            self.assertEqual(sorted(want - got), [], 'in docs/install.md, not installed with prefix %s' % prefix)

    def test_a_temporary_prefix_keeps_everything_inside_it(self):
        got = files_under(self.opt_prefix)
        got = {self.opt_prefix + p for p in got}
        want = self.opt_expected()
        self.assertEqual(sorted(got ^ want), [], 'prefix %s' % self.opt_prefix)
        # The install log names what meson copied: all of it inside the prefix.
        with open(os.path.join(self.opt.build, 'meson-logs', 'install-log.txt')) as f:
            logged = [l.strip() for l in f if l.strip() and not l.startswith('#')]
        self.assertTrue(logged)
        for p in logged:
            self.assertTrue(p == self.opt_prefix or p.startswith(self.opt_prefix + '/'), p)

    def test_the_build_under_test_installs_the_documented_files(self):
        """meson introspect of the build dir that `make test` tests: what it
        would install (the config comes from an install step, not listed)."""
        if not BUILD:
            self.skipTest('RV_BUILD not set')
        import json
        opts = {o['name']: o['value'] for o in json.loads(run(['meson', 'introspect', '--buildoptions', BUILD]))}
        prefix = opts['prefix']
        if prefix not in self.doc:
            self.skipTest('the build under test has prefix %s, which docs/install.md has no column for' % prefix)
        installed = json.loads(run(['meson', 'introspect', '--installed', BUILD]))
        want = {p for p in self.doc[prefix] if not p.startswith('/etc/')}
        self.assertEqual(sorted(set(installed.values()) ^ want), [])

    def test_modes(self):
        for inst, prefix, want in self.cases():
            for path in want:
                real = inst.path(path)
                mode = os.stat(real).st_mode & 0o7777
                if '/bin/' in path:
                    self.assertEqual(mode, 0o755, real)
                else:
                    self.assertEqual(mode, 0o644, real)

    # ---- the programs and the config -------------------------------------
    def test_installed_programs_run_and_the_installed_config_is_the_default(self):
        for inst, prefix, _ in self.cases():
            bindir = inst.path(prefix + '/bin')
            config = inst.path('/etc/rendervisor/rendervisor.ini' if prefix in ('/usr', '/usr/local')
                               else prefix + '/etc/rendervisor/rendervisor.ini')
            datadir = inst.path(prefix + '/share/rendervisor')
            for exe in BINARIES:
                out = run([os.path.join(bindir, exe), '--version'])
                self.assertIn('0.', out)
            with open(config) as f:
                self.assertEqual(f.read(), self.default_ini, config)
            with open(os.path.join(datadir, 'rendervisor.ini')) as f:
                self.assertEqual(f.read(), self.default_ini)
            out = run([os.path.join(bindir, 'rendervisor'), '--check-config', config])
            self.assertIn('valid', out)
            for name, src in (('rendervisor.json', 'dashboards/rendervisor.json'),
                              ('rendervisor.rules.yml', 'alerts/rendervisor.rules.yml')):
                with open(os.path.join(datadir, name), 'rb') as a, open(os.path.join(SOURCE, src), 'rb') as b:
                    self.assertEqual(a.read(), b.read(), name)

    def test_a_reinstall_keeps_an_edited_config(self):
        config = self.usr.path('/etc/rendervisor/rendervisor.ini')
        edited = self.default_ini + '\n; edited by the operator\n'
        with open(config, 'w') as f:
            f.write(edited)
        try:
            self.usr.install()
            with open(config) as f:
                self.assertEqual(f.read(), edited)
            with open(self.usr.path('/usr/share/rendervisor/rendervisor.ini')) as f:
                self.assertEqual(f.read(), self.default_ini)
        finally:
            with open(config, 'w') as f:
                f.write(self.default_ini)

    def test_man_pages_name_the_installed_paths(self):
        for inst, prefix, want in self.cases():
            config = '/etc/rendervisor/rendervisor.ini' if prefix in ('/usr', '/usr/local') \
                else prefix + '/etc/rendervisor/rendervisor.ini'
            for path in want:
                if '/man/' not in path:
                    continue
                with open(inst.path(path)) as f:
                    text = f.read()
                self.assertNotRegex(text, r'@[A-Z_]+@', path)
                self.assertIn(config, text, path)

    # ---- the unit ------------------------------------------------------------
    def unit_path(self, inst, prefix):
        return inst.path(prefix + '/lib/systemd/system/rendervisor.service')

    def test_unit_runs_the_installed_program_with_the_installed_config(self):
        for inst, prefix, _ in self.cases():
            config = '/etc/rendervisor/rendervisor.ini' if prefix in ('/usr', '/usr/local') \
                else prefix + '/etc/rendervisor/rendervisor.ini'
            unit = read_unit(self.unit_path(inst, prefix))
            self.assertEqual(unit['ExecStart'], ['%s/bin/rendervisor --config %s' % (prefix, config)])
            self.assertEqual(unit['ExecReload'], ['%s/bin/rendervisor --check-config %s' % (prefix, config),
                                                  'kill -HUP $MAINPID'])

    def test_unit_agrees_with_the_default_config(self):
        unit = read_unit(self.unit_path(self.usr, '/usr'))
        for key, value in (('Type', 'notify'), ('Restart', 'on-failure'), ('KillMode', 'mixed'),
                           ('NoNewPrivileges', 'yes'), ('ProtectSystem', 'strict'), ('PrivateTmp', 'yes')):
            self.assertEqual(unit.get(key), [value], key)
        # runtime_dir is the directory systemd makes for the service.
        runtime_dir = ini_value(DEFAULT_INI, 'supervisor', 'runtime_dir')
        self.assertEqual(['/run/' + d for d in unit['RuntimeDirectory']], [runtime_dir])
        # The supervisor's own stop (SIGTERM, then SIGKILL after stop_timeout)
        # ends before systemd's.
        stop = seconds(ini_value(DEFAULT_INI, 'supervisor', 'stop_timeout'))
        self.assertGreater(seconds(unit['TimeoutStopSec'][0]), stop + 5)
        # V8 needs writable, then executable memory.
        self.assertNotIn('MemoryDenyWriteExecute', unit)
        # Chromium's sandbox: the unit runs the browsers as its own user and
        # allows the namespaces the sandbox makes, no others; the default
        # command leaves the sandbox on (the supervisor adds --no-sandbox
        # only as root).
        self.assertEqual(unit.get('DynamicUser'), ['yes'])
        self.assertEqual(sorted(unit['RestrictNamespaces'][0].split()), ['net', 'pid', 'user'])
        with open(DEFAULT_INI) as f:
            self.assertNotIn('--no-sandbox', ''.join(line for line in f if not line.lstrip().startswith(';')))
        self.assertNotIn('MemoryMax', unit)  # a hint, left commented

    def verify(self, unit_path):
        """What systemd-analyze verify prints about a unit."""
        exe = shutil.which('systemd-analyze')
        if not exe:
            self.fail('systemd-analyze not found: install the Debian package systemd (scripts/install-deps.sh)')
        env = dict(os.environ, MANPATH=os.path.join(self.opt_prefix, 'share', 'man'), SYSTEMD_LOG_COLOR='0',
                   SYSTEMD_PAGER='', LC_ALL='C.UTF-8')
        r = subprocess.run([exe, 'verify', unit_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)
        return r.returncode, r.stdout

    def test_systemd_analyze_verify_says_nothing(self):
        path = self.unit_path(self.opt, self.opt_prefix)
        rc, out = self.verify(path)
        self.assertEqual((rc, out), (0, ''), 'systemd-analyze verify %s' % path)

    def test_systemd_analyze_verify_would_catch_a_mistake(self):
        """The check above can fail: a misspelt key, a missing program and a
        missing man page each make it print."""
        unit_dir = os.path.join(self.tmp, 'broken')
        os.makedirs(unit_dir, exist_ok=True)
        with open(self.unit_path(self.opt, self.opt_prefix)) as f:
            good = f.read()
        for what, text in (('misspelt key', good.replace('ProtectSystem=', 'ProtectSystm=')),
                           ('missing program', good.replace('/bin/rendervisor --config', '/bin/rv-none --config')),
                           ('missing man page', good.replace('man:rendervisor(8)', 'man:rendervisor-none(8)'))):
            path = os.path.join(unit_dir, 'rendervisor.service')
            with open(path, 'w') as f:
                f.write(text)
            rc, out = self.verify(path)
            self.assertTrue(out.strip(), '%s: systemd-analyze verify printed nothing' % what)


if __name__ == '__main__':
    unittest.main(verbosity=2)
