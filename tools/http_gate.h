/*
 * http_gate.h - the exporter's front door: connections are accepted here
 * and screened before libmicrohttpd sees them.
 *
 * libmicrohttpd (0.9.75, Debian 12) answers every request it can parse,
 * with 4xx for the bad ones, but closes without a word a connection
 * whose first line has no request target at all ("GARBAGE", "GET", binary
 * bytes). The gate looks at the start of the first line without taking
 * it (MSG_PEEK): what cannot begin a request line (a method token, one
 * space, a target) gets a 400 from here; everything else is handed, as
 * it came, to the daemon with MHD_add_connection(). HTTP itself stays
 * libmicrohttpd's.
 */
#ifndef SLABNOTIFY_HTTP_GATE_H
#define SLABNOTIFY_HTTP_GATE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A listening TCP socket on @addr, or -1 with errno set. */
int http_gate_listen(const struct sockaddr *addr, socklen_t len);

/* Accept on @listen_fd in a thread of the gate's own, for @daemon (started
 * with MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC). False if the thread could
 * not be made. */
bool http_gate_start(int listen_fd, struct MHD_Daemon *daemon);

enum http_gate_verdict { GATE_PASS, GATE_REFUSE, GATE_MORE };

/* What the first @n bytes of a connection are: the start of a request
 * line (pass), not one (refuse), or too short to tell (more). Exposed
 * for the tests. */
enum http_gate_verdict http_gate_screen(const char *buf, size_t n);

#endif
