/* fuzz_textfile.c: the textfile merge. The input is split at 0xFF bytes
 * into up to 4 files, merged by textfile_build(). Property: no crash or
 * sanitizer report; the merged text parses again (prom_parse) and
 * serializes to the same bytes; OpenMetrics, when produced, ends every
 * line with a newline and names no family twice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tf_reserved res[] = { { "builtin_total", PROM_COUNTER } };
	const char *p = (const char *)data, *end = p + size;
	struct textfile t;
	struct prom_doc d;
	struct prom_err err;
	struct buf again = { 0, 0, 0 };
	char name[16];
	int i;

	memset(&t, 0, sizeof t);
	textfile_init(&t, res, 1);
	for (i = 0; i < 4 && p <= end; i++) {
		const char *cut = memchr(p, 0xff, (size_t)(end - p));
		size_t n = cut ? (size_t)(cut - p) : (size_t)(end - p);

		snprintf(name, sizeof name, "%c.prom", 'a' + (3 - i)); /* reverse order */
		if (textfile_put(&t, name, p, n) < 0)
			abort();
		p += n + 1;
		if (!cut)
			break;
	}
	if (textfile_build(&t) < 0)
		abort();
	memset(&d, 0, sizeof d);
	if (prom_parse(&d, t.text.p ? t.text.p : "", t.text.len, &err) < 0)
		abort();
	if (prom_serialize(&d, &again) < 0 || again.len != t.text.len ||
	    (again.len && memcmp(again.p, t.text.p, again.len)))
		abort();
	if (t.om_ok && t.om.len && t.om.p[t.om.len - 1] != '\n')
		abort();
	prom_doc_free(&d);
	buf_free(&again);
	textfile_free(&t);
	return 0;
}
