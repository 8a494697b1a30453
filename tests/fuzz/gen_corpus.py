#!/usr/bin/env python3
"""Write the seed corpus of the fuzz harness to tests/fuzz/corpus/ (and the
hand-made reproducers in tests/fuzz/regressions/).

Each seed is a short, readable sequence of operations; together they use
every operation of the harness and every mode of its handlers. The
opcodes are read from op_names[] in fuzz_slabnotify.c, so the seeds
follow the harness when operations are added (append new ones at the
end of the enum to keep old crash files meaningful).

    python3 tests/fuzz/gen_corpus.py      # rewrites tests/fuzz/corpus/

The argument bytes of each operation are documented in README.md.
"""
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "fuzz_slabnotify.c")
OUT = os.path.join(HERE, "corpus")

text = open(SRC).read()
m = re.search(r"op_names\[NR_OPS\]\s*=\s*\{(.*?)\};", text, re.S)
OPS = re.findall(r'"([a-z_]+)"', m.group(1))
assert len(OPS) > 20, OPS

# Argument bytes per operation (see README.md).
NARGS = {
    "malloc": 4, "free": 2, "realloc": 5, "malloc_aligned": 5, "usable_size": 1,
    "cache_create": 4, "cache_alloc": 2, "cache_bulk": 3, "cache_shrink": 1,
    "cache_destroy": 1, "set_notify": 2, "handler_mode": 3, "handler_toggle": 1,
    "memcg_create": 1, "memcg_destroy": 1, "memcg_enter": 1, "memcg_limit": 3,
    "memcg_misc": 2, "memcg_reclaim": 1, "fault_inject": 4, "fault_stop": 0,
    "rcu_free": 1, "check_all": 0, "free_many": 2, "info": 1, "rcu_barrier": 1,
    "thread": 5,
}
assert set(NARGS) == set(OPS), set(OPS) ^ set(NARGS)


def op(name, *args):
    args = list(args)
    assert len(args) == NARGS[name], (name, args)
    assert all(0 <= a < 256 for a in args), (name, args)
    return bytes([OPS.index(name)] + args)


def u16(v):
    return [v & 255, v >> 8]


# gfp selectors (malloc_gfps[] and cache_gfps[] in the harness)
G0, GZERO, GACC, GACCZ, GNOFAIL, GACCNOFAIL, GNOWAIT = 0, 3, 4, 6, 7, 8, 9
C0, CZERO, CNOFAIL, CZNOFAIL, CNOWAIT = 0, 2, 3, 4, 5
# handler mode bits
VETO_ALLOC, VETO_PAGE, ONESHOT, ALLOC_IN, FREE_IN, CACHE_IN, RET_OK, UNREG_TRY = (
    1, 2, 4, 8, 16, 32, 64, 128)
# cache_create flag byte: size range in bits 6-7
HW, NOTIFY, ACCOUNT, CTOR, TYPESAFE = 0x01, 0x02, 0x04, 0x10, 0x28
# persistent caches are user-cache selectors 0, 1, 2; input caches follow
P0, P1, P2, IN0, IN1 = 0, 1, 2, 3, 4


def builtin(k):
    """set_notify/cache_shrink selector of built-in cache k (0..15
    kmalloc-N, 16..31 kmalloc-cg-N, 32 kmalloc-large)."""
    for s in range(160, 256):
        if s % 33 == k:
            return s
    raise ValueError(k)


def malloc(sel, v, g=G0):
    return op("malloc", sel, *u16(v), g)


def create(size, flags=0, asel=0, rng=0):
    return op("cache_create", *u16(size), asel, flags | (rng << 6))


seeds = {}

seeds["malloc-free"] = b"".join(
    [malloc(s, v) for s in range(8) for v in (0, 7, 300, 5000)] + [op("free", 0, 0)] * 40)
seeds["malloc-classes"] = b"".join(
    [malloc(5, k | (d << 4)) for k in range(16) for d in range(3)] + [op("check_all"), op("free_many", 0, 47)])
seeds["malloc-large"] = b"".join(
    [malloc(4, v, g) for v, g in ((1, G0), (9000, GZERO), (20000, GACC), (40000, GACCZ))]
    + [op("usable_size", i) for i in range(4)] + [op("free", 1, 0), op("free", 0, 0)])
seeds["malloc-gfp"] = b"".join(malloc(1, 100 + g, g) for g in range(16))
seeds["realloc"] = b"".join(
    [malloc(1, 40), malloc(2, 1000)]
    + [op("realloc", 0, 2, *u16(3000), G0), op("realloc", 1, 1, *u16(10), GZERO),
       op("realloc", 0, 4, *u16(100), G0), op("realloc", 1, 3, *u16(60000), GACC),
       op("realloc", 0, 0, *u16(5), GZERO), op("realloc", 1, 0xf0, 0, 0, G0)])
seeds["realloc-large"] = b"".join(
    [malloc(4, 100), op("realloc", 0, 4, *u16(30000), GZERO), op("realloc", 0, 4, *u16(200), G0),
     op("set_notify", builtin(32), 0), malloc(4, 5000), op("realloc", 1, 4, *u16(60000), GZERO),
     op("realloc", 0, 2, *u16(100), G0), op("set_notify", builtin(32), 1), op("check_all")])
seeds["aligned"] = b"".join(
    op("malloc_aligned", s, *u16(v), a, g)
    for s, v, a, g in ((0, 3, 0, G0), (1, 50, 4, GZERO), (2, 700, 37, GACC), (6, 1000, 75, G0),
                       (3, 30000, 76, GNOFAIL), (4, 100, 109, GACC), (0, 1, 0x73, GZERO),
                       (1, 9, 0x6d, G0)))
seeds["aligned-invalid"] = b"".join(
    op("malloc_aligned", 1, 10, 0, a, G0) for a in (0x80, 0x81, 0x83, 0xa0, 0xa5))
seeds["cache-plain"] = b"".join(
    [create(100), op("cache_alloc", IN0, C0), op("cache_alloc", IN0, CZERO),
     op("cache_alloc", IN0, CNOWAIT), op("usable_size", 0), op("free", 0, 1), op("free", 0, 0),
     op("free", 0, 1), op("cache_destroy", IN0)])
seeds["cache-ctor"] = b"".join(
    [create(40, CTOR), op("cache_bulk", IN0, 0, 40), op("free_many", 3, 30),
     op("cache_bulk", IN0, 0, 20), op("cache_alloc", P1, C0), op("check_all")])
seeds["cache-typesafe"] = b"".join(
    [create(64, TYPESAFE | NOTIFY), op("cache_bulk", IN0, 0, 30), op("rcu_free", 0), op("rcu_free", 3),
     op("cache_bulk", P0, 0, 10), op("cache_bulk", P1, 0, 10), op("rcu_free", 1), op("rcu_free", 7)])
seeds["cache-notify-account"] = b"".join(
    [op("memcg_create", 0), op("memcg_enter", 1), create(200, NOTIFY), create(72, ACCOUNT, rng=1),
     op("cache_bulk", IN0, 0, 10), op("cache_bulk", IN1, 1, 10), op("cache_bulk", P2, 0, 10),
     op("memcg_misc", 1, 3), op("free_many", 0, 15)])
seeds["cache-hwcache-align"] = b"".join(
    [create(10, HW), create(100, 0, asel=7), create(3000, NOTIFY, asel=9, rng=2),
     op("cache_alloc", IN0, C0), op("cache_alloc", IN1, C0), op("cache_alloc", IN0 + 2, CZERO)])
seeds["cache-destroy-busy"] = b"".join(
    [create(32, NOTIFY), op("cache_alloc", IN0, C0), op("cache_destroy", IN0), op("cache_alloc", P0, C0),
     op("cache_destroy", P0), op("free", 0, 1), op("cache_destroy", IN0)])
seeds["cache-einval"] = b"".join(
    [create(0), create(100, 0, asel=12), create(100, 0, asel=13), create(100, 0, asel=0xf0),
     create(0xffff, 0, rng=3), create(65535, 0, asel=15, rng=3), create(60000, CTOR, asel=14, rng=3)])
seeds["cache-shrink"] = b"".join(
    [create(500, NOTIFY, rng=1), op("cache_bulk", IN0, 0, 64), op("free_many", 0, 48),
     op("cache_shrink", IN0), op("free_many", 0, 20), op("cache_shrink", IN0), op("cache_shrink", builtin(3)),
     op("cache_shrink", builtin(32)), op("cache_shrink", P0)])
seeds["set-notify"] = b"".join(
    [op("set_notify", builtin(4), 1), malloc(7, 60), op("set_notify", builtin(4), 0), op("free", 0, 0),
     malloc(7, 60), op("set_notify", P1, 1), op("cache_alloc", P1, C0), op("set_notify", P1, 0),
     op("free", 1, 0), create(24), op("set_notify", IN0, 1), op("cache_alloc", IN0, C0), op("free", 1, 0),
     op("set_notify", IN0, 0), op("cache_alloc", IN0, C0), op("set_notify", builtin(20), 0),
     malloc(1, 100, GACC)])
seeds["handler-veto-alloc"] = b"".join(
    [op("handler_mode", h, VETO_ALLOC, e) for h, e in ((1, 0),)] + [op("cache_alloc", P0, C0)]
    + [b for e in range(8) for b in (op("handler_mode", e % 5, VETO_ALLOC | RET_OK, e),
                                       op("cache_alloc", P0, C0), malloc(1, 100, GACC))])
seeds["handler-veto-page"] = b"".join(
    [create(2000, NOTIFY, rng=2), op("handler_mode", 3, VETO_PAGE, 2), op("cache_bulk", IN0, 0, 20),
     op("handler_mode", 0, VETO_PAGE | ONESHOT, 5), op("cache_bulk", IN0, 0, 20)])
seeds["handler-nofail"] = b"".join(
    [op("handler_mode", 2, VETO_ALLOC | VETO_PAGE, 1), op("cache_bulk", P0, 3, 30), malloc(1, 100, GACCNOFAIL),
     op("cache_alloc", P2, CZNOFAIL), op("free_many", 0, 40)])
seeds["handler-oneshot"] = b"".join(
    [op("handler_mode", 1, VETO_ALLOC | ONESHOT, 0xc3), op("cache_bulk", P0, 0, 8),
     op("handler_mode", 4, VETO_ALLOC | ONESHOT, 0x42), op("cache_bulk", P2, 0, 8)])
seeds["handler-inside"] = b"".join(
    [op("handler_mode", 1, ALLOC_IN, 0), op("handler_mode", 3, FREE_IN | CACHE_IN, 0),
     op("handler_mode", 0, CACHE_IN | ALLOC_IN, 0), op("cache_bulk", P0, 0, 40), op("cache_bulk", P1, 0, 5),
     create(300, NOTIFY | CTOR), op("cache_bulk", IN0, 0, 30), malloc(2, 3000, GACC), op("free_many", 0, 48),
     op("handler_mode", 2, FREE_IN | UNREG_TRY, 0), op("cache_bulk", P2, 0, 20), op("free_many", 0, 48)])
seeds["handler-toggle"] = b"".join(
    [op("cache_bulk", P0, 0, 5), op("handler_toggle", 0), op("cache_bulk", P0, 0, 5), op("free_many", 0, 4),
     op("handler_toggle", 2), op("handler_toggle", 0), op("free_many", 0, 10), op("handler_toggle", 1),
     op("handler_mode", 2, VETO_ALLOC, 3), op("cache_alloc", P0, C0), op("handler_toggle", 2)])
seeds["memcg-basic"] = b"".join(
    [op("memcg_create", 0), op("memcg_create", 1), op("memcg_enter", 2), malloc(1, 100, GACC),
     malloc(2, 2000, GACCZ), malloc(4, 100, GACC), op("cache_bulk", P2, 0, 5), op("memcg_enter", 0),
     op("memcg_misc", 2, 3), op("memcg_misc", 1, 0), op("free", 1, 0), op("memcg_destroy", 1),
     op("memcg_destroy", 0)])
seeds["memcg-max"] = b"".join(
    [op("memcg_create", 0), op("memcg_enter", 1), op("memcg_limit", 1, 1, 24), op("cache_bulk", P2, 0, 50),
     malloc(1, 100, GACC), malloc(1, 100, GACCNOFAIL), op("memcg_misc", 1, 3), op("memcg_limit", 1, 1, 16),
     op("cache_bulk", P2, 0, 5), op("memcg_limit", 1, 1, 0x50), op("malloc", 1, 100, 0, GACC)])
seeds["memcg-high"] = b"".join(
    [op("memcg_create", 0), op("memcg_enter", 1), op("memcg_limit", 1, 0, 17), op("cache_bulk", P2, 0, 20),
     op("memcg_limit", 0, 0, 20), op("cache_bulk", P2, 0, 5), op("memcg_misc", 1, 0)])
seeds["memcg-reclaim"] = b"".join(
    [op("memcg_create", 0), op("memcg_enter", 1), op("memcg_reclaim", 0), op("cache_bulk", P2, 0, 30),
     op("memcg_limit", 1, 1, 0x48), op("cache_bulk", P2, 0, 10), op("memcg_limit", 1, 0, 0x44),
     op("cache_bulk", P2, 0, 10), op("memcg_reclaim", 0), op("memcg_limit", 1, 1, 16)])
seeds["memcg-reparent"] = b"".join(
    [op("memcg_create", 0), op("memcg_create", 1), op("memcg_enter", 2), op("cache_bulk", P2, 0, 10),
     malloc(4, 50, GACC), op("memcg_destroy", 1), op("memcg_destroy", 0), op("memcg_enter", 0),
     op("memcg_destroy", 1), op("memcg_destroy", 0), op("memcg_misc", 0, 3), op("free_many", 0, 20)])
seeds["fault-prob"] = b"".join(
    [op("fault_inject", 6, 0, 0, 7), op("cache_bulk", P0, 0, 30), malloc(1, 40, G0),
     op("set_notify", builtin(2), 0), malloc(1, 20, G0), op("fault_inject", 8, 0, 3, 1),
     op("cache_bulk", P0, 0, 10)])
seeds["fault-interval-times"] = b"".join(
    [op("fault_inject", 0x28, 4, 0, 1), op("cache_bulk", P0, 0, 20), op("fault_inject", 0x45, 2, 1, 9),
     malloc(1, 70, G0), malloc(1, 70, G0), op("cache_bulk", P2, 0, 10), op("fault_inject", 0x78, 3, 0, 3),
     op("cache_bulk", P0, 0, 20)])
seeds["fault-space-filter"] = b"".join(
    [op("fault_inject", 8, 0x10, 3, 0), op("cache_bulk", P0, 0, 20), op("fault_inject", 8, 0x60, 5, 0),
     op("cache_bulk", P1, 0, 5), op("cache_bulk", P0, 0, 5), op("fault_inject", 8, 0xa0, 9, 0),
     malloc(4, 100, G0), malloc(4, 100, GACC), op("fault_inject", 8, 0, 8, 0), op("cache_alloc", P0, C0),
     op("fault_inject", 8, 0, 7, 0), op("cache_alloc", P0, C0)])
seeds["fault-stop"] = b"".join(
    [op("fault_inject", 7, 0, 4, 2), op("cache_bulk", P0, 0, 10), op("fault_stop"), op("cache_bulk", P0, 0, 10),
     op("fault_inject", 3, 0, 2, 2), op("cache_bulk", P2, 0, 10)])
seeds["fault-einval"] = b"".join(op("fault_inject", a, 0, 0, 0) for a in (12, 13, 14))
seeds["info"] = b"".join(
    [malloc(1, 10), op("cache_alloc", P0, C0)] + [op("info", w) for w in range(8)])
seeds["checks"] = b"".join(
    [malloc(s, 1234) for s in range(7)] + [op("check_all"), op("usable_size", 3), op("free_many", 2, 3),
                                           op("check_all")])
seeds["veto-memcg-order"] = b"".join(
    [op("memcg_create", 0), op("memcg_enter", 1), op("memcg_limit", 1, 1, 20), op("handler_mode", 1, RET_OK, 0),
     op("handler_mode", 3, VETO_ALLOC, 4), op("cache_bulk", P2, 0, 4), op("handler_mode", 3, 0, 0),
     op("cache_bulk", P2, 0, 60), op("handler_mode", 0, VETO_ALLOC | ONESHOT, 6), op("cache_alloc", P2, C0)])
seeds["input-typesafe-off"] = b"".join(
    [create(80, TYPESAFE | ACCOUNT), op("cache_bulk", IN0, 0, 10), op("free_many", 0, 10),
     op("set_notify", IN0, 0), op("cache_alloc", IN0, C0), op("set_notify", IN0, 1), op("cache_alloc", IN0, C0)])
seeds["drain-barrier"] = b"".join(
    [op("set_notify", builtin(4), 1), malloc(7, 90), op("cache_alloc", P0, C0), op("set_notify", builtin(4), 0),
     op("set_notify", P0, 0), op("rcu_barrier", 0xff), op("free", 0, 0), op("free", 0, 0), malloc(7, 90),
     op("cache_alloc", P0, C0), op("set_notify", P0, 1)])

seeds["thread"] = b"".join(
    [op("cache_bulk", P0, 0, 40), malloc(1, 100, GACC), op("thread", 1 | (5 << 1) | (3 << 5), P0, 20, 0, 0),
     op("thread", (4 << 1) | (7 << 5), 6, 3, 0x34, 0x12), op("handler_mode", 1, VETO_ALLOC | ONESHOT, 0),
     op("thread", 1 | (3 << 1) | (2 << 5), P2, 0, 0, 0), op("free_many", 0, 48)])

# A few longer mixed sequences, deterministic.
rng = random.Random(20240601)
for n in range(6):
    parts = []
    for _ in range(60 + 40 * n):
        name = rng.choice(OPS)
        if name == "fault_stop" and rng.random() < 0.7:
            name = "cache_bulk"
        parts.append(op(name, *[rng.randrange(256) for _ in range(NARGS[name])]))
    seeds["mixed-%d" % n] = b"".join(parts)

# Reproducers of fixed bugs, for tests/fuzz/regressions/ (replayed by
# CTest; README.md there says what each was).
crashes = {}
# Issue 8, 1: notification switched off twice, destroy, create in the
# same slot: the drain requeued during destroy's rcu_barrier ran from a
# zeroed rcu_head (SIGSEGV at pc 0, call_rcu thread).
crashes["notify-off-twice-then-reuse"] = b"".join(
    [create(24, NOTIFY), op("set_notify", IN0, 0), op("set_notify", IN0, 0), op("cache_destroy", IN0),
     create(24, NOTIFY), op("rcu_barrier", 0xff)])
# Issue 8, 2: a cache with two notified slabs destroyed, a new one in its
# slot, one object, notification off, the drain runs: the object's FREE
# was never delivered.
crashes["lost-free-after-recreate"] = b"".join(
    [create(3000, NOTIFY, rng=2), op("cache_bulk", IN0, 0, 29), op("free_many", 0, 30), op("cache_destroy", IN0),
     create(3000, NOTIFY, rng=2), op("cache_alloc", IN0, C0), op("set_notify", IN0, 0), op("rcu_barrier", 0xff),
     op("free", 0, 1)])
# A vetoed SLAB_GFP_ZERO allocation from a constructor cache went back to
# the freelist zeroed, not constructed.
crashes["zero-ctor-veto"] = b"".join(
    [op("set_notify", P1, 1), op("handler_mode", 1, VETO_ALLOC, 0), op("cache_alloc", P1, CZERO),
     op("handler_mode", 1, 0, 0), op("cache_alloc", P1, C0)])

used = set()
for s in seeds.values():
    i = 0
    while i < len(s):
        used.add(OPS[s[i] % len(OPS)])
        i += 1 + NARGS[OPS[s[i] % len(OPS)]]
missing = set(OPS) - used
assert not missing, missing

os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.unlink(os.path.join(OUT, f))
for name, data in sorted(seeds.items()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print("%d seeds in %s" % (len(seeds), os.path.relpath(OUT)), file=sys.stderr)
CRASHES = os.path.join(HERE, "regressions")
os.makedirs(CRASHES, exist_ok=True)
for name, data in sorted(crashes.items()):
    with open(os.path.join(CRASHES, name), "wb") as f:
        f.write(data)
