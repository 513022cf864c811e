/*
 * pack.c - vine-pack: a directory tree to one vine archive (see pack.h,
 * share/doc/archive-format.md).
 *
 * The tree is listed first (pack-walk.c), then each entry goes through
 * libarchive's pax_restricted writer, whose output is cut into gzip
 * members at entry boundaries (pack-gz.c).  With bytes_per_block 0 the
 * writer hands every byte to our callback at once, so when
 * archive_write_finish_entry returns the entry, padding included, is in
 * the current member and the next header may start a new one.  Every file
 * is read once: the same buffer feeds the tar stream and the search for
 * the prefix that fills the manifest.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/pack-int.h"
#include "archive/pack.h"
#include "util/progress.h"
#include "util/util.h"

#define READ_SIZE ((size_t)1 << 20)
/* entries larger than this many members are split into parallel blocks */
#define SPLIT_FACTOR 4

/* The temporary file, for vine_pack_signal_cleanup (one pack at a time). */
static char sig_tmp[PATH_MAX + 64];
static volatile sig_atomic_t sig_tmp_on;

void vine_pack_signal_cleanup(void)
{
	if (sig_tmp_on)
		unlink(sig_tmp);
}

struct packer {
	const struct vine_pack_opts *o;
	const char *display;        /* the directory as the user named it */
	const char *prefix;         /* its real path */
	int rootfd;
	struct pack_gz *gz;
	struct archive *a;
	struct archive_entry *ae;
	unsigned char *buf;
	size_t target;
	json_t *files;
	uint64_t entries, done;
	int64_t maxmtime;
	int cb_failed;
	struct vine_progress prog;
};

#define pwarn(p, ...) vine_msgf((p)->o->warn, (p)->o->warn_ctx, __VA_ARGS__)

static la_ssize_t tar_out(struct archive *a, void *ctx, const void *buf, size_t n)
{
	struct packer *p = ctx;

	if (pack_gz_write(p->gz, buf, n) < 0) {
		p->cb_failed = 1;
		archive_set_error(a, EIO, "%s", vine_errmsg());
		return -1;
	}
	return (la_ssize_t)n;
}

static int tar_error(struct packer *p, const char *path)
{
	if (p->cb_failed)
		return -1;  /* the message from the gzip writer stands */
	return vine_error("cannot archive '%s/%s': %s", p->display, path, archive_error_string(p->a));
}

static int utf8_ok(const char *s)
{
	json_t *j = json_string(s);  /* jansson refuses invalid UTF-8 */

	json_decref(j);
	return j != NULL;
}

static int has_suffix(const char *s, const char *sfx)
{
	size_t n = strlen(s), k = strlen(sfx);

	return n >= k && !strcmp(s + n - k, sfx);
}

/* Copy the open file's bytes into the tar stream, looking for the prefix. */
static int copy_data(struct packer *p, const struct pack_entry *e, int fd, off_t size,
		     struct pack_scan *scan)
{
	int look = !has_suffix(e->path, ".pyc") && !has_suffix(e->path, ".pyo");

	pack_scan_init(scan, p->prefix);
	if (size > (off_t)READ_SIZE)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (off_t left = size; left > 0;) {
		size_t want = left < (off_t)READ_SIZE ? (size_t)left : READ_SIZE;
		ssize_t n = vine_read_full(fd, p->buf, want);
		if (n < 0)
			return vine_error_errno("cannot read '%s/%s'", p->display, e->path);
		if (n == 0)
			return vine_error("'%s/%s' shrank while it was being packed", p->display, e->path);
		if (look && !pack_scan_done(scan))
			pack_scan_feed(scan, p->buf, (size_t)n);
		if (archive_write_data(p->a, p->buf, (size_t)n) != n)
			return tar_error(p, e->path);
		left -= n;
		p->done += (uint64_t)n;
		vine_progress_update(&p->prog, p->done, "B");
	}
	if (!look)
		scan->found = 0;
	return 0;
}

static int pack_one(struct packer *p, const struct pack_entry *e)
{
	struct archive_entry *ae = p->ae;
	struct pack_scan scan;
	struct timespec mtime = e->mtime;
	mode_t mode = e->mode;
	off_t size = 0;
	int fd = -1, split = 0, rc = -1;

	if (e->kind == PK_FILE) {
		struct stat st;
		fd = openat(p->rootfd, e->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return vine_error_errno("cannot open '%s/%s'", p->display, e->path);
		if (fstat(fd, &st) < 0) {
			vine_error_errno("cannot stat '%s/%s'", p->display, e->path);
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			vine_error("'%s/%s' changed while it was being packed", p->display, e->path);
			goto out;
		}
		size = st.st_size;
		mtime = st.st_mtim;
		mode = st.st_mode;
	}
	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, e->path);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, mtime.tv_sec, mtime.tv_nsec);
	archive_entry_set_perm(ae, mode & 07777);
	switch (e->kind) {
	case PK_DIR:
		archive_entry_set_filetype(ae, AE_IFDIR);
		break;
	case PK_SYMLINK:
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_copy_symlink(ae, e->link);
		break;
	case PK_HARDLINK:
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_copy_hardlink(ae, e->link);
		break;
	case PK_FILE:
		archive_entry_set_filetype(ae, AE_IFREG);
		break;
	}
	archive_entry_set_size(ae, size);
	if (mtime.tv_sec > p->maxmtime)
		p->maxmtime = mtime.tv_sec;

	/* members start at entry headers; a large entry is a member alone */
	uint64_t est = (uint64_t)size + 3 * 512 + strlen(e->path);
	split = (uint64_t)size > (uint64_t)SPLIT_FACTOR * p->target;
	if (split || (pack_gz_pending(p->gz) && pack_gz_pending(p->gz) + est > p->target))
		if (pack_gz_cut(p->gz, split) < 0)
			goto out;

	int r = archive_write_header(p->a, ae);
	if (r < ARCHIVE_WARN) {
		tar_error(p, e->path);
		goto out;
	}
	if (!utf8_ok(e->path))
		pwarn(p, "'%s/%s': name is not valid UTF-8", p->display, e->path);
	else if (r == ARCHIVE_WARN)
		pwarn(p, "'%s/%s': %s", p->display, e->path, archive_error_string(p->a));
	if (fd >= 0 && copy_data(p, e, fd, size, &scan) < 0)
		goto out;
	if (archive_write_finish_entry(p->a) < ARCHIVE_WARN) {
		tar_error(p, e->path);
		goto out;
	}
	p->entries++;
	if (split || pack_gz_pending(p->gz) >= p->target)
		if (pack_gz_cut(p->gz, 0) < 0)
			goto out;

	if (fd >= 0 && scan.found) {
		if (!utf8_ok(e->path)) {
			pwarn(p, "'%s/%s' embeds the directory's path but cannot be listed in the "
			      "manifest (name not UTF-8): it will not be relocated", p->display, e->path);
		} else {
			json_t *f = json_object();
			json_object_set_new(f, "path", json_string(e->path));
			json_object_set_new(f, "type", json_string(scan.nul ? "binary" : "text"));
			json_array_append_new(p->files, f);
		}
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int write_manifest(struct packer *p)
{
	json_t *root = json_object();
	struct vine_buf b = VINE_BUF_INIT;
	char *s;
	int rc = -1;

	json_object_set_new(root, "vine_manifest", json_integer(1));
	json_object_set_new(root, "prefix", json_string(p->prefix));
	json_object_set_new(root, "entries", json_integer((json_int_t)p->entries));
	json_object_set_new(root, "files", json_incref(p->files));
	s = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!s)
		return vine_error("cannot encode the manifest");
	vine_buf_addstr(&b, s);
	vine_buf_addstr(&b, "\n");
	free(s);

	archive_entry_clear(p->ae);
	archive_entry_copy_pathname(p->ae, VINE_MANIFEST_PATH);
	archive_entry_set_filetype(p->ae, AE_IFREG);
	archive_entry_set_perm(p->ae, 0644);
	archive_entry_set_uid(p->ae, 0);
	archive_entry_set_gid(p->ae, 0);
	/* no pack-time clock: the newest time in the tree */
	archive_entry_set_mtime(p->ae, p->maxmtime, 0);
	archive_entry_set_size(p->ae, (la_int64_t)b.len);
	if (pack_gz_pending(p->gz) && pack_gz_pending(p->gz) + b.len + 1536 > p->target &&
	    pack_gz_cut(p->gz, 0) < 0)
		goto out;
	if (archive_write_header(p->a, p->ae) < ARCHIVE_WARN ||
	    archive_write_data(p->a, b.data, b.len) != (la_ssize_t)b.len ||
	    archive_write_finish_entry(p->a) < ARCHIVE_WARN) {
		tar_error(p, VINE_MANIFEST_PATH);
		goto out;
	}
	rc = 0;
out:
	vine_buf_release(&b);
	return rc;
}

/* Everything from the first tar header to the index, into fd. */
static int pack_stream(struct packer *p, const struct pack_tree *t, int fd, const char *what,
		       int jobs, int level, struct vine_pack_result *r)
{
	struct pack_gz_result gr;
	int rc = -1;

	if (!(p->gz = pack_gz_new(fd, what, jobs, level, p->target)))
		return -1;
	p->a = archive_write_new();
	p->ae = archive_entry_new();
	p->buf = vine_xmalloc(READ_SIZE);
	p->files = json_array();
	if (archive_write_set_format_pax_restricted(p->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(p->a, 0) != ARCHIVE_OK ||
	    archive_write_open2(p->a, p, NULL, tar_out, NULL, NULL) != ARCHIVE_OK) {
		vine_error("cannot start the tar stream: %s", archive_error_string(p->a));
		goto out;
	}
	vine_progress_init(&p->prog, "packing", t->data_bytes, p->o->quiet);
	for (size_t i = 0; i < t->n; i++)
		if (pack_one(p, &t->e[i]) < 0)
			goto out;
	if (write_manifest(p) < 0)
		goto out;
	if (archive_write_close(p->a) != ARCHIVE_OK) {
		tar_error(p, "(end)");
		goto out;
	}
	if (pack_gz_finish(p->gz, &gr) < 0)
		goto out;
	memcpy(r->id, gr.id, sizeof(r->id));
	r->size = gr.size;
	r->members = gr.n;
	r->indexed = gr.indexed;
	r->entries = p->entries;
	r->relocatable = json_array_size(p->files);
	if (!gr.indexed)
		pwarn(p, "an entry is larger than %llu bytes: the archive has no index and "
		      "will be unpacked sequentially", (unsigned long long)VINE_MEMBER_MAX);
	rc = 0;
out:
	vine_progress_end(&p->prog);
	archive_write_free(p->a);
	archive_entry_free(p->ae);
	json_decref(p->files);
	free(p->buf);
	pack_gz_free(p->gz);
	return rc;
}

static char *strip_slashes(const char *s)
{
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		n--;
	return vine_xstrndup(s, n);
}

char *vine_pack_default_out(const char *dir)
{
	char *real = realpath(dir, NULL), *base, *out;

	if (!real) {
		vine_error_errno("cannot open '%s'", dir);
		return NULL;
	}
	base = strrchr(real, '/') + 1;
	if (!*base) {
		free(real);
		vine_error("no default output name for '%s': use -o", dir);
		return NULL;
	}
	out = vine_xasprintf("%s.tar.gz", base);
	free(real);
	return out;
}

static int inside(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (!strcmp(root, "/"))
		return 1;
	return !strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/');
}

/* Check the output before doing any work; fill *outdir with its
 * directory's real path. */
static int check_output(const struct vine_pack_opts *o, const char *out, const char *prefix,
			char **outdir)
{
	const char *slash = strrchr(out, '/');
	const char *base = slash ? slash + 1 : out;
	char *dir, *real;
	struct stat st;

	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return vine_error("'%s' is a directory", out);
	dir = slash ? vine_xstrndup(out, slash == out ? 1 : (size_t)(slash - out)) : vine_xstrdup(".");
	if (!(real = realpath(dir, NULL))) {
		vine_error_errno("cannot use output directory '%s'", dir);
		free(dir);
		return -1;
	}
	free(dir);
	if (inside(real, prefix)) {
		free(real);
		return vine_error("output '%s' is inside the directory being packed '%s'", out, o->dir);
	}
	if (lstat(out, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			free(real);
			return vine_error("'%s' is a directory", out);
		}
		/* -f replaces an archive, never a device node, FIFO or symlink */
		if (!S_ISREG(st.st_mode)) {
			free(real);
			return vine_error("'%s' is not a regular file: not replacing it", out);
		}
		if (!o->force) {
			free(real);
			return vine_error("'%s' exists (use -f to overwrite)", out);
		}
	}
	*outdir = real;
	return 0;
}

/* Create the temporary output next to out, registered for signals. */
static int make_temp(const char *out, char **tmp)
{
	const char *slash = strrchr(out, '/');
	const char *base = slash ? slash + 1 : out;
	char *t = vine_xasprintf("%.*s.%s" VINE_PACK_TMP_INFIX "XXXXXX",
				 slash ? (int)(slash - out + 1) : 0, out, base);
	int fd;

	if (strlen(t) >= sizeof(sig_tmp)) {
		free(t);
		return vine_error("output name '%s' is too long", out);
	}
	/* registered before it exists so that no signal can leave it behind */
	memcpy(sig_tmp, t, strlen(t) + 1);
	sig_tmp_on = 1;
	fd = mkostemp(sig_tmp, O_CLOEXEC);
	if (fd < 0) {
		sig_tmp_on = 0;
		vine_error_errno("cannot create a temporary file for '%s'", out);
		free(t);
		return -1;
	}
	memcpy(t, sig_tmp, strlen(t) + 1);
	*tmp = t;
	return fd;
}

/*
 * Move tmp to out, replacing out only if it is a regular file.  The
 * check and the replacement are one step: exchange the two, then look at
 * what came back, and exchange them again if it was not a regular file.
 */
static int replace_regular(const char *tmp, const char *out)
{
	struct stat st;

	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) < 0)
			return vine_error_errno("cannot rename '%s' to '%s'", tmp, out);
		if (lstat(tmp, &st) == 0 && S_ISREG(st.st_mode))
			return unlink(tmp) < 0 ? vine_error_errno("cannot remove '%s'", tmp) : 0;
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) < 0)
			return vine_error_errno("cannot put '%s' back from '%s'", out, tmp);
		return vine_error("'%s' is not a regular file: not replacing it", out);
	}
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return vine_error_errno("cannot rename '%s' to '%s'", tmp, out);
	/* no renameat2 flags here: check, then rename */
	if (lstat(out, &st) == 0 && !S_ISREG(st.st_mode))
		return vine_error("'%s' is not a regular file: not replacing it", out);
	if (rename(tmp, out) < 0)
		return vine_error_errno("cannot rename '%s' to '%s'", tmp, out);
	return 0;
}

/* Sync and close fd, then move tmp to out (refusing to replace it
 * unless force, and anything but a regular file even then). */
static int publish(int fd, const char *tmp, const char *out, int force)
{
	if (fchmod(fd, vine_umasked(0666)) < 0 || fsync(fd) < 0) {
		vine_error_errno("cannot write '%s'", tmp);
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return vine_error_errno("cannot write '%s'", tmp);
	if (force) {
		if (replace_regular(tmp, out) < 0)
			return -1;
		return vine_fsync_parent(out);
	}
	if (vine_publish(tmp, out, VINE_PUBLISH_SYNC | VINE_PUBLISH_NOREPLACE) < 0)
		return errno == EEXIST ? vine_error("'%s' exists (use -f to overwrite)", out) : -1;
	return 0;
}

static locale_t utf8_locale(void)
{
	/* names go into pax headers as UTF-8 whatever the user's locale */
	locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);

	return l ? l : newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
}

int vine_pack(const struct vine_pack_opts *o, struct vine_pack_result *r)
{
	struct packer p = { .o = o };
	struct pack_tree t = { 0 };
	struct stat st;
	char *display = NULL, *prefix = NULL, *logical = NULL, *out = NULL, *outdir = NULL;
	char *tmp = NULL;
	const char *prefixes[2];
	locale_t loc = (locale_t)0, old = (locale_t)0;
	int jobs = o->jobs, level = o->level ? o->level : VINE_PACK_LEVEL;
	int rootfd = -1, fd = -1, rc = -1;

	memset(r, 0, sizeof(*r));
	if (jobs <= 0) {
		int n = vine_online_cores();
		jobs = n > 1024 ? 1024 : n;
	}
	if (level < 1 || level > 12)
		return vine_error("compression level %d is not from 1 to 12", level);
	if (!o->dir || !*o->dir)
		return vine_error("no directory to pack");
	if (stat(o->dir, &st) < 0)
		return vine_error_errno("cannot open '%s'", o->dir);
	if (!S_ISDIR(st.st_mode))
		return vine_error("'%s' is not a directory", o->dir);
	display = strip_slashes(o->dir);
	if (!(prefix = realpath(o->dir, NULL))) {
		vine_error_errno("cannot open '%s'", o->dir);
		goto out;
	}
	if (!strcmp(prefix, "/")) {
		vine_error("refusing to pack the root directory");
		goto out;
	}
	if (!utf8_ok(prefix)) {
		vine_error("the path of '%s' is not valid UTF-8", o->dir);
		goto out;
	}
	/* links may also name the directory as the user reached it */
	prefixes[0] = prefix;
	if (display[0] == '/') {
		logical = vine_xstrdup(display);
	} else {
		char *cwd = getcwd(NULL, 0);
		if (cwd)
			logical = vine_xasprintf("%s/%s", cwd, display);
		free(cwd);
	}
	size_t nprefixes = 1;
	if (logical && strcmp(logical, prefix))
		prefixes[nprefixes++] = logical;

	if (!o->out) {
		if (!(out = vine_pack_default_out(o->dir)))
			goto out;
	} else {
		out = vine_xstrdup(o->out);
	}
	int to_stdout = !strcmp(out, "-");
	struct pack_walk_opts wo = {
		.display = display, .prefixes = prefixes, .nprefixes = nprefixes,
		.exclude = o->exclude, .nexclude = o->nexclude,
		.warn = o->warn, .warn_ctx = o->warn_ctx,
	};
	if (to_stdout) {
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
			wo.skip_dev = st.st_dev;
			wo.skip_ino = st.st_ino;
		}
	} else if (check_output(o, out, prefix, &outdir) < 0) {
		goto out;
	}

	if ((rootfd = open(prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		vine_error_errno("cannot open directory '%s'", o->dir);
		goto out;
	}
	if ((loc = utf8_locale()))
		old = uselocale(loc);
	wo.rootfd = rootfd;
	if (pack_walk(&wo, &t) < 0)
		goto out;

	if (to_stdout)
		fd = STDOUT_FILENO;
	else if ((fd = make_temp(out, &tmp)) < 0)
		goto out;
	vine_test_pause("pack-temp");
	p.display = display;
	p.prefix = prefix;
	p.rootfd = rootfd;
	p.target = o->member_size ? o->member_size : VINE_PACK_MEMBER_SIZE;
	if (pack_stream(&p, &t, fd, to_stdout ? "standard output" : out, jobs, level, r) < 0)
		goto out;
	if (!to_stdout) {
		int pfd = fd;
		fd = -1;
		vine_test_pause("pack-publish");
		if (publish(pfd, tmp, out, o->force) < 0)
			goto out;
		sig_tmp_on = 0;
		free(tmp);
		tmp = NULL;
		r->out = out;
		out = NULL;
	}
	rc = 0;
out:
	if (fd >= 0 && fd != STDOUT_FILENO)
		close(fd);
	if (tmp) {
		unlink(tmp);
		sig_tmp_on = 0;
		free(tmp);
	}
	if (loc) {
		uselocale(old);
		freelocale(loc);
	}
	if (rootfd >= 0)
		close(rootfd);
	pack_tree_release(&t);
	free(display);
	free(prefix);
	free(logical);
	free(out);
	free(outdir);
	return rc;
}

void vine_pack_result_release(struct vine_pack_result *r)
{
	free(r->out);
	r->out = NULL;
}
