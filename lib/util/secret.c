/*
 * secret.c - the per-run secret and random bytes (see secret.h).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "util/secret.h"
#include "util/util.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vine_peer_secret_parse(const char *text, size_t len, unsigned char secret[VINE_PEER_SECRET_LEN])
{
	if (len == 2 * VINE_PEER_SECRET_LEN + 1 && text[len - 1] == '\n')
		len--;
	if (len != 2 * VINE_PEER_SECRET_LEN)
		return vine_error("a secret is %d hex digits", 2 * VINE_PEER_SECRET_LEN);
	for (size_t i = 0; i < VINE_PEER_SECRET_LEN; i++) {
		int hi = hexval((unsigned char)text[2 * i]), lo = hexval((unsigned char)text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return vine_error("a secret is %d hex digits", 2 * VINE_PEER_SECRET_LEN);
		secret[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int vine_peer_secret_load(const char *path, unsigned char secret[VINE_PEER_SECRET_LEN])
{
	/* O_NONBLOCK: a FIFO must not block the open; only a regular file is read */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char buf[2 * VINE_PEER_SECRET_LEN + 2];
	struct stat st;
	ssize_t n;
	int rc = -1;

	if (fd < 0)
		return vine_error_errno("cannot open secret file '%s'", path);
	if (fstat(fd, &st) < 0) {
		vine_error_errno("cannot stat secret file '%s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		vine_error("secret file '%s' is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		vine_error("secret file '%s' is readable by others (mode %03o): chmod 600 it",
			   path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	n = vine_read_full(fd, buf, sizeof(buf));
	if (n < 0) {
		vine_error_errno("cannot read secret file '%s'", path);
		goto out;
	}
	if (vine_peer_secret_parse(buf, (size_t)n, secret) < 0) {
		vine_error_prefix("secret file '%s'", path);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

int vine_random(void *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		return vine_error("cannot get random bytes");
	return 0;
}

int vine_peer_secret_new(unsigned char secret[VINE_PEER_SECRET_LEN])
{
	return vine_random(secret, VINE_PEER_SECRET_LEN);
}

void vine_peer_secret_hex(const unsigned char secret[VINE_PEER_SECRET_LEN], char hex[2 * VINE_PEER_SECRET_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < VINE_PEER_SECRET_LEN; i++) {
		hex[2 * i] = digits[secret[i] >> 4];
		hex[2 * i + 1] = digits[secret[i] & 15];
	}
	hex[2 * VINE_PEER_SECRET_LEN] = '\0';
}
