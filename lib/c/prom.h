/* prom.h: included by tally.h; declarations with one-line contracts.
 *
 * prom.c: the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): name
 * checks, escaping with byte tables, value formatting and parsing in the C
 * locale, and a small in-memory model of families and samples that parses
 * and serializes whole files. No I/O; errors come back, nothing is printed.
 *
 * atomic.c: the file mechanics of a metrics writer: an exclusive lock on a
 * sibling lock file, a capped whole-file read, and atomic replacement
 * through a temporary sibling file and rename(2) (or, under the lock,
 * renameat2(RENAME_EXCHANGE) and unlink). No sibling name ends in ".prom",
 * so a reader globbing *.prom never sees them. */
#ifndef TALLY_PROM_H
#define TALLY_PROM_H

#include <stddef.h>

struct buf;

/* ---- caps: each produces the error named next to it ------------------- */
#define PROM_MAX_FILE (16u << 20) /* bytes of a file read; else "file too large" (EFBIG) */
#define PROM_MAX_NAME 1024        /* bytes of a metric or label name; else "name too long" */
#define PROM_MAX_LABELS 64        /* labels on one sample; else "too many labels" */
#define PROM_MAX_LABEL_VALUE 4096 /* bytes of a label value (unescaped); else "label value too long" */
#define PROM_MAX_HELP 4096        /* bytes of HELP text (unescaped); else "HELP text too long" */
#define PROM_MAX_VALUE_TEXT 64    /* bytes of a sample value as text; else "invalid value" */
#define PROM_VALUE_BUFSZ 40       /* room prom_format_value() needs, NUL included */
#define PROM_MAX_EXEMPLAR_RUNES 128 /* UTF-8 characters of an exemplar's label names and
                                     * values together (OpenMetrics); else "exemplar labels too long" */

/* ---- names, escaping, values ---------------------------------------------- */

/* Returns 1 when s[0..n) matches [a-zA-Z_:][a-zA-Z0-9_:]* and n <= PROM_MAX_NAME, else 0. */
int prom_metric_name_ok(const char *s, size_t n);
/* Returns 1 when s[0..n) matches [a-zA-Z_][a-zA-Z0-9_]*, does not start
 * with "__" (reserved) and n <= PROM_MAX_NAME, else 0. */
int prom_label_name_ok(const char *s, size_t n);
/* Returns 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates
 * or code points above U+10FFFF; NUL allowed), else 0. */
int prom_utf8_ok(const char *s, size_t n);
/* Appends s[0..n) escaped as a label value: \ -> \\, " -> \", newline ->
 * \n, every other byte unchanged. Returns 0, or -1 with errno ENOMEM. */
int prom_escape_label(struct buf *b, const char *s, size_t n);
/* Appends s[0..n) escaped as HELP text: \ -> \\, newline -> \n, every
 * other byte unchanged. Returns 0, or -1 with errno ENOMEM. */
int prom_escape_help(struct buf *b, const char *s, size_t n);
/* Writes v into out as the shortest text that strtod() reads back to the
 * same bits: NaN, +Inf, -Inf; integers below 1e21 in plain digits ("-0"
 * for negative zero); otherwise the shortest %.Ng, N = 1..17. */
void prom_format_value(double v, char out[PROM_VALUE_BUFSZ]);
/* Parses the NUL-terminated s as a sample value: a decimal float
 * [+-]?(D+[.D*]|.D+)([eE][+-]?D+)?, or NaN, [+-]Inf, [+-]Infinity (any
 * case); no spaces, no hex. Returns 0, or -1 with errno EINVAL (syntax)
 * or ERANGE (overflow). */
int prom_parse_value(const char *s, double *v);

/* ---- the model -------------------------------------------------------------- */

/* Metric types of the TYPE line. */
enum prom_type { PROM_UNTYPED, PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_SUMMARY };

/* Which sample of a family: NAME, NAME_bucket, NAME_sum, NAME_count. */
enum prom_suffix { PROM_SFX_NONE, PROM_SFX_BUCKET, PROM_SFX_SUM, PROM_SFX_COUNT };

/* One label as given (not NUL-terminated, value unescaped). */
struct prom_label {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* The exemplar of a histogram bucket (OpenMetrics 1.0, "Exemplars"): its
 * labels sorted by name, escaped, without braces (trace_id="4bf9..."), the
 * observed value and, when has_ts, the observation's Unix time in seconds.
 * In a text-format (0.0.4) file it is kept as a comment line right after
 * its bucket, which every 0.0.4 reader ignores (docs/reference/metrics.md,
 * "Exemplars"):
 *   # EXEMPLAR NAME_bucket{LABELS,le="B"} {EXEMPLAR_LABELS} VALUE [TIMESTAMP] */
struct prom_exemplar {
	char *labels;
	double value;
	int has_ts;
	double ts;
};

/* One sample line. key is the series' labels sorted by name, escaped,
 * without braces and without the le (histogram bucket) or quantile
 * (summary) label, e.g. a="x",b="y\"z" or "" for none; that label's value
 * is bound. */
struct prom_sample {
	char *key;
	enum prom_suffix suffix;
	int has_bound;
	double bound;
	double value;
	int has_ts;        /* 1 when a timestamp followed the value */
	long long ts;      /* milliseconds since the epoch */
	size_t line;       /* line it was parsed from, 0 if added */
	struct prom_exemplar *ex; /* a bucket's exemplar (owned), NULL when none */
};

/* One metric family: its HELP, TYPE and samples, kept sorted by
 * (key, suffix: bucket/plain < _sum < _count, bound). */
struct prom_family {
	char *name;
	char *help;            /* unescaped; NULL when there is no HELP line */
	enum prom_type type;
	int typed;             /* 1 when a TYPE line is to be written */
	struct prom_sample *s;
	size_t n, cap;
};

/* A whole file: families in the order they first appeared. A zeroed
 * struct prom_doc is a valid empty document. */
struct prom_doc {
	struct prom_family *f;
	size_t n, cap;
};

/* Why prom_parse() or prom_labels_key() refused its input. */
struct prom_err {
	size_t line;       /* 1-based line of the error; 0 when not from a file */
	char msg[256];
};

/* Returns the TYPE keyword of t ("counter", ...). */
const char *prom_type_name(enum prom_type t);
/* Sets *t from a TYPE keyword (any case). Returns 0, or -1 if unknown. */
int prom_type_parse(const char *s, enum prom_type *t);

/* Frees everything d holds and leaves it empty. */
void prom_doc_free(struct prom_doc *d);
/* Parses text[0..n) into the empty d. Returns 0; or -1 with errno EINVAL
 * and err filled (line and message) when the text is not valid exposition
 * format or breaks a cap; or -1 with errno ENOMEM. d holds nothing
 * after a failure. */
int prom_parse(struct prom_doc *d, const char *text, size_t n, struct prom_err *err);
/* Appends d in text format: per family HELP (if any), TYPE (if typed),
 * then its samples, labels by name with le/quantile last, values by
 * prom_format_value(). out->p is non-NULL afterwards even when nothing
 * was appended. Returns 0, or -1 with errno ENOMEM. */
int prom_serialize(const struct prom_doc *d, struct buf *out);

/* Returns the family named exactly name, or NULL. */
struct prom_family *prom_family_find(const struct prom_doc *d, const char *name);
/* Returns a family other than one named name whose sample names would
 * collide with those of a family (name, t) (e.g. histogram x and gauge
 * x_count), or NULL when there is none. */
struct prom_family *prom_family_clash(const struct prom_doc *d, const char *name, enum prom_type t);
/* Appends an empty family (no HELP, typed with t). Returns it, or NULL
 * with errno ENOMEM. Pointers to families are invalidated. */
struct prom_family *prom_family_add(struct prom_doc *d, const char *name, enum prom_type t);
/* Removes family f from d, freeing it. */
void prom_family_remove(struct prom_doc *d, struct prom_family *f);
/* Sets f's HELP to a copy of s. Returns 0, or -1 with errno ENOMEM. */
int prom_family_set_help(struct prom_family *f, const char *s);

/* Checks labels l[0..n) (names valid and unique, values UTF-8 and within
 * caps), sorts them by name and appends the key to key. The label called
 * bound_name (NULL: none) is taken out: *bound gets its value; it must be
 * present and a valid value when want_bound, absent otherwise.
 * Returns 0, or -1 with errno EINVAL and err->msg filled, or ENOMEM. */
int prom_labels_key(struct prom_label *l, size_t n, const char *bound_name, int want_bound,
	double *bound, struct buf *key, struct prom_err *err);
/* Returns the sample of f at (key, suffix, bound); if there is none and
 * create is set, inserts one with value 0 in sorted place. Returns NULL
 * with errno ENOENT (not found) or ENOMEM. Sample pointers of f are
 * invalidated by an insertion. */
struct prom_sample *prom_sample_get(struct prom_family *f, const char *key,
	enum prom_suffix suffix, int has_bound, double bound, int create);
/* Removes every sample of f whose key is key. Returns how many. */
size_t prom_series_remove(struct prom_family *f, const char *key);

/* Checks exemplar labels l[0..n) (names valid and unique, values UTF-8,
 * names and values together at most PROM_MAX_EXEMPLAR_RUNES characters, at
 * least one label), sorts them by name and appends them escaped, without
 * braces, to out. Returns 0, or -1 with errno EINVAL and err->msg filled,
 * or ENOMEM. */
int prom_exemplar_labels(struct prom_label *l, size_t n, struct buf *out, struct prom_err *err);
/* Sets the exemplar of s (a histogram bucket) to a copy of labels (as
 * prom_exemplar_labels() writes them), value and, when has_ts, ts
 * (seconds), replacing any. Returns 0, or -1 with errno ENOMEM (s
 * unchanged). */
int prom_exemplar_set(struct prom_sample *s, const char *labels, double value, int has_ts,
	double ts);
/* Appends the OpenMetrics exemplar of a bucket line, to go between its
 * value and its newline: " # {LABELS} VALUE[ TIMESTAMP]". Returns 0, or
 * -1 with errno ENOMEM. */
int prom_exemplar_put_openmetrics(struct buf *out, const struct prom_exemplar *ex);

/* Checks every series of histogram f (other types pass): buckets
 * cumulative (counts never decreasing with le), a le="+Inf" bucket, a
 * _sum and a _count equal to the +Inf bucket. Returns 0, or -1 with errno
 * EINVAL and err filled (line: an offending sample's line, 0 if added). */
int prom_histogram_check(const struct prom_family *f, struct prom_err *err);

/* ---- atomic.c ------------------------------------------------------------ */

/* Opens (creating, mode 0644 less umask) the lock file ".BASE.lock" beside
 * path and takes an exclusive flock(2) on it, waiting as needed. Returns
 * the fd (close it to release), or -1 with errno set. */
int lock_open(const char *path);
/* Reads the whole file at path into out (replacing its content). Returns
 * 0, or -1 with errno set: ENOENT when it does not exist, EFBIG when it
 * is larger than max bytes. */
int file_read_all(const char *path, size_t max, struct buf *out);
/* Replaces path with data[0..n): writes a temporary ".BASE.tmp.XXXXXX" in
 * the same directory in one write, mode 0644 whatever the umask, fsyncs
 * it when sync, renames it over path, then fsyncs the directory when
 * sync. Returns 0, or -1 with errno set; on failure the temporary file
 * is gone and path unchanged (unless only the directory fsync failed). */
int atomic_replace(const char *path, const char *data, size_t n, int sync);
/* Like atomic_replace(), for a caller that holds lock_open(path): the
 * temporary file is ".BASE.tmp" (one left by a killed writer is removed
 * first), written in one write of its final size, mode 0644 whatever the
 * umask, and swapped with path by renameat2(RENAME_EXCHANGE) and then
 * unlinked, so that ext4 does not flush the new data at the rename (plain
 * rename(2) when path is new or the swap is not supported). Returns 0, or
 * -1 with errno set; on failure the temporary file is gone and path
 * unchanged (unless only the directory fsync failed). */
int atomic_replace_locked(const char *path, const char *data, size_t n, int sync);

#endif
