/* fuzz_traceparent: lib/c/trace.c on arbitrary bytes. Properties (abort()
 * on violation):
 *  - trace_parse_traceparent() accepts exactly what an independent
 *    reading of the W3C rules accepts (reference() below), and what it
 *    accepts formats to a version-00 traceparent that parses back to the
 *    same ids and flags (the same bytes for a version-00 input);
 *  - trace_kv_parse() returns pairs whose keys are non-empty printable
 *    ASCII without '=' or spaces;
 *  - trace_line_items() either refuses a line or appends items that,
 *    wrapped as {"resourceSpans":[...]}, form one valid JSON value that
 *    trace_line_items() accepts again with the same item count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns 1 when s[0..n) is n lowercase hex digits. */
static int lchex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]) || !s[i])
			return 0;
	return 1;
}

/* Returns 1 when s[0..n) is all '0'. */
static int zeros(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

/* The W3C traceparent rules, written out separately. */
static int reference(const char *s, size_t n)
{
	if (n < 55 || !lchex(s, 2) || !memcmp(s, "ff", 2))
		return 0;
	if (!memcmp(s, "00", 2) && n != 55)
		return 0;
	if (memcmp(s, "00", 2) && n > 55 && s[55] != '-')
		return 0;
	return s[2] == '-' && lchex(s + 3, 32) && !zeros(s + 3, 32) && s[35] == '-' &&
		lchex(s + 36, 16) && !zeros(s + 36, 16) && s[52] == '-' && lchex(s + 53, 2);
}

static void check_traceparent(const char *s, size_t n)
{
	struct trace_ctx c, d;
	char out[TRACEPARENT_LEN + 1];
	int ok = trace_parse_traceparent(s, n, &c) == 0;

	if (ok != reference(s, n))
		abort();
	if (!ok)
		return;
	trace_format_traceparent(&c, out);
	if (trace_parse_traceparent(out, TRACEPARENT_LEN, &d) < 0 ||
	    strcmp(c.trace_id, d.trace_id) || strcmp(c.span_id, d.span_id) || c.flags != d.flags)
		abort();
	if (!memcmp(s, "00", 2) && memcmp(out, s, TRACEPARENT_LEN))
		abort();
}

static void check_kv(const char *s)
{
	struct trace_kv kv[TRACE_MAX_KV];
	struct buf store = { 0, 0, 0 };
	char why[128];
	const char *k;
	int n, i;

	n = trace_kv_parse(s, kv, TRACE_MAX_KV, &store, why, sizeof why);
	for (i = 0; i < n; i++) {
		if (!*kv[i].key)
			abort();
		for (k = kv[i].key; *k; k++)
			if ((unsigned char)*k <= ' ' || (unsigned char)*k >= 0x7f || *k == '=')
				abort();
	}
	buf_free(&store);
}

static void check_items(const char *s, size_t n)
{
	struct trace_attr over[1];
	struct buf out = { 0, 0, 0 }, again = { 0, 0, 0 };
	int k, k2;

	memset(over, 0, sizeof over);
	over[0].key = "service.name";
	over[0].s = "fuzz";
	over[0].sn = 4;
	xbuf_puts(&out, "{\"resourceSpans\":[");
	k = trace_line_items(s, n, over, n & 1, &out);
	if (k >= 0) {
		xbuf_puts(&out, "]}");
		if (trace_json_value_len(out.p, out.len) != out.len)
			abort();
		xbuf_putc(&again, '[');
		k2 = trace_line_items(out.p, out.len, NULL, 0, &again);
		if (k2 != k)
			abort();
	}
	buf_free(&out);
	buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_traceparent(s, size);
	check_kv(s);
	check_items(s, size);
	free(s);
	return 0;
}
