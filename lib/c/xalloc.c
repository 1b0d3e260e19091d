/* xalloc.c: buffer appends that die on ENOMEM, for main() code paths. */
#include "tally.h"

void xbuf_put(struct buf *b, const void *s, size_t n)
{
	if (buf_put(b, s, n) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}

void xbuf_puts(struct buf *b, const char *s)
{
	if (buf_puts(b, s) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}

void xbuf_putc(struct buf *b, char c)
{
	if (buf_putc(b, c) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}
