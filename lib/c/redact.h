/* redact.h: included by tally.h; declarations with one-line contracts.
 *
 * redact.c removes secrets from log text before it is written anywhere
 * (console, text log, JSON). Each secret is replaced by REDACT_MARK. The
 * rules, applied in one left-to-right scan (docs/reference/logging.md,
 * "Redaction", is the contract; lib/base/logging.sh's awk fallback
 * implements the same scan):
 *
 * 1. key=value: a key is a maximal run of [A-Za-z0-9_.-] not preceded by
 *    '/', optionally followed by one quote, blanks, then '=' or ':', then
 *    blanks and a value. When the key names a secret (redact_key_is_secret)
 *    the value is replaced: a quoted value up to its closing quote; for a
 *    key with the part "authorization" everything up to a quote or the end
 *    of the line (so "Authorization: Bearer x" loses "Bearer x"); any other
 *    value up to a blank, quote, '&', ',' or ';'. A key that starts with
 *    "--" may also be followed by blanks and a value that does not start
 *    with '-' (--password hunter2).
 * 2. URL userinfo: after "://", in the authority (up to '/', '?', '#', a
 *    blank, a quote, '<', '>' or a REDACT_MARK not followed by '@'), the
 *    password between the first ':' and the last '@'.
 * 3. Token shapes starting at a byte not preceded by [A-Za-z0-9]: GitHub
 *    ghp_ gho_ ghu_ ghs_ ghr_ + 30 or more [A-Za-z0-9], github_pat_ + 22 or
 *    more [A-Za-z0-9_]; GitLab glpat- + 20 or more [A-Za-z0-9_-]; Slack
 *    xoxa- xoxb- xoxp- xoxr- xoxs- + 10 or more [A-Za-z0-9-]; AWS access key
 *    ids AKIA or ASIA + exactly 16 [A-Z0-9]; sk- + 20 or more
 *    [A-Za-z0-9_-]. The whole token is replaced.
 *
 * Bytes outside the replaced spans are copied unchanged, invalid UTF-8 and
 * NUL included. */
#ifndef TALLY_REDACT_H
#define TALLY_REDACT_H

#include <stddef.h>

struct buf;

/* The text that replaces every secret. */
#define REDACT_MARK "[REDACTED]"
#define REDACT_MARK_LEN 10

/* Returns 1 when key k[0..n) names a secret: split at '_', '-', '.', case
 * changes (apiKey, APIKey) and letter/digit changes, one lowercased part is
 * password, passwd, passphrase, secret, token, credential, credentials,
 * authorization, apikey, accesskey or privatekey, or two adjacent parts are
 * api key, access key or private key. Else 0 (monkey, author, tokenizer). */
int redact_key_is_secret(const char *k, size_t n);
/* Appends s[0..n) to b with every secret replaced by REDACT_MARK. Returns
 * the number of replacements, or -1 with errno ENOMEM. */
int redact_append(struct buf *b, const char *s, size_t n);
/* Returns 1 when redaction is on: the environment variable TALLY_REDACT is
 * unset or anything but "0". */
int redact_enabled(void);

#endif
