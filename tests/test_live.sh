#!/bin/bash
# test_live.sh BUILD SRC - the commands on running processes: the live
# stats page, `slabnotify stat` and `set` against programs started here
# (tests/programs/alloc_on_demand.c, driven through fifos), bad PIDs and
# pages that are truncated, of another version or garbage.
set -u
BUILD=$(cd "${1:?usage: test_live.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_live.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "live pages: $SANITIZED sanitizer build (the drop-in cannot be preloaded)"
	finish
fi
# Pages of this test only (live.sh): neither other tests' processes nor the user's.
. "$SRC/tests/programs/live.sh"

json() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$3"; }

# ------------------------------------------------------------------
# The page: made at start, private, removed at exit.

start page
check "page exists for the program" [ -f "$SLABNOTIFY_STAT_DIR/$PID" ]
check "page is mode 0600" [ "$(stat -c %a "$SLABNOTIFY_STAT_DIR/$PID")" = 600 ]
check "page directory is mode 0700" [ "$(stat -c %a "$SLABNOTIFY_STAT_DIR")" = 700 ]
ask "a 100 10"
"$TOOL" stat "$PID" >"$TMP/stat.txt" 2>&1
check "stat prints the summary" grep -q "^==$PID== slabnotify stat: .*alloc_on_demand" "$TMP/stat.txt"
check "stat prints slabinfo rows" grep -Eq '^kmalloc-112 +[0-9]+' "$TMP/stat.txt"
P=$PID
stop
check "page removed at exit" [ ! -e "$SLABNOTIFY_STAT_DIR/$P" ]

# ------------------------------------------------------------------
# stat's figures are the end-of-run report's, for a program that stops
# and waits: vetoes by cause, the group's usage, peak and failed charges,
# the program's own cache.

start same --max 1M --fail-probability 20 --seed 7 --stats --json --report "$TMP/report.json"
ask "a 3000 600"
"$TOOL" stat "$PID" --json >"$TMP/stat.json" 2>"$TMP/stat.err"
rc=$?
stop
check "stat --json exits 0" [ "$rc" -eq 0 ]
a=$(json x "d['vetoes']['failslab']" "$TMP/stat.json") b=$(json x "d['vetoes']['failslab']" "$TMP/report.json")
check "stat = report: failslab vetoes ($a, $b)" same "$a" "$b"
check "some were injected" [ "${a:-0}" -gt 0 ]
a=$(json x "d['vetoes']['memcg']" "$TMP/stat.json") b=$(json x "d['vetoes']['memcg']" "$TMP/report.json")
check "stat = report: memcg vetoes ($a, $b)" same "$a" "$b"
check "the max refused some" [ "${a:-0}" -gt 0 ]
for key in failcnt events_max events_high; do
	a=$(json x "[g for g in d['memcg'] if g['group']=='/'][0]['$key']" "$TMP/stat.json")
	b=$(json x "d['memcg']['$key']" "$TMP/report.json")
	check "stat = report: memcg $key ($a, $b)" same "$a" "$b"
done
a=$(json x "[c['active_objs'] for c in d['caches'] if c['name']=='kmalloc-cg-3k'][0]" "$TMP/stat.json")
b=$(json x "[c['active_objs'] for c in d['stats']['slabinfo'] if c['name']=='kmalloc-cg-3k'][0]" "$TMP/report.json")
check "stat = report: kmalloc-cg-3k active objects ($a, $b)" same "$a" "$b"
a=$(json x "d['limits']['max']" "$TMP/stat.json") b=$(json x "d['limits']['max']" "$TMP/report.json")
check "stat = report: max ($a, $b)" same "$a" "$b"

# ------------------------------------------------------------------
# set: a max below usage fails the next allocation; raised, it passes.

start set --max 64M
ask "a 1000 200"
check "set: allocations pass under 64M" [ "$REPLY" = ok ]
expect_exit "set: bad value refused (exit 2)" 2 "invalid value '12Q' for --max" "$TOOL" set "$PID" --max 12Q
expect_exit "set: bad probability refused (exit 2)" 2 "fail-probability" "$TOOL" set "$PID" --max 1M --fail-probability 150
check "set: a refused set changed nothing" bash -c '"$1" stat "$2" --json | grep -q "\"max\":67108864"' _ "$TOOL" "$PID"
"$TOOL" set "$PID" --max 64K
check "set --max 64K exits 0" [ $? -eq 0 ]
ask "a 1000 1"
check "set: the next allocation fails under a max below usage" [ "$REPLY" = "fail 1" ]
"$TOOL" set "$PID" --max 64M
ask "a 1000 1"
check "set: raised again, the next allocation passes" [ "$REPLY" = ok ]
"$TOOL" set "$PID" --max none --fail-probability 100
ask "a 1000 3"
check "set --fail-probability 100: allocations fail" [ "$REPLY" = "fail 3" ]
"$TOOL" set "$PID" --fail-probability 0
ask "a 1000 3"
check "set --fail-probability 0: they pass again" [ "$REPLY" = ok ]
check "stat shows the vetoes set caused" bash -c '"$1" stat "$2" | grep -q "vetoes: 3 failslab, [1-9][0-9]* memcg"' _ "$TOOL" "$PID"
stop

# A first limit set on a running program: the classes of 1 KiB and less
# (the fast path's own table) are charged from then on, as the others are.
start setlater
ask "a 100 10"
check "set later: allocations pass without a limit" [ "$REPLY" = ok ]
"$TOOL" set "$PID" --max 64K
ask "a 100 1000"
check "set later: 1000 small blocks fail under a first max of 64K (${REPLY})" \
	bash -c '[[ $1 =~ ^fail\ [0-9]+$ ]] && [ "${1#fail }" -gt 0 ] && [ "${1#fail }" -lt 1000 ]' _ "$REPLY"
ask "a 5000 100"
check "set later: and so do blocks above 1 KiB (${REPLY})" bash -c '[[ $1 =~ ^fail\ [0-9]+$ ]]' _ "$REPLY"
check "set later: the small blocks went to the charged kmalloc-cg-112" \
	bash -c '"$1" stat "$2" --json | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(c[\"name\"]==\"kmalloc-cg-112\" and c[\"active_objs\"]>0 for c in d[\"caches\"]) else 1)"' _ "$TOOL" "$PID"
stop

# ------------------------------------------------------------------
# Targeted fault injection on the drop-in: --fail-min-size compares the
# bytes asked for; --fail-stack fails only where a function matches.

start minsize --fail-probability 100 --fail-min-size 20000
ask "a 17000 1"
check "malloc(17000) is not failed under --fail-min-size 20000" [ "$REPLY" = ok ]
ask "a 20000 1"
check "malloc(20000) is" [ "$REPLY" = "fail 1" ]
stop
start stack --fail-probability 100 --fail-stack 'ma?n'
ask "a 100 3"
check "--fail-stack 'ma?n': main's allocations fail" [ "$REPLY" = "fail 3" ]
stop
start nostack --fail-probability 100 --fail-stack 'no_such_function*'
ask "a 100 3"
check "--fail-stack with no match: nothing fails" [ "$REPLY" = ok ]
stop

# ------------------------------------------------------------------
# Bad PIDs: a distinct status and one line each, never a hang.

expect_exit "stat: not a pid (exit 2)" 2 "not a process id" "$TOOL" stat 12abc
expect_exit "set: no pid (exit 2)" 2 "missing the PID" "$TOOL" set --max 1M
sleep 30 &
SLEEPER=$!
expect_exit "stat: not a slabnotify process (exit 4)" 4 "not a slabnotify process" "$TOOL" stat "$SLEEPER"
expect_exit "set: not a slabnotify process (exit 4)" 4 "not a slabnotify process" "$TOOL" set "$SLEEPER" --max 1M
DEAD=$(sh -c 'echo $$')
expect_exit "stat: no such process (exit 3)" 3 "no such process" "$TOOL" stat "$DEAD"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30 &
	OTHER=$!
	sleep 0.2
	expect_exit "stat: another user's process (exit 5)" 5 "another user" "$TOOL" stat "$OTHER"
	expect_exit "set: another user's process (exit 5)" 5 "another user" "$TOOL" set "$OTHER" --max 1M
	kill "$OTHER" 2>/dev/null
else
	OTHER=1   # init: another user's unless we are root
	expect_exit "stat: another user's process (exit 5)" 5 "another user" "$TOOL" stat "$OTHER"
fi

# A page left by a process killed outright is removed by the next reader.
start killed
P=$PID
kill -9 "$P"
exec 7>&- 8<&-
wait "$LAUNCHER" 2>/dev/null
expect_exit "stat: killed process (exit 3)" 3 "no such process" "$TOOL" stat "$P"
check "its page was cleaned" [ ! -e "$SLABNOTIFY_STAT_DIR/$P" ]

# --no-stat-page: no page.
start nopage --no-stat-page
sleep 0.3
expect_exit "stat: --no-stat-page (exit 4)" 4 "not a slabnotify process" "$TOOL" stat "$PID"
stop

# ------------------------------------------------------------------
# Pages that are not valid are refused (exit 6), never trusted: a copy
# of a real page put where the sleeper's would be, then damaged.

start real
cp "$SLABNOTIFY_STAT_DIR/$PID" "$TMP/real.page"
stop
FAKE=$SLABNOTIFY_STAT_DIR/$SLEEPER
damaged() {   # damaged NAME PYTHON-EXPR-ON-b
	"$PYTHON" - "$TMP/real.page" "$FAKE" "$SLEEPER" <<-PY
	import struct, sys
	b = bytearray(open(sys.argv[1], 'rb').read())
	struct.pack_into('<i', b, 16, int(sys.argv[3]))   # the pid, as if it were the sleeper's
	$2
	open(sys.argv[2], 'wb').write(b)
	PY
	chmod 600 "$FAKE"
	expect_exit "refused: $1 (exit 6)" 6 "not valid" "$TOOL" stat "$SLEEPER"
}
damaged "truncated page" "b = b[:100]"
damaged "other version" "struct.pack_into('<I', b, 8, 99)"
damaged "bad magic" "b[0:8] = b'NOTAPAGE'"
damaged "garbage of the right size" "import random; random.seed(1); b[:] = bytes(random.getrandbits(8) for _ in range(len(b)))"
damaged "cache count out of range" "struct.pack_into('<Q', b, 808, 100000)"
"$PYTHON" -c 'import sys; open(sys.argv[2], "wb").write(open(sys.argv[1], "rb").read())' "$TMP/real.page" "$FAKE"
chmod 600 "$FAKE"
expect_exit "refused: another pid's page" 6 "written for pid" "$TOOL" stat "$SLEEPER"
"$PYTHON" - "$TMP/real.page" "$FAKE" "$SLEEPER" <<-PY
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
struct.pack_into('<i', b, 16, int(sys.argv[3]))
open(sys.argv[2], 'wb').write(b)
PY
chmod 600 "$FAKE"
expect_exit "a page of a reused pid: not a slabnotify process" 4 "not a slabnotify process" "$TOOL" stat "$SLEEPER"
check "and it was removed" [ ! -e "$FAKE" ]
damaged "unterminated command" "b[40:552] = b'x' * 512"
"$PYTHON" - "$TMP/real.page" "$FAKE" "$SLEEPER" <<-PY
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
struct.pack_into('<i', b, 16, int(sys.argv[3]))
open(sys.argv[2], 'wb').write(b)
PY
chmod 644 "$FAKE"
expect_exit "refused: a page readable by others (exit 6)" 6 "not valid" "$TOOL" stat "$SLEEPER"
rm -f "$FAKE"
kill "$SLEEPER" 2>/dev/null
wait 2>/dev/null
finish
