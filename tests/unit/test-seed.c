/*
 * test-seed.c - vine_seed() as other modules call it: with a fetcher
 * (how vine-spread plugs in peers), with notes, and vine_env_activate().
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/hash.h"
#include "peer/peer.h"
#include "cache/seed.h"
#include "t.h"
#include "util/util.h"

static int fetches;

/* the "peer": copy the file named by ctx to dest */
static int fetch_copy(void *ctx, const char *id, const char *origin, const char *dest)
{
	char *data;
	size_t len;

	fetches++;
	if (vine_read_file(ctx, 1 << 30, &data, &len) < 0)
		return -1;
	int rc = vine_write_file_atomic(dest, data, len, 0600);
	free(data);
	return rc;
}

/* a fetch that got some bytes, then failed: its partial copy must stay */
static int fetch_fail(void *ctx, const char *id, const char *origin, const char *dest)
{
	if (vine_write_file_atomic(dest, "half", 4, 0600) < 0)
		return -1;
	return vine_error("no peer has %s", id);
}

/* the real one: vine-spread's fetch from the origin file, as vine_seed calls it */
struct spread {
	const char *cache, *origin;
	int ok;
};

static int fetch_spread(void *ctx, const char *id, const char *origin, const char *dest)
{
	struct spread *sp = ctx;
	struct vine_peer_client_opts po = { 0 };
	struct vine_fetch *f = vine_fetch_open(sp->cache, id, VINE_FETCH_LOCKED | VINE_FETCH_KEEP);
	int rc;

	if (!f)
		return -1;
	rc = vine_fetch_from_file(f, sp->origin, &po) == VINE_PEER_OK ? 0 : -1;
	/* the object is where vine_seed looks for it: partial/<id> */
	const char *p = vine_fetch_path(f);
	size_t n = strlen(p), m = strlen(dest), k = strlen("partial/") + VINE_ID_LEN;
	if (rc == 0 && (n < k || m < k || strcmp(p + n - k, dest + m - k)))
		rc = vine_error("fetched to '%s', not '%s'", p, dest);
	sp->ok += rc == 0;
	vine_fetch_close(f);
	return rc;
}

static int notes;
static void note(void *ctx, const char *msg)
{
	if (strstr(msg, "unpacking"))
		notes++;
}

int main(void)
{
	const char *top = getenv("VINE_TOP");
	char dir[] = "/tmp/test-seed.XXXXXX", cmd[1024], path[512], id[65], got[65], *env;

	if (!mkdtemp(dir) || !top)
		return fprintf(stderr, "need a temporary directory and VINE_TOP\n"), 1;
	snprintf(cmd, sizeof(cmd), "cd %s && mkdir -p src/bin src/conda-meta && echo hi >src/bin/f && "
		 "python3 %s/tests/tools/mkvarchive.py -o a.tgz src && tar czf other.tgz src", dir, top);
	check_int(system(cmd), ==, 0);
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	check_int(vine_sha256_file(path, id), ==, 0);

	char cache[256];
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	struct vine_fetcher f = { fetch_copy, path, 0 };
	struct vine_seed_opts o = { .cache = cache, .quiet = 1, .fetcher = &f, .note = note };

	/* a fetcher needs the id */
	check_int(vine_seed(&o, "origin:a.tgz", &env, got), ==, -1);
	CHECK(strstr(vine_errmsg(), "needs its id"));
	o.expect_id = "not-an-id";
	check_int(vine_seed(&o, "origin:a.tgz", &env, got), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not an object id"));

	/* fetched, verified, unpacked once */
	o.expect_id = id;
	check_int(vine_seed(&o, "origin:a.tgz", &env, got), ==, 0);
	check_str(got, ==, id);
	check_int(fetches, ==, 1);
	check_int(notes, ==, 1);
	snprintf(path, sizeof(path), "%s/bin/f", env);
	check_int(access(path, F_OK), ==, 0);
	snprintf(path, sizeof(path), "%s/objects/%s", cache, id);
	check_int(access(path, F_OK), ==, 0);
	free(env);
	check_int(vine_seed(&o, "origin:a.tgz", &env, got), ==, 0);
	check_int(fetches, ==, 1);
	check_int(notes, ==, 1);
	free(env);

	/* what a fetcher brings must hash to the id; a failing fetcher's message comes through */
	char other[] = "1111111111111111111111111111111111111111111111111111111111111111";
	snprintf(path, sizeof(path), "%s/other.tgz", dir);
	struct vine_fetcher bad = { fetch_copy, path, 0 };
	o.fetcher = &bad;
	o.expect_id = other;
	check_int(vine_seed(&o, "origin:other", &env, got), ==, -1);
	CHECK(strstr(vine_errmsg(), "is not object 1111"));
	snprintf(path, sizeof(path), "%s/partial/%s", cache, other);
	check_int(access(path, F_OK), ==, -1);
	struct vine_fetcher none = { fetch_fail, NULL, 0 };
	o.fetcher = &none;
	check_int(vine_seed(&o, "origin:other", &env, got), ==, -1);
	CHECK(strstr(vine_errmsg(), "no peer has 1111"));
	check_int(access(path, F_OK), ==, 0);

	/* vine-spread's fetcher, in a fresh cache */
	char cache2[300];
	snprintf(cache2, sizeof(cache2), "%s/cache2", dir);
	snprintf(path, sizeof(path), "%s/a.tgz", dir);
	struct spread sp = { cache2, path, 0 };
	struct vine_fetcher spf = { fetch_spread, &sp, 1 };
	struct vine_seed_opts o2 = { .cache = cache2, .quiet = 1, .fetcher = &spf, .expect_id = id };
	check_int(vine_seed(&o2, "origin", &env, got), ==, 0);
	check_int(sp.ok, ==, 1);
	snprintf(path, sizeof(path), "%s/bin/f", env);
	check_int(access(path, F_OK), ==, 0);
	snprintf(path, sizeof(path), "%s/objects/%s", cache2, id);
	check_int(access(path, F_OK), ==, 0);
	free(env);

	/* activation */
	setenv("PATH", "/usr/bin:/bin", 1);
	setenv("VIRTUAL_ENV", "/stale", 1);
	setenv("PYTHONHOME", "/stale", 1);
	o.fetcher = &f;
	o.expect_id = id;
	check_int(vine_seed(&o, "origin:a.tgz", &env, got), ==, 0);
	check_int(vine_env_activate(env), ==, 0);
	snprintf(path, sizeof(path), "%s/bin:/usr/bin:/bin", env);
	check_str(getenv("PATH"), ==, path);
	check_str(getenv("VINE_ENV"), ==, env);
	check_str(getenv("CONDA_PREFIX"), ==, env);
	CHECK(!getenv("VIRTUAL_ENV"));
	CHECK(!getenv("PYTHONHOME"));
	free(env);

	check_int(vine_online_cores(), >=, 1);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	check_int(system(cmd), ==, 0);
	return T_END();
}
