/*
 * relocate.h - move an unpacked environment to its new prefix, as its
 * manifest (.vine/manifest.json, share/doc/archive-format.md) directs.
 *
 * Text files: every occurrence of the old prefix is replaced.  Binary
 * files: first, in an ELF file, every DT_RPATH/DT_RUNPATH entry under the
 * old prefix becomes $ORIGIN-relative (so it no longer depends on where
 * the tree lands); then each remaining occurrence is replaced inside its
 * NUL-terminated C string, the rest of the string moves and the freed
 * bytes become NULs, so no offset changes.  A string may grow into the
 * run of NULs that follows it when that run is at least VINE_PAD_MIN
 * bytes long (the padding conda leaves after its 255-byte placeholder),
 * keeping one NUL as its end; otherwise the new prefix must be no longer
 * than the old one (CPython's compiled-in prefix excepted, see
 * vine_relocate_binary_file).  vine_relocate_room() says how long a prefix
 * a file can take; vine-pack records the least of them in the manifest.
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
#define VINE_PAD_MIN 32        /* a NUL run this long after a string is padding */
#define VINE_ROOM_ANY SIZE_MAX /* vine_relocate_room: no limit */

struct vine_manifest_file {
	char *path;            /* cleaned, relative */
	int binary;
};

struct vine_manifest {
	char *prefix;
	int64_t entries;       /* tar entries before the manifest */
	size_t max_prefix;     /* longest new prefix; VINE_ROOM_ANY: none recorded */
	char *max_prefix_file; /* the file that sets it (NULL if none recorded) */
	size_t n;
	struct vine_manifest_file *files;
};

/* Parse and validate a manifest; 0, or -1 with a message. */
int vine_manifest_parse(const char *json, size_t len, struct vine_manifest *m);
/* Read rootfd's .vine/manifest.json: 1 loaded, 0 there is none, -1 error. */
int vine_manifest_load(int rootfd, struct vine_manifest *m);
void vine_manifest_free(struct vine_manifest *m);
/*
 * Read the manifest of the archive open on fd (size bytes) without
 * unpacking it: through the index, from the last data member.  1 loaded,
 * 0 the archive has no index or no manifest there, -1 error.
 */
int vine_manifest_peek(int fd, uint64_t size, struct vine_manifest *m);

/*
 * Relocate the tree at rootfd from m->prefix to prefix.  Checks first that
 * every binary file can take the new prefix, so nothing is half done
 * because of a long prefix.
 */
int vine_relocate(int rootfd, const struct vine_manifest *m, const char *prefix);

/* The pieces, for tests.  Text: replace every from by to, appending to out. */
void vine_relocate_text(const char *in, size_t len, const char *from, const char *to, struct vine_buf *out);
/* Binary, in place; returns the occurrences replaced, or -1 (and nothing
 * changed) if to does not fit in some string, padding included. */
long vine_relocate_binary(char *buf, size_t len, const char *from, const char *to);
/*
 * The same for the file at path (relative to the tree): in CPython's
 * runtime (libpython*.so*, libpython*.a, a pythonX.Y executable) a string
 * that is exactly from is its compiled-in PREFIX/EXEC_PREFIX, a fallback getpath
 * uses only when it cannot find the standard library from the executable:
 * replaced when to fits, else left as it was (and vine_relocate_room does
 * not count it).
 */
long vine_relocate_binary_file(char *buf, size_t len, const char *path, const char *from, const char *to);
/* Rewrite a too-long "#!" line at the start of b; returns 1 if it did. */
int vine_shebang_fix(struct vine_buf *b);

/*
 * ELF run paths.  Reads ELFCLASS32 and ELFCLASS64, either byte order,
 * through the program headers (PT_DYNAMIC, DT_STRTAB mapped by PT_LOAD),
 * as the dynamic loader does.  Returns 1 with the file offset and length
 * of every DT_RPATH and DT_RUNPATH string (*rp malloc'd), 0 when buf is
 * not ELF or has no dynamic section, -1 with a message for an ELF file it
 * cannot read (an unknown class or byte order, offsets out of the file).
 */
struct vine_elf_str {
	size_t off, len;       /* the string, in the file */
	size_t val;            /* its d_val, in the file */
	size_t base;           /* the string table, in the file */
	int width, big;        /* d_val's bytes, byte order */
};
int vine_elf_rpaths(const void *buf, size_t len, struct vine_elf_str **rp, size_t *n);

/*
 * Rewrite, in the file at path (relative to the tree) held in buf, every
 * run path entry that is from or under from to "$ORIGIN" plus the way
 * there from path's directory, when the new string fits in the old one.
 * The linker shares the tails of .dynstr strings (a symbol "inner" may be
 * the end of ".../lib/inner"), so the new string ends where the old one
 * did, with the same last component, and its d_val moves to its start.
 * Returns the strings rewritten, or -1 (unreadable ELF).
 */
long vine_relocate_rpaths(char *buf, size_t len, const char *path, const char *from);

/*
 * The longest new prefix the binary file at path (buf) can take once its
 * run paths are rewritten: VINE_ROOM_ANY when it does not constrain it.
 */
size_t vine_relocate_room(const char *buf, size_t len, const char *path, const char *from);

#endif
