/* A plugin library for the loading and reload tests, built at run time by tests/dynamic/dyn_build.h
   in several variants chosen with -D:
     DYN_VERSION="1.0.0" DYN_VERSION_NUM=1   version text and the number `call` returns
     DYN_NAME="counter"                      plugin name (type is "dyn")
     DYN_HOST_RANGE=">=2.0.0"                host API range the descriptor requires
     DYN_NO_ENTRY                            no entry function
     DYN_OVERRIDE_FIELD=f DYN_OVERRIDE_VALUE=v   the entry returns the real ABI block with field f
                                             set to v (wrong magic, wrong ABI version, ...)
     DYN_REJECT_ME                           every callback aborts: the library must be rejected
                                             before any of them runs
     DYN_FAIL_INIT / DYN_FAIL_START / DYN_UNHEALTHY   a broken build for reload rollback
     DYN_TWO                                 exports a second plugin, dyn/extra
     DYN_SPIN=n                              busy-work iterations inside `call` (widens races)
   Callbacks use the host's functions (plg_config_integer, plg_plugin_set_error), so the host
   must export them (-rdynamic). */
#include "plugin_registry.h"
#include "dyn_iface.h"

#include <stdlib.h>
#include <string.h>

#ifndef DYN_VERSION
#define DYN_VERSION "1.0.0"
#endif
#ifndef DYN_VERSION_NUM
#define DYN_VERSION_NUM 1
#endif
#ifndef DYN_NAME
#define DYN_NAME "counter"
#endif
#ifndef DYN_SPIN
#define DYN_SPIN 0
#endif

#define DYN_LIVE 0x11fe11feu
#define DYN_DEAD 0xdeaddeadu

typedef struct dyn_inst {
    unsigned magic;
    long state;
    long calls; /* atomic */
} dyn_inst;

#ifdef DYN_REJECT_ME
#define DYN_MUST_NOT_RUN() abort()
#else
#define DYN_MUST_NOT_RUN() ((void)0)
#endif

static plg_result dyn_init(plg_plugin *self, const plg_config *config, void **instance)
{
#ifndef DYN_FAIL_INIT
    dyn_inst *d;
#endif
    DYN_MUST_NOT_RUN();
#ifdef DYN_FAIL_INIT
    (void)config;
    (void)instance;
    plg_plugin_set_error(self, "build %s refuses to initialise", DYN_VERSION);
    return PLG_ERR_PLUGIN_FAILED;
#else
    (void)self;
    d = (dyn_inst *)malloc(sizeof *d);
    if (d == NULL)
        return PLG_ERR_NO_MEMORY;
    d->magic = DYN_LIVE;
    d->state = (long)plg_config_integer(config, "start");
    d->calls = 0;
    *instance = d;
    return PLG_OK;
#endif
}

static plg_result dyn_start(plg_plugin *self, void *instance)
{
    (void)instance;
    DYN_MUST_NOT_RUN();
#ifdef DYN_FAIL_START
    plg_plugin_set_error(self, "build %s cannot start: port in use", DYN_VERSION);
    return PLG_ERR_PLUGIN_FAILED;
#else
    (void)self;
    return PLG_OK;
#endif
}

static void dyn_shutdown(plg_plugin *self, void *instance)
{
    dyn_inst *d = (dyn_inst *)instance;
    (void)self;
    DYN_MUST_NOT_RUN();
    d->magic = DYN_DEAD;
    free(d);
}

static plg_health_status dyn_health(plg_plugin *self, void *instance, char *message, size_t size)
{
    (void)self;
    (void)instance;
    DYN_MUST_NOT_RUN();
#ifdef DYN_UNHEALTHY
    if (size > 0) {
        strncpy(message, "database unreachable", size - 1);
        message[size - 1] = '\0';
    }
    return PLG_HEALTH_UNHEALTHY;
#else
    (void)message;
    (void)size;
    return PLG_HEALTH_OK;
#endif
}

static volatile unsigned dyn_spin = DYN_SPIN;

static int dyn_call(void *instance)
{
    dyn_inst *d = (dyn_inst *)instance;
    volatile unsigned spin = 0;
    unsigned i;
    if (d->magic != DYN_LIVE)
        return -1;
    for (i = 0; i < dyn_spin; i++)
        spin = spin + i;
    __atomic_fetch_add(&d->calls, 1, __ATOMIC_RELAXED);
    if (d->magic != DYN_LIVE)
        return -1;
    return DYN_VERSION_NUM;
}

static long dyn_get_state(void *instance)
{
    return __atomic_load_n(&((dyn_inst *)instance)->state, __ATOMIC_RELAXED);
}

static void dyn_set_state(void *instance, long state)
{
    __atomic_store_n(&((dyn_inst *)instance)->state, state, __ATOMIC_RELAXED);
}

static long dyn_calls(void *instance)
{
    return __atomic_load_n(&((dyn_inst *)instance)->calls, __ATOMIC_RELAXED);
}

static const dyn_vtable dyn_vt = {dyn_call, dyn_get_state, dyn_set_state, dyn_calls};

static const plg_config_key dyn_schema[] = {
    {"start", PLG_CONFIG_INTEGER, 0, "0", NULL, NULL, NULL, 0, "initial state"},
};

static const plg_descriptor dyn_desc = {
    PLG_DESCRIPTOR_ABI_VERSION, sizeof(plg_descriptor), "dyn", DYN_NAME, DYN_VERSION,
    "test plugin loaded from a shared object", NULL, 0,
#ifdef DYN_HOST_RANGE
    DYN_HOST_RANGE,
#else
    NULL,
#endif
    NULL, 0, dyn_schema, 1, 0, dyn_init, dyn_start, NULL, dyn_shutdown, dyn_health,
    {DYN_IFACE_ID, DYN_IFACE_ABI, sizeof(dyn_vtable), &dyn_vt}, NULL};

#ifdef DYN_TWO
static const plg_descriptor dyn_extra = {
    PLG_DESCRIPTOR_ABI_VERSION, sizeof(plg_descriptor), "dyn", "extra", DYN_VERSION,
    "second plugin of the library", NULL, 0, NULL, NULL, 0, dyn_schema, 1, 0, dyn_init,
    dyn_start, NULL, dyn_shutdown, dyn_health,
    {DYN_IFACE_ID, DYN_IFACE_ABI, sizeof(dyn_vtable), &dyn_vt}, NULL};
#define DYN_EXPORTS &dyn_desc, &dyn_extra
#else
#define DYN_EXPORTS &dyn_desc
#endif

#if defined(DYN_NO_ENTRY)
/* Nothing exported: the host must refuse the library. */
const plg_descriptor *dyn_unused(void);
const plg_descriptor *dyn_unused(void) { return &dyn_desc; }
#elif defined(DYN_OVERRIDE_FIELD)
/* The real block under another name, and the entry returning a doctored copy of it. */
#undef PLG_LIBRARY_ENTRY
#define PLG_LIBRARY_ENTRY dyn_real_entry
PLG_EXPORT_PLUGINS(DYN_EXPORTS);
PLG_LIBRARY_LINKAGE PLG_LIBRARY_VISIBILITY const plg_library_abi *plg_library_entry_v1(void);
PLG_LIBRARY_LINKAGE PLG_LIBRARY_VISIBILITY const plg_library_abi *plg_library_entry_v1(void)
{
    static plg_library_abi abi;
    abi = *dyn_real_entry();
    abi.DYN_OVERRIDE_FIELD = DYN_OVERRIDE_VALUE;
    return &abi;
}
#else
PLG_EXPORT_PLUGINS(DYN_EXPORTS);
#endif
