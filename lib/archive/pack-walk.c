/*
 * pack-walk.c - list a directory tree for vine-pack (see pack-int.h).
 *
 * One pass over the tree with lstat semantics gives every entry, sorted
 * bytewise by path (a directory sorts before its contents because its
 * path is a prefix of theirs).  Exclusions prune whole subtrees.  Only one
 * directory is open at a time, so depth is not limited by descriptors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/pack-int.h"
#include "util/util.h"
#include "archive/vformat.h"

struct walker {
	const struct pack_walk_opts *o;
	struct pack_entry *e;
	size_t n, cap;
};

#define warn(o, ...) vine_msgf((o)->warn, (o)->warn_ctx, __VA_ARGS__)

static int excluded(const struct pack_walk_opts *o, const char *rel, const char *name)
{
	for (size_t i = 0; i < o->nexclude; i++)
		if (fnmatch(o->exclude[i], rel, 0) == 0 || fnmatch(o->exclude[i], name, 0) == 0)
			return 1;
	return 0;
}

static char *read_link(int dirfd, const char *name, size_t hint)
{
	size_t cap = hint + 1 > 256 ? hint + 1 : 256;

	for (;;) {
		char *buf = vine_xmalloc(cap);
		ssize_t n = readlinkat(dirfd, name, buf, cap);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			return buf;
		}
		free(buf);
		cap *= 2;
	}
}

/* Split s at '/' into its non-empty components (pointers into a copy). */
static size_t components(char *s, char ***out)
{
	size_t n = 0, cap = 8;
	char **v = vine_xmalloc(cap * sizeof(*v));

	for (char *tok = s, *end; *tok; tok = end) {
		end = tok + strcspn(tok, "/");
		if (*end)
			*end++ = '\0';
		if (!*tok)
			continue;
		if (n == cap)
			v = vine_xrealloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = tok;
	}
	*out = v;
	return n;
}

char *pack_relative_link(const char *path, const char *rest)
{
	char *dir = vine_xstrdup(path), *tgt = vine_xstrdup(rest), *slash;
	char **d, **t;
	size_t nd, nt, k = 0;
	struct vine_buf b = VINE_BUF_INIT;

	/* the link's directory: path without its last component */
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	nd = components(dir, &d);
	nt = components(tgt, &t);
	while (k < nd && k < nt && !strcmp(d[k], t[k]) && strcmp(t[k], ".") && strcmp(t[k], ".."))
		k++;
	for (size_t i = k; i < nd; i++)
		vine_buf_addstr(&b, i > k ? "/.." : "..");
	for (size_t i = k; i < nt; i++) {
		if (b.len)
			vine_buf_addstr(&b, "/");
		vine_buf_addstr(&b, t[i]);
	}
	if (!b.len)
		vine_buf_addstr(&b, ".");
	free(d);
	free(t);
	free(dir);
	free(tgt);
	return vine_buf_detach(&b, NULL);
}

/* Does the relative target of the link at path stay inside the root? */
static int stays_inside(const char *path, const char *target)
{
	char *t = vine_xstrdup(target), **c;
	long depth = 0;
	size_t n;
	int inside = 1;

	for (const char *p = path; *p; p++)
		depth += *p == '/';
	n = components(t, &c);
	for (size_t i = 0; i < n && inside; i++) {
		if (!strcmp(c[i], ".."))
			inside = --depth >= 0;
		else if (strcmp(c[i], "."))
			depth++;
	}
	free(c);
	free(t);
	return inside;
}

/* An absolute target into the root becomes relative; others are kept. */
static char *fix_link(const struct pack_walk_opts *o, const char *rel, char *target)
{
	if (target[0] != '/') {
		if (!stays_inside(rel, target))
			warn(o, "symlink '%s/%s' leads outside the directory: '%s'", o->display, rel, target);
		return target;
	}
	for (size_t i = 0; i < o->nprefixes; i++) {
		const char *p = o->prefixes[i];
		size_t plen = strlen(p);
		if (plen == 1)  /* the root is "/": everything is inside */
			plen = 0;
		if (!strncmp(target, p, plen) && (target[plen] == '\0' || target[plen] == '/')) {
			char *r = pack_relative_link(rel, target + plen);
			free(target);
			return r;
		}
	}
	warn(o, "symlink '%s/%s' leads outside the directory: '%s'", o->display, rel, target);
	return target;
}

static struct pack_entry *add(struct walker *w, char *rel, const struct stat *st, enum pack_kind k)
{
	struct pack_entry *e;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->e = vine_xrealloc(w->e, w->cap * sizeof(*w->e));
	}
	e = &w->e[w->n++];
	memset(e, 0, sizeof(*e));
	e->path = rel;
	e->kind = k;
	e->mode = st->st_mode;
	e->size = k == PK_FILE ? st->st_size : 0;
	e->mtime = st->st_mtim;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->nlink = st->st_nlink;
	return e;
}

static const char *special_kind(mode_t m)
{
	if (S_ISSOCK(m))
		return "socket";
	if (S_ISFIFO(m))
		return "fifo";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "device";
	return "special file";
}

static int walk_dir(struct walker *w, const char *rel)
{
	const struct pack_walk_opts *o = w->o;
	int fd = openat(o->rootfd, rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char **subdirs = NULL;
	size_t nsub = 0, capsub = 0;
	struct dirent *de;
	DIR *d;
	int rc = -1;

	if (fd < 0)
		return vine_error_errno("cannot open directory '%s%s%s'", o->display, rel ? "/" : "",
					rel ? rel : "");
	if (!(d = fdopendir(fd))) {
		close(fd);
		return vine_error_errno("cannot read directory '%s/%s'", o->display, rel);
	}
	for (;;) {
		struct stat st;
		char *child;

		errno = 0;
		if (!(de = readdir(d))) {
			if (errno) {
				vine_error_errno("cannot read directory '%s%s%s'", o->display,
						 rel ? "/" : "", rel ? rel : "");
				goto out;
			}
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		child = rel ? vine_xasprintf("%s/%s", rel, de->d_name) : vine_xstrdup(de->d_name);
		if (excluded(o, child, de->d_name)) {
			free(child);
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			vine_error_errno("cannot stat '%s/%s'", o->display, child);
			free(child);
			goto out;
		}
		if ((o->skip_dev || o->skip_ino) && st.st_dev == o->skip_dev && st.st_ino == o->skip_ino) {
			vine_error("the output '%s/%s' is inside the directory being packed",
				   o->display, child);
			free(child);
			goto out;
		}
		if (!strcmp(child, VINE_MANIFEST_PATH)) {
			warn(o, "skipping '%s/%s': vine-pack writes its own", o->display, child);
			free(child);
			continue;
		}
		switch (st.st_mode & S_IFMT) {
		case S_IFDIR:
			add(w, child, &st, PK_DIR);
			if (nsub == capsub) {
				capsub = capsub ? capsub * 2 : 16;
				subdirs = vine_xrealloc(subdirs, capsub * sizeof(*subdirs));
			}
			subdirs[nsub++] = child;
			break;
		case S_IFREG:
			add(w, child, &st, PK_FILE);
			break;
		case S_IFLNK: {
			char *t = read_link(dirfd(d), de->d_name, (size_t)st.st_size);
			if (!t) {
				vine_error_errno("cannot read symlink '%s/%s'", o->display, child);
				free(child);
				goto out;
			}
			add(w, child, &st, PK_SYMLINK)->link = fix_link(o, child, t);
			break;
		}
		default:
			warn(o, "skipping %s '%s/%s'", special_kind(st.st_mode), o->display, child);
			free(child);
			break;
		}
	}
	closedir(d);
	d = NULL;
	for (size_t i = 0; i < nsub; i++)
		if (walk_dir(w, subdirs[i]) < 0)
			goto out;
	rc = 0;
out:
	if (d)
		closedir(d);
	free(subdirs);  /* the names belong to the entries */
	return rc;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct pack_entry *)a)->path, ((const struct pack_entry *)b)->path);
}

static int by_inode(const void *a, const void *b, void *base)
{
	const struct pack_entry *e = base;
	const struct pack_entry *x = &e[*(const size_t *)a], *y = &e[*(const size_t *)b];

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* The first name (in path order) of an inode keeps the data; the others
 * become hard links to it. */
static void find_hardlinks(struct pack_tree *t)
{
	size_t *v = vine_xmalloc((t->n ? t->n : 1) * sizeof(*v)), nv = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].kind == PK_FILE && t->e[i].nlink > 1)
			v[nv++] = i;
	qsort_r(v, nv, sizeof(*v), by_inode, t->e);
	for (size_t i = 0; i < nv;) {
		const struct pack_entry *first = &t->e[v[i]];
		size_t j = i + 1;
		for (; j < nv && t->e[v[j]].dev == first->dev && t->e[v[j]].ino == first->ino; j++) {
			struct pack_entry *e = &t->e[v[j]];
			e->kind = PK_HARDLINK;
			e->link = vine_xstrdup(first->path);
			e->size = 0;
		}
		i = j;
	}
	free(v);
}

int pack_walk(const struct pack_walk_opts *o, struct pack_tree *t)
{
	struct walker w = { .o = o };

	memset(t, 0, sizeof(*t));
	if (walk_dir(&w, NULL) < 0) {
		t->e = w.e;
		t->n = w.n;
		pack_tree_release(t);
		return -1;
	}
	t->e = w.e;
	t->n = w.n;
	if (t->n)
		qsort(t->e, t->n, sizeof(*t->e), by_path);
	find_hardlinks(t);
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].kind == PK_FILE)
			t->data_bytes += (uint64_t)t->e[i].size;
	return 0;
}

void pack_tree_release(struct pack_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].link);
	}
	free(t->e);
	memset(t, 0, sizeof(*t));
}

void pack_scan_init(struct pack_scan *s, const char *needle)
{
	memset(s, 0, sizeof(*s));
	s->needle = needle;
	s->nlen = strlen(needle);
	if (s->nlen > sizeof(s->carry) / 2)
		s->nlen = 0;  /* longer than any path: cannot occur */
}

void pack_scan_feed(struct pack_scan *s, const void *p, size_t n)
{
	const unsigned char *b = p;

	if (!s->nul && memchr(b, 0, n))
		s->nul = 1;
	if (s->found || s->nlen == 0 || n == 0)
		return;
	/* an occurrence that straddles the previous piece and this one */
	if (s->carrylen) {
		size_t k = n < s->nlen - 1 ? n : s->nlen - 1, tl = s->carrylen + k;
		memcpy(s->carry + s->carrylen, b, k);
		if (memmem(s->carry, tl, s->needle, s->nlen)) {
			s->found = 1;
			return;
		}
		if (k == n) {
			/* all of this piece is in the carry now: keep its tail */
			size_t keep = tl < s->nlen - 1 ? tl : s->nlen - 1;
			memmove(s->carry, s->carry + tl - keep, keep);
			s->carrylen = keep;
			return;
		}
	}
	if (memmem(b, n, s->needle, s->nlen)) {
		s->found = 1;
		return;
	}
	size_t keep = n < s->nlen - 1 ? n : s->nlen - 1;
	memcpy(s->carry, b + n - keep, keep);
	s->carrylen = keep;
}

int pack_scan_done(const struct pack_scan *s)
{
	return s->found && s->nul;
}
