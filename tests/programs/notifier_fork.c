/*
 * notifier_fork.c - a single-threaded program that registers a notifier
 * and forks (linked with libslabnotify): fork must never wait for ever
 * on liburcu's call_rcu thread, in the parent or the child.
 */
#include <slabnotify.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int handler(struct slab_notifier *nb, enum slab_event ev, const struct slab_event_data *d)
{
	(void)nb;
	(void)ev;
	(void)d;
	return SLAB_NOTIFY_OK;
}

static struct slab_notifier nb = { .call = handler };

int main(void)
{
	struct slab_cache *c = slab_cache_create("nf", 64, 0, SLAB_NOTIFY, NULL);
	if (!c || slab_notifier_register(&nb) != 0)
		return 1;
	for (int i = 0; i < 20; i++) {
		void *objs[100];
		for (int k = 0; k < 100; k++)
			objs[k] = slab_cache_alloc(c, 0);
		slab_cache_set_notify(c, i & 1);   /* queues drains: the call_rcu thread works */
		pid_t pid = fork();
		if (pid == 0) {
			for (int k = 0; k < 100; k++)
				slab_cache_free(c, objs[k]);
			void *p = slab_cache_alloc(c, 0);
			slab_cache_free(c, p);
			_exit(0);
		}
		if (pid < 0)
			return 1;
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
		for (int k = 0; k < 100; k++)
			slab_cache_free(c, objs[k]);
	}
	printf("done\n");
	return 0;
}
