/* Unit tests of backends/memory.h, through the store handle, on a fake clock (no test sleeps).

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/unit/test_memory_backend.c -o /tmp/mem_test \
         -pthread -lm && /tmp/mem_test
   The threaded case is meant to be run under ThreadSanitizer too (clang -fsanitize=thread). */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#include "backends/memory.h"
#include "tests/test.h"

#include <pthread.h>

/* ---------------------------------------------------------------------------------------------
   Fixtures
   ------------------------------------------------------------------------------------------- */

typedef struct fake_clock {
    int64_t now;
} fake_clock;

static int64_t fake_now(void *user)
{
    return __atomic_load_n(&((fake_clock *)user)->now, __ATOMIC_SEQ_CST);
}

static void advance(fake_clock *c, int64_t ms)
{
    __atomic_add_fetch(&c->now, ms, __ATOMIC_SEQ_CST);
}

#define T0 INT64_C(1700000000000)

/* A store on the memory backend without a registry: pers_open_vtable. */
static pers_store *open_mem(fake_clock *clock)
{
    pers_store_desc desc;
    pers_store *s = NULL;
    char why[512];
    clock->now = T0;
    memset(&desc, 0, sizeof desc);
    desc.clock.now_ms = fake_now;
    desc.clock.user = clock;
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    if (pers_open_vtable(pers_memory_vtable(), NULL, &desc, &s) != PERS_OK)
        printf("    open_mem: %s\n", why);
    return s;
}

static pers_enqueue_req make_req(const char *tenant, const char *queue, const char *payload)
{
    pers_enqueue_req r;
    memset(&r, 0, sizeof r);
    r.tenant = tenant;
    r.queue = queue;
    r.payload = payload;
    r.payload_len = payload != NULL ? strlen(payload) : 0;
    return r;
}

/* Enqueues a text payload; the id goes to id_out (may be NULL). */
static pers_result enq(pers_store *s, const char *tenant, const char *queue, const char *payload,
                       int32_t priority, int64_t delay_ms, char *id_out)
{
    pers_enqueue_req r = make_req(tenant, queue, payload);
    pers_enqueue_res res;
    pers_result rc;
    r.priority = priority;
    r.delay_ms = delay_ms;
    rc = pers_enqueue(s, &r, &res);
    if (id_out != NULL)
        strcpy(id_out, rc == PERS_OK ? res.task_id : "");
    return rc;
}

static pers_claim_req make_claim(const char *tenant, const char *const *queues, size_t nq,
                                 const char *worker, int64_t lease_ms, size_t max)
{
    pers_claim_req c;
    memset(&c, 0, sizeof c);
    c.tenant = tenant;
    c.queues = queues;
    c.queue_count = nq;
    c.worker_id = worker;
    c.lease_ms = lease_ms;
    c.max_tasks = max;
    return c;
}

/* Claims at most one task of one queue; returns the count (0 or 1), -1 on error. */
static int claim1(pers_store *s, const char *tenant, const char *queue, const char *worker,
                  int64_t lease_ms, pers_task *task, int64_t *next_due)
{
    const char *queues[1];
    pers_claim_req c;
    pers_claim_res res;
    queues[0] = queue;
    c = make_claim(tenant, queues, 1, worker, lease_ms, 1);
    if (pers_claim(s, &c, task, &res) != PERS_OK) {
        printf("    claim: %s\n", pers_errmsg(s));
        return -1;
    }
    if (next_due != NULL)
        *next_due = res.next_due_ms;
    return (int)res.count;
}

static pers_lease lease_of(const pers_task *t)
{
    pers_lease l;
    l.tenant = t->tenant;
    l.task_id = t->id;
    l.token = t->lease_token;
    return l;
}

static pers_lease make_lease(const char *tenant, const char *id, uint64_t token)
{
    pers_lease l;
    l.tenant = tenant;
    l.task_id = id;
    l.token = token;
    return l;
}

static pers_completion done_with(const char *text, int failed)
{
    pers_completion c;
    c.failed = failed;
    c.data = text;
    c.data_len = text != NULL ? strlen(text) : 0;
    return c;
}

static pers_stats stats_of(pers_store *s, const char *tenant, const char *queue)
{
    pers_stats st;
    memset(&st, 0, sizeof st);
    if (pers_queue_stats(s, tenant, queue, &st) != PERS_OK)
        printf("    stats: %s\n", pers_errmsg(s));
    return st;
}

static pers_task_state state_of(pers_store *s, const char *tenant, const char *id)
{
    pers_task t;
    pers_task_state st = (pers_task_state)0;
    if (pers_get_task(s, tenant, id, &t) == PERS_OK) {
        st = t.state;
        pers_task_free(s, &t);
    }
    return st;
}

#define CHECK_STATS(st, sch, rdy, lsd, cmp, fld, ded)                                              \
    do {                                                                                           \
        CHECK_INT((st).scheduled, sch);                                                            \
        CHECK_INT((st).ready, rdy);                                                                \
        CHECK_INT((st).leased, lsd);                                                               \
        CHECK_INT((st).completed, cmp);                                                            \
        CHECK_INT((st).failed, fld);                                                               \
        CHECK_INT((st).dead, ded);                                                                 \
    } while (0)

/* ---------------------------------------------------------------------------------------------
   Payloads
   ------------------------------------------------------------------------------------------- */

TEST(payload_round_trip)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    static const char binary[] = { 'a', 0, 'b', 0, 0, '\xff', 'c' };
    size_t big = 1048576, i;
    unsigned char *mib = (unsigned char *)malloc(big + 1);
    pers_enqueue_req r;
    pers_enqueue_res res;
    pers_task t;
    char id_empty[PERS_ID_MAX + 1], id_bin[PERS_ID_MAX + 1];

    for (i = 0; i <= big; i++)
        mib[i] = (unsigned char)(i * 131u + 7u);
    r = make_req("acme", "q", NULL);
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    strcpy(id_empty, res.task_id);
    r.payload = binary;
    r.payload_len = sizeof binary;
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    strcpy(id_bin, res.task_id);
    r.payload = mib;
    r.payload_len = big;
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    r.payload_len = big + 1;
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_ERR_TOO_LARGE);
    CHECK_CONTAINS(pers_errmsg(s), "1048577");

    /* get_task keeps the bytes and adds a NUL after them (S11) */
    CHECK_INT(pers_get_task(s, "acme", id_bin, &t), PERS_OK);
    CHECK_INT(t.payload_len, sizeof binary);
    CHECK(t.payload != NULL && memcmp(t.payload, binary, sizeof binary) == 0);
    CHECK(((const char *)t.payload)[sizeof binary] == '\0');
    pers_task_free(s, &t);

    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_STR(t.id, id_empty);
    CHECK_INT(t.payload_len, 0);
    CHECK(t.payload != NULL && ((const char *)t.payload)[0] == '\0');
    pers_task_free(s, &t);
    CHECK(t.payload == NULL);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_INT(t.payload_len, sizeof binary);
    CHECK(memcmp(t.payload, binary, sizeof binary) == 0);
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_INT(t.payload_len, big);
    CHECK(t.payload != NULL && memcmp(t.payload, mib, big) == 0);
    {
        /* a 1 MiB binary result too */
        pers_lease l = lease_of(&t);
        pers_completion c;
        pers_task_result out;
        c.failed = 0;
        c.data = mib;
        c.data_len = big;
        CHECK_INT(pers_complete(s, &l, &c), PERS_OK);
        CHECK_INT(pers_get_result(s, "acme", t.id, &out), PERS_OK);
        CHECK_INT(out.data_len, big);
        CHECK(out.data != NULL && memcmp(out.data, mib, big) == 0);
        CHECK_INT(out.state, PERS_STATE_COMPLETED);
        pers_task_result_free(s, &out);
    }
    pers_task_free(s, &t);
    free(mib);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Order
   ------------------------------------------------------------------------------------------- */

TEST(priority_then_fifo)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    /* payload names the expected claim position */
    static const struct {
        const char *payload;
        int32_t priority;
    } in[] = {
        { "4", 0 }, { "1", 10 }, { "6", -5 }, { "2", 10 }, { "5", 0 }, { "0", PERS_PRIORITY_MAX },
        { "3", 1 }, { "7", PERS_PRIORITY_MIN },
    };
    size_t i, n = sizeof in / sizeof in[0];
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 3);
    pers_claim_res res;
    pers_task tasks[3];
    size_t seen = 0;

    for (i = 0; i < n; i++)
        CHECK_INT(enq(s, "acme", "q", in[i].payload, in[i].priority, 0, NULL), PERS_OK);
    while (seen < n) {
        CHECK_INT(pers_claim(s, &c, tasks, &res), PERS_OK);
        if (res.count == 0)
            break;
        for (i = 0; i < res.count; i++) {
            char expect[24];
            snprintf(expect, sizeof expect, "%lu", (unsigned long)seen);
            CHECK_STR((const char *)tasks[i].payload, expect);
            seen++;
        }
        pers_tasks_free(s, tasks, res.count);
    }
    CHECK_INT(seen, n);
    /* out-of-range priorities are refused before the backend */
    CHECK_INT(enq(s, "acme", "q", "x", PERS_PRIORITY_MAX + 1, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "priority");
    pers_destroy(s);
}

TEST(claim_walks_queues_in_order)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    const char *queues[3] = { "high", "missing", "low" };
    pers_claim_req c = make_claim("acme", queues, 3, "w", 1000, 4);
    pers_claim_res res;
    pers_task tasks[4];

    CHECK_INT(enq(s, "acme", "low", "l1", 100, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "low", "l2", 0, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "high", "h1", -100, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "high", "h2", -100, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "low", "l3", 0, 0, NULL), PERS_OK);
    CHECK_INT(pers_claim(s, &c, tasks, &res), PERS_OK);
    CHECK_INT(res.count, 4);
    CHECK_STR((const char *)tasks[0].payload, "h1");
    CHECK_STR((const char *)tasks[1].payload, "h2");
    CHECK_STR((const char *)tasks[2].payload, "l1");
    CHECK_STR((const char *)tasks[3].payload, "l2");
    CHECK_STR(tasks[2].queue, "low");
    CHECK_INT(res.next_due_ms, PERS_NO_TIME);
    /* tokens strictly increase, one per task */
    CHECK(tasks[0].lease_token > 0);
    CHECK(tasks[1].lease_token > tasks[0].lease_token);
    CHECK(tasks[2].lease_token > tasks[1].lease_token);
    CHECK(tasks[3].lease_token > tasks[2].lease_token);
    pers_tasks_free(s, tasks, res.count);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Delays
   ------------------------------------------------------------------------------------------- */

TEST(delayed_tasks_hidden_until_due)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t;
    int64_t next = 0;
    pers_enqueue_req r;
    char id[PERS_ID_MAX + 1];
    const char *queues[2] = { "a", "b" };
    pers_claim_req c = make_claim("acme", queues, 2, "w", 1000, 1);
    pers_claim_res res;

    CHECK_INT(enq(s, "acme", "a", "later", 0, 5000, id), PERS_OK);
    r = make_req("acme", "b", "at");
    r.run_at_ms = T0 + 3000;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(state_of(s, "acme", id), PERS_STATE_SCHEDULED);
    CHECK_STATS(stats_of(s, "acme", "a"), 1, 0, 0, 0, 0, 0);

    /* nothing ready: the earliest due time of the claimed queues */
    CHECK_INT(pers_claim(s, &c, &t, &res), PERS_OK);
    CHECK_INT(res.count, 0);
    CHECK_INT(res.next_due_ms, T0 + 3000);
    CHECK_INT(claim1(s, "acme", "a", "w", 1000, &t, &next), 0);
    CHECK_INT(next, T0 + 5000);
    CHECK_INT(claim1(s, "acme", "empty", "w", 1000, &t, &next), 0);
    CHECK_INT(next, PERS_NO_TIME);

    advance(&clock, 2999);
    CHECK_INT(pers_claim(s, &c, &t, &res), PERS_OK);
    CHECK_INT(res.count, 0);
    advance(&clock, 1); /* due at T0 + 3000: ready at that instant */
    CHECK_INT(pers_claim(s, &c, &t, &res), PERS_OK);
    CHECK_INT(res.count, 1);
    CHECK_STR((const char *)t.payload, "at");
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "a", "w", 1000, &t, &next), 0);
    CHECK_INT(next, T0 + 5000);
    advance(&clock, 2000);
    CHECK_INT(state_of(s, "acme", id), PERS_STATE_READY);
    CHECK_STATS(stats_of(s, "acme", "a"), 0, 1, 0, 0, 0, 0);
    CHECK_INT(claim1(s, "acme", "a", "w", 1000, &t, &next), 1);
    CHECK_STR(t.id, id);
    CHECK_INT(t.due_ms, T0 + 5000);
    pers_task_free(s, &t);

    /* delay and run_at together are refused */
    r.delay_ms = 10;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    /* a run_at in the past is simply ready */
    r.delay_ms = 0;
    r.run_at_ms = T0 - 1000;
    r.queue = "past";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "past", "w", 1000, &t, NULL), 1);
    pers_task_free(s, &t);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Leases
   ------------------------------------------------------------------------------------------- */

TEST(lease_extend_good_and_stale_tokens)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t, t2;
    pers_lease l, stale;
    int64_t expires = 0;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w1", 1000, &t, NULL), 1);
    CHECK_INT(t.lease_expires_ms, T0 + 1000);
    CHECK_INT(t.attempts, 1);
    CHECK_STR(t.worker_id, "w1");
    l = lease_of(&t);
    advance(&clock, 900);
    CHECK_INT(pers_extend_lease(s, &l, 1000, &expires), PERS_OK);
    CHECK_INT(expires, T0 + 1900);
    advance(&clock, 500); /* past the original expiry, within the extension */
    CHECK_INT(state_of(s, "acme", t.id), PERS_STATE_LEASED);
    CHECK_INT(claim1(s, "acme", "q", "w2", 1000, &t2, NULL), 0);
    stale = l;
    stale.token = l.token + 1;
    CHECK_INT(pers_extend_lease(s, &stale, 1000, &expires), PERS_ERR_LEASE_LOST);
    CHECK_CONTAINS(pers_errmsg(s), "extend_lease");
    stale.token = l.token - 1 == 0 ? 99 : l.token - 1;
    CHECK_INT(pers_extend_lease(s, &stale, 1000, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_extend_lease(s, &l, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_extend_lease(s, &l, -5, NULL), PERS_ERR_INVALID_ARGUMENT);
    /* nothing changed: the live lease still works */
    CHECK_INT(pers_extend_lease(s, &l, 100, &expires), PERS_OK);
    CHECK_INT(expires, T0 + 1500);
    pers_task_free(s, &t);
    pers_destroy(s);
}

TEST(expiry_reclaim_old_holder_loses_everything)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task a, b;
    pers_lease old_lease;
    pers_completion c = done_with("late", 0);
    pers_task_state st;
    pers_task_result res;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w1", 1000, &a, NULL), 1);
    old_lease = lease_of(&a);
    advance(&clock, 999);
    CHECK_INT(claim1(s, "acme", "q", "w2", 1000, &b, NULL), 0);
    advance(&clock, 1); /* now == expiry: the lease is over (S4) */
    CHECK_INT(claim1(s, "acme", "q", "w2", 1000, &b, NULL), 1);
    CHECK_STR(b.id, a.id);
    CHECK(b.lease_token > a.lease_token);
    CHECK_INT(b.attempts, 2); /* the expiry counted as a failed attempt, the claim as one more */
    CHECK_STR(b.last_error, "lease expired");
    CHECK_STR(b.worker_id, "w2");

    CHECK_INT(pers_extend_lease(s, &old_lease, 1000, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_abandon(s, &old_lease), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_nack(s, &old_lease, 0, "old", &st), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_complete(s, &old_lease, &c), PERS_ERR_LEASE_LOST);
    /* the new holder is untouched */
    CHECK_INT(state_of(s, "acme", b.id), PERS_STATE_LEASED);
    {
        pers_lease nl = lease_of(&b);
        pers_completion mine = done_with("mine", 0);
        CHECK_INT(pers_complete(s, &nl, &mine), PERS_OK);
    }
    CHECK_INT(pers_complete(s, &old_lease, &c), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_get_result(s, "acme", b.id, &res), PERS_OK);
    CHECK_STR((const char *)res.data, "mine");
    CHECK_INT(res.attempts, 2);
    pers_task_result_free(s, &res);
    pers_task_free(s, &a);
    pers_task_free(s, &b);
    pers_destroy(s);
}

TEST(expiry_applies_without_a_reclaiming_claim)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task a, t;
    pers_lease l;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w1", 1000, &a, NULL), 1);
    l = lease_of(&a);
    advance(&clock, 5000);
    /* nobody claimed again; the holder still lost the lease at its expiry */
    CHECK_INT(pers_complete(s, &l, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_get_task(s, "acme", a.id, &t), PERS_OK);
    CHECK_INT(t.state, PERS_STATE_READY);
    CHECK_INT(t.attempts, 1);
    CHECK_INT(t.due_ms, T0 + 1000); /* ready from the instant of expiry */
    CHECK_INT(t.lease_token, 0);    /* tokens are never shown outside claim */
    CHECK_STR(t.last_error, "lease expired");
    pers_task_free(s, &t);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 0, 0, 0, 0);
    pers_task_free(s, &a);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Retries and dead letters
   ------------------------------------------------------------------------------------------- */

TEST(nack_with_and_without_delay)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t;
    pers_lease l;
    pers_task_state st = (pers_task_state)0;
    int64_t next = 0;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    CHECK_INT(pers_nack(s, &l, 0, "boom", &st), PERS_OK);
    CHECK_INT(st, PERS_STATE_READY);
    CHECK_INT(pers_nack(s, &l, 0, "again", &st), PERS_ERR_LEASE_LOST);
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_INT(t.attempts, 2);
    CHECK_STR(t.last_error, "boom");
    l = lease_of(&t);
    CHECK_INT(pers_nack(s, &l, 2000, NULL, &st), PERS_OK);
    CHECK_INT(st, PERS_STATE_SCHEDULED);
    CHECK_INT(state_of(s, "acme", t.id), PERS_STATE_SCHEDULED);
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, &next), 0);
    CHECK_INT(next, T0 + 2000);
    advance(&clock, 2000);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_INT(t.attempts, 3);
    CHECK(t.last_error == NULL); /* a nack without a reason leaves none */
    pers_task_free(s, &t);
    /* a reason longer than PERS_REASON_MAX is refused */
    {
        char *longer = (char *)malloc(PERS_REASON_MAX + 2);
        memset(longer, 'r', PERS_REASON_MAX + 1);
        longer[PERS_REASON_MAX + 1] = '\0';
        CHECK_INT(pers_nack(s, &l, 0, longer, NULL), PERS_ERR_INVALID_ARGUMENT);
        free(longer);
    }
    pers_destroy(s);
}

TEST(dead_letter_at_max_attempts)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_enqueue_res res;
    pers_task t;
    pers_lease l;
    pers_task_state st;

    r.max_attempts = 2;
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_INT(t.max_attempts, 2);
    l = lease_of(&t);
    CHECK_INT(pers_nack(s, &l, 0, "first", &st), PERS_OK);
    CHECK_INT(st, PERS_STATE_READY);
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    advance(&clock, 10);
    CHECK_INT(pers_nack(s, &l, 5000, "second", &st), PERS_OK);
    CHECK_INT(st, PERS_STATE_DEAD); /* the retry delay does not matter any more */
    pers_task_free(s, &t);
    CHECK_INT(pers_get_task(s, "acme", res.task_id, &t), PERS_OK);
    CHECK_INT(t.state, PERS_STATE_DEAD);
    CHECK_STR(t.last_error, "second");
    CHECK_INT(t.finished_ms, T0 + 10);
    CHECK_INT(t.attempts, 2);
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 0);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 0, 0, 0, 0, 1);

    /* a lease expiry at the last attempt kills too, with its own reason */
    r.max_attempts = 1;
    r.payload = "y";
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    pers_task_free(s, &t);
    advance(&clock, 1000);
    CHECK_INT(pers_get_task(s, "acme", res.task_id, &t), PERS_OK);
    CHECK_INT(t.state, PERS_STATE_DEAD);
    CHECK_STR(t.last_error, "lease expired");
    CHECK_INT(t.finished_ms, T0 + 10 + 1000);
    pers_task_free(s, &t);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 0, 0, 0, 0, 2);
    /* dead tasks have no result (S12) */
    {
        pers_task_result out;
        CHECK_INT(pers_get_result(s, "acme", res.task_id, &out), PERS_ERR_NOT_FOUND);
    }
    pers_destroy(s);
}

TEST(abandon_gives_the_attempt_back)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_task t;
    pers_lease l;
    pers_task_state st;
    int i;

    r.max_attempts = 1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    for (i = 0; i < 5; i++) {
        CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
        CHECK_INT(t.attempts, 1);
        l = lease_of(&t);
        CHECK_INT(pers_abandon(s, &l), PERS_OK);
        CHECK_INT(pers_abandon(s, &l), PERS_ERR_LEASE_LOST);
        pers_task_free(s, &t); /* t.id stays readable: only the owned parts go */
        CHECK_INT(pers_get_task(s, "acme", t.id, &t), PERS_OK); /* out may alias the id */
        CHECK_INT(t.state, PERS_STATE_READY);
        CHECK_INT(t.attempts, 0);
        pers_task_free(s, &t);
    }
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    CHECK_INT(pers_nack(s, &l, 0, "now it counts", &st), PERS_OK);
    CHECK_INT(st, PERS_STATE_DEAD);
    pers_task_free(s, &t);
    pers_destroy(s);
}

TEST(list_and_requeue_dead)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req r = make_req("acme", "q", NULL);
    pers_enqueue_res res;
    char ids[5][PERS_ID_MAX + 1];
    pers_task t;
    pers_lease l;
    pers_list_req lr;
    pers_task_list list;
    int i;

    r.max_attempts = 1;
    for (i = 0; i < 5; i++) {
        char payload[16];
        snprintf(payload, sizeof payload, "p%d", i);
        r.payload = payload;
        r.payload_len = strlen(payload);
        CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
        strcpy(ids[i], res.task_id);
    }
    for (i = 0; i < 5; i++) {
        CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
        l = lease_of(&t);
        advance(&clock, 1);
        CHECK_INT(pers_nack(s, &l, 0, "bad", NULL), PERS_OK);
        pers_task_free(s, &t);
    }
    memset(&lr, 0, sizeof lr);
    lr.tenant = "acme";
    lr.queue = "q";
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_OK);
    CHECK_INT(list.count, 5);
    CHECK_INT(list.total, 5);
    for (i = 0; i < 5 && (size_t)i < list.count; i++) {
        CHECK_STR(list.items[i].id, ids[i]); /* in the order they died */
        CHECK_INT(list.items[i].state, PERS_STATE_DEAD);
        CHECK_STR(list.items[i].last_error, "bad");
        CHECK_INT(list.items[i].lease_token, 0);
    }
    pers_task_list_free(s, &list);
    CHECK(list.items == NULL && list.count == 0);
    lr.offset = 1;
    lr.limit = 2;
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_OK);
    CHECK_INT(list.count, 2);
    CHECK_INT(list.total, 5);
    if (list.count == 2) {
        CHECK_STR(list.items[0].id, ids[1]);
        CHECK_STR(list.items[1].id, ids[2]);
        CHECK_STR((const char *)list.items[1].payload, "p2");
    }
    pers_task_list_free(s, &list);
    lr.offset = 9;
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_OK);
    CHECK_INT(list.count, 0);
    CHECK(list.items == NULL);
    pers_task_list_free(s, &list);

    CHECK_INT(pers_requeue_dead(s, "acme", ids[3]), PERS_OK);
    CHECK_INT(pers_requeue_dead(s, "acme", ids[3]), PERS_ERR_INVALID_STATE);
    CHECK_INT(pers_requeue_dead(s, "acme", "no-such-task"), PERS_ERR_NOT_FOUND);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 0, 0, 0, 4);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    CHECK_STR(t.id, ids[3]);
    CHECK_INT(t.attempts, 1); /* requeue set it back to 0, the claim counted 1 */
    CHECK_INT(t.finished_ms, 0);
    l = lease_of(&t);
    CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    pers_task_free(s, &t);
    lr.offset = 0;
    lr.limit = 0;
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_OK);
    CHECK_INT(list.count, 4);
    pers_task_list_free(s, &list);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Completion
   ------------------------------------------------------------------------------------------- */

TEST(double_completion_keeps_the_first_result)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t;
    pers_lease l;
    pers_completion first = done_with("first", 0), second = done_with("second", 0);
    pers_completion failed = done_with("oops", 1);
    pers_task_result res;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    advance(&clock, 7);
    CHECK_INT(pers_complete(s, &l, &first), PERS_OK);
    CHECK_INT(pers_complete(s, &l, &second), PERS_ERR_ALREADY_COMPLETED);
    CHECK_CONTAINS(pers_errmsg(s), "first result is kept");
    CHECK_INT(pers_complete(s, &l, &failed), PERS_ERR_ALREADY_COMPLETED);
    CHECK_INT(pers_get_result(s, "acme", t.id, &res), PERS_OK);
    CHECK_STR((const char *)res.data, "first");
    CHECK_INT(res.state, PERS_STATE_COMPLETED);
    CHECK_INT(res.finished_ms, T0 + 7);
    CHECK_STR(res.queue, "q");
    pers_task_result_free(s, &res);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 0, 0, 1, 0, 0);
    pers_task_free(s, &t);
    pers_destroy(s);
}

TEST(operations_after_completion)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task a, b;
    pers_lease first, final_lease;
    pers_completion failed = done_with("it broke", 1);
    pers_task_result res;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &a, NULL), 1);
    first = lease_of(&a);
    CHECK_INT(pers_abandon(s, &first), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &b, NULL), 1);
    final_lease = lease_of(&b);
    CHECK_INT(pers_complete(s, &final_lease, &failed), PERS_OK);
    CHECK_INT(state_of(s, "acme", b.id), PERS_STATE_FAILED);
    /* with the finishing token: INVALID_STATE (S5 c) */
    CHECK_INT(pers_extend_lease(s, &final_lease, 1000, NULL), PERS_ERR_INVALID_STATE);
    CHECK_INT(pers_abandon(s, &final_lease), PERS_ERR_INVALID_STATE);
    CHECK_INT(pers_nack(s, &final_lease, 0, NULL, NULL), PERS_ERR_INVALID_STATE);
    CHECK_INT(pers_complete(s, &final_lease, NULL), PERS_ERR_ALREADY_COMPLETED);
    /* with an older token: LEASE_LOST (S5 d) */
    CHECK_INT(pers_extend_lease(s, &first, 1000, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_abandon(s, &first), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_nack(s, &first, 0, NULL, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_complete(s, &first, NULL), PERS_ERR_LEASE_LOST);
    CHECK_INT(pers_requeue_dead(s, "acme", b.id), PERS_ERR_INVALID_STATE);
    /* nothing of that changed the task or its error */
    CHECK_INT(pers_get_result(s, "acme", b.id, &res), PERS_OK);
    CHECK_INT(res.state, PERS_STATE_FAILED);
    CHECK_STR((const char *)res.data, "it broke");
    pers_task_result_free(s, &res);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 0, 0, 0, 1, 0);
    pers_task_free(s, &a);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &a, NULL), 0);
    pers_task_free(s, &b);
    pers_destroy(s);
}

TEST(result_not_found_before_completion)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    char id[PERS_ID_MAX + 1];
    pers_task_result res;
    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, id), PERS_OK);
    CHECK_INT(pers_get_result(s, "acme", id, &res), PERS_ERR_NOT_FOUND);
    CHECK(res.data == NULL);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Idempotency and ids
   ------------------------------------------------------------------------------------------- */

TEST(idempotent_enqueue_scoped_to_tenant_and_queue)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req r = make_req("acme", "q", "one");
    pers_enqueue_res a, b, c, d;
    pers_task t;

    r.idempotency_key = "order:42";
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_OK);
    CHECK_INT(a.duplicate, 0);
    r.payload = "two"; /* a different payload changes nothing */
    r.priority = 100;
    CHECK_INT(pers_enqueue(s, &r, &b), PERS_OK);
    CHECK_INT(b.duplicate, 1);
    CHECK_STR(b.task_id, a.task_id);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 0, 0, 0, 0);
    CHECK_INT(pers_get_task(s, "acme", a.task_id, &t), PERS_OK);
    CHECK_STR((const char *)t.payload, "one");
    CHECK_STR(t.idempotency_key, "order:42");
    CHECK_INT(t.priority, 0);
    pers_task_free(s, &t);
    /* another queue, another tenant: independent */
    r.queue = "other";
    CHECK_INT(pers_enqueue(s, &r, &c), PERS_OK);
    CHECK_INT(c.duplicate, 0);
    CHECK(strcmp(c.task_id, a.task_id) != 0);
    r.queue = "q";
    r.tenant = "globex";
    CHECK_INT(pers_enqueue(s, &r, &d), PERS_OK);
    CHECK_INT(d.duplicate, 0);
    CHECK_STATS(stats_of(s, "globex", "q"), 0, 1, 0, 0, 0, 0);
    /* still a duplicate after completion, until retention removes the task */
    r.tenant = "acme";
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    {
        pers_lease l = lease_of(&t);
        pers_cleanup_req cr;
        size_t removed = 0;
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
        CHECK_INT(pers_enqueue(s, &r, &b), PERS_OK);
        CHECK_INT(b.duplicate, 1);
        CHECK_STR(b.task_id, a.task_id);
        memset(&cr, 0, sizeof cr);
        cr.tenant = "acme";
        CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
        CHECK_INT(removed, 1);
        CHECK_INT(pers_enqueue(s, &r, &b), PERS_OK);
        CHECK_INT(b.duplicate, 0);
        CHECK(strcmp(b.task_id, a.task_id) != 0);
    }
    pers_task_free(s, &t);
    pers_destroy(s);
}

TEST(task_ids_generated_and_supplied)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_enqueue_res a, b;
    size_t i;
    pers_task t;

    CHECK_INT(pers_enqueue(s, &r, &a), PERS_OK);
    CHECK_INT(pers_enqueue(s, &r, &b), PERS_OK);
    CHECK_INT(strlen(a.task_id), PERS_GENERATED_ID_LEN);
    for (i = 0; i < strlen(a.task_id); i++)
        CHECK((a.task_id[i] >= '0' && a.task_id[i] <= '9') ||
              (a.task_id[i] >= 'a' && a.task_id[i] <= 'f'));
    CHECK(strcmp(a.task_id, b.task_id) != 0);
    CHECK(memcmp(a.task_id, b.task_id, 16) == 0); /* the store's random half (S9) */

    r.task_id = "invoice:2024-0001";
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_OK);
    CHECK_STR(a.task_id, "invoice:2024-0001");
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_ERR_DUPLICATE);
    r.queue = "elsewhere"; /* ids are unique per tenant, not per queue */
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_ERR_DUPLICATE);
    r.tenant = "globex";
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_OK);
    CHECK_INT(pers_get_task(s, "globex", "invoice:2024-0001", &t), PERS_OK);
    CHECK_STR(t.queue, "elsewhere");
    pers_task_free(s, &t);
    CHECK_INT(pers_get_task(s, "acme", "invoice:2024-0001", &t), PERS_OK);
    CHECK_STR(t.queue, "q");
    pers_task_free(s, &t);
    r.task_id = "bad id";
    CHECK_INT(pers_enqueue(s, &r, &a), PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(s);
}

TEST(hostile_names_refused)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    static const char *const bad_names[] = {
        "a|b", "{a}", "a}", "a:b", "a b", "a/b", "", "-lead", "a\nb", "caf\xc3\xa9", "a#b",
        "0123456789012345678901234567890123456789012345678901234567890123x",
    };
    size_t i;
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK_INT(enq(s, bad_names[i], "q", "x", 0, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
        CHECK_INT(enq(s, "acme", bad_names[i], "x", 0, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    }
    CHECK_INT(enq(s, "acme", NULL, "x", 0, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "queue");
    CHECK_INT(enq(s, "a|b", "q", "x", 0, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "tenant \"a|b\" contains '|' at position 1");
    /* the longest legal names work */
    CHECK_INT(enq(s, "0123456789012345678901234567890123456789012345678901234567890123",
                  "A.b_c-9", "x", 0, 0, NULL),
              PERS_OK);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Tenants and statistics
   ------------------------------------------------------------------------------------------- */

TEST(cross_tenant_is_not_found_everywhere)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t, other;
    pers_lease mine, theirs;
    pers_completion c = done_with("r", 0);
    pers_task_result res;
    char dead_id[PERS_ID_MAX + 1], done_id[PERS_ID_MAX + 1];
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_enqueue_res er;

    /* a dead task and a completed one of acme, and a leased one */
    r.max_attempts = 1;
    CHECK_INT(pers_enqueue(s, &r, &er), PERS_OK);
    strcpy(dead_id, er.task_id);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    mine = lease_of(&t);
    CHECK_INT(pers_nack(s, &mine, 0, NULL, NULL), PERS_OK);
    pers_task_free(s, &t);
    CHECK_INT(enq(s, "acme", "q", "y", 0, 0, done_id), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    mine = lease_of(&t);
    CHECK_INT(pers_complete(s, &mine, &c), PERS_OK);
    pers_task_free(s, &t);
    CHECK_INT(enq(s, "acme", "q", "z", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    mine = lease_of(&t);

    theirs = make_lease("globex", t.id, t.lease_token);
    CHECK_INT(pers_get_task(s, "globex", t.id, &other), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_extend_lease(s, &theirs, 1000, NULL), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_abandon(s, &theirs), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_nack(s, &theirs, 0, NULL, NULL), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_complete(s, &theirs, &c), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_get_result(s, "globex", done_id, &res), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_get_task(s, "globex", done_id, &other), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_requeue_dead(s, "globex", dead_id), PERS_ERR_NOT_FOUND);
    CHECK_NOT_CONTAINS(pers_errmsg(s), "forbidden");
    CHECK_STATS(stats_of(s, "globex", "q"), 0, 0, 0, 0, 0, 0);
    {
        pers_list_req lr;
        pers_task_list list;
        memset(&lr, 0, sizeof lr);
        lr.tenant = "globex";
        lr.queue = "q";
        CHECK_INT(pers_list_dead(s, &lr, &list), PERS_OK);
        CHECK_INT(list.total, 0);
        pers_task_list_free(s, &list);
    }
    /* globex sees nothing to claim in a queue of the same name */
    CHECK_INT(enq(s, "acme", "q", "more", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "globex", "q", "w", 1000, &other, NULL), 0);
    /* and nothing changed for acme */
    CHECK_INT(pers_extend_lease(s, &mine, 1000, NULL), PERS_OK);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 1, 1, 0, 1);
    pers_task_free(s, &t);
    pers_destroy(s);
}

TEST(stats_exact_per_tenant_and_queue)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task tasks[4];
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 4);
    pers_claim_res res;
    pers_lease l;
    pers_completion failed = done_with("e", 1);
    pers_enqueue_req r = make_req("acme", "q", "x");
    int i;

    for (i = 0; i < 6; i++)
        CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "q", "later", 0, 60000, NULL), PERS_OK);
    CHECK_INT(enq(s, "acme", "q2", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(enq(s, "globex", "q", "x", 0, 0, NULL), PERS_OK);
    r.max_attempts = 1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_STATS(stats_of(s, "acme", "q"), 1, 7, 0, 0, 0, 0);

    CHECK_INT(pers_claim(s, &c, tasks, &res), PERS_OK);
    CHECK_INT(res.count, 4);
    CHECK_STATS(stats_of(s, "acme", "q"), 1, 3, 4, 0, 0, 0);
    l = lease_of(&tasks[0]);
    CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    l = lease_of(&tasks[1]);
    CHECK_INT(pers_complete(s, &l, &failed), PERS_OK);
    l = lease_of(&tasks[2]);
    CHECK_INT(pers_nack(s, &l, 1000, NULL, NULL), PERS_OK);
    CHECK_STATS(stats_of(s, "acme", "q"), 2, 3, 1, 1, 1, 0);
    pers_tasks_free(s, tasks, res.count);
    /* the remaining ready ones, the max_attempts = 1 task last (enqueued last) */
    c.max_tasks = 3;
    CHECK_INT(pers_claim(s, &c, tasks, &res), PERS_OK);
    CHECK_INT(res.count, 3);
    l = lease_of(&tasks[2]);
    CHECK_INT(pers_nack(s, &l, 0, NULL, NULL), PERS_OK);
    CHECK_STATS(stats_of(s, "acme", "q"), 2, 0, 3, 1, 1, 1);
    pers_tasks_free(s, tasks, res.count);
    advance(&clock, 1000); /* the leases expire, the nacked one is due */
    CHECK_STATS(stats_of(s, "acme", "q"), 1, 4, 0, 1, 1, 1);
    CHECK_STATS(stats_of(s, "acme", "q2"), 0, 1, 0, 0, 0, 0);
    CHECK_STATS(stats_of(s, "globex", "q"), 0, 1, 0, 0, 0, 0);
    CHECK_STATS(stats_of(s, "acme", "nothing"), 0, 0, 0, 0, 0, 0);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Retention
   ------------------------------------------------------------------------------------------- */

TEST(retention_of_tasks_and_results)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t;
    pers_lease l;
    pers_cleanup_req cr;
    size_t removed = 0;
    char old_id[PERS_ID_MAX + 1], new_id[PERS_ID_MAX + 1], dead_id[PERS_ID_MAX + 1];
    pers_task_result res;
    pers_enqueue_req r = make_req("acme", "q", "d");

    CHECK_INT(enq(s, "acme", "q", "old", 0, 0, old_id), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    pers_task_free(s, &t);
    r.max_attempts = 1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    strcpy(dead_id, t.id);
    l = lease_of(&t);
    CHECK_INT(pers_nack(s, &l, 0, NULL, NULL), PERS_OK);
    pers_task_free(s, &t);
    advance(&clock, 10000);
    CHECK_INT(enq(s, "acme", "q", "new", 0, 0, new_id), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    pers_task_free(s, &t);
    CHECK_INT(enq(s, "acme", "q", "pending", 0, 0, NULL), PERS_OK);

    memset(&cr, 0, sizeof cr);
    cr.older_than_ms = 5000;
    /* results first: only the old one goes; the task stays */
    CHECK_INT(pers_cleanup_results(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_get_result(s, "acme", old_id, &res), PERS_ERR_NOT_FOUND);
    CHECK_INT(state_of(s, "acme", old_id), PERS_STATE_COMPLETED);
    CHECK_INT(pers_get_result(s, "acme", new_id, &res), PERS_OK);
    pers_task_result_free(s, &res);
    /* tasks: the old completed one; dead ones only when asked */
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_get_task(s, "acme", old_id, &t), PERS_ERR_NOT_FOUND);
    CHECK_INT(state_of(s, "acme", dead_id), PERS_STATE_DEAD);
    cr.include_dead = 1;
    cr.tenant = "globex"; /* another tenant's cleanup touches nothing of acme */
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 0);
    cr.tenant = "acme";
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_get_task(s, "acme", dead_id, &t), PERS_ERR_NOT_FOUND);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 0, 1, 0, 0);
    cr.older_than_ms = 0;
    cr.limit = 5;
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 1, 0, 0, 0, 0);
    cr.older_than_ms = -1;
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Subscriptions
   ------------------------------------------------------------------------------------------- */

static pers_subscribe_req make_sub(const char *tenant, const char *worker,
                                   const char *const *queues, size_t n, const char *callback,
                                   int64_t ttl_ms)
{
    pers_subscribe_req r;
    memset(&r, 0, sizeof r);
    r.tenant = tenant;
    r.worker_id = worker;
    r.queues = queues;
    r.queue_count = n;
    r.callback = callback;
    r.ttl_ms = ttl_ms;
    return r;
}

TEST(subscriptions_idempotent_isolated_expiring)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    const char *qs_ab[2] = { "a", "b" };
    const char *qs_b[1] = { "b" };
    pers_subscribe_req r = make_sub("acme", "w1", qs_ab, 2, "http://10.0.0.1:80/push", 10000);
    pers_subscription_list list;
    size_t created = 99, removed = 0;

    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    CHECK_INT(created, 2);
    advance(&clock, 1000);
    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    CHECK_INT(created, 0);
    CHECK_INT(pers_list_subscriptions_by_worker(s, "acme", "w1", &list), PERS_OK);
    CHECK_INT(list.count, 2);
    if (list.count == 2) {
        CHECK_STR(list.items[0].queue, "a");
        CHECK_STR(list.items[1].queue, "b");
        CHECK_STR(list.items[0].callback, "http://10.0.0.1:80/push");
        CHECK_INT(list.items[0].created_ms, T0);
        CHECK_INT(list.items[0].updated_ms, T0 + 1000);
        CHECK_INT(list.items[0].expires_ms, T0 + 11000);
    }
    pers_subscription_list_free(s, &list);

    /* another worker on b with a new address; globex has its own w1 */
    r = make_sub("acme", "w0", qs_b, 1, "http://10.0.0.2:80/push", 3000);
    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    r = make_sub("globex", "w1", qs_b, 1, "http://10.9.9.9/x", 50000);
    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    CHECK_INT(created, 1);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "acme", "b", &list), PERS_OK);
    CHECK_INT(list.count, 2);
    if (list.count == 2) {
        CHECK_STR(list.items[0].worker_id, "w0"); /* ordered by worker, then queue */
        CHECK_STR(list.items[1].worker_id, "w1");
        CHECK_STR(list.items[0].tenant, "acme");
    }
    pers_subscription_list_free(s, &list);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "globex", "b", &list), PERS_OK);
    CHECK_INT(list.count, 1);
    if (list.count == 1)
        CHECK_STR(list.items[0].callback, "http://10.9.9.9/x");
    pers_subscription_list_free(s, &list);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "globex", "a", &list), PERS_OK);
    CHECK_INT(list.count, 0);
    pers_subscription_list_free(s, &list);

    /* expiry: w0 expires at T0 + 4000; lists hide it at that instant */
    advance(&clock, 3000);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "acme", "b", &list), PERS_OK);
    CHECK_INT(list.count, 1);
    pers_subscription_list_free(s, &list);
    CHECK_INT(pers_expire_subscriptions(s, "globex", &removed), PERS_OK);
    CHECK_INT(removed, 0);
    CHECK_INT(pers_expire_subscriptions(s, NULL, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    /* re-subscribing an expired row counts as created */
    r = make_sub("acme", "w0", qs_b, 1, "http://10.0.0.2:80/push", 3000);
    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    CHECK_INT(created, 1);
    advance(&clock, 3000);
    CHECK_INT(pers_subscribe(s, &r, &created), PERS_OK);
    CHECK_INT(created, 1);

    /* unsubscribe one queue, then all */
    CHECK_INT(pers_unsubscribe(s, "acme", "w1", "a", &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_unsubscribe(s, "acme", "w1", "a", &removed), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_unsubscribe(s, "globex", "w0", NULL, &removed), PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_unsubscribe(s, "acme", "w1", NULL, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_list_subscriptions_by_worker(s, "acme", "w1", &list), PERS_OK);
    CHECK_INT(list.count, 0);
    pers_subscription_list_free(s, &list);
    CHECK_INT(pers_list_subscriptions_by_worker(s, "globex", "w1", &list), PERS_OK);
    CHECK_INT(list.count, 1);
    pers_subscription_list_free(s, &list);

    /* validation */
    r.callback = "http://bad address";
    CHECK_INT(pers_subscribe(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "callback");
    r.callback = "x";
    r.ttl_ms = 0;
    CHECK_INT(pers_subscribe(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Batch, limits, configuration through the registry
   ------------------------------------------------------------------------------------------- */

TEST(batch_enqueue_all_or_nothing)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_enqueue_req reqs[4];
    pers_enqueue_res res[4];
    int i;

    for (i = 0; i < 4; i++)
        reqs[i] = make_req("acme", "q", "x");
    reqs[1].idempotency_key = "k";
    reqs[3].idempotency_key = "k"; /* refers to request 1 (S8) */
    CHECK_INT(pers_enqueue_batch(s, reqs, 4, res), PERS_OK);
    CHECK_INT(res[1].duplicate, 0);
    CHECK_INT(res[3].duplicate, 1);
    CHECK_STR(res[3].task_id, res[1].task_id);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 3, 0, 0, 0, 0);

    /* a clash in the middle: nothing at all is enqueued */
    reqs[0].idempotency_key = NULL;
    reqs[1].idempotency_key = "fresh";
    reqs[3].idempotency_key = NULL;
    reqs[2].task_id = res[0].task_id;
    CHECK_INT(pers_enqueue_batch(s, reqs, 4, res), PERS_ERR_DUPLICATE);
    CHECK_CONTAINS(pers_errmsg(s), "request 2");
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 3, 0, 0, 0, 0);
    reqs[2].task_id = NULL;
    CHECK_INT(pers_enqueue_batch(s, reqs, 4, NULL), PERS_OK);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 7, 0, 0, 0, 0);
    /* a bad request is found by the store before the backend sees any */
    reqs[3].queue = "bad|queue";
    CHECK_INT(pers_enqueue_batch(s, reqs, 4, res), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "request 3");
    CHECK_INT(pers_enqueue_batch(s, reqs, 0, res), PERS_ERR_INVALID_ARGUMENT);
    CHECK_STATS(stats_of(s, "acme", "q"), 0, 7, 0, 0, 0, 0);
    pers_destroy(s);
}

TEST(registry_config_limits)
{
    plg_registry *reg = NULL;
    pers_store *s = NULL;
    pers_store_desc desc;
    fake_clock clock;
    char why[512], *payload;
    pers_enqueue_req r = make_req("acme", "q", NULL);
    pers_caps caps;
    int i;

    clock.now = T0;
    memset(&desc, 0, sizeof desc);
    desc.clock.now_ms = fake_now;
    desc.clock.user = &clock;
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_memory_register(reg), PERS_OK);
    CHECK_INT(pers_memory_register(reg), PERS_ERR_DUPLICATE);
    CHECK_INT(pers_open(reg, "memory", "{\"max_payload_bytes\":1000,\"max_tasks\":3}", &desc, &s),
              PERS_OK);
    CHECK_STR(why, "");
    CHECK_STR(pers_store_provider(s), "memory");
    CHECK_INT(pers_capabilities(s, &caps), PERS_OK);
    CHECK_INT(caps.max_payload_bytes, 1000);
    CHECK(caps.flags & PERS_CAP_SUBSCRIPTIONS);
    CHECK(caps.flags & PERS_CAP_BATCH);
    CHECK(!(caps.flags & PERS_CAP_DURABLE));
    CHECK_INT(pers_store_resolved(s).max_payload_bytes, 1000);
    CHECK_INT(pers_health(s), PERS_OK);
    payload = (char *)calloc(1, 1001);
    r.payload = payload;
    r.payload_len = 1001;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_TOO_LARGE);
    r.payload_len = 1000;
    for (i = 0; i < 3; i++)
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_LIMIT);
    CHECK_CONTAINS(pers_errmsg(s), "max_tasks");
    free(payload);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Closing
   ------------------------------------------------------------------------------------------- */

TEST(close_twice_and_use_after_close)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pers_task t;
    pers_lease l;
    pers_enqueue_req r = make_req("acme", "q", "x");
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 1);
    pers_claim_res cres;
    pers_stats st;
    pers_list_req lr;
    pers_task_list list;
    pers_cleanup_req cr;
    pers_task_result res;
    pers_subscribe_req sr = make_sub("acme", "w", queues, 1, "x", 10);
    pers_subscription_list sl;
    pers_caps caps;

    CHECK_INT(enq(s, "acme", "q", "x", 0, 0, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", "w", 1000, &t, NULL), 1);
    l = lease_of(&t);
    memset(&lr, 0, sizeof lr);
    lr.tenant = "acme";
    lr.queue = "q";
    memset(&cr, 0, sizeof cr);
    CHECK_INT(pers_close(s), PERS_OK);
    CHECK_INT(pers_close(s), PERS_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_CLOSED);
    CHECK_CONTAINS(pers_errmsg(s), "closed");
    CHECK_INT(pers_enqueue_batch(s, &r, 1, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_claim(s, &c, &t, &cres), PERS_ERR_CLOSED);
    CHECK_INT(pers_extend_lease(s, &l, 10, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_abandon(s, &l), PERS_ERR_CLOSED);
    CHECK_INT(pers_nack(s, &l, 0, NULL, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_complete(s, &l, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_get_task(s, "acme", "x", NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_ERR_CLOSED);
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_ERR_CLOSED);
    CHECK_INT(pers_requeue_dead(s, "acme", "x"), PERS_ERR_CLOSED);
    CHECK_INT(pers_cleanup_tasks(s, &cr, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_get_result(s, "acme", "x", &res), PERS_ERR_CLOSED);
    CHECK_INT(pers_cleanup_results(s, &cr, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_subscribe(s, &sr, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_unsubscribe(s, "acme", "w", NULL, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "acme", "q", &sl), PERS_ERR_CLOSED);
    CHECK_INT(pers_list_subscriptions_by_worker(s, "acme", "w", &sl), PERS_ERR_CLOSED);
    CHECK_INT(pers_expire_subscriptions(s, NULL, NULL), PERS_ERR_CLOSED);
    CHECK_INT(pers_capabilities(s, &caps), PERS_ERR_CLOSED);
    CHECK_INT(pers_health(s), PERS_ERR_CLOSED);
    /* what was returned before closing can still be freed */
    pers_task_free(s, &t);
    CHECK_INT(pers_close(s), PERS_OK);
    pers_destroy(s);
    pers_destroy(NULL);
}

/* ---------------------------------------------------------------------------------------------
   The vtable without a store
   ------------------------------------------------------------------------------------------- */

TEST(vtable_direct_calls)
{
    const pers_backend_vtable *vt = pers_memory_vtable();
    void *b = NULL;
    pers_detail d;
    pers_enqueue_req r = make_req("acme", "q", "direct");
    pers_enqueue_res res;
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 1);
    pers_claim_res cres;
    pers_task t;
    char msg[256];

    CHECK_INT(pers_check_vtable(vt, msg, sizeof msg), PERS_OK);
    CHECK_INT(vt->abi_version, PERS_BACKEND_ABI_VERSION);
    CHECK_INT(vt->struct_size, sizeof(pers_backend_vtable));
    CHECK_INT(vt->open_store(NULL, NULL, &b, &d), PERS_OK); /* wall clock, malloc */
    CHECK_INT(vt->enqueue(b, &r, &res, &d), PERS_OK);
    CHECK_INT(strlen(res.task_id), PERS_GENERATED_ID_LEN); /* generated by the backend */
    r.queue = "a|b"; /* the backend refuses what the store would have refused */
    CHECK_INT(vt->enqueue(b, &r, &res, &d), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(vt->claim(b, &c, &t, &cres, &d), PERS_OK);
    CHECK_INT(cres.count, 1);
    CHECK_STR((const char *)t.payload, "direct");
    pers_task_clear(NULL, &t);
    d.text[0] = '\0';
    CHECK_INT(vt->get_task(b, "acme", "nope", &t, &d), PERS_ERR_NOT_FOUND);
    CHECK_CONTAINS(d.text, "nope");
    vt->close_store(b);
}

/* ---------------------------------------------------------------------------------------------
   Threads
   ------------------------------------------------------------------------------------------- */

#define THREAD_TASKS 10000
#define THREAD_COUNT 4

typedef struct claim_ctx {
    pers_store *store;
    int *claimed; /* per task index, atomic */
    int worker;
    int count;
    int errors;
} claim_ctx;

static void *claimer(void *arg)
{
    claim_ctx *ctx = (claim_ctx *)arg;
    const char *queues[2] = { "q1", "q2" };
    char worker[16];
    pers_claim_req c;
    pers_claim_res res;
    pers_task tasks[7];
    size_t i;
    snprintf(worker, sizeof worker, "w%d", ctx->worker);
    c = make_claim("acme", queues, 2, worker, 600000, 7);
    for (;;) {
        if (pers_claim(ctx->store, &c, tasks, &res) != PERS_OK) {
            ctx->errors++;
            break;
        }
        if (res.count == 0)
            break;
        for (i = 0; i < res.count; i++) {
            int index = atoi((const char *)tasks[i].payload);
            pers_lease l = lease_of(&tasks[i]);
            if (index >= 0 && index < THREAD_TASKS)
                __atomic_add_fetch(&ctx->claimed[index], 1, __ATOMIC_SEQ_CST);
            else
                ctx->errors++;
            /* complete half of them; the leases of the rest stay live */
            if (index % 2 == 0 && pers_complete(ctx->store, &l, NULL) != PERS_OK)
                ctx->errors++;
            ctx->count++;
        }
        pers_tasks_free(ctx->store, tasks, res.count);
    }
    return NULL;
}

TEST(threads_claim_every_task_exactly_once)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pthread_t threads[THREAD_COUNT];
    claim_ctx ctx[THREAD_COUNT];
    int *claimed = (int *)calloc(THREAD_TASKS, sizeof(int));
    int i, total = 0, wrong = 0;
    pers_enqueue_req reqs[100];
    char payloads[100][16];
    pers_stats a, b;

    for (i = 0; i < THREAD_TASKS; i++) {
        int k = i % 100;
        snprintf(payloads[k], sizeof payloads[k], "%d", i);
        reqs[k] = make_req("acme", (i / 100) % 3 ? "q1" : "q2", payloads[k]); /* S19 */
        if (k == 99)
            CHECK_INT(pers_enqueue_batch(s, reqs, 100, NULL), PERS_OK);
    }
    for (i = 0; i < THREAD_COUNT; i++) {
        memset(&ctx[i], 0, sizeof ctx[i]);
        ctx[i].store = s;
        ctx[i].claimed = claimed;
        ctx[i].worker = i;
        CHECK_INT(pthread_create(&threads[i], NULL, claimer, &ctx[i]), 0);
    }
    for (i = 0; i < THREAD_COUNT; i++) {
        pthread_join(threads[i], NULL);
        total += ctx[i].count;
        CHECK_INT(ctx[i].errors, 0);
    }
    CHECK_INT(total, THREAD_TASKS);
    for (i = 0; i < THREAD_TASKS; i++)
        if (claimed[i] != 1)
            wrong++;
    CHECK_INT(wrong, 0);
    a = stats_of(s, "acme", "q1");
    b = stats_of(s, "acme", "q2");
    CHECK_INT(a.completed + b.completed, THREAD_TASKS / 2);
    CHECK_INT(a.leased + b.leased, THREAD_TASKS / 2);
    CHECK_INT(a.ready + b.ready, 0);
    free(claimed);
    pers_destroy(s);
}

/* Closing while other threads are calling: every call either runs or gets CLOSED. */
typedef struct busy_ctx {
    pers_store *store;
    int ok, closed, other;
} busy_ctx;

static void *busy_enqueuer(void *arg)
{
    busy_ctx *ctx = (busy_ctx *)arg;
    pers_enqueue_req r = make_req("acme", "q", "x");
    for (;;) {
        pers_result rc = pers_enqueue(ctx->store, &r, NULL);
        if (rc == PERS_OK)
            ctx->ok++;
        else if (rc == PERS_ERR_CLOSED) {
            ctx->closed++;
            break;
        } else {
            ctx->other++;
            break;
        }
    }
    return NULL;
}

TEST(close_while_busy)
{
    fake_clock clock;
    pers_store *s = open_mem(&clock);
    pthread_t threads[3];
    busy_ctx ctx[3];
    int i;
    for (i = 0; i < 3; i++) {
        memset(&ctx[i], 0, sizeof ctx[i]);
        ctx[i].store = s;
        CHECK_INT(pthread_create(&threads[i], NULL, busy_enqueuer, &ctx[i]), 0);
    }
    while (stats_of(s, "acme", "q").ready < 300)
        ;
    CHECK_INT(pers_close(s), PERS_OK);
    for (i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        CHECK_INT(ctx[i].closed, 1);
        CHECK_INT(ctx[i].other, 0);
    }
    pers_destroy(s);
}

int main(void)
{
    RUN(payload_round_trip);
    RUN(priority_then_fifo);
    RUN(claim_walks_queues_in_order);
    RUN(delayed_tasks_hidden_until_due);
    RUN(lease_extend_good_and_stale_tokens);
    RUN(expiry_reclaim_old_holder_loses_everything);
    RUN(expiry_applies_without_a_reclaiming_claim);
    RUN(nack_with_and_without_delay);
    RUN(dead_letter_at_max_attempts);
    RUN(abandon_gives_the_attempt_back);
    RUN(list_and_requeue_dead);
    RUN(double_completion_keeps_the_first_result);
    RUN(operations_after_completion);
    RUN(result_not_found_before_completion);
    RUN(idempotent_enqueue_scoped_to_tenant_and_queue);
    RUN(task_ids_generated_and_supplied);
    RUN(hostile_names_refused);
    RUN(cross_tenant_is_not_found_everywhere);
    RUN(stats_exact_per_tenant_and_queue);
    RUN(retention_of_tasks_and_results);
    RUN(subscriptions_idempotent_isolated_expiring);
    RUN(batch_enqueue_all_or_nothing);
    RUN(registry_config_limits);
    RUN(close_twice_and_use_after_close);
    RUN(vtable_direct_calls);
    RUN(threads_claim_every_task_exactly_once);
    RUN(close_while_busy);
    return test_summary();
}
