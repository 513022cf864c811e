/*
 * test-state-origin - reading an object's origin through the state
 * (vine_state_origin_read): offsets, the end, short reads, what is refused,
 * that only the registered origin is ever read, and the origin_read request
 * of the state protocol as vine-state answers it.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/proto.h"
#include "state/state.h"
#include "state/state-serve.h"
#include "util/util.h"
#include "t.h"

#define SIZE 10000

static char dir[] = "/tmp/vine-test-state-origin.XXXXXX";
static char *db, *origin, *other;
static char id[VINE_ID_LEN + 1], other_id[VINE_ID_LEN + 1];
static unsigned char bytes[SIZE];

static void put(const char *path, const void *buf, size_t len)
{
	if (vine_write_file_atomic(path, buf, len, 0644) < 0)
		abort();
}

/* The message is exactly what fmt says. */
static void check_msg(const char *fmt, ...) VINE_PRINTF(1, 2);
static void check_msg(const char *fmt, ...)
{
	char want[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	check_str(vine_errmsg(), ==, want);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_local(struct vine_state *st)
{
	unsigned char buf[8192];
	size_t got;
	int64_t size = 0;
	int fds = open_fds();

	/* from the start, from the middle, up to the end and no further */
	check_int(vine_state_origin_read(st, id, 0, buf, 4096, &got, &size), ==, 0);
	check_int(got, ==, 4096);
	check_int(size, ==, SIZE);
	CHECK(!memcmp(buf, bytes, 4096));
	check_int(vine_state_origin_read(st, id, 4096, buf, 4096, &got, NULL), ==, 0);
	check_int(got, ==, 4096);
	CHECK(!memcmp(buf, bytes + 4096, 4096));
	check_int(vine_state_origin_read(st, id, 9000, buf, sizeof(buf), &got, NULL), ==, 0);
	check_int(got, ==, SIZE - 9000);
	CHECK(!memcmp(buf, bytes + 9000, SIZE - 9000));
	check_int(vine_state_origin_read(st, id, 1, buf, 1, &got, NULL), ==, 0);
	check_int(got, ==, 1);
	check_int(buf[0], ==, bytes[1]);
	check_int(vine_state_origin_read(st, id, SIZE, buf, sizeof(buf), &got, &size), ==, 0);
	check_int(got, ==, 0);
	check_int(size, ==, SIZE);
	check_int(vine_state_origin_read(st, id, SIZE + 1, buf, 1, &got, NULL), ==, -1);
	check_msg("object %s: offset 10001 is past its end (10000 bytes)", id);
	check_int(vine_state_origin_read(st, id, -1, buf, 1, &got, NULL), ==, -1);
	check_int(vine_state_origin_read(st, id, 0, buf, VINE_ORIGIN_READ_MAX + 1, &got, NULL),
		==, -1);
	CHECK(strstr(vine_errmsg(), "at most") != NULL);
	/* every read closed what it opened */
	check_int(open_fds(), ==, fds);

	/* only a registered object, by its id: never a path, never another file */
	memset(buf, 0xaa, sizeof(buf));
	got = 99;
	check_int(vine_state_origin_read(st, other_id, 0, buf, sizeof(buf), &got, NULL), ==, -1);
	check_int(got, ==, 0);
	check_int(buf[0], ==, 0xaa);
	check_int(buf[sizeof(buf) - 1], ==, 0xaa);
	CHECK(strstr(vine_errmsg(), "is not registered in state") != NULL);
	check_int(vine_state_origin_read(st, other, 0, buf, sizeof(buf), &got, NULL), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not 64 lowercase hex digits") != NULL);
	check_int(buf[0], ==, 0xaa);

	/* an origin that changed, vanished or is not a file is an error, and
	 * len 0 asks the size without opening it */
	put(origin, bytes, SIZE - 1);
	check_int(vine_state_origin_read(st, id, 0, buf, 10, &got, NULL), ==, -1);
	check_msg("object %s: its origin '%s' is 9999 bytes, not the 10000 registered: "
		  "it changed since", id, origin);
	check_int(unlink(origin), ==, 0);
	check_int(vine_state_origin_read(st, id, 0, buf, 10, &got, NULL), ==, -1);
	check_msg("object %s: cannot read its origin '%s': No such file or directory",
		  id, origin);
	size = 0;
	check_int(vine_state_origin_read(st, id, 0, NULL, 0, &got, &size), ==, 0);
	check_int(got, ==, 0);
	check_int(size, ==, SIZE);
	check_int(mkdir(origin, 0755), ==, 0);
	check_int(vine_state_origin_read(st, id, 0, buf, 10, &got, NULL), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not a regular file") != NULL);
	check_int(rmdir(origin), ==, 0);
	/* same size, other bytes: read as they are (the reader's hash check catches it) */
	bytes[5] ^= 0xff;
	put(origin, bytes, SIZE);
	check_int(vine_state_origin_read(st, id, 0, buf, 10, &got, NULL), ==, 0);
	check_int(got, ==, 10);
	check_int(buf[5], ==, bytes[5]);
	bytes[5] ^= 0xff;
	put(origin, bytes, SIZE);
	check_int(open_fds(), ==, fds);
}

/* The state protocol: vine-state's side, over a socketpair. */
static int serve_fn(int fd, const void *arg)
{
	return vine_state_serve(db, fd, fd) < 0 ? 1 : 0;
}

struct sink {
	unsigned char buf[SIZE + 100];
	size_t len;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;

	if (len > sizeof(s->buf) - s->len)
		return vine_error("too much");
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static int ask(struct vine_proto *p, const char *json, struct sink *s, json_t **res)
{
	struct vine_proto_stream down = { NULL, sink_write, s };
	json_t *q = json_loads(json, 0, NULL);
	int r;

	if (!q)
		abort();
	s->len = 0;
	r = vine_proto_call(p, q, NULL, &down, res);
	json_decref(q);
	return r;
}

static void test_served(void)
{
	static struct sink s;
	struct vine_proto p;
	json_t *res = NULL;
	char q[512];
	int fd, st;
	pid_t pid = t_fork_peer(&fd, serve_fn, NULL);

	vine_proto_init_fd(&p, fd, fd, 10);
	check_int(vine_proto_hello(&p), ==, 0);
	check_int(ask(&p, "{\"op\":\"open\"}", &s, &res), ==, 0);
	json_decref(res);

	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":100,\"len\":%d}", id,
		 SIZE);
	check_int(ask(&p, q, &s, &res), ==, 0);
	check_int(s.len, ==, SIZE - 100);
	CHECK(!memcmp(s.buf, bytes + 100, SIZE - 100));
	check_int(json_integer_value(json_object_get(res, "got")), ==, SIZE - 100);
	check_int(json_integer_value(json_object_get(res, "size")), ==, SIZE);
	json_decref(res);
	/* skip: the bytes of a cut answer the client has already */
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":100,\"len\":50,"
		 "\"skip\":20}", id);
	check_int(ask(&p, q, &s, &res), ==, 0);
	check_int(s.len, ==, 30);
	CHECK(!memcmp(s.buf, bytes + 120, 30));
	json_decref(res);

	/* a path in the request is no way to another file */
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"path\":\"%s\",\"offset\":0,"
		 "\"len\":10}", other_id, other);
	check_int(ask(&p, q, &s, &res), ==, 1);
	check_int(s.len, ==, 0);
	CHECK(strstr(vine_errmsg(), "is not registered in state") != NULL);
	json_decref(res);
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":0,\"len\":10}", other);
	check_int(ask(&p, q, &s, &res), ==, 1);
	check_int(s.len, ==, 0);
	CHECK(strstr(vine_errmsg(), "is not 64 lowercase hex digits") != NULL);
	json_decref(res);
	/* sizes out of bounds are refused, and the connection stays usable */
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":0,\"len\":%u}", id,
		 VINE_ORIGIN_READ_MAX + 1);
	check_int(ask(&p, q, &s, &res), ==, 1);
	json_decref(res);
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":0,\"len\":10,"
		 "\"skip\":11}", id);
	check_int(ask(&p, q, &s, &res), ==, 1);
	json_decref(res);
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":0}", id);
	check_int(ask(&p, q, &s, &res), ==, 1);
	json_decref(res);
	snprintf(q, sizeof(q), "{\"op\":\"origin_read\",\"id\":\"%s\",\"offset\":%d,\"len\":10}", id,
		 SIZE);
	check_int(ask(&p, q, &s, &res), ==, 0);
	check_int(s.len, ==, 0);
	check_int(json_integer_value(json_object_get(res, "got")), ==, 0);
	json_decref(res);

	vine_proto_release(&p);
	close(fd);
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st));
	check_int(WEXITSTATUS(st), ==, 0);
}

int main(void)
{
	struct vine_object obj = { .size = SIZE };
	struct vine_task_spec sp = { .cmd = "true", .cores = 1 };
	struct vine_state *st;
	const char secret[] = "not to be read through the state";
	int64_t task;

	if (!mkdtemp(dir))
		return 1;
	for (int i = 0; i < SIZE; i++)
		bytes[i] = (unsigned char)(i * 7 % 251);
	db = vine_xasprintf("%s/run.db", dir);
	origin = vine_xasprintf("%s/env.tar", dir);
	other = vine_xasprintf("%s/secret", dir);
	put(origin, bytes, SIZE);
	put(other, secret, sizeof(secret) - 1);
	if (vine_sha256_file(origin, id) < 0 || vine_sha256_file(other, other_id) < 0)
		return 1;
	memcpy(obj.id, id, sizeof(id));
	obj.origin = origin;
	sp.object = id;
	CHECK((st = vine_state_open(db, VINE_STATE_CREATE)) != NULL);
	check_int(vine_state_submit(st, &obj, &sp, 1, &task), ==, 0);

	test_local(st);
	test_served();

	vine_state_close(st);
	free(db);
	free(origin);
	free(other);
	check_int(vine_rm_rf(dir), ==, 0);
	return T_END();
}
