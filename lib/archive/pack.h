/*
 * pack.h - pack an environment directory into one vine archive.
 *
 * The archive (share/doc/archive-format.md) is a .tar.gz made of
 * independent gzip members compressed in parallel, a manifest of the files
 * that embed the directory's own path, and an index that gzip readers
 * ignore.  The same tree gives the same bytes.
 *
 * The output is written to a temporary file ".NAME.vine-tmp.XXXXXX" in
 * the output's directory, synced, then moved into place: nothing partial
 * is ever visible under the output's name.
 */
#ifndef VINE_PACK_H
#define VINE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "util/hash.h"
#include "util/util.h"

#define VINE_PACK_MEMBER_SIZE ((size_t)2 << 20) /* target uncompressed member */
#define VINE_PACK_LEVEL 6
#define VINE_PACK_TMP_INFIX ".vine-tmp."

struct vine_pack_opts {
	const char *dir;            /* the directory to pack (required) */
	const char *out;            /* the archive; NULL: ./BASENAME.tar.gz; "-": stdout */
	int jobs;                   /* compression threads; 0: online cores */
	int level;                  /* 1..12 (libdeflate); 0: VINE_PACK_LEVEL */
	const char *const *exclude; /* fnmatch(3) patterns, no flags, matched */
	size_t nexclude;            /* against the relative path and the name */
	int force;                  /* replace an existing output */
	int quiet;                  /* no progress meter */
	size_t member_size;         /* 0: VINE_PACK_MEMBER_SIZE */
	/* warnings (skipped files, links leading outside, odd names) */
	vine_msg_fn warn;
	void *warn_ctx;
};

struct vine_pack_result {
	char id[VINE_ID_LEN + 1];   /* sha256 of the archive: its object id */
	char *out;                  /* the path written (malloc'd; NULL for stdout) */
	uint64_t size;              /* archive bytes */
	uint64_t entries;           /* tar entries before the manifest */
	uint64_t relocatable;       /* files listed in the manifest */
	uint32_t members;           /* data members */
	int indexed;                /* 0: an entry over 1 GiB left it without index */
};

/*
 * Pack o->dir.  Returns 0 with r filled (release with
 * vine_pack_result_release), or -1 with a message and no output left
 * behind: a missing or unreadable input, an output inside the input, an
 * existing output without force, a write error.
 */
int vine_pack(const struct vine_pack_opts *o, struct vine_pack_result *r);
void vine_pack_result_release(struct vine_pack_result *r);

/* The default output for dir: BASENAME.tar.gz of its real path (malloc'd). */
char *vine_pack_default_out(const char *dir);

/*
 * For a signal handler: remove the temporary file being written, if any.
 * Async-signal-safe.
 */
void vine_pack_signal_cleanup(void);

#endif
