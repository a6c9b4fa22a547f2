/* persistence.h - storage interface of a task-queue service, stb-style single header.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PLUGIN_REGISTRY_IMPLEMENTATION    // unless another file already does
       #define PERSISTENCE_IMPLEMENTATION
       #include "persistence.h"

   to compile the implementation there; every other file includes the header plainly. Including
   the header again in the same file, before or after the define, is harmless. persistence.h
   includes plugin_registry.h (found on the include path as "plugin_registry.h").

   The implementation needs POSIX threads (link with -pthread): mutexes, condition variables and
   thread-specific keys, which strict -std=c99 also declares, plus the __atomic builtins of gcc
   and clang and gettimeofday() for the default clock. Names: functions and types start with
   `pers_`, macros and enum values with `PERS_`.

   A backend is a plugin (plugin_registry.h) of type "persistence" whose interface, with id
   "persistence.backend", is a pers_backend_vtable. backends/memory.h is the reference backend.
   A complete minimal program:

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #define PERSISTENCE_IMPLEMENTATION
       #define PERSISTENCE_MEMORY_IMPLEMENTATION
       #include "backends/memory.h"              // includes persistence.h
       #include <stdio.h>
       #include <string.h>

       int main(void)
       {
           plg_registry *reg = NULL;
           pers_store *store = NULL;
           pers_enqueue_req req;
           pers_enqueue_res res;
           const char *queues[] = { "email" };
           pers_claim_req claim;
           pers_claim_res got;
           pers_task task;
           pers_lease lease;
           pers_completion done;
           pers_store_desc desc;
           char why[512];

           memset(&req, 0, sizeof req);          // zero means default, field by field
           memset(&claim, 0, sizeof claim);
           memset(&done, 0, sizeof done);
           memset(&desc, 0, sizeof desc);
           desc.open_message = why;              // where pers_open explains a failure
           desc.open_message_size = sizeof why;
           if (plg_registry_create(NULL, &reg) != PLG_OK || pers_memory_register(reg) != PERS_OK)
               return 1;
           // Provider and configuration by name; pers_open_env reads them from the environment.
           if (pers_open(reg, "memory", "{\"max_tasks\":100000}", &desc, &store) != PERS_OK) {
               fprintf(stderr, "%s\n", why);
               return 1;
           }
           req.tenant = "acme";
           req.queue = "email";
           req.payload = "hello";
           req.payload_len = 5;
           if (pers_enqueue(store, &req, &res) != PERS_OK)
               fprintf(stderr, "enqueue: %s\n", pers_errmsg(store));

           claim.tenant = "acme";
           claim.queues = queues;
           claim.queue_count = 1;
           claim.worker_id = "worker-1";
           claim.lease_ms = 30000;
           claim.max_tasks = 1;                  // `task` has room for one
           if (pers_claim(store, &claim, &task, &got) == PERS_OK && got.count == 1) {
               printf("%s: %.*s\n", task.id, (int)task.payload_len, (const char *)task.payload);
               lease.tenant = "acme";
               lease.task_id = task.id;
               lease.token = task.lease_token;
               done.data = "sent";
               done.data_len = 4;
               (void)pers_complete(store, &lease, &done);
               pers_task_free(store, &task);     // the payload belongs to the caller
           }
           pers_destroy(store);                  // closes, then frees the handle
           plg_registry_destroy(reg);
           return 0;
       }

   CONCEPTS
   ========
   store       pers_store *, an open connection to one backend instance, made by pers_open (by
               provider name, configuration validated against the plugin's schema),
               pers_open_env (from the environment) or pers_open_vtable (a vtable in hand, no
               registry). The store validates every argument before the backend sees it, answers
               PERS_ERR_NOT_SUPPORTED for an optional method the backend lacks, and keeps the
               per-thread error message. pers_close closes the backend and leaves a handle on
               which every call returns PERS_ERR_CLOSED; pers_destroy closes and frees it.
   backend     The vtable, pers_backend_vtable, generated from the one list PERS_BACKEND_OPS. A
               backend method receives the backend handle first and a pers_detail last, into
               which it writes its native message; it returns a pers_result.
   tenant      Every task, result and subscription belongs to one tenant; every operation names
               it. What belongs to another tenant does not exist (PERS_ERR_NOT_FOUND).
   queue       A named line of tasks within a tenant (the "command" the task carries out).

   SEMANTICS (the contract every backend follows; cite as "persistence.h S<n>")
   =========
   S1  States. scheduled -> ready -> leased -> completed | failed | dead.
       A leased task goes back to ready on abandon and on lease expiry, to scheduled on a nack
       with a retry delay (to ready without one). A dead task goes back to ready only through
       requeue_dead. completed and failed are final.
   S2  Due time. enqueue makes a task due at run_at_ms, or at now + delay_ms; nack at now + the
       retry delay; abandon, lease expiry and requeue_dead at that instant (due_ms records it). A task whose due time is <= now is ready: every operation sees it ready from
       that instant on, whether or not anything has "promoted" it yet (backends may promote
       lazily; no caller can tell the difference).
   S3  Order. claim walks its queues in the order given and takes, within a queue, the ready task
       with the HIGHEST priority number first (PERS_PRIORITY_MIN..PERS_PRIORITY_MAX, i.e.
       -32768..32767; default 0), and among equal priorities the one ENQUEUED FIRST. A task keeps
       its enqueue position for life: after a retry, an expiry or a requeue it goes back to its
       original place, ahead of tasks enqueued after it. claim fills up to max_tasks from the
       first queue, then the next, and so on; the tasks array is in that order.
   S4  Leases. Each task a claim returns carries a new lease token from a per-store counter that
       only increases (the first token is 1; 0 is never a token). The lease lasts lease_ms from
       the claim; extend_lease sets it to now + lease_ms. A lease is live while now < expiry.
   S5  Worker operations (extend_lease, abandon, nack, complete) name (tenant, task id, token):
         a. no such task in the tenant                        -> PERS_ERR_NOT_FOUND
         b. leased under this token, lease live               -> the operation is done
         c. completed or failed by a complete with this token -> complete: PERS_ERR_ALREADY_
            COMPLETED (the first result is kept, nothing changes); extend_lease, abandon,
            nack: PERS_ERR_INVALID_STATE
         d. anything else (an older token, an expired lease, a task since abandoned, nacked,
            reclaimed, dead or requeued)                     -> PERS_ERR_LEASE_LOST
       In cases a, c and d nothing changes, so a worker whose lease ran out can never overwrite
       the work of the task's next holder.
   S6  Attempts (the one place this rule is written). `attempts` counts claims that were not
       given back: a claim adds 1, abandon subtracts 1 (giving a task back is not a failure).
       A failure is a nack or a lease expiry. At a failure, a task whose attempts have reached
       max_attempts becomes dead, keeping the failure's reason; otherwise it is retried (S1).
       A failure's reason replaces last_error (a nack without a reason clears it).
       complete with an error (failed = 1) is a final failure whatever the attempts. requeue_dead
       sets attempts back to 0. max_attempts is 1..PERS_ATTEMPTS_MAX; 0 in an enqueue request
       means the store's default (pers_store_desc.default_max_attempts, default 5).
   S7  Lease expiry is a failure (S6) with reason "lease expired", at the instant of expiry and
       with no retry delay, applied lazily as in S2.
   S8  Idempotent enqueue, scoped to (tenant, queue). When a task of the same tenant and queue
       with the same idempotency key exists (in any state, until retention removes it, S14),
       enqueue changes nothing and returns that task's id with duplicate = 1. The same key in
       another queue or tenant is unrelated. In a batch, a key repeated within the batch refers
       to the first request that carried it.
   S9  Task ids are unique within a tenant. A caller-supplied id that a task of the tenant
       already has is PERS_ERR_DUPLICATE (after the idempotency check of S8). Without one, the
       store generates 32 lowercase hexadecimal digits: 16 of a random 64-bit number drawn when
       the store opens, 16 of a counter of that store. Unique per store, unique across stores
       with overwhelming probability; not ordered.
   S10 Names. tenant, queue and worker id: 1..PERS_NAME_MAX (64) characters of [A-Za-z0-9_.-],
       the first a letter or digit. Task ids and idempotency keys: 1..PERS_KEY_MAX (128)
       characters of [A-Za-z0-9_.:-]. No name can contain '|', '{', '}', '/', '#', spaces,
       quotes or control bytes, and tenant/queue/worker names no ':', so a backend may join
       names with any of those as separators, or inside a Redis hash tag, and no two (tenant,
       queue) pairs can collide. Names and keys are case-sensitive and compared bytewise ("A" and
       "a" are two tenants). Callback addresses: 1..PERS_ADDRESS_MAX (512) printable ASCII
       characters without spaces. Reasons: 0..PERS_REASON_MAX (1024) bytes of text.
   S11 Payloads and results are binary (NUL bytes allowed): a pointer and a length, 0 up to the
       store's max_payload_bytes inclusive (default 1 MiB = 1048576; the smaller of the store's
       setting and the backend's limit), else PERS_ERR_TOO_LARGE. A returned payload is
       followed by one extra NUL byte, so text payloads may be printed directly.
   S12 Completion stores the result (failed = 0) or the error (failed = 1), finishes the task as
       completed or failed and releases its lease, in one atomic step. get_result returns it
       for a completed or failed task; any other task (not finished, or dead: a dead task's
       reason is in get_task's last_error) is PERS_ERR_NOT_FOUND.
   S13 A task of another tenant is PERS_ERR_NOT_FOUND for every operation, never "forbidden".
   S14 Retention. cleanup_tasks removes finished tasks (completed and failed; dead too when
       asked) that finished at or before now - older_than_ms, with their results and
       idempotency keys (a key may then be used again). cleanup_results removes only the
       results (the task stays; get_result is then PERS_ERR_NOT_FOUND).
   S15 Subscriptions are rows keyed by (tenant, worker id, queue). subscribe upserts one row per
       queue it names (callback address, expiry = now + ttl_ms) and leaves the worker's other
       rows alone; repeating it changes only updated_ms and expires_ms. unsubscribe removes the
       worker's row for one queue, or all its rows. An expired row (expires_ms <= now) is as
       good as absent everywhere: lists never show it, subscribe counts it as created (with a
       new created_ms), unsubscribe does not count it (nothing live to remove: NOT_FOUND);
       expire_subscriptions deletes expired rows for good.
   S16 Time. Each store has one clock (pers_store_desc.clock, injectable); every "now" above is
       its reading, in milliseconds since the Unix epoch.
   S17 Statistics count the tasks of one (tenant, queue) by state, exactly, as of now (S2 and S7
       applied). An unknown queue has all counts 0.
   S18 claim with nothing ready returns PERS_OK with count 0 and next_due_ms = the earliest due
       time of the scheduled tasks in its queues, or PERS_NO_TIME (-1) if there are none. When
       it returns tasks, next_due_ms is PERS_NO_TIME.
   S19 Batches. enqueue_batch takes 1..PERS_BATCH_MAX requests that all name the SAME tenant and
       queue (otherwise PERS_ERR_INVALID_ARGUMENT; one queue is what every backend can change
       atomically, a Redis hash slot included). It is all or nothing: on any failure no request
       is applied, no idempotency key is recorded and the results are left empty.
   S20 Batch completion. complete_batch takes 1..max_batch (lease, completion) pairs, of any
       tenants and queues, and completes each exactly as complete would (S5, S12): results[i]
       receives that item's own code (PERS_OK, NOT_FOUND, LEASE_LOST, ALREADY_COMPLETED, ...),
       and one item's failure does not stop the others. Items are applied in order, so the
       same lease twice gives PERS_OK then PERS_ERR_ALREADY_COMPLETED. The call returns PERS_OK
       once every item has its code. Any other return is a failure of the batch as a whole
       (an invalid item, which is named and stops everything before the backend runs; or the
       storage failing): every results[i] is then that code, except items that had already
       been completed before the failure, which read PERS_OK. A backend with one transaction
       per batch (memory, SQLite) never leaves such items; one that works item by item
       (Redis, or the store's fallback for a backend without the method) may.

   OWNERSHIP
   =========
   Everything a call returns that has a variable size (payloads, error texts, callback
   addresses, list arrays) is allocated with the store's allocator and belongs to the caller,
   who releases it with the matching function: pers_task_free (one task) or pers_tasks_free
   (an array of count tasks, as claim fills), pers_task_list_free, pers_task_result_free,
   pers_subscription_list_free. They may be called after pers_close, not after pers_destroy.
   Fixed-size fields (ids, names) are arrays inside the structs. Nothing is returned that
   points into the store. On failure nothing needs to be freed (outputs are left empty), and
   freeing an empty (zeroed) output is harmless. The free functions zero what they free (a
   list's count and total too), so read what you need before freeing.

   ERRORS
   ======
   Every fallible call returns a pers_result (PERS_OK is 0); pers_result_string() names a code.
   The specifics (which argument and why, the backend's native message) are in
   pers_errmsg(store): the message of the calling thread's most recent failed call on that
   store, so threads never see each other's messages. Every pointer argument may be NULL: you
   get PERS_ERR_INVALID_ARGUMENT (or, for an optional output, nothing is written), never a
   crash. A failed pers_open* has no store to ask: it writes its message into
   pers_store_desc.open_message. The store answers in this order: a NULL store
   (INVALID_ARGUMENT), a closed store (CLOSED), an optional method the backend lacks
   (NOT_SUPPORTED), an invalid argument (INVALID_ARGUMENT or TOO_LARGE); only then does the
   backend run.

   THREAD SAFETY
   =============
   A store may be used from any number of threads at once: every call except pers_destroy is
   safe concurrently with every other, and the backend is responsible for the atomicity of each
   operation. pers_close waits for the calls in flight to finish, then closes the backend;
   calls that start after it return PERS_ERR_CLOSED. pers_destroy frees the handle and must not
   race with any other call on it (like free). pers_open and pers_open_env may run
   concurrently (the registry serialises plugin start-up); pers_open_env reads the environment
   with getenv, which must not race with setenv. pers_declare and the backends' register
   functions are as thread-safe as plg_declare_interface and plg_register. The pers_*_free
   functions and the helpers for backend authors touch only what they are given. Each open
   store holds one thread-specific key for its messages (POSIX promises at least 128 per
   process; glibc has 1024); pers_destroy gives it back.

   COMPILE-TIME OPTIONS (define before the implementation include)
   ====================
   PERS_MALLOC(size, ctx), PERS_FREE(ptr, size, ctx)  default allocator (malloc/free); the
                                run-time hooks in pers_store_desc.allocator take precedence
   PERS_ASSERT(cond)            internal invariant checks (default: assert); never used on input
   PERS_API                     decoration of every public function (default: extern)
   PERS_STATIC                  make every function static (one TU uses the library privately)

   ABI POLICY
   ==========
   pers_backend_vtable and every struct passed through it only ever grow at the end. A method
   is appended to PERS_BACKEND_OPS with the ABI version that adds it, together with a bump of
   PERS_BACKEND_ABI_VERSION; a field appended to a struct passed through the vtable bumps it
   too. The store calls a method only if the backend's declared ABI version includes it, its
   struct size covers it and its pointer is set. Existing fields and methods never move,
   change size or disappear within a major version (a test records every offset).

   LICENCE: see the end of the file.
*/
#ifndef PERSISTENCE_H
#define PERSISTENCE_H

#include "plugin_registry.h"

#include <stddef.h>
#include <stdint.h>

#define PERS_VERSION_MAJOR 0
#define PERS_VERSION_MINOR 1
#define PERS_VERSION_PATCH 0
#define PERS_VERSION_STRING "0.1.0"

/* ABI version of pers_backend_vtable (and of the structs passed through it). 1: the methods
   of PERS_BACKEND_OPS up to expire_subscriptions; 2: complete_batch. PERS_BACKEND_ABI_MIN is
   the oldest the store still calls. */
#define PERS_BACKEND_ABI_VERSION 2u
#define PERS_BACKEND_ABI_MIN 1u
/* ABI version of pers_open_args. 1: up to max_payload_bytes; 2: flags. */
#define PERS_OPEN_ARGS_ABI_VERSION 2u

/* The plugin type and interface id of a backend. */
#define PERS_PLUGIN_TYPE "persistence"
#define PERS_INTERFACE_ID "persistence.backend"

/* Limits of S10, S3, S6 and S11 (all inclusive). */
#define PERS_NAME_MAX 64
#define PERS_KEY_MAX 128
#define PERS_ID_MAX PERS_KEY_MAX
#define PERS_GENERATED_ID_LEN 32
#define PERS_ADDRESS_MAX 512
#define PERS_REASON_MAX 1024
#define PERS_PRIORITY_MIN (-32768)
#define PERS_PRIORITY_MAX 32767
#define PERS_ATTEMPTS_MAX 1000000u
#define PERS_DEFAULT_MAX_ATTEMPTS 5u
#define PERS_DEFAULT_MAX_PAYLOAD 1048576u
/* Longest delay, lease, ttl or age accepted: 10^13 ms, about 317 years, so that now + it never
   overflows. */
#define PERS_DURATION_MAX_MS INT64_C(10000000000000)
/* Most tasks one claim may ask for, queues one claim or subscription may name, requests one
   batch may carry and items one list may return. */
#define PERS_CLAIM_MAX 1000u
#define PERS_QUEUES_MAX 32u
#define PERS_BATCH_MAX 1000u
#define PERS_LIST_MAX 1000u
/* "no such time" in time outputs. */
#define PERS_NO_TIME INT64_C(-1)
/* Size of the backend's message buffer in pers_detail. */
#define PERS_DETAIL_SIZE 1024

#ifndef PERS_API
#if defined(PERS_STATIC)
#if defined(__GNUC__)
#define PERS_API static __attribute__((unused))
#else
#define PERS_API static
#endif
#else
#define PERS_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
   Results
   ------------------------------------------------------------------------------------------- */

/* X(name, value, description). Values are part of the ABI: append, never renumber. */
#define PERS_RESULT_LIST(X)                                                                        \
    X(PERS_OK, 0, "ok")                                                                            \
    X(PERS_ERR_NOT_FOUND, 1, "not found")                                                          \
    X(PERS_ERR_LEASE_LOST, 2, "lease lost: the token is not the task's current live lease")        \
    X(PERS_ERR_INVALID_STATE, 3, "the task's state does not allow the operation")                  \
    X(PERS_ERR_DUPLICATE, 4, "a task with this id already exists")                                 \
    X(PERS_ERR_INVALID_ARGUMENT, 5, "invalid argument")                                            \
    X(PERS_ERR_UNAVAILABLE, 6, "backend unavailable")                                              \
    X(PERS_ERR_TIMEOUT, 7, "timed out; the outcome is unknown")                                    \
    X(PERS_ERR_NO_MEMORY, 8, "out of memory")                                                      \
    X(PERS_ERR_NOT_SUPPORTED, 9, "not supported by this backend")                                  \
    X(PERS_ERR_CLOSED, 10, "store closed")                                                         \
    X(PERS_ERR_CORRUPT, 11, "stored data is corrupt")                                              \
    X(PERS_ERR_TOO_LARGE, 12, "payload larger than the limit")                                     \
    X(PERS_ERR_LIMIT, 13, "backend capacity limit reached")                                        \
    X(PERS_ERR_CONFIG, 14, "invalid configuration")                                                \
    X(PERS_ERR_NO_PROVIDER, 15, "unknown persistence provider")                                    \
    X(PERS_ERR_ABI_MISMATCH, 16, "backend vtable unusable (ABI version, size or methods)")         \
    X(PERS_ERR_ALREADY_COMPLETED, 17, "task already completed under this lease")                   \
    X(PERS_ERR_INTERNAL, 18, "internal error")

/* PLG_ENUM_BASE (plugin_registry.h): in C++ the enums have the fixed underlying type int, so a
   code from a newer backend is a valid value, reported as unknown by pers_result_string. */
typedef enum pers_result PLG_ENUM_BASE {
#define PERS_RESULT_ENUM_(name, value, text) name = value,
    PERS_RESULT_LIST(PERS_RESULT_ENUM_)
#undef PERS_RESULT_ENUM_
    PERS_RESULT_COUNT_
} pers_result;

/* A static string naming the code, e.g. "PERS_ERR_LEASE_LOST: lease lost: ...". */
PERS_API const char *pers_result_string(pers_result result);

/* The library's version, PERS_VERSION_STRING of the implementation that was compiled. */
PERS_API const char *pers_version(void);

/* ---------------------------------------------------------------------------------------------
   Data passed through the store and the vtable (part of the vtable ABI)
   ------------------------------------------------------------------------------------------- */

typedef enum pers_task_state PLG_ENUM_BASE {
    PERS_STATE_SCHEDULED = 1,
    PERS_STATE_READY = 2,
    PERS_STATE_LEASED = 3,
    PERS_STATE_COMPLETED = 4,
    PERS_STATE_FAILED = 5,
    PERS_STATE_DEAD = 6
} pers_task_state;

/* "scheduled", "ready", ...; "unknown" otherwise. */
PERS_API const char *pers_state_name(pers_task_state state);

/* Milliseconds since the Unix epoch. The default reads the wall clock (gettimeofday). */
typedef struct pers_clock {
    int64_t (*now_ms)(void *user);
    void *user;
} pers_clock;

/* The backend's account of a failure: a message (NUL-terminated, truncated to fit) and its
   native error code if it has one (sqlite result code, errno, ...). */
typedef struct pers_detail {
    int64_t native_code;
    char text[PERS_DETAIL_SIZE];
} pers_detail;

/* Capability bits (pers_caps.flags). A bit that goes with optional methods (the `cap` column of
   PERS_BACKEND_OPS) is reported by the store only when all those methods are present. */
#define PERS_CAP_BATCH (1u << 0)         /* enqueue_batch */
#define PERS_CAP_STATS (1u << 1)         /* queue_stats */
#define PERS_CAP_DEAD_LETTER (1u << 2)   /* list_dead, requeue_dead */
#define PERS_CAP_TASK_RETENTION (1u << 3) /* cleanup_tasks */
#define PERS_CAP_RESULTS (1u << 4)       /* get_result, cleanup_results */
#define PERS_CAP_SUBSCRIPTIONS (1u << 5) /* subscribe ... expire_subscriptions */
#define PERS_CAP_HEALTH (1u << 6)        /* health */
#define PERS_CAP_DURABLE (1u << 7)       /* data survives the process */
#define PERS_CAP_SHARED (1u << 8)        /* several processes may open the same data */
#define PERS_CAP_COMPLETE_BATCH (1u << 9) /* complete_batch: a batch of completions in one
                                             transaction or round trip (S20) */

typedef struct pers_caps {
    uint64_t flags;             /* PERS_CAP_* */
    uint64_t max_payload_bytes; /* the backend's own limit; 0: none */
    uint32_t max_batch;         /* the backend's largest batch; 0: PERS_BATCH_MAX */
} pers_caps;

/* What a backend's open_store receives besides its configuration. The store always fills every
   field; a backend reads a field only when struct_size covers it. */
typedef struct pers_open_args {
    uint32_t abi_version;       /* PERS_OPEN_ARGS_ABI_VERSION */
    uint32_t struct_size;       /* sizeof(pers_open_args) */
    pers_clock clock;           /* the store's clock: use it for every "now" */
    plg_allocator allocator;    /* allocate everything handed back to the caller with it */
    plg_logger logger;          /* may have a NULL log_fn (silent) */
    void *plugin_instance;      /* what the plugin's init stored (NULL without a registry) */
    uint64_t max_payload_bytes; /* the store's limit, informative */
    /* ABI 2 */
    uint32_t flags;             /* PERS_OPEN_* */
} pers_open_args;

/* pers_open_args.flags. PERS_OPEN_VALIDATED: every call will come through a pers_store, which
   checks each argument before the backend sees it (NULLs, S10 names, ranges, S11 sizes, token
   0), so the backend may skip those checks and do only its own (its state, its limits). A
   backend opened by a direct call of open_store without it must check everything itself. */
#define PERS_OPEN_VALIDATED (1u << 0)

typedef struct pers_enqueue_req {
    const char *tenant;          /* required (S10) */
    const char *queue;           /* required (S10) */
    const void *payload;         /* payload_len bytes; may be NULL when payload_len is 0 */
    size_t payload_len;          /* 0..max_payload_bytes (S11) */
    int32_t priority;            /* PERS_PRIORITY_MIN..MAX, higher is claimed first; default 0 */
    int64_t delay_ms;            /* 0..PERS_DURATION_MAX_MS: due at now + delay_ms (S2) */
    int64_t run_at_ms;           /* > 0: due at this time instead; not together with delay_ms */
    uint32_t max_attempts;       /* 0: the store's default (S6) */
    const char *idempotency_key; /* NULL: none (S8) */
    const char *task_id;         /* NULL: generated (S9). The store always passes one on. */
} pers_enqueue_req;

typedef struct pers_enqueue_res {
    char task_id[PERS_ID_MAX + 1];
    int duplicate;               /* 1: an existing task's id (S8), nothing was enqueued */
} pers_enqueue_res;

typedef struct pers_claim_req {
    const char *tenant;
    const char *const *queues;   /* 1..PERS_QUEUES_MAX names, in the order to try them (S3) */
    size_t queue_count;
    const char *worker_id;       /* recorded on the task */
    int64_t lease_ms;            /* 1..PERS_DURATION_MAX_MS */
    size_t max_tasks;            /* 1..PERS_CLAIM_MAX; the tasks array holds this many */
} pers_claim_req;

typedef struct pers_claim_res {
    size_t count;                /* tasks written to the array */
    int64_t next_due_ms;         /* S18 */
} pers_claim_res;

/* A task as returned by claim, get_task and list_dead. Release with pers_task_free. */
typedef struct pers_task {
    char id[PERS_ID_MAX + 1];
    char tenant[PERS_NAME_MAX + 1];
    char queue[PERS_NAME_MAX + 1];
    char worker_id[PERS_NAME_MAX + 1];            /* last claimer, "" if never claimed */
    char idempotency_key[PERS_KEY_MAX + 1];       /* "" if none */
    pers_task_state state;
    int32_t priority;
    uint32_t attempts;                            /* S6 */
    uint32_t max_attempts;
    uint64_t lease_token;      /* claim: the new token; get_task and lists: always 0 */
    int64_t created_ms;
    int64_t due_ms;            /* when it became or becomes ready */
    int64_t lease_expires_ms;  /* while leased, else 0 */
    int64_t finished_ms;       /* completed, failed or dead at; else 0 */
    void *payload;             /* owned: payload_len bytes and a NUL; never NULL when filled */
    size_t payload_len;
    char *last_error;          /* owned: the last failure's reason, NULL if none */
} pers_task;

/* Identifies a lease for the worker operations (S5). */
typedef struct pers_lease {
    const char *tenant;
    const char *task_id;
    uint64_t token;
} pers_lease;

typedef struct pers_completion {
    int failed;         /* 0: completed, data is the result; 1: failed for good, data the error */
    const void *data;   /* data_len bytes, binary (S11); may be NULL when data_len is 0 */
    size_t data_len;
} pers_completion;

/* A stored result (S12). Release with pers_task_result_free. */
typedef struct pers_task_result {
    char task_id[PERS_ID_MAX + 1];
    char tenant[PERS_NAME_MAX + 1];
    char queue[PERS_NAME_MAX + 1];
    pers_task_state state;     /* PERS_STATE_COMPLETED or PERS_STATE_FAILED */
    uint32_t attempts;
    int64_t finished_ms;
    void *data;                /* owned: data_len bytes and a NUL; never NULL when filled */
    size_t data_len;
} pers_task_result;

typedef struct pers_stats {
    uint64_t scheduled, ready, leased, completed, failed, dead;
} pers_stats;

typedef struct pers_list_req {
    const char *tenant;
    const char *queue;
    size_t offset;             /* skip this many */
    size_t limit;              /* 0: PERS_LIST_MAX; at most PERS_LIST_MAX */
} pers_list_req;

/* items: exactly count tasks, allocated with count * sizeof(pers_task) bytes (NULL when 0). */
typedef struct pers_task_list {
    pers_task *items;
    size_t count;
    size_t total;              /* how many there are in all (without offset and limit) */
} pers_task_list;

typedef struct pers_cleanup_req {
    const char *tenant;        /* NULL: every tenant */
    int64_t older_than_ms;     /* 0..PERS_DURATION_MAX_MS: finished at or before now - this */
    int include_dead;          /* cleanup_tasks: dead tasks too (default 0: they stay) */
    size_t limit;              /* most to remove; 0: no limit */
} pers_cleanup_req;

typedef struct pers_subscribe_req {
    const char *tenant;
    const char *worker_id;
    const char *const *queues; /* 1..PERS_QUEUES_MAX names */
    size_t queue_count;
    const char *callback;      /* address the service calls, e.g. "http://10.0.0.7:8080/push" */
    int64_t ttl_ms;            /* 1..PERS_DURATION_MAX_MS: expires at now + ttl_ms */
} pers_subscribe_req;

typedef struct pers_subscription {
    char tenant[PERS_NAME_MAX + 1];
    char worker_id[PERS_NAME_MAX + 1];
    char queue[PERS_NAME_MAX + 1];
    char *callback;            /* owned, NUL-terminated */
    int64_t created_ms;
    int64_t updated_ms;
    int64_t expires_ms;
} pers_subscription;

/* items: exactly count rows (count * sizeof(pers_subscription) bytes; NULL when 0), ordered by
   (worker id, queue) bytewise. */
typedef struct pers_subscription_list {
    pers_subscription *items;
    size_t count;
} pers_subscription_list;

/* ---------------------------------------------------------------------------------------------
   The backend vtable
   ------------------------------------------------------------------------------------------- */

/* Every operation of a backend, ONCE. A code generator parses this list: keep one X(...) line
   per operation, in this shape:

       X(name, required, abi_added, cap, return_type, (parameters))

   required   1: every backend implements it; 0: optional, the store answers
              PERS_ERR_NOT_SUPPORTED when it is missing
   abi_added  the PERS_BACKEND_ABI_VERSION that introduced it (append new ones at the end)
   cap        the PERS_CAP_* bit it belongs to, 0 for none

   Conventions: the backend handle comes first and a pers_detail last; the store validates every
   argument first (S10, S11, ranges, non-NULL) so a backend may rely on it, and passes non-NULL
   pointers for every output. Outputs are written only on PERS_OK, except that the store zeroes
   them beforehand. A backend returns only codes from PERS_RESULT_LIST and translates its
   native errors (timeouts are PERS_ERR_TIMEOUT: the outcome is unknown).

   open_store         config: validated against the plugin's schema (may be NULL: every
                      default); the config and args stay valid until close_store returns
   close_store        called once, after every call in flight has returned
   capabilities       what the backend offers (the store asks once, at open)
   health             PERS_OK when it can serve requests, else a code and a message
   enqueue            S2, S8, S9; res receives the id and the duplicate flag
   enqueue_batch      S19: count requests of one (tenant, queue), all applied or none; res[i]
                      for request i
   claim              S3, S4, S6, S18: up to req->max_tasks tasks into tasks[], res->count
   extend_lease       S5; *expires_ms receives the new expiry
   abandon            S5, S6: back to ready, the attempt is given back
   nack               S5, S6: retry after retry_delay_ms or dead; *state receives the new state
   complete           S5, S12
   get_task           the task as of now; lease_token is 0
   queue_stats        S17
   list_dead          dead tasks of a queue, in the order they died
   requeue_dead       a dead task back to ready, attempts 0; not dead: PERS_ERR_INVALID_STATE
   cleanup_tasks      S14; *removed receives the count
   get_result         S12
   cleanup_results    S14; *removed receives the count
   subscribe          S15; *created receives how many rows are new
   unsubscribe        S15; queue NULL: every row of the worker; *removed receives the count;
                      no row at all: PERS_ERR_NOT_FOUND
   list_subscriptions_by_queue, list_subscriptions_by_worker    S15, live rows only
   expire_subscriptions    S15; tenant NULL: every tenant; *removed receives the count
   complete_batch     S20: count items, each decided as complete would, results[i] its code
                      (the store fills every results[i] with PERS_ERR_INTERNAL first);
                      completions may be NULL: every item completed with an empty result */
#define PERS_BACKEND_OPS(X)                                                                        \
    X(open_store, 1, 1, 0, pers_result, (const plg_config *config, const pers_open_args *args, void **backend, pers_detail *detail))\
    X(close_store, 1, 1, 0, void, (void *backend)) \
    X(capabilities, 1, 1, 0, pers_result, (void *backend, pers_caps *caps, pers_detail *detail)) \
    X(health, 0, 1, PERS_CAP_HEALTH, pers_result, (void *backend, pers_detail *detail)) \
    X(enqueue, 1, 1, 0, pers_result, (void *backend, const pers_enqueue_req *req, pers_enqueue_res *res, pers_detail *detail))\
    X(enqueue_batch, 0, 1, PERS_CAP_BATCH, pers_result, (void *backend, const pers_enqueue_req *reqs, size_t count, pers_enqueue_res *res, pers_detail *detail))\
    X(claim, 1, 1, 0, pers_result, (void *backend, const pers_claim_req *req, pers_task *tasks, pers_claim_res *res, pers_detail *detail))\
    X(extend_lease, 1, 1, 0, pers_result, (void *backend, const pers_lease *lease, int64_t lease_ms, int64_t *expires_ms, pers_detail *detail))\
    X(abandon, 1, 1, 0, pers_result, (void *backend, const pers_lease *lease, pers_detail *detail))\
    X(nack, 1, 1, 0, pers_result, (void *backend, const pers_lease *lease, int64_t retry_delay_ms, const char *reason, pers_task_state *state, pers_detail *detail))\
    X(complete, 1, 1, 0, pers_result, (void *backend, const pers_lease *lease, const pers_completion *completion, pers_detail *detail))\
    X(get_task, 1, 1, 0, pers_result, (void *backend, const char *tenant, const char *task_id, pers_task *task, pers_detail *detail))\
    X(queue_stats, 0, 1, PERS_CAP_STATS, pers_result, (void *backend, const char *tenant, const char *queue, pers_stats *stats, pers_detail *detail))\
    X(list_dead, 0, 1, PERS_CAP_DEAD_LETTER, pers_result, (void *backend, const pers_list_req *req, pers_task_list *list, pers_detail *detail))\
    X(requeue_dead, 0, 1, PERS_CAP_DEAD_LETTER, pers_result, (void *backend, const char *tenant, const char *task_id, pers_detail *detail))\
    X(cleanup_tasks, 0, 1, PERS_CAP_TASK_RETENTION, pers_result, (void *backend, const pers_cleanup_req *req, size_t *removed, pers_detail *detail))\
    X(get_result, 0, 1, PERS_CAP_RESULTS, pers_result, (void *backend, const char *tenant, const char *task_id, pers_task_result *result, pers_detail *detail))\
    X(cleanup_results, 0, 1, PERS_CAP_RESULTS, pers_result, (void *backend, const pers_cleanup_req *req, size_t *removed, pers_detail *detail))\
    X(subscribe, 0, 1, PERS_CAP_SUBSCRIPTIONS, pers_result, (void *backend, const pers_subscribe_req *req, size_t *created, pers_detail *detail))\
    X(unsubscribe, 0, 1, PERS_CAP_SUBSCRIPTIONS, pers_result, (void *backend, const char *tenant, const char *worker_id, const char *queue, size_t *removed, pers_detail *detail))\
    X(list_subscriptions_by_queue, 0, 1, PERS_CAP_SUBSCRIPTIONS, pers_result, (void *backend, const char *tenant, const char *queue, pers_subscription_list *list, pers_detail *detail))\
    X(list_subscriptions_by_worker, 0, 1, PERS_CAP_SUBSCRIPTIONS, pers_result, (void *backend, const char *tenant, const char *worker_id, pers_subscription_list *list, pers_detail *detail))\
    X(expire_subscriptions, 0, 1, PERS_CAP_SUBSCRIPTIONS, pers_result, (void *backend, const char *tenant, size_t *removed, pers_detail *detail))\
    X(complete_batch, 0, 2, PERS_CAP_COMPLETE_BATCH, pers_result, (void *backend, const pers_lease *leases, const pers_completion *completions, size_t count, pers_result *results, pers_detail *detail))

typedef struct pers_backend_vtable {
    uint32_t abi_version; /* PERS_BACKEND_ABI_VERSION the backend was compiled against */
    uint32_t struct_size; /* sizeof(pers_backend_vtable) the backend was compiled against */
#define PERS_VTABLE_MEMBER_(name, required, abi_added, cap, ret, params) ret(*name) params;
    PERS_BACKEND_OPS(PERS_VTABLE_MEMBER_)
#undef PERS_VTABLE_MEMBER_
} pers_backend_vtable;

/* ---------------------------------------------------------------------------------------------
   Registry integration and opening a store
   ------------------------------------------------------------------------------------------- */

/* Declares the "persistence.backend" interface to reg (plg_declare_interface): the struct size
   of each ABI version and a check that names every missing required method. Call it before
   registering backends (pers_memory_register does); a second call is harmless. */
PERS_API pers_result pers_declare(plg_registry *reg);

/* What a backend's register function does: pers_declare, then plg_register of its descriptor
   (type PERS_PLUGIN_TYPE, interface PERS_INTERFACE_ID), the registry's answer translated:
   PLG_ERR_DUPLICATE -> PERS_ERR_DUPLICATE, an ABI or vtable-size problem -> PERS_ERR_ABI_MISMATCH,
   a bad descriptor or missing method -> PERS_ERR_INVALID_ARGUMENT, PLG_ERR_LIMIT ->
   PERS_ERR_LIMIT. The registry's message (plg_errmsg) says what was wrong. */
PERS_API pers_result pers_register_backend(plg_registry *reg, const plg_descriptor *descriptor);

/* The same checks on a vtable in hand: ABI version within PERS_BACKEND_ABI_MIN..VERSION, struct
   size, required methods. Writes the problem into message (may be NULL). */
PERS_API pers_result pers_check_vtable(const pers_backend_vtable *vtable, char *message,
                                       size_t message_size);

typedef struct pers_store_desc {
    pers_clock clock;              /* default: the wall clock (gettimeofday) */
    plg_allocator allocator;       /* default: PERS_MALLOC / PERS_FREE */
    plg_logger logger;             /* default: silent */
    uint64_t max_payload_bytes;    /* default PERS_DEFAULT_MAX_PAYLOAD (1 MiB); lowered to the
                                      backend's own limit if that is smaller */
    uint32_t default_max_attempts; /* default PERS_DEFAULT_MAX_ATTEMPTS (5) */
    char *open_message;            /* optional: the pers_open* calls write why they failed here
                                      ("" on success), NUL-terminated, truncated to the size */
    size_t open_message_size;
} pers_store_desc;

typedef struct pers_store pers_store;

/* Opens a store on the plugin of type "persistence" named provider in reg. config_json (a JSON
   object text; NULL or "" mean {}) is validated against the plugin's schema first, every
   problem named with its key (PERS_ERR_CONFIG). The plugin is initialised (with this
   configuration) and started if it is not yet. An unknown provider is PERS_ERR_NO_PROVIDER and
   the message lists the registered ones. desc may be NULL (all defaults). On failure *out is
   NULL and the reason is in desc->open_message when given (there is no store to ask). */
PERS_API pers_result pers_open(plg_registry *reg, const char *provider, const char *config_json,
                               const pers_store_desc *desc, pers_store **out);
/* pers_open with PERSISTENCE_PROVIDER and PERSISTENCE_CONFIG from the environment. With no
   provider set (absent or empty), the embedded default: "sqlite" when a plugin by that name is
   registered, else "memory". When the provider is "sqlite" (set or by default) and
   PERSISTENCE_CONFIG is not set, its database is the file persistence.sqlite in
   $PERSISTENCE_DIR, else $TMPDIR, else /tmp. */
PERS_API pers_result pers_open_env(plg_registry *reg, const pers_store_desc *desc,
                                   pers_store **out);
/* Opens a store straight on a vtable, without a registry (tests, benchmarks, embedding).
   config may be NULL (the backend's defaults) and must stay valid until pers_destroy. */
PERS_API pers_result pers_open_vtable(const pers_backend_vtable *vtable, const plg_config *config,
                                      const pers_store_desc *desc, pers_store **out);

/* Closes the backend after the calls in flight return; later calls return PERS_ERR_CLOSED.
   Closing twice is harmless. NULL: PERS_ERR_INVALID_ARGUMENT. */
PERS_API pers_result pers_close(pers_store *store);
/* pers_close, then frees the handle. NULL is a no-op. */
PERS_API void pers_destroy(pers_store *store);
/* The calling thread's message for its last failed call on store ("" if none; a static text for
   a NULL store). Valid until this thread's next call on store. */
PERS_API const char *pers_errmsg(const pers_store *store);
/* The setup in force, every default filled in (max_payload_bytes as lowered by the backend).
   A zeroed struct for NULL. */
PERS_API pers_store_desc pers_store_resolved(const pers_store *store);
/* The provider name ("" when opened with pers_open_vtable or for NULL). */
PERS_API const char *pers_store_provider(const pers_store *store);

/* ---------------------------------------------------------------------------------------------
   Store operations (the semantics are S1..S20 above)
   ------------------------------------------------------------------------------------------- */

PERS_API pers_result pers_capabilities(pers_store *store, pers_caps *out);
PERS_API pers_result pers_health(pers_store *store);

/* res may be NULL. */
PERS_API pers_result pers_enqueue(pers_store *store, const pers_enqueue_req *req,
                                  pers_enqueue_res *res);
/* 1..PERS_BATCH_MAX requests (and at most the backend's max_batch); res holds count entries
   (may be NULL). All or nothing: on failure the message names the request's index. */
PERS_API pers_result pers_enqueue_batch(pers_store *store, const pers_enqueue_req *reqs,
                                        size_t count, pers_enqueue_res *res);
/* tasks has room for req->max_tasks; res receives the count. Release the tasks with
   pers_tasks_free(store, tasks, res->count). */
PERS_API pers_result pers_claim(pers_store *store, const pers_claim_req *req, pers_task *tasks,
                                pers_claim_res *res);
/* expires_ms may be NULL. */
PERS_API pers_result pers_extend_lease(pers_store *store, const pers_lease *lease,
                                       int64_t lease_ms, int64_t *expires_ms);
PERS_API pers_result pers_abandon(pers_store *store, const pers_lease *lease);
/* retry_delay_ms 0..PERS_DURATION_MAX_MS; reason may be NULL; state (may be NULL) receives
   PERS_STATE_READY, PERS_STATE_SCHEDULED or PERS_STATE_DEAD. */
PERS_API pers_result pers_nack(pers_store *store, const pers_lease *lease, int64_t retry_delay_ms,
                               const char *reason, pers_task_state *state);
/* completion NULL means completed with an empty result. */
PERS_API pers_result pers_complete(pers_store *store, const pers_lease *lease,
                                   const pers_completion *completion);
/* S20: count (1..max_batch) completions, each exactly as pers_complete, with its own code in
   results[i] (required, count entries). completions may be NULL (every task completed with an
   empty result). Works with every backend: without PERS_CAP_COMPLETE_BATCH the store completes
   the items one by one. */
PERS_API pers_result pers_complete_batch(pers_store *store, const pers_lease *leases,
                                         const pers_completion *completions, size_t count,
                                         pers_result *results);
PERS_API pers_result pers_get_task(pers_store *store, const char *tenant, const char *task_id,
                                   pers_task *out);
PERS_API pers_result pers_queue_stats(pers_store *store, const char *tenant, const char *queue,
                                      pers_stats *out);
PERS_API pers_result pers_list_dead(pers_store *store, const pers_list_req *req,
                                    pers_task_list *out);
PERS_API pers_result pers_requeue_dead(pers_store *store, const char *tenant,
                                       const char *task_id);
/* removed may be NULL. */
PERS_API pers_result pers_cleanup_tasks(pers_store *store, const pers_cleanup_req *req,
                                        size_t *removed);
PERS_API pers_result pers_get_result(pers_store *store, const char *tenant, const char *task_id,
                                     pers_task_result *out);
PERS_API pers_result pers_cleanup_results(pers_store *store, const pers_cleanup_req *req,
                                          size_t *removed);
/* created may be NULL. */
PERS_API pers_result pers_subscribe(pers_store *store, const pers_subscribe_req *req,
                                    size_t *created);
/* queue NULL: every row of the worker. removed may be NULL. */
PERS_API pers_result pers_unsubscribe(pers_store *store, const char *tenant,
                                      const char *worker_id, const char *queue, size_t *removed);
PERS_API pers_result pers_list_subscriptions_by_queue(pers_store *store, const char *tenant,
                                                      const char *queue,
                                                      pers_subscription_list *out);
PERS_API pers_result pers_list_subscriptions_by_worker(pers_store *store, const char *tenant,
                                                       const char *worker_id,
                                                       pers_subscription_list *out);
/* tenant NULL: every tenant. removed may be NULL. */
PERS_API pers_result pers_expire_subscriptions(pers_store *store, const char *tenant,
                                               size_t *removed);

/* Releasing what the calls return (see OWNERSHIP). NULL arguments are no-ops. */
PERS_API void pers_task_free(pers_store *store, pers_task *task);
PERS_API void pers_tasks_free(pers_store *store, pers_task *tasks, size_t count);
PERS_API void pers_task_list_free(pers_store *store, pers_task_list *list);
PERS_API void pers_task_result_free(pers_store *store, pers_task_result *result);
PERS_API void pers_subscription_list_free(pers_store *store, pers_subscription_list *list);

/* ---------------------------------------------------------------------------------------------
   Helpers for backend authors (and for callers of a vtable without a store)
   ------------------------------------------------------------------------------------------- */

/* Allocation through an allocator as found in pers_open_args (NULL or one without functions:
   PERS_MALLOC / PERS_FREE). size 0 allocates 1 byte; free takes the size that was asked. */
PERS_API void *pers_alloc(const plg_allocator *allocator, size_t size);
PERS_API void pers_free(const plg_allocator *allocator, void *ptr, size_t size);
/* Copies len bytes plus a terminating NUL (the layout of S11); NULL if memory ran out. */
PERS_API void *pers_copy_bytes(const plg_allocator *allocator, const void *data, size_t len);
/* Frees the owned parts of returned structs, as allocated by the conventions above: payload and
   data (len + 1 bytes), last_error and callback (strlen + 1), list arrays (count * size). */
PERS_API void pers_task_clear(const plg_allocator *allocator, pers_task *task);
PERS_API void pers_task_list_clear(const plg_allocator *allocator, pers_task_list *list);
PERS_API void pers_task_result_clear(const plg_allocator *allocator, pers_task_result *result);
PERS_API void pers_subscription_list_clear(const plg_allocator *allocator,
                                           pers_subscription_list *list);
/* True when member lies within the first `size` bytes of a struct, i.e. a struct whose
   struct_size field says `size` has it (ABI policy: read a field only when this holds). */
#define PERS_FIELD_FITS(type, member, size)                                                        \
    (offsetof(type, member) + sizeof(((type *)0)->member) <= (size_t)(size))
/* Writes a message into a detail (may be NULL), like snprintf, truncating. */
PERS_API void pers_detail_set(pers_detail *detail, const char *fmt, ...) PLG_PRINTF(2, 3);
/* The wall clock in milliseconds since the epoch (the default clock; user is ignored). */
PERS_API int64_t pers_wall_clock_ms(void *user);
/* Name checks of S10: 0 when valid, else -1 with the reason written into why (may be NULL). */
PERS_API int pers_check_name(const char *name, char *why, size_t why_size);
PERS_API int pers_check_key(const char *key, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PERSISTENCE_IMPLEMENTATION) && !defined(PERSISTENCE_IMPLEMENTED)
#define PERSISTENCE_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "plugin_registry.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#ifndef PERS_MALLOC
#define PERS_MALLOC(size, ctx) ((void)(ctx), malloc(size))
#define PERS_FREE(ptr, size, ctx) ((void)(ctx), (void)(size), free(ptr))
#endif
#ifndef PERS_ASSERT
#include <assert.h>
#define PERS_ASSERT(cond) assert(cond)
#endif

/* Definitions of public functions: static in PERS_STATIC mode, external otherwise. */
#if defined(PERS_STATIC)
#define PERSI_DEF static
#else
#define PERSI_DEF
#endif

/* Internal names start with persi_ so they cannot clash with the including file's statics. */
#define PERSI_ERRMSG_SIZE 2048

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
   Small helpers
   ------------------------------------------------------------------------------------------- */

PERSI_DEF const char *pers_result_string(pers_result result)
{
    switch (result) {
#define PERSI_RESULT_CASE_(name, value, text)                                                      \
    case name:                                                                                     \
        return #name ": " text;
        PERS_RESULT_LIST(PERSI_RESULT_CASE_)
#undef PERSI_RESULT_CASE_
    default:
        break;
    }
    return "PERS_ERR_?: unknown result code";
}

PERSI_DEF const char *pers_version(void)
{
    return PERS_VERSION_STRING;
}

PERSI_DEF const char *pers_state_name(pers_task_state state)
{
    switch (state) {
    case PERS_STATE_SCHEDULED:
        return "scheduled";
    case PERS_STATE_READY:
        return "ready";
    case PERS_STATE_LEASED:
        return "leased";
    case PERS_STATE_COMPLETED:
        return "completed";
    case PERS_STATE_FAILED:
        return "failed";
    case PERS_STATE_DEAD:
        return "dead";
    default:
        break;
    }
    return "unknown";
}

PERSI_DEF void *pers_alloc(const plg_allocator *allocator, size_t size)
{
    if (size == 0)
        size = 1;
    if (allocator != NULL && allocator->alloc_fn != NULL && allocator->free_fn != NULL)
        return allocator->alloc_fn(size, allocator->user);
    return PERS_MALLOC(size, NULL);
}

PERSI_DEF void pers_free(const plg_allocator *allocator, void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
    if (size == 0)
        size = 1;
    if (allocator != NULL && allocator->alloc_fn != NULL && allocator->free_fn != NULL)
        allocator->free_fn(ptr, size, allocator->user);
    else
        PERS_FREE(ptr, size, NULL);
}

PERSI_DEF void *pers_copy_bytes(const plg_allocator *allocator, const void *data, size_t len)
{
    char *copy;
    if (len == (size_t)-1)
        return NULL;
    copy = (char *)pers_alloc(allocator, len + 1);
    if (copy == NULL)
        return NULL;
    if (len > 0 && data != NULL)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

PERSI_DEF void pers_task_clear(const plg_allocator *allocator, pers_task *task)
{
    if (task == NULL)
        return;
    if (task->payload != NULL)
        pers_free(allocator, task->payload, task->payload_len + 1);
    if (task->last_error != NULL)
        pers_free(allocator, task->last_error, strlen(task->last_error) + 1);
    task->payload = NULL;
    task->payload_len = 0;
    task->last_error = NULL;
}

PERSI_DEF void pers_task_list_clear(const plg_allocator *allocator, pers_task_list *list)
{
    size_t i;
    if (list == NULL)
        return;
    if (list->items != NULL) {
        for (i = 0; i < list->count; i++)
            pers_task_clear(allocator, &list->items[i]);
        pers_free(allocator, list->items, list->count * sizeof(pers_task));
    }
    list->items = NULL;
    list->count = 0;
    list->total = 0;
}

PERSI_DEF void pers_task_result_clear(const plg_allocator *allocator, pers_task_result *result)
{
    if (result == NULL)
        return;
    if (result->data != NULL)
        pers_free(allocator, result->data, result->data_len + 1);
    result->data = NULL;
    result->data_len = 0;
}

PERSI_DEF void pers_subscription_list_clear(const plg_allocator *allocator,
                                            pers_subscription_list *list)
{
    size_t i;
    if (list == NULL)
        return;
    if (list->items != NULL) {
        for (i = 0; i < list->count; i++) {
            if (list->items[i].callback != NULL)
                pers_free(allocator, list->items[i].callback,
                          strlen(list->items[i].callback) + 1);
            list->items[i].callback = NULL;
        }
        pers_free(allocator, list->items, list->count * sizeof(pers_subscription));
    }
    list->items = NULL;
    list->count = 0;
}

/* printf into a fixed buffer, always NUL-terminated, never overflowing. */
static void persi_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (buf == NULL || size == 0)
        return;
    if (vsnprintf(buf, size, fmt, ap) < 0)
        buf[0] = '\0';
}

static void persi_format(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void persi_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    persi_vformat(buf, size, fmt, ap);
    va_end(ap);
}

static void persi_append(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void persi_append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used;
    va_list ap;
    if (buf == NULL || size == 0)
        return;
    used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    persi_vformat(buf + used, size - used, fmt, ap);
    va_end(ap);
}

PERSI_DEF void pers_detail_set(pers_detail *detail, const char *fmt, ...)
{
    va_list ap;
    if (detail == NULL || fmt == NULL)
        return;
    va_start(ap, fmt);
    persi_vformat(detail->text, sizeof detail->text, fmt, ap);
    va_end(ap);
}

PERSI_DEF int64_t pers_wall_clock_ms(void *user)
{
    struct timeval tv;
    (void)user;
    if (gettimeofday(&tv, NULL) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000 + (int64_t)tv.tv_usec / 1000;
}

/* A printable, bounded rendering of a caller's string for messages: at most 48 characters,
   anything outside printable ASCII (and quotes and backslashes) as '?'. */
static const char *persi_preview(const char *s, char *buf, size_t size)
{
    size_t i, n = 0;
    if (s == NULL)
        return "(null)";
    for (i = 0; s[i] != '\0' && n + 4 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 48) {
            buf[n++] = '.';
            buf[n++] = '.';
            buf[n++] = '.';
            break;
        }
        buf[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    buf[n] = '\0';
    return buf;
}

static int persi_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The character rules of S10. colon: ':' allowed too (keys); first_alnum: the first must be a
   letter or digit (names). */
/* Character classes of S10 for the one-pass check every call makes: 1 letter or digit,
   2 '_' '.' '-', 4 ':'. */
static const unsigned char persi_char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/* The common case, valid, in one pass and without formatting anything. NUL has class 0, so the
   scan stops at the end of the string without a separate test; it is unrolled by four because
   every call of every operation checks two to four names this way. */
static int persi_chars_ok(const char *s, size_t max, int colon, int first_alnum)
{
    const unsigned char *p = (const unsigned char *)s, *q;
    const unsigned char *cls = persi_char_class;
    unsigned allowed = 1u | 2u | (colon ? 4u : 0u);
    if (p == NULL || (first_alnum ? !(cls[*p] & 1u) : *p == 0))
        return 0;
    for (q = p;; q += 4) {
        if (!(cls[q[0]] & allowed))
            break;
        if (!(cls[q[1]] & allowed)) {
            q += 1;
            break;
        }
        if (!(cls[q[2]] & allowed)) {
            q += 2;
            break;
        }
        if (!(cls[q[3]] & allowed)) {
            q += 3;
            break;
        }
        if ((size_t)(q - p) > max)
            return 0; /* long runs of valid characters stop here, not at the NUL */
    }
    return *q == 0 && (size_t)(q - p) <= max;
}

/* Returns 0 for a valid name; otherwise writes why (the slow path only runs on bad input). */
static int persi_check_chars(const char *s, size_t max, int colon, int first_alnum, char *why,
                             size_t why_size)
{
    size_t i, len;
    if (persi_chars_ok(s, max, colon, first_alnum))
        return 0;
    if (s == NULL) {
        persi_format(why, why_size, "is missing (NULL)");
        return -1;
    }
    len = strlen(s);
    if (len == 0) {
        persi_format(why, why_size, "is empty");
        return -1;
    }
    if (len > max) {
        persi_format(why, why_size, "is %lu characters long, more than the %lu allowed",
                     (unsigned long)len, (unsigned long)max);
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (persi_is_alnum(c))
            continue;
        if (i == 0 && first_alnum) {
            persi_format(why, why_size, "must start with a letter or digit");
            return -1;
        }
        if (c == '_' || c == '.' || c == '-' || (colon && c == ':'))
            continue;
        if (c >= 0x20 && c < 0x7f)
            persi_format(why, why_size,
                         "contains '%c' at position %lu; allowed are letters, digits, '_', '.', "
                         "'-'%s",
                         (char)c, (unsigned long)i, colon ? " and ':'" : "");
        else
            persi_format(why, why_size,
                         "contains byte 0x%02x at position %lu; allowed are letters, digits, "
                         "'_', '.', '-'%s",
                         (unsigned)c, (unsigned long)i, colon ? " and ':'" : "");
        return -1;
    }
    return 0;
}

PERSI_DEF int pers_check_name(const char *name, char *why, size_t why_size)
{
    return persi_check_chars(name, PERS_NAME_MAX, 0, 1, why, why_size);
}

PERSI_DEF int pers_check_key(const char *key, char *why, size_t why_size)
{
    return persi_check_chars(key, PERS_KEY_MAX, 1, 0, why, why_size);
}

/* S10 callback addresses: printable ASCII without spaces. */
static int persi_check_address(const char *s, char *why, size_t why_size)
{
    size_t i, len;
    if (s == NULL) {
        persi_format(why, why_size, "is missing (NULL)");
        return -1;
    }
    len = strlen(s);
    if (len == 0) {
        persi_format(why, why_size, "is empty");
        return -1;
    }
    if (len > PERS_ADDRESS_MAX) {
        persi_format(why, why_size, "is %lu characters long, more than the %d allowed",
                     (unsigned long)len, PERS_ADDRESS_MAX);
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f) {
            persi_format(why, why_size,
                         "contains byte 0x%02x at position %lu; only printable ASCII without "
                         "spaces is allowed",
                         (unsigned)c, (unsigned long)i);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   The vtable: ABI sizes, required methods
   ------------------------------------------------------------------------------------------- */

/* Struct sizes per ABI version, PERS_BACKEND_ABI_MIN first. Append the size of each new
   version (offsetof its first new method) when methods are appended. */
static const uint32_t persi_vtable_sizes[PERS_BACKEND_ABI_VERSION - PERS_BACKEND_ABI_MIN + 1] = {
    (uint32_t)offsetof(pers_backend_vtable, complete_batch), (uint32_t)sizeof(pers_backend_vtable)
};

/* Writes the names of the required methods that abi requires and that are missing. Returns
   how many there are. Reads only members within struct_size. */
static size_t persi_missing_methods(const pers_backend_vtable *vt, uint32_t abi,
                                    uint32_t struct_size, char *list, size_t list_size)
{
    size_t missing = 0;
    if (list != NULL && list_size > 0)
        list[0] = '\0';
#define PERSI_CHECK_REQUIRED_(name, required, abi_added, cap, ret, params)                         \
    if ((required) && (uint32_t)(abi_added) <= abi &&                                              \
        (!PERS_FIELD_FITS(pers_backend_vtable, name, struct_size) || vt->name == NULL)) {      \
        persi_append(list, list_size, "%s%s", missing ? ", " : "", #name);                         \
        missing++;                                                                                 \
    }
    PERS_BACKEND_OPS(PERSI_CHECK_REQUIRED_)
#undef PERSI_CHECK_REQUIRED_
    return missing;
}

/* Shared by pers_check_vtable and the registry's validate callback: 0 ok, 1 ABI version,
   2 struct size, 3 missing methods. */
static int persi_vtable_problem(const pers_backend_vtable *vt, uint32_t abi, uint32_t size,
                                char *message, size_t message_size)
{
    char names[512];
    size_t missing;
    if (abi < PERS_BACKEND_ABI_MIN || abi > PERS_BACKEND_ABI_VERSION) {
        persi_format(message, message_size,
                     "persistence.backend ABI version %lu is not supported (this host calls "
                     "%lu..%lu)",
                     (unsigned long)abi, (unsigned long)PERS_BACKEND_ABI_MIN,
                     (unsigned long)PERS_BACKEND_ABI_VERSION);
        return 1;
    }
    if (size < persi_vtable_sizes[abi - PERS_BACKEND_ABI_MIN]) {
        persi_format(message, message_size,
                     "persistence.backend vtable struct_size %lu is smaller than the %lu bytes "
                     "ABI version %lu requires",
                     (unsigned long)size,
                     (unsigned long)persi_vtable_sizes[abi - PERS_BACKEND_ABI_MIN],
                     (unsigned long)abi);
        return 2;
    }
    missing = persi_missing_methods(vt, abi, size, names, sizeof names);
    if (missing > 0) {
        persi_format(message, message_size,
                     "persistence.backend ABI version %lu requires %s: %s %s NULL",
                     (unsigned long)abi, missing == 1 ? "this method" : "these methods", names,
                     missing == 1 ? "is" : "are");
        return 3;
    }
    return 0;
}

PERSI_DEF pers_result pers_check_vtable(const pers_backend_vtable *vtable, char *message,
                                        size_t message_size)
{
    if (message != NULL && message_size > 0)
        message[0] = '\0';
    if (vtable == NULL) {
        persi_format(message, message_size, "the vtable is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (persi_vtable_problem(vtable, vtable->abi_version, vtable->struct_size, message,
                             message_size) != 0)
        return PERS_ERR_ABI_MISMATCH;
    return PERS_OK;
}

static plg_result persi_validate_interface(const plg_interface *iface, char *message,
                                           size_t message_size, void *user)
{
    const pers_backend_vtable *vt;
    uint32_t size;
    (void)user;
    if (iface == NULL || iface->vtable == NULL) {
        persi_format(message, message_size, "the persistence.backend vtable is NULL");
        return PLG_ERR_MISSING_CALLBACK;
    }
    vt = (const pers_backend_vtable *)iface->vtable;
    /* The descriptor's numbers were checked by the registry; the vtable's own must agree. */
    size = iface->struct_size;
    if (vt->abi_version != iface->abi_version || vt->struct_size != iface->struct_size) {
        persi_format(message, message_size,
                     "the vtable says ABI %lu, size %lu but the descriptor says ABI %lu, size %lu",
                     (unsigned long)vt->abi_version, (unsigned long)vt->struct_size,
                     (unsigned long)iface->abi_version, (unsigned long)iface->struct_size);
        return PLG_ERR_ABI_MISMATCH;
    }
    switch (persi_vtable_problem(vt, iface->abi_version, size, message, message_size)) {
    case 0:
        return PLG_OK;
    case 1:
        return PLG_ERR_ABI_MISMATCH;
    case 2:
        return PLG_ERR_VTABLE_TOO_SMALL;
    default:
        return PLG_ERR_MISSING_CALLBACK;
    }
}

PERSI_DEF pers_result pers_declare(plg_registry *reg)
{
    plg_interface_spec spec;
    plg_result rc;
    if (reg == NULL)
        return PERS_ERR_INVALID_ARGUMENT;
    memset(&spec, 0, sizeof spec);
    spec.id = PERS_INTERFACE_ID;
    spec.min_abi_version = PERS_BACKEND_ABI_MIN;
    spec.max_abi_version = PERS_BACKEND_ABI_VERSION;
    spec.struct_sizes = persi_vtable_sizes;
    spec.validate = persi_validate_interface;
    spec.user = NULL;
    rc = plg_declare_interface(reg, &spec);
    if (rc == PLG_OK || rc == PLG_ERR_DUPLICATE)
        return PERS_OK;
    if (rc == PLG_ERR_NO_MEMORY)
        return PERS_ERR_NO_MEMORY;
    return PERS_ERR_INTERNAL;
}

PERSI_DEF pers_result pers_register_backend(plg_registry *reg, const plg_descriptor *descriptor)
{
    pers_result rc;
    if (reg == NULL || descriptor == NULL)
        return PERS_ERR_INVALID_ARGUMENT;
    if ((rc = pers_declare(reg)) != PERS_OK)
        return rc;
    switch (plg_register(reg, descriptor, NULL)) {
    case PLG_OK:
        return PERS_OK;
    case PLG_ERR_DUPLICATE:
        return PERS_ERR_DUPLICATE;
    case PLG_ERR_NO_MEMORY:
        return PERS_ERR_NO_MEMORY;
    case PLG_ERR_ABI_MISMATCH:
    case PLG_ERR_VTABLE_TOO_SMALL:
    case PLG_ERR_HOST_API_MISMATCH:
        return PERS_ERR_ABI_MISMATCH;
    case PLG_ERR_LIMIT:
        return PERS_ERR_LIMIT;
    case PLG_ERR_INTERNAL:
        return PERS_ERR_INTERNAL;
    default: /* names, versions, ranges, schema, callbacks, methods: the descriptor is wrong */
        return PERS_ERR_INVALID_ARGUMENT;
    }
}

/* ---------------------------------------------------------------------------------------------
   The store handle
   ------------------------------------------------------------------------------------------- */

/* The calling thread's error message for one store, kept in a list so that destroying the store
   frees the buffers of threads that are still alive. */
typedef struct persi_errbuf {
    pers_store *store;
    struct persi_errbuf *prev, *next;
    char text[PERSI_ERRMSG_SIZE];
} persi_errbuf;

struct pers_store {
    pers_backend_vtable vt;     /* the backend's vtable resolved: absent methods are NULL */
    uint32_t backend_abi;       /* the ABI version the backend declared */
    void *backend;
    pers_store_desc desc;       /* resolved */
    pers_caps caps;             /* as the store reports them */
    plg_config *owned_config;   /* pers_open's parsed configuration, freed at destroy */
    char provider[PERS_NAME_MAX + 1];
    int closed;                 /* atomic */
    int backend_closed;         /* under lock */
    long inflight;              /* atomic: calls between persi_enter and persi_leave */
    pthread_mutex_t lock;       /* errbuf list, close hand-off */
    pthread_cond_t drained;
    pthread_key_t err_key;
    persi_errbuf *errbufs;
    uint64_t id_prefix;
    char id_prefix_hex[16];     /* id_prefix in hex, the first half of every generated id */
    uint64_t id_counter;        /* atomic */
};

static void persi_errbuf_release(void *value)
{
    persi_errbuf *buf = (persi_errbuf *)value;
    pers_store *s = buf->store;
    pthread_mutex_lock(&s->lock);
    if (buf->prev != NULL)
        buf->prev->next = buf->next;
    else
        s->errbufs = buf->next;
    if (buf->next != NULL)
        buf->next->prev = buf->prev;
    pthread_mutex_unlock(&s->lock);
    pers_free(&s->desc.allocator, buf, sizeof *buf);
}

static persi_errbuf *persi_errbuf_get(pers_store *s)
{
    persi_errbuf *buf = (persi_errbuf *)pthread_getspecific(s->err_key);
    if (buf != NULL)
        return buf;
    buf = (persi_errbuf *)pers_alloc(&s->desc.allocator, sizeof *buf);
    if (buf == NULL)
        return NULL;
    buf->store = s;
    buf->text[0] = '\0';
    buf->prev = NULL;
    if (pthread_setspecific(s->err_key, buf) != 0) {
        pers_free(&s->desc.allocator, buf, sizeof *buf);
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    buf->next = s->errbufs;
    if (s->errbufs != NULL)
        s->errbufs->prev = buf;
    s->errbufs = buf;
    pthread_mutex_unlock(&s->lock);
    return buf;
}

static void persi_log(const plg_logger *logger, plg_log_level level, const char *fmt, ...)
    PLG_PRINTF(3, 4);
static void persi_log(const plg_logger *logger, plg_log_level level, const char *fmt, ...)
{
    char line[PERSI_ERRMSG_SIZE];
    va_list ap;
    if (logger == NULL || logger->log_fn == NULL)
        return;
    va_start(ap, fmt);
    persi_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    logger->log_fn(logger->user, level, line);
}

/* Records the calling thread's message for s, logs it at debug level, returns code. */
static pers_result persi_fail(pers_store *s, pers_result code, const char *fmt, ...)
    PLG_PRINTF(3, 4);
static pers_result persi_fail(pers_store *s, pers_result code, const char *fmt, ...)
{
    char text[PERSI_ERRMSG_SIZE];
    persi_errbuf *buf;
    va_list ap;
    if (s == NULL)
        return code;
    va_start(ap, fmt);
    persi_vformat(text, sizeof text, fmt, ap);
    va_end(ap);
    buf = persi_errbuf_get(s);
    if (buf != NULL)
        memcpy(buf->text, text, sizeof text);
    persi_log(&s->desc.logger, PLG_LOG_DEBUG, "persistence: %s", text);
    return code;
}

PERSI_DEF const char *pers_errmsg(const pers_store *store)
{
    persi_errbuf *buf;
    if (store == NULL)
        return "the store is NULL (pers_open* report their failures in "
               "pers_store_desc.open_message)";
    buf = (persi_errbuf *)pthread_getspecific(store->err_key);
    return buf != NULL ? buf->text : "";
}

static void persi_leave(pers_store *s)
{
    if (__atomic_sub_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->drained);
        pthread_mutex_unlock(&s->lock);
    }
}

/* Every operation starts here: a NULL store, a closed store and a missing optional method are
   answered before anything else. On PERS_OK the caller must end with persi_leave. */
static pers_result persi_enter(pers_store *s, const char *op, int present)
{
    if (s == NULL)
        return PERS_ERR_INVALID_ARGUMENT;
    __atomic_add_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        persi_leave(s);
        return persi_fail(s, PERS_ERR_CLOSED, "%s: the store is closed", op);
    }
    if (!present) {
        persi_leave(s);
        return persi_fail(s, PERS_ERR_NOT_SUPPORTED, "%s: the %s%sbackend does not implement it",
                          op, s->provider, s->provider[0] ? " " : "");
    }
    return PERS_OK;
}

#define PERSI_ENTER_(s, name) persi_enter((s), #name, (s) != NULL && (s)->vt.name != NULL)

static void persi_detail_init(pers_detail *d)
{
    d->native_code = 0;
    d->text[0] = '\0';
}

/* The end of a backend call: a code outside the enum becomes PERS_ERR_INTERNAL; a failure's
   message is the backend's text, or the code's description when it wrote none. */
static pers_result persi_backend_done(pers_store *s, const char *op, pers_result rc,
                                      pers_detail *d)
{
    if ((unsigned)rc >= (unsigned)PERS_RESULT_COUNT_) {
        d->text[sizeof d->text - 1] = '\0';
        return persi_fail(s, PERS_ERR_INTERNAL, "%s: the backend returned unknown code %d%s%s",
                          op, (int)rc, d->text[0] ? ": " : "", d->text);
    }
    if (rc == PERS_OK)
        return rc;
    d->text[sizeof d->text - 1] = '\0';
    if (d->text[0] != '\0')
        return persi_fail(s, rc, "%s: %s", op, d->text);
    return persi_fail(s, rc, "%s: %s", op, pers_result_string(rc));
}

/* persi_fail for INVALID_ARGUMENT with the "<op>: " prefix. */
static pers_result persi_bad(pers_store *s, const char *op, const char *fmt, ...)
    PLG_PRINTF(3, 4);
static pers_result persi_bad(pers_store *s, const char *op, const char *fmt, ...)
{
    char text[PERSI_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    persi_vformat(text, sizeof text, fmt, ap);
    va_end(ap);
    return persi_fail(s, PERS_ERR_INVALID_ARGUMENT, "%s: %s", op, text);
}

static pers_result persi_need_name(pers_store *s, const char *op, const char *what,
                                   const char *name)
{
    char why[256], pv[64];
    if (persi_chars_ok(name, PERS_NAME_MAX, 0, 1) || pers_check_name(name, why, sizeof why) == 0)
        return PERS_OK;
    if (name == NULL)
        return persi_bad(s, op, "%s %s", what, why);
    return persi_bad(s, op, "%s \"%s\" %s", what, persi_preview(name, pv, sizeof pv), why);
}

static pers_result persi_need_key(pers_store *s, const char *op, const char *what,
                                  const char *key)
{
    char why[256], pv[64];
    if (persi_chars_ok(key, PERS_KEY_MAX, 1, 0) || pers_check_key(key, why, sizeof why) == 0)
        return PERS_OK;
    if (key == NULL)
        return persi_bad(s, op, "%s %s", what, why);
    return persi_bad(s, op, "%s \"%s\" %s", what, persi_preview(key, pv, sizeof pv), why);
}

static pers_result persi_need_duration(pers_store *s, const char *op, const char *what,
                                       int64_t value, int64_t min)
{
    if (value < min || value > PERS_DURATION_MAX_MS)
        return persi_bad(s, op, "%s is %lld; it must be %lld..%lld milliseconds", what,
                         (long long)value, (long long)min, (long long)PERS_DURATION_MAX_MS);
    return PERS_OK;
}

static pers_result persi_need_queues(pers_store *s, const char *op, const char *const *queues,
                                     size_t count)
{
    size_t i;
    char what[64];
    pers_result rc;
    if (queues == NULL)
        return persi_bad(s, op, "queues is NULL");
    if (count == 0 || count > PERS_QUEUES_MAX)
        return persi_bad(s, op, "queue_count is %lu; it must be 1..%u", (unsigned long)count,
                         (unsigned)PERS_QUEUES_MAX);
    for (i = 0; i < count; i++) {
        if (persi_chars_ok(queues[i], PERS_NAME_MAX, 0, 1))
            continue; /* the label is formatted only for a bad name */
        persi_format(what, sizeof what, "queues[%lu]", (unsigned long)i);
        if ((rc = persi_need_name(s, op, what, queues[i])) != PERS_OK)
            return rc;
    }
    return PERS_OK;
}

static pers_result persi_need_lease(pers_store *s, const char *op, const pers_lease *lease)
{
    pers_result rc;
    if (lease == NULL)
        return persi_bad(s, op, "lease is NULL");
    if ((rc = persi_need_name(s, op, "tenant", lease->tenant)) != PERS_OK ||
        (rc = persi_need_key(s, op, "task id", lease->task_id)) != PERS_OK)
        return rc;
    if (lease->token == 0)
        return persi_bad(s, op, "lease token 0 is never issued (S4)");
    return PERS_OK;
}

static pers_result persi_need_payload(pers_store *s, const char *op, const char *what,
                                      const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return persi_bad(s, op, "%s is NULL but its length is %lu", what, (unsigned long)len);
    if ((uint64_t)len > s->desc.max_payload_bytes)
        return persi_fail(s, PERS_ERR_TOO_LARGE, "%s: %s is %lu bytes, more than the limit of %llu",
                          op, what, (unsigned long)len,
                          (unsigned long long)s->desc.max_payload_bytes);
    return PERS_OK;
}

static pers_result persi_need_cleanup(pers_store *s, const char *op, const pers_cleanup_req *req)
{
    pers_result rc;
    if (req == NULL)
        return persi_bad(s, op, "request is NULL");
    if (req->tenant != NULL && (rc = persi_need_name(s, op, "tenant", req->tenant)) != PERS_OK)
        return rc;
    return persi_need_duration(s, op, "older_than_ms", req->older_than_ms, 0);
}

/* 16 lowercase hex digits of v into out (no NUL). */
static void persi_hex64(uint64_t v, char *out)
{
    static const char digits[] = "0123456789abcdef";
    int i;
    for (i = 15; i >= 0; i--) {
        out[i] = digits[v & 15u];
        v >>= 4;
    }
}

static uint64_t persi_mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* The random half of generated ids (S9): /dev/urandom when readable, mixed with the time and
   the handle's address either way. */
static uint64_t persi_random_prefix(const pers_store *s)
{
    uint64_t r = 0;
    unsigned char bytes[8];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t i;
    if (f != NULL) {
        if (fread(bytes, 1, sizeof bytes, f) == sizeof bytes)
            for (i = 0; i < sizeof bytes; i++)
                r = (r << 8) | bytes[i];
        fclose(f);
    }
    r ^= persi_mix64((uint64_t)pers_wall_clock_ms(NULL));
    r ^= persi_mix64((uint64_t)(uintptr_t)s ^ (uint64_t)clock());
    return persi_mix64(r);
}

static void persi_generate_id(pers_store *s, char *out)
{
    uint64_t n = __atomic_fetch_add(&s->id_counter, 1, __ATOMIC_RELAXED);
    memcpy(out, s->id_prefix_hex, sizeof s->id_prefix_hex);
    persi_hex64(n, out + 16);
    out[PERS_GENERATED_ID_LEN] = '\0';
}

/* ---------------------------------------------------------------------------------------------
   Opening and closing
   ------------------------------------------------------------------------------------------- */

static void persi_open_message(const pers_store_desc *desc, const char *fmt, ...)
    PLG_PRINTF(2, 3);
static void persi_open_message(const pers_store_desc *desc, const char *fmt, ...)
{
    va_list ap;
    char text[PERSI_ERRMSG_SIZE];
    va_start(ap, fmt);
    persi_vformat(text, sizeof text, fmt, ap);
    va_end(ap);
    if (desc == NULL)
        return;
    persi_log(&desc->logger, PLG_LOG_DEBUG, "persistence: %s", text);
    if (desc->open_message != NULL && desc->open_message_size > 0)
        persi_format(desc->open_message, desc->open_message_size, "%s", text);
}

static void persi_open_message_clear(const pers_store_desc *desc)
{
    if (desc != NULL && desc->open_message != NULL && desc->open_message_size > 0)
        desc->open_message[0] = '\0';
}

static pers_store_desc persi_resolve_desc(const pers_store_desc *desc)
{
    pers_store_desc r;
    if (desc != NULL)
        r = *desc;
    else
        memset(&r, 0, sizeof r);
    if (r.clock.now_ms == NULL) {
        r.clock.now_ms = pers_wall_clock_ms;
        r.clock.user = NULL;
    }
    if (r.allocator.alloc_fn == NULL || r.allocator.free_fn == NULL) {
        r.allocator.alloc_fn = NULL;
        r.allocator.free_fn = NULL;
        r.allocator.user = NULL;
    }
    if (r.max_payload_bytes == 0)
        r.max_payload_bytes = PERS_DEFAULT_MAX_PAYLOAD;
    if (r.default_max_attempts == 0)
        r.default_max_attempts = PERS_DEFAULT_MAX_ATTEMPTS;
    if (r.default_max_attempts > PERS_ATTEMPTS_MAX)
        r.default_max_attempts = PERS_ATTEMPTS_MAX;
    return r;
}

static void *persi_default_alloc(size_t size, void *user)
{
    (void)user;
    return PERS_MALLOC(size, user);
}

static void persi_default_free(void *ptr, size_t size, void *user)
{
    (void)user;
    (void)size;
    PERS_FREE(ptr, size, user);
}

/* Everything an open path shares once it has a vtable (and, for pers_open, a configuration
   whose ownership passes to the store even on failure). */
static pers_result persi_open_common(const pers_backend_vtable *vt, const plg_config *config,
                                     plg_config *owned_config, void *plugin_instance,
                                     const char *provider, const pers_store_desc *desc,
                                     pers_store **out)
{
    char message[PERSI_ERRMSG_SIZE];
    pers_store_desc r = persi_resolve_desc(desc);
    pers_store *s;
    pers_open_args args;
    pers_detail d;
    pers_result rc;
    size_t copy;
    uint64_t missing_caps = 0;
    const char *label = provider != NULL && provider[0] ? provider : "vtable";

    if (pers_check_vtable(vt, message, sizeof message) != PERS_OK) {
        plg_config_destroy(owned_config);
        persi_open_message(desc, "provider \"%s\": %s", label, message);
        return vt == NULL ? PERS_ERR_INVALID_ARGUMENT : PERS_ERR_ABI_MISMATCH;
    }
    if (r.allocator.alloc_fn == NULL) {
        r.allocator.alloc_fn = persi_default_alloc;
        r.allocator.free_fn = persi_default_free;
    }
    s = (pers_store *)pers_alloc(&r.allocator, sizeof *s);
    if (s == NULL) {
        plg_config_destroy(owned_config);
        persi_open_message(desc, "provider \"%s\": out of memory for the store handle", label);
        return PERS_ERR_NO_MEMORY;
    }
    memset(s, 0, sizeof *s);
    s->desc = r;
    s->owned_config = owned_config;
    s->backend_abi = vt->abi_version;
    if (provider != NULL)
        persi_format(s->provider, sizeof s->provider, "%s", provider);
    /* Our own copy of the vtable: members beyond the backend's struct size, or newer than its
       ABI version, stay NULL, so every call site only tests the pointer. */
    copy = vt->struct_size < sizeof s->vt ? vt->struct_size : sizeof s->vt;
    memcpy(&s->vt, vt, copy);
#define PERSI_DROP_NEWER_(name, required, abi_added, cap, ret, params)                             \
    if ((uint32_t)(abi_added) > vt->abi_version ||                                                 \
        !PERS_FIELD_FITS(pers_backend_vtable, name, vt->struct_size))                           \
        s->vt.name = NULL;
    PERS_BACKEND_OPS(PERSI_DROP_NEWER_)
#undef PERSI_DROP_NEWER_
    s->vt.abi_version = PERS_BACKEND_ABI_VERSION;
    s->vt.struct_size = (uint32_t)sizeof s->vt;

    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pers_free(&r.allocator, s, sizeof *s);
        plg_config_destroy(owned_config);
        persi_open_message(desc, "provider \"%s\": pthread_mutex_init failed", label);
        return PERS_ERR_INTERNAL;
    }
    if (pthread_cond_init(&s->drained, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        pers_free(&r.allocator, s, sizeof *s);
        plg_config_destroy(owned_config);
        persi_open_message(desc, "provider \"%s\": pthread_cond_init failed", label);
        return PERS_ERR_INTERNAL;
    }
    if (pthread_key_create(&s->err_key, persi_errbuf_release) != 0) {
        pthread_cond_destroy(&s->drained);
        pthread_mutex_destroy(&s->lock);
        pers_free(&r.allocator, s, sizeof *s);
        plg_config_destroy(owned_config);
        persi_open_message(desc, "provider \"%s\": pthread_key_create failed", label);
        return PERS_ERR_INTERNAL;
    }
    s->id_prefix = persi_random_prefix(s);
    persi_hex64(s->id_prefix, s->id_prefix_hex);

    memset(&args, 0, sizeof args);
    args.abi_version = PERS_OPEN_ARGS_ABI_VERSION;
    args.struct_size = (uint32_t)sizeof args;
    args.clock = s->desc.clock;
    args.allocator = s->desc.allocator;
    args.logger = s->desc.logger;
    args.plugin_instance = plugin_instance;
    args.max_payload_bytes = s->desc.max_payload_bytes;
    args.flags = PERS_OPEN_VALIDATED;

    persi_detail_init(&d);
    rc = s->vt.open_store(config, &args, &s->backend, &d);
    if ((unsigned)rc >= (unsigned)PERS_RESULT_COUNT_)
        rc = PERS_ERR_INTERNAL;
    if (rc == PERS_OK) {
        persi_detail_init(&d);
        memset(&s->caps, 0, sizeof s->caps);
        rc = s->vt.capabilities(s->backend, &s->caps, &d);
        if ((unsigned)rc >= (unsigned)PERS_RESULT_COUNT_)
            rc = PERS_ERR_INTERNAL;
        if (rc != PERS_OK)
            s->vt.close_store(s->backend);
    }
    if (rc != PERS_OK) {
        d.text[sizeof d.text - 1] = '\0';
        persi_open_message(desc, "provider \"%s\": open failed: %s", label,
                           d.text[0] ? d.text : pers_result_string(rc));
        s->backend_closed = 1;
        __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
        pers_destroy(s);
        return rc;
    }
#define PERSI_MISSING_CAP_(name, required, abi_added, cap, ret, params)                            \
    if ((cap) != 0 && s->vt.name == NULL)                                                          \
        missing_caps |= (uint64_t)(cap);
    PERS_BACKEND_OPS(PERSI_MISSING_CAP_)
#undef PERSI_MISSING_CAP_
    s->caps.flags &= ~missing_caps;
    if (s->caps.max_payload_bytes != 0 && s->caps.max_payload_bytes < s->desc.max_payload_bytes)
        s->desc.max_payload_bytes = s->caps.max_payload_bytes;
    s->caps.max_payload_bytes = s->desc.max_payload_bytes;
    if (s->caps.max_batch == 0 || s->caps.max_batch > PERS_BATCH_MAX)
        s->caps.max_batch = PERS_BATCH_MAX;
    persi_log(&s->desc.logger, PLG_LOG_INFO, "persistence: opened provider \"%s\" (ABI %lu)",
              label, (unsigned long)s->backend_abi);
    *out = s;
    return PERS_OK;
}

PERSI_DEF pers_result pers_open_vtable(const pers_backend_vtable *vtable, const plg_config *config,
                                       const pers_store_desc *desc, pers_store **out)
{
    persi_open_message_clear(desc);
    if (out == NULL) {
        persi_open_message(desc, "pers_open_vtable: out is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (vtable == NULL) {
        persi_open_message(desc, "pers_open_vtable: the vtable is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return persi_open_common(vtable, config, NULL, NULL, NULL, desc, out);
}

/* "memory, sqlite" or "none is registered" into buf. */
static void persi_list_providers(plg_registry *reg, char *buf, size_t size)
{
    plg_plugin *small[32];
    size_t n, i, shown;
    buf[0] = '\0';
    n = plg_list_type(reg, PERS_PLUGIN_TYPE, small, 32);
    shown = n < 32 ? n : 32;
    for (i = 0; i < shown; i++)
        persi_append(buf, size, "%s%s", i ? ", " : "", plg_plugin_name(small[i]));
    if (n > shown)
        persi_append(buf, size, ", ... (%lu in all)", (unsigned long)n);
    if (n == 0)
        persi_format(buf, size, "none is registered");
}

PERSI_DEF pers_result pers_open(plg_registry *reg, const char *provider, const char *config_json,
                                const pers_store_desc *desc, pers_store **out)
{
    char pv[64], list[512], text[PERSI_ERRMSG_SIZE];
    plg_plugin *plugin = NULL;
    const plg_descriptor *pd;
    const pers_backend_vtable *vt;
    plg_config *config = NULL;
    plg_result prc;
    plg_state state;
    uint32_t abi = 0;
    size_t i, count;

    persi_open_message_clear(desc);
    if (out == NULL) {
        persi_open_message(desc, "pers_open: out is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (reg == NULL) {
        persi_open_message(desc, "pers_open: the registry is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (provider == NULL || provider[0] == '\0') {
        persi_open_message(desc, "pers_open: the provider name is %s",
                           provider == NULL ? "NULL" : "empty");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (plg_find(reg, PERS_PLUGIN_TYPE, provider, &plugin) != PLG_OK || plugin == NULL) {
        persi_list_providers(reg, list, sizeof list);
        persi_open_message(desc, "no persistence provider named \"%s\"; registered: %s",
                           persi_preview(provider, pv, sizeof pv), list);
        return PERS_ERR_NO_PROVIDER;
    }
    pd = plg_plugin_descriptor(plugin);
    vt = (const pers_backend_vtable *)plg_plugin_vtable(plugin, PERS_INTERFACE_ID,
                                                          PERS_BACKEND_ABI_MIN, &abi);
    if (pd == NULL || vt == NULL) {
        persi_open_message(desc,
                           "provider \"%s\": the plugin does not provide interface \"%s\" at ABI "
                           "version %u or later",
                           provider, PERS_INTERFACE_ID, (unsigned)PERS_BACKEND_ABI_MIN);
        return PERS_ERR_ABI_MISMATCH;
    }
    if (vt->abi_version != abi || vt->struct_size != pd->provides.struct_size) {
        persi_open_message(desc,
                           "provider \"%s\": the vtable says ABI %lu, size %lu but the "
                           "descriptor says ABI %lu, size %lu",
                           provider, (unsigned long)vt->abi_version,
                           (unsigned long)vt->struct_size, (unsigned long)abi,
                           (unsigned long)pd->provides.struct_size);
        return PERS_ERR_ABI_MISMATCH;
    }

    /* The configuration first, so that a typo is reported by key before anything starts. */
    prc = plg_config_parse_json(reg, pd->config_schema, pd->config_key_count, config_json, 0,
                                &config);
    if (prc != PLG_OK) {
        text[0] = '\0';
        count = plg_config_problem_count(config);
        for (i = 0; i < count; i++) {
            const plg_config_problem *p = plg_config_problem_at(config, i);
            /* Warnings too: an unknown key (a typo) often explains the error next to it. */
            if (p == NULL)
                continue;
            persi_append(text, sizeof text, "%s%s%s", text[0] ? "; " : "",
                         p->message != NULL ? p->message : "", p->is_warning ? " (warning)" : "");
        }
        if (text[0] == '\0')
            persi_format(text, sizeof text, "%s", plg_errmsg(reg));
        plg_config_destroy(config);
        persi_open_message(desc, "provider \"%s\": invalid configuration: %s", provider, text);
        return prc == PLG_ERR_NO_MEMORY ? PERS_ERR_NO_MEMORY : PERS_ERR_CONFIG;
    }
    count = plg_config_problem_count(config);
    for (i = 0; i < count; i++) {
        const plg_config_problem *p = plg_config_problem_at(config, i);
        if (p != NULL && p->is_warning && desc != NULL)
            persi_log(&desc->logger, PLG_LOG_WARN, "persistence: provider \"%s\": %s", provider,
                      p->message != NULL ? p->message : "");
    }

    /* The plugin must be running. Concurrent openers may race here: each transition either
       succeeds or finds the plugin already past it, so the state is read again afterwards. */
    state = plg_plugin_state(plugin);
    if (state == PLG_STATE_REGISTERED)
        (void)plg_init(reg, plugin, config_json);
    state = plg_plugin_state(plugin);
    if (state == PLG_STATE_INITIALIZED || state == PLG_STATE_STOPPED)
        (void)plg_start(reg, plugin);
    state = plg_plugin_state(plugin);
    if (state != PLG_STATE_STARTED) {
        char reason[512];
        reason[0] = '\0';
        (void)plg_plugin_failure(plugin, reason, sizeof reason);
        if (reason[0] == '\0')
            persi_format(reason, sizeof reason, "%s", plg_errmsg(reg));
        plg_config_destroy(config);
        persi_open_message(desc, "provider \"%s\": the plugin is %s, not started%s%s", provider,
                           plg_state_name(state), reason[0] ? ": " : "", reason);
        return PERS_ERR_UNAVAILABLE;
    }
    return persi_open_common(vt, config, config, plg_plugin_instance(plugin), provider, desc,
                             out);
}

PERSI_DEF pers_result pers_open_env(plg_registry *reg, const pers_store_desc *desc,
                                    pers_store **out)
{
    const char *provider = getenv("PERSISTENCE_PROVIDER");
    const char *config = getenv("PERSISTENCE_CONFIG");
    char inner[PERSI_ERRMSG_SIZE], pv[64], default_config[1200];
    pers_store_desc d;
    plg_plugin *probe = NULL;
    pers_result rc;
    int from_env = provider != NULL && provider[0] != '\0';

    persi_open_message_clear(desc);
    if (out == NULL) {
        persi_open_message(desc, "pers_open_env: out is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (reg == NULL) {
        persi_open_message(desc, "pers_open_env: the registry is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (!from_env)
        provider = plg_find(reg, PERS_PLUGIN_TYPE, "sqlite", &probe) == PLG_OK ? "sqlite"
                                                                                : "memory";
    if (strcmp(provider, "sqlite") == 0 && (config == NULL || config[0] == '\0')) {
        /* The embedded store with nothing configured: a file in a given or temporary dir, the
           same whether "sqlite" was asked for or is the default. */
        const char *dir = getenv("PERSISTENCE_DIR");
        size_t i, n = 0;
        if (dir == NULL || dir[0] == '\0')
            dir = getenv("TMPDIR");
        if (dir == NULL || dir[0] == '\0')
            dir = "/tmp";
        n += (size_t)snprintf(default_config, sizeof default_config, "{\"path\":\"");
        for (i = 0; dir[i] != '\0' && n + 4 < sizeof default_config; i++) {
            if (dir[i] == '"' || dir[i] == '\\')
                default_config[n++] = '\\';
            default_config[n++] = (unsigned char)dir[i] < 0x20 ? '_' : dir[i];
        }
        default_config[n] = '\0';
        if (n + 32 >= sizeof default_config) {
            persi_open_message(desc, "pers_open_env: the directory for the default database is "
                                     "too long");
            return PERS_ERR_CONFIG;
        }
        snprintf(default_config + n, sizeof default_config - n, "/persistence.sqlite\"}");
        config = default_config;
    }
    if (desc != NULL)
        d = *desc;
    else
        memset(&d, 0, sizeof d);
    inner[0] = '\0';
    d.open_message = inner;
    d.open_message_size = sizeof inner;
    rc = pers_open(reg, provider, config, &d, out);
    if (rc == PERS_OK)
        return rc;
    if (rc == PERS_ERR_CONFIG)
        persi_open_message(desc, "PERSISTENCE_CONFIG: %s", inner);
    else if (rc == PERS_ERR_NO_PROVIDER && from_env)
        persi_open_message(desc, "PERSISTENCE_PROVIDER=\"%s\": %s",
                           persi_preview(provider, pv, sizeof pv), inner);
    else if (rc == PERS_ERR_NO_PROVIDER)
        persi_open_message(desc, "PERSISTENCE_PROVIDER is not set and the default provider "
                                 "\"%s\" is not registered: %s",
                           provider, inner);
    else
        persi_open_message(desc, "%s", inner);
    return rc;
}

PERSI_DEF pers_result pers_close(pers_store *store)
{
    void *backend;
    if (store == NULL)
        return PERS_ERR_INVALID_ARGUMENT;
    if (__atomic_exchange_n(&store->closed, 1, __ATOMIC_SEQ_CST))
        return PERS_OK; /* already closed (or closing on another thread) */
    pthread_mutex_lock(&store->lock);
    while (__atomic_load_n(&store->inflight, __ATOMIC_SEQ_CST) != 0)
        pthread_cond_wait(&store->drained, &store->lock);
    backend = store->backend_closed ? NULL : store->backend;
    store->backend_closed = 1;
    store->backend = NULL;
    /* Under the lock, so that pers_destroy (which takes it) waits for a concurrent close. No
       call is in flight any more, and backends never call back into the store. */
    if (backend != NULL)
        store->vt.close_store(backend);
    pthread_mutex_unlock(&store->lock);
    persi_log(&store->desc.logger, PLG_LOG_INFO, "persistence: closed provider \"%s\"",
              store->provider[0] ? store->provider : "vtable");
    return PERS_OK;
}

PERSI_DEF void pers_destroy(pers_store *store)
{
    persi_errbuf *buf, *next;
    plg_allocator alloc;
    if (store == NULL)
        return;
    (void)pers_close(store);
    /* A concurrent first pers_close may still be calling close_store: wait for it. */
    pthread_mutex_lock(&store->lock);
    pthread_mutex_unlock(&store->lock);
    alloc = store->desc.allocator;
    pthread_key_delete(store->err_key);
    for (buf = store->errbufs; buf != NULL; buf = next) {
        next = buf->next;
        pers_free(&alloc, buf, sizeof *buf);
    }
    plg_config_destroy(store->owned_config);
    pthread_cond_destroy(&store->drained);
    pthread_mutex_destroy(&store->lock);
    pers_free(&alloc, store, sizeof *store);
}

PERSI_DEF pers_store_desc pers_store_resolved(const pers_store *store)
{
    pers_store_desc r;
    if (store == NULL) {
        memset(&r, 0, sizeof r);
        return r;
    }
    r = store->desc;
    r.open_message = NULL;
    r.open_message_size = 0;
    return r;
}

PERSI_DEF const char *pers_store_provider(const pers_store *store)
{
    return store != NULL ? store->provider : "";
}

/* ---------------------------------------------------------------------------------------------
   Operations
   ------------------------------------------------------------------------------------------- */

PERSI_DEF pers_result pers_capabilities(pers_store *store, pers_caps *out)
{
    pers_result rc;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    rc = PERSI_ENTER_(store, capabilities);
    if (rc != PERS_OK)
        return rc;
    if (out == NULL)
        rc = persi_bad(store, "capabilities", "out is NULL");
    else
        *out = store->caps; /* asked once at open; the store's view (S11 limit, masks) */
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_health(pers_store *store)
{
    pers_detail d;
    pers_result rc = PERSI_ENTER_(store, health);
    if (rc != PERS_OK)
        return rc;
    persi_detail_init(&d);
    rc = persi_backend_done(store, "health", store->vt.health(store->backend, &d), &d);
    persi_leave(store);
    return rc;
}

/* Checks one enqueue request and copies it into *r with the store's defaults: max_attempts and
   a generated id (written into id_buf) when the caller gave none. */
static pers_result persi_check_enqueue(pers_store *s, const char *op, const pers_enqueue_req *req,
                                       pers_enqueue_req *r, char *id_buf)
{
    pers_result rc;
    if (req == NULL)
        return persi_bad(s, op, "request is NULL");
    if ((rc = persi_need_name(s, op, "tenant", req->tenant)) != PERS_OK ||
        (rc = persi_need_name(s, op, "queue", req->queue)) != PERS_OK ||
        (rc = persi_need_payload(s, op, "payload", req->payload, req->payload_len)) != PERS_OK)
        return rc;
    if (req->priority < PERS_PRIORITY_MIN || req->priority > PERS_PRIORITY_MAX)
        return persi_bad(s, op, "priority %ld is outside %d..%d", (long)req->priority,
                         PERS_PRIORITY_MIN, PERS_PRIORITY_MAX);
    if ((rc = persi_need_duration(s, op, "delay_ms", req->delay_ms, 0)) != PERS_OK)
        return rc;
    if (req->run_at_ms < 0)
        return persi_bad(s, op, "run_at_ms is negative (%lld)", (long long)req->run_at_ms);
    if (req->run_at_ms > 0 && req->delay_ms > 0)
        return persi_bad(s, op, "give delay_ms or run_at_ms, not both");
    if (req->max_attempts > PERS_ATTEMPTS_MAX)
        return persi_bad(s, op, "max_attempts %lu is more than %lu",
                         (unsigned long)req->max_attempts, (unsigned long)PERS_ATTEMPTS_MAX);
    if (req->idempotency_key != NULL &&
        (rc = persi_need_key(s, op, "idempotency key", req->idempotency_key)) != PERS_OK)
        return rc;
    if (req->task_id != NULL && (rc = persi_need_key(s, op, "task id", req->task_id)) != PERS_OK)
        return rc;
    *r = *req;
    if (r->max_attempts == 0)
        r->max_attempts = s->desc.default_max_attempts;
    if (r->task_id == NULL) {
        persi_generate_id(s, id_buf);
        r->task_id = id_buf;
    }
    return PERS_OK;
}

PERSI_DEF pers_result pers_enqueue(pers_store *store, const pers_enqueue_req *req,
                                   pers_enqueue_res *res)
{
    pers_enqueue_req r;
    pers_enqueue_res local;
    char id[PERS_GENERATED_ID_LEN + 1];
    pers_detail d;
    pers_result rc;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    rc = PERSI_ENTER_(store, enqueue);
    if (rc != PERS_OK)
        return rc;
    rc = persi_check_enqueue(store, "enqueue", req, &r, id);
    if (rc == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "enqueue", store->vt.enqueue(store->backend, &r, res, &d),
                                &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_enqueue_batch(pers_store *store, const pers_enqueue_req *reqs,
                                         size_t count, pers_enqueue_res *res)
{
    pers_enqueue_req *r = NULL;
    pers_enqueue_res *out = NULL;
    char *ids = NULL;
    char op[64];
    size_t i;
    pers_detail d;
    pers_result rc = PERSI_ENTER_(store, enqueue_batch);
    if (rc != PERS_OK)
        return rc;
    if (reqs == NULL)
        rc = persi_bad(store, "enqueue_batch", "reqs is NULL");
    else if (count == 0 || count > store->caps.max_batch)
        rc = persi_bad(store, "enqueue_batch", "count is %lu; it must be 1..%lu",
                       (unsigned long)count, (unsigned long)store->caps.max_batch);
    if (rc == PERS_OK) {
        r = (pers_enqueue_req *)pers_alloc(&store->desc.allocator, count * sizeof *r);
        ids = (char *)pers_alloc(&store->desc.allocator, count * (PERS_GENERATED_ID_LEN + 1));
        out = res != NULL ? res
                          : (pers_enqueue_res *)pers_alloc(&store->desc.allocator,
                                                           count * sizeof *out);
        if (r == NULL || ids == NULL || out == NULL)
            rc = persi_fail(store, PERS_ERR_NO_MEMORY, "enqueue_batch: out of memory");
    }
    for (i = 0; rc == PERS_OK && i < count; i++) {
        char *id = ids + i * (PERS_GENERATED_ID_LEN + 1);
        if (persi_check_enqueue(store, "enqueue_batch", &reqs[i], &r[i], id) != PERS_OK) {
            /* again, with the request's index in the message */
            persi_format(op, sizeof op, "enqueue_batch: request %lu", (unsigned long)i);
            rc = persi_check_enqueue(store, op, &reqs[i], &r[i], id);
        }
        if (rc == PERS_OK && i > 0 &&
            (strcmp(r[i].tenant, r[0].tenant) != 0 || strcmp(r[i].queue, r[0].queue) != 0)) {
            persi_format(op, sizeof op, "enqueue_batch: request %lu", (unsigned long)i);
            rc = persi_bad(store, op, "names %s/%s but request 0 names %s/%s; a batch is for one "
                           "tenant and queue (S19)", r[i].tenant, r[i].queue, r[0].tenant,
                           r[0].queue);
        }
    }
    if (rc == PERS_OK) {
        memset(out, 0, count * sizeof *out);
        persi_detail_init(&d);
        rc = persi_backend_done(store, "enqueue_batch",
                                store->vt.enqueue_batch(store->backend, r, count, out, &d), &d);
        if (rc != PERS_OK && res != NULL) /* S19: a failed batch leaves the results empty */
            memset(res, 0, count * sizeof *res);
    }
    if (r != NULL)
        pers_free(&store->desc.allocator, r, count * sizeof *r);
    if (ids != NULL)
        pers_free(&store->desc.allocator, ids, count * (PERS_GENERATED_ID_LEN + 1));
    if (out != NULL && out != res)
        pers_free(&store->desc.allocator, out, count * sizeof *out);
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_claim(pers_store *store, const pers_claim_req *req, pers_task *tasks,
                                 pers_claim_res *res)
{
    pers_detail d;
    pers_result rc;
    const char *op = "claim";
    if (res != NULL) {
        res->count = 0;
        res->next_due_ms = PERS_NO_TIME;
    }
    rc = PERSI_ENTER_(store, claim);
    if (rc != PERS_OK)
        return rc;
    if (req == NULL)
        rc = persi_bad(store, op, "request is NULL");
    else if (tasks == NULL)
        rc = persi_bad(store, op, "tasks is NULL");
    else if (res == NULL)
        rc = persi_bad(store, op, "res is NULL");
    else if ((rc = persi_need_name(store, op, "tenant", req->tenant)) != PERS_OK ||
             (rc = persi_need_queues(store, op, req->queues, req->queue_count)) != PERS_OK ||
             (rc = persi_need_name(store, op, "worker id", req->worker_id)) != PERS_OK ||
             (rc = persi_need_duration(store, op, "lease_ms", req->lease_ms, 1)) != PERS_OK)
        ;
    else if (req->max_tasks == 0 || req->max_tasks > PERS_CLAIM_MAX)
        rc = persi_bad(store, op, "max_tasks is %lu; it must be 1..%u",
                       (unsigned long)req->max_tasks, (unsigned)PERS_CLAIM_MAX);
    if (rc == PERS_OK) {
        memset(tasks, 0, req->max_tasks * sizeof *tasks);
        persi_detail_init(&d);
        rc = persi_backend_done(store, op, store->vt.claim(store->backend, req, tasks, res, &d),
                                &d);
        if (rc == PERS_OK && res->count > req->max_tasks)
            rc = persi_fail(store, PERS_ERR_INTERNAL,
                            "claim: the backend returned %lu tasks for at most %lu",
                            (unsigned long)res->count, (unsigned long)req->max_tasks);
        if (rc != PERS_OK) {
            res->count = 0;
            res->next_due_ms = PERS_NO_TIME;
        }
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_extend_lease(pers_store *store, const pers_lease *lease,
                                        int64_t lease_ms, int64_t *expires_ms)
{
    int64_t local = 0;
    pers_detail d;
    pers_result rc;
    if (expires_ms == NULL)
        expires_ms = &local;
    *expires_ms = 0;
    rc = PERSI_ENTER_(store, extend_lease);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_lease(store, "extend_lease", lease)) == PERS_OK &&
        (rc = persi_need_duration(store, "extend_lease", "lease_ms", lease_ms, 1)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, "extend_lease",
            store->vt.extend_lease(store->backend, lease, lease_ms, expires_ms, &d), &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_abandon(pers_store *store, const pers_lease *lease)
{
    pers_detail d;
    pers_result rc = PERSI_ENTER_(store, abandon);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_lease(store, "abandon", lease)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "abandon", store->vt.abandon(store->backend, lease, &d),
                                &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_nack(pers_store *store, const pers_lease *lease, int64_t retry_delay_ms,
                                const char *reason, pers_task_state *state)
{
    pers_task_state local = PERS_STATE_READY;
    pers_detail d;
    pers_result rc;
    if (state == NULL)
        state = &local;
    *state = (pers_task_state)0;
    rc = PERSI_ENTER_(store, nack);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_lease(store, "nack", lease)) == PERS_OK &&
        (rc = persi_need_duration(store, "nack", "retry_delay_ms", retry_delay_ms, 0)) ==
            PERS_OK) {
        if (reason != NULL && strlen(reason) > PERS_REASON_MAX)
            rc = persi_bad(store, "nack", "the reason is %lu bytes long, more than %d",
                           (unsigned long)strlen(reason), PERS_REASON_MAX);
    }
    if (rc == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, "nack",
            store->vt.nack(store->backend, lease, retry_delay_ms, reason, state, &d), &d);
    }
    persi_leave(store);
    return rc;
}

/* The checks of one completion (S5, S11, S12); completion is never NULL here. */
static pers_result persi_need_completion(pers_store *s, const char *op, const pers_lease *lease,
                                         const pers_completion *completion)
{
    pers_result rc;
    if ((rc = persi_need_lease(s, op, lease)) != PERS_OK)
        return rc;
    if (completion->failed != 0 && completion->failed != 1)
        return persi_bad(s, op, "failed is %d; it must be 0 or 1", completion->failed);
    return persi_need_payload(s, op, completion->failed ? "error" : "result", completion->data,
                              completion->data_len);
}

PERSI_DEF pers_result pers_complete(pers_store *store, const pers_lease *lease,
                                    const pers_completion *completion)
{
    pers_completion empty;
    pers_detail d;
    pers_result rc = PERSI_ENTER_(store, complete);
    if (rc != PERS_OK)
        return rc;
    if (completion == NULL) {
        memset(&empty, 0, sizeof empty);
        completion = &empty;
    }
    rc = persi_need_completion(store, "complete", lease, completion);
    if (rc == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "complete",
                                store->vt.complete(store->backend, lease, completion, &d), &d);
    }
    persi_leave(store);
    return rc;
}

/* The codes complete gives one item on its own (S5, S12): anything else is the storage failing,
   which ends a batch (S20). */
static int persi_item_outcome(pers_result rc)
{
    return rc == PERS_OK || rc == PERS_ERR_NOT_FOUND || rc == PERS_ERR_LEASE_LOST ||
           rc == PERS_ERR_ALREADY_COMPLETED || rc == PERS_ERR_INVALID_STATE;
}

/* S20 for a backend without complete_batch: one complete per item, stopping at the first
   failure of the storage itself. */
static pers_result persi_complete_each(pers_store *s, const pers_lease *leases,
                                       const pers_completion *completions, size_t count,
                                       pers_result *results)
{
    pers_completion empty;
    pers_detail d;
    pers_result rc;
    size_t i, j;
    memset(&empty, 0, sizeof empty);
    for (i = 0; i < count; i++) {
        persi_detail_init(&d);
        rc = s->vt.complete(s->backend, &leases[i], completions ? &completions[i] : &empty, &d);
        if ((unsigned)rc >= (unsigned)PERS_RESULT_COUNT_)
            rc = PERS_ERR_INTERNAL;
        results[i] = rc;
        if (!persi_item_outcome(rc)) {
            for (j = i + 1; j < count; j++)
                results[j] = rc;
            return persi_backend_done(s, "complete_batch", rc, &d);
        }
    }
    return PERS_OK;
}

PERSI_DEF pers_result pers_complete_batch(pers_store *store, const pers_lease *leases,
                                          const pers_completion *completions, size_t count,
                                          pers_result *results)
{
    static const pers_completion empty = { 0, NULL, 0 };
    char op[64];
    size_t i;
    pers_detail d;
    pers_result rc = persi_enter(store, "complete_batch", 1);
    if (rc != PERS_OK) {
        for (i = 0; results != NULL && i < count && i <= PERS_BATCH_MAX; i++)
            results[i] = rc;
        return rc;
    }
    if (leases == NULL)
        rc = persi_bad(store, "complete_batch", "leases is NULL");
    else if (results == NULL)
        rc = persi_bad(store, "complete_batch", "results is NULL");
    else if (count == 0 || count > store->caps.max_batch)
        rc = persi_bad(store, "complete_batch", "count is %lu; it must be 1..%lu",
                       (unsigned long)count, (unsigned long)store->caps.max_batch);
    for (i = 0; rc == PERS_OK && i < count; i++) {
        const pers_completion *c = completions != NULL ? &completions[i] : &empty;
        if (persi_need_completion(store, "complete_batch", &leases[i], c) == PERS_OK)
            continue; /* the label with the index is formatted only for a bad item */
        persi_format(op, sizeof op, "complete_batch: item %lu", (unsigned long)i);
        rc = persi_need_completion(store, op, &leases[i], c);
    }
    if (rc != PERS_OK) {
        for (i = 0; results != NULL && i < count && i <= PERS_BATCH_MAX; i++)
            results[i] = rc;
    } else if (store->vt.complete_batch == NULL) {
        rc = persi_complete_each(store, leases, completions, count, results);
    } else {
        /* A backend that leaves an item unanswered has failed it (PERS_ERR_INTERNAL). */
        for (i = 0; i < count; i++)
            results[i] = PERS_ERR_INTERNAL;
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, "complete_batch",
            store->vt.complete_batch(store->backend, leases, completions, count, results, &d),
            &d);
        for (i = 0; rc == PERS_OK && i < count; i++)
            if (!persi_item_outcome(results[i]))
                rc = persi_fail(store, PERS_ERR_INTERNAL,
                                "complete_batch: the backend answered item %lu with %s, which "
                                "is not the outcome of one completion (S20)",
                                (unsigned long)i,
                                (unsigned)results[i] < (unsigned)PERS_RESULT_COUNT_
                                    ? pers_result_string(results[i])
                                    : "an unknown code");
        for (i = 0; rc != PERS_OK && i < count; i++)
            if (results[i] != PERS_OK)
                results[i] = rc;
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_get_task(pers_store *store, const char *tenant, const char *task_id,
                                    pers_task *out)
{
    pers_detail d;
    char t[PERS_NAME_MAX + 1], id[PERS_KEY_MAX + 1];
    pers_result rc = PERSI_ENTER_(store, get_task);
    if (rc != PERS_OK) {
        if (out != NULL) /* not earlier: out->id may be the task_id argument */
            memset(out, 0, sizeof *out);
        return rc;
    }
    if (out == NULL)
        rc = persi_bad(store, "get_task", "out is NULL");
    else if ((rc = persi_need_name(store, "get_task", "tenant", tenant)) == PERS_OK &&
             (rc = persi_need_key(store, "get_task", "task id", task_id)) == PERS_OK) {
        /* Copies first: the caller may pass out->id as task_id. */
        memcpy(t, tenant, strlen(tenant) + 1);
        memcpy(id, task_id, strlen(task_id) + 1);
        memset(out, 0, sizeof *out);
        persi_detail_init(&d);
        rc = persi_backend_done(store, "get_task",
                                store->vt.get_task(store->backend, t, id, out, &d), &d);
    }
    if (rc != PERS_OK && out != NULL)
        memset(out, 0, sizeof *out);
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_queue_stats(pers_store *store, const char *tenant, const char *queue,
                                       pers_stats *out)
{
    pers_detail d;
    pers_result rc;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    rc = PERSI_ENTER_(store, queue_stats);
    if (rc != PERS_OK)
        return rc;
    if (out == NULL)
        rc = persi_bad(store, "queue_stats", "out is NULL");
    else if ((rc = persi_need_name(store, "queue_stats", "tenant", tenant)) == PERS_OK &&
             (rc = persi_need_name(store, "queue_stats", "queue", queue)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "queue_stats",
                                store->vt.queue_stats(store->backend, tenant, queue, out, &d),
                                &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_list_dead(pers_store *store, const pers_list_req *req,
                                     pers_task_list *out)
{
    pers_list_req r;
    pers_detail d;
    pers_result rc;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    rc = PERSI_ENTER_(store, list_dead);
    if (rc != PERS_OK)
        return rc;
    if (out == NULL)
        rc = persi_bad(store, "list_dead", "out is NULL");
    else if (req == NULL)
        rc = persi_bad(store, "list_dead", "request is NULL");
    else if ((rc = persi_need_name(store, "list_dead", "tenant", req->tenant)) == PERS_OK &&
             (rc = persi_need_name(store, "list_dead", "queue", req->queue)) == PERS_OK &&
             req->limit > PERS_LIST_MAX)
        rc = persi_bad(store, "list_dead", "limit %lu is more than %u", (unsigned long)req->limit,
                       (unsigned)PERS_LIST_MAX);
    if (rc == PERS_OK) {
        r = *req;
        if (r.limit == 0)
            r.limit = PERS_LIST_MAX;
        persi_detail_init(&d);
        rc = persi_backend_done(store, "list_dead",
                                store->vt.list_dead(store->backend, &r, out, &d), &d);
        if (rc != PERS_OK)
            memset(out, 0, sizeof *out);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_requeue_dead(pers_store *store, const char *tenant,
                                        const char *task_id)
{
    pers_detail d;
    pers_result rc = PERSI_ENTER_(store, requeue_dead);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_name(store, "requeue_dead", "tenant", tenant)) == PERS_OK &&
        (rc = persi_need_key(store, "requeue_dead", "task id", task_id)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "requeue_dead",
                                store->vt.requeue_dead(store->backend, tenant, task_id, &d), &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_cleanup_tasks(pers_store *store, const pers_cleanup_req *req,
                                         size_t *removed)
{
    size_t local = 0;
    pers_detail d;
    pers_result rc;
    if (removed == NULL)
        removed = &local;
    *removed = 0;
    rc = PERSI_ENTER_(store, cleanup_tasks);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_cleanup(store, "cleanup_tasks", req)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "cleanup_tasks",
                                store->vt.cleanup_tasks(store->backend, req, removed, &d), &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_get_result(pers_store *store, const char *tenant, const char *task_id,
                                      pers_task_result *out)
{
    pers_detail d;
    char t[PERS_NAME_MAX + 1], id[PERS_KEY_MAX + 1];
    pers_result rc = PERSI_ENTER_(store, get_result);
    if (rc != PERS_OK) {
        if (out != NULL) /* not earlier: out->id may be the task_id argument */
            memset(out, 0, sizeof *out);
        return rc;
    }
    if (out == NULL)
        rc = persi_bad(store, "get_result", "out is NULL");
    else if ((rc = persi_need_name(store, "get_result", "tenant", tenant)) == PERS_OK &&
             (rc = persi_need_key(store, "get_result", "task id", task_id)) == PERS_OK) {
        memcpy(t, tenant, strlen(tenant) + 1);
        memcpy(id, task_id, strlen(task_id) + 1);
        memset(out, 0, sizeof *out);
        persi_detail_init(&d);
        rc = persi_backend_done(store, "get_result",
                                store->vt.get_result(store->backend, t, id, out, &d), &d);
    }
    if (rc != PERS_OK && out != NULL)
        memset(out, 0, sizeof *out);
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_cleanup_results(pers_store *store, const pers_cleanup_req *req,
                                           size_t *removed)
{
    size_t local = 0;
    pers_detail d;
    pers_result rc;
    if (removed == NULL)
        removed = &local;
    *removed = 0;
    rc = PERSI_ENTER_(store, cleanup_results);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_cleanup(store, "cleanup_results", req)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, "cleanup_results",
                                store->vt.cleanup_results(store->backend, req, removed, &d), &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_subscribe(pers_store *store, const pers_subscribe_req *req,
                                     size_t *created)
{
    size_t local = 0;
    char why[256];
    pers_detail d;
    const char *op = "subscribe";
    pers_result rc;
    if (created == NULL)
        created = &local;
    *created = 0;
    rc = PERSI_ENTER_(store, subscribe);
    if (rc != PERS_OK)
        return rc;
    if (req == NULL)
        rc = persi_bad(store, op, "request is NULL");
    else if ((rc = persi_need_name(store, op, "tenant", req->tenant)) == PERS_OK &&
             (rc = persi_need_name(store, op, "worker id", req->worker_id)) == PERS_OK &&
             (rc = persi_need_queues(store, op, req->queues, req->queue_count)) == PERS_OK &&
             (rc = persi_need_duration(store, op, "ttl_ms", req->ttl_ms, 1)) == PERS_OK &&
             persi_check_address(req->callback, why, sizeof why) != 0)
        rc = persi_bad(store, op, "callback address %s", why);
    if (rc == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(store, op, store->vt.subscribe(store->backend, req, created, &d),
                                &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_unsubscribe(pers_store *store, const char *tenant,
                                       const char *worker_id, const char *queue, size_t *removed)
{
    size_t local = 0;
    pers_detail d;
    const char *op = "unsubscribe";
    pers_result rc;
    if (removed == NULL)
        removed = &local;
    *removed = 0;
    rc = PERSI_ENTER_(store, unsubscribe);
    if (rc != PERS_OK)
        return rc;
    if ((rc = persi_need_name(store, op, "tenant", tenant)) == PERS_OK &&
        (rc = persi_need_name(store, op, "worker id", worker_id)) == PERS_OK &&
        (queue == NULL || (rc = persi_need_name(store, op, "queue", queue)) == PERS_OK)) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, op, store->vt.unsubscribe(store->backend, tenant, worker_id, queue, removed, &d),
            &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_list_subscriptions_by_queue(pers_store *store, const char *tenant,
                                                       const char *queue,
                                                       pers_subscription_list *out)
{
    pers_detail d;
    const char *op = "list_subscriptions_by_queue";
    pers_result rc;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    rc = PERSI_ENTER_(store, list_subscriptions_by_queue);
    if (rc != PERS_OK)
        return rc;
    if (out == NULL)
        rc = persi_bad(store, op, "out is NULL");
    else if ((rc = persi_need_name(store, op, "tenant", tenant)) == PERS_OK &&
             (rc = persi_need_name(store, op, "queue", queue)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, op,
            store->vt.list_subscriptions_by_queue(store->backend, tenant, queue, out, &d), &d);
        if (rc != PERS_OK)
            memset(out, 0, sizeof *out);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_list_subscriptions_by_worker(pers_store *store, const char *tenant,
                                                        const char *worker_id,
                                                        pers_subscription_list *out)
{
    pers_detail d;
    const char *op = "list_subscriptions_by_worker";
    pers_result rc;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    rc = PERSI_ENTER_(store, list_subscriptions_by_worker);
    if (rc != PERS_OK)
        return rc;
    if (out == NULL)
        rc = persi_bad(store, op, "out is NULL");
    else if ((rc = persi_need_name(store, op, "tenant", tenant)) == PERS_OK &&
             (rc = persi_need_name(store, op, "worker id", worker_id)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, op,
            store->vt.list_subscriptions_by_worker(store->backend, tenant, worker_id, out, &d),
            &d);
        if (rc != PERS_OK)
            memset(out, 0, sizeof *out);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF pers_result pers_expire_subscriptions(pers_store *store, const char *tenant,
                                                size_t *removed)
{
    size_t local = 0;
    pers_detail d;
    const char *op = "expire_subscriptions";
    pers_result rc;
    if (removed == NULL)
        removed = &local;
    *removed = 0;
    rc = PERSI_ENTER_(store, expire_subscriptions);
    if (rc != PERS_OK)
        return rc;
    if (tenant == NULL || (rc = persi_need_name(store, op, "tenant", tenant)) == PERS_OK) {
        persi_detail_init(&d);
        rc = persi_backend_done(
            store, op, store->vt.expire_subscriptions(store->backend, tenant, removed, &d), &d);
    }
    persi_leave(store);
    return rc;
}

PERSI_DEF void pers_task_free(pers_store *store, pers_task *task)
{
    if (store != NULL)
        pers_task_clear(&store->desc.allocator, task);
}

PERSI_DEF void pers_tasks_free(pers_store *store, pers_task *tasks, size_t count)
{
    size_t i;
    if (store == NULL || tasks == NULL)
        return;
    for (i = 0; i < count; i++)
        pers_task_clear(&store->desc.allocator, &tasks[i]);
}

PERSI_DEF void pers_task_list_free(pers_store *store, pers_task_list *list)
{
    if (store != NULL)
        pers_task_list_clear(&store->desc.allocator, list);
}

PERSI_DEF void pers_task_result_free(pers_store *store, pers_task_result *result)
{
    if (store != NULL)
        pers_task_result_clear(&store->desc.allocator, result);
}

PERSI_DEF void pers_subscription_list_free(pers_store *store, pers_subscription_list *list)
{
    if (store != NULL)
        pers_subscription_list_clear(&store->desc.allocator, list);
}

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_IMPLEMENTATION */

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
