/*
 * collect.h - gather results from the state (vine-collect(1)).
 *
 * Layout written by vine_collect_write with a directory DIR, for each
 * finished (done or failed) task ID, from its latest attempt:
 *
 *   DIR/ID/cmd      the command, with a newline
 *   DIR/ID/stdout   its standard output (empty if it wrote none)
 *   DIR/ID/stderr   its standard error
 *   DIR/ID/exit     one line: the exit status ("0", "3"), "signal N",
 *                   "timeout", "lost", "cancelled" or "error: WHY"
 *   DIR/ID/out/...  the files it left in $VINE_OUTDIR
 *
 * Each DIR/ID is built under a temporary name and renamed into place, so
 * it is complete or absent; running again replaces it.  The joblog has GNU
 * parallel's --joblog columns, tab-separated, one line per finished task
 * (done, failed or cancelled) in id order.  Its Signal column is the
 * signal that killed the command; a command that exited 128 + N, N from 1
 * to VINE_JOBLOG_SIGMAX, shows N there too, as that is how a shell that
 * did not exec the command (dash with "cmd; x") reports a command killed
 * by signal N; its Exitval stays 128 + N.  A cancelled task shows
 * Exitval -1 and Signal 9 (SIGKILL) when it was running, else 0.
 */
#define VINE_JOBLOG_SIGMAX 64
#ifndef VINE_COLLECT_H
#define VINE_COLLECT_H

#include <stdio.h>

#include "state/state.h"

/* The joblog header line, as GNU parallel writes it (with the newline). */
#define VINE_JOBLOG_HEADER \
	"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

/* One joblog line for a finished task (with the newline). */
void vine_joblog_line(const struct vine_task *t, FILE *f);
/* The "exit" file's line for a finished task (allocated). */
char *vine_exit_text(const struct vine_task *t);

/*
 * Write the results of every finished (done, failed or cancelled) task: into dir (if not NULL) and as
 * a joblog into joblog (if not NULL; "-" is standard output; a file is
 * replaced atomically).
 *
 * newids: incremental mode (vine-collect -n).  Only the finished tasks that
 * dir does not hold yet (no entry DIR/ID of any kind) are written, and each
 * one's id is written to newids, one per line, once it is in place.  A
 * reader that has taken a result removes DIR/ID and leaves an empty file
 * of that name, so the task is neither written again nor kept twice.
 *
 * deliver (vine-collect -d; needs dir): once the tasks written (and, with
 * newids, those dir holds already) are on disk, a page at a time, the state
 * drops their results (vine_state_deliver) before their ids are written to
 * newids: each result is then kept in one place, dir, and a reader may
 * remove DIR/ID outright.  Tasks delivered already are never written to
 * dir again (their results are gone), in either mode; the joblog still
 * lists them.
 *
 * only[0..nonly) (sorted here), if nonly > 0: these tasks only, in dir and
 * in the joblog.
 */
int vine_collect_write(struct vine_state *st, const char *dir, const char *joblog, FILE *newids,
		       int deliver, int64_t *only, size_t nonly);

/* Progress line on a terminal while waiting (no-op when off). */
struct vine_collect_meter {
	int active;
	double start, last;
	int64_t finished0;
};
void vine_collect_meter_init(struct vine_collect_meter *m, const struct vine_counts *c, int quiet);
void vine_collect_meter_update(struct vine_collect_meter *m, const struct vine_counts *c);
void vine_collect_meter_end(struct vine_collect_meter *m);

#endif
