/*
 * cli.h - what every program in cmd/ does the same way: its name in
 * messages, warnings and fatal errors ("vine-x: what failed: why"),
 * sane standard descriptors at start, a checked stdout at exit, -h and
 * --help, --version, and option values checked one way with usage errors
 * that print the usage and exit 2.
 *
 * The shape of a main:
 *
 *	static const char usage_text[] =
 *		"usage: vine-x [-q] [-s STATE] FILE\n"
 *		"  -s STATE  the state (default $VINE_STATE, else ./vine.db)\n" ...;
 *
 *	vine_cli_start(argc, argv, usage_text);
 *	while ((c = getopt(argc, argv, "s:qh")) != -1) {
 *		switch (c) {
 *		case 's': state = vine_opt_str("-s", optarg); break;
 *		case 'h': vine_usage(VINE_EXIT_OK);
 *		default: vine_usage(VINE_EXIT_USAGE);
 *		}
 *	}
 */
#ifndef VINE_CLI_H
#define VINE_CLI_H

#include "util/util.h"

/* Exit statuses shared by all programs (vine(7), Conventions shared by
 * every program). */
enum {
	VINE_EXIT_OK = 0,
	VINE_EXIT_FAIL = 1,  /* the work did not succeed */
	VINE_EXIT_USAGE = 2,
};

/* Record the program name, reopen closed fds 0-2 on /dev/null, arrange
 * for stdout to be flushed and checked at exit, and show the library's
 * notices (util.h) on stderr. */
void vine_cli_init(const char *argv0);
/*
 * vine_cli_init, then remember the usage text (the synopsis and one line
 * per option, as in the man page) and answer a first argument of --help
 * (the usage on stdout) or --version ("vine-x VERSION"), exiting 0.
 */
void vine_cli_start(int argc, char **argv, const char *usage);
/* Print the usage, on stdout for status 0, else on stderr; exit status. */
_Noreturn void vine_usage(int status);
/* "vine-x: <message>", the usage on stderr, exit 2. */
_Noreturn void vine_usage_error(const char *fmt, ...) VINE_PRINTF(1, 2);

/*
 * Option values, checked one way; each bad value is a usage error naming
 * the option ("-j: '0' is not a number from 1 to 1024").
 *   vine_opt_str      any string but the empty one (a path, a name)
 *   vine_opt_int      a whole decimal number in [min, max]
 *   vine_opt_seconds  a decimal number of seconds (fractions allowed),
 *                     above 0 (or from 0 with zero_ok) and up to max
 */
#define VINE_YEAR (86400.0 * 366)
const char *vine_opt_str(const char *opt, const char *arg);
/* A state name (vine_state_name_check): "-s: 'ssh://h': expected ...". */
const char *vine_opt_state(const char *opt, const char *arg);
/* The state given with -s (NULL: none), else $VINE_STATE, else ./vine.db,
 * checked as vine_opt_state does; a malformed $VINE_STATE is a usage
 * error naming it.  Returns given or a new string. */
char *vine_cli_state(char *given);
long long vine_opt_int(const char *opt, const char *arg, long long min, long long max);
double vine_opt_seconds(const char *opt, const char *arg, int zero_ok, double max);
/* A size in bytes, with an optional unit (util.h, vine_parse_size), up to max. */
int64_t vine_opt_size(const char *opt, const char *arg, int64_t max);
const char *vine_progname(void);

void vine_warn(const char *fmt, ...) VINE_PRINTF(1, 2);
/* A vine_msg_fn for the library's callbacks: vine_warn("%s", msg). */
void vine_cli_msg(void *ctx, const char *msg);
_Noreturn void vine_die(int status, const char *fmt, ...) VINE_PRINTF(2, 3);
/* Die with status and the library's message: "vine-x: <vine_errmsg()>". */
_Noreturn void vine_die_lib(int status);

/* True when -q was not given and stderr is a terminal. */
int vine_cli_tty(void);

#endif
