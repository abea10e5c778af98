"""The real supervisor and the real exporter, with small real children in
place of the browsers and the renderer: /metrics, the ingest socket, the
HTTP routes, promtool, and a real Prometheus scraping it all."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, alive, free_port, prom_api, sh, wait_until  # noqa: E402

EXPORTER = os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter')
SOURCE = os.environ.get('RV_SOURCE', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
QUERIES = os.path.join(SOURCE, 'tools', 'dashboard-queries.py')
REFERENCE = os.path.join(SOURCE, '..', 'shared', 'reference', 'image-rendering-service.dashboard.json')


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('localhost', timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def parse_metrics(text):
    """{(name, labels-tuple): value} of an exposition text."""
    from harness import parse_report_line
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        name, labels, value = parse_report_line(line)
        out[(name, labels)] = value
    return out


class ExporterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.rv = Rendervisor(exporter=os.path.abspath(EXPORTER),
                             browsers=sh('sleep 1000 & sleep 1000 & wait'),
                             renderer=sh('exec sleep 1000'), browser_count=2,
                             sample_interval='200ms', collect=False,
                             extra={'exporter': {'listen': '127.0.0.1:%d' % cls.port},
                                    'browsers': {'memory_limit': '512M'}})
        cls.rv.start()
        cls.sock = os.path.join(cls.rv.run_dir, 'exporter.sock')
        cls.ingest = os.path.join(cls.rv.run_dir, 'ingest.sock')
        try:
            wait_until(lambda: 'rendervisor_child_up{child="renderer"} 1' in cls.get('/metrics')[2], 10,
                       what='the renderer reported up')
        except Exception:
            print(cls.rv.log_text())
            cls.rv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rv.stop()

    @classmethod
    def get(cls, path, method='GET', body=None):
        try:
            c = UnixHTTPConnection(cls.sock)
            c.request(method, path, body=body)
            r = c.getresponse()
            data = r.read().decode()
            headers = dict(r.getheaders())
            c.close()
            return r.status, headers, data
        except OSError:
            return 0, {}, ''

    def metrics(self):
        status, headers, text = self.get('/metrics')
        self.assertEqual(status, 200)
        return parse_metrics(text)

    def value(self, name, **labels):
        return self.metrics().get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))

    def send(self, data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(data.encode() if isinstance(data, str) else data, self.ingest)
        s.close()

    # ---- /metrics ----------------------------------------------------------
    def test_metrics_carry_every_childs_figures(self):
        # the browsers' shells start their sleeps a moment after the sample
        # that first reported them
        wait_until(lambda: self.value('rendervisor_child_processes', child='browser-0') == 3, 5,
                   what='browser-0 reported with its 3 processes')
        # A sample can read a child's RSS as 0 just as it starts (seen once,
        # under load, for the shell that execs `sleep`); the next one has it.
        children = ('exporter', 'browser-0', 'browser-1', 'renderer')
        wait_until(lambda: all((self.value('rendervisor_child_resident_memory_bytes', child=c) or 0) > 0
                               for c in children), 5, what='every child reported with its RSS')
        status, headers, text = self.get('/metrics')
        self.assertEqual(status, 200)
        self.assertTrue(headers['Content-Type'].startswith('text/plain; version=0.0.4'))
        m = parse_metrics(text)
        for child in children:
            self.assertEqual(m[('rendervisor_child_up', (('child', child),))], 1, child)
            self.assertGreater(m[('rendervisor_child_resident_memory_bytes', (('child', child),))], 0, child)
            self.assertIn(('rendervisor_child_restarts_total', (('child', child), ('reason', 'signal'))), m)
        self.assertEqual(m[('rendervisor_child_processes', (('child', 'browser-0'),))], 3)
        self.assertEqual(m[('rendervisor_child_memory_limit_bytes', (('child', 'browser-1'),))], 512 << 20)
        # the exporter's own process collector
        self.assertGreater(m[('process_resident_memory_bytes', ())], 0)
        self.assertGreater(m[('process_open_fds', ())], 3)
        self.assertLess(abs(m[('process_start_time_seconds', ())] - time.time()), 600)
        # every family has HELP and TYPE
        for fam in ('grafana_image_renderer_service_http_request_duration_seconds',
                    'grafana_image_renderer_step_duration_seconds', 'rendervisor_child_up',
                    'rendervisor_ingest_rejected_total', 'process_cpu_seconds_total'):
            self.assertIn('# HELP %s ' % fam, text)
            self.assertIn('# TYPE %s ' % fam, text)

    def test_promtool_check_metrics_is_silent(self):
        text = self.get('/metrics')[2]
        p = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual((p.stdout + p.stderr).strip(), '')

    # ---- ingest ------------------------------------------------------------
    def test_lines_sent_by_hand_show_up_and_bad_ones_are_counted(self):
        rej = lambda r: self.value('rendervisor_ingest_rejected_total', reason=r) or 0  # noqa: E731
        before = {r: rej(r) for r in ('parse', 'unknown_family', 'unknown_label', 'bad_value')}
        count_before = self.value('grafana_image_renderer_step_duration_seconds_count', step='navigate') or 0
        self.send('grafana_image_renderer_step_duration_seconds{step="navigate"} 0.532\n'
                  'grafana_image_renderer_http_request_in_flight 3\n'
                  'this is not a line\n'
                  'no_such_family 1\n'
                  'grafana_image_renderer_step_duration_seconds{step="teleport"} 1\n'
                  'grafana_image_renderer_http_request_in_flight NaN\n')
        wait_until(lambda: rej('parse') == before['parse'] + 1, 3, what='the parse rejection counted')
        self.assertEqual(rej('unknown_family'), before['unknown_family'] + 1)
        self.assertEqual(rej('unknown_label'), before['unknown_label'] + 1)
        self.assertEqual(rej('bad_value'), before['bad_value'] + 1)
        self.assertEqual(self.value('grafana_image_renderer_step_duration_seconds_count', step='navigate'),
                         count_before + 1)
        self.assertEqual(self.value('grafana_image_renderer_http_request_in_flight'), 3)
        text = self.get('/metrics')[2]
        self.assertNotIn('teleport', text)
        self.assertNotIn('no_such_family', text)

    def test_datagram_limits_are_counted_with_their_reason(self):
        # Issue 5: at most 1024 lines a datagram (the rest each counted
        # too_many_lines), at most 64 KiB a datagram (refused whole, once,
        # too_long), at most 128 bytes a label value (too_long); what came
        # before stays applied.
        rej = lambda r: self.value('rendervisor_ingest_rejected_total', reason=r) or 0  # noqa: E731
        many, long_ = rej('too_many_lines'), rej('too_long')
        lines = ''.join('grafana_image_renderer_http_request_in_flight %d\n' % i for i in range(1030))
        self.send(lines)
        wait_until(lambda: rej('too_many_lines') == many + 6, 3, what='6 lines refused as too_many_lines')
        self.assertEqual(self.value('grafana_image_renderer_http_request_in_flight'), 1023)
        self.send(b'grafana_image_renderer_http_request_in_flight 5\n' * 2000)   # 98 000 bytes
        wait_until(lambda: rej('too_long') == long_ + 1, 3, what='the oversized datagram refused')
        self.assertEqual(self.value('grafana_image_renderer_http_request_in_flight'), 1023)
        self.send('grafana_image_renderer_browser_info{version="%s"} 1\n' % ('v' * 200))
        wait_until(lambda: rej('too_long') == long_ + 2, 3, what='the long label value refused')
        self.assertNotIn('v' * 200, self.get('/metrics')[2])

    def test_http_requests_beyond_the_limits_are_refused(self):
        def raw(data):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(self.sock)
            try:
                s.sendall(data)
                r = http.client.HTTPResponse(s)
                r.begin()
                return r.status, r.read()
            finally:
                s.close()
        # a long body is refused before it is read (none of it has been
        # sent), and so is one of unknown length; a short one is dropped
        status, body = raw(b'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n')
        self.assertEqual(status, 413)
        self.assertIn(b'request body: longer than 65536 bytes or of unknown length', body)
        self.assertEqual(raw(b'POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')[0], 413)
        self.assertEqual(raw(b'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')[0], 200)
        self.assertEqual(raw(b'GET /' + b'p' * 20000 + b' HTTP/1.1\r\nHost: x\r\n\r\n')[0], 414)
        self.assertEqual(raw(b'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'b' * 20000 + b'\r\n\r\n')[0], 431)
        self.assertEqual(self.get('/metrics')[0], 200)

    def test_sender_with_another_uid_is_refused(self):
        peer = lambda: self.value('rendervisor_ingest_rejected_total', reason='peer') or 0  # noqa: E731
        before = peer()
        script = ('import os, socket\n'
                  'os.setgid(65534); os.setuid(65534)\n'
                  's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n'
                  'try:\n'
                  '    s.sendto(b"grafana_image_renderer_http_request_in_flight 99\\n", %r)\n'
                  '    print("sent")\n'
                  'except PermissionError:\n'
                  '    print("denied")\n' % self.ingest)
        # The socket is 0600 in a 0700 directory: another user cannot even send.
        out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.stdout.strip(), 'denied', out.stderr)
        # Even with the permissions opened up, the exporter checks the sender.
        os.chmod(self.rv.dir, 0o711)
        os.chmod(self.rv.run_dir, 0o711)
        os.chmod(self.ingest, 0o666)
        try:
            out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=10)
            self.assertEqual(out.stdout.strip(), 'sent', out.stderr)
            wait_until(lambda: peer() == before + 1, 3, what='the peer rejection counted')
        finally:
            os.chmod(self.ingest, 0o600)
            os.chmod(self.rv.run_dir, 0o700)
            os.chmod(self.rv.dir, 0o700)
        self.assertNotEqual(self.value('grafana_image_renderer_http_request_in_flight'), 99)

    # ---- HTTP routes -------------------------------------------------------
    def test_routes(self):
        status, headers, body = self.get('/dashboard.json')
        self.assertEqual(status, 200)
        dash = json.loads(body)
        self.assertIn('__inputs', dash)
        status, headers, body = self.get('/alerts.yml')
        self.assertEqual(status, 200)
        self.assertIn('groups:', body)
        status, headers, body = self.get('/')
        self.assertEqual(status, 200)
        for child in ('exporter', 'browser-0', 'browser-1', 'renderer'):
            self.assertIn('<tr data-child="%s" class=up><td class=name><i class=swatch></i>%s</td>' % (child, child),
                          body)
        self.assertEqual(self.get('/nope')[0], 404)
        status, headers, _ = self.get('/metrics', method='POST', body='x')
        self.assertEqual(status, 405)
        self.assertEqual(headers.get('Allow'), 'GET, HEAD')
        status, headers, body = self.get('/metrics', method='HEAD')
        self.assertEqual(status, 200)
        # the TCP listener serves the same
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.port, timeout=10) as r:
            self.assertIn('rendervisor_child_up', r.read().decode())

    # ---- a real Prometheus ---------------------------------------------------
    def test_prometheus_scrapes_and_every_dashboard_query_returns_data(self):
        tmp = tempfile.mkdtemp(prefix='rvprom')
        self.addCleanup(shutil.rmtree, tmp, True)
        web = free_port()
        with open(os.path.join(tmp, 'prometheus.yml'), 'w') as f:
            # The reference dashboard's queries name job="renderer": the same
            # exporter is scraped under that job name too.
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n'
                    '  - job_name: rendervisor\n    static_configs:\n      - targets: ["127.0.0.1:%d"]\n'
                    '  - job_name: renderer\n    static_configs:\n      - targets: ["127.0.0.1:%d"]\n'
                    % (self.port, self.port))
        prom = subprocess.Popen(['prometheus', '--config.file=%s/prometheus.yml' % tmp,
                                 '--storage.tsdb.path=%s/data' % tmp,
                                 '--web.listen-address=127.0.0.1:%d' % web],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (prom.kill(), prom.wait()))

        def query(expr):
            return prom_api(web, '/api/v1/query', query=expr)  # {}: not up yet

        wait_until(lambda: self._up(query), 30, interval=0.5, what='Prometheus scraping the exporter')
        # some renders' worth of reference metrics, so request panels have data too
        for i in range(20):
            self.send('grafana_image_renderer_service_http_request_duration_seconds{status_code="200"} 0.4\n'
                      'grafana_image_renderer_service_http_request_duration_seconds{status_code="500"} 1.2\n'
                      + ''.join('grafana_image_renderer_step_duration_seconds{step="%s"} 0.05\n' % s
                                for s in ('launch', 'newPage', 'prepare', 'navigate', 'panelsRendered',
                                          'screenshot'))
                      + ''.join('rendervisor_renderer_readiness_wait_seconds{rule="%s"} %s\n' % (r, v)
                                for r, v in (('queries', '0.3'), ('paint', '0.02'), ('network', '0')))
                      + 'grafana_image_renderer_browser_info{version="HeadlessChrome/156.0.8078.108"} 1\n'
                      # memory admission, as the renderer reports it (common/names.h)
                      + 'rendervisor_renderer_memory_budget_bytes %d\n' % (700 << 20)
                      + 'rendervisor_renderer_memory_used_bytes %d\n' % ((400 + i) << 20)
                      + 'rendervisor_renderer_memory_available_bytes %d\n' % ((300 - i) << 20)
                      + 'rendervisor_renderer_memory_reserved_bytes %d\n' % (150 << 20)
                      + 'rendervisor_renderer_render_memory_estimate_bytes %d\n' % (120 << 20)
                      + ''.join('rendervisor_renderer_memory_bound{by="%s"} %d\n' % (b, b == 'cgroup')
                                for b in ('cgroup', 'host', 'config'))
                      + 'rendervisor_renderer_queued_renders{waiting_for="memory"} %d\n' % (i % 3)
                      + 'rendervisor_renderer_queued_renders{waiting_for="browser"} %d\n' % (i % 2)
                      + 'rendervisor_renderer_memory_waits_total %d\n' % (2 * i)
                      + 'rendervisor_renderer_memory_retries_total %d\n' % (i // 5)
                      + 'rendervisor_renderer_refused_total{reason="memory"} %d\n' % (i // 4))
            time.sleep(0.8)
        self.assertEqual(self._up(query), True)

        out = subprocess.run([sys.executable, QUERIES, os.path.join(SOURCE, 'dashboards', 'rendervisor.json')],
                             capture_output=True, text=True, check=True)
        panels = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        self.assertGreater(len(panels), 15)
        empty = []
        for p in panels:
            r = query(p['expr'])
            self.assertEqual(r.get('status'), 'success', '%s: %s: %s' % (p['panel'], p['expr'], r))
            if not r['data']['result']:
                empty.append('%s: %s' % (p['panel'], p['expr']))
        self.assertEqual(empty, [], 'queries with no data')

        if os.path.exists(REFERENCE):
            out = subprocess.run([sys.executable, QUERIES, REFERENCE], capture_output=True, text=True, check=True)
            ref = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            self.assertTrue(ref)
            empty = []
            for p in ref:
                r = query(p['expr'])
                self.assertEqual(r.get('status'), 'success', '%s: %s: %s' % (p['panel'], p['expr'], r))
                if not r['data']['result']:
                    empty.append('%s: %s' % (p['panel'], p['expr']))
            self.assertEqual(empty, [], 'reference queries with no data')

    @staticmethod
    def _up(query):
        r = query('up{job="rendervisor"}')
        res = r.get('data', {}).get('result', [])
        return bool(res) and res[0]['value'][1] == '1'

    # ---- children leaving the config ---------------------------------------
    def test_zz_browser_that_leaves_the_config_leaves_metrics(self):
        # runs last (zz): it changes the shared supervisor's config
        rv = self.rv
        exporter = rv.pid('exporter')
        rv.settings['browsers']['count'] = '1'
        rv.write_config()
        rv.signal(signal.SIGHUP)
        wait_until(lambda: rv.pid('exporter') != exporter, 5, what='the exporter restarted')
        wait_until(lambda: 'rendervisor_child_up{child="browser-0"} 1' in self.get('/metrics')[2], 10,
                   what='browser-0 reported again')
        text = self.get('/metrics')[2]
        self.assertNotIn('browser-1', text)
        self.assertFalse(alive(exporter))


    def test_zzz_exporter_stops_cleanly(self):
        # last: SIGTERM to the supervisor stops the exporter with SIGTERM; it
        # must exit 0 (under the sanitizer build, a leak would make it 23)
        rv = self.rv
        rv.signal(signal.SIGTERM)
        self.assertEqual(rv.proc.wait(15), 0)
        exits = rv.records('child exited', child='exporter')
        self.assertTrue(exits, rv.log_text())
        self.assertEqual(exits[-1][1]['code'], '0', rv.log_text())


if __name__ == '__main__':
    unittest.main()
