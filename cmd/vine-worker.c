/*
 * vine-worker - claim tasks from the state and run them on this node.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "peer/peer.h"
#include "peer/xfer.h"
#include "state/state.h"
#include "task/worker.h"

static const char usage_text[] =
	"usage: vine-worker [-q] [-s STATE] [-c CACHE] [-N NODE] [-n CORES]\n"
	"                   [-l ADDR | -l none | --no-serve] [-i IDLE]\n"
	"  -s STATE  the state (default $VINE_STATE, else ./vine.db)\n"
	"  -c CACHE  the node cache (default $VINE_CACHE, else $TMPDIR/vine-cache-$USER)\n"
	"  -N NODE   this node's name (default $VINE_NODE, else the host name)\n"
	"  -n CORES  cores to fill with tasks (default: the cores it may use)\n"
	"  -l ADDR   where this node's cache server listens (default: an address\n"
	"            its peers reach, any port)\n"
	"  -l none, --no-serve  do not serve this node's cache to its peers\n"
	"  -i IDLE   exit after IDLE seconds with nothing ready or running\n"
	"  -q        no warnings about single tasks\n"
	"  -h        show this help (also --help; --version shows the version)\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-serve", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct vine_worker_opts o = { .idle = -1 };
	char *state = NULL, *cache = NULL, *node = NULL, *host = NULL, *port = NULL, *listen = NULL;
	int c, serve = 1;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:c:N:n:l:i:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(state); state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'c': free(cache); cache = vine_xstrdup(vine_opt_str("-c", optarg)); break;
		case 'N': free(node); node = vine_xstrdup(vine_opt_str("-N", optarg)); break;
		case 'n': o.cores = (int)vine_opt_int("-n", optarg, 1, VINE_CORES_MAX); break;
		case 'l':
			if (!strcmp(optarg, "none")) {
				serve = 0;
				break;
			}
			/* checked as vine-spread --serve checks it, which will use it */
			if (vine_peer_addr_split(optarg, 0, &host, &port) < 0)
				vine_usage_error("-l: %s", vine_errmsg());
			free(host);
			free(port);
			serve = 1;
			o.listen = optarg;
			break;
		case 'S': serve = 0; break;
		case 'i': o.idle = vine_opt_seconds("-i", optarg, 1, VINE_YEAR); break;
		case 'q': o.quiet = 1; break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (optind != argc)
		vine_usage(VINE_EXIT_USAGE);
	if (!state)
		state = vine_default_state();
	if (!cache)
		cache = vine_default_cache();
	if (!node)
		node = vine_default_node();
	if (vine_node_check(node) < 0)
		vine_usage_error("-N: %s", vine_errmsg());
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
		int n = vine_online_cores();
		o.cores = n > VINE_CORES_MAX ? VINE_CORES_MAX : n;
	}
	o.cache = cache;
	o.node = node;
	if (!serve) {
		o.listen = NULL;
	} else if (!o.listen) {
		/* serving is the default: where the peers can reach it */
		o.listen = listen = vine_xfer_default_listen(state);
		o.listen_default = 1;
	}
	if (vine_worker_env(&o) < 0)
		vine_die_lib(VINE_EXIT_USAGE);

	struct vine_state *st = vine_state_open(state, VINE_STATE_CREATE);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	o.warn = vine_cli_msg;
	int rc = vine_worker_run(st, &o);
	if (rc < 0)
		vine_warn("%s", vine_errmsg());
	vine_state_close(st);
	free(state);
	free(cache);
	free(node);
	free(listen);
	return rc < 0 ? VINE_EXIT_FAIL : 0;
}
