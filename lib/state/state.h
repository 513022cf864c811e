/*
 * state.h - the state: tasks, attempts, workers, objects and results.
 *
 * The state is the one coordination point of a run (vine(7), STATE FILE).
 * Programs reach it only through the operations below, never through SQL.
 * Each operation is coarse and takes and returns plain data (numbers,
 * strings, arrays of structs), so that it maps onto one request and one
 * response of a remote protocol: a `struct vine_state` is an opaque handle
 * with an operations table behind it (state-impl.h), and
 * vine_state_open() picks the backend from the URL:
 *
 *   PATH              the local SQLite backend (state-sqlite.c): a database
 *                     file on this host's local disk, created on first use
 *   ssh://[user@]host[:port]/path
 *                     the remote backend (state-remote.c): each operation
 *                     is a request to vine-state(1) on host, over SSH
 *
 * Every operation is atomic: it happens completely, in one transaction, or
 * not at all, and then returns -1 with a message (util.h).  Times are
 * seconds since the epoch as doubles.  Times the state stamps itself
 * (claim time, heartbeat, lease expiry) come from the clock of the host
 * that holds the state, so worker clocks never decide a lease; times a
 * worker reports (a task's start and end) come from the worker's clock.
 *
 * Memory: strings in argument structs are borrowed for the call.  Arrays
 * and strings an operation returns are allocated for the caller and
 * released with the vine_state_free_*() function named beside it.
 *
 * Task life cycle (vine(7), TASKS):
 *
 *   ready --claim--> running --finish(exit 0)--> done
 *                       |---finish(failure)--> ready again, or failed when
 *                       |                      failures > retries
 *                       |---lease expired (reap)--> ready again (a "lost"
 *                       |                      attempt), or failed when
 *                       |                      losses > retries + 2
 *                       |---finish(RELEASED)--> ready (handed back; free)
 *                       `---finish(FAULT)--> ready (handed back: its
 *                                              environment could not be made
 *                                              ready), or failed when nodes
 *                                              that faulted >= VINE_FAULT_NODES
 *   failed --requeue_failed--> ready
 *
 * Each claim starts a new attempt: the task's attempt number goes up by
 * one, and an attempts row records who ran it and how it ended.  A busy
 * worker reports what ended and claims more in one call
 * (vine_state_finish_claim), so each task costs one round trip.  Results
 * (files, finish) are accepted only from the worker holding the current
 * attempt of a running task, so a stale attempt can never overwrite a
 * newer one and no task is ever recorded done twice.
 */
#ifndef VINE_STATE_H
#define VINE_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/config.h"
#include "util/hash.h"

/* The schema version of the local backend (vine(7), STATE FILE). */
#define VINE_STATE_SCHEMA 6

/* Limits every backend enforces on what it is given. */
#define VINE_CMD_MAX (1 << 20)        /* bytes in one task's command */
#define VINE_CORES_MAX 4096
#define VINE_RETRIES_MAX 1000
#define VINE_TIMEOUT_MAX (366.0 * 86400) /* a task's time limit, seconds */
#define VINE_TAG_MAX 256
#define VINE_NAME_MAX 4096            /* a result file name, bytes */
#define VINE_MEMORY_MAX (INT64_C(1) << 60) /* bytes a task or worker may state */
#define VINE_GPUS_MAX 1024
#define VINE_SUBMISSION_MAX 256       /* bytes in a submission's name */
#define VINE_CWD_MAX 4096             /* bytes in a task's directory */
/* Extra chances a task gets when its worker is lost, beyond -r. */
#define VINE_LOST_EXTRA 2
/*
 * Infrastructure faults (vine(7), FAULTS): a task handed back as FAULT
 * by this many distinct nodes fails.  The node that handed it back claims
 * no task that needs the same object for VINE_FAULT_BACKOFF seconds,
 * doubling with each further fault of that node with that object, up to
 * VINE_FAULT_BACKOFF_MAX (faults reported while it backs off already,
 * the other tasks of the same failed fetch, are the same fault).
 */
#define VINE_FAULT_NODES 3
#define VINE_FAULT_BACKOFF 30.0
#define VINE_FAULT_BACKOFF_MAX 600.0

struct vine_state;

enum vine_task_state {
	VINE_TASK_READY,
	VINE_TASK_RUNNING,
	VINE_TASK_DONE,       /* finished and succeeded (exit status 0) */
	VINE_TASK_FAILED,     /* finished unsuccessfully, no retries left */
	VINE_TASK_CANCELLED,  /* cancelled (vine_state_cancel) */
	VINE_TASK_NSTATES
};

/* How an attempt ended. */
enum vine_outcome {
	VINE_OUT_RUNNING,     /* not ended yet */
	VINE_OUT_EXITED,      /* the command exited: exit_code (0 is success) */
	VINE_OUT_SIGNALED,    /* killed by signal (not ours) */
	VINE_OUT_TIMEOUT,     /* ran past its time limit; signal or exit_code */
	VINE_OUT_ERROR,       /* could not run (environment, exec, shipping) */
	VINE_OUT_LOST,        /* its worker's lease expired */
	VINE_OUT_RELEASED,    /* handed back by a draining worker */
	VINE_OUT_FAULT,       /* handed back: an infrastructure fault (its
			       * environment could not be made ready on the
			       * node); message says why */
	VINE_OUT_CANCELLED,   /* its task was cancelled while it ran */
	VINE_OUT_N
};

/* "ready", "running", ... as stored and shown; NULL for a bad value. */
const char *vine_task_state_name(enum vine_task_state s);
const char *vine_outcome_name(enum vine_outcome o);
/* The reverse; -1 for an unknown name. */
int vine_task_state_parse(const char *s);
int vine_outcome_parse(const char *s);

/* --- opening ------------------------------------------------------------ */

enum {
	VINE_STATE_CREATE = 1,  /* create the state if it does not exist */
};

/*
 * Open the state named by url (see the top of this file).  A local state
 * that exists must have schema version VINE_STATE_SCHEMA; versions 2 to 4
 * are upgraded to it in place, one transaction a step; any other version, or a
 * database that is not a vine state, is refused with a message naming
 * both versions.  Without VINE_STATE_CREATE a missing
 * state is an error.  Returns NULL with a message on failure.
 */
struct vine_state *vine_state_open(const char *url, int flags);
/*
 * After vine_state_open failed (in this thread): 1 when the only reason was
 * that the state does not exist yet (its directory does, on this host or
 * on the remote one), or is an empty file (vine-submit is making it), so
 * that it may appear once vine-submit has made it; else 0.
 */
int vine_state_missing(void);
/*
 * Is url a well-formed state name: not empty, a whole
 * ssh://[user@]host[:port]/path, no other URL scheme?  0, or -1 with a
 * message naming url.  It says nothing of whether the state exists: a
 * program checks its -s and $VINE_STATE with it before it starts, so that
 * a malformed name is a usage error.
 */
int vine_state_name_check(const char *url);
void vine_state_close(struct vine_state *st);
/* The url the state was opened with. */
const char *vine_state_url(const struct vine_state *st);

/*
 * A handle on st that threads may share: each operation takes a mutex,
 * so they reach st one at a time, over st's one connection (the worker's
 * environment fetches share its SSH session so).  Closing it leaves st
 * open.  vine_state_shared_cut() makes every later operation on the
 * handle fail at once, without touching st (a thread that outlives st's
 * owner); the handle must then not be closed while a thread may use it.
 */
struct vine_state *vine_state_shared(struct vine_state *st);
void vine_state_shared_cut(struct vine_state *shared);

/* --- objects and submitting -------------------------------------------- */

struct vine_replica {
	char *node;
	int64_t bytes;        /* bytes present in that node's cache */
	int complete;
};

/* A node that handed back tasks needing an object (VINE_OUT_FAULT). */
struct vine_backoff {
	char *node;
	int faults;                 /* its faults with this object */
	double until;               /* it claims no task needing it until then */
	char *reason;               /* the last fault's message */
};

struct vine_object {
	char id[VINE_ID_LEN + 1];   /* lowercase hex SHA-256 */
	int64_t size;
	char *origin;               /* absolute path where it was registered */
	/* filled by vine_state_list_objects only: */
	int64_t served_origin;      /* transfers the origin served */
	int64_t served_peer;        /* transfers peers served */
	int64_t bytes_origin;       /* bytes the origin sent (all transfers) */
	int64_t bytes_peer;         /* bytes peers sent (all transfers) */
	int64_t xfer_active;        /* transfers in flight */
	int64_t xfer_failed;        /* transfers that ended in failure */
	struct vine_replica *replicas;
	size_t nreplicas;
	struct vine_backoff *backoffs;  /* nodes that faulted with it, by node */
	size_t nbackoffs;
};

struct vine_task_spec {
	const char *cmd;            /* shell command, 1..VINE_CMD_MAX bytes, no NUL */
	const char *object;         /* environment object id, or NULL */
	int cores;                  /* 1..VINE_CORES_MAX */
	int retries;                /* 0..VINE_RETRIES_MAX */
	double timeout;             /* seconds, 0 (none) .. VINE_TIMEOUT_MAX */
	const char *tag;            /* free text for the user, or NULL */
	const char *cwd;            /* absolute directory to run in, or NULL:
				       the task's scratch directory */
	int64_t memory;             /* bytes it needs, 0..VINE_MEMORY_MAX (0: any) */
	int gpus;                   /* GPUs it needs, 0..VINE_GPUS_MAX */
};

/*
 * Add n tasks, all or none, in one transaction.  If obj is not NULL it is
 * registered in the same transaction (an object already known keeps its
 * first origin; a known id with another size is refused).  Each spec's
 * object must be obj's id or an object already registered.  Every spec is
 * checked against the limits above; the message of a bad one starts with
 * "task N: " (N counted from 1).  On success ids[i] is the new id of
 * specs[i]; ids grow in input order.
 */
int vine_state_submit(struct vine_state *st, const struct vine_object *obj,
		      const struct vine_task_spec *specs, size_t n, int64_t *ids);

/*
 * Send every failed task back to ready with its failure and loss counts
 * reset (its attempts stay on record); retries >= 0 also replaces each
 * one's retry budget.  *ids (free with free()) gets their ids, *n how many.
 */
int vine_state_requeue_failed(struct vine_state *st, int retries, int64_t **ids, size_t *n);

/*
 * Exactly once over a lost answer.  key is NULL or VINE_ONCE_KEY_LEN
 * lowercase hex digits naming one logical call, made once (vine_once_key)
 * and sent again unchanged with every retry of that call.  A state that
 * has seen key returns the answer it gave then and changes nothing; else
 * it runs the operation and records key with its answer in the same
 * transaction.  Keys are forgotten after VINE_ONCE_KEEP seconds.  The
 * plain vine_state_submit, vine_state_requeue_failed,
 * vine_state_transfer_end, vine_state_register_worker and
 * vine_state_transfer_begin are these with key NULL (the last two are
 * declared beside their plain forms): the local state just runs them, a
 * remote one makes a key itself and resends on a lost answer.
 */
#define VINE_ONCE_KEY_LEN 32
#define VINE_ONCE_KEEP 86400.0
int vine_once_key(char key[VINE_ONCE_KEY_LEN + 1]);
int vine_state_submit_once(struct vine_state *st, const char *key,
			   const struct vine_object *obj, const struct vine_task_spec *specs,
			   size_t n, int64_t *ids);

/*
 * A named submission (vine-submit --name): name is 1..VINE_SUBMISSION_MAX
 * bytes on one line, recorded with every task it adds.  Submitting under
 * a name the state has seen adds nothing: when the task list (every spec
 * field and obj's id) is the one submitted then, ids gets the ids given
 * then; when it differs, it is an error naming the submission.  name NULL
 * is vine_state_submit_once.
 */
int vine_state_submit_named(struct vine_state *st, const char *key, const char *name,
			    const struct vine_object *obj, const struct vine_task_spec *specs,
			    size_t n, int64_t *ids);

/*
 * Cancel tasks: those with the nids ids in ids, or (submission not NULL)
 * those of that named submission, or (all) every task; exactly one of the
 * three.  Ready tasks become cancelled; running ones become cancelled and
 * their attempt ends as CANCELLED at once, so that the worker holding it
 * finds it stale at its next heartbeat and kills it (vine-worker(1):
 * within VINE_CANCEL_BOUND seconds).  Tasks already done, failed or
 * cancelled are left as they are.  An id or submission that does not
 * exist is an error, and nothing is cancelled.  *cancelled (free with
 * free()) gets the ids of the tasks cancelled now, in id order, *n how
 * many.
 */
struct vine_cancel {
	const int64_t *ids;
	size_t nids;
	const char *submission;
	int all;
};
int vine_state_cancel(struct vine_state *st, const struct vine_cancel *sel,
		      int64_t **cancelled, size_t *n);
/* Longest a worker takes to see a cancel: its heartbeat interval, at most this. */
#define VINE_CANCEL_BOUND 5.0
int vine_state_requeue_failed_once(struct vine_state *st, const char *key, int retries,
				   int64_t **ids, size_t *n);
int vine_state_transfer_end_once(struct vine_state *st, const char *key, int64_t xfer,
				 int status, int64_t bytes, const char *msg);

/* Every registered object, in id order, with replicas and counters. */
int vine_state_list_objects(struct vine_state *st, struct vine_object **objs, size_t *n);
void vine_state_free_objects(struct vine_object *objs, size_t n);

/* --- workers ------------------------------------------------------------ */

struct vine_worker_info {
	const char *node;           /* node name, 1..VINE_NODE_MAX bytes */
	const char *host;           /* host name the worker runs on */
	pid_t pid;
	int cores;                  /* 1..VINE_CORES_MAX; 0: a cache server that
				       runs no tasks (vine-spread --serve) */
	const char *listen;         /* cache server address, or NULL */
	double lease;               /* seconds a heartbeat keeps it alive, > 0 */
	int64_t memory;             /* bytes it offers tasks, 0..VINE_MEMORY_MAX */
	int gpus;                   /* GPUs it offers tasks, 0..VINE_GPUS_MAX */
};

/*
 * Register a worker; *worker gets its id.  The worker is alive until
 * (state clock) now + lease; each heartbeat extends that.  A cache server
 * that is not a worker registers too, with 0 cores, for the lease alone:
 * when the lease runs out, the reaper drops its listen registration
 * (vine_state_reap), so no fetch is sent to a dead server.
 */
int vine_state_register_worker(struct vine_state *st, const struct vine_worker_info *w,
			       int64_t *worker);
int vine_state_register_worker_once(struct vine_state *st, const char *key,
				    const struct vine_worker_info *w, int64_t *worker);

/* A task and attempt a worker holds. */
struct vine_attempt_ref {
	int64_t task;
	int attempt;
};

/*
 * Renew the worker's lease to now + its lease.  running[0..n) are the
 * attempts the worker believes it runs; for each one that is no longer
 * current (reaped while the worker was unreachable, say) stale[i] is set
 * to 1, else 0: the worker should kill it and drop its result.  A worker
 * that was marked lost comes back alive, and serves again at its listen
 * address unless another server has registered its node since.
 */
int vine_state_heartbeat(struct vine_state *st, int64_t worker,
			 const struct vine_attempt_ref *running, size_t n, int *stale);

/* What a worker gets for each task it claims. */
struct vine_claim {
	int64_t task;
	int attempt;                /* 1 for the first run, then 2, ... */
	char *cmd;
	int cores;
	double timeout;             /* 0: none */
	char *object;               /* environment object id, or NULL */
	char *origin;               /* its origin path, or NULL */
	int64_t size;               /* its size, or 0 */
	char *cwd;                  /* the directory to run in, or NULL */
	int64_t memory;             /* bytes it needs (0: any) */
	int gpus;                   /* GPUs it needs */
};

/* What a worker has, or has free, to claim with. */
struct vine_resources {
	int cores;
	int64_t memory;             /* bytes */
	int gpus;
};

/*
 * Claim ready tasks for the worker, oldest first, in one transaction: at
 * most max tasks, none that needs an object the worker's node is backing
 * off from (VINE_OUT_FAULT), whose cores add up to no more than free_cores (a task
 * that does not fit is passed over, so a later smaller one may run first).
 * First, tasks of workers whose lease has expired are reaped (see
 * vine_state_reap); a claim also renews the worker's lease when less than
 * half of it is left (and brings a lost worker back).  A worker that has
 * left (or was never registered) is an error.  *claims (free with vine_state_free_claims) gets the
 * claimed tasks, *n how many.  *more (if not NULL) is set to 1 when ready
 * tasks remain that need no more cores than total_cores (this worker
 * could run them later), else 0.
 */
int vine_state_claim(struct vine_state *st, int64_t worker, int free_cores, int total_cores,
		     size_t max, struct vine_claim **claims, size_t *n, int *more);
void vine_state_free_claims(struct vine_claim *c, size_t n);

/*
 * Store one result file of an attempt: size bytes read from fd (from its
 * current offset), streamed, never held whole in memory.  name is
 * "stdout", "stderr" or "out/REL" where REL is a relative path of the file
 * in $VINE_OUTDIR (no empty, "." or ".." components, at most
 * VINE_NAME_MAX bytes).  Returns 0 when stored, 1 when refused because
 * (task, attempt) is not the current attempt of a running task held by
 * worker (nothing is kept), -1 on error.  Storing a name twice replaces
 * it.  fd yielding fewer than size bytes is an error.
 */
int vine_state_put_file(struct vine_state *st, int64_t worker, int64_t task, int attempt,
			const char *name, int fd, int64_t size);

/* The result of one attempt, reported by the worker that ran it. */
struct vine_result {
	int64_t task;
	int attempt;
	enum vine_outcome outcome;  /* EXITED .. ERROR, or RELEASED */
	int exit_code;              /* EXITED; TIMEOUT when signal is 0 */
	int signal;                 /* SIGNALED; TIMEOUT when it was killed */
	double started, ended;      /* worker clock; 0 if it never started */
	const char *message;        /* ERROR: why; else NULL */
};

/*
 * Record results, in one transaction.  accepted[i] is set to 1 when
 * results[i] was recorded, 0 when it was refused as stale (not the current
 * attempt of a running task held by worker) - refusal is not an error.
 * A success makes the task done; a failure (non-zero exit, signal,
 * timeout, error) sends it back to ready unless it has failed more than
 * its retries, then it is failed; RELEASED sends it back to ready and
 * counts against nothing.  FAULT sends it back to ready without counting
 * against its retries, and has the attempt's node claim no task that
 * needs the task's object for a while (VINE_FAULT_BACKOFF); once
 * VINE_FAULT_NODES distinct nodes have handed it back so, it is failed.
 */
int vine_state_finish(struct vine_state *st, int64_t worker, const struct vine_result *results,
		      size_t n, int *accepted);

/*
 * vine_state_finish then vine_state_claim, in one transaction (and, for a
 * remote state, one round trip): what a busy worker does each time tasks
 * end.  Arguments and results are those of the two operations.
 */
int vine_state_finish_claim(struct vine_state *st, int64_t worker,
			    const struct vine_result *results, size_t nresults, int *accepted,
			    int free_cores, int total_cores, size_t max,
			    struct vine_claim **claims, size_t *n, int *more);

/*
 * vine_state_finish_claim with memory and GPUs as well as cores: a task is
 * claimed only if its cores, memory and GPUs all fit in what is free (and
 * *more counts only tasks that fit in total).
 */
int vine_state_finish_claim_res(struct vine_state *st, int64_t worker,
				const struct vine_result *results, size_t nresults, int *accepted,
				const struct vine_resources *free, const struct vine_resources *total,
				size_t max, struct vine_claim **claims, size_t *n, int *more);

/*
 * The worker leaves: any task it still holds is handed back (RELEASED) and
 * it is recorded as gone.
 */
int vine_state_unregister_worker(struct vine_state *st, int64_t worker);

/*
 * Reap: every alive worker whose lease has expired is marked lost, and
 * each task it held ends its attempt as LOST and goes back to ready, or to
 * failed when it was lost more than retries + VINE_LOST_EXTRA times.  The
 * transfers to or from its node end as failed ("lost") and it no longer
 * serves.
 * *reaped (if not NULL) gets the number of tasks affected.  Claims do this
 * themselves; vine-collect -w calls it so a run whose workers all died
 * shows it.
 */
int vine_state_reap(struct vine_state *st, int *reaped);

/* --- spreading objects between nodes ------------------------------------ */

/*
 * A node fetching an object asks the state where to get it from
 * (vine(7), PEER PROTOCOL, "Source selection").  Nodes serve their caches
 * over TCP (vine-spread --serve, vine-worker -l) and say where with
 * vine_state_node_listen.  Peers authenticate each other with the run's
 * secret, 32 random bytes made with the state.
 */

#define VINE_STATE_SECRET_LEN 32
/* Defaults of the run settings (vine_state_spread_settings). */
#define VINE_K_PEER_DEFAULT 2
#define VINE_K_ORIGIN_DEFAULT 2
#define VINE_K_MAX 1024
/* Seconds a source that failed is passed over. */
#define VINE_AVOID_SECONDS 30.0
/* Seconds without progress after which an active transfer counts as dead. */
#define VINE_XFER_STALE 60.0

/* The run's peer secret (created with the state). */
int vine_state_peer_secret(struct vine_state *st, unsigned char secret[VINE_STATE_SECRET_LEN]);

/* Run settings for spreading. */
struct vine_spread_settings {
	int k_peer;        /* uploads at once one peer is given, 1..VINE_K_MAX */
	int k_origin;      /* transfers at once from the origin, 1..VINE_K_MAX */
	int relay;         /* 1: a partial, growing copy may serve; 0: complete ones only */
};

/*
 * If set is not NULL, store its values (all three, checked) first; then
 * *get (if not NULL) gets the settings in force.  Unset values are the
 * defaults above.
 */
int vine_state_spread_settings(struct vine_state *st, const struct vine_spread_settings *set,
			       struct vine_spread_settings *get);

/*
 * Node node serves its cache at addr ("HOST:PORT"); addr NULL: it stopped
 * serving.  Registering again replaces the address and forgets that the
 * node's source was being avoided.
 */
int vine_state_node_listen(struct vine_state *st, const char *node, const char *addr);

/* Where vine_state_transfer_begin sends a node. */
enum vine_xfer_kind {
	VINE_XFER_WAIT,     /* no source is free now: ask again after wait seconds */
	VINE_XFER_PEER,     /* fetch from peer node at addr "HOST:PORT" */
	VINE_XFER_ORIGIN,   /* fetch from the origin, the file at addr */
};

struct vine_xfer {
	int64_t id;                 /* the transfer; 0 for WAIT */
	enum vine_xfer_kind kind;
	char *node;                 /* PEER: the source node, else NULL */
	char *addr;                 /* PEER: HOST:PORT; ORIGIN: the path; else NULL */
	double wait;                /* WAIT: seconds */
};
void vine_state_free_xfer(struct vine_xfer *x);

/*
 * Node dest wants object id and holds offset bytes of it.  In one
 * transaction reap (vine_state_reap: a server whose lease ran out serves
 * no more), then pick its source: a registered peer (not dest) that holds the
 * object complete, or (with relay on) partial and being fetched, with at
 * least offset bytes, that is not being avoided and has fewer than k_peer
 * transfers in flight; else the origin if fewer than k_origin transfers
 * from it are in flight; else WAIT.  A transfer is recorded, and dest's
 * replica (bytes = offset) so that dest can relay at once.  An unknown
 * object is an error.  With a key (vine_state_submit_once) a transfer's
 * answer is recorded and given again; a WAIT is not recorded, as it
 * changes nothing: the same key asked again picks a source afresh.
 */
int vine_state_transfer_begin(struct vine_state *st, const char *id, const char *dest,
			      int64_t offset, struct vine_xfer *x);
int vine_state_transfer_begin_once(struct vine_state *st, const char *key, const char *id,
				   const char *dest, int64_t offset, struct vine_xfer *x);

/* The transfer's destination now holds bytes bytes. */
int vine_state_transfer_progress(struct vine_state *st, int64_t xfer, int64_t bytes);

/*
 * The transfer ended: status is a vine_peer_status (peer.h), bytes what
 * the destination holds now, msg why (NULL on success).  VINE_PEER_OK:
 * dest's replica is complete, and the object's served_peer or
 * served_origin counter goes up.  A failure of the source (connect,
 * timeout, stalled, remote, protocol, corrupt, auth, version) has the
 * source avoided for VINE_AVOID_SECONDS; not found drops the source's
 * replica, complete or not (the node pruned or dropped it since); busy and local failures cost the source nothing.  Bytes sent
 * are counted in either case.  Ending a transfer twice is an error.
 */
int vine_state_transfer_end(struct vine_state *st, int64_t xfer, int status, int64_t bytes,
			    const char *msg);

/*
 * Record that node holds bytes of object id (complete or not), for copies
 * a node made without a transfer (from the origin path itself, say).
 * bytes 0 and not complete withdraws the replica: node holds none of it
 * any more (it pruned or dropped it), so no peer is sent there; the
 * record is removed, and withdrawing from an unknown object is no error.
 */
int vine_state_replica_set(struct vine_state *st, const char *id, const char *node,
			   int64_t bytes, int complete);

/* A transfer as recorded. */
struct vine_transfer {
	int64_t id;
	char *object, *source, *addr, *dest;  /* source NULL: the origin */
	char *state;                /* "active", "done" or "failed" */
	char *status;               /* peer status name once ended, or NULL */
	int64_t offset, bytes;
	double started, updated;
};

/* Every transfer, in id order. */
int vine_state_list_transfers(struct vine_state *st, struct vine_transfer **t, size_t *n);
void vine_state_free_transfers(struct vine_transfer *t, size_t n);

/* --- looking ------------------------------------------------------------ */

/*
 * The "looking" operations only read, and see one consistent snapshot
 * each.  They do not reap: a worker whose lease has expired still shows as
 * alive until a claim or vine_state_reap marks it lost.
 */

struct vine_counts {
	int64_t n[VINE_TASK_NSTATES];  /* tasks in each state */
	int64_t total;
	int64_t workers_alive;         /* workers in state "alive" */
	int64_t worker_slots;          /* alive workers that run tasks (cores > 0) */
	/* ready tasks that need more cores, memory or GPUs than any alive
	 * worker has (0 when no worker is alive), and the first of them */
	int64_t unfit, unfit_task;
};

/* How many tasks are in each state; *c is zeroed first. */
int vine_state_counts(struct vine_state *st, struct vine_counts *c);

struct vine_worker {
	int64_t id;
	char *node, *host, *listen; /* listen may be NULL */
	pid_t pid;
	int cores;
	char *state;                /* "alive", "lost" or "gone" */
	double started, heartbeat, expires;
	int64_t *running;           /* ids of the tasks it holds */
	size_t nrunning;
	int64_t memory;             /* bytes offered */
	int gpus;
};

/* Every worker ever registered, in id order. */
int vine_state_list_workers(struct vine_state *st, struct vine_worker **w, size_t *n);
void vine_state_free_workers(struct vine_worker *w, size_t n);

/* An attempt as recorded. */
struct vine_attempt {
	int64_t task;
	int attempt;
	int64_t worker;
	char *node;                 /* NULL for a task never claimed */
	double claimed;             /* state clock */
	double started, ended;      /* worker clock, 0 if unknown */
	enum vine_outcome outcome;
	int exit_code, signal;
	char *message;              /* may be NULL */
	int64_t received;           /* bytes of result files stored */
};

/* A task with its latest attempt (last.attempt == 0: never claimed). */
struct vine_task {
	int64_t id;
	char *cmd;
	char *object;               /* may be NULL */
	char *tag;                  /* may be NULL */
	char *cwd;                  /* may be NULL (the scratch directory) */
	char *submission;           /* its submission's name, or NULL */
	int64_t memory;
	int gpus;
	int cores, retries;
	double timeout, submitted;
	enum vine_task_state state;
	int attempts, failures, losses;
	int faults;                 /* distinct nodes that handed it back (FAULT) */
	double delivered;           /* state clock when its results were
				       delivered (vine_state_deliver), 0: not */
	struct vine_attempt last;
};

/*
 * Up to limit tasks with ids greater than after, in id order; page
 * through all of them by passing the last id seen.
 */
int vine_state_list_tasks(struct vine_state *st, int64_t after, size_t limit,
			  struct vine_task **tasks, size_t *n);
void vine_state_free_tasks(struct vine_task *t, size_t n);

/* Every attempt of one task, oldest first; an unknown task is an error. */
int vine_state_list_attempts(struct vine_state *st, int64_t task, struct vine_attempt **a,
			     size_t *n);
void vine_state_free_attempts(struct vine_attempt *a, size_t n);

struct vine_file {
	char *name;                 /* as given to vine_state_put_file */
	int64_t size;
};

/* The result files stored for an attempt, in name order. */
int vine_state_list_files(struct vine_state *st, int64_t task, int attempt,
			  struct vine_file **files, size_t *n);
void vine_state_free_files(struct vine_file *f, size_t n);

/* Stream one stored result file to fd. */
int vine_state_get_file(struct vine_state *st, int64_t task, int attempt, const char *name,
			int fd);

/*
 * Results taken: the n tasks ids[] (finished: done, failed or cancelled)
 * have had their results delivered to whoever asked for them (vine-collect
 * -d, the Parsl executor), so the state drops their stored result files
 * (every attempt's) and keeps only their record, marked delivered at the
 * state's clock: their state, attempts and exit status stay as they were
 * (vine-status counts a delivered done task as done).  In one transaction;
 * the files are removed once it commits.  A task delivered already is left
 * as it is; an unknown id, or a task not finished, is an error and nothing
 * changes.  *done (if not NULL) gets how many were marked now.  At most
 * VINE_DELIVER_MAX ids a call.
 */
#define VINE_DELIVER_MAX 10000
int vine_state_deliver(struct vine_state *st, const int64_t *ids, size_t n, size_t *done);

/* True when name is acceptable to vine_state_put_file. */
int vine_result_name_valid(const char *name);

/* --- the origin through the state --------------------------------------- */

/*
 * A node that cannot read an object's origin path itself (no shared file
 * system; vine(7), PEER PROTOCOL, "Source selection") reads it through the
 * state: the state's host reads the origin registered for object id, and
 * only that file - the request names an object, never a path.
 */

/* Bytes one vine_state_origin_read may ask for. */
#define VINE_ORIGIN_READ_MAX (16u << 20)

/*
 * Read up to len bytes (at most VINE_ORIGIN_READ_MAX) of object id's
 * origin from byte offset into buf; *got gets how many were read: fewer
 * than len only at the object's end (registered size).  *size (if not
 * NULL) gets the object's registered size.  len 0 reads nothing and does
 * not open the origin (it asks for the size).  An object that is not
 * registered, an offset past its size, an origin that cannot be read, is
 * not a regular file, or whose size is not the registered one (it changed
 * since), is an error.
 */
int vine_state_origin_read(struct vine_state *st, const char *id, int64_t offset, void *buf,
			   size_t len, size_t *got, int64_t *size);

#endif
