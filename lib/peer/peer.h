/*
 * peer.h - the node-to-node object transport of vine-spread.
 *
 * A node serves the objects in its cache to peers over TCP, and fetches
 * objects from peers into its cache.  The wire protocol (framing, versions,
 * the mutual HMAC-SHA256 challenge-response on a per-run secret, byte-range
 * requests, errors) is specified in vine(7), PEER PROTOCOL and SECURITY.
 *
 * It uses the node cache's objects/, partial/ and locks/ (layout in
 * cache.h): partial/<id> is written sequentially from offset 0 by the
 * holder of locks/<id> and renamed to objects/<id> once its SHA-256
 * matches <id>.  The server reads objects/ and partial/ (a partial object is relayed up
 * to the bytes it has and followed as it grows, for as long as its lock is
 * held); the client writes partial/<id> and publishes it.  A partial file
 * whose writer died is resumed by the next fetch: its prefix is hashed and
 * the transfer continues at its length.
 */
#ifndef VINE_PEER_H
#define VINE_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/hash.h"
#include "util/util.h"
#include "util/secret.h"
#include "util/transfer.h"

/*
 * Split "HOST:PORT", "[V6ADDR]:PORT", ":PORT" (host "") or, when
 * need_port is 0, a bare "HOST" (port "0").  The port must be a decimal
 * number up to 65535.  *host and *port are malloc'd.
 */
int vine_peer_addr_split(const char *addr, int need_port, char **host, char **port);

/*
 * The address a cache server listens on when none is given, as "IP:0"
 * (any free port; "[IP6]:0"), malloc'd (vine(7), ADDRESSES).  Its peers
 * must reach it, and they are the nodes that reach the same state:
 *   manager   the host name of an ssh:// state, or NULL for a local
 *             state: the local address of a socket connected to it
 *             (UDP, so nothing is sent), which is this node's address on
 *             the network that reaches the manager host;
 *   NULL      a local state: every program that opens it runs on this
 *             host (SQLite is never used across a network file system),
 *             so 127.0.0.1 reaches them all.
 * When the manager host cannot be resolved or reached: the first address
 * this host's name resolves to that is not loopback, else 127.0.0.1.
 */
char *vine_peer_default_listen(const char *manager);

/* ---- server ---- */

struct vine_peer_server_opts {
	const char *cache;        /* node cache directory (created if missing) */
	const char *node;         /* node name told to authenticated clients; NULL: none */
	const char *listen;       /* "HOST:PORT"; port 0 picks a free port; NULL:
				     none (vine_peer_server_serve_fd only) */
	const unsigned char *secret; /* VINE_PEER_SECRET_LEN bytes */
	int max_uploads;          /* authenticated sessions at once; more get BUSY. 0: 8 */
	double io_timeout;        /* seconds a send or receive may block; 0: 30 */
	double relay_wait;        /* seconds a partial object may go without growing
				     before a client waiting on it gets STALLED; 0: 2/3 io_timeout */
	double send_delay;        /* for tests only: seconds slept after each data
				     frame sent, to make transfers slow; 0: none */
	uint64_t min_progress;    /* bytes of an upload a client must take every
				     io_timeout, or it loses its slot; 0: 64 KiB
				     (tests raise it to catch a fast trickle) */
	/* Called from server threads, one call at a time, with one line of
	 * text (no newline) per event; NULL: silent. */
	vine_msg_fn log;
	void *log_ctx;
};

struct vine_peer_server_stats {
	unsigned uploads;          /* authenticated sessions now */
	uint64_t sessions;         /* authenticated sessions so far */
	uint64_t refused_auth;     /* clients that failed authentication */
	uint64_t refused_busy;     /* authenticated clients turned away with BUSY */
	uint64_t bytes_sent;       /* object bytes sent */
};

struct vine_peer_server;

/*
 * Bind, listen, and serve in background threads (one acceptor, one thread
 * per connection, bounded).  The server threads block every signal, so the
 * caller's threads receive them; SIGPIPE from a vanished client is never
 * delivered to the process.  NULL on error.
 */
struct vine_peer_server *vine_peer_server_start(const struct vine_peer_server_opts *o);
/* The address peers connect to: "IP:PORT" ("[IP6]:PORT"), or the host
 * name and port when listening on every address. */
const char *vine_peer_server_addr(const struct vine_peer_server *s);
void vine_peer_server_stats(struct vine_peer_server *s, struct vine_peer_server_stats *st);
/* Stop accepting, cut every session, wait for the threads, free. */
void vine_peer_server_stop(struct vine_peer_server *s);
/*
 * Serve one connection the caller made (fd, a connected stream socket,
 * named peer in the log), in the calling thread, as a connection the
 * server accepted: the handshake, then requests until it ends; fd is
 * closed.  Only for a server started with listen NULL, which listens
 * nowhere and serves just the connections handed to it so (on any other,
 * fd is closed at once): the fuzzer's and the tests' way in, with no TCP.
 */
void vine_peer_server_serve_fd(struct vine_peer_server *s, int fd, const char *peer);

/* ---- client ---- */

struct vine_peer_client_opts {
	const unsigned char *secret; /* VINE_PEER_SECRET_LEN bytes */
	double connect_timeout;   /* 0: 10 s */
	double stall_timeout;     /* seconds without a byte from the source; 0: 30 s */
	uint64_t max_size;        /* if set, an object larger than this is refused */
	/* Called as bytes arrive: done so far, total (0: not known yet). */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	/* Called by vine_peer_fetch after each source that failed. */
	void (*source_failed)(void *ctx, const char *addr, int status, const char *msg);
	void *ctx;
};

/*
 * One object being brought into the cache.  vine_fetch_open takes the
 * object's lock (locks/<id>), waiting while another process on this node
 * works on it, and hashes any prefix already in partial/<id>; if the
 * object is already complete it holds nothing and vine_fetch_complete is
 * true.  NULL on error (bad id, cache unusable).  Flags:
 *   VINE_FETCH_LOCKED  the caller holds locks/<id> already (vine_seed's
 *                      fetcher is called so); do not take it
 *   VINE_FETCH_KEEP    leave the verified object in partial/<id> for the
 *                      caller to publish, instead of renaming it into
 *                      objects/<id>
 */
enum { VINE_FETCH_LOCKED = 1, VINE_FETCH_KEEP = 2 };
struct vine_fetch;
struct vine_fetch *vine_fetch_open(const char *cache, const char *id, int flags);
int vine_fetch_complete(const struct vine_fetch *f);
/* Bytes of the object held so far (where the next source resumes). */
uint64_t vine_fetch_offset(const struct vine_fetch *f);
/* The path of the complete object (in partial/ with VINE_FETCH_KEEP),
 * valid until vine_fetch_close. */
const char *vine_fetch_path(const struct vine_fetch *f);

/*
 * Receive the rest of the object from one peer ("HOST:PORT"), starting at
 * vine_fetch_offset.  Returns VINE_PEER_OK once the object is verified and
 * published (at once if it already was), else a status with a message in
 * vine_errmsg().  After a source failure the bytes received are kept, so
 * the next call resumes at the same offset from another source.  After
 * VINE_PEER_ECORRUPT the copy is gone and the next call starts from zero.
 * After VINE_PEER_ELOCAL, stop.
 */
int vine_fetch_from(struct vine_fetch *f, const char *addr, const struct vine_peer_client_opts *o);
/*
 * The same over a connection the caller made (fd, a connected stream
 * socket, named name in messages; the caller closes it): the fuzzer's and
 * the tests' way in, with no TCP.
 */
int vine_fetch_from_fd(struct vine_fetch *f, int fd, const char *name, const struct vine_peer_client_opts *o);
/*
 * The same from a file (the origin, on a shared file system): copied from
 * vine_fetch_offset to its end, verified, published.  A file that cannot
 * be read is VINE_PEER_ENOTFOUND (at open) or VINE_PEER_EREMOTE; one whose
 * bytes do not hash to the id is VINE_PEER_ECORRUPT.
 */
int vine_fetch_from_file(struct vine_fetch *f, const char *path, const struct vine_peer_client_opts *o);
/*
 * The same from a source read through a function (the origin through the
 * state, xfer.c): read gives up to len bytes of the object from offset
 * into buf: how many (> 0), 0 at its end, or -1 with a message; size is
 * the object's size (0: not known).  name names the source in messages.
 * A failed read is VINE_PEER_EREMOTE, the bytes before it kept.
 */
struct vine_fetch_reader {
	ssize_t (*read)(void *ctx, uint64_t offset, void *buf, size_t len);
	void *ctx;
	uint64_t size;
};
int vine_fetch_from_reader(struct vine_fetch *f, const char *name, const struct vine_fetch_reader *r,
			   const struct vine_peer_client_opts *o);
/* Release the lock; a partial copy stays for a later resume (an empty one
 * is removed). */
void vine_fetch_close(struct vine_fetch *f);

/*
 * Where a fetch gets its sources: a fixed list (vine_peer_fetch), or the
 * state, which picks a peer holding the object (complete, or partial and
 * growing) with fewer than K uploads in flight, else the origin, and
 * records each transfer.  A source is a peer, "HOST:PORT", a file (the
 * origin on a shared file system), an absolute path, or, when reader is
 * set, a name with "://" in it, read with reader (the origin through the
 * state, whose URL names it).
 *
 * next: the source for the bytes from offset on: 0 with *src set
 *   (malloc'd), 1 when none is free now (the fetch sleeps *wait seconds,
 *   at most 60, and asks again), -1 when there is none to be had (with a
 *   message).
 * done: called once for each source next gave, when the fetch from it
 *   ended: its status, and the bytes the copy held before (from) and after
 *   (to; 0 after VINE_PEER_ECORRUPT).  msg is NULL on success.
 */
struct vine_peer_sources {
	int (*next)(void *ctx, const char *id, uint64_t offset, char **src, double *wait);
	void (*done)(void *ctx, const char *src, int status, uint64_t from, uint64_t to, const char *msg);
	void *ctx;
	const struct vine_fetch_reader *reader;   /* NULL: none */
};

/*
 * Fetch id into cache (vine_fetch_open's flags) from the sources s gives,
 * each resuming where the last stopped, until the object is complete (VINE_PEER_OK),
 * a local failure (VINE_PEER_ELOCAL), or s has none left: then the status
 * and message of the last failure, or VINE_PEER_ENOTFOUND with s's message.
 */
int vine_peer_fetch_sources(const char *cache, const char *id, int flags, const struct vine_peer_sources *s,
			    const struct vine_peer_client_opts *o);

/*
 * Fetch an object from the first of sources that can give it, each tried
 * at most once, in order, resuming where the previous one stopped.
 * Returns VINE_PEER_OK, or the status of the last failure (with its
 * message); o->source_failed hears about each failed source.
 */
int vine_peer_fetch(const char *cache, const char *id, const char *const *sources, size_t nsources,
		    const struct vine_peer_client_opts *o);

#endif
