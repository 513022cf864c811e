/*
 * xfer.c - the state as the source chooser of a fetch (xfer.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "peer/xfer.h"
#include "state/ssh.h"

struct vine_xfer_server {
	struct vine_state *st;
	struct vine_peer_server *s;
	const char *node;
	int64_t id;
};

struct vine_xfer_server *vine_xfer_server_start(struct vine_state *st,
						const struct vine_peer_server_opts *o, double lease)
{
	struct vine_xfer_server *x = vine_xcalloc(1, sizeof(*x));
	char host[256] = "";

	x->st = st;
	x->node = o->node;
	x->id = -1;
	if (!(x->s = vine_peer_server_start(o))) {
		free(x);
		return NULL;
	}
	if (st) {
		struct vine_worker_info info = {
			.node = o->node, .host = host, .pid = getpid(), .cores = 0,
			.listen = vine_peer_server_addr(x->s), .lease = lease,
		};
		gethostname(host, sizeof(host) - 1);
		if (vine_state_register_worker(st, &info, &x->id) < 0 ||
		    vine_state_node_listen(st, o->node, info.listen) < 0) {
			vine_peer_server_stop(x->s);
			free(x);
			return NULL;
		}
	}
	return x;
}

const char *vine_xfer_server_addr(const struct vine_xfer_server *x)
{
	return vine_peer_server_addr(x->s);
}

int vine_xfer_server_renew(struct vine_xfer_server *x)
{
	return x->st ? vine_state_heartbeat(x->st, x->id, NULL, 0, NULL) : 0;
}

int vine_xfer_server_stop(struct vine_xfer_server *x)
{
	int rc = 0;

	if (x->st && (vine_state_unregister_worker(x->st, x->id) < 0 ||
		      vine_state_node_listen(x->st, x->node, NULL) < 0))
		rc = -1;
	vine_peer_server_stop(x->s);
	free(x);
	return rc;
}

/* Times the origin may fail one fetch before it gives up. */
#define ORIGIN_TRIES 2

/* How the origin is read ($VINE_ORIGIN). */
enum origin_mode { ORIGIN_AUTO, ORIGIN_PATH, ORIGIN_STATE };

struct chooser {
	struct vine_state *st;
	const char *node, *id;
	enum origin_mode mode;
	int remote;                 /* the state is ssh://: its host can read the origin */
	int64_t size;               /* the object's size; -1: not asked yet */
	struct vine_fetch_reader reader;   /* the origin through the state */
	unsigned char *ahead;       /* its bytes read ahead, from ahead_off */
	uint64_t ahead_off;
	size_t ahead_len;
	const struct vine_peer_client_opts *user;
	int64_t xfer;               /* the transfer in flight, or 0 */
	int is_origin;              /* it is from the origin */
	double reported;            /* when progress was last told to the state */
	int origin_failed;          /* the origin failed this many times */
	int origin_status;          /* and how, the last time */
	char origin_msg[512];
	int state_failed;           /* the state itself failed: stop */
	char state_msg[512];
};

/*
 * The origin through the state: its bytes from offset.  Each request is a
 * round trip to the manager host, so the bytes are asked for
 * VINE_ORIGIN_READ_MAX at a time and handed out from there: asked for 1
 * MiB at a time, as the fetch reads, one node got a fifth less (148
 * against 184 MB/s, bench/RESULTS.md).
 */
static ssize_t state_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct chooser *c = ctx;
	size_t got;

	if (c->size >= 0 && offset >= (uint64_t)c->size)
		return 0;   /* the end: no need to ask */
	if (!c->ahead || offset < c->ahead_off || offset >= c->ahead_off + c->ahead_len) {
		if (!c->ahead)
			c->ahead = vine_xmalloc(VINE_ORIGIN_READ_MAX);
		c->ahead_len = 0;
		if (vine_state_origin_read(c->st, c->id, (int64_t)offset, c->ahead, VINE_ORIGIN_READ_MAX, &got,
					   NULL) < 0)
			return -1;
		c->ahead_off = offset;
		c->ahead_len = got;
		if (!got)
			return 0;
	}
	got = (size_t)(c->ahead_off + c->ahead_len - offset);
	if (got > len)
		got = len;
	memcpy(buf, c->ahead + (offset - c->ahead_off), got);
	return (ssize_t)got;
}

/* Can this node read path itself, as the object it names? */
static int path_usable(const char *path, int64_t size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int ok;

	if (fd < 0)
		return 0;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size;
	close(fd);
	return ok;
}

/*
 * Read the origin at path through the state (1) or directly (0)?  The
 * path when it is a readable regular file of the object's size, else,
 * when the state is on another host, through it (vine(7), PEER PROTOCOL,
 * "Source selection"); $VINE_ORIGIN forces either.  A local state's host
 * is this host: its origin is always read directly.
 */
static int through_state(struct chooser *c, const char *path)
{
	size_t got;

	if (!c->remote || c->mode == ORIGIN_PATH)
		return 0;
	if (c->size < 0) {
		if (vine_state_origin_read(c->st, c->id, 0, NULL, 0, &got, &c->size) < 0)
			return -1;
		c->reader.size = (uint64_t)c->size;
	}
	return c->mode == ORIGIN_STATE || !path_usable(path, c->size);
}

static int next(void *ctx, const char *id, uint64_t offset, char **src, double *wait)
{
	struct chooser *c = ctx;
	struct vine_xfer x;

	if (c->state_failed)
		return vine_error("%s", c->state_msg);
	if (vine_state_transfer_begin(c->st, id, c->node, (int64_t)offset, &x) < 0) {
		c->state_failed = 1;
		snprintf(c->state_msg, sizeof(c->state_msg), "%s", vine_errmsg());
		return -1;
	}
	if (x.kind == VINE_XFER_WAIT) {
		*wait = x.wait;
		return 1;
	}
	if (x.kind == VINE_XFER_ORIGIN && c->origin_failed >= ORIGIN_TRIES) {
		/* no peer has it and the origin cannot give it: give up */
		(void)vine_state_transfer_end(c->st, x.id, c->origin_status, (int64_t)offset,
					      c->origin_msg);
		vine_state_free_xfer(&x);
		return vine_error("%s", c->origin_msg);
	}
	c->is_origin = x.kind == VINE_XFER_ORIGIN;
	c->xfer = x.id;
	c->reported = vine_now_mono();
	*src = x.addr;
	x.addr = NULL;
	vine_state_free_xfer(&x);
	if (c->is_origin) {
		int via = through_state(c, *src);

		if (via < 0) {
			c->state_failed = 1;
			snprintf(c->state_msg, sizeof(c->state_msg), "%s", vine_errmsg());
			(void)vine_state_transfer_end(c->st, c->xfer, VINE_PEER_ELOCAL,
						      (int64_t)offset, c->state_msg);
			c->xfer = 0;
			free(*src);
			*src = NULL;
			return vine_error("%s", c->state_msg);
		}
		if (via) {
			free(*src);
			*src = vine_xstrdup(vine_state_url(c->st));
		}
	}
	return 0;
}

static void done(void *ctx, const char *src, int status, uint64_t from, uint64_t to, const char *msg)
{
	struct chooser *c = ctx;

	c->ahead_len = 0;   /* the next transfer reads the origin afresh */
	if (vine_state_transfer_end(c->st, c->xfer, status, (int64_t)to, msg) < 0 && !c->state_failed) {
		c->state_failed = 1;
		snprintf(c->state_msg, sizeof(c->state_msg), "%s", vine_errmsg());
	}
	c->xfer = 0;
	if (status != VINE_PEER_OK && c->is_origin) {
		c->origin_failed++;
		c->origin_status = status;
		snprintf(c->origin_msg, sizeof(c->origin_msg), "%s", msg ? msg : "the origin failed");
	}
	if (status != VINE_PEER_OK && c->user->source_failed)
		c->user->source_failed(c->user->ctx, src, status, msg);
}

static void progress(void *ctx, uint64_t got, uint64_t total)
{
	struct chooser *c = ctx;
	double now = vine_now_mono();

	/* a state that cannot take a report now will hear at the end */
	if (c->xfer && now - c->reported >= VINE_XFER_PROGRESS_EVERY) {
		c->reported = now;
		(void)vine_state_transfer_progress(c->st, c->xfer, (int64_t)got);
	}
	if (c->user->progress)
		c->user->progress(c->user->ctx, got, total);
}

int vine_xfer_fetch(struct vine_state *st, const char *cache, const char *node, const char *id,
		    int flags, const struct vine_peer_client_opts *o)
{
	struct chooser c = { .st = st, .node = node, .id = id, .user = o, .size = -1 };
	struct vine_peer_sources s = { next, done, &c, &c.reader };
	struct vine_peer_client_opts mine = *o;
	unsigned char secret[VINE_PEER_SECRET_LEN];
	const char *mode = getenv("VINE_ORIGIN");
	int rc;

	if (!mode || !*mode || !strcmp(mode, "auto"))
		c.mode = ORIGIN_AUTO;
	else if (!strcmp(mode, "path"))
		c.mode = ORIGIN_PATH;
	else if (!strcmp(mode, "state"))
		c.mode = ORIGIN_STATE;
	else {
		vine_error("bad $VINE_ORIGIN '%s': use auto, path or state", mode);
		return VINE_PEER_ELOCAL;
	}
	c.remote = !strncmp(vine_state_url(st), "ssh://", 6);
	c.reader.read = state_read;
	c.reader.ctx = &c;
	if (!o->secret) {
		if (vine_state_peer_secret(st, secret) < 0)
			return VINE_PEER_ELOCAL;
		mine.secret = secret;
	}
	mine.progress = progress;
	mine.source_failed = NULL;
	mine.ctx = &c;
	rc = vine_peer_fetch_sources(cache, id, flags, &s, &mine);
	free(c.ahead);
	explicit_bzero(secret, sizeof(secret));
	if (c.state_failed) {
		vine_error("%s", c.state_msg);
		rc = rc == VINE_PEER_OK ? rc : VINE_PEER_ELOCAL;
	}
	return rc;
}

int vine_xfer_seed_fetch(void *ctx, const char *id, const char *origin, const char *dest)
{
	const struct vine_xfer_seed *x = ctx;
	struct vine_peer_client_opts none = { 0 };

	return vine_xfer_fetch(x->st, x->cache, x->node, id, VINE_FETCH_LOCKED | VINE_FETCH_KEEP,
			       x->opts ? x->opts : &none) == VINE_PEER_OK ? 0 : -1;
}

int vine_xfer_withdraw(struct vine_state *st, const char *node, const char *id)
{
	return vine_state_replica_set(st, id, node, 0, 0);
}

void vine_xfer_seed_removed(void *ctx, const char *id)
{
	const struct vine_xfer_seed *x = ctx;

	(void)vine_xfer_withdraw(x->st, x->node, id);
}

char *vine_xfer_default_listen(const char *state_url)
{
	struct vine_ssh_url u;
	char *addr;

	if (!vine_ssh_is_url(state_url) || vine_ssh_url_parse(state_url, &u) < 0)
		return vine_peer_default_listen(NULL);
	addr = vine_peer_default_listen(u.host);
	vine_ssh_url_release(&u);
	return addr;
}
