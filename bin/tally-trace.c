/* tally-trace: OpenTelemetry traces of a build, without a daemon and without
 * a network. Starts the build's trace (a context file in BUILD_LOG_DIR that
 * every RUN step shares), records spans as OTLP/JSON lines in the file
 * exporter's format (BUILD_LOG_DIR/traces.jsonl), closes the build span,
 * and sends what was recorded to an OTLP/HTTP endpoint, during the build or
 * later from the built image. docs/reference/tally-trace.md is the
 * contract. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"
#include "trace.h"
#include "otlp_send.h"

#define DEFAULT_DIR "/var/log/container-build" /* when BUILD_LOG_DIR is unset */
#define TRACES_FILE "traces.jsonl"             /* in the build log directory */
#define STATE_DIR ".tally"                     /* logging.sh's state directory */
#define CONTEXT_FILE "trace-context"           /* in STATE_DIR: "TP START_NS PARENT" */
#define ENDED_FILE "trace-ended"               /* in STATE_DIR: the build span is recorded */
#define SENT_FILE "traces.sent"                /* in STATE_DIR: bytes of TRACES_FILE sent */
#define MAX_ATTRS 64          /* --attr/--int options of span; more: usage error */
#define MAX_RESOURCE 65       /* resource attributes: service.name and 64 more */
#define MAX_NAME 4096         /* bytes of a span name or attribute value; longer: usage error */
#define MAX_TRACES_FILE (256u << 20) /* bytes of a traces file read by send; more: refused */
#define MAX_LINE (4u << 20)   /* bytes of one line sent; longer lines are skipped */
#define MAX_BODY (4u << 20)   /* bytes of one request body; more lines go in the next request */
#define DEFAULT_TIMEOUT_MS 10000 /* OTEL_EXPORTER_OTLP_TIMEOUT's default (the spec's) */

static const char usage_text[] =
"usage: tally-trace start [-d DIR]\n"
"       tally-trace span [-d DIR | -o FILE] --parent TP [--span TP] --name NAME\n"
"                        [--start NS] [--end NS] [--attr K=V]... [--int K=N]...\n"
"                        [--error MESSAGE]\n"
"       tally-trace end [-d DIR] [--error MESSAGE]\n"
"       tally-trace send [-d DIR] [--strict] [--all] [--keep-open] [FILE...]\n"
"       tally-trace --help\n"
"Records a build's OpenTelemetry spans in DIR/traces.jsonl (one OTLP/JSON\n"
"TracesData object per line) and sends them to an OTLP/HTTP endpoint.\n"
"DIR defaults to $BUILD_LOG_DIR, else " DEFAULT_DIR ".\n"
"\n"
"  start   start (or join) the build's trace: DIR/.tally/trace-context;\n"
"          prints \"BUILD_TRACEPARENT NEW_CHILD_TRACEPARENT NOW_NS\"\n"
"  span    append one span, a child of --parent (a traceparent); --span\n"
"          gives its own ids (default: a new span id); times in Unix ns\n"
"          (default now); --attr string and --int integer attributes;\n"
"          --error sets status ERROR with MESSAGE\n"
"  end     record the build span once: from its start to now, status ERROR\n"
"          when a child span failed or --error is given\n"
"  send    POST the lines not sent yet (--all: every line; FILE...: those\n"
"          files, whole) as OTLP/HTTP JSON; first closes an open build span\n"
"          at its last child's end, unless --keep-open; --strict: exit 1\n"
"          when anything was not delivered\n"
"\n"
"Environment: BUILD_LOG_DIR, TRACEPARENT, OTEL_SERVICE_NAME,\n"
"OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_ENDPOINT,\n"
"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,\n"
"OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,\n"
"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (ms), OTEL_TRACES_EXPORTER (none: no send).\n"
"Exit status: 0 ok (send: also when delivery failed, unless --strict), 1 the\n"
"thing asked for failed (end: no trace or already ended; send --strict:\n"
"not delivered), 100 usage error, 111 a system call failed.\n";

/* Dies with a usage error naming what was wrong. */
static void __attribute__((noreturn, format(printf, 1, 2))) usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die_usage("%s (see tally-trace --help)", msg);
}

/* Returns the current Unix time in nanoseconds; dies if the clock fails. */
static unsigned long long now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		die_sys(EXIT_SYS, "unable to read the clock");
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* Parses s as unsigned decimal nanoseconds (1 to 20 digits); dies with a
 * usage error naming opt otherwise. */
static unsigned long long parse_ns(const char *opt, const char *s)
{
	unsigned long long v = 0;
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9' && i < 20; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (i == 0 || s[i])
		usage("%s %.64s: expected Unix time in nanoseconds", opt, s);
	return v;
}

/* Sets path to DIR/rel, DIR from -d, BUILD_LOG_DIR or the default. */
static void dir_path(struct buf *path, const char *dir, const char *rel)
{
	const char *d = dir ? dir : getenv("BUILD_LOG_DIR");

	if (!d || !*d)
		d = DEFAULT_DIR;
	buf_reset(path);
	if (buf_printf(path, "%s/%s", d, rel) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}

/* The build's trace as the context file records it. */
struct build {
	struct trace_ctx ctx;           /* the build span's ids */
	unsigned long long start_ns;
	char parent[SPAN_ID_HEX + 1];   /* the incoming parent span id, "" if none */
};

/* Reads the context file at path into b. Returns 0, 1 when there is none,
 * or -1 (after a warning) when it is unreadable or malformed. */
static int read_context(const char *path, struct build *b)
{
	char text[160], *sp, *sp2;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0) {
		warn_sys("unable to open %s", path);
		return -1;
	}
	r = read(fd, text, sizeof text - 1);
	close(fd);
	if (r < 0) {
		warn_sys("unable to read %s", path);
		return -1;
	}
	text[r] = '\0';
	memset(b, 0, sizeof *b);
	sp = strchr(text, ' ');
	sp2 = sp ? strchr(sp + 1, ' ') : NULL;
	if (!sp || !sp2 || trace_parse_traceparent(text, (size_t)(sp - text), &b->ctx) < 0) {
		warnx_msg("%s: not a trace context (\"TRACEPARENT START_NS PARENT\")", path);
		return -1;
	}
	*sp2 = '\0';
	b->start_ns = strtoull(sp + 1, NULL, 10);
	if (trace_hex_id_ok(sp2 + 1, SPAN_ID_HEX)) {
		memcpy(b->parent, sp2 + 1, SPAN_ID_HEX);
		b->parent[SPAN_ID_HEX] = '\0';
	}
	return 0;
}

/* Makes dir and dir/.tally (the state directory) when missing; dies when
 * it cannot. */
static void make_dirs(const char *dir)
{
	struct buf p = { 0, 0, 0 };
	const char *d = dir ? dir : getenv("BUILD_LOG_DIR");

	if (!d || !*d)
		d = DEFAULT_DIR;
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		die_sys(EXIT_SYS, "unable to create %s", d);
	dir_path(&p, dir, STATE_DIR);
	if (mkdir(p.p, 0755) < 0 && errno != EEXIST)
		die_sys(EXIT_SYS, "unable to create %s", p.p);
	buf_free(&p);
}

/* Returns the build of DIR, creating its context file (first writer wins,
 * by link(2)) from TRACEPARENT or new ids when there is none. Dies when it
 * cannot. */
static void ensure_build(const char *dir, struct build *b)
{
	struct buf path = { 0, 0, 0 }, tmp = { 0, 0, 0 }, line = { 0, 0, 0 };
	char tp[TRACEPARENT_LEN + 1];
	const char *env = getenv("TRACEPARENT");
	struct trace_ctx in;
	int r, fd;

	dir_path(&path, dir, STATE_DIR "/" CONTEXT_FILE);
	r = read_context(path.p, b);
	if (r == 0)
		goto out;
	if (r < 0)
		die(EXIT_FAIL, "refusing to start a second trace over %s", path.p);
	make_dirs(dir);
	memset(b, 0, sizeof *b);
	if (env && trace_parse_traceparent(env, strlen(env), &in) == 0) {
		memcpy(b->ctx.trace_id, in.trace_id, sizeof in.trace_id);
		memcpy(b->parent, in.span_id, sizeof in.span_id);
	} else if (trace_new_id(b->ctx.trace_id, TRACE_ID_HEX / 2) < 0) {
		die_sys(EXIT_SYS, "unable to read random bytes");
	}
	if (trace_new_id(b->ctx.span_id, SPAN_ID_HEX / 2) < 0)
		die_sys(EXIT_SYS, "unable to read random bytes");
	b->ctx.flags = 1;
	b->start_ns = now_ns();
	trace_format_traceparent(&b->ctx, tp);
	if (buf_printf(&line, "%s %llu %s\n", tp, b->start_ns, *b->parent ? b->parent : "-") < 0 ||
	    buf_printf(&tmp, "%s.tmp.%ld", path.p, (long)getpid()) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, line.p, line.len) < 0 || close(fd) < 0) {
		unlink(tmp.p);
		die_sys(EXIT_SYS, "unable to write %s", tmp.p);
	}
	if (link(tmp.p, path.p) < 0) {
		r = errno;
		unlink(tmp.p);
		/* Another RUN step's shell won the race: join its trace. */
		if (r != EEXIST || read_context(path.p, b) != 0) {
			errno = r;
			die_sys(EXIT_SYS, "unable to create %s", path.p);
		}
	} else {
		unlink(tmp.p);
	}
out:
	buf_free(&path);
	buf_free(&tmp);
	buf_free(&line);
}

/* Parses "-d DIR" at argv[*i] into *dir; returns 1 when it was that. */
static int dir_opt(int argc, char **argv, int *i, const char **dir)
{
	if (strcmp(argv[*i], "-d") && strcmp(argv[*i], "--dir"))
		return 0;
	if (*i + 1 >= argc || !*argv[*i + 1])
		usage("%s needs a directory", argv[*i]);
	*dir = argv[++*i];
	return 1;
}

/* tally-trace start. */
static int start_main(int argc, char **argv)
{
	const char *dir = NULL;
	struct build b;
	struct trace_ctx child;
	char tp[TRACEPARENT_LEN + 1], ctp[TRACEPARENT_LEN + 1], line[160];
	int i, n;

	for (i = 2; i < argc; i++)
		if (!dir_opt(argc, argv, &i, &dir))
			usage("start: unexpected argument %.64s", argv[i]);
	ensure_build(dir, &b);
	child = b.ctx;
	if (trace_new_id(child.span_id, SPAN_ID_HEX / 2) < 0)
		die_sys(EXIT_SYS, "unable to read random bytes");
	trace_format_traceparent(&b.ctx, tp);
	trace_format_traceparent(&child, ctp);
	n = snprintf(line, sizeof line, "%s %s %llu\n", tp, ctp, now_ns());
	if (write_all(1, line, (size_t)n) < 0)
		die_sys(EXIT_SYS, "unable to write to stdout");
	return EXIT_OK;
}

/* The resource of the environment, for the lines this process writes. */
struct resource {
	struct trace_attr a[MAX_RESOURCE];
	size_t n;
	struct buf store;
};

/* Fills r from the environment; warns when OTEL_RESOURCE_ATTRIBUTES is
 * ignored. */
static void env_resource(struct resource *r)
{
	char why[200];
	int n;

	memset(r, 0, sizeof *r);
	n = trace_env_resource(r->a, MAX_RESOURCE, &r->store, why, sizeof why);
	if (n < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (*why)
		warnx_msg("OTEL_RESOURCE_ATTRIBUTES ignored: %s", why);
	r->n = (size_t)n;
}

/* Appends the one-span line of s to file; dies when it cannot. */
static void write_span(const char *file, const struct trace_span *s)
{
	struct resource r;
	struct buf line = { 0, 0, 0 };

	env_resource(&r);
	if (trace_put_line(&line, r.a, r.n, TRACE_SCOPE_NAME, NULL, s, 1) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (trace_append(file, line.p, line.len) < 0)
		die_sys(EXIT_SYS, "unable to append to %s", file);
	buf_free(&line);
	buf_free(&r.store);
}

/* Returns the value of option name at argv[*i] (--name V or --name=V),
 * advancing *i; NULL when argv[*i] is not that option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i], *v;

	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		v = a + n + 1;
	else if (a[n] == '\0' && *i + 1 < argc)
		v = argv[++*i];
	else if (a[n] == '\0')
		usage("%s needs a value", name);
	else
		return NULL;
	if (strlen(v) > MAX_NAME)
		usage("%s: value longer than %d bytes", name, MAX_NAME);
	return v;
}

/* Parses a traceparent option value; dies with a usage error when bad. */
static void tp_opt(const char *opt, const char *v, struct trace_ctx *c)
{
	if (trace_parse_traceparent(v, strlen(v), c) < 0)
		usage("%s %.64s: not a valid traceparent (00-<32 hex>-<16 hex>-<2 hex>)", opt, v);
}

/* tally-trace span. */
static int span_main(int argc, char **argv)
{
	struct trace_attr attrs[MAX_ATTRS];
	struct trace_span s;
	struct trace_ctx parent, self;
	struct buf file = { 0, 0, 0 };
	const char *dir = NULL, *out = NULL, *v, *eq;
	char *end;
	int i, have_parent = 0, have_self = 0;
	size_t na = 0;

	memset(&s, 0, sizeof s);
	s.kind = TRACE_KIND_INTERNAL;
	s.start_ns = s.end_ns = now_ns();
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		int is_int = 0;

		if (dir_opt(argc, argv, &i, &dir))
			continue;
		if ((v = opt_value(argc, argv, &i, "-o"))) {
			out = v;
		} else if ((v = opt_value(argc, argv, &i, "--parent"))) {
			tp_opt("--parent", v, &parent);
			have_parent = 1;
		} else if ((v = opt_value(argc, argv, &i, "--span"))) {
			tp_opt("--span", v, &self);
			have_self = 1;
		} else if ((v = opt_value(argc, argv, &i, "--name"))) {
			s.name = v;
		} else if ((v = opt_value(argc, argv, &i, "--start"))) {
			s.start_ns = parse_ns("--start", v);
		} else if ((v = opt_value(argc, argv, &i, "--end"))) {
			s.end_ns = parse_ns("--end", v);
		} else if ((v = opt_value(argc, argv, &i, "--error"))) {
			s.status = TRACE_STATUS_ERROR;
			s.status_message = v;
		} else if ((v = opt_value(argc, argv, &i, "--attr")) ||
		    (is_int = 1, v = opt_value(argc, argv, &i, "--int"))) {
			eq = strchr(v, '=');
			if (!eq || eq == v)
				usage("%s %.64s: expected K=V", is_int ? "--int" : "--attr", v);
			if (na == MAX_ATTRS)
				usage("more than %d attributes", MAX_ATTRS);
			memset(&attrs[na], 0, sizeof attrs[na]);
			/* The key ends at '=': keep it in a copy of its own. */
			attrs[na].key = strndup(v, (size_t)(eq - v));
			if (!attrs[na].key)
				die_sys(EXIT_SYS, "unable to allocate memory");
			if (is_int) {
				errno = 0;
				attrs[na].type = TRACE_ATTR_INT;
				attrs[na].i = strtoll(eq + 1, &end, 10);
				if (!eq[1] || *end || errno)
					usage("--int %.64s: expected a 64-bit integer", v);
			} else {
				attrs[na].type = TRACE_ATTR_STRING;
				attrs[na].s = eq + 1;
				attrs[na].sn = strlen(eq + 1);
			}
			na++;
		} else {
			usage("span: unexpected argument %.64s", a);
		}
	}
	if (!have_parent)
		usage("span needs --parent TRACEPARENT");
	if (!s.name || !*s.name)
		usage("span needs --name NAME");
	if (have_self && strcmp(self.trace_id, parent.trace_id))
		usage("--span and --parent are of different traces");
	if (!have_self) {
		self = parent;
		if (trace_new_id(self.span_id, SPAN_ID_HEX / 2) < 0)
			die_sys(EXIT_SYS, "unable to read random bytes");
	}
	if (s.end_ns < s.start_ns)
		usage("--end is before --start");
	s.trace_id = self.trace_id;
	s.span_id = self.span_id;
	s.parent_span_id = parent.span_id;
	s.attrs = attrs;
	s.nattrs = na;
	if (out) {
		xbuf_puts(&file, out);
	} else {
		make_dirs(dir);
		dir_path(&file, dir, TRACES_FILE);
	}
	write_span(file.p, &s);
	buf_free(&file);
	while (na > 0)
		free((char *)attrs[--na].key);
	return EXIT_OK;
}

/* What scanning a traces file found about the build span's children. */
struct scan {
	unsigned long errors;
	unsigned long long max_end;
};

/* Scans the whole lines of text[0..n) (see trace_line_scan). */
static void scan_text(const char *text, size_t n, const char *build_span, struct scan *sc)
{
	const char *p = text, *nl;

	while (p < text + n && (nl = memchr(p, '\n', (size_t)(text + n - p)))) {
		trace_line_scan(p, (size_t)(nl - p), build_span, &sc->errors, &sc->max_end);
		p = nl + 1;
	}
}

/* Builds the build span's line into line: from b's start to end_ns,
 * status ERROR when errors or msg. */
static void build_span_line(const struct build *b, unsigned long long end_ns,
	unsigned long errors, const char *msg, struct buf *line)
{
	struct trace_attr a[2];
	struct trace_span s;
	struct resource r;
	char why[96];

	memset(a, 0, sizeof a);
	memset(&s, 0, sizeof s);
	a[0].key = "tally.duration_ms";
	a[0].type = TRACE_ATTR_INT;
	a[0].i = (long long)((end_ns - b->start_ns) / 1000000ULL);
	a[1].key = "tally.build.failed_children";
	a[1].type = TRACE_ATTR_INT;
	a[1].i = (long long)errors;
	s.trace_id = b->ctx.trace_id;
	s.span_id = b->ctx.span_id;
	s.parent_span_id = b->parent;
	s.name = "build";
	s.kind = TRACE_KIND_INTERNAL;
	s.start_ns = b->start_ns;
	s.end_ns = end_ns;
	s.attrs = a;
	s.nattrs = 2;
	if (msg || errors) {
		s.status = TRACE_STATUS_ERROR;
		if (!msg) {
			snprintf(why, sizeof why, "%lu failed %s", errors, errors == 1 ? "step" : "steps");
			msg = why;
		}
		s.status_message = msg;
	}
	env_resource(&r);
	if (trace_put_line(line, r.a, r.n, TRACE_SCOPE_NAME, NULL, &s, 1) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	buf_free(&r.store);
}

/* Records the build span of dir, ending at end_ns (0: the last child's
 * end, else the build's start), unless it is recorded already. Returns 0
 * when recorded; 1 when there is no trace or it was recorded before; -1
 * (after a warning) when it could not be written. */
static int end_build(const char *dir, unsigned long long end_ns, const char *msg, int quiet)
{
	struct buf ctx = { 0, 0, 0 }, ended = { 0, 0, 0 }, file = { 0, 0, 0 }, text = { 0, 0, 0 },
		line = { 0, 0, 0 };
	struct build b;
	struct scan sc = { 0, 0 };
	int fd, rc = 1;

	dir_path(&ctx, dir, STATE_DIR "/" CONTEXT_FILE);
	dir_path(&ended, dir, STATE_DIR "/" ENDED_FILE);
	dir_path(&file, dir, TRACES_FILE);
	if (read_context(ctx.p, &b) != 0) {
		if (!quiet)
			warnx_msg("no build is being traced in %s", ctx.p);
		goto out;
	}
	fd = open(ended.p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno != EEXIST) {
			warn_sys("unable to create %s", ended.p);
			rc = -1;
		} else if (!quiet) {
			warnx_msg("the build span of %s is already recorded", ctx.p);
		}
		goto out;
	}
	close(fd);
	if (file_read_all(file.p, MAX_TRACES_FILE, &text) == 0)
		scan_text(text.p, text.len, b.ctx.span_id, &sc);
	if (!end_ns)
		end_ns = sc.max_end;
	if (end_ns < b.start_ns)
		end_ns = b.start_ns;
	build_span_line(&b, end_ns, sc.errors, msg, &line);
	if (trace_append(file.p, line.p, line.len) < 0) {
		warn_sys("unable to append to %s", file.p);
		unlink(ended.p);
		rc = -1;
		goto out;
	}
	rc = 0;
out:
	buf_free(&ctx);
	buf_free(&ended);
	buf_free(&file);
	buf_free(&text);
	buf_free(&line);
	return rc;
}

/* tally-trace end. */
static int end_main(int argc, char **argv)
{
	const char *dir = NULL, *msg = NULL, *v;
	int i, rc;

	for (i = 2; i < argc; i++) {
		if (dir_opt(argc, argv, &i, &dir))
			continue;
		if ((v = opt_value(argc, argv, &i, "--error")))
			msg = v;
		else
			usage("end: unexpected argument %.64s", argv[i]);
	}
	rc = end_build(dir, now_ns(), msg, 0);
	return rc == 0 ? EXIT_OK : rc > 0 ? EXIT_FAIL : EXIT_SYS;
}

/* ---- send ----------------------------------------------------------------- */

/* Where and how send delivers. */
struct sink {
	char url[OTLP_MAX_URL + 16];
	struct otlp_url u;
	struct buf headers;     /* "Name: value\r\n" lines */
	int timeout_ms;
	int strict;
	unsigned long requests, failed, spans;
};

/* Returns the first non-empty of the environment variables a and b. */
static const char *env2(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (v && *v)
		return v;
	v = getenv(b);
	return v && *v ? v : NULL;
}

/* Fills k from the environment. Returns 1 when there is an endpoint, 0
 * when nothing is to be sent, -1 (after a warning) when the settings are
 * unusable. */
static int sink_setup(struct sink *k)
{
	struct trace_kv kv[TRACE_MAX_KV];
	struct buf store = { 0, 0, 0 };
	const char *sig = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), *base, *v, *exp;
	char why[200], *end;
	long t;
	int n, i;

	exp = getenv("OTEL_TRACES_EXPORTER");
	if (exp && !strcmp(exp, "none"))
		return 0;
	base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	if (sig && *sig) {
		snprintf(k->url, sizeof k->url, "%s", sig);
	} else if (base && *base) {
		/* The base URL gets the signal path v1/traces appended. */
		n = (int)strlen(base);
		snprintf(k->url, sizeof k->url, "%s%sv1/traces", base, base[n - 1] == '/' ? "" : "/");
	} else {
		return 0;
	}
	if (otlp_parse_url(k->url, &k->u) < 0) {
		warnx_msg("not an http:// or https:// endpoint URL: %.200s", k->url);
		return -1;
	}
	k->timeout_ms = DEFAULT_TIMEOUT_MS;
	v = env2("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT");
	if (v) {
		errno = 0;
		t = strtol(v, &end, 10);
		if (*end || errno || t <= 0 || t > 3600000)
			warnx_msg("OTEL_EXPORTER_OTLP_TIMEOUT=%.32s is not milliseconds (1-3600000): using %d",
				v, DEFAULT_TIMEOUT_MS);
		else
			k->timeout_ms = (int)t;
	}
	v = env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS");
	if (v) {
		n = trace_kv_parse(v, kv, TRACE_MAX_KV, &store, why, sizeof why);
		if (n < 0) {
			buf_free(&store);
			if (errno == ENOMEM)
				die_sys(EXIT_SYS, "unable to allocate memory");
			warnx_msg("OTEL_EXPORTER_OTLP_HEADERS refused: %s", why);
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (!otlp_header_ok(kv[i].key, strlen(kv[i].key), kv[i].value)) {
				warnx_msg("OTEL_EXPORTER_OTLP_HEADERS refused: header %.64s has a control byte or is not a token",
					kv[i].key);
				buf_free(&store);
				return -1;
			}
			if (buf_printf(&k->headers, "%s: %s\r\n", kv[i].key, kv[i].value) < 0)
				die_sys(EXIT_SYS, "unable to allocate memory");
		}
		buf_free(&store);
		if (k->headers.len > OTLP_MAX_HEADERS) {
			warnx_msg("OTEL_EXPORTER_OTLP_HEADERS refused: more than %d bytes", OTLP_MAX_HEADERS);
			return -1;
		}
	}
	return 1;
}

/* POSTs body through curl (for https://). Returns the HTTP status, or -1
 * with the reason in why. */
static int curl_post(const struct sink *k, const char *body, size_t n, char *why, size_t whylen)
{
	char secs[32], code[8];
	int in[2], hdr[2], outp[2], status;
	ssize_t r;
	size_t got = 0;
	pid_t pid;

	snprintf(secs, sizeof secs, "%d.%03d", k->timeout_ms / 1000, k->timeout_ms % 1000);
	if (pipe(in) < 0 || pipe(hdr) < 0 || pipe(outp) < 0) {
		snprintf(why, whylen, "unable to create a pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "unable to fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* stdin: the body; fd 3: the headers; stdout: the status code. */
		if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0 || dup2(hdr[0], 3) < 0)
			_exit(EXIT_SYS);
		close(in[1]);
		close(hdr[1]);
		close(outp[0]);
		execlp("curl", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
			"--max-time", secs, "-X", "POST", "-H", "Content-Type: application/json",
			"-H", "@/dev/fd/3", "--data-binary", "@-", k->url, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(hdr[0]);
	close(outp[1]);
	(void)write_all(hdr[1], k->headers.p ? k->headers.p : "", k->headers.len);
	close(hdr[1]);
	(void)write_all(in[1], body, n);
	close(in[1]);
	while (got < sizeof code - 1 && (r = read(outp[0], code + got, sizeof code - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		got += (size_t)r;
	}
	code[got] = '\0';
	close(outp[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		snprintf(why, whylen, "https:// needs curl, which is not installed");
		return -1;
	}
	if (atoi(code) >= 100)
		return atoi(code);
	snprintf(why, whylen, "curl could not reach %.200s (curl exit %d)", k->url,
		WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return -1;
}

/* Sends one body. Returns 0 when delivered (2xx), -1 (after a warning) when
 * not. */
static int post(struct sink *k, const char *body, size_t n)
{
	struct buf answer = { 0, 0, 0 };
	char why[300];
	const char *b;
	int status;
	size_t ln;

	k->requests++;
	if (k->u.https)
		status = curl_post(k, body, n, why, sizeof why);
	else
		status = otlp_post(&k->u, "application/json", k->headers.p, body, n,
			k->timeout_ms, &answer, why, sizeof why);
	if (status >= 200 && status < 300) {
		buf_free(&answer);
		return 0;
	}
	k->failed++;
	if (status < 0) {
		warnx_msg("traces not sent to %s: %s", k->url, why);
	} else {
		/* The first line of the answer's body says why, as a rule. */
		b = answer.p ? strstr(answer.p, "\r\n\r\n") : NULL;
		b = b ? b + 4 : "";
		ln = strcspn(b, "\r\n");
		warnx_msg("traces not accepted by %s: HTTP %d%s%.*s", k->url, status,
			ln ? ": " : "", (int)(ln > 200 ? 200 : ln), b);
	}
	buf_free(&answer);
	return -1;
}

/* Counts the spans of a line ("traceId" keys). */
static unsigned long count_spans(const char *p, size_t n)
{
	static const char key[] = "\"traceId\":";
	unsigned long c = 0;
	size_t i;

	for (i = 0; i + sizeof key - 1 <= n; i++)
		if (p[i] == '"' && !memcmp(p + i, key, sizeof key - 1))
			c++;
	return c;
}

/* Sends the whole lines of text[0..n) (name: for messages), in bodies of
 * at most MAX_BODY bytes. Returns the number of bytes up to which every
 * line was delivered or skipped as invalid; *bad counts skipped lines. */
static size_t send_text(struct sink *k, const char *name, const char *text, size_t n,
	const struct trace_attr *over, size_t nover, unsigned long *bad)
{
	struct buf body = { 0, 0, 0 }, items = { 0, 0, 0 };
	const char *p = text, *nl;
	size_t done = 0, lineno = 0, pending_end = 0;
	unsigned long pending_spans = 0, sp;
	int delivered_all = 1;

	while (p < text + n && (nl = memchr(p, '\n', (size_t)(text + n - p)))) {
		size_t len = (size_t)(nl - p);

		lineno++;
		buf_reset(&items);
		if (len == 0) {
			p = nl + 1;
			continue;
		}
		if (len > MAX_LINE || trace_line_items(p, len, over, nover, &items) < 0) {
			if (errno == ENOMEM)
				die_sys(EXIT_SYS, "unable to allocate memory");
			warnx_msg("%s:%zu: not an OTLP/JSON TracesData line: skipped", name, lineno);
			(*bad)++;
			p = nl + 1;
			continue;
		}
		sp = count_spans(p, len);
		if (body.len && body.len + items.len + 3 > MAX_BODY) {
			xbuf_puts(&body, "]}");
			if (post(k, body.p, body.len) == 0) {
				k->spans += pending_spans;
				if (delivered_all)
					done = pending_end;
			} else {
				delivered_all = 0;
			}
			buf_reset(&body);
			pending_spans = 0;
		}
		if (!body.len)
			xbuf_puts(&body, "{\"resourceSpans\":[");
		else
			xbuf_putc(&body, ',');
		xbuf_put(&body, items.p, items.len);
		pending_spans += sp;
		p = nl + 1;
		pending_end = (size_t)(p - text);
	}
	if (body.len) {
		xbuf_puts(&body, "]}");
		if (post(k, body.p, body.len) == 0) {
			k->spans += pending_spans;
			if (delivered_all)
				done = pending_end;
		}
	} else if (delivered_all) {
		done = pending_end;
	}
	buf_free(&body);
	buf_free(&items);
	return done;
}

/* Reads the byte offset stored in path (0 when none). */
static size_t read_offset(const char *path)
{
	char t[32];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	r = read(fd, t, sizeof t - 1);
	close(fd);
	if (r <= 0)
		return 0;
	t[r] = '\0';
	return (size_t)strtoull(t, NULL, 10);
}

/* Fills r with the send-time resource attributes and returns how many:
 * none when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES is set;
 * service.name only when one of them names it (else the recorded one
 * stays). */
static size_t send_resource(struct resource *r)
{
	const char *svc = getenv("OTEL_SERVICE_NAME"), *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");
	size_t i;

	memset(r, 0, sizeof *r);
	if (!(svc && *svc) && !(ra && *ra))
		return 0;
	env_resource(r);
	if ((svc && *svc) || strstr(ra, "service.name"))
		return r->n;
	for (i = 1; i < r->n; i++)
		r->a[i - 1] = r->a[i];
	return r->n - 1;
}

/* tally-trace send. */
static int send_main(int argc, char **argv)
{
	struct sink k;
	struct resource r;
	struct buf path = { 0, 0, 0 }, text = { 0, 0, 0 }, sent = { 0, 0, 0 };
	const char *dir = NULL;
	char num[32];
	int i, all = 0, keep_open = 0, rc, nfiles = 0;
	unsigned long bad = 0;
	size_t off, done, nover;

	memset(&k, 0, sizeof k);
	for (i = 2; i < argc; i++) {
		if (dir_opt(argc, argv, &i, &dir))
			continue;
		if (!strcmp(argv[i], "--strict"))
			k.strict = 1;
		else if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--keep-open"))
			keep_open = 1;
		else if (!strcmp(argv[i], "--") && ++i)
			break;
		else if (argv[i][0] == '-' && argv[i][1])
			usage("send: unknown option %.64s", argv[i]);
		else
			break;
	}
	nfiles = argc - i;
	rc = sink_setup(&k);
	if (rc == 0) {
		warnx_msg("no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or OTEL_TRACES_EXPORTER=none): nothing sent");
		return EXIT_OK;
	}
	if (rc < 0)
		return k.strict ? EXIT_FAIL : EXIT_OK;
	nover = send_resource(&r);
	if (nfiles) {
		for (; i < argc; i++) {
			if (file_read_all(argv[i], MAX_TRACES_FILE, &text) < 0) {
				warn_sys("unable to read %s", argv[i]);
				k.failed++;
				continue;
			}
			done = send_text(&k, argv[i], text.p ? text.p : "", text.len, r.a, nover, &bad);
			(void)done;
		}
		goto report;
	}
	if (!keep_open)
		(void)end_build(dir, 0, NULL, 1);
	dir_path(&path, dir, TRACES_FILE);
	dir_path(&sent, dir, STATE_DIR "/" SENT_FILE);
	if (file_read_all(path.p, MAX_TRACES_FILE, &text) < 0) {
		if (errno != ENOENT) {
			warn_sys("unable to read %s", path.p);
			k.failed++;
		} else {
			warnx_msg("%s: no traces recorded: nothing sent", path.p);
		}
		goto report;
	}
	off = all ? 0 : read_offset(sent.p);
	if (off > text.len)
		off = 0; /* the file was replaced: send it all */
	done = send_text(&k, path.p, text.p + off, text.len - off, r.a, nover, &bad);
	if (done) {
		snprintf(num, sizeof num, "%zu\n", off + done);
		if (atomic_replace(sent.p, num, strlen(num), 0) < 0)
			warn_sys("unable to record what was sent in %s", sent.p);
	}
report:
	if (k.requests || k.failed)
		printf("tally-trace: sent %lu spans to %s in %lu requests, %lu failed\n",
			k.spans, k.url, k.requests, k.failed);
	else
		printf("tally-trace: nothing new to send to %s\n", k.url);
	fflush(stdout);
	buf_free(&path);
	buf_free(&text);
	buf_free(&sent);
	buf_free(&k.headers);
	buf_free(&r.store);
	return k.strict && (k.failed || bad) ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv)
{
	die_prog = "tally-trace";
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage("missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (write_all(1, usage_text, sizeof usage_text - 1) < 0)
			die_sys(EXIT_SYS, "unable to write to stdout");
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "start"))
		return start_main(argc, argv);
	if (!strcmp(argv[1], "span"))
		return span_main(argc, argv);
	if (!strcmp(argv[1], "end"))
		return end_main(argc, argv);
	if (!strcmp(argv[1], "send"))
		return send_main(argc, argv);
	usage("unknown command %.64s", argv[1]);
}
