/*
 * ssh.c - one SSH connection running one command, as a byte stream
 * (libssh2, blocking mode with a timeout on every wait).  See ssh.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <openssl/evp.h>

#include "state/ssh.h"
#include "util/util.h"

#define ERRTAIL 4096
#define BACKOFF_FIRST 0.05
#define BACKOFF_MAX 5.0

struct vine_ssh {
	char *user, *host, *command, *name;
	int port;
	char *known_hosts, *key;
	int accept_new;
	double timeout, retry;
	int connects;

	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_CHANNEL *channel;
	int eof;
	char errtail[ERRTAIL + 1];
	size_t errlen;
};

/* What an attempt to connect returns besides 0. */
enum { FAIL_FOR_GOOD = -1, FAIL_FOR_NOW = -2 };

int vine_ssh_is_url(const char *s)
{
	return !strncmp(s, "ssh://", 6);
}

void vine_ssh_url_release(struct vine_ssh_url *u)
{
	free(u->user);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

int vine_ssh_url_parse(const char *url, struct vine_ssh_url *u)
{
	const char *a, *slash, *at, *hp, *hend, *colon = NULL;
	long long port = 22;

	memset(u, 0, sizeof(*u));
	if (!vine_ssh_is_url(url))
		return vine_error("'%s' is not an ssh:// URL", url);
	a = url + 6;
	slash = strchr(a, '/');
	if (!slash || !slash[1])
		return vine_error("'%s': expected ssh://[user@]host[:port]/absolute/path", url);
	at = memrchr(a, '@', (size_t)(slash - a));
	hp = at ? at + 1 : a;
	if (at && at == a)
		return vine_error("'%s': empty user name", url);
	if (*hp == '[') {
		hend = memchr(hp, ']', (size_t)(slash - hp));
		if (!hend)
			return vine_error("'%s': unterminated '[' in host", url);
		if (hend + 1 < slash && hend[1] != ':')
			return vine_error("'%s': junk after ']' in host", url);
		if (hend + 1 < slash)
			colon = hend + 1;
		hp++;
	} else {
		colon = memchr(hp, ':', (size_t)(slash - hp));
		hend = colon ? colon : slash;
	}
	if (hend == hp)
		return vine_error("'%s': empty host name", url);
	if (hend - hp > 255)
		return vine_error("'%s': host name too long", url);
	if (colon) {
		char *p = vine_xstrndup(colon + 1, (size_t)(slash - colon - 1));
		int r = vine_parse_llong(p, 1, 65535, &port);

		free(p);
		if (r < 0)
			return vine_error("'%s': bad port", url);
	}
	u->user = at ? vine_xstrndup(a, (size_t)(at - a)) : NULL;
	u->host = vine_xstrndup(hp, (size_t)(hend - hp));
	u->port = (int)port;
	u->path = vine_xstrdup(slash);
	return 0;
}

char *vine_sh_quote(const char *s)
{
	struct vine_buf b = VINE_BUF_INIT;

	vine_buf_addstr(&b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			vine_buf_addstr(&b, "'\\''");
		else
			vine_buf_add(&b, s, 1);
	}
	vine_buf_addstr(&b, "'");
	return vine_buf_detach(&b, NULL);
}

static double env_seconds(const char *var, double dflt)
{
	const char *v = getenv(var);
	char *end;
	double d;

	if (!v || !*v)
		return dflt;
	d = strtod(v, &end);
	return *end || d < 0 ? dflt : d;
}

static char *home_file(const char *rel)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (!home || !*home) {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return vine_xasprintf("%s/%s", home, rel);
}

static char *local_user(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *u = getenv("USER");

	if (pw)
		return vine_xstrdup(pw->pw_name);
	return vine_xstrdup(u && *u ? u : "root");
}

/* Uniform in [0, 1), from a generator seeded by the kernel once. */
static double jitter_unit(void)
{
	static uint64_t x;

	if (!x) {
		if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
			x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
		x |= 1;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (double)(x >> 11) / 9007199254740992.0;
}

static void sleep_seconds(double d)
{
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *ssh_errmsg(struct vine_ssh *s)
{
	char *msg = NULL;

	if (!s->session)
		return "no session";
	libssh2_session_last_error(s->session, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown libssh2 error";
}

static void disconnect(struct vine_ssh *s)
{
	if (s->channel)
		libssh2_channel_free(s->channel);
	s->channel = NULL;
	if (s->session) {
		/* a short goodbye: the peer may be gone already */
		libssh2_session_set_timeout(s->session, 1000);
		libssh2_session_disconnect(s->session, "vine: closing");
		libssh2_session_free(s->session);
	}
	s->session = NULL;
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	s->eof = 0;
}

/* Connect a TCP socket to host:port within the timeout. */
static int tcp_connect(struct vine_ssh *s)
{
	struct addrinfo hints, *res, *ai;
	char port[16];
	int r, fd = -1, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", s->port);
	r = getaddrinfo(s->host, port, &hints, &res);
	if (r) {
		vine_error("cannot resolve '%s': %s", s->host, gai_strerror(r));
		return r == EAI_AGAIN ? FAIL_FOR_NOW : FAIL_FOR_GOOD;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (err == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			do
				r = poll(&pfd, 1, (int)(s->timeout * 1000));
			while (r < 0 && errno == EINTR);
			if (r == 0)
				err = ETIMEDOUT;
			else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (!err)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = err;
		vine_error_errno("cannot connect to %s port %d", s->host, s->port);
		return FAIL_FOR_NOW;
	}
	r = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, r & ~O_NONBLOCK);
	/* requests and responses are small: do not let Nagle hold them */
	r = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &r, sizeof(r));
	s->sock = fd;
	return 0;
}

static const struct keytype {
	int hostkey;            /* LIBSSH2_HOSTKEY_TYPE_* */
	int known;              /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *method, *label;
} keytypes[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519", "ED25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256", "ECDSA" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384", "ECDSA" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521", "ECDSA" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa", "RSA" },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss", "DSA" },
};
#define NKEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

/* The name known_hosts uses for the host: "host", or "[host]:port". */
static char *known_name(struct vine_ssh *s)
{
	if (s->port == 22)
		return vine_xstrdup(s->host);
	return vine_xasprintf("[%s]:%d", s->host, s->port);
}

/* Load the known hosts file; a missing file is an empty one. */
static LIBSSH2_KNOWNHOSTS *known_load(struct vine_ssh *s)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->session);

	if (!kh) {
		vine_error("cannot set up known hosts: %s", ssh_errmsg(s));
		return NULL;
	}
	if (access(s->known_hosts, F_OK) < 0 && errno == ENOENT)
		return kh;
	if (libssh2_knownhost_readfile(kh, s->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		vine_error("cannot read known hosts '%s': %s", s->known_hosts, ssh_errmsg(s));
		libssh2_knownhost_free(kh);
		return NULL;
	}
	return kh;
}

/*
 * Choose the host key algorithms as OpenSSH does: first the types the
 * known hosts file has for this host (plain or hashed names), then
 * ed25519, then the rest in libssh2's order (which would put ecdsa first,
 * and call a host unknown that ssh(1) recorded by its ed25519 key).
 * libssh2 tells "an entry of this type with another key" apart from "no
 * entry" when asked with a key that matches nothing.
 */
static void prefer_known_types(struct vine_ssh *s)
{
	LIBSSH2_KNOWNHOSTS *kh;
	struct vine_buf known = VINE_BUF_INIT, ed = VINE_BUF_INIT, rest = VINE_BUF_INIT;
	const char **algs = NULL;
	char *name;
	int i, n;
	size_t k;

	if (!(kh = known_load(s)))
		return;
	name = known_name(s);
	n = libssh2_session_supported_algs(s->session, LIBSSH2_METHOD_HOSTKEY, &algs);
	for (i = 0; i < n; i++) {
		const struct keytype *t = NULL;
		struct vine_buf *b = &rest;

		for (k = 0; k < NKEYTYPES; k++)
			if (!strcmp(algs[i], keytypes[k].method))
				t = &keytypes[k];
		if (t && libssh2_knownhost_check(kh, name, "AAAA", 0,
				LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_BASE64 | t->known,
				NULL) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
			b = &known;
		else if (t && t->hostkey == LIBSSH2_HOSTKEY_TYPE_ED25519)
			b = &ed;
		vine_buf_addf(b, ",%s", algs[i]);
	}
	if (n > 0) {
		vine_buf_add(&known, ed.data, ed.len);
		vine_buf_add(&known, rest.data, rest.len);
		libssh2_session_method_pref(s->session, LIBSSH2_METHOD_HOSTKEY, known.data + 1);
		libssh2_free(s->session, algs);
	}
	vine_buf_release(&known);
	vine_buf_release(&ed);
	vine_buf_release(&rest);
	free(name);
	libssh2_knownhost_free(kh);
}

static void fingerprint(struct vine_ssh *s, char *out, size_t cap)
{
	const unsigned char *h;
	unsigned char b64[64];
	int n;

	h = (const unsigned char *)libssh2_hostkey_hash(s->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!h) {
		snprintf(out, cap, "(no fingerprint)");
		return;
	}
	n = EVP_EncodeBlock(b64, h, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, cap, "SHA256:%.*s", n, (const char *)b64);
}

/* Append one entry to the known hosts file, creating it (0600) if needed. */
static int known_append(struct vine_ssh *s, LIBSSH2_KNOWNHOSTS *kh, const char *name,
			const char *key, size_t keylen, int known)
{
	struct libssh2_knownhost *entry;
	char line[8192], *dir, *slash;
	size_t len;
	int fd, r;

	if (libssh2_knownhost_addc(kh, name, NULL, key, keylen, NULL, 0,
				   LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | known,
				   &entry) < 0 ||
	    libssh2_knownhost_writeline(kh, entry, line, sizeof(line), &len,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0)
		return vine_error("cannot record the host key of %s: %s", name, ssh_errmsg(s));
	dir = vine_xstrdup(s->known_hosts);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (vine_mkdir_p(dir, 0700) < 0) {
			free(dir);
			return -1;
		}
	}
	free(dir);
	fd = open(s->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return vine_error_errno("cannot open '%s'", s->known_hosts);
	r = vine_write_full(fd, line, len);
	if (r == 0 && fsync(fd) < 0)
		r = vine_error_errno("cannot write '%s'", s->known_hosts);
	if (close(fd) < 0 && r == 0)
		r = vine_error_errno("cannot write '%s'", s->known_hosts);
	return r;
}

static int check_host_key(struct vine_ssh *s)
{
	LIBSSH2_KNOWNHOSTS *kh;
	const struct keytype *t = NULL;
	const char *key;
	char fp[128], *name;
	size_t len, k;
	int type, r, ret = FAIL_FOR_GOOD;

	key = libssh2_session_hostkey(s->session, &len, &type);
	for (k = 0; k < NKEYTYPES; k++)
		if (keytypes[k].hostkey == type)
			t = &keytypes[k];
	if (!key || !t) {
		vine_error("%s: the server offered no host key we can check", s->name);
		return FAIL_FOR_GOOD;
	}
	fingerprint(s, fp, sizeof(fp));
	if (!(kh = known_load(s)))
		return FAIL_FOR_GOOD;
	name = known_name(s);
	r = libssh2_knownhost_check(kh, name, key, len,
				    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | t->known,
				    NULL);
	switch (r) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		ret = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		vine_error("%s: HOST KEY CHANGED: %s key %s does not match '%s'; someone may be "
			   "intercepting the connection, or the host was reinstalled: refusing to "
			   "connect (check with the host's administrator, then fix that file)",
			   name, t->label, fp, s->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (s->accept_new > 0) {
			if (known_append(s, kh, name, key, len, t->known) == 0)
				ret = 0;
			break;
		}
		vine_error("%s: host key not known: %s key %s is not in '%s' (check it, then "
			   "add it, e.g. by connecting once with ssh, or set VINE_SSH_ACCEPT_NEW=1 "
			   "to record it)", name, t->label, fp, s->known_hosts);
		break;
	default:
		vine_error("%s: cannot check the host key: %s", name, ssh_errmsg(s));
	}
	free(name);
	libssh2_knownhost_free(kh);
	return ret;
}

/* A failed authentication step: for good, unless the connection broke. */
static int auth_failure(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
		return FAIL_FOR_NOW;
	}
	return FAIL_FOR_GOOD;
}

static int auth_keyfile(struct vine_ssh *s, const char *path, struct vine_buf *tried, int *rc)
{
	char *pub = vine_xasprintf("%s.pub", path);
	const char *p = access(pub, R_OK) == 0 ? pub : NULL;

	*rc = libssh2_userauth_publickey_fromfile_ex(s->session, s->user,
						     (unsigned)strlen(s->user), p, path, NULL);
	free(pub);
	vine_buf_addf(tried, "%s%s (%s)", tried->len ? ", " : "", path,
		      *rc ? ssh_errmsg(s) : "ok");
	return *rc == 0;
}

static int auth_agent(struct vine_ssh *s, struct vine_buf *tried, int *rc)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int ok = 0;

	*rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED;
	vine_buf_addf(tried, "%sssh-agent", tried->len ? ", " : "");
	if (!agent)
		return 0;
	if (libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0) {
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			*rc = libssh2_agent_userauth(agent, s->user, id);
			if (*rc == 0) {
				ok = 1;
				break;
			}
			if (auth_failure(*rc) == FAIL_FOR_NOW)
				break;
			prev = id;
		}
		libssh2_agent_disconnect(agent);
	}
	libssh2_agent_free(agent);
	return ok;
}

static int authenticate(struct vine_ssh *s)
{
	static const char *const ids[] = { ".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa" };
	struct vine_buf tried = VINE_BUF_INIT;
	int rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED, ok = 0;
	size_t i;

	if (s->key) {
		ok = auth_keyfile(s, s->key, &tried, &rc);
	} else {
		const char *sock = getenv("SSH_AUTH_SOCK");

		if (sock && *sock)
			ok = auth_agent(s, &tried, &rc);
		for (i = 0; !ok && auth_failure(rc) == FAIL_FOR_GOOD && i < 3; i++) {
			char *path = home_file(ids[i]);

			if (access(path, R_OK) == 0)
				ok = auth_keyfile(s, path, &tried, &rc);
			free(path);
		}
	}
	if (!ok)
		vine_error("%s: authentication failed (tried %s)", s->name,
			   tried.len ? tried.data : "no keys: none found");
	vine_buf_release(&tried);
	return ok ? 0 : auth_failure(rc);
}

/* One attempt: 0, FAIL_FOR_NOW or FAIL_FOR_GOOD with a message. */
static int attempt(struct vine_ssh *s)
{
	int r;

	if ((r = tcp_connect(s)) < 0)
		return r;
	s->session = libssh2_session_init();
	if (!s->session) {
		vine_error("%s: cannot start an ssh session", s->name);
		return FAIL_FOR_GOOD;
	}
	libssh2_session_set_blocking(s->session, 1);
	libssh2_session_set_timeout(s->session, (long)(s->timeout * 1000));
	prefer_known_types(s);
	r = libssh2_session_handshake(s->session, s->sock);
	if (r) {
		/* sshd past MaxStartups, or restarting, closes before the key
		 * exchange: try again; no common algorithm will not get better */
		vine_error("%s: ssh handshake failed: %s", s->name, ssh_errmsg(s));
		return r == LIBSSH2_ERROR_KEX_FAILURE || r == LIBSSH2_ERROR_METHOD_NONE ||
			r == LIBSSH2_ERROR_HOSTKEY_INIT ? FAIL_FOR_GOOD : FAIL_FOR_NOW;
	}
	if ((r = check_host_key(s)) < 0)
		return r;
	if ((r = authenticate(s)) < 0)
		return r;
	s->channel = libssh2_channel_open_session(s->session);
	if (!s->channel) {
		vine_error("%s: cannot open a channel: %s", s->name, ssh_errmsg(s));
		return FAIL_FOR_NOW;
	}
	r = libssh2_channel_exec(s->channel, s->command);
	if (r) {
		vine_error("%s: cannot run '%s': %s", s->name, s->command, ssh_errmsg(s));
		return auth_failure(r);
	}
	s->connects++;
	return 0;
}

/* Connect, retrying temporary failures with backoff and jitter. */
static int connect_retry(struct vine_ssh *s)
{
	double start = vine_now_mono(), delay = BACKOFF_FIRST, wait;
	int r, tries = 0;

	for (;;) {
		tries++;
		r = attempt(s);
		if (r == 0)
			return 0;
		disconnect(s);
		if (r == FAIL_FOR_GOOD)
			return -1;
		/* full jitter on the upper half: clients that failed together
		 * come back spread out, not together again */
		wait = delay * (0.5 + 0.5 * jitter_unit());
		if (vine_now_mono() + wait - start > s->retry) {
			if (tries > 1)
				vine_error_prefix("gave up after %d attempts in %.0f s", tries,
						  vine_now_mono() - start);
			return -1;
		}
		/* say so from the first failure, not only when giving up */
		vine_notice("%s (try %d; trying again in %.1f s, for up to %.0f s)", vine_errmsg(),
			    tries, wait, s->retry);
		sleep_seconds(wait);
		delay = delay * 2 < BACKOFF_MAX ? delay * 2 : BACKOFF_MAX;
	}
}

struct vine_ssh *vine_ssh_open(const struct vine_ssh_url *u, const char *command,
			       const struct vine_ssh_opts *opts)
{
	static int inited;
	struct vine_ssh_opts none = { 0 };
	struct vine_ssh *s;
	const char *v;

	if (!opts)
		opts = &none;
	if (!inited) {
		if (libssh2_init(0)) {
			vine_error("cannot initialise libssh2");
			return NULL;
		}
		inited = 1;
	}
	s = vine_xcalloc(1, sizeof(*s));
	s->sock = -1;
	s->user = u->user ? vine_xstrdup(u->user) : local_user();
	s->host = vine_xstrdup(u->host);
	s->port = u->port ? u->port : 22;
	s->command = vine_xstrdup(command);
	s->name = vine_xasprintf("%s@%s:%d", s->user, s->host, s->port);
	if (opts->known_hosts)
		s->known_hosts = vine_xstrdup(opts->known_hosts);
	else if ((v = getenv("VINE_KNOWN_HOSTS")) && *v)
		s->known_hosts = vine_xstrdup(v);
	else
		s->known_hosts = home_file(".ssh/known_hosts");
	if (opts->key)
		s->key = vine_xstrdup(opts->key);
	else if ((v = getenv("VINE_SSH_KEY")) && *v)
		s->key = vine_xstrdup(v);
	s->accept_new = opts->accept_new;
	if (!s->accept_new) {
		v = getenv("VINE_SSH_ACCEPT_NEW");
		s->accept_new = v && (!strcmp(v, "1") || !strcmp(v, "yes")) ? 1 : -1;
	}
	s->timeout = opts->timeout > 0 ? opts->timeout : env_seconds("VINE_SSH_TIMEOUT", 30);
	if (s->timeout <= 0)
		s->timeout = 30;
	s->retry = opts->retry > 0 ? opts->retry : env_seconds("VINE_SSH_RETRY", 60);
	if (connect_retry(s) < 0) {
		vine_ssh_free(s);
		return NULL;
	}
	return s;
}

int vine_ssh_reopen(struct vine_ssh *s)
{
	disconnect(s);
	s->errlen = 0;
	s->errtail[0] = '\0';
	return connect_retry(s);
}

void vine_ssh_set_timeout(struct vine_ssh *s, double seconds)
{
	s->timeout = seconds;
	if (s->session)
		libssh2_session_set_timeout(s->session, (long)(seconds * 1000));
}

/* Keep the last ERRTAIL bytes the command wrote to stderr. */
static void drain_stderr(struct vine_ssh *s)
{
	char buf[1024];
	ssize_t n;

	if (!s->channel)
		return;
	libssh2_session_set_blocking(s->session, 0);
	while ((n = libssh2_channel_read_stderr(s->channel, buf, sizeof(buf))) > 0) {
		size_t m = (size_t)n; /* < ERRTAIL, the size of buf */

		if (s->errlen + m > ERRTAIL) {
			size_t drop = s->errlen + m - ERRTAIL;

			memmove(s->errtail, s->errtail + drop, s->errlen - drop);
			s->errlen -= drop;
		}
		memcpy(s->errtail + s->errlen, buf, m);
		s->errlen += m;
	}
	s->errtail[s->errlen] = '\0';
	libssh2_session_set_blocking(s->session, 1);
}

const char *vine_ssh_stderr(struct vine_ssh *s)
{
	drain_stderr(s);
	return s->errtail;
}

const char *vine_ssh_name(struct vine_ssh *s)
{
	return s->name;
}

int vine_ssh_connects(struct vine_ssh *s)
{
	return s->connects;
}

/* The last non-empty line the command wrote to stderr, for messages. */
static char *stderr_last_line(struct vine_ssh *s)
{
	char *t, *e;

	drain_stderr(s);
	t = vine_xstrdup(s->errtail);
	e = t + strlen(t);
	while (e > t && (e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	e = strrchr(t, '\n');
	if (e) {
		memmove(t, e + 1, strlen(e + 1) + 1);
	}
	return t;
}

int vine_ssh_eof_error(struct vine_ssh *s)
{
	char *line, status[64] = "";
	char *sig = NULL;

	libssh2_session_set_timeout(s->session, 2000);
	if (libssh2_channel_wait_closed(s->channel) == 0) {
		libssh2_channel_get_exit_signal(s->channel, &sig, NULL, NULL, NULL, NULL, NULL);
		if (sig)
			snprintf(status, sizeof(status), " (killed by SIG%s)", sig);
		else
			snprintf(status, sizeof(status), " (exit status %d)",
				 libssh2_channel_get_exit_status(s->channel));
	}
	libssh2_session_set_timeout(s->session, (long)(s->timeout * 1000));
	if (sig)
		libssh2_free(s->session, sig);
	line = stderr_last_line(s);
	vine_error("%s: connection closed by '%s'%s%s%s", s->name, s->command, status,
		   *line ? ": " : "", line);
	free(line);
	return -1;
}

ssize_t vine_ssh_read(struct vine_ssh *s, void *buf, size_t len)
{
	ssize_t n;

	if (!s->channel)
		return vine_error("%s: not connected", s->name);
	if (s->eof)
		return 0;
	n = libssh2_channel_read(s->channel, buf, len);
	if (n == 0 || (n < 0 && libssh2_channel_eof(s->channel))) {
		s->eof = 1;
		return 0;
	}
	if (n < 0) {
		if (n == LIBSSH2_ERROR_TIMEOUT)
			return vine_error("%s: no answer for %.0f s", s->name, s->timeout);
		return vine_error("%s: connection lost: %s", s->name, ssh_errmsg(s));
	}
	return n;
}

int vine_ssh_read_full(struct vine_ssh *s, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = vine_ssh_read(s, p, len);
		if (n < 0)
			return -1;
		if (n == 0)
			return vine_ssh_eof_error(s);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vine_ssh_write_full(struct vine_ssh *s, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	if (!s->channel)
		return vine_error("%s: not connected", s->name);
	while (len > 0) {
		n = libssh2_channel_write(s->channel, p, len);
		if (n < 0) {
			if (n == LIBSSH2_ERROR_TIMEOUT)
				return vine_error("%s: cannot send for %.0f s", s->name, s->timeout);
			if (n == LIBSSH2_ERROR_CHANNEL_EOF_SENT || n == LIBSSH2_ERROR_CHANNEL_CLOSED)
				return vine_ssh_eof_error(s);
			return vine_error("%s: connection lost: %s", s->name, ssh_errmsg(s));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vine_ssh_send_eof(struct vine_ssh *s)
{
	if (!s->channel)
		return vine_error("%s: not connected", s->name);
	if (libssh2_channel_send_eof(s->channel))
		return vine_error("%s: cannot close the command's input: %s", s->name,
				  ssh_errmsg(s));
	return 0;
}

int vine_ssh_close(struct vine_ssh *s)
{
	char *sig = NULL;
	int status = -1;

	if (!s->channel) {
		vine_error("%s: not connected", s->name);
		vine_ssh_free(s);
		return -1;
	}
	if (libssh2_channel_send_eof(s->channel) || libssh2_channel_wait_eof(s->channel) ||
	    libssh2_channel_close(s->channel) || libssh2_channel_wait_closed(s->channel)) {
		vine_error("%s: connection lost: %s", s->name, ssh_errmsg(s));
		vine_ssh_free(s);
		return -1;
	}
	libssh2_channel_get_exit_signal(s->channel, &sig, NULL, NULL, NULL, NULL, NULL);
	if (sig) {
		vine_error("%s: '%s' killed by SIG%s", s->name, s->command, sig);
		libssh2_free(s->session, sig);
	} else {
		status = libssh2_channel_get_exit_status(s->channel);
	}
	vine_ssh_free(s);
	return status;
}

void vine_ssh_free(struct vine_ssh *s)
{
	if (!s)
		return;
	disconnect(s);
	free(s->user);
	free(s->host);
	free(s->command);
	free(s->name);
	free(s->known_hosts);
	free(s->key);
	free(s);
}
