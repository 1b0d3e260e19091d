/* tally-log: the JSON-log emitter. Writes one JSON object per event, one
 * event per line, to stdout or appended to a file; with --stream, every line
 * of stdin becomes an event. docs/reference/tally-log.md is the contract. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

/* Longest message, in bytes; a longer one is cut at a UTF-8 boundary and
 * the event gets "truncated":true. */
#define TALLY_LOG_MAX_MESSAGE 65536
/* Longest --stream input line, in bytes; a longer line is cut into several
 * events, each but the last marked "truncated":true. */
#define TALLY_LOG_MAX_LINE 65536
/* Most --field/--num/--bool options, and most --meta options; more is a
 * usage error. */
#define TALLY_LOG_MAX_FIELDS 64
#define TALLY_LOG_MAX_META 64
/* Longest key of --field/--num/--bool/--meta; longer is a usage error. */
#define TALLY_LOG_MAX_KEY 256
/* Longest option value (and BUILD_CORRELATION_ID); longer is a usage error
 * (an over-long BUILD_CORRELATION_ID is ignored with a warning). */
#define TALLY_LOG_MAX_VALUE 65536

/* --stream buffers: input is read in chunks of up to IN_CAP bytes; events
 * are written once OUT_FLUSH bytes are pending, and before every read. */
#define IN_CAP (4 * TALLY_LOG_MAX_LINE)
#define OUT_FLUSH (128 * 1024)

static const char usage_text[] =
"usage: tally-log [options] MESSAGE\n"
"       tally-log --stream [options] [--tee]\n"
"       tally-log --help\n"
"Writes one JSON log event per line (RFC 8259, UTF-8) to stdout, or appends\n"
"it to FILE with one write() per line. With --stream, each line of stdin\n"
"becomes one event.\n"
"\n"
"Options (VALUE may also be given as --opt=VALUE):\n"
"  --level L             DEBUG, INFO (default), WARN (WARNING), ERROR, FATAL;\n"
"                        any case\n"
"  --feature F           \"feature\"\n"
"  --version V           \"version\"\n"
"  --stage S             \"stage\"\n"
"  --correlation-id ID   \"correlation_id\" (default: $BUILD_CORRELATION_ID)\n"
"  --field K=V           string field K (repeatable)\n"
"  --num K=N             number field K; N must be an RFC 8259 number\n"
"  --bool K=true|false   boolean field K\n"
"  --meta K=V            string K of the \"metadata\" object (repeatable)\n"
"  -o FILE               append to FILE (created with mode 0644)\n"
"  --stream              one event per line of stdin\n"
"  --tee                 with --stream and -o: copy stdin to stdout unchanged\n"
"  --help                print this text and exit\n"
"  --                    end of options (for a MESSAGE that starts with -)\n"
"\n"
"A repeated key keeps the last value, at the place of the first.\n"
"Environment: BUILD_CORRELATION_ID, TRACEPARENT (W3C Trace Context).\n"
"Exit status: 0 ok, 1 a --num or --bool value refused, 100 usage error,\n"
"111 a system call failed.\n";

/* Keys tally-log writes itself; --field/--num/--bool may not use them. */
static const char *const builtin_keys[] = {
	"timestamp", "level", "correlation_id", "trace_id", "span_id",
	"feature", "version", "stage", "message", "truncated", "metadata",
};

static const char *const level_names[] = {
	"DEBUG", "INFO", "WARN", "ERROR", "FATAL",
};

enum kv_type { KV_STRING, KV_NUMBER, KV_BOOL };

/* One --field/--num/--bool/--meta pair; k and v point into argv. */
struct kv {
	const char *k;
	size_t kn;
	const char *v;
	enum kv_type type;
};

struct opts {
	const char *level;
	const char *feature;
	const char *version;
	const char *stage;
	const char *correlation_id;
	const char *out_path;
	const char *message;
	int stream;
	int tee;
	struct kv fields[TALLY_LOG_MAX_FIELDS];
	size_t nfields;
	size_t nfield_opts;
	struct kv meta[TALLY_LOG_MAX_META];
	size_t nmeta;
	size_t nmeta_opts;
};

/* What every event shares: the keys after "timestamp" and before
 * "message" (head), and the keys after it up to the newline (tail). */
struct event_tmpl {
	struct buf head;
	struct buf tail;
};

/* The last whole second formatted, so most timestamps cost one
 * clock_gettime and a few stores. */
struct ts_cache {
	time_t sec;
	int valid;
	char prefix[32]; /* "YYYY-MM-DDTHH:MM:SS." */
	size_t len;
};

/* Dies with a usage error naming what was wrong. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die_usage("%s (see tally-log --help)", msg);
}

/* Returns the canonical level name for s (any case; WARNING is WARN), or
 * NULL when s names no level. */
static const char *parse_level(const char *s)
{
	size_t i;

	if (strcasecmp(s, "WARNING") == 0)
		return "WARN";
	for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return level_names[i];
	return NULL;
}

/* Returns 1 when k[0..n) is one of the keys tally-log writes itself. */
static int is_builtin_key(const char *k, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof builtin_keys / sizeof builtin_keys[0]; i++)
		if (strlen(builtin_keys[i]) == n && memcmp(builtin_keys[i], k, n) == 0)
			return 1;
	return 0;
}

/* Adds (or, for a key already present, replaces in place) one pair;
 * returns the new count. The caller has checked there is room. */
static size_t kv_set(struct kv *arr, size_t n, const struct kv *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (arr[i].kn == p->kn && memcmp(arr[i].k, p->k, p->kn) == 0) {
			arr[i] = *p;
			return n;
		}
	arr[n] = *p;
	return n + 1;
}

/* Splits OPT's argument "K=V" into *p, dying with a usage error when it is
 * malformed or too long. */
static void split_kv(const char *opt, const char *arg, struct kv *p)
{
	const char *eq = strchr(arg, '=');

	if (!eq)
		usage("%s %s: expected K=V", opt, arg);
	if (eq == arg)
		usage("%s %s: empty key", opt, arg);
	p->k = arg;
	p->kn = (size_t)(eq - arg);
	p->v = eq + 1;
	if (p->kn > TALLY_LOG_MAX_KEY)
		usage("%s: key longer than %d bytes", opt, TALLY_LOG_MAX_KEY);
	if (strlen(p->v) > TALLY_LOG_MAX_VALUE)
		usage("%s: value longer than %d bytes", opt, TALLY_LOG_MAX_VALUE);
}

/* Returns the value of option NAME at argv[*i] (--name V or --name=V),
 * advancing *i; NULL when argv[*i] is not that option. Dies when the
 * value is missing or too long. */
static const char *opt_value(char **argv, int argc, int *i, const char *name)
{
	const char *a = argv[*i], *v;
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=') {
		v = a + n + 1;
	} else if (a[n] == '\0') {
		if (*i + 1 >= argc)
			usage("%s needs a value", name);
		v = argv[++*i];
	} else {
		return NULL;
	}
	if (strlen(v) > TALLY_LOG_MAX_VALUE)
		usage("%s: value longer than %d bytes", name, TALLY_LOG_MAX_VALUE);
	return v;
}

/* Handles one --field/--num/--bool/--meta option; dies on usage errors and
 * with status 1 on a refused --num or --bool value. */
static void add_pair(struct opts *o, const char *opt, const char *arg,
	enum kv_type type, int is_meta)
{
	struct kv p;

	split_kv(opt, arg, &p);
	p.type = type;
	if (is_meta) {
		if (++o->nmeta_opts > TALLY_LOG_MAX_META)
			usage("more than %d --meta options", TALLY_LOG_MAX_META);
		o->nmeta = kv_set(o->meta, o->nmeta, &p);
		return;
	}
	if (++o->nfield_opts > TALLY_LOG_MAX_FIELDS)
		usage("more than %d --field/--num/--bool options",
			TALLY_LOG_MAX_FIELDS);
	if (is_builtin_key(p.k, p.kn))
		usage("%s %s: key %.*s is written by tally-log itself", opt, arg,
			(int)p.kn, p.k);
	if (type == KV_NUMBER && !json_is_number(p.v))
		die(EXIT_FAIL, "--num %s: not a JSON number (RFC 8259)", arg);
	if (type == KV_BOOL && strcmp(p.v, "true") != 0 && strcmp(p.v, "false") != 0)
		die(EXIT_FAIL, "--bool %s: value must be true or false", arg);
	o->nfields = kv_set(o->fields, o->nfields, &p);
}

/* Parses the command line into *o; dies on every usage error. */
static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *v;
	int i, npos = 0;

	memset(o, 0, sizeof *o);
	o->level = "INFO";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (npos++)
				usage("more than one MESSAGE");
			o->message = a;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			if (write_all(1, usage_text, sizeof usage_text - 1) < 0)
				die_sys(EXIT_SYS, "unable to write to stdout");
			exit(EXIT_OK);
		} else if (strcmp(a, "--stream") == 0) {
			o->stream = 1;
		} else if (strcmp(a, "--tee") == 0) {
			o->tee = 1;
		} else if ((v = opt_value(argv, argc, &i, "--level"))) {
			if (!(o->level = parse_level(v)))
				usage("--level %s: expected DEBUG, INFO, WARN, ERROR or FATAL", v);
		} else if ((v = opt_value(argv, argc, &i, "--feature"))) {
			o->feature = v;
		} else if ((v = opt_value(argv, argc, &i, "--version"))) {
			o->version = v;
		} else if ((v = opt_value(argv, argc, &i, "--stage"))) {
			o->stage = v;
		} else if ((v = opt_value(argv, argc, &i, "--correlation-id"))) {
			o->correlation_id = v;
		} else if ((v = opt_value(argv, argc, &i, "--field"))) {
			add_pair(o, "--field", v, KV_STRING, 0);
		} else if ((v = opt_value(argv, argc, &i, "--num"))) {
			add_pair(o, "--num", v, KV_NUMBER, 0);
		} else if ((v = opt_value(argv, argc, &i, "--bool"))) {
			add_pair(o, "--bool", v, KV_BOOL, 0);
		} else if ((v = opt_value(argv, argc, &i, "--meta"))) {
			add_pair(o, "--meta", v, KV_STRING, 1);
		} else if ((v = opt_value(argv, argc, &i, "-o"))) {
			o->out_path = v;
		} else {
			usage("unknown option %s", a);
		}
	}
	for (; i < argc; i++) {
		if (npos++)
			usage("more than one MESSAGE");
		o->message = argv[i];
	}
	if (o->out_path && !*o->out_path)
		usage("-o needs a file name");
	if (o->stream && o->message)
		usage("--stream takes no MESSAGE: the messages come from stdin");
	if (!o->stream && !o->message)
		usage("missing MESSAGE");
	if (o->tee && !o->stream)
		usage("--tee needs --stream");
	if (o->tee && !o->out_path)
		usage("--tee needs -o FILE: the events and the copy would share stdout");
}

/* Returns 1 when s[0..n) is n lowercase hex digits (HEXDIGLC), else 0. */
static int is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Returns 1 when s[0..n) holds a byte other than '0', else 0. */
static int not_zero(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '0')
			return 1;
	return 0;
}

/* Returns 1 when tp is a valid W3C traceparent: version 00 with exactly
 * 55 characters, or a later version (not ff) whose first 55 characters
 * parse the same way and are followed by nothing or '-'; else 0. */
static int traceparent_ok(const char *tp)
{
	size_t n = strlen(tp);

	if (n < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
		return 0;
	if (!is_hex(tp, 2) || memcmp(tp, "ff", 2) == 0)
		return 0;
	if (memcmp(tp, "00", 2) == 0 ? n != 55 : (n > 55 && tp[55] != '-'))
		return 0;
	return is_hex(tp + 3, 32) && not_zero(tp + 3, 32) &&
		is_hex(tp + 36, 16) && not_zero(tp + 36, 16) &&
		is_hex(tp + 53, 2);
}

/* Appends ,"K":"V" to b (K is k[0..kn), V is v[0..n)) when v is non-NULL
 * and non-empty. */
static void put_member(struct buf *b, const char *k, size_t kn, const char *v, size_t n)
{
	if (!v || !n)
		return;
	if (json_put_key(b, k, kn) < 0 || json_put_string(b, v, n) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}

/* Appends ,"KEY":"V" for the NUL-terminated key and value v, when v is
 * non-NULL and non-empty. */
static void put_str_field(struct buf *b, const char *k, const char *v)
{
	put_member(b, k, strlen(k), v, v ? strlen(v) : 0);
}

/* Appends the pairs of arr as JSON members, leaving out empty strings. */
static void put_pairs(struct buf *b, const struct kv *arr, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct kv *p = &arr[i];

		if (p->type == KV_STRING) {
			put_member(b, p->k, p->kn, p->v, strlen(p->v));
			continue;
		}
		if (json_put_key(b, p->k, p->kn) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		xbuf_puts(b, p->v);
	}
}

/* Returns 1 when arr holds a pair that will be written (not an empty
 * string). */
static int any_pairs(const struct kv *arr, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (arr[i].type != KV_STRING || arr[i].v[0])
			return 1;
	return 0;
}

/* Fills t with the parts every event shares, from o and the environment. */
static void build_template(struct event_tmpl *t, const struct opts *o)
{
	const char *corr = o->correlation_id, *tp = getenv("TRACEPARENT");

	if (!corr || !*corr) {
		corr = getenv("BUILD_CORRELATION_ID");
		if (corr && strlen(corr) > TALLY_LOG_MAX_VALUE) {
			warnx_msg("BUILD_CORRELATION_ID longer than %d bytes: ignored",
				TALLY_LOG_MAX_VALUE);
			corr = NULL;
		}
	}
	memset(t, 0, sizeof *t);
	put_str_field(&t->head, "level", o->level);
	put_str_field(&t->head, "correlation_id", corr);
	if (tp && traceparent_ok(tp)) {
		put_member(&t->head, "trace_id", 8, tp + 3, 32);
		put_member(&t->head, "span_id", 7, tp + 36, 16);
	}
	put_str_field(&t->head, "feature", o->feature);
	put_str_field(&t->head, "version", o->version);
	put_str_field(&t->head, "stage", o->stage);
	put_pairs(&t->tail, o->fields, o->nfields);
	if (any_pairs(o->meta, o->nmeta)) {
		if (json_put_key(&t->tail, "metadata", 8) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		xbuf_putc(&t->tail, '{');
		put_pairs(&t->tail, o->meta, o->nmeta);
		xbuf_putc(&t->tail, '}');
	}
	xbuf_puts(&t->tail, "}\n");
}

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" to out (at
 * least 40 bytes) and returns its length; dies if the clock fails. */
static size_t timestamp_now(struct ts_cache *c, char *out)
{
	struct timespec ts;
	struct tm tm;
	unsigned ms;
	size_t n;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		die_sys(EXIT_SYS, "unable to read the clock");
	if (!c->valid || ts.tv_sec != c->sec) {
		if (!gmtime_r(&ts.tv_sec, &tm))
			die(EXIT_SYS, "unable to convert the time");
		n = (size_t)snprintf(c->prefix, sizeof c->prefix,
			"%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		c->len = n < sizeof c->prefix ? n : sizeof c->prefix - 1;
		c->sec = ts.tv_sec;
		c->valid = 1;
	}
	ms = (unsigned)(ts.tv_nsec / 1000000);
	memcpy(out, c->prefix, c->len);
	n = c->len;
	out[n++] = (char)('0' + ms / 100);
	out[n++] = (char)('0' + ms / 10 % 10);
	out[n++] = (char)('0' + ms % 10);
	out[n++] = 'Z';
	return n;
}

/* Appends one event line with message msg[0..n) (left out when n is 0).
 * Returns 0, or -1 with errno ENOMEM. */
static int put_event(struct buf *b, const struct event_tmpl *t,
	struct ts_cache *c, const char *msg, size_t n, int truncated)
{
	char ts[48];
	size_t tn = timestamp_now(c, ts);

	if (buf_put(b, "{\"timestamp\":\"", 14) < 0 || buf_put(b, ts, tn) < 0 ||
	    buf_putc(b, '"') < 0 || buf_put(b, t->head.p, t->head.len) < 0)
		return -1;
	if (n && (buf_put(b, ",\"message\":", 11) < 0 ||
	    json_put_string(b, msg, n) < 0))
		return -1;
	if (truncated && buf_put(b, ",\"truncated\":true", 17) < 0)
		return -1;
	return buf_put(b, t->tail.p, t->tail.len);
}

/* The state of one --stream run. */
struct stream {
	const struct event_tmpl *t;
	struct ts_cache clock;
	struct buf out;
	int out_fd;
	const char *out_name;
	int out_failed;
	int tee_failed;
};

/* Writes the pending events; on failure warns once and drops events from
 * then on (so the command feeding stdin is never blocked or killed). */
static void stream_flush(struct stream *s)
{
	if (!s->out.len)
		return;
	if (!s->out_failed && write_all(s->out_fd, s->out.p, s->out.len) < 0) {
		warn_sys("unable to write to %s", s->out_name);
		s->out_failed = 1;
	}
	buf_reset(&s->out);
}

/* Queues the event for one input line (or piece of one) line[0..n). */
static void stream_event(struct stream *s, const char *line, size_t n, int truncated)
{
	if (!n)
		return;
	if (put_event(&s->out, s->t, &s->clock, line, n, truncated) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (s->out.len >= OUT_FLUSH)
		stream_flush(s);
}

/* Turns the complete lines of in[0..len) into events, and pieces of lines
 * too long to keep; final (EOF) takes the rest as a last line. Returns how
 * many bytes were used. */
static size_t stream_lines(struct stream *s, const char *in, size_t len, int final)
{
	size_t start = 0, n, cut;
	const char *nl;

	while (start < len) {
		const char *p = in + start;
		size_t avail = len - start;

		nl = memchr(p, '\n', avail);
		n = nl ? (size_t)(nl - p) : avail;
		if (nl && n && p[n - 1] == '\r')
			n--;
		if (n > TALLY_LOG_MAX_LINE && (nl || avail > TALLY_LOG_MAX_LINE + 1 || final)) {
			/* More of this line follows the piece: at least one
			 * byte that is not its line end. */
			cut = json_utf8_cut(p, n, TALLY_LOG_MAX_LINE);
			stream_event(s, p, cut, 1);
			start += cut;
			continue;
		}
		if (!nl && !final)
			break;
		stream_event(s, p, n, 0);
		start += nl ? (size_t)(nl - p) + 1 : avail;
	}
	return start;
}

/* Runs --stream until EOF; returns the exit status. */
static int run_stream(const struct event_tmpl *t, int out_fd,
	const char *out_name, int tee)
{
	struct stream s;
	char *in;
	size_t have = 0, used;
	ssize_t r;

	memset(&s, 0, sizeof s);
	s.t = t;
	s.out_fd = out_fd;
	s.out_name = out_name;
	in = malloc(IN_CAP);
	if (!in || buf_reserve(&s.out, OUT_FLUSH + 2 * TALLY_LOG_MAX_LINE * 6) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	for (;;) {
		stream_flush(&s);
		r = read(0, in + have, IN_CAP - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys(EXIT_SYS, "unable to read stdin");
		}
		if (r == 0)
			break;
		if (tee && !s.tee_failed && write_all(1, in + have, (size_t)r) < 0) {
			warn_sys("unable to write to stdout");
			s.tee_failed = 1;
		}
		have += (size_t)r;
		used = stream_lines(&s, in, have, 0);
		memmove(in, in + used, have - used);
		have -= used;
	}
	stream_lines(&s, in, have, 1);
	stream_flush(&s);
	free(in);
	buf_free(&s.out);
	return s.out_failed || s.tee_failed ? EXIT_SYS : EXIT_OK;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct event_tmpl t;
	struct ts_cache clock = { 0, 0, "", 0 };
	struct buf line = { 0, 0, 0 };
	const char *out_name = "stdout";
	size_t n, cut;
	int fd = 1, status;

	die_prog = "tally-log";
	parse_args(argc, argv, &o);
	build_template(&t, &o);
	/* A closed reader is a write error (exit 111), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (o.out_path) {
		fd = open(o.out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			die_sys(EXIT_SYS, "unable to open %s", o.out_path);
		out_name = o.out_path;
	}
	if (o.stream) {
		status = run_stream(&t, fd, out_name, o.tee);
	} else {
		n = strlen(o.message);
		cut = json_utf8_cut(o.message, n, TALLY_LOG_MAX_MESSAGE);
		if (put_event(&line, &t, &clock, o.message, cut, cut < n) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		/* One write() for the whole line: concurrent appenders to the
		 * same file never interleave within a line. */
		if (write_all(fd, line.p, line.len) < 0)
			die_sys(EXIT_SYS, "unable to write to %s", out_name);
		status = EXIT_OK;
		buf_free(&line);
	}
	if (o.out_path && close(fd) < 0)
		die_sys(EXIT_SYS, "unable to close %s", o.out_path);
	buf_free(&t.head);
	buf_free(&t.tail);
	return status;
}
