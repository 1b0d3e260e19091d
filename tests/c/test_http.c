/* test_http.c: unit tests of lib/c/http.c (request parser, response
 * builder, content negotiation, basic auth) and of tally-httpd's pure
 * helpers (--listen parsing, number formatting, /proc stat fields). */
#define main tally_httpd_main
#include "../../bin/tally-httpd.c"
#undef main


#include "check.h"

/* Parses the NUL-terminated s. */
static int parse(const char *s, struct http_request *req)
{
	return http_parse_request(s, strlen(s), req);
}

/* Returns 1 if p[0..n) equals the string lit. */
static int eq(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

static void test_complete(void)
{
	struct http_request r;
	const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
	                "User-Agent: Prometheus/2.53\r\n\r\n";
	int rc = parse(s, &r);

	CHECK(rc == (int)strlen(s), "complete GET: rc %d", rc);
	CHECK(r.method == HTTP_GET, "complete GET: method %d", r.method);
	CHECK(eq(r.method_str, r.method_len, "GET"), "complete GET: method_str");
	CHECK(eq(r.target, r.target_len, "/metrics"), "complete GET: target");
	CHECK(eq(r.path, r.path_len, "/metrics"), "complete GET: path");
	CHECK(r.minor == 1 && r.keep_alive == 1 && r.has_body == 0,
	      "complete GET: minor %d keep_alive %d has_body %d", r.minor,
	      r.keep_alive, r.has_body);

	rc = parse("HEAD /healthz?verbose=1&x HTTP/1.0\r\n\r\n", &r);
	CHECK(rc == 38, "HEAD 1.0: rc %d", rc);
	CHECK(r.method == HTTP_HEAD, "HEAD 1.0: method");
	CHECK(eq(r.target, r.target_len, "/healthz?verbose=1&x"), "HEAD: target");
	CHECK(eq(r.path, r.path_len, "/healthz"), "HEAD: query not in path");
	CHECK(r.minor == 0 && r.keep_alive == 0, "HTTP/1.0 closes by default");

	rc = parse("POST /metrics HTTP/1.1\r\n\r\n", &r);
	CHECK(rc > 0 && r.method == HTTP_OTHER &&
	      eq(r.method_str, r.method_len, "POST"), "POST is HTTP_OTHER");
	rc = parse("get /metrics HTTP/1.1\r\n\r\n", &r);
	CHECK(rc > 0 && r.method == HTTP_OTHER, "methods are case-sensitive");
	rc = parse("OPTIONS * HTTP/1.1\r\n\r\n", &r);
	CHECK(rc > 0 && eq(r.path, r.path_len, "*"), "asterisk-form");
	rc = parse("GET http://example.com:9090/metrics?a=b HTTP/1.1\r\n\r\n", &r);
	CHECK(rc > 0 && eq(r.path, r.path_len, "/metrics"), "absolute-form path");
	rc = parse("GET http://example.com HTTP/1.1\r\n\r\n", &r);
	CHECK(rc > 0 && eq(r.path, r.path_len, "/"), "absolute-form, no path");
	rc = parse("GET / HTTP/1.7\r\n\r\n", &r);
	CHECK(rc > 0 && r.minor == 1 && r.keep_alive,
	      "HTTP/1.7 is served as HTTP/1.1");
}

static void test_connection(void)
{
	struct http_request r;
	static const struct {
		const char *req;
		int keep_alive;
	} t[] = {
		{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nconnection:CLOSE\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nConnection: te, Close \r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 0 },
		{ "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0 },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		rc = parse(t[i].req, &r);
		CHECK(rc > 0 && r.keep_alive == t[i].keep_alive,
		      "connection case %zu: rc %d keep_alive %d", i, rc,
		      r.keep_alive);
	}
	rc = parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &r);
	CHECK(rc == 39 && r.has_body, "a body is not consumed: rc %d", rc);
}

/* Every strict prefix of a valid request needs more bytes (returns 0). */
static void test_prefixes(void)
{
	static const char *const reqs[] = {
		"GET /metrics HTTP/1.1\r\nHost: localhost:9090\r\nAccept: */*\r\n\r\n",
		"HEAD /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"\nGET /x HTTP/1.1\nHost: a\n\n",
		"GET /x HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
		"GET http://h/metrics HTTP/1.1\r\n\r\n",
	};
	struct http_request r;
	size_t i, k, n;
	int rc, bad;

	for (i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		n = strlen(reqs[i]);
		bad = 0;
		for (k = 0; k < n; k++) {
			rc = http_parse_request(reqs[i], k, &r);
			if (rc != 0) {
				CHECK(0, "request %zu, prefix of %zu bytes: rc %d",
				      i, k, rc);
				bad = 1;
				break;
			}
		}
		if (!bad)
			passed++;
		rc = http_parse_request(reqs[i], n, &r);
		CHECK(rc == (int)n, "request %zu whole: rc %d, want %zu", i, rc, n);
	}
}

static void test_pipelined(void)
{
	const char *s = "GET /metrics HTTP/1.1\r\n\r\n"
	                "HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
	                "GET /ha";
	size_t n = strlen(s), off = 0;
	struct http_request r;
	int rc;

	rc = http_parse_request(s, n, &r);
	CHECK(rc == 25 && r.method == HTTP_GET && r.keep_alive,
	      "pipelined first: rc %d", rc);
	off += (size_t)rc;
	rc = http_parse_request(s + off, n - off, &r);
	CHECK(rc == 45 && r.method == HTTP_HEAD && !r.keep_alive &&
	      eq(r.path, r.path_len, "/healthz"), "pipelined second: rc %d", rc);
	off += (size_t)rc;
	rc = http_parse_request(s + off, n - off, &r);
	CHECK(rc == 0, "pipelined third is partial: rc %d", rc);
}

static void test_malformed(void)
{
	static const struct {
		const char *req;
		size_t len; /* 0: strlen */
		int want;
	} t[] = {
		{ "G@T / HTTP/1.1\r\n\r\n", 0, -400 },
		{ " GET / HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET  / HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\n\r\n", 0, 18 },
		{ "GET /\r\n\r\n", 0, -400 },
		{ "GET\r\n\r\n", 0, -400 },
		{ "GET / \r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1 \r\n\r\n", 0, -400 },
		{ "GET / http/1.1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.10\r\n\r\n", 0, -400 },
		{ "GET / HTTP/11.0\r\n\r\n", 0, -400 },
		{ "GET / HTTP/2.0\r\n\r\n", 0, -505 },
		{ "GET / HTTP/0.9\r\n\r\n", 0, -505 },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, -505 },
		{ "GET metrics HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET ://x HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET /a\x01z HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET /a\xffz HTTP/1.1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\rHost: x\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\n: empty name\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nX(y): z\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 28, -400 },
		{ "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 0, 28 },
		{ "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, -400 },
		/* refused before any line end: cannot start a request line */
		{ "\x16\x03\x01\x02\x00\x01", 6, -400 },
		{ "GE\x01", 0, -400 },
		{ " ", 0, -400 },
		/* bare CR at the end may be the start of CRLF: wait */
		{ "GET\r", 0, 0 },
		{ "\r", 0, 0 },
	};
	struct http_request r;
	size_t i, n;
	int rc;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		n = t[i].len ? t[i].len : strlen(t[i].req);
		rc = http_parse_request(t[i].req, n, &r);
		CHECK(rc == t[i].want, "malformed case %zu: rc %d, want %d", i, rc,
		      t[i].want);
	}
}

/* Bare LF line ends are accepted (RFC 9112 2.2 allows it), CRLF mixed in. */
static void test_bare_lf(void)
{
	struct http_request r;
	int rc;

	rc = parse("GET /metrics HTTP/1.1\nHost: x\nConnection: close\n\n", &r);
	CHECK(rc == 49 && !r.keep_alive, "bare LF accepted: rc %d", rc);
	rc = parse("GET /metrics HTTP/1.1\r\nHost: x\n\r\n", &r);
	CHECK(rc == 33, "mixed line ends accepted: rc %d", rc);
}

/* Every byte 0x00-0xFF in the method, the target and a field value. */
static void test_every_byte(void)
{
	char s[64];
	int c, rc, ok, want, bad = 0;
	struct http_request r;
	size_t n;

	for (c = 0; c < 256; c++) {
		int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		            (c >= 'A' && c <= 'Z');

		n = (size_t)snprintf(s, sizeof s, "G%cT / HTTP/1.1\r\n\r\n", 'x');
		s[1] = (char)c;
		want = alnum || (c && strchr("!#$%&'*+-.^_`|~", c));
		rc = http_parse_request(s, n, &r);
		ok = want ? rc == (int)n : rc == -400;
		if (!ok) {
			CHECK(0, "method byte 0x%02x: rc %d", c, rc);
			bad = 1;
		}

		n = (size_t)snprintf(s, sizeof s, "GET /a%cb HTTP/1.1\r\n\r\n", 'x');
		s[6] = (char)c;
		want = c >= 0x21 && c <= 0x7e;
		rc = http_parse_request(s, n, &r);
		ok = want ? rc == (int)n : rc == -400;
		if (!ok) {
			CHECK(0, "target byte 0x%02x: rc %d", c, rc);
			bad = 1;
		}

		n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: a%cb\r\n\r\n", 'x');
		s[20] = (char)c;
		want = c == '\t' || (c >= 0x20 && c != 0x7f);
		rc = http_parse_request(s, n, &r);
		ok = want ? rc == (int)n : rc == -400;
		if (!ok) {
			CHECK(0, "field value byte 0x%02x: rc %d", c, rc);
			bad = 1;
		}
	}
	if (!bad)
		passed++;
}

/* Fills p with a request whose request line is line_len bytes before its
 * CRLF, then "\r\n"; returns the length. */
static size_t long_line(char *p, size_t line_len)
{
	size_t i;

	memcpy(p, "GET /", 5);
	for (i = 5; i < line_len - 9; i++)
		p[i] = 'a';
	memcpy(p + i, " HTTP/1.1\r\n\r\n", 13);
	return i + 13;
}

static void test_limits(void)
{
	static char p[3 * HTTP_MAX_HEAD];
	struct http_request r;
	size_t n, i;
	int rc;

	/* request line + CRLF of exactly HTTP_MAX_REQUEST_LINE bytes */
	n = long_line(p, HTTP_MAX_REQUEST_LINE - 2);
	rc = http_parse_request(p, n, &r);
	CHECK(rc == (int)n, "request line at the cap: rc %d", rc);
	n = long_line(p, HTTP_MAX_REQUEST_LINE - 1);
	rc = http_parse_request(p, n, &r);
	CHECK(rc == -414, "request line one byte over the cap: rc %d", rc);
	/* an unfinished request line: 0 below the cap, -414 at it */
	memset(p, 'a', sizeof p);
	memcpy(p, "GET /", 5);
	rc = http_parse_request(p, HTTP_MAX_REQUEST_LINE - 1, &r);
	CHECK(rc == 0, "unfinished request line below the cap: rc %d", rc);
	rc = http_parse_request(p, HTTP_MAX_REQUEST_LINE, &r);
	CHECK(rc == -414, "unfinished request line at the cap: rc %d", rc);

	/* a head of exactly HTTP_MAX_HEAD bytes, then one over */
	n = (size_t)sprintf(p, "GET / HTTP/1.1\r\nX: ");
	while (n < HTTP_MAX_HEAD - 4)
		p[n++] = 'v';
	memcpy(p + n, "\r\n\r\n", 4);
	n += 4;
	rc = http_parse_request(p, n, &r);
	CHECK(rc == HTTP_MAX_HEAD, "head at the cap: rc %d", rc);
	memmove(p + n - 3, p + n - 4, 4);
	p[n - 4] = 'v';
	rc = http_parse_request(p, n + 1, &r);
	CHECK(rc == -431, "head one byte over the cap: rc %d", rc);
	rc = http_parse_request(p, HTTP_MAX_HEAD - 1, &r);
	CHECK(rc == 0, "unfinished head below the cap: rc %d", rc);
	rc = http_parse_request(p, HTTP_MAX_HEAD, &r);
	CHECK(rc == -431, "unfinished head at the cap: rc %d", rc);

	/* HTTP_MAX_HEADERS fields, then one more */
	n = (size_t)sprintf(p, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)sprintf(p + n, "X: %zu\r\n", i);
	n += (size_t)sprintf(p + n, "\r\n");
	rc = http_parse_request(p, n, &r);
	CHECK(rc == (int)n, "%d fields: rc %d", HTTP_MAX_HEADERS, rc);
	memmove(p + 16 + 6, p + 16, n - 16);
	memcpy(p + 16, "Y: 1\r\n", 6);
	rc = http_parse_request(p, n + 6, &r);
	CHECK(rc == -431, "%d fields: rc %d", HTTP_MAX_HEADERS + 1, rc);

	/* a small request followed by more than HTTP_MAX_HEAD bytes */
	memset(p, 'z', sizeof p);
	memcpy(p, "GET / HTTP/1.1\r\n\r\n", 18);
	rc = http_parse_request(p, sizeof p, &r);
	CHECK(rc == 18, "small request before a long tail: rc %d", rc);
}

static void test_response(void)
{
	struct buf b = { 0, 0, 0 };
	int rc;

	rc = http_put_response(&b, 200, "text/plain; version=0.0.4; charset=utf-8",
	                       55, 1, NULL);
	CHECK(rc == 0 && eq(b.p, b.len,
	      "HTTP/1.1 200 OK\r\n"
	      "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	      "Content-Length: 55\r\n"
	      "Connection: keep-alive\r\n"
	      "\r\n"), "200 head: %s", b.p);
	buf_reset(&b);
	rc = http_put_response(&b, 405, "text/plain; charset=utf-8", 19, 0,
	                       "Allow: GET, HEAD\r\n");
	CHECK(rc == 0 && eq(b.p, b.len,
	      "HTTP/1.1 405 Method Not Allowed\r\n"
	      "Content-Type: text/plain; charset=utf-8\r\n"
	      "Content-Length: 19\r\n"
	      "Connection: close\r\n"
	      "Allow: GET, HEAD\r\n"
	      "\r\n"), "405 head: %s", b.p);
	buf_reset(&b);
	buf_puts(&b, "before|");
	rc = http_put_response(&b, 299, NULL, 0, 0, NULL);
	CHECK(rc == 0 && eq(b.p, b.len,
	      "before|HTTP/1.1 299 \r\n"
	      "Content-Length: 0\r\n"
	      "Connection: close\r\n"
	      "\r\n"), "unknown status, no type, appended: %s", b.p);
	buf_reset(&b);
	rc = http_put_response(&b, 431, "t", 4294967295u, 1, "");
	CHECK(rc == 0 && eq(b.p, b.len,
	      "HTTP/1.1 431 Request Header Fields Too Large\r\n"
	      "Content-Type: t\r\n"
	      "Content-Length: 4294967295\r\n"
	      "Connection: keep-alive\r\n"
	      "\r\n"), "431 head: %s", b.p);
	buf_reset(&b);
	buf_puts(&b, "keep");
	errno = 0;
	rc = http_put_response(&b, 99, NULL, 0, 1, NULL);
	CHECK(rc == -1 && errno == EINVAL && eq(b.p, b.len, "keep"),
	      "status 99 refused");
	rc = http_put_response(&b, 600, NULL, 0, 1, NULL);
	CHECK(rc == -1 && eq(b.p, b.len, "keep"), "status 600 refused");
	buf_free(&b);

	CHECK(strcmp(http_reason(400), "Bad Request") == 0, "reason 400");
	CHECK(strcmp(http_reason(414), "URI Too Long") == 0, "reason 414");
	CHECK(strcmp(http_reason(503), "Service Unavailable") == 0, "reason 503");
	CHECK(strcmp(http_reason(505), "HTTP Version Not Supported") == 0,
	      "reason 505");
	CHECK(strcmp(http_reason(299), "") == 0, "reason of an unknown status");
}

static void test_listen(void)
{
	static const struct {
		const char *spec;
		int ok, any, family;
		unsigned port;
	} t[] = {
		{ "127.0.0.1:9090", 1, 0, AF_INET, 9090 },
		{ "0.0.0.0:0", 1, 0, AF_INET, 0 },
		{ "[::1]:9090", 1, 0, AF_INET6, 9090 },
		{ "[::]:65535", 1, 0, AF_INET6, 65535 },
		{ ":9090", 1, 1, 0, 9090 },
		{ ":0", 1, 1, 0, 0 },
		{ "9090", 0, 0, 0, 0 },
		{ ":", 0, 0, 0, 0 },
		{ ":65536", 0, 0, 0, 0 },
		{ ":-1", 0, 0, 0, 0 },
		{ ":90a", 0, 0, 0, 0 },
		{ ":000009090", 0, 0, 0, 0 },
		{ "::1:9090", 0, 0, 0, 0 },
		{ "[::1]9090", 0, 0, 0, 0 },
		{ "[::1]:", 0, 0, 0, 0 },
		{ "[]:9090", 0, 0, 0, 0 },
		{ "[127.0.0.1]:9090", 0, 0, 0, 0 },
		{ "localhost:9090", 0, 0, 0, 0 },
		{ "256.0.0.1:9090", 0, 0, 0, 0 },
		{ "", 0, 0, 0, 0 },
	};
	struct listen_spec ls;
	size_t i;
	int rc;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		rc = parse_listen(t[i].spec, &ls);
		if (!t[i].ok) {
			CHECK(rc == -1, "--listen '%s' refused", t[i].spec);
			continue;
		}
		CHECK(rc == 0 && ls.any == t[i].any && ls.port == t[i].port &&
		      (ls.any || ls.family == t[i].family),
		      "--listen '%s': rc %d any %d family %d port %u", t[i].spec,
		      rc, ls.any, ls.family, ls.port);
	}
}

static void test_negotiation(void)
{
	static const char prom_accept[] =
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
	static const struct {
		const char *v;
		int om;
	} a[] = {
		{ prom_accept, 1 },
		{ "application/openmetrics-text; version=1.0.0; charset=utf-8", 1 },
		{ "application/openmetrics-text", 1 },
		{ "Application/OpenMetrics-Text;Version=\"1.0.0\"", 1 },
		{ "application/openmetrics-text;version=0.0.1", 0 },
		{ "application/openmetrics-text;version=1.0.0;q=0", 0 },
		{ "text/plain;version=0.0.4", 0 },
		{ "text/plain, application/openmetrics-text;q=0.9", 0 },
		{ "application/openmetrics-text;q=0.5, */*;q=0.5", 1 },
		{ "*/*", 0 },
		{ "", 0 },
		{ "garbage;;;,,,", 0 },
		{ "application/openmetrics-text;q=2", 0 },
	};
	static const struct {
		const char *v;
		int gz;
	} e[] = {
		{ "gzip", 1 }, { "GZIP", 1 }, { "deflate, gzip;q=0.5", 1 }, { "x-gzip", 1 },
		{ "gzip;q=0", 1 - 1 }, { "gzip;q=0.000", 0 }, { "identity", 0 }, { "*", 1 },
		{ "*;q=0", 0 }, { "gzip;q=0, *", 0 }, { "br, *;q=0.1", 1 }, { "", 0 },
		{ "gzip ; q=0", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof a / sizeof *a; i++)
		CHECK(http_wants_openmetrics(a[i].v, strlen(a[i].v)) == a[i].om,
		      "Accept '%s' wants OpenMetrics %d", a[i].v, a[i].om);
	CHECK(!http_wants_openmetrics(NULL, 0), "no Accept: text");
	for (i = 0; i < sizeof e / sizeof *e; i++)
		CHECK(http_wants_gzip(e[i].v, strlen(e[i].v)) == e[i].gz,
		      "Accept-Encoding '%s' wants gzip %d", e[i].v, e[i].gz);
	CHECK(!http_wants_gzip(NULL, 0), "no Accept-Encoding: identity");
}

static void test_auth(void)
{
	static const struct {
		const char *in, *out;
	} b64[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "user:pass", "dXNlcjpwYXNz" },
		{ "\xff\xfe", "//4=" },
	};
	struct buf b = { 0, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof b64 / sizeof *b64; i++) {
		buf_reset(&b);
		CHECK(http_base64(&b, b64[i].in, strlen(b64[i].in)) == 0 &&
		      eq(b.p, b.len, b64[i].out), "base64 of '%s'", b64[i].in);
	}
	CHECK(http_equal_ct("abc", 3, "abc", 3), "equal");
	CHECK(!http_equal_ct("abd", 3, "abc", 3), "differs at the end");
	CHECK(!http_equal_ct("ab", 2, "abc", 3), "shorter");
	CHECK(!http_equal_ct("abcd", 4, "abc", 3), "longer");
	CHECK(!http_equal_ct("", 0, "abc", 3), "empty");
	CHECK(http_basic_ok("Basic dXNlcjpwYXNz", 18, "dXNlcjpwYXNz", 12), "Basic token");
	CHECK(http_basic_ok("basic   dXNlcjpwYXNz", 20, "dXNlcjpwYXNz", 12), "scheme in any case");
	CHECK(!http_basic_ok("Bearer dXNlcjpwYXNz", 19, "dXNlcjpwYXNz", 12), "other scheme");
	CHECK(!http_basic_ok("Basic dXNlcjpwYXN6", 18, "dXNlcjpwYXNz", 12), "wrong token");
	CHECK(!http_basic_ok(NULL, 0, "dXNlcjpwYXNz", 12), "no header");
	buf_free(&b);
}

static void test_headers(void)
{
	struct http_request req;
	const char *r = "GET /metrics?verbose&x=1 HTTP/1.1\r\nAccept:  text/plain \r\n"
		"Accept-Encoding: gzip\r\nAuthorization: Basic eA==\r\nAccept: other\r\n"
		"Content-Length: 12\r\n\r\n";

	CHECK(parse(r, &req) > 0, "parses");
	CHECK(eq(req.accept, req.accept_len, "text/plain"), "first Accept, trimmed");
	CHECK(eq(req.accept_encoding, req.accept_encoding_len, "gzip"), "Accept-Encoding");
	CHECK(eq(req.authorization, req.authorization_len, "Basic eA=="), "Authorization");
	CHECK(req.content_length == 12 && !req.chunked, "Content-Length 12");
	CHECK(has_param(&req, "verbose") && has_param(&req, "x") && !has_param(&req, "verb"),
	      "query parameters");
	CHECK(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req) > 0 &&
	      req.chunked && !req.accept, "chunked, no Accept");
}

static void test_formatting(void)
{
	struct buf b = { 0, 0, 0 };

	put_u64(&b, 0);
	buf_putc(&b, ' ');
	put_u64(&b, 18446744073709551615ULL);
	buf_putc(&b, ' ');
	put_ms(&b, 0);
	buf_putc(&b, ' ');
	put_ms(&b, 1234567);
	buf_putc(&b, ' ');
	put_ms(&b, 5);
	CHECK(eq(b.p, b.len, "0 18446744073709551615 0.000 1234.567 0.005"), "'%s'", b.p);
	CHECK(stat_field("1 (a b) c) S 1 2 3 4", 5, &(unsigned long long){ 0 }) == 0,
	      "comm with ') ' inside");
	{
		unsigned long long v = 0;

		CHECK(stat_field("1 (x) S 7 8", 4, &v) == 0 && v == 7, "field 4 is 7");
		CHECK(stat_field("1 (x) S 7 8", 9, &v) < 0, "too short");
	}
	buf_free(&b);
}

int main(void)
{
	test_complete();
	test_connection();
	test_prefixes();
	test_pipelined();
	test_malformed();
	test_bare_lf();
	test_every_byte();
	test_limits();
	test_response();
	test_listen();
	test_negotiation();
	test_auth();
	test_headers();
	test_formatting();
	return check_done("test_http");
}
