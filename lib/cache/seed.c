/*
 * seed.c - make an environment ready in the node cache (see seed.h for
 * the layout and the locking protocol).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "archive/extract.h"
#include "util/progress.h"
#include "archive/relocate.h"
#include "cache/seed.h"
#include "util/util.h"

struct seed {
	const struct vine_seed_opts *o;
	const char *archive;
	struct vine_cache c;
	int fd;                /* the archive, when open */
	struct stat st;
	char *real;            /* its real path */
	char key[33];
	int made;              /* this call published an environment */
};

static void note(const struct seed *s, const char *fmt, ...) VINE_PRINTF(2, 3);
static void note(const struct seed *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!s->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->o->note(s->o->note_ctx, msg);
}

static void waiting(void *ctx)
{
	note(ctx, "waiting for another seeder of '%s'", ((struct seed *)ctx)->archive);
}

static int open_archive(struct seed *s)
{
	if (s->fd >= 0)
		return 0;
	/* O_NONBLOCK: a FIFO would block the open itself until a writer came */
	s->fd = open(s->archive, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (s->fd < 0)
		return vine_error_errno("cannot open '%s'", s->archive);
	if (fstat(s->fd, &s->st) < 0)
		return vine_error_errno("cannot stat '%s'", s->archive);
	if (!S_ISREG(s->st.st_mode))
		return vine_error("'%s' is not a regular file", s->archive);
	if (fcntl(s->fd, F_SETFL, 0) < 0)
		return vine_error_errno("cannot open '%s'", s->archive);
	s->real = realpath(s->archive, NULL);
	if (!s->real)
		return vine_error_errno("cannot resolve '%s'", s->archive);
	vine_cache_source_key(s->real, s->key);
	return 0;
}

/* Relocate, mark and finish the unpacked tree for its final place. */
static int finish_env(struct seed *s, struct vine_tree *t, const struct vine_extract_stats *xs,
		      const char *id, const char *env)
{
	int root = vine_tree_root(t);
	struct vine_manifest m;
	char line[VINE_ID_LEN + 2];
	int r = vine_manifest_load(root, &m);

	if (r < 0)
		return vine_error_prefix("'%s'", s->archive);
	if (r == 1) {
		if ((xs->manifest_at != m.entries || (uint64_t)xs->manifest_at + 1 != xs->entries))
			r = vine_error("'%s' is damaged: %lld entries before its manifest, which says %lld and "
				       "must be last", s->archive, (long long)xs->manifest_at, (long long)m.entries);
		else
			r = vine_relocate(root, &m, env);
		vine_manifest_free(&m);
		if (r < 0)
			return -1;
	}
	/* the files' bytes, for vine-cache and trims (no walk of the tree) */
	char size[32];
	int sl = snprintf(size, sizeof(size), "%llu\n", (unsigned long long)xs->bytes);
	if (vine_tree_put(t, ".vine/size", size, (size_t)sl, 0444) < 0)
		return -1;
	snprintf(line, sizeof(line), "%s\n", id);
	if (vine_tree_put(t, ".vine/id", line, VINE_ID_LEN + 1, 0444) < 0)
		return -1;
	if (fchmod(root, 0755 & ~vine_umask()) < 0)
		return vine_error_errno("cannot set the mode of '%s'", env);
	return vine_tree_finish(t);
}

/*
 * Before unpacking: refuse an archive whose manifest (read through its
 * index) says its environment cannot take this cache's environment paths.
 * Archives without an index or without a recorded limit are checked by
 * vine_relocate() after unpacking, still before anything is published.
 */
static int check_room(struct seed *s, int fd, uint64_t size)
{
	struct vine_manifest m;
	size_t envlen = vine_cache_env_len(s->c.dir), cachelen = strlen(s->c.dir);
	int r = vine_manifest_peek(fd, size, &m), rc = 0;

	if (r < 0)
		return vine_error_prefix("cannot read the manifest of '%s'", s->archive);
	if (r == 1 && m.max_prefix != VINE_ROOM_ANY && envlen > m.max_prefix) {
		if (m.max_prefix >= envlen - cachelen + 1)
			rc = vine_error("cannot seed '%s': its files embed their path where at most %zu bytes fit "
					"('%s'), and environments in cache '%s' take %zu; use a cache path of at "
					"most %zu bytes (-c or VINE_CACHE)", s->archive, m.max_prefix,
					m.max_prefix_file ? m.max_prefix_file : "?", s->c.dir, envlen,
					m.max_prefix - (envlen - cachelen));
		else
			rc = vine_error("cannot seed '%s': its files embed their path where at most %zu bytes fit "
					"('%s'), less than any cache can give (%zu); pack it from a longer "
					"path (see vine-pack(1))", s->archive, m.max_prefix,
					m.max_prefix_file ? m.max_prefix_file : "?", envlen - cachelen + 1);
	}
	vine_manifest_free(&m);
	return rc;
}

static int publish_dir(const char *from, const char *to)
{
	/* under the lock nothing else publishes to; RENAME_NOREPLACE is a second
	 * guard, and where the file system lacks it, rename(2) will not replace a
	 * non-empty directory either */
	return vine_publish(from, to, VINE_PUBLISH_NOREPLACE);
}

/*
 * Holding locks/<id>: make the verified copy from objects/<id>, unless it
 * is there already; then a partial/<id> left by a killed copier is of no use.
 */
static int publish_object(struct seed *s, const char *from, const char *id)
{
	char *obj = vine_cache_path(&s->c, "objects", id, NULL);
	char *partial = vine_cache_path(&s->c, "partial", id, NULL);
	int rc = 0;

	if (access(obj, F_OK) < 0) {
		if (chmod(from, 0444) < 0)
			rc = vine_error_errno("cannot change the mode of '%s'", from);
		else
			rc = vine_publish(from, obj, 0);
	}
	if (rc == 0 && strcmp(from, partial) && unlink(partial) < 0 && errno != ENOENT)
		rc = vine_error_errno("cannot remove '%s'", partial);
	free(obj);
	free(partial);
	return rc;
}

static char *make_staging(struct seed *s, const char *lock)
{
	char *dir = vine_cache_path(&s->c, "tmp", lock, ".XXXXXX");

	if (!mkdtemp(dir)) {
		vine_error_errno("cannot create '%s'", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

static int unpack_opts(const struct seed *s, struct vine_extract_opts *xo)
{
	memset(xo, 0, sizeof(*xo));
	xo->jobs = s->o->jobs > 0 ? s->o->jobs : vine_online_cores();
	xo->quiet = s->o->quiet;
	xo->copy_fd = -1;
	xo->stream_min = s->o->stream_min;
	return 0;
}

static int unpack(struct seed *s, int fd, uint64_t size, int hash, int copy, const char *staging,
		  struct vine_tree **t, struct vine_extract_stats *xs)
{
	struct vine_extract_opts xo;
	double t0 = vine_now_mono();

	unpack_opts(s, &xo);
	xo.hash = hash;
	xo.copy_fd = copy;

	note(s, "unpacking '%s' with %d threads", s->archive, xo.jobs);
	if (vine_extract(&xo, fd, size, staging, t, xs) < 0)
		return vine_error_prefix("cannot unpack '%s'", s->archive);
	note(s, "unpacked %llu entries, %llu bytes in %.2f s%s", (unsigned long long)xs->entries,
	     (unsigned long long)xs->bytes, vine_now_mono() - t0, xs->indexed ? "" : " (not in vine format)");
	return 0;
}

/*
 * Unpacking while fetching.  A verified fetch (vine_fetch_*) writes
 * partial/<id> sequentially from its start, or from the end of a copy left
 * by an earlier fetch; when a source sends bytes that do not hash to the
 * id it removes the file and starts a new one.  So: open partial/<id>
 * first, follow that file as it grows (inotify says when) and unpack its
 * members as their bytes arrive (vine_extract's follow mode); when the
 * fetch returns, the object it verified is that same file only if its
 * inode is ours, and only then is the tree used.  In every other case the
 * tree is thrown away: a failed fetch fails as before, a fetch that
 * started over (or an archive the follower could not unpack: not in vine
 * format) is unpacked again from the verified object.
 */
struct follow {
	struct seed *s;
	int fd;                /* partial/<id>, as first opened */
	int watch;             /* inotify on it, or -1 */
	int wake[2];           /* a byte when state changes */
	int state;             /* 0 fetching, 1 fetched and verified (this file), -1 not */
	/* the unpacking thread */
	const char *staging;
	struct vine_tree *t;
	struct vine_extract_stats xs;
	int rc;
	char err[1024];
};

static int follow_wait(void *ctx, uint64_t need, uint64_t *have, int *complete)
{
	struct follow *f = ctx;
	struct pollfd p[2] = { { .fd = f->wake[0], .events = POLLIN }, { .fd = f->watch, .events = POLLIN } };
	char buf[4096];
	struct stat st;

	for (;;) {
		int state = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
		if (state < 0)
			return vine_error("the fetch did not bring this copy to its end");
		if (fstat(f->fd, &st) < 0)
			return vine_error_errno("cannot stat the copy being fetched");
		*have = (uint64_t)st.st_size;
		*complete = state > 0;
		if (state > 0 || *have >= need)
			return 0;
		/* inotify wakes us as it grows; the timeout is a safety net */
		if (poll(p, f->watch >= 0 ? 2 : 1, f->watch >= 0 ? 200 : 20) > 0 && (p[1].revents & POLLIN))
			while (read(f->watch, buf, sizeof(buf)) > 0)
				;
	}
}

static int unpack_opts(const struct seed *s, struct vine_extract_opts *xo);

static void *follow_main(void *arg)
{
	struct follow *f = arg;
	struct vine_extract_follow fw = { follow_wait, f };
	struct vine_extract_opts xo;

	unpack_opts(f->s, &xo);
	xo.quiet = 1;
	xo.follow = &fw;
	f->rc = vine_extract(&xo, f->fd, 0, f->staging, &f->t, &f->xs);
	if (f->rc < 0)
		snprintf(f->err, sizeof(f->err), "%s", vine_errmsg());
	return NULL;
}

static void follow_set(struct follow *f, int state)
{
	__atomic_store_n(&f->state, state, __ATOMIC_RELEASE);
	if (write(f->wake[1], "x", 1) < 0) {
		/* the pipe is empty and ours: cannot fail; the poll timeout covers it */
	}
}

static int publish_object(struct seed *s, const char *from, const char *id);

/*
 * Fetch id into partial while unpacking it into staging; publish the
 * object.  Returns 0 with *t (the unpacked tree) and *xs, 1 when the
 * object is published but must be unpacked again (*t NULL), -1 when the
 * fetch failed (its partial copy kept, as without following).
 */
static int fetch_following(struct seed *s, const char *id, const char *partial, const char *staging,
			   struct vine_tree **t, struct vine_extract_stats *xs)
{
	struct follow f = { .s = s, .watch = -1, .wake = { -1, -1 }, .staging = staging };
	pthread_t tid;
	struct stat a, b;
	int frc, rc = -1;

	*t = NULL;
	f.fd = open(partial, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f.fd < 0 || fstat(f.fd, &a) < 0) {
		vine_error_errno("cannot open '%s'", partial);
		goto out;
	}
	if (pipe2(f.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		vine_error_errno("cannot make a pipe");
		goto out;
	}
	f.watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f.watch >= 0 && inotify_add_watch(f.watch, partial, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
		close(f.watch);
		f.watch = -1;
	}
	if (pthread_create(&tid, NULL, follow_main, &f) != 0) {
		vine_error_errno("cannot start a thread");
		goto out;
	}
	frc = s->o->fetcher->fetch(s->o->fetcher->ctx, id, s->archive, partial);
	/* the verified object is what we followed only if it is the same file */
	if (frc == 0 && stat(partial, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		follow_set(&f, 1);
		rc = publish_object(s, partial, id) < 0 ? -1 : 1;
	} else {
		follow_set(&f, -1);
		if (frc == 0)
			rc = publish_object(s, partial, id) < 0 ? -1 : 1;
	}
	/* (the fetch's message, if any, is this thread's: the other has its own) */
	pthread_join(tid, NULL);
	if (rc == 1 && f.rc == 0 && __atomic_load_n(&f.state, __ATOMIC_ACQUIRE) == 1) {
		*t = f.t;
		*xs = f.xs;
		f.t = NULL;
		rc = 0;
	} else if (rc == 1) {
		note(s, "unpacking while fetching did not work out (%s): unpacking again",
		     f.rc < 0 ? f.err : "the fetch started over");
	}
	vine_tree_free(f.t);
out:
	if (f.fd >= 0)
		close(f.fd);
	if (f.watch >= 0)
		close(f.watch);
	for (int k = 0; k < 2; k++)
		if (f.wake[k] >= 0)
			close(f.wake[k]);
	return rc;
}

/* 1 unless VINE_TEST_NO_FOLLOW (vine(7)) turns unpacking while fetching off */
static int following(void)
{
	const char *e = getenv("VINE_TEST_NO_FOLLOW");

	return !e || !*e || !strcmp(e, "0");
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The id is known: under locks/<id>, make env/<short> ready. */
static int seed_known(struct seed *s, const char *id, int from_record, const char *verified, char **env)
{
	char *staging = NULL, *partial = NULL, *obj = vine_cache_path(&s->c, "objects", id, NULL);
	struct vine_tree *t = NULL;
	struct vine_extract_stats xs;
	int lk, fd = -1, copy = -1, hash = 1, rc = -1, r, drop = 0;
	struct stat st;

	*env = vine_cache_env_path(&s->c, id);
	lk = vine_cache_lock(&s->c, id, waiting, s);
	if (lk < 0)
		goto out;
	if ((r = vine_cache_env_ready(&s->c, id)) != 0) {
		rc = r < 0 ? -1 : 0;
		goto out;
	}
	if (vine_cache_sweep(&s->c, id) < 0 || vine_cache_sweep_stale(&s->c) < 0)
		goto out;
	partial = vine_cache_path(&s->c, "partial", id, NULL);
	if ((fd = open(obj, O_RDONLY | O_CLOEXEC)) >= 0) {
		hash = 0; /* verified when it was stored */
	} else if (verified) {
		if ((fd = open(verified, O_RDONLY | O_CLOEXEC)) < 0) {
			vine_error_errno("cannot open '%s'", verified);
			goto out;
		}
		hash = 0;
	} else if (s->o->fetcher && s->o->fetcher->verified && following()) {
		note(s, "fetching object %s, unpacking it as it arrives", id);
		if (!(staging = make_staging(s, id)))
			goto out;
		if ((r = fetch_following(s, id, partial, staging, &t, &xs)) < 0)
			goto out;
		if (r == 0) {
			hash = 0;
			goto unpacked;
		}
		/* fetched and published, not unpacked: from the object, afresh */
		if (vine_rm_rf(staging) < 0)
			goto out;
		free(staging);
		staging = NULL;
		if ((fd = open(obj, O_RDONLY | O_CLOEXEC)) < 0) {
			vine_error_errno("cannot open '%s'", obj);
			goto out;
		}
		hash = 0;
	} else if (s->o->fetcher) {
		note(s, "fetching object %s", id);
		/* a fetch that fails keeps its partial copy, for the next one to resume */
		if (s->o->fetcher->fetch(s->o->fetcher->ctx, id, s->archive, partial) < 0)
			goto out;
		if (s->o->fetcher->verified) {
			if (publish_object(s, partial, id) < 0)
				goto out;
			if ((fd = open(obj, O_RDONLY | O_CLOEXEC)) < 0) {
				vine_error_errno("cannot open '%s'", obj);
				goto out;
			}
			hash = 0;
		} else {
			drop = 1;
			if ((fd = open(partial, O_RDONLY | O_CLOEXEC)) < 0) {
				vine_error_errno("cannot open '%s'", partial);
				goto out;
			}
		}
	} else {
		if (open_archive(s) < 0)
			goto out;
		fd = s->fd;
		copy = open(partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (copy < 0) {
			vine_error_errno("cannot create '%s'", partial);
			goto out;
		}
		drop = 1;
	}
	if (fstat(fd, &st) < 0) {
		vine_error_errno("cannot stat '%s'", s->archive);
		goto out;
	}
	if (check_room(s, fd, (uint64_t)st.st_size) < 0)
		goto out;
	if (!(staging = make_staging(s, id)))
		goto out;
	if (unpack(s, fd, (uint64_t)st.st_size, hash, copy, staging, &t, &xs) < 0)
		goto out;
unpacked:
	if (hash && strcmp(xs.id, id)) {
		vine_error("'%s' is not object %s: its SHA-256 is %s", s->archive, id, xs.id);
		if (from_record)
			vine_cache_source_drop(&s->c, s->key);
		goto out;
	}
	if (finish_env(s, t, &xs, id, *env) < 0)
		goto out;
	if (hash && publish_object(s, partial, id) < 0)
		goto out;
	if (verified && !hash && publish_object(s, verified, id) < 0)
		goto out;
	if (publish_dir(staging, *env) < 0)
		goto out;
	s->made = 1;
	note(s, "ready: %s", *env);
	/* we hashed the archive file: remember it, as seed_unknown would */
	struct stat now;
	if (copy >= 0 && !from_record && fstat(s->fd, &now) == 0 && same_file(&s->st, &now) &&
	    vine_cache_source_put(&s->c, s->key, s->real, &s->st, id) < 0)
		goto out;
	rc = 0;
out:
	vine_tree_free(t);
	if (copy >= 0)
		close(copy);
	if (fd >= 0 && fd != s->fd)
		close(fd);
	if (rc < 0 && drop)
		unlink(partial);
	if (staging && rc < 0)
		vine_rm_rf(staging);
	if (lk >= 0)
		close(lk);
	free(staging);
	free(partial);
	free(obj);
	return rc;
}

/* The warm path: no lock, no reading the archive. */
static int ready_or_seed(struct seed *s, const char *id, int from_record, const char *verified, char **env)
{
	int r = vine_cache_env_ready(&s->c, id);

	if (r < 0)
		return -1;
	if (r == 0)
		return seed_known(s, id, from_record, verified, env);
	*env = vine_cache_env_path(&s->c, id);
	return 0;
}

/*
 * Under locks/src-<key>: copy the archive into tmp/ while hashing it, and
 * record it; *copied is the verified copy.  For an archive that was
 * probably rewritten unchanged, so that it is not unpacked for nothing.
 */
static int hash_first(struct seed *s, const char *lockname, char id[VINE_ID_LEN + 1], char **copied)
{
	char *copy_path = vine_cache_path(&s->c, "tmp", lockname, ".XXXXXX"), *buf = NULL;
	struct vine_sha256 h;
	struct vine_progress p;
	struct stat after;
	uint64_t off = 0, size = (uint64_t)s->st.st_size;
	int copy = -1, rc = -1;

	vine_sha256_init(&h);
	vine_progress_init(&p, "hashing", size, s->o->quiet);
	if (vine_cache_sweep(&s->c, lockname) < 0)
		goto out;
	if ((copy = mkostemp(copy_path, O_CLOEXEC)) < 0) {
		vine_error_errno("cannot create '%s'", copy_path);
		goto out;
	}
	note(s, "hashing '%s', changed since it was last seen", s->archive);
	buf = vine_xmalloc(1 << 20);
	while (off < size) {
		size_t n = size - off < (1 << 20) ? (size_t)(size - off) : (1 << 20);
		ssize_t got = vine_pread_full(s->fd, buf, n, (off_t)off);
		if (got != (ssize_t)n) {
			got < 0 ? vine_error_errno("cannot read '%s'", s->archive)
				: vine_error("'%s' changed while being read", s->archive);
			goto out;
		}
		vine_sha256_update(&h, buf, n);
		if (vine_write_full(copy, buf, n) < 0) {
			vine_error_errno("cannot write '%s'", copy_path);
			goto out;
		}
		off += n;
		vine_progress_update(&p, off, "B");
	}
	if (fstat(s->fd, &after) < 0 || !same_file(&s->st, &after)) {
		vine_error("'%s' changed while being read", s->archive);
		goto out;
	}
	vine_sha256_final(&h, id);
	rc = vine_cache_source_put(&s->c, s->key, s->real, &s->st, id);
out:
	vine_progress_end(&p);
	if (h.ctx) {
		char unused[VINE_ID_LEN + 1];
		vine_sha256_final(&h, unused);
	}
	if (copy >= 0)
		close(copy);
	if (rc < 0) {
		unlink(copy_path);
		free(copy_path);
	} else {
		*copied = copy_path;
	}
	free(buf);
	return rc;
}

/* The id is not known: hash while unpacking, under locks/src-<key>. */
static int seed_unknown(struct seed *s, char **env, char id[VINE_ID_LEN + 1])
{
	char lockname[40], *staging = NULL, *copy_path = NULL;
	struct vine_tree *t = NULL;
	struct vine_extract_stats xs;
	int slk, lk = -1, copy = -1, rc = -1, r;
	struct stat after;

	snprintf(lockname, sizeof(lockname), "src-%s", s->key);
	slk = vine_cache_lock(&s->c, lockname, waiting, s);
	if (slk < 0)
		return -1;
	r = vine_cache_source_get(&s->c, s->key, s->real, &s->st, id);
	if (r == 1) {
		close(slk); /* another seeder hashed it meanwhile */
		return seed_known(s, id, 1, NULL, env);
	}
	if (r == 2) {
		/* likely unchanged bytes: hash first rather than unpack for nothing;
		 * the lock stays held, as it guards the copy in tmp/ */
		char *copied = NULL;
		rc = hash_first(s, lockname, id, &copied);
		if (rc == 0) {
			rc = ready_or_seed(s, id, 1, copied, env);
			unlink(copied); /* gone already if it was published */
		}
		free(copied);
		close(slk);
		return rc;
	}
	if (check_room(s, s->fd, (uint64_t)s->st.st_size) < 0 ||
	    vine_cache_sweep(&s->c, lockname) < 0 || vine_cache_sweep_stale(&s->c) < 0 ||
	    !(staging = make_staging(s, lockname)))
		goto out;
	copy_path = vine_cache_path(&s->c, "tmp", lockname, ".XXXXXX");
	if ((copy = mkostemp(copy_path, O_CLOEXEC)) < 0) {
		vine_error_errno("cannot create '%s'", copy_path);
		goto out;
	}
	if (unpack(s, s->fd, (uint64_t)s->st.st_size, 1, copy, staging, &t, &xs) < 0)
		goto out;
	if (fstat(s->fd, &after) < 0 || !same_file(&s->st, &after)) {
		vine_error("'%s' changed while being read", s->archive);
		goto out;
	}
	memcpy(id, xs.id, VINE_ID_LEN + 1);
	*env = vine_cache_env_path(&s->c, id);
	if ((lk = vine_cache_lock(&s->c, id, waiting, s)) < 0)
		goto out;
	if ((r = vine_cache_env_ready(&s->c, id)) < 0)
		goto out;
	if (r == 0 && (vine_cache_sweep(&s->c, id) < 0 || finish_env(s, t, &xs, id, *env) < 0))
		goto out;
	if (publish_object(s, copy_path, id) < 0)
		goto out;
	if (r == 0) {
		if (publish_dir(staging, *env) < 0)
			goto out;
		s->made = 1;
		note(s, "ready: %s", *env);
	}
	if (vine_cache_source_put(&s->c, s->key, s->real, &s->st, id) < 0)
		goto out;
	rc = 0;
out:
	vine_tree_free(t);
	if (copy >= 0) {
		close(copy);
		unlink(copy_path); /* gone already if it was published */
	}
	if (staging)
		vine_rm_rf(staging); /* likewise */
	if (lk >= 0)
		close(lk);
	close(slk);
	free(staging);
	free(copy_path);
	return rc;
}

static void trimmed(void *ctx, const struct vine_cache_entry *e)
{
	const struct vine_seed_opts *o = ctx;

	if (o->removed && (e->has_archive || e->partial))
		o->removed(o->removed_ctx, e->id);
}

/*
 * The environment is ready: hold it (seeding it again if a trim removed it
 * in between), drop the archive and trim the cache as asked.
 */
static int hold_env(struct seed *s, const char *id, char **env)
{
	int fd = -2;

	for (int tries = 0; fd == -2; tries++) {
		if ((fd = vine_cache_hold(&s->c, id)) == -1)
			return -1;
		if (fd == -2) {
			free(*env);
			*env = NULL;
			if (tries == 3)
				return vine_error("the environment of %s keeps being removed", id);
			note(s, "'%s' was removed meanwhile: seeding it again", s->archive);
			if (ready_or_seed(s, id, 0, NULL, env) < 0)
				return -1;
		}
	}
	/* holding locks/<id> shared: no one fetches or unpacks it meanwhile */
	if (s->o->drop_archive) {
		int r = vine_cache_drop_archive(&s->c, id);
		if (r < 0)
			note(s, "%s", vine_errmsg());
		else if (r == 1 && s->o->removed)
			s->o->removed(s->o->removed_ctx, id);
		else if (r == 0)
			note(s, "keeping the archive of %s: this cache is being served", id);
	}
	if (s->o->cache_limit && s->made) {
		int64_t left = vine_cache_trim(&s->c, s->o->cache_limit, 0, trimmed, (void *)s->o);
		if (left < 0)
			note(s, "cannot trim the cache: %s", vine_errmsg());
		else if ((uint64_t)left > s->o->cache_limit)
			note(s, "the cache holds %lld bytes, over its limit, all in use",
			     (long long)left);
	}
	if (s->o->hold)
		*s->o->hold = fd;
	else
		close(fd);
	return 0;
}

int vine_seed(const struct vine_seed_opts *o, const char *archive, char **env,
	      char id[VINE_ID_LEN + 1])
{
	struct seed s = { .o = o, .archive = archive, .fd = -1 };
	int rc = -1;

	*env = NULL;
	if (o->expect_id && !vine_id_valid(o->expect_id))
		return vine_error("'%s' is not an object id (64 lowercase hex digits)", o->expect_id);
	if (o->fetcher && !o->expect_id)
		return vine_error("fetching an object needs its id");
	if (vine_cache_open(&s.c, o->cache) < 0)
		return -1;
	if (o->expect_id) {
		memcpy(id, o->expect_id, VINE_ID_LEN + 1);
		rc = ready_or_seed(&s, id, 0, NULL, env);
	} else if (open_archive(&s) == 0) {
		if (vine_cache_source_get(&s.c, s.key, s.real, &s.st, id) == 1)
			rc = ready_or_seed(&s, id, 1, NULL, env);
		else
			rc = seed_unknown(&s, env, id);
	}
	if (rc == 0)
		rc = hold_env(&s, id, env);
	if (rc < 0) {
		free(*env);
		*env = NULL;
	}
	if (s.fd >= 0)
		close(s.fd);
	free(s.real);
	vine_cache_close(&s.c);
	return rc;
}

static int path_is(const char *env, const char *name, int dir)
{
	char *p = vine_xasprintf("%s/%s", env, name);
	struct stat st;
	int r = stat(p, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));

	free(p);
	return r;
}

int vine_env_activate(const char *env)
{
	const char *path = getenv("PATH");
	char *np = vine_xasprintf("%s/bin:%s", env, path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	int venv = path_is(env, "pyvenv.cfg", 0), conda = path_is(env, "conda-meta", 1);
	int rc = 0;

	if (setenv("PATH", np, 1) < 0 || setenv("VINE_ENV", env, 1) < 0 ||
	    (venv ? setenv("VIRTUAL_ENV", env, 1) : unsetenv("VIRTUAL_ENV")) < 0 ||
	    (conda ? setenv("CONDA_PREFIX", env, 1) : unsetenv("CONDA_PREFIX")) < 0 ||
	    unsetenv("PYTHONHOME") < 0)
		rc = vine_error_errno("cannot set the environment");
	free(np);
	return rc;
}
