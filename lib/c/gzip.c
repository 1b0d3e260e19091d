/* gzip.c: gzip (RFC 1952) over DEFLATE (RFC 1951) with the fixed Huffman
 * codes of RFC 1951 3.2.6 and greedy LZ77 matching, plus CRC-32. Written
 * here rather than linked from zlib so that the helpers stay static, small
 * and musl-only; metrics text (repeated names and labels) compresses about
 * 5-8x with fixed codes, most of what dynamic codes would give. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "gzip.h"

#define GZ_WBITS 13                 /* LZ77 window: 8 KiB back */
#define GZ_WSIZE (1u << GZ_WBITS)
#define GZ_HBITS 12                 /* hash table: 4096 heads */
#define GZ_HSIZE (1u << GZ_HBITS)
#define GZ_MIN_MATCH 3
#define GZ_MAX_MATCH 258
#define GZ_MAX_CHAIN 16             /* candidates tried per position */

/* CRC-32 of every byte value, polynomial 0xEDB88320 (reflected). */
static uint32_t crc_table[256];
static int crc_ready;

/* Fills crc_table once. */
static void crc_init(void)
{
	uint32_t c;
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = 1;
}

uint32_t gz_crc32(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;

	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

int gz_header(struct buf *out)
{
	static const unsigned char h[GZ_HEADER_LEN] = {
		0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255
	};

	return buf_put(out, h, sizeof h);
}

int gz_trailer(struct buf *out, uint32_t crc, uint64_t size)
{
	unsigned char t[GZ_TRAILER_LEN];
	uint32_t sz = (uint32_t)size;
	int i;

	for (i = 0; i < 4; i++) {
		t[i] = (unsigned char)(crc >> (8 * i));
		t[4 + i] = (unsigned char)(sz >> (8 * i));
	}
	return buf_put(out, t, sizeof t);
}

/* An LSB-first bit writer into memory reserved beforehand. */
struct bits {
	unsigned char *p;
	uint64_t acc;
	unsigned n;
};

/* Appends the low `len` bits of v, least significant first. */
static void put_bits(struct bits *b, uint32_t v, unsigned len)
{
	b->acc |= (uint64_t)v << b->n;
	b->n += len;
	while (b->n >= 8) {
		*b->p++ = (unsigned char)b->acc;
		b->acc >>= 8;
		b->n -= 8;
	}
}

/* Pads with zero bits to the next byte boundary. */
static void align_byte(struct bits *b)
{
	if (b->n)
		put_bits(b, 0, 8 - b->n);
}

/* Returns the low len bits of v in reverse order (Huffman codes are sent
 * most significant bit first). */
static uint32_t reverse(uint32_t v, unsigned len)
{
	uint32_t r = 0;

	while (len--) {
		r = (r << 1) | (v & 1);
		v >>= 1;
	}
	return r;
}

/* Sends literal/length symbol sym (0..287) with the fixed code. */
static void put_sym(struct bits *b, unsigned sym)
{
	if (sym < 144)
		put_bits(b, reverse(0x30 + sym, 8), 8);
	else if (sym < 256)
		put_bits(b, reverse(0x190 + sym - 144, 9), 9);
	else if (sym < 280)
		put_bits(b, reverse(sym - 256, 7), 7);
	else
		put_bits(b, reverse(0xC0 + sym - 280, 8), 8);
}

static const unsigned short len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258
};
static const unsigned char len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0
};
static const unsigned short dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289,
	16385, 24577
};
static const unsigned char dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13
};

/* Sends a match of length len (3..258) at distance dist (1..32768). */
static void put_match(struct bits *b, unsigned len, unsigned dist)
{
	unsigned i = 28, d = 29;

	while (len_base[i] > len)
		i--;
	put_sym(b, 257 + i);
	put_bits(b, len - len_base[i], len_extra[i]);
	while (dist_base[d] > dist)
		d--;
	put_bits(b, reverse(d, 5), 5);
	put_bits(b, dist - dist_base[d], dist_extra[d]);
}

/* Returns the hash of the 3 bytes at s. */
static unsigned hash3(const unsigned char *s)
{
	uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];

	return (v * 2654435761u) >> (32 - GZ_HBITS);
}

int gz_deflate(struct buf *out, const void *data, size_t n, int final)
{
	const unsigned char *s = data;
	int32_t *head, *prev;
	struct bits b;
	size_t i = 0, need;

	need = n + n / 8 + 64;
	if (need < n || buf_reserve(out, need) < 0) {
		errno = ENOMEM;
		return -1;
	}
	head = malloc((GZ_HSIZE + GZ_WSIZE) * sizeof *head);
	if (!head)
		return -1;
	prev = head + GZ_HSIZE;
	memset(head, 0xff, GZ_HSIZE * sizeof *head); /* -1: empty */

	b.p = (unsigned char *)out->p + out->len;
	b.acc = 0;
	b.n = 0;
	put_bits(&b, final ? 1 : 0, 1);
	put_bits(&b, 1, 2); /* BTYPE 01: fixed Huffman codes */
	while (i < n) {
		size_t best = 0, bdist = 0;

		if (n - i >= GZ_MIN_MATCH) {
			unsigned h = hash3(s + i), chain = GZ_MAX_CHAIN;
			int32_t cand = head[h];
			size_t lim = n - i < GZ_MAX_MATCH ? n - i : GZ_MAX_MATCH;

			while (cand >= 0 && chain--) {
				size_t c = (size_t)cand, k = 0;

				if (i - c > GZ_WSIZE)
					break;
				while (k < lim && s[c + k] == s[i + k])
					k++;
				if (k > best) {
					best = k;
					bdist = i - c;
					if (k == lim)
						break;
				}
				cand = prev[c & (GZ_WSIZE - 1)];
			}
		}
		if (best >= GZ_MIN_MATCH) {
			put_match(&b, (unsigned)best, (unsigned)bdist);
		} else {
			put_sym(&b, s[i]);
			best = 1;
		}
		/* insert every position the step covers into the chains */
		while (best--) {
			if (n - i >= GZ_MIN_MATCH) {
				unsigned h = hash3(s + i);

				prev[i & (GZ_WSIZE - 1)] = head[h];
				head[h] = (int32_t)i;
			}
			i++;
		}
	}
	put_sym(&b, 256); /* end of block */
	if (!final) {
		put_bits(&b, 0, 3); /* BFINAL 0, BTYPE 00: stored, empty */
		align_byte(&b);
		put_bits(&b, 0x0000, 16);
		put_bits(&b, 0xffff, 16);
	}
	align_byte(&b);
	out->len = (size_t)((char *)b.p - out->p);
	out->p[out->len] = '\0';
	free(head);
	return 0;
}
