/*
 * util.h - errors, memory, buffers, full reads and writes, numbers, clocks;
 * it includes fs.h (files and directories) and, last, banned.h, so every
 * file has them.
 *
 * The library's contract (all of lib/):
 *  - It never prints and never exits.  What it has to tell goes back as
 *    an error message (below) or through a vine_msg_fn callback the caller
 *    passes; the programs in cmd/ decide what to print (cli.h).  The one
 *    exception is a progress meter (progress.h, collect.h's meter), drawn
 *    only when stderr is a terminal and the caller did not ask for quiet.
 *  - Allocation failure aborts (the vine_x* allocators, after one line on
 *    stderr), as git's xmalloc.
 *  - Return shapes, one of these for every function:
 *      int      0 on success, -1 on failure;
 *      pointer  non-NULL on success, NULL on failure;
 *      ssize_t  a count >= 0, -1 on failure (vine_read_full);
 *      int      1 yes, 0 no, -1 failure, for a question that can fail
 *               (vine_cache_env_ready), or a documented count or status
 *               (1 "already done", 2 "changed") next to 0 and -1;
 *      enum     a status with kinds of failure where the caller acts on
 *               the kind (transfer.h's VINE_PEER_*: 0 is success).
 *    Every failure leaves a one-line message for the caller in a
 *    per-thread buffer, read with vine_errmsg(): lowercase, what failed
 *    and why, the subject in single quotes, no program name, no newline.
 *    Out-parameters are written only on success, unless documented.
 *  - Callbacks are vine_msg_fn (a line of text) or documented next to the
 *    option that takes them, with a void *ctx passed back unchanged.
 */
#ifndef VINE_UTIL_H
#define VINE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/fs.h"

#define VINE_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * The one shape of callback through which the library tells its caller
 * something (a warning, a note for -v, a log line): one line of text
 * without a newline or the program's name.  NULL means nobody listens.
 */
typedef void (*vine_msg_fn)(void *ctx, const char *msg);
/* Format a message and hand it to fn, when fn is set. */
void vine_msgf(vine_msg_fn fn, void *ctx, const char *fmt, ...) VINE_PRINTF(3, 4);

/* Set the thread's error message; always returns -1. */
int vine_error(const char *fmt, ...) VINE_PRINTF(1, 2);
/* The same, appending ": strerror(errno)" for the errno at the call. */
int vine_error_errno(const char *fmt, ...) VINE_PRINTF(1, 2);
/* Prefix the current message with "what: " (for adding context). */
int vine_error_prefix(const char *fmt, ...) VINE_PRINTF(1, 2);
const char *vine_errmsg(void);

void *vine_xmalloc(size_t n);
void *vine_xcalloc(size_t n, size_t size);
void *vine_xrealloc(void *p, size_t n);
char *vine_xstrdup(const char *s);
char *vine_xstrndup(const char *s, size_t n);
char *vine_xasprintf(const char *fmt, ...) VINE_PRINTF(1, 2);

/*
 * Growable byte buffer.  data is NULL in a new buffer (VINE_BUF_INIT) and
 * after vine_buf_release; once anything is added or grown it is always
 * NUL-terminated.  vine_buf_detach always returns a string ("" when empty).
 */
struct vine_buf {
	char *data;
	size_t len, cap;
};
#define VINE_BUF_INIT { NULL, 0, 0 }
void vine_buf_grow(struct vine_buf *b, size_t extra);
void vine_buf_add(struct vine_buf *b, const void *p, size_t n);
void vine_buf_addstr(struct vine_buf *b, const char *s);
void vine_buf_addf(struct vine_buf *b, const char *fmt, ...) VINE_PRINTF(2, 3);
void vine_buf_reset(struct vine_buf *b);
void vine_buf_release(struct vine_buf *b);
/* Hand over the data (caller frees) and reset the buffer. */
char *vine_buf_detach(struct vine_buf *b, size_t *len);

/*
 * Full reads and writes: retry EINTR and short transfers.  vine_read_full
 * returns the bytes read (less than len only at end of file) or -1.  A
 * failure leaves the message "read failed: ..." or "write failed: ..." and
 * errno as the system call left it, for callers that name the file.
 */
ssize_t vine_read_full(int fd, void *buf, size_t len);
ssize_t vine_pread_full(int fd, void *buf, size_t len, off_t off);
int vine_write_full(int fd, const void *buf, size_t len);
int vine_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* Write all of data to a newly created fd and close it (also on failure);
 * errors name path.  A failing close is a write error (NFS, quotas). */
int vine_write_close(int fd, const char *path, const void *data, size_t len);

/* Read a whole file (at most max bytes, else an error) into *data. */
int vine_read_file(const char *path, size_t max, char **data, size_t *len);

/*
 * Test hook: when $VINE_TEST_PAUSE names point (a comma-separated list),
 * stop this whole process with SIGSTOP there, each time it is reached,
 * so that a test can act at exactly that point (kill -9 it, cut a
 * transfer, or SIGCONT it).  The points are listed in vine(7) TEST HOOKS.
 */
void vine_test_pause(const char *point);

/* Parse a whole decimal number in [min, max]; 0 or -1 with a message. */
int vine_parse_llong(const char *s, long long min, long long max, long long *out);
/*
 * The environment variable name as a positive number of seconds, at most
 * a year; *out = def when it is unset or empty.  0, or -1 with a message
 * naming the variable.
 */
int vine_env_seconds(const char *name, double def, double *out);

/* The cores this process may run on: its CPU affinity, else the online
 * count; at least 1.  The one core counter (pack, seed, worker). */
int vine_online_cores(void);

/* Monotonic and wall clock, in seconds. */
double vine_now_mono(void);
double vine_now_wall(void);

/* last: the functions no file may call (see banned.h) */
#include "util/banned.h"

#endif
