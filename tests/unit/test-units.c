/*
 * test-units - sizes for people: one decimal convention (util.h).
 */
#include <stdint.h>

#include "t.h"
#include "util/util.h"

static int64_t size(const char *s)
{
	int64_t v = -1;

	return vine_parse_size(s, INT64_C(1) << 60, &v) < 0 ? -1 : v;
}

int main(void)
{
	char b[32];

	check_int(size("0"), ==, 0);
	check_int(size("123"), ==, 123);
	check_int(size("123B"), ==, 123);
	check_int(size("4k"), ==, 4000);
	check_int(size("4kB"), ==, 4000);
	check_int(size("4KB"), ==, 4000);
	check_int(size("4G"), ==, 4000000000);
	check_int(size("4GB"), ==, 4000000000);
	check_int(size("4gb"), ==, 4000000000);
	check_int(size("1.5GB"), ==, 1500000000);
	check_int(size("2T"), ==, 2000000000000);
	check_int(size("1KiB"), ==, 1024);
	check_int(size("1.5GiB"), ==, 1610612736);
	check_int(size("1MiB"), ==, 1048576);
	/* no fraction of a byte, no sign, no junk, no overflow */
	check_int(size("1.5"), ==, -1);
	check_int(size("-1"), ==, -1);
	check_int(size("+1"), ==, -1);
	check_int(size(""), ==, -1);
	check_int(size("G"), ==, -1);
	check_int(size("4X"), ==, -1);
	check_int(size("4 GB"), ==, -1);
	check_int(size("0x10"), ==, -1);
	check_int(size("2000000PB"), ==, -1);
	check_int(size("9999999TB"), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not a size") != NULL);

	vine_format_bytes(b, sizeof(b), 0);
	check_str(b, ==, "0 B");
	vine_format_bytes(b, sizeof(b), 999);
	check_str(b, ==, "999 B");
	vine_format_bytes(b, sizeof(b), 1000);
	check_str(b, ==, "1.0 kB");
	vine_format_bytes(b, sizeof(b), 25165824);
	check_str(b, ==, "25.2 MB");
	vine_format_bytes(b, sizeof(b), 64e9);
	check_str(b, ==, "64.0 GB");
	vine_format_bytes(b, sizeof(b), 1e12);
	check_str(b, ==, "1.0 TB");
	return T_END();
}
