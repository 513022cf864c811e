/*
 * progress.c - terminal progress meter (see progress.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/progress.h"
#include "util/util.h"

void vine_progress_init(struct vine_progress *p, const char *label, uint64_t total, int quiet)
{
	memset(p, 0, sizeof(*p));
	p->active = !quiet && isatty(STDERR_FILENO);
	p->label = label;
	p->total = total;
	p->start = vine_now_mono();
}

/* Bytes in the units of everything else (vine_format_bytes), or a count. */
static void human(char *out, size_t n, double v, const char *unit)
{
	if (strcmp(unit, "B"))
		snprintf(out, n, "%.0f %s", v, unit);
	else
		vine_format_bytes(out, n, v);
}

void vine_progress_update(struct vine_progress *p, uint64_t done, const char *unit)
{
	double now;
	char a[32], b[32], r[32];

	if (!p->active)
		return;
	now = vine_now_mono();
	if (p->drawn && now - p->last < 0.1 && !(p->total && done >= p->total))
		return;
	p->last = now;
	p->drawn = 1;
	human(a, sizeof(a), (double)done, unit);
	human(r, sizeof(r), now > p->start ? (double)done / (now - p->start) : 0, unit);
	if (p->total) {
		human(b, sizeof(b), (double)p->total, unit);
		fprintf(stderr, "\r\033[K%s: %s / %s (%3.0f%%) %s/s", p->label, a, b,
			100.0 * (double)done / (double)p->total, r);
	} else {
		fprintf(stderr, "\r\033[K%s: %s %s/s", p->label, a, r);
	}
	fflush(stderr);
}

void vine_progress_end(struct vine_progress *p)
{
	if (p->active && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = 0;
}
