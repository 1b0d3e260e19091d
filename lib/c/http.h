/* http.h: included by tally.h; declarations with one-line contracts.
 * http.c parses HTTP/1.x request heads and builds response heads. Pure
 * functions: no I/O, no allocation except into a caller's struct buf. */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stddef.h>

struct buf;

/* Caps on what a client may send; each names the error it produces. */
#define HTTP_MAX_REQUEST_LINE 4096 /* request line + its line end; else 414 */
#define HTTP_MAX_HEAD 8192         /* request line + headers + blank line; else 431 */
#define HTTP_MAX_HEADERS 100       /* header field lines; else 431 */

/* Request methods the parser tells apart; any other token is HTTP_OTHER. */
enum http_method { HTTP_OTHER, HTTP_GET, HTTP_HEAD };

/* One parsed request head. The pointers point into the bytes given to
 * http_parse_request() and are valid only as long as those bytes are. */
struct http_request {
	enum http_method method;
	const char *method_str; /* the method token as sent, not NUL-terminated */
	size_t method_len;
	const char *target;     /* the request-target as sent, not NUL-terminated */
	size_t target_len;
	const char *path;       /* the path of target: no query, no scheme://authority */
	size_t path_len;
	int minor;              /* HTTP/1.minor: 0, or 1 for HTTP/1.1 and later 1.x */
	int keep_alive;         /* 1 when the connection may stay open after the response */
	int has_body;           /* 1 when Content-Length > 0 or Transfer-Encoding was sent */
	unsigned long long content_length; /* Content-Length, 0 when absent */
	int chunked;            /* 1 when Transfer-Encoding was sent (length unknown) */
	const char *accept;     /* value of the first Accept field, trimmed; NULL if none */
	size_t accept_len;
	const char *accept_encoding; /* value of the first Accept-Encoding field; NULL if none */
	size_t accept_encoding_len;
	const char *authorization;   /* value of the first Authorization field; NULL if none */
	size_t authorization_len;
};

/* Parses one request head from p[0..n). Returns the number of bytes it
 * takes (leading blank lines + head; a body is not read: has_body is set
 * and keep_alive cleared), 0 when more bytes are needed, or a negative
 * HTTP status: -400 malformed, -414 request line longer than
 * HTTP_MAX_REQUEST_LINE, -431 head longer than HTTP_MAX_HEAD or more than
 * HTTP_MAX_HEADERS fields, -505 an HTTP major version other than 1.
 * Lines may end in CRLF or a bare LF; a bare CR elsewhere is refused. */
int http_parse_request(const char *p, size_t n, struct http_request *req);

/* Returns the reason phrase of STATUS ("Not Found"), or "" if unknown. */
const char *http_reason(int status);

/* Appends a response head to b: "HTTP/1.1 STATUS REASON", Content-Type
 * (omitted when content_type is NULL), Content-Length, "Connection:
 * keep-alive" or "Connection: close", extra_headers verbatim (NULL or
 * complete "Name: value\r\n" lines), then the blank line. Returns 0, or -1
 * with errno EINVAL (status outside 100..599) or ENOMEM. */
int http_put_response(struct buf *b, int status, const char *content_type,
	size_t content_length, int keep_alive, const char *extra_headers);

/* Returns 1 when the Accept value v[0..n) prefers OpenMetrics 1.0.0
 * (application/openmetrics-text with version 1.0.0 or none, q > 0 and
 * not below the q of text/plain, text/ * and * / *), else 0 (text 0.0.4).
 * v NULL means no Accept field: 0. */
int http_wants_openmetrics(const char *v, size_t n);

/* Returns 1 when the Accept-Encoding value v[0..n) accepts gzip (gzip or
 * x-gzip with q > 0; or "*" with q > 0 when gzip is not named), else 0. */
int http_wants_gzip(const char *v, size_t n);

/* Appends the base64 (RFC 4648, padded) of s[0..n) to b. Returns 0, or -1
 * with errno ENOMEM. */
int http_base64(struct buf *b, const char *s, size_t n);

/* Returns 1 when a[0..an) equals b[0..bn), else 0, in time that depends
 * only on bn (the secret's length), not on where they differ. */
int http_equal_ct(const char *a, size_t an, const char *b, size_t bn);

/* Returns 1 when the Authorization value v[0..n) is "Basic TOKEN" (scheme
 * in any case) with TOKEN equal to want[0..wn) (compared with
 * http_equal_ct), else 0. */
int http_basic_ok(const char *v, size_t n, const char *want, size_t wn);

#endif
