/*
 * cache.h - the node cache: its layout, its locks and its quick-check
 * records.  The layout is here and in vine(7), NODE CACHE; the locking
 * protocol of seeding is in seed.h, that of the peer transport in peer.h.
 *
 * Cache layout (CACHE: -c, $VINE_CACHE, else config.h's default; every
 * directory mode 0700, created when missing; refused if another user owns
 * CACHE):
 *
 *   objects/<id>        complete, verified archives (mode 0444), by id
 *   partial/<id>        an archive being copied or fetched for id
 *   env/<short>/        ready environments; <short> is the id's first 16
 *                       hex digits (binary relocation needs a new prefix
 *                       no longer than the packed one, so the name is
 *                       short); env/<short>/.vine/id holds the full id and
 *                       is checked on every lookup
 *   tmp/<lock>.XXXXXX   staging directories and copies, named after the
 *                       lock their maker holds
 *   locks/<id>          flock(2) files, one per object, held by the one
 *                       process working on it; never removed
 *   locks/src-<key>     one per archive path being hashed
 *   sources/<key>       quick-check records: <key> is from the archive's
 *                       real path; the record holds that path, its device,
 *                       inode, size, mtime and ctime (ns) and its id
 *   tasks/<node>.<pid>  a worker's task directories (worker.h)
 */
#ifndef VINE_CACHE_H
#define VINE_CACHE_H

#include <sys/stat.h>

#include "util/hash.h"
#include "util/util.h"

#define VINE_SHORT_LEN 16      /* hex digits of an id naming env/<short> */

struct vine_cache {
	char *dir;             /* absolute, symlinks resolved */
	int fd;                /* the open directory */
};

/*
 * Open the cache at path, creating it (mode 0700) and its subdirectories
 * when missing.  Refuses a cache owned by another user.
 */
int vine_cache_open(struct vine_cache *c, const char *path);
void vine_cache_close(struct vine_cache *c);

/* Open the cache's subdirectory sub (objects, partial, locks, ...): an fd. */
int vine_cache_subdir(const struct vine_cache *c, const char *sub);
/* dir/sub/name + suffix (suffix may be NULL), malloc'd. */
char *vine_cache_path(const struct vine_cache *c, const char *sub, const char *name, const char *suffix);

/*
 * Take the lock locks/<name>, blocking; returns its fd (close it to
 * release; the kernel releases it if the process dies).  waiting, if not
 * NULL, is called once before blocking on a lock someone else holds.
 */
int vine_cache_lock(const struct vine_cache *c, const char *name, void (*waiting)(void *), void *ctx);

/* Remove tmp/<name>.* (leftovers of a killed holder of lock <name>). */
int vine_cache_sweep(const struct vine_cache *c, const char *name);
/* Remove every tmp/<lock>.* whose lock nobody holds (its maker died). */
int vine_cache_sweep_stale(const struct vine_cache *c);

/*
 * Is the environment of object id ready?  1 yes (env/<short>/.vine/id
 * holds id), 0 no, -1 error (env/<short> holds something else).
 */
int vine_cache_env_ready(const struct vine_cache *c, const char *id);
/* env/<short> for id (malloc'd, absolute). */
char *vine_cache_env_path(const struct vine_cache *c, const char *id);

/*
 * Quick-check records, sources/<key>: which object a file was, by its
 * real path, device, inode, size, mtime and ctime (as rsync and make
 * decide a file is unchanged).  key is derived from the real path.
 */
void vine_cache_source_key(const char *realpath, char key[33]);
/*
 * 1 with id when the record matches st; 2 with the recorded id when it is
 * for the same path and size but its times changed (perhaps rewritten with
 * the same bytes); 0 when there is none or it is stale.
 */
int vine_cache_source_get(const struct vine_cache *c, const char *key, const char *realpath,
			  const struct stat *st, char id[VINE_ID_LEN + 1]);
int vine_cache_source_put(const struct vine_cache *c, const char *key, const char *realpath,
			  const struct stat *st, const char *id);
int vine_cache_source_drop(const struct vine_cache *c, const char *key);

#endif
