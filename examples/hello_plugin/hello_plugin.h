/* hello_plugin.h - the smallest useful plugin for plugin_registry.h: a configuration schema, a
   lifecycle that owns state, a health check and an interface. Copy it as a starting point.

   In one file: #define HELLO_PLUGIN_IMPLEMENTATION before including it. Then either register it
   explicitly (hello_explicit.c) or let it register itself (hello_auto.c). */
#ifndef HELLO_PLUGIN_H
#define HELLO_PLUGIN_H

#include "../../plugin_registry.h"

/* The interface hosts call: id, ABI version, and the vtable struct that starts with its size. */
#define HELLO_INTERFACE_ID "hello.v1"
#define HELLO_INTERFACE_ABI 1u
typedef struct hello_vtable {
    uint32_t abi_version;
    uint32_t struct_size;
    /* Writes the greeting for name into buf (snprintf-like); returns the length it needed. */
    int (*greet)(void *instance, const char *name, char *buf, size_t size);
} hello_vtable;

extern const plg_descriptor hello_descriptor;

#endif

#if defined(HELLO_PLUGIN_IMPLEMENTATION) && !defined(HELLO_PLUGIN_IMPLEMENTED)
#define HELLO_PLUGIN_IMPLEMENTED
#include "../../plugin_registry.h"
#include <stdio.h>
#include <string.h>

typedef struct hello_state {
    char greeting[64];
    int64_t patience_ms;
    long greeted;
    int started;
} hello_state;

static plg_result hello_init(plg_plugin *self, const plg_config *config, void **instance)
{
    /* Allocate through the registry, so its accounting (and the contract suite) sees leaks. */
    hello_state *s = (hello_state *)plg_alloc(self, sizeof *s);
    if (s == NULL) {
        plg_plugin_set_error(self, "out of memory for %lu bytes of state", (unsigned long)sizeof *s);
        return PLG_ERR_NO_MEMORY;
    }
    memset(s, 0, sizeof *s);
    snprintf(s->greeting, sizeof s->greeting, "%s", plg_config_string(config, "greeting"));
    s->patience_ms = plg_config_duration_ms(config, "patience");
    *instance = s;
    return PLG_OK;
}

static plg_result hello_start(plg_plugin *self, void *instance)
{
    hello_state *s = (hello_state *)instance;
    s->started = 1;
    plg_log(self, PLG_LOG_INFO, "ready to say \"%s\" (patience %lld ms)", s->greeting,
            (long long)s->patience_ms);
    return PLG_OK;
}

static plg_result hello_stop(plg_plugin *self, void *instance)
{
    hello_state *s = (hello_state *)instance;
    (void)self;
    s->started = 0;
    return PLG_OK;
}

static void hello_shutdown(plg_plugin *self, void *instance)
{
    plg_free(self, instance, sizeof(hello_state));
}

static plg_health_status hello_health(plg_plugin *self, void *instance, char *message,
                                      size_t size)
{
    hello_state *s = (hello_state *)instance;
    (void)self;
    snprintf(message, size, "%ld greetings so far", s->greeted);
    return s->started ? PLG_HEALTH_OK : PLG_HEALTH_DEGRADED;
}

static int hello_greet(void *instance, const char *name, char *buf, size_t size)
{
    hello_state *s = (hello_state *)instance;
    s->greeted++;
    return snprintf(buf, size, "%s, %s!", s->greeting, name ? name : "stranger");
}

static const hello_vtable hello_vt = {HELLO_INTERFACE_ABI, sizeof(hello_vtable), hello_greet};

static const plg_config_key hello_schema[] = {
    {.key = "greeting", .type = PLG_CONFIG_STRING, .default_value = "Hello", .min = "1",
     .max = "63", .description = "what to say before the name"},
    {.key = "patience", .type = PLG_CONFIG_DURATION, .default_value = "2s", .min = "100ms",
     .max = "1m", .description = "how long a greeting may take"},
};

static const char *const hello_capabilities[] = {"greeting", "example"};

const plg_descriptor hello_descriptor = {
    .abi_version = PLG_DESCRIPTOR_ABI_VERSION,
    .struct_size = sizeof(plg_descriptor),
    .type = "greeter",
    .name = "hello",
    .version = "1.0.0",
    .description = "greets people by name",
    .capabilities = hello_capabilities,
    .capability_count = 2,
    .host_api_range = "^1.0.0",
    .config_schema = hello_schema,
    .config_key_count = 2,
    .init = hello_init,
    .start = hello_start,
    .stop = hello_stop,
    .shutdown = hello_shutdown,
    .health = hello_health,
    .provides = {HELLO_INTERFACE_ID, HELLO_INTERFACE_ABI, sizeof(hello_vtable), &hello_vt},
};
#endif
