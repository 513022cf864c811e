/*
 * fetch-sources.c - bringing an object into the cache from a list of
 * sources, each tried in turn from where the last one stopped: peers
 * (peer-client.c), files and readers (the origin, here), written into the
 * object's partial copy (partial.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "peer/fetch-impl.h"
#include "peer/peer.h"
#include "peer/peer-wire.h"
#include "util/util.h"

/*
 * Copy the rest of the object from a source read at offsets (a file, the
 * origin through the state) whose size is size (0: not known), verify it
 * and publish it.  A read that fails is VINE_PEER_EREMOTE.
 */
static int copy_from(struct vine_fetch *f, const char *name, const struct vine_fetch_reader *r,
		     const struct vine_peer_client_opts *o)
{
	int restarted = 0, rc;

	if (o->max_size && r->size > o->max_size) {
		vine_error("'%s' is %llu bytes, more than the limit of %llu", name,
			   (unsigned long long)r->size, (unsigned long long)o->max_size);
		return VINE_PEER_EPROTO;
	}
again:
	if (r->size && r->size < f->off) {
		/* the partial copy is longer than the object: it is wrong */
		if (restarted++) {
			vine_error("'%s' shrank while being read", name);
			return VINE_PEER_EREMOTE;
		}
		vf_discard(f);
		if (vf_open_partial(f) < 0)
			return VINE_PEER_ELOCAL;
		goto again;
	}
	vf_add_source(f, name);
	for (;;) {
		unsigned char *buf = vf_next_buf(f);
		ssize_t n = r->read(r->ctx, f->off, buf, BUF_SIZE);
		if (n < 0)
			return VINE_PEER_EREMOTE;
		if (n == 0)
			break;
		if (o->max_size && f->off + (uint64_t)n > o->max_size) {
			vine_error("'%s' holds more than the limit of %llu bytes", name,
				   (unsigned long long)o->max_size);
			return VINE_PEER_EPROTO;
		}
		if ((rc = vf_flush(f, buf, (size_t)n, o, r->size)) != VINE_PEER_OK)
			return rc;
	}
	return vf_finish(f);
}

struct file_source {
	int fd;
	const char *path;
};

static ssize_t file_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
	struct file_source *fs = ctx;
	ssize_t n = vine_pread_full(fs->fd, buf, len, (off_t)offset);

	if (n < 0)
		vine_error_errno("cannot read '%s'", fs->path);
	return n;
}

int vine_fetch_from_file(struct vine_fetch *f, const char *path, const struct vine_peer_client_opts *o)
{
	struct file_source fs = { -1, path };
	struct vine_fetch_reader r = { file_read, &fs, 0 };
	struct stat st;
	int rc;

	if (!f->complete && f->fd < 0 && vf_open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	fs.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fs.fd < 0 || fstat(fs.fd, &st) < 0) {
		vine_error_errno("cannot read '%s'", path);
		rc = VINE_PEER_ENOTFOUND;
	} else if (!S_ISREG(st.st_mode)) {
		vine_error("'%s' is not a regular file", path);
		rc = VINE_PEER_ENOTFOUND;
	} else {
		r.size = (uint64_t)st.st_size;
		rc = copy_from(f, path, &r, o);
		vf_drop_if_full(f);
	}
	if (fs.fd >= 0)
		close(fs.fd);
	return rc;
}

int vine_fetch_from_reader(struct vine_fetch *f, const char *name, const struct vine_fetch_reader *r,
			   const struct vine_peer_client_opts *o)
{
	int rc;

	if (!f->complete && f->fd < 0 && vf_open_partial(f) < 0)
		return VINE_PEER_ELOCAL;
	if (f->complete)
		return VINE_PEER_OK;
	rc = copy_from(f, name, r, o);
	vf_drop_if_full(f);
	/* a hash mismatch names its sources itself */
	if (rc != VINE_PEER_OK && rc != VINE_PEER_ECORRUPT && rc != VINE_PEER_ELOCAL)
		vine_error_prefix("%s", name);
	return rc;
}

int vine_peer_fetch_sources(const char *cache, const char *id, int flags, const struct vine_peer_sources *s,
			    const struct vine_peer_client_opts *o)
{
	struct vine_fetch *f = vine_fetch_open(cache, id, flags);
	char last[1024] = "";
	int st = VINE_PEER_OK;

	if (!f)
		return VINE_PEER_ELOCAL;
	while (!f->complete) {
		char *src = NULL;
		double wait = 1;
		int r = s->next(s->ctx, id, f->off, &src, &wait);
		if (r < 0) {
			/* nothing more to try: the last failure says most */
			if (!*last) {
				snprintf(last, sizeof(last), "%s", vine_errmsg());
				st = VINE_PEER_ENOTFOUND;
			}
			break;
		}
		if (r > 0) {
			struct timespec ts;
			wait = wait < 0.01 ? 0.01 : wait > 60 ? 60 : wait;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			continue;
		}
		uint64_t from = f->off;
		if (src[0] == '/')
			st = vine_fetch_from_file(f, src, o);
		else if (s->reader && strstr(src, "://"))
			st = vine_fetch_from_reader(f, src, s->reader, o);
		else
			st = vine_fetch_from(f, src, o);
		if (st != VINE_PEER_OK)
			snprintf(last, sizeof(last), "%s", vine_errmsg());
		s->done(s->ctx, src, st, from, f->off, st == VINE_PEER_OK ? NULL : last);
		free(src);
		if (st == VINE_PEER_OK || st == VINE_PEER_ELOCAL)
			break;
	}
	vine_fetch_close(f);
	if (st != VINE_PEER_OK)
		vine_error("%s", last);
	return st;
}

/* vine_peer_fetch's sources: a list, each tried once. */
struct list {
	const char *const *src;
	size_t n, i;
	const struct vine_peer_client_opts *o;
};

static int list_next(void *ctx, const char *id, uint64_t offset, char **src, double *wait)
{
	struct list *l = ctx;

	if (l->i == l->n)
		return vine_error(l->n ? "no source could give it" : "no sources");
	*src = vine_xstrdup(l->src[l->i++]);
	return 0;
}

static void list_done(void *ctx, const char *src, int status, uint64_t from, uint64_t to, const char *msg)
{
	struct list *l = ctx;

	if (status != VINE_PEER_OK && l->o->source_failed)
		l->o->source_failed(l->o->ctx, src, status, msg);
}

int vine_peer_fetch(const char *cache, const char *id, const char *const *sources, size_t nsources,
		    const struct vine_peer_client_opts *o)
{
	struct list l = { sources, nsources, 0, o };
	struct vine_peer_sources s = { list_next, list_done, &l, NULL };

	return vine_peer_fetch_sources(cache, id, 0, &s, o);
}
