/*
 * seed.h - make an environment archive ready in the node cache.
 *
 * (Contract written before the implementation; the seed module owns this
 * file and documents the cache layout and locking here.)
 */
#ifndef VINE_SEED_H
#define VINE_SEED_H

#include "hash.h"

/*
 * Where an object comes from when it is not in the cache yet.  NULL fetch:
 * the archive operand is a local (or shared-filesystem) path, copied into
 * the cache while hashing.  Later, peers: fetch writes the object with id
 * to dest (a partial file in the cache) and returns 0 or -1 with a message.
 */
struct vine_fetcher {
	int (*fetch)(void *ctx, const char *id, const char *origin, const char *dest);
	void *ctx;
};

struct vine_seed_opts {
	const char *cache;          /* node cache directory (required) */
	int jobs;                   /* extraction threads; 0: online cores */
	int quiet;                  /* no progress meter */
	const char *expect_id;      /* if set, the object must hash to this id */
	const struct vine_fetcher *fetcher; /* NULL: copy from the local path */
};

/*
 * Make archive ready: ensure the object is in the cache (verified), unpack
 * it once per node, relocate it, publish it atomically.  On success *env
 * is the malloc'd absolute path of the ready environment and id the
 * object id.  Safe to call from many processes at once.
 */
int vine_seed(const struct vine_seed_opts *o, const char *archive, char **env,
	      char id[VINE_ID_LEN + 1]);

/*
 * Activate env in this process's environment (before exec): PATH starts
 * with env/bin, VIRTUAL_ENV or CONDA_PREFIX as fits, VINE_ENV set.
 */
int vine_env_activate(const char *env);

#endif
