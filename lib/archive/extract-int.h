/*
 * extract-int.h - what the extractor's files (extract.h) share: the entry
 * writer and the tree it builds (extract-tree.c), the parallel decoder of
 * vine-format archives, following a growing one (extract-parallel.c), and
 * the front end that hashes the archive, reads any other archive in
 * sequence and puts the result together (extract.c).  Internal to
 * lib/archive/extract*.c.
 */
#ifndef VINE_EXTRACT_INT_H
#define VINE_EXTRACT_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <archive.h>

#include "archive/extract.h"
#include "archive/vformat.h"
#include "util/hash.h"
#include "util/progress.h"

#define CHUNK (1 << 20)              /* read size for streams and hashing */
#define HASH_STEP ((uint64_t)8 << 20) /* bytes hashed per turn */
#define STREAM_MIN ((size_t)64 << 20)

/* ---- the entry writer: one per thread ---- */

struct dirrec {
	char *path;
	mode_t mode;
	struct timespec mtime;
	int explicit;
	uint64_t seq;
};

struct linkrec {
	char *path, *target;
	int hard;
	uint64_t seq;
};

struct writer {
	int root;
	mode_t umask;
	char *cpath;           /* cached parent directory and its fd */
	int cfd;
	struct dirrec *dirs;
	size_t nd, ad;
	struct linkrec *links;
	size_t nl, al;
	uint64_t seq, entries, bytes;
	int64_t manifest_at;   /* seq of the manifest entry, or -1 */
	uint64_t *progress;    /* shared count of bytes written */
	int *failed;           /* shared: stop early */
	uint64_t *total;       /* shared: entries read by all writers */
	uint64_t own_total;    /* what total points at when not shared */
	void *job;             /* the worker's job */
};

/* A writer on root (umask um); progress (bytes written) and failed (stop
 * early) may be shared with other writers, or NULL. */
void extract_writer_init(struct writer *w, int root, mode_t um, uint64_t *progress, int *failed);
void extract_writer_release(struct writer *w);
/* Write every entry of an open archive; what names it in messages. */
int extract_write_all(struct writer *w, struct archive *a, const char *what);
/* Move from's directory and link records to the end of to's. */
void extract_writer_merge(struct writer *to, struct writer *from);
/* Sort the directory records; two from the archive for one path is a duplicate. */
int extract_check_dirs(struct writer *w);
/* Make the links l[0..n), in archive order, once every file is there. */
int extract_make_links(struct writer *w, struct linkrec *l, size_t n);

/* ---- the tree ---- */

struct vine_tree {
	struct writer w;       /* the merged records; also writes vine_tree_put */
};

/* ---- one extraction: the archive, its hash, the workers ---- */

struct job {
	const struct vine_extract_opts *o;
	int src, rd;           /* the archive; where members are read from */
	uint64_t size;
	struct vine_index idx;
	pthread_mutex_t mu;
	pthread_cond_t cv, cv_main;
	struct vine_sha256 sha;
	uint64_t hashed;       /* bytes hashed (and copied) so far */
	int hashing;           /* a worker is advancing the hash */
	uint32_t next;         /* next member to claim */
	int running;           /* workers still running */
	int failed;
	char err[1024];
	uint64_t progress;
	uint64_t total;        /* entries read by all workers */
	uint64_t *counts;      /* entries in each member */
	int64_t *manifest;     /* per member: the manifest's entry number, or -1 */
	struct writer *w;      /* one per worker */
	int root;
	/* following a growing archive (o->follow): members are found by
	 * scan_members() as their bytes arrive and appended to idx.m (and
	 * counts, manifest: all three grow together, under mu) */
	uint32_t cap;          /* members allocated */
	char **ubuf;           /* per member: its bytes inflated by the scan, or NULL */
	uint64_t pending;      /* bytes in ubuf not unpacked yet */
	int scanned;           /* the scan is over: no more members */
	uint64_t have;         /* bytes of the archive known to be there */
	int complete;          /* the archive is whole: have is its size */
};

/* Hash (and copy) the archive until it has passed need, keeping it ahead
 * up to ahead when nobody else is hashing (extract.c); *buf is the
 * caller's buffer, allocated on first use. */
int extract_hash_until(struct job *j, uint64_t need, uint64_t ahead, char **buf);
/* Unpack the members of j->idx (or, following, as they arrive) on
 * o->jobs threads, the records merged into t (extract-parallel.c). */
int extract_indexed(struct job *j, struct vine_tree *t, struct vine_extract_stats *st);
/* Following: the index at the end must list what was unpacked. */
int extract_follow_check(struct job *j);

#endif
