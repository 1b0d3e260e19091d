/* tally-metric: sets, adds to and observes into Prometheus text files
 * atomically, safe for concurrent writers. See docs/reference/tally-metric.md. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

#define DEFAULT_DIR "/var/lib/container-build/metrics" /* when TALLY_METRICS_DIR is unset */
#define DEFAULT_BASE "tally.prom"                      /* the file in that directory */
#define MAX_BUCKETS 64 /* --buckets bounds and bounds of a stored series; else "too many buckets" */

static const char synopsis[] =
	"tally-metric inc|add|set|observe [-f FILE] [--type T] [--help-text H] [--label K=V]... NAME [VALUE]\n"
	"       tally-metric delete [-f FILE] [--label K=V]... NAME\n"
	"       tally-metric time [-f FILE] [--help-text H] [--label K=V]... NAME -- COMMAND [ARG...]\n"
	"       tally-metric --help\n";

static const char help_text[] =
	"\n"
	"Writes Prometheus text-format (0.0.4) metrics files atomically, safe for\n"
	"concurrent writers.\n"
	"\n"
	"Commands:\n"
	"  inc NAME [VALUE]     add VALUE (default 1) to NAME; default type counter\n"
	"  add NAME VALUE       add VALUE to NAME; default type counter (negative only for gauges)\n"
	"  set NAME VALUE       set NAME to VALUE; default type gauge\n"
	"  observe NAME VALUE   add an observation to histogram NAME\n"
	"  delete NAME          remove the series with the given labels; without --label,\n"
	"                       the whole family\n"
	"  time NAME -- CMD...  run CMD, record its wall time in seconds as gauge NAME with\n"
	"                       label status=\"success\" or \"failure\", exit with CMD's status\n"
	"\n"
	"Options:\n"
	"  -f FILE              metrics file (default $TALLY_METRICS_DIR/tally.prom;\n"
	"                       TALLY_METRICS_DIR defaults to " DEFAULT_DIR ")\n"
	"  --type T             counter, gauge, histogram or untyped\n"
	"  --help-text H        HELP text (default \"NAME, written by tally-metric\"; a stored\n"
	"                       HELP is replaced only when this is given)\n"
	"  --label K=V          add a label; repeatable\n"
	"  --buckets B1,B2,...  bucket bounds for observe (default\n"
	"                       0.1,0.5,1,2.5,5,10,30,60,120,300,600,1800,3600; +Inf is implied)\n"
	"  --sync               fsync the file and its directory\n"
	"  --help               print this help and exit\n"
	"\n"
	"Exit status: 0 success, 1 input refused, 100 usage error, 111 a system call\n"
	"failed; time exits with the command's status (126, 127, 128+signal).\n";

/* Default histogram bounds, suited to build-step durations in seconds. */
static const double default_buckets[] = {
	0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
};

enum op { OP_INC, OP_ADD, OP_SET, OP_OBSERVE, OP_DELETE, OP_TIME };

/* Command names, indexed by enum op. */
static const char *const op_names[] = { "inc", "add", "set", "observe", "delete", "time" };

/* The parsed command line. */
struct opts {
	enum op op;
	struct buf path;
	int have_type;
	enum prom_type type;
	const char *help;
	struct prom_label labels[PROM_MAX_LABELS + 1]; /* +1: room for time's status */
	size_t nlabels;
	double buckets[MAX_BUCKETS];
	size_t nbuckets;
	int sync;
	const char *name;
	double value;
	char **cmd;
};

/* Why an update failed: the exit status and the message. */
struct failure {
	int code;
	char msg[1536];
};

/* Fills fl with code and the message (": strerror(err)" appended when err
 * is not 0). Returns -1. */
static int fail(struct failure *fl, int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct failure *fl, int code, int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(fl->msg, sizeof fl->msg, fmt, ap);
	va_end(ap);
	n = strlen(fl->msg);
	if (err && n < sizeof fl->msg)
		snprintf(fl->msg + n, sizeof fl->msg - n, ": %s", strerror(err));
	fl->code = code;
	return -1;
}

/* Dies with a usage error naming what was wrong. */
static void usage(const char *fmt, const char *arg) __attribute__((noreturn));
static void usage(const char *fmt, const char *arg)
{
	char what[256];

	snprintf(what, sizeof what, fmt, arg);
	die_usage("%s\n%s", what, synopsis);
}

/* Sorts two doubles for qsort. */
static int double_cmp(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return a < b ? -1 : a > b;
}

/* Parses a --buckets list into o->buckets; dies with status 1 if bad. */
static void parse_buckets(struct opts *o, const char *list)
{
	char text[PROM_MAX_VALUE_TEXT + 1];
	const char *p = list, *comma;
	size_t n, i;
	double v;

	o->nbuckets = 0;
	for (;;) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n > PROM_MAX_VALUE_TEXT)
			die(EXIT_FAIL, "invalid --buckets list \"%s\": want values separated by commas", list);
		memcpy(text, p, n);
		text[n] = '\0';
		if (prom_parse_value(text, &v) < 0 || v != v || v == -HUGE_VAL)
			die(EXIT_FAIL, "invalid bucket bound \"%s\" in --buckets", text);
		if (v != HUGE_VAL) {
			if (o->nbuckets == MAX_BUCKETS)
				die(EXIT_FAIL, "too many buckets (more than %d)", MAX_BUCKETS);
			o->buckets[o->nbuckets++] = v;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	qsort(o->buckets, o->nbuckets, sizeof o->buckets[0], double_cmp);
	for (i = 1; i < o->nbuckets; i++)
		if (o->buckets[i] == o->buckets[i - 1])
			die(EXIT_FAIL, "duplicate bucket bound in --buckets \"%s\"", list);
}

/* Parses VALUE for the command; dies with status 1 if it is not a number. */
static double parse_value_arg(const char *s)
{
	double v;

	if (strlen(s) > PROM_MAX_VALUE_TEXT || prom_parse_value(s, &v) < 0)
		die(EXIT_FAIL, "invalid value \"%.64s\": want a number, NaN, +Inf or -Inf", s);
	return v;
}

/* Returns the option value of argv[*i] (--opt=V or --opt V), advancing *i. */
static const char *optval(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	if (a[n] == '=')
		return a + n + 1;
	if (*i + 1 >= argc)
		usage("option %s needs a value", opt);
	return argv[++*i];
}

/* Returns 1 when argv[i] is option opt, alone or as opt=VALUE. */
static int is_opt(const char *a, const char *opt)
{
	size_t n = strlen(opt);

	return !strncmp(a, opt, n) && (a[n] == '\0' || (a[n] == '=' && opt[1] == '-'));
}

/* Parses the command line into o; dies on usage errors and bad input. */
static void parse_args(struct opts *o, int argc, char **argv)
{
	const char *a, *v, *file = NULL, *dir, *eq, *buckets = NULL;
	char vtext[PROM_VALUE_BUFSZ];
	int i, k;

	if (argc < 2)
		usage("%s", "missing command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs("usage: ", stdout);
		fputs(synopsis, stdout);
		fputs(help_text, stdout);
		exit(fflush(stdout) ? EXIT_SYS : EXIT_OK);
	}
	for (k = 0; k < (int)(sizeof op_names / sizeof op_names[0]); k++)
		if (!strcmp(argv[1], op_names[k]))
			break;
	if (k == (int)(sizeof op_names / sizeof op_names[0]))
		usage("unknown command \"%.64s\"", argv[1]);
	o->op = (enum op)k;
	for (i = 2; i < argc; i++) {
		a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (!strcmp(a, "--help")) {
			fputs("usage: ", stdout);
			fputs(synopsis, stdout);
			fputs(help_text, stdout);
			exit(fflush(stdout) ? EXIT_SYS : EXIT_OK);
		} else if (is_opt(a, "-f") || is_opt(a, "--file")) {
			file = optval(argc, argv, &i, a[1] == 'f' ? "-f" : "--file");
			if (!*file)
				usage("%s", "-f needs a file name");
		} else if (is_opt(a, "--type")) {
			v = optval(argc, argv, &i, "--type");
			if (o->op == OP_DELETE || o->op == OP_TIME)
				usage("--type does not apply to %s", op_names[o->op]);
			if (prom_type_parse(v, &o->type) < 0 || o->type == PROM_SUMMARY)
				usage("unknown --type \"%.64s\": want counter, gauge, histogram or untyped", v);
			o->have_type = 1;
		} else if (is_opt(a, "--help-text")) {
			o->help = optval(argc, argv, &i, "--help-text");
			if (o->op == OP_DELETE)
				usage("%s", "--help-text does not apply to delete");
		} else if (is_opt(a, "--label")) {
			v = optval(argc, argv, &i, "--label");
			eq = strchr(v, '=');
			if (!eq)
				die(EXIT_FAIL, "invalid label \"%.64s\": want NAME=VALUE", v);
			if (o->nlabels == PROM_MAX_LABELS)
				die(EXIT_FAIL, "too many labels (more than %d)", PROM_MAX_LABELS);
			o->labels[o->nlabels].name = v;
			o->labels[o->nlabels].name_len = (size_t)(eq - v);
			o->labels[o->nlabels].value = eq + 1;
			o->labels[o->nlabels].value_len = strlen(eq + 1);
			o->nlabels++;
		} else if (is_opt(a, "--buckets")) {
			buckets = optval(argc, argv, &i, "--buckets");
			if (o->op != OP_OBSERVE)
				usage("--buckets applies to observe only, not %s", op_names[o->op]);
		} else if (!strcmp(a, "--sync")) {
			o->sync = 1;
		} else {
			usage("unknown option \"%.64s\"", a);
		}
	}
	if (i >= argc)
		usage("%s", "missing NAME");
	o->name = argv[i++];
	switch (o->op) {
	case OP_INC:
		o->value = 1;
		if (i < argc)
			o->value = parse_value_arg(argv[i++]);
		break;
	case OP_ADD:
	case OP_SET:
	case OP_OBSERVE:
		if (i >= argc)
			usage("%s needs a VALUE", op_names[o->op]);
		o->value = parse_value_arg(argv[i++]);
		break;
	case OP_DELETE:
		break;
	case OP_TIME:
		if (i >= argc || strcmp(argv[i], "--"))
			usage("%s", "time needs \"--\" after NAME, then the command");
		if (++i >= argc)
			usage("%s", "time needs a COMMAND after \"--\"");
		o->cmd = argv + i;
		i = argc;
		break;
	}
	if (i < argc)
		usage("unexpected argument \"%.64s\"", argv[i]);

	if (!o->have_type)
		o->type = o->op == OP_OBSERVE ? PROM_HISTOGRAM :
			o->op == OP_INC || o->op == OP_ADD ? PROM_COUNTER : PROM_GAUGE;
	if (o->op == OP_OBSERVE && o->type != PROM_HISTOGRAM)
		usage("observe writes histograms, not %s", prom_type_name(o->type));
	if (o->op != OP_OBSERVE && o->type == PROM_HISTOGRAM)
		usage("%s cannot write a histogram (use observe)", op_names[o->op]);

	if (!prom_metric_name_ok(o->name, strlen(o->name)))
		die(EXIT_FAIL, "invalid metric name \"%.64s\": want [a-zA-Z_:][a-zA-Z0-9_:]*, at most %d bytes",
			o->name, PROM_MAX_NAME);
	if (o->help) {
		if (!*o->help)
			die(EXIT_FAIL, "empty --help-text");
		if (strlen(o->help) > PROM_MAX_HELP)
			die(EXIT_FAIL, "--help-text too long (more than %d bytes)", PROM_MAX_HELP);
		if (!prom_utf8_ok(o->help, strlen(o->help)))
			die(EXIT_FAIL, "--help-text is not valid UTF-8");
	}
	prom_format_value(o->value, vtext);
	if (o->type == PROM_COUNTER && (o->op == OP_INC || o->op == OP_ADD || o->op == OP_SET) &&
	    !(o->value >= 0))
		die(EXIT_FAIL, "counter %s can only go up: refusing to %s %s (use --type gauge)",
			o->name, op_names[o->op], vtext);
	if (o->op == OP_OBSERVE && o->value != o->value)
		die(EXIT_FAIL, "refusing to observe NaN into %s", o->name);
	if (buckets)
		parse_buckets(o, buckets);

	if (file) {
		xbuf_puts(&o->path, file);
	} else {
		dir = getenv("TALLY_METRICS_DIR");
		xbuf_puts(&o->path, dir && *dir ? dir : DEFAULT_DIR);
		xbuf_puts(&o->path, "/" DEFAULT_BASE);
	}
}

/* Sets key to the series key of o's labels plus status (if not NULL).
 * Returns 0, or -1 with fl filled. */
static int make_key(const struct opts *o, const char *status, struct buf *key, struct failure *fl)
{
	struct prom_label l[PROM_MAX_LABELS + 1];
	struct prom_err err;
	size_t n = o->nlabels, i;
	double bound;

	for (i = 0; i < n; i++)
		if (status && o->labels[i].name_len == 6 && !memcmp(o->labels[i].name, "status", 6))
			return fail(fl, EXIT_FAIL, 0, "label status is set by time; choose another name");
	memcpy(l, o->labels, n * sizeof l[0]);
	if (status) {
		l[n].name = "status";
		l[n].name_len = 6;
		l[n].value = status;
		l[n].value_len = strlen(status);
		n++;
	}
	buf_reset(key);
	if (prom_labels_key(l, n, o->op == OP_OBSERVE ? "le" : NULL, 0, &bound, key, &err) < 0) {
		if (errno == ENOMEM)
			return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		return fail(fl, EXIT_FAIL, 0, "%s", err.msg);
	}
	return 0;
}

/* Returns o's family in d, created if missing, after checking its type
 * and setting its HELP. Returns NULL with fl filled. */
static struct prom_family *family(const struct opts *o, struct prom_doc *d, struct failure *fl)
{
	struct prom_family *f = prom_family_find(d, o->name), *g;

	if (f && f->type != o->type) {
		fail(fl, EXIT_FAIL, 0, "%s: %s is %s%s, not %s%s; refusing to change its type",
			o->path.p, o->name, f->type == PROM_UNTYPED ? "" : "a ", prom_type_name(f->type),
			o->type == PROM_UNTYPED ? "" : "a ", prom_type_name(o->type));
		return NULL;
	}
	if (!f) {
		g = prom_family_clash(d, o->name, o->type);
		if (g) {
			fail(fl, EXIT_FAIL, 0, "%s: %s %s would collide with %s %s", o->path.p,
				prom_type_name(o->type), o->name, prom_type_name(g->type), g->name);
			return NULL;
		}
		f = prom_family_add(d, o->name, o->type);
		if (!f) {
			fail(fl, EXIT_SYS, errno, "unable to allocate memory");
			return NULL;
		}
	}
	if (o->help && prom_family_set_help(f, o->help) < 0) {
		fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		return NULL;
	}
	return f;
}

/* Collects into out the finite bucket bounds stored for key in histogram
 * f (any series of f when key is NULL). Returns their number, or -1 when
 * there are more than MAX_BUCKETS. */
static int stored_bounds(const struct prom_family *f, const char *key, double *out)
{
	const char *first = NULL;
	size_t i;
	int n = 0;

	for (i = 0; i < f->n; i++) {
		if (f->s[i].suffix != PROM_SFX_BUCKET || f->s[i].bound == HUGE_VAL)
			continue;
		if (key ? strcmp(f->s[i].key, key) != 0 : first && strcmp(f->s[i].key, first) != 0)
			continue;
		first = f->s[i].key;
		if (n == MAX_BUCKETS)
			return -1;
		out[n++] = f->s[i].bound;
	}
	return n;
}

/* Adds one observation to series key of histogram f. Returns 0, or -1 with fl filled. */
static int observe(const struct opts *o, struct prom_family *f, const char *key, struct failure *fl)
{
	double mine[MAX_BUCKETS], count;
	const double *b;
	struct prom_sample *s;
	int n, k;

	n = stored_bounds(f, key, mine);
	if (n < 0)
		return fail(fl, EXIT_FAIL, 0, "%s: histogram %s has more than %d buckets", o->path.p, o->name, MAX_BUCKETS);
	if (o->nbuckets && n > 0 && ((size_t)n != o->nbuckets ||
	    memcmp(mine, o->buckets, o->nbuckets * sizeof mine[0])))
		return fail(fl, EXIT_FAIL, 0, "%s: histogram %s{%s} already has other buckets than --buckets gives",
			o->path.p, o->name, key);
	if (o->nbuckets) {
		b = o->buckets;
		n = (int)o->nbuckets;
	} else if (n > 0) {
		b = mine;
	} else if ((n = stored_bounds(f, NULL, mine)) > 0) {
		b = mine;
	} else {
		if (n < 0)
			return fail(fl, EXIT_FAIL, 0, "%s: histogram %s has more than %d buckets", o->path.p, o->name, MAX_BUCKETS);
		b = default_buckets;
		n = (int)(sizeof default_buckets / sizeof default_buckets[0]);
	}
	for (k = 0; k < n; k++) {
		s = prom_sample_get(f, key, PROM_SFX_BUCKET, 1, b[k], 1);
		if (!s)
			goto nomem;
		if (o->value <= b[k])
			s->value += 1;
		s->has_ts = 0;
	}
	s = prom_sample_get(f, key, PROM_SFX_SUM, 0, 0, 1);
	if (!s)
		goto nomem;
	s->value += o->value;
	s->has_ts = 0;
	s = prom_sample_get(f, key, PROM_SFX_COUNT, 0, 0, 1);
	if (!s)
		goto nomem;
	s->value += 1;
	s->has_ts = 0;
	count = s->value;
	s = prom_sample_get(f, key, PROM_SFX_BUCKET, 1, HUGE_VAL, 1);
	if (!s)
		goto nomem;
	s->value = count;
	s->has_ts = 0;
	return 0;
nomem:
	return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
}

/* Applies o to d. Returns 0 when d changed, 1 when there was nothing to
 * do, or -1 with fl filled. */
static int apply(const struct opts *o, struct prom_doc *d, const char *key, struct failure *fl)
{
	struct prom_family *f;
	struct prom_sample *s;

	if (o->op == OP_DELETE) {
		f = prom_family_find(d, o->name);
		if (!f)
			return 1;
		if (o->nlabels && !prom_series_remove(f, key))
			return 1;
		if (!o->nlabels || f->n == 0)
			prom_family_remove(d, f);
		return 0;
	}
	f = family(o, d, fl);
	if (!f)
		return -1;
	if (o->op == OP_OBSERVE)
		return observe(o, f, key, fl);
	s = prom_sample_get(f, key, PROM_SFX_NONE, 0, 0, 1);
	if (!s)
		return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
	if (o->op == OP_SET || o->op == OP_TIME)
		s->value = o->value;
	else
		s->value += o->value;
	s->has_ts = 0;
	return 0;
}

/* Gives every family of d a HELP and a TYPE line. Returns 0, or -1 with fl filled. */
static int complete(struct prom_doc *d, struct failure *fl)
{
	struct buf help = { 0 };
	size_t i;

	for (i = 0; i < d->n; i++) {
		d->f[i].typed = 1;
		if (d->f[i].help)
			continue;
		buf_reset(&help);
		if (buf_printf(&help, "%s, written by tally-metric", d->f[i].name) < 0 ||
		    prom_family_set_help(&d->f[i], help.p) < 0) {
			buf_free(&help);
			return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		}
	}
	buf_free(&help);
	return 0;
}

/* Locks o's file, reads, parses, applies o and replaces it. Returns 0, or
 * -1 with fl filled; the file is unchanged on failure. */
static int update(const struct opts *o, const char *key, struct failure *fl)
{
	struct buf text = { 0 }, out = { 0 };
	struct prom_doc doc = { 0 };
	struct prom_err perr;
	int lockfd, rc = -1;

	lockfd = lock_open(o->path.p);
	if (lockfd < 0) {
		if (errno == ENOENT)
			return fail(fl, EXIT_SYS, 0, "unable to lock %s: its directory does not exist", o->path.p);
		return fail(fl, EXIT_SYS, errno, "unable to lock %s", o->path.p);
	}
	if (file_read_all(o->path.p, PROM_MAX_FILE, &text) < 0) {
		if (errno == EFBIG) {
			fail(fl, EXIT_FAIL, 0, "%s: file too large (more than %u bytes)", o->path.p, PROM_MAX_FILE);
			goto out_unlock;
		}
		if (errno != ENOENT) {
			fail(fl, EXIT_SYS, errno, "unable to read %s", o->path.p);
			goto out_unlock;
		}
		buf_reset(&text);
	}
	if (prom_parse(&doc, text.p ? text.p : "", text.len, &perr) < 0) {
		if (errno == ENOMEM)
			fail(fl, EXIT_SYS, errno, "unable to parse %s", o->path.p);
		else
			fail(fl, EXIT_FAIL, 0, "%s:%zu: %s; not modifying it", o->path.p, perr.line, perr.msg);
		goto out_unlock;
	}
	rc = apply(o, &doc, key, fl);
	if (rc != 0) {
		rc = rc > 0 ? 0 : -1;
		goto out_free;
	}
	rc = -1;
	if (complete(&doc, fl) < 0)
		goto out_free;
	if (prom_serialize(&doc, &out) < 0) {
		fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		goto out_free;
	}
	if (atomic_replace(o->path.p, out.p ? out.p : "", out.len, o->sync) < 0) {
		fail(fl, EXIT_SYS, errno, "unable to replace %s", o->path.p);
		goto out_free;
	}
	rc = 0;
out_free:
	prom_doc_free(&doc);
out_unlock:
	buf_free(&out);
	buf_free(&text);
	close(lockfd);
	return rc;
}

/* Runs o->cmd, returns its exit status as a shell reports it, and sets
 * *secs to the elapsed wall time. Dies with 111 if it cannot fork. */
static int run(const struct opts *o, double *secs)
{
	struct timespec t0, t1;
	struct sigaction ign, old_int, old_quit;
	int status, err;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0)
		die_sys(EXIT_SYS, "unable to fork");
	if (pid == 0) {
		execvp(o->cmd[0], o->cmd);
		err = errno;
		warn_sys("unable to run %s", o->cmd[0]);
		_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
	}
	/* Like system(3): an interrupt is the command's to handle; we record it. */
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die_sys(EXIT_SYS, "unable to wait for %s", o->cmd[0]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	*secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_SYS;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct failure fl;
	struct buf key = { 0 };
	int status;

	die_prog = "tally-metric";
	memset(&o, 0, sizeof o);
	parse_args(&o, argc, argv);
	if (make_key(&o, o.op == OP_TIME ? "success" : NULL, &key, &fl) < 0)
		die(fl.code, "%s", fl.msg);
	if (o.op != OP_TIME) {
		if (update(&o, key.p, &fl) < 0)
			die(fl.code, "%s", fl.msg);
		buf_free(&key);
		buf_free(&o.path);
		return EXIT_OK;
	}
	status = run(&o, &o.value);
	if (make_key(&o, status == 0 ? "success" : "failure", &key, &fl) < 0 ||
	    update(&o, key.p, &fl) < 0)
		warnx_msg("%s", fl.msg);
	buf_free(&key);
	buf_free(&o.path);
	return status;
}
