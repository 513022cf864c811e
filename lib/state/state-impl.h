/*
 * state-impl.h - what a state backend provides (for lib/state*.c only).
 *
 * A backend allocates a struct that begins with `struct vine_state`, fills
 * in ops, and returns it from its open function.  Each op has the meaning
 * and argument rules of the vine_state_* function of the same name in
 * state.h; state.c checks the arguments every backend would check the same
 * way (limits, names) before calling, so backends can trust them.  A remote
 * backend marshals each op as one request and one response.
 *
 * How to add a state operation (say "frob"), in this order:
 *  1. state.h: declare and document vine_state_frob (and vine_state_frob_once
 *     if a retried request must not act twice), its structs and limits.
 *  2. state-impl.h (here): add the op to struct vine_state_ops.
 *  3. state.c: vine_state_frob checks its arguments (every backend may
 *     trust them) and calls CALL(st, frob, ...).
 *  4. state-sqlite.c: sq_frob in one transaction, added to the ops table;
 *     a schema change is a new, separately named migration step.
 *  5. state-json.c: to and from JSON for any new struct.
 *  6. state-remote.c: remote_frob sends req("frob") and reads the answer;
 *     add it to the ops table (and to the exactly-once list at the top if
 *     it takes a key).
 *  7. state-serve.c: op_frob answers the request; add { "frob", op_frob }
 *     to the dispatch table.
 *  8. man/vine.7, STATE PROTOCOL, Operations: the request and its answer;
 *     STATE FILE if the schema changed.
 *  9. tests/unit: test-state.c (local), test-state-serve.c (over the
 *     protocol), test-state-once.c (exactly once), as they apply.
 */
#ifndef VINE_STATE_IMPL_H
#define VINE_STATE_IMPL_H

#include "state/state.h"

struct vine_state_ops {
	void (*close)(struct vine_state *st);
	/* key: NULL, or the exactly-once key of vine_state_submit_once (state.h) */
	int (*submit)(struct vine_state *st, const char *key, const char *name,
		      const struct vine_object *obj, const struct vine_task_spec *specs, size_t n,
		      int64_t *ids);
	int (*cancel)(struct vine_state *st, const struct vine_cancel *sel, int64_t **ids,
		      size_t *n);
	int (*requeue_failed)(struct vine_state *st, const char *key, int retries,
			      int64_t **ids, size_t *n);
	int (*list_objects)(struct vine_state *st, struct vine_object **objs, size_t *n);
	int (*register_worker)(struct vine_state *st, const char *key,
			       const struct vine_worker_info *w, int64_t *worker);
	int (*heartbeat)(struct vine_state *st, int64_t worker,
			 const struct vine_attempt_ref *running, size_t n, int *stale);
	/* finish, claim and finish_claim are all this one (max 0: no claim) */
	int (*finish_claim)(struct vine_state *st, int64_t worker,
			    const struct vine_result *results, size_t nresults, int *accepted,
			    const struct vine_resources *free, const struct vine_resources *total,
			    size_t max, struct vine_claim **claims, size_t *n, int *more);
	int (*put_file)(struct vine_state *st, int64_t worker, int64_t task, int attempt,
			const char *name, int fd, int64_t size);
	int (*unregister_worker)(struct vine_state *st, int64_t worker);
	int (*reap)(struct vine_state *st, int *reaped);
	int (*counts)(struct vine_state *st, struct vine_counts *c);
	int (*list_workers)(struct vine_state *st, struct vine_worker **w, size_t *n);
	int (*list_tasks)(struct vine_state *st, int64_t after, size_t limit,
			  struct vine_task **tasks, size_t *n);
	int (*list_attempts)(struct vine_state *st, int64_t task, struct vine_attempt **a,
			     size_t *n);
	int (*list_files)(struct vine_state *st, int64_t task, int attempt,
			  struct vine_file **files, size_t *n);
	int (*get_file)(struct vine_state *st, int64_t task, int attempt, const char *name,
			int fd);
	int (*peer_secret)(struct vine_state *st, unsigned char *secret);
	int (*spread_settings)(struct vine_state *st, const struct vine_spread_settings *set,
			       struct vine_spread_settings *get);
	int (*node_listen)(struct vine_state *st, const char *node, const char *addr);
	int (*transfer_begin)(struct vine_state *st, const char *key, const char *id,
			      const char *dest, int64_t offset, struct vine_xfer *x);
	int (*transfer_progress)(struct vine_state *st, int64_t xfer, int64_t bytes);
	int (*transfer_end)(struct vine_state *st, const char *key, int64_t xfer, int status,
			    int64_t bytes, const char *msg);
	int (*replica_set)(struct vine_state *st, const char *id, const char *node,
			   int64_t bytes, int complete);
	int (*list_transfers)(struct vine_state *st, struct vine_transfer **t, size_t *n);
	int (*origin_read)(struct vine_state *st, const char *id, int64_t offset, void *buf,
			   size_t len, size_t *got, int64_t *size);
	int (*deliver)(struct vine_state *st, const int64_t *ids, size_t n, size_t *done);
};

struct vine_state {
	const struct vine_state_ops *ops;
	char *url;
};

/*
 * The words of the local backend's messages for a state that does not
 * exist, or is an empty file (being made); a remote open failing with
 * them (the server's message) is vine_state_missing() too.
 * vine_state_set_missing() marks the open failure of this thread as such.
 */
#define VINE_STATE_MISSING_TEXT "does not exist (vine-submit creates one"
#define VINE_STATE_EMPTY_TEXT "' is empty"
void vine_state_set_missing(void);

/* The local SQLite backend (state-sqlite.c). */
struct vine_state *vine_state_sqlite_open(const char *path, int flags);
/* The remote backend (state-remote.c): ssh://[user@]host[:port]/path. */
struct vine_state *vine_state_remote_open(const char *url, int flags);

/*
 * The retry rule every backend applies when an attempt ends, so they
 * cannot disagree: given the task's counters after the attempt, the state
 * the task goes to.  *failures and *losses are updated.
 */
enum vine_task_state vine_state_next(enum vine_outcome o, int exit_code, int retries,
				     int *failures, int *losses);

#endif
