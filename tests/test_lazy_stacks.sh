#!/bin/bash
# test_lazy_stacks.sh BUILD SRC - libunwind and libdw are loaded only when
# an option records stacks (src/consumers/stack_lib.c): a program under the
# drop-in without one does not map them (their ~448 KiB of RSS), one with
# --leaks, --profile, --debug (U) or --fail-stack does and its stacks have
# function (file:line). --guard alone maps libunwind only: libdw waits for
# its first report. When they cannot be loaded, one line names the option
# (or, for --guard, the report) and the run goes on with names from
# dladdr(). Nor is
# libm loaded by the drop-in, ever (its ~300 KiB of RSS in a program that
# does not link it; the sampling's math is in consumers/sample_math.h).
set -u
BUILD=$(cd "${1:?usage: test_lazy_stacks.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_lazy_stacks.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
T="timeout 60"
STACK_LIBS='/lib(unwind|dw|elf|lzma|bz2)[-.]'

# maps_of NAME [RUN-OPTIONS...]: cat's /proc/self/maps under the command.
maps_of() {
	local name=$1
	shift
	$T "$TOOL" run "$@" --report "$TMP/$name.report" -- cat /proc/self/maps >"$TMP/$name.maps" 2>"$TMP/$name.err"
}
no_stack_libs() { ! grep -Eq "$STACK_LIBS" "$1"; }
has_stack_libs() { grep -q '/libunwind\.so' "$1" && grep -q '/libdw[-.]' "$1"; }

if command -v objdump >/dev/null; then
	check "the drop-in has no DT_NEEDED on libunwind or libdw" \
		bash -c '! objdump -p "$1" | grep NEEDED | grep -Eq "libunwind|libdw"' _ "$PRELOAD"
	check "libslabnotify.so has no DT_NEEDED on libunwind or libdw" \
		bash -c '! objdump -p "$1"/src/libslabnotify.so | grep NEEDED | grep -Eq "libunwind|libdw"' _ "$BUILD"
	check "the drop-in has no DT_NEEDED on libm" \
		bash -c '! objdump -p "$1" | grep NEEDED | grep -q "libm\."' _ "$PRELOAD"
else
	skip "no objdump: DT_NEEDED not checked"
fi

LD_PRELOAD=$PRELOAD $T cat /proc/self/maps >"$TMP/plain.maps"
check "LD_PRELOAD alone: no libunwind, libdw, libelf... mapped" no_stack_libs "$TMP/plain.maps"
check "LD_PRELOAD alone: the drop-in is mapped" grep -q libslabnotify-malloc "$TMP/plain.maps"
maps_of options --max 64M --high 32M --stats --fail-probability 0 --debug=FZP
check "--max --high --stats --debug=FZP: cat ran under the drop-in" grep -q libslabnotify-malloc "$TMP/options.maps"
check "--max --high --stats --debug=FZP: no stack library mapped" no_stack_libs "$TMP/options.maps"
check "--max --high --stats --debug=FZP: the report was written" grep -q 'slabnotify report' "$TMP/options.report"

maps_of guard --guard
check "--guard: libunwind mapped" grep -q '/libunwind\.so' "$TMP/guard.maps"
check "--guard: libdw not mapped before a report" bash -c '! grep -Eq "/lib(dw|elf|bz2)[-.]" "$1"' _ "$TMP/guard.maps"
check "--guard: nothing on stderr" test ! -s "$TMP/guard.err"
for opt in --leaks --profile --debug "--fail-stack=no_such_function"; do
	name=${opt%%=*}
	name=${name#--}
	maps_of "$name" "$opt"
	check "$opt: libunwind and libdw mapped" has_stack_libs "$TMP/$name.maps"
	check "$opt: nothing on stderr" test ! -s "$TMP/$name.err"
done
if ! ldd "$(command -v cat)" | grep -q 'libm\.'; then
	check "LD_PRELOAD alone: no libm mapped (cat does not link it)" bash -c '! grep -q "/libm[.-]" "$1"' _ "$TMP/plain.maps"
	check "--profile: no libm mapped either" bash -c '! grep -q "/libm[.-]" "$1"' _ "$TMP/profile.maps"
fi

# The stacks still have names and lines, under --leaks and --profile.
compile_fixture leak || finish
for opt in --leaks --profile; do
	$T "$TOOL" run "$opt" --report "$TMP/leak$opt.txt" -- "$TMP/leak" >/dev/null 2>&1
	check "$opt: the leak's frame has function (file:line)" \
		grep -Eq '#[0-9]+ fixture_leaky_loader \(.*leak\.c:[0-9]+\)$' "$TMP/leak$opt.txt" ||
		show "$TMP/leak$opt.txt"
done

# Libraries that cannot be loaded: a libdw.so.1 without libdw's symbols
# found first. One line naming the option; the program runs; the report
# is made, with the frames dladdr names (main's module at least).
mkdir -p "$TMP/fakelib"
echo 'int sn_not_libdw;' >"$TMP/fake.c"
if ${CC:-cc} -shared -fPIC -Wl,-soname,libdw.so.1 -o "$TMP/fakelib/libdw.so.1" "$TMP/fake.c"; then
	LD_LIBRARY_PATH=$TMP/fakelib $T "$TOOL" run --leaks --report "$TMP/nolib.txt" -- "$TMP/leak" \
		>"$TMP/nolib.out" 2>"$TMP/nolib.err"
	st=$?
	check "no libdw: the program runs and exits 0" test "$st" -eq 0
	check "no libdw: one line on stderr" test "$(wc -l <"$TMP/nolib.err")" -eq 1
	check "no libdw: the line names --leaks and why" \
		grep -q '^slabnotify: --leaks (SLABNOTIFY_LEAKS): cannot load libunwind and libdw (libdw.so.1 has no dwfl_begin)' \
		"$TMP/nolib.err" || show "$TMP/nolib.err"
	check "no libdw: the leak is still reported, with a stack" \
		grep -Eq '^  #[0-9]+ .*leak\)$' "$TMP/nolib.txt" || show "$TMP/nolib.txt"
	LD_LIBRARY_PATH=$TMP/fakelib $T "$TOOL" run --debug -- cat /proc/self/maps >"$TMP/nolib.maps" 2>"$TMP/nolib2.err"
	check "no libdw: --debug is named" grep -q '^slabnotify: --debug (SLABNOTIFY_DEBUG): cannot load' "$TMP/nolib2.err"
	check "no libdw: no libdw stays mapped (libunwind, which loaded, still captures)" \
		bash -c '! grep -Eq "/libdw[-.]" "$1"' _ "$TMP/nolib.maps"
	# --guard: its report says it once and names the frames by dladdr.
	compile_fixture heap_bugs || finish
	LD_LIBRARY_PATH=$TMP/fakelib $T "$TOOL" run --guard=1 -- "$TMP/heap_bugs" read-after-free \
		>/dev/null 2>"$TMP/nolib3.err"
	check "no libdw: --guard's report says so once" \
		test "$(grep -c '^slabnotify: cannot load libdw (libdw.so.1 has no dwfl_begin): stacks without file:line' "$TMP/nolib3.err")" -eq 1 ||
		show "$TMP/nolib3.err"
	check "no libdw: --guard's report still has its stacks" grep -Eq '^    #[0-9]+ .*heap_bugs\)$' "$TMP/nolib3.err" ||
		show "$TMP/nolib3.err"
else
	bad "compile the stand-in libdw.so.1"
fi
finish
