/* A plugin library for the isolation tests and benchmarks: it provides the plgiso_vtable and
   misbehaves on request. Methods (ISO_M_* in iso_methods.h). Configuration: "crash_in_init"
   (boolean) makes init dereference a bad pointer, "fail_init" makes it return an error. */
#include "plugin_isolation.h"
#include "iso_methods.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct iso_inst {
    unsigned long third_calls; /* calls of ISO_M_CRASH_ON_THIRD */
} iso_inst;

static void iso_segfault(void)
{
    volatile int *bad = (volatile int *)(uintptr_t)16; /* an unmapped page */
    *bad = 1;
}

static plg_result iso_text(void *out, size_t cap, size_t *out_len, plg_result code,
                           const char *text)
{
    size_t n = strlen(text);
    if (n > cap)
        n = cap;
    memcpy(out, text, n);
    *out_len = n;
    return code;
}

static plg_result iso_call(void *instance, uint32_t method, const void *in, size_t in_len,
                           void *out, size_t cap, size_t *out_len)
{
    iso_inst *st = (iso_inst *)instance;
    char text[128];
    *out_len = 0;
    switch (method) {
    case ISO_M_ECHO:
        if (in_len > cap)
            return iso_text(out, cap, out_len, PLG_ERR_LIMIT, "echo: input too large");
        if (in_len > 0)
            memcpy(out, in, in_len);
        *out_len = in_len;
        return PLG_OK;
    case ISO_M_CRASH_ON_THIRD:
        if (++st->third_calls == 3)
            iso_segfault();
        snprintf(text, sizeof text, "call %lu", st->third_calls);
        return iso_text(out, cap, out_len, PLG_OK, text);
    case ISO_M_HANG:
        for (;;)
            (void)poll(NULL, 0, 1000);
    case ISO_M_SPIN: {
        volatile unsigned long x = 0;
        for (;;)
            x = x + 1;
    }
    case ISO_M_ALLOC_FOREVER: {
        unsigned long mib = 0;
        for (;;) {
            char *p = (char *)malloc(1u << 20);
            if (p == NULL)
                break;
            memset(p, 0x5a, 1u << 20); /* make it resident */
            mib++;
        }
        snprintf(text, sizeof text, "out of memory after %lu MiB", mib);
        return iso_text(out, cap, out_len, PLG_ERR_NO_MEMORY, text);
    }
    case ISO_M_OPEN_FILES: {
        int fds[4096];
        int n = 0, i;
        while (n < 4096) {
            int fd = open("/dev/null", O_RDONLY);
            if (fd < 0)
                break;
            fds[n++] = fd;
        }
        for (i = 0; i < n; i++)
            close(fds[i]);
        snprintf(text, sizeof text, "%d", n);
        return iso_text(out, cap, out_len, PLG_OK, text);
    }
    case ISO_M_ABORT:
        abort();
    case ISO_M_EXIT:
        exit(3);
    case ISO_M_PID:
        snprintf(text, sizeof text, "%ld", (long)getpid());
        return iso_text(out, cap, out_len, PLG_OK, text);
    case ISO_M_SLEEP_MS: {
        int ms = 0;
        if (in_len >= sizeof ms)
            memcpy(&ms, in, sizeof ms);
        (void)poll(NULL, 0, ms);
        return PLG_OK;
    }
    case ISO_M_BIG: {
        size_t n = 0;
        if (in_len >= sizeof n)
            memcpy(&n, in, sizeof n);
        if (n > cap)
            return iso_text(out, cap, out_len, PLG_ERR_LIMIT, "big: more than the capacity");
        memset(out, 'b', n);
        *out_len = n;
        return PLG_OK;
    }
    case ISO_M_FAIL:
        return iso_text(out, cap, out_len, PLG_ERR_CONFIG_INVALID, "the plugin says no");
    default:
        snprintf(text, sizeof text, "unknown method %lu", (unsigned long)method);
        return iso_text(out, cap, out_len, PLG_ERR_NOT_FOUND, text);
    }
}

static plg_result iso_init(plg_plugin *self, const plg_config *config, void **instance)
{
    iso_inst *st;
    if (plg_config_boolean(config, "crash_in_init"))
        iso_segfault();
    if (plg_config_boolean(config, "fail_init")) {
        plg_plugin_set_error(self, "fail_init is set");
        return PLG_ERR_PLUGIN_FAILED;
    }
    st = (iso_inst *)calloc(1, sizeof *st);
    if (st == NULL)
        return PLG_ERR_NO_MEMORY;
    *instance = st;
    return PLG_OK;
}

static void iso_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    free(instance);
}

static plg_health_status iso_health(plg_plugin *self, void *instance, char *message, size_t size)
{
    (void)self;
    snprintf(message, size, "%lu crash-on-third calls", ((iso_inst *)instance)->third_calls);
    return PLG_HEALTH_OK;
}

static const plgiso_vtable iso_vtable = {iso_call};

static const plg_config_key iso_schema[] = {
    {"crash_in_init", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0, NULL},
    {"fail_init", PLG_CONFIG_BOOLEAN, 0, "false", NULL, NULL, NULL, 0, NULL},
};

static const plg_descriptor iso_desc = {
    PLG_DESCRIPTOR_ABI_VERSION, sizeof(plg_descriptor), "iso", "misbehaving", "1.0.0",
    "does what it is asked, including crashing", NULL, 0, NULL, NULL, 0, iso_schema, 2, 0,
    iso_init, NULL, NULL, iso_shutdown, iso_health,
    {PLGISO_INTERFACE_ID, PLGISO_VTABLE_ABI_VERSION, sizeof(plgiso_vtable), &iso_vtable}, NULL};

PLG_EXPORT_PLUGINS(&iso_desc);
