/*
 * test-state-xfer.c - the spreading operations of the local backend:
 * the peer secret, settings, source choice with K and K_origin, relaying,
 * avoidance, stale replicas (dropped on "not found", withdrawn by their
 * node), and the reaper ending a lost node's transfers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peer/peer.h"
#include "state/state.h"
#include "t.h"
#include "util/util.h"

static char dir[] = "/tmp/vine-test-state-xfer.XXXXXX";
static const char id[] = "abababababababababababababababababababababababababababababababab";

/* transfer_begin for dest: kind, and the source node (or "origin"/"wait") in src */
static int begin(struct vine_state *st, const char *dest, int64_t off, char *src, int64_t *xfer)
{
	struct vine_xfer x;

	if (vine_state_transfer_begin(st, id, dest, off, &x) < 0)
		return -1;
	snprintf(src, 64, "%s", x.kind == VINE_XFER_PEER ? x.node :
		 x.kind == VINE_XFER_ORIGIN ? "origin" : "wait");
	*xfer = x.id;
	vine_state_free_xfer(&x);
	return 0;
}

int main(void)
{
	struct vine_object obj = { .size = 100, .origin = "/data/env.tar.gz" };
	struct vine_task_spec sp = { .cmd = "true", .cores = 1, .object = id };
	struct vine_spread_settings set, got;
	unsigned char s1[VINE_STATE_SECRET_LEN], s2[VINE_STATE_SECRET_LEN];
	struct vine_object *objs;
	size_t nobjs;
	int64_t task, a, b, c, d, e;
	char src[64], *path;
	struct vine_state *st, *st2;

	if (!mkdtemp(dir))
		return 1;
	memcpy(obj.id, id, sizeof(id));
	path = vine_xasprintf("%s/one.db", dir);
	CHECK((st = vine_state_open(path, VINE_STATE_CREATE)) != NULL);
	free(path);
	path = vine_xasprintf("%s/two.db", dir);
	CHECK((st2 = vine_state_open(path, VINE_STATE_CREATE)) != NULL);
	free(path);

	/* a random secret per state, the same each time it is read */
	check_int(vine_state_peer_secret(st, s1), ==, 0);
	check_int(vine_state_peer_secret(st2, s2), ==, 0);
	check_int(memcmp(s1, s2, sizeof(s1)), !=, 0);
	check_int(vine_state_peer_secret(st, s2), ==, 0);
	check_int(memcmp(s1, s2, sizeof(s1)), ==, 0);

	/* settings: defaults, checked, stored */
	check_int(vine_state_spread_settings(st, NULL, &got), ==, 0);
	check_int(got.k_peer, ==, VINE_K_PEER_DEFAULT);
	check_int(got.k_origin, ==, VINE_K_ORIGIN_DEFAULT);
	check_int(got.relay, ==, 1);
	set = (struct vine_spread_settings){ 0, 1, 1 };
	check_int(vine_state_spread_settings(st, &set, NULL), ==, -1);
	set = (struct vine_spread_settings){ 1, 1, 1 };
	check_int(vine_state_spread_settings(st, &set, &got), ==, 0);
	check_int(got.k_peer, ==, 1);
	check_int(got.k_origin, ==, 1);

	/* an unknown object is an error */
	check_int(begin(st, "n1", 0, src, &a), ==, -1);
	CHECK(strstr(vine_errmsg(), "not registered") != NULL);
	check_int(vine_state_submit(st, &obj, &sp, 1, &task), ==, 0);

	/* n1: the origin; n2 relays from n1 (it is receiving); n3 from n2;
	 * n4: n1 and n2 are at K, n3 does not serve, the origin is at
	 * K_origin: wait */
	check_int(vine_state_node_listen(st, "n1", "127.0.0.1:1"), ==, 0);
	check_int(vine_state_node_listen(st, "n2", "127.0.0.1:2"), ==, 0);
	check_int(vine_state_node_listen(st, "n4", "127.0.0.1:4"), ==, 0);
	check_int(begin(st, "n1", 0, src, &a), ==, 0);
	check_str(src, ==, "origin");
	check_int(a, >, 0);
	check_int(begin(st, "n2", 0, src, &b), ==, 0);
	check_str(src, ==, "n1");
	check_int(begin(st, "n3", 0, src, &c), ==, 0);
	check_str(src, ==, "n2");
	check_int(begin(st, "n4", 0, src, &d), ==, 0);
	check_str(src, ==, "wait");
	check_int(d, ==, 0);
	check_int(vine_state_transfer_progress(st, a, 50), ==, 0);
	/* n1 done: complete, the origin counted; n4 now gets the origin (free) */
	check_int(vine_state_transfer_end(st, a, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(vine_state_transfer_end(st, a, VINE_PEER_OK, 100, NULL), ==, -1);
	check_int(begin(st, "n4", 0, src, &d), ==, 0);
	check_str(src, ==, "origin");
	/* n2's source broke at 40 bytes: n1 is avoided, n5 gets n2 (growing) or waits */
	check_int(vine_state_transfer_end(st, b, VINE_PEER_ECONNECT, 40, "gone"), ==, 0);
	check_int(begin(st, "n5", 0, src, &e), ==, 0);
	check_str(src, !=, "n1");
	/* a resume at 60 bytes is not sent to a partial copy holding less */
	check_int(vine_state_transfer_end(st, d, VINE_PEER_OK, 100, NULL), ==, 0);
	check_int(begin(st, "n2", 60, src, &b), ==, 0);
	check_str(src, !=, "n1");

	/* no relaying: only complete copies serve */
	set = (struct vine_spread_settings){ 4, 1, 0 };
	check_int(vine_state_spread_settings(st, &set, NULL), ==, 0);
	check_int(begin(st, "n6", 0, src, &e), ==, 0);
	check_str(src, ==, "n4");

	/* counters */
	check_int(vine_state_list_objects(st, &objs, &nobjs), ==, 0);
	check_int(nobjs, ==, 1);
	check_int(objs[0].served_origin, ==, 2);
	check_int(objs[0].bytes_origin, ==, 200);
	check_int(objs[0].xfer_failed, ==, 1);
	vine_state_free_objects(objs, nobjs);

	/* replica_set: an unknown object is refused */
	check_int(vine_state_replica_set(st,
		"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", "n1", 1, 0),
		==, -1);
	check_int(vine_state_replica_set(st, id, "n9", 100, 1), ==, 0);

	/* a complete replica whose node says "not found" (it pruned the
	 * object) is dropped: peers are sent there no more */
	int64_t x1, x2;
	check_int(vine_state_submit(st2, &obj, &sp, 1, &task), ==, 0);
	check_int(vine_state_node_listen(st2, "p1", "127.0.0.1:1"), ==, 0);
	check_int(vine_state_node_listen(st2, "p2", "127.0.0.1:2"), ==, 0);
	check_int(vine_state_replica_set(st2, id, "p1", 100, 1), ==, 0);
	check_int(begin(st2, "d1", 0, src, &x1), ==, 0);
	check_str(src, ==, "p1");
	check_int(vine_state_transfer_end(st2, x1, VINE_PEER_ENOTFOUND, 0, "no such object"), ==, 0);
	check_int(begin(st2, "d2", 0, src, &x2), ==, 0);
	check_str(src, ==, "origin");
	check_int(vine_state_transfer_end(st2, x2, VINE_PEER_ELOCAL, 0, "test"), ==, 0);
	/* a node withdraws its replica itself (0 bytes, not complete) */
	check_int(vine_state_replica_set(st2, id, "p2", 100, 1), ==, 0);
	check_int(vine_state_replica_set(st2, id, "p2", 0, 0), ==, 0);
	check_int(begin(st2, "d3", 0, src, &x2), ==, 0);
	check_str(src, ==, "origin");
	check_int(vine_state_list_objects(st2, &objs, &nobjs), ==, 0);
	check_int(nobjs, ==, 1);
	check_int(objs[0].nreplicas, >, 0);
	for (size_t i = 0; i < objs[0].nreplicas; i++)
		check_int(objs[0].replicas[i].node[0], ==, 'd');
	vine_state_free_objects(objs, nobjs);
	/* withdrawing what the state never heard of is no error */
	check_int(vine_state_replica_set(st2,
		"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", "p2", 0, 0), ==, 0);

	/* a lost worker's transfers end as lost, and its node stops serving */
	struct vine_worker_info wi = { .node = "n6", .host = "h", .pid = 1, .cores = 1, .lease = 0.05 };
	int64_t w;
	int reaped;
	check_int(vine_state_register_worker(st, &wi, &w), ==, 0);
	check_int(vine_state_node_listen(st, "n6", "127.0.0.1:6"), ==, 0);
	nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	check_int(vine_state_reap(st, &reaped), ==, 0);
	struct vine_transfer *t;
	size_t nt;
	int lost = 0;
	check_int(vine_state_list_transfers(st, &t, &nt), ==, 0);
	for (size_t i = 0; i < nt; i++)
		lost += !strcmp(t[i].dest, "n6") && !strcmp(t[i].state, "failed") &&
			t[i].status && !strcmp(t[i].status, "lost");
	vine_state_free_transfers(t, nt);
	check_int(lost, ==, (e > 0));

	vine_state_close(st);
	vine_state_close(st2);
	char *rm = vine_xasprintf("rm -rf %s", dir);
	check_int(system(rm), ==, 0);
	free(rm);
	return T_END();
}
