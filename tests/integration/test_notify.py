"""The real rendervisor under a stand-in for systemd: NOTIFY_SOCKET names a
Unix datagram socket this test owns, and what the supervisor sends there is
checked as systemd would take it (docs/install.md, "Readiness"): READY=1
only once the children run (and, with health probes on, once the renderer
answers its health probe, which it does once it listens), STATUS= through a restart, RELOADING=1 then READY=1 on
SIGHUP, STOPPING=1 on SIGTERM, each from the supervisor's own pid."""
import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Rendervisor, children_of, free_port, wait_until  # noqa: E402

# A renderer stand-in: silent for a while, then an HTTP server on the port
# the config gives the renderer; the file named in argv[2] marks the moment
# it listens. The supervisor's --config FILE comes after that and is ignored.
SLOW_RENDERER = r'''
import http.server, os, socket, sys, threading, time
port, mark, delay, run = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
time.sleep(delay)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(('127.0.0.1', port), H)
open(mark, 'w').close()
threading.Thread(target=srv.serve_forever, daemon=True).start()
# Listening: now answer the supervisor's health probes ("probe S T" on
# renderer.ctl) as the renderer does, "alive S" and a letter per browser.
path = os.path.join(run, 'renderer.ctl')
if os.path.exists(path):
    os.unlink(path)
ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ctl.bind(path)
while True:
    words = ctl.recv(64).decode().split()
    if len(words) == 3 and words[0] == 'probe':
        try:
            ctl.sendto(('alive %s -\n' % words[1]).encode(), os.path.join(run, 'supervisor.ctl'))
        except OSError:
            pass
'''


class Notify:
    """What the supervisor sends to NOTIFY_SOCKET: (time, sender pid, {field: value})."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.on_message = None
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        creds_size = struct.calcsize('3i')
        while self.running:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds_size))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack('3i', payload[:creds_size])[0]
            fields = {}
            for line in data.decode().split('\n'):
                if line:
                    key, _, value = line.partition('=')
                    fields[key] = value
            msg = (time.monotonic(), pid, fields)
            hook = self.on_message
            if hook:
                hook(msg)
            with self.lock:
                self.messages.append(msg)

    def all(self):
        with self.lock:
            return list(self.messages)

    def with_field(self, key, value=None):
        return [m for m in self.all() if key in m[2] and (value is None or m[2][key] == value)]

    def statuses(self):
        return [m[2]['STATUS'] for m in self.all() if 'STATUS' in m[2]]

    def close(self):
        self.running = False
        self.sock.close()
        self.thread.join(2)


class NotifyTest(unittest.TestCase):
    def start(self, **kw):
        r = Rendervisor(**kw)
        self.addCleanup(r.stop)
        n = Notify(os.path.join(r.dir, 'notify.sock'))
        self.addCleanup(n.close)
        return r, n

    def wait_ready(self, n, count=1, timeout=10):
        wait_until(lambda: len(n.with_field('READY', '1')) >= count, timeout, what='READY=1 #%d' % count)
        return n.with_field('READY', '1')[count - 1]

    def test_ready_once_the_children_run_and_stopping_on_sigterm(self):
        r, n = self.start(browser_count=2)
        seen = {}

        def at_ready(msg):
            # What runs under the supervisor the moment READY=1 arrives.
            if msg[2].get('READY') == '1' and 'children' not in seen:
                seen['children'] = children_of(r.proc.pid)
        n.on_message = at_ready
        r.start({'NOTIFY_SOCKET': n.path})
        ready = self.wait_ready(n)
        self.assertEqual(ready[1], r.proc.pid, 'READY=1 comes from the supervisor itself')
        self.assertEqual(ready[2].get('STATUS'), '4 of 4 children running, 0 restarting')
        # The guardian, the exporter, 2 browsers and the renderer.
        self.assertGreaterEqual(len(seen['children']), 5, 'children at READY=1: %r' % seen['children'])
        for child in ('exporter', 'browser-0', 'browser-1', 'renderer'):
            wait_until(lambda: r.starts(child), 3, what='%s started' % child)
            self.assertLess(r.starts(child)[0][0], ready[0] + 0.5)
        # Before READY=1, only "starting" statuses.
        before = [m[2]['STATUS'] for m in n.all() if m[0] < ready[0] and 'STATUS' in m[2]]
        self.assertTrue(all(s.startswith('starting, ') for s in before), before)
        time.sleep(0.5)
        self.assertEqual(len(n.with_field('READY')), 1, 'READY=1 is sent once')

        r.signal(signal.SIGTERM)
        wait_until(lambda: n.with_field('STOPPING', '1'), 5, what='STOPPING=1')
        self.assertEqual(r.proc.wait(10), 0)
        stopping = n.with_field('STOPPING', '1')
        self.assertEqual(len(stopping), 1)
        self.assertEqual(stopping[0][1], r.proc.pid)
        # The last word: every child is gone.
        self.assertEqual(n.statuses()[-1], 'stopping, 0 of 4 children left')
        senders = {m[1] for m in n.all()}
        self.assertEqual(senders, {r.proc.pid}, 'every message from the supervisor')

    def test_ready_waits_until_the_renderer_answers_its_probe(self):
        port = free_port()
        r, n = self.start(extra={'supervisor': {'health_interval': '5s'},
                                 'renderer': {'listen': '127.0.0.1:%d' % port}})
        script = os.path.join(r.dir, 'renderer.py')
        with open(script, 'w') as f:
            f.write(SLOW_RENDERER)
        mark = os.path.join(r.dir, 'listening')
        r.settings['renderer']['command'] = 'python3 %s %d %s 1.5 %s' % (script, port, mark, r.run_dir)
        r.write_config()
        seen = {}

        def at_ready(msg):
            if msg[2].get('READY') == '1' and 'listening' not in seen:
                seen['listening'] = os.path.exists(mark)
        n.on_message = at_ready
        r.start({'NOTIFY_SOCKET': n.path})
        ready = self.wait_ready(n, timeout=15)
        self.assertTrue(seen['listening'], 'READY=1 came before the renderer listened')
        started = r.starts('renderer')[0][0]
        self.assertGreaterEqual(ready[0] - started, 1.4, 'READY=1 came before the renderer listened')
        self.assertLess(ready[0] - started, 4.0)
        # Until then the supervisor said it was starting, with every child up.
        self.assertIn('starting, 3 of 3 children running, 0 restarting', n.statuses())

    def test_status_follows_a_restart(self):
        r, n = self.start(browser_count=2)
        r.start({'NOTIFY_SOCKET': n.path})
        self.wait_ready(n)
        os.kill(r.wait_started('browser-1'), signal.SIGKILL)
        r.wait_started('browser-1', count=2)
        wait_until(lambda: n.statuses()[-1] == '4 of 4 children running, 0 restarting', 5,
                   what='back to all running')
        self.assertIn('3 of 4 children running, 1 restarting (browser-1)', n.statuses())

    def test_reload_is_framed_by_reloading_and_ready(self):
        r, n = self.start()
        r.start({'NOTIFY_SOCKET': n.path})
        self.wait_ready(n)
        for step, text in (('good file', None), ('bad file', '[supervisor]\nsample_interval = soon\n')):
            before = len(n.all())
            if text:
                r.write_config(text)
            r.signal(signal.SIGHUP)
            wait_until(lambda: len(n.with_field('READY', '1')) >= (2 if not text else 3), 5, what=step)
            new = [m[2] for m in n.all()[before:]]
            kinds = [('RELOADING' if 'RELOADING' in m else 'READY') for m in new
                     if 'RELOADING' in m or 'READY' in m]
            self.assertEqual(kinds, ['RELOADING', 'READY'], step)
            reloading = [m for m in new if 'RELOADING' in m][0]
            self.assertEqual(reloading['RELOADING'], '1')
            self.assertGreater(int(reloading['MONOTONIC_USEC']), 0)
        # The refused file left the service as it was.
        self.assertIsNone(r.proc.poll())
        wait_until(lambda: n.statuses()[-1] == '3 of 3 children running, 0 restarting', 3, what='status after reload')

    def test_an_unreachable_socket_is_logged_once_and_changes_nothing(self):
        r = Rendervisor()
        self.addCleanup(r.stop)
        r.start({'NOTIFY_SOCKET': os.path.join(r.dir, 'nobody-listens.sock')})
        r.wait_started('renderer')
        os.kill(r.pid('browser-0'), signal.SIGKILL)
        r.wait_started('browser-0', count=2)
        r.signal(signal.SIGTERM)
        self.assertEqual(r.proc.wait(10), 0)
        self.assertEqual(len(r.records('cannot notify systemd')), 1, r.log_text())


if __name__ == '__main__':
    unittest.main(verbosity=2)
