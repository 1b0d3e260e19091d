/* json.h: included by tally.h; declarations with one-line contracts.
 * JSON text per RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259). Strings
 * are escaped with a 256-entry byte table: '"' and '\' and the short forms
 * \b \f \n \r \t, every other byte 0x00-0x1F as \u00xx (lowercase hex), 0x7F
 * passed through (it is legal JSON). Valid UTF-8 passes through unchanged;
 * each maximal subpart of an ill-formed sequence becomes U+FFFD (EF BF BD),
 * as Unicode 15 ch. 3 "U+FFFD Substitution of Maximal Subparts" describes. */
#ifndef TALLY_JSON_H
#define TALLY_JSON_H

#include <stddef.h>

struct buf;

/* Appends s[0..n) escaped, without quotes (NUL bytes allowed).
 * Returns 0, or -1 with errno ENOMEM. */
int json_escape(struct buf *b, const char *s, size_t n);
/* Appends s[0..n) as a quoted JSON string. Returns 0, or -1 with errno ENOMEM. */
int json_put_string(struct buf *b, const char *s, size_t n);
/* Appends "KEY": with KEY escaped, preceded by ',' unless b ends in '{'.
 * Returns 0, or -1 with errno ENOMEM. */
int json_put_key(struct buf *b, const char *k, size_t n);
/* Returns 1 when the NUL-terminated s is exactly one RFC 8259 number
 * (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), else 0. */
int json_is_number(const char *s);
/* Returns the largest length <= cap (or n when n <= cap) at which s[0..n)
 * can be cut without splitting a well-formed UTF-8 sequence. */
size_t json_utf8_cut(const char *s, size_t n, size_t cap);

#endif
