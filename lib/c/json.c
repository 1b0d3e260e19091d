/* json.c: JSON string escaping with UTF-8 repair, number validation and
 * the small key/value builder tally-log's events are made of. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tally.h"

/* Byte classes. ASCII: 0 passes through, 'u' becomes \u00xx, any other
 * value is the character after the backslash of a short escape. 0x80-0xFF:
 * BAD is never valid where it stands (a lone continuation byte, C0, C1,
 * F5-FF); the others are UTF-8 lead bytes, told apart by which range their
 * second byte must lie in (Unicode Table 3-7, Well-Formed UTF-8 Byte
 * Sequences). */
enum { BAD = 1, U2, E0, U3, ED, F0, U4, F4 };

static const unsigned char json_class[256] = {
	/* 00 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
	/* 10 */ 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
	/* 20 */ 0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
	/* 60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 80 */ BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	/* 90 */ BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	/* A0 */ BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	/* B0 */ BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	/* C0 */ BAD, BAD, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2,
	/* D0 */ U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2, U2,
	/* E0 */ E0, U3, U3, U3, U3, U3, U3, U3, U3, U3, U3, U3, U3, ED, U3, U3,
	/* F0 */ F0, U4, U4, U4, F4, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
};

/* Per lead class: sequence length and the range of the second byte. */
static const unsigned char lead_len[F4 + 1] = {
	[U2] = 2, [E0] = 3, [U3] = 3, [ED] = 3, [F0] = 4, [U4] = 4, [F4] = 4,
};
static const unsigned char lead_lo[F4 + 1] = {
	[U2] = 0x80, [E0] = 0xA0, [U3] = 0x80, [ED] = 0x80,
	[F0] = 0x90, [U4] = 0x80, [F4] = 0x80,
};
static const unsigned char lead_hi[F4 + 1] = {
	[U2] = 0xBF, [E0] = 0xBF, [U3] = 0xBF, [ED] = 0x9F,
	[F0] = 0xBF, [U4] = 0xBF, [F4] = 0x8F,
};

static const char hexdig[16] = "0123456789abcdef";

/* Returns the length of the well-formed UTF-8 sequence at s[0..n) whose
 * lead byte has class c, or 0 with *sub set to the length of its maximal
 * subpart (at least 1) when it is ill-formed or truncated. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned c, size_t *sub)
{
	size_t len, j;

	*sub = 1;
	if (c == BAD || n < 2 || s[1] < lead_lo[c] || s[1] > lead_hi[c])
		return 0;
	len = lead_len[c];
	for (j = 2; j < len && j < n && (s[j] & 0xC0) == 0x80; j++)
		;
	if (j < len) {
		*sub = j;
		return 0;
	}
	return len;
}

int json_escape(struct buf *b, const char *s, size_t n)
{
	const unsigned char *in = (const unsigned char *)s;
	unsigned char *o;
	size_t i = 0, len, sub;
	unsigned c, k;

	/* Worst case: 6 output bytes per input byte (\u00xx). */
	if (n > (SIZE_MAX - 2) / 6) {
		errno = ENOMEM;
		return -1;
	}
	if (buf_reserve(b, n * 6) < 0)
		return -1;
	o = (unsigned char *)b->p + b->len;
	while (i < n) {
		c = in[i];
		k = json_class[c];
		if (!k) {
			*o++ = (unsigned char)c;
			i++;
		} else if (c < 0x80) {
			*o++ = '\\';
			if (k == 'u') {
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = (unsigned char)hexdig[c >> 4];
				*o++ = (unsigned char)hexdig[c & 15];
			} else {
				*o++ = (unsigned char)k;
			}
			i++;
		} else if ((len = utf8_seq(in + i, n - i, k, &sub)) != 0) {
			memcpy(o, in + i, len);
			o += len;
			i += len;
		} else {
			*o++ = 0xEF;
			*o++ = 0xBF;
			*o++ = 0xBD;
			i += sub;
		}
	}
	b->len = (size_t)((char *)o - b->p);
	b->p[b->len] = '\0';
	return 0;
}

int json_put_string(struct buf *b, const char *s, size_t n)
{
	if (buf_putc(b, '"') < 0 || json_escape(b, s, n) < 0)
		return -1;
	return buf_putc(b, '"');
}

int json_put_key(struct buf *b, const char *k, size_t n)
{
	if ((b->len == 0 || b->p[b->len - 1] != '{') && buf_putc(b, ',') < 0)
		return -1;
	if (json_put_string(b, k, n) < 0)
		return -1;
	return buf_putc(b, ':');
}

/* Returns s advanced past one or more ASCII digits, or NULL if none. */
static const char *digits(const char *s)
{
	if (*s < '0' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

int json_is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s = digits(s);
	else
		return 0;
	if (*s == '.' && !(s = digits(s + 1)))
		return 0;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(s = digits(s)))
			return 0;
	}
	return *s == '\0';
}

size_t json_utf8_cut(const char *s, size_t n, size_t cap)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p, sub;
	unsigned c;

	if (n <= cap)
		return n;
	/* Find the start of the sequence that holds byte cap, if any. */
	for (p = cap; p > 0 && cap - p < 3 && (u[p] & 0xC0) == 0x80; p--)
		;
	if (p == cap)
		return cap;
	c = json_class[u[p]];
	if (u[p] < 0x80 || utf8_seq(u + p, n - p, c, &sub) == 0)
		return cap;
	return p + lead_len[c] > cap ? p : cap;
}
