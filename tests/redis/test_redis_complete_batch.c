/* complete_batch of backends/redis.h (persistence.h S20) against a real redis-server
   (tests/redis/redis_harness.h), beyond the contract suite's cases: one pipeline for tasks of
   several tenants and queues, shared directory lookups, a stale id cache, NOSCRIPT, and the
   connection failing in the middle of a batch.

   The failures are made by a small TCP proxy in this program (a thread) between the store and
   the server. It understands just enough RESP to count whole commands and replies, so a cut is
   exact: "let the first K commands of the batch through, hand back their K replies, then close
   both sides" (the server never saw the rest), or "let every command through but only K
   replies back" (the server ran them all; the store cannot know). It may also refuse the
   reconnection that follows (it closes each new connection at once), so the backend's one
   resend fails too. The store has a pool of one connection and fills its id cache through its
   own claims, so the only commands of a batch are its scripts.

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/redis/test_redis_complete_batch.c \
         -o /tmp/redis_cbatch -pthread -lm -lhiredis && /tmp/redis_cbatch */
#define _XOPEN_SOURCE 700
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_REDIS_IMPLEMENTATION
#include "backends/redis.h"
#include "tests/redis/redis_harness.h"
#include "tests/test.h"

#include <poll.h>
#include <pthread.h>

static redis_harness server;

/* ---------------------------------------------------------------------------------------------
   The proxy
   ------------------------------------------------------------------------------------------- */

#define PX_PAIRS 8

typedef struct px_buf {
    char *p;
    size_t len, cap;
} px_buf;

typedef struct px_pair {
    int live;
    int cfd, sfd;   /* the store's side, the server's side */
    int holding;    /* the client's further bytes are dropped */
    px_buf up, down;
} px_pair;

typedef struct proxy {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock; /* everything below */
    int stop;
    /* the plan (set by arm) */
    int armed;
    long hold_after;   /* commands let through after arming; -1: all */
    long cut_after;    /* replies handed back after arming before the cut */
    long cut_needs;    /* ... once this many commands went through */
    int refuse_after;  /* after the cut, close each new connection at once */
    /* what happened since arming */
    long cmds, replies;
    int cut, refusing;
    long accepted, refused;
    /* commands that reached the server, armed or not, by name */
    long n_evalsha, n_eval, n_hget, n_other;
    px_pair pairs[PX_PAIRS];
} proxy;

/* Length of the one complete RESP value at the start of p[0..n); 0 when more bytes are needed;
   (size_t)-1 when it is not RESP. */
static size_t px_value(const char *p, size_t n)
{
    const char *nl;
    size_t at, sub;
    long long len, k;
    if (n == 0)
        return 0;
    nl = (const char *)memchr(p, '\n', n);
    if (nl == NULL)
        return 0;
    at = (size_t)(nl - p) + 1;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return at;
    case '$':
        len = atoll(p + 1);
        if (len < 0)
            return at;
        return n < at + (size_t)len + 2 ? 0 : at + (size_t)len + 2;
    case '*':
        len = atoll(p + 1);
        for (k = 0; k < len; k++) {
            sub = px_value(p + at, n - at);
            if (sub == 0 || sub == (size_t)-1)
                return sub;
            at += sub;
        }
        return at;
    default:
        return (size_t)-1;
    }
}

/* Counts a command (an array whose first element is its name) by name. */
static void px_count(proxy *x, const char *p, size_t n)
{
    const char *name = memchr(p, '\n', n);
    size_t len;
    if (p[0] != '*' || name == NULL || name[1] != '$')
        return;
    len = (size_t)atol(name + 2);
    name = memchr(name + 1, '\n', n - (size_t)(name + 1 - p));
    if (name == NULL || (size_t)(name + 1 - p) + len > n)
        return;
    name++;
    if (len == 7 && memcmp(name, "EVALSHA", 7) == 0)
        x->n_evalsha++;
    else if (len == 4 && memcmp(name, "EVAL", 4) == 0)
        x->n_eval++;
    else if (len == 4 && memcmp(name, "HGET", 4) == 0)
        x->n_hget++;
    else
        x->n_other++;
}

static int px_append(px_buf *b, const char *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *p = (char *)realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static void px_send(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return; /* the peer is gone: the reading side notices */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void px_close(px_pair *q)
{
    char sink[4096];
    if (!q->live)
        return;
    /* Read what the store sent and we hold, so the close is a FIN, not a reset that could
       destroy the replies still waiting in the store's socket. */
    while (recv(q->cfd, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
    close(q->cfd);
    close(q->sfd);
    free(q->up.p);
    free(q->down.p);
    memset(q, 0, sizeof *q);
}

static int px_connect_server(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)server.port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Under x->lock: forwards the complete commands (up) or replies (down) of pair q. */
static void px_pump(proxy *x, px_pair *q, int up)
{
    px_buf *b = up ? &q->up : &q->down;
    size_t at = 0, v;
    while (q->live && at < b->len) {
        v = px_value(b->p + at, b->len - at);
        if (v == 0)
            break;
        if (v == (size_t)-1) /* not RESP: pass it on as it is */
            v = b->len - at;
        if (up) {
            if (x->armed && x->hold_after >= 0 && x->cmds >= x->hold_after) {
                q->holding = 1;
                at = b->len;
                break;
            }
            px_send(q->sfd, b->p + at, v);
            px_count(x, b->p + at, v);
            if (x->armed)
                x->cmds++;
        } else {
            px_send(q->cfd, b->p + at, v);
            if (x->armed)
                x->replies++;
        }
        at += v;
        if (x->armed && x->replies >= x->cut_after && x->cmds >= x->cut_needs) {
            x->armed = 0;
            x->cut = 1;
            x->refusing = x->refuse_after;
            px_close(q);
            return;
        }
    }
    if (at > 0) {
        memmove(b->p, b->p + at, b->len - at);
        b->len -= at;
    }
}

static void *px_run(void *arg)
{
    proxy *x = (proxy *)arg;
    for (;;) {
        struct pollfd fds[1 + 2 * PX_PAIRS];
        int who[1 + 2 * PX_PAIRS];
        int n = 0, i, k;
        pthread_mutex_lock(&x->lock);
        if (x->stop) {
            for (i = 0; i < PX_PAIRS; i++)
                px_close(&x->pairs[i]);
            pthread_mutex_unlock(&x->lock);
            return NULL;
        }
        fds[n].fd = x->lfd;
        fds[n].events = POLLIN;
        who[n++] = -1;
        for (i = 0; i < PX_PAIRS; i++)
            if (x->pairs[i].live) {
                fds[n].fd = x->pairs[i].cfd;
                fds[n].events = POLLIN;
                who[n++] = 2 * i;
                fds[n].fd = x->pairs[i].sfd;
                fds[n].events = POLLIN;
                who[n++] = 2 * i + 1;
            }
        pthread_mutex_unlock(&x->lock);
        for (i = 0; i < n; i++)
            fds[i].revents = 0;
        if (poll(fds, (nfds_t)n, 20) <= 0)
            continue;
        pthread_mutex_lock(&x->lock);
        for (k = 0; k < n; k++) {
            char chunk[65536];
            ssize_t got;
            px_pair *q;
            if (fds[k].revents == 0)
                continue;
            if (who[k] < 0) {
                int cfd = accept(x->lfd, NULL, NULL);
                if (cfd < 0)
                    continue;
                if (x->refusing) {
                    x->refused++;
                    close(cfd);
                    continue;
                }
                for (i = 0; i < PX_PAIRS && x->pairs[i].live; i++)
                    ;
                if (i == PX_PAIRS) {
                    close(cfd);
                    continue;
                }
                q = &x->pairs[i];
                memset(q, 0, sizeof *q);
                q->cfd = cfd;
                q->sfd = px_connect_server();
                if (q->sfd < 0) {
                    close(cfd);
                    continue;
                }
                q->live = 1;
                x->accepted++;
                continue;
            }
            q = &x->pairs[who[k] / 2];
            if (!q->live || fds[k].fd != (who[k] % 2 ? q->sfd : q->cfd))
                continue; /* closed by an earlier event of this round */
            got = recv(fds[k].fd, chunk, sizeof chunk, 0);
            if (got <= 0) {
                px_close(q);
                continue;
            }
            if (who[k] % 2 == 0 && q->holding)
                continue; /* dropped: the server never sees it */
            if (px_append(who[k] % 2 ? &q->down : &q->up, chunk, (size_t)got) != 0) {
                px_close(q);
                continue;
            }
            px_pump(x, q, who[k] % 2 == 0);
        }
        pthread_mutex_unlock(&x->lock);
    }
}

static int px_start(proxy *x)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(x, 0, sizeof *x);
    pthread_mutex_init(&x->lock, NULL);
    x->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (x->lfd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(x->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(x->lfd, 16) != 0 ||
        getsockname(x->lfd, (struct sockaddr *)&a, &len) != 0) {
        close(x->lfd);
        return -1;
    }
    x->port = ntohs(a.sin_port);
    if (pthread_create(&x->thread, NULL, px_run, x) != 0) {
        close(x->lfd);
        return -1;
    }
    return 0;
}

static void px_stop(proxy *x)
{
    pthread_mutex_lock(&x->lock);
    x->stop = 1;
    pthread_mutex_unlock(&x->lock);
    pthread_join(x->thread, NULL);
    close(x->lfd);
    pthread_mutex_destroy(&x->lock);
}

/* The next K commands go through (hold_after; -1: all), and once cut_needs of them did and
   cut_after replies came back, both sides are closed; refuse: then every new connection too. */
static void px_arm(proxy *x, long hold_after, long cut_needs, long cut_after, int refuse)
{
    pthread_mutex_lock(&x->lock);
    x->hold_after = hold_after;
    x->cut_needs = cut_needs;
    x->cut_after = cut_after;
    x->refuse_after = refuse;
    x->cmds = x->replies = 0;
    x->cut = x->refusing = 0;
    x->refused = 0;
    x->armed = 1;
    pthread_mutex_unlock(&x->lock);
}

/* Disarms and accepts connections again. */
static void px_heal(proxy *x)
{
    pthread_mutex_lock(&x->lock);
    x->armed = 0;
    x->refusing = 0;
    pthread_mutex_unlock(&x->lock);
}

static long px_get(proxy *x, const long *field)
{
    long v;
    pthread_mutex_lock(&x->lock);
    v = *field;
    pthread_mutex_unlock(&x->lock);
    return v;
}

static int px_was_cut(proxy *x)
{
    int v;
    pthread_mutex_lock(&x->lock);
    v = x->cut;
    pthread_mutex_unlock(&x->lock);
    return v;
}

/* ---------------------------------------------------------------------------------------------
   Fixtures
   ------------------------------------------------------------------------------------------- */

#define T0 INT64_C(1700000000000)
#define N 6

typedef struct fake_clock {
    int64_t now;
} fake_clock;

static int64_t fake_now(void *user)
{
    return __atomic_load_n(&((fake_clock *)user)->now, __ATOMIC_SEQ_CST);
}

/* A store on port (the server's or the proxy's), key prefix prefix, a pool of one connection,
   clock "store" on clock. */
static pers_store *open_on(plg_registry *reg, int port, const char *prefix, fake_clock *clock)
{
    pers_store_desc desc;
    pers_store *s = NULL;
    char json[512], why[512];
    pers_result rc;
    snprintf(json, sizeof json,
             "{\"addr\":\"127.0.0.1:%d\",\"key_prefix\":\"%s\",\"clock\":\"store\","
             "\"pool_size\":1,\"command_timeout\":\"2s\",\"reconnect_backoff\":\"10ms\","
             "\"reconnect_backoff_max\":\"20ms\"}",
             port, prefix);
    memset(&desc, 0, sizeof desc);
    desc.clock.now_ms = fake_now;
    desc.clock.user = clock;
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    rc = pers_open(reg, "redis", json, &desc, &s);
    if (rc != PERS_OK)
        printf("    open: %s (%s)\n", why, pers_result_string(rc));
    return s;
}

static plg_registry *registry(void)
{
    plg_registry *reg = NULL;
    if (plg_registry_create(NULL, &reg) != PLG_OK || pers_redis_register(reg) != PERS_OK)
        printf("    registry setup failed\n");
    return reg;
}

static redisReply *cmd(const char *fmt, ...)
{
    redisContext *c = rh_connect(&server);
    redisReply *r;
    va_list ap;
    if (c == NULL)
        return NULL;
    va_start(ap, fmt);
    r = (redisReply *)redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* calls=N of one command in INFO commandstats. */
static long long calls_of(const char *command)
{
    redisReply *r = cmd("INFO commandstats");
    char key[64];
    const char *p;
    long long v = 0;
    snprintf(key, sizeof key, "cmdstat_%s:calls=", command);
    if (r != NULL && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, key)) != NULL)
        v = atoll(p + strlen(key));
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

static const char *const tenant_of[N] = { "acme", "acme", "globex", "acme", "globex", "acme" };
static const char *const queue_of[N] = { "email", "sms", "email", "email", "email", "push" };

/* The batch of these tests: N tasks "t0".."t5" of two tenants and three queues, enqueued and
   claimed through s (whose cache then knows them), one lease and one result ("r0".."r5")
   each. */
typedef struct batch {
    char id[N][8], data[N][8];
    pers_task task[N];
    pers_lease lease[N];
    pers_completion done[N];
    pers_result res[N];
} batch;

static int make_batch(pers_store *s, batch *bt)
{
    size_t i;
    memset(bt, 0, sizeof *bt);
    for (i = 0; i < N; i++) {
        pers_enqueue_req r;
        pers_claim_req c;
        pers_claim_res cr;
        const char *q[1];
        snprintf(bt->id[i], sizeof bt->id[i], "t%lu", (unsigned long)i);
        snprintf(bt->data[i], sizeof bt->data[i], "r%lu", (unsigned long)i);
        memset(&r, 0, sizeof r);
        r.tenant = tenant_of[i];
        r.queue = queue_of[i];
        r.task_id = bt->id[i];
        r.payload = "p";
        r.payload_len = 1;
        if (pers_enqueue(s, &r, NULL) != PERS_OK) {
            printf("    enqueue %s: %s\n", bt->id[i], pers_errmsg(s));
            return 0;
        }
        q[0] = queue_of[i];
        memset(&c, 0, sizeof c);
        c.tenant = tenant_of[i];
        c.queues = q;
        c.queue_count = 1;
        c.worker_id = "w";
        c.lease_ms = 60000;
        c.max_tasks = 1;
        if (pers_claim(s, &c, &bt->task[i], &cr) != PERS_OK || cr.count != 1 ||
            strcmp(bt->task[i].id, bt->id[i]) != 0) {
            printf("    claim %s: %s\n", bt->id[i], pers_errmsg(s));
            return 0;
        }
        bt->lease[i].tenant = tenant_of[i];
        bt->lease[i].task_id = bt->id[i];
        bt->lease[i].token = bt->task[i].lease_token;
        bt->done[i].data = bt->data[i];
        bt->done[i].data_len = strlen(bt->data[i]);
        bt->res[i] = PERS_ERR_INTERNAL;
    }
    return 1;
}

static void free_batch(pers_store *s, batch *bt)
{
    pers_tasks_free(s, bt->task, N);
}

/* Task i as a second store (straight to the server) sees it: its state, and its result when it
   has one ("" if none). */
static pers_task_state state_of(pers_store *check, const batch *bt, size_t i, char *result,
                                size_t size)
{
    pers_task t;
    pers_task_result r;
    pers_task_state st = (pers_task_state)0;
    result[0] = '\0';
    if (pers_get_task(check, tenant_of[i], bt->id[i], &t) == PERS_OK) {
        st = t.state;
        pers_task_free(check, &t);
    }
    if (pers_get_result(check, tenant_of[i], bt->id[i], &r) == PERS_OK) {
        snprintf(result, size, "%s", (const char *)r.data);
        pers_task_result_free(check, &r);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------------
   Cases
   ------------------------------------------------------------------------------------------- */

TEST(one_script_per_item_across_tenants_and_queues)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = NULL, *other = NULL;
    pers_caps caps;
    proxy px; /* here only to count the commands */
    batch bt;
    char got[16];
    long evalsha0, hget0, other0;
    size_t i;
    clock.now = T0;
    if (px_start(&px) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    s = open_on(reg, px.port, "one", &clock);
    other = open_on(reg, px.port, "one", &clock); /* the same data, an empty id cache */
    CHECK(s != NULL && other != NULL);
    if (s == NULL || other == NULL || !make_batch(s, &bt)) {
        pers_destroy(s);
        pers_destroy(other);
        px_stop(&px);
        plg_registry_destroy(reg);
        return;
    }
    CHECK_INT(pers_capabilities(s, &caps), PERS_OK);
    CHECK((caps.flags & PERS_CAP_COMPLETE_BATCH) != 0);
    /* the ids are in s's cache: the scripts and nothing else */
    evalsha0 = px_get(&px, &px.n_evalsha);
    hget0 = px_get(&px, &px.n_hget);
    other0 = px_get(&px, &px.n_other);
    CHECK_INT(pers_complete_batch(s, bt.lease, bt.done, 3, bt.res), PERS_OK);
    CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, 3);
    CHECK_INT(px_get(&px, &px.n_hget) - hget0, 0);
    CHECK_INT(px_get(&px, &px.n_other) - other0, 0);
    /* not in other's cache: the directory lookups of the whole batch, then its scripts. The
       first three tasks are done already (S5c); t1 twice and t4 twice: one lookup each. */
    bt.lease[0] = bt.lease[4];
    bt.done[0] = bt.done[4];
    bt.lease[2] = bt.lease[1];
    evalsha0 = px_get(&px, &px.n_evalsha);
    hget0 = px_get(&px, &px.n_hget);
    CHECK_INT(pers_complete_batch(other, bt.lease, bt.done, N, bt.res), PERS_OK);
    CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, N);
    CHECK_INT(px_get(&px, &px.n_hget) - hget0, 4); /* t4, t1, t3, t5 */
    CHECK_INT(bt.res[0], PERS_OK);                    /* t4 */
    CHECK_INT(bt.res[1], PERS_ERR_ALREADY_COMPLETED); /* t1, done by the first batch */
    CHECK_INT(bt.res[2], PERS_ERR_ALREADY_COMPLETED);
    CHECK_INT(bt.res[3], PERS_OK);
    CHECK_INT(bt.res[4], PERS_ERR_ALREADY_COMPLETED); /* t4 again, after item 0 */
    CHECK_INT(bt.res[5], PERS_OK);
    for (i = 0; i < N; i++) {
        CHECK_INT(state_of(s, &bt, i, got, sizeof got), PERS_STATE_COMPLETED);
        CHECK_STR(got, bt.data[i]);
    }
    free_batch(s, &bt);
    pers_destroy(s);
    pers_destroy(other);
    px_stop(&px);
    plg_registry_destroy(reg);
}

TEST(a_stale_cache_entry_is_looked_up_again_and_repeats_stay_in_order)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *a, *b;
    pers_enqueue_req r;
    pers_cleanup_req cl;
    pers_claim_req c;
    pers_claim_res cr;
    pers_task ta, tb;
    pers_task_result res;
    pers_lease l[3];
    pers_completion d[3];
    pers_result out[3];
    const char *q[1];
    long long hget0;
    proxy px; /* counts a's commands */
    clock.now = T0;
    if (px_start(&px) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    a = open_on(reg, px.port, "stale", &clock);
    b = open_on(reg, server.port, "stale", &clock);
    CHECK(a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
        pers_destroy(a);
        pers_destroy(b);
        px_stop(&px);
        plg_registry_destroy(reg);
        return;
    }
    /* a learns "job-1 is in q1"; b finishes it, removes it and enqueues job-1 into q2 */
    memset(&r, 0, sizeof r);
    r.tenant = "acme";
    r.queue = "q1";
    r.task_id = "job-1";
    CHECK_INT(pers_enqueue(a, &r, NULL), PERS_OK);
    q[0] = "q1";
    memset(&c, 0, sizeof c);
    c.tenant = "acme";
    c.queues = q;
    c.queue_count = 1;
    c.worker_id = "w";
    c.lease_ms = 60000;
    c.max_tasks = 1;
    CHECK_INT(pers_claim(a, &c, &ta, &cr), PERS_OK);
    CHECK_INT(cr.count, 1);
    l[0].tenant = "acme";
    l[0].task_id = "job-1";
    l[0].token = ta.lease_token;
    CHECK_INT(pers_complete(b, &l[0], NULL), PERS_OK);
    memset(&cl, 0, sizeof cl);
    cl.tenant = "acme";
    CHECK_INT(pers_cleanup_tasks(b, &cl, NULL), PERS_OK);
    r.queue = "q2";
    CHECK_INT(pers_enqueue(b, &r, NULL), PERS_OK);
    q[0] = "q2";
    CHECK_INT(pers_claim(b, &c, &tb, &cr), PERS_OK);
    CHECK_INT(cr.count, 1);
    /* a's batch: job-1 twice (its cache says q1), and an unknown id */
    l[0].token = tb.lease_token;
    l[1] = l[0];
    l[2].tenant = "acme";
    l[2].task_id = "nosuch";
    l[2].token = 1;
    memset(d, 0, sizeof d);
    d[0].data = "first";
    d[0].data_len = 5;
    d[1].data = "second";
    d[1].data_len = 6;
    hget0 = px_get(&px, &px.n_hget);
    CHECK_INT(pers_complete_batch(a, l, d, 3, out), PERS_OK);
    CHECK_INT(out[0], PERS_OK);
    CHECK_INT(out[1], PERS_ERR_ALREADY_COMPLETED); /* S20: items in order */
    CHECK_INT(out[2], PERS_ERR_NOT_FOUND);
    CHECK_INT(px_get(&px, &px.n_hget) - hget0, 2); /* job-1 once for both items, nosuch */
    CHECK_INT(pers_get_result(b, "acme", "job-1", &res), PERS_OK);
    CHECK_STR((const char *)res.data, "first");
    CHECK_STR(res.queue, "q2");
    pers_task_result_free(b, &res);
    pers_task_free(a, &ta);
    pers_task_free(b, &tb);
    pers_destroy(a);
    pers_destroy(b);
    px_stop(&px);
    plg_registry_destroy(reg);
}

TEST(noscript_items_are_resent_as_eval)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s;
    batch bt;
    redisReply *r;
    long long eval0;
    size_t i;
    clock.now = T0;
    s = open_on(reg, server.port, "noscript", &clock);
    if (s == NULL || !make_batch(s, &bt)) {
        CHECK(0);
        pers_destroy(s);
        plg_registry_destroy(reg);
        return;
    }
    r = cmd("SCRIPT FLUSH");
    CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    if (r != NULL)
        freeReplyObject(r);
    eval0 = calls_of("eval");
    CHECK_INT(pers_complete_batch(s, bt.lease, bt.done, N, bt.res), PERS_OK);
    for (i = 0; i < N; i++)
        CHECK_INT(bt.res[i], PERS_OK);
    CHECK_INT(calls_of("eval") - eval0, N);
    free_batch(s, &bt);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* The connection dies after the first 3 items were answered, and the reconnection fails too:
   S20's partial success. Items 0..2 read PERS_OK and are completed; the others read the
   connection's failure, which the call returns, and are untouched (the server never got
   them). */
TEST(cut_midway_without_reconnect_keeps_the_answered_items)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s, *check;
    proxy px;
    batch bt;
    char got[16];
    size_t i;
    pers_result rc;
    long evalsha0;
    clock.now = T0;
    if (px_start(&px) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    s = open_on(reg, px.port, "cut1", &clock);
    check = open_on(reg, server.port, "cut1", &clock);
    if (s == NULL || check == NULL || !make_batch(s, &bt)) {
        CHECK(0);
        pers_destroy(s);
        pers_destroy(check);
        px_stop(&px);
        plg_registry_destroy(reg);
        return;
    }
    evalsha0 = px_get(&px, &px.n_evalsha);
    px_arm(&px, 3, 3, 3, 1);
    rc = pers_complete_batch(s, bt.lease, bt.done, N, bt.res);
    CHECK(px_was_cut(&px));
    CHECK(px_get(&px, &px.refused) >= 1); /* the resend was tried, and refused */
    CHECK_INT(rc, PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(pers_errmsg(s), "3 of 6 items had their outcome");
    for (i = 0; i < N; i++) {
        CHECK_INT(bt.res[i], i < 3 ? PERS_OK : PERS_ERR_UNAVAILABLE);
        CHECK_INT(state_of(check, &bt, i, got, sizeof got),
                  i < 3 ? PERS_STATE_COMPLETED : PERS_STATE_LEASED);
        CHECK_STR(got, i < 3 ? bt.data[i] : "");
    }
    CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, 3); /* the server got 3 */
    /* healed: the worker sends its batch again; the first three are done already (S5c) */
    px_heal(&px);
    {
        int ok = 0, tries;
        for (tries = 0; tries < 50 && !ok; tries++) { /* the handle's backoff is 10..20 ms */
            rc = pers_complete_batch(s, bt.lease, bt.done, N, bt.res);
            ok = rc == PERS_OK;
            if (!ok)
                rh_sleep_ms(10);
        }
    }
    CHECK_INT(rc, PERS_OK);
    for (i = 0; i < N; i++) {
        CHECK_INT(bt.res[i], i < 3 ? PERS_ERR_ALREADY_COMPLETED : PERS_OK);
        CHECK_INT(state_of(check, &bt, i, got, sizeof got), PERS_STATE_COMPLETED);
        CHECK_STR(got, bt.data[i]);
    }
    free_batch(s, &bt);
    pers_destroy(s);
    pers_destroy(check);
    px_stop(&px);
    plg_registry_destroy(reg);
}

/* The same cut, but the reconnection works: only the three unanswered items are resent. */
TEST(cut_midway_resends_only_the_unanswered_items)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s, *check;
    proxy px;
    batch bt;
    char got[16];
    size_t i;
    long evalsha0, accepted0;
    clock.now = T0;
    if (px_start(&px) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    s = open_on(reg, px.port, "cut2", &clock);
    check = open_on(reg, server.port, "cut2", &clock);
    if (s == NULL || check == NULL || !make_batch(s, &bt)) {
        CHECK(0);
        pers_destroy(s);
        pers_destroy(check);
        px_stop(&px);
        plg_registry_destroy(reg);
        return;
    }
    evalsha0 = px_get(&px, &px.n_evalsha);
    accepted0 = px_get(&px, &px.accepted);
    px_arm(&px, 3, 3, 3, 0);
    CHECK_INT(pers_complete_batch(s, bt.lease, bt.done, N, bt.res), PERS_OK);
    CHECK(px_was_cut(&px));
    CHECK_INT(px_get(&px, &px.accepted) - accepted0, 1);
    CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, N); /* each item ran once */
    for (i = 0; i < N; i++) {
        CHECK_INT(bt.res[i], PERS_OK);
        CHECK_INT(state_of(check, &bt, i, got, sizeof got), PERS_STATE_COMPLETED);
        CHECK_STR(got, bt.data[i]);
    }
    free_batch(s, &bt);
    pers_destroy(s);
    pers_destroy(check);
    px_stop(&px);
    plg_registry_destroy(reg);
}

/* Every item ran on the server, but only two replies came back. With the reconnection the four
   others are resent and their nonces make them report their first outcome (PERS_OK, not
   ALREADY_COMPLETED); without it they read UNAVAILABLE: their outcome is unknown to the
   caller (here they did complete, which a later call shows). */
TEST(replies_lost_after_the_server_ran_every_item)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s, *check;
    proxy px;
    batch bt;
    char got[16];
    size_t i;
    int round;
    long evalsha0;
    clock.now = T0;
    if (px_start(&px) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    for (round = 0; round < 2; round++) {
        const char *prefix = round == 0 ? "lost1" : "lost2";
        pers_result rc;
        s = open_on(reg, px.port, prefix, &clock);
        check = open_on(reg, server.port, prefix, &clock);
        if (s == NULL || check == NULL || !make_batch(s, &bt)) {
            CHECK(0);
            pers_destroy(s);
            pers_destroy(check);
            break;
        }
        evalsha0 = px_get(&px, &px.n_evalsha);
        px_arm(&px, -1, N, 2, round == 1);
        rc = pers_complete_batch(s, bt.lease, bt.done, N, bt.res);
        CHECK(px_was_cut(&px));
        if (round == 0) { /* resent */
            CHECK_INT(rc, PERS_OK);
            CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, N + N - 2);
            for (i = 0; i < N; i++)
                CHECK_INT(bt.res[i], PERS_OK);
        } else { /* not resent */
            CHECK_INT(rc, PERS_ERR_UNAVAILABLE);
            CHECK_CONTAINS(pers_errmsg(s), "outcome is unknown");
            CHECK_INT(px_get(&px, &px.n_evalsha) - evalsha0, N);
            for (i = 0; i < N; i++)
                CHECK_INT(bt.res[i], i < 2 ? PERS_OK : PERS_ERR_UNAVAILABLE);
        }
        for (i = 0; i < N; i++) {
            CHECK_INT(state_of(check, &bt, i, got, sizeof got), PERS_STATE_COMPLETED);
            CHECK_STR(got, bt.data[i]);
        }
        px_heal(&px);
        if (round == 1) { /* asking again shows what happened: each is done (S5c) */
            int ok = 0, tries;
            for (tries = 0; tries < 50 && !ok; tries++) {
                rc = pers_complete_batch(s, bt.lease, NULL, N, bt.res);
                ok = rc == PERS_OK;
                if (!ok)
                    rh_sleep_ms(10);
            }
            CHECK_INT(rc, PERS_OK);
            for (i = 0; i < N; i++)
                CHECK_INT(bt.res[i], PERS_ERR_ALREADY_COMPLETED);
        }
        free_batch(s, &bt);
        pers_destroy(s);
        pers_destroy(check);
    }
    px_stop(&px);
    plg_registry_destroy(reg);
}

int main(void)
{
    int ci_fail = 0;
    if (!rh_require_server(&ci_fail)) {
        if (ci_fail)
            test_failed_count++;
        return test_summary();
    }
    if (rh_start(&server, 0) != 0) {
        printf("FAIL could not start redis-server\n");
        test_failed_count++;
        return test_summary();
    }
    RUN(one_script_per_item_across_tenants_and_queues);
    RUN(a_stale_cache_entry_is_looked_up_again_and_repeats_stay_in_order);
    RUN(noscript_items_are_resent_as_eval);
    RUN(cut_midway_without_reconnect_keeps_the_answered_items);
    RUN(cut_midway_resends_only_the_unanswered_items);
    RUN(replies_lost_after_the_server_ran_every_item);
    rh_stop(&server);
    return test_summary();
}
