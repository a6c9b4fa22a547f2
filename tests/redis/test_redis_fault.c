/* Fault test of backends/redis.h (issue point 8): while producers and workers run, the
   redis-server is killed with SIGKILL and restarted (same port, same data directory,
   --appendonly yes --appendfsync always). Checks:
     - calls during the outage return PERS_ERR_UNAVAILABLE quickly: no hang, no crash;
     - after the restart the same store handle works again, without being reopened;
     - no acknowledged enqueue and no acknowledged completion is lost;
     - exactly-once-while-leased: no task is ever leased to two workers at the same time, and
       no task is claimed again after a completion was acknowledged.
   Bounded to about 10 seconds. The store uses the server's clock (real leases, real time).

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/redis/test_redis_fault.c -o /tmp/redis_fault \
         -pthread -lm -lhiredis && /tmp/redis_fault */
#define _XOPEN_SOURCE 700
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_REDIS_IMPLEMENTATION
#include "backends/redis.h"
#include "tests/redis/redis_harness.h"
#include "tests/test.h"

#include <pthread.h>

#define PRODUCERS 2
#define WORKERS 4
#define LEASE_MS 1500
#define MAX_TASKS 200000
#define MAX_CLAIMS 400000

/* Phases, in milliseconds from the start. */
#define KILL_AT 1500
#define OUTAGE_MS 1000
#define PRODUCE_UNTIL 4500
#define DRAIN_UNTIL 9500

typedef struct claim_rec {
    int task;            /* the payload number */
    char id[PERS_ID_MAX + 1];
    uint64_t token;
    int64_t leased_from; /* server time: expiry - LEASE_MS */
    int64_t expires;
    int acked;           /* its completion was acknowledged (OK or ALREADY_COMPLETED) */
    int worker;
} claim_rec;

typedef struct shared {
    pers_store *store;
    long long start;
    int stop_producing, stop_all; /* atomics */
    int down;                /* the server is dead (between SIGKILL and the restart) */
    long long killed_ms;     /* rh_now_ms() once the server was dead (0: not yet) */
    long long restart_ms;    /* rh_now_ms() when the restart began (0: not yet) */
    pthread_mutex_t lock;
    int produced;            /* acknowledged enqueues: payload numbers 0..produced-1 */
    char (*ids)[PERS_ID_MAX + 1];
    claim_rec *claims;
    int claim_count;
    long long outage_calls, outage_failures, outage_other, worst_outage_ms, worst_any_ms;
    long long ok_after_restart;
    int next_number;
} shared;

static long long since(const shared *sh)
{
    return rh_now_ms() - sh->start;
}

/* Records the duration and code of a call; a call that started after the server died and
   ended before its restart began is an outage call. */
static void account(shared *sh, long long t0, pers_result rc)
{
    long long t1 = rh_now_ms(), took = t1 - t0;
    pthread_mutex_lock(&sh->lock);
    if (took > sh->worst_any_ms)
        sh->worst_any_ms = took;
    if (sh->killed_ms != 0 && t0 >= sh->killed_ms && (sh->restart_ms == 0 || t1 <= sh->restart_ms)) {
        sh->outage_calls++;
        if (rc == PERS_ERR_UNAVAILABLE) {
            sh->outage_failures++;
            if (took > sh->worst_outage_ms)
                sh->worst_outage_ms = took;
        } else if (rc != PERS_OK) {
            sh->outage_other++;
        }
    }
    pthread_mutex_unlock(&sh->lock);
}

static void *producer(void *arg)
{
    shared *sh = (shared *)arg;
    char payload[24];
    while (!__atomic_load_n(&sh->stop_producing, __ATOMIC_SEQ_CST)) {
        pers_enqueue_req r;
        pers_enqueue_res res;
        pers_result rc;
        long long t0;
        int n;
        pthread_mutex_lock(&sh->lock);
        n = sh->next_number++;
        pthread_mutex_unlock(&sh->lock);
        if (n >= MAX_TASKS)
            break;
        snprintf(payload, sizeof payload, "%d", n);
        memset(&r, 0, sizeof r);
        r.tenant = "acme";
        r.queue = "jobs";
        r.payload = payload;
        r.payload_len = strlen(payload);
        t0 = rh_now_ms();
        rc = pers_enqueue(sh->store, &r, &res);
        account(sh, t0, rc);
        if (rc == PERS_OK) {
            pthread_mutex_lock(&sh->lock);
            memcpy(sh->ids[n], res.task_id, sizeof sh->ids[n]);
            sh->produced++;
            if (!sh->down && since(sh) > KILL_AT + OUTAGE_MS)
                sh->ok_after_restart++;
            pthread_mutex_unlock(&sh->lock);
        } else {
            rh_sleep_ms(5);
        }
    }
    return NULL;
}

typedef struct worker_arg {
    shared *sh;
    int index;
} worker_arg;

static void *worker(void *arg)
{
    worker_arg *wa = (worker_arg *)arg;
    shared *sh = wa->sh;
    char name[16];
    const char *queues[1];
    snprintf(name, sizeof name, "w%d", wa->index);
    queues[0] = "jobs";
    while (!__atomic_load_n(&sh->stop_all, __ATOMIC_SEQ_CST)) {
        pers_claim_req c;
        pers_claim_res cr;
        pers_task t;
        pers_result rc;
        long long t0;
        int rec = -1, n;
        memset(&c, 0, sizeof c);
        c.tenant = "acme";
        c.queues = queues;
        c.queue_count = 1;
        c.worker_id = name;
        c.lease_ms = LEASE_MS;
        c.max_tasks = 1;
        t0 = rh_now_ms();
        rc = pers_claim(sh->store, &c, &t, &cr);
        account(sh, t0, rc);
        if (rc != PERS_OK) {
            rh_sleep_ms(5);
            continue;
        }
        if (cr.count == 0) {
            rh_sleep_ms(2);
            continue;
        }
        n = atoi((const char *)t.payload);
        pthread_mutex_lock(&sh->lock);
        if (sh->claim_count < MAX_CLAIMS) {
            rec = sh->claim_count++;
            sh->claims[rec].task = n;
            memcpy(sh->claims[rec].id, t.id, sizeof t.id);
            sh->claims[rec].token = t.lease_token;
            sh->claims[rec].expires = t.lease_expires_ms;
            sh->claims[rec].leased_from = t.lease_expires_ms - LEASE_MS;
            sh->claims[rec].worker = wa->index;
        }
        pthread_mutex_unlock(&sh->lock);
        /* Complete; a failed attempt is retried (as a real worker would) until the answer is
           definite or the lease has surely run out. */
        {
            pers_lease l;
            pers_completion done;
            char result[48];
            long long give_up = rh_now_ms() + LEASE_MS + 1500;
            l.tenant = "acme";
            l.task_id = t.id;
            l.token = t.lease_token;
            snprintf(result, sizeof result, "%s:%llu", name, (unsigned long long)t.lease_token);
            memset(&done, 0, sizeof done);
            done.data = result;
            done.data_len = strlen(result);
            for (;;) {
                t0 = rh_now_ms();
                rc = pers_complete(sh->store, &l, &done);
                account(sh, t0, rc);
                if (rc == PERS_OK || rc == PERS_ERR_ALREADY_COMPLETED) {
                    if (rec >= 0) {
                        pthread_mutex_lock(&sh->lock);
                        sh->claims[rec].acked = 1;
                        if (!sh->down && since(sh) > KILL_AT + OUTAGE_MS)
                            sh->ok_after_restart++;
                        pthread_mutex_unlock(&sh->lock);
                    }
                    break;
                }
                if (rc == PERS_ERR_LEASE_LOST || rc == PERS_ERR_NOT_FOUND ||
                    rh_now_ms() > give_up || __atomic_load_n(&sh->stop_all, __ATOMIC_SEQ_CST))
                    break;
                rh_sleep_ms(10);
            }
        }
        pers_task_free(sh->store, &t);
    }
    return NULL;
}

static int claim_order(const void *a, const void *b)
{
    const claim_rec *x = (const claim_rec *)a, *y = (const claim_rec *)b;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    return x->token < y->token ? -1 : x->token > y->token;
}

static redis_harness server;

TEST(sigkill_and_restart_while_workers_run)
{
    shared sh;
    plg_registry *reg = NULL;
    pers_store_desc desc;
    pthread_t prod[PRODUCERS], work[WORKERS];
    worker_arg wa[WORKERS];
    char json[512], why[512];
    int i, lost_enqueues = 0, lost_completions = 0, double_leases = 0, claimed_after_ack = 0;
    int not_completed = 0, restart_ok;
    long long killed_at, restarted_at;
    pers_stats st;

    memset(&sh, 0, sizeof sh);
    pthread_mutex_init(&sh.lock, NULL);
    sh.ids = (char(*)[PERS_ID_MAX + 1])calloc(MAX_TASKS, PERS_ID_MAX + 1);
    sh.claims = (claim_rec *)calloc(MAX_CLAIMS, sizeof *sh.claims);
    CHECK(plg_registry_create(NULL, &reg) == PLG_OK && pers_redis_register(reg) == PERS_OK);
    snprintf(json, sizeof json,
             "{\"addr\":\"localhost:%d\",\"password\":\"\",\"pool_size\":8,"
             "\"command_timeout\":\"1s\",\"connect_timeout\":\"500ms\","
             "\"reconnect_backoff\":\"20ms\",\"reconnect_backoff_max\":\"200ms\"}",
             server.port);
    memset(&desc, 0, sizeof desc); /* the wall clock: "auto" reads the server's TIME */
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    if (pers_open(reg, "redis", json, &desc, &sh.store) != PERS_OK) {
        printf("    open: %s\n", why);
        CHECK(0);
        plg_registry_destroy(reg);
        free(sh.ids);
        free(sh.claims);
        return;
    }
    sh.start = rh_now_ms();
    for (i = 0; i < PRODUCERS; i++)
        CHECK_INT(pthread_create(&prod[i], NULL, producer, &sh), 0);
    for (i = 0; i < WORKERS; i++) {
        wa[i].sh = &sh;
        wa[i].index = i;
        CHECK_INT(pthread_create(&work[i], NULL, worker, &wa[i]), 0);
    }

    rh_sleep_ms(KILL_AT);
    pthread_mutex_lock(&sh.lock);
    sh.down = 1;
    pthread_mutex_unlock(&sh.lock);
    killed_at = since(&sh);
    rh_kill(&server);
    pthread_mutex_lock(&sh.lock);
    sh.killed_ms = rh_now_ms();
    pthread_mutex_unlock(&sh.lock);
    rh_sleep_ms(OUTAGE_MS);
    pthread_mutex_lock(&sh.lock);
    sh.restart_ms = rh_now_ms();
    pthread_mutex_unlock(&sh.lock);
    restart_ok = rh_restart(&server) == 0;
    CHECK(restart_ok);
    pthread_mutex_lock(&sh.lock);
    sh.down = 0;
    pthread_mutex_unlock(&sh.lock);
    restarted_at = since(&sh);

    while (since(&sh) < PRODUCE_UNTIL)
        rh_sleep_ms(20);
    __atomic_store_n(&sh.stop_producing, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    /* drain: until every task is completed (leases cut by the kill expire after LEASE_MS) */
    while (since(&sh) < DRAIN_UNTIL) {
        if (pers_queue_stats(sh.store, "acme", "jobs", &st) == PERS_OK &&
            st.ready + st.leased + st.scheduled == 0)
            break;
        rh_sleep_ms(50);
    }
    __atomic_store_n(&sh.stop_all, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < WORKERS; i++)
        pthread_join(work[i], NULL);

    /* Acknowledged enqueues exist and were completed; acknowledged completions stayed. */
    for (i = 0; i < sh.next_number && i < MAX_TASKS; i++) {
        pers_task t;
        if (sh.ids[i][0] == '\0')
            continue; /* not acknowledged */
        if (pers_get_task(sh.store, "acme", sh.ids[i], &t) != PERS_OK) {
            if (lost_enqueues++ < 5)
                printf("    acknowledged enqueue %d (%s) is gone: %s\n", i, sh.ids[i],
                       pers_errmsg(sh.store));
            continue;
        }
        if (t.state != PERS_STATE_COMPLETED)
            not_completed++;
        pers_task_free(sh.store, &t);
    }
    qsort(sh.claims, (size_t)sh.claim_count, sizeof *sh.claims, claim_order);
    for (i = 0; i < sh.claim_count; i++) {
        const claim_rec *a = &sh.claims[i];
        if (a->acked) {
            pers_task_result res;
            char expect[48];
            snprintf(expect, sizeof expect, "w%d:%llu", a->worker, (unsigned long long)a->token);
            /* (a->id, not sh.ids: an enqueue cut by the kill may have landed unacknowledged) */
            if (pers_get_result(sh.store, "acme", a->id, &res) != PERS_OK ||
                strcmp((const char *)res.data, expect) != 0) {
                if (lost_completions++ < 5)
                    printf("    acknowledged completion of task %d (token %llu) lost\n", a->task,
                           (unsigned long long)a->token);
            }
            pers_task_result_free(sh.store, &res);
        }
        if (i + 1 < sh.claim_count && sh.claims[i + 1].task == a->task) {
            const claim_rec *b = &sh.claims[i + 1];
            if (a->acked) {
                if (claimed_after_ack++ < 5)
                    printf("    task %d claimed again (token %llu) after its completion was "
                           "acknowledged (token %llu)\n",
                           a->task, (unsigned long long)b->token, (unsigned long long)a->token);
            } else if (b->leased_from < a->expires) {
                if (double_leases++ < 5)
                    printf("    task %d leased twice at once: token %llu until %lld, token %llu "
                           "from %lld\n",
                           a->task, (unsigned long long)a->token, (long long)a->expires,
                           (unsigned long long)b->token, (long long)b->leased_from);
            }
        }
    }

    printf("    figures: %d acknowledged enqueues, %d claims, SIGKILL at %lld ms, restart at %lld "
           "ms\n",
           sh.produced, sh.claim_count, killed_at, restarted_at);
    printf("    outage: %lld calls, %lld UNAVAILABLE (slowest %lld ms), %lld other failures; "
           "slowest call of the run %lld ms\n",
           sh.outage_calls, sh.outage_failures, sh.worst_outage_ms, sh.outage_other,
           sh.worst_any_ms);
    printf("    after the restart: %lld acknowledged operations on the same handle\n",
           sh.ok_after_restart);
    printf("    lost enqueues %d, lost completions %d, double leases %d, claims after an "
           "acknowledged completion %d, acknowledged tasks not completed at the end %d\n",
           lost_enqueues, lost_completions, double_leases, claimed_after_ack, not_completed);

    CHECK(sh.outage_calls > 0);
    CHECK_INT(sh.outage_failures, sh.outage_calls); /* every call in the outage: UNAVAILABLE */
    CHECK(sh.worst_outage_ms < 250);                 /* quickly */
    CHECK(sh.worst_any_ms < 1500);                   /* nothing hung */
    CHECK(sh.ok_after_restart > 0);                  /* the same handle works again */
    CHECK_INT(lost_enqueues, 0);
    CHECK_INT(lost_completions, 0);
    CHECK_INT(double_leases, 0);
    CHECK_INT(claimed_after_ack, 0);
    CHECK_INT(not_completed, 0);
    CHECK(sh.produced > 100);
    CHECK_INT(pers_queue_stats(sh.store, "acme", "jobs", &st), PERS_OK);
    CHECK_INT(st.ready + st.leased + st.scheduled, 0);
    CHECK(st.completed >= (uint64_t)sh.produced); /* unacknowledged ones may have landed too */

    pers_destroy(sh.store);
    plg_registry_destroy(reg);
    pthread_mutex_destroy(&sh.lock);
    free(sh.ids);
    free(sh.claims);
}

int main(void)
{
    int ci_fail = 0;
    if (!rh_require_server(&ci_fail)) {
        if (ci_fail)
            test_failed_count++;
        return test_summary();
    }
    memset(&server, 0, sizeof server);
    if (rh_start(&server, 1) != 0) {
        printf("FAIL could not start redis-server\n");
        test_failed_count++;
        return test_summary();
    }
    RUN(sigkill_and_restart_while_workers_run);
    rh_stop(&server);
    return test_summary();
}
