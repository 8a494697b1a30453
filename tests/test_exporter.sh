#!/bin/bash
# test_exporter.sh BUILD SRC - `slabnotify exporter`: scraped with curl on
# 127.0.0.1 and checked by promtool, malformed requests answered with 4xx,
# processes that come and go during scrapes.
set -u
BUILD=$(cd "${1:?usage: test_exporter.sh BUILD SRC}" && pwd)
SRC=$(cd "${2:?usage: test_exporter.sh BUILD SRC}" && pwd)
. "$SRC/tests/programs/common.sh"

if [ -n "$SANITIZED" ]; then
	skip "exporter: $SANITIZED sanitizer build (the drop-in cannot be preloaded)"
	finish
fi
for tool in curl promtool; do
	command -v "$tool" >/dev/null || { bad "exporter: no $tool (scripts/install-deps.sh)"; finish; }
done
. "$SRC/tests/programs/live.sh"

expect_exit "exporter: bad --listen (exit 2)" 2 "invalid value 'localhost' for --listen" \
	"$TOOL" exporter --listen localhost
expect_exit "exporter: stray argument (exit 2)" 2 "unexpected argument" "$TOOL" exporter 9464

# A free port on loopback, then the exporter on it.
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TOOL" exporter --listen "127.0.0.1:$PORT" 2>"$TMP/exporter.err" &
EXPORTER=$!
URL=http://127.0.0.1:$PORT/metrics
for _ in $(seq 50); do curl -s -o /dev/null "$URL" && break; sleep 0.1; done

# Two processes: the fixture with a cap, and a second one.
start one --max 1M
ask "a 3000 400"
"$TOOL" run --max 2M -- sleep 60 &
SLEEPER_LAUNCHER=$!
for _ in $(seq 100); do
	SLEEPER=$(pgrep -P "$SLEEPER_LAUNCHER" -x sleep) && [ -e "$SLABNOTIFY_STAT_DIR/$SLEEPER" ] && break
	sleep 0.05
done

code=$(curl -s -o "$TMP/m" -w '%{http_code}' "$URL")
check "scrape: 200" [ "$code" = 200 ]
check "scrape: promtool check metrics" promtool check metrics <"$TMP/m"
lab="pid=\"$PID\",command=\"$AOD\""
check "heap_bytes of the fixture" grep -Eq "^slabnotify_heap_bytes\{$lab\} [1-9][0-9]*$" "$TMP/m"
check "heap_peak_bytes" grep -Eq "^slabnotify_heap_peak_bytes\{$lab\} [1-9]" "$TMP/m"
check "memcg_usage_bytes of group /" grep -Eq "^slabnotify_memcg_usage_bytes\{$lab,group=\"/\"\} [1-9]" "$TMP/m"
check "memcg_max_bytes is the cap" grep -q "^slabnotify_memcg_max_bytes{$lab,group=\"/\"} 1048576$" "$TMP/m"
check "vetoes_total by cause" grep -Eq "^slabnotify_vetoes_total\{$lab,cause=\"memcg\"\} [1-9]" "$TMP/m"
check "cache_active_objects" grep -Eq "^slabnotify_cache_active_objects\{$lab,cache=\"kmalloc-cg-3k\"\} [1-9]" "$TMP/m"
check "the second process too" grep -q "^slabnotify_memcg_max_bytes{pid=\"$SLEEPER\",command=\"sleep 60\",group=\"/\"} 2097152$" "$TMP/m"
check "two processes served" grep -q "^slabnotify_exporter_processes 2$" "$TMP/m"
check "HEAD /metrics: 200" [ "$(curl -s -I -o /dev/null -w '%{http_code}' "$URL")" = 200 ]

# Malformed or unwanted requests: 4xx, and the exporter goes on.
status_of() {  # status_of RAW-REQUEST: the status code of the answer
	"$PYTHON" - "$PORT" "$1" <<-'PY'
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
	s.sendall(sys.argv[2].encode().decode('unicode_escape').encode('latin-1'))
	line = s.recv(200).split(b"\r\n")[0].split()
	print(line[1].decode() if len(line) > 1 else "none")
	PY
}
check "POST /metrics: 405" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$URL")" = 405 ]
check "GET /nothing: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nothing")" = 404 ]
check "header line without a colon: 400" [ "$(status_of 'GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n')" = 400 ]
check "bad Content-Length: 400" [ "$(status_of 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')" = 400 ]
# What does not even begin as a request line: the gate's 400 (libmicrohttpd
# alone closes such connections without an answer).
check "a bare word: 400" [ "$(status_of 'GARBAGE\r\n\r\n')" = 400 ]
check "a method alone: 400" [ "$(status_of 'GET\r\n\r\n')" = 400 ]
check "binary bytes: 400" [ "$(status_of '\x01\x02\x03\xff\r\n\r\n')" = 400 ]
check "a blank line, then a request: 200" [ "$(status_of '\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')" = 200 ]
# A client that connects and says nothing holds up nobody.
"$PYTHON" -c 'import socket,sys,time; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); time.sleep(8)' "$PORT" &
SILENT=$!
sleep 0.3
t0=$(date +%s%N)
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL")
t1=$(date +%s%N)
check "a scrape next to a silent client: 200 within 2 s" [ "$code" = 200 -a $(((t1 - t0) / 1000000)) -lt 2000 ]
kill "$SILENT" 2>/dev/null; wait "$SILENT" 2>/dev/null
long=$(head -c 70000 /dev/zero | tr '\0' a)
check "a 70000-byte URI: 414" [ "$(status_of "GET /$long HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")" = 414 ]
check "still serving after them" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 200 ]

# Processes that come and go during scrapes: each scrape is 200 and valid.
for i in $(seq 6); do
	"$TOOL" run -- sleep 1.$((i % 3 + 1)) &
done
scrapes_ok=0
for i in $(seq 20); do
	code=$(curl -s -o "$TMP/m$i" -w '%{http_code}' "$URL")
	[ "$code" = 200 ] && promtool check metrics <"$TMP/m$i" >/dev/null 2>&1 && scrapes_ok=$((scrapes_ok + 1))
	[ $i -eq 10 ] && kill -9 "$SLEEPER" 2>/dev/null
	sleep 0.1
done
check "20 scrapes while processes came and went: all valid ($scrapes_ok)" [ "$scrapes_ok" -eq 20 ]
check "exporter still running" kill -0 "$EXPORTER"
curl -s -o "$TMP/m" "$URL"
check "the killed process is left out" bash -c '! grep -q "pid=\"$1\"" "$2"' _ "$SLEEPER" "$TMP/m"
check "its page was cleaned" [ ! -e "$SLABNOTIFY_STAT_DIR/$SLEEPER" ]
stop
wait "$SLEEPER_LAUNCHER" 2>/dev/null
kill "$EXPORTER"
wait "$EXPORTER" 2>/dev/null
check "exporter exits on SIGTERM" [ $? -eq 0 ]
finish
