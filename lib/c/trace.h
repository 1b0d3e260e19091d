/* trace.h: declarations with one-line contracts (to be included by tally.h).
 *
 * trace.c: W3C Trace Context traceparent values
 * (https://www.w3.org/TR/trace-context/#traceparent-header), random trace
 * and span ids from the kernel (getrandom(2), else /dev/urandom), and the
 * OTLP/JSON encoding of spans: one TracesData object per line, as the
 * OpenTelemetry file exporter writes it
 * (https://opentelemetry.io/docs/specs/otel/protocol/file-exporter/,
 * https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): ids as
 * lowercase hex, 64-bit integers and nanosecond times as decimal strings,
 * enums as numbers, lowerCamelCase keys. Also the key=value lists of
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS, and a strict
 * RFC 8259 scanner for lines read back. No output, no exit. */
#ifndef TALLY_TRACE_H
#define TALLY_TRACE_H

#include <stddef.h>

struct buf;

#define TRACE_ID_HEX 32           /* hex digits of a trace-id */
#define SPAN_ID_HEX 16            /* hex digits of a span-id (parent-id) */
#define TRACEPARENT_LEN 55        /* "00-" 32 "-" 16 "-" 2 */
#define TRACE_MAX_KV 64           /* pairs of a key=value list; more: the list is refused */
#define TRACE_MAX_KV_TEXT 8192    /* bytes of a key=value list; longer: refused */
#define TRACE_MAX_JSON_DEPTH 64   /* nesting of a JSON line read back; deeper: refused */

/* Span kinds and status codes, as the OTLP enums number them. */
#define TRACE_KIND_INTERNAL 1
#define TRACE_STATUS_UNSET 0
#define TRACE_STATUS_OK 1
#define TRACE_STATUS_ERROR 2

/* A span context: lowercase hex ids, NUL-terminated, and the flags byte. */
struct trace_ctx {
	char trace_id[TRACE_ID_HEX + 1];
	char span_id[SPAN_ID_HEX + 1];
	unsigned flags;
};

/* Parses s[0..n) as a traceparent: version 00 exactly 55 characters; a
 * later version (not ff) read by its first 55 characters when followed by
 * nothing or '-'; lowercase hex only; neither id all zeros. Returns 0 with
 * *c filled, or -1 with errno EINVAL (c unchanged). */
int trace_parse_traceparent(const char *s, size_t n, struct trace_ctx *c);
/* Writes c as a version-00 traceparent ("00-T-S-FF") and a NUL into out. */
void trace_format_traceparent(const struct trace_ctx *c, char out[TRACEPARENT_LEN + 1]);
/* Returns 1 when s[0..n) is n lowercase hex digits, not all '0'; else 0. */
int trace_hex_id_ok(const char *s, size_t n);
/* Fills p[0..n) from the kernel's random source: getrandom(2), else
 * /dev/urandom. Returns 0, or -1 with errno set. */
int trace_random(void *p, size_t n);
/* Writes a new random id of nbytes bytes (1..32), never all zeros, as
 * 2*nbytes lowercase hex digits and a NUL into hex. Returns 0, or -1 with
 * errno set (EINVAL for a bad nbytes). */
int trace_new_id(char *hex, size_t nbytes);

/* ---- key=value lists: OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS */

/* One pair of a parsed list; key and value point into the list's store. */
struct trace_kv {
	const char *key;
	const char *value;
};

/* Parses s ("k1=v1,k2=v2": keys and values trimmed of spaces and tabs,
 * values percent-decoded, empty members skipped) into kv[0..max), with the
 * decoded strings in store (replaced). A later pair replaces an earlier one
 * with the same key. Returns the number of pairs, or -1 with errno EINVAL
 * and a reason in why (a member without '=', an empty key, a key with
 * bytes outside printable ASCII or with '=', a bad %XX, more than max pairs
 * or TRACE_MAX_KV_TEXT bytes) or ENOMEM. */
int trace_kv_parse(const char *s, struct trace_kv *kv, size_t max, struct buf *store,
	char *why, size_t whylen);

/* ---- OTLP/JSON ------------------------------------------------------------ */

enum trace_attr_type {
	TRACE_ATTR_STRING,        /* s[0..sn) */
	TRACE_ATTR_INT,           /* i */
	TRACE_ATTR_BOOL,          /* i, 0 or not */
	TRACE_ATTR_DOUBLE,        /* d, finite */
	TRACE_ATTR_STRING_ARRAY   /* arr[0..narr), NUL-terminated strings */
};

/* One attribute: a KeyValue with an AnyValue of the given type. */
struct trace_attr {
	const char *key;
	enum trace_attr_type type;
	const char *s;
	size_t sn;
	long long i;
	double d;
	char *const *arr;
	size_t narr;
};

/* One span. parent_span_id NULL or "" for a root span; status_message
 * NULL or "" for none. */
struct trace_span {
	const char *trace_id;
	const char *span_id;
	const char *parent_span_id;
	const char *name;
	int kind;
	unsigned long long start_ns, end_ns;
	const struct trace_attr *attrs;
	size_t nattrs;
	int status;
	const char *status_message;
};

/* Appends attrs[0..n) as an OTLP/JSON KeyValue array ("[...]"); strings
 * escaped by json_escape() (invalid UTF-8 becomes U+FFFD). Returns 0, or
 * -1 with errno ENOMEM. */
int trace_put_attrs(struct buf *b, const struct trace_attr *a, size_t n);
/* Appends one TracesData object and a newline: one ResourceSpans with the
 * resource attributes res[0..nres) and one ScopeSpans (scope name and
 * version) holding spans[0..n). Returns 0, or -1 with errno ENOMEM. */
int trace_put_line(struct buf *b, const struct trace_attr *res, size_t nres,
	const char *scope_name, const char *scope_version,
	const struct trace_span *spans, size_t n);

/* The instrumentation scope of every span tally records. */
#define TRACE_SCOPE_NAME "tally"
/* The service.name when neither OTEL_SERVICE_NAME nor a service.name in
 * OTEL_RESOURCE_ATTRIBUTES gives one (the OpenTelemetry SDK default form). */
#define TRACE_DEFAULT_SERVICE "unknown_service:tally"

/* Fills res[0..max) (max >= 1) with the resource attributes of the
 * environment: service.name first (OTEL_SERVICE_NAME, else service.name of
 * OTEL_RESOURCE_ATTRIBUTES, else TRACE_DEFAULT_SERVICE), then the other
 * pairs of OTEL_RESOURCE_ATTRIBUTES, strings kept in store. An invalid
 * OTEL_RESOURCE_ATTRIBUTES is ignored whole, with the reason in why (else
 * why is ""). Returns the number of attributes (>= 1), or -1 with errno
 * ENOMEM. */
int trace_env_resource(struct trace_attr *res, size_t max, struct buf *store,
	char *why, size_t whylen);
/* Appends line[0..n) to the file at path (created 0644) with
 * append_lines(): one write(2), whole lines only. Returns 0, or -1 with
 * errno set. */
int trace_append(const char *path, const char *line, size_t n);

/* ---- reading lines back ----------------------------------------------------- */

/* Returns the length of the one RFC 8259 JSON value (with surrounding
 * whitespace) at the start of s[0..n), or 0 when there is none, it is
 * malformed, nests deeper than TRACE_MAX_JSON_DEPTH, or holds a string
 * with a raw control byte or invalid UTF-8. */
size_t trace_json_value_len(const char *s, size_t n);
/* Checks that line[0..n) (no newline) is one JSON object of the form
 * {"resourceSpans":[ResourceSpans,...]} and appends to out its
 * ResourceSpans items, comma-separated (a comma first when out does not
 * end in '['), each with the attributes over[0..nover) put into its
 * resource: an attribute of the same key is replaced, the others added.
 * Returns the number of items appended, or -1 with errno EINVAL (out
 * unchanged) or ENOMEM. */
int trace_line_items(const char *line, size_t n, const struct trace_attr *over,
	size_t nover, struct buf *out);
/* Finds in the TracesData line[0..n) the spans whose parentSpanId is
 * parent (16 hex): sets *errors to how many have status code 2 and
 * *max_end to the largest endTimeUnixNano of any span of the line (left
 * unchanged when larger). Text search: valid for lines of one span each,
 * as tally writes them. */
void trace_line_scan(const char *line, size_t n, const char *parent,
	unsigned long *errors, unsigned long long *max_end);

#endif
