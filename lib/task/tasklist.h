/*
 * tasklist.h - read a task list: one shell command per line.
 *
 * The format (vine-submit(1), vine(7) TASKS): each line is one task.  Blank
 * lines and lines whose first non-blank character is '#' are skipped.  A
 * line that ends with a backslash (one not itself escaped by another
 * backslash) continues on the next line: the backslash and the newline are
 * removed, as sh(1) does.  A carriage return before the newline is
 * dropped.  Everything else is kept byte for byte.  A NUL byte, or a task
 * longer than VINE_TASKLIST_MAX bytes, is an error naming the line.
 */
#ifndef VINE_TASKLIST_H
#define VINE_TASKLIST_H

#include <stddef.h>
#include <stdio.h>

#define VINE_TASKLIST_MAX (1 << 20)

struct vine_tasklist {
	char **cmd;        /* the commands, NUL-terminated */
	size_t *line;      /* the line each starts on, from 1 */
	size_t n, cap;
};

#define VINE_TASKLIST_INIT { NULL, NULL, 0, 0 }

/* Read all of f (named name in messages) and append its tasks to tl. */
int vine_tasklist_read(FILE *f, const char *name, struct vine_tasklist *tl);
void vine_tasklist_release(struct vine_tasklist *tl);

#endif
