#!/usr/bin/env bash
# callgrind.sh - instructions per alloc and per free, by pattern and
# allocator, counted by valgrind --tool=callgrind on alloc_bench --callgrind.
#
#   bench/callgrind.sh [--pairs N] [--patterns P,...] [--allocators A,...]
#                      [--keep DIR] [BUILD_DIR]
#
# For each pattern and allocator: one valgrind run of
#   BUILD_DIR/bench/alloc_bench --callgrind --pattern P --only A --pairs N
# collecting only inside the pattern's loop function(s) (--toggle-collect),
# then callgrind_annotate --inclusive=yes: the inclusive Ir of the noinline
# steps bench_step_alloc and bench_step_free (every allocation and every
# free of the loop is one call of them) divided by the number of
# allocations gives Ir per alloc and per free. Prints a Markdown table.
# See bench/README.md ("Instructions per alloc and per free").
set -euo pipefail

prog=${0##*/}
ALL_PATTERNS=(pair batch batch-mixed xbatch churn)
ALL_ALLOCS=(slabnotify-cache slabnotify mimalloc glibc null jemalloc tcmalloc)
DEFAULT_ALLOCS=(slabnotify-cache slabnotify mimalloc glibc null)

usage() {
	cat <<EOF
usage: $prog [--pairs N] [--patterns P,...] [--allocators A,...] [--keep DIR] [BUILD_DIR]

  BUILD_DIR        CMake build directory with bench/alloc_bench (default: build)
  --pairs N        allocations (and frees) counted per run (default 1000000;
                   the batch patterns round down to a multiple of 1000)
  --patterns L     $(IFS=,; echo "${ALL_PATTERNS[*]}") (default: all five)
  --allocators L   $(IFS=,; echo "${ALL_ALLOCS[*]}")
                   (default: $(IFS=,; echo "${DEFAULT_ALLOCS[*]}"); jemalloc and
                   tcmalloc are LD_PRELOADed, as alloc_bench does)
  --keep DIR       keep the callgrind.out files and the program's output in DIR
                   (default: a temporary directory, removed at exit)

Needs valgrind and callgrind_annotate. Prints a Markdown table on stdout,
progress on stderr. Exit status 0, 1 if a run failed (its row says so),
2 on a bad command line.
EOF
}

need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "$prog: $1 needs an argument" >&2; exit 2; }; }
pairs=1000000
patterns=("${ALL_PATTERNS[@]}")
allocs=("${DEFAULT_ALLOCS[@]}")
keep=""
build_dir=""
cmdline="$0${*:+ $*}"

pick() { # pick OUTVAR "a,b" known... : the names, checked, in the given order
	local -n picked=$1
	local want=$2 w k ok
	local -a ws
	shift 2
	picked=()
	IFS=, read -r -a ws <<<"$want"
	for w in "${ws[@]}"; do
		ok=0
		for k in "$@"; do [[ $k == "$w" ]] && ok=1; done
		((ok)) || { echo "$prog: unknown name '$w' (known: $*)" >&2; exit 2; }
		picked+=("$w")
	done
	((${#picked[@]})) || { echo "$prog: empty list '$want'" >&2; exit 2; }
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--pairs)
		need_arg "$@"
		[[ $2 =~ ^[1-9][0-9]{0,11}$ ]] || { echo "$prog: --pairs: not a positive number: $2" >&2; exit 2; }
		pairs=$2; shift ;;
	--patterns) need_arg "$@"; pick patterns "$2" "${ALL_PATTERNS[@]}"; shift ;;
	--allocators) need_arg "$@"; pick allocs "$2" "${ALL_ALLOCS[@]}"; shift ;;
	--keep) need_arg "$@"; keep=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "$prog: unknown option $1" >&2; usage >&2; exit 2 ;;
	*)
		[[ -z $build_dir ]] || { echo "$prog: more than one BUILD_DIR" >&2; exit 2; }
		build_dir=$1 ;;
	esac
	shift
done
build_dir=${build_dir:-build}
bench=$build_dir/bench/alloc_bench
[[ -x $bench ]] || { echo "$prog: $bench not found: build the alloc_bench target" >&2; exit 1; }
for t in valgrind callgrind_annotate; do
	command -v "$t" >/dev/null || { echo "$prog: $t is required (Debian package valgrind)" >&2; exit 1; }
done

if [[ -n $keep ]]; then
	mkdir -p "$keep"
	outdir=$keep
else
	outdir=$(mktemp -d "${TMPDIR:-/tmp}/callgrind.XXXXXX")
	trap 'rm -rf "$outdir"' EXIT
fi

. "$(dirname "${BASH_SOURCE[0]}")/workloads/peers.sh"

# The loop functions of each pattern: collection is on inside them only.
toggles() {
	case $1 in
	pair) echo --toggle-collect=bench_cg_pair ;;
	batch) echo --toggle-collect=bench_cg_batch ;;
	batch-mixed) echo --toggle-collect=bench_cg_batch_mixed ;;
	xbatch) echo --toggle-collect=bench_cg_xbatch_fill --toggle-collect=bench_cg_xbatch_drain ;;
	churn) echo --toggle-collect=bench_cg_churn ;;
	esac
}

# inclusive FILE FUNCTION -> its inclusive Ir (0 if absent)
inclusive() {
	awk -v fn="$2" '
		$0 ~ ":" fn " \\[" || $0 ~ ":" fn "$" { gsub(",", "", $1); if ($1 + 0 > best) best = $1 + 0 }
		END { printf "%d\n", best + 0 }' "$1"
}
totals() { awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 + 0; exit }' "$1"; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.1f", a / n }'; }

failed=0
rows=()
for p in "${patterns[@]}"; do
	for a in "${allocs[@]}"; do
		if [[ $a == slabnotify-cache && $p == batch-mixed ]]; then
			rows+=("| $p | $a | n/a | n/a | n/a | n/a (one 64-byte cache; mixed sizes need slab_malloc) |")
			continue
		fi
		pre=()
		case $a in
		jemalloc) lib=$(peer_lib jemalloc) ;;
		tcmalloc) lib=$(peer_lib tcmalloc) ;;
		*) lib="" ;;
		esac
		if [[ $a == jemalloc || $a == tcmalloc ]]; then
			if [[ -z $lib ]]; then
				rows+=("| $p | $a | n/a | n/a | n/a | n/a (not installed) |")
				continue
			fi
			pre=(env "LD_PRELOAD=$lib")
		fi
		base=$outdir/cg.$p.$a
		echo "$prog: $p / $a" >&2
		# shellcheck disable=SC2046
		if ! "${pre[@]}" valgrind --tool=callgrind $(toggles "$p") --callgrind-out-file="$base.out" \
			"$bench" --callgrind --pattern "$p" --only "$a" --pairs "$pairs" \
			>"$base.stdout" 2>"$base.stderr"; then
			msg=$(grep -v '^==' "$base.stderr" | head -1 | cut -c1-120)
			rows+=("| $p | $a | fail | fail | fail | fail: ${msg:-see valgrind output} |")
			failed=1
			continue
		fi
		ops=$(sed -n 's/^callgrind: .* ops=\([0-9]*\) .*/\1/p' "$base.stdout")
		[[ -n $ops && $ops -gt 0 ]] || { rows+=("| $p | $a | fail | fail | fail | fail: no ops line |"); failed=1; continue; }
		callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$base.out" >"$base.annotate"
		ia=$(inclusive "$base.annotate" bench_step_alloc)
		if_=$(inclusive "$base.annotate" bench_step_free)
		tot=$(totals "$base.annotate")
		rows+=("| $p | $a | $(per "$ia" "$ops") | $(per "$if_" "$ops") | $(per $((ia + if_)) "$ops") | $(per "$tot" "$ops") |")
	done
done

echo "callgrind: $(date -u '+%Y-%m-%d %H:%M UTC'), $(valgrind --version), $(uname -m), slabnotify $(cd "$(dirname "$0")/.." && git describe --always --dirty 2>/dev/null || echo '?'), command: \`$cmdline\`"
echo
echo "Per run: $pairs allocs and as many frees (batch patterns: rounded down to a multiple of 1000); sizes: 64 B, batch-mixed 16..512 B (fixed seed)."
echo
echo "| pattern | allocator | Ir per alloc | Ir per free | Ir per pair | whole loop per pair |"
echo "|---|---|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "Ir per alloc / per free: inclusive Ir of bench_step_alloc / bench_step_free (callgrind_annotate --inclusive=yes) over the allocations;"
echo "they include the step's call through the allocator table (the null row: an allocator that does nothing) and, for slabnotify,"
echo "the one-line wrapper that adds the cache or gfp argument. Ir per pair = the two added. Whole loop per pair: every collected Ir"
echo "(PROGRAM TOTALS, the loop functions inclusive) over the allocations, i.e. with the harness."
exit $failed
