/*
 * hash.h - SHA-256 object ids (OpenSSL's libcrypto does the hashing).
 *
 * An object id is the lowercase hex SHA-256 of the object's bytes, 64
 * characters, as sha256sum prints it.
 */
#ifndef VINE_HASH_H
#define VINE_HASH_H

#include <stddef.h>
#include <sys/types.h>

#define VINE_ID_LEN 64

struct vine_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

void vine_sha256_init(struct vine_sha256 *h);
void vine_sha256_update(struct vine_sha256 *h, const void *data, size_t len);
/* Write the 64 hex digits and a NUL into hex, and release the context. */
void vine_sha256_final(struct vine_sha256 *h, char hex[VINE_ID_LEN + 1]);
/* Hash an open file from its current offset to its end. */
int vine_sha256_fd(int fd, char hex[VINE_ID_LEN + 1]);
int vine_sha256_file(const char *path, char hex[VINE_ID_LEN + 1]);
/* True for exactly 64 lowercase hex digits. */
int vine_id_valid(const char *s);

#endif
