/* trace.c: W3C traceparent values, random ids, key=value lists and the
 * OTLP/JSON lines of the OpenTelemetry file exporter. The contracts are in
 * trace.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "tally.h"
#include "trace.h"

/* The error sentinel of the scanner's offsets. */
#define BAD ((size_t)-1)

static const char hexdig[16] = "0123456789abcdef";

/* Returns the value of lowercase hex digit c, or -1. */
static int hexval_lc(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Returns the value of hex digit c (either case), or -1. */
static int hexval(unsigned char c)
{
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : hexval_lc(c);
}

int trace_hex_id_ok(const char *s, size_t n)
{
	size_t i;
	int nonzero = 0;

	for (i = 0; i < n; i++) {
		if (hexval_lc((unsigned char)s[i]) < 0)
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

int trace_parse_traceparent(const char *s, size_t n, struct trace_ctx *c)
{
	int v0, v1, f0, f1;

	if (n < TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
		goto bad;
	v0 = hexval_lc((unsigned char)s[0]);
	v1 = hexval_lc((unsigned char)s[1]);
	if (v0 < 0 || v1 < 0 || (v0 == 15 && v1 == 15))
		goto bad;
	/* Version 00 is exactly 55 characters; a later one may carry more
	 * after a '-' (https://www.w3.org/TR/trace-context/#versioning-of-traceparent). */
	if (v0 == 0 && v1 == 0 ? n != TRACEPARENT_LEN : n > TRACEPARENT_LEN && s[55] != '-')
		goto bad;
	if (!trace_hex_id_ok(s + 3, TRACE_ID_HEX) || !trace_hex_id_ok(s + 36, SPAN_ID_HEX))
		goto bad;
	f0 = hexval_lc((unsigned char)s[53]);
	f1 = hexval_lc((unsigned char)s[54]);
	if (f0 < 0 || f1 < 0)
		goto bad;
	memcpy(c->trace_id, s + 3, TRACE_ID_HEX);
	c->trace_id[TRACE_ID_HEX] = '\0';
	memcpy(c->span_id, s + 36, SPAN_ID_HEX);
	c->span_id[SPAN_ID_HEX] = '\0';
	c->flags = (unsigned)(f0 * 16 + f1);
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

void trace_format_traceparent(const struct trace_ctx *c, char out[TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	memcpy(out + 3, c->trace_id, TRACE_ID_HEX);
	out[35] = '-';
	memcpy(out + 36, c->span_id, SPAN_ID_HEX);
	out[52] = '-';
	out[53] = hexdig[(c->flags >> 4) & 15];
	out[54] = hexdig[c->flags & 15];
	out[55] = '\0';
}

/* Fills p[0..n) from /dev/urandom. Returns 0, or -1 with errno set. */
static int urandom(unsigned char *p, size_t n)
{
	ssize_t r;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC), saved;

	if (fd < 0)
		return -1;
	while (n) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			saved = r < 0 ? errno : EIO;
			close(fd);
			errno = saved;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	close(fd);
	return 0;
}

int trace_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	ssize_t r;

	while (n) {
		r = getrandom(p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return urandom(p, n);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int trace_new_id(char *hex, size_t nbytes)
{
	unsigned char raw[32];
	size_t i;
	int tries;

	if (nbytes == 0 || nbytes > sizeof raw) {
		errno = EINVAL;
		return -1;
	}
	/* All zeros is the invalid id; draw again (2^-64 at worst). */
	for (tries = 0; tries < 4; tries++) {
		if (trace_random(raw, nbytes) < 0)
			return -1;
		for (i = 0; i < nbytes && !raw[i]; i++)
			;
		if (i < nbytes)
			break;
	}
	if (i == nbytes)
		raw[nbytes - 1] = 1;
	for (i = 0; i < nbytes; i++) {
		hex[2 * i] = hexdig[raw[i] >> 4];
		hex[2 * i + 1] = hexdig[raw[i] & 15];
	}
	hex[2 * nbytes] = '\0';
	return 0;
}

/* ---- key=value lists ------------------------------------------------------ */

/* Writes "WHAT" or "WHAT: \"ARG\"" (arg[0..n), at most 64 bytes) into
 * why. Returns -1 with errno EINVAL. */
static int kv_refuse(char *why, size_t whylen, const char *what, const char *arg, size_t n)
{
	if (whylen && arg)
		snprintf(why, whylen, "%s: \"%.*s\"", what, (int)(n > 64 ? 64 : n), arg);
	else if (whylen)
		snprintf(why, whylen, "%s", what);
	errno = EINVAL;
	return -1;
}

/* Narrows s[*a..*e) by the spaces and tabs at both ends. */
static void trim(const char *s, size_t *a, size_t *e)
{
	while (*a < *e && (s[*a] == ' ' || s[*a] == '\t'))
		(*a)++;
	while (*e > *a && (s[*e - 1] == ' ' || s[*e - 1] == '\t'))
		(*e)--;
}

int trace_kv_parse(const char *s, struct trace_kv *kv, size_t max, struct buf *store,
	char *why, size_t whylen)
{
	size_t n = strlen(s), at = 0, end, eq, ka, ke, va, ve, i, j, off[2 * TRACE_MAX_KV];
	size_t count = 0, k;
	int h1, h2;

	if (whylen)
		why[0] = '\0';
	if (n > TRACE_MAX_KV_TEXT)
		return kv_refuse(why, whylen, "longer than TRACE_MAX_KV_TEXT (8192) bytes", NULL, 0);
	if (max > TRACE_MAX_KV)
		max = TRACE_MAX_KV;
	buf_reset(store);
	while (at <= n) {
		end = at;
		while (end < n && s[end] != ',')
			end++;
		ka = at;
		ve = end;
		at = end + 1;
		trim(s, &ka, &ve);
		if (ka == ve)
			continue;
		for (eq = ka; eq < ve && s[eq] != '='; eq++)
			;
		if (eq == ve)
			return kv_refuse(why, whylen, "member without '='", s + ka, ve - ka);
		ke = eq;
		va = eq + 1;
		trim(s, &ka, &ke);
		trim(s, &va, &ve);
		if (ka == ke)
			return kv_refuse(why, whylen, "member with an empty key", s + eq, ve - eq);
		for (i = ka; i < ke; i++)
			if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
				return kv_refuse(why, whylen, "key with a space or a byte outside printable ASCII",
					s + ka, ke - ka);
		if (count == max)
			return kv_refuse(why, whylen, "more than TRACE_MAX_KV (64) members", NULL, 0);
		off[2 * count] = store->len;
		if (buf_put(store, s + ka, ke - ka) < 0 || buf_putc(store, '\0') < 0)
			return -1;
		off[2 * count + 1] = store->len;
		for (i = va; i < ve; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '%') {
				h1 = i + 1 < ve ? hexval((unsigned char)s[i + 1]) : -1;
				h2 = i + 2 < ve ? hexval((unsigned char)s[i + 2]) : -1;
				if (h1 < 0 || h2 < 0)
					return kv_refuse(why, whylen, "bad %XX escape in the value of key",
						s + ka, ke - ka);
				c = (unsigned char)(h1 * 16 + h2);
				i += 2;
			}
			if (buf_putc(store, (char)c) < 0)
				return -1;
		}
		if (buf_putc(store, '\0') < 0)
			return -1;
		/* A repeated key: the later value wins, in the earlier place. */
		for (j = 0; j < count; j++)
			if (!strcmp(store->p + off[2 * j], store->p + off[2 * count]))
				break;
		if (j < count)
			off[2 * j + 1] = off[2 * count + 1];
		else
			count++;
	}
	for (k = 0; k < count; k++) {
		kv[k].key = store->p + off[2 * k];
		kv[k].value = store->p + off[2 * k + 1];
	}
	return (int)count;
}

/* ---- OTLP/JSON output ------------------------------------------------------- */

/* Appends a JSON string of the NUL-terminated s. Returns 0, or -1 (ENOMEM). */
static int put_str(struct buf *b, const char *s)
{
	return json_put_string(b, s, strlen(s));
}

/* Appends one AnyValue of a. Returns 0, or -1 with errno ENOMEM. */
static int put_any(struct buf *b, const struct trace_attr *a)
{
	size_t i;

	switch (a->type) {
	case TRACE_ATTR_STRING:
		return buf_puts(b, "{\"stringValue\":") < 0 ||
			json_put_string(b, a->s ? a->s : "", a->s ? a->sn : 0) < 0 ||
			buf_putc(b, '}') < 0 ? -1 : 0;
	case TRACE_ATTR_INT:
		/* int64 is a decimal string in the protobuf JSON mapping. */
		return buf_printf(b, "{\"intValue\":\"%lld\"}", a->i);
	case TRACE_ATTR_BOOL:
		return buf_puts(b, a->i ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
	case TRACE_ATTR_DOUBLE:
		if (!isfinite(a->d))
			return buf_puts(b, a->d != a->d ? "{\"doubleValue\":\"NaN\"}" :
				a->d > 0 ? "{\"doubleValue\":\"Infinity\"}" : "{\"doubleValue\":\"-Infinity\"}");
		return buf_printf(b, "{\"doubleValue\":%.17g}", a->d);
	case TRACE_ATTR_STRING_ARRAY:
		if (buf_puts(b, "{\"arrayValue\":{\"values\":[") < 0)
			return -1;
		for (i = 0; i < a->narr; i++)
			if ((i && buf_putc(b, ',') < 0) || buf_puts(b, "{\"stringValue\":") < 0 ||
			    put_str(b, a->arr[i]) < 0 || buf_putc(b, '}') < 0)
				return -1;
		return buf_puts(b, "]}}");
	}
	return 0;
}

/* Appends the KeyValues of a[0..n), comma-separated, without brackets;
 * a comma first when comma is set. Returns 0, or -1 with errno ENOMEM. */
static int put_kvs(struct buf *b, const struct trace_attr *a, size_t n, int comma)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (((comma || i) && buf_putc(b, ',') < 0) || buf_puts(b, "{\"key\":") < 0 ||
		    put_str(b, a[i].key) < 0 || buf_puts(b, ",\"value\":") < 0 ||
		    put_any(b, &a[i]) < 0 || buf_putc(b, '}') < 0)
			return -1;
	}
	return 0;
}

int trace_put_attrs(struct buf *b, const struct trace_attr *a, size_t n)
{
	if (buf_putc(b, '[') < 0 || put_kvs(b, a, n, 0) < 0)
		return -1;
	return buf_putc(b, ']');
}

/* Appends one Span object. Returns 0, or -1 with errno ENOMEM. */
static int put_span(struct buf *b, const struct trace_span *s)
{
	if (buf_printf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", s->trace_id, s->span_id) < 0)
		return -1;
	if (s->parent_span_id && *s->parent_span_id &&
	    buf_printf(b, ",\"parentSpanId\":\"%s\"", s->parent_span_id) < 0)
		return -1;
	if (buf_puts(b, ",\"name\":") < 0 || put_str(b, s->name ? s->name : "") < 0 ||
	    buf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\"",
	    s->kind, s->start_ns, s->end_ns) < 0)
		return -1;
	if (s->nattrs && (buf_puts(b, ",\"attributes\":") < 0 ||
	    trace_put_attrs(b, s->attrs, s->nattrs) < 0))
		return -1;
	if (s->status != TRACE_STATUS_UNSET) {
		if (buf_printf(b, ",\"status\":{\"code\":%d", s->status) < 0)
			return -1;
		if (s->status_message && *s->status_message &&
		    (buf_puts(b, ",\"message\":") < 0 || put_str(b, s->status_message) < 0))
			return -1;
		if (buf_putc(b, '}') < 0)
			return -1;
	}
	return buf_putc(b, '}');
}

int trace_put_line(struct buf *b, const struct trace_attr *res, size_t nres,
	const char *scope_name, const char *scope_version,
	const struct trace_span *spans, size_t n)
{
	size_t i;

	if (buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":") < 0 ||
	    trace_put_attrs(b, res, nres) < 0 ||
	    buf_puts(b, "},\"scopeSpans\":[{\"scope\":{\"name\":") < 0 ||
	    put_str(b, scope_name) < 0)
		return -1;
	if (scope_version && *scope_version &&
	    (buf_puts(b, ",\"version\":") < 0 || put_str(b, scope_version) < 0))
		return -1;
	if (buf_puts(b, "},\"spans\":[") < 0)
		return -1;
	for (i = 0; i < n; i++)
		if ((i && buf_putc(b, ',') < 0) || put_span(b, &spans[i]) < 0)
			return -1;
	return buf_puts(b, "]}]}]}\n");
}

int trace_env_resource(struct trace_attr *res, size_t max, struct buf *store,
	char *why, size_t whylen)
{
	struct trace_kv kv[TRACE_MAX_KV];
	const char *svc = getenv("OTEL_SERVICE_NAME"), *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");
	int n = 0, i, k = 1;

	if (whylen)
		why[0] = '\0';
	if (ra && *ra) {
		n = trace_kv_parse(ra, kv, TRACE_MAX_KV, store, why, whylen);
		if (n < 0 && errno == ENOMEM)
			return -1;
		if (n < 0)
			n = 0;
	}
	memset(res, 0, max * sizeof *res);
	res[0].key = "service.name";
	res[0].type = TRACE_ATTR_STRING;
	res[0].s = TRACE_DEFAULT_SERVICE;
	for (i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "service.name")) {
			res[0].s = kv[i].value;
			continue;
		}
		if ((size_t)k == max)
			break;
		res[k].key = kv[i].key;
		res[k].type = TRACE_ATTR_STRING;
		res[k].s = kv[i].value;
		res[k].sn = strlen(kv[i].value);
		k++;
	}
	if (svc && *svc)
		res[0].s = svc;
	res[0].sn = strlen(res[0].s);
	return k;
}

int trace_append(const char *path, const char *line, size_t n)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644), saved;

	if (fd < 0)
		return -1;
	if (append_lines(fd, line, n) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* ---- the scanner ------------------------------------------------------------- */

/* Returns i advanced past JSON whitespace. */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* s[i] is '"': returns the offset after the closing quote, or BAD. */
static size_t scan_string(const char *s, size_t i, size_t n)
{
	size_t start = ++i, k;
	unsigned char c;

	while (i < n) {
		c = (unsigned char)s[i];
		if (c < 0x20)
			return BAD;
		if (c == '"')
			return prom_utf8_ok(s + start, i - start) ? i + 1 : BAD;
		if (c != '\\') {
			i++;
			continue;
		}
		if (++i >= n)
			return BAD;
		c = (unsigned char)s[i];
		if (c == 'u') {
			for (k = 1; k <= 4; k++)
				if (i + k >= n || hexval((unsigned char)s[i + k]) < 0)
					return BAD;
			i += 5;
		} else if (strchr("\"\\/bfnrt", c) && c) {
			i++;
		} else {
			return BAD;
		}
	}
	return BAD;
}

/* Returns i advanced past one or more digits, or BAD if none. */
static size_t scan_digits(const char *s, size_t i, size_t n)
{
	size_t start = i;

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i == start ? BAD : i;
}

/* s[i] starts a number: returns the offset after it, or BAD. */
static size_t scan_number(const char *s, size_t i, size_t n)
{
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if ((i = scan_digits(s, i, n)) == BAD)
		return BAD;
	if (i < n && s[i] == '.' && (i = scan_digits(s, i + 1, n)) == BAD)
		return BAD;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if ((i = scan_digits(s, i, n)) == BAD)
			return BAD;
	}
	return i;
}

/* Returns the offset after the JSON value at s[i] (no whitespace before
 * it), or BAD. */
static size_t scan_value(const char *s, size_t i, size_t n, int depth)
{
	char close;

	if (i >= n)
		return BAD;
	switch (s[i]) {
	case '"':
		return scan_string(s, i, n);
	case 't':
		return n - i >= 4 && !memcmp(s + i, "true", 4) ? i + 4 : BAD;
	case 'f':
		return n - i >= 5 && !memcmp(s + i, "false", 5) ? i + 5 : BAD;
	case 'n':
		return n - i >= 4 && !memcmp(s + i, "null", 4) ? i + 4 : BAD;
	case '{':
	case '[':
		break;
	default:
		return s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ? scan_number(s, i, n) : BAD;
	}
	if (depth >= TRACE_MAX_JSON_DEPTH)
		return BAD;
	close = s[i] == '{' ? '}' : ']';
	i = skip_ws(s, i + 1, n);
	if (i < n && s[i] == close)
		return i + 1;
	for (;;) {
		if (close == '}') {
			if (i >= n || s[i] != '"' || (i = scan_string(s, i, n)) == BAD)
				return BAD;
			i = skip_ws(s, i, n);
			if (i >= n || s[i] != ':')
				return BAD;
			i = skip_ws(s, i + 1, n);
		}
		if ((i = scan_value(s, i, n, depth + 1)) == BAD)
			return BAD;
		i = skip_ws(s, i, n);
		if (i >= n)
			return BAD;
		if (s[i] == close)
			return i + 1;
		if (s[i] != ',')
			return BAD;
		i = skip_ws(s, i + 1, n);
	}
}

size_t trace_json_value_len(const char *s, size_t n)
{
	size_t i = scan_value(s, skip_ws(s, 0, n), n, 0);

	return i == BAD ? 0 : skip_ws(s, i, n);
}

/* One member of an object: the key (quotes included) at ks..ke, the
 * value at vs..ve. */
struct member {
	size_t ks, ke, vs, ve;
};

/* Reads the next member of the (already validated) object whose members
 * continue at *i (just after '{' or a member). Returns 1 with m filled, 0
 * at the closing '}' (*i then after it). */
static int next_member(const char *s, size_t n, size_t *i, struct member *m)
{
	size_t k = skip_ws(s, *i, n);

	if (k < n && s[k] == ',')
		k = skip_ws(s, k + 1, n);
	if (k >= n || s[k] == '}') {
		*i = k + 1;
		return 0;
	}
	m->ks = k;
	m->ke = scan_string(s, k, n);
	k = skip_ws(s, skip_ws(s, m->ke, n) + 1, n);
	m->vs = k;
	m->ve = scan_value(s, k, n, 0);
	*i = m->ve;
	return 1;
}

/* Returns 1 when the key of m is exactly the JSON string "name". */
static int key_is(const char *s, const struct member *m, const char *name)
{
	size_t n = strlen(name);

	return m->ke - m->ks == n + 2 && !memcmp(s + m->ks + 1, name, n);
}

/* Appends the KeyValue items of the array s[a..e) whose "key" is not the
 * key of one of over[0..nover), comma-separated; sets *any when one was
 * appended. Returns 0, or -1 with errno EINVAL or ENOMEM. */
static int keep_attrs(const char *s, size_t a, size_t e, const struct trace_attr *over,
	size_t nover, struct buf *out, int *any)
{
	struct buf esc = { 0, 0, 0 };
	struct member m;
	size_t i = skip_ws(s, a + 1, e), item, j, o;
	int drop, rc = -1;

	while (i < e && s[i] != ']') {
		item = i;
		i = scan_value(s, i, e, 0);
		if (s[item] != '{')
			goto bad;
		drop = 0;
		o = item + 1;
		while (next_member(s, i, &o, &m))
			if (key_is(s, &m, "key") && s[m.vs] == '"')
				for (j = 0; j < nover && !drop; j++) {
					buf_reset(&esc);
					if (put_str(&esc, over[j].key) < 0)
						goto out;
					drop = esc.len == m.ve - m.vs && !memcmp(esc.p, s + m.vs, esc.len);
				}
		if (!drop) {
			if ((*any && buf_putc(out, ',') < 0) || buf_put(out, s + item, i - item) < 0)
				goto out;
			*any = 1;
		}
		i = skip_ws(s, i, e);
		if (i < e && s[i] == ',')
			i = skip_ws(s, i + 1, e);
	}
	rc = 0;
	goto out;
bad:
	errno = EINVAL;
out:
	buf_free(&esc);
	return rc;
}

/* Appends the ResourceSpans object s[a..e) with over[0..nover) put into
 * its resource's attributes. Returns 0, or -1 with errno EINVAL or ENOMEM. */
static int put_item(const char *s, size_t a, size_t e, const struct trace_attr *over,
	size_t nover, struct buf *out)
{
	struct member m, r;
	size_t i = a + 1, k;
	int first = 1, any, had_resource = 0;

	if (s[a] != '{') {
		errno = EINVAL;
		return -1;
	}
	if (!nover)
		return buf_put(out, s + a, e - a);
	if (buf_putc(out, '{') < 0)
		return -1;
	while (next_member(s, e, &i, &m)) {
		if (!first && buf_putc(out, ',') < 0)
			return -1;
		first = 0;
		if (!key_is(s, &m, "resource")) {
			if (buf_put(out, s + m.ks, m.ve - m.ks) < 0)
				return -1;
			continue;
		}
		if (s[m.vs] != '{') {
			errno = EINVAL;
			return -1;
		}
		had_resource = 1;
		any = 0;
		if (buf_puts(out, "\"resource\":{\"attributes\":[") < 0)
			return -1;
		k = m.vs + 1;
		while (next_member(s, m.ve, &k, &r))
			if (key_is(s, &r, "attributes")) {
				if (s[r.vs] != '[') {
					errno = EINVAL;
					return -1;
				}
				if (keep_attrs(s, r.vs, r.ve, over, nover, out, &any) < 0)
					return -1;
			}
		if (put_kvs(out, over, nover, any) < 0 || buf_putc(out, ']') < 0)
			return -1;
		k = m.vs + 1;
		while (next_member(s, m.ve, &k, &r))
			if (!key_is(s, &r, "attributes") &&
			    (buf_putc(out, ',') < 0 || buf_put(out, s + r.ks, r.ve - r.ks) < 0))
				return -1;
		if (buf_putc(out, '}') < 0)
			return -1;
	}
	if (!had_resource && ((!first && buf_putc(out, ',') < 0) ||
	    buf_puts(out, "\"resource\":{\"attributes\":") < 0 ||
	    trace_put_attrs(out, over, nover) < 0 || buf_putc(out, '}') < 0))
		return -1;
	return buf_putc(out, '}');
}

int trace_line_items(const char *line, size_t n, const struct trace_attr *over,
	size_t nover, struct buf *out)
{
	struct member m;
	size_t i, k, item, keep = out->len;
	int count = 0, seen = 0;

	if (trace_json_value_len(line, n) != n)
		goto bad;
	i = skip_ws(line, 0, n);
	if (line[i] != '{')
		goto bad;
	i++;
	while (next_member(line, n, &i, &m)) {
		if (!key_is(line, &m, "resourceSpans") || line[m.vs] != '[' || seen++)
			goto bad;
		k = skip_ws(line, m.vs + 1, m.ve);
		while (k < m.ve && line[k] != ']') {
			item = k;
			k = scan_value(line, k, m.ve, 0);
			if (out->len && out->p[out->len - 1] != '[' && buf_putc(out, ',') < 0)
				goto fail;
			if (put_item(line, item, k, over, nover, out) < 0)
				goto fail;
			count++;
			k = skip_ws(line, k, m.ve);
			if (k < m.ve && line[k] == ',')
				k = skip_ws(line, k + 1, m.ve);
		}
	}
	if (!seen)
		goto bad;
	return count;
bad:
	errno = EINVAL;
fail:
	if (out->p) {
		out->len = keep;
		out->p[keep] = '\0';
	}
	return -1;
}

/* Returns the first occurrence of w[0..wn) in s[0..n), or NULL. */
static const char *find(const char *s, size_t n, const char *w, size_t wn)
{
	const char *p = s, *e = s + n;

	while (wn && (size_t)(e - p) >= wn && (p = memchr(p, w[0], (size_t)(e - p - (ptrdiff_t)wn + 1)))) {
		if (!memcmp(p, w, wn))
			return p;
		p++;
	}
	return NULL;
}

void trace_line_scan(const char *line, size_t n, const char *parent,
	unsigned long *errors, unsigned long long *max_end)
{
	static const char end_key[] = "\"endTimeUnixNano\":\"";
	char want[64];
	const char *p = line, *e = line + n;
	unsigned long long v;
	int w;

	w = snprintf(want, sizeof want, "\"parentSpanId\":\"%.16s\"", parent);
	if (w > 0 && (size_t)w < sizeof want && find(line, n, want, (size_t)w) &&
	    find(line, n, "\"status\":{\"code\":2", 18))
		(*errors)++;
	while ((p = find(p, (size_t)(e - p), end_key, sizeof end_key - 1))) {
		p += sizeof end_key - 1;
		for (v = 0; p < e && *p >= '0' && *p <= '9' && v < 1000000000000000000ULL; p++)
			v = v * 10 + (unsigned)(*p - '0');
		if (v > *max_end)
			*max_end = v;
	}
}
