/*
 * fuzz-tasklist - the task-list reader (vine_tasklist_read) on any bytes as
 * a task list.  The tasks it reads must be non-empty, free of NULs, no
 * longer than VINE_TASKLIST_MAX, on increasing lines; a list it refuses is
 * refused with a message and leaves the tasks read before it.
 */
#include <stdio.h>
#include <string.h>

#include "task/tasklist.h"
#include "util/util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vine_tasklist tl = VINE_TASKLIST_INIT;
	FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	size_t lines = 1;
	int r;

	if (!f)
		fz_fail("cannot open the input as a stream");
	r = vine_tasklist_read(f, "input", &tl);
	fclose(f);
	if (r < 0 && !*vine_errmsg())
		fz_fail("refused without a message");
	for (const uint8_t *p = data; p < data + size; p++)
		lines += *p == '\n';
	for (size_t i = 0; i < tl.n; i++) {
		size_t len = strlen(tl.cmd[i]);
		if (!len || len > VINE_TASKLIST_MAX)
			fz_fail("task %zu is %zu bytes", i, len);
		if (tl.line[i] < 1 || tl.line[i] > lines || (i && tl.line[i] <= tl.line[i - 1]))
			fz_fail("task %zu is on line %zu", i, tl.line[i]);
	}
	vine_tasklist_release(&tl);
	return 0;
}
