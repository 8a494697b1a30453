#!/bin/bash
# test_cli.sh BUILD SRC - the `slabnotify` command, end to end.
#
# Usage errors (exit 2, nothing run), --help against the man page, exit
# statuses, the environment it sets, and what the drop-in then does for
# the command: the cap (python3 gets MemoryError), fault injection that
# repeats with its seed, the leak report, one report per process, the
# demo, and a malformed variable reported once.
set -u
BUILD=$(cd "${1:?usage: test_cli.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_cli.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

[ -x "$TOOL" ] || { echo "FAIL: no $TOOL"; exit 1; }
T="timeout 300"

# `slabnotify run` starts once per command it runs: it loads neither
# ncurses nor libmicrohttpd (GnuTLS and a dozen more, ~1.5 ms a start),
# which only `top` and `exporter` use, as programs of their own.
if command -v objdump >/dev/null; then
	check "slabnotify has no DT_NEEDED on libmicrohttpd, GnuTLS or ncurses" \
		bash -c '! objdump -p "$1" | grep NEEDED | grep -Eq "microhttpd|gnutls|ncurses|tinfo"' _ "$TOOL"
else
	skip "no objdump: DT_NEEDED not checked"
fi
check "slabnotify top and exporter are their own programs, next to slabnotify" \
	test -x "$BUILD/tools/slabnotify-top" -a -x "$BUILD/tools/slabnotify-exporter"

# ------------------------------------------------------------------
# Usage errors: exit 2 with a message, and CMD never started.

usage_error() {
	local name=$1
	shift
	rm -f "$TMP/ran"
	$T "$TOOL" "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	if [ "$rc" -eq 2 ] && [ ! -e "$TMP/ran" ] && grep -q 'usage:' "$TMP/err"; then
		ok "usage error: $name"
	else
		bad "usage error: $name" "exit $rc, ran=$([ -e "$TMP/ran" ] && echo yes || echo no)"
		show "$TMP/err"
	fi
}
RAN=(touch "$TMP/ran")
usage_error "bad size 12Q"          run --max 12Q -- "${RAN[@]}"
usage_error "unknown option"        run --bogus -- "${RAN[@]}"
usage_error "missing --"            run --max 1M "${RAN[@]}"
usage_error "missing CMD"           run --max 1M --
usage_error "missing value"         run --max
usage_error "probability 150"       run --fail-probability 150 -- "${RAN[@]}"
usage_error "negative interval"     run --fail-interval -3 -- "${RAN[@]}"
usage_error "leaks=0"               run --leaks=0 -- "${RAN[@]}"
usage_error "flag with a value"     run --stats=yes -- "${RAN[@]}"
usage_error "bad seed"              run --fail-probability 1 --seed -1 -- "${RAN[@]}"
usage_error "no subcommand"
usage_error "unknown subcommand"    frobnicate
usage_error "demo with a command"   demo -- "${RAN[@]}"

# ------------------------------------------------------------------
# --help, help and the man page agree.

"$TOOL" --help >"$TMP/help" 2>&1; rc=$?
"$TOOL" help >"$TMP/help2" 2>&1
check "--help exits 0" [ "$rc" -eq 0 ]
check "help = --help" cmp -s "$TMP/help" "$TMP/help2"
check "--version" bash -c '"$1" --version | grep -Eq "^slabnotify [0-9]+\.[0-9]+"' _ "$TOOL"

MAN=$SRC/docs/slabnotify.1
# troff to text, enough to find the options: \- is -, drop font escapes.
man_text() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f([A-Z][A-Z]//g' -e 's/\\&//g' "$MAN"; }
long_opts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
if [ -f "$MAN" ]; then
	long_opts <"$TMP/help" >"$TMP/help.opts"
	man_text | long_opts >"$TMP/man.opts"
	if diff "$TMP/help.opts" "$TMP/man.opts" >"$TMP/opts.diff"; then
		ok "--help and the man page list the same $(wc -l <"$TMP/help.opts") options"
	else
		bad "--help vs man page options" "< only in --help, > only in the man page"
		show "$TMP/opts.diff"
	fi
	missing=""
	for v in $(grep -o '"SLABNOTIFY_[A-Z_]*"' "$SRC/src/options.h" | tr -d '"') SLABNOTIFY_PRELOAD; do
		man_text | grep -q "$v" || missing="$missing $v"
	done
	check "man page documents every variable${missing:+ (missing:$missing)}" [ -z "$missing" ]
	for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS ENVIRONMENT "EXIT STATUS" EXAMPLES NOTES "SEE ALSO"; do
		grep -Eq "^\.SH \"?$s\"?\$" "$MAN" || missing="$missing $s"
	done
	check "man page sections${missing:+ (missing:$missing)}" [ -z "$missing" ]
else
	bad "man page" "no $MAN"
fi

# ------------------------------------------------------------------
# Everything below runs programs on the drop-in.

if [ -n "$SANITIZED" ]; then
	skip "running programs on the drop-in: $SANITIZED sanitizer build (its runtime must load first and replaces malloc)"
	finish
fi
if [ ! -f "$PRELOAD" ]; then
	bad "drop-in" "no $PRELOAD"
	finish
fi

# Exit statuses: CMD's own, 127 not found, 126 not executable, 125 no drop-in.
status_is() {
	local want=$1 name=$2
	shift 2
	$T "$TOOL" run -- "$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok "$name: exit $want"
	else bad "$name" "exit $rc, want $want"; show "$TMP/err"; fi
}
status_is 0 "run -- true" true
status_is 1 "run -- false" false
status_is 7 "run -- sh -c 'exit 7'" sh -c 'exit 7'
status_is 127 "command not found" "$TMP/no-such-command"
check "command not found says so" grep -q "command not found" "$TMP/err"
printf 'data\n' >"$TMP/not-executable"
status_is 126 "not executable" "$TMP/not-executable"
SLABNOTIFY_PRELOAD=$TMP/missing.so $T "$TOOL" run -- true 2>"$TMP/err"; rc=$?
check "missing SLABNOTIFY_PRELOAD: exit 125 naming it" \
	bash -c '[ "$1" -eq 125 ] && grep -q SLABNOTIFY_PRELOAD "$2"' _ "$rc" "$TMP/err"
SLABNOTIFY_PRELOAD=$PRELOAD $T "$TOOL" run -- sh -c 'exit 3'; rc=$?
check "SLABNOTIFY_PRELOAD is used" [ "$rc" -eq 3 ]

# The options become variables (SLABNOTIFY_SEED defaults to 1 with
# --fail-*); probability 0 so that `env` itself is never failed.
$T "$TOOL" run --max 64M --high 1.5G --fail-probability 0 --fail-interval 3 \
	--fail-times -1 --fail-space 1K --fail-min-size 64 --fail-cache kmalloc- \
	--leaks=4 --stats --json --report "$TMP/env-report.%p" -- env >"$TMP/env" 2>"$TMP/err"
grep '^SLABNOTIFY_' "$TMP/env" | grep -v '^SLABNOTIFY_LAUNCHER=' | sort >"$TMP/env.got"
check "the launcher waits: SLABNOTIFY_LAUNCHER=pid:fd" grep -Eq '^SLABNOTIFY_LAUNCHER=[0-9]+:[0-9]+$' "$TMP/env"
sort >"$TMP/env.want" <<EOF
SLABNOTIFY_FAIL_CACHE=kmalloc-
SLABNOTIFY_FAIL_INTERVAL=3
SLABNOTIFY_FAIL_MIN_SIZE=64
SLABNOTIFY_FAIL_PROBABILITY=0
SLABNOTIFY_FAIL_SPACE=1K
SLABNOTIFY_FAIL_TIMES=-1
SLABNOTIFY_HIGH=1.5G
SLABNOTIFY_JSON=1
SLABNOTIFY_LEAKS=4
SLABNOTIFY_MAX=64M
SLABNOTIFY_REPORT=$TMP/env-report.%p
SLABNOTIFY_SEED=1
SLABNOTIFY_STATS=1
EOF
if diff "$TMP/env.want" "$TMP/env.got" >"$TMP/env.diff"; then ok "options set the SLABNOTIFY_* variables"
else bad "options -> variables"; show "$TMP/env.diff" "$TMP/err"; fi
got=$($T "$TOOL" run --leaks -- sh -c 'echo "$SLABNOTIFY_LEAKS"' 2>/dev/null)
check "--leaks alone samples 1" [ "$got" = 1 ]

# LD_PRELOAD: prepended to what was there, and not doubled when nested.
printf 'int slabnotify_test_empty;\n' >"$TMP/empty.c"
${CC:-cc} -shared -fPIC -o "$TMP/libempty.so" "$TMP/empty.c"
REAL_PRELOAD=$(readlink -f "$PRELOAD")
got=$(LD_PRELOAD=$TMP/libempty.so $T "$TOOL" run -- "$TOOL" run -- sh -c 'echo "$LD_PRELOAD"')
check "LD_PRELOAD prepended once ($got)" [ "$got" = "$REAL_PRELOAD:$TMP/libempty.so" ]

# ------------------------------------------------------------------
# The drop-in is really serving the command.

compile_fixture preload_check
plain=$("$TMP/preload_check")
under=$($T "$TOOL" run -- "$TMP/preload_check")
check "drop-in in effect: $under (plain: $plain)" [ "$under" = "usable=112 maps=1" ]

# A malformed variable: reported once, naming it; the program runs.
# (env sets them past timeout, which would otherwise warn as well)
out=$($T env SLABNOTIFY_MAX=abc LD_PRELOAD="$PRELOAD" /bin/echo ran 2>"$TMP/err")
lines=$(wc -l <"$TMP/err")
if [ "$out" = ran ] && [ "$lines" -eq 1 ] && grep -q SLABNOTIFY_MAX "$TMP/err"; then
	ok "malformed SLABNOTIFY_MAX: one line on stderr, program ran"
else
	bad "malformed SLABNOTIFY_MAX" "stdout '$out', $lines stderr lines"; show "$TMP/err"
fi

# One report per process, %p being each one's pid: the parent, a child
# that exits, a child that execs /bin/true.
compile_fixture fork_exec
mkdir "$TMP/rep"
if $T "$TOOL" run --stats --report "$TMP/rep/r.%p.txt" -- "$TMP/fork_exec" >"$TMP/pids" 2>"$TMP/err"; then
	want=$(sed 's/.*/r.&.txt/' "$TMP/pids" | sort | tr '\n' ' ')
	got=$(cd "$TMP/rep" && ls | sort | tr '\n' ' ')
	empty=$(find "$TMP/rep" -type f -empty | wc -l)
	check "--report r.%p.txt: one per process ($got)" [ "$want" = "$got" -a "$empty" -eq 0 ]
else
	bad "--report with fork/exec" "fixture failed"; show "$TMP/err"
fi

# JSON report: valid JSON.
if [ -n "$PYTHON" ]; then
	$T "$TOOL" run --stats --leaks --json --report "$TMP/report.json" -- true
	check "--json report parses" "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/report.json"
fi

# The cap: python3 gets MemoryError, catches it and goes on (no kill,
# no crash). Bounded, in case the cap is not in effect.
if [ -n "$PYTHON" ]; then
	read -r -d '' PY <<'EOF'
chunks = []
try:
    for _ in range(1024):
        chunks.append(bytearray(1 << 20))
    print("no MemoryError after 1 GiB")
except MemoryError:
    chunks = None
    print("caught MemoryError")
EOF
	out=$($T "$TOOL" run --max 64M -- "$PYTHON" -c "$PY" 2>"$TMP/err"); rc=$?
	if [ "$rc" -eq 0 ] && [ "$out" = "caught MemoryError" ]; then ok "--max 64M: python3 caught MemoryError"
	else bad "--max 64M python3" "exit $rc, stdout '$out'"; show "$TMP/err"; fi
	# Small objects: Python's own allocator, whose arenas it maps itself.
	# The cap covers that memory too: MemoryError before 80 MiB of RSS
	# (before --max charged the program's mappings: at 281 MB).
	read -r -d '' PY <<'EOF'
import resource
try:
    x = [str(i) for i in range(20_000_000)]
    print("no MemoryError")
except MemoryError:
    x = None
    print("MemoryError at", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")
EOF
	out=$($T "$TOOL" run --max 64M -- "$PYTHON" -c "$PY" 2>"$TMP/err"); rc=$?
	mib=$(echo "$out" | sed -n 's/^MemoryError at \([0-9]*\) MiB$/\1/p')
	if [ "$rc" -eq 0 ] && [ -n "$mib" ] && [ "$mib" -lt 80 ]; then ok "--max 64M: pymalloc's arenas capped, MemoryError at $mib MiB of RSS"
	else bad "--max 64M, pymalloc" "exit $rc, stdout '$out'"; show "$TMP/err"; fi
	# --high only counts: 47 MiB past a 10 MiB soft limit, in 4 KiB
	# blocks, takes as long as without it (it once slept 2 s a block).
	start=$(date +%s)
	out=$($T "$TOOL" run --high 10M -- "$PYTHON" -c 'x = [bytearray(4096) for _ in range(12000)]; print("done")' 2>"$TMP/err"); rc=$?
	took=$(( $(date +%s) - start ))
	if [ "$rc" -eq 0 ] && [ "$out" = done ] && [ "$took" -lt 20 ]; then ok "--high 10M: 47 MiB past it in ${took}s, not throttled"
	else bad "--high 10M" "exit $rc, ${took}s, stdout '$out'"; show "$TMP/err"; fi
else
	skip "--max with python3: python3 not installed"
fi
# g++'s garbage-collected memory is its own mappings too: under the cap
# a heavy file fails with g++'s own message (plainly it takes ~360 MB).
if command -v g++ >/dev/null && [ -n "$PYTHON" ]; then
	"$PYTHON" -c 'print("int a[] = {" + ",".join(map(str, range(1500000))) + "};")' >"$TMP/heavy.cc"
	$T "$TOOL" run --max 64M -- g++ -c -o "$TMP/heavy.o" "$TMP/heavy.cc" >/dev/null 2>"$TMP/err"; rc=$?
	if [ "$rc" -ne 0 ] && grep -Eq "virtual memory exhausted|out of memory" "$TMP/err"; then
		ok "--max 64M: g++ fails with its own out-of-memory message"
	else bad "--max 64M, g++" "exit $rc"; show "$TMP/err"; fi
else
	skip "--max with g++: g++ or python3 not installed"
fi

# The leak report names the function that leaked.
compile_fixture leak
out=$($T "$TOOL" run --leaks -- "$TMP/leak" 2>"$TMP/err"); rc=$?
if [ "$rc" -eq 0 ] && [ "$out" = "leaked 16 blocks" ] && grep -q fixture_leaky_loader "$TMP/err"; then
	ok "--leaks names fixture_leaky_loader"
else
	bad "--leaks report" "exit $rc, stdout '$out'"; show "$TMP/err"
fi

# Fault injection repeats with its seed and changes with another.
compile_fixture fail_indices
fail_run() { $T "$TOOL" run --fail-probability 10 "$@" -- "$TMP/fail_indices" 2>/dev/null; }
s42a=$(fail_run --seed 42); s42b=$(fail_run --seed 42); s43=$(fail_run --seed 43)
s1=$(fail_run --seed 1); sdef=$(fail_run)
summary() { tail -n 1 <<<"$1"; }
check "--fail-probability 10 fails some ($(summary "$s42a"))" \
	bash -c '[[ "$1" =~ failed\ ([0-9]+)\ of ]] && [ "${BASH_REMATCH[1]}" -gt 50 ] && [ "${BASH_REMATCH[1]}" -lt 400 ]' _ "$s42a"
check "--seed 42 twice: same failures" [ -n "$s42a" -a "$s42a" = "$s42b" ]
check "--seed 43: other failures" [ -n "$s43" -a "$s42a" != "$s43" ]
check "no --seed means seed 1" [ -n "$sdef" -a "$sdef" = "$s1" ]

# The demo: the veto, the leak's stack and the slabinfo table.
$T "$TOOL" demo >"$TMP/demo.out" 2>"$TMP/demo.err"; rc=$?
check "demo exits 0" [ "$rc" -eq 0 ]
check "demo: malloc returned NULL, ENOMEM" grep -q 'returned NULL.*ENOMEM' "$TMP/demo.out"
check "demo report: a veto counted" grep -qi 'veto' "$TMP/demo.err"
check "demo report: leak stack names leaky_config_parser" grep -q 'leaky_config_parser' "$TMP/demo.err"
check "demo report: slabinfo table" grep -q 'slabinfo - version: 2.1' "$TMP/demo.err"
[ "$FAILED" -eq 0 ] || { echo "--- demo stdout"; show "$TMP/demo.out"; echo "--- demo stderr"; show "$TMP/demo.err"; }

finish
