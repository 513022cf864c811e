/*
 * extract.c - unpack archives into a staging directory (see extract.h).
 *
 * Threads: for a vine-format archive, jobs workers claim members in order.
 * When the archive is being hashed, the hash is one sequential job that
 * whichever worker needs the next bytes advances, a step at a time, under
 * the job mutex; when a copy is being made, a member is read back from the
 * copy only after the hash has passed its end.  The main thread only
 * draws the progress meter and waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <libdeflate.h>
#include <zlib.h>

#include "archive/extract.h"
#include "util/progress.h"
#include "util/util.h"
#include "archive/vformat.h"

#define CHUNK (1 << 20)              /* read size for streams and hashing */
#define HASH_STEP ((uint64_t)8 << 20) /* bytes hashed per turn */
#define STREAM_MIN ((size_t)64 << 20)

/* ---- the entry writer: one per thread ---- */

struct dirrec {
	char *path;
	mode_t mode;
	struct timespec mtime;
	int explicit;
	uint64_t seq;
};

struct linkrec {
	char *path, *target;
	int hard;
	uint64_t seq;
};

struct writer {
	int root;
	mode_t umask;
	char *cpath;           /* cached parent directory and its fd */
	int cfd;
	struct dirrec *dirs;
	size_t nd, ad;
	struct linkrec *links;
	size_t nl, al;
	uint64_t seq, entries, bytes;
	int64_t manifest_at;   /* seq of the manifest entry, or -1 */
	uint64_t *progress;    /* shared count of bytes written */
	int *failed;           /* shared: stop early */
	uint64_t *total;       /* shared: entries read by all writers */
	uint64_t own_total;    /* what total points at when not shared */
	void *job;             /* the worker's job */
};

static void writer_init(struct writer *w, int root, mode_t um, uint64_t *progress, int *failed)
{
	memset(w, 0, sizeof(*w));
	w->root = root;
	w->umask = um;
	w->cfd = -1;
	w->manifest_at = -1;
	w->progress = progress;
	w->failed = failed;
	w->total = &w->own_total;
}

static void writer_release(struct writer *w)
{
	if (w->cfd >= 0)
		close(w->cfd);
	free(w->cpath);
	for (size_t i = 0; i < w->nd; i++)
		free(w->dirs[i].path);
	free(w->dirs);
	for (size_t i = 0; i < w->nl; i++) {
		free(w->links[i].path);
		free(w->links[i].target);
	}
	free(w->links);
	memset(w, 0, sizeof(*w));
	w->cfd = -1;
}

static void add_dir(struct writer *w, const char *path, size_t len, mode_t mode,
		    const struct timespec *mtime, int explicit)
{
	if (w->nd == w->ad) {
		w->ad = w->ad ? 2 * w->ad : 64;
		w->dirs = vine_xrealloc(w->dirs, w->ad * sizeof(*w->dirs));
	}
	struct dirrec *d = &w->dirs[w->nd++];
	d->path = vine_xstrndup(path, len);
	d->mode = mode;
	d->mtime = mtime ? *mtime : (struct timespec){ 0, UTIME_OMIT };
	d->explicit = explicit;
	d->seq = w->seq;
}

static void made_dir(void *ctx, const char *path, size_t len)
{
	struct writer *w = ctx;

	add_dir(w, path, len, 0755 & ~w->umask, NULL, 0);
}

/* The fd of the parent directory of path (made as needed); *name gets the last component. */
static int parent_fd(struct writer *w, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;

	*name = slash ? slash + 1 : path;
	if (w->cfd >= 0 && strlen(w->cpath) == plen && !memcmp(w->cpath, path, plen))
		return w->cfd;
	if (w->cfd >= 0)
		close(w->cfd);
	free(w->cpath);
	w->cpath = vine_xstrndup(path, plen);
	w->cfd = vine_open_dir_beneath(w->root, w->cpath, made_dir, w);
	return w->cfd;
}

static const char *entry_path(struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);

	return p ? p : archive_entry_pathname_utf8(e);
}

static int write_data(struct writer *w, struct archive *a, int fd, const char *path, int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int64_t end = 0;
	int r;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (len && vine_pwrite_full(fd, buf, len, (off_t)off) < 0)
			return vine_error_errno("cannot write '%s'", path);
		if ((int64_t)(off + (la_int64_t)len) > end)
			end = off + (la_int64_t)len;
		w->bytes += len;
		if (w->progress)
			__atomic_add_fetch(w->progress, len, __ATOMIC_RELAXED);
	}
	if (r != ARCHIVE_EOF)
		return vine_error("cannot read '%s' from the archive: %s", path, archive_error_string(a));
	/* a sparse file ends in a hole */
	if (size > end && ftruncate(fd, (off_t)size) < 0)
		return vine_error_errno("cannot write '%s'", path);
	return 0;
}

static int write_file(struct writer *w, struct archive *a, struct archive_entry *e, const char *path)
{
	const char *name;
	int pfd = parent_fd(w, path, &name);
	mode_t mode = archive_entry_perm(e) & 0777, cmode = mode & ~w->umask;
	struct timespec ts[2];
	int fd, rc = -1;

	if (pfd < 0)
		return -1;
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, cmode);
	if (fd < 0)
		return errno == EEXIST ? vine_error("'%s' appears twice in the archive", path)
				       : vine_error_errno("cannot create '%s'", path);
	if (write_data(w, a, fd, path, archive_entry_size(e)) < 0)
		goto out;
	if (cmode != mode && fchmod(fd, mode) < 0) {
		vine_error_errno("cannot set the mode of '%s'", path);
		goto out;
	}
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	ts[0] = ts[1];
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	}
	if (futimens(fd, ts) < 0) {
		vine_error_errno("cannot set the times of '%s'", path);
		goto out;
	}
	rc = 0;
out:
	if (close(fd) < 0 && rc == 0)
		rc = vine_error_errno("cannot write '%s'", path);
	return rc;
}

static int write_dir(struct writer *w, struct archive_entry *e, const char *path)
{
	struct timespec mt = { archive_entry_mtime(e), archive_entry_mtime_nsec(e) };
	const char *name;
	struct stat st;

	if (*path) {
		int pfd = parent_fd(w, path, &name);
		if (pfd < 0)
			return -1;
		if (mkdirat(pfd, name, 0700) < 0) {
			if (errno != EEXIST)
				return vine_error_errno("cannot create directory '%s'", path);
			if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
				return vine_error("'%s' appears twice in the archive", path);
		}
	}
	/* the root's mode is the cache's business, not the archive's ("." entries) */
	if (*path)
		add_dir(w, path, strlen(path), archive_entry_perm(e) & 01777, &mt, 1);
	return 0;
}

static void add_link(struct writer *w, const char *path, const char *target, int hard)
{
	if (w->nl == w->al) {
		w->al = w->al ? 2 * w->al : 16;
		w->links = vine_xrealloc(w->links, w->al * sizeof(*w->links));
	}
	struct linkrec *l = &w->links[w->nl++];
	l->path = vine_xstrdup(path);
	l->target = vine_xstrdup(target);
	l->hard = hard;
	l->seq = w->seq;
}

static int write_entry(struct writer *w, struct archive *a, struct archive_entry *e)
{
	const char *raw = entry_path(e), *hl = archive_entry_hardlink(e);
	char *path;
	int rc = 0;

	if (!raw)
		return vine_error("archive entry with an unreadable name");
	if (!(path = vine_path_clean(raw)))
		return -1;
	/* every entry costs memory until the end (directory and link records) */
	if (__atomic_add_fetch(w->total, 1, __ATOMIC_RELAXED) > VINE_EXTRACT_ENTRIES_MAX) {
		free(path);
		return vine_error("more than %d entries: over the limit", VINE_EXTRACT_ENTRIES_MAX);
	}
	if (w->entries++ == 1)
		vine_test_pause("unpack"); /* one entry unpacked by this thread, more to come */
	if (!strcmp(path, VINE_MANIFEST_PATH))
		w->manifest_at = (int64_t)w->seq;
	if (hl) {
		char *t = vine_path_clean(hl);
		if (!t)
			rc = vine_error_prefix("hard link '%s' points outside the archive", path);
		else if (!*path || !*t)
			rc = vine_error("hard link '%s': invalid name", raw);
		else
			add_link(w, path, t, 1);
		free(t);
		goto out;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		rc = !*path ? vine_error("'%s': a file cannot be the root", raw) : write_file(w, a, e, path);
		break;
	case AE_IFDIR:
		rc = write_dir(w, e, path);
		break;
	case AE_IFLNK:
		if (!*path || !archive_entry_symlink(e))
			rc = vine_error("symlink '%s': invalid entry", raw);
		else
			add_link(w, path, archive_entry_symlink(e), 0);
		break;
	default:
		rc = vine_error("'%s': device nodes, fifos and sockets are not allowed", path);
	}
out:
	free(path);
	w->seq++;
	return rc;
}

/* Read every entry of an open archive. */
static int write_all(struct writer *w, struct archive *a, const char *what)
{
	struct archive_entry *e;
	int r;

	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (__atomic_load_n(w->failed, __ATOMIC_RELAXED))
			return -1;
		if (write_entry(w, a, e) < 0)
			return -1;
	}
	if (r != ARCHIVE_EOF)
		return vine_error("%s: %s", what, archive_error_string(a));
	return 0;
}

/* ---- links, made after every file, in archive order ---- */

static int cmp_link(const void *a, const void *b)
{
	const struct linkrec *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int make_links(struct writer *w, struct linkrec *l, size_t n)
{
	if (n)
		qsort(l, n, sizeof(*l), cmp_link);
	for (size_t i = 0; i < n; i++) {
		const char *name, *tname;
		int pfd = parent_fd(w, l[i].path, &name);
		if (pfd < 0)
			return -1;
		if (!l[i].hard) {
			if (symlinkat(l[i].target, pfd, name) < 0)
				return errno == EEXIST ? vine_error("'%s' appears twice in the archive", l[i].path)
						       : vine_error_errno("cannot create symlink '%s'", l[i].path);
			continue;
		}
		const char *slash = strrchr(l[i].target, '/');
		char *tdir = slash ? vine_xstrndup(l[i].target, (size_t)(slash - l[i].target)) : vine_xstrdup("");
		struct stat st;
		int tfd = vine_open_dir_beneath(w->root, tdir, NULL, NULL), rc = 0;
		free(tdir);
		tname = slash ? slash + 1 : l[i].target;
		if (tfd < 0)
			rc = vine_error_prefix("hard link '%s'", l[i].path);
		else if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = vine_error("hard link '%s': target '%s' is not in the archive", l[i].path, l[i].target);
		else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			rc = vine_error("hard link '%s': target '%s' is not a file", l[i].path, l[i].target);
		else if (linkat(tfd, tname, pfd, name, 0) < 0)
			rc = errno == EEXIST ? vine_error("'%s' appears twice in the archive", l[i].path)
					     : vine_error_errno("cannot create hard link '%s'", l[i].path);
		if (tfd >= 0)
			close(tfd);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- the tree ---- */

struct vine_tree {
	struct writer w;       /* the merged records; also writes vine_tree_put */
};

int vine_tree_root(const struct vine_tree *t)
{
	return t->w.root;
}

void vine_tree_free(struct vine_tree *t)
{
	if (!t)
		return;
	if (t->w.root >= 0)
		close(t->w.root);
	writer_release(&t->w);
	free(t);
}

int vine_tree_put(struct vine_tree *t, const char *path, const void *data, size_t len, mode_t mode)
{
	const char *name;
	int pfd = parent_fd(&t->w, path, &name), fd;

	if (pfd < 0)
		return -1;
	if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		return vine_error_errno("cannot replace '%s'", path);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return vine_error_errno("cannot create '%s'", path);
	return vine_write_close(fd, path, data, len);
}

static int cmp_dir(const void *a, const void *b)
{
	const struct dirrec *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	if (x->explicit != y->explicit)
		return x->explicit - y->explicit;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort the directory records; two from the archive for one path is a duplicate. */
static int check_dirs(struct writer *w)
{
	if (w->nd)
		qsort(w->dirs, w->nd, sizeof(*w->dirs), cmp_dir);
	for (size_t i = 1; i < w->nd; i++)
		if (w->dirs[i].explicit && w->dirs[i - 1].explicit && !strcmp(w->dirs[i].path, w->dirs[i - 1].path))
			return vine_error("'%s' appears twice in the archive", w->dirs[i].path);
	return 0;
}

int vine_tree_finish(struct vine_tree *t)
{
	struct writer *w = &t->w;

	if (w->cfd >= 0) {
		close(w->cfd);
		w->cfd = -1;
	}
	if (w->nd)
		qsort(w->dirs, w->nd, sizeof(*w->dirs), cmp_dir);
	/* deepest first, so a read-only parent does not stop its children */
	for (size_t i = w->nd; i-- > 0;) {
		struct dirrec *d = &w->dirs[i];
		if (i + 1 < w->nd && !strcmp(d->path, w->dirs[i + 1].path))
			continue; /* the sorted order puts the record that wins last */
		int fd = *d->path ? vine_open_beneath(w->root, d->path, O_RDONLY | O_DIRECTORY, 0)
				  : fcntl(w->root, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return vine_error_prefix("cannot set the mode of '%s'", d->path);
		struct timespec ts[2] = { d->mtime, d->mtime };
		int rc = 0;
		if (fchmod(fd, d->mode) < 0 || futimens(fd, ts) < 0)
			rc = vine_error_errno("cannot set the mode of '%s'", d->path);
		close(fd);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- hashing (and copying) the archive ---- */

struct job {
	const struct vine_extract_opts *o;
	int src, rd;           /* the archive; where members are read from */
	uint64_t size;
	struct vine_index idx;
	pthread_mutex_t mu;
	pthread_cond_t cv, cv_main;
	struct vine_sha256 sha;
	uint64_t hashed;       /* bytes hashed (and copied) so far */
	int hashing;           /* a worker is advancing the hash */
	uint32_t next;         /* next member to claim */
	int running;           /* workers still running */
	int failed;
	char err[1024];
	uint64_t progress;
	uint64_t total;        /* entries read by all workers */
	uint64_t *counts;      /* entries in each member */
	int64_t *manifest;     /* per member: the manifest's entry number, or -1 */
	struct writer *w;      /* one per worker */
	int root;
	/* following a growing archive (o->follow): members are found by
	 * scan_members() as their bytes arrive and appended to idx.m (and
	 * counts, manifest: all three grow together, under mu) */
	uint32_t cap;          /* members allocated */
	char **ubuf;           /* per member: its bytes inflated by the scan, or NULL */
	uint64_t pending;      /* bytes in ubuf not unpacked yet */
	int scanned;           /* the scan is over: no more members */
	uint64_t have;         /* bytes of the archive known to be there */
	int complete;          /* the archive is whole: have is its size */
};

static void job_fail(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	if (!j->failed) {
		j->failed = 1;
		snprintf(j->err, sizeof(j->err), "%s", vine_errmsg());
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* Hash (and copy) the archive's bytes [from, to). */
static int hash_range(struct job *j, uint64_t from, uint64_t to, char *buf)
{
	while (from < to) {
		size_t n = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		ssize_t got = vine_pread_full(j->src, buf, n, (off_t)from);
		if (got < 0)
			return vine_error_errno("cannot read the archive");
		if ((size_t)got != n)
			return vine_error("cannot read the archive: it shrank while being read");
		vine_sha256_update(&j->sha, buf, n);
		if (j->o->copy_fd >= 0 && vine_pwrite_full(j->o->copy_fd, buf, n, (off_t)from) < 0)
			return vine_error_errno("cannot write the archive into the cache");
		from += n;
	}
	return 0;
}

/*
 * Wait until the hash has passed need, advancing it ourselves when nobody
 * is; then, if nobody is hashing, keep it ahead up to ahead, so that the
 * others rarely wait for it.
 */
static int hash_until(struct job *j, uint64_t need, uint64_t ahead, char **buf)
{
	int rc = 0;

	if (!j->o->hash)
		return 0;
	pthread_mutex_lock(&j->mu);
	while (!j->failed) {
		if (j->hashed >= need) {
			if (j->hashing || j->hashed >= ahead || j->hashed >= j->size)
				break;
		} else if (j->hashing) {
			pthread_cond_wait(&j->cv, &j->mu);
			continue;
		}
		uint64_t from = j->hashed, to = need > from + HASH_STEP ? need : from + HASH_STEP;
		if (to > j->size)
			to = j->size;
		j->hashing = 1;
		pthread_mutex_unlock(&j->mu);
		if (!*buf)
			*buf = vine_xmalloc(CHUNK);
		rc = hash_range(j, from, to, *buf);
		pthread_mutex_lock(&j->mu);
		j->hashing = 0;
		if (rc == 0)
			j->hashed = to;
		else if (!j->failed) {
			j->failed = 1;
			snprintf(j->err, sizeof(j->err), "%s", vine_errmsg());
		}
		pthread_cond_broadcast(&j->cv);
		if (rc < 0)
			break;
	}
	if (j->failed && rc == 0)
		rc = -1;
	pthread_mutex_unlock(&j->mu);
	return rc;
}

/* ---- one member ---- */

struct wbufs {
	char *c, *u, *h;       /* compressed, uncompressed, hashing */
	size_t cl, ul;
	struct libdeflate_decompressor *d;
};

static uint32_t trailer_crc(const char *c, size_t clen)
{
	const unsigned char *t = (const unsigned char *)c + clen - 8;

	return (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
}

/* libarchive read callback for a member inflated as a stream */
struct zin {
	struct job *j;
	const struct vine_member *m;
	uint32_t i;
	z_stream z;
	uint64_t cdone;        /* compressed bytes read */
	char *in, *out;
	int end, err;
	unsigned char tail[8];
};

static ssize_t zin_read(struct archive *a, void *ctx, const void **buf)
{
	struct zin *s = ctx;

	if (s->end)
		return 0;
	s->z.next_out = (Bytef *)s->out;
	s->z.avail_out = CHUNK;
	while (s->z.avail_out == CHUNK) {
		if (s->z.avail_in == 0) {
			size_t n = s->m->clen - s->cdone < CHUNK ? (size_t)(s->m->clen - s->cdone) : CHUNK;
			if (n == 0) {
				archive_set_error(a, EINVAL, "member %u is truncated", s->i);
				return s->err = -1;
			}
			ssize_t got = vine_pread_full(s->j->rd, s->in, n, (off_t)(s->m->coff + s->cdone));
			if (got != (ssize_t)n) {
				archive_set_error(a, EIO, "cannot read member %u", s->i);
				return s->err = -1;
			}
			/* keep the last 8 bytes: the trailer's crc32 and size */
			if (n >= 8) {
				memcpy(s->tail, s->in + n - 8, 8);
			} else {
				memmove(s->tail, s->tail + n, 8 - n);
				memcpy(s->tail + 8 - n, s->in, n);
			}
			s->cdone += n;
			s->z.next_in = (Bytef *)s->in;
			s->z.avail_in = (uInt)n;
		}
		int r = inflate(&s->z, Z_NO_FLUSH);
		if (r == Z_STREAM_END) {
			s->end = 1;
			break;
		}
		if (r != Z_OK && r != Z_BUF_ERROR) {
			archive_set_error(a, EINVAL, "member %u is corrupt", s->i);
			return s->err = -1;
		}
	}
	*buf = s->out;
	return (ssize_t)(CHUNK - s->z.avail_out);
}

static int member_stream(struct job *j, struct writer *w, const struct vine_member *m, uint32_t i)
{
	struct zin s = { .j = j, .m = m, .i = i };
	struct archive *a;
	int rc = -1;

	s.in = vine_xmalloc(CHUNK);
	s.out = vine_xmalloc(CHUNK);
	if (inflateInit2(&s.z, 16 + 15) != Z_OK)
		abort();
	a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open2(a, &s, NULL, zin_read, NULL, NULL) != ARCHIVE_OK) {
		vine_error("member %u: %s", i, archive_error_string(a));
		goto out;
	}
	char what[32];
	snprintf(what, sizeof(what), "member %u", i);
	if (write_all(w, a, what) < 0)
		goto out;
	/* libarchive stops at the end-of-archive blocks: inflate the rest */
	while (!s.end && !s.err) {
		const void *dummy;
		if (zin_read(a, &s, &dummy) < 0)
			break;
	}
	uint32_t tcrc = (uint32_t)s.tail[0] | (uint32_t)s.tail[1] << 8 | (uint32_t)s.tail[2] << 16 |
			(uint32_t)s.tail[3] << 24;
	if (s.err)
		vine_error("member %u is corrupt", i);
	else if (s.cdone != m->clen || s.z.avail_in != 0 || s.z.total_out != m->ulen)
		vine_error("member %u is corrupt: its length does not match the index", i);
	else if (tcrc != m->crc32)
		vine_error("member %u is corrupt: crc32 %08x, the index says %08x", i, tcrc, m->crc32);
	else
		rc = 0;
out:
	archive_read_free(a);
	inflateEnd(&s.z);
	free(s.in);
	free(s.out);
	return rc;
}

/* Unpack a member's inflated bytes (a tar fragment). */
static int member_tar(struct writer *w, const char *u, size_t ulen, uint32_t i)
{
	struct archive *a = archive_read_new();
	int rc = -1;

	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, u, ulen) != ARCHIVE_OK) {
		vine_error("member %u: %s", i, archive_error_string(a));
	} else {
		char what[32];
		snprintf(what, sizeof(what), "member %u", i);
		rc = write_all(w, a, what);
	}
	archive_read_free(a);
	return rc;
}

static int member_whole(struct job *j, struct writer *w, struct wbufs *b, const struct vine_member *m,
			uint32_t i)
{
	size_t in_used = 0, out_used = 0;

	if (b->cl < m->clen) {
		free(b->c);
		b->c = vine_xmalloc(b->cl = (size_t)m->clen);
	}
	if (b->ul < m->ulen || !b->u) {
		free(b->u);
		b->u = vine_xmalloc(b->ul = (size_t)m->ulen ? (size_t)m->ulen : 1);
	}
	ssize_t got = vine_pread_full(j->rd, b->c, (size_t)m->clen, (off_t)m->coff);
	if (got < 0)
		return vine_error_errno("cannot read member %u", i);
	if ((uint64_t)got != m->clen)
		return vine_error("member %u is truncated", i);
	if (m->clen < 18)
		return vine_error("member %u is corrupt", i);
	enum libdeflate_result r = libdeflate_gzip_decompress_ex(b->d, b->c, (size_t)m->clen, b->u,
								 (size_t)m->ulen, &in_used, &out_used);
	if (r != LIBDEFLATE_SUCCESS)
		return vine_error("member %u is corrupt%s", i,
				  r == LIBDEFLATE_INSUFFICIENT_SPACE ? ": longer than the index says" : "");
	if (in_used != m->clen || out_used != m->ulen)
		return vine_error("member %u is corrupt: its length does not match the index", i);
	/* libdeflate checked the data against the trailer; check the trailer against the index */
	if (trailer_crc(b->c, (size_t)m->clen) != m->crc32)
		return vine_error("member %u is corrupt: crc32 %08x, the index says %08x", i,
				  trailer_crc(b->c, (size_t)m->clen), m->crc32);
	return member_tar(w, b->u, (size_t)m->ulen, i);
}

static void *worker(void *arg)
{
	struct writer *w = arg;
	struct job *j = w->job;
	struct wbufs b = { 0 };
	size_t smin = j->o->stream_min ? j->o->stream_min : STREAM_MIN;

	b.d = libdeflate_alloc_decompressor();
	if (!b.d)
		abort();
	for (;;) {
		pthread_mutex_lock(&j->mu);
		/* following: wait for the scan to find the next member */
		while (j->o->follow && !j->failed && j->next == j->idx.n && !j->scanned)
			pthread_cond_wait(&j->cv, &j->mu);
		if (j->failed || j->next == j->idx.n) {
			pthread_mutex_unlock(&j->mu);
			break;
		}
		uint32_t i = j->next++;
		struct vine_member mm = j->idx.m[i]; /* (idx.m grows while following) */
		char *ub = j->ubuf ? j->ubuf[i] : NULL;
		pthread_mutex_unlock(&j->mu);
		const struct vine_member *m = &mm;
		if (hash_until(j, m->coff + m->clen, m->coff + m->clen + 2 * HASH_STEP, &b.h) < 0)
			break;
		uint64_t e0 = w->entries;
		w->seq = (uint64_t)i << 32;
		w->manifest_at = -1;
		int rc = ub ? member_tar(w, ub, (size_t)m->ulen, i)
		       : m->ulen >= smin ? member_stream(j, w, m, i) : member_whole(j, w, &b, m, i);
		if (ub) {
			free(ub);
			pthread_mutex_lock(&j->mu);
			j->ubuf[i] = NULL;
			j->pending -= m->ulen;
			pthread_cond_broadcast(&j->cv);
			pthread_mutex_unlock(&j->mu);
		}
		__atomic_add_fetch(&j->progress, m->ulen, __ATOMIC_RELAXED);
		pthread_mutex_lock(&j->mu);
		j->counts[i] = w->entries - e0;
		j->manifest[i] = w->manifest_at < 0 ? -1 : (int64_t)(w->manifest_at & 0xffffffff);
		pthread_mutex_unlock(&j->mu);
		if (rc < 0) {
			job_fail(j);
			break;
		}
	}
	/* the rest of the hash (the index members, or what is left) */
	hash_until(j, j->size, j->size, &b.h);
	libdeflate_free_decompressor(b.d);
	free(b.c);
	free(b.u);
	free(b.h);
	pthread_mutex_lock(&j->mu);
	j->running--;
	pthread_cond_signal(&j->cv_main);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void merge(struct writer *to, struct writer *from)
{
	to->dirs = vine_xrealloc(to->dirs, (to->nd + from->nd + 1) * sizeof(*to->dirs));
	if (from->nd)
		memcpy(to->dirs + to->nd, from->dirs, from->nd * sizeof(*from->dirs));
	to->nd += from->nd;
	to->ad = to->nd + 1;
	to->links = vine_xrealloc(to->links, (to->nl + from->nl + 1) * sizeof(*to->links));
	if (from->nl)
		memcpy(to->links + to->nl, from->links, from->nl * sizeof(*from->links));
	to->nl += from->nl;
	to->al = to->nl + 1;
	to->entries += from->entries;
	to->bytes += from->bytes;
	from->nd = from->nl = 0;
}

/* ---- following a growing archive ---- */

/* Wait until the archive holds need bytes, or is whole; 0, or -1 with a message. */
static int follow_to(struct job *j, uint64_t need)
{
	if (j->have >= need || j->complete)
		return 0;
	if (j->o->follow->wait(j->o->follow->ctx, need, &j->have, &j->complete) < 0)
		return -1;
	if (j->have < need && !j->complete)
		return vine_error("the archive stopped growing at %llu bytes", (unsigned long long)j->have);
	return 0;
}

/* Read len bytes at off of the growing archive (off + len <= j->have). */
static int follow_read(struct job *j, void *buf, size_t len, uint64_t off)
{
	ssize_t got = vine_pread_full(j->src, buf, len, (off_t)off);

	if (got < 0)
		return vine_error_errno("cannot read the archive");
	if ((size_t)got != len)
		return vine_error("cannot read the archive: it shrank while being read");
	return 0;
}

/*
 * Record a member found by the scan, for the workers, with its inflated
 * bytes (ub, malloc'd, or NULL: the worker inflates it again).  Waits while
 * more than FOLLOW_PENDING bytes are inflated and not unpacked yet.
 */
#define FOLLOW_PENDING ((uint64_t)64 << 20)
static void follow_add(struct job *j, const struct vine_member *m, char *ub)
{
	pthread_mutex_lock(&j->mu);
	while (ub && j->pending > FOLLOW_PENDING && !j->failed)
		pthread_cond_wait(&j->cv, &j->mu);
	if (j->idx.n == j->cap) {
		j->cap = j->cap ? 2 * j->cap : 256;
		j->idx.m = vine_xrealloc(j->idx.m, j->cap * sizeof(*j->idx.m));
		j->counts = vine_xrealloc(j->counts, j->cap * sizeof(*j->counts));
		j->manifest = vine_xrealloc(j->manifest, j->cap * sizeof(*j->manifest));
		j->ubuf = vine_xrealloc(j->ubuf, j->cap * sizeof(*j->ubuf));
	}
	j->counts[j->idx.n] = 0;
	j->manifest[j->idx.n] = -1;
	j->ubuf[j->idx.n] = ub;
	if (ub)
		j->pending += m->ulen;
	j->idx.m[j->idx.n++] = *m;
	j->idx.total += m->ulen;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/*
 * Find the data members of a vine archive that is still arriving, one
 * after another, as their bytes come: inflate each (zlib checks it against
 * its own trailer) and hand it to the workers; stop at the first index
 * member.  What was found is checked against the index once the archive is
 * whole (follow_check).  Sets j->idx.x0off to where the members ended.
 */
static int scan_members(struct job *j, struct vine_progress *p)
{
	unsigned char hdr[14], *in = vine_xmalloc(CHUNK), *out = vine_xmalloc(CHUNK);
	uint64_t off = 0;
	size_t smin = j->o->stream_min ? j->o->stream_min : STREAM_MIN;
	struct vine_buf ub = VINE_BUF_INIT;
	z_stream z;
	int rc = -1, keep;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + 15) != Z_OK)
		abort();
	for (;;) {
		if (__atomic_load_n(&j->failed, __ATOMIC_RELAXED))
			goto out;
		if (follow_to(j, off + sizeof(hdr)) < 0)
			goto out;
		if (j->have - off < sizeof(hdr)) {
			vine_error("the archive ends without an index after %llu bytes", (unsigned long long)off);
			goto out;
		}
		if (follow_read(j, hdr, sizeof(hdr), off) < 0)
			goto out;
		if (hdr[0] != 0x1f || hdr[1] != 0x8b || hdr[2] != 8) {
			vine_error("no gzip member at byte %llu", (unsigned long long)off);
			goto out;
		}
		/* an index member: FEXTRA with the subfield 'V' 'X' */
		if ((hdr[3] & 4) && hdr[12] == 'V' && hdr[13] == 'X')
			break;
		struct vine_member m = { .coff = off, .uoff = j->idx.total };
		inflateReset(&z);
		vine_buf_reset(&ub);
		keep = 1; /* its bytes go to the worker, unless it is large */
		for (;;) {
			if (z.avail_in == 0) {
				if (follow_to(j, off + 1) < 0)
					goto out;
				size_t n = j->have - off < CHUNK ? (size_t)(j->have - off) : CHUNK;
				if (n == 0) {
					vine_error("member %u is truncated", j->idx.n);
					goto out;
				}
				if (follow_read(j, in, n, off) < 0)
					goto out;
				off += n;
				z.next_in = in;
				z.avail_in = (uInt)n;
			}
			z.next_out = out;
			z.avail_out = CHUNK;
			int r = inflate(&z, Z_NO_FLUSH);
			if (keep && z.total_out >= smin) {
				keep = 0;
				vine_buf_release(&ub);
			}
			if (keep)
				vine_buf_add(&ub, out, CHUNK - z.avail_out);
			if (r == Z_STREAM_END)
				break;
			if ((r != Z_OK && r != Z_BUF_ERROR) || z.total_out > VINE_MEMBER_MAX) {
				vine_error("member %u is corrupt", j->idx.n);
				goto out;
			}
		}
		off -= z.avail_in; /* the next member's first bytes */
		z.avail_in = 0;
		m.clen = off - m.coff;
		m.ulen = z.total_out;
		m.crc32 = (uint32_t)z.adler;
		follow_add(j, &m, keep ? vine_buf_detach(&ub, NULL) : NULL);
		vine_progress_update(p, off, "B");
	}
	j->idx.x0off = off;
	rc = 0;
out:
	vine_buf_release(&ub);
	inflateEnd(&z);
	free(in);
	free(out);
	return rc;
}

/* The archive is whole: its index must describe exactly the members unpacked. */
static int follow_check(struct job *j)
{
	struct vine_index idx;
	int r, same;

	if (follow_to(j, UINT64_MAX) < 0)
		return -1;
	r = vine_index_read(j->src, j->have, &idx);
	if (r < 0)
		return -1;
	if (r == 0)
		return vine_error("not a vine-format archive (no index)");
	same = idx.n == j->idx.n && idx.total == j->idx.total && idx.x0off == j->idx.x0off;
	for (uint32_t i = 0; same && i < idx.n; i++) {
		const struct vine_member *a = &idx.m[i], *b = &j->idx.m[i];
		if (a->crc32 != b->crc32)
			vine_error("member %u is corrupt: crc32 %08x, the index says %08x", i, b->crc32, a->crc32);
		same = a->coff == b->coff && a->clen == b->clen && a->uoff == b->uoff && a->ulen == b->ulen &&
		       a->crc32 == b->crc32;
	}
	if (!same && idx.n == j->idx.n)
		vine_error("the archive's index does not describe its members");
	else if (!same)
		vine_error("the archive's index lists %u members, it holds %u", idx.n, j->idx.n);
	vine_index_free(&idx);
	return same ? 0 : -1;
}

static int extract_indexed(struct job *j, struct vine_tree *t, struct vine_extract_stats *st)
{
	int jobs = j->o->jobs < 1 ? 1 : j->o->jobs;
	struct vine_progress p;
	pthread_t *tid;
	int started = 0, rc = 0;

	if ((uint32_t)jobs > j->idx.n && !j->o->follow)
		jobs = (int)j->idx.n;
	if (!j->o->follow) {
		j->counts = vine_xcalloc(j->idx.n, sizeof(*j->counts));
		j->manifest = vine_xcalloc(j->idx.n, sizeof(*j->manifest));
	}
	j->w = vine_xcalloc((size_t)jobs, sizeof(*j->w));
	tid = vine_xcalloc((size_t)jobs, sizeof(*tid));
	vine_progress_init(&p, "unpacking", j->idx.total, j->o->quiet);
	pthread_mutex_lock(&j->mu);
	for (int k = 0; k < jobs; k++) {
		/* progress counts whole members here, so it reaches the index's total */
		writer_init(&j->w[k], j->root, t->w.umask, NULL, &j->failed);
		j->w[k].job = j;
		j->w[k].total = &j->total;
		if (pthread_create(&tid[k], NULL, worker, &j->w[k]) != 0) {
			vine_error_errno("cannot start a thread");
			j->failed = 1;
			snprintf(j->err, sizeof(j->err), "%s", vine_errmsg());
			break;
		}
		j->running++;
		started++;
	}
	if (j->o->follow) {
		/* this thread finds the members; the workers unpack them */
		pthread_mutex_unlock(&j->mu);
		if (scan_members(j, &p) < 0)
			job_fail(j);
		pthread_mutex_lock(&j->mu);
		j->scanned = 1;
		pthread_cond_broadcast(&j->cv);
	}
	while (j->running > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&j->cv_main, &j->mu, &until);
		pthread_mutex_unlock(&j->mu);
		vine_progress_update(&p, __atomic_load_n(&j->progress, __ATOMIC_RELAXED), "B");
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	for (int k = 0; k < started; k++)
		pthread_join(tid[k], NULL);
	vine_progress_end(&p);
	for (int k = 0; k < jobs; k++) {
		merge(&t->w, &j->w[k]);
		writer_release(&j->w[k]);
	}
	if (j->failed) {
		vine_error("%s", j->err);
		rc = -1;
	} else {
		uint64_t before = 0;
		st->manifest_at = -1;
		for (uint32_t i = 0; i < j->idx.n; i++) {
			if (j->manifest[i] >= 0 && st->manifest_at < 0)
				st->manifest_at = (int64_t)before + j->manifest[i];
			before += j->counts[i];
		}
	}
	free(j->w);
	free(j->counts);
	free(j->manifest);
	for (uint32_t i = 0; j->ubuf && i < j->idx.n; i++)
		free(j->ubuf[i]);
	free(j->ubuf);
	j->ubuf = NULL;
	free(tid);
	return rc;
}

/* ---- sequential: any archive libarchive reads ---- */

struct seqsrc {
	struct job *j;
	uint64_t off;
	char *buf;
	struct vine_progress *p;
	char err[1024];        /* our own read or copy error, not the archive's */
};

static ssize_t seq_read(struct archive *a, void *ctx, const void **buf)
{
	struct seqsrc *s = ctx;
	struct job *j = s->j;
	size_t n = j->size - s->off < CHUNK ? (size_t)(j->size - s->off) : CHUNK;

	if (n == 0)
		return 0;
	if (j->o->hash) {
		if (hash_range(j, s->off, s->off + n, s->buf) < 0) {
			snprintf(s->err, sizeof(s->err), "%s", vine_errmsg());
			archive_set_error(a, EIO, "%s", s->err);
			return -1;
		}
		j->hashed = s->off + n;
	} else {
		ssize_t got = vine_pread_full(j->src, s->buf, n, (off_t)s->off);
		if (got != (ssize_t)n) {
			if (got < 0)
				vine_error_errno("cannot read the archive");
			else
				vine_error("cannot read the archive: it shrank while being read");
			snprintf(s->err, sizeof(s->err), "%s", vine_errmsg());
			archive_set_error(a, EIO, "%s", s->err);
			return -1;
		}
	}
	s->off += n;
	vine_progress_update(s->p, __atomic_load_n(&j->progress, __ATOMIC_RELAXED), "B");
	*buf = s->buf;
	return (ssize_t)n;
}

static int extract_seq(struct job *j, struct vine_tree *t, struct vine_extract_stats *st)
{
	struct vine_progress p;
	struct seqsrc s = { .j = j, .p = &p };
	struct archive *a = archive_read_new();
	int rc = -1;

	s.buf = vine_xmalloc(CHUNK);
	t->w.progress = &j->progress;
	t->w.failed = &j->failed;
	vine_progress_init(&p, "unpacking", 0, j->o->quiet);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open2(a, &s, NULL, seq_read, NULL, NULL) != ARCHIVE_OK) {
		if (s.err[0])
			vine_error("%s", s.err);
		else
			vine_error("not an archive vine can read: %s", archive_error_string(a));
		goto out;
	}
	if (write_all(&t->w, a, "corrupt archive") < 0) {
		if (s.err[0])
			vine_error("%s", s.err);
		goto out;
	}
	/* the hash covers the whole file, past the end-of-archive blocks */
	if (j->o->hash && hash_until(j, j->size, j->size, &s.buf) < 0)
		goto out;
	st->manifest_at = t->w.manifest_at;
	rc = 0;
out:
	vine_progress_end(&p);
	archive_read_free(a);
	free(s.buf);
	return rc;
}

int vine_extract(const struct vine_extract_opts *o, int fd, uint64_t size, const char *dir,
		 struct vine_tree **tree, struct vine_extract_stats *st)
{
	struct job j;
	struct vine_tree *t;
	mode_t um;
	int rc = -1, root;

	*tree = NULL;
	memset(st, 0, sizeof(*st));
	st->manifest_at = -1;
	root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return vine_error_errno("cannot open '%s'", dir);
	memset(&j, 0, sizeof(j));
	j.o = o;
	j.src = fd;
	j.rd = o->hash && o->copy_fd >= 0 ? o->copy_fd : fd;
	j.size = size;
	j.root = root;
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	pthread_cond_init(&j.cv_main, NULL);
	if (o->hash)
		vine_sha256_init(&j.sha);
	um = vine_umask();
	t = vine_xcalloc(1, sizeof(*t));
	writer_init(&t->w, root, um, &j.progress, &j.failed);

	int r = o->follow ? 1 : vine_index_read(fd, size, &j.idx);
	if (r < 0)
		goto out;
	st->indexed = r;
	st->members = j.idx.n;
	if (o->follow) {
		if (o->hash) {
			vine_error("cannot hash an archive while following it");
			goto out;
		}
		if (extract_indexed(&j, t, st) < 0 || follow_check(&j) < 0)
			goto out;
		st->members = j.idx.n;
	} else if (r == 1) {
		if (extract_indexed(&j, t, st) < 0)
			goto out;
		/* the index unpacked must be the index hashed */
		if (o->hash && o->copy_fd >= 0) {
			struct vine_index again;
			int r2 = vine_index_read(o->copy_fd, size, &again);
			int same = r2 == 1 && again.n == j.idx.n && again.total == j.idx.total &&
				   !memcmp(again.m, j.idx.m, j.idx.n * sizeof(*again.m));
			if (r2 >= 0)
				vine_index_free(&again);
			if (!same) {
				vine_error("the archive changed while being read");
				goto out;
			}
		}
	} else if (extract_seq(&j, t, st) < 0) {
		goto out;
	}
	if (t->w.entries == 0) {
		vine_error("the archive has no entries");
		goto out;
	}
	if (check_dirs(&t->w) < 0 || make_links(&t->w, t->w.links, t->w.nl) < 0)
		goto out;
	st->entries = t->w.entries;
	st->bytes = t->w.bytes;
	rc = 0;
out:
	if (o->hash) {
		char id[VINE_ID_LEN + 1];
		vine_sha256_final(&j.sha, id);
		if (rc == 0)
			memcpy(st->id, id, sizeof(id));
	}
	vine_index_free(&j.idx);
	pthread_mutex_destroy(&j.mu);
	pthread_cond_destroy(&j.cv);
	pthread_cond_destroy(&j.cv_main);
	if (rc < 0) {
		vine_tree_free(t);
		return -1;
	}
	t->w.progress = NULL;
	t->w.failed = NULL;
	*tree = t;
	return 0;
}
