/*
 * status.h - what vine-status(1) shows, as text and as JSON (jansson).
 *
 * The JSON object (documented in vine-status(1)):
 *   { "state": URL, "schema": N, "time": T,
 *     "tasks": { "total", "ready", "running", "done", "failed", "cancelled" },
 *     "workers": [ { "id", "node", "host", "pid", "cores", "listen", "state",
 *                    "started", "heartbeat", "expires", "running": [IDS] } ],
 *     "objects": [ { "id", "size", "origin", "replicas": [ { "node", "bytes",
 *                    "complete" } ], "served_origin", "served_peer",
 *                    "handbacks": [ { "node", "faults", "until", "reason" } ] } ] }
 * and for one task:
 *   { "id", "cmd", "state", "object", "tag", "cores", "retries", "timeout",
 *     "submitted", "failures", "losses", "faults", "attempts": [ { "attempt", "worker",
 *     "node", "claimed", "started", "ended", "outcome", "exit", "signal",
 *     "message", "received" } ] }
 * Strings that are not valid UTF-8 have the bad bytes replaced by U+FFFD.
 */
#ifndef VINE_STATUS_H
#define VINE_STATUS_H

#include <stdio.h>

#include <jansson.h>

#include "state/state.h"

json_t *vine_status_json(struct vine_state *st);
int vine_status_text(struct vine_state *st, FILE *f);
json_t *vine_status_task_json(struct vine_state *st, int64_t id);
int vine_status_task_text(struct vine_state *st, int64_t id, FILE *f);

#endif
