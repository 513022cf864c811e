/*
 * test-state.c - the state operations on the local backend: submit,
 * claim, finish, leases, retries, result files, and the refusals.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state/state-impl.h"
#include "t.h"
#include "util/util.h"

static char dir[] = "/tmp/vine-test-state.XXXXXX";

static struct vine_state *fresh(const char *name)
{
	char *p = vine_xasprintf("%s/%s", dir, name);
	struct vine_state *st = vine_state_open(p, VINE_STATE_CREATE);

	if (!st)
		fprintf(stderr, "open: %s\n", vine_errmsg());
	free(p);
	return st;
}

static int64_t worker(struct vine_state *st, const char *node, int cores, double lease)
{
	struct vine_worker_info w = { .node = node, .host = "h", .pid = 1, .cores = cores,
				      .lease = lease };
	int64_t id = -1;

	check_int(vine_state_register_worker(st, &w, &id), ==, 0);
	return id;
}

static struct vine_task_spec spec(const char *cmd)
{
	struct vine_task_spec s = { .cmd = cmd, .cores = 1 };
	return s;
}

static int state_of(struct vine_state *st, int64_t id)
{
	struct vine_task *t;
	size_t n;
	int s = -1;

	if (vine_state_list_tasks(st, id - 1, 1, &t, &n) == 0 && n == 1 && t->id == id)
		s = (int)t->state;
	vine_state_free_tasks(t, n);
	return s;
}

static void nap(double s)
{
	struct timespec ts = { 0, (long)(s * 1e9) };
	nanosleep(&ts, NULL);
}

static void test_open(void)
{
	struct vine_state *st;
	char *p;

	/* the remote backend (tests/42-state-remote.bats) */
	CHECK(vine_state_open("ssh://nonexistent.invalid/x.db", 0) == NULL);
	CHECK(strstr(vine_errmsg(), "cannot resolve 'nonexistent.invalid'") != NULL);
	CHECK(vine_state_open("http://host/x.db", 0) == NULL);
	CHECK(strstr(vine_errmsg(), "unknown URL scheme") != NULL);
	CHECK(!vine_state_missing());
	p = vine_xasprintf("%s/missing.db", dir);
	CHECK(vine_state_open(p, 0) == NULL);
	check_int(access(p, F_OK), <, 0);
	/* only a state not made yet is "missing" (a worker waits for it) */
	CHECK(vine_state_missing());
	free(p);
	p = vine_xasprintf("%s/no-such-dir/x.db", dir);
	CHECK(vine_state_open(p, 0) == NULL);
	CHECK(!vine_state_missing());
	free(p);
	/* an empty file: vine-submit has only begun making it */
	p = vine_xasprintf("%s/begun.db", dir);
	check_int(vine_write_file_atomic(p, "", 0, 0600), ==, 0);
	CHECK(vine_state_open(p, 0) == NULL);
	check_str(strstr(vine_errmsg(), "is empty"), ==, "is empty");
	CHECK(vine_state_missing());
	free(p);

	/* a file that is not a database */
	p = vine_xasprintf("%s/junk.db", dir);
	check_int(vine_write_file_atomic(p, "not sqlite at all, not at all, no.", 34, 0644), ==, 0);
	CHECK(vine_state_open(p, VINE_STATE_CREATE) == NULL);
	CHECK(strstr(vine_errmsg(), "not a database") != NULL);
	free(p);

	/* create, reopen */
	st = fresh("a.db");
	CHECK(st != NULL);
	vine_state_close(st);
	st = fresh("a.db");
	CHECK(st != NULL);
	vine_state_close(st);
}

static void test_submit(void)
{
	struct vine_state *st = fresh("submit.db");
	struct vine_task_spec s[3] = { spec("a"), spec("b"), spec("c") };
	struct vine_object obj = { .size = 10, .origin = "/x/env.tar.gz" };
	struct vine_counts c;
	int64_t ids[3];

	check_int(vine_state_submit(st, NULL, s, 3, ids), ==, 0);
	check_int(ids[0], ==, 1);
	check_int(ids[1], ==, 2);
	check_int(ids[2], ==, 3);

	/* a bad spec refuses the whole batch */
	s[1].cores = 0;
	check_int(vine_state_submit(st, NULL, s, 3, ids), <, 0);
	CHECK(strstr(vine_errmsg(), "task 2") != NULL);
	s[1].cores = 1;
	s[2].timeout = -1;
	check_int(vine_state_submit(st, NULL, s, 3, ids), <, 0);
	s[2].timeout = 0;
	s[0].cmd = "";
	check_int(vine_state_submit(st, NULL, s, 3, ids), <, 0);
	s[0].cmd = "a";
	/* an unknown object refuses the batch too */
	s[2].object = "0000000000000000000000000000000000000000000000000000000000000000";
	check_int(vine_state_submit(st, NULL, s, 3, ids), <, 0);
	CHECK(strstr(vine_errmsg(), "task 3: unknown object") != NULL);
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.total, ==, 3);

	/* registered with the batch; the same id with another size is refused */
	memset(obj.id, 'a', VINE_ID_LEN);
	obj.id[VINE_ID_LEN] = '\0';
	s[2].object = obj.id;
	check_int(vine_state_submit(st, &obj, s, 3, ids), ==, 0);
	check_int(ids[0], ==, 4);
	obj.size = 11;
	check_int(vine_state_submit(st, &obj, s, 1, ids), <, 0);
	CHECK(strstr(vine_errmsg(), "size") != NULL);
	obj.origin = "relative/path";
	obj.size = 10;
	check_int(vine_state_submit(st, &obj, s, 1, ids), <, 0);

	struct vine_object *objs;
	size_t n;
	check_int(vine_state_list_objects(st, &objs, &n), ==, 0);
	check_int(n, ==, 1);
	check_int(n, ==, 1);
	check_int(objs[0].size, ==, 10);
	check_str(objs[0].origin, ==, "/x/env.tar.gz");
	check_int(objs[0].nreplicas, ==, 0);
	check_int(objs[0].served_origin, ==, 0);
	vine_state_free_objects(objs, n);
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.total, ==, 6);
	check_int(c.n[VINE_TASK_READY], ==, 6);
	vine_state_close(st);
}

static void test_claim_finish(void)
{
	struct vine_state *st = fresh("claim.db");
	struct vine_task_spec s[4] = { spec("one"), spec("two"), spec("three"), spec("four") };
	struct vine_claim *c;
	size_t n;
	int64_t ids[4], w1, w2;
	int more, acc[2];

	s[0].cores = 3; /* too big for a 2-core worker */
	check_int(vine_state_submit(st, NULL, s, 4, ids), ==, 0);
	w1 = worker(st, "n1", 2, 60);
	w2 = worker(st, "n2", 4, 60);

	/* oldest first, passing over what does not fit */
	check_int(vine_state_claim(st, w1, 2, 2, 8, &c, &n, &more), ==, 0);
	check_int(n, ==, 2);
	check_int(c[0].task, ==, 2);
	check_int(c[1].task, ==, 3);
	check_int(c[0].attempt, ==, 1);
	check_int(n, ==, 2);
	check_str(c[0].cmd, ==, "two");
	CHECK(c[0].object == NULL);
	check_int(more, ==, 1); /* task 4 fits this worker later; task 1 never */
	vine_state_free_claims(c, n);
	check_int(vine_state_claim(st, w1, 0, 2, 8, &c, &n, &more), ==, 0);
	check_int(n, ==, 0);
	check_int(state_of(st, 2), ==, VINE_TASK_RUNNING);

	/* the other worker cannot finish what w1 holds; w1 can, once */
	struct vine_result r[2] = {
		{ .task = 2, .attempt = 1, .outcome = VINE_OUT_EXITED, .started = 1, .ended = 2 },
		{ .task = 3, .attempt = 1, .outcome = VINE_OUT_EXITED, .exit_code = 4 },
	};
	check_int(vine_state_finish(st, w2, r, 2, acc), ==, 0);
	check_int(acc[0], ==, 0);
	check_int(acc[1], ==, 0);
	check_int(vine_state_finish(st, w1, r, 2, acc), ==, 0);
	check_int(acc[0], ==, 1);
	check_int(acc[1], ==, 1);
	check_int(state_of(st, 2), ==, VINE_TASK_DONE);
	check_int(state_of(st, 3), ==, VINE_TASK_FAILED);
	check_int(vine_state_finish(st, w1, r, 1, acc), ==, 0);
	check_int(acc[0], ==, 0); /* never twice */

	/* finish and claim in one go */
	check_int(vine_state_finish_claim(st, w2, NULL, 0, NULL, 4, 4, 4, &c, &n, &more), ==, 0);
	check_int(n, ==, 2);
	check_int(c[0].task, ==, 1);
	check_int(c[1].task, ==, 4);
	check_int(more, ==, 0);
	vine_state_free_claims(c, n);
	struct vine_result r2 = { .task = 1, .attempt = 1, .outcome = VINE_OUT_EXITED };
	check_int(vine_state_finish_claim(st, w2, &r2, 1, acc, 1, 4, 1, &c, &n, &more), ==, 0);
	check_int(acc[0], ==, 1);
	check_int(n, ==, 0);

	/* a worker cannot report "lost" or "running" */
	r2.outcome = VINE_OUT_LOST;
	check_int(vine_state_finish(st, w2, &r2, 1, acc), <, 0);

	/* leaving hands back what it holds */
	check_int(vine_state_unregister_worker(st, w2), ==, 0);
	check_int(state_of(st, 4), ==, VINE_TASK_READY);
	check_int(vine_state_claim(st, w2, 4, 4, 4, &c, &n, &more), <, 0);
	CHECK(strstr(vine_errmsg(), "has left") != NULL);

	struct vine_attempt *a;
	check_int(vine_state_list_attempts(st, 4, &a, &n), ==, 0);
	check_int(n, ==, 1);
	check_int(a[0].outcome, ==, VINE_OUT_RELEASED);
	check_str(a[0].node, ==, "n2");
	vine_state_free_attempts(a, n);
	check_int(vine_state_list_attempts(st, 99, &a, &n), <, 0);
	vine_state_close(st);
}

static void test_retries_and_leases(void)
{
	struct vine_state *st = fresh("retry.db");
	struct vine_task_spec s = spec("flaky");
	struct vine_claim *c;
	size_t n;
	int64_t id, w1, w2;
	int more, acc, stale, reaped;

	s.retries = 1;
	check_int(vine_state_submit(st, NULL, &s, 1, &id), ==, 0);
	w1 = worker(st, "n1", 1, 60);
	check_int(vine_state_claim(st, w1, 1, 1, 1, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	vine_state_free_claims(c, n);
	struct vine_result r = { .task = id, .attempt = 1, .outcome = VINE_OUT_SIGNALED, .signal = 9 };
	check_int(vine_state_finish(st, w1, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 1);
	check_int(state_of(st, id), ==, VINE_TASK_READY); /* one retry left */
	check_int(vine_state_claim(st, w1, 1, 1, 1, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	check_int(c[0].attempt, ==, 2);
	vine_state_free_claims(c, n);
	r.attempt = 2;
	r.outcome = VINE_OUT_TIMEOUT;
	r.signal = 15;
	check_int(vine_state_finish(st, w1, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 1);
	check_int(state_of(st, id), ==, VINE_TASK_FAILED);

	/* requeue failed tasks, with a new retry budget */
	int64_t *ids;
	check_int(vine_state_requeue_failed(st, 0, &ids, &n), ==, 0);
	check_int(n, ==, 1);
	check_int(ids[0], ==, id);
	free(ids);
	check_int(state_of(st, id), ==, VINE_TASK_READY);
	check_int(vine_state_requeue_failed(st, -1, &ids, &n), ==, 0);
	check_int(n, ==, 0);
	free(ids);

	/* a lease that expires: the task goes back, the late result is refused */
	int64_t w3 = worker(st, "short", 1, 0.05);
	check_int(vine_state_claim(st, w3, 1, 1, 1, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	check_int(c[0].attempt, ==, 3);
	vine_state_free_claims(c, n);
	nap(0.12);
	w2 = worker(st, "n2", 1, 60);
	check_int(vine_state_reap(st, &reaped), ==, 0);
	check_int(reaped, ==, 1);
	check_int(state_of(st, id), ==, VINE_TASK_READY);
	struct vine_attempt_ref ref = { id, 3 };
	check_int(vine_state_heartbeat(st, w3, &ref, 1, &stale), ==, 0);
	check_int(stale, ==, 1);
	check_int(vine_state_claim(st, w2, 1, 1, 1, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	check_int(c[0].attempt, ==, 4);
	vine_state_free_claims(c, n);
	int pipefd[2];
	check_int(pipe2(pipefd, O_NONBLOCK), ==, 0); /* a read too many fails, not hangs */
	check_int(write(pipefd[1], "late", 4), ==, 4);
	check_int(vine_state_put_file(st, w3, id, 3, "stdout", pipefd[0], 4), ==, 1);
	r.attempt = 3;
	r.outcome = VINE_OUT_EXITED;
	r.exit_code = 0;
	check_int(vine_state_finish(st, w3, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 0);
	check_int(state_of(st, id), ==, VINE_TASK_RUNNING);

	/* the current attempt's files and result are taken */
	check_int(vine_state_put_file(st, w2, id, 4, "stdout", pipefd[0], 4), ==, 0);
	check_int(write(pipefd[1], "abc", 3), ==, 3);
	check_int(vine_state_put_file(st, w2, id, 4, "out/sub/f.txt", pipefd[0], 3), ==, 0);
	check_int(write(pipefd[1], "ab", 2), ==, 2);
	close(pipefd[1]);
	check_int(vine_state_put_file(st, w2, id, 4, "out/short", pipefd[0], 3), <, 0);
	CHECK(strstr(vine_errmsg(), "got 2 of 3") != NULL);
	close(pipefd[0]);
	check_int(vine_state_put_file(st, w2, id, 4, "out/../escape", 0, 0), <, 0);
	r.attempt = 4;
	check_int(vine_state_finish(st, w2, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 1);
	check_int(state_of(st, id), ==, VINE_TASK_DONE);

	struct vine_file *f;
	check_int(vine_state_list_files(st, id, 4, &f, &n), ==, 0);
	check_int(n, ==, 2);
	check_int(n, ==, 2);
	check_str(f[0].name, ==, "out/sub/f.txt");
	check_int(f[0].size, ==, 3);
	check_str(f[1].name, ==, "stdout");
	check_int(f[1].size, ==, 4);
	vine_state_free_files(f, n);
	char *p = vine_xasprintf("%s/got", dir), *data;
	size_t len;
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	check_int(vine_state_get_file(st, id, 4, "stdout", fd), ==, 0);
	close(fd);
	check_int(vine_read_file(p, 100, &data, &len), ==, 0);
	check_int(len, ==, 4);
	CHECK(!memcmp(data, "late", 4));
	free(data);
	free(p);
	check_int(vine_state_get_file(st, id, 3, "stdout", 1), <,
		0); /* the stale one kept nothing */

	struct vine_attempt *a;
	check_int(vine_state_list_attempts(st, id, &a, &n), ==, 0);
	check_int(n, ==, 4);
	check_int(n, ==, 4);
	check_int(a[0].outcome, ==, VINE_OUT_SIGNALED);
	check_int(a[0].signal, ==, 9);
	check_int(n, ==, 4);
	check_int(a[1].outcome, ==, VINE_OUT_TIMEOUT);
	check_int(a[2].outcome, ==, VINE_OUT_LOST);
	check_int(n, ==, 4);
	check_int(a[3].outcome, ==, VINE_OUT_EXITED);
	check_int(a[3].received, ==, 7);
	vine_state_free_attempts(a, n);

	/* workers: the lost one came back alive with its heartbeat */
	struct vine_worker *w;
	check_int(vine_state_list_workers(st, &w, &n), ==, 0);
	check_int(n, ==, 3);
	check_int(n, ==, 3);
	check_str(w[1].state, ==, "alive");
	check_str(w[1].node, ==, "short");
	check_int(n, ==, 3);
	check_int(w[2].nrunning, ==, 0);
	check_int(w[2].cores, ==, 1);
	vine_state_free_workers(w, n);
	vine_state_close(st);
}

static void test_lost_limit(void)
{
	struct vine_state *st = fresh("lost.db");
	struct vine_task_spec s = spec("kills its node");
	struct vine_claim *c;
	size_t n;
	int64_t id;
	int more;

	check_int(vine_state_submit(st, NULL, &s, 1, &id), ==, 0);
	for (int i = 0; i <= VINE_LOST_EXTRA; i++) {
		int64_t w = worker(st, "doomed", 1, 0.02);
		check_int(vine_state_claim(st, w, 1, 1, 1, &c, &n, &more), ==, 0);
		check_int(n, ==, 1);
		vine_state_free_claims(c, n);
		nap(0.05);
		check_int(vine_state_reap(st, NULL), ==, 0);
	}
	check_int(state_of(st, id), ==, VINE_TASK_FAILED);
	vine_state_close(st);
}

static void test_names(void)
{
	CHECK(vine_result_name_valid("stdout"));
	CHECK(vine_result_name_valid("stderr"));
	CHECK(vine_result_name_valid("out/a"));
	CHECK(vine_result_name_valid("out/a/b.c"));
	CHECK(!vine_result_name_valid("out/"));
	CHECK(!vine_result_name_valid("out/a//b"));
	CHECK(!vine_result_name_valid("out/./a"));
	CHECK(!vine_result_name_valid("out/a/.."));
	CHECK(!vine_result_name_valid("/etc/passwd"));
	CHECK(!vine_result_name_valid("cmd"));
	check_int(vine_task_state_parse("failed"), ==, VINE_TASK_FAILED);
	check_int(vine_outcome_parse("released"), ==, VINE_OUT_RELEASED);
	check_int(vine_outcome_parse("bogus"), ==, -1);
}

/* A task run by w that stores stdout and out/r, and ends with exit code. */
static int64_t run_one(struct vine_state *st, int64_t w, int code)
{
	struct vine_task_spec sp = spec("x");
	struct vine_result r = { .outcome = VINE_OUT_EXITED, .exit_code = code };
	struct vine_claim *c = NULL;
	size_t n = 0;
	int64_t id = -1;
	int acc = 0, more, fds[2];

	check_int(vine_state_submit(st, NULL, &sp, 1, &id), ==, 0);
	check_int(vine_state_claim(st, w, 1, 1, 1, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	if (n == 1) {
		r.task = c[0].task;
		r.attempt = c[0].attempt;
	}
	vine_state_free_claims(c, n);
	check_int(pipe(fds), ==, 0);
	check_int(write(fds[1], "out\nres", 7), ==, 7);
	close(fds[1]);
	check_int(vine_state_put_file(st, w, id, r.attempt, "stdout", fds[0], 4), ==, 0);
	check_int(vine_state_put_file(st, w, id, r.attempt, "out/r", fds[0], 3), ==, 0);
	close(fds[0]);
	check_int(vine_state_finish(st, w, &r, 1, &acc), ==, 0);
	check_int(acc, ==, 1);
	return id;
}

static double delivered_at(struct vine_state *st, int64_t id)
{
	struct vine_task *t;
	size_t n;
	double d = -1;

	if (vine_state_list_tasks(st, id - 1, 1, &t, &n) == 0 && n == 1 && t->id == id)
		d = t->delivered;
	vine_state_free_tasks(t, n);
	return d;
}

/* results taken: the files go, the record stays, a second time is a no-op */
static void test_deliver(void)
{
	struct vine_state *st = fresh("deliver.db");
	struct vine_task_spec sp = spec("waiting");
	struct vine_file *f;
	struct vine_counts c;
	size_t n, done = 99;
	int64_t w = worker(st, "n1", 1, 60), a, b, ready, ids[3];
	char *p;

	a = run_one(st, w, 0);
	b = run_one(st, w, 3);   /* failed: its results go too */
	check_int(state_of(st, b), ==, VINE_TASK_FAILED);
	check_int(vine_state_submit(st, NULL, &sp, 1, &ready), ==, 0);
	p = vine_xasprintf("%s/deliver.db.results/%lld/1/out/r", dir, (long long)a);
	check_int(access(p, F_OK), ==, 0);
	CHECK(delivered_at(st, a) == 0);

	/* a task not finished, or unknown: an error, and nothing changes */
	ids[0] = a;
	ids[1] = ready;
	check_int(vine_state_deliver(st, ids, 2, &done), ==, -1);
	CHECK(strstr(vine_errmsg(), "is ready, not finished") != NULL);
	ids[1] = 999;
	check_int(vine_state_deliver(st, ids, 2, &done), ==, -1);
	CHECK(strstr(vine_errmsg(), "no task 999") != NULL);
	ids[1] = 0;
	check_int(vine_state_deliver(st, ids, 2, &done), ==, -1);
	CHECK(strstr(vine_errmsg(), "task id 0 is not valid") != NULL);
	CHECK(delivered_at(st, a) == 0);
	check_int(access(p, F_OK), ==, 0);

	ids[1] = b;
	check_int(vine_state_deliver(st, ids, 2, &done), ==, 0);
	check_int(done, ==, 2);
	CHECK(delivered_at(st, a) > 0);
	CHECK(delivered_at(st, b) > 0);
	CHECK(delivered_at(st, ready) == 0);
	check_int(vine_state_list_files(st, a, 1, &f, &n), ==, 0);
	check_int(n, ==, 0);
	vine_state_free_files(f, n);
	check_int(access(p, F_OK), <, 0);
	free(p);
	p = vine_xasprintf("%s/deliver.db.results/%lld", dir, (long long)b);
	check_int(access(p, F_OK), <, 0);
	free(p);
	/* still done and failed, as vine-status counts them */
	check_int(vine_state_counts(st, &c), ==, 0);
	check_int(c.n[VINE_TASK_DONE], ==, 1);
	check_int(c.n[VINE_TASK_FAILED], ==, 1);
	check_int(c.n[VINE_TASK_READY], ==, 1);
	/* again: nothing more to drop */
	check_int(vine_state_deliver(st, ids, 2, &done), ==, 0);
	check_int(done, ==, 0);
	check_int(vine_state_deliver(st, ids, 0, &done), ==, 0);
	/* a failed task sent back runs again with new results to deliver */
	int64_t *back = NULL;
	check_int(vine_state_requeue_failed(st, -1, &back, &n), ==, 0);
	check_int(n, ==, 1);
	free(back);
	CHECK(delivered_at(st, b) == 0);
	vine_state_close(st);
}

/* a backend without an op: an error naming it, not a crash */
static void test_missing_op(void)
{
	static const struct vine_state_ops none = { 0 };
	char url[] = "fake://x";
	struct vine_state st = { &none, url };
	struct vine_transfer *t = NULL;
	size_t n = 0;

	check_int(vine_state_list_transfers(&st, &t, &n), ==, -1);
	check_str(vine_errmsg(), ==,
		"state 'fake://x': this backend does not support list_transfers");
	check_int(vine_state_transfer_progress(&st, 1, 5), ==, -1);
	check_str(vine_errmsg(), ==,
		"state 'fake://x': this backend does not support transfer_progress");
}

/* a claim's max is bounded by the free cores, whatever the request says */
static void test_claim_bounds(void)
{
	struct vine_state *st = fresh("bounds.db");
	struct vine_task_spec s[3] = { spec("a"), spec("b"), spec("c") };
	struct vine_claim *c;
	size_t n;
	int64_t ids[3], w;
	int more;

	CHECK(vine_state_submit(st, NULL, s, 3, ids) == 0);
	w = worker(st, "n1", 2, 60);
	/* was calloc(2^63 - 1, sizeof(struct vine_claim)): an abort */
	CHECK(vine_state_claim(st, w, 2, 2, (size_t)INT64_MAX, &c, &n, &more) == 0);
	check_int(n, ==, 2);
	check_int(more, ==, 1);
	vine_state_free_claims(c, n);
	check_int(vine_state_claim(st, w, 1, 1, SIZE_MAX, &c, &n, &more), ==, 0);
	check_int(n, ==, 1);
	vine_state_free_claims(c, n);
	/* core counts past VINE_CORES_MAX are refused */
	CHECK(vine_state_claim(st, w, INT_MAX, INT_MAX, 1, &c, &n, &more) < 0);
	CHECK(strstr(vine_errmsg(), "bad core counts") != NULL);
	vine_state_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_open();
	test_missing_op();
	test_submit();
	test_claim_finish();
	test_claim_bounds();
	test_retries_and_leases();
	test_lost_limit();
	test_names();
	test_deliver();
	vine_rm_rf(dir);
	return T_END();
}
