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
 *   env/<short>/        ready environments; <short> is the id's first 12
 *                       hex digits (binary relocation needs a new prefix
 *                       that fits where the packed one was, so the name is
 *                       short); env/<short>/.vine/id holds the full id and
 *                       is checked on every lookup, .vine/size its bytes
 *   tmp/<lock>.XXXXXX   staging directories and copies, named after the
 *                       lock their maker holds
 *   locks/<id>          flock(2) files, one per object, held exclusively
 *                       by the one process working on it, shared by those
 *                       using its environment (see "in use" below); its
 *                       mtime is the last use; never removed
 *   locks/src-<key>     one per archive path being hashed
 *   locks/serving       held shared by every cache server (peer.h) for
 *                       its life: a node that does not serve drops an
 *                       archive only when no server holds it
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

#define VINE_SHORT_LEN 12      /* hex digits of an id naming env/<short>: 48 bits,
				* short for binary relocation; the full id in
				* env/<short>/.vine/id is checked on every lookup */

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
/* The length of every environment path in the cache at dir (as spelt). */
size_t vine_cache_env_len(const char *dir);

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

/*
 * Managing the cache (manage.c).  The unit is an object id: its archive
 * (objects/<id>, or partial/<id>) and its environment (env/<short>).
 *
 * In use: a process using the environment of id holds a shared flock(2)
 * on locks/<id> (vine_cache_hold: vine-seed -- COMMAND and each task of
 * vine-worker do, for the life of the command); seeders hold it exclusive
 * while they make the environment.  Removal takes it exclusive without
 * waiting, so nothing in use or being made is ever removed.  Last use is
 * the lock file's modification time, set by every vine_cache_hold.
 */
struct vine_cache_entry {
	char id[VINE_ID_LEN + 1];
	uint64_t archive;      /* bytes of objects/<id>, or of partial/<id> */
	uint64_t env;          /* bytes of the files of env/<short> */
	int has_archive, partial, has_env;
	int64_t last_use;      /* seconds since the epoch */
	int in_use;            /* a process holds locks/<id> */
};

/*
 * Hold the environment of id: take locks/<id> shared (waiting for a seeder
 * or a removal to finish), set its time, check the environment is ready.
 * Returns the lock's fd (close it to let go; O_CLOEXEC), -2 when the
 * environment is not ready (removed meanwhile), -1 with a message.
 */
int vine_cache_hold(const struct vine_cache *c, const char *id);
/*
 * Drop objects/<id> once its environment is ready, on a node that does not
 * serve it.  The caller holds locks/<id> (shared: no one is fetching or
 * unpacking the object meanwhile).  Kept when a cache server holds
 * locks/serving (VINE_CACHE_SERVING), on this cache from any process, or
 * when the environment is not ready.  1 dropped, 0 kept, -1 error.
 */
#define VINE_CACHE_SERVING "serving"
int vine_cache_drop_archive(const struct vine_cache *c, const char *id);
/* Everything the cache holds, least recently used first (*e malloc'd). */
int vine_cache_list(const struct vine_cache *c, struct vine_cache_entry **e, size_t *n);
/* Remove entry e unless in use: 1 removed, 0 in use, -1 error.  dry_run:
 * only say whether it would be removed. */
int vine_cache_remove(const struct vine_cache *c, const struct vine_cache_entry *e, int dry_run);
/*
 * Remove least recently used entries not in use until the cache holds at
 * most limit bytes; report (if set) is told of each.  Returns the bytes
 * still held, or -1.
 */
int64_t vine_cache_trim(const struct vine_cache *c, uint64_t limit, int dry_run,
			void (*report)(void *ctx, const struct vine_cache_entry *e), void *ctx);

#endif
