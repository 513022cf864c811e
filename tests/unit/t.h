/*
 * t.h - the smallest unit test harness: CHECK records a failure and goes
 * on; T_END prints "N passed, N failed" and returns the exit status.
 */
#ifndef VINE_T_H
#define VINE_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int t_pass, t_fail;

#define CHECK(cond) do { \
	if (cond) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } \
} while (0)
#define CHECK_STR(a, b) do { \
	const char *t_a = (a), *t_b = (b); \
	if (t_a && t_b && !strcmp(t_a, t_b)) t_pass++; \
	else { t_fail++; fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
		t_a ? t_a : "(null)", t_b ? t_b : "(null)"); } \
} while (0)
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
