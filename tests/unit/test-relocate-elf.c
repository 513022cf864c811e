/*
 * test-relocate-elf.c - ELF run paths made $ORIGIN-relative in every class
 * and byte order, strings grown into conda-style padding, and the room a
 * file leaves for a new prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/relocate.h"
#include "t.h"

static void put(unsigned char *p, uint64_t v, int n, int be)
{
	for (int i = 0; i < n; i++)
		p[be ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get(const unsigned char *p, int n, int be)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[be ? i : n - 1 - i];
	return v;
}

#define VADDR 0x400000
#define STROFF 512
#define DYNOFF 384

/*
 * A shared object: a PT_LOAD for the whole file, a PT_DYNAMIC, and a
 * string table whose run path's tail "inner" is also the DT_NEEDED name,
 * as ld shares them.  *needed_off: the NEEDED string's offset in the file.
 */
static unsigned char *mkelf(int c64, int be, const char *rpath, size_t *len, size_t *needed_off)
{
	size_t n = 1024, w = c64 ? 8 : 4, phoff = c64 ? 64 : 52, phsz = c64 ? 56 : 32;
	unsigned char *b = calloc(1, n), *ph, *d;
	size_t rlen = strlen(rpath), strsz = 1 + rlen + 1;

	memcpy(b, "\177ELF", 4);
	b[4] = c64 ? 2 : 1;
	b[5] = be ? 2 : 1;
	b[6] = 1;
	put(b + (c64 ? 32 : 28), phoff, (int)w, be);
	put(b + (c64 ? 54 : 42), phsz, 2, be);
	put(b + (c64 ? 56 : 44), 2, 2, be);
	ph = b + phoff;                      /* PT_LOAD: the whole file */
	put(ph, 1, 4, be);
	put(ph + (c64 ? 8 : 4), 0, (int)w, be);
	put(ph + (c64 ? 16 : 8), VADDR, (int)w, be);
	put(ph + (c64 ? 32 : 16), n, (int)w, be);
	ph += phsz;                          /* PT_DYNAMIC */
	put(ph, 2, 4, be);
	put(ph + (c64 ? 8 : 4), DYNOFF, (int)w, be);
	put(ph + (c64 ? 16 : 8), VADDR + DYNOFF, (int)w, be);
	put(ph + (c64 ? 32 : 16), 5 * 2 * w, (int)w, be);
	memcpy(b + STROFF + 1, rpath, rlen);
	*needed_off = STROFF + 1 + rlen - strlen("inner");
	d = b + DYNOFF;
	uint64_t dyn[][2] = { { 1, *needed_off - STROFF }, { 5, VADDR + STROFF }, { 10, strsz },
			      { c64 ? 29 : 15, 1 }, { 0, 0 } };
	for (size_t i = 0; i < 5; i++) {
		put(d + 2 * w * i, dyn[i][0], (int)w, be);
		put(d + 2 * w * i + w, dyn[i][1], (int)w, be);
	}
	*len = n;
	return b;
}

static void one(int c64, int be)
{
	size_t len, needed, n;
	struct vine_elf_str *rp;
	unsigned char *b = mkelf(c64, be, "/pre/fix/lib/inner", &len, &needed);
	int w = c64 ? 8 : 4;

	check_int(vine_elf_rpaths(b, len, &rp, &n), ==, 1);
	if (check_int(n, ==, 1)) {
		check_int(rp[0].off, ==, STROFF + 1);
		check_int(rp[0].len, ==, strlen("/pre/fix/lib/inner"));
	}
	free(rp);
	/* rpath strings do not bound the new prefix: they become relative */
	CHECK(vine_relocate_room((char *)b, len, "lib/libouter.so", "/pre/fix") == VINE_ROOM_ANY);
	CHECK(vine_relocate_rpaths((char *)b, len, "lib/libouter.so", "/pre/fix") == 1);
	uint64_t val = get(b + DYNOFF + 3 * 2 * w + w, w, be);
	CHECK_STR((char *)b + STROFF + val, "$ORIGIN/inner");
	/* the shared tail still reads as the NEEDED name, and nothing else moved */
	CHECK_STR((char *)b + needed, "inner");
	CHECK(get(b + DYNOFF + w, w, be) == needed - STROFF);
	CHECK(!memmem(b, len, "/pre/fix", 8));
	free(b);

	/* the same directory: through the last component, kept at the end */
	b = mkelf(c64, be, "/pre/fixed/lib:/usr/lib/inner", &len, &needed);
	CHECK(vine_relocate_rpaths((char *)b, len, "lib/libouter.so", "/pre/fixed") == 1);
	val = get(b + DYNOFF + 3 * 2 * w + w, w, be);
	CHECK_STR((char *)b + STROFF + val, "$ORIGIN/../lib:/usr/lib/inner");
	CHECK_STR((char *)b + needed, "inner");
	free(b);

	/* entries elsewhere are kept; a run path that does not name the prefix is left alone */
	b = mkelf(c64, be, "/opt/x/inner", &len, &needed);
	CHECK(vine_relocate_rpaths((char *)b, len, "bin/prog", "/pre/fix") == 0);
	CHECK_STR((char *)b + STROFF + 1, "/opt/x/inner");
	free(b);
}

int main(void)
{
	for (int c64 = 0; c64 < 2; c64++)
		for (int be = 0; be < 2; be++)
			one(c64, be);

	/* refused clearly: an unknown class, headers outside the file; not ELF: 0 */
	size_t len, needed, n;
	struct vine_elf_str *rp;
	unsigned char *b = mkelf(1, 0, "/pre/fix/lib/inner", &len, &needed);
	b[4] = 3;
	check_int(vine_elf_rpaths(b, len, &rp, &n), ==, -1);
	CHECK(strstr(vine_errmsg(), "class 3"));
	b[4] = 2;
	put(b + 32, 4000, 8, 0);
	check_int(vine_elf_rpaths(b, len, &rp, &n), ==, -1);
	CHECK(strstr(vine_errmsg(), "outside the file"));
	check_int(vine_elf_rpaths(b, 40, &rp, &n), ==, -1);
	CHECK(strstr(vine_errmsg(), "truncated"));
	check_int(vine_elf_rpaths("#!/bin/sh\n", 10, &rp, &n), ==, 0);
	check_int(n, ==, 0);
	/* ...and its strings are still relocated as strings */
	b[4] = 3;
	CHECK(vine_relocate_room((char *)b, len, "lib/x.so", "/pre/fix") == 8 + (1024 - 531) - 1);
	free(b);

	/* padding: a run of VINE_PAD_MIN NULs or more is room, less the final NUL */
	char pad[128];
	memset(pad, 0, sizeof(pad));
	memcpy(pad, "x\0/old/p/lib", 12);
	size_t plen = 2 + 10 + 40;  /* the string, then 40 NULs, then data */
	memcpy(pad + plen, "next", 5);
	CHECK(vine_relocate_room(pad, plen + 5, "f", "/old/p") == 6 + 39);
	CHECK(vine_relocate_binary(pad, plen + 5, "/old/p", "/a/much/longer/prefix") == 1);
	CHECK_STR(pad + 2, "/a/much/longer/prefix/lib");
	CHECK_STR(pad + plen, "next");
	CHECK(pad[plen - 1] == '\0');
	/* two occurrences share the padding */
	char two[96];
	memset(two, 0, sizeof(two));
	memcpy(two, "/o:/o", 6);
	CHECK(vine_relocate_room(two, 64, "f", "/o") == 2 + (64 - 5 - 1) / 2);
	/* a short run is not padding (alignment, or the next datum) */
	char tight[] = "/old\0\0\0\0next";
	CHECK(vine_relocate_room(tight, sizeof(tight) - 1, "f", "/old") == 4);
	CHECK(vine_relocate_binary(tight, sizeof(tight) - 1, "/old", "/older") == -1);
	CHECK_STR(tight, "/old");
	/* too long for the padding: nothing changed */
	memset(pad, 0, sizeof(pad));
	memcpy(pad, "/p", 3);
	char big[64];
	memset(big, 'b', sizeof(big));
	big[0] = '/';
	big[63] = '\0';
	CHECK(vine_relocate_room(pad, 40, "f", "/p") == 2 + 37);
	check_int(vine_relocate_binary(pad, 40, "/p", big), ==, -1);
	check_str(pad, ==, "/p");
	/* no occurrence: no limit */
	CHECK(vine_relocate_room("abc\0def", 7, "f", "/p") == VINE_ROOM_ANY);

	/* CPython's runtime: a string that is exactly the prefix (PREFIX,
	 * EXEC_PREFIX) is a fallback: no limit, kept when the new prefix does
	 * not fit, replaced when it does; a longer string still limits */
	char py[] = "x\0/old\0/old/lib\0\0\0\0/old\0";
	CHECK(vine_relocate_room(py, sizeof(py) - 1, "lib/libpython3.11.so.1.0", "/old") == 4);
	CHECK(vine_relocate_room(py, 8, "lib/libpython3.11.so.1.0", "/old") == VINE_ROOM_ANY);
	CHECK(vine_relocate_room(py, 8, "bin/python3.11", "/old") == VINE_ROOM_ANY);
	CHECK(vine_relocate_room(py, 8, "lib/libother.so", "/old") == 4);
	CHECK(vine_relocate_room(py, 8, "lib/python3.11/config-3.11/libpython3.11.a", "/old") == VINE_ROOM_ANY);
	CHECK(vine_relocate_room(py, 8, "lib/libpython3.11.la", "/old") == 4);
	CHECK(vine_relocate_binary_file(py, 8, "lib/libpython3.11.so.1.0", "/old", "/longer") == 0);
	CHECK_STR(py + 2, "/old");
	CHECK(vine_relocate_binary_file(py, 8, "lib/libother.so", "/old", "/longer") == -1);
	CHECK(vine_relocate_binary_file(py, sizeof(py) - 1, "lib/libpython3.so", "/old", "/longer") == -1);
	CHECK(vine_relocate_binary_file(py, sizeof(py) - 1, "lib/libpython3.so", "/old", "/new") == 3);
	CHECK_STR(py + 2, "/new");
	CHECK_STR(py + 7, "/new/lib");
	CHECK_STR(py + 19, "/new");
	return T_END();
}
