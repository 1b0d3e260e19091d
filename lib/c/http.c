/* http.c: HTTP/1.x request-head parsing and response heads (RFC 9112).
 * Pure functions: no I/O, so they can be unit-tested and fuzzed. */
#include <errno.h>
#include <string.h>

#include "tally.h"

/* Byte classes: token characters (method, field names), bytes allowed in a
 * field value (VCHAR, obs-text, SP, HTAB) and in a request-target (VCHAR). */
#define C_TCHAR 1
#define C_VALUE 2
#define C_TARGET 4
#define V C_VALUE
#define VG (C_VALUE | C_TARGET)
#define TVG (C_TCHAR | C_VALUE | C_TARGET)
static const unsigned char byte_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,   /* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x10 */
	V, TVG, VG, TVG, TVG, TVG, TVG, TVG, VG, VG, TVG, TVG, VG, TVG, TVG, VG,   /* 0x20 */
	TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, VG, VG, VG, VG, VG, VG,   /* 0x30 */
	VG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG,   /* 0x40 */
	TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, VG, VG, VG, TVG, TVG,   /* 0x50 */
	TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG,   /* 0x60 */
	TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, TVG, VG, TVG, VG, TVG, 0,   /* 0x70 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0x80 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0x90 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xA0 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xB0 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xC0 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xD0 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xE0 */
	V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,   /* 0xF0 */
};
#undef V
#undef VG
#undef TVG

/* Returns nonzero if byte c is in every class of mask. */
static int is(char c, int mask)
{
	return (byte_class[(unsigned char)c] & mask) == mask;
}

/* Returns 1 if s[0..n) equals the lowercase literal lit, ignoring ASCII case. */
static int ieq(const char *s, size_t n, const char *lit)
{
	size_t i;
	char c;

	for (i = 0; i < n; i++) {
		if (!lit[i])
			return 0;
		c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return 0;
	}
	return lit[n] == '\0';
}

/* Finds the line starting at i within p[0..lim): sets *end to its content
 * end (before CRLF or LF) and *next past its LF. Returns 0 if no LF yet. */
static int find_line(const char *p, size_t i, size_t lim, size_t *end,
	size_t *next)
{
	const char *lf = memchr(p + i, '\n', lim - i);
	size_t j;

	if (!lf)
		return 0;
	j = (size_t)(lf - p);
	*next = j + 1;
	*end = (j > i && p[j - 1] == '\r') ? j - 1 : j;
	return 1;
}

/* Refuses early an incomplete request line whose method is already bad:
 * returns -400 if p[i..lim) cannot begin a request line, else 0. */
static int check_partial_method(const char *p, size_t i, size_t lim)
{
	size_t k;

	for (k = i; k < lim; k++) {
		if (p[k] == ' ')
			return k == i ? -400 : 0;
		if (is(p[k], C_TCHAR))
			continue;
		if (p[k] == '\r' && k + 1 == lim)
			return 0; /* maybe the CR of a leading CRLF */
		return -400;
	}
	return 0;
}

/* Sets req->path from req->target (origin, asterisk or absolute form).
 * Returns 0, or -400 if the target has none of these forms. */
static int set_path(struct http_request *req)
{
	const char *t = req->target, *q;
	size_t n = req->target_len, i;

	if (t[0] == '/') {
		q = memchr(t, '?', n);
		req->path = t;
		req->path_len = q ? (size_t)(q - t) : n;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		req->path = t;
		req->path_len = 1;
		return 0;
	}
	/* absolute-form: scheme "://" authority [path] ["?" query] */
	for (i = 0; i < n && is(t[i], C_TCHAR) && t[i] != ':'; i++)
		;
	if (i == 0 || n - i < 3 || memcmp(t + i, "://", 3) != 0)
		return -400;
	for (i += 3; i < n && t[i] != '/' && t[i] != '?'; i++)
		;
	if (i < n && t[i] == '/') {
		q = memchr(t + i, '?', n - i);
		req->path = t + i;
		req->path_len = q ? (size_t)(q - (t + i)) : n - i;
	} else {
		req->path = "/";
		req->path_len = 1;
	}
	return 0;
}

/* Parses the request line p[s..e) into req. Returns 0 or a negative status. */
static int parse_request_line(const char *p, size_t s, size_t e,
	struct http_request *req)
{
	size_t k, t, v;

	for (k = s; k < e && is(p[k], C_TCHAR); k++)
		;
	if (k == s || k == e || p[k] != ' ')
		return -400;
	req->method_str = p + s;
	req->method_len = k - s;
	if (k - s == 3 && memcmp(p + s, "GET", 3) == 0)
		req->method = HTTP_GET;
	else if (k - s == 4 && memcmp(p + s, "HEAD", 4) == 0)
		req->method = HTTP_HEAD;
	else
		req->method = HTTP_OTHER;

	for (t = k + 1; t < e && p[t] != ' '; t++)
		if (!is(p[t], C_TARGET))
			return -400;
	if (t == k + 1 || t == e)
		return -400; /* empty target, or no version (HTTP/0.9) */
	req->target = p + k + 1;
	req->target_len = t - (k + 1);

	v = t + 1;
	if (e - v != 8 || memcmp(p + v, "HTTP/", 5) != 0 ||
	    p[v + 5] < '0' || p[v + 5] > '9' || p[v + 6] != '.' ||
	    p[v + 7] < '0' || p[v + 7] > '9')
		return -400;
	if (p[v + 5] != '1')
		return -505;
	req->minor = p[v + 7] == '0' ? 0 : 1;
	return set_path(req);
}

/* What the header fields say about the connection and the body. */
struct head_state {
	struct http_request *req;
	int conn_close;
	int conn_keep_alive;
	int have_length;
	unsigned long long length;
	int chunked_or_te;
};

/* Records the tokens of one Connection field value v[0..n). */
static void parse_connection(const char *v, size_t n, struct head_state *st)
{
	size_t i = 0, a, b;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		a = i;
		while (i < n && v[i] != ',')
			i++;
		b = i;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (ieq(v + a, b - a, "close"))
			st->conn_close = 1;
		else if (ieq(v + a, b - a, "keep-alive"))
			st->conn_keep_alive = 1;
	}
}

/* Records one Content-Length value v[0..n). Returns 0, or -400 if it is not
 * 1*DIGIT, overflows, or differs from an earlier Content-Length. */
static int parse_length(const char *v, size_t n, struct head_state *st)
{
	unsigned long long x = 0;
	size_t i;

	if (n == 0)
		return -400;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -400;
		if (x > (~0ULL - 9) / 10)
			return -400;
		x = x * 10 + (unsigned long long)(v[i] - '0');
	}
	if (st->have_length && st->length != x)
		return -400;
	st->have_length = 1;
	st->length = x;
	return 0;
}

/* Parses the header field line p[s..e). Returns 0 or a negative status. */
static int parse_field(const char *p, size_t s, size_t e, struct head_state *st)
{
	size_t k, vs, ve, i;

	if (p[s] == ' ' || p[s] == '\t')
		return -400; /* obs-fold (RFC 9112 5.2) or whitespace before a name */
	for (k = s; k < e && is(p[k], C_TCHAR); k++)
		;
	if (k == s || k == e || p[k] != ':')
		return -400; /* no name, no colon, or whitespace before the colon */
	for (vs = k + 1; vs < e && (p[vs] == ' ' || p[vs] == '\t'); vs++)
		;
	for (ve = e; ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'); ve--)
		;
	for (i = vs; i < ve; i++)
		if (!is(p[i], C_VALUE))
			return -400;
	if (ieq(p + s, k - s, "connection"))
		parse_connection(p + vs, ve - vs, st);
	else if (ieq(p + s, k - s, "content-length"))
		return parse_length(p + vs, ve - vs, st);
	else if (ieq(p + s, k - s, "transfer-encoding"))
		st->chunked_or_te = 1;
	else if (ieq(p + s, k - s, "accept") && !st->req->accept) {
		st->req->accept = p + vs;
		st->req->accept_len = ve - vs;
	} else if (ieq(p + s, k - s, "accept-encoding") && !st->req->accept_encoding) {
		st->req->accept_encoding = p + vs;
		st->req->accept_encoding_len = ve - vs;
	} else if (ieq(p + s, k - s, "authorization") && !st->req->authorization) {
		st->req->authorization = p + vs;
		st->req->authorization_len = ve - vs;
	}
	return 0;
}

int http_parse_request(const char *p, size_t n, struct http_request *req)
{
	size_t lim = n < HTTP_MAX_HEAD ? n : HTTP_MAX_HEAD;
	size_t i = 0, start, end, next;
	struct head_state st;
	int rc, fields = 0;

	memset(req, 0, sizeof *req);
	memset(&st, 0, sizeof st);
	st.req = req;

	/* RFC 9112 2.2: ignore empty lines before the request line. */
	for (;;) {
		if (!find_line(p, i, lim, &end, &next)) {
			if (lim - i >= HTTP_MAX_REQUEST_LINE)
				return -414;
			if (n >= HTTP_MAX_HEAD)
				return -431;
			return check_partial_method(p, i, lim);
		}
		if (end != i)
			break;
		i = next;
	}
	start = i;
	if (next - start > HTTP_MAX_REQUEST_LINE)
		return -414;
	rc = parse_request_line(p, start, end, req);
	if (rc < 0)
		return rc;
	i = next;

	for (;;) {
		if (!find_line(p, i, lim, &end, &next))
			return n >= HTTP_MAX_HEAD ? -431 : 0;
		if (end == i)
			break;
		if (++fields > HTTP_MAX_HEADERS)
			return -431;
		rc = parse_field(p, i, end, &st);
		if (rc < 0)
			return rc;
		i = next;
	}

	req->has_body = st.chunked_or_te || (st.have_length && st.length > 0);
	req->chunked = st.chunked_or_te;
	req->content_length = st.have_length ? st.length : 0;
	if (req->minor >= 1)
		req->keep_alive = !st.conn_close;
	else
		req->keep_alive = st.conn_keep_alive && !st.conn_close;
	if (req->has_body)
		req->keep_alive = 0;
	return (int)next;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

int http_put_response(struct buf *b, int status, const char *content_type,
	size_t content_length, int keep_alive, const char *extra_headers)
{
	size_t old = b->len;

	if (status < 100 || status > 599) {
		errno = EINVAL;
		return -1;
	}
	if (buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_reason(status)) < 0)
		goto out_truncate;
	if (content_type &&
	    buf_printf(b, "Content-Type: %s\r\n", content_type) < 0)
		goto out_truncate;
	if (buf_printf(b, "Content-Length: %zu\r\n", content_length) < 0)
		goto out_truncate;
	if (buf_puts(b, keep_alive ? "Connection: keep-alive\r\n"
	                           : "Connection: close\r\n") < 0)
		goto out_truncate;
	if (extra_headers && buf_puts(b, extra_headers) < 0)
		goto out_truncate;
	if (buf_puts(b, "\r\n") < 0)
		goto out_truncate;
	return 0;

out_truncate:
	b->len = old;
	if (b->cap)
		b->p[old] = '\0';
	return -1;
}

/* One element of a comma-separated list: the token before ';' and q in
 * thousandths (1000 when absent, -1 when malformed). */
struct list_item {
	const char *tok;
	size_t tok_len;
	const char *params;   /* after the token, up to the element's end */
	size_t params_len;
	int q;
};

/* Returns 1 for space or tab. */
static int ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Parses a qvalue ("0", "0.5", "1.000") from s[0..n). Returns it in
 * thousandths, or -1 if malformed. */
static int parse_q(const char *s, size_t n)
{
	int q, scale = 100;
	size_t i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* Finds parameter name (lowercase) in params p[0..n) (";a=b;c=d");
 * sets *val, *vn to its value without quotes. Returns 1 if found. */
static int find_param(const char *p, size_t n, const char *name, const char **val,
	size_t *vn)
{
	size_t i = 0, a, b, e;

	while (i < n) {
		while (i < n && (ows(p[i]) || p[i] == ';'))
			i++;
		a = i;
		while (i < n && p[i] != '=' && p[i] != ';')
			i++;
		b = i;
		while (b > a && ows(p[b - 1]))
			b--;
		if (i < n && p[i] == '=') {
			i++;
			while (i < n && ows(p[i]))
				i++;
			e = i;
			if (i < n && p[i] == '"') {
				e = ++i;
				while (i < n && p[i] != '"')
					i++;
				*vn = i - e;
				if (i < n)
					i++;
			} else {
				while (i < n && p[i] != ';')
					i++;
				*vn = i - e;
				while (*vn && ows(p[e + *vn - 1]))
					(*vn)--;
			}
			if (ieq(p + a, b - a, name)) {
				*val = p + e;
				return 1;
			}
		}
		while (i < n && p[i] != ';')
			i++;
	}
	return 0;
}

/* Reads the element of list v[0..n) starting at *i into it and moves *i
 * past it. Returns 0 at the end of the list. */
static int next_item(const char *v, size_t n, size_t *i, struct list_item *it)
{
	size_t a, b, e;
	const char *qv;
	size_t qn;

	while (*i < n && (ows(v[*i]) || v[*i] == ','))
		(*i)++;
	if (*i >= n)
		return 0;
	a = *i;
	while (*i < n && v[*i] != ',') {
		if (v[*i] == '"') { /* a quoted parameter may hold a comma */
			(*i)++;
			while (*i < n && v[*i] != '"')
				(*i)++;
		}
		if (*i < n)
			(*i)++;
	}
	e = *i;
	for (b = a; b < e && v[b] != ';'; b++)
		;
	it->tok = v + a;
	it->tok_len = b - a;
	while (it->tok_len && ows(it->tok[it->tok_len - 1]))
		it->tok_len--;
	it->params = v + b;
	it->params_len = e - b;
	it->q = 1000;
	if (find_param(it->params, it->params_len, "q", &qv, &qn))
		it->q = parse_q(qv, qn);
	return 1;
}

int http_wants_openmetrics(const char *v, size_t n)
{
	struct list_item it;
	size_t i = 0;
	int om = 0, text = 0;
	const char *ver;
	size_t vn;

	if (!v)
		return 0;
	while (next_item(v, n, &i, &it)) {
		if (it.q <= 0)
			continue;
		if (ieq(it.tok, it.tok_len, "application/openmetrics-text")) {
			if (find_param(it.params, it.params_len, "version", &ver, &vn) &&
			    !(vn == 5 && !memcmp(ver, "1.0.0", 5)))
				continue;
			if (it.q > om)
				om = it.q;
		} else if (ieq(it.tok, it.tok_len, "text/plain") ||
		           ieq(it.tok, it.tok_len, "text/*") ||
		           ieq(it.tok, it.tok_len, "*/*")) {
			if (it.q > text)
				text = it.q;
		}
	}
	return om > 0 && om >= text;
}

int http_wants_gzip(const char *v, size_t n)
{
	struct list_item it;
	size_t i = 0;
	int gzip = -1, star = -1;

	if (!v)
		return 0;
	while (next_item(v, n, &i, &it)) {
		int q = it.q < 0 ? 0 : it.q;

		if (ieq(it.tok, it.tok_len, "gzip") || ieq(it.tok, it.tok_len, "x-gzip")) {
			if (q > gzip)
				gzip = q;
		} else if (it.tok_len == 1 && it.tok[0] == '*') {
			if (q > star)
				star = q;
		}
	}
	if (gzip >= 0)
		return gzip > 0;
	return star > 0;
}

int http_base64(struct buf *b, const char *s, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *u = (const unsigned char *)s;
	char q[4];
	size_t i;

	if (buf_put(b, "", 0) < 0)
		return -1;
	for (i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)u[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (unsigned long)u[i + 1] << 8;
		if (left > 2)
			v |= u[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = left > 1 ? tab[(v >> 6) & 63] : '=';
		q[3] = left > 2 ? tab[v & 63] : '=';
		if (buf_put(b, q, 4) < 0)
			return -1;
	}
	return 0;
}

int http_equal_ct(const char *a, size_t an, const char *b, size_t bn)
{
	volatile unsigned char diff = an != bn;
	size_t i;

	for (i = 0; i < bn; i++)
		diff |= (unsigned char)(b[i] ^ (i < an ? a[i] : 0));
	return diff == 0;
}

int http_basic_ok(const char *v, size_t n, const char *want, size_t wn)
{
	size_t i = 0;

	if (!v || n < 6 || !ieq(v, 5, "basic") || !ows(v[5]))
		return 0;
	for (i = 5; i < n && ows(v[i]); i++)
		;
	return http_equal_ct(v + i, n - i, want, wn);
}
