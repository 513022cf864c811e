/*
 * peer.c - what the peer server and client share: addresses, frames and
 * the handshake MACs (the secret is util/secret.c) (protocol in vine(7), PEER PROTOCOL).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/hmac.h>

#include "cache/cache.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

/* "IP:0" or "[IP6]:0" for a socket address, or NULL. */
static char *listen_form(const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];
	const void *a = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
						: (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;

	if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    !inet_ntop(sa->sa_family, a, ip, sizeof(ip)))
		return NULL;
	return sa->sa_family == AF_INET ? vine_xasprintf("%s:0", ip) : vine_xasprintf("[%s]:0", ip);
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

/* The local address of a UDP socket connected to host (nothing is sent). */
static char *toward(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	char *out = NULL;

	if (getaddrinfo(host, "9", &hints, &res) != 0)
		return NULL;
	for (struct addrinfo *ai = res; ai && !out; ai = ai->ai_next) {
		struct sockaddr_storage me;
		socklen_t len = sizeof(me);
		int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    getsockname(fd, (struct sockaddr *)&me, &len) == 0)
			out = listen_form((struct sockaddr *)&me);
		close(fd);
	}
	freeaddrinfo(res);
	return out;
}

/* The first address this host's name resolves to that is not loopback. */
static char *by_name(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char name[256] = "", *out = NULL;

	if (gethostname(name, sizeof(name) - 1) < 0 || getaddrinfo(name, NULL, &hints, &res) != 0)
		return NULL;
	for (struct addrinfo *ai = res; ai && !out; ai = ai->ai_next)
		if (!is_loopback(ai->ai_addr))
			out = listen_form(ai->ai_addr);
	freeaddrinfo(res);
	return out;
}

char *vine_peer_default_listen(const char *manager)
{
	char *a = NULL;

	if (!manager)
		return vine_xstrdup("127.0.0.1:0");
	if (!(a = toward(manager)) && !(a = by_name()))
		a = vine_xstrdup("127.0.0.1:0");
	return a;
}

int vine_peer_addr_split(const char *addr, int need_port, char **host, char **port)
{
	const char *p, *colon;
	size_t hlen;
	long long v;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || (close[1] != ':' && close[1] != '\0') || close == addr + 1)
			return vine_error("bad address '%s'", addr);
		hlen = (size_t)(close - addr - 1);
		*host = vine_xstrndup(addr + 1, hlen);
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && memchr(addr, ':', (size_t)(colon - addr)))
			return vine_error("bad address '%s' (write an IPv6 address as [ADDR]:PORT)", addr);
		hlen = colon ? (size_t)(colon - addr) : strlen(addr);
		*host = vine_xstrndup(addr, hlen);
	}
	if (strchr(*host, '/')) {
		free(*host);
		*host = NULL;
		return vine_error("bad address '%s'", addr);
	}
	if (!colon) {
		if (need_port || !**host) {
			free(*host);
			*host = NULL;
			return vine_error("bad address '%s': no port", addr);
		}
		*port = vine_xstrdup("0");
		return 0;
	}
	p = colon + 1;
	if (!*p || strspn(p, "0123456789") != strlen(p) || vine_parse_llong(p, 0, 65535, &v) < 0 ||
	    (need_port && v == 0)) {
		free(*host);
		*host = NULL;
		return vine_error("bad address '%s': bad port", addr);
	}
	*port = vine_xasprintf("%lld", v);
	return 0;
}

void vp_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

void vp_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

void vp_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

uint16_t vp_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t vp_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t vp_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int io_error(const char *what)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		errno = ETIMEDOUT;
		return vine_error("%s: timed out", what);
	}
	if (errno == EPIPE || errno == ECONNRESET) {
		errno = ECONNRESET;
		return vine_error("%s: connection closed by peer", what);
	}
	return vine_error_errno("%s", what);
}

int vp_send_all(int fd, const void *p, size_t n, int more)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return io_error("send");
		}
		done += (size_t)k;
	}
	return 0;
}

int vp_send_frame(int fd, int type, const void *payload, size_t n, int more)
{
	unsigned char buf[VP_HDR_LEN + VP_CTRL_MAX];

	buf[0] = (unsigned char)type;
	vp_put32(buf + 1, (uint32_t)n);
	if (n <= VP_CTRL_MAX) {
		/* one send for a small frame: one segment on the wire */
		if (n)
			memcpy(buf + VP_HDR_LEN, payload, n);
		return vp_send_all(fd, buf, VP_HDR_LEN + n, more);
	}
	if (vp_send_all(fd, buf, VP_HDR_LEN, 1) < 0)
		return -1;
	return vp_send_all(fd, payload, n, more);
}

void vp_send_error(int fd, int code, const char *fmt, ...)
{
	unsigned char buf[2 + VP_MSG_MAX + 1];
	va_list ap;
	int n;

	vp_put16(buf, (uint16_t)code);
	va_start(ap, fmt);
	n = vsnprintf((char *)buf + 2, VP_MSG_MAX + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > VP_MSG_MAX)
		n = VP_MSG_MAX;
	/* the error is the last word on this connection: if it cannot be
	 * sent, the connection is closed all the same */
	(void)vp_send_frame(fd, VP_ERROR, buf, 2 + (size_t)n, 0);
}

int vp_recv_all(int fd, void *p, size_t n, int eof_ok)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = recv(fd, (char *)p + done, n - done, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return io_error("receive");
		}
		if (k == 0) {
			if (done == 0 && eof_ok)
				return 1;
			errno = ECONNRESET;
			return vine_error("receive: connection closed by peer");
		}
		done += (size_t)k;
	}
	return 0;
}

int vp_recv_hdr(int fd, int *type, uint32_t *len, int eof_ok)
{
	unsigned char h[VP_HDR_LEN];
	int rc = vp_recv_all(fd, h, sizeof(h), eof_ok);

	if (rc != 0)
		return rc;
	*type = h[0];
	*len = vp_get32(h + 1);
	return 0;
}

int vp_recv_ctrl(int fd, int *type, unsigned char *buf, size_t *len, int eof_ok)
{
	uint32_t n;
	int rc = vp_recv_hdr(fd, type, &n, eof_ok);

	if (rc != 0)
		return rc;
	if (*type == VP_DATA || n > VP_CTRL_MAX) {
		errno = EPROTO;
		return vine_error("protocol error: unexpected frame (type %d, %u bytes)", *type, n);
	}
	if (vp_recv_all(fd, buf, n, 0) < 0)
		return -1;
	*len = n;
	return 0;
}

void vp_mac(const unsigned char *secret, const char *label, uint16_t version,
	    const unsigned char *cnonce, const unsigned char *snonce, unsigned char out[VP_MAC_LEN])
{
	unsigned char msg[16 + 2 + 2 * VP_NONCE_LEN];
	unsigned int n = 0;
	size_t ll = strlen(label);

	/* both labels are 16 bytes: the message layout is fixed */
	memcpy(msg, label, ll);
	vp_put16(msg + ll, version);
	memcpy(msg + ll + 2, cnonce, VP_NONCE_LEN);
	memcpy(msg + ll + 2 + VP_NONCE_LEN, snonce, VP_NONCE_LEN);
	if (!HMAC(EVP_sha256(), secret, VINE_PEER_SECRET_LEN, msg, ll + 2 + 2 * VP_NONCE_LEN, out, &n) ||
	    n != VP_MAC_LEN)
		abort();
}

int vp_cache_dirs(const char *cache, const char *const *subs, int *fds)
{
	struct vine_cache c;
	int rc = 0, i;

	/* vine_cache_open makes the layout and refuses another user's cache */
	if (vine_cache_open(&c, cache) < 0)
		return -1;
	for (i = 0; subs[i]; i++)
		fds[i] = -1;
	for (i = 0; rc == 0 && subs[i]; i++)
		if ((fds[i] = vine_cache_subdir(&c, subs[i])) < 0)
			rc = -1;
	for (i = 0; rc < 0 && subs[i]; i++)
		if (fds[i] >= 0)
			close(fds[i]), fds[i] = -1;
	vine_cache_close(&c);
	return rc;
}

static struct timeval tv_of(double s)
{
	struct timeval tv;

	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1000; /* 0 would mean "wait forever" */
	return tv;
}

int vp_set_rcvtimeo(int fd, double timeout)
{
	struct timeval tv = tv_of(timeout);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return vine_error_errno("cannot set socket timeout");
	return 0;
}

int vp_sock_setup(int fd, double timeout)
{
	struct timeval tv = tv_of(timeout);
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return vine_error_errno("cannot set socket timeout");
	/* headers go out with MSG_MORE before their data; a lone END or
	 * reply must not wait for a delayed ACK (a socket that is not TCP,
	 * the socketpair of a test or fuzzer, has no such delay) */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 && errno != EOPNOTSUPP)
		return vine_error_errno("cannot set TCP_NODELAY");
	return 0;
}
