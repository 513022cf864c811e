/*
 * vine-cache - list what a node cache holds and prune it.  See
 * vine-cache(1); the work is in lib/cache/manage.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cache/cache.h"
#include "util/config.h"

static void usage(FILE *f)
{
	fputs("usage: vine-cache [-c CACHE] list\n"
	      "       vine-cache [-c CACHE] prune [-n] [--older-than AGE] [--max-size SIZE]\n", f);
}

static _Noreturn void usage_error(const char *opt, const char *why)
{
	if (opt)
		vine_warn("%s: %s", opt, why);
	usage(stderr);
	exit(VINE_EXIT_USAGE);
}

static void when(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		strcpy(buf, "-");
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

static void removed(void *ctx, const struct vine_cache_entry *e)
{
	printf("%s %llu\n", e->id, (unsigned long long)(e->archive + e->env));
}

static int prune(const struct vine_cache *c, int dry_run, int64_t older, int have_older, uint64_t max,
		 int have_max)
{
	struct vine_cache_entry *e;
	size_t n;
	int64_t now = (int64_t)time(NULL);

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
				removed(NULL, &e[i]);
		}
		free(e);
	}
	if (have_max) {
		int64_t left = vine_cache_trim(c, max, dry_run, removed, NULL);
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
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vine_cache c;
	char *cache = NULL;
	int64_t older = 0;
	uint64_t max = 0;
	int ch, dry_run = 0, have_older = 0, have_max = 0, rc = VINE_EXIT_OK;

	vine_cli_init(argv[0]);
	/* options may come before or after the command */
	while ((ch = getopt_long(argc, argv, "c:hn", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			free(cache);
			cache = vine_xstrdup(optarg);
			break;
		case 'h':
			usage(stdout);
			return VINE_EXIT_OK;
		case 'n':
			dry_run = 1;
			break;
		case 'o':
			if (vine_parse_age(optarg, &older) < 0)
				usage_error("--older-than", vine_errmsg());
			have_older = 1;
			break;
		case 'm':
			if (vine_parse_size(optarg, &max) < 0)
				usage_error("--max-size", vine_errmsg());
			have_max = 1;
			break;
		default:
			usage_error(NULL, NULL);
		}
	}
	if (argc - optind != 1)
		usage_error(NULL, NULL);
	const char *verb = argv[optind];
	if (!strcmp(verb, "list")) {
		if (dry_run || have_older || have_max)
			usage_error(NULL, NULL);
	} else if (!strcmp(verb, "prune")) {
		if (!have_older && !have_max)
			usage_error("prune", "say what to remove: --older-than AGE, --max-size SIZE or both");
	} else {
		vine_warn("'%s' is not a command (list, prune)", verb);
		usage_error(NULL, NULL);
	}
	if (!cache)
		cache = vine_default_cache();
	if (vine_cache_open(&c, cache) < 0)
		vine_die_lib(VINE_EXIT_FAIL);
	if (!strcmp(verb, "list"))
		list(&c);
	else
		rc = prune(&c, dry_run, older, have_older, max, have_max);
	vine_cache_close(&c);
	free(cache);
	return rc;
}
