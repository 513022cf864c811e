/*
 * fuzz-state - the server side of the state protocol (vine_state_serve, what
 * vine-state runs for remote workers) on a real SQLite state, in process:
 * the client's bytes come from a memfd, the answers go to /dev/null.
 *
 * Input: the frames a client sends after its handshake (the harness sends
 * the hello and an "open" first), or, when the first byte is 0xff, the rest
 * is the whole client stream, hello included.
 *
 * The state: made once, by serving a fixed session (tasks with an object
 * whose origin is a file, two workers, a claimed attempt with a stored
 * stdout, a finished one, a replica, a transfer), then copied back over the
 * state before each input, so every input meets the same state and the
 * state stays small.  It lives in /dev/shm where there is one (fz_tmpdir),
 * since SQLite syncs when it closes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/proto.h"
#include "state/state.h"
#include "state/state-serve.h"
#include "util/hash.h"
#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"

/* the object the state knows: its origin holds these bytes */
#define ORIGIN_DATA "vine fuzz origin\n"

static char *path, *wal, *shm, *results, *origin, *template;
static size_t template_len;
static int devnull = -1;
static struct vine_buf prefix = VINE_BUF_INIT, in = VINE_BUF_INIT;

static void frame(struct vine_buf *b, int type, uint32_t id, const char *body, size_t len)
{
	unsigned char h[VINE_PROTO_HEADER];
	uint32_t n = (uint32_t)len + 5;

	h[0] = n >> 24, h[1] = n >> 16, h[2] = n >> 8, h[3] = n;
	h[4] = (unsigned char)type;
	h[5] = id >> 24, h[6] = id >> 16, h[7] = id >> 8, h[8] = id;
	vine_buf_add(b, h, sizeof(h));
	vine_buf_add(b, body, len);
}

static void request(struct vine_buf *b, uint32_t id, const char *json)
{
	frame(b, VINE_FRAME_REQUEST, id, json, strlen(json));
}

static void hello(struct vine_buf *b)
{
	char h[32];

	snprintf(h, sizeof(h), "%s %d", VINE_PROTO_NAME, VINE_PROTO_VERSION);
	frame(b, VINE_FRAME_HELLO, 0, h, strlen(h));
}

static void serve(const struct vine_buf *b)
{
	int fd = fz_memfd((const uint8_t *)b->data, b->len);

	/* a failed session is the input's business: nothing to check */
	vine_state_serve(path, fd, devnull);
}

static void setup(void)
{
	struct vine_buf b = VINE_BUF_INIT;
	struct vine_sha256 h;
	char oid[VINE_ID_LEN + 1], *q;
	struct vine_counts c;
	struct vine_state *st;
	const char *dir = fz_tmpdir();
	uint32_t id = 1;

	path = vine_xasprintf("%s/s.db", dir);
	wal = vine_xasprintf("%s-wal", path);
	shm = vine_xasprintf("%s-shm", path);
	results = vine_xasprintf("%s.results", path);
	origin = vine_xasprintf("%s/origin", dir);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0 || vine_write_file_atomic(origin, ORIGIN_DATA, strlen(ORIGIN_DATA), 0600) < 0)
		fz_fail("cannot set up '%s'", dir);
	vine_sha256_init(&h);
	vine_sha256_update(&h, ORIGIN_DATA, strlen(ORIGIN_DATA));
	vine_sha256_final(&h, oid);

	hello(&b);
	request(&b, id++, "{\"op\":\"open\",\"create\":true}");
	q = vine_xasprintf("{\"op\":\"submit\",\"object\":{\"id\":\"%s\",\"size\":%zu,\"origin\":\"%s\"},"
			   "\"specs\":[{\"cmd\":\"echo a\",\"object\":\"%s\",\"cores\":1,\"retries\":1},"
			   "{\"cmd\":\"echo b\",\"cores\":1,\"timeout\":5,\"tag\":\"t\"},"
			   "{\"cmd\":\"false\",\"cores\":2}]}", oid, strlen(ORIGIN_DATA), origin, oid);
	request(&b, id++, q);
	free(q);
	request(&b, id++, "{\"op\":\"register_worker\",\"info\":{\"node\":\"n1\",\"host\":\"h1\",\"pid\":1,"
		"\"cores\":4,\"listen\":\"127.0.0.1:1\",\"lease\":86400}}");
	request(&b, id++, "{\"op\":\"register_worker\",\"info\":{\"node\":\"n2\",\"host\":\"h2\",\"pid\":2,"
		"\"cores\":1,\"lease\":86400}}");
	request(&b, id++, "{\"op\":\"finish_claim\",\"worker\":1,\"free_cores\":4,\"total_cores\":4,"
		"\"max\":2,\"results\":[]}");
	request(&b, id, "{\"op\":\"put_file\",\"worker\":1,\"task\":1,\"attempt\":1,\"name\":\"stdout\",\"size\":3}");
	frame(&b, VINE_FRAME_DATA, id, "hi\n", 3);
	frame(&b, VINE_FRAME_END, id++, NULL, 0);
	request(&b, id++, "{\"op\":\"finish_claim\",\"worker\":1,\"free_cores\":4,\"total_cores\":4,\"max\":0,"
		"\"results\":[{\"task\":1,\"attempt\":1,\"outcome\":\"exited\",\"exit_code\":0,"
		"\"signal\":0,\"started\":1,\"ended\":2}]}");
	request(&b, id++, "{\"op\":\"node_listen\",\"node\":\"n2\",\"addr\":\"127.0.0.1:2\"}");
	q = vine_xasprintf("{\"op\":\"replica_set\",\"id\":\"%s\",\"node\":\"n1\",\"bytes\":%zu,\"complete\":1}",
			   oid, strlen(ORIGIN_DATA));
	request(&b, id++, q);
	free(q);
	q = vine_xasprintf("{\"op\":\"transfer_begin\",\"id\":\"%s\",\"dest\":\"n2\",\"offset\":0}", oid);
	request(&b, id++, q);
	free(q);
	serve(&b);
	vine_buf_release(&b);

	/* the session must have made what the inputs expect */
	st = vine_state_open(path, 0);
	if (!st || vine_state_counts(st, &c) < 0 || c.total != 3 || c.n[VINE_TASK_DONE] != 1 ||
	    c.workers_alive != 2)
		fz_fail("the state was not set up: %s", vine_errmsg());
	vine_state_close(st);
	if (vine_read_file(path, (size_t)64 << 20, &template, &template_len) < 0)
		fz_fail("%s", vine_errmsg());

	hello(&prefix);
	request(&prefix, 0x7fffffff, "{\"op\":\"open\"}");
}

/* The state as setup() left it. */
static void reset(void)
{
	char *d = vine_xasprintf("%s/1/1", results), *f = vine_xasprintf("%s/stdout", d);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || vine_write_close(fd, path, template, template_len) < 0)
		fz_fail("cannot reset the state: %s", vine_errmsg());
	unlink(wal);
	unlink(shm);
	if (vine_rm_rf(results) < 0 || vine_mkdir_p(d, 0700) < 0 ||
	    (fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    vine_write_close(fd, f, "hi\n", 3) < 0)
		fz_fail("cannot reset the results: %s", vine_errmsg());
	free(d);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path)
		setup();
	reset();
	vine_buf_reset(&in);
	if (size && data[0] == 0xff) {
		vine_buf_add(&in, data + 1, size - 1);
	} else {
		vine_buf_add(&in, prefix.data, prefix.len);
		vine_buf_add(&in, data, size);
	}
	serve(&in);
	return 0;
}
