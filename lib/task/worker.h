/*
 * worker.h - the worker loop behind vine-worker(1).
 *
 * A worker registers in the state, then repeatedly claims ready tasks up
 * to its free cores, runs each one as `/bin/sh -c CMD` in a fresh
 * directory in its own process group, enforces its time limit, ships its
 * stdout, stderr and $VINE_OUTDIR to the state, and reports how it ended.
 * Heartbeats renew its lease; a task the state no longer considers ours
 * (cancelled, or reaped while we were unreachable) is killed, its whole
 * process group, and its result dropped.  Heartbeats come every lease / 4
 * seconds, at most VINE_CANCEL_BOUND apart, which bounds how long a
 * cancelled task runs on.
 *
 * The worker makes each task's environment ready itself, once per node
 * and object, in a thread that fetches through the worker's own state
 * handle (shared under a mutex: one state connection per worker, and
 * tasks never open the state); claimed tasks wait for it holding their
 * cores, while the loop runs the rest.  If it cannot be made ready they
 * are handed back as VINE_OUT_FAULT with the reason (state.h): the node's
 * fault, not the tasks'.  Unless o->listen is NULL the worker serves its
 * cache to peers (vine(7), ADDRESSES); when it is NULL, an archive it
 * unpacked is dropped from the cache (vine_cache_drop_archive: kept while
 * another process serves that cache).
 *
 * A task runs in the directory it was submitted with (vine-submit -C, or
 * where vine-submit ran), or in its scratch directory when it has none.
 * Each task gets, in NODE.PID/ under the cache's tasks/ directory:
 * TASK.ATTEMPT/ (its scratch directory, $VINE_SCRATCH), TASK.ATTEMPT.out/ (its
 * $VINE_OUTDIR), TASK.ATTEMPT.stdout and TASK.ATTEMPT.stderr (its captured
 * output); all are removed once the result is shipped.  The worker holds
 * an flock on its NODE.PID directory for its life; a worker starting
 * removes the directories of workers whose lock is free (they died).
 *
 * Signals: while running, the worker blocks SIGCHLD, SIGTERM, SIGINT and
 * SIGHUP and reads them from a signalfd (children get the original mask
 * back).  The first SIGTERM, SIGINT or SIGHUP starts a drain: no more
 * claims; running tasks get drain seconds to finish and report normally;
 * then they get SIGTERM (and SIGKILL after grace) and are handed back to
 * the state as released.  A task that dies of a stop signal while
 * draining is handed back too (the batch system signals the whole job,
 * tasks included), and so is one that died of it up to stop_wait seconds
 * before the worker's own signal came: meanwhile its result is parked,
 * its core kept, and the loop goes on; if no signal comes it is recorded
 * as it ended.  A second signal cuts the drain short.
 */
#ifndef VINE_WORKER_H
#define VINE_WORKER_H

#include "state/state.h"

struct vine_worker_opts {
	const char *cache;    /* node cache directory */
	const char *node;     /* node name */
	const char *listen;   /* cache server address to record, or NULL */
	int listen_default;   /* listen was not asked for: if it cannot be
			       * served, warn and run tasks without serving */
	int cores;            /* cores to fill with tasks */
	double idle;          /* exit after this many seconds with nothing ready
			       * and nothing running; < 0: never */
	double lease;         /* lease length, seconds ($VINE_LEASE, 60) */
	double grace;         /* SIGTERM to SIGKILL, seconds ($VINE_GRACE, 10) */
	double drain;         /* running tasks' time after SIGTERM ($VINE_DRAIN, 20) */
	double stop_wait;     /* for the worker's own stop signal after a task
			       * died of one ($VINE_STOP_WAIT, 2) */
	int quiet;            /* no warnings about single tasks */
	uint64_t cache_limit; /* > 0: trim the cache to this after seeding */
	/* warnings (a state failure being retried, a result refused, a file
	 * not shipped), one line each without the program's name; NULL: none */
	vine_msg_fn warn;
	void *warn_ctx;
	int64_t memory;       /* bytes offered to tasks (vine_detect_memory) */
	int gpus;             /* GPUs offered to tasks (vine_detect_gpus) */
	/* what the worker is doing, a line at a time for a person (start,
	 * each task, the drain), or NULL */
	vine_msg_fn report;
	void *report_ctx;
};

/* This host's memory in bytes (MemTotal), or 0 when it cannot be read. */
int64_t vine_detect_memory(void);
/*
 * GPUs this process may use: the entries of $CUDA_VISIBLE_DEVICES when it
 * is set (none when empty or "-1"), else the /dev/nvidiaN device files.
 */
int vine_detect_gpus(void);

/*
 * Fill lease, grace, drain and stop_wait from $VINE_LEASE, $VINE_GRACE,
 * $VINE_DRAIN and $VINE_STOP_WAIT, else the defaults above.  A bad value
 * is an error.
 */
int vine_worker_env(struct vine_worker_opts *o);

/*
 * Run the worker loop until it is idle (o->idle) or drained.  Returns 0,
 * or -1 with a message when the state stayed unusable for longer than a
 * lease (its tasks are killed and handed back where possible).
 */
int vine_worker_run(struct vine_state *st, const struct vine_worker_opts *o);

#endif
