/* bench/bench_redis_backend.c - the Redis backend against BullMQ and against the server's own
   limit, all on one redis-server started for the run (issue 5, point 9).

   Rows, each end to end (enqueue, claim, complete) with producers and workers running at once,
   at 1 and at 10 concurrent workers (and as many producers):
     single   every producer enqueues one task per call; every worker claims one task and
              completes it
     batched  producers call enqueue_batch with 100 tasks; workers claim up to 100 and complete
              each
     batched + complete_batch   the batched cycle with one complete_batch per claim (one
              pipeline of 100 complete scripts) instead of one complete call per task; measured
              against the batched cycle, the two alternating back to back in the same run
              (BullMQ's batched figure beside it is for reference: it has no batch completion)
   BullMQ (bench/bullmq_bench.js, npm packages bullmq and ioredis installed into
   build/bench-node, which git ignores) does the same work at the same concurrency: queue.add or
   queue.addBulk(100) from as many producer loops, one Worker with that concurrency.
   The server's limit: redis-benchmark (50 clients, pipelined), the ideal client, sending the
   batched path's own requests, built from this backend's scripts: phase A, one call that
   reserves, enqueues and claims 100 tasks; phase B, one call per task that completes the
   oldest leased task (one complete script per task, as complete and complete_batch run). Also printed, without a target,
   the ceiling: the same scripts for 100 task lives inside one call, no per-request cost.
   Targets: at least 2x BullMQ's tasks per second at equal concurrency; the batched path at 70%
   or more of the limit. The program prints whether each is met.
   Every row runs REPEATS (3) times, this backend and BullMQ back to back, alternating which
   goes first, and the medians are compared: on a shared machine the load moves between runs.
   The load average is printed before and after.

   Environment: REDIS_SERVER (server binary), BENCH_TASKS_SINGLE / BENCH_TASKS_BATCH (tasks per
   row, default 3000 / 10000), BENCH_SKIP_BULLMQ=1, NPM (default npm), NODE (default node).
   Build: gcc -std=c99 -O2 -DNDEBUG -I. bench/bench_redis_backend.c -o build/bench/bench_redis
          -pthread -lm -lhiredis */
#define _XOPEN_SOURCE 700
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_REDIS_IMPLEMENTATION
#include "backends/redis.h"
#include "tests/redis/redis_harness.h"

#include <pthread.h>

#define BATCH 100
#define MAX_WORKERS 10
#define REPEATS 3

static redis_harness server;

/* ---------------------------------------------------------------------------------------------
   This backend, end to end
   ------------------------------------------------------------------------------------------- */

typedef struct run {
    pers_store *store;
    const char *queue;
    int batched;    /* 0: one task per call; 1: batches of BATCH, one complete per task;
                       2: batches of BATCH, one complete_batch per claim */
    long tasks;
    long next;      /* atomic: tasks handed to producers */
    long completed; /* atomic */
    long errors;    /* atomic */
} run;

static void *producer(void *arg)
{
    run *r = (run *)arg;
    pers_enqueue_req reqs[BATCH];
    char payload[BATCH][24];
    int i;
    for (;;) {
        long want = r->batched ? BATCH : 1;
        long first = __atomic_fetch_add(&r->next, want, __ATOMIC_RELAXED);
        long n = first >= r->tasks ? 0 : (r->tasks - first < want ? r->tasks - first : want);
        if (n <= 0)
            return NULL;
        for (i = 0; i < n; i++) {
            snprintf(payload[i], sizeof payload[i], "payload-%ld", first + i);
            memset(&reqs[i], 0, sizeof reqs[i]);
            reqs[i].tenant = "bench";
            reqs[i].queue = r->queue;
            reqs[i].payload = payload[i];
            reqs[i].payload_len = strlen(payload[i]);
        }
        if ((r->batched ? pers_enqueue_batch(r->store, reqs, (size_t)n, NULL)
                        : pers_enqueue(r->store, &reqs[0], NULL)) != PERS_OK) {
            fprintf(stderr, "enqueue: %s\n", pers_errmsg(r->store));
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            return NULL;
        }
    }
}

static void *worker(void *arg)
{
    run *r = (run *)arg;
    pers_task tasks[BATCH];
    const char *queues[1];
    pers_claim_req c;
    pers_completion done, dones[BATCH];
    pers_lease leases[BATCH];
    pers_result results[BATCH];
    long idle_us = 0;
    int j;
    queues[0] = r->queue;
    memset(&c, 0, sizeof c);
    c.tenant = "bench";
    c.queues = queues;
    c.queue_count = 1;
    c.worker_id = "bench-worker";
    c.lease_ms = 30000;
    c.max_tasks = r->batched ? BATCH : 1;
    memset(&done, 0, sizeof done);
    done.data = "done";
    done.data_len = 4;
    for (j = 0; j < BATCH; j++)
        dones[j] = done; /* every row stores the same result */
    while (__atomic_load_n(&r->completed, __ATOMIC_RELAXED) < r->tasks &&
           __atomic_load_n(&r->errors, __ATOMIC_RELAXED) == 0) {
        pers_claim_res res;
        size_t i;
        if (pers_claim(r->store, &c, tasks, &res) != PERS_OK) {
            fprintf(stderr, "claim: %s\n", pers_errmsg(r->store));
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            break;
        }
        if (res.count == 0) { /* nothing ready yet: back off a little */
            idle_us = idle_us == 0 ? 100 : (idle_us * 2 > 2000 ? 2000 : idle_us * 2);
            {
                struct timespec ts;
                ts.tv_sec = 0;
                ts.tv_nsec = idle_us * 1000;
                nanosleep(&ts, NULL);
            }
            continue;
        }
        idle_us = 0;
        if (r->batched == 2) {
            size_t bad = 0;
            for (i = 0; i < res.count; i++) {
                leases[i].tenant = tasks[i].tenant;
                leases[i].task_id = tasks[i].id;
                leases[i].token = tasks[i].lease_token;
            }
            if (pers_complete_batch(r->store, leases, dones, res.count, results) != PERS_OK)
                bad = res.count;
            for (i = 0; bad == 0 && i < res.count; i++)
                bad += results[i] != PERS_OK;
            if (bad != 0) {
                fprintf(stderr, "complete_batch: %s\n", pers_errmsg(r->store));
                __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            }
        }
        for (i = 0; r->batched != 2 && i < res.count; i++) {
            pers_lease l;
            l.tenant = tasks[i].tenant;
            l.task_id = tasks[i].id;
            l.token = tasks[i].lease_token;
            if (pers_complete(r->store, &l, &done) != PERS_OK) {
                fprintf(stderr, "complete: %s\n", pers_errmsg(r->store));
                __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            }
        }
        pers_tasks_free(r->store, tasks, res.count);
        __atomic_add_fetch(&r->completed, (long)res.count, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void flushall(void)
{
    redisReply *r = rh_command(&server, "FLUSHALL");
    if (r != NULL)
        freeReplyObject(r);
}

/* Tasks per second of this backend end to end; -1 on failure. */
static double run_ours(plg_registry *reg, int workers, int batched, long tasks)
{
    pthread_t prod[MAX_WORKERS], work[MAX_WORKERS];
    run r;
    char json[256], why[512], queue[32];
    pers_store_desc desc;
    long long t0, t1;
    int i;
    flushall();
    memset(&desc, 0, sizeof desc); /* the wall clock: scripts read the server's TIME */
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    snprintf(json, sizeof json, "{\"addr\":\"127.0.0.1:%d\",\"pool_size\":%d}", server.port,
             2 * workers + 2);
    memset(&r, 0, sizeof r);
    if (pers_open(reg, "redis", json, &desc, &r.store) != PERS_OK) {
        fprintf(stderr, "open: %s\n", why);
        return -1;
    }
    snprintf(queue, sizeof queue, "q-%s-%d",
             batched == 2 ? "cbatch" : batched ? "batch" : "single", workers);
    r.queue = queue;
    r.batched = batched;
    r.tasks = tasks;
    t0 = rh_now_ms();
    for (i = 0; i < workers; i++) {
        pthread_create(&work[i], NULL, worker, &r);
        pthread_create(&prod[i], NULL, producer, &r);
    }
    for (i = 0; i < workers; i++) {
        pthread_join(prod[i], NULL);
        pthread_join(work[i], NULL);
    }
    t1 = rh_now_ms();
    pers_destroy(r.store);
    if (r.errors != 0 || r.completed != tasks)
        return -1;
    return (double)tasks * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1);
}

/* ---------------------------------------------------------------------------------------------
   BullMQ
   ------------------------------------------------------------------------------------------- */

static char bullmq_version[64];
static char node_version[64] = "?";
static char bullmq_problem[512];

/* Installs bullmq and ioredis into build/bench-node unless they are there. 0 when usable. */
static int bullmq_setup(void)
{
    const char *npm = getenv("NPM");
    const char *node = getenv("NODE");
    char cmd[1024];
    FILE *f;
    if (getenv("BENCH_SKIP_BULLMQ") != NULL) {
        snprintf(bullmq_problem, sizeof bullmq_problem, "skipped (BENCH_SKIP_BULLMQ is set)");
        return -1;
    }
    snprintf(cmd, sizeof cmd, "%s --version 2>/dev/null", node != NULL ? node : "node");
    f = popen(cmd, "r");
    if (f != NULL) {
        if (fgets(node_version, sizeof node_version, f) == NULL)
            node_version[0] = '\0';
        node_version[strcspn(node_version, "\r\n")] = '\0';
        pclose(f);
    }
    if (node_version[0] == '\0' || node_version[0] == '?') {
        snprintf(bullmq_problem, sizeof bullmq_problem,
                 "not measured: node is not installed (apt-get install nodejs npm)");
        return -1;
    }
    if (access("build/bench-node/node_modules/bullmq/package.json", R_OK) != 0) {
        printf("installing bullmq and ioredis with npm into build/bench-node ...\n");
        fflush(stdout);
        if (system("mkdir -p build/bench-node") != 0) {
            snprintf(bullmq_problem, sizeof bullmq_problem, "not measured: cannot create "
                                                            "build/bench-node");
            return -1;
        }
        snprintf(cmd, sizeof cmd,
                 "cd build/bench-node && (test -f package.json || echo '{\"private\":true}' > "
                 "package.json) && timeout 240 %s install --no-audit --no-fund bullmq ioredis "
                 ">npm-install.log 2>&1",
                 npm != NULL ? npm : "npm");
        if (system(cmd) != 0 ||
            access("build/bench-node/node_modules/bullmq/package.json", R_OK) != 0) {
            snprintf(bullmq_problem, sizeof bullmq_problem,
                     "not measured: npm install bullmq ioredis failed (see "
                     "build/bench-node/npm-install.log)");
            return -1;
        }
    }
    f = fopen("build/bench-node/node_modules/bullmq/package.json", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof line, f) != NULL) {
            char *v = strstr(line, "\"version\"");
            if (v != NULL && sscanf(v, "\"version\" : \"%63[^\"]\"", bullmq_version) != 1)
                sscanf(v, "\"version\": \"%63[^\"]\"", bullmq_version);
            if (bullmq_version[0] != '\0')
                break;
        }
        fclose(f);
    }
    return 0;
}

static double run_bullmq(int concurrency, int batched, long tasks)
{
    const char *node = getenv("NODE");
    char cmd[1024], line[1024];
    double tps = -1;
    FILE *p;
    flushall();
    snprintf(cmd, sizeof cmd,
             "NODE_PATH=build/bench-node/node_modules timeout 120 %s bench/bullmq_bench.js "
             "--port %d --tasks %ld --concurrency %d --mode %s 2>&1",
             node != NULL ? node : "node", server.port, tasks, concurrency,
             batched ? "batch" : "single");
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while (fgets(line, sizeof line, p) != NULL) {
        char *at = strstr(line, "\"tasks_per_s\":");
        if (at != NULL)
            tps = atof(at + strlen("\"tasks_per_s\":"));
        else if (strstr(line, "\"error\"") != NULL)
            snprintf(bullmq_problem, sizeof bullmq_problem, "failed: %.400s", line);
    }
    pclose(p);
    return tps;
}

/* ---------------------------------------------------------------------------------------------
   The server's limit: redis-benchmark and a lifecycle script built from the backend's scripts
   ------------------------------------------------------------------------------------------- */

static void append(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = (char *)realloc(*buf, *cap);
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
}

static void append_function(char **buf, size_t *len, size_t *cap, const char *fn,
                            const char *script)
{
    size_t n = pers_redis_script_source(script, NULL, 0);
    char *text = (char *)malloc(n + 1);
    pers_redis_script_source(script, text, n + 1);
    append(buf, len, cap, "local function ");
    append(buf, len, cap, fn);
    append(buf, len, cap, "(KEYS, ARGV)\n");
    append(buf, len, cap, text);
    append(buf, len, cap, "\nend\n");
    free(text);
}

/* One task life per call (B = ARGV[2] tasks): the backend's reserve, enqueue, claim and
   complete scripts, each run as a function on its own KEYS and ARGV. */
static char *lifecycle_script(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append_function(&buf, &len, &cap, "f_reserve", "reserve");
    append_function(&buf, &len, &cap, "f_enqueue", "enqueue");
    append_function(&buf, &len, &cap, "f_claim", "claim");
    append_function(&buf, &len, &cap, "f_complete", "complete");
    append(&buf, &len, &cap,
           "local base, b = ARGV[1], tonumber(ARGV[2])\n"
           "local qk = {}\n"
           "for i = 1, 12 do qk[i] = KEYS[i] end\n"
           "local tk = {KEYS[13], KEYS[14], KEYS[15], KEYS[16]}\n"
           "local ra, ea = {tostring(b)}, {'', tostring(b)}\n"
           "for i = 1, b do\n"
           "  local id = base .. '-' .. i\n"
           "  ra[#ra + 1] = id\n"
           "  ra[#ra + 1] = 'q'\n"
           "  ra[#ra + 1] = 'n' .. id\n"
           "  local e = #ea\n"
           "  ea[e + 1] = id\n"
           "  ea[e + 2] = 'n' .. id\n"
           "  ea[e + 3] = '1'\n"
           "  ea[e + 4] = ''\n"
           "  ea[e + 5] = 'payload-' .. i\n"
           "  ea[e + 6] = '0'\n"
           "  ea[e + 7] = '0'\n"
           "  ea[e + 8] = '0'\n"
           "  ea[e + 9] = '5'\n"
           "end\n"
           "f_reserve(tk, ra)\n"
           "f_enqueue(qk, ea)\n"
           "local c = f_claim(qk, {'', '30000', 'bench-worker', tostring(b), '0'})\n"
           "for k = 0, c[1] - 1 do\n"
           "  local at = 3 + k * 14\n"
           "  f_complete(qk, {'', c[at], string.format('%.0f', c[at + 5]), 'op' .. k, '0', 'done'})\n"
           "end\n"
           "return c[1]\n");
    return buf;
}

/* The batched path's requests, for redis-benchmark: phase A reserves, enqueues and claims
   ARGV[2] tasks in one call (the batched path makes 3 requests per 100 tasks for that); phase B
   completes the oldest leased task, one request per task, as the batched path does. */
static char *phase_script(int phase)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (phase == 0) {
        append_function(&buf, &len, &cap, "f_reserve", "reserve");
        append_function(&buf, &len, &cap, "f_enqueue", "enqueue");
        append_function(&buf, &len, &cap, "f_claim", "claim");
        append(&buf, &len, &cap,
               "local base, b = ARGV[1], tonumber(ARGV[2])\n"
               "local qk = {}\n"
               "for i = 1, 12 do qk[i] = KEYS[i] end\n"
               "local tk = {KEYS[13], KEYS[14], KEYS[15], KEYS[16]}\n"
               "local ra, ea = {tostring(b)}, {'', tostring(b)}\n"
               "for i = 1, b do\n"
               "  local id = base .. '-' .. i\n"
               "  ra[#ra + 1] = id\n"
               "  ra[#ra + 1] = 'q'\n"
               "  ra[#ra + 1] = 'n' .. id\n"
               "  local e = #ea\n"
               "  ea[e + 1] = id\n"
               "  ea[e + 2] = 'n' .. id\n"
               "  ea[e + 3] = '1'\n"
               "  ea[e + 4] = ''\n"
               "  ea[e + 5] = 'payload-' .. i\n"
               "  ea[e + 6] = '0'\n"
               "  ea[e + 7] = '0'\n"
               "  ea[e + 8] = '0'\n"
               "  ea[e + 9] = '5'\n"
               "end\n"
               "f_reserve(tk, ra)\n"
               "f_enqueue(qk, ea)\n"
               "return f_claim(qk, {'', '300000', 'bench-worker', tostring(b), '0'})[1]\n");
    } else {
        append_function(&buf, &len, &cap, "f_complete", "complete");
        append(&buf, &len, &cap,
               "local m = redis.call('ZRANGE', KEYS[4], 0, 0)\n"
               "if #m == 0 then return 0 end\n"
               "local rec = redis.call('HGET', KEYS[8], m[1])\n"
               "local st, pr, seq, att, max, tok = struct.unpack('<Bddddddddd', rec)\n"
               "return f_complete(KEYS, {'', m[1], string.format('%.0f', tok), 'op', '0', "
               "'done'})[1]\n");
    }
    return buf;
}

static void limit_keys(char *keys, size_t size, int with_tenant)
{
    const char *const *suffixes = pers_redis_queue_key_suffixes();
    static const char *const tsuffixes[] = { "ids", "queues", "subs", "subexp" };
    char k[200];
    int i;
    keys[0] = '\0';
    for (i = 0; suffixes[i] != NULL; i++) {
        pers_redis_key(k, sizeof k, "limit", "bench", "q", suffixes[i]);
        snprintf(keys + strlen(keys), size - strlen(keys), " '%s'", k);
    }
    for (i = 0; with_tenant && i < 4; i++) {
        pers_redis_key(k, sizeof k, "limit", "bench", NULL, tsuffixes[i]);
        snprintf(keys + strlen(keys), size - strlen(keys), " '%s'", k);
    }
}

/* Requests per second of one redis-benchmark run of EVALSHA sha with the given arguments. */
static double bench_rps(const char *sha, int numkeys, const char *keys, const char *args,
                        int pipeline, long calls, char *problem, size_t psize)
{
    char cmd[2048], line[2048];
    double rps = -1;
    FILE *p;
    snprintf(cmd, sizeof cmd,
             "redis-benchmark -h 127.0.0.1 -p %d -c 50 -P %d -n %ld -r 1000000000 --csv "
             "EVALSHA %s %d%s %s 2>&1",
             server.port, pipeline, calls, sha, numkeys, keys, args);
    p = popen(cmd, "r");
    if (p == NULL) {
        snprintf(problem, psize, "cannot run redis-benchmark");
        return -1;
    }
    while (fgets(line, sizeof line, p) != NULL) {
        char *q = strstr(line, "\",\"");
        if (strncmp(line, "\"EVALSHA", 8) == 0 && q != NULL)
            rps = atof(q + 3);
        else if (strstr(line, "ERR") != NULL || strstr(line, "rror") != NULL)
            snprintf(problem, psize, "%.300s", line);
    }
    pclose(p);
    return rps;
}

/* The batched limit: phase A then phase B on the same data; tasks per second of the pair. */
static double run_phases(const char *sha_a, const char *sha_b, long calls, char *problem,
                         size_t psize)
{
    char keys[1500];
    double a, b;
    flushall();
    limit_keys(keys, sizeof keys, 1);
    a = bench_rps(sha_a, 16, keys, "__rand_int__ 100", 2, calls, problem, psize);
    limit_keys(keys, sizeof keys, 0);
    b = bench_rps(sha_b, 12, keys, "", 16, calls * BATCH, problem, psize);
    if (a <= 0 || b <= 0)
        return -1;
    return 1.0 / (1.0 / (a * BATCH) + 1.0 / b);
}

/* Tasks per second the server sustains for the lifecycle script with b tasks per call. */
static double run_limit(const char *sha, int b, long calls, char *problem, size_t psize)
{
    char cmd[2048], keys[1500], k[200], line[2048];
    const char *const *suffixes = pers_redis_queue_key_suffixes();
    static const char *const tsuffixes[] = { "ids", "queues", "subs", "subexp" };
    double rps = -1;
    int i;
    FILE *p;
    flushall();
    keys[0] = '\0';
    for (i = 0; suffixes[i] != NULL; i++) {
        pers_redis_key(k, sizeof k, "limit", "bench", "q", suffixes[i]);
        strcat(keys, " '");
        strcat(keys, k);
        strcat(keys, "'");
    }
    for (i = 0; i < 4; i++) {
        pers_redis_key(k, sizeof k, "limit", "bench", NULL, tsuffixes[i]);
        strcat(keys, " '");
        strcat(keys, k);
        strcat(keys, "'");
    }
    snprintf(cmd, sizeof cmd,
             "redis-benchmark -h 127.0.0.1 -p %d -c 50 -P %d -n %ld -r 1000000000 --csv "
             "EVALSHA %s 16%s __rand_int__ %d 2>&1",
             server.port, b == 1 ? 16 : 2, calls, sha, keys, b);
    p = popen(cmd, "r");
    if (p == NULL) {
        snprintf(problem, psize, "cannot run redis-benchmark");
        return -1;
    }
    while (fgets(line, sizeof line, p) != NULL) {
        /* "EVALSHA ...","12345.67",... */
        char *q = strstr(line, "\",\"");
        if (strncmp(line, "\"EVALSHA", 8) == 0 && q != NULL)
            rps = atof(q + 3);
        else if (strstr(line, "ERR") != NULL || strstr(line, "rror") != NULL)
            snprintf(problem, psize, "%.300s", line);
    }
    pclose(p);
    return rps > 0 ? rps * b : -1;
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The median of n runs (a failed run, -1, sorts first). */
static double median(const double *v, int n)
{
    double s[REPEATS];
    int i;
    for (i = 0; i < n; i++)
        s[i] = v[i];
    qsort(s, (size_t)n, sizeof s[0], by_value);
    return s[0] < 0 ? -1 : s[n / 2];
}

static const char *list(const double *v, int n, char *buf, size_t size)
{
    int i;
    size_t used = 0;
    buf[0] = '\0';
    for (i = 0; i < n && used + 16 < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %.0f/s" : "%.0f/s", v[i]);
    return buf;
}

static void loadavg(char *buf, size_t size)
{
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(buf, size, "?");
    if (f != NULL) {
        if (fgets(buf, (int)size, f) == NULL)
            snprintf(buf, size, "?");
        buf[strcspn(buf, " ")] = '\0'; /* the 1-minute figure */
        fclose(f);
    }
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v != NULL && atol(v) > 0 ? atol(v) : def;
}

int main(void)
{
    plg_registry *reg = NULL;
    long single_tasks = env_long("BENCH_TASKS_SINGLE", 3000);
    long batch_tasks = env_long("BENCH_TASKS_BATCH", 10000);
    static const int conc[2] = { 1, 10 };
    double ours[2][2], theirs[2][2], limit[2] = { -1, -1 };
    char problem[2][400], *script, sha[41], sha_a[41], sha_b[41], *pa, *pb;
    double ceiling[REPEATS], ceiling_med = -1;
    double cb[2], cb_base[2]; /* batched + complete_batch, and its batched pair */
    char version[64] = "?";
    int have_bullmq, i, m, failed = 0;
    char load_before[64], load_after[64], runs_a[128], runs_b[128];
    redisReply *r;

    if (!rh_find_server(server.server, sizeof server.server)) {
        printf("bench_redis_backend: SKIPPED: redis-server not found (%s)\n", RH_INSTALL_HINT);
        return 0;
    }
    if (rh_start(&server, 0) != 0) {
        printf("bench_redis_backend: could not start redis-server\n");
        return 1;
    }
    r = rh_command(&server, "INFO server");
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        char *v = strstr(r->str, "redis_version:");
        if (v != NULL)
            sscanf(v, "redis_version:%63[^\r\n]", version);
    }
    if (r != NULL)
        freeReplyObject(r);
    if (plg_registry_create(NULL, &reg) != PLG_OK || pers_redis_register(reg) != PERS_OK) {
        rh_stop(&server);
        return 1;
    }
    printf("Redis backend benchmark: redis-server %s on 127.0.0.1:%d (no persistence), one server "
           "for every row\n",
           version, server.port);
    printf("end to end = enqueue + claim + complete, producers and workers at once; %ld tasks "
           "per single row, %ld per batched row (batches of %d); medians of %d runs\n",
           single_tasks, batch_tasks, BATCH, REPEATS);
    fflush(stdout);

    have_bullmq = bullmq_setup() == 0;
    script = lifecycle_script();
    r = rh_command(&server, "SCRIPT LOAD %s", script);
    free(script);
    sha[0] = '\0';
    problem[0][0] = problem[1][0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(sha, sizeof sha, "%s", r->str);
    else
        snprintf(problem[0], sizeof problem[0], "SCRIPT LOAD failed: %s",
                 r != NULL && r->str != NULL ? r->str : "no reply");
    if (r != NULL)
        freeReplyObject(r);
    pa = phase_script(0);
    pb = phase_script(1);
    sha_a[0] = sha_b[0] = '\0';
    r = rh_command(&server, "SCRIPT LOAD %s", pa);
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(sha_a, sizeof sha_a, "%s", r->str);
    if (r != NULL)
        freeReplyObject(r);
    r = rh_command(&server, "SCRIPT LOAD %s", pb);
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(sha_b, sizeof sha_b, "%s", r->str);
    if (r != NULL)
        freeReplyObject(r);
    free(pa);
    free(pb);

    loadavg(load_before, sizeof load_before);
    for (m = 0; m < 2; m++)
        for (i = 0; i < 2; i++) {
            double a[REPEATS], b[REPEATS], l[REPEATS];
            long n = m ? batch_tasks : single_tasks;
            int k, with_limit = i == 1 && m == 1; /* the limit goes with the batched 10-worker
                                                    row */
            for (k = 0; k < REPEATS; k++) {
                if (k % 2 == 0) {
                    a[k] = run_ours(reg, conc[i], m, n);
                    b[k] = have_bullmq ? run_bullmq(conc[i], m, n) : -1;
                } else {
                    b[k] = have_bullmq ? run_bullmq(conc[i], m, n) : -1;
                    a[k] = run_ours(reg, conc[i], m, n);
                }
                l[k] = -1;
                if (with_limit && m == 1 && sha_a[0] && sha_b[0])
                    l[k] = run_phases(sha_a, sha_b, 300, problem[1], sizeof problem[1]);
                if (with_limit && m == 1 && sha[0])
                    ceiling[k] = run_limit(sha, BATCH, 300, problem[0], sizeof problem[0]);
            }
            ours[m][i] = median(a, REPEATS);
            theirs[m][i] = median(b, REPEATS);
            if (with_limit) {
                limit[m] = median(l, REPEATS);
                ceiling_med = median(ceiling, REPEATS);
            }
            printf("  %-7s %2d workers: this backend %s; BullMQ %s", m ? "batched" : "single",
                   conc[i], list(a, REPEATS, runs_a, sizeof runs_a),
                   list(b, REPEATS, runs_b, sizeof runs_b));
            if (with_limit)
                printf("; limit %s", list(l, REPEATS, runs_a, sizeof runs_a));
            printf("\n");
            fflush(stdout);
        }
    /* complete_batch: the batched cycle with one complete_batch per claim, against the batched
       cycle itself, alternating back to back (the load moves between rows, not within a pair) */
    for (i = 0; i < 2; i++) {
        double a[REPEATS], c[REPEATS];
        int k;
        for (k = 0; k < REPEATS; k++) {
            if (k % 2 == 0) {
                c[k] = run_ours(reg, conc[i], 2, batch_tasks);
                a[k] = run_ours(reg, conc[i], 1, batch_tasks);
            } else {
                a[k] = run_ours(reg, conc[i], 1, batch_tasks);
                c[k] = run_ours(reg, conc[i], 2, batch_tasks);
            }
        }
        cb[i] = median(c, REPEATS);
        cb_base[i] = median(a, REPEATS);
        printf("  batched + complete_batch %2d workers: %s; batched %s\n", conc[i],
               list(c, REPEATS, runs_a, sizeof runs_a), list(a, REPEATS, runs_b, sizeof runs_b));
        fflush(stdout);
    }
    loadavg(load_after, sizeof load_after);

    printf("\n(%ld CPUs; 1-minute load average %s before the rows, %s after)\n",
           sysconf(_SC_NPROCESSORS_ONLN), load_before, load_after);
    printf("%-30s %8s %14s %14s %8s  %s\n", "end to end", "workers", "this backend",
           have_bullmq ? "BullMQ" : "BullMQ", "ratio", "target >= 2x BullMQ");
    for (m = 0; m < 2; m++)
        for (i = 0; i < 2; i++) {
            char a[32], b2[32], ratio[16];
            const char *verdict;
            snprintf(a, sizeof a, ours[m][i] > 0 ? "%.0f/s" : "failed", ours[m][i]);
            snprintf(b2, sizeof b2, theirs[m][i] > 0 ? "%.0f/s" : "n/a", theirs[m][i]);
            if (ours[m][i] > 0 && theirs[m][i] > 0) {
                snprintf(ratio, sizeof ratio, "%.1fx", ours[m][i] / theirs[m][i]);
                verdict = ours[m][i] >= 2 * theirs[m][i] ? "met" : "NOT met";
                if (ours[m][i] < 2 * theirs[m][i])
                    failed++;
            } else {
                snprintf(ratio, sizeof ratio, "-");
                verdict = ours[m][i] > 0 ? "not evaluated (no BullMQ figure)" : "FAILED to run";
                if (ours[m][i] <= 0)
                    failed++;
            }
            printf("%-30s %8d %14s %14s %8s  %s\n",
                   m ? "batched (100 per call)" : "single (1 per call)", conc[i], a, b2, ratio,
                   verdict);
        }
    printf("\n%-30s %8s %14s %14s %8s  %s\n", "batched + complete_batch", "workers",
           "this backend", "batched pair", "speed-up", "BullMQ batched (reference)");
    for (i = 0; i < 2; i++) {
        char a[32], b2[32], ratio[16], bull[32];
        snprintf(a, sizeof a, cb[i] > 0 ? "%.0f/s" : "failed", cb[i]);
        snprintf(b2, sizeof b2, cb_base[i] > 0 ? "%.0f/s" : "failed", cb_base[i]);
        snprintf(ratio, sizeof ratio, cb[i] > 0 && cb_base[i] > 0 ? "%.2fx" : "-",
                 cb[i] > 0 && cb_base[i] > 0 ? cb[i] / cb_base[i] : 0.0);
        if (theirs[1][i] > 0 && cb[i] > 0)
            snprintf(bull, sizeof bull, "%.0f/s (%.1fx)", theirs[1][i], cb[i] / theirs[1][i]);
        else
            snprintf(bull, sizeof bull, "n/a");
        printf("%-30s %8d %14s %14s %8s  %s\n", "(100 per call, complete too)", conc[i], a, b2,
               ratio, bull);
        if (cb[i] <= 0)
            failed++;
    }
    if (!have_bullmq || bullmq_problem[0] != '\0')
        printf("BullMQ: %s\n", bullmq_problem[0] ? bullmq_problem : "not measured");
    else
        printf("BullMQ %s with ioredis (Node %s), same server, same concurrency\n", bullmq_version,
               node_version);

    printf("\nserver limit, measured with redis-benchmark (50 clients, pipelined) between the "
           "batched 10-worker runs, medians:\n");
    printf("  limit    %8.0f tasks/s  the batched path's own requests from an ideal client: one "
           "call reserving, enqueueing and claiming 100 tasks, then one complete call per "
           "task%s%s\n",
           limit[1], problem[1][0] ? "; " : "", problem[1]);
    printf("  ceiling  %8.0f tasks/s  (no target) the same scripts for 100 task lives in one "
           "call: no per-request cost at all%s%s\n",
           ceiling_med, problem[0][0] ? "; " : "", problem[0]);
    if (limit[1] > 0 && ours[1][1] > 0) {
        double share = 100.0 * ours[1][1] / limit[1];
        printf("batched path at 10 workers: %.0f tasks/s = %.1f%% of the limit (%.1f%% of the "
               "ceiling): target >= 70%% %s\n",
               ours[1][1], share, ceiling_med > 0 ? 100.0 * ours[1][1] / ceiling_med : 0.0,
               share >= 70.0 ? "met" : "NOT met");
        if (share < 70.0)
            failed++;
        if (cb[1] > 0)
            printf("batched + complete_batch at 10 workers: %.0f tasks/s = %.1f%% of the limit "
                   "(no target)\n",
                   cb[1], 100.0 * cb[1] / limit[1]);
    } else {
        printf("batched path vs limit: not evaluated\n");
        failed++;
    }

    plg_registry_destroy(reg);
    rh_stop(&server);
    printf("bench_redis_backend: %s\n", failed ? "some targets NOT met (see above)" : "targets met");
    return 0;
}
