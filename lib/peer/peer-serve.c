/*
 * peer-serve.c - the peer server: serves byte ranges of the objects in a
 * node cache to authenticated peers (protocol in vine(7), PEER PROTOCOL).
 *
 * Design: one acceptor thread and one thread per connection, bounded by
 * max_uploads authenticated sessions plus a few connections still in their
 * handshake.  The number of uploads a node serves at once is small by
 * design (the state gives a source at most K of them), each upload spends
 * its time in sendfile() or in a short sleep waiting for a partial object
 * to grow, and blocking I/O with SO_RCVTIMEO/SO_SNDTIMEO gives every read
 * and write a timeout with no timer bookkeeping.  An event loop would buy
 * nothing at this scale and would make the relay wait and the timeouts
 * harder to get right.  Threads are joined (not detached) so that stopping
 * the server leaves nothing running.
 *
 * Files are opened with openat() relative to the cache's objects/ and
 * partial/ directories, by a name that has been checked to be exactly 64
 * lowercase hex digits, with O_NOFOLLOW: no request can name anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cache/cache.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

/*
 * Connections not yet authenticated: at most MAX_HANDSHAKING of them are
 * waited on; a new one evicts the oldest, so that idle connections made
 * without the secret cannot keep authenticated peers out, and at most
 * twice that many threads exist for them while the evicted ones end.
 */
#define MAX_HANDSHAKING 16
#define HANDSHAKE_TIMEOUT 5.0  /* seconds for a whole handshake, at most */
/*
 * A client must take at least PROGRESS_MIN bytes (min_progress) of an
 * upload every io_timeout seconds, or loses its slot: the socket timeout
 * bounds each send only, and a reader that trickles makes every send
 * progress.
 */
#define PROGRESS_MIN ((uint64_t)64 << 10)
#define RELAY_POLL_MS 10       /* how often a waiting upload looks at a partial object */
#define RELAY_WATCH_MS 100     /* the same when inotify says when it grows */
#define ORPHAN_GRACE 1.0       /* seconds a partial object may have no writer before giving up */

struct conn {
	struct vine_peer_server *s;
	int fd;
	pthread_t tid;
	char peer[80];
	double started;   /* when accepted */
	int authed;       /* handshake done (under mu) */
	int evicted;      /* cut to make room for a newer handshake (under mu) */
	struct conn *next;
};

/* the data frame size when send_delay slows a server down (tests) */
#define SLOW_FRAME (64u << 10)

struct vine_peer_server {
	char *cache, *node, *addr;
	unsigned char secret[VINE_PEER_SECRET_LEN];
	int max_uploads;
	double send_delay;
	double io_timeout, relay_wait, hs_timeout;
	uint64_t min_progress;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;

	int lfd, objfd, partfd, lockfd;
	int serving;              /* locks/serving, held shared (cache.h) */
	int wake[2];
	pthread_t acceptor;
	int acceptor_started;

	pthread_mutex_t mu;       /* guards everything below */
	pthread_cond_t cv;
	struct conn *live, *dead; /* running, and finished but not joined */
	unsigned nconn;
	struct vine_peer_server_stats st;
	atomic_int stopping;
	pthread_mutex_t log_mu;
};

static void slog(struct vine_peer_server *s, const char *fmt, ...) VINE_PRINTF(2, 3);
static void slog(struct vine_peer_server *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->log_mu);
	s->log(s->log_ctx, line);
	pthread_mutex_unlock(&s->log_mu);
}

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t n)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, n, "?");
		return;
	}
	snprintf(out, n, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* Open objects/<id>, else partial/<id>; -1 with errno (ENOENT: neither). */
static int open_object(struct vine_peer_server *s, const char *id, int *complete, struct stat *st)
{
	int fd = openat(s->objfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	*complete = fd >= 0;
	if (fd < 0 && errno == ENOENT)
		fd = openat(s->partfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	/* published between the two: "not found" would cost this node its
	 * replica in the state */
	if (fd < 0 && errno == ENOENT) {
		fd = openat(s->objfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
		*complete = fd >= 0;
	}
	if (fd < 0)
		return errno == ELOOP ? (errno = ENOENT, -1) : -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

/*
 * Send the n bytes at pos in fd, the socket made non-blocking: a blocking
 * sendfile(2) of a whole frame returns only when the frame is sent while
 * the client takes a little before each socket timeout, so the progress
 * deadline is checked between waits for room instead.  No byte taken for
 * io_timeout is a timeout; less than min_progress taken in io_timeout
 * loses the slot.
 */
static int send_body(struct conn *c, int fd, uint64_t pos, uint64_t n)
{
	const double limit = c->s->io_timeout;
	off_t o = (off_t)pos;
	uint64_t left = n, at_window = n;
	double window = vine_now_mono(), moved_at = window;

	while (left) {
		double now = vine_now_mono();
		if (now - window >= limit) {
			uint64_t moved = at_window - left, min = c->s->min_progress;
			if (moved < (at_window < min ? at_window : min))
				return vine_error("send: the client takes less than %llu bytes in %g s",
						  (unsigned long long)min, limit);
			window = now;
			at_window = left;
		}
		ssize_t k = sendfile(c->fd, fd, &o, left);
		if (k > 0) {
			left -= (uint64_t)k;
			moved_at = now;
			continue;
		}
		if (k == 0)
			return vine_error("object shrank while being sent");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return vine_error_errno("send");
		/* wait for room, at most until the window or the timeout ends */
		double until = window + limit < moved_at + limit ? window + limit : moved_at + limit;
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		int ms = (int)((until - now) * 1000) + 1;
		if (poll(&p, 1, ms > 0 ? ms : 1) < 0 && errno != EINTR)
			return vine_error_errno("send");
		if (vine_now_mono() - moved_at >= limit && !(p.revents & (POLLOUT | POLLERR | POLLHUP)))
			return vine_error("send: timed out");
	}
	return 0;
}

static int send_range(struct conn *c, int fd, uint64_t pos, uint64_t n)
{
	unsigned char h[VP_HDR_LEN];
	int fl, rc;

	h[0] = VP_DATA;
	vp_put32(h + 1, (uint32_t)n);
	if (vp_send_all(c->fd, h, sizeof(h), 1) < 0)
		return -1;
	if ((fl = fcntl(c->fd, F_GETFL)) < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return vine_error_errno("send");
	rc = send_body(c, fd, pos, n);
	if (fcntl(c->fd, F_SETFL, fl) < 0 && rc == 0)
		rc = vine_error_errno("send");
	if (rc < 0)
		return -1;
	pthread_mutex_lock(&c->s->mu);
	c->s->st.bytes_sent += n;
	pthread_mutex_unlock(&c->s->mu);
	return 0;
}

/*
 * Is some process working on partial/<id>?  It holds an exclusive flock on
 * locks/<id> while it does (seed.h); if nobody does, the copy will never
 * grow.  The probe takes a shared lock for an instant.
 */
static int writer_alive(struct vine_peer_server *s, const char *id)
{
	int fd = openat(s->lockfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY), alive = 1;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		alive = 0;
	}
	close(fd);
	return alive;
}

/*
 * An inotify descriptor that wakes a relaying upload as soon as the
 * partial object fd is written to, renamed or removed; -1 if there is none
 * (the upload then looks every RELAY_POLL_MS).  A fixed poll interval adds
 * its delay at every hop of a relay chain, every time a reader catches up
 * with the writer.
 */
static int relay_watch(int fd)
{
	char path[64];
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (in < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (inotify_add_watch(in, path, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF) < 0) {
		close(in);
		return -1;
	}
	return in;
}

/*
 * A request has reached the end of a partial object: wait a little for it
 * to grow (woken early by watch, if >= 0).  0: look again; -1: give up (the
 * client has been told, or is gone).
 */
static int relay_wait(struct conn *c, int fd, int watch, const char *id, const struct stat *opened,
		      double last_growth, double *orphan_since)
{
	struct vine_peer_server *s = c->s;
	struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN | POLLRDHUP }, { .fd = watch, .events = POLLIN } };
	struct stat st;
	double now;

	if (poll(p, watch >= 0 ? 2 : 1, watch >= 0 ? RELAY_WATCH_MS : RELAY_POLL_MS) > 0) {
		/* a client says nothing while it is being answered: it has gone */
		if (p[0].revents)
			return vine_error("client went away while waiting");
		char ev[4096];
		while (read(watch, ev, sizeof(ev)) > 0)
			;
	}
	if (atomic_load(&s->stopping))
		return vine_error("server stopping");
	now = vine_now_mono();
	if (fstatat(s->partfd, id, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != opened->st_ino ||
	    st.st_dev != opened->st_dev) {
		/* renamed into objects/ (the caller sees that next), or discarded */
		if (faccessat(s->objfd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		vp_send_error(c->fd, VP_E_GONE, "the partial copy was discarded");
		return vine_error("partial copy discarded");
	}
	if (!writer_alive(s, id)) {
		if (*orphan_since == 0)
			*orphan_since = now;
		else if (now - *orphan_since > ORPHAN_GRACE) {
			vp_send_error(c->fd, VP_E_STALLED, "the partial copy is not being received");
			return vine_error("partial copy not being received");
		}
	} else {
		*orphan_since = 0;
	}
	if (now - last_growth > s->relay_wait) {
		vp_send_error(c->fd, VP_E_STALLED, "the partial copy did not grow for %.0f s", s->relay_wait);
		return vine_error("partial copy stalled");
	}
	return 0;
}

/* Answer one GET.  0: the connection may go on; -1: close it. */
static int serve_get(struct conn *c, const char *id, uint64_t off, uint64_t len)
{
	struct vine_peer_server *s = c->s;
	unsigned char msg[VP_OBJECT_LEN];
	struct stat st, opened;
	uint64_t size, end, pos = off, limit;
	double last_growth, orphan_since = 0;
	int complete, relayed, fd, watch = -1, watch_tried = 0, rc = -1;

	fd = open_object(s, id, &complete, &st);
	if (fd < 0) {
		if (errno == ENOENT) {
			vp_send_error(c->fd, VP_E_NOTFOUND, "no such object");
			slog(s, "%s: %.12s: not found", c->peer, id);
			return 0;
		}
		vp_send_error(c->fd, VP_E_IO, "cannot open the object: %s", strerror(errno));
		slog(s, "%s: %.12s: cannot open: %s", c->peer, id, strerror(errno));
		return 0;
	}
	opened = st;
	relayed = !complete;
	size = (uint64_t)st.st_size;
	if (len && off + len < off) {
		vp_send_error(c->fd, VP_E_BADREQ, "bad range");
		goto out;
	}
	end = len ? off + len : UINT64_MAX;
	if (complete && off > size) {
		vp_send_error(c->fd, VP_E_RANGE, "offset %llu is beyond the end of the object (%llu bytes)",
			      (unsigned long long)off, (unsigned long long)size);
		slog(s, "%s: %.12s: offset %llu beyond the end", c->peer, id, (unsigned long long)off);
		close(fd);
		return 0;
	}
	msg[0] = complete ? VP_COMPLETE : 0;
	vp_put64(msg + 1, size);
	if (vp_send_frame(c->fd, VP_OBJECT, msg, sizeof(msg), 0) < 0)
		goto fail;
	last_growth = vine_now_mono();
	for (;;) {
		if (!complete) {
			int nfd = openat(s->objfd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
			if (nfd >= 0) {
				/* finished meanwhile: go on from the complete copy */
				if (fstat(nfd, &st) < 0 || !S_ISREG(st.st_mode)) {
					close(nfd);
					vp_send_error(c->fd, VP_E_IO, "cannot read the object");
					goto out;
				}
				close(fd);
				fd = nfd;
				complete = 1;
			} else if (fstat(fd, &st) < 0) {
				vp_send_error(c->fd, VP_E_IO, "cannot read the object");
				goto out;
			}
			size = (uint64_t)st.st_size;
		}
		limit = complete && size < end ? size : end;
		if (pos >= limit)
			break;
		if (size > pos) {
			uint64_t n = (size < limit ? size : limit) - pos;
			if (n > VP_DATA_MAX)
				n = VP_DATA_MAX;
			if (s->send_delay > 0 && n > SLOW_FRAME)
				n = SLOW_FRAME;
			if (send_range(c, fd, pos, n) < 0)
				goto fail;
			pos += n;
			if (s->send_delay > 0)
				poll(NULL, 0, (int)(s->send_delay * 1000));
			last_growth = vine_now_mono();
			orphan_since = 0;
			continue;
		}
		if (complete) {
			/* the object is shorter than where this request resumes */
			vp_send_error(c->fd, VP_E_RANGE, "offset %llu is beyond the end of the object",
				      (unsigned long long)pos);
			goto out;
		}
		if (!watch_tried++)
			watch = relay_watch(fd);
		if (relay_wait(c, fd, watch, id, &opened, last_growth, &orphan_since) < 0)
			goto fail;
	}
	msg[0] = complete ? VP_COMPLETE : 0;
	vp_put64(msg + 1, size);
	if (vp_send_frame(c->fd, VP_END, msg, sizeof(msg), 0) < 0)
		goto fail;
	slog(s, "%s: %.12s: sent bytes %llu-%llu%s%s", c->peer, id, (unsigned long long)off,
	     (unsigned long long)pos, complete ? " (complete)" : "", relayed ? " relayed from a partial copy" : "");
	rc = 0;
	goto out;
fail:
	slog(s, "%s: %.12s: %s (at byte %llu)", c->peer, id, vine_errmsg(), (unsigned long long)pos);
out:
	if (watch >= 0)
		close(watch);
	close(fd);
	return rc;
}

/* The handshake; 0 when the client is authenticated and has an upload slot. */
static int handshake(struct conn *c)
{
	struct vine_peer_server *s = c->s;
	unsigned char buf[VP_CTRL_MAX], cn[VP_NONCE_LEN], sn[VP_NONCE_LEN], mac[VP_MAC_LEN];
	unsigned char out[VP_MAC_LEN + VP_NODE_MAX];
	size_t n, nodelen;
	int type;

	if (vp_recv_ctrl(c->fd, &type, buf, &n, 1) != 0)
		return -1;
	if (type != VP_HELLO || n != VP_HELLO_LEN || memcmp(buf, VP_MAGIC, VP_MAGIC_LEN)) {
		slog(s, "%s: not a vine peer, closed", c->peer);
		return -1;
	}
	if (vp_get16(buf + VP_MAGIC_LEN) > VP_VERSION || vp_get16(buf + VP_MAGIC_LEN + 2) < VP_VERSION) {
		vp_send_error(c->fd, VP_E_VERSION, "this peer speaks protocol version %d only", VP_VERSION);
		slog(s, "%s: refused: no protocol version in common", c->peer);
		return -1;
	}
	memcpy(cn, buf + VP_MAGIC_LEN + 4, VP_NONCE_LEN);
	if (vine_random(sn, sizeof(sn)) < 0)
		return -1;
	vp_put16(buf, VP_VERSION);
	memcpy(buf + 2, sn, VP_NONCE_LEN);
	if (vp_send_frame(c->fd, VP_CHALLENGE, buf, VP_CHALLENGE_LEN, 0) < 0 ||
	    vp_recv_ctrl(c->fd, &type, buf, &n, 0) < 0)
		return -1;
	vp_mac(s->secret, VP_LABEL_CLIENT, VP_VERSION, cn, sn, mac);
	if (type != VP_AUTH || n != VP_MAC_LEN || CRYPTO_memcmp(buf, mac, VP_MAC_LEN) != 0) {
		pthread_mutex_lock(&s->mu);
		s->st.refused_auth++;
		pthread_mutex_unlock(&s->mu);
		vp_send_error(c->fd, VP_E_AUTH, "authentication failed");
		slog(s, "%s: refused: authentication failed", c->peer);
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	if (s->st.uploads >= (unsigned)s->max_uploads) {
		s->st.refused_busy++;
		pthread_mutex_unlock(&s->mu);
		vp_send_error(c->fd, VP_E_BUSY, "busy: %d uploads in progress", s->max_uploads);
		slog(s, "%s: refused: busy", c->peer);
		return -1;
	}
	s->st.uploads++;
	s->st.sessions++;
	c->authed = 1;
	pthread_mutex_unlock(&s->mu);
	vp_mac(s->secret, VP_LABEL_SERVER, VP_VERSION, cn, sn, out);
	nodelen = s->node ? strlen(s->node) : 0;
	memcpy(out + VP_MAC_LEN, s->node ? s->node : "", nodelen);
	if (vp_send_frame(c->fd, VP_WELCOME, out, VP_MAC_LEN + nodelen, 0) < 0)
		return 1; /* authenticated: the caller gives the slot back */
	return 0;
}

static void serve_session(struct conn *c)
{
	struct vine_peer_server *s = c->s;
	unsigned char buf[VP_CTRL_MAX];
	char id[VINE_ID_LEN + 1];
	size_t n;
	int type, rc;

	if (vp_sock_setup(c->fd, s->io_timeout) < 0)
		return;
	for (;;) {
		rc = vp_recv_ctrl(c->fd, &type, buf, &n, 1);
		if (rc == 1)
			break;
		if (rc < 0) {
			slog(s, "%s: %s", c->peer, vine_errmsg());
			break;
		}
		if (type != VP_GET || n != VP_GET_LEN) {
			vp_send_error(c->fd, VP_E_BADREQ, "expected a GET request");
			slog(s, "%s: bad request (frame type %d, %zu bytes), closed", c->peer, type, n);
			break;
		}
		memcpy(id, buf, VINE_ID_LEN);
		id[VINE_ID_LEN] = '\0';
		if (!vine_id_valid(id)) {
			vp_send_error(c->fd, VP_E_BADREQ, "not an object id");
			slog(s, "%s: refused a request for something that is not an object id", c->peer);
			break;
		}
		if (serve_get(c, id, vp_get64(buf + VINE_ID_LEN), vp_get64(buf + VINE_ID_LEN + 8)) < 0)
			break;
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg, **pp;
	struct vine_peer_server *s = c->s;
	int rc = -1;

	if (vp_sock_setup(c->fd, s->hs_timeout) == 0)
		rc = handshake(c);
	if (rc == 0)
		serve_session(c);
	pthread_mutex_lock(&s->mu);
	if (rc >= 0)
		s->st.uploads--;
	for (pp = &s->live; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	c->next = s->dead;
	s->dead = c;
	/* closed under the lock: vine_peer_server_stop never shuts down a
	 * descriptor that has been reused */
	close(c->fd);
	c->fd = -1;
	s->nconn--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Join finished connection threads; cut handshakes that take too long
 * (the socket timeouts bound each receive, this bounds the whole). */
static void reap(struct vine_peer_server *s)
{
	double now = vine_now_mono();
	struct conn *d;

	pthread_mutex_lock(&s->mu);
	for (struct conn *c = s->live; c; c = c->next)
		if (!c->authed && now - c->started > s->hs_timeout)
			shutdown(c->fd, SHUT_RDWR);
	d = s->dead;
	s->dead = NULL;
	pthread_mutex_unlock(&s->mu);
	while (d) {
		struct conn *next = d->next;
		pthread_join(d->tid, NULL);
		free(d);
		d = next;
	}
}

/*
 * Under mu, before a new connection: with MAX_HANDSHAKING connections in
 * their handshake, cut the oldest; -1 when even the cut ones are too many.
 * Authenticated sessions are bounded by max_uploads (the handshake says
 * busy), so they never need the room of the unauthenticated.
 */
static int make_room(struct vine_peer_server *s)
{
	unsigned waiting = 0, all = 0;
	struct conn *oldest = NULL;

	for (struct conn *c = s->live; c; c = c->next) {
		if (c->authed)
			continue;
		all++;
		if (c->evicted)
			continue;
		waiting++;
		if (!oldest || c->started <= oldest->started)
			oldest = c;
	}
	if (all >= 2 * MAX_HANDSHAKING)
		return -1;
	if (waiting >= MAX_HANDSHAKING && oldest) {
		oldest->evicted = 1;
		shutdown(oldest->fd, SHUT_RDWR);
	}
	return 0;
}

static void *acceptor_main(void *arg)
{
	struct vine_peer_server *s = arg;
	struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN }, { .fd = s->wake[0], .events = POLLIN } };

	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		struct conn *c;
		int fd;

		reap(s);
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				slog(s, "cannot accept: %s", strerror(errno));
				poll(NULL, 0, 100);
			}
			continue;
		}
		pthread_mutex_lock(&s->mu);
		if (make_room(s) < 0) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			slog(s, "too many connections, one closed");
			continue;
		}
		c = vine_xcalloc(1, sizeof(*c));
		c->s = s;
		c->fd = fd;
		c->started = vine_now_mono();
		format_addr((struct sockaddr *)&sa, salen, c->peer, sizeof(c->peer));
		c->next = s->live;
		s->live = c;
		s->nconn++;
		/* this thread blocks every signal; the new one inherits that */
		if (pthread_create(&c->tid, NULL, conn_main, c) != 0) {
			s->live = c->next;
			s->nconn--;
			close(fd);
			free(c);
			pthread_mutex_unlock(&s->mu);
			slog(s, "cannot start a thread for a connection");
			continue;
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int open_listener(struct vine_peer_server *s, const char *listen_addr)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char *host = NULL, *port = NULL, buf[NI_MAXHOST + 16];
	int rc, fd = -1, one = 1, zero = 0;

	if (vine_peer_addr_split(listen_addr, 0, &host, &port) < 0)
		return -1;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		vine_error("cannot resolve '%s': %s", listen_addr, gai_strerror(rc));
		goto out;
	}
	vine_error("cannot listen on '%s': no usable address", listen_addr);
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			vine_error_errno("cannot listen on '%s'", listen_addr);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !*host)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		vine_error_errno("cannot listen on '%s'", listen_addr);
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		goto out;
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		vine_error_errno("cannot get the listening address");
		close(fd);
		fd = -1;
		goto out;
	}
	if (!*host) {
		/* every address: peers reach this node by its name */
		char name[256];
		unsigned p = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
							    : ((struct sockaddr_in *)&sa)->sin_port);
		if (gethostname(name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "localhost");
		name[sizeof(name) - 1] = '\0';
		s->addr = vine_xasprintf("%s:%u", name, p);
	} else {
		format_addr((struct sockaddr *)&sa, salen, buf, sizeof(buf));
		s->addr = vine_xstrdup(buf);
	}
	s->lfd = fd;
out:
	if (res)
		freeaddrinfo(res);
	free(host);
	free(port);
	return fd < 0 ? -1 : 0;
}

static void server_free(struct vine_peer_server *s)
{
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->objfd >= 0)
		close(s->objfd);
	if (s->partfd >= 0)
		close(s->partfd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->serving >= 0)
		close(s->serving);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->log_mu);
	pthread_cond_destroy(&s->cv);
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s->cache);
	free(s->node);
	free(s->addr);
	free(s);
}

struct vine_peer_server *vine_peer_server_start(const struct vine_peer_server_opts *o)
{
	struct vine_peer_server *s = vine_xcalloc(1, sizeof(*s));
	sigset_t all, old;

	s->lfd = s->objfd = s->partfd = s->lockfd = s->serving = s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->log_mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->cache = vine_xstrdup(o->cache);
	s->node = o->node ? vine_xstrndup(o->node, VP_NODE_MAX) : NULL;
	memcpy(s->secret, o->secret, VINE_PEER_SECRET_LEN);
	s->max_uploads = o->max_uploads > 0 ? o->max_uploads : 8;
	s->send_delay = o->send_delay > 0 ? o->send_delay : 0;
	s->io_timeout = o->io_timeout > 0 ? o->io_timeout : 30;
	s->min_progress = o->min_progress > 0 ? o->min_progress : PROGRESS_MIN;
	s->relay_wait = o->relay_wait > 0 ? o->relay_wait : s->io_timeout * 2 / 3;
	s->hs_timeout = s->io_timeout < HANDSHAKE_TIMEOUT ? s->io_timeout : HANDSHAKE_TIMEOUT;
	s->log = o->log;
	s->log_ctx = o->log_ctx;
	static const char *const subs[] = { "objects", "partial", "locks", NULL };
	int fds[3];
	if (vp_cache_dirs(o->cache, subs, fds) < 0)
		goto fail;
	s->objfd = fds[0];
	s->partfd = fds[1];
	s->lockfd = fds[2];
	/* while it lives, nodes sharing this cache keep their archives */
	s->serving = openat(s->lockfd, VINE_CACHE_SERVING, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->serving < 0) {
		vine_error_errno("cannot open '%s/locks/%s'", o->cache, VINE_CACHE_SERVING);
		goto fail;
	}
	while (flock(s->serving, LOCK_SH) < 0) {
		if (errno != EINTR) {
			vine_error_errno("cannot lock '%s/locks/%s'", o->cache, VINE_CACHE_SERVING);
			goto fail;
		}
	}
	if (!o->listen)
		return s;
	if (open_listener(s, o->listen) < 0)
		goto fail;
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		vine_error_errno("cannot create a pipe");
		goto fail;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&s->acceptor, NULL, acceptor_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errno = err;
		vine_error_errno("cannot start the server thread");
		goto fail;
	}
	s->acceptor_started = 1;
	return s;
fail:
	server_free(s);
	return NULL;
}

const char *vine_peer_server_addr(const struct vine_peer_server *s)
{
	return s->addr;
}

void vine_peer_server_stats(struct vine_peer_server *s, struct vine_peer_server_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
}

void vine_peer_server_serve_fd(struct vine_peer_server *s, int fd, const char *peer)
{
	struct conn *c;

	if (s->acceptor_started) {
		/* its acceptor would join this thread as a finished connection's */
		close(fd);
		return;
	}
	c = vine_xcalloc(1, sizeof(*c));
	c->s = s;
	c->fd = fd;
	c->tid = pthread_self();
	c->started = vine_now_mono();
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	pthread_mutex_lock(&s->mu);
	c->next = s->live;
	s->live = c;
	s->nconn++;
	pthread_mutex_unlock(&s->mu);
	conn_main(c);
	/* conn_main moved c to the dead list, whose thread is this one */
	pthread_mutex_lock(&s->mu);
	for (struct conn **pp = &s->dead; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&s->mu);
	free(c);
}

void vine_peer_server_stop(struct vine_peer_server *s)
{
	if (!s)
		return;
	if (s->acceptor_started) {
		while (write(s->wake[1], "x", 1) < 0 && errno == EINTR)
			;
		pthread_join(s->acceptor, NULL);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
	atomic_store(&s->stopping, 1);
	pthread_mutex_lock(&s->mu);
	for (struct conn *c = s->live; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->nconn)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	reap(s);
	server_free(s);
}
