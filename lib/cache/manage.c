/*
 * manage.c - list, hold, remove and trim what a node cache holds (see
 * cache.h for the in-use protocol and vine-cache(1)).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"

int vine_cache_hold(const struct vine_cache *c, const char *id)
{
	char *path = vine_cache_path(c, "locks", id, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), r;

	if (fd < 0) {
		vine_error_errno("cannot open lock '%s'", path);
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_SH) < 0) {
		if (errno != EINTR) {
			vine_error_errno("cannot lock '%s'", path);
			goto fail;
		}
	}
	if (futimens(fd, NULL) < 0) {
		vine_error_errno("cannot set the time of '%s'", path);
		goto fail;
	}
	if ((r = vine_cache_env_ready(c, id)) != 1) {
		close(fd);
		free(path);
		return r < 0 ? -1 : -2;
	}
	free(path);
	return fd;
fail:
	close(fd);
	free(path);
	return -1;
}

/* Apparent size of the tree at dirfd/name (files' bytes), not following links. */
static uint64_t tree_bytes(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sum += tree_bytes(dirfd(d), de->d_name);
		else if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

static struct vine_cache_entry *entry(struct vine_cache_entry **e, size_t *n, const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*e)[i].id, id))
			return &(*e)[i];
	*e = vine_xrealloc(*e, (*n + 1) * sizeof(**e));
	memset(&(*e)[*n], 0, sizeof(**e));
	memcpy((*e)[*n].id, id, VINE_ID_LEN + 1);
	return &(*e)[(*n)++];
}

/* Call fn for each name in dir sub/ that is an id (or, for env/, any name). */
static int each(const struct vine_cache *c, const char *sub, int (*fn)(const struct vine_cache *, const char *,
	void *), void *ctx)
{
	int fd = openat(c->fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return vine_error_errno("cannot read '%s/%s'", c->dir, sub);
	}
	while ((de = readdir(d)) && rc == 0)
		if (de->d_name[0] != '.')
			rc = fn(c, de->d_name, ctx);
	closedir(d);
	return rc;
}

struct lister {
	struct vine_cache_entry *e;
	size_t n;
	const char *sub;
};

static int add_file(const struct vine_cache *c, const char *name, void *ctx)
{
	struct lister *l = ctx;
	char rel[128];
	struct stat st;

	if (!vine_id_valid(name))
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s", l->sub, name);
	if (fstatat(c->fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return 0;
	struct vine_cache_entry *e = entry(&l->e, &l->n, name);
	if (!strcmp(l->sub, "objects")) {
		e->has_archive = 1;
		e->partial = 0;
		e->archive = (uint64_t)st.st_size;
	} else if (!e->has_archive) {
		e->partial = 1;
		e->archive = (uint64_t)st.st_size;
	}
	if (st.st_mtim.tv_sec > e->last_use)
		e->last_use = st.st_mtim.tv_sec;
	return 0;
}

static int add_env(const struct vine_cache *c, const char *name, void *ctx)
{
	struct lister *l = ctx;
	char rel[128], id[VINE_ID_LEN + 2];
	int fd;
	ssize_t n;
	struct stat st;

	if (strlen(name) > 64)
		return 0;
	snprintf(rel, sizeof(rel), "env/%s/.vine/id", name);
	if ((fd = openat(c->fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;  /* not one vine-seed made: left alone */
	n = vine_read_full(fd, id, sizeof(id));
	if (n != VINE_ID_LEN + 1 || fstat(fd, &st) < 0) {
		close(fd);
		return 0;
	}
	close(fd);
	id[VINE_ID_LEN] = '\0';
	if (!vine_id_valid(id) || strncmp(id, name, strlen(name)))
		return 0;
	struct vine_cache_entry *e = entry(&l->e, &l->n, id);
	e->has_env = 1;
	/* vine-seed records the size; older environments are walked */
	char num[32];
	snprintf(rel, sizeof(rel), "env/%s/.vine/size", name);
	if ((fd = openat(c->fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
	    (n = vine_read_full(fd, num, sizeof(num) - 1)) > 0) {
		num[n] = '\0';
		e->env = strtoull(num, NULL, 10);
	} else {
		snprintf(rel, sizeof(rel), "env/%s", name);
		e->env = tree_bytes(c->fd, rel);
	}
	if (fd >= 0)
		close(fd);
	if (st.st_mtim.tv_sec > e->last_use)
		e->last_use = st.st_mtim.tv_sec;
	return 0;
}

/* 1 when a process holds locks/<id>; with keep, the exclusive lock's fd
 * is returned in *keep when it was free. */
static int busy(const struct vine_cache *c, const char *id, int *keep)
{
	char rel[80];
	int fd, r;

	snprintf(rel, sizeof(rel), "locks/%s", id);
	if (keep)
		*keep = -1;
	fd = openat(c->fd, rel, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return vine_error_errno("cannot open '%s/%s'", c->dir, rel);
		if (!keep)
			return 0;
		/* nobody made it: nobody holds it; make it to hold it ourselves */
		fd = openat(c->fd, rel, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return vine_error_errno("cannot open '%s/%s'", c->dir, rel);
	}
	r = flock(fd, LOCK_EX | LOCK_NB) < 0;
	if (r && errno != EWOULDBLOCK) {
		close(fd);
		return vine_error_errno("cannot lock '%s/%s'", c->dir, rel);
	}
	if (!r && keep)
		*keep = fd;
	else
		close(fd);
	return r;
}

int vine_cache_drop_archive(const struct vine_cache *c, const char *id)
{
	char rel[80];
	int fd, r;

	if ((r = vine_cache_env_ready(c, id)) != 1)
		return r < 0 ? -1 : 0;
	fd = openat(c->fd, "locks/" VINE_CACHE_SERVING, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT)
		return vine_error_errno("cannot open '%s/locks/%s'", c->dir, VINE_CACHE_SERVING);
	/* held exclusive only for this instant: a server starting now waits */
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno;
		close(fd);
		if (r == EWOULDBLOCK)
			return 0;
		errno = r;
		return vine_error_errno("cannot lock '%s/locks/%s'", c->dir, VINE_CACHE_SERVING);
	}
	snprintf(rel, sizeof(rel), "objects/%s", id);
	r = 1;
	if (unlinkat(c->fd, rel, 0) < 0 && errno != ENOENT)
		r = vine_error_errno("cannot remove '%s/%s'", c->dir, rel);
	if (fd >= 0)
		close(fd);
	return r;
}

static int by_use(const void *a, const void *b)
{
	const struct vine_cache_entry *x = a, *y = b;

	if (x->last_use != y->last_use)
		return x->last_use < y->last_use ? -1 : 1;
	return strcmp(x->id, y->id);
}

int vine_cache_list(const struct vine_cache *c, struct vine_cache_entry **out, size_t *nout)
{
	struct lister l = { NULL, 0, "objects" };

	*out = NULL;
	*nout = 0;
	if (each(c, "objects", add_file, &l) < 0 || (l.sub = "partial", each(c, "partial", add_file, &l)) < 0 ||
	    each(c, "env", add_env, &l) < 0)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		char rel[80];
		struct stat st;
		int r;
		snprintf(rel, sizeof(rel), "locks/%s", l.e[i].id);
		if (fstatat(c->fd, rel, &st, 0) == 0)
			l.e[i].last_use = st.st_mtim.tv_sec;
		if ((r = busy(c, l.e[i].id, NULL)) < 0)
			goto fail;
		l.e[i].in_use = r;
	}
	if (l.n)
		qsort(l.e, l.n, sizeof(*l.e), by_use);
	*out = l.e;
	*nout = l.n;
	return 0;
fail:
	free(l.e);
	return -1;
}

int vine_cache_remove(const struct vine_cache *c, const struct vine_cache_entry *e, int dry_run)
{
	char rel[128], *env = NULL, *gone = NULL;
	int lk, r, rc = 1;

	if ((r = busy(c, e->id, &lk)) != 0)
		return r < 0 ? -1 : 0;
	if (dry_run) {
		close(lk);
		return 1;
	}
	/* out of sight in one rename, so no one finds it half removed */
	env = vine_cache_env_path(c, e->id);
	if (vine_cache_env_ready(c, e->id) == 1) {
		gone = vine_cache_path(c, "tmp", e->id, ".XXXXXX");
		int tfd = mkstemp(gone);
		if (tfd < 0 || (close(tfd), unlink(gone)) < 0 || rename(env, gone) < 0) {
			rc = vine_error_errno("cannot remove '%s'", env);
			goto out;
		}
		if (vine_rm_rf(gone) < 0) {
			rc = -1;
			goto out;
		}
	}
	snprintf(rel, sizeof(rel), "objects/%s", e->id);
	if (unlinkat(c->fd, rel, 0) < 0 && errno != ENOENT)
		rc = vine_error_errno("cannot remove '%s/%s'", c->dir, rel);
	snprintf(rel, sizeof(rel), "partial/%s", e->id);
	if (unlinkat(c->fd, rel, 0) < 0 && errno != ENOENT)
		rc = vine_error_errno("cannot remove '%s/%s'", c->dir, rel);
out:
	close(lk);
	free(env);
	free(gone);
	return rc;
}

int64_t vine_cache_trim(const struct vine_cache *c, uint64_t limit, int dry_run,
			void (*report)(void *ctx, const struct vine_cache_entry *e), void *ctx)
{
	struct vine_cache_entry *e;
	uint64_t total = 0;
	size_t n;

	if (vine_cache_list(c, &e, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		total += e[i].archive + e[i].env;
	for (size_t i = 0; i < n && total > limit; i++) {
		int r = e[i].in_use ? 0 : vine_cache_remove(c, &e[i], dry_run);
		if (r < 0) {
			free(e);
			return -1;
		}
		if (r == 1) {
			total -= e[i].archive + e[i].env;
			if (report)
				report(ctx, &e[i]);
		}
	}
	free(e);
	return (int64_t)total;
}
