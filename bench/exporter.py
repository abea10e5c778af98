#!/usr/bin/env python3
"""The exporter under load, against Debian's prometheus-process-exporter
watching the same process trees in the same run.

    bench/exporter.py BUILD_DIR [SCRAPES]

rendervisor runs with its real exporter and three children (two "browsers"
and a "renderer"), each a shell with 19 sleeping children: 60 processes in
the trees. The peer groups the same trees (its -children default follows
them). Then, alternating one for one, SCRAPES scrapes of each /metrics over
TCP on 127.0.0.1, timed from connect to the last byte; the CPU each process
spent over its scrapes comes from /proc/PID/stat. Last, bench/ingest_flood
sends 50-line datagrams to the ingest socket for 5 s with blocking sends, and
the exporter's own rendervisor_ingest_lines_total says how many it took
(which also counts the supervisor's own reports meanwhile). Our /metrics is
also timed alone after that, since each peer scrape keeps a core busy."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else 'build')
SCRAPES = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
SUPERVISOR = os.path.join(BUILD, 'supervisor', 'rendervisor')
EXPORTER = os.path.join(BUILD, 'exporter', 'rendervisor-exporter')
FLOOD = os.path.join(BUILD, 'bench', 'ingest_flood')
TICKS = os.sysconf('SC_CLK_TCK')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scrape(port):
    t0 = time.perf_counter_ns()
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(b'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n')
    data = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return (time.perf_counter_ns() - t0) / 1000.0, bytes(data)


def cpu_ticks(pid):
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return int(rest[11]) + int(rest[12])


def pid_of(name, parent):
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % p) as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index('(') + 1:data.rindex(')')]
        ppid = int(data.rsplit(')', 1)[1].split()[1])
        if comm == name[:15] and ppid == parent:
            return int(p)
    return None


def wait_for(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit('timed out waiting for ' + what)


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.99) - 1]


def main():
    if not shutil.which('prometheus-process-exporter'):
        raise SystemExit('apt-get install prometheus-process-exporter')
    tmp = tempfile.mkdtemp(prefix='rvxb')
    ours_port, peer_port = free_port(), free_port()
    tree = "sh -c 'for i in $(seq 19); do sleep 1000 & done; wait' rvb-tree"
    with open(os.path.join(tmp, 'rv.ini'), 'w') as f:
        f.write('[supervisor]\nruntime_dir = %s/run\nlog_level = warn\n'
                '[exporter]\ncommand = %s\nlisten = 127.0.0.1:%d\n'
                '[renderer]\ncommand = %s\n[browsers]\ncount = 2\ncommand = %s\n'
                % (tmp, EXPORTER, ours_port, tree, tree))
    with open(os.path.join(tmp, 'peer.yml'), 'w') as f:
        f.write('process_names:\n  - name: "rvb-tree"\n    cmdline: ["rvb-tree"]\n')
    sv = subprocess.Popen([SUPERVISOR, '--config', os.path.join(tmp, 'rv.ini')], stderr=subprocess.DEVNULL)
    peer = subprocess.Popen(['prometheus-process-exporter', '-config.path', os.path.join(tmp, 'peer.yml'),
                             '-web.listen-address', '127.0.0.1:%d' % peer_port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        exporter = wait_for(lambda: pid_of('rendervisor-exporter', sv.pid), 10, 'the exporter')

        def our_procs():
            try:
                body = scrape(ours_port)[1].decode()
            except OSError:
                return 0
            return sum(float(v) for v in re.findall(r'rendervisor_child_processes\{child="(?:browser-\d|renderer)"\} (\S+)',
                                                    body))
        wait_for(lambda: our_procs() == 60, 15, 'our report of 60 processes')

        def peer_procs():
            try:
                body = scrape(peer_port)[1].decode()
            except OSError:
                return 0
            m = re.search(r'namedprocess_namegroup_num_procs\{groupname="rvb-tree"\} (\S+)', body)
            return m and float(m.group(1))
        wait_for(lambda: peer_procs() == 60, 15, 'the peer counting 60 processes')

        for _ in range(20):
            scrape(ours_port)
            scrape(peer_port)
        ours, theirs = [], []
        c0, p0 = cpu_ticks(exporter), cpu_ticks(peer.pid)
        s0 = cpu_ticks(sv.pid)
        t0 = time.monotonic()
        for _ in range(SCRAPES):
            ours.append(scrape(ours_port)[0])
            theirs.append(scrape(peer_port)[0])
        elapsed = time.monotonic() - t0
        c1, p1 = cpu_ticks(exporter), cpu_ticks(peer.pid)
        s1 = cpu_ticks(sv.pid)
        # ours again, alone: the peer's scrapes take a core each time
        alone = [scrape(ours_port)[0] for _ in range(SCRAPES)]
        size_ours = len(scrape(ours_port)[1])
        size_peer = len(scrape(peer_port)[1])

        # ingest throughput
        def accepted():
            body = scrape(ours_port)[1].decode()
            m = re.search(r'rendervisor_ingest_lines_total\{result="accepted"\} (\S+)', body)
            return float(m.group(1))
        a0 = accepted()
        f0 = time.monotonic()
        sent = int(subprocess.run([FLOOD, os.path.join(tmp, 'run', 'ingest.sock'), '5', '50'],
                                  capture_output=True, text=True, check=True).stdout)
        flood_s = time.monotonic() - f0
        time.sleep(0.5)
        got = accepted() - a0
    finally:
        peer.send_signal(signal.SIGTERM)
        sv.send_signal(signal.SIGTERM)
        peer.wait(10)
        sv.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)

    o50, o99 = stats(ours)
    a50, a99 = stats(alone)
    t50, t99 = stats(theirs)
    cpu_ours = (c1 - c0) / TICKS / SCRAPES * 1e6
    cpu_peer = (p1 - p0) / TICKS / SCRAPES * 1e6
    sv_rate = (s1 - s0) / TICKS / elapsed * 1e3
    print('| | /metrics p50 µs | p99 µs | CPU µs per scrape | body bytes |')
    print('|---|---|---|---|---|')
    print('| rendervisor-exporter | %.0f | %.0f | %.0f | %d |' % (o50, o99, cpu_ours, size_ours))
    print('| prometheus-process-exporter | %.0f | %.0f | %.0f | %d |' % (t50, t99, cpu_peer, size_peer))
    print('| rendervisor-exporter, scraped alone | %.0f | %.0f | | |' % (a50, a99))
    print()
    print('ratio ours/peer: p50 %.3f, p99 %.3f, CPU per scrape %.3f' % (o50 / t50, o99 / t99,
                                                                      cpu_ours / cpu_peer if cpu_peer else 0))
    print('supervisor CPU meanwhile (its 1 s samples, not per scrape): %.2f ms per second' % sv_rate)
    print('scrapes=%d each, over %.1f s' % (SCRAPES, elapsed))
    print('ingest: %d lines sent in %.1f s, %d accepted: %.0f lines/s' % (sent, flood_s, got, got / flood_s))


if __name__ == '__main__':
    main()
