/*
 * extract-parallel.c - unpacking a vine-format archive on several threads
 * (see extract.h, extract-int.h).
 *
 * Threads: jobs workers claim members in order.  When the archive is being
 * hashed, the hash is one sequential job that whichever worker needs the
 * next bytes advances, a step at a time, under the job mutex
 * (extract_hash_until); when a copy is being made, a member is read back
 * from the copy only after the hash has passed its end.  The main thread
 * only draws the progress meter and waits, or, following a growing
 * archive, finds the members as their bytes arrive.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <libdeflate.h>
#include <zlib.h>

#include "archive/extract-int.h"
#include "util/util.h"

/* The first failure wins: its message is the one the caller sees. */
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
	if (extract_write_all(w, a, what) < 0)
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
		rc = extract_write_all(w, a, what);
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
		if (extract_hash_until(j, m->coff + m->clen, m->coff + m->clen + 2 * HASH_STEP, &b.h) < 0)
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
	extract_hash_until(j, j->size, j->size, &b.h);
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
int extract_follow_check(struct job *j)
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

int extract_indexed(struct job *j, struct vine_tree *t, struct vine_extract_stats *st)
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
		extract_writer_init(&j->w[k], j->root, t->w.umask, NULL, &j->failed);
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
		extract_writer_merge(&t->w, &j->w[k]);
		extract_writer_release(&j->w[k]);
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
