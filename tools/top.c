/*
 * top.c - `slabnotify top [PID]`: a live full-screen view, in the manner
 * of slabtop(1), of a process's stats page: the summary and the memory
 * groups above, the caches below, sorted by slabtop's keys; refreshed
 * every REFRESH_MS. Without PID, one line per slabnotify process of the
 * user, as top(1); Enter opens the selected one.
 *
 * The terminal. ncurses in cbreak mode, so that ^C is still a signal:
 * SIGINT, SIGTERM and SIGHUP only set a flag, the loop sees it within a
 * moment (getch returns on the signal) and leaves through endwin() like
 * `q` does; an atexit handler calls endwin() on any other exit. Nothing
 * needs more than 80x24; a smaller terminal shows what fits.
 */
#define _GNU_SOURCE
#include "metrics.h"
#include "slabnotify-tool.h"
#include "statpage_read.h"

#include <curses.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REFRESH_MS 2000
#define READ_WAIT_MS 500
#define MAX_PROCS 256

static volatile sig_atomic_t got_signal;
static bool curses_on;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void restore_terminal(void)
{
	if (curses_on) {
		endwin();
		curses_on = false;
	}
}

/* ------------------------------------------------------------------ */
/* Sorting, with slabtop's keys                                       */
/* ------------------------------------------------------------------ */

static int sort_key = 'o';

static uint64_t cache_bytes(const struct sn_page_cache *c)
{
	return c->num_slabs * c->slab_bytes;
}

static uint64_t utilization(const struct sn_page_cache *c)
{
	return c->num_objs ? c->active_objs * 100 / c->num_objs : 0;
}

static uint64_t key_of(const struct sn_page_cache *c)
{
	switch (sort_key) {
	case 'a': return c->active_objs;
	case 'b': return c->objs_per_slab;
	case 'c': return cache_bytes(c);
	case 'l': return c->num_slabs;
	case 'v': return c->active_slabs;
	case 'p': return c->slab_bytes / 4096;
	case 's': return c->size;
	case 'u': return utilization(c);
	default:  return c->num_objs;    /* 'o' */
	}
}

static int cmp_cache(const void *a, const void *b)
{
	const struct sn_page_cache *x = a, *y = b;
	if (sort_key == 'n')
		return strcmp(x->name, y->name);
	uint64_t kx = key_of(x), ky = key_of(y);
	if (kx != ky)
		return kx < ky ? 1 : -1;     /* largest first */
	return strcmp(x->name, y->name);
}

static bool is_sort_key(int ch)
{
	return ch && strchr("abclvnops u", ch) && ch != ' ';
}

/* ------------------------------------------------------------------ */
/* One process                                                        */
/* ------------------------------------------------------------------ */

static void size_short(char *out, size_t cap, uint64_t v)
{
	static const char *const unit[] = { "B", "K", "M", "G", "T" };
	if (v == UINT64_MAX) {
		snprintf(out, cap, "none");
		return;
	}
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f%s" : "%.0f%s", d, unit[u]);
}

/* The command as top shows it: the program's name without its directory. */
static const char *short_command(const char *cmd)
{
	const char *space = strchr(cmd, ' ');
	const char *slash = NULL;
	for (const char *q = cmd; *q && (!space || q < space); q++)
		if (*q == '/')
			slash = q;
	return slash ? slash + 1 : cmd;
}

static void draw_process(const struct sn_page *p, bool gone)
{
	const struct sn_page_summary *s = &p->sum;
	char a[32], b[32], c[32], d[32];
	erase();
	attron(A_BOLD);
	mvprintw(0, 0, " slabnotify top - %d %.*s%s", (int)p->pid, COLS > 40 ? COLS - 40 : 10,
		 short_command(p->command), gone ? "  (exited)" : "");
	attroff(A_BOLD);
	size_short(a, sizeof(a), s->heap_bytes);
	size_short(b, sizeof(b), s->heap_peak_bytes);
	size_short(c, sizeof(c), s->rss_bytes);
	mvprintw(1, 0, " Heap: %s in use, %s peak   RSS: %s   Vetoes: %" PRIu64 " failslab, %" PRIu64 " memcg", a, b,
		 c, s->vetoes_failslab, s->vetoes_memcg);
	uint64_t act = 0, tot = 0, slabs = 0, aslabs = 0, bytes = 0;
	for (uint64_t i = 0; i < s->nr_caches; i++) {
		act += p->caches[i].active_objs;
		tot += p->caches[i].num_objs;
		slabs += p->caches[i].num_slabs;
		aslabs += p->caches[i].active_slabs;
		bytes += cache_bytes(&p->caches[i]);
	}
	size_short(a, sizeof(a), bytes);
	mvprintw(2, 0, " Objects (active/total): %" PRIu64 "/%" PRIu64 "   Slabs: %" PRIu64 "/%" PRIu64 "   Caches: %" PRIu64
		 "   Size: %s", act, tot, aslabs, slabs, s->nr_caches, a);
	size_short(a, sizeof(a), s->max);
	size_short(b, sizeof(b), s->high);
	mvprintw(3, 0, " Limits: max %s, high %s", a, b);
	if (s->flags & SN_SUM_FAULTS)
		printw("   Faults: %g%%", s->fail_probability);
	if (s->flags & SN_SUM_LEAKS) {
		size_short(c, sizeof(c), s->leak_tracked_bytes);
		printw("   Leak tracker: %s live", c);
	}
	int y = 4;
	for (uint64_t i = 0; i < s->nr_groups && y < 8; i++, y++) {
		const struct sn_page_group *g = &p->groups[i];
		size_short(a, sizeof(a), g->usage);
		size_short(b, sizeof(b), g->peak);
		size_short(c, sizeof(c), g->max);
		size_short(d, sizeof(d), g->high);
		mvprintw(y, 0, " group %-12.12s usage %-7s peak %-7s max %-7s high %-7s ev h%" PRIu64 " m%" PRIu64
			 " f%" PRIu64, g->path, a, b, c, d, g->events_high, g->events_max, g->failcnt);
	}
	y++;
	attron(A_REVERSE);
	mvprintw(y, 0, "%-*s", COLS, "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME");
	attroff(A_REVERSE);
	static struct sn_page_cache rows[SN_PAGE_CACHES];
	memcpy(rows, p->caches, sizeof(rows[0]) * s->nr_caches);
	qsort(rows, s->nr_caches, sizeof(rows[0]), cmp_cache);
	for (uint64_t i = 0; i < s->nr_caches && ++y < LINES - 1; i++) {
		const struct sn_page_cache *r = &rows[i];
		mvprintw(y, 0, "%6" PRIu64 " %6" PRIu64 " %3" PRIu64 "%% %7.2fK %6" PRIu64 " %8" PRIu64 " %9" PRIu64 "K %.*s",
			 r->num_objs, r->active_objs, utilization(r), (double)r->size / 1024, r->num_slabs,
			 r->objs_per_slab, cache_bytes(r) / 1024, COLS > 60 ? COLS - 60 : 4, r->name);
	}
	mvprintw(LINES - 1, 0, " sort: o objs a active s size b obj/slab l slabs v active slabs c cache size n name   q quit");
	refresh();
}

/* Returns a key that leaves the view ('q', or 0 on a signal). */
static int view_process(pid_t pid)
{
	static struct sn_page page;
	char why[160];
	bool gone = false;
	for (;;) {
		if (!gone) {
			enum sp_result r = sp_read(pid, &page, true, READ_WAIT_MS, why, sizeof(why));
			if (r == SP_NO_PROCESS || r == SP_NOT_SLABNOTIFY)
				gone = true;
		}
		draw_process(&page, gone);
		timeout(REFRESH_MS);
		int ch = getch();
		if (got_signal)
			return 0;
		if (ch == 'q' || ch == 'Q')
			return 'q';
		if (ch == 27 || ch == KEY_BACKSPACE || ch == KEY_LEFT)
			return 'b';
		if (is_sort_key(ch))
			sort_key = ch;
	}
}

/* ------------------------------------------------------------------ */
/* Every process                                                      */
/* ------------------------------------------------------------------ */

static struct sn_page procs[MAX_PROCS];

static int cmp_heap(const void *a, const void *b)
{
	const struct sn_page *x = a, *y = b;
	return x->sum.heap_bytes < y->sum.heap_bytes ? 1 : x->sum.heap_bytes > y->sum.heap_bytes ? -1 : 0;
}

static int read_all(void)
{
	static pid_t pids[MAX_PROCS];
	int n = sp_list(pids, MAX_PROCS), got = 0;
	char why[160];
	for (int i = 0; i < n; i++)
		if (sp_read(pids[i], &procs[got], false, 0, why, sizeof(why)) == SP_OK)
			got++;
	qsort(procs, (size_t)got, sizeof(procs[0]), cmp_heap);
	return got;
}

static void draw_list(int n, int sel)
{
	char a[32], b[32], c[32], d[32];
	erase();
	attron(A_BOLD);
	mvprintw(0, 0, " slabnotify top - %d process%s", n, n == 1 ? "" : "es");
	attroff(A_BOLD);
	attron(A_REVERSE);
	mvprintw(2, 0, "%-*s", COLS, "    PID     HEAP     PEAK      RSS      MAX  VETOES CACHES COMMAND");
	attroff(A_REVERSE);
	for (int i = 0; i < n && 3 + i < LINES - 1; i++) {
		const struct sn_page_summary *s = &procs[i].sum;
		size_short(a, sizeof(a), s->heap_bytes);
		size_short(b, sizeof(b), s->heap_peak_bytes);
		size_short(c, sizeof(c), s->rss_bytes);
		size_short(d, sizeof(d), s->max);
		if (i == sel)
			attron(A_REVERSE);
		mvprintw(3 + i, 0, "%7d %8s %8s %8s %8s %7" PRIu64 " %6" PRIu64 " %.*s", (int)procs[i].pid, a, b, c, d,
			 s->vetoes_failslab + s->vetoes_memcg, s->nr_caches, COLS > 60 ? COLS - 60 : 4,
			 short_command(procs[i].command));
		if (i == sel)
			attroff(A_REVERSE);
	}
	mvprintw(LINES - 1, 0, " up/down select   Enter open   q quit");
	refresh();
}

static int view_list(void)
{
	int sel = 0;
	for (;;) {
		int n = read_all();
		if (sel >= n)
			sel = n ? n - 1 : 0;
		draw_list(n, sel);
		timeout(REFRESH_MS);
		int ch = getch();
		if (got_signal)
			return 0;
		if (ch == 'q' || ch == 'Q')
			return 'q';
		if (ch == KEY_DOWN && sel + 1 < n)
			sel++;
		if (ch == KEY_UP && sel > 0)
			sel--;
		if ((ch == '\n' || ch == KEY_ENTER || ch == KEY_RIGHT) && n) {
			int k = view_process(procs[sel].pid);
			if (k != 'b')
				return k;
		}
	}
}

/* ------------------------------------------------------------------ */

int cmd_top(int argc, char **argv)
{
	pid_t pid = 0;
	if (argc > 2) {
		fprintf(stderr, "slabnotify top: unexpected argument '%s'\nusage: slabnotify top [PID]\n", argv[2]);
		return EXIT_USAGE;
	}
	if (argc == 2) {
		if (tool_parse_pid("top", argv[1], &pid))
			return EXIT_USAGE;
		static struct sn_page page;
		char why[160];
		enum sp_result r = sp_read(pid, &page, false, 0, why, sizeof(why));
		if (r != SP_OK)
			return tool_page_error("top", pid, r, why);
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "slabnotify top: needs a terminal (use slabnotify stat for a one-off)\n");
		return EXIT_USAGE;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: getch returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	atexit(restore_terminal);
	if (!initscr()) {
		fprintf(stderr, "slabnotify top: cannot use the terminal\n");
		return 1;
	}
	curses_on = true;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	if (pid)
		view_process(pid);
	else
		view_list();
	restore_terminal();
	return got_signal ? 128 + got_signal : 0;
}

/* slabnotify-top, exec'd by `slabnotify top` with its argv
 * (tools/CMakeLists.txt): the command's arguments follow "top". */
int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "top") != 0) {
		fprintf(stderr, "slabnotify-top: run as slabnotify top\n");
		return EXIT_USAGE;
	}
	return cmd_top(argc - 1, argv + 1);
}
