/*
 * cli.c - shared program plumbing (see cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "state/state.h"
#include "util/config.h"
#include "util/version.h"

static const char *progname = "vine";
static const char *usage_text = "";

static void check_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || (close(STDOUT_FILENO) < 0 && errno != EBADF)) {
		/* a full disk or a closed pipe behind stdout must not look like success */
		if (errno != EPIPE)
			fprintf(stderr, "%s: cannot write standard output: %s\n", progname, strerror(errno));
		_exit(VINE_EXIT_FAIL);
	}
}

void vine_cli_init(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;

	if (argv0)
		progname = slash ? slash + 1 : argv0;
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
	atexit(check_stdout);
	vine_set_notice(vine_cli_msg, NULL);
}

void vine_cli_start(int argc, char **argv, const char *usage)
{
	vine_cli_init(argv[0]);
	usage_text = usage;
	if (argc > 1 && !strcmp(argv[1], "--help"))
		vine_usage(VINE_EXIT_OK);
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("%s %s\n", progname, VINE_VERSION);
		exit(VINE_EXIT_OK);
	}
}

void vine_usage(int status)
{
	fflush(stdout);
	fputs(usage_text, status ? stderr : stdout);
	exit(status);
}

/* "vine-x: message" on stderr, after what stdout holds so far */
static void vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void vine_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	vine_usage(VINE_EXIT_USAGE);
}

const char *vine_opt_str(const char *opt, const char *arg)
{
	if (!*arg)
		vine_usage_error("%s: the value is empty", opt);
	return arg;
}

const char *vine_opt_state(const char *opt, const char *arg)
{
	vine_opt_str(opt, arg);
	if (vine_state_name_check(arg) < 0)
		vine_usage_error("%s: %s", opt, vine_errmsg());
	return arg;
}

char *vine_cli_state(char *given)
{
	char *state = given ? given : vine_default_state();

	if (vine_state_name_check(state) < 0) {
		/* the message names the value: nothing is left to leak at exit */
		free(state);
		vine_usage_error("%s: %s", given ? "-s" : "VINE_STATE", vine_errmsg());
	}
	return state;
}

long long vine_opt_int(const char *opt, const char *arg, long long min, long long max)
{
	long long v;

	if (vine_parse_llong(arg, min, max, &v) < 0)
		vine_usage_error("%s: %s", opt, vine_errmsg());
	return v;
}

double vine_opt_seconds(const char *opt, const char *arg, int zero_ok, double max)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(arg, &end);
	if (!*arg || *end || errno || !isfinite(d) || d < 0 || (d == 0 && !zero_ok) || d > max)
		vine_usage_error("%s: '%s' is not a number of seconds %s up to %.0f", opt, arg,
				 zero_ok ? "from 0" : "above 0", max);
	return d;
}

int64_t vine_opt_size(const char *opt, const char *arg, int64_t max)
{
	int64_t v;

	if (vine_parse_size(arg, max, &v) < 0)
		vine_usage_error("%s: %s", opt, vine_errmsg());
	return v;
}

const char *vine_progname(void)
{
	return progname;
}

void vine_cli_msg(void *ctx, const char *msg)
{
	(void)ctx;
	vine_warn("%s", msg);
}

void vine_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void vine_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

void vine_die_lib(int status)
{
	vine_die(status, "%s", vine_errmsg());
}

int vine_cli_tty(void)
{
	return isatty(STDERR_FILENO);
}
