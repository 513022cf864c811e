/*
 * state-remote.c - the state reached over SSH: ssh://[user@]host[:port]/path
 * runs `vine-state -s /path` on host (or $VINE_REMOTE_STATE_CMD) and sends
 * each operation as one request of the state protocol (proto.h, vine(7)).
 *
 * Reconnecting: when the connection fails, the next operation (or the
 * failed one, when resending it is safe) connects again, with lib/ssh's
 * backoff.  Resending is safe for reads, heartbeats, result files (stored
 * again under the same name), downloads (resumed at the byte reached),
 * and leaving.  A finish_claim whose answer was lost may have
 * claimed tasks that nobody will run: before anything else on the new
 * connection, the tasks the state says this worker holds but that were
 * never handed to the caller are given back (RELEASED, which costs them
 * nothing); results sent again are refused as stale if they were recorded
 * the first time, so none is lost or counted twice.  submit,
 * requeue_failed, transfer_end, register_worker and transfer_begin carry
 * a random key, the same on every resend, and the state answers a key it
 * has seen with the answer it gave then (vine_state_submit_once): they
 * happen exactly once.  A vine-state older than schema version 3 knows no
 * keys: then the first three are not resent, and their fate is reported
 * as unknown; the last two are resent, at worst leaving an unused worker
 * record or a transfer nobody ends, both of which expire.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/secret.h"
#include "util/transfer.h"
#include "state/proto.h"
#include "state/ssh.h"
#include "state/state-impl.h"
#include "state/state-json.h"
#include "util/util.h"

#define MAX_RESENDS 3

struct remote {
	struct vine_state base;
	struct vine_ssh_url u;
	char *command;
	struct vine_ssh *ssh;
	struct vine_proto p;
	int flags;
	int ready;              /* handshake and open done on this connection */
	int keyed;              /* the server keeps request keys (schema >= 3) */
	int schema;             /* the server's schema version */
	/* tasks handed to the caller by finish_claim and not reported since */
	int64_t worker;
	int64_t *held;
	size_t nheld, capheld;
	int resync;             /* a finish_claim's answer was lost */
};

#define R(st) ((struct remote *)(st))

enum resend { ONCE, AGAIN };

static ssize_t io_read(void *ctx, void *buf, size_t len)
{
	struct remote *r = ctx;
	ssize_t n = vine_ssh_read(r->ssh, buf, len);

	/* the server never closes first: say why it did */
	return n == 0 ? vine_ssh_eof_error(r->ssh) : n;
}

static int io_write(void *ctx, const void *buf, size_t len)
{
	struct remote *r = ctx;

	return vine_ssh_write_full(r->ssh, buf, len);
}

/* (Re)connect, handshake and open the state; every failure is final. */
static int connect_state(struct remote *r)
{
	struct vine_proto_io io = { io_read, io_write, r };
	json_t *q, *res = NULL;
	int rc;

	if (!r->ssh)
		r->ssh = vine_ssh_open(&r->u, r->command, NULL);
	else if (vine_ssh_reopen(r->ssh) < 0)
		return -1;
	if (!r->ssh)
		return -1;
	vine_proto_release(&r->p);
	vine_proto_init(&r->p, &io);
	if (vine_proto_hello(&r->p) < 0)
		return -1;
	q = json_pack("{sssb}", "op", "open", "create", (r->flags & VINE_STATE_CREATE) != 0);
	rc = vine_proto_call(&r->p, q, NULL, NULL, &res);
	json_decref(q);
	if (rc == 0) {
		r->schema = (int)json_integer_value(json_object_get(res, "schema"));
		r->keyed = r->schema >= 3;
	}
	json_decref(res);
	if (rc != 0) {
		/* the server's own message for a state not made yet */
		if (strstr(vine_errmsg(), VINE_STATE_MISSING_TEXT) ||
		    strstr(vine_errmsg(), VINE_STATE_EMPTY_TEXT))
			vine_state_set_missing();
		return -1;
	}
	r->ready = 1;
	return 0;
}

/* The file a download goes to (or, with mem, the memory), and how far it got. */
struct download {
	int fd;
	int64_t written;
	unsigned char *mem;     /* not NULL: into mem, at most cap bytes */
	size_t cap;
};

static int download_write(void *ctx, const void *buf, size_t len)
{
	struct download *d = ctx;

	if (d->mem) {
		if (len > d->cap - (size_t)d->written)
			return vine_error("the state sent more bytes than asked for");
		memcpy(d->mem + d->written, buf, len);
		d->written += (int64_t)len;
		return 0;
	}
	if (vine_write_full(d->fd, buf, len) < 0)
		return vine_error_errno("cannot write a result file");
	d->written += (int64_t)len;
	return 0;
}

/* The file an upload comes from: size bytes from offset start. */
struct upload {
	int fd;
	off_t start;
	int64_t size, sent;
};

static ssize_t upload_read(void *ctx, void *buf, size_t len)
{
	struct upload *u = ctx;
	ssize_t n;

	if ((int64_t)len > u->size - u->sent)
		len = (size_t)(u->size - u->sent);
	if (len == 0)
		return 0;
	n = vine_read_full(u->fd, buf, len);
	if (n < 0)
		return vine_error_errno("cannot read a result file");
	if (n == 0)
		return vine_error("got %lld of %lld bytes of a result file", (long long)u->sent,
				  (long long)u->size);
	u->sent += n;
	return n;
}

static int resync(struct remote *r);

/*
 * One operation: send q (and the upload), read the answer into *res.
 * 0, or -1 with a message (the server's, or why the connection failed).
 */
static int call(struct remote *r, json_t *q, struct upload *up, struct download *down,
		enum resend resend, json_t **res)
{
	struct vine_proto_stream src = { upload_read, NULL, up }, sink = { NULL, download_write, down };
	const char *op = json_string_value(json_object_get(q, "op"));
	int rc, tries = 0;

	*res = NULL;
	for (;;) {
		if (!r->ready && connect_state(r) < 0)
			return vine_error_prefix("state '%s'", r->base.url);
		if (r->resync && resync(r) < 0)
			return -1;
		if (up) {
			up->sent = 0;
			if (tries && lseek(up->fd, up->start, SEEK_SET) < 0)
				return vine_error_errno("state '%s': cannot send a result file "
							"again", r->base.url);
		}
		if (down && down->written)
			json_object_set_new(q, "skip", json_integer(down->written));
		rc = vine_proto_call(&r->p, q, up ? &src : NULL, down ? &sink : NULL, res);
		if (rc == 0)
			return 0;
		if (rc == 1) {
			json_decref(*res);
			*res = NULL;
			return -1;
		}
		r->ready = 0;
		if (!strcmp(op, "finish_claim"))
			r->resync = 1;
		if (resend == ONCE)
			return vine_error_prefix("state '%s': the connection failed during %s, "
						 "which may or may not have taken effect",
						 r->base.url, op);
		if (++tries > MAX_RESENDS)
			return vine_error_prefix("state '%s'", r->base.url);
		if (up && up->start < 0)
			return vine_error_prefix("state '%s': cannot send a result file from a "
						 "pipe again", r->base.url);
	}
}

/* A request {"op": op} with the members of a json_pack format added. */
static json_t *req(const char *op)
{
	return json_pack("{ss}", "op", op);
}

/*
 * A request made exactly once: with key (or a new one when NULL) as its
 * "once" member.  How often it may be sent: again when the server keeps
 * keys, else as unkeyed says.
 */
static int keyed(struct remote *r, json_t *q, const char *key, enum resend unkeyed,
		 enum resend *resend)
{
	char k[VINE_ONCE_KEY_LEN + 1];

	if (!key) {
		if (vine_once_key(k) < 0)
			return -1;
		key = k;
	}
	json_object_set_new(q, "once", json_string(key));
	*resend = r->keyed ? AGAIN : unkeyed;
	return 0;
}

static void remote_close(struct vine_state *st)
{
	struct remote *r = R(st);

	if (r->ssh)
		vine_ssh_close(r->ssh);
	vine_proto_release(&r->p);
	vine_ssh_url_release(&r->u);
	free(r->command);
	free(r->held);
	free(r->base.url);
	free(r);
}

/*
 * A vine-state older than schema 4 would drop what it does not know
 * (names, directories, memory, GPUs) without a word: refuse instead.
 */
static int needs_schema4(struct remote *r, const char *what)
{
	if (!r->ready && connect_state(r) < 0)
		return vine_error_prefix("state '%s'", r->base.url);
	if (r->schema < 4)
		return vine_error("state '%s': vine-state there understands schema version %d, "
				  "but %s needs version 4: install this vine there", r->base.url,
				  r->schema, what);
	return 0;
}

static int remote_submit(struct vine_state *st, const char *key, const char *name,
			 const struct vine_object *obj, const struct vine_task_spec *specs,
			 size_t n, int64_t *ids)
{
	json_t *q, *res;
	enum resend resend;
	int64_t *got;
	size_t ngot;
	int rc, new = name != NULL, cwd = 0;

	for (size_t i = 0; i < n; i++) {
		new |= specs[i].memory || specs[i].gpus;
		cwd |= specs[i].cwd != NULL;
	}
	if (new && needs_schema4(R(st), "a named submission, memory or GPUs") < 0)
		return -1;
	if (cwd && !R(st)->ready && connect_state(R(st)) < 0)
		return vine_error_prefix("state '%s'", st->url);
	/* an older vine-state drops the directory: say so, not silently */
	if (cwd && R(st)->schema < 4)
		vine_notice("state '%s': vine-state there understands schema version %d, older "
			    "than 4: these tasks will run in their scratch directories, not where "
			    "they were submitted", st->url, R(st)->schema);
	q = req("submit");
	if (name)
		json_object_set_new(q, "name", vj_string(name));
	json_object_set_new(q, "object", obj ? vj_encode(&vj_object, obj) : json_null());
	json_object_set_new(q, "specs", vj_encode_array(&vj_task_spec, specs, n));
	rc = keyed(R(st), q, key, ONCE, &resend);
	if (rc == 0)
		rc = call(R(st), q, NULL, NULL, resend, &res);
	json_decref(q);
	if (rc < 0)
		return -1;
	rc = vj_get_i64s(json_object_get(res, "ids"), &got, &ngot);
	if (rc == 0 && ngot != n)
		rc = vine_error("state '%s': %zu ids for %zu tasks", st->url, ngot, n);
	if (rc == 0)
		memcpy(ids, got, n * sizeof(*ids));
	free(got);
	json_decref(res);
	return rc;
}

static int remote_cancel(struct vine_state *st, const struct vine_cancel *sel, int64_t **ids,
			 size_t *n)
{
	json_t *q, *res;
	int rc;

	if (needs_schema4(R(st), "cancelling") < 0)
		return -1;
	q = req("cancel");
	json_object_set_new(q, "ids", vj_i64s(sel->ids, sel->nids));
	if (sel->submission)
		json_object_set_new(q, "submission", vj_string(sel->submission));
	json_object_set_new(q, "all", json_boolean(sel->all));
	/* cancelling twice changes nothing more: safe to send again */
	rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	if (rc < 0)
		return -1;
	rc = vj_get_i64s(json_object_get(res, "ids"), ids, n);
	json_decref(res);
	return rc;
}

static int remote_requeue_failed(struct vine_state *st, const char *key, int retries,
				 int64_t **ids, size_t *n)
{
	json_t *q = req("requeue_failed"), *res;
	enum resend resend;
	int rc;

	json_object_set_new(q, "retries", json_integer(retries));
	rc = keyed(R(st), q, key, ONCE, &resend);
	if (rc == 0)
		rc = call(R(st), q, NULL, NULL, resend, &res);
	json_decref(q);
	if (rc < 0)
		return -1;
	rc = vj_get_i64s(json_object_get(res, "ids"), ids, n);
	json_decref(res);
	return rc;
}

/* A list answer {"member": [...]} decoded with d. */
static int list(struct vine_state *st, json_t *q, const char *member, const struct vj_desc *d,
		void **arr, size_t *n)
{
	json_t *res;
	int rc = call(R(st), q, NULL, NULL, AGAIN, &res);

	json_decref(q);
	if (rc == 0)
		rc = vj_decode_array(d, json_object_get(res, member), arr, n);
	json_decref(res);
	return rc;
}

static int remote_list_objects(struct vine_state *st, struct vine_object **objs, size_t *n)
{
	return list(st, req("list_objects"), "objects", &vj_object,
		    (void **)objs, n);
}

static int remote_register_worker(struct vine_state *st, const char *key,
				  const struct vine_worker_info *w, int64_t *worker)
{
	json_t *q = req("register_worker"), *res = NULL;
	enum resend resend;
	int rc;

	json_object_set_new(q, "info", vj_encode(&vj_worker_info, w));
	/* without keys, a lost answer leaves an unused worker record, which expires */
	rc = keyed(R(st), q, key, AGAIN, &resend);
	if (rc == 0)
		rc = call(R(st), q, NULL, NULL, resend, &res);
	json_decref(q);
	if (rc == 0)
		rc = vj_i64(res, "worker", worker);
	json_decref(res);
	return rc;
}

static int remote_heartbeat(struct vine_state *st, int64_t worker,
			    const struct vine_attempt_ref *running, size_t n, int *stale)
{
	json_t *q = req("heartbeat"), *res;
	int rc;

	json_object_set_new(q, "worker", json_integer(worker));
	json_object_set_new(q, "running", vj_encode_array(&vj_attempt_ref, running, n));
	rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	if (rc == 0)
		rc = vj_get_ints(json_object_get(res, "stale"), stale, n);
	json_decref(res);
	return rc;
}

static void held_add(struct remote *r, int64_t task)
{
	if (r->nheld == r->capheld) {
		r->capheld = r->capheld ? 2 * r->capheld : 64;
		r->held = vine_xrealloc(r->held, r->capheld * sizeof(*r->held));
	}
	r->held[r->nheld++] = task;
}

static int held_find(struct remote *r, int64_t task)
{
	for (size_t i = 0; i < r->nheld; i++)
		if (r->held[i] == task)
			return (int)i;
	return -1;
}

static void held_del(struct remote *r, int64_t task)
{
	int i = held_find(r, task);

	if (i >= 0)
		r->held[i] = r->held[--r->nheld];
}

static int finish_claim(struct remote *r, int64_t worker, const struct vine_result *results,
			size_t nresults, int *accepted, const struct vine_resources *free,
			const struct vine_resources *total, size_t max, struct vine_claim **claims,
			size_t *n, int *more)
{
	json_t *q = req("finish_claim"), *res;
	int rc;

	json_object_set_new(q, "worker", json_integer(worker));
	json_object_set_new(q, "results", vj_encode_array(&vj_result, results, nresults));
	json_object_set_new(q, "free_cores", json_integer(free->cores));
	json_object_set_new(q, "total_cores", json_integer(total->cores));
	json_object_set_new(q, "free_memory", json_integer(free->memory));
	json_object_set_new(q, "total_memory", json_integer(total->memory));
	json_object_set_new(q, "free_gpus", json_integer(free->gpus));
	json_object_set_new(q, "total_gpus", json_integer(total->gpus));
	json_object_set_new(q, "max", json_integer((json_int_t)max));
	rc = call(r, q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	if (rc < 0)
		return -1;
	*claims = NULL;
	*n = 0;
	if (vj_get_ints(json_object_get(res, "accepted"), accepted, nresults) < 0 ||
	    vj_decode_array(&vj_claim, json_object_get(res, "claims"), (void **)claims, n) < 0) {
		json_decref(res);
		return -1;
	}
	if (more)
		*more = json_is_true(json_object_get(res, "more")) ||
			json_integer_value(json_object_get(res, "more")) != 0;
	json_decref(res);
	/* what the caller holds now, for resync */
	if (r->worker != worker) {
		r->worker = worker;
		r->nheld = 0;
	}
	for (size_t i = 0; i < nresults; i++)
		held_del(r, results[i].task);
	for (size_t i = 0; i < *n; i++)
		held_add(r, (*claims)[i].task);
	return 0;
}

static int remote_finish_claim(struct vine_state *st, int64_t worker,
			       const struct vine_result *results, size_t nresults, int *accepted,
			       const struct vine_resources *free, const struct vine_resources *total,
			       size_t max, struct vine_claim **claims, size_t *n, int *more)
{
	struct remote *r = R(st);

	if (r->worker != worker && r->resync)
		r->resync = 0;  /* another worker: nothing of ours to repair */
	if (r->worker != worker) {
		r->worker = worker;
		r->nheld = 0;
	}
	return finish_claim(r, worker, results, nresults, accepted, free, total, max, claims, n,
			    more);
}

/*
 * A finish_claim's answer was lost: give back the tasks the state says
 * our worker holds that the caller never got.
 */
static int resync(struct remote *r)
{
	struct vine_worker *w = NULL;
	struct vine_result *rel = NULL;
	struct vine_claim *c = NULL;
	size_t nw = 0, nrel = 0, nc = 0, i, k;
	int *acc = NULL, rc = -1;

	r->resync = 0;
	if (list(&r->base, req("list_workers"), "workers", &vj_worker,
		 (void **)&w, &nw) < 0)
		goto out;
	for (i = 0; i < nw && w[i].id != r->worker; i++)
		;
	for (k = 0; i < nw && k < w[i].nrunning; k++) {
		int64_t task = w[i].running[k];
		struct vine_attempt *a = NULL;
		size_t na = 0;
		json_t *q;

		if (held_find(r, task) >= 0)
			continue;
		q = req("list_attempts");
		json_object_set_new(q, "task", json_integer(task));
		if (list(&r->base, q, "attempts", &vj_attempt, (void **)&a, &na) < 0)
			goto out;
		if (na && a[na - 1].worker == r->worker && a[na - 1].outcome == VINE_OUT_RUNNING) {
			rel = vine_xrealloc(rel, (nrel + 1) * sizeof(*rel));
			memset(&rel[nrel], 0, sizeof(*rel));
			rel[nrel].task = task;
			rel[nrel].attempt = a[na - 1].attempt;
			rel[nrel].outcome = VINE_OUT_RELEASED;
			nrel++;
		}
		vine_state_free_attempts(a, na);
	}
	rc = 0;
	if (nrel) {
		acc = vine_xcalloc(nrel, sizeof(*acc));
		struct vine_resources none = { 0, 0, 0 }, one = { 1, 0, 0 };
		rc = finish_claim(r, r->worker, rel, nrel, acc, &none, &one, 0, &c, &nc, NULL);
		vine_state_free_claims(c, nc);
	}
out:
	if (rc < 0) {
		r->resync = 1;
		vine_error_prefix("cannot give back tasks claimed in a lost answer");
	}
	free(acc);
	free(rel);
	vine_state_free_workers(w, nw);
	return rc;
}

static int remote_put_file(struct vine_state *st, int64_t worker, int64_t task, int attempt,
			   const char *name, int fd, int64_t size)
{
	struct upload up = { fd, lseek(fd, 0, SEEK_CUR), size, 0 };
	json_t *q = req("put_file"), *res;
	int rc;

	json_object_set_new(q, "worker", json_integer(worker));
	json_object_set_new(q, "task", json_integer(task));
	json_object_set_new(q, "attempt", json_integer(attempt));
	json_object_set_new(q, "name", vj_string(name));
	json_object_set_new(q, "size", json_integer(size));
	rc = call(R(st), q, &up, NULL, AGAIN, &res);
	json_decref(q);
	if (rc < 0)
		return -1;
	rc = json_is_true(json_object_get(res, "stored")) ? 0 : 1;
	json_decref(res);
	return rc;
}

static int remote_unregister_worker(struct vine_state *st, int64_t worker)
{
	json_t *q = req("unregister_worker"), *res;
	int rc;

	json_object_set_new(q, "worker", json_integer(worker));
	rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	json_decref(res);
	if (rc == 0 && R(st)->worker == worker)
		R(st)->nheld = 0;
	return rc;
}

static int remote_reap(struct vine_state *st, int *reaped)
{
	json_t *res;
	int rc = call(R(st), req("reap"), NULL, NULL, AGAIN, &res), k = 0;

	if (rc == 0)
		rc = vj_int(res, "reaped", &k);
	if (rc == 0 && reaped)
		*reaped = k;
	json_decref(res);
	return rc;
}

/* Delivering twice changes nothing, so a lost answer is asked again. */
static int remote_deliver(struct vine_state *st, const int64_t *ids, size_t n, size_t *done)
{
	struct remote *r = R(st);
	json_t *q, *res;
	int64_t k = 0;
	int rc;

	if (!r->ready && connect_state(r) < 0)
		return vine_error_prefix("state '%s'", r->base.url);
	if (r->schema < 6)
		return vine_error("state '%s': vine-state there understands schema version %d, "
				  "but delivering results needs version 6: install this vine there",
				  r->base.url, r->schema);
	q = req("deliver");
	json_object_set_new(q, "ids", vj_i64s(ids, n));
	rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	if (rc == 0)
		rc = vj_i64(res, "delivered", &k);
	json_decref(res);
	if (rc == 0)
		*done = k < 0 ? 0 : (size_t)k;
	return rc;
}

static int remote_counts(struct vine_state *st, struct vine_counts *c)
{
	json_t *q = req("counts"), *res, *n;
	int rc = call(R(st), q, NULL, NULL, AGAIN, &res);

	json_decref(q);
	if (rc < 0)
		return -1;
	n = json_object_get(res, "n");
	for (int i = 0; rc == 0 && i < VINE_TASK_NSTATES; i++)
		rc = vj_i64(n, vine_task_state_name(i), &c->n[i]);
	if (rc == 0)
		rc = vj_i64(res, "total", &c->total);
	if (rc == 0)
		rc = vj_i64(res, "workers_alive", &c->workers_alive);
	/* schema 4 on: missing from an older vine-state, and then 0 */
	c->worker_slots = json_object_get(res, "worker_slots")
				  ? json_integer_value(json_object_get(res, "worker_slots"))
				  : c->workers_alive;
	c->unfit = json_integer_value(json_object_get(res, "unfit"));
	c->unfit_task = json_integer_value(json_object_get(res, "unfit_task"));
	json_decref(res);
	return rc;
}

static int remote_list_workers(struct vine_state *st, struct vine_worker **w, size_t *n)
{
	return list(st, req("list_workers"), "workers", &vj_worker, (void **)w, n);
}

static int remote_list_tasks(struct vine_state *st, int64_t after, size_t limit,
			     struct vine_task **tasks, size_t *n)
{
	json_t *q = req("list_tasks");

	json_object_set_new(q, "after", json_integer(after));
	json_object_set_new(q, "limit", json_integer(limit > INT64_MAX ? INT64_MAX : (json_int_t)limit));
	return list(st, q, "tasks", &vj_task, (void **)tasks, n);
}

static int remote_list_attempts(struct vine_state *st, int64_t task, struct vine_attempt **a,
				size_t *n)
{
	json_t *q = req("list_attempts");

	json_object_set_new(q, "task", json_integer(task));
	return list(st, q, "attempts", &vj_attempt, (void **)a, n);
}

static int remote_list_files(struct vine_state *st, int64_t task, int attempt,
			     struct vine_file **files, size_t *n)
{
	json_t *q = req("list_files");

	json_object_set_new(q, "task", json_integer(task));
	json_object_set_new(q, "attempt", json_integer(attempt));
	return list(st, q, "files", &vj_file, (void **)files, n);
}

static int remote_get_file(struct vine_state *st, int64_t task, int attempt, const char *name,
			   int fd)
{
	struct download d = { fd, 0, NULL, 0 };
	json_t *q = req("get_file"), *res;
	int64_t size;
	int rc;

	json_object_set_new(q, "task", json_integer(task));
	json_object_set_new(q, "attempt", json_integer(attempt));
	json_object_set_new(q, "name", vj_string(name));
	rc = call(R(st), q, NULL, &d, AGAIN, &res);
	json_decref(q);
	if (rc == 0 && vj_i64(res, "size", &size) == 0 && size != d.written)
		rc = vine_error("state '%s': got %lld of %lld bytes of '%s'", st->url,
				(long long)d.written, (long long)size, name);
	json_decref(res);
	return rc;
}

/* An operation whose answer carries nothing. */
static int send_only(struct vine_state *st, json_t *q, enum resend resend)
{
	json_t *res;
	int rc = call(R(st), q, NULL, NULL, resend, &res);

	json_decref(q);
	json_decref(res);
	return rc;
}

static int remote_peer_secret(struct vine_state *st, unsigned char *secret)
{
	json_t *q = req("peer_secret"), *res;
	int rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	const char *hex;

	json_decref(q);
	if (rc < 0)
		return -1;
	hex = json_string_value(json_object_get(res, "secret"));
	rc = hex ? vine_peer_secret_parse(hex, strlen(hex), secret)
		 : vine_error("no peer secret in the answer");
	json_decref(res);
	return rc < 0 ? vine_error_prefix("state '%s'", st->url) : 0;
}

static int remote_spread_settings(struct vine_state *st, const struct vine_spread_settings *set,
				  struct vine_spread_settings *get)
{
	json_t *q = req("spread_settings"), *res;
	int rc;

	json_object_set_new(q, "set", set ? vj_encode(&vj_spread_settings, set) : json_null());
	/* storing the same settings twice is harmless */
	rc = call(R(st), q, NULL, NULL, AGAIN, &res);
	json_decref(q);
	if (rc == 0 && get)
		rc = vj_decode(&vj_spread_settings, json_object_get(res, "settings"), get);
	json_decref(res);
	return rc;
}

static int remote_node_listen(struct vine_state *st, const char *node, const char *addr)
{
	json_t *q = req("node_listen");

	json_object_set_new(q, "node", vj_string(node));
	json_object_set_new(q, "addr", addr ? vj_string(addr) : json_null());
	return send_only(st, q, AGAIN);
}

static int remote_transfer_begin(struct vine_state *st, const char *key, const char *id,
				 const char *dest, int64_t offset, struct vine_xfer *x)
{
	json_t *q = req("transfer_begin"), *res = NULL;
	enum resend resend;
	int rc;

	json_object_set_new(q, "id", json_string(id));
	json_object_set_new(q, "dest", vj_string(dest));
	json_object_set_new(q, "offset", json_integer(offset));
	/* without keys, a lost answer leaves a transfer nobody ends: it goes
	 * stale (VINE_XFER_STALE) */
	rc = keyed(R(st), q, key, AGAIN, &resend);
	if (rc == 0)
		rc = call(R(st), q, NULL, NULL, resend, &res);
	json_decref(q);
	if (rc == 0)
		rc = vj_decode(&vj_xfer, json_object_get(res, "xfer"), x);
	json_decref(res);
	return rc;
}

static int remote_transfer_progress(struct vine_state *st, int64_t xfer, int64_t bytes)
{
	json_t *q = req("transfer_progress");

	json_object_set_new(q, "xfer", json_integer(xfer));
	json_object_set_new(q, "bytes", json_integer(bytes));
	return send_only(st, q, AGAIN);
}

static int remote_transfer_end(struct vine_state *st, const char *key, int64_t xfer,
			       int status, int64_t bytes, const char *msg)
{
	json_t *q = req("transfer_end");
	enum resend resend;

	json_object_set_new(q, "xfer", json_integer(xfer));
	json_object_set_new(q, "status", json_integer(status));
	json_object_set_new(q, "bytes", json_integer(bytes));
	json_object_set_new(q, "msg", msg ? vj_string(msg) : json_null());
	/* ending a transfer twice is an error: resent only with a key */
	if (keyed(R(st), q, key, ONCE, &resend) < 0) {
		json_decref(q);
		return -1;
	}
	return send_only(st, q, resend);
}

static int remote_replica_set(struct vine_state *st, const char *id, const char *node,
			      int64_t bytes, int complete)
{
	json_t *q = req("replica_set");

	json_object_set_new(q, "id", json_string(id));
	json_object_set_new(q, "node", vj_string(node));
	json_object_set_new(q, "bytes", json_integer(bytes));
	json_object_set_new(q, "complete", json_integer(complete));
	return send_only(st, q, AGAIN);
}

static int remote_list_transfers(struct vine_state *st, struct vine_transfer **t, size_t *n)
{
	return list(st, req("list_transfers"), "transfers", &vj_transfer, (void **)t, n);
}

static int remote_origin_read(struct vine_state *st, const char *id, int64_t offset, void *buf,
			      size_t len, size_t *got, int64_t *size)
{
	struct download d = { -1, 0, buf, len };
	json_t *q = req("origin_read"), *res;
	int64_t n, skip;
	int rc;

	json_object_set_new(q, "id", json_string(id));
	json_object_set_new(q, "offset", json_integer(offset));
	json_object_set_new(q, "len", json_integer((json_int_t)len));
	/* a read changes nothing: resent, resumed after the bytes that came */
	rc = call(R(st), q, NULL, len ? &d : NULL, AGAIN, &res);
	/* the answer counts its own bytes: those after "skip", sent with the last try */
	skip = json_integer_value(json_object_get(q, "skip"));
	json_decref(q);
	if (rc == 0 && vj_i64(res, "size", size) == 0 && vj_i64(res, "got", &n) == 0) {
		if (n != d.written - skip)
			rc = vine_error("state '%s': %lld bytes of origin came, the answer says %lld",
					st->url, (long long)(d.written - skip), (long long)n);
		*got = (size_t)d.written;
	} else if (rc == 0) {
		rc = -1;
	}
	json_decref(res);
	return rc;
}

static const struct vine_state_ops remote_ops = {
	.close = remote_close,
	.submit = remote_submit,
	.cancel = remote_cancel,
	.requeue_failed = remote_requeue_failed,
	.list_objects = remote_list_objects,
	.register_worker = remote_register_worker,
	.heartbeat = remote_heartbeat,
	.finish_claim = remote_finish_claim,
	.put_file = remote_put_file,
	.unregister_worker = remote_unregister_worker,
	.reap = remote_reap,
	.counts = remote_counts,
	.list_workers = remote_list_workers,
	.list_tasks = remote_list_tasks,
	.list_attempts = remote_list_attempts,
	.list_files = remote_list_files,
	.get_file = remote_get_file,
	.peer_secret = remote_peer_secret,
	.spread_settings = remote_spread_settings,
	.node_listen = remote_node_listen,
	.transfer_begin = remote_transfer_begin,
	.transfer_progress = remote_transfer_progress,
	.transfer_end = remote_transfer_end,
	.replica_set = remote_replica_set,
	.list_transfers = remote_list_transfers,
	.origin_read = remote_origin_read,
	.deliver = remote_deliver,
};

struct vine_state *vine_state_remote_open(const char *url, int flags)
{
	struct remote *r = vine_xcalloc(1, sizeof(*r));
	const char *cmd = getenv("VINE_REMOTE_STATE_CMD");
	char *path;

	r->base.ops = &remote_ops;
	r->base.url = vine_xstrdup(url);
	r->flags = flags;
	r->worker = -1;
	if (vine_ssh_url_parse(url, &r->u) < 0) {
		vine_error_prefix("state");
		remote_close(&r->base);
		return NULL;
	}
	path = vine_sh_quote(r->u.path);
	r->command = vine_xasprintf("%s -s %s", cmd && *cmd ? cmd : "vine-state", path);
	free(path);
	if (connect_state(r) < 0) {
		vine_error_prefix("state '%s'", url);
		remote_close(&r->base);
		return NULL;
	}
	return &r->base;
}
