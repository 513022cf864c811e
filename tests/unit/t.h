/*
 * t.h - the smallest unit test harness: CHECK, check_int, check_str record
 * a failure and go on; T_END prints "N passed, N failed" and returns the
 * exit status.
 */
#ifndef VINE_T_H
#define VINE_T_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int t_pass, t_fail;

/*
 * The checks.  Each records a pass or prints where and what failed, and
 * goes on; each returns whether it passed, so a check that later ones
 * depend on can guard them: `if (CHECK(e)) check_int(e->size, ==, 1);`.
 *
 *   CHECK(cond)             any condition; prints the expression
 *   check_int(a, op, b)     integers compared with op (== != < <= > >=);
 *                           prints the expression and both values
 *   check_dbl(a, op, b)     the same for doubles (times, rates)
 *   check_str(a, op, b)     strings by strcmp, op == or !=; NULL equals
 *                           only NULL; prints both strings
 *
 * Each argument is evaluated once.  Write one condition per check, not
 * CHECK(a == 1 && b == 2): a failure should say which part and what value.
 */
static inline int t_report(int ok, const char *file, int line)
{
	if (ok) {
		t_pass++;
		return 1;
	}
	t_fail++;
	fprintf(stderr, "%s:%d: ", file, line);
	return 0;
}

static inline int t_cmp(int c, const char *op)
{
	if (!strcmp(op, "=="))
		return c == 0;
	if (!strcmp(op, "!="))
		return c != 0;
	if (!strcmp(op, "<"))
		return c < 0;
	if (!strcmp(op, "<="))
		return c <= 0;
	if (!strcmp(op, ">"))
		return c > 0;
	if (!strcmp(op, ">="))
		return c >= 0;
	abort();
}

static inline int t_check(int ok, const char *file, int line, const char *expr)
{
	if (!t_report(ok, file, line))
		fprintf(stderr, "CHECK(%s) failed\n", expr);
	return ok;
}

static inline int t_int(const char *file, int line, const char *ea, const char *op, const char *eb,
	intmax_t a, intmax_t b)
{
	int ok = t_cmp(a < b ? -1 : a > b, op);

	if (!t_report(ok, file, line))
		fprintf(stderr, "check_int(%s %s %s) failed: %jd %s %jd\n", ea, op, eb, a, op, b);
	return ok;
}

static inline int t_dbl(const char *file, int line, const char *ea, const char *op, const char *eb,
	double a, double b)
{
	int ok = t_cmp(a < b ? -1 : a > b, op);

	if (!t_report(ok, file, line))
		fprintf(stderr, "check_dbl(%s %s %s) failed: %g %s %g\n", ea, op, eb, a, op, b);
	return ok;
}

static inline int t_str(const char *file, int line, const char *ea, const char *op, const char *eb,
	const char *a, const char *b)
{
	int c = a && b ? strcmp(a, b) : a ? 1 : b ? -1 : 0;
	int ok = t_cmp(c, op);

	if (!t_report(ok, file, line))
		fprintf(stderr, "check_str(%s %s %s) failed: %s%s%s %s %s%s%s\n", ea, op, eb,
			a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", op,
			b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
	return ok;
}

#define CHECK(cond) t_check(!!(cond), __FILE__, __LINE__, #cond)
#define check_int(a, op, b) t_int(__FILE__, __LINE__, #a, #op, #b, (intmax_t)(a), (intmax_t)(b))
#define check_dbl(a, op, b) t_dbl(__FILE__, __LINE__, #a, #op, #b, (double)(a), (double)(b))
#define check_str(a, op, b) t_str(__FILE__, __LINE__, #a, #op, #b, (a), (b))
/* the old name of check_str(a, ==, b) */
#define CHECK_STR(a, b) check_str(a, ==, b)

/* Run a shell command made as printf makes it: system()'s status, or -1
 * (with a message) when it does not fit. */
static inline int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int t_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd)) {
		fprintf(stderr, "t_sh: command too long: %.60s...\n", cmd);
		return -1;
	}
	return system(cmd);
}

/*
 * The other end of a conversation: fork a child that runs fn on one end
 * of a socketpair and exits with what fn returns; *fd gets the other end.
 */
static inline pid_t t_fork_peer(int *fd, int (*fn)(int fd, const void *arg), const void *arg)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(sv[0]);
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

#define T_END() (printf("%d passed, %d failed\n", t_pass, t_fail), t_fail ? 1 : 0)

#endif
