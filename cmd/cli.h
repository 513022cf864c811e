/*
 * cli.h - what every program in cmd/ does the same way: its name in
 * messages, warnings and fatal errors ("vine-x: what failed: why"),
 * sane standard descriptors at start, and a checked stdout at exit.
 */
#ifndef VINE_CLI_H
#define VINE_CLI_H

#include "util/util.h"

/* Exit statuses shared by all programs (see DESIGN section 8). */
enum {
	VINE_EXIT_OK = 0,
	VINE_EXIT_FAIL = 1,  /* the work did not succeed */
	VINE_EXIT_USAGE = 2,
};

/* Record the program name, reopen closed fds 0-2 on /dev/null, arrange
 * for stdout to be flushed and checked at exit, and show the library's
 * notices (util.h) on stderr. */
void vine_cli_init(const char *argv0);
const char *vine_progname(void);

void vine_warn(const char *fmt, ...) VINE_PRINTF(1, 2);
_Noreturn void vine_die(int status, const char *fmt, ...) VINE_PRINTF(2, 3);
/* Die with status and the library's message: "vine-x: <vine_errmsg()>". */
_Noreturn void vine_die_lib(int status);

/* True when -q was not given and stderr is a terminal. */
int vine_cli_tty(void);

#endif
