#!/bin/bash
# test_reports.sh BUILD SRC - the drop-in's report reaches the user: with
# stderr closed, at the cap, under a relative --report and a program that
# changes directory, from every process of a tree sharing one file, and
# on abort() and SIGSEGV (with the exit status kept). Each report says
# which program it is about and the limits in force, and is concise.
set -u
BUILD=$(cd "${1:?usage: test_reports.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_reports.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture report_cases -fno-builtin || finish
compile_fixture fork_exec || finish
P=$TMP/report_cases
T="timeout 60"

# stderr closed by the program at exit: the report still comes.
$T "$TOOL" run --max 64M -- "$P" close-stderr 2>"$TMP/err"; rc=$?
check "stderr closed at exit: exit 0" [ "$rc" -eq 0 ]
check "stderr closed at exit: the report still arrives" grep -q '== slabnotify report: .*report_cases close-stderr' "$TMP/err"

# At the cap: the report file is written all the same.
$T "$TOOL" run --max 16M --report "$TMP/cap.txt" -- "$P" at-cap >"$TMP/out" 2>"$TMP/err"; rc=$?
check "at the cap: exit 0" [ "$rc" -eq 0 ]
check "at the cap: the report is in its file" grep -q 'slabnotify: vetoes: 0 failslab, [1-9][0-9]* memcg' "$TMP/cap.txt"
check "at the cap: nothing from slabnotify on stderr" [ ! -s "$TMP/err" ]

# A relative path, and a program that changes directory.
mkdir -p "$TMP/here" "$TMP/elsewhere"
( cd "$TMP/here" && $T "$TOOL" run --stats --report rel.txt -- "$P" chdir "$TMP/elsewhere" )
check "relative --report: written where the command was started" [ -s "$TMP/here/rel.txt" ]
check "relative --report: not where the program went" [ ! -e "$TMP/elsewhere/rel.txt" ]

# One file for a tree of processes: each appends its report.
$T "$TOOL" run --max 1G --report "$TMP/tree.txt" -- "$TMP/fork_exec" >"$TMP/pids" 2>"$TMP/err"
want=$(wc -w <"$TMP/pids")
got=$(grep -c '== slabnotify report' "$TMP/tree.txt")
check "one file, $want processes: $got reports appended, none lost" [ "$want" -eq "$got" ]
check "reports in one file never interleave" bash -c '[ "$(grep -c "slabnotify: vetoes:" "$1")" -eq "$2" ]' _ "$TMP/tree.txt" "$got"
"$TOOL" run --max 1G --report "$TMP/tree.txt" -- true
check "a new run starts the file afresh" [ "$(grep -c '== slabnotify report' "$TMP/tree.txt")" -eq 1 ]

# abort() at the cap: the report, then the same death.
$T "$TOOL" run --max 16M -- "$P" abort >"$TMP/out" 2>"$TMP/err"; rc=$?
check "abort(): exit status 134 kept" [ "$rc" -eq 134 ]
check "abort(): report says killed by SIGABRT" grep -q 'slabnotify report (killed by SIGABRT): .*report_cases abort' "$TMP/err"
check "abort(): the veto is counted" grep -q 'vetoes: 0 failslab, [1-9][0-9]* memcg' "$TMP/err"

$T "$TOOL" run --fail-probability 0 -- "$P" segv >"$TMP/out" 2>"$TMP/err"; rc=$?
check "SIGSEGV: exit status 139 kept" [ "$rc" -eq 139 ]
check "SIGSEGV: report says so" grep -q 'killed by SIGSEGV' "$TMP/err"

# _exit() and _Exit(): the program's summary (no exit handlers run), its status kept.
$T "$TOOL" run --max 16M -- "$P" _exit >"$TMP/out" 2>"$TMP/err"; rc=$?
check "_exit(3): exit status 3 kept" [ "$rc" -eq 3 ]
check "_exit(3): the program's summary says so" grep -q '^==[0-9]*== slabnotify report (ended by _exit(3)): .*report_cases _exit' "$TMP/err"
check "_exit(3): the summary has the heap and the group" bash -c 'grep -q "^slabnotify: heap: " "$1" && grep -q "^slabnotify: memory group: usage" "$1"' _ "$TMP/err"
check "_exit(3): no launcher summary then" bash -c '! grep -q "ended without its report" "$1"' _ "$TMP/err"
$T "$TOOL" run --max 16M -- "$P" _Exit >"$TMP/out" 2>"$TMP/err"; rc=$?
check "_Exit(4): exit status 4 kept, the summary says so" bash -c '[ "$2" -eq 4 ] && grep -q "slabnotify report (ended by _Exit(4)): " "$1"' _ "$TMP/err" "$rc"
$T "$TOOL" run --max 16M -- "$P" fork-_exit >"$TMP/out" 2>"$TMP/err"; rc=$?
check "a fork child's _exit(5): its own summary, then the parent's report" bash -c '[ "$2" -eq 0 ] && [ "$(grep -c "slabnotify report (ended by _exit(5))" "$1")" -eq 1 ] && [ "$(grep -c "== slabnotify report" "$1")" -eq 2 ]' _ "$TMP/err" "$rc"
$T "$TOOL" run --max 16M -- "$P" vfork-_exit >"$TMP/out" 2>"$TMP/err"; rc=$?
check "a vfork child's _exit(5): nothing from it, the parent's report whole" bash -c '[ "$2" -eq 0 ] && grep -q "^child 5$" "$3" && [ "$(grep -c "== slabnotify report" "$1")" -eq 1 ] && ! grep -q "ended by _exit" "$1" && grep -q "heap at exit" "$1"' _ "$TMP/err" "$rc" "$TMP/out"
$T "$TOOL" run --max 16M -- "$P" >"$TMP/out" 2>"$TMP/err"
check "a normal exit: no launcher summary" bash -c '! grep -q "ended without its report" "$1"' _ "$TMP/err"

# Signals sent to the launcher reach the command; its death is ours.
"$TOOL" run --max 64M -- sleep 30 >"$TMP/out" 2>"$TMP/err" &
lpid=$!
sleep 0.5
kill -TERM "$lpid"
wait "$lpid"; rc=$?
check "SIGTERM to the launcher: the command dies of it (status 143)" [ "$rc" -eq 143 ]
check "SIGTERM: the command's report says so" grep -q 'killed by SIGTERM' "$TMP/err"

# A statically linked program cannot be observed: refused, exit 125.
if printf 'int main(void){return 0;}\n' | ${CC:-cc} -static -x c -o "$TMP/static_true" - 2>/dev/null; then
	$T "$TOOL" run -- "$TMP/static_true" 2>"$TMP/err"; rc=$?
	check "static executable: exit 125" [ "$rc" -eq 125 ]
	check "static executable: says why" grep -q 'is statically linked' "$TMP/err"
else
	skip "static executable: no static libc to build one"
fi

# What a report says: the program, its pid, the limits; no slabinfo
# unless --stats.
$T "$TOOL" run --max 32M --high 8M --fail-probability 0.5 --seed 3 -- "$P" >"$TMP/out" 2>"$TMP/err"
check "header names pid and command" grep -Eq '^==[0-9]+== slabnotify report: .*report_cases$' "$TMP/err"
check "limits stated" grep -q 'slabnotify: limits: max 33554432 (32.0 MiB), high 8388608 (8.0 MiB); fault injection: 0.500% of allocations, seed 3' "$TMP/err"
check "high events and time throttled stated" grep -q 'high events, [0-9]* ms throttled' "$TMP/err"
check "RSS peak stated" grep -q 'RSS peak [0-9]' "$TMP/err"
check "no slabinfo without --stats" bash -c '! grep -q slabinfo "$1"' _ "$TMP/err"
$T "$TOOL" run --stats -- "$P" >"$TMP/out" 2>"$TMP/err"
check "--stats: slabinfo of the caches used only" bash -c 'grep -q "^kmalloc-1k " "$1" && ! grep -q "^kmalloc-cg-64k " "$1"' _ "$TMP/err"

finish
