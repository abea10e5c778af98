"""The real rendervisor supervising small real children: restarts, backoff,
memory limits, orphans, shutdown, reloads and the reports it sends."""
import fcntl
import http.client
import http.server
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ALLOC, SUPERVISOR, RedPage, Rendervisor, alive, children_of,  # noqa: E402
                     free_port, free_port_range, http_get, marked_pids, proc_stat, process_tree, sh,
                     wait_until)

MIB = 1 << 20
EXPORTER = os.path.abspath(os.environ.get('RV_EXPORTER', 'build/exporter/rendervisor-exporter'))
RENDERER = os.path.abspath(os.environ.get('RV_RENDERER', 'build/renderer/rendervisor-renderer'))
SHELL = '/usr/lib/chromium/chromium-headless-shell'
BROWSER = SHELL + ' --no-sandbox --disable-gpu --disable-dev-shm-usage'


def proc_ids(pid):
    """(uids, gids, groups) of a process, from /proc/PID/status; None when it is gone."""
    ids = {}
    try:
        f = open('/proc/%d/status' % pid)
    except FileNotFoundError:
        return None
    with f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('Uid', 'Gid', 'Groups'):
                ids[key] = [int(x) for x in rest.split()]
    return ids['Uid'], ids['Gid'], sorted(set(ids['Groups']))


def other_ipv4_addresses():
    """The IPv4 addresses of this machine's interfaces other than loopback."""
    out = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                req = struct.pack('256s', name.encode()[:15])
                addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on it
            if not addr.startswith('127.'):
                out.append(addr)
    finally:
        s.close()
    return out


class SupervisorTest(unittest.TestCase):
    def rv(self, **kw):
        r = Rendervisor(**kw)
        self.addCleanup(r.stop)
        return r

    def assert_no_zombies_under(self, pid):
        zombies = [p for p in children_of(pid) if (proc_stat(p) or ('?',))[0] == 'Z']
        self.assertEqual(zombies, [], 'zombies left under pid %d' % pid)

    # ---- restarts ------------------------------------------------------
    def test_sigkilled_child_is_back_within_1s_counted_as_signal(self):
        r = self.rv().start()
        old = r.wait_started('browser-0')
        r.wait_started('renderer')
        killed_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        r.wait_started('browser-0', count=2, timeout=3)
        back_at = r.starts('browser-0')[-1][0]
        self.assertLess(back_at - killed_at, 1.0)
        new = r.pid('browser-0')
        self.assertNotEqual(new, old)
        self.assertTrue(alive(new))
        wait_until(lambda: r.value('rendervisor_child_restarts_total', child='browser-0', reason='signal') == 1,
                   3, what='restart counted with reason signal')
        self.assertEqual(r.value('rendervisor_child_restarts_total', child='browser-0', reason='exit'), 0)
        self.assertEqual(r.value('rendervisor_child_restarts_total', child='renderer', reason='signal'), 0)
        self.assertTrue(r.records('child killed', child='browser-0', signal='KILL'))

    def test_child_that_keeps_exiting_restarts_at_growing_intervals(self):
        r = self.rv(renderer=sh('echo going away >&2; exit 3')).start()
        r.wait_started('renderer', count=6, timeout=10)
        times = [t for t, _ in r.starts('renderer')]
        gaps = [b - a for a, b in zip(times, times[1:])]
        expected = [0.1, 0.2, 0.4, 0.8, 1.6]
        for gap, want in zip(gaps, expected):
            self.assertGreaterEqual(gap, want * 0.95, 'gaps %r' % gaps)
            self.assertLess(gap, want + 0.25, 'gaps %r' % gaps)
        self.assertTrue(all(b > a for a, b in zip(gaps, gaps[1:])), 'gaps %r' % gaps)
        exits = r.records('child exited', child='renderer', code=3)
        self.assertGreaterEqual(len(exits), 5)
        wait_until(lambda: (r.value('rendervisor_child_restarts_total', child='renderer', reason='exit') or 0) >= 5,
                   3, what='exit restarts reported')
        # the child's stderr reached the log, tagged with its name
        self.assertTrue(r.records('child output', child='renderer', stream='stderr', line='going away'))

    def test_program_that_cannot_run_is_reported_and_retried(self):
        r = self.rv(renderer='/nonexistent/rv-no-such-program').start()
        r.wait_started('renderer', count=3, timeout=5)
        out = r.records('child output', child='renderer', stream='stderr')
        self.assertTrue(any('/nonexistent/rv-no-such-program' in f['line'] and 'No such file' in f['line']
                            for _, f in out), r.log_text())
        self.assertTrue(r.records('child exited', child='renderer', code=127))
        # the others are not disturbed
        self.assertEqual(len(r.starts('browser-0')), 1)

    def test_tree_over_memory_limit_is_restarted_with_reason_memory_limit(self):
        r = self.rv(browsers='%s 40 3' % ALLOC, extra={'browsers': {'memory_limit': '100M'}}).start()
        first = r.wait_started('browser-0')
        wait_until(lambda: r.records('child over its memory limit', child='browser-0'), 10,
                   what='memory limit log line')
        rec = r.records('child over its memory limit', child='browser-0')[0][1]
        self.assertEqual(int(rec['limit_bytes']), 100 * MIB)
        self.assertGreater(int(rec['pss_bytes']), 100 * MIB)
        self.assertEqual(int(rec['processes']), 3)
        r.wait_started('browser-0', count=2, timeout=10)
        self.assertNotEqual(r.pid('browser-0'), first)
        wait_until(lambda: (r.value('rendervisor_child_restarts_total', child='browser-0',
                                    reason='memory_limit') or 0) >= 1, 5, what='memory_limit restart reported')
        self.assertEqual(r.value('rendervisor_child_restarts_total', child='browser-0', reason='signal'), 0)
        self.assertFalse(alive(first))

    # ---- orphans and zombies --------------------------------------------
    def test_killed_childs_grandchildren_are_gone_and_no_zombie_remains(self):
        # one grandchild stays in the group; one leaves group and session
        r = self.rv(browsers=sh('sleep 1000 & setsid sleep 1001 & wait')).start()
        leader = r.wait_started('browser-0')
        grand = wait_until(lambda: len(children_of(leader)) == 2 and children_of(leader), 3,
                           what='two grandchildren')
        os.kill(leader, signal.SIGKILL)
        r.wait_started('browser-0', count=2, timeout=3)
        wait_until(lambda: not any(alive(p) for p in grand), 3, what='grandchildren to be gone')
        wait_until(lambda: r.records('ending orphan that belongs to no child'), 3,
                   what='the escaped orphan to be ended')
        time.sleep(0.3)
        self.assert_no_zombies_under(r.proc.pid)
        new_leader = r.pid('browser-0')
        self.assertEqual(len(children_of(new_leader)), 2)

    # ---- shutdown ----------------------------------------------------------
    def test_sigterm_ends_every_process_after_drain_and_stop_timeout_exits_0(self):
        # The renderer first, SIGKILLed after its drain_timeout + stop_timeout
        # (it ignores SIGTERM); only then the others, which end on SIGTERM.
        stubborn = sh("trap '' TERM; sleep 1000 & sleep 1000 & wait; wait")
        r = self.rv(browsers=sh('sleep 1000 & sleep 1000 & wait'), renderer=stubborn,
                    browser_count=2, stop_timeout='1s', extra={'renderer': {'drain_timeout': '1s'}}).start()
        for c in ('exporter', 'browser-0', 'browser-1', 'renderer'):
            r.wait_started(c)
        wait_until(lambda: len(marked_pids(r.mark)) >= 1 + 1 + 2 * 3 + 3, 5, what='all processes up')
        t0 = time.monotonic()
        r.signal(signal.SIGTERM)
        rc = r.proc.wait(10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 2.0 + 0.8)
        wait_until(lambda: not marked_pids(r.mark), 1, what='every child process gone')
        self.assertEqual(r.records('stopping child', child='renderer')[-1][1]['timeout_ms'], '2000')
        killed = r.records('child did not stop in time, killing', child='renderer')
        self.assertTrue(killed)
        for c in ('exporter', 'browser-0', 'browser-1'):
            stops = r.records('stopping child', child=c)
            self.assertTrue(stops, c)
            self.assertGreaterEqual(stops[-1][0], killed[-1][0], '%s was stopped before the renderer' % c)
        self.assertTrue(r.records('all children stopped, exiting'))

    def test_sigkill_of_the_supervisor_leaves_no_child_running(self):
        r = self.rv(browsers=sh('sleep 1000 & setsid sleep 1001 & wait'), browser_count=2).start()
        for c in ('exporter', 'browser-0', 'browser-1', 'renderer'):
            r.wait_started(c)
        wait_until(lambda: len(marked_pids(r.mark)) >= 1 + 1 + 2 * 3 + 1 + 1, 5, what='all processes up')
        # The guardian learns of a process that left its session (setsid) from
        # the sample after it did: wait until a sample has seen both browsers'
        # trees whole, then for two more samples (setsid may come just after).
        for b in ('browser-0', 'browser-1'):
            wait_until(lambda: r.value('rendervisor_child_processes', child=b) == 3, 3,
                       what='a sample of %s with its 3 processes' % b)
        seen = r.report_count('rendervisor_child_processes', child='browser-1')
        wait_until(lambda: r.report_count('rendervisor_child_processes', child='browser-1') >= seen + 2, 3,
                   what='two more samples')
        r.proc.kill()
        r.proc.wait(5)
        wait_until(lambda: not marked_pids(r.mark), 2, what='every process gone after SIGKILL of the supervisor')

    # ---- configuration ---------------------------------------------------
    def test_bad_config_is_refused_with_its_line_number(self):
        r = self.rv(collect=False)
        text = open(r.config).read().splitlines()
        line = text.index('sample_interval = 100ms') + 1
        text[line - 1] = 'sample_interval = soon'
        r.write_config('\n'.join(text) + '\n')
        for args in (['--config', r.config], ['--check-config', r.config]):
            p = subprocess.run([SUPERVISOR] + args, capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn('line=%d' % line, p.stderr)
            self.assertIn('key=supervisor.sample_interval', p.stderr)
            self.assertIn(r.config, p.stderr)
        self.assertEqual(marked_pids(r.mark), [])
        # and a valid one is accepted
        r.write_config()
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_sighup_restarts_only_changed_children_and_refuses_bad_config(self):
        r = self.rv(browser_count=2).start()
        pids = {c: r.wait_started(c) for c in ('exporter', 'browser-0', 'browser-1', 'renderer')}
        r.settings['renderer']['command'] = sh('exec sleep 1002')
        r.write_config()
        r.signal(signal.SIGHUP)
        r.wait_started('renderer', count=2, timeout=3)
        wait_until(lambda: r.value('rendervisor_child_restarts_total', child='renderer', reason='requested') == 1,
                   3, what='requested restart reported')
        for c in ('exporter', 'browser-0', 'browser-1'):
            self.assertEqual(r.pid(c), pids[c], c)
            self.assertTrue(alive(pids[c]))
        renderer = r.pid('renderer')

        # a broken file is refused and nothing changes
        r.write_config('[supervisor]\nruntime_dir = %s\nsample_interval = 100ms\n[bogus]\n' % r.run_dir)
        r.signal(signal.SIGHUP)
        wait_until(lambda: r.records('config reload refused, keeping the running config'), 3,
                   what='reload refused')
        self.assertTrue(any('section=bogus' in f['reason'] for _, f in
                            r.records('config reload refused, keeping the running config')))
        time.sleep(0.3)
        self.assertEqual(r.pid('renderer'), renderer)
        for c, p in pids.items():
            if c != 'renderer':
                self.assertTrue(alive(p), c)
        self.assertTrue(alive(renderer))

        # a browser fewer: browser-1 is stopped for good
        r.settings['browsers']['count'] = '1'
        r.settings['renderer']['command'] = sh('exec sleep 1002')
        r.write_config()
        r.signal(signal.SIGHUP)
        wait_until(lambda: not alive(pids['browser-1']), 5, what='browser-1 stopped')
        wait_until(lambda: r.records('child removed from the config', child='browser-1'), 3, what='removal log')
        self.assertTrue(alive(pids['browser-0']))

    def test_json_logs_are_one_object_per_line(self):
        r = self.rv(renderer=sh('echo "a \\"quoted\\" line"; exit 3'),
                    extra={'supervisor': {'log_format': 'json'}}).start()
        wait_until(lambda: r.log_text().count('"child started"') >= 5, 5, what='starts logged')
        r.signal(signal.SIGTERM)
        self.assertEqual(r.proc.wait(10), 0)
        lines = r.log_text().splitlines()
        self.assertTrue(lines)
        records = [json.loads(line) for line in lines]
        for rec in records:
            for key in ('time', 'level', 'component', 'message'):
                self.assertIn(key, rec)
            self.assertEqual(rec['component'], 'supervisor')
        started = [x for x in records if x['message'] == 'child started' and x['child'] == 'renderer']
        self.assertGreaterEqual(len(started), 2)
        self.assertIsInstance(started[0]['pid'], int)
        out = [x for x in records if x['message'] == 'child output' and x['child'] == 'renderer']
        self.assertEqual(out[0]['line'], 'a "quoted" line')
        self.assertEqual(out[0]['stream'], 'stdout')

    # ---- reports -------------------------------------------------------------
    def test_reports_carry_true_figures(self):
        r = self.rv(browsers='%s 100' % ALLOC, renderer='%s 20 3' % ALLOC,
                    extra={'browsers': {'memory_limit': '1G'}}).start()
        r.wait_started('browser-0')
        wait_until(lambda: (r.value('rendervisor_child_resident_memory_bytes', child='browser-0') or 0) >= 100 * MIB,
                   5, what='browser-0 RSS >= 100 MiB')
        self.assertGreaterEqual(r.value('rendervisor_child_proportional_memory_bytes', child='browser-0'), 99 * MIB)
        self.assertLess(r.value('rendervisor_child_resident_memory_bytes', child='browser-0'), 140 * MIB)
        self.assertEqual(r.value('rendervisor_child_processes', child='browser-0'), 1)
        self.assertEqual(r.value('rendervisor_child_up', child='browser-0'), 1)
        self.assertEqual(r.value('rendervisor_child_state', child='browser-0', state='running'), 1)
        self.assertEqual(r.value('rendervisor_child_memory_limit_bytes', child='browser-0'), 1 << 30)
        self.assertGreaterEqual(r.value('rendervisor_child_open_fds', child='browser-0'), 3)
        self.assertGreater(r.value('rendervisor_child_max_fds', child='browser-0'), 3)
        self.assertGreater(r.value('rendervisor_child_virtual_memory_bytes', child='browser-0'), 100 * MIB)
        start = r.value('rendervisor_child_start_time_seconds', child='browser-0')
        self.assertLess(abs(start - time.time()), 30)
        # a tree of three processes of 20 MiB each is summed
        wait_until(lambda: r.value('rendervisor_child_processes', child='renderer') == 3, 5,
                   what='renderer tree of 3')
        wait_until(lambda: (r.value('rendervisor_child_resident_memory_bytes', child='renderer') or 0) >= 60 * MIB,
                   5, what='renderer RSS >= 60 MiB')
        # CPU seconds are there and never go down
        cpu = [v for _, f, l, v in list(r.report_log)
               if f == 'rendervisor_child_cpu_seconds_total' and ('child', 'browser-0') in l
               and ('mode', 'user') in l]
        self.assertTrue(cpu)
        self.assertEqual(cpu, sorted(cpu))

    # ---- security: the children's user, DevTools on loopback ----------------
    def test_children_run_as_the_configured_user(self):
        # Issue 5: the supervisor is root, [supervisor] user is a user made
        # for this test; every child and every browser process runs as it,
        # runtime_dir and the sockets are that user's, and the exporter still
        # takes the (root) supervisor's reports.
        if os.geteuid() != 0:
            self.skipTest('needs root: only a root supervisor can run its children as another user')
        if not shutil.which('useradd') or not os.path.exists(SHELL):
            self.skipTest('needs useradd and %s' % SHELL)
        name = 'rvit%s' % uuid.uuid4().hex[:8]
        subprocess.run(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent',
                        '--shell', '/usr/sbin/nologin', name], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ['groupdel', name], capture_output=True)
        self.addCleanup(subprocess.run, ['userdel', '-f', name], capture_output=True)
        pw = pwd.getpwnam(name)
        groups = sorted(set(os.getgrouplist(name, pw.pw_gid)))

        web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), RedPage)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        self.addCleanup(web.server_close)
        self.addCleanup(web.shutdown)
        mport, rport, base = free_port(), free_port(), free_port_range(1)
        r = self.rv(exporter=EXPORTER, renderer=RENDERER, browsers=BROWSER, collect=False,
                    extra={'supervisor': {'user': name},
                           'exporter': {'listen': '127.0.0.1:%d' % mport},
                           'renderer': {'listen': '127.0.0.1:%d' % rport, 'auth_token': 'tok'},
                           'browsers': {'port_base': str(base)}})
        # the children read the config file as that user
        os.chmod(r.dir, 0o711)
        os.chmod(r.config, 0o644)
        r.start()
        try:
            wait_until(lambda: http_get(rport, '/healthz', timeout=2)[0] == 200, 60, interval=0.1,
                       what='the renderer connected to its browser')
        except AssertionError:
            print(r.log_text()[-4000:])
            raise

        # Every process of every child, from /proc: real, effective, saved
        # and fs ids are the user's, and its groups are the user's groups.
        self.assertEqual(proc_ids(r.proc.pid)[0], [0, 0, 0, 0])
        for child in ('exporter', 'renderer', 'browser-0'):
            pids = process_tree(r.pid(child))
            if child == 'browser-0':
                self.assertGreater(len(pids), 2, 'a Chromium of one process?')
            for p in pids:
                ids = proc_ids(p)
                if ids is None:
                    continue  # a helper that has ended since
                uids, gids, grps = ids
                self.assertEqual(uids, [pw.pw_uid] * 4, '%s pid %d' % (child, p))
                self.assertEqual(gids, [pw.pw_gid] * 4, '%s pid %d' % (child, p))
                self.assertEqual(grps, groups, '%s pid %d' % (child, p))

        # runtime_dir, the sockets and the profile are the user's, and private
        def owned(path, mode):
            st = os.lstat(path)
            self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), path)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, '%s: %o' % (path, stat.S_IMODE(st.st_mode)))
            return st
        self.assertTrue(stat.S_ISDIR(owned(r.run_dir, 0o700).st_mode))
        for sock in ('exporter.sock', 'ingest.sock'):
            self.assertTrue(stat.S_ISSOCK(owned(os.path.join(r.run_dir, sock), 0o600).st_mode))
        owned(os.path.join(r.run_dir, 'browser-0.profile'), 0o700)

        # /metrics: the supervisor's reports (uid 0) are taken, none refused
        def metrics():
            text = http_get(mport, '/metrics', timeout=5)[2].decode()
            ok = ('rendervisor_child_up{child="browser-0"} 1' in text and
                  'rendervisor_child_up{child="renderer"} 1' in text and
                  'grafana_image_renderer_browser_info{' in text)
            return text if ok else None
        text = wait_until(metrics, 10, interval=0.1, what="the supervisor's and the renderer's reports in /metrics")
        self.assertIn('rendervisor_ingest_rejected_total{reason="peer"} 0', text)
        self.assertRegex(text, r'rendervisor_child_resident_memory_bytes\{child="renderer"\} [1-9]')

        # and the browser renders, as that user
        q = urllib.parse.urlencode(dict(url='http://127.0.0.1:%d/' % web.server_address[1], width=50, height=50))
        status, headers, body = http_get(rport, '/render?' + q, {'X-Auth-Token': 'tok'}, timeout=60)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers['Content-Type'], 'image/png')

        # A user gone while running: the next start of a child fails loudly,
        # naming the child and the user, and nothing runs as root instead.
        subprocess.run(['userdel', '-f', name], check=True, capture_output=True)
        os.kill(r.pid('renderer'), signal.SIGKILL)
        want = 'rendervisor: cannot run child=renderer as user=%s: no such user' % name
        wait_until(lambda: any(f.get('line') == want for _, f in r.records('child output', child='renderer')), 5,
                   what='the failed start logged')
        wait_until(lambda: r.records('child exited', child='renderer', code=126), 5, what='exit status 126')

    def test_a_user_that_does_not_exist_is_a_config_error(self):
        r = self.rv(collect=False, extra={'supervisor': {'user': 'no-such-user-rvit'}})
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('key=supervisor.user: invalid value "no-such-user-rvit": no such user', p.stderr)

    def test_check_config_takes_a_partial_file(self):
        # every key has a default: a file of one key passes, the commands
        # being the shipped ones; a bad key in it still fails, by its line.
        r = self.rv(collect=False)
        with open(r.config, 'w') as f:
            f.write('[renderer]\nauth_token = x\n')
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn('missing', p.stderr)
        with open(r.config, 'w') as f:
            f.write('[renderer]\nauth_token = x\nconcurrency = 0\n')
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('line=3 key=renderer.concurrency: invalid value "0"', p.stderr)
        self.assertEqual(p.stderr.count('file='), 1, p.stderr)

    def test_a_file_without_commands_starts_the_shipped_ones(self):
        # no command keys: rendervisor-exporter and rendervisor-renderer from
        # PATH, and the default file's headless shell for the browsers
        if not os.path.exists(SHELL):
            self.skipTest('needs %s' % SHELL)
        port = free_port()
        r = self.rv(collect=False)
        r.write_config('[supervisor]\nruntime_dir = %s\n[exporter]\nlisten =\n'
                       '[renderer]\nlisten = 127.0.0.1:%d\nauth_token = x\n' % (r.run_dir, port))
        path = '%s:%s:%s' % (os.path.dirname(EXPORTER), os.path.dirname(RENDERER), os.environ.get('PATH', ''))
        r.start(env={'PATH': path})
        wait_until(lambda: b'2 of 2' in http_get(port, '/healthz', timeout=2)[2], 60, interval=0.2,
                   what='the renderer and both default browsers up')

        def exe(child):
            return os.path.realpath('/proc/%d/exe' % r.pid(child))
        self.assertEqual(exe('exporter'), os.path.realpath(EXPORTER))
        self.assertEqual(exe('renderer'), os.path.realpath(RENDERER))
        self.assertEqual(exe('browser-1'), os.path.realpath(SHELL))

    def test_a_port_taken_twice_is_refused_at_check_start_and_reload(self):
        # the stand-in children bind nothing: the refusal is the config's own
        port = free_port()
        clash = {'exporter': {'listen': '127.0.0.1:%d' % port}, 'renderer': {'listen': '0.0.0.0:%d' % port}}
        want = ('key=renderer.listen: renderer.listen 0.0.0.0:%d and exporter.listen 127.0.0.1:%d both take '
                'port %d' % (port, port, port))
        r = self.rv(collect=False, extra=clash)
        for args in (['--check-config', r.config], ['--config', r.config]):
            p = subprocess.run([SUPERVISOR] + args, capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(want, p.stderr)
        self.assertEqual(marked_pids(r.mark), [])

        # on a reload, the running config stays
        r = self.rv().start()
        renderer = r.wait_started('renderer')
        for section, kv in clash.items():
            r.settings[section].update(kv)
        r.settings['renderer']['command'] = sh('exec sleep 1002')
        r.write_config()
        r.signal(signal.SIGHUP)
        wait_until(lambda: r.records('config reload refused, keeping the running config'), 3,
                   what='reload refused')
        self.assertTrue(any(want in f['reason'] for _, f in
                            r.records('config reload refused, keeping the running config')))
        time.sleep(0.3)
        self.assertEqual(r.pid('renderer'), renderer)
        self.assertTrue(alive(renderer))

    def test_a_devtools_port_in_the_command_is_refused_over_pipes(self):
        # devtools = pipe (the default) is there so no browser listens on a
        # port: a command that would open one anyway does not pass the check.
        r = self.rv(collect=False, browsers=BROWSER + ' --remote-debugging-port=9222')
        p = subprocess.run([SUPERVISOR, '--check-config', r.config], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('key=browsers.command: --remote-debugging-port=9222 opens DevTools on a TCP port, which '
                      'devtools = pipe is there to avoid; remove it (or set devtools = port, for debugging only)',
                      p.stderr)

    def test_devtools_answers_on_loopback_only(self):
        # devtools = port (the debugging opt-in): the supervisor appends
        # --remote-debugging-address=127.0.0.1 after the operator's command
        # (where a wider one is written on purpose): Chromium takes the last,
        # so DevTools, which has no authentication, never listens beyond
        # loopback.
        if not os.path.exists(SHELL):
            self.skipTest('needs %s' % SHELL)
        base = free_port_range(1)
        r = self.rv(browsers=BROWSER + ' --remote-debugging-address=0.0.0.0',
                    extra={'browsers': {'port_base': str(base), 'devtools': 'port'}}).start()
        pid = r.wait_started('browser-0', timeout=10)

        def argv():
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                words = f.read().decode().split('\0')
            return words if '--remote-debugging-port=%d' % base in words else None
        argv = wait_until(argv, 10, what='browser-0 exec\'d')   # a fork still shows our own argv
        addresses = [a for a in argv if a.startswith('--remote-debugging-address=')]
        self.assertEqual(addresses[-1], '--remote-debugging-address=127.0.0.1', argv)

        def answers(host):
            try:
                c = http.client.HTTPConnection(host, base, timeout=2)
                c.request('GET', '/json/version')
                ok = c.getresponse().status == 200
                c.close()
                return ok
            except OSError:
                return False
        wait_until(lambda: answers('127.0.0.1'), 20, interval=0.1, what='DevTools on 127.0.0.1')
        others = other_ipv4_addresses()
        if not others:
            self.skipTest('DevTools answers on 127.0.0.1; this machine has no non-loopback IPv4 address, '
                          'so that it does not answer on one was not checked')
        for addr in others:
            with self.assertRaises(OSError, msg='DevTools answers on %s:%d' % (addr, base)):
                socket.create_connection((addr, base), timeout=2).close()
            self.assertFalse(answers(addr), addr)


if __name__ == '__main__':
    unittest.main()
