/*
 * test-state-serve - the server side of the state protocol over a
 * socketpair, driven frame by frame: what it answers to requests that are
 * out of order, unknown, or malformed, and that a connection survives the
 * requests it refuses.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer/peer.h"
#include "state/proto.h"
#include "state/state.h"
#include "state/state-serve.h"
#include "util/util.h"
#include "t.h"

static char *dir, *path;

static int serve_fn(int fd, const void *arg)
{
	if (vine_state_serve(path, fd, fd) < 0) {
		fprintf(stderr, "server: %s\n", vine_errmsg());
		return 1;
	}
	return 0;
}

static int status_of(pid_t pid)
{
	int st;

	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* One request from JSON text; returns 0/1/-1 as vine_proto_call. */
static int ask(struct vine_proto *p, const char *json, json_t **res)
{
	json_t *q = json_loads(json, 0, NULL);
	int r;

	if (!q)
		abort();
	r = vine_proto_call(p, q, NULL, NULL, res);
	json_decref(q);
	return r;
}

static void test_session(void)
{
	struct vine_proto p;
	struct vine_frame f;
	json_t *res;
	int fd;
	pid_t pid = t_fork_peer(&fd, serve_fn, NULL);
	unsigned char secret[VINE_PEER_SECRET_LEN];
	char hex[2 * VINE_PEER_SECRET_LEN + 1], mine[2 * VINE_PEER_SECRET_LEN + 1];
	struct vine_state *st;

	vine_proto_init_fd(&p, fd, fd, 10);
	check_int(vine_proto_hello(&p), ==, 0);

	check_int(ask(&p, "{\"op\":\"counts\"}", &res), ==, 1);
	check_str(vine_errmsg(), ==, "the state is not open");
	json_decref(res);
	/* not there, and not created without "create" */
	check_int(ask(&p, "{\"op\":\"open\"}", &res), ==, 1);
	CHECK(strstr(vine_errmsg(), "does not exist") != NULL);
	check_int(access(path, F_OK), <, 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"open\",\"create\":true}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(res, "schema")), >=, 1);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"open\",\"create\":true}", &res), ==, 1);
	check_str(vine_errmsg(), ==, "the state is open already");
	json_decref(res);

	/* an unknown request with a stream: refused, the stream skipped */
	check_int(vine_proto_send(&p, VINE_FRAME_REQUEST, 50, "{\"op\":\"frobnicate\"}", 19),
		==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_DATA, 50, "abc", 3), ==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_END, 50, NULL, 0), ==, 0);
	check_int(vine_proto_recv(&p, &f), ==, 0);
	check_int(f.type, ==, VINE_FRAME_ERROR);
	check_int(f.id, ==, 50);
	CHECK(strstr(f.body, "unknown request 'frobnicate'") != NULL);

	/* refused arguments */
	check_int(ask(&p, "{\"op\":\"submit\",\"specs\":[{\"cmd\":\"true\",\"cores\":0}]}",
		&res), ==, 1);
	CHECK(strstr(vine_errmsg(), "task 1: cores must be") != NULL);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"submit\",\"specs\":[{\"cmd\":7}]}", &res), ==, 1);
	CHECK(strstr(vine_errmsg(), "bad vine_task_spec.cmd") != NULL);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"list_tasks\",\"after\":0}", &res), ==, 1);
	check_str(vine_errmsg(), ==, "bad 'limit' in the state protocol: not an integer");
	json_decref(res);

	/* a put_file with bad arguments still has its stream read */
	{
		char big[100000];
		json_t *q = json_pack("{ssss}", "op", "put_file", "name", "stdout");

		memset(big, 'z', sizeof(big));
		check_int(vine_proto_send_json(&p, VINE_FRAME_REQUEST, 60, q), ==, 0);
		check_int(vine_proto_send(&p, VINE_FRAME_DATA, 60, big, sizeof(big)), ==, 0);
		check_int(vine_proto_send(&p, VINE_FRAME_END, 60, NULL, 0), ==, 0);
		check_int(vine_proto_recv(&p, &f), ==, 0);
		check_int(f.type, ==, VINE_FRAME_ERROR);
		check_int(f.id, ==, 60);
		CHECK(strstr(f.body, "bad 'worker'") != NULL);
		json_decref(q);
	}

	/* and the connection still works */
	check_int(ask(&p, "{\"op\":\"submit\",\"specs\":[{\"cmd\":\"true\",\"cores\":1}]}",
		&res), ==, 0);
	check_int(json_integer_value(json_array_get(json_object_get(res, "ids"), 0)), ==, 1);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"counts\"}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(json_object_get(res, "n"), "ready")), ==, 1);
	check_int(json_integer_value(json_object_get(res, "total")), ==, 1);
	json_decref(res);

	/* deliver: finished tasks only; their record stays */
	check_int(ask(&p, "{\"op\":\"deliver\",\"ids\":[1]}", &res), ==, 1);
	CHECK(strstr(vine_errmsg(), "task 1 is ready, not finished") != NULL);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"deliver\",\"ids\":\"1\"}", &res), ==, 1);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"cancel\",\"ids\":[1]}", &res), ==, 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"deliver\",\"ids\":[1]}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(res, "delivered")), ==, 1);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"deliver\",\"ids\":[1]}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(res, "delivered")), ==, 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"list_tasks\",\"after\":0,\"limit\":1}", &res), ==, 0);
	CHECK(json_real_value(json_object_get(json_array_get(json_object_get(res, "tasks"), 0),
		"delivered")) > 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"counts\"}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(json_object_get(res, "n"), "cancelled")),
		==, 1);
	json_decref(res);

	/* the spreading operations */
	check_int(ask(&p, "{\"op\":\"peer_secret\"}", &res), ==, 0);
	check_int(json_string_length(json_object_get(res, "secret")), ==, 2 * VINE_PEER_SECRET_LEN);
	snprintf(hex, sizeof(hex), "%s", json_string_value(json_object_get(res, "secret")));
	json_decref(res);
	check_int(ask(&p,
		"{\"op\":\"spread_settings\",\"set\":{\"k_peer\":4,\"k_origin\":1,\"relay\":0}}",
		&res), ==, 0);
	check_int(json_integer_value(json_object_get(json_object_get(res, "settings"),
		"k_peer")), ==, 4);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"spread_settings\",\"set\":null}", &res), ==, 0);
	check_int(json_integer_value(json_object_get(json_object_get(res, "settings"),
		"k_origin")), ==, 1);
	check_int(json_integer_value(json_object_get(json_object_get(res, "settings"),
		"relay")), ==, 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"spread_settings\",\"set\":{\"k_peer\":0,\"k_origin\":1}}",
		&res), ==, 1);
	CHECK(strstr(vine_errmsg(), "K and K_origin must be 1 to") != NULL);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"node_listen\",\"node\":\"n1\",\"addr\":null}", &res), ==, 0);
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"node_listen\",\"addr\":\"h:1\"}", &res), ==, 1);
	check_str(vine_errmsg(), ==, "bad 'node' in the state protocol: not a string");
	json_decref(res);
	check_int(ask(&p,
		"{\"op\":\"transfer_begin\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"dest\":\"n1\",\"offset\":0}",
		&res), ==, 1);
	CHECK(strstr(vine_errmsg(),
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") != NULL);
	json_decref(res);
	check_int(ask(&p,
		"{\"op\":\"replica_set\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"node\":\"n1\",\"bytes\":-1,\"complete\":1}",
		&res), ==, 1);
	CHECK(strstr(vine_errmsg(), "negative byte count") != NULL);
	json_decref(res);
	check_int(ask(&p,
		"{\"op\":\"transfer_end\",\"xfer\":99,\"status\":0,\"bytes\":0,\"msg\":null}",
		&res), ==, 1);
	check_str(vine_errmsg(), ==, "no transfer 99");
	json_decref(res);
	check_int(ask(&p, "{\"op\":\"list_transfers\"}", &res), ==, 0);
	check_int(json_array_size(json_object_get(res, "transfers")), ==, 0);
	json_decref(res);

	/* hanging up between requests is a clean end */
	vine_proto_release(&p);
	close(fd);
	check_int(status_of(pid), ==, 0);

	/* the secret sent is the state's */
	st = vine_state_open(path, 0);
	CHECK(st != NULL);
	check_int(vine_state_peer_secret(st, secret), ==, 0);
	vine_peer_secret_hex(secret, mine);
	check_str(hex, ==, mine);
	vine_state_close(st);
}

static void test_bad_client(void)
{
	struct vine_proto p;
	int fd;
	pid_t pid = t_fork_peer(&fd, serve_fn, NULL);

	/* a request that is not JSON gets an error reply, and the connection
	 * goes on (it used to end it), its stream skipped */
	struct vine_frame f;
	vine_proto_init_fd(&p, fd, fd, 10);
	check_int(vine_proto_hello(&p), ==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_REQUEST, 1, "{op", 3), ==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_DATA, 1, "abc", 3), ==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_END, 1, NULL, 0), ==, 0);
	check_int(vine_proto_recv(&p, &f), ==, 0);
	check_int(f.type, ==, VINE_FRAME_ERROR);
	check_int(f.id, ==, 1);
	CHECK(strstr(f.body, "bad JSON") != NULL);
	check_int(vine_proto_send(&p, VINE_FRAME_REQUEST, 2, "[]", 2), ==, 0);
	check_int(vine_proto_recv(&p, &f), ==, 0);
	check_int(f.type, ==, VINE_FRAME_ERROR);
	check_int(f.id, ==, 2);
	CHECK(strstr(f.body, "unknown request") != NULL);
	shutdown(fd, SHUT_WR);
	check_int(status_of(pid), ==, 0);
	vine_proto_release(&p);
	close(fd);

	/* as does a frame that is not a request */
	pid = t_fork_peer(&fd, serve_fn, NULL);
	vine_proto_init_fd(&p, fd, fd, 10);
	check_int(vine_proto_hello(&p), ==, 0);
	check_int(vine_proto_send(&p, VINE_FRAME_RESPONSE, 1, "{}", 2), ==, 0);
	check_int(status_of(pid), ==, 1);
	vine_proto_release(&p);
	close(fd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	dir = vine_xasprintf("%s/test-state-serve.XXXXXX",
			     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	path = vine_xasprintf("%s/run.db", dir);
	test_session();
	test_bad_client();
	vine_rm_rf(dir);
	free(path);
	free(dir);
	return T_END();
}
