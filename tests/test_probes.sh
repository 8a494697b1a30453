#!/bin/bash
# test_probes.sh BUILD SRC - the USDT probes (src/probes.h): readelf -n
# lists each in the library and the drop-in, and gdb stops at each
# (break -probe-stap slabnotify:NAME) in a program that makes it fire,
# with the probe's first argument as documented in docs/probes.md.
set -u
BUILD=$(cd "${1:?usage: test_probes.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_probes.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

PROBES="slab_alloc slab_free veto memcg_charge_fail memcg_high fault_injected large_alloc"
for lib in "$BUILD/src/libslabnotify.so" "$PRELOAD"; do
	readelf -n "$lib" >"$TMP/notes" 2>&1
	for p in $PROBES; do
		check "readelf -n lists slabnotify:$p in ${lib##*/}" \
			bash -c 'grep -A3 "Provider: slabnotify" "$1" | grep -qx " *Name: $2"' _ "$TMP/notes" "$p"
	done
	check "${lib##*/}: exactly these probes" \
		[ "$(grep -A1 'Provider: slabnotify' "$TMP/notes" | grep -c 'Name:')" -eq 7 ]
done

if [ -n "$SANITIZED" ]; then
	skip "probes under gdb: $SANITIZED sanitizer build (the drop-in cannot be preloaded)"
	finish
fi
command -v gdb >/dev/null || { bad "probes: no gdb (scripts/install-deps.sh)"; finish; }
compile_fixture alloc_on_demand || finish

# hit NAME ARG0-REGEX INPUT [RUN OPTIONS as SLABNOTIFY_ variables...]
hit() {
	local name=$1 arg0=$2 input=$3
	shift 3
	printf "$input" >"$TMP/input"
	local envs=(-ex "set environment LD_PRELOAD=$PRELOAD" -ex "set environment SLABNOTIFY_STATPAGE=0")
	for v in "$@"; do envs+=(-ex "set environment $v"); done
	# No shell between gdb and the program: the shell would run on the
	# drop-in too. Nothing evaluated may call into the program (no
	# strings of gdb's own): the breakpoint would stop that call.
	timeout 120 gdb -batch -nx -ex 'set breakpoint pending on' -ex 'set startup-with-shell off' "${envs[@]}" \
		-ex "break -probe-stap slabnotify:$name" -ex "run" \
		-ex 'output $_probe_arg0' -ex 'echo \n' -ex 'x/s $_probe_arg0' -ex kill \
		--args "$TMP/alloc_on_demand" "$TMP/input" >"$TMP/gdb.$name" 2>&1
	if grep -q "^Breakpoint 1, " "$TMP/gdb.$name" && grep -Eq -- "$arg0" "$TMP/gdb.$name"; then
		ok "gdb stops at slabnotify:$name"
	else
		bad "gdb stops at slabnotify:$name"
		show "$TMP/gdb.$name"
	fi
}
hit slab_alloc '"(kmalloc|slabnotify-meta)-[0-9k]+"' 'a 100 1\nq\n'
hit slab_free '"kmalloc-[0-9k]+"' 'a 3000 100\nf\nt\nq\n'
hit large_alloc '^100000$' 'a 100000 1\nq\n'
hit veto '"kmalloc-[0-9k]+"' 'a 100 1\nq\n' SLABNOTIFY_FAIL_PROBABILITY=100 SLABNOTIFY_SEED=1
hit fault_injected '"kmalloc-[0-9k]+"' 'a 100 1\nq\n' SLABNOTIFY_FAIL_PROBABILITY=100 SLABNOTIFY_SEED=1
hit memcg_charge_fail '"root"' 'a 3000 100\nq\n' SLABNOTIFY_MAX=64K
hit memcg_high '"root"' 'a 3000 100\nq\n' SLABNOTIFY_HIGH=64K
finish
