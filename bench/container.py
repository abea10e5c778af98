#!/usr/bin/env python3
"""The container image's size and idle memory (issue 15), the numbers in
docs/install.md, "In a container".

    bench/container.py [IMAGE] [--idle SECONDS] [--renders N]

IMAGE (localhost/rendervisor:latest) is built by deploy/container/build-image.sh.
It runs as the docs say (podman, runc, explicit ulimits, no memory limit),
waits until /healthz says both browsers are connected, optionally renders the
exporter's status page N times (0), lets the service sit idle for SECONDS (20),
then reports, from the host:
  - the image's size (podman image inspect);
  - the container's memory cgroup: usage (memory.usage_in_bytes on cgroup v1,
    memory.current on v2) and its rss and page cache (memory.stat);
  - the sum of the proportional set size (Pss in /proc/PID/smaps_rollup) of
    every process in the container, and that sum by part: the supervisor,
    the exporter, the renderer, the browsers with every process under them.
The container is removed at the end. Needs root."""
import argparse
import os
import subprocess
import sys
import time
import urllib.request
import uuid

ULIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096']


def podman(*args):
    return subprocess.run(['podman'] + list(args), check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def get(url, headers=None, timeout=30):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b''


def pids_of(cid):
    out = []
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/cgroup' % d) as f:
                    if cid in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def pss_kib(pid):
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def argv(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return ''


def memory_cgroup(pid):
    """(usage bytes, {stat}) of the process's memory cgroup, v1 or v2."""
    with open('/proc/%d/cgroup' % pid) as f:
        lines = [line.rstrip('\n').split(':', 2) for line in f]
    for _, ctrl, path in lines:
        if 'memory' in ctrl.split(','):
            base = '/sys/fs/cgroup/memory' + path
            usage = int(open(base + '/memory.usage_in_bytes').read())
            break
    else:
        path = next(p for _, c, p in lines if c == '')
        base = '/sys/fs/cgroup' + path
        usage = int(open(base + '/memory.current').read())
    stat = dict((k, int(v)) for k, v in (line.split() for line in open(base + '/memory.stat')))
    return usage, stat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('image', nargs='?', default='localhost/rendervisor:latest')
    ap.add_argument('--idle', type=float, default=20)
    ap.add_argument('--renders', type=int, default=0)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench/container.py: needs root (rootful podman)')
    size = int(podman('image', 'inspect', '--format', '{{.Size}}', a.image))
    name = 'rv-bench-%s' % uuid.uuid4().hex[:8]
    cid = podman('run', '-d', '--name', name, '--runtime', 'runc', *ULIMITS, '-p', '127.0.0.1::8081', a.image)
    try:
        port = int(podman('port', name, '8081/tcp').rsplit(':', 1)[1])
        deadline = time.monotonic() + 90
        while b'2 of 2' not in get('http://127.0.0.1:%d/healthz' % port, timeout=5)[1]:
            if time.monotonic() > deadline:
                sys.exit('bench/container.py: the renderer did not connect to both browsers in 90 s')
            time.sleep(0.2)
        ready = time.monotonic() - (deadline - 90)
        for _ in range(a.renders):
            status, body = get('http://127.0.0.1:%d/render?url=http://127.0.0.1:9465/&width=1000&height=500' % port,
                               {'X-Auth-Token': '-'}, timeout=60)
            if status != 200:
                sys.exit('bench/container.py: a render answered %s: %r' % (status, body[:200]))
        time.sleep(a.idle)
        pid1 = int(podman('inspect', '--format', '{{.State.Pid}}', name))
        usage, stat = memory_cgroup(pid1)
        parts = {'supervisor': 0, 'exporter': 0, 'renderer': 0, 'browsers': 0}
        pids = pids_of(cid)
        for pid in pids:
            cmd = argv(pid)
            kind = ('exporter' if cmd.startswith('rendervisor-exporter') else
                    'renderer' if cmd.startswith('rendervisor-renderer') else
                    'browsers' if 'chromium' in cmd else 'supervisor')
            parts[kind] += pss_kib(pid)
        mib = 1024 * 1024
        print('image %s: %.0f MB (%d bytes)' % (a.image, size / 1e6, size))
        print('ready (both browsers connected) after %.1f s; %d renders; idle %.0f s' % (ready, a.renders, a.idle))
        print('cgroup memory usage: %.0f MiB (rss %.0f MiB, cache %.0f MiB)'
              % (usage / mib, stat.get('total_rss', stat.get('anon', 0)) / mib,
                 stat.get('total_cache', stat.get('file', 0)) / mib))
        print('PSS sum of %d processes: %.0f MiB (%s)' % (
            len(pids), sum(parts.values()) / 1024, ', '.join('%s %.0f' % (k, v / 1024) for k, v in parts.items())))
    finally:
        subprocess.run(['podman', 'rm', '--force', '--time', '0', name], stdout=subprocess.DEVNULL)


if __name__ == '__main__':
    main()
