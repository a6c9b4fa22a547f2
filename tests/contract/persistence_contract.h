/* persistence_contract.h - the persistence contract suite for persistence.h, stb-style single
   header.

   The conformance suite every storage backend of persistence.h must pass: one call runs every
   case against a factory of fresh stores and checks the semantics S1..S20 written down in
   persistence.h, each case citing the rule it checks (e.g. "S5d"). Only what the contract
   specifies is asserted.

   USAGE
   =====
   In exactly ONE C or C++ file (the implementations of persistence.h, plugin_registry.h and the
   memory backend may be in the same file or linked in; the suite compares every backend with
   the memory backend, so its implementation must be somewhere in the program):

       #define PERSISTENCE_CONTRACT_IMPLEMENTATION
       #include "tests/contract/persistence_contract.h"

   Every other file includes the header plainly. Including it again, before or after the define,
   is harmless. Link with -pthread. A complete program, here for the memory backend itself:

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #define PERSISTENCE_IMPLEMENTATION
       #define PERSISTENCE_MEMORY_IMPLEMENTATION
       #define PERSISTENCE_CONTRACT_IMPLEMENTATION
       #include "tests/contract/persistence_contract.h"   // includes backends/memory.h
       #include <string.h>

       // A FRESH, EMPTY store per call, opened with the desc the suite passes (its fake clock
       // and its counting allocator are in it).
       static pers_result open_store(void *user, const pers_store_desc *desc, pers_store **out)
       {
           (void)user;
           return pers_open_vtable(pers_memory_vtable(), NULL, desc, out);
       }

       // Destroys the store (pers_destroy; it may have been closed already) and removes its
       // data: files, keys, tables.
       static void teardown_store(void *user, pers_store *store)
       {
           (void)user;
           pers_destroy(store);
       }

       int main(void)
       {
           pers_contract_target target;
           pers_contract_options opt;
           memset(&target, 0, sizeof target);
           memset(&opt, 0, sizeof opt);           // zero means default for every field
           target.name = "memory";
           target.open = open_store;
           target.teardown = teardown_store;
           return pers_contract_run(&target, &opt, NULL) == 0 ? 0 : 1;
       }

   A backend reached through a registry opens with pers_open(reg, "sqlite", config, desc, out)
   in its factory instead (a fresh database file per call, deleted by the teardown).

   It prints the seed, one line per case and a summary:

       persistence contract memory: seed 1748000000123 (repeat with options.seed), ...
       PASS PS-PAYLOAD-01 empty payload round-trips
       FAIL PS-LEASE-04 stale or unknown token is LEASE_LOST: S5d: extend_lease with the token
            of the reclaimed lease: expected PERS_ERR_LEASE_LOST, got PERS_OK
       NOT SUPPORTED PS-SUB-01 subscribe creates one row per queue: the backend does not declare
            PERS_CAP_SUBSCRIPTIONS
       persistence contract memory: 69 passed, 0 failed, 0 not supported

   and returns the number of failed cases. Pass a pers_contract_report to get the counts, the
   seed and, with an array of your own, every case's outcome and message.

   HOW IT WORKS
   ============
   Every case asks the target's factory for a fresh, empty store, giving it a pers_store_desc
   with the case's FAKE CLOCK (it starts at 1700000000000 ms and moves only when the case moves
   it: the suite never sleeps, except that the concurrency cases run real threads), a COUNTING
   ALLOCATOR, max_payload_bytes = 1 MiB and default_max_attempts = 3. The case drives the store
   through the store handle, then the target's teardown destroys it, and the suite checks that
   every byte allocated through the desc's allocator was freed, with the size it was allocated
   with (store handle, backend state, everything handed back to the caller). Memory a backend
   takes from plain malloc is not covered: run the suite under AddressSanitizer/LeakSanitizer
   too. Leaked blocks are reclaimed after being reported.

   Every failed check is reported: what was expected, what came back (pers_result_string) and
   the store's pers_errmsg. A case that finds an inconsistency stops only when going on would
   be meaningless.

   PS-RANDOM-01 runs options.random_steps random operations against the target and, with the same
   fake clock and the same arguments, against a fresh memory backend (backends/memory.h, the
   reference model), comparing every result STEP BY STEP; the first difference fails the case
   with the seed, the step number, the operation and the last steps before it. The seed is
   options.seed or, when 0, drawn from the time; it is printed at the start of every run and
   returned in the report, so a failure is repeated by setting options.seed.

   A watchdog thread aborts the process when a case runs longer than options.watchdog_seconds
   (default 30), after printing the case id to the output and to stderr, so that CI never hangs
   silently on a backend that blocks.

   OUTCOMES
   ========
   PASS            every check of the case held.
   FAIL            a check did not hold. A capability the backend declares and that misbehaves
                   fails; so does a leak, a free with the wrong size, a factory that fails.
   NOT SUPPORTED   the case exercises a capability (PERS_CAP_*) the backend does not declare.
                   Checks of an undeclared capability inside other cases are skipped, never
                   failed.

   CASES (stable ids; list for PERS_BACKEND_ABI_VERSION 2, PERS_CONTRACT_CASES_ABI)
   =====
   Cites are to persistence.h. [CAP] names the capability a case needs.
   PS-TASK-01     get_task reports every field as enqueued and as claimed; unknown id NOT_FOUND
   PS-PAYLOAD-01  empty payload (NULL or not, length 0) round-trips, NUL-terminated (S11)
   PS-PAYLOAD-02  binary payload, result and error with NUL bytes and all 256 byte values (S11)
   PS-PAYLOAD-03  a payload and a result of the store's limit (1 MiB) round-trip byte for byte
   PS-PAYLOAD-04  one byte over the limit is TOO_LARGE for enqueue and complete; nothing changes
   PS-ORDER-01    highest priority first, PERS_PRIORITY_MIN..MAX included (S3)
   PS-ORDER-02    FIFO within a priority, even within one millisecond (S3)
   PS-ORDER-03    claim walks its queues in the order given and fills max_tasks in order (S3)
   PS-ORDER-04    a retried, abandoned or expired task goes back to its original place (S3)
   PS-SCHED-01    a delayed task is hidden until due and next_due_ms says when (S2, S18)
   PS-SCHED-02    run_at_ms: due at that time; in the past or now: ready at once (S2)
   PS-SCHED-03    next_due_ms is the earliest due time of the claim's queues, else NO_TIME (S18)
   PS-SCHED-04    a task that fell due takes its enqueue place among ready tasks (S2, S3)
   PS-LEASE-01    lease tokens: the first is 1, every claim issues new, greater ones (S4)
   PS-LEASE-02    claim records the lease; a live lease is never claimed again (S4, S1)
   PS-LEASE-03    extend_lease with the current token: now + lease_ms, outlives the old expiry
   PS-LEASE-04    extend/complete with a stale or never-issued token: LEASE_LOST (S5d)
   PS-LEASE-05    a lease is live while now < expiry: extend at expiry - 1 works, at expiry not
   PS-EXPIRY-01   an expired lease is reclaimed by the next claim: attempt counted (S7, S6)
   PS-EXPIRY-02   the old holder gets LEASE_LOST on every worker operation, nothing changes (S5)
   PS-EXPIRY-03   expiry without a reclaiming claim: ready, "lease expired", as of expiry (S7, S2)
   PS-EXPIRY-04   expiry at max_attempts: dead at the instant of expiry (S7, S6)
   PS-NACK-01     nack without delay: ready at once, reason kept, attempt counted (S1, S6)
   PS-NACK-02     nack with a delay: scheduled until now + delay, next_due_ms reports it (S2)
   PS-DEAD-01     at max_attempts a nack kills the task, keeping its reason (S6, S12)
   PS-DEAD-02     max_attempts 0 means the store's default_max_attempts (S6)
   PS-DEAD-03     list_dead: the dead of a queue in the order they died, offset, limit [DEAD]
   PS-DEAD-04     requeue_dead: ready, attempts 0, original place; errors for others [DEAD]
   PS-ABANDON-01  abandon gives the attempt back: a task can be abandoned forever (S6)
   PS-ATTEMPT-01  attempts through claim, abandon, nack and expiry, dead at max_attempts (S6)
   PS-COMPLETE-01 complete stores the result and finishes the task, releasing the lease (S12)
   PS-COMPLETE-02 a second completion is ALREADY_COMPLETED and keeps the first result (S5c)
   PS-COMPLETE-03 every action after completion: INVALID_STATE or LEASE_LOST (S5c, S5d)
   PS-COMPLETE-04 complete with failed = 1 is final whatever the attempts left (S6, S12)
   PS-CBATCH-01   complete_batch: each item as complete would, its own code, any tenant (S20)
   PS-CBATCH-02   complete_batch: an invalid item refuses the whole batch, nothing changes (S20)
   PS-CBATCH-03   complete_batch of a whole claim, expired leases among them (S20, S7)
   PS-RESULT-01   get_result: NOT_FOUND until completed or failed, and for dead tasks [RESULTS]
   PS-IDEM-01     a repeated key in the same (tenant, queue) returns the task, changes nothing
   PS-IDEM-02     the same key in another queue or tenant is unrelated (S8)
   PS-IDEM-03     a key holds in every state: leased, scheduled, completed, dead (S8)
   PS-IDEM-04     in a batch a repeated key refers to the first request carrying it [BATCH]
   PS-IDEM-05     the idempotency check comes before the duplicate-id check (S9)
   PS-ID-01       caller-supplied ids: kept, DUPLICATE within a tenant, free across tenants (S9)
   PS-ID-02       generated ids: 32 lowercase hex digits, unique (S9)
   PS-TENANT-01   every operation on another tenant's task is NOT_FOUND, nothing changes (S13)
   PS-TENANT-02   claims and statistics never cross tenants (S13, S17)
   PS-NAME-01     every forbidden character is refused in names, ids and keys (S10)
   PS-NAME-02     empty and too long names, ids, keys, callbacks and reasons are refused; the
                  longest allowed ones round-trip (S10)
   PS-NAME-03     valid names that look like separators never collide (S10)
   PS-STATS-01    statistics are exact per tenant and queue after a mixed sequence [STATS]
   PS-STATS-02    statistics apply due times and lease expiry as of now [STATS] (S17, S2, S7)
   PS-RETAIN-01   cleanup_tasks removes finished tasks at or before the cutoff, with results
                  and keys [TASK_RETENTION] (S14)
   PS-RETAIN-02   cleanup_tasks: dead only when asked, tenant filter, limit [TASK_RETENTION]
   PS-RETAIN-03   cleanup_results removes results only [RESULTS] (S14)
   PS-SUB-01      subscribe creates one row per queue with every field [SUBSCRIPTIONS] (S15)
   PS-SUB-02      subscribe is an idempotent upsert that leaves other rows alone [SUBSCRIPTIONS]
   PS-SUB-03      subscriptions are isolated per tenant [SUBSCRIPTIONS] (S13, S15)
   PS-SUB-04      expired rows are absent everywhere; expire_subscriptions deletes them [SUBS]
   PS-SUB-05      unsubscribe one queue or every row; NOT_FOUND when none [SUBSCRIPTIONS]
   PS-SUB-06      lists by queue and by worker, ordered bytewise [SUBSCRIPTIONS]
   PS-BATCH-01    enqueue_batch: res[i] for request i, each task as requested [BATCH]
   PS-BATCH-02    enqueue_batch is all or nothing [BATCH]
   PS-CLOSE-01    close twice is harmless; every operation after close is CLOSED
   PS-CAPS-01     every declared capability works; every undeclared one is NOT_SUPPORTED
   PS-HEALTH-01   health is PERS_OK on a working store [HEALTH]
   PS-CONC-01     N threads claim M tasks: each claimed exactly once while its lease lives
   PS-CONC-02     N threads enqueue the same idempotency keys: one task per key (S8)
   PS-RANDOM-01   random operations compared step by step with the memory backend
   Every case also fails on a leak or a free with the wrong size through the desc's allocator.

   Ids are never renumbered or reused. A later PERS_BACKEND_ABI_VERSION adds cases with new ids
   (the build stops until PERS_CONTRACT_CASES_ABI is raised with them); a case that no longer
   applies is retired, its id not given to another.

   OPTIONS (pers_contract_options; zero means default)
   =======
   filter            run only the cases whose id starts with it ("PS-LEASE-")
   out, quiet        where the report goes (default stdout); quiet = 1 prints nothing
   seed              seed of PS-RANDOM-01 (0: from the time; the seed in force is printed)
   random_steps      operations of PS-RANDOM-01 (default 3000)
   threads           threads of PS-CONC-01/02 (default 4)
   concurrent_tasks  tasks of PS-CONC-01 (default 1000)
   watchdog_seconds  per-case limit (default 30; negative: no watchdog)

   THREAD SAFETY
   =============
   pers_contract_run keeps its state in the call (no globals), so several runs may proceed in
   parallel threads; each starts a watchdog thread of its own, and the concurrency cases start
   options.threads threads that use the store at once (run them under ThreadSanitizer). The
   factory and the teardown are called from the calling thread.

   COMPILE-TIME OPTIONS
   ====================
   PERS_CONTRACT_API     decoration of the public functions (default extern)
   PERS_CONTRACT_STATIC  make every function static

   LICENCE: see the end of the file.
*/
#ifndef PERSISTENCE_CONTRACT_H
#define PERSISTENCE_CONTRACT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../backends/memory.h"

#define PERS_CONTRACT_VERSION_MAJOR 0
#define PERS_CONTRACT_VERSION_MINOR 1
#define PERS_CONTRACT_VERSION_PATCH 0
#define PERS_CONTRACT_VERSION_STRING "0.1.0"

/* The case list above is complete for backend ABI versions up to this one. */
#define PERS_CONTRACT_CASES_ABI 2u

/* Size of one case's message, NUL included (longer messages are truncated). */
#define PERS_CONTRACT_MESSAGE_MAX 2048

#ifndef PERS_CONTRACT_API
#if defined(PERS_CONTRACT_STATIC)
#if defined(__GNUC__)
#define PERS_CONTRACT_API static __attribute__((unused))
#else
#define PERS_CONTRACT_API static
#endif
#else
#define PERS_CONTRACT_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pers_contract_outcome {
    PERS_CONTRACT_PASS = 0,
    PERS_CONTRACT_FAIL = 1,
    PERS_CONTRACT_NOT_SUPPORTED = 2
} pers_contract_outcome;

/* What an implementer provides. */
typedef struct pers_contract_target {
    const char *name; /* shown in the report, e.g. "sqlite" */
    /* Makes a FRESH, EMPTY store with desc (pass it on unchanged: the fake clock and the
       counting allocator are in it). Called once per case, from the calling thread. */
    pers_result (*open)(void *user, const pers_store_desc *desc, pers_store **out);
    /* Destroys a store open returned (pers_destroy; the case may have closed it already) and
       removes its data (files, keys). NULL: pers_destroy. */
    void (*teardown)(void *user, pers_store *store);
    void *user;
} pers_contract_target;

/* Zero means default for every field. */
typedef struct pers_contract_options {
    const char *filter;       /* run only the cases whose id starts with it; NULL: all */
    FILE *out;                /* where the report goes; default stdout */
    int quiet;                /* 1: print nothing */
    uint64_t seed;            /* PS-RANDOM-01's seed; 0: from the time (printed either way) */
    size_t random_steps;      /* PS-RANDOM-01's operations; default 3000 */
    unsigned threads;         /* PS-CONC-01/02's threads; default 4 */
    size_t concurrent_tasks;  /* PS-CONC-01's tasks; default 1000 */
    int watchdog_seconds;     /* per-case limit; default 30; negative: no watchdog */
} pers_contract_options;

typedef struct pers_contract_case_result {
    const char *id;           /* static, e.g. "PS-LEASE-04" */
    const char *title;        /* static */
    pers_contract_outcome outcome;
    char message[PERS_CONTRACT_MESSAGE_MAX]; /* FAIL: every failed check; NOT SUPPORTED: why */
} pers_contract_case_result;

typedef struct pers_contract_report {
    size_t passed, failed, not_supported;
    size_t case_count;                   /* cases run (after the filter) */
    uint64_t seed;                       /* the seed in force */
    pers_contract_case_result *results;  /* set by the caller, may be NULL: receives the first
                                            result_capacity cases in run order */
    size_t result_capacity;
} pers_contract_report;

/* Runs every case (or those the filter selects) against target. options and report may be
   NULL. The counts in report are reset first; results and result_capacity are kept. Returns
   the number of failed cases. */
PERS_CONTRACT_API int pers_contract_run(const pers_contract_target *target,
                                        const pers_contract_options *options,
                                        pers_contract_report *report);
/* The options in force, every default filled in (seed stays 0 when it was 0). */
PERS_CONTRACT_API pers_contract_options
pers_contract_resolved(const pers_contract_options *options);
/* The case list: ids and titles, in run order. NULL past the end. */
PERS_CONTRACT_API size_t pers_contract_case_count(void);
PERS_CONTRACT_API const char *pers_contract_case_id(size_t index);
PERS_CONTRACT_API const char *pers_contract_case_title(size_t index);
/* "PASS", "FAIL", "NOT SUPPORTED". */
PERS_CONTRACT_API const char *pers_contract_outcome_name(pers_contract_outcome outcome);
/* The stored result of a case by id, or NULL (not run, or beyond result_capacity). */
PERS_CONTRACT_API const pers_contract_case_result *
pers_contract_find_result(const pers_contract_report *report, const char *id);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_CONTRACT_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PERSISTENCE_CONTRACT_IMPLEMENTATION) && !defined(PERSISTENCE_CONTRACT_IMPLEMENTED)
#define PERSISTENCE_CONTRACT_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../../backends/memory.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#if defined(PERS_CONTRACT_STATIC)
#define PCTI_DEF static
#else
#define PCTI_DEF
#endif

/* The case list is reviewed for every backend ABI: a newer persistence.h stops the build here
   until the cases for its new methods are written and PERS_CONTRACT_CASES_ABI is raised. */
typedef char pcti_cases_cover_backend_abi[PERS_BACKEND_ABI_VERSION <= PERS_CONTRACT_CASES_ABI
                                              ? 1
                                              : -1];

#define PCTI_T0 INT64_C(1700000000000) /* the fake clock at the start of every case */
#define PCTI_ATTEMPTS 3u               /* default_max_attempts of every case's store */
#define PCTI_MIB 1048576u
#define PCTI_LONG INT64_C(3600000)     /* a lease that outlives any case */
#define PCTI_MAGIC ((size_t)0x70637469u)
#define PCTI_NOTE_SIZE 512
#define PCTI_WHAT 320

/* ---------------------------------------------------------------------------------------------
   Text helpers
   ------------------------------------------------------------------------------------------- */

static void pcti_vappend(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    if (vsnprintf(buf + used, size - used, fmt, ap) < 0)
        buf[used] = '\0';
}

static void pcti_append(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void pcti_append(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pcti_vappend(buf, size, fmt, ap);
    va_end(ap);
}

static void pcti_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (vsnprintf(buf, size, fmt, ap) < 0)
        buf[0] = '\0';
}

/* The enum name alone, e.g. "PERS_ERR_LEASE_LOST" (pers_result_string adds the description). */
static const char *pcti_rname(pers_result r)
{
    switch (r) {
#define PCTI_RNAME_(name, value, text)                                                             \
    case name:                                                                                     \
        return #name;
        PERS_RESULT_LIST(PCTI_RNAME_)
#undef PCTI_RNAME_
    default:
        break;
    }
    return "(unknown result code)";
}

static const char *pcti_sname(pers_task_state s)
{
    return pers_state_name(s);
}

static const struct {
    uint64_t bit;
    const char *name;
} pcti_cap_table[] = {
    {PERS_CAP_BATCH, "PERS_CAP_BATCH"},
    {PERS_CAP_STATS, "PERS_CAP_STATS"},
    {PERS_CAP_DEAD_LETTER, "PERS_CAP_DEAD_LETTER"},
    {PERS_CAP_TASK_RETENTION, "PERS_CAP_TASK_RETENTION"},
    {PERS_CAP_RESULTS, "PERS_CAP_RESULTS"},
    {PERS_CAP_SUBSCRIPTIONS, "PERS_CAP_SUBSCRIPTIONS"},
    {PERS_CAP_HEALTH, "PERS_CAP_HEALTH"},
};
#define PCTI_CAP_COUNT (sizeof pcti_cap_table / sizeof pcti_cap_table[0])

static void pcti_cap_names(uint64_t flags, char *buf, size_t size)
{
    size_t i;
    buf[0] = '\0';
    for (i = 0; i < PCTI_CAP_COUNT; i++)
        if (flags & pcti_cap_table[i].bit)
            pcti_append(buf, size, "%s%s", buf[0] ? ", " : "", pcti_cap_table[i].name);
}

/* A printable rendering of binary data for messages: at most 40 bytes, escapes as \xNN. */
static const char *pcti_show(const void *data, size_t len, char *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i, n = 0;
    if (data == NULL)
        return "(null)";
    for (i = 0; i < len && i < 40 && n + 6 < size; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"')
            buf[n++] = (char)p[i];
        else
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", (unsigned)p[i]);
    }
    if (i < len && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------------------------------
   Run, case and per-case context
   ------------------------------------------------------------------------------------------- */

typedef union pcti_block {
    struct {
        union pcti_block *prev, *next;
        size_t size;
        size_t magic;
    } h;
    long double align_ld; /* keeps the payload maximally aligned */
    double align_d;
    long long align_ll;
    void *align_p;
} pcti_block;

typedef struct pcti_watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int started;
    int stop;
    const char *case_id;   /* the case running, NULL between cases */
    const char *title;
    int64_t deadline_ms;   /* wall clock */
    int seconds;
    FILE *out;
    const char *name;
} pcti_watchdog;

typedef struct pcti_run {
    const pers_contract_target *target;
    pers_contract_options opt; /* resolved */
    char name[96];
    uint64_t seed;
    pcti_watchdog wd;
} pcti_run;

typedef struct pcti_ctx {
    pcti_run *run;
    pthread_mutex_t lock; /* the allocator's list and notes */
    int lock_ok;
    pcti_block *live;
    size_t live_bytes, live_blocks, allocs;
    char note[PCTI_NOTE_SIZE];
    int64_t now;          /* the fake clock (atomic) */
    pers_store_desc desc;
    char why[512];        /* the factory's open_message */
    pers_store *store;    /* the target's store */
    pers_store *ref;      /* the reference memory store (PS-RANDOM-01) */
    pers_caps caps;
} pcti_ctx;

typedef struct pcti_case {
    const char *id;
    const char *title;
    pers_contract_outcome outcome;
    char msg[PERS_CONTRACT_MESSAGE_MAX];
    pcti_run *run;
    pcti_ctx *x;
    pers_store *s;        /* == x->store */
} pcti_case;

static void pcti_fail(pcti_case *c, const char *fmt, ...) PLG_PRINTF(2, 3);
static void pcti_fail(pcti_case *c, const char *fmt, ...)
{
    va_list ap;
    if (c->outcome != PERS_CONTRACT_FAIL) {
        c->outcome = PERS_CONTRACT_FAIL;
        c->msg[0] = '\0';
    } else {
        pcti_append(c->msg, sizeof c->msg, "; ");
    }
    va_start(ap, fmt);
    pcti_vappend(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

static void pcti_unsupported(pcti_case *c, const char *fmt, ...) PLG_PRINTF(2, 3);
static void pcti_unsupported(pcti_case *c, const char *fmt, ...)
{
    va_list ap;
    if (c->outcome == PERS_CONTRACT_FAIL)
        return;
    c->outcome = PERS_CONTRACT_NOT_SUPPORTED;
    c->msg[0] = '\0';
    va_start(ap, fmt);
    pcti_vappend(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

static int pcti_failed(const pcti_case *c)
{
    return c->outcome == PERS_CONTRACT_FAIL;
}

/* ---------------------------------------------------------------------------------------------
   Fake clock, counting allocator
   ------------------------------------------------------------------------------------------- */

static int64_t pcti_clock_now(void *user)
{
    return __atomic_load_n(&((pcti_ctx *)user)->now, __ATOMIC_SEQ_CST);
}

static int64_t pcti_now(pcti_case *c)
{
    return pcti_clock_now(c->x);
}

static void pcti_advance(pcti_case *c, int64_t ms)
{
    __atomic_add_fetch(&c->x->now, ms, __ATOMIC_SEQ_CST);
}

static void pcti_note_locked(pcti_ctx *x, const char *fmt, ...) PLG_PRINTF(2, 3);
static void pcti_note_locked(pcti_ctx *x, const char *fmt, ...)
{
    char one[256];
    va_list ap;
    va_start(ap, fmt);
    pcti_vformat(one, sizeof one, fmt, ap);
    va_end(ap);
    if (strstr(x->note, one) != NULL)
        return;
    if (x->note[0] != '\0')
        pcti_append(x->note, sizeof x->note, "; ");
    pcti_append(x->note, sizeof x->note, "%s", one);
}

static void *pcti_alloc(size_t size, void *user)
{
    pcti_ctx *x = (pcti_ctx *)user;
    pcti_block *b;
    if (size > (size_t)-1 - sizeof(pcti_block))
        return NULL;
    b = (pcti_block *)malloc(sizeof(pcti_block) + size);
    if (b == NULL)
        return NULL;
    b->h.size = size;
    b->h.magic = PCTI_MAGIC;
    b->h.prev = NULL;
    pthread_mutex_lock(&x->lock);
    b->h.next = x->live;
    if (x->live != NULL)
        x->live->h.prev = b;
    x->live = b;
    x->live_bytes += size;
    x->live_blocks++;
    x->allocs++;
    pthread_mutex_unlock(&x->lock);
    return (void *)(b + 1);
}

static void pcti_free(void *ptr, size_t size, void *user)
{
    pcti_ctx *x = (pcti_ctx *)user;
    pcti_block *b;
    if (ptr == NULL)
        return;
    b = (pcti_block *)ptr - 1;
    pthread_mutex_lock(&x->lock);
    if (b->h.magic != PCTI_MAGIC) {
        pcti_note_locked(x, "a block not allocated by the desc's allocator (or already freed) "
                            "was freed through it");
        pthread_mutex_unlock(&x->lock);
        return;
    }
    if (b->h.size != size)
        pcti_note_locked(x, "a block of %lu bytes was freed with size %lu (the allocator's free "
                            "must get the size that was allocated)",
                         (unsigned long)b->h.size, (unsigned long)size);
    if (b->h.prev != NULL)
        b->h.prev->h.next = b->h.next;
    else
        x->live = b->h.next;
    if (b->h.next != NULL)
        b->h.next->h.prev = b->h.prev;
    x->live_bytes -= b->h.size;
    x->live_blocks--;
    b->h.magic = 0;
    pthread_mutex_unlock(&x->lock);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
   Watchdog
   ------------------------------------------------------------------------------------------- */

static int64_t pcti_wall_ms(void)
{
    struct timeval tv;
    if (gettimeofday(&tv, NULL) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000 + (int64_t)tv.tv_usec / 1000;
}

static void *pcti_watchdog_main(void *arg)
{
    pcti_watchdog *w = (pcti_watchdog *)arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec until;
        int64_t now = pcti_wall_ms(), wake = now + 1000;
        if (w->case_id != NULL && now >= w->deadline_ms) {
            if (w->out != NULL) {
                fprintf(w->out,
                        "persistence contract %s: WATCHDOG: case %s (%s) is still running after "
                        "%d s; aborting\n",
                        w->name, w->case_id, w->title, w->seconds);
                fflush(w->out);
            }
            if (w->out != stderr)
                fprintf(stderr,
                        "persistence contract %s: WATCHDOG: case %s (%s) is still running after "
                        "%d s; aborting\n",
                        w->name, w->case_id, w->title, w->seconds);
            fflush(stderr);
            abort();
        }
        if (w->case_id != NULL && w->deadline_ms < wake)
            wake = w->deadline_ms;
        until.tv_sec = (time_t)(wake / 1000);
        until.tv_nsec = (long)(wake % 1000) * 1000000L;
        (void)pthread_cond_timedwait(&w->cond, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void pcti_watchdog_start(pcti_run *run, FILE *out)
{
    pcti_watchdog *w = &run->wd;
    memset(w, 0, sizeof *w);
    if (run->opt.watchdog_seconds <= 0)
        return;
    w->seconds = run->opt.watchdog_seconds;
    w->out = out;
    w->name = run->name;
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        return;
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        return;
    }
    if (pthread_create(&w->thread, NULL, pcti_watchdog_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        return;
    }
    w->started = 1;
}

static void pcti_watchdog_arm(pcti_run *run, const char *id, const char *title)
{
    pcti_watchdog *w = &run->wd;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->case_id = id;
    w->title = title;
    w->deadline_ms = pcti_wall_ms() + (int64_t)w->seconds * 1000;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void pcti_watchdog_disarm(pcti_run *run)
{
    pcti_watchdog *w = &run->wd;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->case_id = NULL;
    pthread_mutex_unlock(&w->lock);
}

static void pcti_watchdog_stop(pcti_run *run)
{
    pcti_watchdog *w = &run->wd;
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->started = 0;
}

/* ---------------------------------------------------------------------------------------------
   Checks. Every one records a failure saying what was expected and what came back; `what`
   names the step and the rule it checks.
   ------------------------------------------------------------------------------------------- */

static int pcti_has(const pcti_case *c, uint64_t cap)
{
    return (c->x->caps.flags & cap) == cap;
}

/* got == want, else a failure with pers_result_string and pers_errmsg of the store. */
static int pcti_rc(pcti_case *c, pers_result got, pers_result want, const char *fmt, ...)
    PLG_PRINTF(4, 5);
static int pcti_rc(pcti_case *c, pers_result got, pers_result want, const char *fmt, ...)
{
    char what[PCTI_WHAT];
    const char *m;
    va_list ap;
    if (got == want)
        return 1;
    m = pers_errmsg(c->s); /* before anything else touches the store */
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (got == PERS_OK)
        pcti_fail(c, "%s: expected %s, got PERS_OK", what, pcti_rname(want));
    else
        pcti_fail(c, "%s: expected %s, got %s (%s)", what, pcti_rname(want),
                  pers_result_string(got), m);
    return 0;
}

static int pcti_eq_i64(pcti_case *c, int64_t got, int64_t want, const char *fmt, ...)
    PLG_PRINTF(4, 5);
static int pcti_eq_i64(pcti_case *c, int64_t got, int64_t want, const char *fmt, ...)
{
    char what[PCTI_WHAT];
    va_list ap;
    if (got == want)
        return 1;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    pcti_fail(c, "%s: expected %lld, got %lld", what, (long long)want, (long long)got);
    return 0;
}

static int pcti_eq_u64(pcti_case *c, uint64_t got, uint64_t want, const char *fmt, ...)
    PLG_PRINTF(4, 5);
static int pcti_eq_u64(pcti_case *c, uint64_t got, uint64_t want, const char *fmt, ...)
{
    char what[PCTI_WHAT];
    va_list ap;
    if (got == want)
        return 1;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    pcti_fail(c, "%s: expected %llu, got %llu", what, (unsigned long long)want,
              (unsigned long long)got);
    return 0;
}

static int pcti_eq_str(pcti_case *c, const char *got, const char *want, const char *fmt, ...)
    PLG_PRINTF(4, 5);
static int pcti_eq_str(pcti_case *c, const char *got, const char *want, const char *fmt, ...)
{
    char what[PCTI_WHAT], g[200], w[200];
    va_list ap;
    if (got == NULL && want == NULL)
        return 1;
    if (got != NULL && want != NULL && strcmp(got, want) == 0)
        return 1;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    pcti_fail(c, "%s: expected %s%s%s, got %s%s%s", what, want ? "\"" : "",
              want ? pcti_show(want, strlen(want), w, sizeof w) : "NULL", want ? "\"" : "",
              got ? "\"" : "", got ? pcti_show(got, strlen(got), g, sizeof g) : "NULL",
              got ? "\"" : "");
    return 0;
}

static int pcti_eq_state(pcti_case *c, pers_task_state got, pers_task_state want,
                         const char *fmt, ...) PLG_PRINTF(4, 5);
static int pcti_eq_state(pcti_case *c, pers_task_state got, pers_task_state want,
                         const char *fmt, ...)
{
    char what[PCTI_WHAT];
    va_list ap;
    if (got == want)
        return 1;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    pcti_fail(c, "%s: expected state %s, got %s (%d)", what, pcti_sname(want), pcti_sname(got),
              (int)got);
    return 0;
}

/* Data of a returned payload or result: the bytes, and the extra NUL of S11. */
static int pcti_eq_data(pcti_case *c, const void *got, size_t got_len, const void *want,
                        size_t want_len, const char *fmt, ...) PLG_PRINTF(6, 7);
static int pcti_eq_data(pcti_case *c, const void *got, size_t got_len, const void *want,
                        size_t want_len, const char *fmt, ...)
{
    char what[PCTI_WHAT], g[200], w[200];
    va_list ap;
    size_t i;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (got == NULL) {
        pcti_fail(c, "%s: expected %lu bytes, got a NULL pointer (S11: never NULL when filled)",
                  what, (unsigned long)want_len);
        return 0;
    }
    if (got_len != want_len) {
        pcti_fail(c, "%s: expected %lu bytes \"%s\", got %lu bytes \"%s\"", what,
                  (unsigned long)want_len, pcti_show(want, want_len, w, sizeof w),
                  (unsigned long)got_len, pcti_show(got, got_len, g, sizeof g));
        return 0;
    }
    if (want_len > 0 && memcmp(got, want, want_len) != 0) {
        for (i = 0; i < want_len && ((const unsigned char *)got)[i] ==
                                        ((const unsigned char *)want)[i];
             i++)
            ;
        pcti_fail(c, "%s: the %lu bytes differ first at byte %lu: expected 0x%02x, got 0x%02x",
                  what, (unsigned long)want_len, (unsigned long)i,
                  (unsigned)((const unsigned char *)want)[i],
                  (unsigned)((const unsigned char *)got)[i]);
        return 0;
    }
    if (((const char *)got)[want_len] != '\0') {
        pcti_fail(c, "%s: the %lu bytes are not followed by a NUL byte (S11)", what,
                  (unsigned long)want_len);
        return 0;
    }
    return 1;
}

static int pcti_true(pcti_case *c, int cond, const char *fmt, ...) PLG_PRINTF(3, 4);
static int pcti_true(pcti_case *c, int cond, const char *fmt, ...)
{
    char what[PCTI_WHAT * 2];
    va_list ap;
    if (cond)
        return 1;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    pcti_fail(c, "%s", what);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   Operation helpers
   ------------------------------------------------------------------------------------------- */

static pers_enqueue_req pcti_req(const char *tenant, const char *queue, const char *text)
{
    pers_enqueue_req r;
    memset(&r, 0, sizeof r);
    r.tenant = tenant;
    r.queue = queue;
    r.payload = text;
    r.payload_len = text != NULL ? strlen(text) : 0;
    return r;
}

/* An enqueue that must create a new task; its id goes to id_out (may be NULL). */
static int pcti_enqueue(pcti_case *c, const pers_enqueue_req *r, char *id_out, const char *what)
{
    pers_enqueue_res res;
    pers_result rc = pers_enqueue(c->s, r, &res);
    if (id_out != NULL)
        id_out[0] = '\0';
    if (!pcti_rc(c, rc, PERS_OK, "%s", what))
        return 0;
    if (res.duplicate != 0) {
        pcti_fail(c, "%s: expected a new task (duplicate 0), got duplicate %d of \"%s\"", what,
                  res.duplicate, res.task_id);
        return 0;
    }
    if (id_out != NULL)
        memcpy(id_out, res.task_id, sizeof res.task_id);
    return 1;
}

/* Enqueues a task with a caller-supplied id whose payload is the id's text. */
static int pcti_put(pcti_case *c, const char *tenant, const char *queue, const char *id,
                    int32_t priority, int64_t delay_ms, uint32_t max_attempts)
{
    char what[PCTI_WHAT];
    pers_enqueue_req r = pcti_req(tenant, queue, id);
    r.task_id = id;
    r.priority = priority;
    r.delay_ms = delay_ms;
    r.max_attempts = max_attempts;
    snprintf(what, sizeof what, "enqueue of task \"%s\" in %s/%s", id, tenant, queue);
    return pcti_enqueue(c, &r, NULL, what);
}

static pers_claim_req pcti_claim_req(const char *tenant, const char *const *queues, size_t nq,
                                     const char *worker, int64_t lease_ms, size_t max)
{
    pers_claim_req q;
    memset(&q, 0, sizeof q);
    q.tenant = tenant;
    q.queues = queues;
    q.queue_count = nq;
    q.worker_id = worker;
    q.lease_ms = lease_ms;
    q.max_tasks = max;
    return q;
}

/* One claim; tasks has room for max. Returns the count, or -1 after recording a failure. */
static int pcti_claim(pcti_case *c, const char *tenant, const char *const *queues, size_t nq,
                      const char *worker, int64_t lease_ms, size_t max, pers_task *tasks,
                      pers_claim_res *res, const char *what)
{
    pers_claim_req q = pcti_claim_req(tenant, queues, nq, worker, lease_ms, max);
    pers_result rc = pers_claim(c->s, &q, tasks, res);
    if (!pcti_rc(c, rc, PERS_OK, "%s", what))
        return -1;
    return (int)res->count;
}

/* Claims one task of one queue and expects it to be want_id. The task goes to out (the caller
   frees it) when given and it is the one expected; otherwise it is freed. */
static int pcti_take(pcti_case *c, const char *tenant, const char *queue, const char *worker,
                     int64_t lease_ms, const char *want_id, pers_task *out, const char *what)
{
    const char *queues[1];
    pers_task t;
    pers_claim_res res;
    int n;
    queues[0] = queue;
    n = pcti_claim(c, tenant, queues, 1, worker, lease_ms, 1, &t, &res, what);
    if (n < 0)
        return 0;
    if (n == 0) {
        pcti_fail(c, "%s: expected task \"%s\" from %s/%s, got nothing (next_due_ms %lld)", what,
                  want_id, tenant, queue, (long long)res.next_due_ms);
        return 0;
    }
    if (strcmp(t.id, want_id) != 0) {
        pcti_fail(c, "%s: expected task \"%s\" from %s/%s, got \"%s\" (state %s, priority %ld)",
                  what, want_id, tenant, queue, t.id, pcti_sname(t.state), (long)t.priority);
        pers_task_free(c->s, &t);
        return 0;
    }
    if (t.lease_token == 0) {
        pcti_fail(c, "%s: task \"%s\" was claimed with lease token 0 (S4: 0 is never a token)",
                  what, t.id);
    }
    if (out != NULL)
        *out = t;
    else
        pers_task_free(c->s, &t);
    return 1;
}

/* A claim of the listed queues that must return nothing, with next_due_ms = want_next_due. */
static void pcti_none_of(pcti_case *c, const char *tenant, const char *const *queues, size_t nq,
                         int64_t want_next_due, const char *what)
{
    pers_task t[4];
    pers_claim_res res;
    char ids[200];
    size_t i;
    int n = pcti_claim(c, tenant, queues, nq, "w-probe", PCTI_LONG, 4, t, &res, what);
    if (n < 0)
        return;
    if (n > 0) {
        ids[0] = '\0';
        for (i = 0; i < (size_t)n; i++)
            pcti_append(ids, sizeof ids, "%s\"%s\" (%s)", i ? ", " : "", t[i].id,
                        pcti_sname(t[i].state));
        pcti_fail(c, "%s: expected no task from %s/%s%s, got %d: %s", what, tenant, queues[0],
                  nq > 1 ? ",..." : "", n, ids);
        pers_tasks_free(c->s, t, (size_t)n);
        return;
    }
    pcti_eq_i64(c, res.next_due_ms, want_next_due, "%s: next_due_ms (S18)", what);
}

static void pcti_none(pcti_case *c, const char *tenant, const char *queue, int64_t want_next_due,
                      const char *what)
{
    const char *queues[1];
    queues[0] = queue;
    pcti_none_of(c, tenant, queues, 1, want_next_due, what);
}

/* get_task that must succeed; the caller frees *t. */
static int pcti_get(pcti_case *c, const char *tenant, const char *id, pers_task *t,
                    const char *what)
{
    pers_result rc = pers_get_task(c->s, tenant, id, t);
    return pcti_rc(c, rc, PERS_OK, "%s: get_task(%s, \"%s\")", what, tenant, id);
}

/* get_task that must answer want (not PERS_OK); a task returned anyway is freed. */
static int pcti_get_rc(pcti_case *c, const char *tenant, const char *id, pers_result want,
                       const char *fmt, ...) PLG_PRINTF(5, 6);
static int pcti_get_rc(pcti_case *c, const char *tenant, const char *id, pers_result want,
                       const char *fmt, ...)
{
    char what[PCTI_WHAT];
    pers_task t;
    pers_result rc = pers_get_task(c->s, tenant, id, &t);
    va_list ap;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == PERS_OK) {
        pcti_fail(c, "%s: expected %s, got PERS_OK and task \"%s\" of tenant \"%s\"", what,
                  pcti_rname(want), t.id, t.tenant);
        pers_task_free(c->s, &t);
        return 0;
    }
    return pcti_rc(c, rc, want, "%s", what);
}

/* A claim (max_tasks 1) that must answer want (not PERS_OK); a task returned anyway is freed. */
static int pcti_claim_rc(pcti_case *c, const pers_claim_req *q, pers_result want,
                         const char *fmt, ...) PLG_PRINTF(4, 5);
static int pcti_claim_rc(pcti_case *c, const pers_claim_req *q, pers_result want,
                         const char *fmt, ...)
{
    char what[PCTI_WHAT];
    pers_task t;
    pers_claim_res res;
    pers_result rc = pers_claim(c->s, q, &t, &res);
    va_list ap;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == PERS_OK) {
        pcti_fail(c, "%s: expected %s, got PERS_OK (%lu tasks)", what, pcti_rname(want),
                  (unsigned long)res.count);
        pers_tasks_free(c->s, &t, res.count);
        return 0;
    }
    return pcti_rc(c, rc, want, "%s", what);
}

/* The task's state and attempts (attempts < 0: not checked). */
static int pcti_expect_task(pcti_case *c, const char *tenant, const char *id,
                            pers_task_state state, long attempts, const char *what)
{
    pers_task t;
    int ok;
    if (!pcti_get(c, tenant, id, &t, what))
        return 0;
    ok = pcti_eq_state(c, t.state, state, "%s: task \"%s\"", what, id);
    if (attempts >= 0)
        ok &= pcti_eq_i64(c, (int64_t)t.attempts, attempts, "%s: attempts of task \"%s\" (S6)",
                          what, id);
    pers_task_free(c->s, &t);
    return ok;
}

static pers_lease pcti_lease(const char *tenant, const char *id, uint64_t token)
{
    pers_lease l;
    l.tenant = tenant;
    l.task_id = id;
    l.token = token;
    return l;
}

static pers_completion pcti_done(const char *text, int failed)
{
    pers_completion d;
    d.failed = failed;
    d.data = text;
    d.data_len = text != NULL ? strlen(text) : 0;
    return d;
}

static pers_result pcti_complete(pcti_case *c, const char *tenant, const char *id,
                                 uint64_t token, const char *text, int failed)
{
    pers_lease l = pcti_lease(tenant, id, token);
    pers_completion d = pcti_done(text, failed);
    return pers_complete(c->s, &l, &d);
}

static pers_result pcti_nack(pcti_case *c, const char *tenant, const char *id, uint64_t token,
                             int64_t delay, const char *reason, pers_task_state *state)
{
    pers_lease l = pcti_lease(tenant, id, token);
    return pers_nack(c->s, &l, delay, reason, state);
}

static pers_result pcti_abandon(pcti_case *c, const char *tenant, const char *id,
                                uint64_t token)
{
    pers_lease l = pcti_lease(tenant, id, token);
    return pers_abandon(c->s, &l);
}

static pers_result pcti_extend(pcti_case *c, const char *tenant, const char *id, uint64_t token,
                               int64_t lease_ms, int64_t *expires)
{
    pers_lease l = pcti_lease(tenant, id, token);
    return pers_extend_lease(c->s, &l, lease_ms, expires);
}

/* Every worker operation with this token must answer `want` (complete: want_complete). */
static void pcti_every_op(pcti_case *c, const char *tenant, const char *id, uint64_t token,
                          pers_result want, pers_result want_complete, const char *what)
{
    pers_task_state st;
    pcti_rc(c, pcti_extend(c, tenant, id, token, 1000, NULL), want,
            "%s: extend_lease(\"%s\", token %llu)", what, id, (unsigned long long)token);
    pcti_rc(c, pcti_abandon(c, tenant, id, token), want, "%s: abandon(\"%s\", token %llu)", what,
            id, (unsigned long long)token);
    pcti_rc(c, pcti_nack(c, tenant, id, token, 0, "contract nack", &st), want,
            "%s: nack(\"%s\", token %llu)", what, id, (unsigned long long)token);
    pcti_rc(c, pcti_complete(c, tenant, id, token, "contract result", 0), want_complete,
            "%s: complete(\"%s\", token %llu)", what, id, (unsigned long long)token);
    pcti_rc(c, pcti_complete(c, tenant, id, token, "contract error", 1), want_complete,
            "%s: complete(\"%s\", token %llu, failed = 1)", what, id, (unsigned long long)token);
}

/* Exact statistics of one (tenant, queue), when the backend declares PERS_CAP_STATS. */
static void pcti_stats(pcti_case *c, const char *tenant, const char *queue, uint64_t scheduled,
                       uint64_t ready, uint64_t leased, uint64_t completed, uint64_t failed,
                       uint64_t dead, const char *what)
{
    pers_stats st;
    pers_result rc;
    if (!pcti_has(c, PERS_CAP_STATS))
        return;
    rc = pers_queue_stats(c->s, tenant, queue, &st);
    if (!pcti_rc(c, rc, PERS_OK, "%s: queue_stats(%s, %s)", what, tenant, queue))
        return;
    if (st.scheduled != scheduled || st.ready != ready || st.leased != leased ||
        st.completed != completed || st.failed != failed || st.dead != dead)
        pcti_fail(c,
                  "%s: queue_stats(%s, %s) (S17): expected scheduled %llu, ready %llu, leased "
                  "%llu, completed %llu, failed %llu, dead %llu; got %llu, %llu, %llu, %llu, "
                  "%llu, %llu",
                  what, tenant, queue, (unsigned long long)scheduled, (unsigned long long)ready,
                  (unsigned long long)leased, (unsigned long long)completed,
                  (unsigned long long)failed, (unsigned long long)dead,
                  (unsigned long long)st.scheduled, (unsigned long long)st.ready,
                  (unsigned long long)st.leased, (unsigned long long)st.completed,
                  (unsigned long long)st.failed, (unsigned long long)st.dead);
}

/* get_result must be NOT_FOUND (when the backend declares PERS_CAP_RESULTS). */
static void pcti_no_result(pcti_case *c, const char *tenant, const char *id, const char *what)
{
    pers_task_result r;
    pers_result rc;
    if (!pcti_has(c, PERS_CAP_RESULTS))
        return;
    rc = pers_get_result(c->s, tenant, id, &r);
    if (rc == PERS_OK)
        pers_task_result_free(c->s, &r);
    pcti_rc(c, rc, PERS_ERR_NOT_FOUND, "%s: get_result(%s, \"%s\") (S12)", what, tenant, id);
}

/* get_result must return this state and data (when the backend declares PERS_CAP_RESULTS). */
static void pcti_result_is(pcti_case *c, const char *tenant, const char *id,
                           pers_task_state state, const void *data, size_t len,
                           const char *what)
{
    pers_task_result r;
    pers_result rc;
    if (!pcti_has(c, PERS_CAP_RESULTS))
        return;
    rc = pers_get_result(c->s, tenant, id, &r);
    if (!pcti_rc(c, rc, PERS_OK, "%s: get_result(%s, \"%s\") (S12)", what, tenant, id))
        return;
    pcti_eq_state(c, r.state, state, "%s: get_result(\"%s\").state (S12)", what, id);
    pcti_eq_data(c, r.data, r.data_len, data, len, "%s: get_result(\"%s\").data (S12, S11)",
                 what, id);
    pcti_eq_str(c, r.task_id, id, "%s: get_result(\"%s\").task_id", what, id);
    pcti_eq_str(c, r.tenant, tenant, "%s: get_result(\"%s\").tenant", what, id);
    pers_task_result_free(c->s, &r);
}

/* Deterministic bytes for payloads (splitmix64). */
static uint64_t pcti_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint32_t pcti_below(uint64_t *state, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(pcti_rand(state) % n);
}

static void pcti_fill(unsigned char *buf, size_t len, uint64_t seed)
{
    size_t i;
    uint64_t s = seed, v = 0;
    for (i = 0; i < len; i++) {
        if (i % 8 == 0)
            v = pcti_rand(&s);
        buf[i] = (unsigned char)(v >> (8 * (i % 8)));
    }
}

/* =============================================================================================
   Cases. Tenants "acme" and "globex", queues "email", "sms", "push"; the fake clock starts at
   PCTI_T0; the store's default_max_attempts is PCTI_ATTEMPTS.
   ============================================================================================= */

/* PS-TASK-01 */
static void pcti_task_01(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", "hello");
    pers_task t;
    char id[PERS_ID_MAX + 1];
    int64_t t0 = pcti_now(c);
    r.priority = 7;
    r.max_attempts = 4;
    r.idempotency_key = "key-1";
    r.task_id = "task-1";
    if (!pcti_enqueue(c, &r, id, "enqueue of task-1"))
        return;
    pcti_eq_str(c, id, "task-1", "S9: the id enqueue returns for a caller-supplied id");
    if (pcti_get(c, "acme", "task-1", &t, "a ready task")) {
        pcti_eq_str(c, t.id, "task-1", "get_task: id");
        pcti_eq_str(c, t.tenant, "acme", "get_task: tenant");
        pcti_eq_str(c, t.queue, "email", "get_task: queue");
        pcti_eq_str(c, t.worker_id, "", "get_task: worker_id of a task never claimed");
        pcti_eq_str(c, t.idempotency_key, "key-1", "get_task: idempotency_key");
        pcti_eq_state(c, t.state, PERS_STATE_READY, "get_task of a task without delay (S1, S2)");
        pcti_eq_i64(c, t.priority, 7, "get_task: priority");
        pcti_eq_u64(c, t.attempts, 0, "get_task: attempts before any claim (S6)");
        pcti_eq_u64(c, t.max_attempts, 4, "get_task: max_attempts");
        pcti_eq_u64(c, t.lease_token, 0, "get_task: lease_token (always 0 in get_task)");
        pcti_eq_i64(c, t.created_ms, t0, "get_task: created_ms (S16: the store's clock)");
        pcti_eq_i64(c, t.due_ms, t0, "get_task: due_ms of a task without delay (S2)");
        pcti_eq_i64(c, t.lease_expires_ms, 0, "get_task: lease_expires_ms while not leased");
        pcti_eq_i64(c, t.finished_ms, 0, "get_task: finished_ms while not finished");
        pcti_eq_data(c, t.payload, t.payload_len, "hello", 5, "get_task: payload");
        pcti_eq_str(c, t.last_error, NULL, "get_task: last_error before any failure");
        pers_task_free(c->s, &t);
    }

    r = pcti_req("acme", "email", "later");
    r.delay_ms = 1500;
    r.task_id = "task-2";
    if (pcti_enqueue(c, &r, NULL, "enqueue of task-2 with delay_ms 1500") &&
        pcti_get(c, "acme", "task-2", &t, "a delayed task")) {
        pcti_eq_state(c, t.state, PERS_STATE_SCHEDULED, "get_task of a delayed task (S1, S2)");
        pcti_eq_i64(c, t.due_ms, t0 + 1500, "get_task: due_ms = now + delay_ms (S2)");
        pcti_eq_str(c, t.idempotency_key, "", "get_task: idempotency_key of a task without one");
        pcti_eq_u64(c, t.max_attempts, PCTI_ATTEMPTS,
                    "get_task: max_attempts 0 in the request means the store's default (S6)");
        pers_task_free(c->s, &t);
    }

    pcti_get_rc(c, "acme", "no-such-task", PERS_ERR_NOT_FOUND,
            "get_task of an id never enqueued");

    pcti_advance(c, 10);
    if (pcti_take(c, "acme", "email", "worker-1", 10000, "task-1", &t, "claim of task-1")) {
        pcti_eq_state(c, t.state, PERS_STATE_LEASED, "claim: the state of the task returned");
        pcti_eq_str(c, t.worker_id, "worker-1", "claim: worker_id of the task returned");
        pcti_eq_u64(c, t.attempts, 1, "claim: attempts (S6: a claim adds 1)");
        pcti_eq_i64(c, t.lease_expires_ms, t0 + 10 + 10000,
                    "claim: lease_expires_ms = now + lease_ms (S4)");
        pcti_eq_data(c, t.payload, t.payload_len, "hello", 5, "claim: payload");
        pcti_eq_str(c, t.idempotency_key, "key-1", "claim: idempotency_key");
        pcti_eq_i64(c, t.created_ms, t0, "claim: created_ms");
        pers_task_free(c->s, &t);
    }
    if (pcti_get(c, "acme", "task-1", &t, "a leased task")) {
        pcti_eq_state(c, t.state, PERS_STATE_LEASED, "get_task of a claimed task");
        pcti_eq_str(c, t.worker_id, "worker-1", "get_task: worker_id of the last claimer");
        pcti_eq_u64(c, t.lease_token, 0, "get_task: lease_token (always 0 in get_task)");
        pcti_eq_i64(c, t.lease_expires_ms, t0 + 10 + 10000, "get_task: lease_expires_ms (S4)");
        pers_task_free(c->s, &t);
    }
}

/* PS-PAYLOAD-01 */
static void pcti_payload_01(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", NULL);
    pers_task t;
    static const char nothing[1] = {'x'};
    r.task_id = "empty-null";
    if (!pcti_enqueue(c, &r, NULL, "S11: enqueue of an empty payload given as NULL"))
        return;
    r.payload = nothing;
    r.payload_len = 0;
    r.task_id = "empty-ptr";
    if (!pcti_enqueue(c, &r, NULL, "S11: enqueue of an empty payload given as a pointer"))
        return;
    if (pcti_get(c, "acme", "empty-null", &t, "S11")) {
        pcti_eq_data(c, t.payload, t.payload_len, "", 0, "get_task: empty payload (S11)");
        pers_task_free(c->s, &t);
    }
    if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "empty-null", &t, "claim")) {
        pcti_eq_data(c, t.payload, t.payload_len, "", 0, "claim: empty payload (S11)");
        pcti_rc(c, pcti_complete(c, "acme", t.id, t.lease_token, NULL, 0), PERS_OK,
                "complete with an empty result");
        pcti_result_is(c, "acme", "empty-null", PERS_STATE_COMPLETED, "", 0, "empty result");
        pers_task_free(c->s, &t);
    }
    if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "empty-ptr", &t, "claim")) {
        pcti_eq_data(c, t.payload, t.payload_len, "", 0, "claim: empty payload (S11)");
        pers_task_free(c->s, &t);
    }
}

/* PS-PAYLOAD-02 */
static void pcti_payload_02(pcti_case *c)
{
    unsigned char bin[300], err[64];
    pers_enqueue_req r = pcti_req("acme", "email", NULL);
    pers_task t;
    pers_lease l;
    pers_completion d;
    size_t i;
    for (i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i < 256 ? 255 - i : i * 7);
    bin[0] = 0;
    bin[150] = 0;
    bin[sizeof bin - 1] = 0;
    for (i = 0; i < sizeof err; i++)
        err[i] = (unsigned char)(i % 3 == 0 ? 0 : 0x80 + i);
    r.payload = bin;
    r.payload_len = sizeof bin;
    r.task_id = "bin-1";
    if (!pcti_enqueue(c, &r, NULL, "S11: enqueue of 300 binary bytes"))
        return;
    r.task_id = "bin-2";
    if (!pcti_enqueue(c, &r, NULL, "S11: enqueue of 300 binary bytes"))
        return;
    if (pcti_get(c, "acme", "bin-1", &t, "S11")) {
        pcti_eq_data(c, t.payload, t.payload_len, bin, sizeof bin, "get_task: binary payload");
        pers_task_free(c->s, &t);
    }
    if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "bin-1", &t, "claim")) {
        pcti_eq_data(c, t.payload, t.payload_len, bin, sizeof bin, "claim: binary payload");
        l = pcti_lease("acme", "bin-1", t.lease_token);
        d.failed = 0;
        d.data = bin + 100;
        d.data_len = 200;
        pcti_rc(c, pers_complete(c->s, &l, &d), PERS_OK, "complete with a binary result");
        pcti_result_is(c, "acme", "bin-1", PERS_STATE_COMPLETED, bin + 100, 200,
                       "binary result with NUL bytes");
        pers_task_free(c->s, &t);
    }
    if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "bin-2", &t, "claim")) {
        l = pcti_lease("acme", "bin-2", t.lease_token);
        d.failed = 1;
        d.data = err;
        d.data_len = sizeof err;
        pcti_rc(c, pers_complete(c->s, &l, &d), PERS_OK, "complete (failed) with a binary error");
        pcti_result_is(c, "acme", "bin-2", PERS_STATE_FAILED, err, sizeof err,
                       "binary error with NUL bytes");
        pers_task_free(c->s, &t);
    }
}

/* The largest payload this case's store accepts: 1 MiB, or the backend's lower limit. */
static size_t pcti_limit(pcti_case *c)
{
    pers_store_desc d = pers_store_resolved(c->s);
    uint64_t n = d.max_payload_bytes;
    if (n == 0 || n > PCTI_MIB)
        n = PCTI_MIB;
    return (size_t)n;
}

/* PS-PAYLOAD-03 */
static void pcti_payload_03(pcti_case *c)
{
    size_t n = pcti_limit(c);
    unsigned char *big = (unsigned char *)malloc(n), *res = (unsigned char *)malloc(n);
    pers_enqueue_req r = pcti_req("acme", "email", NULL);
    pers_task t;
    pers_lease l;
    pers_completion d;
    if (big == NULL || res == NULL) {
        pcti_fail(c, "the suite ran out of memory for %lu bytes", (unsigned long)n);
        free(big);
        free(res);
        return;
    }
    pcti_fill(big, n, 42);
    pcti_fill(res, n, 43);
    r.payload = big;
    r.payload_len = n;
    r.task_id = "big";
    if (pcti_enqueue(c, &r, NULL, "S11: enqueue of a payload of max_payload_bytes")) {
        if (pcti_get(c, "acme", "big", &t, "S11")) {
            pcti_eq_data(c, t.payload, t.payload_len, big, n, "get_task: %lu-byte payload",
                         (unsigned long)n);
            pers_task_free(c->s, &t);
        }
        if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "big", &t, "claim")) {
            pcti_eq_data(c, t.payload, t.payload_len, big, n, "claim: %lu-byte payload",
                         (unsigned long)n);
            l = pcti_lease("acme", "big", t.lease_token);
            d.failed = 0;
            d.data = res;
            d.data_len = n;
            if (pcti_rc(c, pers_complete(c->s, &l, &d), PERS_OK,
                        "S11: complete with a result of max_payload_bytes"))
                pcti_result_is(c, "acme", "big", PERS_STATE_COMPLETED, res, n,
                               "result of max_payload_bytes");
            pers_task_free(c->s, &t);
        }
    }
    free(big);
    free(res);
}

/* PS-PAYLOAD-04 */
static void pcti_payload_04(pcti_case *c)
{
    size_t n = pcti_limit(c) + 1;
    unsigned char *big = (unsigned char *)malloc(n);
    pers_enqueue_req r = pcti_req("acme", "email", NULL);
    pers_enqueue_res res;
    pers_task t;
    pers_lease l;
    pers_completion d;
    if (big == NULL) {
        pcti_fail(c, "the suite ran out of memory for %lu bytes", (unsigned long)n);
        return;
    }
    memset(big, 'x', n);
    r.payload = big;
    r.payload_len = n;
    r.task_id = "too-big";
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_TOO_LARGE,
            "S11: enqueue of max_payload_bytes + 1 bytes");
    pcti_get_rc(c, "acme", "too-big", PERS_ERR_NOT_FOUND,
            "S11: the refused task must not exist");
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S11: claim after a refused enqueue");
    pcti_stats(c, "acme", "email", 0, 0, 0, 0, 0, 0, "S11: nothing enqueued");
    if (pcti_put(c, "acme", "email", "small", 0, 0, 0) &&
        pcti_take(c, "acme", "email", "w1", PCTI_LONG, "small", &t, "claim")) {
        l = pcti_lease("acme", "small", t.lease_token);
        d.failed = 0;
        d.data = big;
        d.data_len = n;
        pcti_rc(c, pers_complete(c->s, &l, &d), PERS_ERR_TOO_LARGE,
                "S11: complete with a result of max_payload_bytes + 1 bytes");
        pcti_expect_task(c, "acme", "small", PERS_STATE_LEASED, 1,
                         "S11: a refused completion changes nothing");
        pcti_rc(c, pcti_complete(c, "acme", "small", t.lease_token, "fits", 0), PERS_OK,
                "complete after the refused one");
        pers_task_free(c->s, &t);
    }
    free(big);
}

/* PS-ORDER-01 */
static void pcti_order_01(pcti_case *c)
{
    static const char *const ids[] = {"p0", "p5a", "pm3", "pmax", "pmin", "p5b"};
    static const int32_t prios[] = {0, 5, -3, PERS_PRIORITY_MAX, PERS_PRIORITY_MIN, 5};
    static const char *const order[] = {"pmax", "p5a", "p5b", "p0", "pm3", "pmin"};
    static const int32_t order_prio[] = {PERS_PRIORITY_MAX, 5, 5, 0, -3, PERS_PRIORITY_MIN};
    char what[80];
    size_t i;
    pers_task t;
    for (i = 0; i < 6; i++)
        if (!pcti_put(c, "acme", "email", ids[i], prios[i], 0, 0))
            return;
    for (i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "S3: claim number %lu (highest priority first)",
                 (unsigned long)i + 1);
        if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, order[i], &t, what))
            return;
        pcti_eq_i64(c, t.priority, order_prio[i], "claim: priority of task \"%s\"", order[i]);
        pers_task_free(c->s, &t);
    }
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S18: claim of an emptied queue");
}

/* PS-ORDER-02 */
static void pcti_order_02(pcti_case *c)
{
    char id[16], want[16], what[96];
    size_t i, f = 0, h = 0;
    /* f00 f01 h0 f02 f03 h1 ...: ten at priority 0, five at priority 1, one millisecond. */
    for (i = 0; i < 15; i++) {
        if (i % 3 == 2)
            snprintf(id, sizeof id, "h%lu", (unsigned long)h++);
        else
            snprintf(id, sizeof id, "f%02lu", (unsigned long)f++);
        if (!pcti_put(c, "acme", "email", id, i % 3 == 2 ? 1 : 0, 0, 0))
            return;
    }
    for (i = 0; i < 15; i++) {
        if (i < 5)
            snprintf(want, sizeof want, "h%lu", (unsigned long)i);
        else
            snprintf(want, sizeof want, "f%02lu", (unsigned long)(i - 5));
        snprintf(what, sizeof what, "S3: claim number %lu (FIFO within a priority)",
                 (unsigned long)i + 1);
        if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, want, NULL, what))
            return;
    }
}

/* PS-ORDER-03 */
static void pcti_order_03(pcti_case *c)
{
    static const char *const q1[] = {"sms", "email", "push"};
    static const char *const q2[] = {"push", "email"};
    static const char *const want1[] = {"s3", "s1", "s2", "e1"};
    static const char *const want2[] = {"p1", "e2"};
    pers_task t[5];
    pers_claim_res res;
    int n;
    size_t i;
    if (!pcti_put(c, "acme", "email", "e1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "e2", 0, 0, 0) ||
        !pcti_put(c, "acme", "sms", "s1", 0, 0, 0) ||
        !pcti_put(c, "acme", "sms", "s2", 0, 0, 0) ||
        !pcti_put(c, "acme", "sms", "s3", 9, 0, 0) ||
        !pcti_put(c, "acme", "push", "p1", 0, 0, 0))
        return;
    n = pcti_claim(c, "acme", q1, 3, "w1", PCTI_LONG, 4, t, &res, "claim of sms, email, push");
    if (n < 0)
        return;
    if (pcti_eq_i64(c, n, 4, "S3: claim of up to 4 from sms, email, push: count")) {
        for (i = 0; i < 4; i++)
            pcti_eq_str(c, t[i].id, want1[i],
                        "S3: claim of sms, email, push: task %lu (the first queue first, in "
                        "priority then FIFO order, then the next)",
                        (unsigned long)i);
        pcti_eq_i64(c, res.next_due_ms, PERS_NO_TIME, "S18: next_due_ms when tasks come back");
    }
    pers_tasks_free(c->s, t, (size_t)n);
    n = pcti_claim(c, "acme", q2, 2, "w1", PCTI_LONG, 5, t, &res, "claim of push, email");
    if (n < 0)
        return;
    if (pcti_eq_i64(c, n, 2, "S3: claim of up to 5 from push, email: count"))
        for (i = 0; i < 2; i++)
            pcti_eq_str(c, t[i].id, want2[i], "S3: claim of push, email: task %lu",
                        (unsigned long)i);
    pers_tasks_free(c->s, t, (size_t)n);
    pcti_none_of(c, "acme", q1, 3, PERS_NO_TIME, "S18: claim when every task is leased");
}

/* PS-ORDER-04 */
static void pcti_order_04(pcti_case *c)
{
    pers_task t;
    pers_task_state st;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 10) ||
        !pcti_put(c, "acme", "email", "b", 0, 0, 10) ||
        !pcti_put(c, "acme", "email", "c", 0, 0, 10))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "first claim"))
        return;
    pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "retry", &st), PERS_OK, "nack of a");
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t,
                   "S3: claim after a nack without delay: a keeps its place ahead of b"))
        return;
    pcti_rc(c, pcti_abandon(c, "acme", "a", t.lease_token), PERS_OK, "abandon of a");
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", 1000, "a", &t,
                   "S3: claim after an abandon: a keeps its place ahead of b"))
        return;
    pers_task_free(c->s, &t);
    pcti_advance(c, 1000);
    if (!pcti_take(c, "acme", "email", "w2", PCTI_LONG, "a", &t,
                   "S3: claim after a lease expiry: a keeps its place ahead of b"))
        return;
    pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 500, "later", &st), PERS_OK,
            "nack of a with a delay of 500 ms");
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "b", NULL,
                   "claim while a waits for its retry delay"))
        return;
    pcti_advance(c, 500);
    if (!pcti_put(c, "acme", "email", "d", 0, 0, 10))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", NULL,
                   "S3: claim after the retry delay: a goes back ahead of c and d"))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "c", NULL, "S3: claim of c") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "d", NULL, "S3: claim of d"))
        return;
}

/* PS-SCHED-01 */
static void pcti_sched_01(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t;
    if (!pcti_put(c, "acme", "email", "later", 0, 5000, 0))
        return;
    pcti_expect_task(c, "acme", "later", PERS_STATE_SCHEDULED, 0, "S2: a task with delay_ms 5000");
    pcti_none(c, "acme", "email", t0 + 5000, "S2, S18: claim before the task is due");
    pcti_stats(c, "acme", "email", 1, 0, 0, 0, 0, 0, "S17: a scheduled task");
    pcti_advance(c, 4999);
    pcti_none(c, "acme", "email", t0 + 5000, "S2, S18: claim 1 ms before the task is due");
    pcti_expect_task(c, "acme", "later", PERS_STATE_SCHEDULED, 0, "S2: 1 ms before due");
    pcti_advance(c, 1);
    if (pcti_get(c, "acme", "later", &t, "S2: at the due time")) {
        pcti_eq_state(c, t.state, PERS_STATE_READY,
                      "S2: get_task at the due time (ready from that instant, promoted or not)");
        pcti_eq_i64(c, t.due_ms, t0 + 5000, "get_task: due_ms");
        pers_task_free(c->s, &t);
    }
    pcti_stats(c, "acme", "email", 0, 1, 0, 0, 0, 0, "S2, S17: at the due time");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, "later", NULL, "S2: claim at the due time");
}

/* PS-SCHED-02 */
static void pcti_sched_02(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_enqueue_req r;
    pers_task t;
    r = pcti_req("acme", "email", "x");
    r.task_id = "future";
    r.run_at_ms = t0 + 2000;
    if (!pcti_enqueue(c, &r, NULL, "enqueue with run_at_ms = now + 2000"))
        return;
    r.task_id = "past";
    r.run_at_ms = t0 - 1000;
    if (!pcti_enqueue(c, &r, NULL, "enqueue with run_at_ms = now - 1000"))
        return;
    r.task_id = "now";
    r.run_at_ms = t0;
    if (!pcti_enqueue(c, &r, NULL, "enqueue with run_at_ms = now"))
        return;
    if (pcti_get(c, "acme", "future", &t, "S2: run_at in the future")) {
        pcti_eq_state(c, t.state, PERS_STATE_SCHEDULED, "S2: a task whose run_at_ms is ahead");
        pcti_eq_i64(c, t.due_ms, t0 + 2000, "S2: due_ms = run_at_ms");
        pers_task_free(c->s, &t);
    }
    if (pcti_get(c, "acme", "past", &t, "S2: run_at in the past")) {
        pcti_eq_state(c, t.state, PERS_STATE_READY, "S2: a task whose run_at_ms has passed");
        pcti_eq_i64(c, t.due_ms, t0 - 1000, "S2: due_ms = run_at_ms");
        pers_task_free(c->s, &t);
    }
    pcti_expect_task(c, "acme", "now", PERS_STATE_READY, 0, "S2: a task whose run_at_ms is now");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, "past", NULL, "S2, S3: claim");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, "now", NULL, "S2, S3: claim");
    pcti_none(c, "acme", "email", t0 + 2000, "S18: claim before run_at_ms");
    pcti_advance(c, 2000);
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, "future", NULL, "S2: claim at run_at_ms");
}

/* PS-SCHED-03 */
static void pcti_sched_03(pcti_case *c)
{
    static const char *const both[] = {"email", "sms"};
    static const char *const sms[] = {"sms"};
    static const char *const push[] = {"push"};
    int64_t t0 = pcti_now(c);
    pers_task t[2];
    pers_claim_res res;
    int n;
    pcti_none_of(c, "acme", both, 2, PERS_NO_TIME, "S18: claim of queues never used");
    if (!pcti_put(c, "acme", "email", "e300", 0, 300, 0) ||
        !pcti_put(c, "acme", "email", "e100", 0, 100, 0) ||
        !pcti_put(c, "acme", "sms", "s200", 0, 200, 0) ||
        !pcti_put(c, "globex", "email", "g50", 0, 50, 0))
        return;
    pcti_none_of(c, "acme", both, 2, t0 + 100,
                 "S18: the earliest due time of the claim's queues (another tenant's excluded)");
    pcti_none_of(c, "acme", sms, 1, t0 + 200, "S18: the earliest due time of queue sms");
    pcti_none_of(c, "acme", push, 1, PERS_NO_TIME, "S18: a queue without tasks");
    if (!pcti_put(c, "acme", "sms", "ready", 0, 0, 0))
        return;
    n = pcti_claim(c, "acme", both, 2, "w1", PCTI_LONG, 2, t, &res, "claim with a ready task");
    if (n < 0)
        return;
    pcti_eq_i64(c, n, 1, "claim with one ready task: count");
    pcti_eq_i64(c, res.next_due_ms, PERS_NO_TIME, "S18: next_due_ms when tasks are returned");
    pers_tasks_free(c->s, t, (size_t)n);
    pcti_advance(c, 150);
    pcti_none_of(c, "acme", sms, 1, t0 + 200, "S18: after 150 ms");
    n = pcti_claim(c, "acme", both, 2, "w1", PCTI_LONG, 2, t, &res, "claim after 150 ms");
    if (n < 0)
        return;
    if (pcti_eq_i64(c, n, 1, "S2: claim after 150 ms: only e100 is due"))
        pcti_eq_str(c, t[0].id, "e100", "S2: claim after 150 ms");
    pers_tasks_free(c->s, t, (size_t)n);
    pcti_none_of(c, "acme", both, 2, t0 + 200, "S18: the next due time after e100 was taken");
}

/* PS-SCHED-04 */
static void pcti_sched_04(pcti_case *c)
{
    if (!pcti_put(c, "acme", "email", "a-delayed", 0, 100, 0) ||
        !pcti_put(c, "acme", "email", "b-ready", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "c-delayed", 0, 50, 0) ||
        !pcti_put(c, "acme", "email", "d-high", 1, 80, 0) ||
        !pcti_put(c, "acme", "email", "e-ready", 0, 0, 0))
        return;
    pcti_advance(c, 100);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "d-high", NULL,
                   "S2, S3: the due task of the highest priority first"))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a-delayed", NULL,
                   "S2, S3: a task that fell due keeps its enqueue place (before b-ready)"))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "b-ready", NULL, "S3: then b-ready") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "c-delayed", NULL,
                   "S2, S3: then c-delayed (enqueued before e-ready)") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "e-ready", NULL, "S3: then e-ready"))
        return;
}

/* PS-LEASE-01 */
static void pcti_lease_01(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_task t[3];
    pers_claim_res res;
    pers_task_state st;
    uint64_t highest = 0, first_of_claim;
    size_t i, j;
    int n, round;
    for (i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "t%lu", (unsigned long)i);
        if (!pcti_put(c, "acme", "email", id, 0, 0, 0))
            return;
    }
    for (round = 0; round < 4; round++) {
        size_t max = round < 2 ? 1 : 2; /* 1 + 1 + 2 + 2: all six */
        n = pcti_claim(c, "acme", email, 1, "w1", PCTI_LONG, max, t, &res, "claim");
        if (n < 0)
            return;
        if (!pcti_eq_i64(c, n, (int64_t)max, "claim of %lu from 6 ready tasks",
                         (unsigned long)max)) {
            pers_tasks_free(c->s, t, (size_t)n);
            return;
        }
        if (round == 0)
            pcti_eq_u64(c, t[0].lease_token, 1, "S4: the first lease token of a fresh store");
        first_of_claim = highest;
        for (i = 0; i < (size_t)n; i++) {
            pcti_true(c, t[i].lease_token > first_of_claim,
                      "S4: claim %d returned task \"%s\" with token %llu, not greater than %llu "
                      "issued before (tokens only increase)",
                      round + 1, t[i].id, (unsigned long long)t[i].lease_token,
                      (unsigned long long)first_of_claim);
            for (j = 0; j < i; j++)
                pcti_true(c, t[i].lease_token != t[j].lease_token,
                          "S4: one claim returned token %llu twice",
                          (unsigned long long)t[i].lease_token);
            if (t[i].lease_token > highest)
                highest = t[i].lease_token;
        }
        if (round == 3) {
            /* A retry gets a new token too. */
            pcti_rc(c, pcti_nack(c, "acme", t[0].id, t[0].lease_token, 0, "again", &st), PERS_OK,
                    "nack");
        }
        pers_tasks_free(c->s, t, (size_t)n);
    }
    n = pcti_claim(c, "acme", email, 1, "w1", PCTI_LONG, 1, t, &res, "claim of the nacked task");
    if (n == 1) {
        pcti_true(c, t[0].lease_token > highest,
                  "S4: the claim after a nack returned token %llu, not greater than %llu",
                  (unsigned long long)t[0].lease_token, (unsigned long long)highest);
        pers_tasks_free(c->s, t, 1);
    } else if (n >= 0) {
        pcti_fail(c, "claim of the nacked task: expected 1 task, got %d", n);
    }
}

/* PS-LEASE-02 */
static void pcti_lease_02(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0))
        return;
    if (!pcti_take(c, "acme", "email", "w1", 10000, "a", &t, "claim by w1"))
        return;
    pcti_eq_i64(c, t.lease_expires_ms, t0 + 10000, "S4: claim: lease_expires_ms = now + lease_ms");
    pers_task_free(c->s, &t);
    if (pcti_get(c, "acme", "a", &t, "S4: a leased task")) {
        pcti_eq_state(c, t.state, PERS_STATE_LEASED, "S1: get_task after the claim");
        pcti_eq_str(c, t.worker_id, "w1", "get_task: worker_id");
        pcti_eq_i64(c, t.lease_expires_ms, t0 + 10000, "S4: get_task: lease_expires_ms");
        pcti_eq_u64(c, t.lease_token, 0, "get_task: lease_token");
        pers_task_free(c->s, &t);
    }
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S4: claim by another worker of a live lease");
    pcti_stats(c, "acme", "email", 0, 0, 1, 0, 0, 0, "S17: one leased task");
    pcti_advance(c, 9999);
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S4: claim 1 ms before the lease expires");
    pcti_expect_task(c, "acme", "a", PERS_STATE_LEASED, 1, "S4: 1 ms before the lease expires");
}

/* PS-LEASE-03 */
static void pcti_lease_03(pcti_case *c)
{
    int64_t t0 = pcti_now(c), exp = 0;
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t, "claim with lease_ms 1000"))
        return;
    pcti_advance(c, 800);
    if (pcti_rc(c, pcti_extend(c, "acme", "a", t.lease_token, 5000, &exp), PERS_OK,
                "S5b: extend_lease with the current token"))
        pcti_eq_i64(c, exp, t0 + 800 + 5000, "S4: extend_lease: expires_ms = now + lease_ms");
    if (pcti_get(c, "acme", "a", &g, "after extend_lease")) {
        pcti_eq_i64(c, g.lease_expires_ms, t0 + 800 + 5000, "S4: get_task after extend_lease");
        pers_task_free(c->s, &g);
    }
    pcti_advance(c, 1000); /* past the first expiry */
    pcti_expect_task(c, "acme", "a", PERS_STATE_LEASED, 1,
                     "S4: an extended lease outlives its first expiry");
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S4: claim while the extended lease lives");
    pcti_rc(c, pcti_extend(c, "acme", "a", t.lease_token, 100, &exp), PERS_OK,
            "S5b: a second extend_lease");
    pcti_eq_i64(c, exp, t0 + 1800 + 100, "S4: extend_lease sets now + lease_ms, even if shorter");
    pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "ok", 0), PERS_OK,
            "S5b: complete under the extended lease");
    pers_task_free(c->s, &t);
}

/* PS-LEASE-04 */
static void pcti_lease_04(pcti_case *c)
{
    int64_t t0 = pcti_now(c), exp = 0;
    pers_task t1, t2, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t1, "claim by w1"))
        return;
    pcti_advance(c, 1000);
    if (!pcti_take(c, "acme", "email", "w2", 20000, "a", &t2, "S7: reclaim by w2 after expiry")) {
        pers_task_free(c->s, &t1);
        return;
    }
    pcti_rc(c, pcti_extend(c, "acme", "a", t1.lease_token, 60000, &exp), PERS_ERR_LEASE_LOST,
            "S5d: extend_lease with the token of the reclaimed lease");
    pcti_rc(c, pcti_extend(c, "acme", "a", t2.lease_token + 1000, 60000, &exp),
            PERS_ERR_LEASE_LOST, "S5d: extend_lease with a token never issued");
    if (pcti_get(c, "acme", "a", &g, "after the refused extensions")) {
        pcti_eq_i64(c, g.lease_expires_ms, t0 + 1000 + 20000,
                    "S5: a refused extend_lease changes nothing: lease_expires_ms");
        pcti_eq_str(c, g.worker_id, "w2", "S5: worker_id after the refused extensions");
        pers_task_free(c->s, &g);
    }
    pcti_rc(c, pcti_complete(c, "acme", "a", t1.lease_token, "stale", 0), PERS_ERR_LEASE_LOST,
            "S5d: complete with the token of the reclaimed lease");
    pcti_rc(c, pcti_complete(c, "acme", "a", t2.lease_token + 1000, "unknown", 0),
            PERS_ERR_LEASE_LOST, "S5d: complete with a token never issued");
    pcti_expect_task(c, "acme", "a", PERS_STATE_LEASED, 2, "S5: the refused completions");
    pcti_no_result(c, "acme", "a", "S5: no result after the refused completions");
    if (pcti_rc(c, pcti_extend(c, "acme", "a", t2.lease_token, 60000, &exp), PERS_OK,
                "S5b: extend_lease with the current token"))
        pcti_eq_i64(c, exp, t0 + 1000 + 60000, "S4: expires_ms");
    pcti_rc(c, pcti_complete(c, "acme", "a", t2.lease_token, "fresh", 0), PERS_OK,
            "S5b: complete with the current token");
    pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "fresh", 5, "the current holder's result");
    pers_task_free(c->s, &t1);
    pers_task_free(c->s, &t2);
}

/* PS-LEASE-05 */
static void pcti_lease_05(pcti_case *c)
{
    int64_t t0 = pcti_now(c), exp = 0;
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t, "claim with lease_ms 1000"))
        return;
    pcti_advance(c, 999);
    if (pcti_rc(c, pcti_extend(c, "acme", "a", t.lease_token, 1000, &exp), PERS_OK,
                "S4: extend_lease 1 ms before expiry (now < expiry: live)"))
        pcti_eq_i64(c, exp, t0 + 1999, "S4: expires_ms");
    pcti_advance(c, 1000); /* now == expiry */
    pcti_rc(c, pcti_extend(c, "acme", "a", t.lease_token, 1000, &exp), PERS_ERR_LEASE_LOST,
            "S4, S5d: extend_lease at the expiry instant (now == expiry: expired)");
    if (pcti_get(c, "acme", "a", &g, "S7: at the expiry instant")) {
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S7: a lease at its expiry instant is expired");
        pcti_eq_str(c, g.last_error, "lease expired", "S7: last_error after expiry");
        pers_task_free(c->s, &g);
    }
    pers_task_free(c->s, &t);
}

/* PS-EXPIRY-01 */
static void pcti_expiry_01(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t1, t2;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t1, "claim by w1"))
        return;
    pcti_advance(c, 1500);
    if (pcti_take(c, "acme", "email", "w2", 1000, "a", &t2, "S7: claim after the lease expired")) {
        pcti_eq_u64(c, t2.attempts, 2, "S6, S7: attempts after an expiry and a new claim");
        pcti_true(c, t2.lease_token > t1.lease_token,
                  "S4: the reclaim's token %llu is not greater than the first %llu",
                  (unsigned long long)t2.lease_token, (unsigned long long)t1.lease_token);
        pcti_eq_str(c, t2.worker_id, "w2", "claim: worker_id of the new holder");
        pcti_eq_str(c, t2.last_error, "lease expired", "S7: the reason of an expiry");
        pcti_eq_i64(c, t2.due_ms, t0 + 1000,
                    "S7: due_ms of an expired task (retried at the instant of expiry)");
        pcti_eq_i64(c, t2.lease_expires_ms, t0 + 1500 + 1000, "S4: the new lease's expiry");
        pers_task_free(c->s, &t2);
    }
    pers_task_free(c->s, &t1);
}

/* PS-EXPIRY-02 */
static void pcti_expiry_02(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t1, t2, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t1, "claim by w1"))
        return;
    pcti_advance(c, 1000);
    if (!pcti_take(c, "acme", "email", "w2", 10000, "a", &t2, "S7: reclaim by w2")) {
        pers_task_free(c->s, &t1);
        return;
    }
    pcti_every_op(c, "acme", "a", t1.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                  "S5d: the old holder after the reclaim");
    if (pcti_get(c, "acme", "a", &g, "S5: after the old holder's operations")) {
        pcti_eq_state(c, g.state, PERS_STATE_LEASED, "S5: the old holder changed nothing: state");
        pcti_eq_str(c, g.worker_id, "w2", "S5: the old holder changed nothing: worker_id");
        pcti_eq_u64(c, g.attempts, 2, "S5: the old holder changed nothing: attempts");
        pcti_eq_i64(c, g.lease_expires_ms, t0 + 1000 + 10000,
                    "S5: the old holder changed nothing: lease_expires_ms");
        pers_task_free(c->s, &g);
    }
    pcti_no_result(c, "acme", "a", "S5: the old holder stored no result");
    pcti_stats(c, "acme", "email", 0, 0, 1, 0, 0, 0, "S5: the old holder changed nothing");
    pcti_rc(c, pcti_complete(c, "acme", "a", t2.lease_token, "new holder", 0), PERS_OK,
            "S5b: the new holder completes");
    pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "new holder", 10,
                   "the new holder's result");
    pers_task_free(c->s, &t1);
    pers_task_free(c->s, &t2);
}

/* PS-EXPIRY-03 */
static void pcti_expiry_03(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t, "claim by w1"))
        return;
    pcti_advance(c, 1000);
    if (pcti_get(c, "acme", "a", &g, "S7: after expiry, nothing else called")) {
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S7: an expired lease, not reclaimed");
        pcti_eq_u64(c, g.attempts, 1, "S6: attempts after an expiry without a new claim");
        pcti_eq_str(c, g.last_error, "lease expired", "S7: last_error");
        pcti_eq_i64(c, g.lease_expires_ms, 0, "lease_expires_ms of a task no longer leased");
        pcti_eq_i64(c, g.due_ms, t0 + 1000, "S7: due_ms = the instant of expiry");
        pers_task_free(c->s, &g);
    }
    pcti_stats(c, "acme", "email", 0, 1, 0, 0, 0, 0, "S7, S17: after the expiry");
    pcti_every_op(c, "acme", "a", t.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                  "S5d: the holder of the expired lease");
    pcti_expect_task(c, "acme", "a", PERS_STATE_READY, 1,
                     "S5: the expired holder's operations changed nothing");
    pcti_no_result(c, "acme", "a", "S5: no result stored by the expired holder");
    pers_task_free(c->s, &t);
}

/* PS-EXPIRY-04 */
static void pcti_expiry_04(pcti_case *c)
{
    int64_t t0 = pcti_now(c);
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 1) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t, "claim of a task with max_attempts 1"))
        return;
    pcti_advance(c, 2000);
    if (pcti_get(c, "acme", "a", &g, "S7: after expiry at max_attempts")) {
        pcti_eq_state(c, g.state, PERS_STATE_DEAD,
                      "S6, S7: an expiry when attempts reached max_attempts");
        pcti_eq_i64(c, g.finished_ms, t0 + 1000, "S7: finished_ms = the instant of expiry");
        pcti_eq_str(c, g.last_error, "lease expired", "S6, S7: the dead task keeps the reason");
        pcti_eq_u64(c, g.attempts, 1, "S6: attempts of the dead task");
        pers_task_free(c->s, &g);
    }
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: a dead task is never claimed");
    pcti_stats(c, "acme", "email", 0, 0, 0, 0, 0, 1, "S17: one dead task");
    pcti_every_op(c, "acme", "a", t.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                  "S5d: the holder of a lease that expired into death");
    pers_task_free(c->s, &t);
}

/* PS-NACK-01 */
static void pcti_nack_01(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    pers_task_state st = (pers_task_state)0;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "b", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 5000, "a", &t, "claim"))
        return;
    pcti_advance(c, 20);
    t0 = pcti_now(c);
    if (pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "boom", &st), PERS_OK,
                "S5b: nack without delay"))
        pcti_eq_state(c, st, PERS_STATE_READY, "S1, S6: nack's state output");
    if (pcti_get(c, "acme", "a", &g, "after the nack")) {
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S1: a nack without delay");
        pcti_eq_u64(c, g.attempts, 1, "S6: attempts after a nack");
        pcti_eq_str(c, g.last_error, "boom", "S6: the nack's reason in last_error");
        pcti_eq_i64(c, g.lease_expires_ms, 0, "lease_expires_ms after a nack");
        pcti_eq_i64(c, g.due_ms, t0, "S2: due_ms = now + 0");
        pers_task_free(c->s, &g);
    }
    pcti_every_op(c, "acme", "a", t.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                  "S5d: the token of a nacked lease");
    pers_task_free(c->s, &t);
    if (pcti_take(c, "acme", "email", "w1", 5000, "a", &t, "S1, S3: claim right after the nack")) {
        pcti_eq_u64(c, t.attempts, 2, "S6: attempts of the second claim");
        pcti_eq_str(c, t.last_error, "boom", "claim: last_error");
        pers_task_free(c->s, &t);
    }
}

/* PS-NACK-02 */
static void pcti_nack_02(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    pers_task_state st = (pers_task_state)0;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 5000, "a", &t, "claim"))
        return;
    pcti_advance(c, 10);
    t0 = pcti_now(c);
    if (pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 2000, "later", &st), PERS_OK,
                "S5b: nack with retry_delay_ms 2000"))
        pcti_eq_state(c, st, PERS_STATE_SCHEDULED, "S1: nack's state output");
    pers_task_free(c->s, &t);
    if (pcti_get(c, "acme", "a", &g, "after the nack")) {
        pcti_eq_state(c, g.state, PERS_STATE_SCHEDULED, "S1: a nack with a delay");
        pcti_eq_i64(c, g.due_ms, t0 + 2000, "S2: due_ms = now + retry delay");
        pcti_eq_str(c, g.last_error, "later", "S6: last_error");
        pers_task_free(c->s, &g);
    }
    pcti_none(c, "acme", "email", t0 + 2000, "S2, S18: claim during the retry delay");
    pcti_stats(c, "acme", "email", 1, 0, 0, 0, 0, 0, "S17: a nacked task waiting");
    pcti_advance(c, 1999);
    pcti_none(c, "acme", "email", t0 + 2000, "S2: 1 ms before the retry");
    pcti_advance(c, 1);
    if (pcti_take(c, "acme", "email", "w2", 5000, "a", &t, "S2: claim at the retry time")) {
        pcti_eq_u64(c, t.attempts, 2, "S6: attempts");
        pers_task_free(c->s, &t);
    }
}

/* PS-DEAD-01 */
static void pcti_dead_01(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    pers_task_state st = (pers_task_state)0;
    uint64_t tok;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 2) ||
        !pcti_take(c, "acme", "email", "w1", 5000, "a", &t, "claim 1"))
        return;
    if (pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "r1", &st), PERS_OK, "nack 1"))
        pcti_eq_state(c, st, PERS_STATE_READY, "S6: nack 1 of max_attempts 2");
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", 5000, "a", &t, "claim 2"))
        return;
    tok = t.lease_token;
    pers_task_free(c->s, &t);
    pcti_advance(c, 30);
    t0 = pcti_now(c);
    if (pcti_rc(c, pcti_nack(c, "acme", "a", tok, 500, "r2", &st), PERS_OK, "nack 2"))
        pcti_eq_state(c, st, PERS_STATE_DEAD,
                      "S6: nack 2 of max_attempts 2 (the retry delay does not matter)");
    if (pcti_get(c, "acme", "a", &g, "S6: the dead task")) {
        pcti_eq_state(c, g.state, PERS_STATE_DEAD, "S6: get_task");
        pcti_eq_u64(c, g.attempts, 2, "S6: attempts of the dead task");
        pcti_eq_str(c, g.last_error, "r2", "S6: a dead task keeps the failure's reason");
        pcti_eq_i64(c, g.finished_ms, t0, "finished_ms of a dead task");
        pers_task_free(c->s, &g);
    }
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S1, S18: a dead task is not claimed or due");
    pcti_advance(c, 1000);
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: a dead task stays dead");
    pcti_stats(c, "acme", "email", 0, 0, 0, 0, 0, 1, "S17: one dead task");
    pcti_no_result(c, "acme", "a", "S12: a dead task has no result");
    pcti_every_op(c, "acme", "a", tok, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                  "S5d: the last holder of a dead task");
}

/* PS-DEAD-02 */
static void pcti_dead_02(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", "x");
    pers_task t;
    pers_task_state st = (pers_task_state)0;
    pers_store_desc d = pers_store_resolved(c->s);
    unsigned i;
    pcti_eq_u64(c, d.default_max_attempts, PCTI_ATTEMPTS,
                "pers_store_resolved: the default_max_attempts the suite passed");
    r.task_id = "dflt";
    if (!pcti_enqueue(c, &r, NULL, "enqueue with max_attempts 0"))
        return;
    r.task_id = "seven";
    r.max_attempts = 7;
    if (!pcti_enqueue(c, &r, NULL, "enqueue with max_attempts 7"))
        return;
    if (pcti_get(c, "acme", "seven", &t, "max_attempts 7")) {
        pcti_eq_u64(c, t.max_attempts, 7, "get_task: max_attempts as given");
        pers_task_free(c->s, &t);
    }
    if (pcti_get(c, "acme", "dflt", &t, "S6: max_attempts 0")) {
        pcti_eq_u64(c, t.max_attempts, PCTI_ATTEMPTS,
                    "S6: max_attempts 0 means the store's default_max_attempts");
        pers_task_free(c->s, &t);
    }
    for (i = 1; i <= PCTI_ATTEMPTS; i++) {
        if (!pcti_take(c, "acme", "email", "w1", 5000, "dflt", &t, "claim of dflt"))
            return;
        if (pcti_rc(c, pcti_nack(c, "acme", "dflt", t.lease_token, 0, "no", &st), PERS_OK, "nack"))
            pcti_eq_state(c, st, i < PCTI_ATTEMPTS ? PERS_STATE_READY : PERS_STATE_DEAD,
                          "S6: nack number %u of default max_attempts %u", i, PCTI_ATTEMPTS);
        pers_task_free(c->s, &t);
    }
}

/* Kills task id (max_attempts 1): claim and nack with reason. */
static int pcti_kill(pcti_case *c, const char *tenant, const char *queue, const char *id,
                     const char *reason)
{
    pers_task t;
    pers_task_state st = (pers_task_state)0;
    int ok;
    if (!pcti_take(c, tenant, queue, "w-kill", 5000, id, &t, "claim of a task to kill"))
        return 0;
    ok = pcti_rc(c, pcti_nack(c, tenant, id, t.lease_token, 0, reason, &st), PERS_OK,
                 "nack at max_attempts 1") &&
         pcti_eq_state(c, st, PERS_STATE_DEAD, "S6: nack at max_attempts 1");
    pers_task_free(c->s, &t);
    return ok;
}

/* PS-DEAD-03 */
static void pcti_dead_03(pcti_case *c)
{
    static const char *const order[] = {"d2", "d3", "d1"};
    pers_list_req q;
    pers_task_list l;
    pers_task t;
    size_t i;
    if (!pcti_put(c, "acme", "email", "d1", 0, 0, 1) ||
        !pcti_put(c, "acme", "email", "d2", 5, 0, 1) ||
        !pcti_put(c, "acme", "email", "d3", 0, 0, 1) ||
        !pcti_put(c, "acme", "sms", "s1", 0, 0, 1) ||
        !pcti_put(c, "globex", "email", "g1", 0, 0, 1))
        return;
    /* d2 dies first (priority 5), then d3 by expiry, then d1. */
    if (!pcti_kill(c, "acme", "email", "d2", "reason d2"))
        return;
    pcti_advance(c, 10);
    if (!pcti_take(c, "acme", "email", "w1", 5, "d1", &t, "claim of d1"))
        return;
    pcti_rc(c, pcti_abandon(c, "acme", "d1", t.lease_token), PERS_OK, "abandon of d1");
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "d1", &t, "claim of d1 again"))
        return;
    if (!pcti_take(c, "acme", "email", "w1", 5, "d3", NULL, "claim of d3 with lease 5 ms")) {
        pers_task_free(c->s, &t);
        return;
    }
    pcti_advance(c, 10); /* d3 expires at max_attempts 1: dead */
    pcti_expect_task(c, "acme", "d3", PERS_STATE_DEAD, 1, "S7: d3 expired");
    pcti_rc(c, pcti_nack(c, "acme", "d1", t.lease_token, 0, "reason d1", NULL), PERS_OK,
            "nack of d1");
    pers_task_free(c->s, &t);
    if (!pcti_kill(c, "acme", "sms", "s1", "other queue") ||
        !pcti_kill(c, "globex", "email", "g1", "other tenant"))
        return;

    memset(&q, 0, sizeof q);
    q.tenant = "acme";
    q.queue = "email";
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead(acme, email)")) {
        if (pcti_eq_u64(c, l.count, 3, "list_dead(acme, email): count") &&
            pcti_eq_u64(c, l.total, 3, "list_dead(acme, email): total"))
            for (i = 0; i < 3; i++) {
                pcti_eq_str(c, l.items[i].id, order[i],
                            "list_dead: item %lu (in the order they died)", (unsigned long)i);
                pcti_eq_state(c, l.items[i].state, PERS_STATE_DEAD, "list_dead: item %lu",
                              (unsigned long)i);
                pcti_eq_u64(c, l.items[i].lease_token, 0, "list_dead: lease_token");
                pcti_eq_data(c, l.items[i].payload, l.items[i].payload_len, order[i], 2,
                             "list_dead: payload of %s", order[i]);
            }
        if (l.count == 3) {
            pcti_eq_str(c, l.items[0].last_error, "reason d2", "list_dead: last_error of d2");
            pcti_eq_str(c, l.items[1].last_error, "lease expired", "list_dead: last_error of d3");
        }
        pers_task_list_free(c->s, &l);
    }
    q.offset = 1;
    q.limit = 1;
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead offset 1 limit 1")) {
        if (pcti_eq_u64(c, l.count, 1, "list_dead offset 1 limit 1: count"))
            pcti_eq_str(c, l.items[0].id, "d3", "list_dead offset 1 limit 1: item");
        pcti_eq_u64(c, l.total, 3, "list_dead offset 1 limit 1: total (without offset, limit)");
        pers_task_list_free(c->s, &l);
    }
    q.offset = 5;
    q.limit = 0;
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead offset 5")) {
        pcti_eq_u64(c, l.count, 0, "list_dead offset past the end: count");
        pcti_eq_u64(c, l.total, 3, "list_dead offset past the end: total");
        pers_task_list_free(c->s, &l);
    }
    q.offset = 0;
    q.tenant = "globex";
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead(globex, email)")) {
        if (pcti_eq_u64(c, l.count, 1, "S13: list_dead(globex, email): only globex's task"))
            pcti_eq_str(c, l.items[0].id, "g1", "S13: list_dead(globex, email)");
        pers_task_list_free(c->s, &l);
    }
    q.tenant = "initech";
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead(initech, email)")) {
        pcti_eq_u64(c, l.count, 0, "S13: list_dead of a tenant without tasks: count");
        pcti_eq_u64(c, l.total, 0, "S13: list_dead of a tenant without tasks: total");
        pers_task_list_free(c->s, &l);
    }
}

/* PS-DEAD-04 */
static void pcti_dead_04(pcti_case *c)
{
    pers_list_req q;
    pers_task_list l;
    pers_task g;
    if (!pcti_put(c, "acme", "email", "x", 0, 0, 1) ||
        !pcti_put(c, "acme", "email", "y", 0, 0, 1) ||
        !pcti_put(c, "acme", "email", "z", 0, 0, 1) || !pcti_kill(c, "acme", "email", "x", "bad"))
        return;
    pcti_advance(c, 100);
    if (!pcti_rc(c, pers_requeue_dead(c->s, "acme", "x"), PERS_OK, "requeue_dead of a dead task"))
        return;
    if (pcti_get(c, "acme", "x", &g, "after requeue_dead")) {
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S1: requeue_dead makes a dead task ready");
        pcti_eq_u64(c, g.attempts, 0, "S6: requeue_dead sets attempts back to 0");
        pcti_eq_i64(c, g.finished_ms, 0, "finished_ms of a requeued task");
        pers_task_free(c->s, &g);
    }
    pcti_stats(c, "acme", "email", 0, 3, 0, 0, 0, 0, "S17: after requeue_dead");
    memset(&q, 0, sizeof q);
    q.tenant = "acme";
    q.queue = "email";
    if (pcti_rc(c, pers_list_dead(c->s, &q, &l), PERS_OK, "list_dead after requeue_dead")) {
        pcti_eq_u64(c, l.count, 0, "list_dead after requeue_dead: count");
        pers_task_list_free(c->s, &l);
    }
    if (pcti_take(c, "acme", "email", "w1", PCTI_LONG, "x", &g,
                  "S3: a requeued task goes back to its original place, ahead of y and z")) {
        pcti_eq_u64(c, g.attempts, 1, "S6: attempts after requeue and claim");
        pers_task_free(c->s, &g);
    }
    pcti_rc(c, pers_requeue_dead(c->s, "acme", "y"), PERS_ERR_INVALID_STATE,
            "requeue_dead of a ready task");
    pcti_rc(c, pers_requeue_dead(c->s, "acme", "x"), PERS_ERR_INVALID_STATE,
            "requeue_dead of a leased task");
    pcti_rc(c, pers_requeue_dead(c->s, "acme", "nobody"), PERS_ERR_NOT_FOUND,
            "requeue_dead of an unknown id");
    if (pcti_put(c, "globex", "email", "gx", 0, 0, 1) && pcti_kill(c, "globex", "email", "gx", "g"))
        pcti_rc(c, pers_requeue_dead(c->s, "acme", "gx"), PERS_ERR_NOT_FOUND,
                "S13: requeue_dead of another tenant's dead task");
    pcti_expect_task(c, "globex", "gx", PERS_STATE_DEAD, 1,
                     "S13: another tenant's request changed nothing");
}

/* PS-ABANDON-01 */
static void pcti_abandon_01(pcti_case *c)
{
    pers_task t, g;
    int i;
    int64_t t0;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 1) || !pcti_put(c, "acme", "email", "b", 0, 0, 1))
        return;
    for (i = 0; i < 4; i++) {
        if (!pcti_take(c, "acme", "email", "w1", 5000, "a", &t,
                       "S3, S6: claim after abandon (a keeps its place; not an attempt)"))
            return;
        pcti_eq_u64(c, t.attempts, 1, "S6: attempts when claimed");
        pcti_advance(c, 7);
        t0 = pcti_now(c);
        if (!pcti_rc(c, pcti_abandon(c, "acme", "a", t.lease_token), PERS_OK,
                     "S5b: abandon of a task with max_attempts 1")) {
            pers_task_free(c->s, &t);
            return;
        }
        if (pcti_get(c, "acme", "a", &g, "after abandon")) {
            pcti_eq_state(c, g.state, PERS_STATE_READY, "S1: abandon gives the task back");
            pcti_eq_u64(c, g.attempts, 0, "S6: abandon subtracts the attempt");
            pcti_eq_i64(c, g.lease_expires_ms, 0, "lease_expires_ms after abandon");
            pcti_eq_i64(c, g.due_ms, t0, "S1: due at once after abandon");
            pers_task_free(c->s, &g);
        }
        if (i == 0)
            pcti_every_op(c, "acme", "a", t.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                          "S5d: the token of an abandoned lease");
        pers_task_free(c->s, &t);
        if (pcti_failed(c))
            return;
    }
    pcti_stats(c, "acme", "email", 0, 2, 0, 0, 0, 0, "S6: abandon never kills");
}

/* PS-ATTEMPT-01 */
static void pcti_attempt_01(pcti_case *c)
{
    pers_task t;
    pers_task_state st = (pers_task_state)0;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 4))
        return;
#define PCTI_ATTEMPT_STEP_(n, stmt, state, want)                                                   \
    do {                                                                                           \
        if (!pcti_take(c, "acme", "email", "w1", 1000, "a", &t, "claim " #n))                      \
            return;                                                                                \
        stmt;                                                                                      \
        pers_task_free(c->s, &t);                                                                  \
        if (!pcti_expect_task(c, "acme", "a", state, want, "S6: step " #n))                        \
            return;                                                                                \
    } while (0)
    PCTI_ATTEMPT_STEP_(1 then abandon,
                       pcti_rc(c, pcti_abandon(c, "acme", "a", t.lease_token), PERS_OK,
                               "abandon"),
                       PERS_STATE_READY, 0);
    PCTI_ATTEMPT_STEP_(2 then nack,
                       pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "n", &st), PERS_OK,
                               "nack"),
                       PERS_STATE_READY, 1);
    PCTI_ATTEMPT_STEP_(3 then expiry, pcti_advance(c, 1000), PERS_STATE_READY, 2);
    PCTI_ATTEMPT_STEP_(4 then abandon,
                       pcti_rc(c, pcti_abandon(c, "acme", "a", t.lease_token), PERS_OK,
                               "abandon"),
                       PERS_STATE_READY, 2);
    PCTI_ATTEMPT_STEP_(5 then nack,
                       pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "n", &st), PERS_OK,
                               "nack"),
                       PERS_STATE_READY, 3);
    PCTI_ATTEMPT_STEP_(6 then expiry at max_attempts 4, pcti_advance(c, 1000), PERS_STATE_DEAD,
                       4);
#undef PCTI_ATTEMPT_STEP_
}

/* PS-COMPLETE-01 */
static void pcti_complete_01(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "claim"))
        return;
    pcti_advance(c, 50);
    t0 = pcti_now(c);
    if (!pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "done", 0), PERS_OK,
                 "S5b, S12: complete with the current token")) {
        pers_task_free(c->s, &t);
        return;
    }
    pers_task_free(c->s, &t);
    if (pcti_get(c, "acme", "a", &g, "S12: after complete")) {
        pcti_eq_state(c, g.state, PERS_STATE_COMPLETED, "S12: complete finishes the task");
        pcti_eq_i64(c, g.finished_ms, t0, "S12: finished_ms = now");
        pcti_eq_i64(c, g.lease_expires_ms, 0, "S12: complete releases the lease");
        pcti_eq_u64(c, g.attempts, 1, "S6: attempts of a completed task");
        pers_task_free(c->s, &g);
    }
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: a completed task is never claimed");
    pcti_stats(c, "acme", "email", 0, 0, 0, 1, 0, 0, "S12, S17: one completed task");
    pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "done", 4, "S12: the stored result");
    pcti_advance(c, PCTI_LONG * 2);
    pcti_expect_task(c, "acme", "a", PERS_STATE_COMPLETED, 1,
                     "S1: completed is final (long after the lease would have run out)");
}

/* PS-COMPLETE-02 */
static void pcti_complete_02(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "b", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "claim of a"))
        return;
    t0 = pcti_now(c);
    if (pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "first", 0), PERS_OK,
                "complete of a")) {
        pcti_advance(c, 100);
        pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "second", 0),
                PERS_ERR_ALREADY_COMPLETED, "S5c: a second complete with the same token");
        pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "an error", 1),
                PERS_ERR_ALREADY_COMPLETED,
                "S5c: a second complete (failed = 1) with the same token");
        if (pcti_get(c, "acme", "a", &g, "S5c: after the repeated completions")) {
            pcti_eq_state(c, g.state, PERS_STATE_COMPLETED, "S5c: nothing changes");
            pcti_eq_i64(c, g.finished_ms, t0, "S5c: finished_ms of the first completion");
            pers_task_free(c->s, &g);
        }
        pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "first", 5,
                       "S5c: the first result is kept");
    }
    pers_task_free(c->s, &t);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "b", &t, "claim of b"))
        return;
    if (pcti_rc(c, pcti_complete(c, "acme", "b", t.lease_token, "bad", 1), PERS_OK,
                "complete of b with failed = 1")) {
        pcti_rc(c, pcti_complete(c, "acme", "b", t.lease_token, "good", 0),
                PERS_ERR_ALREADY_COMPLETED, "S5c: complete after a failed completion");
        pcti_expect_task(c, "acme", "b", PERS_STATE_FAILED, 1, "S5c: the failed task stays failed");
        pcti_result_is(c, "acme", "b", PERS_STATE_FAILED, "bad", 3, "S5c: the first error is kept");
    }
    pers_task_free(c->s, &t);
    pcti_stats(c, "acme", "email", 0, 0, 0, 1, 1, 0, "S17: one completed, one failed");
}

/* PS-COMPLETE-03 */
static void pcti_complete_03(pcti_case *c)
{
    pers_task t1, t2;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", 1000, "a", &t1, "claim 1"))
        return;
    pcti_advance(c, 1000);
    if (!pcti_take(c, "acme", "email", "w2", PCTI_LONG, "a", &t2, "claim 2 after expiry")) {
        pers_task_free(c->s, &t1);
        return;
    }
    if (pcti_rc(c, pcti_complete(c, "acme", "a", t2.lease_token, "r", 0), PERS_OK,
                "complete with token 2")) {
        pers_task_state st;
        pcti_rc(c, pcti_extend(c, "acme", "a", t2.lease_token, 1000, NULL),
                PERS_ERR_INVALID_STATE, "S5c: extend_lease with the completing token");
        pcti_rc(c, pcti_abandon(c, "acme", "a", t2.lease_token), PERS_ERR_INVALID_STATE,
                "S5c: abandon with the completing token");
        pcti_rc(c, pcti_nack(c, "acme", "a", t2.lease_token, 0, "late", &st),
                PERS_ERR_INVALID_STATE, "S5c: nack with the completing token");
        pcti_every_op(c, "acme", "a", t1.lease_token, PERS_ERR_LEASE_LOST, PERS_ERR_LEASE_LOST,
                      "S5d: an older token of a completed task");
        if (pcti_has(c, PERS_CAP_DEAD_LETTER))
            pcti_rc(c, pers_requeue_dead(c->s, "acme", "a"), PERS_ERR_INVALID_STATE,
                    "requeue_dead of a completed task");
        pcti_expect_task(c, "acme", "a", PERS_STATE_COMPLETED, 2,
                         "S5: nothing after completion changes the task");
        pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "r", 1,
                       "S5: nothing after completion changes the result");
        pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: claim after completion");
    }
    pers_task_free(c->s, &t1);
    pers_task_free(c->s, &t2);
}

/* PS-COMPLETE-04 */
static void pcti_complete_04(pcti_case *c)
{
    int64_t t0;
    pers_task t, g;
    pers_task_state st;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 5) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "claim"))
        return;
    pcti_advance(c, 5);
    t0 = pcti_now(c);
    if (pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "fatal", 1), PERS_OK,
                "S12: complete with failed = 1, 4 attempts left")) {
        if (pcti_get(c, "acme", "a", &g, "S6, S12: after a failed completion")) {
            pcti_eq_state(c, g.state, PERS_STATE_FAILED,
                          "S6: complete with an error is a final failure whatever the attempts");
            pcti_eq_u64(c, g.attempts, 1, "S6: attempts");
            pcti_eq_i64(c, g.finished_ms, t0, "S12: finished_ms");
            pers_task_free(c->s, &g);
        }
        pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: a failed task is never retried");
        pcti_advance(c, PCTI_LONG * 2);
        pcti_none(c, "acme", "email", PERS_NO_TIME, "S1: failed is final");
        pcti_stats(c, "acme", "email", 0, 0, 0, 0, 1, 0, "S17: one failed task");
        pcti_result_is(c, "acme", "a", PERS_STATE_FAILED, "fatal", 5, "S12: the stored error");
        pcti_rc(c, pcti_extend(c, "acme", "a", t.lease_token, 1000, NULL),
                PERS_ERR_INVALID_STATE, "S5c: extend_lease of a failed task");
        pcti_rc(c, pcti_nack(c, "acme", "a", t.lease_token, 0, "x", &st), PERS_ERR_INVALID_STATE,
                "S5c: nack of a failed task");
        pcti_rc(c, pcti_abandon(c, "acme", "a", t.lease_token), PERS_ERR_INVALID_STATE,
                "S5c: abandon of a failed task");
    }
    pers_task_free(c->s, &t);
}

/* PS-CBATCH-01 */
static void pcti_cbatch_01(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_task a, b, stale, d, e, f;
    pers_lease l[7];
    pers_completion w[7];
    pers_result res[7];
    static const pers_result want[7] = {PERS_OK, PERS_ERR_LEASE_LOST, PERS_OK,
                                        PERS_ERR_NOT_FOUND, PERS_ERR_ALREADY_COMPLETED, PERS_OK,
                                        PERS_ERR_NOT_FOUND};
    static const char *const item[7] = {
        "a with its token", "b with a stale token (S5d)", "d failed = 1 (S12)",
        "e named in the wrong tenant (S13)", "a a second time (S5c, items in order)",
        "e in its own tenant", "an id never enqueued (S5a)"};
    pers_claim_res cr;
    pers_task two[2];
    int64_t t0;
    size_t i;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "b", 0, 0, 0) ||
        !pcti_put(c, "acme", "sms", "d", 0, 0, 0) ||
        !pcti_put(c, "globex", "email", "e", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "f", -1, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &a, "claim of a") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "b", &stale, "claim of b"))
        return;
    /* b is given back and claimed again: its first token is stale. */
    pcti_rc(c, pcti_abandon(c, "acme", "b", stale.lease_token), PERS_OK, "abandon of b");
    if (!pcti_take(c, "acme", "email", "w2", PCTI_LONG, "b", &b, "second claim of b") ||
        !pcti_take(c, "acme", "sms", "w1", PCTI_LONG, "d", &d, "claim of d") ||
        !pcti_take(c, "globex", "email", "w1", PCTI_LONG, "e", &e, "claim of e"))
        return;
    pcti_advance(c, 25);
    t0 = pcti_now(c);
    l[0] = pcti_lease("acme", "a", a.lease_token);
    w[0] = pcti_done("ra", 0);
    l[1] = pcti_lease("acme", "b", stale.lease_token);
    w[1] = pcti_done("stale", 0);
    l[2] = pcti_lease("acme", "d", d.lease_token);
    w[2] = pcti_done("boom", 1);
    l[3] = pcti_lease("acme", "e", e.lease_token);
    w[3] = pcti_done("wrong tenant", 0);
    l[4] = pcti_lease("acme", "a", a.lease_token);
    w[4] = pcti_done("again", 0);
    l[5] = pcti_lease("globex", "e", e.lease_token);
    w[5] = pcti_done("re", 0);
    l[6] = pcti_lease("acme", "never", 7);
    w[6] = pcti_done("none", 0);
    for (i = 0; i < 7; i++)
        res[i] = PERS_ERR_INTERNAL;
    if (pcti_rc(c, pers_complete_batch(c->s, l, w, 7, res), PERS_OK,
                "S20: complete_batch of 7 items")) {
        for (i = 0; i < 7; i++)
            pcti_rc(c, res[i], want[i], "S20: results[%lu], %s", (unsigned long)i, item[i]);
    }
    if (pcti_get(c, "acme", "a", &f, "after the batch")) {
        pcti_eq_state(c, f.state, PERS_STATE_COMPLETED, "S20, S12: a is completed");
        pcti_eq_i64(c, f.finished_ms, t0, "S12: a's finished_ms = now");
        pcti_eq_i64(c, f.lease_expires_ms, 0, "S12: a's lease is released");
        pers_task_free(c->s, &f);
    }
    pcti_result_is(c, "acme", "a", PERS_STATE_COMPLETED, "ra", 2,
                   "S20, S5c: a keeps its first result");
    pcti_expect_task(c, "acme", "b", PERS_STATE_LEASED, 1,
                     "S5d: b stays with its new holder after a stale item");
    pcti_expect_task(c, "acme", "d", PERS_STATE_FAILED, 1, "S20, S12: d failed for good");
    pcti_result_is(c, "acme", "d", PERS_STATE_FAILED, "boom", 4, "S12: d's error");
    pcti_expect_task(c, "globex", "e", PERS_STATE_COMPLETED, 1, "S20: e in its own tenant");
    pcti_result_is(c, "globex", "e", PERS_STATE_COMPLETED, "re", 2, "S12: e's result");
    pcti_stats(c, "acme", "email", 0, 1, 1, 1, 0, 0, "S17: acme/email after the batch");
    pcti_stats(c, "acme", "sms", 0, 0, 0, 0, 1, 0, "S17: acme/sms after the batch");
    pcti_stats(c, "globex", "email", 0, 0, 0, 1, 0, 0, "S17: globex/email after the batch");
    pers_task_free(c->s, &a);
    pers_task_free(c->s, &stale);
    pers_task_free(c->s, &d);
    pers_task_free(c->s, &e);
    /* completions NULL: every item completed with an empty result. */
    if (pcti_claim(c, "acme", email, 1, "w3", PCTI_LONG, 2, two, &cr, "claim of f") == 1) {
        l[0] = pcti_lease("acme", two[0].id, two[0].lease_token);
        l[1] = pcti_lease("acme", "b", b.lease_token);
        if (pcti_rc(c, pers_complete_batch(c->s, l, NULL, 2, res), PERS_OK,
                    "S20: complete_batch with completions NULL")) {
            pcti_rc(c, res[0], PERS_OK, "S20: results[0] with completions NULL");
            pcti_rc(c, res[1], PERS_OK, "S20: results[1] with completions NULL");
            pcti_result_is(c, "acme", "f", PERS_STATE_COMPLETED, "", 0,
                           "S20: completions NULL stores an empty result");
            pcti_result_is(c, "acme", "b", PERS_STATE_COMPLETED, "", 0,
                           "S20: completions NULL stores an empty result");
        }
        pers_tasks_free(c->s, two, cr.count);
    } else if (cr.count > 1) {
        pcti_fail(c, "claim of f: expected 1 task, got %lu", (unsigned long)cr.count);
        pers_tasks_free(c->s, two, cr.count);
    }
    pers_task_free(c->s, &b);
}

/* PS-CBATCH-02 */
static void pcti_cbatch_02(pcti_case *c)
{
    pers_store_desc desc = pers_store_resolved(c->s);
    pers_task a, b;
    pers_lease l[2];
    pers_completion w[2];
    pers_result res[2];
    char *big;
    size_t i, k;
    const char *what[5] = {"token 0 (S4)", "a tenant with '|' (S10)",
                           "a result over the limit (S11)", "failed = 2",
                           "data NULL with a length"};
    pers_result want[5] = {PERS_ERR_INVALID_ARGUMENT, PERS_ERR_INVALID_ARGUMENT,
                           PERS_ERR_TOO_LARGE, PERS_ERR_INVALID_ARGUMENT,
                           PERS_ERR_INVALID_ARGUMENT};
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "b", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &a, "claim of a") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "b", &b, "claim of b"))
        return;
    big = (char *)calloc(1, (size_t)desc.max_payload_bytes + 1);
    if (big == NULL) {
        pcti_fail(c, "the suite ran out of memory");
        pers_task_free(c->s, &a);
        pers_task_free(c->s, &b);
        return;
    }
    for (k = 0; k < 5; k++) {
        l[0] = pcti_lease("acme", "a", a.lease_token);
        w[0] = pcti_done("ok", 0);
        l[1] = pcti_lease("acme", "b", b.lease_token);
        w[1] = pcti_done("ok", 0);
        if (k == 0)
            l[1].token = 0;
        else if (k == 1)
            l[1].tenant = "ac|me";
        else if (k == 2) {
            w[1].data = big;
            w[1].data_len = (size_t)desc.max_payload_bytes + 1;
        } else if (k == 3)
            w[1].failed = 2;
        else {
            w[1].data = NULL;
            w[1].data_len = 3;
        }
        res[0] = res[1] = PERS_OK;
        if (pcti_rc(c, pers_complete_batch(c->s, l, w, 2, res), want[k],
                    "S20: complete_batch whose item 1 has %s", what[k]))
            for (i = 0; i < 2; i++)
                pcti_rc(c, res[i], want[k], "S20: results[%lu] of a refused batch (%s)",
                        (unsigned long)i, what[k]);
        pcti_true(c, strstr(pers_errmsg(c->s), "item 1") != NULL,
                  "S20: the message of a refused batch names the item: \"%s\"",
                  pers_errmsg(c->s));
    }
    free(big);
    l[0] = pcti_lease("acme", "a", a.lease_token);
    pcti_rc(c, pers_complete_batch(c->s, l, NULL, 0, res), PERS_ERR_INVALID_ARGUMENT,
            "S20: complete_batch of 0 items");
    pcti_rc(c, pers_complete_batch(c->s, NULL, NULL, 1, res), PERS_ERR_INVALID_ARGUMENT,
            "S20: complete_batch with leases NULL");
    pcti_rc(c, pers_complete_batch(c->s, l, NULL, 1, NULL), PERS_ERR_INVALID_ARGUMENT,
            "S20: complete_batch with results NULL");
    pcti_expect_task(c, "acme", "a", PERS_STATE_LEASED, 1, "S20: a refused batch changes nothing");
    pcti_expect_task(c, "acme", "b", PERS_STATE_LEASED, 1, "S20: a refused batch changes nothing");
    pcti_no_result(c, "acme", "a", "S20: a refused batch stores no result");
    l[1] = pcti_lease("acme", "b", b.lease_token);
    if (pcti_rc(c, pers_complete_batch(c->s, l, NULL, 2, res), PERS_OK,
                "S20: the same batch, valid")) {
        pcti_rc(c, res[0], PERS_OK, "S20: results[0] of the valid batch");
        pcti_rc(c, res[1], PERS_OK, "S20: results[1] of the valid batch");
    }
    pcti_stats(c, "acme", "email", 0, 0, 0, 2, 0, 0, "S17: both completed at last");
    pers_task_free(c->s, &a);
    pers_task_free(c->s, &b);
}

/* PS-CBATCH-03 */
static void pcti_cbatch_03(pcti_case *c)
{
    enum { N = 20 };
    static const char *const email[] = {"email"};
    pers_task t[N];
    pers_claim_res cr;
    pers_lease l[N];
    pers_completion w[N];
    pers_result res[N];
    char id[N][8];
    size_t i;
    for (i = 0; i < N; i++) {
        snprintf(id[i], sizeof id[i], "t%02lu", (unsigned long)i);
        if (!pcti_put(c, "acme", "email", id[i], 0, 0, 3))
            return;
    }
    if (pcti_claim(c, "acme", email, 1, "w1", 1000, N, t, &cr, "claim of 20") != N) {
        if (cr.count > 0)
            pers_tasks_free(c->s, t, cr.count);
        pcti_fail(c, "S3: a claim of 20 with 20 ready returned %lu", (unsigned long)cr.count);
        return;
    }
    pcti_advance(c, 500);
    for (i = 0; i < N / 2; i++)
        pcti_rc(c, pcti_extend(c, "acme", t[i].id, t[i].lease_token, 10000, NULL), PERS_OK,
                "extend_lease of %s", t[i].id);
    pcti_advance(c, 600); /* the other ten expired 100 ms ago */
    for (i = 0; i < N; i++) {
        l[i] = pcti_lease("acme", t[i].id, t[i].lease_token);
        w[i] = pcti_done(t[i].id, 0);
        res[i] = PERS_ERR_INTERNAL;
    }
    if (pcti_rc(c, pers_complete_batch(c->s, l, w, N, res), PERS_OK,
                "S20: complete_batch of the whole claim"))
        for (i = 0; i < N; i++)
            pcti_rc(c, res[i], i < N / 2 ? PERS_OK : PERS_ERR_LEASE_LOST,
                    "S20: results[%lu] (%s, lease %s)", (unsigned long)i, t[i].id,
                    i < N / 2 ? "extended" : "expired: S7, S5d");
    for (i = 0; i < N; i++) {
        if (i < N / 2) {
            pcti_result_is(c, "acme", t[i].id, PERS_STATE_COMPLETED, t[i].id, 3,
                           "S20: each item's own result");
        } else {
            pers_task g;
            if (pcti_get(c, "acme", t[i].id, &g, "S7: an expired item")) {
                pcti_eq_state(c, g.state, PERS_STATE_READY, "S7: %s expired, ready again",
                              t[i].id);
                pcti_eq_str(c, g.last_error, "lease expired", "S7: %s's reason", t[i].id);
                pers_task_free(c->s, &g);
            }
        }
    }
    pcti_stats(c, "acme", "email", 0, N / 2, 0, N / 2, 0, 0, "S17: after the batch");
    pers_tasks_free(c->s, t, N);
}

/* PS-RESULT-01 */
static void pcti_result_01(pcti_case *c)
{
    pers_task t, g;
    pers_task_result r;
    int64_t t0;
    if (!pcti_put(c, "acme", "email", "leased", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "done", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "dead", 0, 0, 1) ||
        !pcti_put(c, "acme", "email", "ready", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "sched", 0, 1000, 0))
        return;
    pcti_no_result(c, "acme", "nosuch", "S12: an unknown task");
    pcti_no_result(c, "acme", "sched", "S12: a scheduled task");
    pcti_no_result(c, "acme", "leased", "S12: a ready task");
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "leased", NULL, "claim"))
        return;
    pcti_no_result(c, "acme", "leased", "S12: a leased task");
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "done", &t, "claim"))
        return;
    pcti_no_result(c, "acme", "done", "S12: a leased task");
    pcti_advance(c, 3);
    t0 = pcti_now(c);
    pcti_rc(c, pcti_complete(c, "acme", "done", t.lease_token, "result-data", 0), PERS_OK,
            "complete");
    pers_task_free(c->s, &t);
    if (pcti_rc(c, pers_get_result(c->s, "acme", "done", &r), PERS_OK,
                "S12: get_result of a completed task")) {
        pcti_eq_str(c, r.task_id, "done", "get_result: task_id");
        pcti_eq_str(c, r.tenant, "acme", "get_result: tenant");
        pcti_eq_str(c, r.queue, "email", "get_result: queue");
        pcti_eq_state(c, r.state, PERS_STATE_COMPLETED, "get_result: state");
        pcti_eq_u64(c, r.attempts, 1, "get_result: attempts");
        pcti_eq_i64(c, r.finished_ms, t0, "get_result: finished_ms");
        pcti_eq_data(c, r.data, r.data_len, "result-data", 11, "get_result: data");
        pers_task_result_free(c->s, &r);
    }
    if (pcti_kill(c, "acme", "email", "dead", "why it died")) {
        pcti_no_result(c, "acme", "dead", "S12: a dead task");
        if (pcti_get(c, "acme", "dead", &g, "S12: a dead task's reason")) {
            pcti_eq_str(c, g.last_error, "why it died",
                        "S12: a dead task's reason is in last_error");
            pers_task_free(c->s, &g);
        }
    }
    pcti_no_result(c, "acme", "ready", "S12: a ready task");
    pcti_no_result(c, "globex", "done", "S13: another tenant's completed task");
}

/* Enqueue that must be a duplicate of want_id (S8). */
static void pcti_dup(pcti_case *c, pers_enqueue_req *r, const char *want_id, const char *what)
{
    pers_enqueue_res res;
    if (!pcti_rc(c, pers_enqueue(c->s, r, &res), PERS_OK, "%s", what))
        return;
    pcti_eq_i64(c, res.duplicate, 1, "%s: duplicate flag (S8)", what);
    pcti_eq_str(c, res.task_id, want_id, "%s: the existing task's id (S8)", what);
}

/* PS-IDEM-01 */
static void pcti_idem_01(pcti_case *c)
{
    char id1[PERS_ID_MAX + 1];
    pers_enqueue_req r = pcti_req("acme", "email", "first");
    pers_task g;
    r.idempotency_key = "k1";
    if (!pcti_enqueue(c, &r, id1, "enqueue with key k1"))
        return;
    r = pcti_req("acme", "email", "second");
    r.idempotency_key = "k1";
    r.priority = 9;
    r.delay_ms = 1000;
    r.max_attempts = 9;
    pcti_dup(c, &r, id1, "S8: the same key again, other payload, priority and delay");
    r.task_id = "other-id";
    pcti_dup(c, &r, id1, "S8: the same key with a caller-supplied id");
    pcti_get_rc(c, "acme", "other-id", PERS_ERR_NOT_FOUND,
            "S8: the duplicate enqueue created no task under its own id");
    if (pcti_get(c, "acme", id1, &g, "S8: the first task")) {
        pcti_eq_data(c, g.payload, g.payload_len, "first", 5, "S8: payload unchanged");
        pcti_eq_i64(c, g.priority, 0, "S8: priority unchanged");
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S8: state unchanged (no delay applied)");
        pcti_eq_u64(c, g.max_attempts, PCTI_ATTEMPTS, "S8: max_attempts unchanged");
        pers_task_free(c->s, &g);
    }
    pcti_stats(c, "acme", "email", 0, 1, 0, 0, 0, 0, "S8: one task for one key");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, id1, NULL, "claim");
    pcti_none(c, "acme", "email", PERS_NO_TIME, "S8: no second task");
}

/* PS-IDEM-02 */
static void pcti_idem_02(pcti_case *c)
{
    char a[PERS_ID_MAX + 1], b[PERS_ID_MAX + 1], g[PERS_ID_MAX + 1];
    pers_enqueue_req r = pcti_req("acme", "email", "1");
    r.idempotency_key = "k";
    if (!pcti_enqueue(c, &r, a, "enqueue with key k in acme/email"))
        return;
    r = pcti_req("acme", "sms", "2");
    r.idempotency_key = "k";
    if (!pcti_enqueue(c, &r, b, "S8: the same key in another queue is unrelated"))
        return;
    r = pcti_req("globex", "email", "3");
    r.idempotency_key = "k";
    if (!pcti_enqueue(c, &r, g, "S8: the same key in another tenant is unrelated"))
        return;
    pcti_true(c, strcmp(a, b) != 0, "S8, S9: two tasks of one tenant got the same id \"%s\"", a);
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, a, NULL, "claim in acme/email");
    pcti_take(c, "acme", "sms", "w1", PCTI_LONG, b, NULL, "claim in acme/sms");
    pcti_take(c, "globex", "email", "w1", PCTI_LONG, g, NULL, "claim in globex/email");
}

/* PS-IDEM-03 */
static void pcti_idem_03(pcti_case *c)
{
    char id[PERS_ID_MAX + 1], dead[PERS_ID_MAX + 1];
    pers_enqueue_req r = pcti_req("acme", "email", "x"), d = pcti_req("acme", "email", "y");
    pers_task t;
    pers_task_state st;
    r.idempotency_key = "kk";
    d.idempotency_key = "kd";
    d.max_attempts = 1;
    if (!pcti_enqueue(c, &r, id, "enqueue with key kk") ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, id, &t, "claim"))
        return;
    pcti_dup(c, &r, id, "S8: the key of a leased task");
    pcti_rc(c, pcti_nack(c, "acme", id, t.lease_token, 1000, "later", &st), PERS_OK, "nack");
    pers_task_free(c->s, &t);
    pcti_dup(c, &r, id, "S8: the key of a scheduled task");
    pcti_advance(c, 1000);
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, id, &t, "claim after the retry delay"))
        return;
    pcti_rc(c, pcti_complete(c, "acme", id, t.lease_token, "ok", 0), PERS_OK, "complete");
    pers_task_free(c->s, &t);
    pcti_dup(c, &r, id, "S8: the key of a completed task");
    if (pcti_enqueue(c, &d, dead, "enqueue with key kd") &&
        pcti_kill(c, "acme", "email", dead, "dies"))
        pcti_dup(c, &d, dead, "S8: the key of a dead task");
    pcti_stats(c, "acme", "email", 0, 0, 0, 1, 0, 1, "S8: no task added by the duplicates");
}

/* PS-IDEM-04 */
static void pcti_idem_04(pcti_case *c)
{
    pers_enqueue_req reqs[5];
    pers_enqueue_res res[5];
    char pre[PERS_ID_MAX + 1];
    pers_enqueue_req r = pcti_req("acme", "email", "0");
    pers_task g;
    r.idempotency_key = "pre";
    if (!pcti_enqueue(c, &r, pre, "enqueue with key pre"))
        return;
    reqs[0] = pcti_req("acme", "email", "1");
    reqs[0].idempotency_key = "a";
    reqs[1] = pcti_req("acme", "email", "2");
    reqs[1].idempotency_key = "b";
    reqs[2] = pcti_req("acme", "email", "3");
    reqs[2].idempotency_key = "a";
    reqs[3] = pcti_req("acme", "email", "4");
    reqs[4] = pcti_req("acme", "email", "5");
    reqs[4].idempotency_key = "pre";
    if (!pcti_rc(c, pers_enqueue_batch(c->s, reqs, 5, res), PERS_OK,
                 "enqueue_batch with repeated keys"))
        return;
    pcti_eq_i64(c, res[0].duplicate, 0, "S8: batch request 0 (key a, first): duplicate");
    pcti_eq_i64(c, res[1].duplicate, 0, "S8: batch request 1 (key b): duplicate");
    pcti_eq_i64(c, res[2].duplicate, 1, "S8: batch request 2 (key a again): duplicate");
    pcti_eq_str(c, res[2].task_id, res[0].task_id,
                "S8: batch request 2 refers to the first request that carried key a");
    pcti_eq_i64(c, res[3].duplicate, 0, "S8: batch request 3 (no key): duplicate");
    pcti_eq_i64(c, res[4].duplicate, 1, "S8: batch request 4 (key of an existing task)");
    pcti_eq_str(c, res[4].task_id, pre, "S8: batch request 4 refers to the existing task");
    if (pcti_get(c, "acme", res[0].task_id, &g, "S8: the task of key a")) {
        pcti_eq_data(c, g.payload, g.payload_len, "1", 1, "S8: the first request's payload");
        pers_task_free(c->s, &g);
    }
    pcti_stats(c, "acme", "email", 0, 4, 0, 0, 0, 0, "S8: one existing and three new tasks");
}

/* PS-IDEM-05 */
static void pcti_idem_05(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", "x");
    pers_enqueue_res res;
    r.task_id = "fixed";
    r.idempotency_key = "k";
    if (!pcti_enqueue(c, &r, NULL, "enqueue of \"fixed\" with key k"))
        return;
    pcti_dup(c, &r, "fixed", "S9: the same id and key: the idempotency check comes first");
    r.task_id = "other";
    pcti_dup(c, &r, "fixed", "S8: another id with key k");
    r.task_id = "fixed";
    r.idempotency_key = "k2";
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_DUPLICATE,
            "S9: an existing id with another key");
    r.idempotency_key = NULL;
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_DUPLICATE, "S9: an existing id without key");
    r.task_id = "fresh";
    r.idempotency_key = "k2";
    pcti_enqueue(c, &r, NULL, "S8, S9: key k2 of the refused enqueue was not recorded");
    pcti_stats(c, "acme", "email", 0, 2, 0, 0, 0, 0, "S9: two tasks");
}

/* PS-ID-01 */
static void pcti_id_01(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", "acme's");
    pers_enqueue_res res;
    pers_task g;
    char id[PERS_ID_MAX + 1];
    r.task_id = "order-42:v1";
    if (!pcti_enqueue(c, &r, id, "enqueue with a caller-supplied id"))
        return;
    pcti_eq_str(c, id, "order-42:v1", "S9: the caller-supplied id is the task's id");
    r = pcti_req("acme", "sms", "again");
    r.task_id = "order-42:v1";
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_DUPLICATE,
            "S9: the same id in the same tenant (another queue)");
    pcti_stats(c, "acme", "sms", 0, 0, 0, 0, 0, 0, "S9: the refused task is not in sms");
    r = pcti_req("globex", "email", "globex's");
    r.task_id = "order-42:v1";
    pcti_enqueue(c, &r, NULL, "S9: the same id in another tenant");
    if (pcti_get(c, "acme", "order-42:v1", &g, "S9: acme's task")) {
        pcti_eq_data(c, g.payload, g.payload_len, "acme's", 6, "S9, S13: acme's payload");
        pcti_eq_str(c, g.queue, "email", "S9: acme's queue unchanged");
        pers_task_free(c->s, &g);
    }
    if (pcti_get(c, "globex", "order-42:v1", &g, "S9: globex's task")) {
        pcti_eq_data(c, g.payload, g.payload_len, "globex's", 8, "S9, S13: globex's payload");
        pers_task_free(c->s, &g);
    }
}

/* PS-ID-02 */
static void pcti_id_02(pcti_case *c)
{
    enum { N = 200 };
    char(*ids)[PERS_ID_MAX + 1] = (char(*)[PERS_ID_MAX + 1])malloc(N * (PERS_ID_MAX + 1));
    pers_enqueue_req r = pcti_req("acme", "email", "x");
    size_t i, j, n = 0;
    pers_task g;
    if (ids == NULL) {
        pcti_fail(c, "the suite ran out of memory");
        return;
    }
    for (i = 0; i < N; i++) {
        if (!pcti_enqueue(c, &r, ids[i], "enqueue without an id"))
            break;
        n++;
        if (strlen(ids[i]) != PERS_GENERATED_ID_LEN ||
            strspn(ids[i], "0123456789abcdef") != PERS_GENERATED_ID_LEN) {
            pcti_fail(c, "S9: generated id \"%.140s\" is not %d lowercase hexadecimal digits",
                      ids[i], PERS_GENERATED_ID_LEN);
            break;
        }
    }
    for (i = 0; i < n && !pcti_failed(c); i++)
        for (j = i + 1; j < n; j++)
            if (strcmp(ids[i], ids[j]) == 0) {
                pcti_fail(c, "S9: enqueues %lu and %lu got the same id \"%s\"", (unsigned long)i,
                          (unsigned long)j, ids[i]);
                break;
            }
    if (n > 0 && pcti_get(c, "acme", ids[n - 1], &g, "S9: get_task by a generated id"))
        pers_task_free(c->s, &g);
    free(ids);
}

/* PS-TENANT-01 */
static void pcti_tenant_01(pcti_case *c)
{
    pers_task t, g;
    pers_enqueue_req q;
    int64_t t0 = pcti_now(c);
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "c", 0, 0, 0) || !pcti_put(c, "acme", "email", "d", 0, 0, 1))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "claim of a"))
        return;
    if (!pcti_take(c, "acme", "email", "w1", PCTI_LONG, "c", &g, "claim of c")) {
        pers_task_free(c->s, &t);
        return;
    }
    pcti_rc(c, pcti_complete(c, "acme", "c", g.lease_token, "secret", 0), PERS_OK, "complete c");
    pers_task_free(c->s, &g);
    pcti_kill(c, "acme", "email", "d", "dead in acme");

    pcti_get_rc(c, "globex", "a", PERS_ERR_NOT_FOUND,
            "S13: get_task of acme's leased task in globex");
    pcti_get_rc(c, "globex", "c", PERS_ERR_NOT_FOUND,
            "S13: get_task of acme's completed task in globex");
    pcti_get_rc(c, "globex", "d", PERS_ERR_NOT_FOUND,
            "S13: get_task of acme's dead task in globex");
    pcti_every_op(c, "globex", "a", t.lease_token, PERS_ERR_NOT_FOUND, PERS_ERR_NOT_FOUND,
                  "S13, S5a: acme's lease presented in globex");
    pcti_no_result(c, "globex", "c", "S13: get_result of acme's task in globex");
    if (pcti_has(c, PERS_CAP_DEAD_LETTER))
        pcti_rc(c, pers_requeue_dead(c->s, "globex", "d"), PERS_ERR_NOT_FOUND,
                "S13: requeue_dead of acme's dead task in globex");
    pcti_expect_task(c, "acme", "d", PERS_STATE_DEAD, 1, "S13: acme's dead task unchanged");
    if (pcti_get(c, "acme", "a", &g, "S13: acme's leased task afterwards")) {
        pcti_eq_state(c, g.state, PERS_STATE_LEASED, "S13: acme's task unchanged: state");
        pcti_eq_u64(c, g.attempts, 1, "S13: acme's task unchanged: attempts");
        pcti_eq_i64(c, g.lease_expires_ms, t0 + PCTI_LONG,
                    "S13: acme's task unchanged: lease_expires_ms");
        pers_task_free(c->s, &g);
    }
    pcti_rc(c, pcti_complete(c, "acme", "a", t.lease_token, "mine", 0), PERS_OK,
            "S13: acme completes its own task");
    pers_task_free(c->s, &t);

    q = pcti_req("globex", "email", "globex's");
    q.task_id = "c";
    if (pcti_enqueue(c, &q, NULL, "S9, S13: enqueue of id c in globex") &&
        pcti_get(c, "globex", "c", &g, "S13: globex's task c")) {
        pcti_eq_data(c, g.payload, g.payload_len, "globex's", 8, "S13: globex's task c");
        pcti_eq_state(c, g.state, PERS_STATE_READY, "S13: globex's task c");
        pers_task_free(c->s, &g);
        pcti_no_result(c, "globex", "c", "S13: globex's task c has no result (acme's c has)");
    }
}

/* PS-TENANT-02 */
static void pcti_tenant_02(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_task t[10];
    pers_claim_res res;
    int n, i;
    if (!pcti_put(c, "acme", "email", "a1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "a2", 0, 0, 0) ||
        !pcti_put(c, "globex", "email", "g1", -5, 0, 0) ||
        !pcti_put(c, "acme", "email", "a3", 9, 0, 0))
        return;
    n = pcti_claim(c, "globex", email, 1, "w1", PCTI_LONG, 10, t, &res, "claim of 10 in globex");
    if (n < 0)
        return;
    if (pcti_eq_i64(c, n, 1, "S13: a claim in globex takes only globex's task: count"))
        pcti_eq_str(c, t[0].id, "g1", "S13: the task globex claimed");
    pers_tasks_free(c->s, t, (size_t)n);
    pcti_stats(c, "globex", "email", 0, 0, 1, 0, 0, 0, "S13, S17: globex/email");
    pcti_stats(c, "acme", "email", 0, 3, 0, 0, 0, 0, "S13, S17: acme/email");
    pcti_stats(c, "initech", "email", 0, 0, 0, 0, 0, 0, "S17: a tenant without tasks");
    pcti_none(c, "initech", "email", PERS_NO_TIME, "S13: claim in a tenant without tasks");
    n = pcti_claim(c, "acme", email, 1, "w1", PCTI_LONG, 10, t, &res, "claim of 10 in acme");
    if (n < 0)
        return;
    pcti_eq_i64(c, n, 3, "S13: a claim in acme takes acme's three tasks");
    for (i = 0; i < n; i++)
        pcti_eq_str(c, t[i].tenant, "acme", "S13: tenant of claimed task \"%s\"", t[i].id);
    pers_tasks_free(c->s, t, (size_t)n);
}

/* PS-NAME-01 */
static void pcti_name_01(pcti_case *c)
{
    static const char *const bad[] = {"|",  "{",  "}",    "/",    "#",    " ",    "\"", "'",
                                      "\\", ":",  "\t",   "\n",   "\r",   "\x01", "\x1f",
                                      "\x7f", "\x80", "\xc3\xa9", "*", "?", "%",  "@",  "$",
                                      "[",  "]",  "(",    ")",    ",",    ";",    "=",  "+",
                                      "~",  "!",  "&",    "^",    "`",    "<",    ">"};
    static const char *const lead[] = {"_a", ".a", "-a"};
    static const char *const email[] = {"email"};
    char name[16], shown[16];
    const char *qs[1];
    size_t i, accepted = 0;
    pers_enqueue_req r;
    pers_enqueue_res res;
    pers_claim_req cq;
    pers_stats st;
    pers_subscribe_req sq;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(name, sizeof name, "a%sb", bad[i]);
        pcti_show(bad[i], strlen(bad[i]), shown, sizeof shown);
        r = pcti_req(name, "email", "x");
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with tenant \"a%sb\"", shown);
        r = pcti_req("acme", name, "x");
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with queue \"a%sb\"", shown);
        cq = pcti_claim_req("acme", email, 1, name, 1000, 1);
        pcti_claim_rc(c, &cq, PERS_ERR_INVALID_ARGUMENT,
                "S10: claim with worker id \"a%sb\"", shown);
        qs[0] = name;
        cq = pcti_claim_req("acme", qs, 1, "w1", 1000, 1);
        pcti_claim_rc(c, &cq, PERS_ERR_INVALID_ARGUMENT,
                "S10: claim of queue \"a%sb\"", shown);
        cq = pcti_claim_req(name, email, 1, "w1", 1000, 1);
        pcti_claim_rc(c, &cq, PERS_ERR_INVALID_ARGUMENT,
                "S10: claim in tenant \"a%sb\"", shown);
        pcti_get_rc(c, name, "x", PERS_ERR_INVALID_ARGUMENT,
                "S10: get_task in tenant \"a%sb\"", shown);
        if (pcti_has(c, PERS_CAP_STATS))
            pcti_rc(c, pers_queue_stats(c->s, "acme", name, &st), PERS_ERR_INVALID_ARGUMENT,
                    "S10: queue_stats of queue \"a%sb\"", shown);
        if (pcti_has(c, PERS_CAP_SUBSCRIPTIONS)) {
            memset(&sq, 0, sizeof sq);
            sq.tenant = "acme";
            sq.worker_id = name;
            sq.queues = email;
            sq.queue_count = 1;
            sq.callback = "http://x/";
            sq.ttl_ms = 1000;
            pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_ERR_INVALID_ARGUMENT,
                    "S10: subscribe of worker \"a%sb\"", shown);
        }
        r = pcti_req("acme", "email", "x");
        r.task_id = name;
        if (strcmp(bad[i], ":") == 0) {
            if (pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_OK,
                        "S10: enqueue with task id \"a:b\" (':' is allowed in ids)"))
                accepted++;
            r.task_id = NULL;
            r.idempotency_key = name;
            if (pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_OK,
                        "S10: enqueue with idempotency key \"a:b\" (':' is allowed in keys)"))
                accepted++;
            continue;
        }
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with task id \"a%sb\"", shown);
        r.task_id = NULL;
        r.idempotency_key = name;
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with idempotency key \"a%sb\"", shown);
        pcti_get_rc(c, "acme", name, PERS_ERR_INVALID_ARGUMENT,
                "S10: get_task of id \"a%sb\"", shown);
        if (pcti_failed(c))
            return; /* one character's report is enough */
    }
    for (i = 0; i < 3; i++) {
        r = pcti_req(lead[i], "email", "x");
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with tenant \"%s\" (a name starts with a letter or digit)", lead[i]);
        r = pcti_req("acme", lead[i], "x");
        pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
                "S10: enqueue with queue \"%s\"", lead[i]);
        r = pcti_req("acme", "email", "x");
        r.task_id = lead[i];
        if (pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_OK,
                    "S10: enqueue with task id \"%s\" (ids may start with any allowed character)",
                    lead[i]))
            accepted++;
    }
    r = pcti_req(NULL, "email", "x");
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: enqueue with a NULL tenant");
    pcti_stats(c, "acme", "email", 0, accepted, 0, 0, 0, 0,
               "S10: only the valid enqueues created tasks");
}

/* PS-NAME-02 */
static void pcti_name_02(pcti_case *c)
{
    static const char *const email[] = {"email"};
    char n64[PERS_NAME_MAX + 1], n65[PERS_NAME_MAX + 2], k128[PERS_KEY_MAX + 1],
        k129[PERS_KEY_MAX + 2];
    char *cb512 = (char *)malloc(PERS_ADDRESS_MAX + 2);
    char *rs1024 = (char *)malloc(PERS_REASON_MAX + 2);
    const char *qs[1];
    pers_enqueue_req r;
    pers_enqueue_res res;
    pers_claim_req cq;
    pers_claim_res cr;
    pers_task t, g;
    pers_task_state st;
    pers_subscribe_req sq;
    pers_subscription_list sl;
    if (cb512 == NULL || rs1024 == NULL) {
        free(cb512);
        free(rs1024);
        pcti_fail(c, "the suite ran out of memory");
        return;
    }
    memset(n64, 'n', PERS_NAME_MAX);
    n64[0] = 'N';
    n64[PERS_NAME_MAX] = '\0';
    memset(n65, 'n', PERS_NAME_MAX + 1);
    n65[PERS_NAME_MAX + 1] = '\0';
    memset(k128, 'k', PERS_KEY_MAX);
    k128[0] = ':';
    k128[PERS_KEY_MAX] = '\0';
    memset(k129, 'k', PERS_KEY_MAX + 1);
    k129[PERS_KEY_MAX + 1] = '\0';
    memset(cb512, 'c', PERS_ADDRESS_MAX + 1);
    memcpy(cb512, "http://", 7);
    cb512[PERS_ADDRESS_MAX + 1] = '\0'; /* 513 characters */
    memset(rs1024, 'r', PERS_REASON_MAX + 1);
    rs1024[PERS_REASON_MAX + 1] = '\0'; /* 1025 bytes */

    r = pcti_req(n64, n64, "x");
    r.task_id = k128;
    r.idempotency_key = k128;
    if (pcti_enqueue(c, &r, NULL, "S10: enqueue with a 64-character tenant and queue and a "
                                  "128-character id and key")) {
        if (pcti_get(c, n64, k128, &g, "S10: the longest names")) {
            pcti_eq_str(c, g.tenant, n64, "S10: a 64-character tenant round-trips");
            pcti_eq_str(c, g.queue, n64, "S10: a 64-character queue round-trips");
            pcti_eq_str(c, g.id, k128, "S10: a 128-character id round-trips");
            pcti_eq_str(c, g.idempotency_key, k128, "S10: a 128-character key round-trips");
            pers_task_free(c->s, &g);
        }
        qs[0] = n64;
        cq = pcti_claim_req(n64, qs, 1, n64, PCTI_LONG, 1);
        if (pcti_rc(c, pers_claim(c->s, &cq, &t, &cr), PERS_OK,
                    "S10: claim with the longest names") &&
            pcti_eq_u64(c, cr.count, 1, "S10: claim with the longest names: count")) {
            pcti_eq_str(c, t.worker_id, n64, "S10: a 64-character worker id round-trips");
            rs1024[PERS_REASON_MAX] = '\0'; /* 1024 bytes */
            pcti_rc(c, pcti_nack(c, n64, k128, t.lease_token, 0, rs1024, &st), PERS_OK,
                    "S10: nack with a reason of 1024 bytes");
            pers_task_free(c->s, &t);
        } else if (cr.count > 0) {
            pers_tasks_free(c->s, &t, cr.count);
        }
        if (pcti_get(c, n64, k128, &g, "S10: after the nack")) {
            pcti_eq_str(c, g.last_error, rs1024, "S10: a 1024-byte reason round-trips");
            pers_task_free(c->s, &g);
        }
    }
    rs1024[PERS_REASON_MAX] = 'r'; /* 1025 bytes */
    if (pcti_put(c, "acme", "email", "long-reason", 0, 0, 0) &&
        pcti_take(c, "acme", "email", "w1", PCTI_LONG, "long-reason", &t, "claim")) {
        pcti_rc(c, pcti_nack(c, "acme", "long-reason", t.lease_token, 0, rs1024, &st),
                PERS_ERR_INVALID_ARGUMENT, "S10: nack with a reason of 1025 bytes");
        pcti_expect_task(c, "acme", "long-reason", PERS_STATE_LEASED, 1,
                         "S10: a refused nack changes nothing");
        pers_task_free(c->s, &t);
    }

    r = pcti_req(n65, "email", "x");
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: a 65-character tenant");
    r = pcti_req("acme", n65, "x");
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: a 65-character queue");
    r = pcti_req("", "email", "x");
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT, "S10: an empty tenant");
    r = pcti_req("acme", "", "x");
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT, "S10: an empty queue");
    r = pcti_req("acme", "email", "x");
    r.task_id = k129;
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: a 129-character task id");
    r.task_id = "";
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT, "S10: an empty task id");
    r.task_id = NULL;
    r.idempotency_key = k129;
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: a 129-character idempotency key");
    r.idempotency_key = "";
    pcti_rc(c, pers_enqueue(c->s, &r, &res), PERS_ERR_INVALID_ARGUMENT,
            "S10: an empty idempotency key");
    cq = pcti_claim_req("acme", email, 1, n65, 1000, 1);
    pcti_claim_rc(c, &cq, PERS_ERR_INVALID_ARGUMENT,
            "S10: a 65-character worker id");
    cq = pcti_claim_req("acme", email, 1, "", 1000, 1);
    pcti_claim_rc(c, &cq, PERS_ERR_INVALID_ARGUMENT,
            "S10: an empty worker id");

    if (pcti_has(c, PERS_CAP_SUBSCRIPTIONS)) {
        memset(&sq, 0, sizeof sq);
        sq.tenant = "acme";
        sq.worker_id = "w1";
        sq.queues = email;
        sq.queue_count = 1;
        sq.ttl_ms = 1000;
        sq.callback = cb512;
        pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_ERR_INVALID_ARGUMENT,
                "S10: a 513-character callback address");
        sq.callback = "";
        pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_ERR_INVALID_ARGUMENT,
                "S10: an empty callback address");
        sq.callback = "http://a b/";
        pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_ERR_INVALID_ARGUMENT,
                "S10: a callback address with a space");
        cb512[PERS_ADDRESS_MAX] = '\0';
        sq.callback = cb512;
        if (pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_OK,
                    "S10: a 512-character callback address") &&
            pcti_rc(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &sl), PERS_OK,
                    "list_subscriptions_by_worker")) {
            if (pcti_eq_u64(c, sl.count, 1, "S15: rows of w1"))
                pcti_eq_str(c, sl.items[0].callback, cb512,
                            "S10: a 512-character callback round-trips");
            pers_subscription_list_free(c->s, &sl);
        }
    }
    free(cb512);
    free(rs1024);
}

/* PS-NAME-03 */
static void pcti_name_03(pcti_case *c)
{
    static const char *const pairs[][2] = {
        {"a.b", "c"}, {"a", "b.c"},   {"a_b", "c"}, {"a", "b_c"}, {"a-b", "c"},   {"a", "b-c"},
        {"ab", "c"},  {"a", "bc"},    {"a.b.c", "d"}, {"a", "b.c.d"}, {"a.", "b"}, {"a", "b"},
        {"a_", "b"},  {"A", "bc"},    {"a", "BC"},  {"a.b", "c.d"}, {"a", "b.c.d."}};
    static const char *const tenants[] = {"x.y", "x_y", "x-y", "xy", "X.y", "x.y.z", "x.", "x"};
    enum { NP = sizeof pairs / sizeof pairs[0], NT = sizeof tenants / sizeof tenants[0] };
    char id[16], payload[16], what[128];
    size_t i;
    pers_enqueue_req r;
    pers_task t;
    for (i = 0; i < NP; i++) {
        snprintf(id, sizeof id, "id-%lu", (unsigned long)i);
        snprintf(payload, sizeof payload, "pair-%lu", (unsigned long)i);
        r = pcti_req(pairs[i][0], pairs[i][1], payload);
        r.task_id = id;
        r.idempotency_key = "same-key";
        snprintf(what, sizeof what, "S8, S10: enqueue with key same-key in %s/%s", pairs[i][0],
                 pairs[i][1]);
        if (!pcti_enqueue(c, &r, NULL, what))
            return;
    }
    for (i = 0; i < NP; i++) {
        snprintf(id, sizeof id, "id-%lu", (unsigned long)i);
        snprintf(what, sizeof what, "S10: (tenant, queue) %s/%s", pairs[i][0], pairs[i][1]);
        pcti_stats(c, pairs[i][0], pairs[i][1], 0, 1, 0, 0, 0, 0, what);
        if (pcti_take(c, pairs[i][0], pairs[i][1], "w1", PCTI_LONG, id, NULL, what))
            pcti_none(c, pairs[i][0], pairs[i][1], PERS_NO_TIME, what);
    }
    for (i = 0; i < NT; i++) {
        r = pcti_req(tenants[i], "q", tenants[i]);
        r.task_id = "same-id";
        snprintf(what, sizeof what, "S9, S10: enqueue of id same-id in tenant %s", tenants[i]);
        if (!pcti_enqueue(c, &r, NULL, what))
            return;
    }
    for (i = 0; i < NT; i++) {
        snprintf(what, sizeof what, "S10, S13: task same-id of tenant %s", tenants[i]);
        if (pcti_get(c, tenants[i], "same-id", &t, what)) {
            pcti_eq_data(c, t.payload, t.payload_len, tenants[i], strlen(tenants[i]), "%s", what);
            pers_task_free(c->s, &t);
        }
    }
    if (pcti_has(c, PERS_CAP_SUBSCRIPTIONS)) {
        pers_subscribe_req sq;
        pers_subscription_list l;
        const char *qs[1];
        for (i = 0; i < NP; i++) {
            memset(&sq, 0, sizeof sq);
            qs[0] = pairs[i][1];
            sq.tenant = pairs[i][0];
            sq.worker_id = "w";
            sq.queues = qs;
            sq.queue_count = 1;
            sq.callback = "http://10.0.0.1/";
            sq.ttl_ms = 60000;
            pcti_rc(c, pers_subscribe(c->s, &sq, NULL), PERS_OK, "subscribe in %s/%s",
                    pairs[i][0], pairs[i][1]);
        }
        for (i = 0; i < NP; i++) {
            if (!pcti_rc(c, pers_list_subscriptions_by_queue(c->s, pairs[i][0], pairs[i][1], &l),
                         PERS_OK, "list_subscriptions_by_queue(%s, %s)", pairs[i][0],
                         pairs[i][1]))
                continue;
            if (pcti_eq_u64(c, l.count, 1, "S10, S15: rows of %s/%s", pairs[i][0], pairs[i][1])) {
                pcti_eq_str(c, l.items[0].tenant, pairs[i][0], "S10, S15: the row's tenant");
                pcti_eq_str(c, l.items[0].queue, pairs[i][1], "S10, S15: the row's queue");
            }
            pers_subscription_list_free(c->s, &l);
        }
    }
}

/* PS-STATS-01 */
static void pcti_stats_01(pcti_case *c)
{
    static const char *const email[] = {"email"};
    static const char *const ids[] = {"d1", "f1", "c1", "l1", "l2", "r1", "r2", "r3"};
    pers_task t[5];
    pers_claim_res res;
    size_t i;
    int n;
    for (i = 0; i < 8; i++)
        if (!pcti_put(c, "acme", "email", ids[i], 0, 0, i == 0 ? 1 : 0))
            return;
    if (!pcti_put(c, "acme", "email", "s1", 0, 5000, 0) ||
        !pcti_put(c, "acme", "email", "s2", 0, 7000, 0) ||
        !pcti_put(c, "acme", "sms", "x1", 0, 0, 0) ||
        !pcti_put(c, "globex", "email", "g1", 0, 0, 0))
        return;
    n = pcti_claim(c, "acme", email, 1, "w1", PCTI_LONG, 5, t, &res, "claim of 5");
    if (n < 0)
        return;
    if (n != 5 || strcmp(t[0].id, "d1") != 0 || strcmp(t[1].id, "f1") != 0 ||
        strcmp(t[2].id, "c1") != 0) {
        pcti_fail(c, "S3: claim of 5 from 8 ready tasks: expected d1, f1, c1, l1, l2, got %d tasks",
                  n);
        pers_tasks_free(c->s, t, (size_t)n);
        return;
    }
    pcti_rc(c, pcti_nack(c, "acme", "d1", t[0].lease_token, 0, "dead", NULL), PERS_OK, "nack d1");
    pcti_rc(c, pcti_complete(c, "acme", "f1", t[1].lease_token, "no", 1), PERS_OK,
            "complete f1 (failed)");
    pcti_rc(c, pcti_complete(c, "acme", "c1", t[2].lease_token, "yes", 0), PERS_OK, "complete c1");
    pers_tasks_free(c->s, t, (size_t)n);
    pcti_take(c, "globex", "email", "w1", PCTI_LONG, "g1", NULL, "claim in globex");
    pcti_stats(c, "acme", "email", 2, 3, 2, 1, 1, 1, "S17: acme/email after a mixed sequence");
    pcti_stats(c, "acme", "sms", 0, 1, 0, 0, 0, 0, "S17: acme/sms");
    pcti_stats(c, "globex", "email", 0, 0, 1, 0, 0, 0, "S13, S17: globex/email");
    pcti_stats(c, "globex", "sms", 0, 0, 0, 0, 0, 0, "S17: globex/sms (never used)");
    pcti_stats(c, "acme", "push", 0, 0, 0, 0, 0, 0, "S17: an unknown queue");
    pcti_stats(c, "initech", "email", 0, 0, 0, 0, 0, 0, "S17: an unknown tenant");
    pcti_advance(c, 5000);
    pcti_stats(c, "acme", "email", 1, 4, 2, 1, 1, 1, "S2, S17: acme/email when s1 is due");
}

/* PS-STATS-02 */
static void pcti_stats_02(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_task t[2];
    pers_claim_res res;
    int n;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "b", 0, 1000, 0) ||
        !pcti_put(c, "acme", "email", "c", 0, 0, 1))
        return;
    n = pcti_claim(c, "acme", email, 1, "w1", 500, 2, t, &res, "claim of a and c, lease 500 ms");
    if (n < 0)
        return;
    pers_tasks_free(c->s, t, (size_t)n);
    if (!pcti_eq_i64(c, n, 2, "claim of 2 ready tasks: count"))
        return;
    pcti_stats(c, "acme", "email", 1, 0, 2, 0, 0, 0, "S17: two leased, one scheduled");
    pcti_advance(c, 500);
    pcti_stats(c, "acme", "email", 1, 1, 0, 0, 0, 1,
               "S7, S17: at the leases' expiry (a retried, c dead), with no other call");
    pcti_advance(c, 500);
    pcti_stats(c, "acme", "email", 0, 2, 0, 0, 0, 1, "S2, S17: when b is due, no other call");
}

/* Claims task id and completes it (failed or not). */
static int pcti_finish(pcti_case *c, const char *tenant, const char *queue, const char *id,
                       const char *data, int failed)
{
    pers_task t;
    int ok;
    if (!pcti_take(c, tenant, queue, "w-finish", PCTI_LONG, id, &t, "claim of a task to finish"))
        return 0;
    ok = pcti_rc(c, pcti_complete(c, tenant, id, t.lease_token, data, failed), PERS_OK,
                 "complete of \"%s\"", id);
    pers_task_free(c->s, &t);
    return ok;
}

static pers_cleanup_req pcti_cleanup_req(const char *tenant, int64_t older, int dead, size_t limit)
{
    pers_cleanup_req q;
    memset(&q, 0, sizeof q);
    q.tenant = tenant;
    q.older_than_ms = older;
    q.include_dead = dead;
    q.limit = limit;
    return q;
}

static void pcti_cleanup(pcti_case *c, int results, const char *tenant, int64_t older, int dead,
                         size_t limit, size_t want, const char *what)
{
    pers_cleanup_req q = pcti_cleanup_req(tenant, older, dead, limit);
    size_t removed = 0;
    pers_result rc = results ? pers_cleanup_results(c->s, &q, &removed)
                             : pers_cleanup_tasks(c->s, &q, &removed);
    if (pcti_rc(c, rc, PERS_OK, "%s", what))
        pcti_eq_u64(c, removed, want, "%s: removed (S14)", what);
}

/* PS-RETAIN-01 */
static void pcti_retain_01(pcti_case *c)
{
    pers_enqueue_req r = pcti_req("acme", "email", "c2");
    if (!pcti_put(c, "acme", "email", "c1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "f1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "d1", 0, 0, 1))
        return;
    r.task_id = "c2";
    r.idempotency_key = "k";
    if (!pcti_enqueue(c, &r, NULL, "enqueue of c2 with key k") ||
        !pcti_put(c, "acme", "email", "l1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "r1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "s1", 0, 1000000, 0))
        return;
    if (!pcti_finish(c, "acme", "email", "c1", "one", 0))
        return;
    pcti_advance(c, 100);
    if (!pcti_finish(c, "acme", "email", "f1", "err", 1))
        return;
    pcti_advance(c, 50);
    if (!pcti_kill(c, "acme", "email", "d1", "dead"))
        return;
    pcti_advance(c, 50);
    if (!pcti_finish(c, "acme", "email", "c2", "two", 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "l1", NULL, "claim of l1"))
        return;
    pcti_advance(c, 800); /* now = T0 + 1000 */
    pcti_cleanup(c, 0, NULL, 901, 0, 0, 1,
                 "S14: cleanup_tasks older than 901 ms (c1 finished at T0, f1 at T0 + 100)");
    pcti_get_rc(c, "acme", "c1", PERS_ERR_NOT_FOUND, "S14: c1 after the cleanup");
    pcti_no_result(c, "acme", "c1", "S14: c1's result goes with it");
    pcti_expect_task(c, "acme", "f1", PERS_STATE_FAILED, 1,
                     "S14: f1, finished 1 ms after the cutoff, stays");
    pcti_cleanup(c, 0, NULL, 900, 0, 0, 1,
                 "S14: cleanup_tasks older than 900 ms (f1 finished exactly at the cutoff)");
    pcti_get_rc(c, "acme", "f1", PERS_ERR_NOT_FOUND, "S14: f1 after the cleanup");
    pcti_expect_task(c, "acme", "c2", PERS_STATE_COMPLETED, 1, "S14: c2, finished later, stays");
    pcti_cleanup(c, 0, NULL, 0, 0, 0, 1, "S14: cleanup_tasks older than 0 ms (c2; d1 is dead)");
    pcti_get_rc(c, "acme", "c2", PERS_ERR_NOT_FOUND, "S14: c2 after the cleanup");
    pcti_expect_task(c, "acme", "d1", PERS_STATE_DEAD, 1, "S14: dead tasks stay by default");
    pcti_expect_task(c, "acme", "l1", PERS_STATE_LEASED, 1, "S14: a leased task is never removed");
    pcti_expect_task(c, "acme", "r1", PERS_STATE_READY, 0, "S14: a ready task is never removed");
    pcti_expect_task(c, "acme", "s1", PERS_STATE_SCHEDULED, 0,
                     "S14: a scheduled task is never removed");
    r.task_id = NULL;
    if (pcti_enqueue(c, &r, NULL, "S14: key k may be used again once its task is removed")) {
        pcti_stats(c, "acme", "email", 1, 2, 1, 0, 0, 1, "S14, S17: after the cleanups");
    }
}

/* PS-RETAIN-02 */
static void pcti_retain_02(pcti_case *c)
{
    static const char *const ac[] = {"a-c1", "a-c2", "a-c3"};
    size_t i;
    if (!pcti_put(c, "acme", "email", "a-d1", 0, 0, 1) ||
        !pcti_put(c, "acme", "email", "a-d2", 0, 0, 1) ||
        !pcti_put(c, "globex", "email", "g-d1", 0, 0, 1) ||
        !pcti_put(c, "globex", "email", "g-c1", 0, 0, 0))
        return;
    for (i = 0; i < 3; i++)
        if (!pcti_put(c, "acme", "email", ac[i], 0, 0, 0))
            return;
    if (!pcti_put(c, "acme", "email", "live", 0, 0, 0))
        return;
    if (!pcti_kill(c, "acme", "email", "a-d1", "x") ||
        !pcti_kill(c, "acme", "email", "a-d2", "x") ||
        !pcti_kill(c, "globex", "email", "g-d1", "x") ||
        !pcti_finish(c, "globex", "email", "g-c1", "x", 0))
        return;
    for (i = 0; i < 3; i++)
        if (!pcti_finish(c, "acme", "email", ac[i], "x", 0))
            return;
    pcti_advance(c, 10);
    pcti_cleanup(c, 0, "globex", 0, 1, 0, 2, "S14: cleanup_tasks of globex with include_dead");
    pcti_get_rc(c, "globex", "g-d1", PERS_ERR_NOT_FOUND, "S14: globex's dead task removed");
    pcti_expect_task(c, "acme", "a-d1", PERS_STATE_DEAD, 1,
                     "S14: acme untouched by globex's cleanup");
    pcti_expect_task(c, "acme", "a-c1", PERS_STATE_COMPLETED, 1,
                     "S14: acme untouched by globex's cleanup");
    pcti_cleanup(c, 0, "acme", 0, 0, 2, 2, "S14: cleanup_tasks of acme with limit 2 (3 eligible)");
    pcti_cleanup(c, 0, "acme", 0, 0, 0, 1, "S14: cleanup_tasks of acme, the rest");
    pcti_cleanup(c, 0, "acme", 0, 0, 0, 0, "S14: cleanup_tasks of acme, nothing left");
    pcti_expect_task(c, "acme", "a-d2", PERS_STATE_DEAD, 1, "S14: dead tasks stay by default");
    pcti_cleanup(c, 0, "acme", 0, 1, 0, 2, "S14: cleanup_tasks of acme with include_dead");
    pcti_get_rc(c, "acme", "a-d1", PERS_ERR_NOT_FOUND, "S14: a dead task removed when asked");
    pcti_expect_task(c, "acme", "live", PERS_STATE_READY, 0, "S14: live tasks stay");
    pcti_stats(c, "acme", "email", 0, 1, 0, 0, 0, 0, "S14, S17: after the cleanups");
}

/* PS-RETAIN-03 */
static void pcti_retain_03(pcti_case *c)
{
    if (!pcti_put(c, "acme", "email", "r1", 0, 0, 0) ||
        !pcti_put(c, "acme", "email", "r2", 0, 0, 0) ||
        !pcti_put(c, "globex", "email", "g1", 0, 0, 0) ||
        !pcti_finish(c, "acme", "email", "r1", "one", 0))
        return;
    pcti_advance(c, 600);
    if (!pcti_finish(c, "acme", "email", "r2", "two", 1) ||
        !pcti_finish(c, "globex", "email", "g1", "three", 0))
        return;
    pcti_advance(c, 400); /* now = T0 + 1000 */
    pcti_cleanup(c, 1, "acme", 500, 0, 0, 1, "S14: cleanup_results of acme older than 500 ms");
    pcti_no_result(c, "acme", "r1", "S14: r1's result removed");
    pcti_expect_task(c, "acme", "r1", PERS_STATE_COMPLETED, 1,
                     "S14: cleanup_results leaves the task");
    pcti_result_is(c, "acme", "r2", PERS_STATE_FAILED, "two", 3, "S14: a newer result stays");
    pcti_cleanup(c, 1, "acme", 500, 0, 0, 0, "S14: cleanup_results again");
    pcti_result_is(c, "globex", "g1", PERS_STATE_COMPLETED, "three", 5,
                   "S14: another tenant's result stays");
    pcti_cleanup(c, 1, NULL, 0, 0, 0, 2, "S14: cleanup_results of every tenant older than 0 ms");
    pcti_no_result(c, "globex", "g1", "S14: g1's result removed");
    pcti_expect_task(c, "acme", "r2", PERS_STATE_FAILED, 1, "S14: cleanup_results leaves the task");
    pcti_stats(c, "acme", "email", 0, 0, 0, 1, 1, 0, "S14, S17: the tasks are counted still");
}

/* ---- subscriptions ---- */

static pers_result pcti_sub(pcti_case *c, const char *tenant, const char *worker,
                            const char *const *queues, size_t nq, const char *callback,
                            int64_t ttl, size_t *created)
{
    pers_subscribe_req q;
    memset(&q, 0, sizeof q);
    q.tenant = tenant;
    q.worker_id = worker;
    q.queues = queues;
    q.queue_count = nq;
    q.callback = callback;
    q.ttl_ms = ttl;
    return pers_subscribe(c->s, &q, created);
}

static int pcti_sub_ok(pcti_case *c, const char *tenant, const char *worker,
                       const char *const *queues, size_t nq, const char *callback, int64_t ttl,
                       long want_created, const char *what)
{
    size_t created = 0;
    if (!pcti_rc(c, pcti_sub(c, tenant, worker, queues, nq, callback, ttl, &created), PERS_OK,
                 "%s", what))
        return 0;
    return want_created < 0 ||
           pcti_eq_u64(c, created, (uint64_t)want_created, "%s: created (S15)", what);
}

/* The rows of a list must be exactly want[] ("worker/queue"), in order. The list is kept for the
   caller, who frees it, when the function returns 1. */
static int pcti_rows(pcti_case *c, pers_result rc, pers_subscription_list *l,
                     const char *const *want, size_t n, const char *what)
{
    char got[400], exp[400], one[140];
    size_t i;
    int same;
    if (!pcti_rc(c, rc, PERS_OK, "%s", what))
        return 0;
    got[0] = exp[0] = '\0';
    same = l->count == n;
    for (i = 0; i < l->count; i++) {
        snprintf(one, sizeof one, "%s/%s", l->items[i].worker_id, l->items[i].queue);
        pcti_append(got, sizeof got, "%s%s", i ? ", " : "", one);
        if (i < n && strcmp(one, want[i]) != 0)
            same = 0;
    }
    for (i = 0; i < n; i++)
        pcti_append(exp, sizeof exp, "%s%s", i ? ", " : "", want[i]);
    if (!same) {
        pcti_fail(c, "%s (S15: live rows ordered by worker id, then queue, bytewise): expected "
                     "[%s], got [%s]",
                  what, exp, got);
        pers_subscription_list_free(c->s, l);
        return 0;
    }
    if (n == 0 && l->items != NULL)
        pcti_fail(c, "%s: an empty list must have items NULL", what);
    return 1;
}

/* PS-SUB-01 */
static void pcti_sub_01(pcti_case *c)
{
    static const char *const qs[] = {"sms", "email"};
    static const char *const w1[] = {"w1/email", "w1/sms"};
    static const char *const em[] = {"w1/email"};
    const char *cb = "http://10.0.0.7:8080/push";
    int64_t t0 = pcti_now(c);
    pers_subscription_list l;
    size_t i;
    if (!pcti_sub_ok(c, "acme", "w1", qs, 2, cb, 60000, 2, "S15: subscribe of w1 to sms, email"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, w1, 2,
                  "list_subscriptions_by_worker(acme, w1)")) {
        for (i = 0; i < l.count; i++) {
            pcti_eq_str(c, l.items[i].tenant, "acme", "S15: row %lu: tenant", (unsigned long)i);
            pcti_eq_str(c, l.items[i].callback, cb, "S15: row %lu: callback", (unsigned long)i);
            pcti_eq_i64(c, l.items[i].created_ms, t0, "S15: row %lu: created_ms", (unsigned long)i);
            pcti_eq_i64(c, l.items[i].updated_ms, t0, "S15: row %lu: updated_ms", (unsigned long)i);
            pcti_eq_i64(c, l.items[i].expires_ms, t0 + 60000,
                        "S15: row %lu: expires_ms = now + ttl_ms", (unsigned long)i);
        }
        pers_subscription_list_free(c->s, &l);
    }
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, em, 1,
                  "list_subscriptions_by_queue(acme, email)"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "push", &l), &l, NULL, 0,
                  "list_subscriptions_by_queue(acme, push)"))
        pers_subscription_list_free(c->s, &l);
}

/* PS-SUB-02 */
static void pcti_sub_02(pcti_case *c)
{
    static const char *const qs[] = {"email", "sms"};
    static const char *const push[] = {"push"};
    static const char *const rows2[] = {"w1/email", "w1/sms"};
    static const char *const rows3[] = {"w1/email", "w1/push", "w1/sms"};
    int64_t t0 = pcti_now(c);
    pers_subscription_list l;
    if (!pcti_sub_ok(c, "acme", "w1", qs, 2, "http://a/", 60000, 2, "S15: first subscribe"))
        return;
    pcti_advance(c, 1000);
    if (!pcti_sub_ok(c, "acme", "w1", qs, 2, "http://a/", 60000, 0,
                     "S15: the same subscribe again"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, rows2, 2,
                  "S15: rows of w1 after the repeated subscribe")) {
        size_t i;
        for (i = 0; i < 2; i++) {
            pcti_eq_i64(c, l.items[i].created_ms, t0,
                        "S15: a repeated subscribe keeps created_ms (row %lu)", (unsigned long)i);
            pcti_eq_i64(c, l.items[i].updated_ms, t0 + 1000,
                        "S15: a repeated subscribe sets updated_ms (row %lu)", (unsigned long)i);
            pcti_eq_i64(c, l.items[i].expires_ms, t0 + 1000 + 60000,
                        "S15: a repeated subscribe sets expires_ms (row %lu)", (unsigned long)i);
        }
        pers_subscription_list_free(c->s, &l);
    }
    pcti_advance(c, 1000);
    if (!pcti_sub_ok(c, "acme", "w1", push, 1, "http://a/", 5000, 1,
                     "S15: subscribe of w1 to push only"))
        return;
    if (!pcti_sub_ok(c, "acme", "w1", qs, 1, "http://new/", 60000, 0,
                     "S15: subscribe of w1 to email with a new callback"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, rows3, 3,
                  "S15: rows of w1 after the upserts (the others left alone)")) {
        pcti_eq_i64(c, l.items[0].created_ms, t0, "S15: email row: created_ms unchanged");
        pcti_eq_i64(c, l.items[0].updated_ms, t0 + 2000, "S15: email row: updated_ms");
        pcti_eq_i64(c, l.items[0].expires_ms, t0 + 2000 + 60000, "S15: email row: expires_ms");
        pcti_eq_str(c, l.items[0].callback, "http://new/", "S15: email row: callback upserted");
        pcti_eq_i64(c, l.items[1].created_ms, t0 + 2000, "S15: push row: created_ms");
        pcti_eq_i64(c, l.items[1].expires_ms, t0 + 2000 + 5000, "S15: push row: expires_ms");
        pcti_eq_i64(c, l.items[2].created_ms, t0, "S15: sms row: created_ms unchanged");
        pcti_eq_i64(c, l.items[2].updated_ms, t0 + 1000,
                    "S15: sms row: left alone by the later subscribes (updated_ms)");
        pcti_eq_i64(c, l.items[2].expires_ms, t0 + 1000 + 60000,
                    "S15: sms row: left alone (expires_ms)");
        pcti_eq_str(c, l.items[2].callback, "http://a/", "S15: sms row: callback left alone");
        pers_subscription_list_free(c->s, &l);
    }
}

/* PS-SUB-03 */
static void pcti_sub_03(pcti_case *c)
{
    static const char *const email[] = {"email"};
    static const char *const row[] = {"w1/email"};
    pers_subscription_list l;
    size_t removed = 0;
    if (!pcti_sub_ok(c, "acme", "w1", email, 1, "http://acme/", 60000, 1, "subscribe in acme") ||
        !pcti_sub_ok(c, "globex", "w1", email, 1, "http://globex/", 60000, 1,
                     "S13, S15: the same worker and queue in globex is a new row"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, row, 1,
                  "S13: list_subscriptions_by_queue(acme, email)")) {
        pcti_eq_str(c, l.items[0].tenant, "acme", "S13: the row's tenant");
        pcti_eq_str(c, l.items[0].callback, "http://acme/", "S13: acme's callback");
        pers_subscription_list_free(c->s, &l);
    }
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "globex", "w1", &l), &l, row, 1,
                  "S13: list_subscriptions_by_worker(globex, w1)")) {
        pcti_eq_str(c, l.items[0].callback, "http://globex/", "S13: globex's callback");
        pers_subscription_list_free(c->s, &l);
    }
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "initech", "email", &l), &l, NULL, 0,
                  "S13: list_subscriptions_by_queue(initech, email)"))
        pers_subscription_list_free(c->s, &l);
    pcti_rc(c, pers_unsubscribe(c->s, "initech", "w1", NULL, &removed), PERS_ERR_NOT_FOUND,
            "S13, S15: unsubscribe of w1 in a tenant where it has no row");
    if (pcti_rc(c, pers_unsubscribe(c->s, "globex", "w1", "email", &removed), PERS_OK,
                "unsubscribe in globex"))
        pcti_eq_u64(c, removed, 1, "S15: unsubscribe in globex: removed");
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, row, 1,
                  "S13: acme's row after globex's unsubscribe"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_has(c, PERS_CAP_STATS)) {
        /* nothing: subscriptions do not create tasks */
        pcti_stats(c, "acme", "email", 0, 0, 0, 0, 0, 0, "S15: subscriptions are not tasks");
    }
}

/* PS-SUB-04 */
static void pcti_sub_04(pcti_case *c)
{
    static const char *const email[] = {"email"};
    static const char *const both[] = {"email", "sms"};
    static const char *const w1[] = {"w1/email"};
    static const char *const w2[] = {"w2/email"};
    static const char *const w2w3[] = {"w2/email", "w3/email"};
    static const char *const w3[] = {"w3/email"};
    int64_t t0 = pcti_now(c);
    pers_subscription_list l;
    size_t removed = 0;
    if (!pcti_sub_ok(c, "acme", "w1", email, 1, "http://1/", 1000, 1, "subscribe w1, ttl 1000") ||
        !pcti_sub_ok(c, "acme", "w2", email, 1, "http://2/", 5000, 1, "subscribe w2, ttl 5000") ||
        !pcti_sub_ok(c, "acme", "w3", both, 2, "http://3/", 1000, 2, "subscribe w3, ttl 1000") ||
        !pcti_sub_ok(c, "globex", "w9", email, 1, "http://9/", 1000, 1, "subscribe in globex"))
        return;
    pcti_advance(c, 999);
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, w1, 1,
                  "S15: w1's row 1 ms before it expires is live"))
        pers_subscription_list_free(c->s, &l);
    pcti_advance(c, 1); /* now = T0 + 1000: w1, w3 and w9 expire (expires_ms <= now) */
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, w2, 1,
                  "S15: list_subscriptions_by_queue at the expiry of w1 and w3"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, NULL, 0,
                  "S15: list_subscriptions_by_worker of an expired worker"))
        pers_subscription_list_free(c->s, &l);
    if (!pcti_sub_ok(c, "acme", "w3", email, 1, "http://3/", 1000, 1,
                     "S15: subscribe over an expired row counts as created"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w3", &l), &l, w3, 1,
                  "S15: w3 after subscribing again")) {
        pcti_eq_i64(c, l.items[0].created_ms, t0 + 1000,
                    "S15: a row created over an expired one has a new created_ms");
        pers_subscription_list_free(c->s, &l);
    }
    if (pcti_rc(c, pers_expire_subscriptions(c->s, "acme", &removed), PERS_OK,
                "expire_subscriptions(acme)"))
        pcti_eq_u64(c, removed, 2, "S15: expire_subscriptions(acme) deletes w1/email and w3/sms");
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, w2w3, 2,
                  "S15: live rows stay after expire_subscriptions"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rc(c, pers_expire_subscriptions(c->s, NULL, &removed), PERS_OK,
                "expire_subscriptions(every tenant)"))
        pcti_eq_u64(c, removed, 1, "S15: expire_subscriptions(NULL) deletes globex's w9");
    pcti_advance(c, 1000); /* w3/email expires */
    pcti_rc(c, pers_unsubscribe(c->s, "acme", "w3", "email", &removed), PERS_ERR_NOT_FOUND,
            "S15: unsubscribe of an expired row (nothing live to remove)");
    pcti_rc(c, pers_unsubscribe(c->s, "acme", "w3", NULL, &removed), PERS_ERR_NOT_FOUND,
            "S15: unsubscribe of every row of a worker whose rows expired");
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, w2, 1,
                  "S15: rows at T0 + 2000"))
        pers_subscription_list_free(c->s, &l);
}

/* PS-SUB-05 */
static void pcti_sub_05(pcti_case *c)
{
    static const char *const three[] = {"email", "sms", "push"};
    static const char *const two[] = {"w1/email", "w1/push"};
    static const char *const other[] = {"w2/sms"};
    static const char *const sms[] = {"sms"};
    pers_subscription_list l;
    size_t removed = 0;
    if (!pcti_sub_ok(c, "acme", "w1", three, 3, "http://1/", 60000, 3, "subscribe w1") ||
        !pcti_sub_ok(c, "acme", "w2", sms, 1, "http://2/", 60000, 1, "subscribe w2"))
        return;
    if (pcti_rc(c, pers_unsubscribe(c->s, "acme", "w1", "sms", &removed), PERS_OK,
                "unsubscribe of w1 from sms"))
        pcti_eq_u64(c, removed, 1, "S15: unsubscribe of one queue: removed");
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, two, 2,
                  "S15: rows of w1 after unsubscribing sms"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "sms", &l), &l, other, 1,
                  "S15: w2's row of sms stays"))
        pers_subscription_list_free(c->s, &l);
    pcti_rc(c, pers_unsubscribe(c->s, "acme", "w1", "sms", &removed), PERS_ERR_NOT_FOUND,
            "S15: unsubscribe of a row already removed");
    if (pcti_rc(c, pers_unsubscribe(c->s, "acme", "w1", NULL, &removed), PERS_OK,
                "unsubscribe of every row of w1"))
        pcti_eq_u64(c, removed, 2, "S15: unsubscribe of every row: removed");
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w1", &l), &l, NULL, 0,
                  "S15: rows of w1 after unsubscribing all"))
        pers_subscription_list_free(c->s, &l);
    pcti_rc(c, pers_unsubscribe(c->s, "acme", "w1", NULL, &removed), PERS_ERR_NOT_FOUND,
            "S15: unsubscribe of a worker without rows");
    pcti_rc(c, pers_unsubscribe(c->s, "acme", "nobody", "email", &removed), PERS_ERR_NOT_FOUND,
            "S15: unsubscribe of an unknown worker");
}

/* PS-SUB-06 */
static void pcti_sub_06(pcti_case *c)
{
    static const char *const email[] = {"email"};
    static const char *const sms[] = {"sms"};
    static const char *const mixed[] = {"sms", "email", "Email", "e-mail"};
    static const char *const by_email[] = {"w-a/email", "w-b/email", "w-c/email", "w-x/email"};
    static const char *const by_sms[] = {"w-d/sms", "w-x/sms"};
    static const char *const by_x[] = {"w-x/Email", "w-x/e-mail", "w-x/email", "w-x/sms"};
    pers_subscription_list l;
    if (!pcti_sub_ok(c, "acme", "w-b", email, 1, "http://b/", 60000, 1, "subscribe w-b") ||
        !pcti_sub_ok(c, "acme", "w-a", email, 1, "http://a/", 60000, 1, "subscribe w-a") ||
        !pcti_sub_ok(c, "acme", "w-c", email, 1, "http://c/", 60000, 1, "subscribe w-c") ||
        !pcti_sub_ok(c, "acme", "w-d", sms, 1, "http://d/", 60000, 1, "subscribe w-d") ||
        !pcti_sub_ok(c, "acme", "w-x", mixed, 4, "http://x/", 60000, 4, "subscribe w-x"))
        return;
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "email", &l), &l, by_email, 4,
                  "S15: list_subscriptions_by_queue(acme, email)"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "sms", &l), &l, by_sms, 2,
                  "S15: list_subscriptions_by_queue(acme, sms)"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_worker(c->s, "acme", "w-x", &l), &l, by_x, 4,
                  "S15: list_subscriptions_by_worker(acme, w-x), queues bytewise"))
        pers_subscription_list_free(c->s, &l);
    if (pcti_rows(c, pers_list_subscriptions_by_queue(c->s, "acme", "push", &l), &l, NULL, 0,
                  "S15: list_subscriptions_by_queue of a queue nobody subscribed to"))
        pers_subscription_list_free(c->s, &l);
}

/* PS-BATCH-01 */
static void pcti_batch_01(pcti_case *c)
{
    pers_enqueue_req q[4];
    pers_enqueue_res res[4];
    pers_task g;
    static const char *const queue[] = {"email", "email", "email", "email"};
    static const char *const text[] = {"b0", "b1", "b2", "b3"};
    static const int32_t prio[] = {0, 3, 0, -2};
    size_t i;
    int64_t t0 = pcti_now(c);
    for (i = 0; i < 4; i++) {
        q[i] = pcti_req("acme", queue[i], text[i]);
        q[i].priority = prio[i];
    }
    q[2].delay_ms = 1000;
    q[3].task_id = "mine";
    if (!pcti_rc(c, pers_enqueue_batch(c->s, q, 4, res), PERS_OK, "enqueue_batch of 4"))
        return;
    pcti_eq_str(c, res[3].task_id, "mine", "enqueue_batch: res[3] has the caller's id");
    for (i = 0; i < 4; i++) {
        pcti_eq_i64(c, res[i].duplicate, 0, "enqueue_batch: res[%lu].duplicate", (unsigned long)i);
        if (i > 0)
            pcti_true(c, strcmp(res[i].task_id, res[0].task_id) != 0,
                      "S9: batch requests 0 and %lu got the same id", (unsigned long)i);
        if (!pcti_get(c, "acme", res[i].task_id, &g, "enqueue_batch: the task of res[i]"))
            continue;
        pcti_eq_str(c, g.queue, queue[i], "enqueue_batch: queue of request %lu", (unsigned long)i);
        pcti_eq_i64(c, g.priority, prio[i], "enqueue_batch: priority of request %lu",
                    (unsigned long)i);
        pcti_eq_data(c, g.payload, g.payload_len, text[i], 2, "enqueue_batch: payload of "
                     "request %lu", (unsigned long)i);
        pcti_eq_state(c, g.state, i == 2 ? PERS_STATE_SCHEDULED : PERS_STATE_READY,
                      "S2: enqueue_batch: state of request %lu", (unsigned long)i);
        if (i == 2)
            pcti_eq_i64(c, g.due_ms, t0 + 1000, "S2: enqueue_batch: due_ms of the delayed one");
        pers_task_free(c->s, &g);
    }
    pcti_stats(c, "acme", "email", 1, 3, 0, 0, 0, 0, "S17: acme/email after the batch");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, res[1].task_id, NULL, "S3: claim");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, res[0].task_id, NULL, "S3: claim");
    pcti_take(c, "acme", "email", "w1", PCTI_LONG, "mine", NULL, "S3: claim");
}

/* PS-BATCH-02 */
static void pcti_batch_02(pcti_case *c)
{
    pers_enqueue_req q[4], r;
    pers_enqueue_res res[4];
    if (!pcti_put(c, "acme", "email", "exists", 0, 0, 0))
        return;
    q[0] = pcti_req("acme", "email", "1");
    q[0].task_id = "b1";
    q[0].idempotency_key = "kb";
    q[1] = pcti_req("acme", "email", "2");
    q[1].task_id = "b2";
    q[2] = pcti_req("acme", "email", "3");
    q[2].task_id = "exists";
    q[3] = pcti_req("acme", "email", "4");
    q[3].task_id = "b4";
    memset(res, 0x55, sizeof res);
    pcti_rc(c, pers_enqueue_batch(c->s, q, 4, res), PERS_ERR_DUPLICATE,
            "S9: enqueue_batch whose request 2 has an existing id");
    pcti_true(c, res[0].task_id[0] == '\0' && res[1].task_id[0] == '\0' &&
                     res[3].task_id[0] == '\0' && res[0].duplicate == 0,
              "S19: a failed batch leaves the results empty");
    pcti_get_rc(c, "acme", "b1", PERS_ERR_NOT_FOUND, "all or nothing: request 0 of the batch");
    pcti_get_rc(c, "acme", "b2", PERS_ERR_NOT_FOUND, "all or nothing: request 1 of the batch");
    pcti_get_rc(c, "acme", "b4", PERS_ERR_NOT_FOUND, "all or nothing: request 3 of the batch");
    pcti_stats(c, "acme", "email", 0, 1, 0, 0, 0, 0, "all or nothing: acme/email");
    pcti_stats(c, "acme", "sms", 0, 0, 0, 0, 0, 0, "all or nothing: acme/sms");
    q[1].task_id = "b1";
    pcti_rc(c, pers_enqueue_batch(c->s, q, 2, res), PERS_ERR_DUPLICATE,
            "S9: enqueue_batch whose two requests carry the same id");
    pcti_get_rc(c, "acme", "b1", PERS_ERR_NOT_FOUND, "all or nothing: the first of the two");
    q[1] = pcti_req("acme", "sms", "2");
    pcti_rc(c, pers_enqueue_batch(c->s, q, 2, res), PERS_ERR_INVALID_ARGUMENT,
            "S19: enqueue_batch whose requests name two queues");
    pcti_get_rc(c, "acme", "b1", PERS_ERR_NOT_FOUND, "all or nothing: a two-queue batch");
    q[1] = pcti_req("other", "email", "2");
    pcti_rc(c, pers_enqueue_batch(c->s, q, 2, res), PERS_ERR_INVALID_ARGUMENT,
            "S19: enqueue_batch whose requests name two tenants");
    q[1] = pcti_req("acme", "bad|queue", "2");
    pcti_rc(c, pers_enqueue_batch(c->s, q, 2, res), PERS_ERR_INVALID_ARGUMENT,
            "S10: enqueue_batch with an invalid queue in request 1");
    pcti_get_rc(c, "acme", "b1", PERS_ERR_NOT_FOUND, "all or nothing: request 0");
    r = pcti_req("acme", "email", "k");
    r.idempotency_key = "kb";
    pcti_enqueue(c, &r, NULL, "S8: the key of a failed batch was not recorded");
    if (pcti_rc(c, pers_enqueue_batch(c->s, q, 1, res), PERS_OK,
                "enqueue_batch of request 0 alone")) {
        pcti_eq_i64(c, res[0].duplicate, 1, "S8: request 0's key kb is now taken");
    }
    q[0].idempotency_key = NULL;
    if (pcti_rc(c, pers_enqueue_batch(c->s, q, 1, res), PERS_OK,
                "enqueue_batch of id b1 after the failed batches"))
        pcti_eq_str(c, res[0].task_id, "b1", "enqueue_batch: the id");
}

/* PS-CLOSE-01 */
static void pcti_close_01(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_task t, g;
    pers_enqueue_req r = pcti_req("acme", "email", "x");
    pers_enqueue_res er;
    pers_claim_req cq = pcti_claim_req("acme", email, 1, "w1", 1000, 1);
    pers_claim_res cr;
    pers_caps caps;
    pers_stats st;
    pers_list_req lq;
    pers_task_list tl;
    pers_cleanup_req kq = pcti_cleanup_req(NULL, 0, 0, 0);
    pers_task_result tr;
    pers_subscription_list sl;
    pers_task_state ts;
    pers_lease l;
    pers_result item = PERS_OK;
    size_t n;
    int64_t exp;
    if (!pcti_put(c, "acme", "email", "a", 0, 0, 0) ||
        !pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", &t, "claim"))
        return;
    l = pcti_lease("acme", "a", t.lease_token);
    memset(&lq, 0, sizeof lq);
    lq.tenant = "acme";
    lq.queue = "email";
    pcti_rc(c, pers_close(c->s), PERS_OK, "pers_close");
    pcti_rc(c, pers_close(c->s), PERS_OK, "pers_close a second time (harmless)");
#define PCTI_CLOSED_(call, name)                                                                   \
    pcti_rc(c, call, PERS_ERR_CLOSED, "%s after pers_close", name)
    PCTI_CLOSED_(pers_capabilities(c->s, &caps), "capabilities");
    PCTI_CLOSED_(pers_health(c->s), "health");
    PCTI_CLOSED_(pers_enqueue(c->s, &r, &er), "enqueue");
    PCTI_CLOSED_(pers_enqueue_batch(c->s, &r, 1, &er), "enqueue_batch");
    PCTI_CLOSED_(pers_claim(c->s, &cq, &g, &cr), "claim");
    PCTI_CLOSED_(pers_extend_lease(c->s, &l, 1000, &exp), "extend_lease");
    PCTI_CLOSED_(pers_abandon(c->s, &l), "abandon");
    PCTI_CLOSED_(pers_nack(c->s, &l, 0, "x", &ts), "nack");
    PCTI_CLOSED_(pers_complete(c->s, &l, NULL), "complete");
    PCTI_CLOSED_(pers_complete_batch(c->s, &l, NULL, 1, &item), "complete_batch");
    pcti_rc(c, item, PERS_ERR_CLOSED, "S20: complete_batch after pers_close: results[0]");
    PCTI_CLOSED_(pers_get_task(c->s, "acme", "a", &g), "get_task");
    PCTI_CLOSED_(pers_queue_stats(c->s, "acme", "email", &st), "queue_stats");
    PCTI_CLOSED_(pers_list_dead(c->s, &lq, &tl), "list_dead");
    PCTI_CLOSED_(pers_requeue_dead(c->s, "acme", "a"), "requeue_dead");
    PCTI_CLOSED_(pers_cleanup_tasks(c->s, &kq, &n), "cleanup_tasks");
    PCTI_CLOSED_(pers_get_result(c->s, "acme", "a", &tr), "get_result");
    PCTI_CLOSED_(pers_cleanup_results(c->s, &kq, &n), "cleanup_results");
    PCTI_CLOSED_(pcti_sub(c, "acme", "w1", email, 1, "http://x/", 1000, &n), "subscribe");
    PCTI_CLOSED_(pers_unsubscribe(c->s, "acme", "w1", NULL, &n), "unsubscribe");
    PCTI_CLOSED_(pers_list_subscriptions_by_queue(c->s, "acme", "email", &sl),
                 "list_subscriptions_by_queue");
    PCTI_CLOSED_(pers_list_subscriptions_by_worker(c->s, "acme", "w1", &sl),
                 "list_subscriptions_by_worker");
    PCTI_CLOSED_(pers_expire_subscriptions(c->s, NULL, &n), "expire_subscriptions");
#undef PCTI_CLOSED_
    pers_task_free(c->s, &t); /* allowed after pers_close (OWNERSHIP) */
}

/* PS-CAPS-01 */
static void pcti_caps_01(pcti_case *c)
{
    static const char *const email[] = {"email"};
    pers_caps caps;
    pers_store_desc d = pers_store_resolved(c->s);
    pers_enqueue_req r = pcti_req("acme", "email", "x");
    pers_enqueue_res er;
    pers_stats st;
    pers_list_req lq;
    pers_task_list tl;
    pers_cleanup_req kq = pcti_cleanup_req(NULL, 0, 0, 0);
    pers_task_result tr;
    pers_subscription_list sl;
    pers_lease bl;
    pers_result item = PERS_OK;
    size_t n;
    int has;
    if (!pcti_rc(c, pers_capabilities(c->s, &caps), PERS_OK, "capabilities"))
        return;
    pcti_true(c, caps.max_payload_bytes >= 1 && caps.max_payload_bytes <= PCTI_MIB,
              "S11: capabilities.max_payload_bytes %llu is outside 1..%u (the store's limit)",
              (unsigned long long)caps.max_payload_bytes, PCTI_MIB);
    pcti_eq_u64(c, caps.max_payload_bytes, d.max_payload_bytes,
                "S11: capabilities.max_payload_bytes = pers_store_resolved's");
    pcti_true(c, caps.max_batch >= 1 && caps.max_batch <= PERS_BATCH_MAX,
              "capabilities.max_batch %lu is outside 1..%u", (unsigned long)caps.max_batch,
              PERS_BATCH_MAX);
    memset(&lq, 0, sizeof lq);
    lq.tenant = "acme";
    lq.queue = "email";
#define PCTI_CAP_CALL_(cap, call, want, name)                                                      \
    do {                                                                                           \
        has = (caps.flags & (cap)) != 0;                                                           \
        pcti_rc(c, call, has ? (want) : PERS_ERR_NOT_SUPPORTED, "%s (%s %s)", name, #cap,          \
                has ? "declared" : "not declared");                                                \
    } while (0)
    PCTI_CAP_CALL_(PERS_CAP_BATCH, pers_enqueue_batch(c->s, &r, 1, &er), PERS_OK,
                   "enqueue_batch");
    PCTI_CAP_CALL_(PERS_CAP_STATS, pers_queue_stats(c->s, "acme", "email", &st), PERS_OK,
                   "queue_stats");
    PCTI_CAP_CALL_(PERS_CAP_DEAD_LETTER, pers_list_dead(c->s, &lq, &tl), PERS_OK, "list_dead");
    pers_task_list_free(c->s, &tl);
    PCTI_CAP_CALL_(PERS_CAP_DEAD_LETTER, pers_requeue_dead(c->s, "acme", "nosuch"),
                   PERS_ERR_NOT_FOUND, "requeue_dead of an unknown id");
    PCTI_CAP_CALL_(PERS_CAP_TASK_RETENTION, pers_cleanup_tasks(c->s, &kq, &n), PERS_OK,
                   "cleanup_tasks");
    PCTI_CAP_CALL_(PERS_CAP_RESULTS, pers_get_result(c->s, "acme", "nosuch", &tr),
                   PERS_ERR_NOT_FOUND, "get_result of an unknown id");
    PCTI_CAP_CALL_(PERS_CAP_RESULTS, pers_cleanup_results(c->s, &kq, &n), PERS_OK,
                   "cleanup_results");
    PCTI_CAP_CALL_(PERS_CAP_SUBSCRIPTIONS,
                   pcti_sub(c, "acme", "w1", email, 1, "http://x/", 1000, &n), PERS_OK,
                   "subscribe");
    PCTI_CAP_CALL_(PERS_CAP_SUBSCRIPTIONS,
                   pers_list_subscriptions_by_queue(c->s, "acme", "email", &sl), PERS_OK,
                   "list_subscriptions_by_queue");
    pers_subscription_list_free(c->s, &sl);
    PCTI_CAP_CALL_(PERS_CAP_SUBSCRIPTIONS,
                   pers_list_subscriptions_by_worker(c->s, "acme", "w1", &sl), PERS_OK,
                   "list_subscriptions_by_worker");
    pers_subscription_list_free(c->s, &sl);
    PCTI_CAP_CALL_(PERS_CAP_SUBSCRIPTIONS, pers_expire_subscriptions(c->s, NULL, &n), PERS_OK,
                   "expire_subscriptions");
    PCTI_CAP_CALL_(PERS_CAP_SUBSCRIPTIONS, pers_unsubscribe(c->s, "acme", "w1", NULL, &n),
                   PERS_OK, "unsubscribe");
    PCTI_CAP_CALL_(PERS_CAP_HEALTH, pers_health(c->s), PERS_OK, "health");
#undef PCTI_CAP_CALL_
    /* S20: complete_batch works whether or not the backend has it (the store falls back). */
    bl = pcti_lease("acme", "nosuch", 1);
    if (pcti_rc(c, pers_complete_batch(c->s, &bl, NULL, 1, &item), PERS_OK,
                "complete_batch of an unknown id (PERS_CAP_COMPLETE_BATCH %s)",
                (caps.flags & PERS_CAP_COMPLETE_BATCH) ? "declared" : "not declared"))
        pcti_rc(c, item, PERS_ERR_NOT_FOUND, "S20: complete_batch of an unknown id: results[0]");
    if (pcti_rc(c, pers_capabilities(c->s, &caps), PERS_OK, "capabilities a second time"))
        pcti_true(c, caps.flags == c->x->caps.flags,
                  "capabilities changed between two calls: 0x%llx, then 0x%llx",
                  (unsigned long long)c->x->caps.flags, (unsigned long long)caps.flags);
}

/* PS-HEALTH-01 */
static void pcti_health_01(pcti_case *c)
{
    pcti_rc(c, pers_health(c->s), PERS_OK, "health of a fresh store");
    if (pcti_put(c, "acme", "email", "a", 0, 0, 0) &&
        pcti_take(c, "acme", "email", "w1", PCTI_LONG, "a", NULL, "claim"))
        pcti_rc(c, pers_health(c->s), PERS_OK, "health of a store in use");
}

/* ---- concurrency: worker threads touch only atomic counters and their own slots ---- */

typedef struct pcti_conc {
    pers_store *s;
    size_t tasks;     /* PS-CONC-01: tasks; PS-CONC-02: keys per thread */
    int *claimed;     /* PS-CONC-01: claims seen per task (atomic) */
    size_t claims;    /* atomic */
    size_t doubles;   /* atomic */
    size_t errors;    /* atomic */
    size_t bad;       /* atomic: payloads that name no task */
    size_t limit;     /* claims after which the workers stop (a broken backend may loop) */
    int first_error;  /* atomic: the first unexpected result code */
} pcti_conc;

typedef struct pcti_worker {
    pcti_conc *k;
    char name[32];
    pthread_t thread;
    int started;
    char (*ids)[PERS_ID_MAX + 1]; /* PS-CONC-02: the id each key got (own slots) */
    int *dup;                     /* PS-CONC-02: the duplicate flag each key got */
} pcti_worker;

static void pcti_conc_error(pcti_conc *k, pers_result rc)
{
    int zero = 0;
    __atomic_add_fetch(&k->errors, 1, __ATOMIC_SEQ_CST);
    (void)__atomic_compare_exchange_n(&k->first_error, &zero, (int)rc, 0, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST);
}

static void *pcti_conc_claimer(void *arg)
{
    pcti_worker *w = (pcti_worker *)arg;
    pcti_conc *k = w->k;
    static const char *const queues[] = {"work"};
    pers_claim_req q = pcti_claim_req("acme", queues, 1, w->name, PCTI_LONG, 4);
    pers_task t[4];
    pers_claim_res res;
    pers_completion done = pcti_done("ok", 0);
    pers_lease l;
    pers_result rc;
    size_t i, j, idx;
    for (;;) {
        if (__atomic_load_n(&k->claims, __ATOMIC_SEQ_CST) >= k->limit)
            break;
        rc = pers_claim(k->s, &q, t, &res);
        if (rc != PERS_OK) {
            pcti_conc_error(k, rc);
            break;
        }
        if (res.count == 0)
            break;
        for (i = 0; i < res.count; i++) {
            const unsigned char *p = (const unsigned char *)t[i].payload;
            __atomic_add_fetch(&k->claims, 1, __ATOMIC_SEQ_CST);
            idx = 0;
            for (j = 0; p != NULL && j < t[i].payload_len && j < 12; j++)
                idx = idx * 10 + (size_t)(p[j] - '0');
            if (p == NULL || t[i].payload_len == 0 || idx >= k->tasks) {
                __atomic_add_fetch(&k->bad, 1, __ATOMIC_SEQ_CST);
                continue;
            }
            if (__atomic_add_fetch(&k->claimed[idx], 1, __ATOMIC_SEQ_CST) > 1)
                __atomic_add_fetch(&k->doubles, 1, __ATOMIC_SEQ_CST);
            l = pcti_lease("acme", t[i].id, t[i].lease_token);
            rc = pers_complete(k->s, &l, &done);
            if (rc != PERS_OK)
                pcti_conc_error(k, rc);
        }
        pers_tasks_free(k->s, t, res.count);
    }
    return NULL;
}

/* Starts the workers; returns how many started (a failure is recorded for the others). */
static size_t pcti_conc_start(pcti_case *c, pcti_worker *w, size_t n, void *(*fn)(void *))
{
    size_t i, started = 0;
    for (i = 0; i < n; i++) {
        w[i].started = pthread_create(&w[i].thread, NULL, fn, &w[i]) == 0;
        if (w[i].started)
            started++;
        else
            pcti_fail(c, "the suite could not start thread %lu", (unsigned long)i);
    }
    return started;
}

static void pcti_conc_join(pcti_worker *w, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (w[i].started)
            pthread_join(w[i].thread, NULL);
}

/* PS-CONC-01 */
static void pcti_conc_01(pcti_case *c)
{
    size_t m = c->run->opt.concurrent_tasks, n = c->run->opt.threads, i, zero = 0, many = 0;
    pcti_conc k;
    pcti_worker *w = (pcti_worker *)calloc(n, sizeof *w);
    char text[24], list[200];
    pers_enqueue_req r;
    memset(&k, 0, sizeof k);
    k.claimed = (int *)calloc(m, sizeof(int));
    if (w == NULL || k.claimed == NULL) {
        pcti_fail(c, "the suite ran out of memory");
        free(w);
        free(k.claimed);
        return;
    }
    k.s = c->s;
    k.tasks = m;
    k.limit = 2 * m + 4 * n + 16;
    for (i = 0; i < m; i++) {
        snprintf(text, sizeof text, "%lu", (unsigned long)i);
        r = pcti_req("acme", "work", text);
        if (!pcti_enqueue(c, &r, NULL, "enqueue of the tasks to claim"))
            break;
    }
    if (!pcti_failed(c)) {
        for (i = 0; i < n; i++) {
            w[i].k = &k;
            snprintf(w[i].name, sizeof w[i].name, "worker-%lu", (unsigned long)i);
        }
        pcti_conc_start(c, w, n, pcti_conc_claimer);
        pcti_conc_join(w, n);
        pcti_eq_u64(c, k.errors, 0,
                    "claim and complete from %lu threads: calls that failed (the first: %s)",
                    (unsigned long)n, pcti_rname((pers_result)k.first_error));
        pcti_eq_u64(c, k.bad, 0, "claimed tasks whose payload names no enqueued task");
        pcti_eq_u64(c, k.doubles, 0,
                    "S4: claims of a task whose lease was live (the lease outlives the run)");
        list[0] = '\0';
        for (i = 0; i < m; i++)
            if (k.claimed[i] != 1) {
                if (k.claimed[i] == 0)
                    zero++;
                else
                    many++;
                if (zero + many <= 5)
                    pcti_append(list, sizeof list, "%stask %lu claimed %d times",
                                zero + many > 1 ? ", " : "", (unsigned long)i, k.claimed[i]);
            }
        if (zero + many > 0)
            pcti_fail(c, "S4: every task must be claimed exactly once: %lu never, %lu more than "
                         "once (%s)",
                      (unsigned long)zero, (unsigned long)many, list);
        pcti_stats(c, "acme", "work", 0, 0, 0, m, 0, 0,
                   "S12, S17: every task completed once by the threads");
        pcti_none(c, "acme", "work", PERS_NO_TIME, "claim after the threads finished");
    }
    free(w);
    free(k.claimed);
}

static void *pcti_conc_enqueuer(void *arg)
{
    pcti_worker *w = (pcti_worker *)arg;
    pcti_conc *k = w->k;
    pers_enqueue_req r = pcti_req("acme", "idem", "x");
    pers_enqueue_res res;
    pers_result rc;
    char key[32];
    size_t i;
    for (i = 0; i < k->tasks; i++) {
        snprintf(key, sizeof key, "key-%lu", (unsigned long)i);
        r.idempotency_key = key;
        r.payload = w->name;
        r.payload_len = strlen(w->name);
        rc = pers_enqueue(k->s, &r, &res);
        if (rc != PERS_OK) {
            pcti_conc_error(k, rc);
            w->ids[i][0] = '\0';
            w->dup[i] = -1;
        } else {
            memcpy(w->ids[i], res.task_id, sizeof res.task_id);
            w->dup[i] = res.duplicate;
        }
    }
    return NULL;
}

/* PS-CONC-02 */
static void pcti_conc_02(pcti_case *c)
{
    size_t n = c->run->opt.threads, keys = 64, i, j, fresh;
    pcti_conc k;
    pcti_worker *w = (pcti_worker *)calloc(n, sizeof *w);
    int ok = w != NULL;
    memset(&k, 0, sizeof k);
    k.s = c->s;
    k.tasks = keys;
    for (i = 0; ok && i < n; i++) {
        w[i].k = &k;
        snprintf(w[i].name, sizeof w[i].name, "thread-%lu", (unsigned long)i);
        w[i].ids = (char(*)[PERS_ID_MAX + 1])calloc(keys, PERS_ID_MAX + 1);
        w[i].dup = (int *)calloc(keys, sizeof(int));
        ok = w[i].ids != NULL && w[i].dup != NULL;
    }
    if (!ok) {
        pcti_fail(c, "the suite ran out of memory");
    } else {
        pcti_conc_start(c, w, n, pcti_conc_enqueuer);
        pcti_conc_join(w, n);
        pcti_eq_u64(c, k.errors, 0, "enqueues from %lu threads that failed (the first: %s)",
                    (unsigned long)n, pcti_rname((pers_result)k.first_error));
        for (i = 0; i < keys && !pcti_failed(c); i++) {
            fresh = 0;
            for (j = 0; j < n; j++) {
                if (w[j].started && w[j].dup[i] == 0)
                    fresh++;
                if (w[j].started && w[0].started && strcmp(w[j].ids[i], w[0].ids[i]) != 0)
                    pcti_fail(c, "S8: key-%lu enqueued at once by %lu threads: thread 0 got id "
                                 "\"%s\", thread %lu got \"%s\"",
                              (unsigned long)i, (unsigned long)n, w[0].ids[i], (unsigned long)j,
                              w[j].ids[i]);
            }
            if (fresh != 1)
                pcti_fail(c, "S8: key-%lu enqueued at once by %lu threads: %lu enqueues created a "
                             "task (duplicate 0), expected exactly 1",
                          (unsigned long)i, (unsigned long)n, (unsigned long)fresh);
        }
        pcti_stats(c, "acme", "idem", 0, keys, 0, 0, 0, 0, "S8: one task per key");
    }
    for (i = 0; w != NULL && i < n; i++) {
        free(w[i].ids);
        free(w[i].dup);
    }
    free(w);
}

/* ---------------------------------------------------------------------------------------------
   PS-RANDOM-01: random operations, compared step by step with the memory backend
   ------------------------------------------------------------------------------------------- */

#define PCTI_R_IDS 256
#define PCTI_R_LEASES 64
#define PCTI_R_HISTORY 4
#define PCTI_R_PHASE 150

typedef struct pcti_rid {
    char tenant[PERS_NAME_MAX + 1];
    char id[PERS_ID_MAX + 1];
} pcti_rid;

typedef struct pcti_rlease {
    char tenant[PERS_NAME_MAX + 1];
    char id[PERS_ID_MAX + 1];
    uint64_t tok[2]; /* target's, reference's */
} pcti_rlease;

typedef struct pcti_rreq {
    pers_enqueue_req q;
    unsigned char payload[40];
    char key[8];
    char id[PERS_ID_MAX + 1];
} pcti_rreq;

typedef struct pcti_rstate {
    pcti_case *c;
    pers_store *st[2]; /* target, reference */
    uint64_t rng;
    unsigned long step, steps, next_id;
    pcti_rid ids[PCTI_R_IDS];
    size_t nids;
    pcti_rlease leases[PCTI_R_LEASES];
    size_t nleases, lease_next;
    char op[300];
    char hist[PCTI_R_HISTORY][300];
    int diverged;
} pcti_rstate;

static const char *const pcti_r_tenants[] = {"acme", "globex"};
static const char *const pcti_r_queues[] = {"q1", "q2", "q3"};

static void pcti_r_diff(pcti_rstate *R, const char *fmt, ...) PLG_PRINTF(2, 3);
static void pcti_r_diff(pcti_rstate *R, const char *fmt, ...)
{
    char what[700], hist[1000];
    size_t i, n;
    va_list ap;
    va_start(ap, fmt);
    pcti_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    hist[0] = '\0';
    n = R->step < PCTI_R_HISTORY ? R->step : PCTI_R_HISTORY;
    for (i = n; i > 0; i--)
        pcti_append(hist, sizeof hist, "%s#%lu %s", i < n ? "; " : "", R->step - i,
                    R->hist[(R->step - i) % PCTI_R_HISTORY]);
    pcti_fail(R->c,
              "the target differs from the memory backend at step %lu of %lu, seed %llu "
              "(repeat with options.seed = %llu): %s: %s; the steps before: %s",
              R->step, R->steps, (unsigned long long)R->c->run->seed,
              (unsigned long long)R->c->run->seed, R->op, what, hist[0] ? hist : "none");
    R->diverged = 1;
}

static uint32_t pcti_r_below(pcti_rstate *R, uint32_t n)
{
    return pcti_below(&R->rng, n);
}

static int pcti_r_rc(pcti_rstate *R, pers_result a, pers_result b)
{
    if (a == b)
        return 1;
    pcti_r_diff(R, "the target returned %s (%s), the memory backend %s (%s)", pcti_rname(a),
                a == PERS_OK ? "" : pers_errmsg(R->st[0]), pcti_rname(b),
                b == PERS_OK ? "" : pers_errmsg(R->st[1]));
    return 0;
}

static int pcti_r_i64(pcti_rstate *R, int64_t a, int64_t b, const char *what)
{
    if (a == b)
        return 1;
    pcti_r_diff(R, "%s: target %lld, memory %lld", what, (long long)a, (long long)b);
    return 0;
}

static int pcti_r_str(pcti_rstate *R, const char *a, const char *b, const char *what)
{
    char x[120], y[120];
    if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0))
        return 1;
    pcti_r_diff(R, "%s: target %s%s%s, memory %s%s%s", what, a ? "\"" : "",
                a ? pcti_show(a, strlen(a), x, sizeof x) : "NULL", a ? "\"" : "", b ? "\"" : "",
                b ? pcti_show(b, strlen(b), y, sizeof y) : "NULL", b ? "\"" : "");
    return 0;
}

static int pcti_r_bytes(pcti_rstate *R, const void *a, size_t alen, const void *b, size_t blen,
                        const char *what)
{
    char x[200], y[200];
    if (alen == blen && (alen == 0 || (a != NULL && b != NULL && memcmp(a, b, alen) == 0)))
        return 1;
    pcti_r_diff(R, "%s: target %lu bytes \"%s\", memory %lu bytes \"%s\"", what,
                (unsigned long)alen, pcti_show(a, alen, x, sizeof x), (unsigned long)blen,
                pcti_show(b, blen, y, sizeof y));
    return 0;
}

/* Every field of two tasks; claimed: the tokens are both non-zero (their values may differ),
   else both 0. */
static int pcti_r_task(pcti_rstate *R, const pers_task *a, const pers_task *b, int claimed)
{
    char what[120];
#define PCTI_R_S_(f)                                                                               \
    (snprintf(what, sizeof what, "task \"%.60s\": %s", b->id, #f),                               \
     pcti_r_str(R, a->f, b->f, what))
#define PCTI_R_I_(f)                                                                               \
    (snprintf(what, sizeof what, "task \"%.60s\": %s", b->id, #f),                               \
     pcti_r_i64(R, (int64_t)a->f, (int64_t)b->f, what))
    if (!PCTI_R_S_(id) || !PCTI_R_S_(tenant) || !PCTI_R_S_(queue) || !PCTI_R_S_(worker_id) ||
        !PCTI_R_S_(idempotency_key) || !PCTI_R_I_(state) || !PCTI_R_I_(priority) ||
        !PCTI_R_I_(attempts) || !PCTI_R_I_(max_attempts) || !PCTI_R_I_(created_ms) ||
        !PCTI_R_I_(due_ms) || !PCTI_R_I_(lease_expires_ms) || !PCTI_R_I_(finished_ms) ||
        !PCTI_R_S_(last_error))
        return 0;
#undef PCTI_R_S_
#undef PCTI_R_I_
    snprintf(what, sizeof what, "task \"%.60s\": payload", b->id);
    if (!pcti_r_bytes(R, a->payload, a->payload_len, b->payload, b->payload_len, what))
        return 0;
    if (claimed ? a->lease_token == 0 : a->lease_token != 0) {
        pcti_r_diff(R, "task \"%s\": lease_token %llu (%s)", b->id,
                    (unsigned long long)a->lease_token,
                    claimed ? "S4: 0 is never a token" : "always 0 outside claim");
        return 0;
    }
    return 1;
}

static void pcti_r_note_id(pcti_rstate *R, const char *tenant, const char *id)
{
    pcti_rid *d = R->nids < PCTI_R_IDS ? &R->ids[R->nids++] : &R->ids[pcti_r_below(R, PCTI_R_IDS)];
    snprintf(d->tenant, sizeof d->tenant, "%s", tenant);
    snprintf(d->id, sizeof d->id, "%s", id);
}

static void pcti_r_note_lease(pcti_rstate *R, const pers_task *a, const pers_task *b)
{
    pcti_rlease *l;
    if (R->nleases < PCTI_R_LEASES)
        l = &R->leases[R->nleases++];
    else
        l = &R->leases[R->lease_next++ % PCTI_R_LEASES];
    snprintf(l->tenant, sizeof l->tenant, "%s", b->tenant);
    snprintf(l->id, sizeof l->id, "%s", b->id);
    l->tok[0] = a->lease_token;
    l->tok[1] = b->lease_token;
}

/* A known task id (mostly in its tenant, sometimes in the other one), or an unknown one. */
static void pcti_r_pick_id(pcti_rstate *R, const char **tenant, const char **id)
{
    uint32_t u = pcti_r_below(R, 10);
    if (R->nids == 0 || u == 0) {
        *tenant = pcti_r_tenants[pcti_r_below(R, 2)];
        *id = "never-enqueued";
        return;
    }
    {
        const pcti_rid *d = &R->ids[pcti_r_below(R, (uint32_t)R->nids)];
        *id = d->id;
        *tenant = d->tenant;
        if (u == 1)
            *tenant = strcmp(d->tenant, "acme") == 0 ? "globex" : "acme";
    }
}

static void pcti_r_make(pcti_rstate *R, pcti_rreq *r, int64_t now)
{
    static const int32_t prios[] = {0, 0, 0, 1, 2, -1, 100};
    static const uint32_t atts[] = {0, 1, 2, 3, 5};
    size_t len = pcti_r_below(R, 41), i;
    uint32_t u;
    memset(r, 0, sizeof *r);
    for (i = 0; i < len; i++)
        r->payload[i] = (unsigned char)pcti_r_below(R, 256);
    r->q.tenant = pcti_r_tenants[pcti_r_below(R, 2)];
    r->q.queue = pcti_r_queues[pcti_r_below(R, 3)];
    r->q.payload = r->payload;
    r->q.payload_len = len;
    r->q.priority = prios[pcti_r_below(R, 7)];
    u = pcti_r_below(R, 20);
    if (u >= 10 && u < 16)
        r->q.delay_ms = 1 + (int64_t)pcti_r_below(R, 3000);
    else if (u >= 16 && u < 19)
        r->q.run_at_ms = now - 2000 + (int64_t)pcti_r_below(R, 5000);
    r->q.max_attempts = atts[pcti_r_below(R, 5)];
    if (pcti_r_below(R, 10) < 3) {
        snprintf(r->key, sizeof r->key, "k%u", (unsigned)pcti_r_below(R, 6));
        r->q.idempotency_key = r->key;
    }
    if (R->nids > 0 && pcti_r_below(R, 12) == 0)
        memcpy(r->id, R->ids[pcti_r_below(R, (uint32_t)R->nids)].id, sizeof r->id);
    else
        snprintf(r->id, sizeof r->id, "r%lu", R->next_id++);
    r->q.task_id = r->id;
}

static void pcti_r_describe(char *buf, size_t size, const pcti_rreq *r)
{
    pcti_append(buf, size, "{%s/%s id %s%s%s prio %ld %s %lld max %lu %lu B}", r->q.tenant,
                r->q.queue, r->id, r->q.idempotency_key ? " key " : "",
                r->q.idempotency_key ? r->key : "", (long)r->q.priority,
                r->q.run_at_ms ? "run_at" : "delay",
                (long long)(r->q.run_at_ms ? r->q.run_at_ms - PCTI_T0 : r->q.delay_ms),
                (unsigned long)r->q.max_attempts, (unsigned long)r->q.payload_len);
}

static void pcti_r_enqueue(pcti_rstate *R, int64_t now, size_t count)
{
    pcti_rreq rq[3];
    pers_enqueue_req q[3];
    pers_enqueue_res res[2][3];
    pers_result rc[2];
    size_t i, k;
    char what[64];
    snprintf(R->op, sizeof R->op, count ? "enqueue_batch " : "enqueue ");
    for (i = 0; i < (count ? count : 1); i++) {
        pcti_r_make(R, &rq[i], now);
        q[i] = rq[i].q;
        pcti_r_describe(R->op, sizeof R->op, &rq[i]);
    }
    for (k = 0; k < 2; k++)
        rc[k] = count ? pers_enqueue_batch(R->st[k], q, count, res[k])
                      : pers_enqueue(R->st[k], q, res[k]);
    if (!pcti_r_rc(R, rc[0], rc[1]) || rc[0] != PERS_OK)
        return;
    for (i = 0; i < (count ? count : 1); i++) {
        snprintf(what, sizeof what, "request %lu: task_id", (unsigned long)i);
        if (!pcti_r_str(R, res[0][i].task_id, res[1][i].task_id, what))
            return;
        snprintf(what, sizeof what, "request %lu: duplicate", (unsigned long)i);
        if (!pcti_r_i64(R, res[0][i].duplicate, res[1][i].duplicate, what))
            return;
        if (!res[1][i].duplicate)
            pcti_r_note_id(R, q[i].tenant, res[1][i].task_id);
    }
}

static void pcti_r_claim(pcti_rstate *R)
{
    const char *queues[3];
    pers_task t[2][3];
    pers_claim_res res[2];
    pers_result rc[2];
    pers_claim_req q;
    uint32_t first = pcti_r_below(R, 3);
    size_t nq = 1 + pcti_r_below(R, 3), i, k, max;
    const char *tenant;
    int64_t lease;
    char worker[8];
    int down = (int)pcti_r_below(R, 2); /* walk q1 q2 q3 forwards or backwards */
    for (i = 0; i < nq; i++)
        queues[i] = pcti_r_queues[down ? (first + 3 - i) % 3 : (first + i) % 3];
    snprintf(worker, sizeof worker, "w%u", (unsigned)pcti_r_below(R, 3));
    /* One draw per statement: the order of evaluation of arguments is unspecified, and a seed
       must give the same sequence with every compiler. */
    tenant = pcti_r_tenants[pcti_r_below(R, 2)];
    lease = 100 + (int64_t)pcti_r_below(R, 3000);
    max = 1 + pcti_r_below(R, 3);
    q = pcti_claim_req(tenant, queues, nq, worker, lease, max);
    snprintf(R->op, sizeof R->op, "claim(%s, [%s%s%s%s%s], %s, lease %lld, max %lu)", q.tenant,
             queues[0], nq > 1 ? ", " : "", nq > 1 ? queues[1] : "", nq > 2 ? ", " : "",
             nq > 2 ? queues[2] : "", worker, (long long)q.lease_ms, (unsigned long)q.max_tasks);
    for (k = 0; k < 2; k++)
        rc[k] = pers_claim(R->st[k], &q, t[k], &res[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK &&
        pcti_r_i64(R, (int64_t)res[0].count, (int64_t)res[1].count, "count") &&
        pcti_r_i64(R, res[0].next_due_ms, res[1].next_due_ms, "next_due_ms (S18)")) {
        for (i = 0; i < res[1].count; i++) {
            if (!pcti_r_task(R, &t[0][i], &t[1][i], 1))
                break;
            pcti_r_note_lease(R, &t[0][i], &t[1][i]);
        }
    }
    if (rc[0] == PERS_OK)
        pers_tasks_free(R->st[0], t[0], res[0].count);
    if (rc[1] == PERS_OK)
        pers_tasks_free(R->st[1], t[1], res[1].count);
}

static void pcti_r_worker_op(pcti_rstate *R, int op)
{
    const pcti_rlease *l = &R->leases[pcti_r_below(R, (uint32_t)R->nleases)];
    pers_lease le[2];
    pers_result rc[2];
    int64_t exp[2] = {0, 0}, ms = 100 + (int64_t)pcti_r_below(R, 3000);
    pers_task_state st[2] = {(pers_task_state)0, (pers_task_state)0};
    unsigned char data[24];
    pers_completion d;
    char reason[24];
    size_t k, len = pcti_r_below(R, 24);
    for (k = 0; k < len; k++)
        data[k] = (unsigned char)pcti_r_below(R, 256);
    d.failed = pcti_r_below(R, 4) == 0;
    d.data = data;
    d.data_len = len;
    snprintf(reason, sizeof reason, "nack-%u", (unsigned)pcti_r_below(R, 100));
    if (op == 2 && pcti_r_below(R, 2))
        ms = 0; /* nack without delay */
    for (k = 0; k < 2; k++)
        le[k] = pcti_lease(l->tenant, l->id, l->tok[k]);
    switch (op) {
    case 0:
        snprintf(R->op, sizeof R->op, "extend_lease(%s, %s, its token %llu/%llu, %lld)",
                 l->tenant, l->id, (unsigned long long)l->tok[0], (unsigned long long)l->tok[1],
                 (long long)ms);
        for (k = 0; k < 2; k++)
            rc[k] = pers_extend_lease(R->st[k], &le[k], ms, &exp[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
            pcti_r_i64(R, exp[0], exp[1], "expires_ms");
        break;
    case 1:
        snprintf(R->op, sizeof R->op, "abandon(%s, %s, its token %llu/%llu)", l->tenant, l->id,
                 (unsigned long long)l->tok[0], (unsigned long long)l->tok[1]);
        for (k = 0; k < 2; k++)
            rc[k] = pers_abandon(R->st[k], &le[k]);
        pcti_r_rc(R, rc[0], rc[1]);
        break;
    case 2:
        snprintf(R->op, sizeof R->op, "nack(%s, %s, its token %llu/%llu, delay %lld, \"%s\")",
                 l->tenant, l->id, (unsigned long long)l->tok[0], (unsigned long long)l->tok[1],
                 (long long)ms, reason);
        for (k = 0; k < 2; k++)
            rc[k] = pers_nack(R->st[k], &le[k], ms, reason, &st[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
            pcti_r_i64(R, st[0], st[1], "the new state");
        break;
    default:
        snprintf(R->op, sizeof R->op, "complete(%s, %s, its token %llu/%llu, failed %d, %lu B)",
                 l->tenant, l->id, (unsigned long long)l->tok[0], (unsigned long long)l->tok[1],
                 d.failed, (unsigned long)len);
        for (k = 0; k < 2; k++)
            rc[k] = pers_complete(R->st[k], &le[k], &d);
        pcti_r_rc(R, rc[0], rc[1]);
        break;
    }
}

/* S20: 1..3 leases drawn from those seen (the same one twice now and then), compared item by
   item. */
static void pcti_r_complete_batch(pcti_rstate *R)
{
    pers_lease le[2][3];
    pers_completion d[3];
    pers_result rc[2], res[2][3];
    unsigned char data[3][16];
    size_t n = 1 + pcti_r_below(R, 3), i, j, k, len;
    char what[48];
    snprintf(R->op, sizeof R->op, "complete_batch(");
    for (i = 0; i < n; i++) {
        const pcti_rlease *l = &R->leases[pcti_r_below(R, (uint32_t)R->nleases)];
        len = pcti_r_below(R, 16);
        for (j = 0; j < len; j++)
            data[i][j] = (unsigned char)pcti_r_below(R, 256);
        d[i].failed = pcti_r_below(R, 4) == 0;
        d[i].data = data[i];
        d[i].data_len = len;
        for (k = 0; k < 2; k++)
            le[k][i] = pcti_lease(l->tenant, l->id, l->tok[k]);
        pcti_append(R->op, sizeof R->op, "%s{%s, %s, its token %llu/%llu, failed %d, %lu B}",
                    i ? ", " : "", l->tenant, l->id, (unsigned long long)l->tok[0],
                    (unsigned long long)l->tok[1], d[i].failed, (unsigned long)len);
    }
    pcti_append(R->op, sizeof R->op, ")");
    for (k = 0; k < 2; k++)
        rc[k] = pers_complete_batch(R->st[k], le[k], d, n, res[k]);
    if (!pcti_r_rc(R, rc[0], rc[1]))
        return;
    for (i = 0; i < n; i++) {
        snprintf(what, sizeof what, "results[%lu] (S20)", (unsigned long)i);
        if (!pcti_r_i64(R, res[0][i], res[1][i], what))
            return;
    }
}

static void pcti_r_get_task(pcti_rstate *R)
{
    const char *tenant, *id;
    pers_task t[2];
    pers_result rc[2];
    size_t k;
    pcti_r_pick_id(R, &tenant, &id);
    snprintf(R->op, sizeof R->op, "get_task(%s, %s)", tenant, id);
    for (k = 0; k < 2; k++)
        rc[k] = pers_get_task(R->st[k], tenant, id, &t[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
        pcti_r_task(R, &t[0], &t[1], 0);
    for (k = 0; k < 2; k++)
        if (rc[k] == PERS_OK)
            pers_task_free(R->st[k], &t[k]);
}

static void pcti_r_stats(pcti_rstate *R)
{
    static const char *const queues[] = {"q1", "q2", "q3", "q4"};
    const char *tenant = pcti_r_tenants[pcti_r_below(R, 2)], *queue = queues[pcti_r_below(R, 4)];
    pers_stats s[2];
    pers_result rc[2];
    size_t k;
    snprintf(R->op, sizeof R->op, "queue_stats(%s, %s)", tenant, queue);
    for (k = 0; k < 2; k++)
        rc[k] = pers_queue_stats(R->st[k], tenant, queue, &s[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK &&
        (s[0].scheduled != s[1].scheduled || s[0].ready != s[1].ready ||
         s[0].leased != s[1].leased || s[0].completed != s[1].completed ||
         s[0].failed != s[1].failed || s[0].dead != s[1].dead))
        pcti_r_diff(R,
                    "S17: target scheduled %llu ready %llu leased %llu completed %llu failed "
                    "%llu dead %llu; memory %llu %llu %llu %llu %llu %llu",
                    (unsigned long long)s[0].scheduled, (unsigned long long)s[0].ready,
                    (unsigned long long)s[0].leased, (unsigned long long)s[0].completed,
                    (unsigned long long)s[0].failed, (unsigned long long)s[0].dead,
                    (unsigned long long)s[1].scheduled, (unsigned long long)s[1].ready,
                    (unsigned long long)s[1].leased, (unsigned long long)s[1].completed,
                    (unsigned long long)s[1].failed, (unsigned long long)s[1].dead);
}

static void pcti_r_get_result(pcti_rstate *R)
{
    const char *tenant, *id;
    pers_task_result r[2];
    pers_result rc[2];
    size_t k;
    pcti_r_pick_id(R, &tenant, &id);
    snprintf(R->op, sizeof R->op, "get_result(%s, %s)", tenant, id);
    for (k = 0; k < 2; k++)
        rc[k] = pers_get_result(R->st[k], tenant, id, &r[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK) {
        if (pcti_r_str(R, r[0].task_id, r[1].task_id, "task_id") &&
            pcti_r_str(R, r[0].tenant, r[1].tenant, "tenant") &&
            pcti_r_str(R, r[0].queue, r[1].queue, "queue") &&
            pcti_r_i64(R, r[0].state, r[1].state, "state") &&
            pcti_r_i64(R, r[0].attempts, r[1].attempts, "attempts") &&
            pcti_r_i64(R, r[0].finished_ms, r[1].finished_ms, "finished_ms"))
            pcti_r_bytes(R, r[0].data, r[0].data_len, r[1].data, r[1].data_len, "data");
    }
    for (k = 0; k < 2; k++)
        if (rc[k] == PERS_OK)
            pers_task_result_free(R->st[k], &r[k]);
}

static int pcti_r_cmp_task_id(const void *a, const void *b)
{
    return strcmp(((const pers_task *)a)->id, ((const pers_task *)b)->id);
}

static void pcti_r_list_dead(pcti_rstate *R)
{
    pers_list_req q;
    pers_task_list l[2];
    pers_result rc[2];
    size_t k, i;
    memset(&q, 0, sizeof q);
    q.tenant = pcti_r_tenants[pcti_r_below(R, 2)];
    q.queue = pcti_r_queues[pcti_r_below(R, 3)];
    snprintf(R->op, sizeof R->op, "list_dead(%s, %s)", q.tenant, q.queue);
    for (k = 0; k < 2; k++)
        rc[k] = pers_list_dead(R->st[k], &q, &l[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK &&
        pcti_r_i64(R, (int64_t)l[0].count, (int64_t)l[1].count, "count") &&
        pcti_r_i64(R, (int64_t)l[0].total, (int64_t)l[1].total, "total")) {
        /* Tasks that died at the same instant may be listed in either order: compare sets. */
        for (k = 0; k < 2; k++)
            if (l[k].count > 1)
                qsort(l[k].items, l[k].count, sizeof(pers_task), pcti_r_cmp_task_id);
        for (i = 0; i < l[1].count; i++)
            if (!pcti_r_task(R, &l[0].items[i], &l[1].items[i], 0))
                break;
    }
    for (k = 0; k < 2; k++)
        pers_task_list_free(R->st[k], &l[k]);
}

static void pcti_r_requeue(pcti_rstate *R)
{
    const char *tenant, *id;
    pers_result rc[2];
    size_t k;
    pcti_r_pick_id(R, &tenant, &id);
    snprintf(R->op, sizeof R->op, "requeue_dead(%s, %s)", tenant, id);
    for (k = 0; k < 2; k++)
        rc[k] = pers_requeue_dead(R->st[k], tenant, id);
    pcti_r_rc(R, rc[0], rc[1]);
}

static void pcti_r_cleanup(pcti_rstate *R, int results)
{
    static const int64_t ages[] = {0, 1000, 5000};
    pers_cleanup_req q;
    size_t removed[2] = {0, 0}, k;
    pers_result rc[2];
    uint32_t t = pcti_r_below(R, 3);
    int64_t age = ages[pcti_r_below(R, 3)];
    int dead = (int)pcti_r_below(R, 2);
    q = pcti_cleanup_req(t < 2 ? pcti_r_tenants[t] : NULL, age, dead, 0);
    snprintf(R->op, sizeof R->op, "%s(%s, older than %lld, include_dead %d)",
             results ? "cleanup_results" : "cleanup_tasks", q.tenant ? q.tenant : "every tenant",
             (long long)q.older_than_ms, q.include_dead);
    for (k = 0; k < 2; k++)
        rc[k] = results ? pers_cleanup_results(R->st[k], &q, &removed[k])
                        : pers_cleanup_tasks(R->st[k], &q, &removed[k]);
    if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
        pcti_r_i64(R, (int64_t)removed[0], (int64_t)removed[1], "removed");
}

static void pcti_r_subs(pcti_rstate *R, int op)
{
    const char *tenant = pcti_r_tenants[pcti_r_below(R, 2)];
    const char *queue = pcti_r_queues[pcti_r_below(R, 3)];
    char worker[8], cb[24];
    pers_subscribe_req q;
    pers_subscription_list l[2];
    pers_result rc[2];
    size_t n[2] = {0, 0}, k, i;
    int64_t ttl = 100 + (int64_t)pcti_r_below(R, 5000);
    snprintf(worker, sizeof worker, "w%u", (unsigned)pcti_r_below(R, 3));
    snprintf(cb, sizeof cb, "http://h%u/", (unsigned)pcti_r_below(R, 3));
    memset(l, 0, sizeof l);
    switch (op) {
    case 0:
        memset(&q, 0, sizeof q);
        q.tenant = tenant;
        q.worker_id = worker;
        q.queues = pcti_r_queues + pcti_r_below(R, 3);
        q.queue_count = 1 + (size_t)pcti_r_below(R, (uint32_t)(3 - (q.queues - pcti_r_queues)));
        q.callback = cb;
        q.ttl_ms = ttl;
        snprintf(R->op, sizeof R->op, "subscribe(%s, %s, %lu queues from %s, %s, ttl %lld)",
                 tenant, worker, (unsigned long)q.queue_count, q.queues[0], cb, (long long)ttl);
        for (k = 0; k < 2; k++)
            rc[k] = pers_subscribe(R->st[k], &q, &n[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
            pcti_r_i64(R, (int64_t)n[0], (int64_t)n[1], "created");
        return;
    case 1:
        if (pcti_r_below(R, 2))
            queue = NULL;
        snprintf(R->op, sizeof R->op, "unsubscribe(%s, %s, %s)", tenant, worker,
                 queue ? queue : "every queue");
        for (k = 0; k < 2; k++)
            rc[k] = pers_unsubscribe(R->st[k], tenant, worker, queue, &n[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
            pcti_r_i64(R, (int64_t)n[0], (int64_t)n[1], "removed");
        return;
    case 2:
        snprintf(R->op, sizeof R->op, "expire_subscriptions(%s)", tenant);
        for (k = 0; k < 2; k++)
            rc[k] = pers_expire_subscriptions(R->st[k], tenant, &n[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK)
            pcti_r_i64(R, (int64_t)n[0], (int64_t)n[1], "removed");
        return;
    default:
        if (op == 3)
            snprintf(R->op, sizeof R->op, "list_subscriptions_by_queue(%s, %s)", tenant, queue);
        else
            snprintf(R->op, sizeof R->op, "list_subscriptions_by_worker(%s, %s)", tenant, worker);
        for (k = 0; k < 2; k++)
            rc[k] = op == 3 ? pers_list_subscriptions_by_queue(R->st[k], tenant, queue, &l[k])
                            : pers_list_subscriptions_by_worker(R->st[k], tenant, worker, &l[k]);
        if (pcti_r_rc(R, rc[0], rc[1]) && rc[0] == PERS_OK &&
            pcti_r_i64(R, (int64_t)l[0].count, (int64_t)l[1].count, "rows"))
            for (i = 0; i < l[1].count; i++) {
                const pers_subscription *a = &l[0].items[i], *b = &l[1].items[i];
                if (!pcti_r_str(R, a->worker_id, b->worker_id, "row worker_id") ||
                    !pcti_r_str(R, a->queue, b->queue, "row queue") ||
                    !pcti_r_str(R, a->tenant, b->tenant, "row tenant") ||
                    !pcti_r_str(R, a->callback, b->callback, "row callback") ||
                    !pcti_r_i64(R, a->created_ms, b->created_ms, "row created_ms") ||
                    !pcti_r_i64(R, a->updated_ms, b->updated_ms, "row updated_ms") ||
                    !pcti_r_i64(R, a->expires_ms, b->expires_ms, "row expires_ms"))
                    break;
            }
        for (k = 0; k < 2; k++)
            pers_subscription_list_free(R->st[k], &l[k]);
        return;
    }
}

enum {
    PCTI_R_ENQUEUE, PCTI_R_BATCH, PCTI_R_CLAIM, PCTI_R_EXTEND, PCTI_R_ABANDON, PCTI_R_NACK,
    PCTI_R_COMPLETE, PCTI_R_ADVANCE, PCTI_R_GET, PCTI_R_STATS, PCTI_R_RESULT, PCTI_R_DEAD,
    PCTI_R_REQUEUE, PCTI_R_CLEAN_TASKS, PCTI_R_CLEAN_RESULTS, PCTI_R_SUBSCRIBE,
    PCTI_R_UNSUBSCRIBE, PCTI_R_EXPIRE, PCTI_R_LIST_QUEUE, PCTI_R_LIST_WORKER, PCTI_R_CBATCH
};

static const struct {
    int op;
    unsigned weight;
    uint64_t cap;
} pcti_r_ops[] = {
    {PCTI_R_ENQUEUE, 22, 0},
    {PCTI_R_BATCH, 3, PERS_CAP_BATCH},
    {PCTI_R_CLAIM, 18, 0},
    {PCTI_R_EXTEND, 6, 0},
    {PCTI_R_ABANDON, 5, 0},
    {PCTI_R_NACK, 8, 0},
    {PCTI_R_COMPLETE, 10, 0},
    {PCTI_R_ADVANCE, 9, 0},
    {PCTI_R_GET, 7, 0},
    {PCTI_R_STATS, 4, PERS_CAP_STATS},
    {PCTI_R_RESULT, 3, PERS_CAP_RESULTS},
    {PCTI_R_DEAD, 1, PERS_CAP_DEAD_LETTER},
    {PCTI_R_REQUEUE, 2, PERS_CAP_DEAD_LETTER},
    {PCTI_R_CLEAN_TASKS, 1, PERS_CAP_TASK_RETENTION},
    {PCTI_R_CLEAN_RESULTS, 1, PERS_CAP_RESULTS},
    {PCTI_R_SUBSCRIBE, 2, PERS_CAP_SUBSCRIPTIONS},
    {PCTI_R_UNSUBSCRIBE, 1, PERS_CAP_SUBSCRIPTIONS},
    {PCTI_R_EXPIRE, 1, PERS_CAP_SUBSCRIPTIONS},
    {PCTI_R_LIST_QUEUE, 1, PERS_CAP_SUBSCRIPTIONS},
    {PCTI_R_LIST_WORKER, 1, PERS_CAP_SUBSCRIPTIONS},
    {PCTI_R_CBATCH, 3, 0},
};
#define PCTI_R_OP_COUNT (sizeof pcti_r_ops / sizeof pcti_r_ops[0])

/* PS-RANDOM-01 */
static void pcti_random_01(pcti_case *c)
{
    pcti_rstate *R = (pcti_rstate *)calloc(1, sizeof(pcti_rstate));
    pers_result rc;
    unsigned total = 0, pick;
    size_t i;
    int op;
    if (R == NULL) {
        pcti_fail(c, "the suite ran out of memory");
        return;
    }
    rc = pers_open_vtable(pers_memory_vtable(), NULL, &c->x->desc, &c->x->ref);
    if (rc != PERS_OK) {
        pcti_fail(c, "the suite could not open the reference memory backend: %s (%s)",
                  pers_result_string(rc), c->x->why);
        free(R);
        return;
    }
    R->c = c;
    R->st[0] = c->s;
    R->st[1] = c->x->ref;
    R->rng = c->run->seed;
    R->steps = (unsigned long)c->run->opt.random_steps;
    for (R->step = 0; R->step < R->steps && !R->diverged; R->step++) {
        /* Phases of PCTI_R_PHASE steps: filling (every operation) and draining (no enqueue),
           so that both a backlog and empty queues (S18) are exercised. */
        int draining = (R->step / PCTI_R_PHASE) % 2 == 1;
        total = 0;
        for (i = 0; i < PCTI_R_OP_COUNT; i++)
            if (pcti_has(c, pcti_r_ops[i].cap) &&
                !(draining && (pcti_r_ops[i].op == PCTI_R_ENQUEUE ||
                               pcti_r_ops[i].op == PCTI_R_BATCH)))
                total += pcti_r_ops[i].weight;
        pick = pcti_r_below(R, total);
        op = PCTI_R_ADVANCE;
        for (i = 0; i < PCTI_R_OP_COUNT; i++) {
            if (!pcti_has(c, pcti_r_ops[i].cap) ||
                (draining &&
                 (pcti_r_ops[i].op == PCTI_R_ENQUEUE || pcti_r_ops[i].op == PCTI_R_BATCH)))
                continue;
            if (pick < pcti_r_ops[i].weight) {
                op = pcti_r_ops[i].op;
                break;
            }
            pick -= pcti_r_ops[i].weight;
        }
        if (R->nleases == 0 &&
            ((op >= PCTI_R_EXTEND && op <= PCTI_R_COMPLETE) || op == PCTI_R_CBATCH))
            op = PCTI_R_CLAIM;
        R->op[0] = '\0';
        switch (op) {
        case PCTI_R_ENQUEUE:
            pcti_r_enqueue(R, pcti_now(c), 0);
            break;
        case PCTI_R_BATCH:
            pcti_r_enqueue(R, pcti_now(c), 1 + pcti_r_below(R, 3));
            break;
        case PCTI_R_CLAIM:
            pcti_r_claim(R);
            break;
        case PCTI_R_EXTEND:
        case PCTI_R_ABANDON:
        case PCTI_R_NACK:
        case PCTI_R_COMPLETE:
            pcti_r_worker_op(R, op - PCTI_R_EXTEND);
            break;
        case PCTI_R_ADVANCE: {
            int64_t ms = pcti_r_below(R, 10) == 0 ? 10000 : 1 + (int64_t)pcti_r_below(R, 2500);
            snprintf(R->op, sizeof R->op, "advance the clock by %lld ms", (long long)ms);
            pcti_advance(c, ms);
            break;
        }
        case PCTI_R_GET:
            pcti_r_get_task(R);
            break;
        case PCTI_R_STATS:
            pcti_r_stats(R);
            break;
        case PCTI_R_RESULT:
            pcti_r_get_result(R);
            break;
        case PCTI_R_DEAD:
            pcti_r_list_dead(R);
            break;
        case PCTI_R_REQUEUE:
            pcti_r_requeue(R);
            break;
        case PCTI_R_CLEAN_TASKS:
        case PCTI_R_CLEAN_RESULTS:
            pcti_r_cleanup(R, op == PCTI_R_CLEAN_RESULTS);
            break;
        case PCTI_R_CBATCH:
            pcti_r_complete_batch(R);
            break;
        default:
            pcti_r_subs(R, op - PCTI_R_SUBSCRIBE);
            break;
        }
        snprintf(R->hist[R->step % PCTI_R_HISTORY], sizeof R->hist[0], "%s", R->op);
    }
    free(R);
}

/* =============================================================================================
   The case list and the run
   ============================================================================================= */

typedef struct pcti_case_def {
    const char *id;
    const char *title;
    uint64_t caps; /* what the case needs; not declared: NOT SUPPORTED */
    void (*fn)(pcti_case *c);
} pcti_case_def;

static const pcti_case_def pcti_cases[] = {
    {"PS-TASK-01", "get_task reports every field", 0, pcti_task_01},
    {"PS-PAYLOAD-01", "empty payload round-trips", 0, pcti_payload_01},
    {"PS-PAYLOAD-02", "binary payload, result and error with NUL bytes", 0, pcti_payload_02},
    {"PS-PAYLOAD-03", "payload and result of the limit (1 MiB) round-trip", 0, pcti_payload_03},
    {"PS-PAYLOAD-04", "one byte over the limit is TOO_LARGE", 0, pcti_payload_04},
    {"PS-ORDER-01", "highest priority first", 0, pcti_order_01},
    {"PS-ORDER-02", "FIFO within a priority", 0, pcti_order_02},
    {"PS-ORDER-03", "claim walks its queues in order", 0, pcti_order_03},
    {"PS-ORDER-04", "retried tasks keep their original place", 0, pcti_order_04},
    {"PS-SCHED-01", "delayed task hidden until due", 0, pcti_sched_01},
    {"PS-SCHED-02", "run_at_ms", 0, pcti_sched_02},
    {"PS-SCHED-03", "next_due_ms across queues", 0, pcti_sched_03},
    {"PS-SCHED-04", "a task that fell due takes its enqueue place", 0, pcti_sched_04},
    {"PS-LEASE-01", "lease tokens are new and increasing", 0, pcti_lease_01},
    {"PS-LEASE-02", "a live lease is never claimed again", 0, pcti_lease_02},
    {"PS-LEASE-03", "extend_lease with the current token", 0, pcti_lease_03},
    {"PS-LEASE-04", "stale or unknown token is LEASE_LOST", 0, pcti_lease_04},
    {"PS-LEASE-05", "a lease is live while now < expiry", 0, pcti_lease_05},
    {"PS-EXPIRY-01", "expired lease reclaimed by the next claim", 0, pcti_expiry_01},
    {"PS-EXPIRY-02", "old holder gets LEASE_LOST on every operation", 0, pcti_expiry_02},
    {"PS-EXPIRY-03", "expiry without a reclaiming claim", 0, pcti_expiry_03},
    {"PS-EXPIRY-04", "expiry at max_attempts kills the task", 0, pcti_expiry_04},
    {"PS-NACK-01", "nack without delay", 0, pcti_nack_01},
    {"PS-NACK-02", "nack with a delay", 0, pcti_nack_02},
    {"PS-DEAD-01", "dead at max_attempts with the reason kept", 0, pcti_dead_01},
    {"PS-DEAD-02", "max_attempts 0 means the store's default", 0, pcti_dead_02},
    {"PS-DEAD-03", "list_dead", PERS_CAP_DEAD_LETTER, pcti_dead_03},
    {"PS-DEAD-04", "requeue_dead", PERS_CAP_DEAD_LETTER, pcti_dead_04},
    {"PS-ABANDON-01", "abandon gives the attempt back", 0, pcti_abandon_01},
    {"PS-ATTEMPT-01", "attempt counting through every transition", 0, pcti_attempt_01},
    {"PS-COMPLETE-01", "complete stores the result and finishes the task", 0, pcti_complete_01},
    {"PS-COMPLETE-02", "double completion keeps the first result", 0, pcti_complete_02},
    {"PS-COMPLETE-03", "every action after completion is refused", 0, pcti_complete_03},
    {"PS-COMPLETE-04", "failed completion is final", 0, pcti_complete_04},
    {"PS-CBATCH-01", "complete_batch: each item as complete would", 0, pcti_cbatch_01},
    {"PS-CBATCH-02", "complete_batch refuses an invalid item", 0, pcti_cbatch_02},
    {"PS-CBATCH-03", "complete_batch of a whole claim with expired leases", 0, pcti_cbatch_03},
    {"PS-RESULT-01", "get_result before and after completion", PERS_CAP_RESULTS,
     pcti_result_01},
    {"PS-IDEM-01", "repeated key in the same queue changes nothing", 0, pcti_idem_01},
    {"PS-IDEM-02", "same key in another queue or tenant is unrelated", 0, pcti_idem_02},
    {"PS-IDEM-03", "a key holds in every state", 0, pcti_idem_03},
    {"PS-IDEM-04", "repeated key within a batch", PERS_CAP_BATCH, pcti_idem_04},
    {"PS-IDEM-05", "idempotency check before the duplicate-id check", 0, pcti_idem_05},
    {"PS-ID-01", "caller-supplied ids and DUPLICATE", 0, pcti_id_01},
    {"PS-ID-02", "generated ids are 32 hex digits and unique", 0, pcti_id_02},
    {"PS-TENANT-01", "every operation across tenants is NOT_FOUND", 0, pcti_tenant_01},
    {"PS-TENANT-02", "claims and statistics never cross tenants", 0, pcti_tenant_02},
    {"PS-NAME-01", "forbidden characters are refused", 0, pcti_name_01},
    {"PS-NAME-02", "empty and too long values are refused, the longest allowed work", 0,
     pcti_name_02},
    {"PS-NAME-03", "names that look like separators never collide", 0, pcti_name_03},
    {"PS-STATS-01", "statistics exact per tenant and queue", PERS_CAP_STATS, pcti_stats_01},
    {"PS-STATS-02", "statistics as of now", PERS_CAP_STATS, pcti_stats_02},
    {"PS-RETAIN-01", "cleanup_tasks at the cutoff, with results and keys",
     PERS_CAP_TASK_RETENTION, pcti_retain_01},
    {"PS-RETAIN-02", "cleanup_tasks: dead, tenant, limit", PERS_CAP_TASK_RETENTION,
     pcti_retain_02},
    {"PS-RETAIN-03", "cleanup_results removes results only", PERS_CAP_RESULTS, pcti_retain_03},
    {"PS-SUB-01", "subscribe creates one row per queue", PERS_CAP_SUBSCRIPTIONS, pcti_sub_01},
    {"PS-SUB-02", "subscribe is an idempotent upsert", PERS_CAP_SUBSCRIPTIONS, pcti_sub_02},
    {"PS-SUB-03", "subscriptions are isolated per tenant", PERS_CAP_SUBSCRIPTIONS, pcti_sub_03},
    {"PS-SUB-04", "expired subscriptions", PERS_CAP_SUBSCRIPTIONS, pcti_sub_04},
    {"PS-SUB-05", "unsubscribe", PERS_CAP_SUBSCRIPTIONS, pcti_sub_05},
    {"PS-SUB-06", "lists by queue and by worker", PERS_CAP_SUBSCRIPTIONS, pcti_sub_06},
    {"PS-BATCH-01", "enqueue_batch", PERS_CAP_BATCH, pcti_batch_01},
    {"PS-BATCH-02", "enqueue_batch is all or nothing", PERS_CAP_BATCH, pcti_batch_02},
    {"PS-CLOSE-01", "close twice, then every operation is CLOSED", 0, pcti_close_01},
    {"PS-CAPS-01", "capabilities match the methods", 0, pcti_caps_01},
    {"PS-HEALTH-01", "health of a working store", PERS_CAP_HEALTH, pcti_health_01},
    {"PS-CONC-01", "N threads claim M tasks, each exactly once", 0, pcti_conc_01},
    {"PS-CONC-02", "N threads enqueue the same keys, one task each", 0, pcti_conc_02},
    {"PS-RANDOM-01", "random operations match the memory backend", 0, pcti_random_01},
};

#define PCTI_CASE_COUNT (sizeof pcti_cases / sizeof pcti_cases[0])

PCTI_DEF size_t pers_contract_case_count(void)
{
    return PCTI_CASE_COUNT;
}

PCTI_DEF const char *pers_contract_case_id(size_t index)
{
    return index < PCTI_CASE_COUNT ? pcti_cases[index].id : NULL;
}

PCTI_DEF const char *pers_contract_case_title(size_t index)
{
    return index < PCTI_CASE_COUNT ? pcti_cases[index].title : NULL;
}

PCTI_DEF const char *pers_contract_outcome_name(pers_contract_outcome outcome)
{
    switch (outcome) {
    case PERS_CONTRACT_PASS:
        return "PASS";
    case PERS_CONTRACT_FAIL:
        return "FAIL";
    case PERS_CONTRACT_NOT_SUPPORTED:
        return "NOT SUPPORTED";
    }
    return "?";
}

PCTI_DEF const pers_contract_case_result *
pers_contract_find_result(const pers_contract_report *report, const char *id)
{
    size_t i, n;
    if (report == NULL || report->results == NULL || id == NULL)
        return NULL;
    n = report->case_count < report->result_capacity ? report->case_count
                                                     : report->result_capacity;
    for (i = 0; i < n; i++)
        if (report->results[i].id != NULL && strcmp(report->results[i].id, id) == 0)
            return &report->results[i];
    return NULL;
}

PCTI_DEF pers_contract_options pers_contract_resolved(const pers_contract_options *options)
{
    pers_contract_options o;
    memset(&o, 0, sizeof o);
    if (options != NULL)
        o = *options;
    if (o.filter == NULL)
        o.filter = "";
    if (o.out == NULL)
        o.out = stdout;
    if (o.random_steps == 0)
        o.random_steps = 3000;
    if (o.threads == 0)
        o.threads = 4;
    if (o.concurrent_tasks == 0)
        o.concurrent_tasks = 1000;
    if (o.watchdog_seconds == 0)
        o.watchdog_seconds = 30;
    return o;
}

/* A seed from the time when the caller gave none (never 0, so that it can be given back). */
static uint64_t pcti_time_seed(void)
{
    struct timeval tv;
    uint64_t s = 0;
    if (gettimeofday(&tv, NULL) == 0)
        s = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    s ^= (uint64_t)clock() << 20;
    s = s % UINT64_C(1000000000000000);
    return s != 0 ? s : 1;
}

/* One case: a fresh store from the factory, the case, the teardown, the leak check. */
static void pcti_case_run(pcti_run *run, const pcti_case_def *def, pcti_case *c)
{
    const pers_contract_target *target = run->target;
    pcti_ctx x;
    pers_result rc;
    char names[200];
    memset(&x, 0, sizeof x);
    x.run = run;
    x.now = PCTI_T0;
    c->run = run;
    c->x = &x;
    if (target == NULL || target->open == NULL) {
        pcti_fail(c, "the target %s", target == NULL ? "is NULL" : "has no open function");
        return;
    }
    if (pthread_mutex_init(&x.lock, NULL) != 0) {
        pcti_fail(c, "the suite could not create a mutex");
        return;
    }
    x.lock_ok = 1;
    x.desc.clock.now_ms = pcti_clock_now;
    x.desc.clock.user = &x;
    x.desc.allocator.alloc_fn = pcti_alloc;
    x.desc.allocator.free_fn = pcti_free;
    x.desc.allocator.user = &x;
    x.desc.max_payload_bytes = PCTI_MIB;
    x.desc.default_max_attempts = PCTI_ATTEMPTS;
    x.desc.open_message = x.why;
    x.desc.open_message_size = sizeof x.why;
    rc = target->open(target->user, &x.desc, &x.store);
    if (rc != PERS_OK || x.store == NULL) {
        pcti_fail(c, "the target's open: expected PERS_OK and a store, got %s%s (%s)",
                  pers_result_string(rc), rc == PERS_OK ? " and no store" : "", x.why);
    } else {
        c->s = x.store;
        rc = pers_capabilities(x.store, &x.caps);
        if (rc != PERS_OK) {
            pcti_rc(c, rc, PERS_OK, "capabilities of a fresh store");
        } else if ((x.caps.flags & def->caps) != def->caps) {
            pcti_cap_names(def->caps & ~x.caps.flags, names, sizeof names);
            pcti_unsupported(c, "the backend does not declare %s", names);
        } else {
            def->fn(c);
        }
    }
    if (x.ref != NULL)
        pers_destroy(x.ref);
    if (x.store != NULL) {
        if (target->teardown != NULL)
            target->teardown(target->user, x.store);
        else
            pers_destroy(x.store);
    }
    if (x.live_blocks > 0) {
        char sizes[160];
        pcti_block *b, *next;
        size_t shown = 0;
        sizes[0] = '\0';
        for (b = x.live; b != NULL; b = next) {
            next = b->h.next;
            if (shown < 8)
                pcti_append(sizes, sizeof sizes, "%s%lu", shown ? ", " : "",
                            (unsigned long)b->h.size);
            else if (shown == 8)
                pcti_append(sizes, sizeof sizes, ", ...");
            shown++;
            free(b); /* reclaimed, so that the suite itself does not leak */
        }
        pcti_fail(c, "leak: %lu bytes in %lu block%s allocated through the desc's allocator were "
                     "not freed once the store was torn down (block sizes: %s)",
                  (unsigned long)x.live_bytes, (unsigned long)x.live_blocks,
                  x.live_blocks == 1 ? "" : "s", sizes);
    }
    if (x.note[0] != '\0')
        pcti_fail(c, "%s", x.note);
    pthread_mutex_destroy(&x.lock);
    c->x = NULL;
    c->s = NULL;
}

PCTI_DEF int pers_contract_run(const pers_contract_target *target,
                               const pers_contract_options *options, pers_contract_report *report)
{
    pcti_run run;
    size_t i, passed = 0, failed = 0, unsupported = 0, ran = 0, flen;
    FILE *out;
    memset(&run, 0, sizeof run);
    run.target = target;
    run.opt = pers_contract_resolved(options);
    run.seed = run.opt.seed != 0 ? run.opt.seed : pcti_time_seed();
    snprintf(run.name, sizeof run.name, "%s",
             target != NULL && target->name != NULL ? target->name : "(unnamed)");
    out = run.opt.quiet ? NULL : run.opt.out;
    if (report != NULL) {
        report->passed = report->failed = report->not_supported = report->case_count = 0;
        report->seed = run.seed;
    }
    if (out != NULL) {
        fprintf(out,
                "persistence contract %s: seed %llu (repeat with options.seed), %lu random "
                "steps, %u threads, %lu concurrent tasks, watchdog %d s\n",
                run.name, (unsigned long long)run.seed, (unsigned long)run.opt.random_steps,
                run.opt.threads, (unsigned long)run.opt.concurrent_tasks,
                run.opt.watchdog_seconds > 0 ? run.opt.watchdog_seconds : 0);
        fflush(out);
    }
    pcti_watchdog_start(&run, run.opt.out);
    flen = strlen(run.opt.filter);
    for (i = 0; i < PCTI_CASE_COUNT; i++) {
        pcti_case c;
        const pcti_case_def *def = &pcti_cases[i];
        if (strncmp(def->id, run.opt.filter, flen) != 0)
            continue;
        memset(&c, 0, sizeof c);
        c.id = def->id;
        c.title = def->title;
        c.outcome = PERS_CONTRACT_PASS;
        pcti_watchdog_arm(&run, def->id, def->title);
        pcti_case_run(&run, def, &c);
        pcti_watchdog_disarm(&run);
        if (c.outcome == PERS_CONTRACT_PASS)
            passed++;
        else if (c.outcome == PERS_CONTRACT_FAIL)
            failed++;
        else
            unsupported++;
        if (report != NULL && report->results != NULL && ran < report->result_capacity) {
            pers_contract_case_result *res = &report->results[ran];
            res->id = c.id;
            res->title = c.title;
            res->outcome = c.outcome;
            memcpy(res->message, c.msg, sizeof res->message);
        }
        ran++;
        if (out != NULL) {
            if (c.outcome == PERS_CONTRACT_PASS)
                fprintf(out, "PASS %s %s\n", c.id, c.title);
            else
                fprintf(out, "%s %s %s: %s\n", pers_contract_outcome_name(c.outcome), c.id,
                        c.title, c.msg);
            fflush(out);
        }
    }
    pcti_watchdog_stop(&run);
    if (out != NULL) {
        fprintf(out, "persistence contract %s: %lu passed, %lu failed, %lu not supported\n",
                run.name, (unsigned long)passed, (unsigned long)failed,
                (unsigned long)unsupported);
        fflush(out);
    }
    if (report != NULL) {
        report->passed = passed;
        report->failed = failed;
        report->not_supported = unsupported;
        report->case_count = ran;
    }
    return (int)failed;
}

#endif /* PERSISTENCE_CONTRACT_IMPLEMENTATION */

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
