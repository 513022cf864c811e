/*
 * cli.c - shared program plumbing (see cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *progname = "vine";

static void check_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || (close(STDOUT_FILENO) < 0 && errno != EBADF)) {
		/* a full disk or a closed pipe behind stdout must not look like success */
		if (errno != EPIPE)
			fprintf(stderr, "%s: cannot write standard output: %s\n", progname, strerror(errno));
		_exit(VINE_EXIT_FAIL);
	}
}

/* Library notices (util.h): "vine-x: MESSAGE" on stderr. */
static void show_notice(const char *msg)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s\n", progname, msg);
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
	vine_set_notice(show_notice);
}

const char *vine_progname(void)
{
	return progname;
}

void vine_warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vine_die(int status, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
