"""Two complete rendervisor instances behind a real HAProxy (issue 15).

Each instance is its own supervisor with its own exporter, renderer, browser,
runtime_dir and ports; HAProxy 2.6 from Debian runs docs/examples/haproxy.cfg
as it is (the addresses come from its environment) with health checks on
/healthz; a real Prometheus scrapes both exporters. Renders go through
HAProxy to the Grafana-like pages of grafana_site.py, every picture checked
panel by panel as test_readiness.py checks them.

- warm-up: both instances serve renders; Prometheus shows both on the
  dashboard (the instance variable answers both, the main panels' queries
  return data for each instance, the by-instance panel a series per instance);
- under four clients rendering without pause, one instance's supervisor is
  SIGKILLed while it has renders in flight: every render sent after the kill
  answers 200 with the panels drawn; the renders it had in flight are sent
  again by HAProxy (retry-on empty-response, option redispatch) to the other
  instance and answer 200 too (counted from HAProxy's log); nothing of the
  killed instance is left (its children, the browser's own processes, the
  guardian); Prometheus sees it down and the other up;
- the survivor alone, a burst of slow renders beyond its capacity: the 429s
  reach the client as rendervisor sent them (Retry-After: 1), HAProxy did not
  try them again, and the other renders answer 200;
- a back, b stopped with SIGTERM under load: b drains (docs/supervisor.md,
  "Shutdown"): the renders it has in flight are answered 200 by b itself, a
  new render that reaches it is refused 503 and HAProxy sends it again
  (retry-on 503) to a, every render answers 200, b exits 0.
And the example's maxconn stays below the renderer's connections_per_address.
About a minute."""
import concurrent.futures
import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Rendervisor, alive, free_port, free_port_range, http_get,  # noqa: E402
                     marked_pids, metrics_sample, parse_logfmt, process_tree, prom_api, start_time,
                     wait_until)
from test_renderer import EXPORTER, RENDERER, SOURCE, default_browser_command  # noqa: E402
from test_readiness import case, png_problems  # noqa: E402
from grafana_site import Site, SiteServer  # noqa: E402

HAPROXY_CFG = os.path.join(SOURCE, 'docs', 'examples', 'haproxy.cfg')
QUERIES = os.path.join(SOURCE, 'tools', 'dashboard-queries.py')
DASHBOARD = os.path.join(SOURCE, 'dashboards', 'rendervisor.json')
TOKEN = 'lb-token'
CONCURRENCY = 2          # per browser; one browser per instance
CLIENTS = 4              # what the survivor alone can hold (2 in flight + 2 queued)
TIMEOUT_S = 20
WIDTH, HEIGHT = 800, 600
# about a second and a half a render: four panels, the slowest query 1.2 s
PAGE = case('lb', 'n=4&q1=300&q2=1200&q3=700', n=4)
SLOW = case('lb-slow', 'n=2&q1=4000', n=2)
# the main panels of the dashboard: each must have data for each instance
MAIN_PANELS = ['Children up', 'Renders per second', 'Render errors (5xx)', 'p99 render latency',
               'Renders in flight', 'Requests per second by status', 'Request latency',
               'Requests per second by instance', 'Up', 'State', 'Uptime', 'Browser version',
               'Memory against the limit', 'Processes', 'CPU by mode']


class Instance:
    """One complete rendervisor: supervisor, exporter, renderer, one browser."""

    def __init__(self, name, port=None, metrics_port=None):
        self.name = name
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=1,
                              sample_interval='500ms', stop_timeout='3s', collect=False,
                              # the memory limits of deploy/kubernetes/base/rendervisor.ini
                              extra={'exporter': {'listen': '127.0.0.1:%d' % self.metrics_port,
                                                  'memory_limit': '64M'},
                                     # memory admission off: two instances on one host would
                                     # each count the host's memory as theirs
                                     'renderer': {'listen': '127.0.0.1:%d' % self.port, 'auth_token': TOKEN,
                                                  'concurrency': str(CONCURRENCY), 'render_memory': '0',
                                                  'memory_limit': '256M'},
                                     'browsers': {'port_base': str(free_port_range(1)), 'memory_limit': '1G'}})

    @property
    def address(self):
        return '127.0.0.1:%d' % self.port

    @property
    def target(self):
        return '127.0.0.1:%d' % self.metrics_port


class ExampleConfigTest(unittest.TestCase):
    """docs/examples/haproxy.cfg against the configurations it fronts."""

    def test_maxconn_below_connections_per_address(self):
        # every connection from HAProxy comes from one address: more than the
        # renderer's connections_per_address would be closed at once
        with open(HAPROXY_CFG) as f:
            found = re.findall(r'^\s*default-server\b.*\bmaxconn\s+(\d+)', f.read(), re.M)
        self.assertEqual(len(found), 1, '%s: one default-server line with maxconn' % HAPROXY_CFG)
        # the default where the renderer's configuration defines it
        with open(os.path.join(SOURCE, 'common', 'config.c')) as f:
            default = re.findall(r'\{ "renderer", "connections_per_address", \w+, CONFIG_AT\([^)]*\), "(\d+)"',
                                 f.read())
        self.assertEqual(len(default), 1, 'common/config.c: the default of [renderer] connections_per_address')
        for ini in ('etc/rendervisor.ini', 'deploy/kubernetes/base/rendervisor.ini'):
            cp = configparser.ConfigParser(inline_comment_prefixes=(';',))
            cp.read(os.path.join(SOURCE, ini))
            limit = int(cp['renderer'].get('connections_per_address', default[0]))
            self.assertLess(int(found[0]) + 1, limit,
                            '%s: maxconn %s and a health check against %s connections_per_address %d'
                            % (HAPROXY_CFG, found[0], ini, limit))


class LoadBalancerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ('haproxy', 'prometheus'):
            if not shutil.which(tool):
                raise AssertionError('%s is not installed: scripts/install-deps.sh installs it' % tool)
        cls.procs = []
        cls.tmp = tempfile.mkdtemp(prefix='rvlb')
        cls.instances = []
        cls.haproxy_log = []      # (monotonic time, fields) of each HAProxy line
        cls.log_lock = threading.Lock()
        Site.stopping.clear()
        cls.web = SiteServer(('127.0.0.1', 0), Site)
        threading.Thread(target=cls.web.serve_forever, daemon=True).start()
        cls.site_port = cls.web.server_address[1]
        try:
            cls.a, cls.b = Instance('a'), Instance('b')
            cls.instances = [cls.a, cls.b]
            for inst in cls.instances:
                inst.rv.start()
            cls.start_haproxy()
            cls.start_prometheus()
            for inst in cls.instances:
                wait_until(lambda: b'1 of 1' in http_get(inst.port, '/healthz')[2], 60, interval=0.1,
                           what='instance %s: the renderer connected to its browser' % inst.name)
            cls.run_all()
        except Exception:
            for inst in cls.instances:
                print('---- instance %s\n%s' % (inst.name, inst.rv.log_text()[-4000:]))
            print('---- haproxy\n%s' % '\n'.join(str(f) for _, f in cls.haproxy_log[-40:]))
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        Site.stopping.set()
        for p in cls.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        for inst in cls.instances:
            inst.rv.stop()
        cls.web.shutdown()
        cls.web.server_close()
        shutil.rmtree(cls.tmp, True)

    # ---- HAProxy and Prometheus ----------------------------------------------
    @classmethod
    def start_haproxy(cls):
        cls.lb_port = free_port()
        env = dict(os.environ, RV_LB_BIND='127.0.0.1:%d' % cls.lb_port,
                   RV_LB_A=cls.a.address, RV_LB_B=cls.b.address)
        subprocess.run(['haproxy', '-c', '-q', '-f', HAPROXY_CFG], env=env, check=True)
        p = subprocess.Popen(['haproxy', '-db', '-f', HAPROXY_CFG], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        cls.procs.append(p)

        def read():
            for raw in p.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                with cls.log_lock:
                    cls.haproxy_log.append((time.monotonic(), parse_logfmt(line) if line.startswith('haproxy ')
                                            else {'text': line}))
        threading.Thread(target=read, daemon=True).start()
        wait_until(lambda: http_get(cls.lb_port, '/healthz', timeout=2)[0] == 200, 20, interval=0.1,
                   what='HAProxy answering on 127.0.0.1:%d' % cls.lb_port)

    @classmethod
    def start_prometheus(cls):
        cls.prom_port = free_port()
        cfg = os.path.join(cls.tmp, 'prometheus.yml')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n'
                    '  - job_name: rendervisor\n    static_configs:\n'
                    '      - targets: ["%s", "%s"]\n' % (cls.a.target, cls.b.target))
        cls.procs.append(subprocess.Popen(['prometheus', '--config.file=%s' % cfg,
                                           '--storage.tsdb.path=%s/data' % cls.tmp,
                                           '--web.listen-address=127.0.0.1:%d' % cls.prom_port],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    @classmethod
    def prom(cls, path, **params):
        return prom_api(cls.prom_port, path, **params)

    @classmethod
    def query(cls, expr):
        r = cls.prom('/api/v1/query', query=expr)
        return r.get('data', {}).get('result') if r.get('status') == 'success' else None

    @classmethod
    def up(cls, inst):
        res = cls.query('up{job="rendervisor", instance="%s"}' % inst.target)
        return res[0]['value'][1] if res else None

    # ---- renders -------------------------------------------------------------
    @classmethod
    def render(cls, c):
        """One render through HAProxy, sent as Grafana's http_mode.go sends it,
        with an X-Request-Id to find its line in HAProxy's log."""
        url = 'http://127.0.0.1:%d/d/fx-%s/fixture?orgId=1&from=now-6h&to=now&kiosk&%s&render=1' % (
            cls.site_port, c['name'], c['query'])
        params = {'url': url, 'renderKey': uuid.uuid4().hex, 'width': str(WIDTH), 'height': str(HEIGHT),
                  'domain': '127.0.0.1', 'timezone': 'Europe/Paris', 'encoding': 'png',
                  'timeout': str(TIMEOUT_S), 'deviceScaleFactor': '%f' % 1.0}
        rid = uuid.uuid4().hex
        headers = {'X-Auth-Token': TOKEN, 'User-Agent': 'Grafana/11.3.0', 'X-Request-Id': rid}
        sent = time.monotonic()
        status, rheaders, body = http_get(cls.lb_port, '/render?' + urllib.parse.urlencode(sorted(params.items())),
                                          headers, timeout=TIMEOUT_S * 3)
        # header names lower case: HAProxy hands them on so (HTTP/1.1 allows it)
        return {'id': rid, 'case': c, 'sent': sent, 'done': time.monotonic(), 'status': status,
                'headers': {k.lower(): v for k, v in rheaders.items()}, 'body': body}

    @classmethod
    def attach_log(cls, results):
        """Each result's HAProxy line: the server that answered, the retries."""
        def lines():
            with cls.log_lock:
                return {f['request_id']: f for _, f in cls.haproxy_log if 'request_id' in f}
        wait_until(lambda: all(r['id'] in lines() for r in results), 10, interval=0.1,
                   what="HAProxy's log lines of %d renders" % len(results))
        by_id = lines()
        for r in results:
            r['log'] = by_id[r['id']]
            r['server'] = r['log']['server'].split('/')[-1]
            r['retries'] = r['log']['retries']

    @staticmethod
    def problems(r):
        if r['status'] != 200:
            return ['status %d: %r' % (r['status'], r['body'][:200])]
        try:
            return png_problems(r['case'], r['body'])
        except Exception as e:  # noqa: BLE001 - a picture that cannot be read is a failure
            return ['unreadable answer: %r' % e]

    @classmethod
    def in_flight(cls, inst):
        """The renderer's renders in flight, from its instance's /metrics
        (None when it does not answer)."""
        return metrics_sample(inst.metrics_port, 'grafana_image_renderer_http_request_in_flight')

    # ---- the run -----------------------------------------------------------
    @classmethod
    def run_all(cls):
        # warm-up: both instances serve, Prometheus gets a few scrapes of it
        with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            cls.warmup = list(pool.map(lambda _: cls.render(PAGE), range(12)))
        cls.attach_log(cls.warmup)
        wait_until(lambda: cls.up(cls.a) == '1' and cls.up(cls.b) == '1', 30, interval=0.5,
                   what='Prometheus scraping both exporters')
        # the rates need two scrapes after the renders: a few tries
        deadline = time.monotonic() + 20
        while True:
            time.sleep(2)
            cls.dashboard = cls.check_dashboard()
            if not cls.dashboard['empty'] or time.monotonic() > deadline:
                break

        # four clients without pause; a's supervisor SIGKILLed once it has
        # renders in flight
        sup = cls.a.rv.proc.pid
        with cls.Load() as cls.load:
            wait_until(lambda: (cls.in_flight(cls.a) or 0) >= 2, 20, interval=0.05,
                       what='instance a with two renders in flight')
            cls.tree = {p: start_time(p) for p in process_tree(sup) + marked_pids(cls.a.rv.mark)}
            cls.tree_names = sorted(comm(p) for p in cls.tree)
            cls.killed_at = time.monotonic()
            os.kill(sup, signal.SIGKILL)
            cls.a.rv.proc.wait(10)
            time.sleep(8)
        cls.attach_log(cls.load.results)
        cls.left = wait_until_gone(cls.tree, cls.a.rv.mark, 10)
        wait_until(lambda: cls.up(cls.a) == '0', 15, interval=0.5, what='Prometheus seeing instance a down')
        cls.up_after = (cls.up(cls.a), cls.up(cls.b))

        # the survivor alone: twice what it can hold, at once
        wait_until(lambda: cls.in_flight(cls.b) == 0, 30, interval=0.1, what='instance b idle')
        barrier = threading.Barrier(2 * CLIENTS)

        def burst(_):
            barrier.wait(10)
            return cls.render(SLOW)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 * CLIENTS) as pool:
            cls.burst = list(pool.map(burst, range(2 * CLIENTS)))
        cls.attach_log(cls.burst)

        # a back on its ports (as a restarted pod would be); then b stopped
        # with SIGTERM under load, as a scale-down or a rollout stops a pod
        restarted = time.monotonic()
        cls.a = Instance('a', cls.a.port, cls.a.metrics_port)
        cls.instances.append(cls.a)
        cls.a.rv.start()
        wait_until(lambda: any('rendervisor/a is UP' in f.get('text', '') for t, f in cls.haproxy_log
                               if t > restarted), 60, interval=0.2, what='HAProxy seeing instance a up again')
        with cls.Load() as cls.term_load:
            wait_until(lambda: (cls.in_flight(cls.b) or 0) >= 2, 20, interval=0.05,
                       what='instance b with two renders in flight')
            cls.termed_at = time.monotonic()
            cls.b.rv.signal(signal.SIGTERM)
            cls.term_exit = cls.b.rv.proc.wait(20)
            cls.term_took = time.monotonic() - cls.termed_at
            time.sleep(4)
        cls.attach_log(cls.term_load.results)

    class Load:
        """CLIENTS clients rendering PAGE through HAProxy without a pause, for
        as long as the with block runs."""
        def __enter__(self):
            self.stop = threading.Event()
            self.results = []
            self.lock = threading.Lock()
            self.threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]
            for t in self.threads:
                t.start()
            time.sleep(2)
            return self

        def client(self):
            while not self.stop.is_set():
                r = LoadBalancerTest.render(PAGE)
                with self.lock:
                    self.results.append(r)

        def __exit__(self, *exc):
            self.stop.set()
            for t in self.threads:
                t.join(TIMEOUT_S * 3 + 5)
            return False

    @classmethod
    def check_dashboard(cls):
        """What the dashboard shows with both instances up: the instance
        variable's values, and the main panels' queries for each instance."""
        out = {}
        # label_values(rendervisor_child_up{job=~"$job"}, instance), as Grafana asks it
        r = cls.prom('/api/v1/label/instance/values', **{'match[]': 'rendervisor_child_up{job=~".*"}'})
        out['instances'] = sorted(r.get('data', []))
        panels = [json.loads(line) for line in subprocess.run(
            [sys.executable, QUERIES, DASHBOARD], capture_output=True, text=True, check=True).stdout.splitlines()]
        out['panels'] = {p['panel'] for p in panels}
        out['empty'] = []
        for p in panels:
            if p['panel'] not in MAIN_PANELS:
                continue
            for inst in (cls.a, cls.b):
                expr = p['expr'].replace('instance=~".*"', 'instance="%s"' % inst.target)
                if expr == p['expr']:
                    out['empty'].append('%s: no instance matcher in %s' % (p['panel'], expr))
                elif not cls.query(expr):
                    out['empty'].append('%s, instance %s: %s' % (p['panel'], inst.target, expr))
        by = [p for p in panels if p['panel'] == 'Requests per second by instance']
        out['by_instance'] = sorted(s['metric'].get('instance') for s in cls.query(by[0]['expr']) or []) if by else []
        return out

    # ---- what it must show -----------------------------------------------------
    def test_both_instances_serve(self):
        served = {r['server'] for r in self.warmup}
        self.assertEqual(served, {'a', 'b'}, 'warm-up renders went to %s only' % served)
        bad = ['%s: %s' % (r['server'], self.problems(r)) for r in self.warmup if self.problems(r)]
        self.assertEqual(bad, [], 'warm-up renders')

    def test_dashboard_shows_both_instances(self):
        d = self.dashboard
        targets = sorted([self.a.target, self.b.target])
        self.assertEqual(d['instances'], targets, 'the instance variable')
        self.assertEqual(set(MAIN_PANELS) - d['panels'], set(), 'main panels not on the dashboard')
        self.assertEqual(d['empty'], [], 'main panel queries without data for an instance')
        self.assertEqual(d['by_instance'], targets, 'Requests per second by instance: one series per instance')

    def test_renders_sent_after_the_kill_are_served_by_the_other(self):
        after = [r for r in self.load.results if r['sent'] > self.killed_at]
        self.assertGreaterEqual(len(after), CLIENTS, 'too few renders after the kill to show anything')
        bad = ['sent %.1f s after the kill, %s (retries %s): %s'
               % (r['sent'] - self.killed_at, r['server'], r['retries'], self.problems(r))
               for r in after if r['server'] != 'b' or self.problems(r)]
        self.assertEqual(bad, [], 'renders sent after instance a was killed')
        print('\nrenders after the kill: %d, %d of them sent to a first and again to b'
              % (len(after), sum(1 for r in after if r['retries'] != '0')), flush=True)

    def test_renders_in_flight_on_the_killed_instance_are_sent_again(self):
        # in flight at the kill: sent before it, answered after it; those that
        # had gone to a are answered by b after HAProxy tried again ("+1":
        # one retry, to another server)
        at_kill = [r for r in self.load.results if r['sent'] < self.killed_at < r['done']]
        retried = [r for r in at_kill if r['retries'] != '0']
        self.assertGreaterEqual(len(retried), 1, 'instance a had two renders in flight at the kill; '
                                'HAProxy retried %d: %s' % (len(retried), [r['log'] for r in at_kill]))
        bad = ['%s retries=%s: %s' % (r['server'], r['retries'], self.problems(r))
               for r in retried if r['server'] != 'b' or r['retries'] != '+1' or self.problems(r)]
        self.assertEqual(bad, [], 'renders in flight on instance a at the kill')
        print('\nin flight at the kill: %d, %d of them on a, sent again to b and answered 200'
              % (len(at_kill), len(retried)), flush=True)

    def test_sigterm_drains_and_every_render_is_answered(self):
        # a stopping instance finishes the renders it has (drain_timeout, the
        # default 15 s here) and refuses new ones 503, which HAProxy sends
        # again to a (retry-on 503); then it exits 0
        self.assertEqual(self.term_exit, 0, 'instance b after SIGTERM')
        self.assertLess(self.term_took, 15 + 2 * 3, 'SIGTERM to exit: drain_timeout 15 s, 2 x stop_timeout 3 s')
        at_term = [r for r in self.term_load.results if r['sent'] < self.termed_at < r['done']]
        finished = [r for r in at_term if r['server'] == 'b' and r['retries'] == '0']
        self.assertGreaterEqual(len(finished), 1, 'instance b had two renders in flight at the SIGTERM; it answered '
                                'none of them itself: %s' % [r['log'] for r in at_term])
        cut = self.b.rv.child_records('renderer', 'render request', status='503')
        refused = [f for _, f in cut if 'takes no new render' not in f.get('error', '')]
        self.assertEqual(refused, [], "instance b's renderer cut renders it had short at its SIGTERM")
        bad = ['%.1f s from the SIGTERM, %s (retries %s): %s'
               % (r['sent'] - self.termed_at, r['server'], r['retries'], self.problems(r))
               for r in self.term_load.results if self.problems(r)
               or (r['retries'] != '0' and r['server'] != 'a')]
        self.assertEqual(bad, [], 'renders around the SIGTERM, %d in all' % len(self.term_load.results))
        print('\nSIGTERM: %d renders in flight on b answered 200 by b, %d new ones refused by b and sent '
              'again to a; exit %d after %.1f s' % (len(finished), len(cut), self.term_exit, self.term_took),
              flush=True)

    def test_every_render_of_the_load_answered(self):
        bad = ['%s (retries %s) %.1f s from the kill: %s'
               % (r['server'], r['retries'], r['sent'] - self.killed_at, self.problems(r))
               for r in self.load.results if self.problems(r)]
        self.assertEqual(bad, [], 'renders under load, %d in all' % len(self.load.results))

    def test_nothing_of_the_killed_instance_is_left(self):
        self.assertEqual(self.left, [], 'processes of instance a still running (pid, name)')
        # the browser's own processes (zygotes, renderers, utilities) and the
        # guardian were among those checked
        names = self.tree_names
        self.assertGreaterEqual(sum(1 for n in names if n.startswith('chromium')), 4, names)
        for child in ('rendervisor', 'rv-guardian', 'rendervisor-exp', 'rendervisor-ren'):
            self.assertIn(child, names)

    def test_prometheus_sees_the_killed_instance_down(self):
        self.assertEqual(self.up_after, ('0', '1'), 'up{instance=a}, up{instance=b} after the kill')

    def test_429_passes_through_untouched(self):
        statuses = sorted(r['status'] for r in self.burst)
        refused = [r for r in self.burst if r['status'] == 429]
        # b holds CONCURRENCY in flight and as many queued; the rest are refused
        self.assertEqual(len(refused), 2 * CLIENTS - 2 * CONCURRENCY, 'statuses of the burst: %s' % statuses)
        for r in refused:
            self.assertEqual(r['headers'].get('retry-after'), '1', r['headers'])
            self.assertIn(b'too many renders in progress', r['body'])
            self.assertEqual((r['server'], r['retries']), ('b', '0'), 'HAProxy tried a 429 again: %s' % r['log'])
        bad = [self.problems(r) for r in self.burst if r['status'] != 429 and self.problems(r)]
        self.assertEqual(bad, [], 'the renders of the burst that were not refused')


def comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return '?'


def wait_until_gone(tree, mark, timeout):
    """The processes of tree (pid -> start time) or carrying mark that are
    still alive after timeout: [(pid, command name)]."""
    def left():
        out = []
        for p, start in tree.items():
            if start is not None and start_time(p) == start and alive(p):
                out.append(p)
        out += [p for p in marked_pids(mark) if p not in out]
        return out
    deadline = time.monotonic() + timeout
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    return [(p, comm(p)) for p in left()]


if __name__ == '__main__':
    unittest.main()
