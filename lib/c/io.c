/* io.c: whole writes that survive EINTR and short writes, and appends of
 * whole lines that survive writers killed mid-write. */
#include <errno.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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

/* Takes the exclusive flock of fd, waiting at most APPEND_LOCK_WAIT_MS.
 * Returns 1 when held, 0 when not (busy that long, or no locks here). */
static int append_lock(int fd)
{
	struct timespec nap = { 0, 1000000 };
	int waited;

	for (waited = 0; waited < APPEND_LOCK_WAIT_MS; waited++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 1;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return 0;
		nanosleep(&nap, NULL);
	}
	return 0;
}

/* With the lock held: when the file's last line has no newline (a writer
 * was killed in the middle of its write), cuts that line off if it is a
 * JSON object's start ('{'), else ends it with a newline (fd must be open
 * for reading too; a write-only fd is left as it is). Sets *end to the
 * file's size after. Returns 0, or -1 with errno set. */
static int append_repair(int fd, off_t *end)
{
	struct stat st;
	char block[4096];
	off_t at, from;
	ssize_t r;
	size_t i;
	char first;

	if (fstat(fd, &st) < 0)
		return -1;
	*end = st.st_size;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return 0;
	if (pread(fd, block, 1, st.st_size - 1) != 1)
		return errno == EBADF ? 0 : -1; /* opened write-only: no repair */
	if (block[0] == '\n')
		return 0;
	/* Look back for the newline that ends the last whole line. */
	for (at = st.st_size; at > 0 && st.st_size - at < APPEND_REPAIR_MAX; at = from) {
		from = at > (off_t)sizeof block ? at - (off_t)sizeof block : 0;
		r = pread(fd, block, (size_t)(at - from), from);
		if (r != at - from)
			return -1;
		for (i = (size_t)r; i > 0; i--)
			if (block[i - 1] == '\n')
				break;
		if (i == 0)
			continue;
		if (i < (size_t)r)
			first = block[i];
		else if (pread(fd, &first, 1, from + (off_t)i) != 1)
			return -1;
		if (first != '{')
			break;
		if (ftruncate(fd, from + (off_t)i) < 0)
			return -1;
		*end = from + (off_t)i;
		return 0;
	}
	if (at == 0 && pread(fd, &first, 1, 0) == 1 && first == '{') {
		if (ftruncate(fd, 0) < 0)
			return -1;
		*end = 0;
		return 0;
	}
	if (write_all(fd, "\n", 1) < 0)
		return -1;
	*end = st.st_size + 1;
	return 0;
}

int append_lines(int fd, const void *p, size_t n)
{
	off_t end = -1;
	int locked, saved, rc = 0;

	locked = append_lock(fd);
	if (locked && append_repair(fd, &end) < 0)
		rc = -1;
	if (rc == 0 && write_all(fd, p, n) < 0) {
		rc = -1;
		saved = errno;
		/* Take back the part of a failed write that did land. */
		if (end >= 0)
			(void)!ftruncate(fd, end);
		errno = saved;
	}
	if (locked) {
		saved = errno;
		flock(fd, LOCK_UN);
		errno = saved;
	}
	return rc;
}
