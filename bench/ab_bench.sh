#!/usr/bin/env bash
# ab_bench.sh - two builds of the drop-in side by side on the C workloads
# of bench/workloads/, with mimalloc and glibc as the yardsticks: each
# round runs every column once, in turn (interleaved), and the table
# gives the minimum and the median of each column's CPU time (user +
# system, /usr/bin/time) and its median peak RSS. For a change to the
# core: build the old tree in one directory and the new in another.
#
#   bench/ab_bench.sh [--reps N] [--only W,...] OLD_LIB NEW_LIB
#
# OLD_LIB, NEW_LIB: two libslabnotify-malloc.so files. The workloads are
# taken from the build directory of NEW_LIB (its bench-workloads/).
set -euo pipefail

prog=${0##*/}
reps=5
only=ht_churn,bintree,prodcons,larson,realloc_grow,bigbuf
while (($#)); do
	case $1 in
	--reps) reps=${2:?}; shift 2 ;;
	--only) only=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$prog: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
(($# == 2)) || { echo "usage: $prog [--reps N] [--only W,...] OLD_LIB NEW_LIB" >&2; exit 2; }
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "$prog: --reps wants a positive number" >&2; exit 2; }
old=$(realpath "$1") new=$(realpath "$2")
for l in "$old" "$new"; do [[ -f $l ]] || { echo "$prog: $l not found" >&2; exit 1; }; done
bin=$(dirname "$(dirname "$new")")/bench-workloads
[[ -d $bin ]] || { echo "$prog: no $bin (build the bench workloads)" >&2; exit 1; }
src_dir=$(cd "$(dirname "$0")/.." && pwd)
. "$src_dir/bench/workloads/peers.sh"
mi=$(peer_lib mimalloc || true)
[[ -x /usr/bin/time ]] || { echo "$prog: /usr/bin/time not installed" >&2; exit 1; }

names=(glibc mimalloc old new)
libs=("" "$mi" "$old" "$new")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $reps rounds"
echo "old: $old"
echo "new: $new"
echo
echo "| workload | glibc min / med s | mimalloc | old | new | new/old (min) | new/mimalloc (min) | RSS MiB glibc / mimalloc / old / new |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -ra ws <<<"$only"
for w in "${ws[@]}"; do
	[[ -x $bin/$w ]] || { echo "$prog: no workload $bin/$w" >&2; exit 1; }
	for ((r = 0; r < reps; r++)); do
		for i in "${!names[@]}"; do
			[[ ${names[$i]} == mimalloc && -z $mi ]] && continue
			/usr/bin/time -o "$tmp/t" -f '%U %S %M' env ${libs[$i]:+LD_PRELOAD=${libs[$i]}} "$bin/$w" >/dev/null
			awk '{ printf "%.3f %.1f\n", $1 + $2, $3 / 1024 }' "$tmp/t" >>"$tmp/$w.${names[$i]}"
		done
	done
	row="| $w"
	declare -A mins=() rss=()
	for n in "${names[@]}"; do
		f=$tmp/$w.$n
		if [[ ! -s $f ]]; then row+=" | n/a"; continue; fi
		read -r mn md < <(cut -d' ' -f1 "$f" | sort -n | awk '{ a[NR] = $1 } END { print a[1], a[int((NR + 1) / 2)] }')
		rss[$n]=$(cut -d' ' -f2 "$f" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
		mins[$n]=$mn
		row+=" | $mn / $md"
	done
	ratio() { awk -v a="${mins[$1]:-0}" -v b="${mins[$2]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
	row+=" | $(ratio new old) | $(ratio new mimalloc) | ${rss[glibc]:-n/a} / ${rss[mimalloc]:-n/a} / ${rss[old]:-n/a} / ${rss[new]:-n/a} |"
	echo "$row"
	unset mins rss
done
