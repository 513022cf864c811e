/*
 * test-state-spread.c - source selection on the local backend across
 * objects and leases: K_origin counts origin transfers of every object;
 * a cache server that is not a worker holds a lease, is passed over once
 * it has run out, and serves again when it renews.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer/peer.h"
#include "state/state.h"
#include "t.h"
#include "util/util.h"

static char dir[] = "/tmp/vine-test-state-spread.XXXXXX";
static const char ida[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char idb[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static struct vine_state *fresh(const char *name)
{
	char *p = vine_xasprintf("%s/%s", dir, name);
	struct vine_state *st = vine_state_open(p, VINE_STATE_CREATE);

	if (!st)
		fprintf(stderr, "open: %s\n", vine_errmsg());
	free(p);
	return st;
}

/* Register object id (size 100) with one no-op task. */
static void object(struct vine_state *st, const char *id)
{
	struct vine_object obj = { .size = 100, .origin = "/shared/env.tar.gz" };
	struct vine_task_spec sp = { .cmd = "true", .cores = 1, .object = id };
	int64_t task;

	memcpy(obj.id, id, VINE_ID_LEN + 1);
	check_int(vine_state_submit(st, &obj, &sp, 1, &task), ==, 0);
}

/* transfer_begin's source for dest: a peer's node, "origin" or "wait". */
static const char *source(struct vine_state *st, const char *id, const char *dest,
			  int64_t *xfer)
{
	static char src[64];
	struct vine_xfer x;

	if (vine_state_transfer_begin(st, id, dest, 0, &x) < 0) {
		fprintf(stderr, "transfer_begin: %s\n", vine_errmsg());
		return "error";
	}
	snprintf(src, sizeof(src), "%s", x.kind == VINE_XFER_PEER ? x.node :
		 x.kind == VINE_XFER_ORIGIN ? "origin" : "wait");
	*xfer = x.id;
	vine_state_free_xfer(&x);
	return src;
}

static void test_k_origin(void)
{
	struct vine_spread_settings set = { .k_peer = 2, .k_origin = 1, .relay = 1 };
	struct vine_state *st = fresh("k.db");
	int64_t a, b, c;

	if (!st)
		return;
	object(st, ida);
	object(st, idb);
	check_int(vine_state_spread_settings(st, &set, NULL), ==, 0);
	/* the origin is busy with a: b waits, though none of b is in flight */
	check_str(source(st, ida, "n1", &a), ==, "origin");
	check_str(source(st, idb, "n2", &b), ==, "wait");
	check_str(source(st, ida, "n3", &c), ==, "wait");
	/* a failed transfer frees the origin too */
	check_int(vine_state_transfer_end(st, a, VINE_PEER_ELOCAL, 10, "disk full"), ==, 0);
	check_str(source(st, idb, "n2", &b), ==, "origin");
	check_str(source(st, ida, "n1", &a), ==, "wait");
	check_int(vine_state_transfer_end(st, b, VINE_PEER_OK, 100, NULL), ==, 0);
	/* K_origin 2: one transfer of each at once */
	set.k_origin = 2;
	check_int(vine_state_spread_settings(st, &set, NULL), ==, 0);
	check_str(source(st, ida, "n1", &a), ==, "origin");
	check_str(source(st, ida, "n3", &c), ==, "origin");
	check_str(source(st, ida, "n4", &c), ==, "wait");
	vine_state_close(st);
}

static void nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static void test_server_lease(void)
{
	struct vine_worker_info srv = { .node = "s1", .host = "h", .pid = 1, .cores = 0,
					.listen = "127.0.0.1:7", .lease = 0.3 };
	struct vine_worker *w = NULL;
	struct vine_state *st = fresh("lease.db");
	int64_t id, x;
	size_t nw = 0;
	int reaped = -1;

	if (!st)
		return;
	object(st, ida);
	srv.cores = -1;
	check_int(vine_state_register_worker(st, &srv, &id), ==, -1);
	check_str(vine_errmsg(), ==, "cores must be 0 to 4096");
	srv.cores = 0;
	check_int(vine_state_register_worker(st, &srv, &id), ==, 0);
	check_int(vine_state_node_listen(st, "s1", srv.listen), ==, 0);
	check_int(vine_state_replica_set(st, ida, "s1", 100, 1), ==, 0);
	check_str(source(st, ida, "n1", &x), ==, "s1");
	check_int(vine_state_transfer_end(st, x, VINE_PEER_OK, 100, NULL), ==, 0);
	/* renewed, it stays */
	nap(0.2);
	check_int(vine_state_heartbeat(st, id, NULL, 0, NULL), ==, 0);
	nap(0.2);
	check_str(source(st, ida, "n2", &x), ==, "s1");
	check_int(vine_state_transfer_end(st, x, VINE_PEER_OK, 100, NULL), ==, 0);
	/* not renewed: the next transfer_begin reaps it and goes elsewhere */
	nap(0.4);
	check_str(source(st, ida, "n3", &x), ==, "origin");
	check_int(vine_state_transfer_end(st, x, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(vine_state_list_workers(st, &w, &nw), ==, 0);
	check_int(nw, ==, 1);
	if (nw == 1)
		check_str(w[0].state, ==, "lost");
	vine_state_free_workers(w, nw);
	check_int(vine_state_reap(st, &reaped), ==, 0);
	check_int(reaped, ==, 0);
	/* back alive, it serves again (n1 and n3 do not serve) */
	check_int(vine_state_heartbeat(st, id, NULL, 0, NULL), ==, 0);
	check_str(source(st, ida, "n4", &x), ==, "s1");
	/* leaving: gone, and no longer chosen */
	check_int(vine_state_transfer_end(st, x, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(vine_state_unregister_worker(st, id), ==, 0);
	check_int(vine_state_node_listen(st, "s1", NULL), ==, 0);
	check_str(source(st, ida, "n5", &x), ==, "origin");
	check_int(vine_state_list_workers(st, &w, &nw), ==, 0);
	check_int(nw, ==, 1);
	if (nw == 1)
		check_str(w[0].state, ==, "gone");
	vine_state_free_workers(w, nw);
	vine_state_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_k_origin();
	test_server_lease();
	vine_rm_rf(dir);
	return T_END();
}
