#!/usr/bin/env python3
"""Rendering on a memory-limited host (issue 12): rendervisor against the
reference peer (bench/peers/reference.js), each in turn inside a fresh
memory cgroup, under the same load of a memory-hungry page.

    bench/memory.py BUILD_DIR [--limit MIB] [--clients N] [--seconds S]
                    [--hold MIB] [--ceiling-max N] [--ceiling-seconds S]
                    [--browser shell|chromium] [--skip-peer] [--skip-unlimited]
                    [--skip-ceiling]

The page is bench/pages/panel.html?hold=MIB (120 by default): it fills MIB
MiB of JavaScript arrays, holds them 600 ms, then draws its panel. It is
rendered at 1000x500 by N client threads (6) for S seconds (40); every 200
must be a 1000x500 PNG with the panel's late-drawn marker, else it counts
as a failure.

rendervisor runs as a user would run it: the real supervisor with the
default config's values (2 browsers, concurrency 4 each, everything else
default) in a temporary config that only sets the ports and runtime_dir.
The peer is one node process with its one browser. Each side is started
inside its own fresh memory cgroup (the whole process tree: the top process
enters it before exec) and the cgroup is removed after it:
  1. --limit MiB (700): the load, for each side;
  2. a cgroup without a limit (it only counts): the same load, each side;
  3. the ceiling: rendervisor with admission by memory off (render_memory
     = 0: renders start whenever a browser has a slot) under the limit at
     fixed concurrency 1, 2, ... --ceiling-max (6), a fresh service each;
     the best renders/s of a run in which every render answered 200 with its
     panel drawn. Admission has to find that load by itself.
For each run: renders answered 200 and drawn, the other outcomes by status,
good renders per second, p50/p99 of their latency, the OOM kills the kernel
counted in the cgroup during the load, and the cgroup's peak usage (from
its start, so the browsers' start-up is in it). A markdown summary for
docs/benchmarks.md ends the output.

Needs root (a memory cgroup, v2 or v1: tests/integration/memcg.py); the
peer needs `npm ci` in bench/peers (it is skipped, saying so, without it).
Every process and cgroup is removed on the way out, also on Ctrl-C or
SIGTERM. Everything listens on 127.0.0.1 only."""
import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import render
from render import BROWSERS, HEIGHT, WIDTH, percentile

sys.path.insert(0, os.path.join(render.SOURCE, 'tests', 'integration'))
import memcg  # noqa: E402

MIB = 1 << 20
# Issue 12's goals for the 6-client run under the limit.
# The ceiling is what a fixed number of clients gets with admission by
# memory off: the most the page allows under the limit when the load itself
# is held at the right size, which is what admission tries to find alone.
CEILING_KIND = 'rendervisor, no admission'
GOALS = {'ceiling_fraction': 0.8, 'peer_ratio': 3.0}


@contextlib.contextmanager
def no_interrupts():
    """Cleanup that a second Ctrl-C (or SIGTERM) must not cut short."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


def on_sigterm(signum, frame):
    raise KeyboardInterrupt('SIGTERM')


# ---- one run -------------------------------------------------------------

def load(port, path, clients, seconds):
    """clients threads rendering path for seconds. Returns (outcomes, wall):
    outcomes a list of (status, seconds, sha1 of the body or None), bodies
    {sha1: body} of the 200s (checked after the run, not during it, so
    decoding PNGs does not take the clients' CPU)."""
    lock = threading.Lock()
    outcomes, bodies, errors = [], {}, {}
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            status, dt, body, _ = render.render_once(port, path)
            with lock:
                if status == 200:
                    digest = hashlib.sha1(body).hexdigest()
                    bodies.setdefault(digest, body)
                    outcomes.append((status, dt, digest))
                else:
                    outcomes.append((status, dt, None))
                    errors.setdefault(status, body[:160].decode(errors='replace').strip())

    start = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, bodies, errors, time.monotonic() - start


def summarize(name, limit, clients, outcomes, bodies, errors, wall, cg, oom_before):
    bad = {d: render.png_check(b, WIDTH, HEIGHT) for d, b in bodies.items()}
    good = [dt for status, dt, d in outcomes if status == 200 and not bad[d]]
    undrawn = [d for status, _, d in outcomes if status == 200 and bad[d]]
    statuses = {}
    for status, _, _ in outcomes:
        if status != 200:
            statuses[status] = statuses.get(status, 0) + 1
    return {
        'name': name, 'limit': limit, 'clients': clients,
        'renders': len(outcomes), 'good': len(good), 'undrawn': len(undrawn),
        'undrawn_why': bad[undrawn[0]] if undrawn else None,
        'statuses': statuses, 'errors': errors,
        'rps': len(good) / wall if wall else 0.0,
        'p50': percentile(good, 50), 'p99': percentile(good, 99),
        'oom': cg.oom_kills() - oom_before, 'peak': cg.peak(),
    }


def run_side(kind, args, page_path, limit_mib, clients, seconds, tmp):
    """One fresh cgroup, one fresh service of kind ('rendervisor',
    'rendervisor, no admission' or 'reference peer') inside it, one warm-up
    render, then the load. Everything it started is gone when it returns or
    raises."""
    label = '%s, %s, %d clients' % (kind, '%d MiB' % limit_mib if limit_mib else 'no limit', clients)
    print('%s: starting' % label, flush=True)
    cg = memcg.MemCgroup(limit_mib * MIB if limit_mib else None, 'rv-bench-memory')
    service = None
    try:
        popen_kw = {'preexec_fn': cg.enter, 'start_new_session': True}
        if kind.startswith('rendervisor'):
            # 'no admission': render_memory = 0, renders start whenever a
            # browser has a slot, as before issue 12.
            service = render.Rendervisor(args.build, tempfile.mkdtemp(dir=tmp), args.browser,
                                         browsers=2, popen_kw=popen_kw,
                                         renderer={'render_memory': '0'} if 'no admission' in kind else None)
        else:
            service = render.Peer(args.browser, popen_kw=popen_kw)
        try:
            service.start()
        except Exception as e:
            tail = service.log_tail() if kind.startswith('rendervisor') else ''
            return {'name': kind, 'limit': limit_mib, 'clients': clients,
                    'invalid': 'did not start: %s %s' % (e, tail[-400:])}
        status, _, body, _ = render.render_once(service.port, page_path)
        why = render.png_check(body, WIDTH, HEIGHT) if status == 200 else \
            'status %d: %s' % (status, body[:160].decode(errors='replace'))
        if why:
            return {'name': kind, 'limit': limit_mib, 'clients': clients,
                    'invalid': 'warm-up render failed: %s' % why}
        oom_before = cg.oom_kills()
        print('%s: load for %g s' % (label, seconds), flush=True)
        outcomes, bodies, errors, wall = load(service.port, page_path, clients, seconds)
        res = summarize(kind, limit_mib, clients, outcomes, bodies, errors, wall, cg, oom_before)
        print('%s: %d of %d renders 200 and drawn, %d OOM kills' % (
            label, res['good'], res['renders'], res['oom']), flush=True)
        return res
    finally:
        with no_interrupts():
            try:
                if service:
                    service.stop()
            finally:
                cg.remove()


# ---- report --------------------------------------------------------------

def ms(v):
    return '-' if v != v else '%.0f' % (v * 1000)


def outcome_text(r):
    parts = ['%d× %s' % (n, 'no answer' if s == 0 else s) for s, n in sorted(r['statuses'].items())]
    if r['undrawn']:
        parts.append('%d× 200 without the panel' % r['undrawn'])
    return ', '.join(parts) or 'none'


def row(label, r):
    if r.get('invalid'):
        return '| %s | invalid: %s |' % (label, r['invalid'])
    peak = '%.0f' % (r['peak'] / MIB) if r['peak'] is not None else '-'
    return '| %s | %d of %d | %s | %.2f | %s | %s | %d | %s |' % (
        label, r['good'], r['renders'], outcome_text(r), r['rps'], ms(r['p50']), ms(r['p99']), r['oom'], peak)


HEADER = ('| | 200 and drawn | failures | good renders/s | p50 ms | p99 ms | OOM kills | peak MiB |\n'
          '|---|---:|---|---:|---:|---:|---:|---:|')


def report(args, main_runs, ceiling):
    print()
    print('Load: %d clients, %g s, panel.html?hold=%d at %dx%d.' % (
        args.clients, args.seconds, args.hold, WIDTH, HEIGHT))
    print()
    print(HEADER)
    for r in main_runs:
        print(row('%s, %s' % (r['name'], '%d MiB' % r['limit'] if r['limit'] else 'no limit'), r))
    if ceiling:
        print()
        print('Ceiling: rendervisor under %d MiB at fixed concurrency, %g s each.' % (
            args.limit, args.ceiling_seconds))
        print()
        print(HEADER.replace('| |', '| concurrency |', 1))
        for r in ceiling:
            print(row(str(r['clients']), r))
    errors = {}
    for r in main_runs + ceiling:
        for status, text in r.get('errors', {}).items():
            errors.setdefault((r['name'], status), text)
    if errors:
        print()
        for (name, status), text in sorted(errors.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            print('%s, first %s: %s' % (name, 'failure to answer' if status == 0 else status, text))

    print()
    limited = {r['name']: r for r in main_runs if r['limit'] and not r.get('invalid')}
    ours, peer = limited.get('rendervisor'), limited.get('reference peer')
    qualified = [r for r in ceiling if not r.get('invalid') and r['good'] and r['good'] == r['renders']]
    if ceiling:
        if qualified:
            best = max(qualified, key=lambda r: r['rps'])
            print('ceiling: %.2f renders/s at concurrency %d (every render 200 and drawn)' % (
                best['rps'], best['clients']))
            if ours:
                f = ours['rps'] / best['rps']
                print('%d clients / ceiling: %.2f (goal >= %.1f: %s)' % (
                    args.clients, f, GOALS['ceiling_fraction'],
                    'met' if f >= GOALS['ceiling_fraction'] else 'NOT met'))
        else:
            print('ceiling: no concurrency had every render answered 200 and drawn')
    if ours and peer:
        ratio = ours['good'] / peer['good'] if peer['good'] else float('inf')
        print('successful renders ours/peer: %d / %d = %.2f (goal >= %.0f: %s)' % (
            ours['good'], peer['good'], ratio, GOALS['peer_ratio'],
            'met' if ratio >= GOALS['peer_ratio'] else 'NOT met'))
        print('OOM kills ours vs peer: %d vs %d (goal: no more than the peer: %s)' % (
            ours['oom'], peer['oom'], 'met' if ours['oom'] <= peer['oom'] else 'NOT met'))


# ---- main ----------------------------------------------------------------

def positive(kind):
    def parse(text):
        v = kind(text)
        if v <= 0:
            raise argparse.ArgumentTypeError('must be greater than 0, not %s' % text)
        return v
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('build', nargs='?', default='build')
    ap.add_argument('--limit', type=positive(int), default=700, help='the cgroup limit in MiB (default 700)')
    ap.add_argument('--clients', type=positive(int), default=6, help='client threads (default 6)')
    ap.add_argument('--seconds', type=positive(float), default=40, help='length of each load (default 40)')
    ap.add_argument('--hold', type=positive(int), default=120, help='MiB the page holds (default 120)')
    ap.add_argument('--ceiling-max', type=positive(int), default=6,
                    help='the ceiling tries concurrency 1 to this (default 6)')
    ap.add_argument('--ceiling-seconds', type=positive(float),
                    help='length of each ceiling run (default: --seconds)')
    ap.add_argument('--browser', choices=sorted(BROWSERS), default='shell',
                    help='the browser both sides run (default shell: chromium-headless-shell)')
    ap.add_argument('--skip-peer', action='store_true')
    ap.add_argument('--skip-unlimited', action='store_true')
    ap.add_argument('--skip-ceiling', action='store_true')
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if args.ceiling_seconds is None:
        args.ceiling_seconds = args.seconds

    if not os.path.exists(os.path.join(args.build, 'renderer', 'rendervisor-renderer')):
        raise SystemExit('%s/renderer/rendervisor-renderer does not exist (build it first)' % args.build)
    if not os.access(BROWSERS[args.browser][0], os.X_OK):
        raise SystemExit('%s is not installed' % BROWSERS[args.browser][0])
    run_peer = not args.skip_peer
    if run_peer and render.peer_missing():
        print('skipping the reference peer: ' + render.peer_missing())
        run_peer = False
    try:
        probe = memcg.MemCgroup(None, 'rv-bench-probe')
        probe.remove()
        version = probe.version
    except (memcg.Unavailable, OSError) as e:
        raise SystemExit('bench/memory.py needs a memory cgroup: %s' % e)

    signal.signal(signal.SIGTERM, on_sigterm)
    print('%s, %d CPUs, cgroup v%d; limit %d MiB; page hold=%d MiB at %dx%d; %d clients for %g s' % (
        render.browser_version(args.browser), os.cpu_count(), version, args.limit, args.hold,
        WIDTH, HEIGHT, args.clients, args.seconds), flush=True)
    pages, pages_thread = render.start_pages()
    page_url = 'http://127.0.0.1:%d/panel.html?hold=%d' % (pages.server_address[1], args.hold)
    page_path = '/render?' + urllib.parse.urlencode({
        'url': page_url, 'width': WIDTH, 'height': HEIGHT, 'deviceScaleFactor': 1})
    tmp = tempfile.mkdtemp(prefix='rv-bench-memory.')
    sides = ['rendervisor'] + (['reference peer'] if run_peer else [])
    main_runs, ceiling = [], []
    try:
        for limit in [args.limit] + ([] if args.skip_unlimited else [None]):
            for kind in sides:
                main_runs.append(run_side(kind, args, page_path, limit, args.clients, args.seconds, tmp))
        if not args.skip_ceiling:
            for c in range(1, args.ceiling_max + 1):
                ceiling.append(run_side(CEILING_KIND, args, page_path, args.limit, c,
                                        args.ceiling_seconds, tmp))
    except KeyboardInterrupt:
        print('interrupted: everything started is stopped; the runs so far:', file=sys.stderr)
    finally:
        with no_interrupts():
            pages.shutdown()
            pages.server_close()
            pages_thread.join(5)
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, main_runs, ceiling)
    if any(r.get('invalid') for r in main_runs + ceiling):
        sys.exit(1)


if __name__ == '__main__':
    main()
