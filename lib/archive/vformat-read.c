/*
 * vformat-read.c - read and validate a vine archive's index
 * (share/doc/archive-format.md, "Index").
 *
 * The index lives in empty gzip members at the end of the file; the last
 * 26 bytes hold the offset of the first of them.  Nothing in the index is
 * trusted until every record has been checked against the file's layout.
 */
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "archive/vformat.h"

/* The index of a 1 TiB archive in 2 MiB members is 20 MiB; refuse more. */
#define INDEX_MAX ((uint64_t)64 << 20)

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned le16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/*
 * Walk the index members in raw[0..len) (the file from X_0 to its end) and
 * gather their subfield data into out.
 */
static int gather(const unsigned char *raw, size_t len, struct vine_buf *out)
{
	static const unsigned char trailer[10] = { 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	size_t off = 0;

	while (off < len) {
		const unsigned char *h = raw + off;
		if (len - off < 12 + 4 + sizeof(trailer))
			return vine_error("invalid archive index: truncated index member at offset %zu", off);
		if (h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] != 4)
			return vine_error("invalid archive index: bad index member header at offset %zu", off);
		size_t xlen = le16(h + 10);
		if (xlen < 4 || 12 + xlen + sizeof(trailer) > len - off)
			return vine_error("invalid archive index: bad extra field length at offset %zu", off);
		if (h[12] != 'V' || h[13] != 'X' || le16(h + 14) != xlen - 4)
			return vine_error("invalid archive index: bad subfield at offset %zu", off);
		if (memcmp(h + 12 + xlen, trailer, sizeof(trailer)))
			return vine_error("invalid archive index: bad index member trailer at offset %zu", off);
		vine_buf_add(out, h + 16, xlen - 4);
		off += 12 + xlen + sizeof(trailer);
	}
	return 0;
}

static int check(const unsigned char *d, size_t len, uint64_t x0off, struct vine_index *idx)
{
	if (len < VINE_IDX_HDR_LEN + VINE_IDX_FOOTER_LEN)
		return vine_error("invalid archive index: %zu bytes is too short", len);
	if (memcmp(d, VINE_IDX_MAGIC, 8))
		return vine_error("invalid archive index: bad magic");
	if (le32(d + 8) != VINE_IDX_VERSION)
		return vine_error("unsupported archive index version %u", le32(d + 8));
	uint32_t n = le32(d + 12);
	uint64_t total = le64(d + 16);
	if ((uint64_t)n > (len - VINE_IDX_HDR_LEN - VINE_IDX_FOOTER_LEN) / VINE_IDX_REC_LEN ||
	    len != VINE_IDX_HDR_LEN + (size_t)n * VINE_IDX_REC_LEN + VINE_IDX_FOOTER_LEN)
		return vine_error("invalid archive index: %u members do not fit %zu bytes", n, len);
	if (n == 0)
		return vine_error("invalid archive index: no data members");
	if (le64(d + len - 16) != x0off || memcmp(d + len - 8, VINE_IDX_END, 8))
		return vine_error("invalid archive index: bad footer");

	struct vine_member *m = vine_xcalloc(n, sizeof(*m));
	uint64_t coff = 0, uoff = 0;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *r = d + VINE_IDX_HDR_LEN + (size_t)i * VINE_IDX_REC_LEN;
		m[i].coff = le64(r);
		m[i].clen = le64(r + 8);
		m[i].uoff = le64(r + 16);
		m[i].ulen = le64(r + 24);
		m[i].crc32 = le32(r + 32);
		if (m[i].coff != coff || m[i].clen == 0 || m[i].clen > x0off - coff ||
		    m[i].uoff != uoff || m[i].ulen > VINE_MEMBER_MAX || m[i].ulen > total - uoff ||
		    le32(r + 36) != 0) {
			free(m);
			return vine_error("invalid archive index: bad record for member %u", i);
		}
		coff += m[i].clen;
		uoff += m[i].ulen;
	}
	if (coff != x0off || uoff != total) {
		free(m);
		return vine_error("invalid archive index: members do not cover the archive");
	}
	idx->n = n;
	idx->total = total;
	idx->x0off = x0off;
	idx->m = m;
	return 0;
}

/*
 * No footer.  If an index member starts in the last 64 KiB (the most one
 * can hold), the file is a vine archive cut short, not a foreign one.
 */
static int truncated_index(int fd, uint64_t size)
{
	static const unsigned char hdr[10] = { 0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3 };
	size_t len = size < 12 + 4 + VINE_IDX_SUB_MAX + 10 ? (size_t)size : 12 + 4 + VINE_IDX_SUB_MAX + 10;
	unsigned char *buf = vine_xmalloc(len);
	ssize_t got = vine_pread_full(fd, buf, len, (off_t)(size - len));
	int rc = 0;

	if (got < 0)
		rc = vine_error_errno("cannot read archive");
	for (size_t i = 0; got > 0 && i + 14 <= (size_t)got; i++) {
		unsigned char *p = memmem(buf + i, (size_t)got - i, hdr, sizeof(hdr));
		if (!p)
			break;
		i = (size_t)(p - buf);
		if (i + 14 <= (size_t)got && p[12] == 'V' && p[13] == 'X') {
			rc = vine_error("invalid archive index: the archive is truncated");
			break;
		}
	}
	free(buf);
	return rc;
}

int vine_index_read(int fd, uint64_t size, struct vine_index *idx)
{
	static const unsigned char end[10] = { 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	unsigned char tail[VINE_IDX_TAIL_LEN];
	struct vine_buf data = VINE_BUF_INIT;
	unsigned char *raw = NULL;
	int rc = -1;

	memset(idx, 0, sizeof(*idx));
	if (size < VINE_IDX_TAIL_LEN)
		return 0;
	ssize_t got = vine_pread_full(fd, tail, sizeof(tail), (off_t)(size - sizeof(tail)));
	if (got < 0)
		return vine_error_errno("cannot read archive");
	if ((size_t)got != sizeof(tail))
		return vine_error("cannot read archive: file shrank while reading");
	if (memcmp(tail + 8, VINE_IDX_END, 8))
		return truncated_index(fd, size);
	if (memcmp(tail + 16, end, sizeof(end)))
		return vine_error("invalid archive index: bad final index member");
	uint64_t x0off = le64(tail);
	if (x0off >= size || size - x0off > INDEX_MAX)
		return vine_error("invalid archive index: index offset %llu out of range",
				  (unsigned long long)x0off);
	size_t len = (size_t)(size - x0off);
	raw = vine_xmalloc(len);
	got = vine_pread_full(fd, raw, len, (off_t)x0off);
	if (got < 0) {
		vine_error_errno("cannot read archive");
		goto out;
	}
	if ((size_t)got != len) {
		vine_error("cannot read archive: file shrank while reading");
		goto out;
	}
	if (gather(raw, len, &data) < 0 || check((unsigned char *)data.data, data.len, x0off, idx) < 0)
		goto out;
	rc = 1;
out:
	free(raw);
	vine_buf_release(&data);
	return rc;
}

void vine_index_free(struct vine_index *idx)
{
	free(idx->m);
	idx->m = NULL;
	idx->n = 0;
}
