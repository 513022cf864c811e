/*
 * fuzz-tasklist - the task-list reader (vine_tasklist_read) on any bytes as
 * a task list, checked against a model of the format written from
 * tasklist.h's description alone: the same tasks on the same lines, and an
 * error exactly where the model finds a NUL (the length limits are not
 * modelled: inputs here are far shorter).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task/tasklist.h"
#include "util/util.h"
#include "fuzz.h"

struct model {
	struct vine_tasklist tl;
	int failed;
};

static void model_add(struct model *m, const char *cmd, size_t len, size_t line)
{
	size_t i = 0;

	while (i < len && strchr(" \t\v\f", cmd[i]) && cmd[i])
		i++;
	if (i == len || cmd[i] == '#')
		return;
	m->tl.cmd = vine_xrealloc(m->tl.cmd, (m->tl.n + 1) * sizeof(*m->tl.cmd));
	m->tl.line = vine_xrealloc(m->tl.line, (m->tl.n + 1) * sizeof(*m->tl.line));
	m->tl.cmd[m->tl.n] = vine_xstrndup(cmd, len);
	m->tl.line[m->tl.n++] = line;
}

/* Split into physical lines; join those whose last backslash is unescaped. */
static void model_read(const uint8_t *data, size_t size, struct model *m)
{
	struct vine_buf cur = VINE_BUF_INIT;
	size_t lineno = 1, start = 1, pos = 0;

	memset(m, 0, sizeof(*m));
	for (;;) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t seg = nl ? (size_t)(nl - (data + pos)) : size - pos, len = seg, back = 0;
		int at_eof = !nl;

		if (at_eof && !seg && !cur.len)
			break;
		if (memchr(data + pos, '\0', seg)) {
			m->failed = 1;
			break;
		}
		if (len && data[pos + len - 1] == '\r')
			len--;
		while (back < len && data[pos + len - 1 - back] == '\\')
			back++;
		if (back % 2) {
			vine_buf_add(&cur, data + pos, len - 1);
			if (!at_eof) {
				pos += seg + 1;
				lineno++;
				continue;
			}
		} else {
			vine_buf_add(&cur, data + pos, len);
		}
		model_add(m, cur.data ? cur.data : "", cur.len, start);
		vine_buf_reset(&cur);
		if (at_eof)
			break;
		pos += seg + 1;
		lineno++;
		start = lineno;
	}
	vine_buf_release(&cur);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_tasklist tl = VINE_TASKLIST_INIT;
	FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	struct model m;
	int r;

	if (!f)
		fz_fail("cannot open the input as a stream");
	r = vine_tasklist_read(f, "input", &tl);
	fclose(f);
	if (r < 0 && !*vine_errmsg())
		fz_fail("refused without a message");
	if (size < 65536) {
		model_read(data, size, &m);
		if ((r < 0) != m.failed)
			fz_fail("read %s, the model %s", r < 0 ? "failed" : "succeeded",
				m.failed ? "failed" : "succeeded");
		if (tl.n != m.tl.n)
			fz_fail("%zu tasks, the model %zu", tl.n, m.tl.n);
		for (size_t i = 0; i < tl.n; i++)
			if (strcmp(tl.cmd[i], m.tl.cmd[i]) || tl.line[i] != m.tl.line[i])
				fz_fail("task %zu: '%s' on line %zu, the model '%s' on line %zu", i,
					tl.cmd[i], tl.line[i], m.tl.cmd[i], m.tl.line[i]);
		vine_tasklist_release(&m.tl);
	}
	for (size_t i = 0; i < tl.n; i++)
		if (!tl.cmd[i][0] || strlen(tl.cmd[i]) > VINE_TASKLIST_MAX)
			fz_fail("task %zu is empty or too long", i);
	vine_tasklist_release(&tl);
	return 0;
}
