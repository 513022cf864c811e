/*
 * ssh.h - one SSH connection to a host running one command, as a byte
 * stream (libssh2).  This is how remote programs reach the state on the
 * manager host: `-s ssh://[user@]host[:port]/abs/path` runs `vine-state`
 * there and speaks the state protocol (proto.h) over its stdin/stdout.
 *
 * Host keys are checked against ~/.ssh/known_hosts ($VINE_KNOWN_HOSTS): an
 * unknown or a changed key is refused with a message naming the host and
 * the key's fingerprint.  With VINE_SSH_ACCEPT_NEW=1 an unknown key is
 * accepted and appended to that file (a changed key never is).  Host key
 * algorithms the file already knows for the host are negotiated first, as
 * OpenSSH does, so a host known by its ed25519 key is not met with ecdsa.
 *
 * Authentication: the key file $VINE_SSH_KEY alone if set, else ssh-agent
 * ($SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa (unencrypted;
 * use the agent for keys with a passphrase).  Note libssh2 1.10 signs
 * with ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse: use ed25519.
 *
 * Connecting retries with exponential backoff and jitter while the failure
 * looks temporary (refused, reset, dropped before the key exchange as sshd
 * does past MaxStartups, timed out) for up to $VINE_SSH_RETRY seconds;
 * refused host keys, failed authentication and bad names fail at once.
 * Reading the stream drains the command's stderr on the side; its tail is
 * added to the error when the command ends early.
 *
 * One libssh2 session per struct vine_ssh; not thread-safe.
 */
#ifndef VINE_SSH_H
#define VINE_SSH_H

#include <sys/types.h>

/* ssh://[user@]host[:port]/abs/path (host may be [v6addr]). */
struct vine_ssh_url {
	char *user;             /* NULL: the local user name */
	char *host;
	int port;               /* 22 unless given */
	char *path;             /* absolute, "/..." */
};

/* True when s starts with "ssh://". */
int vine_ssh_is_url(const char *s);
/* Parse url into u (caller releases); -1 with a message when malformed. */
int vine_ssh_url_parse(const char *url, struct vine_ssh_url *u);
void vine_ssh_url_release(struct vine_ssh_url *u);

/* Quote s for a POSIX shell (the remote command line); caller frees. */
char *vine_sh_quote(const char *s);

/* Tunables; zero fields take the environment's value, then the default. */
struct vine_ssh_opts {
	const char *known_hosts; /* $VINE_KNOWN_HOSTS, ~/.ssh/known_hosts */
	const char *key;        /* $VINE_SSH_KEY, else agent + ~/.ssh/id_* */
	int accept_new;         /* 1 yes, -1 no; 0: $VINE_SSH_ACCEPT_NEW */
	double timeout;         /* seconds per network wait; $VINE_SSH_TIMEOUT, 30 */
	double retry;           /* seconds to keep reconnecting; $VINE_SSH_RETRY, 60 */
};

struct vine_ssh;

/*
 * Connect to u's host and port as u's user, check the host key,
 * authenticate and run command (a shell command line on the remote side).
 * Temporary failures are retried as described above.  NULL opts: defaults.
 */
struct vine_ssh *vine_ssh_open(const struct vine_ssh_url *u, const char *command,
			       const struct vine_ssh_opts *opts);

/*
 * Drop the connection (the remote command sees end of input and its
 * session ends) and open it again, running the same command, with the same
 * backoff and retry budget.  0, or -1 with a message.
 */
int vine_ssh_reopen(struct vine_ssh *s);

/*
 * Read up to len bytes of the command's stdout: the count, 0 at its end,
 * -1 on error or after the timeout without data.
 */
ssize_t vine_ssh_read(struct vine_ssh *s, void *buf, size_t len);
/* Exactly len bytes; an early end is an error ("connection closed ..."). */
int vine_ssh_read_full(struct vine_ssh *s, void *buf, size_t len);
/*
 * The command's output ended when more was expected: set a message that
 * says why as best we know (its exit status or signal, the last line it
 * wrote to stderr) and return -1.
 */
int vine_ssh_eof_error(struct vine_ssh *s);
/* Write all of buf to the command's stdin. */
int vine_ssh_write_full(struct vine_ssh *s, const void *buf, size_t len);
/* Close the command's stdin (it reads end of file). */
int vine_ssh_send_eof(struct vine_ssh *s);

/* Seconds per network wait from now on (reads, writes). */
void vine_ssh_set_timeout(struct vine_ssh *s, double seconds);

/* What the command wrote to stderr so far (its last 4 KiB), NUL-terminated. */
const char *vine_ssh_stderr(struct vine_ssh *s);
/* "user@host:port", for messages. */
const char *vine_ssh_name(struct vine_ssh *s);
/* How many times the connection was (re)established, 1 after open. */
int vine_ssh_connects(struct vine_ssh *s);

/*
 * Close stdin, wait for the command to exit and return its exit status
 * (0..255); -1 with a message when it was killed by a signal or the
 * connection failed first.  Frees s in every case.
 */
int vine_ssh_close(struct vine_ssh *s);
/* Drop the connection without waiting; frees s (NULL is fine). */
void vine_ssh_free(struct vine_ssh *s);

#endif
