/* fuzz_prom: prom.c's parser, serializer and value formatting on arbitrary
 * bytes. Properties (abort() on violation):
 *  - a text prom_parse() accepts serializes to a text it accepts again, and
 *    serializing that gives the same bytes (the canonical form is a fixed
 *    point), and prom_histogram_check() gives the same verdict on both;
 *  - the first 8 bytes read as a double format to a text that
 *    prom_parse_value() reads back to the same bits (NaN: to a NaN);
 *  - any bytes, escaped as a label value, parse back to the same bytes
 *    when they are UTF-8, and are refused otherwise. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns the number of families of d that fail prom_histogram_check(). */
static size_t bad_histograms(const struct prom_doc *d)
{
	struct prom_err err;
	size_t i, n = 0;

	for (i = 0; i < d->n; i++)
		n += prom_histogram_check(&d->f[i], &err) < 0;
	return n;
}

/* Checks the parse-serialize fixed point on text[0..n). */
static void check_round_trip(const char *text, size_t n)
{
	struct prom_doc d1 = { 0 }, d2 = { 0 };
	struct buf o1 = { 0 }, o2 = { 0 };
	struct prom_err err;

	if (prom_parse(&d1, text, n, &err) < 0)
		goto out;
	if (prom_serialize(&d1, &o1) < 0)
		abort();
	if (prom_parse(&d2, o1.p, o1.len, &err) < 0)
		abort(); /* the serializer wrote what the parser refuses */
	if (prom_serialize(&d2, &o2) < 0)
		abort();
	if (o1.len != o2.len || memcmp(o1.p, o2.p, o1.len))
		abort(); /* not a fixed point */
	if (bad_histograms(&d1) != bad_histograms(&d2))
		abort();
out:
	prom_doc_free(&d1);
	prom_doc_free(&d2);
	buf_free(&o1);
	buf_free(&o2);
}

/* Checks that v formats to a text that reads back to v. */
static void check_value(double v)
{
	char out[PROM_VALUE_BUFSZ];
	double back;

	prom_format_value(v, out);
	if (prom_parse_value(out, &back) < 0)
		abort();
	if (v != v ? back == back : memcmp(&v, &back, sizeof v) != 0)
		abort();
}

/* Checks the label escaper against the parser on s[0..n). */
static void check_label(const char *s, size_t n)
{
	struct prom_doc d = { 0 };
	struct buf line = { 0 }, want = { 0 };
	struct prom_err err;
	int rc;

	if (n > PROM_MAX_LABEL_VALUE || memchr(s, '\0', n))
		return;
	if (buf_puts(&line, "m{l=\"") < 0 || prom_escape_label(&line, s, n) < 0 ||
	    buf_puts(&line, "\"} 1\n") < 0 || buf_puts(&want, "l=\"") < 0 ||
	    prom_escape_label(&want, s, n) < 0 || buf_putc(&want, '"') < 0)
		abort();
	rc = prom_parse(&d, line.p, line.len, &err);
	if ((rc == 0) != prom_utf8_ok(s, n))
		abort();
	if (rc == 0 && (d.n != 1 || d.f[0].n != 1 || strcmp(d.f[0].s[0].key, want.p)))
		abort();
	prom_doc_free(&d);
	buf_free(&line);
	buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double v;

	check_round_trip((const char *)data, size);
	if (size >= sizeof v) {
		memcpy(&v, data, sizeof v);
		check_value(v);
	}
	check_label((const char *)data, size);
	return 0;
}
