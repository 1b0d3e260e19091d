/* redact.c: secrets removed from log text at emit time; the rules are in
 * redact.h. One left-to-right scan driven by a byte-class table; bytes
 * outside the replaced spans are copied unchanged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

/* Byte classes: W key byte [A-Za-z0-9_.-], A alphanumeric, U upper, L
 * lower, D digit, B blank (space, tab), E ends an unquoted value
 * (whitespace, quotes, & , ;), H ends a URL authority (/ ? # whitespace
 * quotes < >). */
enum { W = 1, A = 2, U = 4, L = 8, D = 16, B = 32, E = 64, H = 128 };

static const unsigned char cls[256] = {
	/* 00 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 08 */ 0, B|E|H, E|H, E|H, E|H, E|H, 0, 0,
	/* 10 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 18 */ 0, 0, 0, 0, 0, 0, 0, 0,
	/* 20 */ B|E|H, 0, E|H, H, 0, 0, E, E|H,
	/* 28 */ 0, 0, 0, 0, E, W, W, H,
	/* 30 */ W|A|D, W|A|D, W|A|D, W|A|D, W|A|D, W|A|D, W|A|D, W|A|D,
	/* 38 */ W|A|D, W|A|D, 0, E, H, 0, H, H,
	/* 40 */ 0, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U,
	/* 48 */ W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U,
	/* 50 */ W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U, W|A|U,
	/* 58 */ W|A|U, W|A|U, W|A|U, 0, 0, 0, 0, W,
	/* 60 */ 0, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L,
	/* 68 */ W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L,
	/* 70 */ W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L, W|A|L,
	/* 78 */ W|A|L, W|A|L, W|A|L, 0, 0, 0, 0, 0,
	/* 80-FF: none of the classes */
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Longest key part compared with the word list; longer parts match none. */
#define PART_MAX 16

/* Key parts that name a secret on their own. */
static const char *const secret_words[] = {
	"password", "passwd", "passphrase", "secret", "token", "credential",
	"credentials", "authorization", "apikey", "accesskey", "privatekey",
};
/* First parts that name a secret when followed by the part "key". */
static const char *const key_prefixes[] = { "api", "access", "private" };

/* Returns 1 when the lowercased part p (NUL-terminated) is one of the n
 * words of list, else 0. */
static int in_list(const char *p, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(p, list[i]) == 0)
			return 1;
	return 0;
}

/* Returns 1 when a part boundary lies before k[i] (0 < i < n, k[i-1] and
 * k[i] alphanumeric): lower to upper, letter to digit or back, or the last
 * upper of an upper run that a lower follows (APIKey: before K). */
static int part_break(const char *k, size_t n, size_t i)
{
	unsigned p = cls[(unsigned char)k[i - 1]], c = cls[(unsigned char)k[i]];

	if ((p & L) && (c & U))
		return 1;
	if (((p & D) != 0) != ((c & D) != 0))
		return 1;
	return (p & U) && (c & U) && i + 1 < n && IS(k[i + 1], L);
}

/* Returns KEY_SECRET when key k[0..n) names a secret (see
 * redact_key_is_secret), with KEY_AUTH added when one of its parts is
 * "authorization"; else 0. */
enum { KEY_SECRET = 1, KEY_AUTH = 2 };
static int key_class(const char *k, size_t n)
{
	char part[PART_MAX + 1], prev[PART_MAX + 1] = "";
	size_t i = 0, start, len, j;
	int r = 0;

	while (i < n) {
		if (!IS(k[i], A)) {
			i++;
			continue;
		}
		start = i++;
		while (i < n && IS(k[i], A) && !part_break(k, n, i))
			i++;
		len = i - start;
		if (len > PART_MAX) {
			prev[0] = '\0';
			continue;
		}
		for (j = 0; j < len; j++)
			part[j] = (char)(IS(k[start + j], U) ? k[start + j] + 32 : k[start + j]);
		part[len] = '\0';
		if (in_list(part, secret_words, sizeof secret_words / sizeof secret_words[0]))
			r |= KEY_SECRET;
		if (strcmp(part, "authorization") == 0)
			r |= KEY_AUTH;
		if (strcmp(part, "key") == 0 &&
		    in_list(prev, key_prefixes, sizeof key_prefixes / sizeof key_prefixes[0]))
			r |= KEY_SECRET;
		memcpy(prev, part, len + 1);
	}
	return r;
}

int redact_key_is_secret(const char *k, size_t n)
{
	return key_class(k, n) != 0;
}

int redact_enabled(void)
{
	const char *v = getenv("TALLY_REDACT");

	return !v || strcmp(v, "0") != 0;
}

/* Finds the value of a secret key s[i..j) (rule 1): sets [*vs, *ve) and
 * returns 1, or returns 0 when s[i..j) is no secret key with a value. */
static int key_value(const char *s, size_t n, size_t i, size_t j,
	size_t *vs, size_t *ve)
{
	size_t k = j, e;
	int flag = 0, kc;
	char q;

	if (k < n && (s[k] == '"' || s[k] == '\''))
		k++;
	while (k < n && IS(s[k], B))
		k++;
	if (k < n && (s[k] == '=' || s[k] == ':')) {
		k++;
		while (k < n && IS(s[k], B))
			k++;
	} else if (j - i > 2 && s[i] == '-' && s[i + 1] == '-' && k > j &&
	    IS(s[j], B)) {
		flag = 1;
	} else {
		return 0;
	}
	if (k >= n || (flag && s[k] == '-') || !(kc = key_class(s + i, j - i)))
		return 0;
	if (s[k] == '"' || s[k] == '\'') {
		q = s[k++];
		for (e = k; e < n && s[e] != q; e++)
			;
	} else if (kc & KEY_AUTH) {
		for (e = k; e < n && s[e] != '"' && s[e] != '\'' && s[e] != '\n' &&
		    s[e] != '\r'; e++)
			;
	} else {
		for (e = k; e < n && !IS(s[e], E); e++)
			;
	}
	if (e == k)
		return 0;
	*vs = k;
	*ve = e;
	return 1;
}

/* Returns the end of the run from s[i] (before lim) of bytes of classes k
 * or equal to one of the bytes of extra (a string, may be ""). */
static size_t run_end(const char *s, size_t i, size_t lim, unsigned k, const char *extra)
{
	while (i < lim && (IS(s[i], k) || (s[i] && strchr(extra, s[i]))))
		i++;
	return i;
}

/* Returns the end of a token shape (rule 3) starting at s[i] within
 * s[..lim), or 0 when none starts there. */
static size_t token_at(const char *s, size_t i, size_t lim)
{
	size_t m = lim - i, e;

	if (m >= 4 && s[i] == 'g' && s[i + 1] == 'h' && s[i + 3] == '_' &&
	    s[i + 2] && strchr("pousr", s[i + 2])) {
		e = run_end(s, i + 4, lim, A, "");
		return e - (i + 4) >= 30 ? e : 0;
	}
	if (m >= 11 && memcmp(s + i, "github_pat_", 11) == 0) {
		e = run_end(s, i + 11, lim, A, "_");
		return e - (i + 11) >= 22 ? e : 0;
	}
	if (m >= 6 && memcmp(s + i, "glpat-", 6) == 0) {
		e = run_end(s, i + 6, lim, A, "_-");
		return e - (i + 6) >= 20 ? e : 0;
	}
	if (m >= 5 && memcmp(s + i, "xox", 3) == 0 && s[i + 3] &&
	    strchr("abprs", s[i + 3]) && s[i + 4] == '-') {
		e = run_end(s, i + 5, lim, A, "-");
		return e - (i + 5) >= 10 ? e : 0;
	}
	if (m >= 20 && (memcmp(s + i, "AKIA", 4) == 0 || memcmp(s + i, "ASIA", 4) == 0)) {
		for (e = i + 4; e < i + 20 && (IS(s[e], U) || IS(s[e], D)); e++)
			;
		return e == i + 20 && (e == lim || !IS(s[e], A)) ? e : 0;
	}
	if (m >= 3 && s[i] == 's' && s[i + 1] == 'k' && s[i + 2] == '-') {
		e = run_end(s, i + 3, lim, A, "_-");
		return e - (i + 3) >= 20 ? e : 0;
	}
	return 0;
}

/* Finds the URL password after the "://" at s[i] (rule 2): sets [*vs, *ve)
 * and returns 1, else 0. The authority also ends at a REDACT_MARK that no
 * '@' follows: a value the key rule replaced may have held the end
 * ("password://x"), so that redacting the output again changes nothing (a
 * mark before '@' is a password this rule replaced). */
static int url_password(const char *s, size_t n, size_t i, size_t *vs, size_t *ve)
{
	size_t a = i + 3, e, at = 0, p;

	for (e = a; e < n && !IS(s[e], H); e++) {
		if (s[e] == '[' && n - e >= REDACT_MARK_LEN &&
		    memcmp(s + e, REDACT_MARK, REDACT_MARK_LEN) == 0 &&
		    (n - e == REDACT_MARK_LEN || s[e + REDACT_MARK_LEN] != '@'))
			break;
		if (s[e] == '@')
			at = e;
	}
	if (!at)
		return 0;
	for (p = a; p < at && s[p] != ':'; p++)
		;
	if (p + 1 >= at)
		return 0;
	*vs = p + 1;
	*ve = at;
	return 1;
}

int redact_append(struct buf *b, const char *s, size_t n)
{
	size_t i = 0, done = 0, j, k, e, vs, ve;
	int count = 0;

	/* s[done..i) is copied lazily: only a replacement flushes it. */
#define FLUSH_TO(x) do { if (buf_put(b, s + done, (x) - done) < 0) return -1; } while (0)
#define MARK() do { if (buf_put(b, REDACT_MARK, REDACT_MARK_LEN) < 0) return -1; count++; } while (0)
	while (i < n) {
		if (IS(s[i], W)) {
			j = run_end(s, i, n, W, "");
			if ((i == 0 || s[i - 1] != '/') && key_value(s, n, i, j, &vs, &ve)) {
				FLUSH_TO(vs);
				MARK();
				done = i = ve;
				continue;
			}
			for (k = i; k < j; k++) {
				if (k > 0 && IS(s[k - 1], A))
					continue;
				e = token_at(s, k, j);
				if (!e)
					continue;
				FLUSH_TO(k);
				MARK();
				done = e;
				k = e - 1;
			}
			i = j;
			continue;
		}
		if (s[i] == ':' && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') {
			if (url_password(s, n, i, &vs, &ve)) {
				FLUSH_TO(vs);
				MARK();
				done = i = ve;
				continue;
			}
			i += 3;
			continue;
		}
		i++;
	}
	FLUSH_TO(n);
	return count;
#undef FLUSH_TO
#undef MARK
}
