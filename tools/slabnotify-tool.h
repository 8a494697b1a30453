/*
 * slabnotify-tool.h - what the command's files share: the launcher
 * (slabnotify.c), the bundled demo workload (demo_workload.c) and the
 * commands on running processes.
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
	/* stat, top, set: what the PID turned out to be (statpage_read.h) */
	EXIT_NO_PROCESS = 3,
	EXIT_NOT_SLABNOTIFY = 4,
	EXIT_OTHER_USER = 5,
	EXIT_BAD_PAGE = 6,
	EXIT_NO_ANSWER = 7,
	EXIT_LAUNCH = 125,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

/* launch.c: run @cmd as a child, wait, pass its status on; with
 * @report_wanted, say how it ended if it wrote no report. */
int tool_run_and_wait(char *const *cmd, bool report_wanted);
/* True for a statically linked ELF executable (found in PATH). */
bool tool_is_static_executable(const char *cmd);

/* The commands on running processes (stat.c, set.c, top.c, exporter.c):
 * argv[0] is the command's name. Each returns the exit status. top and
 * exporter are the mains of slabnotify-top and slabnotify-exporter. */
int cmd_stat(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_exporter(int argc, char **argv);
/* stat.c: a PID argument (a usage error otherwise: EXIT_USAGE, said),
 * and the one-line message and status for a page that cannot be read. */
#include <sys/types.h>
int tool_parse_pid(const char *cmd, const char *s, pid_t *out);
int tool_page_error(const char *cmd, pid_t pid, int result, const char *why);

#endif /* SLABNOTIFY_TOOL_H */
