/*
 * pack-gz.c - write a stream as independent gzip members, compressed in
 * parallel, followed by the vine index (see pack-int.h and
 * share/doc/archive-format.md).
 *
 * Blocks live in a ring of slots.  The caller's thread fills slot `head`,
 * worker threads compress queued slots in order of submission, and one
 * writer thread appends finished slots to the file strictly in order, so
 * the output does not depend on thread timing.  A slot is free again once
 * written; the filler waits for a free slot, which bounds memory.
 *
 * Member headers carry MTIME 0, no name and OS 3, so the bytes depend only
 * on the input, the level and the cuts.
 */
#include <errno.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "archive/pack-int.h"
#include "util/util.h"

#define DICT 32768

enum slot_state { S_FREE, S_FILLING, S_QUEUED, S_DONE };

struct slot {
	enum slot_state state;
	int first, last, split;    /* member boundaries; split: zlib block */
	unsigned char *in, *out;
	size_t inlen, incap, outlen, outcap;
	unsigned char dict[DICT];  /* split, not first: previous block's tail */
	size_t dictlen;
	uint32_t crc;              /* crc32 of in */
	int err;
};

struct pack_gz {
	int fd;
	char *what;
	int level, jobs;
	size_t block;

	pthread_mutex_t mu;
	pthread_cond_t cv;         /* any state change; few threads, broadcast */
	struct slot *slots;
	unsigned nslots;
	uint64_t head;             /* seq being filled (or next to fill) */
	uint64_t work;             /* next seq to compress */
	uint64_t tail;             /* next seq to write */
	int stop;                  /* no more slots will be queued */
	int failed;
	char errmsg[1024];
	pthread_t *workers, writer;
	int nworkers, writer_on;

	/* the filler's state */
	struct slot *cur;
	int cur_split;             /* the current member is split */
	int in_member;
	unsigned char dict[DICT];  /* tail of the last submitted block */
	size_t dictlen;
	uint64_t pending;

	/* the writer's state */
	uint64_t off, uoff;
	struct vine_member mcur;
	struct vine_member *m;
	uint32_t n, mcap;
	int toolarge;
	uint64_t member_max;       /* larger members leave the file unindexed */
	struct vine_sha256 sha;
};

/* Record the first failure (any thread) and wake everyone. Locked. */
static void fail_locked(struct pack_gz *z, const char *msg)
{
	if (!z->failed) {
		z->failed = 1;
		snprintf(z->errmsg, sizeof(z->errmsg), "%s", msg);
	}
	pthread_cond_broadcast(&z->cv);
}

static void grow(unsigned char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 65536;
	while (c < need)
		c *= 2;
	*p = vine_xrealloc(*p, c);
	*cap = c;
}

/* Compress slot s: a whole gzip member, or one raw deflate piece of one. */
static int compress_slot(struct pack_gz *z, struct slot *s,
			 struct libdeflate_compressor **ld, z_stream *zs, int *zinit)
{
	if (!s->split) {
		if (!*ld && !(*ld = libdeflate_alloc_compressor(z->level)))
			return -1;
		grow(&s->out, &s->outcap, libdeflate_gzip_compress_bound(*ld, s->inlen));
		s->outlen = libdeflate_gzip_compress(*ld, s->in, s->inlen, s->out, s->outcap);
		if (s->outlen < 18)
			return -1;
		s->out[9] = 3;  /* OS: Unix, as the format says (libdeflate writes 255) */
		const unsigned char *t = s->out + s->outlen - 8;
		s->crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
		return 0;
	}
	if (!*zinit) {
		memset(zs, 0, sizeof(*zs));
		if (deflateInit2(zs, z->level > 9 ? 9 : z->level, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		*zinit = 1;
	} else if (deflateReset(zs) != Z_OK) {
		return -1;
	}
	if (s->dictlen && deflateSetDictionary(zs, s->dict, (uInt)s->dictlen) != Z_OK)
		return -1;
	grow(&s->out, &s->outcap, deflateBound(zs, (uLong)s->inlen) + 64);
	zs->next_in = s->in;
	zs->avail_in = (uInt)s->inlen;
	s->outlen = 0;
	for (;;) {
		zs->next_out = s->out + s->outlen;
		zs->avail_out = (uInt)(s->outcap - s->outlen);
		int rc = deflate(zs, s->last ? Z_FINISH : Z_SYNC_FLUSH);
		s->outlen = s->outcap - zs->avail_out;
		if (rc == Z_STREAM_END)
			break;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		if (zs->avail_out > 0) {
			/* not finishing: all input taken and flushed */
			if (!s->last && zs->avail_in == 0)
				break;
			return -1;
		}
		grow(&s->out, &s->outcap, s->outcap * 2);
	}
	s->crc = (uint32_t)libdeflate_crc32(0, s->in, s->inlen);
	return 0;
}

static void *worker_main(void *arg)
{
	struct pack_gz *z = arg;
	struct libdeflate_compressor *ld = NULL;
	z_stream zs;
	int zinit = 0;

	pthread_mutex_lock(&z->mu);
	for (;;) {
		struct slot *s = &z->slots[z->work % z->nslots];
		if (z->failed || (z->stop && z->work == z->head))
			break;
		if (!(z->work < z->head && s->state == S_QUEUED)) {
			pthread_cond_wait(&z->cv, &z->mu);
			continue;
		}
		z->work++;
		pthread_mutex_unlock(&z->mu);
		int rc = compress_slot(z, s, &ld, &zs, &zinit);
		pthread_mutex_lock(&z->mu);
		s->err = rc < 0;
		s->state = S_DONE;
		pthread_cond_broadcast(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
	if (ld)
		libdeflate_free_compressor(ld);
	if (zinit)
		deflateEnd(&zs);
	return NULL;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static int out_write(struct pack_gz *z, const void *p, size_t n)
{
	if (vine_write_full(z->fd, p, n) < 0)
		return vine_error_errno("cannot write '%s'", z->what);
	vine_sha256_update(&z->sha, p, n);
	z->off += n;
	return 0;
}

/* Append slot s to the file and keep the member records. */
static int write_slot(struct pack_gz *z, struct slot *s)
{
	static const unsigned char head[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	if (s->err)
		return vine_error("cannot compress: out of memory or bad level");
	if (s->first) {
		z->mcur.coff = z->off;
		z->mcur.uoff = z->uoff;
		z->mcur.ulen = 0;
		z->mcur.crc32 = 0;
		if (s->split && out_write(z, head, sizeof(head)) < 0)
			return -1;
	}
	if (out_write(z, s->out, s->outlen) < 0)
		return -1;
	z->mcur.crc32 = s->split ? (uint32_t)crc32_combine(z->mcur.crc32, s->crc, (z_off_t)s->inlen)
				 : s->crc;
	z->mcur.ulen += s->inlen;
	if (!s->last)
		return 0;
	if (s->split) {
		unsigned char t[8];
		put_le32(t, z->mcur.crc32);
		put_le32(t + 4, (uint32_t)z->mcur.ulen);
		if (out_write(z, t, sizeof(t)) < 0)
			return -1;
	}
	z->mcur.clen = z->off - z->mcur.coff;
	if (z->mcur.ulen > z->member_max)
		z->toolarge = 1;
	if (z->n == UINT32_MAX)
		return vine_error("'%s': too many members", z->what);
	if (z->n == z->mcap) {
		z->mcap = z->mcap ? z->mcap * 2 : 256;
		z->m = vine_xrealloc(z->m, z->mcap * sizeof(*z->m));
	}
	z->m[z->n++] = z->mcur;
	z->uoff += z->mcur.ulen;
	return 0;
}

static void *writer_main(void *arg)
{
	struct pack_gz *z = arg;

	pthread_mutex_lock(&z->mu);
	for (;;) {
		struct slot *s = &z->slots[z->tail % z->nslots];
		while (!z->failed && !(z->tail < z->head && s->state == S_DONE) &&
		       !(z->stop && z->tail == z->head))
			pthread_cond_wait(&z->cv, &z->mu);
		if (z->failed || (z->stop && z->tail == z->head))
			break;
		pthread_mutex_unlock(&z->mu);
		int rc = write_slot(z, s);
		/* large buffers (a member that was not split) go back to the heap */
		if (s->incap > 4 * z->block + (1 << 20)) {
			free(s->in);
			s->in = NULL;
			s->incap = 0;
		}
		if (s->outcap > 4 * z->block + (1 << 20)) {
			free(s->out);
			s->out = NULL;
			s->outcap = 0;
		}
		pthread_mutex_lock(&z->mu);
		if (rc < 0) {
			fail_locked(z, vine_errmsg());
			break;
		}
		s->state = S_FREE;
		z->tail++;
		pthread_cond_broadcast(&z->cv);
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

static void stop_threads(struct pack_gz *z)
{
	pthread_mutex_lock(&z->mu);
	z->stop = 1;
	pthread_cond_broadcast(&z->cv);
	pthread_mutex_unlock(&z->mu);
	for (int i = 0; i < z->nworkers; i++)
		pthread_join(z->workers[i], NULL);
	z->nworkers = 0;
	if (z->writer_on)
		pthread_join(z->writer, NULL);
	z->writer_on = 0;
}

struct pack_gz *pack_gz_new(int fd, const char *what, int jobs, int level, size_t block)
{
	struct pack_gz *z;

	if (jobs < 1 || level < 1 || level > 12 || block < DICT) {
		vine_error("bad compression settings");
		return NULL;
	}
	z = vine_xcalloc(1, sizeof(*z));
	z->fd = fd;
	z->what = vine_xstrdup(what);
	z->jobs = jobs;
	z->level = level;
	z->block = block;
	z->member_max = VINE_MEMBER_MAX;
	z->nslots = 2 * (unsigned)jobs + 2;
	z->slots = vine_xcalloc(z->nslots, sizeof(*z->slots));
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	vine_sha256_init(&z->sha);
	z->workers = vine_xcalloc((size_t)jobs, sizeof(*z->workers));
	for (int i = 0; i < jobs; i++) {
		if ((errno = pthread_create(&z->workers[i], NULL, worker_main, z)) != 0) {
			vine_error_errno("cannot start a thread");
			goto fail;
		}
		z->nworkers++;
	}
	if ((errno = pthread_create(&z->writer, NULL, writer_main, z)) != 0) {
		vine_error_errno("cannot start a thread");
		goto fail;
	}
	z->writer_on = 1;
	return z;
fail:
	pack_gz_free(z);
	return NULL;
}

void pack_gz_set_member_max(struct pack_gz *z, uint64_t max)
{
	z->member_max = max;
}

static int check_failed(struct pack_gz *z)
{
	int f;

	pthread_mutex_lock(&z->mu);
	f = z->failed;
	pthread_mutex_unlock(&z->mu);
	return f ? vine_error("%s", z->errmsg) : 0;
}

/* Take the next slot for filling: wait until it has been written. */
static int acquire(struct pack_gz *z)
{
	struct slot *s = &z->slots[z->head % z->nslots];

	pthread_mutex_lock(&z->mu);
	while (!z->failed && s->state != S_FREE)
		pthread_cond_wait(&z->cv, &z->mu);
	if (z->failed) {
		pthread_mutex_unlock(&z->mu);
		return vine_error("%s", z->errmsg);
	}
	s->state = S_FILLING;
	/* head counts the slot being filled so the writer waits for it */
	z->head++;
	pthread_mutex_unlock(&z->mu);
	s->first = !z->in_member;
	s->last = 0;
	s->split = z->cur_split;
	s->inlen = 0;
	s->dictlen = 0;
	s->err = 0;
	if (s->split && !s->first) {
		memcpy(s->dict, z->dict, z->dictlen);
		s->dictlen = z->dictlen;
	}
	z->in_member = 1;
	z->cur = s;
	return 0;
}

static void submit(struct pack_gz *z, int last)
{
	struct slot *s = z->cur;

	s->last = last;
	if (s->split && !last) {
		size_t d = s->inlen < DICT ? s->inlen : DICT;
		memcpy(z->dict, s->in + s->inlen - d, d);
		z->dictlen = d;
	}
	pthread_mutex_lock(&z->mu);
	s->state = S_QUEUED;
	z->cur = NULL;
	pthread_cond_broadcast(&z->cv);
	pthread_mutex_unlock(&z->mu);
}

int pack_gz_write(struct pack_gz *z, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n > 0) {
		if (!z->cur && acquire(z) < 0)
			return -1;
		struct slot *s = z->cur;
		size_t k = n;
		if (s->split) {
			if (s->inlen == z->block) {
				/* full, and more is coming: it is not the member's last */
				submit(z, 0);
				continue;
			}
			if (k > z->block - s->inlen)
				k = z->block - s->inlen;
		}
		grow(&s->in, &s->incap, s->inlen + k);
		memcpy(s->in + s->inlen, b, k);
		s->inlen += k;
		z->pending += k;
		b += k;
		n -= k;
	}
	return 0;
}

int pack_gz_cut(struct pack_gz *z, int split)
{
	if (z->cur)
		submit(z, 1);
	z->in_member = 0;
	z->pending = 0;
	z->cur_split = split;
	return check_failed(z);
}

uint64_t pack_gz_pending(const struct pack_gz *z)
{
	return z->pending;
}

int pack_gz_finish(struct pack_gz *z, struct pack_gz_result *r)
{
	unsigned char *idx = NULL;
	size_t idxlen = 0;

	if (pack_gz_cut(z, 0) < 0)
		return -1;
	stop_threads(z);
	if (check_failed(z) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->indexed = !z->toolarge;
	if (r->indexed) {
		if (vine_index_encode(z->m, z->n, z->uoff, z->off, &idx, &idxlen) < 0)
			return -1;
		int rc = out_write(z, idx, idxlen);
		free(idx);
		if (rc < 0)
			return -1;
	}
	vine_sha256_final(&z->sha, r->id);
	z->sha.ctx = NULL;
	r->size = z->off;
	r->total = z->uoff;
	r->n = z->n;
	r->m = z->m;
	return 0;
}

void pack_gz_free(struct pack_gz *z)
{
	if (!z)
		return;
	pthread_mutex_lock(&z->mu);
	if (!z->stop)
		fail_locked(z, "interrupted");
	pthread_mutex_unlock(&z->mu);
	stop_threads(z);
	for (unsigned i = 0; i < z->nslots; i++) {
		free(z->slots[i].in);
		free(z->slots[i].out);
	}
	if (z->sha.ctx) {
		char junk[VINE_ID_LEN + 1];
		vine_sha256_final(&z->sha, junk);
	}
	pthread_mutex_destroy(&z->mu);
	pthread_cond_destroy(&z->cv);
	free(z->slots);
	free(z->workers);
	free(z->m);
	free(z->what);
	free(z);
}
