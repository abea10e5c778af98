#!/usr/bin/env python3
"""Count the test cases of one or more meson build dirs and print the closing
line `N passed, N failed`. `--extra FILE` (repeatable) adds a tally line
`NAME: N passed, M failed` from FILE (the valgrind run's log, one per unit
test binary; the fuzz run's log, one per target); a missing FILE counts as a
failure. A meson test is a cmocka executable (its own
'[  PASSED  ]'/'[  FAILED  ]' lines count its cases) or a Python unittest
file ('Ran N tests', 'FAILED (failures=…, errors=…)'). A test that crashed or
timed out before counting anything counts as one failure."""
import json
import os
import re
import sys

CM_PASSED = re.compile(r'^\[  PASSED  \] (\d+) test', re.M)
CM_FAILED = re.compile(r'^\[  FAILED  \] (\d+) test', re.M)
PY_RAN = re.compile(r'^Ran (\d+) tests?', re.M)
PY_FAILED = re.compile(r'^FAILED \(([^)]*)\)', re.M)
PY_SKIPPED = re.compile(r'skipped=(\d+)')


def count(entry):
    out = (entry.get('stdout') or '') + '\n' + (entry.get('stderr') or '')
    ok = entry.get('result') == 'OK'
    passed = failed = skipped = 0
    if CM_PASSED.search(out) or CM_FAILED.search(out):
        passed = sum(int(n) for n in CM_PASSED.findall(out))
        failed = sum(int(n) for n in CM_FAILED.findall(out))
    elif PY_RAN.search(out):
        ran = sum(int(n) for n in PY_RAN.findall(out))
        bad = 0
        for m in PY_FAILED.findall(out):
            for part in m.split(','):
                k, _, v = part.strip().partition('=')
                if k in ('failures', 'errors', 'unexpected_successes'):
                    bad += int(v)
        skipped = sum(int(n) for n in PY_SKIPPED.findall(out))
        failed = bad
        passed = ran - bad - skipped
    elif ok:
        passed = 1
    # The runner says it failed (a sanitizer report at exit, a crash, a
    # timeout) though the cases it counted passed: that is a failure too.
    if not ok and entry.get('result') != 'SKIP' and failed == 0:
        failed = 1
    return passed, failed, skipped


EXTRA = re.compile(r'^(\w+): (\d+) passed, (\d+) failed', re.M)


def main():
    total = [0, 0, 0]
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] == '--extra':
        path = args[1]
        args = args[2:]
        found = EXTRA.findall(open(path).read()) if os.path.exists(path) else []
        if not found:
            print('%s: no tally line (the run did not happen or did not finish)' % path)
            total[1] += 1
        for name, p, f in found[-1:]:
            print('%s: %s passed, %s failed' % (name, p, f))
            total[0] += int(p)
            total[1] += int(f)
    for build in args:
        log = os.path.join(build, 'meson-logs', 'testlog.json')
        if not os.path.exists(log):
            print('%s: no test log (the build or the test run did not happen)' % build)
            total[1] += 1
            continue
        sums = [0, 0, 0]
        for line in open(log):
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            p, f, s = count(entry)
            sums = [sums[0] + p, sums[1] + f, sums[2] + s]
            if f:
                print('%s: %s: %s (%d failed)' % (build, entry.get('name'), entry.get('result'), f))
        print('%s: %d passed, %d failed, %d skipped' % (build, *sums))
        total = [a + b for a, b in zip(total, sums)]
    line = '%d passed, %d failed' % (total[0], total[1])
    if total[2]:
        line += ', %d skipped' % total[2]
    print(line)
    return 1 if total[1] else 0


if __name__ == '__main__':
    sys.exit(main())
