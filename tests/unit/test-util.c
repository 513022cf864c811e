/*
 * test-util.c - lib/util: full I/O leaves a message, files made with an
 * exact mode whatever the umask, vine_publish, the node-name rule and the
 * core counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include "t.h"
#include "util/config.h"
#include "util/util.h"

static char top[] = "/tmp/vine-test-util.XXXXXX";

static void test_full_io(void)
{
	char buf[4];
	int p[2];

	check_int(vine_read_full(-1, buf, sizeof(buf)), ==, -1);
	check_int(errno, ==, EBADF);
	check_str(vine_errmsg(), ==, "read failed: Bad file descriptor");
	check_int(vine_write_full(-1, "x", 1), ==, -1);
	check_str(vine_errmsg(), ==, "write failed: Bad file descriptor");
	check_int(pipe(p), ==, 0);
	check_int(vine_write_full(p[1], "abc", 3), ==, 0);
	close(p[1]);
	check_int(vine_read_full(p[0], buf, sizeof(buf)), ==, 3);
	close(p[0]);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? (mode_t)-1 : st.st_mode & 07777;
}

static void test_modes(void)
{
	char *f = vine_xasprintf("%s/f.XXXXXX", top), *d = vine_xasprintf("%s/d.XXXXXX", top);
	mode_t old = umask(077);
	int fd;

	check_int(vine_umask(), ==, 077);
	check_int(vine_umasked(0666), ==, 0600);
	fd = vine_mkstemp(f, 0644);
	check_int(fd, >=, 0);
	check_int(mode_of(f), ==, 0644);
	close(fd);
	CHECK(vine_mkdtemp(d, 0755) != NULL);
	check_int(mode_of(d), ==, 0755);
	umask(old);
	free(f);
	free(d);
}

static void test_publish(void)
{
	char *a = vine_xasprintf("%s/a", top), *b = vine_xasprintf("%s/b", top);
	char *da = vine_xasprintf("%s/da", top), *db = vine_xasprintf("%s/db", top);
	char *x = vine_xasprintf("%s/db/x", top), *data = NULL;
	size_t len;

	check_int(vine_write_file_atomic(b, "old", 3, 0600), ==, 0);
	check_int(vine_write_file_atomic(a, "new", 3, 0640), ==, 0);
	check_int(mode_of(a), ==, 0640);
	check_int(vine_publish(a, b, VINE_PUBLISH_NOREPLACE), ==, -1);
	check_int(errno, ==, EEXIST);
	check_int(vine_publish(a, b, VINE_PUBLISH_SYNC), ==, 0);
	check_int(vine_read_file(b, 100, &data, &len), ==, 0);
	check_str(data, ==, "new");
	free(data);
	/* a directory replaces a non-empty one */
	check_int(mkdir(da, 0700), ==, 0);
	check_int(mkdir(db, 0700), ==, 0);
	check_int(vine_write_file_atomic(x, "x", 1, 0600), ==, 0);
	check_int(vine_publish(da, db, 0), ==, 0);
	check_int(access(x, F_OK), ==, -1);
	check_int(access(da, F_OK), ==, -1);
	free(a), free(b), free(da), free(db), free(x);
}

static void test_node(void)
{
	char long_name[300];

	check_int(vine_node_check("n1"), ==, 0);
	check_int(vine_node_check("node-7.example.org"), ==, 0);
	check_int(vine_node_check(""), ==, -1);
	check_int(vine_node_check(NULL), ==, -1);
	check_int(vine_node_check("a/b"), ==, -1);
	check_int(vine_node_check("a\nb"), ==, -1);
	check_int(vine_node_check(".hidden"), ==, -1);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	check_int(vine_node_check(long_name), ==, -1);
	long_name[VINE_NODE_MAX] = '\0';
	check_int(vine_node_check(long_name), ==, 0);
}

static void test_cores(void)
{
	cpu_set_t set;

	check_int(sched_getaffinity(0, sizeof(set), &set), ==, 0);
	check_int(vine_online_cores(), ==, CPU_COUNT(&set));
	/* one core allowed: one counted, however many are online */
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set) == 0)
		check_int(vine_online_cores(), ==, 1);
}

int main(void)
{
	if (!mkdtemp(top))
		return 1;
	test_full_io();
	test_modes();
	test_publish();
	test_node();
	test_cores();
	vine_rm_rf(top);
	return T_END();
}
