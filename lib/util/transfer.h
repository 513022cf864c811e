/*
 * transfer.h - the outcome of fetching an object from one source: what
 * the peer client returns and what the state records for each transfer
 * (vine(7), SPREADING).  Here, not in peer/, so the state keeps transfer
 * records without depending on the peer code.
 */
#ifndef VINE_TRANSFER_H
#define VINE_TRANSFER_H

/* Outcome of fetching from one source. */
enum vine_peer_status {
	VINE_PEER_OK = 0,       /* the object is complete and verified in objects/ */
	VINE_PEER_ECONNECT,     /* cannot connect, or the connection broke */
	VINE_PEER_ETIMEOUT,     /* the source sent nothing for stall_timeout seconds */
	VINE_PEER_EAUTH,        /* authentication failed (either side) */
	VINE_PEER_EVERSION,     /* no protocol version in common */
	VINE_PEER_EBUSY,        /* the source is at its upload limit */
	VINE_PEER_ENOTFOUND,    /* the source has no copy of the object */
	VINE_PEER_ESTALLED,     /* the source's own partial copy stopped growing or was discarded */
	VINE_PEER_EREMOTE,      /* the source could not read its copy */
	VINE_PEER_EPROTO,       /* the source broke the protocol */
	VINE_PEER_ECORRUPT,     /* the complete object did not hash to its id: discarded */
	VINE_PEER_ELOCAL,       /* a local failure (cache, disk): another source will not help */
};
/* A short name for a status ("ok", "busy", "corrupt", ...). */
const char *vine_peer_status_name(int status);

#endif
