/*
 * test_report.c - slab_stats_report() (src/report.c): the text and JSON
 * variants carry the totals (checked against slab_cache_info() summed
 * here), the peaks, the vetoes by cause (failslab and memcg) and the
 * slabinfo table; reports while other threads allocate.
 *
 * Criterion runs every Test() in a fresh process.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <slabnotify.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static struct slab_cache *mkcache(const char *name, size_t size, slab_flags_t flags)
{
	struct slab_cache *c = slab_cache_create(name, size, 0, flags, NULL);
	cr_assert_not_null(c, "slab_cache_create(%s) failed: %s", name, strerror(errno));
	return c;
}

static char *report(bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	slab_stats_report(f, json);
	fclose(f);
	cr_assert_not_null(buf);
	return buf;
}

static unsigned long count_of(const char *s, const char *needle)
{
	unsigned long n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

struct totals {
	unsigned long caches, notifying, active_objs, slabs, active_slabs, large;
	size_t bytes, slab_bytes, large_bytes;
};

static void sum_fn(struct slab_cache *c, void *arg)
{
	struct totals *t = arg;
	struct slab_cache_info i;
	cr_assert_eq(slab_cache_info(c, &i), 0);
	t->caches++;
	t->notifying += i.notify;
	t->active_objs += i.active_objs;
	if (!strcmp(i.name, "kmalloc-large")) {
		t->large += i.active_objs;
		return;
	}
	t->bytes += i.active_objs * i.size;
	t->slabs += i.num_slabs;
	t->active_slabs += i.active_slabs;
	t->slab_bytes += i.num_slabs * i.slab_bytes;
}

static struct totals expected_totals(void)
{
	struct totals t;
	memset(&t, 0, sizeof(t));
	slab_cache_for_each(sum_fn, &t);
	struct slab_mem_stat m;
	cr_assert_eq(slab_mem_stat(&m), 0);
	t.large_bytes = m.large_in_use;
	return t;
}

static struct totals text_totals(const char *rep)
{
	struct totals t;
	const char *p = strstr(rep, "slabnotify: totals: ");
	cr_assert_not_null(p, "no totals in:\n%s", rep);
	int n = sscanf(p, "slabnotify: totals: %lu caches (%lu notifying), %lu active objects, %zu bytes, "
			  "%lu slabs (%lu active), %zu slab bytes, %lu large objects (%zu bytes)",
		       &t.caches, &t.notifying, &t.active_objs, &t.bytes, &t.slabs, &t.active_slabs,
		       &t.slab_bytes, &t.large, &t.large_bytes);
	cr_assert_eq(n, 9, "totals line: %.200s", p);
	return t;
}

/* The number after "\"key\":" in the first object named @section. */
static unsigned long long json_num(const char *rep, const char *section, const char *key)
{
	char pat[96];
	snprintf(pat, sizeof(pat), "\"%s\":{", section);
	const char *s = strstr(rep, pat);
	cr_assert_not_null(s, "no %s in %s", pat, rep);
	const char *end = strchr(s, '}');
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *k = strstr(s, pat);
	cr_assert(k && k < end, "no %s.%s in %.300s", section, key, s);
	return strtoull(k + strlen(pat), NULL, 10);
}

static void expect_same(struct totals a, struct totals b)
{
	cr_expect_eq(a.caches, b.caches);
	cr_expect_eq(a.notifying, b.notifying);
	cr_expect_eq(a.active_objs, b.active_objs);
	cr_expect_eq(a.bytes, b.bytes, "bytes %zu vs %zu", a.bytes, b.bytes);
	cr_expect_eq(a.slabs, b.slabs);
	cr_expect_eq(a.active_slabs, b.active_slabs);
	cr_expect_eq(a.slab_bytes, b.slab_bytes);
	cr_expect_eq(a.large, b.large);
	cr_expect_eq(a.large_bytes, b.large_bytes);
}

static void veto_counts(const char *rep, unsigned long *failslab, unsigned long *memcg)
{
	const char *p = strstr(rep, "slabnotify: vetoes: ");
	cr_assert_not_null(p, "%s", rep);
	unsigned long total;
	cr_assert_eq(sscanf(p, "slabnotify: vetoes: %lu failslab, %lu memcg, %lu total", failslab, memcg,
			    &total),
		     3, "%.100s", p);
	cr_expect_eq(total, *failslab + *memcg);
}

/* ------------------------------------------------------------------ */
/* Text                                                               */
/* ------------------------------------------------------------------ */

Test(report, text_sections_and_totals)
{
	struct slab_cache *c = mkcache("rp-objects", 200, 0);
	void *objs[100];
	for (int i = 0; i < 100; i++)
		objs[i] = slab_cache_alloc(c, 0);
	void *big = slab_malloc(500000, 0);
	void *small = slab_malloc(40, 0);
	cr_assert(big && small);

	struct totals want = expected_totals();
	char *rep = report(false);
	cr_expect(strncmp(rep, "slabnotify: totals: ", 20) == 0, "%s", rep);
	cr_expect(strstr(rep, "\nslabnotify: memory: ") != NULL, "%s", rep);
	cr_expect(strstr(rep, "\nslabnotify: peak: ") != NULL, "%s", rep);
	cr_expect(strstr(rep, "\nslabnotify: vetoes: ") != NULL, "%s", rep);
	cr_expect(strstr(rep, "\nslabinfo - version: 2.1\n# name ") != NULL, "%s", rep);
	cr_expect(strstr(rep, "\nrp-objects ") != NULL, "the cache's slabinfo line:\n%s", rep);
	cr_expect(strstr(rep, "\nkmalloc-large ") != NULL, "%s", rep);
	cr_expect(strstr(rep, "\nkmalloc-64 ") != NULL, "%s", rep);

	struct totals got = text_totals(rep);
	expect_same(got, want);
	cr_expect_geq(got.active_objs, 102);
	cr_expect_geq(got.bytes, 100 * 200 + 48);   /* slab_malloc(40): kmalloc-48 */
	cr_expect_eq(got.large, 1);
	cr_expect_geq(got.slab_bytes, got.bytes);

	/* The cache's own slabinfo line: 100 active objects of stride 200. */
	unsigned long active, num;
	size_t objsize;
	cr_assert_eq(sscanf(strstr(rep, "\nrp-objects ") + 1, "rp-objects %lu %lu %zu", &active, &num, &objsize),
		     3);
	cr_expect_eq(active, 100);
	cr_expect_eq(objsize, 200);
	free(rep);

	for (int i = 0; i < 100; i++)
		slab_cache_free(c, objs[i]);
	slab_free(big);
	slab_free(small);
	rep = report(false);
	expect_same(text_totals(rep), expected_totals());
	free(rep);
}

Test(report, peak_is_kept)
{
	struct slab_cache *c = mkcache("rp-peak", 1024, 0);
	void *objs[300];
	for (int i = 0; i < 300; i++)
		objs[i] = slab_cache_alloc(c, 0);
	void *big = slab_malloc(3 << 20, 0);
	cr_assert_not_null(big);
	struct slab_mem_stat high;
	cr_assert_eq(slab_mem_stat(&high), 0);
	char *rep = report(false);
	struct totals at_peak = text_totals(rep);
	cr_expect_geq(at_peak.large_bytes, 3 << 20);
	free(rep);
	for (int i = 0; i < 300; i++)
		slab_cache_free(c, objs[i]);
	slab_free(big);
	slab_cache_shrink(c);
	rep = report(false);
	struct totals after = text_totals(rep);
	size_t in_use, mem_peak, peak, at_report, tracked, tracked_live, memcg_peak;
	const char *p = strstr(rep, "slabnotify: memory: ");
	cr_assert_not_null(p);
	cr_assert_eq(sscanf(p, "slabnotify: memory: %zu bytes in use, peak %zu", &in_use, &mem_peak), 2,
		     "%.200s", p);
	p = strstr(rep, "slabnotify: peak: ");
	cr_assert_not_null(p);
	cr_assert_eq(sscanf(p, "slabnotify: peak: %zu bytes of memory, %zu object bytes at a report, "
			       "%zu tracked bytes (%zu live), %zu memcg bytes",
			    &peak, &at_report, &tracked, &tracked_live, &memcg_peak),
		     5, "%.200s", p);
	struct slab_mem_stat now;
	cr_assert_eq(slab_mem_stat(&now), 0);
	cr_expect_lt(after.bytes, at_peak.bytes);
	cr_expect_eq(after.large_bytes, 0);
	cr_expect_eq(peak, now.peak, "the memory peak is the page layer's");
	cr_expect_eq(mem_peak, now.peak);
	cr_expect_geq(peak, high.in_use, "it covers the moment of most use");
	cr_expect_geq(peak, 300 * 1024 + (3 << 20));
	cr_expect_lt(in_use, peak);
	cr_expect_eq(at_report, at_peak.bytes, "the highest total object bytes reported");
	cr_expect_eq(tracked, 0, "no leak tracking, no tracked peak");
	free(rep);
	rep = report(true);
	cr_expect_eq(json_num(rep, "peak", "memory"), now.peak);
	cr_expect_eq(json_num(rep, "peak", "bytes"), at_peak.bytes);
	cr_expect_eq(json_num(rep, "memory", "peak"), now.peak);
	cr_expect_eq(json_num(rep, "memory", "large_in_use"), 0);
	free(rep);
}

Test(report, tracked_peak_from_the_leak_tracker)
{
	struct slab_cache *c = mkcache("rp-tracked", 512, SLAB_NOTIFY);
	cr_assert_eq(slab_leak_track(1), 0);
	void *objs[200];
	for (int i = 0; i < 200; i++)
		objs[i] = slab_cache_alloc(c, 0);
	for (int i = 0; i < 200; i++)
		slab_cache_free(c, objs[i]);
	void *keep = slab_cache_alloc(c, 0);
	char *rep = report(true);
	cr_expect_geq(json_num(rep, "peak", "tracked_bytes"), 200 * 512);
	cr_expect_lt(json_num(rep, "peak", "tracked_bytes"), 200 * 512 + 4096,
		     "nothing else of that size was live");
	cr_expect_geq(json_num(rep, "peak", "tracked_live"), 512);
	cr_expect_lt(json_num(rep, "peak", "tracked_live"), 2 * 512 + 4096);
	free(rep);
	slab_cache_free(c, keep);
	cr_assert_eq(slab_leak_track(0), 0);
}

Test(report, vetoes_by_cause_failslab)
{
	struct slab_cache *c = mkcache("rp-veto", 64, SLAB_NOTIFY);
	struct slab_fault_attr a = { .probability = 100, .interval = 1, .times = 7, .seed = 3 };
	cr_assert_eq(slab_fault_inject(&a), 0);
	int nulls = 0;
	for (int i = 0; i < 20; i++) {
		void *p = slab_cache_alloc(c, 0);
		if (!p)
			nulls++;
		slab_cache_free(c, p);
	}
	cr_assert_eq(nulls, 7);
	cr_assert_eq(slab_fault_inject(NULL), 0);
	char *rep = report(false);
	unsigned long fs, mc;
	veto_counts(rep, &fs, &mc);
	cr_expect_eq(fs, 7);
	cr_expect_eq(mc, 0);
	free(rep);
	rep = report(true);
	cr_expect_eq(json_num(rep, "vetoes", "failslab"), 7);
	cr_expect_eq(json_num(rep, "vetoes", "memcg"), 0);
	cr_expect_eq(json_num(rep, "vetoes", "total"), 7);
	free(rep);
}

Test(report, vetoes_by_cause_memcg)
{
	struct slab_memcg *root = slab_memcg_root();
	cr_assert_not_null(root);
	cr_assert_eq(slab_memcg_set_max(root, 64 * 1024), 0);
	void *objs[64];
	int got = 0, nulls = 0;
	for (int i = 0; i < 64; i++) {
		void *p = slab_malloc(4096, SLAB_GFP_ACCOUNT);
		if (p)
			objs[got++] = p;
		else
			nulls++;
	}
	cr_expect_gt(nulls, 0, "a 64 KiB cap stops 64 x 4 KiB");
	struct slab_memcg_stat st;
	cr_assert_eq(slab_memcg_stat(root, &st), 0);
	cr_expect_gt(st.failcnt, 0);
	char *rep = report(false);
	unsigned long fs, mc;
	veto_counts(rep, &fs, &mc);
	cr_expect_eq(fs, 0);
	cr_expect_eq(mc, st.failcnt);
	free(rep);
	rep = report(true);
	cr_expect_eq(json_num(rep, "vetoes", "memcg"), st.failcnt);
	cr_expect_eq(json_num(rep, "memcg", "failcnt"), st.failcnt);
	cr_expect_eq(json_num(rep, "peak", "memcg_bytes"), st.peak);
	free(rep);
	for (int i = 0; i < got; i++)
		slab_free(objs[i]);
	cr_assert_eq(slab_memcg_set_max(root, SIZE_MAX), 0);
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

Test(report, json_document)
{
	struct slab_cache *c = mkcache("rp-json \"quoted\"", 96, SLAB_NOTIFY);
	void *objs[10];
	for (int i = 0; i < 10; i++)
		objs[i] = slab_cache_alloc(c, 0);
	void *big = slab_malloc(300000, 0);
	struct totals want = expected_totals();
	char *rep = report(true);
	cr_expect_eq(rep[0], '{', "%s", rep);
	size_t len = strlen(rep);
	cr_expect(len > 2 && rep[len - 2] == '}' && rep[len - 1] == '\n', "one document, one line");
	cr_expect_eq(count_of(rep, "\n"), 1);
	cr_expect_eq(count_of(rep, "{"), count_of(rep, "}"));
	cr_expect_eq(count_of(rep, "["), count_of(rep, "]"));
	const char *sections[] = { "\"totals\":{", "\"memory\":{", "\"peak\":{", "\"vetoes\":{", "\"memcg\":{",
				   "\"slabinfo\":[" };
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		cr_expect(strstr(rep, sections[i]) != NULL, "%s in %s", sections[i], rep);
	cr_expect(strstr(rep, "{\"name\":\"rp-json \\\"quoted\\\"\",\"active_objs\":10,") != NULL,
		  "the cache, escaped: %s", rep);
	cr_expect(strstr(rep, "{\"name\":\"kmalloc-large\",\"active_objs\":1,") != NULL, "%s", rep);
	cr_expect_eq(json_num(rep, "totals", "caches"), want.caches);
	cr_expect_eq(json_num(rep, "totals", "active_objs"), want.active_objs);
	cr_expect_eq(json_num(rep, "totals", "bytes"), want.bytes);
	cr_expect_eq(json_num(rep, "totals", "slabs"), want.slabs);
	cr_expect_eq(json_num(rep, "totals", "slab_bytes"), want.slab_bytes);
	cr_expect_eq(json_num(rep, "totals", "large_objects"), 1);
	cr_expect_eq(json_num(rep, "totals", "large_bytes"), want.large_bytes);
	cr_expect_geq(json_num(rep, "totals", "large_bytes"), 300000);
	cr_expect_geq(json_num(rep, "peak", "bytes"), want.bytes);
	cr_expect_geq(json_num(rep, "peak", "memory"), want.slab_bytes + want.large_bytes);
	/* Every cache appears once in the table. */
	cr_expect_eq(count_of(rep, "{\"name\":"), want.caches);
	free(rep);
	for (int i = 0; i < 10; i++)
		slab_cache_free(c, objs[i]);
	slab_free(big);
}

Test(report, null_file_is_ignored)
{
	slab_stats_report(NULL, false);
	slab_stats_report(NULL, true);
}

/* ------------------------------------------------------------------ */
/* Threads                                                            */
/* ------------------------------------------------------------------ */

static atomic_bool stop;

static void churn_round(struct slab_cache *c)
{
	void *p[32];
	for (int i = 0; i < 32; i++)
		p[i] = (i & 1) ? slab_cache_alloc(c, 0) : slab_malloc((size_t)i * 40, 0);
	for (int i = 0; i < 32; i++) {
		if (i & 1)
			slab_cache_free(c, p[i]);
		else
			slab_free(p[i]);
	}
}

static void *churn(void *arg)
{
	struct slab_cache *c = arg;
	while (!atomic_load(&stop))
		churn_round(c);
	return NULL;
}

/*
 * Reports while three threads allocate and free: the first report (whose
 * slab_memcg_root() registers memcg's notifier) and the threads' first
 * touches of every cache happen while the others run.
 */
Test(report, while_threads_allocate)
{
	struct slab_cache *c = mkcache("rp-mt", 128, SLAB_NOTIFY);
	cr_assert_eq(slab_leak_track(4), 0);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn, c), 0);
	for (int i = 0; i < 20; i++) {
		char *rep = report(i & 1);
		cr_expect(strstr(rep, (i & 1) ? "\"totals\":{" : "slabnotify: totals:") != NULL);
		free(rep);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	char *rep = report(false);
	expect_same(text_totals(rep), expected_totals());
	free(rep);
}
