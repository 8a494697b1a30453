#!/bin/bash
# test_pictures.sh BUILD SRC - the profile's pictures: --folded (the
# format flamegraph.pl reads, the peak's owner with its bytes),
# --flamegraph and --timeline (well-formed SVG; zoom on click and search
# work in a real browser), --html (one page that loads from disk in
# headless chromium with no console errors; its screenshot shows the
# timeline's curve and the flame graph), with --leaks the leaks' stacks,
# and an unwritable picture costs one line, not the program's status.
set -u
BUILD=$(cd "${1:?usage: test_pictures.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_pictures.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "the drop-in cannot be preloaded in a $SANITIZED build"
	finish
fi
compile_fixture profile_cases || finish
T="timeout 60"
$T "$TOOL" run --profile --folded "$TMP/p.folded" --flamegraph "$TMP/fg.svg" --timeline "$TMP/tl.svg" \
	--html "$TMP/p.html" --report "$TMP/r.txt" -- "$TMP/profile_cases" pattern
check "folded: every line is frame;...;leaf BYTES" bash -c '[ -s "$1" ] && ! grep -Ev "^[^;]+(;[^;]+)* [0-9]+$" "$1"' _ "$TMP/p.folded"
check "folded: main;peak_owner_fn 8388608" grep -q ';main;peak_owner_fn 8388608$' "$TMP/p.folded"
for f in fg.svg tl.svg; do
	check "$f is well-formed XML" "$PYTHON" -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$TMP/$f"
done
check "timeline: the peak is marked with its top consumer" grep -q 'class="peak-label".*peak 8.1 MiB at .*: peak_owner_fn' "$TMP/tl.svg"
check "flame graph: a frame per function, with its bytes" grep -q '<title>peak_owner_fn (8388608 bytes' "$TMP/fg.svg"

$T "$TOOL" run --leaks --folded "$TMP/l.folded" --flamegraph "$TMP/lfg.svg" -- "$TMP/profile_cases" pattern 2>/dev/null
check "--leaks --folded: the leaks' stacks" bash -c 'grep -q ";main;pattern;leak_fn 900$\|;main;leak_fn 900$" "$1" && ! grep -q peak_owner_fn "$1"' _ "$TMP/l.folded"

$T "$TOOL" run --profile --html /nonexistent/dir/p.html --report "$TMP/bad.txt" -- "$TMP/profile_cases" ten >/dev/null; rc=$?
check "unwritable --html: the program's status kept" [ "$rc" -eq 0 ]
check "unwritable --html: one line says so" [ "$(grep -c 'cannot write the HTML report to /nonexistent/dir/p.html' "$TMP/bad.txt")" = 1 ]

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	skip "no chromium: the pictures are not tried in a browser"
	finish
fi
browse() {   # browse URL OUT.dom LOG [extra flags]
	local url=$1 dom=$2 log=$3
	shift 3
	HOME=$TMP timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
		--user-data-dir="$TMP/chromium" --enable-logging=stderr --v=0 "$@" "$url" >"$dom" 2>"$log"
}
no_console_errors() { ! grep -Eiq 'Uncaught|:CONSOLE[^]]*\] "(Error|TypeError|ReferenceError|SyntaxError)' "$1"; }

browse "file://$TMP/fg.svg#zoom=peak_owner_fn" "$TMP/fg.dom" "$TMP/fg.log" --dump-dom
check "flame graph in chromium: no console errors" no_console_errors "$TMP/fg.log"
check "flame graph: labels fitted by its script" grep -q '<text x="[0-9.]*" y="[0-9]*">main</text>' "$TMP/fg.dom"
check "flame graph: zoom on click widens the frame to the whole width" \
	grep -q 'data-l="peak_owner_fn".*<rect x="0" y="[0-9]*" width="1200"' "$TMP/fg.dom"
browse "file://$TMP/fg.svg#search=^peak_owner" "$TMP/fgs.dom" "$TMP/fgs.log" --dump-dom
check "flame graph: search highlights the matching frame" grep -q 'fg-info[^>]*>1 frames match ^peak_owner<' "$TMP/fgs.dom"

browse "file://$TMP/p.html" "$TMP/p.dom" "$TMP/p.log" --dump-dom
check "HTML page in chromium: no console errors" no_console_errors "$TMP/p.log"
check "HTML page: the timeline, two flame graphs and four tables" bash -c \
	'grep -q "<svg class=\"timeline\"" "$1" && [ "$(grep -o "class=\"flamegraph\"" "$1" | wc -l)" = 2 ] && [ "$(grep -o "<table>" "$1" | wc -l)" = 4 ]' _ "$TMP/p.dom"
check "HTML page: needs no network (no http(s) resources)" bash -c '! grep -Eq "(src|href)=\"https?:" "$1"' _ "$TMP/p.html"
browse "file://$TMP/p.html" /dev/null "$TMP/shot.log" --window-size=1300,1400 --screenshot="$TMP/p.png"
colors=$("$PYTHON" "$SRC/tests/tools/png_colors.py" "$TMP/p.png" 2>&1)
check "HTML screenshot shows the heap curve and the flame graph ($colors)" bash -c \
	'[[ $1 =~ heap=([0-9]+)\ flame=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 30 ] && [ "${BASH_REMATCH[2]}" -gt 20000 ]' _ "$colors"
finish
