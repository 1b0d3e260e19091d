/* check.h: the counting CHECK of the C unit tests. Include it once, after
 * the code under test; end main() with `return check_done("test_x");`. */
#ifndef TALLY_CHECK_H
#define TALLY_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int passed, failed;

/* Counts one check; prints "FAIL FILE:LINE: message" for a failed one. */
static void check(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* CHECK(cond, printf-format, ...): one check, with its message on failure. */
#define CHECK(cond, ...) check((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)

/* Prints "NAME: N passed, M failed" and returns main's exit status. */
static int check_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, passed, failed);
	return failed != 0;
}

#endif
