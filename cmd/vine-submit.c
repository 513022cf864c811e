/*
 * vine-submit - add a task list to the state, all or nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "util/hash.h"
#include "state/state.h"
#include "task/tasklist.h"

static const char usage_text[] =
	"usage: vine-submit [-s STATE] [-e ARCHIVE] [-n CORES] [-r RETRIES] [-t SECONDS]\n"
	"                   [-C DIR] [--name NAME] [--memory SIZE] [--gpus N] [--tag TAG]\n"
	"                   [--k-peer N] [--k-origin N] [--no-relay] [FILE|-]\n"
	"       vine-submit [-s STATE] [-r RETRIES] --failed\n"
	"  -s STATE        the state (default $VINE_STATE, else ./vine.db; created)\n"
	"  -e ARCHIVE      run the tasks in the environment packed in ARCHIVE\n"
	"  -n CORES        cores each task needs (default 1)\n"
	"  -r RETRIES      run a failed task again up to RETRIES times (default 0)\n"
	"  -t SECONDS      each task's time limit, above 0 up to a year\n"
	"  -C DIR, --chdir DIR  run the tasks in DIR (default: the current directory)\n"
	"  --name NAME     name the submission: the same name again adds nothing\n"
	"  --memory SIZE   memory each task needs, e.g. 4GB (default 0: any)\n"
	"  --gpus N        GPUs each task needs (default 0)\n"
	"  --tag TAG       a label for these tasks\n"
	"  --k-peer N      transfers each peer serves at once (default 2)\n"
	"  --k-origin N    transfers the origin serves at once (default 2)\n"
	"  --no-relay      peers serve complete copies only\n"
	"  --failed        send the failed tasks back instead of adding new ones\n"
	"  -h              show this help (also --help; --version shows the version)\n";

/* What the command line asks for. */
struct args {
	struct vine_task_spec proto;           /* what every task gets */
	struct vine_spread_settings spread;    /* 0, or -1 for relay: not given */
	const char *archive, *input, *dir, *name;
	char *state;
	int failed, retries_set;
};

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "tag", required_argument, NULL, 'T' },
		{ "failed", no_argument, NULL, 'F' },
		{ "k-peer", required_argument, NULL, 'K' },
		{ "k-origin", required_argument, NULL, 'O' },
		{ "no-relay", no_argument, NULL, 'R' },
		{ "chdir", required_argument, NULL, 'C' },
		{ "name", required_argument, NULL, 'A' },
		{ "memory", required_argument, NULL, 'M' },
		{ "gpus", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vine_task_spec *p = &a->proto;
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:e:n:r:t:C:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(a->state); a->state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'e': a->archive = vine_opt_str("-e", optarg); break;
		case 'n': p->cores = (int)vine_opt_int("-n", optarg, 1, VINE_CORES_MAX); break;
		case 'r':
			p->retries = (int)vine_opt_int("-r", optarg, 0, VINE_RETRIES_MAX);
			a->retries_set = 1;
			break;
		case 't': p->timeout = vine_opt_seconds("-t", optarg, 0, VINE_TIMEOUT_MAX); break;
		case 'T':
			if (!*optarg || strlen(optarg) > VINE_TAG_MAX || strchr(optarg, '\n'))
				vine_usage_error("--tag: '%s' is not 1 to 256 bytes on one line", optarg);
			p->tag = optarg;
			break;
		case 'F': a->failed = 1; break;
		case 'K': a->spread.k_peer = (int)vine_opt_int("--k-peer", optarg, 1, VINE_K_MAX); break;
		case 'O': a->spread.k_origin = (int)vine_opt_int("--k-origin", optarg, 1, VINE_K_MAX); break;
		case 'R': a->spread.relay = 0; break;
		case 'C': a->dir = vine_opt_str("-C", optarg); break;
		case 'A':
			if (!*optarg || strlen(optarg) > VINE_SUBMISSION_MAX || strchr(optarg, '\n'))
				vine_usage_error("--name: '%s' is not 1 to 256 bytes on one line", optarg);
			a->name = optarg;
			break;
		case 'M': p->memory = vine_opt_size("--memory", optarg, VINE_MEMORY_MAX); break;
		case 'G': p->gpus = (int)vine_opt_int("--gpus", optarg, 0, VINE_GPUS_MAX); break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (argc - optind > 1 || (a->failed && (argc > optind || a->archive || p->tag || a->dir ||
						a->name || p->memory || p->gpus ||
						p->timeout > 0 || p->cores != 1)))
		vine_usage(VINE_EXIT_USAGE);
	a->input = argc > optind ? argv[optind] : "-";
	a->state = vine_cli_state(a->state);
}

/* Register ARCHIVE as an object: its sha256, size and absolute path. */
static void load_object(const char *archive, struct vine_object *obj)
{
	struct stat sb;

	if (stat(archive, &sb) < 0)
		vine_die(VINE_EXIT_FAIL, "cannot use archive '%s': %s", archive, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		vine_die(VINE_EXIT_FAIL, "cannot use archive '%s': not a regular file", archive);
	if (!(obj->origin = realpath(archive, NULL)))
		vine_die(VINE_EXIT_FAIL, "cannot resolve '%s': %s", archive, strerror(errno));
	if (vine_sha256_file(obj->origin, obj->id) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	obj->size = (int64_t)sb.st_size;
}

/* The directory tasks run in: DIR made absolute, else the current one. */
static char *task_dir(const char *dir)
{
	struct stat sb;
	char *abs;

	if (!dir) {
		if (!(abs = getcwd(NULL, 0)))
			vine_die(VINE_EXIT_FAIL, "cannot get the current directory: %s", strerror(errno));
		return abs;
	}
	if (stat(dir, &sb) < 0)
		vine_die(VINE_EXIT_FAIL, "-C: cannot use directory '%s': %s", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		vine_die(VINE_EXIT_FAIL, "-C: '%s' is not a directory", dir);
	if (!(abs = realpath(dir, NULL)))
		vine_die(VINE_EXIT_FAIL, "-C: cannot resolve '%s': %s", dir, strerror(errno));
	return abs;
}

/* --failed: send the failed tasks back; print their ids. */
static void requeue_failed(const char *state, int retries)
{
	struct vine_state *st = vine_state_open(state, 0);
	int64_t *ids;
	size_t n;

	if (!st || vine_state_requeue_failed(st, retries, &ids, &n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	for (size_t i = 0; i < n; i++)
		printf("%lld\n", (long long)ids[i]);
	free(ids);
	vine_state_close(st);
}

/* --k-peer, --k-origin, --no-relay: the settings not given keep their values. */
static void set_spread(struct vine_state *st, const struct vine_spread_settings *given)
{
	struct vine_spread_settings now;

	if (!given->k_peer && !given->k_origin && given->relay != 0)
		return;
	if (vine_state_spread_settings(st, NULL, &now) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	now.k_peer = given->k_peer ? given->k_peer : now.k_peer;
	now.k_origin = given->k_origin ? given->k_origin : now.k_origin;
	now.relay = given->relay == 0 ? 0 : now.relay;
	if (vine_state_spread_settings(st, &now, NULL) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
}

/*
 * The task list in input ("-": standard input), read and checked whole
 * before the state is touched; what names it in messages.
 */
static void read_tasks(const char *input, const char *what, struct vine_tasklist *tl)
{
	FILE *f = strcmp(input, "-") ? fopen(input, "r") : stdin;

	if (!f)
		vine_die(VINE_EXIT_FAIL, "cannot open '%s': %s", input, strerror(errno));
	if (vine_tasklist_read(f, what, tl) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (f != stdin)
		fclose(f);
}

int main(int argc, char **argv)
{
	struct args a = { .proto = { .cores = 1 }, .spread = { 0, 0, -1 } };
	struct vine_object obj = { .origin = NULL };
	struct vine_tasklist tl = VINE_TASKLIST_INIT;
	const char *what;
	char *cwd;

	parse_args(argc, argv, &a);
	if (a.failed) {
		requeue_failed(a.state, a.retries_set ? a.proto.retries : -1);
		free(a.state);
		return 0;
	}
	what = strcmp(a.input, "-") ? a.input : "standard input";
	read_tasks(a.input, what, &tl);
	/* nothing to run is a mistake (an empty file, a failed generator),
	 * which vine-collect -w would otherwise report as success; with -e it
	 * registers the environment only (vine-seed-steps.sbatch does so) */
	if (tl.n == 0 && !a.archive)
		vine_die(VINE_EXIT_FAIL, "no tasks in '%s': nothing submitted", what);
	a.proto.cwd = cwd = task_dir(a.dir);
	if (a.archive) {
		load_object(a.archive, &obj);
		a.proto.object = obj.id;
	}

	struct vine_task_spec *specs = vine_xcalloc(tl.n, sizeof(*specs));
	int64_t *ids = vine_xcalloc(tl.n, sizeof(*ids));
	for (size_t i = 0; i < tl.n; i++) {
		specs[i] = a.proto;
		specs[i].cmd = tl.cmd[i];
	}
	struct vine_state *st = vine_state_open(a.state, VINE_STATE_CREATE);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	set_spread(st, &a.spread);
	if (vine_state_submit_named(st, NULL, a.name, a.archive ? &obj : NULL, specs, tl.n, ids) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	if (tl.n == 0)
		vine_warn("no tasks in '%s': registered '%s' (%s) only", what, a.archive, obj.id);
	for (size_t i = 0; i < tl.n; i++)
		printf("%lld\n", (long long)ids[i]);
	free(specs);
	free(ids);
	free(obj.origin);
	free(cwd);
	vine_tasklist_release(&tl);
	free(a.state);
	return 0;
}
