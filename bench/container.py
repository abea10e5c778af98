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
The container is removed at the end.

With --host BUILD_DIR the same service is measured the same way outside any
container, as the peer of the same run: that build's supervisor (the image is
built from it) with the image's configuration (deploy/kubernetes/base/
rendervisor.ini: only runtime_dir, the two listeners and the children's user,
nobody, differ), in a fresh memory cgroup of its own (tests/integration/
memcg.py: v2 where that hierarchy has the memory controller, else v1), idle
for as long after both browsers connected, with the same renders; then the
container's figures over the host's. Needs root."""
import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'integration'))
import memcg  # noqa: E402
from harness import cgroup_pids, cmdline, free_port  # noqa: E402

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


def pss_kib(pid):
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


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


def wait_ready(port, what):
    start = time.monotonic()
    while b'2 of 2' not in get('http://127.0.0.1:%d/healthz' % port, timeout=5)[1]:
        if time.monotonic() - start > 90:
            sys.exit('bench/container.py: %s did not connect to both browsers in 90 s' % what)
        time.sleep(0.2)
    return time.monotonic() - start


def render_and_idle(port, renders, idle, status_port=9465):
    """renders of the exporter's status page (at status_port, as the
    browsers see it), then idle seconds."""
    for _ in range(renders):
        status, body = get('http://127.0.0.1:%d/render?url=http://127.0.0.1:%d/&width=1000&height=500'
                           % (port, status_port),
                           {'X-Auth-Token': '-'}, timeout=60)
        if status != 200:
            sys.exit('bench/container.py: a render answered %s: %r' % (status, body[:200]))
    time.sleep(idle)


def measure(pids, usage, stat):
    """The figures of one side: cgroup usage, rss, cache, PSS by part (KiB)."""
    parts = {'supervisor': 0, 'exporter': 0, 'renderer': 0, 'browsers': 0}
    for pid in pids:
        cmd = os.path.basename(cmdline(pid).split(' ', 1)[0])
        kind = ('exporter' if cmd.startswith('rendervisor-exporter') else
                'renderer' if cmd.startswith('rendervisor-renderer') else
                'browsers' if 'chrom' in cmdline(pid) else 'supervisor')
        parts[kind] += pss_kib(pid)
    return {'usage': usage, 'rss': stat.get('total_rss', stat.get('anon', 0)),
            'cache': stat.get('total_cache', stat.get('file', 0)), 'parts': parts, 'pids': len(pids)}


def report(side, m):
    mib = 1024 * 1024
    print('%s: cgroup memory usage: %.0f MiB (rss %.0f MiB, cache %.0f MiB)'
          % (side, m['usage'] / mib, m['rss'] / mib, m['cache'] / mib))
    print('%s: PSS sum of %d processes: %.0f MiB (%s)' % (
        side, m['pids'], sum(m['parts'].values()) / 1024,
        ', '.join('%s %.0f' % (k, v / 1024) for k, v in m['parts'].items())))


def host_side(build, renders, idle):
    """The same build and configuration outside a container, in a fresh
    memory cgroup: its figures."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'deploy', 'kubernetes', 'base',
                       'rendervisor.ini')
    top = tempfile.mkdtemp(prefix='rv-bench-host-')
    port, mport = free_port(), free_port()
    ini = open(src).read()
    for key, value in (('user', 'nobody'), ('runtime_dir', top + '/run')):
        ini = re.sub(r'(?m)^%s = \S+' % key, '%s = %s' % (key, value), ini)
    ini = ini.replace('0.0.0.0:9465', '127.0.0.1:%d' % mport).replace('0.0.0.0:8081', '127.0.0.1:%d' % port)
    with open(top + '/rendervisor.ini', 'w') as f:
        f.write(ini)
    os.chmod(top, 0o755)
    os.chmod(top + '/rendervisor.ini', 0o644)
    cg = memcg.MemCgroup(None, 'rv-bench-host')
    env = dict(os.environ, PATH='%s/exporter:%s/renderer:%s' % (build, build, os.environ.get('PATH', '')))
    proc = subprocess.Popen([os.path.join(build, 'supervisor', 'rendervisor'), '--config', top + '/rendervisor.ini'],
                            env=env, preexec_fn=cg.enter, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(port, 'the host side')
        render_and_idle(port, renders, idle, mport)
        m = measure(cg.procs(), *memory_cgroup(proc.pid))
        m['ready'] = ready
        return m
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        cg.remove()
        shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('image', nargs='?', default='localhost/rendervisor:latest')
    ap.add_argument('--idle', type=float, default=20)
    ap.add_argument('--renders', type=int, default=0)
    ap.add_argument('--host', metavar='BUILD_DIR', help='also measure that build outside a container')
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench/container.py: needs root (rootful podman)')
    size = int(podman('image', 'inspect', '--format', '{{.Size}}', a.image))
    name = 'rv-bench-%s' % uuid.uuid4().hex[:8]
    cid = podman('run', '-d', '--name', name, '--runtime', 'runc', *ULIMITS, '-p', '127.0.0.1::8081', a.image)
    try:
        port = int(podman('port', name, '8081/tcp').rsplit(':', 1)[1])
        ready = wait_ready(port, 'the container')
        render_and_idle(port, a.renders, a.idle)
        pid1 = int(podman('inspect', '--format', '{{.State.Pid}}', name))
        box = measure(cgroup_pids(cid), *memory_cgroup(pid1))
    finally:
        subprocess.run(['podman', 'rm', '--force', '--time', '0', name], stdout=subprocess.DEVNULL)
    print('image %s: %.0f MB (%d bytes)' % (a.image, size / 1e6, size))
    print('container: ready (both browsers connected) after %.1f s; %d renders; idle %.0f s'
          % (ready, a.renders, a.idle))
    report('container', box)
    if a.host:
        host = host_side(os.path.abspath(a.host), a.renders, a.idle)
        print('host: ready (both browsers connected) after %.1f s' % host['ready'])
        report('host', host)
        print('container / host: cgroup usage %.2f, rss %.2f, PSS sum %.2f'
              % (box['usage'] / host['usage'], box['rss'] / max(host['rss'], 1),
                 sum(box['parts'].values()) / max(sum(host['parts'].values()), 1)))


if __name__ == '__main__':
    main()
