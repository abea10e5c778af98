#!/usr/bin/env python3
"""Child-death-to-relaunch latency: SIGKILL a supervised child and time how
long until its replacement runs, for rendervisor (backoff subtracted) and, in
the same run, for s6-supervise (Debian's s6) and a plain shell loop.

    bench/relaunch.py BUILD_DIR [KILLS]

The child is bench/rv-stamp, which writes its pid and CLOCK_MONOTONIC at
start to the file its first argument names; the kill time is taken just before kill(2) on the same clock.
Each child is killed after it has run 1.2 s, so s6-supervise's one-second
throttle never applies and rendervisor's backoff is 100 ms doubling."""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else 'build'
KILLS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
STAMP = os.path.abspath(os.path.join(BUILD, 'bench', 'rv-stamp'))
SUPERVISOR = os.path.abspath(os.path.join(BUILD, 'supervisor', 'rendervisor'))
UPTIME = 1.2
# s6-supervise waits one second after a death before it starts the service
# again (seen here: 1004 ms every time); that delay is its policy, as the
# backoff is ours, so it is taken off like ours.
S6_DELAY = 1.0


def stamps(path):
    try:
        with open(path) as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_stamps(path, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = stamps(path)
        if len(s) >= n:
            return s
        time.sleep(0.001)
    raise SystemExit('timed out waiting for start %d in %s' % (n, path))


def measure(path, kills, delay_of):
    """Kill the newest child `kills` times; return latencies in ms with the
    intended delay (delay_of(k) seconds) taken off."""
    out = []
    s = wait_stamps(path, 1)
    for k in range(kills):
        time.sleep(UPTIME)
        pid = s[-1][0]
        t_kill = time.monotonic_ns()
        os.kill(pid, signal.SIGKILL)
        s = wait_stamps(path, len(s) + 1)
        out.append((s[-1][1] - t_kill) / 1e6 - delay_of(k) * 1000)
    return out


def run_rendervisor(tmp, kills):
    stamp = os.path.join(tmp, 'rv.stamps')
    cfg = os.path.join(tmp, 'rv.ini')
    other = os.path.join(tmp, 'other.stamps')
    with open(cfg, 'w') as f:
        f.write('[supervisor]\nruntime_dir = %s/run\nlog_level = warn\n'
                '[exporter]\ncommand = %s %s\nlisten =\n[renderer]\ncommand = %s %s\n'
                '[browsers]\ncount = 1\ncommand = %s %s\n' % (tmp, STAMP, other, STAMP, stamp, STAMP, other))
    p = subprocess.Popen([SUPERVISOR, '--config', cfg], stderr=subprocess.DEVNULL)
    try:
        return measure(stamp, kills, lambda k: min(0.1 * 2 ** k, 30))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)


def run_s6(tmp, kills):
    svc = os.path.join(tmp, 'svc')
    os.mkdir(svc)
    stamp = os.path.join(tmp, 's6.stamps')
    with open(os.path.join(svc, 'run'), 'w') as f:
        f.write('#!/bin/sh\nexec %s %s\n' % (STAMP, stamp))
    os.chmod(os.path.join(svc, 'run'), 0o755)
    p = subprocess.Popen(['s6-supervise', svc])
    try:
        return measure(stamp, kills, lambda k: S6_DELAY)
    finally:
        subprocess.run(['s6-svc', '-dx', svc], check=False)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def run_shell_loop(tmp, kills):
    stamp = os.path.join(tmp, 'sh.stamps')
    p = subprocess.Popen(['sh', '-c', 'while :; do "%s" "%s"; done' % (STAMP, stamp)], start_new_session=True,
                         stderr=subprocess.DEVNULL)
    try:
        return measure(stamp, kills, lambda k: 0)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def summary(name, xs):
    return '| %s | %d | %.2f | %.2f | %.2f |' % (name, len(xs), statistics.median(xs), min(xs), max(xs))


def main():
    if not shutil.which('s6-supervise'):
        raise SystemExit('s6-supervise not found: apt-get install s6')
    tmp = tempfile.mkdtemp(prefix='rvrl')
    try:
        ours = run_rendervisor(tmp, KILLS)
        s6 = run_s6(tmp, KILLS)
        loop = run_shell_loop(tmp, KILLS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('| supervisor | kills | p50 ms | min ms | max ms |')
    print('|---|---|---|---|---|')
    print(summary('rendervisor (backoff subtracted)', ours))
    print(summary('s6-supervise 2.11 (its 1 s delay subtracted)', s6))
    print(summary('sh while-loop', loop))
    print()
    print('ratio rendervisor/s6 p50: %.2f' % (statistics.median(ours) / statistics.median(s6)))
    print('ratio rendervisor/sh-loop p50: %.2f' % (statistics.median(ours) / statistics.median(loop)))
    print('rendervisor raw ms:', ' '.join('%.2f' % x for x in ours))


if __name__ == '__main__':
    main()
