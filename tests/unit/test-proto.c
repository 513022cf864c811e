/*
 * test-proto - lib/proto over a socketpair: handshake, requests and
 * responses, errors, streams both ways, and every way a frame can be bad.
 * The peer is a child process (a small echo server, or a script of raw
 * bytes).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/proto.h"
#include "util/util.h"
#include "t.h"

/* A buffer as a stream source or sink; fail_at makes the sink fail. */
struct mem {
	char *data;
	size_t len, off, fail_at;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
	struct mem *m = ctx;
	size_t n = m->len - m->off < len ? m->len - m->off : len;

	if (m->fail_at && m->off >= m->fail_at)
		return vine_error("source broke at %zu", m->off);
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem *m = ctx;

	if (m->fail_at && m->len + len > m->fail_at)
		return vine_error("disk full (test)");
	m->data = vine_xrealloc(m->data, m->len + len);
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

static void fill(char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)((i * 2654435761u) >> 11 ^ seed);
}

/*
 * The echo server: ops "echo" (answer the request), "fail" (E), "upload"
 * (read the stream, answer its length; "limit" makes the sink fail past
 * it), "download" (send "size" bytes, then R), "slow" (never answer).
 */
static void serve(int fd)
{
	struct vine_proto p;
	struct vine_frame f;

	vine_proto_init_fd(&p, fd, fd, 0);
	if (vine_proto_hello(&p) < 0)
		_exit(3);
	while (vine_proto_recv(&p, &f) == 0) {
		json_t *q = vine_proto_json(&f), *a;
		const char *op = json_string_value(json_object_get(q, "op"));
		uint32_t id = f.id;

		if (!op)
			_exit(4);
		if (!strcmp(op, "echo")) {
			vine_proto_send_json(&p, VINE_FRAME_RESPONSE, id, q);
		} else if (!strcmp(op, "fail")) {
			vine_proto_send_error(&p, id, "no such task: 42");
		} else if (!strcmp(op, "upload")) {
			struct mem m = { 0 };
			struct vine_proto_stream sink = { NULL, mem_write, &m };
			char hex[16];
			int r;

			m.fail_at = (size_t)json_integer_value(json_object_get(q, "limit"));
			r = vine_proto_recv_stream(&p, id, &sink);
			if (r < 0)
				_exit(5);
			snprintf(hex, sizeof(hex), "%08x", m.len ? (unsigned)m.data[m.len - 1] : 0u);
			if (r == 1) {
				vine_proto_send_error(&p, id, vine_errmsg());
			} else {
				a = json_pack("{sIss}", "len", (json_int_t)m.len, "last", hex);
				vine_proto_send_json(&p, VINE_FRAME_RESPONSE, id, a);
				json_decref(a);
			}
			free(m.data);
		} else if (!strcmp(op, "download")) {
			struct mem m = { 0 };
			struct vine_proto_stream src = { mem_read, NULL, &m };
			int r;

			m.len = (size_t)json_integer_value(json_object_get(q, "size"));
			m.fail_at = (size_t)json_integer_value(json_object_get(q, "break"));
			m.data = vine_xmalloc(m.len);
			fill(m.data, m.len, 5);
			r = vine_proto_send_stream(&p, id, &src);
			if (r == 0) {
				a = json_pack("{sI}", "sent", (json_int_t)m.len);
				vine_proto_send_json(&p, VINE_FRAME_RESPONSE, id, a);
				json_decref(a);
			} else if (r == 1) {
				vine_proto_send_error(&p, id, vine_errmsg());
			}
			free(m.data);
		} else if (!strcmp(op, "badid")) {
			vine_proto_send_json(&p, VINE_FRAME_RESPONSE, id + 7, q);
		} else if (!strcmp(op, "slow")) {
			sleep(2);
		}
		json_decref(q);
	}
	/* the client hung up (or broke the connection on purpose) */
	_exit(0);
}

static int serve_fn(int fd, const void *arg)
{
	serve(fd);
	return 0;
}

/* A peer that writes raw bytes (len-prefixed in arg) and hangs up. */
struct raw {
	const char *bytes;
	size_t len;
	int read_hello;
};

static int raw_fn(int fd, const void *arg)
{
	const struct raw *r = arg;
	char buf[256];

	if (r->read_hello && read(fd, buf, sizeof(buf)) < 0)
		return 1;
	if (vine_write_full(fd, r->bytes, r->len) < 0)
		return 1;
	/* keep the line open a moment so the reader sees the bytes first */
	usleep(100000);
	return 0;
}

static int finish(pid_t pid, int fd)
{
	int status;

	close(fd);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_calls(void)
{
	struct vine_proto p;
	json_t *req, *res;
	int fd, r;
	pid_t pid = t_fork_peer(&fd, serve_fn, NULL);

	vine_proto_init_fd(&p, fd, fd, 5);
	check_int(vine_proto_hello(&p), ==, 0);

	req = json_pack("{sss[ii]}", "op", "echo", "task", 17, 18);
	r = vine_proto_call(&p, req, NULL, NULL, &res);
	check_int(r, ==, 0);
	CHECK(json_equal(req, res));
	check_int(p.next_id, ==, 2);
	json_decref(req);
	json_decref(res);

	/* an error answer: the message, and the connection stays usable */
	req = json_pack("{ss}", "op", "fail");
	r = vine_proto_call(&p, req, NULL, NULL, &res);
	check_int(r, ==, 1);
	check_str(vine_errmsg(), ==, "no such task: 42");
	if (CHECK(res))
		CHECK(json_is_object(res));
	CHECK(!p.broken);
	json_decref(req);
	json_decref(res);

	/* an upload of 1 MiB + 3 bytes: several D frames, then Z */
	{
		struct mem m = { vine_xmalloc((1 << 20) + 3), (1 << 20) + 3, 0, 0 };
		struct vine_proto_stream src = { mem_read, NULL, &m };
		char last[16];

		fill(m.data, m.len, 9);
		snprintf(last, sizeof(last), "%08x", (unsigned)m.data[m.len - 1]);
		req = json_pack("{ss}", "op", "upload");
		r = vine_proto_call(&p, req, &src, NULL, &res);
		check_int(r, ==, 0);
		check_int(json_integer_value(json_object_get(res, "len")), ==, (1 << 20) + 3);
		check_str(json_string_value(json_object_get(res, "last")), ==, last);
		json_decref(req);
		json_decref(res);

		/* the server's sink fails: it reads the rest and says why */
		req = json_pack("{sssi}", "op", "upload", "limit", 300000);
		m.off = 0;
		r = vine_proto_call(&p, req, &src, NULL, &res);
		check_int(r, ==, 1);
		check_str(vine_errmsg(), ==, "disk full (test)");
		CHECK(!p.broken);
		json_decref(req);
		json_decref(res);

		/* our source fails: the stream is abandoned, the server says so */
		req = json_pack("{ss}", "op", "upload");
		m.off = 0;
		m.fail_at = 600000;
		r = vine_proto_call(&p, req, &src, NULL, &res);
		check_int(r, ==, 1);
		CHECK(strstr(vine_errmsg(), "source broke at") != NULL);
		CHECK(!p.broken);
		json_decref(req);
		json_decref(res);
		free(m.data);
	}

	/* a download: D frames, then R */
	{
		struct mem got = { 0 };
		struct vine_proto_stream sink = { NULL, mem_write, &got };
		char *want = vine_xmalloc(700001);

		fill(want, 700001, 5);
		req = json_pack("{sssi}", "op", "download", "size", 700001);
		r = vine_proto_call(&p, req, NULL, &sink, &res);
		check_int(r, ==, 0);
		check_int(got.len, ==, 700001);
		CHECK(!memcmp(got.data, want, 700001));
		check_int(json_integer_value(json_object_get(res, "sent")), ==, 700001);
		json_decref(res);

		/* our sink fails: the answer is still read, then the error */
		free(got.data);
		memset(&got, 0, sizeof(got));
		got.fail_at = 100;
		r = vine_proto_call(&p, req, NULL, &sink, &res);
		check_int(r, ==, 1);
		check_str(vine_errmsg(), ==, "disk full (test)");
		CHECK(!p.broken);
		json_decref(res);
		json_decref(req);

		/* the server's source fails midway: D frames, then E */
		free(got.data);
		memset(&got, 0, sizeof(got));
		req = json_pack("{sssisi}", "op", "download", "size", 700001, "break", 500000);
		r = vine_proto_call(&p, req, NULL, &sink, &res);
		check_int(r, ==, 1);
		CHECK(strstr(vine_errmsg(), "source broke at") != NULL);
		check_int(got.len, >, 0);
		check_int(got.len, <, 700001);
		json_decref(res);
		json_decref(req);

		/* data nobody asked for breaks the connection */
		req = json_pack("{sssi}", "op", "download", "size", 10);
		r = vine_proto_call(&p, req, NULL, NULL, &res);
		check_int(r, ==, -1);
		CHECK(strstr(vine_errmsg(), "unexpected data") != NULL);
		if (CHECK(p.broken))
			CHECK(res == NULL);
		json_decref(req);
		free(got.data);
		free(want);
	}
	vine_proto_release(&p);
	check_int(finish(pid, fd), ==, 0);
}

static void test_bad_answers(void)
{
	struct vine_proto p;
	json_t *req, *res;
	int fd;
	pid_t pid = t_fork_peer(&fd, serve_fn, NULL);
	double t;

	/* an answer to another request */
	vine_proto_init_fd(&p, fd, fd, 0.3);
	check_int(vine_proto_hello(&p), ==, 0);
	req = json_pack("{ss}", "op", "badid");
	check_int(vine_proto_call(&p, req, NULL, NULL, &res), ==, -1);
	check_str(vine_errmsg(), ==, "answer to request 8 while waiting for 1");
	CHECK(p.broken);
	/* and nothing more is sent on a broken connection */
	check_int(vine_proto_send(&p, VINE_FRAME_REQUEST, 2, "{}", 2), ==, -1);
	json_decref(req);
	vine_proto_release(&p);
	finish(pid, fd);

	/* no answer within the timeout */
	pid = t_fork_peer(&fd, serve_fn, NULL);
	vine_proto_init_fd(&p, fd, fd, 0.3);
	check_int(vine_proto_hello(&p), ==, 0);
	req = json_pack("{ss}", "op", "slow");
	t = vine_now_mono();
	check_int(vine_proto_call(&p, req, NULL, NULL, &res), ==, -1);
	t = vine_now_mono() - t;
	check_dbl(t, >, 0.25);
	check_dbl(t, <, 1.5);
	CHECK(strstr(vine_errmsg(), "no answer for") != NULL);
	json_decref(req);
	vine_proto_release(&p);
	kill(pid, SIGKILL);
	finish(pid, fd);
}

/* The peer sends bytes; our recv (after hello if hello) must fail with why. */
static void expect_bad(const char *bytes, size_t len, int hello, const char *why)
{
	struct raw raw = { bytes, len, 1 };
	struct vine_proto p;
	struct vine_frame f;
	int fd, r;
	pid_t pid = t_fork_peer(&fd, raw_fn, &raw);

	vine_proto_init_fd(&p, fd, fd, 5);
	if (hello) {
		r = vine_proto_hello(&p);
	} else {
		check_int(vine_proto_send(&p, VINE_FRAME_HELLO, 0, "x", 1), ==, 0);
		r = vine_proto_recv(&p, &f);
	}
	check_int(r, ==, -1);
	CHECK(p.broken);
	if (!strstr(vine_errmsg(), why))
		fprintf(stderr, "expected \"%s\" in \"%s\"\n", why, vine_errmsg());
	CHECK(strstr(vine_errmsg(), why) != NULL);
	vine_proto_release(&p);
	finish(pid, fd);
}

#define BAD(s, hello, why) expect_bad(s, sizeof(s) - 1, hello, why)

static void test_bad_frames(void)
{
	struct vine_proto p;
	int sv[2];
	char big[64];

	/* handshakes */
	BAD("\0\0\0\21H\0\0\0\0vine-state 2", 1,
	    "protocol version mismatch: this side speaks vine-state 1, the other side vine-state 2");
	BAD("\0\0\0\21H\0\0\0\0wine-state 1", 1, "the other side speaks \"wine-state 1\", not vine-state");
	BAD("\0\0\0\22H\0\0\0\0vine-state 1x", 1, "not vine-state");
	BAD("\0\0\0\7R\0\0\0\0{}", 1, "no vine-state handshake: a 'R' frame came first");
	BAD("Welcome to login1!\n", 1,
	    "no vine-state handshake (does a login script write to standard output?): "
	    "not a frame of the state protocol: \"Welcome t\"");
	BAD("", 1, "no vine-state handshake: connection closed");

	/* frames */
	BAD("\0\0\0\4Q\0\0\0\1", 0, "not a frame of the state protocol");
	BAD("\0\0\0\6X\0\0\0\1x", 0, "not a frame of the state protocol");
	/* 16 MiB + 1 of body: refused before reading it */
	BAD("\1\0\0\6Q\0\0\0\1", 0, "frame of 16777217 bytes is longer than the limit of 16777216");
	BAD("\0\0\0\144Q\0\0\0\1{\"op\":", 0,
	    "connection closed in the middle of a frame (6 of 95 bytes)");
	BAD("\0\0\0\144Q\0", 0, "connection closed in the middle of a frame (6 of 9 bytes)");
	BAD("", 0, "connection closed");

	/* a body over the limit is not sent either, and a lower limit holds */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	vine_proto_init_fd(&p, sv[0], sv[0], 1);
	p.max_body = 10;
	memset(big, 'x', sizeof(big));
	check_int(vine_proto_send(&p, VINE_FRAME_DATA, 1, big, 11), ==, -1);
	check_str(vine_errmsg(), ==, "frame of 11 bytes is longer than the limit of 10");
	CHECK(!p.broken);
	check_int(vine_proto_send(&p, VINE_FRAME_DATA, 1, big, 10), ==, 0);
	vine_proto_release(&p);
	vine_proto_init_fd(&p, sv[1], sv[1], 1);
	p.max_body = 9;
	{
		struct vine_frame f;

		check_int(vine_proto_recv(&p, &f), ==, -1);
		CHECK(strstr(vine_errmsg(),
			"frame of 10 bytes is longer than the limit of 9") != NULL);
	}
	vine_proto_release(&p);
	close(sv[0]);
	close(sv[1]);
}

/* The wire format, byte for byte, as vine(7) documents it. */
static void test_wire(void)
{
	struct vine_proto p;
	int sv[2];
	char buf[64];
	json_t *v;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	vine_proto_init_fd(&p, sv[0], sv[0], 1);
	/* the example in vine(7) */
	v = json_pack("{ss}", "op", "counts");
	check_int(vine_proto_send_json(&p, VINE_FRAME_REQUEST, 1, v), ==, 0);
	check_int(read(sv[1], buf, sizeof(buf)), ==, 24);
	CHECK(!memcmp(buf, "\x00\x00\x00\x14\x51\x00\x00\x00\x01{\"op\":\"counts\"}", 24));
	check_int(vine_proto_send(&p, VINE_FRAME_END, 258, NULL, 0), ==, 0);
	check_int(read(sv[1], buf, sizeof(buf)), ==, 9);
	CHECK(!memcmp(buf, "\0\0\0\5Z\0\0\1\2", 9));
	json_decref(v);
	vine_proto_release(&p);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_wire();
	test_calls();
	test_bad_answers();
	test_bad_frames();
	return T_END();
}
