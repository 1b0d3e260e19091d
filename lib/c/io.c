/* io.c: whole writes that survive EINTR and short writes. */
#include <errno.h>
#include <unistd.h>

#include "tally.h"

int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n) {
		w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}
