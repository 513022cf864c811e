/*
 * t.h - the smallest unit test harness: CHECK records a failure and goes
 * on; T_END prints "N passed, N failed" and returns the exit status.
 */
#ifndef VINE_T_H
#define VINE_T_H

#include <stdio.h>
#include <string.h>

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
#define T_END() (printf("%d passed, %d failed\n", t_pass, t_fail), t_fail ? 1 : 0)

#endif
