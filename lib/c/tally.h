/* tally.h: the shared C of tally's helpers (tally-log, tally-metric,
 * tally-httpd). Every function the helpers share is declared here, each with
 * its contract. Library functions never exit and never print: they return.
 * Only main() and the x* wrappers die, through die()/die_sys(). */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdarg.h>

/* Exit statuses, the same for every tally command. */
#define EXIT_OK    0   /* success */
#define EXIT_FAIL  1   /* the checked thing failed, or the input was refused */
#define EXIT_USAGE 100 /* usage error */
#define EXIT_SYS   111 /* a system call failed */

/* ---- die.c: messages and death, s6 strerr style ---------------------- */

/* The command name printed before every message; main() sets it. */
extern const char *die_prog;

/* Prints "PROG: fatal: MSG\n" on stderr and exits with status CODE. */
void die(int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* When set, die_sys() and die(EXIT_SYS, ...) exit without their message
 * (a caller reported the same failure already: tally-metric
 * --quiet-write-errors). */
extern int die_sys_quiet;
/* Like die(), with ": strerror(errno)" appended (nothing printed when
 * die_sys_quiet is set). */
void die_sys(int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* Prints "PROG: usage: MSG\n" (MSG usually the synopsis) and exits 100. */
void die_usage(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* Prints "PROG: warning: MSG\n" on stderr; never exits. */
void warnx_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like warnx_msg(), with ": strerror(errno)" appended; never exits. */
void warn_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- buf.c: a growable byte buffer ------------------------------------ */

/* A byte buffer: p[0..len) is the content, always NUL-terminated when
 * cap > 0. A zeroed struct buf is a valid empty buffer. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

/* Makes room for n more bytes. Returns 0, or -1 with errno ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes. Returns 0, or -1 with errno ENOMEM. */
int buf_put(struct buf *b, const void *s, size_t n);
/* Appends a NUL-terminated string. Returns 0, or -1 with errno ENOMEM. */
int buf_puts(struct buf *b, const char *s);
/* Appends one byte. Returns 0, or -1 with errno ENOMEM. */
int buf_putc(struct buf *b, char c);
/* Appends printf-formatted text. Returns 0, or -1 with errno set. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory and zeroes the buffer. */
void buf_free(struct buf *b);

/* ---- xalloc.c: allocation that dies (for main() code paths only) ------ */

/* buf_put() that dies with status 111 on ENOMEM. */
void xbuf_put(struct buf *b, const void *s, size_t n);
/* buf_puts() that dies with status 111 on ENOMEM. */
void xbuf_puts(struct buf *b, const char *s);
/* buf_putc() that dies with status 111 on ENOMEM. */
void xbuf_putc(struct buf *b, char c);

/* ---- io.c: whole writes ---------------------------------------------- */

/* Longest wait for another appender's lock, in milliseconds; after it
 * append_lines() writes without the lock (and without the repair). */
#define APPEND_LOCK_WAIT_MS 2000
/* How far back append_lines() looks for the end of the last whole line. */
#define APPEND_REPAIR_MAX (1 << 20)

/* Writes all n bytes to fd, retrying on EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int write_all(int fd, const void *p, size_t n);
/* Appends the whole lines p[0..n) to fd (opened with O_APPEND) under an
 * exclusive flock(2) shared by every appender of the file, so the file
 * only ever gains whole lines: a last line without its newline (a writer
 * killed mid-write) is cut off first when it starts with '{' (an event
 * never completed), else ended with a newline; a failed write (a full
 * disk) is cut back off. Returns 0, or -1 with errno set. */
int append_lines(int fd, const void *p, size_t n);

/* ---- per-concern declarations, each file with its contracts ----------- */
#include "json.h"    /* json.c: JSON string escaping and event lines */
#include "prom.h"    /* prom.c, atomic.c: Prometheus text format, atomic files */
#include "http.h"    /* http.c: HTTP request parsing and responses */
#include "redact.h"  /* redact.c: secrets removed from log text */
#include "textfile.h" /* textfile.c: merging and validating *.prom files */
#include "probe.h"   /* probe.c: TCP and HTTP liveness probes */
#include "gzip.h"    /* gzip.c: gzip (RFC 1952) encoding for HTTP bodies */
#include "trace.h"   /* trace.c: W3C trace context, ids, OTLP/JSON spans */
#include "otlp_send.h" /* otlp_send.c: OTLP/HTTP JSON export */

#endif
