/*
 * slabnotify-tool.h - what the launcher (slabnotify.c) and the bundled
 * demo workload (demo_workload.c) share.
 */
#ifndef SLABNOTIFY_TOOL_H
#define SLABNOTIFY_TOOL_H

/* The hidden subcommand `slabnotify demo` re-executes itself with, under
 * the drop-in. Not in --help: it is not meant to be run by hand. */
#define DEMO_WORKLOAD_CMD "__demo-workload"

/* The workload: plain malloc/calloc/realloc/free, served by the
 * preloaded drop-in. Returns the exit status. */
int demo_workload(void);

#include <stdbool.h>

/* Exit statuses of the command itself, as env(1), nice(1), timeout(1):
 * 2 for usage, 125 when the launcher fails, 126/127 as the shell. */
enum {
	EXIT_USAGE = 2,
	EXIT_LAUNCH = 125,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

/* launch.c: run @cmd as a child, wait, pass its status on; with
 * @report_wanted, say how it ended if it wrote no report. */
int tool_run_and_wait(char *const *cmd, bool report_wanted);
/* True for a statically linked ELF executable (found in PATH). */
bool tool_is_static_executable(const char *cmd);

#endif /* SLABNOTIFY_TOOL_H */
