/*
 * test-tasklist.c - the task list format: lines, comments, continuations,
 * and the errors that name a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "task/tasklist.h"
#include "util/util.h"

static int parse(const char *data, size_t len, struct vine_tasklist *tl)
{
	FILE *f = fmemopen((void *)data, len, "r");
	int rc;

	memset(tl, 0, sizeof(*tl));
	rc = vine_tasklist_read(f, "list", tl);
	fclose(f);
	return rc;
}

#define PARSE(s, tl) parse(s, sizeof(s) - 1, tl)

int main(void)
{
	struct vine_tasklist tl;

	/* order, blank lines, comments (also indented), no final newline */
	check_int(PARSE("a\n\n  \t\n# comment\n   # indented comment\nb 'q' | c\nlast", &tl),
		==, 0);
	check_int(tl.n, ==, 3);
	check_str(tl.cmd[0], ==, "a");
	check_str(tl.cmd[1], ==, "b 'q' | c");
	check_str(tl.cmd[2], ==, "last");
	check_int(tl.line[0], ==, 1);
	check_int(tl.line[1], ==, 6);
	check_int(tl.line[2], ==, 7);
	vine_tasklist_release(&tl);

	/* a trailing backslash continues; the backslash and newline go, as in sh */
	check_int(PARSE("echo a \\\n  b\\\nc\nnext\n", &tl), ==, 0);
	check_int(tl.n, ==, 2);
	check_str(tl.cmd[0], ==, "echo a   bc");
	check_str(tl.cmd[1], ==, "next");
	check_int(tl.line[1], ==, 4);
	vine_tasklist_release(&tl);

	/* an escaped backslash does not continue; CRLF line ends are taken */
	check_int(PARSE("echo x\\\\\r\necho y\r\n", &tl), ==, 0);
	check_int(tl.n, ==, 2);
	check_str(tl.cmd[0], ==, "echo x\\\\");
	check_str(tl.cmd[1], ==, "echo y");
	vine_tasklist_release(&tl);

	/* continuation into end of file, and a comment that continues */
	check_int(PARSE("# note \\\nstill comment\necho z \\", &tl), ==, 0);
	check_int(tl.n, ==, 1);
	check_str(tl.cmd[0], ==, "echo z ");
	vine_tasklist_release(&tl);

	/* UTF-8 and tabs pass through untouched */
	check_int(PARSE("echo \xc3\xa9\t\xe2\x9c\x93\n", &tl), ==, 0);
	check_int(tl.n, ==, 1);
	check_str(tl.cmd[0], ==, "echo \xc3\xa9\t\xe2\x9c\x93");
	vine_tasklist_release(&tl);

	/* empty input is no tasks */
	check_int(PARSE("", &tl), ==, 0);
	check_int(tl.n, ==, 0);
	check_int(PARSE("\n\n# x\n", &tl), ==, 0);
	check_int(tl.n, ==, 0);
	vine_tasklist_release(&tl);

	/* a NUL byte: the error names the line */
	check_int(PARSE("ok\nok\nbad\0x\n", &tl), <, 0);
	CHECK(strstr(vine_errmsg(), "line 3"));
	CHECK(strstr(vine_errmsg(), "NUL"));
	vine_tasklist_release(&tl);

	/* a task over 1 MiB, in one line or continued over several */
	size_t big = VINE_TASKLIST_MAX + 10;
	char *s = vine_xmalloc(big + 8000);
	memcpy(s, "a\nb\n", 4);
	memset(s + 4, 'x', big);
	s[4 + big] = '\n';
	check_int(parse(s, big + 5, &tl), <, 0);
	CHECK(strstr(vine_errmsg(), "line 3"));
	CHECK(strstr(vine_errmsg(), "longer"));
	vine_tasklist_release(&tl);
	/* each continuation takes 2 bytes away: make up for them */
	memset(s + 4, 'x', big + 6000);
	s[4 + big + 6000] = '\n';
	for (size_t i = 4 + 1000; i < 4 + big + 6000; i += 1000) {
		s[i - 1] = '\\';
		s[i] = '\n';
	}
	check_int(parse(s, big + 6005, &tl), <, 0);
	CHECK(strstr(vine_errmsg(), "line 3"));
	CHECK(strstr(vine_errmsg(), "longer"));
	vine_tasklist_release(&tl);
	/* exactly the limit is fine */
	memset(s, 'y', VINE_TASKLIST_MAX);
	s[VINE_TASKLIST_MAX] = '\n';
	check_int(parse(s, VINE_TASKLIST_MAX + 1, &tl), ==, 0);
	check_int(tl.n, ==, 1);
	check_int(strlen(tl.cmd[0]), ==, VINE_TASKLIST_MAX);
	vine_tasklist_release(&tl);
	free(s);

	return T_END();
}
