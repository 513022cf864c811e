/*
 * fuzz-peer-client - the peer client (peer-client.c) handling a server's
 * bytes, in process: vine_fetch_from_fd on one end of a socketpair, a
 * thread of this harness on the other, playing the server.
 *
 * Input: a mode byte, then the server's bytes.  Mode bit 0 clear: the
 * harness's server first passes the handshake honestly, so the bytes
 * answer the client's GET (OBJECT, DATA..., END, ERROR); set: they are the
 * server's whole stream after the client's HELLO (its WELCOME can then
 * never prove the secret: the client's nonce is random).  Bit 1: the
 * cache already holds the first 1000 bytes of the object, so the GET
 * resumes there.  Bit 2: refuse objects over 4096 bytes (max_size).  Bit 3:
 * receive with recv(2), not splice(2).  The object is PF_OBJECT_LEN bytes;
 * whatever the fetch leaves in the cache is removed after each input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"
#include "peer-fuzz.h"

static char *cache, *partial, *object;

struct server {
	int fd, mode;
	const uint8_t *data;
	size_t size;
};

static void server_main(void *arg)
{
	struct server *s = arg;
	unsigned char buf[VP_CTRL_MAX];
	size_t n;
	int type;

	if (s->mode & 1) {
		if (vp_recv_ctrl(s->fd, &type, buf, &n, 0) < 0)
			goto out;
	} else if (pf_server_handshake(s->fd) < 0) {
		goto out;
	}
	/* the client may stop reading at any point: a failed send ends it */
	vp_send_all(s->fd, s->data, s->size, 0);
out:
	shutdown(s->fd, SHUT_WR);
	/* what the client still sends (a second GET) is not read */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_peer_client_opts o = { .secret = pf_secret, .stall_timeout = 5 };
	struct server s = { .mode = size ? data[0] : 0, .data = size ? data + 1 : data,
			    .size = size ? size - 1 : 0 };
	struct vine_fetch *f;
	int sv[2];

	if (!cache) {
		cache = fz_path("cache");
		partial = vine_xasprintf("%s/partial/%s", cache, pf_object_id());
		object = vine_xasprintf("%s/objects/%s", cache, pf_object_id());
		char *d = vine_xasprintf("%s/partial", cache);
		if (vine_mkdir_p(d, 0700) < 0)
			fz_fail("%s", vine_errmsg());
		free(d);
	}
	if (s.mode & 2) {
		unsigned char head[1000];
		for (size_t i = 0; i < sizeof(head); i++)
			head[i] = pf_object_byte(i);
		int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || vine_write_close(fd, partial, head, sizeof(head)) < 0)
			fz_fail("cannot write '%s'", partial);
	}
	if (s.mode & 4)
		o.max_size = 4096;
	if (s.mode & 8)
		setenv("VINE_TEST_NO_SPLICE", "1", 1);
	else
		unsetenv("VINE_TEST_NO_SPLICE");
	f = vine_fetch_open(cache, pf_object_id(), VINE_FETCH_LOCKED);
	if (!f)
		fz_fail("%s", vine_errmsg());
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fz_fail("socketpair: %d", errno);
	s.fd = sv[1];
	pf_start(server_main, &s);
	int st = vine_fetch_from_fd(f, sv[0], "fuzz", &o);
	if (st == VINE_PEER_OK && (!vine_fetch_complete(f) || access(object, F_OK) < 0))
		fz_fail("a fetch succeeded without the object");
	if (st != VINE_PEER_OK && access(object, F_OK) == 0)
		fz_fail("a fetch failed but published the object");
	close(sv[0]);
	pf_join();
	close(sv[1]);
	vine_fetch_close(f);
	unlink(partial);
	unlink(object);
	return 0;
}
