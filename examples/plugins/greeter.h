/* greeter.h - example plugin for plugin_registry.h: a greeter with a full configuration schema,
   a lifecycle that owns memory, a health callback and a small vtable interface.

   USAGE
   =====
   In exactly ONE C or C++ file, after the registry's implementation (or in a file that links
   with it):

       #define GREETER_IMPLEMENTATION
       #include "examples/plugins/greeter.h"

   Every other file includes the header plainly. Including it twice, before and after the define,
   is harmless. Then:

       plg_registry *reg;
       plg_plugin *p;
       const greeter_v1 *vt;
       char buf[64];
       plg_registry_create(NULL, &reg);
       greeter_declare_interface(reg);      // optional: lets the registry check the vtable
       greeter_register(reg);
       plg_find(reg, "greeter", "greeter", &p);
       plg_init(reg, p, "{\"sender\":\"Ada\",\"style\":\"polite\"}");
       plg_start(reg, p);
       vt = (const greeter_v1 *)plg_plugin_vtable(p, GREETER_V1_ID, 1, NULL);
       vt->greet(plg_plugin_instance(p), "Grace", buf, sizeof buf);
       // buf: "Good day, Grace. Kind regards, Ada."
       plg_registry_destroy(reg);

   CONFIGURATION (type "greeter", name "greeter")
   =============
   sender    string, required, 1..32 bytes       who signs the greeting
   style     string, "plain" | "polite" | "loud"   default "plain"
   repeat    integer, 1..5                        default 1: how many times the greeting is said
   excited   boolean                              default false: end with "!" instead of "."
   timeout   duration, 1ms..10s                   default "250ms" (kept, reported by health)
   api_key   string, secret                       default "greeter-demo-key"; never printed
   degraded  boolean                              default false: health reports DEGRADED
   fail_on   string, "none" | "init" | "start"    default "none": make that callback fail, so
                                                  that a host can test its failure paths

   INTERFACE "greeter.v1" (GREETER_V1_ID), ABI version 1, struct greeter_v1 (which starts with
   its own abi_version and struct_size, the same values as in the descriptor's plg_interface):
       size_t greet(void *instance, const char *name, char *buf, size_t size)
   writes the greeting like snprintf (always NUL-terminated when size > 0) and returns the length
   it needed. `instance` is plg_plugin_instance() of an initialized plugin. The call is thread-safe
   (it counts greetings with an atomic add).

   COMPILE-TIME OPTIONS
   ====================
   GREETER_API     decoration of the public functions (default: extern; static with
                   GREETER_STATIC).

   THREAD SAFETY: greeter_descriptor() returns a static const descriptor and may be called from
   any thread; greeter_register() is as thread-safe as plg_register().

   LICENCE: MIT, see the end of the file.
*/
#ifndef GREETER_PLUGIN_H
#define GREETER_PLUGIN_H

#include "../../plugin_registry.h"

#define GREETER_VERSION_STRING "1.2.0"
#define GREETER_V1_ID "greeter.v1"
#define GREETER_V1_ABI_VERSION 1u

#ifndef GREETER_API
#if defined(GREETER_STATIC)
#if defined(__GNUC__)
#define GREETER_API static __attribute__((unused))
#else
#define GREETER_API static
#endif
#else
#define GREETER_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The vtable. Methods are only ever appended, with a bump of GREETER_V1_ABI_VERSION. */
typedef struct greeter_v1 {
    uint32_t abi_version; /* GREETER_V1_ABI_VERSION the plugin was compiled against */
    uint32_t struct_size; /* sizeof(greeter_v1) the plugin was compiled against */
    size_t (*greet)(void *instance, const char *name, char *buf, size_t size);
} greeter_v1;

/* The plugin's descriptor (static, never NULL). */
GREETER_API const plg_descriptor *greeter_descriptor(void);
/* plg_register(reg, greeter_descriptor(), NULL). */
GREETER_API plg_result greeter_register(plg_registry *reg);
/* Declares "greeter.v1" to reg, so that plg_register checks a greeter's vtable (ABI range, struct
   size, greet set). Optional; PLG_ERR_DUPLICATE if already declared. */
GREETER_API plg_result greeter_declare_interface(plg_registry *reg);

#ifdef __cplusplus
}
#endif

#endif /* GREETER_PLUGIN_H */

#if defined(GREETER_IMPLEMENTATION) && !defined(GREETER_IMPLEMENTED)
#define GREETER_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../../plugin_registry.h"

#include <stdio.h>
#include <string.h>

#if defined(GREETER_STATIC)
#define GREETERI_DEF static
#else
#define GREETERI_DEF
#endif

typedef struct greeteri_state {
    int style;               /* 0 plain, 1 polite, 2 loud */
    int64_t repeat;
    int excited;
    int64_t timeout_ms;
    int degraded;
    int fail_on_start;
    int started;
    char *sender;            /* plg_alloc'd copy, sender_size bytes */
    size_t sender_size;
    unsigned long greetings; /* atomic */
} greeteri_state;

static const char *const greeteri_styles[] = {"plain", "polite", "loud"};
static const char *const greeteri_fail_modes[] = {"none", "init", "start"};

static const plg_config_key greeteri_schema[] = {
    /* key, type, flags, default, min, max, allowed, allowed_count, description */
    {"sender", PLG_CONFIG_STRING, PLG_KEY_REQUIRED, NULL, "1", "32", NULL, 0,
     "who signs the greeting"},
    {"style", PLG_CONFIG_STRING, 0, "plain", NULL, NULL, greeteri_styles, 3,
     "plain, polite or loud"},
    {"repeat", PLG_CONFIG_INTEGER, 0, "1", "1", "5", NULL, 0, "how many times to greet"},
    {"excited", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0, "end with an exclamation"},
    {"timeout", PLG_CONFIG_DURATION, 0, "250ms", "1ms", "10s", NULL, 0, "greeting timeout"},
    {"api_key", PLG_CONFIG_STRING, PLG_KEY_SECRET, "greeter-demo-key", NULL, NULL, NULL, 0,
     "key of the greeting service (secret)"},
    {"degraded", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0,
     "report DEGRADED health (for testing hosts)"},
    {"fail_on", PLG_CONFIG_STRING, 0, "none", NULL, NULL, greeteri_fail_modes, 3,
     "make init or start fail (for testing hosts)"},
};

static const char *const greeteri_capabilities[] = {"greeting", "i18n-ready"};

static int greeteri_index(const char *value, const char *const *list, int count)
{
    int i;
    for (i = 0; value != NULL && i < count; i++)
        if (strcmp(value, list[i]) == 0)
            return i;
    return 0;
}

static void greeteri_free(plg_plugin *self, greeteri_state *st)
{
    if (st == NULL)
        return;
    plg_free(self, st->sender, st->sender_size);
    plg_free(self, st, sizeof *st);
}

static plg_result greeteri_init(plg_plugin *self, const plg_config *config, void **instance)
{
    greeteri_state *st;
    const char *sender = plg_config_string(config, "sender");
    size_t len = sender != NULL ? strlen(sender) : 0;
    st = (greeteri_state *)plg_alloc(self, sizeof *st);
    if (st == NULL)
        return PLG_ERR_NO_MEMORY;
    memset(st, 0, sizeof *st);
    st->sender_size = len + 1;
    st->sender = (char *)plg_alloc(self, st->sender_size);
    if (st->sender == NULL) {
        plg_free(self, st, sizeof *st);
        return PLG_ERR_NO_MEMORY;
    }
    memcpy(st->sender, sender != NULL ? sender : "", len + 1);
    st->style = greeteri_index(plg_config_string(config, "style"), greeteri_styles, 3);
    st->repeat = plg_config_integer(config, "repeat");
    st->excited = plg_config_boolean(config, "excited");
    st->timeout_ms = plg_config_duration_ms(config, "timeout");
    st->degraded = plg_config_boolean(config, "degraded");
    switch (greeteri_index(plg_config_string(config, "fail_on"), greeteri_fail_modes, 3)) {
    case 1:
        /* A failing init frees what it allocated: the registry does not call shutdown. */
        greeteri_free(self, st);
        plg_plugin_set_error(self, "fail_on is \"init\"");
        return PLG_ERR_PLUGIN_FAILED;
    case 2:
        st->fail_on_start = 1;
        break;
    default:
        break;
    }
    plg_log(self, PLG_LOG_INFO, "initialized: sender %s, style %s, timeout %lld ms", st->sender,
            greeteri_styles[st->style], (long long)st->timeout_ms);
    *instance = st;
    return PLG_OK;
}

static plg_result greeteri_start(plg_plugin *self, void *instance)
{
    greeteri_state *st = (greeteri_state *)instance;
    if (st->fail_on_start) {
        plg_plugin_set_error(self, "fail_on is \"start\"");
        return PLG_ERR_PLUGIN_FAILED;
    }
    st->started = 1;
    return PLG_OK;
}

static plg_result greeteri_stop(plg_plugin *self, void *instance)
{
    (void)self;
    ((greeteri_state *)instance)->started = 0;
    return PLG_OK;
}

static void greeteri_shutdown(plg_plugin *self, void *instance)
{
    greeteri_free(self, (greeteri_state *)instance);
}

static plg_health_status greeteri_health(plg_plugin *self, void *instance, char *message,
                                         size_t message_size)
{
    const greeteri_state *st = (const greeteri_state *)instance;
    unsigned long n = __atomic_load_n(&st->greetings, __ATOMIC_RELAXED);
    (void)self;
    if (st->degraded) {
        snprintf(message, message_size, "degraded by configuration; %lu greetings", n);
        return PLG_HEALTH_DEGRADED;
    }
    snprintf(message, message_size, "%s; %lu greetings; timeout %lld ms",
             st->started ? "greeting" : "idle", n, (long long)st->timeout_ms);
    return PLG_HEALTH_OK;
}

static size_t greeteri_greet(void *instance, const char *name, char *buf, size_t size)
{
    greeteri_state *st = (greeteri_state *)instance;
    static const char *const openers[] = {"Hello", "Good day", "HEY"};
    size_t used = 0;
    int64_t i;
    char one[160];
    if (st == NULL)
        return 0;
    if (name == NULL)
        name = "world";
    if (buf != NULL && size > 0)
        buf[0] = '\0';
    for (i = 0; i < st->repeat; i++) {
        int n;
        if (st->style == 1)
            n = snprintf(one, sizeof one, "%sGood day, %.60s%s Kind regards, %s.",
                         i > 0 ? " " : "", name, st->excited ? "!" : ".", st->sender);
        else
            n = snprintf(one, sizeof one, "%s%s, %.60s%s", i > 0 ? " " : "", openers[st->style],
                         name, st->excited || st->style == 2 ? "!" : ".");
        if (n < 0)
            break;
        if (buf != NULL && used < size)
            snprintf(buf + used, size - used, "%s", one);
        used += (size_t)n;
    }
    __atomic_add_fetch(&st->greetings, 1ul, __ATOMIC_RELAXED);
    return used;
}

static const greeter_v1 greeteri_vtable = {GREETER_V1_ABI_VERSION, (uint32_t)sizeof(greeter_v1),
                                           greeteri_greet};

static const plg_descriptor greeteri_descriptor = {
    PLG_DESCRIPTOR_ABI_VERSION,
    (uint32_t)sizeof(plg_descriptor),
    "greeter",                     /* type */
    "greeter",                     /* name */
    GREETER_VERSION_STRING,        /* version */
    "says hello in one of three styles",
    greeteri_capabilities,
    sizeof greeteri_capabilities / sizeof greeteri_capabilities[0],
    "^1.0.0",                      /* host API range */
    NULL,                          /* dependencies */
    0,
    greeteri_schema,
    sizeof greeteri_schema / sizeof greeteri_schema[0],
    0,                             /* priority */
    greeteri_init,
    greeteri_start,
    greeteri_stop,
    greeteri_shutdown,
    greeteri_health,
    {GREETER_V1_ID, GREETER_V1_ABI_VERSION, (uint32_t)sizeof(greeter_v1), &greeteri_vtable},
    NULL,                          /* user_data */
};

static plg_result greeteri_validate(const plg_interface *iface, char *message,
                                    size_t message_size, void *user)
{
    const greeter_v1 *vt = (const greeter_v1 *)iface->vtable;
    (void)user;
    if (vt->greet == NULL) {
        snprintf(message, message_size, "greeter.v1 ABI %u requires greet",
                 (unsigned)iface->abi_version);
        return PLG_ERR_MISSING_CALLBACK;
    }
    return PLG_OK;
}

static const uint32_t greeteri_sizes[] = {(uint32_t)sizeof(greeter_v1)};

GREETERI_DEF const plg_descriptor *greeter_descriptor(void)
{
    return &greeteri_descriptor;
}

GREETERI_DEF plg_result greeter_register(plg_registry *reg)
{
    return plg_register(reg, &greeteri_descriptor, NULL);
}

GREETERI_DEF plg_result greeter_declare_interface(plg_registry *reg)
{
    plg_interface_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.id = GREETER_V1_ID;
    spec.min_abi_version = 1;
    spec.max_abi_version = GREETER_V1_ABI_VERSION;
    spec.struct_sizes = greeteri_sizes;
    spec.validate = greeteri_validate;
    return plg_declare_interface(reg, &spec);
}

#endif /* GREETER_IMPLEMENTATION */

/*
   LICENCE
   =======
   MIT License. Copyright (c) 2026 the plugin_registry.h authors.

   Permission is hereby granted, free of charge, to any person obtaining a copy of this software
   and associated documentation files (the "Software"), to deal in the Software without
   restriction, including without limitation the rights to use, copy, modify, merge, publish,
   distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
   Software is furnished to do so, subject to the following conditions:

   The above copyright notice and this permission notice shall be included in all copies or
   substantial portions of the Software.

   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
   BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
   NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
   DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
