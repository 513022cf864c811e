/*
 * state-serve.c - the server side of the state protocol (state-serve.h).
 *
 * One request at a time: decode its arguments (state-json.h), call the
 * vine_state_* operation of the same name on the local state, encode what
 * it returns.  The operations, their arguments and answers are listed in
 * vine(7), STATE PROTOCOL.  Streamed result files pass through unlinked
 * temporary files beside the state, so the state's own code reads and
 * writes ordinary files and a slow network never holds its lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/secret.h"
#include "util/transfer.h"
#include "state/proto.h"
#include "state/state.h"
#include "state/state-json.h"
#include "state/state-serve.h"
#include "util/util.h"

struct server {
	struct vine_proto p;
	const char *path;
	char *tmpdir;
	struct vine_state *st;
	uint32_t refused;       /* an unknown request, whose stream we skip */
	/* $VINE_TEST_DROP_ANSWER=OP:N[:FILE]: hang up instead of answering
	 * the Nth OP (after doing it; get_file and origin_read after their
	 * first chunk), as a lost connection would, so tests can check what
	 * the client does; with FILE, only the server that creates FILE
	 * does */
	char *drop_op, *drop_once;
	long drop_n;
};

static int drop_now(struct server *sv, const char *op)
{
	int fd;

	if (!sv->drop_op || strcmp(sv->drop_op, op) || --sv->drop_n != 0)
		return 0;
	if (sv->drop_once) {
		fd = open(sv->drop_once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return 0;
		close(fd);
	}
	vine_error("dropping the connection before answering %s ($VINE_TEST_DROP_ANSWER)", op);
	return 1;
}

static int opt_str(json_t *q, const char *name, char **v);

/* A handler fills *res and returns 0, or returns -1 with a message (an
 * E answer), or -2 when the connection failed (stop serving). */
typedef int handler(struct server *sv, json_t *q, uint32_t id, json_t **res);

static int tmpfile_fd(struct server *sv)
{
	int fd = open(sv->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT)) {
		/* no O_TMPFILE here: an ordinary file, unlinked at once */
		char *t = vine_xasprintf("%s/.vine-state.XXXXXX", sv->tmpdir);

		fd = mkostemp(t, O_CLOEXEC);
		if (fd >= 0)
			unlink(t);
		free(t);
	}
	if (fd < 0)
		vine_error_errno("cannot create a temporary file in '%s'", sv->tmpdir);
	return fd;
}

static int fd_sink(void *ctx, const void *buf, size_t len)
{
	if (vine_write_full(*(int *)ctx, buf, len) < 0)
		return vine_error_errno("cannot write a temporary file");
	return 0;
}

static ssize_t fd_source(void *ctx, void *buf, size_t len)
{
	ssize_t n = vine_read_full(*(int *)ctx, buf, len);

	if (n < 0)
		return vine_error_errno("cannot read a temporary file");
	return n;
}

static int op_open(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	json_t *c = json_object_get(q, "create");

	if (sv->st)
		return vine_error("the state is open already");
	sv->st = vine_state_open(sv->path, json_is_true(c) ? VINE_STATE_CREATE : 0);
	if (!sv->st)
		return -1;
	*res = json_pack("{si}", "schema", VINE_STATE_SCHEMA);
	return 0;
}

static int op_submit(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_object obj, *objp = NULL;
	struct vine_task_spec *specs;
	json_t *o = json_object_get(q, "object");
	char *key, *name = NULL;
	size_t n;
	int64_t *ids;
	int r = -1;

	if (opt_str(q, "once", &key) < 0)
		return -1;
	if (json_object_get(q, "name") && vj_string_value(json_object_get(q, "name"), &name) < 0) {
		free(key);
		return -1;
	}
	if (o && !json_is_null(o)) {
		if (vj_decode(&vj_object, o, &obj) < 0) {
			free(key);
			return -1;
		}
		objp = &obj;
	}
	if (vj_decode_array(&vj_task_spec, json_object_get(q, "specs"), (void **)&specs, &n) == 0) {
		ids = vine_xcalloc(n + 1, sizeof(*ids));
		r = vine_state_submit_named(sv->st, key, name, objp, specs, n, ids);
		if (r == 0)
			*res = json_pack("{so}", "ids", vj_i64s(ids, n));
		free(ids);
		vj_free_array(&vj_task_spec, specs, n);
	}
	if (objp)
		vj_release(&vj_object, objp);
	free(key);
	free(name);
	return r;
}

static int op_cancel(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_cancel sel = { NULL, 0, NULL, 0 };
	int64_t *want = NULL, *ids = NULL;
	char *sub = NULL;
	size_t n = 0;
	int r = -1;

	if (json_object_get(q, "ids") && vj_get_i64s(json_object_get(q, "ids"), &want, &sel.nids) < 0)
		return -1;
	if (json_object_get(q, "submission") &&
	    vj_string_value(json_object_get(q, "submission"), &sub) < 0)
		goto out;
	sel.ids = want;
	sel.submission = sub;
	sel.all = json_is_true(json_object_get(q, "all"));
	if ((r = vine_state_cancel(sv->st, &sel, &ids, &n)) == 0)
		*res = json_pack("{so}", "ids", vj_i64s(ids, n));
out:
	free(want);
	free(sub);
	free(ids);
	return r;
}

static int op_requeue_failed(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int retries, r = -1;
	int64_t *ids = NULL;
	size_t n = 0;
	char *key = NULL;

	if (vj_int(q, "retries", &retries) == 0 && opt_str(q, "once", &key) == 0)
		r = vine_state_requeue_failed_once(sv->st, key, retries, &ids, &n);
	if (r == 0)
		*res = json_pack("{so}", "ids", vj_i64s(ids, n));
	free(ids);
	free(key);
	return r;
}

static int op_list_objects(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_object *objs;
	size_t n;

	if (vine_state_list_objects(sv->st, &objs, &n) < 0)
		return -1;
	*res = json_pack("{so}", "objects", vj_encode_array(&vj_object, objs, n));
	vine_state_free_objects(objs, n);
	return 0;
}

static int op_register_worker(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_worker_info w;
	int64_t worker;
	char *key;
	int r;

	if (opt_str(q, "once", &key) < 0)
		return -1;
	if (vj_decode(&vj_worker_info, json_object_get(q, "info"), &w) < 0) {
		free(key);
		return -1;
	}
	r = vine_state_register_worker_once(sv->st, key, &w, &worker);
	vj_release(&vj_worker_info, &w);
	free(key);
	if (r < 0)
		return -1;
	*res = json_pack("{sI}", "worker", (json_int_t)worker);
	return 0;
}

static int op_heartbeat(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_attempt_ref *refs;
	int64_t worker;
	size_t n;
	int *stale, r;

	if (vj_i64(q, "worker", &worker) < 0 ||
	    vj_decode_array(&vj_attempt_ref, json_object_get(q, "running"), (void **)&refs, &n) < 0)
		return -1;
	stale = vine_xcalloc(n + 1, sizeof(*stale));
	r = vine_state_heartbeat(sv->st, worker, refs, n, stale);
	if (r == 0)
		*res = json_pack("{so}", "stale", vj_ints(stale, n));
	free(stale);
	vj_free_array(&vj_attempt_ref, refs, n);
	return r;
}

static int op_finish_claim(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_result *results;
	struct vine_claim *claims = NULL;
	struct vine_resources fr = { 0, 0, 0 }, tot = { 0, 0, 0 };
	int64_t worker, max;
	int more = 0, *acc, r;
	size_t n, nc = 0;

	if (vj_i64(q, "worker", &worker) < 0 || vj_int(q, "free_cores", &fr.cores) < 0 ||
	    vj_int(q, "total_cores", &tot.cores) < 0 || vj_i64(q, "max", &max) < 0)
		return -1;
	/* schema 4 on; an older worker offers no memory or GPUs */
	fr.memory = json_integer_value(json_object_get(q, "free_memory"));
	tot.memory = json_integer_value(json_object_get(q, "total_memory"));
	fr.gpus = (int)json_integer_value(json_object_get(q, "free_gpus"));
	tot.gpus = (int)json_integer_value(json_object_get(q, "total_gpus"));
	if (max < 0)
		return vine_error("bad 'max' in the state protocol: negative");
	if (vj_decode_array(&vj_result, json_object_get(q, "results"), (void **)&results, &n) < 0)
		return -1;
	acc = vine_xcalloc(n + 1, sizeof(*acc));
	r = vine_state_finish_claim_res(sv->st, worker, results, n, acc, &fr, &tot, (size_t)max,
					&claims, &nc, &more);
	if (r == 0) {
		*res = json_pack("{sososi}", "accepted", vj_ints(acc, n), "claims",
				 vj_encode_array(&vj_claim, claims, nc), "more", more);
		vine_state_free_claims(claims, nc);
	}
	free(acc);
	vj_free_array(&vj_result, results, n);
	return r;
}

/* put_file: the request is followed by the file's bytes as a stream. */
static int op_put_file(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_proto_stream sink = { NULL, fd_sink, NULL };
	int64_t worker, task, size;
	int attempt, fd, r = -1;
	char *name = NULL;

	/* bad arguments still leave a stream to read, to stay in step */
	if (vj_i64(q, "worker", &worker) < 0 || vj_i64(q, "task", &task) < 0 ||
	    vj_int(q, "attempt", &attempt) < 0 || vj_i64(q, "size", &size) < 0 ||
	    vj_str(q, "name", &name) < 0 || (fd = tmpfile_fd(sv)) < 0) {
		char *msg = vine_xstrdup(vine_errmsg());
		struct vine_proto_stream drop = { NULL, fd_sink, NULL };
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

		drop.ctx = &devnull;
		r = vine_proto_recv_stream(&sv->p, id, &drop);
		close(devnull);
		free(name);
		vine_error("%s", msg);
		free(msg);
		return r < 0 ? -2 : -1;
	}
	sink.ctx = &fd;
	r = vine_proto_recv_stream(&sv->p, id, &sink);
	if (r == 0) {
		if (lseek(fd, 0, SEEK_SET) < 0)
			r = vine_error_errno("cannot rewind a temporary file");
		else
			r = vine_state_put_file(sv->st, worker, task, attempt, name, fd, size);
		if (r >= 0)
			*res = json_pack("{sb}", "stored", r == 0);
		r = r < 0 ? -1 : 0;
	} else {
		r = r < 0 ? -2 : -1;
	}
	close(fd);
	free(name);
	return r;
}

static int op_unregister_worker(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int64_t worker;

	if (vj_i64(q, "worker", &worker) < 0 || vine_state_unregister_worker(sv->st, worker) < 0)
		return -1;
	*res = json_object();
	return 0;
}

static int op_reap(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int reaped = 0;

	if (vine_state_reap(sv->st, &reaped) < 0)
		return -1;
	*res = json_pack("{si}", "reaped", reaped);
	return 0;
}

static int op_deliver(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int64_t *ids = NULL;
	size_t n = 0, done = 0;
	int r = vj_get_i64s(json_object_get(q, "ids"), &ids, &n);

	if (r == 0)
		r = vine_state_deliver(sv->st, ids, n, &done);
	if (r == 0)
		*res = json_pack("{sI}", "delivered", (json_int_t)done);
	free(ids);
	return r;
}

static int op_counts(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_counts c;
	json_t *n;

	if (vine_state_counts(sv->st, &c) < 0)
		return -1;
	n = json_object();
	for (int i = 0; i < VINE_TASK_NSTATES; i++)
		json_object_set_new(n, vine_task_state_name(i), json_integer(c.n[i]));
	*res = json_pack("{sosIsIsIsIsI}", "n", n, "total", (json_int_t)c.total, "workers_alive",
			 (json_int_t)c.workers_alive, "worker_slots", (json_int_t)c.worker_slots,
			 "unfit", (json_int_t)c.unfit, "unfit_task", (json_int_t)c.unfit_task);
	return 0;
}

static int op_list_workers(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_worker *w;
	size_t n;

	if (vine_state_list_workers(sv->st, &w, &n) < 0)
		return -1;
	*res = json_pack("{so}", "workers", vj_encode_array(&vj_worker, w, n));
	vine_state_free_workers(w, n);
	return 0;
}

static int op_list_tasks(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_task *t;
	int64_t after, limit;
	size_t n;

	if (vj_i64(q, "after", &after) < 0 || vj_i64(q, "limit", &limit) < 0)
		return -1;
	if (limit < 0)
		return vine_error("bad 'limit' in the state protocol: negative");
	if (vine_state_list_tasks(sv->st, after, (size_t)limit, &t, &n) < 0)
		return -1;
	*res = json_pack("{so}", "tasks", vj_encode_array(&vj_task, t, n));
	vine_state_free_tasks(t, n);
	return 0;
}

static int op_list_attempts(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_attempt *a;
	int64_t task;
	size_t n;

	if (vj_i64(q, "task", &task) < 0 || vine_state_list_attempts(sv->st, task, &a, &n) < 0)
		return -1;
	*res = json_pack("{so}", "attempts", vj_encode_array(&vj_attempt, a, n));
	vine_state_free_attempts(a, n);
	return 0;
}

static int op_list_files(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_file *f;
	int64_t task;
	int attempt;
	size_t n;

	if (vj_i64(q, "task", &task) < 0 || vj_int(q, "attempt", &attempt) < 0 ||
	    vine_state_list_files(sv->st, task, attempt, &f, &n) < 0)
		return -1;
	*res = json_pack("{so}", "files", vj_encode_array(&vj_file, f, n));
	vine_state_free_files(f, n);
	return 0;
}

/* get_file: the file's bytes from offset "skip" as a stream, then R. */
static int op_get_file(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_proto_stream src = { fd_source, NULL, NULL };
	int64_t task, skip = 0;
	int attempt, fd, r;
	char *name;
	off_t size;

	if (vj_i64(q, "task", &task) < 0 || vj_int(q, "attempt", &attempt) < 0 ||
	    vj_str(q, "name", &name) < 0)
		return -1;
	if (json_object_get(q, "skip") && vj_i64(q, "skip", &skip) < 0) {
		free(name);
		return -1;
	}
	if ((fd = tmpfile_fd(sv)) < 0) {
		free(name);
		return -1;
	}
	r = vine_state_get_file(sv->st, task, attempt, name, fd);
	free(name);
	if (r == 0 && ((size = lseek(fd, 0, SEEK_END)) < 0 || skip < 0 || skip > size ||
		       lseek(fd, skip, SEEK_SET) < 0))
		r = vine_error("cannot resume a result file at byte %lld", (long long)skip);
	if (r == 0 && drop_now(sv, "get_file")) {
		char *buf = vine_xmalloc(VINE_PROTO_CHUNK);
		ssize_t n = vine_read_full(fd, buf, VINE_PROTO_CHUNK);

		if (n > 0)
			vine_proto_send(&sv->p, VINE_FRAME_DATA, id, buf, (size_t)n);
		free(buf);
		close(fd);
		return -2;
	}
	if (r == 0) {
		src.ctx = &fd;
		r = vine_proto_send_stream(&sv->p, id, &src);
		if (r == 0)
			*res = json_pack("{sI}", "size", (json_int_t)size);
		r = r < 0 ? -2 : r > 0 ? -1 : 0;
	}
	close(fd);
	return r;
}

/* A string member that may be null or missing (then *v is NULL). */
static int opt_str(json_t *q, const char *name, char **v)
{
	json_t *m = json_object_get(q, name);

	*v = NULL;
	if (!m || json_is_null(m))
		return 0;
	if (vj_string_value(m, v) < 0)
		return vine_error("bad '%s' in the state protocol: %s", name, vine_errmsg());
	return 0;
}

static int op_peer_secret(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	unsigned char secret[VINE_PEER_SECRET_LEN];
	char hex[2 * VINE_PEER_SECRET_LEN + 1];

	if (vine_state_peer_secret(sv->st, secret) < 0)
		return -1;
	vine_peer_secret_hex(secret, hex);
	*res = json_pack("{ss}", "secret", hex);
	return 0;
}

static int op_spread_settings(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_spread_settings set, get;
	json_t *s = json_object_get(q, "set");

	if (s && !json_is_null(s) && vj_decode(&vj_spread_settings, s, &set) < 0)
		return -1;
	if (vine_state_spread_settings(sv->st, s && !json_is_null(s) ? &set : NULL, &get) < 0)
		return -1;
	*res = json_pack("{so}", "settings", vj_encode(&vj_spread_settings, &get));
	return 0;
}

static int op_node_listen(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	char *node = NULL, *addr = NULL;
	int r = -1;

	if (vj_str(q, "node", &node) == 0 && opt_str(q, "addr", &addr) == 0)
		r = vine_state_node_listen(sv->st, node, addr);
	if (r == 0)
		*res = json_object();
	free(node);
	free(addr);
	return r;
}

static int op_transfer_begin(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	char *obj = NULL, *dest = NULL, *key = NULL;
	struct vine_xfer x;
	int64_t offset;
	int r = -1;

	if (vj_str(q, "id", &obj) == 0 && vj_str(q, "dest", &dest) == 0 &&
	    vj_i64(q, "offset", &offset) == 0 && opt_str(q, "once", &key) == 0)
		r = vine_state_transfer_begin_once(sv->st, key, obj, dest, offset, &x);
	if (r == 0) {
		*res = json_pack("{so}", "xfer", vj_encode(&vj_xfer, &x));
		vine_state_free_xfer(&x);
	}
	free(obj);
	free(dest);
	free(key);
	return r;
}

static int op_transfer_progress(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int64_t xfer, bytes;

	if (vj_i64(q, "xfer", &xfer) < 0 || vj_i64(q, "bytes", &bytes) < 0 ||
	    vine_state_transfer_progress(sv->st, xfer, bytes) < 0)
		return -1;
	*res = json_object();
	return 0;
}

static int op_transfer_end(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	int64_t xfer, bytes;
	char *msg = NULL, *key = NULL;
	int status, r = -1;

	if (vj_i64(q, "xfer", &xfer) == 0 && vj_int(q, "status", &status) == 0 &&
	    vj_i64(q, "bytes", &bytes) == 0 && opt_str(q, "msg", &msg) == 0 &&
	    opt_str(q, "once", &key) == 0)
		r = vine_state_transfer_end_once(sv->st, key, xfer, status, bytes, msg);
	if (r == 0)
		*res = json_object();
	free(msg);
	free(key);
	return r;
}

static int op_replica_set(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	char *obj = NULL, *node = NULL;
	int64_t bytes;
	int complete, r = -1;

	if (vj_str(q, "id", &obj) == 0 && vj_str(q, "node", &node) == 0 &&
	    vj_i64(q, "bytes", &bytes) == 0 && vj_int(q, "complete", &complete) == 0)
		r = vine_state_replica_set(sv->st, obj, node, bytes, complete);
	if (r == 0)
		*res = json_object();
	free(obj);
	free(node);
	return r;
}

static int op_list_transfers(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct vine_transfer *t;
	size_t n;

	if (vine_state_list_transfers(sv->st, &t, &n) < 0)
		return -1;
	*res = json_pack("{so}", "transfers", vj_encode_array(&vj_transfer, t, n));
	vine_state_free_transfers(t, n);
	return 0;
}

/* A stream's bytes from memory. */
struct mem_source {
	const char *p;
	size_t left;
};

static ssize_t mem_source_read(void *ctx, void *buf, size_t len)
{
	struct mem_source *m = ctx;

	if (len > m->left)
		len = m->left;
	memcpy(buf, m->p, len);
	m->p += len;
	m->left -= len;
	return (ssize_t)len;
}

/*
 * $VINE_TEST_ORIGIN_LIMIT=BYTES: read the origin only up to BYTES and
 * refuse to read at or past it, so tests can cut a transfer through the
 * state at a known byte.  A read from byte from up to *end: 1 if
 * refused, else *end is cut to the limit.
 */
static int origin_limited(int64_t from, int64_t *end)
{
	const char *v = getenv("VINE_TEST_ORIGIN_LIMIT");
	int64_t limit = v && *v ? strtoll(v, NULL, 10) : -1;

	if (limit < 0)
		return 0;
	if (from < limit) {
		if (*end > limit)
			*end = limit;
		return 0;
	}
	vine_error("not reading the origin past byte %s ($VINE_TEST_ORIGIN_LIMIT)", v);
	return 1;
}

/*
 * origin_read: the bytes of the object's origin from offset + "skip" (what
 * the client received of an answer cut short), up to len, as a stream,
 * then R {"got", "size"}.
 */
static int op_origin_read(struct server *sv, json_t *q, uint32_t id, json_t **res)
{
	struct mem_source m = { NULL, 0 };
	struct vine_proto_stream src = { mem_source_read, NULL, &m };
	int64_t offset, len, skip = 0, size, end;
	char *obj = NULL, *buf = NULL;
	size_t got = 0;
	int r = -1;

	if (vj_str(q, "id", &obj) < 0 || vj_i64(q, "offset", &offset) < 0 ||
	    vj_i64(q, "len", &len) < 0 ||
	    (json_object_get(q, "skip") && vj_i64(q, "skip", &skip) < 0))
		goto out;
	if (len < 0 || len > VINE_ORIGIN_READ_MAX || skip < 0 || skip > len ||
	    offset > INT64_MAX - len) {
		vine_error("bad 'len' or 'skip' in the state protocol");
		goto out;
	}
	end = offset + len;
	if (origin_limited(offset + skip, &end))
		goto out;
	len = end - offset;
	buf = vine_xmalloc((size_t)(len - skip) + 1);
	if (vine_state_origin_read(sv->st, obj, offset + skip, buf, (size_t)(len - skip), &got,
				   &size) < 0)
		goto out;
	m.p = buf;
	m.left = got;
	if (drop_now(sv, "origin_read")) {
		/* the first chunk only, then hang up */
		if (got)
			vine_proto_send(&sv->p, VINE_FRAME_DATA, id, buf,
					got < VINE_PROTO_CHUNK ? got : VINE_PROTO_CHUNK);
		r = -2;
		goto out;
	}
	r = vine_proto_send_stream(&sv->p, id, &src);
	if (r == 0)
		*res = json_pack("{sIsI}", "got", (json_int_t)got, "size", (json_int_t)size);
	r = r < 0 ? -2 : r > 0 ? -1 : 0;
out:
	free(obj);
	free(buf);
	return r;
}

static const struct op {
	const char *name;
	handler *fn;
} ops[] = {
	{ "open", op_open },
	{ "submit", op_submit },
	{ "cancel", op_cancel },
	{ "requeue_failed", op_requeue_failed },
	{ "list_objects", op_list_objects },
	{ "register_worker", op_register_worker },
	{ "heartbeat", op_heartbeat },
	{ "finish_claim", op_finish_claim },
	{ "put_file", op_put_file },
	{ "unregister_worker", op_unregister_worker },
	{ "reap", op_reap },
	{ "deliver", op_deliver },
	{ "counts", op_counts },
	{ "list_workers", op_list_workers },
	{ "list_tasks", op_list_tasks },
	{ "list_attempts", op_list_attempts },
	{ "list_files", op_list_files },
	{ "get_file", op_get_file },
	{ "peer_secret", op_peer_secret },
	{ "spread_settings", op_spread_settings },
	{ "node_listen", op_node_listen },
	{ "transfer_begin", op_transfer_begin },
	{ "transfer_progress", op_transfer_progress },
	{ "transfer_end", op_transfer_end },
	{ "replica_set", op_replica_set },
	{ "list_transfers", op_list_transfers },
	{ "origin_read", op_origin_read },
};

static int answer(struct server *sv, const struct vine_frame *f)
{
	uint32_t id = f->id;
	const struct op *op = NULL;
	json_t *q = vine_proto_json(f), *res = NULL;
	const char *name;
	int r;

	if (!q) {
		/* an error reply, not the end of the connection; a stream it
		 * may carry is skipped, as for an unknown request */
		sv->refused = id;
		return vine_proto_send_error(&sv->p, id, vine_errmsg());
	}
	name = json_string_value(json_object_get(q, "op"));
	for (size_t i = 0; name && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, name))
			op = &ops[i];
	if (!op) {
		/* it may carry a stream: skip frames of this id (see below) */
		sv->refused = id;
		r = vine_error("unknown request '%s' (is vine-state older than the client?)",
			       name ? name : "(none)");
	} else if (!sv->st && op->fn != op_open) {
		r = vine_error("the state is not open");
	} else {
		r = op->fn(sv, q, id, &res);
	}
	json_decref(q);
	/* get_file and origin_read drop in the middle of their stream */
	if (r == -2 || (op && op->fn != op_get_file && op->fn != op_origin_read &&
			drop_now(sv, op->name))) {
		json_decref(res);
		return -1;
	}
	if (r < 0)
		return vine_proto_send_error(&sv->p, id, vine_errmsg());
	r = vine_proto_send_json(&sv->p, VINE_FRAME_RESPONSE, id, res);
	json_decref(res);
	return r;
}

int vine_state_serve(const char *path, int in, int out)
{
	struct server sv = { .path = path };
	struct vine_frame f;
	const char *slash = strrchr(path, '/'), *drop, *colon;
	int rc = -1;

	drop = getenv("VINE_TEST_DROP_ANSWER");
	if (drop && (colon = strchr(drop, ':'))) {
		char *end;

		sv.drop_op = vine_xstrndup(drop, (size_t)(colon - drop));
		sv.drop_n = strtol(colon + 1, &end, 10);
		if (*end == ':')
			sv.drop_once = vine_xstrdup(end + 1);
	}
	sv.tmpdir = slash ? vine_xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
			  : vine_xstrdup(".");
	vine_proto_init_fd(&sv.p, in, out, 0);
	if (vine_proto_hello(&sv.p) < 0) {
		/* a client that hung up at once is no error */
		if (sv.p.eof)
			rc = 0;
		goto out;
	}
	for (;;) {
		if (vine_proto_recv(&sv.p, &f) < 0) {
			if (sv.p.eof)
				rc = 0;
			break;
		}
		if (f.id == sv.refused && f.id && (f.type == VINE_FRAME_DATA ||
						   f.type == VINE_FRAME_END || f.type == VINE_FRAME_ERROR))
			continue;
		if (f.type != VINE_FRAME_REQUEST) {
			vine_error("a '%c' frame where a request was expected", f.type);
			break;
		}
		if (answer(&sv, &f) < 0)
			break;
	}
out:
	vine_state_close(sv.st);
	vine_proto_release(&sv.p);
	free(sv.tmpdir);
	free(sv.drop_op);
	free(sv.drop_once);
	return rc;
}
