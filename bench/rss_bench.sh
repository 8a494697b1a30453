#!/usr/bin/env bash
# rss_bench.sh - peak RSS of programs whose blocks are just above 4 KiB
# (issue 14: at most 1.1x glibc's), under glibc, the malloc drop-in and
# the peers that are installed.
#
#   bench/rss_bench.sh [--reps N] [--only WORKLOAD,...] [BUILD_DIR]
#
# Workloads: sqlite and sqlite_blob (the SQL scripts preload_bench runs,
# bench/workloads/sqlite_sql.sh: sqlite's page cache holds 4 KiB pages
# plus a header) and py_chunks (python3 reading a 32 MiB file with
# f.read(4096) into lists, bench/workloads/py_chunks.py). Each run is
# measured by /usr/bin/time -f '%M %e' (peak RSS in KiB, wall seconds).
# Repetitions are interleaved, every allocator once per repetition in a
# rotating order; the report gives medians and the ratio to glibc, and
# checks each program's output against glibc's.
set -euo pipefail

prog=${0##*/}
ALL_WORKLOADS=(sqlite sqlite_blob py_chunks)
TARGET=1.10 # issue 14: slabnotify's peak RSS over glibc's
reps=7
only=""
build_dir=""
usage() { echo "usage: $prog [--reps N] [--only $(IFS=,; echo "${ALL_WORKLOADS[*]}")] [BUILD_DIR]"; }
while [[ $# -gt 0 ]]; do
	case $1 in
	--reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }; reps=$2; shift ;;
	--only) [[ -n ${2:-} ]] || { usage >&2; exit 2; }; only=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 2 ;;
	*) build_dir=$1 ;;
	esac
	shift
done

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$(cd "${build_dir:-build}" && pwd)
sn_lib=$build_dir/src/libslabnotify-malloc.so
[[ -f $sn_lib ]] || { echo "$prog: $sn_lib not found: build first" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "$prog: /usr/bin/time is required (Debian package time)" >&2; exit 1; }
. "$src_dir/bench/workloads/sqlite_sql.sh"
. "$src_dir/bench/workloads/peers.sh"

workloads=("${ALL_WORKLOADS[@]}")
[[ -z $only ]] || IFS=, read -r -a workloads <<<"$only"
SQLITE=$(command -v sqlite3 || true)
# The system's interpreter, not a pyenv shim (a shell script).
PY=$(command -v /usr/bin/python3 || command -v python3 || true)

declare -A LIB=([glibc]="" [slabnotify]=$sn_lib)
allocs=(glibc)
for a in jemalloc mimalloc tcmalloc; do
	LIB[$a]=$(peer_lib $a)
	[[ -z ${LIB[$a]} ]] || allocs+=("$a")
done
allocs+=(slabnotify)

tmp_base=${TMPDIR:-/tmp}
[[ -n ${TMPDIR:-} || ! -w /dev/shm ]] || tmp_base=/dev/shm # no disk I/O noise
tmp=$(mktemp -d "$tmp_base/rss_bench.XXXXXX")
trap '[[ -n ${RSS_BENCH_KEEP:-} ]] && cp "$tmp/results" "$RSS_BENCH_KEEP"; rm -rf "$tmp"' EXIT
unset LD_PRELOAD
while IFS= read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLABNOTIFY_[A-Za-z0-9_]*\)=.*/\1/p')

setup() {
	case $1 in
	sqlite) [[ -n $SQLITE ]] && sqlite_sql "$tmp/sqlite.sql" ;;
	sqlite_blob) [[ -n $SQLITE ]] && sqlite_blob_sql "$tmp/sqlite_blob.sql" ;;
	py_chunks) [[ -n $PY ]] && "$PY" "$src_dir/bench/workloads/py_chunks.py" --make "$tmp/py_chunks.bin" 32 ;;
	*) echo "$prog: unknown workload $1" >&2; exit 2 ;;
	esac
}

run_one() { # run_one WORKLOAD ALLOC REP: append "W A REP KIB SECONDS MD5"
	local w=$1 a=$2 r=$3 db=$tmp/test.db out=$tmp/out st
	rm -f "$db"*
	local -a cmd env=()
	case $w in
	sqlite | sqlite_blob) cmd=("$SQLITE" -batch "$db") ;;
	py_chunks) cmd=("$PY" "$src_dir/bench/workloads/py_chunks.py" "$tmp/py_chunks.bin") ;;
	esac
	[[ -z ${LIB[$a]} ]] || env=("LD_PRELOAD=${LIB[$a]}")
	local in=/dev/null
	[[ $w == py_chunks ]] || in=$tmp/$w.sql
	if env "${env[@]}" PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 /usr/bin/time -o "$tmp/time" -f '%M %e' \
		"${cmd[@]}" <"$in" >"$out" 2>"$tmp/err"; then
		st=$(tail -1 "$tmp/time")
	else
		st="0 0"
		echo "$prog: $w under $a failed: $(head -1 "$tmp/err")" >&2
	fi
	echo "$w $a $r $st $(md5sum <"$out" | cut -c1-12)" >>"$tmp/results"
}

: >"$tmp/results"
ran=()
for w in "${workloads[@]}"; do
	if setup "$w"; then ran+=("$w"); else echo "$prog: $w skipped (program not found)" >&2; fi
done
n=${#allocs[@]}
for ((r = 1; r <= reps; r++)); do
	for w in "${ran[@]}"; do
		for ((i = 0; i < n; i++)); do run_one "$w" "${allocs[(i + r) % n]}" "$r"; done
	done
	echo "rep $r/$reps done" >&2
done

echo "rss_bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "slabnotify $(cd "$src_dir" && git describe --always --dirty 2>/dev/null || echo '?'), $reps interleaved runs, medians"
echo "command: bench/rss_bench.sh --reps $reps${only:+ --only $only}"
awk -v allocs="${allocs[*]}" -v wls="${ran[*]}" -v target="$TARGET" '
	function median(key,   k, m, v, i, j, t) {
		m = cnt[key]
		for (i = 1; i <= m; i++) v[i] = val[key, i]
		for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
		return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
	}
	{
		rss[$1, $2, ++nr[$1, $2]] = $4 / 1024; sec[$1, $2, nr[$1, $2]] = $5
		out[$1, $2, nr[$1, $2]] = $6
		if ($2 == "glibc") ref[$1] = $6
	}
	END {
		na = split(allocs, A, " "); nw = split(wls, W, " ")
		printf "\nPeak RSS, MiB (median)\n%-12s", "workload"
		for (i = 1; i <= na; i++) printf " %10s", A[i]
		printf " %9s %6s\n", "sn/glibc", "<=" target
		for (j = 1; j <= nw; j++) {
			printf "%-12s", W[j]
			for (i = 1; i <= na; i++) {
				key = W[j] SUBSEP A[i]; cnt[key] = nr[W[j], A[i]]
				for (k = 1; k <= cnt[key]; k++) val[key, k] = rss[W[j], A[i], k]
				m[A[i]] = median(key)
				printf " %10.2f", m[A[i]]
			}
			q = m["glibc"] ? m["slabnotify"] / m["glibc"] : 0
			printf " %9.3f %6s\n", q, q <= target ? "yes" : "NO"
		}
		printf "\nWall time, seconds (median)\n%-12s", "workload"
		for (i = 1; i <= na; i++) printf " %10s", A[i]
		printf " %9s\n", "sn/glibc"
		for (j = 1; j <= nw; j++) {
			printf "%-12s", W[j]
			for (i = 1; i <= na; i++) {
				key = W[j] SUBSEP A[i]
				for (k = 1; k <= cnt[key]; k++) val[key, k] = sec[W[j], A[i], k]
				m[A[i]] = median(key)
				printf " %10.2f", m[A[i]]
			}
			printf " %9.3f\n", m["glibc"] ? m["slabnotify"] / m["glibc"] : 0
		}
		for (j = 1; j <= nw; j++) for (i = 1; i <= na; i++) for (k = 1; k <= nr[W[j], A[i]]; k++)
			if (out[W[j], A[i], k] != ref[W[j]]) printf "output of %s under %s (run %d) differs from glibc'\''s\n", W[j], A[i], k
	}' "$tmp/results"
