/*
 * peer-client.c - the peer client: receives the rest of an object from one
 * peer into its partial copy (partial.c), over the protocol in vine(7),
 * PEER PROTOCOL.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "peer/fetch-impl.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

#define PIPE_SIZE (1 << 20)     /* asked for; the kernel may give less */

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
				vf_write_failed(f);
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
	vf_wait_slot(f);
	vf_submit_slot(f, (size_t)done, 1);
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
	buf = vf_next_buf(f);
	while (n) {
		size_t want = BUF_SIZE - fill < n ? BUF_SIZE - fill : n;
		ssize_t k = recv(fd, buf + fill, want, 0);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			int err = errno;
			/* keep what did arrive: the next source resumes after it */
			if (vf_flush(f, buf, fill, o, total) != VINE_PEER_OK)
				return VINE_PEER_ELOCAL;
			errno = err;
			return recv_failed(k);
		}
		fill += (size_t)k;
		n -= (uint32_t)k;
		if (fill == BUF_SIZE || n == 0) {
			if (vf_flush(f, buf, fill, o, total) != VINE_PEER_OK)
				return VINE_PEER_ELOCAL;
			buf = vf_next_buf(f);
			fill = 0;
		}
	}
	return VINE_PEER_OK;
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
			vf_discard(f);
			if (vf_open_partial(f) < 0)
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
			vf_add_source(f, addr);
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
		return vf_finish(f);
	}
}

int vine_fetch_from(struct vine_fetch *f, const char *addr, const struct vine_peer_client_opts *o)
{
	int fd, st;

	if (!f->complete && f->fd < 0 && vf_open_partial(f) < 0)
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

	if (!f->complete && f->fd < 0 && vf_open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	if (vp_sock_setup(fd, stall) < 0)
		st = VINE_PEER_ELOCAL;
	else if ((st = client_handshake(fd, o->secret)) == VINE_PEER_OK)
		st = get_rest(f, fd, name, o);
	vf_drop_if_full(f);
	if (st == VINE_PEER_ETIMEOUT)
		vine_error("stalled: nothing received for %g s", stall);
	/* a hash mismatch names its sources itself */
	if (st != VINE_PEER_OK && st != VINE_PEER_ECORRUPT)
		vine_error_prefix("%s", name);
	return st;
}
