/* otlp_send.c: one HTTP/1.1 POST over TCP with one overall time limit,
 * for OTLP/HTTP exports (tally-trace send). The approach of probe.c:
 * getaddrinfo, non-blocking connect, poll against a monotonic deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"
#include "otlp_send.h"

int otlp_parse_url(const char *url, struct otlp_url *u)
{
	const char *p, *host, *hend, *port = NULL, *hp;
	size_t n;
	long pv;

	memset(u, 0, sizeof *u);
	if (strlen(url) > OTLP_MAX_URL)
		goto bad;
	if (!strncmp(url, "http://", 7)) {
		p = url + 7;
	} else if (!strncmp(url, "https://", 8)) {
		u->https = 1;
		p = url + 8;
	} else {
		goto bad;
	}
	hp = p;
	if (*p == '[') {
		host = p + 1;
		hend = strchr(host, ']');
		if (!hend)
			goto bad;
		p = hend + 1;
	} else {
		host = p;
		hend = p + strcspn(p, ":/?#@");
		p = hend;
	}
	if (*p == ':') {
		port = ++p;
		p += strspn(p, "0123456789");
		pv = p - port > 0 && p - port <= 5 ? strtol(port, NULL, 10) : 0;
		if (pv < 1 || pv > 65535)
			goto bad;
		snprintf(u->port, sizeof u->port, "%ld", pv);
	} else {
		strcpy(u->port, u->https ? "443" : "80");
	}
	if (*p && *p != '/' && *p != '?')
		goto bad;
	n = (size_t)(hend - host);
	if (n == 0 || n >= sizeof u->host || (size_t)(p - hp) >= sizeof u->hostport)
		goto bad;
	memcpy(u->host, host, n);
	memcpy(u->hostport, hp, (size_t)(p - hp));
	if (*p == '?')
		snprintf(u->path, sizeof u->path, "/%s", p);
	else
		snprintf(u->path, sizeof u->path, "%s", *p ? p : "/");
	/* Spaces, control bytes or a fragment would break the request line. */
	for (p = u->path; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
			goto bad;
	for (p = u->host; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int otlp_header_ok(const char *name, size_t n, const char *value)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	size_t i;
	unsigned char c;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr(tchar, c))))
			return 0;
	}
	for (; *value; value++) {
		c = (unsigned char)*value;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Writes a reason into why. */
static void say(char *why, size_t whylen, const char *fmt, const char *arg)
{
	if (whylen)
		snprintf(why, whylen, fmt, arg);
}

/* Writes p[0..n) to the non-blocking fd before the deadline. Returns 0,
 * or -1 (timed out or failed). */
static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	ssize_t w;

	while (n) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    net_wait_fd(fd, POLLOUT, deadline) == 1)
			continue;
		return -1;
	}
	return 0;
}

/* Returns 1 when answer a holds the whole response: headers and, when a
 * Content-Length was given, that many body bytes. */
static int answer_done(const struct buf *a)
{
	const char *h = a->p, *end, *cl;
	size_t hlen;

	if (!a->len)
		return 0;
	end = strstr(h, "\r\n\r\n");
	if (!end)
		return 0;
	hlen = (size_t)(end - h) + 4;
	for (cl = h; (cl = strchr(cl, '\n')) && cl < end; cl++)
		if (!strncasecmp(cl + 1, "content-length:", 15))
			return a->len >= hlen + strtoul(cl + 16, NULL, 10);
	/* Without a length the answer ends when the server closes. */
	return 0;
}

int otlp_post(const struct otlp_url *u, const char *type, const char *extra,
	const char *body, size_t n, int timeout_ms, struct buf *answer,
	char *why, size_t whylen)
{
	long long deadline = net_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	struct buf req = { 0, 0, 0 };
	char chunk[4096];
	ssize_t r;
	int fd, status = -1, w;

	if (whylen)
		why[0] = '\0';
	buf_reset(answer);
	fd = net_connect(u->host, u->port, u->hostport, deadline, why, whylen);
	if (fd < 0)
		return -1;
	if (buf_printf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tally-trace\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
	    u->path, u->hostport, type, n, extra ? extra : "") < 0) {
		say(why, whylen, "%s", "out of memory");
		goto out;
	}
	if (send_all(fd, req.p, req.len, deadline) < 0 || send_all(fd, body, n, deadline) < 0) {
		say(why, whylen, net_now_ms() >= deadline ? "timed out sending to %s" :
			"cannot send the request to %s", u->hostport);
		goto out;
	}
	while (answer->len < OTLP_MAX_ANSWER && !answer_done(answer)) {
		w = net_wait_fd(fd, POLLIN, deadline);
		if (w == 0) {
			say(why, whylen, "timed out waiting for the answer of %s", u->hostport);
			goto out;
		}
		r = w < 0 ? -1 : recv(fd, chunk, sizeof chunk, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf_put(answer, chunk, (size_t)r) < 0) {
			say(why, whylen, "%s", "out of memory");
			goto out;
		}
	}
	if (answer->len < 12 || strncmp(answer->p, "HTTP/1.", 7) || answer->p[8] != ' ' ||
	    sscanf(answer->p + 9, "%3d", &status) != 1 || status < 100) {
		status = -1;
		say(why, whylen, "no HTTP answer from %s", u->hostport);
	}
out:
	buf_free(&req);
	close(fd);
	return status;
}
