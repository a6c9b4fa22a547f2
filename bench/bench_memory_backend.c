/* The in-memory backend (backends/memory.h) under a steady task load, and the cost of the store
   handle (persistence.h) in front of it.

   1. Throughput. The queue is first filled to a depth of 1,000, 100,000 or 1,000,000 ready
      tasks; then each cycle enqueues one task, claims one (the oldest: equal priorities are
      FIFO, S3) and completes it, so the depth stays constant. A task costs its whole life:
      enqueue + claim + complete + freeing the claimed copy + its share of the retention
      cleanup that removes the completed tasks every 1,000 cycles (cleanup_tasks; without it
      the finished tasks would pile up and the run would measure page faults). Run with 1
      thread, then with 2 threads sharing the store (each its own cycles; the backend
      serialises them with its one mutex, so 2 threads measure contention, not a speed-up).
      Target: the cost per task at 1,000,000 within 3x of the cost at 1,000 (claim and enqueue
      are O(log n)).
   2. The store handle. The memory backend is called through a store (pers_enqueue,
      pers_claim, ...) and straight through its vtable (vt->enqueue(backend, ...)), alternately,
      on the same operations. Each way has its own instance, filled alike: the one behind the
      store is opened by the store, with PERS_OPEN_VALIDATED, and leaves the argument checks to
      it; the one called directly is opened without that flag, as any direct caller of the
      vtable gets it, and checks every argument itself. So the ratio is what the store costs a
      caller over calling the backend on its own: the enqueue + claim + complete cycle at depth 1,000 (target: under
      1.2x), and three cheap operations that show the store's fixed cost per call, where the
      backend does almost nothing: health (no backend work at all), queue_stats (a lock and a
      hash lookup) and get_task of a missing id (an error path: both the backend and the store
      write a message).

   The clock is fixed (every "now" is the same instant), so leases never expire and time plays no
   part. Every figure is the best of 3 rounds, to shed the noise of a shared machine; in part 2
   each round alternates short blocks of the two ways of calling, so both meet the same load. */
#define _POSIX_C_SOURCE 200112L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#include "backends/memory.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 3
#define CYCLES 200000u        /* cycles per round of the throughput table (split among threads) */
#define PREFILL_BATCH 1000u
#define CLEANUP_EVERY 1000u   /* cycles between two retention cleanups (timed) */
#define FIXED_NOW INT64_C(1700000000000)

static const char *const queue_names[] = { "jobs" };
#define PAYLOAD "0123456789abcdef"
#define RESULT "done-ok!"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int64_t fixed_clock(void *user)
{
    (void)user;
    return FIXED_NOW;
}

static void die(const char *what, pers_result rc, const char *message)
{
    fprintf(stderr, "bench_memory_backend: %s: %s: %s\n", what, pers_result_string(rc), message);
    exit(1);
}

/* ---------------------------------------------------------------------------------------------
   A store whose backend handle we also hold: the memory vtable with open_store wrapped so that
   it hands us the backend it creates. Every other method is the memory backend's own.
   ------------------------------------------------------------------------------------------- */

static pers_backend_vtable shim_vtable;
static void *captured_backend;
static int strip_validated; /* open the backend as a direct caller would, checking everything */

static pers_result shim_open_store(const plg_config *config, const pers_open_args *args,
                                   void **backend, pers_detail *detail)
{
    pers_open_args a = *args;
    pers_result rc;
    if (strip_validated)
        a.flags &= ~PERS_OPEN_VALIDATED;
    rc = pers_memory_vtable()->open_store(config, &a, backend, detail);
    if (rc == PERS_OK)
        captured_backend = *backend;
    return rc;
}

static pers_store *open_store_as(void **backend, int for_direct_calls)
{
    pers_store_desc desc;
    pers_store *store = NULL;
    char why[512];
    pers_result rc;
    shim_vtable = *pers_memory_vtable();
    shim_vtable.open_store = shim_open_store;
    memset(&desc, 0, sizeof desc);
    desc.clock.now_ms = fixed_clock;
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    captured_backend = NULL;
    strip_validated = for_direct_calls;
    rc = pers_open_vtable(&shim_vtable, NULL, &desc, &store);
    if (rc != PERS_OK)
        die("open", rc, why);
    *backend = captured_backend;
    return store;
}

static pers_store *open_store(void **backend)
{
    return open_store_as(backend, 0);
}

static pers_enqueue_req make_enqueue(void)
{
    pers_enqueue_req r;
    memset(&r, 0, sizeof r);
    r.tenant = "bench";
    r.queue = "jobs";
    r.payload = PAYLOAD;
    r.payload_len = sizeof PAYLOAD - 1;
    return r;
}

static pers_claim_req make_claim(const char *worker_id)
{
    pers_claim_req c;
    memset(&c, 0, sizeof c);
    c.tenant = "bench";
    c.queues = queue_names;
    c.queue_count = 1;
    c.worker_id = worker_id;
    c.lease_ms = 60000;
    c.max_tasks = 1;
    return c;
}

/* Enqueues until the queue holds `depth` ready tasks (it holds `have`). */
static void fill_to(pers_store *store, size_t have, size_t depth)
{
    static pers_enqueue_req reqs[PREFILL_BATCH];
    static pers_enqueue_res res[PREFILL_BATCH];
    size_t i;
    for (i = 0; i < PREFILL_BATCH; i++)
        reqs[i] = make_enqueue();
    while (have < depth) {
        size_t n = depth - have < PREFILL_BATCH ? depth - have : PREFILL_BATCH;
        pers_result rc = pers_enqueue_batch(store, reqs, n, res);
        if (rc != PERS_OK)
            die("prefill", rc, pers_errmsg(store));
        have += n;
    }
}

/* Removes every completed task of the tenant (finished at or before now - 0). */
static pers_cleanup_req make_cleanup(void)
{
    pers_cleanup_req c;
    memset(&c, 0, sizeof c);
    c.tenant = "bench";
    return c;
}

static void cleanup(pers_store *store)
{
    pers_cleanup_req c = make_cleanup();
    pers_result rc;
    if ((rc = pers_cleanup_tasks(store, &c, NULL)) != PERS_OK)
        die("cleanup_tasks", rc, pers_errmsg(store));
}

static void check_depth(pers_store *store, size_t depth)
{
    pers_stats st;
    pers_result rc = pers_queue_stats(store, "bench", "jobs", &st);
    if (rc != PERS_OK)
        die("queue_stats", rc, pers_errmsg(store));
    if (st.ready != depth || st.leased != 0) {
        fprintf(stderr, "bench_memory_backend: depth %lu expected, %llu ready and %llu leased\n",
                (unsigned long)depth, (unsigned long long)st.ready,
                (unsigned long long)st.leased);
        exit(1);
    }
}

/* ---------------------------------------------------------------------------------------------
   The cycle: enqueue one, claim one, complete it, free the claimed copy; every CLEANUP_EVERY
   cycles, remove the completed tasks
   ------------------------------------------------------------------------------------------- */

static void cycles_store(pers_store *store, const char *worker_id, unsigned n)
{
    pers_enqueue_req req = make_enqueue();
    pers_claim_req claim = make_claim(worker_id);
    pers_enqueue_res eres;
    pers_claim_res cres;
    pers_completion done;
    pers_task task;
    pers_lease lease;
    pers_result rc;
    unsigned i;
    memset(&done, 0, sizeof done);
    done.data = RESULT;
    done.data_len = sizeof RESULT - 1;
    for (i = 0; i < n; i++) {
        if ((rc = pers_enqueue(store, &req, &eres)) != PERS_OK)
            die("enqueue", rc, pers_errmsg(store));
        if ((rc = pers_claim(store, &claim, &task, &cres)) != PERS_OK || cres.count != 1)
            die("claim", rc, rc != PERS_OK ? pers_errmsg(store) : "no task");
        lease.tenant = task.tenant;
        lease.task_id = task.id;
        lease.token = task.lease_token;
        if ((rc = pers_complete(store, &lease, &done)) != PERS_OK)
            die("complete", rc, pers_errmsg(store));
        pers_task_free(store, &task);
        if ((i + 1) % CLEANUP_EVERY == 0)
            cleanup(store);
    }
}

/* The same through the vtable; the backend generates the ids (the store generates them). */
static void cycles_direct(const pers_backend_vtable *vt, void *backend, const char *worker_id,
                          unsigned n)
{
    pers_enqueue_req req = make_enqueue();
    pers_claim_req claim = make_claim(worker_id);
    pers_enqueue_res eres;
    pers_claim_res cres;
    pers_completion done;
    pers_task task;
    pers_lease lease;
    pers_cleanup_req clean = make_cleanup();
    size_t removed;
    pers_detail d;
    pers_result rc;
    unsigned i;
    memset(&done, 0, sizeof done);
    done.data = RESULT;
    done.data_len = sizeof RESULT - 1;
    d.native_code = 0;
    d.text[0] = '\0';
    for (i = 0; i < n; i++) {
        if ((rc = vt->enqueue(backend, &req, &eres, &d)) != PERS_OK)
            die("direct enqueue", rc, d.text);
        if ((rc = vt->claim(backend, &claim, &task, &cres, &d)) != PERS_OK || cres.count != 1)
            die("direct claim", rc, rc != PERS_OK ? d.text : "no task");
        lease.tenant = task.tenant;
        lease.task_id = task.id;
        lease.token = task.lease_token;
        if ((rc = vt->complete(backend, &lease, &done, &d)) != PERS_OK)
            die("direct complete", rc, d.text);
        pers_task_clear(NULL, &task);
        if ((i + 1) % CLEANUP_EVERY == 0 &&
            (rc = vt->cleanup_tasks(backend, &clean, &removed, &d)) != PERS_OK)
            die("direct cleanup_tasks", rc, d.text);
    }
}

typedef struct worker {
    pers_store *store;
    const char *worker_id;
    unsigned cycles;
    const int *go;
} worker;

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    while (!__atomic_load_n(w->go, __ATOMIC_ACQUIRE))
        ;
    cycles_store(w->store, w->worker_id, w->cycles);
    return NULL;
}

/* ns per task of `total` cycles split among `threads` threads. */
static double run_cycles(pers_store *store, unsigned threads, unsigned total)
{
    static const char *const ids[] = { "worker-1", "worker-2" };
    pthread_t tid[2];
    worker w[2];
    int go = 0;
    unsigned t;
    double t0, t1;
    if (threads == 1) {
        t0 = now_ns();
        cycles_store(store, ids[0], total);
        t1 = now_ns();
        return (t1 - t0) / total;
    }
    for (t = 0; t < threads; t++) {
        w[t].store = store;
        w[t].worker_id = ids[t];
        w[t].cycles = total / threads;
        w[t].go = &go;
        if (pthread_create(&tid[t], NULL, worker_main, &w[t]) != 0) {
            fprintf(stderr, "bench_memory_backend: pthread_create failed\n");
            exit(1);
        }
    }
    t0 = now_ns();
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    t1 = now_ns();
    return (t1 - t0) / (double)(total / threads * threads);
}

/* ---------------------------------------------------------------------------------------------
   The store handle against direct calls: blocks of each, alternating, on the same backend
   ------------------------------------------------------------------------------------------- */

enum { OP_CYCLE, OP_HEALTH, OP_STATS, OP_MISSING, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
    "enqueue+claim+complete, depth 1k", "health", "queue_stats", "get_task (missing id)"
};
/* Calls per block and blocks per round: short blocks of the two ways, alternating, so that both
   meet the same background load of a shared machine. */
static const unsigned op_block[OP_COUNT] = { 2000, 20000, 20000, 20000 };
static const unsigned op_blocks[OP_COUNT] = { 100, 50, 50, 50 };

static void cheap_store(pers_store *store, int op, unsigned n)
{
    pers_stats st;
    pers_task task;
    pers_result rc, want = op == OP_MISSING ? PERS_ERR_NOT_FOUND : PERS_OK;
    unsigned i;
    for (i = 0; i < n; i++) {
        if (op == OP_HEALTH)
            rc = pers_health(store);
        else if (op == OP_STATS)
            rc = pers_queue_stats(store, "bench", "jobs", &st);
        else
            rc = pers_get_task(store, "bench", "no-such-task", &task);
        if (rc != want)
            die(op_names[op], rc, pers_errmsg(store));
    }
}

static void cheap_direct(const pers_backend_vtable *vt, void *backend, int op, unsigned n)
{
    pers_stats st;
    pers_task task;
    pers_detail d;
    pers_result rc, want = op == OP_MISSING ? PERS_ERR_NOT_FOUND : PERS_OK;
    unsigned i;
    d.native_code = 0;
    d.text[0] = '\0';
    for (i = 0; i < n; i++) {
        if (op == OP_HEALTH)
            rc = vt->health(backend, &d);
        else if (op == OP_STATS)
            rc = vt->queue_stats(backend, "bench", "jobs", &st, &d);
        else
            rc = vt->get_task(backend, "bench", "no-such-task", &task, &d);
        if (rc != want)
            die(op_names[op], rc, d.text);
    }
}

/* ns of one block of n calls of op, through the store or direct. */
static double timed_block(pers_store *store, const pers_backend_vtable *vt, void *backend,
                          int op, int direct, unsigned n)
{
    double t0 = now_ns();
    if (op == OP_CYCLE && direct)
        cycles_direct(vt, backend, "worker-1", n);
    else if (op == OP_CYCLE)
        cycles_store(store, "worker-1", n);
    else if (direct)
        cheap_direct(vt, backend, op, n);
    else
        cheap_store(store, op, n);
    return now_ns() - t0;
}

static double min2(double a, double b)
{
    return a < b ? a : b;
}

int main(void)
{
    static const size_t depths[] = { 1000, 100000, 1000000 };
    enum { NDEPTH = sizeof depths / sizeof depths[0] };
    double cost[NDEPTH][2], via_store[OP_COUNT], direct[OP_COUNT];
    double start = now_ns();
    const pers_backend_vtable *vt = pers_memory_vtable();
    pers_store *store, *direct_store, *stores[NDEPTH];
    void *backend;
    size_t d;
    unsigned threads, round;
    int op, ok_depth[2], ok_overhead;

    /* 1. Throughput by depth: one store per depth, filled first; each round then measures
       every depth and thread count in turn, so that the figures compared share the
       machine's background load. */
    printf("memory backend, enqueue + claim + complete through the store handle\n"
           "(best of %d rounds of %u cycles; fixed clock; %u-byte payloads, %u-byte results;\n"
           "completed tasks removed every %u cycles, included)\n",
           ROUNDS, CYCLES, (unsigned)sizeof PAYLOAD - 1, (unsigned)sizeof RESULT - 1,
           CLEANUP_EVERY);
    for (d = 0; d < NDEPTH; d++) {
        stores[d] = open_store(&backend);
        fill_to(stores[d], 0, depths[d]);
        cost[d][0] = cost[d][1] = 1e30;
    }
    for (round = 0; round < ROUNDS; round++)
        for (d = 0; d < NDEPTH; d++)
            for (threads = 1; threads <= 2; threads++) {
                check_depth(stores[d], depths[d]);
                cost[d][threads - 1] =
                    min2(cost[d][threads - 1], run_cycles(stores[d], threads, CYCLES));
                cleanup(stores[d]);
            }
    printf("%-11s %-8s %12s %12s %16s\n", "depth", "threads", "ns per task", "tasks/s",
           "vs depth 1,000");
    for (d = 0; d < NDEPTH; d++) {
        check_depth(stores[d], depths[d]);
        pers_destroy(stores[d]);
        for (threads = 1; threads <= 2; threads++)
            printf("%-11lu %-8u %12.0f %12.0f %15.2fx\n", (unsigned long)depths[d], threads,
                   cost[d][threads - 1], 1e9 / cost[d][threads - 1],
                   cost[d][threads - 1] / cost[0][threads - 1]);
    }
    for (threads = 1; threads <= 2; threads++) {
        double r = cost[NDEPTH - 1][threads - 1] / cost[0][threads - 1];
        ok_depth[threads - 1] = r <= 3.0;
        printf("cost per task at depth 1,000,000 / at 1,000, %u thread%s: %.2fx (target <= 3x): "
               "%s\n",
               threads, threads > 1 ? "s" : "", r, ok_depth[threads - 1] ? "met" : "NOT MET");
    }
    printf("2 threads share one store: the backend's mutex serialises them, so their tasks/s "
           "is the\nthroughput under contention, not a parallel speed-up.\n\n");

    /* 2. The store handle against direct vtable calls, each on its instance at depth 1,000. */
    store = open_store(&backend);
    fill_to(store, 0, 1000);
    direct_store = open_store_as(&backend, 1); /* backend: the instance called directly */
    fill_to(direct_store, 0, 1000);
    for (op = 0; op < OP_COUNT; op++) {
        via_store[op] = direct[op] = 1e30;
        for (round = 0; round < ROUNDS; round++) {
            double sum_store = 0, sum_direct = 0, calls = (double)op_block[op] * op_blocks[op];
            unsigned b;
            for (b = 0; b < op_blocks[op]; b++) { /* alternate which goes first, too */
                int first_direct = (int)(b & 1u);
                double first = timed_block(store, vt, backend, op, first_direct, op_block[op]);
                double second = timed_block(store, vt, backend, op, !first_direct, op_block[op]);
                sum_direct += first_direct ? first : second;
                sum_store += first_direct ? second : first;
            }
            via_store[op] = min2(via_store[op], sum_store / calls);
            direct[op] = min2(direct[op], sum_direct / calls);
        }
    }
    check_depth(store, 1000);
    check_depth(direct_store, 1000);
    pers_destroy(store);
    pers_destroy(direct_store);

    printf("store handle vs the backend's vtable called directly (two instances at depth 1,000, "
           "same run,\nbest of %d; behind the store the backend leaves the argument checks to "
           "it, PERS_OPEN_VALIDATED)\n", ROUNDS);
    printf("%-32s %10s %10s %8s %12s\n", "operation", "store ns", "direct ns", "ratio",
           "store adds");
    for (op = 0; op < OP_COUNT; op++)
        printf("%-32s %10.1f %10.1f %7.2fx %9.1f ns\n", op_names[op], via_store[op], direct[op],
               via_store[op] / direct[op], via_store[op] - direct[op]);
    ok_overhead = via_store[OP_CYCLE] / direct[OP_CYCLE] < 1.2;
    printf("ratio = store ns / direct ns. The cycle is what a worker pays per task: its ratio is "
           "the\nstore's share of real work (target < 1.2x): %.2fx, %s. The cheap operations show "
           "the\nstore's fixed cost per call (\"store adds\": validating every argument before "
           "the backend,\ncounting the call in flight for pers_close, keeping the per-thread "
           "error message); they\nhave no target: health does no backend work at all, so its "
           "ratio is large by design, and\nget_task of a missing id is an error path on which "
           "both the backend and the store format\na message.\n",
           via_store[OP_CYCLE] / direct[OP_CYCLE], ok_overhead ? "met" : "NOT MET");
    printf("total time %.1f s\n", (now_ns() - start) / 1e9);
    return 0;
}
