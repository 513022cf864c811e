/*
 * vformat.h - the vine archive's index (share/doc/archive-format.md).
 *
 * The writer side (vformat-write.c) belongs to vine-pack, the reader side
 * (vformat-read.c) to vine-seed; both follow the spec document exactly.
 */
#ifndef VINE_VFORMAT_H
#define VINE_VFORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VINE_IDX_MAGIC "VINEIDX1"
#define VINE_IDX_END "VINEEND1"
#define VINE_IDX_VERSION 1
#define VINE_IDX_HDR_LEN 24
#define VINE_IDX_REC_LEN 40
#define VINE_IDX_FOOTER_LEN 16
#define VINE_IDX_SUB_MAX 65531       /* subfield data per index member */
#define VINE_IDX_TAIL_LEN 26         /* footer + 03 00 + CRC32 + ISIZE */
#define VINE_MEMBER_MAX ((uint64_t)1 << 30) /* largest ulen a reader accepts */
#define VINE_MANIFEST_PATH ".vine/manifest.json"

struct vine_member {
	uint64_t coff, clen;  /* compressed: offset in the file, length */
	uint64_t uoff, ulen;  /* uncompressed: offset in the tar stream, length */
	uint32_t crc32;
};

struct vine_index {
	uint32_t n;
	uint64_t total;       /* uncompressed size of the tar stream */
	uint64_t x0off;       /* offset of the first index member */
	struct vine_member *m;
};

/*
 * Writer: encode the index for members m[0..n) whose index members start
 * at x0off, as the complete bytes of the index members X_0..X_k-1
 * (gzip headers included), ready to append to the archive.
 */
int vine_index_encode(const struct vine_member *m, uint32_t n, uint64_t total,
		      uint64_t x0off, unsigned char **out, size_t *outlen);

/*
 * Reader: read and validate the index of the archive open on fd, of size
 * size.  Returns 1 with idx filled (free with vine_index_free), 0 when the
 * archive has no vine index (a foreign archive: extract it sequentially),
 * -1 with a message when it has one that is invalid.
 */
int vine_index_read(int fd, uint64_t size, struct vine_index *idx);
void vine_index_free(struct vine_index *idx);

#endif
