# live.sh - sourced by the tests of the commands on running processes
# (test_live.sh, test_exporter.sh, test_top.sh) after common.sh: their
# pages in a directory of their own, the fixture alloc_on_demand driven
# through fifos, and expect_exit.
export SLABNOTIFY_STAT_DIR=$TMP/pages
compile_fixture alloc_on_demand || finish
AOD=$TMP/alloc_on_demand
T="timeout 60"

# start NAME [RUN OPTIONS...]: the fixture on the drop-in, fd 7 to its
# stdin, fd 8 from its stdout; sets PID (the program's, not the launcher's).
start() {
	local name=$1
	shift
	rm -f "$TMP/in" "$TMP/out"
	mkfifo "$TMP/in" "$TMP/out"
	"$TOOL" run "$@" -- "$AOD" <"$TMP/in" >"$TMP/out" 2>"$TMP/$name.err" &
	LAUNCHER=$!
	exec 7>"$TMP/in" 8<"$TMP/out"
	PID=
	for _ in $(seq 100); do
		PID=$(pgrep -P "$LAUNCHER" -x alloc_on_demand) && [ -e "$SLABNOTIFY_STAT_DIR/$PID" ] && break
		sleep 0.05
	done
}
# ask CMD: one command, one answer in REPLY.
ask() { echo "$1" >&7; REPLY=; read -r -t 20 REPLY <&8; }
stop() { ask q; exec 7>&- 8<&-; wait "$LAUNCHER"; }

# expect_exit NAME STATUS MESSAGE-REGEX CMD...: the status, one line on stderr.
expect_exit() {
	local name=$1 want=$2 re=$3
	shift 3
	$T "$@" >"$TMP/o" 2>"$TMP/e"
	local rc=$?
	# Usage errors add the synopsis after their line; the others are one line.
	if [ "$rc" -eq "$want" ] && { [ "$want" -eq 2 ] || [ "$(wc -l <"$TMP/e")" -eq 1 ]; } &&
	   head -1 "$TMP/e" | grep -Eq "$re"; then
		ok "$name"
	else
		bad "$name" "exit $rc (want $want)"
		show "$TMP/e"
	fi
}

same() { [ -n "$1" ] && [ "$1" = "$2" ]; }
