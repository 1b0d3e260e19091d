/* test_json: lib/c/json.c (escaping, UTF-8 repair, numbers, the builder)
 * and the pure helpers of bin/tally-log.c (traceparent, levels, cuts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

#define main tally_log_main
#include "../../bin/tally-log.c"
#undef main

static int passed, failed;

/* Records one check; prints a line for a failure. */
static void check(int ok, const char *what, size_t case_no)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	if (failed <= 50)
		printf("FAIL: %s (case %zu)\n", what, case_no);
}

/* Returns json_escape(s[0..n)) as a freshly reset buffer's content. */
static struct buf *esc(const char *s, size_t n)
{
	static struct buf b;

	buf_reset(&b);
	if (json_escape(&b, s, n) < 0) {
		printf("FAIL: json_escape returned -1\n");
		exit(1);
	}
	return &b;
}

/* Returns 1 when b holds exactly e[0..en). */
static int same(const struct buf *b, const char *e, size_t en)
{
	return b->len == en && memcmp(b->p, e, en) == 0;
}

/* The expected escape of one ASCII byte, written independently of the
 * library's table, into out; returns its length. */
static size_t expect_ascii(unsigned c, char *out)
{
	switch (c) {
	case '"': return (size_t)sprintf(out, "\\\"");
	case '\\': return (size_t)sprintf(out, "\\\\");
	case '\b': return (size_t)sprintf(out, "\\b");
	case '\f': return (size_t)sprintf(out, "\\f");
	case '\n': return (size_t)sprintf(out, "\\n");
	case '\r': return (size_t)sprintf(out, "\\r");
	case '\t': return (size_t)sprintf(out, "\\t");
	}
	if (c < 0x20)
		return (size_t)sprintf(out, "\\u%04x", c);
	out[0] = (char)c;
	return 1;
}

static void test_every_byte(void)
{
	char in, want[8];
	size_t wn;
	unsigned c;

	for (c = 0; c < 256; c++) {
		in = (char)c;
		if (c < 0x80)
			wn = expect_ascii(c, want);
		else
			wn = (size_t)sprintf(want, "\xEF\xBF\xBD");
		check(same(esc(&in, 1), want, wn), "single byte escapes exactly", c);
	}
	/* Spot checks written out by hand. */
	check(same(esc("\x00", 1), "\\u0000", 6), "NUL is \\u0000", 0);
	check(same(esc("\x1f", 1), "\\u001f", 6), "0x1F is \\u001f (lowercase)", 0x1f);
	check(same(esc("\x7f", 1), "\x7f", 1), "0x7F passes through", 0x7f);
	check(same(esc("\x0b", 1), "\\u000b", 6), "VT is \\u000b", 0x0b);
}

struct utf8_case {
	const char *in;
	size_t n;
	const char *out;
};

#define R "\xEF\xBF\xBD"
#define C(s, o) { s, sizeof s - 1, o }

static const struct utf8_case utf8_cases[] = {
	/* overlong forms */
	C("\xC0\x80", R R),
	C("\xC1\xBF", R R),
	C("\xE0\x80\x80", R R R),
	C("\xE0\x9F\xBF", R R R),
	C("\xF0\x80\x80\x80", R R R R),
	C("\xF0\x8F\xBF\xBF", R R R R),
	/* UTF-16 surrogates */
	C("\xED\xA0\x80", R R R),
	C("\xED\xBF\xBF", R R R),
	C("\xED\xA0\x80\xED\xB0\x80", R R R R R R),
	/* above U+10FFFF */
	C("\xF4\x90\x80\x80", R R R R),
	C("\xF5\x80\x80\x80", R R R R),
	C("\xF7\xBF\xBF\xBF", R R R R),
	C("\xF8\x88\x80\x80\x80", R R R R R),
	C("\xFC\x84\x80\x80\x80\x80", R R R R R R),
	C("\xFE", R), C("\xFF", R), C("\xF5", R),
	/* truncated sequences: one U+FFFD for the maximal subpart */
	C("\xE2\x82", R),
	C("\xE2\x82x", R "x"),
	C("\xF0\x9F\x98", R),
	C("\xF0\x9F\x98" "a", R "a"),
	C("\xF0\x9F", R),
	C("\xC3", R),
	C("\xC3" "A", R "A"),
	C("\xE2\x82\xE2\x82\xAC", R "\xE2\x82\xAC"),
	/* lone continuation bytes */
	C("\x80", R),
	C("\xBF", R),
	C("\x80\x80\x80", R R R),
	C("a\x80" "b", "a" R "b"),
	/* mixed valid and invalid */
	C("\xC3\xA9\xFF\xC3\xA9", "\xC3\xA9" R "\xC3\xA9"),
	C("ok\xC0\xAFok", "ok" R R "ok"),
	C("\"\xE9\"", "\\\"" R "\\\""),
	C("\xE2\x82\xAC\n\x80", "\xE2\x82\xAC\\n" R),
	/* Unicode 15 ch. 3, Table 3-8 */
	C("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
	  "a" R R R "b" R "c" R R "d"),
	/* NUL bytes inside */
	C("a\0b", "a\\u0000b"),
	C("\xC3\0", R "\\u0000"),
};

static void test_invalid_utf8(void)
{
	size_t i;

	for (i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
		const struct utf8_case *t = &utf8_cases[i];

		check(same(esc(t->in, t->n), t->out, strlen(t->out)),
			"invalid UTF-8 case gives the exact bytes", i);
	}
}

/* Encodes cp as UTF-8 into out; returns the length. */
static size_t utf8_encode(unsigned long cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

static void test_valid_roundtrip(void)
{
	static const struct { const char *s; size_t n; } v[] = {
		{ "\xC2\x80", 2 },             /* U+0080 */
		{ "\xC3\xA9", 2 },             /* U+00E9 */
		{ "\xDF\xBF", 2 },             /* U+07FF */
		{ "\xE0\xA0\x80", 3 },         /* U+0800 */
		{ "\xE2\x82\xAC", 3 },         /* U+20AC */
		{ "\xED\x9F\xBF", 3 },         /* U+D7FF */
		{ "\xEE\x80\x80", 3 },         /* U+E000 */
		{ "\xEF\xBF\xBD", 3 },         /* U+FFFD */
		{ "\xEF\xBF\xBF", 3 },         /* U+FFFF */
		{ "\xF0\x90\x80\x80", 4 },     /* U+10000 */
		{ "\xF0\x9F\x98\x80", 4 },     /* U+1F600 */
		{ "\xF4\x8F\xBF\xBF", 4 },     /* U+10FFFF */
	};
	unsigned char enc[4];
	unsigned long cp;
	size_t i, n, bad = 0;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		check(same(esc(v[i].s, v[i].n), v[i].s, v[i].n),
			"valid multi-byte sequence passes through", i);
	/* Every scalar value from U+0080 to U+10FFFF round-trips. */
	for (cp = 0x80; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		n = utf8_encode(cp, enc);
		if (!same(esc((const char *)enc, n), (const char *)enc, n) && bad++ < 5)
			check(0, "scalar value round-trips", cp);
	}
	check(bad == 0, "every scalar value U+0080..U+10FFFF round-trips", bad);
}

/* The oracle: prefix1, prefix2 and prefix3of4 mark the byte strings that
 * begin some well-formed UTF-8 sequence (whole3: whole 3-byte ones), built
 * from the encoder alone; full_len1 gives the length a lead byte starts. */
static unsigned char *prefix2, *prefix3of4, *whole3; /* 64K, 16M bitmaps */
static unsigned char prefix1[256], full_len1[256];

static size_t key2(const unsigned char *s) { return (size_t)s[0] << 8 | s[1]; }
static size_t key3(const unsigned char *s) { return (size_t)s[0] << 16 | (size_t)s[1] << 8 | s[2]; }

static void oracle_init(void)
{
	unsigned char e[4];
	unsigned long cp;
	size_t n;

	prefix2 = calloc(1, 65536);
	prefix3of4 = calloc(1, 1 << 24);     /* 3-byte prefix of a 4-byte sequence */
	whole3 = calloc(1, 1 << 24);   /* whole 3-byte sequence */
	if (!prefix2 || !prefix3of4 || !whole3)
		exit(2);
	for (cp = 0x80; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		n = utf8_encode(cp, e);
		prefix1[e[0]] = 1;
		full_len1[e[0]] = (unsigned char)n;
		prefix2[key2(e)] = 1;
		if (n == 3)
			whole3[key3(e)] = 1;
		if (n == 4)
			prefix3of4[key3(e)] = 1;
	}
}

/* The escape of s[0..n) by the definition of maximal subparts: at each
 * offset take the longest prefix of a well-formed sequence; whole, it is
 * copied, else it (or one byte) becomes U+FFFD. */
static size_t oracle(const unsigned char *s, size_t n, char *out)
{
	size_t i = 0, o = 0, m, want;

	while (i < n) {
		if (s[i] < 0x80) {
			o += expect_ascii(s[i], out + o);
			i++;
			continue;
		}
		m = 0;
		if (prefix1[s[i]]) {
			m = 1;
			want = full_len1[s[i]];
			if (i + 1 < n && prefix2[key2(s + i)]) {
				m = 2;
				if (want > 2 && i + 2 < n &&
				    (want == 3 ? whole3 : prefix3of4)[key3(s + i)]) {
					m = 3;
					if (want == 4 && i + 3 < n && (s[i + 3] & 0xC0) == 0x80)
						m = 4;
				}
			}
			if (m == want) {
				memcpy(out + o, s + i, m);
				o += m;
				i += m;
				continue;
			}
		}
		memcpy(out + o, R, 3);
		o += 3;
		i += m ? m : 1;
	}
	return o;
}

static void test_against_oracle(void)
{
	unsigned char s[8];
	char want[64];
	size_t wn, bad = 0, k, n, i;
	unsigned long x;
	unsigned seed = 12345;

	oracle_init();
	/* Every 2-byte string, every 3-byte string with a high first byte. */
	for (x = 0; x < 65536; x++) {
		s[0] = (unsigned char)(x >> 8);
		s[1] = (unsigned char)x;
		wn = oracle(s, 2, want);
		if (!same(esc((char *)s, 2), want, wn) && bad++ < 5)
			check(0, "2-byte string matches the maximal-subpart oracle", x);
	}
	for (x = 0x800000; x < 0x1000000; x++) {
		s[0] = (unsigned char)(x >> 16);
		s[1] = (unsigned char)(x >> 8);
		s[2] = (unsigned char)x;
		wn = oracle(s, 3, want);
		if (!same(esc((char *)s, 3), want, wn) && bad++ < 5)
			check(0, "3-byte string matches the maximal-subpart oracle", x);
	}
	/* Random strings of 1-8 bytes biased to the interesting bytes. */
	for (k = 0; k < 2000000; k++) {
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 8;
		for (i = 0; i < n; i++) {
			static const unsigned char pick[] = {
				0x00, 0x22, 0x41, 0x5C, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
				0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF,
				0xF0, 0xF1, 0xF4, 0xF5, 0xFF, 0x0A,
			};
			seed = seed * 1103515245u + 12345u;
			s[i] = pick[(seed >> 16) % sizeof pick];
		}
		wn = oracle(s, n, want);
		if (!same(esc((char *)s, n), want, wn) && bad++ < 5)
			check(0, "random string matches the maximal-subpart oracle", k);
	}
	check(bad == 0, "json_escape agrees with the oracle everywhere", bad);
	free(prefix2);
	free(prefix3of4);
	free(whole3);
}

static void test_numbers(void)
{
	static const char *const ok[] = {
		"0", "-0", "1", "-1", "1.5e10", "1E+2", "-1.25e-3", "0.0",
		"123456789012345678901234567890", "1e400", "0e0", "-0.5E-07",
	};
	static const char *const bad[] = {
		"01", "+1", ".5", "1.", "1e", "NaN", "Infinity", "0x10", "",
		" 1", "1 ", "-", "--1", "1e+", "1.e5", "1..2", "-01", "inf",
		"1,5", "\xEF\xBC\x91", "1\n", "0.5.1", "e5", "-.5",
	};
	size_t i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
		check(json_is_number(ok[i]) == 1, "json_is_number accepts", i);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		check(json_is_number(bad[i]) == 0, "json_is_number refuses", i);
}

static void test_builder(void)
{
	struct buf b = { 0, 0, 0 };
	static const char want[] = "{\"a\":\"x\\ny\",\"k\\\"\":1,\"m\":{\"z\":\"\"}}";

	xbuf_putc(&b, '{');
	json_put_key(&b, "a", 1);
	json_put_string(&b, "x\ny", 3);
	json_put_key(&b, "k\"", 2);
	xbuf_putc(&b, '1');
	json_put_key(&b, "m", 1);
	xbuf_putc(&b, '{');
	json_put_key(&b, "z", 1);
	json_put_string(&b, "", 0);
	xbuf_puts(&b, "}}");
	check(same(&b, want, sizeof want - 1), "json_put_key/json_put_string build an object", 0);
	buf_reset(&b);
	json_put_key(&b, "a", 1);
	check(same(&b, ",\"a\":", 5), "json_put_key puts a comma into an empty buffer", 0);
	buf_free(&b);
}

static void test_utf8_cut(void)
{
	static const char s[] = "ab\xE2\x82\xAC" "cd\xF0\x9F\x98\x80";
	size_t n = sizeof s - 1;

	check(json_utf8_cut(s, n, 100) == n, "cut: short input is kept", 0);
	check(json_utf8_cut(s, n, 2) == 2, "cut before a lead byte", 0);
	check(json_utf8_cut(s, n, 3) == 2, "cut backs off inside a 3-byte char", 1);
	check(json_utf8_cut(s, n, 4) == 2, "cut backs off inside a 3-byte char", 2);
	check(json_utf8_cut(s, n, 5) == 5, "cut after a 3-byte char", 0);
	check(json_utf8_cut(s, n, 8) == 7, "cut backs off inside a 4-byte char", 1);
	check(json_utf8_cut(s, n, 10) == 7, "cut backs off inside a 4-byte char", 3);
	check(json_utf8_cut("\x80\x80\x80\x80\x80", 5, 4) == 4, "cut: invalid bytes cut at cap", 0);
	check(json_utf8_cut("\xE2\x82x", 3, 2) == 2, "cut: a broken sequence cuts at cap", 0);
}

static void test_tally_log_helpers(void)
{
	static const char *const tp_ok[] = {
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be",
	};
	static const char *const tp_bad[] = {
		"",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.",
	};
	size_t i;

	for (i = 0; i < sizeof tp_ok / sizeof tp_ok[0]; i++)
		check(traceparent_ok(tp_ok[i]) == 1, "traceparent accepted", i);
	for (i = 0; i < sizeof tp_bad / sizeof tp_bad[0]; i++)
		check(traceparent_ok(tp_bad[i]) == 0, "traceparent refused", i);
	check(parse_level("warning") && !strcmp(parse_level("warning"), "WARN"), "WARNING is WARN", 0);
	check(parse_level("dEbUg") && !strcmp(parse_level("dEbUg"), "DEBUG"), "levels ignore case", 0);
	check(parse_level("TRACE") == NULL, "unknown level refused", 0);
	check(is_builtin_key("metadata", 8) && !is_builtin_key("metadat", 7), "built-in keys", 0);
}

static void test_warning_pattern(void)
{
	static const char *const yes[] = {
		"warning: x", "a.c:1: warning: unused", "WARN y", "[warn] z", "Warning",
		"x-warning-y", "warn", "npm WARN deprecated", "WARNING:",
	};
	static const char *const no[] = {
		"forewarned", "warnings: 0", "warned", "swarn", "wa rn", "", "warm",
		"prewarning",
	};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
		check(is_warning(yes[i], strlen(yes[i])) == 1, "warning pattern matches", i);
	for (i = 0; i < sizeof no / sizeof no[0]; i++)
		check(is_warning(no[i], strlen(no[i])) == 0, "warning pattern does not match", i);
}

static void test_event_redaction(void)
{
	struct opts o;
	struct event_tmpl t;
	struct ts_cache c = { 0, 0, "", 0 };
	struct buf line = { 0, 0, 0 }, scratch = { 0, 0, 0 };
	static const char want[] = ",\"level\":\"WARN\",\"feature\":\"f\",\"message\":"
		"\"a password=[REDACTED]\",\"db_password\":\"[REDACTED]\","
		"\"metadata\":{\"note\":\"token=[REDACTED]\"}}\n";
	const char *p;

	memset(&o, 0, sizeof o);
	o.level = "INFO";
	o.redact = 1;
	o.feature = "f";
	o.fields[0].k = "db_password", o.fields[0].kn = 11, o.fields[0].v = "x", o.fields[0].type = KV_STRING;
	o.nfields = 1;
	o.meta[0].k = "note", o.meta[0].kn = 4, o.meta[0].v = "token=y", o.meta[0].type = KV_STRING;
	o.nmeta = 1;
	build_template(&t, &o);
	check(put_event(&line, &t, &c, "WARN", "a password=b", 12, 0, &scratch) == 0, "put_event", 0);
	p = strstr(line.p, "\",\"level\"");
	check(p && strcmp(p + 1, want) == 0, "event line is redacted field by field", 0);
	if (p && strcmp(p + 1, want) != 0)
		printf("got: %s", line.p);
	buf_free(&t.head), buf_free(&t.tail), buf_free(&line), buf_free(&scratch);
}

int main(void)
{
	test_every_byte();
	test_invalid_utf8();
	test_valid_roundtrip();
	test_against_oracle();
	test_numbers();
	test_builder();
	test_utf8_cut();
	test_tally_log_helpers();
	test_warning_pattern();
	test_event_redaction();
	printf("test_json: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
