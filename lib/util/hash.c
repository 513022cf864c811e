/*
 * hash.c - SHA-256 through libcrypto's EVP interface.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/hash.h"
#include "util/util.h"

void vine_sha256_init(struct vine_sha256 *h)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		abort();
	h->ctx = c;
}

void vine_sha256_update(struct vine_sha256 *h, const void *data, size_t len)
{
	if (EVP_DigestUpdate(h->ctx, data, len) != 1)
		abort();
}

void vine_sha256_final(struct vine_sha256 *h, char hex[VINE_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
		abort();
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[VINE_ID_LEN] = '\0';
}

int vine_sha256_fd(int fd, char hex[VINE_ID_LEN + 1])
{
	size_t bufsz = 1 << 20;
	char *buf = vine_xmalloc(bufsz);
	struct vine_sha256 h;
	ssize_t n;

	vine_sha256_init(&h);
	while ((n = vine_read_full(fd, buf, bufsz)) > 0)
		vine_sha256_update(&h, buf, (size_t)n);
	free(buf);
	vine_sha256_final(&h, hex);
	return n < 0 ? vine_error_errno("read error") : 0;
}

int vine_sha256_file(const char *path, char hex[VINE_ID_LEN + 1])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return vine_error_errno("cannot open '%s'", path);
	rc = vine_sha256_fd(fd, hex);
	close(fd);
	if (rc < 0)
		vine_error_prefix("'%s'", path);
	return rc;
}

int vine_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == VINE_ID_LEN;
}
