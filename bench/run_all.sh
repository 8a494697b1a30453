#!/bin/sh
# `make bench`: every benchmark program, one after the other, on BUILD_DIR.
# Each prints its own header (date, machine, command) and tables; see
# docs/benchmarks.md for the recorded runs. Options pass through:
#   bench/run_all.sh build --quick
set -eu
BUILD=${1:-build}
shift 2>/dev/null || true
run() {
	if [ -x "$1" ] || [ -f "$1" ]; then
		echo
		echo "######## $*"
		"$@"
	else
		echo "slabnotify: $1 is not built; skipping" >&2
	fi
}
run "$BUILD/bench/alloc_bench" "$@"
run "$BUILD/bench/notify_bench" "$@"
run "$BUILD/bench/memcg_bench" "$@"
if [ -f bench/preload_bench.sh ]; then
	echo
	echo "######## bench/preload_bench.sh $* $BUILD"
	bash bench/preload_bench.sh "$@" "$BUILD"
fi
