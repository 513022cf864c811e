/*
 * collect.c - results directories, joblogs and the waiting meter
 * (see collect.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "task/collect.h"
#include "util/util.h"

#define PAGE 1000

static int finished(const struct vine_task *t)
{
	return t->state == VINE_TASK_DONE || t->state == VINE_TASK_FAILED ||
	       t->state == VINE_TASK_CANCELLED;
}

char *vine_exit_text(const struct vine_task *t)
{
	const struct vine_attempt *a = &t->last;

	if (t->state == VINE_TASK_CANCELLED)
		return vine_xstrdup("cancelled");
	switch (a->outcome) {
	case VINE_OUT_EXITED:
		return vine_xasprintf("%d", a->exit_code);
	case VINE_OUT_SIGNALED:
		return vine_xasprintf("signal %d", a->signal);
	case VINE_OUT_TIMEOUT:
		return vine_xstrdup("timeout");
	case VINE_OUT_LOST:
		return vine_xstrdup("lost");
	case VINE_OUT_ERROR:
	case VINE_OUT_FAULT: {
		char *s = vine_xasprintf("%s: %s", vine_outcome_name(a->outcome),
					 a->message ? a->message : "unknown");
		for (char *p = s; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		return s;
	}
	default:
		return vine_xstrdup(vine_outcome_name(a->outcome) ? vine_outcome_name(a->outcome)
								  : "unknown");
	}
}

void vine_joblog_line(const struct vine_task *t, FILE *f)
{
	const struct vine_attempt *a = &t->last;
	double start = a->started > 0 ? a->started : a->claimed;
	double run = a->started > 0 && a->ended > a->started ? a->ended - a->started : 0;
	int exitval = -1, sig = 0;

	if (t->state == VINE_TASK_CANCELLED) {
		/* -1 as GNU parallel writes for a job it killed; the signal the
		 * worker sent if it was running, else 0 */
		sig = a->outcome == VINE_OUT_CANCELLED ? SIGKILL : 0;
	} else if (a->outcome == VINE_OUT_EXITED) {
		exitval = a->exit_code;
		/* a shell that did not exec its command (dash running "cmd; x",
		 * say) exits 128 + N when the command died of signal N */
		if (exitval > 128 && exitval - 128 <= VINE_JOBLOG_SIGMAX)
			sig = exitval - 128;
	} else if (a->outcome == VINE_OUT_SIGNALED) {
		exitval = 0; /* as GNU parallel: the signal column says it */
	}
	if (a->outcome == VINE_OUT_SIGNALED || a->outcome == VINE_OUT_TIMEOUT)
		sig = a->signal;
	fprintf(f, "%lld\t%s\t%.3f\t%10.3f\t0\t%lld\t%d\t%d\t%s\n", (long long)t->id,
		a->node ? a->node : ":", start, run, (long long)a->received, exitval, sig, t->cmd);
}

static int write_new(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

	if (fd < 0)
		return vine_error_errno("cannot create '%s'", path);
	return vine_write_close(fd, path, data, len);
}

/* Fetch one stored file into dir/name, creating parent directories. */
static int fetch(struct vine_state *st, const struct vine_task *t, const char *dir,
		 const char *name)
{
	char *path = vine_xasprintf("%s/%s", dir, name);
	char *slash = strrchr(path, '/');
	int fd, rc = 0;

	*slash = '\0';
	if (vine_mkdir_p(path, 0777) < 0) {
		free(path);
		return -1;
	}
	*slash = '/';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		rc = vine_error_errno("cannot create '%s'", path);
	else if (vine_state_get_file(st, t->id, t->last.attempt, name, fd) < 0)
		rc = -1;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = vine_error_errno("cannot write '%s'", path);
	free(path);
	return rc;
}

/*
 * Remove what a killed vine-collect left in dir: entries named prefix,
 * then anything, then '.' and six characters (mkdtemp's) for a results
 * directory, or prefix and six characters for a joblog.
 */
static void sweep_debris(const char *dir, const char *prefix, int any_middle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t pl = strlen(prefix);

	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, prefix, pl) || n < pl + 6)
			continue;
		if (any_middle ? n < pl + 8 || de->d_name[n - 7] != '.' : n != pl + 6)
			continue;
		char *p = vine_xasprintf("%s/%s", dir, de->d_name);
		vine_rm_rf(p);
		free(p);
	}
	if (d)
		closedir(d);
}

static int write_task(struct vine_state *st, const struct vine_task *t, const char *dir)
{
	char *tmp = vine_xasprintf("%s/.tmp.%lld.XXXXXX", dir, (long long)t->id);
	char *dst = vine_xasprintf("%s/%lld", dir, (long long)t->id);
	struct vine_file *files = NULL;
	size_t nfiles = 0;
	int rc = -1;

	if (!vine_mkdtemp(tmp, vine_umasked(0777))) {
		vine_error_errno("cannot create a directory in '%s'", dir);
		free(tmp);
		free(dst);
		return -1;
	}
	char *cmd = vine_xasprintf("%s\n", t->cmd), *ex = vine_exit_text(t);
	char *exl = vine_xasprintf("%s\n", ex), *p;
	p = vine_xasprintf("%s/cmd", tmp);
	rc = write_new(p, cmd, strlen(cmd));
	free(p);
	vine_test_pause("collect-task");
	p = vine_xasprintf("%s/exit", tmp);
	if (rc == 0)
		rc = write_new(p, exl, strlen(exl));
	free(p);
	if (rc == 0 && t->last.attempt > 0)
		rc = vine_state_list_files(st, t->id, t->last.attempt, &files, &nfiles);
	for (int k = 0; rc == 0 && k < 2; k++) {
		const char *name = k ? "stderr" : "stdout";
		int stored = 0;
		for (size_t i = 0; i < nfiles; i++)
			stored |= !strcmp(files[i].name, name);
		if (stored) {
			rc = fetch(st, t, tmp, name);
		} else {
			p = vine_xasprintf("%s/%s", tmp, name);
			rc = write_new(p, "", 0);
			free(p);
		}
	}
	for (size_t i = 0; rc == 0 && i < nfiles; i++)
		if (!strncmp(files[i].name, "out/", 4))
			rc = fetch(st, t, tmp, files[i].name);
	if (rc == 0)
		rc = vine_publish(tmp, dst, 0);
	if (rc < 0) {
		vine_error_prefix("task %lld", (long long)t->id);
		vine_rm_rf(tmp);
	}
	vine_state_free_files(files, nfiles);
	free(cmd);
	free(ex);
	free(exl);
	free(tmp);
	free(dst);
	return rc;
}

/* Whether dir holds an entry for the task (incremental mode skips it). */
static int held(const char *dir, int64_t id)
{
	struct stat sb;
	char *p = vine_xasprintf("%s/%lld", dir, (long long)id);
	int r = lstat(p, &sb) == 0;

	free(p);
	return r;
}

/* One sync for the whole tree instead of one per file. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0 || syncfs(fd) < 0)
		rc = vine_error_errno("cannot sync '%s'", dir);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * deliver: the tasks of ids[0..n) are in dir: once that is on disk, the
 * state drops their results; then (newids) their ids are printed.
 */
static int hand_over(struct vine_state *st, const char *dir, const int64_t *ids, size_t n,
		     int wrote, FILE *newids)
{
	if (n == 0)
		return 0;
	if ((wrote && sync_dir(dir) < 0) || vine_state_deliver(st, ids, n, NULL) < 0)
		return -1;
	for (size_t i = 0; newids && i < n; i++)
		fprintf(newids, "%lld\n", (long long)ids[i]);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int vine_collect_write(struct vine_state *st, const char *dir, const char *joblog, FILE *newids,
		       int deliver, int64_t *only, size_t nonly)
{
	FILE *jl = NULL;
	char *jtmp = NULL;
	int64_t after = 0;
	int rc = 0, wrote = 0;

	if (dir && vine_mkdir_p(dir, 0777) < 0)
		return -1;
	/* a vine-collect killed before it published left its temporaries */
	if (dir)
		sweep_debris(dir, ".tmp.", 1);
	if (joblog && strcmp(joblog, "-")) {
		const char *slash = strrchr(joblog, '/');
		char *jdir = slash ? vine_xstrndup(joblog, (size_t)(slash - joblog + 1)) : vine_xstrdup(".");
		char *jpre = vine_xasprintf("%s.tmp.", slash ? slash + 1 : joblog);
		sweep_debris(jdir, jpre, 0);
		free(jdir);
		free(jpre);
	}
	if (joblog && !strcmp(joblog, "-")) {
		jl = stdout;
	} else if (joblog) {
		jtmp = vine_xasprintf("%s.tmp.XXXXXX", joblog);
		int fd = vine_mkstemp(jtmp, vine_umasked(0666));
		if (fd < 0 || !(jl = fdopen(fd, "w"))) {
			rc = vine_error_errno("cannot create '%s'", jtmp);
			if (fd >= 0) {
				close(fd);
				unlink(jtmp);
			}
			free(jtmp);
			return rc;
		}
	}
	if (jl)
		fputs(VINE_JOBLOG_HEADER, jl);
	int64_t *taken = deliver ? vine_xcalloc(PAGE, sizeof(*taken)) : NULL;
	if (nonly)
		qsort(only, nonly, sizeof(*only), cmp_id);
	for (;;) {
		struct vine_task *t;
		size_t n, ntaken = 0;
		int page_wrote = 0;
		if (vine_state_list_tasks(st, after, PAGE, &t, &n) < 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (!finished(&t[i]) ||
			    (nonly && !bsearch(&t[i].id, only, nonly, sizeof(*only), cmp_id)))
				continue;
			if (jl)
				vine_joblog_line(&t[i], jl);
			/* a delivered task's results are gone from the state: its
			 * entry in dir, if any, stays as the reader left it */
			if (!dir || t[i].delivered > 0)
				continue;
			if (newids && held(dir, t[i].id)) {
				/* there already (a run cut before it delivered, or
				 * a reader's marker): the state need not keep it */
				if (deliver)
					taken[ntaken++] = t[i].id;
				continue;
			}
			rc = write_task(st, &t[i], dir);
			wrote = page_wrote = 1;
			if (rc == 0 && deliver)
				taken[ntaken++] = t[i].id;
			else if (rc == 0 && newids)
				fprintf(newids, "%lld\n", (long long)t[i].id);
		}
		if (rc == 0 && deliver)
			rc = hand_over(st, dir, taken, ntaken, page_wrote, newids);
		if (n)
			after = t[n - 1].id;
		vine_state_free_tasks(t, n);
		if (rc < 0 || n < PAGE)
			break;
	}
	free(taken);
	if (jl && jl != stdout) {
		if (rc == 0 && (fflush(jl) != 0 || ferror(jl) || fsync(fileno(jl)) < 0))
			rc = vine_error_errno("cannot write '%s'", jtmp);
		if (fclose(jl) != 0 && rc == 0)
			rc = vine_error_errno("cannot write '%s'", jtmp);
		if (rc == 0)
			rc = vine_publish(jtmp, joblog, 0);
		if (rc < 0)
			unlink(jtmp);
		free(jtmp);
	}
	if (rc == 0 && dir && wrote && !deliver)
		rc = sync_dir(dir);
	return rc;
}

/* --- the meter ------------------------------------------------------------------ */

void vine_collect_meter_init(struct vine_collect_meter *m, const struct vine_counts *c, int quiet)
{
	memset(m, 0, sizeof(*m));
	m->active = !quiet && isatty(STDERR_FILENO);
	m->start = vine_now_mono();
	m->finished0 = c->n[VINE_TASK_DONE] + c->n[VINE_TASK_FAILED];
}

void vine_collect_meter_update(struct vine_collect_meter *m, const struct vine_counts *c)
{
	int64_t fin = c->n[VINE_TASK_DONE] + c->n[VINE_TASK_FAILED];
	int64_t left = c->n[VINE_TASK_READY] + c->n[VINE_TASK_RUNNING];
	double now = vine_now_mono(), el = now - m->start;
	double rate = el > 0 ? (double)(fin - m->finished0) / el : 0;
	char eta[32] = "?";

	if (!m->active)
		return;
	m->last = now;
	if (rate > 0) {
		long s = (long)((double)left / rate + 0.5);
		snprintf(eta, sizeof(eta), "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	}
	if (c->n[VINE_TASK_RUNNING] == 0 && c->worker_slots == 0)
		snprintf(eta, sizeof(eta), "none: no live worker");
	fprintf(stderr, "\r\033[K%lld done, %lld failed, %lld running, %lld ready, %.1f/s, ETA %s",
		(long long)c->n[VINE_TASK_DONE], (long long)c->n[VINE_TASK_FAILED],
		(long long)c->n[VINE_TASK_RUNNING], (long long)c->n[VINE_TASK_READY], rate, eta);
	fflush(stderr);
}

void vine_collect_meter_end(struct vine_collect_meter *m)
{
	if (m->active && m->last > 0) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}
