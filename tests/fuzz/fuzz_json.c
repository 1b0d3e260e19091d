/* fuzz_json: the JSON escaper (lib/c/json.c) and tally-log's line builder
 * (bin/tally-log.c, with redaction from lib/c/redact.c) on any bytes.
 *
 * Properties, checked here (abort() on violation):
 * 1. json_escape's output, quoted, is a JSON string that a strict decoder
 *    (below, RFC 8259 with strict UTF-8) accepts, and it decodes to the
 *    input with each maximal subpart of ill-formed UTF-8 replaced by
 *    U+FFFD (an independent oracle below): the valid-UTF-8 parts of the
 *    input round-trip byte for byte.
 * 2. An event line built from the input (message, feature, a field and a
 *    metadata pair taken from it) is one JSON object and a newline, whose
 *    "message" decodes to the oracle's repair of the message (redacted
 *    first when redaction is on).
 * 3. Redaction is idempotent: redacting its own output changes nothing.
 *
 * Input: byte 0 holds flags (bit 0: redaction on); the rest is split at
 * 0x1E into message, feature, field key, field value, meta key, meta value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define main tally_log_main
#include "../../bin/tally-log.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_json: %s failed at line %d\n", #c, __LINE__); abort(); } } while (0)

/* ---- the oracle: maximal-subpart repair, written from Unicode Table 3-7 */

/* Returns the length (1-4) of the well-formed sequence at s[0..n), or 0
 * and the length of its maximal subpart (>= 1) in *sub. */
static size_t oracle_seq(const unsigned char *s, size_t n, size_t *sub)
{
	unsigned lo = 0x80, hi = 0xBF;
	size_t len, i;

	*sub = 1;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	for (i = 1; i < len; i++) {
		if (i >= n)
			break;
		if (i == 1 ? (s[1] < lo || s[1] > hi) : (s[i] < 0x80 || s[i] > 0xBF))
			break;
	}
	if (i == len)
		return len;
	*sub = i;
	return 0;
}

/* Appends the repair of s[0..n) to b. */
static void oracle_repair(struct buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0, len, sub;

	while (i < n) {
		len = oracle_seq(s + i, n - i, &sub);
		if (len) {
			CHECK(buf_put(b, s + i, len) == 0);
			i += len;
		} else {
			CHECK(buf_put(b, "\xEF\xBF\xBD", 3) == 0);
			i += sub;
		}
	}
}

/* ---- a strict JSON decoder ------------------------------------------ */

struct parser {
	const unsigned char *p, *end;
	struct buf *message;  /* receives the top-level "message" value */
	int depth;
};

static int p_value(struct parser *ps, struct buf *out);

/* Returns the value of hex digit c, or -1. */
static int hexval(unsigned c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

/* Reads 4 hex digits; returns the value or -1. */
static long p_hex4(struct parser *ps)
{
	long v = 0;
	int i, h;

	if (ps->end - ps->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		h = hexval(*ps->p++);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Appends code point cp as UTF-8. */
static void put_cp(struct buf *b, unsigned long cp)
{
	unsigned char e[4];
	size_t n;

	if (cp < 0x80) {
		e[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		e[0] = (unsigned char)(0xC0 | cp >> 6), e[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		e[0] = (unsigned char)(0xE0 | cp >> 12), e[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		e[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		e[0] = (unsigned char)(0xF0 | cp >> 18), e[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		e[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), e[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
	}
	CHECK(buf_put(b, e, n) == 0);
}

/* Parses a string at ps->p (at its opening quote) into out (may be NULL).
 * Returns 0, or -1 when it is not a valid JSON string of valid UTF-8. */
static int p_string(struct parser *ps, struct buf *out)
{
	struct buf tmp = { 0, 0, 0 };
	size_t len, sub;
	long cp, lo;
	unsigned c;

	if (!out)
		out = &tmp;
	if (ps->p >= ps->end || *ps->p != '"')
		return -1;
	ps->p++;
	for (;;) {
		if (ps->p >= ps->end)
			goto bad;
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			goto bad;
		if (c == '\\') {
			ps->p++;
			if (ps->p >= ps->end)
				goto bad;
			c = *ps->p++;
			switch (c) {
			case '"': case '\\': case '/': CHECK(buf_putc(out, (char)c) == 0); break;
			case 'b': CHECK(buf_putc(out, '\b') == 0); break;
			case 'f': CHECK(buf_putc(out, '\f') == 0); break;
			case 'n': CHECK(buf_putc(out, '\n') == 0); break;
			case 'r': CHECK(buf_putc(out, '\r') == 0); break;
			case 't': CHECK(buf_putc(out, '\t') == 0); break;
			case 'u':
				if ((cp = p_hex4(ps)) < 0)
					goto bad;
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
						goto bad;
					ps->p += 2;
					if ((lo = p_hex4(ps)) < 0xDC00 || lo > 0xDFFF)
						goto bad;
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
					goto bad;
				}
				put_cp(out, (unsigned long)cp);
				break;
			default:
				goto bad;
			}
			continue;
		}
		len = oracle_seq(ps->p, (size_t)(ps->end - ps->p), &sub);
		if (!len)
			goto bad;
		CHECK(buf_put(out, ps->p, len) == 0);
		ps->p += len;
	}
	buf_free(&tmp);
	return 0;
bad:
	buf_free(&tmp);
	return -1;
}

/* Parses an RFC 8259 number. Returns 0 or -1. */
static int p_number(struct parser *ps)
{
	const unsigned char *p = ps->p, *e = ps->end;

	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	else
		return -1;
	if (p < e && *p == '.') {
		if (++p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return -1;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	ps->p = p;
	return 0;
}

/* Parses an object; with top set, the "message" value goes to ps->message.
 * Returns 0 or -1. */
static int p_object(struct parser *ps, int top)
{
	struct buf key = { 0, 0, 0 };
	int first = 1, rc = -1, is_msg;

	ps->p++;
	if (++ps->depth > 8)
		return -1;
	for (;;) {
		if (ps->p < ps->end && *ps->p == '}' && first) {
			ps->p++;
			rc = 0;
			break;
		}
		buf_reset(&key);
		if (p_string(ps, &key) < 0 || ps->p >= ps->end || *ps->p++ != ':')
			break;
		is_msg = top && key.len == 7 && memcmp(key.p, "message", 7) == 0;
		if (p_value(ps, is_msg ? ps->message : NULL) < 0)
			break;
		first = 0;
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			rc = 0;
		}
		break;
	}
	ps->depth--;
	buf_free(&key);
	return rc;
}

static int p_value(struct parser *ps, struct buf *out)
{
	size_t n = (size_t)(ps->end - ps->p);

	if (!n)
		return -1;
	switch (*ps->p) {
	case '"': return p_string(ps, out);
	case '{': return p_object(ps, 0);
	case 't': if (n >= 4 && !memcmp(ps->p, "true", 4)) { ps->p += 4; return 0; } return -1;
	case 'f': if (n >= 5 && !memcmp(ps->p, "false", 5)) { ps->p += 5; return 0; } return -1;
	case 'n': if (n >= 4 && !memcmp(ps->p, "null", 4)) { ps->p += 4; return 0; } return -1;
	default: return p_number(ps);
	}
}

/* ---- the target ----------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf esc = { 0, 0, 0 }, want = { 0, 0, 0 }, got = { 0, 0, 0 };
	struct buf line = { 0, 0, 0 }, scratch = { 0, 0, 0 }, red = { 0, 0, 0 }, red2 = { 0, 0, 0 };
	const char *part[6] = { "", "", "", "", "", "" };
	size_t plen[6] = { 0, 0, 0, 0, 0, 0 }, np = 0, i, start;
	char *copy[6] = { 0 };
	struct ts_cache clock = { 0, 0, "", 0 };
	struct event_tmpl t;
	struct parser ps;
	struct opts o;
	int redact;

	if (size < 1)
		return 0;
	redact = data[0] & 1;
	data++, size--;
	for (start = 0, i = 0; i <= size && np < 6; i++) {
		if (i == size || data[i] == 0x1E) {
			part[np] = (const char *)data + start;
			plen[np++] = i - start;
			start = i + 1;
		}
	}

	/* 1. Every part escapes to a JSON string that decodes to its repair. */
	for (i = 0; i < np; i++) {
		buf_reset(&esc), buf_reset(&want), buf_reset(&got);
		CHECK(buf_putc(&esc, '"') == 0);
		CHECK(json_escape(&esc, part[i], plen[i]) == 0);
		CHECK(buf_putc(&esc, '"') == 0);
		oracle_repair(&want, (const unsigned char *)part[i], plen[i]);
		ps.p = (const unsigned char *)esc.p, ps.end = ps.p + esc.len, ps.depth = 0;
		CHECK(p_string(&ps, &got) == 0 && ps.p == ps.end);
		CHECK(got.len == want.len && (!got.len || memcmp(got.p, want.p, got.len) == 0));
	}

	/* 3. Redaction is idempotent. */
	CHECK(redact_append(&red, part[0], plen[0]) >= 0);
	CHECK(redact_append(&red2, red.p ? red.p : "", red.len) >= 0);
	CHECK(red.len == red2.len && (!red.len || memcmp(red.p, red2.p, red.len) == 0));

	/* 2. An event line parses and its message decodes to the repair. */
	for (i = 0; i < 6; i++) {
		copy[i] = malloc(plen[i] + 1);
		CHECK(copy[i] != NULL);
		memcpy(copy[i], part[i], plen[i]);
		copy[i][plen[i]] = '\0';
	}
	memset(&o, 0, sizeof o);
	o.level = "INFO";
	o.redact = redact;
	o.feature = copy[1];
	/* Options come from argv: they end at the first NUL, as in main(). */
	if (copy[2][0] && !is_builtin_key(copy[2], strlen(copy[2]))) {
		o.fields[0].k = copy[2], o.fields[0].kn = strlen(copy[2]);
		o.fields[0].v = copy[3], o.fields[0].type = KV_STRING;
		o.nfields = 1;
	}
	if (copy[4][0]) {
		o.meta[0].k = copy[4], o.meta[0].kn = strlen(copy[4]);
		o.meta[0].v = copy[5], o.meta[0].type = KV_STRING;
		o.nmeta = 1;
	}
	build_template(&t, &o);
	i = json_utf8_cut(part[0], plen[0], TALLY_LOG_MAX_MESSAGE);
	CHECK(put_event(&line, &t, &clock, "INFO", part[0], i, i < plen[0], &scratch) == 0);
	CHECK(line.len > 0 && line.p[line.len - 1] == '\n');
	CHECK(memchr(line.p, '\n', line.len) == line.p + line.len - 1);
	buf_reset(&got);
	ps.p = (const unsigned char *)line.p, ps.end = ps.p + line.len - 1, ps.depth = 0;
	ps.message = &got;
	CHECK(ps.p < ps.end && *ps.p == '{' && p_object(&ps, 1) == 0 && ps.p == ps.end);
	buf_reset(&want);
	if (redact) {
		buf_reset(&red);
		CHECK(redact_append(&red, part[0], i) >= 0);
		oracle_repair(&want, (const unsigned char *)red.p, red.len);
	} else {
		oracle_repair(&want, (const unsigned char *)part[0], i);
	}
	CHECK(got.len == want.len && (!got.len || memcmp(got.p, want.p, got.len) == 0));

	for (i = 0; i < 6; i++)
		free(copy[i]);
	buf_free(&t.head), buf_free(&t.tail), buf_free(&tmpl_scratch);
	buf_free(&esc), buf_free(&want), buf_free(&got), buf_free(&line);
	buf_free(&scratch), buf_free(&red), buf_free(&red2);
	return 0;
}
