/*
 * vine-collect - wait for tasks and gather their results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "task/collect.h"
#include "task/status.h"
#include "util/config.h"
#include "state/state.h"

static const char usage_text[] =
	"usage: vine-collect [-dnqw] [-s STATE] [-o DIR] [-j JOBLOG] [TASK...]\n"
	"  -s STATE   the state (default $VINE_STATE, else ./vine.db)\n"
	"  -o DIR     write each finished task's results to DIR/ID/\n"
	"  -n         with -o: only tasks DIR holds no entry for; print their ids\n"
	"  -d         with -o: drop the results written to DIR from the state (delivered)\n"
	"  -j JOBLOG  write a GNU parallel joblog to JOBLOG (- for stdout)\n"
	"  -w         wait until no task is ready or running\n"
	"  -q         no progress meter, no summary\n"
	"  TASK       only these tasks (with -o or -j)\n"
	"  -h         show this help (also --help; --version shows the version)\n";

/* What the command line asks for. */
struct args {
	const char *dir, *joblog;
	char *state;
	int wait, quiet, incremental, deliver;
	int64_t *only;          /* TASK...: these tasks only */
	size_t nonly;
};

static void parse_args(int argc, char **argv, struct args *a)
{
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt(argc, argv, "s:o:j:dnwqh")) != -1) {
		switch (c) {
		case 's': free(a->state); a->state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'o': a->dir = vine_opt_str("-o", optarg); break;
		case 'j': a->joblog = vine_opt_str("-j", optarg); break;
		case 'n': a->incremental = 1; break;
		case 'd': a->deliver = 1; break;
		case 'w': a->wait = 1; break;
		case 'q': a->quiet = 1; break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	if ((a->incremental || a->deliver) && !a->dir)
		vine_usage(VINE_EXIT_USAGE);
	a->only = vine_xcalloc((size_t)(argc - optind) + 1, sizeof(*a->only));
	for (int i = optind; i < argc; i++) {
		long long v;
		if (vine_parse_llong(argv[i], 1, INT64_MAX, &v) < 0)
			vine_usage_error("'%s' is not a task id", argv[i]);
		a->only[a->nonly++] = v;
	}
	if (a->nonly && !a->dir && !a->joblog)
		vine_usage(VINE_EXIT_USAGE);
	if (a->incremental && a->joblog && !strcmp(a->joblog, "-"))
		vine_usage(VINE_EXIT_USAGE); /* both on stdout */
	a->state = vine_cli_state(a->state);
}

static void pause_for(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

/* -w: wait until no task is ready or running, with a meter and, when it
 * changes, why tasks wait; dies when that cannot be known. */
static void wait_tasks(struct vine_state *st, struct vine_counts *n, int quiet)
{
	struct vine_collect_meter m;
	double pause = 0.05;
	char *said = NULL;

	vine_collect_meter_init(&m, n, quiet);
	/* reaping here too: if every worker died, their tasks show as ready */
	while (vine_state_reap(st, NULL) == 0 && vine_state_counts(st, n) == 0 &&
	       n->n[VINE_TASK_READY] + n->n[VINE_TASK_RUNNING] > 0) {
		/* why tasks wait (no worker, too big a task), said once each
		 * time it changes, not left as "ETA ?" forever */
		char *why = quiet ? NULL : vine_status_waiting(st, n);
		if (why && (!said || strcmp(why, said))) {
			char *lines = vine_xstrdup(why);
			vine_collect_meter_end(&m);
			for (char *l = lines, *e; l; l = e ? e + 1 : NULL) {
				if ((e = strchr(l, '\n')))
					*e = '\0';
				vine_warn("waiting: %s", l);
			}
			free(lines);
		}
		free(said);
		said = why;
		vine_collect_meter_update(&m, n);
		pause_for(pause);
		pause = pause * 1.5 > 0.5 ? 0.5 : pause * 1.5;
	}
	vine_collect_meter_end(&m);
	free(said);
	if (n->n[VINE_TASK_READY] + n->n[VINE_TASK_RUNNING] > 0)
		vine_die_lib(VINE_EXIT_FAIL);
}

int main(int argc, char **argv)
{
	struct args a = { .dir = NULL };
	struct vine_counts n;

	parse_args(argc, argv, &a);
	struct vine_state *st = vine_state_open(a.state, 0);
	if (!st || vine_state_counts(st, &n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (a.wait)
		wait_tasks(st, &n, a.quiet);
	if ((a.dir || a.joblog) &&
	    vine_collect_write(st, a.dir, a.joblog, a.incremental ? stdout : NULL, a.deliver,
			       a.only, a.nonly) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (vine_state_counts(st, &n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	free(a.state);
	free(a.only);
	if (n.n[VINE_TASK_DONE] == n.total)
		return 0;
	if (!a.quiet)
		vine_warn("%lld tasks: %lld done, %lld failed, %lld cancelled, %lld running, %lld ready",
			  (long long)n.total, (long long)n.n[VINE_TASK_DONE],
			  (long long)n.n[VINE_TASK_FAILED], (long long)n.n[VINE_TASK_CANCELLED],
			  (long long)n.n[VINE_TASK_RUNNING], (long long)n.n[VINE_TASK_READY]);
	return VINE_EXIT_FAIL;
}
