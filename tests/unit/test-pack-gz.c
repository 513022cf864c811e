/*
 * test-pack-gz.c - the parallel gzip member writer: every member
 * decompresses on its own to its slice with the recorded crc, the whole
 * file is one gzip stream to zlib, split members (zlib blocks joined) are
 * valid, thread count does not change a byte, write errors surface.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/hash.h"
#include "archive/pack-int.h"
#include "t.h"
#include "util/util.h"

#define BLOCK 65536

static unsigned char *data;
static size_t datalen;

/* text-like, compressible, deterministic */
static void make_data(size_t n)
{
	static const char *w[] = { "import ", "numpy", " as ", "np\n", "def ", "(self", "):\n",
				   "return ", "0x7f3a", "\t", "lib/python3.11/", "__init__" };
	uint32_t x = 12345;

	data = vine_xmalloc(n);
	for (datalen = 0; datalen < n;) {
		x = x * 1103515245u + 12345u;
		const char *s = w[(x >> 16) % 12];
		size_t k = strlen(s);
		if (k > n - datalen)
			k = n - datalen;
		memcpy(data + datalen, s, k);
		datalen += k;
		if ((x >> 8) % 50 == 0 && datalen < n)
			data[datalen++] = (unsigned char)(x >> 24);  /* some noise */
	}
}

static char *tmpname(void)
{
	const char *t = getenv("TMPDIR");
	char *p = vine_xasprintf("%s/test-pack-gz.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(p);

	if (fd >= 0)
		close(fd);
	return p;
}

/* Write the test stream with jobs threads; returns the file's bytes. */
static unsigned char *run(int jobs, size_t *len, struct pack_gz_result *r, struct vine_member **m)
{
	char *path = tmpname();
	int fd = open(path, O_WRONLY | O_TRUNC);
	struct pack_gz *z = pack_gz_new(fd, path, jobs, 6, BLOCK);
	size_t pos = 0;
	char *bytes = NULL;

	CHECK(z != NULL);
	if (!z)
		goto out;
	/* plain member of 100 000 bytes in one write */
	check_int(pack_gz_write(z, data, 100000), ==, 0);
	pos = 100000;
	check_int(pack_gz_pending(z), ==, 100000);
	/* the next member is split: 600 000 bytes in uneven writes */
	check_int(pack_gz_cut(z, 1), ==, 0);
	check_int(pack_gz_pending(z), ==, 0);
	for (size_t k = 7; pos < 700000; k = k * 3 % 70001 + 1) {
		size_t n = k < 700000 - pos ? k : 700000 - pos;
		check_int(pack_gz_write(z, data + pos, n), ==, 0);
		pos += n;
	}
	/* split member of exactly two blocks (the last full block is last) */
	check_int(pack_gz_cut(z, 1), ==, 0);
	check_int(pack_gz_write(z, data + pos, 2 * BLOCK), ==, 0);
	pos += 2 * BLOCK;
	check_int(pack_gz_cut(z, 0), ==, 0);
	check_int(pack_gz_cut(z, 0), ==, 0);  /* an empty cut makes no member */
	/* plain members written a byte at a time, then the rest */
	int bytewise = 1;
	for (int i = 0; i < 3000; i++)
		bytewise &= pack_gz_write(z, data + pos++, 1) == 0;
	CHECK(bytewise);
	check_int(pack_gz_cut(z, 0), ==, 0);
	check_int(pack_gz_write(z, data + pos, datalen - pos), ==, 0);
	check_int(pack_gz_finish(z, r), ==, 0);
	*m = vine_xmalloc(r->n * sizeof(**m));
	memcpy(*m, r->m, r->n * sizeof(**m));
	pack_gz_free(z);
	close(fd);
	check_int(vine_read_file(path, 1 << 30, &bytes, len), ==, 0);
out:
	unlink(path);
	free(path);
	return (unsigned char *)bytes;
}

static uint64_t rd(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Inflate one gzip member exactly; returns the output length or -1. */
static long inflate_member(const unsigned char *p, size_t len, unsigned char *out, size_t cap)
{
	z_stream z;
	int rc;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 31) != Z_OK)
		return -1;
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	rc = inflate(&z, Z_FINISH);
	long n = rc == Z_STREAM_END && z.avail_in == 0 ? (long)z.total_out : -1;
	inflateEnd(&z);
	return n;
}

static void check_members(const unsigned char *f, size_t len, const struct pack_gz_result *r,
			  const struct vine_member *m)
{
	unsigned char *out = vine_xmalloc(datalen + 1);
	uint64_t c = 0, u = 0;
	int split_seen = 0, ok = 1;

	check_int(r->size, ==, len);
	check_int(r->total, ==, datalen);
	CHECK(r->indexed);
	for (uint32_t i = 0; i < r->n; i++) {
		const unsigned char *g = f + m[i].coff;
		ok &= m[i].coff == c && m[i].uoff == u;
		ok &= g[0] == 0x1f && g[1] == 0x8b && g[3] == 0 && rd(g + 4, 4) == 0 && g[9] == 3;
		long n = inflate_member(g, m[i].clen, out, datalen + 1);
		ok &= n >= 0 && (uint64_t)n == m[i].ulen && !memcmp(out, data + m[i].uoff, m[i].ulen);
		ok &= crc32(0, data + m[i].uoff, (uInt)m[i].ulen) == m[i].crc32;
		ok &= rd(g + m[i].clen - 8, 4) == m[i].crc32;
		split_seen += m[i].ulen > BLOCK;
		c += m[i].clen;
		u += m[i].ulen;
	}
	CHECK(ok);
	/* members: 100000 | 600000 (split) | 2 blocks (split) | 3000 | rest */
	check_int(r->n, ==, 5);
	check_int(r->n, ==, 5);
	check_int(m[1].ulen, ==, 600000);
	check_int(m[2].ulen, ==, 2 * BLOCK);
	check_int(m[3].ulen, ==, 3000);
	check_int(split_seen, >=, 3);
	check_int(u, ==, datalen);
	/* the index follows the members and ends the file */
	check_int(rd(f + len - 26, 8), ==, c);
	CHECK(!memcmp(f + len - 18, "VINEEND1", 8));
	free(out);
}

/* zlib reading the whole file as gzip (members + empty index members) */
static int whole_file(const unsigned char *f, size_t len)
{
	unsigned char *out = vine_xmalloc(datalen + 1);
	z_stream z;
	int rc, ok;

	memset(&z, 0, sizeof(z));
	inflateInit2(&z, 31);
	z.next_in = (unsigned char *)f;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)datalen + 1;
	for (;;) {
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc != Z_STREAM_END || z.avail_in == 0)
			break;
		inflateReset(&z);
	}
	/* total_out restarts with each member: count by position */
	ok = rc == Z_STREAM_END && z.avail_in == 0 && (size_t)(z.next_out - out) == datalen &&
	     !memcmp(out, data, datalen);
	inflateEnd(&z);
	free(out);
	return ok;
}

int main(void)
{
	struct pack_gz_result r1, r4;
	struct vine_member *m1 = NULL, *m4 = NULL;
	unsigned char *f1, *f4;
	size_t l1 = 0, l4 = 0;
	char id[VINE_ID_LEN + 1];
	struct vine_sha256 h;

	make_data(2000000);
	f1 = run(1, &l1, &r1, &m1);
	f4 = run(4, &l4, &r4, &m4);
	if (CHECK(f1))
		CHECK(f4);
	if (!f1 || !f4)
		return T_END();
	check_members(f1, l1, &r1, m1);
	CHECK(whole_file(f1, l1));
	check_int(l1, ==, l4);
	CHECK(!memcmp(f1, f4, l1));
	check_str(r1.id, ==, r4.id);
	vine_sha256_init(&h);
	vine_sha256_update(&h, f1, l1);
	vine_sha256_final(&h, id);
	check_str(r1.id, ==, id);

	/* a full disk: the error comes back with its reason */
	int fd = open("/dev/full", O_WRONLY);
	struct pack_gz *z = pack_gz_new(fd, "/dev/full", 2, 6, BLOCK);
	struct pack_gz_result r;
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		rc = pack_gz_write(z, data, datalen);
		if (rc == 0)
			rc = pack_gz_cut(z, 0);
	}
	if (rc == 0)
		rc = pack_gz_finish(z, &r);
	check_int(rc, ==, -1);
	CHECK(strstr(vine_errmsg(), "No space left") != NULL);
	pack_gz_free(z);
	close(fd);

	/* a member over the limit: still a good gzip file, but no index */
	char *path = tmpname();
	fd = open(path, O_WRONLY | O_TRUNC);
	z = pack_gz_new(fd, path, 2, 6, BLOCK);
	pack_gz_set_member_max(z, 500000);
	check_int(pack_gz_write(z, data, 400000), ==, 0);
	check_int(pack_gz_cut(z, 1), ==, 0);
	check_int(pack_gz_write(z, data + 400000, 600000), ==, 0);
	check_int(pack_gz_cut(z, 0), ==, 0);
	check_int(pack_gz_write(z, data + 1000000, datalen - 1000000), ==, 0);
	check_int(pack_gz_finish(z, &r), ==, 0);
	CHECK(!r.indexed);
	check_int(r.n, ==, 3);
	pack_gz_free(z);
	close(fd);
	unsigned char *f;
	size_t flen;
	check_int(vine_read_file(path, 1 << 30, (char **)&f, &flen), ==, 0);
	check_int(flen, ==, r.size);
	CHECK(whole_file(f, flen));
	check_int(memcmp(f + flen - 18, "VINEEND1", 8), !=, 0);
	free(f);
	unlink(path);
	free(path);

	CHECK(pack_gz_new(1, "x", 1, 13, BLOCK) == NULL);
	CHECK(pack_gz_new(1, "x", 0, 6, BLOCK) == NULL);

	free(f1);
	free(f4);
	free(m1);
	free(m4);
	free(data);
	return T_END();
}
