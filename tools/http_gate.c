/*
 * http_gate.c - accepting and screening the exporter's connections
 * (http_gate.h says why).
 *
 * Each accepted connection is screened by a detached thread of its own,
 * so that a client that sends nothing cannot hold up the others; at most
 * GATE_SCREENS at a time (more are closed at once, as libmicrohttpd's own
 * connection limit would), each for at most GATE_WAIT_MS. A peek that is
 * too short to tell is retried after a short sleep: poll() would return
 * at once for the bytes already there.
 */
#define _GNU_SOURCE
#include "http_gate.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GATE_SCREENS  64
#define GATE_WAIT_MS  10000
#define GATE_PEEK     64      /* a method and the target's first byte fit */

static _Atomic int screening;

/* RFC 9110's tchar: the characters of a method token. */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

enum http_gate_verdict http_gate_screen(const char *buf, size_t n)
{
	size_t i = 0;
	while (i < n && (buf[i] == '\r' || buf[i] == '\n'))   /* empty lines before it: RFC 9112 */
		i++;
	size_t method = i;
	while (i < n && is_tchar((unsigned char)buf[i]))
		i++;
	if (i == n)
		return i - method < GATE_PEEK / 2 ? GATE_MORE : GATE_REFUSE;
	if (i == method || buf[i] != ' ')
		return GATE_REFUSE;
	if (++i == n)
		return GATE_MORE;
	return buf[i] == ' ' || buf[i] == '\r' || buf[i] == '\n' ? GATE_REFUSE : GATE_PASS;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The verdict on @fd's first bytes, waiting for them at most GATE_WAIT_MS. */
static enum http_gate_verdict screen_fd(int fd)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t seen = 0;
	for (;;) {
		long left = GATE_WAIT_MS - ms_since(&t0);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return GATE_REFUSE;
		char buf[GATE_PEEK];
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return GATE_REFUSE;
		if (n < 0)
			continue;
		enum http_gate_verdict v = http_gate_screen(buf, (size_t)n);
		if (v != GATE_MORE)
			return v;
		if ((size_t)n == seen)   /* nothing new yet */
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
		seen = (size_t)n;
	}
}

static void refuse(int fd)
{
	static const char answer[] = "HTTP/1.1 400 Bad Request\r\n"
				     "Content-Type: text/plain; charset=utf-8\r\n"
				     "Content-Length: 49\r\n"
				     "Connection: close\r\n\r\n"
				     "not an HTTP request: the metrics are at /metrics\n";
	_Static_assert(sizeof("not an HTTP request: the metrics are at /metrics\n") - 1 == 49, "length");
	(void)!send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	close(fd);
}

struct screen {
	int fd;
	socklen_t len;
	struct sockaddr_storage addr;
	struct MHD_Daemon *daemon;
};

static void *screen_thread(void *arg)
{
	struct screen *s = arg;
	if (screen_fd(s->fd) == GATE_PASS)
		MHD_add_connection(s->daemon, s->fd, (struct sockaddr *)&s->addr, s->len);  /* it owns fd now */
	else
		refuse(s->fd);
	free(s);
	atomic_fetch_sub(&screening, 1);
	return NULL;
}

static void screen_async(struct screen *s)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	if (atomic_fetch_add(&screening, 1) >= GATE_SCREENS || pthread_create(&t, &attr, screen_thread, s)) {
		atomic_fetch_sub(&screening, 1);
		close(s->fd);
		free(s);
	}
	pthread_attr_destroy(&attr);
}

struct gate {
	int listen_fd;
	struct MHD_Daemon *daemon;
};

static void *accept_thread(void *arg)
{
	struct gate *g = arg;
	for (;;) {
		struct screen *s = calloc(1, sizeof(*s));
		if (!s) {
			nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
			continue;
		}
		s->len = sizeof(s->addr);
		s->daemon = g->daemon;
		s->fd = accept4(g->listen_fd, (struct sockaddr *)&s->addr, &s->len, SOCK_CLOEXEC);
		if (s->fd < 0) {
			free(s);
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
			continue;
		}
		screen_async(s);
	}
	return NULL;
}

int http_gate_listen(const struct sockaddr *addr, socklen_t len)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, addr, len) || listen(fd, 64)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

bool http_gate_start(int listen_fd, struct MHD_Daemon *daemon)
{
	static struct gate g;
	g = (struct gate){ listen_fd, daemon };
	pthread_t t;
	if (pthread_create(&t, NULL, accept_thread, &g))
		return false;
	pthread_detach(t);
	return true;
}
