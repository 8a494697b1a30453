#!/bin/bash
# test_json_schema.sh BUILD SRC - the JSON report against its contract:
# the key table between schema:begin and schema:end in
# docs/report-format.md. Every object of the profile's members has
# exactly the documented keys with the documented types; --leaks has
# summary and leaks only; the figures agree where the contract says so.
set -u
BUILD=$(cd "${1:?usage: test_json_schema.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_json_schema.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture profile_cases || finish
DOC=$SRC/docs/report-format.md

validate() {   # validate REPORT.json SECTIONS...: prints problems, one a line
	"$PYTHON" - "$DOC" "$@" <<'PY'
import json, re, sys
doc, report, want = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
inside = False
for line in open(doc):
    if line.startswith('schema:begin'): inside = True; continue
    if line.startswith('schema:end'): break
    if inside and line.strip():
        k, t = line.split()[:2]
        rows.append((k, t.split('|')))
types = {'object': dict, 'array': list, 'integer': int, 'string': str, 'null': type(None)}
schema = dict(rows)
def children(prefix):
    return sorted(k[len(prefix):] for k in schema if k.startswith(prefix) and '.' not in k[len(prefix):] and '[' not in k[len(prefix):])
bad = []
def check(obj, path, prefix):
    t = schema[path]
    if not any(isinstance(obj, types[x]) and not (x == 'integer' and isinstance(obj, bool)) for x in t):
        bad.append('%s: %r is not %s' % (path, obj, '|'.join(t)))
        return
    if isinstance(obj, dict):
        keys = children(path + '.')
        if sorted(obj) != keys:
            bad.append('%s: keys %s, documented %s' % (path, sorted(obj), keys))
        for k in obj:
            if path + '.' + k in schema:
                check(obj[k], path + '.' + k, None)
    elif isinstance(obj, list):
        for i, el in enumerate(obj):
            if path.endswith('frames'):
                fk = children('frame.')
                if sorted(el) != fk:
                    bad.append('%s[%d]: keys %s, documented %s' % (path, i, sorted(el), fk))
                for k in el:
                    check(el[k], 'frame.' + k, None)
            else:
                keys = children(path + '[].')
                if sorted(el) != keys:
                    bad.append('%s[%d]: keys %s, documented %s' % (path, i, sorted(el), keys))
                for k in el:
                    check(el[k], path + '[].' + k, None)
J = json.load(open(report))
tops = [k for k in schema if '.' not in k]
for k in tops:
    if k == 'frame': continue
    if k in want and k not in J: bad.append('%s: missing' % k)
    if k not in want and k in J: bad.append('%s: present, not asked for' % k)
    if k in J: check(J[k], k, None)
if 'leaks' in J:
    if J['leaks']['bytes'] != J['summary']['leaked_bytes']: bad.append('leaks.bytes != summary.leaked_bytes')
    if J['leaks']['blocks'] != J['summary']['leaked_blocks']: bad.append('leaks.blocks != summary.leaked_blocks')
if 'peak' in J and J['peak']['bytes'] != J['summary']['peak_bytes']: bad.append('peak.bytes != summary.peak_bytes')
if not any(s['frames'] for sec in ('peak', 'hotspots', 'leaks') if sec in J for s in J[sec]['stacks']):
    bad.append('no stack with frames: nothing was checked')
print('\n'.join(bad))
PY
}

T="timeout 60"
$T "$TOOL" run --profile --json --report "$TMP/p.json" -- "$TMP/profile_cases" pattern
out=$(validate "$TMP/p.json" summary peak hotspots temporary leaks)
check "--profile --json: every key and type as documented${out:+: $out}" [ -z "$out" ]
$T "$TOOL" run --leaks --json --report "$TMP/l.json" -- "$TMP/profile_cases" ten >/dev/null
out=$(validate "$TMP/l.json" summary leaks)
check "--leaks --json: summary and leaks only, as documented${out:+: $out}" [ -z "$out" ]
$T "$TOOL" run --profile=64K --json --report "$TMP/s.json" -- "$TMP/profile_cases" churn 20000 300
out=$(validate "$TMP/s.json" summary peak hotspots temporary leaks)
check "--profile=64K --json: as documented${out:+: $out}" [ -z "$out" ]
finish
