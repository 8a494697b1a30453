#!/bin/bash
# test_preload_programs.sh BUILD SRC - real programs on the drop-in.
#
# python3, perl, sqlite3, gcc, git and a threaded C program that forks,
# each run five ways: plainly, with LD_PRELOAD=libslabnotify-malloc.so,
# through `slabnotify run` with every consumer on (a generous cap,
# sampled leak tracking, statistics; reports to files, so that stdout is
# the program's alone), under --debug (with the same consumers) and under
# --guard=100: no false report. The stdout of each step and its exit status must
# be byte-identical across the five. A program that is not installed
# is skipped with a SKIP line (CI installs them all).
set -u
BUILD=$(cd "${1:?usage: test_preload_programs.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_preload_programs.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "all: $SANITIZED sanitizer build (its runtime must load first and replaces malloc)"
	finish
fi
[ -f "$PRELOAD" ] || { bad "drop-in" "no $PRELOAD"; finish; }
[ -x "$TOOL" ] || { bad "command" "no $TOOL"; finish; }

# SN_TEST_MODES="plain preload" narrows the ways, when debugging.
MODES=${SN_TEST_MODES:-"plain preload run debug guard"}
mkdir -p "$TMP/reports"
export PYTHONHASHSEED=0 PERL_HASH_SEED=0 LC_ALL=C

# Seconds a step may take (each takes a few at most): past it, a hang.
LIMIT=120

# sn_exec MODE CMD [ARGS...]: CMD in one of the five ways.
sn_exec() {
	local mode=$1
	shift
	case $mode in
	plain)   timeout "$LIMIT" "$@" ;;
	preload) timeout "$LIMIT" env LD_PRELOAD="$PRELOAD" "$@" ;;
	run)     timeout "$LIMIT" "$TOOL" run --max 4G --leaks=64 --stats \
			 --report "$TMP/reports/%p.txt" -- "$@" ;;
	# --debug with every other consumer on, and guard pages for 1 in 100.
	debug)   timeout "$LIMIT" "$TOOL" run --debug --max 4G --leaks=64 --fail-probability=0 \
			 --report "$TMP/reports/%p.txt" -- "$@" ;;
	guard)   timeout "$LIMIT" "$TOOL" run --guard=100 -- "$@" ;;
	esac
}

# step MODE CMD...: as sn_exec, then the exit status on stdout too.
step() {
	sn_exec "$@"
	echo "[exit $?]"
}

# ------------------------------------------------------------------
# The programs: prog_NAME MODE prints what must not depend on MODE.

prog_python3() {
	step "$1" "$PYTHON" "$PROGRAMS/dict_strings.py"
}

prog_perl() {
	step "$1" perl "$PROGRAMS/hash_strings.pl"
}

prog_sqlite3() {
	local db=$TMP/sqlite-$1.db
	rm -f "$db"
	step "$1" sqlite3 "$db" <"$PROGRAMS/inserts.sql"
	step "$1" sqlite3 "$db" 'PRAGMA integrity_check; SELECT count(*), total(score) FROM item;'
}

# gcc runs cc1, as, collect2 and ld, all on the drop-in. The program it
# made is run plainly: its output shows the compilation was right.
prog_gcc() {
	local exe=$TMP/compile_me-$1
	rm -f "$exe"
	step "$1" gcc -O2 -Wall -o "$exe" "$PROGRAMS/compile_me.c"
	"$exe"
	echo "[program exit $?]"
}

# Fixed names, dates and configuration: the same commits hash the same.
prog_git() {
	local repo=$TMP/git-$1
	rm -rf "$repo"
	mkdir "$repo"
	(
		cd "$repo" || exit 1
		export GIT_AUTHOR_NAME="Slab Notify" GIT_AUTHOR_EMAIL=slab@example.org \
		       GIT_COMMITTER_NAME="Slab Notify" GIT_COMMITTER_EMAIL=slab@example.org \
		       GIT_AUTHOR_DATE="2024-01-02T03:04:05Z" GIT_COMMITTER_DATE="2024-01-02T03:04:05Z" \
		       GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$repo"
		step "$1" git init -q -b main .
		cp "$PROGRAMS"/*.c "$PROGRAMS"/*.py "$PROGRAMS"/*.pl .
		seq 1 20000 >numbers.txt
		step "$1" git add .
		step "$1" git commit -q -m "first commit"
		seq 5 3 30000 >numbers.txt
		rm leak.c
		step "$1" git commit -q -a -m "second commit"
		step "$1" git log --format='%H %T %s'
		step "$1" git diff --stat HEAD~1 HEAD
		step "$1" git gc -q
		step "$1" git fsck --strict --no-progress
		step "$1" git rev-list --objects --all
	)
}

prog_thread_fork() {
	step "$1" "$TMP/thread_fork"
}

# ------------------------------------------------------------------

# compare NAME: run prog_NAME each way; outputs must all be the plain one's.
compare() {
	local name=$1 mode diffs=""
	for mode in $MODES; do
		"prog_$name" "$mode" >"$TMP/$name.$mode.out" 2>"$TMP/$name.$mode.err"
	done
	# Same stdout; and no word from the drop-in on stderr (its messages
	# start "slabnotify:"; the reports go to files).
	for mode in $MODES; do
		[ "$mode" = plain ] && continue
		cmp -s "$TMP/$name.plain.out" "$TMP/$name.$mode.out" &&
			! grep -qE '^(slabnotify|BUG )' "$TMP/$name.$mode.err" || diffs="$diffs $mode"
	done
	if [ -z "$diffs" ]; then
		ok "$name: stdout and exit statuses identical ($(wc -c <"$TMP/$name.plain.out") bytes)"
		return
	fi
	bad "$name" "stdout differs from the plain run, or the drop-in complained, with:$diffs"
	for mode in $diffs; do
		echo "  --- diff plain $mode (first lines)"
		diff "$TMP/$name.plain.out" "$TMP/$name.$mode.out" | head -20 | sed 's/^/    | /'
		grep -q '^\[exit 124\]' "$TMP/$name.$mode.out" &&
			echo "  (exit 124: killed after $LIMIT s, a hang; in thread_fork most likely a lock held across fork)"
		echo "  --- stderr of $mode"
		show "$TMP/$name.$mode.err"
	done
}

# need PROGRAM...: true if all are installed, else a SKIP line.
need() {
	local p
	for p in "$@"; do
		if [ -z "$p" ] || ! command -v "$p" >/dev/null 2>&1; then
			skip "$name: ${p:-python3} is not installed"
			return 1
		fi
	done
}

for name in python3 perl sqlite3 gcc git thread_fork; do
	case $name in
	python3) need "$PYTHON" || continue ;;
	thread_fork)
		need "${CC:-cc}" || continue
		${CC:-cc} -O2 -pthread -o "$TMP/thread_fork" "$PROGRAMS/thread_fork.c" ||
			{ bad "compile thread_fork"; continue; } ;;
	*) need "$name" || continue ;;
	esac
	compare "$name"
done

# Each process on the drop-in wrote its own report, none empty.
[[ " $MODES " == *" run "* ]] || finish
nrep=$(find "$TMP/reports" -type f | wc -l)
nempty=$(find "$TMP/reports" -type f -empty | wc -l)
check "slabnotify run wrote $nrep reports, $nempty empty" [ "$nrep" -gt 0 -a "$nempty" -eq 0 ]

finish
