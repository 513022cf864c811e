/*
 * fuzz-extract - unpack any bytes as an archive and relocate the result,
 * as vine-seed does between fetching an object and publishing it:
 * vine_extract into an empty directory (two threads, hashing), then the
 * manifest's check and vine_relocate to a new prefix, then the directory
 * modes.  The directory is removed after each input.  Inputs of odd length
 * inflate every member as a stream (stream_min 1), even ones whole.
 *
 * Beyond not crashing: nothing may appear outside the directory (a file
 * planted beside it must stay the only other entry of the run's parent).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/extract.h"
#include "archive/relocate.h"
#include "util/fs.h"
#include "util/util.h"
#include "fuzz.h"

static char *top, *dir, *env;

/* What seed.c's finish_env does with an unpacked tree. */
static int finish(struct vine_tree *t, const struct vine_extract_stats *xs)
{
	struct vine_manifest m;
	int r = vine_manifest_load(vine_tree_root(t), &m);

	if (r < 0)
		return -1;
	if (r == 1) {
		if (xs->indexed && (xs->manifest_at != m.entries || (uint64_t)xs->manifest_at + 1 != xs->entries))
			r = vine_error("manifest not last");
		else
			r = vine_relocate(vine_tree_root(t), &m, env);
		vine_manifest_free(&m);
		if (r < 0)
			return -1;
	}
	if (vine_tree_put(t, ".vine/id", "0\n", 2, 0444) < 0)
		return -1;
	return vine_tree_finish(t);
}

/* Entries of top other than "x" (the run's directory) and "planted". */
static void check_outside(void)
{
	DIR *d = opendir(top);
	struct dirent *e;

	if (!d)
		fz_fail("cannot open '%s'", top);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "x") &&
		    strcmp(e->d_name, "planted"))
			fz_fail("'%s' appeared outside the unpack directory", e->d_name);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_extract_opts o = { .jobs = 2, .quiet = 1, .hash = 1, .copy_fd = -1,
				       .stream_min = size % 2 ? 1 : 0 };
	struct vine_extract_stats xs;
	struct vine_tree *t = NULL;
	int fd = fz_memfd(data, size);

	if (!top) {
		top = fz_path("t");
		dir = fz_path("t/x");
		/* the prefix relocated to: shorter than most seeds' */
		env = fz_path("t/x");
		char *planted = fz_path("t/planted");

		if (mkdir(top, 0700) < 0 || vine_write_file_atomic(planted, "", 0, 0600) < 0)
			fz_fail("cannot set up '%s'", top);
		free(planted);
	}
	if (mkdir(dir, 0700) < 0)
		fz_fail("cannot create '%s'", dir);
	if (vine_extract(&o, fd, size, dir, &t, &xs) == 0) {
		finish(t, &xs);
		vine_tree_free(t);
	} else if (!*vine_errmsg()) {
		fz_fail("refused without a message");
	}
	/* the tree's directories may have been given mode 0 */
	if (vine_rm_rf(dir) < 0)
		fz_fail("cannot remove '%s': %s", dir, vine_errmsg());
	check_outside();
	return 0;
}
