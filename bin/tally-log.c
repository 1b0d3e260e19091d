/* tally-log: the JSON-log emitter. Writes one JSON object per event, one
 * event per line, to stdout or appended to a file; with --stream, every line
 * of stdin becomes an event; with --run, it runs one command of a build and
 * does the whole per-command job of log_command (console, text log, JSON
 * events, warning count, duration, exit status) in this one process. Every
 * string from outside is redacted (lib/c/redact.h) unless TALLY_REDACT=0.
 * docs/reference/tally-log.md is the contract. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"
#include "trace.h"

extern char **environ;

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
/* With redaction on, the console and text-log copy of a stream is written
 * a line at a time; a partial line is written anyway once no input came
 * for IDLE_FLUSH_MS (progress bars). */
#define IDLE_FLUSH_MS 100
/* Bytes written to --result: the line "STATUS MS WARNINGS WRITE_FAILED
 * [SPAN_ID]" and its newline, then spaces up to this length. */
#define RESULT_LEN 64
/* Most -o files of one MESSAGE event (each gets the same line). */
#define TALLY_LOG_MAX_OUT 4

static const char usage_text[] =
"usage: tally-log [options] MESSAGE\n"
"       tally-log --stream [options] [--tee]\n"
"       tally-log --run [options] -- COMMAND [ARG...]\n"
"       tally-log --run --status-file FILE [options]\n"
"       tally-log --clock\n"
"       tally-log --new-correlation-id\n"
"       tally-log --serve DIR PID\n"
"       tally-log --help\n"
"Writes one JSON log event per line (RFC 8259, UTF-8) to stdout, or appends\n"
"it to FILE with one write() per line. With --stream, each line of stdin\n"
"becomes one event. With --run, runs COMMAND (or reads a command's output\n"
"from stdin and its status from --status-file) as log_command does.\n"
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
"  -o FILE               append the JSON to FILE (created with mode 0644);\n"
"                        a MESSAGE may go to up to 4 files (repeat -o)\n"
"  --console             also print \"[HH:MM:SS] LEVEL message\" on stderr\n"
"  --text-log FILE       also append \"[HH:MM:SS] LEVEL message\" to FILE\n"
"  --text-level L        the console and text-log line's level (default --level)\n"
"  --text-message M      the console and text-log line's message (default MESSAGE)\n"
"  --remove FILE         with a MESSAGE: remove FILE afterwards (a caller's\n"
"                        scratch file; repeatable up to 4; missing is fine)\n"
"  --quiet-write-errors  do not report a failed write of a log file on stderr\n"
"                        (the exit status and --result still tell)\n"
"  --stream              one event per line of stdin\n"
"  --tee                 with --stream and -o: copy stdin to stdout\n"
"  --run                 run COMMAND: output to stdout, --text-log and events\n"
"  --command DESC        with --run: the description (field \"command\")\n"
"  --status-file FILE    with --run: read the output from stdin, then the\n"
"                        exit status from FILE\n"
"  --result FILE         with --run: write \"STATUS DURATION_MS WARNINGS\n"
"                        WRITE_FAILED\" to FILE\n"
"  --record FILE         with --run: append one tab-separated line to FILE\n"
"  --traceparent TP      the W3C trace context in effect (default: $TRACEPARENT);\n"
"                        events get its trace_id and span_id\n"
"  --trace-file FILE     with --run: record the command as an OpenTelemetry span\n"
"                        (a child of the context in effect) appended to FILE as\n"
"                        one OTLP/JSON line; the command runs with TRACEPARENT\n"
"                        set to its span, and its events carry that span's ids\n"
"  --clock               print the wall clock in milliseconds since the Unix\n"
"                        epoch and a newline (a static clock for shell\n"
"                        scripts, cheaper than date +%s%N); alone: and exit;\n"
"                        with a MESSAGE: then write the event (never to stdout)\n"
"  --new-correlation-id  print a new build correlation id and a newline, and\n"
"                        exit: build-<UTC YYYYMMDDThhmmssZ>-<12 hex digits from\n"
"                        getrandom(2), else /dev/urandom>\n"
"  --serve DIR PID       start the logger of the shell PID (logging.sh does, at\n"
"                        its first call; docs/reference/tally-log.md): prints\n"
"                        \"LOGGER_PID FIFO_DIR\" (FIFOs in a new directory of\n"
"                        DIR) and exits; the logger runs until that shell ends\n"
"  --help                print this text and exit\n"
"  --                    end of options (for a MESSAGE that starts with -)\n"
"\n"
"JSON goes to -o FILE, else to stdout unless --console, --text-log or --run\n"
"is given. A repeated key keeps the last value, at the place of the first.\n"
"Secrets are replaced by [REDACTED] everywhere unless TALLY_REDACT=0.\n"
"Environment: BUILD_CORRELATION_ID, TRACEPARENT (W3C Trace Context),\n"
"TALLY_REDACT, NO_COLOR; with --trace-file: OTEL_SERVICE_NAME,\n"
"OTEL_RESOURCE_ATTRIBUTES.\n"
"A failed write is reported once per process (the first); the other\n"
"destinations are still written.\n"
"Exit status: 0 ok, 1 a --num or --bool value refused, 100 usage error,\n"
"111 a system call failed; --run: the command's status (126, 127,\n"
"128+signal as a shell reports them).\n";

/* Keys tally-log writes itself; --field/--num/--bool may not use them. */
static const char *const builtin_keys[] = {
	"timestamp", "level", "correlation_id", "trace_id", "span_id",
	"feature", "version", "stage", "message", "truncated", "metadata",
};
/* Keys the --run events add; --field/--num/--bool may not use them with
 * --run. */
static const char *const run_keys[] = {
	"command", "exit_code", "duration_ms", "warning_count",
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
	const char *outs[TALLY_LOG_MAX_OUT]; /* every -o, out_path the first */
	size_t nouts;
	const char *removes[TALLY_LOG_MAX_OUT]; /* --remove, after the event */
	size_t nremoves;
	const char *message;
	const char *text_level;   /* --text-level, else level */
	const char *text_message; /* --text-message, else message */
	const char *text_log;
	const char *command;
	const char *status_file;
	const char *result;
	const char *record;
	const char *traceparent; /* --traceparent, else $TRACEPARENT */
	const char *trace_file;
	char **cmd;          /* --run: the command and its arguments */
	int stream;
	int tee;
	int console;
	int run;
	int redact;
	int clock;
	struct kv fields[TALLY_LOG_MAX_FIELDS];
	size_t nfields;
	size_t nfield_opts;
	struct kv meta[TALLY_LOG_MAX_META];
	size_t nmeta;
	size_t nmeta_opts;
};

/* What every event shares: the keys after "level" and before "message"
 * (head), and the keys after it up to the newline (tail). */
struct event_tmpl {
	struct buf head;
	struct buf tail;
	int redact;
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

/* Returns 1 when k[0..n) is one of the keys --run events add. */
static int is_run_key(const char *k, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof run_keys / sizeof run_keys[0]; i++)
		if (strlen(run_keys[i]) == n && memcmp(run_keys[i], k, n) == 0)
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

/* Set by --quiet-write-errors: failed writes of log files are not
 * reported (the exit status and --result still tell). */
static int write_errors_quiet;
/* A write of a log file failed (only the first is reported). */
static int write_failed;

/* Reports the failure (errno) to write file, unless one was reported
 * already or --quiet-write-errors; remembers it for the exit status. */
static void write_failure(const char *what, const char *file)
{
	if (!write_failed && !write_errors_quiet)
		warn_sys("unable to %s %s", what, file);
	write_failed = 1;
}

/* Prints CLOCK_REALTIME as whole milliseconds since the epoch and a
 * newline on stdout; dies with status 111 when it cannot. */
static void print_clock(void)
{
	struct timespec ts;
	char line[32];
	int n;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		die_sys(EXIT_SYS, "unable to read the clock");
	n = snprintf(line, sizeof line, "%lld\n",
		(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (write_all(1, line, (size_t)n) < 0)
		die_sys(EXIT_SYS, "unable to write to stdout");
}

/* Prints a new build correlation id, "build-<UTC YYYYMMDDThhmmssZ>-<12
 * lowercase hex digits>" (six random bytes), and a newline on stdout;
 * dies with status 111 when it cannot. */
static void print_new_correlation_id(void)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[6];
	struct tm tm;
	time_t now = time(NULL);
	char line[64];
	size_t n, i;

	if (trace_random(r, sizeof r) < 0)
		die_sys(EXIT_SYS, "unable to read random bytes");
	if (!gmtime_r(&now, &tm))
		die(EXIT_SYS, "unable to read the clock");
	n = strftime(line, sizeof line, "build-%Y%m%dT%H%M%SZ-", &tm);
	for (i = 0; i < sizeof r; i++) {
		line[n++] = hex[r[i] >> 4];
		line[n++] = hex[r[i] & 15];
	}
	line[n++] = '\n';
	if (write_all(1, line, n) < 0)
		die_sys(EXIT_SYS, "unable to write to stdout");
}

/* Parses the command line into *o; dies on every usage error. */
static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *v;
	int i, npos = 0;

	memset(o, 0, sizeof *o);
	o->level = "INFO";
	o->redact = redact_enabled();
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
		if (strcmp(a, "--clock") == 0) {
			o->clock = 1;
		} else if (strcmp(a, "--new-correlation-id") == 0) {
			if (argc != 2)
				usage("--new-correlation-id goes alone");
			print_new_correlation_id();
			exit(EXIT_OK);
		} else if (strcmp(a, "--quiet-write-errors") == 0) {
			write_errors_quiet = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			if (write_all(1, usage_text, sizeof usage_text - 1) < 0)
				die_sys(EXIT_SYS, "unable to write to stdout");
			exit(EXIT_OK);
		} else if (strcmp(a, "--stream") == 0) {
			o->stream = 1;
		} else if (strcmp(a, "--tee") == 0) {
			o->tee = 1;
		} else if (strcmp(a, "--console") == 0) {
			o->console = 1;
		} else if (strcmp(a, "--run") == 0) {
			o->run = 1;
		} else if ((v = opt_value(argv, argc, &i, "--text-log"))) {
			o->text_log = v;
		} else if ((v = opt_value(argv, argc, &i, "--text-message"))) {
			o->text_message = v;
		} else if ((v = opt_value(argv, argc, &i, "--text-level"))) {
			if (!(o->text_level = parse_level(v)))
				usage("--text-level %s: expected DEBUG, INFO, WARN, ERROR or FATAL", v);
		} else if ((v = opt_value(argv, argc, &i, "--command"))) {
			o->command = v;
		} else if ((v = opt_value(argv, argc, &i, "--status-file"))) {
			o->status_file = v;
		} else if ((v = opt_value(argv, argc, &i, "--result"))) {
			o->result = v;
		} else if ((v = opt_value(argv, argc, &i, "--record"))) {
			o->record = v;
		} else if ((v = opt_value(argv, argc, &i, "--traceparent"))) {
			o->traceparent = v;
		} else if ((v = opt_value(argv, argc, &i, "--trace-file"))) {
			o->trace_file = v;
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
		} else if ((v = opt_value(argv, argc, &i, "--remove"))) {
			if (o->nremoves == TALLY_LOG_MAX_OUT)
				usage("more than %d --remove files", TALLY_LOG_MAX_OUT);
			o->removes[o->nremoves++] = v;
		} else if ((v = opt_value(argv, argc, &i, "-o"))) {
			if (!*v)
				usage("-o needs a file name");
			if (o->nouts == TALLY_LOG_MAX_OUT)
				usage("more than %d -o files", TALLY_LOG_MAX_OUT);
			o->outs[o->nouts++] = v;
			o->out_path = o->outs[0];
		} else {
			usage("unknown option %s", a);
		}
	}
	if ((o->out_path && !*o->out_path) || (o->text_log && !*o->text_log) ||
	    (o->trace_file && !*o->trace_file))
		usage("-o, --text-log and --trace-file need a file name");
	if (!o->traceparent)
		o->traceparent = getenv("TRACEPARENT");
	if (o->clock && argc == 2) {
		print_clock();
		exit(EXIT_OK);
	}
	if (o->nouts > 1 && (o->run || o->stream))
		usage("--run and --stream write one -o file");
	if (o->nremoves && (o->run || o->stream))
		usage("--remove goes with a MESSAGE");
	if (o->clock && (o->run || o->stream))
		usage("--clock goes alone or with a MESSAGE");
	if (o->clock && !o->nouts && !o->console && !o->text_log)
		usage("--clock with a MESSAGE needs -o, --console or --text-log: the clock has stdout");
	if ((o->text_message || o->text_level) && !o->console && !o->text_log)
		usage("--text-message and --text-level need --console or --text-log");
	if (!o->text_level)
		o->text_level = o->level;
	if (o->run) {
		if (npos)
			usage("--run takes no MESSAGE: the command follows --");
		if (i < argc)
			o->cmd = argv + i;
		if (!o->cmd && !o->status_file)
			usage("--run needs -- COMMAND [ARG...] or --status-file FILE");
		if (o->stream || o->tee)
			usage("--run does the streaming itself: no --stream or --tee");
		for (i = 0; (size_t)i < o->nfields; i++)
			if (is_run_key(o->fields[i].k, o->fields[i].kn))
				usage("key %.*s is written by --run itself",
					(int)o->fields[i].kn, o->fields[i].k);
		if (!o->command)
			o->command = o->cmd ? o->cmd[0] : "command";
		if (!o->stage)
			o->stage = "command";
		return;
	}
	if (o->command || o->status_file || o->result || o->record || o->trace_file)
		usage("--command, --status-file, --result, --record and --trace-file need --run");
	for (; i < argc; i++) {
		if (npos++)
			usage("more than one MESSAGE");
		o->message = argv[i];
	}
	if (o->stream && (o->console || o->text_log))
		usage("--console and --text-log go with a MESSAGE or --run, not --stream");
	if (o->stream && o->message)
		usage("--stream takes no MESSAGE: the messages come from stdin");
	if (!o->stream && !o->message)
		usage("missing MESSAGE");
	if (o->tee && !o->stream)
		usage("--tee needs --stream");
	if (o->tee && !o->out_path)
		usage("--tee needs -o FILE: the events and the copy would share stdout");
}

/* Returns 1 when tp is a valid W3C traceparent: version 00 with exactly
 * 55 characters, or a later version (not ff) whose first 55 characters
 * parse the same way and are followed by nothing or '-'; else 0. */
static int traceparent_ok(const char *tp)
{
	struct trace_ctx c;

	return trace_parse_traceparent(tp, strlen(tp), &c) == 0;
}

/* --run --trace-file: the command's span. */
struct cmd_span {
	int on;
	struct trace_ctx self;
	char parent[SPAN_ID_HEX + 1];   /* "" for a root span */
	char tp[TRACEPARENT_LEN + 1];   /* self as a traceparent */
	unsigned long long start_ns;
};

/* The command span of this run (on is 0 without --trace-file). */
static struct cmd_span cspan;

/* Sets up cspan for o: a child of o->traceparent when valid, else the
 * root of a new trace. Warns and leaves tracing off when the random
 * source fails. */
static void cmd_span_init(const struct opts *o)
{
	struct trace_ctx parent;

	memset(&cspan, 0, sizeof cspan);
	if (!o->run || !o->trace_file)
		return;
	if (o->traceparent && trace_parse_traceparent(o->traceparent,
	    strlen(o->traceparent), &parent) == 0) {
		cspan.self = parent;
		memcpy(cspan.parent, parent.span_id, sizeof cspan.parent);
	} else if (trace_new_id(cspan.self.trace_id, TRACE_ID_HEX / 2) < 0) {
		warn_sys("unable to read random bytes: no span recorded");
		return;
	}
	if (trace_new_id(cspan.self.span_id, SPAN_ID_HEX / 2) < 0) {
		warn_sys("unable to read random bytes: no span recorded");
		return;
	}
	cspan.self.flags = 1;
	trace_format_traceparent(&cspan.self, cspan.tp);
	cspan.on = 1;
}

/* Returns the current Unix time in nanoseconds. */
static unsigned long long wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* Appends text[0..n), redacted when redact is on, and a NUL to b. Dies on
 * ENOMEM. */
static void put_redacted(struct buf *b, const char *text, size_t n, int redact)
{
	if (redact ? redact_append(b, text, n) < 0 : buf_put(b, text, n) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	xbuf_putc(b, '\0');
}

/* Appends the command's span to o->trace_file as one OTLP/JSON line:
 * name the description, attributes process.command_line (the arguments
 * joined by spaces, redacted as the text log's "$ ..." line is),
 * process.executable.name, process.exit.code, tally.feature.name,
 * tally.feature.version, tally.command.warning_count, tally.duration_ms;
 * status ERROR when status is not 0. A failure is reported, never fatal. */
static void cmd_span_write(const struct opts *o, int status, long long ms,
	unsigned long warnings)
{
	struct trace_attr res[TRACE_MAX_KV + 1], a[7];
	struct trace_span sp;
	struct buf store = { 0, 0, 0 }, text = { 0, 0, 0 }, line = { 0, 0, 0 },
		joined = { 0, 0, 0 };
	char why[8], msg[32];
	const char *base, *cmdline = NULL, *exe = NULL;
	size_t i, na = 0;
	int nres;

	if (!cspan.on)
		return;
	/* Redacted copies: the description, then the command line and the
	 * executable's name. */
	put_redacted(&text, o->command, strlen(o->command), o->redact);
	for (i = 0; o->cmd && o->cmd[i]; i++) {
		if (i)
			xbuf_putc(&joined, ' ');
		xbuf_puts(&joined, o->cmd[i]);
	}
	if (i) {
		base = strrchr(o->cmd[0], '/');
		base = base ? base + 1 : o->cmd[0];
		put_redacted(&text, joined.p, joined.len, o->redact);
		put_redacted(&text, base, strlen(base), o->redact);
		cmdline = text.p + strlen(text.p) + 1;
		exe = cmdline + strlen(cmdline) + 1;
	}
	memset(a, 0, sizeof a);
	if (cmdline) {
		a[na].key = "process.command_line";
		a[na].type = TRACE_ATTR_STRING;
		a[na].s = cmdline;
		a[na++].sn = strlen(cmdline);
		a[na].key = "process.executable.name";
		a[na].type = TRACE_ATTR_STRING;
		a[na].s = exe;
		a[na++].sn = strlen(exe);
	}
	a[na].key = "process.exit.code";
	a[na].type = TRACE_ATTR_INT;
	a[na++].i = status;
	if (o->feature && *o->feature) {
		a[na].key = "tally.feature.name";
		a[na].type = TRACE_ATTR_STRING;
		a[na].s = o->feature;
		a[na++].sn = strlen(o->feature);
	}
	if (o->version && *o->version) {
		a[na].key = "tally.feature.version";
		a[na].type = TRACE_ATTR_STRING;
		a[na].s = o->version;
		a[na++].sn = strlen(o->version);
	}
	a[na].key = "tally.command.warning_count";
	a[na].type = TRACE_ATTR_INT;
	a[na++].i = (long long)warnings;
	a[na].key = "tally.duration_ms";
	a[na].type = TRACE_ATTR_INT;
	a[na++].i = ms;
	memset(&sp, 0, sizeof sp);
	sp.trace_id = cspan.self.trace_id;
	sp.span_id = cspan.self.span_id;
	sp.parent_span_id = cspan.parent;
	sp.name = text.p;
	sp.kind = TRACE_KIND_INTERNAL;
	sp.start_ns = cspan.start_ns;
	sp.end_ns = wall_ns();
	if (sp.end_ns < sp.start_ns)
		sp.end_ns = sp.start_ns;
	sp.attrs = a;
	sp.nattrs = na;
	if (status) {
		snprintf(msg, sizeof msg, "exit status %d", status);
		sp.status = TRACE_STATUS_ERROR;
		sp.status_message = msg;
	}
	/* An invalid OTEL_RESOURCE_ATTRIBUTES is reported by tally-trace start. */
	nres = trace_env_resource(res, sizeof res / sizeof res[0], &store, why, 0);
	if (nres < 0 || trace_put_line(&line, res, (size_t)nres, TRACE_SCOPE_NAME, NULL, &sp, 1) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (trace_append(o->trace_file, line.p, line.len) < 0)
		write_failure("append the command's span to", o->trace_file);
	buf_free(&store);
	buf_free(&text);
	buf_free(&line);
	buf_free(&joined);
}

/* A scratch buffer for redacting option values while templates are built. */
static struct buf tmpl_scratch;

/* Appends v[0..n) as a JSON string, redacted into scratch first when
 * redact is on. Returns 0, or -1 with errno ENOMEM. */
static int put_text(struct buf *b, struct buf *scratch, const char *v, size_t n,
	int redact)
{
	if (!redact)
		return json_put_string(b, v, n);
	buf_reset(scratch);
	if (redact_append(scratch, v, n) < 0)
		return -1;
	return json_put_string(b, scratch->p, scratch->len);
}

/* Appends ,"K":"V" to b (K is k[0..kn), V is v[0..n)) when v is non-NULL
 * and non-empty; V is redacted when redact is on ("[REDACTED]" whole when
 * K names a secret). */
static void put_member(struct buf *b, const char *k, size_t kn, const char *v,
	size_t n, int redact)
{
	if (!v || !n)
		return;
	if (json_put_key(b, k, kn) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (redact && redact_key_is_secret(k, kn)) {
		v = REDACT_MARK;
		n = REDACT_MARK_LEN;
	}
	if (put_text(b, &tmpl_scratch, v, n, redact) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
}

/* Appends ,"KEY":"V" for the NUL-terminated key and value v, when v is
 * non-NULL and non-empty. */
static void put_str_field(struct buf *b, const char *k, const char *v, int redact)
{
	put_member(b, k, strlen(k), v, v ? strlen(v) : 0, redact);
}

/* Appends the pairs of arr as JSON members, leaving out empty strings. */
static void put_pairs(struct buf *b, const struct kv *arr, size_t n, int redact)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct kv *p = &arr[i];

		if (p->type == KV_STRING) {
			put_member(b, p->k, p->kn, p->v, strlen(p->v), redact);
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

/* Sets tail to the keys after "message": pre[0..npre) (the --run keys),
 * the --field/--num/--bool pairs, "metadata", then "}\n". */
static void build_tail(struct buf *tail, const struct opts *o,
	const struct kv *pre, size_t npre)
{
	buf_reset(tail);
	put_pairs(tail, pre, npre, o->redact);
	put_pairs(tail, o->fields, o->nfields, o->redact);
	if (any_pairs(o->meta, o->nmeta)) {
		if (json_put_key(tail, "metadata", 8) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		xbuf_putc(tail, '{');
		put_pairs(tail, o->meta, o->nmeta, o->redact);
		xbuf_putc(tail, '}');
	}
	xbuf_puts(tail, "}\n");
}

/* Fills t with the parts every event shares, from o and the environment. */
static void build_template(struct event_tmpl *t, const struct opts *o)
{
	const char *corr = o->correlation_id, *tp = cspan.on ? cspan.tp : o->traceparent;
	struct kv cmd;

	if (!corr || !*corr) {
		corr = getenv("BUILD_CORRELATION_ID");
		if (corr && strlen(corr) > TALLY_LOG_MAX_VALUE) {
			warnx_msg("BUILD_CORRELATION_ID longer than %d bytes: ignored",
				TALLY_LOG_MAX_VALUE);
			corr = NULL;
		}
	}
	memset(t, 0, sizeof *t);
	t->redact = o->redact;
	/* Every member of the head starts with its comma: it follows "level". */
	put_str_field(&t->head, "correlation_id", corr, o->redact);
	if (tp && traceparent_ok(tp)) {
		put_member(&t->head, "trace_id", 8, tp + 3, 32, 0);
		put_member(&t->head, "span_id", 7, tp + 36, 16, 0);
	}
	put_str_field(&t->head, "feature", o->feature, o->redact);
	put_str_field(&t->head, "version", o->version, o->redact);
	put_str_field(&t->head, "stage", o->stage, o->redact);
	memset(&cmd, 0, sizeof cmd);
	cmd.k = "command";
	cmd.kn = 7;
	cmd.v = o->command;
	cmd.type = KV_STRING;
	build_tail(&t->tail, o, &cmd, o->run ? 1 : 0);
}

/* Reads the clock; dies if it fails. */
static void clock_now(clockid_t id, struct timespec *ts)
{
	if (clock_gettime(id, ts) < 0)
		die_sys(EXIT_SYS, "unable to read the clock");
}

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" to out (at
 * least 40 bytes) and returns its length; dies if the clock fails. */
static size_t timestamp_now(struct ts_cache *c, char *out)
{
	struct timespec ts;
	struct tm tm;
	unsigned ms;
	size_t n;

	clock_now(CLOCK_REALTIME, &ts);
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

/* Appends one event line at level with message msg[0..n) (left out when n
 * is 0), redacted through scratch when t->redact. Returns 0, or -1 with
 * errno ENOMEM. */
static int put_event(struct buf *b, const struct event_tmpl *t, struct ts_cache *c,
	const char *level, const char *msg, size_t n, int truncated, struct buf *scratch)
{
	char ts[48];
	size_t tn = timestamp_now(c, ts);

	if (buf_put(b, "{\"timestamp\":\"", 14) < 0 || buf_put(b, ts, tn) < 0 ||
	    buf_put(b, "\",\"level\":\"", 11) < 0 || buf_puts(b, level) < 0 ||
	    buf_putc(b, '"') < 0 || buf_put(b, t->head.p, t->head.len) < 0)
		return -1;
	if (n && (buf_put(b, ",\"message\":", 11) < 0 ||
	    put_text(b, scratch, msg, n, t->redact) < 0))
		return -1;
	if (truncated && buf_put(b, ",\"truncated\":true", 17) < 0)
		return -1;
	return buf_put(b, t->tail.p, t->tail.len);
}

/* The human-readable destinations: the console (stderr) and the text log. */
struct human {
	int console;
	int colour;
	int text_fd;            /* -1: none */
	const char *text_name;
	int failed;             /* a write failed (reported once) */
	int redact;
	int hold;               /* 1: text-log writes wait in held */
	struct buf held;        /* text-log bytes not yet written (see human_release) */
	struct buf line;
	struct buf scratch;
};

/* Prepares h from o: opens the text log (a failure is reported and leaves
 * it out). Returns 0, or -1 when the text log could not be opened. */
static int human_open(struct human *h, const struct opts *o)
{
	const char *nc = getenv("NO_COLOR");

	memset(h, 0, sizeof *h);
	h->console = o->console;
	h->colour = o->console && !(nc && *nc) && isatty(2);
	h->text_fd = -1;
	h->redact = o->redact;
	if (!o->text_log)
		return 0;
	h->text_name = o->text_log;
	h->text_fd = open(o->text_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (h->text_fd < 0) {
		write_failure("open", o->text_log);
		h->failed = 1;
		return -1;
	}
	return 0;
}

/* Writes p[0..n) to the text log (while h->hold, keeps it in h->held);
 * a failure is reported once. */
static void human_text(struct human *h, const char *p, size_t n)
{
	if (h->text_fd < 0 || !n)
		return;
	if (h->hold) {
		xbuf_put(&h->held, p, n);
		return;
	}
	if (write_all(h->text_fd, p, n) < 0) {
		write_failure("write to", h->text_name);
		close(h->text_fd);
		h->text_fd = -1;
		h->failed = 1;
	}
}

/* Writes "[HH:MM:SS] LEVEL msg\n" (msg[0..n) redacted, local time) to the
 * console, coloured when stderr is a terminal and NO_COLOR is unset or
 * empty, and to the text log. */
static void human_line(struct human *h, const char *level, const char *msg, size_t n)
{
	struct timespec ts;
	struct tm tm;
	const char *colour = "";
	char stamp[16];
	size_t at;

	if (!h->console && h->text_fd < 0)
		return;
	clock_now(CLOCK_REALTIME, &ts);
	if (!localtime_r(&ts.tv_sec, &tm))
		memset(&tm, 0, sizeof tm);
	snprintf(stamp, sizeof stamp, "[%02d:%02d:%02d] ", tm.tm_hour % 100,
		tm.tm_min % 100, tm.tm_sec % 100);
	buf_reset(&h->line);
	xbuf_puts(&h->line, stamp);
	at = h->line.len;
	xbuf_puts(&h->line, level);
	if (strlen(level) < 5)
		xbuf_putc(&h->line, ' ');
	xbuf_putc(&h->line, ' ');
	if (h->redact) {
		if (redact_append(&h->line, msg, n) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
	} else {
		xbuf_put(&h->line, msg, n);
	}
	xbuf_putc(&h->line, '\n');
	human_text(h, h->line.p, h->line.len);
	if (!h->console)
		return;
	if (h->colour) {
		if (!strcmp(level, "DEBUG"))
			colour = "\033[2m";
		else if (!strcmp(level, "WARN"))
			colour = "\033[33m";
		else if (!strcmp(level, "ERROR") || !strcmp(level, "FATAL"))
			colour = "\033[31m";
	}
	if (*colour) {
		buf_reset(&h->scratch);
		xbuf_put(&h->scratch, h->line.p, at);
		xbuf_puts(&h->scratch, colour);
		xbuf_puts(&h->scratch, level);
		xbuf_puts(&h->scratch, "\033[0m");
		xbuf_put(&h->scratch, h->line.p + at + strlen(level),
			h->line.len - at - strlen(level));
		(void)write_all(2, h->scratch.p, h->scratch.len);
	} else {
		(void)write_all(2, h->line.p, h->line.len);
	}
}

/* Writes what waited in h->held in one write (a --run's lines before and
 * after the command: one append each, not one per line) and stops
 * holding. */
static void human_release(struct human *h)
{
	h->hold = 0;
	human_text(h, h->held.p, h->held.len);
	buf_reset(&h->held);
}

/* Closes the text log and frees h. */
static void human_close(struct human *h)
{
	human_release(h);
	if (h->text_fd >= 0)
		close(h->text_fd);
	buf_free(&h->held);
	buf_free(&h->line);
	buf_free(&h->scratch);
}

/* Returns 1 when byte c is an ASCII letter. */
static int is_letter(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* Returns 1 when s[0..n) matches the documented warning pattern: the word
 * "warn" or "warning", in any case, not inside a longer word (ASCII
 * letters): "warning: x", "WARN y", "[warn]"; not "forewarned" or
 * "warnings". */
static int is_warning(const char *s, size_t n)
{
	size_t i, j;

	for (i = 0; i + 4 <= n; i++) {
		if ((s[i] | 0x20) != 'w' || strncasecmp(s + i, "warn", 4) != 0)
			continue;
		if (i > 0 && is_letter((unsigned char)s[i - 1]))
			continue;
		j = i + 4;
		if (j < n && is_letter((unsigned char)s[j])) {
			if (j + 3 <= n && strncasecmp(s + j, "ing", 3) == 0 &&
			    (j + 3 == n || !is_letter((unsigned char)s[j + 3])))
				return 1;
			continue;
		}
		return 1;
	}
	return 0;
}

/* --serve: the logger of one shell. The shell writes requests to SRV_GO
 * (fields ending in NUL bytes), its commands write their output to
 * SRV_OUT, and the logger answers each request with one line on SRV_ACK.
 * See serve_start() for the protocol. */
#define SRV_GO 3
#define SRV_OUT 4
#define SRV_ACK 5
/* The console the starter gets from the shell: the shell's stdout and
 * stderr, the logger's fds 1 and 2 for its whole life. */
#define SRV_CONSOLE_OUT 8
#define SRV_CONSOLE_ERR 9
/* The logger ends when its shell sent no hello this long after the
 * start. */
#define SRV_HELLO_MS (10 * 1000)

struct server {
	pid_t owner;        /* the shell served; 0: not serving */
	int pidfd;          /* the owner's pidfd, -1: ask kill(2) each second */
	struct buf req;     /* bytes read from SRV_GO not used yet */
	int status;         /* the end request's exit status, -1 before it */
	char dir[4096];     /* the FIFOs' directory, "" once removed */
};

static struct server srv = { 0, -1, { 0, 0, 0 }, -1, "" };

static int srv_wait(int timeout_ms);
static void srv_reply(const char *line, size_t n);

/* The state of one --stream or --run run. */
struct stream {
	const struct event_tmpl *t;
	const char *level;         /* level of the line events */
	int warnings_on;           /* --run: count warning lines, level WARN */
	unsigned long warnings;
	struct ts_cache clock;
	struct buf out;            /* events not yet written */
	struct buf scratch;
	int out_fd;                /* -1: no events */
	const char *out_name;
	int out_failed;
	int tee;                   /* copy the input to stdout */
	int tee_failed;
	struct human *h;           /* the text log gets the copy too */
	int redact;                /* copy line by line, redacted */
	size_t copied;             /* bytes of the pending partial line copied */
	char last;                 /* the last byte copied, '\n' before any */
};

/* Writes the pending events (whole lines, see append_lines); on failure
 * reports it and drops events from then on (so the command feeding stdin
 * is never blocked or killed). */
static void stream_flush(struct stream *s)
{
	if (!s->out.len)
		return;
	if (!s->out_failed && append_lines(s->out_fd, s->out.p, s->out.len) < 0) {
		write_failure("write to", s->out_name);
		s->out_failed = 1;
	}
	buf_reset(&s->out);
}

/* Copies p[0..n) to stdout (when teeing) and to the text log, as is. */
static void stream_copy_raw(struct stream *s, const char *p, size_t n)
{
	if (s->tee && !s->tee_failed && n && write_all(1, p, n) < 0) {
		warn_sys("unable to write to stdout");
		s->tee_failed = 1;
	}
	if (s->h)
		human_text(s->h, p, n);
	if (n)
		s->last = p[n - 1];
}

/* Copies in[from..to) (part of one line and its end) redacted, skipping
 * what an idle flush copied already. */
static void stream_copy(struct stream *s, const char *in, size_t from, size_t to)
{
	if (!s->redact)
		return;
	if (from < s->copied)
		from = s->copied < to ? s->copied : to;
	if (from == to)
		return;
	buf_reset(&s->scratch);
	if (redact_append(&s->scratch, in + from, to - from) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	stream_copy_raw(s, s->scratch.p, s->scratch.len);
}

/* Queues the event for one input line (or piece of one) line[0..n). */
static void stream_event(struct stream *s, const char *line, size_t n, int truncated)
{
	const char *level = s->level;

	if (!n)
		return;
	if (s->warnings_on && is_warning(line, n)) {
		s->warnings++;
		level = "WARN";
	}
	if (s->out_fd < 0)
		return;
	if (put_event(&s->out, s->t, &s->clock, level, line, n, truncated, &s->scratch) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (s->out.len >= OUT_FLUSH)
		stream_flush(s);
}

/* Turns the complete lines of in[0..len) into events, and pieces of lines
 * too long to keep; final (EOF) takes the rest as a last line. Returns how
 * many bytes were used. */
static size_t stream_lines(struct stream *s, const char *in, size_t len, int final)
{
	size_t start = 0, n, cut, end;
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
			stream_copy(s, in, start, start + cut);
			start += cut;
			continue;
		}
		if (!nl && !final)
			break;
		stream_event(s, p, n, 0);
		end = nl ? start + (size_t)(nl - p) + 1 : len;
		stream_copy(s, in, start, end);
		start = end;
	}
	return start;
}

/* Reads fd until EOF into events and copies; returns 0, or -1 when a
 * write of events or of the copy failed. The input buffer is static (one
 * run per process): its pages are touched only as far as input comes, and
 * never unmapped (after posix_spawn a munmap costs a TLB shootdown on the
 * CPU the child ran on). The events buffer grows as events come. */
static int stream_run(struct stream *s, int fd)
{
	static char in[IN_CAP];
	size_t have = 0, used;
	ssize_t r;
	struct pollfd pfd;

	for (;;) {
		stream_flush(s);
		if (!srv.owner && s->redact && have > s->copied) {
			/* A partial line waits: copy it if no input comes. */
			pfd.fd = fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, IDLE_FLUSH_MS) == 0) {
				stream_copy(s, in, s->copied, have);
				s->copied = have;
			}
		}
		r = read(fd, in + have, IN_CAP - have);
		if (r < 0 && errno == EAGAIN && srv.owner) {
			/* The logger: no output waits. After the end request,
			 * that was the last of it; else wait for either. */
			if (srv.status >= 0)
				break;
			if (srv_wait(s->redact && have > s->copied ? IDLE_FLUSH_MS : -1) == 0 &&
			    s->redact && have > s->copied) {
				stream_copy(s, in, s->copied, have);
				s->copied = have;
			}
			continue;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys(EXIT_SYS, "unable to read the command's output");
		}
		if (r == 0)
			break;
		if (!s->redact)
			stream_copy_raw(s, in + have, (size_t)r);
		have += (size_t)r;
		used = stream_lines(s, in, have, 0);
		memmove(in, in + used, have - used);
		have -= used;
		s->copied = s->copied > used ? s->copied - used : 0;
	}
	stream_lines(s, in, have, 1);
	stream_flush(s);
	return s->out_failed || s->tee_failed ? -1 : 0;
}

/* Sets up s for the events of t at level, to out_fd (-1: none). */
static void stream_init(struct stream *s, const struct event_tmpl *t, const char *level,
	int out_fd, const char *out_name)
{
	memset(s, 0, sizeof *s);
	s->t = t;
	s->level = level;
	s->out_fd = out_fd;
	s->out_name = out_name;
	s->redact = t->redact;
	s->last = '\n';
}

/* Frees what s holds. */
static void stream_free(struct stream *s)
{
	buf_free(&s->out);
	buf_free(&s->scratch);
}

/* Returns the monotonic milliseconds from t0 to now. */
static long long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_now(CLOCK_MONOTONIC, &t1);
	return (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
		(t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Starts cmd with stdout and stderr on a new pipe; returns the pipe's read
 * end and sets *pid. Dies with 111 when it cannot. */
static int spawn(char **cmd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t dfl;
	char msg[512];
	int fds[2], err, n;

	if (pipe(fds) < 0)
		die_sys(EXIT_SYS, "unable to create a pipe");
	if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0)
		die_sys(EXIT_SYS, "unable to set close-on-exec");
	/* posix_spawn: vfork-like, no copy of our memory (cheaper than fork). */
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	if ((err = posix_spawn_file_actions_init(&fa)) ||
	    (err = posix_spawn_file_actions_adddup2(&fa, fds[1], 1)) ||
	    (err = posix_spawn_file_actions_adddup2(&fa, fds[1], 2)) ||
	    (fds[1] > 2 && (err = posix_spawn_file_actions_addclose(&fa, fds[1]))) ||
	    (err = posix_spawnattr_init(&at)) ||
	    (err = posix_spawnattr_setsigdefault(&at, &dfl)) ||
	    (err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF))) {
		errno = err;
		die_sys(EXIT_SYS, "unable to set up the command");
	}
	err = posix_spawnp(pid, cmd[0], &fa, &at, cmd, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (err) {
		/* As a shell: the message is part of the command's output, the
		 * status 127 (not found) or 126 (not runnable). */
		n = snprintf(msg, sizeof msg, "tally-log: warning: unable to run %s: %s\n", cmd[0],
			strerror(err));
		if (n > 0)
			(void)!write(fds[1], msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
		*pid = -(err == ENOENT || err == ENOTDIR ? 127 : 126);
	}
	close(fds[1]);
	return fds[0];
}

/* Waits for pid; returns its exit status as a shell reports it. */
static int wait_status(pid_t pid, const char *name)
{
	int status;

	if (pid < 0)
		return -pid; /* never started: 127 or 126 */
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die_sys(EXIT_SYS, "unable to wait for %s", name);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_SYS;
}

/* Returns the exit status written in file (a decimal 0-255 and a newline,
 * as `printf '%s\n' $?` writes it), or 1 after a warning when there is
 * none. */
static int read_status_file(const char *file)
{
	char b[32];
	ssize_t r = -1;
	int fd, v = 0;
	size_t i;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = read(fd, b, sizeof b - 1);
		close(fd);
	}
	if (r <= 0) {
		warnx_msg("no exit status in %s: counting the command as failed (1)", file);
		return EXIT_FAIL;
	}
	for (i = 0; i < (size_t)r && b[i] >= '0' && b[i] <= '9' && v < 1000; i++)
		v = v * 10 + (b[i] - '0');
	if (i == 0 || v > 255) {
		warnx_msg("no exit status in %s: counting the command as failed (1)", file);
		return EXIT_FAIL;
	}
	return v;
}

/* Writes text[0..n) to file: appended when append, else over the start of
 * the content (not truncated: the callers write lines of one fixed
 * length, which is cheaper than a truncation per command). Reports a
 * failure and returns -1; else 0. */
static int write_file(const char *file, const char *text, size_t n, int append)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : 0), 0644);

	if (fd < 0 || write_all(fd, text, n) < 0) {
		write_failure("write to", file);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		write_failure("close", file);
		return -1;
	}
	return 0;
}

/* Appends the event line[0..n) to file (created 0644) with append_lines:
 * one write() of the whole line, so concurrent appenders never interleave
 * within a line. Reports a failure and returns -1; else 0. */
static int append_file(const char *file, const char *line, size_t n)
{
	int fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		write_failure("open", file);
		return -1;
	}
	if (append_lines(fd, line, n) < 0) {
		write_failure("write to", file);
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		write_failure("close", file);
		return -1;
	}
	return 0;
}

/* Appends to b the tab-separated record of a command: DURATION_MS,
 * STATUS, WARNINGS, FEATURE ("-" when none), DESCRIPTION (redacted, tabs
 * and line ends as spaces). */
static void put_record(struct buf *b, const struct opts *o, long long ms,
	int status, unsigned long warnings)
{
	size_t i, at;

	if (buf_printf(b, "%lld\t%d\t%lu\t%s\t", ms, status, warnings,
	    o->feature && *o->feature ? o->feature : "-") < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	at = b->len;
	if (o->redact) {
		if (redact_append(b, o->command, strlen(o->command)) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
	} else {
		xbuf_puts(b, o->command);
	}
	for (i = at; i < b->len; i++)
		if (b->p[i] == '\t' || b->p[i] == '\n' || b->p[i] == '\r')
			b->p[i] = ' ';
	xbuf_putc(b, '\n');
}

/* --run: runs the command (or reads its output from stdin and its status
 * from --status-file), with its output to stdout and the text log and one
 * event per line to out_fd, then the closing lines and event. Returns the
 * command's exit status. */
static int run_main(const struct opts *o, struct event_tmpl *t, int out_fd,
	const char *out_name)
{
	struct human h;
	struct stream s;
	struct timespec t0;
	struct sigaction ign, old_int, old_quit;
	struct buf b = { 0, 0, 0 };
	struct kv pre[4];
	char nums[3][24], result[RESULT_LEN];
	long long ms;
	int fd = 0, status, i;
	pid_t pid = 0;

	human_open(&h, o);
	clock_now(CLOCK_MONOTONIC, &t0);
	cspan.start_ns = wall_ns();
	/* The command's children see its span as their parent. */
	if (cspan.on && setenv("TRACEPARENT", cspan.tp, 1) < 0)
		die_sys(EXIT_SYS, "unable to set TRACEPARENT");
	xbuf_puts(&b, "Running: ");
	xbuf_puts(&b, o->command);
	h.hold = 1;
	human_line(&h, "INFO", b.p, b.len);
	if (o->cmd) {
		buf_reset(&b);
		xbuf_puts(&b, "$");
		for (i = 0; o->cmd[i]; i++) {
			xbuf_putc(&b, ' ');
			xbuf_puts(&b, o->cmd[i]);
		}
		xbuf_putc(&b, '\n');
		if (o->redact) {
			buf_reset(&h.line);
			if (redact_append(&h.line, b.p, b.len) < 0)
				die_sys(EXIT_SYS, "unable to allocate memory");
			human_text(&h, h.line.p, h.line.len);
		} else {
			human_text(&h, b.p, b.len);
		}
	}
	human_release(&h);
	if (srv.owner) {
		/* The logger: the shell runs the command now, its output to
		 * SRV_OUT, then sends its status. */
		srv.status = -1;
		fd = SRV_OUT;
	} else if (!o->status_file) {
		fd = spawn(o->cmd, &pid);
	}
	/* Like system(3): an interrupt is the command's to handle; we log it. */
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	stream_init(&s, t, o->level, out_fd, out_name);
	s.warnings_on = 1;
	s.tee = 1;
	s.h = &h;
	(void)stream_run(&s, fd);
	/* Output without a final newline still ends its line. */
	if (s.last != '\n')
		stream_copy_raw(&s, "\n", 1);
	if (srv.owner) {
		status = srv.status;
	} else if (o->status_file) {
		status = read_status_file(o->status_file);
	} else {
		close(fd);
		status = wait_status(pid, o->cmd[0]);
	}
	ms = ms_since(&t0);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);

	/* The closing lines: text log (one write), console, JSON. */
	h.hold = 1;
	buf_reset(&b);
	if (buf_printf(&b, "$ exit %d after %lld ms\n", status, ms) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	human_text(&h, b.p, b.len);
	buf_reset(&b);
	xbuf_puts(&b, status ? "Failed: " : "Done: ");
	xbuf_puts(&b, o->command);
	/* Seconds with one decimal, rounded to the nearest tenth. */
	if ((status ? buf_printf(&b, " (exit %d, %lld.%llds)", status,
	    (ms + 50) / 1000, (ms + 50) / 100 % 10) : s.warnings ?
	    buf_printf(&b, " (%lld.%llds, %lu warnings)", (ms + 50) / 1000,
	    (ms + 50) / 100 % 10, s.warnings) :
	    buf_printf(&b, " (%lld.%llds)", (ms + 50) / 1000, (ms + 50) / 100 % 10)) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	human_line(&h, status ? "ERROR" : "INFO", b.p, b.len);
	human_release(&h);
	if (out_fd >= 0) {
		snprintf(nums[0], sizeof nums[0], "%d", status);
		snprintf(nums[1], sizeof nums[1], "%lld", ms);
		snprintf(nums[2], sizeof nums[2], "%lu", s.warnings);
		memset(pre, 0, sizeof pre);
		pre[0].k = "command", pre[0].kn = 7, pre[0].v = o->command, pre[0].type = KV_STRING;
		pre[1].k = "exit_code", pre[1].kn = 9, pre[1].v = nums[0], pre[1].type = KV_NUMBER;
		pre[2].k = "duration_ms", pre[2].kn = 11, pre[2].v = nums[1], pre[2].type = KV_NUMBER;
		pre[3].k = "warning_count", pre[3].kn = 13, pre[3].v = nums[2], pre[3].type = KV_NUMBER;
		build_tail(&t->tail, o, pre, 4);
		buf_reset(&b);
		xbuf_puts(&b, "Command finished: ");
		xbuf_puts(&b, o->command);
		buf_reset(&s.out);
		if (put_event(&s.out, t, &s.clock, status ? "ERROR" : o->level, b.p, b.len,
		    0, &s.scratch) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		stream_flush(&s);
	}
	if (o->result && !srv.owner) {
		/* The line, then spaces up to RESULT_LEN bytes, so each write
		 * covers the last and a shell's read(1) stops at the newline. */
		memset(result, ' ', sizeof result);
		i = cspan.on ? snprintf(result, sizeof result, "%d %lld %lu %d %s\n", status, ms,
			s.warnings, write_failed, cspan.self.span_id) :
			snprintf(result, sizeof result, "%d %lld %lu %d\n", status, ms, s.warnings,
			write_failed);
		if (i >= 0 && i < RESULT_LEN)
			result[i] = ' ';
		else
			result[RESULT_LEN - 1] = '\n';
		(void)write_file(o->result, result, RESULT_LEN, 0);
	}
	cmd_span_write(o, status, ms, s.warnings);
	if (o->record) {
		buf_reset(&b);
		put_record(&b, o, ms, status, s.warnings);
		(void)write_file(o->record, b.p, b.len, 1);
	}
	if (srv.owner) {
		/* The logger: the result answers the end request, once every
		 * line is written. */
		i = snprintf(result, sizeof result, "%d %lld %lu %d\n", status, ms, s.warnings,
			write_failed);
		srv_reply(result, i > 0 && i < RESULT_LEN ? (size_t)i : 0);
	}
	stream_free(&s);
	human_close(&h);
	buf_free(&b);
	return status;
}

/* A MESSAGE: its event to stdout (fd 1) or to every -o file (fd -2; -1:
 * none), its line to the console and the text log; then the --remove
 * files go. Returns 0, or 111 when a write failed. */
static int message_main(const struct opts *o, const struct event_tmpl *t, int fd)
{
	struct ts_cache clock = { 0, 0, "", 0 };
	struct buf line = { 0, 0, 0 }, scratch = { 0, 0, 0 };
	struct human h;
	const char *text_msg;
	size_t n, cut, k;
	int status = EXIT_OK;

	n = strlen(o->message);
	cut = json_utf8_cut(o->message, n, TALLY_LOG_MAX_MESSAGE);
	if (fd != -1 && put_event(&line, t, &clock, o->level, o->message, cut,
	    cut < n, &scratch) < 0)
		die_sys(EXIT_SYS, "unable to allocate memory");
	if (fd == 1 && write_all(1, line.p, line.len) < 0)
		die_sys(EXIT_SYS, "unable to write to stdout");
	for (k = 0; k < o->nouts; k++)
		if (append_file(o->outs[k], line.p, line.len) < 0)
			status = EXIT_SYS;
	if (o->console || o->text_log) {
		text_msg = o->text_message ? o->text_message : o->message;
		n = strlen(text_msg);
		human_open(&h, o);
		human_line(&h, o->text_level, text_msg,
			json_utf8_cut(text_msg, n, TALLY_LOG_MAX_MESSAGE));
		if (h.failed)
			status = EXIT_SYS;
		human_close(&h);
	}
	for (k = 0; k < o->nremoves; k++)
		if (unlink(o->removes[k]) < 0 && errno != ENOENT)
			warn_sys("unable to remove %s", o->removes[k]);
	buf_free(&line);
	buf_free(&scratch);
	return status;
}

/* ---- --serve: the logger of one shell ------------------------------------
 *
 * log_command's fast path: instead of one tally-log --run process per
 * command, the shell starts one logger (serve_start) at its first command
 * and runs each command itself, its output into the logger, which writes
 * exactly what tally-log --run writes, with the same code.
 *
 * The starter gets the shell's stdout and stderr as fds 8 and 9: they are
 * the logger's console (fds 1 and 2) for its whole life, and the shell
 * uses the logger only while its own stdout and stderr are those same
 * pipes or devices. The FIFOs, made in a new directory and opened by the
 * shell as fds 7 (go, read-write: a logger gone is never a SIGPIPE), 8
 * (out) and 9 (ack), lose their names at the hello:
 *   shell -> go   "H"                          hello  -> ack "ok"
 *   shell -> go   "B" NO_COLOR TALLY_REDACT TRACEPARENT BUILD_CORRELATION_ID
 *                 TZ ARGC ARG...               begin (no answer)
 *       (the environment values "" when unset, else "=VALUE"; the ARGs
 *       those of tally-log --run, without --result and --trace-file)
 *   command -> out   its output
 *   shell -> go   "E" STATUS                   end    -> ack "STATUS
 *                                              DURATION_MS WARNINGS WRITE_FAILED"
 *   shell -> go   "M" (the five values) ARGC ARG...
 *                 a MESSAGE (ARGs of tally-log MESSAGE with --console,
 *                 --text-log or -o)            message -> ack "STATUS"
 * Each field ends with a NUL byte; each answer is one line, written once
 * every line of the command is. The logger ends when its shell is gone
 * (pidfd_open(2), else kill(2) once a second; a shell that execs another
 * program keeps it), when the shell closes fd 8, or on a request it does
 * not know. */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* The environment tally-log reads, sent with each B and M request (the
 * shell's may change after the logger started), then ARGC: its field. */
static const char *const srv_env[] = { "NO_COLOR", "TALLY_REDACT", "TRACEPARENT",
	"BUILD_CORRELATION_ID", "TZ" };
#define SRV_ARGC 6

/* The fields of one request (pointers into the bytes read). */
struct fields {
	char **f;
	size_t n;
	size_t cap;
};

static const char *const srv_fifo_names[] = { "go", "out", "ack" };

/* Writes line[0..n) to the shell (SRV_ACK); a logger that cannot answer
 * ends (the shell then runs its commands under tally-log --run). */
static void srv_reply(const char *line, size_t n)
{
	if (write_all(SRV_ACK, line, n) < 0)
		exit(EXIT_SYS);
}

/* Removes the FIFOs' names and their directory (once the shell opened
 * them, or when the logger ends before). */
static void srv_cleanup(void)
{
	char path[sizeof srv.dir + 8];
	size_t i;

	if (!srv.dir[0])
		return;
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", srv.dir, srv_fifo_names[i]);
		(void)unlink(path);
	}
	(void)rmdir(srv.dir);
	srv.dir[0] = '\0';
}

/* Ends the logger: nothing is left to serve. */
static void __attribute__((noreturn)) srv_exit(int status)
{
	srv_cleanup();
	exit(status);
}

/* Returns 1 while the owner runs (a zombie is gone); for kernels without
 * pidfd_open(2), asked once a second. */
static int srv_owner_alive(void)
{
	char path[64], b[512], *p;
	ssize_t r;
	int fd;

	if (kill(srv.owner, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)srv.owner);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	r = read(fd, b, sizeof b - 1);
	close(fd);
	if (r <= 0)
		return 1;
	b[r] = '\0';
	p = strrchr(b, ')');
	return !(p && p[1] == ' ' && p[2] == 'Z');
}

/* Returns the monotonic clock in milliseconds. */
static long long srv_now_ms(void)
{
	struct timespec ts;

	clock_now(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what SRV_GO holds into srv.req. Returns 0, or -1 at its end (no
 * writer left: the shell is gone). */
static int srv_read(void)
{
	ssize_t r;

	for (;;) {
		if (buf_reserve(&srv.req, 65536) < 0)
			die_sys(EXIT_SYS, "unable to allocate memory");
		r = read(SRV_GO, srv.req.p + srv.req.len, srv.req.cap - srv.req.len - 1);
		if (r > 0) {
			srv.req.len += (size_t)r;
			srv.req.p[srv.req.len] = '\0';
			continue;
		}
		if (r == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		die_sys(EXIT_SYS, "unable to read a request");
	}
}

/* Splits the request at the front of srv.req into fs (pointers into
 * srv.req, then a NULL). Returns its length in bytes, or 0 while it is
 * incomplete. Dies on a request that is not H, B or E. */
static size_t srv_split(struct fields *fs)
{
	char *p = srv.req.p, *z, *end;
	size_t at = 0, need = 1;
	unsigned long argc;

	fs->n = 0;
	while (fs->n < need) {
		if (at >= srv.req.len || !(z = memchr(p + at, '\0', srv.req.len - at)))
			return 0;
		if (fs->n + 2 > fs->cap) {
			fs->cap = fs->cap ? fs->cap * 2 : 64;
			fs->f = realloc(fs->f, fs->cap * sizeof *fs->f);
			if (!fs->f)
				die_sys(EXIT_SYS, "unable to allocate memory");
		}
		fs->f[fs->n++] = p + at;
		at = (size_t)(z - p) + 1;
		if (fs->n == 1) {
			if (!strcmp(p, "B") || !strcmp(p, "M"))
				need = SRV_ARGC + 1;
			else if (!strcmp(p, "E"))
				need = 2;
			else if (strcmp(p, "H"))
				break;
		} else if (need == SRV_ARGC + 1 && fs->n == SRV_ARGC + 1) {
			errno = 0;
			argc = strtoul(fs->f[SRV_ARGC], &end, 10);
			if (errno || *end || end == fs->f[SRV_ARGC] || argc > (1UL << 20))
				break;
			need += argc;
		}
	}
	if (fs->n < need) {
		warnx_msg("logger: a request it does not know: ending");
		srv_exit(EXIT_USAGE);
	}
	fs->f[fs->n] = NULL;
	return at;
}

/* Drops the first n bytes of srv.req. */
static void srv_consume(size_t n)
{
	memmove(srv.req.p, srv.req.p + n, srv.req.len - n);
	srv.req.len -= n;
	if (srv.req.cap)
		srv.req.p[srv.req.len] = '\0';
}

/* Takes the end request when srv.req holds all of it: sets srv.status
 * and returns 1; else 0. Ends the logger on any other request. */
static int srv_take_end(void)
{
	static struct fields fs;
	size_t len;
	char *end;
	long v;

	if (!(len = srv_split(&fs)))
		return 0;
	errno = 0;
	v = strtol(fs.f[fs.n - 1], &end, 10);
	if (strcmp(fs.f[0], "E") || errno || *end || v < 0 || v > 255) {
		warnx_msg("logger: a request it does not know: ending");
		srv_exit(EXIT_USAGE);
	}
	srv.status = (int)v;
	srv_consume(len);
	return 1;
}

/* Waits up to timeout_ms (-1: no limit) for the command's output or the
 * end request, and reads that request (srv.status). Returns 0 after the
 * timeout, else 1. Ends the logger when its shell is gone. */
static int srv_wait(int timeout_ms)
{
	struct pollfd p[3];
	int n;

	/* The end request may have come with the begin (a quick command). */
	if (srv_take_end())
		return 1;
	p[0].fd = SRV_OUT, p[0].events = POLLIN, p[0].revents = 0;
	p[1].fd = SRV_GO, p[1].events = POLLIN, p[1].revents = 0;
	p[2].fd = srv.pidfd, p[2].events = POLLIN, p[2].revents = 0;
	if (srv.pidfd < 0 && (timeout_ms < 0 || timeout_ms > 1000))
		timeout_ms = 1000;
	n = poll(p, srv.pidfd >= 0 ? 3 : 2, timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 1;
		die_sys(EXIT_SYS, "unable to wait for the command's output");
	}
	if (srv.pidfd >= 0 ? p[2].revents != 0 : n == 0 && !srv_owner_alive())
		srv_exit(EXIT_OK);
	if (p[1].revents) {
		if (srv_read() < 0)
			srv_exit(EXIT_OK);
		(void)srv_take_end();
	}
	return n > 0;
}

/* The begin or message request f[0..n): sets the environment, then does
 * tally-log --run's job with the command the shell runs (run_main), or
 * tally-log MESSAGE's (message_main, answered with its exit status). */
static void srv_begin(char **f, size_t n)
{

	struct opts o;
	struct event_tmpl t;
	const char *out_name = "stdout";
	char line[16];
	size_t i;
	int fd = -1, status;

	for (i = 0; i < SRV_ARGC - 1; i++)
		if (f[1 + i][0] == '=' ? setenv(srv_env[i], f[1 + i] + 1, 1) : unsetenv(srv_env[i]))
			die_sys(EXIT_SYS, "unable to set %s", srv_env[i]);
	/* f[SRV_ARGC] (ARGC) becomes argv[0]. */
	f[SRV_ARGC] = (char *)"tally-log";
	write_failed = 0;
	write_errors_quiet = 0;
	parse_args((int)(n - SRV_ARGC), f + SRV_ARGC, &o);
	if (f[0][0] == 'M' ? o.run || o.stream || o.clock || !(o.console || o.text_log || o.nouts) :
	    !o.run || !o.cmd || o.status_file || o.result || o.trace_file) {
		warnx_msg("logger: a request it does not know: ending");
		srv_exit(EXIT_USAGE);
	}
	cmd_span_init(&o);
	build_template(&t, &o);
	if (f[0][0] == 'M') {
		/* A MESSAGE: answered with tally-log's exit status. */
		status = message_main(&o, &t, o.nouts ? -2 : -1);
		if (write_failed && status == EXIT_OK)
			status = EXIT_SYS;
		snprintf(line, sizeof line, "%d\n", status);
		srv_reply(line, strlen(line));
		buf_free(&t.head);
		buf_free(&t.tail);
		return;
	}
	if (o.out_path) {
		fd = open(o.out_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			write_failure("open", o.out_path);
		out_name = o.out_path;
	}
	(void)run_main(&o, &t, fd, out_name);
	if (fd >= 0)
		close(fd);
	buf_free(&t.head);
	buf_free(&t.tail);
}

/* The logger's loop between commands: hello, begin requests, output that
 * comes between commands (from something a command left running: copied
 * to the console). */
static void __attribute__((noreturn)) serve_loop(void)
{
	static struct fields fs;
	struct pollfd p[3];
	struct buf cur;
	char junk[4096];
	long long since = srv_now_ms(), left;
	ssize_t r;
	size_t len;
	int hello = 0, n;

	for (;;) {
		left = hello ? -1 : SRV_HELLO_MS - (srv_now_ms() - since);
		if (!hello && left <= 0)
			srv_exit(EXIT_OK);
		if (srv.pidfd < 0 && (left < 0 || left > 1000))
			left = 1000;
		p[0].fd = SRV_GO, p[0].events = POLLIN, p[0].revents = 0;
		p[1].fd = SRV_OUT, p[1].events = POLLIN, p[1].revents = 0;
		p[2].fd = srv.pidfd, p[2].events = POLLIN, p[2].revents = 0;
		n = poll(p, srv.pidfd >= 0 ? 3 : 2, (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die_sys(EXIT_SYS, "unable to wait for a request");
		}
		if (srv.pidfd >= 0 ? p[2].revents != 0 : n == 0 && !srv_owner_alive())
			srv_exit(EXIT_OK);
		/* Output with no request waiting is a stray's; output that came
		 * with a begin request is its command's (the begin is read
		 * first). */
		if (p[1].revents && !p[0].revents) {
			r = read(SRV_OUT, junk, sizeof junk);
			if (r > 0)
				(void)write_all(1, junk, (size_t)r);
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				srv_exit(EXIT_OK); /* the shell closed fd 8 */
		}
		if (!p[0].revents)
			continue;
		if (srv_read() < 0)
			srv_exit(EXIT_OK);
		while ((len = srv_split(&fs))) {
			if (!strcmp(fs.f[0], "H")) {
				hello = 1;
				srv_cleanup();
				srv_consume(len);
				srv_reply("ok\n", 3);
			} else if ((!strcmp(fs.f[0], "B") || !strcmp(fs.f[0], "M")) && hello) {
				/* The request's bytes stay put while it runs (the end
				 * request is read into a new srv.req). */
				cur = srv.req;
				memset(&srv.req, 0, sizeof srv.req);
				if (cur.len > len)
					xbuf_put(&srv.req, cur.p + len, cur.len - len);
				srv_begin(fs.f, fs.n);
				buf_free(&cur);
			} else {
				warnx_msg("logger: a request it does not know: ending");
				srv_exit(EXIT_USAGE);
			}
		}
	}
}

/* The logger process: its FIFOs as fds 3, 4 and 5, /dev/null as 0, 1 and
 * 2 (the console is the owner's, opened at each command), no other fd;
 * then tells the starter (one byte on ready) and serves. */
static void __attribute__((noreturn)) serve_child(int ready)
{
	char path[sizeof srv.dir + 8];
	int fds[3], i, null;

	(void)setsid();
	ready = fcntl(ready, F_DUPFD_CLOEXEC, 10);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", srv.dir, srv_fifo_names[i]);
		fds[i] = open(path, (i == 2 ? O_RDWR : O_RDONLY | O_NONBLOCK) | O_CLOEXEC);
		if (fds[i] < 0 || (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			srv_exit(EXIT_SYS);
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (ready < 0 || null < 0 || dup2(null, 0) < 0 || dup2(SRV_CONSOLE_OUT, 1) < 0 ||
	    dup2(SRV_CONSOLE_ERR, 2) < 0 || dup2(fds[0], SRV_GO) < 0 ||
	    dup2(fds[1], SRV_OUT) < 0 || dup2(fds[2], SRV_ACK) < 0)
		srv_exit(EXIT_SYS);
	/* SRV_GO and SRV_OUT keep O_NONBLOCK (a file status flag: dup2
	 * shares it). Every other fd goes (the shell's, the starter's). */
	if (syscall(SYS_close_range, 6U, (unsigned)ready - 1, 0U) < 0)
		for (i = 6; i < ready; i++)
			(void)close(i);
	if (syscall(SYS_close_range, (unsigned)ready + 1, ~0U, 0U) < 0)
		for (i = ready + 1; i < 1024; i++)
			(void)close(i);
	srv.pidfd = (int)syscall(SYS_pidfd_open, srv.owner, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if (write_all(ready, "1", 1) < 0)
		srv_exit(EXIT_SYS);
	close(ready);
	serve_loop();
}

/* Returns the process id in s (decimal, above 1, a process that exists),
 * else 0. */
static pid_t serve_pid(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 2 || v > 0x3fffffff || kill((pid_t)v, 0) < 0)
		return 0;
	return (pid_t)v;
}

/* --serve DIR PID: makes the FIFOs in a new directory of DIR, starts the
 * logger of the shell PID (a process of its own session, not a child of
 * the shell: the shell's `wait` and $! never see it), prints "PID
 * FIFO_DIR" and exits 0; 111 when it cannot. */
static int serve_start(const char *parent, pid_t owner)
{
	char path[sizeof srv.dir + 8], c;
	int ready[2], i;
	ssize_t r;
	pid_t pid;

	srv.owner = owner;
	if ((size_t)snprintf(srv.dir, sizeof srv.dir, "%s/.tally-log.XXXXXX", parent) >=
	    sizeof srv.dir)
		usage("--serve: DIR is too long");
	if (!mkdtemp(srv.dir)) {
		srv.dir[0] = '\0';
		die_sys(EXIT_SYS, "unable to make a directory in %s", parent);
	}
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", srv.dir, srv_fifo_names[i]);
		if (mkfifo(path, 0600) < 0) {
			warn_sys("unable to make %s", path);
			srv_exit(EXIT_SYS);
		}
	}
	if (pipe(ready) < 0) {
		warn_sys("unable to make a pipe");
		srv_exit(EXIT_SYS);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		warn_sys("unable to start the logger");
		srv_exit(EXIT_SYS);
	}
	if (pid == 0) {
		close(ready[0]);
		serve_child(ready[1]);
	}
	close(ready[1]);
	while ((r = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1) {
		warnx_msg("the logger did not start");
		srv_exit(EXIT_SYS);
	}
	if (printf("%d %s\n", (int)pid, srv.dir) < 0 || fflush(stdout) == EOF)
		die_sys(EXIT_SYS, "unable to write to stdout");
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct event_tmpl t;
	struct stream s;
	const char *out_name = "stdout";
	int fd = -1, status = EXIT_OK;

	die_prog = "tally-log";
	if (argc >= 2 && !strcmp(argv[1], "--serve")) {
		if (argc != 4 || !*argv[2] || !serve_pid(argv[3]))
			usage("--serve takes a DIR and the PID of the shell served, and goes alone");
		signal(SIGPIPE, SIG_IGN);
		return serve_start(argv[2], serve_pid(argv[3]));
	}
	parse_args(argc, argv, &o);
	cmd_span_init(&o);
	build_template(&t, &o);
	/* A closed reader is a write error (exit 111), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (o.clock)
		print_clock();
	if (o.out_path && (o.run || o.stream)) {
		fd = open(o.out_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 && o.stream)
			die_sys(EXIT_SYS, "unable to open %s", o.out_path);
		if (fd < 0)
			write_failure("open", o.out_path);
		out_name = o.out_path;
	} else if (o.out_path) {
		fd = -2; /* each -o is opened below */
	} else if (!o.console && !o.text_log && !o.run) {
		fd = 1;
	}
	if (o.run) {
		status = run_main(&o, &t, fd, out_name);
	} else if (o.stream) {
		stream_init(&s, &t, o.level, fd, out_name);
		s.tee = o.tee;
		status = stream_run(&s, 0) < 0 ? EXIT_SYS : EXIT_OK;
		stream_free(&s);
	} else {
		status = message_main(&o, &t, fd);
	}
	if (o.out_path && fd >= 0 && close(fd) < 0 && o.stream)
		die_sys(EXIT_SYS, "unable to close %s", o.out_path);
	if (write_failed && !o.run && status == EXIT_OK)
		status = EXIT_SYS;
	buf_free(&t.head);
	buf_free(&t.tail);
	buf_free(&tmpl_scratch);
	return status;
}
