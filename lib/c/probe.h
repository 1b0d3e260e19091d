/* probe.h: included by tally.h; declarations with one-line contracts.
 * probe.c: TCP connections under one deadline, and liveness probes. */
#ifndef TALLY_PROBE_H
#define TALLY_PROBE_H

#include <stddef.h>

/* Milliseconds on the monotonic clock (deadlines for the net_ functions). */
long long net_now_ms(void);
/* Waits until fd is ready for events (poll) or net_now_ms() reaches
 * deadline. Returns 1 when ready, 0 on timeout, -1 with errno set. */
int net_wait_fd(int fd, short events, long long deadline);
/* Connects to host:port (a name or address; port numeric) before the
 * deadline, trying each address. Returns a non-blocking socket, or -1 with
 * the reason in why ("cannot resolve HOST", "cannot connect to LABEL: ...",
 * "timed out connecting to LABEL"). */
int net_connect(const char *host, const char *port, const char *label, long long deadline,
	char *why, size_t whylen);

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
