/*
 * relocate.h - move an unpacked environment to its new prefix, as its
 * manifest (.vine/manifest.json, share/doc/archive-format.md) directs.
 *
 * Text files: every occurrence of the old prefix is replaced.  Binary
 * files: each occurrence is replaced inside its NUL-terminated C string,
 * the rest of the string moves up and the freed bytes become NULs, so no
 * offset changes; the new prefix must be no longer than the old one.
 * A "#!" line that ends up longer than 127 bytes is rewritten (a Python
 * interpreter: pip's /bin/sh trampoline; anything else: /usr/bin/env).
 * Modes and times of the files are restored; a file with several names
 * is rewritten once.
 */
#ifndef VINE_RELOCATE_H
#define VINE_RELOCATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define VINE_SHEBANG_MAX 127

struct vine_manifest_file {
	char *path;            /* cleaned, relative */
	int binary;
};

struct vine_manifest {
	char *prefix;
	int64_t entries;       /* tar entries before the manifest */
	size_t n;
	struct vine_manifest_file *files;
};

/* Parse and validate a manifest; 0, or -1 with a message. */
int vine_manifest_parse(const char *json, size_t len, struct vine_manifest *m);
/* Read rootfd's .vine/manifest.json: 1 loaded, 0 there is none, -1 error. */
int vine_manifest_load(int rootfd, struct vine_manifest *m);
void vine_manifest_free(struct vine_manifest *m);

/*
 * Relocate the tree at rootfd from m->prefix to prefix.  Checks first that
 * every binary file can take the new prefix, so nothing is half done
 * because of a long prefix.
 */
int vine_relocate(int rootfd, const struct vine_manifest *m, const char *prefix);

/* The pieces, for tests.  Text: replace every from by to, appending to out. */
void vine_relocate_text(const char *in, size_t len, const char *from, const char *to, struct vine_buf *out);
/* Binary, in place; returns the occurrences replaced, or -1 if to is longer than from. */
long vine_relocate_binary(char *buf, size_t len, const char *from, const char *to);
/* Rewrite a too-long "#!" line at the start of b; returns 1 if it did. */
int vine_shebang_fix(struct vine_buf *b);

#endif
