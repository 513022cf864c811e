/*
 * relocate.c - rewrite the old prefix in an unpacked tree (see relocate.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "archive/extract.h"
#include "archive/relocate.h"
#include "archive/vformat.h"

#define MANIFEST_MAX ((size_t)64 << 20)

void vine_manifest_free(struct vine_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->prefix);
	memset(m, 0, sizeof(*m));
}

int vine_manifest_parse(const char *data, size_t len, struct vine_manifest *m)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr), *v, *files;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (!root)
		return vine_error("invalid manifest: line %d: %s", jerr.line, jerr.text);
	if (!json_is_object(root)) {
		vine_error("invalid manifest: not a JSON object");
		goto out;
	}
	v = json_object_get(root, "vine_manifest");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		vine_error("invalid manifest: \"vine_manifest\" is not 1");
		goto out;
	}
	v = json_object_get(root, "prefix");
	if (!json_is_string(v) || json_string_value(v)[0] != '/' || json_string_length(v) < 2 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		vine_error("invalid manifest: \"prefix\" is not an absolute path");
		goto out;
	}
	m->prefix = vine_xstrdup(json_string_value(v));
	v = json_object_get(root, "entries");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		vine_error("invalid manifest: \"entries\" is not a count");
		goto out;
	}
	m->entries = json_integer_value(v);
	files = json_object_get(root, "files");
	if (!json_is_array(files)) {
		vine_error("invalid manifest: \"files\" is not a list");
		goto out;
	}
	m->files = vine_xcalloc(json_array_size(files), sizeof(*m->files));
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i), *p = json_object_get(f, "path"),
		       *t = json_object_get(f, "type");
		const char *type = json_string_value(t);
		if (!json_is_string(p) || !type || (strcmp(type, "text") && strcmp(type, "binary"))) {
			vine_error("invalid manifest: file %zu needs a \"path\" and a \"type\" (text or binary)", i);
			goto out;
		}
		char *path = vine_path_clean(json_string_value(p));
		if (!path || !*path || strlen(json_string_value(p)) != json_string_length(p)) {
			if (path)
				vine_error("'%s': not a file name", json_string_value(p));
			free(path);
			vine_error_prefix("invalid manifest");
			goto out;
		}
		m->files[m->n].path = path;
		m->files[m->n++].binary = !strcmp(type, "binary");
	}
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		vine_manifest_free(m);
	return rc;
}

int vine_manifest_load(int rootfd, struct vine_manifest *m)
{
	int fd = vine_open_beneath(rootfd, VINE_MANIFEST_PATH, O_RDONLY, 0);
	struct stat st;
	char *data;
	ssize_t got;
	int rc;

	memset(m, 0, sizeof(*m));
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MANIFEST_MAX) {
		close(fd);
		return vine_error("'%s' is not a regular file of at most %zu bytes", VINE_MANIFEST_PATH,
				  MANIFEST_MAX);
	}
	data = vine_xmalloc((size_t)st.st_size + 1);
	got = vine_read_full(fd, data, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		free(data);
		return vine_error_errno("cannot read '%s'", VINE_MANIFEST_PATH);
	}
	rc = vine_manifest_parse(data, (size_t)got, m);
	free(data);
	return rc < 0 ? -1 : 1;
}

void vine_relocate_text(const char *in, size_t len, const char *from, const char *to, struct vine_buf *out)
{
	size_t fl = strlen(from), tl = strlen(to);
	const char *p = in, *end = in + len, *hit;

	while ((hit = memmem(p, (size_t)(end - p), from, fl))) {
		vine_buf_add(out, p, (size_t)(hit - p));
		vine_buf_add(out, to, tl);
		p = hit + fl;
	}
	vine_buf_add(out, p, (size_t)(end - p));
}

long vine_relocate_binary(char *buf, size_t len, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *p = buf, *end = buf + len, *hit;
	struct vine_buf seg = VINE_BUF_INIT;
	long count = 0;

	if (tl > fl)
		return -1;
	while ((hit = memmem(p, (size_t)(end - p), from, fl))) {
		char *z = memchr(hit, '\0', (size_t)(end - hit));
		if (!z)
			z = end;
		vine_buf_reset(&seg);
		/* the rest of this C string, with every occurrence replaced */
		for (char *q = hit, *h; q < z; q = h + fl) {
			h = memmem(q, (size_t)(z - q), from, fl);
			if (!h) {
				vine_buf_add(&seg, q, (size_t)(z - q));
				break;
			}
			vine_buf_add(&seg, q, (size_t)(h - q));
			vine_buf_add(&seg, to, tl);
			count++;
		}
		if (seg.len)
			memcpy(hit, seg.data, seg.len);
		memset(hit + seg.len, 0, (size_t)(z - hit) - seg.len);
		p = z;
	}
	vine_buf_release(&seg);
	return count;
}

static int is_python(const char *name, size_t n)
{
	if (n < 6 || memcmp(name, "python", 6))
		return 0;
	for (size_t i = 6; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || name[i] == '.'))
			return 0;
	return 1;
}

/* Quote for sh when needed (the trampoline's interpreter path). */
static void sh_quote(struct vine_buf *b, const char *s, size_t n)
{
	int plain = n > 0;

	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=", s[i]))
			plain = 0;
	if (plain) {
		vine_buf_add(b, s, n);
		return;
	}
	vine_buf_add(b, "'", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'')
			vine_buf_addstr(b, "'\\''");
		else
			vine_buf_add(b, s + i, 1);
	}
	vine_buf_add(b, "'", 1);
}

int vine_shebang_fix(struct vine_buf *b)
{
	const char *eol, *p, *interp, *args, *end;
	struct vine_buf out = VINE_BUF_INIT;

	if (b->len < 2 || b->data[0] != '#' || b->data[1] != '!')
		return 0;
	eol = memchr(b->data, '\n', b->len);
	end = eol ? eol : b->data + b->len;
	if (end - b->data <= VINE_SHEBANG_MAX)
		return 0;
	for (p = b->data + 2; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	interp = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	size_t ilen = (size_t)(p - interp);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	args = p;
	size_t alen = (size_t)(end - args);
	while (alen && (args[alen - 1] == ' ' || args[alen - 1] == '\t' || args[alen - 1] == '\r'))
		alen--;
	if (!ilen)
		return 0;
	const char *name = memrchr(interp, '/', ilen);
	name = name ? name + 1 : interp;
	size_t nlen = (size_t)(interp + ilen - name);
	if (is_python(name, nlen)) {
		vine_buf_addstr(&out, "#!/bin/sh\n'''exec' ");
		sh_quote(&out, interp, ilen);
		if (alen) {
			vine_buf_add(&out, " ", 1);
			vine_buf_add(&out, args, alen);
		}
		vine_buf_addstr(&out, " \"$0\" \"$@\"\n' '''");
	} else {
		vine_buf_addstr(&out, alen ? "#!/usr/bin/env -S " : "#!/usr/bin/env ");
		vine_buf_add(&out, name, nlen);
		if (alen) {
			vine_buf_add(&out, " ", 1);
			vine_buf_add(&out, args, alen);
		}
	}
	vine_buf_add(&out, end, (size_t)(b->data + b->len - end));
	vine_buf_release(b);
	*b = out;
	return 1;
}

struct seen {
	dev_t *dev;
	ino_t *ino;
	size_t n;
};

static int seen_before(struct seen *s, const struct stat *st)
{
	if (st->st_nlink < 2)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->dev[i] == st->st_dev && s->ino[i] == st->st_ino)
			return 1;
	s->dev = vine_xrealloc(s->dev, (s->n + 1) * sizeof(*s->dev));
	s->ino = vine_xrealloc(s->ino, (s->n + 1) * sizeof(*s->ino));
	s->dev[s->n] = st->st_dev;
	s->ino[s->n++] = st->st_ino;
	return 0;
}

/*
 * How much text relocation may add to the tree, all files together: a
 * short packed prefix ("/u") in a file made of it would otherwise turn a
 * small archive into gigabytes (vine(7) LIMITS).
 */
#define RELOCATE_GROWTH_MAX ((uint64_t)256 << 20)

static int rewrite(int fd, const char *path, const struct stat *st, int binary, const char *from,
		   const char *to, uint64_t *growth)
{
	size_t len = (size_t)st->st_size;
	int rc = 0;

	if (len == 0)
		return 0;
	if (binary) {
		char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			return vine_error_errno("cannot map '%s'", path);
		vine_relocate_binary(map, len, from, to);
		if (munmap(map, len) < 0)
			rc = vine_error_errno("cannot write '%s'", path);
		return rc;
	}
	char *data = vine_xmalloc(len);
	struct vine_buf out = VINE_BUF_INIT;
	ssize_t got = vine_pread_full(fd, data, len, 0);
	if (got != (ssize_t)len) {
		free(data);
		return vine_error_errno("cannot read '%s'", path);
	}
	size_t fl = strlen(from), tl = strlen(to);
	if (tl > fl) {
		uint64_t hits = 0;
		for (const char *p = data, *h; (h = memmem(p, (size_t)(data + len - p), from, fl)); p = h + fl)
			hits++;
		*growth += hits * (tl - fl);
		if (*growth > RELOCATE_GROWTH_MAX) {
			free(data);
			return vine_error("cannot relocate '%s': the new prefix would add more than %llu MiB "
					  "to the environment (the limit)", path,
					  (unsigned long long)(RELOCATE_GROWTH_MAX >> 20));
		}
	}
	vine_relocate_text(data, len, from, to, &out);
	vine_shebang_fix(&out);
	if (vine_pwrite_full(fd, out.data, out.len, 0) < 0 || ftruncate(fd, (off_t)out.len) < 0)
		rc = vine_error_errno("cannot write '%s'", path);
	free(data);
	vine_buf_release(&out);
	return rc;
}

int vine_relocate(int rootfd, const struct vine_manifest *m, const char *prefix)
{
	size_t ol = strlen(m->prefix), nl = strlen(prefix);
	struct seen seen = { 0 };
	uint64_t growth = 0;
	int rc = 0;

	for (size_t i = 0; i < m->n && nl > ol; i++)
		if (m->files[i].binary)
			return vine_error("cannot relocate '%s': new prefix '%s' (%zu bytes) is longer than "
					  "the packed prefix '%s' (%zu bytes); use a shorter cache path (-c)",
					  m->files[i].path, prefix, nl, m->prefix, ol);
	for (size_t i = 0; i < m->n && rc == 0; i++) {
		const char *path = m->files[i].path;
		struct stat st;
		int fd = vine_open_beneath(rootfd, path, O_RDONLY, 0);
		if (fd < 0)
			return vine_error_prefix("cannot relocate '%s'", path);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return vine_error("cannot relocate '%s': not a regular file", path);
		}
		if (seen_before(&seen, &st)) {
			close(fd);
			continue;
		}
		/* a read-only file is made writable for the rewrite, then put back */
		int ro = !(st.st_mode & S_IWUSR);
		if (ro && fchmod(fd, (st.st_mode & 07777) | S_IWUSR) < 0) {
			rc = vine_error_errno("cannot relocate '%s'", path);
			close(fd);
			break;
		}
		int wfd = vine_open_beneath(rootfd, path, O_RDWR, 0);
		if (wfd < 0)
			rc = vine_error_prefix("cannot relocate '%s'", path);
		else
			rc = rewrite(wfd, path, &st, m->files[i].binary, m->prefix, prefix, &growth);
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		if (rc == 0 && futimens(wfd, ts) < 0)
			rc = vine_error_errno("cannot set the times of '%s'", path);
		if (ro && fchmod(fd, st.st_mode & 07777) < 0 && rc == 0)
			rc = vine_error_errno("cannot set the mode of '%s'", path);
		if (wfd >= 0)
			close(wfd);
		close(fd);
	}
	free(seen.dev);
	free(seen.ino);
	return rc;
}
