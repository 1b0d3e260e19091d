/* probe.c: a TCP or HTTP liveness probe with one overall time limit, for
 * images with no shell (Docker HEALTHCHECK in exec form). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

/* A parsed probe target. */
struct target {
	int http;                   /* 1 for http://, 0 for tcp:// */
	char host[256];
	char port[8];
	const char *path;           /* points into the URL; "/" when absent */
};

long long net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes a reason into why. */
static void say(char *why, size_t whylen, const char *fmt, const char *arg)
{
	if (whylen)
		snprintf(why, whylen, fmt, arg);
}

/* Parses url into t. Returns 0, or -1 when it is not a probe URL. */
static int parse_target(const char *url, struct target *t)
{
	const char *p, *host, *hend, *port = NULL;
	size_t n;

	if (strlen(url) > PROBE_MAX_URL)
		return -1;
	if (!strncmp(url, "tcp://", 6)) {
		t->http = 0;
		p = url + 6;
	} else if (!strncmp(url, "http://", 7)) {
		t->http = 1;
		p = url + 7;
	} else {
		return -1;
	}
	if (*p == '[') {
		host = p + 1;
		hend = strchr(host, ']');
		if (!hend)
			return -1;
		p = hend + 1;
	} else {
		host = p;
		hend = p + strcspn(p, ":/");
		p = hend;
	}
	if (*p == ':') {
		port = ++p;
		p += strspn(p, "0123456789");
		if (p == port || p - port > 5 || atoi(port) < 1 || atoi(port) > 65535)
			return -1;
	}
	if (*p && *p != '/')
		return -1;
	if (!t->http && (!port || *p))
		return -1;
	n = (size_t)(hend - host);
	if (n == 0 || n >= sizeof t->host)
		return -1;
	memcpy(t->host, host, n);
	t->host[n] = '\0';
	if (port)
		snprintf(t->port, sizeof t->port, "%d", atoi(port));
	else
		strcpy(t->port, "80");
	t->path = *p ? p : "/";
	/* A path with spaces or control bytes would break the request line. */
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -1;
	return 0;
}

int net_wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int r;

	for (;;) {
		left = deadline - net_now_ms();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int net_connect(const char *host, const char *port, const char *label, long long deadline,
	char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, err, r;
	socklen_t len = sizeof err;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		say(why, whylen, "cannot resolve %s", host);
		return -1;
	}
	say(why, whylen, "cannot connect to %s", label);
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
			goto next;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS)
			goto refused;
		r = net_wait_fd(fd, POLLOUT, deadline);
		if (r == 0) {
			say(why, whylen, "timed out connecting to %s", label);
			goto next;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			goto next;
		if (err == 0)
			break;
		errno = err;
refused:
		snprintf(why, whylen, "cannot connect to %s: %s", label, strerror(errno));
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0 && whylen)
		why[0] = '\0';
	return fd;
}

/* Sends GET and reads the status line. Returns 0 for 2xx/3xx, 1 otherwise. */
static int http_check(int fd, const struct target *t, long long deadline, char *why, size_t whylen)
{
	char req[PROBE_MAX_URL + 512], ans[PROBE_MAX_STATUS_LINE + 1];
	size_t got = 0;
	ssize_t r;
	int n, status;

	n = snprintf(req, sizeof req,
		"GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tally-probe\r\nConnection: close\r\n\r\n",
		t->path, t->host);
	if (n < 0 || (size_t)n >= sizeof req || write_all(fd, req, (size_t)n) < 0) {
		say(why, whylen, "cannot send the request to %s", t->host);
		return 1;
	}
	while (got < sizeof ans - 1 && !memchr(ans, '\n', got)) {
		n = net_wait_fd(fd, POLLIN, deadline);
		if (n == 0) {
			say(why, whylen, "timed out waiting for %s", t->host);
			return 1;
		}
		r = n < 0 ? -1 : read(fd, ans + got, sizeof ans - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	ans[got] = '\0';
	if (got < 12 || strncmp(ans, "HTTP/1.", 7) || ans[8] != ' ' ||
	    sscanf(ans + 9, "%3d", &status) != 1) {
		say(why, whylen, "no HTTP answer from %s", t->host);
		return 1;
	}
	if (status >= 200 && status < 400)
		return 0;
	snprintf(why, whylen, "HTTP status %d", status);
	return 1;
}

int probe_url(const char *url, int timeout_ms, char *why, size_t whylen)
{
	struct target t;
	long long deadline = net_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	int fd, rc;

	if (whylen)
		why[0] = '\0';
	if (parse_target(url, &t) < 0) {
		say(why, whylen, "not a probe URL (tcp://HOST:PORT or http://HOST[:PORT][/PATH]): %.200s", url);
		errno = EINVAL;
		return -1;
	}
	fd = net_connect(t.host, t.port, t.host, deadline, why, whylen);
	if (fd < 0)
		return 1;
	rc = t.http ? http_check(fd, &t, deadline, why, whylen) : 0;
	close(fd);
	return rc;
}
