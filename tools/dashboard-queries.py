#!/usr/bin/env python3
"""List the PromQL queries of a Grafana dashboard, ready to send to Prometheus.

    dashboard-queries.py DASHBOARD.json          one JSON object a line:
                                                 {"panel": TITLE, "expr": EXPR}
    dashboard-queries.py --check DASHBOARD.json  exit 1 (and say why) unless the
                                                 dashboard is importable and sane

Every query is printed with Grafana's variables replaced, so that it runs as
is through Prometheus's /api/v1/query:

- $__rate_interval, $__interval -> 1m; $__range -> 5m (and their _s/_ms forms);
- a dashboard variable, or any other $var, inside a label matcher's value ->
  ".*" (an `=`/`!=` matcher becomes `=~`/`!~`, so it still means "any");
- an interval, custom, constant or textbox variable elsewhere -> its current
  (or first) value;
- the forms $var, ${var}, ${var:format} and [[var]] are all understood.
  Numbered references such as "${1}" in label_replace() are not variables and
  are left alone, as Grafana leaves them.

Templating queries are printed too ("panel": "variable NAME"): label_values(S, L)
as `count by (L) (S)`, label_values(L) as `count by (L) ({L!=""})`,
query_result(E) as E, metrics(R) as a __name__ match.

--check: the dashboard declares the Prometheus data source input
(__inputs: DS_PROMETHEUS), every panel and variable uses ${DS_PROMETHEUS},
every panel (other than rows and text) has a query, and every series selector
of a panel query filters on job=~"$job" and instance=~"$instance".
"""
import json
import re
import signal
import sys
import time

# Grafana's own pattern for variable references (public/app/features/variables/utils.ts)
VAR_RE = re.compile(r'\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}')

NOW_MS = int(time.time()) * 1000
BUILTINS = {
    '__rate_interval': '1m',
    '__interval': '1m',
    '__rate_interval_ms': '60000',
    '__interval_ms': '60000',
    '__range': '5m',
    '__range_s': '300',
    '__range_ms': '300000',
    '__from': str(NOW_MS - 300000),
    '__to': str(NOW_MS),
    '__auto_interval': '1m',
    '__auto': '1m',
}

STRING_RE = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
MATCHER_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(' + STRING_RE + ')', re.S)


def var_name(m):
    return m.group(1) or m.group(2) or m.group(4)


class Dashboard:
    def __init__(self, doc):
        self.doc = doc
        self.vars = {}
        for v in (doc.get('templating') or {}).get('list') or []:
            if isinstance(v, dict) and v.get('name'):
                self.vars[v['name']] = v

    # ---- variables -----------------------------------------------------
    def plain_value(self, name):
        """The value of a variable used outside a label matcher, or None."""
        if name in BUILTINS:
            return BUILTINS[name]
        v = self.vars.get(name)
        if v is None:
            return None
        cur = v.get('current') or {}
        val = cur.get('value')
        if isinstance(val, list):
            val = val[0] if val else None
        if isinstance(val, str) and val and val != '$__all' and not VAR_RE.fullmatch(val):
            return val
        if v.get('type') in ('interval', 'custom', 'constant', 'textbox'):
            opts = [o.get('value') for o in v.get('options') or [] if isinstance(o, dict)]
            opts = [o for o in opts if isinstance(o, str) and o and o != '$__all']
            if opts:
                return opts[0]
            q = v.get('query')
            if isinstance(q, str) and q.strip():
                first = q.split(',')[0].strip()
                if v.get('type') == 'custom' and ' : ' in first:
                    first = first.split(' : ', 1)[1]
                return first or None
            if v.get('type') == 'interval':
                return '1m'
        return None

    def subst(self, text, in_matcher):
        """Replace variable references in text; report whether a '.*' went in."""
        wild = [False]

        def repl(m):
            name = var_name(m)
            if name in BUILTINS:
                return BUILTINS[name]
            if in_matcher and (name in self.vars or re.match(r'[A-Za-z_]', name)):
                wild[0] = True
                return '.*'
            val = self.plain_value(name)
            return m.group(0) if val is None else val
        return VAR_RE.sub(repl, text), wild[0]

    def expand(self, expr):
        """expr with every variable replaced (see the module's doc)."""
        out = []
        i, n = 0, len(expr)
        plain = []

        def flush():
            if plain:
                out.append(self.subst(''.join(plain), False)[0])
                plain.clear()
        while i < n:
            c = expr[i]
            if c in '"\'`':
                m = re.compile(STRING_RE, re.S).match(expr, i)
                if not m:
                    plain.append(expr[i:])
                    break
                flush()
                # a string outside a selector: a function argument (label_replace, ...)
                out.append(self.subst(m.group(0), False)[0])
                i = m.end()
            elif c == '{':
                flush()
                j = matching_brace(expr, i)
                out.append('{' + self.expand_matchers(expr[i + 1:j]) + '}')
                i = j + 1
            else:
                plain.append(c)
                i += 1
        flush()
        return ''.join(out)

    def expand_matchers(self, body):
        def repl(m):
            label, op, value = m.group(1), m.group(2), m.group(3)
            value, wild = self.subst(value, True)
            if wild and op in ('=', '!='):
                op = '=~' if op == '=' else '!~'
            return '%s%s%s' % (label, op, value)
        return MATCHER_RE.sub(repl, body)

    # ---- walking ---------------------------------------------------------
    def panels(self):
        def walk(panels):
            for p in panels or []:
                if not isinstance(p, dict):
                    continue
                yield p
                yield from walk(p.get('panels'))
        yield from walk(self.doc.get('panels'))
        for row in self.doc.get('rows') or []:   # schema < 16
            yield from walk(row.get('panels'))

    def variable_queries(self):
        for name, v in self.vars.items():
            if v.get('type') != 'query':
                continue
            q = v.get('query')
            if isinstance(q, dict):
                q = q.get('query') or q.get('expr') or ''
            if not isinstance(q, str) or not q.strip():
                q = v.get('definition') or ''
            expr = variable_query_to_promql(q.strip())
            if expr:
                yield name, self.expand(expr)

    def queries(self):
        """(panel title, expanded expr) for every query, variables first."""
        for name, expr in self.variable_queries():
            yield 'variable ' + name, expr
        for p in self.panels():
            if is_foreign(p.get('datasource')):
                continue
            for t in p.get('targets') or []:
                if not isinstance(t, dict) or is_foreign(t.get('datasource')):
                    continue
                expr = t.get('expr')
                if isinstance(expr, str) and expr.strip():
                    yield p.get('title') or '(untitled %s)' % p.get('type'), self.expand(expr)


def matching_brace(s, i):
    """Index of the '}' closing the '{' at i (strings skipped), or len(s) - 1."""
    j = i + 1
    string = re.compile(STRING_RE, re.S)
    while j < len(s):
        if s[j] in '"\'`':
            m = string.match(s, j)
            if not m:
                return len(s) - 1
            j = m.end()
            continue
        if s[j] == '}':
            return j
        j += 1
    return len(s) - 1


def is_foreign(ds):
    """A data source that is explicitly not Prometheus."""
    if isinstance(ds, dict):
        t = ds.get('type')
        return isinstance(t, str) and t not in ('prometheus', '') and not t.startswith('$')
    return False


def variable_query_to_promql(q):
    m = re.fullmatch(r'label_values\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)', q, re.S)
    if m:
        return 'count by (%s) ({%s!=""})' % (m.group(1), m.group(1))
    m = re.fullmatch(r'label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)', q, re.S)
    if m:
        return 'count by (%s) (%s)' % (m.group(2), m.group(1).strip())
    m = re.fullmatch(r'query_result\((.*)\)', q, re.S)
    if m:
        return m.group(1).strip()
    m = re.fullmatch(r'metrics\((.*)\)', q, re.S)
    if m:
        return 'count by (__name__) ({__name__=~"%s"})' % m.group(1).strip().replace('"', '\\"')
    if re.match(r'label_names\(', q):
        return None
    return q or None


# ---- --check -------------------------------------------------------------
KEYWORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool',
            'and', 'or', 'unless', 'offset', 'inf', 'nan', 'start', 'end', 'atan2'}
CLAUSES = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right'}
TOKEN_RE = re.compile(r'\s+|(?P<str>' + STRING_RE + r')|(?P<var>' + VAR_RE.pattern + r')'
                      r'|(?P<num>\d[\w.]*)|(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<op>.)', re.S)


def selectors(expr):
    """(metric name or None, matcher text) for every series selector of expr."""
    toks = []
    for m in TOKEN_RE.finditer(expr):
        kind = m.lastgroup
        if kind is None or kind not in ('str', 'var', 'num', 'id', 'op'):
            if m.group(0).strip():
                kind = 'op'
            else:
                continue
        toks.append((kind, m.group(0)))
    found = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ''
        if kind == 'id' and text in CLAUSES and nxt == '(':
            while i < len(toks) and toks[i][1] != ')':   # label list
                i += 1
        elif kind == 'id' and text not in KEYWORDS and nxt != '(' and nxt not in ('by', 'without'):
            if nxt == '{':
                j = i + 1
                while j < len(toks) and toks[j][1] != '}':
                    j += 1
                found.append((text, ''.join(t for _, t in toks[i + 2:j])))
                i = j
            else:
                found.append((text, ''))
        elif kind == 'op' and text == '{':
            j = i
            while j < len(toks) and toks[j][1] != '}':
                j += 1
            found.append((None, ''.join(t for _, t in toks[i + 1:j])))
            i = j
        i += 1
    return found


def filters_on(matchers, label):
    for m in MATCHER_RE.finditer(matchers):
        if m.group(1) == label and m.group(2) == '=~' and re.search(
                r'\$%s\b|\$\{%s(:\w+)?\}|\[\[%s\]\]' % (label, label, label), m.group(3)):
            return True
    return False


def uses_input(ds):
    if isinstance(ds, dict):
        return ds.get('uid') == '${DS_PROMETHEUS}'
    return ds == '${DS_PROMETHEUS}'


def check(doc):
    errors = []
    inputs = doc.get('__inputs')
    if not isinstance(inputs, list) or not any(
            isinstance(x, dict) and x.get('name') == 'DS_PROMETHEUS' and x.get('type') == 'datasource'
            and x.get('pluginId') == 'prometheus' for x in inputs):
        errors.append('__inputs does not declare DS_PROMETHEUS (type datasource, pluginId prometheus)')
    if not isinstance(doc.get('__requires'), list):
        errors.append('__requires is missing')
    d = Dashboard(doc)
    for name in ('job', 'instance'):
        if name not in d.vars:
            errors.append('no templating variable %r' % name)
    for name, v in d.vars.items():
        if v.get('type') == 'query' and not uses_input(v.get('datasource')):
            errors.append('variable %s: datasource is not ${DS_PROMETHEUS}' % name)
    ids = set()
    for p in d.panels():
        title = p.get('title') or '(untitled %s)' % p.get('type')
        if p.get('id') in ids:
            errors.append('%s: duplicate panel id %s' % (title, p.get('id')))
        ids.add(p.get('id'))
        if p.get('type') in ('row', 'text', 'news', 'dashlist'):
            continue
        if not uses_input(p.get('datasource')):
            errors.append('%s: datasource is not ${DS_PROMETHEUS}' % title)
        exprs = []
        for t in p.get('targets') or []:
            if 'datasource' in t and not uses_input(t['datasource']):
                errors.append('%s: target %s: datasource is not ${DS_PROMETHEUS}' % (title, t.get('refId')))
            if isinstance(t.get('expr'), str) and t['expr'].strip():
                exprs.append(t['expr'])
        if not exprs:
            errors.append('%s: no query' % title)
        for expr in exprs:
            for metric, matchers in selectors(expr):
                for label in ('job', 'instance'):
                    if not filters_on(matchers, label):
                        errors.append('%s: selector %s{%s} does not filter on %s=~"$%s"'
                                      % (title, metric or '', matchers, label, label))
    return errors


def main(argv):
    args = argv[1:]
    do_check = '--check' in args
    args = [a for a in args if a != '--check']
    if len(args) != 1 or args[0].startswith('-'):
        sys.stderr.write('usage: dashboard-queries.py [--check] DASHBOARD.json\n')
        return 2
    try:
        with open(args[0], encoding='utf-8') as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write('%s: %s\n' % (args[0], e))
        return 1
    if not isinstance(doc, dict):
        sys.stderr.write('%s: not a dashboard (a JSON object)\n' % args[0])
        return 1
    if do_check:
        errors = check(doc)
        for e in errors:
            sys.stderr.write('%s: %s\n' % (args[0], e))
        if not errors:
            n = sum(1 for _ in Dashboard(doc).queries())
            print('%s: ok, %d queries' % (args[0], n))
        return 1 if errors else 0
    for title, expr in Dashboard(doc).queries():
        print(json.dumps({'panel': title, 'expr': expr}))
    return 0


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `... | head` is fine
    sys.exit(main(sys.argv))
