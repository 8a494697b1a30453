"""py_dicts - a dict- and string-heavy Python workload for preload_bench.

Builds a synthetic corpus of pseudo-words from a seeded generator, then:
word counts in a dict, an inverted index (word -> list of line numbers),
bigram counts keyed by tuples, records as dicts of strings that are
formatted, split and re-parsed, a churn phase that inserts and deletes
keys of a large dict, and string building with join/format/replace.
Everything is deterministic (no hash()-dependent output; the dict order
is insertion order), so the printed checksum is the same under every
allocator.  Argument: scale in percent (default 100).
"""
import sys
import zlib

scale = int(sys.argv[1]) if len(sys.argv) > 1 else 100
LINES = 16000 * scale // 100

state = 12345


def rnd():
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) & ((1 << 64) - 1)
    return state >> 33


SYL = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "ix",
       "qu", "zh", "ba", "de", "fi", "go", "hu", "ja"]


def word():
    n = 1 + rnd() % 4
    return "".join(SYL[rnd() % len(SYL)] for _ in range(n))


crc = 0


def feed(s):
    global crc
    crc = zlib.crc32(s.encode(), crc)


# 1. corpus, word counts, inverted index, bigrams
lines = []
for i in range(LINES):
    lines.append(" ".join(word() for _ in range(3 + rnd() % 12)))

counts = {}
index = {}
bigrams = {}
for ln, line in enumerate(lines):
    ws = line.split()
    for w in ws:
        counts[w] = counts.get(w, 0) + 1
        index.setdefault(w, []).append(ln)
    for a, b in zip(ws, ws[1:]):
        k = (a, b)
        bigrams[k] = bigrams.get(k, 0) + 1

top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
feed(repr(top))
feed(str(len(counts)) + ":" + str(len(bigrams)))
feed(str(sum(len(v) for v in index.values())))
topbi = sorted(bigrams.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
feed(repr(topbi))

# 2. records: dicts of strings, formatted to text and parsed back
records = []
for i in range(LINES):
    r = {"id": str(i), "name": word().capitalize() + " " + word(),
         "city": word().upper(), "tags": ",".join(word() for _ in range(rnd() % 5)),
         "score": "%d.%02d" % (rnd() % 1000, rnd() % 100)}
    records.append(r)
text = "\n".join("|".join("%s=%s" % kv for kv in r.items()) for r in records)
parsed = [dict(f.split("=", 1) for f in line.split("|")) for line in text.split("\n")]
bycity = {}
for r in parsed:
    bycity.setdefault(r["city"], []).append(r["name"])
feed(str(len(text)))
feed(repr(sorted((c, len(v)) for c, v in bycity.items())[:100]))
del text, parsed

# 3. churn: a large dict with string keys, inserts and deletes
d = {}
live = []
for i in range(LINES * 8):
    if live and rnd() % 3 == 0:
        k = live.pop(rnd() % len(live)) if len(live) < 64 else live.pop()
        del d[k]
    else:
        k = "%s/%d/%s" % (word(), i, "x" * (rnd() % 40))
        d[k] = [i, k.upper()]
        live.append(k)
feed(str(len(d)))
feed("".join(k[:3] for k in list(d)[:2000]))

# 4. string building
parts = []
for i, (w, c) in enumerate(counts.items()):
    s = f"{w}:{c}:{w[::-1]}".replace("a", "AA").replace("ix", "-")
    parts.append(s.center(24, "."))
big = "\n".join(parts)
feed(str(len(big)) + big[:1000] + big[-1000:])

print("py_dicts lines=%d words=%d checksum=%08x" % (LINES, len(counts), crc))
