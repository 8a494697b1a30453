/*
 * ht_churn - a string-keyed hash table under churn.
 *
 * A chained hash table maps string keys (8..200 bytes) to string values
 * (4..96 bytes).  Each entry is one allocation (header + key inline) and
 * its value is a second one.  The loop picks a key id at random from a key
 * space of KEYS ids: an absent key is inserted, a present one is deleted
 * (1/2), has its value replaced by one of another length (1/4) or is only
 * looked up (1/4).  The table grows by reallocating its bucket array.
 * Every 2^18 operations a sweep deletes every entry whose id is in one
 * residue class mod 5, freeing a burst of objects scattered all over the
 * heap.  About 90k entries are live at the end (~20 MB).
 *
 * Prints: operations, live entries, and a checksum of every value read
 * plus the final contents.
 */
#include "wl_common.h"

#define KEYS (140u * 1024)

struct ent {
	struct ent *next;
	uint64_t hash;
	char *val;
	uint32_t id;
	uint16_t klen, vlen;
	char key[];
};

static struct ent **tab;
static size_t nbuckets, nlive;

/* The key of id: its length and bytes are a function of id only. */
static size_t make_key(uint32_t id, char *buf)
{
	uint64_t s = wl_mix(id + 1);
	size_t len = 8 + (size_t)(wl_next(&s) % 193);
	size_t i = 0;
	/* Start with the id in decimal, so keys are unique. */
	uint32_t v = id;
	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf[i++] = ':';
	while (i < len) {
		uint64_t r = wl_next(&s);
		for (int k = 0; k < 8 && i < len; k++, r >>= 8)
			buf[i++] = (char)('a' + (r & 0xff) % 26);
	}
	buf[len] = '\0';
	return len;
}

static uint64_t hash_str(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static char *make_val(uint64_t *rng, uint16_t *vlen)
{
	size_t n = wl_range(rng, 4, 96);
	char *v = wl_check(malloc(n + 1), n + 1, "value");
	uint64_t r = wl_next(rng);
	for (size_t i = 0; i < n; i++)
		v[i] = (char)('A' + (r >> (i % 56)) % 26);
	v[n] = '\0';
	*vlen = (uint16_t)n;
	return v;
}

static void grow(void)
{
	size_t nb = nbuckets ? nbuckets * 2 : 1024;
	struct ent **t = wl_check(calloc(nb, sizeof(*t)), nb * sizeof(*t), "buckets");
	for (size_t b = 0; b < nbuckets; b++) {
		struct ent *e = tab[b], *next;
		for (; e; e = next) {
			next = e->next;
			size_t nbk = e->hash & (nb - 1);
			e->next = t[nbk];
			t[nbk] = e;
		}
	}
	free(tab);
	tab = t;
	nbuckets = nb;
}

static uint64_t val_sum(const struct ent *e)
{
	return hash_str(e->val, e->vlen) ^ e->vlen;
}

int main(int argc, char **argv)
{
	unsigned long ops = wl_scale(argc, argv, 1200000);
	uint64_t rng = 42, sum = 0;
	char key[256];
	grow();
	for (unsigned long op = 0; op < ops; op++) {
		uint32_t id = (uint32_t)(wl_next(&rng) % KEYS);
		size_t klen = make_key(id, key);
		uint64_t h = hash_str(key, klen);
		struct ent **pp = &tab[h & (nbuckets - 1)], *e;
		for (e = *pp; e; pp = &e->next, e = e->next)
			if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
				break;
		if (!e) {
			size_t sz = sizeof(*e) + klen + 1;
			e = wl_check(malloc(sz), sz, "entry");
			e->hash = h;
			e->id = id;
			e->klen = (uint16_t)klen;
			memcpy(e->key, key, klen + 1);
			e->val = make_val(&rng, &e->vlen);
			size_t b = h & (nbuckets - 1);
			e->next = tab[b];
			tab[b] = e;
			if (++nlive > nbuckets)
				grow();
		} else {
			unsigned what = (unsigned)(wl_next(&rng) & 3);
			sum = wl_fold(sum, val_sum(e));
			if (what < 2) {
				*pp = e->next;
				free(e->val);
				free(e);
				nlive--;
			} else if (what == 2) {
				free(e->val);
				e->val = make_val(&rng, &e->vlen);
			}
		}
		if ((op & ((1u << 18) - 1)) == (1u << 18) - 1) {
			uint32_t cls = (uint32_t)(op >> 18) % 5;
			for (size_t b = 0; b < nbuckets; b++) {
				struct ent **q = &tab[b];
				while ((e = *q)) {
					if (e->id % 5 == cls) {
						*q = e->next;
						free(e->val);
						free(e);
						nlive--;
					} else {
						q = &e->next;
					}
				}
			}
		}
	}
	/* Final contents, independent of bucket order; then free all. */
	uint64_t content = 0;
	for (size_t b = 0; b < nbuckets; b++) {
		struct ent *e = tab[b], *next;
		for (; e; e = next) {
			next = e->next;
			content += wl_mix(e->hash ^ val_sum(e));
			free(e->val);
			free(e);
		}
	}
	free(tab);
	printf("ht_churn ops=%lu live=%zu checksum=%016llx content=%016llx\n", ops, nlive,
	       (unsigned long long)sum, (unsigned long long)content);
	return 0;
}
