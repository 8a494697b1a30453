/*
 * statpage_read.h - reading and validating other processes' live stats
 * pages (src/consumers/statpage.h), for stat, top, set and the exporter.
 *
 * Nothing in a page is trusted: a page is refused unless it is a regular
 * file of ours, private, of exactly the layout's size, with the magic,
 * version, size, pid and uid expected, every count in range and every
 * string terminated. The file is read with pread, never through a
 * mapping (a page truncated under us cannot fault); the mapping of its
 * first page serves only as the futex address of a request.
 */
#ifndef SLABNOTIFY_STATPAGE_READ_H
#define SLABNOTIFY_STATPAGE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../src/consumers/statpage.h"

/* Results; each has its exit status (slabnotify-tool.h) and a message. */
enum sp_result {
	SP_OK = 0,
	SP_NO_PROCESS,      /* no such process */
	SP_NOT_SLABNOTIFY,  /* alive, ours, but publishes no page */
	SP_OTHER_USER,      /* the process belongs to another user */
	SP_BAD_PAGE,        /* a page exists but is not valid: refused */
	SP_NO_ANSWER,       /* a request went unanswered */
	SP_BAD_DIR,         /* the page directory is not ours and private */
};

/* The exit status for @r, and a one-line reason (no newline). */
int sp_exit_status(enum sp_result r);
const char *sp_reason(enum sp_result r);

/* The page directory (SLABNOTIFY_STAT_DIR or /dev/shm/slabnotify-UID). */
void sp_dir(char *out, size_t cap);

/*
 * A consistent, validated copy of @pid's page in @out. With @fresh, ask
 * the process to publish first and wait for it (at most @wait_ms; a
 * process that does not answer, stopped for example, gives the last
 * figures it published). Pages of processes that are gone (or whose pid
 * was reused) are removed. @why gets details for SP_BAD_PAGE.
 */
enum sp_result sp_read(pid_t pid, struct sn_page *out, bool fresh, int wait_ms, char *why, size_t whylen);

/* Validate a copy (exposed for the tests of garbage pages). */
bool sp_valid(const struct sn_page *p, pid_t pid, char *why, size_t whylen);

/*
 * Send a control request (@ctl; flags 0 asks only for a publish) and
 * wait for the answer: SP_OK with *status the process's result (0 or a
 * negative errno), or SP_NO_ANSWER after @wait_ms.
 */
enum sp_result sp_request(pid_t pid, const struct sn_page_ctl *ctl, int wait_ms, int *status);

/* The pids of the user's live pages, ascending; removes dead ones.
 * Returns the count (at most @cap), or -1 if the directory is refused. */
int sp_list(pid_t *pids, int cap);

#endif /* SLABNOTIFY_STATPAGE_READ_H */
