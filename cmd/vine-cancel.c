/*
 * vine-cancel - cancel tasks: by id, by named submission, or all of them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/config.h"
#include "state/state.h"

static void usage(FILE *f)
{
	fputs("usage: vine-cancel [-q] [-s STATE] ID...\n"
	      "       vine-cancel [-q] [-s STATE] --submission NAME\n"
	      "       vine-cancel [-q] [-s STATE] --all\n", f);
}

/* Exit rather than return, so what main allocated is still reachable. */
static _Noreturn void usage_error(void)
{
	usage(stderr);
	exit(VINE_EXIT_USAGE);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "submission", required_argument, NULL, 'S' },
		{ "all", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vine_cancel sel = { NULL, 0, NULL, 0 };
	char *state = NULL;
	int64_t *want, *ids;
	size_t n;
	int quiet = 0, c;

	vine_cli_init(argv[0]);
	while ((c = getopt_long(argc, argv, "s:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(state); state = vine_xstrdup(optarg); break;
		case 'S': sel.submission = optarg; break;
		case 'A': sel.all = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage_error();
		}
	}
	want = vine_xcalloc((size_t)(argc - optind) + 1, sizeof(*want));
	for (int i = optind; i < argc; i++) {
		long long v;
		if (vine_parse_llong(argv[i], 1, INT64_MAX, &v) < 0) {
			vine_warn("'%s' is not a task id", argv[i]);
			usage_error();
		}
		want[sel.nids++] = v;
	}
	sel.ids = want;
	if ((sel.nids > 0) + (sel.submission != NULL) + sel.all != 1) {
		vine_warn("name the tasks to cancel: IDs, --submission NAME or --all");
		usage_error();
	}
	if (!state)
		state = vine_default_state();
	struct vine_state *st = vine_state_open(state, 0);
	if (!st || vine_state_cancel(st, &sel, &ids, &n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	for (size_t i = 0; i < n; i++)
		printf("%lld\n", (long long)ids[i]);
	/* a named task that had finished already is not an error: say so */
	for (size_t i = 0; !quiet && i < sel.nids; i++) {
		int found = 0;
		for (size_t k = 0; k < n && !found; k++)
			found = ids[k] == want[i];
		if (!found)
			vine_warn("task %lld: not cancelled: it had already finished or been cancelled",
				  (long long)want[i]);
	}
	free(ids);
	free(want);
	free(state);
	return 0;
}
