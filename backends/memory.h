/* backends/memory.h - in-memory reference backend of persistence.h, stb-style single header.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PERSISTENCE_MEMORY_IMPLEMENTATION
       #include "backends/memory.h"

   (with PERSISTENCE_IMPLEMENTATION and PLUGIN_REGISTRY_IMPLEMENTATION defined there too, or in
   other files). Including the header again, before or after the define, is harmless. It
   includes "../persistence.h", i.e. persistence.h one directory up from this file.

   The backend implements every method and every behaviour of persistence.h (S1..S20): it is
   the reference model the other backends are compared with. Nothing is durable: the data lives
   in the backend handle and disappears at close. It needs nothing but the C library and
   POSIX threads. Public names start with `pers_memory_`, internal ones with `pmemi_`.

       plg_registry *reg = NULL;
       pers_store *store = NULL;
       plg_registry_create(NULL, &reg);
       pers_memory_register(reg);            // declares the interface, registers "memory"
       pers_open(reg, "memory", "{\"max_tasks\":100000}", NULL, &store);
       ...
       pers_destroy(store);
       plg_registry_destroy(reg);

   or, without a registry: pers_open_vtable(pers_memory_vtable(), NULL, NULL, &store).

   CONFIGURATION (JSON keys of the plugin's schema)
   =============
   max_payload_bytes   integer 1..1073741824, default 1048576: the largest payload or result
                       the backend accepts (the store applies the smaller of this and its own)
   max_tasks           integer >= 0, default 0 (no limit): tasks kept at once, in any state;
                       an enqueue beyond it is PERS_ERR_LIMIT

   DATA STRUCTURES AND COSTS (n: tasks in the queue concerned)
   =========================
   Per (tenant, queue): the ready tasks in two parts that together keep the order of S3: a FIFO
   list of the tasks enqueued ready with the priority of the list (their sequence numbers are
   the newest, so their place is its end; a claim takes its head without sifting anything),
   and a heap of every other ready task (other priorities, promotions, retries, requeues);
   a heap of scheduled tasks by due time and a heap of leased tasks by lease expiry; the dead
   and the finished tasks in lists ordered by finishing time. The heaps are 4-ary, of 16-byte
   entries that carry the task's sort key, so that sifting compares entries without touching
   the tasks and a node's four children share one cache line. Hash maps: (tenant, task id) ->
   task and (tenant, queue, idempotency key) -> task by open addressing, (hash, task) pairs in
   one array, so a lookup reads consecutive slots and touches a task only on a full-hash match;
   (tenant, queue) -> queue and (tenant, worker, queue) -> subscription, chained. A small
   direct-mapped cache from recent lease tokens to their tasks serves the worker operations
   without a probe of the tasks map. A task's fields, id, key and a payload under 256 bytes
   share one allocation. enqueue, claim (per task), extend_lease, abandon, nack, complete,
   get_task: O(log n) plus the due promotions and expiry reclaims they apply (each O(log n));
   a claim from the FIFO list and an enqueue to it are O(1). Heaps and maps reserve their room
   before anything changes, so no state change after an enqueue can fail for lack of memory.
   Subscription lists scan every subscription.

   THREAD SAFETY
   =============
   One mutex per backend handle serialises every operation, so each is atomic (claim included:
   no task is ever handed to two live leases). The clock is read under that mutex.

   LICENCE: see the end of the file.
*/
#ifndef PERSISTENCE_MEMORY_H
#define PERSISTENCE_MEMORY_H

#include "../persistence.h"

#define PERS_MEMORY_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend's vtable (static; valid for the program's life). */
PERS_API const pers_backend_vtable *pers_memory_vtable(void);
/* Its plugin descriptor: type "persistence", name "memory", the configuration schema above,
   capabilities "tasks", "results", "subscriptions", "dead-letter", "batch", "stats",
   "retention", "thread-safe". */
PERS_API const plg_descriptor *pers_memory_descriptor(void);
/* pers_register_backend(reg, descriptor): a second registration is PERS_ERR_DUPLICATE; the
   other registry failures as pers_register_backend translates them (details in plg_errmsg). */
PERS_API pers_result pers_memory_register(plg_registry *reg);
/* The backend's configuration schema (for documentation generators and tests). */
PERS_API const plg_config_key *pers_memory_config_schema(size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_MEMORY_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PERSISTENCE_MEMORY_IMPLEMENTATION) && !defined(PERSISTENCE_MEMORY_IMPLEMENTED)
#define PERSISTENCE_MEMORY_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../persistence.h"
#ifndef PERS_ASSERT /* the same option as persistence.h's, when that is implemented elsewhere */
#include <assert.h>
#define PERS_ASSERT(cond) assert(cond)
#endif

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(PERS_STATIC)
#define PMEMI_DEF static
#else
#define PMEMI_DEF
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PMEMI_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define PMEMI_DEFAULT_MAX_PAYLOAD 1048576u
#define PMEMI_INITIAL_BUCKETS 64u
#define PMEMI_INSIDE_PAYLOAD 256u  /* payloads shorter than this live in the task's block */
#define PMEMI_LEASE_CACHE 1024u    /* entries of pmemi_store.lease_cache, a power of two */
#define PMEMI_CLEANUP_AHEAD 8u     /* tasks whose map slots a cleanup prefetches in advance */
#if defined(__GNUC__) || defined(__clang__)
/* The tasks map's slot array and size are also read without the lock, to prefetch the slot
   an enqueue is about to check while the lock is awaited: they are stored with relaxed atomics
   and read so, and a stale pair only prefetches a useless line (a prefetch never faults). */
#define PMEMI_PUBLISH(lvalue, value) __atomic_store_n(&(lvalue), (value), __ATOMIC_RELAXED)
#define PMEMI_PREFETCH_SLOT_UNLOCKED(m, hash)                                                      \
    do {                                                                                           \
        uintptr_t pmemi_base_ = (uintptr_t)__atomic_load_n(&(m)->slots, __ATOMIC_RELAXED);         \
        size_t pmemi_cap_ = __atomic_load_n(&(m)->cap, __ATOMIC_RELAXED);                          \
        if (pmemi_base_ != 0 && pmemi_cap_ != 0)                                                   \
            PMEMI_PREFETCH((const void *)(pmemi_base_ + ((size_t)(hash) & (pmemi_cap_ - 1)) *      \
                                                            sizeof(pmemi_slot)));                  \
    } while (0)
#else
#define PMEMI_PUBLISH(lvalue, value) ((lvalue) = (value))
#define PMEMI_PREFETCH_SLOT_UNLOCKED(m, hash) ((void)(m), (void)(hash))
#endif
#if defined(__GNUC__) || defined(__clang__)
#define PMEMI_PREFETCH(addr) __builtin_prefetch((addr), 1, 3)
#else
#define PMEMI_PREFETCH(addr) ((void)(addr))
#endif

/* ---------------------------------------------------------------------------------------------
   Types
   ------------------------------------------------------------------------------------------- */

typedef struct pmemi_hnode {
    struct pmemi_hnode *next;
    uint64_t hash;
} pmemi_hnode;

/* Chained hash map of intrusive nodes; the bucket count is a power of two. */
typedef struct pmemi_map {
    pmemi_hnode **buckets;
    size_t nbuckets;
    size_t count;
} pmemi_map;

typedef struct pmemi_task pmemi_task;
typedef struct pmemi_queue pmemi_queue;

/* A heap entry carries its task's sort key, so that sifting compares entries without touching
   the tasks: a 4-ary heap of 16-byte entries, laid out so that the four children of a node
   share one 64-byte line (items[1..4], items[5..8], ... each start a line). Smaller key first;
   equal keys fall back to the enqueue sequence. */
typedef struct pmemi_entry {
    uint64_t key;
    pmemi_task *t;
} pmemi_entry;

typedef struct pmemi_heap {
    pmemi_entry *items;        /* inside block, aligned as above */
    void *block;               /* as allocated, block_size bytes */
    size_t block_size;
    size_t count, cap;
    int track;                 /* keep each task's heap_pos (removal anywhere: the leased heap) */
} pmemi_heap;

/* Open-addressing (linear probing) map of tasks: (hash, task) pairs in one array, so a lookup
   or a removal reads consecutive slots and touches a task only when the full hash matches.
   The capacity is a power of two, at least twice the count; removal shifts back (no
   tombstones). */
typedef struct pmemi_slot {
    uint64_t hash;
    pmemi_task *t;             /* NULL: empty */
} pmemi_slot;

typedef struct pmemi_tmap {
    pmemi_slot *slots;
    size_t cap, count;
} pmemi_tmap;

/* A doubly linked list of tasks ordered by (finished_ms, seq). */
typedef struct pmemi_list {
    pmemi_task *head, *tail;
    size_t count;
} pmemi_list;

/* The fields a claim and a complete touch first come first (lines 0 and 1 on a 64-bit target),
   so that a task that has gone cold in a deep queue costs few cache lines; the id, the key and
   a small payload follow in the same block. */
struct pmemi_task {
    pmemi_queue *q;
    pmemi_task *next;          /* fresh FIFO of the queue, or its dead or done list */
    uint64_t seq;              /* enqueue order (S3) */
    uint64_t token;            /* the last lease token issued (S5) */
    uint64_t id_hash;          /* in the tasks map: (tenant, id) */
    size_t heap_pos;           /* in the leased heap */
    pers_task_state state;
    int32_t priority;
    uint32_t attempts, max_attempts;
    char *id;                  /* inside this block */
    char *idem;                /* inside this block, or NULL */
    void *payload;             /* payload_len + 1 bytes: inside this block, or its own */
    size_t payload_len;
    char *last_error;          /* strlen + 1 bytes, or NULL */
    int64_t created_ms, due_ms, lease_expires_ms, finished_ms;
    pmemi_task *prev;          /* dead or done list */
    void *result;              /* result_len + 1 bytes when has_result */
    size_t result_len;
    size_t alloc_size;         /* of this block: struct + id + key (+ payload when inside) */
    uint64_t idem_hash;        /* in the idempotency map: (tenant, queue, key) */
    int has_result;
    int payload_inside;        /* the payload is inside this block, after the id and key */
    char worker[PERS_NAME_MAX + 1];
};

struct pmemi_queue {
    pmemi_hnode node;          /* (tenant, name) */
    pmemi_queue *all_next;
    char tenant[PERS_NAME_MAX + 1];
    char name[PERS_NAME_MAX + 1];
    /* The ready tasks are split in two, in S3 order together: `fresh`, tasks enqueued ready,
       all of priority fresh_priority, in enqueue order (their sequences are the newest, so a
       FIFO list keeps the order and a claim takes its head without sifting a heap); and the
       heap `ready` for every other ready task (other priorities, promotions, retries,
       requeues). */
    pmemi_list fresh;          /* linked through next (which only finished tasks use else) */
    int32_t fresh_priority;
    pmemi_heap ready, scheduled, leased;
    size_t live;               /* scheduled + ready + leased */
    pmemi_list dead;           /* state dead */
    pmemi_list done;           /* completed and failed */
    uint64_t completed, failed;
};

typedef struct pmemi_sub {
    pmemi_hnode node;          /* (tenant, worker, queue) */
    struct pmemi_sub *prev, *next;
    char tenant[PERS_NAME_MAX + 1];
    char worker[PERS_NAME_MAX + 1];
    char queue[PERS_NAME_MAX + 1];
    char *callback;
    int64_t created_ms, updated_ms, expires_ms;
} pmemi_sub;

typedef struct pmemi_store {
    pthread_mutex_t lock;
    pers_clock clock;
    plg_allocator alloc;
    plg_logger logger;
    uint64_t max_payload;
    uint64_t max_tasks;        /* 0: no limit */
    int validated;             /* PERS_OPEN_VALIDATED: the store has checked every argument */
    uint64_t task_count;
    uint64_t seq, token, id_counter, id_prefix;
    pmemi_tmap tasks, idem;
    pmemi_map queues, subs;
    pmemi_queue *queue_list;
    pmemi_sub *sub_head;
    /* The task each recent lease token went to, at token % PMEMI_LEASE_CACHE: a worker
       operation finds its task here without a probe of the (large, cold) tasks map. A hint
       only: an entry counts when the task still carries that token and has the lease's
       tenant and id. A task is only ever at the index of its current token (pmemi_new_token),
       so pmemi_task_destroy can clear it. */
    pmemi_task *lease_cache[PMEMI_LEASE_CACHE];
} pmemi_store;

/* ---------------------------------------------------------------------------------------------
   Helpers: allocation, hashing, maps
   ------------------------------------------------------------------------------------------- */

static void *pmemi_alloc(pmemi_store *s, size_t size)
{
    return pers_alloc(&s->alloc, size);
}

static void pmemi_free(pmemi_store *s, void *ptr, size_t size)
{
    pers_free(&s->alloc, ptr, size);
}

static char *pmemi_strdup(pmemi_store *s, const char *text)
{
    return text != NULL ? (char *)pers_copy_bytes(&s->alloc, text, strlen(text)) : NULL;
}

static void pmemi_strfree(pmemi_store *s, char *text)
{
    if (text != NULL)
        pmemi_free(s, text, strlen(text) + 1);
}

static int64_t pmemi_now(pmemi_store *s)
{
    return s->clock.now_ms(s->clock.user);
}

/* FNV-1a over the parts, with a unit separator between them (no name contains it, S10). */
static uint64_t pmemi_hash(const char *a, const char *b, const char *c)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const char *parts[3];
    int i;
    parts[0] = a;
    parts[1] = b;
    parts[2] = c;
    for (i = 0; i < 3 && parts[i] != NULL; i++) {
        const unsigned char *p = (const unsigned char *)parts[i];
        while (*p) {
            h ^= *p++;
            h *= UINT64_C(0x100000001b3);
        }
        h ^= 0x1f;
        h *= UINT64_C(0x100000001b3);
    }
    /* FNV's low bits depend only on the low bits of the input; the maps index by the low bits,
       so finish with a full avalanche (the 64-bit finaliser of MurmurHash3). */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    return h ^ (h >> 33);
}

static int pmemi_map_init(pmemi_store *s, pmemi_map *m)
{
    m->buckets = (pmemi_hnode **)pmemi_alloc(s, PMEMI_INITIAL_BUCKETS * sizeof *m->buckets);
    if (m->buckets == NULL)
        return -1;
    memset(m->buckets, 0, PMEMI_INITIAL_BUCKETS * sizeof *m->buckets);
    m->nbuckets = PMEMI_INITIAL_BUCKETS;
    m->count = 0;
    return 0;
}

static void pmemi_map_release(pmemi_store *s, pmemi_map *m)
{
    if (m->buckets != NULL)
        pmemi_free(s, m->buckets, m->nbuckets * sizeof *m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

static pmemi_hnode *pmemi_map_bucket(const pmemi_map *m, uint64_t hash)
{
    return m->buckets[hash & (m->nbuckets - 1)];
}

/* Doubles the bucket array when the load passes 1; if memory runs out the chains just grow. */
static void pmemi_map_insert(pmemi_store *s, pmemi_map *m, pmemi_hnode *node, uint64_t hash)
{
    size_t i;
    node->hash = hash;
    if (m->count + 1 > m->nbuckets) {
        size_t n = m->nbuckets * 2;
        pmemi_hnode **b = (pmemi_hnode **)pmemi_alloc(s, n * sizeof *b);
        if (b != NULL) {
            memset(b, 0, n * sizeof *b);
            for (i = 0; i < m->nbuckets; i++) {
                pmemi_hnode *e = m->buckets[i], *next;
                for (; e != NULL; e = next) {
                    next = e->next;
                    e->next = b[e->hash & (n - 1)];
                    b[e->hash & (n - 1)] = e;
                }
            }
            pmemi_free(s, m->buckets, m->nbuckets * sizeof *m->buckets);
            m->buckets = b;
            m->nbuckets = n;
        }
    }
    i = (size_t)(hash & (m->nbuckets - 1));
    node->next = m->buckets[i];
    m->buckets[i] = node;
    m->count++;
}

static void pmemi_map_remove(pmemi_map *m, pmemi_hnode *node)
{
    pmemi_hnode **link = &m->buckets[node->hash & (m->nbuckets - 1)];
    while (*link != NULL && *link != node)
        link = &(*link)->next;
    if (*link == node) {
        *link = node->next;
        node->next = NULL;
        m->count--;
    }
}

static int pmemi_tmap_init(pmemi_store *s, pmemi_tmap *m)
{
    m->slots = (pmemi_slot *)pmemi_alloc(s, PMEMI_INITIAL_BUCKETS * sizeof *m->slots);
    if (m->slots == NULL)
        return -1;
    memset(m->slots, 0, PMEMI_INITIAL_BUCKETS * sizeof *m->slots);
    m->cap = PMEMI_INITIAL_BUCKETS;
    m->count = 0;
    return 0;
}

static void pmemi_tmap_release(pmemi_store *s, pmemi_tmap *m)
{
    if (m->slots != NULL)
        pmemi_free(s, m->slots, m->cap * sizeof *m->slots);
    PMEMI_PUBLISH(m->slots, (pmemi_slot *)NULL);
    PMEMI_PUBLISH(m->cap, (size_t)0);
    m->count = 0;
}

/* Room for `need` entries at a load of at most 1/2: the only map operation that can fail, so
   it runs before anything changes. */
static int pmemi_tmap_reserve(pmemi_store *s, pmemi_tmap *m, size_t need)
{
    size_t cap = m->cap, i, mask;
    pmemi_slot *slots;
    if (need <= m->cap / 2)
        return 0;
    while (cap / 2 < need) {
        if (cap > ((size_t)-1 / sizeof *slots) / 2)
            return -1;
        cap *= 2;
    }
    slots = (pmemi_slot *)pmemi_alloc(s, cap * sizeof *slots);
    if (slots == NULL)
        return -1;
    memset(slots, 0, cap * sizeof *slots);
    mask = cap - 1;
    for (i = 0; i < m->cap; i++) {
        size_t j;
        if (m->slots[i].t == NULL)
            continue;
        for (j = (size_t)m->slots[i].hash & mask; slots[j].t != NULL; j = (j + 1) & mask) {
        }
        slots[j] = m->slots[i];
    }
    pmemi_free(s, m->slots, m->cap * sizeof *m->slots);
    PMEMI_PUBLISH(m->slots, slots);
    PMEMI_PUBLISH(m->cap, cap);
    return 0;
}

/* After a successful pmemi_tmap_reserve. */
static void pmemi_tmap_insert(pmemi_tmap *m, pmemi_task *t, uint64_t hash)
{
    size_t mask = m->cap - 1, i;
    PERS_ASSERT(m->count + 1 <= m->cap / 2);
    for (i = (size_t)hash & mask; m->slots[i].t != NULL; i = (i + 1) & mask) {
    }
    m->slots[i].hash = hash;
    m->slots[i].t = t;
    m->count++;
}

/* Removes t, inserted with hash, and shifts the rest of its cluster back into place. */
static void pmemi_tmap_remove(pmemi_tmap *m, const pmemi_task *t, uint64_t hash)
{
    size_t mask = m->cap - 1, i, j;
    for (i = (size_t)hash & mask; m->slots[i].t != t; i = (i + 1) & mask)
        PERS_ASSERT(m->slots[i].t != NULL);
    for (j = (i + 1) & mask; m->slots[j].t != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j].hash & mask;
        /* The entry at j may fill the hole at i when its home is not cyclically in (i, j]. */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].t = NULL;
    m->slots[i].hash = 0;
    m->count--;
}

static pmemi_task *pmemi_find_task(pmemi_store *s, uint64_t h, const char *tenant,
                                   const char *id)
{
    size_t mask = s->tasks.cap - 1, i;
    for (i = (size_t)h & mask; s->tasks.slots[i].t != NULL; i = (i + 1) & mask) {
        pmemi_task *t = s->tasks.slots[i].t;
        if (s->tasks.slots[i].hash == h && strcmp(t->id, id) == 0 &&
            strcmp(t->q->tenant, tenant) == 0)
            return t;
    }
    return NULL;
}

static pmemi_task *pmemi_find_idem(pmemi_store *s, uint64_t h, const char *tenant,
                                   const char *queue, const char *key)
{
    size_t mask = s->idem.cap - 1, i;
    for (i = (size_t)h & mask; s->idem.slots[i].t != NULL; i = (i + 1) & mask) {
        pmemi_task *t = s->idem.slots[i].t;
        if (s->idem.slots[i].hash == h && strcmp(t->idem, key) == 0 &&
            strcmp(t->q->name, queue) == 0 && strcmp(t->q->tenant, tenant) == 0)
            return t;
    }
    return NULL;
}

static pmemi_queue *pmemi_find_queue(pmemi_store *s, const char *tenant, const char *name)
{
    uint64_t h = pmemi_hash(tenant, name, NULL);
    pmemi_hnode *n;
    for (n = pmemi_map_bucket(&s->queues, h); n != NULL; n = n->next) {
        pmemi_queue *q;
        if (n->hash != h)
            continue;
        q = PMEMI_CONTAINER(n, pmemi_queue, node);
        if (strcmp(q->name, name) == 0 && strcmp(q->tenant, tenant) == 0)
            return q;
    }
    return NULL;
}

static pmemi_sub *pmemi_find_sub(pmemi_store *s, const char *tenant, const char *worker,
                                 const char *queue)
{
    uint64_t h = pmemi_hash(tenant, worker, queue);
    pmemi_hnode *n;
    for (n = pmemi_map_bucket(&s->subs, h); n != NULL; n = n->next) {
        pmemi_sub *sub;
        if (n->hash != h)
            continue;
        sub = PMEMI_CONTAINER(n, pmemi_sub, node);
        if (strcmp(sub->queue, queue) == 0 && strcmp(sub->worker, worker) == 0 &&
            strcmp(sub->tenant, tenant) == 0)
            return sub;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
   Heaps and lists
   ------------------------------------------------------------------------------------------- */

/* The order of each heap: ready by S3, scheduled by due time, leased by expiry; the enqueue
   sequence breaks ties so that every order is total and deterministic. Each entry's key
   encodes the first part in an unsigned number ordered the same way; equal keys compare the
   tasks' sequences.
   Ready: PERS_PRIORITY_MAX - priority in the top 16 bits, the sequence in the low 48 (it
   saturates: past 2^48 - 1 enqueues the keys of one priority tie and the full sequence,
   read from the tasks, decides). Scheduled and leased: the time with its sign bit flipped. */
#define PMEMI_SEQ_BITS 48
#define PMEMI_HEAP_ARITY 4u
#define PMEMI_LINE 64u

static uint64_t pmemi_ready_key(const pmemi_task *t)
{
    const uint64_t cap = (UINT64_C(1) << PMEMI_SEQ_BITS) - 1;
    return (uint64_t)(PERS_PRIORITY_MAX - t->priority) << PMEMI_SEQ_BITS |
           (t->seq < cap ? t->seq : cap);
}

static uint64_t pmemi_time_key(int64_t ms)
{
    return (uint64_t)ms ^ (UINT64_C(1) << 63);
}

static int pmemi_before(const pmemi_entry *a, const pmemi_entry *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->t->seq < b->t->seq;
}

static void pmemi_heap_set(pmemi_heap *h, size_t pos, pmemi_entry e)
{
    h->items[pos] = e;
    if (h->track)
        e.t->heap_pos = pos;
}

static void pmemi_heap_up(pmemi_heap *h, size_t pos)
{
    pmemi_entry e = h->items[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / PMEMI_HEAP_ARITY;
        if (!pmemi_before(&e, &h->items[parent]))
            break;
        pmemi_heap_set(h, pos, h->items[parent]);
        pos = parent;
    }
    pmemi_heap_set(h, pos, e);
}

static void pmemi_heap_down(pmemi_heap *h, size_t pos)
{
    pmemi_entry e = h->items[pos];
    for (;;) {
        size_t first = PMEMI_HEAP_ARITY * pos + 1, end, best, c;
        if (first >= h->count)
            break;
        end = h->count - first > PMEMI_HEAP_ARITY ? first + PMEMI_HEAP_ARITY : h->count;
        best = first;
        for (c = first + 1; c < end; c++)
            if (pmemi_before(&h->items[c], &h->items[best]))
                best = c;
        if (!pmemi_before(&h->items[best], &e))
            break;
        pmemi_heap_set(h, pos, h->items[best]);
        pos = best;
    }
    pmemi_heap_set(h, pos, e);
}

/* Restores the order around pos after its key changed or another entry moved there. */
static void pmemi_heap_fix(pmemi_heap *h, size_t pos)
{
    if (pos > 0 && pmemi_before(&h->items[pos], &h->items[(pos - 1) / PMEMI_HEAP_ARITY]))
        pmemi_heap_up(h, pos);
    else
        pmemi_heap_down(h, pos);
}

/* Room for `need` items; the only heap operation that can fail. The items start 48 bytes
   into a 64-byte line, so that items[1..4], items[5..8], ... (the children of one node) each
   fill one line. */
static int pmemi_heap_reserve(pmemi_store *s, pmemi_heap *h, size_t need)
{
    size_t cap, size, skew;
    void *block;
    pmemi_entry *items;
    if (need <= h->cap)
        return 0;
    cap = h->cap ? h->cap * 2 : 16;
    while (cap < need)
        cap *= 2;
    if (cap > ((size_t)-1 - 2 * PMEMI_LINE) / sizeof *items)
        return -1;
    size = cap * sizeof *items + 2 * PMEMI_LINE;
    block = pmemi_alloc(s, size);
    if (block == NULL)
        return -1;
    skew = (size_t)((uintptr_t)block % PMEMI_LINE);
    skew = (PMEMI_LINE - sizeof *items + PMEMI_LINE - skew) % PMEMI_LINE;
    items = (pmemi_entry *)(void *)((char *)block + skew);
    if (h->count > 0)
        memcpy(items, h->items, h->count * sizeof *items);
    if (h->block != NULL)
        pmemi_free(s, h->block, h->block_size);
    h->block = block;
    h->block_size = size;
    h->items = items;
    h->cap = cap;
    return 0;
}

static void pmemi_heap_push(pmemi_heap *h, pmemi_task *t, uint64_t key)
{
    PERS_ASSERT(h->count < h->cap);
    h->items[h->count].key = key;
    h->items[h->count].t = t;
    h->count++;
    pmemi_heap_up(h, h->count - 1);
}

/* Takes out the first task. */
static pmemi_task *pmemi_heap_pop(pmemi_heap *h)
{
    pmemi_task *t = h->items[0].t;
    PERS_ASSERT(h->count > 0);
    h->count--;
    if (h->count > 0) {
        h->items[0] = h->items[h->count];
        pmemi_heap_down(h, 0);
    }
    if (h->track)
        t->heap_pos = (size_t)-1;
    return t;
}

/* Takes out t from anywhere (a heap that tracks positions). */
static void pmemi_heap_remove(pmemi_heap *h, pmemi_task *t)
{
    size_t pos = t->heap_pos;
    PERS_ASSERT(h->track && pos < h->count && h->items[pos].t == t);
    h->count--;
    if (pos != h->count) {
        pmemi_heap_set(h, pos, h->items[h->count]);
        pmemi_heap_fix(h, pos);
    }
    t->heap_pos = (size_t)-1;
}

static void pmemi_heap_release(pmemi_store *s, pmemi_heap *h)
{
    if (h->block != NULL)
        pmemi_free(s, h->block, h->block_size);
    h->block = NULL;
    h->items = NULL;
    h->block_size = 0;
    h->count = h->cap = 0;
}

/* Inserts keeping (finished_ms, seq) order; usually at the tail. */
static void pmemi_list_insert(pmemi_list *l, pmemi_task *t)
{
    pmemi_task *after = l->tail;
    while (after != NULL && (after->finished_ms > t->finished_ms ||
                             (after->finished_ms == t->finished_ms && after->seq > t->seq)))
        after = after->prev;
    t->prev = after;
    t->next = after != NULL ? after->next : l->head;
    if (t->next != NULL)
        t->next->prev = t;
    else
        l->tail = t;
    if (after != NULL)
        after->next = t;
    else
        l->head = t;
    l->count++;
}

static void pmemi_list_remove(pmemi_list *l, pmemi_task *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
    l->count--;
}

/* ---------------------------------------------------------------------------------------------
   The state machine
   ------------------------------------------------------------------------------------------- */

/* Room in all three heaps for one more live task: called before a task becomes live, so that
   moving tasks between heaps never allocates. */
static int pmemi_reserve_live(pmemi_store *s, pmemi_queue *q)
{
    size_t need = q->live + 1;
    return pmemi_heap_reserve(s, &q->ready, need) || pmemi_heap_reserve(s, &q->scheduled, need) ||
                   pmemi_heap_reserve(s, &q->leased, need)
               ? -1
               : 0;
}

static void pmemi_make_ready(pmemi_queue *q, pmemi_task *t, int64_t due)
{
    t->state = PERS_STATE_READY;
    t->due_ms = due;
    pmemi_heap_push(&q->ready, t, pmemi_ready_key(t));
}

static void pmemi_make_scheduled(pmemi_queue *q, pmemi_task *t, int64_t due)
{
    t->state = PERS_STATE_SCHEDULED;
    t->due_ms = due;
    pmemi_heap_push(&q->scheduled, t, pmemi_time_key(due));
}

/* S6: a failure (nack or expiry) of a leased task already taken out of the leased heap.
   reason is owned by the task from now on (may be NULL). Returns the new state. */
static pers_task_state pmemi_fail_attempt(pmemi_queue *q, pmemi_task *t, int64_t at,
                                          int64_t retry_delay_ms, char *reason,
                                          pmemi_store *s)
{
    pmemi_strfree(s, t->last_error);
    t->last_error = reason;
    t->lease_expires_ms = 0;
    if (t->attempts >= t->max_attempts) {
        t->state = PERS_STATE_DEAD;
        t->finished_ms = at;
        q->live--;
        pmemi_list_insert(&q->dead, t);
    } else if (retry_delay_ms > 0) {
        pmemi_make_scheduled(q, t, at + retry_delay_ms);
    } else {
        pmemi_make_ready(q, t, at);
    }
    return t->state;
}

/* S2 and S7: applies every promotion and expiry due at `now`, as of the instant each fell due. */
static void pmemi_settle(pmemi_store *s, pmemi_queue *q, int64_t now)
{
    const uint64_t key = pmemi_time_key(now);
    while (q->scheduled.count > 0 && q->scheduled.items[0].key <= key) {
        pmemi_task *t = pmemi_heap_pop(&q->scheduled);
        pmemi_make_ready(q, t, t->due_ms);
    }
    while (q->leased.count > 0 && q->leased.items[0].key <= key) {
        pmemi_task *t = pmemi_heap_pop(&q->leased);
        int64_t at = t->lease_expires_ms;
        /* If the copy fails the reason is lost, never the transition. */
        (void)pmemi_fail_attempt(q, t, at, 0, pmemi_strdup(s, "lease expired"), s);
    }
}

/* Gives t the next lease token (S4) and moves its lease_cache entry there. */
static void pmemi_new_token(pmemi_store *s, pmemi_task *t)
{
    pmemi_task **cached = &s->lease_cache[t->token % PMEMI_LEASE_CACHE];
    if (*cached == t)
        *cached = NULL;
    t->token = ++s->token;
    s->lease_cache[t->token % PMEMI_LEASE_CACHE] = t;
}

static void pmemi_task_destroy(pmemi_store *s, pmemi_task *t)
{
    pmemi_task **cached = &s->lease_cache[t->token % PMEMI_LEASE_CACHE];
    if (*cached == t)
        *cached = NULL;
    if (t->payload != NULL && !t->payload_inside)
        pmemi_free(s, t->payload, t->payload_len + 1);
    if (t->has_result && t->result != NULL)
        pmemi_free(s, t->result, t->result_len + 1);
    pmemi_strfree(s, t->last_error);
    pmemi_free(s, t, t->alloc_size);
}

/* Removes a finished task (done or dead list) from everything and frees it (S14). */
static void pmemi_task_remove_finished(pmemi_store *s, pmemi_task *t)
{
    pmemi_queue *q = t->q;
    if (t->state == PERS_STATE_DEAD) {
        pmemi_list_remove(&q->dead, t);
    } else {
        pmemi_list_remove(&q->done, t);
        if (t->state == PERS_STATE_COMPLETED)
            q->completed--;
        else
            q->failed--;
    }
    pmemi_tmap_remove(&s->tasks, t, t->id_hash);
    if (t->idem != NULL)
        pmemi_tmap_remove(&s->idem, t, t->idem_hash);
    s->task_count--;
    pmemi_task_destroy(s, t);
}

/* The owned copies a returned pers_task needs; nothing changes on failure. */
static pers_result pmemi_copy_owned(pmemi_store *s, const pmemi_task *t, void **payload,
                                    char **last_error, pers_detail *detail)
{
    *payload = pers_copy_bytes(&s->alloc, t->payload, t->payload_len);
    *last_error = NULL;
    if (*payload != NULL && t->last_error != NULL) {
        *last_error = pmemi_strdup(s, t->last_error);
        if (*last_error == NULL) {
            pmemi_free(s, *payload, t->payload_len + 1);
            *payload = NULL;
        }
    }
    if (*payload == NULL) {
        pers_detail_set(detail, "out of memory copying task %s (%lu payload bytes)", t->id,
                        (unsigned long)t->payload_len);
        return PERS_ERR_NO_MEMORY;
    }
    return PERS_OK;
}

static void pmemi_fill(pers_task *out, const pmemi_task *t, void *payload, char *last_error,
                       uint64_t token)
{
    memset(out, 0, sizeof *out);
    memcpy(out->id, t->id, strlen(t->id) + 1);
    memcpy(out->tenant, t->q->tenant, strlen(t->q->tenant) + 1);
    memcpy(out->queue, t->q->name, strlen(t->q->name) + 1);
    memcpy(out->worker_id, t->worker, strlen(t->worker) + 1);
    if (t->idem != NULL)
        memcpy(out->idempotency_key, t->idem, strlen(t->idem) + 1);
    out->state = t->state;
    out->priority = t->priority;
    out->attempts = t->attempts;
    out->max_attempts = t->max_attempts;
    out->lease_token = token;
    out->created_ms = t->created_ms;
    out->due_ms = t->due_ms;
    out->lease_expires_ms = t->state == PERS_STATE_LEASED ? t->lease_expires_ms : 0;
    out->finished_ms = t->finished_ms;
    out->payload = payload;
    out->payload_len = t->payload_len;
    out->last_error = last_error;
}

/* ---------------------------------------------------------------------------------------------
   Open, close, capabilities, health
   ------------------------------------------------------------------------------------------- */

static void pmemi_close_store(void *backend);

static pers_result pmemi_open_store(const plg_config *config, const pers_open_args *args,
                                    void **backend, pers_detail *detail)
{
    pmemi_store *s;
    plg_allocator alloc;
    unsigned char *seed;
    int64_t v;
    if (backend == NULL) {
        pers_detail_set(detail, "backend is NULL");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *backend = NULL;
    memset(&alloc, 0, sizeof alloc);
    /* A field is read only when the caller's struct covers it (ABI policy). */
#define PMEMI_ARG_(field)                                                                          \
    (args != NULL && PERS_FIELD_FITS(pers_open_args, field, args->struct_size))
    if (PMEMI_ARG_(allocator))
        alloc = args->allocator;
    s = (pmemi_store *)pers_alloc(&alloc, sizeof *s);
    if (s == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    if (PMEMI_ARG_(clock))
        s->clock = args->clock;
    if (PMEMI_ARG_(logger))
        s->logger = args->logger;
    if (PMEMI_ARG_(flags))
        s->validated = (args->flags & PERS_OPEN_VALIDATED) != 0;
#undef PMEMI_ARG_
    if (s->clock.now_ms == NULL) {
        s->clock.now_ms = pers_wall_clock_ms;
        s->clock.user = NULL;
    }
    s->max_payload = PMEMI_DEFAULT_MAX_PAYLOAD;
    v = plg_config_integer(config, "max_payload_bytes");
    if (v > 0)
        s->max_payload = (uint64_t)v;
    v = plg_config_integer(config, "max_tasks");
    if (v > 0)
        s->max_tasks = (uint64_t)v;
    /* Ids for direct callers that pass none (the store always does, S9). */
    seed = (unsigned char *)(void *)s;
    s->id_prefix = (uint64_t)(uintptr_t)seed * UINT64_C(0x9e3779b97f4a7c15) ^
                   (uint64_t)pers_wall_clock_ms(NULL) * UINT64_C(0xbf58476d1ce4e5b9);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pers_free(&alloc, s, sizeof *s);
        pers_detail_set(detail, "pthread_mutex_init failed");
        return PERS_ERR_INTERNAL;
    }
    if (pmemi_tmap_init(s, &s->tasks) || pmemi_tmap_init(s, &s->idem) ||
        pmemi_map_init(s, &s->queues) || pmemi_map_init(s, &s->subs)) {
        pmemi_close_store(s);
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    *backend = s;
    return PERS_OK;
}

static void pmemi_close_store(void *backend)
{
    pmemi_store *s = (pmemi_store *)backend;
    plg_allocator alloc;
    size_t i;
    pmemi_queue *q, *qnext;
    pmemi_sub *sub, *snext;
    if (s == NULL)
        return;
    for (i = 0; s->tasks.slots != NULL && i < s->tasks.cap; i++)
        if (s->tasks.slots[i].t != NULL)
            pmemi_task_destroy(s, s->tasks.slots[i].t);
    for (q = s->queue_list; q != NULL; q = qnext) {
        qnext = q->all_next;
        pmemi_heap_release(s, &q->ready);
        pmemi_heap_release(s, &q->scheduled);
        pmemi_heap_release(s, &q->leased);
        pmemi_free(s, q, sizeof *q);
    }
    for (sub = s->sub_head; sub != NULL; sub = snext) {
        snext = sub->next;
        pmemi_strfree(s, sub->callback);
        pmemi_free(s, sub, sizeof *sub);
    }
    pmemi_tmap_release(s, &s->tasks);
    pmemi_tmap_release(s, &s->idem);
    pmemi_map_release(s, &s->queues);
    pmemi_map_release(s, &s->subs);
    pthread_mutex_destroy(&s->lock);
    alloc = s->alloc;
    pers_free(&alloc, s, sizeof *s);
}

static pers_result pmemi_capabilities(void *backend, pers_caps *caps, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    if (s == NULL || caps == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(caps, 0, sizeof *caps);
    caps->flags = PERS_CAP_BATCH | PERS_CAP_STATS | PERS_CAP_DEAD_LETTER |
                  PERS_CAP_TASK_RETENTION | PERS_CAP_RESULTS | PERS_CAP_SUBSCRIPTIONS |
                  PERS_CAP_HEALTH | PERS_CAP_COMPLETE_BATCH;
    caps->max_payload_bytes = s->max_payload;
    caps->max_batch = PERS_BATCH_MAX;
    return PERS_OK;
}

static pers_result pmemi_health(void *backend, pers_detail *detail)
{
    if (backend == NULL) {
        pers_detail_set(detail, "NULL backend");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Task storage
   ------------------------------------------------------------------------------------------- */

static pmemi_queue *pmemi_get_queue(pmemi_store *s, const char *tenant, const char *name)
{
    pmemi_queue *q = pmemi_find_queue(s, tenant, name);
    if (q != NULL)
        return q;
    q = (pmemi_queue *)pmemi_alloc(s, sizeof *q);
    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof *q);
    memcpy(q->tenant, tenant, strlen(tenant) + 1);
    memcpy(q->name, name, strlen(name) + 1);
    q->leased.track = 1;
    pmemi_map_insert(s, &s->queues, &q->node, pmemi_hash(tenant, name, NULL));
    q->all_next = s->queue_list;
    s->queue_list = q;
    return q;
}

/* The S10 checks a direct caller of the vtable gets; behind a store (PERS_OPEN_VALIDATED) the
   store has made them already, and making them twice was a fifth of the cost of a task. */
static int pmemi_name_ok(const pmemi_store *s, const char *name)
{
    return s->validated || pers_check_name(name, NULL, 0) == 0;
}

static int pmemi_key_ok(const pmemi_store *s, const char *key)
{
    return s->validated || pers_check_key(key, NULL, 0) == 0;
}

/* Puts a task that has just been enqueued where its state keeps it: the end of the queue's
   fresh FIFO when it is ready with the FIFO's priority (or the FIFO is empty), else the ready
   heap, or the scheduled heap. */
static void pmemi_place(pmemi_queue *q, pmemi_task *t)
{
    if (t->state != PERS_STATE_READY) {
        pmemi_make_scheduled(q, t, t->due_ms);
    } else if (q->fresh.count == 0 || q->fresh_priority == t->priority) {
        /* Its sequence is the newest of all: the end of the FIFO is its place. */
        if (q->fresh.count == 0)
            q->fresh_priority = t->priority;
        t->prev = NULL;
        t->next = NULL;
        if (q->fresh.tail != NULL)
            q->fresh.tail->next = t;
        else
            q->fresh.head = t;
        q->fresh.tail = t;
        q->fresh.count++;
    } else {
        pmemi_make_ready(q, t, t->due_ms);
    }
}

static size_t pmemi_ready_count(const pmemi_queue *q)
{
    return q->ready.count + q->fresh.count;
}

/* The first ready task by S3 (NULL if none), left in place. */
static pmemi_task *pmemi_ready_first(const pmemi_queue *q)
{
    pmemi_entry head;
    if (q->fresh.head == NULL)
        return q->ready.count > 0 ? q->ready.items[0].t : NULL;
    if (q->ready.count == 0)
        return q->fresh.head;
    head.t = q->fresh.head;
    head.key = pmemi_ready_key(head.t);
    return pmemi_before(&head, &q->ready.items[0]) ? head.t : q->ready.items[0].t;
}

/* Hints that task t (its fields, its id and a small payload) is about to be used. The
   prefetch hints are macros: GCC takes a function made only of them for one without effects
   and drops its calls. */
#define PMEMI_PREFETCH_TASK(t)                                                                     \
    do {                                                                                           \
        const char *pmemi_p_ = (const char *)(const void *)(t);                                    \
        PMEMI_PREFETCH(pmemi_p_);                                                                  \
        if (sizeof(pmemi_task) > PMEMI_LINE)                                                       \
            PMEMI_PREFETCH(pmemi_p_ + PMEMI_LINE);                                                 \
        if (sizeof(pmemi_task) > 2 * PMEMI_LINE)                                                   \
            PMEMI_PREFETCH(pmemi_p_ + 2 * PMEMI_LINE);                                             \
        if (sizeof(pmemi_task) > 3 * PMEMI_LINE)                                                   \
            PMEMI_PREFETCH(pmemi_p_ + 3 * PMEMI_LINE);                                             \
        PMEMI_PREFETCH((t) + 1); /* the id, the key, a small payload */                            \
    } while (0)

/* Hints that the map slots of task t are about to be used. */
#define PMEMI_PREFETCH_SLOTS(s, t)                                                                 \
    do {                                                                                           \
        PMEMI_PREFETCH(&(s)->tasks.slots[(size_t)(t)->id_hash & ((s)->tasks.cap - 1)]);            \
        if ((t)->idem != NULL)                                                                     \
            PMEMI_PREFETCH(&(s)->idem.slots[(size_t)(t)->idem_hash & ((s)->idem.cap - 1)]);        \
    } while (0)

/* Takes out t, which pmemi_ready_first returned. */
static void pmemi_ready_take(pmemi_queue *q, pmemi_task *t)
{
    if (t == q->fresh.head) {
        /* Singly linked: the next task is not touched before its own turn. */
        q->fresh.head = t->next;
        if (q->fresh.head == NULL)
            q->fresh.tail = NULL;
        q->fresh.count--;
        t->next = NULL;
    } else {
        pmemi_task *top = pmemi_heap_pop(&q->ready);
        PERS_ASSERT(top == t);
        (void)top;
    }
}

/* What an enqueue works out before the lock: the checks of the request (they depend on nothing
   that changes) and the hashes of its id, when it names one, and of its key. */
typedef struct pmemi_enq_pre {
    uint64_t id_hash;
    uint64_t idem_hash;
} pmemi_enq_pre;

static pers_result pmemi_enqueue_check(const pmemi_store *s, const pers_enqueue_req *req,
                                       pmemi_enq_pre *pre, pers_detail *detail)
{
    /* The store has checked all this; direct callers of the vtable get the same answers. */
    if (!pmemi_name_ok(s, req->tenant) || !pmemi_name_ok(s, req->queue) ||
        (req->payload == NULL && req->payload_len > 0) ||
        (req->idempotency_key != NULL && !pmemi_key_ok(s, req->idempotency_key)) ||
        (req->task_id != NULL && !pmemi_key_ok(s, req->task_id)) || req->delay_ms < 0 ||
        req->delay_ms > PERS_DURATION_MAX_MS || req->run_at_ms < 0 ||
        req->priority < PERS_PRIORITY_MIN || req->priority > PERS_PRIORITY_MAX) {
        pers_detail_set(detail, "invalid enqueue request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)req->payload_len > s->max_payload) {
        pers_detail_set(detail, "payload is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)req->payload_len, (unsigned long long)s->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    pre->id_hash = req->task_id != NULL ? pmemi_hash(req->tenant, req->task_id, NULL) : 0;
    pre->idem_hash = req->idempotency_key != NULL
                         ? pmemi_hash(req->tenant, req->queue, req->idempotency_key)
                         : 0;
    return PERS_OK;
}

/* One enqueue under the lock, of a request that passed pmemi_enqueue_check. *created receives
   the new task (NULL for a duplicate). With place = 0 the new task is left out of its heap,
   for the caller to pmemi_place once the whole batch has succeeded (a rollback then never has
   to find it in a heap). */
static pers_result pmemi_enqueue_locked(pmemi_store *s, const pers_enqueue_req *req,
                                        const pmemi_enq_pre *pre, int64_t now, int place,
                                        pers_enqueue_res *res, pmemi_task **created,
                                        pers_detail *detail)
{
    pmemi_queue *q;
    pmemi_task *t, *existing;
    char generated[PERS_GENERATED_ID_LEN + 1];
    const char *id = req->task_id;
    size_t id_len, key_len = 0, size;
    uint64_t id_hash = pre->id_hash;
    int64_t due;
    int inside;

    *created = NULL;
    if (req->idempotency_key != NULL) {
        existing =
            pmemi_find_idem(s, pre->idem_hash, req->tenant, req->queue, req->idempotency_key);
        if (existing != NULL) {
            memcpy(res->task_id, existing->id, strlen(existing->id) + 1);
            res->duplicate = 1;
            return PERS_OK;
        }
    }
    if (id == NULL) {
        uint64_t n = s->id_counter++, p = s->id_prefix;
        int i;
        for (i = 15; i >= 0; i--, p >>= 4)
            generated[i] = "0123456789abcdef"[p & 15u];
        for (i = 31; i >= 16; i--, n >>= 4)
            generated[i] = "0123456789abcdef"[n & 15u];
        generated[32] = '\0';
        id = generated;
        id_hash = pmemi_hash(req->tenant, id, NULL);
    }
    if (pmemi_find_task(s, id_hash, req->tenant, id) != NULL) {
        pers_detail_set(detail, "a task with id \"%s\" already exists in tenant \"%s\"", id,
                        req->tenant);
        return PERS_ERR_DUPLICATE;
    }
    if (s->max_tasks != 0 && s->task_count >= s->max_tasks) {
        pers_detail_set(detail, "the backend holds max_tasks = %llu tasks",
                        (unsigned long long)s->max_tasks);
        return PERS_ERR_LIMIT;
    }
    q = pmemi_get_queue(s, req->tenant, req->queue);
    if (q == NULL || pmemi_reserve_live(s, q) != 0 ||
        pmemi_tmap_reserve(s, &s->tasks, s->tasks.count + 1) != 0 ||
        (req->idempotency_key != NULL &&
         pmemi_tmap_reserve(s, &s->idem, s->idem.count + 1) != 0)) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    id_len = strlen(id);
    if (req->idempotency_key != NULL)
        key_len = strlen(req->idempotency_key) + 1;
    /* A small payload lives in the task's own block, next to the id: one allocation and one
       cache line fewer for a task that has gone cold. */
    inside = req->payload_len < PMEMI_INSIDE_PAYLOAD;
    size = sizeof *t + id_len + 1 + key_len + (inside ? req->payload_len + 1 : 0);
    t = (pmemi_task *)pmemi_alloc(s, size);
    if (t == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    memset(t, 0, sizeof *t);
    t->alloc_size = size;
    t->id = (char *)(t + 1);
    memcpy(t->id, id, id_len + 1);
    if (req->idempotency_key != NULL) {
        t->idem = t->id + id_len + 1;
        memcpy(t->idem, req->idempotency_key, key_len);
    }
    if (inside) {
        t->payload = t->id + id_len + 1 + key_len;
        if (req->payload_len > 0)
            memcpy(t->payload, req->payload, req->payload_len);
        ((char *)t->payload)[req->payload_len] = '\0';
        t->payload_inside = 1;
    } else {
        t->payload = pers_copy_bytes(&s->alloc, req->payload, req->payload_len);
        if (t->payload == NULL) {
            pmemi_free(s, t, size);
            pers_detail_set(detail, "out of memory for a payload of %lu bytes",
                            (unsigned long)req->payload_len);
            return PERS_ERR_NO_MEMORY;
        }
    }
    t->payload_len = req->payload_len;
    t->q = q;
    t->seq = ++s->seq;
    t->heap_pos = (size_t)-1;
    t->priority = req->priority;
    t->max_attempts = req->max_attempts ? req->max_attempts : PERS_DEFAULT_MAX_ATTEMPTS;
    t->created_ms = now;
    due = req->run_at_ms > 0 ? req->run_at_ms : now + req->delay_ms;
    t->state = due <= now ? PERS_STATE_READY : PERS_STATE_SCHEDULED;
    t->due_ms = due;
    if (place)
        pmemi_place(q, t);
    q->live++;
    s->task_count++;
    t->id_hash = id_hash;
    pmemi_tmap_insert(&s->tasks, t, id_hash);
    if (t->idem != NULL) {
        t->idem_hash = pre->idem_hash;
        pmemi_tmap_insert(&s->idem, t, pre->idem_hash);
    }
    memcpy(res->task_id, t->id, id_len + 1);
    res->duplicate = 0;
    *created = t;
    return PERS_OK;
}

/* Undoes a pmemi_enqueue_locked(place = 0) that created t (batch rollback). */
static void pmemi_unenqueue(pmemi_store *s, pmemi_task *t)
{
    t->q->live--;
    s->task_count--;
    pmemi_tmap_remove(&s->tasks, t, t->id_hash);
    if (t->idem != NULL)
        pmemi_tmap_remove(&s->idem, t, t->idem_hash);
    pmemi_task_destroy(s, t);
}

static pers_result pmemi_enqueue(void *backend, const pers_enqueue_req *req,
                                 pers_enqueue_res *res, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *created;
    pmemi_enq_pre pre;
    pers_result rc;
    if (s == NULL || req == NULL || res == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = pmemi_enqueue_check(s, req, &pre, detail)) != PERS_OK)
        return rc;
    /* The duplicate check reads a slot of the tasks map, cold in a deep queue. */
    if (req->task_id != NULL)
        PMEMI_PREFETCH_SLOT_UNLOCKED(&s->tasks, pre.id_hash);
    pthread_mutex_lock(&s->lock);
    rc = pmemi_enqueue_locked(s, req, &pre, pmemi_now(s), 1, res, &created, detail);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_enqueue_batch(void *backend, const pers_enqueue_req *reqs, size_t count,
                                       pers_enqueue_res *res, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task **created;
    pmemi_enq_pre pre;
    pers_result rc = PERS_OK;
    size_t i, done = 0;
    int64_t now;
    char inner[PERS_DETAIL_SIZE];
    pers_detail d;
    if (s == NULL || reqs == NULL || res == NULL || count == 0) {
        pers_detail_set(detail, "NULL argument or empty batch");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    created = (pmemi_task **)pmemi_alloc(s, count * sizeof *created);
    if (created == NULL) {
        pers_detail_set(detail, "out of memory");
        return PERS_ERR_NO_MEMORY;
    }
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    for (i = 0; i < count; i++) {
        d.native_code = 0;
        d.text[0] = '\0';
        rc = pmemi_enqueue_check(s, &reqs[i], &pre, &d);
        if (rc == PERS_OK)
            rc = pmemi_enqueue_locked(s, &reqs[i], &pre, now, 0, &res[i], &created[i], &d);
        if (rc != PERS_OK)
            break;
        done++;
    }
    if (rc != PERS_OK) {
        /* All or nothing: undo in reverse order. */
        while (done > 0) {
            done--;
            if (created[done] != NULL)
                pmemi_unenqueue(s, created[done]);
        }
        memcpy(inner, d.text, sizeof inner);
        inner[sizeof inner - 1] = '\0';
        pers_detail_set(detail, "request %lu: %s; nothing was enqueued", (unsigned long)i,
                        inner);
    } else {
        /* In request order, which is also sequence order. */
        for (i = 0; i < count; i++)
            if (created[i] != NULL)
                pmemi_place(created[i]->q, created[i]);
    }
    pthread_mutex_unlock(&s->lock);
    pmemi_free(s, created, count * sizeof *created);
    return rc;
}

static pers_result pmemi_claim(void *backend, const pers_claim_req *req, pers_task *tasks,
                               pers_claim_res *res, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    size_t got = 0, i;
    int64_t now, next_due = PERS_NO_TIME;
    pers_result rc = PERS_OK;
    if (s == NULL || req == NULL || tasks == NULL || res == NULL || req->queues == NULL ||
        !pmemi_name_ok(s, req->tenant) || !pmemi_name_ok(s, req->worker_id) || req->lease_ms <= 0 ||
        req->lease_ms > PERS_DURATION_MAX_MS || req->max_tasks == 0) {
        pers_detail_set(detail, "invalid claim request");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    for (i = 0; i < req->queue_count && got < req->max_tasks && rc == PERS_OK; i++) {
        pmemi_queue *q;
        if (!pmemi_name_ok(s, req->queues[i]))
            continue;
        q = pmemi_find_queue(s, req->tenant, req->queues[i]);
        if (q == NULL)
            continue;
        pmemi_settle(s, q, now);
        while (got < req->max_tasks && pmemi_ready_count(q) > 0) {
            pmemi_task *t = pmemi_ready_first(q);
            void *payload;
            char *last_error;
            if (pmemi_copy_owned(s, t, &payload, &last_error, detail) != PERS_OK) {
                /* What is already leased stays leased and is returned. */
                if (got == 0)
                    rc = PERS_ERR_NO_MEMORY;
                break;
            }
            pmemi_ready_take(q, t);
            /* Warm the task the next claim of q takes, so that a deep queue's cold memory is
               fetched while the caller works rather than under the next claim. */
            if (q->fresh.head != NULL)
                PMEMI_PREFETCH_TASK(q->fresh.head);
            if (q->ready.count > 0)
                PMEMI_PREFETCH_TASK(q->ready.items[0].t);
            t->state = PERS_STATE_LEASED;
            t->attempts++;
            pmemi_new_token(s, t);
            t->lease_expires_ms = now + req->lease_ms;
            memcpy(t->worker, req->worker_id, strlen(req->worker_id) + 1);
            pmemi_heap_push(&q->leased, t, pmemi_time_key(t->lease_expires_ms));
            pmemi_fill(&tasks[got], t, payload, last_error, t->token);
            got++;
        }
    }
    if (got == 0 && rc == PERS_OK) {
        for (i = 0; i < req->queue_count; i++) {
            pmemi_queue *q;
            if (!pmemi_name_ok(s, req->queues[i]))
                continue;
            q = pmemi_find_queue(s, req->tenant, req->queues[i]);
            if (q == NULL)
                continue;
            pmemi_settle(s, q, now);
            if (q->scheduled.count > 0 &&
                (next_due == PERS_NO_TIME || q->scheduled.items[0].t->due_ms < next_due))
                next_due = q->scheduled.items[0].t->due_ms;
        }
    }
    pthread_mutex_unlock(&s->lock);
    res->count = got;
    res->next_due_ms = got == 0 ? next_due : PERS_NO_TIME;
    return rc;
}

enum { PMEMI_LEASE_LIVE = 0, PMEMI_LEASE_FINISHED = 1 };

/* The checks of a lease, before the lock (they depend on nothing that changes). */
static pers_result pmemi_lease_check(const pmemi_store *s, const pers_lease *lease,
                                     pers_detail *detail)
{
    if (lease == NULL || !pmemi_name_ok(s, lease->tenant) || !pmemi_key_ok(s, lease->task_id) ||
        lease->token == 0) {
        pers_detail_set(detail, "invalid lease");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return PERS_OK;
}

/* S5 for one worker operation on a lease that passed pmemi_lease_check, under the lock.
   Returns PERS_OK with *which = LIVE (case b) or FINISHED (case c), or the code of cases a
   and d. */
static pers_result pmemi_lease_lookup(pmemi_store *s, const pers_lease *lease, int64_t now,
                                      pmemi_task **out, int *which, pers_detail *detail)
{
    pmemi_task *t = s->lease_cache[lease->token % PMEMI_LEASE_CACHE];
    if (t == NULL || t->token != lease->token || strcmp(t->id, lease->task_id) != 0 ||
        strcmp(t->q->tenant, lease->tenant) != 0)
        t = pmemi_find_task(s, pmemi_hash(lease->tenant, lease->task_id, NULL), lease->tenant,
                             lease->task_id);
    if (t == NULL) {
        pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", lease->task_id,
                        lease->tenant);
        return PERS_ERR_NOT_FOUND;
    }
    pmemi_settle(s, t->q, now);
    *out = t;
    if (t->token == lease->token && t->state == PERS_STATE_LEASED) {
        *which = PMEMI_LEASE_LIVE;
        return PERS_OK;
    }
    if (t->token == lease->token &&
        (t->state == PERS_STATE_COMPLETED || t->state == PERS_STATE_FAILED)) {
        *which = PMEMI_LEASE_FINISHED;
        return PERS_OK;
    }
    pers_detail_set(detail, "task \"%s\": token %llu is not its current live lease (it is %s)",
                    t->id, (unsigned long long)lease->token, pers_state_name(t->state));
    return PERS_ERR_LEASE_LOST;
}

static pers_result pmemi_finished_state(const pmemi_task *t, pers_detail *detail)
{
    pers_detail_set(detail, "task \"%s\" is already %s", t->id, pers_state_name(t->state));
    return PERS_ERR_INVALID_STATE;
}

static pers_result pmemi_extend_lease(void *backend, const pers_lease *lease, int64_t lease_ms,
                                      int64_t *expires_ms, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    int which = 0;
    int64_t now;
    pers_result rc;
    if (s == NULL || expires_ms == NULL || lease_ms <= 0 || lease_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = pmemi_lease_check(s, lease, detail)) != PERS_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    rc = pmemi_lease_lookup(s, lease, now, &t, &which, detail);
    if (rc == PERS_OK && which == PMEMI_LEASE_FINISHED)
        rc = pmemi_finished_state(t, detail);
    if (rc == PERS_OK) {
        t->lease_expires_ms = now + lease_ms;
        t->q->leased.items[t->heap_pos].key = pmemi_time_key(t->lease_expires_ms);
        pmemi_heap_fix(&t->q->leased, t->heap_pos);
        *expires_ms = t->lease_expires_ms;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_abandon(void *backend, const pers_lease *lease, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    int which = 0;
    int64_t now;
    pers_result rc;
    if (s == NULL) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = pmemi_lease_check(s, lease, detail)) != PERS_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    rc = pmemi_lease_lookup(s, lease, now, &t, &which, detail);
    if (rc == PERS_OK && which == PMEMI_LEASE_FINISHED)
        rc = pmemi_finished_state(t, detail);
    if (rc == PERS_OK) {
        pmemi_heap_remove(&t->q->leased, t);
        t->attempts--; /* S6: giving back is not an attempt */
        t->lease_expires_ms = 0;
        pmemi_make_ready(t->q, t, now);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_nack(void *backend, const pers_lease *lease, int64_t retry_delay_ms,
                              const char *reason, pers_task_state *state, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    char *copy = NULL;
    int which = 0;
    int64_t now;
    pers_result rc;
    if (s == NULL || state == NULL || retry_delay_ms < 0 || retry_delay_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (reason != NULL && (copy = pmemi_strdup(s, reason)) == NULL) {
        pers_detail_set(detail, "out of memory for the reason");
        return PERS_ERR_NO_MEMORY;
    }
    if ((rc = pmemi_lease_check(s, lease, detail)) != PERS_OK) {
        pmemi_strfree(s, copy);
        return rc;
    }
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    rc = pmemi_lease_lookup(s, lease, now, &t, &which, detail);
    if (rc == PERS_OK && which == PMEMI_LEASE_FINISHED)
        rc = pmemi_finished_state(t, detail);
    if (rc == PERS_OK) {
        pmemi_heap_remove(&t->q->leased, t);
        *state = pmemi_fail_attempt(t->q, t, now, retry_delay_ms, copy, s);
        copy = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    pmemi_strfree(s, copy);
    return rc;
}

/* Checks one completion and copies its data (S11) before the lock. */
static pers_result pmemi_completion_prepare(pmemi_store *s, const pers_lease *lease,
                                            const pers_completion *completion, void **data,
                                            pers_detail *detail)
{
    pers_result rc;
    *data = NULL;
    if (completion == NULL || (completion->data == NULL && completion->data_len > 0)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)completion->data_len > s->max_payload) {
        pers_detail_set(detail, "result is %lu bytes, more than max_payload_bytes %llu",
                        (unsigned long)completion->data_len, (unsigned long long)s->max_payload);
        return PERS_ERR_TOO_LARGE;
    }
    if ((rc = pmemi_lease_check(s, lease, detail)) != PERS_OK)
        return rc;
    *data = pers_copy_bytes(&s->alloc, completion->data, completion->data_len);
    if (*data == NULL) {
        pers_detail_set(detail, "out of memory for a result of %lu bytes",
                        (unsigned long)completion->data_len);
        return PERS_ERR_NO_MEMORY;
    }
    return PERS_OK;
}

/* S5 and S12 under the lock. On PERS_OK the task owns *data and *data is set to NULL. */
static pers_result pmemi_complete_locked(pmemi_store *s, const pers_lease *lease,
                                         const pers_completion *completion, void **data,
                                         int64_t now, pers_detail *detail)
{
    pmemi_task *t = NULL;
    pmemi_queue *q;
    int which = 0;
    pers_result rc = pmemi_lease_lookup(s, lease, now, &t, &which, detail);
    if (rc != PERS_OK)
        return rc;
    if (which == PMEMI_LEASE_FINISHED) {
        pers_detail_set(detail, "task \"%s\" was already %s with this token; the first result "
                                "is kept",
                        t->id, pers_state_name(t->state));
        return PERS_ERR_ALREADY_COMPLETED;
    }
    q = t->q;
    pmemi_heap_remove(&q->leased, t);
    q->live--;
    t->lease_expires_ms = 0;
    t->finished_ms = now;
    t->result = *data;
    t->result_len = completion->data_len;
    t->has_result = 1;
    *data = NULL;
    if (completion->failed) {
        t->state = PERS_STATE_FAILED;
        q->failed++;
    } else {
        t->state = PERS_STATE_COMPLETED;
        q->completed++;
    }
    pmemi_list_insert(&q->done, t);
    return PERS_OK;
}

static pers_result pmemi_complete(void *backend, const pers_lease *lease,
                                  const pers_completion *completion, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    void *data;
    pers_result rc;
    if (s == NULL) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if ((rc = pmemi_completion_prepare(s, lease, completion, &data, detail)) != PERS_OK)
        return rc;
    pthread_mutex_lock(&s->lock);
    rc = pmemi_complete_locked(s, lease, completion, &data, pmemi_now(s), detail);
    pthread_mutex_unlock(&s->lock);
    if (data != NULL)
        pmemi_free(s, data, completion->data_len + 1);
    return rc;
}

/* S20 in one critical section: every copy is made before the lock, so the batch cannot fail
   halfway through (it is all decided, or nothing changes). */
static pers_result pmemi_complete_batch(void *backend, const pers_lease *leases,
                                        const pers_completion *completions, size_t count,
                                        pers_result *results, pers_detail *detail)
{
    static const pers_completion empty = { 0, NULL, 0 };
    pmemi_store *s = (pmemi_store *)backend;
    void *inline_data[64], **data = inline_data;
    pers_detail item;
    pers_result rc = PERS_OK;
    size_t i;
    int64_t now;
    if (s == NULL || leases == NULL || results == NULL || count == 0 || count > PERS_BATCH_MAX) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    if (count > sizeof inline_data / sizeof inline_data[0]) {
        data = (void **)pmemi_alloc(s, count * sizeof *data);
        if (data == NULL) {
            pers_detail_set(detail, "out of memory for a batch of %lu", (unsigned long)count);
            return PERS_ERR_NO_MEMORY;
        }
    }
    for (i = 0; i < count; i++)
        data[i] = NULL;
    for (i = 0; rc == PERS_OK && i < count; i++) {
        item.text[0] = '\0';
        rc = pmemi_completion_prepare(s, &leases[i], completions ? &completions[i] : &empty,
                                      &data[i], &item);
        if (rc != PERS_OK)
            pers_detail_set(detail, "item %lu: %s", (unsigned long)i, item.text);
    }
    if (rc == PERS_OK) {
        pthread_mutex_lock(&s->lock);
        now = pmemi_now(s);
        for (i = 0; i < count; i++)
            results[i] = pmemi_complete_locked(s, &leases[i],
                                               completions ? &completions[i] : &empty, &data[i],
                                               now, &item);
        pthread_mutex_unlock(&s->lock);
    }
    for (i = 0; i < count; i++)
        if (data[i] != NULL)
            pmemi_free(s, data[i], (completions ? completions[i].data_len : 0) + 1);
    if (data != inline_data)
        pmemi_free(s, data, count * sizeof *data);
    return rc;
}

/* Looks a task up by (tenant, id) and settles its queue; NOT_FOUND otherwise. */
static pers_result pmemi_lookup(pmemi_store *s, const char *tenant, const char *task_id,
                                int64_t now, pmemi_task **out, pers_detail *detail)
{
    pmemi_task *t;
    if (!pmemi_name_ok(s, tenant) || !pmemi_key_ok(s, task_id)) {
        pers_detail_set(detail, "invalid tenant or task id");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    t = pmemi_find_task(s, pmemi_hash(tenant, task_id, NULL), tenant, task_id);
    if (t == NULL) {
        pers_detail_set(detail, "no task \"%s\" in tenant \"%s\"", task_id, tenant);
        return PERS_ERR_NOT_FOUND;
    }
    pmemi_settle(s, t->q, now);
    *out = t;
    return PERS_OK;
}

static pers_result pmemi_get_task(void *backend, const char *tenant, const char *task_id,
                                  pers_task *task, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    void *payload;
    char *last_error;
    pers_result rc;
    if (s == NULL || task == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    rc = pmemi_lookup(s, tenant, task_id, pmemi_now(s), &t, detail);
    if (rc == PERS_OK)
        rc = pmemi_copy_owned(s, t, &payload, &last_error, detail);
    if (rc == PERS_OK)
        pmemi_fill(task, t, payload, last_error, 0);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_queue_stats(void *backend, const char *tenant, const char *queue,
                                     pers_stats *stats, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_queue *q;
    if (s == NULL || stats == NULL || !pmemi_name_ok(s, tenant) || !pmemi_name_ok(s, queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(stats, 0, sizeof *stats);
    pthread_mutex_lock(&s->lock);
    q = pmemi_find_queue(s, tenant, queue);
    if (q != NULL) {
        pmemi_settle(s, q, pmemi_now(s));
        stats->scheduled = q->scheduled.count;
        stats->ready = pmemi_ready_count(q);
        stats->leased = q->leased.count;
        stats->completed = q->completed;
        stats->failed = q->failed;
        stats->dead = q->dead.count;
    }
    pthread_mutex_unlock(&s->lock);
    return PERS_OK;
}

static pers_result pmemi_list_dead(void *backend, const pers_list_req *req, pers_task_list *list,
                                   pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_queue *q;
    pmemi_task *t;
    size_t i, n = 0, limit;
    pers_result rc = PERS_OK;
    if (s == NULL || req == NULL || list == NULL || !pmemi_name_ok(s, req->tenant) ||
        !pmemi_name_ok(s, req->queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    memset(list, 0, sizeof *list);
    limit = req->limit == 0 || req->limit > PERS_LIST_MAX ? PERS_LIST_MAX : req->limit;
    pthread_mutex_lock(&s->lock);
    q = pmemi_find_queue(s, req->tenant, req->queue);
    if (q != NULL) {
        pmemi_settle(s, q, pmemi_now(s));
        list->total = q->dead.count;
        if (req->offset < q->dead.count)
            n = q->dead.count - req->offset;
        if (n > limit)
            n = limit;
    }
    if (n > 0) {
        list->items = (pers_task *)pmemi_alloc(s, n * sizeof *list->items);
        if (list->items == NULL) {
            rc = PERS_ERR_NO_MEMORY;
            pers_detail_set(detail, "out of memory for %lu tasks", (unsigned long)n);
        }
    }
    if (n > 0 && rc == PERS_OK) {
        for (t = q->dead.head, i = 0; t != NULL && i < req->offset; t = t->next)
            i++;
        for (i = 0; i < n && rc == PERS_OK; i++, t = t->next) {
            void *payload;
            char *last_error;
            rc = pmemi_copy_owned(s, t, &payload, &last_error, detail);
            if (rc == PERS_OK) {
                pmemi_fill(&list->items[i], t, payload, last_error, 0);
                list->count = i + 1;
            }
        }
        if (rc != PERS_OK) {
            size_t made = list->count;
            for (i = 0; i < made; i++)
                pers_task_clear(&s->alloc, &list->items[i]);
            pmemi_free(s, list->items, n * sizeof *list->items);
            memset(list, 0, sizeof *list);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_requeue_dead(void *backend, const char *tenant, const char *task_id,
                                      pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    int64_t now;
    pers_result rc;
    if (s == NULL) {
        pers_detail_set(detail, "NULL backend");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    rc = pmemi_lookup(s, tenant, task_id, now, &t, detail);
    if (rc == PERS_OK && t->state != PERS_STATE_DEAD) {
        pers_detail_set(detail, "task \"%s\" is %s, not dead", t->id, pers_state_name(t->state));
        rc = PERS_ERR_INVALID_STATE;
    }
    if (rc == PERS_OK && pmemi_reserve_live(s, t->q) != 0) {
        pers_detail_set(detail, "out of memory");
        rc = PERS_ERR_NO_MEMORY;
    }
    if (rc == PERS_OK) {
        pmemi_list_remove(&t->q->dead, t);
        t->attempts = 0;
        t->finished_ms = 0;
        t->q->live++;
        pmemi_make_ready(t->q, t, now);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int pmemi_cleanup_args(pmemi_store *s, const pers_cleanup_req *req, size_t *removed,
                              pers_detail *detail)
{
    if (s == NULL || req == NULL || removed == NULL || req->older_than_ms < 0 ||
        req->older_than_ms > PERS_DURATION_MAX_MS ||
        (req->tenant != NULL && !pmemi_name_ok(s, req->tenant))) {
        pers_detail_set(detail, "invalid argument");
        return -1;
    }
    *removed = 0;
    return 0;
}

/* Removes from list l the tasks finished at or before cutoff, up to *budget. Each removal
   reads the tasks' map slots, cold in a deep queue: they are asked for PMEMI_CLEANUP_AHEAD
   tasks in advance, so that the misses overlap instead of following one another. */
static void pmemi_cleanup_list(pmemi_store *s, pmemi_list *l, int64_t cutoff, size_t *removed,
                               size_t *budget)
{
    pmemi_task *ahead = l->head;
    size_t n;
    for (n = 0; ahead != NULL && n < PMEMI_CLEANUP_AHEAD; n++, ahead = ahead->next)
        PMEMI_PREFETCH_SLOTS(s, ahead);
    while (l->head != NULL && l->head->finished_ms <= cutoff && *budget > 0) {
        if (ahead != NULL) {
            PMEMI_PREFETCH_SLOTS(s, ahead);
            ahead = ahead->next;
        }
        pmemi_task_remove_finished(s, l->head);
        (*removed)++;
        (*budget)--;
    }
}

static pers_result pmemi_cleanup_tasks(void *backend, const pers_cleanup_req *req,
                                       size_t *removed, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_queue *q;
    int64_t now, cutoff;
    size_t budget;
    if (pmemi_cleanup_args(s, req, removed, detail) != 0)
        return PERS_ERR_INVALID_ARGUMENT;
    budget = req->limit ? req->limit : (size_t)-1;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    cutoff = now - req->older_than_ms;
    for (q = s->queue_list; q != NULL; q = q->all_next) {
        if (req->tenant != NULL && strcmp(q->tenant, req->tenant) != 0)
            continue;
        pmemi_settle(s, q, now);
        pmemi_cleanup_list(s, &q->done, cutoff, removed, &budget);
        if (req->include_dead)
            pmemi_cleanup_list(s, &q->dead, cutoff, removed, &budget);
    }
    pthread_mutex_unlock(&s->lock);
    return PERS_OK;
}

static pers_result pmemi_get_result(void *backend, const char *tenant, const char *task_id,
                                    pers_task_result *result, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_task *t = NULL;
    pers_result rc;
    if (s == NULL || result == NULL) {
        pers_detail_set(detail, "NULL argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&s->lock);
    rc = pmemi_lookup(s, tenant, task_id, pmemi_now(s), &t, detail);
    if (rc == PERS_OK && !t->has_result) {
        pers_detail_set(detail, "task \"%s\" has no result (it is %s%s)", t->id,
                        pers_state_name(t->state),
                        t->state == PERS_STATE_COMPLETED || t->state == PERS_STATE_FAILED
                            ? " and its result was cleaned up"
                            : "");
        rc = PERS_ERR_NOT_FOUND;
    }
    if (rc == PERS_OK) {
        void *data = pers_copy_bytes(&s->alloc, t->result, t->result_len);
        if (data == NULL) {
            pers_detail_set(detail, "out of memory");
            rc = PERS_ERR_NO_MEMORY;
        } else {
            memset(result, 0, sizeof *result);
            memcpy(result->task_id, t->id, strlen(t->id) + 1);
            memcpy(result->tenant, t->q->tenant, strlen(t->q->tenant) + 1);
            memcpy(result->queue, t->q->name, strlen(t->q->name) + 1);
            result->state = t->state;
            result->attempts = t->attempts;
            result->finished_ms = t->finished_ms;
            result->data = data;
            result->data_len = t->result_len;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static pers_result pmemi_cleanup_results(void *backend, const pers_cleanup_req *req,
                                         size_t *removed, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_queue *q;
    pmemi_task *t;
    int64_t now, cutoff;
    size_t budget;
    if (pmemi_cleanup_args(s, req, removed, detail) != 0)
        return PERS_ERR_INVALID_ARGUMENT;
    budget = req->limit ? req->limit : (size_t)-1;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    cutoff = now - req->older_than_ms;
    for (q = s->queue_list; q != NULL && budget > 0; q = q->all_next) {
        if (req->tenant != NULL && strcmp(q->tenant, req->tenant) != 0)
            continue;
        for (t = q->done.head; t != NULL && t->finished_ms <= cutoff && budget > 0; t = t->next) {
            if (!t->has_result)
                continue;
            pmemi_free(s, t->result, t->result_len + 1);
            t->result = NULL;
            t->result_len = 0;
            t->has_result = 0;
            (*removed)++;
            budget--;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Subscription storage
   ------------------------------------------------------------------------------------------- */

static void pmemi_sub_remove(pmemi_store *s, pmemi_sub *sub)
{
    pmemi_map_remove(&s->subs, &sub->node);
    if (sub->prev != NULL)
        sub->prev->next = sub->next;
    else
        s->sub_head = sub->next;
    if (sub->next != NULL)
        sub->next->prev = sub->prev;
    pmemi_strfree(s, sub->callback);
    pmemi_free(s, sub, sizeof *sub);
}

static pers_result pmemi_subscribe(void *backend, const pers_subscribe_req *req, size_t *created,
                                   pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_sub *fresh[PERS_QUEUES_MAX];
    char *callbacks[PERS_QUEUES_MAX];
    size_t i, n;
    int64_t now;
    pers_result rc = PERS_OK;
    if (s == NULL || req == NULL || created == NULL || req->queues == NULL ||
        req->queue_count == 0 || req->queue_count > PERS_QUEUES_MAX ||
        !pmemi_name_ok(s, req->tenant) || !pmemi_name_ok(s, req->worker_id) ||
        req->callback == NULL || req->ttl_ms <= 0 || req->ttl_ms > PERS_DURATION_MAX_MS) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    n = req->queue_count;
    for (i = 0; i < n; i++)
        if (!pmemi_name_ok(s, req->queues[i])) {
            pers_detail_set(detail, "invalid queue name at %lu", (unsigned long)i);
            return PERS_ERR_INVALID_ARGUMENT;
        }
    /* Everything that may need memory first, so that the upsert is all or nothing. */
    memset(fresh, 0, sizeof fresh);
    memset(callbacks, 0, sizeof callbacks);
    for (i = 0; i < n && rc == PERS_OK; i++) {
        fresh[i] = (pmemi_sub *)pmemi_alloc(s, sizeof(pmemi_sub));
        callbacks[i] = pmemi_strdup(s, req->callback);
        if (fresh[i] == NULL || callbacks[i] == NULL)
            rc = PERS_ERR_NO_MEMORY;
    }
    if (rc == PERS_OK) {
        *created = 0;
        pthread_mutex_lock(&s->lock);
        now = pmemi_now(s);
        for (i = 0; i < n; i++) {
            pmemi_sub *sub = pmemi_find_sub(s, req->tenant, req->worker_id, req->queues[i]);
            if (sub == NULL) {
                sub = fresh[i];
                fresh[i] = NULL;
                memset(sub, 0, sizeof *sub);
                memcpy(sub->tenant, req->tenant, strlen(req->tenant) + 1);
                memcpy(sub->worker, req->worker_id, strlen(req->worker_id) + 1);
                memcpy(sub->queue, req->queues[i], strlen(req->queues[i]) + 1);
                sub->created_ms = now;
                sub->next = s->sub_head;
                if (s->sub_head != NULL)
                    s->sub_head->prev = sub;
                s->sub_head = sub;
                pmemi_map_insert(s, &s->subs, &sub->node,
                                 pmemi_hash(sub->tenant, sub->worker, sub->queue));
                (*created)++;
            } else if (sub->expires_ms <= now) {
                sub->created_ms = now; /* an expired row is as good as absent (S15) */
                (*created)++;
            }
            pmemi_strfree(s, sub->callback);
            sub->callback = callbacks[i];
            callbacks[i] = NULL;
            sub->updated_ms = now;
            sub->expires_ms = now + req->ttl_ms;
        }
        pthread_mutex_unlock(&s->lock);
    } else {
        pers_detail_set(detail, "out of memory");
    }
    for (i = 0; i < n; i++) {
        if (fresh[i] != NULL)
            pmemi_free(s, fresh[i], sizeof(pmemi_sub));
        pmemi_strfree(s, callbacks[i]);
    }
    return rc;
}

static pers_result pmemi_unsubscribe(void *backend, const char *tenant, const char *worker_id,
                                     const char *queue, size_t *removed, pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_sub *sub, *next;
    int64_t now;
    if (s == NULL || removed == NULL || !pmemi_name_ok(s, tenant) || !pmemi_name_ok(s, worker_id) ||
        (queue != NULL && !pmemi_name_ok(s, queue))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    for (sub = s->sub_head; sub != NULL; sub = next) {
        next = sub->next;
        if (strcmp(sub->tenant, tenant) != 0 || strcmp(sub->worker, worker_id) != 0 ||
            (queue != NULL && strcmp(sub->queue, queue) != 0))
            continue;
        if (sub->expires_ms > now)
            (*removed)++;
        pmemi_sub_remove(s, sub);
    }
    pthread_mutex_unlock(&s->lock);
    if (*removed == 0) {
        pers_detail_set(detail, "worker \"%s\" of tenant \"%s\" has no subscription%s%s", worker_id,
                        tenant, queue != NULL ? " to queue " : "", queue != NULL ? queue : "");
        return PERS_ERR_NOT_FOUND;
    }
    return PERS_OK;
}

static int pmemi_sub_order(const void *a, const void *b)
{
    const pmemi_sub *x = *(const pmemi_sub *const *)a, *y = *(const pmemi_sub *const *)b;
    int c = strcmp(x->worker, y->worker);
    return c != 0 ? c : strcmp(x->queue, y->queue);
}

/* Live rows of tenant matching worker (or any) and queue (or any), sorted (S15). */
static pers_result pmemi_list_subs(pmemi_store *s, const char *tenant, const char *worker,
                                   const char *queue, pers_subscription_list *list,
                                   pers_detail *detail)
{
    pmemi_sub *sub, **found = NULL;
    size_t n = 0, i;
    int64_t now;
    pers_result rc = PERS_OK;
    memset(list, 0, sizeof *list);
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    for (sub = s->sub_head; sub != NULL; sub = sub->next)
        if (sub->expires_ms > now && strcmp(sub->tenant, tenant) == 0 &&
            (worker == NULL || strcmp(sub->worker, worker) == 0) &&
            (queue == NULL || strcmp(sub->queue, queue) == 0))
            n++;
    if (n > 0) {
        found = (pmemi_sub **)pmemi_alloc(s, n * sizeof *found);
        list->items = (pers_subscription *)pmemi_alloc(s, n * sizeof *list->items);
        if (found == NULL || list->items == NULL)
            rc = PERS_ERR_NO_MEMORY;
    }
    if (n > 0 && rc == PERS_OK) {
        i = 0;
        for (sub = s->sub_head; sub != NULL; sub = sub->next)
            if (sub->expires_ms > now && strcmp(sub->tenant, tenant) == 0 &&
                (worker == NULL || strcmp(sub->worker, worker) == 0) &&
                (queue == NULL || strcmp(sub->queue, queue) == 0))
                found[i++] = sub;
        qsort(found, n, sizeof *found, pmemi_sub_order);
        memset(list->items, 0, n * sizeof *list->items);
        for (i = 0; i < n && rc == PERS_OK; i++) {
            pers_subscription *o = &list->items[i];
            sub = found[i];
            memcpy(o->tenant, sub->tenant, sizeof o->tenant);
            memcpy(o->worker_id, sub->worker, sizeof o->worker_id);
            memcpy(o->queue, sub->queue, sizeof o->queue);
            o->created_ms = sub->created_ms;
            o->updated_ms = sub->updated_ms;
            o->expires_ms = sub->expires_ms;
            o->callback = pmemi_strdup(s, sub->callback);
            if (o->callback == NULL)
                rc = PERS_ERR_NO_MEMORY;
        }
        list->count = n;
    }
    pthread_mutex_unlock(&s->lock);
    if (found != NULL)
        pmemi_free(s, found, n * sizeof *found);
    if (rc != PERS_OK) {
        if (list->items != NULL && list->count == n) {
            pers_subscription_list_clear(&s->alloc, list);
        } else if (list->items != NULL) {
            pmemi_free(s, list->items, n * sizeof *list->items);
        }
        memset(list, 0, sizeof *list);
        pers_detail_set(detail, "out of memory for %lu subscriptions", (unsigned long)n);
    }
    return rc;
}

static pers_result pmemi_list_subscriptions_by_queue(void *backend, const char *tenant,
                                                     const char *queue,
                                                     pers_subscription_list *list,
                                                     pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    if (s == NULL || list == NULL || !pmemi_name_ok(s, tenant) || !pmemi_name_ok(s, queue)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return pmemi_list_subs(s, tenant, NULL, queue, list, detail);
}

static pers_result pmemi_list_subscriptions_by_worker(void *backend, const char *tenant,
                                                      const char *worker_id,
                                                      pers_subscription_list *list,
                                                      pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    if (s == NULL || list == NULL || !pmemi_name_ok(s, tenant) || !pmemi_name_ok(s, worker_id)) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    return pmemi_list_subs(s, tenant, worker_id, NULL, list, detail);
}

static pers_result pmemi_expire_subscriptions(void *backend, const char *tenant, size_t *removed,
                                              pers_detail *detail)
{
    pmemi_store *s = (pmemi_store *)backend;
    pmemi_sub *sub, *next;
    int64_t now;
    if (s == NULL || removed == NULL || (tenant != NULL && !pmemi_name_ok(s, tenant))) {
        pers_detail_set(detail, "invalid argument");
        return PERS_ERR_INVALID_ARGUMENT;
    }
    *removed = 0;
    pthread_mutex_lock(&s->lock);
    now = pmemi_now(s);
    for (sub = s->sub_head; sub != NULL; sub = next) {
        next = sub->next;
        if (sub->expires_ms <= now && (tenant == NULL || strcmp(sub->tenant, tenant) == 0)) {
            pmemi_sub_remove(s, sub);
            (*removed)++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return PERS_OK;
}

/* ---------------------------------------------------------------------------------------------
   Vtable, plugin descriptor, registration
   ------------------------------------------------------------------------------------------- */

/* Positional, in PERS_BACKEND_OPS order, generated from the list itself: every method of the
   list must exist here as pmemi_<name>. */
static const pers_backend_vtable pmemi_vtable = {
    PERS_BACKEND_ABI_VERSION,
    (uint32_t)sizeof(pers_backend_vtable),
#define PMEMI_VTABLE_ENTRY_(name, required, abi_added, cap, ret, params) pmemi_##name,
    PERS_BACKEND_OPS(PMEMI_VTABLE_ENTRY_)
#undef PMEMI_VTABLE_ENTRY_
};

static const plg_config_key pmemi_schema[] = {
    { "max_payload_bytes", PLG_CONFIG_INTEGER, 0, "1048576", "1", "1073741824", NULL, 0,
      "largest payload or result accepted, in bytes" },
    { "max_tasks", PLG_CONFIG_INTEGER, 0, "0", "0", NULL, NULL, 0,
      "most tasks held at once in any state; 0: no limit" },
};

static const char *const pmemi_capabilities_list[] = {
    "tasks", "results", "subscriptions", "dead-letter", "batch", "stats", "retention",
    "thread-safe",
};

static plg_result pmemi_plugin_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL; /* nothing is shared between stores */
    return PLG_OK;
}

static void pmemi_plugin_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static const plg_descriptor pmemi_descriptor = {
    PLG_DESCRIPTOR_ABI_VERSION,
    (uint32_t)sizeof(plg_descriptor),
    PERS_PLUGIN_TYPE,
    "memory",
    PERS_MEMORY_VERSION_STRING,
    "in-memory reference backend of persistence.h (not durable)",
    pmemi_capabilities_list,
    sizeof pmemi_capabilities_list / sizeof pmemi_capabilities_list[0],
    NULL,
    NULL,
    0,
    pmemi_schema,
    sizeof pmemi_schema / sizeof pmemi_schema[0],
    0,
    pmemi_plugin_init,
    NULL,
    NULL,
    pmemi_plugin_shutdown,
    NULL,
    { PERS_INTERFACE_ID, PERS_BACKEND_ABI_VERSION, (uint32_t)sizeof(pers_backend_vtable),
      &pmemi_vtable },
    NULL,
};

PMEMI_DEF const pers_backend_vtable *pers_memory_vtable(void)
{
    return &pmemi_vtable;
}

PMEMI_DEF const plg_descriptor *pers_memory_descriptor(void)
{
    return &pmemi_descriptor;
}

PMEMI_DEF const plg_config_key *pers_memory_config_schema(size_t *count)
{
    if (count != NULL)
        *count = sizeof pmemi_schema / sizeof pmemi_schema[0];
    return pmemi_schema;
}

PMEMI_DEF pers_result pers_memory_register(plg_registry *reg)
{
    return pers_register_backend(reg, &pmemi_descriptor);
}

#ifdef __cplusplus
}
#endif

#endif /* PERSISTENCE_MEMORY_IMPLEMENTATION */

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
