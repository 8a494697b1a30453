#!/usr/bin/env bash
# profile_bench.sh - the cost of slabnotify's heap profile against the
# tools people use for the job, on the same workloads: the plain drop-in,
# --leaks, --profile, --profile=512K, heaptrack, valgrind memcheck and
# LeakSanitizer (a preloadable runtime built from clang's). A thin front
# of bench/preload_bench.sh, which times every run (wall, CPU, peak RSS)
# and prints the ratios to the plain drop-in ("Cost of the slabnotify
# options").
#
#   bench/profile_bench.sh [--quick] [--only WORKLOAD,...] [BUILD_DIR]
#
# Default workloads: the C programs of bench/workloads that allocate the
# most (ht_churn, bintree, larson, realloc_grow, prodcons). Results:
# docs/benchmarks.md ("Heap profile").
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
only=ht_churn,bintree,larson,realloc_grow,prodcons
args=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--only) only=${2:?--only needs a list}; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
exec "$here/preload_bench.sh" --only "$only" --allocators slabnotify,sn+leaks,sn+profile,sn+profile512k \
	--tools --tool-timeout 300 "${args[@]}"
