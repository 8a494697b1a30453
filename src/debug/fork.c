/*
 * fork.c - the debug layer's locks across fork(): the quarantine's and
 * the guard pool's, taken by the core's prepare handler after the page
 * pools (their ranks in lock.h: both are leaves), released by the
 * parent's handler and made anew by the child's before anything in the
 * child may free. They have no pthread_atfork handlers of their own: a
 * child handler registered after the core's runs after the notifier's
 * RCU child handler, which frees (into the quarantine, under --debug).
 */
#include "debug.h"

void sn_debug_fork_prepare(void)
{
	quarantine_fork_prepare();
	guard_fork_prepare();
}

void sn_debug_fork_parent(void)
{
	guard_fork_parent();
	quarantine_fork_parent();
}

void sn_debug_fork_child(void)
{
	guard_fork_child();
	quarantine_fork_child();
}
