#!/usr/bin/env python3
"""png_colors.py FILE.png - count a screenshot's pixels of the colours
the profile's pictures use: the timeline's heap curve (#1f5fbf) and the
flame graph's warm frames (red 205-254, blue 0-54). Prints
"heap=N flame=M". A plain PNG decoder (no PIL): 8-bit RGB or RGBA."""
import struct
import sys
import zlib


def rows(path):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, w, h, ctype = 8, b'', 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            assert depth == 8 and ctype in (2, 6), 'only 8-bit RGB/RGBA'
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev = zlib.decompress(idat), w * bpp, bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        yield [tuple(line[x * bpp:x * bpp + 3]) for x in range(w)]


heap = flame = 0
for row in rows(sys.argv[1]):
    for r, g, b in row:
        if abs(r - 31) < 12 and abs(g - 95) < 12 and abs(b - 191) < 12:
            heap += 1
        elif r >= 205 and b < 55 and g < 200:
            flame += 1
print('heap=%d flame=%d' % (heap, flame))
