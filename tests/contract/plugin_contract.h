/* plugin_contract.h - the plugin contract suite for plugin_registry.h, stb-style single header.

   One call checks that a plugin descriptor honours the plugin contract: metadata, configuration
   schema, configuration validation, every legal and illegal lifecycle transition, health,
   the interface it provides, and that it frees everything it allocates.

   USAGE
   =====
   In exactly ONE C or C++ file (the registry's implementation may be in the same file or linked
   in):

       #define PLUGIN_CONTRACT_IMPLEMENTATION
       #include "tests/contract/plugin_contract.h"

   Every other file includes the header plainly. Including it again, before or after the define,
   is harmless. Link with -pthread. A complete program:

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #include "plugin_registry.h"
       #define PLUGIN_CONTRACT_IMPLEMENTATION
       #include "tests/contract/plugin_contract.h"
       #include "my_plugin.h"
       #include <string.h>

       int main(void)
       {
           plg_contract_options opt;
           memset(&opt, 0, sizeof opt);                 // zero means default for every field
           opt.valid_config = "{\"addr\":\"localhost:6379\"}";
           return plg_contract_run(my_plugin_descriptor(), &opt, NULL) == 0 ? 0 : 1;
       }

   It prints one line per case and a summary:

       PASS PC-LIFE-02 init start stop shutdown
       FAIL PC-LIFE-01 init shutdown: leak: 24 bytes in 1 block ... (block sizes: 24)
       NOT SUPPORTED PC-IFACE-01 interface is complete and returned by plg_plugin_vtable: ...
       plugin contract greeter/greeter: 35 passed, 1 failed, 0 not supported

   and returns the number of failed cases. Pass a plg_contract_report to get the counts and,
   with an array of your own, every case's outcome and message.

   HOW IT WORKS
   ============
   Every case builds a FRESH registry (plg_registry_create) whose allocator is a counting
   allocator and whose logger is the suite's, calls options.register_dependencies, starts those
   plugins (plg_start_all), registers the plugin, drives it, destroys the registry and then checks
   that every byte allocated through the registry allocator was freed, with the size it was
   allocated with. Plugins that allocate with plg_alloc/plg_free are covered by this leak check;
   memory from plain malloc is not: run the suite under AddressSanitizer/LeakSanitizer
   (-fsanitize=address) to cover it too. Leaked blocks are reclaimed after being reported, so a
   leaking plugin does not make the suite's own process leak.

   The suite registers a COPY of the descriptor in which init, start, stop, shutdown and health
   (each one that is set) are replaced by the suite's trampolines. A trampoline counts the call,
   checks what the registry handed over, and forwards to the plugin's own callback. The originals
   live in the suite's per-registry context, in a table keyed by the plugin handle (the context is
   the user pointer of the registry's allocator); the plugin's user_data is left untouched. A
   plugin therefore sees the trampolines in plg_plugin_descriptor(self); nothing else differs.

   Plugins registered by options.register_dependencies live in the same registry, so their leaks
   count too (a correct dependency is assumed). There is no per-case watchdog: a callback that
   blocks hangs the run, so run the suite under a time limit (timeout(1), ctest TIMEOUT).

   Every log line, every plg_errmsg text the suite reads and every health message is searched for
   the values of secret configuration keys (their defaults, the values in valid_config, and a
   marker the suite injects). Values shorter than 4 bytes are not searched (too likely to occur by
   chance). A secret found anywhere fails the case it was found in.

   OUTCOMES
   ========
   PASS            every check of the case held.
   FAIL            a check did not hold: the message says what was expected, what came back, and
                   the registry's plg_errmsg. Every failed check of a case is reported.
   NOT SUPPORTED   the plugin does not declare what the case exercises (no interface, no schema,
                   no secret key, no key with a default, no way to make init or start fail).
                   Absent optional metadata (capabilities, dependencies, host range) and absent
                   optional callbacks (start, stop, health) are not "not supported": the registry's
                   documented behaviour for them is checked instead.

   CASES (stable ids; list for descriptor ABI 1, PLG_CONTRACT_CASES_ABI)
   =====
   PC-META-01    the descriptor registers in a fresh registry: ABI version and struct size,
                 init and shutdown set, state registered, found by plg_find, the registry's copy
                 has the same type, name, version and user_data, no instance or config yet
   PC-META-02    type and name are valid names (1..PLG_NAME_MAX of [A-Za-z0-9_.-], first a letter
                 or digit)
   PC-META-03    the version parses as semver 2.0.0
   PC-META-04    the description is set and not blank
   PC-META-05    capabilities are valid names, unique, and found by plg_plugin_has_capability and
                 plg_list_capability
   PC-META-06    the host API range parses and is satisfied by options.host_api_version
   PC-META-07    dependencies are well-formed (valid names, ranges parse, no self-dependency, no
                 duplicates) and every required one is present (register_dependencies), satisfies
                 its range and is started
   PC-META-08    registering the same (type, name) twice is PLG_ERR_DUPLICATE; the first stays
   PC-SCHEMA-01  the configuration schema is well-formed (plg_schema_check)
   PC-SCHEMA-02  every default parses in its key's type and is applied when the key is absent
   PC-SCHEMA-03  secrets never appear in plg_config_format output (shown as "<redacted>"), in log
                 lines, in plg_errmsg texts or in health messages, through a whole lifecycle with
                 a marker value and a rejected configuration carrying the marker
   PC-CONFIG-01  the valid configuration is accepted; init receives a validated configuration,
                 equal to an independent validation of the same text; plg_plugin_config returns
                 it while initialized and NULL after shutdown
   PC-CONFIG-02  every invalid configuration is rejected with a PLG_ERR_CONFIG_* code, the plugin
                 stays registered and its init is not called; then the valid one still works
   PC-CONFIG-03  an unknown key is rejected in a strict registry; the valid configuration is
                 accepted there
   PC-LIFE-01    init, shutdown
   PC-LIFE-02    init, start, stop, shutdown
   PC-LIFE-03    init, start, stop, start, stop, shutdown
   PC-LIFE-04    stop without start (registered, initialized, stopped) is PLG_ERR_INVALID_STATE and
                 changes nothing
   PC-LIFE-05    a second start is PLG_ERR_INVALID_STATE; start ran once
   PC-LIFE-06    a second shutdown is PLG_ERR_INVALID_STATE; shutdown ran exactly once
   PC-LIFE-07    every other illegal transition (start or shutdown before init, init twice,
                 shutdown or init while started, anything after shutdown) is rejected and calls
                 no callback
   PC-LIFE-08    after shutdown and plg_unregister the plugin can be registered again and run a
                 second lifecycle (no process-global state left behind)
   PC-LIFE-09    two registries run the plugin at the same time, independently
   PC-HEALTH-01  health while initialized: PLG_OK, a valid status, a NUL-terminated message
   PC-HEALTH-02  health while started (the same)
   PC-HEALTH-03  health after stop (the same)
   PC-HEALTH-04  health of a registered or shut-down plugin is UNHEALTHY without calling it
                 Every health case also checks the plugin's own callback, which the registry would
                 otherwise hide: the raw status is OK, DEGRADED or UNHEALTHY, the message is
                 NUL-terminated within message_size, and nothing is written past message_size.
   PC-ALL-01     plg_shutdown_all from registered: shut down, no callback
   PC-ALL-02     plg_shutdown_all from initialized: shutdown ran once
   PC-ALL-03     plg_shutdown_all from started: stop then shutdown, once each
   PC-ALL-04     plg_shutdown_all from stopped: shutdown ran once
   PC-ALL-05     plg_set_config, plg_start_all, plg_stop_all, plg_start_all, plg_shutdown_all
   PC-ALL-06     plg_registry_destroy while started stops and shuts the plugin down, once each
   PC-IFACE-01   the interface has an id, an ABI version, a struct size and a vtable, and
                 plg_plugin_vtable returns that vtable (NULL for a newer ABI or another id)
   PC-FAIL-01    init failing (options.failing_init_config): PLG_ERR_PLUGIN_FAILED, state failed
                 with a reason, UNHEALTHY, start rejected, shutdown without the shutdown callback,
                 nothing leaked
   PC-FAIL-02    start failing (options.failing_start_config): PLG_ERR_PLUGIN_FAILED, state
                 failed, shutdown runs the shutdown callback exactly once, nothing leaked
   Every case also fails on a leak, on a plg_free with the wrong size, and on a secret found.

   Ids are never renumbered or reused. A later descriptor ABI adds cases with new ids; a case
   that no longer applies is retired, its id not given to another.

   GENERATED INVALID CONFIGURATIONS (options.invalid_configs NULL)
   ================================
   From the keys given in valid_config (re-serialised) and the schema: for each required key,
   the configuration without it; for each key, a value of the wrong type (string: true,
   integer: 1.5, number, boolean and duration: "plg-contract"); for each bound, a value just
   outside it (strings: a length one past; integers and durations: one past; numbers: slightly
   past); for each string key with allowed values, a value not allowed; malformed JSON (a
   truncated object, text that is not JSON, an array). PC-CONFIG-03 adds the key
   "plg_contract_unknown_key" under strict mode.

   THREAD SAFETY
   =============
   plg_contract_run keeps all its state in the call (no globals), so several runs may proceed in
   parallel threads. The plugin is driven from the calling thread.

   COMPILE-TIME OPTIONS
   ====================
   PLG_CONTRACT_API     decoration of the public functions (default extern; define it yourself for
                        a DLL export/import)
   PLG_CONTRACT_STATIC  make every function static

   LICENCE: see the end of the file.
*/
#ifndef PLUGIN_CONTRACT_H
#define PLUGIN_CONTRACT_H

#include <stddef.h>
#include <stdio.h>

#include "../../plugin_registry.h"

#define PLG_CONTRACT_VERSION_MAJOR 0
#define PLG_CONTRACT_VERSION_MINOR 1
#define PLG_CONTRACT_VERSION_PATCH 0
#define PLG_CONTRACT_VERSION_STRING "0.1.0"

/* The case list above is complete for descriptor ABI versions up to this one. */
#define PLG_CONTRACT_CASES_ABI 1u

/* Size of one case's message, NUL included (longer messages are truncated). */
#define PLG_CONTRACT_MESSAGE_MAX 1024

#ifndef PLG_CONTRACT_API
#if defined(PLG_CONTRACT_STATIC)
#if defined(__GNUC__)
#define PLG_CONTRACT_API static __attribute__((unused))
#else
#define PLG_CONTRACT_API static
#endif
#else
#define PLG_CONTRACT_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum plg_contract_outcome {
    PLG_CONTRACT_PASS = 0,
    PLG_CONTRACT_FAIL = 1,
    PLG_CONTRACT_NOT_SUPPORTED = 2
} plg_contract_outcome;

/* Called on every fresh registry before the plugin is registered: register the plugin's
   dependencies there (and their configuration with plg_set_config), declare the interfaces the
   host understands (plg_declare_interface), and so on. The suite then starts every plugin
   registered so far with plg_start_all. Return PLG_OK, or an error that fails the case. */
typedef plg_result (*plg_contract_prepare_fn)(plg_registry *reg, void *user);

/* Zero means default for every field. */
typedef struct plg_contract_options {
    const char *valid_config;           /* a configuration the plugin accepts; default "{}" */
    const char *const *invalid_configs; /* configurations the registry must reject before init;
                                           NULL (or a count of 0): generated from the schema */
    size_t invalid_config_count;
    int invalid_configs_strict;         /* 1: run invalid_configs in a strict registry; default 0 */
    int add_generated_invalid;          /* 1: with invalid_configs, run the generated set too */
    const char *host_api_version;       /* host API of every test registry; default "1.0.0" */
    FILE *out;                          /* where the report goes; default stdout */
    int quiet;                          /* 1: print nothing */
    const char *filter;                 /* run only the cases whose id starts with it; NULL: all */
    plg_contract_prepare_fn register_dependencies; /* default: nothing to prepare */
    void *user;                         /* handed to register_dependencies */
    const char *failing_init_config;    /* valid config with which init fails; NULL: PC-FAIL-01 is
                                           not supported */
    const char *failing_start_config;   /* valid config with which start fails; NULL: PC-FAIL-02
                                           is not supported */
} plg_contract_options;

typedef struct plg_contract_case_result {
    const char *id;                     /* static, e.g. "PC-LIFE-02" */
    const char *title;                  /* static, e.g. "init start stop shutdown" */
    plg_contract_outcome outcome;
    char message[PLG_CONTRACT_MESSAGE_MAX]; /* FAIL: every failed check; NOT SUPPORTED: why */
} plg_contract_case_result;

typedef struct plg_contract_report {
    size_t passed, failed, not_supported;
    size_t case_count;                  /* cases run (after the filter) */
    plg_contract_case_result *results;  /* set by the caller, may be NULL: receives the first
                                           result_capacity cases in run order */
    size_t result_capacity;
} plg_contract_report;

/* Runs every case (or those the filter selects) against desc. options and report may be NULL.
   The counts in report are reset first; results and result_capacity are kept. Returns the number
   of failed cases. */
PLG_CONTRACT_API int plg_contract_run(const plg_descriptor *desc,
                                      const plg_contract_options *options,
                                      plg_contract_report *report);
/* The options in force: every default filled in (a zeroed struct is fine; NULL too). */
PLG_CONTRACT_API plg_contract_options plg_contract_resolved(const plg_contract_options *options);
/* The case list: ids and titles, in run order. NULL past the end. */
PLG_CONTRACT_API size_t plg_contract_case_count(void);
PLG_CONTRACT_API const char *plg_contract_case_id(size_t index);
PLG_CONTRACT_API const char *plg_contract_case_title(size_t index);
/* "PASS", "FAIL", "NOT SUPPORTED". */
PLG_CONTRACT_API const char *plg_contract_outcome_name(plg_contract_outcome outcome);
/* The stored result of a case by id, or NULL (not run, or beyond result_capacity). */
PLG_CONTRACT_API const plg_contract_case_result *
plg_contract_find_result(const plg_contract_report *report, const char *id);

#ifdef __cplusplus
}
#endif

#endif /* PLUGIN_CONTRACT_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PLUGIN_CONTRACT_IMPLEMENTATION) && !defined(PLUGIN_CONTRACT_IMPLEMENTED)
#define PLUGIN_CONTRACT_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header still compile the implementations this one depends on. */
#include "../../plugin_registry.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(PLG_CONTRACT_STATIC)
#define PLGCI_DEF static
#else
#define PLGCI_DEF
#endif

/* The case list is reviewed for every descriptor ABI: a newer plugin_registry.h stops the build
   here until the cases for its new fields are written and PLG_CONTRACT_CASES_ABI is raised. */
typedef char plgci_cases_cover_descriptor_abi[PLG_DESCRIPTOR_ABI_VERSION <= PLG_CONTRACT_CASES_ABI
                                                  ? 1
                                                  : -1];

#define PLGCI_SECRET_MIN 4        /* shortest secret value searched for */
#define PLGCI_HEALTH_MAX 1024     /* message buffer the health trampoline hands on */
#define PLGCI_GUARD 32            /* guard bytes after it */
#define PLGCI_FILL 'Z'            /* fill byte of the health buffer */
#define PLGCI_WRAP_MAX 4          /* registrations of the plugin under test per registry */
#define PLGCI_NOTE_SIZE 768
#define PLGCI_MAGIC ((size_t)0x706c6763u)
#define PLGCI_MARKER "plgcontract-secret-7Qx2"
#define PLGCI_UNKNOWN_KEY "plg_contract_unknown_key"
#define PLGCI_NONE ((size_t)-1)

/* ---------------------------------------------------------------------------------------------
   Text helpers
   ------------------------------------------------------------------------------------------- */

static void plgci_vappend(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    if (vsnprintf(buf + used, size - used, fmt, ap) < 0)
        buf[used] = '\0';
}

static void plgci_append(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgci_append(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plgci_vappend(buf, size, fmt, ap);
    va_end(ap);
}

static const char *plgci_rname(plg_result r)
{
    switch (r) {
#define PLGCI_RNAME_(name, value, text)                                                            \
    case name:                                                                                     \
        return #name;
        PLG_RESULT_LIST(PLGCI_RNAME_)
#undef PLGCI_RNAME_
    default:
        return "(unknown result code)";
    }
}

static const char *plgci_sname(plg_state s)
{
    return plg_state_name(s);
}

/* The documented name rule, checked independently of the registry. */
static int plgci_name_ok(const char *name, char *why, size_t size)
{
    size_t i, len;
    if (name == NULL) {
        snprintf(why, size, "is NULL");
        return 0;
    }
    len = strlen(name);
    if (len == 0 || len > PLG_NAME_MAX) {
        snprintf(why, size, "\"%.80s\" is %lu characters long, allowed are 1 to %d", name,
                 (unsigned long)len, PLG_NAME_MAX);
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if ((i == 0 && !alnum) || (!alnum && ch != '_' && ch != '.' && ch != '-')) {
            snprintf(why, size, "\"%.80s\" has byte 0x%02x at position %lu (allowed: letters, "
                                "digits, '_', '.', '-'; the first a letter or digit)",
                     name, (unsigned)ch, (unsigned long)i);
            return 0;
        }
    }
    return 1;
}

/* A growable text (plain malloc: the suite's own memory, never counted). */
typedef struct plgci_buf {
    char *p;
    size_t len, cap;
    int oom;
} plgci_buf;

static void plgci_put(plgci_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *q;
        while (cap < b->len + n + 1)
            cap *= 2;
        q = (char *)realloc(b->p, cap);
        if (q == NULL) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void plgci_puts(plgci_buf *b, const char *s)
{
    plgci_put(b, s, strlen(s));
}

static void plgci_putf(plgci_buf *b, const char *fmt, ...) PLG_PRINTF(2, 3);
static void plgci_putf(plgci_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(tmp, sizeof tmp, fmt, ap) < 0)
        tmp[0] = '\0';
    va_end(ap);
    plgci_puts(b, tmp);
}

static void plgci_put_json_string(plgci_buf *b, const char *s, size_t n)
{
    size_t i;
    plgci_put(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char esc[2];
            esc[0] = '\\';
            esc[1] = (char)ch;
            plgci_put(b, esc, 2);
        } else if (ch < 0x20) {
            plgci_putf(b, "\\u%04x", (unsigned)ch);
        } else {
            plgci_put(b, (const char *)&s[i], 1);
        }
    }
    plgci_put(b, "\"", 1);
}

/* Takes the text out of b (NULL if memory ran out). */
static char *plgci_take(plgci_buf *b)
{
    char *p;
    if (b->oom || b->p == NULL) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    p = b->p;
    b->p = NULL;
    return p;
}

static char *plgci_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = (char *)malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------------------------------------------------
   Run and case state
   ------------------------------------------------------------------------------------------- */

typedef struct plgci_text {
    char *text;
    char label[160];
    int strict;
} plgci_text;

typedef struct plgci_secret {
    char *value;
    const char *key;
} plgci_secret;

typedef struct plgci_run {
    const plg_descriptor *desc;  /* as given (may be NULL) */
    plg_descriptor copy;         /* the fields this header knows, zero beyond the plugin's size */
    plg_descriptor wrapped;      /* copy with the suite's trampolines */
    plg_contract_options opt;    /* resolved */
    plg_contract_report *report;
    char who[2 * PLG_NAME_MAX + 32];
    int valid_parsed;            /* valid_config passed validation on its own */
    char **members;              /* per schema key: "\"key\":value" given in valid_config */
    plgci_text *invalid;
    size_t invalid_count, invalid_cap;
    char *unknown_key_config;
    plgci_secret *secrets;
    size_t secret_count;
    int oom;
} plgci_run;

typedef struct plgci_case {
    const char *id;
    const char *title;
    plg_contract_outcome outcome;
    char msg[PLG_CONTRACT_MESSAGE_MAX];
} plgci_case;

static void plgci_fail(plgci_case *c, const char *fmt, ...) PLG_PRINTF(2, 3);
static void plgci_fail(plgci_case *c, const char *fmt, ...)
{
    va_list ap;
    if (c->outcome != PLG_CONTRACT_FAIL) {
        c->outcome = PLG_CONTRACT_FAIL;
        c->msg[0] = '\0';
    } else {
        plgci_append(c->msg, sizeof c->msg, "; ");
    }
    va_start(ap, fmt);
    plgci_vappend(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

static void plgci_unsupported(plgci_case *c, const char *fmt, ...) PLG_PRINTF(2, 3);
static void plgci_unsupported(plgci_case *c, const char *fmt, ...)
{
    va_list ap;
    if (c->outcome == PLG_CONTRACT_FAIL)
        return;
    c->outcome = PLG_CONTRACT_NOT_SUPPORTED;
    c->msg[0] = '\0';
    va_start(ap, fmt);
    plgci_vappend(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
}

/* One registration of the plugin under test, keyed by its handle. */
typedef struct plgci_wrap {
    plg_plugin *plugin;
    plg_descriptor orig;
    int init_calls, start_calls, stop_calls, shutdown_calls, health_calls;
    const plg_config *init_config;
} plgci_wrap;

/* Everything about one test registry. It is the user pointer of the registry's allocator and
   logger, which is how the trampolines find it. */
typedef struct plgci_ctx {
    plgci_run *run;
    plg_registry *reg;
    pthread_mutex_t lock;        /* allocator list and notes */
    int lock_ok;
    union plgci_block *live;     /* blocks allocated and not freed */
    size_t live_bytes, live_blocks, allocs;
    char note[PLGCI_NOTE_SIZE];  /* misbehaviour seen by trampolines, allocator or logger */
    plgci_wrap wraps[PLGCI_WRAP_MAX];
    size_t wrap_count;
    plg_plugin *plugin;          /* the plugin under test (first registration) */
    size_t base_count;           /* plugins in the registry before it was registered */
    const char *extra_secret;    /* a marker the case injected */
} plgci_ctx;

static void plgci_note_locked(plgci_ctx *x, const char *fmt, ...) PLG_PRINTF(2, 3);
static void plgci_note_locked(plgci_ctx *x, const char *fmt, ...)
{
    char one[256];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(one, sizeof one, fmt, ap) < 0)
        one[0] = '\0';
    va_end(ap);
    if (strstr(x->note, one) != NULL)
        return; /* said already */
    if (x->note[0] != '\0')
        plgci_append(x->note, sizeof x->note, "; ");
    plgci_append(x->note, sizeof x->note, "%s", one);
}

#define PLGCI_NOTE(x, ...)                                                                         \
    do {                                                                                           \
        if ((x)->lock_ok)                                                                          \
            pthread_mutex_lock(&(x)->lock);                                                        \
        plgci_note_locked((x), __VA_ARGS__);                                                       \
        if ((x)->lock_ok)                                                                          \
            pthread_mutex_unlock(&(x)->lock);                                                      \
    } while (0)

/* Searches text for secret values; a hit is noted (naming the key, never the value). */
static void plgci_scan(plgci_ctx *x, const char *text, const char *where)
{
    size_t i;
    if (text == NULL || x->run == NULL)
        return;
    for (i = 0; i < x->run->secret_count; i++)
        if (strstr(text, x->run->secrets[i].value) != NULL)
            PLGCI_NOTE(x, "the value of secret key \"%s\" appeared in %s", x->run->secrets[i].key,
                       where);
    if (x->extra_secret != NULL && strstr(text, x->extra_secret) != NULL)
        PLGCI_NOTE(x, "the suite's secret marker value appeared in %s", where);
}

/* plg_errmsg, scanned for secrets. */
static const char *plgci_errmsg(plgci_ctx *x)
{
    const char *m = plg_errmsg(x->reg);
    plgci_scan(x, m, "a plg_errmsg text");
    return m;
}

/* ---------------------------------------------------------------------------------------------
   Counting allocator and logger
   ------------------------------------------------------------------------------------------- */

typedef union plgci_block {
    struct {
        union plgci_block *prev, *next;
        size_t size;
        size_t magic;
    } h;
    long double align_ld; /* keeps the payload maximally aligned */
    double align_d;
    long long align_ll;
    void *align_p;
} plgci_block;

static void *plgci_alloc(size_t size, void *user)
{
    plgci_ctx *x = (plgci_ctx *)user;
    plgci_block *b;
    if (size > (size_t)-1 - sizeof(plgci_block))
        return NULL;
    b = (plgci_block *)malloc(sizeof(plgci_block) + size);
    if (b == NULL)
        return NULL;
    b->h.size = size;
    b->h.magic = PLGCI_MAGIC;
    b->h.prev = NULL;
    pthread_mutex_lock(&x->lock);
    b->h.next = x->live;
    if (x->live != NULL)
        x->live->h.prev = b;
    x->live = b;
    x->live_bytes += size;
    x->live_blocks++;
    x->allocs++;
    pthread_mutex_unlock(&x->lock);
    return (void *)(b + 1);
}

static void plgci_free(void *ptr, size_t size, void *user)
{
    plgci_ctx *x = (plgci_ctx *)user;
    plgci_block *b;
    if (ptr == NULL)
        return;
    b = (plgci_block *)ptr - 1;
    pthread_mutex_lock(&x->lock);
    if (b->h.magic != PLGCI_MAGIC) {
        plgci_note_locked(x, "a block not allocated by the registry allocator was freed through "
                             "it (plg_free of a foreign or already freed pointer)");
        pthread_mutex_unlock(&x->lock);
        return;
    }
    if (b->h.size != size)
        plgci_note_locked(x, "a block of %lu bytes was freed with size %lu (plg_free must get the "
                             "size given to plg_alloc)",
                          (unsigned long)b->h.size, (unsigned long)size);
    if (b->h.prev != NULL)
        b->h.prev->h.next = b->h.next;
    else
        x->live = b->h.next;
    if (b->h.next != NULL)
        b->h.next->h.prev = b->h.prev;
    x->live_bytes -= b->h.size;
    x->live_blocks--;
    b->h.magic = 0;
    pthread_mutex_unlock(&x->lock);
    free(b);
}

static void plgci_log(void *user, plg_log_level level, const char *message)
{
    (void)level;
    plgci_scan((plgci_ctx *)user, message, "a log line");
}

/* ---------------------------------------------------------------------------------------------
   Trampolines
   ------------------------------------------------------------------------------------------- */

static plgci_wrap *plgci_wrap_of(plg_plugin *self, plgci_ctx **xo)
{
    plg_registry_desc d = plg_registry_resolved(plg_plugin_registry(self));
    plgci_ctx *x = (plgci_ctx *)d.allocator.user;
    size_t i;
    *xo = x;
    if (x == NULL || d.allocator.alloc_fn != plgci_alloc)
        return NULL;
    for (i = 0; i < x->wrap_count; i++)
        if (x->wraps[i].plugin == self)
            return &x->wraps[i];
    return NULL;
}

static plg_result plgci_tr_init(plg_plugin *self, const plg_config *config, void **instance)
{
    plgci_ctx *x;
    plgci_wrap *w = plgci_wrap_of(self, &x);
    if (w == NULL)
        return PLG_ERR_INTERNAL;
    w->init_calls++;
    w->init_config = config;
    if (config == NULL)
        PLGCI_NOTE(x, "init received a NULL configuration");
    if (plg_plugin_state(self) != PLG_STATE_REGISTERED)
        PLGCI_NOTE(x, "init ran while the plugin was %s",
                   plgci_sname(plg_plugin_state(self)));
    return w->orig.init(self, config, instance);
}

static plg_result plgci_tr_start(plg_plugin *self, void *instance)
{
    plgci_ctx *x;
    plgci_wrap *w = plgci_wrap_of(self, &x);
    if (w == NULL)
        return PLG_ERR_INTERNAL;
    w->start_calls++;
    return w->orig.start(self, instance);
}

static plg_result plgci_tr_stop(plg_plugin *self, void *instance)
{
    plgci_ctx *x;
    plgci_wrap *w = plgci_wrap_of(self, &x);
    if (w == NULL)
        return PLG_ERR_INTERNAL;
    w->stop_calls++;
    return w->orig.stop(self, instance);
}

static void plgci_tr_shutdown(plg_plugin *self, void *instance)
{
    plgci_ctx *x;
    plgci_wrap *w = plgci_wrap_of(self, &x);
    if (w == NULL)
        return;
    w->shutdown_calls++;
    w->orig.shutdown(self, instance);
}

/* Calls the plugin's health with the suite's own buffer, filled with a non-zero byte and followed
   by guard bytes, so that what the registry would repair (a missing NUL, an out-of-range status)
   or could not see (writes past message_size) is found. */
static plg_health_status plgci_tr_health(plg_plugin *self, void *instance, char *message,
                                         size_t message_size)
{
    char buf[PLGCI_HEALTH_MAX + PLGCI_GUARD];
    size_t n = message_size < PLGCI_HEALTH_MAX ? message_size : PLGCI_HEALTH_MAX, i, len;
    plg_health_status h;
    int raw;
    plgci_ctx *x;
    plgci_wrap *w = plgci_wrap_of(self, &x);
    if (w == NULL)
        return PLG_HEALTH_UNHEALTHY;
    w->health_calls++;
    if (message == NULL || message_size == 0)
        return w->orig.health(self, instance, message, message_size);
    memset(buf, PLGCI_FILL, sizeof buf);
    buf[0] = '\0';
    h = w->orig.health(self, instance, buf, n);
    raw = (int)h;
    if (raw < (int)PLG_HEALTH_OK || raw > (int)PLG_HEALTH_UNHEALTHY)
        PLGCI_NOTE(x, "the health callback returned status %d, expected PLG_HEALTH_OK (0), "
                      "PLG_HEALTH_DEGRADED (1) or PLG_HEALTH_UNHEALTHY (2)",
                   raw);
    for (i = n; i < sizeof buf; i++)
        if (buf[i] != PLGCI_FILL) {
            PLGCI_NOTE(x, "the health callback wrote past message_size (%lu bytes)",
                       (unsigned long)n);
            break;
        }
    if (memchr(buf, '\0', n) == NULL) {
        PLGCI_NOTE(x, "the health callback left its message without a NUL within message_size "
                      "(%lu bytes)",
                   (unsigned long)n);
        len = n - 1;
    } else {
        len = strlen(buf);
    }
    if (len >= message_size)
        len = message_size - 1;
    memcpy(message, buf, len);
    message[len] = '\0';
    plgci_scan(x, message, "a health message");
    return h;
}

/* ---------------------------------------------------------------------------------------------
   Case setup and teardown
   ------------------------------------------------------------------------------------------- */

/* Registers the wrapped descriptor; 0 on success. Fails the case when fail_case is set. */
static int plgci_register(plgci_case *c, plgci_ctx *x, plg_plugin **out, int fail_case)
{
    plg_plugin *p = NULL;
    plg_result r;
    plgci_wrap *w;
    *out = NULL;
    if (x->run->desc == NULL) {
        if (fail_case)
            plgci_fail(c, "the descriptor is NULL");
        return -1;
    }
    if (x->wrap_count == PLGCI_WRAP_MAX) {
        plgci_fail(c, "suite: too many registrations in one registry");
        return -1;
    }
    r = plg_register(x->reg, &x->run->wrapped, &p);
    if (r != PLG_OK) {
        if (fail_case)
            plgci_fail(c, "plg_register: expected PLG_OK, got %s (%s)", plgci_rname(r),
                       plgci_errmsg(x));
        return -1;
    }
    w = &x->wraps[x->wrap_count++];
    memset(w, 0, sizeof *w);
    w->plugin = p;
    w->orig = x->run->copy;
    *out = p;
    return 0;
}

static plgci_wrap *plgci_wrap_find(plgci_ctx *x, const plg_plugin *p)
{
    size_t i;
    for (i = 0; i < x->wrap_count; i++)
        if (x->wraps[i].plugin == p)
            return &x->wraps[i];
    return NULL;
}

/* A fresh registry with the counting allocator; dependencies registered and started; the plugin
   registered when do_register. Returns 0 when the case can go on. The ctx must be torn down in
   every case. */
static int plgci_setup(plgci_run *run, plgci_case *c, plgci_ctx *x, int strict, int do_register)
{
    plg_registry_desc rd;
    plg_result r;
    memset(x, 0, sizeof *x);
    x->run = run;
    if (pthread_mutex_init(&x->lock, NULL) != 0) {
        plgci_fail(c, "suite: pthread_mutex_init failed");
        return -1;
    }
    x->lock_ok = 1;
    memset(&rd, 0, sizeof rd);
    rd.allocator.alloc_fn = plgci_alloc;
    rd.allocator.free_fn = plgci_free;
    rd.allocator.user = x;
    rd.logger.log_fn = plgci_log;
    rd.logger.user = x;
    rd.host_api_version = run->opt.host_api_version;
    rd.strict_config = strict;
    r = plg_registry_create(&rd, &x->reg);
    if (r != PLG_OK) {
        plgci_fail(c, "plg_registry_create with host API version \"%s\": expected PLG_OK, got %s",
                   run->opt.host_api_version, plgci_rname(r));
        x->reg = NULL;
        return -1;
    }
    if (run->opt.register_dependencies != NULL) {
        r = run->opt.register_dependencies(x->reg, run->opt.user);
        if (r != PLG_OK) {
            plgci_fail(c, "register_dependencies returned %s (%s)", plgci_rname(r),
                       plgci_errmsg(x));
            return -1;
        }
        r = plg_start_all(x->reg);
        if (r != PLG_OK) {
            plgci_fail(c, "starting the dependencies with plg_start_all: expected PLG_OK, got %s "
                          "(%s)",
                       plgci_rname(r), plgci_errmsg(x));
            return -1;
        }
    }
    x->base_count = plg_plugin_count(x->reg);
    if (do_register && plgci_register(c, x, &x->plugin, 1) != 0)
        return -1;
    return 0;
}

static void plgci_destroy(plgci_ctx *x)
{
    if (x->reg != NULL) {
        plg_registry_destroy(x->reg);
        x->reg = NULL;
    }
}

/* Destroys the registry (if still there), then reports leaks and everything noted. */
static void plgci_teardown(plgci_case *c, plgci_ctx *x)
{
    plgci_destroy(x);
    if (x->live_blocks > 0) {
        char sizes[160];
        plgci_block *b, *next;
        size_t shown = 0;
        sizes[0] = '\0';
        for (b = x->live; b != NULL; b = next) {
            next = b->h.next;
            if (shown < 8)
                plgci_append(sizes, sizeof sizes, "%s%lu", shown ? ", " : "",
                             (unsigned long)b->h.size);
            else if (shown == 8)
                plgci_append(sizes, sizeof sizes, ", ...");
            shown++;
            free(b); /* reclaimed, so that the suite itself does not leak */
        }
        plgci_fail(c, "leak: %lu bytes in %lu block%s allocated through the registry allocator "
                      "(plg_alloc included) were not freed once the registry was destroyed "
                      "(block sizes: %s)",
                   (unsigned long)x->live_bytes, (unsigned long)x->live_blocks,
                   x->live_blocks == 1 ? "" : "s", sizes);
        x->live = NULL;
        x->live_blocks = 0;
        x->live_bytes = 0;
    }
    if (x->note[0] != '\0')
        plgci_fail(c, "%s", x->note);
    if (x->lock_ok) {
        pthread_mutex_destroy(&x->lock);
        x->lock_ok = 0;
    }
}

/* ---------------------------------------------------------------------------------------------
   Checks
   ------------------------------------------------------------------------------------------- */

static int plgci_expect(plgci_case *c, plgci_ctx *x, const char *what, plg_result got,
                        plg_result want)
{
    if (got == want)
        return 1;
    if (got != PLG_OK)
        plgci_fail(c, "%s: expected %s, got %s (%s)", what, plgci_rname(want), plgci_rname(got),
                   plgci_errmsg(x));
    else
        plgci_fail(c, "%s: expected %s, got PLG_OK", what, plgci_rname(want));
    return 0;
}

/* A code in the PLG_ERR_CONFIG_* family. */
static int plgci_is_config_error(plg_result r)
{
    return r >= PLG_ERR_CONFIG_SYNTAX && r <= PLG_ERR_CONFIG_DUPLICATE_KEY;
}

static int plgci_expect_state(plgci_case *c, const char *what, const plg_plugin *p,
                              plg_state want)
{
    plg_state s = plg_plugin_state(p);
    char reason[256];
    if (s == want)
        return 1;
    reason[0] = '\0';
    if (s == PLG_STATE_FAILED)
        (void)plg_plugin_failure(p, reason, sizeof reason);
    plgci_fail(c, "%s: expected state %s, got %s%s%s", what, plgci_sname(want), plgci_sname(s),
               reason[0] ? ": " : "", reason);
    return 0;
}

static void plgci_expect_calls(plgci_case *c, const char *callback, int got, int want,
                               const char *when)
{
    if (got != want)
        plgci_fail(c, "the %s callback ran %d time%s %s, expected %d", callback, got,
                   got == 1 ? "" : "s", when, want);
}

typedef enum plgci_op_kind { PLGCI_INIT, PLGCI_START, PLGCI_STOP, PLGCI_SHUTDOWN } plgci_op_kind;

/* Performs one lifecycle call and checks its result and the state after it. */
static int plgci_op(plgci_case *c, plgci_ctx *x, plg_plugin *p, plgci_op_kind op,
                    const char *config, plg_result want, plg_state want_state)
{
    static const char *const names[] = {"plg_init", "plg_start", "plg_stop", "plg_shutdown"};
    char what[128];
    plg_result r = PLG_OK;
    int ok;
    snprintf(what, sizeof what, "%s while %s", names[op], plgci_sname(plg_plugin_state(p)));
    switch (op) {
    case PLGCI_INIT:
        r = plg_init(x->reg, p, config);
        break;
    case PLGCI_START:
        r = plg_start(x->reg, p);
        break;
    case PLGCI_STOP:
        r = plg_stop(x->reg, p);
        break;
    case PLGCI_SHUTDOWN:
        r = plg_shutdown(x->reg, p);
        break;
    }
    ok = plgci_expect(c, x, what, r, want);
    ok &= plgci_expect_state(c, what, p, want_state);
    return ok;
}

static const char *plgci_valid(plgci_run *run)
{
    return run->opt.valid_config;
}

/* Health of p: PLG_OK, a valid status and a terminated message. Returns the status or -1. */
static int plgci_health_check(plgci_case *c, plgci_ctx *x, plg_plugin *p, const char *when)
{
    plg_health_report h;
    plg_result r;
    int s;
    char what[96];
    memset(&h, 0, sizeof h);
    memset(h.message, PLGCI_FILL, sizeof h.message);
    snprintf(what, sizeof what, "plg_health %s", when);
    r = plg_health(x->reg, p, &h);
    if (!plgci_expect(c, x, what, r, PLG_OK))
        return -1;
    s = (int)h.status;
    if (s < (int)PLG_HEALTH_OK || s > (int)PLG_HEALTH_UNHEALTHY) {
        plgci_fail(c, "%s: status %d is not a plg_health_status", what, s);
        return -1;
    }
    if (memchr(h.message, '\0', sizeof h.message) == NULL) {
        plgci_fail(c, "%s: the message is not NUL-terminated", what);
        return -1;
    }
    plgci_scan(x, h.message, "a health report");
    return s;
}

/* ---------------------------------------------------------------------------------------------
   Preparation: valid config members, generated invalid configs, secrets
   ------------------------------------------------------------------------------------------- */

static void plgci_add_invalid(plgci_run *run, char *text, int strict, const char *fmt, ...)
    PLG_PRINTF(4, 5);
static void plgci_add_invalid(plgci_run *run, char *text, int strict, const char *fmt, ...)
{
    va_list ap;
    plgci_text *t;
    if (text == NULL) {
        run->oom = 1;
        return;
    }
    if (run->invalid_count == run->invalid_cap) {
        size_t cap = run->invalid_cap ? run->invalid_cap * 2 : 16;
        plgci_text *n = (plgci_text *)realloc(run->invalid, cap * sizeof *n);
        if (n == NULL) {
            free(text);
            run->oom = 1;
            return;
        }
        run->invalid = n;
        run->invalid_cap = cap;
    }
    t = &run->invalid[run->invalid_count++];
    t->text = text;
    t->strict = strict;
    t->label[0] = '\0';
    va_start(ap, fmt);
    plgci_vappend(t->label, sizeof t->label, fmt, ap);
    va_end(ap);
}

/* The JSON object of valid_config's given keys, with key `skip` left out or replaced by
   `replace` (a complete member), `extra` appended, and without its closing brace if unclosed. */
static char *plgci_object(plgci_run *run, size_t skip, const char *replace, const char *extra,
                          int unclosed)
{
    plgci_buf b;
    size_t i;
    int first = 1;
    memset(&b, 0, sizeof b);
    plgci_puts(&b, "{");
    for (i = 0; i < run->copy.config_key_count; i++) {
        const char *m = i == skip ? replace : (run->members ? run->members[i] : NULL);
        if (m == NULL)
            continue;
        if (!first)
            plgci_puts(&b, ",");
        plgci_puts(&b, m);
        first = 0;
    }
    if (skip == run->copy.config_key_count && replace != NULL) {
        if (!first)
            plgci_puts(&b, ",");
        plgci_puts(&b, replace);
        first = 0;
    }
    if (extra != NULL) {
        if (!first)
            plgci_puts(&b, ",");
        plgci_puts(&b, extra);
    }
    if (!unclosed)
        plgci_puts(&b, "}");
    return plgci_take(&b);
}

/* "\"key\":" followed by raw JSON. */
static char *plgci_member_raw(const char *key, const char *json)
{
    plgci_buf b;
    memset(&b, 0, sizeof b);
    plgci_put_json_string(&b, key, strlen(key));
    plgci_puts(&b, ":");
    plgci_puts(&b, json);
    return plgci_take(&b);
}

static char *plgci_member_string(const char *key, const char *s, size_t n)
{
    plgci_buf b;
    memset(&b, 0, sizeof b);
    plgci_put_json_string(&b, key, strlen(key));
    plgci_puts(&b, ":");
    plgci_put_json_string(&b, s, n);
    return plgci_take(&b);
}

static char *plgci_member_value(const char *key, const plg_config_value *v)
{
    plgci_buf b;
    memset(&b, 0, sizeof b);
    plgci_put_json_string(&b, key, strlen(key));
    plgci_puts(&b, ":");
    switch (v->type) {
    case PLG_CONFIG_STRING:
        plgci_put_json_string(&b, v->string != NULL ? v->string : "", v->string_len);
        break;
    case PLG_CONFIG_INTEGER:
    case PLG_CONFIG_DURATION:
        plgci_putf(&b, "%lld", (long long)v->integer);
        break;
    case PLG_CONFIG_BOOLEAN:
        plgci_puts(&b, v->boolean ? "true" : "false");
        break;
    case PLG_CONFIG_NUMBER:
        plgci_putf(&b, "%.17g", v->number);
        break;
    }
    return plgci_take(&b);
}

/* Parses a bound (text in the key's type) with a one-key schema; 1 on success. */
static int plgci_parse_bound(const plg_config_key *k, const char *text, plg_config_value *out)
{
    plg_config_key one;
    plg_config *cfg = NULL;
    plgci_buf b;
    int ok;
    memset(&one, 0, sizeof one);
    one.key = k->key;
    one.type = k->type;
    memset(&b, 0, sizeof b);
    plgci_puts(&b, "{");
    plgci_put_json_string(&b, k->key, strlen(k->key));
    plgci_puts(&b, ":");
    plgci_put_json_string(&b, text, strlen(text));
    plgci_puts(&b, "}");
    if (b.oom) {
        free(b.p);
        return 0;
    }
    memset(out, 0, sizeof *out);
    ok = plg_config_parse_json(NULL, &one, 1, b.p, PLG_CONFIG_LENIENT, &cfg) == PLG_OK &&
         plg_config_get(cfg, k->key, out) == PLG_OK && out->is_set == 1;
    plg_config_destroy(cfg);
    free(b.p);
    return ok;
}

/* A string length bound: decimal digits only. */
static int plgci_parse_length(const char *text, size_t *out)
{
    size_t v = 0;
    const char *s = text;
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000u)
            return 0;
        v = v * 10 + (size_t)(*s - '0');
    }
    *out = v;
    return 1;
}

static char *plgci_repeat_x(size_t n)
{
    char *s = (char *)malloc(n + 1);
    if (s != NULL) {
        memset(s, 'x', n);
        s[n] = '\0';
    }
    return s;
}

/* Adds a configuration that is valid_config with member replaced (takes member). */
static void plgci_add_mutation(plgci_run *run, size_t key_index, char *member, const char *fmt,
                               const char *key, const char *detail)
{
    if (member == NULL) {
        run->oom = 1;
        return;
    }
    plgci_add_invalid(run, plgci_object(run, key_index, member, NULL, 0), 0, fmt, key, detail);
    free(member);
}

static void plgci_generate_bounds(plgci_run *run, size_t i)
{
    const plg_config_key *k = &run->copy.config_schema[i];
    plg_config_value v;
    char num[64];
    if (k->type == PLG_CONFIG_STRING) {
        size_t len;
        if (k->max != NULL && plgci_parse_length(k->max, &len) && len < 60000) {
            char *s = plgci_repeat_x(len + 1);
            if (s == NULL) {
                run->oom = 1;
                return;
            }
            plgci_add_mutation(run, i, plgci_member_string(k->key, s, len + 1),
                               "key \"%s\" longer than its max (%s bytes)", k->key, k->max);
            free(s);
        }
        if (k->min != NULL && plgci_parse_length(k->min, &len) && len > 0 && len < 60000) {
            char *s = plgci_repeat_x(len - 1);
            if (s == NULL) {
                run->oom = 1;
                return;
            }
            plgci_add_mutation(run, i, plgci_member_string(k->key, s, len - 1),
                               "key \"%s\" shorter than its min (%s bytes)", k->key, k->min);
            free(s);
        }
        if (k->allowed != NULL && k->allowed_count > 0) {
            char value[96];
            size_t j;
            int clash = 1;
            snprintf(value, sizeof value, "plg-contract-not-allowed");
            while (clash && strlen(value) + 1 < sizeof value) {
                clash = 0;
                for (j = 0; j < k->allowed_count; j++)
                    if (k->allowed[j] != NULL && strcmp(k->allowed[j], value) == 0)
                        clash = 1;
                if (clash)
                    plgci_append(value, sizeof value, "-");
            }
            plgci_add_mutation(run, i, plgci_member_string(k->key, value, strlen(value)),
                               "key \"%s\" given a value not allowed (%s)", k->key, value);
        }
        return;
    }
    if (k->type == PLG_CONFIG_INTEGER || k->type == PLG_CONFIG_DURATION) {
        if (k->max != NULL && plgci_parse_bound(k, k->max, &v) && v.integer < INT64_MAX) {
            snprintf(num, sizeof num, "%lld", (long long)v.integer + 1);
            plgci_add_mutation(run, i, plgci_member_raw(k->key, num),
                               "key \"%s\" one past its max (%s)", k->key, k->max);
        }
        if (k->min != NULL && plgci_parse_bound(k, k->min, &v) && v.integer > INT64_MIN) {
            snprintf(num, sizeof num, "%lld", (long long)v.integer - 1);
            plgci_add_mutation(run, i, plgci_member_raw(k->key, num),
                               "key \"%s\" one below its min (%s)", k->key, k->min);
        }
        return;
    }
    if (k->type == PLG_CONFIG_NUMBER) {
        double d, m;
        if (k->max != NULL && plgci_parse_bound(k, k->max, &v)) {
            m = v.number < 0 ? -v.number : v.number;
            d = v.number + (m > 1 ? m * 1e-6 : 1.0);
            if (d > v.number && d - d == 0) {
                snprintf(num, sizeof num, "%.17g", d);
                plgci_add_mutation(run, i, plgci_member_raw(k->key, num),
                                   "key \"%s\" past its max (%s)", k->key, k->max);
            }
        }
        if (k->min != NULL && plgci_parse_bound(k, k->min, &v)) {
            m = v.number < 0 ? -v.number : v.number;
            d = v.number - (m > 1 ? m * 1e-6 : 1.0);
            if (d < v.number && d - d == 0) {
                snprintf(num, sizeof num, "%.17g", d);
                plgci_add_mutation(run, i, plgci_member_raw(k->key, num),
                                   "key \"%s\" below its min (%s)", k->key, k->min);
            }
        }
    }
}

static void plgci_add_secret(plgci_run *run, const char *key, const char *value, size_t len)
{
    plgci_secret *n;
    char *copy;
    size_t i;
    if (value == NULL || len < PLGCI_SECRET_MIN || memchr(value, '\0', len) != NULL)
        return;
    for (i = 0; i < run->secret_count; i++)
        if (strlen(run->secrets[i].value) == len && memcmp(run->secrets[i].value, value, len) == 0)
            return;
    n = (plgci_secret *)realloc(run->secrets, (run->secret_count + 1) * sizeof *n);
    if (n == NULL) {
        run->oom = 1;
        return;
    }
    run->secrets = n;
    copy = (char *)malloc(len + 1);
    if (copy == NULL) {
        run->oom = 1;
        return;
    }
    memcpy(copy, value, len);
    copy[len] = '\0';
    run->secrets[run->secret_count].value = copy;
    run->secrets[run->secret_count].key = key;
    run->secret_count++;
}

static void plgci_prepare(plgci_run *run)
{
    const plg_descriptor *d = &run->copy;
    plg_config *cfg = NULL;
    size_t i, n = d->config_schema != NULL ? d->config_key_count : 0;
    int have_schema = n > 0;
    if (have_schema) {
        run->members = (char **)calloc(n, sizeof(char *));
        if (run->members == NULL) {
            run->oom = 1;
            return;
        }
    }
    /* The keys given in valid_config, re-serialised one by one. */
    run->valid_parsed = plg_config_parse_json(NULL, d->config_schema, n, run->opt.valid_config,
                                              PLG_CONFIG_LENIENT, &cfg) == PLG_OK;
    for (i = 0; i < n; i++) {
        const plg_config_key *k = &d->config_schema[i];
        plg_config_value v;
        if (k->key == NULL)
            continue;
        memset(&v, 0, sizeof v);
        if (run->valid_parsed && plg_config_get(cfg, k->key, &v) == PLG_OK && v.is_set == 1) {
            run->members[i] = plgci_member_value(k->key, &v);
            if (run->members[i] == NULL)
                run->oom = 1;
            if ((k->flags & PLG_KEY_SECRET) && v.type == PLG_CONFIG_STRING)
                plgci_add_secret(run, k->key, v.string, v.string_len);
        }
        if ((k->flags & PLG_KEY_SECRET) && k->default_value != NULL)
            plgci_add_secret(run, k->key, k->default_value, strlen(k->default_value));
    }
    plg_config_destroy(cfg);

    /* Unknown key, for PC-CONFIG-03. */
    {
        char key[64];
        int clash = 1;
        snprintf(key, sizeof key, "%s", PLGCI_UNKNOWN_KEY);
        while (clash && strlen(key) + 2 < sizeof key) {
            clash = 0;
            for (i = 0; i < n; i++)
                if (d->config_schema[i].key != NULL && strcmp(d->config_schema[i].key, key) == 0)
                    clash = 1;
            if (clash)
                plgci_append(key, sizeof key, "_");
        }
        {
            char *m = plgci_member_raw(key, "1");
            run->unknown_key_config = m != NULL ? plgci_object(run, PLGCI_NONE, NULL, m, 0) : NULL;
            free(m);
            if (run->unknown_key_config == NULL)
                run->oom = 1;
        }
    }

    /* Invalid configurations: the caller's, the generated set, or both. */
    if (run->opt.invalid_configs != NULL && run->opt.invalid_config_count > 0) {
        for (i = 0; i < run->opt.invalid_config_count; i++) {
            const char *t = run->opt.invalid_configs[i];
            plgci_add_invalid(run, plgci_strdup(t != NULL ? t : ""),
                              run->opt.invalid_configs_strict, "invalid_configs[%lu]",
                              (unsigned long)i);
        }
        if (!run->opt.add_generated_invalid)
            return;
    }
    for (i = 0; i < n; i++) {
        const plg_config_key *k = &d->config_schema[i];
        const char *wrong = NULL, *wrong_what = NULL;
        if (k->key == NULL)
            continue;
        if (k->flags & PLG_KEY_REQUIRED)
            plgci_add_invalid(run, plgci_object(run, i, NULL, NULL, 0), 0,
                              "required key \"%s\" missing", k->key);
        switch (k->type) {
        case PLG_CONFIG_STRING:
            wrong = "true";
            wrong_what = "a boolean";
            break;
        case PLG_CONFIG_INTEGER:
            wrong = "1.5";
            wrong_what = "a fraction";
            break;
        case PLG_CONFIG_NUMBER:
        case PLG_CONFIG_BOOLEAN:
        case PLG_CONFIG_DURATION:
            wrong = "\"plg-contract\"";
            wrong_what = "the text \"plg-contract\"";
            break;
        }
        if (wrong != NULL)
            plgci_add_mutation(run, i, plgci_member_raw(k->key, wrong),
                               "key \"%s\" given the wrong type (%s)", k->key, wrong_what);
        plgci_generate_bounds(run, i);
    }
    plgci_add_invalid(run, plgci_object(run, PLGCI_NONE, NULL, NULL, 1), 0,
                      "malformed JSON: object without its closing brace");
    plgci_add_invalid(run, plgci_strdup("plg-contract: this is not JSON"), 0,
                      "malformed JSON: not JSON at all");
    plgci_add_invalid(run, plgci_strdup("[]"), 0, "a JSON array instead of an object");
}

static void plgci_release(plgci_run *run)
{
    size_t i;
    if (run->members != NULL)
        for (i = 0; i < run->copy.config_key_count; i++)
            free(run->members[i]);
    free(run->members);
    for (i = 0; i < run->invalid_count; i++)
        free(run->invalid[i].text);
    free(run->invalid);
    free(run->unknown_key_config);
    for (i = 0; i < run->secret_count; i++)
        free(run->secrets[i].value);
    free(run->secrets);
}

/* ---------------------------------------------------------------------------------------------
   Cases: metadata
   ------------------------------------------------------------------------------------------- */

/* 1 when the descriptor can be read field by field; else fails the case and returns 0. */
static int plgci_readable(const plgci_run *run, plgci_case *c)
{
    if (run->desc == NULL) {
        plgci_fail(c, "the descriptor is NULL");
        return 0;
    }
    if (run->desc->struct_size < sizeof(plg_descriptor)) {
        plgci_fail(c, "struct_size is %u, smaller than plg_descriptor of ABI %u (%u bytes): the "
                      "fields are not read",
                   (unsigned)run->desc->struct_size, (unsigned)PLG_DESCRIPTOR_ABI_VERSION,
                   (unsigned)sizeof(plg_descriptor));
        return 0;
    }
    return 1;
}

static void plgci_meta_01(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    plgci_ctx x;
    if (run->desc != NULL) {
        if (run->desc->abi_version == 0 || run->desc->abi_version > PLG_DESCRIPTOR_ABI_VERSION)
            plgci_fail(c, "abi_version is %u, expected 1 to %u (PLG_DESCRIPTOR_ABI_VERSION)",
                       (unsigned)run->desc->abi_version, (unsigned)PLG_DESCRIPTOR_ABI_VERSION);
        if (run->desc->struct_size < sizeof(plg_descriptor)) {
            plgci_fail(c, "struct_size is %u, expected at least sizeof(plg_descriptor) = %u",
                       (unsigned)run->desc->struct_size, (unsigned)sizeof(plg_descriptor));
        } else {
            if (d->init == NULL)
                plgci_fail(c, "init is NULL (required)");
            if (d->shutdown == NULL)
                plgci_fail(c, "shutdown is NULL (required)");
        }
    }
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin, *found = NULL;
        const plg_descriptor *copy = plg_plugin_descriptor(p);
        plg_result r;
        (void)plgci_expect_state(c, "after plg_register", p, PLG_STATE_REGISTERED);
        r = plg_find(x.reg, d->type, d->name, &found);
        if (plgci_expect(c, &x, "plg_find after plg_register", r, PLG_OK) && found != p)
            plgci_fail(c, "plg_find returned another handle than plg_register");
        if (plg_plugin_count(x.reg) != x.base_count + 1)
            plgci_fail(c, "plg_plugin_count is %lu after one registration, expected %lu",
                       (unsigned long)plg_plugin_count(x.reg), (unsigned long)x.base_count + 1);
        if (copy == NULL || copy->type == NULL || strcmp(copy->type, d->type) != 0 ||
            copy->name == NULL || strcmp(copy->name, d->name) != 0 || copy->version == NULL ||
            strcmp(copy->version, d->version) != 0)
            plgci_fail(c, "the registry's copy of the descriptor differs in type, name or version");
        if (plg_plugin_user_data(p) != d->user_data)
            plgci_fail(c, "plg_plugin_user_data does not return the descriptor's user_data");
        if (plg_plugin_instance(p) != NULL || plg_plugin_config(p) != NULL)
            plgci_fail(c, "a registered plugin has an instance or a configuration before init");
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_02(plgci_run *run, plgci_case *c)
{
    char why[256];
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        if (!plgci_name_ok(run->copy.type, why, sizeof why))
            plgci_fail(c, "type %s", why);
        if (!plgci_name_ok(run->copy.name, why, sizeof why))
            plgci_fail(c, "name %s", why);
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_03(plgci_run *run, plgci_case *c)
{
    char why[256];
    plg_semver v;
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        if (run->copy.version == NULL)
            plgci_fail(c, "version is NULL");
        else if (plg_semver_parse(run->copy.version, &v, why, sizeof why) != PLG_OK)
            plgci_fail(c, "version \"%.80s\" is not a semver 2.0.0 version: %s",
                       run->copy.version, why);
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_04(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        const char *s = run->copy.description;
        int blank = 1;
        for (; s != NULL && *s; s++)
            if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
                blank = 0;
        if (run->copy.description == NULL)
            plgci_fail(c, "description is NULL, expected a sentence");
        else if (blank)
            plgci_fail(c, "description is empty or blank, expected a sentence");
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_05(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    char why[256];
    size_t i, j;
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        int ok = 1;
        plg_plugin *p = NULL;
        if (d->capability_count > 0 && d->capabilities == NULL) {
            plgci_fail(c, "capability_count is %lu but capabilities is NULL",
                       (unsigned long)d->capability_count);
            ok = 0;
        }
        for (i = 0; ok && i < d->capability_count; i++) {
            if (!plgci_name_ok(d->capabilities[i], why, sizeof why)) {
                plgci_fail(c, "capability #%lu %s", (unsigned long)i, why);
                ok = 0;
                continue;
            }
            for (j = 0; j < i; j++)
                if (d->capabilities[j] != NULL &&
                    strcmp(d->capabilities[j], d->capabilities[i]) == 0) {
                    plgci_fail(c, "capability \"%s\" is declared twice (#%lu and #%lu)",
                               d->capabilities[i], (unsigned long)j, (unsigned long)i);
                    ok = 0;
                }
        }
        /* Lookups, when the descriptor registers at all (PC-META-01 reports otherwise). */
        if (ok && plgci_register(c, &x, &p, 0) == 0) {
            for (i = 0; i < d->capability_count; i++) {
                plg_plugin *list[8];
                size_t k, total;
                int seen = 0;
                if (!plg_plugin_has_capability(p, d->capabilities[i]))
                    plgci_fail(c, "plg_plugin_has_capability(\"%s\") is 0 after registration",
                               d->capabilities[i]);
                total = plg_list_capability(x.reg, d->type, d->capabilities[i], list, 8);
                for (k = 0; k < total && k < 8; k++)
                    if (list[k] == p)
                        seen = 1;
                if (!seen && total <= 8)
                    plgci_fail(c, "plg_list_capability(\"%s\") does not list the plugin",
                               d->capabilities[i]);
            }
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_06(plgci_run *run, plgci_case *c)
{
    const char *range = run->copy.host_api_range;
    char why[256];
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable && range != NULL) {
        int ok = 0;
        plg_result r;
        why[0] = '\0';
        if (plg_range_check(range, why, sizeof why) != PLG_OK) {
            plgci_fail(c, "host_api_range \"%.80s\" is not a valid range: %s", range, why);
        } else {
            r = plg_range_satisfies_text(range, run->opt.host_api_version, &ok);
            if (r != PLG_OK)
                plgci_fail(c, "plg_range_satisfies_text(\"%.80s\", \"%.40s\"): expected PLG_OK, "
                              "got %s",
                           range, run->opt.host_api_version, plgci_rname(r));
            else if (!ok)
                plgci_fail(c, "host_api_range \"%.80s\" is not satisfied by the host API version "
                              "%.40s",
                           range, run->opt.host_api_version);
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_07(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    char why[256];
    size_t i, j;
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        int ok = 1;
        if (d->dependency_count > 0 && d->dependencies == NULL) {
            plgci_fail(c, "dependency_count is %lu but dependencies is NULL",
                       (unsigned long)d->dependency_count);
            ok = 0;
        }
        for (i = 0; ok && i < d->dependency_count; i++) {
            const plg_dependency *dep = &d->dependencies[i];
            const char *type = dep->type != NULL ? dep->type : d->type;
            if (dep->type != NULL && !plgci_name_ok(dep->type, why, sizeof why)) {
                plgci_fail(c, "dependency #%lu type %s", (unsigned long)i, why);
                ok = 0;
            }
            if (!plgci_name_ok(dep->name, why, sizeof why)) {
                plgci_fail(c, "dependency #%lu name %s", (unsigned long)i, why);
                ok = 0;
                continue;
            }
            why[0] = '\0';
            if (dep->range != NULL && dep->range[0] != '\0' &&
                plg_range_check(dep->range, why, sizeof why) != PLG_OK) {
                plgci_fail(c, "dependency %s: range \"%.80s\" does not parse: %s", dep->name,
                           dep->range, why);
                ok = 0;
            }
            if (type != NULL && d->type != NULL && d->name != NULL && strcmp(type, d->type) == 0 &&
                strcmp(dep->name, d->name) == 0) {
                plgci_fail(c, "dependency #%lu is the plugin itself", (unsigned long)i);
                ok = 0;
            }
            for (j = 0; j < i; j++) {
                const plg_dependency *o = &d->dependencies[j];
                const char *otype = o->type != NULL ? o->type : d->type;
                if (o->name != NULL && otype != NULL && type != NULL &&
                    strcmp(o->name, dep->name) == 0 && strcmp(otype, type) == 0) {
                    plgci_fail(c, "dependency %s/%s is declared twice", type, dep->name);
                    ok = 0;
                }
            }
        }
        /* Presence in the prepared registry. */
        for (i = 0; ok && i < d->dependency_count; i++) {
            const plg_dependency *dep = &d->dependencies[i];
            const char *type = dep->type != NULL ? dep->type : d->type;
            plg_plugin *found = NULL;
            int sat = 1;
            if (plg_find(x.reg, type, dep->name, &found) != PLG_OK) {
                if (!dep->optional)
                    plgci_fail(c, "required dependency %s/%s is not registered (register it "
                                  "with options.register_dependencies)",
                               type, dep->name);
                continue;
            }
            if (dep->range != NULL && dep->range[0] != '\0')
                (void)plg_range_satisfies_text(dep->range, plg_plugin_version(found), &sat);
            if (!sat)
                plgci_fail(c, "dependency %s/%s has version %s, which does not satisfy \"%s\"",
                           type, dep->name, plg_plugin_version(found), dep->range);
            else if (plg_plugin_state(found) != PLG_STATE_STARTED && !dep->optional)
                plgci_fail(c, "dependency %s/%s is %s after plg_start_all, expected started",
                           type, dep->name, plgci_sname(plg_plugin_state(found)));
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_meta_08(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *second = NULL, *found = NULL;
        plg_result r = plg_register(x.reg, &run->wrapped, &second);
        (void)plgci_expect(c, &x, "the second plg_register of the same type and name", r,
                           PLG_ERR_DUPLICATE);
        if (r == PLG_OK) {
            /* Keep the books straight for the trampolines. */
            plgci_wrap *w = &x.wraps[x.wrap_count++];
            memset(w, 0, sizeof *w);
            w->plugin = second;
            w->orig = run->copy;
        }
        if (plg_plugin_count(x.reg) != x.base_count + 1)
            plgci_fail(c, "plg_plugin_count is %lu after a duplicate, expected %lu",
                       (unsigned long)plg_plugin_count(x.reg), (unsigned long)x.base_count + 1);
        if (plg_find(x.reg, run->copy.type, run->copy.name, &found) != PLG_OK || found != x.plugin)
            plgci_fail(c, "plg_find does not return the first registration after a duplicate");
        (void)plgci_expect_state(c, "the first registration after a duplicate", x.plugin,
                                 PLG_STATE_REGISTERED);
    }
    plgci_teardown(c, &x);
}

/* ---------------------------------------------------------------------------------------------
   Cases: schema
   ------------------------------------------------------------------------------------------- */

static int plgci_has_schema(const plgci_run *run)
{
    return run->copy.config_key_count > 0 || run->copy.config_schema != NULL;
}

static void plgci_schema_01(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (readable && !plgci_has_schema(run)) {
        plgci_unsupported(c, "the plugin declares no configuration schema");
        return;
    }
    if (plgci_setup(run, c, &x, 0, 0) == 0 && readable) {
        plg_result r = plg_schema_check(x.reg, run->copy.config_schema, run->copy.config_key_count);
        (void)plgci_expect(c, &x, "plg_schema_check", r, PLG_OK);
    }
    plgci_teardown(c, &x);
}

static const char *plgci_type_name(plg_config_type t)
{
    switch (t) {
    case PLG_CONFIG_STRING:
        return "string";
    case PLG_CONFIG_INTEGER:
        return "integer";
    case PLG_CONFIG_BOOLEAN:
        return "boolean";
    case PLG_CONFIG_NUMBER:
        return "number";
    case PLG_CONFIG_DURATION:
        return "duration";
    }
    return "unknown type";
}

static void plgci_schema_02(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    size_t i, with_default = 0;
    plgci_ctx x;
    if (!plgci_readable(run, c))
        return;
    for (i = 0; d->config_schema != NULL && i < d->config_key_count; i++)
        if (d->config_schema[i].default_value != NULL)
            with_default++;
    if (with_default == 0) {
        plgci_unsupported(c, "no configuration key has a default");
        return;
    }
    if (plgci_setup(run, c, &x, 0, 0) == 0) {
        for (i = 0; i < d->config_key_count; i++) {
            plg_config_key one = d->config_schema[i];
            plg_config *cfg = NULL;
            plg_config_value v;
            plg_result r;
            int secret = (one.flags & PLG_KEY_SECRET) != 0;
            if (one.default_value == NULL || one.key == NULL)
                continue;
            one.flags &= ~PLG_KEY_REQUIRED; /* PC-SCHEMA-01 reports a required key's default */
            r = plg_config_parse_json(x.reg, &one, 1, "{}", 0, &cfg);
            memset(&v, 0, sizeof v);
            if (r != PLG_OK) {
                plgci_fail(c, "key \"%s\": its default %s%s%s does not validate as a %s: %s (%s)",
                           one.key, secret ? "" : "\"", secret ? "(secret)" : one.default_value,
                           secret ? "" : "\"", plgci_type_name(one.type), plgci_rname(r),
                           plgci_errmsg(&x));
            } else if (plg_config_get(cfg, one.key, &v) != PLG_OK || v.is_set != 2) {
                plgci_fail(c, "key \"%s\": its default was not applied to an empty configuration "
                              "(is_set %d, expected 2)",
                           one.key, v.is_set);
            } else if (v.type != one.type) {
                plgci_fail(c, "key \"%s\": the default came back as a %s, expected a %s", one.key,
                           plgci_type_name(v.type), plgci_type_name(one.type));
            } else if (one.type == PLG_CONFIG_STRING &&
                       (v.string == NULL || v.string_len != strlen(one.default_value) ||
                        memcmp(v.string, one.default_value, v.string_len) != 0)) {
                plgci_fail(c, "key \"%s\": the default string came back changed", one.key);
            }
            plg_config_destroy(cfg);
        }
    }
    plgci_teardown(c, &x);
}

/* Checks plg_config_format output of cfg: secrets redacted, never shown. */
static void plgci_check_format(plgci_case *c, plgci_ctx *x, const plg_config *cfg,
                               const char *which)
{
    const plg_descriptor *d = &x->run->copy;
    size_t need, i;
    char *buf;
    char where[96];
    if (cfg == NULL)
        return;
    need = plg_config_format(cfg, NULL, 0);
    buf = (char *)malloc(need + 1);
    if (buf == NULL) {
        plgci_fail(c, "suite: out of memory");
        return;
    }
    if (plg_config_format(cfg, buf, need + 1) != need)
        plgci_fail(c, "plg_config_format of %s returned different lengths", which);
    buf[need] = '\0';
    snprintf(where, sizeof where, "plg_config_format output of %s", which);
    plgci_scan(x, buf, where);
    for (i = 0; i < d->config_key_count; i++) {
        const plg_config_key *k = &d->config_schema[i];
        plgci_buf want;
        if (!(k->flags & PLG_KEY_SECRET) || k->key == NULL || !plg_config_is_set(cfg, k->key))
            continue;
        memset(&want, 0, sizeof want);
        plgci_put_json_string(&want, k->key, strlen(k->key));
        plgci_puts(&want, ":\"<redacted>\"");
        if (!want.oom && strstr(buf, want.p) == NULL)
            plgci_fail(c, "%s does not show secret key \"%s\" as \"<redacted>\"", where, k->key);
        free(want.p);
    }
    free(buf);
}

/* Index of a secret string key that accepts the marker value, or PLGCI_NONE. */
static size_t plgci_marker_key(const plgci_run *run)
{
    const plg_descriptor *d = &run->copy;
    size_t i, len = strlen(PLGCI_MARKER), lo, hi;
    for (i = 0; i < d->config_key_count; i++) {
        const plg_config_key *k = &d->config_schema[i];
        if (!(k->flags & PLG_KEY_SECRET) || k->type != PLG_CONFIG_STRING || k->key == NULL ||
            (k->allowed != NULL && k->allowed_count > 0))
            continue;
        if (k->min != NULL && (!plgci_parse_length(k->min, &lo) || lo > len))
            continue;
        if (k->max != NULL && (!plgci_parse_length(k->max, &hi) || hi < len))
            continue;
        return i;
    }
    return PLGCI_NONE;
}

static void plgci_schema_03(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    size_t i, secrets = 0, mk;
    char *marker_config = NULL, *marker_member = NULL;
    plgci_ctx x;
    if (!plgci_readable(run, c))
        return;
    for (i = 0; d->config_schema != NULL && i < d->config_key_count; i++)
        if (d->config_schema[i].flags & PLG_KEY_SECRET)
            secrets++;
    if (secrets == 0) {
        plgci_unsupported(c, "no configuration key is secret");
        return;
    }
    mk = plgci_marker_key(run);
    if (mk != PLGCI_NONE) {
        marker_member = plgci_member_string(d->config_schema[mk].key, PLGCI_MARKER,
                                            strlen(PLGCI_MARKER));
        if (marker_member != NULL)
            marker_config = plgci_object(run, mk, marker_member, NULL, 0);
    }
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plg_config *cfg = NULL;
        plg_result r;
        /* 1. The valid configuration, formatted: defaults and given secrets redacted. */
        r = plg_config_parse_json(x.reg, d->config_schema, d->config_key_count,
                                  plgci_valid(run), 0, &cfg);
        if (plgci_expect(c, &x, "validating valid_config", r, PLG_OK))
            plgci_check_format(c, &x, cfg, "the valid configuration");
        plg_config_destroy(cfg);
        /* 2. A lifecycle with the marker as the secret's value (else the valid configuration). */
        x.extra_secret = marker_config != NULL ? PLGCI_MARKER : NULL;
        r = PLG_ERR_INVALID_ARGUMENT;
        if (marker_config != NULL) {
            r = plg_init(x.reg, p, marker_config);
            if (r != PLG_OK)
                (void)plgci_errmsg(&x);
        }
        if (r != PLG_OK)
            r = plg_init(x.reg, p, plgci_valid(run));
        if (plgci_expect(c, &x, "plg_init with a secret set", r, PLG_OK)) {
            plgci_check_format(c, &x, plg_plugin_config(p), "the plugin's configuration");
            if (plg_start(x.reg, p) == PLG_OK) {
                (void)plgci_health_check(c, &x, p, "while started");
                (void)plg_stop(x.reg, p);
            } else {
                (void)plgci_errmsg(&x);
            }
            (void)plgci_health_check(c, &x, p, "while stopped");
            (void)plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN);
        }
        /* 3. A rejected configuration carrying the secret: the messages must not show it. */
        if (marker_member != NULL) {
            char *dup = plgci_object(run, mk, marker_member, marker_member, 0);
            if (dup != NULL) {
                cfg = NULL;
                r = plg_config_parse_json(x.reg, d->config_schema, d->config_key_count, dup, 0,
                                          &cfg);
                if (!plgci_is_config_error(r))
                    plgci_fail(c, "a configuration giving secret key \"%s\" twice: expected a "
                                  "PLG_ERR_CONFIG_* code, got %s",
                               d->config_schema[mk].key, plgci_rname(r));
                (void)plgci_errmsg(&x);
                for (i = 0; i < plg_config_problem_count(cfg); i++) {
                    const plg_config_problem *pr = plg_config_problem_at(cfg, i);
                    if (pr != NULL)
                        plgci_scan(&x, pr->message, "a configuration problem message");
                }
                plg_config_destroy(cfg);
                free(dup);
            }
        }
    }
    plgci_teardown(c, &x);
    free(marker_member);
    free(marker_config);
}

/* ---------------------------------------------------------------------------------------------
   Cases: configuration
   ------------------------------------------------------------------------------------------- */

static int plgci_values_equal(const plg_config_value *a, const plg_config_value *b)
{
    if (a->is_set != b->is_set || a->type != b->type)
        return 0;
    if (!a->is_set)
        return 1;
    switch (a->type) {
    case PLG_CONFIG_STRING:
        return a->string_len == b->string_len && a->string != NULL && b->string != NULL &&
               memcmp(a->string, b->string, a->string_len) == 0;
    case PLG_CONFIG_INTEGER:
    case PLG_CONFIG_DURATION:
        return a->integer == b->integer;
    case PLG_CONFIG_BOOLEAN:
        return a->boolean == b->boolean;
    case PLG_CONFIG_NUMBER:
        return a->number == b->number;
    }
    return 0;
}

static void plgci_config_01(plgci_run *run, plgci_case *c)
{
    const plg_descriptor *d = &run->copy;
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_op(c, &x, p, PLGCI_INIT, plgci_valid(run), PLG_OK, PLG_STATE_INITIALIZED)) {
            plg_config *ref = NULL;
            plg_result r;
            size_t i;
            plgci_expect_calls(c, "init", w->init_calls, 1, "for one plg_init");
            if (w->init_config == NULL)
                plgci_fail(c, "init received no configuration");
            else if (plg_plugin_config(p) != w->init_config)
                plgci_fail(c, "plg_plugin_config does not return the configuration init "
                              "received");
            r = plg_config_parse_json(x.reg, d->config_schema, d->config_key_count,
                                      plgci_valid(run), 0, &ref);
            if (plgci_expect(c, &x, "validating valid_config independently", r, PLG_OK) &&
                w->init_config != NULL) {
                for (i = 0; i < d->config_key_count; i++) {
                    const plg_config_key *k = &d->config_schema[i];
                    plg_config_value a, b;
                    plg_result ra, rb;
                    memset(&a, 0, sizeof a);
                    memset(&b, 0, sizeof b);
                    ra = plg_config_get(w->init_config, k->key, &a);
                    rb = plg_config_get(ref, k->key, &b);
                    if (ra != rb || (ra == PLG_OK && !plgci_values_equal(&a, &b)))
                        plgci_fail(c, "key \"%s\": the value init received differs from the "
                                      "validated one (is_set %d vs %d)",
                                   k->key, a.is_set, b.is_set);
                }
            }
            plg_config_destroy(ref);
            (void)plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN);
            if (plg_plugin_config(p) != NULL || plg_plugin_instance(p) != NULL)
                plgci_fail(c, "plg_plugin_config or plg_plugin_instance is not NULL after "
                              "shutdown");
        }
    }
    plgci_teardown(c, &x);
}

/* The invalid configurations of one strictness, then the valid one, in one registry. */
static void plgci_config_rejections(plgci_run *run, plgci_case *c, int strict)
{
    size_t i, count = 0;
    plgci_ctx x;
    for (i = 0; i < run->invalid_count; i++)
        if (run->invalid[i].strict == strict)
            count++;
    if (count == 0)
        return;
    if (plgci_setup(run, c, &x, strict, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        for (i = 0; i < run->invalid_count; i++) {
            const plgci_text *t = &run->invalid[i];
            plg_result r;
            int before = w->init_calls;
            if (t->strict != strict)
                continue;
            r = plg_init(x.reg, p, t->text);
            if (!plgci_is_config_error(r)) {
                plgci_fail(c, "plg_init with %s (%.120s): expected a PLG_ERR_CONFIG_* code, "
                              "got %s",
                           t->label, t->text, plgci_rname(r));
                if (r != PLG_OK)
                    (void)plgci_errmsg(&x);
            } else if (plgci_errmsg(&x)[0] == '\0') {
                plgci_fail(c, "plg_init with %s: rejected, but plg_errmsg is empty", t->label);
            }
            if (w->init_calls != before)
                plgci_fail(c, "plg_init with %s: the init callback ran for a rejected "
                              "configuration",
                           t->label);
            if (plg_plugin_state(p) != PLG_STATE_REGISTERED) {
                char what[200];
                snprintf(what, sizeof what, "after plg_init with %s", t->label);
                (void)plgci_expect_state(c, what, p, PLG_STATE_REGISTERED);
                break; /* cannot go on with this handle */
            }
        }
        if (plg_plugin_state(p) == PLG_STATE_REGISTERED &&
            plgci_op(c, &x, p, PLGCI_INIT, plgci_valid(run), PLG_OK, PLG_STATE_INITIALIZED)) {
            plgci_expect_calls(c, "init", w->init_calls, 1, "in total");
            (void)plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN);
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_config_02(plgci_run *run, plgci_case *c)
{
    if (run->oom) {
        plgci_fail(c, "suite: out of memory while generating configurations");
        return;
    }
    plgci_config_rejections(run, c, 0);
    plgci_config_rejections(run, c, 1);
}

static void plgci_config_03(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (run->unknown_key_config == NULL) {
        plgci_fail(c, "suite: out of memory while generating configurations");
        return;
    }
    if (plgci_setup(run, c, &x, 1, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        plg_result r = plg_init(x.reg, p, run->unknown_key_config);
        if (!plgci_is_config_error(r))
            plgci_fail(c, "plg_init in a strict registry with an unknown key (%.120s): expected "
                          "a PLG_ERR_CONFIG_* code, got %s",
                       run->unknown_key_config, plgci_rname(r));
        plgci_expect_calls(c, "init", w->init_calls, 0, "for a rejected configuration");
        if (plgci_expect_state(c, "after an unknown key in strict mode", p,
                               PLG_STATE_REGISTERED) &&
            plgci_op(c, &x, p, PLGCI_INIT, plgci_valid(run), PLG_OK, PLG_STATE_INITIALIZED))
            (void)plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN);
    }
    plgci_teardown(c, &x);
}

/* ---------------------------------------------------------------------------------------------
   Cases: lifecycle
   ------------------------------------------------------------------------------------------- */

/* Expected callback counts given how often the registry was asked; start and stop count only
   when the plugin has them. */
static void plgci_expect_counts(plgci_case *c, const plgci_wrap *w, int init, int start, int stop,
                                int shutdown, const char *when)
{
    plgci_expect_calls(c, "init", w->init_calls, init, when);
    plgci_expect_calls(c, "start", w->start_calls, w->orig.start != NULL ? start : 0, when);
    plgci_expect_calls(c, "stop", w->stop_calls, w->orig.stop != NULL ? stop : 0, when);
    plgci_expect_calls(c, "shutdown", w->shutdown_calls, shutdown, when);
}

/* Runs a sequence of legal transitions: "i" init, "s" start, "t" stop, "d" shutdown. */
static int plgci_sequence(plgci_case *c, plgci_ctx *x, plg_plugin *p, const char *seq)
{
    static const plg_state after[] = {PLG_STATE_INITIALIZED, PLG_STATE_STARTED, PLG_STATE_STOPPED,
                                      PLG_STATE_SHUT_DOWN};
    for (; *seq; seq++) {
        plgci_op_kind op = *seq == 'i' ? PLGCI_INIT
                           : *seq == 's' ? PLGCI_START
                           : *seq == 't' ? PLGCI_STOP
                                         : PLGCI_SHUTDOWN;
        if (!plgci_op(c, x, p, op, op == PLGCI_INIT ? plgci_valid(x->run) : NULL, PLG_OK,
                      after[op]))
            return 0;
    }
    return 1;
}

static void plgci_lifecycle(plgci_run *run, plgci_case *c, const char *seq, int starts)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plgci_wrap *w = plgci_wrap_find(&x, x.plugin);
        if (plgci_sequence(c, &x, x.plugin, seq)) {
            plgci_expect_counts(c, w, 1, starts, starts, 1, "in the sequence");
            if (plg_plugin_instance(x.plugin) != NULL || plg_plugin_config(x.plugin) != NULL)
                plgci_fail(c, "plg_plugin_instance or plg_plugin_config is not NULL after "
                              "shutdown");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_life_01(plgci_run *run, plgci_case *c)
{
    plgci_lifecycle(run, c, "id", 0);
}

static void plgci_life_02(plgci_run *run, plgci_case *c)
{
    plgci_lifecycle(run, c, "istd", 1);
}

static void plgci_life_03(plgci_run *run, plgci_case *c)
{
    plgci_lifecycle(run, c, "iststd", 2);
}

static void plgci_life_04(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_op(c, &x, p, PLGCI_STOP, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_REGISTERED) &&
            plgci_sequence(c, &x, p, "i") &&
            plgci_op(c, &x, p, PLGCI_STOP, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_INITIALIZED) &&
            plgci_sequence(c, &x, p, "st") &&
            plgci_op(c, &x, p, PLGCI_STOP, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_STOPPED) &&
            plgci_sequence(c, &x, p, "d"))
            plgci_expect_counts(c, w, 1, 1, 1, 1, "with three rejected stops");
    }
    plgci_teardown(c, &x);
}

static void plgci_life_05(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_sequence(c, &x, p, "is") &&
            plgci_op(c, &x, p, PLGCI_START, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_STARTED) &&
            plgci_sequence(c, &x, p, "td"))
            plgci_expect_counts(c, w, 1, 1, 1, 1, "with a rejected second start");
    }
    plgci_teardown(c, &x);
}

static void plgci_life_06(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_sequence(c, &x, p, "id") &&
            plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_SHUT_DOWN))
            plgci_expect_counts(c, w, 1, 0, 0, 1, "with a rejected second shutdown");
    }
    plgci_teardown(c, &x);
}

static void plgci_life_07(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        const char *valid = plgci_valid(run);
        if (plgci_op(c, &x, p, PLGCI_START, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_REGISTERED) &&
            plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_ERR_INVALID_STATE,
                     PLG_STATE_REGISTERED) &&
            plgci_sequence(c, &x, p, "i") &&
            plgci_op(c, &x, p, PLGCI_INIT, valid, PLG_ERR_INVALID_STATE, PLG_STATE_INITIALIZED) &&
            plgci_sequence(c, &x, p, "s") &&
            plgci_op(c, &x, p, PLGCI_INIT, valid, PLG_ERR_INVALID_STATE, PLG_STATE_STARTED) &&
            plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_STARTED) &&
            plgci_sequence(c, &x, p, "t") &&
            plgci_op(c, &x, p, PLGCI_INIT, valid, PLG_ERR_INVALID_STATE, PLG_STATE_STOPPED) &&
            plgci_sequence(c, &x, p, "d") &&
            plgci_op(c, &x, p, PLGCI_INIT, valid, PLG_ERR_INVALID_STATE, PLG_STATE_SHUT_DOWN) &&
            plgci_op(c, &x, p, PLGCI_START, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_SHUT_DOWN) &&
            plgci_op(c, &x, p, PLGCI_STOP, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_SHUT_DOWN))
            plgci_expect_counts(c, w, 1, 1, 1, 1, "with every illegal call rejected");
    }
    plgci_teardown(c, &x);
}

static void plgci_life_08(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin, *again = NULL, *found = NULL;
        if (plgci_sequence(c, &x, p, "istd") &&
            plgci_expect(c, &x, "plg_unregister after shutdown", plg_unregister(x.reg, p),
                         PLG_OK)) {
            plg_result r = plg_find(x.reg, run->copy.type, run->copy.name, &found);
            (void)plgci_expect(c, &x, "plg_find after plg_unregister", r, PLG_ERR_NOT_FOUND);
            if (plg_plugin_name(p) == NULL || strcmp(plg_plugin_name(p), run->copy.name) != 0)
                plgci_fail(c, "the handle is not readable after plg_unregister");
            if (plgci_register(c, &x, &again, 1) == 0 && plgci_sequence(c, &x, again, "istd"))
                plgci_expect_counts(c, plgci_wrap_find(&x, again), 1, 1, 1, 1,
                                    "in the second lifecycle");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_life_09(plgci_run *run, plgci_case *c)
{
    plgci_ctx a, b;
    int ok_a = plgci_setup(run, c, &a, 0, 1) == 0;
    int ok_b = ok_a && plgci_setup(run, c, &b, 0, 1) == 0;
    if (ok_a && ok_b) {
        if (plgci_sequence(c, &a, a.plugin, "i") && plgci_sequence(c, &b, b.plugin, "i") &&
            plgci_sequence(c, &a, a.plugin, "s") && plgci_sequence(c, &b, b.plugin, "s")) {
            (void)plgci_health_check(c, &a, a.plugin, "in the first registry");
            (void)plgci_health_check(c, &b, b.plugin, "in the second registry");
            if (plgci_sequence(c, &b, b.plugin, "td")) {
                (void)plgci_expect_state(c, "the first registry's plugin after the second's "
                                            "shutdown",
                                         a.plugin, PLG_STATE_STARTED);
                (void)plgci_health_check(c, &a, a.plugin, "after the other one shut down");
                if (plgci_sequence(c, &a, a.plugin, "td")) {
                    plgci_expect_counts(c, plgci_wrap_find(&a, a.plugin), 1, 1, 1, 1,
                                        "in the first registry");
                    plgci_expect_counts(c, plgci_wrap_find(&b, b.plugin), 1, 1, 1, 1,
                                        "in the second registry");
                }
            }
        }
    }
    if (ok_a)
        plgci_teardown(c, &b); /* b was set up (perhaps partly) only when a was */
    plgci_teardown(c, &a);
}

/* ---------------------------------------------------------------------------------------------
   Cases: health
   ------------------------------------------------------------------------------------------- */

static void plgci_health_case(plgci_run *run, plgci_case *c, const char *seq, const char *when)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        if (plgci_sequence(c, &x, x.plugin, seq)) {
            (void)plgci_health_check(c, &x, x.plugin, when);
            (void)plgci_health_check(c, &x, x.plugin, "asked again");
            (void)plgci_sequence(c, &x, x.plugin,
                                 plg_plugin_state(x.plugin) == PLG_STATE_STARTED ? "td" : "d");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_health_01(plgci_run *run, plgci_case *c)
{
    plgci_health_case(run, c, "i", "while initialized");
}

static void plgci_health_02(plgci_run *run, plgci_case *c)
{
    plgci_health_case(run, c, "is", "while started");
}

static void plgci_health_03(plgci_run *run, plgci_case *c)
{
    plgci_health_case(run, c, "ist", "after stop");
}

static void plgci_health_04(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        int s = plgci_health_check(c, &x, p, "while registered");
        if (s >= 0 && s != PLG_HEALTH_UNHEALTHY)
            plgci_fail(c, "plg_health while registered: expected UNHEALTHY, got %d", s);
        if (plgci_sequence(c, &x, p, "id")) {
            s = plgci_health_check(c, &x, p, "after shutdown");
            if (s >= 0 && s != PLG_HEALTH_UNHEALTHY)
                plgci_fail(c, "plg_health after shutdown: expected UNHEALTHY, got %d", s);
        }
        if (w->health_calls != 0)
            plgci_fail(c, "the health callback ran %d times for a plugin that was not running",
                       w->health_calls);
    }
    plgci_teardown(c, &x);
}

/* ---------------------------------------------------------------------------------------------
   Cases: the *_all calls
   ------------------------------------------------------------------------------------------- */

static void plgci_all_from(plgci_run *run, plgci_case *c, const char *seq, int inits, int starts)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_sequence(c, &x, p, seq) &&
            plgci_expect(c, &x, "plg_shutdown_all", plg_shutdown_all(x.reg), PLG_OK) &&
            plgci_expect_state(c, "after plg_shutdown_all", p, PLG_STATE_SHUT_DOWN)) {
            /* started: plg_shutdown_all stops it; stopped: it was stopped once already */
            plgci_expect_counts(c, w, inits, starts, starts, inits, "for plg_shutdown_all");
            (void)plgci_expect(c, &x, "a second plg_shutdown_all", plg_shutdown_all(x.reg),
                               PLG_OK);
            plgci_expect_counts(c, w, inits, starts, starts, inits,
                                "after a second plg_shutdown_all");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_all_01(plgci_run *run, plgci_case *c)
{
    plgci_all_from(run, c, "", 0, 0);
}

static void plgci_all_02(plgci_run *run, plgci_case *c)
{
    plgci_all_from(run, c, "i", 1, 0);
}

static void plgci_all_03(plgci_run *run, plgci_case *c)
{
    plgci_all_from(run, c, "is", 1, 1);
}

static void plgci_all_04(plgci_run *run, plgci_case *c)
{
    plgci_all_from(run, c, "ist", 1, 1);
}

static void plgci_all_05(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        if (plgci_expect(c, &x, "plg_set_config with valid_config",
                         plg_set_config(x.reg, p, plgci_valid(run)), PLG_OK) &&
            plgci_expect_state(c, "after plg_set_config", p, PLG_STATE_REGISTERED) &&
            plgci_expect(c, &x, "plg_start_all", plg_start_all(x.reg), PLG_OK) &&
            plgci_expect_state(c, "after plg_start_all", p, PLG_STATE_STARTED)) {
            if (w->init_config == NULL)
                plgci_fail(c, "init received no configuration from plg_start_all");
            if (plgci_expect(c, &x, "plg_stop_all", plg_stop_all(x.reg), PLG_OK) &&
                plgci_expect_state(c, "after plg_stop_all", p, PLG_STATE_STOPPED) &&
                plgci_expect(c, &x, "plg_start_all from stopped", plg_start_all(x.reg), PLG_OK) &&
                plgci_expect_state(c, "after the second plg_start_all", p, PLG_STATE_STARTED) &&
                plgci_expect(c, &x, "plg_shutdown_all", plg_shutdown_all(x.reg), PLG_OK) &&
                plgci_expect_state(c, "after plg_shutdown_all", p, PLG_STATE_SHUT_DOWN))
                plgci_expect_counts(c, w, 1, 2, 2, 1, "for start_all, stop_all, start_all, "
                                                      "shutdown_all");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_all_06(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plgci_wrap *w = plgci_wrap_find(&x, x.plugin);
        if (plgci_sequence(c, &x, x.plugin, "is")) {
            plgci_destroy(&x);
            plgci_expect_counts(c, w, 1, 1, 1, 1, "for plg_registry_destroy while started");
        }
    }
    plgci_teardown(c, &x);
}

/* ---------------------------------------------------------------------------------------------
   Cases: interface, failures
   ------------------------------------------------------------------------------------------- */

static void plgci_iface_01(plgci_run *run, plgci_case *c)
{
    const plg_interface *in = &run->copy.provides;
    char why[256];
    plgci_ctx x;
    int readable = plgci_readable(run, c);
    if (readable && in->id == NULL && in->vtable == NULL) {
        plgci_unsupported(c, "the plugin provides no interface");
        return;
    }
    if (readable) {
        if (!plgci_name_ok(in->id, why, sizeof why))
            plgci_fail(c, "interface id %s", why);
        if (in->vtable == NULL)
            plgci_fail(c, "interface %s has no vtable", in->id ? in->id : "(NULL)");
        if (in->abi_version == 0)
            plgci_fail(c, "interface abi_version is 0, expected 1 or more");
        if (in->struct_size == 0)
            plgci_fail(c, "interface struct_size is 0, expected sizeof the vtable struct");
    }
    if (plgci_setup(run, c, &x, 0, 1) == 0 && c->outcome != PLG_CONTRACT_FAIL) {
        plg_plugin *p = x.plugin;
        uint32_t abi = 0;
        const void *vt = plg_plugin_vtable(p, in->id, in->abi_version, &abi);
        if (vt != in->vtable)
            plgci_fail(c, "plg_plugin_vtable(\"%s\", %u) does not return the plugin's vtable",
                       in->id, (unsigned)in->abi_version);
        else if (abi != in->abi_version)
            plgci_fail(c, "plg_plugin_vtable reports ABI %u, the plugin declares %u",
                       (unsigned)abi, (unsigned)in->abi_version);
        if (in->abi_version < UINT32_MAX &&
            plg_plugin_vtable(p, in->id, in->abi_version + 1, NULL) != NULL)
            plgci_fail(c, "plg_plugin_vtable returns a vtable for a newer ABI than declared");
        if (plg_plugin_vtable(p, "plg-contract.no-such-interface", 0, NULL) != NULL)
            plgci_fail(c, "plg_plugin_vtable returns a vtable for another interface id");
        if (plgci_sequence(c, &x, p, "i") &&
            plg_plugin_vtable(p, in->id, in->abi_version, NULL) != in->vtable)
            plgci_fail(c, "plg_plugin_vtable changes after init");
        if (plg_plugin_state(p) == PLG_STATE_INITIALIZED)
            (void)plgci_sequence(c, &x, p, "d");
    }
    plgci_teardown(c, &x);
}

static void plgci_fail_01(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (run->opt.failing_init_config == NULL) {
        plgci_unsupported(c, "no options.failing_init_config");
        return;
    }
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        char reason[256];
        if (plgci_op(c, &x, p, PLGCI_INIT, run->opt.failing_init_config, PLG_ERR_PLUGIN_FAILED,
                     PLG_STATE_FAILED)) {
            int s;
            plgci_expect_calls(c, "init", w->init_calls, 1, "for the failing plg_init");
            if (plg_plugin_failure(p, reason, sizeof reason) == 0)
                plgci_fail(c, "plg_plugin_failure is empty for a failed plugin");
            if (plgci_errmsg(&x)[0] == '\0')
                plgci_fail(c, "plg_errmsg is empty after a failed init");
            if (plg_plugin_instance(p) != NULL)
                plgci_fail(c, "a plugin whose init failed has an instance");
            s = plgci_health_check(c, &x, p, "after a failed init");
            if (s >= 0 && s != PLG_HEALTH_UNHEALTHY)
                plgci_fail(c, "plg_health after a failed init: expected UNHEALTHY, got %d", s);
            (void)plgci_op(c, &x, p, PLGCI_START, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_FAILED);
            if (plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN))
                plgci_expect_counts(c, w, 1, 0, 0, 0, "after a failed init");
        }
    }
    plgci_teardown(c, &x);
}

static void plgci_fail_02(plgci_run *run, plgci_case *c)
{
    plgci_ctx x;
    if (run->opt.failing_start_config == NULL) {
        plgci_unsupported(c, "no options.failing_start_config");
        return;
    }
    if (run->desc != NULL && run->copy.start == NULL) {
        plgci_fail(c, "options.failing_start_config is set but the plugin has no start callback");
        return;
    }
    if (plgci_setup(run, c, &x, 0, 1) == 0) {
        plg_plugin *p = x.plugin;
        plgci_wrap *w = plgci_wrap_find(&x, p);
        char reason[256];
        if (plgci_op(c, &x, p, PLGCI_INIT, run->opt.failing_start_config, PLG_OK,
                     PLG_STATE_INITIALIZED) &&
            plgci_op(c, &x, p, PLGCI_START, NULL, PLG_ERR_PLUGIN_FAILED, PLG_STATE_FAILED)) {
            if (plg_plugin_failure(p, reason, sizeof reason) == 0)
                plgci_fail(c, "plg_plugin_failure is empty for a failed plugin");
            (void)plgci_op(c, &x, p, PLGCI_STOP, NULL, PLG_ERR_INVALID_STATE, PLG_STATE_FAILED);
            if (plgci_op(c, &x, p, PLGCI_SHUTDOWN, NULL, PLG_OK, PLG_STATE_SHUT_DOWN))
                plgci_expect_counts(c, w, 1, 1, 0, 1, "after a failed start");
        }
    }
    plgci_teardown(c, &x);
}

/* ---------------------------------------------------------------------------------------------
   The case table and the runner
   ------------------------------------------------------------------------------------------- */

typedef struct plgci_case_def {
    const char *id;
    const char *title;
    void (*fn)(plgci_run *run, plgci_case *c);
} plgci_case_def;

static const plgci_case_def plgci_cases[] = {
    {"PC-META-01", "descriptor registers in a fresh registry", plgci_meta_01},
    {"PC-META-02", "type and name are valid names", plgci_meta_02},
    {"PC-META-03", "version is a semver 2.0.0 version", plgci_meta_03},
    {"PC-META-04", "description is not empty", plgci_meta_04},
    {"PC-META-05", "capabilities are valid and unique", plgci_meta_05},
    {"PC-META-06", "host API range parses and accepts the host version", plgci_meta_06},
    {"PC-META-07", "dependencies are well-formed and present", plgci_meta_07},
    {"PC-META-08", "registering twice is PLG_ERR_DUPLICATE", plgci_meta_08},
    {"PC-SCHEMA-01", "configuration schema is well-formed", plgci_schema_01},
    {"PC-SCHEMA-02", "every default parses and is applied", plgci_schema_02},
    {"PC-SCHEMA-03", "secrets never appear in output, messages or logs", plgci_schema_03},
    {"PC-CONFIG-01", "valid configuration reaches init validated", plgci_config_01},
    {"PC-CONFIG-02", "invalid configurations are rejected before init", plgci_config_02},
    {"PC-CONFIG-03", "unknown key is rejected in strict mode", plgci_config_03},
    {"PC-LIFE-01", "init shutdown", plgci_life_01},
    {"PC-LIFE-02", "init start stop shutdown", plgci_life_02},
    {"PC-LIFE-03", "init start stop start stop shutdown", plgci_life_03},
    {"PC-LIFE-04", "stop without start is rejected", plgci_life_04},
    {"PC-LIFE-05", "second start is rejected", plgci_life_05},
    {"PC-LIFE-06", "second shutdown is rejected, shutdown ran once", plgci_life_06},
    {"PC-LIFE-07", "other illegal transitions are rejected", plgci_life_07},
    {"PC-LIFE-08", "unregister, register again, second lifecycle", plgci_life_08},
    {"PC-LIFE-09", "two registries at once", plgci_life_09},
    {"PC-HEALTH-01", "health while initialized", plgci_health_01},
    {"PC-HEALTH-02", "health while started", plgci_health_02},
    {"PC-HEALTH-03", "health after stop", plgci_health_03},
    {"PC-HEALTH-04", "health when registered or shut down is UNHEALTHY", plgci_health_04},
    {"PC-ALL-01", "shutdown_all from registered", plgci_all_01},
    {"PC-ALL-02", "shutdown_all from initialized", plgci_all_02},
    {"PC-ALL-03", "shutdown_all from started", plgci_all_03},
    {"PC-ALL-04", "shutdown_all from stopped", plgci_all_04},
    {"PC-ALL-05", "set_config start_all stop_all start_all shutdown_all", plgci_all_05},
    {"PC-ALL-06", "registry destroy while started", plgci_all_06},
    {"PC-IFACE-01", "interface is complete and returned by plg_plugin_vtable", plgci_iface_01},
    {"PC-FAIL-01", "init failure marks failed and leaks nothing", plgci_fail_01},
    {"PC-FAIL-02", "start failure marks failed, shutdown runs once", plgci_fail_02},
};

#define PLGCI_CASE_COUNT (sizeof plgci_cases / sizeof plgci_cases[0])

PLGCI_DEF size_t plg_contract_case_count(void)
{
    return PLGCI_CASE_COUNT;
}

PLGCI_DEF const char *plg_contract_case_id(size_t index)
{
    return index < PLGCI_CASE_COUNT ? plgci_cases[index].id : NULL;
}

PLGCI_DEF const char *plg_contract_case_title(size_t index)
{
    return index < PLGCI_CASE_COUNT ? plgci_cases[index].title : NULL;
}

PLGCI_DEF const char *plg_contract_outcome_name(plg_contract_outcome outcome)
{
    switch (outcome) {
    case PLG_CONTRACT_PASS:
        return "PASS";
    case PLG_CONTRACT_FAIL:
        return "FAIL";
    case PLG_CONTRACT_NOT_SUPPORTED:
        return "NOT SUPPORTED";
    }
    return "?";
}

PLGCI_DEF const plg_contract_case_result *
plg_contract_find_result(const plg_contract_report *report, const char *id)
{
    size_t i, n;
    if (report == NULL || report->results == NULL || id == NULL)
        return NULL;
    n = report->case_count < report->result_capacity ? report->case_count
                                                     : report->result_capacity;
    for (i = 0; i < n; i++)
        if (report->results[i].id != NULL && strcmp(report->results[i].id, id) == 0)
            return &report->results[i];
    return NULL;
}

PLGCI_DEF plg_contract_options plg_contract_resolved(const plg_contract_options *options)
{
    plg_contract_options o;
    memset(&o, 0, sizeof o);
    if (options != NULL)
        o = *options;
    if (o.valid_config == NULL)
        o.valid_config = "{}";
    if (o.host_api_version == NULL)
        o.host_api_version = "1.0.0";
    if (o.out == NULL)
        o.out = stdout;
    if (o.filter == NULL)
        o.filter = "";
    return o;
}

/* The suite's copy of the descriptor: the fields this header knows, zero past the plugin's
   struct_size; and the same with the trampolines. */
static void plgci_copy_descriptor(plgci_run *run)
{
    const plg_descriptor *d = run->desc;
    size_t n;
    memset(&run->copy, 0, sizeof run->copy);
    if (d == NULL)
        return;
    n = d->struct_size < sizeof(plg_descriptor) ? d->struct_size : sizeof(plg_descriptor);
    if (n < offsetof(plg_descriptor, type))
        n = offsetof(plg_descriptor, type);
    memcpy(&run->copy, d, n);
    run->wrapped = run->copy;
    if (run->wrapped.struct_size > sizeof(plg_descriptor))
        run->wrapped.struct_size = (uint32_t)sizeof(plg_descriptor);
    if (run->copy.init != NULL)
        run->wrapped.init = plgci_tr_init;
    if (run->copy.start != NULL)
        run->wrapped.start = plgci_tr_start;
    if (run->copy.stop != NULL)
        run->wrapped.stop = plgci_tr_stop;
    if (run->copy.shutdown != NULL)
        run->wrapped.shutdown = plgci_tr_shutdown;
    if (run->copy.health != NULL)
        run->wrapped.health = plgci_tr_health;
    snprintf(run->who, sizeof run->who, "%.*s/%.*s", PLG_NAME_MAX,
             run->copy.type != NULL ? run->copy.type : "(null)", PLG_NAME_MAX,
             run->copy.name != NULL ? run->copy.name : "(null)");
}

PLGCI_DEF int plg_contract_run(const plg_descriptor *desc, const plg_contract_options *options,
                               plg_contract_report *report)
{
    plgci_run run;
    size_t i, passed = 0, failed = 0, unsupported = 0, ran = 0;
    FILE *out;
    memset(&run, 0, sizeof run);
    run.desc = desc;
    run.opt = plg_contract_resolved(options);
    run.report = report;
    out = run.opt.quiet ? NULL : run.opt.out;
    plgci_copy_descriptor(&run);
    if (desc == NULL)
        snprintf(run.who, sizeof run.who, "(null descriptor)");
    plgci_prepare(&run);
    if (report != NULL) {
        report->passed = report->failed = report->not_supported = report->case_count = 0;
    }
    for (i = 0; i < PLGCI_CASE_COUNT; i++) {
        plgci_case c;
        const plgci_case_def *def = &plgci_cases[i];
        if (strncmp(def->id, run.opt.filter, strlen(run.opt.filter)) != 0)
            continue;
        memset(&c, 0, sizeof c);
        c.id = def->id;
        c.title = def->title;
        c.outcome = PLG_CONTRACT_PASS;
        def->fn(&run, &c);
        if (c.outcome == PLG_CONTRACT_PASS)
            passed++;
        else if (c.outcome == PLG_CONTRACT_FAIL)
            failed++;
        else
            unsupported++;
        if (report != NULL && report->results != NULL && ran < report->result_capacity) {
            plg_contract_case_result *res = &report->results[ran];
            res->id = c.id;
            res->title = c.title;
            res->outcome = c.outcome;
            memcpy(res->message, c.msg, sizeof res->message);
        }
        ran++;
        if (out != NULL) {
            if (c.outcome == PLG_CONTRACT_PASS)
                fprintf(out, "PASS %s %s\n", c.id, c.title);
            else
                fprintf(out, "%s %s %s: %s\n", plg_contract_outcome_name(c.outcome), c.id,
                        c.title, c.msg);
            fflush(out);
        }
    }
    if (out != NULL) {
        fprintf(out, "plugin contract %s: %lu passed, %lu failed, %lu not supported\n", run.who,
                (unsigned long)passed, (unsigned long)failed, (unsigned long)unsupported);
        fflush(out);
    }
    if (report != NULL) {
        report->passed = passed;
        report->failed = failed;
        report->not_supported = unsupported;
        report->case_count = ran;
    }
    plgci_release(&run);
    return (int)failed;
}

#endif /* PLUGIN_CONTRACT_IMPLEMENTATION */

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
