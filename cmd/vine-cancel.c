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

static const char usage_text[] =
	"usage: vine-cancel [-q] [-s STATE] ID...\n"
	"       vine-cancel [-q] [-s STATE] --submission NAME\n"
	"       vine-cancel [-q] [-s STATE] --all\n"
	"  -s STATE           the state (default $VINE_STATE, else ./vine.db)\n"
	"  ID...              cancel these tasks\n"
	"  --submission NAME  cancel the tasks of the submission named NAME\n"
	"  --all              cancel every ready and running task\n"
	"  -q                 no warning about named tasks that had finished\n"
	"  -h                 show this help (also --help; --version shows the version)\n";

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

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(state); state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'S': sel.submission = vine_opt_str("--submission", optarg); break;
		case 'A': sel.all = 1; break;
		case 'q': quiet = 1; break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	want = vine_xcalloc((size_t)(argc - optind) + 1, sizeof(*want));
	for (int i = optind; i < argc; i++) {
		long long v;
		if (vine_parse_llong(argv[i], 1, INT64_MAX, &v) < 0)
			vine_usage_error("'%s' is not a task id", argv[i]);
		want[sel.nids++] = v;
	}
	sel.ids = want;
	if ((sel.nids > 0) + (sel.submission != NULL) + sel.all != 1)
		vine_usage_error("name the tasks to cancel: IDs, --submission NAME or --all");
	state = vine_cli_state(state);
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
