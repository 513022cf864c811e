/*
 * pack-int.h - the parts of vine-pack (pack.c) that stand on their own:
 * the parallel gzip member writer (pack-gz.c) and the tree walk
 * (pack-walk.c).  Internal to lib/pack*.c and their unit tests.
 */
#ifndef VINE_PACK_INT_H
#define VINE_PACK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/util.h"
#include "util/hash.h"
#include "archive/vformat.h"

/*
 * Parallel gzip member writer.  The caller appends uncompressed bytes and
 * decides where members end; compression runs on a pool of threads, a
 * writer thread appends finished members to fd in order and hashes every
 * byte it writes.  At most 2 * jobs + 2 blocks are in memory at once.
 *
 * A member is compressed whole with libdeflate, unless the caller marks it
 * "split" (a large entry): then it is cut into blocks of the block size,
 * compressed in parallel with zlib (each block primed with the previous
 * block's last 32 KiB and ended with a sync flush, as pigz does) and the
 * pieces joined into one gzip member.
 */
struct pack_gz;

/* what (used in messages) names fd, the file being written */
struct pack_gz *pack_gz_new(int fd, const char *what, int jobs, int level, size_t block);
/* Append n uncompressed bytes to the current member. */
int pack_gz_write(struct pack_gz *z, const void *p, size_t n);
/* End the current member (nothing when it is empty); split: how to
 * compress the next one. */
int pack_gz_cut(struct pack_gz *z, int split);
/* Uncompressed bytes in the current member so far. */
uint64_t pack_gz_pending(const struct pack_gz *z);

struct pack_gz_result {
	char id[VINE_ID_LEN + 1];   /* sha256 of everything written */
	uint64_t size;              /* bytes written */
	uint64_t total;             /* uncompressed bytes */
	uint32_t n;                 /* members */
	struct vine_member *m;      /* their records (owned by the pack_gz) */
	int indexed;                /* 0: a member was too large for an index */
};
/* End the last member, wait for everything to be written, append the
 * index (unless a member is larger than VINE_MEMBER_MAX) and fill r. */
int pack_gz_finish(struct pack_gz *z, struct pack_gz_result *r);
/* Lower the largest member an index may describe (for tests; the format
 * fixes it at VINE_MEMBER_MAX). */
void pack_gz_set_member_max(struct pack_gz *z, uint64_t max);
/* Stop the threads (if still running) and free everything. */
void pack_gz_free(struct pack_gz *z);

/*
 * The tree walk: every entry under a directory, sorted bytewise by path
 * (so directories come before their contents), with -x exclusions,
 * hard links found and symlinks into the tree made relative.
 */
enum pack_kind { PK_DIR, PK_FILE, PK_HARDLINK, PK_SYMLINK };

struct pack_entry {
	char *path;            /* relative to the root, no leading "./" */
	enum pack_kind kind;
	mode_t mode;
	off_t size;
	struct timespec mtime;
	dev_t dev;
	ino_t ino;
	nlink_t nlink;
	char *link;            /* symlink target, or hard link's first name */
};

struct pack_tree {
	struct pack_entry *e;
	size_t n;
	uint64_t data_bytes;   /* sum of the sizes of PK_FILE entries */
};

struct pack_walk_opts {
	int rootfd;                 /* the directory, open */
	const char *display;        /* its name as the user gave it (messages) */
	const char *const *prefixes;/* absolute spellings of the root (symlinks) */
	size_t nprefixes;
	const char *const *exclude; /* fnmatch patterns (no flags) */
	size_t nexclude;
	dev_t skip_dev;             /* a file that must not be packed (the */
	ino_t skip_ino;             /* output); 0/0: none */
	vine_msg_fn warn;
	void *warn_ctx;
};

int pack_walk(const struct pack_walk_opts *o, struct pack_tree *t);
void pack_tree_release(struct pack_tree *t);

/* Make the absolute symlink target, which lies inside the root at rest
 * ("" or "/..."), relative to the link at path.  Returns malloc'd. */
char *pack_relative_link(const char *path, const char *rest);


/*
 * Looks for one byte string (the prefix) and for NUL bytes in a stream
 * fed in pieces, across piece boundaries.
 */
struct pack_scan {
	const char *needle;
	size_t nlen;
	int found, nul;
	unsigned char carry[2 * 4096];
	size_t carrylen;
};
void pack_scan_init(struct pack_scan *s, const char *needle);
void pack_scan_feed(struct pack_scan *s, const void *p, size_t n);
/* True when feeding more cannot change the result. */
int pack_scan_done(const struct pack_scan *s);

#endif
