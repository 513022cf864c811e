/*
 * fuzz-index - the archive index reader (vine_index_read) on any bytes as a
 * whole archive file.  Beyond not crashing, an index it accepts must
 * describe members that tile the file before the index and the tar stream
 * exactly, as vine-seed's parallel unpack relies on.
 */
#include "archive/vformat.h"
#include "util/util.h"
#include "fuzz.h"

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
	vine_index_free(&idx);
	return 0;
}
