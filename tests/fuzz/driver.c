/*
 * driver.c - run a harness without libFuzzer: feed it each FILE, and each
 * file in each DIRECTORY, once (the regression run of make check).  Every
 * input has VINE_FUZZ_TIMEOUT seconds (default 60) before the run is
 * killed as a hang.
 *
 *	fuzz-NAME [FILE|DIRECTORY]...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"

static unsigned timeout = 60, ran;

static int run_file(const char *path)
{
	char *data;
	size_t len;

	if (vine_read_file(path, (size_t)1 << 30, &data, &len) < 0) {
		fprintf(stderr, "%s\n", vine_errmsg());
		return -1;
	}
	/* the last one named is the culprit when the run dies */
	fprintf(stderr, "input: %s\n", path);
	alarm(timeout);
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	alarm(0);
	free(data);
	ran++;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (!d) {
		perror(dir);
		return -1;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			names = vine_xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = vine_xasprintf("%s/%s", dir, e->d_name);
		}
	closedir(d);
	/* in a fixed order, so a failure is the same failure every time */
	if (n)
		qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		if (run_file(names[i]) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *t = getenv("VINE_FUZZ_TIMEOUT");
	struct stat st;
	long long v;
	int rc = 0;

	if (t && *t) {
		if (vine_parse_llong(t, 1, 86400, &v) < 0) {
			fprintf(stderr, "VINE_FUZZ_TIMEOUT: %s\n", vine_errmsg());
			return 2;
		}
		timeout = (unsigned)v;
	}
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			rc = 1;
		} else if ((S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i])) < 0) {
			rc = 1;
		}
	}
	printf("%s: %u inputs run\n", argv[0], ran);
	return rc;
}
