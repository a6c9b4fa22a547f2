/* Out-of-process isolation (plugin_isolation.h): a plugin library run in a child process with
   resource limits, called over a socketpair. The good case, then every way a plugin misbehaves:
   it crashes in init, segfaults on its third call (restarted with backoff, then marked failed),
   hangs past the call timeout, allocates without bound (under an address-space limit, and under
   the host's resident-memory watch), burns CPU past its limit, opens files past its limit,
   aborts, exits. The host must get an error each time and carry on. This program is its own
   helper: main() starts with plgiso_child_main. Two threads share one isolated plugin at the end,
   so `make sanitize` runs this under TSan too. Linked with -rdynamic (the child's plugin calls
   plg_* functions of this program). */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PLUGIN_ISOLATION_IMPLEMENTATION
#include "plugin_isolation.h"
#include "../test.h"
#include "dyn_build.h"
#include "plugins/iso_methods.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

/* Sanitizer runtimes reserve terabytes of address space: RLIMIT_AS cannot apply to them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ISO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                       \
    __has_feature(memory_sanitizer)
#define ISO_SANITIZED 1
#endif
#endif
#ifndef ISO_SANITIZED
#define ISO_SANITIZED 0
#endif

static char p_iso[1200], p_dyn[1200], p_magic[1200];
static int built;

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long host_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

static plgiso_desc base_desc(char *why, size_t why_size)
{
    plgiso_desc d;
    memset(&d, 0, sizeof d);
    d.helper_path = "/proc/self/exe";
    d.library_path = p_iso;
    d.call_timeout_ms = 5000;
    d.backoff_initial_ms = 20;
    d.backoff_max_ms = 200;
    d.max_restarts = 3;
    d.restart_window_ms = 60000;
    d.open_message = why;
    d.open_message_size = why_size;
    return d;
}

/* Opens, inits and starts; NULL (with the reason printed) on failure. */
static plgiso_plugin *open_started(plg_registry *reg, const plgiso_desc *d)
{
    plgiso_plugin *iso = NULL;
    if (plgiso_open(reg, d, &iso) != PLGISO_OK) {
        printf("    open: %s\n", d->open_message);
        return NULL;
    }
    if (plg_init(reg, plgiso_node(iso), NULL) != PLG_OK ||
        plg_start(reg, plgiso_node(iso)) != PLG_OK) {
        printf("    lifecycle: %s\n", plg_errmsg(reg));
        plgiso_close(iso);
        return NULL;
    }
    return iso;
}

static long child_pid(plgiso_plugin *iso)
{
    plgiso_stats st;
    plgiso_stats_get(iso, &st);
    return st.pid;
}

TEST(plugins_are_built)
{
    CHECK(built);
    CHECK(dyn_host_exports_symbols());
}

TEST(a_good_plugin_answers_like_in_process)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[64];
    size_t out_len = 0, big = 100;
    plgiso_desc d = base_desc(why, sizeof why);
    plg_lease lease;
    plg_health_report rep;
    plgiso_stats st;
    long pid;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    CHECK_STR(plg_plugin_type(plgiso_node(iso)), "iso");
    CHECK_STR(plg_plugin_name(plgiso_node(iso)), "misbehaving");
    CHECK_STR(plg_plugin_version(plgiso_node(iso)), "1.0.0");
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "hello", 5, out, sizeof out, &out_len), PLGISO_OK);
    CHECK_INT(out_len, 5);
    CHECK(memcmp(out, "hello", 5) == 0);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, NULL, 0, out, sizeof out, &out_len), PLGISO_OK);
    CHECK_INT(out_len, 0);
    /* The proxy provides the same interface as the plugin: callers need not know. */
    CHECK_INT(plg_acquire(reg, "iso", "misbehaving", &lease), PLG_OK);
    CHECK(lease.vtable != NULL);
    if (lease.vtable != NULL) {
        const plgiso_vtable *vt = (const plgiso_vtable *)lease.vtable;
        CHECK_INT(vt->call(lease.instance, ISO_M_ECHO, "abc", 3, out, sizeof out, &out_len), PLG_OK);
        CHECK_INT(out_len, 3);
        CHECK_INT(vt->call(lease.instance, ISO_M_FAIL, NULL, 0, out, sizeof out, &out_len),
                  PLG_ERR_CONFIG_INVALID);
    }
    plg_release(&lease);
    /* The plugin's own errors come back as PLGISO_ERR_PLUGIN with its code and text. */
    CHECK_INT(plgiso_call(iso, ISO_M_FAIL, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_PLUGIN);
    CHECK_CONTAINS(plgiso_errmsg(iso), "PLG_ERR_CONFIG_INVALID");
    CHECK_CONTAINS(plgiso_errmsg(iso), "the plugin says no");
    CHECK_INT(plgiso_call(iso, 999, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_PLUGIN);
    CHECK_CONTAINS(plgiso_errmsg(iso), "unknown method 999");
    /* Sizes. */
    CHECK_INT(plgiso_call(iso, ISO_M_BIG, &big, sizeof big, out, sizeof out, &out_len),
              PLGISO_ERR_TOO_LARGE);
    CHECK_INT(out_len, 100);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len), PLGISO_OK);
    CHECK_INT(plgiso_call(iso, PLGISO_METHOD_MAX + 1, NULL, 0, out, sizeof out, &out_len),
              PLGISO_ERR_INVALID_ARGUMENT);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, NULL, 5, out, sizeof out, &out_len),
              PLGISO_ERR_INVALID_ARGUMENT);
    {
        size_t n = (1u << 20) + 1;
        char *in = (char *)calloc(1, n);
        CHECK_INT(plgiso_call(iso, ISO_M_ECHO, in, n, out, sizeof out, &out_len),
                  PLGISO_ERR_TOO_LARGE);
        CHECK_CONTAINS(plgiso_errmsg(iso), "max_message_bytes");
        free(in);
    }
    CHECK_INT(plg_health(reg, plgiso_node(iso), &rep), PLG_OK);
    CHECK_INT(rep.status, PLG_HEALTH_OK);
    CHECK_CONTAINS(rep.message, "crash-on-third calls");
    pid = child_pid(iso);
    CHECK(pid > 0 && pid != (long)getpid());
    CHECK_INT(plgiso_stats_get(iso, &st), PLGISO_OK);
    CHECK_INT(st.spawns, 1);
    CHECK_INT(st.crashes, 0);
    /* stop and start again keep the child */
    CHECK_INT(plg_stop(reg, plgiso_node(iso)), PLG_OK);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len),
              PLGISO_ERR_INVALID_STATE);
    CHECK_INT(plg_start(reg, plgiso_node(iso)), PLG_OK);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len), PLGISO_OK);
    CHECK_INT(child_pid(iso), pid);
    plgiso_close(iso);
    CHECK_INT(kill((pid_t)pid, 0), -1); /* the child is gone (and reaped) */
    plg_registry_destroy(reg);
}

TEST(a_plugin_that_crashes_in_init_fails_its_init_only)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso = NULL;
    char why[512], reason[512];
    plgiso_desc d = base_desc(why, sizeof why);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d.config_json = "{\"crash_in_init\": true}";
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_OK);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    CHECK_INT(plg_init(reg, plgiso_node(iso), NULL), PLG_ERR_PLUGIN_FAILED);
    CHECK_INT(plg_plugin_state(plgiso_node(iso)), PLG_STATE_FAILED);
    plg_plugin_failure(plgiso_node(iso), reason, sizeof reason);
    CHECK_CONTAINS(reason, "init in the child failed");
    CHECK_CONTAINS(reason, "the child died");
    CHECK_CONTAINS(reason, "SIGSEGV");
    plgiso_close(iso);

    /* an init that returns an error is reported with the plugin's own words */
    d.config_json = "{\"fail_init\": true}";
    iso = NULL;
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_OK);
    if (iso != NULL) {
        CHECK_INT(plg_init(reg, plgiso_node(iso), NULL), PLG_ERR_PLUGIN_FAILED);
        plg_plugin_failure(plgiso_node(iso), reason, sizeof reason);
        CHECK_CONTAINS(reason, "fail_init is set");
        plgiso_close(iso);
    }
    plg_registry_destroy(reg);
}

TEST(a_segfault_on_the_third_call_restarts_with_backoff_then_fails)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[64], reason[512];
    size_t out_len = 0;
    plgiso_desc d = base_desc(why, sizeof why);
    plgiso_stats st;
    plg_lease lease;
    int crash, i;
    long pid, last_pid = 0;
    uint32_t last_backoff = 0;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    /* max_restarts 3: crashes 1 to 3 are restarted, the 4th marks it failed */
    for (crash = 1; crash <= 4; crash++) {
        pid = child_pid(iso);
        if (crash > 1)
            CHECK(pid != last_pid);
        last_pid = pid;
        for (i = 1; i <= 2; i++) {
            char expect[32];
            snprintf(expect, sizeof expect, "call %d", i);
            CHECK_INT(plgiso_call(iso, ISO_M_CRASH_ON_THIRD, NULL, 0, out, sizeof out - 1,
                                  &out_len), PLGISO_OK);
            out[out_len] = '\0';
            CHECK_STR(out, expect);
        }
        CHECK_INT(plgiso_call(iso, ISO_M_CRASH_ON_THIRD, NULL, 0, out, sizeof out, &out_len),
                  PLGISO_ERR_CRASHED);
        CHECK_CONTAINS(plgiso_errmsg(iso), "method 2: the child died");
        CHECK_CONTAINS(plgiso_errmsg(iso), "killed by signal 11 (SIGSEGV)");
        CHECK_INT(plgiso_stats_get(iso, &st), PLGISO_OK);
        CHECK_INT(st.crashes, (uint32_t)crash);
        if (crash == 4)
            break;
        CHECK_INT(st.failed, 0);
        CHECK(st.next_restart_ms > last_backoff / 2); /* 20, 40, 80 ms: doubling */
        last_backoff = st.next_restart_ms;
        /* during the backoff: refused at once, with the reason */
        CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len),
                  PLGISO_ERR_UNAVAILABLE);
        CHECK_CONTAINS(plgiso_errmsg(iso), "restarting in");
        CHECK_CONTAINS(plgiso_errmsg(iso), "the child died");
        CHECK_INT(plg_acquire(reg, "iso", "misbehaving", &lease), PLG_OK); /* still started */
        plg_release(&lease);
        sleep_ms((long)st.next_restart_ms + 5);
        CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len), PLGISO_OK);
        CHECK_INT(plgiso_call(iso, ISO_M_PID, NULL, 0, out, sizeof out - 1, &out_len), PLGISO_OK);
    }
    CHECK_INT(plgiso_stats_get(iso, &st), PLGISO_OK);
    CHECK_INT(st.failed, 1);
    CHECK_INT(st.spawns, 4);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "x", 1, out, sizeof out, &out_len), PLGISO_ERR_FAILED);
    CHECK_CONTAINS(plgiso_errmsg(iso), "crashed 4 times within 60000 ms");
    /* the registry knows: the proxy is failed with the reason, and cannot be acquired */
    CHECK_INT(plg_plugin_state(plgiso_node(iso)), PLG_STATE_FAILED);
    plg_plugin_failure(plgiso_node(iso), reason, sizeof reason);
    CHECK_CONTAINS(reason, "crashed 4 times");
    CHECK_INT(plg_acquire(reg, "iso", "misbehaving", &lease), PLG_ERR_INVALID_STATE);
    {
        plg_health_report rep;
        CHECK_INT(plg_health(reg, plgiso_node(iso), &rep), PLG_OK);
        CHECK_INT(rep.status, PLG_HEALTH_UNHEALTHY);
    }
    plgiso_close(iso);
    plg_registry_destroy(reg);
}

TEST(a_hang_is_cut_at_the_call_timeout)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[64];
    size_t out_len = 0;
    plgiso_desc d = base_desc(why, sizeof why);
    plgiso_stats st;
    long t0, took;
    int ms = 50;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d.call_timeout_ms = 300;
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    CHECK_INT(plgiso_call(iso, ISO_M_SLEEP_MS, &ms, sizeof ms, out, sizeof out, &out_len), PLGISO_OK);
    t0 = now_ms();
    CHECK_INT(plgiso_call(iso, ISO_M_HANG, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_TIMEOUT);
    took = now_ms() - t0;
    CHECK(took >= 290 && took < 2000);
    CHECK_CONTAINS(plgiso_errmsg(iso), "no reply in time; the child was killed");
    CHECK_INT(plgiso_stats_get(iso, &st), PLGISO_OK);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.pid, 0);
    sleep_ms((long)st.next_restart_ms + 5);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "ok", 2, out, sizeof out, &out_len), PLGISO_OK);
    plgiso_close(iso);
    plg_registry_destroy(reg);
}

static void check_unbounded_allocation(int use_rlimit)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[128];
    size_t out_len = 0;
    plgiso_desc d = base_desc(why, sizeof why);
    plgiso_result r;
    long rss0 = host_rss_kib();
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d.call_timeout_ms = 20000;
    if (use_rlimit)
        d.limits.address_space_bytes = 256u << 20;
    else
        d.limits.rss_bytes = 128u << 20;
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    r = plgiso_call(iso, ISO_M_ALLOC_FOREVER, NULL, 0, out, sizeof out - 1, &out_len);
    if (use_rlimit) {
        /* malloc fails in the child; this plugin reports it (another would crash: also fine) */
        CHECK(r == PLGISO_ERR_PLUGIN || r == PLGISO_ERR_CRASHED);
        if (r == PLGISO_ERR_PLUGIN)
            CHECK_CONTAINS(plgiso_errmsg(iso), "out of memory after");
    } else {
        CHECK_INT(r, PLGISO_ERR_LIMIT);
        CHECK_CONTAINS(plgiso_errmsg(iso), "more than its memory limit of 134217728 bytes");
    }
    printf("    %s\n", plgiso_errmsg(iso));
    CHECK(host_rss_kib() - rss0 < 64 * 1024); /* the host did not pay for it */
    plgiso_close(iso);
    plg_registry_destroy(reg);
}

TEST(unbounded_allocation_stops_at_the_address_space_limit)
{
    if (ISO_SANITIZED) {
        printf("    skipped: a sanitizer runtime cannot run under RLIMIT_AS (see the next case)\n");
        return;
    }
    check_unbounded_allocation(1);
}

TEST(unbounded_allocation_is_killed_at_the_resident_memory_limit)
{
    check_unbounded_allocation(0);
}

TEST(cpu_and_open_file_limits_hold)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[64];
    size_t out_len = 0;
    plgiso_desc d = base_desc(why, sizeof why);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d.limits.cpu_seconds = 1;
    d.limits.open_files = 16;
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    CHECK_INT(plgiso_call(iso, ISO_M_OPEN_FILES, NULL, 0, out, sizeof out - 1, &out_len), PLGISO_OK);
    out[out_len] = '\0';
    printf("    opened %s files under open_files = 16\n", out);
    CHECK(atoi(out) > 0 && atoi(out) < 16);
    CHECK_INT(plgiso_call(iso, ISO_M_SPIN, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_LIMIT);
    CHECK_CONTAINS(plgiso_errmsg(iso), "SIGXCPU");
    plgiso_close(iso);
    plg_registry_destroy(reg);
}

TEST(abort_exit_and_a_kill_between_calls_are_survived)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso;
    char why[512], out[64];
    size_t out_len = 0;
    plgiso_desc d = base_desc(why, sizeof why);
    plgiso_stats st;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d.max_restarts = 10;
    iso = open_started(reg, &d);
    CHECK(iso != NULL);
    if (iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    CHECK_INT(plgiso_call(iso, ISO_M_ABORT, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_CRASHED);
    CHECK_CONTAINS(plgiso_errmsg(iso), "SIGABRT");
    plgiso_stats_get(iso, &st);
    sleep_ms((long)st.next_restart_ms + 5);
    CHECK_INT(plgiso_call(iso, ISO_M_EXIT, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_CRASHED);
    CHECK_CONTAINS(plgiso_errmsg(iso), "exited with status 3");
    plgiso_stats_get(iso, &st);
    sleep_ms((long)st.next_restart_ms + 5);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "a", 1, out, sizeof out, &out_len), PLGISO_OK);
    /* killed from outside while idle: noticed at the next call */
    CHECK_INT(kill((pid_t)child_pid(iso), SIGKILL), 0);
    sleep_ms(20);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "a", 1, out, sizeof out, &out_len), PLGISO_ERR_UNAVAILABLE);
    CHECK_CONTAINS(plgiso_errmsg(iso), "between calls: child");
    CHECK_CONTAINS(plgiso_errmsg(iso), "SIGKILL");
    plgiso_stats_get(iso, &st);
    sleep_ms((long)st.next_restart_ms + 5);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "a", 1, out, sizeof out, &out_len), PLGISO_OK);
    plgiso_stats_get(iso, &st);
    CHECK_INT(st.crashes, 3);
    CHECK_INT(st.spawns, 4);
    /* stop and start while the child is dead: stopped is stopped, start brings a new child */
    CHECK_INT(plgiso_call(iso, ISO_M_EXIT, NULL, 0, out, sizeof out, &out_len), PLGISO_ERR_CRASHED);
    CHECK_INT(plg_stop(reg, plgiso_node(iso)), PLG_OK);
    CHECK_INT(plg_start(reg, plgiso_node(iso)), PLG_OK);
    CHECK_INT(plgiso_call(iso, ISO_M_ECHO, "a", 1, out, sizeof out, &out_len), PLGISO_OK);
    plgiso_stats_get(iso, &st);
    CHECK_INT(st.spawns, 5);
    plgiso_close(iso);
    plg_registry_destroy(reg);
}

TEST(open_refuses_bad_setups_with_reasons)
{
    plg_registry *reg = NULL;
    plgiso_plugin *iso = (plgiso_plugin *)&reg, *first = NULL;
    char why[512];
    plgiso_desc d = base_desc(why, sizeof why);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(plgiso_open(NULL, &d, &iso), PLGISO_ERR_INVALID_ARGUMENT);
    CHECK(iso == NULL);
    d.helper_path = NULL;
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "helper_path is required");
    d.helper_path = "/nonexistent/helper";
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_SPAWN);
    CHECK_CONTAINS(why, "cannot run the helper /nonexistent/helper");
    d.helper_path = "/bin/true"; /* not a helper: exits at once */
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_CRASHED);
    CHECK_CONTAINS(why, "starting the child: the child died");
    d.helper_path = "/proc/self/exe";
    d.library_path = p_magic;
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_LOAD);
    CHECK_CONTAINS(why, "magic is 0x00000007 in the library");
    d.library_path = p_dyn;
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_LOAD);
    CHECK_CONTAINS(why, "does not provide the interface plgiso.call");
    d.library_path = p_iso;
    d.name = "nope";
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_LOAD);
    CHECK_CONTAINS(why, "exports no plugin *");
    d.name = "misbehaving";
    CHECK_INT(plgiso_open(reg, &d, &first), PLGISO_OK);
    CHECK_INT(plgiso_open(reg, &d, &iso), PLGISO_ERR_REGISTRY);
    CHECK_CONTAINS(why, "already registered");
    CHECK_INT(plg_plugin_count(reg), 1);
    plgiso_close(first); /* never initialised: the child is ended anyway */
    CHECK_INT(plg_plugin_count(reg), 0);
    plgiso_close(NULL);
    CHECK_STR(plgiso_errmsg(NULL), "no isolated plugin (NULL)");
    CHECK_CONTAINS(plgiso_result_string(PLGISO_ERR_TIMEOUT), "PLGISO_ERR_TIMEOUT");
    CHECK_CONTAINS(plgiso_result_string((plgiso_result)999), "unknown");
    CHECK_STR(plgiso_version(), PLGISO_VERSION_STRING);
    {
        plgiso_desc r = plgiso_resolved(NULL);
        CHECK_INT(r.call_timeout_ms, 5000);
        CHECK_INT(r.max_message_bytes, 1u << 20);
        CHECK_STR(r.config_json, "{}");
    }
    plg_registry_destroy(reg);
}

static plgiso_plugin *shared_iso;
static int thread_failures;

static void *echo_caller(void *arg)
{
    int i, t = (int)(intptr_t)arg;
    for (i = 0; i < 300; i++) {
        char in[32], out[32];
        size_t out_len = 0;
        int n = snprintf(in, sizeof in, "t%d-%d", t, i);
        if (plgiso_call(shared_iso, ISO_M_ECHO, in, (size_t)n, out, sizeof out, &out_len) !=
                PLGISO_OK ||
            out_len != (size_t)n || memcmp(in, out, out_len) != 0)
            __atomic_fetch_add(&thread_failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

TEST(threads_share_one_isolated_plugin)
{
    plg_registry *reg = NULL;
    char why[512];
    plgiso_desc d = base_desc(why, sizeof why);
    pthread_t th[2];
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    shared_iso = open_started(reg, &d);
    CHECK(shared_iso != NULL);
    if (shared_iso == NULL) {
        plg_registry_destroy(reg);
        return;
    }
    thread_failures = 0;
    pthread_create(&th[0], NULL, echo_caller, (void *)(intptr_t)0);
    pthread_create(&th[1], NULL, echo_caller, (void *)(intptr_t)1);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    CHECK_INT(thread_failures, 0);
    plgiso_close(shared_iso);
    plg_registry_destroy(reg);
}

/* The children inherit the environment. A sanitizer runtime in a child would catch the plugin's
   deliberate segfaults, print a report that reads like one of the host's, and exit with status 1;
   leave those signals to the kernel instead, so that the host sees (and the tests check) the
   real SIGSEGV. The host's own runtime read its options at start-up and is not affected. */
static void children_keep_default_signals(void)
{
    static const char *const names[] = {"ASAN_OPTIONS", "TSAN_OPTIONS"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        char value[1024];
        const char *old = getenv(names[i]);
        snprintf(value, sizeof value, "%s%shandle_segv=0:handle_sigbus=0:handle_sigfpe=0",
                 old != NULL ? old : "", old != NULL && old[0] != '\0' ? ":" : "");
        setenv(names[i], value, 1);
    }
}

int main(int argc, char **argv)
{
    plgiso_child_main(argc, argv); /* in a child: serves the host, then exits */
    children_keep_default_signals();
    built = dyn_build("iso.so", "iso_plugin.c", "") == 0 &&
            dyn_build("dyn.so", "dyn_plugin.c", "") == 0 &&
            dyn_build("magic.so", "dyn_plugin.c",
                      "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=magic -DDYN_OVERRIDE_VALUE=7") == 0;
    dyn_lib("iso.so", p_iso, sizeof p_iso);
    dyn_lib("dyn.so", p_dyn, sizeof p_dyn);
    dyn_lib("magic.so", p_magic, sizeof p_magic);
    RUN(plugins_are_built);
    if (built) {
        RUN(a_good_plugin_answers_like_in_process);
        RUN(a_plugin_that_crashes_in_init_fails_its_init_only);
        RUN(a_segfault_on_the_third_call_restarts_with_backoff_then_fails);
        RUN(a_hang_is_cut_at_the_call_timeout);
        RUN(unbounded_allocation_stops_at_the_address_space_limit);
        RUN(unbounded_allocation_is_killed_at_the_resident_memory_limit);
        RUN(cpu_and_open_file_limits_hold);
        RUN(abort_exit_and_a_kill_between_calls_are_survived);
        RUN(open_refuses_bad_setups_with_reasons);
        RUN(threads_share_one_isolated_plugin);
    }
    dyn_cleanup();
    return test_summary();
}
