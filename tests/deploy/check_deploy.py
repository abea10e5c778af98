#!/usr/bin/env python3
"""Checks of deploy/kubernetes (docs/kubernetes.md, "The manifests"): meson test --suite deploy

    check_deploy.py render SRC               kubectl kustomize the base and the example overlay
    check_deploy.py schemas SRC WORKDIR      validate them offline against the Kubernetes,
                                             Prometheus Operator and KEDA schemas (npm ci into WORKDIR)
    check_deploy.py rules SRC PROMTOOL       promtool check/test rules on the rendered PrometheusRule
    check_deploy.py generated SRC            prometheusrule.yaml is what tools/prometheusrule.py writes
    check_deploy.py consistency SRC          the manifests agree with the rendervisor.ini they mount

Each check also runs on a broken copy (a bad field, a wrong number) and fails
unless that copy is caught, so a check that cannot fail fails. Every failure
says what was wrong and where.
"""
import base64
import configparser
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

OVERLAYS = ['base', 'overlays/example']
KINDS = {'Secret', 'Service', 'Deployment', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'ScaledObject'}

# The supervisor's own timings that are not configuration keys, read from
# where the supervisor defines them (docs/supervisor.md, "Health" and
# "Backoff"): how long a new child may go without answering a probe, and the
# longest backoff before a restart.
SUPERVISOR_CONSTANTS = {'PROBE_GRACE_S': ('supervisor/supervisor_health.c', 'SV_PROBE_GRACE_NS'),
                        'BACKOFF_MAX_S': ('supervisor/child.h', 'CHILD_BACKOFF_MAX_NS')}
# What the supervisor itself takes beside its children's limits, and how far
# above their sum the pod's limit may go and still "match" it.
SUPERVISOR_MIB = 64
SLACK_MIB = 512


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def run(argv, **kw):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop('timeout', 120), **kw)
    except FileNotFoundError:
        fail('%s not found: install it (scripts/install-deps.sh), then reconfigure the build' % argv[0])
    except subprocess.TimeoutExpired:
        fail('%s did not finish in time' % ' '.join(argv))


def kustomize(src, overlay):
    path = os.path.join(src, 'deploy', 'kubernetes', overlay)
    r = run(['kubectl', 'kustomize', path])
    if r.returncode != 0:
        fail('kubectl kustomize %s failed (exit %d): %s' % (path, r.returncode, r.stderr.strip()))
    objs = [o for o in yaml.safe_load_all(r.stdout) if o]
    if not objs:
        fail('kubectl kustomize %s rendered nothing' % path)
    return objs


def one(objs, kind, name=None, where=''):
    found = [o for o in objs if o.get('kind') == kind and (name is None or o['metadata']['name'] == name)]
    if len(found) != 1:
        fail('%s: expected one %s%s, found %d' % (where, kind, ' named ' + name if name else '', len(found)))
    return found[0]


# ---- render -----------------------------------------------------------------

def cmd_render(src):
    for overlay in OVERLAYS:
        objs = kustomize(src, overlay)
        kinds = {o['kind'] for o in objs}
        missing = KINDS - kinds
        if missing:
            fail('%s: kubectl kustomize renders no %s' % (overlay, ', '.join(sorted(missing))))
        print('%s: %d objects: %s' % (overlay, len(objs), ', '.join(sorted('%s/%s' % (o['kind'], o['metadata']['name']) for o in objs))))
    # and a broken kustomization is refused, not rendered as something
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(os.path.join(src, 'deploy', 'kubernetes', 'base'), os.path.join(tmp, 'base'))
        os.remove(os.path.join(tmp, 'base', 'podmonitor.yaml'))
        r = run(['kubectl', 'kustomize', os.path.join(tmp, 'base')])
        if r.returncode == 0:
            fail('kubectl kustomize rendered a kustomization whose resource podmonitor.yaml is missing')
        print('broken kustomization refused: %s' % r.stderr.strip().splitlines()[-1][:160])


# ---- schemas ----------------------------------------------------------------

def npm_ci(src, workdir):
    here = os.path.join(src, 'tests', 'deploy')
    os.makedirs(workdir, exist_ok=True)
    for name in ('package.json', 'package-lock.json', 'validate.mjs'):
        shutil.copyfile(os.path.join(here, name), os.path.join(workdir, name))
    r = run(['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error'], cwd=workdir, timeout=300)
    if r.returncode != 0:
        fail('npm ci in %s failed (exit %d): is the npm registry (%s) reachable? %s' %
             (workdir, r.returncode, run(['npm', 'config', 'get', 'registry']).stdout.strip(), r.stderr.strip()[-800:]))


def validate(workdir, objs, label):
    path = os.path.join(workdir, label + '.json')
    # kustomize wraps a Secret's base64 at 76 columns; the API server's
    # decoder (Go's encoding/base64) skips the newlines, the schema's "byte"
    # format does not: give it what the server decodes
    objs = copy.deepcopy(objs)
    for o in objs:
        if o.get('kind') == 'Secret' and isinstance(o.get('data'), dict):
            o['data'] = {k: v.replace('\n', '') if isinstance(v, str) else v for k, v in o['data'].items()}
    with open(path, 'w') as f:
        json.dump(objs, f)
    r = run(['node', os.path.join(workdir, 'validate.mjs'), path], cwd=workdir)
    if r.returncode not in (0, 1):
        fail('node validate.mjs %s failed (exit %d): %s' % (path, r.returncode, r.stderr.strip()))
    return r.returncode == 0, r.stdout.strip()


# The packages' TypeScript declarations name every field a kind has; an
# object literal typed with them fails to compile on a field they do not
# have (TypeScript's excess property check), which the JSON schemas let by.
TYPE_PACKAGES = ['kubernetes-models', '@kubernetes-models/prometheus-operator', '@kubernetes-models/keda']


def field_names(workdir, objs, label):
    """(ok, report): every field of every object is one its kind's type declares."""
    imports, consts, spans = [], [], []
    line = 1
    for i, o in enumerate(objs):
        api, kind = o.get('apiVersion', ''), o.get('kind', '')
        pkg = next((p for p in TYPE_PACKAGES
                    if os.path.exists(os.path.join(workdir, 'node_modules', p, api, kind + '.d.ts'))), None)
        if not pkg:
            return False, 'invalid %s/%s: no type declaration for apiVersion %s kind %s' % (
                kind, o.get('metadata', {}).get('name'), api, kind)
        imports.append('import type { I%s as T%d } from "%s/%s/%s";' % (kind, i, pkg, api, kind))
    line += len(imports)
    for i, o in enumerate(objs):
        text = 'export const o%d: T%d = %s;' % (i, i, json.dumps(o, indent=1))
        spans.append((line, line + text.count('\n'), '%s/%s' % (o['kind'], o['metadata']['name'])))
        line += text.count('\n') + 1
        consts.append(text)
    ts = os.path.join(workdir, label + '.ts')
    with open(ts, 'w') as f:
        f.write('\n'.join(imports + consts) + '\n')
    config = os.path.join(workdir, label + '.tsconfig.json')
    with open(config, 'w') as f:
        json.dump({'compilerOptions': {'module': 'nodenext', 'moduleResolution': 'nodenext', 'strict': True,
                                       'noEmit': True, 'skipLibCheck': True, 'types': []},
                   'files': [os.path.basename(ts)]}, f)
    r = run(['node', os.path.join(workdir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], cwd=workdir)
    if r.returncode == 0:
        return True, 'field names: every field of the %d objects is declared by its kind' % len(objs)
    report = []
    for err in (r.stdout + r.stderr).strip().splitlines():
        m = re.match(r'.*\.ts\((\d+),\d+\): error TS\d+: (.*)', err)
        if not m:
            report.append(err)
            continue
        n = int(m.group(1))
        where = next((name for lo, hi, name in spans if lo <= n <= hi), label + '.ts line %d' % n)
        report.append('invalid %s: %s' % (where, m.group(2)))
    return False, '\n'.join(report)


def container(objs, where=''):
    dep = one(objs, 'Deployment', 'rendervisor', where)
    cs = [c for c in dep['spec']['template']['spec'].get('containers', []) if c.get('name') == 'rendervisor']
    if len(cs) != 1:
        fail('%s: the Deployment has no container named rendervisor' % where)
    return dep, cs[0]


# Broken copies, one for each package's schemas, and what the error must name.
def broken_core(objs):
    objs = copy.deepcopy(objs)
    _, c = container(objs)
    c['ports'][0]['containerPort'] = 'http'
    return objs, 'containerPort must be integer'


def broken_operator(objs):
    objs = copy.deepcopy(objs)
    one(objs, 'PodMonitor')['spec']['podMetricsEndpoints'][0]['interval'] = '15 seconds'
    return objs, '/spec/podMetricsEndpoints/0/interval'


def broken_rule(objs):
    objs = copy.deepcopy(objs)
    del one(objs, 'PrometheusRule')['spec']['groups'][0]['name']
    return objs, 'name'


def broken_keda(objs):
    objs = copy.deepcopy(objs)
    del one(objs, 'ScaledObject')['spec']['triggers'][0]['type']
    return objs, 'type'


def broken_kind(objs):
    objs = copy.deepcopy(objs)
    one(objs, 'ScaledObject')['apiVersion'] = 'keda.sh/v1'
    return objs, 'no schema for apiVersion keda.sh/v1'


def cmd_schemas(src, workdir):
    npm_ci(src, workdir)
    rendered = {}
    for overlay in OVERLAYS:
        objs = kustomize(src, overlay)
        rendered[overlay] = objs
        ok, out = validate(workdir, objs, overlay.replace('/', '-'))
        print(out)
        if not ok:
            fail('%s: objects invalid against their schemas (lines "invalid" above)' % overlay)
        ok, out = field_names(workdir, objs, overlay.replace('/', '-'))
        print(out)
        if not ok:
            fail('%s: fields their kinds do not have (lines "invalid" above)' % overlay)
    objs = copy.deepcopy(rendered['base'])
    probe = container(objs)[1]
    probe['readinesProbe'] = probe.pop('readinessProbe')
    ok, out = field_names(workdir, objs, 'broken')
    if ok or 'readinesProbe' not in out or 'Deployment/rendervisor' not in out:
        fail('a misspelt readinesProbe was not caught by the field-name check:\n%s' % out)
    print('misspelt field caught: %s' % out.splitlines()[0])
    for make in (broken_core, broken_operator, broken_rule, broken_keda, broken_kind):
        objs, expect = make(rendered['base'])
        ok, out = validate(workdir, objs, 'broken')
        bad = [line for line in out.splitlines() if line.startswith('invalid')]
        if ok or len(bad) != 1 or expect not in bad[0]:
            fail('%s: the schema check did not catch the broken field (expected one "invalid" line naming %r):\n%s' %
                 (make.__name__, expect, out))
        print('%s caught: %s' % (make.__name__, bad[0]))


# ---- rules ------------------------------------------------------------------

def cmd_rules(src, promtool_path):
    if not promtool_path:
        fail('promtool not found: install the Debian package prometheus (scripts/install-deps.sh), then reconfigure the build')
    rule = one(kustomize(src, 'base'), 'PrometheusRule', 'rendervisor', 'base')
    tests = os.path.join(src, 'alerts', 'rendervisor.rules.test.yml')
    with open(tests) as f:
        if yaml.safe_load(f).get('rule_files') != ['rendervisor.rules.yml']:
            fail('%s: expected rule_files: [rendervisor.rules.yml]' % tests)
    with tempfile.TemporaryDirectory() as tmp:
        # the rules as the operator hands them to Prometheus: spec is the file
        with open(os.path.join(tmp, 'rendervisor.rules.yml'), 'w') as f:
            yaml.safe_dump(rule['spec'], f, sort_keys=False)
        shutil.copyfile(tests, os.path.join(tmp, 'rules.test.yml'))
        for args in (('check', 'rules', 'rendervisor.rules.yml'), ('test', 'rules', 'rules.test.yml')):
            r = run([promtool_path] + list(args), cwd=tmp)
            print('promtool %s:\n%s' % (' '.join(args), (r.stdout + r.stderr).strip()))
            if r.returncode != 0:
                fail('promtool %s failed on the rules of the rendered PrometheusRule (exit %d)' % (' '.join(args), r.returncode))
        # a broken rule must be refused
        spec = copy.deepcopy(rule['spec'])
        spec['groups'][0]['rules'][0]['expr'] = 'sum(rate(grafana_image_renderer_service_http_request_duration_seconds_count[5m])'
        with open(os.path.join(tmp, 'rendervisor.rules.yml'), 'w') as f:
            yaml.safe_dump(spec, f, sort_keys=False)
        r = run([promtool_path, 'check', 'rules', 'rendervisor.rules.yml'], cwd=tmp)
        if r.returncode == 0:
            fail('promtool check rules passed a rule whose expr has an unclosed parenthesis')
        print('broken rule caught: %s' % (r.stdout + r.stderr).strip().splitlines()[-1][:200])


# ---- generated ---------------------------------------------------------------

def cmd_generated(src):
    tool = os.path.join(src, 'tools', 'prometheusrule.py')
    rules = os.path.join(src, 'alerts', 'rendervisor.rules.yml')
    manifest = os.path.join(src, 'deploy', 'kubernetes', 'base', 'prometheusrule.yaml')
    r = run([sys.executable, tool, '--check', rules, manifest])
    if r.returncode != 0:
        fail('the PrometheusRule has drifted from the alert rules: %s' % (r.stdout + r.stderr).strip())
    print(r.stdout.strip())
    # and the resource says the same as the file, parsed
    with open(rules) as f:
        want = yaml.safe_load(f)['groups']
    if one(kustomize(src, 'base'), 'PrometheusRule')['spec']['groups'] != want:
        fail('the rendered PrometheusRule\'s spec.groups differ from %s' % rules)
    # a rules file changed without regenerating is caught
    with tempfile.TemporaryDirectory() as tmp:
        changed = os.path.join(tmp, 'rendervisor.rules.yml')
        with open(rules) as f:
            text = f.read()
        with open(changed, 'w') as f:
            f.write(text.replace('for: 5m', 'for: 6m', 1))
        r = run([sys.executable, tool, '--check', changed, manifest])
        if r.returncode == 0:
            fail('prometheusrule.py --check did not notice a changed "for:"')
        print('drift caught: %s' % (r.stdout + r.stderr).strip().splitlines()[0][:200])


# ---- consistency --------------------------------------------------------------

def supervisor_seconds(src, name):
    path, macro = SUPERVISOR_CONSTANTS[name]
    with open(os.path.join(src, path)) as f:
        m = re.search(r'^#define %s \((\d+) \* CLOCK_NS_PER_S\)$' % macro, f.read(), re.M)
    if not m:
        fail('%s: no "#define %s (N * CLOCK_NS_PER_S)" to read the supervisor\'s timing from' % (path, macro))
    return int(m.group(1))


def ini_parse(text, where):
    # inih's syntax as docs/configuration.md has it: ";" or "#" comment lines,
    # " ;" inline comments, indented continuation lines
    p = configparser.ConfigParser(comment_prefixes=(';', '#'), inline_comment_prefixes=(';',),
                                  interpolation=None, strict=True, empty_lines_in_values=False)
    try:
        p.read_string(text, source=where)
    except configparser.Error as e:
        fail('%s: cannot parse: %s' % (where, e))
    return p


def ini_get(ini, section, key, where):
    if not ini.has_option(section, key):
        fail('%s: no [%s] %s' % (where, section, key))
    return ' '.join(ini.get(section, key).split())


def size_bytes(v, what):
    m = re.fullmatch(r'(\d+)([kKmMgG]?)', v)
    if not m:
        fail('%s: %r is not a size' % (what, v))
    return int(m.group(1)) * {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[m.group(2).lower()]


def duration_s(v, what):
    m = re.fullmatch(r'(\d+)(ms|s|m)', v)
    if not m:
        fail('%s: %r is not a duration' % (what, v))
    return int(m.group(1)) * {'ms': 0.001, 's': 1, 'm': 60}[m.group(2)]


def quantity_bytes(q, what):
    m = re.fullmatch(r'(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?', str(q))
    if not m:
        fail('%s: %r is not a quantity this check reads (a whole number with Ki, Mi, Gi, Ti, k, M, G or T)' % (what, q))
    mult = {None: 1, 'Ki': 1 << 10, 'Mi': 1 << 20, 'Gi': 1 << 30, 'Ti': 1 << 40,
            'k': 10**3, 'M': 10**6, 'G': 10**9, 'T': 10**12}[m.group(2)]
    return int(m.group(1)) * mult


def listen_port(v, what):
    m = re.fullmatch(r'(.+):(\d+)', v)
    if not m:
        fail('%s: %r is not host:port' % (what, v))
    return m.group(1), int(m.group(2))


def mounted_config(objs, c, dep, where):
    """The rendervisor.ini the pod reads: the Secret mounted at /etc/rendervisor."""
    mounts = [m for m in c.get('volumeMounts', []) if m.get('mountPath') == '/etc/rendervisor']
    if len(mounts) != 1:
        fail('%s: nothing is mounted at /etc/rendervisor, where the image\'s entrypoint reads rendervisor.ini' % where)
    vols = [v for v in dep['spec']['template']['spec'].get('volumes', []) if v['name'] == mounts[0]['name']]
    if len(vols) != 1 or 'secret' not in vols[0]:
        fail('%s: the volume at /etc/rendervisor is not a Secret' % where)
    secret = one(objs, 'Secret', vols[0]['secret']['secretName'], where)
    data = secret.get('data', {})
    if 'rendervisor.ini' not in data:
        fail('%s: Secret %s has no key rendervisor.ini' % (where, secret['metadata']['name']))
    return base64.b64decode(data['rendervisor.ini']).decode()


def probe_http(c, name, port_names, problems):
    """periodSeconds, failureThreshold, timeoutSeconds (Kubernetes' defaults where unset)."""
    p = c.get(name)
    if not p:
        problems.append('the container has no %s' % name)
        p = {}
    get = p.get('httpGet', {})
    if p and (get.get('path') != '/healthz' or get.get('port') not in port_names):
        problems.append('%s must be an httpGet of /healthz on the renderer\'s port (%s), not %s' %
                        (name, ' or '.join(str(x) for x in port_names), json.dumps(get)))
    return p.get('periodSeconds', 10), p.get('failureThreshold', 3), p.get('timeoutSeconds', 1)


def consistency(objs, where, src):
    """Every disagreement between the rendered manifests and the config they mount."""
    problems = []
    dep, c = container(objs, where)
    pod = dep['spec']['template']
    ini_text = mounted_config(objs, c, dep, where)
    ini = ini_parse(ini_text, where + ' rendervisor.ini')
    g = lambda s, k: ini_get(ini, s, k, where + ' rendervisor.ini')

    # ports: the renderer's and the exporter's listeners, reachable from other pods
    ports = {p.get('name'): p.get('containerPort') for p in c.get('ports', [])}
    for section, name in (('renderer', 'http'), ('exporter', 'metrics')):
        host, port = listen_port(g(section, 'listen'), '[%s] listen' % section)
        if host not in ('0.0.0.0', '[::]'):
            problems.append('[%s] listen is %s: other pods cannot reach it (0.0.0.0)' % (section, host))
        if ports.get(name) != port:
            problems.append('container port %s is %s, [%s] listen says %d' % (name, ports.get(name), section, port))
    renderer_port = ports.get('http')

    svc = one(objs, 'Service', 'rendervisor', where)
    labels = pod['metadata'].get('labels', {})
    sel = svc['spec'].get('selector', {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        problems.append('the Service\'s selector %s does not select the pods (labels %s)' % (sel, labels))
    for p in svc['spec']['ports']:
        if p.get('targetPort') not in ('http', renderer_port):
            problems.append('Service port %s targets %s, not the renderer\'s port' % (p.get('port'), p.get('targetPort')))

    pm = one(objs, 'PodMonitor', 'rendervisor', where)
    pm_sel = pm['spec'].get('selector', {}).get('matchLabels', {})
    if not pm_sel or any(labels.get(k) != v for k, v in pm_sel.items()):
        problems.append('the PodMonitor\'s selector %s does not select the pods (labels %s)' % (pm_sel, labels))
    eps = pm['spec'].get('podMetricsEndpoints', [])
    if [e.get('port') for e in eps] != ['metrics'] or eps[0].get('path', '/metrics') != '/metrics':
        problems.append('the PodMonitor must scrape /metrics on the port named metrics, not %s' % json.dumps(eps))
    jobs = [r.get('replacement') for e in eps for r in e.get('relabelings', []) if r.get('targetLabel') == 'job']
    job = jobs[0] if len(jobs) == 1 else None

    # probes against the supervisor's health logic (docs/supervisor.md, "Health")
    health = {k: duration_s(g('supervisor', 'health_' + k), 'health_' + k) for k in ('interval', 'timeout')}
    failures = int(g('supervisor', 'health_failures'))
    stop = duration_s(g('supervisor', 'stop_timeout'), 'stop_timeout')
    grace_s = supervisor_seconds(src, 'PROBE_GRACE_S')
    backoff_s = supervisor_seconds(src, 'BACKOFF_MAX_S')
    window = grace_s + failures * health['interval'] + health['timeout'] + stop + backoff_s
    names = ('http', renderer_port)
    period, threshold, timeout = probe_http(c, 'livenessProbe', names, problems)
    if (threshold - 1) * period < window:
        problems.append('livenessProbe kills the pod after %d s of failures, before the supervisor has had its %g s '
                        '(%d s for a child not yet answering + health_failures %d x health_interval %g s + '
                        'health_timeout %g s + stop_timeout %g s + %d s of backoff) to restart the renderer itself: '
                        'raise failureThreshold or periodSeconds' %
                        ((threshold - 1) * period, window, grace_s, failures, health['interval'],
                         health['timeout'], stop, backoff_s))
    if timeout < math.ceil(health['timeout']):
        problems.append('livenessProbe timeoutSeconds %d is shorter than health_timeout %g s, what the supervisor '
                        'gives the renderer to answer' % (timeout, health['timeout']))
    period, threshold, _ = probe_http(c, 'readinessProbe', names, problems)
    if failures * health['interval'] and period * threshold > failures * health['interval']:
        problems.append('readinessProbe takes %d s to take the pod out of the Service, longer than the supervisor '
                        'takes to restart a failing child (health_failures x health_interval = %g s)' %
                        (period * threshold, failures * health['interval']))
    period, threshold, _ = probe_http(c, 'startupProbe', names, problems)
    if period * threshold < grace_s + failures * health['interval'] + health['timeout']:
        problems.append('startupProbe gives up after %d s, before the supervisor would restart a renderer that '
                        'never answered (%g s)' % (period * threshold,
                                                    grace_s + failures * health['interval'] + health['timeout']))

    # shutdown: the preStop wait and the supervisor's stop within the grace period
    grace = pod['spec'].get('terminationGracePeriodSeconds', 30)
    pre = c.get('lifecycle', {}).get('preStop', {})
    cmd = pre.get('exec', {}).get('command', [])
    wait = int(cmd[1]) if len(cmd) == 2 and cmd[0].endswith('sleep') and cmd[1].isdigit() else \
        pre.get('sleep', {}).get('seconds', 0)
    # the renderer drains for drain_timeout, is SIGKILLed stop_timeout later
    # at the latest, then the other children get their stop_timeout
    # (docs/supervisor.md, "Shutdown")
    drain = duration_s(g('renderer', 'drain_timeout'), 'drain_timeout')
    if grace < wait + drain + 2 * stop + 5:
        problems.append('terminationGracePeriodSeconds %d leaves no room after the preStop wait (%d s) for the '
                        'supervisor\'s stop (drain_timeout %g s + 2 x stop_timeout %g s) and 5 s to spare'
                        % (grace, wait, drain, stop))
    if wait < 5:
        problems.append('the preStop wait (%d s) is too short for the pod\'s endpoint to leave every node\'s '
                        'Service rules: renders would still arrive after SIGTERM and be refused 503' % wait)

    # memory: the limit is the budget, and the children's limits fit in it
    res = c.get('resources', {})
    limit = res.get('limits', {}).get('memory')
    if limit is None:
        problems.append('the container has no memory limit: [renderer] memory_budget 0 takes the cgroup\'s limit as the budget')
    else:
        limit = quantity_bytes(limit, 'limits.memory')
        if quantity_bytes(res.get('requests', {}).get('memory', 0), 'requests.memory') != limit:
            problems.append('requests.memory differs from limits.memory: the scheduler must reserve the whole budget')
        count = int(g('browsers', 'count'))
        parts = {'exporter': size_bytes(g('exporter', 'memory_limit'), '[exporter] memory_limit'),
                 'renderer': size_bytes(g('renderer', 'memory_limit'), '[renderer] memory_limit'),
                 'browsers': count * size_bytes(g('browsers', 'memory_limit'), '[browsers] memory_limit')}
        if 0 in parts.values():
            problems.append('a memory_limit of 0 (none) leaves the pod\'s limit nothing to match')
        need = sum(parts.values()) + SUPERVISOR_MIB * (1 << 20)
        budget = size_bytes(g('renderer', 'memory_budget'), '[renderer] memory_budget')
        what = 'exporter %d MiB + renderer %d MiB + %d browsers %d MiB + supervisor %d MiB' % (
            parts['exporter'] >> 20, parts['renderer'] >> 20, count, parts['browsers'] >> 20, SUPERVISOR_MIB)
        if limit < need:
            problems.append('the memory limit %d MiB is below the children\'s memory_limit keys and the supervisor '
                            '(%s = %d MiB): the kernel\'s OOM killer would act before the supervisor\'s limits' %
                            (limit >> 20, what, need >> 20))
        elif limit > need + SLACK_MIB * (1 << 20):
            problems.append('the memory limit %d MiB is more than %d MiB above what the children may use (%s = %d MiB)'
                            % (limit >> 20, SLACK_MIB, what, need >> 20))
        if budget and budget > limit:
            problems.append('[renderer] memory_budget %d MiB is above the pod\'s memory limit %d MiB' % (budget >> 20, limit >> 20))

    # user, runtime_dir, a read-only root
    sc = c.get('securityContext', {})
    caps = set(sc.get('capabilities', {}).get('add', []))
    if ini.has_option('supervisor', 'user'):
        if sc.get('runAsUser', 0) != 0:
            problems.append('[supervisor] user is set: the supervisor must run as root (runAsUser 0) to start the children as it')
        for cap in ('SETUID', 'SETGID', 'KILL', 'CHOWN', 'DAC_OVERRIDE'):
            if 'ALL' in sc.get('capabilities', {}).get('drop', []) and cap not in caps:
                problems.append('capability %s is dropped: the supervisor needs it with [supervisor] user set' % cap)
    # Chromium's sandbox and the seccomp profile: RuntimeDefault (moby's
    # profile) refuses the user namespaces the sandbox makes
    seccomp = (sc.get('seccompProfile') or pod['spec'].get('securityContext', {}).get('seccompProfile') or {}).get('type')
    sandbox_off = re.search(r'(^|\s)--?no-sandbox(=|\s|$)', g('browsers', 'command')) is not None
    if not sandbox_off and seccomp not in ('Unconfined', 'Localhost'):
        problems.append('seccompProfile is %s, but Chromium\'s sandbox is on ([browsers] command has no --no-sandbox) and '
                        'needs user namespaces, which RuntimeDefault refuses ("No usable sandbox!"): Unconfined, or a '
                        'Localhost profile that allows them' % (seccomp or 'unset (the kubelet\'s default)'))
    if sandbox_off and seccomp not in ('RuntimeDefault', 'Localhost'):
        problems.append('[browsers] command has --no-sandbox, and seccompProfile is %s: without Chromium\'s sandbox '
                        'keep the runtime\'s filter (RuntimeDefault)' % (seccomp or 'unset'))
    mounts = {m['mountPath'] for m in c.get('volumeMounts', [])}
    if sc.get('readOnlyRootFilesystem'):
        for path in (g('supervisor', 'runtime_dir'), '/tmp'):
            if path not in mounts:
                problems.append('readOnlyRootFilesystem, and nothing writable is mounted at %s' % path)

    # the image: rendervisor:<project version> (an overlay may set the registry)
    with open(os.path.join(src, 'meson.build')) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    if not c.get('image', '').endswith('rendervisor:' + version):
        problems.append('the image is %s, not rendervisor:%s (meson.build\'s version)' % (c.get('image'), version))

    # autoscaling on the renders in flight and the queue
    so = one(objs, 'ScaledObject', 'rendervisor', where)
    if so['spec'].get('scaleTargetRef', {}).get('name') != dep['metadata']['name']:
        problems.append('the ScaledObject scales %s, not the Deployment' % so['spec'].get('scaleTargetRef'))
    with open(os.path.join(src, 'docs', 'metrics.md')) as f:
        documented = f.read()
    slots = int(g('browsers', 'count')) * int(g('renderer', 'concurrency'))
    triggers = {}
    for t in so['spec'].get('triggers', []):
        q = t.get('metadata', {}).get('query', '')
        for family in ('grafana_image_renderer_http_request_in_flight', 'rendervisor_renderer_queued_renders'):
            if family in q:
                triggers[family] = t
        if t.get('type') != 'prometheus':
            problems.append('trigger %s is not KEDA\'s prometheus scaler' % t.get('name'))
        # metadata is a map of strings to the schemas: its keys are checked here
        keys = set(t.get('metadata', {}))
        if not {'serverAddress', 'query', 'threshold'} <= keys:
            problems.append('trigger %s has metadata %s: KEDA\'s prometheus scaler needs serverAddress, query and '
                            'threshold' % (t.get('name'), ', '.join(sorted(keys))))
        for name in re.findall(r'\b([a-z_]+)\{', q):
            if '| %s |' % name not in documented:
                problems.append('trigger %s queries %s, which docs/metrics.md does not list' % (t.get('name'), name))
        if job and 'job="%s"' % job not in q:
            problems.append('trigger %s does not select job="%s", the PodMonitor\'s job' % (t.get('name'), job))
    for family in ('grafana_image_renderer_http_request_in_flight', 'rendervisor_renderer_queued_renders'):
        if family not in triggers:
            problems.append('no ScaledObject trigger on %s' % family)
    t = triggers.get('grafana_image_renderer_http_request_in_flight')
    if t:
        threshold = float(t['metadata'].get('threshold', 0))
        if not 0 < threshold <= slots:
            problems.append('the in-flight trigger\'s threshold %g per pod is not within a pod\'s %d slots '
                            '([browsers] count x [renderer] concurrency)' % (threshold, slots))
    lo = so['spec'].get('minReplicaCount', 0)
    if 'replicas' in dep['spec'] and dep['spec']['replicas'] != lo:
        problems.append('the Deployment\'s replicas %d is not the ScaledObject\'s minReplicaCount %d' % (dep['spec']['replicas'], lo))
    return problems, ini_text


def overlay_config_problems(base_ini, overlay_ini, objs):
    """The example overlay's config is the base's with the token and the count changed."""
    problems = []
    b, o = ini_parse(base_ini, 'base rendervisor.ini'), ini_parse(overlay_ini, 'overlay rendervisor.ini')
    allowed = {('renderer', 'auth_token'), ('browsers', 'count')}
    for s in sorted(set(b.sections()) | set(o.sections())):
        keys = set(b[s] if b.has_section(s) else []) | set(o[s] if o.has_section(s) else [])
        for k in sorted(keys):
            bv = b.get(s, k, fallback=None)
            ov = o.get(s, k, fallback=None)
            if bv != ov and (s, k) not in allowed:
                problems.append('the overlay\'s rendervisor.ini changes [%s] %s (%r, base %r): only %s may differ' %
                                (s, k, ov, bv, ', '.join('[%s] %s' % a for a in sorted(allowed))))
    token = o.get('renderer', 'auth_token', fallback='-')
    if token == '-':
        problems.append('the overlay keeps auth_token = -: anyone who reaches the Service could render')
    sec = [x for x in objs if x['kind'] == 'Secret' and x['metadata']['name'] == 'grafana-renderer-token']
    if len(sec) != 1 or 'token' not in sec[0].get('data', {}):
        problems.append('no Secret grafana-renderer-token with a key token for Grafana')
    elif base64.b64decode(sec[0]['data']['token']).decode() != token:
        problems.append('the token in Secret grafana-renderer-token differs from [renderer] auth_token: '
                        'Grafana\'s renders would be answered 401')
    return problems


# Broken copies the consistency check must catch, and a word its message must have.
def bad_liveness(objs):
    container(objs)[1]['livenessProbe']['failureThreshold'] = 3
    return 'livenessProbe kills the pod'


def bad_memory(objs):
    r = container(objs)[1]['resources']
    r['limits']['memory'] = r['requests']['memory'] = '1Gi'
    return 'OOM killer'


def bad_port(objs):
    container(objs)[1]['ports'][1]['containerPort'] = 9464
    return 'container port metrics is 9464'


def bad_path(objs):
    container(objs)[1]['readinessProbe']['httpGet']['path'] = '/ready'
    return 'readinessProbe must be an httpGet of /healthz'


def bad_grace(objs):
    container(objs)[0]['spec']['template']['spec']['terminationGracePeriodSeconds'] = 10
    return 'terminationGracePeriodSeconds 10'


def bad_trigger(objs):
    one(objs, 'ScaledObject')['spec']['triggers'][0]['metadata']['query'] = 'sum(grafana_image_renderer_http_requests_in_flight{job="renderer"})'
    return 'no ScaledObject trigger on grafana_image_renderer_http_request_in_flight'


def bad_token(objs):
    one(objs, 'Secret', 'grafana-renderer-token')['data']['token'] = base64.b64encode(b'another').decode()
    return 'differs from [renderer] auth_token'


def bad_trigger_key(objs):
    m = one(objs, 'ScaledObject')['spec']['triggers'][1]['metadata']
    m['treshold'] = m.pop('threshold')
    return 'needs serverAddress, query and threshold'


def bad_seccomp(objs):
    container(objs)[1]['securityContext']['seccompProfile'] = {'type': 'RuntimeDefault'}
    return 'No usable sandbox'


def bad_caps(objs):
    container(objs)[1]['securityContext']['capabilities']['add'].remove('DAC_OVERRIDE')
    return 'capability DAC_OVERRIDE is dropped'


def cmd_consistency(src):
    rendered = {o: kustomize(src, o) for o in OVERLAYS}
    configs = {}
    for overlay, objs in rendered.items():
        problems, configs[overlay] = consistency(objs, overlay, src)
        if problems:
            fail('%s: the manifests disagree with their rendervisor.ini:\n  %s' % (overlay, '\n  '.join(problems)))
        print('%s: consistent with its rendervisor.ini' % overlay)
    with open(os.path.join(src, 'deploy', 'kubernetes', 'base', 'rendervisor.ini')) as f:
        if f.read() != configs['base']:
            fail('base: the Secret does not hold deploy/kubernetes/base/rendervisor.ini as it is')
    problems = overlay_config_problems(configs['base'], configs['overlays/example'], rendered['overlays/example'])
    if problems:
        fail('overlays/example:\n  %s' % '\n  '.join(problems))
    print('overlays/example: its rendervisor.ini is the base\'s with the token and the count, and Grafana\'s token matches')

    # and each kind of disagreement is caught
    for make in (bad_liveness, bad_memory, bad_port, bad_path, bad_grace, bad_trigger, bad_trigger_key, bad_seccomp, bad_caps):
        objs = copy.deepcopy(rendered['base'])
        expect = make(objs)
        problems, _ = consistency(objs, 'base', src)
        if not any(expect in p for p in problems):
            fail('%s: the consistency check did not catch it (expected a problem with %r, got %s)' % (make.__name__, expect, problems))
        print('%s caught: %s' % (make.__name__, [p for p in problems if expect in p][0][:160]))
    objs = copy.deepcopy(rendered['overlays/example'])
    expect = bad_token(objs)
    problems = overlay_config_problems(configs['base'], configs['overlays/example'], objs)
    if not any(expect in p for p in problems):
        fail('bad_token: not caught (got %s)' % problems)
    print('bad_token caught')
    problems = overlay_config_problems(configs['base'], configs['overlays/example'].replace('stop_timeout = 5s', 'stop_timeout = 6s'),
                                       rendered['overlays/example'])
    if not any('stop_timeout' in p for p in problems):
        fail('an overlay config that changes stop_timeout was not caught (got %s)' % problems)
    print('overlay config drift caught')


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, src = argv[1], argv[2]
    try:
        if cmd == 'render' and len(argv) == 3:
            cmd_render(src)
        elif cmd == 'schemas' and len(argv) == 4:
            cmd_schemas(src, argv[3])
        elif cmd == 'rules' and len(argv) == 4:
            cmd_rules(src, argv[3])
        elif cmd == 'generated' and len(argv) == 3:
            cmd_generated(src)
        elif cmd == 'consistency' and len(argv) == 3:
            cmd_consistency(src)
        else:
            sys.exit(__doc__)
    except Failure as e:
        sys.exit('FAIL: %s' % e)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
