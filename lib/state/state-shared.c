/*
 * state-shared.c - a state handle threads may share (state.h,
 * vine_state_shared): every operation of the inner handle, one at a time,
 * under one mutex.  The worker's loop and the threads that make its
 * environments ready reach the state so, over the worker's one connection
 * (one SSH session per worker, vine(7) FAULTS).  Error messages are
 * per thread (util.h), so each caller reads its own.
 */
#include <pthread.h>
#include <stdlib.h>

#include "state/state-impl.h"
#include "util/util.h"

struct shared {
	struct vine_state base;
	struct vine_state *in;
	pthread_mutex_t lock;
	int cut;
};

#define SH(st) ((struct shared *)(st))

static int refused(struct shared *h, const char *op)
{
	if (h->cut)
		return vine_error("state '%s': %s: the worker is leaving", h->base.url, op);
	return vine_error("state '%s': this backend does not support %s", h->base.url, op);
}

/* One forwarding operation: static int sh_OP(st, params...) */
#define FWD(op, params, ...) \
	static int sh_##op params \
	{ \
		struct shared *h = SH(st); \
		int rc; \
		pthread_mutex_lock(&h->lock); \
		rc = !h->cut && h->in->ops->op ? h->in->ops->op(h->in, __VA_ARGS__) \
					       : refused(h, #op); \
		pthread_mutex_unlock(&h->lock); \
		return rc; \
	}

static void sh_close(struct vine_state *st)
{
	struct shared *h = SH(st);

	pthread_mutex_destroy(&h->lock);
	free(h->base.url);
	free(h);
}

FWD(submit, (struct vine_state *st, const char *key, const struct vine_object *obj,
	     const struct vine_task_spec *specs, size_t n, int64_t *ids),
    key, obj, specs, n, ids)
FWD(requeue_failed, (struct vine_state *st, const char *key, int retries, int64_t **ids,
		     size_t *n),
    key, retries, ids, n)
FWD(list_objects, (struct vine_state *st, struct vine_object **objs, size_t *n), objs, n)
FWD(register_worker, (struct vine_state *st, const char *key, const struct vine_worker_info *w,
		      int64_t *worker),
    key, w, worker)
FWD(heartbeat, (struct vine_state *st, int64_t worker, const struct vine_attempt_ref *running,
		size_t n, int *stale),
    worker, running, n, stale)
FWD(finish_claim, (struct vine_state *st, int64_t worker, const struct vine_result *results,
		   size_t nresults, int *accepted, int free_cores, int total_cores, size_t max,
		   struct vine_claim **claims, size_t *n, int *more),
    worker, results, nresults, accepted, free_cores, total_cores, max, claims, n, more)
FWD(put_file, (struct vine_state *st, int64_t worker, int64_t task, int attempt,
	       const char *name, int fd, int64_t size),
    worker, task, attempt, name, fd, size)
FWD(unregister_worker, (struct vine_state *st, int64_t worker), worker)
FWD(reap, (struct vine_state *st, int *reaped), reaped)
FWD(counts, (struct vine_state *st, struct vine_counts *c), c)
FWD(list_workers, (struct vine_state *st, struct vine_worker **w, size_t *n), w, n)
FWD(list_tasks, (struct vine_state *st, int64_t after, size_t limit, struct vine_task **tasks,
		 size_t *n),
    after, limit, tasks, n)
FWD(list_attempts, (struct vine_state *st, int64_t task, struct vine_attempt **a, size_t *n),
    task, a, n)
FWD(list_files, (struct vine_state *st, int64_t task, int attempt, struct vine_file **files,
		 size_t *n),
    task, attempt, files, n)
FWD(get_file, (struct vine_state *st, int64_t task, int attempt, const char *name, int fd),
    task, attempt, name, fd)
FWD(peer_secret, (struct vine_state *st, unsigned char *secret), secret)
FWD(spread_settings, (struct vine_state *st, const struct vine_spread_settings *set,
		      struct vine_spread_settings *get),
    set, get)
FWD(node_listen, (struct vine_state *st, const char *node, const char *addr), node, addr)
FWD(transfer_begin, (struct vine_state *st, const char *key, const char *id, const char *dest,
		     int64_t offset, struct vine_xfer *x),
    key, id, dest, offset, x)
FWD(transfer_progress, (struct vine_state *st, int64_t xfer, int64_t bytes), xfer, bytes)
FWD(transfer_end, (struct vine_state *st, const char *key, int64_t xfer, int status,
		   int64_t bytes, const char *msg),
    key, xfer, status, bytes, msg)
FWD(replica_set, (struct vine_state *st, const char *id, const char *node, int64_t bytes,
		  int complete),
    id, node, bytes, complete)
FWD(list_transfers, (struct vine_state *st, struct vine_transfer **t, size_t *n), t, n)
FWD(origin_read, (struct vine_state *st, const char *id, int64_t offset, void *buf, size_t len,
		  size_t *got, int64_t *size),
    id, offset, buf, len, got, size)

static const struct vine_state_ops shared_ops = {
	.close = sh_close,
	.submit = sh_submit,
	.requeue_failed = sh_requeue_failed,
	.list_objects = sh_list_objects,
	.register_worker = sh_register_worker,
	.heartbeat = sh_heartbeat,
	.finish_claim = sh_finish_claim,
	.put_file = sh_put_file,
	.unregister_worker = sh_unregister_worker,
	.reap = sh_reap,
	.counts = sh_counts,
	.list_workers = sh_list_workers,
	.list_tasks = sh_list_tasks,
	.list_attempts = sh_list_attempts,
	.list_files = sh_list_files,
	.get_file = sh_get_file,
	.peer_secret = sh_peer_secret,
	.spread_settings = sh_spread_settings,
	.node_listen = sh_node_listen,
	.transfer_begin = sh_transfer_begin,
	.transfer_progress = sh_transfer_progress,
	.transfer_end = sh_transfer_end,
	.replica_set = sh_replica_set,
	.list_transfers = sh_list_transfers,
	.origin_read = sh_origin_read,
};

struct vine_state *vine_state_shared(struct vine_state *st)
{
	struct shared *h = vine_xcalloc(1, sizeof(*h));

	h->base.ops = &shared_ops;
	h->base.url = vine_xstrdup(st->url);
	h->in = st;
	pthread_mutex_init(&h->lock, NULL);
	return &h->base;
}

void vine_state_shared_cut(struct vine_state *shared)
{
	struct shared *h = SH(shared);

	pthread_mutex_lock(&h->lock);
	h->cut = 1;
	pthread_mutex_unlock(&h->lock);
}
