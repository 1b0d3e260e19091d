/* textfile.c: a metrics directory's *.prom files, each parsed and checked,
 * merged by one deterministic rule and rendered as text 0.0.4 and, where
 * exact, OpenMetrics 1.0; re-read only when a file's stat changes. The
 * rules are listed in textfile.h and docs/reference/tally-httpd.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

static const char *const conflict_names[TF_NCONFLICT] = {
	"duplicate", "help", "type", "labels", "clash", "reserved", "timestamp", "lint"
};

/* promtool's lint rules (client_golang promlint) on names, as data. */
static const char *const lint_types[] = {
	"counter", "gauge", "summary", "histogram", "gauge_histogram"
};
static const char *const lint_abbrev[] = {
	"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"
};
static const struct {
	const char *unit, *base;
} lint_units[] = {
	{ "amperes", "amperes" }, { "bytes", "bytes" }, { "celsius", "celsius" },
	{ "grams", "grams" }, { "joules", "joules" }, { "kelvin", "kelvin" },
	{ "meters", "meters" }, { "metres", "metres" }, { "seconds", "seconds" },
	{ "volts", "volts" }, { "minutes", "" }, { "hours", "" }, { "days", "" },
	{ "weeks", "" }, { "kelvins", "" }, { "fahrenheit", "" }, { "rankine", "" },
	{ "inches", "" }, { "yards", "" }, { "miles", "" }, { "bits", "" },
	{ "calories", "" }, { "pounds", "" }, { "ounces", "" },
};
static const char *const lint_prefixes[] = {
	"pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo",
	"kibi", "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi", ""
};

/* The per-file families textfile.c fills itself. */
#define FAM_MTIME "tally_textfile_mtime_seconds"
#define FAM_ERROR "tally_textfile_scrape_error"
#define FAM_CONFLICTS "tally_textfile_conflicts"
static const struct {
	const char *name;
	const char *help;
} file_fams[3] = {
	{ FAM_MTIME, "Modification time of each *.prom file of the metrics directory, seconds since the epoch." },
	{ FAM_ERROR, "1 when a *.prom file was left out whole (unreadable, malformed, too large or changing while read), else 0." },
	{ FAM_CONFLICTS, "Families, series or timestamps of a *.prom file left out by the merge rule, by kind." },
};

/* One entry of a directory listing. */
struct entry {
	size_t name_off;
	unsigned long long dev, ino;
	long long size, mtime_ns, ctime_ns;
};

const char *textfile_conflict_name(enum tf_conflict k)
{
	return (unsigned)k < TF_NCONFLICT ? conflict_names[k] : "";
}

void textfile_init(struct textfile *t, const struct tf_reserved *res, size_t n)
{
	t->res = res;
	t->nres = n;
}

/* Frees what file f holds. */
static void file_free(struct tf_file *f)
{
	free(f->name);
	prom_doc_free(&f->doc);
	memset(f, 0, sizeof *f);
}

void textfile_free(struct textfile *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		file_free(&t->f[i]);
	free(t->f);
	free(t->list);
	buf_free(&t->text);
	buf_free(&t->om);
	buf_free(&t->scratch);
	buf_free(&t->names);
	memset(t, 0, sizeof *t);
}

/* Orders (dir, name) against file f: <0, 0, >0. */
static int file_cmp(size_t dir, const char *name, const struct tf_file *f)
{
	if (dir != f->dir)
		return dir < f->dir ? -1 : 1;
	return strcmp(name, f->name);
}

struct tf_file *textfile_find_in(const struct textfile *t, size_t dir, const char *name)
{
	size_t lo = 0, hi = t->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = file_cmp(dir, name, &t->f[mid]);
		if (c == 0)
			return &t->f[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct tf_file *textfile_find(const struct textfile *t, const char *name)
{
	return textfile_find_in(t, 0, name);
}

/* Returns t's file called name of directory dir, inserted empty in sorted
 * place when absent, or NULL with errno ENOMEM. */
static struct tf_file *file_slot(struct textfile *t, size_t dir, const char *name)
{
	size_t lo = 0, hi = t->n, mid;
	struct tf_file *f;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = file_cmp(dir, name, &t->f[mid]);
		if (c == 0) {
			prom_doc_free(&t->f[mid].doc);
			t->f[mid].error = 0;
			t->f[mid].err[0] = '\0';
			return &t->f[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *p = realloc(t->f, cap * sizeof *t->f);

		if (!p)
			return NULL;
		t->f = p;
		t->cap = cap;
	}
	memmove(t->f + lo + 1, t->f + lo, (t->n - lo) * sizeof *t->f);
	f = &t->f[lo];
	memset(f, 0, sizeof *f);
	f->dir = dir;
	f->name = strdup(name);
	if (!f->name) {
		memmove(t->f + lo, t->f + lo + 1, (t->n - lo) * sizeof *t->f);
		return NULL;
	}
	t->n++;
	return f;
}

/* textfile_put() into directory index dir. */
static int put_in(struct textfile *t, size_t dir, const char *name, const char *text, size_t n)
{
	struct tf_file *f = file_slot(t, dir, name);
	struct prom_err err;

	if (!f)
		return -1;
	t->parses++;
	if (prom_parse(&f->doc, text, n, &err) < 0) {
		if (errno == ENOMEM)
			return -1;
		f->error = 1;
		if (err.line)
			snprintf(f->err, sizeof f->err, "line %zu: %s", err.line, err.msg);
		else
			snprintf(f->err, sizeof f->err, "%s", err.msg);
	}
	return 0;
}

/* textfile_put_error() into directory index dir. */
static int put_error_in(struct textfile *t, size_t dir, const char *name, const char *msg)
{
	struct tf_file *f = file_slot(t, dir, name);

	if (!f)
		return -1;
	f->error = 1;
	snprintf(f->err, sizeof f->err, "%s", msg);
	return 0;
}

int textfile_put(struct textfile *t, const char *name, const char *text, size_t n)
{
	return put_in(t, 0, name, text, n);
}

int textfile_put_error(struct textfile *t, const char *name, const char *msg)
{
	return put_error_in(t, 0, name, msg);
}

static int om_check(const struct prom_doc *d);
static int ends_with(const char *name, const char *sfx);

/* ---- merging --------------------------------------------------------------- */

/* Appends the label names of key (a="x",b="y") to sig as "a,b". */
static int key_names(const char *key, struct buf *sig)
{
	const char *p = key;

	buf_reset(sig);
	if (buf_put(sig, "", 0) < 0)
		return -1;
	while (*p) {
		const char *eq = strchr(p, '=');

		if (!eq)
			break;
		if (sig->len && buf_putc(sig, ',') < 0)
			return -1;
		if (buf_put(sig, p, (size_t)(eq - p)) < 0)
			return -1;
		p = eq + 2; /* past =" */
		while (*p && *p != '"')
			p += (*p == '\\' && p[1]) ? 2 : 1;
		if (*p == '"')
			p++;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* Returns the index of the first sample of f whose key is not below key. */
static size_t key_lower(const struct prom_family *f, const char *key)
{
	size_t lo = 0, hi = f->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(f->s[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The merge in progress: the document and each family's label names. */
struct merge {
	struct prom_doc d;
	char **sig;    /* per family of d: label names of its first series, or NULL */
	const char **origin; /* per family of d: the file that first gave it */
	size_t sigcap;
	struct buf tmp;
};

/* Makes room for m->sig to cover every family of m->d. Returns 0 or -1. */
static int sig_room(struct merge *m)
{
	if (m->d.n <= m->sigcap)
		return 0;
	{
		size_t cap = m->d.cap > m->d.n ? m->d.cap : m->d.n;
		char **p = realloc(m->sig, cap * sizeof *p);
		const char **o;

		if (!p)
			return -1;
		memset(p + m->sigcap, 0, (cap - m->sigcap) * sizeof *p);
		m->sig = p;
		o = realloc(m->origin, cap * sizeof *o);
		if (!o)
			return -1;
		memset(o + m->sigcap, 0, (cap - m->sigcap) * sizeof *o);
		m->origin = o;
		m->sigcap = cap;
	}
	return 0;
}

/* Frees what m holds. */
static void merge_free(struct merge *m)
{
	size_t i;

	for (i = 0; i < m->sigcap; i++)
		free(m->sig[i]);
	free(m->sig);
	free(m->origin);
	prom_doc_free(&m->d);
	buf_free(&m->tmp);
}

/* Returns 1 if name is a reserved (built-in or per-file) family of t. */
static int reserved(const struct textfile *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nres; i++)
		if (!strcmp(t->res[i].name, name))
			return 1;
	for (i = 0; i < 3; i++)
		if (!strcmp(file_fams[i].name, name))
			return 1;
	return 0;
}

/* Returns 1 if the lowercase copy of name has "_w_" inside or "_w" at its end. */
static int has_word(const char *lower, const char *w)
{
	size_t n = strlen(lower), k = strlen(w);
	const char *p;

	for (p = lower; (p = strchr(p, '_')); p++)
		if (!strncmp(p + 1, w, k) && (p[1 + k] == '_' || (p[1 + k] == '\0' &&
		    (size_t)(p + 1 + k - lower) == n)))
			return 1;
	return 0;
}

/* Returns 1 if s has a lowercase letter followed by an uppercase one. */
static int camel(const char *s, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (s[i - 1] >= 'a' && s[i - 1] <= 'z' && s[i] >= 'A' && s[i] <= 'Z')
			return 1;
	return 0;
}

/* Returns 1 when promtool's lint rules on a family's name and type refuse
 * family g. */
static int lint_family(const struct prom_family *g)
{
	char lower[PROM_MAX_NAME + 1], part[PROM_MAX_NAME + 1];
	size_t n = strlen(g->name), i, k, u, pl;
	const char *p, *e;

	if (n > PROM_MAX_NAME)
		return 1;
	for (i = 0; i <= n; i++)
		lower[i] = (char)(g->name[i] >= 'A' && g->name[i] <= 'Z' ? g->name[i] + 32 : g->name[i]);
	if (strchr(g->name, ':') || camel(g->name, n))
		return 1;
	if ((g->type == PROM_COUNTER) != ends_with(g->name, "_total") && g->type != PROM_UNTYPED)
		return 1;
	if (g->type != PROM_UNTYPED &&
	    ((g->type != PROM_HISTOGRAM && ends_with(g->name, "_bucket")) ||
	     (g->type != PROM_HISTOGRAM && g->type != PROM_SUMMARY &&
	      (ends_with(g->name, "_count") || ends_with(g->name, "_sum")))))
		return 1;
	for (k = 0; k < sizeof lint_types / sizeof *lint_types; k++)
		if (has_word(lower, lint_types[k]))
			return 1;
	for (k = 0; k < sizeof lint_abbrev / sizeof *lint_abbrev; k++)
		if (has_word(lower, lint_abbrev[k]))
			return 1;
	for (p = g->name; *p; p = *e ? e + 1 : e) {
		e = strchr(p, '_');
		if (!e)
			e = p + strlen(p);
		memcpy(part, p, (size_t)(e - p));
		part[e - p] = '\0';
		for (u = 0; u < sizeof lint_units / sizeof *lint_units; u++)
			for (k = 0; k < sizeof lint_prefixes / sizeof *lint_prefixes; k++) {
				pl = strlen(lint_prefixes[k]);
				if (!strncmp(part, lint_prefixes[k], pl) &&
				    !strcmp(part + pl, lint_units[u].unit) &&
				    (pl || strcmp(lint_units[u].unit, lint_units[u].base)))
					return 1;
			}
	}
	return 0;
}

/* Returns 1 when promtool's lint rules refuse a series with labels key in
 * a family of type t: le outside histograms, quantile outside summaries,
 * camelCase label names. sig holds the key's label names ("a,b"). */
static int lint_series(enum prom_type t, const char *sig)
{
	const char *p, *e;

	for (p = sig; *p; p = *e ? e + 1 : e) {
		e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		if (camel(p, (size_t)(e - p)))
			return 1;
		if (t != PROM_UNTYPED && t != PROM_HISTOGRAM && e - p == 2 && !strncmp(p, "le", 2))
			return 1;
		if (t != PROM_UNTYPED && t != PROM_SUMMARY && e - p == 8 && !strncmp(p, "quantile", 8))
			return 1;
	}
	return 0;
}

/* Merges family g of file f into m by the rules of textfile.h. Returns 0,
 * or -1 with errno ENOMEM. */
static int merge_family(const struct textfile *t, struct merge *m, struct tf_file *f,
	const struct prom_family *g)
{
	struct prom_family *mf = prom_family_find(&m->d, g->name);
	size_t idx, i, j;

	if (reserved(t, g->name)) {
		f->conflicts[TF_RESERVED]++;
		return 0;
	}
	if (lint_family(g)) {
		f->conflicts[TF_LINT]++;
		return 0;
	}
	if (!mf) {
		if (prom_family_clash(&m->d, g->name, g->type)) {
			f->conflicts[TF_CLASH]++;
			return 0;
		}
		mf = prom_family_add(&m->d, g->name, g->type);
		if (!mf)
			return -1;
		mf->typed = g->typed;
		if (g->help && prom_family_set_help(mf, g->help) < 0)
			return -1;
		if (sig_room(m) < 0)
			return -1;
		m->origin[mf - m->d.f] = f->name;
	} else {
		if (mf->type != g->type) {
			f->conflicts[TF_TYPE]++;
			return 0;
		}
		if (g->typed)
			mf->typed = 1;
		if (g->help && !mf->help) {
			if (prom_family_set_help(mf, g->help) < 0)
				return -1;
		} else if (g->help && strcmp(g->help, mf->help)) {
			f->conflicts[TF_HELP]++;
		}
	}
	idx = (size_t)(mf - m->d.f);
	for (i = 0; i < g->n; i = j) {
		const char *key = g->s[i].key;
		size_t at;

		for (j = i + 1; j < g->n && !strcmp(g->s[j].key, key); j++)
			;
		if (key_names(key, &m->tmp) < 0)
			return -1;
		if (lint_series(g->type, m->tmp.p)) {
			f->conflicts[TF_LINT]++;
			continue;
		}
		if (!m->sig[idx]) {
			m->sig[idx] = strdup(m->tmp.p);
			if (!m->sig[idx])
				return -1;
		} else if (strcmp(m->sig[idx], m->tmp.p)) {
			f->conflicts[TF_LABELS]++;
			continue;
		}
		at = key_lower(mf, key);
		if (at < mf->n && !strcmp(mf->s[at].key, key)) {
			f->conflicts[TF_DUPLICATE]++;
			continue;
		}
		for (; i < j; i++) {
			const struct prom_sample *s = &g->s[i];
			struct prom_sample *d;

			d = prom_sample_get(mf, key, s->suffix, s->has_bound, s->bound, 1);
			if (!d)
				return -1;
			d->value = s->value;
			d->has_ts = 0;
			if (s->has_ts)
				f->conflicts[TF_TIMESTAMP]++;
			/* A bucket's exemplar (tally-metric's "# EXEMPLAR" line) goes
			 * with it, for the OpenMetrics rendering. */
			if (s->suffix == PROM_SFX_BUCKET && s->ex &&
			    prom_exemplar_set(d, s->ex->labels, s->ex->value, s->ex->has_ts, s->ex->ts) < 0)
				return -1;
		}
	}
	return 0;
}

/* Adds sample (labels key, value v) to the family called name of d. */
static int put_sample(struct prom_doc *d, const char *name, const char *key, double v)
{
	struct prom_family *fam = prom_family_find(d, name);
	struct prom_sample *s;

	if (!fam) {
		errno = EINVAL;
		return -1;
	}
	s = prom_sample_get(fam, key, PROM_SFX_NONE, 0, 0, 1);
	if (!s)
		return -1;
	s->value = v;
	return 0;
}

/* Appends file="NAME" to key, NAME escaped (bytes above 0x7f as '?' when
 * it is not UTF-8). */
static int name_key(struct buf *key, const char *name)
{
	size_t n = strlen(name), i;

	if (buf_puts(key, "file=\"") < 0)
		return -1;
	if (prom_utf8_ok(name, n)) {
		if (prom_escape_label(key, name, n) < 0)
			return -1;
	} else {
		for (i = 0; i < n; i++) {
			char c = (unsigned char)name[i] > 0x7f ? '?' : name[i];

			if (prom_escape_label(key, &c, 1) < 0)
				return -1;
		}
	}
	return buf_putc(key, '"');
}

/* Appends file="NAME" for a file of t's first directory, else
 * file="DIR/NAME", to key; a name that is not UTF-8 has each byte above
 * 0x7f replaced by '?'. */
static int file_key(const struct textfile *t, struct buf *key, const struct tf_file *f)
{
	struct buf path = { 0 };
	const char *name = f->name;
	int rc;

	buf_reset(key);
	if (f->dir > 0 && f->dir < t->ndirs) {
		if (buf_puts(&path, t->dirs[f->dir]) < 0 ||
		    (path.len && path.p[path.len - 1] != '/' && buf_putc(&path, '/') < 0) ||
		    buf_puts(&path, f->name) < 0) {
			buf_free(&path);
			return -1;
		}
		name = path.p;
	}
	rc = name_key(key, name);
	buf_free(&path);
	return rc;
}

/* Fills the per-file families of d from t's files. */
static int put_file_gauges(const struct textfile *t, struct prom_doc *d)
{
	struct buf key = { 0 };
	size_t i, base;
	int k, rc = -1;

	for (i = 0; i < t->n; i++) {
		const struct tf_file *f = &t->f[i];

		if (file_key(t, &key, f) < 0)
			goto out;
		if (put_sample(d, FAM_MTIME, key.p, (double)f->mtime_ns / 1e9) < 0 ||
		    put_sample(d, FAM_ERROR, key.p, f->error ? 1 : 0) < 0)
			goto out;
		base = key.len;
		for (k = 0; k < TF_NCONFLICT; k++) {
			if (!f->conflicts[k])
				continue;
			key.len = base;
			if (buf_printf(&key, ",kind=\"%s\"", conflict_names[k]) < 0 ||
			    put_sample(d, FAM_CONFLICTS, key.p, (double)f->conflicts[k]) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	buf_free(&key);
	return rc;
}

int textfile_build(struct textfile *t)
{
	struct merge m;
	struct prom_family *fam;
	size_t i, j;
	int rc = -1;

	memset(&m, 0, sizeof m);
	buf_reset(&t->text);
	buf_reset(&t->om);
	t->om_ok = 0;
	t->generation++;
	/* the per-file families first, then reservations for the others */
	for (i = 0; i < 3; i++) {
		fam = prom_family_add(&m.d, file_fams[i].name, PROM_GAUGE);
		if (!fam || prom_family_set_help(fam, file_fams[i].help) < 0)
			goto out;
	}
	for (i = 0; i < t->nres; i++)
		if (!prom_family_add(&m.d, t->res[i].name, t->res[i].type))
			goto out;
	if (sig_room(&m) < 0)
		goto out;
	for (i = 0; i < t->n; i++) {
		struct tf_file *f = &t->f[i];

		memset(f->conflicts, 0, sizeof f->conflicts);
		if (f->error)
			continue;
		for (j = 0; j < f->doc.n; j++)
			if (merge_family(t, &m, f, &f->doc.f[j]) < 0)
				goto out;
	}
	for (i = 0; i < m.d.n; i++) {
		fam = &m.d.f[i];
		if (!fam->help && m.origin[i]) {
			buf_reset(&m.tmp);
			if (buf_printf(&m.tmp, "Metric read from %s.", m.origin[i]) < 0 ||
			    prom_family_set_help(fam, m.tmp.p) < 0)
				goto out;
		}
	}
	if (put_file_gauges(t, &m.d) < 0)
		goto out;
	/* OpenMetrics is judged with the built-in names still present, so
	 * that a textfile family cannot collide with a built-in's OM name. */
	rc = om_check(&m.d);
	if (rc < 0)
		goto out;
	for (i = 0; i < t->nres; i++) {
		fam = prom_family_find(&m.d, t->res[i].name);
		if (fam)
			prom_family_remove(&m.d, fam);
	}
	for (i = 0; i < 3; i++) {
		fam = prom_family_find(&m.d, file_fams[i].name);
		if (fam && !fam->n)
			prom_family_remove(&m.d, fam);
	}
	if (rc == 1) {
		rc = textfile_openmetrics(&m.d, &t->om);
		if (rc < 0)
			goto out;
		t->om_ok = rc == 1;
	}
	rc = prom_serialize(&m.d, &t->text);
out:
	if (rc < 0) {
		buf_reset(&t->text);
		buf_reset(&t->om);
		t->om_ok = 0;
	}
	merge_free(&m);
	return rc < 0 ? -1 : 0;
}

/* ---- OpenMetrics ------------------------------------------------------------ */

/* Returns 1 if name ends in suffix sfx. */
static int ends_with(const char *name, const char *sfx)
{
	size_t n = strlen(name), k = strlen(sfx);

	return n >= k && !strcmp(name + n - k, sfx);
}

/* Returns 1 if name ends in a suffix OpenMetrics gives a meaning to. */
static int om_reserved_suffix(const char *name)
{
	static const char *const sfx[] = {
		"_total", "_created", "_bucket", "_count", "_sum", "_info", "_gcount", "_gsum"
	};
	size_t i;

	for (i = 0; i < sizeof sfx / sizeof *sfx; i++)
		if (ends_with(name, sfx[i]))
			return 1;
	return 0;
}

/* Returns 1 when the samples of f can be written exactly in OpenMetrics. */
static int om_values_ok(const struct prom_family *f)
{
	size_t i, j;

	if (f->type == PROM_COUNTER) {
		for (i = 0; i < f->n; i++)
			if (isnan(f->s[i].value) || f->s[i].value < 0)
				return 0;
		return 1;
	}
	if (f->type == PROM_SUMMARY) {
		for (i = 0; i < f->n; i++) {
			const struct prom_sample *s = &f->s[i];

			if (s->has_bound && (isnan(s->bound) || s->bound < 0 || s->bound > 1))
				return 0;
			if (s->suffix == PROM_SFX_COUNT && (isnan(s->value) || s->value < 0))
				return 0;
		}
		return 1;
	}
	if (f->type != PROM_HISTOGRAM)
		return 1;
	for (i = 0; i < f->n; i = j) {
		double last = 0, inf = -1;
		int have_count = 0;

		for (j = i; j < f->n && !strcmp(f->s[j].key, f->s[i].key); j++) {
			const struct prom_sample *s = &f->s[j];

			if (s->suffix == PROM_SFX_BUCKET) {
				if (isnan(s->value) || s->value < last)
					return 0;
				last = s->value;
				if (isinf(s->bound) && s->bound > 0)
					inf = s->value;
			} else if (s->suffix == PROM_SFX_COUNT) {
				if (inf < 0 || s->value != inf)
					return 0;
				have_count = 1;
			} else if (s->suffix == PROM_SFX_SUM && isnan(s->value)) {
				return 0;
			}
		}
		if (!have_count)
			return 0;
	}
	return 1;
}

/* Returns 1 when f is a gauge or untyped family named *_info whose every
 * sample is exactly 1: OpenMetrics writes it exactly as an info family
 * (its name less "_info", samples unchanged). */
static int om_is_info(const struct prom_family *f)
{
	size_t i;

	if ((f->type != PROM_GAUGE && f->type != PROM_UNTYPED) ||
	    !ends_with(f->name, "_info") || strlen(f->name) == 5)
		return 0;
	for (i = 0; i < f->n; i++)
		if (f->s[i].suffix != PROM_SFX_NONE || f->s[i].value != 1)
			return 0;
	return 1;
}

/* qsort comparator of two C strings by pointer. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 1 when every family of d can be written exactly in OpenMetrics,
 * 0 when one cannot, -1 with errno ENOMEM. */
static int om_check(const struct prom_doc *d)
{
	char **names;
	size_t i, n;
	int ok = 1;

	if (!d->n)
		return 1;
	names = calloc(d->n, sizeof *names);
	if (!names)
		return -1;
	for (i = 0; i < d->n && ok == 1; i++) {
		const struct prom_family *f = &d->f[i];

		n = strlen(f->name);
		names[i] = strdup(f->name);
		if (!names[i]) {
			ok = -1;
			break;
		}
		if (f->type == PROM_COUNTER) {
			if (!ends_with(f->name, "_total") || n == 6) {
				ok = 0;
				break;
			}
			names[i][n - 6] = '\0';
		} else if (om_is_info(f)) {
			names[i][n - 5] = '\0';
		}
		if (om_reserved_suffix(names[i]) || !om_values_ok(f))
			ok = 0;
	}
	if (ok == 1) {
		qsort(names, d->n, sizeof *names, cmp_str);
		for (i = 1; i < d->n; i++)
			if (!strcmp(names[i - 1], names[i]))
				ok = 0;
	}
	for (i = 0; i < d->n; i++)
		free(names[i]);
	free(names);
	if (ok < 0)
		errno = ENOMEM;
	return ok;
}

/* Appends s escaped as OpenMetrics HELP text: \\, \n and \". */
static int om_escape_help(struct buf *b, const char *s)
{
	for (; *s; s++) {
		int rc;

		if (*s == '\\')
			rc = buf_puts(b, "\\\\");
		else if (*s == '\n')
			rc = buf_puts(b, "\\n");
		else if (*s == '"')
			rc = buf_puts(b, "\\\"");
		else
			rc = buf_putc(b, *s);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int textfile_put_meta(struct buf *out, int om, const char *name, enum prom_type t,
	const char *help)
{
	size_t n = strlen(name);

	if (!om) {
		if (help && (buf_printf(out, "# HELP %s ", name) < 0 ||
		    prom_escape_help(out, help, strlen(help)) < 0 || buf_putc(out, '\n') < 0))
			return -1;
		return buf_printf(out, "# TYPE %s %s\n", name, prom_type_name(t));
	}
	if (t == PROM_COUNTER && ends_with(name, "_total"))
		n -= 6;
	if (buf_printf(out, "# TYPE %.*s %s\n", (int)n, name,
	    t == PROM_UNTYPED ? "unknown" : prom_type_name(t)) < 0)
		return -1;
	if (help && *help && (buf_printf(out, "# HELP %.*s ", (int)n, name) < 0 ||
	    om_escape_help(out, help) < 0 || buf_putc(out, '\n') < 0))
		return -1;
	return 0;
}

int textfile_openmetrics(const struct prom_doc *d, struct buf *out)
{
	static const char *const sfx[] = { "", "_bucket", "_sum", "_count" };
	char v[PROM_VALUE_BUFSZ];
	size_t i, j, old = out->len;
	int rc = om_check(d);

	if (rc <= 0)
		return rc;
	if (buf_put(out, "", 0) < 0)
		return -1;
	for (i = 0; i < d->n; i++) {
		const struct prom_family *f = &d->f[i];

		if (om_is_info(f)) {
			size_t n = strlen(f->name) - 5;

			if (buf_printf(out, "# TYPE %.*s info\n", (int)n, f->name) < 0)
				goto out_fail;
			if (f->help && *f->help && (buf_printf(out, "# HELP %.*s ", (int)n, f->name) < 0 ||
			    om_escape_help(out, f->help) < 0 || buf_putc(out, '\n') < 0))
				goto out_fail;
		} else if (textfile_put_meta(out, 1, f->name, f->type, f->help) < 0) {
			goto out_fail;
		}
		for (j = 0; j < f->n; j++) {
			const struct prom_sample *s = &f->s[j];

			if (buf_puts(out, f->name) < 0 || buf_puts(out, sfx[s->suffix]) < 0)
				goto out_fail;
			if (*s->key || s->has_bound) {
				if (buf_putc(out, '{') < 0 || buf_puts(out, s->key) < 0)
					goto out_fail;
				if (s->has_bound) {
					prom_format_value(s->bound, v);
					if (buf_printf(out, "%s%s=\"%s\"", *s->key ? "," : "",
					    f->type == PROM_HISTOGRAM ? "le" : "quantile", v) < 0)
						goto out_fail;
				}
				if (buf_putc(out, '}') < 0)
					goto out_fail;
			}
			prom_format_value(s->value, v);
			if (buf_printf(out, " %s", v) < 0)
				goto out_fail;
			if (s->suffix == PROM_SFX_BUCKET && s->ex &&
			    prom_exemplar_put_openmetrics(out, s->ex) < 0)
				goto out_fail;
			if (buf_putc(out, '\n') < 0)
				goto out_fail;
		}
	}
	return 1;

out_fail:
	out->len = old;
	if (out->cap)
		out->p[old] = '\0';
	return -1;
}

/* ---- the directory ------------------------------------------------------------ */

/* Returns 1 if name is served: "*.prom", not hidden. */
static int is_prom_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && !strcmp(name + n - 5, ".prom");
}

/* Fills the stat key of e from st. */
static void stat_key(struct entry *e, const struct stat *st)
{
	e->dev = (unsigned long long)st->st_dev;
	e->ino = (unsigned long long)st->st_ino;
	e->size = (long long)st->st_size;
	e->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	e->ctime_ns = (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

/* Returns 1 if file f was read with stat key e. */
static int same_key(const struct tf_file *f, const struct entry *e)
{
	return f->dev == e->dev && f->ino == e->ino && f->size == e->size &&
	       f->mtime_ns == e->mtime_ns && f->ctime_ns == e->ctime_ns;
}

/* Copies the stat key e into f. */
static void set_key(struct tf_file *f, const struct entry *e)
{
	f->dev = e->dev;
	f->ino = e->ino;
	f->size = e->size;
	f->mtime_ns = e->mtime_ns;
	f->ctime_ns = e->ctime_ns;
}

/* Returns t's file called name of directory di when the bytes just read
 * into t->scratch with stat key e look like a write caught half-way: they
 * end in a line without newline, the file changed less than TF_SETTLE_MS
 * ago and t holds a version of the same inode (which is then kept); else
 * NULL. */
static struct tf_file *unfinished(const struct textfile *t, size_t di, const char *name,
	const struct entry *e)
{
	struct tf_file *f;
	struct timespec now;
	long long age_ns;

	if (t->scratch.len == 0 || t->scratch.p[t->scratch.len - 1] == '\n')
		return NULL;
	f = textfile_find_in(t, di, name);
	if (!f || f->dev != e->dev || f->ino != e->ino)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	age_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec - e->mtime_ns;
	return age_ns < TF_SETTLE_MS * 1000000LL ? f : NULL;
}

/* Reads and parses dir/name into t as a file of directory index di. *e is
 * updated to the stat the content was read with. Sets *gone when the file
 * vanished, *kept when the version held was kept (unfinished()). Returns
 * 0 (problems with the file only mark it), or -1 with errno ENOMEM. */
static int load_file(struct textfile *t, size_t di, int dfd, const char *name,
	struct entry *e, size_t *total, int *gone, int *kept)
{
	struct stat st, st2;
	char msg[TF_ERR_LEN];
	struct tf_file *f;
	int tries, fd;
	ssize_t r = 0;

	*gone = 0;
	*kept = 0;
	for (tries = 0; tries < TF_MAX_READ_TRIES; tries++) {
		fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			if (errno == ENOENT) {
				*gone = 1;
				return 0;
			}
			snprintf(msg, sizeof msg, "unable to open: %s", strerror(errno));
			goto out_error;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			*gone = 1;
			return 0;
		}
		stat_key(e, &st);
		if ((unsigned long long)st.st_size > PROM_MAX_FILE) {
			close(fd);
			snprintf(msg, sizeof msg, "larger than %u bytes", PROM_MAX_FILE);
			goto out_error;
		}
		if (*total + (size_t)st.st_size > TF_MAX_TOTAL) {
			close(fd);
			snprintf(msg, sizeof msg, "the metrics directory holds more than %u bytes",
				TF_MAX_TOTAL);
			goto out_error;
		}
		buf_reset(&t->scratch);
		if (buf_reserve(&t->scratch, (size_t)st.st_size + 1) < 0) {
			close(fd);
			return -1;
		}
		for (;;) {
			size_t room = (size_t)st.st_size + 1 - t->scratch.len;

			if (room == 0)
				break; /* grew while read: caught below */
			r = read(fd, t->scratch.p + t->scratch.len, room);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			t->scratch.len += (size_t)r;
		}
		if (r < 0) {
			snprintf(msg, sizeof msg, "unable to read: %s", strerror(errno));
			close(fd);
			goto out_error;
		}
		if (fstat(fd, &st2) < 0)
			st2 = st;
		close(fd);
		if (t->scratch.len == (size_t)st.st_size && st2.st_size == st.st_size &&
		    st2.st_mtim.tv_sec == st.st_mtim.tv_sec &&
		    st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
			break;
	}
	if (tries == TF_MAX_READ_TRIES) {
		snprintf(msg, sizeof msg, "changed while being read, %d times", TF_MAX_READ_TRIES);
		goto out_error;
	}
	f = unfinished(t, di, name, e);
	if (f) {
		/* its stat key stays the old one, so the next listing reads
		 * the file again */
		*total += (size_t)f->size;
		*kept = 1;
		return 0;
	}
	*total += t->scratch.len;
	if (put_in(t, di, name, t->scratch.p ? t->scratch.p : "", t->scratch.len) < 0)
		return -1;
	f = textfile_find_in(t, di, name);
	set_key(f, e);
	if (t->scratch.cap > (1u << 20))
		buf_free(&t->scratch);
	return 0;

out_error:
	if (put_error_in(t, di, name, msg) < 0)
		return -1;
	set_key(textfile_find_in(t, di, name), e);
	return 0;
}

/* Removes t's file at index i. */
static void drop_file(struct textfile *t, size_t i)
{
	file_free(&t->f[i]);
	memmove(t->f + i, t->f + i + 1, (t->n - i - 1) * sizeof *t->f);
	t->n--;
}

/* The listing being sorted: names live in t->names. */
static const char *sort_names;

/* qsort comparator of two entries by name. */
static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return strcmp(sort_names + x->name_off, sort_names + y->name_off);
}

/* Lists directory dir (index di of t's directories) and brings its files
 * in t up to date; *total counts the bytes of all directories so far; sets
 * *dirty when a file was added, changed or removed. Returns 0, or -1 with
 * errno set (t keeps the directory's files as last read). */
static int refresh_dir(struct textfile *t, size_t di, const char *dir, size_t *total,
	int *dirty)
{
	struct entry *list = t->list, *e;
	size_t n = 0, i, k;
	struct dirent *de;
	struct stat st;
	int dfd, err, gone, kept;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	d = fdopendir(dfd);
	if (!d) {
		err = errno;
		close(dfd);
		errno = err;
		return -1;
	}
	buf_reset(&t->names);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				goto out_closedir;
			break;
		}
		if (!is_prom_name(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == TF_MAX_FILES) {
			t->skipped++;
			continue;
		}
		if (n == t->list_cap) {
			size_t cap = t->list_cap ? t->list_cap * 2 : 32;
			void *p = realloc(list, cap * sizeof *list);

			if (!p)
				goto out_closedir;
			t->list = list = p;
			t->list_cap = cap;
		}
		e = &list[n++];
		e->name_off = t->names.len;
		if (buf_put(&t->names, de->d_name, strlen(de->d_name) + 1) < 0)
			goto out_closedir;
		stat_key(e, &st);
	}
	if (n > 1) {
		sort_names = t->names.p;
		qsort(list, n, sizeof *list, cmp_entry);
	}
	/* walk the sorted listing and the directory's sorted files together */
	for (k = 0; k < t->n && t->f[k].dir < di; k++)
		;
	for (i = 0; i < n; i++) {
		const char *name = t->names.p + list[i].name_off;
		int c = 1;

		while (k < t->n && t->f[k].dir == di && (c = strcmp(t->f[k].name, name)) < 0) {
			drop_file(t, k);
			*dirty = 1;
		}
		if (k >= t->n || t->f[k].dir != di)
			c = 1;
		if (c == 0 && same_key(&t->f[k], &list[i])) {
			*total += (size_t)t->f[k].size;
			k++;
			continue;
		}
		if (load_file(t, di, dfd, name, &list[i], total, &gone, &kept) < 0)
			goto out_closedir;
		if (!kept)
			*dirty = 1;
		if (gone) {
			if (c == 0)
				drop_file(t, k);
			continue;
		}
		k++;
	}
	while (k < t->n && t->f[k].dir == di) {
		drop_file(t, k);
		*dirty = 1;
	}
	closedir(d);
	return 0;

out_closedir:
	err = errno;
	closedir(d);
	errno = err;
	return -1;
}

int textfile_refresh_dirs(struct textfile *t, const char *const *dirs, size_t n,
	int *changed, int *errs)
{
	size_t i, total = 0, ok = 0;
	int dirty = 0, first_err = 0;

	*changed = 0;
	if (n < 1 || n > TF_MAX_DIRS) {
		errno = EINVAL;
		return -1;
	}
	if (t->ndirs != n) {
		dirty = 1; /* the file labels of later directories change */
		/* files of directories no longer listed go */
		for (i = t->n; i > 0; i--)
			if (t->f[i - 1].dir >= n)
				drop_file(t, i - 1);
	}
	t->dirs = dirs;
	t->ndirs = n;
	t->skipped = 0;
	for (i = 0; i < n; i++) {
		errs[i] = 0;
		if (refresh_dir(t, i, dirs[i], &total, &dirty) < 0) {
			if (errno == ENOMEM)
				return -1;
			errs[i] = errno;
			if (!first_err)
				first_err = errno;
			continue;
		}
		ok++;
	}
	if (!ok) {
		errno = first_err;
		return -1;
	}
	if (dirty || t->generation == 0) {
		*changed = 1;
		return textfile_build(t);
	}
	return 0;
}

int textfile_refresh(struct textfile *t, const char *dir, int *changed)
{
	int err;

	t->dirs_one[0] = dir;
	return textfile_refresh_dirs(t, t->dirs_one, 1, changed, &err);
}
