/* test_prom: unit tests of prom.c (names, escaping, values, parse and
 * serialize) and atomic.c (lock, read, atomic replace). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/c/prom.c"
#include "../../lib/c/atomic.c"

#include "check.h"

/* Returns 1 when a and b have the same bits. */
static int same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

static void test_names(void)
{
	static const struct { const char *s; int metric, label; } t[] = {
		{ "a", 1, 1 },
		{ "_", 1, 1 },
		{ "_a", 1, 1 },
		{ "A9_z", 1, 1 },
		{ "http_requests_total", 1, 1 },
		{ "le", 1, 1 },
		{ ":", 1, 0 },
		{ "a:b", 1, 0 },
		{ ":a", 1, 0 },
		{ "__name__", 1, 0 },
		{ "__", 1, 0 },
		{ "__a", 1, 0 },
		{ "", 0, 0 },
		{ "9a", 0, 0 },
		{ "a-b", 0, 0 },
		{ "a b", 0, 0 },
		{ "a.b", 0, 0 },
		{ "a\n", 0, 0 },
		{ "\xc3\xa9", 0, 0 },
		{ "a\"", 0, 0 },
		{ "a{", 0, 0 },
	};
	char big[PROM_MAX_NAME + 2];
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		CHECK(prom_metric_name_ok(t[i].s, strlen(t[i].s)) == t[i].metric,
			"metric name \"%s\" want %d", t[i].s, t[i].metric);
		CHECK(prom_label_name_ok(t[i].s, strlen(t[i].s)) == t[i].label,
			"label name \"%s\" want %d", t[i].s, t[i].label);
	}
	CHECK(!prom_metric_name_ok("a\0b", 3), "metric name with NUL refused");
	memset(big, 'a', sizeof big);
	CHECK(prom_metric_name_ok(big, PROM_MAX_NAME), "metric name of PROM_MAX_NAME bytes accepted");
	CHECK(!prom_metric_name_ok(big, PROM_MAX_NAME + 1), "metric name over PROM_MAX_NAME refused");
	CHECK(prom_label_name_ok(big, PROM_MAX_NAME), "label name of PROM_MAX_NAME bytes accepted");
	CHECK(!prom_label_name_ok(big, PROM_MAX_NAME + 1), "label name over PROM_MAX_NAME refused");
}

static void test_escape_every_byte(void)
{
	struct buf b = { 0 };
	char c, want[3];
	int i;

	for (i = 0; i < 256; i++) {
		c = (char)i;
		want[0] = c;
		want[1] = '\0';
		if (c == '\\')
			strcpy(want, "\\\\");
		else if (c == '"')
			strcpy(want, "\\\"");
		else if (c == '\n')
			strcpy(want, "\\n");
		buf_reset(&b);
		CHECK(prom_escape_label(&b, &c, 1) == 0, "escape label byte 0x%02x", i);
		CHECK(b.len == (i == 0 ? 1 : strlen(want)) && !memcmp(b.p, want, b.len),
			"label byte 0x%02x escaped to %zu bytes", i, b.len);

		want[0] = c;
		want[1] = '\0';
		if (c == '\\')
			strcpy(want, "\\\\");
		else if (c == '\n')
			strcpy(want, "\\n");
		buf_reset(&b);
		CHECK(prom_escape_help(&b, &c, 1) == 0, "escape help byte 0x%02x", i);
		CHECK(b.len == (i == 0 ? 1 : strlen(want)) && !memcmp(b.p, want, b.len),
			"help byte 0x%02x escaped to %zu bytes", i, b.len);
	}
	buf_reset(&b);
	prom_escape_label(&b, "a\"b\\c\nd\xc3\xa9", 9);
	CHECK(!strcmp(b.p, "a\\\"b\\\\c\\nd\xc3\xa9"), "label escaping of a mixed string: %s", b.p);
	buf_free(&b);
}

static void test_utf8(void)
{
	static const struct { const char *s; int ok; } t[] = {
		{ "", 1 }, { "abc", 1 }, { "\xc3\xa9", 1 }, { "\xe2\x82\xac", 1 },
		{ "\xf0\x9f\x98\x80", 1 }, { "\xf4\x8f\xbf\xbf", 1 }, { "\xed\x9f\xbf", 1 },
		{ "\xff", 0 }, { "\xc3", 0 }, { "\xc0\x80", 0 }, { "\xc1\xbf", 0 },
		{ "\xe0\x9f\xbf", 0 }, { "\xed\xa0\x80", 0 }, { "\xf4\x90\x80\x80", 0 },
		{ "\xf5\x80\x80\x80", 0 }, { "\x80", 0 }, { "\xe2\x82", 0 }, { "a\xe2\x28\xa1", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK(prom_utf8_ok(t[i].s, strlen(t[i].s)) == t[i].ok, "utf8 case %zu want %d", i, t[i].ok);
	CHECK(prom_utf8_ok("a\0b", 3), "NUL is valid UTF-8");
}

static void test_format(void)
{
	static const struct { double v; const char *want; } t[] = {
		{ 0.0, "0" },
		{ -0.0, "-0" },
		{ 1, "1" },
		{ -1, "-1" },
		{ 0.1, "0.1" },
		{ 0.5, "0.5" },
		{ 2.5, "2.5" },
		{ -1.5, "-1.5" },
		{ 1e15, "1000000000000000" },
		{ 1e16, "10000000000000000" },
		{ 1e20, "100000000000000000000" },
		{ 1e21, "1e+21" },
		{ 1e308, "1e+308" },
		{ 5e-324, "5e-324" },
		{ 9007199254740994.0, "9007199254740994" },
		{ 9007199254740993.0, "9007199254740992" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1e-7, "1e-07" },
		{ 123.456, "123.456" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308" },
	};
	char out[PROM_VALUE_BUFSZ];
	double back;
	uint64_t bits = 0x9e3779b97f4a7c15u;
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		prom_format_value(t[i].v, out);
		CHECK(!strcmp(out, t[i].want), "format %.17g: got %s want %s", t[i].v, out, t[i].want);
		back = strtod(out, NULL);
		CHECK(same_bits(back, t[i].v), "format %.17g: %s does not round-trip", t[i].v, out);
		CHECK(prom_parse_value(out, &back) == 0 && same_bits(back, t[i].v),
			"prom_parse_value(%s) gives back %.17g", out, t[i].v);
	}
	prom_format_value(NAN, out);
	CHECK(!strcmp(out, "NaN"), "NaN prints NaN, got %s", out);
	prom_format_value(-NAN, out);
	CHECK(!strcmp(out, "NaN"), "-NaN prints NaN, got %s", out);
	prom_format_value(HUGE_VAL, out);
	CHECK(!strcmp(out, "+Inf"), "+Inf prints +Inf, got %s", out);
	prom_format_value(-HUGE_VAL, out);
	CHECK(!strcmp(out, "-Inf"), "-Inf prints -Inf, got %s", out);
	CHECK(prom_parse_value("-0", &back) == 0 && signbit(back) && back == 0, "-0 parses as negative zero");

	/* A sweep of pseudo-random bit patterns: each must round-trip. */
	for (i = 0; i < 200000; i++) {
		double v;

		bits ^= bits << 13;
		bits ^= bits >> 7;
		bits ^= bits << 17;
		memcpy(&v, &bits, sizeof v);
		if (v != v || isinf(v))
			continue;
		prom_format_value(v, out);
		if (prom_parse_value(out, &back) < 0 || !same_bits(back, v)) {
			if (bad++ < 5)
				printf("FAIL: %.17g formatted as %s does not round-trip\n", v, out);
		}
	}
	CHECK(bad == 0, "%d random values did not round-trip", bad);
}

static void test_parse_value(void)
{
	static const struct { const char *s; int ok; double v; } t[] = {
		{ "1", 1, 1 }, { "-1", 1, -1 }, { "+1", 1, 1 }, { "1.", 1, 1 }, { ".5", 1, 0.5 },
		{ "1e3", 1, 1000 }, { "1E-3", 1, 0.001 }, { "0.1", 1, 0.1 }, { "007", 1, 7 },
		{ "1e-400", 1, 0 },
		{ "", 0, 0 }, { " 1", 0, 0 }, { "1 ", 0, 0 }, { "0x10", 0, 0 }, { "1e", 0, 0 },
		{ "e3", 0, 0 }, { ".", 0, 0 }, { "+", 0, 0 }, { "1,5", 0, 0 }, { "1e400", 0, 0 },
		{ "-1e400", 0, 0 }, { "nan(1)", 0, 0 }, { "+NaN", 0, 0 }, { "--1", 0, 0 },
		{ "1_000", 0, 0 }, { "infinit", 0, 0 }, { "0x1p3", 0, 0 }, { "1.2.3", 0, 0 },
	};
	double v;
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int rc = prom_parse_value(t[i].s, &v);

		CHECK((rc == 0) == t[i].ok, "parse value \"%s\": rc %d", t[i].s, rc);
		if (rc == 0 && t[i].ok)
			CHECK(v == t[i].v, "parse value \"%s\" gave %.17g", t[i].s, v);
	}
	CHECK(prom_parse_value("NaN", &v) == 0 && v != v, "NaN");
	CHECK(prom_parse_value("nan", &v) == 0 && v != v, "nan");
	CHECK(prom_parse_value("+Inf", &v) == 0 && v == HUGE_VAL, "+Inf");
	CHECK(prom_parse_value("Inf", &v) == 0 && v == HUGE_VAL, "Inf");
	CHECK(prom_parse_value("-Inf", &v) == 0 && v == -HUGE_VAL, "-Inf");
	CHECK(prom_parse_value("+infinity", &v) == 0 && v == HUGE_VAL, "+infinity");
	errno = 0;
	CHECK(prom_parse_value("1e999", &v) < 0 && errno == ERANGE, "overflow gives ERANGE");
	errno = 0;
	CHECK(prom_parse_value("x", &v) < 0 && errno == EINVAL, "syntax error gives EINVAL");
}

/* Parses in, serializes, compares with want; then checks the output is a
 * fixed point. */
static void round_trip(const char *what, const char *in, const char *want)
{
	struct prom_doc d = { 0 }, d2 = { 0 };
	struct prom_err err;
	struct buf out = { 0 }, out2 = { 0 };
	int rc;

	rc = prom_parse(&d, in, strlen(in), &err);
	CHECK(rc == 0, "%s: parse failed at line %zu: %s", what, err.line, err.msg);
	if (rc == 0) {
		CHECK(prom_serialize(&d, &out) == 0, "%s: serialize", what);
		CHECK(out.p && !strcmp(out.p, want), "%s: got\n%s\nwant\n%s", what, out.p ? out.p : "", want);
		CHECK(prom_parse(&d2, out.p ? out.p : "", out.len, &err) == 0, "%s: reparse: %s", what, err.msg);
		CHECK(prom_serialize(&d2, &out2) == 0 && out2.len == out.len &&
			(out.len == 0 || !memcmp(out.p, out2.p, out.len)), "%s: not a fixed point", what);
	}
	prom_doc_free(&d);
	prom_doc_free(&d2);
	buf_free(&out);
	buf_free(&out2);
}

static void test_round_trip(void)
{
	round_trip("empty", "", "");
	round_trip("blank lines and comments", "\n  \n# just a comment\n#\n", "");
	round_trip("hand-written",
		"# A hand-written file.\n"
		"\n"
		"# HELP builds_total Builds, with a \\\\ and a\\nnewline.\n"
		"# TYPE builds_total counter\n"
		"builds_total{z=\"1\",a=\"q\\\"uote\"} 2\n"
		"builds_total{a=\"b\\\\s\\nl\"} 1.0\n"
		"builds_total 7\n"
		"\t  temp_celsius   -3.5   \n"
		"# TYPE lat_seconds histogram\n"
		"lat_seconds_sum{job=\"x\"} 12\n"
		"lat_seconds_bucket{job=\"x\",le=\"+Inf\"} 3\n"
		"lat_seconds_bucket{le=\"0.5\",job=\"x\"} 1\n"
		"lat_seconds_count{job=\"x\"} 3\n"
		"lat_seconds_bucket{job=\"x\",le=\"1.0\"} 2\n"
		"# TYPE rpc summary\n"
		"rpc{quantile=\"0.99\"} 5\n"
		"rpc{quantile=\"0.5\"} 1\n"
		"rpc_sum 10\n"
		"rpc_count 4\n"
		"with_ts{a=\"1\",} 1 1700000000000\n"
		"nan_value NaN\n"
		"inf_value -Inf",
		"# HELP builds_total Builds, with a \\\\ and a\\nnewline.\n"
		"# TYPE builds_total counter\n"
		"builds_total 7\n"
		"builds_total{a=\"b\\\\s\\nl\"} 1\n"
		"builds_total{a=\"q\\\"uote\",z=\"1\"} 2\n"
		"temp_celsius -3.5\n"
		"# TYPE lat_seconds histogram\n"
		"lat_seconds_bucket{job=\"x\",le=\"0.5\"} 1\n"
		"lat_seconds_bucket{job=\"x\",le=\"1\"} 2\n"
		"lat_seconds_bucket{job=\"x\",le=\"+Inf\"} 3\n"
		"lat_seconds_sum{job=\"x\"} 12\n"
		"lat_seconds_count{job=\"x\"} 3\n"
		"# TYPE rpc summary\n"
		"rpc{quantile=\"0.5\"} 1\n"
		"rpc{quantile=\"0.99\"} 5\n"
		"rpc_sum 10\n"
		"rpc_count 4\n"
		"with_ts{a=\"1\"} 1 1700000000000\n"
		"nan_value NaN\n"
		"inf_value -Inf\n");
	round_trip("HELP before TYPE, empty HELP, family without samples",
		"# HELP g\n# TYPE g gauge\n# HELP e Empty family.\n# TYPE e counter\n",
		"# HELP g\n# TYPE g gauge\n# HELP e Empty family.\n# TYPE e counter\n");
	round_trip("UTF-8 label value kept raw",
		"m{v=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} 1\n",
		"m{v=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} 1\n");
	round_trip("non-contiguous series regrouped",
		"a 1\nb 2\na{x=\"1\"} 3\n",
		"a 1\na{x=\"1\"} 3\nb 2\n");
}

static void test_parse_errors(void)
{
	static const struct { const char *text; size_t len; size_t line; const char *msg; } t[] = {
		{ "a 1\nb{x=\"1} 2\n", 0, 2, "unterminated" },
		{ "# TYPE a counter\n# TYPE a gauge\n", 0, 2, "second TYPE" },
		{ "# HELP a x\n# HELP a y\n", 0, 2, "second HELP" },
		{ "a 1\n# TYPE a counter\n", 0, 2, "after its samples" },
		{ "a 1\n\n\na 2\n", 0, 4, "duplicate sample" },
		{ "a{__x=\"1\"} 1", 0, 1, "invalid label name" },
		{ "a{x=\"1\",x=\"2\"} 1", 0, 1, "duplicate label" },
		{ "\n\n9a 1", 0, 3, "invalid metric name" },
		{ "{x=\"1\"} 1", 0, 1, "expected a metric name" },
		{ "a 1 2 3", 0, 1, "unexpected text" },
		{ "a 1 x", 0, 1, "invalid timestamp" },
		{ "ok 1\na abc", 0, 2, "invalid value" },
		{ "a", 0, 1, "without a value" },
		{ "a{x=\"\\q\"} 1", 0, 1, "invalid escape" },
		{ "a{x \"1\"} 1", 0, 1, "expected '='" },
		{ "a{x=1} 1", 0, 1, "expected '\"'" },
		{ "a{x=\"1\" y=\"2\"} 1", 0, 1, "expected ',' or '}'" },
		{ "# HELP a x\\q", 0, 1, "invalid escape" },
		{ "# HELP a x\\", 0, 1, "lone backslash" },
		{ "# HELP 9a x", 0, 1, "invalid metric name" },
		{ "# TYPE a", 0, 1, "without a type" },
		{ "# TYPE a foo", 0, 1, "unknown metric type" },
		{ "# TYPE a gauge extra", 0, 1, "unexpected text" },
		{ "# TYPE h histogram\nh 1", 0, 2, "does not belong" },
		{ "# TYPE h histogram\nh_bucket 1", 0, 2, "missing label le" },
		{ "# TYPE h histogram\nh_bucket{le=\"x\"} 1", 0, 2, "invalid le" },
		{ "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1", 0, 2, "invalid le" },
		{ "# TYPE h histogram\nh_sum{le=\"1\"} 1", 0, 2, "reserved" },
		{ "# TYPE s summary\ns 1", 0, 2, "missing label quantile" },
		{ "a{x=\"\xff\"} 1", 0, 1, "not valid UTF-8" },
		{ "# HELP a \xc3\x28", 0, 1, "not valid UTF-8" },
		{ "a 1\nb 1\0", 8, 2, "NUL byte" },
		{ "# TYPE a_count gauge\n# TYPE a histogram", 0, 2, "collides" },
		{ "# TYPE a histogram\n# HELP a_bucket x", 0, 2, "collides" },
		{ "a 1e999", 0, 1, "invalid value" },
		{ "a{x=\"1\"} 1\r\n", 0, 1, "invalid value" },
	};
	struct prom_doc d = { 0 };
	struct prom_err err;
	size_t i, n;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		n = t[i].len ? t[i].len : strlen(t[i].text);
		errno = 0;
		CHECK(prom_parse(&d, t[i].text, n, &err) < 0 && errno == EINVAL,
			"case %zu parsed, want an error on line %zu", i, t[i].line);
		CHECK(err.line == t[i].line, "case %zu: line %zu, want %zu (%s)", i, err.line, t[i].line, err.msg);
		CHECK(strstr(err.msg, t[i].msg) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i, err.msg, t[i].msg);
		CHECK(d.n == 0 && d.f == NULL, "case %zu: document not emptied", i);
		prom_doc_free(&d);
	}
}

static void test_caps(void)
{
	struct prom_doc d = { 0 };
	struct prom_err err;
	struct buf b = { 0 };
	int i;

	buf_puts(&b, "a{");
	for (i = 0; i < PROM_MAX_LABELS; i++)
		buf_printf(&b, "l%d=\"v\",", i);
	buf_puts(&b, "} 1\n");
	CHECK(prom_parse(&d, b.p, b.len, &err) == 0, "%d labels accepted: %s", PROM_MAX_LABELS, err.msg);
	prom_doc_free(&d);
	buf_reset(&b);
	buf_puts(&b, "a{");
	for (i = 0; i <= PROM_MAX_LABELS; i++)
		buf_printf(&b, "l%d=\"v\",", i);
	buf_puts(&b, "} 1\n");
	CHECK(prom_parse(&d, b.p, b.len, &err) < 0 && strstr(err.msg, "too many labels"),
		"%d labels refused: %s", PROM_MAX_LABELS + 1, err.msg);

	buf_reset(&b);
	buf_puts(&b, "a{x=\"");
	for (i = 0; i < PROM_MAX_LABEL_VALUE; i++)
		buf_putc(&b, 'v');
	buf_puts(&b, "\"} 1\n");
	CHECK(prom_parse(&d, b.p, b.len, &err) == 0, "label value of the cap accepted: %s", err.msg);
	prom_doc_free(&d);
	buf_reset(&b);
	buf_puts(&b, "a{x=\"");
	for (i = 0; i <= PROM_MAX_LABEL_VALUE; i++)
		buf_putc(&b, 'v');
	buf_puts(&b, "\"} 1\n");
	CHECK(prom_parse(&d, b.p, b.len, &err) < 0 && strstr(err.msg, "too long"),
		"label value over the cap refused: %s", err.msg);

	buf_reset(&b);
	buf_puts(&b, "# HELP a ");
	for (i = 0; i <= PROM_MAX_HELP; i++)
		buf_putc(&b, 'h');
	CHECK(prom_parse(&d, b.p, b.len, &err) < 0 && strstr(err.msg, "too long"),
		"HELP over the cap refused: %s", err.msg);
	buf_free(&b);
}

static void test_model(void)
{
	struct prom_doc d = { 0 };
	struct prom_family *f;
	struct prom_sample *s;
	struct prom_label l[3] = {
		{ "zeta", 4, "1", 1 },
		{ "alpha", 5, "q\"b\\n\n", 6 },
		{ "le", 2, "0.5", 3 },
	};
	struct prom_err err;
	struct buf key = { 0 }, out = { 0 };
	double bound = 0;

	CHECK(prom_labels_key(l, 3, "le", 1, &bound, &key, &err) == 0, "key: %s", err.msg);
	CHECK(key.p && !strcmp(key.p, "alpha=\"q\\\"b\\\\n\\n\",zeta=\"1\""), "key sorted and escaped: %s", key.p);
	CHECK(bound == 0.5, "bound taken out");
	buf_reset(&key);
	CHECK(prom_labels_key(l, 3, "le", 0, &bound, &key, &err) < 0 && strstr(err.msg, "reserved"),
		"le refused where no bound is wanted: %s", err.msg);
	buf_reset(&key);
	CHECK(prom_labels_key(l, 3, NULL, 0, &bound, &key, &err) == 0 &&
		!strcmp(key.p, "alpha=\"q\\\"b\\\\n\\n\",le=\"0.5\",zeta=\"1\""),
		"le is an ordinary label without a bound name: %s", key.p);
	buf_reset(&key);
	CHECK(prom_labels_key(NULL, 0, NULL, 0, &bound, &key, &err) == 0 && key.p && !strcmp(key.p, ""),
		"empty key");

	f = prom_family_add(&d, "h", PROM_HISTOGRAM);
	CHECK(f != NULL, "family added");
	CHECK(prom_family_clash(&d, "h_count", PROM_GAUGE) == f, "gauge h_count clashes with histogram h");
	CHECK(prom_family_clash(&d, "h_bucket", PROM_COUNTER) == f, "counter h_bucket clashes");
	CHECK(prom_family_clash(&d, "h", PROM_GAUGE) == NULL, "same name is not a clash");
	CHECK(prom_family_clash(&d, "h_total", PROM_COUNTER) == NULL, "h_total does not clash");
	f = prom_family_add(&d, "x_sum", PROM_GAUGE);
	CHECK(prom_family_clash(&d, "x", PROM_SUMMARY) == f, "summary x clashes with gauge x_sum");
	CHECK(prom_family_clash(&d, "x", PROM_GAUGE) == NULL, "gauge x does not clash with gauge x_sum");
	f = prom_family_find(&d, "h");
	s = prom_sample_get(f, "", PROM_SFX_COUNT, 0, 0, 1);
	s->value = 2;
	s = prom_sample_get(f, "", PROM_SFX_BUCKET, 1, HUGE_VAL, 1);
	s->value = 2;
	s = prom_sample_get(f, "", PROM_SFX_BUCKET, 1, 1, 1);
	s->value = 1;
	s = prom_sample_get(f, "", PROM_SFX_SUM, 0, 0, 1);
	s->value = 1.5;
	s = prom_sample_get(f, "a=\"1\"", PROM_SFX_COUNT, 0, 0, 1);
	CHECK(prom_sample_get(f, "", PROM_SFX_BUCKET, 1, 1, 0)->value == 1, "sample found again");
	errno = 0;
	CHECK(prom_sample_get(f, "", PROM_SFX_BUCKET, 1, 2, 0) == NULL && errno == ENOENT, "missing sample");
	prom_family_set_help(f, "H.");
	CHECK(prom_serialize(&d, &out) == 0, "serialize");
	CHECK(!strcmp(out.p,
		"# HELP h H.\n# TYPE h histogram\n"
		"h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n"
		"h_count{a=\"1\"} 0\n"
		"# TYPE x_sum gauge\n"), "model serialized: %s", out.p);
	CHECK(prom_series_remove(f, "") == 4 && f->n == 1, "series removed");
	prom_family_remove(&d, f);
	CHECK(d.n == 1 && !strcmp(d.f[0].name, "x_sum"), "family removed");
	prom_doc_free(&d);
	buf_free(&key);
	buf_free(&out);
}

/* Returns the number of entries of dir other than . and .. */
static int count_entries(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return -1;
	while ((e = readdir(dp)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

static void test_atomic(void)
{
	char dir[] = "/tmp/test_prom.XXXXXX", path[64], lockp[64], missing[80];
	struct buf b = { 0 };
	struct stat st;
	mode_t old;
	int fd;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/m.prom", dir);
	snprintf(lockp, sizeof lockp, "%s/.m.prom.lock", dir);
	snprintf(missing, sizeof missing, "%s/no/such/m.prom", dir);

	old = umask(077);
	CHECK(atomic_replace(path, "a 1\n", 4, 0) == 0, "atomic_replace: %s", strerror(errno));
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "mode 0644 under umask 077: %o", st.st_mode & 07777);
	CHECK(atomic_replace(path, "b 2\n", 4, 1) == 0, "atomic_replace with sync: %s", strerror(errno));
	umask(old);
	CHECK(file_read_all(path, PROM_MAX_FILE, &b) == 0 && b.len == 4 && !strcmp(b.p, "b 2\n"), "content replaced");
	CHECK(count_entries(dir) == 1, "no temporary file left: %d entries", count_entries(dir));
	errno = 0;
	CHECK(file_read_all(path, 3, &b) < 0 && errno == EFBIG, "read cap gives EFBIG");
	errno = 0;
	CHECK(file_read_all(missing, 10, &b) < 0 && errno == ENOENT, "missing file gives ENOENT");
	errno = 0;
	CHECK(atomic_replace(missing, "x", 1, 0) < 0 && errno == ENOENT, "missing directory gives ENOENT");
	CHECK(count_entries(dir) == 1, "failure left nothing behind");
	errno = 0;
	CHECK(atomic_replace("/tmp/", "x", 1, 0) < 0 && errno == EISDIR, "path ending in / gives EISDIR");

	fd = lock_open(path);
	CHECK(fd >= 0, "lock_open: %s", strerror(errno));
	CHECK(stat(lockp, &st) == 0, "lock file is .m.prom.lock");
	if (fd >= 0)
		close(fd);
	errno = 0;
	CHECK(lock_open(missing) < 0 && errno == ENOENT, "lock_open in a missing directory gives ENOENT");

	unlink(lockp);
	unlink(path);
	rmdir(dir);
	buf_free(&b);
}

/* The shortest %.Ng (N = 1..17) that reads back to v: prom_format_value's
 * definition for finite non-integers, without its fast path. */
static void slow_format(double v, char out[PROM_VALUE_BUFSZ])
{
	double back;
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, PROM_VALUE_BUFSZ, "%.*g", prec, v);
		back = strtod(out, NULL);
		if (same_bits(back, v))
			return;
	}
}

/* The fast paths of prom_format_value and prom_parse_value give exactly
 * what snprintf and strtod give, on values where the fast paths apply. */
static void test_fast_paths(void)
{
	static const double scales[] = { 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1e3, 1e6, 1e9, 1e12, 1e14 };
	char out[PROM_VALUE_BUFSZ], want[PROM_VALUE_BUFSZ], text[40];
	uint64_t bits = 0x2545f4914f6cdd1du;
	double v, back, ref;
	int bad = 0, badp = 0, i, d;

	for (i = 0; i < 400000; i++) {
		bits ^= bits << 13;
		bits ^= bits >> 7;
		bits ^= bits << 17;
		/* Short decimals (like timings: 12.345) and arbitrary doubles of
		 * every magnitude the fixed-point path takes. */
		d = (int)(bits % 16);
		if (i % 2)
			v = (double)(bits >> 20 & 0xfffffff) / pow10_exact[d] * ((bits & 1) ? -1 : 1);
		else
			v = (double)(bits >> 11) / 9007199254740992.0 * scales[bits % 12] * 10;
		if (v == (double)(long long)v)
			continue;
		prom_format_value(v, out);
		slow_format(v, want);
		if (strcmp(out, want) && bad++ < 5)
			printf("FAIL: %.17g formats as %s, snprintf says %s\n", v, out, want);
		/* Parse: a decimal of up to 15 digits, fast path against strtod. */
		snprintf(text, sizeof text, "%.*f", d, (double)(bits >> 24 & 0xffffff) / pow10_exact[d % 8]);
		ref = strtod(text, NULL);
		if ((prom_parse_value(text, &back) < 0 || !same_bits(back, ref)) && badp++ < 5)
			printf("FAIL: %s parses as %.17g, strtod says %.17g\n", text, back, ref);
	}
	CHECK(bad == 0, "%d values formatted differently from the shortest %%.Ng", bad);
	CHECK(badp == 0, "%d decimals parsed differently from strtod", badp);
	prom_format_value(-0.0001, out);
	CHECK(!strcmp(out, "-0.0001"), "-0.0001 formats as %s", out);
	prom_format_value(999999999999999.9, out);
	slow_format(999999999999999.9, want);
	CHECK(!strcmp(out, want), "999999999999999.9 formats as %s, want %s", out, want);
	prom_format_value(1e19, out);
	CHECK(!strcmp(out, "10000000000000000000"), "1e19 formats as %s", out);
	prom_format_value(18446744073709551616.0, out);
	CHECK(!strcmp(out, "18446744073709551616"), "2^64 formats as %s", out);
	prom_format_value(-9223372036854775808.0, out);
	CHECK(!strcmp(out, "-9223372036854775808"), "-2^63 formats as %s", out);
	CHECK(prom_parse_value("123456789012345", &v) == 0 && v == 123456789012345.0, "15 digits");
	CHECK(prom_parse_value("1234567890123456789", &v) == 0 && v == 1234567890123456789.0, "19 digits, by strtod");
	CHECK(prom_parse_value("-0.0", &v) == 0 && v == 0 && signbit(v), "-0.0 is negative zero");
}

/* prom_histogram_check accepts what tally-metric writes and names the
 * line of each inconsistency. */
static void test_histogram_check(void)
{
	static const struct { const char *text; size_t line; const char *msg; } t[] = {
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", 0, NULL },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", 3,
		  "histogram h{}: bucket le=\"+Inf\" holds less than the bucket before it (buckets are cumulative)" },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n", 4, "histogram h{} has no le=\"+Inf\" bucket" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", 3, "histogram h{} has no h_sum sample" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n", 3, "histogram h{} has no h_count sample" },
		{ "# TYPE h histogram\nh_bucket{a=\"x\",le=\"+Inf\"} 1\nh_sum{a=\"x\"} 1\nh_count{a=\"x\"} 2\n", 4,
		  "histogram h{a=\"x\"}: h_count differs from its le=\"+Inf\" bucket" },
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} NaN\nh_sum 1\nh_count 1\n", 2,
		  "histogram h{}: bucket le=\"+Inf\" holds less than the bucket before it (buckets are cumulative)" },
		{ "# TYPE g gauge\ng 1\n", 0, NULL },
	};
	struct prom_doc d = { 0 };
	struct prom_err err;
	size_t i;
	int rc;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (prom_parse(&d, t[i].text, strlen(t[i].text), &err) < 0) {
			CHECK(0, "histogram case %zu does not parse: %s", i, err.msg);
			continue;
		}
		err.line = 0;
		err.msg[0] = '\0';
		rc = prom_histogram_check(&d.f[0], &err);
		if (!t[i].msg) {
			CHECK(rc == 0, "histogram case %zu refused: %s", i, err.msg);
		} else {
			CHECK(rc < 0 && errno == EINVAL, "histogram case %zu accepted", i);
			CHECK(err.line == t[i].line, "histogram case %zu: line %zu, want %zu", i, err.line, t[i].line);
			CHECK(!strcmp(err.msg, t[i].msg), "histogram case %zu: message %s", i, err.msg);
		}
		prom_doc_free(&d);
	}
}

/* atomic_replace_locked: stale temporary removed, mode 0644, swaps over
 * an existing file, creates a new one, leaves nothing behind. */
static void test_atomic_locked(void)
{
	char dir[] = "/tmp/test_prom.XXXXXX", path[64], tmp[64], lockp[64], sub[64], missing[80];
	struct buf b = { 0 };
	struct stat st;
	mode_t old;
	int fd;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/m.prom", dir);
	snprintf(tmp, sizeof tmp, "%s/.m.prom.tmp", dir);
	snprintf(lockp, sizeof lockp, "%s/.m.prom.lock", dir);
	snprintf(sub, sizeof sub, "%s/d.prom", dir);
	snprintf(missing, sizeof missing, "%s/no/such/m.prom", dir);

	old = umask(077);
	CHECK(atomic_replace_locked(path, "a 1\n", 4, 0) == 0, "new file: %s", strerror(errno));
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "mode 0644 under umask 077");
	fd = open(tmp, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "stale", 5) == 5, "stale temporary made");
	if (fd >= 0)
		close(fd);
	CHECK(atomic_replace_locked(path, "b 2\n", 4, 0) == 0, "over a stale temporary: %s", strerror(errno));
	CHECK(file_read_all(path, 100, &b) == 0 && !strcmp(b.p, "b 2\n"), "content replaced: %s", b.p);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "still mode 0644");
	CHECK(atomic_replace_locked(path, "c 3\n", 4, 1) == 0, "with sync: %s", strerror(errno));
	CHECK(file_read_all(path, 100, &b) == 0 && !strcmp(b.p, "c 3\n"), "content replaced with sync");
	umask(old);
	CHECK(count_entries(dir) == 1, "only the file is left: %d entries", count_entries(dir));
	CHECK(mkdir(sub, 0755) == 0, "mkdir");
	errno = 0;
	CHECK(atomic_replace_locked(sub, "x", 1, 0) < 0 && errno == EISDIR, "a directory is not replaced: %s", strerror(errno));
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "the directory is still there");
	CHECK(count_entries(dir) == 2, "nothing left behind: %d entries", count_entries(dir));
	errno = 0;
	CHECK(atomic_replace_locked(missing, "x", 1, 0) < 0 && errno == ENOENT, "missing directory gives ENOENT");
	rmdir(sub);
	unlink(path);
	unlink(lockp);
	rmdir(dir);
	buf_free(&b);
}

int main(void)
{
	test_names();
	test_escape_every_byte();
	test_utf8();
	test_format();
	test_parse_value();
	test_round_trip();
	test_parse_errors();
	test_caps();
	test_model();
	test_atomic();
	test_fast_paths();
	test_histogram_check();
	test_atomic_locked();
	return check_done("test_prom");
}
