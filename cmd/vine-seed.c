/*
 * vine-seed - make an environment archive ready in the node cache, then
 * print its path or run a command inside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "seed.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vine-seed [-qv] [-c CACHE] [-j JOBS] [-i ID] ARCHIVE [-- COMMAND [ARG...]]\n");
}

static void say(void *ctx, const char *msg)
{
	vine_warn("%s", msg);
}

int main(int argc, char **argv)
{
	struct vine_seed_opts o = { 0 };
	char *cache = NULL, *env, id[VINE_ID_LEN + 1];
	char **cmd = NULL;
	long long n;
	int c;

	vine_cli_init(argv[0]);
	while ((c = getopt(argc, argv, "+c:hi:j:qv")) != -1) {
		switch (c) {
		case 'c':
			free(cache);
			cache = vine_xstrdup(optarg);
			break;
		case 'h':
			usage(stdout);
			return VINE_EXIT_OK;
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
	o.cache = cache ? cache : (cache = vine_default_cache());

	if (vine_seed(&o, argv[0], &env, id) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	free(cache);
	if (!cmd) {
		printf("%s\n", env);
		free(env);
		return VINE_EXIT_OK;
	}
	if (vine_env_activate(env) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	fflush(NULL);
	execvp(cmd[0], cmd);
	/* as the shell does: 127 when there is no such command, 126 when it cannot run */
	vine_die(errno == ENOENT ? 127 : 126, "cannot run '%s': %s", cmd[0], strerror(errno));
}
