/*
 * test-ssh - lib/ssh: URL parsing, quoting and retries offline; with
 * arguments, a client that tests/41-ssh-session.bats drives against the
 * test sshd (tests/helpers-hosts.bash):
 *
 *   test-ssh run URL COMMAND [INPUT]   run COMMAND, feed INPUT, copy its
 *                                      stdout; exit with its status
 *   test-ssh echo URL BYTES [COMMAND]  send BYTES through `cat` (or
 *                                      COMMAND) and check they come back
 *   test-ssh reconnect URL             `cat`; a round trip; print "ready";
 *                                      wait for a line on stdin (the test
 *                                      restarts sshd meanwhile); another
 *                                      round trip, reconnecting if needed
 *   test-ssh storm URL N               N processes connect at once; print
 *                                      how many ran `echo ok` fine
 *
 * Errors go to stderr and exit 255.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "state/ssh.h"
#include "util/util.h"
#include "t.h"

static void parse_ok(const char *url, const char *user, const char *host, int port,
		     const char *path)
{
	struct vine_ssh_url u;

	check_int(vine_ssh_url_parse(url, &u), ==, 0);
	if (user)
		check_str(u.user, ==, user);
	else
		CHECK(u.user == NULL);
	check_str(u.host, ==, host);
	check_int(u.port, ==, port);
	check_str(u.path, ==, path);
	vine_ssh_url_release(&u);
}

static void parse_bad(const char *url, const char *why)
{
	struct vine_ssh_url u;

	check_int(vine_ssh_url_parse(url, &u), <, 0);
	if (!strstr(vine_errmsg(), why))
		fprintf(stderr, "parse_bad(%s): message '%s' lacks '%s'\n", url, vine_errmsg(), why);
	CHECK(strstr(vine_errmsg(), why) != NULL);
}

/* A loopback port that refuses connections: bound, never listening. */
static int refusing_port(int *fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(*fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	return ntohs(a.sin_port);
}

static int offline(void)
{
	struct vine_ssh_url u = { NULL, "127.0.0.1", 0, "/x" };
	struct vine_ssh_opts o = { 0 };
	char *q;
	double t;
	int fd, port;

	parse_ok("ssh://login1/home/me/run.db", NULL, "login1", 22, "/home/me/run.db");
	parse_ok("ssh://me@login1:2222/run.db", "me", "login1", 2222, "/run.db");
	parse_ok("ssh://a@b@host/p", "a@b", "host", 22, "/p");
	parse_ok("ssh://[::1]:2200/p/q", NULL, "::1", 2200, "/p/q");
	parse_ok("ssh://[fe80::1]/p", NULL, "fe80::1", 22, "/p");
	parse_ok("ssh://h/dir with space/x", NULL, "h", 22, "/dir with space/x");
	parse_bad("/local/path", "not an ssh:// URL");
	parse_bad("ssh://host", "expected ssh://");
	parse_bad("ssh://host/", "expected ssh://");
	parse_bad("ssh:///path", "empty host");
	parse_bad("ssh://me@/path", "empty host");
	parse_bad("ssh://@host/path", "empty user");
	parse_bad("ssh://host:0/p", "bad port");
	parse_bad("ssh://host:65536/p", "bad port");
	parse_bad("ssh://host:22x/p", "bad port");
	parse_bad("ssh://host:/p", "bad port");
	parse_bad("ssh://[::1/p", "unterminated");
	parse_bad("ssh://[::1]x/p", "junk after");
	CHECK(vine_ssh_is_url("ssh://h/p"));
	CHECK(!vine_ssh_is_url("./vine.db"));

	q = vine_sh_quote("a b");
	check_str(q, ==, "'a b'");
	free(q);
	q = vine_sh_quote("it's $HOME");
	check_str(q, ==, "'it'\\''s $HOME'");
	free(q);
	q = vine_sh_quote("");
	check_str(q, ==, "''");
	free(q);

	/* a refused connection is retried with backoff until the budget is
	 * spent: 0.05 + 0.1 + 0.2 (jittered to at least half) > 0.15 s */
	port = refusing_port(&fd);
	check_int(port, >, 0);
	u.port = port;
	o.retry = 0.6;
	o.known_hosts = "/nonexistent/known_hosts";
	t = vine_now_mono();
	CHECK(vine_ssh_open(&u, "true", &o) == NULL);
	t = vine_now_mono() - t;
	check_dbl(t, >, 0.15);
	check_dbl(t, <, 3);
	CHECK(strstr(vine_errmsg(), "gave up after") != NULL);
	CHECK(strstr(vine_errmsg(), "Connection refused") != NULL);
	close(fd);
	return T_END();
}

static struct vine_ssh *open_url(const char *url, const char *command)
{
	struct vine_ssh_url u;
	struct vine_ssh *s;

	if (vine_ssh_url_parse(url, &u) < 0)
		return NULL;
	s = vine_ssh_open(&u, command, NULL);
	vine_ssh_url_release(&u);
	return s;
}

/* Report and exit at once: the session is not worth freeing here */
static int fail(void)
{
	fprintf(stderr, "test-ssh: %s\n", vine_errmsg());
	fflush(NULL);
	_exit(255);
}

static int run(const char *url, const char *command, const char *input)
{
	struct vine_ssh *s = open_url(url, command);
	char buf[65536];
	ssize_t n;
	int status;

	if (!s)
		return fail();
	if ((input && vine_ssh_write_full(s, input, strlen(input)) < 0) || vine_ssh_send_eof(s) < 0)
		return fail();
	while ((n = vine_ssh_read(s, buf, sizeof(buf))) > 0)
		if (vine_write_full(1, buf, (size_t)n) < 0)
			return fail();
	if (n < 0)
		return fail();
	fputs(vine_ssh_stderr(s), stderr);
	status = vine_ssh_close(s);
	return status < 0 ? fail() : status;
}

/* Send len bytes through the remote `cat` and check what comes back. */
static int round_trip(struct vine_ssh *s, size_t len, unsigned seed)
{
	size_t chunk = 65536, off, i, n;
	char *out = vine_xmalloc(chunk), *in = vine_xmalloc(chunk);
	int rc = 0;

	for (off = 0; off < len && rc == 0; off += n) {
		n = len - off < chunk ? len - off : chunk;
		for (i = 0; i < n; i++)
			out[i] = (char)((off + i) * 2654435761u >> 13 ^ seed);
		if (vine_ssh_write_full(s, out, n) < 0 || vine_ssh_read_full(s, in, n) < 0)
			rc = -1;
		else if (memcmp(in, out, n))
			rc = vine_error("data came back different at offset %zu", off);
	}
	free(out);
	free(in);
	return rc;
}

static int echo(const char *url, const char *bytes, const char *command)
{
	struct vine_ssh *s = open_url(url, command ? command : "cat");
	long long len;

	if (vine_parse_llong(bytes, 1, 1LL << 32, &len) < 0 || !s)
		return fail();
	if (round_trip(s, (size_t)len, 7) < 0)
		return fail();
	if (vine_ssh_close(s) != 0)
		return fail();
	printf("%lld bytes ok\n", len);
	return 0;
}

static int reconnect(const char *url)
{
	struct vine_ssh *s = open_url(url, "cat");
	char line[64];

	if (!s || round_trip(s, 1000, 1) < 0)
		return fail();
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return fail();
	if (round_trip(s, 1000, 2) < 0) {
		fprintf(stderr, "test-ssh: lost: %s\n", vine_errmsg());
		if (vine_ssh_reopen(s) < 0 || round_trip(s, 1000, 3) < 0)
			return fail();
	}
	printf("connects %d\n", vine_ssh_connects(s));
	return vine_ssh_close(s) == 0 ? 0 : fail();
}

static int storm(const char *url, const char *count)
{
	long long n, i, ok = 0;
	int go[2], status;
	pid_t pid;

	if (vine_parse_llong(count, 1, 1000, &n) < 0 || pipe(go) < 0)
		return fail();
	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0)
			return fail();
		if (pid == 0) {
			char c;
			struct vine_ssh *s;
			char out[16];

			close(go[1]);
			/* all start when the parent closes the pipe */
			if (read(go[0], &c, 1) < 0)
				_exit(1);
			s = open_url(url, "echo ok");
			if (!s || vine_ssh_read_full(s, out, 3) < 0 || memcmp(out, "ok\n", 3) ||
			    vine_ssh_close(s) != 0) {
				fprintf(stderr, "test-ssh: client %lld: %s\n", i, vine_errmsg());
				_exit(1);
			}
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	while (wait(&status) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok++;
	printf("%lld of %lld connected\n", ok, n);
	return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 1)
		return offline();
	if (argc >= 4 && argc <= 5 && !strcmp(argv[1], "run"))
		return run(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if (argc >= 4 && argc <= 5 && !strcmp(argv[1], "echo"))
		return echo(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if (argc == 3 && !strcmp(argv[1], "reconnect"))
		return reconnect(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "storm"))
		return storm(argv[2], argv[3]);
	fprintf(stderr, "usage: test-ssh [run URL COMMAND [INPUT] | echo URL BYTES | "
		"reconnect URL | storm URL N]\n");
	return 2;
}
