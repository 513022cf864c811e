/*
 * peer-fuzz.c - see peer-fuzz.h.
 */
#include <pthread.h>
#include <string.h>

#include "peer/peer-wire.h"
#include "util/hash.h"
#include "util/util.h"
#include "fuzz.h"
#include "peer-fuzz.h"

const unsigned char pf_secret[VINE_PEER_SECRET_LEN] = {
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
	0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
};

unsigned char pf_object_byte(size_t i)
{
	return (unsigned char)("vine fuzz object\n"[i % 17]);
}

const char *pf_object_id(void)
{
	static char id[VINE_ID_LEN + 1];

	if (!id[0]) {
		struct vine_sha256 h;
		unsigned char buf[PF_OBJECT_LEN];

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pf_object_byte(i);
		vine_sha256_init(&h);
		vine_sha256_update(&h, buf, sizeof(buf));
		vine_sha256_final(&h, id);
	}
	return id;
}

int pf_client_handshake(int fd)
{
	unsigned char buf[VP_CTRL_MAX], cn[VP_NONCE_LEN], mac[VP_MAC_LEN];
	size_t n;
	int type;

	memset(cn, 0xc1, sizeof(cn));
	memcpy(buf, VP_MAGIC, VP_MAGIC_LEN);
	vp_put16(buf + VP_MAGIC_LEN, VP_VERSION);
	vp_put16(buf + VP_MAGIC_LEN + 2, VP_VERSION);
	memcpy(buf + VP_MAGIC_LEN + 4, cn, VP_NONCE_LEN);
	if (vp_send_frame(fd, VP_HELLO, buf, VP_HELLO_LEN, 0) < 0 || vp_recv_ctrl(fd, &type, buf, &n, 0) < 0 ||
	    type != VP_CHALLENGE || n != VP_CHALLENGE_LEN)
		return -1;
	vp_mac(pf_secret, VP_LABEL_CLIENT, VP_VERSION, cn, buf + 2, mac);
	if (vp_send_frame(fd, VP_AUTH, mac, sizeof(mac), 0) < 0 || vp_recv_ctrl(fd, &type, buf, &n, 0) < 0 ||
	    type != VP_WELCOME)
		return -1;
	return 0;
}

int pf_server_handshake(int fd)
{
	unsigned char buf[VP_CTRL_MAX], cn[VP_NONCE_LEN], sn[VP_NONCE_LEN], mac[VP_MAC_LEN];
	size_t n;
	int type;

	if (vp_recv_ctrl(fd, &type, buf, &n, 0) < 0 || type != VP_HELLO || n != VP_HELLO_LEN)
		return -1;
	memcpy(cn, buf + VP_MAGIC_LEN + 4, VP_NONCE_LEN);
	memset(sn, 0x5e, sizeof(sn));
	vp_put16(buf, VP_VERSION);
	memcpy(buf + 2, sn, VP_NONCE_LEN);
	if (vp_send_frame(fd, VP_CHALLENGE, buf, VP_CHALLENGE_LEN, 0) < 0 ||
	    vp_recv_ctrl(fd, &type, buf, &n, 0) < 0 || type != VP_AUTH)
		return -1;
	vp_mac(pf_secret, VP_LABEL_SERVER, VP_VERSION, cn, sn, mac);
	memcpy(buf, mac, VP_MAC_LEN);
	memcpy(buf + VP_MAC_LEN, "fuzz", 4);
	return vp_send_frame(fd, VP_WELCOME, buf, VP_MAC_LEN + 4, 0);
}

/* the helper thread: one job at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void (*job)(void *);
static void *job_arg;
static int started, busy;

static void *helper_main(void *unused)
{
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!busy)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		job(job_arg);
		pthread_mutex_lock(&mu);
		busy = 0;
		pthread_cond_broadcast(&cv);
	}
	return NULL;
}

void pf_start(void (*fn)(void *), void *arg)
{
	pthread_t t;

	pthread_mutex_lock(&mu);
	if (!started) {
		if (pthread_create(&t, NULL, helper_main, NULL) != 0)
			fz_fail("cannot start a thread");
		started = 1;
	}
	job = fn;
	job_arg = arg;
	busy = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

void pf_join(void)
{
	pthread_mutex_lock(&mu);
	while (busy)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}
