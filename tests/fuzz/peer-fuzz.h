/*
 * peer-fuzz.h - what the two peer harnesses share: a secret, an object and
 * the honest half of the handshake.
 */
#ifndef VINE_PEER_FUZZ_H
#define VINE_PEER_FUZZ_H

#include <stddef.h>

#include "peer/peer.h"

/* The secret both sides use: 32 bytes of 0x5a. */
extern const unsigned char pf_secret[VINE_PEER_SECRET_LEN];
/* The object the cache holds: PF_OBJECT_LEN bytes, pf_object_byte(i) each. */
#define PF_OBJECT_LEN 5000
unsigned char pf_object_byte(size_t i);
/* Its id (computed on first use). */
const char *pf_object_id(void);
/* Client side of the handshake on fd; 0 when the server welcomed us. */
int pf_client_handshake(int fd);
/* Server side: read the client's HELLO, send a CHALLENGE, read its AUTH and
 * send a WELCOME that proves the secret; 0 when done. */
int pf_server_handshake(int fd);

/*
 * Run fn(arg) on a helper thread that lives as long as the process, and
 * wait for it: under the sanitizers a new thread for every input costs
 * more than the input.
 */
void pf_start(void (*fn)(void *), void *arg);
void pf_join(void);

#endif
