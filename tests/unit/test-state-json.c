/*
 * test-state-json - the state's structs survive JSON both ways, every
 * field of them; bad members are refused naming the field.
 */
#include <stdlib.h>
#include <string.h>

#include "state/state.h"
#include "state/state-json.h"
#include "util/util.h"
#include "t.h"

/* encode, serialize, parse, decode: what the protocol does */
static json_t *trip(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_t *back = json_loads(s, JSON_DECODE_ANY, NULL);

	free(s);
	json_decref(v);
	return back;
}

static void test_task(void)
{
	struct vine_task t = { 0 }, u;
	json_t *j;

	t.id = 1LL << 40;
	t.cmd = "printf 'caf\351' | wc -c";
	t.object = NULL;
	t.tag = "tag";
	t.cores = 3;
	t.retries = 2;
	t.timeout = 1.5;
	t.submitted = 1795620490.5517559;
	t.state = VINE_TASK_FAILED;
	t.attempts = 4;
	t.failures = 3;
	t.losses = 1;
	t.last.task = t.id;
	t.last.attempt = 4;
	t.last.worker = 9;
	t.last.node = "n1";
	t.last.claimed = 0.1;
	t.last.started = 0.2;
	t.last.ended = 0.30000000000000004;
	t.last.outcome = VINE_OUT_SIGNALED;
	t.last.exit_code = -1;
	t.last.signal = 9;
	t.last.message = NULL;
	t.last.received = 123456789012LL;
	j = trip(vj_encode(&vj_task, &t));
	check_int(vj_decode(&vj_task, j, &u), ==, 0);
	check_int(u.id, ==, t.id);
	check_str(u.cmd, ==, t.cmd);
	CHECK(u.object == NULL);
	check_str(u.tag, ==, "tag");
	check_int(u.cores, ==, 3);
	check_int(u.retries, ==, 2);
	check_dbl(u.timeout, ==, 1.5);
	check_dbl(u.submitted, ==, t.submitted);
	check_int(u.state, ==, VINE_TASK_FAILED);
	check_int(u.attempts, ==, 4);
	check_int(u.failures, ==, 3);
	check_int(u.losses, ==, 1);
	check_int(u.last.task, ==, t.id);
	check_int(u.last.attempt, ==, 4);
	check_int(u.last.worker, ==, 9);
	check_str(u.last.node, ==, "n1");
	check_dbl(u.last.claimed, ==, 0.1);
	check_dbl(u.last.started, ==, 0.2);
	check_dbl(u.last.ended, ==, t.last.ended);
	check_int(u.last.outcome, ==, VINE_OUT_SIGNALED);
	check_int(u.last.exit_code, ==, -1);
	check_int(u.last.signal, ==, 9);
	CHECK(u.last.message == NULL);
	check_int(u.last.received, ==, 123456789012LL);
	vj_release(&vj_task, &u);
	json_decref(j);
}

static void test_objects_workers(void)
{
	struct vine_replica reps[2] = { { "n1", 10, 1 }, { "n2", 5, 0 } };
	struct vine_object o = { .size = 10, .origin = "/shared/env.tar.gz", .served_origin = 1,
				 .served_peer = 2, .replicas = reps, .nreplicas = 2 };
	struct vine_object *back;
	int64_t running[3] = { 4, 5, 1LL << 50 };
	struct vine_worker w = { 7, "node", "host", NULL, 1234, 16, "alive", 1.0, 2.0, 3.0,
				 running, 3 };
	struct vine_worker *wb;
	size_t n;
	json_t *j;

	memset(o.id, 'a', VINE_ID_LEN);
	o.id[VINE_ID_LEN] = '\0';
	j = trip(vj_encode_array(&vj_object, &o, 1));
	check_int(vj_decode_array(&vj_object, j, (void **)&back, &n), ==, 0);
	check_int(n, ==, 1);
	check_str(back[0].id, ==, o.id);
	check_int(back[0].size, ==, 10);
	check_int(back[0].served_origin, ==, 1);
	check_int(back[0].served_peer, ==, 2);
	check_str(back[0].origin, ==, o.origin);
	check_int(back[0].nreplicas, ==, 2);
	check_str(back[0].replicas[1].node, ==, "n2");
	check_int(back[0].replicas[0].complete, ==, 1);
	check_int(back[0].replicas[1].bytes, ==, 5);
	/* what the backend returns, the state's own free function releases */
	vine_state_free_objects(back, n);
	json_decref(j);

	j = trip(vj_encode_array(&vj_worker, &w, 1));
	check_int(vj_decode_array(&vj_worker, j, (void **)&wb, &n), ==, 0);
	check_int(n, ==, 1);
	check_int(wb[0].id, ==, 7);
	check_int(wb[0].pid, ==, 1234);
	check_int(wb[0].cores, ==, 16);
	CHECK(wb[0].listen == NULL);
	check_str(wb[0].state, ==, "alive");
	check_int(wb[0].nrunning, ==, 3);
	CHECK(wb[0].running[2] == 1LL << 50);
	check_dbl(wb[0].expires, ==, 3.0);
	vine_state_free_workers(wb, n);
	json_decref(j);

	/* an empty list */
	j = trip(vj_encode_array(&vj_worker, NULL, 0));
	check_int(vj_decode_array(&vj_worker, j, (void **)&wb, &n), ==, 0);
	check_int(n, ==, 0);
	vine_state_free_workers(wb, n);
	json_decref(j);
}

static void test_strings(void)
{
	const char *odd = "out/\377\376name";
	json_t *j = vj_string(odd);
	char *back;

	/* not UTF-8: carried as base64 */
	CHECK(json_is_object(j));
	check_int(vj_string_value(j, &back), ==, 0);
	check_str(back, ==, odd);
	free(back);
	json_decref(j);
	for (size_t len = 0; len < 5; len++) {
		char s[8] = "\377abcd";

		s[len] = '\0';
		j = trip(vj_string(s));
		check_int(vj_string_value(j, &back), ==, 0);
		check_str(back, ==, s);
		free(back);
		json_decref(j);
	}
	j = json_stringn("a\0b", 3);
	check_int(vj_string_value(j, &back), ==, -1);
	check_str(vine_errmsg(), ==, "a string with a NUL byte");
	json_decref(j);
	j = json_pack("{ss}", "base64", "YQBi");   /* "a\0b" */
	check_int(vj_string_value(j, &back), ==, -1);
	json_decref(j);
	j = json_pack("{ss}", "base64", "!!!");
	check_int(vj_string_value(j, &back), ==, -1);
	json_decref(j);
	j = json_integer(3);
	check_int(vj_string_value(j, &back), ==, -1);
	json_decref(j);
}

/* the spreading structs: settings, a transfer's source, transfers */
static void test_spreading(void)
{
	struct vine_spread_settings set = { 7, 3, 0 }, set2;
	struct vine_xfer x = { 42, VINE_XFER_PEER, "n\377ode", "10.0.0.1:7000", 0.5 }, x2;
	struct vine_transfer t[2] = {
		{ 9, "ab", "n1", "h:1", "n2", "done", "ok", 5, 100, 1.25, 2.5 },
		{ 10, "cd", NULL, "/data/o", "n3", "active", NULL, 0, 7, 3.0, 4.0 },
	}, *u = NULL;
	struct vine_object o = { .size = 9, .bytes_origin = 11, .bytes_peer = 12, .xfer_active = 2,
				 .xfer_failed = 1 }, o2;
	size_t n = 0;
	json_t *j;

	j = trip(vj_encode(&vj_spread_settings, &set));
	check_int(vj_decode(&vj_spread_settings, j, &set2), ==, 0);
	check_int(set2.k_peer, ==, 7);
	check_int(set2.k_origin, ==, 3);
	check_int(set2.relay, ==, 0);
	json_decref(j);

	for (int k = VINE_XFER_WAIT; k <= VINE_XFER_ORIGIN; k++) {
		x.kind = (enum vine_xfer_kind)k;
		j = trip(vj_encode(&vj_xfer, &x));
		check_int(vj_decode(&vj_xfer, j, &x2), ==, 0);
		check_int(x2.id, ==, 42);
		check_int(x2.kind, ==, (enum vine_xfer_kind)k);
		check_dbl(x2.wait, ==, 0.5);
		check_str(x2.node, ==, "n\377ode");
		check_str(x2.addr, ==, "10.0.0.1:7000");
		vine_state_free_xfer(&x2);
		json_decref(j);
	}
	j = json_loads("{\"kind\": \"teleport\"}", 0, NULL);
	check_int(vj_decode(&vj_xfer, j, &x2), ==, -1);
	check_str(vine_errmsg(), ==,
		"bad vine_xfer.kind in the state protocol: not a transfer kind");
	json_decref(j);

	j = trip(vj_encode_array(&vj_transfer, t, 2));
	check_int(vj_decode_array(&vj_transfer, j, (void **)&u, &n), ==, 0);
	check_int(n, ==, 2);
	check_int(u[0].id, ==, 9);
	check_int(u[0].offset, ==, 5);
	check_int(u[0].bytes, ==, 100);
	check_dbl(u[0].started, ==, 1.25);
	check_dbl(u[0].updated, ==, 2.5);
	check_str(u[0].object, ==, "ab");
	check_str(u[0].source, ==, "n1");
	check_str(u[0].addr, ==, "h:1");
	check_str(u[0].dest, ==, "n2");
	check_str(u[0].state, ==, "done");
	check_str(u[0].status, ==, "ok");
	check_int(u[1].id, ==, 10);
	CHECK(u[1].source == NULL);
	CHECK(u[1].status == NULL);
	check_int(u[1].bytes, ==, 7);
	check_str(u[1].addr, ==, "/data/o");
	vine_state_free_transfers(u, n);
	json_decref(j);

	/* the object's transfer counters too */
	memset(o.id, 'a', VINE_ID_LEN);
	o.id[VINE_ID_LEN] = '\0';
	j = trip(vj_encode(&vj_object, &o));
	check_int(vj_decode(&vj_object, j, &o2), ==, 0);
	check_int(o2.bytes_origin, ==, 11);
	check_int(o2.bytes_peer, ==, 12);
	check_int(o2.xfer_active, ==, 2);
	check_int(o2.xfer_failed, ==, 1);
	vj_release(&vj_object, &o2);
	json_decref(j);
}

static void bad(const char *json, const struct vj_desc *d, const char *why)
{
	json_t *j = json_loads(json, 0, NULL);
	char buf[512];

	CHECK(j != NULL);
	check_int(vj_decode(d, j, buf), ==, -1);
	if (!strstr(vine_errmsg(), why))
		fprintf(stderr, "%s: \"%s\" lacks \"%s\"\n", json, vine_errmsg(), why);
	CHECK(strstr(vine_errmsg(), why) != NULL);
	json_decref(j);
}

static void test_bad(void)
{
	struct vine_result r;
	json_t *j;

	bad("{\"task\": \"1\"}", &vj_result, "bad vine_result.task");
	bad("{\"attempt\": 4294967296}", &vj_result, "bad vine_result.attempt in the state protocol: not an integer in range");
	bad("{\"outcome\": \"exploded\"}", &vj_result, "bad vine_result.outcome in the state protocol: not an outcome");
	bad("{\"started\": \"now\"}", &vj_result, "bad vine_result.started in the state protocol: not a number");
	bad("{\"message\": 5}", &vj_result, "bad vine_result.message in the state protocol: not a string");
	bad("[1]", &vj_result, "bad vine_result in the state protocol: not an object");
	bad("{\"id\": \"abc\"}", &vj_object, "bad vine_object.id in the state protocol: not an object id");
	bad("{\"replicas\": [{\"node\": 1}]}", &vj_object, "bad vine_replica.node");
	bad("{\"running\": [1, \"x\"]}", &vj_worker, "bad list of numbers");
	bad("{\"pid\": -1}", &vj_worker, "bad vine_worker.pid");
	bad("{\"last\": {\"outcome\": 3}}", &vj_task, "bad vine_attempt.outcome");
	/* missing members are zero, unknown ones ignored */
	j = json_loads("{\"task\": 5, \"future\": [1, 2]}", 0, NULL);
	check_int(vj_decode(&vj_result, j, &r), ==, 0);
	check_int(r.task, ==, 5);
	check_int(r.attempt, ==, 0);
	CHECK(r.message == NULL);
	check_int(r.outcome, ==, 0);
	json_decref(j);
}

int main(void)
{
	test_task();
	test_objects_workers();
	test_strings();
	test_bad();
	test_spreading();
	return T_END();
}
