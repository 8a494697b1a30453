#!/bin/bash
# test_stacks.sh BUILD SRC - stacks as they are, through the drop-in:
# slabnotify's own frames are cut by address, so a program's leak_config()
# is reported in leak_config (not main); C++ names are demangled.
set -u
BUILD=$(cd "${1:?usage: test_stacks.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_stacks.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
T="timeout 60"
compile_fixture leak_config || finish
$T "$TOOL" run --leaks --report "$TMP/lc.txt" -- "$TMP/leak_config" >/dev/null
check "leak_config: frame #0 is leak_config" grep -q '^  #0 leak_config (.*leak_config.c:[0-9]*)$' "$TMP/lc.txt"
check "leak_config: main is its caller, #1" grep -q '^  #1 main (' "$TMP/lc.txt"
check "leak_config: no frame of slabnotify's" bash -c '! grep -Eq "#[0-9]+ (leak_handler|notify_|slab_|sn_stack)" "$1"' _ "$TMP/lc.txt"

if command -v g++ >/dev/null; then
	g++ -O1 -g -o "$TMP/cxx_leak" "$PROGRAMS/cxx_leak.cpp" || bad "compile cxx_leak"
	$T "$TOOL" run --leaks --report "$TMP/cxx.txt" -- "$TMP/cxx_leak" >/dev/null
	check "C++: the frame is demangled" grep -q '#[0-9] widgets::Factory::make(int) (' "$TMP/cxx.txt"
	check "C++: operator new is shown as such" grep -q '#0 operator new(unsigned long)' "$TMP/cxx.txt"
else
	skip "no g++: C++ demangling not tested"
fi
finish
