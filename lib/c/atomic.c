/* atomic.c: a metrics writer's file mechanics: a sibling lock file, a
 * capped whole-file read, and atomic replacement through a sibling
 * temporary file and rename(2) or renameat2(RENAME_EXCHANGE) (skalibs
 * openwritenclose). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tally.h"

#define TALLY_RENAME_EXCHANGE (1 << 1) /* renameat2(2): swap the two names */

#ifdef SYS_renameat2
/* Atomically swaps the names a and b (renameat2 RENAME_EXCHANGE). Returns
 * 0, or -1 with errno set (EINVAL, ENOSYS: not supported here). */
static int exchange(const char *a, const char *b)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, TALLY_RENAME_EXCHANGE);
}
#else
/* No renameat2 on this system: fails with ENOSYS. */
static int exchange(const char *a, const char *b)
{
	(void)a;
	(void)b;
	errno = ENOSYS;
	return -1;
}
#endif

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
	struct stat st;
	ssize_t r;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	buf_reset(out);
	/* Room for the whole file at once (and one more byte, to see EOF). */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (size_t)st.st_size <= max && buf_reserve(out, (size_t)st.st_size + 1) < 0)
		goto out_close;
	for (;;) {
		if (out->cap - out->len < 2 && buf_reserve(out, 65536) < 0)
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

/* Writes data[0..n) to the new file fd, mode 0644 whatever the umask,
 * fsyncs it when sync, and closes it. Returns 0, or -1 with errno set (fd
 * closed either way). */
static int fill_close(int fd, const char *data, size_t n, int sync)
{
	int saved;

	if (fchmod(fd, 0644) < 0 || write_all(fd, data, n) < 0 || (sync && fsync(fd) < 0)) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* fsyncs the directory of path. Returns 0, or -1 with errno set (EINVAL,
 * a file system that cannot sync directories, counts as success). */
static int sync_dir(const char *path)
{
	struct buf dir = { 0 };
	int dfd, rc = -1, saved;

	if (dir_of(&dir, path) < 0)
		goto out_free;
	dfd = open(dir.p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		goto out_free;
	rc = fsync(dfd);
	if (rc < 0 && errno == EINVAL)
		rc = 0;
	saved = errno;
	close(dfd);
	errno = saved;
out_free:
	saved = errno;
	buf_free(&dir);
	errno = saved;
	return rc;
}

/* The end both replacements share: fills fd (the file named tmp, -1 when
 * it could not be made), puts it in place of path with place(), and frees
 * tmp. Returns 0, or -1 with errno set, tmp removed and path unchanged. */
static int finish(struct buf *tmp, int fd, const char *path, const char *data,
	size_t n, int sync, int (*place)(const char *, const char *))
{
	int saved;

	if (fd < 0)
		goto out_free;
	if (fill_close(fd, data, n, sync) < 0 || place(tmp->p, path) < 0)
		goto out_unlink;
	buf_free(tmp);
	return sync ? sync_dir(path) : 0;
out_unlink:
	saved = errno;
	unlink(tmp->p);
	errno = saved;
out_free:
	saved = errno;
	buf_free(tmp);
	errno = saved;
	return -1;
}

int atomic_replace(const char *path, const char *data, size_t n, int sync)
{
	struct buf tmp = { 0 };

	if (sibling(&tmp, path, ".tmp.XXXXXX") < 0)
		return finish(&tmp, -1, path, data, n, sync, rename);
	return finish(&tmp, mkstemp(tmp.p), path, data, n, sync, rename);
}

/* Puts the complete file tmp in place of path: swaps the two names when
 * path exists, then removes tmp (now the old file), else renames. A
 * rename over an existing file makes ext4 (auto_da_alloc) start writing
 * the new file's data out at once; a swap does not, and readers see
 * either the old or the new file all the same. Returns 0, or -1 with
 * errno set and path unchanged. */
static int put_in_place(const char *tmp, const char *path)
{
	if (exchange(tmp, path) == 0) {
		if (unlink(tmp) < 0 && (errno == EISDIR || errno == EPERM)) {
			/* path was a directory (made behind our back): swap back. */
			exchange(tmp, path);
			errno = EISDIR;
			return -1;
		}
		return 0;
	}
	/* path is new, or swaps are not supported here (EINVAL, ENOSYS): rename
	 * reports any real error itself. */
	return rename(tmp, path);
}

int atomic_replace_locked(const char *path, const char *data, size_t n, int sync)
{
	struct buf tmp = { 0 };
	int fd = -1;

	if (sibling(&tmp, path, ".tmp") < 0)
		return finish(&tmp, -1, path, data, n, sync, put_in_place);
	for (;;) {
		fd = open(tmp.p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
		if (fd >= 0 || errno != EEXIST)
			break;
		/* Left by a writer killed while it held the lock. */
		if (unlink(tmp.p) < 0 && errno != ENOENT)
			break;
	}
	return finish(&tmp, fd, path, data, n, sync, put_in_place);
}
