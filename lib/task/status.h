/*
 * status.h - what vine-status(1) shows, as text and as JSON (jansson).
 *
 * The JSON object, field by field in vine-status(1), JSON OUTPUT; its
 * "format" member is VINE_STATUS_FORMAT, raised when a member changes
 * meaning or goes away (new members may come at any time):
 *   { "format": 1, "state": URL, "schema": N, "time": T,
 *     "tasks": { "total", "ready", "running", "done", "failed", "cancelled" },
 *     "waiting": { "no_worker", "unfit", "unfit_task" },
 *     "workers": [ { "id", "node", "host", "pid", "cores", "memory", "gpus",
 *                    "listen", "state", "started", "heartbeat", "expires",
 *                    "running": [IDS] } ],
 *     "objects": [ { "id", "size", "origin", "replicas": [ { "node", "bytes",
 *                    "complete" } ], "served_origin", "served_peer",
 *                    "bytes_origin", "bytes_peer", "transfers_active",
 *                    "transfers_failed",
 *                    "handbacks": [ { "node", "faults", "until", "reason" } ] } ],
 *     "transfers": [ { "id", "object", "source", "addr", "dest", "state",
 *                      "status", "offset", "bytes", "started", "updated" } ] }
 * and for one task:
 *   { "format": 1, "id", "cmd", "state", "object", "tag", "submission", "cwd",
 *     "cores", "memory", "gpus", "retries", "timeout", "submitted",
 *     "failures", "losses", "faults", "attempts": [ { "attempt", "worker",
 *     "node", "claimed", "started", "ended", "outcome", "exit", "signal",
 *     "message", "received" } ] }
 * Strings that are not valid UTF-8 have the bad bytes replaced by U+FFFD.
 */
#ifndef VINE_STATUS_H
#define VINE_STATUS_H

#include <stdio.h>

#include <jansson.h>

#include "state/state.h"

#define VINE_STATUS_FORMAT 1

json_t *vine_status_json(struct vine_state *st);
/*
 * Why ready tasks wait, in words, one line each (no newline at the end),
 * or NULL when nothing is in the way: no live worker holds the run, or a
 * task needs more cores, memory or GPUs than any live worker has.  c is
 * the state's counts.  Allocated.
 */
char *vine_status_waiting(struct vine_state *st, const struct vine_counts *c);
/*
 * The tasks in the states whose bits (1 << enum vine_task_state) are set
 * in states, in id order: one line each as text ("ID STATE EXIT NODE
 * COMMAND"), or with json one vine_status_task_json object a line.
 */
int vine_status_list(struct vine_state *st, unsigned states, int json, FILE *f);
int vine_status_text(struct vine_state *st, FILE *f);
json_t *vine_status_task_json(struct vine_state *st, int64_t id);
int vine_status_task_text(struct vine_state *st, int64_t id, FILE *f);

#endif
