/*
 * vine-worker - claim tasks from the state and run them on this node.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "peer/peer.h"
#include "state/state.h"
#include "task/worker.h"

static void usage(FILE *f)
{
	fputs("usage: vine-worker [-q] [-s STATE] [-c CACHE] [-N NODE] [-n CORES] [-l ADDR]\n"
	      "                   [-i IDLE] [-L SIZE]\n", f);
}

/* Exit rather than return, so what main allocated is still reachable. */
static _Noreturn void usage_error(void)
{
	usage(stderr);
	exit(VINE_EXIT_USAGE);
}

static _Noreturn void bad(const char *opt, const char *why)
{
	vine_warn("%s: %s", opt, why);
	usage(stderr);
	exit(VINE_EXIT_USAGE);
}

int main(int argc, char **argv)
{
	struct vine_worker_opts o = { .idle = -1 };
	char *state = NULL, *cache = NULL, *node = NULL, *host = NULL, *port = NULL;
	const char *limit = NULL;
	long long v;
	int c;

	vine_cli_init(argv[0]);
	while ((c = getopt(argc, argv, "s:c:N:n:l:i:L:qh")) != -1) {
		switch (c) {
		case 's': free(state); state = vine_xstrdup(optarg); break;
		case 'c': free(cache); cache = vine_xstrdup(optarg); break;
		case 'N': free(node); node = vine_xstrdup(optarg); break;
		case 'n':
			if (vine_parse_llong(optarg, 1, VINE_CORES_MAX, &v) < 0)
				bad("-n", vine_errmsg());
			o.cores = (int)v;
			break;
		case 'l':
			/* checked as vine-spread --serve checks it, which will use it */
			if (vine_peer_addr_split(optarg, 0, &host, &port) < 0)
				bad("-l", vine_errmsg());
			free(host);
			free(port);
			o.listen = optarg;
			break;
		case 'i': {
			char *end;
			errno = 0;
			o.idle = strtod(optarg, &end);
			if (!*optarg || *end || errno || !isfinite(o.idle) || o.idle < 0 ||
			    o.idle > 86400 * 366)
				bad("-i", "IDLE must be a number of seconds, 0 or more");
			break;
		}
		case 'L': limit = optarg; break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage_error();
		}
	}
	if (optind != argc) {
		usage_error();
	}
	if (vine_default_cache_limit(limit, &o.cache_limit) < 0)
		limit ? bad("-L", vine_errmsg()) : vine_die_lib(VINE_EXIT_USAGE);
	if (!state)
		state = vine_default_state();
	if (!cache)
		cache = vine_default_cache();
	if (!node)
		node = vine_default_node();
	if (!*node || strlen(node) > VINE_NODE_MAX || strchr(node, '/') || strchr(node, '\n') ||
	    node[0] == '.')
		bad("-N", "a node name is 1 to 255 bytes, without '/' or a newline, not starting with '.'");
	if (*cache != '/') {
		char *cwd = getcwd(NULL, 0), *abs;
		if (!cwd)
			vine_die(VINE_EXIT_FAIL, "cannot get the working directory: %s", strerror(errno));
		abs = vine_xasprintf("%s/%s", cwd, cache);
		free(cwd);
		free(cache);
		cache = abs;
	}
	if (o.cores == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.cores = n < 1 ? 1 : n > VINE_CORES_MAX ? VINE_CORES_MAX : (int)n;
	}
	o.cache = cache;
	o.node = node;
	if (vine_worker_env(&o) < 0)
		vine_die_lib(VINE_EXIT_USAGE);

	struct vine_state *st = vine_state_open(state, VINE_STATE_CREATE);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	int rc = vine_worker_run(st, &o);
	if (rc < 0)
		vine_warn("%s", vine_errmsg());
	vine_state_close(st);
	free(state);
	free(cache);
	free(node);
	return rc < 0 ? VINE_EXIT_FAIL : 0;
}
