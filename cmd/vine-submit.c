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

int main(int argc, char **argv)
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
	struct vine_task_spec proto = { .cores = 1 };
	struct vine_object obj = { .origin = NULL };
	struct vine_tasklist tl = VINE_TASKLIST_INIT;
	const char *archive = NULL, *input = "-", *dir = NULL, *name = NULL;
	char *state = NULL, *cwd;
	int failed = 0, retries_set = 0, c;
	struct vine_spread_settings spread = { 0, 0, -1 };

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:e:n:r:t:C:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(state); state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'e': archive = vine_opt_str("-e", optarg); break;
		case 'n': proto.cores = (int)vine_opt_int("-n", optarg, 1, VINE_CORES_MAX); break;
		case 'r':
			proto.retries = (int)vine_opt_int("-r", optarg, 0, VINE_RETRIES_MAX);
			retries_set = 1;
			break;
		case 't': proto.timeout = vine_opt_seconds("-t", optarg, 0, VINE_TIMEOUT_MAX); break;
		case 'T':
			if (!*optarg || strlen(optarg) > VINE_TAG_MAX || strchr(optarg, '\n'))
				vine_usage_error("--tag: '%s' is not 1 to 256 bytes on one line", optarg);
			proto.tag = optarg;
			break;
		case 'F': failed = 1; break;
		case 'K': spread.k_peer = (int)vine_opt_int("--k-peer", optarg, 1, VINE_K_MAX); break;
		case 'O': spread.k_origin = (int)vine_opt_int("--k-origin", optarg, 1, VINE_K_MAX); break;
		case 'R': spread.relay = 0; break;
		case 'C': dir = vine_opt_str("-C", optarg); break;
		case 'A':
			if (!*optarg || strlen(optarg) > VINE_SUBMISSION_MAX || strchr(optarg, '\n'))
				vine_usage_error("--name: '%s' is not 1 to 256 bytes on one line", optarg);
			name = optarg;
			break;
		case 'M': proto.memory = vine_opt_size("--memory", optarg, VINE_MEMORY_MAX); break;
		case 'G': proto.gpus = (int)vine_opt_int("--gpus", optarg, 0, VINE_GPUS_MAX); break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (argc - optind > 1 || (failed && (argc > optind || archive || proto.tag || dir || name ||
					     proto.memory || proto.gpus ||
					     proto.timeout > 0 || proto.cores != 1)))
		vine_usage(VINE_EXIT_USAGE);
	if (argc > optind)
		input = argv[optind];
	state = vine_cli_state(state);

	if (failed) {
		requeue_failed(state, retries_set ? proto.retries : -1);
		free(state);
		return 0;
	}

	/* everything is read and checked before the state is touched */
	FILE *f = strcmp(input, "-") ? fopen(input, "r") : stdin;
	if (!f)
		vine_die(VINE_EXIT_FAIL, "cannot open '%s': %s", input, strerror(errno));
	if (vine_tasklist_read(f, strcmp(input, "-") ? input : "standard input", &tl) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (f != stdin)
		fclose(f);
	/* nothing to run is a mistake (an empty file, a failed generator),
	 * which vine-collect -w would otherwise report as success; with -e it
	 * registers the environment only (vine-seed-steps.sbatch does so) */
	if (tl.n == 0 && !archive)
		vine_die(VINE_EXIT_FAIL, "no tasks in '%s': nothing submitted",
			 strcmp(input, "-") ? input : "standard input");
	cwd = task_dir(dir);
	proto.cwd = cwd;
	if (archive) {
		load_object(archive, &obj);
		proto.object = obj.id;
	}

	struct vine_task_spec *specs = vine_xcalloc(tl.n, sizeof(*specs));
	int64_t *ids = vine_xcalloc(tl.n, sizeof(*ids));
	for (size_t i = 0; i < tl.n; i++) {
		specs[i] = proto;
		specs[i].cmd = tl.cmd[i];
	}
	struct vine_state *st = vine_state_open(state, VINE_STATE_CREATE);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	set_spread(st, &spread);
	if (vine_state_submit_named(st, NULL, name, archive ? &obj : NULL, specs, tl.n, ids) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	if (tl.n == 0)
		vine_warn("no tasks in '%s': registered '%s' (%s) only",
			  strcmp(input, "-") ? input : "standard input", archive, obj.id);
	for (size_t i = 0; i < tl.n; i++)
		printf("%lld\n", (long long)ids[i]);
	free(specs);
	free(ids);
	free(obj.origin);
	free(cwd);
	vine_tasklist_release(&tl);
	free(state);
	return 0;
}
