/* test_redact: lib/c/redact.c against the corpora in tests/corpus/redact/
 * (run from the repository root, as `make unit` does) and hand-written
 * cases: key parts, every rule, byte preservation, TALLY_REDACT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

#define CORPUS "tests/corpus/redact/"

static int passed, failed;

/* Records one check; prints a line for a failure. */
static void check(int ok, const char *what, const char *detail)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	if (failed <= 50)
		printf("FAIL: %s: %s\n", what, detail);
}

/* Returns redact_append(s[0..n)) in a static buffer; *count gets the
 * number of replacements. */
static struct buf *red(const char *s, size_t n, int *count)
{
	static struct buf b;

	buf_reset(&b);
	*count = redact_append(&b, s, n);
	if (*count < 0) {
		printf("FAIL: redact_append returned -1\n");
		exit(1);
	}
	return &b;
}

/* Checks that s redacts to want (NUL-terminated both). */
static void expect(const char *s, const char *want)
{
	int c;
	struct buf *b = red(s, strlen(s), &c);
	char msg[1024];

	snprintf(msg, sizeof msg, "[%s] gave [%.*s], want [%s]", s, (int)b->len, b->p, want);
	check(b->len == strlen(want) && memcmp(b->p, want, b->len) == 0, "redaction", msg);
	/* A value already "[REDACTED]" is replaced by the same text. */
	if (!strstr(s, REDACT_MARK))
		check((c > 0) == (strcmp(s, want) != 0), "replacement count", msg);
}

static void test_key_parts(void)
{
	static const char *const yes[] = {
		"password", "PASSWORD", "db_password", "DB-PASSWORD", "db.password",
		"dbPassword", "passwd", "secret", "client_secret", "SecretKey", "token",
		"GITHUB_TOKEN", "x-auth-token", "api_key", "apiKey", "APIKey", "API_KEY",
		"x-api-key", "apikey", "access_key", "AccessKey", "aws_secret_access_key",
		"private_key", "privateKey", "credential", "credentials", "authorization",
		"Proxy-Authorization", "--password", "password2", "passphrase",
	};
	static const char *const no[] = {
		"monkey", "author", "Author", "keyboard", "tokenizer", "secretary",
		"mypassword", "passwords", "api", "key", "access", "private", "keys",
		"primary_key", "public_key", "tokens", "authorized", "pwd", "",
		"sha256", "trace_id", "apikeys", "keyapi",
	};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
		check(redact_key_is_secret(yes[i], strlen(yes[i])) == 1, "key names a secret", yes[i]);
	for (i = 0; i < sizeof no / sizeof no[0]; i++)
		check(redact_key_is_secret(no[i], strlen(no[i])) == 0, "key names no secret", no[i]);
}

/* Returns the next line of f without its newline in line (static), or
 * NULL at EOF; skips comments. */
static char *next_line(FILE *f)
{
	static char line[4096];
	size_t n;

	while (fgets(line, sizeof line, f)) {
		n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (line[0] == '#')
			continue;
		return line;
	}
	return NULL;
}

static void test_corpora(void)
{
	FILE *f;
	char *line, *sep;
	size_t nred = 0, nsurv = 0;

	f = fopen(CORPUS "must-redact.txt", "r");
	check(f != NULL, "corpus opens", CORPUS "must-redact.txt");
	while (f && (line = next_line(f))) {
		sep = strstr(line, " => ");
		check(sep != NULL, "corpus line has =>", line);
		if (!sep)
			continue;
		*sep = '\0';
		expect(line, sep + 4);
		nred++;
	}
	if (f)
		fclose(f);
	f = fopen(CORPUS "must-survive.txt", "r");
	check(f != NULL, "corpus opens", CORPUS "must-survive.txt");
	while (f && (line = next_line(f))) {
		expect(line, line);
		nsurv++;
	}
	if (f)
		fclose(f);
	check(nred >= 40 && nsurv >= 40, "corpora are complete", "at least 40 lines each");
}

static void test_rules(void)
{
	/* Values end at the documented bytes. */
	expect("token=a b", "token=[REDACTED] b");
	expect("token=a\tb", "token=[REDACTED]\tb");
	expect("token=a,b", "token=[REDACTED],b");
	expect("token=a;b", "token=[REDACTED];b");
	expect("token=a&b", "token=[REDACTED]&b");
	expect("token=a\"b", "token=[REDACTED]\"b");
	expect("token=\"unterminated", "token=\"[REDACTED]");
	expect("token=\"\"", "token=\"\"");
	expect("token:  \t x", "token:  \t [REDACTED]");
	/* A key preceded by '/' is a path, not a key. */
	expect("/a/token=x", "/a/token=x");
	expect("a/token: x", "a/token: x");
	expect("a token: x", "a token: [REDACTED]");
	/* Flags take a value after blanks, not one that starts with '-'. */
	expect("--token x", "--token [REDACTED]");
	expect("--token -v", "--token -v");
	expect("-token x", "-token x");
	expect("--token", "--token");
	/* Authorization runs to a quote or the end of the line. */
	expect("Authorization: a b c\nnext", "Authorization: [REDACTED]\nnext");
	expect("authorization=Bearer x", "authorization=[REDACTED]");
	/* URL: first ':' to last '@' of the authority. */
	expect("https://u:p@h@host/x@y", "https://u:[REDACTED]@host/x@y");
	expect("https://u:@host", "https://u:@host");
	expect("https://u@host", "https://u@host");
	expect("x://a:b@c", "x://a:[REDACTED]@c");
	expect("://:p@", "://:[REDACTED]@");
	/* Token shapes need a boundary before and their minimum length. */
	expect("xghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "xghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
	expect("_ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "_[REDACTED]");
	expect("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678", "[REDACTED]");
	expect("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012");
	expect("AKIAIOSFODNN7EXAMPLE.", "[REDACTED].");
	expect("AKIAIOSFODNN7EXAMPLE_", "[REDACTED]_");
	expect("AKIAIOSFODNN7EXAMPLEa", "AKIAIOSFODNN7EXAMPLEa");
	expect("AKIAiOSFODNN7EXAMPLE", "AKIAiOSFODNN7EXAMPLE");
	expect("xoxb-123456789", "xoxb-123456789");
	expect("xoxb-1234567890", "[REDACTED]");
	expect("xoxc-1234567890", "xoxc-1234567890");
	expect("sk-abcdefghijklmnopqrst sk-abcdefghijklmnopqrs", "[REDACTED] sk-abcdefghijklmnopqrs");
	/* Redacting twice changes nothing more. */
	expect("password=[REDACTED]", "password=[REDACTED]");
	expect("[REDACTED]", "[REDACTED]");
}

static void test_bytes(void)
{
	static const char in[] = "a\0b\xff\xfe token=\x80\x81 \xc3\xa9\r\n";
	static const char want[] = "a\0b\xff\xfe token=[REDACTED] \xc3\xa9\r\n";
	int c;
	struct buf *b;
	unsigned char all[256];
	size_t i;

	b = red(in, sizeof in - 1, &c);
	check(c == 1 && b->len == sizeof want - 1 && memcmp(b->p, want, b->len) == 0,
		"NUL and invalid UTF-8 are kept, a non-ASCII value is redacted", "bytes");
	for (i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	b = red((const char *)all, 256, &c);
	check(c == 0 && b->len == 256 && memcmp(b->p, all, 256) == 0,
		"every byte value passes through", "0x00-0xFF");
	b = red("", 0, &c);
	check(c == 0 && b->len == 0, "empty input", "");
}

static void test_env(void)
{
	unsetenv("TALLY_REDACT");
	check(redact_enabled() == 1, "on by default", "unset");
	setenv("TALLY_REDACT", "0", 1);
	check(redact_enabled() == 0, "TALLY_REDACT=0 turns it off", "0");
	setenv("TALLY_REDACT", "1", 1);
	check(redact_enabled() == 1, "TALLY_REDACT=1 keeps it on", "1");
	setenv("TALLY_REDACT", "", 1);
	check(redact_enabled() == 1, "TALLY_REDACT= keeps it on", "");
	unsetenv("TALLY_REDACT");
}

int main(void)
{
	test_key_parts();
	test_corpora();
	test_rules();
	test_bytes();
	test_env();
	printf("test_redact: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
