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
#define MAX_BATCH 256  /* updates in one batch; else "too many updates in one batch" */
#define MAX_EXEMPLAR_LABELS 8 /* --exemplar options of one observe; else "too many exemplar labels" */

static const char synopsis[] =
	"tally-metric inc|add|set [-f FILE] [--type T] [--help-text H] [--label K=V]... NAME [VALUE]\n"
	"       tally-metric observe [-f FILE] [--help-text H] [--label K=V]... [--buckets B,...] NAME VALUE...\n"
	"       tally-metric delete [-f FILE] [--label K=V]... NAME\n"
	"       tally-metric time [-f FILE] [--help-text H] [--label K=V]... NAME -- COMMAND [ARG...]\n"
	"       tally-metric batch [-f FILE] [--sync] [--quiet-write-errors] UPDATE [';' UPDATE]...\n"
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
	"  observe NAME V...    add one observation per value V to histogram NAME\n"
	"  delete NAME          remove the series with the given labels; without --label,\n"
	"                       the whole family\n"
	"  time NAME -- CMD...  run CMD, record its wall time in seconds as gauge NAME with\n"
	"                       label status=\"success\" or \"failure\", exit with CMD's status\n"
	"  batch U ';' U ...    apply several updates (each an inc, add, set, observe or\n"
	"                       delete command with its options, NAME and VALUE, without\n"
	"                       -f and --sync) to one file under one lock with one rename:\n"
	"                       all of them, or none when one is refused\n"
	"\n"
	"Options:\n"
	"  -f FILE              metrics file (default $TALLY_METRICS_DIR/tally.prom;\n"
	"                       TALLY_METRICS_DIR defaults to " DEFAULT_DIR ")\n"
	"  --type T             counter, gauge, histogram or untyped\n"
	"  --help-text H        HELP text (default \"NAME, written by tally-metric\"; a stored\n"
	"                       HELP is replaced only when this is given)\n"
	"  --label K=V          add a label; repeatable\n"
	"  --exemplar K=V       with observe of one VALUE: keep K=V (e.g. trace_id=HEX;\n"
	"                       repeatable, at most 128 characters of names and values in\n"
	"                       all) as the OpenMetrics exemplar of the bucket the value falls in,\n"
	"                       with the value and the time; stored as a \"# EXEMPLAR\"\n"
	"                       comment line that 0.0.4 readers ignore\n"
	"  --buckets B1,B2,...  bucket bounds for observe (default\n"
	"                       0.1,0.5,1,2.5,5,10,30,60,120,300,600,1800,3600; +Inf is implied)\n"
	"  --sync               fsync the file and its directory\n"
	"  --quiet-write-errors with batch: a failed system call exits 111 without its\n"
	"                       message (the caller reported the same failure already)\n"
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

/* The file every update of one run goes to, and how. */
struct target {
	struct buf path;
	int sync;
};

/* One parsed update (the whole command line, or one update of a batch). */
struct opts {
	enum op op;
	int have_type;
	enum prom_type type;
	const char *help;
	struct prom_label labels[PROM_MAX_LABELS + 1]; /* +1: room for time's status */
	size_t nlabels;
	double buckets[MAX_BUCKETS];
	size_t nbuckets;
	struct prom_label ex[MAX_EXEMPLAR_LABELS]; /* --exemplar */
	size_t nex;
	struct buf exlabels;    /* the exemplar's labels, escaped, from make_key() */
	const char *name;
	double value;           /* the VALUE; observe: the first one */
	char **values;          /* observe: every VALUE (checked), nvalues of them */
	size_t nvalues;
	char **cmd;
	const struct target *t; /* the file, for messages */
	struct buf key;         /* the series key, from make_key() */
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

/* Prints the usage and the help on stdout and exits 0 (111 if that fails). */
static void print_help(void) __attribute__((noreturn));
static void print_help(void)
{
	fputs("usage: ", stdout);
	fputs(synopsis, stdout);
	fputs(help_text, stdout);
	exit(fflush(stdout) ? EXIT_SYS : EXIT_OK);
}

/* Sets t's path from file, or from TALLY_METRICS_DIR when file is NULL. */
static void set_path(struct target *t, const char *file)
{
	const char *dir;

	if (file) {
		xbuf_puts(&t->path, file);
		return;
	}
	dir = getenv("TALLY_METRICS_DIR");
	xbuf_puts(&t->path, dir && *dir ? dir : DEFAULT_DIR);
	xbuf_puts(&t->path, "/" DEFAULT_BASE);
}

/* Returns 1 when a ends one update of a batch (the argument ";"), else 0. */
static int is_end(int batch, const char *a)
{
	return batch && a[0] == ';' && a[1] == '\0';
}

/* Parses one update starting at argv[i] (the command name) into o. Outside
 * a batch (batch 0) it takes -f and --sync into t and runs to the end of
 * argv; in a batch it stops after the ";" that ends the update. Returns
 * the index after the update; dies on usage errors and bad input. */
static int parse_update(struct opts *o, struct target *t, int argc, char **argv, int i, int batch)
{
	const char *a, *v, *file = NULL, *eq, *buckets = NULL;
	char vtext[PROM_VALUE_BUFSZ];
	double x;
	int k, nops = batch ? OP_TIME : (int)(sizeof op_names / sizeof op_names[0]);

	if (i >= argc || is_end(batch, argv[i]))
		usage("%s", batch ? "missing update after \";\"" : "missing command");
	if (!batch && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")))
		print_help();
	for (k = 0; k < nops; k++)
		if (!strcmp(argv[i], op_names[k]))
			break;
	if (k == nops)
		usage(batch ? "unknown update \"%.64s\" in batch (want inc, add, set, observe or delete)" :
			"unknown command \"%.64s\"", argv[i]);
	o->op = (enum op)k;
	o->t = t;
	for (i++; i < argc; i++) {
		a = argv[i];
		if (is_end(batch, a))
			break;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (!strcmp(a, "--help")) {
			print_help();
		} else if (is_opt(a, "-f") || is_opt(a, "--file")) {
			if (batch)
				usage("%s", "-f applies to the whole batch: give it before the first update");
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
		} else if (is_opt(a, "--exemplar")) {
			v = optval(argc, argv, &i, "--exemplar");
			if (o->op != OP_OBSERVE)
				usage("--exemplar applies to observe only, not %s", op_names[o->op]);
			eq = strchr(v, '=');
			if (!eq)
				die(EXIT_FAIL, "invalid exemplar label \"%.64s\": want NAME=VALUE", v);
			if (o->nex == MAX_EXEMPLAR_LABELS)
				die(EXIT_FAIL, "too many exemplar labels (more than %d)", MAX_EXEMPLAR_LABELS);
			o->ex[o->nex].name = v;
			o->ex[o->nex].name_len = (size_t)(eq - v);
			o->ex[o->nex].value = eq + 1;
			o->ex[o->nex].value_len = strlen(eq + 1);
			o->nex++;
		} else if (is_opt(a, "--buckets")) {
			buckets = optval(argc, argv, &i, "--buckets");
			if (o->op != OP_OBSERVE)
				usage("--buckets applies to observe only, not %s", op_names[o->op]);
		} else if (!strcmp(a, "--sync")) {
			if (batch)
				usage("%s", "--sync applies to the whole batch: give it before the first update");
			t->sync = 1;
		} else {
			usage("unknown option \"%.64s\"", a);
		}
	}
	if (i >= argc || is_end(batch, argv[i]))
		usage("%s", "missing NAME");
	o->name = argv[i++];
	switch (o->op) {
	case OP_INC:
		o->value = 1;
		if (i < argc && !is_end(batch, argv[i]))
			o->value = parse_value_arg(argv[i++]);
		break;
	case OP_ADD:
	case OP_SET:
		if (i >= argc || is_end(batch, argv[i]))
			usage("%s needs a VALUE", op_names[o->op]);
		o->value = parse_value_arg(argv[i++]);
		break;
	case OP_OBSERVE:
		if (i >= argc || is_end(batch, argv[i]))
			usage("%s needs a VALUE", op_names[o->op]);
		o->values = argv + i;
		o->value = parse_value_arg(argv[i]);
		for (o->nvalues = 0; i < argc && !is_end(batch, argv[i]); o->nvalues++, i++) {
			x = parse_value_arg(argv[i]);
			if (x != x)
				die(EXIT_FAIL, "refusing to observe NaN into %s", o->name);
		}
		if (o->nex && o->nvalues > 1)
			usage("%s", "--exemplar applies to an observe of one VALUE");
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
	if (i < argc && is_end(batch, argv[i]))
		i++;
	else if (i < argc)
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
	if (buckets)
		parse_buckets(o, buckets);
	if (!batch)
		set_path(t, file);
	return i;
}

/* Sets key to the series key of o's labels plus status (if not NULL).
 * Returns 0, or -1 with fl filled. */
static int make_key(struct opts *o, const char *status, struct buf *key, struct failure *fl)
{
	struct prom_label l[PROM_MAX_LABELS + 1];
	struct prom_err err;
	size_t n = o->nlabels, i, k;
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
	if (o->nex) {
		struct prom_label ex[MAX_EXEMPLAR_LABELS];

		memcpy(ex, o->ex, o->nex * sizeof ex[0]);
		buf_reset(&o->exlabels);
		if (prom_exemplar_labels(ex, o->nex, &o->exlabels, &err) < 0) {
			if (errno == ENOMEM)
				return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
			return fail(fl, EXIT_FAIL, 0, "--exemplar: %s", err.msg);
		}
	}
	buf_reset(key);
	if (prom_labels_key(l, n, o->op == OP_OBSERVE ? "le" : NULL, 0, &bound, key, &err) < 0) {
		if (errno == ENOMEM)
			return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		return fail(fl, EXIT_FAIL, 0, "%s", err.msg);
	}
	/* All labels are valid. An empty value is no label to Prometheus
	 * (x{a=""} and x are one series), so the key leaves those out. */
	for (i = k = 0; i < n; i++)
		if (l[i].value_len)
			l[k++] = l[i];
	if (k == n)
		return 0;
	buf_reset(key);
	if (prom_labels_key(l, k, NULL, 0, &bound, key, &err) < 0)
		return fail(fl, EXIT_SYS, errno, "unable to allocate memory");
	return 0;
}

/* Returns o's family in d, created if missing, after checking its type
 * and setting its HELP. Returns NULL with fl filled. */
static struct prom_family *family(const struct opts *o, struct prom_doc *d, struct failure *fl)
{
	struct prom_family *f = prom_family_find(d, o->name), *g;

	if (f && f->type != o->type) {
		fail(fl, EXIT_FAIL, 0, "%s: %s is %s%s, not %s%s; refusing to change its type",
			o->t->path.p, o->name, f->type == PROM_UNTYPED ? "" : "a ", prom_type_name(f->type),
			o->type == PROM_UNTYPED ? "" : "a ", prom_type_name(o->type));
		return NULL;
	}
	if (!f) {
		g = prom_family_clash(d, o->name, o->type);
		if (g) {
			fail(fl, EXIT_FAIL, 0, "%s: %s %s would collide with %s %s", o->t->path.p,
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

/* Returns the wall-clock time in seconds, to the millisecond. */
static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

/* Adds o's observations (nvalues of them) to series key of histogram f.
 * Returns 0, or -1 with fl filled. */
static int observe(const struct opts *o, struct prom_family *f, const char *key, struct failure *fl)
{
	double mine[MAX_BUCKETS], below[MAX_BUCKETS] = { 0 }, v, count;
	const double *b;
	struct prom_sample *s;
	size_t j;
	int n, k;

	n = stored_bounds(f, key, mine);
	if (n < 0)
		return fail(fl, EXIT_FAIL, 0, "%s: histogram %s has more than %d buckets", o->t->path.p, o->name, MAX_BUCKETS);
	if (o->nbuckets && n > 0 && ((size_t)n != o->nbuckets ||
	    memcmp(mine, o->buckets, o->nbuckets * sizeof mine[0])))
		return fail(fl, EXIT_FAIL, 0, "%s: histogram %s{%s} already has other buckets than --buckets gives",
			o->t->path.p, o->name, key);
	if (o->nbuckets) {
		b = o->buckets;
		n = (int)o->nbuckets;
	} else if (n > 0) {
		b = mine;
	} else if ((n = stored_bounds(f, NULL, mine)) > 0) {
		b = mine;
	} else {
		if (n < 0)
			return fail(fl, EXIT_FAIL, 0, "%s: histogram %s has more than %d buckets", o->t->path.p, o->name, MAX_BUCKETS);
		b = default_buckets;
		n = (int)(sizeof default_buckets / sizeof default_buckets[0]);
	}
	/* How many of the values each bucket takes (parse_update checked them). */
	for (j = 0; j < o->nvalues; j++) {
		v = parse_value_arg(o->values[j]);
		for (k = 0; k < n; k++)
			if (v <= b[k])
				below[k] += 1;
	}
	for (k = 0; k < n; k++) {
		s = prom_sample_get(f, key, PROM_SFX_BUCKET, 1, b[k], 1);
		if (!s)
			goto nomem;
		s->value += below[k];
		s->has_ts = 0;
	}
	/* Added one by one in the order given, as that many single observes
	 * would (a floating-point sum depends on the order). */
	s = prom_sample_get(f, key, PROM_SFX_SUM, 0, 0, 1);
	if (!s)
		goto nomem;
	for (j = 0; j < o->nvalues; j++)
		s->value += parse_value_arg(o->values[j]);
	s->has_ts = 0;
	s = prom_sample_get(f, key, PROM_SFX_COUNT, 0, 0, 1);
	if (!s)
		goto nomem;
	s->value += (double)o->nvalues;
	s->has_ts = 0;
	count = s->value;
	s = prom_sample_get(f, key, PROM_SFX_BUCKET, 1, HUGE_VAL, 1);
	if (!s)
		goto nomem;
	s->value = count;
	s->has_ts = 0;
	if (o->nex) {
		/* The exemplar goes to the bucket the value falls in: the
		 * smallest bound not below it (+Inf when none). */
		for (k = 0; k < n && !(o->value <= b[k]); k++)
			;
		s = prom_sample_get(f, key, PROM_SFX_BUCKET, 1, k < n ? b[k] : HUGE_VAL, 0);
		if (!s || prom_exemplar_set(s, o->exlabels.p ? o->exlabels.p : "", o->value, 1,
		    now_seconds()) < 0)
			goto nomem;
	}
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

/* Gives every family of d a HELP and a TYPE line and drops the timestamps
 * of a hand-written file (textfile collectors refuse them). Returns 0, or
 * -1 with fl filled. */
static int complete(struct prom_doc *d, struct failure *fl)
{
	struct buf help = { 0 };
	size_t i, j;

	for (i = 0; i < d->n; i++) {
		d->f[i].typed = 1;
		for (j = 0; j < d->f[i].n; j++)
			d->f[i].s[j].has_ts = 0;
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

/* Locks t's file, reads, parses and checks it, applies the n updates o[]
 * (each with its key) in order and replaces the file once. Returns 0, or
 * -1 with fl filled; the file is unchanged on failure, and when no
 * update changed anything. */
static int update(const struct target *t, const struct opts *o, size_t n, struct failure *fl)
{
	struct buf text = { 0 }, out = { 0 };
	struct prom_doc doc = { 0 };
	struct prom_err perr;
	int lockfd, rc = -1, changed = 0;
	size_t i;

	lockfd = lock_open(t->path.p);
	if (lockfd < 0) {
		if (errno == ENOENT)
			return fail(fl, EXIT_SYS, 0, "unable to lock %s: its directory does not exist", t->path.p);
		return fail(fl, EXIT_SYS, errno, "unable to lock %s", t->path.p);
	}
	if (file_read_all(t->path.p, PROM_MAX_FILE, &text) < 0) {
		if (errno == EFBIG) {
			fail(fl, EXIT_FAIL, 0, "%s: file too large (more than %u bytes)", t->path.p, PROM_MAX_FILE);
			goto out_unlock;
		}
		if (errno != ENOENT) {
			fail(fl, EXIT_SYS, errno, "unable to read %s", t->path.p);
			goto out_unlock;
		}
		buf_reset(&text);
	}
	if (prom_parse(&doc, text.p ? text.p : "", text.len, &perr) < 0) {
		if (errno == ENOMEM)
			fail(fl, EXIT_SYS, errno, "unable to parse %s", t->path.p);
		else
			fail(fl, EXIT_FAIL, 0, "%s:%zu: %s; not modifying it", t->path.p, perr.line, perr.msg);
		goto out_unlock;
	}
	for (i = 0; i < doc.n; i++)
		if (prom_histogram_check(&doc.f[i], &perr) < 0) {
			fail(fl, EXIT_FAIL, 0, "%s:%zu: %s; not modifying it", t->path.p, perr.line, perr.msg);
			goto out_free;
		}
	for (i = 0; i < n; i++) {
		rc = apply(&o[i], &doc, o[i].key.p, fl);
		if (rc < 0)
			goto out_free;
		changed |= rc == 0;
	}
	rc = 0;
	if (!changed)
		goto out_free;
	rc = -1;
	if (complete(&doc, fl) < 0)
		goto out_free;
	/* The new file is about as large as the old one: grow the buffer once. */
	if (buf_reserve(&out, text.len + text.len / 8 + 4096) < 0 || prom_serialize(&doc, &out) < 0) {
		fail(fl, EXIT_SYS, errno, "unable to allocate memory");
		goto out_free;
	}
	if (atomic_replace_locked(t->path.p, out.p ? out.p : "", out.len, t->sync) < 0) {
		fail(fl, EXIT_SYS, errno, "unable to replace %s", t->path.p);
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

/* tally-metric batch: parses the updates after the batch options and
 * applies them all at once. Returns the exit status. */
static int batch_main(int argc, char **argv)
{
	struct target t = { { 0 }, 0 };
	struct failure fl;
	const char *file = NULL;
	struct opts *o;
	size_t n = 0, k;
	int i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			print_help();
		} else if (is_opt(argv[i], "-f") || is_opt(argv[i], "--file")) {
			file = optval(argc, argv, &i, argv[i][1] == 'f' ? "-f" : "--file");
			if (!*file)
				usage("%s", "-f needs a file name");
		} else if (!strcmp(argv[i], "--sync")) {
			t.sync = 1;
		} else if (!strcmp(argv[i], "--quiet-write-errors")) {
			die_sys_quiet = 1;
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (argv[i][0] == '-') {
			usage("unknown batch option \"%.64s\"", argv[i]);
		} else {
			break;
		}
	}
	if (i >= argc)
		usage("%s", "batch needs at least one update");
	o = calloc(MAX_BATCH, sizeof *o);
	if (!o)
		die_sys(EXIT_SYS, "unable to allocate memory");
	while (i < argc) {
		if (n == MAX_BATCH)
			die(EXIT_FAIL, "too many updates in one batch (more than %d)", MAX_BATCH);
		i = parse_update(&o[n++], &t, argc, argv, i, 1);
	}
	set_path(&t, file);
	for (k = 0; k < n; k++)
		if (make_key(&o[k], NULL, &o[k].key, &fl) < 0)
			die(fl.code, "update %zu: %s", k + 1, fl.msg);
	if (update(&t, o, n, &fl) < 0)
		die(fl.code, "%s", fl.msg);
	for (k = 0; k < n; k++) {
		buf_free(&o[k].key);
		buf_free(&o[k].exlabels);
	}
	free(o);
	buf_free(&t.path);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct target t = { { 0 }, 0 };
	struct failure fl;
	struct opts o;
	int status;

	die_prog = "tally-metric";
	if (argc >= 2 && !strcmp(argv[1], "batch"))
		return batch_main(argc, argv);
	memset(&o, 0, sizeof o);
	parse_update(&o, &t, argc, argv, 1, 0);
	if (make_key(&o, o.op == OP_TIME ? "success" : NULL, &o.key, &fl) < 0)
		die(fl.code, "%s", fl.msg);
	if (o.op != OP_TIME) {
		if (update(&t, &o, 1, &fl) < 0)
			die(fl.code, "%s", fl.msg);
		buf_free(&o.key);
		buf_free(&o.exlabels);
		buf_free(&t.path);
		return EXIT_OK;
	}
	status = run(&o, &o.value);
	if (make_key(&o, status == 0 ? "success" : "failure", &o.key, &fl) < 0 ||
	    update(&t, &o, 1, &fl) < 0)
		warnx_msg("%s", fl.msg);
	buf_free(&o.key);
	buf_free(&t.path);
	return status;
}
