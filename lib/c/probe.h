/* probe.h: included by tally.h; declarations with one-line contracts. */
#ifndef TALLY_PROBE_H
#define TALLY_PROBE_H

#include <stddef.h>

/* Longest URL probe_url() accepts, in bytes. */
#define PROBE_MAX_URL 2048
/* Bytes of an HTTP answer read to find its status line. */
#define PROBE_MAX_STATUS_LINE 512

/* Probes url within timeout_ms milliseconds in all: "tcp://HOST:PORT" is
 * healthy when a TCP connection is accepted, "http://HOST[:PORT][/PATH]"
 * when GET answers 2xx or 3xx (HOST a name, an IPv4 address or [IPv6]).
 * Returns 0 when healthy; 1 when not, with the reason in why (NUL-
 * terminated, cut to whylen); -1 with errno EINVAL when url is not of these
 * forms (the reason in why too). */
int probe_url(const char *url, int timeout_ms, char *why, size_t whylen);

#endif
