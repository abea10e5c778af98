"""The man pages render without a single warning (man --warnings, as lintian
runs it, and groff -ww), carry a NAME line whatis can read, document every
option the programs list in --help, and rendervisor.ini(5) lists exactly the
keys of common/config.c, with their defaults."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest


def read(path):
    with open(path) as f:
        return f.read()

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get('RV_SOURCE', os.path.join(HERE, '..', '..')))
BUILD = os.path.abspath(os.environ.get('RV_BUILD', os.path.join(SOURCE, 'build')))
PAGES = ('rendervisor.8', 'rendervisor-renderer.8', 'rendervisor-exporter.8', 'rendervisor.ini.5')
PROGRAMS = {
    'rendervisor.8': os.environ.get('RV_SUPERVISOR', os.path.join(BUILD, 'supervisor', 'rendervisor')),
    'rendervisor-renderer.8': os.environ.get('RV_RENDERER', os.path.join(BUILD, 'renderer', 'rendervisor-renderer')),
    'rendervisor-exporter.8': os.environ.get('RV_EXPORTER', os.path.join(BUILD, 'exporter', 'rendervisor-exporter')),
}


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        raise AssertionError('%s not found: install the Debian package %s (scripts/install-deps.sh)' % (tool, package))
    return path


def render_warnings(page):
    """Everything man and groff say about a page besides the page itself."""
    env = dict(os.environ, LC_ALL='C.UTF-8', MANROFFSEQ='', MANWIDTH='80')
    out = []
    r = subprocess.run([need('man', 'man-db'), '--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', page],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0 or r.stderr:
        out.append('man (exit %d): %s' % (r.returncode, r.stderr.strip()))
    r = subprocess.run([need('groff', 'groff-base'), '-man', '-ww', '-z', '-K', 'utf8', page],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0 or r.stderr:
        out.append('groff (exit %d): %s' % (r.returncode, r.stderr.strip()))
    return out


def config_keys():
    """{(section, key): default or None} from the config_keys table of
    common/config.c. Every line of the table that opens an entry must parse,
    so a change of its shape fails here rather than passing unseen."""
    text = read(os.path.join(SOURCE, 'common', 'config.c'))
    m = re.search(r'config_keys\[\] = \{\n(.*?)\n\};', text, re.S)
    if not m:
        raise AssertionError('common/config.c: no config_keys table')
    body = m.group(1)
    entry = re.compile(r'\{\s*"(\w+)",\s*"(\w+)",\s*CONFIG_KIND_\w+,\s*CONFIG_AT\([\w.]+\),\s*(NULL|"((?:[^"\\]|\\.)*)")')
    keys = {}
    for e in entry.finditer(body):
        keys[(e.group(1), e.group(2))] = None if e.group(3) == 'NULL' else e.group(4)
    opened = len(re.findall(r'^\s*\{', body, re.M))
    if opened != len(keys) or len(keys) < 20:
        raise AssertionError('common/config.c: %d entries open in config_keys, %d parsed' % (opened, len(keys)))
    return keys


def unroff(text):
    text = re.sub(r'\\f[BIRP]', '', text)
    return text.replace('\\-', '-').replace('\\(dq', '"').replace('\\e', '\\')


def man_keys():
    """{(section, key): default or None} from rendervisor.ini(5): a ".TP" tag
    \\fBkey\\fR = \\fIdefault\\fR, \\fBkey\\fR = (empty) or \\fBkey\\fR = (as shipped)
    (the shipped file's value: NULL in the table) under a ".SS [section]"
    heading of the KEYS section."""
    lines = read(os.path.join(SOURCE, 'man', 'rendervisor.ini.5.in')).splitlines()
    keys = {}
    section = None
    in_keys = False
    for i, line in enumerate(lines):
        if line.startswith('.SH '):
            in_keys = line == '.SH KEYS'
            section = None
            continue
        if not in_keys:
            continue
        m = re.fullmatch(r'\.SS \[(\w+)\]', line)
        if m:
            section = m.group(1)
            continue
        if line != '.TP' or i + 1 >= len(lines):
            continue
        tag = lines[i + 1]
        m = (re.fullmatch(r'\\fB(\w+)\\fR = \\fI(.+)\\fR', tag) or re.fullmatch(r'\\fB(\w+)\\fR = (\(empty\))', tag)
             or re.fullmatch(r'\\fB(\w+)\\fR = (\(as shipped\))', tag))
        if not m or not section:
            raise AssertionError('rendervisor.ini.5.in line %d: a key tag of another shape: %r' % (i + 2, tag))
        default = {'(as shipped)': None, '(empty)': ''}.get(m.group(2), unroff(m.group(2)))
        if (section, m.group(1)) in keys:
            raise AssertionError('rendervisor.ini.5.in: [%s] %s twice' % (section, m.group(1)))
        keys[(section, m.group(1))] = default
    return keys


class ManTest(unittest.TestCase):
    def page(self, name):
        path = os.path.join(BUILD, 'man', name)
        self.assertTrue(os.path.exists(path), '%s is not built' % path)
        return path

    def test_pages_render_without_warnings(self):
        for name in PAGES:
            self.assertEqual(render_warnings(self.page(name)), [], name)

    def test_the_render_check_catches_mistakes(self):
        """A page with an unknown macro, a bad escape and a missing font
        change back: the check above would have said so."""
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, 'bad.8')
            with open(bad, 'w') as f:
                f.write('.TH BAD 8\n.SH NAME\nbad \\- a page\n.SH DESCRIPTION\n.XQ something\n\\*[nosuch] text\n')
            self.assertNotEqual(render_warnings(bad), [])

    def test_whatis_reads_each_name_line(self):
        lexgrog = need('lexgrog', 'man-db')
        for name in PAGES:
            out = subprocess.run([lexgrog, self.page(name)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
            self.assertEqual(out.returncode, 0, out.stdout)
            base = name.rsplit('.', 1)[0]
            self.assertIn('"%s - ' % base, out.stdout)

    def test_every_option_in_help_is_in_the_page_and_back(self):
        for name, program in PROGRAMS.items():
            help_text = subprocess.run([program, '--help'], stdout=subprocess.PIPE, text=True, check=True).stdout
            in_help = set(re.findall(r'(?<![\w-])--([a-z][a-z-]*)', help_text))
            self.assertTrue(in_help, program)
            page = read(self.page(name))
            synopsis_and_options = page.split('.SH DESCRIPTION')[0] + page.split('.SH OPTIONS')[1].split('.SH ')[0]
            in_page = set(re.findall(r'\\-\\-([a-z][a-z\\-]*[a-z])', synopsis_and_options))
            in_page = {o.replace('\\-', '-') for o in in_page}
            self.assertEqual(sorted(in_help - in_page), [], '%s: in --help, not in the man page' % name)
            self.assertEqual(sorted(in_page - in_help), [], '%s: in the man page, not in --help' % name)

    def test_ini_page_lists_every_key_of_the_code_with_its_default(self):
        code = config_keys()
        page = man_keys()
        self.assertEqual(sorted(set(code) - set(page)), [], 'keys in common/config.c missing from rendervisor.ini(5)')
        self.assertEqual(sorted(set(page) - set(code)), [], 'keys in rendervisor.ini(5) that common/config.c lacks')
        for key, default in code.items():
            self.assertEqual(page[key], default, 'default of [%s] %s' % key)

    def test_ini_page_sections_are_the_code_sections_in_order(self):
        text = read(os.path.join(SOURCE, 'common', 'config.c'))
        sections = re.search(r'config_sections\[\] = \{([^}]*)\}', text).group(1)
        code = re.findall(r'"(\w+)"', sections)
        page = re.findall(r'^\.SS \[(\w+)\]$', read(os.path.join(SOURCE, 'man', 'rendervisor.ini.5.in')),
                          re.M)
        self.assertEqual(page, code)


if __name__ == '__main__':
    unittest.main(verbosity=2)
