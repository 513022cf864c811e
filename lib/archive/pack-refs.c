/*
 * pack-refs.c - what an environment needs from outside its directory, for
 * vine-pack's honest summary (see pack-int.h).
 *
 * Python finds code outside the environment through editable installs:
 * a .pth file in a site directory whose lines name directories (lines that
 * start with "import" run code and are not paths), an .egg-link file whose
 * first line names one (setuptools develop), and a dist-info's
 * direct_url.json saying {"dir_info": {"editable": true}} with a file: URL
 * (PEP 610; pip's modern editable installs, whose .pth only imports a
 * finder).  A venv also needs its base interpreter, pyvenv.cfg's "home".
 */
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/pack-int.h"
#include "util/util.h"

#define REF_FILE_MAX ((size_t)1 << 20)

static int has_suffix(const char *s, const char *sfx)
{
	size_t n = strlen(s), k = strlen(sfx);

	return n >= k && !strcmp(s + n - k, sfx);
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Read a small file of the tree; NULL when it cannot (not worth failing for). */
static char *slurp(int rootfd, const char *path)
{
	int fd = openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = vine_xmalloc(REF_FILE_MAX + 1);
	n = vine_read_full(fd, buf, REF_FILE_MAX);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * Is target, named in the file at path (relative to the root), outside the
 * tree?  Absolute: unless under one of the root's spellings; relative: from
 * path's directory, unless it stays below the root.
 */
static int outside(const struct pack_refs_opts *o, const char *path, const char *target)
{
	if (target[0] == '/') {
		for (size_t i = 0; i < o->nprefixes; i++) {
			size_t n = strlen(o->prefixes[i]);
			if (!strncmp(target, o->prefixes[i], n) && (target[n] == '\0' || target[n] == '/'))
				return 0;
		}
		return 1;
	}
	long depth = 0;
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	for (const char *p = target; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2)) {
			if (--depth < 0)
				return 1;
		} else if (n && !(n == 1 && *p == '.')) {
			depth++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* what: how path refers to target ("adds", "links an egg in", ...) */
static void add(struct pack_refs *r, const char *path, const char *what, const char *target)
{
	r->refs = vine_xrealloc(r->refs, (r->n + 1) * sizeof(*r->refs));
	r->refs[r->n++] = vine_xasprintf("'%s' %s '%s'", path, what, target);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static void check_pth(const struct pack_refs_opts *o, const char *path, char *data, struct pack_refs *r)
{
	for (char *line = data, *next; line; line = next) {
		char *l;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		l = trim(line);
		if (!*l || *l == '#' || !strncmp(l, "import ", 7) || !strncmp(l, "import\t", 7))
			continue;
		if (outside(o, path, l))
			add(r, path, "adds to Python's path", l);
	}
}

static void check_egg_link(const struct pack_refs_opts *o, const char *path, char *data, struct pack_refs *r)
{
	char *nl = strchr(data, '\n'), *l;

	if (nl)
		*nl = '\0';
	l = trim(data);

	if (*l && outside(o, path, l))
		add(r, path, "links an egg in", l);
}

static void check_direct_url(const struct pack_refs_opts *o, const char *path, const char *data,
			     struct pack_refs *r)
{
	json_t *j = json_loads(data, 0, NULL);
	json_t *dir = json_object_get(j, "dir_info"), *url = json_object_get(j, "url");
	const char *u = json_string_value(url);

	if (json_is_true(json_object_get(dir, "editable")) && u) {
		const char *p = !strncmp(u, "file://", 7) ? u + 7 : u;
		if (outside(o, path, p))
			add(r, path, "is an editable install of", p);
	}
	json_decref(j);
}

static char *venv_home(const char *data)
{
	char *copy = vine_xstrdup(data), *home = NULL;

	for (char *line = copy, *next; line && !home; line = next) {
		char *eq;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcasecmp(trim(line), "home") && *trim(eq + 1))
			home = vine_xstrdup(trim(eq + 1));
	}
	free(copy);
	return home;
}

int pack_find_refs(const struct pack_refs_opts *o, const struct pack_tree *t, struct pack_refs *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < t->n; i++) {
		const struct pack_entry *e = &t->e[i];
		const char *name = base_name(e->path);
		int pth = has_suffix(name, ".pth"), egg = has_suffix(name, ".egg-link");
		int url = !strcmp(name, "direct_url.json") && strstr(e->path, ".dist-info/");
		int cfg = !strcmp(e->path, "pyvenv.cfg");
		char *data;

		if (e->kind != PK_FILE || !(pth || egg || url || cfg) || (uint64_t)e->size > REF_FILE_MAX)
			continue;
		if (!(data = slurp(o->rootfd, e->path)))
			continue;
		if (pth)
			check_pth(o, e->path, data, r);
		else if (egg)
			check_egg_link(o, e->path, data, r);
		else if (url)
			check_direct_url(o, e->path, data, r);
		else
			r->home = venv_home(data);
		free(data);
	}
	return 0;
}

void pack_refs_release(struct pack_refs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->refs[i]);
	free(r->refs);
	free(r->home);
	memset(r, 0, sizeof(*r));
}
