/*
 * test-peer.c - the peer transport: the library client against the
 * server, and hand-written frames (from the protocol as vine(7) states
 * it) against the server, and a scripted fake server against the client.
 * Everything listens on 127.0.0.x with port 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "util/hash.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

static char *top;
static unsigned char secret[VINE_PEER_SECRET_LEN], other[VINE_PEER_SECRET_LEN];

static unsigned char *random_bytes(size_t n, uint64_t seed)
{
	unsigned char *p = vine_xmalloc(n);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 32);
	}
	return p;
}

static void id_of(const unsigned char *p, size_t n, char id[VINE_ID_LEN + 1])
{
	struct vine_sha256 h;

	vine_sha256_init(&h);
	vine_sha256_update(&h, p, n);
	vine_sha256_final(&h, id);
}

static char *cache_dir(const char *name)
{
	char *c = vine_xasprintf("%s/%s", top, name);
	char *o = vine_xasprintf("%s/objects", c), *p = vine_xasprintf("%s/partial", c);

	vine_mkdir_p(o, 0700);
	vine_mkdir_p(p, 0700);
	free(o);
	free(p);
	return c;
}

static void put(const char *cache, const char *sub, const char *id, const void *p, size_t n)
{
	char *path = vine_xasprintf("%s/%s/%s", cache, sub, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || vine_write_full(fd, p, n) < 0)
		abort();
	close(fd);
	free(path);
}

static int exists(const char *cache, const char *sub, const char *id)
{
	char *path = vine_xasprintf("%s/%s/%s", cache, sub, id);
	int r = access(path, F_OK) == 0;

	free(path);
	return r;
}

static int same_file(const char *cache, const char *id, const unsigned char *p, size_t n)
{
	char *path = vine_xasprintf("%s/objects/%s", cache, id), *d = NULL;
	size_t len = 0;
	int r = vine_read_file(path, n + 1, &d, &len) == 0 && len == n && !memcmp(d, p, n);

	free(d);
	free(path);
	return r;
}

static struct vine_peer_server *serve(const char *cache, const char *ip, int uploads, double relay)
{
	char *listen = vine_xasprintf("%s:0", ip);
	struct vine_peer_server_opts o = {
		.cache = cache, .node = "n1", .listen = listen, .secret = secret,
		.max_uploads = uploads, .io_timeout = 5, .relay_wait = relay,
	};
	struct vine_peer_server *s = vine_peer_server_start(&o);

	if (!s) {
		fprintf(stderr, "server: %s\n", vine_errmsg());
		abort();
	}
	free(listen);
	return s;
}

static struct vine_peer_client_opts copts(const unsigned char *key, double stall)
{
	struct vine_peer_client_opts o = { .secret = key, .connect_timeout = 5, .stall_timeout = stall };

	return o;
}

static uint64_t sent(struct vine_peer_server *s)
{
	struct vine_peer_server_stats st;

	vine_peer_server_stats(s, &st);
	return st.bytes_sent;
}

static void wait_idle(struct vine_peer_server *s)
{
	struct vine_peer_server_stats st;

	for (int i = 0; i < 300; i++) {
		vine_peer_server_stats(s, &st);
		if (st.uploads == 0)
			return;
		usleep(10000);
	}
}

/* ---- a raw client, frames written by hand ---- */

static int raw_connect(const char *addr)
{
	char *host, *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int fd;

	if (vine_peer_addr_split(addr, 1, &host, &port) < 0 || getaddrinfo(host, port, &hints, &res))
		abort();
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		abort();
	freeaddrinfo(res);
	free(host);
	free(port);
	vp_sock_setup(fd, 5);
	return fd;
}

/* Send a frame; -1 if the server has closed the connection. */
static int raw_frame(int fd, int type, const void *p, size_t n)
{
	unsigned char h[5];

	h[0] = (unsigned char)type;
	h[1] = (unsigned char)(n >> 24);
	h[2] = (unsigned char)(n >> 16);
	h[3] = (unsigned char)(n >> 8);
	h[4] = (unsigned char)n;
	if (send(fd, h, 5, MSG_NOSIGNAL) != 5 || (n && send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n))
		return -1;
	return 0;
}

/* Read one frame; returns its type, -1 on a closed connection. */
static int raw_read(int fd, unsigned char *buf, size_t max, uint32_t *len)
{
	int type;

	if (vp_recv_hdr(fd, &type, len, 1) != 0 || *len > max || vp_recv_all(fd, buf, *len, 0) < 0)
		return -1;
	return type;
}

static void hello(unsigned char *p, int minv, int maxv, const unsigned char *cn)
{
	memcpy(p, "VINEPEER", 8);
	p[8] = (unsigned char)(minv >> 8);
	p[9] = (unsigned char)minv;
	p[10] = (unsigned char)(maxv >> 8);
	p[11] = (unsigned char)maxv;
	memcpy(p + 12, cn, 32);
}

/* The handshake as vine(7) states it; returns the type of the server's
 * last reply (WELCOME, ERROR) with its payload in buf. */
static int raw_auth(int fd, const unsigned char *key, unsigned char *buf, uint32_t *len)
{
	unsigned char cn[32], sn[32], p[64], mac[32];

	memset(cn, 7, sizeof(cn));
	hello(p, 1, 1, cn);
	raw_frame(fd, VP_HELLO, p, 44);
	if (raw_read(fd, buf, VP_CTRL_MAX, len) != VP_CHALLENGE || *len != 34 || buf[0] != 0 || buf[1] != 1)
		return -1;
	memcpy(sn, buf + 2, 32);
	vp_mac(key, "vine-peer client", 1, cn, sn, mac);
	raw_frame(fd, VP_AUTH, mac, 32);
	return raw_read(fd, buf, VP_CTRL_MAX, len);
}

static int raw_get(int fd, const char *id, size_t idlen, uint64_t off, uint64_t len)
{
	unsigned char p[80] = { 0 };

	memcpy(p, id, idlen);
	vp_put64(p + 64, off);
	vp_put64(p + 72, len);
	return raw_frame(fd, VP_GET, p, 80);
}

/* Read DATA frames into out until a non-DATA frame, whose type is returned. */
static int raw_data(int fd, unsigned char *out, size_t *got, size_t max, unsigned char *buf, uint32_t *len)
{
	for (;;) {
		int type;
		if (vp_recv_hdr(fd, &type, len, 0) < 0)
			return -1;
		if (type != VP_DATA) {
			if (*len > VP_CTRL_MAX || vp_recv_all(fd, buf, *len, 0) < 0)
				return -1;
			return type;
		}
		if (*got + *len > max || vp_recv_all(fd, out + *got, *len, 0) < 0)
			return -1;
		*got += *len;
	}
}

/* ---- tests ---- */

static void test_addr(void)
{
	char *h = NULL, *p = NULL;

	check_int(vine_peer_addr_split("127.0.0.2:4000", 1, &h, &p), ==, 0);
	check_str(h, ==, "127.0.0.2");
	check_str(p, ==, "4000");
	free(h), free(p);
	check_int(vine_peer_addr_split("[::1]:0", 0, &h, &p), ==, 0);
	check_str(h, ==, "::1");
	check_str(p, ==, "0");
	free(h), free(p);
	check_int(vine_peer_addr_split(":123", 0, &h, &p), ==, 0);
	check_str(h, ==, "");
	check_str(p, ==, "123");
	free(h), free(p);
	check_int(vine_peer_addr_split("node7", 0, &h, &p), ==, 0);
	check_str(h, ==, "node7");
	check_str(p, ==, "0");
	free(h), free(p);
	check_int(vine_peer_addr_split("node7", 1, &h, &p), <, 0);
	check_int(vine_peer_addr_split("node7:0", 1, &h, &p), <, 0);
	check_int(vine_peer_addr_split("node7:65536", 0, &h, &p), <, 0);
	check_int(vine_peer_addr_split("node7:-1", 0, &h, &p), <, 0);
	check_int(vine_peer_addr_split("node7:1x", 0, &h, &p), <, 0);
	check_int(vine_peer_addr_split("::1:80", 0, &h, &p), <, 0);
	check_int(vine_peer_addr_split("[::1", 0, &h, &p), <, 0);
	check_int(vine_peer_addr_split("[]:80", 0, &h, &p), <, 0);
	CHECK(strstr(vine_errmsg(), "[]:80") != NULL);
	check_int(vine_peer_addr_split("/shared/env.tar.gz:80", 1, &h, &p), <, 0);
}

static void test_secret(void)
{
	unsigned char s[32], t[32];
	char hex[65], *path = vine_xasprintf("%s/secret", top);

	check_int(vine_peer_secret_new(s), ==, 0);
	vine_peer_secret_hex(s, hex);
	check_int(strlen(hex), ==, 64);
	CHECK(vine_id_valid(hex));
	check_int(vine_peer_secret_parse(hex, 64, t), ==, 0);
	CHECK(!memcmp(s, t, 32));
	hex[64] = '\n';
	check_int(vine_peer_secret_parse(hex, 65, t), ==, 0);
	CHECK(!memcmp(s, t, 32));
	check_int(vine_peer_secret_parse(hex, 63, t), <, 0);
	hex[3] = 'g';
	check_int(vine_peer_secret_parse(hex, 64, t), <, 0);
	check_int(vine_peer_secret_parse("AB", 2, t), <, 0);

	vine_peer_secret_hex(s, hex);
	hex[64] = '\n';
	check_int(vine_write_file_atomic(path, hex, 65, 0600), ==, 0);
	check_int(vine_peer_secret_load(path, t), ==, 0);
	CHECK(!memcmp(s, t, 32));
	chmod(path, 0640);
	check_int(vine_peer_secret_load(path, t), <, 0);
	CHECK(strstr(vine_errmsg(), "readable by others") != NULL);
	check_int(vine_write_file_atomic(path, "short\n", 6, 0600), ==, 0);
	check_int(vine_peer_secret_load(path, t), <, 0);
	CHECK(strstr(vine_errmsg(), "hex digits") != NULL);
	free(path);
	check_str(vine_peer_status_name(VINE_PEER_EBUSY), ==, "busy");
	check_str(vine_peer_status_name(99), ==, "unknown");
}

static void test_fetch(void)
{
	size_t n = (3u << 20) + 12345;
	unsigned char *data = random_bytes(n, 1);
	char id[65], *a = cache_dir("f-a"), *b = cache_dir("f-b"), *c = cache_dir("f-c");
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	const char *src[1];

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	check_int(strncmp(vine_peer_server_addr(s), "127.0.0.2:", 10), ==, 0);
	src[0] = vine_peer_server_addr(s);

	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	CHECK(!exists(b, "partial", id));
	check_int(sent(s), ==, n);
	/* already there: nothing moves */
	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_OK);
	check_int(sent(s), ==, n);

	/* resume: c already holds a prefix of the object */
	put(c, "partial", id, data, 1000000);
	check_int(vine_peer_fetch(c, id, src, 1, &o), ==, VINE_PEER_OK);
	CHECK(same_file(c, id, data, n));
	check_int(sent(s), ==, n + (n - 1000000));

	/* not there */
	char missing[65];
	memset(missing, 'a', 64);
	missing[64] = '\0';
	check_int(vine_peer_fetch(c, missing, src, 1, &o), ==, VINE_PEER_ENOTFOUND);
	CHECK(strstr(vine_errmsg(), "no such object") != NULL);
	CHECK(!exists(c, "partial", missing));
	CHECK(!exists(c, "objects", missing));

	/* a bad id never reaches the network */
	check_int(vine_peer_fetch(c, "../../etc/passwd", src, 1, &o), ==, VINE_PEER_ELOCAL);
	CHECK(strstr(vine_errmsg(), "not an object id") != NULL);
	vine_peer_server_stop(s);
	free(data), free(a), free(b), free(c);
}

/* the peer paths open the cache as vine_cache_open does: never another user's */
static void test_foreign_cache(void)
{
	char *c = vine_xasprintf("%s/foreign", top), id[65];
	struct vine_peer_server_opts o = {
		.cache = c, .node = "n1", .listen = "127.0.0.2:0", .secret = secret,
	};

	if (geteuid() != 0) {
		free(c);
		return; /* only root can give a directory away */
	}
	memset(id, 'a', 64);
	id[64] = '\0';
	check_int(mkdir(c, 0700), ==, 0);
	check_int(chown(c, 65534, 65534), ==, 0);
	CHECK(vine_fetch_open(c, id, 0) == NULL);
	CHECK(strstr(vine_errmsg(), "belongs to another user") != NULL);
	CHECK(vine_peer_server_start(&o) == NULL);
	CHECK(strstr(vine_errmsg(), "belongs to another user") != NULL);
	free(c);
}

static void test_bad_prefix(void)
{
	size_t n = 2u << 20;
	unsigned char *data = random_bytes(n, 2), *bad = random_bytes(n, 3);
	char id[65], *a = cache_dir("p-a"), *b = cache_dir("p-b");
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	struct vine_fetch *f;
	const char *src[1];

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	src[0] = vine_peer_server_addr(s);

	/* a wrong prefix is found out at the end: discarded, named, gone */
	put(b, "partial", id, bad, 5000);
	f = vine_fetch_open(b, id, 0);
	if (CHECK(f))
		check_int(vine_fetch_offset(f), ==, 5000);
	check_int(vine_fetch_from(f, src[0], &o), ==, VINE_PEER_ECORRUPT);
	CHECK(strstr(vine_errmsg(), "hash mismatch") != NULL);
	CHECK(strstr(vine_errmsg(), src[0]) != NULL);
	CHECK(!exists(b, "objects", id));
	CHECK(!exists(b, "partial", id));
	check_int(vine_fetch_offset(f), ==, 0);
	/* the next attempt starts from zero and succeeds */
	check_int(vine_fetch_from(f, src[0], &o), ==, VINE_PEER_OK);
	CHECK(vine_fetch_complete(f));
	vine_fetch_close(f);
	CHECK(same_file(b, id, data, n));

	/* a partial copy longer than the object: the server says RANGE, the
	 * client throws its copy away and starts over on the same connection */
	char *pub = vine_xasprintf("%s/objects/%s", b, id);
	unlink(pub);
	free(pub);
	unsigned char *longer = random_bytes(n + 10, 4);
	memcpy(longer, data, n);
	put(b, "partial", id, longer, n + 10);
	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	vine_peer_server_stop(s);
	free(data), free(bad), free(longer), free(a), free(b);
}

static void test_corrupt_source(void)
{
	size_t n = 1u << 20;
	unsigned char *data = random_bytes(n, 5);
	char id[65], *a = cache_dir("c-a"), *g = cache_dir("c-g"), *b = cache_dir("c-b");
	struct vine_peer_server *sa, *sg;
	struct vine_peer_client_opts o = copts(secret, 5);
	const char *src[2];

	id_of(data, n, id);
	data[n / 2] ^= 1;
	put(a, "objects", id, data, n);   /* a's copy has one bit flipped */
	data[n / 2] ^= 1;
	put(g, "objects", id, data, n);
	sa = serve(a, "127.0.0.2", 4, 0);
	sg = serve(g, "127.0.0.3", 4, 0);
	src[0] = vine_peer_server_addr(sa);
	src[1] = vine_peer_server_addr(sg);
	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_ECORRUPT);
	CHECK(strstr(vine_errmsg(), "hash mismatch") != NULL);
	CHECK(!exists(b, "objects", id));
	CHECK(!exists(b, "partial", id));
	/* with a good second source the object arrives, from scratch */
	check_int(vine_peer_fetch(b, id, src, 2, &o), ==, VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	check_int(sent(sg), ==, n);
	vine_peer_server_stop(sa);
	vine_peer_server_stop(sg);
	free(data), free(a), free(g), free(b);
}

static int nfailed;
static void count_failed(void *ctx, const char *addr, int status, const char *msg)
{
	nfailed++;
}

static void test_auth(void)
{
	size_t n = 100000;
	unsigned char *data = random_bytes(n, 6), buf[VP_CTRL_MAX];
	char id[65], *a = cache_dir("a-a"), *b = cache_dir("a-b");
	struct vine_peer_server *s;
	struct vine_peer_server_stats st;
	struct vine_peer_client_opts o = copts(other, 5);
	const char *src[2];
	uint32_t len;
	int fd;

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	src[0] = vine_peer_server_addr(s);

	/* the wrong secret: refused, nothing received, nothing left behind */
	o.source_failed = count_failed;
	nfailed = 0;
	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_EAUTH);
	CHECK(strstr(vine_errmsg(), "authentication failed") != NULL);
	check_int(nfailed, ==, 1);
	CHECK(!exists(b, "objects", id));
	CHECK(!exists(b, "partial", id));
	vine_peer_server_stats(s, &st);
	check_int(st.refused_auth, ==, 1);
	check_int(st.bytes_sent, ==, 0);
	check_int(st.sessions, ==, 0);

	/* by hand: a request before authenticating gets nothing at all */
	fd = raw_connect(src[0]);
	raw_get(fd, id, 64, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, -1);
	close(fd);
	/* not a vine peer: closed without a word */
	fd = raw_connect(src[0]);
	check_int(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL), ==, 18);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, -1);
	close(fd);
	/* no version in common */
	fd = raw_connect(src[0]);
	unsigned char h[44], cn[32] = { 0 };
	hello(h, 2, 3, cn);
	raw_frame(fd, VP_HELLO, h, 44);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_VERSION);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, -1);
	close(fd);
	/* wrong MAC: ERROR AUTH, then the connection is closed, even to a GET */
	fd = raw_connect(src[0]);
	check_int(raw_auth(fd, other, buf, &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_AUTH);
	raw_get(fd, id, 64, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, -1);
	close(fd);
	/* the right MAC: WELCOME carries the server's proof and its node name */
	fd = raw_connect(src[0]);
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	check_int(len, ==, 32 + 2);
	CHECK(!memcmp(buf + 32, "n1", 2));
	close(fd);
	vine_peer_server_stats(s, &st);
	check_int(st.refused_auth, ==, 2);
	check_int(st.bytes_sent, ==, 0);
	vine_peer_server_stop(s);
	free(data), free(a), free(b);
}

static void test_requests(void)
{
	size_t n = 200000;
	unsigned char *data = random_bytes(n, 7), buf[VP_CTRL_MAX], *got = vine_xmalloc(n);
	char id[65], *a = cache_dir("r-a"), *outside = vine_xasprintf("%s/outside", top);
	struct vine_peer_server *s;
	size_t g = 0;
	uint32_t len;
	int fd;

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);

	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	/* a byte range */
	raw_get(fd, id, 64, 1000, 5000);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(len, ==, 9);
	check_int(buf[0], ==, VP_COMPLETE);
	check_int(vp_get64(buf + 1), ==, n);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_END);
	check_int(g, ==, 5000);
	CHECK(!memcmp(got, data + 1000, 5000));
	check_int(len, ==, 9);
	check_int(buf[0], ==, VP_COMPLETE);
	check_int(vp_get64(buf + 1), ==, n);
	/* a range past the end is cut at the end */
	g = 0;
	raw_get(fd, id, 64, n - 10, 100);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_END);
	check_int(g, ==, 10);
	CHECK(!memcmp(got, data + n - 10, 10));
	/* at the very end: no data, END */
	g = 0;
	raw_get(fd, id, 64, n, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_END);
	check_int(g, ==, 0);
	/* beyond it: RANGE, and the session goes on */
	raw_get(fd, id, 64, n + 1, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_RANGE);
	/* unknown object: NOTFOUND, and the session goes on */
	char missing[65];
	memset(missing, 'b', 64);
	raw_get(fd, missing, 64, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_NOTFOUND);
	/* a symlink in the cache is not followed */
	put(top, "", "outside", "secret stuff", 12);
	char *link = vine_xasprintf("%s/objects/%s", a, missing);
	check_int(symlink(outside, link), ==, 0);
	raw_get(fd, missing, 64, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_NOTFOUND);
	/* a path-like name: BADREQ, then closed */
	raw_get(fd, "../outside", 10, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_BADREQ);
	CHECK(strstr((char *)buf + 2, "not an object id") != NULL);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, -1);
	close(fd);

	/* other names that are not ids: uppercase, 64 bytes of path */
	const char *bad[] = {
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"../../../../../../../../../../../../../../../../../../etc/passwd",
	};
	for (size_t i = 0; i < 2; i++) {
		fd = raw_connect(vine_peer_server_addr(s));
		check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
		raw_get(fd, bad[i], 64, 0, 0);
		check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
		check_int(vp_get16(buf), ==, VP_E_BADREQ);
		close(fd);
	}
	/* a frame that is not GET, and a GET of the wrong size */
	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	raw_frame(fd, VP_GET, "x", 1);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_BADREQ);
	close(fd);
	check_int(sent(s), ==, 5010);
	vine_peer_server_stop(s);
	free(link), free(outside), free(data), free(got), free(a);
}

/* A client that dribbles its handshake is cut off after the handshake
 * timeout (here 1 s, the I/O timeout) even though no single receive times out. */
static void test_slow_handshake(void)
{
	char *a = cache_dir("h-a");
	struct vine_peer_server_opts o = {
		.cache = a, .listen = "127.0.0.2:0", .secret = secret, .io_timeout = 1,
	};
	struct vine_peer_server *s = vine_peer_server_start(&o);
	unsigned char h[49] = { VP_HELLO, 0, 0, 0, 44 }, cn[32] = { 0 };
	double t0 = vine_now_mono();
	int fd = raw_connect(vine_peer_server_addr(s)), cut = 0;

	hello(h + 5, 1, 1, cn);
	for (size_t i = 0; i < sizeof(h) - 1; i++) {
		if (send(fd, h + i, 1, MSG_NOSIGNAL) != 1) {
			cut = 1;
			break;
		}
		usleep(300000);
		if (vine_now_mono() - t0 > 5)
			break;
	}
	CHECK(cut);
	check_dbl(vine_now_mono() - t0, <, 4);
	close(fd);
	vine_peer_server_stop(s);
	free(a);
}

static void test_busy(void)
{
	unsigned char buf[VP_CTRL_MAX];
	char *a = cache_dir("b-a");
	struct vine_peer_server *s = serve(a, "127.0.0.2", 1, 0);
	struct vine_peer_server_stats st;
	uint32_t len;
	int f1, f2, f3;

	f1 = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(f1, secret, buf, &len), ==, VP_WELCOME);
	f2 = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(f2, secret, buf, &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_BUSY);
	check_int(raw_read(f2, buf, sizeof(buf), &len), ==, -1);
	close(f2);
	/* BUSY is only for the authenticated */
	f2 = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(f2, other, buf, &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_AUTH);
	close(f2);
	vine_peer_server_stats(s, &st);
	check_int(st.uploads, ==, 1);
	check_int(st.refused_busy, ==, 1);
	check_int(st.refused_auth, ==, 1);
	close(f1);
	wait_idle(s);
	f3 = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(f3, secret, buf, &len), ==, VP_WELCOME);
	close(f3);
	vine_peer_server_stop(s);
	free(a);
}

/* 100 idle connections without the secret: authenticated peers are still served */
static void test_idle_flood(void)
{
	size_t n = 100000;
	unsigned char *data = random_bytes(n, 11);
	char id[65], *a = cache_dir("if-a"), *b = cache_dir("if-b");
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	const char *src[1];
	int idle[100];

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	src[0] = vine_peer_server_addr(s);
	for (int i = 0; i < 100; i++)
		idle[i] = raw_connect(src[0]);
	/* before: 20 of them (4 uploads + 16) filled every slot, so the
	 * server closed each new connection, the peer's too */
	/* after: the peer is served.  An idle connection whose handshake the
	 * kernel completes late (a full accept queue) can still reach the
	 * server after the peer's and cut it as the oldest waiting one, so the
	 * peer tries again, as the source loop does; the old server closed
	 * every attempt at once, for as long as the idle ones stayed */
	double t0 = vine_now_mono();
	int rc = VINE_PEER_ECONNECT;
	for (int k = 0; k < 5 && rc != VINE_PEER_OK; k++)
		rc = vine_peer_fetch(b, id, src, 1, &o);
	check_int(rc, ==, VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	check_dbl(vine_now_mono() - t0, <, 10);
	for (int i = 0; i < 100; i++)
		close(idle[i]);
	vine_peer_server_stop(s);
	free(data);
	free(a);
	free(b);
}

/* The server's log lines, kept for a test to look at. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char server_log[8192];

static void keep_log(void *ctx, const char *line)
{
	pthread_mutex_lock(&log_mu);
	size_t n = strlen(server_log);
	snprintf(server_log + n, sizeof(server_log) - n, "%s\n", line);
	pthread_mutex_unlock(&log_mu);
}

/*
 * A client that trickles its reads loses its upload slot to the
 * whole-transfer progress deadline.  The reader takes 64 KiB every 20 ms
 * (some 3 MB/s): fast enough that no single send waits anywhere near the
 * 2 s socket timeout (so per-send timeouts alone never cut it), too slow
 * for min_progress, raised to 32 MiB every 2 s.  The 64 MiB object would
 * take it some 20 s; the deadline cuts it within two windows, and says so.
 */
static void test_trickle(void)
{
	size_t n = 64u << 20;
	unsigned char *data = random_bytes(n, 12), buf[VP_CTRL_MAX];
	char id[65], *a = cache_dir("tr-a");
	struct vine_peer_server_opts so = {
		.cache = a, .node = "n1", .listen = "127.0.0.2:0", .secret = secret,
		.max_uploads = 1, .io_timeout = 2, .min_progress = 32u << 20,
		.log = keep_log,
	};
	struct vine_peer_server *s;
	struct vine_peer_server_stats st;
	uint32_t len;
	uint64_t got = 0;
	int fd, cut = 0;

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	server_log[0] = '\0';
	s = vine_peer_server_start(&so);
	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	check_int(raw_get(fd, id, 64, 0, n), ==, 0);
	double t0 = vine_now_mono();
	while (vine_now_mono() - t0 < 15) {
		vine_peer_server_stats(s, &st);
		if (st.uploads == 0) {
			cut = 1;
			break;
		}
		static unsigned char chunk[65536];
		ssize_t k = recv(fd, chunk, sizeof(chunk), 0);
		if (k > 0)
			got += (uint64_t)k;
		usleep(20000);
	}
	CHECK(cut);
	/* it was still reading: the whole object never came */
	check_int(got, <, n);
	pthread_mutex_lock(&log_mu);
	CHECK(strstr(server_log, "send: the client takes less than 33554432 bytes in 2 s") != NULL);
	if (!strstr(server_log, "takes less than"))
		fprintf(stderr, "server log:\n%s", server_log);
	pthread_mutex_unlock(&log_mu);
	close(fd);
	vine_peer_server_stop(s);
	free(data);
	free(a);
}

/* Take locks/<id> as a process working on the object does. */
static int lock_object(const char *cache, const char *id)
{
	char *dir = vine_xasprintf("%s/locks", cache), *path = vine_xasprintf("%s/%s", dir, id);
	int fd;

	vine_mkdir_p(dir, 0700);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		abort();
	free(dir);
	free(path);
	return fd;
}

/* Open partial/<id> for appending, as its writer. */
static int open_partial(const char *cache, const char *id)
{
	char *path = vine_xasprintf("%s/partial/%s", cache, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (fd < 0)
		abort();
	free(path);
	return fd;
}

static void test_relay(void)
{
	size_t n = (4u << 20) + 777, half = n / 2;
	unsigned char *data = random_bytes(n, 8), buf[VP_CTRL_MAX], *got = vine_xmalloc(n);
	char id[65], *a = cache_dir("l-a");
	struct vine_peer_server *s;
	size_t g = 0;
	uint32_t len;
	int fd, w, lk;
	double t0;

	id_of(data, n, id);
	s = serve(a, "127.0.0.2", 4, 0);
	/* a writer holds the lock and has half the object */
	lk = lock_object(a, id);
	w = open_partial(a, id);
	check_int(vine_write_full(w, data, half), ==, 0);
	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	raw_get(fd, id, 64, 0, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(buf[0], ==, 0);
	check_int(vp_get64(buf + 1), ==, half);
	while (g < half) {
		int type;
		check_int(vp_recv_hdr(fd, &type, &len, 0), ==, 0);
		check_int(type, ==, VP_DATA);
		if (type != VP_DATA || g + len > half || vp_recv_all(fd, got + g, len, 0) < 0)
			break;
		g += len;
	}
	check_int(g, ==, half);
	CHECK(!memcmp(got, data, half));
	/* the rest arrives and the copy is published: the server follows */
	check_int(vine_write_full(w, data + half, n - half), ==, 0);
	char *from = vine_xasprintf("%s/partial/%s", a, id), *to = vine_xasprintf("%s/objects/%s", a, id);
	check_int(rename(from, to), ==, 0);
	close(w);
	close(lk);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_END);
	check_int(g, ==, n);
	CHECK(!memcmp(got, data, n));
	check_int(len, ==, 9);
	check_int(buf[0], ==, VP_COMPLETE);
	check_int(vp_get64(buf + 1), ==, n);
	close(fd);

	/* a partial copy nobody writes: what there is, then STALLED, soon */
	char id2[65];
	id_of(data, half, id2);
	put(a, "partial", id2, data, 1000);
	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	raw_get(fd, id2, 64, 0, 0);
	t0 = vine_now_mono();
	g = 0;
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_ERROR);
	check_int(g, ==, 1000);
	check_int(vp_get16(buf), ==, VP_E_STALLED);
	CHECK(strstr((char *)buf + 2, "not being received") != NULL);
	check_dbl(vine_now_mono() - t0, <, 3);
	close(fd);

	/* a writer that stops: STALLED after the relay wait */
	struct vine_peer_server *s1 = serve(a, "127.0.0.3", 4, 1.0);
	lk = lock_object(a, id2);
	fd = raw_connect(vine_peer_server_addr(s1));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	raw_get(fd, id2, 64, 1000, 0);
	t0 = vine_now_mono();
	g = 0;
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	check_int(vp_get64(buf + 1), ==, 1000);
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_ERROR);
	check_int(g, ==, 0);
	check_int(vp_get16(buf), ==, VP_E_STALLED);
	CHECK(strstr((char *)buf + 2, "did not grow") != NULL);
	check_dbl(vine_now_mono() - t0, >, 0.9);
	check_dbl(vine_now_mono() - t0, <, 3);
	close(fd);
	vine_peer_server_stop(s1);

	/* a partial copy that its writer discards: GONE */
	fd = raw_connect(vine_peer_server_addr(s));
	check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
	raw_get(fd, id2, 64, 1000, 0);
	check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
	usleep(50000);
	char *p2 = vine_xasprintf("%s/partial/%s", a, id2);
	unlink(p2);
	g = 0;
	check_int(raw_data(fd, got, &g, n, buf, &len), ==, VP_ERROR);
	check_int(vp_get16(buf), ==, VP_E_GONE);
	close(fd);
	close(lk);
	vine_peer_server_stop(s);
	free(p2), free(from), free(to), free(data), free(got), free(a);
}

static void test_vanishing_client(void)
{
	size_t n = 24u << 20;
	unsigned char *data = random_bytes(n, 9), buf[VP_CTRL_MAX];
	char id[65], *a = cache_dir("v-a"), *b = cache_dir("v-b");
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	const char *src[1];
	uint32_t len;
	int fd;

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	src[0] = vine_peer_server_addr(s);
	for (int i = 0; i < 3; i++) {
		/* ask for everything, read a little, hang up */
		fd = raw_connect(src[0]);
		check_int(raw_auth(fd, secret, buf, &len), ==, VP_WELCOME);
		raw_get(fd, id, 64, 0, 0);
		check_int(raw_read(fd, buf, sizeof(buf), &len), ==, VP_OBJECT);
		check_int(recv(fd, buf, sizeof(buf), 0), >, 0);
		close(fd);
	}
	/* still serving (and this process got no SIGPIPE) */
	wait_idle(s);
	check_int(vine_peer_fetch(b, id, src, 1, &o), ==, VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	vine_peer_server_stop(s);
	free(data), free(a), free(b);
}

struct fetcher {
	const char *cache, *id, *src;
	int st;
};

static void *fetch_thread(void *arg)
{
	struct fetcher *f = arg;
	struct vine_peer_client_opts o = copts(secret, 5);

	f->st = vine_peer_fetch(f->cache, f->id, &f->src, 1, &o);
	return NULL;
}

static void test_concurrent(void)
{
	size_t n = 32u << 20;
	unsigned char *data = random_bytes(n, 10);
	char id[65], *a = cache_dir("k-a"), *b = cache_dir("k-b");
	struct vine_peer_server *s;
	struct fetcher f[3];
	pthread_t t[3];

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	for (int i = 0; i < 3; i++) {
		f[i] = (struct fetcher){ b, id, vine_peer_server_addr(s), -1 };
		pthread_create(&t[i], NULL, fetch_thread, &f[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		check_int(f[i].st, ==, VINE_PEER_OK);
	}
	CHECK(same_file(b, id, data, n));
	/* one of them fetched, the others waited for it */
	check_int(sent(s), ==, n);
	vine_peer_server_stop(s);
	free(data), free(a), free(b);
}

struct locked_fetch {
	const char *cache, *id, *src;
	int st;
	double done;
};

static void *locked_fetch_thread(void *arg)
{
	struct locked_fetch *l = arg;
	struct vine_peer_client_opts o = copts(secret, 5);

	l->st = vine_peer_fetch(l->cache, l->id, &l->src, 1, &o);
	l->done = vine_now_mono();
	return NULL;
}

/* The node cache's lock: a fetch waits while another process holds
 * locks/<id>; a caller that holds it (vine_seed) says so and keeps the
 * verified object in partial/ to publish it itself. */
static void test_locking(void)
{
	size_t n = 1u << 20;
	unsigned char *data = random_bytes(n, 12);
	char id[65], *a = cache_dir("x-a"), *b = cache_dir("x-b"), *c = cache_dir("x-c");
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	struct locked_fetch l;
	struct vine_fetch *f;
	struct stat st;
	pthread_t t;
	double released;
	int lk;

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	s = serve(a, "127.0.0.2", 4, 0);
	lk = lock_object(b, id);
	l = (struct locked_fetch){ b, id, vine_peer_server_addr(s), -1, 0 };
	pthread_create(&t, NULL, locked_fetch_thread, &l);
	usleep(300000);
	CHECK(!exists(b, "partial", id));
	check_int(sent(s), ==, 0);
	released = vine_now_mono();
	close(lk);
	pthread_join(t, NULL);
	check_int(l.st, ==, VINE_PEER_OK);
	check_dbl(l.done, >=, released);
	CHECK(same_file(b, id, data, n));
	char *obj = vine_xasprintf("%s/objects/%s", b, id);
	check_int(stat(obj, &st), ==, 0);
	check_int((st.st_mode & 0777), ==, 0444);
	free(obj);

	lk = lock_object(c, id);
	f = vine_fetch_open(c, id, VINE_FETCH_LOCKED | VINE_FETCH_KEEP);
	if (CHECK(f))
		CHECK(!vine_fetch_complete(f));
	if (CHECK(f))
		check_int(vine_fetch_from(f, vine_peer_server_addr(s), &o), ==, VINE_PEER_OK);
	if (CHECK(f))
		CHECK(vine_fetch_complete(f));
	char *part = vine_xasprintf("%s/partial/%s", c, id);
	if (CHECK(f))
		check_str(vine_fetch_path(f), ==, part);
	vine_fetch_close(f);
	CHECK(exists(c, "partial", id));
	CHECK(!exists(c, "objects", id));
	char *d = NULL;
	size_t len = 0;
	check_int(vine_read_file(part, n + 1, &d, &len), ==, 0);
	check_int(len, ==, n);
	CHECK(!memcmp(d, data, n));
	free(d), free(part);
	close(lk);
	vine_peer_server_stop(s);
	free(data), free(a), free(b), free(c);
}

static void test_from_file(void)
{
	size_t n = (5u << 20) + 3;
	unsigned char *data = random_bytes(n, 13);
	char id[65], *b = cache_dir("i-b"), *origin = vine_xasprintf("%s/origin.bin", top);
	char *bad = vine_xasprintf("%s/bad.bin", top), *nothing = vine_xasprintf("%s/none", top);
	struct vine_peer_client_opts o = copts(secret, 5);
	struct vine_fetch *f;
	const char *src[3];

	id_of(data, n, id);
	put(top, "", "origin.bin", data, n);
	data[7] ^= 0x80;
	put(top, "", "bad.bin", data, n);
	data[7] ^= 0x80;

	/* resumed from a partial copy */
	put(b, "partial", id, data, 4000000);
	f = vine_fetch_open(b, id, 0);
	if (CHECK(f))
		check_int(vine_fetch_offset(f), ==, 4000000);
	if (CHECK(f))
		check_int(vine_fetch_from_file(f, origin, &o), ==, VINE_PEER_OK);
	vine_fetch_close(f);
	CHECK(same_file(b, id, data, n));

	/* a wrong file is found out; a missing one is "not found" */
	char *pub = vine_xasprintf("%s/objects/%s", b, id);
	unlink(pub);
	f = vine_fetch_open(b, id, 0);
	if (CHECK(f))
		check_int(vine_fetch_from_file(f, bad, &o), ==, VINE_PEER_ECORRUPT);
	CHECK(strstr(vine_errmsg(), "hash mismatch"));
	CHECK(strstr(vine_errmsg(), bad));
	if (CHECK(f))
		check_int(vine_fetch_from_file(f, nothing, &o), ==, VINE_PEER_ENOTFOUND);
	vine_fetch_close(f);
	CHECK(!exists(b, "objects", id));
	CHECK(!exists(b, "partial", id));

	/* a partial copy longer than the file is thrown away */
	unsigned char *longer = random_bytes(n + 5, 14);
	memcpy(longer, data, n);
	put(b, "partial", id, longer, n + 5);
	/* peers first, the file last */
	src[0] = "127.0.0.3:1";
	src[1] = bad;
	src[2] = origin;
	nfailed = 0;
	o.source_failed = count_failed;
	check_int(vine_peer_fetch(b, id, src, 3, &o), ==, VINE_PEER_OK);
	check_int(nfailed, ==, 2);
	CHECK(same_file(b, id, data, n));
	free(pub), free(longer), free(data), free(b), free(origin), free(bad), free(nothing);
}

/* A chooser as the state will be: busy at first, then a dead peer, then
 * a good one; every transfer reported back. */
struct script {
	const char *steps[8];   /* "wait", an address, or NULL: none */
	int i, waits;
	char log[1024];
};

static int script_next(void *ctx, const char *id, uint64_t offset, char **src, double *wait)
{
	struct script *sc = ctx;
	const char *s = sc->steps[sc->i++];

	if (!s)
		return vine_error("the state has no source");
	if (!strcmp(s, "wait")) {
		sc->waits++;
		*wait = 0.1;
		return 1;
	}
	*src = vine_xstrdup(s);
	return 0;
}

static void script_done(void *ctx, const char *src, int status, uint64_t from, uint64_t to, const char *msg)
{
	struct script *sc = ctx;
	size_t n = strlen(sc->log);

	snprintf(sc->log + n, sizeof(sc->log) - n, "%s %s %llu-%llu;", src, vine_peer_status_name(status),
		 (unsigned long long)from, (unsigned long long)to);
}

static void test_sources(void)
{
	size_t n = 1u << 20;
	unsigned char *data = random_bytes(n, 15);
	char id[65], *a = cache_dir("s-a"), *b = cache_dir("s-b"), *c = cache_dir("s-c"), want[512];
	struct vine_peer_server *s;
	struct vine_peer_client_opts o = copts(secret, 5);
	struct script sc = { .steps = { "wait", "wait", "127.0.0.3:1", NULL, NULL } };
	struct vine_peer_sources srcs = { script_next, script_done, &sc, NULL };
	double t0 = vine_now_mono();

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	put(b, "partial", id, data, 1234);
	s = serve(a, "127.0.0.2", 4, 0);
	sc.steps[3] = vine_peer_server_addr(s);
	check_int(vine_peer_fetch_sources(b, id, 0, &srcs, &o), ==, VINE_PEER_OK);
	check_int(sc.waits, ==, 2);
	check_dbl(vine_now_mono() - t0, >=, 0.2);
	snprintf(want, sizeof(want), "127.0.0.3:1 connect 1234-1234;%s ok 1234-%zu;", sc.steps[3], n);
	check_str(sc.log, ==, want);
	CHECK(same_file(b, id, data, n));

	/* the chooser has nothing: its message, and the last failure's status */
	struct script none = { .steps = { NULL } };
	srcs.ctx = &none;
	check_int(vine_peer_fetch_sources(c, id, 0, &srcs, &o), ==, VINE_PEER_ENOTFOUND);
	check_str(vine_errmsg(), ==, "the state has no source");
	struct script dead = { .steps = { "127.0.0.3:1", NULL } };
	srcs.ctx = &dead;
	check_int(vine_peer_fetch_sources(c, id, 0, &srcs, &o), ==, VINE_PEER_ECONNECT);
	CHECK(strstr(vine_errmsg(), "127.0.0.3:1: cannot connect") != NULL);
	CHECK(!exists(c, "partial", id));
	CHECK(!exists(c, "objects", id));
	vine_peer_server_stop(s);
	free(data), free(a), free(b), free(c);
}

static void test_failover(void)
{
	size_t n = 1u << 20;
	unsigned char *data = random_bytes(n, 11);
	char id[65], *a = cache_dir("o-a"), *b = cache_dir("o-b"), *e = cache_dir("o-e");
	struct vine_peer_server *sa, *se;
	struct vine_peer_client_opts o = copts(secret, 5);
	const char *src[4];

	id_of(data, n, id);
	put(a, "objects", id, data, n);
	sa = serve(a, "127.0.0.2", 4, 0);
	se = serve(e, "127.0.0.4", 4, 0); /* has nothing */
	src[0] = "127.0.0.3:1";        /* nobody listens */
	src[1] = vine_peer_server_addr(se);
	src[2] = "nonexistent.invalid:80";
	src[3] = vine_peer_server_addr(sa);
	o.source_failed = count_failed;
	nfailed = 0;
	check_int(vine_peer_fetch(b, id, src, 4, &o), ==, VINE_PEER_OK);
	check_int(nfailed, ==, 3);
	CHECK(same_file(b, id, data, n));
	vine_peer_server_stop(sa);
	vine_peer_server_stop(se);
	free(data), free(a), free(b), free(e);
}

/* ---- a scripted fake server, to see the client reject bad answers ---- */

struct fake {
	int lfd;
	char addr[64];
	const char *mode;
	uint64_t size;
	pthread_t t;
};

static void *fake_main(void *arg)
{
	struct fake *k = arg;
	unsigned char buf[VP_CTRL_MAX], cn[32], sn[32], mac[32], junk[64] = { 0 };
	size_t n;
	int type, fd = accept(k->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	vp_sock_setup(fd, 5);
	if (vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		goto out;
	memcpy(cn, buf + 12, 32);
	memset(sn, 3, 32);
	vp_put16(buf, 1);
	memcpy(buf + 2, sn, 32);
	vp_send_frame(fd, VP_CHALLENGE, buf, 34, 0);
	if (vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		goto out;
	vp_mac(secret, "vine-peer server", 1, cn, sn, mac);
	if (!strcmp(k->mode, "badmac"))
		memset(mac, 0, 32);
	vp_send_frame(fd, VP_WELCOME, mac, 32, 0);
	if (vp_recv_ctrl(fd, &type, buf, &n, 0) < 0)
		goto out;
	if (!strcmp(k->mode, "silent")) {
		recv(fd, buf, 1, 0); /* until the client gives up */
		goto out;
	}
	buf[0] = VP_COMPLETE;
	vp_put64(buf + 1, k->size);
	vp_send_frame(fd, VP_OBJECT, buf, 9, 0);
	if (!strcmp(k->mode, "huge")) {
		unsigned char h[5] = { VP_DATA, 0x01, 0x00, 0x00, 0x01 };
		vp_send_all(fd, h, 5, 0);
	} else if (!strcmp(k->mode, "over")) {
		vp_send_frame(fd, VP_DATA, junk, 20, 0);
	} else if (!strcmp(k->mode, "short") || !strcmp(k->mode, "wrong")) {
		size_t m = !strcmp(k->mode, "short") ? 5 : 10;
		vp_send_frame(fd, VP_DATA, junk, m, 0);
		buf[0] = VP_COMPLETE;
		vp_put64(buf + 1, 10);
		vp_send_frame(fd, VP_END, buf, 9, 0);
	} else if (!strcmp(k->mode, "cut")) {
		unsigned char h[5] = { VP_DATA, 0, 0, 0, 10 };
		vp_send_all(fd, h, 5, 0);
		vp_send_all(fd, junk, 4, 0);
		goto out;
	}
	/* wait for the client to hang up */
	recv(fd, buf, 1, 0);
out:
	close(fd);
	return NULL;
}

static void fake_start(struct fake *k, const char *mode, uint64_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000005) };
	socklen_t len = sizeof(sa);

	k->mode = mode;
	k->size = size;
	k->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (k->lfd < 0 || bind(k->lfd, (struct sockaddr *)&sa, len) < 0 || listen(k->lfd, 4) < 0 ||
	    getsockname(k->lfd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	snprintf(k->addr, sizeof(k->addr), "127.0.0.5:%u", ntohs(sa.sin_port));
	pthread_create(&k->t, NULL, fake_main, k);
}

static int against_fake(const char *mode, uint64_t size, const char *cache, const char *id, double stall)
{
	struct fake k;
	struct vine_peer_client_opts o = copts(secret, stall);
	const char *src[1];
	int st;

	fake_start(&k, mode, size);
	src[0] = k.addr;
	st = vine_peer_fetch(cache, id, src, 1, &o);
	pthread_join(k.t, NULL);
	close(k.lfd);
	return st;
}

struct fd_session {
	struct vine_peer_server *s;
	int fd;
};

static void *serve_fd_main(void *arg)
{
	struct fd_session *fs = arg;

	vine_peer_server_serve_fd(fs->s, fs->fd, "socketpair");
	return NULL;
}

/* One fetch from s over a socketpair (no TCP): the status. */
static int fetch_over_socketpair(struct vine_peer_server *s, const char *cache, const char *id)
{
	struct vine_peer_client_opts o = copts(secret, 5);
	struct fd_session fs = { s, -1 };
	struct vine_fetch *f = vine_fetch_open(cache, id, 0);
	pthread_t t;
	int sv[2], st;

	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fs.fd = sv[1];
	if (pthread_create(&t, NULL, serve_fd_main, &fs) != 0)
		abort();
	st = vine_fetch_from_fd(f, sv[0], "socketpair", &o);
	close(sv[0]);
	pthread_join(t, NULL);
	vine_fetch_close(f);
	return st;
}

/* A server that listens nowhere serves the connections handed to it, and
 * a client fetches over a connection it is handed: the fuzzers' way in. */
static void test_socketpair(void)
{
	char id[65], *a = cache_dir("sp-a"), *b = cache_dir("sp-b"), *c = cache_dir("sp-c");
	size_t n = (3u << 20) + 17;
	unsigned char *data = random_bytes(n, 77);
	struct vine_peer_server_opts o = {
		.cache = a, .node = "n1", .listen = NULL, .secret = secret, .io_timeout = 5,
	};
	struct vine_peer_server *s = vine_peer_server_start(&o), *l;

	CHECK(s != NULL);
	CHECK(vine_peer_server_addr(s) == NULL);
	id_of(data, n, id);
	put(a, "objects", id, data, n);
	/* by splice, and by recv (the client's buffers are made when needed) */
	CHECK(fetch_over_socketpair(s, b, id) == VINE_PEER_OK);
	CHECK(same_file(b, id, data, n));
	setenv("VINE_TEST_NO_SPLICE", "1", 1);
	CHECK(fetch_over_socketpair(s, c, id) == VINE_PEER_OK);
	unsetenv("VINE_TEST_NO_SPLICE");
	CHECK(same_file(c, id, data, n));
	vine_peer_server_stop(s);
	/* a listening server does not take connections so: the client sees the
	 * connection closed */
	l = serve(a, "127.0.0.1", 2, 0);
	vine_rm_rf(b);
	free(b);
	b = cache_dir("sp-b");
	CHECK(fetch_over_socketpair(l, b, id) == VINE_PEER_ECONNECT);
	CHECK(!exists(b, "objects", id));
	vine_peer_server_stop(l);
	free(data);
	free(a);
	free(b);
	free(c);
}

static void test_fake_server(void)
{
	char id[65], *b = cache_dir("z-b");
	unsigned char zero[10] = { 0 };

	id_of(zero, 10, id);
	id[0] = id[0] == 'a' ? 'b' : 'a'; /* ten zero bytes will not match */
	check_int(against_fake("badmac", 10, b, id, 5), ==, VINE_PEER_EAUTH);
	CHECK(strstr(vine_errmsg(), "does not know the secret") != NULL);
	check_int(against_fake("huge", 10, b, id, 5), ==, VINE_PEER_EPROTO);
	CHECK(strstr(vine_errmsg(), "DATA frame of") != NULL);
	check_int(against_fake("over", 10, b, id, 5), ==, VINE_PEER_EPROTO);
	CHECK(strstr(vine_errmsg(), "more data than") != NULL);
	check_int(against_fake("short", 10, b, id, 5), ==, VINE_PEER_EPROTO);
	CHECK(strstr(vine_errmsg(), "ended at byte 5 of 10") != NULL);
	/* the 5 bytes received are kept for a resume */
	CHECK(exists(b, "partial", id));
	char *p = vine_xasprintf("%s/partial/%s", b, id);
	unlink(p);
	check_int(against_fake("cut", 10, b, id, 5), ==, VINE_PEER_ECONNECT);
	CHECK(strstr(vine_errmsg(), "connection closed") != NULL);
	unlink(p);
	double t0 = vine_now_mono();
	check_int(against_fake("silent", 10, b, id, 0.5), ==, VINE_PEER_ETIMEOUT);
	check_dbl(vine_now_mono() - t0, <, 3);
	CHECK(strstr(vine_errmsg(), "stalled: nothing received for 0.5 s") != NULL);
	check_int(against_fake("wrong", 10, b, id, 5), ==, VINE_PEER_ECORRUPT);
	CHECK(!exists(b, "objects", id));
	CHECK(!exists(b, "partial", id));
	/* ten zero bytes with their true id are accepted */
	id_of(zero, 10, id);
	check_int(against_fake("wrong", 10, b, id, 5), ==, VINE_PEER_OK);
	CHECK(same_file(b, id, zero, 10));
	free(p), free(b);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	top = vine_xasprintf("%s/vine-test-peer.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(top))
		return 1;
	vine_peer_secret_new(secret);
	vine_peer_secret_new(other);
	test_addr();
	test_secret();
	test_fetch();
	test_bad_prefix();
	test_foreign_cache();
	test_corrupt_source();
	test_auth();
	test_requests();
	test_busy();
	test_slow_handshake();
	test_idle_flood();
	test_trickle();
	test_relay();
	test_vanishing_client();
	test_concurrent();
	test_failover();
	test_from_file();
	test_sources();
	test_locking();
	test_fake_server();
	test_socketpair();
	vine_rm_rf(top);
	free(top);
	return T_END();
}
