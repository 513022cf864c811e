/*
 * extract.h - unpack an archive into a staging directory, never writing
 * outside it.
 *
 * A vine-format archive (share/doc/archive-format.md) is unpacked by
 * several threads, one gzip member at a time: each member is inflated
 * whole with libdeflate (or streamed through zlib when it is large),
 * checked against the index's crc32 and parsed as a tar fragment with
 * libarchive; the files are written with openat()-relative calls.  Any
 * other archive libarchive can read (tar czf, pigz, conda-pack) is
 * unpacked sequentially by the same entry writer.
 *
 * Safety, by construction rather than by checks after the fact:
 *  - every path is relative, with no ".." component (else refused);
 *  - parent directories are opened with openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS) or, where that is missing, a component by
 *    component O_NOFOLLOW walk: no entry is ever written through a symlink;
 *  - no symlink and no hard link exists while files are being written:
 *    they are recorded and made afterwards, in archive order, by one
 *    thread, and each must land on a path that does not exist yet;
 *  - device nodes, fifos and sockets are refused; setuid/setgid bits are
 *    dropped; files are created O_EXCL, so a duplicate entry is an error.
 * Directories are created mode 0700 and get their modes and times in
 * vine_tree_finish(), after everything else (relocation included) is done.
 */
#ifndef VINE_EXTRACT_H
#define VINE_EXTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/fs.h"
#include "util/hash.h"

/*
 * An archive that is still being written, sequentially from its start (an
 * object being fetched): wait blocks until the file holds at least need
 * bytes, or is whole, and sets *have to the bytes it holds and *complete
 * to 1 once it is whole (then *have is its size, need or not); 0, or -1
 * with a message when it will not be whole as followed (the fetch failed
 * or started over).
 */
struct vine_extract_follow {
	int (*wait)(void *ctx, uint64_t need, uint64_t *have, int *complete);
	void *ctx;
};

/*
 * Limits on what an archive can make us do (vine(7) LIMITS): entries,
 * each of which is remembered until the end; paths are at most PATH_MAX
 * bytes, so at most PATH_MAX / 2 directories deep.
 */
#define VINE_EXTRACT_ENTRIES_MAX 10000000

struct vine_extract_opts {
	int jobs;              /* threads for vine-format archives (>= 1) */
	int quiet;             /* no progress meter */
	int hash;              /* compute the archive's SHA-256 while unpacking */
	int copy_fd;           /* >= 0 (with hash): copy the archive there as it is
				* hashed, and read the members back from the copy,
				* so what is unpacked is exactly what was hashed */
	size_t stream_min;     /* members of this many bytes or more are inflated
				* as a stream, not whole; 0: 64 MiB */
	/* Follow the archive as it grows (vine format only; hash must be 0):
	 * one thread finds its gzip members as their bytes arrive (each checked
	 * against its own crc32) and the others unpack them at once; once the
	 * archive is whole, its index must list exactly those members, with
	 * their crc32s, else vine_extract fails.  The size argument is unused.
	 * The caller checks the archive's SHA-256 before using the tree. */
	const struct vine_extract_follow *follow;
};

struct vine_extract_stats {
	int indexed;           /* 1: vine format, unpacked in parallel */
	uint32_t members;      /* data members (indexed archives) */
	uint64_t entries;      /* tar entries unpacked */
	uint64_t bytes;        /* uncompressed bytes of regular files */
	int64_t manifest_at;   /* entries before .vine/manifest.json; -1: none */
	char id[VINE_ID_LEN + 1]; /* the archive's id, when hashed */
};

/* An unpacked tree whose directories still await their modes and times. */
struct vine_tree;

/*
 * Unpack the archive open on fd (size bytes; read with pread, the offset
 * is not used) into the empty directory dir.  Returns 0 with *tree, or -1
 * with a message; on failure dir holds debris for the caller to remove.
 * Refused: an archive with no entries, a directory that appears twice.
 */
int vine_extract(const struct vine_extract_opts *o, int fd, uint64_t size, const char *dir,
		 struct vine_tree **tree, struct vine_extract_stats *st);

/* The tree's root directory (an fd owned by the tree). */
int vine_tree_root(const struct vine_tree *t);
/* Create or replace the regular file path in the tree (parents made as needed). */
int vine_tree_put(struct vine_tree *t, const char *path, const void *data, size_t len, mode_t mode);
/* Give every directory its mode and mtime from the archive, deepest first. */
int vine_tree_finish(struct vine_tree *t);
void vine_tree_free(struct vine_tree *t);

#endif
