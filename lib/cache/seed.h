/*
 * seed.h - make an environment archive ready in the node cache.
 *
 * The cache layout is in cache.h (and vine(7), NODE CACHE).
 *
 * Locking protocol.  A warm seed finds the id (given, or from a sources/
 * record that matches the archive's stat exactly, without reading the
 * archive) and env/<short>/.vine/id holding it; it then holds locks/<id>
 * shared and looks again (see cache.h: in use, last use), seeding anew if
 * a trim removed the environment in between.
 * Otherwise:
 *  - id known: take locks/<id> (blocking), look again, remove tmp/<id>.*
 *    (a killed holder's debris), copy the archive to partial/<id> while
 *    hashing it and unpacking it into tmp/<id>.XXXXXX, check the id,
 *    relocate to env/<short>, write .vine/id, set directory modes, rename
 *    partial/<id> to objects/<id> and the staging directory to env/<short>.
 *    If objects/<id> is there already it is unpacked without re-hashing.
 *    A verified fetcher's object is unpacked while it arrives: partial/<id>
 *    is followed as it grows (seed.c, fetch_following) and the tree used
 *    only once the fetch verified that same file (VINE_TEST_NO_FOLLOW=1:
 *    fetch, then unpack).
 *  - id unknown: take locks/src-<key>, look again (another seeder may
 *    just have recorded it), remove tmp/src-<key>.*, copy, hash and unpack
 *    into tmp/src-<key>.*, then take locks/<id> and publish as above (or
 *    drop the work if the environment became ready meanwhile), and write
 *    sources/<key>.  When sources/<key> is for the same path and size but
 *    its times changed (the archive was perhaps rewritten unchanged), the
 *    archive is hashed first into tmp/src-<key>.*, recorded, and then
 *    handled as with a known id, from that copy, not unpacked for nothing.
 *    Locks are taken in that order only, so they cannot deadlock.
 * env/<short> appears by one rename(2) of a complete directory, so nothing
 * half-unpacked is ever seen as ready, and a seeder killed at any moment
 * leaves only debris: tmp/<lock>.* is removed by the next holder of that
 * lock, and by any cold seeder that finds the lock free; partial/<id> is
 * resumed by a fetch, overwritten by a copy, removed once objects/<id> is
 * published.
 */
#ifndef VINE_SEED_H
#define VINE_SEED_H

#include "util/hash.h"
#include "util/util.h"

/*
 * Where an object comes from when it is not in the cache yet.  NULL fetch:
 * the archive operand is a local (or shared-filesystem) path, copied into
 * the cache while hashing.  Later, peers: fetch writes the object with id
 * to dest (a partial file in the cache) and returns 0 or -1 with a message.
 * vine_seed() calls it holding locks/<id> (so vine_fetch_open needs
 * VINE_FETCH_LOCKED | VINE_FETCH_KEEP), verifies the result while
 * unpacking it and renames it to objects/<id>; after a failed fetch the
 * partial copy stays for the next one to resume.
 */
struct vine_fetcher {
	int (*fetch)(void *ctx, const char *id, const char *origin, const char *dest);
	void *ctx;
	/* 1: fetch verifies what it brings (vine_fetch_* do): vine_seed publishes
	 * it to objects/<id> at once, before unpacking, so peers relaying from
	 * this node's partial copy follow it there without waiting; it is not
	 * hashed again.  0: vine_seed verifies it while unpacking. */
	int verified;
};

struct vine_seed_opts {
	const char *cache;          /* node cache directory (required) */
	int jobs;                   /* extraction threads; 0: online cores */
	int quiet;                  /* no progress meter */
	const char *expect_id;      /* if set, the object must hash to this id */
	const struct vine_fetcher *fetcher; /* NULL: copy from the local path */
	/* if set, told what is happening ("unpacking 'x'", ...), for -v */
	vine_msg_fn note;
	void *note_ctx;
	size_t stream_min;          /* see extract.h; 0: default */
	/* if set, *hold gets the fd of locks/<id> held shared (O_CLOEXEC): the
	 * environment is in use, and no trim removes it, until it is closed */
	int *hold;
	uint64_t cache_limit;       /* > 0: then remove least recently used
				     * entries no one holds until the cache
				     * holds at most this many bytes */
	int drop_archive;           /* remove objects/<id> once the environment
				     * is ready (a node that does not serve it) */
	/* if set, told of each id whose archive this seed removed from the
	 * cache (dropped, or trimmed to cache_limit), so the caller can
	 * withdraw the node's replica (vine_xfer_seed_removed) */
	void (*removed)(void *ctx, const char *id);
	void *removed_ctx;
};

/*
 * Make archive ready: ensure the object is in the cache (verified), unpack
 * it once per node, relocate it, publish it atomically, and mark its use
 * (vine_cache_hold: the environment is held, even if briefly, so a
 * concurrent trim cannot remove it in between).  On success *env
 * is the malloc'd absolute path of the ready environment and id the
 * object id.  Safe to call from many processes at once.
 */
int vine_seed(const struct vine_seed_opts *o, const char *archive, char **env,
	      char id[VINE_ID_LEN + 1]);

/*
 * Activate env in this process's environment (before exec): PATH starts
 * with env/bin, VIRTUAL_ENV (env/pyvenv.cfg exists) or CONDA_PREFIX
 * (env/conda-meta exists) set, the other one and PYTHONHOME unset,
 * VINE_ENV set.
 */
int vine_env_activate(const char *env);

#endif
