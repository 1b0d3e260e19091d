/* prom.c: the Prometheus text exposition format 0.0.4: names, escaping,
 * values, and a model of families and samples with parse and serialize.
 * https://prometheus.io/docs/instrumenting/exposition_formats/ */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tally.h"

/* Escapes per byte: NULL means the byte stands for itself. */
static const char *const label_esc[256] = {
	['\\'] = "\\\\", ['"'] = "\\\"", ['\n'] = "\\n",
};
static const char *const help_esc[256] = {
	['\\'] = "\\\\", ['\n'] = "\\n",
};

/* The TYPE keywords, indexed by enum prom_type. */
static const char *const type_names[] = {
	"untyped", "counter", "gauge", "histogram", "summary",
};

/* The sample name suffixes, indexed by enum prom_suffix. */
static const char *const sfx_text[] = { "", "_bucket", "_sum", "_count" };

/* Returns 1 for [a-zA-Z_], else 0. */
static int is_alpha_(int c)
{
	return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

/* Returns 1 for [0-9], else 0. */
static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Returns 1 when c may continue a metric name, else 0. */
static int metric_char(int c)
{
	return is_alpha_(c) || is_digit(c) || c == ':';
}

/* Returns 1 when c may continue a label name, else 0. */
static int label_char(int c)
{
	return is_alpha_(c) || is_digit(c);
}

int prom_metric_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PROM_MAX_NAME || !(is_alpha_((unsigned char)s[0]) || s[0] == ':'))
		return 0;
	for (i = 1; i < n; i++)
		if (!metric_char((unsigned char)s[i]))
			return 0;
	return 1;
}

int prom_label_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PROM_MAX_NAME || !is_alpha_((unsigned char)s[0]))
		return 0;
	if (n >= 2 && s[0] == '_' && s[1] == '_')
		return 0;
	for (i = 1; i < n; i++)
		if (!label_char((unsigned char)s[i]))
			return 0;
	return 1;
}

int prom_utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *e;
	unsigned lo, hi;
	size_t len, i;

	if (n == 0) /* s may be NULL then */
		return 1;
	e = p + n;

	while (p < e) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		lo = 0x80;
		hi = 0xBF;
		if (*p >= 0xC2 && *p <= 0xDF) {
			len = 2;
		} else if (*p >= 0xE0 && *p <= 0xEF) {
			len = 3;
			lo = *p == 0xE0 ? 0xA0 : lo;
			hi = *p == 0xED ? 0x9F : hi;
		} else if (*p >= 0xF0 && *p <= 0xF4) {
			len = 4;
			lo = *p == 0xF0 ? 0x90 : lo;
			hi = *p == 0xF4 ? 0x8F : hi;
		} else {
			return 0;
		}
		if ((size_t)(e - p) < len || p[1] < lo || p[1] > hi)
			return 0;
		for (i = 2; i < len; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		p += len;
	}
	return 1;
}

/* Appends s[0..n) with each byte replaced by tab[byte] when that is set.
 * Returns 0, or -1 with errno ENOMEM. */
static int escape(struct buf *b, const char *s, size_t n, const char *const tab[256])
{
	size_t i, run = 0;
	const char *e;

	if (n == 0) /* s may be NULL then */
		return buf_put(b, "", 0);
	for (i = 0; i < n; i++) {
		e = tab[(unsigned char)s[i]];
		if (!e)
			continue;
		if (buf_put(b, s + run, i - run) < 0 || buf_puts(b, e) < 0)
			return -1;
		run = i + 1;
	}
	return buf_put(b, s + run, n - run);
}

int prom_escape_label(struct buf *b, const char *s, size_t n)
{
	return escape(b, s, n, label_esc);
}

int prom_escape_help(struct buf *b, const char *s, size_t n)
{
	return escape(b, s, n, help_esc);
}

/* Powers of ten that are exact doubles, 10^0 .. 10^22. */
static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Writes the decimal digits of m (below 10^19) zero-padded to at least
 * width digits at p; returns the end. */
static char *put_digits(char *p, unsigned long long m, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Formats a (positive, 1e-4 <= a < 1e15, not an integer) as the fixed-point
 * text with the fewest decimals (at most 15) that converts back to a
 * exactly, which is also what the shortest %.Ng prints; neg adds a '-'.
 * Returns 0, or -1 when there is no such text within those bounds. The
 * check m / 10^k == a is exact: both operands are exact doubles and the
 * division is correctly rounded, as strtod is (Clinger's fast path). */
static int format_fixed(double a, int neg, char out[PROM_VALUE_BUFSZ])
{
	unsigned long long m, ip;
	double x;
	char *p = out;
	int k;

	for (k = 1; k <= 15; k++) {
		x = a * pow10_exact[k];
		if (x >= 1e15)
			return -1;
		m = (unsigned long long)(x + 0.5);
		if ((double)m / pow10_exact[k] != a)
			continue;
		ip = m / (unsigned long long)pow10_exact[k];
		if (neg)
			*p++ = '-';
		p = put_digits(p, ip, 1);
		*p++ = '.';
		p = put_digits(p, m % (unsigned long long)pow10_exact[k], k);
		*p = '\0';
		return 0;
	}
	return -1;
}

void prom_format_value(double v, char out[PROM_VALUE_BUFSZ])
{
	double a = v < 0 ? -v : v, back;
	char *p = out;
	int prec, lo, hi;

	if (v != v) {
		memcpy(out, "NaN", 4);
		return;
	}
	if (a > DBL_MAX) {
		memcpy(out, v < 0 ? "-Inf" : "+Inf", 5);
		return;
	}
	/* Every double from 2^53 up is an integer; below, test by truncation. */
	if (a < 1e21 && (a >= 9007199254740992.0 || (double)(long long)v == v)) {
		if (a >= 1e19) {
			snprintf(out, PROM_VALUE_BUFSZ, "%.0f", v);
			return;
		}
		if (signbit(v))
			*p++ = '-';
		p = put_digits(p, (unsigned long long)a, 1);
		*p = '\0';
		return;
	}
	if (a >= 1e-4 && a < 1e15 && format_fixed(a, v < 0, out) == 0)
		return;
	/* The fewest %.Ng digits that read back exactly: 17 always do, and
	 * if N do, N + 1 do; a sum of durations (0.013000000000000001) often
	 * needs 16 or 17, so a binary search: at most 5 tries, not 17. */
	for (lo = 1, hi = 17; lo < hi;) {
		prec = (lo + hi) / 2;
		snprintf(out, PROM_VALUE_BUFSZ, "%.*g", prec, v);
		back = strtod(out, NULL);
		if (memcmp(&back, &v, sizeof v) == 0)
			hi = prec;
		else
			lo = prec + 1;
	}
	/* out holds the last try: the answer when it read back exactly. */
	if (prec != hi)
		snprintf(out, PROM_VALUE_BUFSZ, "%.*g", hi, v);
}

/* Converts s, already checked to be [+-]?D+[.D*] or [+-]?.D+, to *v
 * without strtod when it has at most 15 digits and no exponent: the
 * digits are an exact integer and 10^k an exact double, so one correctly
 * rounded division gives strtod's result (Clinger's fast path). Returns
 * 0, or -1 when s is not such a number. */
static int fast_decimal(const char *s, double *v)
{
	unsigned long long m = 0;
	int digits = 0, k = 0, frac = 0, neg = *s == '-';
	const char *p = s + (*s == '-' || *s == '+');
	double r;

	for (; *p; p++) {
		if (*p == '.') {
			frac = 1;
			continue;
		}
		if (!is_digit(*p) || ++digits > 15)
			return -1;
		m = m * 10 + (unsigned long long)(*p - '0');
		k += frac;
	}
	r = (double)m / pow10_exact[k];
	*v = neg ? -r : r;
	return 0;
}

int prom_parse_value(const char *s, double *v)
{
	const char *p = s;
	size_t digits = 0;
	char *end;
	double r;

	if (*p == '+' || *p == '-')
		p++;
	if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
		*v = *s == '-' ? -HUGE_VAL : HUGE_VAL;
		return 0;
	}
	if (!strcasecmp(s, "nan")) {
		*v = NAN;
		return 0;
	}
	for (; is_digit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; is_digit(*p); p++)
			digits++;
	if (!digits)
		goto bad;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!is_digit(*p))
			goto bad;
		while (is_digit(*p))
			p++;
	}
	if (*p)
		goto bad;
	if (fast_decimal(s, v) == 0)
		return 0;
	errno = 0;
	r = strtod(s, &end);
	if (*end)
		goto bad;
	if (errno == ERANGE && (r > DBL_MAX || r < -DBL_MAX)) {
		errno = ERANGE;
		return -1;
	}
	*v = r;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

const char *prom_type_name(enum prom_type t)
{
	return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "untyped";
}

int prom_type_parse(const char *s, enum prom_type *t)
{
	size_t i;

	for (i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (!strcasecmp(s, type_names[i])) {
			*t = (enum prom_type)i;
			return 0;
		}
	return -1;
}

/* ---- the model ---------------------------------------------------------- */

/* Returns a malloc'd NUL-terminated copy of s[0..n), or NULL with ENOMEM. */
static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Grows *arr (of *cap elements of size sz) to hold n + 1. Returns 0, or -1 with ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t c;
	void *p;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 8;
	if (c > (size_t)-1 / sz) {
		errno = ENOMEM;
		return -1;
	}
	p = realloc(*arr, c * sz);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	*arr = p;
	*cap = c;
	return 0;
}

/* Frees exemplar ex (NULL allowed). */
static void exemplar_free(struct prom_exemplar *ex)
{
	if (ex) {
		free(ex->labels);
		free(ex);
	}
}

/* Frees what family f holds. */
static void family_free(struct prom_family *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->s[i].key);
		exemplar_free(f->s[i].ex);
	}
	free(f->s);
	free(f->name);
	free(f->help);
}

void prom_doc_free(struct prom_doc *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		family_free(&d->f[i]);
	free(d->f);
	d->f = NULL;
	d->n = d->cap = 0;
}

struct prom_family *prom_family_find(const struct prom_doc *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (!strcmp(d->f[i].name, name))
			return &d->f[i];
	return NULL;
}

/* Returns 1 when a family of type t has samples with suffix x, else 0. */
static int emits(enum prom_type t, enum prom_suffix x)
{
	switch (x) {
	case PROM_SFX_NONE:
		return t != PROM_HISTOGRAM;
	case PROM_SFX_BUCKET:
		return t == PROM_HISTOGRAM;
	default:
		return t == PROM_HISTOGRAM || t == PROM_SUMMARY;
	}
}

/* Returns 1 when the strings a||as and b||bs are equal, else 0. */
static int joined_eq(const char *a, const char *as, const char *b, const char *bs)
{
	size_t na = strlen(a), nb = strlen(b);

	if (na + strlen(as) != nb + strlen(bs))
		return 0;
	if (na > nb)
		return joined_eq(b, bs, a, as);
	return !strncmp(a, b, na) && !strncmp(as, b + na, nb - na) && !strcmp(as + (nb - na), bs);
}

struct prom_family *prom_family_clash(const struct prom_doc *d, const char *name, enum prom_type t)
{
	size_t i;
	int x, y;

	for (i = 0; i < d->n; i++) {
		if (!strcmp(d->f[i].name, name))
			continue;
		for (x = PROM_SFX_NONE; x <= PROM_SFX_COUNT; x++) {
			if (!emits(t, (enum prom_suffix)x))
				continue;
			for (y = PROM_SFX_NONE; y <= PROM_SFX_COUNT; y++)
				if (emits(d->f[i].type, (enum prom_suffix)y) &&
				    joined_eq(name, sfx_text[x], d->f[i].name, sfx_text[y]))
					return &d->f[i];
		}
	}
	return NULL;
}

struct prom_family *prom_family_add(struct prom_doc *d, const char *name, enum prom_type t)
{
	struct prom_family *f;
	char *copy;

	if (grow((void **)&d->f, &d->cap, d->n, sizeof *d->f) < 0)
		return NULL;
	copy = dup_n(name, strlen(name));
	if (!copy)
		return NULL;
	f = &d->f[d->n++];
	memset(f, 0, sizeof *f);
	f->name = copy;
	f->type = t;
	f->typed = 1;
	return f;
}

void prom_family_remove(struct prom_doc *d, struct prom_family *f)
{
	size_t i = (size_t)(f - d->f);

	family_free(f);
	memmove(d->f + i, d->f + i + 1, (d->n - i - 1) * sizeof *d->f);
	d->n--;
}

int prom_family_set_help(struct prom_family *f, const char *s)
{
	char *copy = dup_n(s, strlen(s));

	if (!copy)
		return -1;
	free(f->help);
	f->help = copy;
	return 0;
}

/* Returns the sort rank of a suffix: bucket and plain 0, _sum 1, _count 2. */
static int rank(enum prom_suffix x)
{
	return x == PROM_SFX_SUM ? 1 : x == PROM_SFX_COUNT ? 2 : 0;
}

/* Orders (key, x, has_bound, bound) against sample b like strcmp. */
static int sample_cmp(const char *key, enum prom_suffix x, int has_bound, double bound,
	const struct prom_sample *b)
{
	int c = strcmp(key, b->key);

	if (c)
		return c;
	if (rank(x) != rank(b->suffix))
		return rank(x) < rank(b->suffix) ? -1 : 1;
	if (has_bound != b->has_bound)
		return has_bound < b->has_bound ? -1 : 1;
	if (bound != b->bound)
		return bound < b->bound ? -1 : 1;
	return 0;
}

/* qsort comparator of two struct prom_sample. */
static int sample_qcmp(const void *pa, const void *pb)
{
	const struct prom_sample *a = pa;

	return sample_cmp(a->key, a->suffix, a->has_bound, a->bound, pb);
}

struct prom_sample *prom_sample_get(struct prom_family *f, const char *key,
	enum prom_suffix suffix, int has_bound, double bound, int create)
{
	size_t lo = 0, hi = f->n, mid;
	struct prom_sample *s;
	char *copy;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = sample_cmp(key, suffix, has_bound, bound, &f->s[mid]);
		if (c == 0)
			return &f->s[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!create) {
		errno = ENOENT;
		return NULL;
	}
	if (grow((void **)&f->s, &f->cap, f->n, sizeof *f->s) < 0)
		return NULL;
	copy = dup_n(key, strlen(key));
	if (!copy)
		return NULL;
	memmove(f->s + lo + 1, f->s + lo, (f->n - lo) * sizeof *f->s);
	f->n++;
	s = &f->s[lo];
	memset(s, 0, sizeof *s);
	s->key = copy;
	s->suffix = suffix;
	s->has_bound = has_bound;
	s->bound = has_bound ? bound : 0;
	return s;
}

size_t prom_series_remove(struct prom_family *f, const char *key)
{
	size_t i, j = 0;

	for (i = 0; i < f->n; i++) {
		if (!strcmp(f->s[i].key, key)) {
			free(f->s[i].key);
			exemplar_free(f->s[i].ex);
			continue;
		}
		f->s[j++] = f->s[i];
	}
	i = f->n - j;
	f->n = j;
	return i;
}

/* Fills err->msg from fmt and sets errno to EINVAL. Returns -1. */
static int refuse(struct prom_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(struct prom_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	errno = EINVAL;
	return -1;
}

/* Copies s[0..n) to dst (cap bytes) for a message: at most 64 bytes, and
 * bytes outside printable ASCII shown as '?'. Returns dst. */
static const char *shown(char *dst, size_t cap, const char *s, size_t n)
{
	size_t i;

	if (n > 64)
		n = 64;
	if (n > cap - 1)
		n = cap - 1;
	for (i = 0; i < n; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[n] = '\0';
	return dst;
}

/* qsort comparator of two struct prom_label by name. */
static int label_qcmp(const void *pa, const void *pb)
{
	const struct prom_label *a = pa, *b = pb;
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);

	if (c)
		return c;
	return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

int prom_labels_key(struct prom_label *l, size_t n, const char *bound_name, int want_bound,
	double *bound, struct buf *key, struct prom_err *err)
{
	char show[72], text[PROM_MAX_VALUE_TEXT + 1];
	size_t i, bn = bound_name ? strlen(bound_name) : 0;
	int found = 0, first = 1;

	if (n > PROM_MAX_LABELS)
		return refuse(err, "too many labels (more than %d)", PROM_MAX_LABELS);
	for (i = 0; i < n; i++) {
		if (l[i].name_len > PROM_MAX_NAME)
			return refuse(err, "label name too long (more than %d bytes)", PROM_MAX_NAME);
		if (!prom_label_name_ok(l[i].name, l[i].name_len))
			return refuse(err, "invalid label name \"%s\" (want [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
				shown(show, sizeof show, l[i].name, l[i].name_len));
		if (l[i].value_len > PROM_MAX_LABEL_VALUE)
			return refuse(err, "value of label %s too long (more than %d bytes)",
				shown(show, sizeof show, l[i].name, l[i].name_len), PROM_MAX_LABEL_VALUE);
		if (!prom_utf8_ok(l[i].value, l[i].value_len))
			return refuse(err, "value of label %s is not valid UTF-8",
				shown(show, sizeof show, l[i].name, l[i].name_len));
	}
	for (i = 1; i < n && label_qcmp(&l[i - 1], &l[i]) < 0; i++)
		;
	if (i < n) /* not already sorted (files tally writes are) */
		qsort(l, n, sizeof *l, label_qcmp);
	for (i = 1; i < n; i++)
		if (!label_qcmp(&l[i - 1], &l[i]))
			return refuse(err, "duplicate label %s",
				shown(show, sizeof show, l[i].name, l[i].name_len));
	for (i = 0; i < n; i++) {
		if (bound_name && l[i].name_len == bn && !memcmp(l[i].name, bound_name, bn)) {
			if (!want_bound)
				return refuse(err, "label %s is reserved for %s samples", bound_name,
					bn == 2 ? "histogram bucket" : "summary quantile");
			found = 1;
			if (l[i].value_len > PROM_MAX_VALUE_TEXT)
				return refuse(err, "invalid %s value", bound_name);
			memcpy(text, l[i].value, l[i].value_len);
			text[l[i].value_len] = '\0';
			if (prom_parse_value(text, bound) < 0 || *bound != *bound)
				return refuse(err, "invalid %s value \"%s\"", bound_name,
					shown(show, sizeof show, text, l[i].value_len));
			continue;
		}
		if ((!first && buf_putc(key, ',') < 0) ||
		    buf_put(key, l[i].name, l[i].name_len) < 0 || buf_put(key, "=\"", 2) < 0 ||
		    prom_escape_label(key, l[i].value, l[i].value_len) < 0 || buf_putc(key, '"') < 0)
			return -1;
		first = 0;
	}
	if (want_bound && !found)
		return refuse(err, "missing label %s", bound_name);
	return buf_put(key, "", 0); /* NUL-terminated even when empty */
}

/* ---- the parser ------------------------------------------------------------ */

/* Parser state: the current line is p..e. */
struct parser {
	struct prom_doc *d;
	struct prom_err *err;
	const char *p, *e;
	struct buf scratch;                  /* unescaped label values, HELP text */
	struct buf key;
	struct prom_label lab[PROM_MAX_LABELS];
	size_t voff[PROM_MAX_LABELS];
	struct pending *pend;                /* EXEMPLAR comments, attached at the end */
	size_t npend, cappend;
};

/* An EXEMPLAR comment waiting for its bucket: family index, series key
 * and bound, and the exemplar. */
struct pending {
	size_t fam;
	char *key;
	double bound;
	struct prom_exemplar ex;
};

/* Skips spaces and tabs. */
static void skip_blank(struct parser *ps)
{
	while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* Sets *w to the next run of non-blank bytes and returns its length. */
static size_t word(struct parser *ps, const char **w)
{
	*w = ps->p;
	while (ps->p < ps->e && *ps->p != ' ' && *ps->p != '\t')
		ps->p++;
	return (size_t)(ps->p - *w);
}

/* Reads a metric name token into name (PROM_MAX_NAME + 1 bytes), for the
 * HELP or TYPE line what. Returns 0, or -1 with errno EINVAL. */
static int name_token(struct parser *ps, const char *what, char *name)
{
	char show[72];
	const char *w;
	size_t n;

	skip_blank(ps);
	n = word(ps, &w);
	if (n == 0)
		return refuse(ps->err, "%s line without a metric name", what);
	if (!prom_metric_name_ok(w, n))
		return refuse(ps->err, "invalid metric name \"%s\" in %s line", shown(show, sizeof show, w, n), what);
	memcpy(name, w, n);
	name[n] = '\0';
	return 0;
}

/* Returns the family called name, created untyped if new. Returns NULL
 * with errno EINVAL (clash, err filled) or ENOMEM. */
static struct prom_family *family_for(struct parser *ps, const char *name)
{
	struct prom_family *f = prom_family_find(ps->d, name), *g;

	if (f)
		return f;
	g = prom_family_clash(ps->d, name, PROM_UNTYPED);
	if (g) {
		refuse(ps->err, "metric %s collides with %s %s", name, prom_type_name(g->type), g->name);
		return NULL;
	}
	f = prom_family_add(ps->d, name, PROM_UNTYPED);
	if (f)
		f->typed = 0;
	return f;
}

/* Parses the rest of a "# HELP" line. Returns 0, or -1 with errno set. */
static int parse_help(struct parser *ps)
{
	char name[PROM_MAX_NAME + 1];
	struct prom_family *f;
	char c;

	if (name_token(ps, "HELP", name) < 0)
		return -1;
	skip_blank(ps);
	buf_reset(&ps->scratch);
	while (ps->p < ps->e) {
		c = *ps->p++;
		if (c == '\\') {
			if (ps->p == ps->e)
				return refuse(ps->err, "HELP text of %s ends in a lone backslash", name);
			c = *ps->p++;
			if (c == 'n')
				c = '\n';
			else if (c != '\\')
				return refuse(ps->err, "invalid escape sequence \"\\%c\" in HELP text of %s (only \\\\ and \\n)",
					c >= 0x20 && c < 0x7f ? c : '?', name);
		}
		if (buf_putc(&ps->scratch, c) < 0)
			return -1;
	}
	if (ps->scratch.len > PROM_MAX_HELP)
		return refuse(ps->err, "HELP text of %s too long (more than %d bytes)", name, PROM_MAX_HELP);
	if (!prom_utf8_ok(ps->scratch.p, ps->scratch.len))
		return refuse(ps->err, "HELP text of %s is not valid UTF-8", name);
	f = family_for(ps, name);
	if (!f)
		return -1;
	if (f->help)
		return refuse(ps->err, "second HELP line for %s", name);
	return prom_family_set_help(f, ps->scratch.len ? ps->scratch.p : "");
}

/* Parses the rest of a "# TYPE" line. Returns 0, or -1 with errno set. */
static int parse_type(struct parser *ps)
{
	char name[PROM_MAX_NAME + 1], tname[16];
	struct prom_family *f, *g;
	enum prom_type t;
	const char *w;
	size_t n;

	if (name_token(ps, "TYPE", name) < 0)
		return -1;
	skip_blank(ps);
	n = word(ps, &w);
	if (n == 0)
		return refuse(ps->err, "TYPE line for %s without a type", name);
	if (n >= sizeof tname)
		n = sizeof tname - 1;
	memcpy(tname, w, n);
	tname[n] = '\0';
	if (prom_type_parse(tname, &t) < 0)
		return refuse(ps->err, "unknown metric type in TYPE line for %s", name);
	skip_blank(ps);
	if (ps->p != ps->e)
		return refuse(ps->err, "unexpected text after the TYPE line for %s", name);
	f = prom_family_find(ps->d, name);
	if (f && f->typed)
		return refuse(ps->err, "second TYPE line for %s", name);
	if (f && f->n)
		return refuse(ps->err, "TYPE line for %s after its samples", name);
	g = prom_family_clash(ps->d, name, t);
	if (g)
		return refuse(ps->err, "%s %s collides with %s %s", type_names[t], name,
			prom_type_name(g->type), g->name);
	if (!f && !(f = prom_family_add(ps->d, name, t)))
		return -1;
	f->type = t;
	f->typed = 1;
	return 0;
}

/* Finds the family sample name belongs to (a histogram or summary for
 * NAME_bucket, NAME_sum, NAME_count; else the family called name) and its
 * suffix. Returns NULL when there is none. */
static struct prom_family *route(const struct prom_doc *d, const char *name, enum prom_suffix *x)
{
	size_t n = strlen(name), l, i;
	int k;

	for (k = PROM_SFX_BUCKET; k <= PROM_SFX_COUNT; k++) {
		l = strlen(sfx_text[k]);
		if (n <= l || strcmp(name + n - l, sfx_text[k]))
			continue;
		for (i = 0; i < d->n; i++)
			if (strlen(d->f[i].name) == n - l && !strncmp(d->f[i].name, name, n - l) &&
			    emits(d->f[i].type, (enum prom_suffix)k)) {
				*x = (enum prom_suffix)k;
				return &d->f[i];
			}
	}
	*x = PROM_SFX_NONE;
	return prom_family_find(d, name);
}

/* Parses a label set after its '{' into ps->lab. Returns the number of
 * labels, or -1 with errno set. */
static int parse_labels(struct parser *ps)
{
	char show[72];
	size_t nl = 0, i;
	const char *ln, *run;
	char c;

	buf_reset(&ps->scratch);
	for (;;) {
		skip_blank(ps);
		if (ps->p < ps->e && *ps->p == '}') {
			ps->p++;
			break;
		}
		ln = ps->p;
		while (ps->p < ps->e && label_char((unsigned char)*ps->p))
			ps->p++;
		i = (size_t)(ps->p - ln);
		if (i == 0)
			return refuse(ps->err, "expected a label name or '}' in the label set");
		skip_blank(ps);
		if (ps->p == ps->e || *ps->p != '=')
			return refuse(ps->err, "expected '=' after label name %s",
				shown(show, sizeof show, ln, i));
		ps->p++;
		skip_blank(ps);
		if (ps->p == ps->e || *ps->p != '"')
			return refuse(ps->err, "expected '\"' to start the value of label %s",
				shown(show, sizeof show, ln, i));
		ps->p++;
		if (nl == PROM_MAX_LABELS)
			return refuse(ps->err, "too many labels (more than %d)", PROM_MAX_LABELS);
		ps->lab[nl].name = ln;
		ps->lab[nl].name_len = i;
		ps->voff[nl] = ps->scratch.len;
		for (;;) {
			run = ps->p;
			while (ps->p < ps->e && *ps->p != '"' && *ps->p != '\\')
				ps->p++;
			if (buf_put(&ps->scratch, run, (size_t)(ps->p - run)) < 0)
				return -1;
			if (ps->p == ps->e)
				return refuse(ps->err, "unterminated value of label %s",
					shown(show, sizeof show, ln, i));
			c = *ps->p++;
			if (c == '"')
				break;
			if (c == '\\') {
				c = ps->p < ps->e ? *ps->p++ : '\0';
				if (c == 'n')
					c = '\n';
				else if (c != '\\' && c != '"')
					return refuse(ps->err, "invalid escape sequence \"\\%c\" in the value of label %s (only \\\\ \\\" \\n)",
						c >= 0x20 && c < 0x7f ? c : '?', shown(show, sizeof show, ln, i));
			}
			if (buf_putc(&ps->scratch, c) < 0)
				return -1;
		}
		ps->lab[nl].value_len = ps->scratch.len - ps->voff[nl];
		nl++;
		skip_blank(ps);
		if (ps->p < ps->e && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->e && *ps->p == '}') {
			ps->p++;
			break;
		}
		return refuse(ps->err, "expected ',' or '}' after the value of label %s",
			shown(show, sizeof show, ln, i));
	}
	for (i = 0; i < nl; i++)
		ps->lab[i].value = ps->scratch.p ? ps->scratch.p + ps->voff[i] : "";
	return (int)nl;
}

/* Parses a sample line. Returns 0, or -1 with errno set. */
static int parse_sample(struct parser *ps)
{
	char name[PROM_MAX_NAME + 1], text[PROM_MAX_VALUE_TEXT + 1], show[72];
	const char *w = ps->p, *bname = NULL;
	struct prom_family *f;
	struct prom_sample *s;
	enum prom_suffix x;
	double value, bound = 0;
	long long ts = 0;
	int nl = 0, has_ts = 0, want;
	char *end;
	size_t n;

	while (ps->p < ps->e && metric_char((unsigned char)*ps->p))
		ps->p++;
	n = (size_t)(ps->p - w);
	if (n == 0)
		return refuse(ps->err, "expected a metric name, a comment or a blank line");
	if (!prom_metric_name_ok(w, n))
		return refuse(ps->err, "invalid metric name \"%s\"", shown(show, sizeof show, w, n));
	memcpy(name, w, n);
	name[n] = '\0';
	skip_blank(ps);
	if (ps->p < ps->e && *ps->p == '{') {
		ps->p++;
		nl = parse_labels(ps);
		if (nl < 0)
			return -1;
		skip_blank(ps);
	}
	n = word(ps, &w);
	if (n == 0)
		return refuse(ps->err, "sample of %s without a value", name);
	if (n > PROM_MAX_VALUE_TEXT)
		return refuse(ps->err, "invalid value for %s (longer than %d bytes)", name, PROM_MAX_VALUE_TEXT);
	memcpy(text, w, n);
	text[n] = '\0';
	if (prom_parse_value(text, &value) < 0)
		return refuse(ps->err, "invalid value \"%s\" for %s", shown(show, sizeof show, w, n), name);
	skip_blank(ps);
	if (ps->p < ps->e) {
		n = word(ps, &w);
		if (n > PROM_MAX_VALUE_TEXT)
			n = PROM_MAX_VALUE_TEXT;
		memcpy(text, w, n);
		text[n] = '\0';
		errno = 0;
		ts = strtoll(text, &end, 10);
		if (!is_digit(text[text[0] == '-' || text[0] == '+']) || *end || errno)
			return refuse(ps->err, "invalid timestamp \"%s\" for %s", shown(show, sizeof show, w, n), name);
		has_ts = 1;
		skip_blank(ps);
		if (ps->p < ps->e)
			return refuse(ps->err, "unexpected text after the sample of %s", name);
	}
	f = route(ps->d, name, &x);
	if (f && !emits(f->type, x))
		return refuse(ps->err, "sample %s does not belong to histogram %s (want %s_bucket, _sum or _count)",
			name, name, name);
	if (!f && !(f = family_for(ps, name)))
		return -1;
	if (f->type == PROM_HISTOGRAM)
		bname = "le";
	else if (f->type == PROM_SUMMARY)
		bname = "quantile";
	want = (f->type == PROM_HISTOGRAM && x == PROM_SFX_BUCKET) ||
		(f->type == PROM_SUMMARY && x == PROM_SFX_NONE);
	buf_reset(&ps->key);
	if (prom_labels_key(ps->lab, (size_t)nl, bname, want, &bound, &ps->key, ps->err) < 0)
		return -1;
	if (grow((void **)&f->s, &f->cap, f->n, sizeof *f->s) < 0)
		return -1;
	s = &f->s[f->n];
	memset(s, 0, sizeof *s);
	s->key = dup_n(ps->key.p, ps->key.len);
	if (!s->key)
		return -1;
	f->n++;
	s->suffix = x;
	s->has_bound = want;
	s->bound = want ? bound : 0;
	s->value = value;
	s->has_ts = has_ts;
	s->ts = ts;
	s->line = ps->err->line;
	return 0;
}

/* Parses the rest of a "# EXEMPLAR" line into ps->pend. A line that does
 * not parse, or names no bucket of a histogram seen so far, is ignored: it
 * is a comment to every other reader. Returns 0, or -1 with errno ENOMEM. */
static int parse_exemplar(struct parser *ps)
{
	char name[PROM_MAX_NAME + 1], text[PROM_MAX_VALUE_TEXT + 1];
	struct prom_err quiet, *real = ps->err;
	struct buf key = { 0 }, labels = { 0 };
	struct prom_family *f;
	struct pending *pd;
	enum prom_suffix x;
	double bound = 0, value, ts = 0;
	const char *w = ps->p;
	int nl, has_ts = 0, rc = 0;
	size_t n;

	ps->err = &quiet;
	quiet.line = real->line;
	skip_blank(ps);
	w = ps->p;
	while (ps->p < ps->e && metric_char((unsigned char)*ps->p))
		ps->p++;
	n = (size_t)(ps->p - w);
	if (n == 0 || n > PROM_MAX_NAME || ps->p == ps->e || *ps->p != '{')
		goto out;
	memcpy(name, w, n);
	name[n] = '\0';
	f = route(ps->d, name, &x);
	if (!f || f->type != PROM_HISTOGRAM || x != PROM_SFX_BUCKET)
		goto out;
	ps->p++;
	if ((nl = parse_labels(ps)) < 0 ||
	    prom_labels_key(ps->lab, (size_t)nl, "le", 1, &bound, &key, &quiet) < 0)
		goto check;
	skip_blank(ps);
	if (ps->p == ps->e || *ps->p != '{')
		goto out;
	ps->p++;
	if ((nl = parse_labels(ps)) < 0 ||
	    prom_exemplar_labels(ps->lab, (size_t)nl, &labels, &quiet) < 0)
		goto check;
	skip_blank(ps);
	n = word(ps, &w);
	if (n == 0 || n > PROM_MAX_VALUE_TEXT)
		goto out;
	memcpy(text, w, n);
	text[n] = '\0';
	if (prom_parse_value(text, &value) < 0)
		goto out;
	skip_blank(ps);
	if (ps->p < ps->e) {
		n = word(ps, &w);
		if (n > PROM_MAX_VALUE_TEXT)
			goto out;
		memcpy(text, w, n);
		text[n] = '\0';
		if (prom_parse_value(text, &ts) < 0 || !isfinite(ts))
			goto out;
		has_ts = 1;
		skip_blank(ps);
		if (ps->p < ps->e)
			goto out;
	}
	if (grow((void **)&ps->pend, &ps->cappend, ps->npend, sizeof *ps->pend) < 0)
		goto nomem;
	pd = &ps->pend[ps->npend];
	memset(pd, 0, sizeof *pd);
	pd->key = dup_n(key.p, key.len);
	pd->ex.labels = dup_n(labels.p ? labels.p : "", labels.len);
	if (!pd->key || !pd->ex.labels) {
		free(pd->key);
		free(pd->ex.labels);
		goto nomem;
	}
	pd->fam = (size_t)(f - ps->d->f);
	pd->bound = bound;
	pd->ex.value = value;
	pd->ex.has_ts = has_ts;
	pd->ex.ts = ts;
	ps->npend++;
	goto out;
check:
	if (errno != ENOMEM)
		goto out;
nomem:
	errno = ENOMEM;
	rc = -1;
out:
	ps->err = real;
	buf_free(&key);
	buf_free(&labels);
	return rc;
}

/* Gives each pending exemplar to its bucket (the last one wins; one whose
 * bucket is not in the document is dropped) and frees the list. Returns
 * 0, or -1 with errno ENOMEM. */
static int attach_exemplars(struct parser *ps, int keep)
{
	struct prom_sample *s;
	struct pending *pd;
	size_t i;
	int rc = 0;

	for (i = 0; i < ps->npend; i++) {
		pd = &ps->pend[i];
		s = keep && rc == 0 ? prom_sample_get(&ps->d->f[pd->fam], pd->key, PROM_SFX_BUCKET,
			1, pd->bound, 0) : NULL;
		if (s && prom_exemplar_set(s, pd->ex.labels, pd->ex.value, pd->ex.has_ts,
		    pd->ex.ts) < 0)
			rc = -1;
		free(pd->key);
		free(pd->ex.labels);
	}
	free(ps->pend);
	ps->pend = NULL;
	ps->npend = ps->cappend = 0;
	return rc;
}

/* Parses the current line. Returns 0, or -1 with errno set. */
static int parse_line(struct parser *ps)
{
	const char *w;
	size_t n;

	if (memchr(ps->p, '\0', (size_t)(ps->e - ps->p)))
		return refuse(ps->err, "NUL byte");
	skip_blank(ps);
	if (ps->p == ps->e)
		return 0;
	if (*ps->p != '#')
		return parse_sample(ps);
	ps->p++;
	skip_blank(ps);
	n = word(ps, &w);
	if (n == 4 && !memcmp(w, "HELP", 4))
		return parse_help(ps);
	if (n == 4 && !memcmp(w, "TYPE", 4))
		return parse_type(ps);
	if (n == 8 && !memcmp(w, "EXEMPLAR", 8))
		return parse_exemplar(ps);
	return 0;
}

/* Sorts every family's samples and refuses duplicates. Returns 0, or -1
 * with errno EINVAL. */
static int sort_check(struct parser *ps)
{
	struct prom_family *f;
	struct prom_sample *a, *b;
	size_t i, j;

	for (i = 0; i < ps->d->n; i++) {
		f = &ps->d->f[i];
		for (j = 1; j < f->n && sample_qcmp(&f->s[j - 1], &f->s[j]) < 0; j++)
			;
		if (j < f->n) /* not already sorted (files tally writes are) */
			qsort(f->s, f->n, sizeof *f->s, sample_qcmp);
		for (j = 1; j < f->n; j++) {
			a = &f->s[j - 1];
			b = &f->s[j];
			if (sample_qcmp(a, b))
				continue;
			ps->err->line = a->line > b->line ? a->line : b->line;
			return refuse(ps->err, "duplicate sample %s%s{%s} (also on line %zu)",
				f->name, sfx_text[a->suffix], a->key,
				a->line > b->line ? b->line : a->line);
		}
	}
	return 0;
}

int prom_parse(struct prom_doc *d, const char *text, size_t n, struct prom_err *err)
{
	struct parser *ps;
	const char *end = text + n, *nl;
	int rc = 0, saved;

	err->line = 0;
	err->msg[0] = '\0';
	ps = calloc(1, sizeof *ps);
	if (!ps) {
		errno = ENOMEM;
		snprintf(err->msg, sizeof err->msg, "out of memory");
		return -1;
	}
	ps->d = d;
	ps->err = err;
	while (text < end) {
		nl = memchr(text, '\n', (size_t)(end - text));
		ps->p = text;
		ps->e = nl ? nl : end;
		err->line++;
		rc = parse_line(ps);
		if (rc < 0)
			break;
		text = nl ? nl + 1 : end;
	}
	if (rc == 0)
		rc = sort_check(ps);
	if (attach_exemplars(ps, rc == 0) < 0 && rc == 0) {
		rc = -1;
		errno = ENOMEM;
	}
	saved = errno;
	buf_free(&ps->scratch);
	buf_free(&ps->key);
	free(ps);
	if (rc < 0) {
		if (saved == ENOMEM)
			snprintf(err->msg, sizeof err->msg, "out of memory");
		prom_doc_free(d);
		errno = saved;
		return -1;
	}
	err->line = 0;
	return 0;
}

/* ---- exemplars ------------------------------------------------------------ */

int prom_exemplar_labels(struct prom_label *l, size_t n, struct buf *out, struct prom_err *err)
{
	double unused;
	size_t i, j, runes = 0;

	err->msg[0] = '\0';
	for (i = 0; i < n; i++) {
		runes += l[i].name_len;
		for (j = 0; j < l[i].value_len; j++)
			runes += ((unsigned char)l[i].value[j] & 0xC0) != 0x80;
	}
	if (runes > PROM_MAX_EXEMPLAR_RUNES)
		return refuse(err, "exemplar labels too long (more than %d characters of names and values)",
			PROM_MAX_EXEMPLAR_RUNES);
	return prom_labels_key(l, n, NULL, 0, &unused, out, err);
}

int prom_exemplar_set(struct prom_sample *s, const char *labels, double value, int has_ts,
	double ts)
{
	struct prom_exemplar *ex = calloc(1, sizeof *ex);

	if (!ex || !(ex->labels = dup_n(labels, strlen(labels)))) {
		free(ex);
		errno = ENOMEM;
		return -1;
	}
	ex->value = value;
	ex->has_ts = has_ts;
	ex->ts = has_ts ? ts : 0;
	exemplar_free(s->ex);
	s->ex = ex;
	return 0;
}

int prom_exemplar_put_openmetrics(struct buf *out, const struct prom_exemplar *ex)
{
	char v[PROM_VALUE_BUFSZ];

	prom_format_value(ex->value, v);
	if (buf_printf(out, " # {%s} %s", ex->labels, v) < 0)
		return -1;
	if (!ex->has_ts)
		return 0;
	prom_format_value(ex->ts, v);
	return buf_printf(out, " %s", v);
}

/* Appends the "# EXEMPLAR" comment line of bucket s of family f. Returns
 * 0, or -1 with errno ENOMEM. */
static int put_exemplar_comment(struct buf *out, const struct prom_family *f,
	const struct prom_sample *s)
{
	char b[PROM_VALUE_BUFSZ], v[PROM_VALUE_BUFSZ];

	prom_format_value(s->bound, b);
	prom_format_value(s->ex->value, v);
	if (buf_printf(out, "# EXEMPLAR %s_bucket{%s%sle=\"%s\"} {%s} %s", f->name, s->key,
	    *s->key ? "," : "", b, s->ex->labels, v) < 0)
		return -1;
	if (s->ex->has_ts) {
		prom_format_value(s->ex->ts, v);
		if (buf_printf(out, " %s", v) < 0)
			return -1;
	}
	return buf_putc(out, '\n');
}

/* ---- the serializer ---------------------------------------------------------- */

int prom_serialize(const struct prom_doc *d, struct buf *out)
{
	const struct prom_family *f;
	const struct prom_sample *s;
	char v[PROM_VALUE_BUFSZ];
	size_t i, j;

	if (buf_put(out, "", 0) < 0) /* NUL-terminated even when empty */
		return -1;
	for (i = 0; i < d->n; i++) {
		f = &d->f[i];
		if (f->help) {
			if (buf_printf(out, "# HELP %s", f->name) < 0)
				return -1;
			if (*f->help && (buf_putc(out, ' ') < 0 ||
			    prom_escape_help(out, f->help, strlen(f->help)) < 0))
				return -1;
			if (buf_putc(out, '\n') < 0)
				return -1;
		}
		if (f->typed && buf_printf(out, "# TYPE %s %s\n", f->name, prom_type_name(f->type)) < 0)
			return -1;
		for (j = 0; j < f->n; j++) {
			s = &f->s[j];
			if (buf_puts(out, f->name) < 0 || buf_puts(out, sfx_text[s->suffix]) < 0)
				return -1;
			if (*s->key || s->has_bound) {
				if (buf_putc(out, '{') < 0 || buf_puts(out, s->key) < 0)
					return -1;
				if (s->has_bound) {
					prom_format_value(s->bound, v);
					if ((*s->key && buf_putc(out, ',') < 0) ||
					    buf_puts(out, f->type == PROM_HISTOGRAM ? "le=\"" : "quantile=\"") < 0 ||
					    buf_puts(out, v) < 0 || buf_putc(out, '"') < 0)
						return -1;
				}
				if (buf_putc(out, '}') < 0)
					return -1;
			}
			prom_format_value(s->value, v);
			if (buf_putc(out, ' ') < 0 || buf_puts(out, v) < 0)
				return -1;
			if (s->has_ts && buf_printf(out, " %lld", s->ts) < 0)
				return -1;
			if (buf_putc(out, '\n') < 0)
				return -1;
			if (s->ex && s->suffix == PROM_SFX_BUCKET && put_exemplar_comment(out, f, s) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- checks on the model ------------------------------------------------------ */

int prom_histogram_check(const struct prom_family *f, struct prom_err *err)
{
	const struct prom_sample *s, *inf, *sum, *cnt;
	char le[PROM_VALUE_BUFSZ];
	size_t i = 0, j;
	double prev;

	if (f->type != PROM_HISTOGRAM)
		return 0;
	while (i < f->n) {
		/* Samples are sorted: one series' buckets by bound, then _sum, _count. */
		inf = sum = cnt = NULL;
		prev = 0;
		for (j = i; j < f->n && !strcmp(f->s[j].key, f->s[i].key); j++) {
			s = &f->s[j];
			if (s->suffix == PROM_SFX_BUCKET) {
				if (!(s->value >= prev) || s->value != s->value) {
					err->line = s->line;
					prom_format_value(s->bound, le);
					return refuse(err, "histogram %s{%s}: bucket le=\"%s\" holds less than the bucket before it (buckets are cumulative)",
						f->name, s->key, le);
				}
				prev = s->value;
				if (s->bound == HUGE_VAL)
					inf = s;
			} else if (s->suffix == PROM_SFX_SUM) {
				sum = s;
			} else if (s->suffix == PROM_SFX_COUNT) {
				cnt = s;
			}
		}
		s = &f->s[j - 1];
		err->line = s->line;
		if (!inf)
			return refuse(err, "histogram %s{%s} has no le=\"+Inf\" bucket", f->name, s->key);
		if (!sum || !cnt)
			return refuse(err, "histogram %s{%s} has no %s_%s sample", f->name, s->key,
				f->name, sum ? "count" : "sum");
		if (cnt->value != inf->value) {
			err->line = cnt->line > inf->line ? cnt->line : inf->line;
			return refuse(err, "histogram %s{%s}: %s_count differs from its le=\"+Inf\" bucket",
				f->name, s->key, f->name);
		}
		i = j;
	}
	return 0;
}
