/*
 * peer-fetch.c - the peer client: brings an object into the node cache
 * from peers (protocol in vine(7), PEER PROTOCOL; cache layout in peer.h).
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
 *
 * From a peer, the bytes go socket -> pipe -> partial file with splice(2)
 * and never pass through this process: the kernel copies them once, into
 * the page cache, and the hasher reads them there through mmap(2).  With
 * recv(2) and write(2) every byte is copied twice, and on a node that is
 * short of CPU (many nodes on one host, or a busy compute node) that
 * second copy is a quarter of the cost of a fetch.  Where splice cannot be
 * used (an old kernel, a file system without it) the fetch falls back to
 * recv and write, and says nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

#define BUF_SIZE (1u << 20)
#define NBUF 8
#define PIPE_SIZE (1 << 20)     /* asked for; the kernel may give less */
#define WIN_SIZE (64u << 20)     /* the hasher's view of the partial file */

struct vine_fetch {
	char *cache, *path;
	char id[VINE_ID_LEN + 1];
	int objfd, partfd;
	int lockfd;              /* locks/<id>, flocked; -1: the caller holds it */
	int fd;                  /* partial/<id>; -1: not open */
	int flags, complete;
	int full;                /* a write found the disk full: drop the copy */
	uint64_t off;            /* bytes in the partial file, all handed to the hasher */
	struct vine_buf sources; /* who gave bytes to this copy, for messages */

	/* splice: pipe[0] and [1]; -1: not made yet; nosplice: use recv */
	int pipe[2], nosplice;
	size_t pipe_size;

	/* the hasher: slots [tail, head) wait to be hashed, in order.  A slot
	 * holds len[i] bytes in buf[i], or, if mapped[i], the len[i] bytes at
	 * at[i] in the partial file. */
	struct vine_sha256 h;
	int hashing, started, quit;
	unsigned char *buf[NBUF];
	size_t len[NBUF];
	uint64_t at[NBUF];
	int mapped[NBUF];
	unsigned head, tail;
	unsigned char *win;      /* the hasher's mapping of the partial file, */
	uint64_t win_start;      /* its offset in the file */
	size_t win_len;          /* and its length (win NULL: none) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

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
static void wait_slot(struct vine_fetch *f)
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
static unsigned char *next_buf(struct vine_fetch *f)
{
	unsigned i = f->head % NBUF;

	wait_slot(f);
	if (!f->buf[i])
		f->buf[i] = vine_xmalloc(BUF_SIZE);
	return f->buf[i];
}

/*
 * Queue for hashing the n bytes in the buffer next_buf gave or, if
 * mapped, the n bytes at f->off in the partial file (wait_slot was called
 * for the slot).
 */
static void submit_slot(struct vine_fetch *f, size_t n, int mapped)
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
	submit_slot(f, n, 0);
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
static int open_partial(struct vine_fetch *f)
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
		unsigned char *buf = next_buf(f);
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
 * from this source ends (drop_if_full): kept, it would only hold the space
 * that every other write on the node needs, the next fetch included.
 */
static int write_failed(struct vine_fetch *f)
{
	int err = errno;

	if (err != ENOSPC && err != EDQUOT)
		return vine_error_errno("cannot write '%s/partial/%s'", f->cache, f->id);
	f->full = 1;
	return vine_error("cannot write '%s/partial/%s': the disk holding the cache '%s' is full (%s); "
			  "the partial copy is removed", f->cache, f->id, f->cache, strerror(err));
}

static void discard(struct vine_fetch *f);

/* After a fetch from one source: remove the copy a full disk cut. */
static void drop_if_full(struct vine_fetch *f)
{
	if (f->full) {
		discard(f);
		f->full = 0;
	}
}

/* Throw the partial copy away (the lock stays held). */
static void discard(struct vine_fetch *f)
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
	if (open_partial(f) < 0)
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

/* Connect with a timeout; the socket is blocking afterwards. */
static int dial(const char *addr, double timeout)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	char *host = NULL, *port = NULL;
	int fd = -1, rc;

	if (vine_peer_addr_split(addr, 1, &host, &port) < 0)
		return -1;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		vine_error("cannot resolve '%s': %s", host, gai_strerror(rc));
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		int err = 0;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			vine_error_errno("cannot connect");
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				vine_error_errno("cannot connect");
				goto next;
			}
			p.fd = fd;
			p.events = POLLOUT;
			rc = poll(&p, 1, (int)(timeout * 1000));
			if (rc == 0) {
				errno = ETIMEDOUT;
				vine_error("cannot connect: timed out");
				goto next;
			}
			if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
				vine_error_errno("cannot connect");
				goto next;
			}
			if (err) {
				errno = err;
				vine_error_errno("cannot connect");
				goto next;
			}
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			vine_error_errno("cannot connect");
			goto next;
		}
		break;
next:
		close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	free(host);
	free(port);
	return fd;
}

/* Status for a failed socket operation. */
static int io_status(void)
{
	return errno == ETIMEDOUT ? VINE_PEER_ETIMEOUT : errno == EPROTO ? VINE_PEER_EPROTO : VINE_PEER_ECONNECT;
}

static int proto(const char *fmt, ...) VINE_PRINTF(1, 2);
static int proto(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vine_error("protocol error: %s", msg);
	return VINE_PEER_EPROTO;
}

/* The status for an ERROR frame; its text (from the network) made printable. */
static int peer_error(const unsigned char *p, size_t n)
{
	char msg[VP_MSG_MAX + 1];
	size_t i, m = 0;
	int code;

	if (n < 2)
		return proto("short ERROR frame");
	code = vp_get16(p);
	for (i = 2; i < n && m < VP_MSG_MAX; i++)
		msg[m++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	msg[m] = '\0';
	vine_error("%s", msg);
	switch (code) {
	case VP_E_AUTH: return VINE_PEER_EAUTH;
	case VP_E_VERSION: return VINE_PEER_EVERSION;
	case VP_E_BUSY: return VINE_PEER_EBUSY;
	case VP_E_NOTFOUND: return VINE_PEER_ENOTFOUND;
	case VP_E_STALLED: return VINE_PEER_ESTALLED;
	case VP_E_GONE: return VINE_PEER_ESTALLED;
	case VP_E_IO: return VINE_PEER_EREMOTE;
	default: return VINE_PEER_EPROTO;
	}
}

static int client_handshake(int fd, const unsigned char *secret)
{
	unsigned char buf[VP_CTRL_MAX], cn[VP_NONCE_LEN], sn[VP_NONCE_LEN], mac[VP_MAC_LEN];
	size_t n;
	int type;

	if (vine_random(cn, sizeof(cn)) < 0)
		return VINE_PEER_ELOCAL;
	memcpy(buf, VP_MAGIC, VP_MAGIC_LEN);
	vp_put16(buf + VP_MAGIC_LEN, VP_VERSION);
	vp_put16(buf + VP_MAGIC_LEN + 2, VP_VERSION);
	memcpy(buf + VP_MAGIC_LEN + 4, cn, VP_NONCE_LEN);
	if (vp_send_frame(fd, VP_HELLO, buf, VP_HELLO_LEN, 0) < 0 || vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		return io_status();
	if (type == VP_ERROR)
		return peer_error(buf, n);
	if (type != VP_CHALLENGE || n != VP_CHALLENGE_LEN)
		return proto("expected CHALLENGE, got frame type %d", type);
	if (vp_get16(buf) != VP_VERSION) {
		vine_error("the peer chose protocol version %d, not %d", vp_get16(buf), VP_VERSION);
		return VINE_PEER_EVERSION;
	}
	memcpy(sn, buf + 2, VP_NONCE_LEN);
	vp_mac(secret, VP_LABEL_CLIENT, VP_VERSION, cn, sn, mac);
	if (vp_send_frame(fd, VP_AUTH, mac, sizeof(mac), 0) < 0 || vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		return io_status();
	if (type == VP_ERROR)
		return peer_error(buf, n);
	if (type != VP_WELCOME || n < VP_MAC_LEN || n > VP_MAC_LEN + VP_NODE_MAX)
		return proto("expected WELCOME, got frame type %d", type);
	vp_mac(secret, VP_LABEL_SERVER, VP_VERSION, cn, sn, mac);
	if (CRYPTO_memcmp(buf, mac, VP_MAC_LEN) != 0) {
		vine_error("the peer does not know the secret");
		return VINE_PEER_EAUTH;
	}
	return VINE_PEER_OK;
}

/* Write the n bytes in buf (from next_buf) and queue them for hashing. */
static int flush(struct vine_fetch *f, unsigned char *buf, size_t n, const struct vine_peer_client_opts *o,
		 uint64_t total)
{
	if (!n)
		return VINE_PEER_OK;
	if (vine_pwrite_full(f->fd, buf, n, (off_t)f->off) < 0) {
		write_failed(f);
		return VINE_PEER_ELOCAL;
	}
	submit(f, n);
	f->off += n;
	if (o->progress)
		o->progress(o->ctx, f->off, total);
	return VINE_PEER_OK;
}

/* The status and message for a failed or short receive (k <= 0). */
static int recv_failed(ssize_t k)
{
	if (k == 0) {
		vine_error("connection closed in the middle of the data");
		return VINE_PEER_ECONNECT;
	}
	if (errno == EAGAIN)
		return VINE_PEER_ETIMEOUT;
	vine_error_errno("receive");
	return VINE_PEER_ECONNECT;
}

/* Make the pipe splice goes through; -1 (and recv from now on): none. */
static int splice_pipe(struct vine_fetch *f)
{
	if (f->pipe[0] >= 0)
		return 0;
	if (pipe2(f->pipe, O_CLOEXEC) < 0) {
		f->nosplice = 1;
		return -1;
	}
	int sz = fcntl(f->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
	if (sz < 0)
		sz = fcntl(f->pipe[1], F_GETPIPE_SZ);
	f->pipe_size = sz > 0 ? (size_t)sz : 65536;
	return 0;
}

/*
 * Move the n bytes in the pipe into the partial file at f->off + done.
 * When the file will not take them by splice, read them out of the pipe
 * and write them; a file that takes no write at all is VINE_PEER_ELOCAL.
 */
static int splice_out(struct vine_fetch *f, size_t n, uint64_t done)
{
	loff_t at = (loff_t)(f->off + done);

	while (n) {
		ssize_t k = f->nosplice ? -1 : splice(f->pipe[0], NULL, f->fd, &at, n, SPLICE_F_MOVE);
		if (k > 0) {
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			f->nosplice = 1;
		/* ENOSPC, EIO, ...: the same write(2) reports it, or this file
		 * system has no splice: copy by hand */
		unsigned char buf[1 << 16];
		while (n) {
			ssize_t r = read(f->pipe[0], buf, n < sizeof(buf) ? n : sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				vine_error_errno("cannot read from a pipe");
				return VINE_PEER_ELOCAL;
			}
			if (vine_pwrite_full(f->fd, buf, (size_t)r, at) < 0) {
				write_failed(f);
				/* empty the pipe for the next fetch */
				close(f->pipe[0]);
				close(f->pipe[1]);
				f->pipe[0] = f->pipe[1] = -1;
				return VINE_PEER_ELOCAL;
			}
			at += r;
			n -= (size_t)r;
		}
	}
	return VINE_PEER_OK;
}

/* Hash and count the done bytes written at f->off. */
static void splice_commit(struct vine_fetch *f, uint64_t done, const struct vine_peer_client_opts *o,
			  uint64_t total)
{
	if (!done)
		return;
	wait_slot(f);
	submit_slot(f, (size_t)done, 1);
	f->off += done;
	if (o->progress)
		o->progress(o->ctx, f->off, total);
}

/*
 * Receive one DATA payload of n bytes by splice.  1: this socket or pipe
 * cannot splice, nothing was taken from the socket (use recv).
 */
static int splice_data(struct vine_fetch *f, int fd, uint32_t n, const struct vine_peer_client_opts *o,
		       uint64_t total)
{
	uint64_t done = 0;   /* written at f->off, not yet hashed */
	int st;

	if (splice_pipe(f) < 0)
		return 1;
	while (n) {
		size_t want = n < f->pipe_size ? n : f->pipe_size;
		ssize_t k = splice(fd, NULL, f->pipe[1], NULL, want, SPLICE_F_MOVE);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && !done && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			f->nosplice = 1;
			return 1;
		}
		if (k <= 0) {
			int err = errno;
			/* keep what did arrive: the next source resumes after it */
			splice_commit(f, done, o, total);
			errno = err;
			return recv_failed(k);
		}
		if ((st = splice_out(f, (size_t)k, done)) != VINE_PEER_OK) {
			splice_commit(f, done, o, total);
			return st;
		}
		done += (uint64_t)k;
		n -= (uint32_t)k;
		if (done >= BUF_SIZE || n == 0) {
			splice_commit(f, done, o, total);
			done = 0;
		}
	}
	return VINE_PEER_OK;
}

/* Receive one DATA payload of n bytes. */
static int recv_data(struct vine_fetch *f, int fd, uint32_t n, const struct vine_peer_client_opts *o,
		     uint64_t total)
{
	unsigned char *buf;
	size_t fill = 0;
	int st;

	if (!f->nosplice && (st = splice_data(f, fd, n, o, total)) != 1)
		return st;
	buf = next_buf(f);
	while (n) {
		size_t want = BUF_SIZE - fill < n ? BUF_SIZE - fill : n;
		ssize_t k = recv(fd, buf + fill, want, 0);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			int err = errno;
			/* keep what did arrive: the next source resumes after it */
			if (flush(f, buf, fill, o, total) != VINE_PEER_OK)
				return VINE_PEER_ELOCAL;
			errno = err;
			return recv_failed(k);
		}
		fill += (size_t)k;
		n -= (uint32_t)k;
		if (fill == BUF_SIZE || n == 0) {
			if (flush(f, buf, fill, o, total) != VINE_PEER_OK)
				return VINE_PEER_ELOCAL;
			buf = next_buf(f);
			fill = 0;
		}
	}
	return VINE_PEER_OK;
}

/* The whole object is here: verify it and publish it. */
static int finish(struct vine_fetch *f)
{
	char hex[VINE_ID_LEN + 1];

	hash_final(f, hex);
	if (strcmp(hex, f->id)) {
		char *who = vine_xstrdup(f->sources.len ? f->sources.data : "an earlier partial copy");
		discard(f);
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
			write_failed(f);
		else
			vine_error_errno("cannot publish '%s'", f->path);
		return VINE_PEER_ELOCAL;
	}
	close(f->fd);
	f->fd = -1;
	return VINE_PEER_OK;
}

static void add_source(struct vine_fetch *f, const char *addr)
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

/* One GET for the rest of the object on an authenticated connection. */
static int get_rest(struct vine_fetch *f, int fd, const char *addr, const struct vine_peer_client_opts *o)
{
	unsigned char buf[VP_CTRL_MAX];
	uint64_t size, total;
	size_t n;
	uint32_t len;
	int type, st, complete, resent = 0;

again:
	memcpy(buf, f->id, VINE_ID_LEN);
	vp_put64(buf + VINE_ID_LEN, f->off);
	vp_put64(buf + VINE_ID_LEN + 8, 0);
	if (vp_send_frame(fd, VP_GET, buf, VP_GET_LEN, 0) < 0 || vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		return io_status();
	if (type == VP_ERROR) {
		if (n >= 2 && vp_get16(buf) == VP_E_RANGE && !resent) {
			/* our partial copy is longer than the object: it is wrong */
			discard(f);
			if (open_partial(f) < 0)
				return VINE_PEER_ELOCAL;
			resent = 1;
			goto again;
		}
		return peer_error(buf, n);
	}
	if (type != VP_OBJECT || n != VP_OBJECT_LEN)
		return proto("expected OBJECT, got frame type %d", type);
	complete = buf[0] & VP_COMPLETE;
	size = vp_get64(buf + 1);
	if (complete && size < f->off)
		return proto("object of %llu bytes, asked from %llu", (unsigned long long)size,
			     (unsigned long long)f->off);
	if (o->max_size && complete && size > o->max_size) {
		vine_error("the object is %llu bytes, more than the limit of %llu", (unsigned long long)size,
			   (unsigned long long)o->max_size);
		return VINE_PEER_EPROTO;
	}
	total = complete ? size : 0;
	for (;;) {
		if (vp_recv_hdr(fd, &type, &len, 0) < 0)
			return io_status();
		if (type == VP_DATA) {
			if (len == 0 || len > VP_DATA_MAX)
				return proto("DATA frame of %u bytes", len);
			if ((total && f->off + len > total) || (o->max_size && f->off + len > o->max_size))
				return proto("more data than the object holds");
			add_source(f, addr);
			if ((st = recv_data(f, fd, len, o, total)) != VINE_PEER_OK)
				return st;
			continue;
		}
		if (len > VP_CTRL_MAX)
			return proto("frame type %d of %u bytes", type, len);
		if (vp_recv_all(fd, buf, len, 0) < 0)
			return io_status();
		if (type == VP_ERROR)
			return peer_error(buf, len);
		if (type != VP_END || len != VP_END_LEN)
			return proto("unexpected frame type %d", type);
		size = vp_get64(buf + 1);
		if (!(buf[0] & VP_COMPLETE) || size != f->off)
			return proto("the object ended at byte %llu of %llu", (unsigned long long)f->off,
				     (unsigned long long)size);
		return finish(f);
	}
}

int vine_fetch_from(struct vine_fetch *f, const char *addr, const struct vine_peer_client_opts *o)
{
	int fd, st;

	if (!f->complete && f->fd < 0 && open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	fd = dial(addr, o->connect_timeout > 0 ? o->connect_timeout : 10);
	if (fd < 0) {
		vine_error_prefix("%s", addr);
		return VINE_PEER_ECONNECT;
	}
	st = vine_fetch_from_fd(f, fd, addr, o);
	close(fd);
	return st;
}

int vine_fetch_from_fd(struct vine_fetch *f, int fd, const char *name, const struct vine_peer_client_opts *o)
{
	double stall = o->stall_timeout > 0 ? o->stall_timeout : 30;
	int st;

	if (!f->complete && f->fd < 0 && open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	if (vp_sock_setup(fd, stall) < 0)
		st = VINE_PEER_ELOCAL;
	else if ((st = client_handshake(fd, o->secret)) == VINE_PEER_OK)
		st = get_rest(f, fd, name, o);
	drop_if_full(f);
	if (st == VINE_PEER_ETIMEOUT)
		vine_error("stalled: nothing received for %g s", stall);
	/* a hash mismatch names its sources itself */
	if (st != VINE_PEER_OK && st != VINE_PEER_ECORRUPT)
		vine_error_prefix("%s", name);
	return st;
}

/*
 * Copy the rest of the object from a source read at offsets (a file, the
 * origin through the state) whose size is size (0: not known), verify it
 * and publish it.  A read that fails is VINE_PEER_EREMOTE.
 */
static int copy_from(struct vine_fetch *f, const char *name, const struct vine_fetch_reader *r,
		     const struct vine_peer_client_opts *o)
{
	int restarted = 0, rc;

	if (o->max_size && r->size > o->max_size) {
		vine_error("'%s' is %llu bytes, more than the limit of %llu", name,
			   (unsigned long long)r->size, (unsigned long long)o->max_size);
		return VINE_PEER_EPROTO;
	}
again:
	if (r->size && r->size < f->off) {
		/* the partial copy is longer than the object: it is wrong */
		if (restarted++) {
			vine_error("'%s' shrank while being read", name);
			return VINE_PEER_EREMOTE;
		}
		discard(f);
		if (open_partial(f) < 0)
			return VINE_PEER_ELOCAL;
		goto again;
	}
	add_source(f, name);
	for (;;) {
		unsigned char *buf = next_buf(f);
		ssize_t n = r->read(r->ctx, f->off, buf, BUF_SIZE);
		if (n < 0)
			return VINE_PEER_EREMOTE;
		if (n == 0)
			break;
		if (o->max_size && f->off + (uint64_t)n > o->max_size) {
			vine_error("'%s' holds more than the limit of %llu bytes", name,
				   (unsigned long long)o->max_size);
			return VINE_PEER_EPROTO;
		}
		if ((rc = flush(f, buf, (size_t)n, o, r->size)) != VINE_PEER_OK)
			return rc;
	}
	return finish(f);
}

struct file_source {
	int fd;
	const char *path;
};

static ssize_t file_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct file_source *fs = ctx;
	ssize_t n = vine_pread_full(fs->fd, buf, len, (off_t)offset);

	if (n < 0)
		vine_error_errno("cannot read '%s'", fs->path);
	return n;
}

int vine_fetch_from_file(struct vine_fetch *f, const char *path, const struct vine_peer_client_opts *o)
{
	struct file_source fs = { -1, path };
	struct vine_fetch_reader r = { file_read, &fs, 0 };
	struct stat st;
	int rc;

	if (!f->complete && f->fd < 0 && open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	fs.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fs.fd < 0 || fstat(fs.fd, &st) < 0) {
		vine_error_errno("cannot read '%s'", path);
		rc = VINE_PEER_ENOTFOUND;
	} else if (!S_ISREG(st.st_mode)) {
		vine_error("'%s' is not a regular file", path);
		rc = VINE_PEER_ENOTFOUND;
	} else {
		r.size = (uint64_t)st.st_size;
		rc = copy_from(f, path, &r, o);
		drop_if_full(f);
	}
	if (fs.fd >= 0)
		close(fs.fd);
	return rc;
}

int vine_fetch_from_reader(struct vine_fetch *f, const char *name, const struct vine_fetch_reader *r,
			   const struct vine_peer_client_opts *o)
{
	int rc;

	if (!f->complete && f->fd < 0 && open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	rc = copy_from(f, name, r, o);
	drop_if_full(f);
	/* a hash mismatch names its sources itself */
	if (rc != VINE_PEER_OK && rc != VINE_PEER_ECORRUPT && rc != VINE_PEER_ELOCAL)
		vine_error_prefix("%s", name);
	return rc;
}

int vine_peer_fetch_sources(const char *cache, const char *id, int flags, const struct vine_peer_sources *s,
			    const struct vine_peer_client_opts *o)
{
	struct vine_fetch *f = vine_fetch_open(cache, id, flags);
	char last[1024] = "";
	int st = VINE_PEER_OK;

	if (!f)
		return VINE_PEER_ELOCAL;
	while (!f->complete) {
		char *src = NULL;
		double wait = 1;
		int r = s->next(s->ctx, id, f->off, &src, &wait);
		if (r < 0) {
			/* nothing more to try: the last failure says most */
			if (!*last) {
				snprintf(last, sizeof(last), "%s", vine_errmsg());
				st = VINE_PEER_ENOTFOUND;
			}
			break;
		}
		if (r > 0) {
			struct timespec ts;
			wait = wait < 0.01 ? 0.01 : wait > 60 ? 60 : wait;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			continue;
		}
		uint64_t from = f->off;
		if (src[0] == '/')
			st = vine_fetch_from_file(f, src, o);
		else if (s->reader && strstr(src, "://"))
			st = vine_fetch_from_reader(f, src, s->reader, o);
		else
			st = vine_fetch_from(f, src, o);
		if (st != VINE_PEER_OK)
			snprintf(last, sizeof(last), "%s", vine_errmsg());
		s->done(s->ctx, src, st, from, f->off, st == VINE_PEER_OK ? NULL : last);
		free(src);
		if (st == VINE_PEER_OK || st == VINE_PEER_ELOCAL)
			break;
	}
	vine_fetch_close(f);
	if (st != VINE_PEER_OK)
		vine_error("%s", last);
	return st;
}

/* vine_peer_fetch's sources: a list, each tried once. */
struct list {
	const char *const *src;
	size_t n, i;
	const struct vine_peer_client_opts *o;
};

static int list_next(void *ctx, const char *id, uint64_t offset, char **src, double *wait)
{
	struct list *l = ctx;

	if (l->i == l->n)
		return vine_error(l->n ? "no source could give it" : "no sources");
	*src = vine_xstrdup(l->src[l->i++]);
	return 0;
}

static void list_done(void *ctx, const char *src, int status, uint64_t from, uint64_t to, const char *msg)
{
	struct list *l = ctx;

	if (status != VINE_PEER_OK && l->o->source_failed)
		l->o->source_failed(l->o->ctx, src, status, msg);
}

int vine_peer_fetch(const char *cache, const char *id, const char *const *sources, size_t nsources,
		    const struct vine_peer_client_opts *o)
{
	struct list l = { sources, nsources, 0, o };
	struct vine_peer_sources s = { list_next, list_done, &l, NULL };

	return vine_peer_fetch_sources(cache, id, 0, &s, o);
}
