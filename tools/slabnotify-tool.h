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

#endif /* SLABNOTIFY_TOOL_H */
