/*
 * fs.h - files and directories, one home for each way vine touches them:
 * paths opened beneath a directory, files and directories made with an
 * exact mode (never by setting the umask, which races with other threads),
 * mkdir -p, rm -rf, and publishing a finished file or tree by rename.
 * Errors as everywhere in lib/: -1 (or NULL) with a message (util.h).
 */
#ifndef VINE_FS_H
#define VINE_FS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Normalise an archive path: drop leading "./", empty and "." components
 * and a trailing "/".  Returns a new string ("" for the root itself), or
 * NULL with a message for an absolute path, a ".." component or a path
 * that is too long.
 */
char *vine_path_clean(const char *path);

/*
 * Open path beneath the directory dirfd without following any symlink, in
 * its parents or at its end (flags as for openat; O_NOFOLLOW is added).
 * On failure errno tells a missing file (ENOENT).
 */
int vine_open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Called for each directory vine_open_dir_beneath creates (path[0..len)). */
typedef void (*vine_made_fn)(void *ctx, const char *path, size_t len);
/*
 * Open the directory path ("" for dirfd itself) beneath dirfd, never
 * through a symlink; with made, create missing components mode 0700 and
 * report each.  An fd (O_PATH where openat2 was used), or -1.
 */
int vine_open_dir_beneath(int dirfd, const char *path, vine_made_fn made, void *ctx);

/* For tests: never use openat2(), always walk component by component. */
extern int vine_fs_no_openat2;

/* The process's umask, read without changing it. */
mode_t vine_umask(void);
/* mode as the umask leaves it: what open(2) or mkdir(2) would give. */
mode_t vine_umasked(mode_t mode);
/*
 * mkostemp (O_CLOEXEC) and mkdtemp with the exact mode asked, whatever the
 * umask: the one way lib/ creates a file or directory with a given mode.
 * Pass vine_umasked(0666) for "as an ordinary file would be".  -1 or NULL
 * with errno set (nothing left behind); the caller words the message.
 */
int vine_mkstemp(char *tmpl, mode_t mode);
char *vine_mkdtemp(char *tmpl, mode_t mode);

/* mkdir -p; existing directories are fine. */
int vine_mkdir_p(const char *path, mode_t mode);
/*
 * rm -rf that never follows symlinks; a missing path is fine.  Iterative:
 * one directory open at a time and time linear in the tree, whatever its depth.
 */
int vine_rm_rf(const char *path);
/* fsync the directory that contains path. */
int vine_fsync_parent(const char *path);

/*
 * Publish tmp (a finished file or directory beside path) as path, by
 * rename.  Without VINE_PUBLISH_NOREPLACE it replaces what is there, a
 * non-empty directory too (swapped in atomically where the kernel can, the
 * old tree removed); with it, an existing path is an error with errno
 * EEXIST.  VINE_PUBLISH_SYNC fsyncs the directory afterwards.  On failure
 * tmp is left for the caller to remove.
 */
#define VINE_PUBLISH_NOREPLACE 1
#define VINE_PUBLISH_SYNC 2
int vine_publish(const char *tmp, const char *path, int flags);
/*
 * Publish a file atomically: write to a temporary file in the same
 * directory with the exact mode, fsync, vine_publish with
 * VINE_PUBLISH_SYNC.  The temporary file is removed on every failure path.
 */
int vine_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
