/* Concurrency test of the registry, meant to run under ThreadSanitizer (`make sanitize`).
   Eight threads look plugins up, list them and drive their lifecycle at once, while a ninth
   registers new plugins so the index is republished under the readers' feet. Afterwards every
   counter must agree with what the registry says. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"

#include <pthread.h>

#define THREADS 8
#define BASE_PLUGINS 64
#define EXTRA_PLUGINS 2000
#define ITERATIONS 4000

typedef struct counters {
    int starts, stops; /* callback calls; only touched under the plugin's own lock */
} counters;

static counters per_plugin[BASE_PLUGINS];
static plg_registry *reg;
static int lookup_failures, wrong_results, start_ok, stop_ok, unexpected_codes;
static int writer_done;

static plg_result t_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)config;
    *instance = plg_plugin_user_data(self);
    return PLG_OK;
}
static plg_result t_start(plg_plugin *self, void *instance)
{
    (void)self;
    ((counters *)instance)->starts++;
    return PLG_OK;
}
static plg_result t_stop(plg_plugin *self, void *instance)
{
    (void)self;
    ((counters *)instance)->stops++;
    return PLG_OK;
}
static void t_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}
static plg_health_status t_health(plg_plugin *self, void *instance, char *msg, size_t size)
{
    (void)self;
    (void)instance;
    snprintf(msg, size, "fine");
    return PLG_HEALTH_OK;
}

static plg_descriptor make_desc(const char *type, const char *name, void *user)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = type;
    d.name = name;
    d.version = "1.0.0";
    d.init = t_init;
    d.start = t_start;
    d.stop = t_stop;
    d.shutdown = t_shutdown;
    d.health = t_health;
    d.user_data = user;
    return d;
}

static void *writer(void *arg)
{
    int i;
    char name[32];
    (void)arg;
    for (i = 0; i < EXTRA_PLUGINS; i++) {
        plg_descriptor d;
        snprintf(name, sizeof name, "extra-%d", i);
        d = make_desc(i % 2 ? "worker" : "extra", name, NULL);
        if (plg_register(reg, &d, NULL) != PLG_OK)
            __atomic_add_fetch(&unexpected_codes, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    int i;
    char name[32];
    plg_plugin *list[16];
    for (i = 0; i < ITERATIONS; i++) {
        plg_plugin *p = NULL;
        int k;
        plg_result r;
        seed = seed * 1103515245u + 12345u;
        k = (int)((seed >> 8) % BASE_PLUGINS);
        snprintf(name, sizeof name, "w%d", k);
        if (plg_find(reg, "worker", name, &p) != PLG_OK) {
            __atomic_add_fetch(&lookup_failures, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (strcmp(plg_plugin_name(p), name) != 0 || plg_plugin_user_data(p) != &per_plugin[k])
            __atomic_add_fetch(&wrong_results, 1, __ATOMIC_RELAXED);
        switch ((seed >> 20) % 4) {
        case 0:
            r = plg_start(reg, p);
            if (r == PLG_OK)
                __atomic_add_fetch(&start_ok, 1, __ATOMIC_RELAXED);
            else if (r != PLG_ERR_INVALID_STATE)
                __atomic_add_fetch(&unexpected_codes, 1, __ATOMIC_RELAXED);
            break;
        case 1:
            r = plg_stop(reg, p);
            if (r == PLG_OK)
                __atomic_add_fetch(&stop_ok, 1, __ATOMIC_RELAXED);
            else if (r != PLG_ERR_INVALID_STATE)
                __atomic_add_fetch(&unexpected_codes, 1, __ATOMIC_RELAXED);
            break;
        case 2: {
            plg_health_report h;
            if (plg_health(reg, p, &h) != PLG_OK || h.status != PLG_HEALTH_OK)
                __atomic_add_fetch(&unexpected_codes, 1, __ATOMIC_RELAXED);
            break;
        }
        default: {
            /* All priorities are equal, so w0, registered first, always leads the list. */
            size_t n = plg_list_type(reg, "worker", list, 16);
            if (n < BASE_PLUGINS || strcmp(plg_plugin_name(list[0]), "w0") != 0)
                __atomic_add_fetch(&wrong_results, 1, __ATOMIC_RELAXED);
            break;
        }
        }
        if (plg_find(reg, "missing", name, &p) != PLG_ERR_NOT_FOUND)
            __atomic_add_fetch(&wrong_results, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

TEST(eight_threads_look_up_and_drive_lifecycles_while_a_writer_registers)
{
    pthread_t threads[THREADS], w;
    char name[32];
    int i, total_starts = 0, total_stops = 0, started_now = 0;
    plg_plugin *p;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    for (i = 0; i < BASE_PLUGINS; i++) {
        plg_descriptor d;
        snprintf(name, sizeof name, "w%d", i);
        d = make_desc("worker", name, &per_plugin[i]);
        CHECK_INT(plg_register(reg, &d, &p), PLG_OK);
        CHECK_INT(plg_init(reg, p, NULL), PLG_OK);
    }
    CHECK(pthread_create(&w, NULL, writer, NULL) == 0);
    for (i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(w, NULL);

    CHECK_INT(lookup_failures, 0);
    CHECK_INT(wrong_results, 0);
    CHECK_INT(unexpected_codes, 0);
    CHECK(__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE));
    CHECK_INT(plg_plugin_count(reg), BASE_PLUGINS + EXTRA_PLUGINS);
    for (i = 0; i < BASE_PLUGINS; i++) {
        snprintf(name, sizeof name, "w%d", i);
        CHECK_INT(plg_find(reg, "worker", name, &p), PLG_OK);
        total_starts += per_plugin[i].starts;
        total_stops += per_plugin[i].stops;
        /* Each plugin alternates start/stop: its start count equals its stop count, plus one
           if it is started now. */
        if (plg_plugin_state(p) == PLG_STATE_STARTED) {
            started_now++;
            CHECK_INT(per_plugin[i].starts, per_plugin[i].stops + 1);
        } else {
            CHECK_INT(plg_plugin_state(p), PLG_STATE_STOPPED * (per_plugin[i].starts > 0) +
                                               PLG_STATE_INITIALIZED * (per_plugin[i].starts == 0));
            CHECK_INT(per_plugin[i].starts, per_plugin[i].stops);
        }
    }
    CHECK_INT(total_starts, start_ok);
    CHECK_INT(total_stops, stop_ok);
    CHECK(start_ok > 0 && stop_ok > 0);
    for (i = 0; i < EXTRA_PLUGINS; i++) {
        snprintf(name, sizeof name, "extra-%d", i);
        if (plg_find(reg, i % 2 ? "worker" : "extra", name, &p) != PLG_OK)
            lookup_failures++;
    }
    CHECK_INT(lookup_failures, 0);
    printf("    %d starts, %d stops, %d started at the end\n", total_starts, total_stops,
           started_now);
    plg_registry_destroy(reg);
}

int main(void)
{
    RUN(eight_threads_look_up_and_drive_lifecycles_while_a_writer_registers);
    return test_summary();
}
