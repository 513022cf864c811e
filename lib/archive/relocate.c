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

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "archive/extract.h"
#include "archive/pack-int.h"
#include "archive/relocate.h"
#include "archive/vformat.h"

#define MANIFEST_MAX ((size_t)64 << 20)

void vine_manifest_free(struct vine_manifest *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->prefix);
	free(m->max_prefix_file);
	memset(m, 0, sizeof(*m));
	m->max_prefix = VINE_ROOM_ANY;
}

int vine_manifest_parse(const char *data, size_t len, struct vine_manifest *m)
{
	json_error_t jerr;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr), *v, *files;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->max_prefix = VINE_ROOM_ANY;
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
	/* optional (vine-pack writes them since relocation into padding): absent
	 * or null, no limit is known before the files are looked at */
	v = json_object_get(root, "max_prefix");
	if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1)) {
		vine_error("invalid manifest: \"max_prefix\" is not a length");
		goto out;
	}
	if (json_is_integer(v))
		m->max_prefix = (size_t)json_integer_value(v);
	v = json_object_get(root, "max_prefix_file");
	if (json_is_string(v))
		m->max_prefix_file = vine_xstrdup(json_string_value(v));
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

int vine_manifest_peek(int fd, uint64_t size, struct vine_manifest *m)
{
	struct vine_index idx;
	struct archive *a = NULL;
	struct archive_entry *ae;
	unsigned char *buf = NULL;
	char *data = NULL;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	m->max_prefix = VINE_ROOM_ANY;
	/* an invalid index is for the extraction to report */
	if (vine_index_read(fd, size, &idx) != 1)
		return 0;
	/* the manifest is the last entry, and entries never straddle members */
	const struct vine_member *last = idx.n ? &idx.m[idx.n - 1] : NULL;
	if (!last || last->clen > MANIFEST_MAX)
		goto out;
	buf = vine_xmalloc((size_t)last->clen);
	if (vine_pread_full(fd, buf, (size_t)last->clen, (off_t)last->coff) != (ssize_t)last->clen) {
		rc = vine_error_errno("cannot read the archive");
		goto out;
	}
	a = archive_read_new();
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_memory(a, buf, (size_t)last->clen) != ARCHIVE_OK)
		goto out;
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		char *path = vine_path_clean(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
		int hit = path && !strcmp(path, VINE_MANIFEST_PATH) && archive_entry_filetype(ae) == AE_IFREG;
		free(path);
		if (!hit)
			continue;
		la_int64_t n = archive_entry_size(ae);
		if (n < 0 || (uint64_t)n > MANIFEST_MAX)
			break;
		data = vine_xmalloc((size_t)n + 1);
		if (archive_read_data(a, data, (size_t)n) != n)
			break;
		rc = vine_manifest_parse(data, (size_t)n, m) < 0 ? -1 : 1;
		break;
	}
out:
	if (a)
		archive_read_free(a);
	free(buf);
	free(data);
	vine_index_free(&idx);
	return rc;
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

/* Does the occurrence at off lie in one of the ranges? */
static int in_ranges(size_t off, const struct vine_elf_str *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (off >= r[i].off && off - r[i].off < r[i].len)
			return 1;
	return 0;
}

/* Bytes a string ending at z may grow into: the NUL run there, less the
 * NUL kept as its end, when the run is long enough to be padding. */
static size_t padding(const char *z, const char *end)
{
	size_t run = 0;

	while (z + run < end && z[run] == '\0')
		run++;
	return run >= VINE_PAD_MIN ? run - 1 : 0;
}

static int is_python(const char *name, size_t n);

/*
 * Is the file at path CPython's runtime (libpython*.so*, a pythonX.Y
 * executable, as a static build is, or libpython*.a, its objects)?  A string in it that is exactly the
 * prefix is its compiled-in PREFIX or EXEC_PREFIX, which CPython's getpath
 * uses only when it does not find its standard library from where its
 * executable is: in an environment moved whole, it always finds it.  Such
 * a string is relocated when the new prefix fits and is otherwise left as
 * it was, so it does not bound the room (relocate.h).
 */
static int python_runtime(const char *path)
{
	const char *name = strrchr(path, '/');

	name = name ? name + 1 : path;
	size_t n = strlen(name);

	return (!strncmp(name, "libpython", 9) && (strstr(name, ".so") || !strcmp(name + n - 2, ".a"))) ||
	       is_python(name, n);
}

/* Is the occurrence of from (fl bytes) at hit, ending at z, a whole string? */
static int whole_string(const char *buf, const char *hit, const char *z, size_t fl)
{
	return (hit == buf || hit[-1] == '\0') && (size_t)(z - hit) == fl;
}

/* The room of the strings of buf holding from, those in skip excepted, and
 * with fallback, those that are exactly from (python_runtime). */
static size_t room_scan(const char *buf, size_t len, const char *from, const struct vine_elf_str *skip,
			size_t nskip, int fallback)
{
	size_t fl = strlen(from), room = VINE_ROOM_ANY;
	const char *p = buf, *end = buf + len, *hit;

	while (fl && (hit = memmem(p, (size_t)(end - p), from, fl))) {
		const char *z = memchr(hit, '\0', (size_t)(end - hit));
		if (!z)
			z = end;
		if (!in_ranges((size_t)(hit - buf), skip, nskip) && !(fallback && whole_string(buf, hit, z, fl))) {
			size_t k = 0;
			for (const char *q = hit; (q = memmem(q, (size_t)(z - q), from, fl)); q += fl)
				k++;
			size_t r = fl + padding(z, end) / k;
			if (r < room)
				room = r;
		}
		p = z;
	}
	return room;
}

static long relocate_binary(char *buf, size_t len, const char *from, const char *to, int fallback)
{
	size_t fl = strlen(from), tl = strlen(to);
	char *p = buf, *end = buf + len, *hit;
	struct vine_buf seg = VINE_BUF_INIT;
	long count = 0;

	if (tl > fl && room_scan(buf, len, from, NULL, 0, fallback) < tl)
		return -1;
	while ((hit = memmem(p, (size_t)(end - p), from, fl))) {
		char *z = memchr(hit, '\0', (size_t)(end - hit));
		if (!z)
			z = end;
		/* a fallback prefix that does not fit stays as it was */
		if (fallback && tl > fl && whole_string(buf, hit, z, fl) && fl + padding(z, end) < tl) {
			p = z;
			continue;
		}
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
		/* a longer string takes padding checked above; a shorter one leaves NULs */
		if (seg.len)
			memcpy(hit, seg.data, seg.len);
		if (seg.len < (size_t)(z - hit))
			memset(hit + seg.len, 0, (size_t)(z - hit) - seg.len);
		p = seg.len > (size_t)(z - hit) ? hit + seg.len : z;
	}
	vine_buf_release(&seg);
	return count;
}

long vine_relocate_binary(char *buf, size_t len, const char *from, const char *to)
{
	return relocate_binary(buf, len, from, to, 0);
}

long vine_relocate_binary_file(char *buf, size_t len, const char *path, const char *from, const char *to)
{
	return relocate_binary(buf, len, from, to, python_runtime(path));
}

static uint64_t elf_get(const unsigned char *p, int n, int be)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[be ? i : n - 1 - i];
	return v;
}

int vine_elf_rpaths(const void *data, size_t len, struct vine_elf_str **rp, size_t *np)
{
	const unsigned char *b = data;
	uint64_t dynoff = 0, dynsz = 0, strtab = 0, strsz = 0, stroff = UINT64_MAX, *vals = NULL, *valoffs = NULL;
	size_t nv = 0;
	int have_dyn = 0, have_tab = 0, have_sz = 0;

	*rp = NULL;
	*np = 0;
	if (len < 6 || memcmp(b, "\177ELF", 4))
		return 0;
	if ((b[4] != 1 && b[4] != 2) || (b[5] != 1 && b[5] != 2))
		return vine_error("ELF class %u and byte order %u are not ones vine reads "
				  "(32 or 64 bits, little or big endian)", b[4], b[5]);
	int c64 = b[4] == 2, be = b[5] == 2, w = c64 ? 8 : 4;
	if (len < (c64 ? 64u : 52u))
		return vine_error("truncated ELF header");
	uint64_t phoff = elf_get(b + (c64 ? 32 : 28), w, be);
	unsigned phentsize = (unsigned)elf_get(b + (c64 ? 54 : 42), 2, be);
	unsigned phnum = (unsigned)elf_get(b + (c64 ? 56 : 44), 2, be);
	if (phnum == 0)
		return 0;
	if (phnum == 0xffff)
		return vine_error("ELF file with an extended program header count");
	if (phentsize < (c64 ? 56u : 32u) || phoff > len || (uint64_t)phnum * phentsize > len - phoff)
		return vine_error("ELF program headers lie outside the file");
	for (unsigned i = 0; i < phnum; i++) {
		const unsigned char *ph = b + phoff + (uint64_t)i * phentsize;
		if (elf_get(ph, 4, be) == 2 /* PT_DYNAMIC */) {
			dynoff = elf_get(ph + (c64 ? 8 : 4), w, be);
			dynsz = elf_get(ph + (c64 ? 32 : 16), w, be);
			have_dyn = 1;
		}
	}
	if (!have_dyn)
		return 0;
	if (dynoff > len || dynsz > len - dynoff)
		return vine_error("ELF dynamic section lies outside the file");
	for (uint64_t off = 0; off + 2 * (uint64_t)w <= dynsz; off += 2 * (uint64_t)w) {
		uint64_t tag = elf_get(b + dynoff + off, w, be), val = elf_get(b + dynoff + off + w, w, be);
		if (tag == 0 /* DT_NULL */)
			break;
		if (tag == 5 /* DT_STRTAB */) {
			strtab = val;
			have_tab = 1;
		} else if (tag == 10 /* DT_STRSZ */) {
			strsz = val;
			have_sz = 1;
		} else if (tag == 15 /* DT_RPATH */ || tag == 29 /* DT_RUNPATH */) {
			vals = vine_xrealloc(vals, (nv + 1) * sizeof(*vals));
			valoffs = vine_xrealloc(valoffs, (nv + 1) * sizeof(*valoffs));
			valoffs[nv] = dynoff + off + (uint64_t)w;
			vals[nv++] = val;
		}
	}
	if (!nv)
		return 0;
	if (!have_tab || !have_sz) {
		free(vals);
		free(valoffs);
		return vine_error("ELF run path without a string table");
	}
	/* the string table's address, to a file offset through the loaded segments */
	for (unsigned i = 0; i < phnum; i++) {
		const unsigned char *ph = b + phoff + (uint64_t)i * phentsize;
		uint64_t poff = elf_get(ph + (c64 ? 8 : 4), w, be), vaddr = elf_get(ph + (c64 ? 16 : 8), w, be);
		uint64_t filesz = elf_get(ph + (c64 ? 32 : 16), w, be);
		if (elf_get(ph, 4, be) == 1 /* PT_LOAD */ && strtab >= vaddr && strtab - vaddr < filesz &&
		    strsz <= filesz - (strtab - vaddr)) {
			stroff = poff + (strtab - vaddr);
			break;
		}
	}
	if (stroff > len || strsz > len - stroff) {
		free(vals);
		free(valoffs);
		return vine_error("ELF string table lies outside the file");
	}
	*rp = vine_xcalloc(nv, sizeof(**rp));
	for (size_t i = 0; i < nv; i++) {
		const char *str = (const char *)b + stroff + vals[i];
		size_t n = vals[i] < strsz ? strnlen(str, (size_t)(strsz - vals[i])) : 0;
		if (vals[i] >= strsz || n == strsz - vals[i]) {
			free(vals);
			free(valoffs);
			free(*rp);
			*rp = NULL;
			return vine_error("ELF run path lies outside its string table");
		}
		(*rp)[i].off = (size_t)(stroff + vals[i]);
		(*rp)[i].len = n;
		(*rp)[i].val = (size_t)valoffs[i];
		(*rp)[i].base = (size_t)stroff;
		(*rp)[i].width = w;
		(*rp)[i].big = be;
	}
	*np = nv;
	free(vals);
	free(valoffs);
	return 1;
}

/* The run path s (n bytes) with its entries under from made relative to
 * $ORIGIN, the directory of path, into out; 1 if any entry changed. */
static int rpath_rewrite(const char *s, size_t n, const char *path, const char *from, struct vine_buf *out)
{
	size_t fl = strlen(from);
	const char *p = s, *end = s + n;
	int changed = 0;

	for (;;) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		size_t el;
		if (!c)
			c = end;
		el = (size_t)(c - p);
		if (el >= fl && !memcmp(p, from, fl) && (el == fl || p[fl] == '/')) {
			char *rest = vine_xstrndup(p + fl, el - fl), *rel = pack_relative_link(path, rest);
			const char *last = strrchr(rest, '/');
			vine_buf_addstr(out, "$ORIGIN");
			/* end with the old last component, whose tail others may share */
			if (!strcmp(rel, ".") && last && last[1]) {
				vine_buf_addstr(out, "/..");
				vine_buf_addstr(out, last);
			} else if (strcmp(rel, ".")) {
				vine_buf_addstr(out, "/");
				vine_buf_addstr(out, rel);
			}
			free(rest);
			free(rel);
			changed = 1;
		} else {
			vine_buf_add(out, p, el);
		}
		if (c == end)
			break;
		vine_buf_add(out, ":", 1);
		p = c + 1;
	}
	return changed;
}

/* Keep in rp those run paths that rewriting makes free of from, rewritten
 * into out[i] when out is not NULL; returns how many. */
static size_t rpath_plan(const char *buf, struct vine_elf_str *rp, size_t n, const char *path,
			 const char *from, struct vine_buf *out)
{
	struct vine_buf b = VINE_BUF_INIT;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		vine_buf_reset(&b);
		if (!rpath_rewrite(buf + rp[i].off, rp[i].len, path, from, &b) || b.len > rp[i].len ||
		    memmem(b.data, b.len, from, strlen(from)))
			continue;
		if (out) {
			vine_buf_reset(&out[k]);
			vine_buf_add(&out[k], b.data, b.len);
		}
		rp[k++] = rp[i];
	}
	vine_buf_release(&b);
	return k;
}

long vine_relocate_rpaths(char *buf, size_t len, const char *path, const char *from)
{
	struct vine_elf_str *rp;
	struct vine_buf *out;
	size_t n, k;
	int r = vine_elf_rpaths(buf, len, &rp, &n);

	if (r <= 0)
		return r;
	out = vine_xcalloc(n, sizeof(*out));
	k = rpath_plan(buf, rp, n, path, from, out);
	for (size_t i = 0; i < k; i++) {
		/* right-aligned: the old string's end (and the tails in it) stays put */
		size_t at = rp[i].off + rp[i].len - out[i].len;
		uint64_t v = at - rp[i].base;
		memset(buf + rp[i].off, 0, at - rp[i].off);
		memcpy(buf + at, out[i].data, out[i].len);
		for (int b = 0; b < rp[i].width; b++)
			buf[rp[i].val + (size_t)(rp[i].big ? rp[i].width - 1 - b : b)] = (char)(v >> (8 * b));
	}
	for (size_t i = 0; i < n; i++)
		vine_buf_release(&out[i]);
	free(out);
	free(rp);
	return (long)k;
}

size_t vine_relocate_room(const char *buf, size_t len, const char *path, const char *from)
{
	struct vine_elf_str *rp = NULL;
	size_t n = 0, k = 0, room;

	if (vine_elf_rpaths(buf, len, &rp, &n) > 0)
		k = rpath_plan(buf, rp, n, path, from, NULL);
	room = room_scan(buf, len, from, rp, k, python_runtime(path));
	free(rp);
	return room;
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
		vine_relocate_rpaths(map, len, path, from); /* an ELF file it cannot read: strings only */
		if (vine_relocate_binary_file(map, len, path, from, to) < 0)
			rc = vine_error("cannot relocate '%s': '%s' does not fit", path, to);
		if (munmap(map, len) < 0 && rc == 0)
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
		/* counted until the limit is passed, not to the end of the file */
		for (const char *p = data, *h; *growth <= RELOCATE_GROWTH_MAX &&
						(h = memmem(p, (size_t)(data + len - p), from, fl));
		     p = h + fl)
			*growth += tl - fl;
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

/* The room of the binary file at path in the tree; 0 with a message on error. */
static size_t room_of(int rootfd, const char *path, const char *from)
{
	int fd = vine_open_beneath(rootfd, path, O_RDONLY, 0);
	struct stat st;
	size_t room = VINE_ROOM_ANY;

	if (fd < 0) {
		vine_error_prefix("cannot relocate '%s'", path);
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		vine_error("cannot relocate '%s': not a regular file", path);
		return 0;
	}
	if (st.st_size > 0) {
		char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			vine_error_errno("cannot map '%s'", path);
			room = 0;
		} else {
			room = vine_relocate_room(map, (size_t)st.st_size, path, from);
			munmap(map, (size_t)st.st_size);
		}
	}
	close(fd);
	return room;
}

int vine_relocate(int rootfd, const struct vine_manifest *m, const char *prefix)
{
	size_t ol = strlen(m->prefix), nl = strlen(prefix);
	struct seen seen = { 0 };
	uint64_t growth = 0;
	int rc = 0;

	for (size_t i = 0; i < m->n && nl > ol; i++) {
		if (!m->files[i].binary)
			continue;
		size_t room = room_of(rootfd, m->files[i].path, m->prefix);
		if (room == 0)
			return -1;
		if (nl > room)
			return vine_error("cannot relocate '%s': new prefix '%s' (%zu bytes) is longer than "
					  "its strings can hold (%zu bytes; packed prefix '%s', %zu bytes); "
					  "use a shorter cache path (-c)",
					  m->files[i].path, prefix, nl, room, m->prefix, ol);
	}
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
