/*
 * transfer.c - names of transfer outcomes (see transfer.h).
 */
#include <stddef.h>

#include "util/transfer.h"

const char *vine_peer_status_name(int status)
{
	static const char *names[] = {
		[VINE_PEER_OK] = "ok",
		[VINE_PEER_ECONNECT] = "connect",
		[VINE_PEER_ETIMEOUT] = "timeout",
		[VINE_PEER_EAUTH] = "auth",
		[VINE_PEER_EVERSION] = "version",
		[VINE_PEER_EBUSY] = "busy",
		[VINE_PEER_ENOTFOUND] = "notfound",
		[VINE_PEER_ESTALLED] = "stalled",
		[VINE_PEER_EREMOTE] = "remote",
		[VINE_PEER_EPROTO] = "protocol",
		[VINE_PEER_ECORRUPT] = "corrupt",
		[VINE_PEER_ELOCAL] = "local",
	};

	if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]) || !names[status])
		return "unknown";
	return names[status];
}
