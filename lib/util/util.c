/*
 * util.c - errors, memory, full reads and writes, files and directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static _Thread_local char errbuf[1024];

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

char *vine_xasprintf(const char *fmt, ...)
{
	struct vine_buf b = VINE_BUF_INIT;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	vine_buf_grow(&b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b.data, (size_t)n + 1, fmt, ap);
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
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	vine_buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
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

ssize_t vine_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t vine_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int vine_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int vine_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
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

int vine_mkdir_p(const char *path, mode_t mode)
{
	char *p = vine_xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = vine_error_errno("cannot create directory '%s'", p);
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) < 0)
			rc = vine_error_errno("cannot create directory '%s'", path);
		else if (!S_ISDIR(st.st_mode))
			rc = vine_error("'%s' exists and is not a directory", path);
	}
	free(p);
	return rc;
}

static int rm_rf_at(int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : vine_error_errno("cannot stat '%s'", name);
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			/* an unreadable directory: make it ours, then retry */
			if (errno != EACCES || fchmodat(dfd, name, 0700, 0) < 0 ||
			    (fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
				return vine_error_errno("cannot open directory '%s'", name);
		}
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return vine_error_errno("cannot read directory '%s'", name);
		}
		struct dirent *de;
		int rc = 0;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (rm_rf_at(dirfd(d), de->d_name) < 0 && rc == 0) {
				/* on a read-only directory, one chmod then carry on */
				if (fchmod(dirfd(d), 0700) == 0 && rm_rf_at(dirfd(d), de->d_name) == 0)
					continue;
				rc = -1;
			}
		}
		closedir(d);
		if (rc < 0)
			return rc;
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return vine_error_errno("cannot remove directory '%s'", name);
		return 0;
	}
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return vine_error_errno("cannot remove '%s'", name);
	return 0;
}

int vine_rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path);
}

int vine_fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? (slash == path ? vine_xstrdup("/") : vine_xstrndup(path, (size_t)(slash - path)))
			  : vine_xstrdup(".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = vine_error_errno("cannot sync directory '%s'", dir);
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

int vine_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = vine_xasprintf("%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);

	if (fd < 0) {
		vine_error_errno("cannot create temporary file for '%s'", path);
		free(tmp);
		return -1;
	}
	if (fchmod(fd, mode) < 0 || vine_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		vine_error_errno("cannot write '%s'", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		vine_error_errno("cannot write '%s'", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		vine_error_errno("cannot rename '%s' to '%s'", tmp, path);
		goto fail;
	}
	free(tmp);
	return vine_fsync_parent(path);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
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

/* s as a whole number times the unit its suffix names (one of units,
 * whose multipliers are mult), the rest of the suffix in tail. */
static int parse_unit(const char *s, const char *units, const uint64_t *mult, const char *const *tails,
		      uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t m = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || end == s || errno == ERANGE)
		return -1;
	if (*end) {
		const char *u = strchr(units, *end);
		int ok = 0;
		if (!u || !*u)
			return -1;
		m = mult[u - units];
		for (const char *const *t = tails; *t && !ok; t++)
			ok = !strcmp(end + 1, *t);
		if (!ok)
			return -1;
	}
	if (v > UINT64_MAX / m)
		return -1;
	*out = (uint64_t)v * m;
	return 0;
}

int vine_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, (uint64_t)1 << 10, (uint64_t)1 << 20, (uint64_t)1 << 30,
					 (uint64_t)1 << 40, 1 << 10, 1 << 20, 1 << 30, (uint64_t)1 << 40 };
	static const char *const tails[] = { "", "B", "iB", NULL };

	if (parse_unit(s, "BKMGTkmgt", mult, tails, out) < 0)
		return vine_error("'%s' is not a size (a whole number of bytes, or with K, M, G or T)", s);
	return 0;
}

int vine_parse_age(const char *s, int64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 7 * 86400 };
	static const char *const tails[] = { "", NULL };
	uint64_t v;

	if (parse_unit(s, "smhdw", mult, tails, &v) < 0 || v > (uint64_t)INT64_MAX)
		return vine_error("'%s' is not an age (a whole number of seconds, or with s, m, h, d or w)", s);
	*out = (int64_t)v;
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
