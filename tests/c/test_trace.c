/* test_trace: lib/c/trace.c (traceparent, ids, key=value lists, OTLP/JSON
 * lines, the JSON scanner) and lib/c/otlp_send.c (URLs, headers, one POST
 * to a server forked on 127.0.0.1). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "../../lib/c/trace.c"
#include "../../lib/c/otlp_send.c"

static int passed, failed;

static void check(int ok, const char *what, long i)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "FAIL: %s (case %ld)\n", what, i);
}

static void test_traceparent(void)
{
	static const char *const good[] = {
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
	};
	static const char *const bad[] = {
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
	};
	struct trace_ctx c;
	char out[TRACEPARENT_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		check(trace_parse_traceparent(good[i], strlen(good[i]), &c) == 0, "valid traceparent accepted", (long)i);
		check(!strcmp(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736"), "trace-id read", (long)i);
		check(!strcmp(c.span_id, "00f067aa0ba902b7"), "parent-id read", (long)i);
	}
	check(c.flags == 1, "flags read", 0);
	trace_parse_traceparent(good[2], strlen(good[2]), &c);
	check(c.flags == 9, "flags 09 read", 2);
	trace_format_traceparent(&c, out);
	check(!strcmp(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"),
		"a later version is written back as version 00", 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&c, 'x', sizeof c);
		errno = 0;
		check(trace_parse_traceparent(bad[i], strlen(bad[i]), &c) < 0 && errno == EINVAL,
			"invalid traceparent refused with EINVAL", (long)i);
		check(c.trace_id[0] == 'x', "a refused traceparent leaves the context alone", (long)i);
	}
}

static void test_ids(void)
{
	char ids[200][SPAN_ID_HEX + 1], tid[TRACE_ID_HEX + 1];
	size_t i, j;
	int dup = 0;

	for (i = 0; i < 200; i++) {
		check(trace_new_id(ids[i], SPAN_ID_HEX / 2) == 0, "span id drawn", (long)i);
		check(strlen(ids[i]) == SPAN_ID_HEX && trace_hex_id_ok(ids[i], SPAN_ID_HEX),
			"span id is 16 lowercase hex digits, not all zero", (long)i);
		for (j = 0; j < i; j++)
			dup |= !strcmp(ids[i], ids[j]);
	}
	check(!dup, "200 span ids are distinct", 0);
	check(trace_new_id(tid, TRACE_ID_HEX / 2) == 0 && strlen(tid) == 32 &&
		trace_hex_id_ok(tid, 32), "trace id is 32 lowercase hex digits", 0);
	check(trace_new_id(tid, 0) < 0 && errno == EINVAL, "a 0-byte id is refused", 0);
	check(trace_new_id(tid, 33) < 0 && errno == EINVAL, "a 33-byte id is refused", 0);
}

static void test_kv(void)
{
	struct trace_kv kv[TRACE_MAX_KV];
	struct buf store = { 0, 0, 0 }, big = { 0, 0, 0 };
	char why[200];
	int n, i;

	n = trace_kv_parse(" service.name = my%20svc ,deployment.environment=ci,, k=a%2Cb,k2=,k=last ",
		kv, TRACE_MAX_KV, &store, why, sizeof why);
	check(n == 4, "four pairs, an empty member skipped, a repeated key once", n);
	check(n == 4 && !strcmp(kv[0].key, "service.name") && !strcmp(kv[0].value, "my svc"),
		"keys and values trimmed, %20 decoded", 0);
	check(n == 4 && !strcmp(kv[2].key, "k") && !strcmp(kv[2].value, "last"),
		"a repeated key keeps the last value in the first place", 2);
	check(n == 4 && !strcmp(kv[3].key, "k2") && !strcmp(kv[3].value, ""), "an empty value kept", 3);
	check(trace_kv_parse("", kv, TRACE_MAX_KV, &store, why, sizeof why) == 0, "empty list", 0);
	check(trace_kv_parse("a", kv, TRACE_MAX_KV, &store, why, sizeof why) < 0 &&
		errno == EINVAL && strstr(why, "without '='"), "member without = refused", 0);
	check(trace_kv_parse("=v", kv, TRACE_MAX_KV, &store, why, sizeof why) < 0 &&
		strstr(why, "empty key"), "empty key refused", 0);
	check(trace_kv_parse("a=%zz", kv, TRACE_MAX_KV, &store, why, sizeof why) < 0 &&
		strstr(why, "%XX"), "bad escape refused", 0);
	check(trace_kv_parse("a=%4", kv, TRACE_MAX_KV, &store, why, sizeof why) < 0,
		"truncated escape refused", 0);
	check(trace_kv_parse("a b=1", kv, TRACE_MAX_KV, &store, why, sizeof why) < 0,
		"key with a space refused", 0);
	for (i = 0; i <= TRACE_MAX_KV; i++)
		buf_printf(&big, "k%d=v,", i);
	check(trace_kv_parse(big.p, kv, TRACE_MAX_KV, &store, why, sizeof why) < 0 &&
		strstr(why, "more than"), "65 members refused", 0);
	buf_free(&store);
	buf_free(&big);
}

static void test_line(void)
{
	static const char want[] =
		"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\"}}]},"
		"\"scopeSpans\":[{\"scope\":{\"name\":\"tally\"},\"spans\":[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
		"\"spanId\":\"00f067aa0ba902b7\",\"parentSpanId\":\"1111111111111111\",\"name\":\"a \\\"b\\\"\\n\\u001f\","
		"\"kind\":1,\"startTimeUnixNano\":\"1700000000000000001\",\"endTimeUnixNano\":\"1700000000500000000\","
		"\"attributes\":[{\"key\":\"process.exit.code\",\"value\":{\"intValue\":\"-3\"}},"
		"{\"key\":\"ok\",\"value\":{\"boolValue\":false}},{\"key\":\"d\",\"value\":{\"doubleValue\":0.5}},"
		"{\"key\":\"argv\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"x\"},{\"stringValue\":\"\xef\xbf\xbd\"}]}}}],"
		"\"status\":{\"code\":2,\"message\":\"exit status 3\"}}]}]}]}\n";
	char *argv[] = { "x", "\xff", NULL };
	struct trace_attr res[1], a[4];
	struct trace_span s;
	struct buf b = { 0, 0, 0 };

	memset(res, 0, sizeof res);
	memset(a, 0, sizeof a);
	res[0].key = "service.name";
	res[0].s = "svc";
	res[0].sn = 3;
	a[0].key = "process.exit.code";
	a[0].type = TRACE_ATTR_INT;
	a[0].i = -3;
	a[1].key = "ok";
	a[1].type = TRACE_ATTR_BOOL;
	a[2].key = "d";
	a[2].type = TRACE_ATTR_DOUBLE;
	a[2].d = 0.5;
	a[3].key = "argv";
	a[3].type = TRACE_ATTR_STRING_ARRAY;
	a[3].arr = argv;
	a[3].narr = 2;
	memset(&s, 0, sizeof s);
	s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
	s.span_id = "00f067aa0ba902b7";
	s.parent_span_id = "1111111111111111";
	s.name = "a \"b\"\n\x1f";
	s.kind = TRACE_KIND_INTERNAL;
	s.start_ns = 1700000000000000001ULL;
	s.end_ns = 1700000000500000000ULL;
	s.attrs = a;
	s.nattrs = 4;
	s.status = TRACE_STATUS_ERROR;
	s.status_message = "exit status 3";
	check(trace_put_line(&b, res, 1, "tally", NULL, &s, 1) == 0, "line built", 0);
	check(!strcmp(b.p, want), "the OTLP/JSON line, byte for byte", 0);
	if (strcmp(b.p, want))
		fprintf(stderr, "got:  %s\nwant: %s", b.p, want);
	check(trace_json_value_len(b.p, b.len) == b.len, "the line is one JSON value", 0);
	buf_reset(&b);
	s.parent_span_id = "";
	s.status = TRACE_STATUS_UNSET;
	s.nattrs = 0;
	trace_put_line(&b, res, 1, "tally", "1.0", &s, 1);
	check(!strstr(b.p, "parentSpanId") && !strstr(b.p, "status") && !strstr(b.p, "\"attributes\":[]}") &&
		strstr(b.p, "\"version\":\"1.0\""), "root span: no parentSpanId, status or empty attributes", 0);
	buf_free(&b);
}

static void test_json_scan(void)
{
	static const char *const good[] = {
		"{}", " [ ] ", "0", "-0.5e+3", "\"a\\u00e9\\n\"", "{\"a\":[1,{\"b\":null},true,false]}",
		"\"\xc3\xa9\"",
	};
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\"}", "{\"a\":}", "01", "1.", "-", "\"\\x\"", "\"\\u12g4\"",
		"{\"a\":1,}", "tru", "\"\xff\"", "{} {}", "[1] x", "'a'", "\"a\tb\"",
	};
	char s[8], deep[2 * TRACE_MAX_JSON_DEPTH + 8];
	size_t i;
	int c;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		check(trace_json_value_len(good[i], strlen(good[i])) == strlen(good[i]),
			"valid JSON measured whole", (long)i);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		check(trace_json_value_len(bad[i], strlen(bad[i])) != strlen(bad[i]) || !*bad[i],
			"invalid JSON refused", (long)i);
	/* Every byte inside a string: ASCII controls refused, the rest by UTF-8. */
	for (c = 0; c < 256; c++) {
		s[0] = '"';
		s[1] = (char)c;
		s[2] = '"';
		check((trace_json_value_len(s, 3) == 3) == (c >= 0x20 && c < 0x80 && c != '"' && c != '\\'),
			"one byte in a string", c);
	}
	memset(deep, '[', TRACE_MAX_JSON_DEPTH);
	memset(deep + TRACE_MAX_JSON_DEPTH, ']', TRACE_MAX_JSON_DEPTH);
	check(trace_json_value_len(deep, 2 * TRACE_MAX_JSON_DEPTH) == 2 * TRACE_MAX_JSON_DEPTH,
		"64 levels accepted", 64);
	memset(deep, '[', TRACE_MAX_JSON_DEPTH + 1);
	memset(deep + TRACE_MAX_JSON_DEPTH + 1, ']', TRACE_MAX_JSON_DEPTH + 1);
	check(trace_json_value_len(deep, 2 * TRACE_MAX_JSON_DEPTH + 2) == 0, "65 levels refused", 65);
}

static void test_items(void)
{
	static const char line[] =
		"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"old\"}},"
		"{\"key\":\"keep\",\"value\":{\"stringValue\":\"k\"}}],\"droppedAttributesCount\":0},\"scopeSpans\":[]},"
		"{\"scopeSpans\":[]}]}";
	static const char want[] =
		"[{\"resource\":{\"attributes\":[{\"key\":\"keep\",\"value\":{\"stringValue\":\"k\"}},"
		"{\"key\":\"service.name\",\"value\":{\"stringValue\":\"new\"}}],\"droppedAttributesCount\":0},\"scopeSpans\":[]},"
		"{\"scopeSpans\":[],\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"new\"}}]}}";
	static const char *const bad[] = {
		"{}", "[]", "{\"resourceSpans\":{}}", "{\"resourceSpans\":[1]}", "{\"resourceSpans\":[],\"x\":1}",
		"{\"resourceSpans\":[{}]", "{\"resourceSpans\":[],\"resourceSpans\":[]}",
	};
	struct trace_attr over[1];
	struct buf out = { 0, 0, 0 };
	size_t i;

	memset(over, 0, sizeof over);
	over[0].key = "service.name";
	over[0].s = "new";
	over[0].sn = 3;
	xbuf_putc(&out, '[');
	check(trace_line_items(line, strlen(line), over, 1, &out) == 2, "two items", 0);
	check(!strcmp(out.p, want), "service.name replaced, other attributes and members kept", 0);
	if (strcmp(out.p, want))
		fprintf(stderr, "got:  %s\nwant: %s\n", out.p, want);
	buf_reset(&out);
	xbuf_putc(&out, '[');
	check(trace_line_items(line, strlen(line), NULL, 0, &out) == 2 &&
		!memcmp(out.p + 1, line + 18, strlen(line) - 18 - 2), "without overrides the items are copied", 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		buf_reset(&out);
		xbuf_puts(&out, "[x");
		check(trace_line_items(bad[i], strlen(bad[i]), over, 1, &out) < 0 && errno == EINVAL &&
			!strcmp(out.p, "[x"), "a line that is not TracesData is refused, out unchanged", (long)i);
	}
	buf_free(&out);
}

static void test_scan(void)
{
	static const char a[] = "{\"spans\":[{\"parentSpanId\":\"00f067aa0ba902b7\",\"endTimeUnixNano\":\"1700000000000000005\",\"status\":{\"code\":2}}]}";
	static const char b[] = "{\"spans\":[{\"parentSpanId\":\"00f067aa0ba902b7\",\"endTimeUnixNano\":\"9\",\"name\":\"\\\"status\\\":{\\\"code\\\":2\"}]}";
	static const char c[] = "{\"spans\":[{\"parentSpanId\":\"1111111111111111\",\"endTimeUnixNano\":\"1800000000000000000\",\"status\":{\"code\":2}}]}";
	unsigned long errors = 0;
	unsigned long long end = 0;

	trace_line_scan(a, strlen(a), "00f067aa0ba902b7", &errors, &end);
	check(errors == 1 && end == 1700000000000000005ULL, "a failed child and its end", 0);
	trace_line_scan(b, strlen(b), "00f067aa0ba902b7", &errors, &end);
	check(errors == 1 && end == 1700000000000000005ULL, "an escaped look-alike is not a status", 1);
	trace_line_scan(c, strlen(c), "00f067aa0ba902b7", &errors, &end);
	check(errors == 1 && end == 1800000000000000000ULL, "another parent's failure is not counted; ends are", 2);
}

static void test_url(void)
{
	struct otlp_url u;

	check(otlp_parse_url("http://127.0.0.1:4318/v1/traces", &u) == 0 && !u.https &&
		!strcmp(u.host, "127.0.0.1") && !strcmp(u.port, "4318") && !strcmp(u.path, "/v1/traces") &&
		!strcmp(u.hostport, "127.0.0.1:4318"), "http URL", 0);
	check(otlp_parse_url("https://otel.example.com", &u) == 0 && u.https && !strcmp(u.port, "443") &&
		!strcmp(u.path, "/"), "https URL, default port and path", 1);
	check(otlp_parse_url("http://[::1]:4318/a?b=c", &u) == 0 && !strcmp(u.host, "::1") &&
		!strcmp(u.hostport, "[::1]:4318") && !strcmp(u.path, "/a?b=c"), "IPv6 host, query kept", 2);
	check(otlp_parse_url("http://h?x", &u) == 0 && !strcmp(u.path, "/?x"), "query without path", 3);
	check(otlp_parse_url("ftp://h/", &u) < 0, "other scheme refused", 0);
	check(otlp_parse_url("http://h:0/", &u) < 0, "port 0 refused", 1);
	check(otlp_parse_url("http://h:65536/", &u) < 0, "port 65536 refused", 2);
	check(otlp_parse_url("http://user@h/", &u) < 0, "user info refused", 3);
	check(otlp_parse_url("http://h/a b", &u) < 0, "space in path refused", 4);
	check(otlp_parse_url("http:///x", &u) < 0, "empty host refused", 5);
	check(otlp_parse_url("http://h/x#f", &u) < 0, "fragment refused", 6);
	check(otlp_header_ok("Authorization", 13, "Bearer x\ty"), "header accepted", 0);
	check(!otlp_header_ok("Bad Name", 8, "x"), "header name with a space refused", 1);
	check(!otlp_header_ok("X", 1, "a\r\nInjected: 1"), "header value with CR LF refused", 2);
	check(!otlp_header_ok("", 0, "x"), "empty header name refused", 3);
}

/* Starts a one-request server on 127.0.0.1; returns its port and pid. It
 * saves the request in req_file and answers answer (NULL: never). */
static int serve_once(const char *req_file, const char *answer, pid_t *pid)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	char chunk[65536];
	int s = socket(AF_INET, SOCK_STREAM, 0), c, fd;
	ssize_t r;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0)
		return -1;
	*pid = fork();
	if (*pid == 0) {
		c = accept(s, NULL, NULL);
		fd = open(req_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		/* The request is small: read until its body has arrived. */
		while ((r = read(c, chunk, sizeof chunk)) > 0) {
			(void)write_all(fd, chunk, (size_t)r);
			if (find(chunk, (size_t)r, "\"resourceSpans\":[]}", 19))
				break;
		}
		close(fd);
		if (answer)
			(void)write_all(c, answer, strlen(answer));
		else
			pause();
		_exit(0);
	}
	close(s);
	return ntohs(a.sin_port);
}

static void test_post(void)
{
	static const char body[] = "{\"resourceSpans\":[]}";
	char url[128], why[200], req[4096], *tmp = getenv("TMPDIR"), file[512];
	struct otlp_url u;
	struct buf answer = { 0, 0, 0 };
	int port, status, fd;
	ssize_t n;
	pid_t pid;

	snprintf(file, sizeof file, "%s/test_trace.req.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
	port = serve_once(file, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", &pid);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);
	otlp_parse_url(url, &u);
	status = otlp_post(&u, "application/json", "Authorization: Bearer t\r\n", body, strlen(body),
		5000, &answer, why, sizeof why);
	waitpid(pid, NULL, 0);
	check(status == 200, "POST answered 200", status);
	fd = open(file, O_RDONLY);
	n = fd >= 0 ? read(fd, req, sizeof req - 1) : -1;
	req[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	unlink(file);
	snprintf(url, sizeof url, "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", port);
	check(!strncmp(req, url, strlen(url)), "request line and Host", 0);
	check(strstr(req, "\r\nContent-Type: application/json\r\n") && strstr(req, "\r\nContent-Length: 20\r\n") &&
		strstr(req, "\r\nAuthorization: Bearer t\r\n"), "content type, length and extra header", 0);
	check(strstr(req, "\r\n\r\n{\"resourceSpans\":[]}") != NULL, "the body after the headers", 0);
	check(strstr(answer.p, "{}") != NULL, "the answer kept", 0);

	port = serve_once(file, NULL, &pid);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);
	otlp_parse_url(url, &u);
	status = otlp_post(&u, "application/json", "", body, strlen(body), 300, &answer, why, sizeof why);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(file);
	check(status == -1 && strstr(why, "timed out"), "a silent server times out", 0);
	buf_free(&answer);
}

int main(void)
{
	test_traceparent();
	test_ids();
	test_kv();
	test_line();
	test_json_scan();
	test_items();
	test_scan();
	test_url();
	test_post();
	printf("test_trace: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
