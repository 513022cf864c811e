/*
 * tasklist.c - read a task list (see tasklist.h).
 */
#include <stdlib.h>
#include <string.h>

#include "task/tasklist.h"
#include "util/util.h"

struct reader {
	struct vine_tasklist *tl;
	const char *name;
	struct vine_buf cur;   /* the logical line so far */
	size_t phys;           /* where the current physical line starts in cur */
	size_t lineno;         /* the current physical line */
	size_t start;          /* the line the logical line started on */
};

static void add_task(struct reader *r)
{
	struct vine_tasklist *tl = r->tl;
	const char *p = r->cur.data;

	while (*p == ' ' || *p == '\t' || *p == '\v' || *p == '\f')
		p++;
	if (*p == '\0' || *p == '#')
		return;
	if (tl->n == tl->cap) {
		tl->cap = tl->cap ? 2 * tl->cap : 256;
		tl->cmd = vine_xrealloc(tl->cmd, tl->cap * sizeof(*tl->cmd));
		tl->line = vine_xrealloc(tl->line, tl->cap * sizeof(*tl->line));
	}
	tl->cmd[tl->n] = vine_xstrndup(r->cur.data, r->cur.len);
	tl->line[tl->n] = r->start;
	tl->n++;
}

static int too_long(struct reader *r)
{
	return vine_error("'%s' line %zu: task longer than %d bytes", r->name, r->start,
			  VINE_TASKLIST_MAX);
}

/* The physical line in cur[phys..] is complete (its newline not included). */
static int end_line(struct reader *r, int at_eof)
{
	struct vine_buf *b = &r->cur;
	size_t back = 0;

	if (b->len > r->phys && b->data[b->len - 1] == '\r')
		b->data[--b->len] = '\0';
	while (b->len - back > r->phys && b->data[b->len - back - 1] == '\\')
		back++;
	if (back % 2) {
		b->data[--b->len] = '\0';
		if (!at_eof) {
			r->phys = b->len;
			r->lineno++;
			return 0;
		}
	}
	if (b->len > VINE_TASKLIST_MAX)
		return too_long(r);
	add_task(r);
	vine_buf_reset(b);
	r->phys = 0;
	r->lineno++;
	r->start = r->lineno;
	return 0;
}

static int append(struct reader *r, const char *p, size_t n)
{
	if (memchr(p, '\0', n))
		return vine_error("'%s' line %zu: contains a NUL byte", r->name, r->lineno);
	/* room for a trailing backslash and carriage return that go away */
	if (r->cur.len + n > (size_t)VINE_TASKLIST_MAX + 2)
		return too_long(r);
	vine_buf_add(&r->cur, p, n);
	return 0;
}

int vine_tasklist_read(FILE *f, const char *name, struct vine_tasklist *tl)
{
	struct reader r = { .tl = tl, .name = name, .cur = VINE_BUF_INIT, .lineno = 1, .start = 1 };
	char *chunk = vine_xmalloc(1 << 16);
	size_t got;
	int rc = 0;

	while (rc == 0 && (got = fread(chunk, 1, 1 << 16, f)) > 0) {
		const char *p = chunk, *end = chunk + got;
		while (rc == 0 && p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl) {
				rc = append(&r, p, (size_t)(end - p));
				break;
			}
			if ((rc = append(&r, p, (size_t)(nl - p))) == 0)
				rc = end_line(&r, 0);
			p = nl + 1;
		}
	}
	if (rc == 0 && ferror(f))
		rc = vine_error_errno("cannot read '%s'", name);
	if (rc == 0 && r.cur.len > 0)
		rc = end_line(&r, 1);
	vine_buf_release(&r.cur);
	free(chunk);
	return rc;
}

void vine_tasklist_release(struct vine_tasklist *tl)
{
	for (size_t i = 0; i < tl->n; i++)
		free(tl->cmd[i]);
	free(tl->cmd);
	free(tl->line);
	memset(tl, 0, sizeof(*tl));
}
