/*
 * state.c - the state front end: pick a backend from the URL, check
 * arguments once for every backend, dispatch, and free results (state.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "state/ssh.h"
#include "state/state-impl.h"
#include "util/util.h"

static const char *const state_names[VINE_TASK_NSTATES] = {
	"ready", "running", "done", "failed", "cancelled",
};
static const char *const outcome_names[VINE_OUT_N] = {
	"running", "exited", "signaled", "timeout", "error", "lost", "released", "fault",
	"cancelled",
};

const char *vine_task_state_name(enum vine_task_state s)
{
	return (unsigned)s < VINE_TASK_NSTATES ? state_names[s] : NULL;
}

const char *vine_outcome_name(enum vine_outcome o)
{
	return (unsigned)o < VINE_OUT_N ? outcome_names[o] : NULL;
}

int vine_task_state_parse(const char *s)
{
	for (int i = 0; i < VINE_TASK_NSTATES; i++)
		if (s && !strcmp(s, state_names[i]))
			return i;
	return -1;
}

int vine_outcome_parse(const char *s)
{
	for (int i = 0; i < VINE_OUT_N; i++)
		if (s && !strcmp(s, outcome_names[i]))
			return i;
	return -1;
}

enum vine_task_state vine_state_next(enum vine_outcome o, int exit_code, int retries,
				     int *failures, int *losses)
{
	switch (o) {
	case VINE_OUT_EXITED:
		if (exit_code == 0)
			return VINE_TASK_DONE;
		/* fall through */
	case VINE_OUT_SIGNALED:
	case VINE_OUT_TIMEOUT:
	case VINE_OUT_ERROR:
		++*failures;
		return *failures > retries ? VINE_TASK_FAILED : VINE_TASK_READY;
	case VINE_OUT_LOST:
		++*losses;
		return *losses > retries + VINE_LOST_EXTRA ? VINE_TASK_FAILED : VINE_TASK_READY;
	case VINE_OUT_FAULT:
		/* the caller fails it after VINE_FAULT_NODES distinct nodes */
	case VINE_OUT_RELEASED:
	default:
		return VINE_TASK_READY;
	}
}

int vine_result_name_valid(const char *name)
{
	size_t len = strlen(name);
	const char *p;

	if (!strcmp(name, "stdout") || !strcmp(name, "stderr"))
		return 1;
	if (strncmp(name, "out/", 4) || len > VINE_NAME_MAX)
		return 0;
	for (p = name + 4;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!e)
			return 1;
		p = e + 1;
	}
}

static _Thread_local int open_missing;

int vine_state_missing(void)
{
	return open_missing;
}

void vine_state_set_missing(void)
{
	open_missing = 1;
}

int vine_state_name_check(const char *url)
{
	const char *sep = strstr(url, "://");
	struct vine_ssh_url u;

	if (!*url)
		return vine_error("empty state name");
	if (vine_ssh_is_url(url)) {
		if (vine_ssh_url_parse(url, &u) < 0)
			return -1;
		vine_ssh_url_release(&u);
		return 0;
	}
	/* anything else that looks like a URL is a mistake, not a file name */
	if (sep && sep > url && strspn(url, "abcdefghijklmnopqrstuvwxyz+") == (size_t)(sep - url))
		return vine_error("'%s': unknown URL scheme", url);
	return 0;
}

struct vine_state *vine_state_open(const char *url, int flags)
{
	open_missing = 0;
	if (vine_state_name_check(url) < 0) {
		vine_error_prefix("state");
		return NULL;
	}
	if (vine_ssh_is_url(url))
		return vine_state_remote_open(url, flags);
	return vine_state_sqlite_open(url, flags);
}

void vine_state_close(struct vine_state *st)
{
	if (st)
		st->ops->close(st);
}

const char *vine_state_url(const struct vine_state *st)
{
	return st->url;
}

static int check_object(const struct vine_object *o)
{
	if (!vine_id_valid(o->id))
		return vine_error("object id '%s' is not 64 lowercase hex digits", o->id);
	if (o->size < 0)
		return vine_error("object %s: negative size", o->id);
	if (!o->origin || o->origin[0] != '/')
		return vine_error("object %s: origin must be an absolute path", o->id);
	return 0;
}

static int check_spec(const struct vine_task_spec *s, size_t i)
{
	size_t len = s->cmd ? strlen(s->cmd) : 0;

	if (len == 0)
		return vine_error("task %zu: empty command", i + 1);
	if (len > VINE_CMD_MAX)
		return vine_error("task %zu: command longer than %d bytes", i + 1, VINE_CMD_MAX);
	if (s->cores < 1 || s->cores > VINE_CORES_MAX)
		return vine_error("task %zu: cores must be 1 to %d", i + 1, VINE_CORES_MAX);
	if (s->retries < 0 || s->retries > VINE_RETRIES_MAX)
		return vine_error("task %zu: retries must be 0 to %d", i + 1, VINE_RETRIES_MAX);
	if (!isfinite(s->timeout) || s->timeout < 0 || s->timeout > VINE_TIMEOUT_MAX)
		return vine_error("task %zu: timeout must be 0 to %.0f seconds", i + 1,
				  VINE_TIMEOUT_MAX);
	if (s->object && !vine_id_valid(s->object))
		return vine_error("task %zu: object id '%s' is not valid", i + 1, s->object);
	if (s->tag && (strlen(s->tag) > VINE_TAG_MAX || strchr(s->tag, '\n')))
		return vine_error("task %zu: tag longer than %d bytes or with a newline", i + 1,
				  VINE_TAG_MAX);
	if (s->cwd && (s->cwd[0] != '/' || strlen(s->cwd) > VINE_CWD_MAX || strchr(s->cwd, '\n')))
		return vine_error("task %zu: directory '%s' is not an absolute path of at most "
				  "%d bytes on one line", i + 1, s->cwd, VINE_CWD_MAX);
	if (s->memory < 0 || s->memory > VINE_MEMORY_MAX)
		return vine_error("task %zu: memory must be 0 to %lld bytes", i + 1,
				  (long long)VINE_MEMORY_MAX);
	if (s->gpus < 0 || s->gpus > VINE_GPUS_MAX)
		return vine_error("task %zu: GPUs must be 0 to %d", i + 1, VINE_GPUS_MAX);
	return 0;
}

/* An op the backend lacks is an error naming it, not a crash. */
#define CALL(st, op, ...) \
	((st)->ops->op ? (st)->ops->op(st, __VA_ARGS__) : missing_op(st, #op))

static int missing_op(const struct vine_state *st, const char *op)
{
	return vine_error("state '%s': this backend does not support %s", st->url, op);
}

int vine_once_key(char key[VINE_ONCE_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[VINE_ONCE_KEY_LEN / 2];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return vine_error_errno("cannot get random bytes for a request key");
	for (size_t i = 0; i < sizeof(b); i++) {
		key[2 * i] = digits[b[i] >> 4];
		key[2 * i + 1] = digits[b[i] & 15];
	}
	key[VINE_ONCE_KEY_LEN] = '\0';
	return 0;
}

static int check_key(const char *key)
{
	if (key && (strlen(key) != VINE_ONCE_KEY_LEN ||
		    strspn(key, "0123456789abcdef") != VINE_ONCE_KEY_LEN))
		return vine_error("request key '%.80s' is not %d lowercase hex digits", key,
				  VINE_ONCE_KEY_LEN);
	return 0;
}

int vine_state_submit_named(struct vine_state *st, const char *key, const char *name,
			    const struct vine_object *obj, const struct vine_task_spec *specs,
			    size_t n, int64_t *ids)
{
	if (check_key(key) < 0 || (obj && check_object(obj) < 0))
		return -1;
	if (name && (!*name || strlen(name) > VINE_SUBMISSION_MAX || strchr(name, '\n')))
		return vine_error("submission name '%s' is not 1 to %d bytes on one line", name,
				  VINE_SUBMISSION_MAX);
	for (size_t i = 0; i < n; i++)
		if (check_spec(&specs[i], i) < 0)
			return -1;
	return CALL(st, submit, key, name, obj, specs, n, ids);
}

int vine_state_submit_once(struct vine_state *st, const char *key,
			   const struct vine_object *obj, const struct vine_task_spec *specs,
			   size_t n, int64_t *ids)
{
	return vine_state_submit_named(st, key, NULL, obj, specs, n, ids);
}

int vine_state_cancel(struct vine_state *st, const struct vine_cancel *sel, int64_t **ids,
		      size_t *n)
{
	*ids = NULL;
	*n = 0;
	if ((sel->nids > 0) + (sel->submission != NULL) + (sel->all != 0) != 1)
		return vine_error("cancel: name tasks by id, by submission, or all of them");
	return CALL(st, cancel, sel, ids, n);
}

int vine_state_submit(struct vine_state *st, const struct vine_object *obj,
		      const struct vine_task_spec *specs, size_t n, int64_t *ids)
{
	return vine_state_submit_once(st, NULL, obj, specs, n, ids);
}

int vine_state_requeue_failed_once(struct vine_state *st, const char *key, int retries,
				   int64_t **ids, size_t *n)
{
	if (check_key(key) < 0)
		return -1;
	if (retries > VINE_RETRIES_MAX)
		return vine_error("retries must be 0 to %d", VINE_RETRIES_MAX);
	return CALL(st, requeue_failed, key, retries, ids, n);
}

int vine_state_requeue_failed(struct vine_state *st, int retries, int64_t **ids, size_t *n)
{
	return vine_state_requeue_failed_once(st, NULL, retries, ids, n);
}

int vine_state_list_objects(struct vine_state *st, struct vine_object **objs, size_t *n)
{
	return CALL(st, list_objects, objs, n);
}

int vine_state_register_worker_once(struct vine_state *st, const char *key,
				    const struct vine_worker_info *w, int64_t *worker)
{
	if (check_key(key) < 0 || vine_node_check(w->node) < 0)
		return -1;
	if (w->cores < 0 || w->cores > VINE_CORES_MAX)
		return vine_error("cores must be 0 to %d", VINE_CORES_MAX);
	if (w->memory < 0 || w->memory > VINE_MEMORY_MAX || w->gpus < 0 || w->gpus > VINE_GPUS_MAX)
		return vine_error("memory must be 0 to %lld bytes, GPUs 0 to %d",
				  (long long)VINE_MEMORY_MAX, VINE_GPUS_MAX);
	if (!isfinite(w->lease) || w->lease <= 0)
		return vine_error("lease must be a positive number of seconds");
	return CALL(st, register_worker, key, w, worker);
}

int vine_state_register_worker(struct vine_state *st, const struct vine_worker_info *w,
			       int64_t *worker)
{
	return vine_state_register_worker_once(st, NULL, w, worker);
}

int vine_state_heartbeat(struct vine_state *st, int64_t worker,
			 const struct vine_attempt_ref *running, size_t n, int *stale)
{
	return CALL(st, heartbeat, worker, running, n, stale);
}

static int check_results(const struct vine_result *results, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum vine_outcome o = results[i].outcome;
		if (o == VINE_OUT_RUNNING || o == VINE_OUT_LOST || o == VINE_OUT_CANCELLED ||
		    (unsigned)o >= VINE_OUT_N)
			return vine_error("task %lld: a worker cannot report outcome %d",
					  (long long)results[i].task, (int)o);
	}
	return 0;
}

int vine_state_finish_claim_res(struct vine_state *st, int64_t worker,
				const struct vine_result *results, size_t nresults, int *accepted,
				const struct vine_resources *free, const struct vine_resources *total,
				size_t max, struct vine_claim **claims, size_t *n, int *more)
{
	if (check_results(results, nresults) < 0)
		return -1;
	if (free->cores < 0 || total->cores < 1 || free->cores > total->cores ||
	    total->cores > VINE_CORES_MAX)
		return vine_error("bad core counts to claim with (%d free of %d)", free->cores,
				  total->cores);
	/* every task takes a core at least: no claim gets more tasks than free cores */
	if (max > (size_t)free->cores)
		max = (size_t)free->cores;
	if (free->memory < 0 || free->memory > total->memory || free->gpus < 0 ||
	    free->gpus > total->gpus)
		return vine_error("bad memory or GPU counts to claim with");
	return CALL(st, finish_claim, worker, results, nresults, accepted, free, total, max,
		    claims, n, more);
}

int vine_state_finish_claim(struct vine_state *st, int64_t worker,
			    const struct vine_result *results, size_t nresults, int *accepted,
			    int free_cores, int total_cores, size_t max,
			    struct vine_claim **claims, size_t *n, int *more)
{
	struct vine_resources f = { free_cores, 0, 0 }, t = { total_cores, 0, 0 };

	return vine_state_finish_claim_res(st, worker, results, nresults, accepted, &f, &t, max,
					   claims, n, more);
}

int vine_state_claim(struct vine_state *st, int64_t worker, int free_cores, int total_cores,
		     size_t max, struct vine_claim **claims, size_t *n, int *more)
{
	return vine_state_finish_claim(st, worker, NULL, 0, NULL, free_cores, total_cores, max,
				       claims, n, more);
}

int vine_state_put_file(struct vine_state *st, int64_t worker, int64_t task, int attempt,
			const char *name, int fd, int64_t size)
{
	if (!vine_result_name_valid(name))
		return vine_error("'%s' is not a valid result file name", name);
	if (size < 0)
		return vine_error("'%s': negative size", name);
	return CALL(st, put_file, worker, task, attempt, name, fd, size);
}

int vine_state_finish(struct vine_state *st, int64_t worker, const struct vine_result *results,
		      size_t n, int *accepted)
{
	struct vine_resources none = { 0, 0, 0 }, one = { 1, 0, 0 };
	struct vine_claim *c = NULL;
	size_t nc = 0;
	int rc;

	if (check_results(results, n) < 0)
		return -1;
	rc = CALL(st, finish_claim, worker, results, n, accepted, &none, &one, 0, &c, &nc, NULL);
	/* max 0 claims nothing, but a backend may still hand an empty list */
	vine_state_free_claims(c, nc);
	return rc;
}

int vine_state_unregister_worker(struct vine_state *st, int64_t worker)
{
	return CALL(st, unregister_worker, worker);
}

int vine_state_reap(struct vine_state *st, int *reaped)
{
	return CALL(st, reap, reaped);
}

int vine_state_counts(struct vine_state *st, struct vine_counts *c)
{
	memset(c, 0, sizeof(*c));
	return CALL(st, counts, c);
}

int vine_state_list_workers(struct vine_state *st, struct vine_worker **w, size_t *n)
{
	return CALL(st, list_workers, w, n);
}

int vine_state_deliver(struct vine_state *st, const int64_t *ids, size_t n, size_t *done)
{
	size_t d = 0;
	int rc;

	if (done)
		*done = 0;
	if (n > VINE_DELIVER_MAX)
		return vine_error("deliver: %zu tasks at once, at most %d", n, VINE_DELIVER_MAX);
	for (size_t i = 0; i < n; i++)
		if (ids[i] < 1)
			return vine_error("deliver: task id %lld is not valid", (long long)ids[i]);
	if (n == 0)
		return 0;
	rc = CALL(st, deliver, ids, n, &d);
	if (rc == 0 && done)
		*done = d;
	return rc;
}

int vine_state_list_tasks(struct vine_state *st, int64_t after, size_t limit,
			  struct vine_task **tasks, size_t *n)
{
	return CALL(st, list_tasks, after, limit, tasks, n);
}

int vine_state_list_attempts(struct vine_state *st, int64_t task, struct vine_attempt **a,
			     size_t *n)
{
	return CALL(st, list_attempts, task, a, n);
}

int vine_state_list_files(struct vine_state *st, int64_t task, int attempt,
			  struct vine_file **files, size_t *n)
{
	return CALL(st, list_files, task, attempt, files, n);
}

int vine_state_get_file(struct vine_state *st, int64_t task, int attempt, const char *name,
			int fd)
{
	if (!vine_result_name_valid(name))
		return vine_error("'%s' is not a valid result file name", name);
	return CALL(st, get_file, task, attempt, name, fd);
}

void vine_state_free_objects(struct vine_object *objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(objs[i].origin);
		for (size_t j = 0; j < objs[i].nreplicas; j++)
			free(objs[i].replicas[j].node);
		free(objs[i].replicas);
		for (size_t j = 0; j < objs[i].nbackoffs; j++) {
			free(objs[i].backoffs[j].node);
			free(objs[i].backoffs[j].reason);
		}
		free(objs[i].backoffs);
	}
	free(objs);
}

void vine_state_free_claims(struct vine_claim *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].cmd);
		free(c[i].object);
		free(c[i].origin);
		free(c[i].cwd);
	}
	free(c);
}

void vine_state_free_workers(struct vine_worker *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(w[i].node);
		free(w[i].host);
		free(w[i].listen);
		free(w[i].state);
		free(w[i].running);
	}
	free(w);
}

static void release_attempt(struct vine_attempt *a)
{
	free(a->node);
	free(a->message);
}

void vine_state_free_attempts(struct vine_attempt *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		release_attempt(&a[i]);
	free(a);
}

void vine_state_free_tasks(struct vine_task *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].cmd);
		free(t[i].object);
		free(t[i].tag);
		free(t[i].cwd);
		free(t[i].submission);
		release_attempt(&t[i].last);
	}
	free(t);
}

void vine_state_free_files(struct vine_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].name);
	free(f);
}

/* --- spreading ---------------------------------------------------------- */

int vine_state_peer_secret(struct vine_state *st, unsigned char secret[VINE_STATE_SECRET_LEN])
{
	return CALL(st, peer_secret, secret);
}

int vine_state_spread_settings(struct vine_state *st, const struct vine_spread_settings *set,
			       struct vine_spread_settings *get)
{
	if (set && (set->k_peer < 1 || set->k_peer > VINE_K_MAX || set->k_origin < 1 ||
		    set->k_origin > VINE_K_MAX || (set->relay != 0 && set->relay != 1)))
		return vine_error("spread settings: K and K_origin must be 1 to %d, relay 0 or 1",
				  VINE_K_MAX);
	return CALL(st, spread_settings, set, get);
}

int vine_state_node_listen(struct vine_state *st, const char *node, const char *addr)
{
	if (vine_node_check(node) < 0)
		return -1;
	if (addr && (!*addr || strlen(addr) > VINE_NODE_MAX + 8 || strchr(addr, '\n')))
		return vine_error("node %s: bad listen address", node);
	return CALL(st, node_listen, node, addr);
}

void vine_state_free_xfer(struct vine_xfer *x)
{
	free(x->node);
	free(x->addr);
	memset(x, 0, sizeof(*x));
}

int vine_state_transfer_begin_once(struct vine_state *st, const char *key, const char *id,
				   const char *dest, int64_t offset, struct vine_xfer *x)
{
	memset(x, 0, sizeof(*x));
	if (check_key(key) < 0)
		return -1;
	if (!vine_id_valid(id))
		return vine_error("object id '%s' is not 64 lowercase hex digits", id);
	if (vine_node_check(dest) < 0)
		return -1;
	if (offset < 0)
		return vine_error("object %s: negative offset", id);
	return CALL(st, transfer_begin, key, id, dest, offset, x);
}

int vine_state_transfer_begin(struct vine_state *st, const char *id, const char *dest,
			      int64_t offset, struct vine_xfer *x)
{
	return vine_state_transfer_begin_once(st, NULL, id, dest, offset, x);
}

int vine_state_transfer_progress(struct vine_state *st, int64_t xfer, int64_t bytes)
{
	if (bytes < 0)
		return vine_error("transfer %lld: negative byte count", (long long)xfer);
	return CALL(st, transfer_progress, xfer, bytes);
}

int vine_state_transfer_end_once(struct vine_state *st, const char *key, int64_t xfer,
				 int status, int64_t bytes, const char *msg)
{
	if (check_key(key) < 0)
		return -1;
	if (bytes < 0)
		return vine_error("transfer %lld: negative byte count", (long long)xfer);
	return CALL(st, transfer_end, key, xfer, status, bytes, msg);
}

int vine_state_transfer_end(struct vine_state *st, int64_t xfer, int status, int64_t bytes,
			    const char *msg)
{
	return vine_state_transfer_end_once(st, NULL, xfer, status, bytes, msg);
}

int vine_state_replica_set(struct vine_state *st, const char *id, const char *node,
			   int64_t bytes, int complete)
{
	if (!vine_id_valid(id))
		return vine_error("object id '%s' is not 64 lowercase hex digits", id);
	if (vine_node_check(node) < 0)
		return -1;
	if (bytes < 0)
		return vine_error("object %s: negative byte count", id);
	return CALL(st, replica_set, id, node, bytes, complete != 0);
}

int vine_state_list_transfers(struct vine_state *st, struct vine_transfer **t, size_t *n)
{
	return CALL(st, list_transfers, t, n);
}

void vine_state_free_transfers(struct vine_transfer *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].object);
		free(t[i].source);
		free(t[i].addr);
		free(t[i].dest);
		free(t[i].state);
		free(t[i].status);
	}
	free(t);
}

int vine_state_origin_read(struct vine_state *st, const char *id, int64_t offset, void *buf,
			   size_t len, size_t *got, int64_t *size)
{
	int64_t dummy;

	*got = 0;
	if (!vine_id_valid(id))
		return vine_error("object id '%s' is not 64 lowercase hex digits", id);
	if (offset < 0)
		return vine_error("object %s: negative offset", id);
	if (len > VINE_ORIGIN_READ_MAX)
		return vine_error("object %s: cannot read %zu bytes of the origin at once (at most %u)",
				  id, len, VINE_ORIGIN_READ_MAX);
	return CALL(st, origin_read, id, offset, buf, len, got, size ? size : &dummy);
}
