/*
 * exporter.c - `slabnotify exporter [--listen ADDR:PORT]`: the figures of
 * every slabnotify process of the user (their live stats pages), served
 * to Prometheus at /metrics over HTTP by libmicrohttpd.
 *
 * Each scrape lists the pages (cleaning those of processes gone), asks
 * each process for fresh figures (waiting at most SCRAPE_WAIT_MS for
 * one that does not answer, whose last figures are served), and writes
 * them with metrics.c. A process that ends during the scrape, or whose
 * page is not valid, is left out of that scrape; the exporter's own
 * gauge slabnotify_exporter_processes says how many were served.
 * GET or HEAD of /metrics only: other methods get 405, other paths 404,
 * requests libmicrohttpd cannot parse its 4xx, and what does not even
 * begin as a request line the gate's 400 (http_gate.h). Loopback by
 * default.
 */
#define _GNU_SOURCE
#include "http_gate.h"
#include "metrics.h"
#include "slabnotify-tool.h"
#include "statpage_read.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRAPE_WAIT_MS 250
#define MAX_PROCESSES 1024

/* The text of one scrape, in a buffer of its own (free()d by MHD). */
static char *scrape(size_t *len)
{
	static pid_t pids[MAX_PROCESSES];
	int n = sp_list(pids, MAX_PROCESSES);
	struct sn_page *pages = calloc(n > 0 ? (size_t)n : 1, sizeof(*pages));
	size_t got = 0;
	char why[160];
	for (int i = 0; pages && i < n; i++)
		if (sp_read(pids[i], &pages[got], true, SCRAPE_WAIT_MS, why, sizeof(why)) == SP_OK)
			got++;
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f) {
		free(pages);
		return NULL;
	}
	if (pages)
		metrics_write(f, pages, got);
	fprintf(f, "# HELP slabnotify_exporter_processes processes whose figures this scrape served\n"
		   "# TYPE slabnotify_exporter_processes gauge\nslabnotify_exporter_processes %zu\n", got);
	fclose(f);
	free(pages);
	return text;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								  MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)cls;
	(void)version;
	(void)upload;
	/* A request with a body comes in several calls: refuse it at once. */
	if (*upload_size)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	*state = NULL;
	if (strcmp(url, "/metrics") != 0) {
		if (strcmp(url, "/") == 0 && strcmp(method, "GET") == 0)
			return reply(c, MHD_HTTP_OK, "slabnotify exporter: the metrics are at /metrics\n");
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	size_t len = 0;
	char *text = scrape(&len);
	if (!text)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* "127.0.0.1:9464", "[::1]:9464", ":9464" (every IPv4 address). */
static bool parse_listen(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	const char *colon = strrchr(s, ':');
	if (!colon)
		return false;
	char host[64];
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535)
		return false;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[hl - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (!host[0])
		return true;
	return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

static int exporter_usage(const char *what, const char *arg)
{
	fprintf(stderr, "slabnotify exporter: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	fprintf(stderr, "usage: slabnotify exporter [--listen ADDR:PORT]\n");
	return EXIT_USAGE;
}

int cmd_exporter(int argc, char **argv)
{
	const char *listen = "127.0.0.1:9464";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen = argv[++i];
		else if (strncmp(argv[i], "--listen=", 9) == 0)
			listen = argv[i] + 9;
		else if (strcmp(argv[i], "--listen") == 0)
			return exporter_usage("missing the value of", "--listen");
		else
			return exporter_usage("unexpected argument", argv[i]);
	}
	struct sockaddr_storage ss;
	if (!parse_listen(listen, &ss)) {
		fprintf(stderr, "slabnotify exporter: invalid value '%s' for --listen: expected ADDR:PORT, "
				"such as 127.0.0.1:9464 or [::1]:9464\n", listen);
		return EXIT_USAGE;
	}
	/* Signals are taken by sigwait below, in this thread only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	socklen_t len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int lfd = http_gate_listen((struct sockaddr *)&ss, len);
	if (lfd < 0) {
		fprintf(stderr, "slabnotify exporter: cannot listen on %s: %s\n", listen, strerror(errno));
		return 1;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
						MHD_OPTION_CONNECTION_TIMEOUT, 10u,
						MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
	if (!d || !http_gate_start(lfd, d)) {
		fprintf(stderr, "slabnotify exporter: cannot start the HTTP server: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "slabnotify exporter: serving http://%s/metrics\n", listen);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}

/* slabnotify-exporter, exec'd by `slabnotify exporter` with its argv
 * (tools/CMakeLists.txt): the command's arguments follow "exporter". */
int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "exporter") != 0) {
		fprintf(stderr, "slabnotify-exporter: run as slabnotify exporter\n");
		return EXIT_USAGE;
	}
	return cmd_exporter(argc - 1, argv + 1);
}
