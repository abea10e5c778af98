#!/usr/bin/env python3
"""The Deployment's pod, as podman can run it: meson test --suite deploy

    pod_podman.py SRC BUILD

No cluster here, so the container of the rendered Deployment (of
deploy/kubernetes/base, then of overlays/example) is run by podman with what the kubelet would give
it: its securityContext (user, capabilities, no new privileges, read-only
root, seccomp), its memory limit, its environment, the Secret's
rendervisor.ini mounted read-only at /etc/rendervisor, and each emptyDir as
a fresh empty directory (mode 0777, as the kubelet makes them). Then, as a
cluster would see it:
- /healthz answers 200 within the startupProbe's window, and then says
  every browser of [browsers] count is connected;
- a render of a page served here answers 200 with a PNG of the asked size
  (and 401 with a wrong token, where the configuration sets one);
- every child is up, runs as a user other than root, and is measured (PSS
  in /metrics): the capabilities are enough for the supervisor;
- the renderer's memory budget is the pod's limit (bound by the cgroup);
- the preStop command exists in the image;
- SIGTERM (podman stop, with the grace period as its timeout) ends it with
  exit 0 before the grace period, and nothing of it is left.

The image is localhost/rendervisor:<version>, built by
deploy/container/build-image.sh BUILD (which keeps an image already built
from the same inputs; RV_IMAGE_NAME changes its name as it does the
script's); RV_POD_IMAGE=NAME runs NAME instead, to try the
manifests against an image at hand. Needs root (rootful podman), as CI runs.
"""
import base64
import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
from check_deploy import Failure, container, duration_s, ini_get, ini_parse, kustomize, one, quantity_bytes  # noqa: E402
from harness import RedPage, free_port, http_get, parse_report_line, wait_until  # noqa: E402

ULIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096']


def run(argv, timeout=120, check=True):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise Failure('%s not found: install it (scripts/install-deps.sh)' % argv[0])
    except subprocess.TimeoutExpired:
        raise Failure('%s did not finish within %d s' % (' '.join(argv[:3]), timeout))
    if check and r.returncode != 0:
        raise Failure('%s failed (exit %d): %s' % (' '.join(argv[:4]), r.returncode, r.stderr.strip()[-2000:]))
    return r


def image(src, build):
    if os.environ.get('RV_POD_IMAGE'):
        return os.environ['RV_POD_IMAGE']
    script = os.path.join(src, 'deploy', 'container', 'build-image.sh')
    if not os.path.exists(script):
        raise Failure('%s not found: this test runs the image that script builds' % script)
    r = run([script, build], timeout=900, check=False)
    if r.returncode != 0:
        raise Failure('build-image.sh failed (exit %d): %s' % (r.returncode, r.stderr.strip()[-3000:]))
    # the script's last line is the image's name:version
    return r.stdout.strip().splitlines()[-1]


def podman_args(objs, tmp, ports):
    """`podman run` arguments for the Deployment's container, and what the test needs from it."""
    dep, c = container(objs)
    spec = dep['spec']['template']['spec']
    sc = c.get('securityContext', {})
    args = ['--runtime', 'runc'] + ULIMITS + ['--user', str(sc.get('runAsUser', 0))]
    if sc.get('readOnlyRootFilesystem'):
        args.append('--read-only')
    if sc.get('allowPrivilegeEscalation') is False:
        args += ['--security-opt', 'no-new-privileges']
    caps = sc.get('capabilities', {})
    if 'ALL' in caps.get('drop', []):
        args.append('--cap-drop=all')
    if caps.get('add'):
        args.append('--cap-add=' + ','.join(caps['add']))
    seccomp = (sc.get('seccompProfile') or spec.get('securityContext', {}).get('seccompProfile') or {}).get('type')
    if seccomp == 'Unconfined':
        args += ['--security-opt', 'seccomp=unconfined']
    elif seccomp not in (None, 'RuntimeDefault'):
        raise Failure('seccompProfile %s: this test knows Unconfined and RuntimeDefault (podman\'s default)' % seccomp)
    limit_mib = quantity_bytes(c['resources']['limits']['memory'], 'limits.memory') >> 20
    args += ['--memory', '%dm' % limit_mib]
    for e in c.get('env', []):
        args += ['--env', '%s=%s' % (e['name'], e['value'])]
    volumes = {v['name']: v for v in spec.get('volumes', [])}
    ini = None
    for m in c.get('volumeMounts', []):
        v = volumes[m['name']]
        host = os.path.join(tmp, m['name'])
        os.mkdir(host)
        if 'emptyDir' in v:
            os.chmod(host, 0o777)
        elif 'secret' in v:
            secret = one(objs, 'Secret', v['secret']['secretName'])
            for key, value in secret['data'].items():
                path = os.path.join(host, key)
                with open(path, 'wb') as f:
                    f.write(base64.b64decode(value))
                os.chmod(path, v['secret'].get('defaultMode', 0o644))
                if key == 'rendervisor.ini':
                    ini = base64.b64decode(value).decode()
            os.chmod(host, 0o755)
        else:
            raise Failure('volume %s: this test knows emptyDir and secret volumes' % m['name'])
        args += ['-v', '%s:%s:%s' % (host, m['mountPath'], 'ro' if m.get('readOnly') else 'rw')]
    container_ports = {p['name']: p['containerPort'] for p in c['ports']}
    for name, host_port in ports.items():
        args += ['-p', '127.0.0.1:%d:%d' % (host_port, container_ports[name])]
    if ini is None:
        raise Failure('no rendervisor.ini among the Secrets the container mounts')
    parsed = ini_parse(ini, 'rendervisor.ini')
    g = lambda s, k: ini_get(parsed, s, k, 'rendervisor.ini')  # noqa: E731
    return args, {'container': c, 'grace': spec.get('terminationGracePeriodSeconds', 30),
                  'limit_mib': limit_mib, 'token': g('renderer', 'auth_token'),
                  'stop_timeout': duration_s(g('supervisor', 'stop_timeout'), 'stop_timeout'),
                  'browsers': int(g('browsers', 'count'))}


def metric_values(text, family):
    """{labels: value} of one family's samples on a /metrics page, labels as
    parse_report_line gives them (a sorted tuple of pairs)."""
    samples = (parse_report_line(line) for line in text.splitlines() if line and not line.startswith('#'))
    return {labels: value for name, labels, value in samples if name == family}


def check(src, overlay, img):
    print('== %s' % overlay)
    objs = kustomize(src, overlay)
    name = 'rendervisor-deploy-pod-%d' % os.getpid()
    tmp = tempfile.mkdtemp(prefix='rendervisor-pod.')
    ports = {'http': free_port(), 'metrics': free_port()}
    web = None
    started = False
    try:
        args, pod = podman_args(objs, tmp, ports)
        c = pod['container']
        run(['podman', 'run', '-d', '--name', name] + args + [img])
        started = True

        # startupProbe: /healthz 200 within period x failureThreshold
        sp = c['startupProbe']
        deadline = time.monotonic() + sp['periodSeconds'] * sp['failureThreshold']
        status = body = None
        while time.monotonic() < deadline:
            status, _, body = http_get(ports['http'], sp['httpGet']['path'], timeout=sp.get('timeoutSeconds', 1))
            if status == 200:
                break
            time.sleep(sp['periodSeconds'])
        if status != 200:
            raise Failure('/healthz never answered 200 within the startupProbe\'s %d s (last: %s %r); logs:\n%s' %
                          (sp['periodSeconds'] * sp['failureThreshold'], status, body[:200], logs(name)))
        print('startup: /healthz 200: %s' % body.decode().strip())
        # the startupProbe passes with one browser: every one of them must connect
        every = 'ok: %d of %d browsers connected' % (pod['browsers'], pod['browsers'])
        try:
            wait_until(lambda: http_get(ports['http'], '/healthz')[2].decode().strip() == every,
                       sp['periodSeconds'] * sp['failureThreshold'], interval=1, what='/healthz %r' % every)
        except AssertionError as e:
            raise Failure('%s (last: %r); logs:\n%s' % (e, http_get(ports['http'], '/healthz')[2][:200], logs(name)))
        print('every browser connected: %s' % every)

        # a render of a page served here, reached as the host
        gateway = run(['podman', 'exec', name, 'awk', '$2 == "host.containers.internal" { print $1 }',
                       '/etc/hosts']).stdout.split()
        if not gateway:
            raise Failure('no host.containers.internal in the container\'s /etc/hosts')
        web = http.server.ThreadingHTTPServer((gateway[0], 0), RedPage)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        page = 'http://host.containers.internal:%d/' % web.server_address[1]
        q = urllib.parse.urlencode({'url': page, 'width': 320, 'height': 160, 'encoding': 'png',
                                    'timeout': 30, 'renderKey': 'k', 'domain': 'host.containers.internal'})
        if pod['token'] != '-':
            status, _, body = http_get(ports['http'], '/render?' + q, {'X-Auth-Token': 'not-' + pod['token']}, timeout=60)
            if status != 401:
                raise Failure('a render with the wrong token answered %s, not 401' % status)
            print('render with a wrong token: 401')
        status, _, png = http_get(ports['http'], '/render?' + q, {'X-Auth-Token': pod['token']}, timeout=60)
        if status != 200 or png[:8] != b'\x89PNG\r\n\x1a\n':
            raise Failure('render of %s: status %s, %d bytes %r; logs:\n%s' % (page, status, len(png), png[:120], logs(name)))
        w, h = struct.unpack('>II', png[16:24])
        if (w, h) != (320, 160):
            raise Failure('render of %s: a %dx%d PNG, asked for 320x160' % (page, w, h))
        print('render: 200, a %dx%d PNG of %d bytes' % (w, h, len(png)))

        # the children: up, not root, measured; the budget is the pod's limit
        status, _, text = http_get(ports['metrics'], '/metrics')
        if status != 200:
            raise Failure('/metrics on the metrics port answered %s' % status)
        text = text.decode()
        up = metric_values(text, 'rendervisor_child_up')
        pss = metric_values(text, 'rendervisor_child_proportional_memory_bytes')
        want = ['exporter', 'renderer'] + ['browser-%d' % i for i in range(pod['browsers'])]
        for child in want:
            key = (('child', child),)
            if up.get(key) != 1:
                raise Failure('rendervisor_child_up{child="%s"} is %s, not 1' % (child, up.get(key)))
            if not pss.get(key):
                raise Failure('rendervisor_child_proportional_memory_bytes{child="%s"} is %s: the supervisor cannot '
                              'measure its children with the pod\'s capabilities' % (child, pss.get(key)))
        bound = metric_values(text, 'rendervisor_renderer_memory_bound')
        budget = metric_values(text, 'rendervisor_renderer_memory_budget_bytes').get((), 0) / (1 << 20)
        # budget = used + room, and the container's own cgroup gives room = limit - used
        if bound.get((('by', 'cgroup'),)) != 1 or abs(budget - pod['limit_mib']) >= 1:
            raise Failure('the memory budget is not the pod\'s limit: bound %s, budget %.0f MiB, limit %d MiB' %
                          (bound, budget, pod['limit_mib']))
        print('children up and measured (PSS MiB: %s); budget %.0f MiB, the %d MiB limit, bound by the cgroup' %
              (', '.join('%s %.0f' % (dict(k)['child'], v / (1 << 20)) for k, v in sorted(pss.items())),
               budget, pod['limit_mib']))
        top = run(['podman', 'top', name, 'user', 'comm']).stdout.splitlines()[1:]
        procs = [line.split(None, 1) for line in top if line.strip()]
        children = [p for p in procs if p[1].strip() not in ('rendervisor', 'rv-guardian')]
        if not children or any(p[0] == 'root' for p in children):
            raise Failure('children running as root: %s' % procs)
        print('users: %s' % ', '.join(sorted({'%s %s' % (p[0], p[1].strip()) for p in procs})))

        # preStop: its program is in the image (run with 0 for the wait)
        pre = c['lifecycle']['preStop']['exec']['command']
        run(['podman', 'exec', name, pre[0], '0'])
        print('preStop: %s is in the image' % pre[0])

        # SIGTERM: the supervisor's own stop, exit 0, well within the grace period
        t0 = time.monotonic()
        run(['podman', 'stop', '-t', str(pod['grace']), name], timeout=pod['grace'] + 30)
        took = time.monotonic() - t0
        state = json.loads(run(['podman', 'inspect', name]).stdout)[0]['State']
        if state.get('ExitCode') != 0:
            raise Failure('after SIGTERM the container exited %s, not 0; logs:\n%s' % (state.get('ExitCode'), logs(name)))
        # idle, the renderer's drain ends at once: the stop takes the
        # children's exits, not drain_timeout (a stop past the grace period
        # would be podman's SIGKILL, exit 137, above)
        if took > pod['stop_timeout'] + 5:
            raise Failure('SIGTERM took %.1f s to stop an idle pod, more than stop_timeout %d s + 5: did the '
                          'drain wait for renders it did not have?' % (took, pod['stop_timeout']))
        print('SIGTERM: exit 0 after %.1f s (grace period %d s)' % (took, pod['grace']))
    finally:
        if web:
            web.shutdown()
            web.server_close()
        if started:
            subprocess.run(['podman', 'rm', '-f', '-t', '0', name], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    left = run(['podman', 'ps', '-a', '--filter', 'name=' + name, '--format', '{{.Names}}']).stdout.strip()
    if left:
        raise Failure('container %s is left after the test' % left)


def logs(name):
    r = subprocess.run(['podman', 'logs', '--tail', '40', name], capture_output=True, text=True, timeout=30)
    return (r.stdout + r.stderr)[-6000:]


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    try:
        if os.geteuid() != 0:
            raise Failure('needs root: the pod runs under rootful podman, as in CI')
        img = image(argv[1], argv[2])
        for overlay in ('base', 'overlays/example'):
            check(argv[1], overlay, img)
    except Failure as e:
        sys.exit('FAIL: %s' % e)
    print('the pods of the base and of the example overlay run under podman as the manifests say')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
