#!/bin/bash
# test_dropin.sh BUILD SRC - the drop-in's C API: programs that misuse malloc, under
# the drop-in: each aborts with one line naming the function it called
# (free(), realloc(), malloc_usable_size()), and says when the pointer
# is glibc's (a library loaded with RTLD_DEEPBIND, or mixed allocators).
# Large alignments and impossible sizes behave as POSIX and glibc do;
# glibc's introspection functions answer with slabnotify's figures.
set -u
BUILD=$(cd "${1:?usage: test_dropin.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_dropin.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture bad_calls -fno-builtin -Wno-free-nonheap-object -Wno-use-after-free || finish
PROG=$TMP/bad_calls

# aborts NAME SCENARIO PATTERN...: SIGABRT (134), one line on stderr
# matching every PATTERN.
aborts() {
	local name=$1 scen=$2
	shift 2
	timeout 60 "$TOOL" run -- "$PROG" "$scen" >"$TMP/out" 2>"$TMP/err"
	local rc=$? lines
	lines=$(wc -l <"$TMP/err")
	local okay=1
	[ "$rc" -eq 134 ] || okay=0
	[ "$lines" -eq 1 ] || okay=0
	for pat in "$@"; do
		grep -q -- "$pat" "$TMP/err" || okay=0
	done
	if [ $okay -eq 1 ]; then
		ok "$name"
	else
		bad "$name" "exit $rc, $lines lines on stderr"
		show "$TMP/err"
	fi
}

aborts "free(): double free"          double-free        'slabnotify: free(): double free'
aborts "realloc(): interior pointer"  realloc-interior   'slabnotify: realloc(): invalid pointer'
aborts "malloc_usable_size(): interior" usable-interior 'slabnotify: malloc_usable_size(): invalid pointer'
aborts "free(): large double free"    large-double-free  'slabnotify: free(): double free' 'kmalloc-large'
aborts "free() of glibc's pointer"    glibc-pointer      'slabnotify: free(): invalid pointer' "glibc's heap" 'RTLD_DEEPBIND'

timeout 60 "$TOOL" run -- "$PROG" aligned >"$TMP/out" 2>"$TMP/err"
check "2, 4 and 64 MiB alignments (posix_memalign, memalign, aligned_alloc)" grep -qx ok "$TMP/out"
check "posix_memalign(24) is EINVAL" grep -qx 'bad alignment: 22' "$TMP/out"

timeout 60 "$TOOL" run -- "$PROG" impossible >"$TMP/out" 2>"$TMP/err"
check "malloc(1 TiB) and calloc(1, 1 TiB) fail with ENOMEM" grep -qx 'malloc(1T)=NULL calloc(1T)=NULL errno=12' "$TMP/out"

# Issue 9: an idle owner's slabs, emptied by another thread, give their
# pages back (the 8 MiB stayed resident before).
compile_fixture idle_owner -pthread || finish
timeout 60 env LD_PRELOAD="$PRELOAD" "$TMP/idle_owner" >"$TMP/out" 2>"$TMP/err"
grew=$(sed -n 's/^grew \(-\{0,1\}[0-9]*\) KiB$/\1/p' "$TMP/out")
check "idle owner: 8 MiB freed by another thread leave at most 2 MiB resident (grew ${grew:-?} KiB)" \
	test -n "$grew" -a "${grew:-99999}" -le 2048

compile_fixture introspect -fno-builtin -Wno-deprecated-declarations || finish
timeout 60 "$TOOL" run -- "$TMP/introspect" >"$TMP/out" 2>"$TMP/err"
check "mallinfo2, mallinfo, malloc_trim, mallopt, malloc_info" grep -qx ok "$TMP/out"
grep -v '^ok$' "$TMP/out" | sed 's/^/    | /'

finish
