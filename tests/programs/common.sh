# common.sh - sourced by tests/test_cli.sh and tests/test_preload_programs.sh.
# Usage: . common.sh after setting BUILD and SRC (absolute paths).
# Gives: TOOL, PRELOAD, TMP (removed at exit), SANITIZED, PYTHON,
# ok/bad/skip to count results, compile_fixture, and finish.

TOOL=$BUILD/tools/slabnotify
PRELOAD=$BUILD/src/libslabnotify-malloc.so
PROGRAMS=$SRC/tests/programs
PASSED=0
FAILED=0
FAILED_NAMES=()

TMP=$(mktemp -d "${TMPDIR:-/tmp}/slabnotify-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# A sanitizer build cannot preload its drop-in into other programs: the
# sanitizer runtime must come first and replaces malloc itself.
SANITIZED=$(sed -n 's/^SLABNOTIFY_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)

# The Debian package's python3, not a version-manager shim (a shell
# script that would run under the drop-in too, slowly).
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
else PYTHON=$(command -v python3 || true); fi

ok()   { PASSED=$((PASSED + 1)); echo "ok: $1"; }
bad()  { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); echo "FAIL: $1${2:+: $2}"; }
skip() { echo "SKIP: $1"; }

# check NAME CONDITION-COMMAND... : ok if the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

# compile_fixture NAME [CFLAGS...]: tests/programs/NAME.c -> $TMP/NAME
compile_fixture() {
	local name=$1
	shift
	${CC:-cc} -O1 -g -fno-omit-frame-pointer -Wall "$@" -o "$TMP/$name" \
		"$PROGRAMS/$name.c" || { bad "compile $name"; return 1; }
}

# Show a file's head when a check fails, indented.
show() { sed -n '1,40s/^/    | /p' "$@" 2>/dev/null; }

finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ] || { printf '  failed: %s\n' "${FAILED_NAMES[@]}"; exit 1; }
	exit 0
}
