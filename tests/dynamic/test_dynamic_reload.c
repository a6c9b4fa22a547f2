/* Hot reload: four threads call the plugin through plg_acquire/plg_release without a pause while
   the main thread replaces it again and again (by overwriting the deployed file and by naming
   another one), with a state hand-over; not one call may fail, every version must be seen, and
   every old version must be shut down only after its last caller left (the plugin's `call`
   returns -1 on a shut-down instance, and ASan would see a use after free). Then broken builds,
   under the same load: each reload fails with the step and the reason, and the old version stays
   in service. Then draining: a held lease delays the old version's shutdown, and
   drain_timeout_ms bounds the wait. Concurrency test: `make sanitize` runs it under TSan too. */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"
#include "dyn_build.h"
#include "plugins/dyn_iface.h"

#include <pthread.h>
#include <time.h>

#define THREADS 4
#define RELOADS 24
#define VERSIONS 3

static char p_v[VERSIONS + 1][1200], p_deployed[1200], p_fail_init[1200], p_fail_start[1200],
    p_unhealthy[1200], p_magic[1200], p_other[1200], p_range[1200], p_missing[1200];
static int built;
static plg_registry *reg;

/* The callers. */
static int stop_callers;
static long calls[THREADS], failed_calls[THREADS], seen[THREADS][VERSIONS + 1];
static char first_failure[THREADS][256];

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static void *caller(void *arg)
{
    int t = (int)(intptr_t)arg;
    while (!__atomic_load_n(&stop_callers, __ATOMIC_ACQUIRE)) {
        plg_lease lease;
        plg_result r = plg_acquire(reg, "dyn", "counter", &lease);
        int v;
        if (r != PLG_OK) {
            if (failed_calls[t]++ == 0)
                snprintf(first_failure[t], sizeof first_failure[t], "acquire: %s",
                         plg_errmsg(reg));
            continue;
        }
        v = ((const dyn_vtable *)lease.vtable)->call(lease.instance);
        if (v < 1 || v > VERSIONS || plg_plugin_state(lease.plugin) != PLG_STATE_STARTED) {
            if (failed_calls[t]++ == 0)
                snprintf(first_failure[t], sizeof first_failure[t],
                         "call returned %d on %s (state %s)", v, plg_plugin_version(lease.plugin),
                         plg_state_name(plg_plugin_state(lease.plugin)));
        } else {
            seen[t][v]++;
        }
        __atomic_fetch_add(&calls[t], 1, __ATOMIC_RELAXED);
        plg_release(&lease);
    }
    return NULL;
}

static long total_calls(void)
{
    long n = 0;
    int t;
    for (t = 0; t < THREADS; t++)
        n += __atomic_load_n(&calls[t], __ATOMIC_RELAXED);
    return n;
}

static pthread_t threads[THREADS];

static void start_callers(void)
{
    int t;
    memset(calls, 0, sizeof calls);
    memset(failed_calls, 0, sizeof failed_calls);
    memset(seen, 0, sizeof seen);
    memset(first_failure, 0, sizeof first_failure);
    __atomic_store_n(&stop_callers, 0, __ATOMIC_RELEASE);
    for (t = 0; t < THREADS; t++)
        pthread_create(&threads[t], NULL, caller, (void *)(intptr_t)t);
}

static void stop_and_check_callers(void)
{
    int t;
    long failed = 0;
    __atomic_store_n(&stop_callers, 1, __ATOMIC_RELEASE);
    for (t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        failed += failed_calls[t];
        if (failed_calls[t] != 0)
            printf("    thread %d: %ld failed calls, first: %s\n", t, failed_calls[t],
                   first_failure[t]);
        CHECK(calls[t] > 0);
    }
    CHECK_INT(failed, 0);
}

/* Lets the callers make progress between two reloads. */
static void wait_for_calls(long more)
{
    long target = total_calls() + more;
    int waited = 0;
    while (total_calls() < target && waited < 5000) {
        sleep_ms(1);
        waited++;
    }
}

static int build_all(void)
{
    int rc = 0, v;
    for (v = 1; v <= VERSIONS; v++) {
        char name[32], defs[128];
        snprintf(name, sizeof name, "v%d.so", v);
        snprintf(defs, sizeof defs, "-DDYN_VERSION='\"%d.0.0\"' -DDYN_VERSION_NUM=%d -DDYN_SPIN=300",
                 v, v);
        rc |= dyn_build(name, "dyn_plugin.c", defs);
        dyn_lib(name, p_v[v], sizeof p_v[v]);
    }
    rc |= dyn_build("fail_init.so", "dyn_plugin.c", "-DDYN_VERSION='\"9.0.0\"' -DDYN_FAIL_INIT");
    rc |= dyn_build("fail_start.so", "dyn_plugin.c", "-DDYN_VERSION='\"9.0.0\"' -DDYN_FAIL_START");
    rc |= dyn_build("unhealthy.so", "dyn_plugin.c", "-DDYN_VERSION='\"9.0.0\"' -DDYN_UNHEALTHY");
    rc |= dyn_build("magic.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=magic -DDYN_OVERRIDE_VALUE=7");
    rc |= dyn_build("other.so", "dyn_plugin.c", "-DDYN_REJECT_ME -DDYN_NAME='\"other\"'");
    rc |= dyn_build("range.so", "dyn_plugin.c", "-DDYN_REJECT_ME -DDYN_HOST_RANGE='\"^7\"'");
    dyn_lib("fail_init.so", p_fail_init, sizeof p_fail_init);
    dyn_lib("fail_start.so", p_fail_start, sizeof p_fail_start);
    dyn_lib("unhealthy.so", p_unhealthy, sizeof p_unhealthy);
    dyn_lib("magic.so", p_magic, sizeof p_magic);
    dyn_lib("other.so", p_other, sizeof p_other);
    dyn_lib("range.so", p_range, sizeof p_range);
    dyn_lib("missing.so", p_missing, sizeof p_missing);
    dyn_lib("deployed.so", p_deployed, sizeof p_deployed);
    rc |= dyn_copy("v1.so", p_deployed);
    return rc;
}

/* A fresh registry with version 1 loaded from the deployed path and started. */
static plg_plugin *setup(void)
{
    plg_plugin *p = NULL;
    if (plg_registry_create(NULL, &reg) != PLG_OK)
        return NULL;
    if (dyn_copy("v1.so", p_deployed) != 0 ||
        plg_load(reg, p_deployed, NULL, &p, 1, NULL) != PLG_OK ||
        plg_init(reg, p, "{\"start\": 0}") != PLG_OK || plg_start(reg, p) != PLG_OK) {
        printf("    setup: %s\n", plg_errmsg(reg));
        return NULL;
    }
    return p;
}

static plg_result carry_state(plg_plugin *from, void *from_instance, plg_plugin *to,
                              void *to_instance, void *user)
{
    const dyn_vtable *a = (const dyn_vtable *)plg_plugin_vtable(from, DYN_IFACE_ID, 1, NULL);
    const dyn_vtable *b = (const dyn_vtable *)plg_plugin_vtable(to, DYN_IFACE_ID, 1, NULL);
    ++*(int *)user;
    if (a == NULL || b == NULL)
        return PLG_ERR_NOT_FOUND;
    b->set_state(to_instance, a->get_state(from_instance) + 1); /* one generation more */
    return PLG_OK;
}

static plg_result refuse_state(plg_plugin *from, void *from_instance, plg_plugin *to,
                               void *to_instance, void *user)
{
    (void)from;
    (void)from_instance;
    (void)to;
    (void)to_instance;
    (void)user;
    return PLG_ERR_VERSION_MISMATCH;
}

TEST(plugins_are_built)
{
    CHECK(built);
    CHECK(dyn_host_exports_symbols());
}

TEST(reload_under_load_from_four_threads_fails_no_call)
{
    plg_plugin *cur = setup(), *old, *found = NULL;
    int k, v, t, handovers = 0;
    long per_version[VERSIONS + 1];
    plg_reload_options opt;
    CHECK(cur != NULL);
    if (cur == NULL)
        return;
    start_callers();
    wait_for_calls(2000);
    for (k = 1; k <= RELOADS; k++) {
        int next = k % VERSIONS + 1; /* 2, 3, 1, 2, ... */
        plg_result r;
        memset(&opt, 0, sizeof opt);
        opt.handover = carry_state;
        opt.handover_user = &handovers;
        old = cur;
        if (k % 3 != 0) {
            /* A deployment replaced the file (atomically, by rename): reload the same path,
               which the loader would otherwise answer with the handle it already has. */
            char name[16];
            const char *lib = plg_plugin_library(cur);
            snprintf(name, sizeof name, "v%d.so", next);
            CHECK_INT(dyn_copy(name, p_deployed), 0);
            r = plg_reload(reg, cur, strcmp(lib, p_deployed) == 0 ? NULL : p_deployed, &opt,
                           &cur);
        } else {
            r = plg_reload(reg, cur, p_v[next], &opt, &cur); /* another file */
        }
        CHECK_INT(r, PLG_OK);
        if (r != PLG_OK) {
            printf("    reload %d: %s\n", k, plg_errmsg(reg));
            cur = old;
            break;
        }
        CHECK(cur != old);
        CHECK_INT(plg_plugin_state(old), PLG_STATE_SHUT_DOWN);
        CHECK_INT(plg_plugin_state(cur), PLG_STATE_STARTED);
        CHECK_INT((int)(plg_plugin_version(cur)[0] - '0'), next);
        CHECK_INT(plg_find(reg, "dyn", "counter", &found), PLG_OK);
        CHECK(found == cur);
        CHECK_INT(plg_plugin_count(reg), 1);
        CHECK_INT(plg_list_type(reg, "dyn", &found, 1), 1);
        CHECK(found == cur);
        wait_for_calls(500);
    }
    stop_and_check_callers();
    memset(per_version, 0, sizeof per_version);
    for (t = 0; t < THREADS; t++)
        for (v = 1; v <= VERSIONS; v++)
            per_version[v] += seen[t][v];
    printf("    %ld calls from %d threads across %d reloads; by version: 1: %ld, 2: %ld, 3: %ld\n",
           total_calls(), THREADS, RELOADS, per_version[1], per_version[2], per_version[3]);
    for (v = 1; v <= VERSIONS; v++)
        CHECK(per_version[v] > 0);
    CHECK_INT(handovers, RELOADS);
    {
        const dyn_vtable *vt = (const dyn_vtable *)plg_plugin_vtable(cur, DYN_IFACE_ID, 1, NULL);
        CHECK(vt != NULL);
        if (vt != NULL)
            CHECK_INT(vt->get_state(plg_plugin_instance(cur)), RELOADS); /* state carried */
    }
    plg_registry_destroy(reg);
}

static void check_rollback(plg_plugin *cur, const char *path, plg_result code, const char *step,
                           const char *reason)
{
    plg_plugin *out = (plg_plugin *)&code, *found = NULL;
    plg_result r = plg_reload(reg, cur, path, NULL, &out);
    CHECK_INT(r, code);
    CHECK(out == NULL);
    CHECK_CONTAINS(plg_errmsg(reg), step);
    CHECK_CONTAINS(plg_errmsg(reg), reason);
    CHECK_CONTAINS(plg_errmsg(reg), "version 1.0.0 stays in service");
    CHECK_INT(plg_plugin_state(cur), PLG_STATE_STARTED);
    CHECK_INT(plg_find(reg, "dyn", "counter", &found), PLG_OK);
    CHECK(found == cur);
    CHECK_INT(plg_plugin_count(reg), 1);
    wait_for_calls(200);
}

TEST(reload_to_a_broken_build_rolls_back_under_load)
{
    plg_plugin *cur = setup();
    plg_reload_options opt;
    CHECK(cur != NULL);
    if (cur == NULL)
        return;
    start_callers();
    wait_for_calls(1000);
    check_rollback(cur, p_fail_init, PLG_ERR_PLUGIN_FAILED, "failed at init of version 9.0.0",
                   "build 9.0.0 refuses to initialise");
    check_rollback(cur, p_fail_start, PLG_ERR_PLUGIN_FAILED, "failed at start of version 9.0.0",
                   "cannot start: port in use");
    check_rollback(cur, p_unhealthy, PLG_ERR_UNHEALTHY, "failed at health check of version 9.0.0",
                   "health is unhealthy: database unreachable");
    check_rollback(cur, p_magic, PLG_ERR_ABI_MISMATCH, "failed at load",
                   "magic is 0x00000007 in the library");
    check_rollback(cur, p_range, PLG_ERR_HOST_API_MISMATCH, "failed at load",
                   "requires host API \"^7\"");
    check_rollback(cur, p_other, PLG_ERR_NOT_FOUND, "failed at load",
                   "exports no plugin dyn/counter (it exports dyn/other)");
    check_rollback(cur, p_missing, PLG_ERR_LOAD, "failed at load", "No such file");
    memset(&opt, 0, sizeof opt);
    opt.handover = refuse_state;
    CHECK_INT(plg_reload(reg, cur, p_v[2], &opt, NULL), PLG_ERR_VERSION_MISMATCH);
    CHECK_CONTAINS(plg_errmsg(reg), "failed at state hand-over of version 2.0.0");
    CHECK_CONTAINS(plg_errmsg(reg), "stays in service");
    opt.handover = NULL;
    opt.config_json = "{\"start\": \"not a number\"}";
    CHECK_INT(plg_reload(reg, cur, p_v[2], &opt, NULL), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_errmsg(reg), "failed at init of version 2.0.0");
    CHECK_CONTAINS(plg_errmsg(reg), "\"start\"");
    CHECK_INT(plg_plugin_state(cur), PLG_STATE_STARTED);
    /* and a good build still goes in afterwards */
    opt.config_json = "{\"start\": 5}";
    CHECK_INT(plg_reload(reg, cur, p_v[2], &opt, &cur), PLG_OK);
    CHECK_STR(plg_plugin_version(cur), "2.0.0");
    stop_and_check_callers();
    CHECK(seen[0][1] + seen[1][1] + seen[2][1] + seen[3][1] > 0);
    plg_registry_destroy(reg);
}

static plg_plugin *reload_old, *reload_new;
static plg_result reload_result;
static int reload_done;
static plg_reload_options reload_opt;

static void *reloader(void *arg)
{
    (void)arg;
    reload_result = plg_reload(reg, reload_old, p_v[2], &reload_opt, &reload_new);
    __atomic_store_n(&reload_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

TEST(reload_waits_for_callers_inside_the_old_version)
{
    plg_plugin *cur = setup();
    plg_lease held, fresh;
    pthread_t th;
    CHECK(cur != NULL);
    if (cur == NULL)
        return;
    CHECK_INT(plg_acquire(reg, "dyn", "counter", &held), PLG_OK);
    reload_old = cur;
    reload_new = NULL;
    reload_done = 0;
    memset(&reload_opt, 0, sizeof reload_opt);
    pthread_create(&th, NULL, reloader, NULL);
    /* The switch happens at once: new callers get version 2 ... */
    for (;;) {
        CHECK_INT(plg_acquire(reg, "dyn", "counter", &fresh), PLG_OK);
        if (fresh.plugin != cur)
            break;
        plg_release(&fresh);
        sleep_ms(1);
    }
    CHECK_STR(plg_plugin_version(fresh.plugin), "2.0.0");
    CHECK_INT(((const dyn_vtable *)fresh.vtable)->call(fresh.instance), 2);
    plg_release(&fresh);
    /* ... while the caller inside version 1 keeps a working instance. */
    sleep_ms(50);
    CHECK_INT(__atomic_load_n(&reload_done, __ATOMIC_ACQUIRE), 0);
    CHECK_INT(plg_plugin_state(cur), PLG_STATE_STARTED);
    CHECK_INT(((const dyn_vtable *)held.vtable)->call(held.instance), 1);
    plg_release(&held);
    pthread_join(th, NULL);
    CHECK_INT(reload_result, PLG_OK);
    CHECK_INT(plg_plugin_state(cur), PLG_STATE_SHUT_DOWN);
    CHECK(reload_new != NULL && reload_new != cur);
    plg_registry_destroy(reg);
}

TEST(drain_timeout_leaves_the_old_version_to_the_host)
{
    plg_plugin *cur = setup(), *neu = NULL, *found = NULL;
    plg_lease held;
    plg_reload_options opt;
    CHECK(cur != NULL);
    if (cur == NULL)
        return;
    CHECK_INT(plg_acquire(reg, "dyn", "counter", &held), PLG_OK);
    memset(&opt, 0, sizeof opt);
    opt.drain_timeout_ms = 30;
    CHECK_INT(plg_reload(reg, cur, p_v[3], &opt, &neu), PLG_ERR_TIMEOUT);
    CHECK_CONTAINS(plg_errmsg(reg), "version 3.0.0 is in service, but 1 caller still held version 1.0.0");
    CHECK(neu != NULL);
    CHECK_INT(plg_find(reg, "dyn", "counter", &found), PLG_OK);
    CHECK(found == neu);
    CHECK_INT(plg_list_type(reg, "dyn", NULL, 0), 1);
    CHECK_INT(plg_plugin_state(cur), PLG_STATE_STARTED);
    CHECK_INT(((const dyn_vtable *)held.vtable)->call(held.instance), 1);
    /* a second reload of the replaced version is refused */
    CHECK_INT(plg_reload(reg, cur, p_v[2], NULL, NULL), PLG_ERR_NOT_FOUND);
    plg_release(&held);
    CHECK_INT(plg_stop(reg, cur), PLG_OK);
    CHECK_INT(plg_shutdown(reg, cur), PLG_OK);
    plg_registry_destroy(reg);
}

static plg_result st_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL;
    return PLG_OK;
}
static void st_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

TEST(reload_rules_for_states_and_compiled_in_plugins)
{
    plg_descriptor d;
    plg_plugin *p = NULL, *neu = NULL;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = "dyn";
    d.name = "counter";
    d.version = "0.1.0";
    d.init = st_init;
    d.shutdown = st_shutdown;
    CHECK_INT(plg_register(reg, &d, &p), PLG_OK);
    CHECK_INT(plg_reload(reg, p, p_v[1], NULL, NULL), PLG_ERR_INVALID_STATE);
    CHECK_CONTAINS(plg_errmsg(reg), "reload needs started or failed");
    CHECK_INT(plg_start_all(reg), PLG_OK);
    CHECK_INT(plg_reload(reg, p, NULL, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(plg_errmsg(reg), "not loaded from a library");
    /* a compiled-in version replaced by a library build, after it failed */
    CHECK_INT(plg_mark_failed(reg, p, "broken on purpose"), PLG_OK);
    CHECK_INT(plg_reload(reg, p, p_v[1], NULL, &neu), PLG_OK);
    CHECK_STR(plg_plugin_version(neu), "1.0.0");
    CHECK_INT(plg_plugin_state(neu), PLG_STATE_STARTED);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_SHUT_DOWN);
    CHECK_STR(plg_plugin_library(neu), p_v[1]);
    plg_registry_destroy(reg);
}

int main(void)
{
    built = build_all() == 0;
    RUN(plugins_are_built);
    if (built) {
        RUN(reload_under_load_from_four_threads_fails_no_call);
        RUN(reload_to_a_broken_build_rolls_back_under_load);
        RUN(reload_waits_for_callers_inside_the_old_version);
        RUN(drain_timeout_leaves_the_old_version_to_the_host);
        RUN(reload_rules_for_states_and_compiled_in_plugins);
    }
    dyn_cleanup();
    return test_summary();
}
