/* Unit tests of persistence.h's store handle: argument validation before the backend, optional
   methods (NOT_SUPPORTED), closing (CLOSED), provider selection by name and by environment,
   configuration errors, result strings. The backend under the store is a tiny one defined here
   that implements only the required methods and counts the calls it receives.

   Build (from the repository root):
     gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -fsanitize=address,undefined \
         -fno-sanitize-recover=all -I. tests/unit/test_persistence.c -o /tmp/pers_test \
         -pthread -lm && /tmp/pers_test */
#define _POSIX_C_SOURCE 200112L /* setenv, unsetenv */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#include "backends/memory.h"
#include "tests/test.h"

#include <pthread.h>
#include <stdlib.h>

/* ---------------------------------------------------------------------------------------------
   The tiny backend: required methods only. Its state is the test's (one store at a time).
   ------------------------------------------------------------------------------------------- */

typedef struct tiny_state {
    int calls;            /* data-path calls that reached the backend */
    int opens, closes;
    int fail_open;        /* open_store fails with UNAVAILABLE and a native message */
    int next_code;        /* what the next data-path call returns */
    size_t claim_count;   /* what claim reports */
    char addr[128];       /* the "addr" configuration the backend received */
    int64_t timeout_ms;
    uint32_t seen_max_attempts;
    char seen_task_id[PERS_ID_MAX + 1];
} tiny_state;

static tiny_state tiny;

static void tiny_reset(void)
{
    memset(&tiny, 0, sizeof tiny);
}

static pers_result tiny_open(const plg_config *config, const pers_open_args *args,
                             void **backend, pers_detail *detail)
{
    const char *addr = plg_config_string(config, "addr");
    (void)args;
    if (tiny.fail_open) {
        pers_detail_set(detail, "connection refused by %s", addr != NULL ? addr : "?");
        detail->native_code = 111;
        return PERS_ERR_UNAVAILABLE;
    }
    tiny.opens++;
    snprintf(tiny.addr, sizeof tiny.addr, "%s", addr != NULL ? addr : "(none)");
    tiny.timeout_ms = plg_config_duration_ms(config, "timeout");
    *backend = &tiny;
    return PERS_OK;
}

static void tiny_close(void *backend)
{
    (void)backend;
    tiny.closes++;
}

static pers_result tiny_caps(void *backend, pers_caps *caps, pers_detail *detail)
{
    (void)backend;
    (void)detail;
    caps->flags = ~(uint64_t)0; /* claims everything: the store must mask what it lacks */
    caps->max_payload_bytes = 0;
    caps->max_batch = 0;
    return PERS_OK;
}

static pers_result tiny_answer(pers_detail *detail)
{
    tiny.calls++;
    if (tiny.next_code != PERS_OK)
        pers_detail_set(detail, "native says no (%d)", tiny.next_code);
    return (pers_result)tiny.next_code;
}

static pers_result tiny_enqueue(void *backend, const pers_enqueue_req *req,
                                pers_enqueue_res *res, pers_detail *detail)
{
    (void)backend;
    tiny.seen_max_attempts = req->max_attempts;
    snprintf(tiny.seen_task_id, sizeof tiny.seen_task_id, "%s",
             req->task_id != NULL ? req->task_id : "(null)");
    snprintf(res->task_id, sizeof res->task_id, "%s", req->task_id != NULL ? req->task_id : "");
    return tiny_answer(detail);
}

static pers_result tiny_claim(void *backend, const pers_claim_req *req, pers_task *tasks,
                              pers_claim_res *res, pers_detail *detail)
{
    (void)backend;
    (void)req;
    (void)tasks;
    res->count = tiny.claim_count;
    res->next_due_ms = 42;
    return tiny_answer(detail);
}

static pers_result tiny_extend(void *backend, const pers_lease *lease, int64_t lease_ms,
                               int64_t *expires_ms, pers_detail *detail)
{
    (void)backend;
    (void)lease;
    *expires_ms = lease_ms;
    return tiny_answer(detail);
}

static pers_result tiny_abandon(void *backend, const pers_lease *lease, pers_detail *detail)
{
    (void)backend;
    (void)lease;
    return tiny_answer(detail);
}

static pers_result tiny_nack(void *backend, const pers_lease *lease, int64_t retry_delay_ms,
                             const char *reason, pers_task_state *state, pers_detail *detail)
{
    (void)backend;
    (void)lease;
    (void)retry_delay_ms;
    (void)reason;
    *state = PERS_STATE_READY;
    return tiny_answer(detail);
}

static pers_result tiny_complete(void *backend, const pers_lease *lease,
                                 const pers_completion *completion, pers_detail *detail)
{
    (void)backend;
    (void)lease;
    (void)completion;
    return tiny_answer(detail);
}

static pers_result tiny_get_task(void *backend, const char *tenant, const char *task_id,
                                 pers_task *task, pers_detail *detail)
{
    (void)backend;
    (void)tenant;
    (void)task_id;
    (void)task;
    return tiny_answer(detail);
}

static pers_backend_vtable tiny_vtable(void)
{
    pers_backend_vtable vt;
    memset(&vt, 0, sizeof vt);
    vt.abi_version = PERS_BACKEND_ABI_VERSION;
    vt.struct_size = (uint32_t)sizeof vt;
    vt.open_store = tiny_open;
    vt.close_store = tiny_close;
    vt.capabilities = tiny_caps;
    vt.enqueue = tiny_enqueue;
    vt.claim = tiny_claim;
    vt.extend_lease = tiny_extend;
    vt.abandon = tiny_abandon;
    vt.nack = tiny_nack;
    vt.complete = tiny_complete;
    vt.get_task = tiny_get_task;
    return vt;
}

static const plg_config_key tiny_schema[] = {
    { "addr", PLG_CONFIG_STRING, 0, "localhost:6379", NULL, NULL, NULL, 0, "server address" },
    { "password", PLG_CONFIG_STRING, PLG_KEY_SECRET, NULL, NULL, NULL, NULL, 0, "secret" },
    { "timeout", PLG_CONFIG_DURATION, 0, "1s", "1ms", "1m", NULL, 0, "command timeout" },
};

static plg_result tiny_plugin_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL;
    return PLG_OK;
}

static void tiny_plugin_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

/* A descriptor of type "persistence" named `name` providing vt (which must outlive it). */
static plg_descriptor tiny_descriptor(const char *name, const pers_backend_vtable *vt)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = (uint32_t)sizeof d;
    d.type = PERS_PLUGIN_TYPE;
    d.name = name;
    d.version = "1.0.0";
    d.description = "test backend";
    d.config_schema = tiny_schema;
    d.config_key_count = sizeof tiny_schema / sizeof tiny_schema[0];
    d.init = tiny_plugin_init;
    d.shutdown = tiny_plugin_shutdown;
    d.provides.id = PERS_INTERFACE_ID;
    d.provides.abi_version = vt->abi_version;
    d.provides.struct_size = vt->struct_size;
    d.provides.vtable = vt;
    return d;
}

static pers_store_desc desc_with_message(char *buf, size_t size)
{
    pers_store_desc d;
    memset(&d, 0, sizeof d);
    d.open_message = buf;
    d.open_message_size = size;
    return d;
}

static pers_store *open_tiny(const pers_backend_vtable *vt, pers_store_desc *desc)
{
    pers_store *s = NULL;
    tiny_reset();
    if (pers_open_vtable(vt, NULL, desc, &s) != PERS_OK)
        printf("    open_tiny: %s\n", desc != NULL && desc->open_message ? desc->open_message : "");
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

static pers_lease make_lease(const char *tenant, const char *id, uint64_t token)
{
    pers_lease l;
    l.tenant = tenant;
    l.task_id = id;
    l.token = token;
    return l;
}

/* ---------------------------------------------------------------------------------------------
   Results and names
   ------------------------------------------------------------------------------------------- */

TEST(result_strings)
{
    int i, j;
    CHECK_STR(pers_result_string(PERS_OK), "PERS_OK: ok");
    CHECK_CONTAINS(pers_result_string(PERS_ERR_LEASE_LOST), "PERS_ERR_LEASE_LOST: lease lost");
    CHECK_CONTAINS(pers_result_string(PERS_ERR_ALREADY_COMPLETED), "PERS_ERR_ALREADY_COMPLETED");
    CHECK_CONTAINS(pers_result_string((pers_result)999), "unknown");
    CHECK_CONTAINS(pers_result_string(PERS_RESULT_COUNT_), "unknown");
    for (i = 0; i < (int)PERS_RESULT_COUNT_; i++) {
        CHECK(strncmp(pers_result_string((pers_result)i), "PERS_", 5) == 0);
        for (j = 0; j < i; j++)
            CHECK(strcmp(pers_result_string((pers_result)i), pers_result_string((pers_result)j)) != 0);
    }
    /* values are part of the ABI */
    CHECK_INT(PERS_OK, 0);
    CHECK_INT(PERS_ERR_NOT_FOUND, 1);
    CHECK_INT(PERS_ERR_LEASE_LOST, 2);
    CHECK_INT(PERS_ERR_CLOSED, 10);
    CHECK_INT(PERS_ERR_INTERNAL, 18);
    CHECK_STR(pers_state_name(PERS_STATE_DEAD), "dead");
    CHECK_STR(pers_state_name((pers_task_state)0), "unknown");
    CHECK_STR(pers_version(), PERS_VERSION_STRING);
}

TEST(name_rules)
{
    char why[256];
    CHECK_INT(pers_check_name("tenant-1.a_b", why, sizeof why), 0);
    CHECK_INT(pers_check_name("a:b", why, sizeof why), -1);
    CHECK_CONTAINS(why, "':'");
    CHECK_INT(pers_check_name("_x", why, sizeof why), -1);
    CHECK_INT(pers_check_name(NULL, why, sizeof why), -1);
    CHECK_INT(pers_check_name("a", NULL, 0), 0);
    CHECK_INT(pers_check_key("order:42", why, sizeof why), 0);
    CHECK_INT(pers_check_key(":lead-ok", why, sizeof why), 0);
    CHECK_INT(pers_check_key("a|b", why, sizeof why), -1);
    CHECK_INT(pers_check_key("{a}", why, sizeof why), -1);
}

/* ---------------------------------------------------------------------------------------------
   NULL everywhere
   ------------------------------------------------------------------------------------------- */

TEST(null_arguments_never_crash)
{
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_lease l = make_lease("acme", "id", 1);
    pers_store *out = (pers_store *)&r; /* must be reset to NULL */
    pers_store_desc resolved;
    CHECK_INT(pers_capabilities(NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_health(NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_enqueue(NULL, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_enqueue_batch(NULL, &r, 1, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_claim(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_extend_lease(NULL, &l, 1, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_abandon(NULL, &l), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_nack(NULL, &l, 0, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_complete(NULL, &l, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_get_task(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_queue_stats(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_list_dead(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_requeue_dead(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_cleanup_tasks(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_get_result(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_cleanup_results(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_subscribe(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_unsubscribe(NULL, NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_list_subscriptions_by_queue(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_list_subscriptions_by_worker(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_expire_subscriptions(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_close(NULL), PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(NULL);
    pers_task_free(NULL, NULL);
    pers_tasks_free(NULL, NULL, 3);
    pers_task_list_free(NULL, NULL);
    pers_task_result_free(NULL, NULL);
    pers_subscription_list_free(NULL, NULL);
    pers_task_clear(NULL, NULL);
    pers_detail_set(NULL, "x");
    CHECK(pers_errmsg(NULL) != NULL && pers_errmsg(NULL)[0] != '\0');
    CHECK_STR(pers_store_provider(NULL), "");
    resolved = pers_store_resolved(NULL);
    CHECK(resolved.clock.now_ms == NULL);
    CHECK_INT(pers_open(NULL, "memory", NULL, NULL, &out), PERS_ERR_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK_INT(pers_open(NULL, NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_open_env(NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_open_vtable(NULL, NULL, NULL, &out), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_open_vtable(NULL, NULL, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_declare(NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_memory_register(NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_check_vtable(NULL, NULL, 0), PERS_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------------------------------------
   Validation before the backend
   ------------------------------------------------------------------------------------------- */

TEST(validation_happens_before_the_backend)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s;
    pers_enqueue_req r;
    pers_claim_req c;
    pers_claim_res cres;
    pers_task tasks[2];
    pers_lease l;
    pers_completion comp;
    const char *queues[2] = { "a", "b" };
    const char *bad_queues[2] = { "a", "b|c" };
    char long_reason[PERS_REASON_MAX + 2];
    pers_task t;

    desc.max_payload_bytes = 10;
    s = open_tiny(&vt, &desc);

    r = make_req("acme", "q", "01234567890"); /* 11 bytes */
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_TOO_LARGE);
    CHECK_CONTAINS(pers_errmsg(s), "enqueue: payload is 11 bytes, more than the limit of 10");
    r = make_req("acme", "q", NULL);
    r.payload_len = 3; /* NULL with a length */
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "payload is NULL");
    r = make_req("acme", "q", "x");
    r.delay_ms = -1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "delay_ms");
    r.delay_ms = PERS_DURATION_MAX_MS + 1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    r.delay_ms = 0;
    r.run_at_ms = -5;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    r.run_at_ms = 0;
    r.max_attempts = PERS_ATTEMPTS_MAX + 1;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "max_attempts");
    r.max_attempts = 0;
    r.idempotency_key = "";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "idempotency key");
    r.idempotency_key = NULL;
    r.task_id = "has space";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    r.task_id = NULL;
    r.tenant = "{acme}";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_enqueue(s, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "request is NULL");

    memset(&c, 0, sizeof c);
    c.tenant = "acme";
    c.queues = queues;
    c.queue_count = 2;
    c.worker_id = "w";
    c.lease_ms = 1000;
    c.max_tasks = 2;
    CHECK_INT(pers_claim(s, &c, NULL, &cres), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_claim(s, &c, tasks, NULL), PERS_ERR_INVALID_ARGUMENT);
    c.lease_ms = 0;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "lease_ms is 0");
    c.lease_ms = 1000;
    c.max_tasks = 0;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "max_tasks");
    c.max_tasks = PERS_CLAIM_MAX + 1;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    c.max_tasks = 2;
    c.queue_count = 0;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    c.queue_count = PERS_QUEUES_MAX + 1;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    c.queue_count = 2;
    c.queues = bad_queues;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "queues[1] \"b|c\"");
    c.queues = NULL;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    c.queues = queues;
    c.worker_id = "w:1";
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "worker id");

    l = make_lease("acme", "id", 0);
    CHECK_INT(pers_extend_lease(s, &l, 10, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "token 0");
    l.token = 5;
    CHECK_INT(pers_extend_lease(s, &l, 0, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_extend_lease(s, NULL, 10, NULL), PERS_ERR_INVALID_ARGUMENT);
    l.task_id = NULL;
    CHECK_INT(pers_abandon(s, &l), PERS_ERR_INVALID_ARGUMENT);
    l.task_id = "id";
    CHECK_INT(pers_nack(s, &l, -1, NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    memset(long_reason, 'x', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';
    CHECK_INT(pers_nack(s, &l, 0, long_reason, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "reason");
    comp.failed = 2;
    comp.data = NULL;
    comp.data_len = 0;
    CHECK_INT(pers_complete(s, &l, &comp), PERS_ERR_INVALID_ARGUMENT);
    comp.failed = 0;
    comp.data = "01234567890";
    comp.data_len = 11;
    CHECK_INT(pers_complete(s, &l, &comp), PERS_ERR_TOO_LARGE);
    CHECK_CONTAINS(pers_errmsg(s), "result is 11 bytes");
    comp.data = NULL;
    CHECK_INT(pers_complete(s, &l, &comp), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_get_task(s, "acme", "id", NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_get_task(s, "acme", "", &t), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(pers_get_task(s, NULL, "id", &t), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "get_task: tenant is missing (NULL)");

    CHECK_INT(tiny.calls, 0); /* none of it reached the backend */
    /* and valid calls do */
    r = make_req("acme", "q", "0123456789");
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    comp.data = "0123456789";
    comp.data_len = 10;
    CHECK_INT(pers_complete(s, &l, &comp), PERS_OK);
    c.worker_id = "w-1";
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_OK);
    CHECK_INT(cres.next_due_ms, 42);
    CHECK_INT(tiny.calls, 3);
    pers_destroy(s);
    CHECK_INT(tiny.closes, 1);
}

/* A refused batch names the request or item at fault, and nothing reaches the backend. */
TEST(batch_messages_name_the_item)
{
    pers_store *s = NULL;
    pers_enqueue_req r[3];
    pers_lease l[2];
    pers_result res[2];
    pers_stats st;
    CHECK_INT(pers_open_vtable(pers_memory_vtable(), NULL, NULL, &s), PERS_OK);
    r[0] = make_req("acme", "q", "a");
    r[1] = make_req("acme", "q", "b");
    r[2] = make_req("acme", "q|x", "c");
    CHECK_INT(pers_enqueue_batch(s, r, 3, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "enqueue_batch: request 2: queue \"q|x\"");
    r[2] = make_req("acme", "other", "c");
    CHECK_INT(pers_enqueue_batch(s, r, 3, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "enqueue_batch: request 2: names acme/other");
    CHECK_CONTAINS(pers_errmsg(s), "(S19)");
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_OK);
    CHECK_INT(st.ready, 0);
    l[0].tenant = l[1].tenant = "acme";
    l[0].task_id = "t1";
    l[1].task_id = "t2";
    l[0].token = 1;
    l[1].token = 0;
    CHECK_INT(pers_complete_batch(s, l, NULL, 2, res), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "complete_batch: item 1: lease token 0");
    CHECK_INT(res[0], PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(res[1], PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(s);
}

TEST(defaults_resolved_before_the_backend)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512], first[PERS_ID_MAX + 1];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = open_tiny(&vt, &desc);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_enqueue_res res;
    pers_store_desc resolved = pers_store_resolved(s);
    size_t i;

    CHECK_INT(resolved.max_payload_bytes, PERS_DEFAULT_MAX_PAYLOAD);
    CHECK_INT(resolved.default_max_attempts, PERS_DEFAULT_MAX_ATTEMPTS);
    CHECK(resolved.clock.now_ms == pers_wall_clock_ms);
    CHECK(resolved.allocator.alloc_fn != NULL);
    CHECK(resolved.open_message == NULL);
    CHECK(pers_wall_clock_ms(NULL) > INT64_C(1600000000000));

    CHECK_INT(pers_enqueue(s, &r, &res), PERS_OK);
    CHECK_INT(tiny.seen_max_attempts, PERS_DEFAULT_MAX_ATTEMPTS);
    CHECK_INT(strlen(tiny.seen_task_id), PERS_GENERATED_ID_LEN);
    for (i = 0; i < PERS_GENERATED_ID_LEN; i++)
        CHECK((tiny.seen_task_id[i] >= '0' && tiny.seen_task_id[i] <= '9') ||
              (tiny.seen_task_id[i] >= 'a' && tiny.seen_task_id[i] <= 'f'));
    strcpy(first, tiny.seen_task_id);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK(strcmp(first, tiny.seen_task_id) != 0);
    r.task_id = "mine";
    r.max_attempts = 7;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_STR(tiny.seen_task_id, "mine");
    CHECK_INT(tiny.seen_max_attempts, 7);
    pers_destroy(s);

    desc.default_max_attempts = 9;
    s = open_tiny(&vt, &desc);
    r.max_attempts = 0;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    CHECK_INT(tiny.seen_max_attempts, 9);
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Optional methods, closing, backend errors
   ------------------------------------------------------------------------------------------- */

TEST(optional_methods_not_supported)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = open_tiny(&vt, &desc);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_stats st;
    pers_list_req lr;
    pers_task_list list;
    pers_cleanup_req cr;
    pers_task_result res;
    pers_subscribe_req sr;
    pers_subscription_list sl;
    pers_caps caps;
    const char *queues[1] = { "q" };

    memset(&lr, 0, sizeof lr);
    memset(&cr, 0, sizeof cr);
    memset(&sr, 0, sizeof sr);
    sr.queues = queues;
    CHECK_INT(pers_health(s), PERS_ERR_NOT_SUPPORTED);
    CHECK_CONTAINS(pers_errmsg(s), "health: the backend does not implement it");
    CHECK_INT(pers_enqueue_batch(s, &r, 1, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_CONTAINS(pers_errmsg(s), "enqueue_batch");
    CHECK_INT(pers_queue_stats(s, "acme", "q", &st), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_list_dead(s, &lr, &list), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_requeue_dead(s, "acme", "id"), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_cleanup_tasks(s, &cr, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_get_result(s, "acme", "id", &res), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_cleanup_results(s, &cr, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_subscribe(s, &sr, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_unsubscribe(s, "acme", "w", NULL, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_list_subscriptions_by_queue(s, "acme", "q", &sl), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_list_subscriptions_by_worker(s, "acme", "w", &sl), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(pers_expire_subscriptions(s, NULL, NULL), PERS_ERR_NOT_SUPPORTED);
    /* NOT_SUPPORTED comes before argument checks: NULLs do not change the answer */
    CHECK_INT(pers_list_dead(s, NULL, NULL), PERS_ERR_NOT_SUPPORTED);
    CHECK_INT(tiny.calls, 0);
    /* the backend claimed every capability; the store keeps only those it can back */
    CHECK_INT(pers_capabilities(s, &caps), PERS_OK);
    CHECK(!(caps.flags & PERS_CAP_BATCH));
    CHECK(!(caps.flags & PERS_CAP_STATS));
    CHECK(!(caps.flags & PERS_CAP_DEAD_LETTER));
    CHECK(!(caps.flags & PERS_CAP_TASK_RETENTION));
    CHECK(!(caps.flags & PERS_CAP_RESULTS));
    CHECK(!(caps.flags & PERS_CAP_SUBSCRIPTIONS));
    CHECK(!(caps.flags & PERS_CAP_HEALTH));
    CHECK(caps.flags & PERS_CAP_DURABLE);
    CHECK_INT(caps.max_payload_bytes, PERS_DEFAULT_MAX_PAYLOAD);
    CHECK_INT(caps.max_batch, PERS_BATCH_MAX);
    CHECK_INT(pers_capabilities(s, NULL), PERS_ERR_INVALID_ARGUMENT);
    pers_destroy(s);
}

TEST(closed_store_answers_closed)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = open_tiny(&vt, &desc);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pers_lease l = make_lease("acme", "id", 3);
    pers_task t;

    CHECK_INT(tiny.opens, 1);
    CHECK_INT(pers_close(s), PERS_OK);
    CHECK_INT(tiny.closes, 1);
    CHECK_INT(pers_close(s), PERS_OK);
    CHECK_INT(tiny.closes, 1);
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_CLOSED);
    CHECK_STR(pers_errmsg(s), "enqueue: the store is closed");
    CHECK_INT(pers_enqueue(s, NULL, NULL), PERS_ERR_CLOSED); /* before argument checks */
    CHECK_INT(pers_abandon(s, &l), PERS_ERR_CLOSED);
    CHECK_INT(pers_get_task(s, "acme", "id", &t), PERS_ERR_CLOSED);
    CHECK_INT(pers_health(s), PERS_ERR_CLOSED); /* before NOT_SUPPORTED too */
    CHECK_INT(pers_queue_stats(s, "acme", "q", NULL), PERS_ERR_CLOSED);
    CHECK_INT(tiny.calls, 0);
    pers_destroy(s);
    CHECK_INT(tiny.closes, 1);
}

TEST(backend_errors_carry_the_native_message)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = open_tiny(&vt, &desc);
    pers_lease l = make_lease("acme", "id", 3);
    const char *queues[1] = { "q" };
    pers_claim_req c;
    pers_claim_res cres;
    pers_task tasks[2];

    tiny.next_code = PERS_ERR_LEASE_LOST;
    CHECK_INT(pers_complete(s, &l, NULL), PERS_ERR_LEASE_LOST);
    CHECK_STR(pers_errmsg(s), "complete: native says no (2)");
    tiny.next_code = PERS_ERR_TIMEOUT;
    CHECK_INT(pers_abandon(s, &l), PERS_ERR_TIMEOUT);
    CHECK_CONTAINS(pers_errmsg(s), "abandon: native says no");
    tiny.next_code = 999; /* not a pers_result */
    CHECK_INT(pers_abandon(s, &l), PERS_ERR_INTERNAL);
    CHECK_CONTAINS(pers_errmsg(s), "unknown code 999");
    /* a claim that reports more tasks than asked is refused */
    tiny.next_code = PERS_OK;
    memset(&c, 0, sizeof c);
    c.tenant = "acme";
    c.queues = queues;
    c.queue_count = 1;
    c.worker_id = "w";
    c.lease_ms = 10;
    c.max_tasks = 2;
    tiny.claim_count = 3;
    CHECK_INT(pers_claim(s, &c, tasks, &cres), PERS_ERR_INTERNAL);
    CHECK_INT(cres.count, 0);
    /* a success leaves the message of the last failure alone */
    CHECK_INT(pers_abandon(s, &l), PERS_OK);
    CHECK_CONTAINS(pers_errmsg(s), "claim: the backend returned 3 tasks");
    pers_destroy(s);
}

typedef struct errmsg_ctx {
    pers_store *store;
    char seen[256];
} errmsg_ctx;

static void *fail_in_thread(void *arg)
{
    errmsg_ctx *ctx = (errmsg_ctx *)arg;
    pers_enqueue_req r = make_req("acme", "bad|queue", "x");
    (void)pers_enqueue(ctx->store, &r, NULL);
    snprintf(ctx->seen, sizeof ctx->seen, "%.200s", pers_errmsg(ctx->store));
    return NULL;
}

TEST(error_messages_are_per_thread)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = open_tiny(&vt, &desc);
    pers_enqueue_req r = make_req("acme", "q", "x");
    pthread_t th;
    errmsg_ctx ctx;

    r.priority = 40000;
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(pers_errmsg(s), "priority 40000");
    memset(&ctx, 0, sizeof ctx);
    ctx.store = s;
    CHECK_INT(pthread_create(&th, NULL, fail_in_thread, &ctx), 0);
    pthread_join(th, NULL);
    CHECK_CONTAINS(ctx.seen, "queue \"bad|queue\"");
    CHECK_CONTAINS(pers_errmsg(s), "priority 40000"); /* ours is untouched */
    pers_destroy(s);
}

/* ---------------------------------------------------------------------------------------------
   Vtable checks
   ------------------------------------------------------------------------------------------- */

TEST(vtable_checks_name_the_problem)
{
    pers_backend_vtable vt = tiny_vtable();
    char msg[512], why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = (pers_store *)&vt;

    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_OK);
    CHECK_STR(msg, "");
    vt.claim = NULL;
    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_ERR_ABI_MISMATCH);
    CHECK_CONTAINS(msg, "requires this method: claim is NULL");
    vt.complete = NULL;
    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_ERR_ABI_MISMATCH);
    CHECK_CONTAINS(msg, "claim, complete are NULL");
    CHECK_INT(pers_open_vtable(&vt, NULL, &desc, &s), PERS_ERR_ABI_MISMATCH);
    CHECK(s == NULL);
    CHECK_CONTAINS(why, "claim, complete");
    vt = tiny_vtable();
    vt.abi_version = 0;
    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_ERR_ABI_MISMATCH);
    CHECK_CONTAINS(msg, "ABI version 0 is not supported");
    vt.abi_version = PERS_BACKEND_ABI_VERSION + 1;
    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_ERR_ABI_MISMATCH);
    vt.abi_version = PERS_BACKEND_ABI_VERSION;
    vt.struct_size = 16;
    CHECK_INT(pers_check_vtable(&vt, msg, sizeof msg), PERS_ERR_ABI_MISMATCH);
    CHECK_CONTAINS(msg, "struct_size 16 is smaller");
}

TEST(registry_refuses_an_incomplete_backend)
{
    plg_registry *reg = NULL;
    pers_backend_vtable vt = tiny_vtable();
    plg_descriptor d;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_declare(reg), PERS_OK);
    CHECK_INT(pers_declare(reg), PERS_OK); /* harmless twice */
    vt.nack = NULL;
    d = tiny_descriptor("broken", &vt);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_MISSING_CALLBACK);
    CHECK_CONTAINS(plg_errmsg(reg), "nack");
    vt = tiny_vtable();
    d = tiny_descriptor("fine", &vt);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    plg_registry_destroy(reg);
}

/* pers_register_backend translates the registry's answers into pers_result codes. */
TEST(register_backend_translates_the_registry)
{
    plg_registry *reg = NULL;
    pers_backend_vtable vt = tiny_vtable(), broken = tiny_vtable();
    plg_descriptor d;
    CHECK_INT(pers_register_backend(NULL, NULL), PERS_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_register_backend(reg, NULL), PERS_ERR_INVALID_ARGUMENT);
    d = tiny_descriptor("fine", &vt); /* the interface is declared on the way */
    CHECK_INT(pers_register_backend(reg, &d), PERS_OK);
    CHECK_INT(pers_register_backend(reg, &d), PERS_ERR_DUPLICATE);
    broken.claim = NULL;
    d = tiny_descriptor("broken", &broken);
    CHECK_INT(pers_register_backend(reg, &d), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(plg_errmsg(reg), "claim");
    broken = tiny_vtable();
    broken.abi_version = PERS_BACKEND_ABI_VERSION + 1;
    d = tiny_descriptor("future", &broken);
    CHECK_INT(pers_register_backend(reg, &d), PERS_ERR_ABI_MISMATCH);
    d = tiny_descriptor("bad name!", &vt);
    CHECK_INT(pers_register_backend(reg, &d), PERS_ERR_INVALID_ARGUMENT);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   Provider selection
   ------------------------------------------------------------------------------------------- */

/* A registry with "memory" and "tiny" (and "sqlite", a tiny too, when with_sqlite). The tiny
   vtable must outlive the registry: it is static. */
static const pers_backend_vtable *tiny_static_vtable(void)
{
    static pers_backend_vtable vt;
    static int made;
    if (!made) {
        vt = tiny_vtable();
        made = 1;
    }
    return &vt;
}

static plg_registry *make_registry(int with_sqlite)
{
    plg_registry *reg = NULL;
    plg_descriptor d;
    if (plg_registry_create(NULL, &reg) != PLG_OK)
        return NULL;
    if (pers_memory_register(reg) != PERS_OK)
        printf("    memory: %s\n", plg_errmsg(reg));
    d = tiny_descriptor("tiny", tiny_static_vtable());
    if (plg_register(reg, &d, NULL) != PLG_OK)
        printf("    tiny: %s\n", plg_errmsg(reg));
    if (with_sqlite) {
        d = tiny_descriptor("sqlite", tiny_static_vtable());
        if (plg_register(reg, &d, NULL) != PLG_OK)
            printf("    sqlite: %s\n", plg_errmsg(reg));
    }
    return reg;
}

TEST(open_by_provider_name)
{
    plg_registry *reg = make_registry(0);
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = NULL;
    plg_plugin *p = NULL;

    tiny_reset();
    CHECK_INT(pers_open(reg, "tiny", "{\"addr\":\"db:1\",\"timeout\":\"250ms\"}", &desc, &s),
              PERS_OK);
    CHECK_STR(why, "");
    CHECK_STR(tiny.addr, "db:1");
    CHECK_INT(tiny.timeout_ms, 250);
    CHECK_STR(pers_store_provider(s), "tiny");
    CHECK_INT(plg_find(reg, PERS_PLUGIN_TYPE, "tiny", &p), PLG_OK);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_STARTED);
    pers_destroy(s);
    CHECK_INT(tiny.closes, 1);
    /* the defaults of the schema apply; a second store on a started plugin */
    CHECK_INT(pers_open(reg, "tiny", NULL, &desc, &s), PERS_OK);
    CHECK_STR(tiny.addr, "localhost:6379");
    CHECK_INT(tiny.timeout_ms, 1000);
    pers_destroy(s);
    /* the same through the memory backend */
    CHECK_INT(pers_open(reg, "memory", "{}", &desc, &s), PERS_OK);
    CHECK_INT(pers_health(s), PERS_OK);
    pers_destroy(s);
    plg_registry_destroy(reg);
}

TEST(unknown_provider_lists_the_registered_ones)
{
    plg_registry *reg = make_registry(0);
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = NULL;

    CHECK_INT(pers_open(reg, "redis", NULL, &desc, &s), PERS_ERR_NO_PROVIDER);
    CHECK(s == NULL);
    CHECK_CONTAINS(why, "no persistence provider named \"redis\"");
    CHECK_CONTAINS(why, "memory");
    CHECK_CONTAINS(why, "tiny");
    CHECK_INT(pers_open(reg, "", NULL, &desc, &s), PERS_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "provider name is empty");
    plg_registry_destroy(reg);

    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_open(reg, "memory", NULL, &desc, &s), PERS_ERR_NO_PROVIDER);
    CHECK_CONTAINS(why, "none is registered");
    plg_registry_destroy(reg);
}

TEST(bad_config_names_the_key_and_hides_secrets)
{
    plg_registry *reg = make_registry(0);
    char why[1024];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = NULL;

    tiny_reset();
    CHECK_INT(pers_open(reg, "tiny", "{\"timeout\":\"forever\"}", &desc, &s), PERS_ERR_CONFIG);
    CHECK(s == NULL);
    CHECK_CONTAINS(why, "provider \"tiny\": invalid configuration");
    CHECK_CONTAINS(why, "timeout");
    CHECK_INT(tiny.opens, 0); /* nothing opened on a bad configuration */
    CHECK_INT(pers_open(reg, "tiny", "{\"password\":\"hunter2\",\"timeout\":\"2h\"}", &desc, &s),
              PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "timeout");
    CHECK_NOT_CONTAINS(why, "hunter2");
    CHECK_INT(pers_open(reg, "tiny", "{\"addr\":", &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "byte");
    CHECK_INT(pers_open(reg, "memory", "{\"max_tasks\":-3}", &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "max_tasks");
    plg_registry_destroy(reg);
}

TEST(open_from_the_environment)
{
    plg_registry *reg = make_registry(0);
    char why[1024];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = NULL;

    tiny_reset();
    setenv("PERSISTENCE_PROVIDER", "tiny", 1);
    setenv("PERSISTENCE_CONFIG", "{\"addr\":\"localhost:6379\",\"password\":\"\"}", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(tiny.addr, "localhost:6379");
    CHECK_STR(pers_store_provider(s), "tiny");
    pers_destroy(s);

    setenv("PERSISTENCE_CONFIG", "{\"addr\":\"env:2\"}", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(tiny.addr, "env:2");
    pers_destroy(s);

    /* no provider: the embedded default, "memory" without an sqlite plugin */
    unsetenv("PERSISTENCE_PROVIDER");
    unsetenv("PERSISTENCE_CONFIG");
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(pers_store_provider(s), "memory");
    pers_destroy(s);
    setenv("PERSISTENCE_PROVIDER", "", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(pers_store_provider(s), "memory");
    pers_destroy(s);
    plg_registry_destroy(reg);

    /* ... and "sqlite" when one is registered */
    reg = make_registry(1);
    unsetenv("PERSISTENCE_PROVIDER");
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_OK);
    CHECK_STR(pers_store_provider(s), "sqlite");
    pers_destroy(s);

    /* errors say which variable was wrong */
    setenv("PERSISTENCE_PROVIDER", "nope", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_ERR_NO_PROVIDER);
    CHECK_CONTAINS(why, "PERSISTENCE_PROVIDER=\"nope\"");
    CHECK_CONTAINS(why, "tiny");
    setenv("PERSISTENCE_PROVIDER", "tiny", 1);
    setenv("PERSISTENCE_CONFIG", "{\"timeout\":-1}", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "PERSISTENCE_CONFIG");
    CHECK_CONTAINS(why, "timeout");
    setenv("PERSISTENCE_CONFIG", "not json", 1);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_ERR_CONFIG);
    CHECK_CONTAINS(why, "PERSISTENCE_CONFIG");
    unsetenv("PERSISTENCE_PROVIDER");
    unsetenv("PERSISTENCE_CONFIG");
    plg_registry_destroy(reg);

    /* neither set nor registered */
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(pers_open_env(reg, &desc, &s), PERS_ERR_NO_PROVIDER);
    CHECK_CONTAINS(why, "PERSISTENCE_PROVIDER is not set");
    plg_registry_destroy(reg);
}

TEST(backend_open_failure_is_reported)
{
    pers_backend_vtable vt = tiny_vtable();
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = (pers_store *)&vt;
    tiny_reset();
    tiny.fail_open = 1;
    CHECK_INT(pers_open_vtable(&vt, NULL, &desc, &s), PERS_ERR_UNAVAILABLE);
    CHECK(s == NULL);
    CHECK_CONTAINS(why, "open failed: connection refused");
    CHECK_INT(tiny.closes, 0);
    /* and through the registry, with the configured address in the native message */
    {
        plg_registry *reg = make_registry(0);
        tiny.fail_open = 1;
        CHECK_INT(pers_open(reg, "tiny", "{\"addr\":\"db:9\"}", &desc, &s), PERS_ERR_UNAVAILABLE);
        CHECK_CONTAINS(why, "provider \"tiny\": open failed: connection refused by db:9");
        plg_registry_destroy(reg);
    }
}

/* ---------------------------------------------------------------------------------------------
   Allocator hooks
   ------------------------------------------------------------------------------------------- */

typedef struct counting {
    long allocs, frees;
    long long bytes;
} counting;

static void *count_alloc(size_t size, void *user)
{
    counting *c = (counting *)user;
    size_t *p = (size_t *)malloc(size + sizeof(size_t) * 2);
    if (p == NULL)
        return NULL;
    __atomic_add_fetch(&c->allocs, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&c->bytes, (long long)size, __ATOMIC_SEQ_CST);
    p[0] = size;
    return p + 2;
}

static void count_free(void *ptr, size_t size, void *user)
{
    counting *c = (counting *)user;
    size_t *p = (size_t *)ptr - 2;
    if (p[0] != size)
        printf("    free size %lu for an allocation of %lu\n", (unsigned long)size,
               (unsigned long)p[0]);
    __atomic_add_fetch(&c->frees, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&c->bytes, (long long)size, __ATOMIC_SEQ_CST);
    free(p);
}

TEST(allocator_hooks_balance)
{
    counting c;
    char why[512];
    pers_store_desc desc = desc_with_message(why, sizeof why);
    pers_store *s = NULL;
    pers_enqueue_req r = make_req("acme", "q", "payload");
    pers_task t;
    const char *queues[1] = { "q" };
    pers_claim_req cr;
    pers_claim_res res;
    pers_lease l;
    pers_completion comp;
    pers_task_result out;
    int i;

    memset(&c, 0, sizeof c);
    desc.allocator.alloc_fn = count_alloc;
    desc.allocator.free_fn = count_free;
    desc.allocator.user = &c;
    CHECK_INT(pers_open_vtable(pers_memory_vtable(), NULL, &desc, &s), PERS_OK);
    for (i = 0; i < 200; i++)
        CHECK_INT(pers_enqueue(s, &r, NULL), PERS_OK);
    memset(&cr, 0, sizeof cr);
    cr.tenant = "acme";
    cr.queues = queues;
    cr.queue_count = 1;
    cr.worker_id = "w";
    cr.lease_ms = 1000;
    cr.max_tasks = 1;
    CHECK_INT(pers_claim(s, &cr, &t, &res), PERS_OK);
    l.tenant = "acme";
    l.task_id = t.id;
    l.token = t.lease_token;
    comp.failed = 0;
    comp.data = "result";
    comp.data_len = 6;
    CHECK_INT(pers_complete(s, &l, &comp), PERS_OK);
    CHECK_INT(pers_get_result(s, "acme", t.id, &out), PERS_OK);
    r.tenant = "bad|tenant";
    CHECK_INT(pers_enqueue(s, &r, NULL), PERS_ERR_INVALID_ARGUMENT); /* an error buffer */
    CHECK(c.allocs > 200);
    pers_task_result_free(s, &out);
    pers_task_free(s, &t);
    pers_destroy(s);
    CHECK_INT(c.allocs, c.frees);
    CHECK_INT(c.bytes, 0);
}

int main(void)
{
    RUN(result_strings);
    RUN(name_rules);
    RUN(null_arguments_never_crash);
    RUN(validation_happens_before_the_backend);
    RUN(batch_messages_name_the_item);
    RUN(defaults_resolved_before_the_backend);
    RUN(optional_methods_not_supported);
    RUN(closed_store_answers_closed);
    RUN(backend_errors_carry_the_native_message);
    RUN(error_messages_are_per_thread);
    RUN(vtable_checks_name_the_problem);
    RUN(registry_refuses_an_incomplete_backend);
    RUN(register_backend_translates_the_registry);
    RUN(open_by_provider_name);
    RUN(unknown_provider_lists_the_registered_ones);
    RUN(bad_config_names_the_key_and_hides_secrets);
    RUN(open_from_the_environment);
    RUN(backend_open_failure_is_reported);
    RUN(allocator_hooks_balance);
    return test_summary();
}
