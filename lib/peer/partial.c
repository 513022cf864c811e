/*
 * partial.c - one object being brought into the node cache: partial/<id>,
 * written and hashed as it arrives, verified and published when whole
 * (the sources that write it: peer-client.c, fetch-sources.c; cache
 * layout in peer.h).
 *
 * Locking (the node cache's, see seed.h): the process that writes
 * partial/<id> holds an exclusive flock on locks/<id> for as long as it
 * works on the object, so a second fetch of the same object on the node
 * waits for the first, and the peer server can tell a partial copy that is
 * still growing from one whose writer died.
 *
 * Every byte received is written and hashed as it arrives, so a transfer
 * cut anywhere resumes at the exact offset, from any source.  Hashing costs
 * more than receiving and writing together, so it runs in a thread of its
 * own, a few buffers behind the receiver (in order: SHA-256 is sequential).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer/fetch-impl.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

#define WIN_SIZE (64u << 20)     /* the hasher's view of the partial file */

static void unmap_window(struct vine_fetch *f)
{
	if (f->win)
		munmap(f->win, f->win_len);
	f->win = NULL;
}

/*
 * Hash the n bytes at offset at in the partial file through a mapping of
 * WIN_SIZE bytes at a time, kept from one slot to the next: mapping and
 * unmapping each slot costs more than the faults (the kernel maps 16
 * pages at each).  The mapping may run past the end of the file; only
 * bytes already written are read.
 */
static void hash_mapped(struct vine_fetch *f, uint64_t at, size_t n)
{
	while (n) {
		if (!f->win || at < f->win_start || at >= f->win_start + f->win_len) {
			unmap_window(f);
			f->win_start = at - at % (uint64_t)sysconf(_SC_PAGESIZE);
			f->win_len = WIN_SIZE;
			void *p = mmap(NULL, f->win_len, PROT_READ, MAP_SHARED, f->fd, (off_t)f->win_start);
			if (p == MAP_FAILED)
				break;
			f->win = p;
		}
		size_t k = (size_t)(f->win_start + f->win_len - at);
		if (k > n)
			k = n;
		vine_sha256_update(&f->h, f->win + (at - f->win_start), k);
		at += k;
		n -= k;
	}
	/* no address space: read it back instead */
	while (n) {
		unsigned char buf[1 << 16];
		ssize_t k = vine_pread_full(f->fd, buf, n < sizeof(buf) ? n : sizeof(buf), (off_t)at);
		if (k <= 0) {
			/* the bytes are gone: the hash will not match */
			vine_sha256_update(&f->h, "", 1);
			return;
		}
		vine_sha256_update(&f->h, buf, (size_t)k);
		at += (uint64_t)k;
		n -= (size_t)k;
	}
}

static void hash_slot(struct vine_fetch *f, unsigned i)
{
	if (f->mapped[i])
		hash_mapped(f, f->at[i], f->len[i]);
	else
		vine_sha256_update(&f->h, f->buf[i], f->len[i]);
}

static void *hasher_main(void *arg)
{
	struct vine_fetch *f = arg;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (f->tail == f->head && !f->quit)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->tail == f->head)
			break;
		unsigned i = f->tail % NBUF;
		pthread_mutex_unlock(&f->mu);
		hash_slot(f, i);
		pthread_mutex_lock(&f->mu);
		f->tail++;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* Wait for a free slot (while every slot is queued). */
void vf_wait_slot(struct vine_fetch *f)
{
	pthread_mutex_lock(&f->mu);
	while (f->head - f->tail == NBUF)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

/*
 * The buffer to fill next (waits while every buffer is queued).  Buffers
 * are made when first needed: a fetch by splice needs none (its slots are
 * mapped), and one that finds the object complete needs none either.
 */
unsigned char *vf_next_buf(struct vine_fetch *f)
{
	unsigned i = f->head % NBUF;

	vf_wait_slot(f);
	if (!f->buf[i])
		f->buf[i] = vine_xmalloc(BUF_SIZE);
	return f->buf[i];
}

/*
 * Queue for hashing the n bytes in the buffer vf_next_buf gave or, if
 * mapped, the n bytes at f->off in the partial file (wait_slot was called
 * for the slot).
 */
void vf_submit_slot(struct vine_fetch *f, size_t n, int mapped)
{
	unsigned i = f->head % NBUF;

	f->len[i] = n;
	f->at[i] = f->off;
	f->mapped[i] = mapped;
	if (!f->started) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int err = pthread_create(&f->thread, NULL, hasher_main, f);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err) {
			/* no thread: hash right here */
			hash_slot(f, i);
			return;
		}
		f->started = 1;
	}
	pthread_mutex_lock(&f->mu);
	f->head++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void submit(struct vine_fetch *f, size_t n)
{
	vf_submit_slot(f, n, 0);
}

static void drain(struct vine_fetch *f)
{
	pthread_mutex_lock(&f->mu);
	while (f->tail != f->head)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

static void hash_start(struct vine_fetch *f)
{
	vine_sha256_init(&f->h);
	f->hashing = 1;
}

static void hash_final(struct vine_fetch *f, char hex[VINE_ID_LEN + 1])
{
	drain(f);
	unmap_window(f);
	vine_sha256_final(&f->h, hex);
	f->hashing = 0;
}

static void hash_reset(struct vine_fetch *f)
{
	char hex[VINE_ID_LEN + 1];

	if (f->hashing)
		hash_final(f, hex);
}

/* Open partial/<id> (creating it) and hash what it holds. */
int vf_open_partial(struct vine_fetch *f)
{
	struct stat st;
	int fd = openat(f->partfd, f->id, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd < 0)
		return vine_error_errno("cannot open '%s/partial/%s'", f->cache, f->id);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vine_error("'%s/partial/%s' is not a regular file", f->cache, f->id);
	}
	f->fd = fd;
	f->off = 0;
	hash_start(f);
	while (st.st_size > 0) {
		unsigned char *buf = vf_next_buf(f);
		ssize_t n = vine_pread_full(fd, buf, BUF_SIZE, (off_t)f->off);
		if (n < 0)
			return vine_error_errno("cannot read '%s/partial/%s'", f->cache, f->id);
		if (n == 0)
			break;
		submit(f, (size_t)n);
		f->off += (uint64_t)n;
	}
	return 0;
}

/*
 * The message for a failed write of the partial copy (errno says why).  A
 * full disk (or quota) marks the copy to be thrown away when the fetch
 * from this source ends (vf_drop_if_full): kept, it would only hold the space
 * that every other write on the node needs, the next fetch included.
 */
int vf_write_failed(struct vine_fetch *f)
{
	int err = errno;

	if (err != ENOSPC && err != EDQUOT)
		return vine_error_errno("cannot write '%s/partial/%s'", f->cache, f->id);
	f->full = 1;
	return vine_error("cannot write '%s/partial/%s': the disk holding the cache '%s' is full (%s); "
			  "the partial copy is removed", f->cache, f->id, f->cache, strerror(err));
}

/* After a fetch from one source: remove the copy a full disk cut. */
void vf_drop_if_full(struct vine_fetch *f)
{
	if (f->full) {
		vf_discard(f);
		f->full = 0;
	}
}

/* Throw the partial copy away (the lock stays held). */
void vf_discard(struct vine_fetch *f)
{
	hash_reset(f);   /* before the close: the hasher may map the file */
	if (f->fd >= 0) {
		unlinkat(f->partfd, f->id, 0);
		close(f->fd);
		f->fd = -1;
	}
	f->off = 0;
	vine_buf_reset(&f->sources);
}

struct vine_fetch *vine_fetch_open(const char *cache, const char *id, int flags)
{
	struct vine_fetch *f;

	if (!vine_id_valid(id)) {
		vine_error("'%s' is not an object id", id);
		return NULL;
	}
	f = vine_xcalloc(1, sizeof(*f));
	f->fd = f->objfd = f->partfd = f->lockfd = f->pipe[0] = f->pipe[1] = -1;
	/* for the tests of the recv path */
	f->nosplice = getenv("VINE_TEST_NO_SPLICE") && strcmp(getenv("VINE_TEST_NO_SPLICE"), "0");
	f->flags = flags;
	f->cache = vine_xstrdup(cache);
	memcpy(f->id, id, sizeof(f->id));
	f->path = vine_xasprintf("%s/%s/%s", cache, flags & VINE_FETCH_KEEP ? "partial" : "objects", id);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	static const char *const subs[] = { "objects", "partial", "locks", NULL };
	int fds[3];
	if (vp_cache_dirs(cache, subs, fds) < 0)
		goto fail;
	f->objfd = fds[0];
	f->partfd = fds[1];
	if (flags & VINE_FETCH_LOCKED) {
		close(fds[2]);
	} else {
		int dfd = fds[2];
		f->lockfd = openat(dfd, id, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		close(dfd);
		if (f->lockfd < 0) {
			vine_error_errno("cannot open '%s/locks/%s'", cache, id);
			goto fail;
		}
		while (flock(f->lockfd, LOCK_EX) < 0) {
			if (errno != EINTR) {
				vine_error_errno("cannot lock '%s/locks/%s'", cache, id);
				goto fail;
			}
		}
	}
	if (faccessat(f->objfd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* here already: nothing to do, nothing to hold */
		f->complete = 1;
		if (f->lockfd >= 0) {
			close(f->lockfd);
			f->lockfd = -1;
		}
		free(f->path);
		f->path = vine_xasprintf("%s/objects/%s", cache, id);
		return f;
	}
	if (vf_open_partial(f) < 0)
		goto fail;
	return f;
fail:
	vine_fetch_close(f);
	return NULL;
}

int vine_fetch_complete(const struct vine_fetch *f)
{
	return f->complete;
}

uint64_t vine_fetch_offset(const struct vine_fetch *f)
{
	return f->off;
}

const char *vine_fetch_path(const struct vine_fetch *f)
{
	return f->path;
}

void vine_fetch_close(struct vine_fetch *f)
{
	if (!f)
		return;
	hash_reset(f);
	if (f->fd >= 0) {
		/* an empty partial copy helps nobody: do not leave it behind */
		if (f->off == 0 && !f->complete)
			unlinkat(f->partfd, f->id, 0);
		close(f->fd);
	}
	if (f->lockfd >= 0)
		close(f->lockfd);
	for (int i = 0; i < 2; i++)
		if (f->pipe[i] >= 0)
			close(f->pipe[i]);
	if (f->objfd >= 0)
		close(f->objfd);
	if (f->partfd >= 0)
		close(f->partfd);
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->quit = 1;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	vine_buf_release(&f->sources);
	for (int i = 0; i < NBUF; i++)
		free(f->buf[i]);
	free(f->path);
	free(f->cache);
	free(f);
}

/* Write the n bytes in buf (from vf_next_buf) and queue them for hashing. */
int vf_flush(struct vine_fetch *f, unsigned char *buf, size_t n, const struct vine_peer_client_opts *o,
	     uint64_t total)
{
	if (!n)
		return VINE_PEER_OK;
	if (vine_pwrite_full(f->fd, buf, n, (off_t)f->off) < 0) {
		vf_write_failed(f);
		return VINE_PEER_ELOCAL;
	}
	submit(f, n);
	f->off += n;
	if (o->progress)
		o->progress(o->ctx, f->off, total);
	return VINE_PEER_OK;
}

/* The whole object is here: verify it and publish it. */
int vf_finish(struct vine_fetch *f)
{
	char hex[VINE_ID_LEN + 1];

	hash_final(f, hex);
	if (strcmp(hex, f->id)) {
		char *who = vine_xstrdup(f->sources.len ? f->sources.data : "an earlier partial copy");
		vf_discard(f);
		vine_error("object %s from %s: hash mismatch (got %s): discarded", f->id, who, hex);
		free(who);
		return VINE_PEER_ECORRUPT;
	}
	f->complete = 1;
	if (f->flags & VINE_FETCH_KEEP)
		return VINE_PEER_OK;
	/* complete objects are read-only, as vine-seed leaves them */
	if (fchmod(f->fd, 0444) < 0 || fdatasync(f->fd) < 0 ||
	    renameat(f->partfd, f->id, f->objfd, f->id) < 0 || fsync(f->objfd) < 0) {
		f->complete = 0;
		if (errno == ENOSPC || errno == EDQUOT)
			vf_write_failed(f);
		else
			vine_error_errno("cannot publish '%s'", f->path);
		return VINE_PEER_ELOCAL;
	}
	close(f->fd);
	f->fd = -1;
	return VINE_PEER_OK;
}

void vf_add_source(struct vine_fetch *f, const char *addr)
{
	const char *p = f->sources.data;
	size_t n = strlen(addr);

	/* each address once, in order */
	while (p && *p) {
		if (!strncmp(p, addr, n) && (p[n] == ',' || p[n] == '\0'))
			return;
		p = strchr(p, ',');
		p = p ? p + 2 : NULL;
	}
	if (f->sources.len)
		vine_buf_addstr(&f->sources, ", ");
	vine_buf_addstr(&f->sources, addr);
}
