/* textfile.h: included by tally.h; declarations with one-line contracts.
 *
 * textfile.c: the textfile-collector semantics of tally-httpd. It lists the
 * *.prom files of a directory, re-reads and re-parses (prom_parse) only the
 * files whose stat changed, and merges the valid ones, in byte order of
 * their names, into one document by these rules (docs/reference/
 * tally-httpd.md, "Merging"):
 *
 * - a file that does not parse, cannot be read, is too large or keeps
 *   changing while read is left out whole (scrape error 1);
 * - a file read with a last line that has no newline, changed less than
 *   TF_SETTLE_MS ago, of which a version of the same inode is held, is
 *   taken to be caught in the middle of a write: that version stays (and
 *   the file is read again at the next listing);
 * - a family's TYPE (no TYPE line: untyped) is set by the first file that
 *   has the family; a later file's family of another TYPE is left out
 *   ("type"); one whose sample names would collide with another family's
 *   (histogram x and gauge x_count) is left out ("clash"); one named like a
 *   built-in family is left out ("reserved");
 * - the first HELP wins; a later, different HELP is counted ("help");
 * - a family's label names are set by its first series; a series with other
 *   label names is left out ("labels");
 * - a series (family and labels, all its buckets, _sum and _count) already
 *   given by an earlier file is left out ("duplicate");
 * - timestamps are dropped: every sample is served as of the scrape
 *   ("timestamp" counts them);
 * - a family that promtool check metrics would refuse by its lint rules
 *   (counter without _total, _total/_count/_sum/_bucket on other types,
 *   the type or an abbreviated or non-base unit in the name, ':' or
 *   camelCase) is left out, and so is a series with an le or quantile
 *   label outside a histogram or summary or a camelCase label name
 *   ("lint"); a family without HELP gets "Metric read from FILE.".
 *
 * The result is serialized once per change as text format 0.0.4 and, when
 * it can be expressed exactly, as OpenMetrics 1.0 (without "# EOF"), with
 * the per-file gauges tally_textfile_mtime_seconds,
 * tally_textfile_scrape_error and tally_textfile_conflicts. */
#ifndef TALLY_TEXTFILE_H
#define TALLY_TEXTFILE_H

#include <stddef.h>

#include "prom.h"
#include "gzip.h" /* until tally.h includes it itself */

struct buf;

#define TF_MAX_FILES 4096          /* *.prom files merged; more are left out, counted in skipped */
#define TF_MAX_TOTAL (32u << 20)   /* bytes of all files together; a file past it gets scrape error 1 */
#define TF_MAX_READ_TRIES 3        /* reads of a file that changes while read; then scrape error 1 */
#define TF_SETTLE_MS 1000          /* a last line without newline younger than this is unfinished */
#define TF_ERR_LEN 300             /* bytes kept of a file's error message */
#define TF_MAX_DIRS 8              /* directories merged by textfile_refresh_dirs() */

/* Kinds of merge conflict, counted per file (tally_textfile_conflicts{kind}). */
enum tf_conflict {
	TF_DUPLICATE, /* series given by an earlier file */
	TF_HELP,      /* HELP differs from an earlier file's */
	TF_TYPE,      /* TYPE differs from an earlier file's */
	TF_LABELS,    /* series with other label names than the family's first */
	TF_CLASH,     /* sample names collide with another family's */
	TF_RESERVED,  /* family named like a built-in family */
	TF_TIMESTAMP, /* sample timestamp dropped */
	TF_LINT,      /* family or series that promtool check metrics would refuse */
	TF_NCONFLICT
};

/* A built-in family that textfiles may not define: its name and type. */
struct tf_reserved {
	const char *name;
	enum prom_type type;
};

/* One *.prom file as last read. */
struct tf_file {
	char *name;
	size_t dir;                      /* index of its directory in textfile_refresh_dirs() */
	unsigned long long dev, ino;     /* stat key: a change in any field means re-read */
	long long size, mtime_ns, ctime_ns;
	int error;                       /* 1: left out whole; err says why */
	char err[TF_ERR_LEN];
	struct prom_doc doc;             /* parsed content when !error */
	unsigned long conflicts[TF_NCONFLICT];
};

/* The cache of one directory. Zero it, then textfile_init(). */
struct textfile {
	struct tf_file *f;               /* sorted by name (strcmp) */
	size_t n, cap;
	size_t skipped;                  /* *.prom files past TF_MAX_FILES */
	const struct tf_reserved *res;   /* built-in families served elsewhere */
	size_t nres;
	struct buf text;                 /* the merged body, text format 0.0.4 */
	struct buf om;                   /* the same in OpenMetrics 1.0 without "# EOF" */
	int om_ok;                       /* 1 when om holds an exact rendering */
	unsigned long long generation;   /* incremented by every rebuild */
	unsigned long long parses;       /* files parsed, ever */
	struct buf scratch;              /* file bytes being parsed */
	void *list;                      /* internal: the last directory listing */
	size_t list_cap;
	struct buf names;                /* internal: names of that listing */
	const char *const *dirs;         /* the directories of the last refresh (file labels) */
	size_t ndirs;
	const char *dirs_one[1];         /* internal: textfile_refresh()'s one directory */
};

/* Returns the name of conflict kind k ("duplicate", ...). */
const char *textfile_conflict_name(enum tf_conflict k);
/* Prepares t (zeroed) to serve reserved families res[0..n) itself; res
 * must outlive t. */
void textfile_init(struct textfile *t, const struct tf_reserved *res, size_t n);
/* Frees everything t holds; t may be initialised again. */
void textfile_free(struct textfile *t);
/* Brings t up to date with directory dir: lists its regular, non-hidden
 * *.prom files, re-reads those whose stat changed and rebuilds text and om
 * when anything changed. Sets *changed to 1 when it rebuilt, else 0.
 * Returns 0, or -1 with errno set when dir cannot be listed (t keeps its
 * last content) or ENOMEM. */
int textfile_refresh(struct textfile *t, const char *dir, int *changed);
/* Like textfile_refresh() over dirs[0..n) (1 <= n <= TF_MAX_DIRS), merged
 * in that order: a file of an earlier directory comes first in the merge
 * rule, whatever its name. errs[i] is set to 0, or to the errno of a
 * directory that cannot be listed (its files stay as last read). dirs must
 * outlive t's use of them (the file label of dirs[i > 0] is DIR/NAME).
 * Returns 0 when at least one directory was listed, or -1 with errno set
 * (EINVAL for a bad n; ENOMEM; else the first directory's errno). */
int textfile_refresh_dirs(struct textfile *t, const char *const *dirs, size_t n,
	int *changed, int *errs);
/* Replaces (or adds) the file called name in t with text[0..n), parsed
 * now; used by textfile_refresh() and by tests. Returns 0 (a parse error
 * only marks the file), or -1 with errno ENOMEM. */
int textfile_put(struct textfile *t, const char *name, const char *text, size_t n);
/* Marks the file called name in t as unreadable with message msg (added
 * when absent). Returns 0, or -1 with errno ENOMEM. */
int textfile_put_error(struct textfile *t, const char *name, const char *msg);
/* Merges t's files and rebuilds text, om and om_ok. Returns 0, or -1 with
 * errno ENOMEM (t then serves empty bodies until the next rebuild). */
int textfile_build(struct textfile *t);
/* Returns t's file called name (of the first directory), or NULL. */
struct tf_file *textfile_find(const struct textfile *t, const char *name);
/* Returns t's file called name of directory index dir, or NULL. */
struct tf_file *textfile_find_in(const struct textfile *t, size_t dir, const char *name);
/* Appends d as OpenMetrics 1.0 text (no "# EOF") when every family can be
 * expressed exactly (counters named *_total with values >= 0, histograms
 * with a +Inf bucket and a matching _count, no names ending in a reserved
 * suffix, family names unique). Returns 1 when written, 0 when d cannot be
 * expressed (out unchanged), -1 with errno ENOMEM. */
int textfile_openmetrics(const struct prom_doc *d, struct buf *out);
/* Appends the text-format HELP and TYPE lines of a family (OpenMetrics:
 * TYPE then HELP, counters named without _total) for om 0 or 1. Returns 0,
 * or -1 with errno ENOMEM. */
int textfile_put_meta(struct buf *out, int om, const char *name, enum prom_type t,
	const char *help);

#endif
