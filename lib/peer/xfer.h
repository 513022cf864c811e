/*
 * xfer.h - fetching an object as the state directs (vine-spread -s,
 * vine-seed -s, vine-worker): a chooser over vine_peer_fetch_sources
 * whose sources come from vine_state_transfer_begin, each transfer
 * recorded in the state with its progress and outcome.
 */
#ifndef VINE_XFER_H
#define VINE_XFER_H

#include "peer/peer.h"
#include "state/state.h"

/* Seconds between progress reports to the state. */
#define VINE_XFER_PROGRESS_EVERY 2.0

/*
 * Fetch object id into cache for node (flags as vine_fetch_open's).
 * When the state sends it to the origin, the registered path is read if
 * it is a regular file of the object's size this node can open; else, with
 * an ssh:// state, the origin's bytes come through the state
 * (vine_state_origin_read).  $VINE_ORIGIN=path or state forces either; a
 * bad value is VINE_PEER_ELOCAL.
 * o->secret NULL: the state's peer secret.  o->source_failed hears of each
 * source that failed.  Returns a vine_peer_status like
 * vine_peer_fetch_sources; an error of the state itself (it cannot be
 * read, the object is not registered) stops the fetch as VINE_PEER_ELOCAL.
 */
int vine_xfer_fetch(struct vine_state *st, const char *cache, const char *node, const char *id,
		    int flags, const struct vine_peer_client_opts *o);

/*
 * vine_seed's fetcher (seed.h) through the state: ctx is a struct
 * vine_xfer_seed.  The object is fetched with VINE_FETCH_LOCKED |
 * VINE_FETCH_KEEP, verified, and left in partial/<id> for vine_seed to
 * publish; the fetcher sets verified = 1.
 */
struct vine_xfer_seed {
	struct vine_state *st;
	const char *cache, *node;
	const struct vine_peer_client_opts *opts;   /* NULL: defaults */
};
int vine_xfer_seed_fetch(void *ctx, const char *id, const char *origin, const char *dest);

/*
 * Node no longer holds object id (it pruned or dropped it): withdraw its
 * replica from the state (vine_state_replica_set with 0 bytes), so no peer
 * is sent there.  vine_xfer_seed_removed is vine_seed's removed callback
 * (seed.h) with a struct vine_xfer_seed; a failure there is let go, as
 * fetchers that hear "not found" from the node drop the replica too.
 */
int vine_xfer_withdraw(struct vine_state *st, const char *node, const char *id);
void vine_xfer_seed_removed(void *ctx, const char *id);

/*
 * A cache server as vine-spread --serve runs it.  With a state, it holds
 * a lease as a worker does (a worker record with 0 cores, the node's
 * listen address set), which the caller renews with vine_xfer_server_renew
 * every lease / 3: killed outright, its registration lapses with the lease
 * and no fetch is sent to it afterwards.  st NULL: a plain peer server.
 */
struct vine_xfer_server;
struct vine_xfer_server *vine_xfer_server_start(struct vine_state *st,
						const struct vine_peer_server_opts *o, double lease);
const char *vine_xfer_server_addr(const struct vine_xfer_server *x);
/* Renew the lease (nothing without a state); a failure may be retried. */
int vine_xfer_server_renew(struct vine_xfer_server *x);
/* Unregister from the state and stop the server, which is stopped and
 * freed even when unregistering fails (-1 with its message). */
int vine_xfer_server_stop(struct vine_xfer_server *x);

/*
 * Where a cache server whose peers reach the state at state_url listens
 * when not told (vine-worker, vine-spread --serve): "IP:0", malloc'd,
 * from vine_peer_default_listen with the manager host of an ssh:// URL,
 * or NULL (loopback) for a local state.
 */
char *vine_xfer_default_listen(const char *state_url);

#endif
