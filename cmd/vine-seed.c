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

static void usage(FILE *f)
{
	fprintf(f, "usage: vine-seed [-dqv] [-c CACHE] [-L SIZE] [-j JOBS] [-i ID] ARCHIVE [-- COMMAND [ARG...]]\n"
		   "       vine-seed [-dqv] -s STATE [-N NODE] [-c CACHE] [-L SIZE] [-j JOBS] ID [-- COMMAND [ARG...]]\n");
}

static void say(void *ctx, const char *msg)
{
	vine_warn("%s", msg);
}

int main(int argc, char **argv)
{
	struct vine_seed_opts o = { 0 };
	char *cache = NULL, *env, id[VINE_ID_LEN + 1], *state = NULL, *node = NULL;
	const char *limit = NULL;
	int held = -1;
	struct vine_state *st = NULL;
	struct vine_xfer_seed xs = { NULL };
	struct vine_fetcher fetcher = { vine_xfer_seed_fetch, &xs, 1 };
	char **cmd = NULL;
	long long n;
	int c;

	vine_cli_init(argv[0]);
	while ((c = getopt(argc, argv, "+c:dhi:j:L:N:qs:v")) != -1) {
		switch (c) {
		case 'c':
			free(cache);
			cache = vine_xstrdup(optarg);
			break;
		case 'd':
			o.drop_archive = 1;
			break;
		case 'h':
			usage(stdout);
			return VINE_EXIT_OK;
		case 'L':
			limit = optarg;
			break;
		case 'i':
			if (!vine_id_valid(optarg))
				vine_die(VINE_EXIT_USAGE, "'%s' is not an object id (64 lowercase hex digits)", optarg);
			o.expect_id = optarg;
			break;
		case 'j':
			if (vine_parse_llong(optarg, 1, 1024, &n) < 0) {
				vine_warn("-j: %s", vine_errmsg());
				usage(stderr);
				return VINE_EXIT_USAGE;
			}
			o.jobs = (int)n;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 's':
			free(state);
			state = vine_xstrdup(optarg);
			break;
		case 'N':
			free(node);
			node = vine_xstrdup(optarg);
			break;
		case 'v':
			o.note = say;
			break;
		default:
			usage(stderr);
			return VINE_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || (argc > 1 && (strcmp(argv[1], "--") || argc < 3))) {
		usage(stderr);
		return VINE_EXIT_USAGE;
	}
	if (argc > 1)
		cmd = argv + 2;
	if (vine_default_cache_limit(limit, &o.cache_limit) < 0) {
		vine_warn("%s%s", limit ? "-L: " : "", vine_errmsg());
		usage(stderr);
		return VINE_EXIT_USAGE;
	}
	/* the command holds the environment: no trim removes it while it runs */
	if (cmd)
		o.hold = &held;
	o.cache = cache ? cache : (cache = vine_default_cache());
	if (state) {
		/* the operand is the object's id; the state says where it comes from */
		if (!vine_id_valid(argv[0]) || (o.expect_id && strcmp(o.expect_id, argv[0])))
			vine_die(VINE_EXIT_USAGE, "-s: '%s' is not an object id (64 lowercase hex digits)",
				 argv[0]);
		if (!(st = vine_state_open(state, 0)))
			vine_die_lib(VINE_EXIT_FAIL);
		xs.st = st;
		xs.cache = o.cache;
		xs.node = node ? node : (node = vine_default_node());
		o.expect_id = argv[0];
		o.fetcher = &fetcher;
	}

	if (vine_seed(&o, argv[0], &env, id) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	vine_state_close(st);
	free(state);
	free(node);
	free(cache);
	if (!cmd) {
		printf("%s\n", env);
		free(env);
		return VINE_EXIT_OK;
	}
	if (vine_env_activate(env) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (held >= 0 && fcntl(held, F_SETFD, 0) < 0)
		vine_die(VINE_EXIT_FAIL, "cannot keep the environment's lock: %s", strerror(errno));
	fflush(NULL);
	execvp(cmd[0], cmd);
	/* as the shell does: 127 when there is no such command, 126 when it cannot run */
	vine_die(errno == ENOENT ? 127 : 126, "cannot run '%s': %s", cmd[0], strerror(errno));
}
