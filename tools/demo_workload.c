/*
 * demo_workload.c - the program `slabnotify demo` runs on the drop-in.
 *
 * Plain C on malloc/calloc/realloc/free only: it never calls slab_*
 * (the preloaded drop-in serves its allocations; the report at exit is
 * the drop-in's). It does three things a user can then find in that
 * report:
 *   1. ordinary work (a string-keyed hash table, a linked list of
 *      records), all freed again: the size classes fill up in slabinfo;
 *   2. allocating past the cap until malloc returns NULL: a veto in the
 *      statistics, and an ENOMEM the program handles instead of dying;
 *   3. a planted leak in leaky_config_parser(): the leak report names it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slabnotify-tool.h"

#define MiB (1024u * 1024u)

/* Keeps the compiler from proving a pointer unused and dropping the
 * malloc that made it (GCC may delete an allocation nobody reads). */
#define ESCAPE(p) __asm__ volatile("" : : "g"(p) : "memory")

/* ------------------------------------------------------------------ */
/* 1. Ordinary work                                                   */
/* ------------------------------------------------------------------ */

struct entry {
	struct entry *next;
	char *key;
	unsigned long value;
};

struct table {
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
};

static unsigned long hash_str(const char *s)
{
	unsigned long h = 5381; /* djb2 */
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static char *copy_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

/* Add @value to @key's count, inserting it if new. */
static int table_add(struct table *t, const char *key, unsigned long value)
{
	struct entry **slot = &t->buckets[hash_str(key) % t->nbuckets];
	for (struct entry *e = *slot; e; e = e->next)
		if (strcmp(e->key, key) == 0) {
			e->value += value;
			return 0;
		}
	struct entry *e = malloc(sizeof(*e));
	if (!e || !(e->key = copy_str(key))) {
		free(e);
		return -1;
	}
	e->value = value;
	e->next = *slot;
	*slot = e;
	t->count++;
	return 0;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	free(t->buckets);
}

/* Count 4096 distinct keys (each seen three times). */
static int build_table(size_t *count)
{
	struct table t = { .nbuckets = 1024 };
	t.buckets = calloc(t.nbuckets, sizeof(*t.buckets));
	if (!t.buckets)
		return -1;
	char key[32];
	int rc = 0;
	for (unsigned i = 0; i < 3 * 4096 && rc == 0; i++) {
		snprintf(key, sizeof(key), "word-%04u", (i * 7919u) % 4096);
		rc = table_add(&t, key, i);
	}
	*count = t.count;
	table_free(&t);
	return rc;
}

struct record {
	struct record *next;
	unsigned id;
	char *name;
	double score;
};

/* A list of @n records, an index of them grown with realloc, then all
 * freed: many small objects of a few size classes, as real code has. */
static int build_list(unsigned n, double *checksum)
{
	struct record *head = NULL;
	struct record **index = NULL;
	size_t cap = 0;
	int rc = 0;
	char name[48];

	for (unsigned i = 0; i < n; i++) {
		struct record *r = calloc(1, sizeof(*r));
		snprintf(name, sizeof(name), "record %u of the demo list", i);
		if (!r || !(r->name = copy_str(name))) {
			free(r);
			rc = -1;
			break;
		}
		r->id = i;
		r->score = i * 0.5;
		r->next = head;
		head = r;
		if (i == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct record **bigger = realloc(index, ncap * sizeof(*index));
			if (!bigger) {
				rc = -1;
				break;
			}
			index = bigger;
			cap = ncap;
		}
		index[i] = r;
	}
	*checksum = 0;
	for (struct record *r = head; r; r = r->next)
		*checksum += r->score;
	while (head) {
		struct record *next = head->next;
		free(head->name);
		free(head);
		head = next;
	}
	free(index);
	return rc;
}

/* ------------------------------------------------------------------ */
/* 2. Past the cap                                                    */
/* ------------------------------------------------------------------ */

/* Stop here if no cap says no first (the demo run with a large --max). */
#define MAX_CHUNKS 1024

static void allocate_past_cap(void)
{
	static void *chunks[MAX_CHUNKS]; /* not malloc'd: it would count */
	unsigned n = 0;
	int err = 0;

	for (; n < MAX_CHUNKS; n++) {
		errno = 0;
		chunks[n] = malloc(MiB);
		if (!chunks[n]) {
			err = errno;
			break;
		}
		memset(chunks[n], 0xa5, 64); /* touch it: it is really ours */
	}
	if (n < MAX_CHUNKS)
		printf("demo: malloc(%u) returned NULL after %u MiB: the cap vetoed it "
		       "(errno %s)\n", MiB, n,
		       err ? strerrorname_np(err) : "not set");
	else
		printf("demo: %u MiB allocated and malloc never returned NULL: "
		       "no cap below that is in effect\n", n);
	for (unsigned i = 0; i < n; i++)
		free(chunks[i]);
}

/* ------------------------------------------------------------------ */
/* 3. The planted leak                                                */
/* ------------------------------------------------------------------ */

struct config_entry {
	char key[64];
	char value[440];
	struct config_entry *next;
};

#define LEAKED_ENTRIES 32

/*
 * Parses a made-up config into a list and "forgets" to free it. Global
 * and noinline on purpose: its frame must be on the allocation stack
 * and its name in the symbol table, so the leak report can name it.
 */
__attribute__((noinline)) size_t leaky_config_parser(void);
__attribute__((noinline)) size_t leaky_config_parser(void)
{
	struct config_entry *head = NULL;
	size_t bytes = 0;
	for (int i = 0; i < LEAKED_ENTRIES; i++) {
		struct config_entry *e = malloc(sizeof(*e));
		if (!e)
			break;
		snprintf(e->key, sizeof(e->key), "option%d", i);
		snprintf(e->value, sizeof(e->value), "value of option %d", i);
		e->next = head;
		head = e;
		bytes += sizeof(*e);
	}
	ESCAPE(head);
	return bytes; /* head dropped: the leak */
}

/* ------------------------------------------------------------------ */

int demo_workload(void)
{
	const char *max = getenv("SLABNOTIFY_MAX");
	printf("demo: a small program running on the slabnotify malloc drop-in "
	       "(cap SLABNOTIFY_MAX=%s, leak tracking and statistics on)\n",
	       max ? max : "unset");

	size_t keys = 0;
	double checksum = 0;
	if (build_table(&keys) || build_list(10000, &checksum)) {
		fprintf(stderr, "demo: out of memory before reaching the cap\n");
		return 1;
	}
	printf("demo: built a %zu-key string hash table and a 10000-record linked "
	       "list (checksum %.1f), then freed them\n", keys, checksum);

	allocate_past_cap();

	size_t leaked = leaky_config_parser();
	printf("demo: leaky_config_parser() allocated %d config entries (%zu bytes) "
	       "and never freed them\n", LEAKED_ENTRIES, leaked);
	const char *file = getenv("SLABNOTIFY_REPORT");
	printf("demo: the drop-in's report at exit (%s%s) shows the veto under "
	       "\"vetoes:\", the slabinfo table, and the leak with its stack\n",
	       file ? "in " : "on stderr", file ? file : "");
	fflush(stdout);
	return 0;
}
