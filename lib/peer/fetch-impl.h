/*
 * fetch-impl.h - what the parts of a fetch share (not an API: peer.h is):
 * the partial copy being written (partial.c), filled by the peer client
 * (peer-client.c) and by files and readers (fetch-sources.c).
 */
#ifndef VINE_FETCH_IMPL_H
#define VINE_FETCH_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#include "peer/peer.h"
#include "util/util.h"

#define BUF_SIZE (1u << 20)      /* a receive buffer, and the most hashed at once */
#define NBUF 8

struct vine_fetch {
	char *cache, *path;
	char id[VINE_ID_LEN + 1];
	int objfd, partfd;
	int lockfd;              /* locks/<id>, flocked; -1: the caller holds it */
	int fd;                  /* partial/<id>; -1: not open */
	int flags, complete;
	int full;                /* a write found the disk full: drop the copy */
	uint64_t off;            /* bytes in the partial file, all handed to the hasher */
	struct vine_buf sources; /* who gave bytes to this copy, for messages */

	/* splice: pipe[0] and [1]; -1: not made yet; nosplice: use recv */
	int pipe[2], nosplice;
	size_t pipe_size;

	/* the hasher: slots [tail, head) wait to be hashed, in order.  A slot
	 * holds len[i] bytes in buf[i], or, if mapped[i], the len[i] bytes at
	 * at[i] in the partial file. */
	struct vine_sha256 h;
	int hashing, started, quit;
	unsigned char *buf[NBUF];
	size_t len[NBUF];
	uint64_t at[NBUF];
	int mapped[NBUF];
	unsigned head, tail;
	unsigned char *win;      /* the hasher's mapping of the partial file, */
	uint64_t win_start;      /* its offset in the file */
	size_t win_len;          /* and its length (win NULL: none) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* Open partial/<id> (creating it) and hash what it holds. */
int vf_open_partial(struct vine_fetch *f);
/* The message for a failed write of the partial copy (errno says why);
 * a full disk marks the copy for vf_drop_if_full.  Returns -1. */
int vf_write_failed(struct vine_fetch *f);
/* After a fetch from one source: remove the copy a full disk cut. */
void vf_drop_if_full(struct vine_fetch *f);
/* Throw the partial copy away (the lock stays held). */
void vf_discard(struct vine_fetch *f);
/* Wait for a free hashing slot. */
void vf_wait_slot(struct vine_fetch *f);
/* The buffer to fill next (waits while every buffer is queued). */
unsigned char *vf_next_buf(struct vine_fetch *f);
/* Queue n bytes for hashing: in the buffer vf_next_buf gave or, if mapped,
 * at f->off in the partial file (vf_wait_slot was called for the slot). */
void vf_submit_slot(struct vine_fetch *f, size_t n, int mapped);
/* Write the n bytes in buf (from vf_next_buf) and queue them for hashing;
 * total (0: not known) is for the progress callback. */
int vf_flush(struct vine_fetch *f, unsigned char *buf, size_t n, const struct vine_peer_client_opts *o,
	     uint64_t total);
/* The whole object is here: verify it and publish it. */
int vf_finish(struct vine_fetch *f);
/* Name addr among the sources of this copy (for messages), once. */
void vf_add_source(struct vine_fetch *f, const char *addr);

#endif
