/*
 * util.h - errors, memory, full reads and writes, files and directories.
 *
 * Error convention for all of lib/: a function that fails returns -1 (or
 * NULL) and leaves a one-line message for the caller in a per-thread buffer,
 * read with vine_errmsg().  Library code never prints and never exits; the
 * programs in cmd/ decide what to do (see cli.h).  Allocation failure is the
 * one exception: the vine_x* allocators abort, as git's xmalloc does.
 */
#ifndef VINE_UTIL_H
#define VINE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VINE_PRINTF(a, b) __attribute__((format(printf, a, b)))

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

/* Growable byte buffer; data is always NUL-terminated. */
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
 * returns the bytes read (less than len only at end of file) or -1.
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

/* mkdir -p; existing directories are fine. */
int vine_mkdir_p(const char *path, mode_t mode);
/* rm -rf that never follows symlinks; a missing path is fine. */
int vine_rm_rf(const char *path);
/* fsync the directory that contains path. */
int vine_fsync_parent(const char *path);
/*
 * Publish a file atomically: write to a temporary file in the same
 * directory, fsync, rename over path, fsync the directory.  The temporary
 * file is removed on every failure path.
 */
int vine_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Parse a whole decimal number in [min, max]; 0 or -1 with a message. */
int vine_parse_llong(const char *s, long long min, long long max, long long *out);
/* A size in bytes: a whole number, optionally followed by K, M, G or T
 * (powers of 1024, an optional "B" or "iB" after); 0 or -1 with a message. */
int vine_parse_size(const char *s, uint64_t *out);
/* An age in seconds: a whole number, optionally followed by s, m, h, d or
 * w; 0 or -1 with a message. */
int vine_parse_age(const char *s, int64_t *out);
/*
 * The environment variable name as a positive number of seconds, at most
 * a year; *out = def when it is unset or empty.  0, or -1 with a message
 * naming the variable.
 */
int vine_env_seconds(const char *name, double def, double *out);

/* Monotonic and wall clock, in seconds. */
double vine_now_mono(void);
double vine_now_wall(void);

#endif
