/*
 * state-sqlite.c - the local state backend: one SQLite database on this
 * host's disk, and a directory of result files beside it.
 *
 * The database runs in WAL mode with synchronous=NORMAL (a commit costs no
 * fsync; a crash of the host can lose the last commits but never corrupts
 * the file), a busy timeout so that many workers queue instead of failing,
 * and every change in one BEGIN IMMEDIATE transaction.  Statements are
 * prepared once per connection.  The schema below is documented in
 * vine(7), STATE FILE; PRAGMA user_version holds VINE_STATE_SCHEMA and
 * PRAGMA application_id marks the file as a vine state.
 *
 * Result files of task T, attempt A live in PATH.results/T/A/NAME (NAME as
 * in vine_state_put_file).  A file is written under a temporary name and
 * renamed into place inside the transaction that records it, after
 * checking again that the attempt is still current, so a stale attempt
 * leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/secret.h"
#include "util/transfer.h"
#include "state/state-impl.h"
#include "state/state-json.h"
#include "util/util.h"

#define APP_ID 0x76696e65 /* "vine" */
#define BUSY_MS 60000

static const char schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;\n"
	"CREATE TABLE objects(\n"
	"  id TEXT PRIMARY KEY,\n"
	"  size INTEGER NOT NULL,\n"
	"  origin TEXT NOT NULL,\n"
	"  registered REAL NOT NULL,\n"
	"  served_origin INTEGER NOT NULL DEFAULT 0,\n"
	"  served_peer INTEGER NOT NULL DEFAULT 0,\n"
	"  bytes_origin INTEGER NOT NULL DEFAULT 0,\n"
	"  bytes_peer INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;\n"
	"CREATE TABLE workers(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  node TEXT NOT NULL,\n"
	"  host TEXT NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  cores INTEGER NOT NULL,\n"
	"  listen TEXT,\n"
	"  state TEXT NOT NULL DEFAULT 'alive' CHECK(state IN ('alive','lost','gone')),\n"
	"  lease REAL NOT NULL,\n"
	"  started REAL NOT NULL,\n"
	"  heartbeat REAL NOT NULL,\n"
	"  expires REAL NOT NULL);\n"
	"CREATE INDEX workers_alive ON workers(expires) WHERE state = 'alive';\n"
	"CREATE TABLE tasks(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  cmd TEXT NOT NULL,\n"
	"  object TEXT REFERENCES objects(id),\n"
	"  cores INTEGER NOT NULL,\n"
	"  retries INTEGER NOT NULL,\n"
	"  timeout REAL NOT NULL,\n"
	"  tag TEXT,\n"
	"  submitted REAL NOT NULL,\n"
	"  state TEXT NOT NULL DEFAULT 'ready'\n"
	"    CHECK(state IN ('ready','running','done','failed','cancelled')),\n"
	"  attempts INTEGER NOT NULL DEFAULT 0,\n"
	"  failures INTEGER NOT NULL DEFAULT 0,\n"
	"  losses INTEGER NOT NULL DEFAULT 0,\n"
	"  worker INTEGER REFERENCES workers(id));\n"
	"CREATE INDEX tasks_state ON tasks(state, id);\n"
	"CREATE INDEX tasks_worker ON tasks(worker) WHERE worker IS NOT NULL;\n"
	"CREATE TABLE attempts(\n"
	"  task INTEGER NOT NULL REFERENCES tasks(id),\n"
	"  attempt INTEGER NOT NULL,\n"
	"  worker INTEGER NOT NULL REFERENCES workers(id),\n"
	"  node TEXT NOT NULL,\n"
	"  claimed REAL NOT NULL,\n"
	"  started REAL,\n"
	"  ended REAL,\n"
	"  outcome TEXT NOT NULL DEFAULT 'running' CHECK(outcome IN\n"
	"    ('running','exited','signaled','timeout','error','lost','released')),\n"
	"  exit_code INTEGER,\n"
	"  signal INTEGER,\n"
	"  message TEXT,\n"
	"  PRIMARY KEY(task, attempt)) WITHOUT ROWID;\n"
	"CREATE TABLE files(\n"
	"  task INTEGER NOT NULL,\n"
	"  attempt INTEGER NOT NULL,\n"
	"  name TEXT NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  PRIMARY KEY(task, attempt, name),\n"
	"  FOREIGN KEY(task, attempt) REFERENCES attempts(task, attempt)) WITHOUT ROWID;\n"
	"CREATE TABLE replicas(\n"
	"  object TEXT NOT NULL REFERENCES objects(id),\n"
	"  node TEXT NOT NULL,\n"
	"  bytes INTEGER NOT NULL DEFAULT 0,\n"
	"  complete INTEGER NOT NULL DEFAULT 0,\n"
	"  updated REAL,\n"
	"  PRIMARY KEY(object, node)) WITHOUT ROWID;\n"
	"CREATE TABLE peers(\n"
	"  node TEXT PRIMARY KEY,\n"
	"  addr TEXT NOT NULL,\n"
	"  registered REAL NOT NULL,\n"
	"  avoid_until REAL NOT NULL DEFAULT 0,\n"
	"  avoid_reason TEXT) WITHOUT ROWID;\n"
	"CREATE TABLE transfers(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  object TEXT NOT NULL REFERENCES objects(id),\n"
	"  source TEXT,\n"
	"  addr TEXT NOT NULL,\n"
	"  dest TEXT NOT NULL,\n"
	"  state TEXT NOT NULL DEFAULT 'active' CHECK(state IN ('active','done','failed')),\n"
	"  status TEXT,\n"
	"  offset INTEGER NOT NULL,\n"
	"  bytes INTEGER NOT NULL,\n"
	"  started REAL NOT NULL,\n"
	"  updated REAL NOT NULL,\n"
	"  message TEXT);\n"
	"CREATE INDEX transfers_active ON transfers(object, state);\n";

/*
 * Added by schema version 3: answers of requests made exactly once, and
 * an index to count origin transfers in flight across all objects.
 */
static const char v3_sql[] =
	"CREATE TABLE once(key TEXT PRIMARY KEY, answer TEXT NOT NULL, at REAL NOT NULL)"
	" WITHOUT ROWID;\n"
	"CREATE INDEX once_at ON once(at);\n"
	"CREATE INDEX transfers_origin ON transfers(updated)"
	" WHERE source IS NULL AND state = 'active';\n";

/*
 * Schema version 4, the "ux" step: a task's directory (cwd), the memory
 * and GPUs it needs, and the named submission it came in (submission);
 * the memory and GPUs a worker offers; the table of named submissions
 * (their task list's digest and the ids they were given); and attempts
 * that end as 'cancelled', which needs the attempts table rebuilt with
 * the wider CHECK (SQLite cannot alter one in place).
 */
static const char v4_sql[] =
	"ALTER TABLE tasks ADD COLUMN cwd TEXT;\n"
	"ALTER TABLE tasks ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE tasks ADD COLUMN submission TEXT;\n"
	"CREATE INDEX tasks_submission ON tasks(submission) WHERE submission IS NOT NULL;\n"
	"ALTER TABLE workers ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE workers ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE TABLE submissions(\n"
	"  name TEXT PRIMARY KEY,\n"
	"  digest TEXT NOT NULL,\n"
	"  ids TEXT NOT NULL,\n"
	"  at REAL NOT NULL) WITHOUT ROWID;\n"
	"CREATE TABLE attempts_v4(\n"
	"  task INTEGER NOT NULL REFERENCES tasks(id),\n"
	"  attempt INTEGER NOT NULL,\n"
	"  worker INTEGER NOT NULL REFERENCES workers(id),\n"
	"  node TEXT NOT NULL,\n"
	"  claimed REAL NOT NULL,\n"
	"  started REAL,\n"
	"  ended REAL,\n"
	"  outcome TEXT NOT NULL DEFAULT 'running' CHECK(outcome IN\n"
	"    ('running','exited','signaled','timeout','error','lost','released','cancelled')),\n"
	"  exit_code INTEGER,\n"
	"  signal INTEGER,\n"
	"  message TEXT,\n"
	"  PRIMARY KEY(task, attempt)) WITHOUT ROWID;\n"
	"INSERT INTO attempts_v4 SELECT task, attempt, worker, node, claimed, started, ended,"
	" outcome, exit_code, signal, message FROM attempts;\n"
	"DROP TABLE attempts;\n"
	"ALTER TABLE attempts_v4 RENAME TO attempts;\n";

/*
 * Schema version 5, the "faults" step (vine(7) FAULTS): attempts may end
 * as 'fault' (the attempts table rebuilt again for the wider CHECK); tasks
 * count the distinct nodes that handed them back so; node_faults holds,
 * per node and object, how often that node faulted with it, until when it
 * claims no task needing it, and why.
 */
static const char v5_sql[] =
	"CREATE TABLE attempts_v5(\n"
	"  task INTEGER NOT NULL REFERENCES tasks(id),\n"
	"  attempt INTEGER NOT NULL,\n"
	"  worker INTEGER NOT NULL REFERENCES workers(id),\n"
	"  node TEXT NOT NULL,\n"
	"  claimed REAL NOT NULL,\n"
	"  started REAL,\n"
	"  ended REAL,\n"
	"  outcome TEXT NOT NULL DEFAULT 'running' CHECK(outcome IN\n"
	"    ('running','exited','signaled','timeout','error','lost','released','cancelled',\n"
	"     'fault')),\n"
	"  exit_code INTEGER,\n"
	"  signal INTEGER,\n"
	"  message TEXT,\n"
	"  PRIMARY KEY(task, attempt)) WITHOUT ROWID;\n"
	"INSERT INTO attempts_v5 SELECT task, attempt, worker, node, claimed, started, ended,"
	" outcome, exit_code, signal, message FROM attempts;\n"
	"DROP TABLE attempts;\n"
	"ALTER TABLE attempts_v5 RENAME TO attempts;\n"
	"ALTER TABLE tasks ADD COLUMN faults INTEGER NOT NULL DEFAULT 0;\n"
	"CREATE TABLE node_faults(\n"
	"  node TEXT NOT NULL,\n"
	"  object TEXT NOT NULL REFERENCES objects(id),\n"
	"  faults INTEGER NOT NULL,\n"
	"  until REAL NOT NULL,\n"
	"  reason TEXT,\n"
	"  PRIMARY KEY(node, object)) WITHOUT ROWID;\n";

/*
 * Schema version 6, the "delivered" step (vine(7) STATE FILE): when a
 * task's results were delivered (vine_state_deliver), after which its
 * result files are gone and only its record is kept.
 */
static const char v6_sql[] =
	"ALTER TABLE tasks ADD COLUMN delivered REAL;\n";

/* The steps from each version to the next: migrations[v] goes from v to v + 1. */
static const char *const migrations[] = {
	[2] = v3_sql,
	[3] = v4_sql,
	[4] = v5_sql,
	[5] = v6_sql,
};

/* Every statement, prepared on first use and kept. */
enum {
	Q_OBJ_SIZE, Q_OBJ_ADD, Q_TASK_ADD,
	Q_REQUEUE_IDS, Q_REQUEUE,
	Q_ONCE_GET, Q_ONCE_ADD, Q_ONCE_EXPIRE, Q_PEER_BACK,
	Q_OBJ_LIST, Q_REPL_LIST,
	Q_WORKER_ADD, Q_WORKER_GET, Q_WORKER_RENEW, Q_WORKER_STATE, Q_WORKER_EXPIRED,
	Q_CURRENT, Q_HELD,
	Q_READY, Q_TAKE, Q_ATTEMPT_ADD, Q_MORE,
	Q_TASK_COUNTERS, Q_ATTEMPT_END, Q_TASK_END,
	Q_FILE_ADD,
	Q_COUNTS, Q_ALIVE, Q_WORKER_LIST, Q_RUNNING_LIST,
	Q_TASK_LIST, Q_TASK_EXISTS, Q_ATTEMPT_LIST, Q_FILE_LIST, Q_FILE_GET,
	Q_META_GET, Q_META_SET, Q_PEER_SET, Q_PEER_DEL, Q_PEER_PICK, Q_ORIGIN_LOAD,
	Q_SUB_GET, Q_SUB_ADD, Q_SUB_EXISTS, Q_CANCEL_IDS_ALL, Q_CANCEL_IDS_SUB, Q_CANCEL_ONE,
	Q_CANCEL_ATTEMPT, Q_CANCEL_TASK, Q_UNFIT, Q_SLOTS,
	Q_XFER_ADD, Q_REPL_SET, Q_XFER_GET, Q_XFER_PROGRESS, Q_XFER_END, Q_SERVED,
	Q_PEER_AVOID, Q_REPL_DROP, Q_XFER_LOST, Q_XFER_LIST, Q_WORKER_NODE,
	Q_FAULT_INFO, Q_TASK_FAULTS, Q_BACKOFF_SET, Q_BACKOFF_LIST,
	Q_DELIVER_GET, Q_DELIVER_FILES, Q_DELIVER_SET,
	Q_N
};

static const char *const sql[Q_N] = {
	[Q_OBJ_SIZE] = "SELECT size FROM objects WHERE id = ?1",
	[Q_OBJ_ADD] = "INSERT INTO objects(id, size, origin, registered) VALUES(?1, ?2, ?3, ?4)",
	[Q_TASK_ADD] = "INSERT INTO tasks(cmd, object, cores, retries, timeout, tag, submitted,"
		       " cwd, memory, gpus, submission)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[Q_REQUEUE_IDS] = "SELECT id FROM tasks WHERE state = 'failed' ORDER BY id",
	[Q_REQUEUE] = "UPDATE tasks SET state = 'ready', failures = 0, losses = 0, faults = 0,"
		      " delivered = NULL,"
		      " retries = CASE WHEN ?1 >= 0 THEN ?1 ELSE retries END"
		      " WHERE state = 'failed'",
	[Q_ONCE_GET] = "SELECT answer FROM once WHERE key = ?1",
	[Q_ONCE_ADD] = "INSERT INTO once(key, answer, at) VALUES(?1, ?2, ?3)",
	[Q_ONCE_EXPIRE] = "DELETE FROM once WHERE at < ?1",
	/* a lost worker back alive serves again, unless its node has another server */
	[Q_PEER_BACK] = "INSERT OR IGNORE INTO peers(node, addr, registered)"
			" SELECT node, listen, ?2 FROM workers"
			" WHERE id = ?1 AND state = 'lost' AND listen IS NOT NULL",
	[Q_OBJ_LIST] = "SELECT id, size, origin, served_origin, served_peer, bytes_origin, bytes_peer,"
		       " (SELECT count(*) FROM transfers t WHERE t.object = o.id AND t.state = 'active'),"
		       " (SELECT count(*) FROM transfers t WHERE t.object = o.id AND t.state = 'failed')"
		       " FROM objects o ORDER BY id",
	[Q_REPL_LIST] = "SELECT node, bytes, complete FROM replicas WHERE object = ?1 ORDER BY node",
	[Q_WORKER_ADD] = "INSERT INTO workers(node, host, pid, cores, listen, lease, started,"
			 " heartbeat, expires, memory, gpus)"
			 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7 + ?6, ?8, ?9)",
	[Q_WORKER_GET] = "SELECT state, expires, lease FROM workers WHERE id = ?1",
	[Q_WORKER_RENEW] = "UPDATE workers SET heartbeat = ?2, expires = ?2 + lease, state = 'alive'"
			   " WHERE id = ?1 AND state != 'gone'",
	[Q_WORKER_STATE] = "UPDATE workers SET state = ?2 WHERE id = ?1",
	[Q_WORKER_EXPIRED] = "SELECT id FROM workers WHERE state = 'alive' AND expires < ?1",
	[Q_CURRENT] = "SELECT 1 FROM tasks WHERE id = ?1 AND state = 'running' AND attempts = ?2"
		      " AND worker = ?3",
	[Q_HELD] = "SELECT id, attempts FROM tasks WHERE worker = ?1 AND state = 'running'",
	[Q_READY] = "SELECT t.id, t.cmd, t.cores, t.timeout, t.object, o.origin, o.size, t.attempts,"
		    " t.cwd, t.memory, t.gpus"
		    " FROM tasks t LEFT JOIN objects o ON o.id = t.object"
		    " WHERE t.state = 'ready' AND t.cores <= ?1 AND t.memory <= ?3 AND t.gpus <= ?4"
		    /* not what this worker's node is backing off from (FAULT) */
		    "   AND (t.object IS NULL OR NOT EXISTS(SELECT 1 FROM node_faults f"
		    "     WHERE f.node = (SELECT node FROM workers WHERE id = ?5)"
		    "     AND f.object = t.object AND f.until > ?6))"
		    " ORDER BY t.id LIMIT ?2",
	[Q_TAKE] = "UPDATE tasks SET state = 'running', attempts = attempts + 1, worker = ?2"
		   " WHERE id = ?1",
	[Q_ATTEMPT_ADD] = "INSERT INTO attempts(task, attempt, worker, node, claimed)"
			  " VALUES(?1, ?2, ?3, (SELECT node FROM workers WHERE id = ?3), ?4)",
	[Q_MORE] = "SELECT EXISTS(SELECT 1 FROM tasks WHERE state = 'ready' AND cores <= ?1"
		   " AND memory <= ?2 AND gpus <= ?3)",
	[Q_TASK_COUNTERS] = "SELECT retries, failures, losses FROM tasks WHERE id = ?1",
	[Q_ATTEMPT_END] = "UPDATE attempts SET outcome = ?3, exit_code = ?4, signal = ?5,"
			  " started = ?6, ended = ?7, message = ?8 WHERE task = ?1 AND attempt = ?2",
	[Q_TASK_END] = "UPDATE tasks SET state = ?2, failures = ?3, losses = ?4, worker = NULL"
		       " WHERE id = ?1",
	[Q_FILE_ADD] = "INSERT OR REPLACE INTO files(task, attempt, name, size) VALUES(?1, ?2, ?3, ?4)",
	[Q_COUNTS] = "SELECT state, count(*) FROM tasks GROUP BY state",
	[Q_ALIVE] = "SELECT count(*) FROM workers WHERE state = 'alive'",
	[Q_WORKER_LIST] = "SELECT id, node, host, pid, cores, listen, state, started, heartbeat,"
			  " expires, memory, gpus FROM workers ORDER BY id",
	[Q_RUNNING_LIST] = "SELECT worker, id FROM tasks WHERE state = 'running' ORDER BY worker, id",
	[Q_TASK_LIST] = "SELECT t.id, t.cmd, t.object, t.tag, t.cores, t.retries, t.timeout,"
			" t.submitted, t.state, t.attempts, t.failures, t.losses,"
			" a.task, a.attempt, a.worker, a.node, a.claimed, a.started, a.ended,"
			" a.outcome, a.exit_code, a.signal, a.message,"
			" (SELECT coalesce(sum(size), 0) FROM files f"
			"   WHERE f.task = t.id AND f.attempt = t.attempts),"
			" t.cwd, t.submission, t.memory, t.gpus, t.faults, coalesce(t.delivered, 0)"
			" FROM tasks t LEFT JOIN attempts a ON a.task = t.id AND a.attempt = t.attempts"
			" WHERE t.id > ?1 ORDER BY t.id LIMIT ?2",
	[Q_TASK_EXISTS] = "SELECT 1 FROM tasks WHERE id = ?1",
	[Q_ATTEMPT_LIST] = "SELECT a.task, a.attempt, a.worker, a.node, a.claimed, a.started, a.ended,"
			   " a.outcome, a.exit_code, a.signal, a.message,"
			   " (SELECT coalesce(sum(size), 0) FROM files f"
			   "   WHERE f.task = a.task AND f.attempt = a.attempt)"
			   " FROM attempts a WHERE a.task = ?1 ORDER BY a.attempt",
	[Q_FILE_LIST] = "SELECT name, size FROM files WHERE task = ?1 AND attempt = ?2 ORDER BY name",
	[Q_FILE_GET] = "SELECT size FROM files WHERE task = ?1 AND attempt = ?2 AND name = ?3",
	[Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[Q_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	[Q_PEER_SET] = "INSERT OR REPLACE INTO peers(node, addr, registered) VALUES(?1, ?2, ?3)",
	[Q_PEER_DEL] = "DELETE FROM peers WHERE node = ?1",
	/* ?1 object, ?2 dest, ?3 now, ?4 oldest live update, ?5 offset, ?6 relay, ?7 K */
	[Q_PEER_PICK] = "SELECT node, addr FROM (SELECT p.node, p.addr, r.complete, r.bytes,"
			" (SELECT count(*) FROM transfers t WHERE t.source = p.node"
			"   AND t.state = 'active' AND t.updated >= ?4) AS up"
			" FROM replicas r JOIN peers p ON p.node = r.node"
			" WHERE r.object = ?1 AND r.node != ?2 AND p.avoid_until <= ?3"
			"   AND (r.complete OR (?6 AND r.bytes >= ?5 AND EXISTS(SELECT 1 FROM transfers t"
			"     WHERE t.object = r.object AND t.dest = r.node AND t.state = 'active'"
			"     AND t.updated >= ?4))))"
			" WHERE up < ?7 ORDER BY complete DESC, up, bytes DESC, random() LIMIT 1",
	/* K_origin counts every object's origin transfers: one origin file system */
	[Q_ORIGIN_LOAD] = "SELECT o.origin, (SELECT count(*) FROM transfers t"
			  " WHERE t.source IS NULL AND t.state = 'active' AND t.updated >= ?2)"
			  " FROM objects o WHERE o.id = ?1",
	[Q_XFER_ADD] = "INSERT INTO transfers(object, source, addr, dest, offset, bytes, started, updated)"
		       " VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6)",
	[Q_REPL_SET] = "INSERT INTO replicas(object, node, bytes, complete, updated)"
		       " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(object, node) DO UPDATE"
		       " SET bytes = ?3, complete = ?4, updated = ?5",
	[Q_XFER_GET] = "SELECT object, source, dest, state, offset, bytes FROM transfers WHERE id = ?1",
	[Q_XFER_PROGRESS] = "UPDATE transfers SET bytes = ?2, updated = ?3 WHERE id = ?1 AND state = 'active'",
	[Q_XFER_END] = "UPDATE transfers SET state = ?2, status = ?3, bytes = ?4, updated = ?5,"
		       " message = ?6 WHERE id = ?1",
	[Q_SERVED] = "UPDATE objects SET"
		     " served_origin = served_origin + (?2 AND ?3 IS NULL),"
		     " served_peer = served_peer + (?2 AND ?3 IS NOT NULL),"
		     " bytes_origin = bytes_origin + CASE WHEN ?3 IS NULL THEN ?4 ELSE 0 END,"
		     " bytes_peer = bytes_peer + CASE WHEN ?3 IS NULL THEN 0 ELSE ?4 END"
		     " WHERE id = ?1",
	[Q_PEER_AVOID] = "UPDATE peers SET avoid_until = ?2, avoid_reason = ?3 WHERE node = ?1",
	[Q_REPL_DROP] = "DELETE FROM replicas WHERE object = ?1 AND node = ?2",
	[Q_XFER_LOST] = "UPDATE transfers SET state = 'failed', status = 'lost', updated = ?2,"
			" message = 'node lost: lease expired'"
			" WHERE state = 'active' AND (dest = ?1 OR source = ?1)",
	[Q_XFER_LIST] = "SELECT id, object, source, addr, dest, state, status, offset, bytes, started,"
			" updated FROM transfers ORDER BY id",
	[Q_WORKER_NODE] = "SELECT node FROM workers WHERE id = ?1",
	/* an attempt's node, its task's object and faults, and whether that
	 * node handed the task back before */
	[Q_FAULT_INFO] = "SELECT a.node, t.object, t.faults, EXISTS(SELECT 1 FROM attempts b"
			 " WHERE b.task = a.task AND b.node = a.node AND b.outcome = 'fault'"
			 " AND b.attempt != a.attempt)"
			 " FROM attempts a JOIN tasks t ON t.id = a.task"
			 " WHERE a.task = ?1 AND a.attempt = ?2",
	[Q_TASK_FAULTS] = "UPDATE tasks SET faults = ?2 WHERE id = ?1",
	/* ?1 node, ?2 object, ?3 now, ?4 base, ?5 reason, ?6 most; a fault
	 * while the node backs off already (the other tasks of the same
	 * failed fetch) is the same fault */
	[Q_BACKOFF_SET] = "INSERT INTO node_faults(node, object, faults, until, reason)"
			  " VALUES(?1, ?2, 1, ?3 + ?4, ?5) ON CONFLICT(node, object) DO UPDATE"
			  " SET faults = faults + (until <= ?3), reason = ?5,"
			  " until = CASE WHEN until > ?3 THEN until"
			  "   ELSE ?3 + min(?4 * (1 << min(faults, 20)), ?6) END",
	[Q_BACKOFF_LIST] = "SELECT node, faults, until, reason FROM node_faults WHERE object = ?1"
			   " ORDER BY node",
	[Q_SUB_GET] = "SELECT digest, ids FROM submissions WHERE name = ?1",
	[Q_SUB_ADD] = "INSERT INTO submissions(name, digest, ids, at) VALUES(?1, ?2, ?3, ?4)",
	[Q_SUB_EXISTS] = "SELECT 1 FROM submissions WHERE name = ?1",
	[Q_CANCEL_IDS_ALL] = "SELECT id FROM tasks WHERE state IN ('ready', 'running') ORDER BY id",
	[Q_CANCEL_IDS_SUB] = "SELECT id FROM tasks WHERE submission = ?1"
			     " AND state IN ('ready', 'running') ORDER BY id",
	[Q_CANCEL_ONE] = "SELECT state IN ('ready', 'running') FROM tasks WHERE id = ?1",
	[Q_CANCEL_ATTEMPT] = "UPDATE attempts SET outcome = 'cancelled', ended = ?2,"
			     " message = 'cancelled' WHERE task = ?1 AND outcome = 'running'",
	[Q_CANCEL_TASK] = "UPDATE tasks SET state = 'cancelled', worker = NULL WHERE id = ?1",
	/* ready tasks no alive worker that runs tasks could ever take */
	[Q_UNFIT] = "SELECT count(*), min(t.id) FROM tasks t WHERE t.state = 'ready'"
		    " AND EXISTS(SELECT 1 FROM workers WHERE state = 'alive' AND cores > 0)"
		    " AND NOT EXISTS(SELECT 1 FROM workers w WHERE w.state = 'alive' AND w.cores > 0"
		    "   AND w.cores >= t.cores AND w.memory >= t.memory AND w.gpus >= t.gpus)",
	[Q_SLOTS] = "SELECT count(*) FROM workers WHERE state = 'alive' AND cores > 0",
	[Q_DELIVER_GET] = "SELECT state, delivered IS NOT NULL, attempts FROM tasks WHERE id = ?1",
	[Q_DELIVER_FILES] = "DELETE FROM files WHERE task = ?1",
	[Q_DELIVER_SET] = "UPDATE tasks SET delivered = ?2 WHERE id = ?1",
};

struct sq_state {
	struct vine_state base;
	sqlite3 *db;
	char *path;
	char *results;              /* PATH.results */
	sqlite3_stmt *stmt[Q_N];
	/* for $VINE_STATE_STATS (see busy_wait) */
	long txns, busy_waits;
	double busy_seconds;
};

static const struct vine_state_ops sq_ops;

static struct sq_state *SQ(struct vine_state *st)
{
	return (struct sq_state *)st;
}

static int db_error(struct sq_state *s, const char *what)
{
	return vine_error("state '%s': %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/* The statement, prepared if need be, reset and with bindings cleared. */
static sqlite3_stmt *Q(struct sq_state *s, int q)
{
	if (!s->stmt[q]) {
		if (sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[q],
				       NULL) != SQLITE_OK) {
			db_error(s, "cannot prepare statement");
			return NULL;
		}
	} else {
		sqlite3_reset(s->stmt[q]);
		sqlite3_clear_bindings(s->stmt[q]);
	}
	return s->stmt[q];
}

static int exec(struct sq_state *s, const char *q)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, q, NULL, NULL, &err) != SQLITE_OK) {
		vine_error("state '%s': %s", s->path, err ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int begin(struct sq_state *s)
{
	s->txns++;
	return exec(s, "BEGIN IMMEDIATE");
}

/*
 * SQLite's own busy timeout, with its delays, counted: how often and how
 * long this connection waited for another's lock.  With
 * $VINE_STATE_STATS=FILE a connection appends that to FILE when it
 * closes (bench/control-plane.sh; vine(7), STATE FILE).
 */
static int busy_wait(void *ctx, int count)
{
	static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
	enum { NDELAYS = sizeof(delays) / sizeof(delays[0]) };
	struct sq_state *s = ctx;
	int waited = 0, d = count < NDELAYS ? delays[count] : delays[NDELAYS - 1];
	double t0;

	for (int i = 0; i < count; i++)
		waited += i < NDELAYS ? delays[i] : delays[NDELAYS - 1];
	if (waited >= BUSY_MS)
		return 0;
	if (waited + d > BUSY_MS)
		d = BUSY_MS - waited;
	t0 = vine_now_mono();
	sqlite3_sleep(d);
	s->busy_waits++;
	s->busy_seconds += vine_now_mono() - t0;
	return 1;
}

static void stats_write(struct sq_state *s)
{
	const char *path = getenv("VINE_STATE_STATS");
	struct rusage ru;
	char line[200];
	int fd, n;

	if (!path || !*path || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		memset(&ru, 0, sizeof(ru));
	/* the process's CPU time so far: vine-state's, for one connection */
	n = snprintf(line, sizeof(line), "pid %ld transactions %ld busy_waits %ld busy_seconds %.3f"
		     " cpu_seconds %.3f\n", (long)getpid(), s->txns, s->busy_waits, s->busy_seconds,
		     ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			     (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if (vine_write_full(fd, line, (size_t)n) < 0) {
		/* statistics only */
	}
	close(fd);
}

static int begin_read(struct sq_state *s)
{
	return exec(s, "BEGIN");
}

/* Reset every statement, so none holds the transaction's snapshot open. */
static void reset_all(struct sq_state *s)
{
	for (int i = 0; i < Q_N; i++)
		if (s->stmt[i])
			sqlite3_reset(s->stmt[i]);
}

static int commit(struct sq_state *s)
{
	reset_all(s);
	return exec(s, "COMMIT");
}

/* Roll back after a failure; keeps the message that explains it. */
static int rollback(struct sq_state *s)
{
	reset_all(s);
	if (sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Step a statement that returns no rows (or whose rows are not wanted). */
static int run(struct sq_state *s, sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(s, "update failed");
	sqlite3_reset(q);
	return 0;
}

/* Step a statement: 1 a row, 0 done, -1 error. */
static int row(struct sq_state *s, sqlite3_stmt *q)
{
	int rc = sqlite3_step(q);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_error(s, "query failed");
}

static char *col_str(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t ? vine_xstrdup((const char *)t) : NULL;
}

static void bind_str(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

/*
 * v (of len elements of size bytes) with room for one more, which is
 * zeroed: a list being collected row by row, its room doubling from 8.
 */
static void *grow(void *v, size_t len, size_t size)
{
	if (len == 0 || (len >= 8 && (len & (len - 1)) == 0))
		v = vine_xrealloc(v, (len ? 2 * len : 8) * size);
	memset((char *)v + len * size, 0, size);
	return v;
}

/* The first column of every row of q, as int64s, into *v (*len of them). */
static int rows_i64(struct sq_state *s, sqlite3_stmt *q, int64_t **v, size_t *len)
{
	int r;

	while ((r = row(s, q)) > 0) {
		*v = grow(*v, *len, sizeof(**v));
		(*v)[(*len)++] = sqlite3_column_int64(q, 0);
	}
	return r;
}

/* --- opening ------------------------------------------------------------ */

static int read_version(struct sq_state *s, int *version, int *app, int *tables)
{
	sqlite3_stmt *q = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT (SELECT user_version FROM pragma_user_version),"
			       " (SELECT application_id FROM pragma_application_id),"
			       " (SELECT count(*) FROM sqlite_master)", -1, &q, NULL) != SQLITE_OK) {
		db_error(s, "cannot read");
		goto out;
	}
	if (sqlite3_step(q) != SQLITE_ROW) {
		db_error(s, "cannot read");
		goto out;
	}
	*version = sqlite3_column_int(q, 0);
	*app = sqlite3_column_int(q, 1);
	*tables = sqlite3_column_int(q, 2);
	rc = 0;
out:
	sqlite3_finalize(q);
	return rc;
}

static int create_schema(struct sq_state *s)
{
	int version, app, tables;
	char *q;

	if (begin(s) < 0)
		return -1;
	/* another program may have created it while we waited for the lock */
	if (read_version(s, &version, &app, &tables) < 0)
		return rollback(s);
	if (tables == 0) {
		unsigned char secret[VINE_PEER_SECRET_LEN];
		char hex[2 * VINE_PEER_SECRET_LEN + 1];
		if (vine_peer_secret_new(secret) < 0)
			return rollback(s);
		vine_peer_secret_hex(secret, hex);
		q = vine_xasprintf("%s%s%s%s%sPRAGMA user_version = %d; PRAGMA application_id = %d;"
				   " INSERT INTO meta VALUES('created', '%.3f');"
				   " INSERT INTO meta VALUES('peer_secret', '%s');",
				   schema_sql, v3_sql, v4_sql, v5_sql, v6_sql, VINE_STATE_SCHEMA, APP_ID,
				   vine_now_wall(), hex);
		explicit_bzero(secret, sizeof(secret));
		explicit_bzero(hex, sizeof(hex));
		int rc = exec(s, q);
		free(q);
		if (rc < 0)
			return rollback(s);
	}
	return commit(s);
}

/*
 * One schema step, from version from to from + 1, in place, in one
 * transaction (migrations[]).  Another program may have done it while we
 * waited for the lock: then nothing is done.  *done is set when this call
 * did it.
 */
static int migrate(struct sq_state *s, int from, int *done)
{
	int version, app, tables;
	char *q;

	*done = 0;
	if (begin(s) < 0 || read_version(s, &version, &app, &tables) < 0)
		return rollback(s);
	if (version == from) {
		q = vine_xasprintf("%sPRAGMA user_version = %d;", migrations[from], from + 1);
		int rc = exec(s, q);
		free(q);
		if (rc < 0)
			return rollback(s);
		*done = 1;
	}
	return commit(s) < 0 ? rollback(s) : 0;
}

static int check_schema(struct sq_state *s, int flags)
{
	int version, app, tables, done;

	if (read_version(s, &version, &app, &tables) < 0)
		return -1;
	if (app == APP_ID && version == VINE_STATE_SCHEMA)
		return 0;
	if (app == APP_ID && version >= 2 && version < VINE_STATE_SCHEMA) {
		if (migrate(s, version, &done) < 0)
			return vine_error_prefix("state '%s': cannot upgrade schema version %d to %d",
						 s->path, version, version + 1);
		/* never silent: programs older than the new version refuse it now */
		if (done)
			vine_notice("state '%s': upgraded schema version %d to %d; programs older "
				    "than this one can no longer open it", s->path, version,
				    version + 1);
		return check_schema(s, 0);
	}
	if (app == APP_ID && version > VINE_STATE_SCHEMA)
		return vine_error("state '%s' has schema version %d, newer than this program's "
				  "version %d: use the vine that made it, or a newer one", s->path,
				  version, VINE_STATE_SCHEMA);
	if (app == APP_ID)
		return vine_error("state '%s' has schema version %d, but this program "
				  "understands version %d only", s->path, version, VINE_STATE_SCHEMA);
	if (tables > 0 || app != 0 || version != 0)
		return vine_error("'%s' is an SQLite database but not a vine state", s->path);
	if (!(flags & VINE_STATE_CREATE)) {
		/* vine-submit may be making it now: it may yet appear */
		vine_state_set_missing();
		return vine_error("state '%s" VINE_STATE_EMPTY_TEXT, s->path);
	}
	if (exec(s, "PRAGMA journal_mode = WAL") < 0 || create_schema(s) < 0)
		return -1;
	return check_schema(s, 0);
}

/*
 * path does not exist: say why in words, or 0 when it may be created.
 * Only vine-submit creates a state, so a mistyped -s must not make an
 * empty one that a worker then waits on forever.
 */
static int missing(const char *path, int flags)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? vine_xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
			  : vine_xstrdup(".");
	struct stat sb;
	int rc = 0;

	if (stat(dir, &sb) < 0 && errno == ENOENT)
		rc = vine_error("cannot open state '%s': directory '%s' does not exist", path, dir);
	else if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
		rc = vine_error("cannot open state '%s': '%s' is not a directory", path, dir);
	else if (!(flags & VINE_STATE_CREATE)) {
		rc = vine_error("state '%s' " VINE_STATE_MISSING_TEXT "; name yours "
				"with -s STATE or $VINE_STATE)", path);
		vine_state_set_missing();
	}
	free(dir);
	return rc;
}

struct vine_state *vine_state_sqlite_open(const char *path, int flags)
{
	struct sq_state *s = vine_xcalloc(1, sizeof(*s));
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	struct stat sb;

	s->base.ops = &sq_ops;
	/*
	 * The URL is what a process hands on to reopen the state (a task's
	 * child opens its own connection after changing directory), so a
	 * relative path is made absolute here; messages keep the name given.
	 */
	if (path[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		s->base.url = cwd ? vine_xasprintf("%s/%s", cwd, path) : vine_xstrdup(path);
		free(cwd);
	} else {
		s->base.url = vine_xstrdup(path);
	}
	s->path = vine_xstrdup(path);
	s->results = vine_xasprintf("%s.results", path);
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT && errno != ENOTDIR) {
			vine_error_errno("cannot open state '%s'", path);
			goto fail;
		}
		if (missing(path, flags) < 0)
			goto fail;
		/* the peer secret lives in it: 0600 whatever the umask (SQLite
		 * gives its -wal and -shm files the same mode) */
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			vine_error_errno("cannot create state '%s'", path);
			goto fail;
		}
		if (fd >= 0 && (fchmod(fd, 0600) < 0 || close(fd) < 0)) {
			vine_error_errno("cannot create state '%s'", path);
			close(fd);
			unlink(path);
			goto fail;
		}
	} else if (!S_ISREG(sb.st_mode)) {
		vine_error("cannot open state '%s': not a regular file", path);
		goto fail;
	}
	if (sqlite3_open_v2(path, &s->db, oflags, NULL) != SQLITE_OK) {
		if (s->db)
			db_error(s, "cannot open");
		else
			vine_error("cannot open state '%s': out of memory", path);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_handler(s->db, busy_wait, s);
	/*
	 * Two programs creating the state at once (a worker and vine-submit
	 * started together): switching to WAL can fail at once with BUSY
	 * instead of waiting.  The other one is creating it: look again.
	 */
	for (int try = 0; check_schema(s, flags) < 0; try++) {
		int rc = sqlite3_errcode(s->db);
		if (try >= 50 || (rc != SQLITE_BUSY && rc != SQLITE_LOCKED))
			goto fail;
		usleep(20000);
	}
	/* checkpoint (and fsync) every ~40 MB of WAL rather than every 4 MB */
	if (exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
		    " PRAGMA wal_autocheckpoint = 10000") < 0)
		goto fail;
	return &s->base;
fail:
	s->base.ops->close(&s->base);
	return NULL;
}

static void sq_close(struct vine_state *st)
{
	struct sq_state *s = SQ(st);

	if (s->db)
		stats_write(s);
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s->results);
	free(s->base.url);
	free(s);
}

/* --- exactly once ------------------------------------------------------- */

/*
 * Inside an operation's transaction: 1 with *answer (free it) when key
 * was answered before, 0 when key is new or NULL, -1 on error.
 */
static int once_seen(struct sq_state *s, const char *key, char **answer)
{
	sqlite3_stmt *q;
	int r;

	*answer = NULL;
	if (!key)
		return 0;
	if (!(q = Q(s, Q_ONCE_GET)))
		return -1;
	bind_str(q, 1, key);
	if ((r = row(s, q)) > 0)
		*answer = col_str(q, 0);
	sqlite3_reset(q);
	return r;
}

/*
 * Record key's answer in the operation's transaction (key NULL: nothing
 * to record), and forget keys older than VINE_ONCE_KEEP.
 */
static int once_keep(struct sq_state *s, const char *key, const char *answer)
{
	double now = vine_now_wall();
	sqlite3_stmt *q;

	if (!key)
		return 0;
	if (!(q = Q(s, Q_ONCE_EXPIRE)))
		return -1;
	sqlite3_bind_double(q, 1, now - VINE_ONCE_KEEP);
	if (run(s, q) < 0 || !(q = Q(s, Q_ONCE_ADD)))
		return -1;
	bind_str(q, 1, key);
	bind_str(q, 2, answer);
	sqlite3_bind_double(q, 3, now);
	return run(s, q);
}

/*
 * once_keep with answer a (JSON, consumed; NULL when key is NULL, as
 * there is nothing to record then).
 */
static int once_keep_json(struct sq_state *s, const char *key, json_t *a)
{
	char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
	int r;

	json_decref(a);
	if (key && !t)
		return vine_error("out of memory");
	r = once_keep(s, key, t);
	free(t);
	return r;
}

struct ids { int64_t *v; size_t n; };

static int get_ids(json_t *a, void *v)
{
	struct ids *ids = v;

	return vj_get_i64s(a, &ids->v, &ids->n);
}

static int get_worker(json_t *a, void *v)
{
	return vj_i64(a, "worker", v);
}

static int get_xfer(json_t *a, void *v)
{
	return vj_decode(&vj_xfer, a, v);
}

/*
 * Begin an operation's transaction and look its key up.  0: key is new or
 * NULL, and the transaction is open.  1: key was answered before, the
 * transaction is over, and get (when not NULL) has decoded the answer
 * into v.  -1 on error, the transaction is over.
 */
static int once_begin(struct sq_state *s, const char *key, int (*get)(json_t *a, void *v),
		      void *v)
{
	char *answer;
	json_t *a;
	int r;

	if (begin(s) < 0)
		return -1;
	if ((r = once_seen(s, key, &answer)) <= 0)
		return r < 0 ? rollback(s) : 0;
	if (commit(s) < 0) {
		free(answer);
		return rollback(s);
	}
	a = get ? json_loads(answer, 0, NULL) : NULL;
	free(answer);
	r = get && (!a || get(a, v) < 0) ? -1 : 1;
	json_decref(a);
	if (r < 0)
		return vine_error("state '%s': a recorded answer is damaged", s->path);
	return 1;
}

/* --- submitting ----------------------------------------------------------- */

/* 1 known with this size, 0 unknown, -1 error (known with another size too). */
static int object_known(struct sq_state *s, const char *id, int64_t size, int check_size)
{
	sqlite3_stmt *q = Q(s, Q_OBJ_SIZE);
	int r;

	if (!q)
		return -1;
	bind_str(q, 1, id);
	if ((r = row(s, q)) <= 0)
		return r;
	if (check_size && sqlite3_column_int64(q, 0) != size)
		return vine_error("object %s is registered with size %lld, not %lld", id,
				  (long long)sqlite3_column_int64(q, 0), (long long)size);
	return 1;
}

/* A submit whose key was answered before: the same ids again. */
static int submit_again(struct sq_state *s, struct ids *got, size_t n, int64_t *ids)
{
	size_t ngot = got->n;

	if (ngot == n)
		memcpy(ids, got->v, n * sizeof(*ids));
	free(got->v);
	if (ngot != n)
		return vine_error("state '%s': request key used for %zu tasks before, now for %zu",
				  s->path, ngot, n);
	return 0;
}

/*
 * The digest of a named submission's task list: every field of every spec
 * and the object, each length-prefixed, so that no two lists share one.
 */
static void submission_digest(const struct vine_object *obj, const struct vine_task_spec *specs,
			      size_t n, char hex[VINE_ID_LEN + 1])
{
	struct vine_sha256 h;
	char num[128];

	vine_sha256_init(&h);
	for (size_t i = 0; i <= n; i++) {
		const char *strs[4];
		size_t ns = 0;
		if (i == n) {
			strs[ns++] = obj ? obj->id : "";
		} else {
			const struct vine_task_spec *t = &specs[i];
			strs[ns++] = t->cmd;
			strs[ns++] = t->object ? t->object : "";
			strs[ns++] = t->tag ? t->tag : "";
			strs[ns++] = t->cwd ? t->cwd : "";
			int len = snprintf(num, sizeof(num), "%d %d %.17g %lld %d", t->cores, t->retries,
					   t->timeout, (long long)t->memory, t->gpus);
			vine_sha256_update(&h, num, (size_t)len + 1);
		}
		for (size_t k = 0; k < ns; k++) {
			int len = snprintf(num, sizeof(num), "%zu:", strlen(strs[k]));
			vine_sha256_update(&h, num, (size_t)len);
			vine_sha256_update(&h, strs[k], strlen(strs[k]));
		}
	}
	vine_sha256_final(&h, hex);
}

/*
 * Inside the submit's transaction: 1 when name was submitted before (ids
 * filled with the ids given then, or an error when the list differs), 0
 * when it is new, -1 on error.
 */
static int submission_seen(struct sq_state *s, const char *name, const char *digest, size_t n,
			   int64_t *ids)
{
	sqlite3_stmt *q = Q(s, Q_SUB_GET);
	struct ids got = { NULL, 0 };
	json_t *a;
	int r;

	if (!q)
		return -1;
	bind_str(q, 1, name);
	if ((r = row(s, q)) <= 0)
		return r;
	if (strcmp((const char *)sqlite3_column_text(q, 0), digest)) {
		sqlite3_reset(q);
		return vine_error("submission '%s' was made before with a different task list; "
				  "nothing added (choose another name)", name);
	}
	a = json_loads((const char *)sqlite3_column_text(q, 1), 0, NULL);
	sqlite3_reset(q);
	r = a ? vj_get_i64s(a, &got.v, &got.n) : -1;
	json_decref(a);
	if (r < 0)
		return vine_error("state '%s': submission '%s' is damaged", s->path, name);
	return submit_again(s, &got, n, ids) < 0 ? -1 : 1;
}

static int submission_keep(struct sq_state *s, const char *name, const char *digest,
			   const int64_t *ids, size_t n)
{
	sqlite3_stmt *q = Q(s, Q_SUB_ADD);
	json_t *a = vj_i64s(ids, n);
	char *t = json_dumps(a, JSON_COMPACT);
	int r;

	json_decref(a);
	if (!q || !t) {
		free(t);
		return q ? vine_error("out of memory") : -1;
	}
	bind_str(q, 1, name);
	bind_str(q, 2, digest);
	bind_str(q, 3, t);
	sqlite3_bind_double(q, 4, vine_now_wall());
	r = run(s, q);
	free(t);
	return r;
}

static int sq_submit(struct vine_state *st, const char *key, const char *name,
		     const struct vine_object *obj, const struct vine_task_spec *specs, size_t n,
		     int64_t *ids)
{
	struct sq_state *s = SQ(st);
	double now = vine_now_wall();
	const char *known = NULL;
	char digest[VINE_ID_LEN + 1];
	struct ids got;
	sqlite3_stmt *q;
	int r;

	if ((r = once_begin(s, key, get_ids, &got)) != 0)
		return r < 0 ? -1 : submit_again(s, &got, n, ids);
	if (name) {
		submission_digest(obj, specs, n, digest);
		if ((r = submission_seen(s, name, digest, n, ids)) != 0) {
			if (r < 0)
				return rollback(s);
			if (once_keep_json(s, key, key ? vj_i64s(ids, n) : NULL) < 0 || commit(s) < 0)
				return rollback(s);
			return 0;
		}
	}
	if (obj) {
		if ((r = object_known(s, obj->id, obj->size, 1)) < 0)
			return rollback(s);
		if (r == 0) {
			if (!(q = Q(s, Q_OBJ_ADD)))
				return rollback(s);
			bind_str(q, 1, obj->id);
			sqlite3_bind_int64(q, 2, obj->size);
			bind_str(q, 3, obj->origin);
			sqlite3_bind_double(q, 4, now);
			if (run(s, q) < 0)
				return rollback(s);
		}
		known = obj->id;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vine_task_spec *t = &specs[i];
		if (t->object && !(known && !strcmp(known, t->object))) {
			if ((r = object_known(s, t->object, 0, 0)) < 0)
				return rollback(s);
			if (r == 0) {
				vine_error("task %zu: unknown object %s", i + 1, t->object);
				return rollback(s);
			}
			known = t->object;
		}
		if (!(q = Q(s, Q_TASK_ADD)))
			return rollback(s);
		bind_str(q, 1, t->cmd);
		bind_str(q, 2, t->object);
		sqlite3_bind_int(q, 3, t->cores);
		sqlite3_bind_int(q, 4, t->retries);
		sqlite3_bind_double(q, 5, t->timeout);
		bind_str(q, 6, t->tag);
		sqlite3_bind_double(q, 7, now);
		bind_str(q, 8, t->cwd);
		sqlite3_bind_int64(q, 9, t->memory);
		sqlite3_bind_int(q, 10, t->gpus);
		bind_str(q, 11, name);
		if (run(s, q) < 0)
			return rollback(s);
		ids[i] = sqlite3_last_insert_rowid(s->db);
	}
	if (name && submission_keep(s, name, digest, ids, n) < 0)
		return rollback(s);
	if (once_keep_json(s, key, key ? vj_i64s(ids, n) : NULL) < 0 || commit(s) < 0)
		return rollback(s);
	return 0;
}

static int sq_requeue_failed(struct vine_state *st, const char *key, int retries,
			     int64_t **ids, size_t *n)
{
	struct sq_state *s = SQ(st);
	int64_t *v = NULL;
	size_t len = 0;
	struct ids got = { NULL, 0 };
	sqlite3_stmt *q;
	int r;

	*ids = NULL;
	*n = 0;
	if ((r = once_begin(s, key, get_ids, &got)) != 0) {
		if (r < 0)
			return -1;
		*ids = got.v;
		*n = got.n;
		return 0;
	}
	if (!(q = Q(s, Q_REQUEUE_IDS)))
		return rollback(s);
	if (rows_i64(s, q, &v, &len) < 0 || !(q = Q(s, Q_REQUEUE)))
		goto fail;
	sqlite3_bind_int(q, 1, retries);
	if (run(s, q) < 0)
		goto fail;
	if (once_keep_json(s, key, key ? vj_i64s(v, len) : NULL) < 0 || commit(s) < 0)
		goto fail;
	*ids = v;
	*n = len;
	return 0;
fail:
	free(v);
	return rollback(s);
}

/* Cancel one task (known to be ready or running), ending a running attempt. */
static int cancel_one(struct sq_state *s, int64_t id, double now)
{
	sqlite3_stmt *q = Q(s, Q_CANCEL_ATTEMPT);

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_double(q, 2, now);
	if (run(s, q) < 0 || !(q = Q(s, Q_CANCEL_TASK)))
		return -1;
	sqlite3_bind_int64(q, 1, id);
	return run(s, q);
}

static int sq_cancel(struct vine_state *st, const struct vine_cancel *sel, int64_t **ids,
		     size_t *n)
{
	struct sq_state *s = SQ(st);
	double now = vine_now_wall();
	int64_t *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q;
	int r = 0;

	if (begin(s) < 0)
		return -1;
	if (sel->all) {
		if (!(q = Q(s, Q_CANCEL_IDS_ALL)) || rows_i64(s, q, &v, &len) < 0)
			goto fail;
	} else if (sel->submission) {
		if (!(q = Q(s, Q_SUB_EXISTS)))
			goto fail;
		bind_str(q, 1, sel->submission);
		if ((r = row(s, q)) <= 0) {
			if (r == 0)
				vine_error("no submission '%s' in state '%s'", sel->submission, s->path);
			goto fail;
		}
		if (!(q = Q(s, Q_CANCEL_IDS_SUB)))
			goto fail;
		bind_str(q, 1, sel->submission);
		if (rows_i64(s, q, &v, &len) < 0)
			goto fail;
	} else {
		for (size_t i = 0; i < sel->nids; i++) {
			if (!(q = Q(s, Q_CANCEL_ONE)))
				goto fail;
			sqlite3_bind_int64(q, 1, sel->ids[i]);
			if ((r = row(s, q)) < 0)
				goto fail;
			if (r == 0) {
				vine_error("no task %lld in state '%s'", (long long)sel->ids[i], s->path);
				goto fail;
			}
			int live = sqlite3_column_int(q, 0);
			sqlite3_reset(q);
			int dup = 0;
			for (size_t k = 0; k < len; k++)
				dup |= v[k] == sel->ids[i];
			if (live && !dup) {
				v = grow(v, len, sizeof(*v));
				v[len++] = sel->ids[i];
			}
		}
	}
	for (size_t i = 0; i < len; i++)
		if (cancel_one(s, v[i], now) < 0)
			goto fail;
	if (commit(s) < 0)
		goto fail;
	*ids = v;
	*n = len;
	return 0;
fail:
	free(v);
	return rollback(s);
}

static int sq_list_objects(struct vine_state *st, struct vine_object **objs, size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_object *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q;
	int r;

	*objs = NULL;
	*n = 0;
	if (begin_read(s) < 0 || !(q = Q(s, Q_OBJ_LIST)))
		return rollback(s);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		struct vine_object *o = &v[len++];
		snprintf(o->id, sizeof(o->id), "%s", (const char *)sqlite3_column_text(q, 0));
		o->size = sqlite3_column_int64(q, 1);
		o->origin = col_str(q, 2);
		o->served_origin = sqlite3_column_int64(q, 3);
		o->served_peer = sqlite3_column_int64(q, 4);
		o->bytes_origin = sqlite3_column_int64(q, 5);
		o->bytes_peer = sqlite3_column_int64(q, 6);
		o->xfer_active = sqlite3_column_int64(q, 7);
		o->xfer_failed = sqlite3_column_int64(q, 8);
	}
	for (size_t i = 0; r == 0 && i < len; i++) {
		if (!(q = Q(s, Q_REPL_LIST))) {
			r = -1;
			break;
		}
		bind_str(q, 1, v[i].id);
		while ((r = row(s, q)) > 0) {
			struct vine_object *o = &v[i];
			o->replicas = grow(o->replicas, o->nreplicas, sizeof(*o->replicas));
			o->replicas[o->nreplicas].node = col_str(q, 0);
			o->replicas[o->nreplicas].bytes = sqlite3_column_int64(q, 1);
			o->replicas[o->nreplicas].complete = sqlite3_column_int(q, 2);
			o->nreplicas++;
		}
		if (r < 0 || !(q = Q(s, Q_BACKOFF_LIST))) {
			r = -1;
			break;
		}
		bind_str(q, 1, v[i].id);
		while ((r = row(s, q)) > 0) {
			struct vine_object *o = &v[i];
			struct vine_backoff *b;
			o->backoffs = grow(o->backoffs, o->nbackoffs, sizeof(*o->backoffs));
			b = &o->backoffs[o->nbackoffs++];
			b->node = col_str(q, 0);
			b->faults = sqlite3_column_int(q, 1);
			b->until = sqlite3_column_double(q, 2);
			b->reason = col_str(q, 3);
		}
	}
	if (r < 0 || commit(s) < 0) {
		vine_state_free_objects(v, len);
		return rollback(s);
	}
	*objs = v;
	*n = len;
	return 0;
}

/* --- workers -------------------------------------------------------------- */

static int sq_register_worker(struct vine_state *st, const char *key,
			      const struct vine_worker_info *w, int64_t *worker)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q;
	int r;

	/* registered by this very request before: the same worker */
	if ((r = once_begin(s, key, get_worker, worker)) != 0)
		return r < 0 ? -1 : 0;
	if (!(q = Q(s, Q_WORKER_ADD)))
		return rollback(s);
	bind_str(q, 1, w->node);
	bind_str(q, 2, w->host ? w->host : "");
	sqlite3_bind_int64(q, 3, w->pid);
	sqlite3_bind_int(q, 4, w->cores);
	bind_str(q, 5, w->listen);
	sqlite3_bind_double(q, 6, w->lease);
	sqlite3_bind_double(q, 7, vine_now_wall());
	sqlite3_bind_int64(q, 8, w->memory);
	sqlite3_bind_int(q, 9, w->gpus);
	if (run(s, q) < 0)
		return rollback(s);
	*worker = sqlite3_last_insert_rowid(s->db);
	if (once_keep_json(s, key, key ? json_pack("{sI}", "worker", (json_int_t)*worker) : NULL) < 0 ||
	    commit(s) < 0)
		return rollback(s);
	return 0;
}

/* Renew a worker's lease; an unknown or departed worker is an error. */
static int renew(struct sq_state *s, int64_t worker)
{
	sqlite3_stmt *q = Q(s, Q_PEER_BACK);

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, worker);
	sqlite3_bind_double(q, 2, vine_now_wall());
	if (run(s, q) < 0 || !(q = Q(s, Q_WORKER_RENEW)))
		return -1;
	sqlite3_bind_int64(q, 1, worker);
	sqlite3_bind_double(q, 2, vine_now_wall());
	if (run(s, q) < 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return vine_error("worker %lld is not registered or has left", (long long)worker);
	return 0;
}

/* 1 when (task, attempt) is the current attempt held by worker, else 0. */
static int current(struct sq_state *s, int64_t worker, int64_t task, int attempt)
{
	sqlite3_stmt *q = Q(s, Q_CURRENT);

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, task);
	sqlite3_bind_int(q, 2, attempt);
	sqlite3_bind_int64(q, 3, worker);
	return row(s, q);
}

static int sq_heartbeat(struct vine_state *st, int64_t worker,
			const struct vine_attempt_ref *running, size_t n, int *stale)
{
	struct sq_state *s = SQ(st);

	if (begin(s) < 0 || renew(s, worker) < 0)
		return rollback(s);
	for (size_t i = 0; i < n; i++) {
		int r = current(s, worker, running[i].task, running[i].attempt);
		if (r < 0)
			return rollback(s);
		stale[i] = !r;
	}
	return commit(s) < 0 ? rollback(s) : 0;
}

/*
 * End the current attempt of a running task and move the task on by the
 * retry rule.  r->started/ended/message may be zero/NULL.
 */
/*
 * A task handed back as FAULT (vine(7), FAULTS): its node backs off from
 * the task's object, and the task fails once VINE_FAULT_NODES distinct
 * nodes have handed it back.
 */
static int fault(struct sq_state *s, const struct vine_result *r, enum vine_task_state *next)
{
	sqlite3_stmt *q = Q(s, Q_FAULT_INFO);
	char *node, *object;
	int faults, again, k, rc = -1;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, r->task);
	sqlite3_bind_int(q, 2, r->attempt);
	if ((k = row(s, q)) <= 0)
		return k < 0 ? -1 : vine_error("task %lld has no attempt %d", (long long)r->task,
					       r->attempt);
	node = col_str(q, 0);
	object = col_str(q, 1);
	faults = sqlite3_column_int(q, 2);
	again = sqlite3_column_int(q, 3);
	sqlite3_reset(q);
	if (!again)
		faults++;
	*next = faults >= VINE_FAULT_NODES ? VINE_TASK_FAILED : VINE_TASK_READY;
	if (!(q = Q(s, Q_TASK_FAULTS)))
		goto out;
	sqlite3_bind_int64(q, 1, r->task);
	sqlite3_bind_int(q, 2, faults);
	if (run(s, q) < 0)
		goto out;
	if (object) {
		if (!(q = Q(s, Q_BACKOFF_SET)))
			goto out;
		bind_str(q, 1, node);
		bind_str(q, 2, object);
		sqlite3_bind_double(q, 3, vine_now_wall());
		sqlite3_bind_double(q, 4, VINE_FAULT_BACKOFF);
		bind_str(q, 5, r->message ? r->message : "(no reason given)");
		sqlite3_bind_double(q, 6, VINE_FAULT_BACKOFF_MAX);
		if (run(s, q) < 0)
			goto out;
	}
	rc = 0;
out:
	free(node);
	free(object);
	return rc;
}

static int end_task(struct sq_state *s, const struct vine_result *r)
{
	sqlite3_stmt *q = Q(s, Q_TASK_COUNTERS);
	int retries, failures, losses, k;
	enum vine_task_state next;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, r->task);
	if ((k = row(s, q)) < 0)
		return -1;
	if (k == 0)
		return vine_error("task %lld does not exist", (long long)r->task);
	retries = sqlite3_column_int(q, 0);
	failures = sqlite3_column_int(q, 1);
	losses = sqlite3_column_int(q, 2);
	next = vine_state_next(r->outcome, r->exit_code, retries, &failures, &losses);
	if (r->outcome == VINE_OUT_FAULT && fault(s, r, &next) < 0)
		return -1;

	if (!(q = Q(s, Q_ATTEMPT_END)))
		return -1;
	sqlite3_bind_int64(q, 1, r->task);
	sqlite3_bind_int(q, 2, r->attempt);
	bind_str(q, 3, vine_outcome_name(r->outcome));
	if (r->outcome == VINE_OUT_EXITED || (r->outcome == VINE_OUT_TIMEOUT && !r->signal))
		sqlite3_bind_int(q, 4, r->exit_code);
	if (r->signal)
		sqlite3_bind_int(q, 5, r->signal);
	if (r->started > 0)
		sqlite3_bind_double(q, 6, r->started);
	if (r->ended > 0)
		sqlite3_bind_double(q, 7, r->ended);
	bind_str(q, 8, r->message);
	if (run(s, q) < 0 || !(q = Q(s, Q_TASK_END)))
		return -1;
	sqlite3_bind_int64(q, 1, r->task);
	bind_str(q, 2, vine_task_state_name(next));
	sqlite3_bind_int(q, 3, failures);
	sqlite3_bind_int(q, 4, losses);
	return run(s, q);
}

/* End every attempt worker holds with outcome o (LOST or RELEASED). */
static int end_held(struct sq_state *s, int64_t worker, enum vine_outcome o, int *count)
{
	struct vine_attempt_ref *held = NULL;
	size_t len = 0;
	sqlite3_stmt *q = Q(s, Q_HELD);
	int r = -1;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, worker);
	while ((r = row(s, q)) > 0) {
		held = grow(held, len, sizeof(*held));
		held[len].task = sqlite3_column_int64(q, 0);
		held[len++].attempt = sqlite3_column_int(q, 1);
	}
	for (size_t i = 0; r == 0 && i < len; i++) {
		struct vine_result res = { .task = held[i].task, .attempt = held[i].attempt,
					   .outcome = o };
		if (o == VINE_OUT_LOST)
			res.message = "worker lost: lease expired";
		r = end_task(s, &res);
	}
	free(held);
	if (r == 0 && count)
		*count += (int)len;
	return r;
}

static int node_lost(struct sq_state *s, int64_t worker);

static int reap_locked(struct sq_state *s, int *reaped)
{
	sqlite3_stmt *q = Q(s, Q_WORKER_EXPIRED);
	int64_t *w = NULL;
	size_t len = 0;
	int r;

	if (!q)
		return -1;
	sqlite3_bind_double(q, 1, vine_now_wall());
	r = rows_i64(s, q, &w, &len);
	for (size_t i = 0; r == 0 && i < len; i++) {
		if (!(q = Q(s, Q_WORKER_STATE))) {
			r = -1;
			break;
		}
		sqlite3_bind_int64(q, 1, w[i]);
		bind_str(q, 2, "lost");
		if ((r = run(s, q)) == 0)
			r = end_held(s, w[i], VINE_OUT_LOST, reaped);
		if (r == 0)
			r = node_lost(s, w[i]);
	}
	free(w);
	return r;
}

static int sq_reap(struct vine_state *st, int *reaped)
{
	struct sq_state *s = SQ(st);
	int count = 0;

	if (begin(s) < 0 || reap_locked(s, &count) < 0 || commit(s) < 0)
		return rollback(s);
	if (reaped)
		*reaped = count;
	return 0;
}

/*
 * Renew the lease of a claiming worker when less than half of it is left,
 * so a busy worker's claims do not rewrite its row every time.
 */
static int renew_if_due(struct sq_state *s, int64_t worker, double now)
{
	sqlite3_stmt *q = Q(s, Q_WORKER_GET);
	int r;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, worker);
	if ((r = row(s, q)) < 0)
		return -1;
	if (r == 0 || !strcmp((const char *)sqlite3_column_text(q, 0), "gone"))
		return vine_error("worker %lld is not registered or has left", (long long)worker);
	if (!strcmp((const char *)sqlite3_column_text(q, 0), "alive") &&
	    sqlite3_column_double(q, 1) - now > sqlite3_column_double(q, 2) / 2)
		return 0;
	return renew(s, worker);
}

static int claim_locked(struct sq_state *s, int64_t worker, const struct vine_resources *free,
			const struct vine_resources *total, size_t max, struct vine_claim **claims,
			size_t *n, int *more)
{
	struct vine_claim *v = NULL;
	size_t len = 0;
	double now = vine_now_wall();
	sqlite3_stmt *q;
	int r = 0, left = free->cores, gpus_left = free->gpus;
	int64_t mem_left = free->memory;

	if (renew_if_due(s, worker, now) < 0 || reap_locked(s, NULL) < 0)
		return -1;
	if (max > 0 && free->cores > 0) {
		if (!(q = Q(s, Q_READY)))
			return -1;
		v = vine_xcalloc(max, sizeof(*v));
		sqlite3_bind_int(q, 1, free->cores);
		sqlite3_bind_int64(q, 5, worker);
		sqlite3_bind_double(q, 6, now);
		/* look a little past max so that tasks too big to fit now are passed over */
		sqlite3_bind_int64(q, 2, (sqlite3_int64)(max < 1024 ? max * 4 + 16 : max));
		sqlite3_bind_int64(q, 3, free->memory);
		sqlite3_bind_int(q, 4, free->gpus);
		while (len < max && left > 0 && (r = row(s, q)) > 0) {
			int cores = sqlite3_column_int(q, 2), gpus = sqlite3_column_int(q, 10);
			int64_t mem = sqlite3_column_int64(q, 9);
			if (cores > left || mem > mem_left || gpus > gpus_left)
				continue;
			struct vine_claim *c = &v[len++];
			c->task = sqlite3_column_int64(q, 0);
			c->cmd = col_str(q, 1);
			c->cores = cores;
			c->timeout = sqlite3_column_double(q, 3);
			c->object = col_str(q, 4);
			c->origin = col_str(q, 5);
			c->size = sqlite3_column_int64(q, 6);
			c->attempt = sqlite3_column_int(q, 7) + 1;
			c->cwd = col_str(q, 8);
			c->memory = mem;
			c->gpus = gpus;
			left -= cores;
			mem_left -= mem;
			gpus_left -= gpus;
		}
		sqlite3_reset(q);
	}
	for (size_t i = 0; r >= 0 && i < len; i++) {
		if (!(q = Q(s, Q_TAKE))) {
			r = -1;
			break;
		}
		sqlite3_bind_int64(q, 1, v[i].task);
		sqlite3_bind_int64(q, 2, worker);
		if ((r = run(s, q)) < 0 || !(q = Q(s, Q_ATTEMPT_ADD))) {
			r = -1;
			break;
		}
		sqlite3_bind_int64(q, 1, v[i].task);
		sqlite3_bind_int(q, 2, v[i].attempt);
		sqlite3_bind_int64(q, 3, worker);
		sqlite3_bind_double(q, 4, now);
		r = run(s, q);
	}
	if (r >= 0 && more) {
		if (!(q = Q(s, Q_MORE)))
			r = -1;
		else {
			sqlite3_bind_int(q, 1, total->cores);
			sqlite3_bind_int64(q, 2, total->memory);
			sqlite3_bind_int(q, 3, total->gpus);
			if ((r = row(s, q)) > 0)
				*more = sqlite3_column_int(q, 0);
		}
	}
	if (r < 0 || len == 0) {
		vine_state_free_claims(v, len);
		return r < 0 ? -1 : 0;
	}
	*claims = v;
	*n = len;
	return 0;
}

static int sq_finish_claim(struct vine_state *st, int64_t worker,
			   const struct vine_result *results, size_t nresults, int *accepted,
			   const struct vine_resources *free, const struct vine_resources *total,
			   size_t max, struct vine_claim **claims, size_t *n, int *more)
{
	struct sq_state *s = SQ(st);

	*claims = NULL;
	*n = 0;
	if (more)
		*more = 0;
	if (begin(s) < 0)
		return -1;
	for (size_t i = 0; i < nresults; i++) {
		int r = current(s, worker, results[i].task, results[i].attempt);
		if (r < 0 || (r > 0 && end_task(s, &results[i]) < 0))
			return rollback(s);
		accepted[i] = r;
	}
	if ((max > 0 || more) &&
	    claim_locked(s, worker, free, total, max, claims, n, more) < 0)
		return rollback(s);
	if (commit(s) < 0) {
		vine_state_free_claims(*claims, *n);
		*claims = NULL;
		*n = 0;
		return rollback(s);
	}
	return 0;
}

static int sq_unregister_worker(struct vine_state *st, int64_t worker)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q;

	if (begin(s) < 0 || end_held(s, worker, VINE_OUT_RELEASED, NULL) < 0 ||
	    !(q = Q(s, Q_WORKER_STATE)))
		return rollback(s);
	sqlite3_bind_int64(q, 1, worker);
	bind_str(q, 2, "gone");
	if (run(s, q) < 0)
		return rollback(s);
	return commit(s) < 0 ? rollback(s) : 0;
}

/* --- result files --------------------------------------------------------- */

/*
 * Copy len bytes (len < 0: to end of file) from in to out, by
 * copy_file_range where the kernel can, else through a buffer.
 */
static int copy_fd(int in, int out, int64_t len, int64_t *copied)
{
	int64_t done = 0;
	int kernel = 1;
	char *buf = NULL;
	int rc = 0;

	while (len < 0 || done < len) {
		size_t want = len < 0 || len - done > (1 << 30) ? (1 << 30) : (size_t)(len - done);
		ssize_t k = -1;
		if (kernel) {
			k = copy_file_range(in, NULL, out, NULL, want, 0);
			if (k < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP || errno == EBADF)) {
				kernel = 0;
				continue;
			}
			if (k < 0 && errno == EINTR)
				continue;
		} else {
			if (!buf)
				buf = vine_xmalloc(1 << 20);
			k = read(in, buf, want < (1 << 20) ? want : (1 << 20));
			if (k < 0 && errno == EINTR)
				continue;
			if (k > 0 && vine_write_full(out, buf, (size_t)k) < 0) {
				rc = vine_error_errno("write error");
				break;
			}
		}
		if (k < 0) {
			rc = vine_error_errno("copy error");
			break;
		}
		if (k == 0)
			break;
		done += k;
	}
	free(buf);
	*copied = done;
	return rc;
}

static char *result_path(struct sq_state *s, int64_t task, int attempt, const char *name)
{
	return vine_xasprintf("%s/%lld/%d/%s", s->results, (long long)task, attempt, name);
}

static int sq_put_file(struct vine_state *st, int64_t worker, int64_t task, int attempt,
		       const char *name, int fd, int64_t size)
{
	struct sq_state *s = SQ(st);
	char *path = result_path(s, task, attempt, name), *dir, *tmp = NULL;
	int64_t copied = 0;
	int out = -1, r, rc = -1;
	sqlite3_stmt *q;

	/* cheap early refusal, so a stale worker does not copy gigabytes */
	if ((r = current(s, worker, task, attempt)) <= 0) {
		sqlite3_reset(s->stmt[Q_CURRENT]);
		free(path);
		return r < 0 ? -1 : 1;
	}
	sqlite3_reset(s->stmt[Q_CURRENT]);
	dir = vine_xstrndup(path, (size_t)(strrchr(path, '/') - path));
	/* results are the user's private data, as the state is: 0700 / 0600 */
	if (vine_mkdir_p(dir, 0700) < 0)
		goto out;
	tmp = vine_xasprintf("%s/.put.XXXXXX", dir);
	if ((out = vine_mkstemp(tmp, 0600)) < 0) {
		vine_error_errno("cannot create a file in '%s'", dir);
		goto out;
	}
	if (copy_fd(fd, out, size, &copied) < 0) {
		vine_error_prefix("cannot store '%s'", path);
		goto out;
	}
	if (copied != size) {
		vine_error("cannot store '%s': got %lld of %lld bytes", path, (long long)copied,
			   (long long)size);
		goto out;
	}
	if (close(out) < 0) {
		out = -1;
		vine_error_errno("cannot write '%s'", tmp);
		goto out;
	}
	out = -1;
	if (begin(s) < 0)
		goto out;
	if ((r = current(s, worker, task, attempt)) <= 0) {
		rollback(s);
		rc = r < 0 ? -1 : 1;
		goto out;
	}
	if (!(q = Q(s, Q_FILE_ADD))) {
		rollback(s);
		goto out;
	}
	sqlite3_bind_int64(q, 1, task);
	sqlite3_bind_int(q, 2, attempt);
	bind_str(q, 3, name);
	sqlite3_bind_int64(q, 4, size);
	if (run(s, q) < 0) {
		rollback(s);
		goto out;
	}
	if (vine_publish(tmp, path, 0) < 0) {
		rollback(s);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	rc = commit(s) < 0 ? rollback(s) : 0;
out:
	if (out >= 0)
		close(out);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(dir);
	free(path);
	return rc;
}

/*
 * Results delivered: each task's files rows go and it is marked, in one
 * transaction; then its attempts' directories of result files are
 * removed (attempts up to the count it had then: a task sent back with
 * --failed since may be storing a new one).
 */
static int sq_deliver(struct vine_state *st, const int64_t *ids, size_t n, size_t *done)
{
	struct sq_state *s = SQ(st);
	double now = vine_now_wall();
	int *attempts = vine_xcalloc(n, sizeof(*attempts));
	sqlite3_stmt *q;
	size_t marked = 0;
	int r;

	if (begin(s) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (!(q = Q(s, Q_DELIVER_GET)))
			goto fail;
		sqlite3_bind_int64(q, 1, ids[i]);
		if ((r = row(s, q)) <= 0) {
			if (r == 0)
				vine_error("deliver: no task %lld in state '%s'", (long long)ids[i],
					   s->path);
			goto fail;
		}
		int ts = vine_task_state_parse((const char *)sqlite3_column_text(q, 0));
		int already = sqlite3_column_int(q, 1);
		attempts[i] = sqlite3_column_int(q, 2);
		sqlite3_reset(q);
		if (ts != VINE_TASK_DONE && ts != VINE_TASK_FAILED && ts != VINE_TASK_CANCELLED) {
			vine_error("deliver: task %lld is %s, not finished", (long long)ids[i],
				   vine_task_state_name(ts) ? vine_task_state_name(ts) : "unknown");
			goto fail;
		}
		if (already)
			continue;
		if (!(q = Q(s, Q_DELIVER_FILES)))
			goto fail;
		sqlite3_bind_int64(q, 1, ids[i]);
		if (run(s, q) < 0 || !(q = Q(s, Q_DELIVER_SET)))
			goto fail;
		sqlite3_bind_int64(q, 1, ids[i]);
		sqlite3_bind_double(q, 2, now);
		if (run(s, q) < 0)
			goto fail;
		marked++;
	}
	if (commit(s) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		for (int a = 1; a <= attempts[i]; a++) {
			char *p = vine_xasprintf("%s/%lld/%d", s->results, (long long)ids[i], a);
			vine_rm_rf(p);
			free(p);
		}
		char *p = vine_xasprintf("%s/%lld", s->results, (long long)ids[i]);
		rmdir(p);
		free(p);
	}
	free(attempts);
	*done = marked;
	return 0;
fail:
	free(attempts);
	return rollback(s);
}

static int sq_get_file(struct vine_state *st, int64_t task, int attempt, const char *name, int fd)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q = Q(s, Q_FILE_GET);
	char *path;
	int64_t size, copied = 0;
	int in, r;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, task);
	sqlite3_bind_int(q, 2, attempt);
	bind_str(q, 3, name);
	if ((r = row(s, q)) <= 0) {
		sqlite3_reset(q);
		return r < 0 ? -1 : vine_error("task %lld attempt %d has no result file '%s'",
					       (long long)task, attempt, name);
	}
	size = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	path = result_path(s, task, attempt, name);
	if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		vine_error_errno("cannot open '%s'", path);
		free(path);
		return -1;
	}
	r = copy_fd(in, fd, size, &copied);
	if (r == 0 && copied != size)
		r = vine_error("'%s' is %lld bytes, expected %lld", path, (long long)copied,
			       (long long)size);
	else if (r < 0)
		vine_error_prefix("cannot copy '%s'", path);
	close(in);
	free(path);
	return r;
}

static int sq_list_files(struct vine_state *st, int64_t task, int attempt,
			 struct vine_file **files, size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_file *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q = Q(s, Q_FILE_LIST);
	int r;

	*files = NULL;
	*n = 0;
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, task);
	sqlite3_bind_int(q, 2, attempt);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		v[len].name = col_str(q, 0);
		v[len].size = sqlite3_column_int64(q, 1);
		len++;
	}
	sqlite3_reset(q);
	if (r < 0) {
		vine_state_free_files(v, len);
		return -1;
	}
	*files = v;
	*n = len;
	return 0;
}

/* --- looking -------------------------------------------------------------- */

static int sq_counts(struct vine_state *st, struct vine_counts *c)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q;
	int r;

	if (begin_read(s) < 0 || !(q = Q(s, Q_COUNTS)))
		return rollback(s);
	while ((r = row(s, q)) > 0) {
		int k = vine_task_state_parse((const char *)sqlite3_column_text(q, 0));
		if (k >= 0)
			c->n[k] = sqlite3_column_int64(q, 1);
		c->total += sqlite3_column_int64(q, 1);
	}
	if (r < 0 || !(q = Q(s, Q_ALIVE)) || row(s, q) <= 0)
		return rollback(s);
	c->workers_alive = sqlite3_column_int64(q, 0);
	if (!(q = Q(s, Q_SLOTS)) || row(s, q) <= 0)
		return rollback(s);
	c->worker_slots = sqlite3_column_int64(q, 0);
	if (!(q = Q(s, Q_UNFIT)) || row(s, q) <= 0)
		return rollback(s);
	c->unfit = sqlite3_column_int64(q, 0);
	c->unfit_task = sqlite3_column_int64(q, 1);
	return commit(s) < 0 ? rollback(s) : 0;
}

static int sq_list_workers(struct vine_state *st, struct vine_worker **workers, size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_worker *v = NULL;
	size_t len = 0, j = 0;
	sqlite3_stmt *q;
	int r;

	*workers = NULL;
	*n = 0;
	if (begin_read(s) < 0 || !(q = Q(s, Q_WORKER_LIST)))
		return rollback(s);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		struct vine_worker *w = &v[len++];
		w->id = sqlite3_column_int64(q, 0);
		w->node = col_str(q, 1);
		w->host = col_str(q, 2);
		w->pid = (pid_t)sqlite3_column_int64(q, 3);
		w->cores = sqlite3_column_int(q, 4);
		w->listen = col_str(q, 5);
		w->state = col_str(q, 6);
		w->started = sqlite3_column_double(q, 7);
		w->heartbeat = sqlite3_column_double(q, 8);
		w->expires = sqlite3_column_double(q, 9);
		w->memory = sqlite3_column_int64(q, 10);
		w->gpus = sqlite3_column_int(q, 11);
	}
	/* both lists are in worker id order: merge */
	if (r == 0 && (q = Q(s, Q_RUNNING_LIST))) {
		while ((r = row(s, q)) > 0) {
			int64_t wid = sqlite3_column_int64(q, 0);
			while (j < len && v[j].id < wid)
				j++;
			if (j == len || v[j].id != wid)
				continue;
			v[j].running = grow(v[j].running, v[j].nrunning, sizeof(int64_t));
			v[j].running[v[j].nrunning++] = sqlite3_column_int64(q, 1);
		}
	} else if (r == 0) {
		r = -1;
	}
	if (r < 0 || commit(s) < 0) {
		vine_state_free_workers(v, len);
		return rollback(s);
	}
	*workers = v;
	*n = len;
	return 0;
}

/* Read an attempt from columns k.. of q (as in Q_TASK_LIST / Q_ATTEMPT_LIST). */
static void read_attempt(sqlite3_stmt *q, int k, struct vine_attempt *a)
{
	memset(a, 0, sizeof(*a));
	if (sqlite3_column_type(q, k) == SQLITE_NULL)
		return;
	a->task = sqlite3_column_int64(q, k);
	a->attempt = sqlite3_column_int(q, k + 1);
	a->worker = sqlite3_column_int64(q, k + 2);
	a->node = col_str(q, k + 3);
	a->claimed = sqlite3_column_double(q, k + 4);
	a->started = sqlite3_column_double(q, k + 5);
	a->ended = sqlite3_column_double(q, k + 6);
	a->outcome = vine_outcome_parse((const char *)sqlite3_column_text(q, k + 7));
	a->exit_code = sqlite3_column_int(q, k + 8);
	a->signal = sqlite3_column_int(q, k + 9);
	a->message = col_str(q, k + 10);
	a->received = sqlite3_column_int64(q, k + 11);
}

static int sq_list_tasks(struct vine_state *st, int64_t after, size_t limit,
			 struct vine_task **tasks, size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_task *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q = Q(s, Q_TASK_LIST);
	int r;

	*tasks = NULL;
	*n = 0;
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, after);
	sqlite3_bind_int64(q, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		struct vine_task *t = &v[len++];
		t->id = sqlite3_column_int64(q, 0);
		t->cmd = col_str(q, 1);
		t->object = col_str(q, 2);
		t->tag = col_str(q, 3);
		t->cores = sqlite3_column_int(q, 4);
		t->retries = sqlite3_column_int(q, 5);
		t->timeout = sqlite3_column_double(q, 6);
		t->submitted = sqlite3_column_double(q, 7);
		t->state = vine_task_state_parse((const char *)sqlite3_column_text(q, 8));
		t->attempts = sqlite3_column_int(q, 9);
		t->failures = sqlite3_column_int(q, 10);
		t->losses = sqlite3_column_int(q, 11);
		read_attempt(q, 12, &t->last);
		t->cwd = col_str(q, 24);
		t->submission = col_str(q, 25);
		t->memory = sqlite3_column_int64(q, 26);
		t->gpus = sqlite3_column_int(q, 27);
		t->faults = sqlite3_column_int(q, 28);
		t->delivered = sqlite3_column_double(q, 29);
	}
	sqlite3_reset(q);
	if (r < 0) {
		vine_state_free_tasks(v, len);
		return -1;
	}
	*tasks = v;
	*n = len;
	return 0;
}

static int sq_list_attempts(struct vine_state *st, int64_t task, struct vine_attempt **attempts,
			    size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_attempt *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q;
	int r;

	*attempts = NULL;
	*n = 0;
	if (begin_read(s) < 0 || !(q = Q(s, Q_TASK_EXISTS)))
		return rollback(s);
	sqlite3_bind_int64(q, 1, task);
	if ((r = row(s, q)) <= 0) {
		if (r == 0)
			vine_error("no task %lld in state '%s'", (long long)task, s->path);
		return rollback(s);
	}
	if (!(q = Q(s, Q_ATTEMPT_LIST)))
		return rollback(s);
	sqlite3_bind_int64(q, 1, task);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		read_attempt(q, 0, &v[len++]);
	}
	if (r < 0 || commit(s) < 0) {
		vine_state_free_attempts(v, len);
		return rollback(s);
	}
	*attempts = v;
	*n = len;
	return 0;
}

/* --- spreading ------------------------------------------------------------ */

/* meta[key] into *val (malloc'd): 1 found, 0 not, -1 error. */
static int meta_get(struct sq_state *s, const char *key, char **val)
{
	sqlite3_stmt *q = Q(s, Q_META_GET);
	int r;

	*val = NULL;
	if (!q)
		return -1;
	bind_str(q, 1, key);
	if ((r = row(s, q)) > 0)
		*val = col_str(q, 0);
	return r;
}

static int meta_set(struct sq_state *s, const char *key, const char *val)
{
	sqlite3_stmt *q = Q(s, Q_META_SET);

	if (!q)
		return -1;
	bind_str(q, 1, key);
	bind_str(q, 2, val);
	return run(s, q);
}

static int sq_peer_secret(struct vine_state *st, unsigned char *secret)
{
	struct sq_state *s = SQ(st);
	char *hex = NULL;
	int r;

	if (begin_read(s) < 0 || (r = meta_get(s, "peer_secret", &hex)) < 0)
		return rollback(s);
	if (commit(s) < 0) {
		free(hex);
		return rollback(s);
	}
	if (r == 0)
		return vine_error("state '%s' has no peer secret", s->path);
	r = vine_peer_secret_parse(hex, strlen(hex), secret);
	explicit_bzero(hex, strlen(hex));
	free(hex);
	return r < 0 ? vine_error("state '%s': bad peer secret", s->path) : 0;
}

static int settings_read(struct sq_state *s, struct vine_spread_settings *g)
{
	static const struct { const char *key; size_t off; int def; } keys[] = {
		{ "k_peer", offsetof(struct vine_spread_settings, k_peer), VINE_K_PEER_DEFAULT },
		{ "k_origin", offsetof(struct vine_spread_settings, k_origin), VINE_K_ORIGIN_DEFAULT },
		{ "relay", offsetof(struct vine_spread_settings, relay), 1 },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int *v = (int *)((char *)g + keys[i].off);
		char *val;
		int r = meta_get(s, keys[i].key, &val);
		if (r < 0)
			return -1;
		long long n = keys[i].def;
		if (r && vine_parse_llong(val, INT_MIN, INT_MAX, &n) < 0) {
			free(val);
			return vine_error_prefix("state setting %s", keys[i].key);
		}
		*v = (int)n;
		free(val);
	}
	return 0;
}

static int sq_spread_settings(struct vine_state *st, const struct vine_spread_settings *set,
			      struct vine_spread_settings *get)
{
	struct sq_state *s = SQ(st);
	struct vine_spread_settings g;
	char buf[3][16];

	if ((set ? begin(s) : begin_read(s)) < 0)
		return rollback(s);
	if (set) {
		snprintf(buf[0], sizeof(buf[0]), "%d", set->k_peer);
		snprintf(buf[1], sizeof(buf[1]), "%d", set->k_origin);
		snprintf(buf[2], sizeof(buf[2]), "%d", set->relay);
		if (meta_set(s, "k_peer", buf[0]) < 0 || meta_set(s, "k_origin", buf[1]) < 0 ||
		    meta_set(s, "relay", buf[2]) < 0)
			return rollback(s);
	}
	if (settings_read(s, &g) < 0 || commit(s) < 0)
		return rollback(s);
	if (get)
		*get = g;
	return 0;
}

static int sq_node_listen(struct vine_state *st, const char *node, const char *addr)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q;

	if (begin(s) < 0 || !(q = Q(s, addr ? Q_PEER_SET : Q_PEER_DEL)))
		return rollback(s);
	bind_str(q, 1, node);
	if (addr) {
		bind_str(q, 2, addr);
		sqlite3_bind_double(q, 3, vine_now_wall());
	}
	if (run(s, q) < 0 || commit(s) < 0)
		return rollback(s);
	return 0;
}

static int repl_set(struct sq_state *s, const char *id, const char *node, int64_t bytes,
		    int complete, double now)
{
	sqlite3_stmt *q = Q(s, Q_REPL_SET);

	if (!q)
		return -1;
	bind_str(q, 1, id);
	bind_str(q, 2, node);
	sqlite3_bind_int64(q, 3, bytes);
	sqlite3_bind_int(q, 4, complete);
	sqlite3_bind_double(q, 5, now);
	return run(s, q);
}

static int sq_transfer_begin(struct vine_state *st, const char *key, const char *id,
			     const char *dest, int64_t offset, struct vine_xfer *x)
{
	struct sq_state *s = SQ(st);
	struct vine_spread_settings set;
	double now = vine_now_wall();
	sqlite3_stmt *q;
	int r;

	/* begun by this very request before: the same transfer */
	if ((r = once_begin(s, key, get_xfer, x)) != 0) {
		if (r < 0)
			vine_state_free_xfer(x);
		return r < 0 ? -1 : 0;
	}
	if (reap_locked(s, NULL) < 0 || settings_read(s, &set) < 0 ||
	    !(q = Q(s, Q_PEER_PICK)))
		return rollback(s);
	bind_str(q, 1, id);
	bind_str(q, 2, dest);
	sqlite3_bind_double(q, 3, now);
	sqlite3_bind_double(q, 4, now - VINE_XFER_STALE);
	sqlite3_bind_int64(q, 5, offset);
	sqlite3_bind_int(q, 6, set.relay);
	sqlite3_bind_int(q, 7, set.k_peer);
	if ((r = row(s, q)) < 0)
		return rollback(s);
	if (r > 0) {
		x->kind = VINE_XFER_PEER;
		x->node = col_str(q, 0);
		x->addr = col_str(q, 1);
	} else {
		if (!(q = Q(s, Q_ORIGIN_LOAD)))
			return rollback(s);
		bind_str(q, 1, id);
		sqlite3_bind_double(q, 2, now - VINE_XFER_STALE);
		if ((r = row(s, q)) < 0)
			return rollback(s);
		if (r == 0) {
			vine_error("object %s is not registered in state '%s'", id, s->path);
			return rollback(s);
		}
		if (sqlite3_column_int(q, 1) < set.k_origin) {
			x->kind = VINE_XFER_ORIGIN;
			x->addr = col_str(q, 0);
		} else {
			x->kind = VINE_XFER_WAIT;
			x->wait = 0.5;
		}
	}
	sqlite3_reset(q);
	/* a WAIT changes nothing and is not recorded: the same key may ask again */
	if (x->kind == VINE_XFER_WAIT)
		return commit(s) < 0 ? rollback(s) : 0;
	if (!(q = Q(s, Q_XFER_ADD)))
		goto fail;
	bind_str(q, 1, id);
	bind_str(q, 2, x->node);
	bind_str(q, 3, x->addr);
	bind_str(q, 4, dest);
	sqlite3_bind_int64(q, 5, offset);
	sqlite3_bind_double(q, 6, now);
	if (run(s, q) < 0)
		goto fail;
	x->id = sqlite3_last_insert_rowid(s->db);
	if (repl_set(s, id, dest, offset, 0, now) < 0 ||
	    once_keep_json(s, key, key ? vj_encode(&vj_xfer, x) : NULL) < 0 || commit(s) < 0)
		goto fail;
	return 0;
fail:
	vine_state_free_xfer(x);
	return rollback(s);
}

static int sq_transfer_progress(struct vine_state *st, int64_t xfer, int64_t bytes)
{
	struct sq_state *s = SQ(st);
	double now = vine_now_wall();
	sqlite3_stmt *q;
	char *obj, *dest;
	int r;

	if (begin(s) < 0 || !(q = Q(s, Q_XFER_GET)))
		return rollback(s);
	sqlite3_bind_int64(q, 1, xfer);
	if ((r = row(s, q)) <= 0) {
		if (r == 0)
			vine_error("no transfer %lld", (long long)xfer);
		return rollback(s);
	}
	if (strcmp((const char *)sqlite3_column_text(q, 3), "active")) {
		/* ended already (its node was reaped, say): nothing to update */
		return commit(s) < 0 ? rollback(s) : 0;
	}
	obj = col_str(q, 0);
	dest = col_str(q, 2);
	sqlite3_reset(q);
	r = -1;
	if ((q = Q(s, Q_XFER_PROGRESS))) {
		sqlite3_bind_int64(q, 1, xfer);
		sqlite3_bind_int64(q, 2, bytes);
		sqlite3_bind_double(q, 3, now);
		if (run(s, q) == 0)
			r = repl_set(s, obj, dest, bytes, 0, now);
	}
	free(obj);
	free(dest);
	if (r < 0 || commit(s) < 0)
		return rollback(s);
	return 0;
}

/* Does a failure with this status make the source worth avoiding? */
static int source_at_fault(int status)
{
	switch (status) {
	case VINE_PEER_ECONNECT: case VINE_PEER_ETIMEOUT: case VINE_PEER_EAUTH:
	case VINE_PEER_EVERSION: case VINE_PEER_ESTALLED: case VINE_PEER_EREMOTE:
	case VINE_PEER_EPROTO: case VINE_PEER_ECORRUPT:
		return 1;
	default:
		return 0;
	}
}

static int sq_transfer_end(struct vine_state *st, const char *key, int64_t xfer, int status,
			   int64_t bytes, const char *msg)
{
	struct sq_state *s = SQ(st);
	double now = vine_now_wall();
	char *obj = NULL, *src = NULL, *dest = NULL;
	int64_t offset, sent, last;
	sqlite3_stmt *q;
	int r;

	/* ended by this very request before: nothing more to do */
	if ((r = once_begin(s, key, NULL, NULL)) != 0)
		return r < 0 ? -1 : 0;
	if (!(q = Q(s, Q_XFER_GET)))
		return rollback(s);
	sqlite3_bind_int64(q, 1, xfer);
	if ((r = row(s, q)) <= 0) {
		if (r == 0)
			vine_error("no transfer %lld", (long long)xfer);
		return rollback(s);
	}
	if (strcmp((const char *)sqlite3_column_text(q, 3), "active")) {
		vine_error("transfer %lld has ended already", (long long)xfer);
		return rollback(s);
	}
	obj = col_str(q, 0);
	src = col_str(q, 1);
	dest = col_str(q, 2);
	offset = sqlite3_column_int64(q, 4);
	last = sqlite3_column_int64(q, 5);
	sqlite3_reset(q);
	/* after a corrupt copy the bytes were sent, then discarded */
	sent = (bytes > last ? bytes : last) - offset;
	if (sent < 0)
		sent = 0;
	r = -1;
	if (!(q = Q(s, Q_XFER_END)))
		goto out;
	sqlite3_bind_int64(q, 1, xfer);
	bind_str(q, 2, status == VINE_PEER_OK ? "done" : "failed");
	bind_str(q, 3, vine_peer_status_name(status));
	sqlite3_bind_int64(q, 4, bytes);
	sqlite3_bind_double(q, 5, now);
	bind_str(q, 6, msg);
	if (run(s, q) < 0 || !(q = Q(s, Q_SERVED)))
		goto out;
	bind_str(q, 1, obj);
	sqlite3_bind_int(q, 2, status == VINE_PEER_OK);
	bind_str(q, 3, src);
	sqlite3_bind_int64(q, 4, sent);
	if (run(s, q) < 0 || repl_set(s, obj, dest, bytes, status == VINE_PEER_OK, now) < 0)
		goto out;
	if (src && source_at_fault(status)) {
		if (!(q = Q(s, Q_PEER_AVOID)))
			goto out;
		bind_str(q, 1, src);
		sqlite3_bind_double(q, 2, now + VINE_AVOID_SECONDS);
		bind_str(q, 3, vine_peer_status_name(status));
		if (run(s, q) < 0)
			goto out;
	} else if (src && status == VINE_PEER_ENOTFOUND) {
		if (!(q = Q(s, Q_REPL_DROP)))
			goto out;
		bind_str(q, 1, obj);
		bind_str(q, 2, src);
		if (run(s, q) < 0)
			goto out;
	}
	if (once_keep(s, key, "{}") < 0)
		goto out;
	r = commit(s);
out:
	free(obj);
	free(src);
	free(dest);
	return r < 0 ? rollback(s) : 0;
}

static int sq_replica_set(struct vine_state *st, const char *id, const char *node,
			  int64_t bytes, int complete)
{
	struct sq_state *s = SQ(st);
	int r;

	if (begin(s) < 0 || (r = object_known(s, id, 0, 0)) < 0)
		return rollback(s);
	if (r == 0 && (bytes || complete)) {
		vine_error("object %s is not registered in state '%s'", id, s->path);
		return rollback(s);
	}
	if (!bytes && !complete) {
		/* withdrawn: node holds none of it (pruned, dropped) */
		sqlite3_stmt *q = Q(s, Q_REPL_DROP);
		if (!q)
			return rollback(s);
		bind_str(q, 1, id);
		bind_str(q, 2, node);
		if (run(s, q) < 0 || commit(s) < 0)
			return rollback(s);
		return 0;
	}
	if (repl_set(s, id, node, bytes, complete, vine_now_wall()) < 0 || commit(s) < 0)
		return rollback(s);
	return 0;
}

/* A worker was lost: its node's transfers end, and it no longer serves. */
static int node_lost(struct sq_state *s, int64_t worker)
{
	sqlite3_stmt *q = Q(s, Q_WORKER_NODE);
	char *node;
	int r;

	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, worker);
	if ((r = row(s, q)) <= 0)
		return r;
	node = col_str(q, 0);
	sqlite3_reset(q);
	r = -1;
	if ((q = Q(s, Q_XFER_LOST))) {
		bind_str(q, 1, node);
		sqlite3_bind_double(q, 2, vine_now_wall());
		if (run(s, q) == 0 && (q = Q(s, Q_PEER_DEL))) {
			bind_str(q, 1, node);
			r = run(s, q);
		}
	}
	free(node);
	return r;
}

static int sq_list_transfers(struct vine_state *st, struct vine_transfer **t, size_t *n)
{
	struct sq_state *s = SQ(st);
	struct vine_transfer *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q;
	int r;

	*t = NULL;
	*n = 0;
	if (begin_read(s) < 0 || !(q = Q(s, Q_XFER_LIST)))
		return rollback(s);
	while ((r = row(s, q)) > 0) {
		v = grow(v, len, sizeof(*v));
		struct vine_transfer *x = &v[len++];
		x->id = sqlite3_column_int64(q, 0);
		x->object = col_str(q, 1);
		x->source = col_str(q, 2);
		x->addr = col_str(q, 3);
		x->dest = col_str(q, 4);
		x->state = col_str(q, 5);
		x->status = col_str(q, 6);
		x->offset = sqlite3_column_int64(q, 7);
		x->bytes = sqlite3_column_int64(q, 8);
		x->started = sqlite3_column_double(q, 9);
		x->updated = sqlite3_column_double(q, 10);
	}
	if (r < 0 || commit(s) < 0) {
		vine_state_free_transfers(v, len);
		return rollback(s);
	}
	*t = v;
	*n = len;
	return 0;
}

/*
 * The origin through the state: the path comes from the object's row,
 * never from the caller, so nothing but a registered origin is opened.
 */
static int sq_origin_read(struct vine_state *st, const char *id, int64_t offset, void *buf,
			  size_t len, size_t *got, int64_t *size)
{
	struct sq_state *s = SQ(st);
	sqlite3_stmt *q = NULL;
	struct stat sb;
	char *origin = NULL;
	ssize_t n;
	int fd = -1, r = -1;

	if (sqlite3_prepare_v2(s->db, "SELECT origin, size FROM objects WHERE id = ?1", -1, &q,
			       NULL) != SQLITE_OK) {
		db_error(s, "cannot prepare statement");
		goto out;
	}
	bind_str(q, 1, id);
	if ((r = row(s, q)) <= 0) {
		if (r == 0)
			vine_error("object %s is not registered in state '%s'", id, s->path);
		r = -1;
		goto out;
	}
	r = -1;
	origin = col_str(q, 0);
	*size = sqlite3_column_int64(q, 1);
	if (offset > *size) {
		vine_error("object %s: offset %lld is past its end (%lld bytes)", id,
			   (long long)offset, (long long)*size);
		goto out;
	}
	if ((int64_t)len > *size - offset)
		len = (size_t)(*size - offset);
	if (len == 0) {
		r = 0;
		goto out;
	}
	fd = open(origin, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		vine_error_errno("object %s: cannot read its origin '%s'", id, origin);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		vine_error("object %s: its origin '%s' is not a regular file", id, origin);
		goto out;
	}
	if (sb.st_size != *size) {
		vine_error("object %s: its origin '%s' is %lld bytes, not the %lld registered: "
			   "it changed since", id, origin, (long long)sb.st_size, (long long)*size);
		goto out;
	}
	n = vine_pread_full(fd, buf, len, (off_t)offset);
	if (n < 0) {
		vine_error_errno("object %s: cannot read its origin '%s'", id, origin);
		goto out;
	}
	*got = (size_t)n;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	sqlite3_finalize(q);
	free(origin);
	return r;
}

static const struct vine_state_ops sq_ops = {
	.close = sq_close,
	.submit = sq_submit,
	.cancel = sq_cancel,
	.requeue_failed = sq_requeue_failed,
	.list_objects = sq_list_objects,
	.register_worker = sq_register_worker,
	.heartbeat = sq_heartbeat,
	.finish_claim = sq_finish_claim,
	.put_file = sq_put_file,
	.unregister_worker = sq_unregister_worker,
	.reap = sq_reap,
	.counts = sq_counts,
	.list_workers = sq_list_workers,
	.list_tasks = sq_list_tasks,
	.list_attempts = sq_list_attempts,
	.list_files = sq_list_files,
	.get_file = sq_get_file,
	.peer_secret = sq_peer_secret,
	.spread_settings = sq_spread_settings,
	.node_listen = sq_node_listen,
	.transfer_begin = sq_transfer_begin,
	.transfer_progress = sq_transfer_progress,
	.transfer_end = sq_transfer_end,
	.replica_set = sq_replica_set,
	.list_transfers = sq_list_transfers,
	.origin_read = sq_origin_read,
	.deliver = sq_deliver,
};
