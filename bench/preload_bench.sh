#!/usr/bin/env bash
# preload_bench.sh - the malloc drop-in (libslabnotify-malloc.so) against
# glibc, jemalloc, mimalloc and tcmalloc on whole programs, by LD_PRELOAD.
#
#   bench/preload_bench.sh [--quick] [--markdown] [--reps N] [--leak-reps N]
#                          [--timeout S] [--only WORKLOAD,...]
#                          [--allocators NAME,...] [--tools] [--tool-reps N]
#                          [--tool-timeout S] [BUILD_DIR]
#
# Workloads: six C programs of bench/workloads/ (built here with cc -O2
# into BUILD_DIR/bench-workloads/), python3 (two scripts), perl, sqlite3
# (two scripts), gcc and git.  Columns: the plain process (glibc), the
# peers, the drop-in, the drop-in with its options (some through the
# `slabnotify run` launcher), and, opt-in, the report tools heaptrack,
# valgrind memcheck and LeakSanitizer.  Every run is timed by
# bench/workloads/runwait.c (fork, execvp, wait4: wall time and
# ru_maxrss).  Repetitions are interleaved: for each repetition, for each
# workload, every column once, in an order that rotates.  Medians are
# reported.  See bench/preload_bench.md.
set -euo pipefail

prog=${0##*/}
ALL_WORKLOADS=(ht_churn bintree prodcons larson realloc_grow bigbuf python py_chunks perl sqlite sqlite_blob gcc git)
# The default columns, then the opt-in report tools (--tools).
ALL_ALLOCS=(glibc jemalloc mimalloc tcmalloc slabnotify sn+max sn+leaks sn+leaks64
	sn+run sn+profile sn+profile512k sn+guard sn+debug sn+stats sn+nopage)
TOOL_ALLOCS=(heaptrack memcheck lsan)
PEERS=(glibc jemalloc mimalloc tcmalloc)

usage() {
	cat <<EOF
usage: $prog [--quick] [--markdown] [--reps N] [--leak-reps N] [--timeout S]
       [--only WORKLOAD,...] [--allocators NAME,...] [--tools] [--tool-reps N]
       [--tool-timeout S] [BUILD_DIR]

  BUILD_DIR        CMake build directory holding src/libslabnotify-malloc.so
                   and tools/slabnotify (default: build)
  --quick          1 repetition of every column, for a smoke test (about
                   3 minutes for the default columns on a 2-core VM)
  --reps N         repetitions per cell (default 5)
  --leak-reps N    repetitions of the slow slabnotify option columns
                   (sn+leaks, sn+leaks64, sn+profile, sn+profile512k,
                   sn+guard, sn+debug; default 2: they can be 10-30x slower)
  --timeout S      kill a run after S seconds (default 60); the cell then
                   shows "timeout" and is not run again
  --markdown       print the report as Markdown
  --only LIST      only these workloads ($(IFS=,; echo "${ALL_WORKLOADS[*]}"))
  --allocators L   only these columns ($(IFS=,; echo "${ALL_ALLOCS[*]}"),
                   and the tools $(IFS=,; echo "${TOOL_ALLOCS[*]}"))
  --tools          add the report-tool columns ($(IFS=,; echo "${TOOL_ALLOCS[*]}")); they are
                   slow (memcheck: 20-100x) and never run by default
  --tool-reps N    repetitions of the tool columns (default 1)
  --tool-timeout S the timeout of a tool run (default 300)

Peers: PRELOAD_BENCH_JEMALLOC, PRELOAD_BENCH_MIMALLOC, PRELOAD_BENCH_TCMALLOC
override the library paths; PRELOAD_BENCH_LSAN a preloadable LeakSanitizer
runtime (default: built from clang's libclang_rt.lsan-<arch>.a). Progress goes
to stderr, the report to stdout. Exit status 0 when the run completed (with
n/a or fail cells as they are), 1 on a setup error, 2 on a bad command line.
EOF
}

reps=5
leak_reps=2
tool_reps=1
quick=0
markdown=0
timeout_s=60
tool_timeout_s=300
tools=0
only=""
only_allocs=""
build_dir=""
cmdline="$0${*:+ $*}"

need_arg() { [[ $# -ge 2 && -n $2 ]] || { echo "$prog: $1 needs an argument" >&2; exit 2; }; }
posint() { [[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || { echo "$prog: $1: not a positive number: $2" >&2; exit 2; }; }
reps_set=0 leak_reps_set=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--quick) quick=1 ;;
	--markdown) markdown=1 ;;
	--reps) need_arg "$@"; posint "$1" "$2"; reps=$2; reps_set=1; shift ;;
	--leak-reps) need_arg "$@"; posint "$1" "$2"; leak_reps=$2; leak_reps_set=1; shift ;;
	--tool-reps) need_arg "$@"; posint "$1" "$2"; tool_reps=$2; shift ;;
	--timeout) need_arg "$@"; posint "$1" "$2"; timeout_s=$2; shift ;;
	--tool-timeout) need_arg "$@"; posint "$1" "$2"; tool_timeout_s=$2; shift ;;
	--only) need_arg "$@"; only=$2; shift ;;
	--allocators) need_arg "$@"; only_allocs=$2; shift ;;
	--tools) tools=1 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "$prog: unknown option $1" >&2; usage >&2; exit 2 ;;
	*)
		[[ -z $build_dir ]] || { echo "$prog: more than one BUILD_DIR" >&2; exit 2; }
		build_dir=$1 ;;
	esac
	shift
done
if ((quick)); then
	((reps_set)) || reps=1
	((leak_reps_set)) || leak_reps=1
fi
((leak_reps <= reps)) || leak_reps=$reps

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${build_dir:-build}
[[ -d $build_dir ]] || { echo "$prog: no build directory $build_dir (build with cmake first)" >&2; exit 1; }
build_dir=$(cd "$build_dir" && pwd)
sn_lib=$build_dir/src/libslabnotify-malloc.so
[[ -f $sn_lib ]] || { echo "$prog: $sn_lib not found: build the slabnotify-malloc target" >&2; exit 1; }

select_list() { # select_list OUTVAR "a,b" all... -> OUTVAR: the selected names, in the order of all
	local -n selected=$1
	local want=$2 name w found
	shift 2
	local -a wanted
	selected=()
	IFS=, read -r -a wanted <<<"$want"
	for w in "${wanted[@]}"; do
		found=0
		for name in "$@"; do [[ $name == "$w" ]] && found=1; done
		((found)) || { echo "$prog: unknown name '$w' (known: $*)" >&2; exit 2; }
	done
	for name in "$@"; do
		for w in "${wanted[@]}"; do [[ $name == "$w" ]] && selected+=("$name") && break; done
	done
	((${#selected[@]})) || { echo "$prog: empty selection '$want'" >&2; exit 2; }
}
if [[ ,$only, == *,xthread,* ]]; then
	echo "$prog: there is no xthread workload: prodcons is the producer/consumer handoff of small blocks (bench/preload_bench.md)" >&2
	exit 2
fi
if [[ -n $only ]]; then select_list workloads "$only" "${ALL_WORKLOADS[@]}"; else workloads=("${ALL_WORKLOADS[@]}"); fi
KNOWN_ALLOCS=("${ALL_ALLOCS[@]}" "${TOOL_ALLOCS[@]}")
if [[ -n $only_allocs ]]; then
	sel=$only_allocs
	((tools)) && sel+=,$(IFS=,; echo "${TOOL_ALLOCS[*]}")
	select_list allocs "$sel" "${KNOWN_ALLOCS[@]}"
elif ((tools)); then
	allocs=("${KNOWN_ALLOCS[@]}")
else
	allocs=("${ALL_ALLOCS[@]}")
fi
# Slow columns run in fewer repetitions (the tools with a timeout of their own).
is_leak_col() { case $1 in sn+leaks | sn+leaks64 | sn+profile | sn+profile512k | sn+guard | sn+debug) return 0 ;; esac; return 1; }
is_tool_col() { case $1 in heaptrack | memcheck | lsan) return 0 ;; esac; return 1; }
is_launcher_col() { case $1 in sn+run | sn+profile | sn+profile512k | sn+guard | sn+debug) return 0 ;; esac; return 1; }
max_reps=$reps
for a in "${allocs[@]}"; do
	if is_tool_col "$a" && ((tool_reps > max_reps)); then max_reps=$tool_reps; fi
done

for tool in cc awk md5sum; do
	command -v "$tool" >/dev/null || { echo "$prog: $tool is required" >&2; exit 1; }
done

# Run directories (git, sqlite write files) on tmpfs when there is one,
# so that disk I/O does not add noise; TMPDIR overrides.
tmp_base=${TMPDIR:-}
if [[ -z $tmp_base ]]; then
	tmp_base=/tmp
	[[ -d /dev/shm && -w /dev/shm ]] && tmp_base=/dev/shm
fi
tmp=$(mktemp -d "$tmp_base/preload_bench.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'echo "$prog: interrupted" >&2; exit 130' INT TERM HUP

log() { echo "$*" >&2; }

# Whatever the caller has set must not leak into the runs.
unset LD_PRELOAD
while IFS= read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLABNOTIFY_[A-Za-z0-9_]*\)=.*/\1/p')

# ------------------------------------------------------------------
# Build the workloads and the timer
# ------------------------------------------------------------------
wl_src=$src_dir/bench/workloads
bin=$build_dir/bench-workloads
mkdir -p "$bin"
CFLAGS_WL=(-O2 -std=gnu11 -Wall -Wextra -pthread)
C_WORKLOADS=(ht_churn bintree prodcons larson realloc_grow bigbuf)
log "building workloads in $bin"
for c in runwait "${C_WORKLOADS[@]}"; do
	cc "${CFLAGS_WL[@]}" -o "$bin/$c" "$wl_src/$c.c" || { echo "$prog: cannot build $c" >&2; exit 1; }
done
runwait=$bin/runwait

# LeakSanitizer for unmodified programs: Debian's clang ships the LSan
# runtime only as a static archive, meant to be linked into a program
# built with -fsanitize=leak. Its objects are position-independent, so
# they link into a shared object that LD_PRELOAD can load, but for one:
# lsan_preinit.o puts __lsan_init in .preinit_array, which a shared
# object may not have. Without it, the runtime starts from a constructor
# of ours (and, as in the static case, from the first intercepted malloc
# if that comes earlier). See bench/preload_bench.md.
build_lsan() { # -> LIB[lsan], or NOTE[lsan] with the reason
	local arch archive so=$bin/liblsan-preload.so objs=$bin/lsan-objs cc_=""
	if [[ -n ${PRELOAD_BENCH_LSAN:-} ]]; then
		if [[ -f $PRELOAD_BENCH_LSAN ]]; then LIB[lsan]=$PRELOAD_BENCH_LSAN; else NOTE[lsan]="PRELOAD_BENCH_LSAN=$PRELOAD_BENCH_LSAN: no such file"; fi
		return 0
	fi
	command -v clang >/dev/null && cc_=clang
	[[ -n $cc_ ]] || { NOTE[lsan]="clang not found (Debian package clang)"; return 0; }
	arch=$(uname -m)
	archive="$(clang --print-runtime-dir 2>/dev/null)/libclang_rt.lsan-$arch.a"
	[[ -f $archive ]] || archive="$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.lsan-$arch.a"
	[[ -f $archive ]] || { NOTE[lsan]="no libclang_rt.lsan-$arch.a (Debian package libclang-rt-dev)"; return 0; }
	if [[ ! -f $so || $so -ot $archive ]]; then
		log "building $so from $archive"
		rm -rf "$objs" && mkdir -p "$objs"
		(cd "$objs" && ar x "$archive" && rm -f lsan_preinit.cpp.o) || { NOTE[lsan]="cannot unpack $archive"; return 0; }
		cat >"$objs/preload_init.c" <<'EOF'
/* Start LeakSanitizer when the preloaded library is initialised (the
 * static runtime's lsan_preinit.o would do it from .preinit_array). */
void __lsan_init(void);
__attribute__((constructor)) static void lsan_preload_init(void) { __lsan_init(); }
EOF
		if ! "$cc_" -O2 -fPIC -shared -o "$so.tmp" "$objs/preload_init.c" "$objs"/*.o -lpthread -ldl -lrt -lm 2>"$objs/link.err"; then
			NOTE[lsan]="cannot link a preloadable LSan runtime: $(head -1 "$objs/link.err" | cut -c1-120)"
			return 0
		fi
		mv "$so.tmp" "$so"
	fi
	LIB[lsan]=$so
}

# ------------------------------------------------------------------
# Allocators
# ------------------------------------------------------------------
. "$src_dir/bench/workloads/peers.sh"
declare -A LIB NOTE AVAIL
LIB[glibc]=""
for a in jemalloc mimalloc tcmalloc; do LIB[$a]=$(peer_lib $a); done
for a in slabnotify sn+max sn+leaks sn+leaks64 sn+stats sn+nopage; do LIB[$a]=$sn_lib; done
# The launcher puts the drop-in's real path (symbolic links resolved) in LD_PRELOAD.
launcher=$build_dir/tools/slabnotify
sn_real=$(realpath "$sn_lib")
for a in sn+run sn+profile sn+profile512k sn+guard sn+debug; do LIB[$a]=$sn_real; done
HEAPTRACK=$(command -v heaptrack || true)
VALGRIND=$(command -v valgrind || true)
# What the probe looks for in /proc/self/maps of a process run under the tool.
LIB[heaptrack]=libheaptrack_preload.so
LIB[memcheck]=vgpreload_memcheck
for a in "${allocs[@]}"; do
	if [[ $a == lsan ]]; then build_lsan; fi
done
declare -A PREFIX_TEXT=(
	[sn+run]="slabnotify run -- CMD (the launcher alone: what the option columns below share)"
	[sn+profile]="slabnotify run --profile --report /dev/null -- CMD"
	[sn+profile512k]="slabnotify run --profile=512K --report /dev/null -- CMD"
	[sn+guard]="slabnotify run --guard -- CMD"
	[sn+debug]="slabnotify run --debug -- CMD"
)
mkdir -p "$tmp/toolout"

# alloc_env NAME -> ENVARGS (runwait -e/-u options) and PREFIX (the
# command line the workload's command is appended to). The reports of the
# sn+ columns go to a file (not timed differently: the report at exit is
# part of what those options cost); the launcher's --report wins over it.
alloc_env() {
	ENVARGS=()
	PREFIX=()
	case $1 in
	glibc) ENVARGS=(-u LD_PRELOAD) ;;
	sn+max) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e SLABNOTIFY_MAX=64G) ;;
	sn+leaks) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e SLABNOTIFY_LEAKS=1) ;;
	sn+leaks64) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e SLABNOTIFY_LEAKS=64) ;;
	sn+stats) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e SLABNOTIFY_STATPAGE=1) ;;
	sn+nopage) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e SLABNOTIFY_STATPAGE=0) ;;
	sn+run) ENVARGS=(-u LD_PRELOAD); PREFIX=("$launcher" run --) ;;
	sn+profile) ENVARGS=(-u LD_PRELOAD); PREFIX=("$launcher" run --profile --report /dev/null --) ;;
	sn+profile512k) ENVARGS=(-u LD_PRELOAD); PREFIX=("$launcher" run --profile=512K --report /dev/null --) ;;
	sn+guard) ENVARGS=(-u LD_PRELOAD); PREFIX=("$launcher" run --guard --) ;;
	sn+debug) ENVARGS=(-u LD_PRELOAD); PREFIX=("$launcher" run --debug --) ;;
	heaptrack) ENVARGS=(-u LD_PRELOAD); PREFIX=("$HEAPTRACK" -o "$tmp/toolout/heaptrack") ;;
	memcheck) ENVARGS=(-u LD_PRELOAD); PREFIX=("$VALGRIND" --tool=memcheck --leak-check=full) ;;
	lsan) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}" -e LSAN_OPTIONS=exitcode=0) ;;
	*) ENVARGS=(-e "LD_PRELOAD=${LIB[$1]}") ;;
	esac
	case $1 in
	sn+*) ENVARGS+=(-e "SLABNOTIFY_REPORT=$tmp/snreport.%p") ;;
	esac
}

# filter_out NAME FILE: remove what a column's wrapper itself printed on
# the command's stdout, so that the outputs can be compared. The heaptrack
# script echoes three lines before the command starts and a few after it
# ends, on stdout.
filter_out() {
	[[ $1 == heaptrack ]] || return 0
	awk 'NR <= 3 && (/^heaptrack output will be written to "/ || /libheaptrack_preload\.so$/ ||
			/^starting application, this might take some time\.\.\.$/) { next }
		{ line[++n] = $0 }
		/^Heaptrack finished! Now run the following/ { cut = n }
		END { if (cut) n = cut - 1; for (i = 1; i <= n; i++) print line[i] }' "$2" >"$2.f" && mv "$2.f" "$2"
}

# Tools that follow only the first process: in workloads of several
# processes (the gcc driver runs cc1 and as; git is a shell script) their
# cells measure the top process under the tool and its children without.
top_only() { # top_only ALLOC WORKLOAD
	case $1/$2 in
	heaptrack/gcc | heaptrack/git | memcheck/gcc | memcheck/git) return 0 ;;
	esac
	return 1
}

# The first line of a stderr file that is not the slabnotify report title.
first_err() {
	awk '!/^==[0-9]+== slabnotify report/ && NF { print substr($0, 1, 160); exit }' "$1" 2>/dev/null || true
}

# Probe: the library must really be mapped into a process (ld.so only
# warns when it cannot preload), and a process must run and exit cleanly.
# A launcher column whose option the launcher does not know yet (usage
# error, exit status 2, before anything runs) is n/a, and so is sn+stats
# while the drop-in does not read SLABNOTIFY_STATPAGE.
avail_allocs=()
for a in "${allocs[@]}"; do
	if [[ -n ${NOTE[$a]:-} ]]; then
		continue
	fi
	if [[ $a != glibc && -z ${LIB[$a]} ]]; then
		NOTE[$a]="not installed"
		continue
	fi
	if is_launcher_col "$a" && [[ ! -x $launcher ]]; then
		NOTE[$a]="the launcher $launcher is not built"
		continue
	fi
	if [[ $a == heaptrack && -z $HEAPTRACK ]]; then NOTE[$a]="heaptrack not found (Debian package heaptrack)"; continue; fi
	if [[ $a == memcheck && -z $VALGRIND ]]; then NOTE[$a]="valgrind not found (Debian package valgrind)"; continue; fi
	if [[ $a == sn+stats || $a == sn+nopage ]] && ! grep -qaF SLABNOTIFY_STATPAGE "$sn_lib"; then
		NOTE[$a]="the drop-in does not read SLABNOTIFY_STATPAGE (not in this build)"
		continue
	fi
	alloc_env "$a"
	pt=30
	is_tool_col "$a" && pt=$tool_timeout_s
	if ! "$runwait" "${ENVARGS[@]}" -i /dev/null -o "$tmp/probe.out" -E "$tmp/probe.err" -t "$pt" \
		-- "${PREFIX[@]}" cat /proc/self/maps >"$tmp/probe.st" 2>&1; then
		st=$(awk '{ print $NF }' "$tmp/probe.st")
		if is_launcher_col "$a" && [[ $st == exit=2 ]]; then
			NOTE[$a]="the launcher rejects '${PREFIX[*]:2:${#PREFIX[@]}-3}' (exit 2 before running): $(first_err "$tmp/probe.err")"
		else
			NOTE[$a]="probe failed ($st): $(first_err "$tmp/probe.err")"
		fi
		continue
	fi
	filter_out "$a" "$tmp/probe.out"
	if [[ -n ${LIB[$a]} ]] && ! grep -qF "${LIB[$a]}" "$tmp/probe.out"; then
		NOTE[$a]="not loaded: $(first_err "$tmp/probe.err")"
		continue
	fi
	if grep -q 'cannot be preloaded' "$tmp/probe.err"; then
		NOTE[$a]="not loaded: $(first_err "$tmp/probe.err")"
		continue
	fi
	AVAIL[$a]=1
	avail_allocs+=("$a")
done
rm -f "$tmp"/snreport.*
((${#avail_allocs[@]})) || { echo "$prog: no allocator could be run" >&2; exit 1; }

# ------------------------------------------------------------------
# Workloads: setup (once), prep (per run, untimed), command, post
# (extra output that is compared across allocators)
# ------------------------------------------------------------------
declare -A WL_NOTE
PY=$(command -v /usr/bin/python3 || command -v python3 || true)
if [[ -n $PY ]]; then
	# A pyenv shim is a shell script: time the interpreter itself.
	PY=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null || echo "$PY")
fi
PERL=$(command -v perl || true)
SQLITE=$(command -v sqlite3 || true)
GCC=$(command -v gcc || true)
GIT=$(command -v git || true)

# The SQL scripts (bench/workloads/sqlite_sql.sh, shared with rss_bench.sh).
. "$src_dir/bench/workloads/sqlite_sql.sh"
setup_sqlite() { sqlite_sql "$tmp/sqlite.sql"; }
setup_sqlite_blob() { sqlite_blob_sql "$tmp/sqlite_blob.sql"; }
setup_py_chunks() {
	# The input: 32 MiB of fixed content (untimed).
	"$PY" "$wl_src/py_chunks.py" --make "$tmp/py_chunks.bin" 32
}
setup_gcc() {
	# A snapshot of the repo's sources (others may edit src/ meanwhile);
	# the files that compile on their own now are compiled, one gcc
	# command, -O2 -g.
	mkdir -p "$tmp/gcc-src"
	cp -R "$src_dir/include" "$src_dir/src" "$tmp/gcc-src/"
	GCC_FILES=()
	local f
	for f in slab.c notify.c page.c; do
		if [[ -f $tmp/gcc-src/src/$f ]] && (cd "$tmp" && gcc -O2 -g -c -I gcc-src/include -I gcc-src/src \
			"gcc-src/src/$f" -o "$tmp/gcc-probe.o") >/dev/null 2>&1; then
			GCC_FILES+=("$tmp/gcc-src/src/$f")
		fi
	done
	rm -f "$tmp/gcc-probe.o"
	if ((${#GCC_FILES[@]} == 0)); then
		WL_NOTE[gcc]="the repo's src/ does not compile now: compiled the workload sources instead"
		GCC_FILES=("$wl_src/ht_churn.c" "$wl_src/prodcons.c" "$wl_src/realloc_grow.c" "$wl_src/bigbuf.c")
	else
		WL_NOTE[gcc]="gcc -O2 -g -c $(for f in "${GCC_FILES[@]}"; do printf 'src/%s ' "${f##*/}"; done)"
	fi
}
setup_git() {
	# 200 generated text files (1-24 KiB) in 10 directories, and three
	# later versions in which about a third of the files change.
	awk -v root="$tmp/git-src" 'BEGIN {
		srand(11)
		split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", w, " ")
		for (v = 0; v < 4; v++) {
			for (f = 0; f < 200; f++) {
				if (v > 0 && rand() > 0.33) continue
				dir = root "/v" v "/dir" (f % 10)
				system("mkdir -p " dir)
				file = dir "/file" f ".txt"
				n = 20 + int(rand() * 600)
				for (l = 0; l < n; l++) {
					line = sprintf("%d %d:", f, l)
					m = 2 + int(rand() * 8)
					for (k = 0; k < m; k++) line = line " " w[1 + int(rand() * 12)]
					if (v > 0 && rand() < 0.2) line = line " changed in v" v
					print line > file
				}
				close(file)
			}
		}
	}'
}

GIT_SCRIPT='set -e
git init -q
git add -A && git commit -q -m v0
for v in 1 2 3; do
	cp -R "$1/v$v/." .
	git add -A && git commit -q -m "v$v"
done
git -c pack.threads=1 repack -adq -f --window=20 --depth=20
echo "HEAD $(git rev-parse HEAD)"
echo "log $(git log -p --stat | git hash-object --stdin)"
git count-objects -v | grep -E "^(count|in-pack):"
git fsck --no-dangling --no-progress && echo fsck ok'

# wl_cmd NAME RUNDIR -> CMD (argv), WLENV (runwait options)
wl_cmd() {
	local w=$1 run=$2
	WLENV=()
	case $w in
	ht_churn | bintree | prodcons | larson | realloc_grow | bigbuf) CMD=("$bin/$w") ;;
	python) CMD=("$PY" "$wl_src/py_dicts.py"); WLENV=(-e PYTHONHASHSEED=0 -e PYTHONDONTWRITEBYTECODE=1) ;;
	py_chunks) CMD=("$PY" "$wl_src/py_chunks.py" "$tmp/py_chunks.bin"); WLENV=(-e PYTHONHASHSEED=0 -e PYTHONDONTWRITEBYTECODE=1) ;;
	sqlite_blob) CMD=("$SQLITE" -batch "$run/test.db"); WLENV=() ;;
	perl) CMD=("$PERL" "$wl_src/perl_hash.pl"); WLENV=(-e PERL_HASH_SEED=0 -e PERL_PERTURB_KEYS=0) ;;
	sqlite) CMD=("$SQLITE" -batch "$run/test.db"); WLENV=() ;;
	gcc) CMD=("$GCC" -O2 -g -c -I "$tmp/gcc-src/include" -I "$tmp/gcc-src/src" "${GCC_FILES[@]}") ;;
	git)
		CMD=(/bin/sh -c "$GIT_SCRIPT" git-workload "$tmp/git-src")
		WLENV=(-e "HOME=$run" -e GIT_CONFIG_NOSYSTEM=1 -e TZ=UTC -e LC_ALL=C
			-e GIT_AUTHOR_NAME=bench -e GIT_AUTHOR_EMAIL=bench@example.invalid
			-e "GIT_AUTHOR_DATE=1700000000 +0000" -e GIT_COMMITTER_NAME=bench
			-e GIT_COMMITTER_EMAIL=bench@example.invalid -e "GIT_COMMITTER_DATE=1700000000 +0000")
		;;
	esac
}
wl_input() { # the stdin of the command
	case $1 in
	sqlite) echo "$tmp/sqlite.sql" ;;
	sqlite_blob) echo "$tmp/sqlite_blob.sql" ;;
	*) echo /dev/null ;;
	esac
}
wl_prep() {
	local w=$1 run=$2
	case $w in
	git) cp -R "$tmp/git-src/v0/." "$run/" ;;
	esac
}
wl_post() { # extra output to compare
	local w=$1 run=$2
	case $w in
	gcc) (cd "$run" && md5sum -- *.o) ;;
	esac
}

avail_workloads=()
for w in "${workloads[@]}"; do
	case $w in
	python) [[ -n $PY ]] || { WL_NOTE[$w]="skipped: python3 not found"; continue; } ;;
	py_chunks) [[ -n $PY ]] || { WL_NOTE[$w]="skipped: python3 not found"; continue; }; setup_py_chunks ;;
	sqlite_blob) [[ -n $SQLITE ]] || { WL_NOTE[$w]="skipped: sqlite3 not found"; continue; }; setup_sqlite_blob ;;
	perl) [[ -n $PERL ]] || { WL_NOTE[$w]="skipped: perl not found"; continue; } ;;
	sqlite) [[ -n $SQLITE ]] || { WL_NOTE[$w]="skipped: sqlite3 not found"; continue; }; setup_sqlite ;;
	gcc) [[ -n $GCC ]] || { WL_NOTE[$w]="skipped: gcc not found"; continue; }; setup_gcc ;;
	git) [[ -n $GIT ]] || { WL_NOTE[$w]="skipped: git not found"; continue; }; setup_git ;;
	esac
	avail_workloads+=("$w")
done
((${#avail_workloads[@]})) || { echo "$prog: no workload to run" >&2; exit 1; }

# ------------------------------------------------------------------
# The runs
# ------------------------------------------------------------------
results=$tmp/results # workload alloc rep wall_s maxrss_kib cpu_s status signature
: >"$results"
mkdir -p "$tmp/outs" "$tmp/errs"
declare -A DEAD # workload/alloc that timed out: not run again

run_one() { # run_one WORKLOAD ALLOC REP
	local w=$1 a=$2 r=$3 run=$tmp/run st sig
	rm -rf "$run"
	mkdir -p "$run"
	wl_prep "$w" "$run"
	wl_cmd "$w" "$run"
	alloc_env "$a"
	local out=$tmp/outs/$w.$a.$r err=$tmp/errs/$w.$a.$r to=$timeout_s
	is_tool_col "$a" && to=$tool_timeout_s
	st=$("$runwait" "${WLENV[@]}" "${ENVARGS[@]}" -C "$run" -i "$(wl_input "$w")" -o "$out" -E "$err" \
		-t "$to" -- "${PREFIX[@]}" "${CMD[@]}" 2>>"$err" || true)
	[[ -n $st ]] || st="0 0 0 setup-error"
	filter_out "$a" "$out"
	if [[ ${st##* } == ok ]]; then
		wl_post "$w" "$run" >>"$out" 2>>"$err" || true
	fi
	sig=$(md5sum <"$out" | cut -c1-12)
	echo "$w $a $r $st $sig" >>"$results"
	[[ ${st##* } == timeout ]] && DEAD[$w/$a]=1
	rm -rf "$tmp"/snreport.* "$tmp"/toolout/*
	LAST=$st
}

rotate() { # rotate K LIST... -> LIST rotated left by K
	local k=$1
	shift
	local -a l=("$@")
	local n=${#l[@]} i
	for ((i = 0; i < n; i++)); do printf '%s ' "${l[(i + k) % n]}"; done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'; }
load_start=$(loadavg)
start=$SECONDS
log "allocators: ${avail_allocs[*]}; workloads: ${avail_workloads[*]}; $reps reps (slow sn+ columns $leak_reps, tools $tool_reps)"
for ((r = 1; r <= max_reps; r++)); do
	wi=0
	for w in "${avail_workloads[@]}"; do
		read -r -a order <<<"$(rotate $(((r - 1 + wi) % ${#avail_allocs[@]})) "${avail_allocs[@]}")"
		line="[rep $r/$max_reps $((SECONDS - start))s] $w:"
		for a in "${order[@]}"; do
			if is_tool_col "$a"; then
				((r <= tool_reps)) || continue
			elif ((r > reps)) || { is_leak_col "$a" && ((r > leak_reps)); }; then
				continue
			fi
			if [[ -n ${DEAD[$w/$a]:-} ]]; then continue; fi
			run_one "$w" "$a" "$r"
			read -r t _ _ s <<<"$LAST"
			[[ $s == ok ]] && line+=" $a=$t" || line+=" $a=$s"
		done
		log "$line"
		wi=$((wi + 1))
	done
done
elapsed=$((SECONDS - start))
load_end=$(loadavg)

# Keep one stderr line of each failed cell, and the mismatching outputs.
notes=$tmp/notes
: >"$notes"
for w in "${avail_workloads[@]}"; do
	ref=""
	refa=""
	for a in glibc "${avail_allocs[@]}"; do
		[[ -n ${AVAIL[$a]:-} ]] || continue
		ref=$(awk -v w="$w" -v a="$a" '$1 == w && $2 == a && $7 == "ok" { print $8; exit }' "$results")
		[[ -n $ref ]] && { refa=$a; break; }
	done
	echo "REF $w $refa $ref" >>"$notes"
	while read -r _ a r _ _ _ st sig; do
		if [[ $st != ok ]]; then
			msg=$(first_err "$tmp/errs/$w.$a.$r")
			echo "FAIL $w $a $r $st ${msg:-(no message)}" >>"$notes"
		elif [[ -n $ref && $sig != "$ref" ]]; then
			reffile=$(awk -v w="$w" -v a="$refa" '$1 == w && $2 == a && $7 == "ok" { print $3; exit }' "$results")
			d=$(diff "$tmp/outs/$w.$refa.$reffile" "$tmp/outs/$w.$a.$r" | grep '^[<>]' | head -2 | tr '\n' ' ' | cut -c1-200 || true)
			echo "MISMATCH $w $a $r $d" >>"$notes"
		fi
	done < <(awk -v w="$w" '$1 == w' "$results")
done

# ------------------------------------------------------------------
# Report
# ------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
{
	echo "H date $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "H machine $(uname -m), ${cpu_model:-unknown CPU}, nproc $(nproc), $(uname -sr)"
	echo "H command $cmdline"
	echo "H slabnotify $sn_lib ($(cd "$src_dir" && git describe --always --dirty 2>/dev/null || echo 'no git'))"
	echo "H glibc $(getconf GNU_LIBC_VERSION 2>/dev/null || echo glibc)"
	for a in "${allocs[@]}"; do
		if [[ -n ${AVAIL[$a]:-} ]]; then
			case $a in
			glibc) echo "A $a no LD_PRELOAD" ;;
			sn+max) echo "A $a slabnotify, SLABNOTIFY_MAX=64G (accounting on, never hit)" ;;
			sn+leaks) echo "A $a slabnotify, SLABNOTIFY_LEAKS=1 (a stack for every live object)" ;;
			sn+leaks64) echo "A $a slabnotify, SLABNOTIFY_LEAKS=64 (sampling 1 in 64)" ;;
			sn+stats) echo "A $a slabnotify, SLABNOTIFY_STATPAGE=1 (the live statistics page)" ;;
			sn+nopage) echo "A $a slabnotify, SLABNOTIFY_STATPAGE=0 (no live statistics page; the drop-in's default publishes one)" ;;
			sn+run | sn+profile | sn+profile512k | sn+guard | sn+debug)
				echo "A $a ${PREFIX_TEXT[$a]}" ;;
			heaptrack) echo "A $a heaptrack -o FILE CMD ($("$HEAPTRACK" --version 2>/dev/null | head -1))" ;;
			memcheck) echo "A $a valgrind --tool=memcheck --leak-check=full CMD ($("$VALGRIND" --version 2>/dev/null))" ;;
			lsan) echo "A $a LD_PRELOAD=${LIB[$a]}, LSAN_OPTIONS=exitcode=0 (LeakSanitizer, report at exit)" ;;
			*) echo "A $a ${LIB[$a]}" ;;
			esac
		else
			echo "A $a n/a: ${NOTE[$a]}"
		fi
	done
	slow=""
	for a in "${allocs[@]}"; do is_leak_col "$a" && slow+="${slow:+, }$a"; done
	tl=""
	for a in "${allocs[@]}"; do is_tool_col "$a" && tl+="${tl:+, }$a"; done
	echo "H runs $reps repetition$( ((reps == 1)) || echo s)${slow:+ ($slow: $leak_reps)}${tl:+; tools ($tl): $tool_reps, timeout ${tool_timeout_s}s}; interleaved, rotating order; timeout ${timeout_s}s; $elapsed s in all"
	echo "H load load average $load_start at the start, $load_end at the end"
	for w in "${avail_workloads[@]}"; do echo "W $w ${WL_NOTE[$w]:-}"; done
	for w in "${workloads[@]}"; do
		case " ${avail_workloads[*]} " in *" $w "*) ;; *) echo "N $w ${WL_NOTE[$w]:-skipped}" ;; esac
	done
	for w in "${avail_workloads[@]}"; do
		for a in "${allocs[@]}"; do
			if top_only "$a" "$w"; then echo "TOP $w $a"; fi
		done
	done
	cat "$notes"
	echo "R"
	cat "$results"
} | awk -v md="$markdown" -v allocs="${allocs[*]}" -v peers="${PEERS[*]}" -v tools="${TOOL_ALLOCS[*]}" \
	-f "$src_dir/bench/workloads/report.awk"
