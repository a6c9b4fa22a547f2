/* backends/sqlite.h - durable SQLite backend of persistence.h, stb-style single header.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PERSISTENCE_SQLITE_IMPLEMENTATION
       #include "backends/sqlite.h"

   (with PERSISTENCE_IMPLEMENTATION and PLUGIN_REGISTRY_IMPLEMENTATION defined there too, or in
   other files) and link with -lsqlite3 (Debian: libsqlite3-dev; SQLite 3.35 or later;
   3.40 is what the tests run on). Including the header again, before or after the
   define, is harmless. It includes "../persistence.h", i.e. persistence.h one directory up from
   this file; only the implementation includes <sqlite3.h>. Public names start with
   `pers_sqlite_`, internal ones with `psqli_`.

   The backend implements every method and behaviour of persistence.h (S1..S20) on one SQLite
   database file, in WAL mode. Tasks survive the process (PERS_CAP_DURABLE) and several
   processes may open the same file at once (PERS_CAP_SHARED): every write runs in
   BEGIN IMMEDIATE, so writers of all processes are serialised by SQLite's own locks, and the
   lease-token counter lives in the database, so tokens increase across processes too.

       plg_registry *reg = NULL;
       pers_store *store = NULL;
       plg_registry_create(NULL, &reg);
       pers_sqlite_register(reg);            // declares the interface, registers "sqlite"
       pers_open(reg, "sqlite", "{\"path\":\"/var/lib/app/queue.db\"}", NULL, &store);
       ...
       pers_destroy(store);
       plg_registry_destroy(reg);

   or, without a registry: pers_sqlite_open("{\"path\":\"queue.db\"}", NULL, &store).

   CONFIGURATION (JSON keys of the plugin's schema)
   =============
   path                string, REQUIRED, 1..4096 bytes: the database file, created when
                       absent (its directory must exist). SQLite also creates path-wal and
                       path-shm beside it; keep the three together and on a local file
                       system (WAL needs shared memory that network file systems lack).
   synchronous         "FULL" (default) or "NORMAL" (lower case accepted too).
                         FULL    every commit is fsync'ed before the call returns: an
                                 acknowledged operation survives a process crash, an OS crash
                                 and a power loss.
                         NORMAL  commits are written to the WAL but synced only at checkpoints:
                                 an acknowledged operation survives a process crash (SIGKILL,
                                 abort), but an OS crash or power loss may lose the most recent
                                 commits (the database stays consistent; it is never corrupted,
                                 it only goes back in time). Several times faster per commit.
   busy_timeout        duration, default "5s", 0..1h: how long a write waits for another
                       connection's (or process's) write transaction before giving up with
                       PERS_ERR_UNAVAILABLE.
   max_payload_bytes   integer 1..1000000000, default 1048576: the largest payload or result
                       accepted (the store applies the smaller of this and its own limit; it
                       is lowered further to SQLite's SQLITE_LIMIT_LENGTH if that is smaller).

   The backend copies everything it needs from the configuration at open: unlike the general
   rule of pers_open_vtable, the plg_config may be destroyed as soon as the open returns.
   path is required of pers_open and pers_sqlite_open. pers_open_env, when the provider is
   "sqlite" (set, or the embedded default) and PERSISTENCE_CONFIG is not set, supplies the file
   persistence.sqlite in $PERSISTENCE_DIR, else $TMPDIR, else /tmp; set PERSISTENCE_CONFIG to
   choose another (e.g. {"path":"/var/lib/app/queue.db"}).

   SCHEMA AND COSTS
   ================
   PRAGMA application_id is PERS_SQLITE_APPLICATION_ID ("pers") and PRAGMA user_version the
   schema version, PERS_SQLITE_SCHEMA_VERSION (2). Opening
     - an empty or new file creates the schema;
     - a file of an older schema version migrates it, in one transaction;
     - a file of a NEWER schema version is PERS_ERR_CONFIG ("written by a newer version");
     - an SQLite database that is not ours (another application_id, or user tables without
       our application_id) is PERS_ERR_CONFIG ("not a database of this backend");
     - a file that is not an SQLite database at all is PERS_ERR_CORRUPT (SQLite cannot tell
       it from a database whose header was destroyed);
   and in the three error cases the file is left exactly as it was (only reads were made).
   Migrations and the creation run inside BEGIN IMMEDIATE and look at the version again
   there, so processes racing to open a fresh file agree.

   Tables: pq_tasks (one row per task: its state machine columns, payload, result), pq_meta
   (the lease-token counter), pq_counts (completed and failed counts per queue, kept by the
   writes and by a delete trigger, so that stats never scan finished tasks), pq_subscriptions.
   The enqueue order of S3 is the rowid (seq), which a task keeps for life.
   Indexes (partial ones name the state they hold; SQLite only maintains an entry while the
   row's state matches):
     pq_tasks_id        UNIQUE (tenant, id)                       lookups by id, S9
     pq_tasks_idem      UNIQUE (tenant, queue, idem) idem NOT NULL   S8
     pq_tasks_ready     (tenant, queue, priority DESC, seq)  state = ready       claim
     pq_tasks_scheduled (tenant, queue, due_ms)              state = scheduled   promotion,
                                                                                 next due time
     pq_tasks_leased    (tenant, queue, lease_expires_ms)    state = leased      expiry
     pq_tasks_dead      (tenant, queue, finished_ms, seq)    state = dead        list_dead
     pq_tasks_finished  (finished_ms)             state completed/failed/dead    retention
   So claim, promotion, expiry and the next due time touch only the live tasks of the queue
   concerned: their cost does not grow with the number of finished tasks in the table (the
   unit tests check the query plans and count SQLite's virtual-machine steps to prove it).

   Claim, in one BEGIN IMMEDIATE transaction per call, for each queue named in turn:
     UPDATE ... SET state = ready WHERE state = scheduled AND due_ms <= now      (S2)
     UPDATE ... SET state = ready or dead ... WHERE state = leased AND expired    (S6, S7)
     then in rounds of up to 64 tasks:
     SELECT the task columns FROM pq_tasks WHERE tenant = ? AND queue = ? AND state = ready
       ORDER BY priority DESC, seq LIMIT ?                       (the tasks returned, S3)
     UPDATE pq_tasks SET state = leased, attempts = attempts + 1, token = counter + rank, ...
       FROM (VALUES (seq, token), ...) WHERE seq = ...           (exactly the rows picked)
     with the token counter (S4) read from pq_meta once, and advanced by the count claimed.
   complete reads the task by (tenant, id), decides S5 in C, and updates it by rowid; the
   completed and failed counters (pq_counts) are written once per queue per transaction.
   enqueue_batch, a claim of any max_tasks and complete_batch are one transaction (one commit)
   each: a batch of completions costs one fsync with FULL.

   Batches run as multi-row statements, up to 64 rows per execution, because SQLite's fixed
   cost per execution is about that of one row's work: enqueue_batch is INSERT ... VALUES
   (...), (...) (a request with an idempotency key goes alone, after its lookup);
   complete_batch first tries one UPDATE ... FROM (VALUES (tenant, id, token, state,
   result), ...) that matches live leases only, under a savepoint, and when a row is not done
   (a lease not live, a task named twice) rolls back to it and decides each item in order as
   complete does. The multi-row statements are OR FAIL, which spares SQLite a statement
   journal; an INSERT that a constraint refuses (a duplicate id) rolls the transaction back,
   and the batch is done again one request at a time, so every outcome and message is the
   one-by-one loop's. The connection uses temp_store = MEMORY, so the savepoint's journal
   stays in memory. RETURNING buffers its rows in a temporary b-tree per execution, so the
   hot paths avoid it: complete_batch needs each task's queue for the per-queue counters,
   and the connection remembers the queue of every lease it issued (by token); only leases
   it does not know (issued by another connection, or long ago) take a variant with
   RETURNING queue. Prepared statements are cached per connection. Every "now" is the
   store's clock (pers_open_args), read after the write lock is taken; SQLite's own time
   functions are never used.

   get_task, queue_stats, get_result and the subscription lists are plain reads (no write
   lock; WAL lets them run beside a writer): S2 and S7 are applied to what they read. The other
   operations are one BEGIN IMMEDIATE transaction each; those that can change an outcome
   (requeue_dead, list_dead, cleanup) first apply due promotions and expiries to the tasks
   concerned, and the worker operations tell a lapsed lease from the stored expiry (S5 d:
   nothing changes). Schema 1 -> 2 added pq_tasks_finished and pq_subscriptions_expiry.

   Behind a store (pers_open_args.flags has PERS_OPEN_VALIDATED) the backend does not check
   again what the store has checked (S10 names, ranges, NULLs); a direct caller of the vtable
   gets every check. The backend's own limit (max_payload_bytes) is always checked.

   Retention (cleanup_tasks, cleanup_results) with a limit removes the oldest finished tasks
   first, across the queues (and tenants) it covers.

   PERFORMANCE (bench/bench_sqlite_backend.c prints the figures beside raw SQLite running the
   same statements in the same transactions): the backend costs the same CPU per task as raw
   SQLite within a few per cent. One task per transaction is bound by the commits (an fsync
   each with FULL); batched (enqueue_batch, claim of 100, complete_batch: three commits per
   100 tasks) by SQLite's own work per row: about 57,000 instructions per task in all (89,000
   with one statement per row), and a fifth of the time in the kernel writing WAL frames. The
   bench also prints the floor, the smallest SQLite queue in the same transactions;
   docs/performance.md has the figures and what each of the schema's features costs.

   ERRORS (SQLite's message and extended result code are in the detail, i.e. in
   ======  pers_errmsg, and in pers_detail.native_code for direct vtable callers)
   SQLITE_BUSY, SQLITE_LOCKED     PERS_ERR_UNAVAILABLE: another writer held the database for
                                  longer than busy_timeout. Every write starts with BEGIN
                                  IMMEDIATE, so a busy write is known NOT to have been applied:
                                  retrying is safe, which is what UNAVAILABLE says (TIMEOUT
                                  would claim an unknown outcome).
   SQLITE_FULL                    PERS_ERR_LIMIT (disk full, or max_page_count reached)
   SQLITE_CORRUPT, SQLITE_NOTADB  PERS_ERR_CORRUPT
   SQLITE_READONLY                PERS_ERR_UNAVAILABLE (read-only file or file system)
   SQLITE_CANTOPEN                at open: PERS_ERR_CONFIG (the path names no file that can be
                                  created or opened: missing directory, a directory, no
                                  permission); afterwards: PERS_ERR_UNAVAILABLE
   SQLITE_IOERR                   PERS_ERR_UNAVAILABLE; but an I/O error while COMMITTING is
                                  PERS_ERR_TIMEOUT, the persistence.h code for an unknown
                                  outcome (the commit may be on disk although SQLite reported
                                  the failure, e.g. when the final fsync failed)
   SQLITE_NOMEM                   PERS_ERR_NO_MEMORY
   SQLITE_TOOBIG                  PERS_ERR_TOO_LARGE
   SQLITE_PERM, _AUTH, _PROTOCOL, _INTERRUPT, _NOLFS    PERS_ERR_UNAVAILABLE
   anything else (SQLITE_ERROR, SQLITE_CONSTRAINT, ...)  PERS_ERR_INTERNAL
   A newer schema and a database that is not ours: PERS_ERR_CONFIG (see SCHEMA).

   THREAD SAFETY
   =============
   Each store (pers_open*) has ONE SQLite connection, opened with SQLITE_OPEN_NOMUTEX and
   serialised by one mutex per backend handle: every operation runs whole under it, so calls
   from many threads are safe and each is atomic. Threads of one store therefore do not run
   SQL in parallel; for parallel writers open several stores on the same file (each has its
   own connection, and SQLite serialises their write transactions, across processes too).
   The clock callback is called under that mutex. libsqlite3 must be built thread-safe
   (SQLITE_THREADSAFE 1 or 2, as Debian's is; open refuses a build without it). Do not use a
   store across fork(): open a new one in the child (the two-process test does exactly that).

   COMPILE-TIME OPTIONS
   ====================
   The options of persistence.h (PERS_API, PERS_STATIC, PERS_ASSERT, ...) apply. Nothing else.

   LICENCE: see the end of the file.
*/
#ifndef PERSISTENCE_SQLITE_H
#define PERSISTENCE_SQLITE_H

#include "../persistence.h"

#define PERS_SQLITE_VERSION_STRING "0.1.0"
/* The schema this build writes and reads; older ones are migrated at open. */
#define PERS_SQLITE_SCHEMA_VERSION 2
/* PRAGMA application_id of our databases: "pers" in ASCII. */
#define PERS_SQLITE_APPLICATION_ID 0x70657273

#ifdef __cplusplus
extern "C" {
#endif

/* The backend's vtable (static; valid for the program's life). */
PERS_API const pers_backend_vtable *pers_sqlite_vtable(void);
/* Its plugin descriptor: type "persistence", name "sqlite", the configuration schema above,
   capabilities "tasks", "results", "subscriptions", "dead-letter", "batch", "stats",
   "retention", "thread-safe", "durable", "shared". */
PERS_API const plg_descriptor *pers_sqlite_descriptor(void);
/* pers_register_backend(reg, descriptor): a second registration is PERS_ERR_DUPLICATE; the
   other registry failures as pers_register_backend translates them (details in plg_errmsg). */
PERS_API pers_result pers_sqlite_register(plg_registry *reg);
/* The backend's configuration schema (for documentation generators and tests). */
PERS_API const plg_config_key *pers_sqlite_config_schema(size_t *count);
/* Opens a store on this backend without a registry: config_json (a JSON object text, e.g.
   {"path":"queue.db","synchronous":"NORMAL"}) is validated strictly against the schema (an
   unknown key is an error; every problem is named with its key in desc->open_message,
   PERS_ERR_CONFIG), then pers_open_vtable opens the store. desc may be NULL. */
PERS_API pers_result pers_sqlite_open(const char *config_json, const pers_store_desc *desc,
                                      pers_store **out);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_SQLITE_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PERSISTENCE_SQLITE_IMPLEMENTATION) && !defined(PERSISTENCE_SQLITE_IMPLEMENTED)
#define PERSISTENCE_SQLITE_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../persistence.h"
#ifndef PERS_ASSERT /* the same option as persistence.h's, when that is implemented elsewhere */
#include <assert.h>
#define PERS_ASSERT(cond) assert(cond)
#endif

#include <sqlite3.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(PERS_STATIC)
#define PSQLI_DEF static
#else
#define PSQLI_DEF
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PSQLI_DEFAULT_MAX_PAYLOAD 1048576u
#define PSQLI_DEFAULT_BUSY_MS 5000
#define PSQLI_PATH_MAX 4096

/* ---------------------------------------------------------------------------------------------
   The schema, one migration step per version: step i takes a database from version i to
   version i + 1. A fresh file runs every step; an older one the steps it lacks.
   ------------------------------------------------------------------------------------------- */

static const char *const psqli_migrations[PERS_SQLITE_SCHEMA_VERSION] = {
    /* 0 -> 1: the tables, the state indexes, the counters. */
    "CREATE TABLE pq_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO pq_meta (name, value) VALUES ('token', 0);"
    "CREATE TABLE pq_tasks ("
    " seq INTEGER PRIMARY KEY,"           /* enqueue order, for life (S3) */
    " tenant TEXT NOT NULL,"
    " queue TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " idem TEXT,"                         /* idempotency key or NULL (S8) */
    " state INTEGER NOT NULL,"            /* pers_task_state: 1 scheduled .. 6 dead */
    " priority INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " max_attempts INTEGER NOT NULL,"
    " token INTEGER NOT NULL DEFAULT 0,"  /* the last lease token issued (S4, S5) */
    " worker TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL,"
    " due_ms INTEGER NOT NULL,"
    " lease_expires_ms INTEGER NOT NULL DEFAULT 0,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " payload BLOB NOT NULL,"
    " last_error TEXT,"
    " has_result INTEGER NOT NULL DEFAULT 0,"
    " result BLOB);"
    "CREATE UNIQUE INDEX pq_tasks_id ON pq_tasks (tenant, id);"
    "CREATE UNIQUE INDEX pq_tasks_idem ON pq_tasks (tenant, queue, idem) WHERE idem IS NOT NULL;"
    "CREATE INDEX pq_tasks_ready ON pq_tasks (tenant, queue, priority DESC, seq) WHERE state = 2;"
    "CREATE INDEX pq_tasks_scheduled ON pq_tasks (tenant, queue, due_ms) WHERE state = 1;"
    "CREATE INDEX pq_tasks_leased ON pq_tasks (tenant, queue, lease_expires_ms) WHERE state = 3;"
    "CREATE INDEX pq_tasks_dead ON pq_tasks (tenant, queue, finished_ms, seq) WHERE state = 6;"
    "CREATE TABLE pq_counts (tenant TEXT NOT NULL, queue TEXT NOT NULL,"
    " completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (tenant, queue)) WITHOUT ROWID;"
    "CREATE TRIGGER pq_tasks_uncount AFTER DELETE ON pq_tasks WHEN old.state IN (4, 5) BEGIN"
    " UPDATE pq_counts SET completed = completed - (old.state = 4),"
    " failed = failed - (old.state = 5) WHERE tenant = old.tenant AND queue = old.queue; END;"
    "CREATE TABLE pq_subscriptions (tenant TEXT NOT NULL, worker TEXT NOT NULL,"
    " queue TEXT NOT NULL, callback TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, worker, queue)) WITHOUT ROWID;"
    "CREATE INDEX pq_subscriptions_queue ON pq_subscriptions (tenant, queue, worker);",
    /* 1 -> 2: retention and subscription expiry in O(removed) instead of a scan. */
    "CREATE INDEX pq_tasks_finished ON pq_tasks (finished_ms) WHERE state >= 4;"
    "CREATE INDEX pq_subscriptions_expiry ON pq_subscriptions (expires_ms);",
};

/* ---------------------------------------------------------------------------------------------
   Statements, prepared once per connection on first use
   ------------------------------------------------------------------------------------------- */

/* Columns of a full task row, in the order psqli_fill_task reads them. */
#define PSQLI_TASK_COLS                                                                            \
    "seq, tenant, queue, id, idem, state, priority, attempts, max_attempts, worker, created_ms, "  \
    "due_ms, lease_expires_ms, finished_ms, payload, last_error, token"

/* S6 and S7 for a leased row whose lease ran out: a failure at the instant of expiry, with
   reason "lease expired" and no retry delay. (SET expressions all see the old row.) */
#define PSQLI_EXPIRE_SET                                                                           \
    "state = CASE WHEN attempts >= max_attempts THEN 6 ELSE 2 END, "                               \
    "due_ms = CASE WHEN attempts >= max_attempts THEN due_ms ELSE lease_expires_ms END, "          \
    "finished_ms = CASE WHEN attempts >= max_attempts THEN lease_expires_ms ELSE 0 END, "          \
    "last_error = 'lease expired', lease_expires_ms = 0"

/* The live-lease condition of S5 case b: ?1 tenant, ?2 id, ?3 token, ?4 now. */
#define PSQLI_LIVE_LEASE                                                                           \
    " WHERE tenant = ?1 AND id = ?2 AND token = ?3 AND state = 3 AND lease_expires_ms > ?4"

#define PSQLI_STATEMENTS(X)                                                                        \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(BEGIN_READ, "BEGIN DEFERRED")                                                                \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT psqli_batch")                                                          \
    X(RELEASE, "RELEASE psqli_batch")                                                              \
    X(ROLLBACK_TO, "ROLLBACK TO psqli_batch")                                                      \
    X(FIND_IDEM, "SELECT id FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND idem = ?3")         \
    X(INSERT, "INSERT INTO pq_tasks (tenant, queue, id, idem, state, priority, attempts, "         \
              "max_attempts, created_ms, due_ms, payload) "                                        \
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)")                               \
    X(PROMOTE, "UPDATE pq_tasks SET state = 2 "                                                    \
               "WHERE tenant = ?1 AND queue = ?2 AND state = 1 AND due_ms <= ?3")                  \
    X(EXPIRE, "UPDATE pq_tasks SET " PSQLI_EXPIRE_SET                                              \
              " WHERE tenant = ?1 AND queue = ?2 AND state = 3 AND lease_expires_ms <= ?3")        \
    X(EXPIRE_TENANT, "UPDATE pq_tasks SET " PSQLI_EXPIRE_SET                                       \
                     " WHERE tenant = ?1 AND state = 3 AND lease_expires_ms <= ?2")                \
    X(EXPIRE_ALL, "UPDATE pq_tasks SET " PSQLI_EXPIRE_SET                                          \
                  " WHERE state = 3 AND lease_expires_ms <= ?1")                                   \
    X(SETTLE_TASK,                                                                                 \
      "UPDATE pq_tasks SET "                                                                       \
      "state = CASE WHEN state = 1 THEN 2 WHEN attempts >= max_attempts THEN 6 ELSE 2 END, "       \
      "due_ms = CASE WHEN state = 3 AND attempts < max_attempts THEN lease_expires_ms "            \
      "ELSE due_ms END, "                                                                          \
      "finished_ms = CASE WHEN state = 3 AND attempts >= max_attempts THEN lease_expires_ms "      \
      "ELSE finished_ms END, "                                                                     \
      "last_error = CASE WHEN state = 3 THEN 'lease expired' ELSE last_error END, "                \
      "lease_expires_ms = 0 "                                                                      \
      "WHERE tenant = ?1 AND id = ?2 AND "                                                         \
      "((state = 1 AND due_ms <= ?3) OR (state = 3 AND lease_expires_ms <= ?3))")                  \
    X(CLAIM_PICK, "SELECT " PSQLI_TASK_COLS " FROM pq_tasks "                                      \
                  "WHERE tenant = ?1 AND queue = ?2 AND state = 2 "                                \
                  "ORDER BY priority DESC, seq LIMIT ?3")                                          \
    X(TOKEN, "SELECT value FROM pq_meta WHERE name = 'token'")                                     \
    X(BUMP_TOKEN, "UPDATE pq_meta SET value = value + ?1 WHERE name = 'token'")                    \
    X(NEXT_DUE, "SELECT min(due_ms) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 1") \
    X(EXTEND, "UPDATE pq_tasks SET lease_expires_ms = ?5" PSQLI_LIVE_LEASE)                        \
    X(ABANDON, "UPDATE pq_tasks SET state = 2, attempts = attempts - 1, due_ms = ?4, "             \
               "lease_expires_ms = 0" PSQLI_LIVE_LEASE)                                            \
    X(NACK, "UPDATE pq_tasks SET state = ?2, "                                                     \
            "due_ms = CASE WHEN ?2 = 6 THEN due_ms ELSE ?3 END, finished_ms = ?4, "                \
            "last_error = ?5, lease_expires_ms = 0 WHERE seq = ?1")                                \
    X(COMPLETE, "UPDATE pq_tasks SET state = ?2, finished_ms = ?3, lease_expires_ms = 0, "         \
                "has_result = 1, result = ?4 WHERE seq = ?1")                                      \
    X(COUNT_DONE, "INSERT INTO pq_counts (tenant, queue, completed, failed) "                      \
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant, queue) DO UPDATE SET "             \
                  "completed = completed + excluded.completed, "                                   \
                  "failed = failed + excluded.failed")                                             \
    X(LEASE_STATE, "SELECT state, token, seq, queue, lease_expires_ms, attempts, max_attempts "    \
                   "FROM pq_tasks WHERE tenant = ?1 AND id = ?2")                                  \
    X(GET_TASK, "SELECT " PSQLI_TASK_COLS " FROM pq_tasks WHERE tenant = ?1 AND id = ?2")          \
    X(STATS,                                                                                       \
      "SELECT "                                                                                    \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 1 "             \
      "AND due_ms > ?3), "                                                                         \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 1 "             \
      "AND due_ms <= ?3), "                                                                        \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 2), "           \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 3 "             \
      "AND lease_expires_ms > ?3), "                                                               \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 3 "             \
      "AND lease_expires_ms <= ?3 AND attempts < max_attempts), "                                  \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 3 "             \
      "AND lease_expires_ms <= ?3 AND attempts >= max_attempts), "                                 \
      "(SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 6), "           \
      "(SELECT completed FROM pq_counts WHERE tenant = ?1 AND queue = ?2), "                       \
      "(SELECT failed FROM pq_counts WHERE tenant = ?1 AND queue = ?2)")                           \
    X(DEAD_COUNT, "SELECT count(*) FROM pq_tasks WHERE tenant = ?1 AND queue = ?2 AND state = 6")  \
    X(DEAD_LIST, "SELECT " PSQLI_TASK_COLS " FROM pq_tasks "                                       \
                 "WHERE tenant = ?1 AND queue = ?2 AND state = 6 "                                 \
                 "ORDER BY finished_ms, seq LIMIT ?3 OFFSET ?4")                                   \
    X(REQUEUE, "UPDATE pq_tasks SET state = 2, attempts = 0, finished_ms = 0, due_ms = ?3 "        \
               "WHERE tenant = ?1 AND id = ?2 AND state = 6")                                      \
    X(CLEANUP_DONE, "DELETE FROM pq_tasks WHERE seq IN (SELECT seq FROM pq_tasks "                 \
                    "WHERE state >= 4 AND state <= 5 AND finished_ms <= ?1 "                       \
                    "AND (?2 IS NULL OR tenant = ?2) ORDER BY finished_ms LIMIT ?3)")              \
    X(CLEANUP_ALL, "DELETE FROM pq_tasks WHERE seq IN (SELECT seq FROM pq_tasks "                  \
                   "WHERE state >= 4 AND finished_ms <= ?1 "                                       \
                   "AND (?2 IS NULL OR tenant = ?2) ORDER BY finished_ms LIMIT ?3)")               \
    X(CLEANUP_RESULTS, "UPDATE pq_tasks SET has_result = 0, result = NULL WHERE seq IN "           \
                       "(SELECT seq FROM pq_tasks WHERE state >= 4 AND state <= 5 "                \
                       "AND has_result = 1 AND finished_ms <= ?1 "                                 \
                       "AND (?2 IS NULL OR tenant = ?2) ORDER BY finished_ms LIMIT ?3)")           \
    X(GET_RESULT, "SELECT queue, state, attempts, finished_ms, has_result, result "                \
                  "FROM pq_tasks WHERE tenant = ?1 AND id = ?2")                                   \
    X(SUB_GET, "SELECT expires_ms FROM pq_subscriptions "                                          \
               "WHERE tenant = ?1 AND worker = ?2 AND queue = ?3")                                 \
    X(SUB_UPSERT, "INSERT INTO pq_subscriptions (tenant, worker, queue, callback, created_ms, "    \
                  "updated_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) "                   \
                  "ON CONFLICT (tenant, worker, queue) DO UPDATE SET "                             \
                  "callback = excluded.callback, updated_ms = excluded.updated_ms, "               \
                  "expires_ms = excluded.expires_ms, created_ms = CASE WHEN "                      \
                  "pq_subscriptions.expires_ms <= excluded.updated_ms THEN excluded.created_ms "   \
                  "ELSE pq_subscriptions.created_ms END")                                          \
    X(SUB_LIVE, "SELECT count(*) FROM pq_subscriptions WHERE tenant = ?1 AND worker = ?2 "         \
                "AND (?3 IS NULL OR queue = ?3) AND expires_ms > ?4")                              \
    X(SUB_DELETE, "DELETE FROM pq_subscriptions WHERE tenant = ?1 AND worker = ?2 "                \
                  "AND (?3 IS NULL OR queue = ?3)")                                                \
    X(SUB_COUNT_QUEUE, "SELECT count(*) FROM pq_subscriptions "                                    \
                       "WHERE tenant = ?1 AND queue = ?2 AND expires_ms > ?3")                     \
    X(SUB_LIST_QUEUE, "SELECT tenant, worker, queue, callback, created_ms, updated_ms, "           \
                      "expires_ms FROM pq_subscriptions WHERE tenant = ?1 AND queue = ?2 "         \
                      "AND expires_ms > ?3 ORDER BY worker, queue")                                \
    X(SUB_COUNT_WORKER, "SELECT count(*) FROM pq_subscriptions "                                   \
                        "WHERE tenant = ?1 AND worker = ?2 AND expires_ms > ?3")                   \
    X(SUB_LIST_WORKER, "SELECT tenant, worker, queue, callback, created_ms, updated_ms, "          \
                       "expires_ms FROM pq_subscriptions WHERE tenant = ?1 AND worker = ?2 "       \
                       "AND expires_ms > ?3 ORDER BY worker, queue")                               \
    X(SUB_EXPIRE, "DELETE FROM pq_subscriptions WHERE expires_ms <= ?1 "                           \
                  "AND (?2 IS NULL OR tenant = ?2)")

enum {
#define PSQLI_STMT_ENUM_(name, sql) PSQLI_ST_##name,
    PSQLI_STATEMENTS(PSQLI_STMT_ENUM_)
#undef PSQLI_STMT_ENUM_
    PSQLI_ST_COUNT_
};

static const char *const psqli_sql[PSQLI_ST_COUNT_] = {
#define PSQLI_STMT_SQL_(name, sql) sql,
    PSQLI_STATEMENTS(PSQLI_STMT_SQL_)
#undef PSQLI_STMT_SQL_
};

/* Multi-row statements. SQLite's fixed cost of one execution (the VDBE program's set-up, a
   cursor on the table and on each index, the statement journal) is about as much as the work
   on one row, so the hot paths of a batch give it many rows per execution: enqueue_batch
   inserts, claim leases and complete_batch completes up to PSQLI_ROWS_MAX rows per statement.
   A count is split into powers of two (100 = 64 + 32 + 4), each size prepared on first use.
     INSERT    ?1 tenant, ?2 queue, ?3 now; per row: id, state, priority, max_attempts, due,
               payload (a batch is for one tenant and queue, S19; none has an idempotency key)
     CLAIM     ?1 worker, ?2 lease expiry; per row: seq, token (rows picked by CLAIM_PICK)
     COMPLETE  ?1 now; per row: tenant, id, token, state (4 or 5), result. Only live leases
               match (S5 b); RETURNING names each row done, for the per-queue counters.
     COMPLETE_KNOWN  the same without RETURNING, when every lease's queue is known (see
               psqli_lease_queue): the count of changes says whether every item was done. */
enum {
    PSQLI_MULTI_INSERT,
    PSQLI_MULTI_CLAIM,
    PSQLI_MULTI_COMPLETE,
    PSQLI_MULTI_COMPLETE_KNOWN,
    PSQLI_MULTI_COUNT_
};
#define PSQLI_ROWS_LOG2 6
#define PSQLI_ROWS_MAX (1 << PSQLI_ROWS_LOG2)

#define PSQLI_COMPLETE_HEAD                                                                        \
    "UPDATE OR FAIL pq_tasks SET state = done.state_, finished_ms = ?1, lease_expires_ms = 0, "    \
    "has_result = 1, result = done.result_ FROM (SELECT column1 AS tenant_, column2 AS id_, "      \
    "column3 AS token_, column4 AS state_, column5 AS result_ FROM (VALUES "
#define PSQLI_COMPLETE_TAIL                                                                        \
    ")) AS done WHERE pq_tasks.tenant = done.tenant_ AND pq_tasks.id = done.id_ "                  \
    "AND pq_tasks.token = done.token_ AND pq_tasks.state = 3 AND pq_tasks.lease_expires_ms > ?1"

static const struct psqli_multi_shape {
    const char *head, *tail;
    int first, per_row; /* the first per-row parameter's number; parameters per row */
} psqli_multi_shapes[PSQLI_MULTI_COUNT_] = {
    { "INSERT OR FAIL INTO pq_tasks (tenant, queue, id, idem, state, priority, attempts, "
      "max_attempts, "
      "created_ms, due_ms, payload) VALUES ",
      "", 4, 6 },
    { "UPDATE OR FAIL pq_tasks SET state = 3, attempts = attempts + 1, worker = ?1, "
      "lease_expires_ms = ?2, token = pick.token_ FROM (SELECT column1 AS seq_, "
      "column2 AS token_ FROM (VALUES ",
      ")) AS pick WHERE pq_tasks.seq = pick.seq_ AND pq_tasks.state = 2", 3, 2 },
    { PSQLI_COMPLETE_HEAD, PSQLI_COMPLETE_TAIL " RETURNING tenant, queue, state", 2, 5 },
    { PSQLI_COMPLETE_HEAD, PSQLI_COMPLETE_TAIL, 2, 5 },
};

/* The text of the multi-row statement `kind` for `rows` rows into out (PSQLI_MULTI_SQL_MAX
   bytes is enough for PSQLI_ROWS_MAX rows). */
#define PSQLI_MULTI_SQL_MAX 8192
static void psqli_multi_sql(int kind, int rows, char *out)
{
    const struct psqli_multi_shape *m = &psqli_multi_shapes[kind];
    size_t used = (size_t)sprintf(out, "%s", m->head);
    int r, c;
    for (r = 0; r < rows; r++) {
        int p = m->first + r * m->per_row;
        if (r > 0)
            out[used++] = ',';
        out[used++] = '(';
        if (kind == PSQLI_MULTI_INSERT)
            used += (size_t)sprintf(out + used, "?1, ?2, ?%d, NULL, ?%d, ?%d, 0, ?%d, ?3, ?%d, ?%d",
                                    p, p + 1, p + 2, p + 3, p + 4, p + 5);
        else
            for (c = 0; c < m->per_row; c++)
                used += (size_t)sprintf(out + used, c > 0 ? ", ?%d" : "?%d", p + c);
        out[used++] = ')';
    }
    sprintf(out + used, "%s", m->tail);
}

/* ---------------------------------------------------------------------------------------------
   The backend handle
   ------------------------------------------------------------------------------------------- */

/* The queue of each lease this connection issued, by token, so that complete_batch can count
   the finished tasks per queue without RETURNING, which buffers every row (about 7% of a
   batched cycle). Sound because a token names exactly one lease: tokens come from the one
   counter in pq_meta (S4), a task's queue never changes, and the completing UPDATE matches
   only the row that holds the lease's token. Direct-mapped by token (consecutive tokens do
   not collide); a queue slot that is reused gets a new generation, which orphans the leases
   that named it. A miss (another connection's lease, an evicted one) takes the statement
   with RETURNING. */
#define PSQLI_LEASE_SLOTS 4096u
#define PSQLI_QUEUE_SLOTS 16u

typedef struct psqli_lease_slot {
    uint64_t token;      /* 0: empty */
    uint32_t queue;      /* index into psqli_store.queues */
    uint32_t generation; /* that slot's generation when the lease was noted */
} psqli_lease_slot;

typedef struct psqli_queue_slot {
    char tenant[PERS_NAME_MAX + 1];
    char queue[PERS_NAME_MAX + 1];
    uint32_t generation;
} psqli_queue_slot;

typedef struct psqli_store {
    pthread_mutex_t lock;      /* serialises every use of db and stmts */
    sqlite3 *db;
    sqlite3_stmt *stmts[PSQLI_ST_COUNT_];
    sqlite3_stmt *multi[PSQLI_MULTI_COUNT_][PSQLI_ROWS_LOG2 + 1]; /* [kind][log2 of rows] */
    pers_clock clock;
    plg_allocator alloc;
    plg_logger logger;
    uint64_t max_payload;
    int64_t busy_timeout_ms;
    int synchronous_full;
    int validated;             /* PERS_OPEN_VALIDATED: a store has checked every argument */
    uint64_t id_prefix, id_counter; /* ids for direct callers that pass none (S9) */
    psqli_lease_slot *leases;  /* [PSQLI_LEASE_SLOTS], NULL when not allocated (see below) */
    psqli_queue_slot queues[PSQLI_QUEUE_SLOTS];
    uint32_t next_queue;
    char path[PSQLI_PATH_MAX + 1];
} psqli_store;

/* ---------------------------------------------------------------------------------------------
   Helpers: time, names, native errors
   ------------------------------------------------------------------------------------------- */

static int64_t psqli_now(psqli_store *s)
{
    return s->clock.now_ms(s->clock.user);
}

/* The S10 checks a direct caller of the vtable gets. Behind a store (PERS_OPEN_VALIDATED) the
   store has made them already, so they are skipped, as are the other re-checks of arguments
   (ranges, NULLs) on which the store's answers come first; the backend's own limits
   (max_payload_bytes) are always checked. */
static int psqli_name_ok(const psqli_store *s, const char *name)
{
    return s->validated || pers_check_name(name, NULL, 0) == 0;
}

static int psqli_key_ok(const psqli_store *s, const char *key)
{
    return s->validated || pers_check_key(key, NULL, 0) == 0;
}

static const char *psqli_code_name(int code)
{
    switch (code & 0xff) {
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_INTERNAL: return "SQLITE_INTERNAL";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_ABORT: return "SQLITE_ABORT";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_INTERRUPT: return "SQLITE_INTERRUPT";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_SCHEMA: return "SQLITE_SCHEMA";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_NOLFS: return "SQLITE_NOLFS";
    case SQLITE_AUTH: return "SQLITE_AUTH";
    case SQLITE_RANGE: return "SQLITE_RANGE";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    default: break;
    }
    return "SQLITE_?";
}

/* The persistence code of a native one (see ERRORS at the top). */
static pers_result psqli_map(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
    case SQLITE_NOLFS:
        return PERS_ERR_UNAVAILABLE;
    case SQLITE_FULL:
        return PERS_ERR_LIMIT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return PERS_ERR_CORRUPT;
    case SQLITE_NOMEM:
        return PERS_ERR_NO_MEMORY;
    case SQLITE_TOOBIG:
        return PERS_ERR_TOO_LARGE;
    default:
        break;
    }
    return PERS_ERR_INTERNAL;
}

/* Writes SQLite's account of a failure into detail and returns the mapped code. Call it right
   after the failing call, before anything else touches the connection. */
static pers_result psqli_native(sqlite3 *db, int code, const char *what, pers_detail *detail)
{
    int ext = db != NULL ? sqlite3_extended_errcode(db) : code;
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    if ((ext & 0xff) != (code & 0xff))
        ext = code; /* the connection's last error is not this one */
    if (detail != NULL)
        detail->native_code = ext;
    pers_detail_set(detail, "sqlite: %s (%s, extended code %d) while %s", msg,
                    psqli_code_name(code), ext, what);
    return psqli_map(code);
}

static void psqli_log(psqli_store *s, plg_log_level level, const char *text)
{
    if (s->logger.log_fn != NULL)
        s->logger.log_fn(s->logger.user, level, text);
}

/* The cached statement `which`, prepared on first use; NULL with *rc and detail set. */
static sqlite3_stmt *psqli_stmt(psqli_store *s, int which, pers_result *rc, pers_detail *detail)
{
    sqlite3_stmt *st = s->stmts[which];
    int code;
    if (st != NULL)
        return st;
    code = sqlite3_prepare_v3(s->db, psqli_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (code != SQLITE_OK) {
        *rc = psqli_native(s->db, code, "preparing a statement", detail);
        sqlite3_finalize(st);
        return NULL;
    }
    s->stmts[which] = st;
    return st;
}

/* The multi-row statement `kind` for 2^log2 rows, prepared on first use; NULL with *rc and
   detail set. */
static sqlite3_stmt *psqli_multi(psqli_store *s, int kind, int log2, pers_result *rc,
                                 pers_detail *detail)
{
    char sql[PSQLI_MULTI_SQL_MAX];
    sqlite3_stmt *st = s->multi[kind][log2];
    int code;
    if (st != NULL)
        return st;
    psqli_multi_sql(kind, 1 << log2, sql);
    code = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (code != SQLITE_OK) {
        *rc = psqli_native(s->db, code, "preparing a statement", detail);
        sqlite3_finalize(st);
        return NULL;
    }
    s->multi[kind][log2] = st;
    return st;
}

/* The largest power of two, as its log2, not above n (1 <= n). */
static int psqli_piece_log2(size_t n)
{
    int k = PSQLI_ROWS_LOG2;
    while (((size_t)1 << k) > n)
        k--;
    return k;
}

/* Binding helpers: they keep the first failure in *bad. */
static void psqli_bind_text(sqlite3_stmt *st, int i, const char *text, int *bad)
{
    int code = text != NULL ? sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC)
                            : sqlite3_bind_null(st, i);
    if (code != SQLITE_OK && *bad == SQLITE_OK)
        *bad = code;
}

static void psqli_bind_int(sqlite3_stmt *st, int i, int64_t v, int *bad)
{
    int code = sqlite3_bind_int64(st, i, (sqlite3_int64)v);
    if (code != SQLITE_OK && *bad == SQLITE_OK)
        *bad = code;
}

/* A blob, never NULL (a zero-length blob for no data: the columns are NOT NULL). */
static void psqli_bind_blob(sqlite3_stmt *st, int i, const void *data, size_t len, int *bad)
{
    int code = sqlite3_bind_blob64(st, i, len > 0 && data != NULL ? data : (const void *)"",
                                   (sqlite3_uint64)len, SQLITE_STATIC);
    if (code != SQLITE_OK && *bad == SQLITE_OK)
        *bad = code;
}

/* Steps st once: SQLITE_ROW or SQLITE_DONE come back as is; an error is translated into
   detail (PERS result in *rc) and returned. The statement is reset on DONE and on errors. */
static int psqli_step(psqli_store *s, sqlite3_stmt *st, const char *what, pers_result *rc,
                      pers_detail *detail)
{
    int code = sqlite3_step(st);
    if (code == SQLITE_ROW)
        return code;
    if (code != SQLITE_DONE)
        *rc = psqli_native(s->db, code, what, detail);
    sqlite3_reset(st);
    return code;
}

/* Runs a statement whose rows (if any) are not needed. */
static pers_result psqli_run(psqli_store *s, sqlite3_stmt *st, int bad, const char *what,
                             pers_detail *detail)
{
    pers_result rc = PERS_OK;
    int code;
    if (bad != SQLITE_OK) {
        sqlite3_reset(st);
        return psqli_native(s->db, bad, what, detail);
    }
    while ((code = psqli_step(s, st, what, &rc, detail)) == SQLITE_ROW)
        ;
    return rc;
}

static pers_result psqli_simple(psqli_store *s, int which, const char *what, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    sqlite3_stmt *st = psqli_stmt(s, which, &rc, detail);
    if (st == NULL)
        return rc;
    return psqli_run(s, st, SQLITE_OK, what, detail);
}

/* Ends an open transaction without keeping anything; harmless when none is open. */
static void psqli_rollback(psqli_store *s)
{
    pers_detail ignored;
    if (!sqlite3_get_autocommit(s->db))
        (void)psqli_simple(s, PSQLI_ST_ROLLBACK, "rolling back", &ignored);
}

/* BEGIN IMMEDIATE: the write lock of the database, waiting up to busy_timeout. */
static pers_result psqli_begin(psqli_store *s, pers_detail *detail)
{
    return psqli_simple(s, PSQLI_ST_BEGIN, "starting a write transaction (BEGIN IMMEDIATE)",
                        detail);
}

/* COMMIT, or ROLLBACK when it fails. An I/O error while committing leaves the outcome
   unknown: PERS_ERR_TIMEOUT (see ERRORS). */
static pers_result psqli_commit(psqli_store *s, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_COMMIT, &rc, detail);
    int code;
    if (st == NULL) {
        psqli_rollback(s);
        return rc;
    }
    code = sqlite3_step(st);
    if (code != SQLITE_DONE) {
        rc = psqli_native(s->db, code, "committing", detail);
        if ((code & 0xff) == SQLITE_IOERR) {
            rc = PERS_ERR_TIMEOUT;
            if (detail != NULL) {
                static const char note[] = "; the commit's outcome is unknown";
                size_t used = strlen(detail->text);
                if (used + sizeof note <= sizeof detail->text)
                    memcpy(detail->text + used, note, sizeof note);
            }
        }
    }
    sqlite3_reset(st);
    if (code != SQLITE_DONE)
        psqli_rollback(s);
    return rc;
}

/* Ends the transaction of an operation: COMMIT when rc is PERS_OK, else ROLLBACK. */
static pers_result psqli_finish(psqli_store *s, pers_result rc, pers_detail *detail)
{
    if (rc == PERS_OK)
        return psqli_commit(s, detail);
    psqli_rollback(s);
    return rc;
}

static void psqli_copy_text(char *dst, size_t size, const unsigned char *text)
{
    size_t n = 0;
    if (text != NULL) {
        n = strlen((const char *)text);
        if (n >= size)
            n = size - 1;
        memcpy(dst, text, n);
    }
    dst[n] = '\0';
}

/* Fills out from a row of PSQLI_TASK_COLS starting at column 0 (payload and last_error
   copied with the store's allocator); lease_token is 0 (claim sets the new one). */
static pers_result psqli_fill_task(psqli_store *s, sqlite3_stmt *st, pers_task *out,
                                   pers_detail *detail)
{
    const void *blob;
    const unsigned char *err;
    size_t len;
    memset(out, 0, sizeof *out);
    psqli_copy_text(out->tenant, sizeof out->tenant, sqlite3_column_text(st, 1));
    psqli_copy_text(out->queue, sizeof out->queue, sqlite3_column_text(st, 2));
    psqli_copy_text(out->id, sizeof out->id, sqlite3_column_text(st, 3));
    psqli_copy_text(out->idempotency_key, sizeof out->idempotency_key,
                    sqlite3_column_text(st, 4));
    out->state = (pers_task_state)sqlite3_column_int(st, 5);
    out->priority = (int32_t)sqlite3_column_int(st, 6);
    out->attempts = (uint32_t)sqlite3_column_int64(st, 7);
    out->max_attempts = (uint32_t)sqlite3_column_int64(st, 8);
    psqli_copy_text(out->worker_id, sizeof out->worker_id, sqlite3_column_text(st, 9));
    out->created_ms = (int64_t)sqlite3_column_int64(st, 10);
    out->due_ms = (int64_t)sqlite3_column_int64(st, 11);
    out->lease_expires_ms =
        out->state == PERS_STATE_LEASED ? (int64_t)sqlite3_column_int64(st, 12) : 0;
    out->finished_ms = (int64_t)sqlite3_column_int64(st, 13);
    blob = sqlite3_column_blob(st, 14);
    len = (size_t)sqlite3_column_bytes(st, 14);
    out->payload = pers_copy_bytes(&s->alloc, blob, len);
    out->payload_len = len;
    err = sqlite3_column_text(st, 15);
    if (out->payload != NULL && err != NULL) {
        out->last_error = (char *)pers_copy_bytes(&s->alloc, err, strlen((const char *)err));
        if (out->last_error == NULL) {
            pers_free(&s->alloc, out->payload, len + 1);
            out->payload = NULL;
        }
    }
    if (out->payload == NULL) {
        memset(out, 0, sizeof *out);
        pers_detail_set(detail, "out of memory copying a task (%lu payload bytes)",
                        (unsigned long)len);
        return PERS_ERR_NO_MEMORY;
    }
    return PERS_OK;
}

/* S2 and S7 applied to a task read without writing (get_task): what the row is as of now. */
static void psqli_settle_view(pers_task *t, const plg_allocator *alloc, int64_t now,
                              int64_t stored_expiry)
{
    if (t->state == PERS_STATE_SCHEDULED && t->due_ms <= now) {
        t->state = PERS_STATE_READY;
    } else if (t->state == PERS_STATE_LEASED && stored_expiry <= now) {
        char *reason = (char *)pers_copy_bytes(alloc, "lease expired", 13);
        if (t->attempts >= t->max_attempts) {
            t->state = PERS_STATE_DEAD;
            t->finished_ms = stored_expiry;
        } else {
            t->state = PERS_STATE_READY;
            t->due_ms = stored_expiry;
        }
        t->lease_expires_ms = 0;
        if (reason != NULL) {
            if (t->last_error != NULL)
                pers_free(alloc, t->last_error, strlen(t->last_error) + 1);
            t->last_error = reason;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
   Open: classification, creation and migration of the schema
   ------------------------------------------------------------------------------------------- */

/* Reads one integer (a PRAGMA or a count) with a throwaway statement. */
static int psqli_read_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (code == SQLITE_OK) {
        code = sqlite3_step(st);
        if (code == SQLITE_ROW) {
            *out = (int64_t)sqlite3_column_int64(st, 0);
            code = SQLITE_OK;
        } else if (code == SQLITE_DONE) {
            *out = 0;
            code = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return code;
}

enum { PSQLI_FILE_EMPTY = 0, PSQLI_FILE_OURS = 1, PSQLI_FILE_FOREIGN = 2 };

/* What the file holds: empty, ours (with its version), or not ours. Reads only. */
static pers_result psqli_classify(sqlite3 *db, int *kind, int64_t *version, pers_detail *detail)
{
    int64_t app = 0, objects = 0;
    int code;
    if ((code = psqli_read_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
        (code = psqli_read_int(db, "PRAGMA user_version", version)) != SQLITE_OK ||
        (code = psqli_read_int(db, "SELECT count(*) FROM sqlite_master", &objects)) != SQLITE_OK)
        return psqli_native(db, code, "reading the database header", detail);
    if (app == PERS_SQLITE_APPLICATION_ID)
        *kind = PSQLI_FILE_OURS;
    else if (app == 0 && objects == 0 && *version == 0)
        *kind = PSQLI_FILE_EMPTY;
    else {
        *kind = PSQLI_FILE_FOREIGN;
        pers_detail_set(detail,
                        "the file is an SQLite database but not one of this backend "
                        "(application_id 0x%08llx, user_version %lld, %lld schema objects; "
                        "ours have application_id 0x%08x); nothing was changed",
                        (unsigned long long)(uint32_t)app, (long long)*version,
                        (long long)objects, (unsigned)PERS_SQLITE_APPLICATION_ID);
        return PERS_ERR_CONFIG;
    }
    if (*kind == PSQLI_FILE_OURS && *version > PERS_SQLITE_SCHEMA_VERSION) {
        pers_detail_set(detail,
                        "the database has schema version %lld, written by a newer version of "
                        "this backend (this build reads up to version %d); nothing was changed",
                        (long long)*version, PERS_SQLITE_SCHEMA_VERSION);
        return PERS_ERR_CONFIG;
    }
    if (*kind == PSQLI_FILE_OURS && *version < 1) {
        pers_detail_set(detail, "the database carries our application_id but schema version "
                                "%lld; nothing was changed",
                        (long long)*version);
        return PERS_ERR_CORRUPT;
    }
    return PERS_OK;
}

/* Runs the migration steps from version `from` up to `to` on db, inside the caller's
   transaction, and records the version. */
static pers_result psqli_migrate(sqlite3 *db, int64_t from, int64_t to, pers_detail *detail)
{
    char sql[96];
    int64_t v;
    int code;
    for (v = from; v < to; v++) {
        code = sqlite3_exec(db, psqli_migrations[v], NULL, NULL, NULL);
        if (code != SQLITE_OK)
            return psqli_native(db, code, "migrating the schema", detail);
    }
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
             (int)PERS_SQLITE_APPLICATION_ID, (int)to);
    code = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (code != SQLITE_OK)
        return psqli_native(db, code, "recording the schema version", detail);
    return PERS_OK;
}

/* Makes db hold our current schema: classify (reads only), refuse what is not ours or newer,
   then switch to WAL and create or migrate under BEGIN IMMEDIATE, classifying again there. */
static pers_result psqli_prepare_schema(psqli_store *s, pers_detail *detail)
{
    int kind = PSQLI_FILE_EMPTY, code;
    int64_t version = 0;
    pers_result rc = psqli_classify(s->db, &kind, &version, detail);
    sqlite3_stmt *st = NULL;
    if (rc != PERS_OK)
        return rc;
    /* Ours (or empty): WAL is persistent in the file, so this writes only the first time. */
    code = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (code == SQLITE_OK)
        code = sqlite3_step(st);
    if (code == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
            pers_detail_set(detail, "the database cannot use WAL mode (journal_mode is %s)",
                            mode != NULL ? (const char *)mode : "unknown");
            sqlite3_finalize(st);
            return PERS_ERR_UNAVAILABLE;
        }
        code = SQLITE_OK;
    }
    if (code != SQLITE_OK) {
        rc = psqli_native(s->db, code, "switching to WAL mode", detail);
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    if (kind == PSQLI_FILE_OURS && version == PERS_SQLITE_SCHEMA_VERSION)
        return PERS_OK;
    if ((rc = psqli_begin(s, detail)) != PERS_OK)
        return rc;
    rc = psqli_classify(s->db, &kind, &version, detail); /* another process may have won */
    if (rc == PERS_OK && version < PERS_SQLITE_SCHEMA_VERSION) {
        rc = psqli_migrate(s->db, kind == PSQLI_FILE_EMPTY ? 0 : version,
                           PERS_SQLITE_SCHEMA_VERSION, detail);
        if (rc == PERS_OK) {
            char line[PSQLI_PATH_MAX + 96];
            snprintf(line, sizeof line, "persistence sqlite: %s schema version %d in %s",
                     kind == PSQLI_FILE_EMPTY ? "created" : "migrated to",
                     PERS_SQLITE_SCHEMA_VERSION, s->path);
            psqli_log(s, PLG_LOG_INFO, line);
        }
    }
    return psqli_finish(s, rc, detail);
}

static void psqli_close_store(void *backend);

static pers_result psqli_open_store(const plg_config *config, const pers_open_args *args,
                                    void **backend, pers_detail *detail)
{
    psqli_store *s;
    plg_allocator alloc;
    const char *path, *sync;
    int64_t v;
    int code, limit;
    pers_result rc;
    if (backend == NULL) {
        pers_detail_set(detail, "backend is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *backend = NULL;
    path = plg_config_string(config, "path");
    if (path == NULL || path[0] == '\0') {
        pers_detail_set(detail, "configuration key \"path\" is required: the database file");
        return PERS_ERR_CONFIG;
    }
    if (strlen(path) > PSQLI_PATH_MAX) {
        pers_detail_set(detail, "configuration key \"path\" is longer than %d bytes",
                        PSQLI_PATH_MAX);
        return PERS_ERR_CONFIG;
    }
    memset(&alloc, 0, sizeof alloc);
    /* A field is read only when the caller's struct covers it (ABI policy). */
#define PSQLI_ARG_(field)                                                                          \
    (args != NULL && PERS_FIELD_FITS(pers_open_args, field, args->struct_size))
    if (PSQLI_ARG_(allocator))
        alloc = args->allocator;
    s = (psqli_store *)pers_alloc(&alloc, sizeof *s);
    if (s == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    if (PSQLI_ARG_(clock))
        s->clock = args->clock;
    if (PSQLI_ARG_(logger))
        s->logger = args->logger;
    if (PSQLI_ARG_(flags))
        s->validated = (args->flags & PERS_OPEN_VALIDATED) != 0;
#undef PSQLI_ARG_
    if (s->clock.now_ms == NULL) {
        s->clock.now_ms = pers_wall_clock_ms;
        s->clock.user = NULL;
    }
    memcpy(s->path, path, strlen(path) + 1);
    s->max_payload = PSQLI_DEFAULT_MAX_PAYLOAD;
    v = plg_config_integer(config, "max_payload_bytes");
    if (v > 0)
        s->max_payload = (uint64_t)v;
    s->busy_timeout_ms = PSQLI_DEFAULT_BUSY_MS;
    if (plg_config_is_set(config, "busy_timeout"))
        s->busy_timeout_ms = plg_config_duration_ms(config, "busy_timeout");
    if (s->busy_timeout_ms > 2147483647)
        s->busy_timeout_ms = 2147483647;
    s->synchronous_full = 1;
    sync = plg_config_string(config, "synchronous");
    if (sync != NULL && (strcmp(sync, "NORMAL") == 0 || strcmp(sync, "normal") == 0))
        s->synchronous_full = 0;
    else if (sync != NULL && strcmp(sync, "FULL") != 0 && strcmp(sync, "full") != 0) {
        pers_free(&alloc, s, sizeof *s);
        pers_detail_set(detail, "configuration key \"synchronous\" must be FULL or NORMAL");
        return PERS_ERR_CONFIG;
    }
    s->id_prefix = (uint64_t)(uintptr_t)s * UINT64_C(0x9e3779b97f4a7c15) ^
                   (uint64_t)pers_wall_clock_ms(NULL) * UINT64_C(0xbf58476d1ce4e5b9);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pers_free(&alloc, s, sizeof *s);
        pers_detail_set(detail, "pthread_mutex_init failed");
        return PERS_ERR_INTERNAL;
    }
    /* Optional: without it every complete_batch takes the statement with RETURNING. */
    s->leases = (psqli_lease_slot *)pers_alloc(&alloc, PSQLI_LEASE_SLOTS * sizeof *s->leases);
    if (s->leases != NULL)
        memset(s->leases, 0, PSQLI_LEASE_SLOTS * sizeof *s->leases);
    if (sqlite3_threadsafe() == 0) {
        /* Our mutex serialises one connection; SQLite's own globals need its thread support. */
        psqli_close_store(s);
        pers_detail_set(detail, "libsqlite3 was built with SQLITE_THREADSAFE=0; this backend "
                                "needs a thread-safe build");
        return PERS_ERR_UNAVAILABLE;
    }
    code = sqlite3_open_v2(path, &s->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (code != SQLITE_OK) {
        rc = psqli_native(s->db, code, "opening the database file", detail);
        if ((code & 0xff) == SQLITE_CANTOPEN)
            rc = PERS_ERR_CONFIG; /* the path itself is wrong (see ERRORS) */
        psqli_close_store(s);
        return rc;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, (int)s->busy_timeout_ms);
    rc = psqli_prepare_schema(s, detail);
    if (rc == PERS_OK) {
        /* temp_store MEMORY keeps the statement and savepoint journals of the multi-row
           statements in memory (bounded by the pages one batch touches); on disk they are a
           temporary file created and written for every batch. */
        code = sqlite3_exec(s->db,
                            s->synchronous_full
                                ? "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY"
                                : "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY",
                            NULL, NULL, NULL);
        if (code != SQLITE_OK)
            rc = psqli_native(s->db, code, "setting synchronous", detail);
    }
    if (rc != PERS_OK) {
        psqli_close_store(s);
        return rc;
    }
    /* SQLite refuses blobs beyond SQLITE_LIMIT_LENGTH: never accept what cannot be stored. */
    limit = sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1);
    if (limit > 0 && s->max_payload > (uint64_t)limit)
        s->max_payload = (uint64_t)limit;
    *backend = s;
    return PERS_OK;
}

static void psqli_close_store(void *backend)
{
    psqli_store *s = (psqli_store *)backend;
    plg_allocator alloc;
    int i, k;
    if (s == NULL)
        return;
    for (i = 0; i < PSQLI_ST_COUNT_; i++)
        if (s->stmts[i] != NULL)
            sqlite3_finalize(s->stmts[i]);
    for (i = 0; i < PSQLI_MULTI_COUNT_; i++)
        for (k = 0; k <= PSQLI_ROWS_LOG2; k++)
            sqlite3_finalize(s->multi[i][k]); /* harmless on NULL */
    if (s->db != NULL)
        sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->lock);
    alloc = s->alloc;
    if (s->leases != NULL)
        pers_free(&alloc, s->leases, PSQLI_LEASE_SLOTS * sizeof *s->leases);
    pers_free(&alloc, s, sizeof *s);
}

static pers_result psqli_capabilities(void *backend, pers_caps *caps, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    if (s == NULL || caps == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(caps, 0, sizeof *caps);
    caps->flags = PERS_CAP_BATCH | PERS_CAP_STATS | PERS_CAP_DEAD_LETTER |
                  PERS_CAP_TASK_RETENTION | PERS_CAP_RESULTS | PERS_CAP_SUBSCRIPTIONS |
                  PERS_CAP_HEALTH | PERS_CAP_DURABLE | PERS_CAP_SHARED |
                  PERS_CAP_COMPLETE_BATCH;
    caps->max_payload_bytes = s->max_payload;
    caps->max_batch = PERS_BATCH_MAX;
    return PERS_OK;
}

static pers_result psqli_health(void *backend, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc = PERS_OK;
    sqlite3_stmt *st;
    if (s == NULL) {
        pers_detail_set(detail, "NULL backend");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    st = psqli_stmt(s, PSQLI_ST_TOKEN, &rc, detail);
    if (st != NULL) {
        int code = psqli_step(s, st, "reading the token counter", &rc, detail);
        if (code == SQLITE_ROW)
            sqlite3_reset(st);
        else if (code == SQLITE_DONE) {
            pers_detail_set(detail, "the token counter row of pq_meta is missing");
            rc = PERS_ERR_CORRUPT;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Enqueue
   ------------------------------------------------------------------------------------------- */

/* One enqueue inside the caller's write transaction. */
/* The checks of one enqueue request: in full for direct callers, the backend's own limit
   always. */
static pers_result psqli_enqueue_check(psqli_store *s, const pers_enqueue_req *req,
                                       pers_detail *detail)
{
    /* A store has checked all this; direct callers of the vtable get the same answers. */
    if (!s->validated &&
        (!psqli_name_ok(s, req->tenant) || !psqli_name_ok(s, req->queue) ||
         (req->payload == NULL && req->payload_len > 0) ||
         (req->idempotency_key != NULL && !psqli_key_ok(s, req->idempotency_key)) ||
         (req->task_id != NULL && !psqli_key_ok(s, req->task_id)) || req->delay_ms < 0 ||
         req->delay_ms > PERS_DURATION_MAX_MS || req->run_at_ms < 0 ||
         req->priority < PERS_PRIORITY_MIN || req->priority > PERS_PRIORITY_MAX ||
         req->max_attempts > PERS_ATTEMPTS_MAX)) {
        pers_detail_set(detail, "invalid enqueue request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)req->payload_len > s->max_payload) {
        pers_detail_set(detail, "payload is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)req->payload_len, (unsigned long long)s->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    return PERS_OK;
}

/* An id for a request that names none (S9): the store's prefix, then a counter, in hex. */
static void psqli_generate_id(psqli_store *s, char out[PERS_GENERATED_ID_LEN + 1])
{
    uint64_t n = s->id_counter++, p = s->id_prefix;
    int i;
    for (i = 15; i >= 0; i--, p >>= 4)
        out[i] = "0123456789abcdef"[p & 15u];
    for (i = 31; i >= 16; i--, n >>= 4)
        out[i] = "0123456789abcdef"[n & 15u];
    out[32] = '\0';
}

static pers_result psqli_enqueue_one(psqli_store *s, const pers_enqueue_req *req, int64_t now,
                                     pers_enqueue_res *res, pers_detail *detail)
{
    char generated[PERS_GENERATED_ID_LEN + 1];
    const char *id = req->task_id;
    pers_result rc = psqli_enqueue_check(s, req, detail);
    sqlite3_stmt *st;
    int64_t due;
    int bad = SQLITE_OK, code;

    if (rc != PERS_OK)
        return rc;
    if (req->idempotency_key != NULL) {
        if ((st = psqli_stmt(s, PSQLI_ST_FIND_IDEM, &rc, detail)) == NULL)
            return rc;
        psqli_bind_text(st, 1, req->tenant, &bad);
        psqli_bind_text(st, 2, req->queue, &bad);
        psqli_bind_text(st, 3, req->idempotency_key, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            return psqli_native(s->db, bad, "binding", detail);
        }
        code = psqli_step(s, st, "looking up the idempotency key", &rc, detail);
        if (code == SQLITE_ROW) {
            psqli_copy_text(res->task_id, sizeof res->task_id, sqlite3_column_text(st, 0));
            res->duplicate = 1;
            sqlite3_reset(st);
            return PERS_OK;
        }
        if (rc != PERS_OK)
            return rc;
    }
    if (id == NULL) {
        psqli_generate_id(s, generated);
        id = generated;
    }
    due = req->run_at_ms > 0 ? req->run_at_ms : now + req->delay_ms;
    if ((st = psqli_stmt(s, PSQLI_ST_INSERT, &rc, detail)) == NULL)
        return rc;
    psqli_bind_text(st, 1, req->tenant, &bad);
    psqli_bind_text(st, 2, req->queue, &bad);
    psqli_bind_text(st, 3, id, &bad);
    psqli_bind_text(st, 4, req->idempotency_key, &bad);
    psqli_bind_int(st, 5, due <= now ? PERS_STATE_READY : PERS_STATE_SCHEDULED, &bad);
    psqli_bind_int(st, 6, req->priority, &bad);
    psqli_bind_int(st, 7, req->max_attempts ? req->max_attempts : PERS_DEFAULT_MAX_ATTEMPTS, &bad);
    psqli_bind_int(st, 8, now, &bad);
    psqli_bind_int(st, 9, due, &bad);
    psqli_bind_blob(st, 10, req->payload, req->payload_len, &bad);
    if (bad != SQLITE_OK) {
        sqlite3_reset(st);
        return psqli_native(s->db, bad, "binding", detail);
    }
    code = sqlite3_step(st);
    if (code == SQLITE_DONE) {
        sqlite3_reset(st);
        memcpy(res->task_id, id, strlen(id) + 1);
        res->duplicate = 0;
        return PERS_OK;
    }
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
        /* The idempotency key was looked up first, so it is the id (S9 after S8). */
        sqlite3_reset(st);
        pers_detail_set(detail, "a task with id \"%s\" already exists in tenant \"%s\"", id,
                        req->tenant);
        return PERS_ERR_DUPLICATE;
    }
    rc = psqli_native(s->db, code, "inserting the task", detail);
    sqlite3_reset(st);
    return rc;
}

static pers_result psqli_enqueue(void *backend, const pers_enqueue_req *req,
                                 pers_enqueue_res *res, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    if (s == NULL || req == NULL || res == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    rc = psqli_begin(s, detail);
    if (rc == PERS_OK)
        rc = psqli_finish(s, psqli_enqueue_one(s, req, psqli_now(s), res, detail), detail);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Inserts reqs[0 .. 2^log2), checked and without idempotency keys, with one multi-row
   INSERT OR FAIL (no statement journal: a refused statement is not backed out, the caller
   rolls back the transaction). PERS_OK; PERS_ERR_DUPLICATE when a constraint refused a row;
   or the failure. */
static pers_result psqli_insert_piece(psqli_store *s, const pers_enqueue_req *reqs, int log2,
                                      int64_t now, pers_enqueue_res *res, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    sqlite3_stmt *st = psqli_multi(s, PSQLI_MULTI_INSERT, log2, &rc, detail);
    int bad = SQLITE_OK, r, p = 4, code;
    if (st == NULL)
        return rc;
    psqli_bind_text(st, 1, reqs[0].tenant, &bad);
    psqli_bind_text(st, 2, reqs[0].queue, &bad);
    psqli_bind_int(st, 3, now, &bad);
    for (r = 0; r < (1 << log2); r++, p += 6) {
        const pers_enqueue_req *req = &reqs[r];
        int64_t due = req->run_at_ms > 0 ? req->run_at_ms : now + req->delay_ms;
        if (req->task_id != NULL)
            memcpy(res[r].task_id, req->task_id, strlen(req->task_id) + 1);
        else
            psqli_generate_id(s, res[r].task_id);
        res[r].duplicate = 0;
        psqli_bind_text(st, p, res[r].task_id, &bad);
        psqli_bind_int(st, p + 1, due <= now ? PERS_STATE_READY : PERS_STATE_SCHEDULED, &bad);
        psqli_bind_int(st, p + 2, req->priority, &bad);
        psqli_bind_int(st, p + 3,
                       req->max_attempts ? req->max_attempts : PERS_DEFAULT_MAX_ATTEMPTS, &bad);
        psqli_bind_int(st, p + 4, due, &bad);
        psqli_bind_blob(st, p + 5, req->payload, req->payload_len, &bad);
    }
    if (bad != SQLITE_OK)
        return psqli_run(s, st, bad, "binding", detail);
    code = sqlite3_step(st);
    sqlite3_reset(st);
    if (code == SQLITE_DONE)
        return PERS_OK;
    if ((code & 0xff) == SQLITE_CONSTRAINT)
        return PERS_ERR_DUPLICATE;
    return psqli_native(s->db, code, "inserting tasks", detail);
}

/* Enqueues reqs[start .. end) (checked, no idempotency keys) in multi-row pieces. A piece
   that a constraint refuses sets *refused (the caller starts again one request at a time);
   any other failure is the storage's, reported at *failed. */
static pers_result psqli_enqueue_run(psqli_store *s, const pers_enqueue_req *reqs, size_t start,
                                     size_t end, int64_t now, pers_enqueue_res *res,
                                     size_t *failed, int *refused, pers_detail *detail)
{
    while (start < end) {
        int log2 = psqli_piece_log2(end - start);
        pers_result rc = psqli_insert_piece(s, reqs + start, log2, now, res + start, detail);
        if (rc != PERS_OK) {
            *refused = rc == PERS_ERR_DUPLICATE;
            *failed = start;
            return rc;
        }
        start += (size_t)1 << log2;
    }
    return PERS_OK;
}

/* The requests of a batch inside the caller's transaction. With multi, runs of requests
   without an idempotency key go in multi-row INSERTs, and a request with one (it must first
   be looked up, S8) or one that fails its checks goes alone; without, every request goes
   alone. *failed: the request a failure is reported at; *refused: a multi-row INSERT was
   refused by a constraint, and some of its rows may be in (roll back, start again alone). */
static pers_result psqli_enqueue_requests(psqli_store *s, const pers_enqueue_req *reqs,
                                          size_t count, int64_t now, int multi,
                                          pers_enqueue_res *res, size_t *failed, int *refused,
                                          pers_detail *detail)
{
    pers_result rc = PERS_OK;
    size_t start = 0, i;
    for (i = 0; i < count && rc == PERS_OK; i++) {
        if (multi && reqs[i].idempotency_key == NULL &&
            psqli_enqueue_check(s, &reqs[i], NULL) == PERS_OK) {
            if (i + 1 - start == PSQLI_ROWS_MAX) {
                rc = psqli_enqueue_run(s, reqs, start, i + 1, now, res, failed, refused, detail);
                start = i + 1;
            }
            continue;
        }
        rc = psqli_enqueue_run(s, reqs, start, i, now, res, failed, refused, detail);
        if (rc == PERS_OK && (rc = psqli_enqueue_one(s, &reqs[i], now, &res[i], detail)) !=
                                 PERS_OK)
            *failed = i;
        start = i + 1;
    }
    if (rc == PERS_OK)
        rc = psqli_enqueue_run(s, reqs, start, count, now, res, failed, refused, detail);
    return rc;
}

static pers_result psqli_enqueue_batch(void *backend, const pers_enqueue_req *reqs, size_t count,
                                       pers_enqueue_res *res, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    size_t i = 0, failed = (size_t)-1; /* the request a failure is reported at, if any */
    int refused = 0;
    if (s == NULL || reqs == NULL || res == NULL || count == 0) {
        pers_detail_set(detail, "NULL argument or empty batch");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    /* Kept behind a store too: a few bytes compared per request guard S19's atomicity. */
    for (i = 1; i < count; i++)
        if (reqs[i].tenant == NULL || reqs[i].queue == NULL || reqs[0].tenant == NULL ||
            reqs[0].queue == NULL || strcmp(reqs[i].tenant, reqs[0].tenant) != 0 ||
            strcmp(reqs[i].queue, reqs[0].queue) != 0) {
            pers_detail_set(detail, "request %lu names another tenant or queue than request 0; "
                                    "a batch is for one tenant and queue (S19)",
                            (unsigned long)i);
            return PERS_ERR_INVALID_ARGUMENT;
        }
    pthread_mutex_lock(&s->lock);
    rc = psqli_begin(s, detail);
    if (rc == PERS_OK)
        rc = psqli_enqueue_requests(s, reqs, count, psqli_now(s), 1, res, &failed, &refused,
                                    detail);
    if (refused) {
        /* A refused multi-row INSERT: nothing of this transaction is kept, and the batch is
           done again one request at a time, which finds the refused request and gives its
           own outcome and message. */
        psqli_rollback(s);
        if ((rc = psqli_begin(s, detail)) == PERS_OK)
            rc = psqli_enqueue_requests(s, reqs, count, psqli_now(s), 0, res, &failed,
                                        &refused, detail);
    }
    if (rc != PERS_OK && failed != (size_t)-1 && detail != NULL) {
        char inner[PERS_DETAIL_SIZE];
        memcpy(inner, detail->text, sizeof inner);
        inner[sizeof inner - 1] = '\0';
        pers_detail_set(detail, "request %lu: %s; nothing was enqueued", (unsigned long)failed,
                        inner);
    }
    rc = psqli_finish(s, rc, detail);
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        memset(res, 0, count * sizeof *res);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Claim
   ------------------------------------------------------------------------------------------- */

/* The queue slot of (tenant, queue), taking the next slot (a new generation) when absent. */
static uint32_t psqli_queue_slot_of(psqli_store *s, const char *tenant, const char *queue)
{
    uint32_t i;
    for (i = 0; i < PSQLI_QUEUE_SLOTS; i++)
        if (s->queues[i].generation != 0 && strcmp(s->queues[i].queue, queue) == 0 &&
            strcmp(s->queues[i].tenant, tenant) == 0)
            return i;
    i = s->next_queue++ % PSQLI_QUEUE_SLOTS;
    if (++s->queues[i].generation == 0)
        s->queues[i].generation = 1;
    psqli_copy_text(s->queues[i].tenant, sizeof s->queues[i].tenant,
                    (const unsigned char *)tenant);
    psqli_copy_text(s->queues[i].queue, sizeof s->queues[i].queue, (const unsigned char *)queue);
    return i;
}

/* Notes the queue of each lease a committed claim issued (see psqli_lease_slot). */
static void psqli_leases_note(psqli_store *s, const char *tenant, const pers_task *tasks,
                              size_t n)
{
    const char *queue = NULL;
    uint32_t q = 0;
    size_t k;
    if (s->leases == NULL)
        return;
    for (k = 0; k < n; k++) {
        psqli_lease_slot *slot = &s->leases[tasks[k].lease_token & (PSQLI_LEASE_SLOTS - 1)];
        if (queue == NULL || strcmp(queue, tasks[k].queue) != 0) {
            queue = tasks[k].queue;
            q = psqli_queue_slot_of(s, tenant, queue);
        }
        slot->token = tasks[k].lease_token;
        slot->queue = q;
        slot->generation = s->queues[q].generation;
    }
}

/* The queue slot of a lease this connection issued, or PSQLI_QUEUE_SLOTS when not known. */
static uint32_t psqli_lease_queue(const psqli_store *s, const pers_lease *lease)
{
    const psqli_lease_slot *slot;
    if (s->leases == NULL || lease->token == 0)
        return PSQLI_QUEUE_SLOTS;
    slot = &s->leases[lease->token & (PSQLI_LEASE_SLOTS - 1)];
    if (slot->token != lease->token || s->queues[slot->queue].generation != slot->generation ||
        strcmp(s->queues[slot->queue].tenant, lease->tenant) != 0)
        return PSQLI_QUEUE_SLOTS;
    return slot->queue;
}

/* S2 and S7 for one queue, as of now: the promotion and the expiry statements. */
static pers_result psqli_settle_queue(psqli_store *s, const char *tenant, const char *queue,
                                      int64_t now, pers_detail *detail)
{
    static const int which[2] = { PSQLI_ST_PROMOTE, PSQLI_ST_EXPIRE };
    pers_result rc = PERS_OK;
    int i;
    for (i = 0; i < 2; i++) {
        int bad = SQLITE_OK;
        sqlite3_stmt *st = psqli_stmt(s, which[i], &rc, detail);
        if (st == NULL)
            return rc;
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, queue, &bad);
        psqli_bind_int(st, 3, now, &bad);
        rc = psqli_run(s, st, bad, i == 0 ? "promoting due tasks" : "reclaiming expired leases",
                       detail);
        if (rc != PERS_OK)
            return rc;
    }
    return PERS_OK;
}

/* The lease-token counter (S4) as of now, inside the caller's transaction. */
static pers_result psqli_read_token(psqli_store *s, int64_t *value, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_TOKEN, &rc, detail);
    int code;
    if (st == NULL)
        return rc;
    code = psqli_step(s, st, "reading the token counter", &rc, detail);
    if (code == SQLITE_ROW) {
        *value = (int64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return PERS_OK;
    }
    if (code == SQLITE_DONE) {
        pers_detail_set(detail, "the token counter row of pq_meta is missing");
        return PERS_ERR_CORRUPT;
    }
    return rc;
}

/* S2, S3, S4, S6 for one queue inside the claim's transaction: reads up to `want` ready tasks,
   in claim order, into tasks[], then leases exactly those rows with one UPDATE (the same
   ordered pick, so the same rows, ranked alike) and advances the token counter by their
   number. The tasks are filled as their rows are after the UPDATE. *counter is the token
   counter, read on first need (-1 until then) and kept current. On failure the tasks of this
   queue are released and *got is unchanged.
   (Reading first and updating second costs two passes over the picked index entries; an
   UPDATE ... RETURNING does it in one but buffers every returned row in a temporary b-tree,
   which SQLite 3.40 makes dearer than the second pass.) */
static pers_result psqli_claim_queue(psqli_store *s, const pers_claim_req *req, const char *queue,
                                     int64_t now, size_t want, pers_task *tasks, size_t *got,
                                     int64_t *counter, pers_detail *detail)
{
    pers_result rc = psqli_settle_queue(s, req->tenant, queue, now, detail);
    int64_t seq[PSQLI_ROWS_MAX];
    size_t n = 0, k;
    if (rc != PERS_OK)
        return rc;
    /* Rounds of up to PSQLI_ROWS_MAX: pick the best ready tasks, then lease exactly those
       rows by rowid (S3 order; token = counter + rank, S4). A round that finds fewer than it
       asked for has emptied the queue. */
    while (rc == PERS_OK && n < want) {
        size_t ask = want - n < PSQLI_ROWS_MAX ? want - n : PSQLI_ROWS_MAX, picked = 0, done;
        sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_CLAIM_PICK, &rc, detail);
        int bad = SQLITE_OK;
        if (st == NULL)
            break;
        psqli_bind_text(st, 1, req->tenant, &bad);
        psqli_bind_text(st, 2, queue, &bad);
        psqli_bind_int(st, 3, (int64_t)ask, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
            break;
        }
        while (picked < ask && psqli_step(s, st, "claiming", &rc, detail) == SQLITE_ROW) {
            seq[picked] = (int64_t)sqlite3_column_int64(st, 0);
            if ((rc = psqli_fill_task(s, st, &tasks[n + picked], detail)) != PERS_OK)
                break;
            picked++;
        }
        sqlite3_reset(st);
        if (rc == PERS_OK && picked > 0 && *counter < 0)
            rc = psqli_read_token(s, counter, detail);
        for (done = 0; rc == PERS_OK && done < picked;) {
            int log2 = psqli_piece_log2(picked - done), r;
            if ((st = psqli_multi(s, PSQLI_MULTI_CLAIM, log2, &rc, detail)) == NULL)
                break;
            psqli_bind_text(st, 1, req->worker_id, &bad);
            psqli_bind_int(st, 2, now + req->lease_ms, &bad);
            for (r = 0; r < (1 << log2); r++, done++) {
                psqli_bind_int(st, 3 + 2 * r, seq[done], &bad);
                psqli_bind_int(st, 4 + 2 * r, *counter + (int64_t)(n + done) + 1, &bad);
            }
            rc = psqli_run(s, st, bad, "claiming", detail);
            if (rc == PERS_OK && sqlite3_changes(s->db) != (1 << log2)) {
                pers_detail_set(detail, "claim leased %d tasks of the %d it picked",
                                sqlite3_changes(s->db), 1 << log2);
                rc = PERS_ERR_INTERNAL;
            }
        }
        n += picked;
        if (picked < ask)
            break;
    }
    if (rc == PERS_OK && n > 0) {
        sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_BUMP_TOKEN, &rc, detail);
        int bad = SQLITE_OK;
        if (st != NULL) {
            psqli_bind_int(st, 1, (int64_t)n, &bad);
            rc = psqli_run(s, st, bad, "advancing the token counter", detail);
        }
    }
    if (rc != PERS_OK) {
        for (k = 0; k < n; k++)
            pers_task_clear(&s->alloc, &tasks[k]);
        return rc;
    }
    for (k = 0; k < n; k++) {
        pers_task *t = &tasks[k];
        t->state = PERS_STATE_LEASED;
        t->attempts++;
        psqli_copy_text(t->worker_id, sizeof t->worker_id, (const unsigned char *)req->worker_id);
        t->lease_expires_ms = now + req->lease_ms;
        t->lease_token = (uint64_t)(*counter + (int64_t)k + 1); /* counter + rank (S3, S4) */
    }
    *counter += (int64_t)n;
    *got += n;
    return PERS_OK;
}

static pers_result psqli_claim(void *backend, const pers_claim_req *req, pers_task *tasks,
                               pers_claim_res *res, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    size_t got = 0, i;
    int64_t now, next_due = PERS_NO_TIME, counter = -1;
    pers_result rc;
    if (s == NULL || req == NULL || tasks == NULL || res == NULL || req->queues == NULL ||
        (!s->validated &&
         (!psqli_name_ok(s, req->tenant) || !psqli_name_ok(s, req->worker_id) ||
          req->lease_ms <= 0 || req->lease_ms > PERS_DURATION_MAX_MS || req->max_tasks == 0 ||
          req->max_tasks > PERS_CLAIM_MAX))) {
        pers_detail_set(detail, "invalid claim request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    rc = psqli_begin(s, detail);
    if (rc != PERS_OK) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    now = psqli_now(s);
    for (i = 0; i < req->queue_count && got < req->max_tasks && rc == PERS_OK; i++)
        if (psqli_name_ok(s, req->queues[i]))
            rc = psqli_claim_queue(s, req, req->queues[i], now, req->max_tasks - got,
                                   tasks + got, &got, &counter, detail);
    if (rc == PERS_OK && got == 0) {
        /* S18: nothing ready; every queue has been settled by the loop above. */
        for (i = 0; i < req->queue_count && rc == PERS_OK; i++) {
            sqlite3_stmt *st;
            int bad = SQLITE_OK, code;
            if (!psqli_name_ok(s, req->queues[i]))
                continue;
            if ((st = psqli_stmt(s, PSQLI_ST_NEXT_DUE, &rc, detail)) == NULL)
                break;
            psqli_bind_text(st, 1, req->tenant, &bad);
            psqli_bind_text(st, 2, req->queues[i], &bad);
            if (bad != SQLITE_OK) {
                sqlite3_reset(st);
                rc = psqli_native(s->db, bad, "binding", detail);
                break;
            }
            code = psqli_step(s, st, "reading the next due time", &rc, detail);
            if (code == SQLITE_ROW) {
                if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                    int64_t due = (int64_t)sqlite3_column_int64(st, 0);
                    if (next_due == PERS_NO_TIME || due < next_due)
                        next_due = due;
                }
                sqlite3_reset(st);
            }
        }
    }
    rc = psqli_finish(s, rc, detail);
    if (rc == PERS_OK)
        psqli_leases_note(s, req->tenant, tasks, got);
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK) {
        for (i = 0; i < got; i++)
            pers_task_clear(&s->alloc, &tasks[i]);
        got = 0;
        next_due = PERS_NO_TIME;
    }
    res->count = got;
    res->next_due_ms = got == 0 ? next_due : PERS_NO_TIME;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Worker operations (S5). extend_lease and abandon try a fast path that succeeds on a live
   lease in one statement; complete and nack, which must know the row (its queue for the
   counters, its attempts), read it by (tenant, id) and then update it by rowid. Either way
   the other cases of S5 are told apart from the same read, in C.
   ------------------------------------------------------------------------------------------- */

/* A lease is checked in full only for direct callers (see psqli_name_ok). */
static int psqli_lease_ok(const psqli_store *s, const pers_lease *lease)
{
    return lease != NULL &&
           (s->validated || (psqli_name_ok(s, lease->tenant) && psqli_key_ok(s, lease->task_id) &&
                             lease->token != 0));
}

/* Binds ?1 tenant, ?2 id, ?3 token, ?4 now. */
static void psqli_bind_lease(sqlite3_stmt *st, const pers_lease *lease, int64_t now, int *bad)
{
    psqli_bind_text(st, 1, lease->tenant, bad);
    psqli_bind_text(st, 2, lease->task_id, bad);
    psqli_bind_int(st, 3, (int64_t)lease->token, bad);
    psqli_bind_int(st, 4, now, bad);
}

/* Applies S2/S7 to one task (inside the caller's transaction). */
static pers_result psqli_settle_task(psqli_store *s, const char *tenant, const char *id,
                                     int64_t now, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    int bad = SQLITE_OK;
    sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_SETTLE_TASK, &rc, detail);
    if (st == NULL)
        return rc;
    psqli_bind_text(st, 1, tenant, &bad);
    psqli_bind_text(st, 2, id, &bad);
    psqli_bind_int(st, 3, now, &bad);
    return psqli_run(s, st, bad, "applying due promotions and expiries", detail);
}

/* What a worker operation needs of the row a lease names (LEASE_STATE). */
typedef struct psqli_lease_row {
    pers_task_state state;
    uint64_t token;
    int64_t seq;
    int64_t lease_expires_ms;
    int64_t attempts, max_attempts;
    char queue[PERS_NAME_MAX + 1];
} psqli_lease_row;

enum { PSQLI_LEASE_LIVE = 0, PSQLI_LEASE_FINISHED = 1, PSQLI_LEASE_LOST = 2 };

/* Reads the row of (tenant, task id) inside the caller's transaction: PERS_OK with *row,
   PERS_ERR_NOT_FOUND (S5 a, S13), or a failure of the storage. */
static pers_result psqli_lease_read(psqli_store *s, const pers_lease *lease, psqli_lease_row *row,
                                    pers_detail *detail)
{
    pers_result rc = PERS_OK;
    sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_LEASE_STATE, &rc, detail);
    int bad = SQLITE_OK, code;
    if (st == NULL)
        return rc;
    psqli_bind_text(st, 1, lease->tenant, &bad);
    psqli_bind_text(st, 2, lease->task_id, &bad);
    if (bad != SQLITE_OK) {
        sqlite3_reset(st);
        return psqli_native(s->db, bad, "binding", detail);
    }
    code = psqli_step(s, st, "reading the task's lease", &rc, detail);
    if (code == SQLITE_DONE) {
        pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", lease->task_id,
                        lease->tenant);
        return PERS_ERR_NOT_FOUND;
    }
    if (code != SQLITE_ROW)
        return rc;
    row->state = (pers_task_state)sqlite3_column_int(st, 0);
    row->token = (uint64_t)sqlite3_column_int64(st, 1);
    row->seq = (int64_t)sqlite3_column_int64(st, 2);
    psqli_copy_text(row->queue, sizeof row->queue, sqlite3_column_text(st, 3));
    row->lease_expires_ms = (int64_t)sqlite3_column_int64(st, 4);
    row->attempts = (int64_t)sqlite3_column_int64(st, 5);
    row->max_attempts = (int64_t)sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    return PERS_OK;
}

/* S5 b, c, d for a row read as stored: S2 and S7 need not be applied first, since a lapsed
   lease is lost whatever its expiry made of the task, and only a complete finishes one. */
static int psqli_lease_kind(const psqli_lease_row *row, const pers_lease *lease, int64_t now)
{
    if (row->token != lease->token)
        return PSQLI_LEASE_LOST;
    if (row->state == PERS_STATE_LEASED)
        return row->lease_expires_ms > now ? PSQLI_LEASE_LIVE : PSQLI_LEASE_LOST;
    if (row->state == PERS_STATE_COMPLETED || row->state == PERS_STATE_FAILED)
        return PSQLI_LEASE_FINISHED;
    return PSQLI_LEASE_LOST;
}

/* PERS_ERR_LEASE_LOST with the task's state as of now in the message. */
static pers_result psqli_lease_lost(const psqli_lease_row *row, const pers_lease *lease,
                                    int64_t now, pers_detail *detail)
{
    pers_task_state state = row->state;
    if (state == PERS_STATE_LEASED && row->lease_expires_ms <= now)
        state = row->attempts >= row->max_attempts ? PERS_STATE_DEAD : PERS_STATE_READY;
    pers_detail_set(detail,
                    "task \"%s\": token %llu is not its current live lease (it is %s%s)",
                    lease->task_id, (unsigned long long)lease->token, pers_state_name(state),
                    state != row->state ? ", its lease having expired" : "");
    return PERS_ERR_LEASE_LOST;
}

/* The tail of extend_lease and abandon when the fast path changed nothing: S5 a, c or d. */
static pers_result psqli_not_live(psqli_store *s, const pers_lease *lease, int64_t now,
                                  pers_detail *detail)
{
    psqli_lease_row row;
    pers_result rc = psqli_lease_read(s, lease, &row, detail);
    if (rc != PERS_OK)
        return rc;
    switch (psqli_lease_kind(&row, lease, now)) {
    case PSQLI_LEASE_FINISHED:
        pers_detail_set(detail, "task \"%s\" is already %s", lease->task_id,
                        pers_state_name(row.state));
        return PERS_ERR_INVALID_STATE;
    case PSQLI_LEASE_LIVE: /* the fast path would have succeeded */
        pers_detail_set(detail, "task \"%s\": a live lease the update did not find",
                        lease->task_id);
        return PERS_ERR_INTERNAL;
    default:
        return psqli_lease_lost(&row, lease, now, detail);
    }
}

static pers_result psqli_extend_lease(void *backend, const pers_lease *lease, int64_t lease_ms,
                                      int64_t *expires_ms, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    int64_t now;
    int bad = SQLITE_OK;
    if (s == NULL || expires_ms == NULL || !psqli_lease_ok(s, lease) ||
        (!s->validated && (lease_ms <= 0 || lease_ms > PERS_DURATION_MAX_MS))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        now = psqli_now(s);
        if ((st = psqli_stmt(s, PSQLI_ST_EXTEND, &rc, detail)) != NULL) {
            psqli_bind_lease(st, lease, now, &bad);
            psqli_bind_int(st, 5, now + lease_ms, &bad);
            rc = psqli_run(s, st, bad, "extending the lease", detail);
        }
        if (rc == PERS_OK && sqlite3_changes(s->db) == 1)
            *expires_ms = now + lease_ms;
        else if (rc == PERS_OK)
            rc = psqli_not_live(s, lease, now, detail);
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        *expires_ms = 0;
    return rc;
}

static pers_result psqli_abandon(void *backend, const pers_lease *lease, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    int64_t now;
    int bad = SQLITE_OK;
    if (s == NULL || !psqli_lease_ok(s, lease)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        now = psqli_now(s);
        if ((st = psqli_stmt(s, PSQLI_ST_ABANDON, &rc, detail)) != NULL) {
            psqli_bind_lease(st, lease, now, &bad);
            rc = psqli_run(s, st, bad, "abandoning the task", detail);
        }
        if (rc == PERS_OK && sqlite3_changes(s->db) != 1)
            rc = psqli_not_live(s, lease, now, detail);
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result psqli_nack(void *backend, const pers_lease *lease, int64_t retry_delay_ms,
                              const char *reason, pers_task_state *state, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    psqli_lease_row row;
    pers_task_state next = PERS_STATE_READY;
    pers_result rc;
    sqlite3_stmt *st;
    int64_t now;
    int bad = SQLITE_OK, dead;
    if (s == NULL || state == NULL || !psqli_lease_ok(s, lease) ||
        (!s->validated && (retry_delay_ms < 0 || retry_delay_ms > PERS_DURATION_MAX_MS ||
                           (reason != NULL && strlen(reason) > PERS_REASON_MAX)))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        now = psqli_now(s);
        rc = psqli_lease_read(s, lease, &row, detail);
        if (rc == PERS_OK) {
            switch (psqli_lease_kind(&row, lease, now)) {
            case PSQLI_LEASE_LIVE:
                break;
            case PSQLI_LEASE_FINISHED:
                pers_detail_set(detail, "task \"%s\" is already %s", lease->task_id,
                                pers_state_name(row.state));
                rc = PERS_ERR_INVALID_STATE;
                break;
            default:
                rc = psqli_lease_lost(&row, lease, now, detail);
                break;
            }
        }
        if (rc == PERS_OK && (st = psqli_stmt(s, PSQLI_ST_NACK, &rc, detail)) != NULL) {
            /* S6: a failure at the last attempt is dead; otherwise retried (S1, S2). */
            dead = row.attempts >= row.max_attempts;
            next = dead ? PERS_STATE_DEAD
                        : retry_delay_ms > 0 ? PERS_STATE_SCHEDULED : PERS_STATE_READY;
            psqli_bind_int(st, 1, row.seq, &bad);
            psqli_bind_int(st, 2, next, &bad);
            psqli_bind_int(st, 3, now + retry_delay_ms, &bad);
            psqli_bind_int(st, 4, dead ? now : 0, &bad);
            psqli_bind_text(st, 5, reason, &bad);
            rc = psqli_run(s, st, bad, "failing the attempt", detail);
        }
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == PERS_OK)
        *state = next;
    return rc;
}

/* Completed and failed counts per (tenant, queue) gathered over the completions of one
   transaction and written to pq_counts once per queue (COUNT_DONE) before it commits. */
#define PSQLI_COUNT_GROUPS 8

typedef struct psqli_counts {
    size_t used;
    struct {
        char tenant[PERS_NAME_MAX + 1];
        char queue[PERS_NAME_MAX + 1];
        int64_t completed, failed;
    } g[PSQLI_COUNT_GROUPS];
} psqli_counts;

static pers_result psqli_counts_flush(psqli_store *s, psqli_counts *c, pers_detail *detail)
{
    pers_result rc = PERS_OK;
    size_t i;
    for (i = 0; i < c->used && rc == PERS_OK; i++) {
        int bad = SQLITE_OK;
        sqlite3_stmt *st = psqli_stmt(s, PSQLI_ST_COUNT_DONE, &rc, detail);
        if (st == NULL)
            break;
        psqli_bind_text(st, 1, c->g[i].tenant, &bad);
        psqli_bind_text(st, 2, c->g[i].queue, &bad);
        psqli_bind_int(st, 3, c->g[i].completed, &bad);
        psqli_bind_int(st, 4, c->g[i].failed, &bad);
        rc = psqli_run(s, st, bad, "counting the finished tasks", detail);
    }
    c->used = 0;
    return rc;
}

static pers_result psqli_counts_add(psqli_store *s, psqli_counts *c, const char *tenant,
                                    const char *queue, int failed, pers_detail *detail)
{
    pers_result rc;
    size_t i;
    for (i = 0; i < c->used; i++)
        if (strcmp(c->g[i].queue, queue) == 0 && strcmp(c->g[i].tenant, tenant) == 0)
            break;
    if (i == PSQLI_COUNT_GROUPS) {
        if ((rc = psqli_counts_flush(s, c, detail)) != PERS_OK)
            return rc;
        i = 0;
    }
    if (i == c->used) {
        psqli_copy_text(c->g[i].tenant, sizeof c->g[i].tenant, (const unsigned char *)tenant);
        psqli_copy_text(c->g[i].queue, sizeof c->g[i].queue, (const unsigned char *)queue);
        c->g[i].completed = c->g[i].failed = 0;
        c->used++;
    }
    if (failed)
        c->g[i].failed++;
    else
        c->g[i].completed++;
    return PERS_OK;
}

/* The argument checks of one completion: in full for direct callers, the backend's own limit
   always. */
static pers_result psqli_completion_check(psqli_store *s, const pers_lease *lease,
                                          const pers_completion *completion, pers_detail *detail)
{
    if (!psqli_lease_ok(s, lease) ||
        (!s->validated && ((completion->data == NULL && completion->data_len > 0) ||
                           (completion->failed != 0 && completion->failed != 1)))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)completion->data_len > s->max_payload) {
        pers_detail_set(detail, "result is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)completion->data_len, (unsigned long long)s->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    return PERS_OK;
}

/* S5 and S12 for one completion inside the caller's write transaction, as of now: PERS_OK,
   PERS_ERR_NOT_FOUND, PERS_ERR_LEASE_LOST or PERS_ERR_ALREADY_COMPLETED (the item's outcome;
   only PERS_OK changes anything), or a failure of the storage. The finished task is counted
   in *counts, which the caller writes before committing. */
static pers_result psqli_complete_one(psqli_store *s, const pers_lease *lease,
                                      const pers_completion *completion, int64_t now,
                                      psqli_counts *counts, pers_detail *detail)
{
    psqli_lease_row row;
    pers_result rc = psqli_lease_read(s, lease, &row, detail);
    sqlite3_stmt *st;
    int bad = SQLITE_OK;
    if (rc != PERS_OK)
        return rc;
    switch (psqli_lease_kind(&row, lease, now)) {
    case PSQLI_LEASE_LIVE:
        break;
    case PSQLI_LEASE_FINISHED:
        pers_detail_set(detail,
                        "task \"%s\" was already %s with this token; the first result is kept",
                        lease->task_id, pers_state_name(row.state));
        return PERS_ERR_ALREADY_COMPLETED;
    default:
        return psqli_lease_lost(&row, lease, now, detail);
    }
    if ((st = psqli_stmt(s, PSQLI_ST_COMPLETE, &rc, detail)) == NULL)
        return rc;
    psqli_bind_int(st, 1, row.seq, &bad);
    psqli_bind_int(st, 2, completion->failed ? PERS_STATE_FAILED : PERS_STATE_COMPLETED, &bad);
    psqli_bind_int(st, 3, now, &bad);
    psqli_bind_blob(st, 4, completion->data, completion->data_len, &bad);
    if ((rc = psqli_run(s, st, bad, "completing the task", detail)) != PERS_OK)
        return rc;
    return psqli_counts_add(s, counts, lease->tenant, row.queue, completion->failed, detail);
}

/* The outcomes complete gives one item (S20); anything else is the storage failing. */
static int psqli_item_outcome(pers_result rc)
{
    return rc == PERS_OK || rc == PERS_ERR_NOT_FOUND || rc == PERS_ERR_LEASE_LOST ||
           rc == PERS_ERR_ALREADY_COMPLETED;
}

static pers_result psqli_complete(void *backend, const pers_lease *lease,
                                  const pers_completion *completion, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    psqli_counts counts;
    pers_result rc;
    if (s == NULL || completion == NULL) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = psqli_completion_check(s, lease, completion, detail)) != PERS_OK)
        return rc;
    counts.used = 0;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        rc = psqli_complete_one(s, lease, completion, psqli_now(s), &counts, detail);
        if (rc == PERS_OK)
            rc = psqli_counts_flush(s, &counts, detail);
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* S20's common case, every lease live and every task named once: completes all items with
   multi-row UPDATEs, counting each task done into *counts. A piece whose leases this
   connection issued (psqli_lease_queue knows their queues) takes the statement without
   RETURNING; any other piece reads the queues from RETURNING. *all_done is 1 when every item
   was done; else some were not, and the caller rolls back to its savepoint and decides each
   item alone. PERS_OK, or a failure of the storage. */
static pers_result psqli_complete_fast(psqli_store *s, const pers_lease *leases,
                                       const pers_completion *completions, size_t count,
                                       int64_t now, psqli_counts *counts, int *all_done,
                                       pers_detail *detail)
{
    static const pers_completion empty = { 0, NULL, 0 };
    pers_result rc = PERS_OK;
    size_t i = 0;
    *all_done = 0;
    while (i < count) {
        uint32_t queue[PSQLI_ROWS_MAX];
        int log2 = psqli_piece_log2(count - i), rows = 1 << log2, r, p = 2, bad = SQLITE_OK;
        int known = 1, done = 0;
        sqlite3_stmt *st;
        for (r = 0; r < rows && known; r++)
            known = (queue[r] = psqli_lease_queue(s, &leases[i + r])) < PSQLI_QUEUE_SLOTS;
        st = psqli_multi(s, known ? PSQLI_MULTI_COMPLETE_KNOWN : PSQLI_MULTI_COMPLETE, log2, &rc,
                         detail);
        if (st == NULL)
            return rc;
        psqli_bind_int(st, 1, now, &bad);
        for (r = 0; r < rows; r++, p += 5) {
            const pers_lease *l = &leases[i + r];
            const pers_completion *c = completions != NULL ? &completions[i + r] : &empty;
            psqli_bind_text(st, p, l->tenant, &bad);
            psqli_bind_text(st, p + 1, l->task_id, &bad);
            psqli_bind_int(st, p + 2, (int64_t)l->token, &bad);
            psqli_bind_int(st, p + 3, c->failed ? PERS_STATE_FAILED : PERS_STATE_COMPLETED, &bad);
            psqli_bind_blob(st, p + 4, c->data, c->data_len, &bad);
        }
        if (bad != SQLITE_OK)
            return psqli_run(s, st, bad, "binding", detail);
        if (known) {
            if ((rc = psqli_run(s, st, SQLITE_OK, "completing tasks", detail)) == PERS_OK)
                done = sqlite3_changes(s->db);
            for (r = 0; r < rows && done == rows && rc == PERS_OK; r++)
                rc = psqli_counts_add(s, counts, s->queues[queue[r]].tenant,
                                      s->queues[queue[r]].queue,
                                      completions != NULL && completions[i + r].failed, detail);
        } else {
            while (rc == PERS_OK &&
                   psqli_step(s, st, "completing tasks", &rc, detail) == SQLITE_ROW) {
                done++;
                rc = psqli_counts_add(s, counts, (const char *)sqlite3_column_text(st, 0),
                                      (const char *)sqlite3_column_text(st, 1),
                                      sqlite3_column_int(st, 2) == PERS_STATE_FAILED, detail);
            }
            sqlite3_reset(st);
        }
        if (rc != PERS_OK || done != rows)
            return rc; /* a row not done: an item the one-by-one path must decide */
        i += (size_t)rows;
    }
    *all_done = 1;
    return PERS_OK;
}

/* S20: every item in ONE write transaction (one commit, so one fsync with FULL), in order,
   each exactly as psqli_complete decides it. If the storage fails, the transaction is rolled
   back and no item is applied: every results[i] is then the failure's code.
   The common case goes through psqli_complete_fast under a savepoint. When an item is not a
   live lease, or a task is named twice (its row is done once), the savepoint undoes the fast
   attempt and every item is decided one by one, in order. */
static pers_result psqli_complete_batch(void *backend, const pers_lease *leases,
                                        const pers_completion *completions, size_t count,
                                        pers_result *results, pers_detail *detail)
{
    static const pers_completion empty = { 0, NULL, 0 };
    psqli_store *s = (psqli_store *)backend;
    psqli_counts counts;
    pers_detail item;
    pers_result rc = PERS_OK, one;
    size_t i;
    int64_t now;
    if (s == NULL || leases == NULL || results == NULL || count == 0 ||
        count > PERS_BATCH_MAX) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    /* Every item is checked before anything changes (direct callers; a store has done it). */
    for (i = 0; i < count && rc == PERS_OK; i++) {
        rc = psqli_completion_check(s, &leases[i], completions ? &completions[i] : &empty,
                                    &item);
        if (rc != PERS_OK)
            pers_detail_set(detail, "item %lu: %s", (unsigned long)i, item.text);
    }
    counts.used = 0;
    if (rc == PERS_OK) {
        pthread_mutex_lock(&s->lock);
        if ((rc = psqli_begin(s, detail)) == PERS_OK) {
            int all_done = 0;
            now = psqli_now(s);
            rc = psqli_simple(s, PSQLI_ST_SAVEPOINT, "opening a savepoint", detail);
            if (rc == PERS_OK)
                rc = psqli_complete_fast(s, leases, completions, count, now, &counts, &all_done,
                                         detail);
            if (!all_done && (rc == PERS_OK || !sqlite3_get_autocommit(s->db))) {
                /* A row not done, or a statement that failed: the savepoint undoes the fast
                   attempt, and the one-by-one path finds the item a failure is at. */
                counts.used = 0;
                rc = psqli_simple(s, PSQLI_ST_ROLLBACK_TO, "rolling back to a savepoint",
                                  detail);
            } else if (rc != PERS_OK && detail != NULL) {
                /* SQLite ended the transaction itself (e.g. SQLITE_FULL). */
                char inner[PERS_DETAIL_SIZE];
                memcpy(inner, detail->text, sizeof inner);
                inner[sizeof inner - 1] = '\0';
                pers_detail_set(detail, "%s; nothing was completed", inner);
            }
            if (rc == PERS_OK)
                rc = psqli_simple(s, PSQLI_ST_RELEASE, "releasing a savepoint", detail);
            for (i = 0; all_done && i < count; i++)
                results[i] = PERS_OK;
            for (i = 0; !all_done && i < count && rc == PERS_OK; i++) {
                item.text[0] = '\0';
                item.native_code = 0;
                one = psqli_complete_one(s, &leases[i], completions ? &completions[i] : &empty,
                                         now, &counts, &item);
                if (psqli_item_outcome(one)) {
                    results[i] = one;
                } else {
                    rc = one;
                    if (detail != NULL)
                        detail->native_code = item.native_code;
                    pers_detail_set(detail, "item %lu: %s; nothing was completed",
                                    (unsigned long)i, item.text);
                }
            }
            if (rc == PERS_OK)
                rc = psqli_counts_flush(s, &counts, detail);
            rc = psqli_finish(s, rc, detail);
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (rc != PERS_OK)
        for (i = 0; i < count; i++)
            results[i] = rc;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Reading tasks, stats, dead letters
   ------------------------------------------------------------------------------------------- */

static pers_result psqli_get_task(void *backend, const char *tenant, const char *task_id,
                                  pers_task *task, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc = PERS_OK;
    sqlite3_stmt *st;
    int bad = SQLITE_OK, code;
    if (s == NULL || task == NULL || !psqli_name_ok(s, tenant) || !psqli_key_ok(s, task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((st = psqli_stmt(s, PSQLI_ST_GET_TASK, &rc, detail)) != NULL) {
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, task_id, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else {
            /* One SELECT is one consistent read; S2 and S7 are applied to what it read. */
            int64_t now = psqli_now(s);
            code = psqli_step(s, st, "reading the task", &rc, detail);
            if (code == SQLITE_ROW) {
                int64_t expiry = (int64_t)sqlite3_column_int64(st, 12);
                rc = psqli_fill_task(s, st, task, detail);
                sqlite3_reset(st);
                if (rc == PERS_OK)
                    psqli_settle_view(task, &s->alloc, now, expiry);
            } else if (code == SQLITE_DONE) {
                pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", task_id, tenant);
                rc = PERS_ERR_NOT_FOUND;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result psqli_queue_stats(void *backend, const char *tenant, const char *queue,
                                     pers_stats *stats, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc = PERS_OK;
    sqlite3_stmt *st;
    int bad = SQLITE_OK, code;
    if (s == NULL || stats == NULL || !psqli_name_ok(s, tenant) || !psqli_name_ok(s, queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(stats, 0, sizeof *stats);
    pthread_mutex_lock(&s->lock);
    if ((st = psqli_stmt(s, PSQLI_ST_STATS, &rc, detail)) != NULL) {
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, queue, &bad);
        psqli_bind_int(st, 3, psqli_now(s), &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else {
            /* One read (S17): due scheduled tasks count as ready, expired leases as what
               their expiry makes them (S2, S7), without writing anything. */
            code = psqli_step(s, st, "counting tasks", &rc, detail);
            if (code == SQLITE_ROW) {
                stats->scheduled = (uint64_t)sqlite3_column_int64(st, 0);
                stats->ready = (uint64_t)(sqlite3_column_int64(st, 1) +
                                          sqlite3_column_int64(st, 2) +
                                          sqlite3_column_int64(st, 4));
                stats->leased = (uint64_t)sqlite3_column_int64(st, 3);
                stats->dead = (uint64_t)(sqlite3_column_int64(st, 5) +
                                         sqlite3_column_int64(st, 6));
                stats->completed = (uint64_t)sqlite3_column_int64(st, 7);
                stats->failed = (uint64_t)sqlite3_column_int64(st, 8);
                sqlite3_reset(st);
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        memset(stats, 0, sizeof *stats);
    return rc;
}

static pers_result psqli_list_dead(void *backend, const pers_list_req *req, pers_task_list *list,
                                   pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    size_t limit, n = 0, i = 0;
    int64_t total = 0;
    int bad = SQLITE_OK, code;
    if (s == NULL || req == NULL || list == NULL || !psqli_name_ok(s, req->tenant) ||
        !psqli_name_ok(s, req->queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(list, 0, sizeof *list);
    limit = req->limit == 0 || req->limit > PERS_LIST_MAX ? PERS_LIST_MAX : req->limit;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) != PERS_OK) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    /* Expired leases at their last attempt are dead as of now: settle the queue first. */
    rc = psqli_settle_queue(s, req->tenant, req->queue, psqli_now(s), detail);
    if (rc == PERS_OK && (st = psqli_stmt(s, PSQLI_ST_DEAD_COUNT, &rc, detail)) != NULL) {
        psqli_bind_text(st, 1, req->tenant, &bad);
        psqli_bind_text(st, 2, req->queue, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else if (psqli_step(s, st, "counting dead tasks", &rc, detail) == SQLITE_ROW) {
            total = (int64_t)sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        }
    }
    if (rc == PERS_OK && (uint64_t)total > (uint64_t)req->offset) {
        n = (size_t)((uint64_t)total - (uint64_t)req->offset);
        if (n > limit)
            n = limit;
    }
    if (rc == PERS_OK && n > 0) {
        list->items = (pers_task *)pers_alloc(&s->alloc, n * sizeof *list->items);
        if (list->items == NULL) {
            pers_detail_set(detail, "out of memory for %lu tasks", (unsigned long)n);
            rc = PERS_ERR_NO_MEMORY;
        }
    }
    if (rc == PERS_OK && n > 0 && (st = psqli_stmt(s, PSQLI_ST_DEAD_LIST, &rc, detail)) != NULL) {
        bad = SQLITE_OK;
        psqli_bind_text(st, 1, req->tenant, &bad);
        psqli_bind_text(st, 2, req->queue, &bad);
        psqli_bind_int(st, 3, (int64_t)n, &bad);
        psqli_bind_int(st, 4, (int64_t)req->offset, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else {
            while (i < n && (code = psqli_step(s, st, "listing dead tasks", &rc, detail)) ==
                                SQLITE_ROW) {
                rc = psqli_fill_task(s, st, &list->items[i], detail);
                if (rc != PERS_OK)
                    break;
                i++;
            }
            sqlite3_reset(st);
        }
    }
    rc = psqli_finish(s, rc, detail);
    pthread_mutex_unlock(&s->lock);
    if (rc == PERS_OK && list->items != NULL && i < n) {
        /* Cannot happen inside one transaction; keep the list exact anyway. */
        rc = PERS_ERR_INTERNAL;
        pers_detail_set(detail, "listed %lu dead tasks of %lu counted", (unsigned long)i,
                        (unsigned long)n);
    }
    if (rc != PERS_OK) {
        size_t j;
        if (list->items != NULL) {
            for (j = 0; j < i; j++)
                pers_task_clear(&s->alloc, &list->items[j]);
            pers_free(&s->alloc, list->items, n * sizeof *list->items);
        }
        memset(list, 0, sizeof *list);
        return rc;
    }
    list->count = n;
    list->total = (size_t)total;
    return PERS_OK;
}

static pers_result psqli_requeue_dead(void *backend, const char *tenant, const char *task_id,
                                      pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    int64_t now;
    int bad = SQLITE_OK, code;
    if (s == NULL || !psqli_name_ok(s, tenant) || !psqli_key_ok(s, task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        now = psqli_now(s);
        rc = psqli_settle_task(s, tenant, task_id, now, detail);
        if (rc == PERS_OK && (st = psqli_stmt(s, PSQLI_ST_REQUEUE, &rc, detail)) != NULL) {
            psqli_bind_text(st, 1, tenant, &bad);
            psqli_bind_text(st, 2, task_id, &bad);
            psqli_bind_int(st, 3, now, &bad);
            rc = psqli_run(s, st, bad, "requeueing the task", detail);
        }
        if (rc == PERS_OK && sqlite3_changes(s->db) != 1 &&
            (st = psqli_stmt(s, PSQLI_ST_LEASE_STATE, &rc, detail)) != NULL) {
            bad = SQLITE_OK;
            psqli_bind_text(st, 1, tenant, &bad);
            psqli_bind_text(st, 2, task_id, &bad);
            if (bad != SQLITE_OK) {
                sqlite3_reset(st);
                rc = psqli_native(s->db, bad, "binding", detail);
            } else {
                code = psqli_step(s, st, "reading the task", &rc, detail);
                if (code == SQLITE_ROW) {
                    pers_detail_set(detail, "task \"%s\" is %s, not dead", task_id,
                                    pers_state_name((pers_task_state)sqlite3_column_int(st, 0)));
                    sqlite3_reset(st);
                    rc = PERS_ERR_INVALID_STATE;
                } else if (code == SQLITE_DONE) {
                    pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", task_id, tenant);
                    rc = PERS_ERR_NOT_FOUND;
                }
            }
        }
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Retention and results
   ------------------------------------------------------------------------------------------- */

static int psqli_cleanup_args(psqli_store *s, const pers_cleanup_req *req, size_t *removed,
                              pers_detail *detail)
{
    if (s == NULL || req == NULL || removed == NULL || req->older_than_ms < 0 ||
        req->older_than_ms > PERS_DURATION_MAX_MS ||
        (req->tenant != NULL && !psqli_name_ok(s, req->tenant))) {
        pers_detail_set(detail, "invalid argument");
        return -1;
    }
    *removed = 0;
    return 0;
}

/* ?1 cutoff, ?2 tenant or NULL, ?3 limit (-1: none), then the count of changed rows. */
static pers_result psqli_sweep(psqli_store *s, int which, const pers_cleanup_req *req,
                               int64_t cutoff, size_t *removed, const char *what,
                               pers_detail *detail)
{
    pers_result rc = PERS_OK;
    int bad = SQLITE_OK;
    sqlite3_stmt *st = psqli_stmt(s, which, &rc, detail);
    if (st == NULL)
        return rc;
    psqli_bind_int(st, 1, cutoff, &bad);
    psqli_bind_text(st, 2, req->tenant, &bad);
    psqli_bind_int(st, 3, req->limit ? (int64_t)req->limit : -1, &bad);
    rc = psqli_run(s, st, bad, what, detail);
    if (rc == PERS_OK)
        *removed = (size_t)sqlite3_changes(s->db); /* the trigger's changes are not counted */
    return rc;
}

static pers_result psqli_cleanup_tasks(void *backend, const pers_cleanup_req *req,
                                       size_t *removed, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    int64_t now;
    if (psqli_cleanup_args(s, req, removed, detail) != 0)
        return PERS_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        sqlite3_stmt *st;
        int bad = SQLITE_OK;
        now = psqli_now(s);
        /* Expiries may have made dead tasks (S7): apply them before choosing what to remove. */
        if (req->include_dead &&
            (st = psqli_stmt(s, req->tenant != NULL ? PSQLI_ST_EXPIRE_TENANT : PSQLI_ST_EXPIRE_ALL,
                             &rc, detail)) != NULL) {
            if (req->tenant != NULL) {
                psqli_bind_text(st, 1, req->tenant, &bad);
                psqli_bind_int(st, 2, now, &bad);
            } else {
                psqli_bind_int(st, 1, now, &bad);
            }
            rc = psqli_run(s, st, bad, "reclaiming expired leases", detail);
        }
        if (rc == PERS_OK)
            rc = psqli_sweep(s, req->include_dead ? PSQLI_ST_CLEANUP_ALL : PSQLI_ST_CLEANUP_DONE,
                             req, now - req->older_than_ms, removed, "removing finished tasks",
                             detail);
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        *removed = 0;
    return rc;
}

static pers_result psqli_get_result(void *backend, const char *tenant, const char *task_id,
                                    pers_task_result *result, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc = PERS_OK;
    sqlite3_stmt *st;
    int bad = SQLITE_OK, code;
    if (s == NULL || result == NULL || !psqli_name_ok(s, tenant) || !psqli_key_ok(s, task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    if ((st = psqli_stmt(s, PSQLI_ST_GET_RESULT, &rc, detail)) != NULL) {
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, task_id, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else {
            code = psqli_step(s, st, "reading the result", &rc, detail);
            if (code == SQLITE_DONE) {
                pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", task_id, tenant);
                rc = PERS_ERR_NOT_FOUND;
            } else if (code == SQLITE_ROW && !sqlite3_column_int(st, 4)) {
                pers_task_state state = (pers_task_state)sqlite3_column_int(st, 1);
                pers_detail_set(detail, "task \"%s\" has no result (it is %s%s)", task_id,
                                pers_state_name(state),
                                state == PERS_STATE_COMPLETED || state == PERS_STATE_FAILED
                                    ? " and its result was cleaned up"
                                    : "");
                rc = PERS_ERR_NOT_FOUND;
                sqlite3_reset(st);
            } else if (code == SQLITE_ROW) {
                size_t len = (size_t)sqlite3_column_bytes(st, 5);
                void *data = pers_copy_bytes(&s->alloc, sqlite3_column_blob(st, 5), len);
                if (data == NULL) {
                    pers_detail_set(detail, "out of memory");
                    rc = PERS_ERR_NO_MEMORY;
                } else {
                    memset(result, 0, sizeof *result);
                    memcpy(result->task_id, task_id, strlen(task_id) + 1);
                    memcpy(result->tenant, tenant, strlen(tenant) + 1);
                    psqli_copy_text(result->queue, sizeof result->queue,
                                    sqlite3_column_text(st, 0));
                    result->state = (pers_task_state)sqlite3_column_int(st, 1);
                    result->attempts = (uint32_t)sqlite3_column_int64(st, 2);
                    result->finished_ms = (int64_t)sqlite3_column_int64(st, 3);
                    result->data = data;
                    result->data_len = len;
                }
                sqlite3_reset(st);
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result psqli_cleanup_results(void *backend, const pers_cleanup_req *req,
                                         size_t *removed, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    if (psqli_cleanup_args(s, req, removed, detail) != 0)
        return PERS_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        rc = psqli_sweep(s, PSQLI_ST_CLEANUP_RESULTS, req, psqli_now(s) - req->older_than_ms,
                         removed, "removing results", detail);
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        *removed = 0;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Subscriptions
   ------------------------------------------------------------------------------------------- */

static pers_result psqli_subscribe(void *backend, const pers_subscribe_req *req, size_t *created,
                                   pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    size_t i, n = 0;
    int64_t now;
    if (s == NULL || req == NULL || created == NULL || req->queues == NULL ||
        req->queue_count == 0 || req->queue_count > PERS_QUEUES_MAX ||
        !psqli_name_ok(s, req->tenant) || !psqli_name_ok(s, req->worker_id) ||
        req->callback == NULL || req->callback[0] == '\0' ||
        strlen(req->callback) > PERS_ADDRESS_MAX || req->ttl_ms <= 0 ||
        req->ttl_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    for (i = 0; i < req->queue_count; i++)
        if (!psqli_name_ok(s, req->queues[i])) {
            pers_detail_set(detail, "invalid queue name at %lu", (unsigned long)i);
            return PERS_ERR_INVALID_ARGUMENT;
        }
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        now = psqli_now(s);
        for (i = 0; i < req->queue_count && rc == PERS_OK; i++) {
            sqlite3_stmt *st;
            int bad = SQLITE_OK, code;
            if ((st = psqli_stmt(s, PSQLI_ST_SUB_GET, &rc, detail)) == NULL)
                break;
            psqli_bind_text(st, 1, req->tenant, &bad);
            psqli_bind_text(st, 2, req->worker_id, &bad);
            psqli_bind_text(st, 3, req->queues[i], &bad);
            if (bad != SQLITE_OK) {
                sqlite3_reset(st);
                rc = psqli_native(s->db, bad, "binding", detail);
                break;
            }
            code = psqli_step(s, st, "reading the subscription", &rc, detail);
            if (code == SQLITE_ROW) {
                if ((int64_t)sqlite3_column_int64(st, 0) <= now)
                    n++; /* an expired row is as good as absent (S15) */
                sqlite3_reset(st);
            } else if (code == SQLITE_DONE) {
                n++;
            } else {
                break;
            }
            if ((st = psqli_stmt(s, PSQLI_ST_SUB_UPSERT, &rc, detail)) == NULL)
                break;
            psqli_bind_text(st, 1, req->tenant, &bad);
            psqli_bind_text(st, 2, req->worker_id, &bad);
            psqli_bind_text(st, 3, req->queues[i], &bad);
            psqli_bind_text(st, 4, req->callback, &bad);
            psqli_bind_int(st, 5, now, &bad);
            psqli_bind_int(st, 6, now + req->ttl_ms, &bad);
            rc = psqli_run(s, st, bad, "writing the subscription", detail);
        }
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    *created = rc == PERS_OK ? n : 0;
    return rc;
}

static pers_result psqli_unsubscribe(void *backend, const char *tenant, const char *worker_id,
                                     const char *queue, size_t *removed, pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    int64_t live = 0;
    int bad = SQLITE_OK;
    if (s == NULL || removed == NULL || !psqli_name_ok(s, tenant) || !psqli_name_ok(s, worker_id) ||
        (queue != NULL && !psqli_name_ok(s, queue))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        if ((st = psqli_stmt(s, PSQLI_ST_SUB_LIVE, &rc, detail)) != NULL) {
            psqli_bind_text(st, 1, tenant, &bad);
            psqli_bind_text(st, 2, worker_id, &bad);
            psqli_bind_text(st, 3, queue, &bad);
            psqli_bind_int(st, 4, psqli_now(s), &bad);
            if (bad != SQLITE_OK) {
                sqlite3_reset(st);
                rc = psqli_native(s->db, bad, "binding", detail);
            } else if (psqli_step(s, st, "counting subscriptions", &rc, detail) == SQLITE_ROW) {
                live = (int64_t)sqlite3_column_int64(st, 0);
                sqlite3_reset(st);
            }
        }
        /* Every matching row goes, expired ones too (as the reference backend does); only
           live ones count, and none at all is NOT_FOUND (S15). */
        if (rc == PERS_OK && (st = psqli_stmt(s, PSQLI_ST_SUB_DELETE, &rc, detail)) != NULL) {
            bad = SQLITE_OK;
            psqli_bind_text(st, 1, tenant, &bad);
            psqli_bind_text(st, 2, worker_id, &bad);
            psqli_bind_text(st, 3, queue, &bad);
            rc = psqli_run(s, st, bad, "removing subscriptions", detail);
        }
        rc = psqli_finish(s, rc, detail);
        if (rc == PERS_OK && live == 0) {
            pers_detail_set(detail, "worker \"%s\" of tenant \"%s\" has no subscription%s%s",
                            worker_id, tenant, queue != NULL ? " to queue " : "",
                            queue != NULL ? queue : "");
            rc = PERS_ERR_NOT_FOUND;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == PERS_OK)
        *removed = (size_t)live;
    return rc;
}

/* Live rows by queue (by_queue = 1) or by worker, ordered by (worker, queue) (S15). */
static pers_result psqli_list_subs(psqli_store *s, const char *tenant, const char *key,
                                   int by_queue, pers_subscription_list *list,
                                   pers_detail *detail)
{
    pers_result rc;
    sqlite3_stmt *st;
    int64_t now, total = 0;
    size_t n = 0, i = 0;
    int bad = SQLITE_OK, code;
    memset(list, 0, sizeof *list);
    pthread_mutex_lock(&s->lock);
    /* A read transaction, so that the count and the rows agree. */
    if ((rc = psqli_simple(s, PSQLI_ST_BEGIN_READ, "starting a read transaction", detail)) !=
        PERS_OK) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    now = psqli_now(s);
    if ((st = psqli_stmt(s, by_queue ? PSQLI_ST_SUB_COUNT_QUEUE : PSQLI_ST_SUB_COUNT_WORKER, &rc,
                         detail)) != NULL) {
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, key, &bad);
        psqli_bind_int(st, 3, now, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else if (psqli_step(s, st, "counting subscriptions", &rc, detail) == SQLITE_ROW) {
            total = (int64_t)sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        }
    }
    if (rc == PERS_OK && total > 0) {
        n = (size_t)total;
        list->items = (pers_subscription *)pers_alloc(&s->alloc, n * sizeof *list->items);
        if (list->items == NULL) {
            pers_detail_set(detail, "out of memory for %lu subscriptions", (unsigned long)n);
            rc = PERS_ERR_NO_MEMORY;
        } else {
            memset(list->items, 0, n * sizeof *list->items);
        }
    }
    if (rc == PERS_OK && n > 0 &&
        (st = psqli_stmt(s, by_queue ? PSQLI_ST_SUB_LIST_QUEUE : PSQLI_ST_SUB_LIST_WORKER, &rc,
                         detail)) != NULL) {
        bad = SQLITE_OK;
        psqli_bind_text(st, 1, tenant, &bad);
        psqli_bind_text(st, 2, key, &bad);
        psqli_bind_int(st, 3, now, &bad);
        if (bad != SQLITE_OK) {
            sqlite3_reset(st);
            rc = psqli_native(s->db, bad, "binding", detail);
        } else {
            while (i < n &&
                   (code = psqli_step(s, st, "listing subscriptions", &rc, detail)) == SQLITE_ROW) {
                pers_subscription *o = &list->items[i];
                const unsigned char *cb = sqlite3_column_text(st, 3);
                psqli_copy_text(o->tenant, sizeof o->tenant, sqlite3_column_text(st, 0));
                psqli_copy_text(o->worker_id, sizeof o->worker_id, sqlite3_column_text(st, 1));
                psqli_copy_text(o->queue, sizeof o->queue, sqlite3_column_text(st, 2));
                o->created_ms = (int64_t)sqlite3_column_int64(st, 4);
                o->updated_ms = (int64_t)sqlite3_column_int64(st, 5);
                o->expires_ms = (int64_t)sqlite3_column_int64(st, 6);
                o->callback = (char *)pers_copy_bytes(
                    &s->alloc, cb != NULL ? (const void *)cb : (const void *)"",
                    cb != NULL ? strlen((const char *)cb) : 0);
                if (o->callback == NULL) {
                    pers_detail_set(detail, "out of memory");
                    rc = PERS_ERR_NO_MEMORY;
                    break;
                }
                i++;
            }
            sqlite3_reset(st);
        }
    }
    psqli_rollback(s); /* nothing was written */
    pthread_mutex_unlock(&s->lock);
    if (rc == PERS_OK && i < n) {
        rc = PERS_ERR_INTERNAL;
        pers_detail_set(detail, "listed %lu subscriptions of %lu counted", (unsigned long)i,
                        (unsigned long)n);
    }
    if (rc != PERS_OK) {
        if (list->items != NULL) {
            list->count = n; /* callbacks not filled are NULL: the clear skips them */
            pers_subscription_list_clear(&s->alloc, list);
        }
        memset(list, 0, sizeof *list);
        return rc;
    }
    list->count = n;
    return PERS_OK;
}

static pers_result psqli_list_subscriptions_by_queue(void *backend, const char *tenant,
                                                     const char *queue,
                                                     pers_subscription_list *list,
                                                     pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    if (s == NULL || list == NULL || !psqli_name_ok(s, tenant) || !psqli_name_ok(s, queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return psqli_list_subs(s, tenant, queue, 1, list, detail);
}

static pers_result psqli_list_subscriptions_by_worker(void *backend, const char *tenant,
                                                      const char *worker_id,
                                                      pers_subscription_list *list,
                                                      pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    if (s == NULL || list == NULL || !psqli_name_ok(s, tenant) || !psqli_name_ok(s, worker_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return psqli_list_subs(s, tenant, worker_id, 0, list, detail);
}

static pers_result psqli_expire_subscriptions(void *backend, const char *tenant, size_t *removed,
                                              pers_detail *detail)
{
    psqli_store *s = (psqli_store *)backend;
    pers_result rc;
    sqlite3_stmt *st;
    int bad = SQLITE_OK;
    if (s == NULL || removed == NULL || (tenant != NULL && !psqli_name_ok(s, tenant))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    pthread_mutex_lock(&s->lock);
    if ((rc = psqli_begin(s, detail)) == PERS_OK) {
        if ((st = psqli_stmt(s, PSQLI_ST_SUB_EXPIRE, &rc, detail)) != NULL) {
            psqli_bind_int(st, 1, psqli_now(s), &bad);
            psqli_bind_text(st, 2, tenant, &bad);
            rc = psqli_run(s, st, bad, "removing expired subscriptions", detail);
            if (rc == PERS_OK)
                *removed = (size_t)sqlite3_changes(s->db);
        }
        rc = psqli_finish(s, rc, detail);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != PERS_OK)
        *removed = 0;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Vtable, plugin descriptor, registration
   ------------------------------------------------------------------------------------------- */

/* Positional, in PERS_BACKEND_OPS order, generated from the list itself: every method of the
   list must exist here as psqli_<name>. */
static const pers_backend_vtable psqli_vtable = {
    PERS_BACKEND_ABI_VERSION,
    (uint32_t)sizeof(pers_backend_vtable),
#define PSQLI_VTABLE_ENTRY_(name, required, abi_added, cap, ret, params) psqli_##name,
    PERS_BACKEND_OPS(PSQLI_VTABLE_ENTRY_)
#undef PSQLI_VTABLE_ENTRY_
};

static const char *const psqli_sync_values[] = { "FULL", "NORMAL", "full", "normal" };

static const plg_config_key psqli_schema[] = {
    { "path", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, NULL, "1", "4096", NULL, 0,
      "the database file (created when absent; its directory must exist)" },
    { "synchronous", PLG_CONFIG_STRING, 0, "FULL", NULL, NULL, psqli_sync_values,
      sizeof psqli_sync_values / sizeof psqli_sync_values[0],
      "FULL: every commit survives power loss; NORMAL: faster, survives process crashes only" },
    { "busy_timeout", PLG_CONFIG_DURATION, 0, "5s", "0", "1h", NULL, 0,
      "how long a write waits for another writer before PERS_ERR_UNAVAILABLE" },
    { "max_payload_bytes", PLG_CONFIG_INTEGER, 0, "1048576", "1", "1000000000", NULL, 0,
      "largest payload or result accepted, in bytes" },
};

static const char *const psqli_capabilities_list[] = {
    "tasks", "results", "subscriptions", "dead-letter", "batch", "stats", "retention",
    "thread-safe", "durable", "shared",
};

static plg_result psqli_plugin_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL; /* nothing is shared between stores */
    return PLG_OK;
}

static void psqli_plugin_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static const plg_descriptor psqli_descriptor = {
    PLG_DESCRIPTOR_ABI_VERSION,
    (uint32_t)sizeof(plg_descriptor),
    PERS_PLUGIN_TYPE,
    "sqlite",
    PERS_SQLITE_VERSION_STRING,
    "durable SQLite backend of persistence.h (WAL, shared between processes)",
    psqli_capabilities_list,
    sizeof psqli_capabilities_list / sizeof psqli_capabilities_list[0],
    NULL,
    NULL,
    0,
    psqli_schema,
    sizeof psqli_schema / sizeof psqli_schema[0],
    0,
    psqli_plugin_init,
    NULL,
    NULL,
    psqli_plugin_shutdown,
    NULL,
    { PERS_INTERFACE_ID, PERS_BACKEND_ABI_VERSION, (uint32_t)sizeof(pers_backend_vtable),
      &psqli_vtable },
    NULL,
};

PSQLI_DEF const pers_backend_vtable *pers_sqlite_vtable(void)
{
    return &psqli_vtable;
}

PSQLI_DEF const plg_descriptor *pers_sqlite_descriptor(void)
{
    return &psqli_descriptor;
}

PSQLI_DEF const plg_config_key *pers_sqlite_config_schema(size_t *count)
{
    if (count != NULL)
        *count = sizeof psqli_schema / sizeof psqli_schema[0];
    return psqli_schema;
}

PSQLI_DEF pers_result pers_sqlite_register(plg_registry *reg)
{
    return pers_register_backend(reg, &psqli_descriptor);
}

PSQLI_DEF pers_result pers_sqlite_open(const char *config_json, const pers_store_desc *desc,
                                       pers_store **out)
{
    plg_config *config = NULL;
    plg_result prc;
    pers_result rc;
    size_t i, count;
    if (out == NULL)
        return PERS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    prc = plg_config_parse_json(NULL, psqli_schema, sizeof psqli_schema / sizeof psqli_schema[0],
                                config_json, PLG_CONFIG_STRICT, &config);
    if (prc != PLG_OK) {
        if (desc != NULL && desc->open_message != NULL && desc->open_message_size > 0) {
            char *m = desc->open_message;
            size_t size = desc->open_message_size, used;
            snprintf(m, size, "provider \"sqlite\": invalid configuration: ");
            count = plg_config_problem_count(config);
            for (i = 0; i < count; i++) {
                const plg_config_problem *p = plg_config_problem_at(config, i);
                used = strlen(m);
                if (p == NULL || used + 1 >= size)
                    continue;
                snprintf(m + used, size - used, "%s%s", i ? "; " : "",
                         p->message != NULL ? p->message : "");
            }
        }
        plg_config_destroy(config);
        return prc == PLG_ERR_NO_MEMORY ? PERS_ERR_NO_MEMORY : PERS_ERR_CONFIG;
    }
    rc = pers_open_vtable(&psqli_vtable, config, desc, out);
    plg_config_destroy(config); /* copied by open_store (see CONFIGURATION) */
    return rc;
}

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_SQLITE_IMPLEMENTATION */

/*
   LICENCE
   =======
   MIT License. Copyright (c) 2026 the plugin_registry.h authors.

   Permission is hereby granted, free of charge, to any person obtaining a copy of this software
   and associated documentation files (the "Software"), to deal in the Software without
   restriction, including without limitation the rights to use, copy, modify, merge, publish,
   distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
   Software is furnished to do so, subject to the following conditions:

   The above copyright notice and this permission notice shall be included in all copies or
   substantial portions of the Software.

   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
   BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
   NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
   DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
