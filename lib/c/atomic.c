/* atomic.c: a metrics writer's file mechanics: a sibling lock file, a
 * capped whole-file read, and atomic replacement through a sibling
 * temporary file and rename(2) (skalibs openwritenclose). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tally.h"

/* Sets b to the sibling of path called "." BASENAME suffix, in the same
 * directory. Returns 0, or -1 with errno EISDIR (path names a directory,
 * e.g. ends in '/') or ENOMEM. */
static int sibling(struct buf *b, const char *path, const char *suffix)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;

	if (!*base) {
		errno = EISDIR;
		return -1;
	}
	buf_reset(b);
	if (buf_put(b, path, (size_t)(base - path)) < 0 || buf_putc(b, '.') < 0 ||
	    buf_puts(b, base) < 0 || buf_puts(b, suffix) < 0)
		return -1;
	return 0;
}

/* Sets b to the directory part of path ("." when there is none). Returns
 * 0, or -1 with errno ENOMEM. */
static int dir_of(struct buf *b, const char *path)
{
	const char *slash = strrchr(path, '/');

	buf_reset(b);
	if (!slash)
		return buf_puts(b, ".");
	if (slash == path)
		return buf_puts(b, "/");
	return buf_put(b, path, (size_t)(slash - path));
}

int lock_open(const char *path)
{
	struct buf name = { 0 };
	int fd = -1, saved;

	if (sibling(&name, path, ".lock") < 0)
		goto out_free;
	fd = open(name.p, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		goto out_free;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		errno = saved;
		fd = -1;
		break;
	}
out_free:
	saved = errno;
	buf_free(&name);
	errno = saved;
	return fd;
}

int file_read_all(const char *path, size_t max, struct buf *out)
{
	ssize_t r;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	buf_reset(out);
	for (;;) {
		if (buf_reserve(out, 65536) < 0)
			goto out_close;
		r = read(fd, out->p + out->len, out->cap - out->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out_close;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		if (out->len > max) {
			errno = EFBIG;
			goto out_close;
		}
	}
	out->p[out->len] = '\0';
	close(fd);
	return 0;
out_close:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int atomic_replace(const char *path, const char *data, size_t n, int sync)
{
	struct buf tmp = { 0 }, dir = { 0 };
	int fd = -1, dfd, rc, saved;

	if (sibling(&tmp, path, ".tmp.XXXXXX") < 0)
		goto out_free;
	fd = mkstemp(tmp.p);
	if (fd < 0)
		goto out_free;
	if (fchmod(fd, 0644) < 0 || write_all(fd, data, n) < 0 || (sync && fsync(fd) < 0))
		goto out_unlink;
	rc = close(fd);
	fd = -1;
	if (rc < 0 || rename(tmp.p, path) < 0)
		goto out_unlink;
	buf_free(&tmp);
	if (!sync)
		return 0;
	if (dir_of(&dir, path) < 0)
		goto out_free;
	dfd = open(dir.p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		goto out_free;
	rc = fsync(dfd);
	saved = errno;
	close(dfd);
	errno = saved;
	if (rc < 0 && errno != EINVAL)
		goto out_free;
	buf_free(&dir);
	return 0;
out_unlink:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp.p);
	errno = saved;
out_free:
	saved = errno;
	buf_free(&tmp);
	buf_free(&dir);
	errno = saved;
	return -1;
}
