/*
 * util.c - errors, memory, buffers, full reads and writes, numbers, clocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static _Thread_local char errbuf[1024];

static void buf_vaddf(struct vine_buf *b, const char *fmt, va_list ap);

static void verror(int with_errno, int err, const char *fmt, va_list ap)
{
	char tmp[sizeof(errbuf)];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	int n;

	/* a message too long for the buffer is cut short, deliberately */
	if (with_errno)
		n = snprintf(errbuf, sizeof(errbuf), "%s: %s", tmp, strerror(err));
	else
		n = snprintf(errbuf, sizeof(errbuf), "%s", tmp);
	if (n < 0)
		errbuf[0] = '\0';
}

int vine_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(0, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int vine_error_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	verror(1, err, fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

int vine_error_prefix(const char *fmt, ...)
{
	char old[sizeof(errbuf)], pre[sizeof(errbuf)];
	va_list ap;

	memcpy(old, errbuf, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	if (snprintf(errbuf, sizeof(errbuf), "%s: %s", pre, old) < 0)
		errbuf[0] = '\0';
	return -1;
}

void vine_msgf(vine_msg_fn fn, void *ctx, const char *fmt, ...)
{
	struct vine_buf b = VINE_BUF_INIT;
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	fn(ctx, b.data);
	vine_buf_release(&b);
}

const char *vine_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

static void *oom(size_t n)
{
	fprintf(stderr, "vine: out of memory allocating %zu bytes\n", n);
	abort();
}

void *vine_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	return p ? p : oom(n);
}

void *vine_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	return p ? p : oom(n * size);
}

void *vine_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	return q ? q : oom(n);
}

char *vine_xstrdup(const char *s)
{
	char *p = strdup(s);

	return p ? p : oom(strlen(s) + 1);
}

char *vine_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	return p ? p : oom(n + 1);
}

/* The one formatter into a buffer (vine_buf_addf, vine_xasprintf, vine_msgf). */
static void buf_vaddf(struct vine_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		abort();
	vine_buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

char *vine_xasprintf(const char *fmt, ...)
{
	struct vine_buf b = VINE_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return b.data;
}

void vine_buf_grow(struct vine_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need < b->len)
		oom(SIZE_MAX);
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->data = vine_xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void vine_buf_add(struct vine_buf *b, const void *p, size_t n)
{
	vine_buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void vine_buf_addstr(struct vine_buf *b, const char *s)
{
	vine_buf_add(b, s, strlen(s));
}

void vine_buf_addf(struct vine_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void vine_buf_reset(struct vine_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void vine_buf_release(struct vine_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *vine_buf_detach(struct vine_buf *b, size_t *len)
{
	char *p;

	vine_buf_grow(b, 0);
	p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

/*
 * The one full-I/O loop: read or write (at off, when off >= 0) until len
 * bytes moved, retrying EINTR and short transfers; a read stops early at
 * end of file.  The bytes moved, or -1 with a message and errno kept.
 */
static ssize_t full_io(int fd, void *buf, size_t len, off_t off, int writing)
{
	size_t done = 0;

	while (done < len) {
		char *p = (char *)buf + done;
		size_t n = len - done;
		ssize_t r;
		if (writing)
			r = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, off + (off_t)done);
		else
			r = off < 0 ? read(fd, p, n) : pread(fd, p, n, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return vine_error_errno(writing ? "write failed" : "read failed");
		}
		if (r == 0) {
			if (!writing)
				break;
			errno = EIO; /* write(2) never returns 0 for len > 0; do not spin */
			return vine_error_errno("write failed");
		}
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t vine_read_full(int fd, void *buf, size_t len)
{
	return full_io(fd, buf, len, -1, 0);
}

ssize_t vine_pread_full(int fd, void *buf, size_t len, off_t off)
{
	return full_io(fd, buf, len, off, 0);
}

int vine_write_full(int fd, const void *buf, size_t len)
{
	return full_io(fd, (void *)buf, len, -1, 1) < 0 ? -1 : 0;
}

int vine_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	return full_io(fd, (void *)buf, len, off, 1) < 0 ? -1 : 0;
}

int vine_write_close(int fd, const char *path, const void *data, size_t len)
{
	int rc = 0;

	if (vine_write_full(fd, data, len) < 0)
		rc = vine_error_errno("cannot write '%s'", path);
	if (close(fd) < 0 && rc == 0)
		rc = vine_error_errno("cannot write '%s'", path);
	return rc;
}

int vine_read_file(const char *path, size_t max, char **data, size_t *len)
{
	struct vine_buf b = VINE_BUF_INIT;
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return vine_error_errno("cannot open '%s'", path);
	for (;;) {
		ssize_t n = vine_read_full(fd, chunk, sizeof(chunk));
		if (n < 0) {
			vine_error_errno("cannot read '%s'", path);
			goto fail;
		}
		if (b.len + (size_t)n > max) {
			vine_error("'%s' is larger than %zu bytes", path, max);
			goto fail;
		}
		vine_buf_add(&b, chunk, (size_t)n);
		if ((size_t)n < sizeof(chunk))
			break;
	}
	close(fd);
	*data = vine_buf_detach(&b, len);
	return 0;
fail:
	close(fd);
	vine_buf_release(&b);
	return -1;
}

void vine_test_pause(const char *point)
{
	const char *v = getenv("VINE_TEST_PAUSE"), *p;
	size_t n = strlen(point);

	for (p = v; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && !strncmp(p, point, n)) {
			raise(SIGSTOP);
			return;
		}
	}
}

int vine_parse_llong(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno == ERANGE || v < min || v > max)
		return vine_error("'%s' is not a number from %lld to %lld", s, min, max);
	*out = v;
	return 0;
}

int vine_env_seconds(const char *name, double def, double *out)
{
	const char *v = getenv(name);
	char *end;
	double d;

	if (!v || !*v) {
		*out = def;
		return 0;
	}
	errno = 0;
	d = strtod(v, &end);
	if (*end || errno || !isfinite(d) || d <= 0 || d > 86400 * 366)
		return vine_error("%s='%s' is not a positive number of seconds", name, v);
	*out = d;
	return 0;
}

int vine_online_cores(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

double vine_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double vine_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
