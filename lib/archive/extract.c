/*
 * extract.c - unpack archives into a staging directory (see extract.h):
 * the front end.  It hashes (and copies) the archive as it is read, hands
 * a vine-format archive to the parallel decoder (extract-parallel.c), reads
 * any other archive libarchive reads in sequence, and finishes the tree the
 * writers built (extract-tree.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>

#include "archive/extract-int.h"
#include "util/util.h"

/* ---- hashing (and copying) the archive ---- */

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
int extract_hash_until(struct job *j, uint64_t need, uint64_t ahead, char **buf)
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
	if (extract_write_all(&t->w, a, "corrupt archive") < 0) {
		if (s.err[0])
			vine_error("%s", s.err);
		goto out;
	}
	/* the hash covers the whole file, past the end-of-archive blocks */
	if (j->o->hash && extract_hash_until(j, j->size, j->size, &s.buf) < 0)
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
	extract_writer_init(&t->w, root, um, &j.progress, &j.failed);

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
		if (extract_indexed(&j, t, st) < 0 || extract_follow_check(&j) < 0)
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
	if (extract_check_dirs(&t->w) < 0 || extract_make_links(&t->w, t->w.links, t->w.nl) < 0)
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
