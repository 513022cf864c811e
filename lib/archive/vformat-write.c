/*
 * vformat-write.c - encode the vine archive index (share/doc/archive-format.md).
 *
 * The index data (header, member records, footer) is cut into pieces of at
 * most VINE_IDX_SUB_MAX bytes, each carried by one empty gzip member in an
 * FEXTRA subfield 'V' 'X'.  The last piece always holds the whole footer,
 * so a reader finds it in the archive's last VINE_IDX_TAIL_LEN bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "archive/vformat.h"

/* gzip header with FLG.FEXTRA, MTIME 0, XFL 0, OS 3 (Unix) */
static const unsigned char gz_head[10] = { 0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3 };
/* empty final fixed-Huffman block, CRC32 0, ISIZE 0 */
static const unsigned char gz_tail[10] = { 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0 };

static void le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* The rules a reader checks: refuse to write what it would refuse. */
static int check(const struct vine_member *m, uint32_t n, uint64_t total, uint64_t x0off)
{
	uint64_t coff = 0, uoff = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (m[i].coff != coff || m[i].uoff != uoff)
			return vine_error("index: member %u is not contiguous", i);
		if (m[i].clen == 0 || m[i].ulen > VINE_MEMBER_MAX)
			return vine_error("index: member %u has a bad length", i);
		coff += m[i].clen;
		uoff += m[i].ulen;
	}
	if (coff != x0off)
		return vine_error("index: members end at %llu, not at %llu",
				  (unsigned long long)coff, (unsigned long long)x0off);
	if (uoff != total)
		return vine_error("index: members hold %llu bytes, not %llu",
				  (unsigned long long)uoff, (unsigned long long)total);
	return 0;
}

int vine_index_encode(const struct vine_member *m, uint32_t n, uint64_t total,
		      uint64_t x0off, unsigned char **out, size_t *outlen)
{
	size_t len, npieces, left, pos = 0;
	unsigned char *data, *o, *p;

	if (check(m, n, total, x0off) < 0)
		return -1;
	len = VINE_IDX_HDR_LEN + (size_t)n * VINE_IDX_REC_LEN + VINE_IDX_FOOTER_LEN;

	data = vine_xmalloc(len);
	memcpy(data, VINE_IDX_MAGIC, 8);
	le32(data + 8, VINE_IDX_VERSION);
	le32(data + 12, n);
	le64(data + 16, total);
	p = data + VINE_IDX_HDR_LEN;
	for (uint32_t i = 0; i < n; i++, p += VINE_IDX_REC_LEN) {
		le64(p, m[i].coff);
		le64(p + 8, m[i].clen);
		le64(p + 16, m[i].uoff);
		le64(p + 24, m[i].ulen);
		le32(p + 32, m[i].crc32);
		le32(p + 36, 0);
	}
	le64(p, x0off);
	memcpy(p + 8, VINE_IDX_END, 8);

	npieces = (len + VINE_IDX_SUB_MAX - 1) / VINE_IDX_SUB_MAX;
	o = vine_xmalloc(len + npieces * (sizeof(gz_head) + 2 + 4 + sizeof(gz_tail)));
	p = o;
	for (left = len; left > 0;) {
		size_t take = left;
		if (take > VINE_IDX_SUB_MAX) {
			take = VINE_IDX_SUB_MAX;
			/* keep the footer whole in the last piece */
			if (left - take < VINE_IDX_FOOTER_LEN)
				take = left - VINE_IDX_FOOTER_LEN;
		}
		memcpy(p, gz_head, sizeof(gz_head));
		p += sizeof(gz_head);
		le16(p, (uint16_t)(take + 4));           /* XLEN */
		p[2] = 'V';
		p[3] = 'X';
		le16(p + 4, (uint16_t)take);             /* subfield LEN */
		p += 6;
		memcpy(p, data + pos, take);
		p += take;
		memcpy(p, gz_tail, sizeof(gz_tail));
		p += sizeof(gz_tail);
		pos += take;
		left -= take;
	}
	free(data);
	*out = o;
	*outlen = (size_t)(p - o);
	return 0;
}
