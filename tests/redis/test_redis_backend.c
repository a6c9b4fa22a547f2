/* Unit tests of backends/redis.h against a real redis-server (tests/redis/redis_harness.h starts
   one on a free loopback port; no mocks), then the persistence contract suite.

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/redis/test_redis_backend.c -o /tmp/redis_test \
         -pthread -lm -lhiredis && /tmp/redis_test
   The threaded cases are meant to be run under ThreadSanitizer too (clang -fsanitize=thread).
   Stores use a fake clock (clock "store") unless a case is about the server's clock; the only
   waits are for a restarted server and for command timeouts, each bounded. */
#define _XOPEN_SOURCE 700
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#define PERSISTENCE_REDIS_IMPLEMENTATION
#define PERSISTENCE_CONTRACT_IMPLEMENTATION
#include "backends/redis.h"
#include "tests/contract/persistence_contract.h"
#include "tests/redis/redis_harness.h"
#include "tests/test.h"

#include <pthread.h>

/* ---------------------------------------------------------------------------------------------
   Fixtures
   ------------------------------------------------------------------------------------------- */

static redis_harness server; /* shared by the cases that do not stop their server */

typedef struct fake_clock {
    int64_t now;
} fake_clock;

static int64_t fake_now(void *user)
{
    return __atomic_load_n(&((fake_clock *)user)->now, __ATOMIC_SEQ_CST);
}

#define T0 INT64_C(1700000000000)

/* Everything the logger received, to prove that no line carries a secret. */
typedef struct log_sink {
    pthread_mutex_t lock;
    char text[16384];
    int warnings;
} log_sink;

static void sink_log(void *user, plg_log_level level, const char *message)
{
    log_sink *s = (log_sink *)user;
    size_t used;
    pthread_mutex_lock(&s->lock);
    used = strlen(s->text);
    if (level == PLG_LOG_WARN)
        s->warnings++;
    if (used + strlen(message) + 2 < sizeof s->text) {
        memcpy(s->text + used, message, strlen(message));
        s->text[used + strlen(message)] = '\n';
        s->text[used + strlen(message) + 1] = '\0';
    }
    pthread_mutex_unlock(&s->lock);
}

static void sink_init(log_sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
}

static void sink_done(log_sink *s)
{
    pthread_mutex_destroy(&s->lock);
}

static plg_registry *registry(void)
{
    plg_registry *reg = NULL;
    if (plg_registry_create(NULL, &reg) != PLG_OK || pers_redis_register(reg) != PERS_OK)
        printf("    registry setup failed\n");
    return reg;
}

/* Opens "redis" through a registry with a JSON configuration (a %d is the server's port) on a
   fake clock. why receives the open message. */
static pers_store *open_cfg(plg_registry *reg, const redis_harness *h, const char *json_fmt,
                            fake_clock *clock, log_sink *sink, char *why, size_t why_size,
                            pers_result *rc_out)
{
    pers_store_desc desc;
    pers_store *s = NULL;
    char json[1024];
    pers_result rc;
    snprintf(json, sizeof json, json_fmt, h->port);
    memset(&desc, 0, sizeof desc);
    if (clock != NULL) {
        clock->now = T0;
        desc.clock.now_ms = fake_now;
        desc.clock.user = clock;
    }
    if (sink != NULL) {
        desc.logger.log_fn = sink_log;
        desc.logger.user = sink;
    }
    desc.open_message = why;
    desc.open_message_size = why_size;
    rc = pers_open(reg, "redis", json, &desc, &s);
    if (rc_out != NULL)
        *rc_out = rc;
    return s;
}

/* The usual store of these tests: the shared server, a fresh key prefix, clock "store". */
static pers_store *open_std(plg_registry *reg, fake_clock *clock, const char *extra)
{
    static int n;
    char fmt[512], why[512];
    pers_result rc;
    pers_store *s;
    if (extra != NULL && strstr(extra, "key_prefix") != NULL)
        snprintf(fmt, sizeof fmt,
                 "{\"addr\":\"localhost:%%d\",\"password\":\"\",\"clock\":\"store\",%s}",
                 extra);
    else
        snprintf(fmt, sizeof fmt,
                 "{\"addr\":\"localhost:%%d\",\"password\":\"\",\"key_prefix\":\"u%d\","
                 "\"clock\":\"store\"%s%s}",
                 ++n, extra != NULL ? "," : "", extra != NULL ? extra : "");
    s = open_cfg(reg, &server, fmt, clock, NULL, why, sizeof why, &rc);
    if (s == NULL)
        printf("    open: %s (%s)\n", why, pers_result_string(rc));
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

static pers_result enq(pers_store *s, const char *tenant, const char *queue, const char *payload,
                       char *id_out)
{
    pers_enqueue_req r = make_req(tenant, queue, payload);
    pers_enqueue_res res;
    pers_result rc = pers_enqueue(s, &r, &res);
    if (id_out != NULL)
        strcpy(id_out, rc == PERS_OK ? res.task_id : "");
    return rc;
}

/* Claims at most one task of one queue: 1, 0, or -1 (the code in *rc). */
static int claim1(pers_store *s, const char *tenant, const char *queue, pers_task *task,
                  pers_result *rc_out)
{
    const char *queues[1];
    pers_claim_req c;
    pers_claim_res res;
    pers_result rc;
    queues[0] = queue;
    memset(&c, 0, sizeof c);
    c.tenant = tenant;
    c.queues = queues;
    c.queue_count = 1;
    c.worker_id = "w1";
    c.lease_ms = 30000;
    c.max_tasks = 1;
    rc = pers_claim(s, &c, task, &res);
    if (rc_out != NULL)
        *rc_out = rc;
    return rc == PERS_OK ? (int)res.count : -1;
}

static pers_lease lease_of(const pers_task *t)
{
    pers_lease l;
    l.tenant = t->tenant;
    l.task_id = t->id;
    l.token = t->lease_token;
    return l;
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

static long long cmd_int(const char *fmt, const char *arg)
{
    redisReply *r = cmd(fmt, arg);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return v;
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

/* Hash slot of a key by the Redis Cluster rules: CRC16/XMODEM of the first non-empty {tag}. */
static unsigned slot_of(const char *key)
{
    const char *open = strchr(key, '{'), *close;
    size_t len = strlen(key), i;
    unsigned crc = 0;
    int bit;
    if (open != NULL && (close = strchr(open + 1, '}')) != NULL && close > open + 1) {
        key = open + 1;
        len = (size_t)(close - open - 1);
    }
    for (i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)key[i] << 8;
        for (bit = 0; bit < 8; bit++)
            crc = crc & 0x8000u ? ((crc << 1) ^ 0x1021u) & 0xffffu : (crc << 1) & 0xffffu;
    }
    return crc % 16384u;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* ---------------------------------------------------------------------------------------------
   Configuration
   ------------------------------------------------------------------------------------------- */

TEST(config_addr_and_empty_password_as_operators_write_them)
{
    plg_registry *reg = registry();
    fake_clock clock;
    char why[512];
    pers_result rc;
    pers_store *s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"password\":\"\"}", &clock,
                             NULL, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    CHECK_STR(why, "");
    CHECK(s != NULL);
    if (s != NULL) {
        CHECK_INT(enq(s, "acme", "email", "hello", NULL), PERS_OK);
        CHECK_INT(pers_health(s), PERS_OK);
        CHECK_STR(pers_store_provider(s), "redis");
    }
    pers_destroy(s);
    s = open_cfg(reg, &server, "{\"addr\":\"127.0.0.1:%d\"}", &clock, NULL, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    pers_destroy(s);
    plg_registry_destroy(reg);
    {
        redisReply *r = cmd("FLUSHALL");
        freeReplyObject(r);
    }
}

TEST(config_parsers)
{
    pers_redis_endpoint ep;
    char why[256];
    memset(&ep, 0, sizeof ep);
    CHECK_INT(pers_redis_parse_addr("localhost:6379", &ep, why, sizeof why), 0);
    CHECK_STR(ep.host, "localhost");
    CHECK_INT(ep.port, 6379);
    CHECK_INT(pers_redis_parse_addr("10.1.2.3", &ep, why, sizeof why), 0);
    CHECK_INT(ep.port, 6379);
    CHECK_INT(pers_redis_parse_addr("[::1]:7000", &ep, why, sizeof why), 0);
    CHECK_STR(ep.host, "::1");
    CHECK_INT(ep.port, 7000);
    CHECK_INT(pers_redis_parse_addr("/run/redis.sock", &ep, why, sizeof why), 0);
    CHECK_INT(ep.port, 0);
    CHECK_INT(pers_redis_parse_addr("localhost:0", &ep, why, sizeof why), -1);
    CHECK_INT(pers_redis_parse_addr("localhost:65536", &ep, why, sizeof why), -1);
    CHECK_INT(pers_redis_parse_addr("localhost:63x", &ep, why, sizeof why), -1);
    CHECK_INT(pers_redis_parse_addr(":6379", &ep, why, sizeof why), -1);
    CHECK_INT(pers_redis_parse_addr("::1:6379", &ep, why, sizeof why), -1);
    CHECK_INT(pers_redis_parse_addr("", &ep, why, sizeof why), -1);

    CHECK_INT(pers_redis_parse_url("redis://alice:p%40ss:w@rd@cache.local:6380/3", &ep, why,
                                   sizeof why),
              0);
    CHECK_STR(ep.username, "alice");
    CHECK_STR(ep.password, "p@ss:w@rd");
    CHECK_STR(ep.host, "cache.local");
    CHECK_INT(ep.port, 6380);
    CHECK_INT(ep.db, 3);
    CHECK_INT(pers_redis_parse_url("redis://:only-pass@h", &ep, why, sizeof why), 0);
    CHECK_STR(ep.username, "");
    CHECK_STR(ep.password, "only-pass");
    CHECK_INT(ep.port, 6379);
    CHECK_INT(ep.db, 0);
    CHECK_INT(pers_redis_parse_url("redis://h:1/", &ep, why, sizeof why), 0);
    CHECK_INT(pers_redis_parse_url("rediss://u:secret-pw@h:1/0", &ep, why, sizeof why), -1);
    CHECK_CONTAINS(why, "TLS");
    CHECK_NOT_CONTAINS(why, "secret-pw");
    CHECK_INT(pers_redis_parse_url("redis://u:secret-pw@h:99999/0", &ep, why, sizeof why), -1);
    CHECK_NOT_CONTAINS(why, "secret-pw");
    CHECK_STR(ep.password, "");
    CHECK_INT(pers_redis_parse_url("redis://u:secret-pw@h:1/x", &ep, why, sizeof why), -1);
    CHECK_NOT_CONTAINS(why, "secret-pw");
    CHECK_INT(pers_redis_parse_url("redis://u:bad%zzescape@h:1/0", &ep, why, sizeof why), -1);
    CHECK_NOT_CONTAINS(why, "escape");
    CHECK_INT(pers_redis_parse_url("http://h:1", &ep, why, sizeof why), -1);
}

TEST(config_errors_name_the_key)
{
    plg_registry *reg = registry();
    char why[512];
    pers_result rc;
    pers_store *s;
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"pool_size\":0}", NULL, NULL, why,
                 sizeof why, &rc);
    CHECK(s == NULL);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "pool_size");
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"key_prefix\":\"a{b}\"}", NULL, NULL,
                 why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "key_prefix");
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"clock\":\"sundial\"}", NULL, NULL,
                 why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "clock");
    {
        /* a typo is an unknown key: an error with a strict registry */
        plg_registry *strict = NULL;
        plg_registry_desc rd;
        memset(&rd, 0, sizeof rd);
        rd.strict_config = 1;
        CHECK_INT(plg_registry_create(&rd, &strict), PLG_OK);
        CHECK_INT(pers_redis_register(strict), PERS_OK);
        s = open_cfg(strict, &server, "{\"adr\":\"localhost:%d\"}", NULL, NULL, why, sizeof why,
                     &rc);
        CHECK_INT(rc, PERS_ERR_CONFIG);
        CHECK_CONTAINS(why, "adr");
        plg_registry_destroy(strict);
    }
    s = open_cfg(reg, &server,
                 "{\"url\":\"redis://127.0.0.1:%d/0\",\"addr\":\"localhost:6379\"}", NULL, NULL,
                 why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "addr");
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"command_timeout\":\"soon\"}", NULL,
                 NULL, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "command_timeout");
    CHECK(s == NULL);
    plg_registry_destroy(reg);
}

TEST(config_url_username_password_db_and_secrecy)
{
    redis_harness h;
    plg_registry *reg = registry();
    log_sink sink;
    fake_clock clock;
    char why[512], fmt[256];
    pers_result rc;
    pers_store *s;
    redisContext *c;
    redisReply *r;
    memset(&h, 0, sizeof h);
    sink_init(&sink);
    h.extra[0] = "--requirepass";
    h.extra[1] = "Sup3r-Secret-Pw";
    if (rh_start(&h, 0) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        sink_done(&sink);
        return;
    }
    r = rh_command(&h, "ACL SETUSER alice on >Al1ce-Secret-Pw ~* &* +@all");
    CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    if (r != NULL)
        freeReplyObject(r);

    /* password as a key, default user */
    s = open_cfg(reg, &h, "{\"addr\":\"localhost:%d\",\"password\":\"Sup3r-Secret-Pw\"}", &clock,
                 &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    CHECK_INT(enq(s, "acme", "q", "x", NULL), PERS_OK);
    pers_destroy(s);
    /* username + password + db as keys */
    s = open_cfg(reg, &h,
                 "{\"addr\":\"localhost:%d\",\"username\":\"alice\",\"password\":\"Al1ce-Secret-Pw\","
                 "\"db\":5,\"key_prefix\":\"dbtest\"}",
                 &clock, &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    CHECK_INT(enq(s, "acme", "q", "x", NULL), PERS_OK);
    pers_destroy(s);
    c = rh_connect(&h);
    CHECK(c != NULL);
    if (c != NULL) {
        r = (redisReply *)redisCommand(c, "AUTH Sup3r-Secret-Pw");
        freeReplyObject(r);
        r = (redisReply *)redisCommand(c, "SELECT 5");
        freeReplyObject(r);
        r = (redisReply *)redisCommand(c, "EXISTS dbtest:{acme|q}:tasks");
        CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
        freeReplyObject(r);
        r = (redisReply *)redisCommand(c, "SELECT 0");
        freeReplyObject(r);
        r = (redisReply *)redisCommand(c, "EXISTS dbtest:{acme|q}:tasks");
        CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
        freeReplyObject(r);
        redisFree(c);
    }
    /* the same as a URL (with a %-encoded character) */
    snprintf(fmt, sizeof fmt, "%s",
             "{\"url\":\"redis://alice:Al1ce-Secret-Pw@127.0.0.1:%d/5\",\"key_prefix\":\"dbtest\"}");
    s = open_cfg(reg, &h, fmt, &clock, &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    if (s != NULL) {
        pers_stats st;
        CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
        CHECK_INT(st.ready, 1); /* the task enqueued in db 5 above */
    }
    pers_destroy(s);

    /* wrong passwords: CONFIG at open, the password in no message and no log line */
    s = open_cfg(reg, &h, "{\"addr\":\"localhost:%d\",\"password\":\"Wr0ng-Secret-Pw\"}", &clock,
                 &sink, why, sizeof why, &rc);
    CHECK(s == NULL);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "AUTH");
    CHECK_NOT_CONTAINS(why, "Wr0ng-Secret-Pw");
    s = open_cfg(reg, &h, "{\"url\":\"redis://alice:Wr0ng-Secret-Pw@127.0.0.1:%d/0\"}", &clock,
                 &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_NOT_CONTAINS(why, "Wr0ng-Secret-Pw");
    s = open_cfg(reg, &h, "{\"url\":\"redis://alice:Wr0ng-Secret-Pw@127.0.0.1:%d/zz\"}", &clock,
                 &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_ERR_CONFIG);
    CHECK_NOT_CONTAINS(why, "Wr0ng-Secret-Pw");
    /* no password at all against a server that wants one: an operation error, not a crash */
    s = open_cfg(reg, &h, "{\"addr\":\"localhost:%d\"}", &clock, &sink, why, sizeof why, &rc);
    CHECK(s == NULL);
    CHECK(rc != PERS_OK);
    CHECK_CONTAINS(why, "NOAUTH");
    pers_destroy(s);
    /* the server going away while a password is configured: messages and logs stay clean */
    s = open_cfg(reg, &h, "{\"addr\":\"localhost:%d\",\"password\":\"Sup3r-Secret-Pw\"}", &clock,
                 &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    rh_kill(&h);
    CHECK(enq(s, "acme", "q", "x", NULL) != PERS_OK);
    CHECK_NOT_CONTAINS(pers_errmsg(s), "Sup3r-Secret-Pw");
    pers_destroy(s);
    CHECK_NOT_CONTAINS(sink.text, "Sup3r-Secret-Pw");
    CHECK_NOT_CONTAINS(sink.text, "Al1ce-Secret-Pw");
    CHECK_NOT_CONTAINS(sink.text, "Wr0ng-Secret-Pw");
    CHECK_CONTAINS(sink.text, "connected to localhost:"); /* the log does say where */
    rh_stop(&h);
    plg_registry_destroy(reg);
    sink_done(&sink);
}

TEST(open_fails_cleanly_when_nothing_listens)
{
    plg_registry *reg = registry();
    redis_harness nobody;
    char why[512];
    pers_result rc;
    long long t0;
    pers_store *s;
    memset(&nobody, 0, sizeof nobody);
    nobody.port = rh_free_port();
    t0 = rh_now_ms();
    s = open_cfg(reg, &nobody, "{\"addr\":\"127.0.0.1:%d\",\"connect_timeout\":\"300ms\"}", NULL,
                 NULL, why, sizeof why, &rc);
    CHECK(s == NULL);
    CHECK_INT(rc, PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(why, "Connection refused"); /* hiredis's message */
    CHECK(rh_now_ms() - t0 < 2000);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Key layout
   ------------------------------------------------------------------------------------------- */

TEST(key_layout_one_hash_tag_per_tenant_and_queue)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, "\"key_prefix\":\"kl\"");
    redisReply *r;
    size_t i;
    pers_task t;
    const char *queues[3];
    pers_subscribe_req sub;
    /* names that would collide if joined naively: (a, b-c) and (a-b, c), (a.b, c) ... */
    static const char *const pairs[][2] = {
        { "a", "b-c" }, { "a-b", "c" }, { "a.b", "c" }, { "a", "b.c" }, { "A", "b" }, { "a", "B" },
    };
    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char id[PERS_ID_MAX + 1];
        CHECK_INT(enq(s, pairs[i][0], pairs[i][1], pairs[i][0], id), PERS_OK);
    }
    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        pers_stats st;
        CHECK_INT(pers_queue_stats(s, pairs[i][0], pairs[i][1], &st), PERS_OK);
        CHECK_INT(st.ready, 1); /* each pair sees exactly its own task */
        CHECK_INT(claim1(s, pairs[i][0], pairs[i][1], &t, NULL), 1);
        CHECK_STR((const char *)t.payload, pairs[i][0]);
        {
            pers_lease l = lease_of(&t);
            CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
        }
        pers_task_free(s, &t);
    }
    memset(&sub, 0, sizeof sub);
    queues[0] = "b-c";
    queues[1] = "c";
    sub.tenant = "a";
    sub.worker_id = "w";
    sub.queues = queues;
    sub.queue_count = 2;
    sub.callback = "http://127.0.0.1:1/push";
    sub.ttl_ms = 1000;
    CHECK_INT(pers_subscribe(s, &sub, NULL), PERS_OK);

    r = cmd("KEYS kl:*");
    CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 10);
    for (i = 0; r != NULL && i < r->elements; i++) {
        const char *k = r->element[i]->str;
        if (strcmp(k, "kl:tenants") == 0)
            continue; /* the one global index */
        if (count_char(k, '{') != 1 || count_char(k, '}') != 1) {
            CHECK_STR(k, "a key with exactly one hash tag");
            continue;
        }
        if (strchr(k, '|') != NULL) {
            /* every key of a (tenant, queue) lies in that queue's slot */
            char tag[200], probe[220];
            const char *o = strchr(k, '{'), *c = strchr(k, '}');
            snprintf(tag, sizeof tag, "%.*s", (int)(c - o - 1), o + 1);
            snprintf(probe, sizeof probe, "kl:{%s}:ready", tag);
            CHECK_INT(slot_of(k), slot_of(probe));
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    /* every key a queue script gets shares one slot; different pairs are different tags */
    {
        char k1[200], k2[200];
        const char *const *suffixes = pers_redis_queue_key_suffixes();
        for (i = 0; suffixes[i] != NULL; i++) {
            pers_redis_key(k1, sizeof k1, "kl", "acme", "email", suffixes[i]);
            pers_redis_key(k2, sizeof k2, "kl", "acme", "email", "m");
            CHECK_INT(slot_of(k1), slot_of(k2));
        }
        CHECK_INT(i, PERS_REDIS_QUEUE_KEY_COUNT);
        pers_redis_key(k1, sizeof k1, "kl", "a", "b-c", "ready");
        pers_redis_key(k2, sizeof k2, "kl", "a-b", "c", "ready");
        CHECK(strcmp(k1, k2) != 0);
        CHECK_STR(k1, "kl:{a|b-c}:ready");
        pers_redis_key(k1, sizeof k1, "kl", "a", NULL, "ids");
        CHECK_STR(k1, "kl:{a}:ids");
    }
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(hostile_names_never_reach_a_key)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, NULL);
    pers_enqueue_req r = make_req("a}b", "q", "x");
    pers_enqueue_res res;
    pers_task t;
    pers_detail d;
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_ERR_INVALID_ARGUMENT);
    r = make_req("a", "q|x", "x");
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_ERR_INVALID_ARGUMENT);
    r = make_req("a", "{q}", "x");
    CHECK_INT(pers_enqueue(s, &r, &res), PERS_ERR_INVALID_ARGUMENT);
    /* the backend checks again for direct callers of the vtable */
    {
        void *backend = NULL;
        plg_config *config = NULL;
        size_t n;
        const plg_config_key *schema = pers_redis_config_schema(&n);
        char json[200];
        snprintf(json, sizeof json, "{\"addr\":\"127.0.0.1:%d\",\"key_prefix\":\"direct\"}",
                 server.port);
        CHECK_INT(plg_config_parse_json(NULL, schema, n, json, 0, &config), PLG_OK);
        memset(&d, 0, sizeof d);
        CHECK_INT(pers_redis_vtable()->open_store(config, NULL, &backend, &d), PERS_OK);
        if (backend != NULL) {
            r = make_req("a}b", "q", "x");
            CHECK_INT(pers_redis_vtable()->enqueue(backend, &r, &res, &d), PERS_ERR_INVALID_ARGUMENT);
            r = make_req("a", "q", "x");
            r.task_id = "bad id";
            CHECK_INT(pers_redis_vtable()->enqueue(backend, &r, &res, &d), PERS_ERR_INVALID_ARGUMENT);
            {
                pers_enqueue_req mixed[2];
                pers_enqueue_res two[2];
                mixed[0] = make_req("a", "q", "x");
                mixed[1] = make_req("a", "other", "y");
                CHECK_INT(pers_redis_vtable()->enqueue_batch(backend, mixed, 2, two, &d),
                          PERS_ERR_INVALID_ARGUMENT); /* S19 holds without the store too */
                CHECK_CONTAINS(d.text, "S19");
            }
            r.task_id = NULL; /* the backend generates one */
            CHECK_INT(pers_redis_vtable()->enqueue(backend, &r, &res, &d), PERS_OK);
            CHECK_INT(strlen(res.task_id), 32);
            CHECK_INT(pers_redis_vtable()->get_task(backend, "a", "x}y", &t, &d),
                      PERS_ERR_INVALID_ARGUMENT);
            pers_redis_vtable()->close_store(backend);
        }
        plg_config_destroy(config);
    }
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Scripts
   ------------------------------------------------------------------------------------------- */

TEST(evalsha_with_eval_fallback_after_script_flush)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, NULL);
    long long eval0, evalsha0;
    pers_task t;
    redisReply *r;
    char text[64];
    CHECK(pers_redis_script_source("claim", text, sizeof text) > 1000);
    CHECK_INT(pers_redis_script_source("nonsense", text, sizeof text), 0);
    CHECK_INT(enq(s, "acme", "q", "one", NULL), PERS_OK);
    eval0 = calls_of("eval");
    evalsha0 = calls_of("evalsha");
    CHECK_INT(enq(s, "acme", "q", "two", NULL), PERS_OK);
    CHECK_INT(calls_of("eval"), eval0);           /* loaded once: EVALSHA only */
    CHECK_INT(calls_of("evalsha"), evalsha0 + 2); /* reserve + enqueue */
    r = cmd("SCRIPT FLUSH");
    CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    CHECK_INT(claim1(s, "acme", "q", &t, NULL), 1); /* NOSCRIPT, then EVAL */
    CHECK_STR((const char *)t.payload, "one");
    CHECK_INT(calls_of("eval"), eval0 + 1);
    {
        pers_lease l = lease_of(&t);
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK); /* the complete script: EVAL too */
        CHECK_INT(calls_of("eval"), eval0 + 2);
    }
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q", &t, NULL), 1); /* EVAL cached it again: EVALSHA */
    CHECK_INT(calls_of("eval"), eval0 + 2);
    pers_task_free(s, &t);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(batches_are_pipelined)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, NULL);
    static pers_enqueue_req reqs[1000];
    static pers_enqueue_res res[1000];
    static char payload[1000][12];
    long long evalsha0, eval0;
    pers_stats st;
    size_t i;
    CHECK_INT(enq(s, "acme", "q1", "warm-up", NULL), PERS_OK); /* tenant known, scripts cached */
    for (i = 0; i < 1000; i++) {
        snprintf(payload[i], sizeof payload[i], "%lu", (unsigned long)i);
        reqs[i] = make_req("acme", "q1", payload[i]);
    }
    evalsha0 = calls_of("evalsha");
    eval0 = calls_of("eval");
    CHECK_INT(pers_enqueue_batch(s, reqs, 1000, res), PERS_OK);
    CHECK_INT(calls_of("evalsha") - evalsha0, 2); /* one reserve, one enqueue: 1000 tasks */
    CHECK_INT(calls_of("eval"), eval0);
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &st), PERS_OK);
    CHECK_INT(st.ready, 1001);
    /* S19: a batch names one tenant and queue; a mixed one is refused before anything runs */
    reqs[1] = make_req("acme", "q2", payload[1]);
    evalsha0 = calls_of("evalsha");
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "S19");
    CHECK_INT(calls_of("evalsha"), evalsha0);
    /* a claim of many tasks is one script */
    {
        static pers_task tasks[500];
        const char *q[1];
        pers_claim_req c;
        pers_claim_res cr;
        q[0] = "q1";
        memset(&c, 0, sizeof c);
        c.tenant = "acme";
        c.queues = q;
        c.queue_count = 1;
        c.worker_id = "w";
        c.lease_ms = 1000;
        c.max_tasks = 500;
        evalsha0 = calls_of("evalsha");
        CHECK_INT(pers_claim(s, &c, tasks, &cr), PERS_OK);
        CHECK_INT(cr.count, 500);
        CHECK_INT(calls_of("evalsha") - evalsha0, 1);
        CHECK_STR((const char *)tasks[0].payload, "warm-up");
        CHECK_STR((const char *)tasks[1].payload, "0");
        CHECK_STR((const char *)tasks[499].payload, "498");
        pers_tasks_free(s, tasks, cr.count);
    }
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(batch_is_all_or_nothing_and_leaves_no_reservation)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, "\"key_prefix\":\"mq\"");
    pers_enqueue_req reqs[3];
    pers_enqueue_res res[3];
    pers_stats st;
    pers_enqueue_req taken = make_req("acme", "other", "x");
    taken.task_id = "taken-id";
    CHECK_INT(pers_enqueue(s, &taken, NULL), PERS_OK);
    reqs[0] = make_req("acme", "q1", "a");
    reqs[1] = make_req("acme", "q1", "b");
    reqs[2] = make_req("acme", "q1", "c");
    reqs[2].task_id = "taken-id"; /* belongs to queue "other": DUPLICATE (S9) */
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_ERR_DUPLICATE);
    CHECK_CONTAINS(pers_errmsg(s), "request 2");
    CHECK_STR(res[0].task_id, ""); /* S19: the results stay empty */
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &st), PERS_OK);
    CHECK_INT(st.ready, 0);
    CHECK_INT(cmd_int("HLEN %s", "mq:{acme}:ids"), 1); /* only taken-id: nothing left reserved */
    /* the same id twice within the batch: the second is the duplicate */
    reqs[1].task_id = "twice";
    reqs[2].task_id = "twice";
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_ERR_DUPLICATE);
    CHECK_CONTAINS(pers_errmsg(s), "request 2");
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &st), PERS_OK);
    CHECK_INT(st.ready, 0);
    CHECK_INT(cmd_int("HLEN %s", "mq:{acme}:ids"), 1);
    reqs[2].task_id = "fresh-id";
    CHECK_INT(pers_enqueue_batch(s, reqs, 3, res), PERS_OK);
    CHECK_STR(res[1].task_id, "twice");
    CHECK_STR(res[2].task_id, "fresh-id");
    CHECK_INT(pers_queue_stats(s, "acme", "q1", &st), PERS_OK);
    CHECK_INT(st.ready, 3);
    CHECK_INT(cmd_int("HLEN %s", "mq:{acme}:ids"), 4);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(task_directory_follows_cleanup_and_ids_move_between_queues)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, "\"key_prefix\":\"dir\"");
    pers_enqueue_req r = make_req("acme", "q1", "x");
    pers_cleanup_req cl;
    pers_task t;
    size_t removed = 0;
    r.task_id = "job-1";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(cmd_int("HLEN %s", "dir:{acme}:ids"), 1);
    CHECK_INT(claim1(s, "acme", "q1", &t, NULL), 1);
    {
        pers_lease l = lease_of(&t);
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    }
    pers_task_free(s, &t);
    memset(&cl, 0, sizeof cl);
    cl.tenant = "acme";
    CHECK_INT(pers_cleanup_tasks(s, &cl, &removed), PERS_OK);
    CHECK_INT(removed, 1);
    CHECK_INT(cmd_int("HLEN %s", "dir:{acme}:ids"), 0);  /* the directory entry went too */
    CHECK_INT(cmd_int("SCARD %s", "dir:{acme|q1}:gc"), 0); /* and its gc record */
    /* the id is free again, now in another queue (the handle's cache still says q1) */
    r.queue = "q2";
    r.payload = "y";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(pers_get_task(s, "acme", "job-1", &t), PERS_OK);
    CHECK_STR(t.queue, "q2");
    pers_task_free(s, &t);
    CHECK_INT(claim1(s, "acme", "q2", &t, NULL), 1);
    {
        pers_lease l = lease_of(&t);
        CHECK_INT(pers_extend_lease(s, &l, 5000, NULL), PERS_OK);
        CHECK_INT(pers_complete(s, &l, NULL), PERS_OK);
    }
    pers_task_free(s, &t);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Time
   ------------------------------------------------------------------------------------------- */

TEST(clock_modes)
{
    plg_registry *reg = registry();
    fake_clock clock;
    char why[512], id[PERS_ID_MAX + 1];
    pers_result rc;
    pers_task t;
    pers_store *s;
    long long wall = rh_now_ms();
    /* auto with an injected clock: the store's time */
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"key_prefix\":\"ck1\"}", &clock, NULL,
                 why, sizeof why, &rc);
    CHECK_INT(enq(s, "acme", "q", "x", id), PERS_OK);
    CHECK_INT(pers_get_task(s, "acme", id, &t), PERS_OK);
    CHECK_INT(t.created_ms, T0);
    pers_task_free(s, &t);
    pers_destroy(s);
    /* auto without one: the server's TIME (this machine's clock here) */
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"key_prefix\":\"ck2\"}", NULL, NULL,
                 why, sizeof why, &rc);
    CHECK_INT(enq(s, "acme", "q", "x", id), PERS_OK);
    CHECK_INT(pers_get_task(s, "acme", id, &t), PERS_OK);
    CHECK(t.created_ms >= wall - 5000 && t.created_ms <= wall + 5000);
    pers_task_free(s, &t);
    pers_destroy(s);
    /* "server" even with an injected clock: the fake time is ignored */
    s = open_cfg(reg, &server,
                 "{\"addr\":\"localhost:%d\",\"key_prefix\":\"ck3\",\"clock\":\"server\"}", &clock,
                 NULL, why, sizeof why, &rc);
    {
        pers_enqueue_req r = make_req("acme", "q", "later");
        const char *q[1];
        pers_claim_req c;
        pers_claim_res cr;
        r.delay_ms = 60000;
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
        q[0] = "q";
        memset(&c, 0, sizeof c);
        c.tenant = "acme";
        c.queues = q;
        c.queue_count = 1;
        c.worker_id = "w";
        c.lease_ms = 1000;
        c.max_tasks = 1;
        CHECK_INT(pers_claim(s, &c, &t, &cr), PERS_OK);
        CHECK_INT(cr.count, 0);
        CHECK(cr.next_due_ms >= wall + 55000 && cr.next_due_ms <= wall + 65000);
    }
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Health, errors, timeouts
   ------------------------------------------------------------------------------------------- */

TEST(health_ping_and_eviction_policy_warning)
{
    plg_registry *reg = registry();
    log_sink sink;
    fake_clock clock;
    char why[512];
    pers_result rc;
    pers_store *s, *strict;
    redisReply *r;
    sink_init(&sink);
    s = open_cfg(reg, &server, "{\"addr\":\"localhost:%d\",\"key_prefix\":\"hp\"}", &clock, &sink,
                 why, sizeof why, &rc);
    strict = open_cfg(reg, &server,
                      "{\"addr\":\"localhost:%d\",\"key_prefix\":\"hp\",\"eviction_is_error\":true}",
                      &clock, &sink, why, sizeof why, &rc);
    CHECK_INT(pers_health(s), PERS_OK);
    CHECK_INT(pers_health(strict), PERS_OK);
    CHECK_INT(sink.warnings, 0);
    r = cmd("CONFIG SET maxmemory-policy allkeys-lru");
    freeReplyObject(r);
    CHECK_INT(pers_health(s), PERS_OK); /* it can serve: a warning, not a failure */
    CHECK_INT(sink.warnings, 1);
    CHECK_CONTAINS(sink.text, "maxmemory-policy is allkeys-lru");
    CHECK_CONTAINS(sink.text, "degraded");
    CHECK_INT(pers_health(strict), PERS_ERR_UNAVAILABLE);
    CHECK_CONTAINS(pers_errmsg(strict), "maxmemory-policy is allkeys-lru");
    r = cmd("CONFIG SET maxmemory-policy volatile-lru"); /* no key of ours has a TTL */
    freeReplyObject(r);
    CHECK_INT(pers_health(strict), PERS_OK);
    r = cmd("CONFIG SET maxmemory-policy noeviction");
    freeReplyObject(r);
    CHECK_INT(pers_health(strict), PERS_OK);
    pers_destroy(s);
    pers_destroy(strict);
    plg_registry_destroy(reg);
    sink_done(&sink);
}

TEST(out_of_memory_is_limit)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, NULL);
    redisReply *r;
    CHECK_INT(enq(s, "acme", "q", "x", NULL), PERS_OK);
    r = cmd("CONFIG SET maxmemory 1");
    freeReplyObject(r);
    CHECK_INT(enq(s, "acme", "q", "y", NULL), PERS_ERR_LIMIT);
    CHECK_CONTAINS(pers_errmsg(s), "OOM");
    r = cmd("CONFIG SET maxmemory 0");
    freeReplyObject(r);
    CHECK_INT(enq(s, "acme", "q", "y", NULL), PERS_OK);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(command_timeout_is_timeout_and_claim_is_not_resent)
{
    redis_harness h;
    plg_registry *reg = registry();
    fake_clock clock;
    char why[512];
    pers_result rc;
    pers_store *s;
    pers_task t;
    long long t0, took;
    memset(&h, 0, sizeof h);
    if (rh_start(&h, 0) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    s = open_cfg(reg, &h,
                 "{\"addr\":\"localhost:%d\",\"command_timeout\":\"300ms\",\"clock\":\"store\"}",
                 &clock, NULL, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    CHECK_INT(enq(s, "acme", "q", "x", NULL), PERS_OK);
    kill(h.pid, SIGSTOP); /* the server stops answering, the connections stay open */
    t0 = rh_now_ms();
    CHECK_INT(claim1(s, "acme", "q", &t, &rc), -1);
    took = rh_now_ms() - t0;
    CHECK_INT(rc, PERS_ERR_TIMEOUT);
    CHECK_CONTAINS(pers_errmsg(s), "outcome is unknown");
    CHECK(took >= 250 && took < 550); /* once (a resend would take 600 ms): never resent */
    t0 = rh_now_ms();
    {
        pers_stats st;
        rc = pers_queue_stats(s, "acme", "q", &st); /* idempotent: resent once */
    }
    took = rh_now_ms() - t0;
    CHECK(rc == PERS_ERR_TIMEOUT || rc == PERS_ERR_UNAVAILABLE);
    CHECK(took < 1500);
    kill(h.pid, SIGCONT);
    /* the handle recovers on its own */
    {
        int ok = 0, i;
        for (i = 0; i < 100 && !ok; i++) {
            pers_stats st;
            ok = pers_queue_stats(s, "acme", "q", &st) == PERS_OK;
            if (!ok)
                rh_sleep_ms(20);
        }
        CHECK(ok);
    }
    pers_destroy(s);
    rh_stop(&h);
    plg_registry_destroy(reg);
}

TEST(connect_timeout_bounds_a_stuck_server)
{
    redis_harness h;
    plg_registry *reg = registry();
    char why[512];
    pers_result rc;
    pers_store *s;
    long long t0, took;
    memset(&h, 0, sizeof h);
    if (rh_start(&h, 0) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        return;
    }
    kill(h.pid, SIGSTOP); /* accepts TCP (kernel backlog), never answers the handshake */
    t0 = rh_now_ms();
    s = open_cfg(reg, &h,
                 "{\"addr\":\"localhost:%d\",\"password\":\"pw\",\"connect_timeout\":\"250ms\"}",
                 NULL, NULL, why, sizeof why, &rc);
    took = rh_now_ms() - t0;
    CHECK(s == NULL);
    CHECK(rc == PERS_ERR_UNAVAILABLE || rc == PERS_ERR_TIMEOUT);
    CHECK(took >= 200 && took < 1500);
    CHECK(strlen(why) > 0);
    kill(h.pid, SIGCONT);
    rh_stop(&h);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   The pool: reconnect with backoff, threads
   ------------------------------------------------------------------------------------------- */

TEST(pool_reconnects_with_backoff_after_a_restart)
{
    redis_harness h;
    plg_registry *reg = registry();
    log_sink sink;
    fake_clock clock;
    char why[512], id[PERS_ID_MAX + 1];
    pers_result rc;
    pers_store *s;
    pers_task t;
    long long t0, worst = 0, back;
    int i, fast = 0, calls = 0;
    memset(&h, 0, sizeof h);
    sink_init(&sink);
    if (rh_start(&h, 1) != 0) {
        CHECK(0);
        plg_registry_destroy(reg);
        sink_done(&sink);
        return;
    }
    s = open_cfg(reg, &h,
                 "{\"addr\":\"localhost:%d\",\"pool_size\":4,\"reconnect_backoff\":\"20ms\","
                 "\"reconnect_backoff_max\":\"200ms\",\"clock\":\"store\"}",
                 &clock, &sink, why, sizeof why, &rc);
    CHECK_INT(rc, PERS_OK);
    CHECK_INT(enq(s, "acme", "q", "before", id), PERS_OK);
    rh_kill(&h);
    /* during the outage: UNAVAILABLE, quickly, with hiredis's message */
    for (i = 0; i < 50; i++) {
        long long took;
        t0 = rh_now_ms();
        rc = enq(s, "acme", "q", "during", NULL);
        took = rh_now_ms() - t0;
        calls++;
        if (took > worst)
            worst = took;
        if (rc == PERS_ERR_UNAVAILABLE)
            fast++;
        rh_sleep_ms(5);
    }
    CHECK_INT(fast, calls);
    CHECK(worst < 100);
    CHECK_CONTAINS(pers_errmsg(s), "Connection refused");
    CHECK_CONTAINS(sink.text, "retrying with backoff");
    /* after the restart the same handle works again within the backoff */
    CHECK_INT(rh_restart(&h), 0);
    t0 = rh_now_ms();
    for (;;) {
        pers_task_state st;
        (void)st;
        rc = pers_get_task(s, "acme", id, &t);
        if (rc == PERS_OK || rh_now_ms() - t0 > 2000)
            break;
        rh_sleep_ms(5);
    }
    back = rh_now_ms() - t0;
    CHECK_INT(rc, PERS_OK);
    CHECK(back < 600);
    if (rc == PERS_OK) {
        CHECK_STR((const char *)t.payload, "before"); /* appendfsync always kept it */
        pers_task_free(s, &t);
    }
    CHECK_CONTAINS(sink.text, "reachable again");
    /* every pooled connection was replaced without a failed call */
    for (i = 0; i < 20; i++)
        CHECK_INT(enq(s, "acme", "q", "after", NULL), PERS_OK);
    pers_destroy(s);
    rh_stop(&h);
    plg_registry_destroy(reg);
    sink_done(&sink);
}

TEST(a_reset_connection_never_raises_sigpipe_in_the_host)
{
    /* SIGPIPE keeps its default action here (it would end this program). The server drops our
       connection right after a claim; the completion that follows is one request of several
       megabytes, written in several write() calls, so one of them meets the reset. */
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store_desc desc;
    pers_store *s = NULL;
    char json[256], why[512];
    size_t size = 16u * 1024u * 1024u;
    char *big = (char *)malloc(size);
    int i, survived = 0;
    memset(big, 'x', size);
    memset(&desc, 0, sizeof desc);
    clock.now = T0;
    desc.clock.now_ms = fake_now;
    desc.clock.user = &clock;
    desc.max_payload_bytes = size;
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    snprintf(json, sizeof json,
             "{\"addr\":\"127.0.0.1:%d\",\"key_prefix\":\"sp\",\"max_payload_bytes\":%lu,"
             "\"pool_size\":1}",
             server.port, (unsigned long)size);
    CHECK_INT(pers_open(reg, "redis", json, &desc, &s), PERS_OK);
    signal(SIGPIPE, SIG_DFL);
    for (i = 0; s != NULL && i < 5; i++) {
        pers_task t;
        pers_completion done;
        pers_lease l;
        pers_result rc;
        redisReply *k;
        CHECK_INT(enq(s, "acme", "big", "x", NULL), PERS_OK);
        CHECK_INT(claim1(s, "acme", "big", &t, NULL), 1);
        k = cmd("CLIENT KILL TYPE normal");
        if (k != NULL)
            freeReplyObject(k);
        l = lease_of(&t);
        memset(&done, 0, sizeof done);
        done.data = big;
        done.data_len = size;
        rc = pers_complete(s, &l, &done); /* resent on a new connection: it completes */
        CHECK_INT(rc, PERS_OK);
        pers_task_free(s, &t);
        survived++;
    }
    CHECK_INT(survived, 5);
    free(big);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

#define THREADS 6
#define PER_THREAD 150

typedef struct worker_ctx {
    pers_store *store;
    int index;
    int done, errors;
    int *seen; /* per task payload number: times completed */
    pthread_mutex_t *lock;
} worker_ctx;

static void *producer_consumer(void *arg)
{
    worker_ctx *w = (worker_ctx *)arg;
    char payload[16];
    int i, idle = 0;
    for (i = 0; i < PER_THREAD; i++) {
        snprintf(payload, sizeof payload, "%d", w->index * PER_THREAD + i);
        if (enq(w->store, "acme", "shared", payload, NULL) != PERS_OK)
            w->errors++;
    }
    while (idle < 20) {
        pers_task t;
        pers_result rc;
        int got = claim1(w->store, "acme", "shared", &t, &rc);
        if (got < 0) {
            w->errors++;
            break;
        }
        if (got == 0) {
            idle++;
            continue;
        }
        idle = 0;
        {
            pers_lease l = lease_of(&t);
            int n = atoi((const char *)t.payload);
            if (pers_complete(w->store, &l, NULL) != PERS_OK)
                w->errors++;
            pthread_mutex_lock(w->lock);
            w->seen[n]++;
            pthread_mutex_unlock(w->lock);
            w->done++;
        }
        pers_task_free(w->store, &t);
    }
    return NULL;
}

TEST(threads_share_a_small_pool)
{
    plg_registry *reg = registry();
    fake_clock clock;
    pers_store *s = open_std(reg, &clock, "\"pool_size\":2");
    pthread_t th[THREADS];
    worker_ctx w[THREADS];
    pthread_mutex_t lock;
    static int seen[THREADS * PER_THREAD];
    int i, total = 0, wrong = 0;
    pers_stats st;
    pthread_mutex_init(&lock, NULL);
    memset(seen, 0, sizeof seen);
    for (i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].store = s;
        w[i].index = i;
        w[i].seen = seen;
        w[i].lock = &lock;
        CHECK_INT(pthread_create(&th[i], NULL, producer_consumer, &w[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        CHECK_INT(w[i].errors, 0);
    }
    CHECK_INT(total, THREADS * PER_THREAD);
    for (i = 0; i < THREADS * PER_THREAD; i++)
        wrong += seen[i] != 1;
    CHECK_INT(wrong, 0);
    CHECK_INT(pers_queue_stats(s, "acme", "shared", &st), PERS_OK);
    CHECK_INT(st.completed, THREADS * PER_THREAD);
    CHECK_INT(st.ready + st.leased, 0);
    pthread_mutex_destroy(&lock);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   The persistence contract suite
   ------------------------------------------------------------------------------------------- */

typedef struct contract_env {
    plg_registry *reg;
    int opened;
} contract_env;

static pers_result contract_open(void *user, const pers_store_desc *desc, pers_store **out)
{
    contract_env *env = (contract_env *)user;
    char json[256];
    snprintf(json, sizeof json,
             "{\"addr\":\"127.0.0.1:%d\",\"key_prefix\":\"contract%d\",\"clock\":\"store\"}",
             server.port, ++env->opened);
    return pers_open(env->reg, "redis", json, desc, out);
}

static void contract_teardown(void *user, pers_store *store)
{
    redisReply *r;
    (void)user;
    pers_destroy(store);
    r = cmd("FLUSHALL"); /* removes the case's keys */
    if (r != NULL)
        freeReplyObject(r);
}

TEST(persistence_contract_suite)
{
    contract_env env;
    pers_contract_target target;
    pers_contract_options opt;
    pers_contract_report report;
    const char *filter = getenv("PERS_CONTRACT_FILTER");
    memset(&env, 0, sizeof env);
    env.reg = registry();
    memset(&target, 0, sizeof target);
    memset(&opt, 0, sizeof opt);
    memset(&report, 0, sizeof report);
    target.name = "redis";
    target.open = contract_open;
    target.teardown = contract_teardown;
    target.user = &env;
    opt.filter = filter != NULL && filter[0] != '\0' ? filter : NULL;
    CHECK_INT(pers_contract_run(&target, &opt, &report), 0);
    CHECK_INT(report.failed, 0);
    CHECK_INT(report.not_supported, 0);
    CHECK(report.passed > 0);
    plg_registry_destroy(env.reg);
}

int main(void)
{
    int ci_fail = 0;
    const char *only = getenv("REDIS_TEST_ONLY");
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
#define RUN_IF(name)                                                                               \
    if (only == NULL || strstr(#name, only) != NULL)                                               \
    RUN(name)
    RUN_IF(config_addr_and_empty_password_as_operators_write_them);
    RUN_IF(config_parsers);
    RUN_IF(config_errors_name_the_key);
    RUN_IF(config_url_username_password_db_and_secrecy);
    RUN_IF(open_fails_cleanly_when_nothing_listens);
    RUN_IF(key_layout_one_hash_tag_per_tenant_and_queue);
    RUN_IF(hostile_names_never_reach_a_key);
    RUN_IF(evalsha_with_eval_fallback_after_script_flush);
    RUN_IF(batches_are_pipelined);
    RUN_IF(batch_is_all_or_nothing_and_leaves_no_reservation);
    RUN_IF(task_directory_follows_cleanup_and_ids_move_between_queues);
    RUN_IF(clock_modes);
    RUN_IF(health_ping_and_eviction_policy_warning);
    RUN_IF(out_of_memory_is_limit);
    RUN_IF(command_timeout_is_timeout_and_claim_is_not_resent);
    RUN_IF(connect_timeout_bounds_a_stuck_server);
    RUN_IF(pool_reconnects_with_backoff_after_a_restart);
    RUN_IF(a_reset_connection_never_raises_sigpipe_in_the_host);
    RUN_IF(threads_share_a_small_pool);
    RUN_IF(persistence_contract_suite);
    rh_stop(&server);
    return test_summary();
}
