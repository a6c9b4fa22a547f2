/* Unit tests of backends/sqlite.h, through the store handle, on a fake clock (no test sleeps),
   with every database under a fresh mkdtemp directory that is removed at the end.

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/unit/test_sqlite_backend.c -o /tmp/sq \
         -pthread -lm -lsqlite3 && /tmp/sq
   The threaded cases are meant to be run under ThreadSanitizer too (clang -fsanitize=thread).

   What is covered: a differential run against the memory backend (the reference model) on the
   same fake clock, step by step; durability across close and reopen; the schema version, its
   migration, and the refusal of newer, foreign and non-SQLite files leaving them unchanged;
   the translation of SQLITE_BUSY, _FULL, _CORRUPT, _READONLY and _CANTOPEN with SQLite's
   message; configuration validation; the query plans and the cost of claim against the number
   of finished tasks; lease tokens across two stores of one file; two PROCESSES claiming from
   one file; threads on one store; and the persistence contract suite. */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#define PERSISTENCE_SQLITE_IMPLEMENTATION
#define PERSISTENCE_CONTRACT_IMPLEMENTATION
#include "backends/memory.h"
#include "backends/sqlite.h"
#include "tests/contract/persistence_contract.h"
#include "tests/test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

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

static char test_dir[64];
static int db_counter;

/* A fresh database path in the test directory. */
static void new_path(char *out, size_t size, const char *tag)
{
    snprintf(out, size, "%s/%s-%d.db", test_dir, tag, db_counter++);
}

/* Removes a database and its companion files. */
static void remove_db(const char *path)
{
    char p[512];
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    size_t i;
    for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        (void)unlink(p);
    }
}

static pers_store_desc clock_desc(fake_clock *clock, char *why, size_t why_size)
{
    pers_store_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.clock.now_ms = fake_now;
    desc.clock.user = clock;
    desc.open_message = why;
    desc.open_message_size = why_size;
    return desc;
}

/* Opens the sqlite backend on path with the fake clock; extra is more JSON members or "". */
static pers_result try_open(fake_clock *clock, const char *path, const char *extra,
                            pers_store **out, char *why, size_t why_size)
{
    char config[1024];
    pers_store_desc desc = clock_desc(clock, why, why_size);
    snprintf(config, sizeof config, "{\"path\":\"%s\"%s%s}", path, extra[0] ? "," : "", extra);
    return pers_sqlite_open(config, &desc, out);
}

static pers_store *open_sq(fake_clock *clock, const char *path, const char *extra)
{
    pers_store *s = NULL;
    char why[1024];
    if (try_open(clock, path, extra, &s, why, sizeof why) != PERS_OK)
        printf("    open_sq(%s): %s\n", path, why);
    return s;
}

/* The backend's connection (the test compiles the implementations, so it may look inside). */
static sqlite3 *db_of(pers_store *s)
{
    return ((psqli_store *)s->backend)->db;
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

static int claim1(pers_store *s, const char *tenant, const char *queue, int64_t lease_ms,
                  pers_task *task)
{
    const char *queues[1];
    pers_claim_req c;
    pers_claim_res res;
    queues[0] = queue;
    c = make_claim(tenant, queues, 1, "w1", lease_ms, 1);
    if (pers_claim(s, &c, task, &res) != PERS_OK) {
        printf("    claim: %s\n", pers_errmsg(s));
        return -1;
    }
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

/* The whole file, for "nothing was changed" checks. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = (char *)malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n)
            *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Runs SQL on a raw connection of its own; returns the sqlite code. */
static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    int64_t v = -1;
    (void)psqli_read_int(db, sql, &v);
    return v;
}

/* ---------------------------------------------------------------------------------------------
   Differential run against the memory backend
   ------------------------------------------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rnd(rng *r, uint32_t n)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return n ? (uint32_t)(r->s % n) : 0;
}

typedef struct known_lease {
    char tenant[PERS_NAME_MAX + 1];
    char id[PERS_ID_MAX + 1];
    uint64_t token;
} known_lease;

#define DIFF_IDS 60
#define DIFF_LEASES 32

static int same_task(const pers_task *a, const pers_task *b, char *why, size_t size)
{
#define DIFF_FIELD_(f)                                                                             \
    if (a->f != b->f) {                                                                            \
        snprintf(why, size, "%s: %s %lld vs %lld", a->id, #f, (long long)a->f, (long long)b->f);   \
        return 0;                                                                                  \
    }
#define DIFF_TEXT_(f)                                                                              \
    if (strcmp(a->f, b->f) != 0) {                                                                 \
        snprintf(why, size, "%s: %s \"%s\" vs \"%s\"", a->id, #f, a->f, b->f);                     \
        return 0;                                                                                  \
    }
    DIFF_TEXT_(id)
    DIFF_TEXT_(tenant)
    DIFF_TEXT_(queue)
    DIFF_TEXT_(worker_id)
    DIFF_TEXT_(idempotency_key)
    DIFF_FIELD_(state)
    DIFF_FIELD_(priority)
    DIFF_FIELD_(attempts)
    DIFF_FIELD_(max_attempts)
    DIFF_FIELD_(lease_token)
    DIFF_FIELD_(created_ms)
    DIFF_FIELD_(due_ms)
    DIFF_FIELD_(lease_expires_ms)
    DIFF_FIELD_(finished_ms)
    DIFF_FIELD_(payload_len)
#undef DIFF_FIELD_
#undef DIFF_TEXT_
    if (a->payload_len > 0 && memcmp(a->payload, b->payload, a->payload_len) != 0) {
        snprintf(why, size, "%s: payload bytes differ", a->id);
        return 0;
    }
    if ((a->last_error == NULL) != (b->last_error == NULL) ||
        (a->last_error != NULL && strcmp(a->last_error, b->last_error) != 0)) {
        snprintf(why, size, "%s: last_error \"%s\" vs \"%s\"", a->id,
                 a->last_error ? a->last_error : "(null)", b->last_error ? b->last_error : "(null)");
        return 0;
    }
    return 1;
}

/* One random step on both stores; returns 0 and writes why when they disagree. */
static int diff_step(rng *r, fake_clock *clock, pers_store *m, pers_store *q, known_lease *leases,
                     size_t *nleases, char *why, size_t size)
{
    static const char *const tenants[] = { "t1", "t2" };
    static const char *const queues[] = { "a", "b", "c" };
    const char *tenant = tenants[rnd(r, 2)];
    char id[32], key[32], payload[64];
    uint32_t op = rnd(r, 100);
    pers_result rm, rq;
    snprintf(id, sizeof id, "k%u", rnd(r, DIFF_IDS));
    if (op < 22) { /* enqueue */
        pers_enqueue_req e = make_req(tenant, queues[rnd(r, 3)], NULL);
        pers_enqueue_res em, eq;
        snprintf(payload, sizeof payload, "payload-%u", rnd(r, 1000));
        e.payload = payload;
        e.payload_len = rnd(r, 4) == 0 ? 0 : strlen(payload);
        e.task_id = id;
        e.priority = (int32_t)rnd(r, 3) - 1;
        if (rnd(r, 4) == 0)
            e.delay_ms = rnd(r, 60);
        else if (rnd(r, 6) == 0)
            e.run_at_ms = clock->now - 20 + rnd(r, 60);
        e.max_attempts = rnd(r, 4);
        if (rnd(r, 3) == 0) {
            snprintf(key, sizeof key, "i%u", rnd(r, 12));
            e.idempotency_key = key;
        }
        rm = pers_enqueue(m, &e, &em);
        rq = pers_enqueue(q, &e, &eq);
        if (rm != rq || (rm == PERS_OK && (strcmp(em.task_id, eq.task_id) != 0 ||
                                           em.duplicate != eq.duplicate))) {
            snprintf(why, size, "enqueue %s: %s/%s dup %d vs %s/%s dup %d", id,
                     pers_result_string(rm), em.task_id, em.duplicate, pers_result_string(rq),
                     eq.task_id, eq.duplicate);
            return 0;
        }
    } else if (op < 27) { /* batch */
        pers_enqueue_req e[4];
        pers_enqueue_res em[4], eq[4];
        char ids[4][32];
        size_t n = 1 + rnd(r, 4), i;
        const char *queue = queues[rnd(r, 3)]; /* one (tenant, queue) per batch (S19) */
        for (i = 0; i < n; i++) {
            e[i] = make_req(tenant, queue, "batch");
            snprintf(ids[i], sizeof ids[i], "k%u", rnd(r, DIFF_IDS));
            e[i].task_id = ids[i];
            e[i].priority = (int32_t)rnd(r, 3) - 1;
        }
        rm = pers_enqueue_batch(m, e, n, em);
        rq = pers_enqueue_batch(q, e, n, eq);
        if (rm != rq) {
            snprintf(why, size, "enqueue_batch: %s vs %s (%.300s)", pers_result_string(rm),
                     pers_result_string(rq), pers_errmsg(q));
            return 0;
        }
    } else if (op < 45) { /* claim */
        const char *qs[2];
        pers_task tm[3], tq[3];
        pers_claim_res cm, cq;
        size_t nq = 1 + rnd(r, 2), i;
        pers_claim_req c;
        qs[0] = queues[rnd(r, 3)];
        qs[1] = queues[rnd(r, 3)];
        c = make_claim(tenant, qs, nq, rnd(r, 2) ? "w1" : "w2", 10 + rnd(r, 90), 1 + rnd(r, 3));
        rm = pers_claim(m, &c, tm, &cm);
        rq = pers_claim(q, &c, tq, &cq);
        if (rm != rq || cm.count != cq.count || cm.next_due_ms != cq.next_due_ms) {
            snprintf(why, size, "claim: %s count %lu next %lld vs %s count %lu next %lld (%.300s)",
                     pers_result_string(rm), (unsigned long)cm.count, (long long)cm.next_due_ms,
                     pers_result_string(rq), (unsigned long)cq.count, (long long)cq.next_due_ms,
                     pers_errmsg(q));
            return 0;
        }
        for (i = 0; i < cm.count; i++) {
            if (!same_task(&tm[i], &tq[i], why, size)) {
                pers_tasks_free(m, tm, cm.count);
                pers_tasks_free(q, tq, cq.count);
                return 0;
            }
            if (*nleases < DIFF_LEASES) {
                known_lease *k = &leases[(*nleases)++];
                strcpy(k->tenant, tm[i].tenant);
                strcpy(k->id, tm[i].id);
                k->token = tm[i].lease_token;
            } else {
                known_lease *k = &leases[rnd(r, DIFF_LEASES)];
                strcpy(k->tenant, tm[i].tenant);
                strcpy(k->id, tm[i].id);
                k->token = tm[i].lease_token;
            }
        }
        pers_tasks_free(m, tm, cm.count);
        pers_tasks_free(q, tq, cq.count);
    } else if (op < 65 && *nleases > 0) { /* worker operations on a remembered lease */
        known_lease *k = &leases[rnd(r, (uint32_t)*nleases)];
        pers_lease l;
        uint32_t w = rnd(r, 5);
        l.tenant = rnd(r, 10) == 0 ? (strcmp(k->tenant, "t1") ? "t1" : "t2") : k->tenant;
        l.task_id = k->id;
        l.token = rnd(r, 8) == 0 ? k->token + 1 : k->token;
        if (w == 0) {
            int64_t xm = 0, xq = 0;
            int64_t ms = 1 + rnd(r, 80);
            rm = pers_extend_lease(m, &l, ms, &xm);
            rq = pers_extend_lease(q, &l, ms, &xq);
            if (rm != rq || xm != xq) {
                snprintf(why, size, "extend %s: %s %lld vs %s %lld", k->id,
                         pers_result_string(rm), (long long)xm, pers_result_string(rq),
                         (long long)xq);
                return 0;
            }
        } else if (w == 1) {
            rm = pers_abandon(m, &l);
            rq = pers_abandon(q, &l);
            if (rm != rq) {
                snprintf(why, size, "abandon %s: %s vs %s", k->id, pers_result_string(rm),
                         pers_result_string(rq));
                return 0;
            }
        } else if (w == 2) {
            pers_task_state sm = (pers_task_state)0, sq = (pers_task_state)0;
            int64_t delay = rnd(r, 2) ? 0 : rnd(r, 40);
            const char *reason = rnd(r, 3) ? "boom" : NULL;
            rm = pers_nack(m, &l, delay, reason, &sm);
            rq = pers_nack(q, &l, delay, reason, &sq);
            if (rm != rq || sm != sq) {
                snprintf(why, size, "nack %s: %s %d vs %s %d", k->id, pers_result_string(rm),
                         (int)sm, pers_result_string(rq), (int)sq);
                return 0;
            }
        } else if (w == 3) {
            pers_completion done;
            done.failed = rnd(r, 4) == 0;
            done.data = "result";
            done.data_len = rnd(r, 2) ? 6 : 0;
            rm = pers_complete(m, &l, &done);
            rq = pers_complete(q, &l, &done);
            if (rm != rq) {
                snprintf(why, size, "complete %s: %s vs %s", k->id, pers_result_string(rm),
                         pers_result_string(rq));
                return 0;
            }
        } else { /* complete_batch (S20): this lease and up to 3 more, repeats allowed */
            pers_lease bl[4];
            pers_completion bd[4];
            pers_result bm[4], bq[4];
            size_t n = 1 + rnd(r, 4), i;
            bl[0] = l;
            for (i = 0; i < n; i++) {
                if (i > 0) {
                    known_lease *o = &leases[rnd(r, (uint32_t)*nleases)];
                    bl[i].tenant = o->tenant;
                    bl[i].task_id = o->id;
                    bl[i].token = rnd(r, 8) == 0 ? o->token + 1 : o->token;
                }
                bd[i].failed = rnd(r, 4) == 0;
                bd[i].data = "batched";
                bd[i].data_len = rnd(r, 2) ? 7 : 0;
            }
            rm = pers_complete_batch(m, bl, bd, n, bm);
            rq = pers_complete_batch(q, bl, bd, n, bq);
            if (rm != rq || memcmp(bm, bq, n * sizeof *bm) != 0) {
                snprintf(why, size, "complete_batch of %lu from %s: %s [%d %d %d %d] vs %s "
                                    "[%d %d %d %d]",
                         (unsigned long)n, k->id, pers_result_string(rm), (int)bm[0],
                         n > 1 ? (int)bm[1] : -1, n > 2 ? (int)bm[2] : -1,
                         n > 3 ? (int)bm[3] : -1, pers_result_string(rq), (int)bq[0],
                         n > 1 ? (int)bq[1] : -1, n > 2 ? (int)bq[2] : -1,
                         n > 3 ? (int)bq[3] : -1);
                return 0;
            }
        }
    } else if (op < 72) { /* get_task */
        pers_task a, b;
        rm = pers_get_task(m, tenant, id, &a);
        rq = pers_get_task(q, tenant, id, &b);
        if (rm != rq || (rm == PERS_OK && !same_task(&a, &b, why, size))) {
            if (rm != rq)
                snprintf(why, size, "get_task %s: %s vs %s", id, pers_result_string(rm),
                         pers_result_string(rq));
            pers_task_free(m, &a);
            pers_task_free(q, &b);
            return 0;
        }
        pers_task_free(m, &a);
        pers_task_free(q, &b);
    } else if (op < 76) { /* stats */
        pers_stats a, b;
        const char *queue = queues[rnd(r, 3)];
        rm = pers_queue_stats(m, tenant, queue, &a);
        rq = pers_queue_stats(q, tenant, queue, &b);
        if (rm != rq || memcmp(&a, &b, sizeof a) != 0) {
            snprintf(why, size,
                     "stats %s/%s: %llu %llu %llu %llu %llu %llu vs %llu %llu %llu %llu %llu %llu",
                     tenant, queue, (unsigned long long)a.scheduled,
                     (unsigned long long)a.ready, (unsigned long long)a.leased,
                     (unsigned long long)a.completed, (unsigned long long)a.failed,
                     (unsigned long long)a.dead, (unsigned long long)b.scheduled,
                     (unsigned long long)b.ready, (unsigned long long)b.leased,
                     (unsigned long long)b.completed, (unsigned long long)b.failed,
                     (unsigned long long)b.dead);
            return 0;
        }
    } else if (op < 80) { /* list_dead */
        pers_list_req lr;
        pers_task_list a, b;
        size_t i;
        memset(&lr, 0, sizeof lr);
        lr.tenant = tenant;
        lr.queue = queues[rnd(r, 3)];
        lr.offset = rnd(r, 3);
        lr.limit = rnd(r, 4);
        rm = pers_list_dead(m, &lr, &a);
        rq = pers_list_dead(q, &lr, &b);
        if (rm != rq || a.count != b.count || a.total != b.total) {
            snprintf(why, size, "list_dead: %s %lu/%lu vs %s %lu/%lu", pers_result_string(rm),
                     (unsigned long)a.count, (unsigned long)a.total, pers_result_string(rq),
                     (unsigned long)b.count, (unsigned long)b.total);
            pers_task_list_free(m, &a);
            pers_task_list_free(q, &b);
            return 0;
        }
        for (i = 0; i < a.count; i++)
            if (!same_task(&a.items[i], &b.items[i], why, size)) {
                pers_task_list_free(m, &a);
                pers_task_list_free(q, &b);
                return 0;
            }
        pers_task_list_free(m, &a);
        pers_task_list_free(q, &b);
    } else if (op < 83) { /* requeue_dead */
        rm = pers_requeue_dead(m, tenant, id);
        rq = pers_requeue_dead(q, tenant, id);
        if (rm != rq) {
            snprintf(why, size, "requeue_dead %s: %s vs %s", id, pers_result_string(rm),
                     pers_result_string(rq));
            return 0;
        }
    } else if (op < 86) { /* get_result */
        pers_task_result a, b;
        rm = pers_get_result(m, tenant, id, &a);
        rq = pers_get_result(q, tenant, id, &b);
        if (rm != rq ||
            (rm == PERS_OK &&
             (a.state != b.state || a.attempts != b.attempts || a.finished_ms != b.finished_ms ||
              a.data_len != b.data_len || strcmp(a.queue, b.queue) != 0 ||
              memcmp(a.data, b.data, a.data_len) != 0))) {
            snprintf(why, size, "get_result %s: %s vs %s", id, pers_result_string(rm),
                     pers_result_string(rq));
            pers_task_result_free(m, &a);
            pers_task_result_free(q, &b);
            return 0;
        }
        pers_task_result_free(m, &a);
        pers_task_result_free(q, &b);
    } else if (op < 89) { /* retention (no limit: the two choose differently under one) */
        pers_cleanup_req cr;
        size_t xm = 0, xq = 0;
        memset(&cr, 0, sizeof cr);
        cr.tenant = rnd(r, 2) ? NULL : tenant;
        cr.older_than_ms = rnd(r, 60);
        cr.include_dead = (int)rnd(r, 2);
        if (rnd(r, 3) == 0) {
            rm = pers_cleanup_results(m, &cr, &xm);
            rq = pers_cleanup_results(q, &cr, &xq);
        } else {
            rm = pers_cleanup_tasks(m, &cr, &xm);
            rq = pers_cleanup_tasks(q, &cr, &xq);
        }
        if (rm != rq || xm != xq) {
            snprintf(why, size, "cleanup: %s %lu vs %s %lu", pers_result_string(rm),
                     (unsigned long)xm, pers_result_string(rq), (unsigned long)xq);
            return 0;
        }
    } else if (op < 95) { /* subscriptions */
        const char *qs[2];
        const char *worker = rnd(r, 2) ? "w1" : "w2";
        pers_subscription_list a, b;
        size_t xm = 0, xq = 0, i;
        uint32_t w = rnd(r, 4);
        qs[0] = queues[rnd(r, 3)];
        qs[1] = queues[rnd(r, 3)];
        if (w == 0) {
            pers_subscribe_req sr;
            memset(&sr, 0, sizeof sr);
            sr.tenant = tenant;
            sr.worker_id = worker;
            sr.queues = qs;
            sr.queue_count = qs[0] == qs[1] ? 1 : 2;
            sr.callback = rnd(r, 2) ? "http://a/push" : "http://b/push";
            sr.ttl_ms = 1 + rnd(r, 50);
            rm = pers_subscribe(m, &sr, &xm);
            rq = pers_subscribe(q, &sr, &xq);
        } else if (w == 1) {
            const char *one = rnd(r, 2) ? qs[0] : NULL;
            rm = pers_unsubscribe(m, tenant, worker, one, &xm);
            rq = pers_unsubscribe(q, tenant, worker, one, &xq);
        } else if (w == 2) {
            const char *which = rnd(r, 2) ? tenant : NULL;
            rm = pers_expire_subscriptions(m, which, &xm);
            rq = pers_expire_subscriptions(q, which, &xq);
        } else {
            if (rnd(r, 2)) {
                rm = pers_list_subscriptions_by_queue(m, tenant, qs[0], &a);
                rq = pers_list_subscriptions_by_queue(q, tenant, qs[0], &b);
            } else {
                rm = pers_list_subscriptions_by_worker(m, tenant, worker, &a);
                rq = pers_list_subscriptions_by_worker(q, tenant, worker, &b);
            }
            if (rm == PERS_OK && rq == PERS_OK && a.count == b.count)
                for (i = 0; i < a.count; i++)
                    if (strcmp(a.items[i].worker_id, b.items[i].worker_id) != 0 ||
                        strcmp(a.items[i].queue, b.items[i].queue) != 0 ||
                        strcmp(a.items[i].callback, b.items[i].callback) != 0 ||
                        a.items[i].created_ms != b.items[i].created_ms ||
                        a.items[i].updated_ms != b.items[i].updated_ms ||
                        a.items[i].expires_ms != b.items[i].expires_ms)
                        xq = 1000 + i;
            if (rm == PERS_OK && rq == PERS_OK && a.count != b.count)
                xq = 999;
            pers_subscription_list_free(m, &a);
            pers_subscription_list_free(q, &b);
        }
        if (rm != rq || xm != xq) {
            snprintf(why, size, "subscriptions op %u: %s %lu vs %s %lu", w,
                     pers_result_string(rm), (unsigned long)xm, pers_result_string(rq),
                     (unsigned long)xq);
            return 0;
        }
    } else { /* time passes */
        advance(clock, rnd(r, 25));
    }
    return 1;
}

TEST(differential_against_memory_backend)
{
    static const uint64_t seeds[] = { 1, 2, 3, 0x9e3779b97f4a7c15ull, 20260101 };
    size_t k;
    for (k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        fake_clock clock;
        pers_store *m = NULL, *q;
        pers_store_desc desc;
        char path[256], why[1024];
        known_lease leases[DIFF_LEASES];
        size_t nleases = 0;
        rng r;
        int step, ok = 1;
        clock.now = T0;
        r.s = seeds[k];
        new_path(path, sizeof path, "diff");
        desc = clock_desc(&clock, why, sizeof why);
        CHECK_INT(pers_open_vtable(pers_memory_vtable(), NULL, &desc, &m), PERS_OK);
        q = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
        CHECK(q != NULL);
        if (m == NULL || q == NULL)
            return;
        for (step = 0; step < 2500 && ok; step++) {
            why[0] = '\0';
            ok = diff_step(&r, &clock, m, q, leases, &nleases, why, sizeof why);
            if (!ok) {
                char line[1400];
                snprintf(line, sizeof line, "seed %llu step %d: %s",
                         (unsigned long long)seeds[k], step, why);
                test_fail_line(__FILE__, __LINE__, line);
            }
        }
        pers_destroy(m);
        pers_destroy(q);
        remove_db(path);
    }
}

/* ---------------------------------------------------------------------------------------------
   Durability, registry, configuration
   ------------------------------------------------------------------------------------------- */

TEST(survives_close_and_reopen)
{
    fake_clock clock;
    char path[256], id[PERS_ID_MAX + 1];
    pers_store *s;
    pers_enqueue_req r = make_req("acme", "q", "durable");
    pers_enqueue_res res;
    pers_task t;
    pers_task_result tr;
    pers_completion done;
    pers_lease l;
    uint64_t token;
    clock.now = T0;
    new_path(path, sizeof path, "durable");
    s = open_sq(&clock, path, "");
    r.idempotency_key = "once";
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    strcpy(id, res.task_id);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    pers_destroy(s);

    s = open_sq(&clock, path, "");
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK); /* the key survived */
    CHECK_INT(res.duplicate, 1);
    CHECK_STR(res.task_id, id);
    CHECK_INT(claim1(s, "acme", "q", 1000, &t), 1);
    CHECK_STR((const char *)t.payload, "durable");
    token = t.lease_token;
    CHECK_INT(token, 1);
    pers_task_free(s, &t);
    pers_destroy(s);

    /* The lease, its token and the token counter survive too. */
    s = open_sq(&clock, path, "");
    r.idempotency_key = NULL;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", 1000, &t), 1);
    CHECK_INT(t.lease_token, token + 1);
    pers_task_free(s, &t);
    l.tenant = "acme";
    l.task_id = id;
    l.token = token;
    done.failed = 0;
    done.data = "ok";
    done.data_len = 2;
    CHECK_INT(pers_complete(s, &l, &done), PERS_OK);
    pers_destroy(s);

    s = open_sq(&clock, path, "");
    CHECK_INT(pers_get_result(s, "acme", id, &tr), PERS_OK);
    CHECK_INT(tr.state, PERS_STATE_COMPLETED);
    CHECK_STR((const char *)tr.data, "ok");
    pers_task_result_free(s, &tr);
    CHECK_INT(pers_complete(s, &l, &done), PERS_ERR_ALREADY_COMPLETED);
    pers_destroy(s);
    remove_db(path);
}

TEST(registry_open_caps_and_env_default)
{
    plg_registry *reg = NULL;
    pers_store *s = NULL;
    fake_clock clock;
    char path[256], config[512], why[1024];
    pers_store_desc desc;
    pers_caps caps;
    clock.now = T0;
    desc = clock_desc(&clock, why, sizeof why);
    new_path(path, sizeof path, "registry");
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_memory_register(reg), PERS_OK);
    CHECK_INT(pers_sqlite_register(reg), PERS_OK);
    CHECK_INT(pers_sqlite_register(reg), PERS_ERR_DUPLICATE);
    snprintf(config, sizeof config,
             "{\"path\":\"%s\",\"synchronous\":\"NORMAL\",\"busy_timeout\":\"250ms\","
             "\"max_payload_bytes\":1000}",
             path);
    CHECK_INT(pers_open(reg, "sqlite", config, &desc, &s), PERS_OK);
    CHECK_STR(why, "");
    CHECK_STR(pers_store_provider(s), "sqlite");
    CHECK_INT(((psqli_store *)s->backend)->busy_timeout_ms, 250);
    CHECK_INT(((psqli_store *)s->backend)->synchronous_full, 0);
    CHECK_INT(raw_int(db_of(s), "PRAGMA synchronous"), 1); /* NORMAL */
    CHECK_INT(pers_capabilities(s, &caps), PERS_OK);
    CHECK(caps.flags & PERS_CAP_DURABLE);
    CHECK(caps.flags & PERS_CAP_SHARED);
    CHECK(caps.flags & PERS_CAP_BATCH);
    CHECK(caps.flags & PERS_CAP_STATS);
    CHECK(caps.flags & PERS_CAP_DEAD_LETTER);
    CHECK(caps.flags & PERS_CAP_TASK_RETENTION);
    CHECK(caps.flags & PERS_CAP_RESULTS);
    CHECK(caps.flags & PERS_CAP_SUBSCRIPTIONS);
    CHECK(caps.flags & PERS_CAP_HEALTH);
    CHECK_INT(caps.max_payload_bytes, 1000);
    CHECK_INT(pers_health(s), PERS_OK);
    CHECK_STR(sqlite3_db_filename(db_of(s), "main"), path);
    pers_destroy(s);

    /* The defaults: FULL, 5 s, 1 MiB. */
    snprintf(config, sizeof config, "{\"path\":\"%s\"}", path);
    CHECK_INT(pers_open(reg, "sqlite", config, &desc, &s), PERS_OK);
    CHECK_INT(raw_int(db_of(s), "PRAGMA synchronous"), 2); /* FULL */
    CHECK_INT(raw_int(db_of(s), "PRAGMA journal_mode = WAL") >= 0, 1);
    CHECK_INT(((psqli_store *)s->backend)->busy_timeout_ms, 5000);
    CHECK_INT(pers_capabilities(s, &caps), PERS_OK);
    CHECK_INT(caps.max_payload_bytes, 1048576);
    pers_destroy(s);

    /* No provider set: the embedded default is "sqlite" when it is registered. */
    setenv("PERSISTENCE_CONFIG", config, 1);
    unsetenv("PERSISTENCE_PROVIDER");
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(pers_store_provider(s), "sqlite");
    pers_destroy(s);
    /* ... and without a configuration it keeps its file in PERSISTENCE_DIR (else $TMPDIR). */
    unsetenv("PERSISTENCE_CONFIG");
    setenv("PERSISTENCE_DIR", test_dir, 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(pers_store_provider(s), "sqlite");
    if (s != NULL) {
        char expected[256];
        snprintf(expected, sizeof expected, "%s/persistence.sqlite", test_dir);
        CHECK_STR(sqlite3_db_filename(db_of(s), "main"), expected);
        pers_destroy(s);
        remove_db(expected);
    }
    unsetenv("PERSISTENCE_DIR");
    plg_registry_destroy(reg);
    remove_db(path);
}

TEST(config_validation)
{
    fake_clock clock;
    char path[256], why[1024], json[512];
    pers_store *s = NULL;
    pers_store_desc desc;
    plg_registry *reg = NULL;
    const pers_backend_vtable *vt = pers_sqlite_vtable();
    pers_detail d;
    void *b = NULL;
    size_t n = 0;
    const plg_config_key *schema = pers_sqlite_config_schema(&n);
    clock.now = T0;
    new_path(path, sizeof path, "config");
    CHECK_INT(n, 4);
    CHECK_STR(schema[0].key, "path");
    CHECK(schema[0].flags & PLG_KEY_REQUIRED);
    CHECK_INT(plg_schema_check(NULL, schema, n), PLG_OK);

    CHECK_INT(pers_sqlite_open("{}", NULL, &s), PERS_ERR_CONFIG);
    desc = clock_desc(&clock, why, sizeof why);
    CHECK_INT(pers_sqlite_open("{}", &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "path");
    CHECK(s == NULL);
    CHECK_INT(try_open(&clock, path, "\"synchronous\":\"OFF\"", &s, why, sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "synchronous");
    CHECK_INT(try_open(&clock, path, "\"busy_timeout\":\"soon\"", &s, why, sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "busy_timeout");
    CHECK_INT(try_open(&clock, path, "\"busy_timeout\":\"2h\"", &s, why, sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "busy_timeout");
    CHECK_INT(try_open(&clock, path, "\"max_payload_bytes\":0", &s, why, sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "max_payload_bytes");
    CHECK_INT(try_open(&clock, path, "\"pathh\":\"typo.db\"", &s, why, sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "pathh");
    /* Every problem at once, each named. */
    CHECK_INT(try_open(&clock, path, "\"synchronous\":\"OFF\",\"max_payload_bytes\":-1", &s, why,
                       sizeof why),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "synchronous");
    CHECK_CONTAINS(why, "max_payload_bytes");
    CHECK(!file_exists(path)); /* nothing was created for a bad configuration */
    CHECK_INT(try_open(&clock, path, "\"synchronous\":\"normal\"", &s, why, sizeof why), PERS_OK);
    pers_destroy(s);
    s = NULL;

    /* Through a registry: the same schema, strict by the registry's own rule. */
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_sqlite_register(reg), PERS_OK);
    CHECK_INT(pers_open(reg, "sqlite", "{\"synchronous\":\"FULL\"}", &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "path");
    snprintf(json, sizeof json, "{\"path\":\"%s\",\"busy_timeout\":-5}", path);
    CHECK_INT(pers_open(reg, "sqlite", json, &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "busy_timeout");
    plg_registry_destroy(reg);

    /* A direct caller of the vtable without a configuration. */
    memset(&d, 0, sizeof d);
    CHECK_INT(vt->open_store(NULL, NULL, &b, &d), PERS_ERR_CONFIG);
    CHECK_CONTAINS(d.text, "path");
    CHECK(b == NULL);
    remove_db(path);
}

/* ---------------------------------------------------------------------------------------------
   Schema version, migration, refusals
   ------------------------------------------------------------------------------------------- */

TEST(schema_version_recorded)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    clock.now = T0;
    new_path(path, sizeof path, "schema");
    s = open_sq(&clock, path, "");
    CHECK_INT(raw_int(db_of(s), "PRAGMA user_version"), PERS_SQLITE_SCHEMA_VERSION);
    CHECK_INT(raw_int(db_of(s), "PRAGMA application_id"), PERS_SQLITE_APPLICATION_ID);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM sqlite_master WHERE name = "
                                "'pq_tasks_finished'"),
              1);
    pers_destroy(s);
    /* Reopening a current file changes nothing and migrates nothing. */
    s = open_sq(&clock, path, "");
    CHECK_INT(raw_int(db_of(s), "PRAGMA user_version"), PERS_SQLITE_SCHEMA_VERSION);
    pers_destroy(s);
    remove_db(path);
}

TEST(older_schema_is_migrated)
{
    fake_clock clock;
    char path[256];
    sqlite3 *db = NULL;
    pers_detail d;
    pers_store *s;
    pers_task t;
    pers_stats st;
    clock.now = T0;
    new_path(path, sizeof path, "v1");
    /* A version-1 file, as the first release wrote it, with one ready task in it. */
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "PRAGMA journal_mode = WAL; BEGIN", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(psqli_migrate(db, 0, 1, &d), PERS_OK);
    CHECK_INT(sqlite3_exec(db,
                           "INSERT INTO pq_tasks (tenant, queue, id, state, priority, attempts, "
                           "max_attempts, created_ms, due_ms, payload) VALUES ('acme', 'q', "
                           "'old-task', 2, 0, 0, 5, 1, 1, x'6f6c64'); COMMIT",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(raw_int(db, "PRAGMA user_version"), 1);
    CHECK_INT(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'pq_tasks_finished'"),
              0);
    sqlite3_close(db);

    s = open_sq(&clock, path, "");
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_INT(raw_int(db_of(s), "PRAGMA user_version"), PERS_SQLITE_SCHEMA_VERSION);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM sqlite_master WHERE name = "
                                "'pq_tasks_finished'"),
              1);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM sqlite_master WHERE name = "
                                "'pq_subscriptions_expiry'"),
              1);
    CHECK_INT(raw_int(db_of(s), "PRAGMA integrity_check = 1") >= 0, 1);
    CHECK_INT(claim1(s, "acme", "q", 1000, &t), 1);
    CHECK_STR(t.id, "old-task");
    CHECK_STR((const char *)t.payload, "old");
    {
        pers_lease l = lease_of(&t);
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    }
    pers_task_free(s, &t);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, 1);
    pers_destroy(s);
    remove_db(path);
}

/* Opening path must fail with code and a message containing fragment, and leave the file
   byte for byte as it was (and no companion file behind). */
static void check_refused(const char *path, pers_result code, const char *fragment)
{
    fake_clock clock;
    pers_store *s = NULL;
    char why[1024], wal[300];
    size_t before_len = 0, after_len = 0;
    char *before = read_file(path, &before_len), *after;
    clock.now = T0;
    CHECK(before != NULL);
    CHECK_INT(try_open(&clock, path, "", &s, why, sizeof why), code);
    CHECK_CONTAINS(why, fragment);
    CHECK(s == NULL);
    after = read_file(path, &after_len);
    CHECK(after != NULL);
    CHECK_INT(after_len, before_len);
    CHECK(before != NULL && after != NULL && before_len == after_len &&
          memcmp(before, after, before_len) == 0);
    snprintf(wal, sizeof wal, "%s-wal", path);
    CHECK(!file_exists(wal));
    free(before);
    free(after);
}

TEST(newer_schema_refused_unchanged)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    clock.now = T0;
    new_path(path, sizeof path, "newer");
    s = open_sq(&clock, path, "");
    CHECK_INT(pers_enqueue(s, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    {
        pers_enqueue_req r = make_req("acme", "q", "x");
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    }
    pers_destroy(s);
    CHECK_INT(raw_exec(path, "PRAGMA user_version = 3"), SQLITE_OK);
    check_refused(path, PERS_ERR_CONFIG, "newer version");
    check_refused(path, PERS_ERR_CONFIG, "schema version 3");
    remove_db(path);
}

TEST(foreign_files_refused_unchanged)
{
    char path[256];
    FILE *f;
    /* An SQLite database of someone else. */
    new_path(path, sizeof path, "foreign");
    CHECK_INT(raw_exec(path, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);"
                             "INSERT INTO accounts (owner) VALUES ('alice')"),
              SQLITE_OK);
    check_refused(path, PERS_ERR_CONFIG, "not one of this backend");
    remove_db(path);
    /* Another application's id on an otherwise empty database. */
    new_path(path, sizeof path, "foreign-id");
    CHECK_INT(raw_exec(path, "PRAGMA application_id = 1234; PRAGMA user_version = 1"), SQLITE_OK);
    check_refused(path, PERS_ERR_CONFIG, "application_id");
    remove_db(path);
    /* Not an SQLite file at all. */
    new_path(path, sizeof path, "text");
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
        int i;
        for (i = 0; i < 200; i++)
            fputs("this is a text file, not a database\n", f);
        fclose(f);
    }
    check_refused(path, PERS_ERR_CORRUPT, "file is not a database");
    check_refused(path, PERS_ERR_CORRUPT, "SQLITE_NOTADB");
    remove_db(path);
}

/* ---------------------------------------------------------------------------------------------
   Native errors
   ------------------------------------------------------------------------------------------- */

TEST(busy_is_unavailable_with_sqlite_message)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    sqlite3 *other = NULL;
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_detail d;
    pers_enqueue_res res;
    pers_stats st;
    clock.now = T0;
    new_path(path, sizeof path, "busy");
    s = open_sq(&clock, path, "\"busy_timeout\":\"50ms\"");
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    /* Another connection (as another process would) holds the write lock. */
    CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
    CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(pers_errmsg(s), "database is locked");
    CHECK_CONTAINS(pers_errmsg(s), "SQLITE_BUSY");
    /* The same through the vtable: the native code is in the detail. */
    memset(&d, 0, sizeof d);
    CHECK_INT(pers_sqlite_vtable()->enqueue(s->backend, &r, &res, &d), PERS_ERR_UNAVAILABLE);
    CHECK_INT(d.native_code & 0xff, SQLITE_BUSY);
    /* Reads do not need the write lock (WAL). */
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 1); /* the busy writes were not applied */
    CHECK_INT(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 2);
    pers_destroy(s);
    remove_db(path);
}

TEST(full_is_limit_with_sqlite_message)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req r = make_req("acme", "q", NULL);
    pers_detail d;
    pers_enqueue_res res;
    char *big = (char *)malloc(60000);
    int64_t pages;
    pers_result rc = PERS_OK;
    int i;
    clock.now = T0;
    new_path(path, sizeof path, "full");
    s = open_sq(&clock, path, "");
    memset(big, 'x', 60000);
    r.payload = big;
    r.payload_len = 60000;
    pages = raw_int(db_of(s), "PRAGMA page_count");
    /* A quota of a few pages more than the file has: the disk is "full" soon. */
    {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages + 40);
        CHECK_INT(sqlite3_exec(db_of(s), sql, NULL, NULL, NULL), SQLITE_OK);
    }
    for (i = 0; i < 20 && rc == PERS_OK; i++)
        rc = pers_enqueue(s, &r, NULL);
    CHECK_INT(rc, PERS_ERR_LIMIT);
    CHECK_CONTAINS(pers_errmsg(s), "database or disk is full");
    CHECK_CONTAINS(pers_errmsg(s), "SQLITE_FULL");
    memset(&d, 0, sizeof d);
    CHECK_INT(pers_sqlite_vtable()->enqueue(s->backend, &r, &res, &d), PERS_ERR_LIMIT);
    CHECK_INT(d.native_code & 0xff, SQLITE_FULL);
    /* The store keeps working for what fits. */
    r.payload_len = 10;
    CHECK_INT(pers_health(s), PERS_OK);
    pers_destroy(s);
    free(big);
    remove_db(path);
}

TEST(readonly_is_unavailable_with_sqlite_message)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_detail d;
    pers_enqueue_res res;
    clock.now = T0;
    new_path(path, sizeof path, "readonly");
    s = open_sq(&clock, path, "");
    CHECK_INT(sqlite3_exec(db_of(s), "PRAGMA query_only = 1", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(pers_errmsg(s), "readonly");
    CHECK_CONTAINS(pers_errmsg(s), "SQLITE_READONLY");
    memset(&d, 0, sizeof d);
    CHECK_INT(pers_sqlite_vtable()->enqueue(s->backend, &r, &res, &d), PERS_ERR_UNAVAILABLE);
    CHECK_INT(d.native_code & 0xff, SQLITE_READONLY);
    CHECK_INT(sqlite3_exec(db_of(s), "PRAGMA query_only = 0", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    pers_destroy(s);
    remove_db(path);
}

TEST(corrupt_is_corrupt_with_sqlite_message)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req r = make_req("acme", "q", NULL);
    pers_enqueue_req batch[100];
    char payload[300];
    pers_task t;
    pers_result rc;
    int i;
    FILE *f;
    clock.now = T0;
    new_path(path, sizeof path, "corrupt");
    s = open_sq(&clock, path, "");
    memset(payload, 'p', sizeof payload);
    r.payload = payload;
    r.payload_len = sizeof payload;
    for (i = 0; i < 100; i++)
        batch[i] = r;
    for (i = 0; i < 5; i++)
        CHECK_INT(pers_enqueue_batch(s, batch, 100, NULL), PERS_OK);
    pers_destroy(s); /* the last connection checkpoints the WAL into the file */
    /* Overwrite every page after the schema page with garbage. */
    f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f != NULL) {
        char junk[4096];
        memset(junk, 0xa5, sizeof junk);
        CHECK_INT(fseek(f, 4096, SEEK_SET), 0);
        for (i = 0; i < 60; i++)
            fwrite(junk, 1, sizeof junk, f);
        fclose(f);
    }
    {
        char why[1024];
        s = NULL;
        rc = try_open(&clock, path, "", &s, why, sizeof why);
        if (rc != PERS_OK) { /* detected at open already: also CORRUPT */
            CHECK_INT(rc, PERS_ERR_CORRUPT);
            CHECK_CONTAINS(why, "malformed");
        }
    }
    if (s != NULL) {
        const char *queues[1] = { "q" };
        pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 1);
        pers_claim_res cres;
        CHECK_INT(pers_claim(s, &c, &t, &cres), PERS_ERR_CORRUPT);
        CHECK_CONTAINS(pers_errmsg(s), "malformed");
        CHECK_INT(pers_get_task(s, "acme", "whatever", &t), PERS_ERR_CORRUPT);
        CHECK_CONTAINS(pers_errmsg(s), "malformed");
        CHECK_CONTAINS(pers_errmsg(s), "SQLITE_CORRUPT");
        pers_destroy(s);
    }
    remove_db(path);
}

TEST(cantopen_is_config_with_sqlite_message)
{
    fake_clock clock;
    char path[256], why[1024];
    pers_store *s = NULL;
    pers_detail d;
    void *b = NULL;
    plg_config *cfg = NULL;
    char json[400];
    clock.now = T0;
    snprintf(path, sizeof path, "%s/no-such-dir/queue.db", test_dir);
    CHECK_INT(try_open(&clock, path, "", &s, why, sizeof why), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "unable to open database file");
    CHECK_CONTAINS(why, "SQLITE_CANTOPEN");
    CHECK(s == NULL);
    /* A directory is no database file either. */
    CHECK_INT(try_open(&clock, test_dir, "", &s, why, sizeof why), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "SQLITE_CANTOPEN");
    /* Through the vtable, the native code. */
    snprintf(json, sizeof json, "{\"path\":\"%s\"}", path);
    CHECK_INT(plg_config_parse_json(NULL, pers_sqlite_config_schema(NULL), 4, json,
                                    PLG_CONFIG_STRICT, &cfg),
              PLG_OK);
    memset(&d, 0, sizeof d);
    CHECK_INT(pers_sqlite_vtable()->open_store(cfg, NULL, &b, &d), PERS_ERR_CONFIG);
    CHECK_INT(d.native_code & 0xff, SQLITE_CANTOPEN);
    plg_config_destroy(cfg);
}

TEST(error_mapping_table)
{
    CHECK_INT(psqli_map(SQLITE_BUSY), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_BUSY_SNAPSHOT), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_LOCKED), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_FULL), PERS_ERR_LIMIT);
    CHECK_INT(psqli_map(SQLITE_CORRUPT), PERS_ERR_CORRUPT);
    CHECK_INT(psqli_map(SQLITE_CORRUPT_INDEX), PERS_ERR_CORRUPT);
    CHECK_INT(psqli_map(SQLITE_NOTADB), PERS_ERR_CORRUPT);
    CHECK_INT(psqli_map(SQLITE_READONLY), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_READONLY_DBMOVED), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_CANTOPEN), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_IOERR_FSYNC), PERS_ERR_UNAVAILABLE);
    CHECK_INT(psqli_map(SQLITE_NOMEM), PERS_ERR_NO_MEMORY);
    CHECK_INT(psqli_map(SQLITE_TOOBIG), PERS_ERR_TOO_LARGE);
    CHECK_INT(psqli_map(SQLITE_CONSTRAINT), PERS_ERR_INTERNAL);
    CHECK_INT(psqli_map(SQLITE_ERROR), PERS_ERR_INTERNAL);
    CHECK_STR(psqli_code_name(SQLITE_IOERR_FSYNC), "SQLITE_IOERR");
}

/* ---------------------------------------------------------------------------------------------
   Indexes: query plans, and claim cost independent of the finished tasks
   ------------------------------------------------------------------------------------------- */

/* The EXPLAIN QUERY PLAN lines of a statement's text, joined by " | ". */
static void plan_of_sql(sqlite3 *db, const char *text, char *out, size_t size)
{
    char sql[PSQLI_MULTI_SQL_MAX + 32];
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", text);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, size, "prepare failed: %s", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? " | " : "",
                 (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_finalize(st);
}

/* ... of a cached statement. */
static void plan_of(sqlite3 *db, int which, char *out, size_t size)
{
    plan_of_sql(db, psqli_sql[which], out, size);
}

/* ... of the multi-row statement `kind` for `rows` rows. */
static void plan_of_multi(sqlite3 *db, int kind, int rows, char *out, size_t size)
{
    char sql[PSQLI_MULTI_SQL_MAX];
    psqli_multi_sql(kind, rows, sql);
    plan_of_sql(db, sql, out, size);
}

TEST(query_plans_use_the_partial_indexes)
{
    fake_clock clock;
    char path[256], plan[2048];
    pers_store *s;
    clock.now = T0;
    new_path(path, sizeof path, "plans");
    s = open_sq(&clock, path, "");
    plan_of(db_of(s), PSQLI_ST_CLAIM_PICK, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INDEX pq_tasks_ready (tenant=? AND queue=?)");
    CHECK_NOT_CONTAINS(plan, "SCAN pq_tasks");
    CHECK_NOT_CONTAINS(plan, "TEMP B-TREE");
    /* The multi-row statements go from their VALUES to the rows, never over the table. */
    plan_of_multi(db_of(s), PSQLI_MULTI_CLAIM, PSQLI_ROWS_MAX, plan, sizeof plan);
    CHECK_CONTAINS(plan, "SEARCH pq_tasks USING INTEGER PRIMARY KEY (rowid=?)");
    CHECK_NOT_CONTAINS(plan, "SCAN pq_tasks");
    CHECK_NOT_CONTAINS(plan, "TEMP B-TREE");
    plan_of_multi(db_of(s), PSQLI_MULTI_COMPLETE, PSQLI_ROWS_MAX, plan, sizeof plan);
    CHECK_CONTAINS(plan, "SEARCH pq_tasks USING INDEX pq_tasks_id (tenant=? AND id=?)");
    CHECK_NOT_CONTAINS(plan, "SCAN pq_tasks");
    CHECK_NOT_CONTAINS(plan, "TEMP B-TREE");
    plan_of_multi(db_of(s), PSQLI_MULTI_INSERT, 2, plan, sizeof plan);
    CHECK_CONTAINS(plan, "SCAN 2 CONSTANT ROWS");
    plan_of(db_of(s), PSQLI_ST_PROMOTE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INDEX pq_tasks_scheduled (tenant=? AND queue=? AND due_ms<?)");
    plan_of(db_of(s), PSQLI_ST_EXPIRE, plan, sizeof plan);
    CHECK_CONTAINS(plan,
                   "USING INDEX pq_tasks_leased (tenant=? AND queue=? AND lease_expires_ms<?)");
    plan_of(db_of(s), PSQLI_ST_NEXT_DUE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "pq_tasks_scheduled");
    plan_of(db_of(s), PSQLI_ST_STATS, plan, sizeof plan);
    CHECK_NOT_CONTAINS(plan, "SCAN pq_tasks");
    CHECK_CONTAINS(plan, "pq_tasks_ready");
    CHECK_CONTAINS(plan, "pq_tasks_leased");
    CHECK_CONTAINS(plan, "pq_tasks_dead");
    /* Worker operations read the row by (tenant, id), then complete and nack write it by
       rowid. */
    plan_of(db_of(s), PSQLI_ST_LEASE_STATE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INDEX pq_tasks_id (tenant=? AND id=?)");
    plan_of(db_of(s), PSQLI_ST_COMPLETE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INTEGER PRIMARY KEY (rowid=?)");
    plan_of(db_of(s), PSQLI_ST_NACK, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INTEGER PRIMARY KEY (rowid=?)");
    plan_of(db_of(s), PSQLI_ST_EXTEND, plan, sizeof plan);
    CHECK_CONTAINS(plan, "USING INDEX pq_tasks_id (tenant=? AND id=?)");
    plan_of(db_of(s), PSQLI_ST_FIND_IDEM, plan, sizeof plan);
    CHECK_CONTAINS(plan, "pq_tasks_idem");
    plan_of(db_of(s), PSQLI_ST_CLEANUP_DONE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "pq_tasks_finished");
    CHECK_NOT_CONTAINS(plan, "SCAN pq_tasks");
    plan_of(db_of(s), PSQLI_ST_DEAD_LIST, plan, sizeof plan);
    CHECK_CONTAINS(plan, "pq_tasks_dead");
    plan_of(db_of(s), PSQLI_ST_SUB_EXPIRE, plan, sizeof plan);
    CHECK_CONTAINS(plan, "pq_subscriptions_expiry");
    pers_destroy(s);
    remove_db(path);
}

/* The virtual-machine steps of the multi-row statements since the last call (and resets). */
static int64_t multi_steps(psqli_store *b)
{
    int64_t total = 0;
    int kind, k;
    for (kind = 0; kind < PSQLI_MULTI_COUNT_; kind++)
        for (k = 0; k <= PSQLI_ROWS_LOG2; k++)
            if (b->multi[kind][k] != NULL)
                total += sqlite3_stmt_status(b->multi[kind][k], SQLITE_STMTSTATUS_VM_STEP, 1);
    return total;
}

/* SQLite virtual-machine steps of one enqueue + claim + complete cycle (all statements). */
static int64_t cycle_steps(pers_store *s, int n)
{
    psqli_store *b = (psqli_store *)s->backend;
    int64_t total = 0;
    int i, k;
    for (k = 0; k < n; k++) {
        pers_enqueue_req r = make_req("acme", "q", "x");
        pers_task t;
        for (i = 0; i < PSQLI_ST_COUNT_; i++)
            if (b->stmts[i] != NULL)
                (void)sqlite3_stmt_status(b->stmts[i], SQLITE_STMTSTATUS_VM_STEP, 1);
        (void)multi_steps(b);
        if (pers_enqueue(s, &r, NULL) != PERS_OK || claim1(s, "acme", "q", 1000, &t) != 1)
            return -1;
        {
            pers_lease l = lease_of(&t);
            if (pers_complete(s, &l, NULL) != PERS_OK)
                return -1;
        }
        pers_task_free(s, &t);
        for (i = 0; i < PSQLI_ST_COUNT_; i++)
            if (b->stmts[i] != NULL)
                total += sqlite3_stmt_status(b->stmts[i], SQLITE_STMTSTATUS_VM_STEP, 1);
        total += multi_steps(b);
    }
    return total;
}

TEST(claim_cost_independent_of_finished_tasks)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req batch[1000];
    char key[1000][32];
    int64_t small, large;
    int i, k;
    clock.now = T0;
    new_path(path, sizeof path, "cost");
    s = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
    /* A few finished tasks, then measure. */
    for (i = 0; i < 10; i++)
        (void)cycle_steps(s, 1);
    small = cycle_steps(s, 20);
    /* 20,000 more finished tasks (completed, failed and dead) in the same queue. */
    for (k = 0; k < 20; k++) {
        const char *queues[1] = { "q" };
        pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 1000);
        pers_task *tasks = (pers_task *)calloc(1000, sizeof *tasks);
        pers_claim_res res;
        size_t j;
        for (i = 0; i < 1000; i++) {
            batch[i] = make_req("acme", "q", "filler");
            snprintf(key[i], sizeof key[i], "f%d-%d", k, i);
            batch[i].idempotency_key = key[i];
            batch[i].max_attempts = 1;
        }
        CHECK_INT(pers_enqueue_batch(s, batch, 1000, NULL), PERS_OK);
        CHECK_INT(pers_claim(s, &c, tasks, &res), PERS_OK);
        CHECK_INT(res.count, 1000);
        for (j = 0; j < res.count; j++) {
            pers_lease l = lease_of(&tasks[j]);
            pers_completion done;
            memset(&done, 0, sizeof done);
            done.failed = j % 3 == 1;
            if (j % 3 == 2)
                CHECK_INT(pers_nack(s, &l, 0, "x", NULL), PERS_OK); /* dead: 1 attempt */
            else
                CHECK_INT(pers_complete(s, &l, &done), PERS_OK);
        }
        pers_tasks_free(s, tasks, res.count);
        free(tasks);
    }
    large = cycle_steps(s, 20);
    printf("    VM steps of 20 enqueue+claim+complete cycles: %lld with 30 finished tasks, "
           "%lld with 20030\n",
           (long long)small, (long long)large);
    CHECK(small > 0);
    /* B-tree depth may add a step or two per lookup; a scan would add tens of thousands. */
    CHECK(large <= small + small / 10);
    pers_destroy(s);
    remove_db(path);
}

/* ---------------------------------------------------------------------------------------------
   Sharing a file: two stores, two processes, threads
   ------------------------------------------------------------------------------------------- */

TEST(tokens_increase_across_stores_of_one_file)
{
    fake_clock clock;
    char path[256];
    pers_store *a, *b;
    pers_enqueue_req r = make_req("acme", "q", "x");
    uint64_t last = 0;
    int i, ok = 1;
    clock.now = T0;
    new_path(path, sizeof path, "tokens");
    a = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
    b = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
    for (i = 0; i < 40; i++)
        CHECK_INT(pers_enqueue(i % 2 ? a : b, &r, NULL), PERS_OK);
    for (i = 0; i < 40; i++) {
        pers_task t;
        if (claim1(i % 3 ? a : b, "acme", "q", 100000, &t) != 1) {
            ok = 0;
            break;
        }
        if (t.lease_token != last + 1)
            ok = 0;
        last = t.lease_token;
        pers_task_free(a, &t);
    }
    CHECK(ok);
    CHECK_INT(last, 40);
    pers_destroy(a);
    pers_destroy(b);
    remove_db(path);
}

#define PROC_TASKS 600
#define PROC_COUNT 2

/* A child: opens its own store (never one inherited across fork), claims until nothing is left,
   writes "id token\n" per claimed task to fd, exits 0 on success. Leases are long: no task may
   be claimed twice while its lease lives. */
static void claim_child(const char *path, int fd, int index)
{
    fake_clock clock;
    pers_store *s;
    const char *queues[2] = { "q1", "q2" };
    char worker[16], line[256];
    pers_claim_req c;
    pers_claim_res res;
    pers_task tasks[5];
    size_t i;
    int idle = 0;
    clock.now = T0;
    s = open_sq(&clock, path, "\"synchronous\":\"NORMAL\",\"busy_timeout\":\"30s\"");
    if (s == NULL)
        _exit(3);
    snprintf(worker, sizeof worker, "proc%d", index);
    c = make_claim("acme", queues, 2, worker, 3600000, 1 + (size_t)index * 2);
    for (;;) {
        if (pers_claim(s, &c, tasks, &res) != PERS_OK) {
            fprintf(stderr, "child %d: %s\n", index, pers_errmsg(s));
            _exit(4);
        }
        if (res.count == 0) {
            if (++idle > 3)
                break;
            continue;
        }
        idle = 0;
        for (i = 0; i < res.count; i++) {
            pers_lease l = lease_of(&tasks[i]);
            int n = snprintf(line, sizeof line, "%s %llu\n", tasks[i].id,
                             (unsigned long long)tasks[i].lease_token);
            if (write(fd, line, (size_t)n) != n)
                _exit(5);
            if (i % 2 == 0 && pers_complete(s, &l, NULL) != PERS_OK)
                _exit(6);
        }
        pers_tasks_free(s, tasks, res.count);
    }
    pers_destroy(s);
    _exit(0);
}

TEST(two_processes_never_claim_one_task_twice)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req reqs[100];
    char ids[PROC_TASKS][24];
    int seen[PROC_TASKS];
    uint64_t *tokens = (uint64_t *)calloc(PROC_TASKS * 2, sizeof *tokens);
    size_t ntokens = 0;
    int fds[2], i, p;
    pid_t pids[PROC_COUNT];
    char *buf = (char *)malloc(1 << 20), *line;
    size_t len = 0;
    ssize_t n;
    int dup_claims = 0, unknown = 0, dup_tokens = 0, total = 0;
    pers_stats a, b;
    clock.now = T0;
    new_path(path, sizeof path, "procs");
    s = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
    for (i = 0; i < PROC_TASKS; i++) {
        snprintf(ids[i], sizeof ids[i], "task-%d", i);
        reqs[i % 100] = make_req("acme", (i / 100) % 3 ? "q1" : "q2", "work"); /* S19 */
        reqs[i % 100].task_id = ids[i];
        if (i % 100 == 99)
            CHECK_INT(pers_enqueue_batch(s, reqs, 100, NULL), PERS_OK);
    }
    pers_destroy(s); /* nothing of SQLite's may cross the fork */
    CHECK_INT(pipe(fds), 0);
    fflush(stdout);
    for (p = 0; p < PROC_COUNT; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            close(fds[0]);
            claim_child(path, fds[1], p);
        }
    }
    close(fds[1]);
    while ((n = read(fds[0], buf + len, (1 << 20) - 1 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    buf[len] = '\0';
    for (p = 0; p < PROC_COUNT; p++) {
        int status = 0;
        CHECK_INT(waitpid(pids[p], &status, 0), pids[p]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    memset(seen, 0, sizeof seen);
    for (line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        int index = -1;
        unsigned long long token = 0;
        size_t k;
        if (sscanf(line, "task-%d %llu", &index, &token) != 2 || index < 0 ||
            index >= PROC_TASKS) {
            unknown++;
            continue;
        }
        if (seen[index]++)
            dup_claims++;
        for (k = 0; k < ntokens; k++)
            if (tokens[k] == token)
                dup_tokens++;
        if (ntokens < PROC_TASKS * 2)
            tokens[ntokens++] = token;
        total++;
    }
    CHECK_INT(unknown, 0);
    CHECK_INT(dup_claims, 0);
    CHECK_INT(dup_tokens, 0);
    CHECK_INT(total, PROC_TASKS);
    s = open_sq(&clock, path, "");
    a = (pers_queue_stats(s, "acme", "q1", &a), a);
    b = (pers_queue_stats(s, "acme", "q2", &b), b);
    CHECK_INT(a.ready + b.ready, 0);
    CHECK_INT(a.leased + b.leased + a.completed + b.completed, PROC_TASKS);
    CHECK_INT(raw_int(db_of(s), "SELECT value FROM pq_meta WHERE name = 'token'"), PROC_TASKS);
    pers_destroy(s);
    free(buf);
    free(tokens);
    remove_db(path);
}

#define THREAD_TASKS 2000
#define THREAD_COUNT 4

typedef struct claim_ctx {
    pers_store *store;
    int *claimed;
    int worker, count, errors;
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
    c = make_claim("acme", queues, 2, worker, 600000, 1 + (size_t)ctx->worker);
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
            if (index % 2 == 0 && pers_complete(ctx->store, &l, NULL) != PERS_OK)
                ctx->errors++;
            ctx->count++;
        }
        pers_tasks_free(ctx->store, tasks, res.count);
    }
    return NULL;
}

TEST(threads_on_one_store_claim_every_task_once)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pthread_t threads[THREAD_COUNT];
    claim_ctx ctx[THREAD_COUNT];
    int *claimed = (int *)calloc(THREAD_TASKS, sizeof(int));
    int i, total = 0, wrong = 0;
    pers_enqueue_req reqs[100];
    char payloads[100][16];
    pers_stats a, b;
    clock.now = T0;
    new_path(path, sizeof path, "threads");
    s = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
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
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &a), PERS_OK);
    CHECK_INT(pers_queue_stats(s, "acme", "q2", &b), PERS_OK);
    CHECK_INT(a.completed + b.completed, THREAD_TASKS / 2);
    CHECK_INT(a.leased + b.leased, THREAD_TASKS / 2);
    free(claimed);
    pers_destroy(s);
    remove_db(path);
}

/* ---------------------------------------------------------------------------------------------
   A few behaviours spelled out (the differential run covers the rest)
   ------------------------------------------------------------------------------------------- */

TEST(batch_claim_order_and_tokens)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    const char *queues[2] = { "hi", "lo" };
    pers_claim_req c = make_claim("acme", queues, 2, "w", 1000, 5);
    pers_task t[5];
    pers_claim_res res;
    static const int prio[4] = { 0, 5, 0, 5 };
    static const char *const names[4] = { "a", "b", "c", "d" };
    int i;
    clock.now = T0;
    new_path(path, sizeof path, "order");
    s = open_sq(&clock, path, "");
    for (i = 0; i < 4; i++) {
        pers_enqueue_req r = make_req("acme", "hi", names[i]);
        r.priority = prio[i];
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    }
    {
        pers_enqueue_req r = make_req("acme", "lo", "e");
        r.priority = PERS_PRIORITY_MAX;
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    }
    CHECK_INT(pers_claim(s, &c, t, &res), PERS_OK);
    CHECK_INT(res.count, 5);
    CHECK_STR((const char *)t[0].payload, "b");
    CHECK_STR((const char *)t[1].payload, "d");
    CHECK_STR((const char *)t[2].payload, "a");
    CHECK_STR((const char *)t[3].payload, "c");
    CHECK_STR((const char *)t[4].payload, "e"); /* queues in the order given (S3) */
    for (i = 0; i < 5; i++) {
        CHECK_INT(t[i].lease_token, (uint64_t)i + 1);
        CHECK_INT(t[i].state, PERS_STATE_LEASED);
        CHECK_INT(t[i].lease_expires_ms, T0 + 1000);
    }
    pers_tasks_free(s, t, res.count);
    pers_destroy(s);
    remove_db(path);
}

TEST(batch_enqueue_is_one_transaction)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req reqs[3];
    pers_enqueue_res res[3];
    pers_stats st;
    clock.now = T0;
    new_path(path, sizeof path, "batch");
    s = open_sq(&clock, path, "");
    reqs[0] = make_req("acme", "q", "1");
    reqs[0].task_id = "x";
    reqs[1] = make_req("acme", "q", "2");
    reqs[2] = make_req("acme", "q", "3");
    reqs[2].task_id = "x";
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_ERR_DUPLICATE);
    CHECK_CONTAINS(pers_errmsg(s), "request 2");
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 0);
    reqs[2].task_id = "y";
    reqs[2].idempotency_key = "k";
    reqs[1].idempotency_key = "k";
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_OK);
    CHECK_INT(res[2].duplicate, 1);
    CHECK_STR(res[2].task_id, res[1].task_id);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 2);
    /* S19: one (tenant, queue) per batch, from the store and from the backend alike. */
    reqs[1].idempotency_key = reqs[2].idempotency_key = NULL;
    reqs[0].task_id = reqs[2].task_id = NULL;
    reqs[1].queue = "other";
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_ERR_INVALID_ARGUMENT);
    {
        pers_detail d;
        memset(&d, 0, sizeof d);
        CHECK_INT(pers_sqlite_vtable()->enqueue_batch(s->backend, reqs, 3, res, &d),
                  PERS_ERR_INVALID_ARGUMENT);
        CHECK_CONTAINS(d.text, "S19");
    }
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 2);
    pers_destroy(s);
    remove_db(path);
}

static int count_commit(void *user)
{
    ++*(int *)user;
    return 0; /* let it commit */
}

/* S20 on SQLite: one transaction (one commit) per batch, each item as complete decides it,
   the counters kept per queue; a failure of the storage midway applies no item. */
TEST(complete_batch_is_one_transaction)
{
    enum { N = 60 };
    fake_clock clock;
    char path[256], ids[N][16];
    pers_store *s;
    pers_enqueue_req reqs[N];
    pers_task t[N + 4];
    pers_lease l[N + 4];
    pers_completion done[N + 4];
    pers_result res[N + 4];
    pers_claim_res cr;
    pers_stats st;
    pers_task g;
    const char *q1[1] = { "q1" }, *q2[1] = { "q2" };
    pers_claim_req c1 = make_claim("acme", q1, 1, "w", 1000, N), c2;
    int commits = 0, i, n1, n2;
    clock.now = T0;
    new_path(path, sizeof path, "cbatch");
    s = open_sq(&clock, path, "\"synchronous\":\"NORMAL\"");
    CHECK_INT(((psqli_store *)s->backend)->validated, 1); /* opened behind a store */
    for (i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "t%02d", i);
        reqs[i] = make_req("acme", i < 40 ? "q1" : "q2", ids[i]);
        reqs[i].task_id = ids[i];
    }
    sqlite3_commit_hook(db_of(s), count_commit, &commits);
    CHECK_INT(pers_enqueue_batch(s, reqs, 40, NULL), PERS_OK);
    CHECK_INT(pers_enqueue_batch(s, reqs + 40, N - 40, NULL), PERS_OK);
    CHECK_INT(commits, 2);
    CHECK_INT(pers_claim(s, &c1, t, &cr), PERS_OK);
    n1 = (int)cr.count;
    CHECK_INT(n1, 40);
    c2 = make_claim("acme", q2, 1, "w", 1000, N - 40); /* room left in t[] */
    CHECK_INT(pers_claim(s, &c2, t + n1, &cr), PERS_OK);
    n2 = (int)cr.count;
    CHECK_INT(n2, N - 40);
    CHECK_INT(commits, 4); /* a claim of 40 is one transaction */
    /* Items from two queues, every third one failed, then: one repeated (S5c), one with a
       stale token (S5d), one unknown (S5a), one lapsed after the clock moves (S7). */
    for (i = 0; i < N; i++) {
        l[i] = lease_of(&t[i]);
        done[i].failed = i % 3 == 2;
        done[i].data = t[i].id;
        done[i].data_len = strlen(t[i].id);
    }
    l[N] = l[0];
    done[N] = done[0];
    l[N + 1] = l[1];
    l[N + 1].token = 999999;
    done[N + 1] = done[1];
    l[N + 2] = l[2];
    l[N + 2].task_id = "nosuch";
    done[N + 2] = done[2];
    commits = 0;
    CHECK_INT(pers_complete_batch(s, l, done, N + 3, res), PERS_OK);
    CHECK_INT(commits, 1);
    for (i = 0; i < N; i++)
        CHECK_INT(res[i], PERS_OK);
    CHECK_INT(res[N], PERS_ERR_ALREADY_COMPLETED);
    CHECK_INT(res[N + 1], PERS_ERR_LEASE_LOST); /* t01 finished, but not under this token */
    CHECK_INT(res[N + 2], PERS_ERR_NOT_FOUND);
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &st), PERS_OK);
    CHECK_INT(st.completed, 27); /* i in 0..39 with i % 3 != 2 */
    CHECK_INT(st.failed, 13);
    CHECK_INT(st.leased, 0);
    CHECK_INT(pers_queue_stats(s, "acme", "q2", &st), PERS_OK);
    CHECK_INT(st.completed + st.failed, N - 40);
    CHECK_INT(pers_get_task(s, "acme", "t02", &g), PERS_OK);
    CHECK_INT(g.state, PERS_STATE_FAILED);
    CHECK_INT(g.finished_ms, T0);
    pers_task_free(s, &g);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM pq_tasks WHERE state IN (4, 5) AND "
                                "has_result = 1 AND CAST(result AS TEXT) = id"),
              N);
    pers_tasks_free(s, t, (size_t)(n1 + n2));

    /* A lapsed lease among live ones: LEASE_LOST (S7, S5d) and nothing changes for it; the
       other completes. */
    for (i = 0; i < 2; i++) {
        snprintf(ids[i], sizeof ids[i], "u%d", i);
        reqs[i] = make_req("acme", "q3", ids[i]);
        reqs[i].task_id = ids[i];
    }
    CHECK_INT(pers_enqueue_batch(s, reqs, 2, NULL), PERS_OK);
    c1 = make_claim("acme", q1, 1, "w", 100, 2);
    q1[0] = "q3";
    CHECK_INT(pers_claim(s, &c1, t, &cr), PERS_OK);
    CHECK_INT(cr.count, 2);
    l[0] = lease_of(&t[0]);
    l[1] = lease_of(&t[1]);
    CHECK_INT(pers_extend_lease(s, &l[1], 10000, NULL), PERS_OK);
    advance(&clock, 500);
    commits = 0;
    CHECK_INT(pers_complete_batch(s, l, NULL, 2, res), PERS_OK);
    CHECK_INT(commits, 1);
    CHECK_INT(res[0], PERS_ERR_LEASE_LOST);
    CHECK_INT(res[1], PERS_OK);
    CHECK_INT(pers_get_task(s, "acme", "u0", &g), PERS_OK);
    CHECK_INT(g.state, PERS_STATE_READY);
    CHECK_STR(g.last_error, "lease expired");
    CHECK_INT(g.due_ms, T0 + 100);
    pers_task_free(s, &g);
    CHECK_INT(pers_queue_stats(s, "acme", "q3", &st), PERS_OK);
    CHECK_INT(st.ready, 1);
    CHECK_INT(st.completed, 1);
    pers_tasks_free(s, t, cr.count);
    sqlite3_commit_hook(db_of(s), NULL, NULL);
    pers_destroy(s);
    remove_db(path);
}

/* The multi-row statements (64 rows per execution) and their one-by-one fallbacks give what
   the one-by-one loop gives: enqueue order and ids across pieces and around requests with an
   idempotency key, claims in rounds with consecutive tokens, a refused request named by its
   index, and complete_batch outcomes for stale, repeated and unknown items among live ones. */
TEST(multi_row_batches_match_one_by_one)
{
    enum { N = 150, C = 130 };
    fake_clock clock;
    char path[256], payload[N][16], ids[N][16];
    pers_store *s;
    static pers_enqueue_req reqs[N];
    static pers_enqueue_res res[N];
    static pers_task t[N];
    static pers_lease l[C];
    static pers_completion done[C];
    static pers_result out[C];
    pers_claim_res cr;
    pers_stats st;
    pers_task_result tr;
    const char *q[1] = { "q" };
    pers_claim_req c = make_claim("acme", q, 1, "w", 1000, N);
    int i, in_order = 1, tokens_consecutive = 1;
    clock.now = T0;
    new_path(path, sizeof path, "multi");
    s = open_sq(&clock, path, "");
    {
        pers_enqueue_req first = make_req("acme", "q", "existing");
        first.idempotency_key = "k-existing";
        CHECK_INT(pers_enqueue(s, &first, NULL), PERS_OK);
    }
    for (i = 0; i < N; i++) {
        snprintf(payload[i], sizeof payload[i], "p%03d", i);
        reqs[i] = make_req("acme", "q", payload[i]);
        if (i % 7 == 3) { /* some name their id */
            snprintf(ids[i], sizeof ids[i], "own-%03d", i);
            reqs[i].task_id = ids[i];
        }
    }
    reqs[10].idempotency_key = "k-new";       /* alone, between two runs */
    reqs[70].idempotency_key = "k-existing";  /* a duplicate of the task above */
    reqs[71].idempotency_key = "k-new";       /* a duplicate of request 10 */
    CHECK_INT(pers_enqueue_batch(s, reqs, N, res), PERS_OK);
    CHECK_INT(res[10].duplicate, 0);
    CHECK_INT(res[70].duplicate, 1);
    CHECK_INT(res[71].duplicate, 1);
    CHECK_STR(res[71].task_id, res[10].task_id);
    CHECK_STR(res[3].task_id, "own-003");
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, N + 1 - 2);

    /* A refused request in the middle of a piece is named, and nothing is enqueued. */
    {
        static pers_enqueue_req again[100];
        static pers_enqueue_res again_res[100];
        for (i = 0; i < 100; i++)
            again[i] = make_req("acme", "q", "again");
        again[77].task_id = "own-003";
        CHECK_INT(pers_enqueue_batch(s, again, 100, again_res), PERS_ERR_DUPLICATE);
        CHECK_CONTAINS(pers_errmsg(s), "request 77");
        CHECK_CONTAINS(pers_errmsg(s), "nothing was enqueued");
        CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
        CHECK_INT(st.ready, N + 1 - 2);
    }

    /* One claim of everything (the first task and N requests, less the two duplicates):
       rounds of 64, enqueue order, consecutive tokens. */
    CHECK_INT(pers_claim(s, &c, t, &cr), PERS_OK);
    CHECK_INT(cr.count, N - 1);
    CHECK_STR((const char *)t[0].payload, "existing");
    for (i = 1; i < (int)cr.count; i++) {
        /* Request 70 and 71 made no task: the payloads skip them, in order. */
        int want = i - 1 + (i - 1 >= 70) + (i - 1 >= 70);
        if (strcmp((const char *)t[i].payload, payload[want]) != 0)
            in_order = 0;
        if (t[i].lease_token != t[i - 1].lease_token + 1)
            tokens_consecutive = 0;
    }
    CHECK(in_order);
    CHECK(tokens_consecutive);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM pq_tasks WHERE state = 3"), N - 1);
    CHECK_INT(raw_int(db_of(s), "SELECT value FROM pq_meta WHERE name = 'token'"),
              (int64_t)t[N - 2].lease_token);

    /* complete_batch: live leases around a stale token, a repeat and an unknown task. */
    for (i = 0; i < C; i++) {
        l[i] = lease_of(&t[i]);
        memset(&done[i], 0, sizeof done[i]);
        done[i].data = payload[i];
        done[i].data_len = strlen(payload[i]);
    }
    l[5].token += 1000;           /* not this lease's token */
    l[70] = l[69];                /* the same task twice */
    l[90].task_id = "no-such-task";
    done[100].failed = 1;
    CHECK_INT(pers_complete_batch(s, l, done, C, out), PERS_OK);
    for (i = 0; i < C; i++) {
        pers_result want = i == 5    ? PERS_ERR_LEASE_LOST
                           : i == 70 ? PERS_ERR_ALREADY_COMPLETED
                           : i == 90 ? PERS_ERR_NOT_FOUND
                                     : PERS_OK;
        if (out[i] != want)
            printf("    item %d: %s, expected %s\n", i, pers_result_string(out[i]),
                   pers_result_string(want));
        CHECK_INT(out[i], want);
    }
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, C - 3 - 1);
    CHECK_INT(st.failed, 1);
    CHECK_INT(st.leased, N - 1 - (C - 3));

    /* The rest, all live, and task 5 with its right token: the fast path. Tasks 70 and 90
       stay leased (their items named others). */
    for (i = C; i < N - 1; i++) {
        l[i - C] = lease_of(&t[i]);
        memset(&done[i - C], 0, sizeof done[i - C]);
        done[i - C].data = t[i].payload;
        done[i - C].data_len = t[i].payload_len;
    }
    l[N - 1 - C] = lease_of(&t[5]);
    memset(&done[N - 1 - C], 0, sizeof done[N - 1 - C]);
    CHECK_INT(pers_complete_batch(s, l, done, N - C, out), PERS_OK);
    for (i = 0; i < N - C; i++)
        CHECK_INT(out[i], PERS_OK);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, N - 1 - 3);
    CHECK_INT(st.failed, 1);
    CHECK_INT(st.leased, 2);
    CHECK_INT(pers_get_result(s, "acme", t[N - 2].id, &tr), PERS_OK);
    CHECK_INT(tr.state, PERS_STATE_COMPLETED);
    CHECK_STR((const char *)tr.data, (const char *)t[N - 2].payload);
    pers_task_result_free(s, &tr);
    CHECK_INT(pers_get_result(s, "acme", t[100].id, &tr), PERS_OK);
    CHECK_INT(tr.state, PERS_STATE_FAILED);
    CHECK_STR((const char *)tr.data, payload[100]);
    pers_task_result_free(s, &tr);
    pers_tasks_free(s, t, cr.count);
    pers_destroy(s);
    remove_db(path);
}

/* complete_batch counts finished tasks per queue whichever way it learns a lease's queue: from
   the leases its own connection issued (no RETURNING), after more queues than it remembers
   (older leases forgotten), and for leases another connection issued (RETURNING). */
TEST(complete_batch_counts_per_queue_from_any_connection)
{
    enum { QUEUES = 20, PER = 3, N = QUEUES * PER };
    fake_clock clock;
    char path[256], names[QUEUES][16];
    const char *queues[QUEUES];
    pers_store *a, *b;
    static pers_task t[N];
    static pers_lease l[N];
    static pers_completion done[N];
    static pers_result out[N];
    pers_claim_res cr;
    pers_claim_req c;
    pers_stats st;
    int i, k;
    clock.now = T0;
    new_path(path, sizeof path, "perqueue");
    a = open_sq(&clock, path, "");
    b = open_sq(&clock, path, "");
    for (i = 0; i < QUEUES; i++) {
        snprintf(names[i], sizeof names[i], "q%02d", i);
        queues[i] = names[i];
        for (k = 0; k < PER; k++) {
            pers_enqueue_req r = make_req("acme", names[i], "x");
            CHECK_INT(pers_enqueue(a, &r, NULL), PERS_OK);
        }
    }
    c = make_claim("acme", queues, QUEUES, "w", 1000, N);
    CHECK_INT(pers_claim(a, &c, t, &cr), PERS_OK); /* 20 queues: more than a remembers */
    CHECK_INT(cr.count, N);
    for (i = 0; i < N; i++) {
        l[i] = lease_of(&t[i]);
        memset(&done[i], 0, sizeof done[i]);
        done[i].failed = i % 5 == 0;
    }
    /* The last two queues' leases (remembered by a), then the first two queues' (forgotten by
       a: the queue slots were reused), then the rest through b (not a's leases at all). */
    CHECK_INT(pers_complete_batch(a, l + N - 2 * PER, done + N - 2 * PER, 2 * PER, out),
              PERS_OK);
    CHECK_INT(pers_complete_batch(a, l, done, 2 * PER, out), PERS_OK);
    CHECK_INT(pers_complete_batch(b, l + 2 * PER, done + 2 * PER, N - 4 * PER, out), PERS_OK);
    for (i = 0; i < N - 4 * PER; i++)
        CHECK_INT(out[i], PERS_OK);
    for (i = 0; i < QUEUES; i++) {
        int failed = 0;
        for (k = 0; k < PER; k++)
            failed += (i * PER + k) % 5 == 0;
        CHECK_INT(pers_queue_stats(b, "acme", names[i], &st), PERS_OK);
        CHECK_INT(st.completed, PER - failed);
        CHECK_INT(st.failed, failed);
        CHECK_INT(st.leased, 0);
    }
    pers_tasks_free(a, t, cr.count);
    pers_destroy(a);
    pers_destroy(b);
    remove_db(path);
}

/* A failure of the storage in the middle of a batch rolls every item back. */
TEST(complete_batch_failure_applies_nothing)
{
    enum { N = 6 };
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_task t[N];
    pers_lease l[N];
    pers_completion done[N];
    pers_result res[N];
    pers_claim_res cr;
    pers_stats st;
    const char *q[1] = { "q" };
    pers_claim_req c = make_claim("acme", q, 1, "w", 1000, N);
    int i;
    clock.now = T0;
    new_path(path, sizeof path, "cbfail");
    s = open_sq(&clock, path, "");
    for (i = 0; i < N; i++) {
        pers_enqueue_req r = make_req("acme", "q", "x");
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    }
    CHECK_INT(pers_claim(s, &c, t, &cr), PERS_OK);
    CHECK_INT(cr.count, N);
    for (i = 0; i < N; i++) {
        l[i] = lease_of(&t[i]);
        memset(&done[i], 0, sizeof done[i]);
        done[i].failed = i == 3; /* item 3 trips the trigger below */
    }
    /* The storage failing at item 3: a trigger on the backend's own connection. */
    CHECK_INT(sqlite3_exec(db_of(s),
                           "CREATE TEMP TRIGGER boom BEFORE UPDATE OF state ON main.pq_tasks "
                           "WHEN new.state = 5 BEGIN SELECT RAISE(ABORT, 'boom'); END",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(pers_complete_batch(s, l, done, N, res), PERS_ERR_INTERNAL);
    for (i = 0; i < N; i++)
        CHECK_INT(res[i], PERS_ERR_INTERNAL);
    CHECK_CONTAINS(pers_errmsg(s), "item 3");
    CHECK_CONTAINS(pers_errmsg(s), "boom");
    CHECK_CONTAINS(pers_errmsg(s), "nothing was completed");
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.leased, N); /* items 0..2 were rolled back with the rest */
    CHECK_INT(st.completed, 0);
    CHECK_INT(raw_int(db_of(s), "SELECT count(*) FROM pq_counts"), 0);
    CHECK_INT(sqlite3_exec(db_of(s), "DROP TRIGGER temp.boom", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(pers_complete_batch(s, l, done, N, res), PERS_OK);
    for (i = 0; i < N; i++)
        CHECK_INT(res[i], PERS_OK);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, N - 1);
    CHECK_INT(st.failed, 1);
    pers_tasks_free(s, t, cr.count);
    pers_destroy(s);
    remove_db(path);
}

/* The write lock held elsewhere for longer than busy_timeout: UNAVAILABLE for every item. */
TEST(complete_batch_busy_is_unavailable)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    sqlite3 *other = NULL;
    pers_task t[2];
    pers_lease l[2];
    pers_result res[2];
    pers_claim_res cr;
    pers_stats st;
    const char *q[1] = { "q" };
    pers_claim_req c = make_claim("acme", q, 1, "w", 1000, 2);
    pers_enqueue_req r = make_req("acme", "q", "x");
    clock.now = T0;
    new_path(path, sizeof path, "cbbusy");
    s = open_sq(&clock, path, "\"busy_timeout\":\"50ms\"");
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(pers_claim(s, &c, t, &cr), PERS_OK);
    CHECK_INT(cr.count, 2);
    l[0] = lease_of(&t[0]);
    l[1] = lease_of(&t[1]);
    CHECK_INT(sqlite3_open(path, &other), SQLITE_OK);
    CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(pers_complete_batch(s, l, NULL, 2, res), PERS_ERR_UNAVAILABLE);
    CHECK_INT(res[0], PERS_ERR_UNAVAILABLE);
    CHECK_INT(res[1], PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(pers_errmsg(s), "SQLITE_BUSY");
    CHECK_INT(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.leased, 2);
    CHECK_INT(pers_complete_batch(s, l, NULL, 2, res), PERS_OK);
    CHECK_INT(res[0], PERS_OK);
    CHECK_INT(res[1], PERS_OK);
    pers_tasks_free(s, t, cr.count);
    pers_destroy(s);
    remove_db(path);
}

/* PERS_OPEN_VALIDATED is read only when the caller's pers_open_args covers it; a backend
   opened without it checks every argument itself, complete_batch included. */
TEST(validated_flag_and_direct_complete_batch)
{
    const pers_backend_vtable *vt = pers_sqlite_vtable();
    char path[256], json[400];
    plg_config *cfg = NULL;
    void *b = NULL;
    pers_detail d;
    pers_open_args args;
    pers_enqueue_req r = make_req("acme", "q", "direct");
    pers_enqueue_res er;
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 60000, 2);
    pers_claim_res cres;
    pers_task t[2];
    pers_lease l[3];
    pers_result res[3];
    pers_completion big;
    int i;
    new_path(path, sizeof path, "validated");
    snprintf(json, sizeof json, "{\"path\":\"%s\"}", path);
    CHECK_INT(plg_config_parse_json(NULL, pers_sqlite_config_schema(NULL), 4, json,
                                    PLG_CONFIG_STRICT, &cfg),
              PLG_OK);
    memset(&d, 0, sizeof d);
    memset(&args, 0, sizeof args);
    args.abi_version = 1;
    args.struct_size = (uint32_t)offsetof(pers_open_args, flags); /* ABI 1: no flags */
    args.flags = PERS_OPEN_VALIDATED;                              /* beyond struct_size */
    CHECK_INT(vt->open_store(cfg, &args, &b, &d), PERS_OK);
    CHECK_INT(((psqli_store *)b)->validated, 0);
    vt->close_store(b);
    args.abi_version = PERS_OPEN_ARGS_ABI_VERSION;
    args.struct_size = (uint32_t)sizeof args;
    CHECK_INT(vt->open_store(cfg, &args, &b, &d), PERS_OK);
    CHECK_INT(((psqli_store *)b)->validated, 1);
    vt->close_store(b);
    CHECK_INT(vt->open_store(cfg, NULL, &b, &d), PERS_OK); /* direct: everything checked */
    plg_config_destroy(cfg);
    CHECK_INT(((psqli_store *)b)->validated, 0);
    CHECK_INT(vt->enqueue(b, &r, &er, &d), PERS_OK);
    CHECK_INT(vt->enqueue(b, &r, &er, &d), PERS_OK);
    CHECK_INT(vt->claim(b, &c, t, &cres, &d), PERS_OK);
    CHECK_INT(cres.count, 2);
    l[0] = lease_of(&t[0]);
    l[1] = lease_of(&t[1]);
    l[2] = l[1];
    l[1].tenant = "ac|me"; /* S10 */
    for (i = 0; i < 3; i++)
        res[i] = PERS_OK;
    d.text[0] = '\0';
    CHECK_INT(vt->complete_batch(b, l, NULL, 3, res, &d), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(d.text, "item 1");
    for (i = 0; i < 3; i++)
        CHECK_INT(res[i], PERS_ERR_INVALID_ARGUMENT);
    l[1] = l[2];
    l[1].token = 0; /* S4: 0 is never a token */
    CHECK_INT(vt->complete_batch(b, l, NULL, 2, res, &d), PERS_ERR_INVALID_ARGUMENT);
    memset(&big, 0, sizeof big);
    big.data_len = 5;
    CHECK_INT(vt->complete(b, &l[0], &big, &d), PERS_ERR_INVALID_ARGUMENT); /* data NULL */
    CHECK_INT(vt->complete_batch(b, l, NULL, 0, res, &d), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(vt->complete_batch(b, NULL, NULL, 1, res, &d), PERS_ERR_INVALID_ARGUMENT);
    /* Nothing changed: both still complete, in one batch, once. */
    l[1] = l[2];
    l[2] = l[0];
    CHECK_INT(vt->complete_batch(b, l, NULL, 3, res, &d), PERS_OK);
    CHECK_INT(res[0], PERS_OK);
    CHECK_INT(res[1], PERS_OK);
    CHECK_INT(res[2], PERS_ERR_ALREADY_COMPLETED);
    pers_task_clear(NULL, &t[0]);
    pers_task_clear(NULL, &t[1]);
    vt->close_store(b);
    remove_db(path);
}

TEST(retention_frees_keys_and_counts)
{
    fake_clock clock;
    char path[256];
    pers_store *s;
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_enqueue_res res;
    pers_cleanup_req cr;
    pers_task t;
    pers_stats st;
    size_t removed = 0;
    clock.now = T0;
    new_path(path, sizeof path, "retain");
    s = open_sq(&clock, path, "");
    r.idempotency_key = "key";
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    CHECK_INT(claim1(s, "acme", "q", 1000, &t), 1);
    {
        pers_lease l = lease_of(&t);
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    }
    pers_task_free(s, &t);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, 1);
    advance(&clock, 100);
    memset(&cr, 0, sizeof cr);
    cr.older_than_ms = 100;
    CHECK_INT(pers_cleanup_tasks(s, &cr, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.completed, 0); /* the trigger keeps the counters exact */
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    CHECK_INT(res.duplicate, 0); /* the key may be used again (S14) */
    pers_destroy(s);
    remove_db(path);
}

TEST(vtable_direct_calls)
{
    const pers_backend_vtable *vt = pers_sqlite_vtable();
    char path[256], json[400], msg[256];
    plg_config *cfg = NULL;
    void *b = NULL;
    pers_detail d;
    pers_enqueue_req r = make_req("acme", "q", "direct");
    pers_enqueue_res res;
    const char *queues[1] = { "q" };
    pers_claim_req c = make_claim("acme", queues, 1, "w", 1000, 1);
    pers_claim_res cres;
    pers_task t;
    pers_caps caps;
    memset(&caps, 0, sizeof caps);
    new_path(path, sizeof path, "direct");
    snprintf(json, sizeof json, "{\"path\":\"%s\"}", path);
    CHECK_INT(pers_check_vtable(vt, msg, sizeof msg), PERS_OK);
    CHECK_INT(plg_config_parse_json(NULL, pers_sqlite_config_schema(NULL), 4, json,
                                    PLG_CONFIG_STRICT, &cfg),
              PLG_OK);
    memset(&d, 0, sizeof d);
    CHECK_INT(vt->open_store(cfg, NULL, &b, &d), PERS_OK); /* wall clock, malloc */
    plg_config_destroy(cfg);                              /* copied at open */
    CHECK_INT(vt->capabilities(b, &caps, &d), PERS_OK);
    CHECK(caps.flags & PERS_CAP_DURABLE);
    CHECK_INT(vt->enqueue(b, &r, &res, &d), PERS_OK);
    CHECK_INT(strlen(res.task_id), PERS_GENERATED_ID_LEN);
    r.queue = "a|b";
    CHECK_INT(vt->enqueue(b, &r, &res, &d), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(vt->claim(b, &c, &t, &cres, &d), PERS_OK);
    CHECK_INT(cres.count, 1);
    CHECK_STR((const char *)t.payload, "direct");
    pers_task_clear(NULL, &t);
    d.text[0] = '\0';
    CHECK_INT(vt->get_task(b, "acme", "nope", &t, &d), PERS_ERR_NOT_FOUND);
    CHECK_CONTAINS(d.text, "nope");
    CHECK_INT(vt->health(b, &d), PERS_OK);
    vt->close_store(b);
    remove_db(path);
}

/* ---------------------------------------------------------------------------------------------
   The persistence contract suite (tests/contract/persistence_contract.h)
   ------------------------------------------------------------------------------------------- */

typedef struct contract_ctx {
    const char *extra;  /* more configuration members */
    char path[256];     /* the database of the case in progress */
} contract_ctx;

/* A fresh, empty database file per case, opened with the suite's desc unchanged. */
static pers_result contract_open(void *user, const pers_store_desc *desc, pers_store **out)
{
    contract_ctx *ctx = (contract_ctx *)user;
    char config[1024];
    new_path(ctx->path, sizeof ctx->path, "contract");
    snprintf(config, sizeof config, "{\"path\":\"%s\"%s%s}", ctx->path, ctx->extra[0] ? "," : "",
             ctx->extra);
    return pers_sqlite_open(config, desc, out);
}

static void contract_teardown(void *user, pers_store *store)
{
    contract_ctx *ctx = (contract_ctx *)user;
    pers_destroy(store);
    remove_db(ctx->path);
}

static void run_contract(const char *name, const char *extra)
{
    contract_ctx ctx;
    pers_contract_target target;
    pers_contract_options opt;
    pers_contract_report report;
    memset(&ctx, 0, sizeof ctx);
    memset(&target, 0, sizeof target);
    memset(&opt, 0, sizeof opt);
    memset(&report, 0, sizeof report);
    ctx.extra = extra;
    target.name = name;
    target.open = contract_open;
    target.teardown = contract_teardown;
    target.user = &ctx;
    CHECK_INT(pers_contract_run(&target, &opt, &report), 0);
    CHECK_INT(report.failed, 0);
    CHECK_INT(report.not_supported, 0);
    CHECK(report.passed >= 66);
}

/* The defaults a user gets (synchronous FULL), then NORMAL. */
TEST(contract_suite_full)
{
    run_contract("sqlite (synchronous FULL)", "");
}

TEST(contract_suite_normal)
{
    run_contract("sqlite (synchronous NORMAL)", "\"synchronous\":\"NORMAL\"");
}

/* ---------------------------------------------------------------------------------------------
   main
   ------------------------------------------------------------------------------------------- */

int main(void)
{
    snprintf(test_dir, sizeof test_dir, "/tmp/test_sqlite_XXXXXX");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(differential_against_memory_backend);
    RUN(survives_close_and_reopen);
    RUN(registry_open_caps_and_env_default);
    RUN(config_validation);
    RUN(schema_version_recorded);
    RUN(older_schema_is_migrated);
    RUN(newer_schema_refused_unchanged);
    RUN(foreign_files_refused_unchanged);
    RUN(busy_is_unavailable_with_sqlite_message);
    RUN(full_is_limit_with_sqlite_message);
    RUN(readonly_is_unavailable_with_sqlite_message);
    RUN(corrupt_is_corrupt_with_sqlite_message);
    RUN(cantopen_is_config_with_sqlite_message);
    RUN(error_mapping_table);
    RUN(query_plans_use_the_partial_indexes);
    RUN(claim_cost_independent_of_finished_tasks);
    RUN(tokens_increase_across_stores_of_one_file);
    RUN(two_processes_never_claim_one_task_twice);
    RUN(threads_on_one_store_claim_every_task_once);
    RUN(batch_claim_order_and_tokens);
    RUN(batch_enqueue_is_one_transaction);
    RUN(complete_batch_is_one_transaction);
    RUN(multi_row_batches_match_one_by_one);
    RUN(complete_batch_counts_per_queue_from_any_connection);
    RUN(complete_batch_failure_applies_nothing);
    RUN(complete_batch_busy_is_unavailable);
    RUN(validated_flag_and_direct_complete_batch);
    RUN(retention_frees_keys_and_counts);
    RUN(vtable_direct_calls);
    RUN(contract_suite_full);
    RUN(contract_suite_normal);
    if (rmdir(test_dir) != 0) {
        printf("FAIL leftover files in %s: %s\n", test_dir, strerror(errno));
        test_failed_count++;
    }
    return test_summary();
}
