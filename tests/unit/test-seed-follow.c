/*
 * test-seed-follow.c - unpacking while fetching (seed.c's fetch_following,
 * extract-parallel.c's follow mode): the fetcher here writes the archive into
 * partial/<id> piece by piece, as vine_fetch does, and "verifies" it at
 * the end (SHA-256 against the id: on a mismatch the copy is removed).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/seed.h"
#include "t.h"
#include "util/hash.h"
#include "util/util.h"

static char dir[] = "/tmp/test-seed-follow.XXXXXX";

struct src {
	const char *path;     /* the archive */
	const char *cache;
	long corrupt_at;      /* >= 0: flip this byte in what is sent */
	int start_over;       /* after a mismatch, send it all again from the start (a new file) */
	long cut_at;          /* >= 0: the source dies after this many bytes */
	int wait_early;       /* half-way, wait until something is unpacked */
	int early;            /* a member was unpacked before the last byte was sent */
	int calls;
};

/* something unpacked in CACHE/tmp/ already */
static int unpacked_some(const char *cache)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "test -n \"$(find %s/tmp -type f -name 'f*' 2>/dev/null | head -1)\"", cache);
	return system(cmd) == 0;
}

static int send_bytes(struct src *s, const char *dest, int corrupt)
{
	char *data;
	size_t len, from;
	struct stat st;
	int fd, rc = -1;

	if (vine_read_file(s->path, 1 << 30, &data, &len) < 0)
		return -1;
	/* resume where the copy ends, as vine_fetch does */
	fd = open(dest, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	from = (size_t)st.st_size;
	if (corrupt && s->corrupt_at >= 0)
		data[s->corrupt_at] ^= 0x40;
	for (size_t off = from; off < len;) {
		size_t n = len - off < 16384 ? len - off : 16384;
		if (s->cut_at >= 0 && off + n > (size_t)s->cut_at) {
			n = (size_t)s->cut_at - off;
			if (n && write(fd, data + off, n) != (ssize_t)n)
				goto out;
			s->cut_at = -1;
			rc = vine_error("the source went away");
			goto out;
		}
		if (write(fd, data + off, n) != (ssize_t)n)
			goto out;
		off += n;
		/* half-way: wait (bounded) until the unpacking has begun */
		if (s->wait_early && off >= len / 2 && off - n < len / 2) {
			for (int k = 0; k < 1000 && !s->early; k++) {
				s->early = unpacked_some(s->cache);
				if (!s->early)
					usleep(10000);
			}
		}
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

static int fetch(void *ctx, const char *id, const char *origin, const char *dest)
{
	struct src *s = ctx;
	char got[VINE_ID_LEN + 1];

	s->calls++;
	if (send_bytes(s, dest, 1) < 0)
		return -1;
	if (vine_sha256_file(dest, got) < 0)
		return -1;
	if (strcmp(got, id)) {
		unlink(dest);
		if (!s->start_over)
			return vine_error("'%s' does not hash to %s: discarded", dest, id);
		if (send_bytes(s, dest, 0) < 0)
			return -1;
	}
	return 0;
}

/* nothing of id published or staged in cache */
static int nothing_published(const char *cache, const char *id)
{
	return t_sh("cd %s && ! test -e objects/%s && ! test -e env/%.16s && "
		   "test -z \"$(find tmp -mindepth 1 2>/dev/null)\"", cache, id, id) == 0;
}

static size_t stream_min;

static char *seed(const char *cache, const char *id, struct src *s, int *rc)
{
	struct vine_fetcher f = { fetch, s, 1 };
	struct vine_seed_opts o = { .cache = cache, .quiet = 1, .jobs = 2, .expect_id = id, .fetcher = &f,
				    .stream_min = stream_min };
	char got[VINE_ID_LEN + 1], *env = NULL;

	s->cache = cache;
	*rc = vine_seed(&o, "origin", &env, got);
	return env;
}

int main(void)
{
	const char *top = getenv("VINE_TOP");
	char id[VINE_ID_LEN + 1], bad[VINE_ID_LEN + 1], foreign[VINE_ID_LEN + 1], path[800], c[300];
	char *env, *ref;
	int rc;

	if (!mkdtemp(dir) || !top)
		return fprintf(stderr, "need a temporary directory and VINE_TOP\n"), 1;
	/* 60 files of 20 KiB (random: they do not compress), 64 KiB members */
	CHECK(t_sh("cd %s && mkdir -p src/d1 src/d2 && for i in $(seq 30); do "
		  "head -c 20000 /dev/urandom >src/d1/f$i; head -c 20000 /dev/urandom >src/d2/f$i; done && "
		  "chmod 0750 src/d2 && ln -s d1/f1 src/link && "
		  "python3 %s/tests/tools/mkvarchive.py --member-size 65536 -o a.tgz src && "
		  "python3 %s/tests/tools/mkvarchive.py --member-size 65536 --bad-crc 5 -o bad.tgz src && "
		  "python3 %s/tests/tools/mkvarchive.py --member-size 65536 --no-index -o foreign.tgz src",
		  dir, top, top, top) == 0);
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	CHECK(vine_sha256_file(path, id) == 0);

	/* the reference: the same archive fetched whole, then unpacked */
	struct src s = { .path = path, .corrupt_at = -1, .cut_at = -1 };
	snprintf(c, sizeof(c), "%s/ref", dir);
	setenv("VINE_TEST_NO_FOLLOW", "1", 1);
	ref = seed(c, id, &s, &rc);
	check_int(rc, ==, 0);
	CHECK(ref);
	CHECK(!s.early);
	unsetenv("VINE_TEST_NO_FOLLOW");

	/* following: members unpacked before the last byte arrived; the same tree */
	s = (struct src){ .path = path, .corrupt_at = -1, .cut_at = -1, .wait_early = 1 };
	snprintf(c, sizeof(c), "%s/follow", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, 0);
	CHECK(env);
	CHECK(s.early);
	/* (the root, .vine and symlinks are made at seed time: their times differ) */
#define LIST "find . -mindepth 1 -path ./.vine -prune -o -type l -printf '%%p %%l\\n' -o " \
	"-printf '%%p %%y %%m %%s %%T@\\n' | sort"
	CHECK(t_sh("cd %s && " LIST " >%s/t1 && cd %s && " LIST " >%s/t2 && cmp %s/t1 %s/t2 && diff -r %s %s",
		  ref, dir, env, dir, dir, dir, ref, env) == 0);
	CHECK(t_sh("test -e %s/objects/%s && test -z \"$(find %s/tmp %s/partial -mindepth 1)\"",
		c, id, c, c) == 0);
	free(env);

	/* members the scan does not hand over inflated (>= stream_min): inflated again */
	stream_min = 32768;
	s = (struct src){ .path = path, .corrupt_at = -1, .cut_at = -1, .wait_early = 1 };
	snprintf(c, sizeof(c), "%s/stream", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, 0);
	if (CHECK(env))
		CHECK(s.early);
	if (CHECK(env))
		check_int(t_sh("diff -r %s %s", ref, env), ==, 0);
	free(env);
	stream_min = 0;

	/* one corrupt byte: the fetch discards its copy; nothing is published */
	long size;
	struct stat st;
	CHECK(stat(path, &st) == 0);
	size = (long)st.st_size;
	s = (struct src){ .path = path, .corrupt_at = size / 3, .cut_at = -1 };
	snprintf(c, sizeof(c), "%s/corrupt", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, -1);
	CHECK(!env);
	CHECK(strstr(vine_errmsg(), "does not hash"));
	CHECK(nothing_published(c, id));
	snprintf(path, sizeof(path), "%s/partial/%s", c, id);
	CHECK(access(path, F_OK) < 0);

	/* a corrupt byte, then the fetch starts over in a new file: what was
	 * unpacked from the bad copy is thrown away, the good one unpacked */
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	s = (struct src){ .path = path, .corrupt_at = size / 3, .start_over = 1, .cut_at = -1 };
	snprintf(c, sizeof(c), "%s/again", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, 0);
	CHECK(env);
	if (CHECK(env))
		check_int(t_sh("diff -r %s %s", ref, env), ==, 0);
	free(env);

	/* the transfer is cut: nothing published, the bytes kept; the next
	 * seed resumes them and completes */
	s = (struct src){ .path = path, .corrupt_at = -1, .cut_at = size * 2 / 3, .wait_early = 1 };
	snprintf(c, sizeof(c), "%s/cut", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, -1);
	CHECK(!env);
	CHECK(s.early);
	CHECK(strstr(vine_errmsg(), "went away"));
	CHECK(nothing_published(c, id));
	snprintf(path, sizeof(path), "%s/partial/%s", c, id);
	check_int(stat(path, &st), ==, 0);
	check_int(st.st_size, ==, size * 2 / 3);
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	env = seed(c, id, &s, &rc);
	check_int(rc, ==, 0);
	if (CHECK(env))
		check_int(s.calls, ==, 2);
	if (CHECK(env))
		check_int(t_sh("diff -r %s %s", ref, env), ==, 0);
	free(env);

	/* a member whose crc32 is not the index's: never published */
	snprintf(path, sizeof(path), "%s/bad.tgz", dir);
	CHECK(vine_sha256_file(path, bad) == 0);
	s = (struct src){ .path = path, .corrupt_at = -1, .cut_at = -1 };
	snprintf(c, sizeof(c), "%s/badcrc", dir);
	env = seed(c, bad, &s, &rc);
	check_int(rc, ==, -1);
	CHECK(!env);
	CHECK(strstr(vine_errmsg(), "crc32"));
	CHECK(t_sh("cd %s && ! test -e env/%.16s && test -z \"$(find tmp -mindepth 1)\"", c,
		bad) == 0);

	/* not vine format (no index): unpacked again, the ordinary way */
	snprintf(path, sizeof(path), "%s/foreign.tgz", dir);
	CHECK(vine_sha256_file(path, foreign) == 0);
	s = (struct src){ .path = path, .corrupt_at = -1, .cut_at = -1 };
	snprintf(c, sizeof(c), "%s/foreign", dir);
	env = seed(c, foreign, &s, &rc);
	check_int(rc, ==, 0);
	CHECK(env);
	if (CHECK(env))
		check_int(t_sh("diff -r -x .vine %s %s", ref, env), ==, 0);
	free(env);

	free(ref);
	if (!t_fail)
		CHECK(t_sh("rm -rf %s", dir) == 0);
	return T_END();
}
