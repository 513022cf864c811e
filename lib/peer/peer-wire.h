/*
 * peer-wire.h - internal to the peer transport: the frames and the
 * handshake MACs shared by peer-serve.c and peer-client.c.  The format is
 * specified in vine(7), PEER PROTOCOL; keep the two in step.
 */
#ifndef VINE_PEER_WIRE_H
#define VINE_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Frame: type (1 byte), payload length (4 bytes, big-endian), payload. */
#define VP_HDR_LEN 5
enum {
	VP_HELLO = 1,
	VP_CHALLENGE = 2,
	VP_AUTH = 3,
	VP_WELCOME = 4,
	VP_ERROR = 5,
	VP_GET = 16,
	VP_OBJECT = 17,
	VP_DATA = 18,
	VP_END = 19,
};

#define VP_MAGIC "VINEPEER"
#define VP_MAGIC_LEN 8
#define VP_VERSION 1           /* the one version this code speaks */
#define VP_NONCE_LEN 32
#define VP_MAC_LEN 32
#define VP_HELLO_LEN (VP_MAGIC_LEN + 2 + 2 + VP_NONCE_LEN)
#define VP_CHALLENGE_LEN (2 + VP_NONCE_LEN)
#define VP_NODE_MAX 255
#define VP_MSG_MAX 1000
#define VP_GET_LEN (64 + 8 + 8)
#define VP_OBJECT_LEN 9
#define VP_END_LEN 9
#define VP_CTRL_MAX 1024           /* largest non-DATA payload */
#define VP_DATA_MAX (16u << 20)    /* largest DATA payload */
#define VP_COMPLETE 1              /* OBJECT/END flag: the object is complete */

/* ERROR codes */
enum {
	VP_E_AUTH = 1,
	VP_E_VERSION = 2,
	VP_E_BUSY = 3,
	VP_E_NOTFOUND = 4,
	VP_E_BADREQ = 5,
	VP_E_STALLED = 6,
	VP_E_GONE = 7,
	VP_E_IO = 8,
	VP_E_RANGE = 9,
};

#define VP_LABEL_CLIENT "vine-peer client"
#define VP_LABEL_SERVER "vine-peer server"

void vp_put16(unsigned char *p, uint16_t v);
void vp_put32(unsigned char *p, uint32_t v);
void vp_put64(unsigned char *p, uint64_t v);
uint16_t vp_get16(const unsigned char *p);
uint32_t vp_get32(const unsigned char *p);
uint64_t vp_get64(const unsigned char *p);

/*
 * Socket I/O with MSG_NOSIGNAL; every call is bounded by the socket's
 * SO_RCVTIMEO/SO_SNDTIMEO.  On failure the message says what happened and
 * errno is ETIMEDOUT for a timeout, ECONNRESET for a closed connection.
 */
int vp_send_all(int fd, const void *p, size_t n, int more);
int vp_send_frame(int fd, int type, const void *payload, size_t n, int more);
/* Send an ERROR frame, best effort: it is the last word on a connection
 * (a failure to send it only overwrites vine_errmsg). */
void vp_send_error(int fd, int code, const char *fmt, ...) VINE_PRINTF(3, 4);
/* Receive exactly n bytes; 1 on a clean end of stream before the first byte
 * when eof_ok, 0 on success, -1 on error. */
int vp_recv_all(int fd, void *p, size_t n, int eof_ok);
/* Read a frame header. */
int vp_recv_hdr(int fd, int *type, uint32_t *len, int eof_ok);
/* Read a whole control frame (not DATA) into buf (VP_CTRL_MAX bytes). */
int vp_recv_ctrl(int fd, int *type, unsigned char *buf, size_t *len, int eof_ok);

/* HMAC-SHA256(secret, label || version || client nonce || server nonce) */
void vp_mac(const unsigned char *secret, const char *label, uint16_t version,
	    const unsigned char *cnonce, const unsigned char *snonce, unsigned char out[VP_MAC_LEN]);

/*
 * Open the cache with vine_cache_open (which makes its layout and refuses
 * another user's cache), then each of the NULL-terminated subs into fds.
 */
int vp_cache_dirs(const char *cache, const char *const *subs, int *fds);

/* Both timeouts of a socket, and TCP_NODELAY. */
int vp_sock_setup(int fd, double timeout);
int vp_set_rcvtimeo(int fd, double timeout);

#endif
