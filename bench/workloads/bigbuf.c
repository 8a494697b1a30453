/*
 * bigbuf - large buffer churn, in the manner of an I/O server.
 *
 * CONNS connection slots each own an I/O buffer of 8 KiB..512 KiB
 * (log-uniform: every power-of-two octave equally likely, so most are
 * small and the big ones dominate the bytes).  A request picks a slot,
 * allocates a small request header (64..512 B), frees the slot's old
 * buffer and allocates a new one of a fresh size, "receives" into it
 * (memset of 25..100% of it), and 1 time in 8 the message turns out to
 * be larger: the buffer is grown with realloc to twice its size (at most
 * 1 MiB) and the new part is filled too.  The request then "parses" the
 * buffer (reads one byte per 4 KiB page into the checksum) and frees the
 * header.  Every 64 requests a second, short-lived 64 KiB scratch buffer
 * is allocated, filled and freed.
 *
 * Prints: requests, bytes received, and the checksum.
 */
#include "wl_common.h"

#define CONNS 48

static size_t buf_size(uint64_t *rng)
{
	unsigned octave = (unsigned)wl_range(rng, 13, 18); /* 8 KiB .. 256 KiB */
	size_t lo = (size_t)1 << octave;
	return lo + (size_t)(wl_next(rng) % lo); /* .. < 2*lo = 512 KiB */
}

int main(int argc, char **argv)
{
	unsigned long reqs = wl_scale(argc, argv, 40000);
	uint64_t rng = 99, sum = 0, bytes = 0;
	unsigned char *buf[CONNS] = { 0 };
	size_t len[CONNS] = { 0 };
	for (unsigned long r = 0; r < reqs; r++) {
		unsigned c = (unsigned)(wl_next(&rng) % CONNS);
		size_t hn = wl_range(&rng, 64, 512);
		unsigned char *hdr = wl_check(malloc(hn), hn, "header");
		memset(hdr, (int)(r & 0xff), hn);
		free(buf[c]);
		size_t n = buf_size(&rng);
		buf[c] = wl_check(malloc(n), n, "buffer");
		size_t fill = n * wl_range(&rng, 25, 100) / 100;
		memset(buf[c], (int)((r * 7 + c) & 0xff), fill);
		if ((wl_next(&rng) & 7) == 0) {
			size_t nn = n * 2 > (1u << 20) ? (1u << 20) : n * 2;
			buf[c] = wl_check(realloc(buf[c], nn), nn, "realloc");
			memset(buf[c] + fill, (int)(c & 0xff), nn - fill);
			fill = nn;
		}
		len[c] = fill;
		bytes += fill;
		for (size_t o = 0; o < fill; o += 4096)
			sum += buf[c][o] ^ hdr[o % hn];
		sum = wl_fold(sum, fill);
		free(hdr);
		if ((r & 63) == 63) {
			unsigned char *scratch = wl_check(malloc(65536), 65536, "scratch");
			memset(scratch, (int)(r & 0xff), 65536);
			sum += scratch[r % 65536];
			free(scratch);
		}
	}
	for (unsigned c = 0; c < CONNS; c++) {
		if (len[c])
			sum = wl_fold(sum, buf[c][len[c] - 1]);
		free(buf[c]);
	}
	printf("bigbuf requests=%lu bytes=%llu checksum=%016llx\n", reqs, (unsigned long long)bytes,
	       (unsigned long long)sum);
	return 0;
}
