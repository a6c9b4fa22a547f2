/* backends/redis.h - Redis, Valkey and KVRocks backend of persistence.h over hiredis, stb-style.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PERSISTENCE_REDIS_IMPLEMENTATION
       #include "backends/redis.h"

   (with PERSISTENCE_IMPLEMENTATION and PLUGIN_REGISTRY_IMPLEMENTATION defined there too, or in
   other files) and link with -lhiredis -pthread. Including the header again, before or after
   the define, is harmless. It includes "../persistence.h", i.e. persistence.h one directory up.
   Only the implementation includes <hiredis/hiredis.h> (Debian: libhiredis-dev; hiredis 0.14
   and 1.x both work): files that only include the declarations need nothing but the library.
   Public names start with `pers_redis_`, internal ones with `predi_`.

       plg_registry *reg = NULL;
       pers_store *store = NULL;
       plg_registry_create(NULL, &reg);
       pers_redis_register(reg);             // declares the interface, registers "redis"
       pers_open(reg, "redis", "{\"addr\":\"localhost:6379\",\"password\":\"\"}", NULL, &store);
       ...
       pers_destroy(store);
       plg_registry_destroy(reg);

   or, without a registry: pers_open_vtable(pers_redis_vtable(), config, &desc, &store) with a
   plg_config parsed against pers_redis_config_schema() (NULL: every default).

   Opening connects once (and fails with PERS_ERR_UNAVAILABLE when the server cannot be reached),
   loads the scripts and checks maxmemory-policy. Every behaviour of persistence.h (S1..S20)
   holds, with the one refinement of S4 described under LEASE TOKENS. The compile-time options
   of persistence.h (PERS_API, PERS_STATIC, PERS_MALLOC/PERS_FREE through the store's
   allocator) apply; hiredis allocates its own buffers with malloc.

   CONFIGURATION (JSON keys of the plugin's schema)
   =============
   addr                "host:port" (default "localhost:6379"), "[v6addr]:port", "host" (port
                       6379), or the path of a Unix socket (starting with '/')
   password            secret (never in a message or a log line); default "": no AUTH
   username            ACL user for AUTH (Redis 6+); default "": the default user
   db                  database number, 0..2147483647, default 0 (SELECT)
   url                 secret: "redis://[user[:password]@]host[:port][/db]" as one string; when
                       given it supplies host, port, username, password and db, and giving any of
                       addr, username, password or db as well is a configuration error. User and
                       password may be %-encoded. "rediss://" (TLS) is refused: not supported.
   key_prefix          first part of every key, default "pers"; 1..64 printable characters
                       without spaces, '{' or '}' (a brace would change the hash tag)
   connect_timeout     duration, default "2s": TCP connect plus the AUTH/SELECT handshake
   command_timeout     duration, default "5s": waiting for any reply (SO_RCVTIMEO/SO_SNDTIMEO)
   pool_size           connections, 1..256, default 8: calls beyond it wait for a free one
   reconnect_backoff   duration, default "25ms": the first pause after a failed connect
   reconnect_backoff_max   duration, default "1s": the pause doubles up to this
   max_payload_bytes   1..536870912, default 1048576: largest payload or result accepted
   clock               "auto" (default), "server" or "store": where "now" comes from (TIME)
   eviction_is_error   boolean, default false: health fails (instead of warning in the log)
                       when the server's maxmemory-policy can evict this backend's keys

   TIME
   ====
   persistence.h S16 gives each store one injectable clock; DESIGN-NOTES asks Redis scripts to
   read the server's TIME so that several machines with skewed clocks agree. Both hold:
     clock "server"  every script reads TIME itself (one clock for every process sharing the
                     data, no skew between workers);
     clock "store"   the backend reads the store's clock (pers_store_desc.clock) and passes its
                     milliseconds to every script as an argument (fake clocks in tests, the
                     contract suite; processes sharing data must then keep their clocks in step);
     clock "auto"    (default) "store" when the store was given a clock of its own (a clock
                     function other than pers_wall_clock_ms), else "server".
   Either way each operation uses one "now" for everything it does.

   KEY LAYOUT
   ==========
   P is key_prefix, T a tenant, Q a queue. S10 restricts names to [A-Za-z0-9_.-], so neither
   '|', ':', '{', '}' nor spaces occur in them: "{T|Q}" and "{T}" are unambiguous and no two
   (tenant, queue) pairs (or a pair and a tenant) share a key. The backend checks names again
   (direct vtable callers) and refuses anything else with PERS_ERR_INVALID_ARGUMENT; opened by a
   store (PERS_OPEN_VALIDATED), whose checks come first, the worker operations skip the second
   check of their tenant and task id.

     P:{T|Q}:m         hash: seq (enqueue counter), tok (lease token counter), completed, failed
     P:{T|Q}:ready     zset id, score (32767 - priority) * 2^36 + seq   (S3 in one ZRANGE)
     P:{T|Q}:sched     zset id, score due time
     P:{T|Q}:leased    zset id, score lease expiry
     P:{T|Q}:dead      zset seq(12 hex digits) + id, score finished time (death order, S3 ties)
     P:{T|Q}:done      zset seq + id of completed and failed tasks, score finished time
     P:{T|Q}:idem      hash idempotency key -> id (S8)
     P:{T|Q}:tasks     hash id -> task record (state, numbers, worker, key, nonces, last error)
     P:{T|Q}:payloads  hash id -> payload (binary)
     P:{T|Q}:results   hash id -> result or error (binary)
     P:{T|Q}:resultidx zset seq + id of tasks that still have a result, score finished time
     P:{T|Q}:gc        set "id nonce" of removed tasks whose directory entries are being dropped
     P:{T}:ids         hash id -> "Q nonce": the tenant's task directory (S9, lookups by id)
     P:{T}:queues      set of the tenant's queue names (tenant-wide cleanup)
     P:{T}:subs        hash "worker queue" -> subscription record (S15)
     P:{T}:subexp      zset "worker queue", score expiry
     P:tenants         set of tenant names (cleanup and expiry for every tenant)

   A queue lives in one cluster slot (all its keys share the tag {T|Q}), so queues spread over
   a cluster; each state change of a task is one script on that slot. Task data lives in
   per-queue hashes, not in per-task keys, so every key a script touches is in its KEYS (Redis
   Cluster, Dragonfly and KVRocks need that). Tenant-wide state is in the tenant's own slot
   {T}, and P:tenants is one global key. Trade-offs, all documented choices:
     - operations by (tenant, task id) find the queue in P:{T}:ids, a second slot: a cache in
       the backend handle (filled by enqueue and claim, checked by the script itself) usually
       saves that round trip, so complete/extend/nack/abandon cost one script call;
     - an enqueue costs two calls: reserve the id in the tenant's directory (S9: ids are unique
       per tenant), then the queue's enqueue script. The directory is written before the task
       exists and removed after it is gone, so it never misses a task; an entry whose enqueue
       died half-way refers to a task that does not exist (lookups answer NOT_FOUND; the same
       id may be enqueued again into the same queue, not into another one);
     - one tenant's directory and subscriptions are one slot: a tenant that alone needs more
       than one server's throughput for enqueues would need the directory split by id hash;
     - a claim over several queues is one script per queue, in order, each atomic;
     - a batch names one (tenant, queue) (S19), so it is one atomic script on one slot (the
       backend refuses a mixed batch from direct vtable callers too);
     - complete_batch (S20) names tasks of any tenants and queues, so of any slots: it is one
       complete script per item (each item atomic on its own), all sent as one pipeline. The
       items run in their order; a failure midway leaves the items answered before it done
       (S20 allows that to a backend that works item by item).
   The backend speaks to one server (hiredis has no cluster routing): with Redis Cluster use a
   cluster-aware proxy; the layout above is what makes that possible.

   SCRIPTS
   =======
   Every state change is one Lua script, loaded once at open with SCRIPT LOAD (the SHA-1 names
   are computed locally and checked against the server's) and called with EVALSHA; a NOSCRIPT
   reply (the server restarted or SCRIPT FLUSH ran) resends that call as EVAL, which loads it
   again (a NOSCRIPT call did not run, so resending it is always safe).
     queue scripts   enqueue (one task or a whole batch), claim, extend, abandon, nack,
                     complete, requeue (from dead), cleanup (tasks or results), and the reads
                     get (task or result), stats, listdead
     tenant scripts  reserve (ids in the directory), dirfix (directory tidying), subscribe,
                     unsubscribe, listsubs, expiresubs
   Every script that changes a task writes its destination (the record, the new index entry)
   before it removes the source, so a script applied only in part (KVRocks has no script
   atomicity across a crash) leaves the task findable, never lost; the scripts also repair an
   index entry that disagrees with the record. A script that can refuse (enqueue: a duplicate
   id) checks everything before it writes anything. pers_redis_script_source() returns the text
   of each (the benchmark uses it).

   LEASE TOKENS (S4 on a shared, sharded store)
   ============
   The token counter is per (tenant, queue) (P:{T|Q}:m tok), because a store-wide counter would
   be a key outside the queue's slot. Each claim passes the highest token this store handle has
   issued, and a queue's counter first jumps to it: tokens start at 1 on empty data, strictly
   increase within a claim (across its queues) and across the claims of a store handle that do
   not overlap in time, and every task's token strictly increases. Two claims running at the
   same instant on different queues may issue the same number to different tasks; S5 compares
   a token with the one task it names, so that is harmless.

   ERRORS AND RETRIES
   ==================
   Failures carry hiredis's message (or the server's error reply) in the detail, and the
   hiredis error code as native_code; the password never appears. Mapping:
     connect refused / reset / EOF / DNS failure        PERS_ERR_UNAVAILABLE
     connect or AUTH/SELECT handshake not done within connect_timeout   PERS_ERR_UNAVAILABLE
                                                        (nothing was sent: nothing happened)
     connection lost after a request was sent           PERS_ERR_UNAVAILABLE, the detail says
                                                        the outcome is unknown
     no reply within command_timeout                    PERS_ERR_TIMEOUT (outcome unknown)
     OOM reply (maxmemory reached, noeviction)          PERS_ERR_LIMIT
     LOADING, BUSY, READONLY, MASTERDOWN, NOAUTH, MOVED  PERS_ERR_UNAVAILABLE
     WRONGTYPE (someone else's data under our keys)     PERS_ERR_CORRUPT
     authentication refused at open                     PERS_ERR_CONFIG
   Requests are formatted by hiredis and sent with send(MSG_NOSIGNAL), so a connection the
   server has reset never raises SIGPIPE in the host (hiredis's own writes would). A
   connection that failed is discarded. After a failed connect, calls fail at once with
   PERS_ERR_UNAVAILABLE for the backoff pause (reconnect_backoff, doubling to
   reconnect_backoff_max) while one call at a time probes the server; the first successful
   connect ends it. A pooled connection idle for more than 100 ms is checked (a non-blocking
   peek) before use, so a restarted server costs no failed call. A request whose connection
   failed after it was sent, or that timed out, has an unknown outcome: it is resent once on a
   fresh connection only when resending cannot apply it twice:
     enqueue                 always: each request carries a nonce stored with the task, so a
                             resent request recognises its own task (duplicate = 0)
     complete, nack, abandon, requeue_dead   a per-call nonce recorded on the task makes the
                             resend report the first attempt's outcome
     complete_batch          the same, with a nonce per item; only the items that got no
                             reply are resent (a pipeline resends just the commands without
                             a reply). If the resend fails too, the items answered keep their
                             codes and the others read the failure, which the call returns
     extend_lease, reads, stats, cleanup, subscriptions          idempotent as they are
     claim                   never (a resend would lease other tasks; the first attempt's
                             tasks, if any, return to ready when their lease expires)

   HEALTH
   ======
   PING, then INFO memory: a maxmemory-policy of allkeys-* can evict task keys and is reported
   as degraded: a warning through the logger (PLG_LOG_WARN; also once at open), or with
   eviction_is_error the health call fails with PERS_ERR_UNAVAILABLE and that message.
   noeviction and volatile-* are fine: this backend sets no expiry on any key.

   DATA AND COSTS (n: tasks of the queue concerned; k: tasks the call moves)
   ==============
   Round trips: enqueue 2 (reserve the id, enqueue); enqueue_batch 2 for the whole batch;
   claim 1 per queue visited; complete, extend_lease, nack, abandon, get_task, get_result,
   requeue_dead 1 (2 when the id is not in the handle's cache); complete_batch 1 for the whole
   batch (2 when some ids are not in the cache: their directory lookups share one pipeline).
   Server work: every script costs a few redis.call()s, and a batch is handled with one
   HMGET/HSET/ZADD per key for all its tasks, so enqueue_batch and a claim of k tasks cost
   O(k log n) with a constant number of calls (complete_batch: one complete script per item). claim, get_task, stats, list_dead, requeue_dead and cleanup first apply the due
   promotions and lease expiries of their queue (S2, S7), O(log n) each; the worker operations
   (extend, abandon, nack, complete) judge only their own task's lease against now and leave
   the rest to the next of those (S2 and S7 allow lazy application: no caller can tell).
   Subscription lists and unsubscribing a worker from every queue read all the tenant's
   subscriptions. Needs Redis 5.0 or later (scripts that read TIME and then write rely on
   effect replication, the default since 5.0); tested with Redis 7.0.

   THREAD SAFETY
   =============
   Every method may be called from any number of threads. hiredis contexts are not thread-safe:
   each call takes a connection from the pool for its duration (pool_size of them; callers wait
   when all are busy). Atomicity of each operation per queue comes from the server running one
   script at a time. The id cache and tenant cache have their own mutex.

   LICENCE: see the end of the file.
*/
#ifndef PERSISTENCE_REDIS_H
#define PERSISTENCE_REDIS_H

#include "../persistence.h"

#define PERS_REDIS_VERSION_STRING "0.1.0"
/* Number of keys every queue script receives (the P:{T|Q}:... keys above, in that order). */
#define PERS_REDIS_QUEUE_KEY_COUNT 12
/* Number of keys every tenant script receives (ids, queues, subs, subexp). */
#define PERS_REDIS_TENANT_KEY_COUNT 4

#ifdef __cplusplus
extern "C" {
#endif

/* The backend's vtable (static; valid for the program's life). */
PERS_API const pers_backend_vtable *pers_redis_vtable(void);
/* Its plugin descriptor: type "persistence", name "redis", the configuration schema above,
   capabilities "tasks", "results", "subscriptions", "dead-letter", "batch", "stats",
   "retention", "durable", "shared", "thread-safe". */
PERS_API const plg_descriptor *pers_redis_descriptor(void);
/* pers_register_backend(reg, descriptor): a second registration is PERS_ERR_DUPLICATE; the
   other registry failures as pers_register_backend translates them (details in plg_errmsg). */
PERS_API pers_result pers_redis_register(plg_registry *reg);
/* The backend's configuration schema (for documentation generators and tests). */
PERS_API const plg_config_key *pers_redis_config_schema(size_t *count);

/* Where to connect, as the configuration describes it. */
typedef struct pers_redis_endpoint {
    char host[256];     /* host name or address, or a Unix socket path (starting with '/') */
    int port;           /* 0 for a Unix socket */
    char username[256]; /* "" for none */
    char password[512]; /* "" for none: a secret, never print it */
    int64_t db;
} pers_redis_endpoint;

/* Parses "host:port", "[v6]:port", "host" or "/socket/path" into out (port 6379 by default;
   username, password and db untouched). 0 on success, else -1 with the reason in why. */
PERS_API int pers_redis_parse_addr(const char *addr, pers_redis_endpoint *out, char *why,
                                   size_t why_size);
/* Parses "redis://[user[:password]@]host[:port][/db]" into out (every field set). 0 on
   success, else -1 with the reason in why, which never contains the URL or the password. */
PERS_API int pers_redis_parse_url(const char *url, pers_redis_endpoint *out, char *why,
                                  size_t why_size);
/* Formats the key "<prefix>:{<tenant>|<queue>}:<suffix>" (queue non-NULL), "<prefix>:{<tenant>}:
   <suffix>" (queue NULL, tenant non-NULL) or "<prefix>:<suffix>" (both NULL) into buf, like
   snprintf: returns the length it needed. */
PERS_API size_t pers_redis_key(char *buf, size_t size, const char *prefix, const char *tenant,
                               const char *queue, const char *suffix);
/* The suffixes of the PERS_REDIS_QUEUE_KEY_COUNT queue keys, in the order scripts take them. */
PERS_API const char *const *pers_redis_queue_key_suffixes(void);
/* The full text of the script called name ("enqueue", "claim", ...), like snprintf: returns the
   length it needed, 0 for an unknown name. */
PERS_API size_t pers_redis_script_source(const char *name, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_REDIS_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PERSISTENCE_REDIS_IMPLEMENTATION) && !defined(PERSISTENCE_REDIS_IMPLEMENTED)
#define PERSISTENCE_REDIS_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../persistence.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#if defined(PERS_STATIC)
#define PREDI_DEF static
#else
#define PREDI_DEF
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PREDI_PREFIX_MAX 64
#define PREDI_CACHE_SLOTS 4096u       /* (tenant, id) -> queue, direct-mapped */
#define PREDI_TENANT_SLOTS 256u       /* tenants already added to P:tenants */
#define PREDI_TASK_FIELDS 14          /* fields per task in script replies */
#define PREDI_NONCE_SIZE 48
#define PREDI_DEFAULT_MAX_PAYLOAD 1048576u
#define PREDI_PAYLOAD_LIMIT 536870912u /* Redis' proto-max-bulk-len default */
#define PREDI_IDLE_CHECK_MS 100        /* peek at pooled connections idle longer than this */

/* ---------------------------------------------------------------------------------------------
   Scripts (the Lua sources; each is a library followed by a body, split into pieces shorter
   than the 4095 characters ISO C promises for one string literal)
   ------------------------------------------------------------------------------------------- */
static const char *const predi_lua_lib[] = {
    "-- queue library: every key of one (tenant, queue), all in KEYS, all under one hash tag\n"
    "local NUL = string.char(0)\n"
    "local KM, KR, KS, KL, KD, KF = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]\n"
    "local KI, KT, KP, KX, KZ, KG = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]\n"
    "local SPAN = 68719476736\n"
    "local HDR = '<Bddddddddd'\n"
    "local function num(x) return string.format('%.0f', x) end\n"
    "local function rscore(t) return (32767 - t.pr) * SPAN + t.seq end\n"
    "local function fmem(t, id) return string.format('%012x', t.seq) .. id end\n"
    "local function clock(a)\n"
    "  if a ~= '' then return tonumber(a) end\n"
    "  local tm = redis.call('TIME')\n"
    "  return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "end\n"
    "local function decode(r)\n"
    "  local t = {}\n"
    "  local p\n"
    "  t.st, t.pr, t.seq, t.att, t.max, t.tok, t.cr, t.due, t.exp, t.fin, p = struct.unpack(HDR, r)\n"
    "  local a = string.find(r, NUL, p, true)\n"
    "  local b = string.find(r, NUL, a + 1, true)\n"
    "  local c = string.find(r, NUL, b + 1, true)\n"
    "  local d = string.find(r, NUL, c + 1, true)\n"
    "  t.w = string.sub(r, p, a - 1)\n"
    "  t.ik = string.sub(r, a + 1, b - 1)\n"
    "  t.n = string.sub(r, b + 1, c - 1)\n"
    "  t.op = string.sub(r, c + 1, d - 1)\n"
    "  if string.sub(r, d + 1, d + 1) == '1' then t.le = string.sub(r, d + 2) else t.le = false end\n"
    "  return t\n"
    "end\n"
    "local function encode(t)\n"
    "  return struct.pack(HDR, t.st, t.pr, t.seq, t.att, t.max, t.tok, t.cr, t.due, t.exp, t.fin) ..\n"
    "    t.w .. NUL .. t.ik .. NUL .. t.n .. NUL .. t.op .. NUL .. (t.le and ('1' .. t.le) or '0')\n"
    "end\n"
    "local function load(id)\n"
    "  local r = redis.call('HGET', KT, id)\n"
    "  if not r then return nil end\n"
    "  return decode(r)\n"
    "end\n"
    "local function save(id, t)\n"
    "  redis.call('HSET', KT, id, encode(t))\n"
    "end\n"
    "-- S6: a failure of a leased task (already out of nothing: the caller removes it from KL)\n"
    "local function fail(id, t, at, delay, reason)\n"
    "  t.le = reason\n"
    "  t.exp = 0\n"
    "  if t.att >= t.max then\n"
    "    t.st = 6\n"
    "    t.fin = at\n"
    "    redis.call('ZADD', KD, at, fmem(t, id))\n"
    "  elseif delay > 0 then\n"
    "    t.st = 1\n",
    "    t.due = at + delay\n"
    "    redis.call('ZADD', KS, t.due, id)\n"
    "  else\n"
    "    t.st = 2\n"
    "    t.due = at\n"
    "    redis.call('ZADD', KR, rscore(t), id)\n"
    "  end\n"
    "  save(id, t)\n"
    "  return t.st\n"
    "end\n"
    "-- S2 and S7: due promotions and lease expiries, each as of the instant it fell due\n"
    "local function settle(now)\n"
    "  local due = redis.call('ZRANGEBYSCORE', KS, '-inf', now)\n"
    "  for i = 1, #due do\n"
    "    local t = load(due[i])\n"
    "    if t and t.st == 1 then\n"
    "      t.st = 2\n"
    "      redis.call('ZADD', KR, rscore(t), due[i])\n"
    "      save(due[i], t)\n"
    "    end\n"
    "  end\n"
    "  if #due > 0 then redis.call('ZREMRANGEBYSCORE', KS, '-inf', now) end\n"
    "  local gone = redis.call('ZRANGEBYSCORE', KL, '-inf', now)\n"
    "  for i = 1, #gone do\n"
    "    local t = load(gone[i])\n"
    "    if t and t.st == 3 then fail(gone[i], t, t.exp, 0, 'lease expired') end\n"
    "  end\n"
    "  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KL, '-inf', now) end\n"
    "end\n"
    "local function out(r, id, t, tok, pl)\n"
    "  local n = #r\n"
    "  r[n + 1] = id\n"
    "  r[n + 2] = t.st\n"
    "  r[n + 3] = t.pr\n"
    "  r[n + 4] = t.att\n"
    "  r[n + 5] = t.max\n"
    "  r[n + 6] = tok\n"
    "  r[n + 7] = t.cr\n"
    "  r[n + 8] = t.due\n"
    "  if t.st == 3 then r[n + 9] = t.exp else r[n + 9] = 0 end\n"
    "  r[n + 10] = t.fin\n"
    "  r[n + 11] = t.w\n"
    "  r[n + 12] = t.ik\n"
    "  r[n + 13] = t.le\n"
    "  if pl == nil then pl = redis.call('HGET', KP, id) end\n"
    "  r[n + 14] = pl or ''\n"
    "end\n"
    "-- S5 for the worker operations, as of now: 0 live, 1 finished under this token, 2 anything\n"
    "-- else. The task's own expiry is judged here; the queue's other tasks are left for the next\n"
    "-- settle (S2 and S7 allow that: nobody can tell).\n"
    "local function lease_case(t, tok, now)\n"
    "  if num(t.tok) ~= tok then return 2 end\n"
    "  if t.st == 3 then\n"
    "    if t.exp > now then return 0 end\n"
    "    return 2\n"
    "  end\n"
    "  if t.st == 4 or t.st == 5 then return 1 end\n"
    "  return 2\n"
    "end\n"
    "-- The state a task is in as of now (for messages): an expired lease is ready or dead.\n"
    "local function state_now(t, now)\n"
    "  if t.st == 3 and t.exp <= now then\n"
    "    if t.att >= t.max then return 6 end\n"
    "    return 2\n"
    "  end\n"
    "  if t.st == 1 and t.due <= now then return 2 end\n",
    "  return t.st\n"
    "end\n",
    NULL
};

static const char *const predi_lua_tlib[] = {
    "-- tenant library: the tenant's directory and subscriptions, all in KEYS, one hash tag\n"
    "local KIDS, KQS, KSUB, KSX = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local SUBHDR = '<ddd'\n"
    "local function clock(a)\n"
    "  if a ~= '' then return tonumber(a) end\n"
    "  local tm = redis.call('TIME')\n"
    "  return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "end\n"
    "local function qof(v)\n"
    "  local sp = string.find(v, ' ', 1, true)\n"
    "  return string.sub(v, 1, sp - 1)\n"
    "end\n"
    "local function sub_load(f)\n"
    "  local r = redis.call('HGET', KSUB, f)\n"
    "  if not r then return nil end\n"
    "  local s = {}\n"
    "  local p\n"
    "  s.c, s.u, s.e, p = struct.unpack(SUBHDR, r)\n"
    "  s.cb = string.sub(r, p)\n"
    "  return s\n"
    "end\n",
    NULL
};

static const char *const predi_lua_enqueue[] = {
    "-- ARGV: now, count, then per request: id, nonce, mode, idem key, payload, priority,\n"
    "-- delay, run_at, max_attempts. mode 3: the id belongs to another queue of the tenant.\n"
    "-- Returns {0, kind1, id1, ...} (kind 1 created, 2 created by this very request earlier,\n"
    "-- 3 duplicate by idempotency key) or {code, index, why}.\n"
    "local now = clock(ARGV[1])\n"
    "local n = tonumber(ARGV[2])\n"
    "-- what exists already: idempotency keys, then the records (nonces) of every id concerned\n"
    "local keys, kidx = {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  local ik = ARGV[3 + i * 9 + 3]\n"
    "  if ik ~= '' and not kidx[ik] then\n"
    "    keys[#keys + 1] = ik\n"
    "    kidx[ik] = #keys\n"
    "  end\n"
    "end\n"
    "local idem = {}\n"
    "if #keys > 0 then\n"
    "  local v = redis.call('HMGET', KI, unpack(keys))\n"
    "  for j = 1, #keys do idem[keys[j]] = v[j] end\n"
    "end\n"
    "local want, widx = {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  local id = ARGV[3 + i * 9]\n"
    "  if not widx[id] then\n"
    "    want[#want + 1] = id\n"
    "    widx[id] = true\n"
    "  end\n"
    "  local ik = ARGV[3 + i * 9 + 3]\n"
    "  if ik ~= '' and idem[ik] and not widx[idem[ik]] then\n"
    "    want[#want + 1] = idem[ik]\n"
    "    widx[idem[ik]] = true\n"
    "  end\n"
    "end\n"
    "local rec = {}\n"
    "local recs = redis.call('HMGET', KT, unpack(want))\n"
    "for j = 1, #want do\n"
    "  if recs[j] then rec[want[j]] = decode(recs[j]) end\n"
    "end\n"
    "local kinds, ids, seen_idem, seen_id = {}, {}, {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  local b = 3 + i * 9\n"
    "  local id, nn, ik = ARGV[b], ARGV[b + 1], ARGV[b + 3]\n"
    "  local kind\n"
    "  if ik ~= '' then\n"
    "    local ex = seen_idem[ik]\n"
    "    local exn\n"
    "    if ex then\n"
    "      exn = seen_id[ex]\n"
    "    else\n"
    "      ex = idem[ik]\n"
    "      if ex then\n"
    "        if rec[ex] then exn = rec[ex].n else ex = nil end\n"
    "      end\n"
    "    end\n"
    "    if ex then\n"
    "      if ex == id and exn == nn then kind = 2 else kind = 3 end\n"
    "      ids[i + 1] = ex\n"
    "    end\n"
    "  end\n"
    "  if not kind then\n"
    "    if ARGV[b + 2] == '3' then return {4, i, 'id'} end\n"
    "    local exn = seen_id[id]\n"
    "    if not exn and rec[id] then exn = rec[id].n end\n"
    "    if exn then\n"
    "      if exn ~= nn then return {4, i, 'id'} end\n"
    "      kind = 2\n"
    "    else\n"
    "      kind = 1\n"
    "      seen_id[id] = nn\n",
    "      if ik ~= '' then seen_idem[ik] = id end\n"
    "    end\n"
    "    ids[i + 1] = id\n"
    "  end\n"
    "  kinds[i + 1] = kind\n"
    "end\n"
    "local seq = tonumber(redis.call('HGET', KM, 'seq') or '0')\n"
    "if seq + n >= SPAN then return {13, 0, 'seq'} end\n"
    "local made = 0\n"
    "local hp, ht, zr, zs, hi = {}, {}, {}, {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  local b = 3 + i * 9\n"
    "  local id = ids[i + 1]\n"
    "  local t\n"
    "  if kinds[i + 1] == 1 then\n"
    "    seq = seq + 1\n"
    "    made = made + 1\n"
    "    t = {st = 2, pr = tonumber(ARGV[b + 5]), seq = seq, att = 0, max = tonumber(ARGV[b + 8]),\n"
    "      tok = 0, cr = now, due = 0, exp = 0, fin = 0, w = '', ik = ARGV[b + 3], n = ARGV[b + 1],\n"
    "      op = '', le = false}\n"
    "    local ra = tonumber(ARGV[b + 7])\n"
    "    if ra > 0 then t.due = ra else t.due = now + tonumber(ARGV[b + 6]) end\n"
    "    if t.due > now then t.st = 1 end\n"
    "    hp[#hp + 1] = id\n"
    "    hp[#hp + 1] = ARGV[b + 4]\n"
    "    ht[#ht + 1] = id\n"
    "    ht[#ht + 1] = encode(t)\n"
    "  elseif kinds[i + 1] == 2 and rec[id] then\n"
    "    -- this request's own earlier attempt (a resend): make sure it is complete and indexed\n"
    "    t = rec[id]\n"
    "    redis.call('HSETNX', KP, id, ARGV[b + 4])\n"
    "  end\n"
    "  if t then\n"
    "    if t.st == 2 then\n"
    "      zr[#zr + 1] = rscore(t)\n"
    "      zr[#zr + 1] = id\n"
    "    elseif t.st == 1 then\n"
    "      zs[#zs + 1] = t.due\n"
    "      zs[#zs + 1] = id\n"
    "    end\n"
    "    if t.ik ~= '' then\n"
    "      hi[#hi + 1] = t.ik\n"
    "      hi[#hi + 1] = id\n"
    "    end\n"
    "  end\n"
    "end\n"
    "-- the record and the payload first, then the indexes that make the task visible\n"
    "if #hp > 0 then redis.call('HSET', KP, unpack(hp)) end\n"
    "if #ht > 0 then redis.call('HSET', KT, unpack(ht)) end\n"
    "if #zr > 0 then redis.call('ZADD', KR, unpack(zr)) end\n"
    "if #zs > 0 then redis.call('ZADD', KS, unpack(zs)) end\n"
    "if #hi > 0 then redis.call('HSET', KI, unpack(hi)) end\n"
    "if made > 0 then redis.call('HSET', KM, 'seq', num(seq)) end\n"
    "local r = {0}\n"
    "for i = 1, n do\n"
    "  r[#r + 1] = kinds[i]\n"
    "  r[#r + 1] = ids[i]\n"
    "end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_claim[] = {
    "-- ARGV: now, lease_ms, worker, max, token floor. Returns {count, next_due, 14 fields per task}.\n"
    "local now = clock(ARGV[1])\n"
    "local lease = tonumber(ARGV[2])\n"
    "local want = tonumber(ARGV[4])\n"
    "settle(now)\n"
    "local r = {0, -1}\n"
    "local ids = redis.call('ZRANGE', KR, 0, want - 1)\n"
    "local got = 0\n"
    "if #ids > 0 then\n"
    "  local recs = redis.call('HMGET', KT, unpack(ids))\n"
    "  local pls = redis.call('HMGET', KP, unpack(ids))\n"
    "  local tok = tonumber(redis.call('HGET', KM, 'tok') or '0')\n"
    "  local floor = tonumber(ARGV[5])\n"
    "  if floor > tok then tok = floor end\n"
    "  local zl, hs = {}, {}\n"
    "  for i = 1, #ids do\n"
    "    if recs[i] then\n"
    "      local t = decode(recs[i])\n"
    "      if t.st == 2 then\n"
    "        tok = tok + 1\n"
    "        got = got + 1\n"
    "        t.st = 3\n"
    "        t.att = t.att + 1\n"
    "        t.tok = tok\n"
    "        t.exp = now + lease\n"
    "        t.w = ARGV[3]\n"
    "        zl[#zl + 1] = t.exp\n"
    "        zl[#zl + 1] = ids[i]\n"
    "        hs[#hs + 1] = ids[i]\n"
    "        hs[#hs + 1] = encode(t)\n"
    "        out(r, ids[i], t, tok, pls[i] or '')\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if got > 0 then\n"
    "    redis.call('ZADD', KL, unpack(zl))\n"
    "    redis.call('HSET', KT, unpack(hs))\n"
    "    redis.call('HSET', KM, 'tok', num(tok))\n"
    "  end\n"
    "  redis.call('ZREMRANGEBYRANK', KR, 0, #ids - 1)\n"
    "end\n"
    "r[1] = got\n"
    "if got == 0 then\n"
    "  local f = redis.call('ZRANGE', KS, 0, 0, 'WITHSCORES')\n"
    "  if #f > 0 then r[2] = tonumber(f[2]) end\n"
    "end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_extend[] = {
    "-- ARGV: now, id, token, lease_ms. Returns {-1} (no such task here), {0, expires},\n"
    "-- {3, state} (finished under this token) or {2, state} (lease lost).\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "local t = load(id)\n"
    "if not t then return {-1} end\n"
    "local c = lease_case(t, ARGV[3], now)\n"
    "if c == 1 then return {3, t.st} end\n"
    "if c == 2 then return {2, state_now(t, now)} end\n"
    "t.exp = now + tonumber(ARGV[4])\n"
    "redis.call('ZADD', KL, t.exp, id)\n"
    "save(id, t)\n"
    "return {0, t.exp}\n",
    NULL
};

static const char *const predi_lua_abandon[] = {
    "-- ARGV: now, id, token, op nonce. Returns {-1}, {0}, {3, state} or {2, state}.\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "local t = load(id)\n"
    "if not t then return {-1} end\n"
    "local c = lease_case(t, ARGV[3], now)\n"
    "if c ~= 0 then\n"
    "  if t.op == ARGV[4] then return {0} end\n"
    "  if c == 1 then return {3, t.st} end\n"
    "  return {2, state_now(t, now)}\n"
    "end\n"
    "t.att = t.att - 1\n"
    "t.exp = 0\n"
    "t.st = 2\n"
    "t.due = now\n"
    "t.op = ARGV[4]\n"
    "redis.call('ZADD', KR, rscore(t), id)\n"
    "save(id, t)\n"
    "redis.call('ZREM', KL, id)\n"
    "return {0}\n",
    NULL
};

static const char *const predi_lua_nack[] = {
    "-- ARGV: now, id, token, op nonce, retry delay, has reason, reason.\n"
    "-- Returns {-1}, {0, new state}, {3, state} or {2, state}.\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "local t = load(id)\n"
    "if not t then return {-1} end\n"
    "local c = lease_case(t, ARGV[3], now)\n"
    "local mark = ARGV[4] .. ':'\n"
    "if c ~= 0 then\n"
    "  if string.sub(t.op, 1, #mark) == mark then return {0, tonumber(string.sub(t.op, #mark + 1))} end\n"
    "  if c == 1 then return {3, t.st} end\n"
    "  return {2, state_now(t, now)}\n"
    "end\n"
    "local reason = false\n"
    "if ARGV[6] == '1' then reason = ARGV[7] end\n"
    "local st\n"
    "if t.att >= t.max then st = 6 elseif tonumber(ARGV[5]) > 0 then st = 1 else st = 2 end\n"
    "t.op = mark .. st\n"
    "st = fail(id, t, now, tonumber(ARGV[5]), reason)\n"
    "redis.call('ZREM', KL, id)\n"
    "return {0, st}\n",
    NULL
};

static const char *const predi_lua_complete[] = {
    "-- ARGV: now, id, token, op nonce, failed (0/1), data. Returns {-1} (no such task here), {0}\n"
    "-- (done, or done by this very call before), {17, state} (already completed with this token\n"
    "-- by another call) or {2, state} (lease lost).\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "local t = load(id)\n"
    "if not t then return {-1} end\n"
    "local c = lease_case(t, ARGV[3], now)\n"
    "if c == 1 then\n"
    "  if t.op == ARGV[4] then return {0} end\n"
    "  return {17, t.st}\n"
    "end\n"
    "if c == 2 then return {2, state_now(t, now)} end\n"
    "local m = fmem(t, id)\n"
    "if ARGV[5] == '1' then t.st = 5 else t.st = 4 end\n"
    "t.fin = now\n"
    "t.exp = 0\n"
    "t.op = ARGV[4]\n"
    "-- the result, the finished indexes and the record first; the lease index last\n"
    "redis.call('HSET', KX, id, ARGV[6])\n"
    "redis.call('ZADD', KF, now, m)\n"
    "redis.call('ZADD', KZ, now, m)\n"
    "save(id, t)\n"
    "if t.st == 5 then redis.call('HINCRBY', KM, 'failed', 1) else redis.call('HINCRBY', KM, 'completed', 1) end\n"
    "redis.call('ZREM', KL, id)\n"
    "return {0}\n",
    NULL
};

static const char *const predi_lua_get[] = {
    "-- ARGV: now, id, what (1 task, 2 result). Returns {-1}; {0, 14 task fields};\n"
    "-- {0, state, attempts, finished, data} or {1, state, had result} for a result.\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "if redis.call('HEXISTS', KT, id) == 0 then return {-1} end\n"
    "settle(now)\n"
    "local t = load(id)\n"
    "if ARGV[3] == '1' then\n"
    "  local r = {0}\n"
    "  out(r, id, t, 0)\n"
    "  return r\n"
    "end\n"
    "local data = false\n"
    "if t.st == 4 or t.st == 5 then data = redis.call('HGET', KX, id) end\n"
    "if not data then return {1, t.st} end\n"
    "return {0, t.st, t.att, t.fin, data}\n",
    NULL
};

static const char *const predi_lua_stats[] = {
    "-- ARGV: now. Returns {scheduled, ready, leased, completed, failed, dead}.\n"
    "settle(clock(ARGV[1]))\n"
    "return {redis.call('ZCARD', KS), redis.call('ZCARD', KR), redis.call('ZCARD', KL),\n"
    "  tonumber(redis.call('HGET', KM, 'completed') or '0'),\n"
    "  tonumber(redis.call('HGET', KM, 'failed') or '0'), redis.call('ZCARD', KD)}\n",
    NULL
};

static const char *const predi_lua_listdead[] = {
    "-- ARGV: now, offset, limit. Returns {total, 14 fields per task}.\n"
    "settle(clock(ARGV[1]))\n"
    "local r = {redis.call('ZCARD', KD)}\n"
    "local off = tonumber(ARGV[2])\n"
    "local m = redis.call('ZRANGE', KD, off, off + tonumber(ARGV[3]) - 1)\n"
    "for i = 1, #m do\n"
    "  local id = string.sub(m[i], 13)\n"
    "  local t = load(id)\n"
    "  if t then out(r, id, t, 0) end\n"
    "end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_requeue[] = {
    "-- ARGV: now, id, op nonce. Returns {-1}, {0} or {3, state}.\n"
    "local now = clock(ARGV[1])\n"
    "local id = ARGV[2]\n"
    "if redis.call('HEXISTS', KT, id) == 0 then return {-1} end\n"
    "settle(now)\n"
    "local t = load(id)\n"
    "if t.st ~= 6 then\n"
    "  if t.op == ARGV[3] then return {0} end\n"
    "  return {3, t.st}\n"
    "end\n"
    "local m = fmem(t, id)\n"
    "t.st = 2\n"
    "t.att = 0\n"
    "t.fin = 0\n"
    "t.due = now\n"
    "t.op = ARGV[3]\n"
    "redis.call('ZADD', KR, rscore(t), id)\n"
    "save(id, t)\n"
    "redis.call('ZREM', KD, m)\n"
    "return {0}\n",
    NULL
};

static const char *const predi_lua_cleanup[] = {
    "-- ARGV: now, older_than_ms, what (1 tasks, 2 results), include dead, limit (0: none).\n"
    "-- Tasks: removes finished tasks with their payloads, results and idempotency keys, records\n"
    "-- \"id nonce\" in the gc set for the tenant directory; returns {removed, gc members...}.\n"
    "-- Results: returns {removed}.\n"
    "local now = clock(ARGV[1])\n"
    "local cutoff = now - tonumber(ARGV[2])\n"
    "local budget = tonumber(ARGV[5])\n"
    "if budget == 0 then budget = -1 end\n"
    "local removed = 0\n"
    "if ARGV[3] == '2' then\n"
    "  local m\n"
    "  if budget < 0 then m = redis.call('ZRANGEBYSCORE', KZ, '-inf', cutoff)\n"
    "  else m = redis.call('ZRANGEBYSCORE', KZ, '-inf', cutoff, 'LIMIT', 0, budget) end\n"
    "  for i = 1, #m do\n"
    "    redis.call('HDEL', KX, string.sub(m[i], 13))\n"
    "    redis.call('ZREM', KZ, m[i])\n"
    "    removed = removed + 1\n"
    "  end\n"
    "  return {removed}\n"
    "end\n"
    "settle(now)\n"
    "local function sweep(key)\n"
    "  if budget == 0 then return end\n"
    "  local m\n"
    "  if budget < 0 then m = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff)\n"
    "  else m = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff, 'LIMIT', 0, budget) end\n"
    "  for i = 1, #m do\n"
    "    local id = string.sub(m[i], 13)\n"
    "    local t = load(id)\n"
    "    if t then\n"
    "      redis.call('SADD', KG, id .. ' ' .. t.n)\n"
    "      if t.ik ~= '' and redis.call('HGET', KI, t.ik) == id then redis.call('HDEL', KI, t.ik) end\n"
    "      if t.st == 4 then redis.call('HINCRBY', KM, 'completed', -1) end\n"
    "      if t.st == 5 then redis.call('HINCRBY', KM, 'failed', -1) end\n"
    "      redis.call('HDEL', KX, id)\n"
    "      redis.call('HDEL', KP, id)\n"
    "      redis.call('HDEL', KT, id)\n"
    "      redis.call('ZREM', KZ, m[i])\n"
    "    end\n"
    "    redis.call('ZREM', key, m[i])\n"
    "    removed = removed + 1\n"
    "    if budget > 0 then budget = budget - 1 end\n"
    "  end\n"
    "end\n"
    "sweep(KF)\n"
    "if ARGV[4] == '1' then sweep(KD) end\n"
    "local r = {removed}\n"
    "local g = redis.call('SMEMBERS', KG)\n"
    "for i = 1, #g do r[#r + 1] = g[i] end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_reserve[] = {
    "-- ARGV: count, then per id: id, queue, nonce. Registers the queues in the tenant's queue set,\n"
    "-- then reserves each id for its queue. Returns per id: 1 reserved now, 2 already reserved for\n"
    "-- this queue, 3 reserved for another queue.\n"
    "local n = tonumber(ARGV[1])\n"
    "local ids, qs, seen = {}, {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  ids[i + 1] = ARGV[2 + 3 * i]\n"
    "  local q = ARGV[3 + 3 * i]\n"
    "  if not seen[q] then\n"
    "    qs[#qs + 1] = q\n"
    "    seen[q] = true\n"
    "  end\n"
    "end\n"
    "redis.call('SADD', KQS, unpack(qs))\n"
    "local cur = redis.call('HMGET', KIDS, unpack(ids))\n"
    "local r, now_set, hs = {}, {}, {}\n"
    "for i = 0, n - 1 do\n"
    "  local id, q = ids[i + 1], ARGV[3 + 3 * i]\n"
    "  local v = cur[i + 1] or now_set[id]\n"
    "  if not v then\n"
    "    v = q .. ' ' .. ARGV[4 + 3 * i]\n"
    "    now_set[id] = v\n"
    "    hs[#hs + 1] = id\n"
    "    hs[#hs + 1] = v\n"
    "    r[i + 1] = 1\n"
    "  elseif qof(v) == q then\n"
    "    r[i + 1] = 2\n"
    "  else\n"
    "    r[i + 1] = 3\n"
    "  end\n"
    "end\n"
    "if #hs > 0 then redis.call('HSET', KIDS, unpack(hs)) end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_dirfix[] = {
    "-- ARGV: count, then triples op, id, value (\"queue nonce\"). D: delete the entry if it is exactly\n"
    "-- value. S: set it to value unless it belongs to another queue. Returns how many changed.\n"
    "local n = tonumber(ARGV[1])\n"
    "local changed = 0\n"
    "for i = 0, n - 1 do\n"
    "  local op, id, v = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]\n"
    "  local cur = redis.call('HGET', KIDS, id)\n"
    "  if op == 'D' then\n"
    "    if cur == v then\n"
    "      redis.call('HDEL', KIDS, id)\n"
    "      changed = changed + 1\n"
    "    end\n"
    "  elseif (not cur) or qof(cur) == qof(v) then\n"
    "    if cur ~= v then\n"
    "      redis.call('HSET', KIDS, id, v)\n"
    "      changed = changed + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return changed\n",
    NULL
};

static const char *const predi_lua_subscribe[] = {
    "-- ARGV: now, ttl_ms, worker, callback, then queues. Returns how many rows are new.\n"
    "local now = clock(ARGV[1])\n"
    "local exp = now + tonumber(ARGV[2])\n"
    "local created = 0\n"
    "for i = 5, #ARGV do\n"
    "  local f = ARGV[3] .. ' ' .. ARGV[i]\n"
    "  local s = sub_load(f)\n"
    "  local c = now\n"
    "  if s and s.e > now then c = s.c else created = created + 1 end\n"
    "  redis.call('HSET', KSUB, f, struct.pack(SUBHDR, c, now, exp) .. ARGV[4])\n"
    "  redis.call('ZADD', KSX, exp, f)\n"
    "end\n"
    "return created\n",
    NULL
};

static const char *const predi_lua_unsubscribe[] = {
    "-- ARGV: now, worker, queue ('' for every queue). Removes the rows, expired ones too; returns\n"
    "-- how many live rows went.\n"
    "local now = clock(ARGV[1])\n"
    "local fs\n"
    "if ARGV[3] ~= '' then\n"
    "  fs = {ARGV[2] .. ' ' .. ARGV[3]}\n"
    "else\n"
    "  fs = {}\n"
    "  local all = redis.call('HKEYS', KSUB)\n"
    "  local pre = ARGV[2] .. ' '\n"
    "  for i = 1, #all do\n"
    "    if string.sub(all[i], 1, #pre) == pre then fs[#fs + 1] = all[i] end\n"
    "  end\n"
    "end\n"
    "local removed = 0\n"
    "for i = 1, #fs do\n"
    "  local s = sub_load(fs[i])\n"
    "  if s then\n"
    "    if s.e > now then removed = removed + 1 end\n"
    "    redis.call('HDEL', KSUB, fs[i])\n"
    "    redis.call('ZREM', KSX, fs[i])\n"
    "  end\n"
    "end\n"
    "return removed\n",
    NULL
};

static const char *const predi_lua_listsubs[] = {
    "-- ARGV: now, by (1 queue, 2 worker), name. Returns the live rows, 6 fields each: worker,\n"
    "-- queue, callback, created, updated, expires.\n"
    "local now = clock(ARGV[1])\n"
    "local all = redis.call('HGETALL', KSUB)\n"
    "local r = {}\n"
    "for i = 1, #all, 2 do\n"
    "  local f = all[i]\n"
    "  local sp = string.find(f, ' ', 1, true)\n"
    "  local w, q = string.sub(f, 1, sp - 1), string.sub(f, sp + 1)\n"
    "  if (ARGV[2] == '1' and q == ARGV[3]) or (ARGV[2] == '2' and w == ARGV[3]) then\n"
    "    local c, u, e, p = struct.unpack(SUBHDR, all[i + 1])\n"
    "    if e > now then\n"
    "      local n = #r\n"
    "      r[n + 1] = w\n"
    "      r[n + 2] = q\n"
    "      r[n + 3] = string.sub(all[i + 1], p)\n"
    "      r[n + 4] = c\n"
    "      r[n + 5] = u\n"
    "      r[n + 6] = e\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return r\n",
    NULL
};

static const char *const predi_lua_expiresubs[] = {
    "-- ARGV: now. Deletes the expired rows for good; returns how many.\n"
    "local now = clock(ARGV[1])\n"
    "local fs = redis.call('ZRANGEBYSCORE', KSX, '-inf', now)\n"
    "local removed = 0\n"
    "for i = 1, #fs do\n"
    "  local s = sub_load(fs[i])\n"
    "  if s and s.e <= now then\n"
    "    redis.call('HDEL', KSUB, fs[i])\n"
    "    removed = removed + 1\n"
    "  end\n"
    "end\n"
    "if #fs > 0 then redis.call('ZREMRANGEBYSCORE', KSX, '-inf', now) end\n"
    "return removed\n",
    NULL
};


enum {
    PREDI_S_ENQUEUE,
    PREDI_S_CLAIM,
    PREDI_S_EXTEND,
    PREDI_S_ABANDON,
    PREDI_S_NACK,
    PREDI_S_COMPLETE,
    PREDI_S_GET,
    PREDI_S_STATS,
    PREDI_S_LISTDEAD,
    PREDI_S_REQUEUE,
    PREDI_S_CLEANUP,
    PREDI_S_RESERVE,
    PREDI_S_DIRFIX,
    PREDI_S_SUBSCRIBE,
    PREDI_S_UNSUBSCRIBE,
    PREDI_S_LISTSUBS,
    PREDI_S_EXPIRESUBS,
    PREDI_S_COUNT
};

typedef struct predi_script_def {
    const char *name;
    int tenant; /* 1: a tenant script (tenant library, tenant keys) */
    const char *const *body;
} predi_script_def;

static const predi_script_def predi_script_defs[PREDI_S_COUNT] = {
    { "enqueue", 0, predi_lua_enqueue },       { "claim", 0, predi_lua_claim },
    { "extend", 0, predi_lua_extend },         { "abandon", 0, predi_lua_abandon },
    { "nack", 0, predi_lua_nack },             { "complete", 0, predi_lua_complete },
    { "get", 0, predi_lua_get },               { "stats", 0, predi_lua_stats },
    { "listdead", 0, predi_lua_listdead },     { "requeue", 0, predi_lua_requeue },
    { "cleanup", 0, predi_lua_cleanup },
    { "reserve", 1, predi_lua_reserve },       { "dirfix", 1, predi_lua_dirfix },
    { "subscribe", 1, predi_lua_subscribe },   { "unsubscribe", 1, predi_lua_unsubscribe },
    { "listsubs", 1, predi_lua_listsubs },     { "expiresubs", 1, predi_lua_expiresubs },
};

static const char *const predi_queue_suffixes[PERS_REDIS_QUEUE_KEY_COUNT + 1] = {
    "m", "ready", "sched", "leased", "dead", "done", "idem", "tasks", "payloads", "results",
    "resultidx", "gc", NULL
};
static const char *const predi_tenant_suffixes[PERS_REDIS_TENANT_KEY_COUNT] = {
    "ids", "queues", "subs", "subexp"
};

/* Concatenates pieces into buf like snprintf; returns the length needed. */
static size_t predi_join(const char *const *a, const char *const *b, char *buf, size_t size)
{
    size_t n = 0, len, i;
    const char *const *parts[2];
    int p;
    parts[0] = a;
    parts[1] = b;
    for (p = 0; p < 2; p++) {
        for (i = 0; parts[p][i] != NULL; i++) {
            len = strlen(parts[p][i]);
            if (buf != NULL && n < size) {
                size_t room = size - n - 1 < len ? size - n - 1 : len;
                if (size - n > 0)
                    memcpy(buf + n, parts[p][i], room);
            }
            n += len;
        }
    }
    if (buf != NULL && size > 0)
        buf[n < size ? n : size - 1] = '\0';
    return n;
}

static size_t predi_script_text(int which, char *buf, size_t size)
{
    const predi_script_def *s = &predi_script_defs[which];
    return predi_join(s->tenant ? predi_lua_tlib : predi_lua_lib, s->body, buf, size);
}

/* ---------------------------------------------------------------------------------------------
   SHA-1 (FIPS 180-4), for EVALSHA names computed without asking the server
   ------------------------------------------------------------------------------------------- */

static uint32_t predi_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void predi_sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 80; i++)
        w[i] = predi_rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = h[0];
    b = h[1];
    c = h[2];
    d = h[3];
    e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        t = predi_rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = predi_rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void predi_sha1_hex(const char *data, size_t len, char hex[41])
{
    uint32_t h[5];
    unsigned char tail[128];
    size_t full = len / 64 * 64, rest = len - full, tail_len, i;
    uint64_t bits = (uint64_t)len * 8u;
    h[0] = 0x67452301u;
    h[1] = 0xEFCDAB89u;
    h[2] = 0x98BADCFEu;
    h[3] = 0x10325476u;
    h[4] = 0xC3D2E1F0u;
    for (i = 0; i < full; i += 64)
        predi_sha1_block(h, (const unsigned char *)data + i);
    memset(tail, 0, sizeof tail);
    if (rest > 0)
        memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    predi_sha1_block(h, tail);
    if (tail_len == 128)
        predi_sha1_block(h, tail + 64);
    for (i = 0; i < 20; i++) {
        static const char digits[] = "0123456789abcdef";
        unsigned v = (unsigned)(h[i / 4] >> (24 - 8 * (i % 4))) & 0xffu;
        hex[2 * i] = digits[v >> 4];
        hex[2 * i + 1] = digits[v & 15u];
    }
    hex[40] = '\0';
}

/* ---------------------------------------------------------------------------------------------
   Small helpers
   ------------------------------------------------------------------------------------------- */

static int64_t predi_mono_ms(void)
{
    return pers_wall_clock_ms(NULL);
}

static uint64_t predi_mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t predi_random64(const void *salt)
{
    uint64_t r = 0;
    unsigned char bytes[8];
    size_t i;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(bytes, 1, sizeof bytes, f) == sizeof bytes)
            for (i = 0; i < sizeof bytes; i++)
                r = (r << 8) | bytes[i];
        fclose(f);
    }
    r ^= predi_mix64((uint64_t)pers_wall_clock_ms(NULL));
    r ^= predi_mix64((uint64_t)(uintptr_t)salt ^ (uint64_t)clock());
    return predi_mix64(r);
}

static uint64_t predi_hash(const char *a, const char *b)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const unsigned char *p;
    for (p = (const unsigned char *)a; *p; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    h ^= 0x1f;
    h *= UINT64_C(0x100000001b3);
    for (p = (const unsigned char *)(b != NULL ? b : ""); *p; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    h = predi_mix64(h);
    return h != 0 ? h : 1;
}

static void predi_copy(char *dst, size_t size, const char *src, size_t len)
{
    if (size == 0)
        return;
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int predi_name_ok(const char *s)
{
    return pers_check_name(s, NULL, 0) == 0;
}

static int predi_key_ok(const char *s)
{
    return pers_check_key(s, NULL, 0) == 0;
}

/* ---------------------------------------------------------------------------------------------
   Addresses and URLs
   ------------------------------------------------------------------------------------------- */

static void predi_why(char *why, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void predi_why(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || size == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(why, size, fmt, ap) < 0)
        why[0] = '\0';
    va_end(ap);
}

/* Parses a decimal in [lo, hi] from s[0..n); -1 if it is not one. */
static int predi_parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    size_t i;
    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int predi_host_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > 255)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#')
            return 0;
    }
    return 1;
}

PREDI_DEF int pers_redis_parse_addr(const char *addr, pers_redis_endpoint *out, char *why,
                                    size_t why_size)
{
    const char *host, *colon;
    size_t host_len, len;
    int64_t port = 6379;
    if (addr == NULL || out == NULL) {
        predi_why(why, why_size, "is missing");
        return -1;
    }
    len = strlen(addr);
    if (len == 0) {
        predi_why(why, why_size, "is empty; write it as host:port, e.g. \"localhost:6379\"");
        return -1;
    }
    if (addr[0] == '/') {
        if (len >= sizeof out->host) {
            predi_why(why, why_size, "is a socket path longer than %lu characters",
                      (unsigned long)(sizeof out->host - 1));
            return -1;
        }
        memcpy(out->host, addr, len + 1);
        out->port = 0;
        return 0;
    }
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL) {
            predi_why(why, why_size, "has '[' without ']' (write IPv6 as \"[::1]:6379\")");
            return -1;
        }
        host = addr + 1;
        host_len = (size_t)(end - host);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && end[1] != ':') {
            predi_why(why, why_size, "has text after ']' that is not \":port\"");
            return -1;
        }
    } else {
        host = addr;
        colon = strrchr(addr, ':');
        if (colon != NULL && strchr(addr, ':') != colon) {
            predi_why(why, why_size, "has several ':' (write IPv6 as \"[::1]:6379\")");
            return -1;
        }
        host_len = colon != NULL ? (size_t)(colon - addr) : len;
    }
    if (!predi_host_ok(host, host_len)) {
        predi_why(why, why_size, "has no valid host name before the port");
        return -1;
    }
    if (colon != NULL && predi_parse_int(colon + 1, strlen(colon + 1), 1, 65535, &port) != 0) {
        predi_why(why, why_size, "has a port that is not a number in 1..65535");
        return -1;
    }
    predi_copy(out->host, sizeof out->host, host, host_len);
    out->port = (int)port;
    return 0;
}

static int predi_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* %-decodes s[0..n) into out (size bytes); -1 on a bad escape or when it does not fit. */
static int predi_unescape(const char *s, size_t n, char *out, size_t size)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = predi_hexval(s[i + 1]);
            lo = predi_hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

PREDI_DEF int pers_redis_parse_url(const char *url, pers_redis_endpoint *out, char *why,
                                   size_t why_size)
{
    const char *p, *at, *slash, *hostport, *end;
    char hp[300];
    size_t n;
    if (url == NULL || out == NULL) {
        predi_why(why, why_size, "is missing");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (strncmp(url, "rediss://", 9) == 0) {
        predi_why(why, why_size, "uses rediss:// (TLS), which this backend does not support");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        predi_why(why, why_size, "must start with redis://");
        return -1;
    }
    p = url + 8;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = end;
    at = NULL;
    {
        const char *q;
        for (q = p; q < slash; q++)
            if (*q == '@')
                at = q; /* the last '@' before the path: passwords may contain '@' */
    }
    if (at != NULL) {
        const char *colon = (const char *)memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon != NULL ? colon : at;
        if (predi_unescape(p, (size_t)(user_end - p), out->username, sizeof out->username) != 0) {
            predi_why(why, why_size, "has a user name that is too long or badly %%-encoded");
            return -1;
        }
        if (colon != NULL &&
            predi_unescape(colon + 1, (size_t)(at - colon - 1), out->password,
                           sizeof out->password) != 0) {
            memset(out->password, 0, sizeof out->password);
            predi_why(why, why_size, "has a password that is too long or badly %%-encoded");
            return -1;
        }
        hostport = at + 1;
    } else {
        hostport = p;
    }
    n = (size_t)(slash - hostport);
    if (n == 0 || n >= sizeof hp) {
        memset(out->password, 0, sizeof out->password);
        predi_why(why, why_size, "has no host (redis://host:port/db)");
        return -1;
    }
    memcpy(hp, hostport, n);
    hp[n] = '\0';
    if (pers_redis_parse_addr(hp, out, why, why_size) != 0 || out->port == 0) {
        char inner[200];
        predi_copy(inner, sizeof inner, why != NULL ? why : "", why != NULL ? strlen(why) : 0);
        memset(out->password, 0, sizeof out->password);
        predi_why(why, why_size, "has a host part that %s",
                  out->port == 0 && inner[0] == '\0' ? "is a path" : inner);
        return -1;
    }
    out->db = 0;
    if (slash < end && slash[1] != '\0') {
        const char *db = slash + 1;
        size_t dn = strcspn(db, "?#");
        if (predi_parse_int(db, dn, 0, 2147483647, &out->db) != 0 || db[dn] != '\0') {
            memset(out->password, 0, sizeof out->password);
            predi_why(why, why_size,
                      "has a database that is not a number in 0..2147483647 (no query string)");
            return -1;
        }
    }
    return 0;
}

PREDI_DEF size_t pers_redis_key(char *buf, size_t size, const char *prefix, const char *tenant,
                                const char *queue, const char *suffix)
{
    int n;
    if (prefix == NULL)
        prefix = "";
    if (suffix == NULL)
        suffix = "";
    if (tenant != NULL && queue != NULL)
        n = snprintf(buf, size, "%s:{%s|%s}:%s", prefix, tenant, queue, suffix);
    else if (tenant != NULL)
        n = snprintf(buf, size, "%s:{%s}:%s", prefix, tenant, suffix);
    else
        n = snprintf(buf, size, "%s:%s", prefix, suffix);
    return n < 0 ? 0 : (size_t)n;
}

PREDI_DEF const char *const *pers_redis_queue_key_suffixes(void)
{
    return predi_queue_suffixes;
}

PREDI_DEF size_t pers_redis_script_source(const char *name, char *buf, size_t size)
{
    int i;
    if (name == NULL)
        return 0;
    for (i = 0; i < PREDI_S_COUNT; i++)
        if (strcmp(predi_script_defs[i].name, name) == 0)
            return predi_script_text(i, buf, size);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   The backend handle
   ------------------------------------------------------------------------------------------- */

typedef struct predi_cache_entry {
    uint64_t hash; /* of (tenant, id); 0: empty */
    char queue[PERS_NAME_MAX + 1];
} predi_cache_entry;

typedef struct predi_backend {
    plg_allocator alloc;
    plg_logger logger;
    pers_clock clock;
    int store_clock;            /* 1: "now" from the store's clock, else the server's TIME */
    pers_redis_endpoint ep;     /* password included: never printed */
    char label[300];            /* "host:port" or the socket path, for messages */
    char prefix[PREDI_PREFIX_MAX + 1];
    int64_t connect_timeout_ms, command_timeout_ms, backoff_min_ms, backoff_max_ms;
    uint64_t max_payload;
    int eviction_is_error;
    int validated;              /* PERS_OPEN_VALIDATED: a store checks every argument first */
    int opening;                /* during open_store: authentication failures are CONFIG */
    char *script_text[PREDI_S_COUNT];
    size_t script_len[PREDI_S_COUNT];
    char script_sha[PREDI_S_COUNT][41];
    /* the pool */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    redisContext **conns;
    int64_t *last_used;         /* per slot: when its connection last answered */
    size_t *free_slots;
    size_t pool_size, free_count;
    int down;                   /* the last connect failed: gate further attempts */
    int probing;                /* a connect is in progress while down */
    int64_t next_try_ms, backoff_ms;
    int64_t down_code;
    char down_msg[PERS_DETAIL_SIZE];
    /* tokens, nonces, generated ids (atomics) */
    uint64_t token_floor;
    uint64_t nonce_base, nonce_counter;
    uint64_t id_prefix, id_counter;
    /* caches */
    pthread_mutex_t cache_lock;
    predi_cache_entry *cache;
    char (*tenants_seen)[PERS_NAME_MAX + 1];
} predi_backend;

static void predi_log(const predi_backend *b, plg_log_level level, const char *fmt, ...)
    PLG_PRINTF(3, 4);
static void predi_log(const predi_backend *b, plg_log_level level, const char *fmt, ...)
{
    char line[PERS_DETAIL_SIZE + 256];
    va_list ap;
    if (b->logger.log_fn == NULL)
        return;
    va_start(ap, fmt);
    if (vsnprintf(line, sizeof line, fmt, ap) < 0)
        line[0] = '\0';
    va_end(ap);
    b->logger.log_fn(b->logger.user, level, line);
}

static void *predi_alloc(predi_backend *b, size_t size)
{
    return pers_alloc(&b->alloc, size);
}

static void predi_free(predi_backend *b, void *ptr, size_t size)
{
    pers_free(&b->alloc, ptr, size);
}

/* "now" for a script: the store's clock in milliseconds, or "" (the script reads TIME). */
static const char *predi_now(predi_backend *b, char *buf, size_t size)
{
    if (!b->store_clock)
        return "";
    snprintf(buf, size, "%lld", (long long)b->clock.now_ms(b->clock.user));
    return buf;
}

static void predi_nonce(predi_backend *b, char *buf, size_t size)
{
    uint64_t n = __atomic_add_fetch(&b->nonce_counter, 1, __ATOMIC_RELAXED);
    snprintf(buf, size, "%016llx%llx", (unsigned long long)b->nonce_base, (unsigned long long)n);
}

static void predi_token_seen(predi_backend *b, uint64_t token)
{
    uint64_t cur = __atomic_load_n(&b->token_floor, __ATOMIC_RELAXED);
    while (token > cur &&
           !__atomic_compare_exchange_n(&b->token_floor, &cur, token, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

/* The id -> queue cache. The script checks that the task is in the queue, so a stale or
   colliding entry costs a second lookup, never a wrong answer. */
static int predi_cache_get(predi_backend *b, const char *tenant, const char *id, char *queue)
{
    uint64_t h = predi_hash(tenant, id);
    predi_cache_entry *e = &b->cache[h % PREDI_CACHE_SLOTS];
    int hit = 0;
    pthread_mutex_lock(&b->cache_lock);
    if (e->hash == h) {
        memcpy(queue, e->queue, sizeof e->queue);
        hit = 1;
    }
    pthread_mutex_unlock(&b->cache_lock);
    return hit;
}

static void predi_cache_put(predi_backend *b, const char *tenant, const char *id,
                            const char *queue)
{
    uint64_t h = predi_hash(tenant, id);
    predi_cache_entry *e = &b->cache[h % PREDI_CACHE_SLOTS];
    pthread_mutex_lock(&b->cache_lock);
    e->hash = h;
    predi_copy(e->queue, sizeof e->queue, queue, strlen(queue));
    pthread_mutex_unlock(&b->cache_lock);
}

static void predi_cache_drop(predi_backend *b, const char *tenant, const char *id)
{
    uint64_t h = predi_hash(tenant, id);
    predi_cache_entry *e = &b->cache[h % PREDI_CACHE_SLOTS];
    pthread_mutex_lock(&b->cache_lock);
    if (e->hash == h)
        e->hash = 0;
    pthread_mutex_unlock(&b->cache_lock);
}

/* 1 when this handle already added tenant to P:tenants. */
static int predi_tenant_known(predi_backend *b, const char *tenant)
{
    uint64_t h = predi_hash(tenant, NULL);
    int known;
    pthread_mutex_lock(&b->cache_lock);
    known = strcmp(b->tenants_seen[h % PREDI_TENANT_SLOTS], tenant) == 0;
    pthread_mutex_unlock(&b->cache_lock);
    return known;
}

static void predi_tenant_mark(predi_backend *b, const char *tenant)
{
    uint64_t h = predi_hash(tenant, NULL);
    pthread_mutex_lock(&b->cache_lock);
    predi_copy(b->tenants_seen[h % PREDI_TENANT_SLOTS], PERS_NAME_MAX + 1, tenant, strlen(tenant));
    pthread_mutex_unlock(&b->cache_lock);
}

/* ---------------------------------------------------------------------------------------------
   Requests: commands built as argument vectors (pointers into the caller's data or into the
   request's own arena), sent as one pipeline
   ------------------------------------------------------------------------------------------- */

typedef struct predi_block {
    struct predi_block *next;
    size_t used, cap;
} predi_block;

typedef struct predi_cmd {
    int script;          /* PREDI_S_* or -1 for a plain command */
    int eval;            /* send as EVAL with the text (after NOSCRIPT) */
    size_t argc, cap;
    const char **argv;
    size_t *argl;
} predi_cmd;

typedef struct predi_req {
    predi_backend *b;
    predi_cmd *cmds;
    size_t count, cap;
    predi_block *blocks;
    redisReply **rep;    /* count replies after predi_exec */
    int oom;
} predi_req;

static void predi_req_init(predi_req *rq, predi_backend *b)
{
    memset(rq, 0, sizeof *rq);
    rq->b = b;
}

static void predi_req_free(predi_req *rq)
{
    size_t i;
    predi_block *blk, *next;
    for (i = 0; i < rq->count; i++) {
        predi_cmd *c = &rq->cmds[i];
        if (c->argv != NULL)
            predi_free(rq->b, (void *)c->argv, c->cap * sizeof *c->argv);
        if (c->argl != NULL)
            predi_free(rq->b, c->argl, c->cap * sizeof *c->argl);
        if (rq->rep != NULL && rq->rep[i] != NULL)
            freeReplyObject(rq->rep[i]);
    }
    if (rq->rep != NULL)
        predi_free(rq->b, rq->rep, rq->cap * sizeof *rq->rep);
    if (rq->cmds != NULL)
        predi_free(rq->b, rq->cmds, rq->cap * sizeof *rq->cmds);
    for (blk = rq->blocks; blk != NULL; blk = next) {
        next = blk->next;
        predi_free(rq->b, blk, sizeof *blk + blk->cap);
    }
    memset(rq, 0, sizeof *rq);
}

/* n bytes of arena memory that stay put until predi_req_free. */
static char *predi_req_mem(predi_req *rq, size_t n)
{
    predi_block *blk = rq->blocks;
    if (blk == NULL || blk->cap - blk->used < n) {
        size_t cap = n > 4000 ? n : 4000;
        blk = (predi_block *)predi_alloc(rq->b, sizeof *blk + cap);
        if (blk == NULL) {
            rq->oom = 1;
            return NULL;
        }
        blk->cap = cap;
        blk->used = 0;
        blk->next = rq->blocks;
        rq->blocks = blk;
    }
    blk->used += n;
    return (char *)(blk + 1) + blk->used - n;
}

static predi_cmd *predi_req_add(predi_req *rq, int script)
{
    predi_cmd *c;
    if (rq->count == rq->cap) {
        size_t cap = rq->cap ? rq->cap * 2 : 4;
        predi_cmd *cmds = (predi_cmd *)predi_alloc(rq->b, cap * sizeof *cmds);
        redisReply **rep = (redisReply **)predi_alloc(rq->b, cap * sizeof *rep);
        if (cmds == NULL || rep == NULL) {
            if (cmds != NULL)
                predi_free(rq->b, cmds, cap * sizeof *cmds);
            if (rep != NULL)
                predi_free(rq->b, rep, cap * sizeof *rep);
            rq->oom = 1;
            return NULL;
        }
        memset(rep, 0, cap * sizeof *rep);
        if (rq->count > 0)
            memcpy(cmds, rq->cmds, rq->count * sizeof *cmds);
        if (rq->cmds != NULL)
            predi_free(rq->b, rq->cmds, rq->cap * sizeof *rq->cmds);
        if (rq->rep != NULL)
            predi_free(rq->b, rq->rep, rq->cap * sizeof *rq->rep);
        rq->cmds = cmds;
        rq->rep = rep;
        rq->cap = cap;
    }
    c = &rq->cmds[rq->count++];
    memset(c, 0, sizeof *c);
    c->script = script;
    return c;
}

static void predi_arg(predi_req *rq, predi_cmd *c, const void *p, size_t n)
{
    if (c == NULL)
        return;
    if (c->argc == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        const char **argv = (const char **)predi_alloc(rq->b, cap * sizeof *argv);
        size_t *argl = (size_t *)predi_alloc(rq->b, cap * sizeof *argl);
        if (argv == NULL || argl == NULL) {
            if (argv != NULL)
                predi_free(rq->b, (void *)argv, cap * sizeof *argv);
            if (argl != NULL)
                predi_free(rq->b, argl, cap * sizeof *argl);
            rq->oom = 1;
            return;
        }
        if (c->argc > 0) {
            memcpy((void *)argv, c->argv, c->argc * sizeof *argv);
            memcpy(argl, c->argl, c->argc * sizeof *argl);
        }
        if (c->argv != NULL)
            predi_free(rq->b, (void *)c->argv, c->cap * sizeof *c->argv);
        if (c->argl != NULL)
            predi_free(rq->b, c->argl, c->cap * sizeof *c->argl);
        c->argv = argv;
        c->argl = argl;
        c->cap = cap;
    }
    c->argv[c->argc] = p != NULL ? (const char *)p : "";
    c->argl[c->argc] = p != NULL ? n : 0;
    c->argc++;
}

static void predi_args(predi_req *rq, predi_cmd *c, const char *s)
{
    predi_arg(rq, c, s, strlen(s));
}

static void predi_argf(predi_req *rq, predi_cmd *c, const char *fmt, ...) PLG_PRINTF(3, 4);
static void predi_argf(predi_req *rq, predi_cmd *c, const char *fmt, ...)
{
    char tmp[512];
    char *mem;
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        rq->oom = 1;
        return;
    }
    mem = predi_req_mem(rq, (size_t)n + 1);
    if (mem == NULL)
        return;
    memcpy(mem, tmp, (size_t)n + 1);
    predi_arg(rq, c, mem, (size_t)n);
}

static void predi_arg_i64(predi_req *rq, predi_cmd *c, int64_t v)
{
    predi_argf(rq, c, "%lld", (long long)v);
}

/* A script command: EVALSHA and its name (switched to EVAL and the text after NOSCRIPT). */
static predi_cmd *predi_req_script(predi_req *rq, int script)
{
    predi_cmd *c = predi_req_add(rq, script);
    predi_arg(rq, c, "EVALSHA", 7);
    predi_arg(rq, c, rq->b->script_sha[script], 40);
    return c;
}

static void predi_arg_key(predi_req *rq, predi_cmd *c, const char *tenant, const char *queue,
                          const char *suffix)
{
    char tmp[PREDI_PREFIX_MAX + 2 * PERS_NAME_MAX + 32];
    size_t n = pers_redis_key(tmp, sizeof tmp, rq->b->prefix, tenant, queue, suffix);
    char *mem;
    if (n >= sizeof tmp) {
        rq->oom = 1;
        return;
    }
    mem = predi_req_mem(rq, n + 1);
    if (mem == NULL)
        return;
    memcpy(mem, tmp, n + 1);
    predi_arg(rq, c, mem, n);
}

/* numkeys and the keys of a queue script. */
static void predi_arg_qkeys(predi_req *rq, predi_cmd *c, const char *tenant, const char *queue)
{
    int i;
    predi_argf(rq, c, "%d", PERS_REDIS_QUEUE_KEY_COUNT);
    for (i = 0; i < PERS_REDIS_QUEUE_KEY_COUNT; i++)
        predi_arg_key(rq, c, tenant, queue, predi_queue_suffixes[i]);
}

static void predi_arg_tkeys(predi_req *rq, predi_cmd *c, const char *tenant)
{
    int i;
    predi_argf(rq, c, "%d", PERS_REDIS_TENANT_KEY_COUNT);
    for (i = 0; i < PERS_REDIS_TENANT_KEY_COUNT; i++)
        predi_arg_key(rq, c, tenant, NULL, predi_tenant_suffixes[i]);
}

/* ---------------------------------------------------------------------------------------------
   Connections: the pool, connecting with backoff, error mapping
   ------------------------------------------------------------------------------------------- */

static struct timeval predi_tv(int64_t ms)
{
    struct timeval tv;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

/* 1 when the error of c is a timeout (hiredis 0.14 reports EAGAIN from SO_RCVTIMEO as an I/O
   error; hiredis 1.x has REDIS_ERR_TIMEOUT). */
static int predi_is_timeout(const redisContext *c, int err_no)
{
#ifdef REDIS_ERR_TIMEOUT
    if (c->err == REDIS_ERR_TIMEOUT)
        return 1;
#endif
    if (c->err != REDIS_ERR_IO)
        return 0;
    return err_no == EAGAIN || err_no == EWOULDBLOCK || err_no == ETIMEDOUT ||
           strstr(c->errstr, "temporarily unavailable") != NULL ||
           strstr(c->errstr, "timed out") != NULL || strstr(c->errstr, "timeout") != NULL;
}

/* Maps an error reply of the server. */
static pers_result predi_reply_error(predi_backend *b, const redisReply *r, const char *what,
                                     pers_detail *d)
{
    const char *s = r->str != NULL ? r->str : "";
    pers_result rc = PERS_ERR_INTERNAL;
    if (strncmp(s, "OOM", 3) == 0)
        rc = PERS_ERR_LIMIT;
    else if (strncmp(s, "LOADING", 7) == 0 || strncmp(s, "BUSY", 4) == 0 ||
             strncmp(s, "READONLY", 8) == 0 || strncmp(s, "MASTERDOWN", 10) == 0 ||
             strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 ||
             strncmp(s, "NOPERM", 6) == 0 || strncmp(s, "TRYAGAIN", 8) == 0 ||
             strncmp(s, "CLUSTERDOWN", 11) == 0 || strncmp(s, "MOVED", 5) == 0 ||
             strncmp(s, "ASK", 3) == 0 || strncmp(s, "CROSSSLOT", 9) == 0 ||
             strncmp(s, "MISCONF", 7) == 0)
        rc = PERS_ERR_UNAVAILABLE;
    else if (strncmp(s, "WRONGTYPE", 9) == 0)
        rc = PERS_ERR_CORRUPT;
    pers_detail_set(d, "redis %s: %s: %.700s%s", b->label, what, s,
                    rc == PERS_ERR_UNAVAILABLE && (strncmp(s, "MOVED", 5) == 0 ||
                                                   strncmp(s, "CROSSSLOT", 9) == 0)
                        ? " (this backend talks to one server: use a cluster proxy)"
                        : "");
    if (d != NULL)
        d->native_code = REDIS_REPLY_ERROR;
    return rc;
}

static void predi_set_down(predi_backend *b, int64_t code, const char *msg)
{
    pthread_mutex_lock(&b->pool_lock);
    b->backoff_ms = b->backoff_ms == 0 ? b->backoff_min_ms : b->backoff_ms * 2;
    if (b->backoff_ms > b->backoff_max_ms)
        b->backoff_ms = b->backoff_max_ms;
    b->next_try_ms = predi_mono_ms() + b->backoff_ms;
    if (!b->down)
        predi_log(b, PLG_LOG_WARN, "persistence redis: %s; retrying with backoff", msg);
    b->down = 1;
    b->down_code = code;
    predi_copy(b->down_msg, sizeof b->down_msg, msg, strlen(msg));
    pthread_mutex_unlock(&b->pool_lock);
}

/* Connects one context: TCP or Unix socket, timeouts, AUTH, SELECT. */
static pers_result predi_connect(predi_backend *b, redisContext **out, pers_detail *d)
{
    redisContext *c;
    redisReply *r;
    const char *argv[3];
    size_t argl[3];
    int pending = 0, i, failed = 0;
    pers_result rc = PERS_OK;
    char db[24];
    *out = NULL;
    if (b->ep.host[0] == '/')
        c = redisConnectUnixWithTimeout(b->ep.host, predi_tv(b->connect_timeout_ms));
    else
        c = redisConnectWithTimeout(b->ep.host, b->ep.port, predi_tv(b->connect_timeout_ms));
    if (c == NULL) {
        pers_detail_set(d, "redis %s: out of memory for a connection", b->label);
        return PERS_ERR_NO_MEMORY;
    }
    if (c->err) {
        pers_detail_set(d, "redis %s: cannot connect: %s", b->label, c->errstr);
        if (d != NULL)
            d->native_code = c->err;
        redisFree(c);
        return PERS_ERR_UNAVAILABLE;
    }
    /* The handshake must also finish within the connect timeout. */
    (void)redisSetTimeout(c, predi_tv(b->connect_timeout_ms));
    if (b->ep.host[0] != '/')
        (void)redisEnableKeepAlive(c);
    if (b->ep.password[0] != '\0' || b->ep.username[0] != '\0') {
        argv[0] = "AUTH";
        argl[0] = 4;
        i = 1;
        if (b->ep.username[0] != '\0') {
            argv[i] = b->ep.username;
            argl[i++] = strlen(b->ep.username);
        }
        argv[i] = b->ep.password;
        argl[i] = strlen(b->ep.password);
        (void)redisAppendCommandArgv(c, i + 1, argv, argl);
        pending++;
    }
    if (b->ep.db != 0) {
        snprintf(db, sizeof db, "%lld", (long long)b->ep.db);
        argv[0] = "SELECT";
        argl[0] = 6;
        argv[1] = db;
        argl[1] = strlen(db);
        (void)redisAppendCommandArgv(c, 2, argv, argl);
        pending++;
    }
    for (i = 0; i < pending; i++) {
        r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            pers_detail_set(d, "redis %s: connection failed during the handshake: %s", b->label,
                            c->errstr);
            if (d != NULL)
                d->native_code = c->err;
            rc = predi_is_timeout(c, errno) ? PERS_ERR_TIMEOUT : PERS_ERR_UNAVAILABLE;
            failed = 1;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR && rc == PERS_OK) {
            /* The server's text never contains the password. */
            pers_detail_set(d, "redis %s: %s refused: %.600s", b->label,
                            i == 0 && (b->ep.password[0] || b->ep.username[0]) ? "AUTH" : "SELECT",
                            r->str != NULL ? r->str : "");
            if (d != NULL)
                d->native_code = REDIS_REPLY_ERROR;
            rc = b->opening ? PERS_ERR_CONFIG : PERS_ERR_UNAVAILABLE;
        }
        freeReplyObject(r);
    }
    if (failed || rc != PERS_OK) {
        redisFree(c);
        return rc;
    }
    (void)redisSetTimeout(c, predi_tv(b->command_timeout_ms));
    *out = c;
    return PERS_OK;
}

/* 1 when an idle connection is known to be unusable: the server closed it (EOF, reset) or
   sent something unasked. Costs one poll() and at most one recv(MSG_PEEK). */
static int predi_conn_dead(redisContext *c)
{
    struct pollfd p;
    char ch;
    ssize_t n;
    p.fd = c->fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return 1;
    n = recv(c->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return 1;
}

/* Takes a connected slot of the pool. Fails at once with UNAVAILABLE while the server is
   known to be down and the backoff pause runs. */
static pers_result predi_checkout(predi_backend *b, size_t *slot, pers_detail *d)
{
    size_t idx;
    int probe = 0;
    pers_result rc;
    redisContext *c;
    pthread_mutex_lock(&b->pool_lock);
    while (b->free_count == 0)
        pthread_cond_wait(&b->pool_cond, &b->pool_lock);
    idx = b->free_slots[--b->free_count];
    c = b->conns[idx];
    pthread_mutex_unlock(&b->pool_lock);
    /* A connection idle for a while may have been closed by the server (a restart, a kill,
       its idle timeout): peek at it first. One in use a moment ago is taken as it is (a
       failure then is handled like any other). */
    if (c != NULL && predi_mono_ms() - b->last_used[idx] > PREDI_IDLE_CHECK_MS &&
        predi_conn_dead(c)) {
        redisFree(c);
        b->conns[idx] = c = NULL;
    }
    if (c == NULL) {
        pthread_mutex_lock(&b->pool_lock);
        if (b->down) {
            int64_t now = predi_mono_ms();
            if (b->probing || now < b->next_try_ms) {
                pers_detail_set(d, "%s (retrying in %lld ms)", b->down_msg,
                                (long long)(b->next_try_ms > now ? b->next_try_ms - now : 0));
                if (d != NULL)
                    d->native_code = b->down_code;
                b->free_slots[b->free_count++] = idx;
                pthread_cond_signal(&b->pool_cond);
                pthread_mutex_unlock(&b->pool_lock);
                return PERS_ERR_UNAVAILABLE;
            }
            b->probing = probe = 1;
        }
        pthread_mutex_unlock(&b->pool_lock);
        rc = predi_connect(b, &c, d);
        pthread_mutex_lock(&b->pool_lock);
        if (probe)
            b->probing = 0;
        if (rc == PERS_OK) {
            if (b->down)
                predi_log(b, PLG_LOG_INFO, "persistence redis: %s reachable again", b->label);
            b->down = 0;
            b->backoff_ms = 0;
            b->conns[idx] = c;
        } else {
            b->free_slots[b->free_count++] = idx;
            pthread_cond_signal(&b->pool_cond);
        }
        pthread_mutex_unlock(&b->pool_lock);
        if (rc != PERS_OK) {
            if (rc == PERS_ERR_UNAVAILABLE || rc == PERS_ERR_TIMEOUT)
                predi_set_down(b, d != NULL ? d->native_code : 0, d != NULL ? d->text : "");
            return rc == PERS_ERR_TIMEOUT ? PERS_ERR_UNAVAILABLE : rc;
        }
    }
    *slot = idx;
    return PERS_OK;
}

static void predi_checkin(predi_backend *b, size_t idx)
{
    b->last_used[idx] = predi_mono_ms(); /* the slot is still ours until it is pushed back */
    pthread_mutex_lock(&b->pool_lock);
    b->free_slots[b->free_count++] = idx;
    pthread_cond_signal(&b->pool_cond);
    pthread_mutex_unlock(&b->pool_lock);
}

/* Sends the commands whose `only` flag is set (all when only is NULL) and reads their replies
   into rq->rep. A command being sent has no reply (NULL) until its own arrives, so after a
   failure the replies present are exactly those that arrived. 0 ok; -1 when the connection
   failed (then freed and cleared); -2 when nothing could be sent (out of memory). */
static int predi_roundtrip(predi_backend *b, size_t slot, predi_req *rq, const int *only,
                           pers_result *rc, pers_detail *d)
{
    redisContext *c = b->conns[slot];
    size_t i, total = 0, n = 0, at;
    int err_no = 0;
    char **bufs;
    long long *lens;
    char *joined = NULL, *out;
    for (i = 0; i < rq->count; i++)
        if ((only == NULL || only[i]) && rq->rep[i] != NULL) {
            freeReplyObject(rq->rep[i]);
            rq->rep[i] = NULL;
        }
    /* Format every command (hiredis's formatter), then send them ourselves with MSG_NOSIGNAL:
       a write to a connection the server has reset must not raise SIGPIPE, whose default action
       would end the host process (hiredis itself uses write()). Nothing is sent unless every
       command could be formatted. */
    bufs = (char **)predi_alloc(b, rq->count * sizeof *bufs);
    lens = (long long *)predi_alloc(b, rq->count * sizeof *lens);
    if (bufs == NULL || lens == NULL) {
        predi_free(b, bufs, rq->count * sizeof *bufs);
        predi_free(b, lens, rq->count * sizeof *lens);
        pers_detail_set(d, "out of memory formatting a request");
        *rc = PERS_ERR_NO_MEMORY;
        return -2;
    }
    memset(bufs, 0, rq->count * sizeof *bufs);
    for (i = 0; i < rq->count; i++) {
        predi_cmd *cmd = &rq->cmds[i];
        lens[i] = 0;
        if (only != NULL && !only[i])
            continue;
        if (cmd->script >= 0) {
            cmd->argv[0] = cmd->eval ? "EVAL" : "EVALSHA";
            cmd->argl[0] = cmd->eval ? 4 : 7;
            cmd->argv[1] = cmd->eval ? b->script_text[cmd->script] : b->script_sha[cmd->script];
            cmd->argl[1] = cmd->eval ? b->script_len[cmd->script] : 40;
        }
        lens[i] = redisFormatCommandArgv(&bufs[i], (int)cmd->argc, cmd->argv, cmd->argl);
        if (lens[i] < 0 || bufs[i] == NULL) {
            *rc = PERS_ERR_NO_MEMORY;
            break;
        }
        total += (size_t)lens[i];
        n++;
    }
    if (*rc == PERS_OK && n > 1) { /* one send for the whole pipeline */
        joined = (char *)predi_alloc(b, total);
        if (joined == NULL)
            *rc = PERS_ERR_NO_MEMORY;
        for (i = 0, at = 0; joined != NULL && i < rq->count; i++)
            if (bufs[i] != NULL) {
                memcpy(joined + at, bufs[i], (size_t)lens[i]);
                at += (size_t)lens[i];
            }
    }
    out = joined;
    for (i = 0; out == NULL && i < rq->count; i++)
        if (bufs[i] != NULL)
            out = bufs[i];
    for (at = 0; *rc == PERS_OK && at < total;) {
#ifdef MSG_NOSIGNAL
        ssize_t w = send(c->fd, out + at, total - at, MSG_NOSIGNAL);
#else
        ssize_t w = send(c->fd, out + at, total - at, 0); /* the host should ignore SIGPIPE */
#endif
        if (w > 0) {
            at += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            err_no = w < 0 ? errno : EPIPE;
            if (err_no == EAGAIN || err_no == EWOULDBLOCK) {
                pers_detail_set(d,
                                "redis %s: could not send within command_timeout (%lld ms); the "
                                "outcome is unknown",
                                b->label, (long long)b->command_timeout_ms);
                *rc = PERS_ERR_TIMEOUT;
            } else {
                pers_detail_set(d,
                                "redis %s: connection lost: %s; the request may have been sent "
                                "in part, its outcome is unknown",
                                b->label, strerror(err_no));
                *rc = PERS_ERR_UNAVAILABLE;
            }
            if (d != NULL)
                d->native_code = REDIS_ERR_IO;
        }
    }
    for (i = 0; i < rq->count; i++)
        if (bufs[i] != NULL)
            redisFreeCommand(bufs[i]);
    if (joined != NULL)
        predi_free(b, joined, total);
    predi_free(b, bufs, rq->count * sizeof *bufs);
    predi_free(b, lens, rq->count * sizeof *lens);
    if (*rc == PERS_ERR_NO_MEMORY && at == 0) {
        pers_detail_set(d, "out of memory formatting a request");
        return -2; /* nothing was sent: the connection stays usable */
    }
    if (*rc != PERS_OK) {
        redisFree(c);
        b->conns[slot] = NULL;
        return -1;
    }
    for (i = 0; i < rq->count; i++) {
        void *r = NULL;
        if (only != NULL && !only[i])
            continue;
        errno = 0;
        if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
            err_no = errno;
            if (predi_is_timeout(c, err_no)) {
                pers_detail_set(d,
                                "redis %s: no reply within command_timeout (%lld ms): %s; the "
                                "outcome is unknown",
                                b->label, (long long)b->command_timeout_ms, c->errstr);
                *rc = PERS_ERR_TIMEOUT;
            } else {
                pers_detail_set(d,
                                "redis %s: connection lost: %s; the request had been sent, its "
                                "outcome is unknown",
                                b->label, c->errstr[0] ? c->errstr : "end of stream");
                *rc = PERS_ERR_UNAVAILABLE;
            }
            if (d != NULL)
                d->native_code = c->err;
            redisFree(c);
            b->conns[slot] = NULL;
            return -1;
        }
        rq->rep[i] = (redisReply *)r;
    }
    return 0;
}

/* Runs the request as one pipeline; the replies are in rq->rep. NOSCRIPT replies are resent as
   EVAL (those commands did not run). retry_ok: when the connection fails, the commands that got
   no reply are resent once on a fresh connection (see ERRORS AND RETRIES); those that got one
   ran once and keep it. On failure rq->rep holds the replies of the commands that ran (NULL
   for the others), which a caller of several independent commands may use (complete_batch). */
static pers_result predi_exec(predi_backend *b, predi_req *rq, int retry_ok, pers_detail *d)
{
    int attempt;
    int *todo = NULL; /* after a failed attempt: the commands still without a reply */
    size_t slot, i;
    pers_result rc = PERS_OK;
    if (rq->oom) {
        pers_detail_set(d, "out of memory building a request");
        return PERS_ERR_NO_MEMORY;
    }
    for (attempt = 0;; attempt++) {
        rc = predi_checkout(b, &slot, d);
        if (rc != PERS_OK)
            break;
        rc = PERS_OK;
        if (predi_roundtrip(b, slot, rq, todo, &rc, d) == 0) {
            int *again = NULL;
            size_t missing = 0;
            for (i = 0; i < rq->count; i++)
                if (rq->cmds[i].script >= 0 && rq->rep[i]->type == REDIS_REPLY_ERROR &&
                    rq->rep[i]->str != NULL && strncmp(rq->rep[i]->str, "NOSCRIPT", 8) == 0)
                    missing++;
            if (missing > 0) {
                again = (int *)predi_alloc(b, rq->count * sizeof *again);
                if (again == NULL) {
                    predi_checkin(b, slot);
                    for (i = 0; i < rq->count; i++) /* did not run: no reply */
                        if (rq->cmds[i].script >= 0 && rq->rep[i]->type == REDIS_REPLY_ERROR &&
                            rq->rep[i]->str != NULL &&
                            strncmp(rq->rep[i]->str, "NOSCRIPT", 8) == 0) {
                            freeReplyObject(rq->rep[i]);
                            rq->rep[i] = NULL;
                        }
                    pers_detail_set(d, "out of memory");
                    rc = PERS_ERR_NO_MEMORY;
                    break;
                }
                for (i = 0; i < rq->count; i++) {
                    again[i] = rq->cmds[i].script >= 0 &&
                               rq->rep[i]->type == REDIS_REPLY_ERROR && rq->rep[i]->str != NULL &&
                               strncmp(rq->rep[i]->str, "NOSCRIPT", 8) == 0;
                    if (again[i])
                        rq->cmds[i].eval = 1;
                }
                predi_log(b, PLG_LOG_DEBUG,
                          "persistence redis: %lu script(s) missing on the server (NOSCRIPT); "
                          "sent as EVAL",
                          (unsigned long)missing);
                rc = PERS_OK;
                /* on failure the EVALs may have run: no resend */
                (void)predi_roundtrip(b, slot, rq, again, &rc, d);
                predi_free(b, again, rq->count * sizeof *again);
            }
            predi_checkin(b, slot);
            break;
        }
        predi_checkin(b, slot);
        if (!retry_ok || attempt >= 1 || rc == PERS_ERR_NO_MEMORY)
            break;
        if (todo == NULL) {
            todo = (int *)predi_alloc(b, rq->count * sizeof *todo);
            if (todo == NULL)
                break; /* the connection's failure stands */
        }
        for (i = 0; i < rq->count; i++)
            todo[i] = rq->rep[i] == NULL;
        predi_log(b, PLG_LOG_DEBUG, "persistence redis: %s; resending on a new connection",
                  d != NULL ? d->text : "");
    }
    if (todo != NULL)
        predi_free(b, todo, rq->count * sizeof *todo);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Replies
   ------------------------------------------------------------------------------------------- */

static int64_t predi_int(const redisReply *r)
{
    if (r == NULL)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str != NULL)
        return (int64_t)strtoll(r->str, NULL, 10);
    return 0;
}

/* An array reply with at least n elements, else NULL. */
static const redisReply *predi_array(const redisReply *r, size_t n)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < n)
        return NULL;
    return r;
}

static pers_result predi_bad_reply(predi_backend *b, const char *what, pers_detail *d)
{
    pers_detail_set(d, "redis %s: unexpected reply to %s", b->label, what);
    return PERS_ERR_INTERNAL;
}

/* Checks the reply of command i: an error reply is mapped, anything else is fine. */
static pers_result predi_reply_ok(predi_backend *b, predi_req *rq, size_t i, const char *what,
                                  pers_detail *d)
{
    const redisReply *r = rq->rep[i];
    if (r == NULL)
        return predi_bad_reply(b, what, d);
    if (r->type == REDIS_REPLY_ERROR)
        return predi_reply_error(b, r, what, d);
    return PERS_OK;
}

static void predi_str_field(const redisReply *r, char *dst, size_t size)
{
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->str != NULL)
        predi_copy(dst, size, r->str, r->len);
    else if (size > 0)
        dst[0] = '\0';
}

/* Fills *out from PREDI_TASK_FIELDS elements of a script reply starting at e[0]. Allocates the
   payload and the last error with the store's allocator. */
static pers_result predi_fill_task(predi_backend *b, redisReply **e, const char *tenant,
                                   const char *queue, int with_token, pers_task *out,
                                   pers_detail *d)
{
    const redisReply *pl = e[13], *le = e[12];
    memset(out, 0, sizeof *out);
    predi_str_field(e[0], out->id, sizeof out->id);
    predi_copy(out->tenant, sizeof out->tenant, tenant, strlen(tenant));
    predi_copy(out->queue, sizeof out->queue, queue, strlen(queue));
    out->state = (pers_task_state)predi_int(e[1]);
    out->priority = (int32_t)predi_int(e[2]);
    out->attempts = (uint32_t)predi_int(e[3]);
    out->max_attempts = (uint32_t)predi_int(e[4]);
    out->lease_token = with_token ? (uint64_t)predi_int(e[5]) : 0;
    out->created_ms = predi_int(e[6]);
    out->due_ms = predi_int(e[7]);
    out->lease_expires_ms = predi_int(e[8]);
    out->finished_ms = predi_int(e[9]);
    predi_str_field(e[10], out->worker_id, sizeof out->worker_id);
    predi_str_field(e[11], out->idempotency_key, sizeof out->idempotency_key);
    out->payload = pers_copy_bytes(&b->alloc, pl != NULL && pl->type == REDIS_REPLY_STRING
                                                  ? pl->str
                                                  : "",
                                   pl != NULL && pl->type == REDIS_REPLY_STRING ? pl->len : 0);
    if (out->payload == NULL) {
        pers_detail_set(d, "out of memory copying task %s", out->id);
        return PERS_ERR_NO_MEMORY;
    }
    out->payload_len = pl != NULL && pl->type == REDIS_REPLY_STRING ? pl->len : 0;
    if (le != NULL && le->type == REDIS_REPLY_STRING) {
        out->last_error = (char *)pers_copy_bytes(&b->alloc, le->str, le->len);
        if (out->last_error == NULL) {
            pers_task_clear(&b->alloc, out);
            pers_detail_set(d, "out of memory copying task %s", out->id);
            return PERS_ERR_NO_MEMORY;
        }
        /* A reason is text: cut at an embedded NUL so strlen matches the allocation. */
        if (strlen(out->last_error) != le->len) {
            char *copy = (char *)pers_copy_bytes(&b->alloc, le->str, strlen(out->last_error));
            pers_free(&b->alloc, out->last_error, le->len + 1);
            out->last_error = copy;
        }
    }
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Configuration
   ------------------------------------------------------------------------------------------- */

static const char *const predi_clock_values[] = { "auto", "server", "store" };

static const plg_config_key predi_schema[] = {
    { "addr", PLG_CONFIG_STRING, 0, "localhost:6379", "1", "300", NULL, 0,
      "server as host:port, [v6]:port, host, or a Unix socket path" },
    { "password", PLG_CONFIG_STRING, PLG_KEY_SECRET, "", NULL, "511", NULL, 0,
      "AUTH password; empty: none" },
    { "username", PLG_CONFIG_STRING, 0, "", NULL, "255", NULL, 0,
      "ACL user name for AUTH; empty: the default user" },
    { "db", PLG_CONFIG_INTEGER, 0, "0", "0", "2147483647", NULL, 0, "database number (SELECT)" },
    { "url", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, "8", "1024", NULL, 0,
      "redis://[user[:password]@]host[:port][/db] instead of addr, username, password, db" },
    { "key_prefix", PLG_CONFIG_STRING, 0, "pers", "1", "64", NULL, 0,
      "first part of every key; no spaces or braces" },
    { "connect_timeout", PLG_CONFIG_DURATION, 0, "2s", "1ms", "1h", NULL, 0,
      "connect and handshake timeout" },
    { "command_timeout", PLG_CONFIG_DURATION, 0, "5s", "1ms", "1h", NULL, 0,
      "longest wait for a reply; the outcome of a write that times out is unknown" },
    { "pool_size", PLG_CONFIG_INTEGER, 0, "8", "1", "256", NULL, 0, "connections in the pool" },
    { "reconnect_backoff", PLG_CONFIG_DURATION, 0, "25ms", "1ms", "1m", NULL, 0,
      "first pause after a failed connect" },
    { "reconnect_backoff_max", PLG_CONFIG_DURATION, 0, "1s", "1ms", "10m", NULL, 0,
      "longest pause between connect attempts" },
    { "max_payload_bytes", PLG_CONFIG_INTEGER, 0, "1048576", "1", "536870912", NULL, 0,
      "largest payload or result accepted, in bytes" },
    { "clock", PLG_CONFIG_STRING, 0, "auto", NULL, NULL, predi_clock_values, 3,
      "where now comes from: server (TIME), store (the store's clock) or auto" },
    { "eviction_is_error", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0,
      "health fails when maxmemory-policy can evict keys (else a warning)" },
};

static int predi_given(const plg_config *config, const char *key)
{
    return config != NULL && plg_config_is_set(config, key) != 0;
}

static const char *predi_cfg_str(const plg_config *config, const char *key, const char *def)
{
    const char *s = predi_given(config, key) ? plg_config_string(config, key) : NULL;
    return s != NULL ? s : def;
}

static int64_t predi_cfg_int(const plg_config *config, const char *key, int64_t def)
{
    return predi_given(config, key) ? plg_config_integer(config, key) : def;
}

static int64_t predi_cfg_ms(const plg_config *config, const char *key, int64_t def)
{
    return predi_given(config, key) ? plg_config_duration_ms(config, key) : def;
}

static pers_result predi_configure(predi_backend *b, const plg_config *config, pers_detail *d)
{
    char why[256];
    const char *s;
    size_t i, n;
    int explicit_url = config != NULL && plg_config_is_set(config, "url") == 1;
    memset(&b->ep, 0, sizeof b->ep);
    if (explicit_url) {
        static const char *const conflicting[] = { "addr", "username", "password", "db" };
        for (i = 0; i < sizeof conflicting / sizeof conflicting[0]; i++)
            if (plg_config_is_set(config, conflicting[i]) == 1) {
                pers_detail_set(d, "give either url or %s, not both (url already supplies it)",
                                conflicting[i]);
                return PERS_ERR_CONFIG;
            }
        if (pers_redis_parse_url(plg_config_string(config, "url"), &b->ep, why, sizeof why) !=
            0) {
            pers_detail_set(d, "url %s", why); /* never the URL itself: it may hold a password */
            return PERS_ERR_CONFIG;
        }
    } else {
        s = predi_cfg_str(config, "addr", "localhost:6379");
        if (pers_redis_parse_addr(s, &b->ep, why, sizeof why) != 0) {
            pers_detail_set(d, "addr %s", why);
            return PERS_ERR_CONFIG;
        }
        s = predi_cfg_str(config, "password", "");
        if (strlen(s) >= sizeof b->ep.password) {
            pers_detail_set(d, "password is longer than %lu bytes",
                            (unsigned long)(sizeof b->ep.password - 1));
            return PERS_ERR_CONFIG;
        }
        memcpy(b->ep.password, s, strlen(s) + 1);
        s = predi_cfg_str(config, "username", "");
        if (strlen(s) >= sizeof b->ep.username) {
            pers_detail_set(d, "username is longer than %lu bytes",
                            (unsigned long)(sizeof b->ep.username - 1));
            return PERS_ERR_CONFIG;
        }
        memcpy(b->ep.username, s, strlen(s) + 1);
        b->ep.db = predi_cfg_int(config, "db", 0);
        if (b->ep.db < 0 || b->ep.db > 2147483647) {
            pers_detail_set(d, "db must be 0..2147483647");
            return PERS_ERR_CONFIG;
        }
    }
    if (b->ep.port == 0)
        snprintf(b->label, sizeof b->label, "%s", b->ep.host);
    else if (strchr(b->ep.host, ':') != NULL)
        snprintf(b->label, sizeof b->label, "[%s]:%d", b->ep.host, b->ep.port);
    else
        snprintf(b->label, sizeof b->label, "%s:%d", b->ep.host, b->ep.port);

    s = predi_cfg_str(config, "key_prefix", "pers");
    n = strlen(s);
    if (n == 0 || n > PREDI_PREFIX_MAX) {
        pers_detail_set(d, "key_prefix must be 1..%d characters", PREDI_PREFIX_MAX);
        return PERS_ERR_CONFIG;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '{' || c == '}') {
            pers_detail_set(d,
                            "key_prefix contains %s at position %lu: only printable characters "
                            "without spaces, '{' or '}' (braces would change the hash tag)",
                            c == '{' || c == '}' ? "a brace" : "a space or control byte",
                            (unsigned long)i);
            return PERS_ERR_CONFIG;
        }
    }
    memcpy(b->prefix, s, n + 1);

    b->connect_timeout_ms = predi_cfg_ms(config, "connect_timeout", 2000);
    b->command_timeout_ms = predi_cfg_ms(config, "command_timeout", 5000);
    b->backoff_min_ms = predi_cfg_ms(config, "reconnect_backoff", 25);
    b->backoff_max_ms = predi_cfg_ms(config, "reconnect_backoff_max", 1000);
    if (b->connect_timeout_ms <= 0 || b->command_timeout_ms <= 0 || b->backoff_min_ms <= 0 ||
        b->backoff_max_ms <= 0) {
        pers_detail_set(d, "timeouts and backoffs must be positive durations");
        return PERS_ERR_CONFIG;
    }
    if (b->backoff_max_ms < b->backoff_min_ms)
        b->backoff_max_ms = b->backoff_min_ms;
    b->pool_size = (size_t)predi_cfg_int(config, "pool_size", 8);
    if (b->pool_size < 1 || b->pool_size > 256) {
        pers_detail_set(d, "pool_size must be 1..256");
        return PERS_ERR_CONFIG;
    }
    b->max_payload =
        (uint64_t)predi_cfg_int(config, "max_payload_bytes", PREDI_DEFAULT_MAX_PAYLOAD);
    if (b->max_payload < 1 || b->max_payload > PREDI_PAYLOAD_LIMIT) {
        pers_detail_set(d, "max_payload_bytes must be 1..%u", PREDI_PAYLOAD_LIMIT);
        return PERS_ERR_CONFIG;
    }
    s = predi_cfg_str(config, "clock", "auto");
    if (strcmp(s, "server") == 0)
        b->store_clock = 0;
    else if (strcmp(s, "store") == 0)
        b->store_clock = 1;
    else if (strcmp(s, "auto") == 0)
        b->store_clock = b->clock.now_ms != pers_wall_clock_ms;
    else {
        pers_detail_set(d, "clock must be \"auto\", \"server\" or \"store\"");
        return PERS_ERR_CONFIG;
    }
    b->eviction_is_error = predi_given(config, "eviction_is_error")
                               ? plg_config_boolean(config, "eviction_is_error")
                               : 0;
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Open, close, capabilities, health
   ------------------------------------------------------------------------------------------- */

static void predi_close_store(void *backend);

/* maxmemory_policy from an INFO reply; "" if absent. */
static void predi_policy(const redisReply *r, char *out, size_t size)
{
    const char *p;
    size_t n;
    out[0] = '\0';
    if (r == NULL || r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_ARRAY ||
        r->type == REDIS_REPLY_INTEGER || r->str == NULL)
        return; /* a bulk string (RESP2) or a verbatim string (RESP3) */
    p = strstr(r->str, "maxmemory_policy:");
    if (p == NULL)
        return;
    p += strlen("maxmemory_policy:");
    n = strcspn(p, "\r\n");
    predi_copy(out, size, p, n);
}

/* PING plus the eviction check; *warn receives 1 when the policy can evict keys. */
static pers_result predi_ping(predi_backend *b, int *warn, pers_detail *d)
{
    predi_req rq;
    predi_cmd *c;
    pers_result rc;
    char policy[64];
    *warn = 0;
    predi_req_init(&rq, b);
    c = predi_req_add(&rq, -1);
    predi_args(&rq, c, "PING");
    c = predi_req_add(&rq, -1);
    predi_args(&rq, c, "INFO");
    predi_args(&rq, c, "memory");
    rc = predi_exec(b, &rq, 1, d);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, 0, "PING", d);
    if (rc == PERS_OK && (rq.rep[0]->type != REDIS_REPLY_STATUS || rq.rep[0]->str == NULL ||
                          strcmp(rq.rep[0]->str, "PONG") != 0))
        rc = predi_bad_reply(b, "PING", d);
    if (rc == PERS_OK && rq.rep[1]->type != REDIS_REPLY_ERROR) {
        predi_policy(rq.rep[1], policy, sizeof policy);
        if (strncmp(policy, "allkeys-", 8) == 0) {
            *warn = 1;
            pers_detail_set(d,
                            "redis %s: degraded: maxmemory-policy is %s, so the server may "
                            "evict task keys when memory runs out (set it to noeviction)",
                            b->label, policy);
        }
    }
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_open_store(const plg_config *config, const pers_open_args *args,
                                    void **backend, pers_detail *detail)
{
    predi_backend *b;
    plg_allocator alloc;
    predi_req rq;
    pers_result rc;
    size_t i;
    int warn = 0;
    if (backend == NULL) {
        pers_detail_set(detail, "backend is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *backend = NULL;
    memset(&alloc, 0, sizeof alloc);
#define PREDI_ARG_(field)                                                                          \
    (args != NULL && PERS_FIELD_FITS(pers_open_args, field, args->struct_size))
    if (PREDI_ARG_(allocator))
        alloc = args->allocator;
    b = (predi_backend *)pers_alloc(&alloc, sizeof *b);
    if (b == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(b, 0, sizeof *b);
    b->alloc = alloc;
    if (PREDI_ARG_(clock))
        b->clock = args->clock;
    if (PREDI_ARG_(logger))
        b->logger = args->logger;
    if (PREDI_ARG_(flags))
        b->validated = (args->flags & PERS_OPEN_VALIDATED) != 0;
#undef PREDI_ARG_
    if (b->clock.now_ms == NULL) {
        b->clock.now_ms = pers_wall_clock_ms;
        b->clock.user = NULL;
    }
    rc = predi_configure(b, config, detail);
    if (rc != PERS_OK) {
        memset(&b->ep, 0, sizeof b->ep);
        pers_free(&alloc, b, sizeof *b);
        return rc;
    }
    if (pthread_mutex_init(&b->pool_lock, NULL) != 0) {
        memset(&b->ep, 0, sizeof b->ep);
        pers_free(&alloc, b, sizeof *b);
        pers_detail_set(detail, "pthread_mutex_init failed");
        return PERS_ERR_INTERNAL;
    }
    if (pthread_mutex_init(&b->cache_lock, NULL) != 0) {
        pthread_mutex_destroy(&b->pool_lock);
        memset(&b->ep, 0, sizeof b->ep);
        pers_free(&alloc, b, sizeof *b);
        pers_detail_set(detail, "pthread_mutex_init failed");
        return PERS_ERR_INTERNAL;
    }
    if (pthread_cond_init(&b->pool_cond, NULL) != 0) {
        pthread_mutex_destroy(&b->cache_lock);
        pthread_mutex_destroy(&b->pool_lock);
        memset(&b->ep, 0, sizeof b->ep);
        pers_free(&alloc, b, sizeof *b);
        pers_detail_set(detail, "pthread_cond_init failed");
        return PERS_ERR_INTERNAL;
    }
    /* From here on predi_close_store releases whatever exists. */
    b->conns = (redisContext **)predi_alloc(b, b->pool_size * sizeof *b->conns);
    b->free_slots = (size_t *)predi_alloc(b, b->pool_size * sizeof *b->free_slots);
    b->last_used = (int64_t *)predi_alloc(b, b->pool_size * sizeof *b->last_used);
    b->cache = (predi_cache_entry *)predi_alloc(b, PREDI_CACHE_SLOTS * sizeof *b->cache);
    b->tenants_seen = (char(*)[PERS_NAME_MAX + 1])predi_alloc(
        b, PREDI_TENANT_SLOTS * sizeof *b->tenants_seen);
    if (b->conns == NULL || b->free_slots == NULL || b->last_used == NULL || b->cache == NULL ||
        b->tenants_seen == NULL) {
        predi_close_store(b);
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(b->conns, 0, b->pool_size * sizeof *b->conns);
    memset(b->last_used, 0, b->pool_size * sizeof *b->last_used);
    memset(b->cache, 0, PREDI_CACHE_SLOTS * sizeof *b->cache);
    memset(b->tenants_seen, 0, PREDI_TENANT_SLOTS * sizeof *b->tenants_seen);
    for (i = 0; i < b->pool_size; i++)
        b->free_slots[i] = b->pool_size - 1 - i;
    b->free_count = b->pool_size;
    for (i = 0; i < PREDI_S_COUNT; i++) {
        size_t len = predi_script_text((int)i, NULL, 0);
        b->script_text[i] = (char *)predi_alloc(b, len + 1);
        if (b->script_text[i] == NULL) {
            predi_close_store(b);
            pers_detail_set(detail, "out of memory");
            return PERS_ERR_NO_MEMORY;
        }
        predi_script_text((int)i, b->script_text[i], len + 1);
        b->script_len[i] = len;
        predi_sha1_hex(b->script_text[i], len, b->script_sha[i]);
    }
    b->nonce_base = predi_random64(b);
    b->id_prefix = predi_random64(&b->id_prefix);

    /* Connect once, load every script, check the eviction policy. */
    b->opening = 1;
    predi_req_init(&rq, b);
    for (i = 0; i < PREDI_S_COUNT; i++) {
        predi_cmd *c = predi_req_add(&rq, -1);
        predi_args(&rq, c, "SCRIPT");
        predi_args(&rq, c, "LOAD");
        predi_arg(&rq, c, b->script_text[i], b->script_len[i]);
    }
    rc = predi_exec(b, &rq, 1, detail);
    for (i = 0; rc == PERS_OK && i < PREDI_S_COUNT; i++) {
        rc = predi_reply_ok(b, &rq, i, "SCRIPT LOAD", detail);
        if (rc == PERS_OK && (rq.rep[i]->type != REDIS_REPLY_STRING || rq.rep[i]->len != 40 ||
                              memcmp(rq.rep[i]->str, b->script_sha[i], 40) != 0)) {
            pers_detail_set(detail, "redis %s: SCRIPT LOAD of %s answered another SHA-1",
                            b->label, predi_script_defs[i].name);
            rc = PERS_ERR_INTERNAL;
        }
    }
    predi_req_free(&rq);
    if (rc == PERS_OK)
        rc = predi_ping(b, &warn, detail);
    b->opening = 0;
    if (rc != PERS_OK) {
        predi_close_store(b);
        return rc;
    }
    if (warn)
        predi_log(b, PLG_LOG_WARN, "persistence %s", detail != NULL ? detail->text : "");
    if (detail != NULL)
        detail->text[0] = '\0';
    predi_log(b, PLG_LOG_INFO,
              "persistence redis: connected to %s db %lld, key prefix \"%s\", clock %s, pool %lu",
              b->label, (long long)b->ep.db, b->prefix, b->store_clock ? "store" : "server",
              (unsigned long)b->pool_size);
    *backend = b;
    return PERS_OK;
}

static void predi_close_store(void *backend)
{
    predi_backend *b = (predi_backend *)backend;
    plg_allocator alloc;
    size_t i;
    if (b == NULL)
        return;
    if (b->conns != NULL) {
        for (i = 0; i < b->pool_size; i++)
            if (b->conns[i] != NULL)
                redisFree(b->conns[i]);
        predi_free(b, b->conns, b->pool_size * sizeof *b->conns);
    }
    if (b->free_slots != NULL)
        predi_free(b, b->free_slots, b->pool_size * sizeof *b->free_slots);
    if (b->last_used != NULL)
        predi_free(b, b->last_used, b->pool_size * sizeof *b->last_used);
    if (b->cache != NULL)
        predi_free(b, b->cache, PREDI_CACHE_SLOTS * sizeof *b->cache);
    if (b->tenants_seen != NULL)
        predi_free(b, b->tenants_seen, PREDI_TENANT_SLOTS * sizeof *b->tenants_seen);
    for (i = 0; i < PREDI_S_COUNT; i++)
        if (b->script_text[i] != NULL)
            predi_free(b, b->script_text[i], b->script_len[i] + 1);
    pthread_cond_destroy(&b->pool_cond);
    pthread_mutex_destroy(&b->cache_lock);
    pthread_mutex_destroy(&b->pool_lock);
    {
        volatile char *p = (volatile char *)b->ep.password; /* the secret does not linger */
        for (i = 0; i < sizeof b->ep.password; i++)
            p[i] = 0;
    }
    alloc = b->alloc;
    pers_free(&alloc, b, sizeof *b);
}

static pers_result predi_capabilities(void *backend, pers_caps *caps, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    if (b == NULL || caps == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(caps, 0, sizeof *caps);
    caps->flags = PERS_CAP_BATCH | PERS_CAP_STATS | PERS_CAP_DEAD_LETTER |
                  PERS_CAP_TASK_RETENTION | PERS_CAP_RESULTS | PERS_CAP_SUBSCRIPTIONS |
                  PERS_CAP_HEALTH | PERS_CAP_DURABLE | PERS_CAP_SHARED |
                  PERS_CAP_COMPLETE_BATCH;
    caps->max_payload_bytes = b->max_payload;
    caps->max_batch = PERS_BATCH_MAX;
    return PERS_OK;
}

static pers_result predi_health(void *backend, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    pers_result rc;
    int warn = 0;
    if (b == NULL) {
        pers_detail_set(detail, "NULL backend");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    rc = predi_ping(b, &warn, detail);
    if (rc == PERS_OK && warn) {
        predi_log(b, PLG_LOG_WARN, "persistence %s", detail != NULL ? detail->text : "");
        if (b->eviction_is_error)
            return PERS_ERR_UNAVAILABLE;
        if (detail != NULL)
            detail->text[0] = '\0';
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Enqueue (single and batch share one path)
   ------------------------------------------------------------------------------------------- */

typedef struct predi_enq {
    const char *id;
    char idbuf[PERS_GENERATED_ID_LEN + 1];
    char nonce[PREDI_NONCE_SIZE + 24];                  /* base nonce "." index */
    char value[PERS_NAME_MAX + PREDI_NONCE_SIZE + 26]; /* "queue nonce" in the directory */
    char out_id[PERS_ID_MAX + 1];
    int code; /* reserve: 1 reserved now, 2 already this queue's, 3 another queue's */
    int kind; /* enqueue: 1 created, 2 created earlier by this very request, 3 idempotent dup */
} predi_enq;

/* The checks of persistence.h, again, for direct callers of the vtable. */
static pers_result predi_check_enqueue(predi_backend *b, const pers_enqueue_req *r,
                                       const pers_enqueue_req *first, pers_detail *d)
{
    if (!predi_name_ok(r->tenant) || !predi_name_ok(r->queue) ||
        (r->payload == NULL && r->payload_len > 0) ||
        (r->idempotency_key != NULL && !predi_key_ok(r->idempotency_key)) ||
        (r->task_id != NULL && !predi_key_ok(r->task_id)) || r->delay_ms < 0 ||
        r->delay_ms > PERS_DURATION_MAX_MS || r->run_at_ms < 0 ||
        r->priority < PERS_PRIORITY_MIN || r->priority > PERS_PRIORITY_MAX ||
        r->max_attempts > PERS_ATTEMPTS_MAX) {
        pers_detail_set(d, "invalid enqueue request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (strcmp(r->tenant, first->tenant) != 0 || strcmp(r->queue, first->queue) != 0) {
        pers_detail_set(d, "a batch is for one tenant and queue (S19)");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)r->payload_len > b->max_payload) {
        pers_detail_set(d, "payload is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)r->payload_len, (unsigned long long)b->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    return PERS_OK;
}

/* Directory tidying, best effort. failed: drop every entry this call reserved (code 1; exact
   "queue nonce" only, so nothing else can be hit). Else drop the reservations of idempotent
   duplicates and point entries at tasks created over a stale entry of the same queue. */
static void predi_dirfix(predi_backend *b, const pers_enqueue_req *reqs, predi_enq *e,
                         size_t count, int failed)
{
    predi_req rq;
    predi_cmd *c;
    pers_detail d;
    size_t i, n = 0;
    for (i = 0; i < count; i++)
        n += (e[i].code == 1 && (failed || e[i].kind == 3)) ||
             (!failed && e[i].code == 2 && e[i].kind == 1);
    if (n == 0)
        return;
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_DIRFIX);
    predi_arg_tkeys(&rq, c, reqs[0].tenant);
    predi_argf(&rq, c, "%lu", (unsigned long)n);
    for (i = 0; i < count; i++) {
        int drop = e[i].code == 1 && (failed || e[i].kind == 3);
        int set = !failed && e[i].code == 2 && e[i].kind == 1;
        if (!drop && !set)
            continue;
        predi_args(&rq, c, drop ? "D" : "S");
        predi_args(&rq, c, e[i].id);
        predi_args(&rq, c, e[i].value);
    }
    d.native_code = 0;
    d.text[0] = '\0';
    if (predi_exec(b, &rq, 1, &d) != PERS_OK || rq.rep[0]->type == REDIS_REPLY_ERROR)
        predi_log(b, PLG_LOG_WARN,
                  "persistence redis: could not tidy the task directory after an enqueue: %s",
                  d.text[0] ? d.text : (rq.rep[0] != NULL && rq.rep[0]->str ? rq.rep[0]->str : ""));
    predi_req_free(&rq);
}

/* enqueue and enqueue_batch: count requests of one (tenant, queue) (S19), all or nothing.
   1. one pipeline: the tenant into P:tenants (first time only) and every id reserved in the
      tenant's directory (the index before the data it indexes);
   2. the queue's enqueue script, atomic for the whole batch (it checks everything before it
      writes anything);
   3. best effort: directory entries that were reserved for nothing are dropped. */
static pers_result predi_enqueue_many(predi_backend *b, const pers_enqueue_req *reqs, size_t count,
                                      pers_enqueue_res *res, int batch, pers_detail *detail)
{
    predi_enq *e;
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32], base[PREDI_NONCE_SIZE], inner[PERS_DETAIL_SIZE];
    const char *tenant = reqs[0].tenant, *queue = reqs[0].queue;
    size_t i, at;
    int sadd, maybe_applied = 0;
    pers_result rc;
    const redisReply *r;

    for (i = 0; i < count; i++) {
        rc = predi_check_enqueue(b, &reqs[i], &reqs[0], detail);
        if (rc != PERS_OK) {
            if (batch) {
                memcpy(inner, detail->text, sizeof inner);
                pers_detail_set(detail, "request %lu: %s", (unsigned long)i, inner);
            }
            return rc;
        }
    }
    e = (predi_enq *)predi_alloc(b, count * sizeof *e);
    if (e == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(e, 0, count * sizeof *e);
    predi_nonce(b, base, sizeof base);
    for (i = 0; i < count; i++) {
        if (reqs[i].task_id != NULL) {
            e[i].id = reqs[i].task_id;
        } else { /* direct callers of the vtable; the store always passes an id (S9) */
            uint64_t n = __atomic_fetch_add(&b->id_counter, 1, __ATOMIC_RELAXED);
            snprintf(e[i].idbuf, sizeof e[i].idbuf, "%016llx%016llx",
                     (unsigned long long)b->id_prefix, (unsigned long long)n);
            e[i].id = e[i].idbuf;
        }
        snprintf(e[i].nonce, sizeof e[i].nonce, "%s.%lu", base, (unsigned long)i);
        snprintf(e[i].value, sizeof e[i].value, "%s %s", queue, e[i].nonce);
    }

    /* 1. */
    predi_req_init(&rq, b);
    sadd = !predi_tenant_known(b, tenant);
    if (sadd) {
        c = predi_req_add(&rq, -1);
        predi_args(&rq, c, "SADD");
        predi_arg_key(&rq, c, NULL, NULL, "tenants");
        predi_args(&rq, c, tenant);
    }
    c = predi_req_script(&rq, PREDI_S_RESERVE);
    predi_arg_tkeys(&rq, c, tenant);
    predi_argf(&rq, c, "%lu", (unsigned long)count);
    for (i = 0; i < count; i++) {
        predi_args(&rq, c, e[i].id);
        predi_args(&rq, c, queue);
        predi_args(&rq, c, e[i].nonce);
    }
    rc = predi_exec(b, &rq, 1, detail);
    if (rc == PERS_OK && sadd && (rc = predi_reply_ok(b, &rq, 0, "SADD", detail)) == PERS_OK)
        predi_tenant_mark(b, tenant);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, (size_t)sadd, "reserve script", detail);
    r = rc == PERS_OK ? predi_array(rq.rep[sadd], count) : NULL;
    if (rc == PERS_OK && (r == NULL || r->elements != count))
        rc = predi_bad_reply(b, "reserve", detail);
    for (i = 0; rc == PERS_OK && i < count; i++)
        e[i].code = (int)predi_int(r->element[i]);
    predi_req_free(&rq);
    if (rc != PERS_OK) {
        for (i = 0; i < count; i++)
            e[i].code = 1; /* no task exists yet: drop whatever this call may have reserved */
        predi_dirfix(b, reqs, e, count, 1);
        predi_free(b, e, count * sizeof *e);
        return rc;
    }

    /* 2. */
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_ENQUEUE);
    predi_arg_qkeys(&rq, c, tenant, queue);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    predi_argf(&rq, c, "%lu", (unsigned long)count);
    for (i = 0; i < count; i++) {
        const pers_enqueue_req *q = &reqs[i];
        predi_args(&rq, c, e[i].id);
        predi_args(&rq, c, e[i].nonce);
        predi_args(&rq, c, e[i].code == 3 ? "3" : "1");
        predi_args(&rq, c, q->idempotency_key != NULL ? q->idempotency_key : "");
        predi_arg(&rq, c, q->payload, q->payload_len);
        predi_arg_i64(&rq, c, q->priority);
        predi_arg_i64(&rq, c, q->delay_ms);
        predi_arg_i64(&rq, c, q->run_at_ms);
        predi_argf(&rq, c, "%lu",
                   (unsigned long)(q->max_attempts ? q->max_attempts : PERS_DEFAULT_MAX_ATTEMPTS));
    }
    rc = predi_exec(b, &rq, 1, detail);
    if (rc != PERS_OK)
        maybe_applied = 1; /* sent, outcome unknown (a resend was tried where it applies) */
    else if (rq.rep[0]->type == REDIS_REPLY_ERROR) {
        rc = predi_reply_error(b, rq.rep[0], "enqueue script", detail);
        maybe_applied = strncmp(rq.rep[0]->str != NULL ? rq.rep[0]->str : "", "OOM", 3) != 0;
    } else if ((r = predi_array(rq.rep[0], 1)) == NULL) {
        rc = predi_bad_reply(b, "enqueue", detail);
        maybe_applied = 1;
    } else if (predi_int(r->element[0]) != 0) {
        /* refused: the script checked before writing, nothing was applied */
        int64_t code = predi_int(r->element[0]);
        at = r->elements > 1 ? (size_t)predi_int(r->element[1]) : 0;
        if (at >= count)
            at = 0;
        rc = code == 4 ? PERS_ERR_DUPLICATE : code == 13 ? PERS_ERR_LIMIT : PERS_ERR_INTERNAL;
        if (rc == PERS_ERR_DUPLICATE)
            snprintf(inner, sizeof inner, "a task with id \"%s\" already exists in tenant \"%s\"",
                     e[at].id, tenant);
        else if (rc == PERS_ERR_LIMIT)
            snprintf(inner, sizeof inner,
                     "queue \"%s\" of tenant \"%s\" has used all its 2^36 enqueue sequence "
                     "numbers",
                     queue, tenant);
        else
            snprintf(inner, sizeof inner, "the enqueue script refused the request");
        if (batch)
            pers_detail_set(detail, "request %lu: %s; nothing was enqueued", (unsigned long)at,
                            inner);
        else
            pers_detail_set(detail, "%s", inner);
    } else if (r->elements != 1 + 2 * count) {
        rc = predi_bad_reply(b, "enqueue", detail);
        maybe_applied = 1;
    } else {
        for (i = 0; i < count; i++) {
            e[i].kind = (int)predi_int(r->element[1 + 2 * i]);
            predi_str_field(r->element[2 + 2 * i], e[i].out_id, sizeof e[i].out_id);
        }
    }
    predi_req_free(&rq);
    if (rc != PERS_OK) {
        if (!maybe_applied) /* with an unknown outcome the reservations must stay */
            predi_dirfix(b, reqs, e, count, 1);
        predi_free(b, e, count * sizeof *e);
        return rc;
    }

    /* 3. */
    predi_dirfix(b, reqs, e, count, 0);
    for (i = 0; i < count; i++) {
        memset(&res[i], 0, sizeof res[i]);
        predi_copy(res[i].task_id, sizeof res[i].task_id, e[i].out_id, strlen(e[i].out_id));
        res[i].duplicate = e[i].kind == 3;
        if (e[i].kind != 3)
            predi_cache_put(b, tenant, e[i].out_id, queue);
    }
    predi_free(b, e, count * sizeof *e);
    return PERS_OK;
}

static pers_result predi_enqueue(void *backend, const pers_enqueue_req *req, pers_enqueue_res *res,
                                 pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    if (b == NULL || req == NULL || res == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return predi_enqueue_many(b, req, 1, res, 0, detail);
}

static pers_result predi_enqueue_batch(void *backend, const pers_enqueue_req *reqs, size_t count,
                                       pers_enqueue_res *res, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    if (b == NULL || reqs == NULL || res == NULL || count == 0 || count > PERS_BATCH_MAX) {
        pers_detail_set(detail, "NULL argument or a batch size outside 1..%u",
                        (unsigned)PERS_BATCH_MAX);
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return predi_enqueue_many(b, reqs, count, res, 1, detail);
}

/* ---------------------------------------------------------------------------------------------
   Claim
   ------------------------------------------------------------------------------------------- */

static pers_result predi_claim(void *backend, const pers_claim_req *req, pers_task *tasks,
                               pers_claim_res *res, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    size_t got = 0, i, k;
    int64_t next_due = PERS_NO_TIME;
    char nowbuf[32];
    const char *now;
    uint64_t floor;
    pers_result rc = PERS_OK;
    if (b == NULL || req == NULL || tasks == NULL || res == NULL || req->queues == NULL ||
        !predi_name_ok(req->tenant) || !predi_name_ok(req->worker_id) || req->lease_ms <= 0 ||
        req->lease_ms > PERS_DURATION_MAX_MS || req->max_tasks == 0 ||
        req->max_tasks > PERS_CLAIM_MAX || req->queue_count == 0 ||
        req->queue_count > PERS_QUEUES_MAX) {
        pers_detail_set(detail, "invalid claim request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    for (i = 0; i < req->queue_count; i++)
        if (!predi_name_ok(req->queues[i])) {
            pers_detail_set(detail, "invalid queue name at %lu", (unsigned long)i);
            return PERS_ERR_INVALID_ARGUMENT;
        }
    now = predi_now(b, nowbuf, sizeof nowbuf);
    floor = __atomic_load_n(&b->token_floor, __ATOMIC_RELAXED);
    for (i = 0; i < req->queue_count && got < req->max_tasks; i++) {
        predi_req rq;
        predi_cmd *c;
        const redisReply *r;
        size_t n;
        predi_req_init(&rq, b);
        c = predi_req_script(&rq, PREDI_S_CLAIM);
        predi_arg_qkeys(&rq, c, req->tenant, req->queues[i]);
        predi_args(&rq, c, now);
        predi_arg_i64(&rq, c, req->lease_ms);
        predi_args(&rq, c, req->worker_id);
        predi_argf(&rq, c, "%lu", (unsigned long)(req->max_tasks - got));
        predi_argf(&rq, c, "%llu", (unsigned long long)floor);
        rc = predi_exec(b, &rq, 0, detail); /* never resent: see ERRORS AND RETRIES */
        if (rc == PERS_OK)
            rc = predi_reply_ok(b, &rq, 0, "claim script", detail);
        r = rc == PERS_OK ? predi_array(rq.rep[0], 2) : NULL;
        if (rc == PERS_OK && r == NULL)
            rc = predi_bad_reply(b, "claim", detail);
        if (rc != PERS_OK) {
            predi_req_free(&rq);
            break;
        }
        n = (size_t)predi_int(r->element[0]);
        if (r->elements != 2 + n * PREDI_TASK_FIELDS || got + n > req->max_tasks) {
            rc = predi_bad_reply(b, "claim", detail);
            predi_req_free(&rq);
            break;
        }
        if (n == 0) {
            int64_t due = predi_int(r->element[1]);
            if (due >= 0 && (next_due == PERS_NO_TIME || due < next_due))
                next_due = due;
        }
        for (k = 0; k < n; k++) {
            pers_result frc = predi_fill_task(b, r->element + 2 + k * PREDI_TASK_FIELDS,
                                              req->tenant, req->queues[i], 1, &tasks[got], detail);
            if (frc != PERS_OK) {
                /* The tasks stay leased and return to ready when their lease expires. */
                if (got == 0)
                    rc = frc;
                break;
            }
            if (tasks[got].lease_token > floor)
                floor = tasks[got].lease_token;
            predi_cache_put(b, req->tenant, tasks[got].id, req->queues[i]);
            got++;
        }
        predi_req_free(&rq);
        if (k < n)
            break;
    }
    predi_token_seen(b, floor);
    if (rc != PERS_OK && got > 0) {
        /* Tasks already leased by earlier queues are returned (the failure is only logged). */
        predi_log(b, PLG_LOG_WARN, "persistence redis: claim stopped after %lu task(s): %s",
                  (unsigned long)got, detail != NULL ? detail->text : "");
        rc = PERS_OK;
    }
    if (rc != PERS_OK)
        return rc;
    res->count = got;
    res->next_due_ms = got == 0 ? next_due : PERS_NO_TIME;
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Operations on tasks by (tenant, id)
   ------------------------------------------------------------------------------------------- */

/* One task that predi_task_calls runs a queue script on. The caller fills tenant, id and the
   script's ARGV after now and id (args; lens NULL for C strings); the call fills the rest. */
typedef struct predi_task_ref {
    const char *tenant, *id;
    const char *const *args;
    const size_t *lens;
    size_t nargs;
    char queue[PERS_NAME_MAX + 1]; /* where the task was found */
    pers_result rc;          /* PERS_OK: reply is the script's answer; PERS_ERR_NOT_FOUND; or
                                the failure that left the task without an answer */
    const redisReply *reply; /* with rc PERS_OK: an array of one element or more, never {-1} */
    /* internal */
    uint64_t hash;           /* of (tenant, id) */
    size_t first;            /* the first ref that names the same task (itself if none) */
    size_t cmd;              /* its command in the current request */
    int at;                  /* PREDI_AT_* */
    int active;              /* to be answered at the start of the current pass */
    int pass;                /* the pass whose request holds reply */
} predi_task_ref;

enum {
    PREDI_AT_LOOKUP, /* its queue is still to be found */
    PREDI_AT_CACHED, /* queue from the handle's cache: a {-1} sends it to the directory */
    PREDI_AT_DIR,    /* queue from the tenant's directory: a {-1} is NOT_FOUND */
    PREDI_AT_SAME,   /* located with its first ref, in the same pass */
    PREDI_AT_DONE    /* rc (and reply) final */
};

/* The queue in a reply to HGET P:{T}:ids id. PERS_OK (the cache learns it), PERS_ERR_NOT_FOUND
   (no entry; nothing written to d), or the failure, described in d. */
static pers_result predi_dir_entry(predi_backend *b, const redisReply *r, const char *tenant,
                                   const char *id, char *queue, pers_detail *d)
{
    const char *sp;
    size_t n;
    if (r == NULL)
        return predi_bad_reply(b, "HGET of the task directory", d);
    if (r->type == REDIS_REPLY_ERROR)
        return predi_reply_error(b, r, "HGET of the task directory", d);
    if (r->type != REDIS_REPLY_STRING || r->str == NULL)
        return PERS_ERR_NOT_FOUND;
    sp = (const char *)memchr(r->str, ' ', r->len);
    n = sp != NULL ? (size_t)(sp - r->str) : r->len;
    predi_copy(queue, PERS_NAME_MAX + 1, r->str, n);
    if (!predi_name_ok(queue))
        return predi_bad_reply(b, "the task directory", d);
    predi_cache_put(b, tenant, id, queue);
    return PERS_OK;
}

/* Runs `script` on each of the n tasks of t, in the order given, with ARGV now, id, args...,
   each on its own queue (any tenants and queues; one script per task keeps each task atomic).
   Round trips: a task's queue comes from the handle's cache, else from its tenant's directory,
   one pipeline of HGETs for all that miss; then one pipeline of all the scripts. A reply {-1}
   (not in that queue) after a cache hit sends the task to the directory and runs it once more
   in a second pass (those tasks only); after a directory answer it is NOT_FOUND. Refs that name
   the same task share its lookups, so they run in their order within one pipeline.
   Returns PERS_OK when every task has its rc (and reply); else the first failure (connection,
   timeout, error reply), described in d: the tasks answered before it keep theirs, the others
   have the failure as rc. The replies live in rq[0] and rq[1] (the request of each pass),
   which the caller frees with predi_req_free whatever the outcome. A call for one task also
   writes its NOT_FOUND message into d. */
static pers_result predi_task_calls(predi_backend *b, int script, predi_task_ref *t, size_t n,
                                    int retry_ok, predi_req rq[2], pers_detail *d)
{
    const char *name = predi_script_defs[script].name;
    pers_detail *one = n == 1 ? d : NULL;
    char nowbuf[32], what[96];
    const char *now = predi_now(b, nowbuf, sizeof nowbuf);
    pers_result rc = PERS_OK, e;
    predi_req lk;
    predi_cmd *c;
    const redisReply *r;
    size_t i, j, lookups, calls;
    int pass;
    predi_req_init(&rq[0], b);
    predi_req_init(&rq[1], b);
    for (i = 0; i < n; i++) {
        t[i].hash = predi_hash(t[i].tenant, t[i].id);
        t[i].first = i;
        for (j = 0; j < i && t[i].first == i; j++) /* quadratic, but only in hashes: cheap */
            if (t[j].hash == t[i].hash && t[j].first == j && strcmp(t[j].id, t[i].id) == 0 &&
                strcmp(t[j].tenant, t[i].tenant) == 0)
                t[i].first = j;
        t[i].queue[0] = '\0';
        t[i].rc = PERS_ERR_INTERNAL;
        t[i].reply = NULL;
        t[i].at = PREDI_AT_LOOKUP;
        t[i].pass = 0;
    }
    for (pass = 0; pass < 2 && rc == PERS_OK; pass++) {
        /* 1. Each task's queue: the cache (first pass only), else the directory. */
        predi_req_init(&lk, b);
        lookups = 0;
        for (i = 0; i < n; i++) {
            t[i].active = t[i].at == PREDI_AT_LOOKUP;
            if (!t[i].active)
                continue;
            if (t[i].first != i && t[t[i].first].active) {
                t[i].at = PREDI_AT_SAME;
            } else if (pass == 0 && predi_cache_get(b, t[i].tenant, t[i].id, t[i].queue)) {
                t[i].at = PREDI_AT_CACHED;
            } else {
                c = predi_req_add(&lk, -1);
                predi_args(&lk, c, "HGET");
                predi_arg_key(&lk, c, t[i].tenant, NULL, "ids");
                predi_args(&lk, c, t[i].id);
                t[i].cmd = lookups++;
                t[i].at = PREDI_AT_DIR;
            }
        }
        if (lookups > 0)
            rc = predi_exec(b, &lk, 1, d); /* reads: resent as they are */
        for (i = 0; rc == PERS_OK && i < n; i++) {
            if (!t[i].active || t[i].at != PREDI_AT_DIR)
                continue;
            e = predi_dir_entry(b, lk.rep[t[i].cmd], t[i].tenant, t[i].id, t[i].queue, d);
            if (e == PERS_ERR_NOT_FOUND) {
                pers_detail_set(one, "no task \"%s\" in tenant \"%s\"", t[i].id, t[i].tenant);
                t[i].rc = e;
                t[i].at = PREDI_AT_DONE;
            } else if (e != PERS_OK) {
                rc = e;
            }
        }
        predi_req_free(&lk);
        if (rc != PERS_OK)
            break;
        /* 2. One script per task still to answer, in the order given, in one pipeline. */
        calls = 0;
        for (i = 0; i < n; i++) {
            if (!t[i].active)
                continue;
            if (t[i].at == PREDI_AT_SAME) {
                const predi_task_ref *f = &t[t[i].first];
                t[i].at = f->at;
                t[i].rc = f->rc;
                memcpy(t[i].queue, f->queue, sizeof t[i].queue);
            }
            if (t[i].at == PREDI_AT_DONE)
                continue;
            c = predi_req_script(&rq[pass], script);
            predi_arg_qkeys(&rq[pass], c, t[i].tenant, t[i].queue);
            predi_args(&rq[pass], c, now);
            predi_args(&rq[pass], c, t[i].id);
            for (j = 0; j < t[i].nargs; j++)
                predi_arg(&rq[pass], c, t[i].args[j],
                          t[i].lens != NULL ? t[i].lens[j] : strlen(t[i].args[j]));
            t[i].cmd = calls++;
        }
        if (calls == 0)
            break;
        rc = predi_exec(b, &rq[pass], retry_ok, d);
        for (i = 0; i < n; i++) {
            if (!t[i].active || t[i].at == PREDI_AT_DONE)
                continue;
            r = rq[pass].rep != NULL ? rq[pass].rep[t[i].cmd] : NULL;
            if (r == NULL)
                continue; /* no reply: the failure is its code */
            if (n > 1)
                snprintf(what, sizeof what, "%s script (item %lu)", name, (unsigned long)i);
            else
                snprintf(what, sizeof what, "%s script", name);
            e = PERS_OK;
            if (r->type == REDIS_REPLY_ERROR)
                e = predi_reply_error(b, r, what, rc == PERS_OK ? d : NULL);
            else if (predi_array(r, 1) == NULL)
                e = predi_bad_reply(b, what, rc == PERS_OK ? d : NULL);
            if (e != PERS_OK) {
                t[i].rc = e;
                if (rc == PERS_OK)
                    rc = e; /* the first failure names the call's outcome */
            } else if (predi_int(r->element[0]) == -1) {
                predi_cache_drop(b, t[i].tenant, t[i].id);
                if (t[i].at == PREDI_AT_CACHED) {
                    t[i].at = PREDI_AT_LOOKUP; /* a stale or colliding entry: ask the directory */
                    continue;
                }
                pers_detail_set(one, "no task \"%s\" in tenant \"%s\"", t[i].id, t[i].tenant);
                t[i].rc = PERS_ERR_NOT_FOUND;
            } else {
                t[i].rc = PERS_OK;
                t[i].reply = r;
                t[i].pass = pass;
            }
            t[i].at = PREDI_AT_DONE;
        }
    }
    for (i = 0; i < n; i++)
        if (t[i].at != PREDI_AT_DONE)
            t[i].rc = rc != PERS_OK ? rc : PERS_ERR_INTERNAL;
    return rc;
}

/* predi_task_calls for one task. On PERS_OK the script's reply is rq->rep[0] (the caller frees
   rq) and queue holds the task's queue; otherwise there is nothing to free. */
static pers_result predi_task_call(predi_backend *b, const char *tenant, const char *id,
                                   int script, const char *const *args, const size_t *lens,
                                   size_t nargs, int retry_ok, predi_req *rq, char *queue,
                                   pers_detail *d)
{
    predi_task_ref t;
    predi_req rqs[2];
    pers_result rc;
    memset(&t, 0, sizeof t);
    t.tenant = tenant;
    t.id = id;
    t.args = args;
    t.lens = lens;
    t.nargs = nargs;
    rc = predi_task_calls(b, script, &t, 1, retry_ok, rqs, d);
    if (rc == PERS_OK)
        rc = t.rc;
    if (rc == PERS_OK) {
        memcpy(queue, t.queue, sizeof t.queue);
        *rq = rqs[t.pass]; /* one command: its reply is rep[0] */
        predi_req_init(&rqs[t.pass], b);
    }
    predi_req_free(&rqs[0]);
    predi_req_free(&rqs[1]);
    return rc;
}

/* S5 outcomes of the worker operations' replies {code, state}. */
static pers_result predi_lease_outcome(const redisReply *r, const pers_lease *lease, int complete,
                                       pers_detail *d)
{
    int64_t code = predi_int(r->element[0]);
    pers_task_state st =
        r->elements > 1 ? (pers_task_state)predi_int(r->element[1]) : (pers_task_state)0;
    if (code == 0)
        return PERS_OK;
    if (code == 3 || code == 17) {
        if (complete) {
            pers_detail_set(d, "task \"%s\" was already %s with this token; the first result is "
                               "kept",
                            lease->task_id, pers_state_name(st));
            return PERS_ERR_ALREADY_COMPLETED;
        }
        pers_detail_set(d, "task \"%s\" is already %s", lease->task_id, pers_state_name(st));
        return PERS_ERR_INVALID_STATE;
    }
    pers_detail_set(d, "task \"%s\": token %llu is not its current live lease (it is %s)",
                    lease->task_id, (unsigned long long)lease->token, pers_state_name(st));
    return PERS_ERR_LEASE_LOST;
}

/* A lease as S4 and S10 describe it. Behind a store (PERS_OPEN_VALIDATED) the store has
   checked the names already: only what costs nothing is looked at again. */
static int predi_lease_ok(const predi_backend *b, const pers_lease *lease)
{
    return lease != NULL && lease->tenant != NULL && lease->task_id != NULL &&
           lease->token != 0 &&
           (b->validated || (predi_name_ok(lease->tenant) && predi_key_ok(lease->task_id)));
}

static pers_result predi_extend_lease(void *backend, const pers_lease *lease, int64_t lease_ms,
                                      int64_t *expires_ms, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char tok[24], ms[24], queue[PERS_NAME_MAX + 1];
    const char *args[2];
    pers_result rc;
    if (b == NULL || expires_ms == NULL || !predi_lease_ok(b, lease) || lease_ms <= 0 ||
        lease_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    snprintf(tok, sizeof tok, "%llu", (unsigned long long)lease->token);
    snprintf(ms, sizeof ms, "%lld", (long long)lease_ms);
    args[0] = tok;
    args[1] = ms;
    rc = predi_task_call(b, lease->tenant, lease->task_id, PREDI_S_EXTEND, args, NULL, 2, 1, &rq,
                         queue, detail);
    if (rc != PERS_OK)
        return rc;
    rc = predi_lease_outcome(rq.rep[0], lease, 0, detail);
    if (rc == PERS_OK) {
        if (rq.rep[0]->elements < 2)
            rc = predi_bad_reply(b, "extend", detail);
        else
            *expires_ms = predi_int(rq.rep[0]->element[1]);
    }
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_abandon(void *backend, const pers_lease *lease, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char tok[24], nonce[PREDI_NONCE_SIZE], queue[PERS_NAME_MAX + 1];
    const char *args[2];
    pers_result rc;
    if (b == NULL || !predi_lease_ok(b, lease)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    snprintf(tok, sizeof tok, "%llu", (unsigned long long)lease->token);
    predi_nonce(b, nonce, sizeof nonce);
    args[0] = tok;
    args[1] = nonce;
    rc = predi_task_call(b, lease->tenant, lease->task_id, PREDI_S_ABANDON, args, NULL, 2, 1, &rq,
                         queue, detail);
    if (rc != PERS_OK)
        return rc;
    rc = predi_lease_outcome(rq.rep[0], lease, 0, detail);
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_nack(void *backend, const pers_lease *lease, int64_t retry_delay_ms,
                              const char *reason, pers_task_state *state, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char tok[24], nonce[PREDI_NONCE_SIZE], delay[24], queue[PERS_NAME_MAX + 1];
    const char *args[5];
    pers_result rc;
    if (b == NULL || state == NULL || !predi_lease_ok(b, lease) || retry_delay_ms < 0 ||
        retry_delay_ms > PERS_DURATION_MAX_MS ||
        (reason != NULL && strlen(reason) > PERS_REASON_MAX)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    snprintf(tok, sizeof tok, "%llu", (unsigned long long)lease->token);
    snprintf(delay, sizeof delay, "%lld", (long long)retry_delay_ms);
    predi_nonce(b, nonce, sizeof nonce);
    args[0] = tok;
    args[1] = nonce;
    args[2] = delay;
    args[3] = reason != NULL ? "1" : "0";
    args[4] = reason != NULL ? reason : "";
    rc = predi_task_call(b, lease->tenant, lease->task_id, PREDI_S_NACK, args, NULL, 5, 1, &rq,
                         queue, detail);
    if (rc != PERS_OK)
        return rc;
    rc = predi_lease_outcome(rq.rep[0], lease, 0, detail);
    if (rc == PERS_OK) {
        if (rq.rep[0]->elements < 2)
            rc = predi_bad_reply(b, "nack", detail);
        else
            *state = (pers_task_state)predi_int(rq.rep[0]->element[1]);
    }
    predi_req_free(&rq);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   complete and complete_batch: one path (a complete is a batch of one)
   ------------------------------------------------------------------------------------------- */

/* The checks of persistence.h for one completion, for direct callers of the vtable (the
   result's size against this backend's limit always). */
static pers_result predi_check_done(const predi_backend *b, const pers_lease *lease,
                                    const pers_completion *completion, pers_detail *d)
{
    if (!predi_lease_ok(b, lease) || completion == NULL ||
        (completion->data == NULL && completion->data_len > 0) ||
        (completion->failed != 0 && completion->failed != 1)) {
        pers_detail_set(d, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)completion->data_len > b->max_payload) {
        pers_detail_set(d, "result is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)completion->data_len, (unsigned long long)b->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    return PERS_OK;
}

/* The complete script's ARGV after now and id: token, op nonce, failed (0/1), data. The nonce
   is the item's for its life: a resend after a lost reply carries it again and so reports the
   first attempt's outcome (see ERRORS AND RETRIES). */
typedef struct predi_done_args {
    char tok[24];
    char nonce[PREDI_NONCE_SIZE];
    const char *argv[4];
    size_t argl[4];
} predi_done_args;

static void predi_done_prepare(predi_backend *b, const pers_lease *lease,
                               const pers_completion *completion, predi_done_args *a,
                               predi_task_ref *t)
{
    snprintf(a->tok, sizeof a->tok, "%llu", (unsigned long long)lease->token);
    predi_nonce(b, a->nonce, sizeof a->nonce);
    a->argv[0] = a->tok;
    a->argl[0] = strlen(a->tok);
    a->argv[1] = a->nonce;
    a->argl[1] = strlen(a->nonce);
    a->argv[2] = completion->failed ? "1" : "0";
    a->argl[2] = 1;
    a->argv[3] = completion->data != NULL ? (const char *)completion->data : "";
    a->argl[3] = completion->data != NULL ? completion->data_len : 0;
    memset(t, 0, sizeof *t);
    t->tenant = lease->tenant;
    t->id = lease->task_id;
    t->args = a->argv;
    t->lens = a->argl;
    t->nargs = 4;
}

/* The codes one completion can have on its own (S5, S12); anything else is a failure. */
static int predi_item_outcome(pers_result rc)
{
    return rc == PERS_OK || rc == PERS_ERR_NOT_FOUND || rc == PERS_ERR_LEASE_LOST ||
           rc == PERS_ERR_ALREADY_COMPLETED || rc == PERS_ERR_INVALID_STATE;
}

/* S5, S12 and S20 for count checked completions (completions NULL: empty results), each its
   own script on its own queue, all in one pipeline (predi_task_calls). results[i] receives
   item i's code. On a failure midway (the connection, a timeout, an error reply) the items
   answered before it keep their codes and the others read the failure, which is returned. */
static pers_result predi_complete_items(predi_backend *b, const pers_lease *leases,
                                        const pers_completion *completions, size_t count,
                                        pers_result *results, pers_detail *detail)
{
    static const pers_completion empty = { 0, NULL, 0 };
    predi_task_ref one_ref, *t = &one_ref;
    predi_done_args one_args, *a = &one_args;
    predi_req rq[2];
    pers_result rc;
    size_t i, answered = 0;
    if (count > 1) {
        t = (predi_task_ref *)predi_alloc(b, count * sizeof *t);
        a = (predi_done_args *)predi_alloc(b, count * sizeof *a);
        if (t == NULL || a == NULL) {
            predi_free(b, t, count * sizeof *t);
            predi_free(b, a, count * sizeof *a);
            pers_detail_set(detail, "out of memory for a batch of %lu", (unsigned long)count);
            for (i = 0; i < count; i++)
                results[i] = PERS_ERR_NO_MEMORY;
            return PERS_ERR_NO_MEMORY;
        }
    }
    for (i = 0; i < count; i++)
        predi_done_prepare(b, &leases[i], completions != NULL ? &completions[i] : &empty, &a[i],
                           &t[i]);
    rc = predi_task_calls(b, PREDI_S_COMPLETE, t, count, 1, rq, detail);
    for (i = 0; i < count; i++) {
        results[i] = t[i].rc == PERS_OK ? predi_lease_outcome(t[i].reply, &leases[i], 1,
                                                              count == 1 ? detail : NULL)
                                        : t[i].rc;
        answered += predi_item_outcome(results[i]);
    }
    predi_req_free(&rq[0]);
    predi_req_free(&rq[1]);
    if (rc != PERS_OK && count > 1 && detail != NULL) {
        char note[PERS_DETAIL_SIZE];
        if (snprintf(note, sizeof note, "%s (%lu of %lu items had their outcome before that)",
                     detail->text, (unsigned long)answered, (unsigned long)count) > 0)
            memcpy(detail->text, note, sizeof note); /* truncated to fit, NUL included */
    }
    if (t != &one_ref) {
        predi_free(b, t, count * sizeof *t);
        predi_free(b, a, count * sizeof *a);
    }
    return rc;
}

static pers_result predi_complete(void *backend, const pers_lease *lease,
                                  const pers_completion *completion, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    pers_result rc, result;
    if (b == NULL) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = predi_check_done(b, lease, completion, detail)) != PERS_OK)
        return rc;
    rc = predi_complete_items(b, lease, completion, 1, &result, detail);
    return rc != PERS_OK ? rc : result;
}

/* S20: one pipeline of complete scripts, one per item (a script over every item's keys is
   impossible: they may lie in different slots), so each item is atomic on its own and the
   batch costs one round trip (two when some ids are not in the handle's cache). */
static pers_result predi_complete_batch(void *backend, const pers_lease *leases,
                                        const pers_completion *completions, size_t count,
                                        pers_result *results, pers_detail *detail)
{
    static const pers_completion empty = { 0, NULL, 0 };
    predi_backend *b = (predi_backend *)backend;
    pers_result rc = PERS_OK;
    pers_detail item;
    size_t i;
    if (b == NULL || leases == NULL || results == NULL || count == 0 || count > PERS_BATCH_MAX) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    for (i = 0; i < count && rc == PERS_OK; i++) {
        item.text[0] = '\0';
        rc = predi_check_done(b, &leases[i], completions != NULL ? &completions[i] : &empty,
                              &item);
        if (rc != PERS_OK)
            pers_detail_set(detail, "item %lu: %s", (unsigned long)i, item.text);
    }
    if (rc != PERS_OK) { /* nothing ran */
        for (i = 0; i < count; i++)
            results[i] = rc;
        return rc;
    }
    return predi_complete_items(b, leases, completions, count, results, detail);
}

static pers_result predi_get_task(void *backend, const char *tenant, const char *task_id,
                                  pers_task *task, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char queue[PERS_NAME_MAX + 1];
    const char *args[1];
    pers_result rc;
    if (b == NULL || task == NULL || !predi_name_ok(tenant) || !predi_key_ok(task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    args[0] = "1";
    rc = predi_task_call(b, tenant, task_id, PREDI_S_GET, args, NULL, 1, 1, &rq, queue, detail);
    if (rc != PERS_OK)
        return rc;
    if (rq.rep[0]->elements != 1 + PREDI_TASK_FIELDS)
        rc = predi_bad_reply(b, "get", detail);
    else
        rc = predi_fill_task(b, rq.rep[0]->element + 1, tenant, queue, 0, task, detail);
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_get_result(void *backend, const char *tenant, const char *task_id,
                                    pers_task_result *result, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char queue[PERS_NAME_MAX + 1];
    const char *args[1];
    const redisReply *r;
    pers_result rc;
    if (b == NULL || result == NULL || !predi_name_ok(tenant) || !predi_key_ok(task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    args[0] = "2";
    rc = predi_task_call(b, tenant, task_id, PREDI_S_GET, args, NULL, 1, 1, &rq, queue, detail);
    if (rc != PERS_OK)
        return rc;
    r = rq.rep[0];
    if (predi_int(r->element[0]) == 1) {
        pers_task_state st =
            r->elements > 1 ? (pers_task_state)predi_int(r->element[1]) : (pers_task_state)0;
        pers_detail_set(detail, "task \"%s\" has no result (it is %s%s)", task_id,
                        pers_state_name(st),
                        st == PERS_STATE_COMPLETED || st == PERS_STATE_FAILED
                            ? " and its result was cleaned up"
                            : "");
        rc = PERS_ERR_NOT_FOUND;
    } else if (r->elements != 5 || r->element[4]->type != REDIS_REPLY_STRING) {
        rc = predi_bad_reply(b, "get", detail);
    } else {
        void *data = pers_copy_bytes(&b->alloc, r->element[4]->str, r->element[4]->len);
        if (data == NULL) {
            pers_detail_set(detail, "out of memory");
            rc = PERS_ERR_NO_MEMORY;
        } else {
            memset(result, 0, sizeof *result);
            predi_copy(result->task_id, sizeof result->task_id, task_id, strlen(task_id));
            predi_copy(result->tenant, sizeof result->tenant, tenant, strlen(tenant));
            predi_copy(result->queue, sizeof result->queue, queue, strlen(queue));
            result->state = (pers_task_state)predi_int(r->element[1]);
            result->attempts = (uint32_t)predi_int(r->element[2]);
            result->finished_ms = predi_int(r->element[3]);
            result->data = data;
            result->data_len = r->element[4]->len;
        }
    }
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_requeue_dead(void *backend, const char *tenant, const char *task_id,
                                      pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    char nonce[PREDI_NONCE_SIZE], queue[PERS_NAME_MAX + 1];
    const char *args[1];
    pers_result rc;
    if (b == NULL || !predi_name_ok(tenant) || !predi_key_ok(task_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    predi_nonce(b, nonce, sizeof nonce);
    args[0] = nonce;
    rc = predi_task_call(b, tenant, task_id, PREDI_S_REQUEUE, args, NULL, 1, 1, &rq, queue,
                         detail);
    if (rc != PERS_OK)
        return rc;
    if (predi_int(rq.rep[0]->element[0]) != 0) {
        pers_task_state st = rq.rep[0]->elements > 1
                                 ? (pers_task_state)predi_int(rq.rep[0]->element[1])
                                 : (pers_task_state)0;
        pers_detail_set(detail, "task \"%s\" is %s, not dead", task_id, pers_state_name(st));
        rc = PERS_ERR_INVALID_STATE;
    }
    predi_req_free(&rq);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Queue-wide reads
   ------------------------------------------------------------------------------------------- */

static pers_result predi_queue_stats(void *backend, const char *tenant, const char *queue,
                                     pers_stats *stats, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32];
    const redisReply *r;
    pers_result rc;
    if (b == NULL || stats == NULL || !predi_name_ok(tenant) || !predi_name_ok(queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_STATS);
    predi_arg_qkeys(&rq, c, tenant, queue);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    rc = predi_exec(b, &rq, 1, detail);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, 0, "stats script", detail);
    r = rc == PERS_OK ? predi_array(rq.rep[0], 6) : NULL;
    if (rc == PERS_OK && r == NULL)
        rc = predi_bad_reply(b, "stats", detail);
    if (rc == PERS_OK) {
        memset(stats, 0, sizeof *stats);
        stats->scheduled = (uint64_t)predi_int(r->element[0]);
        stats->ready = (uint64_t)predi_int(r->element[1]);
        stats->leased = (uint64_t)predi_int(r->element[2]);
        stats->completed = (uint64_t)predi_int(r->element[3]);
        stats->failed = (uint64_t)predi_int(r->element[4]);
        stats->dead = (uint64_t)predi_int(r->element[5]);
    }
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_list_dead(void *backend, const pers_list_req *req, pers_task_list *list,
                                   pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32];
    const redisReply *r;
    size_t n, i, limit;
    pers_result rc;
    if (b == NULL || req == NULL || list == NULL || !predi_name_ok(req->tenant) ||
        !predi_name_ok(req->queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(list, 0, sizeof *list);
    limit = req->limit == 0 || req->limit > PERS_LIST_MAX ? PERS_LIST_MAX : req->limit;
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_LISTDEAD);
    predi_arg_qkeys(&rq, c, req->tenant, req->queue);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    predi_argf(&rq, c, "%lu", (unsigned long)(req->offset > (size_t)2147483647 ? (size_t)2147483647
                                                                                : req->offset));
    predi_argf(&rq, c, "%lu", (unsigned long)limit);
    rc = predi_exec(b, &rq, 1, detail);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, 0, "listdead script", detail);
    r = rc == PERS_OK ? predi_array(rq.rep[0], 1) : NULL;
    if (rc == PERS_OK && (r == NULL || (r->elements - 1) % PREDI_TASK_FIELDS != 0))
        rc = predi_bad_reply(b, "listdead", detail);
    if (rc == PERS_OK) {
        n = (r->elements - 1) / PREDI_TASK_FIELDS;
        list->total = (size_t)predi_int(r->element[0]);
        if (n > 0) {
            list->items = (pers_task *)pers_alloc(&b->alloc, n * sizeof *list->items);
            if (list->items == NULL) {
                pers_detail_set(detail, "out of memory for %lu tasks", (unsigned long)n);
                rc = PERS_ERR_NO_MEMORY;
            }
        }
        for (i = 0; rc == PERS_OK && i < n; i++) {
            rc = predi_fill_task(b, r->element + 1 + i * PREDI_TASK_FIELDS, req->tenant,
                                 req->queue, 0, &list->items[i], detail);
            if (rc == PERS_OK)
                list->count = i + 1;
        }
        if (rc != PERS_OK) {
            size_t made = list->count;
            for (i = 0; i < made; i++)
                pers_task_clear(&b->alloc, &list->items[i]);
            if (list->items != NULL)
                pers_free(&b->alloc, list->items, n * sizeof *list->items);
            memset(list, 0, sizeof *list);
        }
    }
    predi_req_free(&rq);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Retention
   ------------------------------------------------------------------------------------------- */

/* The tenants a tenant-wide operation covers: one, or every member of P:tenants. The strings
   live in rq (freed by the caller). */
static pers_result predi_tenants(predi_backend *b, const char *tenant, predi_req *rq,
                                 const char ***names, size_t *count, size_t *cap, pers_detail *d)
{
    predi_cmd *c;
    pers_result rc;
    size_t i;
    predi_req_init(rq, b);
    *names = NULL;
    *count = 0;
    *cap = 0;
    if (tenant != NULL) {
        *cap = 1;
        *names = (const char **)predi_alloc(b, sizeof **names);
        if (*names == NULL) {
            pers_detail_set(d, "out of memory");
            return PERS_ERR_NO_MEMORY;
        }
        (*names)[0] = tenant;
        *count = 1;
        return PERS_OK;
    }
    c = predi_req_add(rq, -1);
    predi_args(rq, c, "SMEMBERS");
    predi_arg_key(rq, c, NULL, NULL, "tenants");
    rc = predi_exec(b, rq, 1, d);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, rq, 0, "SMEMBERS", d);
    if (rc == PERS_OK && rq->rep[0]->type != REDIS_REPLY_ARRAY)
        rc = predi_bad_reply(b, "SMEMBERS", d);
    if (rc != PERS_OK)
        return rc;
    *cap = rq->rep[0]->elements + 1;
    *names = (const char **)predi_alloc(b, *cap * sizeof **names);
    if (*names == NULL) {
        pers_detail_set(d, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    for (i = 0; i < rq->rep[0]->elements; i++) {
        const redisReply *e = rq->rep[0]->element[i];
        if (e->type == REDIS_REPLY_STRING && e->str != NULL && predi_name_ok(e->str))
            (*names)[(*count)++] = e->str;
    }
    return PERS_OK;
}

static void predi_tenants_free(predi_backend *b, predi_req *rq, const char **names, size_t cap)
{
    if (names != NULL)
        predi_free(b, (void *)names, cap * sizeof *names);
    predi_req_free(rq);
}

/* cleanup_tasks (what 1) and cleanup_results (what 2) of one tenant. */
static pers_result predi_cleanup_tenant(predi_backend *b, const char *tenant,
                                        const pers_cleanup_req *req, int what, size_t *removed,
                                        size_t *budget, pers_detail *d)
{
    predi_req qs;
    predi_cmd *c;
    pers_result rc;
    size_t i, j;
    char nowbuf[32];
    const char *now = predi_now(b, nowbuf, sizeof nowbuf);
    predi_req_init(&qs, b);
    c = predi_req_add(&qs, -1);
    predi_args(&qs, c, "SMEMBERS");
    predi_arg_key(&qs, c, tenant, NULL, "queues");
    rc = predi_exec(b, &qs, 1, d);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &qs, 0, "SMEMBERS", d);
    if (rc == PERS_OK && qs.rep[0]->type != REDIS_REPLY_ARRAY)
        rc = predi_bad_reply(b, "SMEMBERS", d);
    for (i = 0; rc == PERS_OK && i < qs.rep[0]->elements; i++) {
        const redisReply *qn = qs.rep[0]->element[i];
        const redisReply *r;
        predi_req rq;
        if (req->limit != 0 && *budget == 0)
            break;
        if (qn->type != REDIS_REPLY_STRING || qn->str == NULL || !predi_name_ok(qn->str))
            continue;
        predi_req_init(&rq, b);
        c = predi_req_script(&rq, PREDI_S_CLEANUP);
        predi_arg_qkeys(&rq, c, tenant, qn->str);
        predi_args(&rq, c, now);
        predi_arg_i64(&rq, c, req->older_than_ms);
        predi_args(&rq, c, what == 1 ? "1" : "2");
        predi_args(&rq, c, req->include_dead ? "1" : "0");
        predi_argf(&rq, c, "%lu", (unsigned long)(req->limit != 0 ? *budget : 0));
        rc = predi_exec(b, &rq, 1, d);
        if (rc == PERS_OK)
            rc = predi_reply_ok(b, &rq, 0, "cleanup script", d);
        r = rc == PERS_OK ? predi_array(rq.rep[0], 1) : NULL;
        if (rc == PERS_OK && r == NULL)
            rc = predi_bad_reply(b, "cleanup", d);
        if (rc == PERS_OK) {
            size_t got = (size_t)predi_int(r->element[0]);
            *removed += got;
            if (req->limit != 0)
                *budget = got < *budget ? *budget - got : 0;
        }
        /* Tasks: drop their directory entries (when they still name this incarnation), then
           the gc records. A failure leaves the records for the next cleanup. */
        if (rc == PERS_OK && r->elements > 1) {
            predi_req fx;
            predi_cmd *f, *g;
            pers_detail fd;
            predi_req_init(&fx, b);
            f = predi_req_script(&fx, PREDI_S_DIRFIX);
            predi_arg_tkeys(&fx, f, tenant);
            predi_argf(&fx, f, "%lu", (unsigned long)(r->elements - 1));
            g = predi_req_add(&fx, -1);
            predi_args(&fx, g, "SREM");
            predi_arg_key(&fx, g, tenant, qn->str, "gc");
            for (j = 1; j < r->elements; j++) {
                const redisReply *m = r->element[j];
                const char *sp;
                char *value;
                size_t idlen;
                if (m->type != REDIS_REPLY_STRING || m->str == NULL)
                    continue;
                sp = (const char *)memchr(m->str, ' ', m->len);
                idlen = sp != NULL ? (size_t)(sp - m->str) : m->len;
                value = predi_req_mem(&fx, strlen(qn->str) + 1 + (m->len - idlen) + 1);
                if (value == NULL)
                    break;
                snprintf(value, strlen(qn->str) + 1 + (m->len - idlen) + 1, "%s %s", qn->str,
                         sp != NULL ? sp + 1 : "");
                predi_args(&fx, f, "D");
                predi_arg(&fx, f, m->str, idlen);
                predi_args(&fx, f, value);
                predi_arg(&fx, g, m->str, m->len);
                if (sp != NULL) {
                    char id[PERS_ID_MAX + 1];
                    predi_copy(id, sizeof id, m->str, idlen);
                    predi_cache_drop(b, tenant, id);
                }
            }
            /* DIRFIX before SREM, in one pipeline: the server runs them in order. */
            fd.text[0] = '\0';
            if (predi_exec(b, &fx, 1, &fd) != PERS_OK || fx.rep[0]->type == REDIS_REPLY_ERROR)
                predi_log(b, PLG_LOG_WARN,
                          "persistence redis: directory entries of removed tasks of %s/%s stay "
                          "until the next cleanup: %s",
                          tenant, qn->str, fd.text);
            predi_req_free(&fx);
        }
        predi_req_free(&rq);
    }
    predi_req_free(&qs);
    return rc;
}

static pers_result predi_cleanup(predi_backend *b, const pers_cleanup_req *req, int what,
                                 size_t *removed, pers_detail *d)
{
    predi_req tq;
    const char **names;
    size_t count, cap, i, budget;
    pers_result rc;
    if (b == NULL || req == NULL || removed == NULL || req->older_than_ms < 0 ||
        req->older_than_ms > PERS_DURATION_MAX_MS ||
        (req->tenant != NULL && !predi_name_ok(req->tenant))) {
        pers_detail_set(d, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    budget = req->limit;
    rc = predi_tenants(b, req->tenant, &tq, &names, &count, &cap, d);
    for (i = 0; rc == PERS_OK && i < count; i++) {
        if (req->limit != 0 && budget == 0)
            break;
        rc = predi_cleanup_tenant(b, names[i], req, what, removed, &budget, d);
    }
    predi_tenants_free(b, &tq, names, cap);
    return rc;
}

static pers_result predi_cleanup_tasks(void *backend, const pers_cleanup_req *req,
                                       size_t *removed, pers_detail *detail)
{
    return predi_cleanup((predi_backend *)backend, req, 1, removed, detail);
}

static pers_result predi_cleanup_results(void *backend, const pers_cleanup_req *req,
                                         size_t *removed, pers_detail *detail)
{
    return predi_cleanup((predi_backend *)backend, req, 2, removed, detail);
}

/* ---------------------------------------------------------------------------------------------
   Subscriptions
   ------------------------------------------------------------------------------------------- */

static pers_result predi_subscribe(void *backend, const pers_subscribe_req *req, size_t *created,
                                   pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32];
    size_t i, at;
    pers_result rc;
    if (b == NULL || req == NULL || created == NULL || req->queues == NULL ||
        req->queue_count == 0 || req->queue_count > PERS_QUEUES_MAX ||
        !predi_name_ok(req->tenant) || !predi_name_ok(req->worker_id) ||
        req->callback == NULL || req->callback[0] == '\0' ||
        strlen(req->callback) > PERS_ADDRESS_MAX || req->ttl_ms <= 0 ||
        req->ttl_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    for (i = 0; i < req->queue_count; i++)
        if (!predi_name_ok(req->queues[i])) {
            pers_detail_set(detail, "invalid queue name at %lu", (unsigned long)i);
            return PERS_ERR_INVALID_ARGUMENT;
        }
    predi_req_init(&rq, b);
    at = 0;
    if (!predi_tenant_known(b, req->tenant)) {
        c = predi_req_add(&rq, -1);
        predi_args(&rq, c, "SADD");
        predi_arg_key(&rq, c, NULL, NULL, "tenants");
        predi_args(&rq, c, req->tenant);
        at = 1;
    }
    c = predi_req_script(&rq, PREDI_S_SUBSCRIBE);
    predi_arg_tkeys(&rq, c, req->tenant);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    predi_arg_i64(&rq, c, req->ttl_ms);
    predi_args(&rq, c, req->worker_id);
    predi_args(&rq, c, req->callback);
    for (i = 0; i < req->queue_count; i++)
        predi_args(&rq, c, req->queues[i]);
    rc = predi_exec(b, &rq, 1, detail);
    for (i = 0; rc == PERS_OK && i < rq.count; i++)
        rc = predi_reply_ok(b, &rq, i, i < at ? "SADD" : "subscribe script", detail);
    if (rc == PERS_OK) {
        if (at)
            predi_tenant_mark(b, req->tenant);
        *created = (size_t)predi_int(rq.rep[at]);
    }
    predi_req_free(&rq);
    return rc;
}

static pers_result predi_unsubscribe(void *backend, const char *tenant, const char *worker_id,
                                     const char *queue, size_t *removed, pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32];
    pers_result rc;
    if (b == NULL || removed == NULL || !predi_name_ok(tenant) || !predi_name_ok(worker_id) ||
        (queue != NULL && !predi_name_ok(queue))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_UNSUBSCRIBE);
    predi_arg_tkeys(&rq, c, tenant);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    predi_args(&rq, c, worker_id);
    predi_args(&rq, c, queue != NULL ? queue : "");
    rc = predi_exec(b, &rq, 1, detail);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, 0, "unsubscribe script", detail);
    if (rc == PERS_OK)
        *removed = (size_t)predi_int(rq.rep[0]);
    predi_req_free(&rq);
    if (rc == PERS_OK && *removed == 0) {
        pers_detail_set(detail, "worker \"%s\" of tenant \"%s\" has no subscription%s%s",
                        worker_id, tenant, queue != NULL ? " to queue " : "",
                        queue != NULL ? queue : "");
        return PERS_ERR_NOT_FOUND;
    }
    return rc;
}

static int predi_sub_order(const void *a, const void *b)
{
    const pers_subscription *x = (const pers_subscription *)a;
    const pers_subscription *y = (const pers_subscription *)b;
    int c = strcmp(x->worker_id, y->worker_id);
    return c != 0 ? c : strcmp(x->queue, y->queue);
}

static pers_result predi_list_subs(predi_backend *b, const char *tenant, int by, const char *name,
                                   pers_subscription_list *list, pers_detail *detail)
{
    predi_req rq;
    predi_cmd *c;
    char nowbuf[32];
    const redisReply *r;
    size_t n, i;
    pers_result rc;
    memset(list, 0, sizeof *list);
    predi_req_init(&rq, b);
    c = predi_req_script(&rq, PREDI_S_LISTSUBS);
    predi_arg_tkeys(&rq, c, tenant);
    predi_args(&rq, c, predi_now(b, nowbuf, sizeof nowbuf));
    predi_args(&rq, c, by == 1 ? "1" : "2");
    predi_args(&rq, c, name);
    rc = predi_exec(b, &rq, 1, detail);
    if (rc == PERS_OK)
        rc = predi_reply_ok(b, &rq, 0, "listsubs script", detail);
    r = rc == PERS_OK ? rq.rep[0] : NULL;
    if (rc == PERS_OK && (r->type != REDIS_REPLY_ARRAY || r->elements % 6 != 0))
        rc = predi_bad_reply(b, "listsubs", detail);
    if (rc == PERS_OK && r->elements > 0) {
        n = r->elements / 6;
        list->items = (pers_subscription *)pers_alloc(&b->alloc, n * sizeof *list->items);
        if (list->items == NULL) {
            rc = PERS_ERR_NO_MEMORY;
        } else {
            memset(list->items, 0, n * sizeof *list->items);
            list->count = n;
            for (i = 0; i < n && rc == PERS_OK; i++) {
                pers_subscription *o = &list->items[i];
                redisReply **e = r->element + 6 * i;
                predi_copy(o->tenant, sizeof o->tenant, tenant, strlen(tenant));
                predi_str_field(e[0], o->worker_id, sizeof o->worker_id);
                predi_str_field(e[1], o->queue, sizeof o->queue);
                o->created_ms = predi_int(e[3]);
                o->updated_ms = predi_int(e[4]);
                o->expires_ms = predi_int(e[5]);
                o->callback = (char *)pers_copy_bytes(
                    &b->alloc, e[2]->type == REDIS_REPLY_STRING ? e[2]->str : "",
                    e[2]->type == REDIS_REPLY_STRING ? strlen(e[2]->str) : 0);
                if (o->callback == NULL)
                    rc = PERS_ERR_NO_MEMORY;
            }
            if (rc == PERS_OK)
                qsort(list->items, n, sizeof *list->items, predi_sub_order);
            else
                pers_subscription_list_clear(&b->alloc, list);
        }
        if (rc == PERS_ERR_NO_MEMORY)
            pers_detail_set(detail, "out of memory for %lu subscriptions", (unsigned long)n);
    }
    predi_req_free(&rq);
    if (rc != PERS_OK)
        memset(list, 0, sizeof *list);
    return rc;
}

static pers_result predi_list_subscriptions_by_queue(void *backend, const char *tenant,
                                                     const char *queue,
                                                     pers_subscription_list *list,
                                                     pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    if (b == NULL || list == NULL || !predi_name_ok(tenant) || !predi_name_ok(queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return predi_list_subs(b, tenant, 1, queue, list, detail);
}

static pers_result predi_list_subscriptions_by_worker(void *backend, const char *tenant,
                                                      const char *worker_id,
                                                      pers_subscription_list *list,
                                                      pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    if (b == NULL || list == NULL || !predi_name_ok(tenant) || !predi_name_ok(worker_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return predi_list_subs(b, tenant, 2, worker_id, list, detail);
}

static pers_result predi_expire_subscriptions(void *backend, const char *tenant, size_t *removed,
                                              pers_detail *detail)
{
    predi_backend *b = (predi_backend *)backend;
    predi_req tq, rq;
    const char **names;
    size_t count, cap, i;
    char nowbuf[32];
    pers_result rc;
    if (b == NULL || removed == NULL || (tenant != NULL && !predi_name_ok(tenant))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    rc = predi_tenants(b, tenant, &tq, &names, &count, &cap, detail);
    if (rc == PERS_OK && count > 0) {
        const char *now = predi_now(b, nowbuf, sizeof nowbuf);
        predi_req_init(&rq, b);
        for (i = 0; i < count; i++) {
            predi_cmd *c = predi_req_script(&rq, PREDI_S_EXPIRESUBS);
            predi_arg_tkeys(&rq, c, names[i]);
            predi_args(&rq, c, now);
        }
        rc = predi_exec(b, &rq, 1, detail);
        for (i = 0; rc == PERS_OK && i < count; i++) {
            rc = predi_reply_ok(b, &rq, i, "expiresubs script", detail);
            if (rc == PERS_OK)
                *removed += (size_t)predi_int(rq.rep[i]);
        }
        predi_req_free(&rq);
    }
    predi_tenants_free(b, &tq, names, cap);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
   Vtable, plugin descriptor, registration
   ------------------------------------------------------------------------------------------- */

/* Positional, in PERS_BACKEND_OPS order, generated from the list itself. */
static const pers_backend_vtable predi_vtable = {
    PERS_BACKEND_ABI_VERSION,
    (uint32_t)sizeof(pers_backend_vtable),
#define PREDI_VTABLE_ENTRY_(name, required, abi_added, cap, ret, params) predi_##name,
    PERS_BACKEND_OPS(PREDI_VTABLE_ENTRY_)
#undef PREDI_VTABLE_ENTRY_
};

static const char *const predi_capabilities_list[] = {
    "tasks", "results", "subscriptions", "dead-letter", "batch",
    "stats", "retention", "durable",     "shared",      "thread-safe",
};

static plg_result predi_plugin_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL; /* each store has its own pool */
    return PLG_OK;
}

static void predi_plugin_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static const plg_descriptor predi_descriptor = {
    PLG_DESCRIPTOR_ABI_VERSION,
    (uint32_t)sizeof(plg_descriptor),
    PERS_PLUGIN_TYPE,
    "redis",
    PERS_REDIS_VERSION_STRING,
    "Redis / Valkey / KVRocks backend of persistence.h (hiredis)",
    predi_capabilities_list,
    sizeof predi_capabilities_list / sizeof predi_capabilities_list[0],
    NULL,
    NULL,
    0,
    predi_schema,
    sizeof predi_schema / sizeof predi_schema[0],
    0,
    predi_plugin_init,
    NULL,
    NULL,
    predi_plugin_shutdown,
    NULL,
    { PERS_INTERFACE_ID, PERS_BACKEND_ABI_VERSION, (uint32_t)sizeof(pers_backend_vtable),
      &predi_vtable },
    NULL,
};

PREDI_DEF const pers_backend_vtable *pers_redis_vtable(void)
{
    return &predi_vtable;
}

PREDI_DEF const plg_descriptor *pers_redis_descriptor(void)
{
    return &predi_descriptor;
}

PREDI_DEF const plg_config_key *pers_redis_config_schema(size_t *count)
{
    if (count != NULL)
        *count = sizeof predi_schema / sizeof predi_schema[0];
    return predi_schema;
}

PREDI_DEF pers_result pers_redis_register(plg_registry *reg)
{
    return pers_register_backend(reg, &predi_descriptor);
}

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_REDIS_IMPLEMENTATION */

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
