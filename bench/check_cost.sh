#!/usr/bin/env bash
# check_cost.sh - issue 13's cost targets, on the C workloads of
# bench/workloads/ (preload_bench.sh's, built the same way):
#
#  1. --guard at its default rate costs at most 2% over the plain drop-in:
#     whole-program instructions (valgrind --tool=callgrind, every
#     instruction of the process) with the drop-in preloaded, plainly and
#     with SLABNOTIFY_GUARD=5000 (what `slabnotify run --guard` sets);
#     instructions, not time: time on this shared machine varies by more
#     than 2%.
#  2. --debug costs at most 5x in geometric mean, beside valgrind's
#     memcheck: wall time of the plain drop-in, of `slabnotify run --debug`
#     and of `valgrind --tool=memcheck` (glibc's malloc, as memcheck
#     replaces it), interleaved round by round, medians; ratios over the
#     plain drop-in. Also --debug's instructions, as a check of the time.
#
#   bench/check_cost.sh [--reps N] [--only W,...] [BUILD_DIR]
#
# Prints a Markdown table and the verdicts. Exit 0 when it ran (whatever
# the verdicts), 1 on a setup error, 2 on a bad command line.
set -euo pipefail

prog=${0##*/}
ALL=(ht_churn bintree prodcons larson realloc_grow bigbuf)
reps=3
only=""
build=build
while (($#)); do
	case $1 in
	--reps) reps=${2:?}; shift 2 ;;
	--only) only=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) build=$1; shift ;;
	esac
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "$prog: --reps wants a positive number, not '$reps'" >&2; exit 2; }
workloads=("${ALL[@]}")
if [[ -n $only ]]; then
	IFS=, read -r -a workloads <<<"$only"
	for w in "${workloads[@]}"; do
		[[ " ${ALL[*]} " == *" $w "* ]] || { echo "$prog: unknown workload '$w' (${ALL[*]})" >&2; exit 2; }
	done
fi

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd) || exit 1
lib=$build/src/libslabnotify-malloc.so
tool=$build/tools/slabnotify
for f in "$lib" "$tool"; do [[ -e $f ]] || { echo "$prog: no $f (build first)" >&2; exit 1; }; done
command -v valgrind >/dev/null || { echo "$prog: valgrind is not installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_cost.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for w in "${workloads[@]}"; do
	cc -O2 -std=gnu11 -Wall -Wextra -pthread -o "$tmp/$w" "$src/bench/workloads/$w.c" ||
		{ echo "$prog: cannot build $w" >&2; exit 1; }
done

# ir ENV... -- CMD: the whole process's instructions.
ir() {
	local out=$tmp/cg.out
	env "$@" valgrind --tool=callgrind --callgrind-out-file="$out" "$w_bin" >/dev/null 2>"$tmp/cg.err" ||
		{ echo "fail"; return; }
	sed -n 's/^summary: *//p' "$out" | head -1
}

# secs CMD...: wall seconds of one run.
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || { echo "fail"; return; }
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "check_cost: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(valgrind --version), slabnotify $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?'), $reps rounds"
echo
echo "| workload | Ir plain | Ir --guard | guard/plain | Ir --debug | s plain | s --debug | s memcheck | debug/plain | memcheck/plain |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
gsum=0 dsum=0 msum=0 n=0 worst_guard=0
for w in "${workloads[@]}"; do
	w_bin=$tmp/$w
	echo "$prog: $w: instructions" >&2
	i_plain=$(ir LD_PRELOAD="$lib")
	i_guard=$(ir LD_PRELOAD="$lib" SLABNOTIFY_GUARD=5000)
	i_debug=$(ir LD_PRELOAD="$lib" SLABNOTIFY_DEBUG=FZPU)
	tp="" td="" tm=""
	for r in $(seq 1 "$reps"); do
		echo "$prog: $w: time, round $r" >&2
		tp="$tp $(secs env LD_PRELOAD="$lib" "$w_bin")"
		td="$td $(secs "$tool" run --debug -- "$w_bin")"
		tm="$tm $(secs valgrind --tool=memcheck --error-exitcode=0 "$w_bin")"
	done
	mp=$(median <<<"$tp") md=$(median <<<"$td") mm=$(median <<<"$tm")
	read -r gr dr mr < <(awk -v a="$i_plain" -v b="$i_guard" -v p="$mp" -v d="$md" -v m="$mm" \
		'BEGIN { printf "%.4f %.2f %.2f\n", b / a, d / p, m / p }')
	echo "| $w | $i_plain | $i_guard | $gr | $i_debug | $mp | $md | $mm | ${dr}x | ${mr}x |"
	gsum=$(awk -v s="$gsum" -v x="$gr" 'BEGIN { print s + log(x) }')
	dsum=$(awk -v s="$dsum" -v x="$dr" 'BEGIN { print s + log(x) }')
	msum=$(awk -v s="$msum" -v x="$mr" 'BEGIN { print s + log(x) }')
	worst_guard=$(awk -v a="$worst_guard" -v b="$gr" 'BEGIN { print (b > a) ? b : a }')
	n=$((n + 1))
done
echo
awk -v g="$gsum" -v d="$dsum" -v m="$msum" -v n="$n" -v wg="$worst_guard" 'BEGIN {
	gg = exp(g / n); gd = exp(d / n); gm = exp(m / n)
	printf "Geometric means: --guard %.4f of the plain drop-in (worst %.4f), --debug %.2fx, memcheck %.2fx.\n", gg, wg, gd, gm
	printf "Targets: --guard <= 1.02 on every workload: %s; --debug <= 5x (geometric mean): %s.\n",
		wg <= 1.02 ? "met" : "missed", gd <= 5 ? "met" : "missed"
}'
