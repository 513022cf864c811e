/*
 * progress.h - a one-line progress meter on a terminal.
 *
 * Active only when stderr is a terminal and the program was not asked to be
 * quiet; otherwise every call is a no-op, so pipes and logs stay clean.
 * Redraws at most ten times a second.  Not thread-safe: update it from one
 * thread.
 */
#ifndef VINE_PROGRESS_H
#define VINE_PROGRESS_H

#include <stdint.h>

struct vine_progress {
	int active;
	const char *label;
	uint64_t total;      /* 0: unknown */
	double start, last;
	int drawn;
};

void vine_progress_init(struct vine_progress *p, const char *label, uint64_t total, int quiet);
/* done: bytes (or items) so far; unit: "B" for bytes (scaled), else a noun */
void vine_progress_update(struct vine_progress *p, uint64_t done, const char *unit);
/* Clear the line. */
void vine_progress_end(struct vine_progress *p);

#endif
