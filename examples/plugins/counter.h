/* counter.h - the smallest useful plugin for plugin_registry.h: a process metric counter with
   only the two required callbacks (init and shutdown). No configuration schema, no start or
   stop, no health callback, no interface, no dependencies.

   USAGE
   =====
   In exactly ONE C or C++ file (with the registry's implementation there or linked in):

       #define COUNTER_IMPLEMENTATION
       #include "examples/plugins/counter.h"

   Every other file includes the header plainly; including it twice is harmless. Then:

       plg_plugin *p;
       counter_register(reg);
       plg_find(reg, "metrics", "counter", &p);
       plg_init(reg, p, NULL);         // no schema: "{}" (unknown keys warn, or fail if strict)
       counter_add(p, 3);
       counter_value(p);               // 3
       plg_shutdown(reg, p);

   The registry treats the missing callbacks as documented: start and stop succeed without doing
   anything, and health reports OK while the plugin runs.

   COMPILE-TIME OPTIONS: COUNTER_API (decoration of the public functions; default extern, static
   with COUNTER_STATIC).

   THREAD SAFETY: counter_add and counter_value are atomic and may be called from any thread
   while the plugin is initialized (between plg_init and plg_shutdown).

   LICENCE: MIT, see the end of the file.
*/
#ifndef COUNTER_PLUGIN_H
#define COUNTER_PLUGIN_H

#include "../../plugin_registry.h"

#define COUNTER_VERSION_STRING "0.3.1"

#ifndef COUNTER_API
#if defined(COUNTER_STATIC)
#if defined(__GNUC__)
#define COUNTER_API static __attribute__((unused))
#else
#define COUNTER_API static
#endif
#else
#define COUNTER_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin's descriptor (static, never NULL). */
COUNTER_API const plg_descriptor *counter_descriptor(void);
/* plg_register(reg, counter_descriptor(), NULL). */
COUNTER_API plg_result counter_register(plg_registry *reg);
/* Adds n to an initialized counter and returns the new value (0 if not initialized). */
COUNTER_API uint64_t counter_add(plg_plugin *counter, uint64_t n);
/* The current value (0 if not initialized). */
COUNTER_API uint64_t counter_value(const plg_plugin *counter);

#ifdef __cplusplus
}
#endif

#endif /* COUNTER_PLUGIN_H */

#if defined(COUNTER_IMPLEMENTATION) && !defined(COUNTER_IMPLEMENTED)
#define COUNTER_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../../plugin_registry.h"

#if defined(COUNTER_STATIC)
#define COUNTERI_DEF static
#else
#define COUNTERI_DEF
#endif

typedef struct counteri_state {
    uint64_t value; /* atomic */
} counteri_state;

static plg_result counteri_init(plg_plugin *self, const plg_config *config, void **instance)
{
    counteri_state *st = (counteri_state *)plg_alloc(self, sizeof *st);
    (void)config;
    if (st == NULL)
        return PLG_ERR_NO_MEMORY;
    st->value = 0;
    *instance = st;
    return PLG_OK;
}

static void counteri_shutdown(plg_plugin *self, void *instance)
{
    plg_free(self, instance, sizeof(counteri_state));
}

static const plg_descriptor counteri_descriptor = {
    PLG_DESCRIPTOR_ABI_VERSION,
    (uint32_t)sizeof(plg_descriptor),
    "metrics",               /* type */
    "counter",               /* name */
    COUNTER_VERSION_STRING,  /* version */
    "counts events",         /* description */
    NULL, 0,                 /* capabilities */
    NULL,                    /* host API range: any */
    NULL, 0,                 /* dependencies */
    NULL, 0,                 /* configuration schema */
    0,                       /* priority */
    counteri_init,
    NULL,                    /* start */
    NULL,                    /* stop */
    counteri_shutdown,
    NULL,                    /* health */
    {NULL, 0, 0, NULL},      /* provides no interface */
    NULL,                    /* user_data */
};

COUNTERI_DEF const plg_descriptor *counter_descriptor(void)
{
    return &counteri_descriptor;
}

COUNTERI_DEF plg_result counter_register(plg_registry *reg)
{
    return plg_register(reg, &counteri_descriptor, NULL);
}

COUNTERI_DEF uint64_t counter_add(plg_plugin *counter, uint64_t n)
{
    counteri_state *st = (counteri_state *)plg_plugin_instance(counter);
    return st != NULL ? __atomic_add_fetch(&st->value, n, __ATOMIC_RELAXED) : 0;
}

COUNTERI_DEF uint64_t counter_value(const plg_plugin *counter)
{
    const counteri_state *st = (const counteri_state *)plg_plugin_instance(counter);
    return st != NULL ? __atomic_load_n(&st->value, __ATOMIC_RELAXED) : 0;
}

#endif /* COUNTER_IMPLEMENTATION */

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
