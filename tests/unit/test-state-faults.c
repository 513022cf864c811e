/*
 * test-state-faults.c - infrastructure faults on the local backend
 * (vine(7), FAULTS): a task handed back as FAULT goes back to ready
 * without using up its retries, its node claims no task needing the
 * object for a while, another node does, and the task fails once
 * VINE_FAULT_NODES distinct nodes have handed it back, every reason kept;
 * vine_state_list_objects shows the backoffs, requeue_failed resets the
 * count; a schema version 3 state is upgraded and keeps its attempts.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/state.h"
#include "t.h"
#include "util/util.h"

static char dir[] = "/tmp/vine-test-state-faults.XXXXXX";
static const char oid[] = "abababababababababababababababababababababababababababababababab";

static int sql(const char *path, const char *q)
{
	sqlite3 *db;
	int rc = -1;

	if (sqlite3_open(path, &db) == SQLITE_OK)
		rc = sqlite3_exec(db, q, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

static int64_t worker(struct vine_state *st, const char *node)
{
	struct vine_worker_info wi = { .node = node, .host = "h", .pid = 1, .cores = 1,
				       .lease = 60 };
	int64_t id = -1;

	check_int(vine_state_register_worker(st, &wi, &id), ==, 0);
	return id;
}

/* Claim one task for w: its id, 0 if none. */
static int64_t claim(struct vine_state *st, int64_t w, int *attempt)
{
	struct vine_claim *c = NULL;
	size_t n = 0;
	int64_t id = 0;

	check_int(vine_state_claim(st, w, 1, 1, 1, &c, &n, NULL), ==, 0);
	if (n == 1) {
		id = c[0].task;
		*attempt = c[0].attempt;
	}
	vine_state_free_claims(c, n);
	return id;
}

static void fault(struct vine_state *st, int64_t w, int64_t task, int attempt, const char *why)
{
	struct vine_result r = { .task = task, .attempt = attempt, .outcome = VINE_OUT_FAULT,
				 .message = why };
	int acc = 0;

	check_int(vine_state_finish(st, w, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 1);
}

static void test_faults(const char *path)
{
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	struct vine_object obj = { .size = 10, .origin = "/env.tar.gz" };
	struct vine_task_spec sp[2] = { { .cmd = "true", .object = oid, .cores = 1, .retries = 0 },
					{ .cmd = "plain", .cores = 1 } };
	struct vine_task *t = NULL;
	struct vine_attempt *a = NULL;
	struct vine_object *objs = NULL;
	int64_t ids[2], w1, w1b, w2, w3, got;
	size_t n = 0;
	int att = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	memcpy(obj.id, oid, sizeof(oid));
	check_int(vine_state_submit(st, &obj, sp, 2, ids), ==, 0);
	w1 = worker(st, "n1");
	w1b = worker(st, "n1");   /* a second worker on the same node */
	w2 = worker(st, "n2");
	w3 = worker(st, "n3");

	/* n1 faults: the task is ready again, its retries (0) untouched */
	check_int(claim(st, w1, &att), ==, ids[0]);
	fault(st, w1, ids[0], att, "no source: n1");
	check_int(vine_state_list_tasks(st, 0, 1, &t, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		check_int(t[0].state, ==, VINE_TASK_READY);
		check_int(t[0].failures, ==, 0);
		check_int(t[0].faults, ==, 1);
		check_int(t[0].last.outcome, ==, VINE_OUT_FAULT);
		check_str(t[0].last.message, ==, "no source: n1");
	}
	vine_state_free_tasks(t, n);

	/* node n1 backs off from the object: any worker of it gets the
	 * other task only, then nothing */
	check_int(claim(st, w1b, &att), ==, ids[1]);
	check_int(claim(st, w1, &att), ==, 0);

	/* n2 faults too, n2 again (same node: counted once), then n3 */
	got = claim(st, w2, &att);
	check_int(got, ==, ids[0]);
	fault(st, w2, ids[0], att, "disk full: n2");
	/* n2 backs off now: make it claim again by expiring its backoff */
	check_int(sql(path, "UPDATE node_faults SET until = 0 WHERE node = 'n2'"), ==, 0);
	check_int(claim(st, w2, &att), ==, ids[0]);
	fault(st, w2, ids[0], att, "disk full again: n2");
	check_int(vine_state_list_tasks(st, 0, 1, &t, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		check_int(t[0].state, ==, VINE_TASK_READY);
		check_int(t[0].faults, ==, 2);
	}
	vine_state_free_tasks(t, n);

	/* the backoff doubles with the node's faults */
	check_int(vine_state_list_objects(st, &objs, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1 && objs[0].nbackoffs == 2) {
		double now = vine_now_wall();
		check_str(objs[0].backoffs[0].node, ==, "n1");
		check_int(objs[0].backoffs[0].faults, ==, 1);
		check_dbl(objs[0].backoffs[0].until, >, now + VINE_FAULT_BACKOFF - 5);
		check_dbl(objs[0].backoffs[0].until, <=, now + VINE_FAULT_BACKOFF);
		check_str(objs[0].backoffs[1].node, ==, "n2");
		check_int(objs[0].backoffs[1].faults, ==, 2);
		check_dbl(objs[0].backoffs[1].until, >, now + 2 * VINE_FAULT_BACKOFF - 5);
		check_str(objs[0].backoffs[1].reason, ==, "disk full again: n2");
	} else if (n == 1) {
		check_int(objs[0].nbackoffs, ==, 2);
	}
	vine_state_free_objects(objs, n);

	check_int(claim(st, w3, &att), ==, ids[0]);
	fault(st, w3, ids[0], att, "state unreachable: n3");
	check_int(vine_state_list_tasks(st, 0, 1, &t, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		check_int(t[0].state, ==, VINE_TASK_FAILED);
		check_int(t[0].faults, ==, VINE_FAULT_NODES);
	}
	vine_state_free_tasks(t, n);
	/* every reason is on record */
	check_int(vine_state_list_attempts(st, ids[0], &a, &n), ==, 0);
	check_int(n, ==, 4);
	if (n == 4) {
		check_str(a[0].message, ==, "no source: n1");
		check_str(a[1].message, ==, "disk full: n2");
		check_str(a[2].message, ==, "disk full again: n2");
		check_str(a[3].message, ==, "state unreachable: n3");
		for (size_t i = 0; i < n; i++)
			check_int(a[i].outcome, ==, VINE_OUT_FAULT);
	}
	vine_state_free_attempts(a, n);

	/* requeueing starts the count again */
	int64_t *rq = NULL;
	check_int(vine_state_requeue_failed(st, -1, &rq, &n), ==, 0);
	check_int(n, ==, 1);
	free(rq);
	check_int(vine_state_list_tasks(st, 0, 1, &t, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		check_int(t[0].state, ==, VINE_TASK_READY);
		check_int(t[0].faults, ==, 0);
	}
	vine_state_free_tasks(t, n);
	vine_state_close(st);
}

/* Two tasks of one failed fetch, handed back together: one fault. */
static void test_one_episode(const char *path)
{
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	struct vine_object obj = { .size = 10, .origin = "/env.tar.gz" }, *objs = NULL;
	struct vine_task_spec sp[2] = { { .cmd = "a", .object = oid, .cores = 1 },
					{ .cmd = "b", .object = oid, .cores = 1 } };
	struct vine_worker_info wi = { .node = "n4", .host = "h", .pid = 1, .cores = 2, .lease = 60 };
	struct vine_claim *c = NULL;
	struct vine_result r[2];
	int64_t ids[2], w = 0;
	int acc[2];
	size_t n = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	memcpy(obj.id, oid, sizeof(oid));
	check_int(vine_state_submit(st, &obj, sp, 2, ids), ==, 0);
	check_int(vine_state_register_worker(st, &wi, &w), ==, 0);
	check_int(vine_state_claim(st, w, 2, 2, 2, &c, &n, NULL), ==, 0);
	check_int(n, ==, 2);
	for (size_t i = 0; i < n && i < 2; i++)
		r[i] = (struct vine_result){ .task = c[i].task, .attempt = c[i].attempt,
					     .outcome = VINE_OUT_FAULT, .message = "gone" };
	check_int(vine_state_finish(st, w, r, n, acc), ==, 0);
	vine_state_free_claims(c, n);
	check_int(vine_state_list_objects(st, &objs, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		check_int(objs[0].nbackoffs, ==, 1);
		if (objs[0].nbackoffs == 1)
			check_int(objs[0].backoffs[0].faults, ==, 1);
	}
	vine_state_free_objects(objs, n);
	vine_state_close(st);
}

/* A version 4 state (without version 5's faults) is upgraded in place. */
static void test_migrate_v4(const char *path)
{
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	struct vine_task_spec sp = { .cmd = "echo kept", .cores = 1 };
	struct vine_attempt *a = NULL;
	int64_t id, w;
	size_t n = 0;
	int att = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	check_int(vine_state_submit(st, NULL, &sp, 1, &id), ==, 0);
	w = worker(st, "n1");
	check_int(claim(st, w, &att), ==, id);
	vine_state_close(st);
	/* back to version 4's tables (without 5's faults, 6's delivered),
	 * with an attempt on record */
	check_int(sql(path, "DROP TABLE node_faults; ALTER TABLE tasks DROP COLUMN faults;"
			  " ALTER TABLE tasks DROP COLUMN delivered; PRAGMA user_version = 4"), ==, 0);
	st = vine_state_open(path, 0);
	CHECK(st != NULL);
	if (!st) {
		fprintf(stderr, "open: %s\n", vine_errmsg());
		return;
	}
	check_int(vine_state_list_attempts(st, id, &a, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1)
		check_str(a[0].node, ==, "n1");
	vine_state_free_attempts(a, n);
	fault(st, w, id, att, "after the upgrade");
	vine_state_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char *p = vine_xasprintf("%s/faults.db", dir);
	test_faults(p);
	free(p);
	p = vine_xasprintf("%s/episode.db", dir);
	test_one_episode(p);
	free(p);
	p = vine_xasprintf("%s/migrate.db", dir);
	test_migrate_v4(p);
	free(p);
	vine_rm_rf(dir);
	return T_END();
}
