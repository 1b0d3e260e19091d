/* die.c: error messages in one format, "PROG: fatal: MSG[: strerror]". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

const char *die_prog = "tally";
int die_sys_quiet;

/* Prints "PROG: KIND: MSG[: strerror(err)]\n" on stderr in one write. */
static void vmsg(const char *kind, int err, const char *fmt, va_list ap)
{
	char line[2048];
	int n;
	size_t len;

	n = snprintf(line, sizeof line, "%s: %s: ", die_prog, kind);
	len = n < 0 ? 0 : (size_t)n;
	if (len < sizeof line) {
		n = vsnprintf(line + len, sizeof line - len, fmt, ap);
		len += n < 0 ? 0 : (size_t)n;
	}
	if (err && len < sizeof line) {
		n = snprintf(line + len, sizeof line - len, ": %s", strerror(err));
		len += n < 0 ? 0 : (size_t)n;
	}
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	(void)write_all(2, line, len);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;

	if (!(die_sys_quiet && code == EXIT_SYS)) {
		va_start(ap, fmt);
		vmsg("fatal", 0, fmt, ap);
		va_end(ap);
	}
	exit(code);
}

void die_sys(int code, const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	if (!die_sys_quiet) {
		va_start(ap, fmt);
		vmsg("fatal", err, fmt, ap);
		va_end(ap);
	}
	exit(code);
}

void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("usage", 0, fmt, ap);
	va_end(ap);
	exit(EXIT_USAGE);
}

void warnx_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning", 0, fmt, ap);
	va_end(ap);
}

void warn_sys(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	vmsg("warning", err, fmt, ap);
	va_end(ap);
}
