/*
 * test-addr.c - HOST:PORT listen addresses.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "t.h"

static int ok(const char *s, const char *host, int port)
{
	char *h = NULL;
	int p = -1, r = vine_addr_parse(s, &h, &p) == 0 && !strcmp(h, host) && p == port;

	free(h);
	return r;
}

static int bad(const char *s)
{
	char *h = NULL;
	int p;

	return vine_addr_parse(s, &h, &p) < 0 && h == NULL;
}

int main(void)
{
	CHECK(ok("127.0.0.2:7000", "127.0.0.2", 7000));
	CHECK(ok("0.0.0.0:0", "0.0.0.0", 0));
	CHECK(ok("[::1]:65535", "::1", 65535));
	CHECK(ok("node-12.cluster:9000", "node-12.cluster", 9000));
	CHECK(bad("127.0.0.1"));
	CHECK(bad(":7000"));
	CHECK(bad("127.0.0.1:"));
	CHECK(bad("127.0.0.1:65536"));
	CHECK(bad("127.0.0.1:-1"));
	CHECK(bad("127.0.0.1:80x"));
	CHECK(bad("::1:80"));
	CHECK(bad("[::1:80"));
	CHECK(bad("[nothex]:80"));
	CHECK(bad("999.1.1.1:80"));
	CHECK(bad("bad_host:80"));
	CHECK(bad("-x:80"));
	return T_END();
}
