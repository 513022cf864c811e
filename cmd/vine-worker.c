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
	"                   [-l ADDR | -l none | --no-serve] [-i IDLE] [-L SIZE]\n"
	"                   [--memory SIZE] [--gpus N]\n"
	"  -s STATE  the state (default $VINE_STATE, else ./vine.db)\n"
	"  -c CACHE  the node cache (default $VINE_CACHE, else $TMPDIR/vine-$USER)\n"
	"  -N NODE   this node's name (default $VINE_NODE, else the host name)\n"
	"  -n CORES  cores to fill with tasks (default: the cores it may use)\n"
	"  -l ADDR   where this node's cache server listens (default: an address\n"
	"            its peers reach, any port)\n"
	"  -l none, --no-serve  do not serve this node's cache to its peers\n"
	"  -i IDLE   exit after IDLE seconds with nothing ready or running\n"
	"  -L SIZE   trim the cache to SIZE bytes (e.g. 50GB; default $VINE_CACHE_LIMIT)\n"
	"  --memory SIZE  memory to offer tasks, e.g. 64GB (default: MemTotal)\n"
	"  --gpus N  GPUs to offer tasks (default: $CUDA_VISIBLE_DEVICES, else /dev/nvidiaN)\n"
	"  -q        no warnings about single tasks, no lines on what it does\n"
	"  -h        show this help (also --help; --version shows the version)\n";

/*
 * Only vine-submit creates a state (a mistyped -s must not make an empty
 * one): a worker started before it (a Slurm job before the workflow)
 * waits for it to appear, saying so once, for at most idle seconds (-i),
 * else for as long as it takes.  Any other failure to open is final.
 */
static struct vine_state *open_waiting(const char *state, double idle)
{
	double start = vine_now_mono(), pause = 0.05;
	int said = 0;

	for (;;) {
		struct vine_state *st = vine_state_open(state, 0);
		if (st || !vine_state_missing())
			return st;
		double left = idle < 0 ? pause : idle - (vine_now_mono() - start);
		if (left <= 0)
			return NULL;
		if (!said) {
			if (idle < 0)
				vine_warn("state '%s' does not exist yet: waiting for vine-submit to "
					  "create it", state);
			else
				vine_warn("state '%s' does not exist yet: waiting up to %g s (-i) for "
					  "vine-submit to create it", state, idle);
			said = 1;
		}
		usleep((useconds_t)((left < pause ? left : pause) * 1e6));
		pause = pause * 2 > 1.0 ? 1.0 : pause * 2;
	}
}

/* What the command line asks for. */
struct args {
	struct vine_worker_opts o;
	char *state, *cache, *node;
	int serve;              /* -l none, --no-serve: 0 */
};

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "no-serve", no_argument, NULL, 'S' },
		{ "memory", required_argument, NULL, 'M' },
		{ "gpus", required_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	struct vine_worker_opts *o = &a->o;
	char *host = NULL, *port = NULL;
	const char *limit = NULL;
	int c;

	vine_cli_start(argc, argv, usage_text);
	while ((c = getopt_long(argc, argv, "s:c:N:n:l:i:L:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(a->state); a->state = vine_xstrdup(vine_opt_str("-s", optarg)); break;
		case 'c': free(a->cache); a->cache = vine_xstrdup(vine_opt_str("-c", optarg)); break;
		case 'N': free(a->node); a->node = vine_xstrdup(vine_opt_str("-N", optarg)); break;
		case 'n': o->cores = (int)vine_opt_int("-n", optarg, 1, VINE_CORES_MAX); break;
		case 'l':
			if (!strcmp(optarg, "none")) {
				a->serve = 0;
				break;
			}
			/* checked as vine-spread --serve checks it, which will use it */
			if (vine_peer_addr_split(optarg, 0, &host, &port) < 0)
				vine_usage_error("-l: %s", vine_errmsg());
			free(host);
			free(port);
			a->serve = 1;
			o->listen = optarg;
			break;
		case 'S': a->serve = 0; break;
		case 'i': o->idle = vine_opt_seconds("-i", optarg, 1, VINE_YEAR); break;
		case 'L': limit = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'M': o->memory = vine_opt_size("--memory", optarg, VINE_MEMORY_MAX); break;
		case 'G': o->gpus = (int)vine_opt_int("--gpus", optarg, 0, VINE_GPUS_MAX); break;
		case 'h': vine_usage(VINE_EXIT_OK);
		default: vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (optind != argc)
		vine_usage(VINE_EXIT_USAGE);
	if (vine_default_cache_limit(limit, &o->cache_limit) < 0)
		vine_usage_error("%s%s", limit ? "-L: " : "", vine_errmsg());
	a->state = vine_cli_state(a->state);
	if (!a->cache)
		a->cache = vine_default_cache();
	if (!a->node)
		a->node = vine_default_node();
	if (vine_node_check(a->node) < 0)
		vine_usage_error("-N: %s", vine_errmsg());
}

/*
 * What was not given, found out: the cache made absolute (tasks run
 * elsewhere), the cores it may use, the memory and GPUs there are, and
 * where to serve the cache (*listen gets the malloc'd default, or NULL).
 */
static void fill_in(struct args *a, char **listen)
{
	struct vine_worker_opts *o = &a->o;

	if (*a->cache != '/') {
		char *cwd = getcwd(NULL, 0), *abs;
		if (!cwd)
			vine_die(VINE_EXIT_FAIL, "cannot get the working directory: %s", strerror(errno));
		abs = vine_xasprintf("%s/%s", cwd, a->cache);
		free(cwd);
		free(a->cache);
		a->cache = abs;
	}
	if (o->cores == 0) {
		int n = vine_online_cores();
		o->cores = n > VINE_CORES_MAX ? VINE_CORES_MAX : n;
	}
	if (o->memory < 0)
		o->memory = vine_detect_memory();
	if (o->gpus < 0)
		o->gpus = vine_detect_gpus();
	o->cache = a->cache;
	o->node = a->node;
	*listen = NULL;
	if (!a->serve) {
		o->listen = NULL;
	} else if (!o->listen) {
		/* serving is the default: where the peers can reach it */
		o->listen = *listen = vine_xfer_default_listen(a->state);
		o->listen_default = 1;
	}
}

int main(int argc, char **argv)
{
	struct args a = { .o = { .idle = -1, .memory = -1, .gpus = -1 }, .serve = 1 };
	char *listen;

	parse_args(argc, argv, &a);
	fill_in(&a, &listen);
	/* on a terminal, what it does, a line at a time */
	if (!a.o.quiet && vine_cli_tty())
		a.o.report = vine_cli_msg;
	if (vine_worker_env(&a.o) < 0)
		vine_die_lib(VINE_EXIT_USAGE);

	struct vine_state *st = open_waiting(a.state, a.o.idle);
	if (!st)
		vine_die_lib(VINE_EXIT_FAIL);
	a.o.warn = vine_cli_msg;
	int rc = vine_worker_run(st, &a.o);
	if (rc < 0)
		vine_warn("%s", vine_errmsg());
	vine_state_close(st);
	free(a.state);
	free(a.cache);
	free(a.node);
	free(listen);
	return rc < 0 ? VINE_EXIT_FAIL : 0;
}
