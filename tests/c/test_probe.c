/* test_probe.c: probe_url() on parsed forms and against live sockets on
 * 127.0.0.1 (a forked child plays the server). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

#include "../../lib/c/probe.c"

#include "check.h"

/* Opens a listening socket on 127.0.0.1:0; sets *port. */
static int listener(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("listener");
		exit(2);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Forks a server that answers one connection with reply (NULL: says
 * nothing and holds the connection for 5 s). Returns its pid. */
static pid_t serve_once(int lfd, const char *reply)
{
	pid_t pid = fork();
	char buf[4096];
	int c;

	if (pid != 0)
		return pid;
	c = accept(lfd, NULL, NULL);
	if (c >= 0) {
		(void)read(c, buf, sizeof buf);
		if (reply)
			(void)write_all(c, reply, strlen(reply));
		else
			sleep(5);
		close(c);
	}
	_exit(0);
}

static void test_parse(void)
{
	static const struct { const char *url; int ok; const char *host, *port, *path; } t[] = {
		{ "tcp://127.0.0.1:80", 1, "127.0.0.1", "80", "/" },
		{ "tcp://[::1]:9090", 1, "::1", "9090", "/" },
		{ "http://localhost", 1, "localhost", "80", "/" },
		{ "http://127.0.0.1:9090/readyz?verbose", 1, "127.0.0.1", "9090", "/readyz?verbose" },
		{ "http://[::1]:1/x", 1, "::1", "1", "/x" },
		{ "tcp://host", 0, 0, 0, 0 },
		{ "tcp://host:80/path", 0, 0, 0, 0 },
		{ "tcp://:80", 0, 0, 0, 0 },
		{ "http://h:0/", 0, 0, 0, 0 },
		{ "http://h:65536/", 0, 0, 0, 0 },
		{ "http://h:123456/", 0, 0, 0, 0 },
		{ "http://h:x/", 0, 0, 0, 0 },
		{ "http://[::1/", 0, 0, 0, 0 },
		{ "http://h/a b", 0, 0, 0, 0 },
		{ "http://h/a\r\nX: y", 0, 0, 0, 0 },
		{ "https://h/", 0, 0, 0, 0 },
		{ "ftp://h/", 0, 0, 0, 0 },
		{ "", 0, 0, 0, 0 },
	};
	struct target tg;
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = parse_target(t[i].url, &tg);
		CHECK((r == 0) == t[i].ok, "parse %s: %d", t[i].url, r);
		if (r == 0 && t[i].ok) {
			CHECK(!strcmp(tg.host, t[i].host), "host of %s: %s", t[i].url, tg.host);
			CHECK(!strcmp(tg.port, t[i].port), "port of %s: %s", t[i].url, tg.port);
			CHECK(!strcmp(tg.path, t[i].path), "path of %s: %s", t[i].url, tg.path);
		}
	}
}

static void test_live(void)
{
	static const struct { const char *reply; int want; const char *why; } h[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, "" },
		{ "HTTP/1.0 302 Found\r\n\r\n", 0, "" },
		{ "HTTP/1.1 404 Not Found\r\n\r\n", 1, "HTTP status 404" },
		{ "HTTP/1.1 503 Service Unavailable\r\n\r\n", 1, "HTTP status 503" },
		{ "SSH-2.0-OpenSSH\r\n", 1, "no HTTP answer from 127.0.0.1" },
		{ "", 1, "no HTTP answer from 127.0.0.1" },
	};
	char url[128], why[256];
	int lfd, port, r, st;
	size_t i;
	pid_t pid;
	long long t0;

	lfd = listener(&port);
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
	r = probe_url(url, 1000, why, sizeof why);
	CHECK(r == 0, "tcp probe of a listening port: %d %s", r, why);
	close(accept(lfd, NULL, NULL)); /* the tcp probe's connection */

	snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
	for (i = 0; i < sizeof h / sizeof h[0]; i++) {
		pid = serve_once(lfd, h[i].reply);
		r = probe_url(url, 2000, why, sizeof why);
		CHECK(r == h[i].want && !strcmp(why, h[i].why), "reply %zu: %d '%s'", i, r, why);
		waitpid(pid, &st, 0);
	}

	/* A server that accepts and says nothing: the limit holds. */
	pid = serve_once(lfd, NULL);
	t0 = net_now_ms();
	r = probe_url(url, 300, why, sizeof why);
	CHECK(r == 1 && !strcmp(why, "timed out waiting for 127.0.0.1"), "silent server: %d '%s'", r, why);
	CHECK(net_now_ms() - t0 < 1500, "silent server took %lld ms", net_now_ms() - t0);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(lfd);

	/* The port is closed now: refused. */
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
	r = probe_url(url, 1000, why, sizeof why);
	CHECK(r == 1 && !strncmp(why, "cannot connect to 127.0.0.1: ", 29), "closed port: %d '%s'", r, why);

	r = probe_url("gopher://x", 1000, why, sizeof why);
	CHECK(r == -1 && errno == EINVAL, "bad scheme: %d", r);
	r = probe_url("tcp://no-such-host.invalid:80", 1000, why, sizeof why);
	CHECK(r == 1, "unresolvable host: %d '%s'", r, why);
}

int main(void)
{
	test_parse();
	test_live();
	return check_done("test_probe");
}
