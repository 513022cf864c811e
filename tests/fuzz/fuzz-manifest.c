/*
 * fuzz-manifest - the manifest parser (vine_manifest_parse) on any bytes as
 * .vine/manifest.json.  A manifest it accepts must have an absolute prefix
 * and only clean, relative, non-empty file names with no ".." in them, as
 * relocation opens them beneath the environment's root.
 */
#include <string.h>

#include "archive/relocate.h"
#include "util/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_manifest m;

	if (vine_manifest_parse((const char *)data, size, &m) < 0) {
		if (!*vine_errmsg())
			fz_fail("refused without a message");
		return 0;
	}
	if (!m.prefix || m.prefix[0] != '/' || m.entries < 0)
		fz_fail("accepted a bad prefix or entry count");
	for (size_t i = 0; i < m.n; i++) {
		const char *p = m.files[i].path;
		size_t len = strlen(p);
		if (!len || p[0] == '/' || p[len - 1] == '/' || strstr(p, "//") ||
		    !strcmp(p, "..") || !strncmp(p, "../", 3) || strstr(p, "/../") ||
		    (len >= 3 && !strcmp(p + len - 3, "/..")) || !strcmp(p, ".") ||
		    !strncmp(p, "./", 2) || strstr(p, "/./") || (len >= 2 && !strcmp(p + len - 2, "/.")))
			fz_fail("accepted the file name '%s'", p);
	}
	vine_manifest_free(&m);
	return 0;
}
