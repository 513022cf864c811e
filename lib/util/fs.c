/*
 * fs.c - files and directories: paths beneath a directory, modes without
 * touching the umask, mkdir -p, rm -rf, publishing by rename (see fs.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "util/util.h"

int vine_fs_no_openat2;

/* ---- paths beneath a directory ---- */

char *vine_path_clean(const char *path)
{
	struct vine_buf b = VINE_BUF_INIT;
	const char *p = path;

	if (*p == '/') {
		vine_error("'%s': absolute path", path);
		return NULL;
	}
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			vine_buf_release(&b);
			vine_error("'%s': path with a '..' component", path);
			return NULL;
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (b.len)
				vine_buf_add(&b, "/", 1);
			vine_buf_add(&b, p, n);
		}
		p += n + (s ? 1 : 0);
	}
	if (b.len >= PATH_MAX) {
		vine_buf_release(&b);
		vine_error("'%.100s...': path too long", path);
		return NULL;
	}
	return vine_buf_detach(&b, NULL);
}

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)flags, .mode = flags & O_CREAT ? mode : 0,
				.resolve = resolve };

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static int walk_error(int dirfd, const char *comp, const char *path)
{
	int err = errno;
	struct stat st;

	if (fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode))
			return vine_error("'%s': path passes through a symlink", path);
		if (!S_ISDIR(st.st_mode))
			return vine_error("'%s': a parent is not a directory", path);
	}
	errno = err;
	return vine_error_errno("cannot open '%s'", path);
}

int vine_open_dir_beneath(int dirfd, const char *path, vine_made_fn made, void *ctx)
{
	int fd, cur;

	if (!*path) {
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? vine_error_errno("cannot open '.'") : fd;
	}
	if (!__atomic_load_n(&vine_fs_no_openat2, __ATOMIC_RELAXED)) {
		fd = sys_openat2(dirfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
				 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
		if (fd >= 0)
			return fd;
		if (errno == ENOSYS || errno == EPERM || errno == E2BIG)
			__atomic_store_n(&vine_fs_no_openat2, 1, __ATOMIC_RELAXED);
		else if (errno != ENOENT && errno != EAGAIN && errno != EXDEV)
			return errno == ELOOP ? vine_error("'%s': path passes through a symlink", path)
			     : errno == ENOTDIR ? vine_error("'%s': a parent is not a directory", path)
			     : vine_error_errno("cannot open '%s'", path);
		else if (errno == ENOENT && !made)
			return vine_error_errno("cannot open '%s'", path);
	}
	/* the walk: one component at a time, none of them a symlink */
	cur = dirfd;
	char *copy = vine_xstrdup(path);
	for (char *p = copy, *s; p; p = s) {
		s = strchr(p, '/');
		if (s)
			*s++ = '\0';
		fd = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && made) {
			if (mkdirat(cur, p, 0700) == 0)
				made(ctx, path, s ? (size_t)(s - 1 - copy) : strlen(path));
			else if (errno != EEXIST) {
				vine_error_errno("cannot create directory '%.*s'",
						 (int)(s ? (size_t)(s - 1 - copy) : strlen(path)), path);
				goto fail;
			}
			fd = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			walk_error(cur, p, path);
			goto fail;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
	}
	free(copy);
	return cur;
fail:
	if (cur != dirfd)
		close(cur);
	free(copy);
	return -1;
}

int vine_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash ? vine_xstrndup(path, (size_t)(slash - path)) : vine_xstrdup("");
	const char *name = slash ? slash + 1 : path;
	int pfd = vine_open_dir_beneath(dirfd, parent, NULL, NULL), fd = -1, err = errno;

	if (pfd >= 0) {
		fd = openat(pfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		err = errno;
		if (fd < 0)
			errno == ELOOP ? vine_error("'%s' is a symlink", path)
				       : vine_error_errno("cannot open '%s'", path);
		close(pfd);
	}
	free(parent);
	errno = err; /* callers tell a missing file by ENOENT */
	return fd;
}

mode_t vine_umask(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	unsigned um;
	mode_t m;

	/* read it where the kernel shows it: setting it to read it races with other threads */
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Umask: %o", &um) == 1) {
			fclose(f);
			return (mode_t)um & 0777;
		}
	}
	if (f)
		fclose(f);
	m = umask(022);
	umask(m);
	return m;
}

/* ---- modes ---- */

mode_t vine_umasked(mode_t mode)
{
	return mode & ~vine_umask();
}

int vine_mkstemp(char *tmpl, mode_t mode)
{
	int fd = mkostemp(tmpl, O_CLOEXEC);

	if (fd < 0)
		return -1;
	/* the exact mode, whatever the umask: mkstemp made it 0600 */
	if (fchmod(fd, mode) < 0) {
		int err = errno;
		close(fd);
		unlink(tmpl);
		errno = err;
		return -1;
	}
	return fd;
}

char *vine_mkdtemp(char *tmpl, mode_t mode)
{
	if (!mkdtemp(tmpl))
		return NULL;
	if (chmod(tmpl, mode) < 0) {
		int err = errno;
		rmdir(tmpl);
		errno = err;
		return NULL;
	}
	return tmpl;
}

/* ---- trees ---- */

int vine_mkdir_p(const char *path, mode_t mode)
{
	char *p = vine_xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = vine_error_errno("cannot create directory '%s'", p);
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) < 0)
			rc = vine_error_errno("cannot create directory '%s'", path);
		else if (!S_ISDIR(st.st_mode))
			rc = vine_error("'%s' exists and is not a directory", path);
	}
	free(p);
	return rc;
}

/*
 * rm -rf without recursion: one directory open at a time, whatever the
 * depth (a tree deeper than the open-file limit is removed like any
 * other), and each entry visited a bounded number of times, so the time
 * is linear in the size of the tree. Going back up is through "..",
 * checked against the device and inode recorded on the way down, so a
 * directory moved while we work is an error, never a walk out of path.
 */
struct rm_level {
	dev_t dev;
	ino_t ino;
	long off; /* where to go on reading the parent */
};

/* Remove name in the directory open as dfd; one chmod of dfd on EACCES. */
static int rm_entry(int dfd, const char *name, int flags, int *chmodded)
{
	if (unlinkat(dfd, name, flags) == 0 || errno == ENOENT)
		return 0;
	if ((errno == EACCES || errno == EPERM) && !*chmodded) {
		*chmodded = 1;
		if (fchmod(dfd, 0700) == 0 && (unlinkat(dfd, name, flags) == 0 || errno == ENOENT))
			return 0;
	}
	return -1;
}

static int open_dir_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	/* an unreadable directory: make it ours, then once more */
	if (fd < 0 && errno == EACCES && fchmodat(dfd, name, 0700, 0) == 0)
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Read the directory open as fd from now on, in place of *d. */
static int swap_dir(DIR **d, int fd, const char *path)
{
	if (fd < 0)
		return vine_error_errno("cannot open a directory under '%s'", path);
	closedir(*d);
	if (!(*d = fdopendir(fd))) {
		close(fd);
		return vine_error_errno("cannot read a directory under '%s'", path);
	}
	return 0;
}

int vine_rm_rf(const char *path)
{
	struct stat st;
	struct rm_level *stack = NULL;
	size_t depth = 0, cap = 0, idle = 0;
	DIR *d = NULL;
	int rc = -1, dirty = 0, chmodded = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : vine_error_errno("cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return vine_error_errno("cannot remove '%s'", path);
		return 0;
	}
	int fd = open_dir_at(AT_FDCWD, path);
	if (fd < 0)
		return errno == ENOENT ? 0 : vine_error_errno("cannot open directory '%s'", path);
	if (!(d = fdopendir(fd))) {
		close(fd);
		return vine_error_errno("cannot read directory '%s'", path);
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				vine_error_errno("cannot read a directory under '%s'", path);
				goto out;
			}
			if (dirty) {
				/*
				 * Something changed under the cursor: read it all
				 * again, from a fresh open of "." (ext4 reads nothing
				 * after a rewind that follows a seek to the end).
				 */
				if (swap_dir(&d, openat(dirfd(d), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path) < 0)
					goto out;
				dirty = 0;
				continue;
			}
			if (depth == 0)
				break; /* path itself is empty */
			/* this directory is empty: back up, the parent removes it */
			int pfd = openat(dirfd(d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (pfd < 0 || fstat(pfd, &st) < 0) {
				vine_error_errno("cannot open a directory under '%s'", path);
				if (pfd >= 0)
					close(pfd);
				goto out;
			}
			depth--;
			if (st.st_dev != stack[depth].dev || st.st_ino != stack[depth].ino) {
				close(pfd);
				vine_error("cannot remove '%s': a directory in it moved while it was being removed", path);
				goto out;
			}
			if (swap_dir(&d, pfd, path) < 0)
				goto out;
			seekdir(d, stack[depth].off);
			dirty = 1;
			chmodded = 0;
			continue;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		dirty = 1;
		int isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				vine_error_errno("cannot stat '%s' under '%s'", de->d_name, path);
				goto out;
			}
			isdir = S_ISDIR(st.st_mode);
		}
		if (rm_entry(dirfd(d), de->d_name, isdir ? AT_REMOVEDIR : 0, &chmodded) == 0) {
			idle = 0;
			continue;
		}
		if (!isdir || (errno != ENOTEMPTY && errno != EEXIST)) {
			vine_error_errno("cannot remove '%s' under '%s'", de->d_name, path);
			goto out;
		}
		/* a directory with something in it: go down into it */
		if (fstat(dirfd(d), &st) < 0) {
			vine_error_errno("cannot stat a directory under '%s'", path);
			goto out;
		}
		if (depth == cap) {
			cap = cap ? 2 * cap : 64;
			stack = vine_xrealloc(stack, cap * sizeof(*stack));
		}
		stack[depth].dev = st.st_dev;
		stack[depth].ino = st.st_ino;
		stack[depth].off = telldir(d);
		int cfd = open_dir_at(dirfd(d), de->d_name);
		if (cfd < 0) {
			if (errno == ENOENT)
				continue;
			vine_error_errno("cannot open directory '%s' under '%s'", de->d_name, path);
			goto out;
		}
		depth++;
		/* going down more often than the depth explains, removing nothing */
		if (++idle > depth + 2) {
			close(cfd);
			vine_error("cannot remove '%s': a directory under it stays non-empty", path);
			goto out;
		}
		if (swap_dir(&d, cfd, path) < 0)
			goto out;
		dirty = 0;
		chmodded = 0;
	}
	closedir(d);
	d = NULL;
	if (rmdir(path) < 0 && errno != ENOENT) {
		vine_error_errno("cannot remove directory '%s'", path);
		goto out;
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	free(stack);
	return rc;
}

int vine_fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? (slash == path ? vine_xstrdup("/") : vine_xstrndup(path, (size_t)(slash - path)))
			  : vine_xstrdup(".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = vine_error_errno("cannot sync directory '%s'", dir);
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

int vine_publish(const char *tmp, const char *path, int flags)
{
	struct stat st;

	if (flags & VINE_PUBLISH_NOREPLACE) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			goto done;
		if (errno == EEXIST)
			return vine_error_errno("'%s' exists", path);
		if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
			return vine_error_errno("cannot rename '%s' to '%s'", tmp, path);
		/* no RENAME_NOREPLACE here: link(2) refuses to replace a file,
		 * rename(2) a non-empty directory */
		if (lstat(tmp, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (rename(tmp, path) < 0)
				return vine_error_errno("cannot rename '%s' to '%s'", tmp, path);
		} else if (link(tmp, path) < 0) {
			return errno == EEXIST ? vine_error_errno("'%s' exists", path)
					       : vine_error_errno("cannot link '%s' to '%s'", tmp, path);
		} else {
			unlink(tmp);
		}
		goto done;
	}
	if (rename(tmp, path) == 0)
		goto done;
	if (errno != EEXIST && errno != ENOTEMPTY)
		return vine_error_errno("cannot rename '%s' to '%s'", tmp, path);
	/* a directory over a non-empty one: swap them where the kernel can */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
		if (vine_rm_rf(tmp) < 0) /* tmp now holds the old tree */
			return -1;
		goto done;
	}
	if (vine_rm_rf(path) < 0)
		return -1;
	if (rename(tmp, path) < 0)
		return vine_error_errno("cannot rename '%s' to '%s'", tmp, path);
done:
	return flags & VINE_PUBLISH_SYNC ? vine_fsync_parent(path) : 0;
}

int vine_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = vine_xasprintf("%s.tmp.XXXXXX", path);
	int fd = vine_mkstemp(tmp, mode);

	if (fd < 0) {
		vine_error_errno("cannot create temporary file for '%s'", path);
		free(tmp);
		return -1;
	}
	if (vine_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		vine_error_errno("cannot write '%s'", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		vine_error_errno("cannot write '%s'", tmp);
		goto fail;
	}
	fd = -1;
	if (vine_publish(tmp, path, VINE_PUBLISH_SYNC) < 0)
		goto fail;
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}
