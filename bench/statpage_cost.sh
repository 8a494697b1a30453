#!/usr/bin/env bash
# statpage_cost.sh - what the drop-in's live stats page costs, counted in
# instructions: every thread of the whole program (the page's writer
# thread included), by valgrind --tool=callgrind, with the page (the
# drop-in's default) and without it (SLABNOTIFY_STATPAGE=0).
#
#   bench/statpage_cost.sh [--only W,...] [BUILD_DIR]
#
# Under valgrind a program runs some 50x slower while the page is still
# written once a second of wall-clock time, so the page's share counted
# here is an upper bound of its share in a normal run. Multi-threaded
# workloads (larson, prodcons) run for a fixed time, so their counts move
# with the scheduling: read them as noise bounds, not as the cost.
# Prints a Markdown table.
set -euo pipefail

prog=${0##*/}
only=bintree,ht_churn,realloc_grow
build=build
while (($#)); do
	case $1 in
	--only) only=$2; shift 2 ;;
	--only=*) only=${1#*=}; shift ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$prog: unknown option $1" >&2; exit 2 ;;
	*) build=$1; shift ;;
	esac
done
lib=$build/src/libslabnotify-malloc.so
[[ -f $lib ]] || { echo "$prog: $lib not found (build first)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "$prog: valgrind not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

instructions() {  # instructions PAGE WORKLOAD
	SLABNOTIFY_STATPAGE=$1 LD_PRELOAD=$(realpath "$lib") valgrind --tool=callgrind \
		--callgrind-out-file="$tmp/cg.out" "$build/bench-workloads/$2" 2>&1 >/dev/null |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), nproc $(nproc), command: bench/$prog --only $only $build"
echo
echo "| workload | Ir with the page | Ir without | page's share |"
echo "|---|---:|---:|---:|"
IFS=, read -ra ws <<<"$only"
for w in "${ws[@]}"; do
	[[ -x $build/bench-workloads/$w ]] || { echo "$prog: no workload $w" >&2; exit 1; }
	on=$(instructions 1 "$w")
	off=$(instructions 0 "$w")
	awk -v w="$w" -v on="$on" -v off="$off" \
		'BEGIN { printf "| %s | %.0f | %.0f | %+.3f%% |\n", w, on, off, (on - off) * 100 / off }'
done
