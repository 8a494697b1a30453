/*
 * common.h - helpers the tests share.
 *
 * run_in_child() runs a function in a forked child whose stderr comes
 * back through a pipe; check_message() then checks that the child died
 * of SIGABRT after printing exactly one line naming the function, the
 * pointer and (when given) the cache. A Criterion death test
 * (.signal = SIGABRT) cannot look at what the dying process printed:
 * every bad input is tested both ways.
 */
#ifndef SLABNOTIFY_TESTS_COMMON_H
#define SLABNOTIFY_TESTS_COMMON_H

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct outcome {
	int status;       /* waitpid() status */
	char text[4096];  /* what the child wrote on stderr */
	size_t len;
};

/* Run @fn(@arg) in a child whose stderr is a pipe back to us. The child
 * _exit(0)s if @fn returns. */
static inline void run_in_child(void (*fn)(void *arg), void *arg, struct outcome *out)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core); /* aborting is expected */
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	memset(out, 0, sizeof(*out));
	for (;;) {
		ssize_t r = read(fds[0], out->text + out->len, sizeof(out->text) - 1 - out->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		out->len += (size_t)r;
		if (out->len == sizeof(out->text) - 1)
			break;
	}
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &out->status, 0), pid);
}

/*
 * The child died of SIGABRT after printing exactly one line that names
 * @func, @ptr as printed by %p and, when not NULL, @cache.
 */
static inline void check_message(const struct outcome *o, const char *func, const void *ptr,
			  const char *cache)
{
	cr_assert(WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT,
		  "%s(%p): child did not abort (status %#x), stderr: %s", func, ptr,
		  o->status, o->text);
	cr_assert_gt(o->len, 0, "%s(%p): nothing on stderr", func, ptr);
	const char *nl = strchr(o->text, '\n');
	cr_assert(nl && nl == o->text + o->len - 1,
		  "%s(%p): not exactly one line on stderr: \"%s\"", func, ptr, o->text);
	cr_assert_not_null(strstr(o->text, func), "message does not name %s: %s", func,
			   o->text);
	char pbuf[32];
	snprintf(pbuf, sizeof(pbuf), "%p", ptr);
	cr_assert_not_null(strstr(o->text, pbuf), "message does not name the pointer %s: %s",
			   pbuf, o->text);
	if (cache)
		cr_assert_not_null(strstr(o->text, cache),
				   "message does not name the cache %s: %s", cache, o->text);
}


#endif /* SLABNOTIFY_TESTS_COMMON_H */
