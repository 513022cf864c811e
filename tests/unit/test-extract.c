/*
 * test-extract.c - the extractor: path cleaning, opening beneath a
 * directory, and the same archive unpacked every way (1 or 3 threads,
 * whole or streamed members, openat2 or the walk) giving the same tree,
 * the same id and an exact copy.  Archives come from tests/tools/mkvarchive.py.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/extract.h"
#include "util/hash.h"
#include "t.h"
#include "util/util.h"

static char dir[64];

static const char *clean(const char *p)
{
	static char *last;

	free(last);
	last = vine_path_clean(p);
	return last ? last : "(refused)";
}

/* unpack dir/a.tgz into dir/NAME; returns the id, or NULL with the message in err */
static int unpack(const char *name, int jobs, size_t stream_min, int copy, char id[65])
{
	char path[256], out[256];
	struct vine_extract_opts o = { .jobs = jobs, .quiet = 1, .hash = 1, .copy_fd = -1,
				       .stream_min = stream_min };
	struct vine_extract_stats st;
	struct vine_tree *t;
	struct stat sb;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	snprintf(out, sizeof(out), "%s/%s", dir, name);
	mkdir(out, 0700);
	fd = open(path, O_RDONLY);
	fstat(fd, &sb);
	if (copy) {
		snprintf(path, sizeof(path), "%s/%s.copy", dir, name);
		o.copy_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	}
	rc = vine_extract(&o, fd, (uint64_t)sb.st_size, out, &t, &st);
	if (rc == 0) {
		memcpy(id, st.id, 65);
		rc = vine_tree_finish(t);
		vine_tree_free(t);
	}
	if (o.copy_fd >= 0)
		close(o.copy_fd);
	close(fd);
	return rc;
}

int main(void)
{
	const char *top = getenv("VINE_TOP");
	char want[65], id[65], path[256];

	/* paths */
	check_str(clean("a/b/c"), ==, "a/b/c");
	check_str(clean("./a//b/./c/"), ==, "a/b/c");
	check_str(clean("././"), ==, "");
	check_str(clean("."), ==, "");
	check_str(clean("a/.."), ==, "(refused)");
	CHECK(strstr(vine_errmsg(), "'..' component"));
	check_str(clean("../a"), ==, "(refused)");
	check_str(clean("/etc/passwd"), ==, "(refused)");
	CHECK(strstr(vine_errmsg(), "absolute path"));
	check_str(clean("a/..b/c.."), ==, "a/..b/c..");

	snprintf(dir, sizeof(dir), "/tmp/test-extract.XXXXXX");
	if (!mkdtemp(dir) || !top)
		return fprintf(stderr, "need a temporary directory and VINE_TOP\n"), 1;

	/* opening beneath: never through a symlink, both ways */
	check_int(t_sh("mkdir -p %s/b/d/e && echo hi >%s/b/d/e/f && ln -s d %s/b/l && ln -s e/f %s/b/d/lf",
		dir, dir, dir, dir), ==, 0);
	snprintf(path, sizeof(path), "%s/b", dir);
	int root = open(path, O_RDONLY | O_DIRECTORY);
	for (int walk = 0; walk < 2; walk++) {
		vine_fs_no_openat2 = walk;
		int fd = vine_open_beneath(root, "d/e/f", O_RDONLY, 0);
		check_int(fd, >=, 0);
		close(fd);
		check_int(vine_open_beneath(root, "l/e/f", O_RDONLY, 0), ==, -1);
		CHECK(strstr(vine_errmsg(), "passes through a symlink"));
		check_int(vine_open_beneath(root, "d/lf", O_RDONLY, 0), ==, -1);
		CHECK(strstr(vine_errmsg(), "is a symlink"));
		check_int(vine_open_beneath(root, "d/e/f/g", O_RDONLY, 0), ==, -1);
		CHECK(strstr(vine_errmsg(), "not a directory"));
		check_int(vine_open_beneath(root, "d/nothere/f", O_RDONLY, 0), ==, -1);
	}
	vine_fs_no_openat2 = 0;
	close(root);

	/* one archive, unpacked every way */
	check_int(t_sh("cd %s && mkdir -p src/x/y src/z && head -c 300000 /dev/urandom >src/x/big && "
		"for i in $(seq 1 60); do echo file $i >src/x/y/f$i; done && ln -s y/f1 src/x/sl && "
		"ln src/x/big src/z/hard && chmod 500 src/z && touch -d 2001-01-01 src/x/y/f7 && "
		"python3 %s/tests/tools/mkvarchive.py --member-size 4000 -o a.tgz src", dir,
		top), ==, 0);
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	check_int(vine_sha256_file(path, want), ==, 0);
	struct { const char *name; int jobs; size_t smin; int walk, copy; } ways[] = {
		{ "j1", 1, 0, 0, 0 }, { "j3", 3, 0, 0, 1 }, { "stream", 2, 1, 0, 1 }, { "walk", 3, 0, 1, 0 },
	};
	for (size_t i = 0; i < sizeof(ways) / sizeof(*ways); i++) {
		vine_fs_no_openat2 = ways[i].walk;
		check_int(unpack(ways[i].name, ways[i].jobs, ways[i].smin, ways[i].copy, id),
			==, 0);
		check_str(id, ==, want);
		CHECK(t_sh("cd %s && diff -r src %s -x .vine && cmp a.tgz %s.copy 2>/dev/null || [ %d = 0 ]",
			dir, ways[i].name, ways[i].name, ways[i].copy) == 0);
		check_int(t_sh("cd %s/%s && [ \"$(stat -c '%%h %%a' x/big z)\" = \"2 644\n2 500\" ] && "
			"[ \"$(readlink x/sl)\" = y/f1 ] && [ \"$(stat -c %%Y x/y/f7)\" = \"$(date -d 2001-01-01 +%%s)\" ]",
			dir, ways[i].name), ==, 0);
	}
	vine_fs_no_openat2 = 0;

	/* a wrong crc in the index, whole and streamed */
	check_int(t_sh("cd %s && python3 %s/tests/tools/mkvarchive.py --member-size 4000 --bad-crc 2 -o a.tgz src",
		dir, top), ==, 0);
	check_int(unpack("badcrc1", 2, 0, 0, id), ==, -1);
	CHECK(strstr(vine_errmsg(), "member 2 is corrupt: crc32"));
	check_int(unpack("badcrc2", 2, 1, 1, id), ==, -1);
	CHECK(strstr(vine_errmsg(), "member 2 is corrupt: crc32"));

	/* a flipped byte in a member, streamed */
	check_int(t_sh("cd %s && python3 %s/tests/tools/mkvarchive.py --member-size 4000 -o a.tgz src && "
		"printf '\\377\\377\\377' | dd of=a.tgz bs=1 seek=300 conv=notrunc 2>/dev/null",
		dir, top), ==, 0);
	check_int(unpack("flip", 2, 1, 0, id), ==, -1);
	CHECK(strstr(vine_errmsg(), "member 0 is corrupt"));

	if (!getenv("KEEP"))
		t_sh("chmod -R u+rwx %s; rm -rf %s", dir, dir);
	return T_END();
}
