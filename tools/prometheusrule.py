#!/usr/bin/env python3
"""Write the alert rules as the Prometheus Operator's PrometheusRule.

    prometheusrule.py RULES.yml OUT.yaml          write OUT.yaml
    prometheusrule.py --check RULES.yml OUT.yaml  exit 1 (and say why) unless
                                                  OUT.yaml is what would be written

RULES.yml is alerts/rendervisor.rules.yml, OUT.yaml
deploy/kubernetes/base/prometheusrule.yaml. The rules file's `groups:` and
everything after it become the resource's `spec:`, indented as they are,
comments included, so the manifest reads as the rules file does and a
change to one without the other is a byte difference `--check` reports
(meson test --suite deploy runs it).
"""
import sys

HEADER = """\
# GENERATED from alerts/rendervisor.rules.yml by tools/prometheusrule.py: do
# not edit. Change the rules file, then run
#   tools/prometheusrule.py alerts/rendervisor.rules.yml deploy/kubernetes/base/prometheusrule.yaml
# (meson test --suite deploy fails while the two differ).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: rendervisor
spec:
"""


def render(rules_text, rules_path):
    lines = rules_text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip('\n') == 'groups:']
    if len(starts) != 1:
        raise ValueError('%s: expected one top-level "groups:" line, found %d' % (rules_path, len(starts)))
    out = [HEADER]
    for line in lines[starts[0]:]:
        out.append('  ' + line if line.strip() else line)
    text = ''.join(out)
    return text if text.endswith('\n') else text + '\n'


def main(argv):
    check = len(argv) > 1 and argv[1] == '--check'
    args = argv[2:] if check else argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    rules_path, out_path = args
    try:
        with open(rules_path, encoding='utf-8') as f:
            want = render(f.read(), rules_path)
    except (OSError, ValueError) as e:
        sys.exit('prometheusrule.py: %s' % e)
    if not check:
        with open(out_path, 'w', encoding='utf-8') as f:
            f.write(want)
        return 0
    try:
        with open(out_path, encoding='utf-8') as f:
            have = f.read()
    except OSError as e:
        sys.exit('prometheusrule.py: %s' % e)
    if have != want:
        have_lines, want_lines = have.splitlines(), want.splitlines()
        n = next((i for i, (a, b) in enumerate(zip(have_lines, want_lines)) if a != b),
                 min(len(have_lines), len(want_lines)))
        sys.exit('%s does not match %s from line %d on (%r, expected %r): run\n'
                 '  tools/prometheusrule.py %s %s' %
                 (out_path, rules_path, n + 1,
                  have_lines[n] if n < len(have_lines) else '<end of file>',
                  want_lines[n] if n < len(want_lines) else '<end of file>',
                  rules_path, out_path))
    print('%s matches %s' % (out_path, rules_path))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
