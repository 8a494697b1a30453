"""dict_strings.py - a dict- and string-heavy workload with a fixed output.

Many small objects of many sizes (str, int, tuple, dict, list) created,
resized and dropped: the kind of traffic CPython sends to malloc. The
output depends on nothing but the code (no hashing order of sets, no
addresses), so it is byte-identical under any correct allocator.
"""
import json
import sys


def words(n):
    """n pseudo-random lowercase words from a fixed LCG."""
    x = 12345
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        length = 3 + x % 9
        w = []
        for _ in range(length):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            w.append(chr(97 + x % 26))
        out.append("".join(w))
    return out


def main():
    ws = words(60000)
    counts = {}
    for w in ws:
        counts[w] = counts.get(w, 0) + 1
    by_prefix = {}
    for w, c in counts.items():
        by_prefix.setdefault(w[:2], []).append((w, c))
    index = {w: [i for i, _ in enumerate(w)] for w in list(counts)[:5000]}
    text = " ".join(ws)
    upper = text.upper().replace("A", "[a]").split()
    joined = "|".join(sorted(set(upper)))[:200]

    # Grow and shrink dicts, to resize their tables both ways.
    scratch = {}
    for i, w in enumerate(ws[:40000]):
        scratch[w + str(i)] = (i, w * 3)
        if i % 3 == 0:
            scratch.pop(ws[i // 2] + str(i // 2), None)

    doc = {
        "words": len(ws),
        "distinct": len(counts),
        "top": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
        "prefixes": len(by_prefix),
        "largest_prefix": max(sorted(by_prefix), key=lambda p: len(by_prefix[p])),
        "index_chars": sum(len(v) for v in index.values()),
        "upper_words": len(upper),
        "joined": joined,
        "scratch": len(scratch),
        "scratch_bytes": sum(len(v[1]) for v in scratch.values()),
    }
    json.dump(doc, sys.stdout, sort_keys=True, indent=1)
    sys.stdout.write("\n")
    for p in sorted(by_prefix)[:20]:
        group = sorted(by_prefix[p])
        print(p, len(group), group[0][0], group[-1][0])


if __name__ == "__main__":
    main()
