/*
 * cache.c - node cache layout, locks and quick-check records (see cache.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cache/cache.h"

static const char *const subdirs[] = { "objects", "partial", "env", "tmp", "locks", "sources" };

int vine_cache_open(struct vine_cache *c, const char *path)
{
	struct stat st;
	char *real;

	c->dir = NULL;
	c->fd = -1;
	if (!*path)
		return vine_error("empty cache path");
	if (vine_mkdir_p(path, 0700) < 0)
		return vine_error_prefix("cannot use cache");
	real = realpath(path, NULL);
	if (!real)
		return vine_error_errno("cannot use cache '%s'", path);
	c->fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->fd < 0 || fstat(c->fd, &st) < 0) {
		vine_error_errno("cannot use cache '%s'", path);
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		vine_error("cannot use cache '%s': it belongs to another user (uid %u)", path,
			   (unsigned)st.st_uid);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(*subdirs); i++) {
		if (mkdirat(c->fd, subdirs[i], 0700) < 0 && errno != EEXIST) {
			vine_error_errno("cannot use cache '%s': cannot create '%s'", path, subdirs[i]);
			goto fail;
		}
	}
	c->dir = real;
	return 0;
fail:
	free(real);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	return -1;
}

void vine_cache_close(struct vine_cache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->dir);
	c->dir = NULL;
	c->fd = -1;
}

int vine_cache_subdir(const struct vine_cache *c, const char *sub)
{
	int fd = openat(c->fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? vine_error_errno("cannot open directory '%s/%s'", c->dir, sub) : fd;
}

char *vine_cache_path(const struct vine_cache *c, const char *sub, const char *name, const char *suffix)
{
	return vine_xasprintf("%s/%s/%s%s", c->dir, sub, name, suffix ? suffix : "");
}

int vine_cache_lock(const struct vine_cache *c, const char *name, void (*waiting)(void *), void *ctx)
{
	char *path = vine_cache_path(c, "locks", name, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		vine_error_errno("cannot open lock '%s'", path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			goto fail;
		if (waiting)
			waiting(ctx);
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				goto fail;
	}
	free(path);
	return fd;
fail:
	vine_error_errno("cannot lock '%s'", path);
	close(fd);
	free(path);
	return -1;
}

/* A lock name we make: an id, or "src-" and 32 hex digits. */
static int lock_name_ok(const char *s, size_t n)
{
	size_t i = n == VINE_ID_LEN ? 0 : n == 36 && !strncmp(s, "src-", 4) ? 4 : n;

	if (i == n)
		return 0;
	for (; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

/*
 * Remove tmp/<lock>.*: those of lock name (which the caller holds), or with
 * name NULL those whose lock is free, taken while they are removed.
 */
static int sweep(const struct vine_cache *c, const char *name)
{
	int fd = openat(c->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return vine_error_errno("cannot read '%s/tmp'", c->dir);
	}
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		size_t n = dot ? (size_t)(dot - de->d_name) : 0;
		int lk = -1;
		if (!dot || (name ? strlen(name) != n || strncmp(de->d_name, name, n)
				  : !lock_name_ok(de->d_name, n)))
			continue;
		if (!name) {
			/* its maker held this lock for as long as it lived: free, it is dead */
			char *lname = vine_xstrndup(de->d_name, n), *lock = vine_cache_path(c, "locks", lname, NULL);
			lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
			free(lname);
			free(lock);
			if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) < 0) {
				if (lk >= 0)
					close(lk);
				continue;
			}
		}
		char *p = vine_cache_path(c, "tmp", de->d_name, NULL);
		if (vine_rm_rf(p) < 0)
			rc = -1;
		free(p);
		if (lk >= 0)
			close(lk);
	}
	closedir(d);
	return rc;
}

int vine_cache_sweep(const struct vine_cache *c, const char *name)
{
	return sweep(c, name);
}

int vine_cache_sweep_stale(const struct vine_cache *c)
{
	return sweep(c, NULL);
}

char *vine_cache_env_path(const struct vine_cache *c, const char *id)
{
	char shortid[VINE_SHORT_LEN + 1];

	snprintf(shortid, sizeof(shortid), "%s", id);
	return vine_cache_path(c, "env", shortid, NULL);
}

int vine_cache_env_ready(const struct vine_cache *c, const char *id)
{
	char rel[64], buf[VINE_ID_LEN + 2];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(rel, sizeof(rel), "env/%.*s/.vine/id", VINE_SHORT_LEN, id);
	fd = openat(c->fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return vine_error_errno("cannot read '%s/%s'", c->dir, rel);
		snprintf(rel, sizeof(rel), "env/%.*s", VINE_SHORT_LEN, id);
		if (fstatat(c->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return vine_error("'%s/%s' is not an environment vine-seed made; remove it",
					  c->dir, rel);
		return 0;
	}
	n = vine_read_full(fd, buf, sizeof(buf));
	close(fd);
	if (n == VINE_ID_LEN + 1 && buf[VINE_ID_LEN] == '\n' && !memcmp(buf, id, VINE_ID_LEN))
		return 1;
	return vine_error("'%s/env/%.*s' holds another object; remove it", c->dir, VINE_SHORT_LEN, id);
}

void vine_cache_source_key(const char *realpath, char key[33])
{
	char hex[VINE_ID_LEN + 1];
	struct vine_sha256 h;

	vine_sha256_init(&h);
	vine_sha256_update(&h, realpath, strlen(realpath));
	vine_sha256_final(&h, hex);
	memcpy(key, hex, 32);
	key[32] = '\0';
}

static void source_record(struct vine_buf *b, const char *realpath, const struct stat *st, const char *id)
{
	vine_buf_addf(b, "vine-source 1\n%" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 ".%09ld %" PRId64
		      ".%09ld %s\n%s\n",
		      (uint64_t)st->st_dev, (uint64_t)st->st_ino, (int64_t)st->st_size,
		      (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (int64_t)st->st_ctim.tv_sec,
		      st->st_ctim.tv_nsec, id, realpath);
}

int vine_cache_source_get(const struct vine_cache *c, const char *key, const char *realpath,
			  const struct stat *st, char id[VINE_ID_LEN + 1])
{
	struct vine_buf want = VINE_BUF_INIT;
	char rel[48], buf[8192];
	ssize_t n;
	int fd, rc = 0;

	snprintf(rel, sizeof(rel), "sources/%s", key);
	fd = openat(c->fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = vine_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the record is what we would write now, with the id in its place */
	char *sp = strchr(buf, '\n');
	sp = sp ? strchr(sp + 1, '\n') : NULL;
	if (!sp || sp - buf < VINE_ID_LEN + 1)
		return 0;
	char *idp = sp - VINE_ID_LEN;
	char got[VINE_ID_LEN + 1];
	memcpy(got, idp, VINE_ID_LEN);
	got[VINE_ID_LEN] = '\0';
	if (!vine_id_valid(got))
		return 0;
	source_record(&want, realpath, st, got);
	if (want.len == (size_t)n && !memcmp(want.data, buf, want.len)) {
		memcpy(id, got, sizeof(got));
		rc = 1;
	} else {
		/* this path, this size, other times: perhaps the same bytes written again */
		unsigned long long dev, ino;
		long long size;
		size_t rl = strlen(realpath);
		if (sscanf(strchr(buf, '\n') + 1, "%llu %llu %lld", &dev, &ino, &size) == 3 &&
		    size == (long long)st->st_size && (size_t)(buf + n - (sp + 1)) == rl + 1 &&
		    !memcmp(sp + 1, realpath, rl)) {
			memcpy(id, got, sizeof(got));
			rc = 2;
		}
	}
	vine_buf_release(&want);
	return rc;
}

int vine_cache_source_put(const struct vine_cache *c, const char *key, const char *realpath,
			  const struct stat *st, const char *id)
{
	struct vine_buf b = VINE_BUF_INIT;
	char *path = vine_cache_path(c, "sources", key, NULL);
	int rc;

	source_record(&b, realpath, st, id);
	rc = vine_write_file_atomic(path, b.data, b.len, 0600);
	vine_buf_release(&b);
	free(path);
	return rc;
}

int vine_cache_source_drop(const struct vine_cache *c, const char *key)
{
	char rel[48];

	snprintf(rel, sizeof(rel), "sources/%s", key);
	if (unlinkat(c->fd, rel, 0) < 0 && errno != ENOENT)
		return vine_error_errno("cannot remove '%s/%s'", c->dir, rel);
	return 0;
}
