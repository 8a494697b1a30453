#!/bin/bash
# test_profile.sh BUILD SRC - the heap profile's figures against programs
# with known allocation patterns (tests/programs/profile_cases.c): bytes
# as requested, exact leak bytes and blocks, the exact peak (one big
# block freed before exit), the peak's owner, call counts, temporary
# allocations, sampling's estimates within 10%, and the default
# suppressions. Figures are read from the JSON report.
set -u
BUILD=$(cd "${1:?usage: test_profile.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_profile.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture profile_cases -pthread || finish
compile_fixture fork_exec || finish
P=$TMP/profile_cases
T="timeout 120"

# jq-like: the value of a Python expression on the report J.
get() { "$PYTHON" -c "import json,sys; J=json.load(open(sys.argv[1])); print($2)" "$1"; }
# The first stack of a section whose frames include function F.
stack_of() { echo "[s for s in J['$2']['stacks'] if any(f['function']=='$3' for f in s['frames'])][0]"; }

# Ten leaked malloc(100): 1000 bytes in 10 blocks, in --leaks and --profile.
for mode in --leaks --profile --profile=1; do
	$T "$TOOL" run $mode --json --report "$TMP/ten.json" -- "$P" ten >/dev/null
	check "ten malloc(100), $mode: 1000 leaked bytes" [ "$(get "$TMP/ten.json" "J['summary']['leaked_bytes']")" = 1000 ] ||
		show "$TMP/ten.json"
	check "ten malloc(100), $mode: 10 leaked blocks" [ "$(get "$TMP/ten.json" "J['summary']['leaked_blocks']")" = 10 ]
done
$T "$TOOL" run --leaks --report "$TMP/ten.txt" -- "$P" ten >/dev/null
check "ten malloc(100): the text says 1000 bytes in 10 blocks from ten_fn" \
	grep -A1 -q '^1000 bytes \[1120 with rounding\] in 10 blocks allocated from:' "$TMP/ten.txt"
check "ten malloc(100): the only leak shown is the real one" [ "$(grep -c 'allocated from:' "$TMP/ten.txt")" = 1 ]
check "ten malloc(100): stdout's buffer is suppressed and counted" \
	grep -q 'leaked from 1 stack; 1024 bytes in 1 block suppressed\|leaked from 1 stack; 4096 bytes in 1 block suppressed' "$TMP/ten.txt"
$T "$TOOL" run --leaks --no-default-suppressions --report "$TMP/ten-all.txt" -- "$P" ten >/dev/null
check "--no-default-suppressions: stdout's buffer shows" grep -q '_IO_file_doallocate' "$TMP/ten-all.txt"

# One big block, freed, then exit: the peak is exact in every mode.
for mode in --leaks --profile --profile=512K; do
	$T "$TOOL" run $mode --json --report "$TMP/big.json" -- "$P" big
	peak=$(get "$TMP/big.json" "J['summary']['peak_bytes']")
	check "malloc(100 MiB)+free, $mode: peak $peak >= 100 MiB" [ "$peak" -ge 104857600 ]
done

# The known pattern, every allocation recorded.
$T "$TOOL" run --profile --json --report "$TMP/pat.json" -- "$P" pattern
J=$TMP/pat.json
check "pattern: the top peak consumer is peak_owner_fn" [ "$(get "$J" "J['peak']['stacks'][0]['frames'][0]['function']")" = peak_owner_fn ]
check "pattern: with 8 MiB in 1 block" [ "$(get "$J" "J['peak']['stacks'][0]['bytes'], J['peak']['stacks'][0]['blocks']")" = "8388608 1" ]
check "pattern: small_fn held 1000 x 64 at the peak" [ "$(get "$J" "$(stack_of "$J" peak small_fn)['bytes']")" = 64000 ]
check "pattern: the hottest stack is hot_fn's, 5000 calls" [ "$(get "$J" "J['hotspots']['stacks'][0]['frames'][0]['function'], J['hotspots']['stacks'][0]['calls']")" = "hot_fn 5000" ]
check "pattern: hot_fn allocated 5000 x 32 bytes" [ "$(get "$J" "J['hotspots']['stacks'][0]['bytes']")" = 160000 ]
check "pattern: hot_fn's 5000 are temporary" [ "$(get "$J" "$(stack_of "$J" temporary hot_fn)['calls']")" = 5000 ]
check "pattern: small_fn's are not temporary" [ "$(get "$J" "len([s for s in J['temporary']['stacks'] if s['frames'][0]['function']=='small_fn'])")" = 0 ]
check "pattern: leak_fn leaked 900 bytes in 3 blocks" [ "$(get "$J" "$(stack_of "$J" leaks leak_fn)['bytes'], $(stack_of "$J" leaks leak_fn)['blocks']")" = "900 3" ]
check "pattern: peak in the summary = 8 MiB + 64000 (+ what libc holds)" [ "$(get "$J" "8388608 + 64000 <= J['summary']['peak_bytes'] <= 8388608 + 64000 + 8192")" = True ]
$T "$TOOL" run --profile --top 2 --report "$TMP/pat.txt" -- "$P" pattern
check "pattern: text has the four sections" bash -c 'grep -q "^PEAK CONSUMERS" "$1" && grep -q "^HOT SPOTS" "$1" && grep -q "^TEMPORARY ALLOCATIONS" "$1" && grep -q "^LEAKS" "$1"' _ "$TMP/pat.txt"
check "pattern: --top 2 shows two stacks of the hot spots" [ "$(sed -n '/^HOT SPOTS/,/^TEMPORARY/p' "$TMP/pat.txt" | grep -c ' from:$')" = 2 ]
check "pattern: the summary line" grep -Eq '^slabnotify: [0-9]+ allocations, [0-9]+ frees, .* allocated; peak heap .* at [0-9.]+ s; peak RSS .*; in use at exit .*; leaked 900 bytes in 3 blocks' "$TMP/pat.txt"

# Sampling: 200000 x 500 bytes through churn_fn (100 MB), 20000 kept by
# keep_fn; one sample per 16 KiB: the estimates within 10%.
$T "$TOOL" run --profile=16K --json --report "$TMP/s.json" -- "$P" churn 200000 500
J=$TMP/s.json
est=$(get "$J" "$(stack_of "$J" hotspots churn_fn)['bytes']")
check "sampled: churn_fn's 100000000 bytes estimated as $est (within 10%)" [ "$(get "$J" "abs($est - 100000000) <= 10000000")" = True ]
est=$(get "$J" "$(stack_of "$J" hotspots churn_fn)['calls']")
check "sampled: churn_fn's 200000 calls estimated as $est (within 10%)" [ "$(get "$J" "abs($est - 200000) <= 20000")" = True ]
est=$(get "$J" "$(stack_of "$J" leaks keep_fn)['bytes']")
check "sampled: keep_fn's 10000000 leaked bytes estimated as $est (within 10%)" [ "$(get "$J" "abs($est - 10000000) <= 1000000")" = True ]
check "sampled: the summary stays exact (200000 + 20000 allocations or more)" [ "$(get "$J" "J['summary']['allocations'] >= 220000 and J['summary']['in_use_at_exit_bytes'] >= 10000000")" = True ]
# A concise default: no slabinfo table, no limits or vetoes lines when
# nothing limits; --stats lists only the caches ever used.
$T "$TOOL" run --leaks --report "$TMP/c.txt" -- "$P" ten >/dev/null
check "default report: no slabinfo table" bash -c '! grep -q "^slabinfo" "$1"' _ "$TMP/c.txt"
check "default report: no limits or vetoes lines without limits" bash -c '! grep -Eq "limits: max none|vetoes: 0 failslab, 0 memcg" "$1"' _ "$TMP/c.txt"
check "default report: header, heap, summary, one leak: at most 12 lines" [ "$(wc -l <"$TMP/c.txt")" -le 12 ]
$T "$TOOL" run --stats --report "$TMP/st.txt" -- "$P" ten >/dev/null
rows=$(sed -n '/^# name/,$p' "$TMP/st.txt" | grep -c '^[a-z]')
total=$(sed -n 's/^slabnotify: totals: \([0-9]*\) caches.*/\1/p' "$TMP/st.txt")
check "--stats: $rows of $total caches listed, each with a slab" bash -c '[ "$1" -gt 0 ] && [ "$1" -lt "$2" ] && ! sed -n "/^# name/,\$p" "$3" | grep -E "slabdata +[0-9]+ +0 " ' _ "$rows" "$total" "$TMP/st.txt"
# Every process of a tree its own report, headed by its command line.
$T "$TOOL" run --profile --report "$TMP/tree.%p" -- "$TMP/fork_exec" >"$TMP/pids"
n=0
for pid in $(cat "$TMP/pids"); do
	f=$TMP/tree.$pid
	[ -s "$f" ] && grep -Eq "^==$pid== slabnotify report: .*(fork_exec|true)\$" "$f" &&
		grep -Eq '^slabnotify: [0-9]+ allocations, .* leaked' "$f" && n=$((n + 1))
done
check "fork and exec: $n of $(wc -w <"$TMP/pids") processes have their own profile, headed by their command" \
	[ "$n" -eq 3 ]
check "exec: the new image's report names its own command" grep -lq 'slabnotify report: true$' $TMP/tree.*
# exit() from a thread: the report is written, with the thread's leaks.
$T "$TOOL" run --profile --report "$TMP/thr.txt" -- "$P" thread-exit; rc=$?
check "exit() from a thread: status 0 kept" [ "$rc" -eq 0 ]
check "exit() from a thread: its leaks reported" grep -q 'leaked 600 bytes in 2 blocks' "$TMP/thr.txt"
finish
