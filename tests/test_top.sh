#!/bin/bash
# test_top.sh BUILD SRC - `slabnotify top` driven in tmux (80x24): the
# caches and the summary shown, slabtop's sort keys, q quitting with the
# terminal restored, SIGTERM likewise, the process list without PID.
set -u
BUILD=$(cd "${1:?usage: test_top.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_top.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "top: $SANITIZED sanitizer build (the drop-in cannot be preloaded)"
	finish
fi
command -v tmux >/dev/null || { bad "top: no tmux (scripts/install-deps.sh)"; finish; }
. "$SRC/tests/programs/live.sh"

# A tmux server of this test only.
TM=(tmux -S "$TMP/tmux.sock" -f /dev/null)
trap '"${TM[@]}" kill-server 2>/dev/null; rm -rf "$TMP"' EXIT
# A session that outlives the others: killing the last session stops the
# server, and a new-session racing with that exit fails ("server exited
# unexpectedly"), as it did under load in CI.
"${TM[@]}" new-session -d -s keep "sleep 600"
screen() { "${TM[@]}" capture-pane -p -t top >"$TMP/screen"; }
# wait_for REGEX: until the screen shows it (10 s at most).
wait_for() {
	for _ in $(seq 100); do
		screen
		grep -Eq "$1" "$TMP/screen" && return 0
		sleep 0.1
	done
	return 1
}
# run_top ARGS...: top in an 80x24 pane; afterwards the pane prints its
# exit status and whether the terminal is sane again (icanon, echo).
run_top() {
	"${TM[@]}" kill-session -t top 2>/dev/null
	"${TM[@]}" new-session -d -s top -x 80 -y 24 \
		"SLABNOTIFY_STAT_DIR='$SLABNOTIFY_STAT_DIR' '$TOOL' top $*; echo EXIT=\$?; echo TTY: \$(stty -a | tr ' ;' '\n\n' | grep -Ex -- '-?(icanon|echo)'); sleep 30"
}

expect_exit "top: no such process (exit 3)" 3 "no such process" "$TOOL" top "$(sh -c 'echo $$')"
expect_exit "top: not a pid (exit 2)" 2 "not a process id" "$TOOL" top x1

start top --max 8M
ask "a 3000 300"
ask "a 40 2000"
run_top "$PID"
check "top shows the summary" wait_for "slabnotify top - $PID alloc_on_demand$"
# Each part of the frame waited for, not read from the first screen
# that shows the summary: that capture can catch the frame half drawn
# (in CI the cache rows were missing once while the lines above were
# there).
check "top shows the heap and vetoes" wait_for "Heap: .* in use"
check "top shows the root group" wait_for "group / +usage"
check "top shows the caches" wait_for " kmalloc-cg-3k$"
check "fits 80 columns" [ "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$TMP/screen")" -le 80 ]
# Sorted by objects (slabtop's default), then by object size.
first_row() { awk '/OBJS ACTIVE/ { getline; print $NF; exit }' "$TMP/screen"; }
"${TM[@]}" send-keys -t top s
check "key s: sorted by object size" wait_for "OBJS ACTIVE"
sleep 0.3; screen
sizes=$(awk '/OBJS ACTIVE/ { on = 1; next } on && /K / { sub("K", "", $4); print $4 }' "$TMP/screen" | head -5)
check "key s: the largest objects first ($(echo $sizes))" bash -c 'sort -rn -c <<<"$1"' _ "$sizes"
"${TM[@]}" send-keys -t top n
sleep 0.3; screen
names=$(awk '/OBJS ACTIVE/ { on = 1; next } on && /K / { print $NF }' "$TMP/screen" | head -5)
check "key n: sorted by name" bash -c 'LC_ALL=C sort -c <<<"$1"' _ "$names"
"${TM[@]}" send-keys -t top q
check "q quits with status 0" wait_for "^EXIT=0"
check "terminal restored after q (icanon echo)" wait_for "^TTY: icanon echo$"

# SIGTERM: the terminal restored too.
run_top "$PID"
wait_for "OBJS ACTIVE" >/dev/null
TOP_PID=$(pgrep -f "slabnotify top $PID" | head -1)
kill -TERM "$TOP_PID"
check "SIGTERM: exits 143" wait_for "^EXIT=143"
check "terminal restored after SIGTERM" wait_for "^TTY: icanon echo$"

# Without PID: one line per process, Enter opens one.
run_top
check "the process list shows the fixture" wait_for "^ +$PID .* alloc_on_demand$"
"${TM[@]}" send-keys -t top Enter
check "Enter opens it" wait_for "slabnotify top - $PID"
"${TM[@]}" send-keys -t top q
check "q quits from there" wait_for "^EXIT=0"
stop
finish
