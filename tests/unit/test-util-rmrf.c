/*
 * test-util-rmrf - vine_rm_rf in bounded time and descriptors: a tree
 * deeper than the open-file limit, unreadable and read-only directories,
 * a symlink out that must not be followed, a missing path.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "t.h"
#include "util/util.h"

/* a chain of depth directories under path, files at a few levels */
static int deep_tree(const char *path, int depth, mode_t mode)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	for (int i = 0; fd >= 0 && i < depth; i++) {
		if (i % 500 == 0) {
			int f = openat(fd, "f", O_WRONLY | O_CREAT, 0600);
			if (f < 0)
				return -1;
			close(f);
		}
		if (mkdirat(fd, "d", 0700) < 0)
			return -1;
		int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		if (mode != 0700)
			fchmod(fd, mode);
		close(fd);
		fd = nfd;
	}
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int main(void)
{
	char tmpl[] = "/tmp/test-rmrf.XXXXXX";
	char *top = mkdtemp(tmpl);
	struct rlimit rl = { 64, 64 };

	if (!top)
		return 1;
	alarm(60); /* exponential time shows up as this alarm */
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);

	/* 3,000 deep: far past 64 descriptors */
	char *deep = vine_xasprintf("%s/deep", top);
	CHECK(mkdir(deep, 0700) == 0);
	CHECK(deep_tree(deep, 3000, 0700) == 0);
	CHECK(vine_rm_rf(deep) == 0);
	check_int(access(deep, F_OK), <, 0);
	check_int(errno, ==, ENOENT);

	/* read-only directories all the way down (as a task or archive may leave) */
	char *ro = vine_xasprintf("%s/ro", top);
	CHECK(mkdir(ro, 0700) == 0);
	CHECK(deep_tree(ro, 1200, 0500) == 0);
	CHECK(vine_rm_rf(ro) == 0);
	check_int(access(ro, F_OK), <, 0);
	check_int(errno, ==, ENOENT);

	/* an unreadable directory, and a symlink out that is not followed */
	char *mixed = vine_xasprintf("%s/mixed", top);
	char *keep = vine_xasprintf("%s/keep", top);
	char *keepf = vine_xasprintf("%s/keep/precious", top);
	char *sub = vine_xasprintf("%s/mixed/locked", top);
	char *subf = vine_xasprintf("%s/mixed/locked/x", top);
	char *link = vine_xasprintf("%s/mixed/out", top);
	CHECK(mkdir(keep, 0700) == 0);
	CHECK(vine_write_file_atomic(keepf, "x", 1, 0600) == 0);
	CHECK(mkdir(mixed, 0700) == 0);
	CHECK(mkdir(sub, 0700) == 0);
	CHECK(vine_write_file_atomic(subf, "x", 1, 0600) == 0);
	CHECK(chmod(sub, 0) == 0);
	CHECK(symlink(keep, link) == 0);
	CHECK(vine_rm_rf(mixed) == 0);
	check_int(access(mixed, F_OK), <, 0);
	check_int(errno, ==, ENOENT);
	CHECK(access(keepf, F_OK) == 0);

	/* a plain file and a missing path */
	CHECK(vine_rm_rf(keepf) == 0);
	CHECK(access(keepf, F_OK) < 0);
	CHECK(vine_rm_rf(keepf) == 0);
	CHECK(vine_rm_rf(top) == 0);
	CHECK(access(top, F_OK) < 0);
	free(deep), free(ro), free(mixed), free(keep), free(keepf), free(sub), free(subf), free(link);
	return T_END();
}
