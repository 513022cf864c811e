/*
 * fuzz.c - the harnesses' shared helpers (fuzz.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"

static char *tmpdir;

static void cleanup(void)
{
	if (tmpdir)
		vine_rm_rf(tmpdir);
}

const char *fz_tmpdir(void)
{
	if (!tmpdir) {
		const char *t = getenv("VINE_FUZZ_TMPDIR");

		/* memory, where there is some: SQLite and publishing sync */
		if (!t || !*t)
			t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
		tmpdir = vine_xasprintf("%s/vine-fuzz.XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir))
			fz_fail("cannot create '%s'", tmpdir);
		atexit(cleanup);
	}
	return tmpdir;
}

char *fz_path(const char *name)
{
	return vine_xasprintf("%s/%s", fz_tmpdir(), name);
}

int fz_memfd(const uint8_t *data, size_t size)
{
	static int fd = -1;

	if (fd < 0 && (fd = memfd_create("vine-fuzz", MFD_CLOEXEC)) < 0)
		fz_fail("memfd_create: %d", errno);
	if (ftruncate(fd, 0) < 0 || vine_pwrite_full(fd, data, size, 0) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0)
		fz_fail("cannot fill the memfd: %d", errno);
	return fd;
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}
