/*
 * alloc.c - the object-cache entry points and the fast paths' out-of-line
 * helpers. The fast paths themselves are in fastpath.h.
 */
#include "fastpath.h"
#include "notify_event.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SN_GFP_KNOWN (SLAB_GFP_ZERO | SLAB_GFP_NOWAIT | SLAB_GFP_NOFAIL | SLAB_GFP_ACCOUNT)

/* Flags checks, zeroing and notification, after object @idx is off the
 * current slab's chain (found again here: passing it would cost the fast
 * path a register move). Inlined into both ways out of the fast path, so
 * that the drop-in's (errno on failure) makes no second call. */
static SN_ALWAYS_INLINE void *alloc_post(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
					 size_t req)
{
	struct slab_cpu *cpu = cpu_of(sn_tls_thread, c);
	void *obj = cpu->base_m1 + (size_t)(idx + 1) * c->size;
	if (unlikely(gfp & ~SN_GFP_KNOWN)) {
		slab_free_nohook(fn, c, cpu->slab, obj, idx);
		errno = EINVAL;
		return NULL;
	}
	uint32_t hooks = atomic_load_explicit(&c->hooks, memory_order_relaxed);
	/* Sampled into the guard pool: the slab's object goes back. Not while
	 * notified: a guarded object has no events, so they still pair up. */
	if ((hooks & (HOOK_GUARD | HOOK_ALLOC)) == HOOK_GUARD) {
		void *g = sn_guard_cache_sample(c, gfp);
		if (g) {
			slab_free_nohook(fn, c, cpu->slab, obj, idx);
			return g;
		}
	}
	if (hooks & HOOK_DEBUG)
		return sn_debug_alloc_hook(fn, c, cpu->slab, idx, obj, gfp, req);
	if (gfp & SLAB_GFP_ZERO)
		memset(obj, 0, c->object_size);
#ifndef SLABNOTIFY_NO_NOTIFY
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)
		return notify_alloc_event(c, cpu->slab, cpu, idx, obj, gfp, req);
#else
	(void)req;
#endif
	return obj;
}

static SN_NOINLINE void *alloc_post_full(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
					 size_t req)
{
	return alloc_post(fn, c, idx, gfp, req);
}

#ifndef SLABNOTIFY_NO_NOTIFY
static SN_NOINLINE void *alloc_post_charged_meta(const char *fn, struct slab_cache *c, uint32_t idx,
						 slab_gfp_t gfp, size_t req)
{
	return charged_alloc(fn, c, idx, gfp, req, alloc_post_full, NULL, true);
}

static SN_NOINLINE void *alloc_post_charged(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
					    size_t req)
{
	return charged_alloc(fn, c, idx, gfp, req, alloc_post_full, alloc_post_charged_meta, false);
}
#endif

/* The ways out of the fast path: the charges without an event for a
 * thread that has a stock for them (notify_event.h), everything else
 * the whole way. Each a tail call, after the one test. */
SN_NOINLINE void *alloc_post_hook(const char *fn, struct slab_cache *c, uint32_t idx, slab_gfp_t gfp,
				  size_t req)
{
#ifndef SLABNOTIFY_NO_NOTIFY
	if (unlikely(sn_tls_thread->stock))
		return alloc_post_charged(fn, c, idx, gfp, req);
#endif
	return alloc_post_full(fn, c, idx, gfp, req);
}

void slab_free_suspect_p(const char *fn, void *obj)
{
	struct slab *s = slab_of(obj);
	struct slab_cache *c = s->cache;
	slab_free_suspect(fn, c, s, obj, (uint32_t)slab_obj_index(c, s->base, obj));
}

void *alloc_chain_corrupt(const char *fn, struct slab_cache *c, const void *obj, uintptr_t link)
{
	slab_freelist_corrupt(fn, c, obj, link);
}

void *slab_alloc_slow_enomem(const char *fn, struct slab_cache *c, size_t req)
{
	void *p = slab_alloc_slow(fn, c, 0, req);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static SN_NOINLINE void *alloc_post_full_enomem(const char *fn, struct slab_cache *c, uint32_t idx,
						slab_gfp_t gfp, size_t req)
{
	(void)gfp;   /* 0 */
	void *p = alloc_post(fn, c, idx, 0, req);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

#ifndef SLABNOTIFY_NO_NOTIFY
static SN_NOINLINE void *alloc_post_charged_meta_enomem(const char *fn, struct slab_cache *c, uint32_t idx,
							slab_gfp_t gfp, size_t req)
{
	return charged_alloc(fn, c, idx, gfp, req, alloc_post_full_enomem, NULL, true);
}

static SN_NOINLINE void *alloc_post_charged_enomem(const char *fn, struct slab_cache *c, uint32_t idx, size_t req)
{
	return charged_alloc(fn, c, idx, 0, req, alloc_post_full_enomem, alloc_post_charged_meta_enomem, false);
}
#endif

void *alloc_post_hook_enomem(const char *fn, struct slab_cache *c, uint32_t idx, size_t req)
{
#ifndef SLABNOTIFY_NO_NOTIFY
	if (unlikely(sn_tls_thread->stock))
		return alloc_post_charged_enomem(fn, c, idx, req);
#endif
	return alloc_post_full_enomem(fn, c, idx, 0, req);
}

void free_bad_index(const char *fn, struct slab_cache *c, struct slab *s, const void *obj)
{
	/* A debug cache's objects are never at a slot's start. */
	if (atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_DEBUG) {
		sn_debug_free(fn, c, s, (void *)obj);
		return;
	}
	if (slab_obj_index(c, s->base, obj) < c->objects)
		sn_bad_free(fn, obj, c, "free of an object never allocated");
	sn_bad_free(fn, obj, c, "invalid pointer (not the start of an object)");
}

/* A free that may need a FREE event, the whole way (@tested: the
 * double-free test made). */
static SN_ALWAYS_INLINE void free_evented(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					  uint32_t idx, bool tested)
{
	if (!tested && unlikely(link_get(c, obj) <= c->objects))
		slab_confirm_free(fn, c, s, obj, idx);
#ifndef SLABNOTIFY_NO_NOTIFY
	notify_free_event(c, s, idx, obj);
#endif
	cache_free_plain(fn, c, s, obj, idx);
}

static SN_NOINLINE void cache_free_evented(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					   uint32_t idx)
{
	free_evented(fn, c, s, obj, idx, false);
}

#ifndef SLABNOTIFY_NO_NOTIFY
static SN_NOINLINE void cache_free_evented_tested(const char *fn, struct slab_cache *c, struct slab *s,
						  void *obj, uint32_t idx)
{
	free_evented(fn, c, s, obj, idx, true);
}

static SN_NOINLINE void cache_free_suspect(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					   uint32_t idx)
{
	slab_confirm_free(fn, c, s, obj, idx);
	cache_free_evented_tested(fn, c, s, obj, idx);
}

/* A charged object's free (notify_event.h), with nothing called; every
 * other way is a tail call, so that the common one saves no registers.
 * A slab with extension arrays (the owner may be another group) goes to
 * its own copy, which keeps that off the root's way. */
static SN_ALWAYS_INLINE void free_charged(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					  uint32_t idx, bool in_meta)
{
	if (unlikely(link_get(c, obj) <= c->objects)) {
		cache_free_suspect(fn, c, s, obj, idx);
		return;
	}
	size_t charged = charged_free(c, s, idx, in_meta);
	if (likely(charged == CHARGED_DONE)) {
		cache_free_plain_tested(fn, c, s, obj, idx);
		return;
	}
	if (charged != CHARGED_NO) {
		charged_free_slow(fn, c, s, obj, idx, charged);
		return;
	}
	cache_free_evented_tested(fn, c, s, obj, idx);
}

static SN_NOINLINE void cache_free_charged_meta(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
						uint32_t idx)
{
	free_charged(fn, c, s, obj, idx, true);
}

static SN_NOINLINE void cache_free_charged(const char *fn, struct slab_cache *c, struct slab *s, void *obj,
					   uint32_t idx)
{
	if (unlikely(atomic_load_explicit(&s->meta, memory_order_relaxed))) {
		cache_free_charged_meta(fn, c, s, obj, idx);
		return;
	}
	free_charged(fn, c, s, obj, idx, false);
}
#endif

/* Frees that may need a FREE event: a double free is caught before it
 * could be announced twice. The object's stamp picks the way. */
SN_NOINLINE void cache_free_hooked(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx)
{
#ifndef SLABNOTIFY_NO_NOTIFY
	uint32_t *stamps = stamps_of(s);
	if (stamps && stamps[idx] == STAMP_CHARGED) {
		cache_free_charged(fn, c, s, obj, idx);
		return;
	}
#endif
	cache_free_evented(fn, c, s, obj, idx);
}

#ifndef SLABNOTIFY_NO_NOTIFY
/* charged_free()'s rest (@left: its answer): the object goes back, then
 * what the stock could not do. */
SN_NOINLINE void charged_free_slow(const char *fn, struct slab_cache *c, struct slab *s, void *obj, uint32_t idx,
				   size_t left)
{
	const struct sn_charge *ch = atomic_load_explicit(&notify_charge, memory_order_relaxed);
	size_t n = event_footprint(c, s);
	const void *owner = charge_owner(ch, s, idx);   /* before the object can be reused */
	if (left == SIZE_MAX) {
		stamps_of(s)[idx] = 0;
		notified_dec(c);   /* the kick too */
		left = 0;          /* no stock */
	} else if (!(atomic_load_explicit(&c->hooks, memory_order_relaxed) & HOOK_ALLOC)) {
		notify_drain_kick(c);
	}
	cache_free_plain(fn, c, s, obj, idx);
	if (!left)
		ch->uncharge(owner, n);
	else if (left > ch->stock_max)
		ch->trim();
}
#endif

/* slab_of(), remembering a hit as the thread's last segment. Inline: it
 * is the whole cost of a free's miss (bintree's frees miss one in eight). */
static SN_ALWAYS_INLINE struct slab *slab_of_remember(struct slab_thread *t, const void *p)
{
	struct slab *s = slab_of(p);
	if (s && t != &sn_thread_dummy)
		t->last_seg = (uintptr_t)p & ~SN_SEG_MASK;
	return s;
}

/* sn_free_any() of a pointer outside the thread's last segment, or NULL. */
SN_NOINLINE void sn_free_any_miss(const char *fn, void *p)
{
	if (!p)
		return;
	struct slab_thread *t = sn_tls_thread;
	struct slab *s = slab_of_remember(t, p);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (unlikely(!c)) {
		free_not_slab(fn, p);
		return;
	}
	cache_free_by(t, fn, c, s, p);
}

/* Not in a slab segment: a large object, or not ours at all. */
SN_NOINLINE void free_not_slab(const char *fn, void *p)
{
	if (unlikely(sn_guard_owns(p))) {
		sn_guard_free(fn, p);
		return;
	}
	large_free(fn, p);
}

/* Is @p inside the brk heap (glibc's main arena)? Read from
 * /proc/self/maps without allocating: we are about to abort. */
static bool in_brk_heap(const void *p)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096], line[512];
	size_t ll = 0;
	bool found = false;
	ssize_t n;
	while (!found && (n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n && !found; i++) {
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			unsigned long lo, hi;
			if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
				found = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		}
	close(fd);
	return found;
}

void sn_bad_pointer(const char *fn, const void *p)
{
	if (p && in_brk_heap(p))
		sn_fatal("slabnotify: %s(): invalid pointer %p: it is in glibc's heap, not "
			 "slabnotify's: the program mixes allocators, or a library loaded with "
			 "RTLD_DEEPBIND allocated it with glibc's malloc", fn, p);
	sn_fatal("slabnotify: %s(): invalid pointer: pointer %p (not allocated by slabnotify)", fn, p);
}

void *slab_cache_alloc(struct slab_cache *h, slab_gfp_t gfp)
{
	struct slab_cache *c = cache_of_handle(h);
	if (unlikely(!c))
		return sn_fail_null(EINVAL);
	return cache_alloc("slab_cache_alloc", c, gfp);
}

static SN_COLD SN_NOINLINE void cache_free_mismatch(struct slab_cache *h, const void *obj)
{
	struct slab *s = slab_of(obj);
	struct slab_cache *owner = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	struct slab_cache *c = cache_of_handle(h);
	const char *owner_name = NULL;
	if (!owner && sn_guard_owns(obj)) {  /* sampled by SLAB_GUARD: src/debug/guard.c */
		const struct slab_cache *guarded_by = NULL;
		owner_name = sn_guard_live_owner(obj, &guarded_by);
		if (!owner_name || (guarded_by && guarded_by == c)) {
			sn_guard_free("slab_cache_free", (void *)obj);   /* or its report */
			return;
		}
	}
	if (!owner && large_find(obj))
		owner = sn_large_cache;
	if (owner)
		owner_name = owner->name;
	if (!owner_name)
		sn_bad_free("slab_cache_free", obj, c, c ? "invalid pointer" : "invalid pointer and cache handle");
	if (!c)
		sn_fatal("slabnotify: slab_cache_free(): invalid cache handle %p for an object of cache %s: "
			 "pointer %p", (void *)h, owner_name, obj);
	sn_fatal("slabnotify: slab_cache_free(): object of cache %s given to cache %s: pointer %p",
		 owner_name, c->name, obj);
}

/* slab_cache_free() of a pointer outside the thread's last segment, or
 * NULL (which misses it: SN_NO_SEGMENT). */
static SN_NOINLINE void slab_cache_free_miss(struct slab_cache *h, void *obj)
{
	if (!obj)
		return;
	struct slab_thread *t = sn_tls_thread;
	struct slab *s = slab_of_remember(t, obj);
	struct slab_cache *c = s ? __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE) : NULL;
	if (unlikely(!c || c->handle != (uintptr_t)h)) {
		cache_free_mismatch(h, obj);   /* returns for a guarded object: a tail call */
		return;
	}
	cache_free_by(t, "slab_cache_free", c, s, obj);
}

void slab_cache_free(struct slab_cache *h, void *obj)
{
	struct slab_thread *t = sn_tls_thread;
	struct slab *s = slab_of_last(t, obj);
	if (unlikely(!s)) {
		slab_cache_free_miss(h, obj);
		return;
	}
	struct slab_cache *c = __atomic_load_n(&s->cache, __ATOMIC_ACQUIRE);
	if (unlikely(!c || c->handle != (uintptr_t)h)) {
		cache_free_mismatch(h, obj);   /* returns for a guarded object: a tail call */
		return;
	}
	cache_free_by(t, "slab_cache_free", c, s, obj);
}

void slab_free(void *p)
{
	sn_free_any("slab_free", p);
}
