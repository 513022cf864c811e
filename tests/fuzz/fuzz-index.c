/*
 * fuzz-index - the archive index reader (vine_index_read) on any bytes as a
 * whole archive file.  Beyond not crashing, an index it accepts must
 * describe members that tile the file before the index and the tar stream
 * exactly, as vine-seed's parallel unpack relies on.
 */
#include <stdlib.h>
#include <string.h>

#include "archive/vformat.h"
#include "util/util.h"
#include "fuzz.h"

static void roundtrip(const uint8_t *data, const struct vine_index *idx)
{
	struct vine_index again;
	unsigned char *enc, *file;
	size_t len;

	if (vine_index_encode(idx->m, idx->n, idx->total, idx->x0off, &enc, &len) < 0)
		fz_fail("cannot encode an index that was read: %s", vine_errmsg());
	file = malloc(idx->x0off + len);
	if (!file)
		fz_fail("out of memory");
	memcpy(file, data, idx->x0off);
	memcpy(file + idx->x0off, enc, len);
	if (vine_index_read(fz_memfd(file, idx->x0off + len), idx->x0off + len, &again) != 1)
		fz_fail("the index written does not read back: %s", vine_errmsg());
	if (again.n != idx->n || again.total != idx->total || again.x0off != idx->x0off ||
	    memcmp(again.m, idx->m, idx->n * sizeof(*idx->m)))
		fz_fail("the index written reads back different");
	vine_index_free(&again);
	free(enc);
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_index idx;
	uint64_t coff = 0, uoff = 0;
	int r = vine_index_read(fz_memfd(data, size), size, &idx);

	if (r < 0 && !*vine_errmsg())
		fz_fail("refused without a message");
	if (r != 1)
		return 0;
	if (idx.n == 0 || idx.x0off >= size)
		fz_fail("accepted an index of %u members at %llu in %zu bytes", idx.n,
			(unsigned long long)idx.x0off, size);
	for (uint32_t i = 0; i < idx.n; i++) {
		const struct vine_member *m = &idx.m[i];
		if (m->coff != coff || m->uoff != uoff || !m->clen || m->ulen > VINE_MEMBER_MAX)
			fz_fail("member %u does not follow the one before", i);
		coff += m->clen;
		uoff += m->ulen;
	}
	if (coff != idx.x0off || uoff != idx.total)
		fz_fail("the members do not cover the archive");
	roundtrip(data, &idx);
	vine_index_free(&idx);
	return 0;
}
