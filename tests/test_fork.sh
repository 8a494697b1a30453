#!/bin/bash
# test_fork.sh BUILD SRC - fork, threads and fault injection, repeated.
#
#  - six threads churning while a seventh forks (each child allocates,
#    starts a thread, execs): 50 runs under --max, --leaks and fault
#    injection together, each under a timeout (a hang is a lock held
#    across fork);
#  - a single-threaded program that registers a notifier and forks:
#    100 runs with the machine loaded;
#  - four threads under --fail-probability 1 --seed 8: the same failures
#    in every thread on every run, 200 runs;
#  - threads started while the main thread forks, under --guard=100 and
#    under --leaks: 20 runs each (a new thread's first stack walk
#    allocates the unwinder's thread-local data; that allocation, sampled
#    for a guard page, walked again and waited on the stack lock behind
#    the fork: 38 hangs in 40 runs);
#  - --debug (every debug lock and the stack depot's taken by the core's
#    fork handlers, in lock.h's order): both threaded programs, 10 runs
#    each under --debug --max --leaks, and git, which forks and execs.
set -u
BUILD=$(cd "${1:?usage: test_fork.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_fork.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture fork_from_thread -pthread || finish
compile_fixture fail_threads -pthread || finish
compile_fixture thread_fork -pthread || finish
compile_fixture spawn_fork -pthread || finish
# Linked with the library (not preloaded).
${CC:-cc} -O1 -g -Wall -I"$SRC/include" -o "$TMP/notifier_fork" "$PROGRAMS/notifier_fork.c" \
	-L"$BUILD/src" -Wl,-rpath,"$BUILD/src" -lslabnotify || { bad "compile notifier_fork"; finish; }

# tally STATUS: a run's exit status counted in hangs (a timeout) or fails.
tally() {
	if [ "$1" -eq 124 ]; then hangs=$((hangs + 1)); elif [ "$1" -ne 0 ]; then fails=$((fails + 1)); fi
}
# runs N TIMEOUT NAME CMD...: N runs of CMD, each under TIMEOUT seconds;
# none may hang or fail.
runs() {
	local n=$1 limit=$2 name=$3 i
	shift 3
	hangs=0 fails=0
	for i in $(seq 1 "$n"); do
		timeout "$limit" "$@" >"$TMP/out" 2>"$TMP/err"
		tally $?
	done
	check "$name, $n runs: $hangs hangs, $fails failures" [ "$hangs" -eq 0 -a "$fails" -eq 0 ]
	[ "$hangs" -eq 0 -a "$fails" -eq 0 ] || show "$TMP/err"
}

hangs=0 fails=0
for i in $(seq 1 50); do
	timeout 60 "$TOOL" run --max 256M --leaks --fail-probability 0.1 --seed "$i" -- \
		"$TMP/fork_from_thread" >"$TMP/out" 2>"$TMP/err"
	tally $?
done
check "fork from a thread, 50 runs under --max --leaks --fail-probability: $hangs hangs, $fails failures" \
	[ "$hangs" -eq 0 -a "$fails" -eq 0 ]
pgrep -f "$TMP/fork_from_thread" >/dev/null && bad "children left behind" && pkill -9 -f "$TMP/fork_from_thread"

# The machine loaded: two busy loops for the next 100 runs.
busy() { while :; do :; done; }
busy & b1=$!
busy & b2=$!
runs 100 30 "notifier + fork on a loaded machine" "$TMP/notifier_fork"
kill "$b1" "$b2" 2>/dev/null
wait "$b1" "$b2" 2>/dev/null

for i in $(seq 1 200); do
	timeout 60 "$TOOL" run --fail-probability 1 --seed 8 -- "$TMP/fail_threads" 2>/dev/null
done | sort | uniq -c >"$TMP/counts"
check "4 threads, fault injection: one outcome in 200 runs ($(cat "$TMP/counts" | tr -s ' ' | head -3 | tr '\n' ';'))" \
	bash -c '[ "$(wc -l <"$1")" -eq 1 ] && [ "$(awk "{print \$1}" "$1")" -eq 200 ] && awk "{for (i = 2; i <= NF; i++) if (\$i == 0) exit 1}" "$1"' _ "$TMP/counts"

for opt in --guard=100 --leaks; do
	runs 20 30 "threads started while forking, under $opt" "$TOOL" run "$opt" -- "$TMP/spawn_fork"
	pgrep -f "$TMP/spawn_fork" >/dev/null && bad "children left behind" && pkill -9 -f "$TMP/spawn_fork"
done
# debug_runs N TIMEOUT NAME CMD...: runs, under slabnotify run --debug
# --max --leaks.
debug_runs() {
	local n=$1 limit=$2 name=$3
	shift 3
	runs "$n" "$limit" "$name, under --debug --max --leaks" "$TOOL" run --debug --max 256M --leaks -- "$@"
}
debug_runs 10 60 "main thread forks while 4 churn (thread_fork)" "$TMP/thread_fork"
debug_runs 10 60 "a thread forks while 6 churn (fork_from_thread)" "$TMP/fork_from_thread"

if command -v git >/dev/null; then
	repo=$TMP/git-debug
	mkdir "$repo"
	cp "$PROGRAMS"/*.c "$repo"/
	(
		cd "$repo" &&
		export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$repo" \
		       GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t \
		       GIT_COMMITTER_EMAIL=t@example.org &&
		for cmd in "init -q -b main ." "add ." "commit -q -m one" "gc -q" "fsck --no-progress"; do
			# shellcheck disable=SC2086
			timeout 60 "$TOOL" run --debug --max 256M --leaks -- git $cmd >/dev/null 2>>"$TMP/git.err" ||
				{ echo "git $cmd: exit $?" >>"$TMP/git.err"; exit 1; }
		done
	)
	rc=$?
	check "git init, add, commit, gc, fsck under --debug --max --leaks" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || show "$TMP/git.err"
else
	skip "git under --debug: git is not installed"
fi

finish
