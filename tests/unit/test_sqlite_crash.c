/* Crash test of backends/sqlite.h: a child process enqueues, claims and completes in a loop,
   reporting every ACKNOWLEDGED operation (one that returned PERS_OK) to the parent through a
   pipe; the parent kills it with SIGKILL at a random moment, at least KILLS times, and after
   every kill reopens the database and checks:
     1. PRAGMA integrity_check is "ok";
     2. every acknowledged enqueue is present, with its payload;
     3. every acknowledged completion is completed, with its result;
     4. no task is both completed and ready: no claim returns a completed task, and the
        per-queue completed counter agrees with the rows;
   plus that lease tokens acknowledged after a crash are greater than every token acknowledged
   before it (the counter lives in the database and never goes back).
   The child alternates synchronous FULL and NORMAL: a process crash must lose nothing
   acknowledged under either. Completions go one by one and, now and then, two in one
   complete_batch (one transaction). Bounded to a few seconds.

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -I. tests/unit/test_sqlite_crash.c \
         -o /tmp/sq_crash -pthread -lm -lsqlite3 && /tmp/sq_crash */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_SQLITE_IMPLEMENTATION
#include "backends/sqlite.h"
#include "tests/test.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 24               /* at least 20 */
#define TIME_BUDGET_MS 12000   /* stop adding rounds after this (never below MIN_KILLS) */
#define MIN_KILLS 20
#define LEASE_MS 600000        /* leases outlive the test: nothing is reclaimed behind it */

static char test_dir[64];
static char db_path[128];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

static pers_store *open_store(const char *sync, char *why, size_t why_size)
{
    pers_store *s = NULL;
    pers_store_desc desc;
    char config[512];
    memset(&desc, 0, sizeof desc);
    desc.open_message = why;
    desc.open_message_size = why_size;
    snprintf(config, sizeof config, "{\"path\":\"%s\",\"synchronous\":\"%s\"}", db_path, sync);
    if (pers_sqlite_open(config, &desc, &s) != PERS_OK)
        return NULL;
    return s;
}

/* ---------------------------------------------------------------------------------------------
   The child: works until killed
   ------------------------------------------------------------------------------------------- */

/* One write per line: lines are far below PIPE_BUF, so each arrives whole or not at all. */
static void ack(int fd, const char *fmt, ...) PLG_PRINTF(2, 3);
static void ack(int fd, const char *fmt, ...)
{
    char line[256];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0 || n >= (int)sizeof line || write(fd, line, (size_t)n) != n)
        _exit(9);
}

static void child(int fd, int round)
{
    char why[1024], ids[3][64], payloads[3][80], result[160];
    const char *queues[2] = { "alpha", "beta" };
    pers_store *s = open_store(round % 2 ? "NORMAL" : "FULL", why, sizeof why);
    unsigned seq = 0;
    rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    if (s == NULL) {
        ack(fd, "X open: %.200s\n", why);
        _exit(7);
    }
    ack(fd, "R\n");
    for (;;) {
        pers_enqueue_req reqs[3];
        pers_claim_req c;
        pers_claim_res res;
        pers_task tasks[2];
        size_t n = rnd(10) < 3 ? 3 : 1, i;
        const char *queue = queues[rnd(2)]; /* a batch names one queue (S19) */
        pers_result rc;
        for (i = 0; i < n; i++) {
            snprintf(ids[i], sizeof ids[i], "r%d-%u", round, seq++);
            snprintf(payloads[i], sizeof payloads[i], "payload of %.60s", ids[i]);
            memset(&reqs[i], 0, sizeof reqs[i]);
            reqs[i].tenant = "acme";
            reqs[i].queue = queue;
            reqs[i].task_id = ids[i];
            reqs[i].payload = payloads[i];
            reqs[i].payload_len = strlen(payloads[i]);
            reqs[i].priority = (int32_t)rnd(3);
        }
        rc = n == 1 ? pers_enqueue(s, &reqs[0], NULL) : pers_enqueue_batch(s, reqs, n, NULL);
        if (rc != PERS_OK) {
            ack(fd, "X enqueue: %.200s\n", pers_errmsg(s));
            _exit(8);
        }
        for (i = 0; i < n; i++)
            ack(fd, "E %s\n", ids[i]);

        memset(&c, 0, sizeof c);
        c.tenant = "acme";
        c.queues = queues;
        c.queue_count = 2;
        c.worker_id = "crashy";
        c.lease_ms = LEASE_MS;
        c.max_tasks = 1 + rnd(2);
        if (pers_claim(s, &c, tasks, &res) != PERS_OK) {
            ack(fd, "X claim: %.200s\n", pers_errmsg(s));
            _exit(8);
        }
        if (res.count > 1 && rnd(3) == 0) {
            /* Both in one complete_batch (S20): one transaction, acknowledged together. */
            pers_lease l[2];
            pers_completion done[2];
            pers_result results[2];
            char results_text[2][160];
            for (i = 0; i < res.count; i++) {
                ack(fd, "C %s %llu\n", tasks[i].id, (unsigned long long)tasks[i].lease_token);
                l[i].tenant = "acme";
                l[i].task_id = tasks[i].id;
                l[i].token = tasks[i].lease_token;
                snprintf(results_text[i], sizeof results_text[i], "done %.100s", tasks[i].id);
                done[i].failed = 0;
                done[i].data = results_text[i];
                done[i].data_len = strlen(results_text[i]);
            }
            if (pers_complete_batch(s, l, done, res.count, results) != PERS_OK ||
                results[0] != PERS_OK || results[1] != PERS_OK) {
                ack(fd, "X complete_batch: %.200s\n", pers_errmsg(s));
                _exit(8);
            }
            for (i = 0; i < res.count; i++)
                ack(fd, "D %s\n", tasks[i].id);
            pers_tasks_free(s, tasks, res.count);
            continue;
        }
        for (i = 0; i < res.count; i++) {
            pers_lease l;
            uint32_t what = rnd(10);
            ack(fd, "C %s %llu\n", tasks[i].id, (unsigned long long)tasks[i].lease_token);
            l.tenant = "acme";
            l.task_id = tasks[i].id;
            l.token = tasks[i].lease_token;
            if (what < 8) {
                pers_completion done;
                snprintf(result, sizeof result, "done %.100s", tasks[i].id);
                done.failed = 0;
                done.data = result;
                done.data_len = strlen(result);
                if (pers_complete(s, &l, &done) != PERS_OK) {
                    ack(fd, "X complete: %.200s\n", pers_errmsg(s));
                    _exit(8);
                }
                ack(fd, "D %s\n", tasks[i].id);
            } else if (what == 8) {
                if (pers_nack(s, &l, 0, "retry", NULL) != PERS_OK) {
                    ack(fd, "X nack: %.200s\n", pers_errmsg(s));
                    _exit(8);
                }
            } /* else: left leased when the kill comes */
        }
        pers_tasks_free(s, tasks, res.count);
    }
}

/* ---------------------------------------------------------------------------------------------
   The parent: what was acknowledged
   ------------------------------------------------------------------------------------------- */

typedef struct id_list {
    char (*ids)[64];
    size_t count, cap;
} id_list;

static void list_add(id_list *l, const char *id)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        char (*ids)[64] = (char (*)[64])realloc(l->ids, cap * sizeof *ids);
        if (ids == NULL)
            abort();
        l->ids = ids;
        l->cap = cap;
    }
    snprintf(l->ids[l->count++], 64, "%s", id);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int64_t raw_count(sqlite3 *db, const char *sql)
{
    int64_t v = -1;
    (void)psqli_read_int(db, sql, &v);
    return v;
}

/* The rows of the database: id and state, sorted by id. */
typedef struct row {
    char id[64];
    int state;
} row;

static row *load_rows(sqlite3 *db, size_t *count)
{
    sqlite3_stmt *st = NULL;
    row *rows = NULL;
    size_t n = 0, cap = 0;
    *count = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, state FROM pq_tasks WHERE tenant = 'acme' ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            rows = (row *)realloc(rows, cap * sizeof *rows);
            if (rows == NULL)
                abort();
        }
        snprintf(rows[n].id, sizeof rows[n].id, "%s", (const char *)sqlite3_column_text(st, 0));
        rows[n].state = sqlite3_column_int(st, 1);
        n++;
    }
    sqlite3_finalize(st);
    *count = n;
    return rows;
}

static const row *find_row(const row *rows, size_t n, const char *id)
{
    return n > 0 ? (const row *)bsearch(id, rows, n, sizeof *rows, cmp_id) : NULL;
}

typedef struct totals {
    id_list enqueued, completed, completed_round;
    uint64_t max_token;       /* greatest token acknowledged in earlier rounds */
    uint64_t round_max_token; /* ... and in this round */
    int token_regressions;
    int child_errors;
} totals;

static void parse_line(totals *t, char *line)
{
    char id[64];
    unsigned long long token;
    if (line[0] == 'E' && sscanf(line, "E %63s", id) == 1) {
        list_add(&t->enqueued, id);
    } else if (line[0] == 'D' && sscanf(line, "D %63s", id) == 1) {
        list_add(&t->completed, id);
        list_add(&t->completed_round, id);
    } else if (line[0] == 'C' && sscanf(line, "C %63s %llu", id, &token) == 2) {
        if (token <= t->max_token)
            t->token_regressions++;
        if (token > t->round_max_token)
            t->round_max_token = token;
    } else if (line[0] == 'X') {
        printf("    child: %s\n", line);
        t->child_errors++;
    }
}

/* The checks after one kill. Returns the number of failures found (each printed). */
static int check_after_kill(totals *t, int round)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    row *rows;
    size_t nrows = 0, i;
    int bad = 0, missing = 0, not_completed = 0;
    pers_store *s;
    char why[1024];

    /* 1. integrity, on a connection of our own (the first to open after the crash recovers
          the WAL). */
    CHECK_INT(sqlite3_open(db_path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(st, 0);
        if (verdict == NULL || strcmp(verdict, "ok") != 0) {
            printf("    round %d: integrity_check: %s\n", round, verdict ? verdict : "(null)");
            bad++;
        }
    } else {
        printf("    round %d: integrity_check failed to run: %s\n", round, sqlite3_errmsg(db));
        bad++;
    }
    sqlite3_finalize(st);

    /* 2. and 3. every acknowledged enqueue present, every acknowledged completion completed. */
    rows = load_rows(db, &nrows);
    for (i = 0; i < t->enqueued.count; i++)
        if (find_row(rows, nrows, t->enqueued.ids[i]) == NULL) {
            if (missing++ < 5)
                printf("    round %d: acknowledged enqueue %s is missing\n", round,
                       t->enqueued.ids[i]);
        }
    for (i = 0; i < t->completed.count; i++) {
        const row *r = find_row(rows, nrows, t->completed.ids[i]);
        if (r == NULL || r->state != PERS_STATE_COMPLETED) {
            if (not_completed++ < 5)
                printf("    round %d: acknowledged completion %s is %s\n", round,
                       t->completed.ids[i], r ? pers_state_name((pers_task_state)r->state)
                                              : "missing");
        }
    }
    bad += missing + not_completed;
    /* 4a. the counters agree with the rows (a torn write would show here). A child killed
           before it created the schema leaves no tables, which is fine if it acknowledged
           nothing (2. says so otherwise). */
    if (raw_count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'pq_counts'") == 1) {
        int64_t counted = -1, stored = -2;
        (void)psqli_read_int(db, "SELECT count(*) FROM pq_tasks WHERE state = 4", &counted);
        (void)psqli_read_int(db, "SELECT coalesce(sum(completed), 0) FROM pq_counts", &stored);
        if (counted != stored) {
            printf("    round %d: %lld completed rows but the counters say %lld\n", round,
                   (long long)counted, (long long)stored);
            bad++;
        }
    }
    sqlite3_close(db);

    /* Through the backend: results of this round, and no claim returns a completed task. */
    s = open_store("NORMAL", why, sizeof why);
    if (s == NULL) {
        printf("    round %d: reopen failed: %s\n", round, why);
        free(rows);
        return bad + 1;
    }
    for (i = 0; i < t->completed_round.count; i++) {
        pers_task_result res;
        char expected[80];
        snprintf(expected, sizeof expected, "done %.60s", t->completed_round.ids[i]);
        if (pers_get_result(s, "acme", t->completed_round.ids[i], &res) != PERS_OK ||
            res.state != PERS_STATE_COMPLETED || strcmp((const char *)res.data, expected) != 0) {
            printf("    round %d: result of %s: %s\n", round, t->completed_round.ids[i],
                   pers_errmsg(s));
            bad++;
        }
        pers_task_result_free(s, &res);
    }
    {
        const char *queues[2] = { "alpha", "beta" };
        pers_claim_req c;
        pers_task *tasks = (pers_task *)calloc(PERS_CLAIM_MAX, sizeof *tasks);
        size_t k;
        pers_claim_res res;
        memset(&c, 0, sizeof c);
        c.tenant = "acme";
        c.queues = queues;
        c.queue_count = 2;
        c.worker_id = "checker";
        c.lease_ms = LEASE_MS;
        c.max_tasks = PERS_CLAIM_MAX;
        /* Take every ready task: none may be completed. They stay leased (LEASE_MS outlives
           the test), so each round looks at the tasks that became ready since. */
        for (;;) {
            if (pers_claim(s, &c, tasks, &res) != PERS_OK) {
                printf("    round %d: claim: %s\n", round, pers_errmsg(s));
                bad++;
                break;
            }
            if (res.count == 0)
                break;
            for (k = 0; k < res.count; k++) {
                const row *r = find_row(rows, nrows, tasks[k].id);
                if ((t->completed.count > 0 &&
                     bsearch(tasks[k].id, t->completed.ids, t->completed.count, 64, cmp_id) !=
                         NULL) ||
                    (r != NULL && r->state == PERS_STATE_COMPLETED)) {
                    printf("    round %d: completed task %s was claimable\n", round,
                           tasks[k].id);
                    bad++;
                }
                if (tasks[k].lease_token > t->round_max_token)
                    t->round_max_token = tasks[k].lease_token; /* the checker's tokens count */
            }
            pers_tasks_free(s, tasks, res.count);
        }
        free(tasks);
    }
    pers_destroy(s);
    free(rows);
    return bad;
}

#define BUF_SIZE (1 << 22)

/* Reads what the pipe has within wait_ms into buf at *len. Returns the bytes read (0 when
   nothing came), -1 at the end of the pipe. */
static ssize_t read_some(int fd, char *buf, size_t *len, int64_t wait_ms)
{
    struct pollfd p;
    ssize_t n;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, wait_ms > 0 ? (int)wait_ms : 0) <= 0)
        return 0;
    n = read(fd, buf + *len, BUF_SIZE - 1 - *len);
    if (n <= 0)
        return -1;
    *len += (size_t)n;
    return n;
}

TEST(sigkill_loses_nothing_acknowledged)
{
    totals t;
    int round, kills = 0, failures = 0;
    int64_t start = mono_ms();
    char *buf = (char *)malloc(BUF_SIZE);
    memset(&t, 0, sizeof t);
    rng_state ^= (uint64_t)time(NULL);
    for (round = 0; round < KILLS || kills < MIN_KILLS; round++) {
        int fds[2], status = 0, ready = 0, early;
        size_t len = 0;
        pid_t pid;
        int64_t deadline;
        char *line, *next;
        if (kills >= MIN_KILLS && mono_ms() - start > TIME_BUDGET_MS)
            break;
        if (round > 200)
            break; /* something is wrong; the checks below say what */
        CHECK_INT(pipe(fds), 0);
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], round);
        }
        close(fds[1]);
        /* Wait until it has opened the database, then let it work for a random time; now
           and then kill it while it is still opening (that must be harmless too). */
        early = rnd(10) == 0;
        deadline = mono_ms() + (early ? (int64_t)rnd(4) : 10000);
        while (!ready && mono_ms() < deadline) {
            ssize_t n = read_some(fds[0], buf, &len, deadline - mono_ms());
            if (n < 0)
                break; /* the child is gone on its own: reported below */
            if (memchr(buf, '\n', len) != NULL)
                ready = 1;
        }
        if (ready) {
            deadline = mono_ms() + 5 + (int64_t)rnd(120);
            while (mono_ms() < deadline)
                if (read_some(fds[0], buf, &len, deadline - mono_ms()) < 0)
                    break;
        }
        kill(pid, SIGKILL);
        CHECK_INT(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            kills++;
        else
            printf("    round %d: the child ended on its own (status %d)\n", round, status);
        for (;;) { /* whatever it acknowledged before dying */
            ssize_t n = read(fds[0], buf + len, BUF_SIZE - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        close(fds[0]);
        buf[len] = '\0';
        t.completed_round.count = 0;
        t.round_max_token = t.max_token;
        for (line = buf; line != NULL && *line; line = next) {
            next = strchr(line, '\n');
            if (next == NULL)
                break; /* a partial line cannot happen (one write per line); ignore it */
            *next++ = '\0';
            parse_line(&t, line);
        }
        if (t.completed.count > 0)
            qsort(t.completed.ids, t.completed.count, 64, cmp_id);
        failures += check_after_kill(&t, round);
        t.max_token = t.round_max_token;
        if (failures > 0)
            break;
    }
    printf("    %d SIGKILLs in %d rounds, %.1f s: %lu enqueues and %lu completions acknowledged, "
           "last token %llu\n",
           kills, round, (double)(mono_ms() - start) / 1000.0, (unsigned long)t.enqueued.count,
           (unsigned long)t.completed.count, (unsigned long long)t.max_token);
    CHECK(kills >= MIN_KILLS);
    CHECK_INT(failures, 0);
    CHECK_INT(t.child_errors, 0);
    CHECK_INT(t.token_regressions, 0);
    CHECK(t.enqueued.count > 0);
    CHECK(t.completed.count > 0);
    free(t.enqueued.ids);
    free(t.completed.ids);
    free(t.completed_round.ids);
    free(buf);
}

int main(void)
{
    char p[160];
    snprintf(test_dir, sizeof test_dir, "/tmp/test_sqlite_crash_XXXXXX");
    if (mkdtemp(test_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db_path, sizeof db_path, "%s/crash.db", test_dir);
    RUN(sigkill_loses_nothing_acknowledged);
    unlink(db_path);
    snprintf(p, sizeof p, "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db_path);
    unlink(p);
    if (rmdir(test_dir) != 0) {
        printf("FAIL leftover files in %s: %s\n", test_dir, strerror(errno));
        test_failed_count++;
    }
    return test_summary();
}
