#!/usr/bin/env python3
"""Check the configuration examples in docs/examples/, so the docs cannot rot.

    check_examples.py prometheus SOURCE_ROOT PROMTOOL
        docs/examples/prometheus.yml, laid out as docs/prometheus.md says
        (prometheus.yml with its rule files in rules/ beside it), passes
        `promtool check config`, which reads the rule files too; every rule of
        every file it names is loaded.

    check_examples.py grafana SOURCE_ROOT
        the Grafana provisioning example: dashboards/rendervisor.json, with
        ${DS_PROMETHEUS} replaced as docs/examples/grafana/dashboards.yml says,
        is JSON whose every data source is the one datasource.yml provisions.

PROMTOOL may be empty: the check then fails with a message saying so, rather
than passing without having checked anything.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Where each rule file named by the example comes from in the source tree.
RULE_SOURCES = {
    'rules/rendervisor.rules.yml': 'alerts/rendervisor.rules.yml',
    'rules/rendervisor-up.rules.yml': 'docs/examples/rendervisor-up.rules.yml',
}


def fail(why):
    sys.exit('FAIL: ' + why)


def rule_files(config_text):
    """The entries of the top-level rule_files list (plain YAML block list)."""
    files, inside = [], False
    for line in config_text.splitlines():
        if re.match(r'rule_files:\s*$', line):
            inside = True
        elif inside and re.match(r'\s+-\s*(\S+)', line):
            files.append(re.match(r'\s+-\s*(\S+)', line).group(1).strip('"\''))
        elif inside and line.strip() and not line.lstrip().startswith('#'):
            inside = False
    return files


def check_prometheus(root, promtool):
    if not promtool:
        fail('promtool not found: install the Debian package prometheus '
             '(scripts/install-deps.sh), then reconfigure the build')
    example = os.path.join(root, 'docs', 'examples', 'prometheus.yml')
    with open(example) as f:
        text = f.read()
    named = rule_files(text)
    if sorted(named) != sorted(RULE_SOURCES):
        fail('docs/examples/prometheus.yml names rule files %s; this check knows %s: '
             'update RULE_SOURCES and docs/prometheus.md together' % (named, sorted(RULE_SOURCES)))
    tmp = tempfile.mkdtemp(prefix='rvdocs')
    try:
        shutil.copy(example, os.path.join(tmp, 'prometheus.yml'))
        expected = 0
        for dest, src in RULE_SOURCES.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, dest)), exist_ok=True)
            shutil.copy(os.path.join(root, src), os.path.join(tmp, dest))
            with open(os.path.join(root, src)) as f:
                expected += len(re.findall(r'^\s*- (?:alert|record):', f.read(), re.M))
        out = subprocess.run([promtool, 'check', 'config', 'prometheus.yml'], cwd=tmp,
                             capture_output=True, text=True, timeout=60)
        print(out.stdout + out.stderr)
        if out.returncode != 0:
            fail('promtool check config rejects docs/examples/prometheus.yml')
        loaded = sum(int(n) for n in re.findall(r'SUCCESS: (\d+) rules found', out.stdout + out.stderr))
        if loaded != expected or expected == 0:
            fail('promtool loaded %d rules, the rule files hold %d' % (loaded, expected))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('docs/examples/prometheus.yml: valid, %d rules loaded' % expected)


def check_grafana(root):
    examples = os.path.join(root, 'docs', 'examples', 'grafana')
    with open(os.path.join(examples, 'datasource.yml')) as f:
        uids = re.findall(r'^\s+uid:\s*(\S+)\s*$', f.read(), re.M)
    if len(uids) != 1:
        fail('datasource.yml: expected one data source uid, found %s' % uids)
    uid = uids[0]
    with open(os.path.join(examples, 'dashboards.yml')) as f:
        seds = re.findall(r"sed 's/\$\{(\w+)\}/([^/]*)/g'", f.read())
    if len(seds) != 1:
        fail('dashboards.yml: expected one sed command replacing ${INPUT}, found %s' % seds)
    name, replacement = seds[0]
    if replacement != uid:
        fail('dashboards.yml replaces ${%s} with %r, datasource.yml provisions uid %r'
             % (name, replacement, uid))

    with open(os.path.join(root, 'dashboards', 'rendervisor.json')) as f:
        original = f.read()
    inputs = [i['name'] for i in json.loads(original).get('__inputs', [])]
    if inputs != [name]:
        fail('the dashboard asks for inputs %s; the provisioning example replaces only %s' % (inputs, name))
    dash = json.loads(original.replace('${%s}' % name, replacement))
    if '${DS_' in json.dumps(dash):
        fail('a ${DS_...} reference is left in the provisioned dashboard')

    seen = []

    def walk(node, where):
        if isinstance(node, dict):
            if 'datasource' in node:
                ds = node['datasource']
                seen.append(where)
                # rows carry no data source; a query or panel must name ours
                if ds is not None and ds != {'type': 'prometheus', 'uid': uid}:
                    fail('%s: data source %r is not the provisioned one (uid %s)' % (where, ds, uid))
            for k, v in node.items():
                walk(v, where + '.' + k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, '%s[%d]' % (where, i))

    walk(dash.get('panels', []), 'panels')
    walk(dash.get('templating', {}), 'templating')
    if len(seen) < 10:
        fail('only %d data source references found: is this the dashboard?' % len(seen))
    print('grafana provisioning example: %d data source references, all uid %s' % (len(seen), uid))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ('prometheus', 'grafana'):
        sys.exit(__doc__)
    root = sys.argv[2]
    if sys.argv[1] == 'prometheus':
        check_prometheus(root, sys.argv[3] if len(sys.argv) > 3 else '')
    else:
        check_grafana(root)


if __name__ == '__main__':
    main()
