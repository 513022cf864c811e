/*
 * proto.h - framing of the state protocol, spoken between a program that
 * reaches the state as ssh://host/path (the client) and `vine-state` on
 * the manager host (the server), over the SSH channel's stdin/stdout.  The
 * format is documented in vine(7), STATE PROTOCOL; in short:
 *
 *   frame = length:u32 type:u8 id:u32 body    (big-endian; length counts
 *                                              type, id and body)
 *   H hello     "vine-state VERSION", each side's first frame, id 0
 *   Q request   JSON object {"op": NAME, ...arguments}
 *   R response  JSON value, the result of request id
 *   E error     JSON object {"error": MESSAGE, ...}, request id failed
 *   D data      raw bytes of a stream belonging to request id
 *   Z end       end of the stream of request id (empty body)
 *
 * The client numbers its requests 1, 2, ... on each connection; the
 * server answers each with exactly one R or E carrying its id, in order.
 * A request may carry a stream (an upload: Q, D..., Z; the client sends E
 * instead of Z to abandon it); the server reads the whole stream before
 * it answers.  A response may carry a stream (a download: D..., then R or
 * E).  Bodies are at most VINE_PROTO_MAX_BODY bytes; anything malformed or
 * oversized breaks the connection (p->broken), since framing cannot be
 * resynchronised.
 *
 * Why JSON for bodies: requests are a handful of named, optional fields
 * that will grow; jansson is already a dependency; a JSON body is
 * readable in a hex dump and in logs; and its cost is nothing next to
 * SSH's.  Bulk bytes never go in JSON: they travel as D frames, raw.
 */
#ifndef VINE_PROTO_H
#define VINE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define VINE_PROTO_NAME "vine-state"
#define VINE_PROTO_VERSION 1
#define VINE_PROTO_MAX_BODY (16u << 20)
#define VINE_PROTO_CHUNK (256u << 10)   /* D frames sent by this side */
#define VINE_PROTO_HEADER 9

enum vine_frame_type {
	VINE_FRAME_HELLO = 'H',
	VINE_FRAME_REQUEST = 'Q',
	VINE_FRAME_RESPONSE = 'R',
	VINE_FRAME_ERROR = 'E',
	VINE_FRAME_DATA = 'D',
	VINE_FRAME_END = 'Z',
};

/* The byte stream under the protocol: an SSH channel, a pipe, a socket. */
struct vine_proto_io {
	/* Some bytes (> 0), 0 at end of stream, or -1 with a message. */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* All of buf, or -1 with a message. */
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

/* Where a stream's bytes come from or go (a file, a buffer). */
struct vine_proto_stream {
	/* source: some bytes, 0 at its end, -1 with a message */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* sink: all of buf, or -1 with a message */
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

struct vine_frame {
	int type;
	uint32_t id;
	size_t len;
	char *body;             /* NUL-terminated; valid until the next recv */
};

struct vine_proto {
	struct vine_proto_io io;
	size_t max_body;        /* refuse longer bodies; VINE_PROTO_MAX_BODY */
	uint32_t next_id;       /* the client's next request id */
	int broken;             /* framing or transport failed: unusable */
	int eof;                /* the peer closed the stream between frames */
	/* private */
	struct {
		int rfd, wfd;
		double timeout;
	} fd;
	char *in;               /* read buffer */
	size_t in_off, in_len;
	char *body;
	size_t body_cap;
	char *out;
	size_t out_cap;
};

void vine_proto_init(struct vine_proto *p, const struct vine_proto_io *io);
/* Over file descriptors; timeout in seconds for each read (0: none). */
void vine_proto_init_fd(struct vine_proto *p, int rfd, int wfd, double timeout);
void vine_proto_release(struct vine_proto *p);

/* Send one frame; a body longer than max_body is refused. */
int vine_proto_send(struct vine_proto *p, int type, uint32_t id, const void *body, size_t len);
int vine_proto_send_json(struct vine_proto *p, int type, uint32_t id, json_t *v);
/* An E frame {"error": msg}. */
int vine_proto_send_error(struct vine_proto *p, uint32_t id, const char *msg);
/*
 * Receive one frame into f.  -1 with a message on any failure; p->eof
 * tells a clean close between frames apart from a broken connection.
 */
int vine_proto_recv(struct vine_proto *p, struct vine_frame *f);
/* Parse f's body as JSON; NULL with a message if it is not. */
json_t *vine_proto_json(const struct vine_frame *f);

/*
 * Both sides: send our hello, read the peer's and check that it speaks
 * the same protocol and version.  Data that is not a hello (a login
 * script's greeting, another program) is reported as such.
 */
int vine_proto_hello(struct vine_proto *p);

/*
 * Client: send request (a JSON object with "op"), then upload's bytes as
 * its stream if upload is not NULL, and wait for the answer, passing D
 * frames to download (an error if the server sends any and download is
 * NULL).  Returns 0 with *result (the R body, caller decrefs), 1 when
 * the server answered E (its message in vine_errmsg(), *result the E
 * object), -1 when the connection failed (p->broken; nothing is known of
 * the request's fate).  A failing upload source abandons the stream (E)
 * and returns 1 with the source's message, the connection intact; so
 * does a failing download sink, once the response is read.
 */
int vine_proto_call(struct vine_proto *p, json_t *request, const struct vine_proto_stream *upload,
		    const struct vine_proto_stream *download, json_t **result);

/*
 * Server: read the stream of request id to its end, passing bytes to
 * sink.  0 when it ended with Z and the sink took everything; 1 when the
 * client abandoned it or the sink failed (message set; the stream was
 * read to its end regardless, so the connection stays in step); -1 when
 * the connection failed.
 */
int vine_proto_recv_stream(struct vine_proto *p, uint32_t id, const struct vine_proto_stream *sink);
/* Server: send source's bytes as D frames of request id (the caller then
 * sends the R or E).  0, 1 if the source failed (nothing more was sent),
 * -1 if the connection failed. */
int vine_proto_send_stream(struct vine_proto *p, uint32_t id, const struct vine_proto_stream *source);

#endif
