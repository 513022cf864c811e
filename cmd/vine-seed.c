/*
 * vine-seed - make an environment archive ready in the node cache, then
 * print its path or run a command inside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "cache/seed.h"
#include "state/state.h"
#include "peer/xfer.h"

static const char usage_text[] =
	"usage: vine-seed [-dqv] [-c CACHE] [-L SIZE] [-i ID] [-j JOBS] ARCHIVE [-- COMMAND [ARG...]]\n"
	"       vine-seed [-dqv] -s STATE [-N NODE] [-c CACHE] [-L SIZE] [-j JOBS] ID [-- COMMAND [ARG...]]\n"
	"  -c CACHE  the node cache (default $VINE_CACHE, else $TMPDIR/vine-$USER)\n"
	"  -d        drop the archive from the cache once its environment is ready\n"
	"  -L SIZE   then trim the cache to SIZE (e.g. 50GB; default $VINE_CACHE_LIMIT)\n"
	"  -i ID     the archive's object id, checked (64 lowercase hex digits)\n"
	"  -j JOBS   unpacking threads, 1 to 1024 (default: the cores it may use)\n"
	"  -s STATE  fetch object ID as the state directs (peers, then its origin)\n"
	"  -N NODE   this node's name, with -s (default $VINE_NODE, else the host name)\n"
	"  -q        no progress meter\n"
	"  -v        say what is happening\n"
	"  -h        show this help (also --help; --version shows the version)\n";

/* What the command line asks for. */
struct args {
	struct vine_seed_opts o;
	char *cache, *state, *node;
	const char *archive;    /* the operand: an archive, or with -s an id */
	char **cmd;             /* after --, or NULL */
};

static void parse_args(int argc, char **argv, struct args *a)
{
	const char *limit = NULL;
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt(argc, argv, "+c:dhi:j:L:N:qs:v")) != -1) {
		switch (c) {
		case 'c':
			free(a->cache);
			a->cache = vine_xstrdup(vine_opt_str("-c", optarg));
			break;
		case 'd':
			a->o.drop_archive = 1;
			break;
		case 'h':
			vine_usage(VINE_EXIT_OK);
		case 'L':
			limit = optarg;
			break;
		case 'i':
			if (!vine_id_valid(optarg))
				vine_usage_error("-i: '%s' is not an object id (64 lowercase hex digits)", optarg);
			a->o.expect_id = optarg;
			break;
		case 'j':
			a->o.jobs = (int)vine_opt_int("-j", optarg, 1, 1024);
			break;
		case 'q':
			a->o.quiet = 1;
			break;
		case 's':
			free(a->state);
			a->state = vine_xstrdup(vine_opt_state("-s", optarg));
			break;
		case 'N':
			free(a->node);
			a->node = vine_xstrdup(vine_opt_str("-N", optarg));
			break;
		case 'v':
			a->o.note = vine_cli_msg;
			break;
		default:
			vine_usage(VINE_EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || (argc > 1 && (strcmp(argv[1], "--") || argc < 3)))
		vine_usage(VINE_EXIT_USAGE);
	a->archive = argv[0];
	if (argc > 1)
		a->cmd = argv + 2;
	if (vine_default_cache_limit(limit, &a->o.cache_limit) < 0)
		vine_usage_error("%s%s", limit ? "-L: " : "", vine_errmsg());
	/* with -s the operand is the object's id; the state says where it comes from */
	if (a->state && (!vine_id_valid(a->archive) ||
			 (a->o.expect_id && strcmp(a->o.expect_id, a->archive))))
		vine_usage_error("-s: '%s' is not an object id (64 lowercase hex digits)", a->archive);
}

/* Run cmd in the environment env, still holding its lock (held, or -1). */
static _Noreturn void run_in(const char *env, int held, char **cmd)
{
	if (vine_env_activate(env) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (held >= 0 && fcntl(held, F_SETFD, 0) < 0)
		vine_die(VINE_EXIT_FAIL, "cannot keep the environment's lock: %s", strerror(errno));
	fflush(NULL);
	execvp(cmd[0], cmd);
	/* as the shell does: 127 when there is no such command, 126 when it cannot run */
	vine_die(errno == ENOENT ? 127 : 126, "cannot run '%s': %s", cmd[0], strerror(errno));
}

int main(int argc, char **argv)
{
	struct args a = { .o = { 0 } };
	struct vine_state *st = NULL;
	struct vine_xfer_seed xs = { NULL };
	struct vine_fetcher fetcher = { vine_xfer_seed_fetch, &xs, 1 };
	char *env, id[VINE_ID_LEN + 1];
	int held = -1;

	parse_args(argc, argv, &a);
	/* the command holds the environment: no trim removes it while it runs */
	if (a.cmd)
		a.o.hold = &held;
	a.o.cache = a.cache ? a.cache : (a.cache = vine_default_cache());
	if (a.state) {
		if (!(st = vine_state_open(a.state, 0)))
			vine_die_lib(VINE_EXIT_FAIL);
		xs.st = st;
		xs.cache = a.o.cache;
		xs.node = a.node ? a.node : (a.node = vine_default_node());
		a.o.expect_id = a.archive;
		a.o.fetcher = &fetcher;
		/* what it removes (-d, -L) is withdrawn from the state */
		a.o.removed = vine_xfer_seed_removed;
		a.o.removed_ctx = &xs;
	}

	if (vine_seed(&a.o, a.archive, &env, id) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	free(a.state);
	free(a.node);
	free(a.cache);
	if (a.cmd)
		run_in(env, held, a.cmd);
	printf("%s\n", env);
	free(env);
	return VINE_EXIT_OK;
}
