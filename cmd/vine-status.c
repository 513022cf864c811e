/*
 * vine-status - show the tasks, workers and objects of a state.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "state/state.h"
#include "task/status.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static const char usage_text[] =
	"usage: vine-status [-s STATE] [--json] [--watch] [--state STATE[,STATE...]] [TASK...]\n"
	"  -s STATE  the state (default $VINE_STATE, else ./vine.db)\n"
	"  --json    print JSON\n"
	"  --watch   redraw every second until interrupted (the alternate screen on a terminal)\n"
	"  --state STATE[,STATE...]  list the tasks in these states (ready, running, done,\n"
	"            failed, cancelled)\n"
	"  TASK      show these tasks in detail\n"
	"  -h        show this help (also --help; --version shows the version)\n";

/* "failed,cancelled" as a set of task states (bits), or 0 if bad. */
static unsigned parse_states(const char *s)
{
	char *copy = vine_xstrdup(s);
	unsigned set = 0;

	for (char *w = copy, *e; w; w = e ? e + 1 : NULL) {
		if ((e = strchr(w, ',')))
			*e = '\0';
		int k = vine_task_state_parse(w);
		if (k < 0) {
			free(copy);
			return 0;
		}
		set |= 1u << k;
	}
	free(copy);
	return set;
}

/* What the command line asks for. */
struct args {
	char *state;
	int json, watch;
	unsigned states;        /* --state, or 0 */
	int64_t *ids;           /* the tasks to show in detail */
	size_t n;
};

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "watch", no_argument, NULL, 'W' },
		{ "state", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(a->state); a->state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'J': a->json = 1; break;
		case 'W': a->watch = 1; break;
		case 'S':
			if (!(a->states = parse_states(optarg)))
				vine_usage_error("--state: '%s' is not a list of task states (ready, "
						 "running, done, failed, cancelled)", optarg);
			break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	a->ids = vine_xcalloc((size_t)(argc - optind) + 1, sizeof(*a->ids));
	for (int i = optind; i < argc; i++) {
		long long v;
		if (vine_parse_llong(argv[i], 1, INT64_MAX, &v) < 0)
			vine_usage_error("task '%s' is not a task id", argv[i]);
		a->ids[a->n++] = v;
	}
	if (a->states && a->n)
		vine_usage_error("--state and task ids cannot go together");
	a->state = vine_cli_state(a->state);
}

static int show_json(json_t *j, int compact)
{
	if (!j)
		return -1;
	int rc = json_dumpf(j, stdout, compact ? JSON_COMPACT : JSON_INDENT(2));
	json_decref(j);
	fputc('\n', stdout);
	return rc < 0 ? vine_error("cannot write JSON") : 0;
}

static int show(struct vine_state *st, int json, int compact, unsigned states, int64_t *ids,
		size_t n)
{
	if (states)
		return vine_status_list(st, states, json, stdout);
	if (n == 0)
		return json ? show_json(vine_status_json(st), compact) : vine_status_text(st, stdout);
	for (size_t i = 0; i < n; i++) {
		int rc = json ? show_json(vine_status_task_json(st, ids[i]), 1)
			      : vine_status_task_text(st, ids[i], stdout);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* --watch: show it again every second until a signal (or, in tests,
 * $VINE_TEST_WATCH_FRAMES frames). */
static void watch(struct vine_state *st, const struct args *a)
{
	int tty = isatty(STDOUT_FILENO);
	struct sigaction sa = { .sa_handler = on_stop };
	/* $VINE_TEST_WATCH_FRAMES: stop after that many frames (tests) */
	const char *fr = getenv("VINE_TEST_WATCH_FRAMES");
	long long frames = -1;

	if (fr && *fr && vine_parse_llong(fr, 1, INT32_MAX, &frames) < 0)
		vine_die(VINE_EXIT_USAGE, "VINE_TEST_WATCH_FRAMES: %s", vine_errmsg());
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* on a terminal, the alternate screen, as less and top use: each
	 * frame replaces the last, and the scrollback keeps none of them */
	if (tty)
		fputs("\033[?1049h", stdout);
	while (!stop && frames != 0) {
		if (tty)
			fputs("\033[H\033[J", stdout);
		else if (!a->json)
			fputc('\n', stdout);
		if (show(st, a->json, 1, a->states, a->ids, a->n) < 0) {
			if (tty)
				fputs("\033[?1049l", stdout);
			vine_die_lib(VINE_EXIT_FAIL);
		}
		if (fflush(stdout) != 0)
			break;
		if (frames > 0 && --frames == 0)
			break;
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
	if (tty)
		fputs("\033[?1049l", stdout);
}

int main(int argc, char **argv)
{
	struct args a = { .state = NULL };

	parse_args(argc, argv, &a);
	struct vine_state *st = vine_state_open(a.state, 0);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	if (a.watch)
		watch(st, &a);
	else if (show(st, a.json, 0, a.states, a.ids, a.n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	free(a.state);
	free(a.ids);
	return 0;
}
