/*
 * fuzz-peer-server - the peer server (peer-serve.c) handling a client's
 * bytes, in process: vine_peer_server_serve_fd on one end of a socketpair
 * in a helper thread, this harness on the other.
 *
 * Input: a mode byte, then the client's bytes.  Mode bit 0 clear: the
 * harness first authenticates honestly, so the bytes are requests (GET) of
 * an authenticated session; set: the bytes are the whole client stream,
 * handshake included (which can then never pass: the server's nonce is
 * random).  The server's cache holds a complete object (PF_OBJECT_LEN
 * bytes), a partial one whose writer is gone, and a partial one whose lock
 * this harness holds, as a live writer would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer/peer.h"
#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"
#include "peer-fuzz.h"

#define ORPHAN_ID "1111111111111111111111111111111111111111111111111111111111111111"
#define LIVE_ID "2222222222222222222222222222222222222222222222222222222222222222"

static struct vine_peer_server *srv;

static void put(const char *cache, const char *sub, const char *id, size_t len)
{
	char *p = vine_xasprintf("%s/%s/%s", cache, sub, id);
	unsigned char *buf = vine_xmalloc(len + 1);

	for (size_t i = 0; i < len; i++)
		buf[i] = pf_object_byte(i);
	if (vine_write_file_atomic(p, buf, len, 0600) < 0)
		fz_fail("%s", vine_errmsg());
	free(buf);
	free(p);
}

static void setup(void)
{
	char *cache = fz_path("cache"), *lock;
	struct vine_peer_server_opts o = {
		.cache = cache, .node = "fuzz", .listen = NULL, .secret = pf_secret,
		.io_timeout = 5, .relay_wait = 0.5,
	};
	int fd;

	srv = vine_peer_server_start(&o);
	if (!srv)
		fz_fail("%s", vine_errmsg());
	put(cache, "objects", pf_object_id(), PF_OBJECT_LEN);
	put(cache, "partial", ORPHAN_ID, 1000);
	put(cache, "partial", LIVE_ID, 3000);
	lock = vine_xasprintf("%s/locks/%s", cache, LIVE_ID);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(fd, LOCK_EX) < 0)
		fz_fail("cannot lock '%s'", lock);
	/* fd stays open: the lock is held for the life of the process */
	free(lock);
	free(cache);
}

static void server_main(void *arg)
{
	vine_peer_server_serve_fd(srv, *(int *)arg, "fuzz");
}

/* Send data while reading (and dropping) what comes back, then read to EOF. */
static void converse(int fd, const uint8_t *data, size_t size)
{
	char buf[1 << 16];
	size_t off = 0;
	int out = 1;

	while (1) {
		struct pollfd p = { fd, POLLIN | (out ? POLLOUT : 0), 0 };
		if (out && off == size) {
			shutdown(fd, SHUT_WR);
			out = 0;
			continue;
		}
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			fz_fail("poll: %d", errno);
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
				return;
		}
		if (out && (p.revents & POLLOUT)) {
			ssize_t k = send(fd, data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k > 0)
				off += (size_t)k;
			else if (k < 0 && errno != EAGAIN && errno != EINTR)
				out = 0; /* the server hung up on us: read what it said */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2], mode = size ? data[0] : 0;

	if (!srv)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fz_fail("socketpair: %d", errno);
	pf_start(server_main, &sv[1]);
	if ((mode & 1) || pf_client_handshake(sv[0]) == 0)
		converse(sv[0], size ? data + 1 : data, size ? size - 1 : 0);
	close(sv[0]);
	pf_join();
	return 0;
}
