/*
 * test-state-once.c - exactly once on the local backend: a request key
 * seen before gets the answer it got then and changes nothing (submit,
 * requeue_failed, transfer_end, register_worker, transfer_begin); keys
 * expire; a schema version 2 state is upgraded in place and keeps its
 * tasks.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer/peer.h"
#include "state/state.h"
#include "t.h"
#include "util/util.h"

static char dir[] = "/tmp/vine-test-state-once.XXXXXX";
static const char oid[] = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

/* SQL run on the state file behind the backend's back: 0 or -1. */
static int sql(const char *path, const char *q)
{
	sqlite3 *db;
	int rc = -1;

	if (sqlite3_open(path, &db) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		rc = sqlite3_exec(db, q, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	}
	sqlite3_close(db);
	return rc;
}

/* The first column of the first row of a query, or -1. */
static long long one(const char *path, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long long v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

static int64_t total(struct vine_state *st)
{
	struct vine_counts c;

	return vine_state_counts(st, &c) == 0 ? c.total : -1;
}

/* Claim the one ready task and fail it (retries 0: it is failed then). */
static void fail_one(struct vine_state *st, int64_t worker)
{
	struct vine_claim *c = NULL;
	struct vine_result r = { .outcome = VINE_OUT_EXITED, .exit_code = 1 };
	size_t n = 0;
	int acc = 0;

	check_int(vine_state_claim(st, worker, 1, 1, 1, &c, &n, NULL), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		r.task = c[0].task;
		r.attempt = c[0].attempt;
		check_int(vine_state_finish(st, worker, &r, 1, &acc), ==, 0);
		check_int(acc, ==, 1);
	}
	vine_state_free_claims(c, n);
}

static void test_submit(const char *path)
{
	struct vine_task_spec sp[3] = {
		{ .cmd = "echo a", .cores = 1 }, { .cmd = "echo b", .cores = 1 },
		{ .cmd = "echo c", .cores = 1 },
	};
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	int64_t ids[3], again[3], other[3];
	char k1[VINE_ONCE_KEY_LEN + 1], k2[VINE_ONCE_KEY_LEN + 1];

	CHECK(st != NULL);
	if (!st)
		return;
	check_int(vine_once_key(k1), ==, 0);
	check_int(vine_once_key(k2), ==, 0);
	check_int(strlen(k1), ==, VINE_ONCE_KEY_LEN);
	check_str(k1, !=, k2);

	/* the same key twice: one effect, the same answer */
	check_int(vine_state_submit_once(st, k1, NULL, sp, 3, ids), ==, 0);
	check_int(total(st), ==, 3);
	check_int(vine_state_submit_once(st, k1, NULL, sp, 3, again), ==, 0);
	check_int(total(st), ==, 3);
	check_int(memcmp(ids, again, sizeof(ids)), ==, 0);
	check_int(one(path, "SELECT count(*) FROM once"), ==, 1);

	/* another key is another submit; no key is always a new one */
	check_int(vine_state_submit_once(st, k2, NULL, sp, 2, other), ==, 0);
	check_int(total(st), ==, 5);
	check_int(other[0], ==, ids[2] + 1);
	check_int(vine_state_submit(st, NULL, sp, 1, other), ==, 0);
	check_int(vine_state_submit(st, NULL, sp, 1, other), ==, 0);
	check_int(total(st), ==, 7);
	check_int(one(path, "SELECT count(*) FROM once"), ==, 2);

	/* a key reused for another number of tasks is refused, not guessed at */
	check_int(vine_state_submit_once(st, k1, NULL, sp, 2, other), ==, -1);
	CHECK(strstr(vine_errmsg(), "used for 3 tasks before, now for 2") != NULL);
	check_int(total(st), ==, 7);

	/* a failed submit records no key: the retry does it */
	sp[1].object = oid;
	check_int(vine_state_submit_once(st, "00112233445566778899aabbccddeeff", NULL, sp, 3,
		ids), ==, -1);
	CHECK(strstr(vine_errmsg(), "unknown object") != NULL);
	sp[1].object = NULL;
	check_int(vine_state_submit_once(st, "00112233445566778899aabbccddeeff", NULL, sp, 3,
		ids), ==, 0);
	check_int(total(st), ==, 10);

	/* bad keys */
	check_int(vine_state_submit_once(st, "short", NULL, sp, 1, ids), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not 32 lowercase hex digits") != NULL);
	check_int(vine_state_submit_once(st, "00112233445566778899AABBCCDDEEFF", NULL, sp, 1,
		ids), ==, -1);
	check_int(total(st), ==, 10);

	/* keys older than VINE_ONCE_KEEP are forgotten by the next keyed request */
	check_int(sql(path, "UPDATE once SET at = at - 2 * 86400 WHERE key != "
		"'00112233445566778899aabbccddeeff'"), ==, 0);
	check_int(vine_state_submit_once(st, "ffffffffffffffffffffffffffffffff", NULL, sp, 1,
		ids), ==, 0);
	check_int(one(path, "SELECT count(*) FROM once"), ==, 2);
	check_int(one(path, "SELECT count(*) FROM once WHERE key = "
		"'00112233445566778899aabbccddeeff'"), ==, 1);
	vine_state_close(st);
}

static void test_requeue(const char *path)
{
	struct vine_task_spec sp = { .cmd = "false", .cores = 1 };
	struct vine_worker_info w = { .node = "n", .host = "h", .pid = 1, .cores = 1,
				      .lease = 60 };
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	const char *key = "0123456789abcdef0123456789abcdef";
	struct vine_counts c;
	int64_t task, worker, *ids = NULL;
	size_t n = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	check_int(vine_state_submit(st, NULL, &sp, 1, &task), ==, 0);
	check_int(vine_state_register_worker(st, &w, &worker), ==, 0);
	fail_one(st, worker);
	check_int(vine_state_requeue_failed_once(st, key, 0, &ids, &n), ==, 0);
	check_int(n, ==, 1);
	if (CHECK(ids))
		check_int(ids[0], ==, task);
	free(ids);
	/* it fails again; the same key does nothing more but answers the same */
	fail_one(st, worker);
	check_int(vine_state_requeue_failed_once(st, key, 0, &ids, &n), ==, 0);
	check_int(n, ==, 1);
	if (CHECK(ids))
		check_int(ids[0], ==, task);
	free(ids);
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.n[VINE_TASK_FAILED], ==, 1);
	/* a new key requeues it */
	check_int(vine_state_requeue_failed_once(st, "1123456789abcdef0123456789abcdef", -1,
		&ids, &n), ==, 0);
	check_int(n, ==, 1);
	free(ids);
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.n[VINE_TASK_READY], ==, 1);
	/* an empty answer is recorded too */
	check_int(vine_state_requeue_failed_once(st, "2123456789abcdef0123456789abcdef", -1,
		&ids, &n), ==, 0);
	check_int(n, ==, 0);
	free(ids);
	fail_one(st, worker);
	check_int(vine_state_requeue_failed_once(st, "2123456789abcdef0123456789abcdef", -1,
		&ids, &n), ==, 0);
	check_int(n, ==, 0);
	free(ids);
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.n[VINE_TASK_FAILED], ==, 1);
	vine_state_close(st);
}

/* A new state at path with object oid (100 bytes) and a task using it. */
static struct vine_state *open_with_object(const char *path)
{
	struct vine_object obj = { .size = 100, .origin = "/data/env.tar.gz" };
	struct vine_task_spec sp = { .cmd = "true", .cores = 1, .object = oid };
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	int64_t task;

	CHECK(st != NULL);
	if (!st)
		return NULL;
	memcpy(obj.id, oid, sizeof(oid));
	check_int(vine_state_submit(st, &obj, &sp, 1, &task), ==, 0);
	return st;
}

static void test_transfer_end(const char *path)
{
	struct vine_state *st = open_with_object(path);
	const char *key = "3123456789abcdef0123456789abcdef";
	struct vine_object *objs = NULL;
	struct vine_xfer x;
	size_t nobjs = 0;

	if (!st)
		return;
	check_int(vine_state_transfer_begin(st, oid, "n1", 0, &x), ==, 0);
	check_int(x.kind, ==, VINE_XFER_ORIGIN);
	check_int(vine_state_transfer_end_once(st, key, x.id, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(vine_state_transfer_end_once(st, key, x.id, VINE_PEER_OK, 100, NULL), ==, 0);
	/* without the key, ending it again is the error it always was */
	check_int(vine_state_transfer_end(st, x.id, VINE_PEER_OK, 100, NULL), ==, -1);
	CHECK(strstr(vine_errmsg(), "has ended already") != NULL);
	check_int(vine_state_list_objects(st, &objs, &nobjs), ==, 0);
	check_int(nobjs, ==, 1);
	if (nobjs == 1) {
		check_int(objs[0].served_origin, ==, 1);
		check_int(objs[0].bytes_origin, ==, 100);
	}
	vine_state_free_objects(objs, nobjs);
	vine_state_free_xfer(&x);
	vine_state_close(st);
}

static void test_register(const char *path)
{
	struct vine_worker_info w = { .node = "n", .host = "h", .pid = 1, .cores = 2,
				      .lease = 60 };
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	const char *key = "5123456789abcdef0123456789abcdef";
	int64_t id, again = 0, other;

	CHECK(st != NULL);
	if (!st)
		return;
	/* the same key twice: one worker row, the same id */
	check_int(vine_state_register_worker_once(st, key, &w, &id), ==, 0);
	check_int(vine_state_register_worker_once(st, key, &w, &again), ==, 0);
	check_int(again, ==, id);
	check_int(one(path, "SELECT count(*) FROM workers"), ==, 1);
	check_int(one(path, "SELECT count(*) FROM once"), ==, 1);
	/* another key, or none, is another worker */
	check_int(vine_state_register_worker_once(st, "6123456789abcdef0123456789abcdef", &w,
		&other), ==, 0);
	check_int(other, ==, id + 1);
	check_int(vine_state_register_worker(st, &w, &other), ==, 0);
	check_int(other, ==, id + 2);
	check_int(vine_state_register_worker(st, &w, &other), ==, 0);
	check_int(other, ==, id + 3);
	check_int(one(path, "SELECT count(*) FROM workers"), ==, 4);
	/* a bad key or a bad worker records nothing */
	check_int(vine_state_register_worker_once(st, "5123", &w, &other), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not 32 lowercase hex digits") != NULL);
	w.cores = -1;
	check_int(vine_state_register_worker_once(st, "7123456789abcdef0123456789abcdef", &w,
		&other), ==, -1);
	check_int(one(path, "SELECT count(*) FROM workers"), ==, 4);
	check_int(one(path, "SELECT count(*) FROM once"), ==, 2);
	/* a damaged record is an error, not a guess */
	check_int(sql(path, "UPDATE once SET answer = '{\"x\":1}'"), ==, 0);
	w.cores = 2;
	check_int(vine_state_register_worker_once(st, key, &w, &other), ==, -1);
	CHECK(strstr(vine_errmsg(), "a recorded answer is damaged") != NULL);
	check_int(one(path, "SELECT count(*) FROM workers"), ==, 4);
	vine_state_close(st);
}

/* The active transfers to node dest. */
static long long active_to(const char *path, const char *dest)
{
	char *q = vine_xasprintf("SELECT count(*) FROM transfers WHERE dest = '%s'"
				 " AND state = 'active'", dest);
	long long n = one(path, q);

	free(q);
	return n;
}

static void test_transfer_begin(const char *path)
{
	struct vine_spread_settings set = { .k_peer = 1, .k_origin = 1, .relay = 0 };
	struct vine_state *st = open_with_object(path);
	const char *k1 = "8123456789abcdef0123456789abcdef";
	const char *k2 = "9123456789abcdef0123456789abcdef";
	const char *k3 = "a123456789abcdef0123456789abcdef";
	const char *unknown = "abababababababababababababababababababababababababababababababab";
	struct vine_xfer x, y, w;

	if (!st)
		return;
	check_int(vine_state_spread_settings(st, &set, NULL), ==, 0);

	/* an origin transfer: the same key twice is one transfer, one answer */
	check_int(vine_state_transfer_begin_once(st, k1, oid, "n1", 0, &x), ==, 0);
	check_int(x.kind, ==, VINE_XFER_ORIGIN);
	check_int(x.id, >, 0);
	check_int(vine_state_transfer_begin_once(st, k1, oid, "n1", 0, &y), ==, 0);
	check_int(y.kind, ==, VINE_XFER_ORIGIN);
	check_int(y.id, ==, x.id);
	CHECK(!y.node);
	if (CHECK(x.addr)) {
		if (CHECK(y.addr))
			check_str(x.addr, ==, y.addr);
	}
	check_int(one(path, "SELECT count(*) FROM transfers"), ==, 1);
	check_int(active_to(path, "n1"), ==, 1);
	vine_state_free_xfer(&y);

	/* the origin's one slot is taken: n2 waits, and the WAIT is not kept */
	check_int(vine_state_transfer_begin_once(st, k2, oid, "n2", 0, &w), ==, 0);
	check_int(w.kind, ==, VINE_XFER_WAIT);
	check_int(w.id, ==, 0);
	check_int(one(path, "SELECT count(*) FROM once WHERE key = "
		"'9123456789abcdef0123456789abcdef'"), ==, 0);
	check_int(one(path, "SELECT count(*) FROM transfers"), ==, 1);

	/* n1 is done and serves: the same key now gets a source, kept too */
	check_int(vine_state_transfer_end(st, x.id, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(vine_state_node_listen(st, "n1", "10.0.0.1:7000"), ==, 0);
	check_int(vine_state_transfer_begin_once(st, k2, oid, "n2", 0, &w), ==, 0);
	check_int(w.kind, ==, VINE_XFER_PEER);
	check_int(w.id, >, x.id);
	check_int(vine_state_transfer_begin_once(st, k2, oid, "n2", 0, &y), ==, 0);
	check_int(y.kind, ==, VINE_XFER_PEER);
	check_int(y.id, ==, w.id);
	if (CHECK(w.node)) {
		if (CHECK(y.node)) {
			check_str(w.node, ==, "n1");
			check_str(y.node, ==, "n1");
		}
	}
	if (CHECK(w.addr)) {
		if (CHECK(y.addr))
			check_str(y.addr, ==, "10.0.0.1:7000");
	}
	check_int(one(path, "SELECT count(*) FROM transfers"), ==, 2);
	check_int(active_to(path, "n2"), ==, 1);
	vine_state_free_xfer(&y);
	vine_state_free_xfer(&w);

	/* without a key, asking again is another transfer, as before */
	check_int(vine_state_transfer_begin(st, oid, "n3", 0, &y), ==, 0);
	check_int(y.kind, ==, VINE_XFER_ORIGIN);
	vine_state_free_xfer(&y);
	check_int(vine_state_transfer_begin(st, oid, "n3", 0, &y), ==, 0);
	check_int(y.kind, ==, VINE_XFER_WAIT);
	check_int(active_to(path, "n3"), ==, 1);

	/* a bad key, or a recorded answer that is damaged, is an error */
	check_int(vine_state_transfer_begin_once(st, "nothex", oid, "n4", 0, &y), ==, -1);
	check_int(sql(path, "UPDATE once SET answer = '[1' WHERE key = "
		"'8123456789abcdef0123456789abcdef'"), ==, 0);
	check_int(vine_state_transfer_begin_once(st, k1, oid, "n1", 0, &y), ==, -1);
	CHECK(strstr(vine_errmsg(), "a recorded answer is damaged") != NULL);
	check_int(sql(path,
		"UPDATE once SET answer = '{\"id\":1,\"node\":\"n9\",\"kind\":\"bogus\"}'"
		" WHERE key = '8123456789abcdef0123456789abcdef'"), ==, 0);
	check_int(vine_state_transfer_begin_once(st, k1, oid, "n1", 0, &y), ==, -1);
	CHECK(strstr(vine_errmsg(), "a recorded answer is damaged") != NULL);
	CHECK(!y.node);
	CHECK(!y.addr);
	check_int(one(path, "SELECT count(*) FROM transfers"), ==, 3);
	/* the key of an unknown object records nothing: the retry does it */
	check_int(vine_state_transfer_begin_once(st, k3, unknown, "n5", 0, &y), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not registered") != NULL);
	check_int(one(path, "SELECT count(*) FROM once WHERE key = "
		"'a123456789abcdef0123456789abcdef'"), ==, 0);
	vine_state_free_xfer(&x);
	vine_state_close(st);
}

static char notice[512];

static void take_notice(void *ctx, const char *msg)
{
	(void)ctx;
	snprintf(notice + strlen(notice), sizeof(notice) - strlen(notice), "%s\n", msg);
}

/* A version 2 state (this schema without the once table and the
 * transfers_origin index of version 3, and without what version 4, the
 * "ux" step, and version 5, the "faults" step, added) is upgraded, step by step, and says so. */
static void test_migrate(const char *path)
{
	struct vine_task_spec sp = { .cmd = "echo kept", .cores = 1 };
	struct vine_state *st = vine_state_open(path, VINE_STATE_CREATE);
	struct vine_task *t = NULL;
	int64_t ids[2];
	size_t n = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	check_int(vine_state_submit(st, NULL, &sp, 1, ids), ==, 0);
	vine_state_close(st);
	check_int(sql(path, "DROP TABLE once; DROP INDEX transfers_origin;"
		      " ALTER TABLE tasks DROP COLUMN delivered;"
		      " DROP TABLE node_faults; ALTER TABLE tasks DROP COLUMN faults;"
		      " DROP INDEX tasks_submission; DROP TABLE submissions;"
		      " ALTER TABLE tasks DROP COLUMN cwd; ALTER TABLE tasks DROP COLUMN memory;"
		      " ALTER TABLE tasks DROP COLUMN gpus; ALTER TABLE tasks DROP COLUMN submission;"
		      " ALTER TABLE workers DROP COLUMN memory; ALTER TABLE workers DROP COLUMN gpus;"
		      " PRAGMA user_version = 2"), ==, 0);
	check_int(one(path, "SELECT user_version FROM pragma_user_version"), ==, 2);

	vine_set_notice(take_notice, NULL);
	st = vine_state_open(path, 0);
	vine_set_notice(NULL, NULL);
	CHECK(strstr(notice, "upgraded schema version 2 to 3") != NULL);
	CHECK(strstr(notice, "upgraded schema version 3 to 4") != NULL);
	CHECK(strstr(notice, "upgraded schema version 4 to 5") != NULL);
	CHECK(strstr(notice, "upgraded schema version 5 to 6") != NULL);
	CHECK(st != NULL);
	if (!st) {
		fprintf(stderr, "open: %s\n", vine_errmsg());
		return;
	}
	check_int(one(path, "SELECT user_version FROM pragma_user_version"), ==, VINE_STATE_SCHEMA);
	check_int(one(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
		      " ('once', 'once_at', 'transfers_origin', 'submissions', 'tasks_submission',"
		      " 'node_faults')"),
		  ==, 6);
	check_int(one(path, "SELECT count(*) FROM pragma_table_info('tasks') WHERE name IN"
		      " ('cwd', 'memory', 'gpus', 'submission', 'faults', 'delivered')"), ==, 6);
	/* attempts may end as cancelled, and as fault, now */
	check_int(one(path, "SELECT count(*) FROM sqlite_master WHERE name = 'attempts'"
		      " AND sql LIKE '%cancelled%' AND sql LIKE '%fault%'"), ==, 1);
	check_int(vine_state_list_tasks(st, 0, 10, &t, &n), ==, 0);
	check_int(n, ==, 1);
	if (n == 1)
		check_str(t[0].cmd, ==, "echo kept");
	vine_state_free_tasks(t, n);
	check_int(vine_state_submit_once(st, "4123456789abcdef0123456789abcdef", NULL, &sp, 1,
		&ids[1]), ==, 0);
	check_int(vine_state_submit_once(st, "4123456789abcdef0123456789abcdef", NULL, &sp, 1,
		&ids[1]), ==, 0);
	check_int(total(st), ==, 2);
	check_int(ids[1], ==, ids[0] + 1);
	vine_state_close(st);

	/* a version it does not know is still refused, and left alone */
	check_int(sql(path, "PRAGMA user_version = 1"), ==, 0);
	CHECK(vine_state_open(path, 0) == NULL);
	CHECK(strstr(vine_errmsg(), "has schema version 1, but this program understands "
			"version") != NULL);
	check_int(one(path, "SELECT user_version FROM pragma_user_version"), ==, 1);
	/* and a newer one is refused naming both versions */
	check_int(sql(path, "PRAGMA user_version = 99"), ==, 0);
	CHECK(vine_state_open(path, 0) == NULL);
	CHECK(strstr(vine_errmsg(), "has schema version 99, newer than this program's version") !=
	      NULL);
}

int main(void)
{
	static const struct {
		const char *file;
		void (*fn)(const char *path);
	} tests[] = {
		{ "submit.db", test_submit }, { "requeue.db", test_requeue },
		{ "xfer.db", test_transfer_end }, { "migrate.db", test_migrate },
		{ "register.db", test_register }, { "begin.db", test_transfer_begin },
	};

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		char *p = vine_xasprintf("%s/%s", dir, tests[i].file);
		tests[i].fn(p);
		free(p);
	}
	vine_rm_rf(dir);
	return T_END();
}
