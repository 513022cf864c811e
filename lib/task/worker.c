/*
 * worker.c - the worker loop (see worker.h).
 *
 * One process, one poll(2) loop over a signalfd, an eventfd that
 * environment threads raise, and the status pipes of tasks.  The worker
 * makes environments ready itself (see "environments" below), one thread
 * per object, through its own state handle, shared (vine_state_shared):
 * one state connection, one SSH session, per worker.  Each task is a
 * child forked by the loop once its environment is ready: it activates
 * it and execs /bin/sh, and never opens the state.  Its status pipe is
 * close-on-exec, so end of file on it means the command started; anything
 * written on it is the reason it could not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer/peer.h"
#include "cache/cache.h"
#include "cache/seed.h"
#include "util/util.h"
#include "task/worker.h"
#include "peer/xfer.h"

#define MSG_MAX 4096
#define CMD_ARG_MAX 65536 /* longer commands are run from a file */

struct job {
	struct vine_claim c;
	pid_t pid;
	int status_fd;          /* -1: closed */
	struct slot *slot;      /* where it runs; NULL if it never started */
	double started;         /* wall clock; 0 until the command starts */
	double deadline;        /* monotonic; 0: none */
	double kill_at;         /* monotonic; 0: none */
	double ended;           /* wall clock: when its process ended */
	double decide_at;       /* monotonic: parked until (see park()) */
	int timed_out, release, stale, exited, wstatus;
	int fault;              /* its environment could not be made ready */
	char *env;              /* its ready environment, or NULL */
	struct vine_buf msg;    /* why it could not start */
};

/* A place to run one task: one per core, reused while it stays clean. */
struct slot {
	char *dir;              /* W/K: the working directory */
	char *out;              /* W/K.out: $VINE_OUTDIR */
	char *stdout_path, *stderr_path; /* W/K.stdout, W/K.stderr */
	int dir_fd, out_fd, stdout_fd, stderr_fd;
	int busy;
};

struct envfetch;

struct worker {
	struct vine_state *st;      /* shared with the environment threads */
	const struct vine_worker_opts *o;
	int64_t id;
	pid_t self;
	char *workdir;          /* NODE.PID in the cache's tasks/ directory */
	int lock_fd, sig_fd, null_fd;
	sigset_t oldmask;
	struct job **jobs;
	size_t njobs, cap;
	struct slot *slots;     /* o->cores of them */
	int free_cores, free_gpus;
	int64_t free_memory;
	struct vine_result *done;   /* results to report */
	struct job **done_jobs;
	size_t ndone, done_cap;
	struct job **parked;        /* ended of a stop signal, undecided */
	size_t nparked, parked_cap;
	int draining;
	double drain_at;            /* monotonic: hand back what still runs */
	double fail_since;          /* monotonic: state failing since; 0 ok */
	double report_fail_since;   /* monotonic: reports failing since (heartbeats
				     * that work do not reset it); 0 ok */
	double warned_at;           /* monotonic: last state failure printed */
	long unwarned;              /* failures not printed since */
	struct vine_peer_server *srv;   /* serving the cache (-l), or NULL */
	struct vine_cache cache;    /* o->cache, open */
	int wake_fd;                /* eventfd: an environment thread is done */
	struct envfetch **fetches;  /* environments being made ready */
	size_t nfetches, fetches_cap;
	struct job **waiting;       /* claimed tasks waiting for them */
	size_t nwaiting, waiting_cap;
};

int64_t vine_detect_memory(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib > 0 && kib < VINE_MEMORY_MAX / 1024 ? (int64_t)kib * 1024 : 0;
}

int vine_detect_gpus(void)
{
	const char *v = getenv("CUDA_VISIBLE_DEVICES");
	int n = 0;

	if (v) {
		if (!*v || !strcmp(v, "-1") || !strcmp(v, "NoDevFiles"))
			return 0;
		for (n = 1; *v; v++)
			n += *v == ',';
		return n > VINE_GPUS_MAX ? VINE_GPUS_MAX : n;
	}
	DIR *d = opendir("/dev");
	struct dirent *de;
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < VINE_GPUS_MAX)
		if (!strncmp(de->d_name, "nvidia", 6) && de->d_name[6] &&
		    strspn(de->d_name + 6, "0123456789") == strlen(de->d_name + 6))
			n++;
	closedir(d);
	return n;
}

/* A line for the person watching (o->report), if anyone is. */
#define say(w, ...) vine_msgf((w)->o->report, (w)->o->report_ctx, __VA_ARGS__)

int vine_worker_env(struct vine_worker_opts *o)
{
	if (vine_env_seconds("VINE_LEASE", 60, &o->lease) < 0 ||
	    vine_env_seconds("VINE_GRACE", 10, &o->grace) < 0 ||
	    vine_env_seconds("VINE_DRAIN", 20, &o->drain) < 0 ||
	    vine_env_seconds("VINE_STOP_WAIT", 2, &o->stop_wait) < 0)
		return -1;
	return 0;
}

/* --- the tasks/ directory ---------------------------------------------------- */

/* Remove work directories of workers that died: their lock is free. */
static void sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = vine_xasprintf("%s/%s", base, de->d_name);
		int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			vine_rm_rf(p);
		if (fd >= 0)
			close(fd);
		free(p);
	}
	closedir(d);
}

static int make_workdir(struct worker *w)
{
	char *base = vine_xasprintf("%s/tasks", w->o->cache);
	char *tmp = vine_xasprintf("%s/.new.%s.%ld", base, w->o->node, (long)w->self);
	int rc = -1;

	w->workdir = vine_xasprintf("%s/%s.%ld", base, w->o->node, (long)w->self);
	if (vine_mkdir_p(w->o->cache, 0700) < 0 || vine_mkdir_p(base, 0700) < 0)
		goto out;
	sweep(base);
	/* lock under a name the sweep skips, then publish: never seen unlocked */
	vine_rm_rf(tmp);
	vine_rm_rf(w->workdir);
	if (mkdir(tmp, 0700) < 0) {
		vine_error_errno("cannot create directory '%s'", tmp);
		goto out;
	}
	w->lock_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX) < 0) {
		vine_error_errno("cannot lock '%s'", tmp);
		goto out;
	}
	if (vine_publish(tmp, w->workdir, 0) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		vine_rm_rf(tmp);
	free(tmp);
	free(base);
	return rc;
}

/* --- starting a task -------------------------------------------------------- */

static void child_fail(int fd, const char *msg)
{
	vine_write_full(fd, msg, strlen(msg));
	_exit(127);
}

/* --- the task's reaper ------------------------------------------------------ */

/*
 * Each task is two processes: a reaper, the child the worker forked and
 * waits for, alone in its own process group, and the task's /bin/sh in
 * another group of its own.  The reaper is a child subreaper: whatever
 * the task starts and leaves behind (a background job, a daemon that
 * left the group with setsid) becomes its child when its parent dies.
 * Signals to the reaper's group (the worker's TERM at a time limit or a
 * drain) go on to the task's group.  When the task ends, or the worker
 * sends REAPER_KILL, or the worker dies (PR_SET_PDEATHSIG), the reaper
 * kills the task's group and every process left under it, then ends as
 * the task's shell ended, so the worker sees its status unchanged.
 */
#define REAPER_KILL SIGUSR1

/* Ask a task to end at once: its reaper kills its whole tree. */
static void kill_task(const struct job *j)
{
	if (j->pid > 0)
		kill(j->pid, REAPER_KILL);
}

/* The pids of our children (/proc/self/task/T/children, else a /proc scan). */
static size_t list_children(pid_t self, pid_t *out, size_t max)
{
	char path[300];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)self, (long)self);
	if ((f = fopen(path, "re"))) {
		long pid;
		while (n < max && fscanf(f, "%ld", &pid) == 1)
			out[n++] = (pid_t)pid;
		fclose(f);
		return n;
	}
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && n < max && (de = readdir(d))) {
		char buf[512];
		long ppid;
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (got <= 0)
			continue;
		buf[got] = '\0';
		char *rp = strrchr(buf, ')');
		if (rp && sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid == (long)self)
			out[n++] = (pid_t)strtol(de->d_name, NULL, 10);
	}
	if (d)
		closedir(d);
	return n;
}

/* Kill and reap every process left under us, whatever group it is in. */
static void reap_all(void)
{
	pid_t self = getpid(), kids[256];

	for (;;) {
		pid_t p;
		while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (p < 0)
			return; /* no children left */
		size_t n = list_children(self, kids, sizeof(kids) / sizeof(*kids));
		for (size_t i = 0; i < n; i++) {
			/* a child that leads a group takes it along; it is not
			 * reaped yet, so that group id is not anyone else's */
			if (getpgid(kids[i]) == kids[i])
				kill(-kids[i], SIGKILL);
			kill(kids[i], SIGKILL);
		}
		/* one of them, at least, ends now; their orphans come to us */
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			return;
	}
}

/* End the way the task's shell ended. */
static void exit_as(int wstatus)
{
	if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		struct rlimit none = { 0, 0 };
		sigset_t m;
		setrlimit(RLIMIT_CORE, &none); /* the task dumped its core if it could */
		signal(sig, SIG_DFL);
		sigemptyset(&m);
		sigaddset(&m, sig);
		sigprocmask(SIG_UNBLOCK, &m, NULL);
		raise(sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 127);
}

/* In the reaper: start argv in a group of its own and watch over it.  Never returns. */
static void reaper(struct worker *w, int status, char *const argv[])
{
	static const int forward[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
	sigset_t m, old;
	pid_t self = getpid(), g;
	int wstatus = 0;

	sigemptyset(&m);
	for (size_t i = 0; i < sizeof(forward) / sizeof(*forward); i++)
		sigaddset(&m, forward[i]);
	sigaddset(&m, REAPER_KILL);
	sigaddset(&m, SIGCHLD);
	sigprocmask(SIG_BLOCK, &m, &old);
	if ((g = fork()) < 0) {
		vine_error_errno("cannot fork");
		child_fail(status, vine_errmsg());
	}
	if (g == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(127);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execv("/bin/sh", argv);
		vine_error_errno("cannot run /bin/sh");
		child_fail(status, vine_errmsg());
	}
	setpgid(g, g); /* also here, so a signal forwarded at once reaches it */
	close(status);
	vine_test_pause("task-started");
	for (;;) {
		siginfo_t si;
		struct timespec tick = { 1, 0 };
		if (getppid() != w->self) {
			/* the worker is gone: nobody will report this task, end it */
			kill(-g, SIGKILL);
		}
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, g, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == g)
			break;
		int sig = sigtimedwait(&m, &si, &tick);
		if (sig == REAPER_KILL)
			kill(-g, SIGKILL);
		else if (sig > 0 && sig != SIGCHLD)
			kill(-g, sig);
	}
	/* the task's shell is a zombie, so its group id is still its own */
	kill(-g, SIGKILL);
	waitpid(g, &wstatus, 0);
	reap_all();
	exit_as(wstatus);
}

/* In the child: become the task's reaper, then the task.  Never returns. */
static void child(struct worker *w, struct job *j, int status)
{
	char buf[32];

	/*
	 * A task starts with every signal at its default, as a login shell's
	 * command would: signals ignored by whoever started the worker (a
	 * background job of a script ignores INT and QUIT; Python ignores
	 * PIPE) would otherwise be ignored by the task too, through exec.
	 */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &w->oldmask, NULL);
	setpgid(0, 0);
	/* a killed worker leaves no task running: the reaper ends the task's
	 * tree (until the task starts, REAPER_KILL's default action ends it) */
	prctl(PR_SET_PDEATHSIG, REAPER_KILL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (getppid() != w->self)
		_exit(127);
	if (dup2(w->null_fd, 0) < 0 || dup2(j->slot->stdout_fd, 1) < 0 ||
	    dup2(j->slot->stderr_fd, 2) < 0)
		child_fail(status, "cannot set up standard input and output");
	if (chdir(j->c.cwd ? j->c.cwd : j->slot->dir) < 0) {
		if (j->c.cwd) {
			vine_error_errno("cannot enter directory '%s'", j->c.cwd);
			child_fail(status, vine_errmsg());
		}
		child_fail(status, "cannot enter the task directory");
	}
	/* the worker made it ready (env_wait): the task never opens the state */
	if (j->env && vine_env_activate(j->env) < 0) {
		vine_error_prefix("environment %s", j->c.object);
		child_fail(status, vine_errmsg());
	}
	/* the task holds its environment while it runs: in use, never trimmed
	 * (vine-cache(1)); the lock is inherited by what the task starts */
	if (j->env) {
		int held = vine_cache_hold(&w->cache, j->c.object);
		if (held < 0 || fcntl(held, F_SETFD, 0) < 0)
			child_fail(status, held == -2 ? "the environment was removed meanwhile"
				   : "cannot hold the environment's lock");
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)j->c.task);
	setenv("VINE_TASK_ID", buf, 1);
	snprintf(buf, sizeof(buf), "%d", j->c.attempt);
	setenv("VINE_ATTEMPT", buf, 1);
	snprintf(buf, sizeof(buf), "%d", j->c.cores);
	setenv("VINE_CORES", buf, 1);
	setenv("VINE_OUTDIR", j->slot->out, 1);
	setenv("VINE_SCRATCH", j->slot->dir, 1);
	snprintf(buf, sizeof(buf), "%d", j->c.gpus);
	setenv("VINE_GPUS", buf, 1);
	setenv("VINE_NODE", w->o->node, 1);
	if (!j->c.object)
		unsetenv("VINE_ENV");
	if (strlen(j->c.cmd) <= CMD_ARG_MAX) {
		char *argv[] = { "sh", "-c", j->c.cmd, NULL };
		reaper(w, status, argv);
	} else {
		/* too long for one argument (the kernel takes 128 KiB): a script */
		char *script = vine_xasprintf("%s.sh", j->slot->dir);
		if (vine_write_file_atomic(script, j->c.cmd, strlen(j->c.cmd), 0600) < 0)
			child_fail(status, vine_errmsg());
		char *argv[] = { "sh", script, NULL };
		reaper(w, status, argv);
	}
}

/*
 * Make the directory at path fresh: empty, mode 0700, and the one *fd
 * holds.  Reusing the directory the last task left empty costs no
 * metadata writes, which on a journaling file system are most of what
 * running a short task costs; anything else is removed and made again.
 */
static int fresh_dir(const char *path, int *fd)
{
	struct stat a, b;
	union {
		struct dirent64 de;
		char b[2048];
	} u;
	char *buf = u.b;

	if (*fd >= 0 && fstat(*fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev && S_ISDIR(b.st_mode) && (b.st_mode & 07777) == 0700 &&
	    b.st_nlink == 2 && lseek(*fd, 0, SEEK_SET) == 0) {
		ssize_t n = getdents64(*fd, buf, sizeof(u)), off = 0;
		int entries = 0;
		while (n > 0 && off < n) {
			struct dirent64 *de = (struct dirent64 *)(buf + off);
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
			off += de->d_reclen;
		}
		/* "." and ".." fit in one small read; anything more is an entry */
		if (n > 0 && entries == 0 && getdents64(*fd, buf, sizeof(u)) == 0)
			return 0;
	}
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	if (vine_rm_rf(path) < 0)
		return -1;
	if (mkdir(path, 0700) < 0)
		return vine_error_errno("cannot create directory '%s'", path);
	if ((*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return vine_error_errno("cannot open directory '%s'", path);
	return 0;
}

/* An empty file at path, open read-write in *fd (kept, truncated if used). */
static int fresh_file(const char *path, int *fd)
{
	struct stat sb;

	if (*fd >= 0 && fstat(*fd, &sb) == 0 && sb.st_nlink == 1) {
		if (sb.st_size > 0 && ftruncate(*fd, 0) < 0)
			return vine_error_errno("cannot truncate '%s'", path);
		if (lseek(*fd, 0, SEEK_SET) < 0)
			return vine_error_errno("cannot seek '%s'", path);
		return 0;
	}
	if (*fd >= 0)
		close(*fd);
	*fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (*fd < 0)
		return vine_error_errno("cannot create '%s'", path);
	return 0;
}

/* Take a free slot and make its directories and files fresh. */
static struct slot *take_slot(struct worker *w)
{
	struct slot *sl = NULL;

	for (int i = 0; i < w->o->cores && !sl; i++)
		if (!w->slots[i].busy)
			sl = &w->slots[i];
	if (!sl) {
		vine_error("no free task slot"); /* cannot happen: one per core */
		return NULL;
	}
	if (!sl->dir) {
		long k = (long)(sl - w->slots);
		sl->dir = vine_xasprintf("%s/%ld", w->workdir, k);
		sl->out = vine_xasprintf("%s/%ld.out", w->workdir, k);
		sl->stdout_path = vine_xasprintf("%s/%ld.stdout", w->workdir, k);
		sl->stderr_path = vine_xasprintf("%s/%ld.stderr", w->workdir, k);
	}
	if (fresh_dir(sl->dir, &sl->dir_fd) < 0 || fresh_dir(sl->out, &sl->out_fd) < 0 ||
	    fresh_file(sl->stdout_path, &sl->stdout_fd) < 0 ||
	    fresh_file(sl->stderr_path, &sl->stderr_fd) < 0)
		return NULL;
	sl->busy = 1;
	return sl;
}

static void release_slots(struct worker *w)
{
	for (int i = 0; w->slots && i < w->o->cores; i++) {
		struct slot *sl = &w->slots[i];
		int fds[] = { sl->dir_fd, sl->out_fd, sl->stdout_fd, sl->stderr_fd };
		for (int k = 0; k < 4; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		free(sl->dir);
		free(sl->out);
		free(sl->stdout_path);
		free(sl->stderr_path);
	}
	free(w->slots);
}

static int start(struct worker *w, struct job *j)
{
	int pipefd[2] = { -1, -1 };

	if (!(j->slot = take_slot(w)))
		return -1;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vine_error_errno("cannot set up task %lld", (long long)j->c.task);
	j->pid = fork();
	if (j->pid < 0) {
		vine_error_errno("cannot fork");
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (j->pid == 0) {
		close(pipefd[0]);
		child(w, j, pipefd[1]);
	}
	setpgid(j->pid, j->pid); /* also here, so kill(-pid) works at once */
	close(pipefd[1]);
	j->status_fd = pipefd[0];
	/* its environment is ready already: the command starts now */
	j->started = vine_now_wall();
	if (j->c.timeout > 0)
		j->deadline = vine_now_mono() + j->c.timeout;
	return 0;
}

/* Read what the child said on its status pipe; at end of file close it. */
static void read_status(struct job *j)
{
	char buf[512];
	ssize_t n;

	while ((n = read(j->status_fd, buf, sizeof(buf))) > 0)
		if (j->msg.len < MSG_MAX)
			vine_buf_add(&j->msg, buf, (size_t)n);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	close(j->status_fd);
	j->status_fd = -1;
	if (!j->started && j->msg.len == 0) {
		j->started = vine_now_wall();
		if (j->c.timeout > 0)
			j->deadline = vine_now_mono() + j->c.timeout;
	}
}

/* --- finishing a task ------------------------------------------------------- */

/* Ship dir/rel (a file or directory under out/) as "out/rel"; 1 if stale. */
static int ship_tree(struct worker *w, struct job *j, const char *base, const char *rel)
{
	char *path = *rel ? vine_xasprintf("%s/%s", base, rel) : vine_xstrdup(base);
	DIR *d = opendir(path);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = vine_error_errno("cannot read '%s'", path);
		free(path);
		return rc;
	}
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *r = *rel ? vine_xasprintf("%s/%s", rel, de->d_name) : vine_xstrdup(de->d_name);
		char *full = vine_xasprintf("%s/%s", base, r);
		struct stat sb;
		if (lstat(full, &sb) < 0) {
			rc = vine_error_errno("cannot stat '%s'", full);
		} else if (S_ISDIR(sb.st_mode)) {
			rc = ship_tree(w, j, base, r);
		} else if (S_ISREG(sb.st_mode)) {
			char *name = vine_xasprintf("out/%s", r);
			int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				rc = vine_error_errno("cannot open '%s'", full);
			else if (fstat(fd, &sb) < 0)
				rc = vine_error_errno("cannot stat '%s'", full);
			else
				rc = vine_state_put_file(w->st, w->id, j->c.task, j->c.attempt, name, fd,
							 (int64_t)sb.st_size);
			if (fd >= 0)
				close(fd);
			free(name);
		} else if (!w->o->quiet) {
			vine_msgf(w->o->warn, w->o->warn_ctx,
				  "task %lld: not shipping '%s': not a regular file", (long long)j->c.task, r);
		}
		free(full);
		free(r);
	}
	closedir(d);
	free(path);
	return rc;
}

/* Ship stdout, stderr and DIR.out/: 0 done, 1 stale, -1 error. */
static int ship(struct worker *w, struct job *j)
{
	static const char *const names[] = { "stdout", "stderr" };
	int fds[] = { j->slot->stdout_fd, j->slot->stderr_fd };
	int rc = 0;

	for (int i = 0; rc == 0 && i < 2; i++) {
		struct stat sb;
		/* the child shared our file offset: start from the beginning */
		if (fstat(fds[i], &sb) < 0 || lseek(fds[i], 0, SEEK_SET) < 0)
			rc = vine_error_errno("cannot read the task's %s", names[i]);
		else if (sb.st_size > 0)
			rc = vine_state_put_file(w->st, w->id, j->c.task, j->c.attempt, names[i],
						 fds[i], (int64_t)sb.st_size);
	}
	if (rc == 0)
		rc = ship_tree(w, j, j->slot->out, "");
	return rc;
}

static void remove_job(struct worker *w, struct job *j)
{
	for (size_t i = 0; i < w->njobs; i++) {
		if (w->jobs[i] == j) {
			w->jobs[i] = w->jobs[--w->njobs];
			break;
		}
	}
}

static void free_job(struct job *j)
{
	if (j->status_fd >= 0)
		close(j->status_fd);
	if (j->slot)
		j->slot->busy = 0;
	vine_buf_release(&j->msg);
	free(j->env);
	free(j->c.cmd);
	free(j->c.object);
	free(j->c.origin);
	free(j->c.cwd);
	free(j);
}

static int stop_signal(int sig)
{
	return sig == SIGTERM || sig == SIGKILL || sig == SIGINT || sig == SIGHUP;
}

/*
 * Did the task end of a stop signal: killed by one, or a shell that exited
 * 128 + one because its child was (a batch system signals every process
 * of a step, and the shell may see its child die before its own signal
 * comes)?
 */
static int stop_death(int wstatus)
{
	if (WIFSIGNALED(wstatus))
		return stop_signal(WTERMSIG(wstatus));
	return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) > 128 && stop_signal(WEXITSTATUS(wstatus) - 128);
}

/* Tell the person watching how a task ended. */
static void report_end(struct worker *w, const struct job *j, const struct vine_result *r)
{
	double secs = j->started > 0 && j->ended > j->started ? j->ended - j->started : 0;

	if (!w->o->report)
		return;
	switch (r->outcome) {
	case VINE_OUT_RELEASED:
		say(w, "task %lld: handed back", (long long)j->c.task);
		break;
	case VINE_OUT_ERROR:
		say(w, "task %lld: could not run: %s", (long long)j->c.task, j->msg.data ? j->msg.data : "");
		break;
	case VINE_OUT_TIMEOUT:
		say(w, "task %lld: timed out after %.1f s", (long long)j->c.task, secs);
		break;
	case VINE_OUT_SIGNALED:
		say(w, "task %lld: killed by signal %d after %.1f s", (long long)j->c.task, r->signal,
		    secs);
		break;
	default:
		if (r->exit_code)
			say(w, "task %lld: failed, exit %d after %.1f s", (long long)j->c.task,
			    r->exit_code, secs);
		else
			say(w, "task %lld: done in %.1f s", (long long)j->c.task, secs);
	}
}

/* Turn an ended task into a result to report, holding its core till now. */
static void record(struct worker *w, struct job *j)
{
	struct vine_result r = { .task = j->c.task, .attempt = j->c.attempt };
	int st = j->wstatus, sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;

	w->free_cores += j->c.cores;
	w->free_memory += j->c.memory;
	w->free_gpus += j->c.gpus;
	if (j->stale) {
		say(w, "task %lld: stopped (cancelled, or no longer this worker's)",
		    (long long)j->c.task);
		free_job(j);
		return;
	}
	r.started = j->started;
	r.ended = j->ended;
	if (j->release || (w->draining && stop_death(st))) {
		r.outcome = VINE_OUT_RELEASED;
	} else if (j->fault) {
		r.outcome = VINE_OUT_FAULT;
	} else if (j->msg.len) {
		r.outcome = VINE_OUT_ERROR;
		r.exit_code = 127;
	} else {
		r.outcome = j->timed_out ? VINE_OUT_TIMEOUT : sig ? VINE_OUT_SIGNALED : VINE_OUT_EXITED;
		r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
		r.signal = sig;
		int s = ship(w, j);
		if (s > 0) {
			free_job(j);
			return;
		}
		if (s < 0) {
			vine_error_prefix("cannot ship the results");
			vine_buf_reset(&j->msg);
			vine_buf_addstr(&j->msg, vine_errmsg());
			r.outcome = VINE_OUT_ERROR;
		}
	}
	report_end(w, j, &r);
	/* everything is shipped: the slot can take the next task */
	if (j->slot) {
		j->slot->busy = 0;
		j->slot = NULL;
	}
	if (w->ndone == w->done_cap) {
		w->done_cap = w->done_cap ? 2 * w->done_cap : 16;
		w->done = vine_xrealloc(w->done, w->done_cap * sizeof(*w->done));
		w->done_jobs = vine_xrealloc(w->done_jobs, w->done_cap * sizeof(*w->done_jobs));
	}
	w->done_jobs[w->ndone] = j;
	w->done[w->ndone++] = r;
}

/*
 * A task died of a stop signal the worker did not send.  Batch systems
 * signal every process of a job step at once, so the worker's own signal
 * may still be on its way.  Park the task, its core, slot and output kept
 * as they are, and let the loop go on: settle_parked() hands it back if
 * the worker's stop signal comes within o->stop_wait seconds, else records
 * it as the failure it was.  Heartbeats keep naming it, so the lease and
 * the attempt stay ours meanwhile.
 */
static void park(struct worker *w, struct job *j)
{
	j->decide_at = vine_now_mono() + w->o->stop_wait;
	if (w->nparked == w->parked_cap) {
		w->parked_cap = w->parked_cap ? 2 * w->parked_cap : 8;
		w->parked = vine_xrealloc(w->parked, w->parked_cap * sizeof(*w->parked));
	}
	w->parked[w->nparked++] = j;
}

/*
 * Decide what is parked: hand it all back once the worker drains (its own
 * stop signal came); record as failed what waited out its time; drop what
 * a heartbeat found stale.
 */
static void settle_parked(struct worker *w, double now)
{
	size_t k = 0;

	for (size_t i = 0; i < w->nparked; i++) {
		struct job *j = w->parked[i];
		if (w->draining || j->stale || now >= j->decide_at)
			record(w, j);
		else
			w->parked[k++] = j;
	}
	w->nparked = k;
}

/* A task's process has ended: record it, or park it for a while. */
static void ended(struct worker *w, struct job *j)
{
	remove_job(w, j);
	if (j->status_fd >= 0)
		read_status(j);
	j->ended = vine_now_wall();
	if (!j->stale && !j->release && !j->timed_out && !w->draining && stop_death(j->wstatus))
		park(w, j);
	else
		record(w, j);
}

/* Reap every child that has ended.  Stragglers in its group are killed. */
static void reap_children(struct worker *w)
{
	for (;;) {
		siginfo_t si;
		int st;

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return;
		/* the leader is still a zombie, so its group id cannot be reused yet */
		kill(-si.si_pid, SIGKILL);
		if (waitpid(si.si_pid, &st, 0) < 0)
			continue;
		for (size_t i = 0; i < w->njobs; i++) {
			struct job *j = w->jobs[i];
			if (j->pid == si.si_pid) {
				j->exited = 1;
				j->wstatus = st;
				ended(w, j);
				break;
			}
		}
	}
}

/* --- environments ------------------------------------------------------------ */

/*
 * The worker makes each environment ready itself, once per node (the
 * cache's lock, vine_seed), in a thread per object that fetches through
 * the worker's own state handle (w->st is shared: a mutex serialises the
 * loop's operations and the thread's, over one connection).  A task whose
 * environment is ready starts at once, with no state traffic beyond its
 * claim.  One whose environment is not waits in w->waiting, holding its
 * cores and its claim (heartbeats name it), while the loop goes on
 * renewing the lease and running what else it has claimed.  When the
 * thread ends the waiting tasks start, or, if it failed, are handed back
 * as FAULT with its message (vine(7), FAULTS): that is the node's fault,
 * not the task's.
 */
struct envfetch {
	char *id, *origin, *cache, *node;   /* its own copies: it may outlive w */
	struct vine_state *st;
	pthread_t thread;
	int wake;               /* its dup of the worker's eventfd */
	int done;               /* set (atomically) when the thread ends */
	int rc;
	char *env;              /* ready: the environment's path */
	uint64_t cache_limit;   /* the worker's -L */
	int drop_archive;       /* not serving: the archive goes once unpacked */
	char msg[1024];         /* failed: why */
};

static void *envfetch_run(void *arg)
{
	struct envfetch *f = arg;
	struct vine_xfer_seed xs = { f->st, f->cache, f->node, NULL };
	struct vine_fetcher fetcher = { vine_xfer_seed_fetch, &xs, 1 };
	struct vine_seed_opts so = { .cache = f->cache, .jobs = 0, .quiet = 1,
				     .expect_id = f->id, .fetcher = &fetcher,
				     .cache_limit = f->cache_limit,
				     .drop_archive = f->drop_archive,
				     .removed = vine_xfer_seed_removed, .removed_ctx = &xs };
	const char *fail = getenv("VINE_TEST_FAIL_FETCH");
	const char *hold = getenv("VINE_TEST_FETCH_WAIT");
	char id[VINE_ID_LEN + 1];
	uint64_t one = 1;

	/* test hooks (vine-worker(1), ENVIRONMENT): $VINE_TEST_FETCH_WAIT=FILE
	 * holds the fetch until FILE exists (at most 120 s);
	 * $VINE_TEST_FAIL_FETCH fails it */
	for (int i = 0; hold && *hold && access(hold, F_OK) < 0 && i < 6000; i++)
		usleep(20000);
	if (fail && *fail)
		f->rc = vine_error("not fetching it ($VINE_TEST_FAIL_FETCH)");
	else
		f->rc = vine_seed(&so, f->origin, &f->env, id);
	if (f->rc < 0)
		snprintf(f->msg, sizeof(f->msg), "environment %s on node '%s': %s", f->id, f->node,
			 vine_errmsg());
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	if (write(f->wake, &one, sizeof(one)) < 0) {
		/* the eventfd cannot overflow at one write per thread */
	}
	close(f->wake);
	return NULL;
}

static void envfetch_free(struct envfetch *f)
{
	free(f->id);
	free(f->origin);
	free(f->cache);
	free(f->node);
	free(f->env);
	free(f);
}

static void wait_add(struct worker *w, struct job *j)
{
	if (w->nwaiting == w->waiting_cap) {
		w->waiting_cap = w->waiting_cap ? 2 * w->waiting_cap : 8;
		w->waiting = vine_xrealloc(w->waiting, w->waiting_cap * sizeof(*w->waiting));
	}
	w->waiting[w->nwaiting++] = j;
}

/*
 * j needs an environment: 1 when it is ready (j->env set), 0 when j now
 * waits for it (a thread is making it ready), -1 when no thread could be
 * started (j->msg says why).
 */
static int env_wait(struct worker *w, struct job *j)
{
	struct envfetch *f = NULL;
	int err;

	if (vine_cache_env_ready(&w->cache, j->c.object) == 1) {
		j->env = vine_cache_env_path(&w->cache, j->c.object);
		return 1;
	}
	for (size_t i = 0; i < w->nfetches && !f; i++)
		if (!strcmp(w->fetches[i]->id, j->c.object))
			f = w->fetches[i];
	if (!f) {
		f = vine_xcalloc(1, sizeof(*f));
		f->id = vine_xstrdup(j->c.object);
		f->origin = vine_xstrdup(j->c.origin ? j->c.origin : j->c.object);
		f->cache = vine_xstrdup(w->o->cache);
		f->node = vine_xstrdup(w->o->node);
		f->cache_limit = w->o->cache_limit;
		f->drop_archive = !w->o->listen;
		f->st = w->st;
		f->wake = fcntl(w->wake_fd, F_DUPFD_CLOEXEC, 3);
		err = f->wake < 0 ? errno : pthread_create(&f->thread, NULL, envfetch_run, f);
		if (err) {
			vine_buf_addf(&j->msg, "environment %s: cannot start a thread to fetch it: %s",
				      j->c.object, strerror(err));
			if (f->wake >= 0)
				close(f->wake);
			envfetch_free(f);
			return -1;
		}
		if (w->nfetches == w->fetches_cap) {
			w->fetches_cap = w->fetches_cap ? 2 * w->fetches_cap : 4;
			w->fetches = vine_xrealloc(w->fetches, w->fetches_cap * sizeof(*w->fetches));
		}
		w->fetches[w->nfetches++] = f;
	}
	wait_add(w, j);
	return 0;
}

static void launch(struct worker *w, struct job *j);

/* An environment thread ended: start what waited for it, or hand it back. */
static void env_done(struct worker *w, struct envfetch *f)
{
	size_t k = 0;

	for (size_t i = 0; i < w->nwaiting; i++) {
		struct job *j = w->waiting[i];
		if (strcmp(j->c.object, f->id)) {
			w->waiting[k++] = j;
		} else if (f->rc == 0) {
			j->env = vine_xstrdup(f->env);
			launch(w, j);
		} else {
			j->fault = 1;
			vine_buf_addstr(&j->msg, f->msg);
			record(w, j);
		}
	}
	w->nwaiting = k;
	if (f->rc < 0 && !w->o->quiet)
		vine_msgf(w->o->warn, w->o->warn_ctx, "%s: its tasks are handed back", f->msg);
}

/* Join the environment threads that have ended (the eventfd was raised). */
static void env_reap(struct worker *w)
{
	uint64_t v;
	size_t k = 0;

	if (read(w->wake_fd, &v, sizeof(v)) < 0) {
		/* nothing raised it: a spurious wake-up */
	}
	for (size_t i = 0; i < w->nfetches; i++) {
		struct envfetch *f = w->fetches[i];
		if (!__atomic_load_n(&f->done, __ATOMIC_ACQUIRE)) {
			w->fetches[k++] = f;
			continue;
		}
		pthread_join(f->thread, NULL);
		env_done(w, f);
		envfetch_free(f);
	}
	w->nfetches = k;
}

/* Hand back every task still waiting for its environment (draining). */
static void env_release_waiting(struct worker *w)
{
	for (size_t i = 0; i < w->nwaiting; i++) {
		w->waiting[i]->release = 1;
		record(w, w->waiting[i]);
	}
	w->nwaiting = 0;
}

/*
 * The worker leaves: threads still fetching are left to the process's
 * exit, cut off from the state first; they hold copies of what they use.
 * 1 if some were left so (then w->st must not be closed).
 */
static int env_leave(struct worker *w)
{
	int left = 0;

	for (size_t i = 0; i < w->nfetches; i++) {
		struct envfetch *f = w->fetches[i];
		if (__atomic_load_n(&f->done, __ATOMIC_ACQUIRE)) {
			pthread_join(f->thread, NULL);
			envfetch_free(f);
			continue;
		}
		if (!left)
			vine_state_shared_cut(w->st);
		left = 1;
		pthread_detach(f->thread);
	}
	w->nfetches = 0;
	for (size_t i = 0; i < w->nwaiting; i++)
		free_job(w->waiting[i]);
	w->nwaiting = 0;
	return left;
}

/* --- talking to the state --------------------------------------------------- */

/* How long the state may keep failing before the worker gives up: a lease, at least 10 s. */
static double give_up_after(const struct worker *w)
{
	return w->o->lease > 10 ? w->o->lease : 10;
}

/*
 * Note a state failure, on the clock *since (heartbeats and reports keep
 * their own, so that heartbeats that work cannot hide reports that never
 * do); -1 once it has failed for longer than give_up_after().  At most
 * one line every WARN_EVERY seconds, however fast the failures come.
 */
#define WARN_EVERY 10.0
static int state_failed(struct worker *w, const char *what, double *since)
{
	double now = vine_now_mono();

	if (!*since)
		*since = now;
	if (!w->warned_at || now - w->warned_at >= WARN_EVERY) {
		if (w->unwarned)
			vine_msgf(w->o->warn, w->o->warn_ctx, "%s: %s (and %ld more failures)", what,
				  vine_errmsg(), w->unwarned);
		else
			vine_msgf(w->o->warn, w->o->warn_ctx, "%s: %s", what, vine_errmsg());
		w->warned_at = now;
		w->unwarned = 0;
	} else {
		w->unwarned++;
	}
	if (now - *since > give_up_after(w))
		return vine_error_prefix("giving up after %.0f seconds: %s", now - *since, what);
	return 0;
}

/* Renew the lease for what runs and what is parked; kill what is stale. */
static int heartbeat(struct worker *w)
{
	size_t n = w->njobs + w->nparked, nw = w->nwaiting;
	struct vine_attempt_ref *refs = vine_xcalloc(n + nw + 1, sizeof(*refs));
	int *stale = vine_xcalloc(n + nw + 1, sizeof(*stale));
	int rc = 0;

	for (size_t i = 0; i < n + nw; i++) {
		struct job *j = i < w->njobs ? w->jobs[i] : i < n ? w->parked[i - w->njobs]
								  : w->waiting[i - n];
		refs[i].task = j->c.task;
		refs[i].attempt = j->c.attempt;
	}
	if (vine_state_heartbeat(w->st, w->id, refs, n + nw, stale) < 0) {
		rc = state_failed(w, "cannot send heartbeat", &w->fail_since);
	} else {
		w->fail_since = 0;
		for (size_t i = 0; i < w->njobs; i++) {
			if (stale[i] && !w->jobs[i]->stale) {
				w->jobs[i]->stale = 1;
				kill_task(w->jobs[i]);
			}
		}
		/* parked tasks have ended already: settle_parked() drops them */
		for (size_t i = w->njobs; i < n; i++)
			if (stale[i])
				w->parked[i - w->njobs]->stale = 1;
		/* waiting for an environment: not ours any more, drop them */
		size_t k = 0;
		for (size_t i = 0; i < nw; i++) {
			if (stale[n + i]) {
				w->waiting[i]->stale = 1;
				record(w, w->waiting[i]);
			} else {
				w->waiting[k++] = w->waiting[i];
			}
		}
		w->nwaiting = k;
	}
	free(refs);
	free(stale);
	return rc;
}

/*
 * Report the results of ended tasks and, if want, claim tasks for the free
 * cores, in one call to the state; start what was claimed.  Returns how
 * many tasks were started, or -1 when the state has failed for too long.
 * *more is the claim's.
 */
static int exchange(struct worker *w, int want, int *more)
{
	struct vine_claim *c = NULL;
	size_t n = 0;
	int *acc = vine_xcalloc(w->ndone + 1, sizeof(*acc));
	int started = 0, rc;

	*more = 0;
	for (size_t i = 0; i < w->ndone; i++)
		w->done[i].message = w->done_jobs[i]->msg.len ? w->done_jobs[i]->msg.data : NULL;
	if (want) {
		struct vine_resources fr = { w->free_cores, w->free_memory, w->free_gpus };
		struct vine_resources tot = { w->o->cores, w->o->memory, w->o->gpus };
		rc = vine_state_finish_claim_res(w->st, w->id, w->done, w->ndone, acc, &fr, &tot,
						 (size_t)w->free_cores, &c, &n, more);
	}
	else
		rc = vine_state_finish(w->st, w->id, w->done, w->ndone, acc);
	if (rc < 0) {
		free(acc);
		return state_failed(w, w->ndone ? "cannot report results" : "cannot claim tasks",
				    w->ndone ? &w->report_fail_since : &w->fail_since) < 0 ? -1 : 0;
	}
	w->fail_since = w->report_fail_since = 0;
	for (size_t i = 0; i < w->ndone; i++) {
		if (!acc[i] && !w->o->quiet)
			vine_msgf(w->o->warn, w->o->warn_ctx, "task %lld attempt %d: result refused (stale)",
				  (long long)w->done[i].task, w->done[i].attempt);
		free_job(w->done_jobs[i]);
	}
	w->ndone = 0;
	free(acc);
	for (size_t i = 0; i < n; i++) {
		struct job *j = vine_xcalloc(1, sizeof(*j));
		j->c = c[i];
		j->status_fd = -1;
		w->free_cores -= j->c.cores;
		w->free_memory -= j->c.memory;
		w->free_gpus -= j->c.gpus;
		started++;
		if (j->c.object && env_wait(w, j) <= 0) {
			if (j->msg.len) {
				/* no thread to make it ready: a fault of this node */
				j->fault = 1;
				record(w, j);
			}
			continue;
		}
		launch(w, j);
	}
	free(c);
	return started;
}

/* Run a claimed task whose environment is ready (or that needs none). */
static void launch(struct worker *w, struct job *j)
{
	if (w->njobs == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 16;
		w->jobs = vine_xrealloc(w->jobs, w->cap * sizeof(*w->jobs));
	}
	w->jobs[w->njobs++] = j;
	say(w, "task %lld: started%s%.120s%s", (long long)j->c.task,
	    j->c.attempt > 1 ? " again: " : ": ", j->c.cmd, strlen(j->c.cmd) > 120 ? "..." : "");
	if (start(w, j) < 0) {
		/* could not even fork: report it as an error of this attempt */
		j->pid = 0;
		vine_buf_addstr(&j->msg, vine_errmsg());
		j->wstatus = 127 << 8;
		ended(w, j);
	}
}

/* --- the loop ----------------------------------------------------------------- */

static void on_signal(struct worker *w)
{
	struct signalfd_siginfo si;
	double now = vine_now_mono();

	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (!w->draining) {
			w->draining = 1;
			w->drain_at = now + w->o->drain;
			if (w->njobs)
				say(w, "draining: %zu running task%s get%s %.0f s to finish "
				    "(signal again to stop them now)", w->njobs, w->njobs == 1 ? "" : "s",
				    w->njobs == 1 ? "s" : "", w->o->drain);
			else
				say(w, "draining: nothing running");
			vine_test_pause("drain");
		} else {
			w->drain_at = now;
			if (w->njobs)
				say(w, "draining: stopping %zu running task%s now", w->njobs,
				    w->njobs == 1 ? "" : "s");
		}
	}
}

static void check_timers(struct worker *w, double now)
{
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = w->jobs[i];
		if (j->deadline && now >= j->deadline && !j->timed_out && !j->release) {
			j->timed_out = 1;
			kill(-j->pid, SIGTERM);
			j->kill_at = now + w->o->grace;
		}
		if (w->draining && now >= w->drain_at && !j->release) {
			j->release = 1;
			kill(-j->pid, SIGTERM);
			if (!j->kill_at)
				j->kill_at = now + w->o->grace;
		}
		if (j->kill_at && now >= j->kill_at) {
			kill_task(j);
			j->kill_at = 0;
		}
	}
}

static double next_timer(struct worker *w, double t)
{
	for (size_t i = 0; i < w->njobs; i++) {
		struct job *j = w->jobs[i];
		if (j->deadline && !j->timed_out && j->deadline < t)
			t = j->deadline;
		if (j->kill_at && j->kill_at < t)
			t = j->kill_at;
	}
	for (size_t i = 0; i < w->nparked; i++)
		if (w->parked[i]->decide_at < t)
			t = w->parked[i]->decide_at;
	if (w->draining && w->drain_at < t)
		t = w->drain_at;
	return t;
}

static int loop(struct worker *w)
{
	const struct vine_worker_opts *o = w->o;
	double now = vine_now_mono();
	double last_busy = now, next_claim = now, backoff = 0.005;
	/* often enough that a cancelled task stops within VINE_CANCEL_BOUND */
	double beat_every = o->lease / 4 < VINE_CANCEL_BOUND ? o->lease / 4 : VINE_CANCEL_BOUND;
	double next_beat = now + beat_every;
	struct pollfd *pfd = NULL;
	struct job **pjob = NULL;
	size_t pcap = 0;
	int rc = 0;

	for (;;) {
		now = vine_now_mono();
		int want = !w->draining && w->free_cores > 0 && now >= next_claim;
		if (want || w->ndone > 0) {
			int more = 0, got = exchange(w, want, &more);
			if (got < 0) {
				rc = -1;
				break;
			}
			if (want && (got > 0 || more))
				last_busy = now;
			if (!want) {
				/* reported only */
			} else if (got > 0 && (more || w->free_cores == 0)) {
				backoff = 0.005;
				next_claim = now;
			} else {
				next_claim = now + backoff;
				backoff = backoff * 2 > 1.0 ? 1.0 : backoff * 2;
			}
		}
		if (w->draining && w->nwaiting > 0)
			env_release_waiting(w); /* they have not started: hand them back now */
		if (w->njobs > 0 || w->nparked > 0 || w->nwaiting > 0)
			last_busy = now;
		/* parked results are never left undecided, even by -i 0 */
		if (w->njobs == 0 && w->ndone == 0 && w->nparked == 0 && w->nwaiting == 0) {
			if (w->draining)
				break;
			if (o->idle >= 0 && now - last_busy >= o->idle)
				break;
		}
		/* stopping: what is unreported when the drain and grace are over is given up */
		if (w->draining && w->njobs == 0 && w->nparked == 0 && w->ndone > 0 &&
		    now >= w->drain_at + o->grace) {
			rc = vine_error("stopping with %zu results unreported: %s", w->ndone,
					w->report_fail_since ? vine_errmsg() : "the state did not answer");
			break;
		}
		if (now >= next_beat) {
			if (heartbeat(w) < 0) {
				rc = -1;
				break;
			}
			next_beat = now + beat_every;
		}
		check_timers(w, now);

		/* sleep until something happens or a timer is due */
		double until = next_beat;
		if (!w->draining && w->free_cores > 0 && next_claim < until)
			until = next_claim;
		/* (with results unreported, the idle time cannot end the loop) */
		if (o->idle >= 0 && w->njobs == 0 && w->nparked == 0 && w->ndone == 0 &&
		    w->nwaiting == 0 &&
		    last_busy + o->idle < until)
			until = last_busy + o->idle;
		if (w->ndone > 0 && now + 1 < until)
			until = now + 1; /* retry reporting */
		if (w->draining && w->ndone > 0 && w->drain_at + o->grace < until)
			until = w->drain_at + o->grace;
		until = next_timer(w, until);
		if (pcap < w->njobs + 2) {
			pcap = w->njobs + 16;
			pfd = vine_xrealloc(pfd, pcap * sizeof(*pfd));
			pjob = vine_xrealloc(pjob, pcap * sizeof(*pjob));
		}
		size_t np = 0;
		pfd[np].fd = w->sig_fd;
		pfd[np].events = POLLIN;
		pjob[np++] = NULL;
		pfd[np].fd = w->wake_fd;
		pfd[np].events = POLLIN;
		pjob[np++] = NULL;
		for (size_t i = 0; i < w->njobs; i++) {
			if (w->jobs[i]->status_fd >= 0 && w->jobs[i]->c.object) {
				pfd[np].fd = w->jobs[i]->status_fd;
				pfd[np].events = POLLIN;
				pjob[np++] = w->jobs[i];
			}
		}
		double wait = until - vine_now_mono();
		int ms = wait <= 0 ? 0 : wait > 60 ? 60000 : (int)ceil(wait * 1000);
		if (poll(pfd, np, ms) < 0 && errno != EINTR) {
			rc = vine_error_errno("poll");
			break;
		}
		for (size_t i = 2; i < np; i++)
			if (pfd[i].revents)
				read_status(pjob[i]);
		int before = w->free_cores;
		if (pfd[1].revents)
			env_reap(w);
		/* with results parked, look for the stop signal even on a timer
		 * wake-up, so that one arriving as the wait runs out still counts */
		if (pfd[0].revents || w->nparked > 0) {
			on_signal(w);
			reap_children(w);
		}
		settle_parked(w, vine_now_mono());
		if (w->free_cores > before) {
			next_claim = vine_now_mono();
			backoff = 0.005;
		}
	}
	free(pfd);
	free(pjob);
	return rc;
}

/*
 * Kill what still runs and hand it back (after a failure).  Unreported
 * and parked results are dropped: unregistering hands their attempts back
 * if the state answers again, else the lease runs out and they are lost.
 */
static void abandon(struct worker *w)
{
	for (size_t i = 0; i < w->njobs; i++) {
		w->jobs[i]->release = 1;
		kill_task(w->jobs[i]);
	}
	while (w->njobs > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0)
			break;
		for (size_t i = 0; i < w->njobs; i++) {
			if (w->jobs[i]->pid == pid) {
				w->jobs[i]->wstatus = st;
				ended(w, w->jobs[i]);
				break;
			}
		}
	}
	for (size_t i = 0; i < w->ndone; i++)
		free_job(w->done_jobs[i]);
	w->ndone = 0;
	for (size_t i = 0; i < w->nparked; i++)
		free_job(w->parked[i]);
	w->nparked = 0;
}

int vine_worker_run(struct vine_state *st, const struct vine_worker_opts *o)
{
	struct worker w = { .o = o, .lock_fd = -1, .sig_fd = -1, .null_fd = -1,
			    .free_cores = o->cores, .free_memory = o->memory, .free_gpus = o->gpus,
			    .self = getpid(), .wake_fd = -1, .cache = { .fd = -1 } };
	struct vine_worker_info info = { .node = o->node, .pid = w.self, .cores = o->cores,
					 .listen = o->listen, .lease = o->lease,
					 .memory = o->memory, .gpus = o->gpus };
	char host[256] = "";
	sigset_t mask;
	int rc = -1;

	gethostname(host, sizeof(host) - 1);
	info.host = host;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &w.oldmask) < 0)
		return vine_error_errno("cannot block signals");
	w.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (w.sig_fd < 0) {
		vine_error_errno("signalfd");
		goto out;
	}
	if ((w.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		vine_error_errno("cannot open '/dev/null'");
		goto out;
	}
	if ((w.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		vine_error_errno("eventfd");
		goto out;
	}
	if (make_workdir(&w) < 0 || vine_cache_open(&w.cache, o->cache) < 0)
		goto out;
	/* the environment threads share it; taken after the signals are
	 * blocked, so that the threads block them too */
	w.st = st = vine_state_shared(st);
	w.slots = vine_xcalloc((size_t)o->cores, sizeof(*w.slots));
	for (int i = 0; i < o->cores; i++)
		w.slots[i].dir_fd = w.slots[i].out_fd = w.slots[i].stdout_fd =
			w.slots[i].stderr_fd = -1;
	if (o->listen) {
		/* serve this node's cache to its peers, with the run's secret */
		unsigned char secret[VINE_PEER_SECRET_LEN];
		struct vine_peer_server_opts so = { .cache = o->cache, .node = o->node,
						    .listen = o->listen, .secret = secret };
		if (vine_state_peer_secret(st, secret) == 0)
			w.srv = vine_peer_server_start(&so);
		explicit_bzero(secret, sizeof(secret));
		if (!w.srv && !o->listen_default)
			goto out;
		if (!w.srv)
			vine_msgf(o->warn, o->warn_ctx, "not serving the cache to peers: %s",
				  vine_errmsg());
		info.listen = w.srv ? vine_peer_server_addr(w.srv) : NULL;
	}
	if (vine_state_register_worker(st, &info, &w.id) < 0)
		goto out;
	if (w.srv && vine_state_node_listen(st, o->node, info.listen) < 0)
		goto out;
	{
		char mem[32];
		vine_format_bytes(mem, sizeof(mem), (double)o->memory);
		say(&w, "worker %lld on node %s: %d cores, %s memory, %d GPUs; state %s%s%s",
		    (long long)w.id, o->node, o->cores, mem, o->gpus, vine_state_url(st),
		    info.listen ? "; serving its cache at " : "", info.listen ? info.listen : "");
	}
	rc = loop(&w);
	if (rc == 0)
		say(&w, w.draining ? "drained: leaving" : "idle: leaving");
	if (rc < 0) {
		char *msg = vine_xstrdup(vine_errmsg());
		abandon(&w);
		vine_state_unregister_worker(st, w.id);
		vine_error("%s", msg);
		free(msg);
	} else if (vine_state_unregister_worker(st, w.id) < 0) {
		rc = -1;
	}
out:
	if (w.srv) {
		if (vine_state_node_listen(st, o->node, NULL) < 0)
			rc = -1;
		vine_peer_server_stop(w.srv);
	}
	if (!env_leave(&w))
		vine_state_close(w.st);
	free(w.fetches);
	free(w.waiting);
	vine_cache_close(&w.cache);
	if (w.wake_fd >= 0)
		close(w.wake_fd);
	release_slots(&w);
	free(w.jobs);
	free(w.done);
	free(w.done_jobs);
	free(w.parked);
	if (w.workdir) {
		vine_rm_rf(w.workdir);
		free(w.workdir);
	}
	if (w.lock_fd >= 0)
		close(w.lock_fd);
	if (w.sig_fd >= 0)
		close(w.sig_fd);
	if (w.null_fd >= 0)
		close(w.null_fd);
	sigprocmask(SIG_SETMASK, &w.oldmask, NULL);
	return rc;
}
