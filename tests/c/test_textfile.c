/* test_textfile.c: unit tests of lib/c/textfile.c (the merge rules, the
 * OpenMetrics rendering, the stat-based cache) and lib/c/gzip.c (output
 * checked by the real gzip -d). */
#include "../../lib/c/textfile.c"

#include <sys/stat.h>
#include <time.h>

#include "check.h"

static const struct tf_reserved res[] = {
	{ "builtin_total", PROM_COUNTER },
	{ "builtin_level", PROM_GAUGE },
};

/* Returns the text of t with the per-file families left out. */
static const char *body_of(struct buf *b)
{
	return b->p ? b->p : "";
}

/* Builds t from n (name, text) pairs. */
static void build(struct textfile *t, const char *const *files, size_t n)
{
	size_t i;

	textfile_free(t);
	textfile_init(t, res, 2);
	for (i = 0; i < n; i++)
		textfile_put(t, files[2 * i], files[2 * i + 1], strlen(files[2 * i + 1]));
	CHECK(textfile_build(t) == 0, "build");
}

/* Returns the merged text of files without the per-file families. */
static const char *merged(struct textfile *t, const char *const *files, size_t n)
{
	static struct buf out;
	const char *p;

	build(t, files, n);
	buf_reset(&out);
	buf_put(&out, "", 0);
	for (p = body_of(&t->text); *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);

		if (!strstr(p, "tally_textfile_") || (size_t)(strstr(p, "tally_textfile_") - p) > len)
			buf_put(&out, p, len);
		p += len;
	}
	return out.p;
}

/* Returns conflicts of kind k counted for file name of t. */
static unsigned long conflicts(struct textfile *t, const char *name, enum tf_conflict k)
{
	struct tf_file *f = textfile_find(t, name);

	return f ? f->conflicts[k] : 999;
}

static void test_merge_rules(void)
{
	struct textfile t;
	const char *got;

	memset(&t, 0, sizeof t);
	{
		const char *f[] = {
			"a.prom", "# HELP x X.\n# TYPE x gauge\nx{f=\"a\"} 1\n",
			"b.prom", "# HELP x X.\n# TYPE x gauge\nx{f=\"b\"} 2\n",
		};
		got = merged(&t, f, 2);
		CHECK(!strcmp(got, "# HELP x X.\n# TYPE x gauge\nx{f=\"a\"} 1\nx{f=\"b\"} 2\n"),
		      "series of two files merge into one family: '%s'", got);
	}
	{
		const char *f[] = {
			"b.prom", "# TYPE x gauge\nx{f=\"a\"} 2\nx{f=\"c\"} 3\n",
			"a.prom", "# TYPE x gauge\nx{f=\"a\"} 1\n",
		};
		got = merged(&t, f, 2);
		CHECK(!strcmp(got, "# HELP x Metric read from a.prom.\n# TYPE x gauge\nx{f=\"a\"} 1\nx{f=\"c\"} 3\n"),
		      "a duplicate series: the file first in byte order wins: '%s'", got);
		CHECK(conflicts(&t, "b.prom", TF_DUPLICATE) == 1 &&
		      conflicts(&t, "a.prom", TF_DUPLICATE) == 0, "duplicate counted for b.prom");
	}
	{
		const char *f[] = {
			"a.prom", "# HELP x First.\n# TYPE x gauge\nx 1\n",
			"b.prom", "# HELP x Second.\n# TYPE x gauge\nx{k=\"v\"} 2\n",
			"c.prom", "# TYPE x untyped\nx{k=\"w\"} 3\n",
		};
		got = merged(&t, f, 3);
		CHECK(!strcmp(got, "# HELP x First.\n# TYPE x gauge\nx 1\n"),
		      "first HELP wins, other label names and other TYPE left out: '%s'", got);
		CHECK(conflicts(&t, "b.prom", TF_HELP) == 1 && conflicts(&t, "b.prom", TF_LABELS) == 1 &&
		      conflicts(&t, "c.prom", TF_TYPE) == 1, "help, labels and type counted");
	}
	{
		const char *f[] = {
			"a.prom", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
			"b.prom", "h_count 5\n# TYPE builtin_total counter\nbuiltin_total 1\n",
			"c.prom", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 9\nh_count 9\nh_sum 9\n",
		};
		got = merged(&t, f, 3);
		CHECK(!strcmp(got, "# HELP h Metric read from a.prom.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
		      "clash, reserved name and duplicate histogram series left out whole: '%s'", got);
		CHECK(conflicts(&t, "b.prom", TF_CLASH) == 1 && conflicts(&t, "b.prom", TF_RESERVED) == 1 &&
		      conflicts(&t, "c.prom", TF_DUPLICATE) == 1, "clash, reserved, duplicate counted");
	}
	{
		const char *f[] = {
			"a.prom", "# TYPE g gauge\ng 1 1700000000000\ng{x=\"1\"} 2\n",
			"bad.prom", "g{ 1\n",
			"c.prom", "other 3\n",
		};
		got = merged(&t, f, 3);
		CHECK(!strcmp(got, "# HELP g Metric read from a.prom.\n# TYPE g gauge\ng 1\n"
		      "# HELP other Metric read from c.prom.\nother 3\n"),
		      "timestamps dropped, a malformed file left out whole: '%s'", got);
		CHECK(conflicts(&t, "a.prom", TF_TIMESTAMP) == 1 && conflicts(&t, "a.prom", TF_LABELS) == 1,
		      "timestamp and labels counted");
		CHECK(textfile_find(&t, "bad.prom")->error, "bad.prom marked");
		CHECK(strstr(body_of(&t.text), "tally_textfile_scrape_error{file=\"bad.prom\"} 1\n") &&
		      strstr(body_of(&t.text), "tally_textfile_scrape_error{file=\"a.prom\"} 0\n") &&
		      strstr(body_of(&t.text), "tally_textfile_conflicts{file=\"a.prom\",kind=\"timestamp\"} 1\n"),
		      "per-file gauges: '%s'", body_of(&t.text));
	}
	textfile_free(&t);
}

static void test_openmetrics(void)
{
	struct textfile t;
	static const struct {
		const char *in;
		int ok;
	} c[] = {
		{ "# HELP a_total Say \"hi\"\\\\.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n", 1 },
		{ "# TYPE a counter\na 3\n", 0 },                 /* counter without _total */
		{ "# TYPE a_total counter\na_total -1\n", 0 },     /* negative counter */
		{ "# TYPE a_total counter\na_total NaN\n", 0 },
		{ "# TYPE g_total gauge\ng_total 1\n", 0 },        /* reserved suffix */
		{ "# TYPE g_info gauge\ng_info 1\n", 1 },
		{ "# TYPE g_info gauge\ng_info 2\n", 0 },
		{ "# TYPE g_info counter\ng_info 1\n", 0 },
		{ "# TYPE g gauge\ng 1\n# TYPE g_total counter\ng_total 1\n", 0 }, /* family name twice */
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", 1 },
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n", 0 },  /* no +Inf */
		{ "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", 0 },      /* count differs */
		{ "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", 0 },
		{ "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 3\ns_count 2\n", 1 },
		{ "# TYPE s summary\ns{quantile=\"1.5\"} 1\n", 0 },
		{ "u 1\n", 1 },
	};
	struct prom_doc d;
	struct prom_err err;
	struct buf out = { 0, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof c / sizeof *c; i++) {
		memset(&d, 0, sizeof d);
		buf_reset(&out);
		CHECK(prom_parse(&d, c[i].in, strlen(c[i].in), &err) == 0, "parse '%s': %s", c[i].in, err.msg);
		CHECK(textfile_openmetrics(&d, &out) == c[i].ok && (c[i].ok || out.len == 0),
		      "OpenMetrics %d for '%s'", c[i].ok, c[i].in);
		prom_doc_free(&d);
	}
	/* A gauge *_info of 1s is written as an OpenMetrics info family. */
	{
		static const char in[] = "# HELP b_info Build.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n";
		static const char want[] = "# TYPE b info\n# HELP b Build.\nb_info{v=\"1\"} 1\n";

		memset(&d, 0, sizeof d);
		buf_reset(&out);
		CHECK(prom_parse(&d, in, strlen(in), &err) == 0, "parse info: %s", err.msg);
		CHECK(textfile_openmetrics(&d, &out) == 1 && !strcmp(out.p, want),
		      "info family written as '%s'", out.p ? out.p : "");
		prom_doc_free(&d);
	}
	buf_free(&out);
	memset(&t, 0, sizeof t);
	{
		const char *f[] = { "a.prom", c[0].in };

		build(&t, f, 1);
		CHECK(t.om_ok && strstr(body_of(&t.om), "# TYPE a counter\n# HELP a Say \\\"hi\\\"\\\\.\na_total{x=\"1\"} 3\n") != NULL,
		      "counter family without _total, HELP quotes escaped: '%s'", body_of(&t.om));
	}
	{
		const char *f[] = { "a.prom", "u 1\n" };

		build(&t, f, 1);
		CHECK(strstr(body_of(&t.om), "# TYPE u unknown\n# HELP u Metric read from a.prom.\nu 1\n") != NULL,
		      "untyped is unknown: '%s'", body_of(&t.om));
	}
	{
		const char *f[] = { "a.prom", "# HELP builtin_level_total B.\n# TYPE builtin_level_total counter\nbuiltin_level_total 1\n" };

		build(&t, f, 1);
		CHECK(!t.om_ok, "a counter whose OpenMetrics name is a built-in's: text only");
	}
	textfile_free(&t);
}

static void test_lint(void)
{
	static const struct {
		const char *in;
		int dropped;
	} c[] = {
		{ "# TYPE a counter\na 1\n", 1 },
		{ "# TYPE a_total gauge\na_total 1\n", 1 },
		{ "a_total 1\n", 0 },                            /* untyped may end in _total */
		{ "# TYPE a_count gauge\na_count 1\n", 1 },
		{ "# TYPE a_bucket summary\na_bucket_sum 1\na_bucket_count 1\n", 1 },
		{ "# TYPE job_gauge gauge\njob_gauge 1\n", 1 },
		{ "# TYPE job_counter_x gauge\njob_counter_x 1\n", 1 },
		{ "# TYPE a_ms gauge\na_ms 1\n", 1 },
		{ "# TYPE a_milliseconds gauge\na_milliseconds 1\n", 1 },
		{ "# TYPE a_hours gauge\na_hours 1\n", 1 },
		{ "# TYPE a_kilobytes gauge\na_kilobytes 1\n", 1 },
		{ "# TYPE a_bytes gauge\na_bytes 1\n", 0 },
		{ "# TYPE thermometers gauge\nthermometers 1\n", 0 },
		{ "# TYPE a:b gauge\na:b 1\n", 1 },
		{ "# TYPE aB gauge\naB 1\n", 1 },
		{ "# TYPE g gauge\ng{myLabel=\"x\"} 1\n", 1 },
		{ "# TYPE g gauge\ng{le=\"x\"} 1\n", 1 },
		{ "g{le=\"x\"} 1\n", 0 },                        /* untyped: not checked */
		{ "# TYPE g gauge\ng{quantile=\"x\"} 1\n", 1 },
	};
	struct textfile t;
	size_t i;

	memset(&t, 0, sizeof t);
	for (i = 0; i < sizeof c / sizeof *c; i++) {
		const char *f[] = { "a.prom", c[i].in };

		build(&t, f, 1);
		CHECK((conflicts(&t, "a.prom", TF_LINT) > 0) == c[i].dropped,
		      "lint %d for '%s'", c[i].dropped, c[i].in);
	}
	textfile_free(&t);
}

/* Writes data to dir/name with mtime shifted by `age` seconds into the past. */
static void put_file(const char *dir, const char *name, const char *data, int age)
{
	char path[512];
	struct timespec ts[2];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(data, f);
	fclose(f);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, path, ts, 0);
}

static void test_refresh(void)
{
	char dir[] = "/tmp/test_textfile.XXXXXX", path[600];
	struct textfile t;
	int changed = -1, rc;
	unsigned long long parses;

	memset(&t, 0, sizeof t);
	textfile_init(&t, res, 2);
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed == 1 && t.n == 0, "empty directory builds once");
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed == 0, "and not again");

	put_file(dir, "b.prom", "b 2\n", 10);
	put_file(dir, "a.prom", "a 1", 10);
	put_file(dir, ".hidden.prom", "hidden 1\n", 10);
	put_file(dir, "c.prom.tmp", "tmp 1\n", 10);
	put_file(dir, "d.txt", "txt 1\n", 10);
	snprintf(path, sizeof path, "%s/sub.prom", dir);
	mkdir(path, 0755);
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed && t.n == 2 && !strcmp(t.f[0].name, "a.prom") &&
	      !strcmp(t.f[1].name, "b.prom"), "only *.prom regular files, sorted: n %zu", t.n);
	parses = t.parses;
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && !changed && t.parses == parses, "unchanged: no parse");

	put_file(dir, "b.prom", "b 3\n", 0);
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed && t.parses == parses + 1 && strstr(body_of(&t.text), "\nb 3\n"),
	      "one changed file: one parse");
	snprintf(path, sizeof path, "%s/a.prom", dir);
	unlink(path);
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed && t.n == 1 && !strstr(body_of(&t.text), "a 1"), "deleted file gone");

	put_file(dir, "z.prom", "z{ 1\n", 0);
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == 0 && changed && textfile_find(&t, "z.prom")->error &&
	      strstr(body_of(&t.text), "\nb 3\n"), "a malformed file does not hide the others");

	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	if (system(path) != 0)
		CHECK(0, "cleanup of %s", dir);
	rc = textfile_refresh(&t, dir, &changed);
	CHECK(rc == -1 && errno == ENOENT && strstr(body_of(&t.text), "\nb 3\n"),
	      "a vanished directory fails and keeps the last content");
	textfile_free(&t);
}

/* Several directories: merged in the order given, whatever the names; the
 * file label of later directories is DIR/NAME; a directory that cannot be
 * listed keeps its files and does not stop the others. */
static void test_refresh_dirs(void)
{
	char a[] = "/tmp/test_textfile.XXXXXX", b[] = "/tmp/test_textfile.XXXXXX";
	char cmd[600], want[700];
	const char *dirs[3];
	struct textfile t;
	int changed = -1, rc, errs[3];
	unsigned long long parses;

	memset(&t, 0, sizeof t);
	textfile_init(&t, res, 2);
	if (!mkdtemp(a) || !mkdtemp(b)) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	dirs[0] = a;
	dirs[1] = b;
	dirs[2] = "/nonexistent/tally";
	put_file(a, "z.prom", "# TYPE shared gauge\nshared{k=\"1\"} 1\nonly_a 1\n", 0);
	put_file(b, "a.prom", "# TYPE shared gauge\nshared{k=\"1\"} 2\nshared{k=\"2\"} 2\n", 0);
	put_file(b, "z.prom", "only_b 1\n", 0);
	rc = textfile_refresh_dirs(&t, dirs, 2, &changed, errs);
	CHECK(rc == 0 && changed && t.n == 3 && errs[0] == 0 && errs[1] == 0, "two dirs listed: n %zu", t.n);
	CHECK(textfile_find_in(&t, 0, "z.prom") && textfile_find_in(&t, 1, "z.prom") &&
	      textfile_find_in(&t, 1, "a.prom") && !textfile_find_in(&t, 0, "a.prom"),
	      "the same name in two dirs is two files");
	CHECK(strstr(body_of(&t.text), "shared{k=\"1\"} 1\nshared{k=\"2\"} 2\n") != NULL,
	      "the first dir wins a duplicate, whatever the names: %s", body_of(&t.text));
	CHECK(textfile_find_in(&t, 1, "a.prom")->conflicts[TF_DUPLICATE] == 1, "duplicate counted in b");
	snprintf(want, sizeof want, "tally_textfile_scrape_error{file=\"%s/a.prom\"} 0\n", b);
	CHECK(strstr(body_of(&t.text), want) != NULL, "later dir labelled DIR/NAME: %s", body_of(&t.text));
	CHECK(strstr(body_of(&t.text), "tally_textfile_scrape_error{file=\"z.prom\"} 0\n") != NULL,
	      "first dir labelled NAME");
	parses = t.parses;
	rc = textfile_refresh_dirs(&t, dirs, 2, &changed, errs);
	CHECK(rc == 0 && !changed && t.parses == parses, "unchanged dirs: no parse");
	rc = textfile_refresh_dirs(&t, dirs, 3, &changed, errs);
	CHECK(rc == 0 && changed && errs[2] == ENOENT && errs[0] == 0 && t.n == 3,
	      "a missing third dir is reported and the others served");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", a);
	if (system(cmd) != 0)
		CHECK(0, "cleanup of %s", a);
	rc = textfile_refresh_dirs(&t, dirs, 3, &changed, errs);
	CHECK(rc == 0 && errs[0] == ENOENT && textfile_find_in(&t, 0, "z.prom"),
	      "a vanished dir keeps its files as last read");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", b);
	if (system(cmd) != 0)
		CHECK(0, "cleanup of %s", b);
	rc = textfile_refresh_dirs(&t, dirs, 3, &changed, errs);
	CHECK(rc == -1 && errno == ENOENT, "no dir listed: -1");
	rc = textfile_refresh_dirs(&t, dirs, 0, &changed, errs);
	CHECK(rc == -1 && errno == EINVAL, "no dirs: EINVAL");
	textfile_free(&t);
}

/* Returns 1 when `gzip -dc` of z[0..zn) gives exactly p[0..n). */
static int gunzip_eq(const char *z, size_t zn, const char *p, size_t n)
{
	char zf[] = "/tmp/test_gz.XXXXXX", cmd[128];
	struct buf out = { 0, 0, 0 };
	FILE *f;
	int fd = mkstemp(zf), ok;
	char tmp[4096];
	size_t r;

	if (fd < 0 || write(fd, z, zn) != (ssize_t)zn)
		return 0;
	close(fd);
	snprintf(cmd, sizeof cmd, "gzip -dc < %s", zf);
	f = popen(cmd, "r");
	while (f && (r = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_put(&out, tmp, r);
	ok = f && pclose(f) == 0 && out.len == n && (n == 0 || !memcmp(out.p, p, n));
	unlink(zf);
	buf_free(&out);
	return ok;
}

static void test_gzip(void)
{
	struct buf in = { 0, 0, 0 }, z = { 0, 0, 0 };
	unsigned long seed = 12345;
	size_t i, cut;
	uint32_t crc;

	CHECK(gz_crc32(0, "123456789", 9) == 0xCBF43926u, "CRC-32 check value");
	for (i = 0; i < 300000; i++) {
		seed = seed * 1103515245 + 12345;
		if (i % 3000 < 1000)
			buf_putc(&in, (char)(seed >> 16)); /* noise */
		else
			buf_putc(&in, "metric_name{label=\"value\"} 12\n"[i % 31]);
	}
	for (cut = 0; cut <= in.len; cut += in.len / 3) {
		buf_reset(&z);
		gz_header(&z);
		gz_deflate(&z, in.p, cut, 0);
		gz_deflate(&z, in.p + cut, in.len - cut, 1);
		crc = gz_crc32(gz_crc32(0, in.p, cut), in.p + cut, in.len - cut);
		gz_trailer(&z, crc, in.len);
		CHECK(gunzip_eq(z.p, z.len, in.p, in.len), "two parts cut at %zu round-trip", cut);
		CHECK(z.len < in.len, "compressed %zu -> %zu", in.len, z.len);
	}
	buf_reset(&z);
	gz_header(&z);
	gz_deflate(&z, "", 0, 0);
	gz_deflate(&z, "", 0, 1);
	gz_trailer(&z, 0, 0);
	CHECK(gunzip_eq(z.p, z.len, "", 0), "empty input");
	buf_free(&in);
	buf_free(&z);
}

int main(void)
{
	test_merge_rules();
	test_openmetrics();
	test_lint();
	test_refresh();
	test_refresh_dirs();
	test_gzip();
	return check_done("test_textfile");
}
