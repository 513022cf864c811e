/*
 * test-vformat-read.c - vine_index_read() against hand-made index bytes:
 * a valid index split over several index members, and each way one can be
 * wrong.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "util/util.h"
#include "archive/vformat.h"

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* index data for n members of 100 compressed, 1000 uncompressed bytes */
static size_t index_data(unsigned char *d, uint32_t n, uint64_t x0off)
{
	memcpy(d, "VINEIDX1", 8);
	put32(d + 8, 1);
	put32(d + 12, n);
	put64(d + 16, 1000ull * n);
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *r = d + 24 + 40 * i;
		put64(r, 100ull * i);
		put64(r + 8, 100);
		put64(r + 16, 1000ull * i);
		put64(r + 24, 1000);
		put32(r + 32, 0x1234 + i);
		put32(r + 36, 0);
	}
	put64(d + 24 + 40 * n, x0off);
	memcpy(d + 32 + 40 * n, "VINEEND1", 8);
	return 40 + 40 * (size_t)n;
}

/* a file: n fake data members (filler), then the index in members of at most chunk bytes */
static int make(const unsigned char *idx, size_t len, uint32_t n, size_t chunk)
{
	struct vine_buf b = VINE_BUF_INIT;
	static const unsigned char end[10] = { 3, 0 };

	for (uint32_t i = 0; i < 100 * n; i++)
		vine_buf_add(&b, "z", 1);
	/* the footer must be whole in the last member: it joins the last chunk */
	for (size_t off = 0, k; off < len; off += k) {
		k = len - off < chunk ? len - off : chunk;
		if (len - (off + k) < 16)
			k = len - off;
		unsigned char h[16] = { 0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3 };
		h[10] = (unsigned char)((k + 4) & 0xff);
		h[11] = (unsigned char)((k + 4) >> 8);
		h[12] = 'V';
		h[13] = 'X';
		h[14] = (unsigned char)(k & 0xff);
		h[15] = (unsigned char)(k >> 8);
		vine_buf_add(&b, h, sizeof(h));
		vine_buf_add(&b, idx + off, k);
		vine_buf_add(&b, end, sizeof(end));
	}
	char path[] = "/tmp/test-vformat-read.XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (fd < 0 || vine_write_full(fd, b.data, b.len) < 0)
		abort();
	vine_buf_release(&b);
	return fd;
}

static int try(const unsigned char *idx, size_t len, uint32_t n, size_t chunk, struct vine_index *out)
{
	int fd = make(idx, len, n, chunk);
	off_t size = lseek(fd, 0, SEEK_END);
	int r = vine_index_read(fd, (uint64_t)size, out);
	close(fd);
	return r;
}

static int bad(unsigned char *d, size_t len, uint32_t n, size_t off, unsigned char val, const char *msg)
{
	struct vine_index idx;
	unsigned char save = d[off];
	int r;

	d[off] = val;
	r = try(d, len, n, 65531, &idx);
	d[off] = save;
	if (r == 1)
		vine_index_free(&idx);
	if (r != -1 || !strstr(vine_errmsg(), msg)) {
		fprintf(stderr, "offset %zu: r=%d '%s', wanted '%s'\n", off, r, vine_errmsg(), msg);
		return 0;
	}
	return 1;
}

int main(void)
{
	unsigned char d[24 + 40 * 10 + 16];
	struct vine_index idx;
	size_t len = index_data(d, 10, 1000);

	/* a valid index, in one member and split over many */
	check_int(try(d, len, 10, 65531, &idx), ==, 1);
	check_int(idx.n, ==, 10);
	check_int(idx.total, ==, 10000);
	check_int(idx.x0off, ==, 1000);
	check_int(idx.m[3].coff, ==, 300);
	check_int(idx.m[3].clen, ==, 100);
	check_int(idx.m[3].uoff, ==, 3000);
	check_int(idx.m[3].ulen, ==, 1000);
	check_int(idx.m[3].crc32, ==, 0x1237);
	vine_index_free(&idx);
	check_int(try(d, len, 10, 7, &idx), ==, 1);
	check_int(idx.n, ==, 10);
	check_int(idx.m[9].coff, ==, 900);
	vine_index_free(&idx);

	/* not a vine archive: no footer at all */
	int fd = open("/dev/null", O_RDONLY);
	check_int(vine_index_read(fd, 0, &idx), ==, 0);
	close(fd);
	fd = make(d, 0, 10, 65531);
	check_int(vine_index_read(fd, 1000, &idx), ==, 0);
	close(fd);

	/* each field wrong */
	CHECK(bad(d, len, 10, 0, 'X', "bad magic"));
	CHECK(bad(d, len, 10, 8, 2, "unsupported archive index version 2"));
	CHECK(bad(d, len, 10, 12, 11, "do not fit"));
	CHECK(bad(d, len, 10, 12, 9, "do not fit"));
	CHECK(bad(d, len, 10, 24 + 40 * 2, 7, "bad record for member 2"));     /* coff */
	CHECK(bad(d, len, 10, 24 + 40 * 9 + 8, 99,
		"members do not cover the archive")); /* last clen */
	CHECK(bad(d, len, 10, 24 + 40 * 4 + 16, 1, "bad record for member 4")); /* uoff */
	CHECK(bad(d, len, 10, 24 + 40 * 5 + 36, 1, "bad record for member 5")); /* flags */
	CHECK(bad(d, len, 10, 24 + 40 * 5 + 27, 0x40,
		"bad record for member 5")); /* ulen > 1 GiB */
	CHECK(bad(d, len, 10, 16, 1, "bad record for member"));                /* total */
	CHECK(bad(d, len, 10, 24 + 40 * 10, 0xe7, "bad index member header")); /* x0off */
	CHECK(bad(d, len, 10, 24 + 40 * 10 + 1, 0x7f, "out of range"));

	/* no members */
	unsigned char e[24 + 16];
	size_t elen = index_data(e, 0, 0);
	check_int(try(e, elen, 0, 65531, &idx), ==, -1);
	CHECK(strstr(vine_errmsg(), "no data members"));

	/* a broken index member header, subfield and trailer */
	fd = make(d, len, 10, 65531);
	off_t size = lseek(fd, 0, SEEK_END);
	unsigned char b = 0x05;
	check_int(pwrite(fd, &b, 1, 1000 + 3), ==, 1);
	check_int(vine_index_read(fd, (uint64_t)size, &idx), ==, -1);
	CHECK(strstr(vine_errmsg(), "bad index member header"));
	b = 4;
	check_int(pwrite(fd, &b, 1, 1000 + 3), ==, 1);
	check_int(pwrite(fd, "Y", 1, 1000 + 13), ==, 1);
	check_int(vine_index_read(fd, (uint64_t)size, &idx), ==, -1);
	CHECK(strstr(vine_errmsg(), "bad subfield"));
	check_int(pwrite(fd, "X", 1, 1000 + 13), ==, 1);
	check_int(vine_index_read(fd, (uint64_t)size, &idx), ==, 1);
	vine_index_free(&idx);
	b = 1;
	check_int(pwrite(fd, &b, 1, size - 5), ==, 1);
	check_int(vine_index_read(fd, (uint64_t)size, &idx), ==, -1);
	CHECK(strstr(vine_errmsg(), "bad final index member"));
	/* cut short: the footer is gone, an index member header is still there */
	check_int(vine_index_read(fd, (uint64_t)size - 10, &idx), ==, -1);
	CHECK(strstr(vine_errmsg(), "truncated"));
	close(fd);
	return T_END();
}
