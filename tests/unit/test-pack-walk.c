/*
 * test-pack-walk.c - the parts of vine-pack below the archive: relative
 * symlink targets, the prefix search across read boundaries, and the tree
 * walk (order, exclusions, hard links, symlinks, special files).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/pack-int.h"
#include "t.h"
#include "util/util.h"

static void rel(const char *path, const char *rest, const char *want)
{
	char *got = pack_relative_link(path, rest);

	check_str(got, ==, want);
	free(got);
}

/* Feed s cut at the given positions; return found + 2 * nul. */
static int scan(const char *needle, const char *s, size_t len, const size_t *cuts, int ncuts)
{
	struct pack_scan sc;
	size_t pos = 0;

	pack_scan_init(&sc, needle);
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		pack_scan_feed(&sc, s + pos, end - pos);
		pos = end;
	}
	return sc.found + 2 * sc.nul;
}

static void test_scan(void)
{
	const char *s = "xx/opt/env/bin/python yy";
	size_t len = strlen(s);
	int all = 1;

	/* every single cut and every pair of cuts */
	for (size_t a = 0; a <= len; a++) {
		all &= scan("/opt/env", s, len, &a, 1) == 1;
		for (size_t b = a; b <= len; b++) {
			size_t c[2] = { a, b };
			all &= scan("/opt/env", s, len, c, 2) == 1;
		}
	}
	CHECK(all);
	/* one byte at a time */
	size_t cuts[64];
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	check_int(scan("/opt/env", s, len, cuts, (int)len - 1), ==, 1);
	/* near misses, also across a cut */
	size_t c5 = 5;
	check_int(scan("/opt/env", "/opt/en /opt/ev", 15, &c5, 1), ==, 0);
	check_int(scan("/opt/env", "/opt/enXv", 9, &c5, 1), ==, 0);
	/* NUL bytes make a file binary, wherever they are */
	check_int(scan("/opt/env", "a\0b/opt/env", 11, &c5, 1), ==, 3);
	check_int(scan("/opt/env", "a\0b", 3, NULL, 0), ==, 2);
	struct pack_scan sc;
	pack_scan_init(&sc, "/p");
	pack_scan_feed(&sc, "/p", 2);
	CHECK(!pack_scan_done(&sc));
	pack_scan_feed(&sc, "", 1);
	CHECK(pack_scan_done(&sc));
}

static char warnings[4096];

static void on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	size_t n = strlen(warnings);

	snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}

static void put(const char *root, const char *path, const char *text)
{
	char *p = vine_xasprintf("%s/%s", root, path);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	check_int(fd, >=, 0);
	check_int(vine_write_full(fd, text, strlen(text)), ==, 0);
	close(fd);
	free(p);
}

static const struct pack_entry *find(const struct pack_tree *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].path, path))
			return &t->e[i];
	return NULL;
}

static void test_walk(void)
{
	const char *tmp = getenv("TMPDIR");
	char *root = vine_xasprintf("%s/test-pack-walk.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	struct pack_tree t;
	char *p;

	CHECK(mkdtemp(root) != NULL);
	const char *dirs[] = { "bin", "lib", "lib/sub", "a", "a.b", "__pycache__", "keep" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		p = vine_xasprintf("%s/%s", root, dirs[i]);
		check_int(mkdir(p, 0755), ==, 0);
		free(p);
	}
	put(root, "bin/tool", "x");
	put(root, "a/z", "1");
	put(root, "a.b/y", "2");
	put(root, "lib/sub/data", "3");
	put(root, "__pycache__/m.pyc", "4");
	put(root, "keep/m.pyc", "5");
	put(root, "lib/sub/drop.log", "6");
	p = vine_xasprintf("%s/bin/tool", root);
	char *q = vine_xasprintf("%s/zz-hard", root), *r = vine_xasprintf("%s/a/hard", root);
	check_int(link(p, q), ==, 0);
	check_int(link(p, r), ==, 0);
	free(q);
	free(r);
	free(p);
	q = vine_xasprintf("%s/bin/abs", root);
	p = vine_xasprintf("%s/lib/sub/data", root);
	check_int(symlink(p, q), ==, 0);
	free(p);
	free(q);
	q = vine_xasprintf("%s/bin/out", root);
	check_int(symlink("/etc/hostname", q), ==, 0);
	free(q);
	q = vine_xasprintf("%s/bin/up", root);
	check_int(symlink("../../elsewhere", q), ==, 0);
	free(q);
	q = vine_xasprintf("%s/bin/rel", root);
	check_int(symlink("../lib", q), ==, 0);
	free(q);
	q = vine_xasprintf("%s/fifo", root);
	check_int(mkfifo(q, 0644), ==, 0);
	free(q);

	const char *prefixes[] = { root };
	const char *ex[] = { "__pycache__", "lib/sub/*.log" };
	int fd = open(root, O_RDONLY | O_DIRECTORY);
	struct pack_walk_opts o = { .rootfd = fd, .display = "ROOT", .prefixes = prefixes,
				    .nprefixes = 1, .exclude = ex, .nexclude = 2, .warn = on_warn };
	check_int(pack_walk(&o, &t), ==, 0);

	/* sorted bytewise by full path: "a.b" < "a/..." because '.' < '/' */
	const char *want[] = { "a", "a.b", "a.b/y", "a/hard", "a/z", "bin", "bin/abs", "bin/out",
			       "bin/rel", "bin/tool", "bin/up", "keep", "keep/m.pyc", "lib",
			       "lib/sub", "lib/sub/data", "zz-hard" };
	size_t nw = sizeof(want) / sizeof(want[0]);
	check_int(t.n, ==, nw);
	int order = t.n == nw;
	for (size_t i = 0; order && i < nw; i++)
		order = !strcmp(t.e[i].path, want[i]);
	CHECK(order);
	/* the first name of an inode carries the data */
	const struct pack_entry *e = find(&t, "a/hard");
	if (CHECK(e)) {
		check_int(e->kind, ==, PK_FILE);
		check_int(e->size, ==, 1);
	}
	e = find(&t, "bin/tool");
	if (CHECK(e)) {
		check_int(e->kind, ==, PK_HARDLINK);
		check_str(e->link, ==, "a/hard");
		check_int(e->size, ==, 0);
	}
	e = find(&t, "zz-hard");
	if (CHECK(e)) {
		check_int(e->kind, ==, PK_HARDLINK);
		check_str(e->link, ==, "a/hard");
	}
	check_int(t.data_bytes, ==, 5);  /* a/hard a/z a.b/y lib/sub/data keep/m.pyc */
	e = find(&t, "bin/abs");
	if (CHECK(e)) {
		check_int(e->kind, ==, PK_SYMLINK);
		check_str(e->link, ==, "../lib/sub/data");
	}
	e = find(&t, "bin/out");
	if (CHECK(e))
		check_str(e->link, ==, "/etc/hostname");
	e = find(&t, "bin/rel");
	if (CHECK(e))
		check_str(e->link, ==, "../lib");
	CHECK(strstr(warnings, "skipping fifo 'ROOT/fifo'") != NULL);
	CHECK(strstr(warnings,
		"'ROOT/bin/out' leads outside the directory: '/etc/hostname'") != NULL);
	CHECK(strstr(warnings, "'ROOT/bin/up' leads outside") != NULL);
	CHECK(strstr(warnings, "bin/rel") == NULL);
	CHECK(strstr(warnings, "bin/abs") == NULL);
	pack_tree_release(&t);

	/* the output found inside the tree is an error */
	struct stat st;
	p = vine_xasprintf("%s/a/z", root);
	check_int(stat(p, &st), ==, 0);
	free(p);
	o.nexclude = 0;
	o.skip_dev = st.st_dev;
	o.skip_ino = st.st_ino;
	check_int(pack_walk(&o, &t), ==, -1);
	CHECK(strstr(vine_errmsg(), "'ROOT/a/z' is inside") != NULL);
	close(fd);
	check_int(vine_rm_rf(root), ==, 0);
	free(root);
}

int main(void)
{
	rel("bin/python", "/lib/x", "../lib/x");
	rel("a", "/b", "b");
	rel("bin/p", "", "..");
	rel("x", "", ".");
	rel("lib/a/b", "/lib/c", "../c");
	rel("lib/x", "/lib", ".");
	rel("lib/x", "/lib/", ".");
	rel("a/b/c", "//a//d", "../d");
	rel("lib/x", "/lib/../bin", "../bin");
	rel("a/b/c/d", "/x/y", "../../../x/y");
	test_scan();
	test_walk();
	return T_END();
}
