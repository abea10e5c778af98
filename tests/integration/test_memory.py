"""Issue 12, "It must show": the whole service (the real supervisor, its
exporter, renderer and two Chromium headless shells, the default config's
concurrency 4) in a fresh memory cgroup of 700 MiB, v2 or v1 whichever the
machine has (tests/integration/memcg.py), under six clients rendering
bench/pages/panel.html?hold=120 (about 120 MiB of JavaScript arrays held
for 0.6 s before the panel is drawn) at 1000x500 for RV_MEMORY_SECONDS
(30 by default). The renderer has to admit renders by memory and queue the
rest, so that:

- at least 99% of the renders answer 200, and every 200 is a 1000x500 PNG
  with the panel drawn (bench/render.py's marker pixel);
- the cgroup's OOM kill counter grows by at most 1 per 100 renders;
- /metrics shows the budget the cgroup sets (within 600..700 MiB), bound by
  the cgroup, and renders that waited for memory.

The figures are printed as one `memory: ...` line. Skipped, with the
reason, only where no memory cgroup can be made (not root, no writable
hierarchy). The page server runs in this process, outside the cgroup."""
import collections
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import memcg  # noqa: E402
from harness import (Rendervisor, free_port, free_port_range, http_get, marked_pids,  # noqa: E402
                     parse_report_line, wait_until)
from test_renderer import EXPORTER, RENDERER, SOURCE, default_browser_command  # noqa: E402

# bench/render.py's page server (bench/pages/ on 127.0.0.1) and its PNG
# check (size and the marker pixel the panel draws last); main() is guarded.
_spec = importlib.util.spec_from_file_location('bench_render', os.path.join(SOURCE, 'bench', 'render.py'))
bench_render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_render)

MIB = 1 << 20
LIMIT = 700 * MIB
CLIENTS = 6
HOLD_MIB = 120
WIDTH, HEIGHT = 1000, 500
SECONDS = float(os.environ.get('RV_MEMORY_SECONDS', '30'))
RENDER_TIMEOUT = 60  # the request's own timeout parameter, seconds
TOKEN = '-'  # [renderer] auth_token's default, Grafana's default token
STOP_TIMEOUT = 5.0  # [supervisor] stop_timeout's default
SANITIZED = os.environ.get('RV_SANITIZE', 'none') not in ('', 'none')

BUDGET = 'rendervisor_renderer_memory_budget_bytes'
BOUND = 'rendervisor_renderer_memory_bound'
WAITS = 'rendervisor_renderer_memory_waits_total'


def say(fmt, *args):
    print('memory: ' + (fmt % args if args else fmt), flush=True)


def parse_metrics(text):
    """{family: [(labels as a dict, value)]} of an exposition."""
    out = collections.defaultdict(list)
    for line in text.splitlines():
        if line and not line.startswith('#'):
            family, labels, value = parse_report_line(line)
            out[family].append((dict(labels), value))
    return out


class MemoryTest(unittest.TestCase):
    def setUp(self):
        try:
            self.cg = memcg.MemCgroup(LIMIT, 'rv-memtest')
        except memcg.Unavailable as e:
            self.skipTest(str(e))
        self.addCleanup(self.remove_cgroup)
        self.port = free_port()
        extra = {'supervisor': {'log_level': 'info', 'sample_interval': '1s'},
                 'renderer': {'listen': '127.0.0.1:%d' % self.port, 'concurrency': '4'},
                 'browsers': {'port_base': str(free_port_range(2))}}
        if SANITIZED:
            # ASan's quarantine (up to 256 MiB by design) would restart the
            # renderer or the exporter at their default limits; the memory
            # it holds is inside the cgroup all the same.
            extra['renderer']['memory_limit'] = '0'
            extra['exporter'] = {'memory_limit': '0'}
        # collect=False and the page server started after: no other thread
        # runs while the supervisor's process enters the cgroup before exec
        # (Python's caveat about preexec_fn and threads).
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=2,
                              stop_timeout='%ds' % STOP_TIMEOUT, collect=False, extra=extra)
        self.rv.start(preexec_fn=self.cg.enter)
        self.addCleanup(self.stop_service)
        self.pages, _ = bench_render.start_pages()
        self.addCleanup(self.stop_pages)
        try:
            wait_until(lambda: b'2 of 2' in http_get(self.port, '/healthz', timeout=5)[2], 60, interval=0.2,
                       what='the renderer connected to both browsers')
        except AssertionError:
            self.print_log()
            raise

    # ---- cleanup, in the reverse order of setUp -----------------------------
    def stop_pages(self):
        self.pages.shutdown()
        self.pages.server_close()

    def stop_service(self):
        """SIGTERM as an operator would, then the harness's sweep; every
        process of the service was in the cgroup, so none may be left there."""
        rv = self.rv
        if rv.proc.poll() is None:
            rv.signal(signal.SIGTERM)
            try:
                rv.proc.wait(STOP_TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                say('the supervisor did not stop within %.0f s of SIGTERM', STOP_TIMEOUT + 10)
        left_in_cgroup = []
        try:
            wait_until(lambda: not self.cg.procs(), 3, interval=0.05, what='the cgroup empty')
        except AssertionError:
            left_in_cgroup = self.cg.procs()
        rv.stop()
        left = marked_pids(rv.mark)
        self.assertEqual(left_in_cgroup, [], 'processes still in the cgroup after the supervisor stopped')
        self.assertEqual(left, [], 'processes of the test left after the harness swept')

    def remove_cgroup(self):
        self.cg.remove()
        self.assertFalse(os.path.exists(self.cg.path), 'cgroup %s not removed' % self.cg.path)

    # ---- helpers ------------------------------------------------------------
    def render(self, url):
        """(status, seconds, body); status 0 when the connection failed or
        no answer came in time."""
        q = urllib.parse.urlencode(dict(url=url, width=WIDTH, height=HEIGHT, timeout=RENDER_TIMEOUT))
        t0 = time.monotonic()
        status, _, body = http_get(self.port, '/render?' + q, {'X-Auth-Token': TOKEN}, RENDER_TIMEOUT + 30)
        return status, time.monotonic() - t0, body

    def metrics(self):
        status, _, body = http_get(self.port, '/metrics', timeout=10)
        self.assertEqual(status, 200, "the exporter's /metrics through the renderer")
        return parse_metrics(body.decode())

    def print_log(self):
        """The supervisor's own lines and the renderer's warnings."""
        keep = [line for line in self.rv.log_text().splitlines()
                if 'component=supervisor' in line and 'msg="child output"' not in line
                or 'component=renderer' in line and 'level=info' not in line]
        print('\n'.join(keep[-80:]))

    # ---- the test -----------------------------------------------------------
    def test_renders_in_a_700_mib_cgroup(self):
        url = 'http://127.0.0.1:%d/panel.html?hold=%d' % (self.pages.server_address[1], HOLD_MIB)
        results, lock = [], threading.Lock()
        oom_before = self.cg.oom_kills()
        deadline = time.monotonic() + SECONDS

        def client():
            while time.monotonic() < deadline:
                r = self.render(url)
                with lock:
                    results.append(r)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + RENDER_TIMEOUT + 60)
        took = time.monotonic() - t0
        self.assertFalse([t for t in threads if t.is_alive()], 'render clients still waiting for an answer')
        oom_kills = self.cg.oom_kills() - oom_before
        peak = self.cg.peak()
        m = self.metrics()

        # The PNGs are decoded after the load, not competing with it for CPU.
        statuses = collections.Counter(s for s, _, _ in results)
        bad_png = collections.Counter(bench_render.png_check(b, WIDTH, HEIGHT) for s, _, b in results if s == 200)
        bad_png.pop(None, None)
        errors = collections.Counter(b[:120].decode('utf-8', 'replace').strip() for s, _, b in results if s != 200)
        n, n200 = len(results), statuses[200]
        lat = sorted(t for s, t, _ in results if s == 200)
        budget = [v for _, v in m.get(BUDGET, [])]
        bound = {labels.get('by'): v for labels, v in m.get(BOUND, [])}
        waits = sum(v for _, v in m.get(WAITS, [])) if WAITS in m else None
        say('renders=%d in %.1f s (%d clients), statuses=%s, bad PNGs=%d, oom_kills=%d (allowed %d), '
            'cgroup v%d peak=%s MiB, p50 of 200s=%s s, budget (MiB)=%s, bound=%s, memory waits=%s',
            n, took, CLIENTS, dict(sorted(statuses.items())), sum(bad_png.values()), oom_kills, n // 100,
            self.cg.version, '%.0f' % (peak / MIB) if peak is not None else '?',
            '%.2f' % lat[len(lat) // 2] if lat else '-',
            ','.join('%.0f' % (b / MIB) for b in budget) or 'absent', bound or 'absent',
            'absent' if waits is None else '%.0f' % waits)
        for text, count in errors.most_common(5):
            say('%d answered: %s', count, text)
        for problem, count in bad_png.most_common(5):
            say('%d PNGs: %s', count, problem)

        # Every check, so that one run shows all that is wrong.
        problems = []
        if n < CLIENTS:
            problems.append('only %d renders answered' % n)
        if n200 * 100 < n * 99:
            problems.append('%d of %d renders answered 200 (%.1f%%), at least 99%% must'
                            % (n200, n, 100.0 * n200 / max(n, 1)))
        if bad_png:
            problems.append('%d of the 200s are not a %dx%d PNG with the panel drawn: %s'
                            % (sum(bad_png.values()), WIDTH, HEIGHT, dict(bad_png)))
        if oom_kills > n // 100:
            problems.append('%d OOM kills in the cgroup for %d renders, at most %d allowed'
                            % (oom_kills, n, n // 100))
        if len(budget) != 1 or not 600 * MIB <= budget[0] <= LIMIT:
            problems.append('%s is %s, not one value within [600 MiB, 700 MiB]' % (BUDGET, budget or 'absent'))
        if bound.get('cgroup') != 1:
            problems.append('%s{by="cgroup"} is %s, not 1 (%s)' % (BOUND, bound.get('cgroup', 'absent'), bound))
        if not waits:
            problems.append('%s is %s: no render waited for memory' % (WAITS, 'absent' if waits is None else 0))
        if problems:
            self.print_log()
            self.fail('\n'.join(problems))


class NoCgroupOfItsOwnTest(unittest.TestCase):
    """Where the service has no memory cgroup of its own (the hierarchy's
    root), what it uses is the sum of its children's PSS, which the
    supervisor sends the renderer every sample ("memory_kib N" on
    renderer.ctl), and the host's MemAvailable binds the budget."""

    def setUp(self):
        try:
            memcg._version()
        except memcg.Unavailable as e:
            self.skipTest(str(e))
        self.port = free_port()
        self.rv = Rendervisor(exporter=os.path.abspath(EXPORTER), browsers=default_browser_command(),
                              renderer=os.path.abspath(RENDERER), browser_count=1, collect=False,
                              extra={'supervisor': {'log_level': 'info', 'sample_interval': '500ms'},
                                     'renderer': {'listen': '127.0.0.1:%d' % self.port},
                                     'browsers': {'port_base': str(free_port_range(1))}})
        self.rv.start(preexec_fn=memcg.root_enter)
        self.addCleanup(self.rv.stop)

    def test_used_is_the_childrens_pss(self):
        wait_until(lambda: http_get(self.port, '/healthz', timeout=5)[0] == 200, 60, interval=0.2,
                   what='the renderer connected to its browser')
        start = [line for line in self.rv.log_text().splitlines() if 'msg="memory budget from' in line]
        self.assertTrue(start, 'the renderer logs where it reads memory from')
        self.assertTrue('no memory cgroup' in start[0] or "the hierarchy's root" in start[0], start[0])

        def figures():
            status, _, body = http_get(self.port, '/metrics', timeout=10)
            m = parse_metrics(body.decode()) if status == 200 else {}
            used = [v for _, v in m.get('rendervisor_renderer_memory_used_bytes', [])]
            pss = [v for _, v in m.get('rendervisor_child_proportional_memory_bytes', [])]
            bound = {labels['by']: v for labels, v in m.get(BOUND, [])}
            return (used[0] if used else 0), sum(pss), bound
        # The renderer reports every 5 s at rest; the supervisor samples
        # every 500 ms: wait for a report made from the supervisor's figure.
        wait_until(lambda: figures()[0] > 0, 20, interval=0.5, what='the used figure reported')
        used, pss, bound = figures()
        say('no cgroup of its own: used %.0f MiB, children PSS %.0f MiB, bound %s', used / MIB, pss / MIB, bound)
        self.assertGreater(pss, 0)
        self.assertLess(abs(used - pss), 0.25 * pss, 'used is the children\'s PSS sum, within a quarter')
        self.assertEqual(bound.get('host'), 1.0, bound)
        self.assertNotIn('control line refused', self.rv.log_text())


if __name__ == '__main__':
    unittest.main()
