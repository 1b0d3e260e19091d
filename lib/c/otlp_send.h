/* otlp_send.h: declarations with one-line contracts (to be included by
 * tally.h).
 *
 * otlp_send.c: the client side of OTLP/HTTP
 * (https://opentelemetry.io/docs/specs/otlp/#otlphttp): one POST of a body
 * over plain HTTP/1.1 on TCP, with one overall time limit, as probe.c
 * does for GET. https:// URLs are parsed (so the caller can hand them to
 * curl) but not spoken here. No output, no exit. */
#ifndef TALLY_OTLP_SEND_H
#define TALLY_OTLP_SEND_H

#include <stddef.h>

struct buf;

#define OTLP_MAX_URL 2048          /* bytes of an endpoint URL; longer: refused */
#define OTLP_MAX_ANSWER 65536      /* bytes of an answer kept; the rest is not read */
#define OTLP_MAX_HEADERS 16384     /* bytes of the extra header lines; more: refused */

/* A parsed endpoint URL. */
struct otlp_url {
	int https;                  /* 1 for https://, 0 for http:// */
	char host[256];             /* without brackets for IPv6 */
	char port[8];               /* decimal; 80 or 443 when absent */
	char hostport[272];         /* the Host header value, as written in the URL */
	char path[OTLP_MAX_URL + 1];  /* "/" when absent; the query kept */
};

/* Parses "http[s]://HOST[:PORT][/PATH]" (HOST a name, IPv4 or [IPv6]; no
 * user info, no fragment, no spaces or control bytes). Returns 0, or -1
 * with errno EINVAL. */
int otlp_parse_url(const char *url, struct otlp_url *u);
/* Returns 1 when name[0..n) is an HTTP header name (RFC 9110 token) and
 * value is a header value without control bytes (tab allowed), else 0. */
int otlp_header_ok(const char *name, size_t n, const char *value);
/* POSTs body[0..n) to the http:// URL u with "Content-Type: type" and the
 * header lines extra (each "Name: value\r\n", already checked), within
 * timeout_ms milliseconds in all. The answer (status line, headers, body;
 * at most OTLP_MAX_ANSWER bytes) is put in answer. Returns the HTTP status
 * code; or -1 with the reason in why (NUL-terminated, cut to whylen) when
 * there was no HTTP answer (cannot resolve, connect, send; timed out). */
int otlp_post(const struct otlp_url *u, const char *type, const char *extra,
	const char *body, size_t n, int timeout_ms, struct buf *answer,
	char *why, size_t whylen);

#endif
