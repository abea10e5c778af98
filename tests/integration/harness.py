"""Shared harness for the integration tests: starts the real rendervisor with a
config of small real children, collects its log and the reports it sends to
the ingest socket, and makes sure every process a test started is gone at
the end (each test marks its processes through an environment variable)."""
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import memcg

SUPERVISOR = os.environ.get('RV_SUPERVISOR', 'build/supervisor/rendervisor')
ALLOC = os.environ.get('RV_ALLOC', 'build/tests/integration/rv-alloc')

FIELD = re.compile(r'(\w[\w.]*)=("(?:[^"\\]|\\.)*"|\S*)')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_range(count):
    """A base port with count free ports after it, from a quiet range."""
    for base in range(41000, 49000, 37):
        socks = []
        try:
            for i in range(count):
                s = socket.socket()
                socks.append(s)
                s.bind(('127.0.0.1', base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError('no free port range')


def parse_logfmt(line):
    out = {}
    for key, val in FIELD.findall(line):
        if val.startswith('"'):
            val = bytes(val[1:-1], 'utf-8').decode('unicode_escape')
        out[key] = val
    return out


def parse_report_line(line):
    m = SAMPLE.match(line)
    if not m:
        raise ValueError('not a sample line: %r' % line)
    labels = tuple(sorted(LABEL.findall(m.group(2) or '')))
    return m.group(1), labels, float(m.group(3))


def wait_until(fn, timeout, interval=0.02, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


def http_get(port, path, headers=None, timeout=30):
    """GET http://127.0.0.1:port/path: (status, headers, body), or
    (0, {}, b'') when the connection fails or times out."""
    try:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
        c.request('GET', path, headers=headers or {})
        r = c.getresponse()
        out = r.status, dict(r.getheaders()), r.read()
        c.close()
        return out
    except OSError:
        return 0, {}, b''


def metrics_sample(port, name):
    """The value of one sample (its name with its labels, as printed) of
    http://127.0.0.1:port/metrics, or None when it is absent or /metrics did
    not answer 200."""
    status, _, body = http_get(port, '/metrics', timeout=5)
    if status != 200:
        return None
    for line in body.decode('utf-8', 'replace').splitlines():
        sample, _, value = line.rpartition(' ')
        if sample == name:
            return float(value)
    return None


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command's name (state first),
    or None when the process is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(')') + 2:].split()


def proc_stat(pid):
    """(state, ppid, pgrp, sid) of a process, or None when it is gone."""
    rest = stat_fields(pid)
    return rest and (rest[0], int(rest[1]), int(rest[2]), int(rest[3]))


def start_time(pid):
    """A process's start (clock ticks after boot), or None when it is gone:
    with the pid, what tells a process from a later one that reuses it."""
    rest = stat_fields(pid)
    return rest and int(rest[19])


def prom_api(port, path, **params):
    """GET a Prometheus HTTP API path on 127.0.0.1:port: its JSON answer (an
    error's too), or {} while the server does not answer."""
    url = 'http://127.0.0.1:%d%s?%s' % (port, path, urllib.parse.urlencode(params, doseq=True))
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return json.loads(e.read().decode())
    except OSError:  # URLError, a connection refused or reset, a timeout
        return {}


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != 'Z'


def all_pids():
    return [int(p) for p in os.listdir('/proc') if p.isdigit()]


def children_of(pid):
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st and st[1] == pid:
            out.append(p)
    return out


def socket_inodes(pid):
    """The inodes of the sockets process pid holds open (an empty set when
    it is gone): what /proc/net/tcp's inode column names."""
    found = set()
    try:
        names = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return found
    for fd in names:
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            found.add(int(link[8:-1]))
    return found


def cmdline(pid):
    """A process's arguments joined by spaces, '' when it is gone."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().decode('utf-8', 'replace').replace('\0', ' ').strip()
    except OSError:
        return ''


def cgroup_pids(name):
    """Every process on the host whose /proc/PID/cgroup names name (a
    container's id), sorted."""
    pids = []
    for d in all_pids():
        try:
            with open('/proc/%d/cgroup' % d) as f:
                if name in f.read():
                    pids.append(d)
        except OSError:
            pass
    return sorted(pids)


def process_tree(pid):
    """pid and every process below it (by parent pid)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


class PageServer(http.server.ThreadingHTTPServer):
    """A test's page server: a thread per request, and a client that hangs
    up mid-answer (a render stopped, a page closed) is no traceback."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(addr, handler):
    """A PageServer on addr with handler, serving on a thread of its own."""
    s = PageServer(addr, handler)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


class RedPage(http.server.BaseHTTPRequestHandler):
    """A page that is all red: a render of it shows the browser drew."""
    def do_GET(self):
        body = b'<!doctype html><html><body style="margin:0;background:rgb(255,0,0)"></body></html>'
        self.send_response(200)
        self.send_header('Content-Type', 'text/html')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def marked_pids(mark):
    """Every live process whose environment carries this run's mark."""
    needle = ('RV_TEST_MARK=%s' % mark).encode()
    found = []
    for p in all_pids():
        if p == os.getpid():
            continue
        try:
            with open('/proc/%d/environ' % p, 'rb') as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b'\0') and alive(p):
            found.append(p)
    return found


def sh(script):
    """A child command line running a shell script (the arguments the
    supervisor appends become $0, $1, ... and are ignored)."""
    return "sh -c '%s'" % script.replace("'", "'\\''")


class Rendervisor:
    """One supervisor under test, with its own runtime_dir and ingest socket."""

    def __init__(self, exporter=None, browsers=None, renderer=None, browser_count=1,
                 sample_interval='100ms', stop_timeout='2s', extra=None, collect=True):
        self.mark = uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix='rvit')
        self.run_dir = os.path.join(self.dir, 'run')
        os.mkdir(self.run_dir, 0o700)
        self.config = os.path.join(self.dir, 'rendervisor.ini')
        self.settings = {
            'supervisor': {'runtime_dir': self.run_dir, 'sample_interval': sample_interval,
                           'stop_timeout': stop_timeout, 'log_level': 'debug',
                           # stand-in browsers (sleep) answer no health probe
                           'health_interval': '5s' if browsers else '0s'},
            'exporter': {'command': exporter or sh('exec sleep 1000'), 'listen': ''},
            'renderer': {'command': renderer or sh('exec sleep 1000')},
            'browsers': {'count': str(browser_count), 'command': browsers or sh('exec sleep 1000'),
                         'port_base': '30000'},
        }
        for section, kv in (extra or {}).items():
            self.settings.setdefault(section, {}).update(kv)
        self.write_config()
        self.proc = None
        self.logs = []  # (monotonic time, raw line, fields)
        self.reports = {}  # (family, labels) -> value
        self.report_log = []  # (monotonic time, family, labels, value)
        self.lock = threading.Lock()
        self.sock = None
        if collect:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(os.path.join(self.run_dir, 'ingest.sock'))
            self.sock.settimeout(0.2)
            threading.Thread(target=self._collect, daemon=True).start()

    def write_config(self, text=None):
        if text is None:
            parts = []
            for section, kv in self.settings.items():
                parts.append('[%s]' % section)
                parts += ['%s = %s' % (k, v) for k, v in kv.items()]
                parts.append('')
            text = '\n'.join(parts)
        with open(self.config, 'w') as f:
            f.write(text)

    # ---- process ---------------------------------------------------------
    def start(self, env=None, preexec_fn=None):
        """env: variables to add to this environment (NOTIFY_SOCKET, ...);
        preexec_fn: run in the supervisor's process before its exec (e.g.
        MemCgroup.enter). Python's caveat holds: start it while no other
        thread of the test runs (collect=False), or the child may deadlock."""
        env = dict(os.environ, RV_TEST_MARK=self.mark, **(env or {}))
        self.proc = subprocess.Popen([SUPERVISOR, '--config', self.config], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        threading.Thread(target=self._read_log, daemon=True).start()
        return self

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            with self.lock:
                self.logs.append((time.monotonic(), line, parse_logfmt(line)))

    def _collect(self):
        while self.sock:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                for line in data.decode().splitlines():
                    fam, labels, value = parse_report_line(line)
                    self.reports[(fam, labels)] = value
                    self.report_log.append((now, fam, labels, value))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """Kill the supervisor and everything this test started."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        memcg.sigkill_until_gone(lambda: marked_pids(self.mark), pause=0.05)
        if self.sock:
            s, self.sock = self.sock, None
            s.close()
        subprocess.run(['rm', '-rf', self.dir], check=False)

    # ---- what the log says -------------------------------------------------
    def records(self, msg=None, **fields):
        with self.lock:
            logs = list(self.logs)
        out = []
        for t, line, f in logs:
            if msg is not None and f.get('msg') != msg:
                continue
            if all(f.get(k) == str(v) for k, v in fields.items()):
                out.append((t, f))
        return out

    def child_records(self, child, msg=None, **fields):
        """A child's own records (the exporter's, the renderer's), which the
        supervisor passes on with child=<child> added; a line it nests as
        "child output" is not one."""
        return [(t, f) for t, f in self.records(msg, child=child, **fields)
                if f.get('component') not in (None, 'supervisor')]

    def log_text(self):
        with self.lock:
            return '\n'.join(line for _, line, _ in self.logs)

    def starts(self, child):
        return self.records('child started', child=child)

    def pid(self, child):
        """The pid of the child's most recent start."""
        s = self.starts(child)
        return int(s[-1][1]['pid']) if s else None

    def wait_started(self, child, count=1, timeout=5):
        wait_until(lambda: len(self.starts(child)) >= count, timeout,
                   what='%s started %d time(s)' % (child, count))
        return self.pid(child)

    # ---- what the reports say -----------------------------------------------
    def report_count(self, family, **labels):
        """How many reports of this series have arrived so far."""
        want = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self.lock:
            return sum(1 for _, f, l, _ in self.report_log if f == family and l == want)

    def value(self, family, **labels):
        key = (family, tuple(sorted((k, str(v)) for k, v in labels.items())))
        with self.lock:
            return self.reports.get(key)
