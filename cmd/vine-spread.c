/*
 * vine-spread - serve this node's cache to peers, and fetch objects from
 * peers into it (lib/peer/peer.h; protocol in vine(7)).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/config.h"
#include "peer/peer.h"
#include "util/progress.h"
#include "state/state.h"
#include "util/util.h"
#include "peer/xfer.h"

static const char usage_text[] =
	"usage: vine-spread [-qv] [-c CACHE] [-N NODE] [-u UPLOADS] [-t SECONDS]\n"
	"                   [--secret-file FILE] --serve [-l ADDR]\n"
	"       vine-spread [-q] [-c CACHE] [-t SECONDS] [--secret-file FILE]\n"
	"                   [--from HOST:PORT]... [--origin FILE] OBJECT...\n"
	"       vine-spread [-qv] -s STATE [-c CACHE] [-N NODE] [-u UPLOADS] [-t SECONDS]\n"
	"                   --serve [-l ADDR]\n"
	"       vine-spread [-q] -s STATE [-c CACHE] [-N NODE] [-t SECONDS] OBJECT...\n"
	"  --serve               serve this node's cache to peers until a signal\n"
	"  -l ADDR               the address to listen on (default :0, any port)\n"
	"  -u UPLOADS            uploads served at once, 1 to 1024 (default 8)\n"
	"  --from HOST:PORT      fetch from this peer (repeatable)\n"
	"  --origin FILE         fetch from this file, after the peers\n"
	"  --secret-file FILE    the run's secret (default $VINE_SECRET_FILE)\n"
	"  -s STATE              the state gives the secret and the sources\n"
	"  -c CACHE              the node cache (default $VINE_CACHE, else\n"
	"                        $TMPDIR/vine-$USER)\n"
	"  -N NODE               this node's name (default $VINE_NODE, else the host name)\n"
	"  -t SECONDS            network time-out, 1 to 86400 (default 30)\n"
	"  -q                    no progress meter\n"
	"  -v                    log each transfer\n"
	"  -h                    show this help (also --help; --version shows the version)\n";

enum { OPT_SERVE = 256, OPT_FROM, OPT_ORIGIN, OPT_SECRET };

static const struct option longopts[] = {
	{ "serve", no_argument, NULL, OPT_SERVE },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "secret-file", required_argument, NULL, OPT_SECRET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct run {
	int quiet, verbose;
	struct vine_progress prog;
	const char *id;
};

/* A usage error unless addr is HOST:PORT (or HOST alone, without need_port). */
static void check_addr(const char *opt, const char *addr, int need_port)
{
	char *host, *port;

	if (vine_peer_addr_split(addr, need_port, &host, &port) < 0)
		vine_usage_error("%s: %s", opt, vine_errmsg());
	free(host);
	free(port);
}

/* What the command line asks for. */
struct args {
	char *cache, *node, *state;
	const char *listen, *secret_file;
	int serve, quiet, verbose, secret_opt;
	long long uploads, timeout;
	/* the sources: the peers (--from), then the origin (absolute) */
	const char **from;
	size_t nfrom, npeers;
	char *origin;
	char **ids;
	int nids;
};

static char *absolute(const char *path)
{
	char cwd[4096];

	if (path[0] == '/')
		return vine_xstrdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		vine_die(VINE_EXIT_FAIL, "cannot get the current directory: %s", strerror(errno));
	return vine_xasprintf("%s/%s", cwd, path);
}

static void parse_args(int argc, char **argv, struct args *a)
{
	const char *env, *origin = NULL;
	int c;

	vine_cli_start(argc, argv, usage_text);
	if ((env = getenv("VINE_UPLOADS")) && *env && vine_parse_llong(env, 1, 1024, &a->uploads) < 0)
		vine_die(VINE_EXIT_USAGE, "VINE_UPLOADS: %s", vine_errmsg());
	while ((c = getopt_long(argc, argv, "s:c:N:l:u:t:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			free(a->state);
			a->state = vine_xstrdup(vine_opt_state("-s", optarg));
			break;
		case 'c':
			free(a->cache);
			a->cache = vine_xstrdup(vine_opt_str("-c", optarg));
			break;
		case 'N':
			free(a->node);
			a->node = vine_xstrdup(vine_opt_str("-N", optarg));
			break;
		case 'l':
			a->listen = vine_opt_str("-l", optarg);
			break;
		case 'u':
			a->uploads = vine_opt_int("-u", optarg, 1, 1024);
			break;
		case 't':
			a->timeout = vine_opt_int("-t", optarg, 1, 86400);
			break;
		case 'q':
			a->quiet = 1;
			break;
		case 'v':
			a->verbose = 1;
			break;
		case 'h':
			vine_usage(VINE_EXIT_OK);
		case OPT_SERVE:
			a->serve = 1;
			break;
		case OPT_FROM:
			a->from = vine_xrealloc(a->from, (a->nfrom + 1) * sizeof(*a->from));
			a->from[a->nfrom++] = optarg;
			break;
		case OPT_ORIGIN:
			origin = vine_opt_str("--origin", optarg);
			break;
		case OPT_SECRET:
			a->secret_file = vine_opt_str("--secret-file", optarg);
			a->secret_opt = 1;
			break;
		default:
			vine_usage(VINE_EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (a->state && (a->nfrom || origin))
		vine_usage_error("-s: the state gives the sources");
	if (a->serve ? (argc || a->nfrom || origin)
		     : (!argc || (!a->nfrom && !origin && !a->state) || a->listen)) {
		if (!a->serve && argc && !a->nfrom && !origin)
			vine_usage_error("no source: give --from HOST:PORT or --origin FILE");
		vine_usage(VINE_EXIT_USAGE);
	}
	for (size_t i = 0; i < a->nfrom; i++)
		check_addr("--from", a->from[i], 1);
	a->from = vine_xrealloc(a->from, (a->nfrom + 1) * sizeof(*a->from));
	a->npeers = a->nfrom;
	if (origin) /* the origin is the last source; a source starting with '/' is a file */
		a->from[a->nfrom++] = a->origin = absolute(origin);
	if (a->listen)
		check_addr("-l", a->listen, 0);
	for (int i = 0; i < argc; i++)
		if (!vine_id_valid(argv[i]))
			vine_usage_error("'%s' is not an object id (64 lowercase hex digits)", argv[i]);
	a->ids = argv;
	a->nids = argc;
}

static int serve(struct vine_state *st, const char *cache, const char *node, const char *listen,
		 const unsigned char *secret, int uploads, double timeout, int verbose)
{
	struct vine_peer_server_opts o = {
		.cache = cache, .node = node, .listen = listen, .secret = secret,
		.max_uploads = uploads, .io_timeout = timeout,
		.log = verbose ? vine_cli_msg : NULL,
	};
	const char *env = getenv("VINE_TEST_SEND_DELAY");
	struct vine_xfer_server *s;
	double lease = 0;
	struct timespec tick = { 0, 0 };
	sigset_t set;
	int sig;

	if (st && vine_env_seconds("VINE_LEASE", 60, &lease) < 0)
		vine_die_lib(VINE_EXIT_USAGE);
	tick.tv_sec = (time_t)(lease / 3);
	tick.tv_nsec = (long)((lease / 3 - (double)tick.tv_sec) * 1e9);

	/* the signals that stop the server are taken by sigwait below; block
	 * them before any thread exists */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* for tests only: slow every upload down (vine-spread(1), ENVIRONMENT) */
	if (env && *env)
		o.send_delay = strtod(env, NULL);
	if (!(s = vine_xfer_server_start(st, &o, lease)))
		vine_die_lib(VINE_EXIT_FAIL);
	/* the first line of output is the address, for scripts to read */
	if (printf("%s\n", vine_xfer_server_addr(s)) < 0 || fflush(stdout) != 0) {
		vine_xfer_server_stop(s);
		vine_die(VINE_EXIT_FAIL, "cannot write standard output");
	}
	if (verbose)
		vine_warn("node %s serving '%s' on %s", node, cache, vine_xfer_server_addr(s));
	while ((sig = st ? sigtimedwait(&set, NULL, &tick) : sigwaitinfo(&set, NULL)) < 0) {
		/* a failed renewal is tried again next time, until the lease is gone */
		if (st && errno == EAGAIN && vine_xfer_server_renew(s) < 0)
			vine_warn("cannot renew the lease: %s", vine_errmsg());
	}
	if (vine_xfer_server_stop(s) < 0)
		vine_warn("%s", vine_errmsg());
	if (verbose)
		vine_warn("stopped by signal %d", sig);
	return VINE_EXIT_OK;
}

/*
 * The run's secret into secret: with a state, the state's unless
 * --secret-file (given) names another; else from file ($VINE_SECRET_FILE
 * or --secret-file) when needed; else zeros.
 */
static void load_secret(struct vine_state *st, const char *given, const char *file, int needed,
			unsigned char secret[VINE_PEER_SECRET_LEN])
{
	memset(secret, 0, VINE_PEER_SECRET_LEN);
	if (st && !given) {
		if (vine_state_peer_secret(st, secret) < 0)
			vine_die_lib(VINE_EXIT_FAIL);
	} else if (needed) {
		if (!file || !*file)
			vine_die(VINE_EXIT_USAGE, "no secret: give --secret-file FILE or set VINE_SECRET_FILE");
		if (vine_peer_secret_load(file, secret) < 0)
			vine_die_lib(VINE_EXIT_FAIL);
	}
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct run *r = ctx;

	r->prog.total = total;
	vine_progress_update(&r->prog, done, "B");
}

static void on_source_failed(void *ctx, const char *addr, int status, const char *msg)
{
	struct run *r = ctx;

	vine_progress_end(&r->prog);
	vine_warn("%.12s: %s", r->id, msg);
}

static int fetch(struct vine_state *stt, const char *cache, const char *node, char **ids, int nids,
		 const char *const *from, size_t nfrom, const unsigned char *secret, double timeout,
		 int quiet)
{
	struct run r = { .quiet = quiet };
	struct vine_peer_client_opts o = {
		.secret = secret, .stall_timeout = timeout,
		.progress = on_progress, .source_failed = on_source_failed, .ctx = &r,
	};
	int rc = VINE_EXIT_OK;

	for (int i = 0; i < nids; i++) {
		char label[32];
		int st;

		snprintf(label, sizeof(label), "%.12s", ids[i]);
		r.id = ids[i];
		vine_progress_init(&r.prog, label, 0, quiet);
		if (stt)
			st = vine_xfer_fetch(stt, cache, node, ids[i], 0, &o);
		else
			st = vine_peer_fetch(cache, ids[i], from, nfrom, &o);
		vine_progress_end(&r.prog);
		if (st == VINE_PEER_OK) {
			printf("%s/objects/%s\n", cache, ids[i]);
			continue;
		}
		if (st == VINE_PEER_ELOCAL)
			vine_warn("cannot fetch %s: %s", ids[i], vine_errmsg());
		else
			vine_warn("cannot fetch %s: no source could give it", ids[i]);
		rc = VINE_EXIT_FAIL;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = { .secret_file = getenv("VINE_SECRET_FILE"), .uploads = 8, .timeout = 30 };
	struct vine_state *st = NULL;
	unsigned char secret[VINE_PEER_SECRET_LEN];
	int rc;

	parse_args(argc, argv, &a);
	if (a.state && !(st = vine_state_open(a.state, 0)))
		vine_die_lib(VINE_EXIT_FAIL);
	/* peers need the secret; a fetch from the origin alone does not */
	load_secret(st, a.secret_opt ? a.secret_file : NULL, a.secret_file,
		    a.serve || a.npeers || a.state, secret);
	if (!a.cache)
		a.cache = vine_default_cache();
	if (!a.node)
		a.node = vine_default_node();
	if (a.serve) {
		/* with a state, where its peers reach it (vine(7), ADDRESSES) */
		char *def = !a.listen && a.state ? vine_xfer_default_listen(a.state) : NULL;
		rc = serve(st, a.cache, a.node, a.listen ? a.listen : def ? def : ":0", secret,
			   (int)a.uploads, (double)a.timeout, a.verbose);
		free(def);
	} else {
		rc = fetch(st, a.cache, a.node, a.ids, a.nids, a.from, a.nfrom, secret,
			   (double)a.timeout, a.quiet);
	}
	vine_state_close(st);
	free(a.state);
	explicit_bzero(secret, sizeof(secret));
	free(a.from);
	free(a.origin);
	free(a.cache);
	free(a.node);
	return rc;
}
