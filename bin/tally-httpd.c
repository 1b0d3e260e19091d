/* tally-httpd: the tiny HTTP responder. Serves the merged, validated *.prom
 * files of a metrics directory plus built-in families at /metrics (text
 * 0.0.4 or OpenMetrics 1.0, identity or gzip), liveness at /healthz,
 * readiness at /readyz, both as JSON at /health and a small page at /, from
 * one poll() loop over non-blocking sockets (STYLE.md, "The daemon").
 * Reference: docs/reference/tally-httpd.md */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "tally.h"

#define SYNOPSIS "tally-httpd [--listen [ADDR]:PORT] [--dir DIR]... [--port-file FILE] [--auth-file FILE]"
/* Default whole time limit of --probe, in seconds. */
#define HTTPD_PROBE_TIMEOUT_S 5

#define HTTPD_DEFAULT_DIR "/var/lib/container-build/metrics"
#define HTTPD_DEFAULT_LOG_DIR "/var/log/container-build"
#define HTTPD_DEFAULT_PORT "9090"

#define HTTPD_MAX_CONNS 1024         /* open connections at most (fewer under a low RLIMIT_NOFILE) */
#define HTTPD_FD_RESERVE 8           /* descriptors kept out of the connection cap: the directory and
                                      * file a listing opens, /proc files, the build summary, the
                                      * connection accepted before another is given up for it */
#define HTTPD_ACCEPT_BATCH 32        /* connections accepted per poll round, at most */
#define HTTPD_EVICT_GRACE_MS 1000    /* idle less than this: given up only after slow heads */
#define HTTPD_NOFILE_SPARE 64       /* descriptors beyond the connections raise_nofile() asks for */
#define HTTPD_RLIM_BIG (1LL << 30)   /* an RLIMIT_NOFILE above this is taken as no limit */
#define HTTPD_BACKLOG 1024           /* connections the kernel queues before accept() (clamped
                                      * to net.core.somaxconn; musl's SOMAXCONN is only 128) */
#define HTTPD_IDLE_TIMEOUT_MS 10000  /* default: a keep-alive connection may idle this long */
#define HTTPD_HEAD_TIMEOUT_MS 5000   /* default: a begun request head must be complete; else 408 */
#define HTTPD_WRITE_TIMEOUT_MS 10000 /* a response write must progress within this; else close */
#define HTTPD_MAX_TIMEOUT_S 3600     /* largest --idle-timeout / --head-timeout */
#define HTTPD_LINGER_MS 2000         /* draining unread input before close, at most */
#define HTTPD_LINGER_MAX 65536       /* bytes drained before close, at most */
#define HTTPD_MAX_REQUEST_BODY 1024  /* request body bytes tolerated (and discarded); more: 413 */
#define HTTPD_MAX_BODY (32u << 20)   /* /metrics body bytes; more gives 503 */
#define HTTPD_POLL_MAX_MS 1000       /* longest poll() sleep: bounds the signal race */
#define HTTPD_ACCEPT_PAUSE_MS 100    /* no accept() for this long when no descriptor is left */
#define HTTPD_BUF_KEEP 65536         /* a response buffer larger than this is freed */
#define HTTPD_PROC_REFRESH_MS 1000   /* process metrics are re-read at most this often */
#define HTTPD_SUMMARY_MAX 65536      /* bytes of the build summary shown at / */
#define HTTPD_AUTH_MAX 1024          /* bytes of the --auth-file line */
#define HTTPD_PROC_STAT_MAX 4096     /* bytes read of /proc/PID/stat, /proc/stat */
#define HTTPD_HEALTH_MAX_AGE_S 90    /* default --health-max-age: 3 x Docker's 30 s interval */
#define HTTPD_MAX_AGE_LIMIT_S 604800 /* largest --health-max-age (a week) */
#define HTTPD_HEALTH_FILE "healthcheck.prom"
#define HTTPD_RESCAN_MS 1000         /* a watched, quiet directory is listed again after this */
#define HTTPD_INOTIFY_BUF 4096       /* bytes of inotify events read at a time */

static const char ct_text04[] = "text/plain; version=0.0.4; charset=utf-8";
static const char ct_om[] = "application/openmetrics-text; version=1.0.0; charset=utf-8";
static const char ct_text[] = "text/plain; charset=utf-8";
static const char ct_json[] = "application/json";
static const char ct_html[] = "text/html; charset=utf-8";
static const char allow_get_head[] = "Allow: GET, HEAD\r\n";
static const char auth_header[] = "WWW-Authenticate: Basic realm=\"tally\", charset=\"UTF-8\"\r\n";
static const char full_response[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 17\r\n"
	"Connection: close\r\n"
	"\r\n"
	"too many clients\n";

/* Where a connection is in its life; CONN_FREE marks an unused slot. */
enum conn_state {
	CONN_FREE,    /* slot unused */
	CONN_READING, /* waiting for a complete request head */
	CONN_WRITING, /* sending out[out_off..out.len) */
	CONN_CLOSING  /* response sent and write side shut: draining, then close */
};

struct snap;

/* One client. A response is out[0..head_len), then shared[0..shared_len)
 * (a body held by snapshot snap, not copied), then out[head_len..). */
struct conn {
	enum conn_state state;
	int fd;
	int close_after;    /* close once the response in out is written */
	long long deadline; /* CLOCK_MONOTONIC ms after which the deadline acts */
	unsigned long long round; /* the poll round that accepted it */
	size_t in_len;
	size_t out_off;     /* bytes of the whole response written */
	size_t drained;
	size_t head_len;    /* bytes of out sent before shared */
	struct snap *snap;  /* holds shared; NULL when shared_len is 0 */
	const char *shared;
	size_t shared_len;
	struct buf out;
	char *in;           /* conn_in[slot]: HTTP_MAX_HEAD bytes */
};

/* What --listen asked for. */
struct listen_spec {
	int any;                 /* ":PORT": every interface, IPv6 dual-stack or IPv4 */
	int family;              /* AF_INET or AF_INET6 when !any */
	struct in_addr a4;
	struct in6_addr a6;
	unsigned port;
};

/* Status codes counted in tally_httpd_requests_total{code}. */
static const int counted_codes[] = {
	200, 400, 401, 404, 405, 408, 413, 414, 431, 503, 505
};
#define NCODES (sizeof counted_codes / sizeof *counted_codes)

/* The built-in families served from memory; textfiles may not define them. */
static const struct tf_reserved builtins[] = {
	{ "container_uptime_seconds", PROM_GAUGE },
	{ "container_start_time_seconds", PROM_GAUGE },
	{ "process_cpu_seconds_total", PROM_COUNTER },
	{ "process_resident_memory_bytes", PROM_GAUGE },
	{ "process_virtual_memory_bytes", PROM_GAUGE },
	{ "process_open_fds", PROM_GAUGE },
	{ "process_max_fds", PROM_GAUGE },
	{ "process_start_time_seconds", PROM_GAUGE },
	{ "tally_httpd_requests_total", PROM_COUNTER },
	{ "tally_httpd_scrapes_total", PROM_COUNTER },
	{ "tally_httpd_connections", PROM_GAUGE },
	{ "tally_httpd_connections_refused_total", PROM_COUNTER },
	{ "tally_httpd_connections_evicted_total", PROM_COUNTER },
	{ "tally_httpd_connections_limit", PROM_GAUGE },
	{ "tally_textfile_parses_total", PROM_COUNTER },
	{ "tally_textfile_rebuilds_total", PROM_COUNTER },
	{ "tally_textfile_files_skipped", PROM_GAUGE },
};
#define NBUILTINS (sizeof builtins / sizeof *builtins)
#define NBUILTINS_MAX 24
typedef char builtins_fit[NBUILTINS <= NBUILTINS_MAX ? 1 : -1];

/* A gzip rendering of a snapshot's body, built on first use. */
struct gzcache {
	int built;
	struct buf z;                  /* header + non-final deflate blocks */
	uint32_t crc;                  /* CRC-32 of the uncompressed body */
};

/* The merged textfiles as of one rebuild, in both formats, shared by the
 * connections still sending them (refs) and by cur. */
struct snap {
	int refs;
	int om_ok;
	struct buf body[2];            /* [0] text 0.0.4, [1] OpenMetrics (no # EOF) */
	struct gzcache gz[2];
};

/* Process metrics, re-read at most every HTTPD_PROC_REFRESH_MS. */
struct procinfo {
	long long at;                  /* now_ms() of the last read; 0: never */
	int ok;
	double cpu, start;
	double rss, vsize, fds, max_fds;
};

static struct conn conns[HTTPD_MAX_CONNS];
/* The request buffers, apart from conns so that a pass over every slot's
 * state touches a few pages, not 8 KiB per slot: a buffer's pages are
 * touched only when its slot is used. */
static char conn_in[HTTPD_MAX_CONNS][HTTP_MAX_HEAD];
static volatile sig_atomic_t stop_flag, reload_flag;
static const char *auth_file, *log_dir;
static const char *dirs[TF_MAX_DIRS]; /* --dir in order: an earlier one wins the merge */
static size_t ndirs;
static int dir_errs[TF_MAX_DIRS];     /* errno of the last listing of each, or 0 */
static long long health_max_age_s = HTTPD_HEALTH_MAX_AGE_S; /* 0: no limit */
static long long idle_timeout_ms = HTTPD_IDLE_TIMEOUT_MS;
static long long head_timeout_ms = HTTPD_HEAD_TIMEOUT_MS;
static struct textfile tf;
static int dir_failing[TF_MAX_DIRS]; /* warned that the dir cannot be listed */
static int ino_fd = -1;        /* inotify on dirs; -1: list every directory per request */
static int watched[TF_MAX_DIRS]; /* dirs[i] has an inotify watch */
static int rewatch;            /* a watch went away: add them again at the next listing */
static int ino_dirty;          /* inotify saw a change since the last listing */
static long long last_scan_ms; /* when the directories were last listed */
static struct buf tail, ztail, scratch; /* per-response scratch buffers */
static struct snap *cur;       /* the latest snapshot; NULL before the first */
static struct buf meta[2][NBUILTINS_MAX]; /* HELP and TYPE lines per format */
static struct buf proc_part[2]; /* the process families, per format */
static char start_line[2][256];
static struct buf auth_token;  /* base64 of "user:password"; empty: no auth */
static struct procinfo proc;
static int container_start_ok; /* container_start_s and boot_start_ticks known */
static double container_start_s, container_start_boot_s;
static unsigned long long requests[NCODES];
static unsigned long long scrapes[2][2]; /* [openmetrics][gzip] */
static unsigned long long refused, evicted, rebuilds;
static size_t nconns;
static size_t max_conns = HTTPD_MAX_CONNS; /* the cap in effect (init_conn_cap) */
static unsigned long long rounds; /* poll rounds so far */
static int spare_fd = -1;       /* held open to be given up for a refusal at EMFILE */
static int accept_failing;      /* warned that accept() fails for want of descriptors */
static long long other_fds;     /* descriptors open besides connections (init_conn_cap) */

/* Sets stop_flag; the only thing SIGTERM and SIGINT do. */
static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Sets reload_flag; the only thing SIGHUP does. */
static void on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
}

/* Returns CLOCK_MONOTONIC in milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a decimal port 0..65535 from s. Returns 0, or -1 if invalid. */
static int parse_port(const char *s, unsigned *port)
{
	unsigned long v = 0;
	size_t i;

	if (!*s || strlen(s) > 5)
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* Parses "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (numeric addresses only).
 * Returns 0, or -1 if spec has none of these forms. */
static int parse_listen(const char *spec, struct listen_spec *ls)
{
	char addr[INET6_ADDRSTRLEN];
	const char *colon, *close;
	size_t n;

	memset(ls, 0, sizeof *ls);
	if (spec[0] == '[') {
		close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -1;
		n = (size_t)(close - spec - 1);
		if (n == 0 || n >= sizeof addr)
			return -1;
		memcpy(addr, spec + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, &ls->a6) != 1)
			return -1;
		ls->family = AF_INET6;
		return parse_port(close + 2, &ls->port);
	}
	colon = strchr(spec, ':');
	if (!colon || strchr(colon + 1, ':'))
		return -1;
	n = (size_t)(colon - spec);
	if (n == 0) {
		ls->any = 1;
		return parse_port(colon + 1, &ls->port);
	}
	if (n >= sizeof addr)
		return -1;
	memcpy(addr, spec, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &ls->a4) != 1)
		return -1;
	ls->family = AF_INET;
	return parse_port(colon + 1, &ls->port);
}

/* Sets O_NONBLOCK and FD_CLOEXEC on fd. Returns 0, or -1 with errno set. */
static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Opens a non-blocking listening socket bound to sa. v6only is -1 (leave the
 * default) or the IPV6_V6ONLY value. Returns the fd, or -1 with errno set. */
static int open_listener(const struct sockaddr *sa, socklen_t len, int v6only)
{
	int fd, one = 1, err;

	fd = socket(sa->sa_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto out_close;
	if (v6only >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	                              sizeof v6only) < 0)
		goto out_close;
	if (bind(fd, sa, len) < 0 || listen(fd, HTTPD_BACKLOG) < 0)
		goto out_close;
	if (set_nonblock(fd) < 0)
		goto out_close;
	return fd;

out_close:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Returns 1 if errno after a failed IPv6 socket/bind means "no IPv6 here". */
static int ipv6_unavailable(int err)
{
	return err == EAFNOSUPPORT || err == EPROTONOSUPPORT ||
	       err == EADDRNOTAVAIL || err == EINVAL || err == ENOPROTOOPT;
}

/* Binds what ls asks for; writes "ADDR:PORT" as bound into name. Returns
 * the listening fd, or -1 with errno set (name then says what failed). */
static int bind_listen(const struct listen_spec *ls, char *name, size_t size)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_storage got;
	socklen_t glen = sizeof got;
	char a[INET6_ADDRSTRLEN];
	int fd, is6;

	memset(&s4, 0, sizeof s4);
	memset(&s6, 0, sizeof s6);
	s4.sin_family = AF_INET;
	s4.sin_port = htons((unsigned short)ls->port);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons((unsigned short)ls->port);
	if (ls->any) {
		s4.sin_addr.s_addr = htonl(INADDR_ANY);
		s6.sin6_addr = in6addr_any;
		snprintf(name, size, "[::]:%u", ls->port);
		fd = open_listener((struct sockaddr *)&s6, sizeof s6, 0);
		is6 = 1;
		if (fd < 0 && ipv6_unavailable(errno)) {
			snprintf(name, size, "0.0.0.0:%u", ls->port);
			fd = open_listener((struct sockaddr *)&s4, sizeof s4, -1);
			is6 = 0;
		}
	} else if (ls->family == AF_INET6) {
		s6.sin6_addr = ls->a6;
		inet_ntop(AF_INET6, &ls->a6, a, sizeof a);
		snprintf(name, size, "[%s]:%u", a, ls->port);
		fd = open_listener((struct sockaddr *)&s6, sizeof s6, -1);
		is6 = 1;
	} else {
		s4.sin_addr = ls->a4;
		inet_ntop(AF_INET, &ls->a4, a, sizeof a);
		snprintf(name, size, "%s:%u", a, ls->port);
		fd = open_listener((struct sockaddr *)&s4, sizeof s4, -1);
		is6 = 0;
	}
	if (fd < 0)
		return -1;
	if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0) {
		char *c = strrchr(name, ':');
		unsigned port = is6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
		                    : ntohs(((struct sockaddr_in *)&got)->sin_port);
		if (c)
			snprintf(c + 1, size - (size_t)(c + 1 - name), "%u", port);
	}
	return fd;
}

/* Writes "PORT\n" to file atomically (atomic_replace). Returns 0, or -1
 * with errno set. */
static int write_port_file(const char *file, const char *port)
{
	char line[16];
	int n;

	n = snprintf(line, sizeof line, "%s\n", port);
	if (n < 0 || (size_t)n >= sizeof line) {
		errno = EINVAL;
		return -1;
	}
	return atomic_replace(file, line, (size_t)n, 0);
}

/* ---- the container and the process, from /proc ------------------------------ */

/* Reads at most HTTPD_PROC_STAT_MAX - 1 bytes of path into out, NUL-terminated.
 * Returns the length, or -1 with errno set. */
static ssize_t read_small(const char *path, char *out)
{
	ssize_t r, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -1;
	while (n < HTTPD_PROC_STAT_MAX - 1) {
		r = read(fd, out + n, (size_t)(HTTPD_PROC_STAT_MAX - 1 - n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	out[n] = '\0';
	return n;
}

/* Sets *v to field k (1-based, k >= 3) of a /proc/PID/stat line (fields
 * counted after the last ')', which ends the command name). Returns 0, or
 * -1 when the line is too short. */
static int stat_field(const char *line, int k, unsigned long long *v)
{
	const char *p = strrchr(line, ')');
	char *end;
	int i;

	if (!p)
		return -1;
	p++;
	for (i = 3; i <= k; i++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -1;
		if (i == k)
			break;
		while (*p && *p != ' ')
			p++;
	}
	errno = 0;
	*v = strtoull(p, &end, 10);
	return end == p || errno ? -1 : 0;
}

/* Returns the boot time (seconds since the epoch) from /proc/stat, or -1. */
static double boot_time(void)
{
	char text[HTTPD_PROC_STAT_MAX];
	const char *p;

	if (read_small("/proc/stat", text) < 0)
		return -1;
	p = strstr(text, "\nbtime ");
	return p ? strtod(p + 7, NULL) : -1;
}

/* Returns CLOCK_BOOTTIME in seconds. */
static double boot_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sets *since_boot to the start of process pid in seconds after boot.
 * Returns 0, or -1 when /proc does not say. */
static int process_start(const char *pid, double *since_boot)
{
	char path[64], text[HTTPD_PROC_STAT_MAX];
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	if (hz <= 0 || read_small(path, text) < 0 || stat_field(text, 22, &ticks) < 0)
		return -1;
	*since_boot = (double)ticks / (double)hz;
	return 0;
}

/* Learns when the container's first process (PID 1 of our PID namespace)
 * started; container_start_ok stays 0 when /proc does not tell. */
static void init_container_start(void)
{
	double bt = boot_time();

	if (bt < 0 || process_start("1", &container_start_boot_s) < 0)
		return;
	container_start_s = bt + container_start_boot_s;
	container_start_ok = 1;
}

/* Returns the number of open file descriptors (from /proc/self/fd), or -1
 * when /proc does not tell. */
static int count_fds(void)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* less the directory's own descriptor */
}

/* Re-reads this process's metrics when the last read is older than
 * HTTPD_PROC_REFRESH_MS. */
static void proc_refresh(long long now)
{
	char text[HTTPD_PROC_STAT_MAX];
	unsigned long long ut, st, vs, rss;
	struct rlimit rl;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	static double btime = -1; /* the boot time does not change: read once */
	double since_boot, bt;
	int n;

	if (proc.at && now - proc.at < HTTPD_PROC_REFRESH_MS)
		return;
	proc.at = now;
	proc.ok = 0;
	if (btime < 0)
		btime = boot_time();
	bt = btime;
	if (hz <= 0 || page <= 0 || bt < 0 || read_small("/proc/self/stat", text) < 0 ||
	    stat_field(text, 14, &ut) < 0 || stat_field(text, 15, &st) < 0 ||
	    stat_field(text, 23, &vs) < 0 || stat_field(text, 24, &rss) < 0 ||
	    process_start("self", &since_boot) < 0)
		return;
	proc.cpu = (double)(ut + st) / (double)hz;
	proc.vsize = (double)vs;
	proc.rss = (double)rss * (double)page;
	proc.start = bt + since_boot;
	n = count_fds();
	if (n < 0)
		return;
	proc.fds = n;
	proc.max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
		? (double)rl.rlim_cur : -1;
	proc.ok = 1;
}

/* ---- built-in families ---------------------------------------------------------- */

/* HELP texts of builtins[], same order. */
static const char *const builtin_help[NBUILTINS] = {
	"Seconds since the container's first process (PID 1) started.",
	"Start time of the container's first process (PID 1), seconds since the epoch.",
	"User and system CPU time of tally-httpd, in seconds.",
	"Resident memory of tally-httpd, in bytes.",
	"Virtual memory of tally-httpd, in bytes.",
	"Open file descriptors of tally-httpd.",
	"Maximum open file descriptors of tally-httpd (soft limit).",
	"Start time of tally-httpd, seconds since the epoch.",
	"HTTP requests answered by tally-httpd, by status code.",
	"/metrics responses served, by format and content encoding.",
	"Client connections open now.",
	"Connections refused with 503: every connection was busy sending a response, or no descriptor was left.",
	"Connections closed to make room for a new one (lingering, idle, then slow request heads first).",
	"Most client connections open at once: HTTPD_MAX_CONNS, or fewer under a low RLIMIT_NOFILE.",
	"*.prom files parsed since start; unchanged files are not parsed again.",
	"Rebuilds of the merged metrics after a *.prom file changed.",
	"*.prom files left out because the directory holds more than TF_MAX_FILES.",
};

/* Appends v in decimal. */
static int put_u64(struct buf *b, unsigned long long v)
{
	char d[24];
	size_t i = sizeof d;

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf_put(b, d + i, sizeof d - i);
}

/* Appends ms as seconds with three decimals ("12.034"). */
static int put_ms(struct buf *b, unsigned long long ms)
{
	char frac[3];

	frac[0] = (char)('0' + ms / 100 % 10);
	frac[1] = (char)('0' + ms / 10 % 10);
	frac[2] = (char)('0' + ms % 10);
	if (put_u64(b, ms / 1000) < 0 || buf_putc(b, '.') < 0)
		return -1;
	return buf_put(b, frac, sizeof frac);
}

/* Appends "NAME{labels} v\n" of builtins[i] (labels "" for none), with the
 * family's HELP and TYPE first when meta_too. */
static int put_sample_u(struct buf *b, int om, size_t i, int meta_too, const char *labels,
	unsigned long long v)
{
	if (meta_too && buf_put(b, meta[om][i].p, meta[om][i].len) < 0)
		return -1;
	if (buf_puts(b, builtins[i].name) < 0)
		return -1;
	if (*labels && (buf_putc(b, '{') < 0 || buf_puts(b, labels) < 0 || buf_putc(b, '}') < 0))
		return -1;
	return buf_putc(b, ' ') < 0 || put_u64(b, v) < 0 ? -1 : buf_putc(b, '\n');
}

/* Appends builtins[i]'s HELP, TYPE and one sample of value v (any double). */
static int put_sample_d(struct buf *b, int om, size_t i, double v)
{
	char val[PROM_VALUE_BUFSZ];

	prom_format_value(v, val);
	return buf_put(b, meta[om][i].p, meta[om][i].len) < 0 ? -1
		: buf_printf(b, "%s %s\n", builtins[i].name, val);
}

/* Builds meta[][] and the constant start-time lines; once at start. */
static int init_builtins(void)
{
	char val[PROM_VALUE_BUFSZ];
	size_t i;
	int om;

	for (om = 0; om < 2; om++) {
		for (i = 0; i < NBUILTINS; i++)
			if (textfile_put_meta(&meta[om][i], om, builtins[i].name, builtins[i].type,
			                      builtin_help[i]) < 0)
				return -1;
		if (container_start_ok) {
			prom_format_value(container_start_s, val);
			snprintf(start_line[om], sizeof start_line[om], "%s%s %s\n",
			         meta[om][1].p, builtins[1].name, val);
		}
	}
	return 0;
}

/* Re-reads the process metrics when due and renders proc_part[]. */
static int refresh_proc_part(void)
{
	long long at = proc.at;
	int om;

	proc_refresh(now_ms());
	if (at == proc.at && proc_part[0].p)
		return 0;
	for (om = 0; om < 2; om++) {
		struct buf *b = &proc_part[om];

		buf_reset(b);
		if (buf_put(b, "", 0) < 0)
			return -1;
		if (!proc.ok)
			continue;
		if (put_sample_d(b, om, 2, proc.cpu) < 0 || put_sample_d(b, om, 3, proc.rss) < 0 ||
		    put_sample_d(b, om, 4, proc.vsize) < 0 || put_sample_d(b, om, 5, proc.fds) < 0 ||
		    (proc.max_fds >= 0 && put_sample_d(b, om, 6, proc.max_fds) < 0) ||
		    put_sample_d(b, om, 7, proc.start) < 0)
			return -1;
	}
	return 0;
}

/* Appends the built-in families, in text format (om 0) or OpenMetrics. */
static int put_builtins(struct buf *b, int om)
{
	static const char *const scrape_labels[2][2] = {
		{ "encoding=\"identity\",format=\"text\"", "encoding=\"gzip\",format=\"text\"" },
		{ "encoding=\"identity\",format=\"openmetrics\"", "encoding=\"gzip\",format=\"openmetrics\"" },
	};
	char lab[32];
	size_t i;
	int first = 1, x, z;

	if (container_start_ok) {
		double up = boot_now() - container_start_boot_s;

		if (buf_put(b, meta[om][0].p, meta[om][0].len) < 0 ||
		    buf_puts(b, "container_uptime_seconds ") < 0 ||
		    put_ms(b, up > 0 ? (unsigned long long)(up * 1000) : 0) < 0 ||
		    buf_putc(b, '\n') < 0 || buf_puts(b, start_line[om]) < 0)
			return -1;
	}
	if (refresh_proc_part() < 0 || buf_put(b, proc_part[om].p, proc_part[om].len) < 0)
		return -1;
	for (i = 0; i < NCODES; i++) {
		if (!requests[i])
			continue;
		snprintf(lab, sizeof lab, "code=\"%d\"", counted_codes[i]);
		if (put_sample_u(b, om, 8, first, lab, requests[i]) < 0)
			return -1;
		first = 0;
	}
	if (first && buf_put(b, meta[om][8].p, meta[om][8].len) < 0)
		return -1;
	for (x = 0; x < 2; x++)
		for (z = 0; z < 2; z++)
			if (put_sample_u(b, om, 9, x + z == 0, scrape_labels[x][z], scrapes[x][z]) < 0)
				return -1;
	if (put_sample_u(b, om, 10, 1, "", nconns) < 0 ||
	    put_sample_u(b, om, 11, 1, "", refused) < 0 ||
	    put_sample_u(b, om, 12, 1, "", evicted) < 0 ||
	    put_sample_u(b, om, 13, 1, "", max_conns) < 0 ||
	    put_sample_u(b, om, 14, 1, "", tf.parses) < 0 ||
	    put_sample_u(b, om, 15, 1, "", rebuilds) < 0 ||
	    put_sample_u(b, om, 16, 1, "", tf.skipped) < 0)
		return -1;
	return 0;
}

/* ---- snapshots ------------------------------------------------------------------ */

/* Drops one reference to s, freeing it with the last. */
static void snap_unref(struct snap *s)
{
	int i;

	if (!s || --s->refs > 0)
		return;
	for (i = 0; i < 2; i++) {
		buf_free(&s->body[i]);
		buf_free(&s->gz[i].z);
	}
	free(s);
}

/* Makes a new cur from tf's freshly built bodies (taken over, not copied).
 * Returns 0, or -1 with errno ENOMEM. */
static int snap_take(void)
{
	struct snap *s = calloc(1, sizeof *s);

	if (!s)
		return -1;
	s->refs = 1;
	s->om_ok = tf.om_ok;
	s->body[0] = tf.text;
	s->body[1] = tf.om;
	memset(&tf.text, 0, sizeof tf.text);
	memset(&tf.om, 0, sizeof tf.om);
	if (buf_put(&s->body[0], "", 0) < 0 || buf_put(&s->body[1], "", 0) < 0) {
		snap_unref(s);
		return -1;
	}
	snap_unref(cur);
	cur = s;
	return 0;
}

/* ---- the metrics directory ---------------------------------------------------- */

/* Mask of the inotify events that can change what a directory serves. */
#define HTTPD_WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
	IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* Opens the inotify descriptor (ino_fd stays -1 where there is none). */
static void watch_init(void)
{
	ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	rewatch = 1;
}

/* Adds a watch on every directory not watched yet; a directory that does
 * not exist now stays unwatched (listed on every request) until it does. */
static void watch_dirs(void)
{
	size_t i;

	if (ino_fd < 0)
		return;
	for (i = 0; i < ndirs; i++)
		if (rewatch || !watched[i])
			watched[i] = inotify_add_watch(ino_fd, dirs[i], HTTPD_WATCH_MASK) >= 0;
	rewatch = 0;
}

/* Reads every pending inotify event; sets ino_dirty when there was one (or
 * the descriptor failed, which turns inotify off). */
static void watch_drain(void)
{
	char ev[HTTPD_INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;
	ssize_t r;

	for (;;) {
		r = read(ino_fd, ev, sizeof ev);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0) {
			close(ino_fd); /* broken: list on every request from now on */
			ino_fd = -1;
			any = 1;
			break;
		}
		any = 1;
		{
			const char *p = ev;

			while (p + sizeof(struct inotify_event) <= ev + r) {
				const struct inotify_event *e = (const struct inotify_event *)(const void *)p;

				if (e->mask & (IN_IGNORED | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF))
					rewatch = 1;
				p += sizeof *e + e->len;
			}
		}
	}
	if (any)
		ino_dirty = 1;
}

/* Returns 1 when the directories need no listing now: every one is
 * watched, inotify reported no change since the last listing (serve()
 * polls ino_fd after every client, so an event that came before a request
 * is seen before it), and that listing is less than HTTPD_RESCAN_MS old
 * (which bounds what inotify cannot see: a symbolic link's target
 * elsewhere, network file systems). */
static int quiet(long long now)
{
	size_t i;

	if (ino_fd < 0 || !cur || rewatch || ino_dirty || now - last_scan_ms >= HTTPD_RESCAN_MS)
		return 0;
	for (i = 0; i < ndirs; i++)
		if (!watched[i] || dir_errs[i])
			return 0;
	return 1;
}

/* Brings tf and cur up to date; a directory that cannot be listed is
 * warned about once per failing spell and keeps its files as last read.
 * Lists the directories only when inotify saw a change or HTTPD_RESCAN_MS
 * passed. Returns 0, or -1 with errno set when no directory can be listed
 * or ENOMEM. */
static int refresh(void)
{
	long long now = now_ms();
	size_t i;
	int changed, rc, err;

	if (quiet(now))
		return 0;
	if (ino_fd >= 0) {
		watch_drain();  /* events from now on mean a change after this listing */
		ino_dirty = 0;
		watch_dirs();
	}
	last_scan_ms = now;
	rc = textfile_refresh_dirs(&tf, dirs, ndirs, &changed, dir_errs);
	err = errno;
	if (rc < 0 && err == ENOMEM)
		return -1;
	for (i = 0; i < ndirs; i++) {
		if (dir_errs[i] && !dir_failing[i]) {
			errno = dir_errs[i];
			warn_sys("unable to read directory %s", dirs[i]);
		}
		dir_failing[i] = dir_errs[i] != 0;
	}
	if (rc < 0) {
		errno = err;
		return -1;
	}
	if (!changed && cur)
		return 0;
	if (snap_take() < 0)
		return -1;
	rebuilds++;
	for (i = 0; i < tf.n; i++)
		if (tf.f[i].error)
			warnx_msg("%s/%s left out: %s", dirs[tf.f[i].dir], tf.f[i].name,
			          tf.f[i].err);
	if (tf.skipped)
		warnx_msg("%s: %zu files past the first %d of a directory left out",
		          dirs[0], tf.skipped, TF_MAX_FILES);
	return 0;
}

/* Builds g, the gzip rendering (header and non-final blocks) of
 * body[0..n), unless built. Returns 0, or -1 with errno ENOMEM. */
static int gz_static(struct gzcache *g, const char *body, size_t n)
{
	if (g->built)
		return 0;
	buf_reset(&g->z);
	if (gz_header(&g->z) < 0 || gz_deflate(&g->z, body, n, 0) < 0)
		return -1;
	g->crc = gz_crc32(0, body, n);
	g->built = 1;
	return 0;
}

/* ---- responses ------------------------------------------------------------------ */

/* A piece of a response body. */
struct part {
	const char *p;
	size_t n;
	int shared; /* 1: p lies in the snapshot cur; send it from there */
};

/* Counts one response with status in requests[]. */
static void count_status(int status)
{
	size_t i;

	for (i = 0; i < NCODES; i++)
		if (counted_codes[i] == status)
			requests[i]++;
}

/* Appends a whole response to c->out: the head, then (unless head_only)
 * the n parts; a part with shared set is not copied but sent from the
 * snapshot cur (at most one such part, and only parts after it are
 * copied after it). Returns 0, or -1 with errno ENOMEM. */
static int respond_parts(struct conn *c, int status, const char *ctype,
	const char *extra, int head_only, const struct part *parts, size_t n)
{
	size_t len = 0, i;

	for (i = 0; i < n; i++)
		len += parts[i].n;
	count_status(status);
	if (http_put_response(&c->out, status, ctype, len, !c->close_after, extra) < 0)
		return -1;
	c->head_len = c->out.len;
	if (head_only)
		return 0;
	for (i = 0; i < n; i++) {
		if (parts[i].shared && parts[i].n) {
			c->head_len = c->out.len;
			c->shared = parts[i].p;
			c->shared_len = parts[i].n;
			c->snap = cur;
			cur->refs++;
		} else if (parts[i].n && buf_put(&c->out, parts[i].p, parts[i].n) < 0) {
			return -1;
		}
	}
	if (!c->shared_len)
		c->head_len = c->out.len;
	return 0;
}

/* Appends a response with one body piece. Returns 0, or -1 with errno. */
static int respond(struct conn *c, int status, const char *ctype,
	const char *data, size_t len, int head_only, const char *extra)
{
	struct part p;

	p.p = data;
	p.n = len;
	p.shared = 0;
	return respond_parts(c, status, ctype, extra, head_only, &p, 1);
}

/* Returns 1 if the request path equals the literal path lit. */
static int path_is(const struct http_request *req, const char *lit)
{
	size_t n = strlen(lit);

	return req->path_len == n && memcmp(req->path, lit, n) == 0;
}

/* Returns 1 if the query of the target has a parameter named name
 * ("name" or "name=..."). */
static int has_param(const struct http_request *req, const char *name)
{
	const char *q = memchr(req->target, '?', req->target_len);
	const char *e = req->target + req->target_len, *a;
	size_t n = strlen(name);

	if (!q)
		return 0;
	for (a = q + 1; a < e;) {
		const char *amp = memchr(a, '&', (size_t)(e - a));
		const char *end = amp ? amp : e;

		if ((size_t)(end - a) >= n && !memcmp(a, name, n) &&
		    ((size_t)(end - a) == n || a[n] == '='))
			return 1;
		a = end + 1;
	}
	return 0;
}

/* Appends the /metrics response to c->out. Returns 0, or -1 with errno. */
static int respond_metrics(struct conn *c, const struct http_request *req, int head_only)
{
	static const char unreadable[] = "metrics directory unreadable\n";
	static const char too_large[] = "metrics too large\n";
	struct part parts[2];
	const struct buf *stat_body;
	struct gzcache *g;
	int om, gz;
	uint32_t crc;

	if (refresh() < 0) {
		if (errno == ENOMEM)
			return -1;
		return respond(c, 503, ct_text, unreadable, sizeof unreadable - 1,
		               head_only, NULL);
	}
	om = cur->om_ok && http_wants_openmetrics(req->accept, req->accept_len);
	gz = http_wants_gzip(req->accept_encoding, req->accept_encoding_len);
	stat_body = &cur->body[om];
	scrapes[om][gz]++; /* before the tail, so a scrape counts itself */
	buf_reset(&tail);
	if (put_builtins(&tail, om) < 0 || (om && buf_puts(&tail, "# EOF\n") < 0))
		return -1;
	if (stat_body->len + tail.len > HTTPD_MAX_BODY) {
		warnx_msg("%s: metrics larger than %u bytes", dirs[0], HTTPD_MAX_BODY);
		return respond(c, 503, ct_text, too_large, sizeof too_large - 1,
		               head_only, NULL);
	}
	if (!gz) {
		parts[0].p = stat_body->p;
		parts[0].n = stat_body->len;
		parts[0].shared = 1;
		parts[1].p = tail.p;
		parts[1].n = tail.len;
		parts[1].shared = 0;
		return respond_parts(c, 200, om ? ct_om : ct_text04,
			"Vary: Accept, Accept-Encoding\r\n", head_only, parts, 2);
	}
	g = &cur->gz[om];
	if (gz_static(g, stat_body->p, stat_body->len) < 0)
		return -1;
	buf_reset(&ztail);
	crc = gz_crc32(g->crc, tail.p, tail.len);
	if (gz_deflate(&ztail, tail.p, tail.len, 1) < 0 ||
	    gz_trailer(&ztail, crc, (uint64_t)stat_body->len + tail.len) < 0)
		return -1;
	parts[0].p = g->z.p;
	parts[0].n = g->z.len;
	parts[0].shared = 1;
	parts[1].p = ztail.p;
	parts[1].n = ztail.len;
	parts[1].shared = 0;
	return respond_parts(c, 200, om ? ct_om : ct_text04,
		"Content-Encoding: gzip\r\nVary: Accept, Accept-Encoding\r\n",
		head_only, parts, 2);
}

/* The readiness checks, in the order they are reported. */
struct ready {
	int dir_ok;
	int hc_ok;
	char dir_msg[TF_ERR_LEN + 64];
	char hc_msg[TF_ERR_LEN + 64];
};

/* Returns the real-time clock in seconds. */
static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sets *when to the time of healthcheck result f:
 * container_healthcheck_last_run_timestamp_seconds, else the file's
 * modification time. */
static void result_time(const struct tf_file *f, double *when)
{
	const struct prom_family *fam = NULL;

	if (!f->error)
		fam = prom_family_find(&f->doc, "container_healthcheck_last_run_timestamp_seconds");
	if (fam && fam->n && fam->s[0].value == fam->s[0].value)
		*when = fam->s[0].value;
	else
		*when = (double)f->mtime_ns / 1e9;
}

/* Returns the latest healthcheck result: the healthcheck.prom of any
 * directory with the newest time (result_time), or NULL; sets *when. */
static const struct tf_file *latest_result(double *when)
{
	const struct tf_file *best = NULL, *f;
	double t;
	size_t i;

	for (i = 0; i < ndirs; i++) {
		f = textfile_find_in(&tf, i, HTTPD_HEALTH_FILE);
		if (!f)
			continue;
		result_time(f, &t);
		if (!best || t > *when) {
			best = f;
			*when = t;
		}
	}
	return best;
}

/* Runs the readiness checks into r. Returns 1 when all pass, else 0. */
static int readiness(struct ready *r)
{
	const struct tf_file *f;
	const struct prom_family *fam;
	double when = 0, age;
	size_t i;

	memset(r, 0, sizeof *r);
	if (refresh() < 0) {
		snprintf(r->dir_msg, sizeof r->dir_msg, "%s: %s", dirs[0], strerror(errno));
		snprintf(r->hc_msg, sizeof r->hc_msg, "metrics directory unreadable");
		return 0;
	}
	r->dir_ok = 1;
	for (i = 0; i < ndirs; i++)
		if (dir_errs[i]) {
			r->dir_ok = 0;
			snprintf(r->dir_msg, sizeof r->dir_msg, "%s: %s", dirs[i],
			         strerror(dir_errs[i]));
			break;
		}
	f = latest_result(&when);
	age = wall_now() - when;
	if (!f) {
		r->hc_ok = 1;
		snprintf(r->hc_msg, sizeof r->hc_msg, "no result yet");
	} else if (container_start_ok && when + 1 < container_start_s) {
		r->hc_ok = 1; /* recorded before this container started: the image's build */
		snprintf(r->hc_msg, sizeof r->hc_msg, "no result since the container started");
	} else if (health_max_age_s && age > (double)health_max_age_s) {
		snprintf(r->hc_msg, sizeof r->hc_msg,
		         "the latest result is %lld s old (limit %lld s)", (long long)age,
		         health_max_age_s);
	} else if (f->error) {
		snprintf(r->hc_msg, sizeof r->hc_msg, HTTPD_HEALTH_FILE " left out: %s", f->err);
	} else if (!(fam = prom_family_find(&f->doc, "container_healthcheck_status")) ||
	           fam->n == 0) {
		r->hc_ok = 1;
		snprintf(r->hc_msg, sizeof r->hc_msg, "no result yet");
	} else if (fam->s[0].value == 1) {
		r->hc_ok = 1;
	} else {
		char v[PROM_VALUE_BUFSZ];

		prom_format_value(fam->s[0].value, v);
		snprintf(r->hc_msg, sizeof r->hc_msg, "container_healthcheck_status is %s", v);
	}
	return r->dir_ok && r->hc_ok;
}

/* Appends the /readyz response: "ok" or, with ?verbose, one line per
 * check in the Kubernetes style. Returns 0, or -1 with errno. */
static int respond_readyz(struct conn *c, const struct http_request *req, int head_only)
{
	struct ready r;
	int ok = readiness(&r);

	buf_reset(&scratch);
	if (has_param(req, "verbose")) {
		if (buf_printf(&scratch, "[%c]metrics-dir %s%s%s\n", r.dir_ok ? '+' : '-',
		        r.dir_ok ? "ok" : "failed", r.dir_ok ? "" : ": ", r.dir_msg) < 0 ||
		    buf_printf(&scratch, "[%c]healthcheck %s%s%s\n", r.hc_ok ? '+' : '-',
		        r.hc_ok ? "ok" : "failed", r.hc_ok ? "" : ": ", r.hc_ok ? "" : r.hc_msg) < 0)
			return -1;
	}
	if (buf_puts(&scratch, ok ? (scratch.len ? "readyz check passed\n" : "ok\n")
	                          : "readyz check failed\n") < 0)
		return -1;
	return respond(c, ok ? 200 : 503, ct_text, scratch.p, scratch.len, head_only, NULL);
}

/* Appends one check object of /health to scratch. */
static int put_check(const char *name, int ok, const char *msg)
{
	if (buf_puts(&scratch, "{\"name\":") < 0 ||
	    json_put_string(&scratch, name, strlen(name)) < 0 ||
	    buf_printf(&scratch, ",\"status\":\"%s\"", ok ? "ok" : "failed") < 0)
		return -1;
	if (*msg && (buf_puts(&scratch, ",\"message\":") < 0 ||
	    json_put_string(&scratch, msg, strlen(msg)) < 0))
		return -1;
	return buf_putc(&scratch, '}');
}

/* Appends the /health response: readiness as JSON with uptimes. */
static int respond_health(struct conn *c, int head_only)
{
	char v[PROM_VALUE_BUFSZ];
	struct ready r;
	int ok = readiness(&r);

	proc_refresh(now_ms());
	buf_reset(&scratch);
	if (buf_printf(&scratch, "{\"status\":\"%s\"", ok ? "ok" : "failed") < 0)
		return -1;
	if (container_start_ok) {
		prom_format_value(boot_now() - container_start_boot_s, v);
		if (buf_printf(&scratch, ",\"uptime_seconds\":%s", v) < 0)
			return -1;
		prom_format_value(container_start_s, v);
		if (buf_printf(&scratch, ",\"start_time_seconds\":%s", v) < 0)
			return -1;
	}
	if (proc.ok) {
		prom_format_value(wall_now() - proc.start, v);
		if (buf_printf(&scratch, ",\"exporter_uptime_seconds\":%s", v) < 0)
			return -1;
	}
	if (buf_puts(&scratch, ",\"checks\":[") < 0 ||
	    put_check("metrics-dir", r.dir_ok, r.dir_msg) < 0 || buf_putc(&scratch, ',') < 0 ||
	    put_check("healthcheck", r.hc_ok, r.hc_msg) < 0 || buf_puts(&scratch, "]}\n") < 0)
		return -1;
	return respond(c, ok ? 200 : 503, ct_json, scratch.p, scratch.len, head_only, NULL);
}

/* Appends s[0..n) to b with &, <, >, " and ' as HTML entities. */
static int html_escape(struct buf *b, const char *s, size_t n)
{
	static const char *const ent[256] = {
		['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
		['"'] = "&quot;", ['\''] = "&#39;",
	};
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *e = ent[(unsigned char)s[i]];

		if (!e)
			continue;
		if (buf_put(b, s + run, i - run) < 0 || buf_puts(b, e) < 0)
			return -1;
		run = i + 1;
	}
	return buf_put(b, s + run, n - run);
}

/* Appends the / page: links to the endpoints and the build summary. */
static int respond_index(struct conn *c, int head_only)
{
	static const char top[] =
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
		"<title>tally exporter</title></head>\n<body>\n<h1>tally exporter</h1>\n<ul>\n"
		"<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\n"
		"<li><a href=\"/healthz\">/healthz</a>: liveness</li>\n"
		"<li><a href=\"/readyz?verbose\">/readyz?verbose</a>: readiness, each check</li>\n"
		"<li><a href=\"/health\">/health</a>: readiness and uptime as JSON</li>\n"
		"</ul>\n<h2>Build summary</h2>\n";
	struct buf path = { 0 }, text = { 0 };
	int rc = -1, have;

	buf_reset(&scratch);
	if (buf_puts(&scratch, top) < 0 ||
	    buf_printf(&path, "%s/master-summary.log", log_dir) < 0)
		goto out;
	have = file_read_all(path.p, HTTPD_SUMMARY_MAX, &text) == 0;
	if (have && prom_utf8_ok(text.p ? text.p : "", text.len)) {
		if (buf_puts(&scratch, "<pre>") < 0 ||
		    html_escape(&scratch, text.p ? text.p : "", text.len) < 0 ||
		    buf_puts(&scratch, "</pre>\n") < 0)
			goto out;
	} else if (buf_puts(&scratch, "<p>No build summary (") < 0 ||
	           html_escape(&scratch, path.p, path.len) < 0 ||
	           buf_puts(&scratch, have ? " is not UTF-8 text).</p>\n"
	                                   : " is absent, unreadable or too large).</p>\n") < 0) {
		goto out;
	}
	if (buf_puts(&scratch, "</body>\n</html>\n") < 0)
		goto out;
	rc = respond(c, 200, ct_html, scratch.p, scratch.len, head_only, NULL);
out:
	buf_free(&path);
	buf_free(&text);
	return rc;
}

/* Returns 1 if path p is served behind --auth-file. */
static int needs_auth(const struct http_request *req)
{
	return auth_token.len && !path_is(req, "/healthz") && !path_is(req, "/readyz");
}

/* Appends the response to req to c->out. Returns 0, or -1 with errno. */
static int handle_request(struct conn *c, const struct http_request *req)
{
	static const char ok[] = "ok\n";
	static const char not_found[] = "not found\n";
	static const char not_allowed[] = "method not allowed\n";
	static const char too_large[] = "request body too large\n";
	static const char unauthorized[] = "unauthorized\n";
	int head_only = req->method == HTTP_HEAD;
	int known = path_is(req, "/metrics") || path_is(req, "/healthz") ||
	            path_is(req, "/readyz") || path_is(req, "/health") || path_is(req, "/");

	c->close_after = !req->keep_alive || stop_flag;
	if (req->chunked || req->content_length > HTTPD_MAX_REQUEST_BODY) {
		c->close_after = 1;
		return respond(c, 413, ct_text, too_large, sizeof too_large - 1, head_only, NULL);
	}
	if (!known)
		return respond(c, 404, ct_text, not_found, sizeof not_found - 1,
		               head_only, NULL);
	if (req->method == HTTP_OTHER)
		return respond(c, 405, ct_text, not_allowed,
		               sizeof not_allowed - 1, 0, allow_get_head);
	if (needs_auth(req) && !http_basic_ok(req->authorization, req->authorization_len,
	                                      auth_token.p, auth_token.len))
		return respond(c, 401, ct_text, unauthorized, sizeof unauthorized - 1,
		               head_only, auth_header);
	if (path_is(req, "/healthz"))
		return respond(c, 200, ct_text, ok, sizeof ok - 1, head_only, NULL);
	if (path_is(req, "/readyz"))
		return respond_readyz(c, req, head_only);
	if (path_is(req, "/health"))
		return respond_health(c, head_only);
	if (path_is(req, "/"))
		return respond_index(c, head_only);
	return respond_metrics(c, req, head_only);
}

/* Appends the error response for a request the parser refused or that
 * timed out (400, 408, 414, 431 or 505); the connection closes after it. */
static int respond_refused(struct conn *c, int status)
{
	char text[64];
	int n;

	c->close_after = 1;
	n = snprintf(text, sizeof text, "%s\n", http_reason(status));
	return respond(c, status, ct_text, text, (size_t)n, 0, NULL);
}

/* ---- connections ----------------------------------------------------------------- */

/* Forgets c's response: its buffer and its share of a snapshot. */
static void conn_reset_out(struct conn *c)
{
	if (c->out.cap > HTTPD_BUF_KEEP)
		buf_free(&c->out);
	else
		buf_reset(&c->out);
	snap_unref(c->snap);
	c->snap = NULL;
	c->shared = NULL;
	c->shared_len = 0;
	c->head_len = 0;
	c->out_off = 0;
}

/* Closes c and frees its slot. */
static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->state = CONN_FREE;
	c->in_len = 0;
	conn_reset_out(c);
	buf_free(&c->out);
	nconns--;
}

/* Starts writing what c->out holds. */
static void conn_start_write(struct conn *c)
{
	c->state = CONN_WRITING;
	c->out_off = 0;
	c->deadline = now_ms() + HTTPD_WRITE_TIMEOUT_MS;
}

/* Parses what c has read. Returns 1 if a response is now in c->out (state
 * CONN_WRITING), 0 if more input is needed, -1 if c was closed. */
static int conn_parse(struct conn *c)
{
	struct http_request req;
	int rc;

	rc = http_parse_request(c->in, c->in_len, &req);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		c->in_len = 0;
		rc = respond_refused(c, -rc);
	} else {
		int used = rc;

		rc = handle_request(c, &req);
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (size_t)used;
	}
	if (rc < 0) {
		warn_sys("unable to build a response");
		conn_close(c);
		return -1;
	}
	conn_start_write(c);
	return 1;
}

/* Writes what it can of the response (out head, shared, out rest).
 * Returns 1 when all is written, 0 when the socket is full, -1 if c was
 * closed. */
static int conn_flush(struct conn *c)
{
	size_t total = c->out.len + c->shared_len, off, k;
	struct iovec iov[3];
	ssize_t w;
	int n;

	while (c->out_off < total) {
		const char *seg[3];
		size_t len[3];

		seg[0] = c->out.p;
		len[0] = c->head_len;
		seg[1] = c->shared;
		len[1] = c->shared_len;
		seg[2] = c->out.p + c->head_len;
		len[2] = c->out.len - c->head_len;
		off = c->out_off;
		for (k = 0, n = 0; k < 3; k++) {
			if (off >= len[k]) {
				off -= len[k];
				continue;
			}
			iov[n].iov_base = (void *)(seg[k] + off);
			iov[n].iov_len = len[k] - off;
			off = 0;
			n++;
		}
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
		c->deadline = now_ms() + HTTPD_WRITE_TIMEOUT_MS;
	}
	conn_reset_out(c);
	return 1;
}

/* Moves c on as far as it can go without blocking: parse, respond, write,
 * then the next pipelined request or closing. */
static void conn_run(struct conn *c)
{
	for (;;) {
		if (c->state == CONN_READING && conn_parse(c) <= 0)
			return;
		if (c->state != CONN_WRITING || conn_flush(c) <= 0)
			return;
		if (c->close_after || stop_flag) {
			shutdown(c->fd, SHUT_WR);
			c->state = CONN_CLOSING;
			c->in_len = 0;
			c->drained = 0;
			c->deadline = now_ms() + HTTPD_LINGER_MS;
			return;
		}
		c->state = CONN_READING;
		c->deadline = now_ms() + (c->in_len ? head_timeout_ms : idle_timeout_ms);
		if (c->in_len == 0)
			return;
	}
}

/* Reads into c->in and handles what arrived; closes c on EOF or error. */
static void conn_read(struct conn *c)
{
	ssize_t r;

	r = read(c->fd, c->in + c->in_len, HTTP_MAX_HEAD - c->in_len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		conn_close(c); /* EOF (a partial request is dropped) or error */
		return;
	}
	if (c->in_len == 0)
		c->deadline = now_ms() + head_timeout_ms; /* a request head begins */
	c->in_len += (size_t)r;
	conn_run(c);
}

/* Discards input on a closing connection; closes it at EOF, on error, or
 * after HTTPD_LINGER_MAX bytes. */
static void conn_drain(struct conn *c)
{
	ssize_t r;

	for (;;) {
		r = read(c->fd, c->in, HTTP_MAX_HEAD);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0)
			break;
		c->drained += (size_t)r;
		if (c->drained > HTTPD_LINGER_MAX)
			break;
	}
	conn_close(c);
}

/* Acts on c's passed deadline: a half-sent request head gets 408, any
 * other state is closed. */
static void conn_expire(struct conn *c)
{
	if (c->state == CONN_READING && c->in_len > 0) {
		c->in_len = 0;
		if (respond_refused(c, 408) < 0) {
			conn_close(c);
			return;
		}
		conn_start_write(c);
		conn_run(c);
		return;
	}
	conn_close(c);
}

/* Sends the 503 "too many clients" to fd with one non-blocking write (best
 * effort), closes it and counts the refusal. */
static void refuse(int fd)
{
	(void)!write(fd, full_response, sizeof full_response - 1);
	close(fd);
	refused++;
	count_status(503);
}

/* Returns the connection best given up to make room for a new one, or
 * NULL when there is none. In this order, the oldest first (the one whose
 * deadline comes first, as all of a kind have the same timeout): one
 * lingering after its last response; one idle with no request bytes for
 * HTTPD_EVICT_GRACE_MS or more; one with a partial request head; one idle
 * for less (new, it may not have had time to send its request). Never one
 * sending a response, nor one accepted in this poll round. */
static struct conn *victim(void)
{
	long long fresh_after = now_ms() - HTTPD_EVICT_GRACE_MS + idle_timeout_ms;
	struct conn *best = NULL;
	int best_rank = 4, rank;
	size_t i;

	for (i = 0; i < HTTPD_MAX_CONNS; i++) {
		struct conn *c = &conns[i];

		if (c->state == CONN_CLOSING)
			rank = 0;
		else if (c->state == CONN_READING && c->in_len)
			rank = 2;
		else if (c->state == CONN_READING)
			rank = c->deadline > fresh_after ? 3 : 1;
		else
			continue;
		if (c->round == rounds)
			continue;
		if (rank < best_rank || (rank == best_rank && c->deadline < best->deadline)) {
			best = c;
			best_rank = rank;
		}
	}
	return best;
}

/* Closes c to make room for a new connection, without a response (as at
 * the idle timeout), and counts it. */
static void conn_evict(struct conn *c)
{
	conn_close(c);
	evicted++;
}

/* Returns a free slot for a new connection, giving up the victim() when
 * max_conns are open; NULL when every connection must be kept. */
static struct conn *conn_slot(void)
{
	struct conn *c;
	size_t i;

	if (nconns >= max_conns) {
		c = victim();
		if (c)
			conn_evict(c);
		return c;
	}
	for (i = 0; i < HTTPD_MAX_CONNS; i++)
		if (conns[i].state == CONN_FREE)
			return &conns[i];
	return NULL;
}

/* Out of descriptors with no connection to give up: lets the spare
 * descriptor go, accepts one connection in its place, refuses it and takes
 * the spare back. Returns 0 when a connection was refused so, else -1 with
 * errno set (EMFILE when there is no spare, EAGAIN when none was pending). */
static int refuse_with_spare(int lfd)
{
	int fd, err;

	if (spare_fd < 0) {
		errno = EMFILE;
		return -1;
	}
	close(spare_fd);
	fd = accept(lfd, NULL, NULL);
	err = errno;
	if (fd >= 0)
		refuse(fd);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Sets max_conns to HTTPD_MAX_CONNS, or to what RLIMIT_NOFILE leaves after
 * the descriptors open now other than connections (other_fds) and
 * HTTPD_FD_RESERVE, at least 1; says so when that changes the cap. When
 * /proc does not tell what is open, that is taken to be guess descriptors
 * (guess < 0: the cap stays as it is). */
static void init_conn_cap(int guess)
{
	struct rlimit rl;
	long long room;
	size_t old = max_conns;
	int open_now = count_fds();

	if (open_now < 0 && guess < 0)
		return;
	other_fds = open_now < 0 ? guess : open_now - (long long)nconns;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	room = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > HTTPD_RLIM_BIG ? HTTPD_RLIM_BIG
		: (long long)rl.rlim_cur - other_fds - HTTPD_FD_RESERVE;
	max_conns = room >= HTTPD_MAX_CONNS ? HTTPD_MAX_CONNS : room < 1 ? 1 : (size_t)room;
	if (max_conns != old)
		warnx_msg("RLIMIT_NOFILE %llu with %lld other descriptors open: at most %zu connections",
		          (unsigned long long)rl.rlim_cur, other_fds, max_conns);
}

/* Raises the soft RLIMIT_NOFILE towards the hard one, as far as
 * HTTPD_MAX_CONNS connections and HTTPD_NOFILE_SPARE more descriptors need
 * (the common soft limit of 1024 would leave fewer than 1,024 connections;
 * Go's runtime and nginx's worker_rlimit_nofile do the same). Quietly
 * keeps the limit when it cannot. */
static void raise_nofile(void)
{
	struct rlimit rl;
	rlim_t want = HTTPD_MAX_CONNS + HTTPD_NOFILE_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		want = rl.rlim_max;
	if (want > rl.rlim_cur) {
		rl.rlim_cur = want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Called when accept() failed with EMFILE or poll() with EINVAL: the
 * descriptor limit was lowered under the server, or descriptors are held
 * elsewhere. Lowers max_conns to what the limit leaves (init_conn_cap) and
 * at most to HTTPD_FD_RESERVE below the connections open, gives up
 * connections (victim()) down to it, and closes any others (even sending)
 * that poll() could not take. SIGHUP re-reads the limit. Returns the
 * number of connections closed. */
static size_t shrink_cap(void)
{
	size_t want = nconns > HTTPD_FD_RESERVE ? nconns - HTTPD_FD_RESERVE : 1;
	size_t before = nconns, pollable = HTTPD_MAX_CONNS, i;
	struct rlimit rl;
	long long room;
	struct conn *c;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < HTTPD_RLIM_BIG) {
		room = (long long)rl.rlim_cur - other_fds - HTTPD_FD_RESERVE;
		if (room < (long long)want)
			want = room < 1 ? 1 : (size_t)room;
		/* poll() refuses more descriptors than the limit: the
		 * listener and inotify come with the connections */
		pollable = rl.rlim_cur > 2 ? (size_t)rl.rlim_cur - 2 : 0;
	}
	if (want < max_conns) {
		max_conns = want;
		warnx_msg("out of file descriptors: at most %zu connections until SIGHUP", max_conns);
	}
	while (nconns > max_conns && (c = victim()))
		conn_evict(c);
	for (i = 0; i < HTTPD_MAX_CONNS && nconns > pollable; i++)
		if (conns[i].state != CONN_FREE)
			conn_evict(&conns[i]);
	return before - nconns;
}

/* Accepts pending connections, at most HTTPD_ACCEPT_BATCH (and half the
 * cap) per poll round, so that each is read once before it can be given up
 * for a newer one. Past max_conns a new connection takes the slot of the
 * victim(); when there is none it gets the 503 and is closed. At EMFILE or
 * ENFILE a victim() is given up for it, else the spare descriptor. Returns
 * 0, or -1 when accepting must pause (no descriptor left at all, or no
 * kernel memory). */
static int accept_all(int lfd)
{
	size_t k, batch = max_conns / 2;
	struct conn *c;
	int fd;

	if (batch > HTTPD_ACCEPT_BATCH)
		batch = HTTPD_ACCEPT_BATCH;
	if (batch == 0)
		batch = 1;
	for (k = 0; k < batch; k++) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			if (errno == EMFILE)
				shrink_cap();
			if ((c = victim())) {
				conn_evict(c);
				continue;
			}
			if (refuse_with_spare(lfd) == 0)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			errno = EMFILE;
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				if (!accept_failing)
					warn_sys("unable to accept a connection (warned once per spell)");
				accept_failing = 1;
				return -1;
			}
			return 0; /* EAGAIN, or an error of that one connection */
		}
		accept_failing = 0;
		if (set_nonblock(fd) < 0) {
			close(fd);
			continue;
		}
		c = conn_slot();
		if (!c) {
			refuse(fd); /* every connection is sending a response */
			continue;
		}
		c->fd = fd;
		c->in = conn_in[c - conns];
		c->state = CONN_READING;
		c->close_after = 0;
		c->in_len = 0;
		c->out_off = 0;
		c->round = rounds;
		c->deadline = now_ms() + idle_timeout_ms;
		nconns++;
	}
	return 0;
}

/* Reads --auth-file into auth_token (base64 of its first line, which must
 * be "user:password"). Returns 0, or -1 with a message in msg. */
static int load_auth(char *msg, size_t size)
{
	struct buf text = { 0 };
	size_t n;
	char *nl;
	int rc = -1;

	buf_reset(&auth_token);
	if (!auth_file)
		return 0;
	if (file_read_all(auth_file, HTTPD_AUTH_MAX, &text) < 0) {
		snprintf(msg, size, "unable to read %s: %s", auth_file, strerror(errno));
		goto out;
	}
	n = text.len;
	nl = text.p ? memchr(text.p, '\n', n) : NULL;
	if (nl)
		n = (size_t)(nl - text.p);
	if (n && text.p[n - 1] == '\r')
		n--;
	if (n == 0 || !memchr(text.p, ':', n) || text.p[0] == ':') {
		snprintf(msg, size, "%s: the first line must be USER:PASSWORD", auth_file);
		goto out;
	}
	if (http_base64(&auth_token, text.p, n) < 0) {
		snprintf(msg, size, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (text.p)
		memset(text.p, 0, text.cap);
	buf_free(&text);
	return rc;
}

/* SIGHUP: re-reads --auth-file (keeping the old one if it fails) and drops
 * every cached file, so the next request re-reads the directory. */
static void reload(void)
{
	struct buf old = auth_token;
	char msg[256];

	memset(&auth_token, 0, sizeof auth_token);
	if (load_auth(msg, sizeof msg) < 0) {
		warnx_msg("reload: %s; keeping the previous credentials", msg);
		buf_free(&auth_token);
		auth_token = old;
	} else {
		buf_free(&old);
	}
	textfile_free(&tf);
	textfile_init(&tf, builtins, NBUILTINS);
	snap_unref(cur);
	cur = NULL;     /* the next request lists the directories */
	rewatch = 1;
	init_conn_cap(-1);
	warnx_msg("reloaded on SIGHUP");
}

/* Serves on lfd until SIGTERM or SIGINT. Each round answers the clients
 * first and accepts after them, so that a slot given up to a new
 * connection is not the one whose poll result is being handled. */
static void serve(int lfd)
{
	static struct pollfd pfd[2 + HTTPD_MAX_CONNS];
	static struct conn *who[2 + HTTPD_MAX_CONNS];
	long long now, wake, accept_after = 0;
	size_t i, np, nc, lfd_at, ino_at;
	int timeout, n;

	while (!stop_flag) {
		if (reload_flag) {
			reload_flag = 0;
			reload();
		}
		rounds++;
		now = now_ms();
		wake = now + HTTPD_POLL_MAX_MS;
		np = 0;
		for (i = 0; i < HTTPD_MAX_CONNS; i++) {
			struct conn *c = &conns[i];

			if (c->state == CONN_FREE)
				continue;
			pfd[np].fd = c->fd;
			pfd[np].events = c->state == CONN_WRITING ? POLLOUT : POLLIN;
			who[np++] = c;
			if (c->deadline < wake)
				wake = c->deadline;
		}
		nc = np;
		lfd_at = np;
		if (now >= accept_after) {
			pfd[np].fd = lfd;
			pfd[np++].events = POLLIN;
		} else if (accept_after < wake) {
			wake = accept_after;
		}
		/* inotify last: poll looks at it after the clients, so a change
		 * made before a request arrived is reported with that request */
		ino_at = np;
		if (ino_fd >= 0) {
			pfd[np].fd = ino_fd;
			pfd[np++].events = POLLIN;
		}
		timeout = wake > now ? (int)(wake - now) : 0;
		n = poll(pfd, (nfds_t)np, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL && shrink_cap() > 0)
				continue; /* more descriptors than RLIMIT_NOFILE now allows */
			die_sys(EXIT_SYS, "unable to poll");
		}
		if (ino_at < np && pfd[ino_at].revents)
			watch_drain(); /* before any request of this round is answered */
		for (i = 0; i < nc; i++) {
			struct conn *c = who[i];

			if (!pfd[i].revents)
				continue;
			if (c->state == CONN_READING)
				conn_read(c);
			else if (c->state == CONN_WRITING)
				conn_run(c);
			else if (c->state == CONN_CLOSING)
				conn_drain(c);
		}
		if (lfd_at < ino_at && pfd[lfd_at].revents && accept_all(lfd) < 0)
			accept_after = now_ms() + HTTPD_ACCEPT_PAUSE_MS;
		now = now_ms();
		for (i = 0; i < HTTPD_MAX_CONNS; i++)
			if (conns[i].state != CONN_FREE && conns[i].deadline <= now)
				conn_expire(&conns[i]);
	}
}

/* Prints the help text on stdout. */
static void usage(void)
{
	static const char text[] =
		"usage: " SYNOPSIS "\n"
		"       [--idle-timeout SECONDS] [--head-timeout SECONDS] [--health-max-age SECONDS]\n"
		"       tally-httpd --probe URL [--probe-timeout SECONDS]\n"
		"       tally-httpd --help\n"
		"\n"
		"Serves the Prometheus text files *.prom of DIR, merged and checked, plus\n"
		"built-in metrics at /metrics (text 0.0.4 or OpenMetrics 1.0, gzip on\n"
		"request); \"ok\" at /healthz; readiness at /readyz (?verbose: each check);\n"
		"the same as JSON at /health; and a page with the build summary at /.\n"
		"\n"
		"  --listen [ADDR]:PORT  listen on 127.0.0.1:9090, [::1]:9090, or :9090 for\n"
		"                        every interface (default :$METRICS_PORT, and\n"
		"                        METRICS_PORT defaults to 9090); port 0 picks one\n"
		"  --dir DIR             the metrics directory (default $TALLY_METRICS_DIR,\n"
		"                        else " HTTPD_DEFAULT_DIR "); repeat it (up to 8)\n"
		"                        to merge several, an earlier one winning conflicts\n"
		"  --port-file FILE      after binding, write the port and a newline to FILE\n"
		"  --auth-file FILE      require HTTP basic authentication (first line of\n"
		"                        FILE: USER:PASSWORD) on every path but /healthz, /readyz\n"
		"  --idle-timeout S      close a keep-alive connection idle S seconds (10)\n"
		"  --head-timeout S      answer 408 to a request head not complete in S s (5)\n"
		"  --health-max-age S    /readyz and /health fail when the latest healthcheck\n"
		"                        result is older than S seconds (default\n"
		"                        $TALLY_HEALTH_MAX_AGE, else 90; 0: no limit)\n"
		"  --probe URL           do not serve: probe URL once and exit 0 when it\n"
		"                        is healthy, 1 when not (reason on stderr):\n"
		"                        tcp://HOST:PORT accepts a connection, or\n"
		"                        http://HOST[:PORT][/PATH] answers 2xx or 3xx;\n"
		"                        for HEALTHCHECK in exec form in images with no\n"
		"                        shell\n"
		"  --probe-timeout S     the probe's whole time limit (default 5)\n"
		"  --help                print this help and exit\n"
		"\n"
		"Runs until SIGTERM or SIGINT (exit 0); SIGHUP re-reads the auth file and\n"
		"every metrics file. Exit 100: usage error; 111: a system call failed\n"
		"(e.g. the address is in use, the auth file is unreadable).\n";

	if (write_all(1, text, sizeof text - 1) < 0)
		die_sys(EXIT_SYS, "unable to write the help");
}

/* Returns the value of option argv[*i] ("--opt VAL" or "--opt=VAL") if its
 * name is opt, advancing *i past it; NULL if argv[*i] is another option. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	if (strncmp(a, opt, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		die_usage(SYNOPSIS " (%s needs a value)", opt);
	return argv[++*i];
}

/* Probes url within timeout_ms (probe_url) and returns the exit status:
 * 0 healthy, 1 not (the reason on stderr), 100 for a URL it cannot probe. */
static int probe_main(const char *url, long long timeout_ms)
{
	char why[256];
	int r;

	r = probe_url(url, (int)timeout_ms, why, sizeof why);
	if (r < 0)
		die_usage(SYNOPSIS " (%s)", why);
	if (r > 0) {
		warnx_msg("probe of %.512s failed: %s", url, why);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* Parses whole seconds min..max for option (or variable) opt; returns
 * them (dies with a usage error if invalid). */
static long long parse_seconds(const char *opt, const char *v, long long min, long long max)
{
	long long n = 0;
	size_t i;

	for (i = 0; v[i] && i < 10; i++) {
		if (v[i] < '0' || v[i] > '9')
			break;
		n = n * 10 + (v[i] - '0');
	}
	if (i == 0 || v[i] || n < min || n > max)
		die_usage(SYNOPSIS " (%s '%.64s' is not %lld to %lld seconds)", opt, v, min, max);
	return n;
}

/* Parses a timeout of 1..HTTPD_MAX_TIMEOUT_S seconds for option opt;
 * returns it in milliseconds (dies with a usage error if invalid). */
static long long parse_timeout(const char *opt, const char *v)
{
	return parse_seconds(opt, v, 1, HTTPD_MAX_TIMEOUT_S) * 1000;
}

int main(int argc, char **argv)
{
	const char *listen_arg = NULL, *port_file = NULL, *probe = NULL, *v, *env;
	const char *max_age = NULL;
	long long probe_timeout_ms = HTTPD_PROBE_TIMEOUT_S * 1000;
	struct listen_spec ls;
	struct sigaction sa;
	char name[INET6_ADDRSTRLEN + 16], spec[16], portstr[8], msg[256];
	int i, lfd;

	die_prog = "tally-httpd";
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			usage();
			return EXIT_OK;
		} else if ((v = opt_value(argc, argv, &i, "--listen"))) {
			listen_arg = v;
		} else if ((v = opt_value(argc, argv, &i, "--dir"))) {
			if (!*v)
				die_usage(SYNOPSIS " (--dir is empty)");
			if (ndirs == TF_MAX_DIRS)
				die_usage(SYNOPSIS " (more than %d --dir)", TF_MAX_DIRS);
			dirs[ndirs++] = v;
		} else if ((v = opt_value(argc, argv, &i, "--health-max-age"))) {
			max_age = v;
		} else if ((v = opt_value(argc, argv, &i, "--port-file"))) {
			port_file = v;
		} else if ((v = opt_value(argc, argv, &i, "--auth-file"))) {
			auth_file = v;
		} else if ((v = opt_value(argc, argv, &i, "--idle-timeout"))) {
			idle_timeout_ms = parse_timeout("--idle-timeout", v);
		} else if ((v = opt_value(argc, argv, &i, "--head-timeout"))) {
			head_timeout_ms = parse_timeout("--head-timeout", v);
		} else if ((v = opt_value(argc, argv, &i, "--probe"))) {
			probe = v;
		} else if ((v = opt_value(argc, argv, &i, "--probe-timeout"))) {
			probe_timeout_ms = parse_timeout("--probe-timeout", v);
		} else {
			die_usage(SYNOPSIS " (unexpected argument '%.64s')", argv[i]);
		}
	}
	if (probe)
		return probe_main(probe, probe_timeout_ms);
	if (!listen_arg) {
		env = getenv("METRICS_PORT");
		if (!env || !*env)
			env = HTTPD_DEFAULT_PORT;
		if (parse_port(env, &ls.port) < 0)
			die_usage(SYNOPSIS " (METRICS_PORT '%.64s' is not a port)", env);
		snprintf(spec, sizeof spec, ":%s", env);
		listen_arg = spec;
	}
	if (parse_listen(listen_arg, &ls) < 0)
		die_usage(SYNOPSIS " (--listen '%.64s' is not [ADDR]:PORT)",
		          listen_arg);
	if (!ndirs) {
		env = getenv("TALLY_METRICS_DIR");
		dirs[ndirs++] = env && *env ? env : HTTPD_DEFAULT_DIR;
	}
	if (max_age) {
		health_max_age_s = parse_seconds("--health-max-age", max_age, 0, HTTPD_MAX_AGE_LIMIT_S);
	} else if ((env = getenv("TALLY_HEALTH_MAX_AGE")) && *env) {
		health_max_age_s = parse_seconds("TALLY_HEALTH_MAX_AGE", env, 0, HTTPD_MAX_AGE_LIMIT_S);
	}
	env = getenv("BUILD_LOG_DIR");
	log_dir = env && *env ? env : HTTPD_DEFAULT_LOG_DIR;
	if (auth_file && load_auth(msg, sizeof msg) < 0)
		die(EXIT_SYS, "%s", msg);

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		die_sys(EXIT_SYS, "unable to ignore SIGPIPE");
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		die_sys(EXIT_SYS, "unable to catch SIGTERM and SIGINT");
	sa.sa_handler = on_hup;
	if (sigaction(SIGHUP, &sa, NULL) < 0)
		die_sys(EXIT_SYS, "unable to catch SIGHUP");

	textfile_init(&tf, builtins, NBUILTINS);
	watch_init();
	init_container_start();
	if (init_builtins() < 0)
		die_sys(EXIT_SYS, "unable to allocate");
	lfd = bind_listen(&ls, name, sizeof name);
	if (lfd < 0)
		die_sys(EXIT_SYS, "unable to listen on %s", name);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	raise_nofile();
	init_conn_cap((lfd > spare_fd ? lfd : spare_fd) + 1);
	fprintf(stderr, "tally-httpd: listening on %s, serving %s", name, dirs[0]);
	for (i = 1; i < (int)ndirs; i++)
		fprintf(stderr, ", %s", dirs[i]);
	fputc('\n', stderr);
	/* Read the directories once now: the first scrape is served from a
	 * snapshot, and a file that is being appended to later has a version
	 * held (see textfile.h, caught in the middle of a write). */
	(void)refresh();
	if (port_file) {
		snprintf(portstr, sizeof portstr, "%s", strrchr(name, ':') + 1);
		if (write_port_file(port_file, portstr) < 0)
			die_sys(EXIT_SYS, "unable to write %s", port_file);
	}

	serve(lfd);

	for (i = 0; i < HTTPD_MAX_CONNS; i++)
		if (conns[i].state != CONN_FREE)
			conn_close(&conns[i]);
	close(lfd);
	if (spare_fd >= 0)
		close(spare_fd);
	textfile_free(&tf);
	buf_free(&tail);
	buf_free(&ztail);
	buf_free(&scratch);
	snap_unref(cur);
	for (i = 0; i < 2; i++) {
		size_t k;

		buf_free(&proc_part[i]);
		for (k = 0; k < NBUILTINS; k++)
			buf_free(&meta[i][k]);
	}
	buf_free(&auth_token);
	return EXIT_OK;
}
