/*
 * status.c - the status summary as text and JSON (see status.h).
 */
#include <string.h>
#include <time.h>

#include "task/status.h"
#include "util/util.h"

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static json_t *str(const char *s)
{
	struct vine_buf b = VINE_BUF_INIT;
	json_t *j;

	if (!s)
		return json_null();
	if ((j = json_string(s)))
		return j;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
		json_t *one = strnlen((const char *)p, n) == n ? json_stringn((const char *)p, n) : NULL;
		if (one) {
			vine_buf_add(&b, p, n);
			json_decref(one);
			p += n;
		} else {
			vine_buf_addstr(&b, "\xef\xbf\xbd");
			p++;
		}
	}
	j = json_string(b.data ? b.data : "");
	vine_buf_release(&b);
	return j;
}

static json_t *time_or_null(double t)
{
	return t > 0 ? json_real(t) : json_null();
}

static int set(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v);
}

/* Every transfer: root's "transfers" array. */
static int add_transfers(struct vine_state *st, json_t *root)
{
	struct vine_transfer *t;
	json_t *a = json_array();
	size_t n;

	if (vine_state_list_transfers(st, &t, &n) < 0) {
		json_decref(a);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		set(o, "id", json_integer(t[i].id));
		set(o, "object", str(t[i].object));
		set(o, "source", str(t[i].source));
		set(o, "addr", str(t[i].addr));
		set(o, "dest", str(t[i].dest));
		set(o, "state", str(t[i].state));
		set(o, "status", str(t[i].status));
		set(o, "offset", json_integer(t[i].offset));
		set(o, "bytes", json_integer(t[i].bytes));
		set(o, "started", json_real(t[i].started));
		set(o, "updated", json_real(t[i].updated));
		json_array_append_new(a, o);
	}
	vine_state_free_transfers(t, n);
	set(root, "transfers", a);
	return 0;
}

/*
 * The nodes that handed back tasks needing obj (vine(7), FAULTS): an
 * object's "handbacks" array.
 */
static json_t *handbacks_json(const struct vine_object *obj)
{
	json_t *a = json_array();

	for (size_t k = 0; k < obj->nbackoffs; k++) {
		const struct vine_backoff *b = &obj->backoffs[k];
		json_t *o = json_object();
		set(o, "node", str(b->node));
		set(o, "faults", json_integer(b->faults));
		set(o, "until", json_real(b->until));
		set(o, "reason", str(b->reason));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *vine_status_json(struct vine_state *st)
{
	struct vine_counts c;
	struct vine_worker *w = NULL;
	struct vine_object *obj = NULL;
	size_t nw = 0, no = 0;
	json_t *root, *tasks, *workers, *objects;

	if (vine_state_counts(st, &c) < 0 || vine_state_list_workers(st, &w, &nw) < 0)
		return NULL;
	if (vine_state_list_objects(st, &obj, &no) < 0) {
		vine_state_free_workers(w, nw);
		return NULL;
	}
	root = json_object();
	set(root, "state", str(vine_state_url(st)));
	set(root, "schema", json_integer(VINE_STATE_SCHEMA));
	set(root, "time", json_real(vine_now_wall()));
	tasks = json_object();
	set(tasks, "total", json_integer(c.total));
	for (int i = 0; i < VINE_TASK_NSTATES; i++)
		set(tasks, vine_task_state_name(i), json_integer(c.n[i]));
	set(root, "tasks", tasks);

	workers = json_array();
	for (size_t i = 0; i < nw; i++) {
		json_t *o = json_object(), *run = json_array();
		set(o, "id", json_integer(w[i].id));
		set(o, "node", str(w[i].node));
		set(o, "host", str(w[i].host));
		set(o, "pid", json_integer(w[i].pid));
		set(o, "cores", json_integer(w[i].cores));
		set(o, "listen", str(w[i].listen));
		set(o, "state", str(w[i].state));
		set(o, "started", json_real(w[i].started));
		set(o, "heartbeat", json_real(w[i].heartbeat));
		set(o, "expires", json_real(w[i].expires));
		for (size_t k = 0; k < w[i].nrunning; k++)
			json_array_append_new(run, json_integer(w[i].running[k]));
		set(o, "running", run);
		json_array_append_new(workers, o);
	}
	set(root, "workers", workers);

	objects = json_array();
	for (size_t i = 0; i < no; i++) {
		json_t *o = json_object(), *reps = json_array();
		set(o, "id", str(obj[i].id));
		set(o, "size", json_integer(obj[i].size));
		set(o, "origin", str(obj[i].origin));
		for (size_t k = 0; k < obj[i].nreplicas; k++) {
			json_t *r = json_object();
			set(r, "node", str(obj[i].replicas[k].node));
			set(r, "bytes", json_integer(obj[i].replicas[k].bytes));
			set(r, "complete", json_boolean(obj[i].replicas[k].complete));
			json_array_append_new(reps, r);
		}
		set(o, "replicas", reps);
		set(o, "served_origin", json_integer(obj[i].served_origin));
		set(o, "served_peer", json_integer(obj[i].served_peer));
		set(o, "bytes_origin", json_integer(obj[i].bytes_origin));
		set(o, "bytes_peer", json_integer(obj[i].bytes_peer));
		set(o, "transfers_active", json_integer(obj[i].xfer_active));
		set(o, "transfers_failed", json_integer(obj[i].xfer_failed));
		set(o, "handbacks", handbacks_json(&obj[i]));
		json_array_append_new(objects, o);
	}
	set(root, "objects", objects);
	vine_state_free_workers(w, nw);
	vine_state_free_objects(obj, no);
	if (add_transfers(st, root) < 0) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static void human(char *out, size_t n, double v)
{
	static const char *sfx[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, sfx[i]);
}

int vine_status_text(struct vine_state *st, FILE *f)
{
	struct vine_counts c;
	struct vine_worker *w = NULL;
	struct vine_object *obj = NULL;
	size_t nw = 0, no = 0, n[2][4] = { { 0 } };
	double now = vine_now_wall();

	if (vine_state_counts(st, &c) < 0 || vine_state_list_workers(st, &w, &nw) < 0)
		return -1;
	if (vine_state_list_objects(st, &obj, &no) < 0) {
		vine_state_free_workers(w, nw);
		return -1;
	}
	fprintf(f, "state: %s\n", vine_state_url(st));
	fprintf(f, "tasks: %lld total, %lld ready, %lld running, %lld done, %lld failed",
		(long long)c.total, (long long)c.n[VINE_TASK_READY], (long long)c.n[VINE_TASK_RUNNING],
		(long long)c.n[VINE_TASK_DONE], (long long)c.n[VINE_TASK_FAILED]);
	if (c.n[VINE_TASK_CANCELLED])
		fprintf(f, ", %lld cancelled", (long long)c.n[VINE_TASK_CANCELLED]);
	fputc('\n', f);
	/*
	 * n[0]: workers, n[1]: cache servers that run no tasks (0 cores);
	 * [0] alive, [1] lost, [2] gone, [3] alive on the record but past
	 * their lease (dead, most likely: nothing has reaped them yet, and
	 * looking does not)
	 */
	for (size_t i = 0; i < nw; i++) {
		int k = w[i].cores == 0, alive = !strcmp(w[i].state, "alive");
		n[k][0] += alive;
		n[k][1] += !strcmp(w[i].state, "lost");
		n[k][2] += !strcmp(w[i].state, "gone");
		n[k][3] += alive && w[i].expires < now;
	}
	for (int k = 0; k < 2; k++) {
		if (k && !(n[1][0] + n[1][1] + n[1][2]))
			break;
		fprintf(f, "%s: %zu alive, ", k ? "servers" : "workers", n[k][0]);
		if (n[k][3])
			fprintf(f, "%zu of them past their lease, ", n[k][3]);
		fprintf(f, "%zu lost, %zu gone\n", n[k][1], n[k][2]);
	}
	if (n[0][0] + n[0][1] + n[1][0] + n[1][1])
		fprintf(f, "  %-6s %-20s %5s %7s %10s  %s\n", "ID", "NODE", "CORES", "RUNNING",
			"HEARTBEAT", "STATE");
	for (size_t i = 0; i < nw; i++) {
		if (!strcmp(w[i].state, "gone"))
			continue;
		fprintf(f, "  %-6lld %-20s %5d %7zu %8.1fs  %s\n", (long long)w[i].id, w[i].node,
			w[i].cores, w[i].nrunning, now - w[i].heartbeat,
			!strcmp(w[i].state, "alive") && w[i].expires < now ? "alive, past its lease" : w[i].state);
	}
	fprintf(f, "objects: %zu\n", no);
	for (size_t i = 0; i < no; i++) {
		char size[32], bo[32], bp[32];
		size_t complete = 0;
		human(size, sizeof(size), (double)obj[i].size);
		human(bo, sizeof(bo), (double)obj[i].bytes_origin);
		human(bp, sizeof(bp), (double)obj[i].bytes_peer);
		for (size_t k = 0; k < obj[i].nreplicas; k++)
			complete += obj[i].replicas[k].complete != 0;
		fprintf(f, "  %.12s %10s  replicas %zu (%zu complete)  served origin %lld (%s)"
			" peer %lld (%s)  transfers %lld active %lld failed  %s\n", obj[i].id, size,
			obj[i].nreplicas, complete, (long long)obj[i].served_origin, bo,
			(long long)obj[i].served_peer, bp, (long long)obj[i].xfer_active,
			(long long)obj[i].xfer_failed, obj[i].origin);
		for (size_t k = 0; k < obj[i].nbackoffs; k++) {
			const struct vine_backoff *b = &obj[i].backoffs[k];
			fprintf(f, "    handed back by %s %d time%s", b->node, b->faults,
				b->faults == 1 ? "" : "s");
			if (b->until > now)
				fprintf(f, " (claims none for %.0fs more)", b->until - now);
			fprintf(f, ": %s\n", b->reason ? b->reason : "-");
		}
	}
	vine_state_free_workers(w, nw);
	vine_state_free_objects(obj, no);
	return 0;
}

/* The task with id (a page of one), or -1 with a message. */
static int one_task(struct vine_state *st, int64_t id, struct vine_task **t)
{
	size_t n;

	if (vine_state_list_tasks(st, id - 1, 1, t, &n) < 0)
		return -1;
	if (n == 1 && (*t)->id == id)
		return 0;
	vine_state_free_tasks(*t, n);
	return vine_error("no task %lld in state '%s'", (long long)id, vine_state_url(st));
}

json_t *vine_status_task_json(struct vine_state *st, int64_t id)
{
	struct vine_task *t;
	struct vine_attempt *a;
	size_t na;
	json_t *o, *arr;

	if (one_task(st, id, &t) < 0)
		return NULL;
	if (vine_state_list_attempts(st, id, &a, &na) < 0) {
		vine_state_free_tasks(t, 1);
		return NULL;
	}
	o = json_object();
	set(o, "id", json_integer(t->id));
	set(o, "cmd", str(t->cmd));
	set(o, "state", str(vine_task_state_name(t->state)));
	set(o, "object", str(t->object));
	set(o, "tag", str(t->tag));
	set(o, "cores", json_integer(t->cores));
	set(o, "retries", json_integer(t->retries));
	set(o, "timeout", t->timeout > 0 ? json_real(t->timeout) : json_null());
	set(o, "submitted", json_real(t->submitted));
	set(o, "failures", json_integer(t->failures));
	set(o, "losses", json_integer(t->losses));
	set(o, "faults", json_integer(t->faults));
	arr = json_array();
	for (size_t i = 0; i < na; i++) {
		json_t *x = json_object();
		int ex = a[i].outcome == VINE_OUT_EXITED ||
			 (a[i].outcome == VINE_OUT_TIMEOUT && !a[i].signal);
		set(x, "attempt", json_integer(a[i].attempt));
		set(x, "worker", json_integer(a[i].worker));
		set(x, "node", str(a[i].node));
		set(x, "claimed", time_or_null(a[i].claimed));
		set(x, "started", time_or_null(a[i].started));
		set(x, "ended", time_or_null(a[i].ended));
		set(x, "outcome", str(vine_outcome_name(a[i].outcome)));
		set(x, "exit", ex ? json_integer(a[i].exit_code) : json_null());
		set(x, "signal", a[i].signal ? json_integer(a[i].signal) : json_null());
		set(x, "message", str(a[i].message));
		set(x, "received", json_integer(a[i].received));
		json_array_append_new(arr, x);
	}
	set(o, "attempts", arr);
	vine_state_free_attempts(a, na);
	vine_state_free_tasks(t, 1);
	return o;
}

int vine_status_task_text(struct vine_state *st, int64_t id, FILE *f)
{
	struct vine_task *t;
	struct vine_attempt *a;
	size_t na;

	if (one_task(st, id, &t) < 0)
		return -1;
	if (vine_state_list_attempts(st, id, &a, &na) < 0) {
		vine_state_free_tasks(t, 1);
		return -1;
	}
	fprintf(f, "task %lld: %s\n", (long long)t->id, vine_task_state_name(t->state));
	fprintf(f, "  command: %s\n", t->cmd);
	fprintf(f, "  cores %d, retries %d, failures %d, losses %d", t->cores, t->retries,
		t->failures, t->losses);
	if (t->faults)
		fprintf(f, ", handed back by %d node%s (fails at %d)", t->faults,
			t->faults == 1 ? "" : "s", VINE_FAULT_NODES);
	if (t->timeout > 0)
		fprintf(f, ", timeout %gs", t->timeout);
	if (t->tag)
		fprintf(f, ", tag %s", t->tag);
	fputc('\n', f);
	if (t->object)
		fprintf(f, "  environment: %s\n", t->object);
	for (size_t i = 0; i < na; i++) {
		char when[32] = "-";
		time_t s = (time_t)(a[i].started > 0 ? a[i].started : a[i].claimed);
		struct tm tm;
		if (localtime_r(&s, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "  attempt %d on %s: %s", a[i].attempt, a[i].node ? a[i].node : "-",
			vine_outcome_name(a[i].outcome));
		if (a[i].outcome == VINE_OUT_EXITED)
			fprintf(f, " %d", a[i].exit_code);
		if (a[i].signal)
			fprintf(f, " (signal %d)", a[i].signal);
		fprintf(f, ", %s", when);
		if (a[i].started > 0 && a[i].ended >= a[i].started)
			fprintf(f, ", %.3fs", a[i].ended - a[i].started);
		if (a[i].message)
			fprintf(f, ": %s", a[i].message);
		fputc('\n', f);
	}
	vine_state_free_attempts(a, na);
	vine_state_free_tasks(t, 1);
	return 0;
}
