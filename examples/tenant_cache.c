/*
 * tenant_cache - a small multi-tenant in-memory key-value cache, each
 * tenant in its own memory group with a hard limit.
 *
 * Entries are objects of a SLAB_ACCOUNT cache, values come from
 * slab_malloc(SLAB_GFP_ACCOUNT): both are charged to the group current
 * when a tenant writes. Each tenant registers a reclaim callback that
 * evicts its own least recently used entries. One tenant ("bob") writes
 * far more than its max: its charges hit max, its callback evicts its
 * oldest entries and the writes succeed, while the other tenants' data
 * stays untouched.
 *
 * Locking: a write allocates its entry and value before taking the
 * tenant's lock, because the allocation may run the reclaim callback
 * (on this thread, inside the allocation), which takes that lock.
 *
 * Prints each tenant's usage, peak and events, then the group tree.
 * Exits 0 when the isolation held, 1 otherwise.
 */
#include <slabnotify.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024
#define KEY_MAX  32

struct entry {
	char key[KEY_MAX];
	char *value;
	size_t len;
	struct entry *hnext;          /* hash chain */
	struct entry *lru_prev, *lru_next;
};

struct tenant {
	const char *name;
	struct slab_memcg *group;
	pthread_mutex_t lock;
	struct entry *bucket[NBUCKETS];
	struct entry lru;             /* list head: next is newest, prev oldest */
	size_t entries;
	unsigned long evicted, hits, misses, failed_puts;
};

static struct slab_cache *entry_cache;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* What an object costs its group: the accounting's footprint. */
static size_t footprint(const void *p)
{
	size_t u = slab_usable_size(p);
	if (u > SLAB_KMALLOC_MAX)
		return ((u + 4095) & ~(size_t)4095) + 4096;
	return u;
}

static void lru_unlink(struct entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push(struct tenant *t, struct entry *e)
{
	e->lru_next = t->lru.lru_next;
	e->lru_prev = &t->lru;
	t->lru.lru_next->lru_prev = e;
	t->lru.lru_next = e;
}

/* Lock held. Unlinks @e from its chain and the LRU. */
static void unlink_entry(struct tenant *t, struct entry *e)
{
	struct entry **pp = &t->bucket[hash(e->key) % NBUCKETS];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	t->entries--;
}

static size_t free_entry(struct entry *e)
{
	size_t bytes = footprint(e->value) + slab_cache_size(entry_cache);
	slab_free(e->value);
	slab_cache_free(entry_cache, e);
	return bytes;
}

/* The tenant's reclaim callback: evict least recently used entries. */
static size_t evict_lru(struct slab_memcg *g, size_t want, slab_gfp_t gfp, void *arg)
{
	(void)g;
	(void)gfp;
	struct tenant *t = arg;
	size_t freed = 0;
	while (freed < want) {
		pthread_mutex_lock(&t->lock);
		struct entry *e = t->lru.lru_prev;
		if (e == &t->lru) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		unlink_entry(t, e);
		t->evicted++;
		pthread_mutex_unlock(&t->lock);
		freed += free_entry(e);
	}
	return freed;
}

static int tenant_init(struct tenant *t, const char *name, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	pthread_mutex_init(&t->lock, NULL);
	t->lru.lru_next = t->lru.lru_prev = &t->lru;
	t->group = slab_memcg_create(NULL, name);
	if (!t->group)
		return -1;
	slab_memcg_set_max(t->group, max);
	return slab_memcg_add_reclaim(t->group, evict_lru, t);
}

static int put(struct tenant *t, const char *key, const void *val, size_t len)
{
	struct slab_memcg *prev = slab_memcg_enter(t->group);
	/* Allocate before locking: reclaim may run right here. */
	struct entry *e = slab_cache_alloc(entry_cache, 0);
	char *v = e ? slab_malloc(len, SLAB_GFP_ACCOUNT) : NULL;
	slab_memcg_enter(prev);
	if (!v) {
		slab_cache_free(entry_cache, e);
		t->failed_puts++;
		return -ENOMEM;
	}
	memcpy(v, val, len);
	snprintf(e->key, KEY_MAX, "%s", key);
	e->value = v;
	e->len = len;

	pthread_mutex_lock(&t->lock);
	struct entry **head = &t->bucket[hash(e->key) % NBUCKETS], *old = NULL;
	for (struct entry *x = *head; x; x = x->hnext)
		if (strcmp(x->key, e->key) == 0)
			old = x;
	if (old)
		unlink_entry(t, old);
	e->hnext = *head;
	*head = e;
	lru_push(t, e);
	t->entries++;
	pthread_mutex_unlock(&t->lock);
	if (old)
		free_entry(old);
	return 0;
}

/* Copies up to @cap bytes of the value; returns its length or -1. */
static long get(struct tenant *t, const char *key, void *buf, size_t cap)
{
	long n = -1;
	pthread_mutex_lock(&t->lock);
	for (struct entry *e = t->bucket[hash(key) % NBUCKETS]; e; e = e->hnext)
		if (strcmp(e->key, key) == 0) {
			lru_unlink(e);
			lru_push(t, e);
			memcpy(buf, e->value, e->len < cap ? e->len : cap);
			n = (long)e->len;
			break;
		}
	if (n < 0)
		t->misses++;
	else
		t->hits++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void tenant_clear(struct tenant *t)
{
	for (;;) {
		pthread_mutex_lock(&t->lock);
		struct entry *e = t->lru.lru_prev;
		if (e == &t->lru) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		unlink_entry(t, e);
		pthread_mutex_unlock(&t->lock);
		free_entry(e);
	}
}

static void fill_value(char *buf, size_t len, const char *key)
{
	uint64_t h = hash(key);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (h + i) % 26);
}

static int check_value(struct tenant *t, const char *key, size_t len)
{
	static char want[4096], got[4096];
	fill_value(want, len, key);
	long n = get(t, key, got, sizeof(got));
	return n == (long)len && memcmp(want, got, len) == 0;
}

int main(void)
{
	entry_cache = slab_cache_create("kv-entry", sizeof(struct entry), 0, SLAB_ACCOUNT, NULL);
	if (!entry_cache) {
		perror("slab_cache_create");
		return 1;
	}
	enum { ALICE, BOB, CAROL, NT };
	static struct tenant ten[NT];
	static const char *names[NT] = { "alice", "bob", "carol" };
	const size_t max = 512 * 1024;
	for (int i = 0; i < NT; i++)
		if (tenant_init(&ten[i], names[i], max) != 0) {
			perror("tenant_init");
			return 1;
		}

	char key[KEY_MAX], val[4096];
	/* alice and carol: 200 entries of 1 KiB each, well within 512 KiB. */
	for (int i = 0; i < 200; i++)
		for (int k = 0; k < NT; k += 2) {
			snprintf(key, sizeof(key), "%s:%d", names[k], i);
			fill_value(val, 1000, key);
			if (put(&ten[k], key, val, 1000) != 0)
				fprintf(stderr, "%s: put %s failed\n", names[k], key);
		}
	/* bob: 5000 entries of 1 to 4 KiB, about 12 MiB through 512 KiB. */
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "bob:%d", i);
		size_t len = 1000 + (size_t)(i * 7919 % 3000);
		fill_value(val, len, key);
		if (put(&ten[BOB], key, val, len) != 0)
			fprintf(stderr, "bob: put %s failed\n", key);
	}

	int ok = 1;
	/* Isolation: every alice/carol entry is still there and intact. */
	for (int k = 0; k < NT; k += 2)
		for (int i = 0; i < 200; i++) {
			snprintf(key, sizeof(key), "%s:%d", names[k], i);
			if (!check_value(&ten[k], key, 1000)) {
				printf("%s lost %s\n", names[k], key);
				ok = 0;
			}
		}
	/* bob kept his most recent entries and lost the oldest. */
	snprintf(key, sizeof(key), "bob:%d", 4999);
	if (!check_value(&ten[BOB], key, 1000 + (size_t)(4999 * 7919 % 3000)))
		ok = 0;
	snprintf(key, sizeof(key), "bob:%d", 0);
	if (get(&ten[BOB], key, val, sizeof(val)) >= 0)
		ok = 0;

	printf("%-6s %8s %10s %10s %10s %7s %7s %9s %8s %6s\n", "tenant", "entries", "usage", "peak",
	       "max", "evicted", "events", "reclaimed", "failcnt", "fails");
	for (int i = 0; i < NT; i++) {
		struct slab_memcg_stat st;
		slab_memcg_stat(ten[i].group, &st);
		printf("%-6s %8zu %10zu %10zu %10zu %7lu %7lu %9lu %8lu %6lu\n", names[i], ten[i].entries,
		       st.usage, st.peak, st.max, ten[i].evicted, st.events_max, st.reclaimed, st.failcnt,
		       ten[i].failed_puts);
		if (st.usage > st.max || st.peak > st.max || ten[i].failed_puts)
			ok = 0;
		if (i != BOB && (ten[i].evicted || st.events_max))
			ok = 0;
	}
	if (!ten[BOB].evicted)
		ok = 0;
	printf("\n");
	slab_memcg_print(stdout);

	for (int i = 0; i < NT; i++) {
		tenant_clear(&ten[i]);
		struct slab_memcg_stat st;
		slab_memcg_stat(ten[i].group, &st);
		if (st.usage != 0 || st.nr_objects != 0)
			ok = 0;
		slab_memcg_remove_reclaim(ten[i].group, evict_lru, &ten[i]);
		slab_memcg_destroy(ten[i].group);
	}
	if (slab_cache_destroy(entry_cache) != 0)
		ok = 0;
	printf("\nisolation %s\n", ok ? "held" : "FAILED");
	return ok ? 0 : 1;
}
