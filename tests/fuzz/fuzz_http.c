/* fuzz_http.c: the HTTP request parser and the Accept, Accept-Encoding and
 * Authorization helpers. Property: no crash or sanitizer report; a request
 * the parser takes lies within the input and its pointers too; parsing is
 * deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

/* Aborts unless p[0..n) lies inside base[0..len) (or p is NULL). */
static void inside(const char *p, size_t n, const char *base, size_t len)
{
	if (p && (p < base || p + n > base + len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct http_request a, b;
	int ra, rb;

	ra = http_parse_request(p, size, &a);
	rb = http_parse_request(p, size, &b);
	if (ra != rb)
		abort();
	if (ra > 0) {
		if ((size_t)ra > size || (size_t)ra > HTTP_MAX_HEAD)
			abort();
		inside(a.method_str, a.method_len, p, (size_t)ra);
		inside(a.target, a.target_len, p, (size_t)ra);
		if (a.path != a.target && strcmp(a.path, "/") != 0)
			inside(a.path, a.path_len, p, (size_t)ra);
		inside(a.accept, a.accept_len, p, (size_t)ra);
		inside(a.accept_encoding, a.accept_encoding_len, p, (size_t)ra);
		inside(a.authorization, a.authorization_len, p, (size_t)ra);
		if (a.keep_alive && a.has_body)
			abort();
		(void)http_wants_openmetrics(a.accept, a.accept_len);
		(void)http_wants_gzip(a.accept_encoding, a.accept_encoding_len);
		(void)http_basic_ok(a.authorization, a.authorization_len, "dXNlcjpwYXNz", 12);
	} else if (ra != 0 && ra != -400 && ra != -414 && ra != -431 && ra != -505) {
		abort();
	}
	/* the raw bytes as header values too */
	if (http_wants_openmetrics(p, size) > 1 || http_wants_gzip(p, size) > 1)
		abort();
	return 0;
}
