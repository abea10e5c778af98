"""The real rendervisor supervising small real children: restarts, backoff,
memory limits, orphans, shutdown, reloads and the reports it sends."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ALLOC, SUPERVISOR, Rendervisor, alive, children_of,  # noqa: E402
                     marked_pids, proc_stat, sh, wait_until)

MIB = 1 << 20


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
    def test_sigterm_ends_every_process_within_stop_timeout_and_exits_0(self):
        stubborn = sh("trap '' TERM; sleep 1000 & sleep 1000 & wait; wait")
        r = self.rv(browsers=sh('sleep 1000 & sleep 1000 & wait'), renderer=stubborn,
                    browser_count=2, stop_timeout='1s').start()
        for c in ('exporter', 'browser-0', 'browser-1', 'renderer'):
            r.wait_started(c)
        wait_until(lambda: len(marked_pids(r.mark)) >= 1 + 1 + 2 * 3 + 3, 5, what='all processes up')
        t0 = time.monotonic()
        r.signal(signal.SIGTERM)
        rc = r.proc.wait(10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 1.0 + 0.8)
        wait_until(lambda: not marked_pids(r.mark), 1, what='every child process gone')
        self.assertTrue(r.records('child did not stop in time, killing', child='renderer'))
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


if __name__ == '__main__':
    unittest.main()
