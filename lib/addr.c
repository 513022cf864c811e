/*
 * addr.c - parse "HOST:PORT" (see addr.h).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "util.h"

static int hostname_ok(const char *h)
{
	size_t len = strlen(h);

	if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
		return 0;
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return 0;
	return 1;
}

int vine_addr_parse(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	char *h = NULL;
	long long p;
	unsigned char a[16];

	if (!colon || colon == s)
		return vine_error("address '%s' is not HOST:PORT", s);
	if (s[0] == '[') {
		if (colon[-1] != ']' || colon - s < 3)
			return vine_error("address '%s' is not [IPV6]:PORT", s);
		h = vine_xstrndup(s + 1, (size_t)(colon - s - 2));
		if (inet_pton(AF_INET6, h, a) != 1) {
			vine_error("address '%s': '%s' is not an IPv6 address", s, h);
			goto fail;
		}
	} else {
		h = vine_xstrndup(s, (size_t)(colon - s));
		if (strchr(h, ':')) {
			vine_error("address '%s': write IPv6 addresses in brackets, as [::1]:PORT", s);
			goto fail;
		}
		if (inet_pton(AF_INET, h, a) != 1 && (strspn(h, "0123456789.") == strlen(h) ||
						       !hostname_ok(h))) {
			vine_error("address '%s': '%s' is not an IPv4 address or host name", s, h);
			goto fail;
		}
	}
	if (vine_parse_llong(colon + 1, 0, 65535, &p) < 0) {
		vine_error("address '%s': port '%s' is not a number from 0 to 65535", s, colon + 1);
		goto fail;
	}
	*host = h;
	*port = (int)p;
	return 0;
fail:
	free(h);
	return -1;
}
