/* tally-httpd: the tiny HTTP responder. Serves the *.prom files of a
 * metrics directory at /metrics and "ok" at /healthz, from one poll() loop
 * over non-blocking sockets (STYLE.md, "The daemon"). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

#define SYNOPSIS "tally-httpd [--listen [ADDR]:PORT] [--dir DIR] [--port-file FILE]"

#define HTTPD_DEFAULT_DIR "/var/lib/container-build/metrics"
#define HTTPD_DEFAULT_PORT "9090"

#define HTTPD_MAX_CONNS 256          /* open connections; more get 503 and close */
#define HTTPD_IDLE_TIMEOUT_MS 10000  /* a request must arrive, a write progress, within this */
#define HTTPD_LINGER_MS 2000         /* draining unread input before close, at most */
#define HTTPD_LINGER_MAX 65536       /* bytes drained before close, at most */
#define HTTPD_MAX_FILES 4096         /* *.prom files served; more are left out */
#define HTTPD_MAX_BODY (32u << 20)   /* /metrics body bytes; more gives 503 */
#define HTTPD_POLL_MAX_MS 1000       /* longest poll() sleep: bounds the signal race */
#define HTTPD_ACCEPT_PAUSE_MS 100    /* no accept() for this long after EMFILE */
#define HTTPD_BUF_KEEP 65536         /* a response buffer larger than this is freed */
#define HTTPD_READ_CHUNK 65536       /* bytes per read() of a metrics file */

static const char ct_metrics[] = "text/plain; version=0.0.4; charset=utf-8";
static const char ct_text[] = "text/plain; charset=utf-8";
static const char allow_get_head[] = "Allow: GET, HEAD\r\n";
static const char full_response[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 17\r\n"
	"Connection: close\r\n"
	"\r\n"
	"too many clients\n";

/* Where a connection is in its life; CONN_FREE marks an unused slot. */
enum conn_state {
	CONN_FREE,    /* slot unused */
	CONN_READING, /* waiting for a complete request head */
	CONN_WRITING, /* sending out[out_off..out.len) */
	CONN_CLOSING  /* response sent and write side shut: draining, then close */
};

struct conn {
	enum conn_state state;
	int fd;
	int close_after;    /* close once the response in out is written */
	long long deadline; /* CLOCK_MONOTONIC ms after which the connection is closed */
	size_t in_len;
	size_t out_off;
	size_t drained;
	struct buf out;
	char in[HTTP_MAX_HEAD];
};

/* What --listen asked for. */
struct listen_spec {
	int any;                 /* ":PORT": every interface, IPv6 dual-stack or IPv4 */
	int family;              /* AF_INET or AF_INET6 when !any */
	struct in_addr a4;
	struct in6_addr a6;
	unsigned port;
};

static struct conn conns[HTTPD_MAX_CONNS];
static volatile sig_atomic_t stop_flag;
static const char *metrics_dir;
static struct buf body; /* scratch: the /metrics body being assembled */
static int dir_failing; /* the last /metrics request could not read the dir */

/* Sets stop_flag; the only thing a signal does. */
static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Returns CLOCK_MONOTONIC in milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a decimal port 0..65535 from s. Returns 0, or -1 if invalid. */
static int parse_port(const char *s, unsigned *port)
{
	unsigned long v = 0;
	size_t i;

	if (!*s || strlen(s) > 5)
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* Parses "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (numeric addresses only).
 * Returns 0, or -1 if spec has none of these forms. */
static int parse_listen(const char *spec, struct listen_spec *ls)
{
	char addr[INET6_ADDRSTRLEN];
	const char *colon, *close;
	size_t n;

	memset(ls, 0, sizeof *ls);
	if (spec[0] == '[') {
		close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -1;
		n = (size_t)(close - spec - 1);
		if (n == 0 || n >= sizeof addr)
			return -1;
		memcpy(addr, spec + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, &ls->a6) != 1)
			return -1;
		ls->family = AF_INET6;
		return parse_port(close + 2, &ls->port);
	}
	colon = strchr(spec, ':');
	if (!colon || strchr(colon + 1, ':'))
		return -1;
	n = (size_t)(colon - spec);
	if (n == 0) {
		ls->any = 1;
		return parse_port(colon + 1, &ls->port);
	}
	if (n >= sizeof addr)
		return -1;
	memcpy(addr, spec, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &ls->a4) != 1)
		return -1;
	ls->family = AF_INET;
	return parse_port(colon + 1, &ls->port);
}

/* Sets O_NONBLOCK and FD_CLOEXEC on fd. Returns 0, or -1 with errno set. */
static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Opens a non-blocking listening socket bound to sa. v6only is -1 (leave the
 * default) or the IPV6_V6ONLY value. Returns the fd, or -1 with errno set. */
static int open_listener(const struct sockaddr *sa, socklen_t len, int v6only)
{
	int fd, one = 1, err;

	fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto out_close;
	if (v6only >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	                              sizeof v6only) < 0)
		goto out_close;
	if (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0)
		goto out_close;
	if (set_nonblock(fd) < 0)
		goto out_close;
	return fd;

out_close:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Returns 1 if errno after a failed IPv6 socket/bind means "no IPv6 here". */
static int ipv6_unavailable(int err)
{
	return err == EAFNOSUPPORT || err == EPROTONOSUPPORT ||
	       err == EADDRNOTAVAIL || err == EINVAL || err == ENOPROTOOPT;
}

/* Binds what ls asks for; writes "ADDR:PORT" as bound into name. Returns
 * the listening fd, or -1 with errno set (name then says what failed). */
static int bind_listen(const struct listen_spec *ls, char *name, size_t size)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_storage got;
	socklen_t glen = sizeof got;
	char a[INET6_ADDRSTRLEN];
	int fd, is6;

	memset(&s4, 0, sizeof s4);
	memset(&s6, 0, sizeof s6);
	s4.sin_family = AF_INET;
	s4.sin_port = htons((unsigned short)ls->port);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons((unsigned short)ls->port);
	if (ls->any) {
		s4.sin_addr.s_addr = htonl(INADDR_ANY);
		s6.sin6_addr = in6addr_any;
		snprintf(name, size, "[::]:%u", ls->port);
		fd = open_listener((struct sockaddr *)&s6, sizeof s6, 0);
		is6 = 1;
		if (fd < 0 && ipv6_unavailable(errno)) {
			snprintf(name, size, "0.0.0.0:%u", ls->port);
			fd = open_listener((struct sockaddr *)&s4, sizeof s4, -1);
			is6 = 0;
		}
	} else if (ls->family == AF_INET6) {
		s6.sin6_addr = ls->a6;
		inet_ntop(AF_INET6, &ls->a6, a, sizeof a);
		snprintf(name, size, "[%s]:%u", a, ls->port);
		fd = open_listener((struct sockaddr *)&s6, sizeof s6, -1);
		is6 = 1;
	} else {
		s4.sin_addr = ls->a4;
		inet_ntop(AF_INET, &ls->a4, a, sizeof a);
		snprintf(name, size, "%s:%u", a, ls->port);
		fd = open_listener((struct sockaddr *)&s4, sizeof s4, -1);
		is6 = 0;
	}
	if (fd < 0)
		return -1;
	if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0) {
		char *c = strrchr(name, ':');
		unsigned port = is6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
		                    : ntohs(((struct sockaddr_in *)&got)->sin_port);
		if (c)
			snprintf(c + 1, size - (size_t)(c + 1 - name), "%u", port);
	}
	return fd;
}

/* Writes "PORT\n" to file atomically (atomic_replace). Returns 0, or -1
 * with errno set. */
static int write_port_file(const char *file, const char *port)
{
	char line[16];
	int n;

	n = snprintf(line, sizeof line, "%s\n", port);
	if (n < 0 || (size_t)n >= sizeof line) {
		errno = EINVAL;
		return -1;
	}
	return atomic_replace(file, line, (size_t)n, 0);
}

/* Returns 1 if name is served: "*.prom", not hidden. */
static int is_prom_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".prom") == 0;
}

/* qsort comparator: the strings the pointers point to, by strcmp. */
static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the regular file dir/name to out, plus a newline if its content
 * does not end with one. A file that vanished or cannot be read is skipped
 * (the latter with a warning). Returns 0, or -1 with errno E2BIG when out
 * would pass HTTPD_MAX_BODY, or ENOMEM. */
static int append_file(int dfd, const char *name, struct buf *out)
{
	size_t start = out->len;
	struct stat st;
	ssize_t r;
	int fd;

	if (fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno != ENOENT)
			warn_sys("unable to open %s/%s", metrics_dir, name);
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out_close;
	for (;;) {
		if (buf_reserve(out, HTTPD_READ_CHUNK) < 0)
			goto out_fail;
		r = read(fd, out->p + out->len, HTTPD_READ_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			warn_sys("unable to read %s/%s", metrics_dir, name);
			out->len = start;
			break;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		if (out->len > HTTPD_MAX_BODY) {
			errno = E2BIG;
			goto out_fail;
		}
	}
	if (out->len > start && out->p[out->len - 1] != '\n' &&
	    buf_putc(out, '\n') < 0)
		goto out_fail;
	out->p[out->len] = '\0';
out_close:
	close(fd);
	return 0;

out_fail:
	out->len = start;
	close(fd);
	return -1;
}

/* The metrics source: appends every regular "*.prom" file of dir (not
 * hidden, sorted by strcmp) to out, each ending in a newline, read afresh.
 * Returns 0, or -1 with errno set (opendir failed, E2BIG, ENOMEM). */
static int read_metrics_dir(const char *dir, struct buf *out)
{
	char **names;
	size_t n = 0, i;
	struct dirent *e;
	DIR *d;
	int rc = -1, err, skipped = 0;

	names = malloc(HTTPD_MAX_FILES * sizeof *names);
	if (!names)
		return -1;
	d = opendir(dir);
	if (!d)
		goto out_free_names;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno)
				goto out_closedir;
			break;
		}
		if (!is_prom_name(e->d_name))
			continue;
		if (n == HTTPD_MAX_FILES) {
			skipped++;
			continue;
		}
		names[n] = strdup(e->d_name);
		if (!names[n])
			goto out_closedir;
		n++;
	}
	if (skipped)
		warnx_msg("%s: %d files past the first %d left out", dir,
		          skipped, HTTPD_MAX_FILES);
	qsort(names, n, sizeof *names, cmp_names);
	for (i = 0; i < n; i++)
		if (append_file(dirfd(d), names[i], out) < 0)
			goto out_closedir;
	rc = 0;

out_closedir:
	err = errno;
	for (i = 0; i < n; i++)
		free(names[i]);
	closedir(d);
	errno = err;
out_free_names:
	err = errno;
	free(names);
	errno = err;
	return rc;
}

/* Appends a whole response to c->out (no body when head_only). Returns 0,
 * or -1 with errno ENOMEM. */
static int respond(struct conn *c, int status, const char *ctype,
	const char *data, size_t len, int head_only, const char *extra)
{
	if (http_put_response(&c->out, status, ctype, len, !c->close_after,
	                      extra) < 0)
		return -1;
	if (!head_only && buf_put(&c->out, data, len) < 0)
		return -1;
	return 0;
}

/* Returns 1 if the request path equals the literal path lit. */
static int path_is(const struct http_request *req, const char *lit)
{
	size_t n = strlen(lit);

	return req->path_len == n && memcmp(req->path, lit, n) == 0;
}

/* Appends the /metrics response to c->out. Returns 0, or -1 with errno. */
static int respond_metrics(struct conn *c, int head_only)
{
	static const char unreadable[] = "metrics directory unreadable\n";
	static const char too_large[] = "metrics too large\n";

	buf_reset(&body);
	if (read_metrics_dir(metrics_dir, &body) < 0) {
		if (errno == ENOMEM)
			return -1;
		if (errno == E2BIG) {
			warnx_msg("%s: metrics larger than %u bytes", metrics_dir,
			          HTTPD_MAX_BODY);
			return respond(c, 503, ct_text, too_large,
			               sizeof too_large - 1, head_only, NULL);
		}
		if (!dir_failing)
			warn_sys("unable to read directory %s", metrics_dir);
		dir_failing = 1;
		return respond(c, 503, ct_text, unreadable, sizeof unreadable - 1,
		               head_only, NULL);
	}
	dir_failing = 0;
	return respond(c, 200, ct_metrics, body.p, body.len, head_only, NULL);
	/* body keeps its memory for the next scrape */
}

/* Appends the response to req to c->out. Returns 0, or -1 with errno. */
static int handle_request(struct conn *c, const struct http_request *req)
{
	static const char ok[] = "ok\n";
	static const char not_found[] = "not found\n";
	static const char not_allowed[] = "method not allowed\n";
	int head_only = req->method == HTTP_HEAD;
	int known = path_is(req, "/metrics") || path_is(req, "/healthz");

	c->close_after = !req->keep_alive || stop_flag;
	if (!known)
		return respond(c, 404, ct_text, not_found, sizeof not_found - 1,
		               head_only, NULL);
	if (req->method == HTTP_OTHER)
		return respond(c, 405, ct_text, not_allowed,
		               sizeof not_allowed - 1, 0, allow_get_head);
	if (path_is(req, "/healthz"))
		return respond(c, 200, ct_text, ok, sizeof ok - 1, head_only, NULL);
	return respond_metrics(c, head_only);
}

/* Appends the error response for a request the parser refused (status is
 * 400, 414, 431 or 505); the connection closes after it. */
static int respond_refused(struct conn *c, int status)
{
	char text[64];
	int n;

	c->close_after = 1;
	n = snprintf(text, sizeof text, "%s\n", http_reason(status));
	return respond(c, status, ct_text, text, (size_t)n, 0, NULL);
}

/* Closes c and frees its slot. */
static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = CONN_FREE;
	c->in_len = 0;
	buf_free(&c->out);
}

/* Parses what c has read. Returns 1 if a response is now in c->out (state
 * CONN_WRITING), 0 if more input is needed, -1 if c was closed. */
static int conn_parse(struct conn *c)
{
	struct http_request req;
	int rc;

	rc = http_parse_request(c->in, c->in_len, &req);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		c->in_len = 0;
		rc = respond_refused(c, -rc);
	} else {
		int used = rc;

		rc = handle_request(c, &req);
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (size_t)used;
	}
	if (rc < 0) {
		warn_sys("unable to build a response");
		conn_close(c);
		return -1;
	}
	c->state = CONN_WRITING;
	c->out_off = 0;
	c->deadline = now_ms() + HTTPD_IDLE_TIMEOUT_MS;
	return 1;
}

/* Writes what it can of c->out. Returns 1 when all is written, 0 when the
 * socket is full, -1 if c was closed. */
static int conn_flush(struct conn *c)
{
	ssize_t w;

	while (c->out_off < c->out.len) {
		w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
		c->deadline = now_ms() + HTTPD_IDLE_TIMEOUT_MS;
	}
	if (c->out.cap > HTTPD_BUF_KEEP)
		buf_free(&c->out);
	else
		buf_reset(&c->out);
	c->out_off = 0;
	return 1;
}

/* Moves c on as far as it can go without blocking: parse, respond, write,
 * then the next pipelined request or closing. */
static void conn_run(struct conn *c)
{
	for (;;) {
		if (c->state == CONN_READING && conn_parse(c) <= 0)
			return;
		if (c->state != CONN_WRITING || conn_flush(c) <= 0)
			return;
		if (c->close_after || stop_flag) {
			shutdown(c->fd, SHUT_WR);
			c->state = CONN_CLOSING;
			c->in_len = 0;
			c->drained = 0;
			c->deadline = now_ms() + HTTPD_LINGER_MS;
			return;
		}
		c->state = CONN_READING;
		c->deadline = now_ms() + HTTPD_IDLE_TIMEOUT_MS;
		if (c->in_len == 0)
			return;
	}
}

/* Reads into c->in and handles what arrived; closes c on EOF or error. */
static void conn_read(struct conn *c)
{
	ssize_t r;

	r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		conn_close(c); /* EOF (a partial request is dropped) or error */
		return;
	}
	c->in_len += (size_t)r;
	conn_run(c);
}

/* Discards input on a closing connection; closes it at EOF, on error, or
 * after HTTPD_LINGER_MAX bytes. */
static void conn_drain(struct conn *c)
{
	ssize_t r;

	for (;;) {
		r = read(c->fd, c->in, sizeof c->in);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0)
			break;
		c->drained += (size_t)r;
		if (c->drained > HTTPD_LINGER_MAX)
			break;
	}
	conn_close(c);
}

/* Accepts every pending connection. Returns 0, or -1 when out of file
 * descriptors (the caller pauses accepting). */
static int accept_all(int lfd)
{
	struct conn *c;
	size_t i;
	int fd;

	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				warn_sys("unable to accept a connection");
				return -1;
			}
			return 0; /* EAGAIN, or an error of that one connection */
		}
		if (set_nonblock(fd) < 0) {
			close(fd);
			continue;
		}
		c = NULL;
		for (i = 0; i < HTTPD_MAX_CONNS; i++)
			if (conns[i].state == CONN_FREE) {
				c = &conns[i];
				break;
			}
		if (!c) {
			/* best effort: one non-blocking write, then close */
			(void)!write(fd, full_response, sizeof full_response - 1);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = CONN_READING;
		c->close_after = 0;
		c->in_len = 0;
		c->out_off = 0;
		c->deadline = now_ms() + HTTPD_IDLE_TIMEOUT_MS;
	}
}

/* Serves on lfd until SIGTERM or SIGINT. */
static void serve(int lfd)
{
	static struct pollfd pfd[1 + HTTPD_MAX_CONNS];
	static struct conn *who[1 + HTTPD_MAX_CONNS];
	long long now, wake, accept_after = 0;
	size_t i, np;
	int timeout, n;

	while (!stop_flag) {
		now = now_ms();
		wake = now + HTTPD_POLL_MAX_MS;
		np = 0;
		if (now >= accept_after) {
			pfd[np].fd = lfd;
			pfd[np].events = POLLIN;
			who[np++] = NULL;
		} else if (accept_after < wake) {
			wake = accept_after;
		}
		for (i = 0; i < HTTPD_MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (c->state == CONN_FREE)
				continue;
			pfd[np].fd = c->fd;
			pfd[np].events = c->state == CONN_WRITING ? POLLOUT : POLLIN;
			who[np++] = c;
			if (c->deadline < wake)
				wake = c->deadline;
		}
		timeout = wake > now ? (int)(wake - now) : 0;
		n = poll(pfd, (nfds_t)np, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_sys(EXIT_SYS, "unable to poll");
		}
		for (i = 0; i < np && n > 0; i++) {
			struct conn *c = who[i];

			if (!pfd[i].revents)
				continue;
			n--;
			if (!c) {
				if (accept_all(lfd) < 0)
					accept_after = now_ms() + HTTPD_ACCEPT_PAUSE_MS;
				continue;
			}
			if (c->state == CONN_READING)
				conn_read(c);
			else if (c->state == CONN_WRITING)
				conn_run(c);
			else if (c->state == CONN_CLOSING)
				conn_drain(c);
		}
		now = now_ms();
		for (i = 0; i < HTTPD_MAX_CONNS; i++)
			if (conns[i].state != CONN_FREE && conns[i].deadline <= now)
				conn_close(&conns[i]);
	}
}

/* Prints the help text on stdout. */
static void usage(void)
{
	static const char text[] =
		"usage: " SYNOPSIS "\n"
		"       tally-httpd --help\n"
		"\n"
		"Serves the Prometheus text files *.prom of DIR, concatenated, at\n"
		"/metrics and \"ok\" at /healthz, over HTTP/1.1.\n"
		"\n"
		"  --listen [ADDR]:PORT  listen on 127.0.0.1:9090, [::1]:9090, or :9090 for\n"
		"                        every interface (default :$METRICS_PORT, and\n"
		"                        METRICS_PORT defaults to 9090); port 0 picks one\n"
		"  --dir DIR             the metrics directory (default $TALLY_METRICS_DIR,\n"
		"                        else " HTTPD_DEFAULT_DIR ")\n"
		"  --port-file FILE      after binding, write the port and a newline to FILE\n"
		"  --help                print this help and exit\n"
		"\n"
		"Runs until SIGTERM or SIGINT (exit 0). Exit 100: usage error;\n"
		"111: a system call failed (e.g. the address is in use).\n";

	if (write_all(1, text, sizeof text - 1) < 0)
		die_sys(EXIT_SYS, "unable to write the help");
}

/* Returns the value of option argv[*i] ("--opt VAL" or "--opt=VAL") if its
 * name is opt, advancing *i past it; NULL if argv[*i] is another option. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	if (strncmp(a, opt, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		die_usage(SYNOPSIS " (%s needs a value)", opt);
	return argv[++*i];
}

int main(int argc, char **argv)
{
	const char *listen_arg = NULL, *port_file = NULL, *v, *env;
	struct listen_spec ls;
	struct sigaction sa;
	char name[INET6_ADDRSTRLEN + 16], spec[16], portstr[8];
	int i, lfd;

	die_prog = "tally-httpd";
	metrics_dir = NULL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			usage();
			return EXIT_OK;
		} else if ((v = opt_value(argc, argv, &i, "--listen"))) {
			listen_arg = v;
		} else if ((v = opt_value(argc, argv, &i, "--dir"))) {
			metrics_dir = v;
		} else if ((v = opt_value(argc, argv, &i, "--port-file"))) {
			port_file = v;
		} else {
			die_usage(SYNOPSIS " (unexpected argument '%.64s')", argv[i]);
		}
	}
	if (!listen_arg) {
		env = getenv("METRICS_PORT");
		if (!env || !*env)
			env = HTTPD_DEFAULT_PORT;
		if (parse_port(env, &ls.port) < 0)
			die_usage(SYNOPSIS " (METRICS_PORT '%.64s' is not a port)", env);
		snprintf(spec, sizeof spec, ":%s", env);
		listen_arg = spec;
	}
	if (parse_listen(listen_arg, &ls) < 0)
		die_usage(SYNOPSIS " (--listen '%.64s' is not [ADDR]:PORT)",
		          listen_arg);
	if (!metrics_dir) {
		env = getenv("TALLY_METRICS_DIR");
		metrics_dir = env && *env ? env : HTTPD_DEFAULT_DIR;
	}
	if (!*metrics_dir)
		die_usage(SYNOPSIS " (--dir is empty)");

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		die_sys(EXIT_SYS, "unable to ignore SIGPIPE");
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		die_sys(EXIT_SYS, "unable to catch SIGTERM and SIGINT");

	lfd = bind_listen(&ls, name, sizeof name);
	if (lfd < 0)
		die_sys(EXIT_SYS, "unable to listen on %s", name);
	fprintf(stderr, "tally-httpd: listening on %s, serving %s\n", name,
	        metrics_dir);
	if (port_file) {
		snprintf(portstr, sizeof portstr, "%s", strrchr(name, ':') + 1);
		if (write_port_file(port_file, portstr) < 0)
			die_sys(EXIT_SYS, "unable to write %s", port_file);
	}

	serve(lfd);

	for (i = 0; i < HTTPD_MAX_CONNS; i++)
		if (conns[i].state != CONN_FREE)
			conn_close(&conns[i]);
	close(lfd);
	buf_free(&body);
	return EXIT_OK;
}
