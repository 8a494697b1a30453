"""py_chunks - Python reading a file in 4 KiB chunks and keeping them, for
preload_bench (peak RSS is the figure to watch).

Reads the file given as argv[1] with f.read(4096) into a list: one bytes
object per chunk, i.e. one malloc of 4096 bytes plus the object header
(pymalloc takes only requests up to 512 bytes), so an allocator's size
classes and per-block overhead show directly in the peak RSS. Then drops
every other chunk (a checkerboard of holes no allocator can return to the
system as whole pages unless it frees per page), reads the file a second
time into a new list, and drops the first list. What is kept at the end
is 1.5 times the file. Prints the chunk count, the bytes kept and an MD5
over the chunks in order, so the output is the same under every allocator.

  py_chunks.py --make FILE MIB   write the input file (MIB MiB, fixed content)
  py_chunks.py FILE              the workload
"""
import hashlib
import sys

CHUNK = 4096


def make(path, mib):
    block = bytes(range(256)) * (CHUNK // 256)
    with open(path, "wb") as f:
        for i in range(mib * 1024 * 1024 // CHUNK):
            f.write(b"%08d" % i + block[8:])


def read_chunks(path):
    chunks = []
    with open(path, "rb") as f:
        while True:
            c = f.read(CHUNK)
            if not c:
                break
            chunks.append(c)
    return chunks


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--make":
        make(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) != 2:
        sys.exit("usage: py_chunks.py FILE | --make FILE MIB")
    first = read_chunks(sys.argv[1])
    for i in range(0, len(first), 2):
        first[i] = None
    second = read_chunks(sys.argv[1])
    kept = [c for c in first if c is not None]
    del first
    md5 = hashlib.md5()
    total = 0
    for c in kept + second:
        md5.update(c)
        total += len(c)
    print("py_chunks chunks=%d kept=%d bytes=%d md5=%s" % (len(second), len(kept) + len(second), total, md5.hexdigest()))


main()
