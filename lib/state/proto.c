/*
 * proto.c - framing of the state protocol (see proto.h and vine(7)).
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/proto.h"
#include "util/util.h"

#define INBUF (64u << 10)

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	struct vine_proto *p = ctx;
	struct pollfd pfd = { p->fd.rfd, POLLIN, 0 };
	int ms = p->fd.timeout > 0 ? (int)(p->fd.timeout * 1000) : -1, r;
	ssize_t n;

	for (;;) {
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vine_error_errno("cannot wait for input");
		if (r == 0)
			return vine_error("no answer for %.0f s", p->fd.timeout);
		n = read(p->fd.rfd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return vine_error_errno("cannot read");
		return n;
	}
}

static int fd_write(void *ctx, const void *buf, size_t len)
{
	struct vine_proto *p = ctx;

	if (vine_write_full(p->fd.wfd, buf, len) < 0)
		return vine_error_errno("cannot write");
	return 0;
}

void vine_proto_init(struct vine_proto *p, const struct vine_proto_io *io)
{
	memset(p, 0, sizeof(*p));
	p->io = *io;
	p->max_body = VINE_PROTO_MAX_BODY;
	p->next_id = 1;
	p->fd.rfd = p->fd.wfd = -1;
	p->in = vine_xmalloc(INBUF);
}

void vine_proto_init_fd(struct vine_proto *p, int rfd, int wfd, double timeout)
{
	struct vine_proto_io io = { fd_read, fd_write, NULL };

	vine_proto_init(p, &io);
	p->io.ctx = p;
	p->fd.rfd = rfd;
	p->fd.wfd = wfd;
	p->fd.timeout = timeout;
}

void vine_proto_release(struct vine_proto *p)
{
	free(p->in);
	free(p->body);
	free(p->out);
	p->in = p->body = p->out = NULL;
}

static void put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int valid_type(int t)
{
	return t == VINE_FRAME_HELLO || t == VINE_FRAME_REQUEST || t == VINE_FRAME_RESPONSE ||
	       t == VINE_FRAME_ERROR || t == VINE_FRAME_DATA || t == VINE_FRAME_END;
}

static int broken(struct vine_proto *p)
{
	p->broken = 1;
	return -1;
}

int vine_proto_send(struct vine_proto *p, int type, uint32_t id, const void *body, size_t len)
{
	size_t need = VINE_PROTO_HEADER + len;

	if (p->broken)
		return vine_error("connection already failed");
	if (len > p->max_body)
		return vine_error("frame of %zu bytes is longer than the limit of %zu", len, p->max_body);
	if (need > p->out_cap) {
		p->out = vine_xrealloc(p->out, need);
		p->out_cap = need;
	}
	put32((unsigned char *)p->out, (uint32_t)(len + 5));
	p->out[4] = (char)type;
	put32((unsigned char *)p->out + 5, id);
	if (len)
		memcpy(p->out + VINE_PROTO_HEADER, body, len);
	if (p->io.write(p->io.ctx, p->out, need) < 0)
		return broken(p);
	return 0;
}

int vine_proto_send_json(struct vine_proto *p, int type, uint32_t id, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int r;

	if (!s)
		return vine_error("cannot encode a message as JSON");
	r = vine_proto_send(p, type, id, s, strlen(s));
	free(s);
	return r;
}

int vine_proto_send_error(struct vine_proto *p, uint32_t id, const char *msg)
{
	json_t *e = json_pack("{ss}", "error", msg);
	int r;

	if (!e)
		return vine_error("cannot encode an error message");
	r = vine_proto_send_json(p, VINE_FRAME_ERROR, id, e);
	json_decref(e);
	return r;
}

/*
 * Exactly len bytes through the read buffer.  0; 1 at a clean end before
 * any byte when at_start; -1 otherwise.
 */
static int read_exact(struct vine_proto *p, void *dst, size_t len, int at_start)
{
	char *d = dst;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (p->in_off == p->in_len) {
			p->in_off = p->in_len = 0;
			if (len - got >= INBUF) {
				/* large bodies go straight to their place */
				n = p->io.read(p->io.ctx, d + got, len - got);
				if (n > 0) {
					got += (size_t)n;
					continue;
				}
			} else {
				n = p->io.read(p->io.ctx, p->in, INBUF);
				if (n > 0) {
					p->in_len = (size_t)n;
					continue;
				}
			}
			if (n < 0)
				return broken(p);
			if (at_start && got == 0)
				return 1;
			vine_error("connection closed in the middle of a frame (%zu of %zu bytes)",
				   got, len);
			return broken(p);
		}
		size_t take = p->in_len - p->in_off;

		if (take > len - got)
			take = len - got;
		memcpy(d + got, p->in + p->in_off, take);
		p->in_off += take;
		got += take;
	}
	return 0;
}

/* Show the start of what came instead of a frame, for the message. */
static void printable(const unsigned char *b, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 2 < cap; i++)
		out[o++] = isprint(b[i]) ? (char)b[i] : '.';
	out[o] = '\0';
}

int vine_proto_recv(struct vine_proto *p, struct vine_frame *f)
{
	unsigned char h[VINE_PROTO_HEADER];
	uint32_t len;
	int r;

	if (p->broken)
		return vine_error("connection already failed");
	r = read_exact(p, h, sizeof(h), 1);
	if (r == 1) {
		p->eof = 1;
		vine_error("connection closed");
		return broken(p);
	}
	if (r < 0)
		return -1;
	len = get32(h);
	if (len < 5 || !valid_type(h[4]) || (size_t)len - 5 > p->max_body) {
		char text[32];

		printable(h, sizeof(h), text, sizeof(text));
		/* a length of four printable characters is text (>= 538 MB) */
		if (len < 5 || !valid_type(h[4]) || (isprint(h[0]) && isprint(h[1]) &&
						      isprint(h[2]) && isprint(h[3])))
			vine_error("not a frame of the state protocol: \"%s\"", text);
		else
			vine_error("frame of %lu bytes is longer than the limit of %zu (\"%s\")",
				   (unsigned long)len - 5, p->max_body, text);
		return broken(p);
	}
	len -= 5;
	if (len + 1 > p->body_cap) {
		p->body = vine_xrealloc(p->body, len + 1);
		p->body_cap = len + 1;
	}
	if (read_exact(p, p->body, len, 0) < 0)
		return -1;
	p->body[len] = '\0';
	f->type = h[4];
	f->id = get32(h + 5);
	f->len = len;
	f->body = p->body;
	return 0;
}

json_t *vine_proto_json(const struct vine_frame *f)
{
	json_error_t err;
	json_t *v = json_loadb(f->body, f->len, JSON_DECODE_ANY, &err);

	if (!v)
		vine_error("bad JSON in a '%c' frame: %s", f->type, err.text);
	return v;
}

int vine_proto_hello(struct vine_proto *p)
{
	char ours[64], name[32], text[48];
	struct vine_frame f;
	long version;
	int n;

	snprintf(ours, sizeof(ours), "%s %d", VINE_PROTO_NAME, VINE_PROTO_VERSION);
	if (vine_proto_send(p, VINE_FRAME_HELLO, 0, ours, strlen(ours)) < 0)
		return -1;
	if (vine_proto_recv(p, &f) < 0) {
		if (strstr(vine_errmsg(), "not a frame"))
			vine_error_prefix("no %s handshake (does a login script write to "
					  "standard output?)", VINE_PROTO_NAME);
		else
			vine_error_prefix("no %s handshake", VINE_PROTO_NAME);
		return -1;
	}
	printable((const unsigned char *)f.body, f.len, text, sizeof(text));
	if (f.type != VINE_FRAME_HELLO) {
		vine_error("no %s handshake: a '%c' frame came first", VINE_PROTO_NAME, f.type);
		return broken(p);
	}
	n = 0;
	if (f.len > 40 || sscanf(f.body, "%31s %ld%n", name, &version, &n) != 2 ||
	    (size_t)n != f.len || strcmp(name, VINE_PROTO_NAME)) {
		vine_error("the other side speaks \"%s\", not %s", text, VINE_PROTO_NAME);
		return broken(p);
	}
	if (version != VINE_PROTO_VERSION) {
		vine_error("protocol version mismatch: this side speaks %s %d, the other side %s %ld "
			   "(install the same vine on both hosts)", VINE_PROTO_NAME,
			   VINE_PROTO_VERSION, VINE_PROTO_NAME, version);
		return broken(p);
	}
	return 0;
}

/* The E body's message, or a description of a malformed one. */
static void error_message(const struct vine_frame *f, json_t **result)
{
	json_t *e = vine_proto_json(f);
	const char *msg = NULL;

	if (e)
		msg = json_string_value(json_object_get(e, "error"));
	vine_error("%s", msg ? msg : "the server failed without a message");
	if (result)
		*result = e;
	else
		json_decref(e);
}

static int send_upload(struct vine_proto *p, uint32_t id, const struct vine_proto_stream *src,
		       char **srcmsg)
{
	int r = vine_proto_send_stream(p, id, src);

	if (r < 0)
		return -1;
	if (r == 1) {
		/* abandon the stream; the server still answers */
		*srcmsg = vine_xstrdup(vine_errmsg());
		return vine_proto_send_error(p, id, *srcmsg) < 0 ? -1 : 1;
	}
	return vine_proto_send(p, VINE_FRAME_END, id, NULL, 0);
}

int vine_proto_call(struct vine_proto *p, json_t *request, const struct vine_proto_stream *upload,
		    const struct vine_proto_stream *download, json_t **result)
{
	uint32_t id = p->next_id++;
	struct vine_frame f;
	char *srcmsg = NULL, *sinkmsg = NULL;
	int r = 0;

	*result = NULL;
	if (vine_proto_send_json(p, VINE_FRAME_REQUEST, id, request) < 0)
		return -1;
	if (upload && (r = send_upload(p, id, upload, &srcmsg)) < 0)
		return -1;
	for (;;) {
		if (vine_proto_recv(p, &f) < 0)
			goto fail;
		if (f.id != id) {
			vine_error("answer to request %lu while waiting for %lu",
				   (unsigned long)f.id, (unsigned long)id);
			broken(p);
			goto fail;
		}
		if (f.type == VINE_FRAME_DATA) {
			if (!download) {
				vine_error("unexpected data in the answer to request %lu",
					   (unsigned long)id);
				broken(p);
				goto fail;
			}
			if (!sinkmsg && download->write(download->ctx, f.body, f.len) < 0)
				sinkmsg = vine_xstrdup(vine_errmsg());
			continue;
		}
		if (f.type == VINE_FRAME_RESPONSE) {
			if (!(*result = vine_proto_json(&f))) {
				broken(p);
				goto fail;
			}
			r = 0;
		} else if (f.type == VINE_FRAME_ERROR) {
			error_message(&f, result);
			r = 1;
		} else {
			vine_error("unexpected '%c' frame in the answer to request %lu", f.type,
				   (unsigned long)id);
			broken(p);
			goto fail;
		}
		break;
	}
	if (srcmsg || sinkmsg) {
		vine_error("%s", srcmsg ? srcmsg : sinkmsg);
		r = 1;
	}
	free(srcmsg);
	free(sinkmsg);
	return r;
fail:
	free(srcmsg);
	free(sinkmsg);
	json_decref(*result);
	*result = NULL;
	return -1;
}

int vine_proto_recv_stream(struct vine_proto *p, uint32_t id, const struct vine_proto_stream *sink)
{
	struct vine_frame f;
	char *msg = NULL;

	for (;;) {
		if (vine_proto_recv(p, &f) < 0) {
			free(msg);
			return -1;
		}
		if (f.id != id || (f.type != VINE_FRAME_DATA && f.type != VINE_FRAME_END &&
				   f.type != VINE_FRAME_ERROR)) {
			free(msg);
			vine_error("unexpected '%c' frame for request %lu in the stream of request %lu",
				   f.type, (unsigned long)f.id, (unsigned long)id);
			return broken(p);
		}
		if (f.type == VINE_FRAME_DATA) {
			if (!msg && sink->write(sink->ctx, f.body, f.len) < 0)
				msg = vine_xstrdup(vine_errmsg());
			continue;
		}
		if (f.type == VINE_FRAME_ERROR) {
			char *why;

			error_message(&f, NULL);
			why = vine_xasprintf("the client abandoned the upload: %s", vine_errmsg());
			free(msg);
			msg = why;
		}
		break;
	}
	if (msg) {
		vine_error("%s", msg);
		free(msg);
		return 1;
	}
	return 0;
}

int vine_proto_send_stream(struct vine_proto *p, uint32_t id, const struct vine_proto_stream *source)
{
	char *buf = vine_xmalloc(VINE_PROTO_CHUNK);
	ssize_t n;
	int r = 0;

	while ((n = source->read(source->ctx, buf, VINE_PROTO_CHUNK)) > 0)
		if (vine_proto_send(p, VINE_FRAME_DATA, id, buf, (size_t)n) < 0) {
			r = -1;
			break;
		}
	free(buf);
	if (r == 0 && n < 0)
		r = 1;
	return r;
}
