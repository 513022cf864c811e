/*
 * secret.h - the per-run secret that peers prove to each other (vine(7),
 * PEER PROTOCOL) and that the state hands out, and random bytes.  Here,
 * not in peer/, so the state keeps it without depending on the peer code.
 */
#ifndef VINE_SECRET_H
#define VINE_SECRET_H

#include <stddef.h>

#define VINE_PEER_SECRET_LEN 32

/*
 * The per-run secret.  Text form: 64 lowercase or uppercase hex digits,
 * optionally followed by one newline.  vine_peer_secret_load refuses a file
 * that group or others can read (like ssh with private keys).
 */
int vine_peer_secret_parse(const char *text, size_t len, unsigned char secret[VINE_PEER_SECRET_LEN]);
int vine_peer_secret_load(const char *path, unsigned char secret[VINE_PEER_SECRET_LEN]);
/* 32 bytes from the system's random generator. */
int vine_peer_secret_new(unsigned char secret[VINE_PEER_SECRET_LEN]);
/* 64 lowercase hex digits and a NUL. */
void vine_peer_secret_hex(const unsigned char secret[VINE_PEER_SECRET_LEN], char hex[2 * VINE_PEER_SECRET_LEN + 1]);

/* n bytes from a cryptographic random generator; 0, or -1 with a message. */
int vine_random(void *p, size_t n);

#endif
