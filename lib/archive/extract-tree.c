/*
 * extract-tree.c - the entry writer (one per thread: files written beneath
 * the staging root, directory and link records kept for the end) and the
 * tree it leaves: links made in archive order, directory modes and times
 * set deepest first (see extract.h, extract-int.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/extract-int.h"
#include "util/util.h"

void extract_writer_init(struct writer *w, int root, mode_t um, uint64_t *progress, int *failed)
{
	memset(w, 0, sizeof(*w));
	w->root = root;
	w->umask = um;
	w->cfd = -1;
	w->manifest_at = -1;
	w->progress = progress;
	w->failed = failed;
	w->total = &w->own_total;
}

void extract_writer_release(struct writer *w)
{
	if (w->cfd >= 0)
		close(w->cfd);
	free(w->cpath);
	for (size_t i = 0; i < w->nd; i++)
		free(w->dirs[i].path);
	free(w->dirs);
	for (size_t i = 0; i < w->nl; i++) {
		free(w->links[i].path);
		free(w->links[i].target);
	}
	free(w->links);
	memset(w, 0, sizeof(*w));
	w->cfd = -1;
}

static void add_dir(struct writer *w, const char *path, size_t len, mode_t mode,
		    const struct timespec *mtime, int explicit)
{
	if (w->nd == w->ad) {
		w->ad = w->ad ? 2 * w->ad : 64;
		w->dirs = vine_xrealloc(w->dirs, w->ad * sizeof(*w->dirs));
	}
	struct dirrec *d = &w->dirs[w->nd++];
	d->path = vine_xstrndup(path, len);
	d->mode = mode;
	d->mtime = mtime ? *mtime : (struct timespec){ 0, UTIME_OMIT };
	d->explicit = explicit;
	d->seq = w->seq;
}

static void made_dir(void *ctx, const char *path, size_t len)
{
	struct writer *w = ctx;

	add_dir(w, path, len, 0755 & ~w->umask, NULL, 0);
}

/* The fd of the parent directory of path (made as needed); *name gets the last component. */
static int parent_fd(struct writer *w, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;

	*name = slash ? slash + 1 : path;
	if (w->cfd >= 0 && strlen(w->cpath) == plen && !memcmp(w->cpath, path, plen))
		return w->cfd;
	if (w->cfd >= 0)
		close(w->cfd);
	free(w->cpath);
	w->cpath = vine_xstrndup(path, plen);
	w->cfd = vine_open_dir_beneath(w->root, w->cpath, made_dir, w);
	return w->cfd;
}

static const char *entry_path(struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);

	return p ? p : archive_entry_pathname_utf8(e);
}

static int write_data(struct writer *w, struct archive *a, int fd, const char *path, int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int64_t end = 0;
	int r;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (len && vine_pwrite_full(fd, buf, len, (off_t)off) < 0)
			return vine_error_errno("cannot write '%s'", path);
		if ((int64_t)(off + (la_int64_t)len) > end)
			end = off + (la_int64_t)len;
		w->bytes += len;
		if (w->progress)
			__atomic_add_fetch(w->progress, len, __ATOMIC_RELAXED);
	}
	if (r != ARCHIVE_EOF)
		return vine_error("cannot read '%s' from the archive: %s", path, archive_error_string(a));
	/* a sparse file ends in a hole */
	if (size > end && ftruncate(fd, (off_t)size) < 0)
		return vine_error_errno("cannot write '%s'", path);
	return 0;
}

static int write_file(struct writer *w, struct archive *a, struct archive_entry *e, const char *path)
{
	const char *name;
	int pfd = parent_fd(w, path, &name);
	mode_t mode = archive_entry_perm(e) & 0777, cmode = mode & ~w->umask;
	struct timespec ts[2];
	int fd, rc = -1;

	if (pfd < 0)
		return -1;
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, cmode);
	if (fd < 0)
		return errno == EEXIST ? vine_error("'%s' appears twice in the archive", path)
				       : vine_error_errno("cannot create '%s'", path);
	if (write_data(w, a, fd, path, archive_entry_size(e)) < 0)
		goto out;
	if (cmode != mode && fchmod(fd, mode) < 0) {
		vine_error_errno("cannot set the mode of '%s'", path);
		goto out;
	}
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	ts[0] = ts[1];
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	}
	if (futimens(fd, ts) < 0) {
		vine_error_errno("cannot set the times of '%s'", path);
		goto out;
	}
	rc = 0;
out:
	if (close(fd) < 0 && rc == 0)
		rc = vine_error_errno("cannot write '%s'", path);
	return rc;
}

static int write_dir(struct writer *w, struct archive_entry *e, const char *path)
{
	struct timespec mt = { archive_entry_mtime(e), archive_entry_mtime_nsec(e) };
	const char *name;
	struct stat st;

	if (*path) {
		int pfd = parent_fd(w, path, &name);
		if (pfd < 0)
			return -1;
		if (mkdirat(pfd, name, 0700) < 0) {
			if (errno != EEXIST)
				return vine_error_errno("cannot create directory '%s'", path);
			if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
				return vine_error("'%s' appears twice in the archive", path);
		}
	}
	/* the root's mode is the cache's business, not the archive's ("." entries) */
	if (*path)
		add_dir(w, path, strlen(path), archive_entry_perm(e) & 01777, &mt, 1);
	return 0;
}

static void add_link(struct writer *w, const char *path, const char *target, int hard)
{
	if (w->nl == w->al) {
		w->al = w->al ? 2 * w->al : 16;
		w->links = vine_xrealloc(w->links, w->al * sizeof(*w->links));
	}
	struct linkrec *l = &w->links[w->nl++];
	l->path = vine_xstrdup(path);
	l->target = vine_xstrdup(target);
	l->hard = hard;
	l->seq = w->seq;
}

static int write_entry(struct writer *w, struct archive *a, struct archive_entry *e)
{
	const char *raw = entry_path(e), *hl = archive_entry_hardlink(e);
	char *path;
	int rc = 0;

	if (!raw)
		return vine_error("archive entry with an unreadable name");
	if (!(path = vine_path_clean(raw)))
		return -1;
	/* every entry costs memory until the end (directory and link records) */
	if (__atomic_add_fetch(w->total, 1, __ATOMIC_RELAXED) > VINE_EXTRACT_ENTRIES_MAX) {
		free(path);
		return vine_error("more than %d entries: over the limit", VINE_EXTRACT_ENTRIES_MAX);
	}
	if (w->entries++ == 1)
		vine_test_pause("unpack"); /* one entry unpacked by this thread, more to come */
	if (!strcmp(path, VINE_MANIFEST_PATH))
		w->manifest_at = (int64_t)w->seq;
	if (hl) {
		char *t = vine_path_clean(hl);
		if (!t)
			rc = vine_error_prefix("hard link '%s' points outside the archive", path);
		else if (!*path || !*t)
			rc = vine_error("hard link '%s': invalid name", raw);
		else
			add_link(w, path, t, 1);
		free(t);
		goto out;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		rc = !*path ? vine_error("'%s': a file cannot be the root", raw) : write_file(w, a, e, path);
		break;
	case AE_IFDIR:
		rc = write_dir(w, e, path);
		break;
	case AE_IFLNK:
		if (!*path || !archive_entry_symlink(e))
			rc = vine_error("symlink '%s': invalid entry", raw);
		else
			add_link(w, path, archive_entry_symlink(e), 0);
		break;
	default:
		rc = vine_error("'%s': device nodes, fifos and sockets are not allowed", path);
	}
out:
	free(path);
	w->seq++;
	return rc;
}

/* Read every entry of an open archive. */
int extract_write_all(struct writer *w, struct archive *a, const char *what)
{
	struct archive_entry *e;
	int r;

	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (__atomic_load_n(w->failed, __ATOMIC_RELAXED))
			return -1;
		if (write_entry(w, a, e) < 0)
			return -1;
	}
	if (r != ARCHIVE_EOF)
		return vine_error("%s: %s", what, archive_error_string(a));
	return 0;
}

/* ---- links, made after every file, in archive order ---- */

static int cmp_link(const void *a, const void *b)
{
	const struct linkrec *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int extract_make_links(struct writer *w, struct linkrec *l, size_t n)
{
	if (n)
		qsort(l, n, sizeof(*l), cmp_link);
	for (size_t i = 0; i < n; i++) {
		const char *name, *tname;
		int pfd = parent_fd(w, l[i].path, &name);
		if (pfd < 0)
			return -1;
		if (!l[i].hard) {
			if (symlinkat(l[i].target, pfd, name) < 0)
				return errno == EEXIST ? vine_error("'%s' appears twice in the archive", l[i].path)
						       : vine_error_errno("cannot create symlink '%s'", l[i].path);
			continue;
		}
		const char *slash = strrchr(l[i].target, '/');
		char *tdir = slash ? vine_xstrndup(l[i].target, (size_t)(slash - l[i].target)) : vine_xstrdup("");
		struct stat st;
		int tfd = vine_open_dir_beneath(w->root, tdir, NULL, NULL), rc = 0;
		free(tdir);
		tname = slash ? slash + 1 : l[i].target;
		if (tfd < 0)
			rc = vine_error_prefix("hard link '%s'", l[i].path);
		else if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = vine_error("hard link '%s': target '%s' is not in the archive", l[i].path, l[i].target);
		else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			rc = vine_error("hard link '%s': target '%s' is not a file", l[i].path, l[i].target);
		else if (linkat(tfd, tname, pfd, name, 0) < 0)
			rc = errno == EEXIST ? vine_error("'%s' appears twice in the archive", l[i].path)
					     : vine_error_errno("cannot create hard link '%s'", l[i].path);
		if (tfd >= 0)
			close(tfd);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- the tree: the writers' records merged, then finished ---- */

void extract_writer_merge(struct writer *to, struct writer *from)
{
	to->dirs = vine_xrealloc(to->dirs, (to->nd + from->nd + 1) * sizeof(*to->dirs));
	if (from->nd)
		memcpy(to->dirs + to->nd, from->dirs, from->nd * sizeof(*from->dirs));
	to->nd += from->nd;
	to->ad = to->nd + 1;
	to->links = vine_xrealloc(to->links, (to->nl + from->nl + 1) * sizeof(*to->links));
	if (from->nl)
		memcpy(to->links + to->nl, from->links, from->nl * sizeof(*from->links));
	to->nl += from->nl;
	to->al = to->nl + 1;
	to->entries += from->entries;
	to->bytes += from->bytes;
	from->nd = from->nl = 0;
}

int vine_tree_root(const struct vine_tree *t)
{
	return t->w.root;
}

void vine_tree_free(struct vine_tree *t)
{
	if (!t)
		return;
	if (t->w.root >= 0)
		close(t->w.root);
	extract_writer_release(&t->w);
	free(t);
}

int vine_tree_put(struct vine_tree *t, const char *path, const void *data, size_t len, mode_t mode)
{
	const char *name;
	int pfd = parent_fd(&t->w, path, &name), fd;

	if (pfd < 0)
		return -1;
	if (unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		return vine_error_errno("cannot replace '%s'", path);
	fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return vine_error_errno("cannot create '%s'", path);
	return vine_write_close(fd, path, data, len);
}

static int cmp_dir(const void *a, const void *b)
{
	const struct dirrec *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	if (x->explicit != y->explicit)
		return x->explicit - y->explicit;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort the directory records; two from the archive for one path is a duplicate. */
int extract_check_dirs(struct writer *w)
{
	if (w->nd)
		qsort(w->dirs, w->nd, sizeof(*w->dirs), cmp_dir);
	for (size_t i = 1; i < w->nd; i++)
		if (w->dirs[i].explicit && w->dirs[i - 1].explicit && !strcmp(w->dirs[i].path, w->dirs[i - 1].path))
			return vine_error("'%s' appears twice in the archive", w->dirs[i].path);
	return 0;
}

int vine_tree_finish(struct vine_tree *t)
{
	struct writer *w = &t->w;

	if (w->cfd >= 0) {
		close(w->cfd);
		w->cfd = -1;
	}
	if (w->nd)
		qsort(w->dirs, w->nd, sizeof(*w->dirs), cmp_dir);
	/* deepest first, so a read-only parent does not stop its children */
	for (size_t i = w->nd; i-- > 0;) {
		struct dirrec *d = &w->dirs[i];
		if (i + 1 < w->nd && !strcmp(d->path, w->dirs[i + 1].path))
			continue; /* the sorted order puts the record that wins last */
		int fd = *d->path ? vine_open_beneath(w->root, d->path, O_RDONLY | O_DIRECTORY, 0)
				  : fcntl(w->root, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return vine_error_prefix("cannot set the mode of '%s'", d->path);
		struct timespec ts[2] = { d->mtime, d->mtime };
		int rc = 0;
		if (fchmod(fd, d->mode) < 0 || futimens(fd, ts) < 0)
			rc = vine_error_errno("cannot set the mode of '%s'", d->path);
		close(fd);
		if (rc < 0)
			return -1;
	}
	return 0;
}
