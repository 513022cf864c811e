/*
 * vine-cache - list what a node cache holds and prune it.  See
 * vine-cache(1); the work is in lib/cache/manage.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cache/cache.h"
#include "peer/xfer.h"
#include "util/config.h"

static const char usage_text[] =
	"usage: vine-cache [-c CACHE] list\n"
	"       vine-cache [-c CACHE] [-s STATE] [-N NODE] prune [-n] [--older-than AGE]\n"
	"                  [--max-size SIZE]\n"
	"  -c CACHE           the node cache (default $VINE_CACHE, else $TMPDIR/vine-$USER)\n"
	"  -s STATE           withdraw this node's replicas of what is pruned from the state\n"
	"                     (default $VINE_STATE; none: the state is not told)\n"
	"  -N NODE            this node's name in the state (default $VINE_NODE, else the host name)\n"
	"  -n, --dry-run      say what prune would remove, remove nothing\n"
	"  --older-than AGE   prune what was last used more than AGE ago (s, m, h, d, w)\n"
	"  --max-size SIZE    prune least recently used until at most SIZE (e.g. 50GB, 40GiB)\n"
	"  -h                 show this help (also --help; --version shows the version)\n";

/* What the command line asks for. */
struct args {
	char *cache;
	char *state, *node;     /* prune: the state to tell (NULL: none), as whom */
	const char *verb;       /* list, prune */
	int dry_run, have_older, have_max;
	int64_t older;
	uint64_t max;
};

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	vine_cli_start(argc, argv, usage_text);
	/* options may come before or after the command */
	while ((ch = getopt_long(argc, argv, "c:hnN:s:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			free(a->cache);
			a->cache = vine_xstrdup(vine_opt_str("-c", optarg));
			break;
		case 's':
			free(a->state);
			a->state = vine_xstrdup(vine_opt_str("-s", optarg));
			break;
		case 'N':
			free(a->node);
			a->node = vine_xstrdup(vine_opt_str("-N", optarg));
			break;
		case 'h':
			vine_usage(VINE_EXIT_OK);
		case 'n':
			a->dry_run = 1;
			break;
		case 'o':
			if (vine_parse_age(optarg, &a->older) < 0)
				vine_usage_error("--older-than: %s", vine_errmsg());
			a->have_older = 1;
			break;
		case 'm':
			a->max = (uint64_t)vine_opt_size("--max-size", optarg, INT64_MAX);
			a->have_max = 1;
			break;
		default:
			vine_usage(VINE_EXIT_USAGE);
		}
	}
	if (argc - optind != 1)
		vine_usage(VINE_EXIT_USAGE);
	a->verb = argv[optind];
	if (!strcmp(a->verb, "list")) {
		if (a->dry_run || a->have_older || a->have_max)
			vine_usage(VINE_EXIT_USAGE);
	} else if (!strcmp(a->verb, "prune")) {
		if (!a->have_older && !a->have_max)
			vine_usage_error("prune: say what to remove: --older-than AGE, --max-size SIZE or both");
	} else {
		vine_usage_error("'%s' is not a command (list, prune)", a->verb);
	}
	if (!a->cache)
		a->cache = vine_default_cache();
	/* $VINE_STATE naming no file has no replicas to withdraw */
	const char *env = getenv("VINE_STATE");
	if (!a->state && env && *env && (strstr(env, "://") || access(env, F_OK) == 0))
		a->state = vine_xstrdup(env);
	if (!a->node)
		a->node = vine_default_node();
}

static void when(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "-");
}

static void list(const struct vine_cache *c)
{
	struct vine_cache_entry *e;
	size_t n;

	if (vine_cache_list(c, &e, &n) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	printf("%-64s %12s %12s %-20s %s\n", "ID", "ARCHIVE", "ENV", "LAST-USE", "STATE");
	for (size_t i = 0; i < n; i++) {
		char a[32] = "-", v[32] = "-", t[32];
		if (e[i].has_archive || e[i].partial)
			snprintf(a, sizeof(a), "%llu", (unsigned long long)e[i].archive);
		if (e[i].has_env)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)e[i].env);
		when(e[i].last_use, t);
		printf("%s %12s %12s %-20s %s%s\n", e[i].id, a, v, t, e[i].in_use ? "in-use" : "idle",
		       e[i].partial ? ",partial" : "");
	}
	free(e);
}

/* Where a prune tells the state: NULL st, nowhere. */
struct teller {
	struct vine_state *st;
	const char *node;
	int dry_run;
};

static void removed(void *ctx, const struct vine_cache_entry *e)
{
	const struct teller *t = ctx;

	printf("%s %llu\n", e->id, (unsigned long long)(e->archive + e->env));
	/* peers are sent here no more */
	if (t->st && !t->dry_run && (e->has_archive || e->partial) &&
	    vine_xfer_withdraw(t->st, t->node, e->id) < 0)
		vine_warn("cannot withdraw the replica of %s from the state: %s", e->id, vine_errmsg());
}

static int prune(const struct vine_cache *c, const struct teller *t, int64_t older, int have_older,
		 uint64_t max, int have_max)
{
	struct vine_cache_entry *e;
	size_t n;
	int64_t now = (int64_t)time(NULL);
	int dry_run = t->dry_run;

	if (!dry_run && vine_cache_sweep_stale(c) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (have_older) {
		if (vine_cache_list(c, &e, &n) < 0)
			vine_die_lib(VINE_EXIT_FAIL);
		for (size_t i = 0; i < n; i++) {
			int r;
			if (e[i].in_use || e[i].last_use > now - older)
				continue;
			if ((r = vine_cache_remove(c, &e[i], dry_run)) < 0)
				vine_die_lib(VINE_EXIT_FAIL);
			if (r)
				removed((void *)t, &e[i]);
		}
		free(e);
	}
	if (have_max) {
		int64_t left = vine_cache_trim(c, max, dry_run, removed, (void *)t);
		if (left < 0)
			vine_die_lib(VINE_EXIT_FAIL);
		if ((uint64_t)left > max) {
			vine_warn("'%s' still holds %lld bytes, more than %llu: the rest is in use", c->dir,
				  (long long)left, (unsigned long long)max);
			return VINE_EXIT_FAIL;
		}
	}
	return VINE_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct args a = { .cache = NULL };
	struct vine_cache c;
	struct teller t = { NULL, NULL, 0 };
	int rc = VINE_EXIT_OK;

	parse_args(argc, argv, &a);
	if (vine_cache_open(&c, a.cache) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (!strcmp(a.verb, "list")) {
		list(&c);
	} else {
		/* only vine-submit creates a state */
		if (a.state && !(t.st = vine_state_open(a.state, 0)))
			vine_die_lib(VINE_EXIT_FAIL);
		t.node = a.node;
		t.dry_run = a.dry_run;
		rc = prune(&c, &t, a.older, a.have_older, a.max, a.have_max);
		vine_state_close(t.st);
	}
	vine_cache_close(&c);
	free(a.cache);
	free(a.state);
	free(a.node);
	return rc;
}
