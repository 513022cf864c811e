/*
 * test-vformat-write.c - the index encoder against the format document,
 * decoded here independently, and through zlib as a gzip reader sees it.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "t.h"
#include "util/util.h"
#include "archive/vformat.h"

static uint64_t rd(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static struct vine_member *members(uint32_t n, uint64_t *x0, uint64_t *total)
{
	struct vine_member *m = vine_xcalloc(n ? n : 1, sizeof(*m));
	uint64_t c = 0, u = 0;

	for (uint32_t i = 0; i < n; i++) {
		m[i].coff = c;
		m[i].clen = 100 + i % 7;
		m[i].uoff = u;
		m[i].ulen = 1000 + i;
		m[i].crc32 = i * 2654435761u;
		c += m[i].clen;
		u += m[i].ulen;
	}
	*x0 = c;
	*total = u;
	return m;
}

/* Walk the index members as the format describes them; returns the
 * concatenated subfield data, or NULL if any member is malformed. */
static unsigned char *pieces(const unsigned char *p, size_t len, size_t *dlen, size_t *np,
			     size_t *last)
{
	struct vine_buf b = VINE_BUF_INIT;
	size_t pos = 0;

	*np = 0;
	while (pos < len) {
		const unsigned char *h = p + pos;
		if (len - pos < 26 || h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] != 4 ||
		    rd(h + 4, 4) != 0 || h[9] != 3 || h[12] != 'V' || h[13] != 'X')
			goto bad;
		size_t sub = rd(h + 14, 2);
		if (rd(h + 10, 2) != sub + 4 || sub > VINE_IDX_SUB_MAX || len - pos < 26 + sub)
			goto bad;
		vine_buf_add(&b, h + 16, sub);
		const unsigned char *t = h + 16 + sub;
		if (t[0] != 3 || t[1] != 0 || rd(t + 2, 4) != 0 || rd(t + 6, 4) != 0)
			goto bad;
		pos += 26 + sub;
		*last = sub;
		(*np)++;
	}
	return (unsigned char *)vine_buf_detach(&b, dlen);
bad:
	vine_buf_release(&b);
	return NULL;
}

/* What gzip sees: members that decompress to nothing, with good trailers. */
static int gzip_empty(const unsigned char *p, size_t len)
{
	z_stream z;
	unsigned char out[64];
	int rc;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 31) != Z_OK)
		return 0;
	z.next_in = (unsigned char *)p;
	z.avail_in = (uInt)len;
	for (;;) {
		z.next_out = out;
		z.avail_out = sizeof(out);
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			if (z.avail_in == 0)
				break;
			inflateReset(&z);
			continue;
		}
		if (rc != Z_OK)
			break;
	}
	uLong total = z.total_out;
	inflateEnd(&z);
	return rc == Z_STREAM_END && total == 0;
}

static void roundtrip(uint32_t n)
{
	uint64_t x0, total;
	struct vine_member *m = members(n, &x0, &total);
	unsigned char *out, *d;
	size_t outlen, dlen, np, last = 0;

	check_int(vine_index_encode(m, n, total, x0, &out, &outlen), ==, 0);
	d = pieces(out, outlen, &dlen, &np, &last);
	CHECK(d != NULL);
	if (!d)
		goto done;
	CHECK(gzip_empty(out, outlen));
	check_int(dlen, ==, VINE_IDX_HDR_LEN + (size_t)n * VINE_IDX_REC_LEN + VINE_IDX_FOOTER_LEN);
	check_int(np, ==, (dlen + VINE_IDX_SUB_MAX - 1) / VINE_IDX_SUB_MAX);
	check_dbl(last, >=, VINE_IDX_FOOTER_LEN);  /* the footer is never split */
	CHECK(!memcmp(d, VINE_IDX_MAGIC, 8));
	check_int(rd(d + 8, 4), ==, VINE_IDX_VERSION);
	check_int(rd(d + 12, 4), ==, n);
	check_int(rd(d + 16, 8), ==, total);
	int recs_ok = 1;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *r = d + VINE_IDX_HDR_LEN + (size_t)i * VINE_IDX_REC_LEN;
		recs_ok &= rd(r, 8) == m[i].coff && rd(r + 8, 8) == m[i].clen &&
			   rd(r + 16, 8) == m[i].uoff && rd(r + 24, 8) == m[i].ulen &&
			   rd(r + 32, 4) == m[i].crc32 && rd(r + 36, 4) == 0;
	}
	CHECK(recs_ok);
	check_int(rd(d + dlen - 16, 8), ==, x0);
	CHECK(!memcmp(d + dlen - 8, VINE_IDX_END, 8));
	/* the fixed tail a reader looks for first */
	const unsigned char *t = out + outlen - VINE_IDX_TAIL_LEN;
	check_int(rd(t, 8), ==, x0);
	CHECK(!memcmp(t + 8, VINE_IDX_END, 8));
	check_int(t[16], ==, 3);
	check_int(t[17], ==, 0);
	check_int(rd(t + 18, 8), ==, 0);
	free(d);
done:
	free(out);
	free(m);
}

static int refused(struct vine_member *m, uint32_t n, uint64_t total, uint64_t x0)
{
	unsigned char *out = NULL;
	size_t len;
	int rc = vine_index_encode(m, n, total, x0, &out, &len);

	free(out);
	return rc == -1;
}

int main(void)
{
	uint64_t x0, total;

	roundtrip(1);
	roundtrip(3);
	roundtrip(2000);     /* two index members */
	roundtrip(4914);     /* 3 * 65531 + 7 bytes: the footer would straddle */
	for (uint32_t n = 1635; n <= 1640; n++)
		roundtrip(n);        /* around one full index member */

	struct vine_member *m = members(4, &x0, &total);
	CHECK(!refused(m, 4, total, x0));
	CHECK(refused(m, 4, total, x0 + 1));
	CHECK(refused(m, 4, total - 1, x0));
	m[2].coff++;
	CHECK(refused(m, 4, total, x0));
	m[2].coff--;
	m[1].uoff++;
	CHECK(refused(m, 4, total, x0));
	m[1].uoff--;
	m[3].ulen = VINE_MEMBER_MAX + 1;
	CHECK(refused(m, 4, total - 1003 + VINE_MEMBER_MAX + 1, x0));
	m[3].ulen = 1003;
	CHECK(!refused(m, 4, total, x0));
	free(m);
	return T_END();
}
