/* plugin_registry.h - a plugin registry for C services, stb-style single header.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #include "plugin_registry.h"

   to compile the implementation there; every other file includes the header plainly. Including
   the header again in the same file, before or after the define, is harmless.

   The implementation needs POSIX threads (link with -pthread). It uses pthread mutexes, once and
   thread-specific keys only, which strict -std=c99 also declares, and the __atomic builtins of
   gcc and clang. Loading plugin libraries uses dlopen, which glibc 2.34 and later has in libc;
   older systems link with -ldl (or define PLG_NO_DLOPEN). Names: functions and types start with
   `plg_`, macros and enum values with `PLG_`.

   A complete minimal program (C99; from C++, fill the descriptor's fields by assignment):

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #include "plugin_registry.h"
       #include <stdio.h>

       static plg_result greeter_init(plg_plugin *self, const plg_config *config, void **instance)
       {
           (void)self;
           *instance = (void *)plg_config_string(config, "greeting"); // owned by the registry
           return PLG_OK;
       }

       static void greeter_shutdown(plg_plugin *self, void *instance)
       {
           (void)self;
           (void)instance;
       }

       static const plg_config_key greeter_schema[] = {
           {.key = "greeting", .type = PLG_CONFIG_STRING, .default_value = "hello"},
       };

       static const plg_descriptor greeter = {
           .abi_version = PLG_DESCRIPTOR_ABI_VERSION,
           .struct_size = sizeof(plg_descriptor),
           .type = "greeter",
           .name = "greeter",
           .version = "1.0.0",
           .description = "says hello",
           .config_schema = greeter_schema,
           .config_key_count = 1,
           .init = greeter_init,
           .shutdown = greeter_shutdown,
       };

       int main(void)
       {
           plg_registry *reg = NULL;
           plg_plugin *p = NULL;
           if (plg_registry_create(NULL, &reg) != PLG_OK)
               return 1;
           if (plg_register(reg, &greeter, &p) != PLG_OK ||
               plg_init(reg, p, "{\"greeting\":\"bonjour\"}") != PLG_OK) {
               fprintf(stderr, "%s\n", plg_errmsg(reg));
               plg_registry_destroy(reg);
               return 1;
           }
           printf("%s\n", (const char *)plg_plugin_instance(p)); // bonjour
           plg_registry_destroy(reg); // shuts every plugin down, in reverse dependency order
           return 0;
       }

   CONCEPTS
   ========
   registry    An object you create from a plg_registry_desc (zero means default for every
               field). Several may coexist; plg_default_registry() offers a process-wide one.
   descriptor  What a plugin declares: type (a namespace such as "persistence"), name, semantic
               version, description, capabilities, the host API range it needs, dependencies,
               configuration schema, lifecycle callbacks and the interface (vtable) it provides.
               The registry copies everything it keeps, so a descriptor may be a temporary.
   plugin      The registry's node for a registered descriptor (plg_plugin *). A handle stays
               valid until the registry is destroyed, even after plg_unregister.
   interface   A vtable with an id, an ABI version and the struct size the plugin was compiled
               with. A host declares the interfaces it understands (plg_declare_interface); a
               plugin providing one is checked at registration: ABI range, struct size, and a
               host callback that verifies the methods required by that ABI version are set.
   lifecycle   registered -> initialized -> started <-> stopped -> shut down, plus failed.
               plg_start_all starts in dependency order; plg_stop_all and plg_shutdown_all go in
               reverse. A plugin whose callback fails, or whose dependency failed, is marked
               failed with its reason and every other plugin keeps working.

       state        legal calls (anything else is PLG_ERR_INVALID_STATE and calls no callback)
       registered   plg_init -> initialized (or failed if init returns an error; an invalid
                    configuration is rejected before init runs and leaves it registered)
       initialized  plg_start -> started/failed, plg_shutdown -> shut down, plg_health
       started      plg_stop -> stopped/failed, plg_health
       stopped      plg_start -> started/failed, plg_shutdown -> shut down, plg_health
       failed       plg_shutdown -> shut down (its shutdown callback runs if init had succeeded)
       shut down    final; plg_unregister removes it from lookups

   ERRORS
   ======
   Every fallible call returns a plg_result (PLG_OK is 0); plg_result_string() names a code.
   The specifics (which key, which field, both values) are in plg_errmsg(reg): the message of the
   calling thread's most recent failed call on that registry, so threads never see each other's
   messages. Secret configuration values never appear in any message or log line. Every pointer
   argument may be NULL: you get PLG_ERR_INVALID_ARGUMENT, never a crash.

   THREAD SAFETY
   =============
   Lookups (plg_find*, plg_list_*, plg_plugin_* accessors) never block: they read an index that
   writers publish atomically, so many threads look up at once without serialising. Registration
   and unregistration serialise on one registry mutex. Lifecycle calls on one plugin serialise on
   that plugin's mutex; calls on different plugins run in parallel. Plugin callbacks run on the
   calling thread with the plugin's mutex held: a callback may look plugins up and call their
   vtables, but must not drive its own lifecycle. plg_acquire and plg_release never block either
   (a lookup and atomic operations). plg_load and plg_load_dir serialise on the registry mutex
   like registration; plg_reload serialises with other reloads and the *_all walks, and never
   makes a caller wait.

   DYNAMIC PLUGINS
   ===============
   A plugin library is a shared object that includes this header (declarations only) and names
   its descriptors once with PLG_EXPORT_PLUGINS. It calls plg_* functions of the host, so the
   host exports them: link the host with -rdynamic. Build plugins with -fvisibility=hidden (the
   entry function stays exported) so that their own symbols never interpose on the host's.

       // counter.c: cc -std=c99 -shared -fPIC -fvisibility=hidden -I. counter.c -o counter.so
       #include "plugin_registry.h"
       #include <stdlib.h>

       typedef struct counter_vtable {
           long (*add)(void *instance, long n);
       } counter_vtable;

       static long counter_add(void *instance, long n)
       {
           return *(long *)instance += n; // one caller at a time in this example
       }
       static plg_result counter_init(plg_plugin *self, const plg_config *config, void **instance)
       {
           long *total = (long *)malloc(sizeof *total);
           (void)self;
           if (total == NULL)
               return PLG_ERR_NO_MEMORY;
           *total = plg_config_integer(config, "start");
           *instance = total;
           return PLG_OK;
       }
       static void counter_shutdown(plg_plugin *self, void *instance)
       {
           (void)self;
           free(instance);
       }
       static const counter_vtable counter_vt = {counter_add};
       static const plg_config_key counter_schema[] = {
           {.key = "start", .type = PLG_CONFIG_INTEGER, .default_value = "0"},
       };
       static const plg_descriptor counter = {
           .abi_version = PLG_DESCRIPTOR_ABI_VERSION, .struct_size = sizeof(plg_descriptor),
           .type = "demo", .name = "counter", .version = "1.0.0",
           .config_schema = counter_schema, .config_key_count = 1,
           .init = counter_init, .shutdown = counter_shutdown,
           .provides = {"demo.counter", 1, sizeof(counter_vtable), &counter_vt},
       };
       PLG_EXPORT_PLUGINS(&counter);

       // host.c: cc -std=c99 -I. host.c -o host -pthread -rdynamic
       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #include "plugin_registry.h"
       #include <stdio.h>

       typedef struct counter_vtable {
           long (*add)(void *instance, long n);
       } counter_vtable;

       int main(void)
       {
           plg_registry *reg = NULL;
           plg_plugin *p = NULL;
           plg_lease lease;
           if (plg_registry_create(NULL, &reg) != PLG_OK)
               return 1;
           if (plg_load(reg, "./counter.so", NULL, &p, 1, NULL) != PLG_OK || // ABI checked
               plg_init(reg, p, "{\"start\": 40}") != PLG_OK || plg_start(reg, p) != PLG_OK) {
               fprintf(stderr, "%s\n", plg_errmsg(reg));
               plg_registry_destroy(reg);
               return 1;
           }
           // A caller holds the version it uses; a reload waits for it, never the other way.
           if (plg_acquire(reg, "demo", "counter", &lease) == PLG_OK) {
               const counter_vtable *vt = (const counter_vtable *)lease.vtable;
               printf("%ld\n", vt->add(lease.instance, 2)); // 42
               plg_release(&lease);
           }
           // After counter.so was replaced on disk: load, init, start, health-check the new
           // build, switch, drain, stop the old one; on any failure the old one keeps serving.
           if (plg_reload(reg, p, NULL, NULL, &p) != PLG_OK)
               fprintf(stderr, "%s\n", plg_errmsg(reg));
           plg_registry_destroy(reg);
           return 0;
       }

   Loading (plg_load, plg_load_dir) checks the library's ABI block field by field (magic, layout
   version and size, byte order, pointer, size_t, int and enum sizes, PLG_NAME_MAX, the header's
   major version, the descriptor ABI and the sizes of every struct the descriptor points to),
   then the descriptors as plg_register does, the host API range included; a mismatch is refused
   with the field and both values before any plugin callback runs. The library is loaded from a
   private copy of the file (unlinked once mapped), so the same path can be reloaded and a file
   overwritten in place cannot corrupt running code; PLG_LOAD_IN_PLACE turns that off. Accepted
   libraries are never unloaded (unloading is where crashes live) unless PLG_LOAD_UNLOAD_AT_DESTROY
   asks for dlclose at plg_registry_destroy. Crash reports name the private copy
   (plg-<pid>-...-counter.so); symbolise them against the original file, same bytes.

   Hot reload (plg_reload): see its declaration for the steps and "Leases" in the
   implementation for the memory-ordering argument. Running a plugin in a child process with
   resource limits is plugin_isolation.h.

   COMPILE-TIME OPTIONS (define before the implementation include)
   ====================
   PLG_MALLOC(size, ctx), PLG_FREE(ptr, size, ctx)   default allocator (malloc/free); the
                                run-time hooks in plg_registry_desc.allocator take precedence
   PLG_ASSERT(cond)             internal invariant checks (default: assert); never used on input
   PLG_API                      decoration of every public function (default: extern)
   PLG_STATIC                   make every function static (one TU uses the library privately)
   PLG_NAME_MAX                 longest type/name/capability/key accepted (default 64)
   PLG_NO_DLOPEN                no shared-object loading (hosts that must never load code);
                                plg_load, plg_load_dir and plg_reload return
                                PLG_ERR_NOT_SUPPORTED. Implied on platforms without dlopen.

   SEMANTIC VERSIONS
   =================
   plg_semver_* implement semver 2.0.0 exactly: no leading zeros, pre-release precedence by
   identifiers, build metadata ignored for precedence, numeric identifiers of any length compared
   without overflow. plg_range_* implement node-semver ranges: primitives (< <= > >= =), x-ranges
   (1.x, 1.2.*, *), tilde (~1.2.3), caret (^0.2.3), hyphen ranges (1.2.3 - 2.3.4), sets joined by
   whitespace (and) and || (or). A version with a pre-release tag satisfies a range only if some
   comparator of the satisfied set has a pre-release tag on the same major.minor.patch. As in
   node-semver, "" and a set of wildcards only mean "*", and a "*" set makes the whole range "*"
   (so "1.2.3-beta || *" does not admit 1.2.3-beta). Forms node-semver accepts only by accident
   of its regular expressions ("< =1.2", "1.x.3", "1.2+build" in a range) are rejected.

   CONFIGURATION
   =============
   A plugin declares its keys (plg_config_key). The registry validates a JSON object text such as
   {"addr":"localhost:6379","password":""} or key/value string pairs, applies defaults, and
   reports every problem at once (plg_config_problem_at), each naming its key, with the byte
   offset for malformed JSON. Types: string, integer (int64), boolean, number (double, finite),
   duration (milliseconds: a JSON number, or text such as "250ms", "1.5s", "2m", "1h30m", "1d").
   Non-string values may also be given as JSON strings ("6379"), since that is what key/value
   pairs and environment variables carry. JSON null means "not given". Unknown keys are errors
   with strict_config, warnings otherwise. Bounds: min/max are inclusive and written as text in
   the key's type; for strings they bound the length in bytes.

   ABI POLICY
   ==========
   Public structs and vtables only ever grow at the end. Every struct a plugin hands the registry
   starts with its ABI version and size; a new field is appended together with a bump of that ABI
   version, and the registry reads a field only when the caller's size covers it. Existing fields
   never move, change size or disappear within a major version (a test records every offset).

   LICENCE: see the end of the file.
*/
#ifndef PLUGIN_REGISTRY_H
#define PLUGIN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define PLG_VERSION_MAJOR 0
#define PLG_VERSION_MINOR 1
#define PLG_VERSION_PATCH 0
#define PLG_VERSION_STRING "0.1.0"

/* ABI version of plg_descriptor. 1: every field declared below. */
#define PLG_DESCRIPTOR_ABI_VERSION 1u

#ifndef PLG_NAME_MAX
#define PLG_NAME_MAX 64
#endif

/* Longest semantic version text accepted, excluding the terminating NUL. */
#define PLG_SEMVER_MAX 255

/* "no byte offset" in a plg_config_problem. */
#define PLG_NO_OFFSET ((size_t)-1)

#ifndef PLG_API
#if defined(PLG_STATIC)
#if defined(__GNUC__)
#define PLG_API static __attribute__((unused))
#else
#define PLG_API static
#endif
#else
#define PLG_API extern
#endif
#endif

#if defined(__GNUC__)
#define PLG_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define PLG_PRINTF(fmt, first)
#endif

/* In C++ every public enum has the fixed underlying type int, so any int (a code from a newer
   plugin, say) is a valid value rather than undefined behaviour, and the size matches C's. */
#ifdef __cplusplus
#define PLG_ENUM_BASE : int
#else
#define PLG_ENUM_BASE
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
   Results
   ------------------------------------------------------------------------------------------- */

/* X(name, value, description). Values are part of the ABI: append, never renumber. */
#define PLG_RESULT_LIST(X)                                                                         \
    X(PLG_OK, 0, "ok")                                                                             \
    X(PLG_ERR_INVALID_ARGUMENT, 1, "invalid argument")                                             \
    X(PLG_ERR_NO_MEMORY, 2, "out of memory")                                                       \
    X(PLG_ERR_INVALID_NAME, 3, "invalid name")                                                     \
    X(PLG_ERR_INVALID_VERSION, 4, "invalid semantic version")                                      \
    X(PLG_ERR_INVALID_RANGE, 5, "invalid version range")                                           \
    X(PLG_ERR_DUPLICATE, 6, "duplicate plugin")                                                    \
    X(PLG_ERR_MISSING_CALLBACK, 7, "required callback missing")                                    \
    X(PLG_ERR_VTABLE_TOO_SMALL, 8, "vtable struct smaller than its ABI version requires")          \
    X(PLG_ERR_ABI_MISMATCH, 9, "unsupported ABI version")                                          \
    X(PLG_ERR_HOST_API_MISMATCH, 10, "host API version outside the plugin's required range")       \
    X(PLG_ERR_NOT_FOUND, 11, "not found")                                                          \
    X(PLG_ERR_VERSION_MISMATCH, 12, "no version satisfies the range")                              \
    X(PLG_ERR_INVALID_STATE, 13, "illegal lifecycle transition")                                   \
    X(PLG_ERR_DEPENDENCY_CYCLE, 14, "dependency cycle")                                            \
    X(PLG_ERR_DEPENDENCY_FAILED, 15, "dependency missing, unsatisfied or failed")                  \
    X(PLG_ERR_PLUGIN_FAILED, 16, "plugin callback failed")                                         \
    X(PLG_ERR_CONFIG_SYNTAX, 17, "malformed configuration JSON")                                   \
    X(PLG_ERR_CONFIG_INVALID, 18, "configuration does not match the schema")                       \
    X(PLG_ERR_CONFIG_UNKNOWN_KEY, 19, "unknown configuration key")                                 \
    X(PLG_ERR_CONFIG_MISSING_KEY, 20, "required configuration key missing")                        \
    X(PLG_ERR_CONFIG_TYPE, 21, "configuration value has the wrong type")                           \
    X(PLG_ERR_CONFIG_RANGE, 22, "configuration value out of range or not allowed")                 \
    X(PLG_ERR_CONFIG_DUPLICATE_KEY, 23, "configuration key given twice")                           \
    X(PLG_ERR_INVALID_SCHEMA, 24, "malformed configuration schema")                                \
    X(PLG_ERR_LIMIT, 25, "registry limit reached")                                                 \
    X(PLG_ERR_INTERNAL, 26, "internal error")                                                     \
    X(PLG_ERR_LOAD, 27, "shared library could not be loaded")                                      \
    X(PLG_ERR_NOT_SUPPORTED, 28, "not supported by this build")                                    \
    X(PLG_ERR_TIMEOUT, 29, "timed out")                                                            \
    X(PLG_ERR_UNHEALTHY, 30, "plugin reported itself unhealthy")

typedef enum plg_result PLG_ENUM_BASE {
#define PLG_RESULT_ENUM_(name, value, text) name = value,
    PLG_RESULT_LIST(PLG_RESULT_ENUM_)
#undef PLG_RESULT_ENUM_
    PLG_RESULT_COUNT_
} plg_result;

/* A static string naming the code, e.g. "PLG_ERR_DUPLICATE: duplicate plugin". */
PLG_API const char *plg_result_string(plg_result result);

/* The library's version, PLG_VERSION_STRING of the implementation that was compiled. */
PLG_API const char *plg_version(void);

/* ---------------------------------------------------------------------------------------------
   Registry setup
   ------------------------------------------------------------------------------------------- */

typedef enum plg_log_level PLG_ENUM_BASE {
    PLG_LOG_ERROR = 0,
    PLG_LOG_WARN = 1,
    PLG_LOG_INFO = 2,
    PLG_LOG_DEBUG = 3
} plg_log_level;

/* Both functions or neither. free_fn receives the size that was asked of alloc_fn. */
typedef struct plg_allocator {
    void *(*alloc_fn)(size_t size, void *user);
    void (*free_fn)(void *ptr, size_t size, void *user);
    void *user;
} plg_allocator;

/* Silent by default. Messages are complete lines without a trailing newline. */
typedef struct plg_logger {
    void (*log_fn)(void *user, plg_log_level level, const char *message);
    void *user;
} plg_logger;

typedef struct plg_registry_desc {
    plg_allocator allocator;      /* default: PLG_MALLOC / PLG_FREE */
    plg_logger logger;            /* default: silent */
    const char *host_api_version; /* semver the host implements; default "1.0.0" */
    int strict_config;            /* unknown configuration keys are errors; default 0 (warnings) */
    size_t max_plugins;           /* 0: no limit but memory */
    size_t max_config_bytes;      /* longest configuration text accepted; default 65536 */
    void *user_data;              /* the host's context, for callbacks: plg_registry_user_data */
} plg_registry_desc;

typedef struct plg_registry plg_registry;
typedef struct plg_plugin plg_plugin;
typedef struct plg_config plg_config;

/* desc may be NULL (all defaults). On failure *out is NULL. */
PLG_API plg_result plg_registry_create(const plg_registry_desc *desc, plg_registry **out);
/* Shuts every plugin down (plg_shutdown_all), then frees everything. NULL is a no-op. */
PLG_API void plg_registry_destroy(plg_registry *reg);
/* The setup in force, every default filled in. A zeroed struct for NULL. */
PLG_API plg_registry_desc plg_registry_resolved(const plg_registry *reg);
/* The calling thread's message for its last failed call on reg ("" if none; a static text for a
   NULL reg). Valid until this thread's next call on reg. */
PLG_API const char *plg_errmsg(const plg_registry *reg);
/* Process-wide registry with default setup, created on first use; never destroyed. NULL only if
   memory ran out. */
PLG_API plg_registry *plg_default_registry(void);

/* The user_data given in plg_registry_desc (NULL for a NULL registry). */
PLG_API void *plg_registry_user_data(const plg_registry *reg);

/* Allocation through the registry's hooks, for plugins and hosts that want one accounting. */
PLG_API void *plg_registry_alloc(plg_registry *reg, size_t size);
PLG_API void plg_registry_free(plg_registry *reg, void *ptr, size_t size);

/* ---------------------------------------------------------------------------------------------
   Semantic versions and ranges
   ------------------------------------------------------------------------------------------- */

/* A parsed version. `text` holds the version as given; the other fields locate its parts in it
   (offset, length). prerelease_len and build_len are 0 when absent. */
typedef struct plg_semver {
    char text[PLG_SEMVER_MAX + 1];
    uint16_t major_off, major_len;
    uint16_t minor_off, minor_len;
    uint16_t patch_off, patch_len;
    uint16_t prerelease_off, prerelease_len;
    uint16_t build_off, build_len;
} plg_semver;

/* Parses a full semver 2.0.0 version ("1.2.3-rc.1+build.5"; no "v" prefix, no spaces).
   On failure returns PLG_ERR_INVALID_VERSION, zeroes *out and, if message is not NULL, writes a
   sentence naming the offending part. */
PLG_API plg_result plg_semver_parse(const char *text, plg_semver *out, char *message,
                                    size_t message_size);
/* Precedence: negative, 0 or positive. Build metadata is ignored. NULL (or a struct that
   plg_semver_parse did not fill) sorts first; two such compare equal. */
PLG_API int plg_semver_compare(const plg_semver *a, const plg_semver *b);
/* Parses and compares two version texts; *cmp as plg_semver_compare. */
PLG_API plg_result plg_semver_compare_text(const char *a, const char *b, int *cmp);
/* The major, minor or patch number; UINT64_MAX if it does not fit in 64 bits (use the text to
   tell that apart from the value 18446744073709551615 itself); 0 for NULL. */
PLG_API uint64_t plg_semver_major(const plg_semver *v);
PLG_API uint64_t plg_semver_minor(const plg_semver *v);
PLG_API uint64_t plg_semver_patch(const plg_semver *v);

/* Checks a node-semver range. PLG_ERR_INVALID_RANGE with a sentence in message otherwise. */
PLG_API plg_result plg_range_check(const char *range, char *message, size_t message_size);
/* *satisfied = 1 if the version satisfies the range (pre-release rule included), else 0. */
PLG_API plg_result plg_range_satisfies(const char *range, const plg_semver *version,
                                       int *satisfied, char *message, size_t message_size);
/* The same with a version text. */
PLG_API plg_result plg_range_satisfies_text(const char *range, const char *version,
                                            int *satisfied);

/* ---------------------------------------------------------------------------------------------
   Configuration schemas and values
   ------------------------------------------------------------------------------------------- */

typedef enum plg_config_type PLG_ENUM_BASE {
    PLG_CONFIG_STRING = 1,
    PLG_CONFIG_INTEGER = 2,
    PLG_CONFIG_BOOLEAN = 3,
    PLG_CONFIG_NUMBER = 4,
    PLG_CONFIG_DURATION = 5
} plg_config_type;

#define PLG_KEY_REQUIRED 1u /* the key must be given (a default makes no sense with it) */
#define PLG_KEY_SECRET 2u   /* the value never appears in messages, logs or plg_config_format */

typedef struct plg_config_key {
    const char *key;              /* [A-Za-z0-9_.-], starting with a letter or digit */
    plg_config_type type;
    unsigned flags;               /* PLG_KEY_REQUIRED | PLG_KEY_SECRET */
    const char *default_value;    /* text in the key's type, or NULL */
    const char *min;              /* inclusive lower bound as text, or NULL */
    const char *max;              /* inclusive upper bound as text, or NULL */
    const char *const *allowed;   /* strings only: the permitted values, or NULL for any */
    size_t allowed_count;
    const char *description;      /* one line for generated docs, or NULL */
} plg_config_key;

/* Flags for plg_config_parse_*: 0 follows the registry's strict_config. */
#define PLG_CONFIG_STRICT 1u  /* unknown keys are errors */
#define PLG_CONFIG_LENIENT 2u /* unknown keys are warnings */

typedef struct plg_config_problem {
    plg_result code;     /* PLG_ERR_CONFIG_* */
    int is_warning;      /* 1 for a problem that did not make the configuration invalid */
    const char *key;     /* the key it concerns, "" when none (syntax errors) */
    size_t offset;       /* byte offset in the JSON text, or PLG_NO_OFFSET */
    const char *message; /* a sentence naming the key; never a secret value */
} plg_config_problem;

typedef struct plg_config_value {
    plg_config_type type;
    int is_set;          /* 0 absent, 1 given, 2 from the default */
    const char *string;  /* STRING (owned by the config), else NULL */
    size_t string_len;   /* STRING: bytes, NUL bytes allowed inside */
    int64_t integer;     /* INTEGER; DURATION in milliseconds */
    double number;       /* NUMBER */
    int boolean;         /* BOOLEAN: 0 or 1 */
} plg_config_value;

/* Checks that a schema is well-formed: valid unique keys, known types, defaults and bounds that
   parse in the key's type, min <= max, the default within bounds and allowed values, allowed
   only on strings, no default on a required key. reg may be NULL. */
PLG_API plg_result plg_schema_check(plg_registry *reg, const plg_config_key *schema,
                                    size_t key_count);

/* Validates a JSON object text (NUL-terminated; NULL or "" mean {}) against a schema and
   applies defaults. On PLG_OK *out holds the typed values (warnings, if any, among its
   problems; they are also logged at PLG_LOG_WARN). On a configuration error the result is
   PLG_ERR_CONFIG_SYNTAX or PLG_ERR_CONFIG_INVALID, plg_errmsg has every error, and *out (when
   not NULL) still holds a config whose problems list errors and warnings one by one; the caller
   destroys it in both cases, before the registry it was parsed with (it frees through that
   registry's allocator). reg may be NULL (default allocator, lenient). */
PLG_API plg_result plg_config_parse_json(plg_registry *reg, const plg_config_key *schema,
                                         size_t key_count, const char *json, unsigned flags,
                                         plg_config **out);
/* The same from key/value text pairs: pairs[2*i] is a key, pairs[2*i+1] its value. */
PLG_API plg_result plg_config_parse_pairs(plg_registry *reg, const plg_config_key *schema,
                                          size_t key_count, const char *const *pairs,
                                          size_t pair_count, unsigned flags, plg_config **out);
PLG_API void plg_config_destroy(plg_config *config);

PLG_API size_t plg_config_problem_count(const plg_config *config);
PLG_API const plg_config_problem *plg_config_problem_at(const plg_config *config, size_t index);

/* Typed getters. A key that is absent, unknown or of another type gives NULL / 0. */
PLG_API plg_result plg_config_get(const plg_config *config, const char *key,
                                  plg_config_value *out);
/* 0: absent, 1: given, 2: taken from the default. */
PLG_API int plg_config_is_set(const plg_config *config, const char *key);
PLG_API const char *plg_config_string(const plg_config *config, const char *key);
PLG_API int64_t plg_config_integer(const plg_config *config, const char *key);
PLG_API int plg_config_boolean(const plg_config *config, const char *key);
PLG_API double plg_config_number(const plg_config *config, const char *key);
PLG_API int64_t plg_config_duration_ms(const plg_config *config, const char *key);

/* Writes the effective configuration as a JSON object, secrets as "<redacted>", like snprintf:
   returns the length it needed (excluding the NUL) and truncates to size. The output is for
   people and logs; it parses back only where "<redacted>" meets the secret key's own rules. */
PLG_API size_t plg_config_format(const plg_config *config, char *buf, size_t size);

/* ---------------------------------------------------------------------------------------------
   Plugin descriptors
   ------------------------------------------------------------------------------------------- */

typedef enum plg_state PLG_ENUM_BASE {
    PLG_STATE_REGISTERED = 1,
    PLG_STATE_INITIALIZED = 2,
    PLG_STATE_STARTED = 3,
    PLG_STATE_STOPPED = 4,
    PLG_STATE_SHUT_DOWN = 5,
    PLG_STATE_FAILED = 6
} plg_state;

typedef enum plg_health_status PLG_ENUM_BASE {
    PLG_HEALTH_OK = 0,
    PLG_HEALTH_DEGRADED = 1,
    PLG_HEALTH_UNHEALTHY = 2
} plg_health_status;

/* Callbacks. `self` is the plugin's node: use it for plg_plugin_set_error, plg_log, plg_alloc and
   plg_plugin_registry. A callback reports failure by returning a code other than PLG_OK (any code;
   PLG_ERR_PLUGIN_FAILED is usual) and may explain why with plg_plugin_set_error. */
typedef plg_result (*plg_init_fn)(plg_plugin *self, const plg_config *config, void **instance);
typedef plg_result (*plg_start_fn)(plg_plugin *self, void *instance);
typedef plg_result (*plg_stop_fn)(plg_plugin *self, void *instance);
typedef void (*plg_shutdown_fn)(plg_plugin *self, void *instance);
/* Writes an optional explanation (NUL-terminated, truncated) into message. */
typedef plg_health_status (*plg_health_fn)(plg_plugin *self, void *instance, char *message,
                                           size_t message_size);

typedef struct plg_dependency {
    const char *type;  /* NULL: the dependent's own type */
    const char *name;
    const char *range; /* node-semver range; NULL or "" accept any version */
    int optional;      /* 1: started first when present, ignored when absent */
} plg_dependency;

typedef struct plg_interface {
    const char *id;        /* e.g. "persistence.store"; NULL when the plugin provides none */
    uint32_t abi_version;  /* the vtable's ABI version the plugin was compiled against */
    uint32_t struct_size;  /* sizeof the vtable struct the plugin was compiled against */
    const void *vtable;
} plg_interface;

typedef struct plg_descriptor {
    uint32_t abi_version;  /* PLG_DESCRIPTOR_ABI_VERSION */
    uint32_t struct_size;  /* sizeof(plg_descriptor) */
    const char *type;
    const char *name;
    const char *version;   /* semver 2.0.0 */
    const char *description;
    const char *const *capabilities;
    size_t capability_count;
    const char *host_api_range;  /* node-semver range of host API versions; NULL: any */
    const plg_dependency *dependencies;
    size_t dependency_count;
    const plg_config_key *config_schema;
    size_t config_key_count;
    int priority;                /* higher is listed first; ties in registration order */
    plg_init_fn init;            /* required */
    plg_start_fn start;          /* optional */
    plg_stop_fn stop;            /* optional */
    plg_shutdown_fn shutdown;    /* required */
    plg_health_fn health;        /* optional: a started plugin without it is OK */
    plg_interface provides;
    void *user_data;             /* handed back by plg_plugin_user_data */
} plg_descriptor;

/* ---------------------------------------------------------------------------------------------
   Interfaces declared by the host
   ------------------------------------------------------------------------------------------- */

typedef struct plg_interface_spec {
    const char *id;
    uint32_t min_abi_version;        /* oldest vtable ABI the host still calls */
    uint32_t max_abi_version;        /* newest the host knows */
    /* struct_sizes[v - min_abi_version]: the least struct size for ABI version v. */
    const uint32_t *struct_sizes;
    /* Optional: checks the methods that ABI version requires. Returns PLG_OK or
       PLG_ERR_MISSING_CALLBACK with the method named in message. */
    plg_result (*validate)(const plg_interface *iface, char *message, size_t message_size,
                           void *user);
    void *user;
} plg_interface_spec;

/* Registers an interface the host understands; the registry copies the spec and its
   struct_sizes. Plugins providing an undeclared id are accepted unchecked. Declaring the same id
   again with an identical spec succeeds (so each of several backends may declare it); with a
   different spec it is PLG_ERR_DUPLICATE. */
PLG_API plg_result plg_declare_interface(plg_registry *reg, const plg_interface_spec *spec);

/* ---------------------------------------------------------------------------------------------
   Registration and lookup
   ------------------------------------------------------------------------------------------- */

/* Validates and copies a descriptor. Checks, each with its own code: descriptor ABI and size,
   names (PLG_ERR_INVALID_NAME), version (PLG_ERR_INVALID_VERSION), ranges, required callbacks,
   the host API range, the schema, the interface, and (type, name) uniqueness. out may be NULL. */
PLG_API plg_result plg_register(plg_registry *reg, const plg_descriptor *desc, plg_plugin **out);
/* Removes a registered or shut-down plugin from lookups; its handle stays readable (accessors),
   and plg_init / plg_set_config on it return PLG_ERR_NOT_FOUND. */
PLG_API plg_result plg_unregister(plg_registry *reg, plg_plugin *plugin);

/* By (type, name), in constant time. */
PLG_API plg_result plg_find(plg_registry *reg, const char *type, const char *name,
                            plg_plugin **out);
/* The highest version satisfying range among plugins of `type` named `name` (any name when name
   is NULL). PLG_ERR_NOT_FOUND when none has the name, PLG_ERR_VERSION_MISMATCH when none
   satisfies. */
PLG_API plg_result plg_find_version(plg_registry *reg, const char *type, const char *name,
                                    const char *range, plg_plugin **out);
/* Plugins of a type, highest priority first, then registration order. Writes at most capacity
   handles and returns how many there are (call with capacity 0 to size the array). */
PLG_API size_t plg_list_type(plg_registry *reg, const char *type, plg_plugin **out,
                             size_t capacity);
/* Plugins with a capability, in the same order; type NULL means every type. */
PLG_API size_t plg_list_capability(plg_registry *reg, const char *type, const char *capability,
                                   plg_plugin **out, size_t capacity);
/* Number of plugins currently registered. */
PLG_API size_t plg_plugin_count(plg_registry *reg);

/* Writes a JSON description of every plugin registered in reg, in registration order, for
   documentation generators (gen/scaffold.py docs) and operators: type, name, version,
   description, state, priority, capabilities, host API range, dependencies, interface, the
   library it was loaded from, and every configuration key with its type, required and secret
   flags, default, bounds, allowed values and description. A secret key's default is written as
   "<redacted>" and its allowed values as null: no secret ever appears. Format and version:
   docs/plugin-development.md ("format_version": 1).
   Like snprintf: returns the length it needed (excluding the NUL) and writes at most size bytes,
   NUL-terminated when size > 0 (buf may be NULL when size is 0). NULL reg: writes "" and
   returns 0. Lock-free like the lookups: a registration running concurrently may or may not be
   included, so size with a first call and retry while the result does not fit. */
PLG_API size_t plg_registry_describe_json(plg_registry *reg, char *buf, size_t size);

/* Accessors; NULL/0 for a NULL plugin. The descriptor is the registry's own copy. */
PLG_API const plg_descriptor *plg_plugin_descriptor(const plg_plugin *plugin);
PLG_API const char *plg_plugin_type(const plg_plugin *plugin);
PLG_API const char *plg_plugin_name(const plg_plugin *plugin);
PLG_API const char *plg_plugin_version(const plg_plugin *plugin);
PLG_API plg_state plg_plugin_state(const plg_plugin *plugin);
PLG_API int plg_plugin_has_capability(const plg_plugin *plugin, const char *capability);
/* Copies the reason the plugin failed ("" unless failed); returns the length needed. */
PLG_API size_t plg_plugin_failure(const plg_plugin *plugin, char *buf, size_t size);
/* The vtable for interface_id if the plugin provides it at ABI version >= min_abi_version;
   *abi_version (may be NULL) receives the plugin's ABI version. */
PLG_API const void *plg_plugin_vtable(const plg_plugin *plugin, const char *interface_id,
                                      uint32_t min_abi_version, uint32_t *abi_version);
/* What init stored in *instance (NULL before init and after shutdown). */
PLG_API void *plg_plugin_instance(const plg_plugin *plugin);
/* The configuration init received (NULL before init and after shutdown). */
PLG_API const plg_config *plg_plugin_config(const plg_plugin *plugin);
PLG_API void *plg_plugin_user_data(const plg_plugin *plugin);
PLG_API plg_registry *plg_plugin_registry(const plg_plugin *plugin);

/* For callbacks: explain the failure being returned (secrets must not be passed in). */
PLG_API void plg_plugin_set_error(plg_plugin *self, const char *fmt, ...) PLG_PRINTF(2, 3);
/* For callbacks: log through the registry's logger, prefixed with "type/name: ". */
PLG_API void plg_log(plg_plugin *self, plg_log_level level, const char *fmt, ...)
    PLG_PRINTF(3, 4);
PLG_API void *plg_alloc(plg_plugin *self, size_t size);
PLG_API void plg_free(plg_plugin *self, void *ptr, size_t size);

/* ---------------------------------------------------------------------------------------------
   Lifecycle
   ------------------------------------------------------------------------------------------- */

/* Validates config_json (NULL: the one stored by plg_set_config, else "{}") against the plugin's
   schema, then calls init. An invalid configuration returns its PLG_ERR_CONFIG_* code and leaves
   the plugin registered; a failing init marks it failed and returns PLG_ERR_PLUGIN_FAILED, with
   the callback's own code and reason in plg_errmsg and plg_plugin_failure. Likewise for start
   and stop. plg_start refuses (PLG_ERR_DEPENDENCY_FAILED, state unchanged) while a required
   dependency is not started. */
PLG_API plg_result plg_init(plg_registry *reg, plg_plugin *plugin, const char *config_json);
/* Stores the configuration plg_start_all uses to initialise a registered plugin (validated now;
   replaced by a later call). Without one, plg_start_all initialises with "{}". */
PLG_API plg_result plg_set_config(plg_registry *reg, plg_plugin *plugin, const char *config_json);
PLG_API plg_result plg_start(plg_registry *reg, plg_plugin *plugin);
PLG_API plg_result plg_stop(plg_registry *reg, plg_plugin *plugin);
PLG_API plg_result plg_shutdown(plg_registry *reg, plg_plugin *plugin);

/* Initialises (with the stored configuration) and starts every registered, initialized or
   stopped plugin, dependencies first. A plugin whose dependency is missing, unsatisfied or failed
   is marked failed and not started; the members of a dependency cycle are marked failed and named.
   Returns PLG_OK when every plugin ended started, else the first problem's code
   (PLG_ERR_DEPENDENCY_CYCLE takes precedence) with every failure in plg_errmsg. */
PLG_API plg_result plg_start_all(plg_registry *reg);
/* Stops every started plugin, dependents before their dependencies. */
PLG_API plg_result plg_stop_all(plg_registry *reg);
/* Stops, then shuts down every plugin that is not shut down yet, in reverse dependency order. */
PLG_API plg_result plg_shutdown_all(plg_registry *reg);

typedef struct plg_health_report {
    plg_health_status status;
    size_t failing;      /* plg_health_all: plugins not OK */
    char message[512];   /* who is not OK and why, "name: reason; ..." (truncated) */
} plg_health_report;

/* One plugin: a started plugin's health callback (OK without one); initialized and stopped
   plugins are asked too; failed ones are UNHEALTHY with their reason; registered and shut-down
   ones are UNHEALTHY ("not running"). */
PLG_API plg_result plg_health(plg_registry *reg, plg_plugin *plugin, plg_health_report *out);
/* Every started or failed plugin; the worst status, and the ones not OK named in message. */
PLG_API plg_result plg_health_all(plg_registry *reg, plg_health_report *out);

PLG_API const char *plg_state_name(plg_state state);

/* ---------------------------------------------------------------------------------------------
   Automatic registration (opt-in)
   ------------------------------------------------------------------------------------------- */

/* PLG_AUTO_REGISTER(descriptor_variable) registers the descriptor into plg_default_registry()
   before main() runs, with a constructor function (gcc and clang).

   Pitfall: a linker copies an object file out of a static archive (.a) only when something
   references it. A file whose only job is to auto-register is never referenced, so it is
   silently dropped and its plugin is missing. Cure, either of:
     - link the archive whole:  -Wl,--whole-archive libplugins.a -Wl,--no-whole-archive
     - reference the generated function: -Wl,-u,plg_autoreg_<descriptor_variable>
   Shared objects and plain object files do not have the problem.

   Failures cannot be returned before main(); they are kept: plg_auto_register_status() returns
   the first failure's code and copies its message. */
#if defined(__GNUC__)
#define PLG_AUTO_REGISTER(desc)                                                                    \
    void plg_autoreg_##desc(void);                                                                 \
    __attribute__((constructor)) void plg_autoreg_##desc(void) { (void)plg_auto_register(&desc); }
#endif
PLG_API plg_result plg_auto_register(const plg_descriptor *desc);
PLG_API plg_result plg_auto_register_status(char *message, size_t message_size);

/* ---------------------------------------------------------------------------------------------
   Plugin libraries (shared objects)
   ------------------------------------------------------------------------------------------- */

/* A plugin library exports one function, PLG_LIBRARY_ENTRY, that returns a plg_library_abi:
   the build settings that change the ABI, then the descriptors. Write it with
   PLG_EXPORT_PLUGINS. The host compares every field with its own before it registers anything,
   so no plugin callback ever runs in a library built against an incompatible header. */
#define PLG_LIBRARY_MAGIC 0x4C474C50u      /* the bytes "PLGL" read as a little-endian uint32 */
#define PLG_LIBRARY_ABI_VERSION 1u         /* layout of plg_library_abi; 1: every field below */
#define PLG_LIBRARY_BYTE_ORDER 0x01020304u /* stored natively: tells the byte order apart */
#define PLG_LIBRARY_ENTRY plg_library_entry_v1
#define PLG_LIBRARY_ENTRY_NAME "plg_library_entry_v1"
#define PLG_LIBRARY_MAX_PLUGINS 256        /* most descriptors one library may export */

typedef struct plg_library_abi {
    uint32_t magic;               /* PLG_LIBRARY_MAGIC */
    uint32_t abi_version;         /* PLG_LIBRARY_ABI_VERSION */
    uint32_t struct_size;         /* sizeof(plg_library_abi) */
    uint32_t byte_order;          /* PLG_LIBRARY_BYTE_ORDER */
    uint32_t pointer_size;        /* sizeof(void *) */
    uint32_t size_t_size;         /* sizeof(size_t) */
    uint32_t int_size;            /* sizeof(int) */
    uint32_t enum_size;           /* sizeof(plg_result): every public enum has this size */
    uint32_t name_max;            /* PLG_NAME_MAX */
    uint32_t header_major;        /* PLG_VERSION_MAJOR of the plugin_registry.h it included */
    uint32_t descriptor_abi;      /* PLG_DESCRIPTOR_ABI_VERSION */
    uint32_t descriptor_size;     /* sizeof(plg_descriptor) */
    uint32_t config_key_size;     /* sizeof(plg_config_key) */
    uint32_t config_value_size;   /* sizeof(plg_config_value) */
    uint32_t config_problem_size; /* sizeof(plg_config_problem) */
    uint32_t dependency_size;     /* sizeof(plg_dependency) */
    const char *header_version;   /* PLG_VERSION_STRING, quoted in messages */
    size_t plugin_count;          /* 1..PLG_LIBRARY_MAX_PLUGINS */
    const plg_descriptor *const *plugins;
} plg_library_abi;

typedef const plg_library_abi *(*plg_library_entry_fn)(void);

#ifdef __cplusplus
#define PLG_LIBRARY_LINKAGE extern "C"
#else
#define PLG_LIBRARY_LINKAGE extern
#endif
#if defined(__GNUC__)
#define PLG_LIBRARY_VISIBILITY __attribute__((visibility("default")))
#else
#define PLG_LIBRARY_VISIBILITY
#endif

/* In one file of a plugin library, at file scope, with the addresses of its descriptors:
       PLG_EXPORT_PLUGINS(&my_plugin, &my_other_plugin);
   It defines the entry function (exported even under -fvisibility=hidden, unmangled in C++)
   returning the ABI block filled in by this header as the library's compiler sees it. */
#define PLG_EXPORT_PLUGINS(...)                                                                    \
    static const plg_descriptor *const plg_exported_plugins_[] = {__VA_ARGS__};                   \
    PLG_LIBRARY_LINKAGE PLG_LIBRARY_VISIBILITY const plg_library_abi *PLG_LIBRARY_ENTRY(void);    \
    PLG_LIBRARY_LINKAGE PLG_LIBRARY_VISIBILITY const plg_library_abi *PLG_LIBRARY_ENTRY(void)     \
    {                                                                                              \
        static const plg_library_abi plg_exported_abi_ = {                                         \
            PLG_LIBRARY_MAGIC, PLG_LIBRARY_ABI_VERSION, (uint32_t)sizeof(plg_library_abi),         \
            PLG_LIBRARY_BYTE_ORDER, (uint32_t)sizeof(void *), (uint32_t)sizeof(size_t),            \
            (uint32_t)sizeof(int), (uint32_t)sizeof(plg_result), (uint32_t)PLG_NAME_MAX,           \
            (uint32_t)PLG_VERSION_MAJOR, PLG_DESCRIPTOR_ABI_VERSION,                               \
            (uint32_t)sizeof(plg_descriptor), (uint32_t)sizeof(plg_config_key),                    \
            (uint32_t)sizeof(plg_config_value), (uint32_t)sizeof(plg_config_problem),              \
            (uint32_t)sizeof(plg_dependency), PLG_VERSION_STRING,                                  \
            sizeof plg_exported_plugins_ / sizeof plg_exported_plugins_[0], plg_exported_plugins_}; \
        return &plg_exported_abi_;                                                                 \
    }                                                                                              \
    PLG_LIBRARY_LINKAGE const plg_library_abi *PLG_LIBRARY_ENTRY(void)

/* Flags of plg_load_options. */
#define PLG_LOAD_IN_PLACE 1u          /* dlopen the path itself instead of a private copy */
#define PLG_LOAD_UNLOAD_AT_DESTROY 2u /* dlclose the library in plg_registry_destroy */

typedef struct plg_load_options {
    unsigned flags;        /* PLG_LOAD_*; default 0: private copy, never unloaded */
    const char *temp_dir;  /* where private copies go; default $TMPDIR, else /tmp */
} plg_load_options;

/* Loads one plugin library and registers every plugin it exports, all or none. Checks, in this
   order and each with the field and both values in the message: the file loads (PLG_ERR_LOAD,
   with the loader's own text), the entry function exists (PLG_ERR_LOAD), the ABI block
   (PLG_ERR_ABI_MISMATCH: magic, abi_version, struct_size, byte_order, pointer_size, size_t_size,
   int_size, enum_size, name_max, header_major, descriptor_abi, descriptor_size, config_key_size,
   config_value_size, config_problem_size, dependency_size, plugin_count), then everything
   plg_register checks, host_api_range included (PLG_ERR_HOST_API_MISMATCH). No plugin callback
   runs: the plugins are left registered, to be initialised and started like compiled-in ones.
   out (may be NULL) receives up to capacity handles, *count (may be NULL) how many were
   registered. A library that is rejected is closed again (none of its callbacks ran); one that
   was accepted stays loaded until the process ends (or the registry is destroyed, with
   PLG_LOAD_UNLOAD_AT_DESTROY). options may be NULL. */
PLG_API plg_result plg_load(plg_registry *reg, const char *path, const plg_load_options *options,
                            plg_plugin **out, size_t capacity, size_t *count);
/* Loads every regular file whose name ends in ".so" in dir, in name order. A library that fails
   does not stop the others: the result is the first failure's code, plg_errmsg names every
   library that failed and why, and *count (may be NULL) is the number of plugins registered. */
PLG_API plg_result plg_load_dir(plg_registry *reg, const char *dir,
                                const plg_load_options *options, size_t *count);
/* The path the plugin's library was loaded from (as given to plg_load or plg_reload), NULL for a
   plugin registered from memory. */
PLG_API const char *plg_plugin_library(const plg_plugin *plugin);

/* ---------------------------------------------------------------------------------------------
   Leases: holding a version while calling it
   ------------------------------------------------------------------------------------------- */

/* A stable view of the version a caller is using. Between plg_acquire and plg_release, that
   version is neither stopped nor shut down by plg_reload (which waits), so its vtable and
   instance stay valid. */
typedef struct plg_lease {
    plg_plugin *plugin;    /* the version held; NULL when the lease holds nothing */
    const void *vtable;    /* its provides.vtable (NULL when it provides none) */
    void *instance;        /* what its init stored */
    uint32_t abi_version;  /* its provides.abi_version */
    uint32_t reserved;     /* 0 */
} plg_lease;

/* Finds (type, name) and pins the version that is current now, which must be started
   (PLG_ERR_INVALID_STATE otherwise, PLG_ERR_NOT_FOUND when absent). Lock-free: a lookup and two
   atomic operations. During a reload it returns the old version or the new one, never neither.
   It does not protect against the host's own plg_stop/plg_shutdown of that plugin. */
PLG_API plg_result plg_acquire(plg_registry *reg, const char *type, const char *name,
                               plg_lease *out);
/* Gives the version back and zeroes the lease; NULL or an empty lease is a no-op. */
PLG_API void plg_release(plg_lease *lease);

/* ---------------------------------------------------------------------------------------------
   Hot reload
   ------------------------------------------------------------------------------------------- */

/* Moves state from the running version to the new one. Runs after the new version's init and
   before its start, while the old one still serves calls. A code other than PLG_OK aborts the
   reload (the old version stays). */
typedef plg_result (*plg_handover_fn)(plg_plugin *from, void *from_instance, plg_plugin *to,
                                      void *to_instance, void *user);

typedef struct plg_reload_options {
    const char *config_json;        /* NULL: the configuration the running version received */
    plg_handover_fn handover;       /* NULL: no state hand-over */
    void *handover_user;
    uint32_t drain_timeout_ms;      /* 0: wait as long as callers hold the old version */
    const plg_load_options *load;   /* NULL: defaults */
} plg_reload_options;

/* Replaces a started (or failed) plugin with the same (type, name) from the library at path
   (NULL: the path `current` was loaded from, whose file was replaced): loads it under a fresh
   name, checks it as plg_load does, initialises it, hands state over, starts it and asks its
   health; only if all of that succeeded and the health is OK, switches lookups and plg_acquire
   to it in one atomic store, waits until no caller holds the old version, then stops and shuts
   the old one down. On any failure before the switch the old version stays in service untouched
   and the error says which step failed and why. *out (may be NULL) receives the new version.
   PLG_ERR_TIMEOUT when drain_timeout_ms passed with callers still inside the old version: the
   new one is in service, the old one was left started, out of lookups; shut it down with
   plg_stop and plg_shutdown once they left. Serialises with other reloads and the *_all walks;
   not from a plugin callback. */
PLG_API plg_result plg_reload(plg_registry *reg, plg_plugin *current, const char *path,
                              const plg_reload_options *options, plg_plugin **out);

/* ---------------------------------------------------------------------------------------------
   Supervision
   ------------------------------------------------------------------------------------------- */

/* Marks an initialized, started or stopped plugin failed with a reason, from outside its own
   callbacks: for a supervisor that found it broken (plg_plugin_failure returns the reason). No
   callback runs; plg_shutdown later runs its shutdown callback. PLG_OK if it already was failed
   (the first reason is kept). Never call it from one of that plugin's own callbacks. */
PLG_API plg_result plg_mark_failed(plg_registry *reg, plg_plugin *plugin, const char *fmt, ...)
    PLG_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif /* PLUGIN_REGISTRY_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PLUGIN_REGISTRY_IMPLEMENTATION) && !defined(PLUGIN_REGISTRY_IMPLEMENTED)
#define PLUGIN_REGISTRY_IMPLEMENTED

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared-object loading needs dlopen (POSIX). Hosts that must never load code define
   PLG_NO_DLOPEN; then plg_load, plg_load_dir and plg_reload return PLG_ERR_NOT_SUPPORTED. */
#if !defined(PLG_NO_DLOPEN) && !(defined(__unix__) || defined(__unix) || defined(__APPLE__))
#define PLG_NO_DLOPEN
#endif
/* Everything below is declared by glibc even under strict -std=c99 (no feature macros), which
   matters because an stb-style header cannot define them: the including file's system headers
   came first. clock_gettime is used only where CLOCK_MONOTONIC is visible. */
#include <poll.h>
#include <sched.h>
#include <sys/time.h>
#include <time.h>
#if !defined(PLG_NO_DLOPEN)
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#ifndef PLG_MALLOC
#define PLG_MALLOC(size, ctx) ((void)(ctx), malloc(size))
#define PLG_FREE(ptr, size, ctx) ((void)(ctx), (void)(size), free(ptr))
#endif
#ifndef PLG_ASSERT
#include <assert.h>
#define PLG_ASSERT(cond) assert(cond)
#endif

/* Definitions of public functions: static in PLG_STATIC mode, external otherwise. */
#if defined(PLG_STATIC)
#define PLGI_DEF static
#else
#define PLGI_DEF
#endif

/* Internal names start with plgi_ so they cannot clash with the including file's statics. */
#define PLGI_ERRMSG_SIZE 2048

/* The calling thread's error message for one registry, kept in a list so that destroying the
   registry frees the buffers of threads that are still alive. */
typedef struct plgi_errbuf {
    plg_registry *reg;
    struct plgi_errbuf *prev, *next;
    char text[PLGI_ERRMSG_SIZE];
} plgi_errbuf;

static void *plgi_default_alloc(size_t size, void *user)
{
    (void)user;
    return PLG_MALLOC(size, user);
}

static void plgi_default_free(void *ptr, size_t size, void *user)
{
    (void)user;
    (void)size;
    PLG_FREE(ptr, size, user);
}

/* printf into a fixed buffer, always NUL-terminated, never overflowing. */
static void plgi_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (buf == NULL || size == 0)
        return;
    if (vsnprintf(buf, size, fmt, ap) < 0)
        buf[0] = '\0';
}

static void plgi_format(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgi_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plgi_vformat(buf, size, fmt, ap);
    va_end(ap);
}

/* Appends to a NUL-terminated buffer, truncating. */
static void plgi_append(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgi_append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used;
    va_list ap;
    if (buf == NULL || size == 0)
        return;
    used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    plgi_vformat(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* Names of types, plugins, capabilities and configuration keys: 1..PLG_NAME_MAX characters of
   [A-Za-z0-9_.-], the first a letter or digit. Returns 0 if valid, else writes why. */
static int plgi_check_name(const char *name, char *why, size_t why_size)
{
    size_t i, len;
    if (name == NULL) {
        plgi_format(why, why_size, "is missing (NULL)");
        return -1;
    }
    len = strlen(name);
    if (len == 0) {
        plgi_format(why, why_size, "is empty");
        return -1;
    }
    if (len > PLG_NAME_MAX) {
        plgi_format(why, why_size, "is %lu characters long, more than the %d allowed",
                    (unsigned long)len, PLG_NAME_MAX);
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 && !alnum) {
            plgi_format(why, why_size, "must start with a letter or digit");
            return -1;
        }
        if (!alnum && c != '_' && c != '.' && c != '-') {
            if (c >= 0x20 && c < 0x7f)
                plgi_format(why, why_size, "contains '%c' at position %lu; allowed are letters, digits, '_', '.' and '-'",
                            (char)c, (unsigned long)i);
            else
                plgi_format(why, why_size, "contains byte 0x%02x at position %lu; allowed are letters, digits, '_', '.' and '-'",
                            (unsigned)c, (unsigned long)i);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   Registry object and shared internals
   ------------------------------------------------------------------------------------------- */

typedef struct plgi_table plgi_table;
typedef struct plgi_type_entry plgi_type_entry;
typedef struct plgi_iface plgi_iface;

/* A loaded shared object. Kept until the registry is destroyed (and dlclose'd then only with
   PLG_LOAD_UNLOAD_AT_DESTROY): descriptors, vtables and callbacks point into it. */
struct plgi_library {
    struct plgi_library *next;
    void *handle;
    char *path;       /* as the caller gave it */
    unsigned flags;   /* PLG_LOAD_* */
};

struct plg_registry {
    plg_registry_desc desc; /* resolved: every default filled in */
    char host_api_text[PLG_SEMVER_MAX + 1];
    plg_semver host_api;
    pthread_mutex_t lock;           /* writers: registration, interfaces, error buffers */
    pthread_mutex_t lifecycle_lock; /* serialises the *_all walks */
    pthread_key_t err_key;
    plgi_errbuf *errbufs;
    plgi_table *table;              /* published with release stores, read with acquire loads */
    plgi_table *retired_tables;     /* replaced tables, freed at destroy (readers may hold them) */
    plgi_type_entry *types;         /* published the same way */
    plg_plugin *first, *last;       /* every node ever registered, registration order */
    size_t live_count;
    uint64_t next_seq;
    plgi_iface *ifaces;
    struct plgi_library *libraries; /* loaded shared objects, under lock */
    unsigned long copy_seq;         /* atomic: names of private copies */
};

static void *plgi_alloc(plg_registry *reg, size_t size)
{
    if (size == 0)
        size = 1;
    if (reg == NULL)
        return plgi_default_alloc(size, NULL);
    return reg->desc.allocator.alloc_fn(size, reg->desc.allocator.user);
}

static void plgi_free(plg_registry *reg, void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
    if (size == 0)
        size = 1;
    if (reg == NULL)
        plgi_default_free(ptr, size, NULL);
    else
        reg->desc.allocator.free_fn(ptr, size, reg->desc.allocator.user);
}

/* Copies a string into registry memory; the size freed later is strlen + 1. */
static char *plgi_strdup(plg_registry *reg, const char *s)
{
    size_t len;
    char *copy;
    if (s == NULL)
        return NULL;
    len = strlen(s);
    copy = (char *)plgi_alloc(reg, len + 1);
    if (copy != NULL)
        memcpy(copy, s, len + 1);
    return copy;
}

static void plgi_strfree(plg_registry *reg, char *s)
{
    if (s != NULL)
        plgi_free(reg, s, strlen(s) + 1);
}

static void plgi_errbuf_release(void *value)
{
    plgi_errbuf *buf = (plgi_errbuf *)value;
    plg_registry *reg = buf->reg;
    pthread_mutex_lock(&reg->lock);
    if (buf->prev != NULL)
        buf->prev->next = buf->next;
    else
        reg->errbufs = buf->next;
    if (buf->next != NULL)
        buf->next->prev = buf->prev;
    pthread_mutex_unlock(&reg->lock);
    plgi_free(reg, buf, sizeof *buf);
}

/* The calling thread's buffer for reg, created on first use; NULL if memory ran out. */
static plgi_errbuf *plgi_errbuf_get(plg_registry *reg)
{
    plgi_errbuf *buf = (plgi_errbuf *)pthread_getspecific(reg->err_key);
    if (buf != NULL)
        return buf;
    buf = (plgi_errbuf *)plgi_alloc(reg, sizeof *buf);
    if (buf == NULL)
        return NULL;
    buf->reg = reg;
    buf->text[0] = '\0';
    buf->prev = NULL;
    if (pthread_setspecific(reg->err_key, buf) != 0) {
        plgi_free(reg, buf, sizeof *buf);
        return NULL;
    }
    pthread_mutex_lock(&reg->lock);
    buf->next = reg->errbufs;
    if (reg->errbufs != NULL)
        reg->errbufs->prev = buf;
    reg->errbufs = buf;
    pthread_mutex_unlock(&reg->lock);
    return buf;
}

static void plgi_vlog(plg_registry *reg, plg_log_level level, const char *fmt, va_list ap)
{
    char line[PLGI_ERRMSG_SIZE];
    if (reg == NULL || reg->desc.logger.log_fn == NULL)
        return;
    plgi_vformat(line, sizeof line, fmt, ap);
    reg->desc.logger.log_fn(reg->desc.logger.user, level, line);
}

static void plgi_log(plg_registry *reg, plg_log_level level, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgi_log(plg_registry *reg, plg_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plgi_vlog(reg, level, fmt, ap);
    va_end(ap);
}

/* Records the calling thread's message for reg (reg may be NULL), logs it at debug level, and
   returns code, so that error paths read `return plgi_fail(reg, CODE, "...", ...);`. */
static plg_result plgi_fail(plg_registry *reg, plg_result code, const char *fmt, ...) PLG_PRINTF(3, 4);
static plg_result plgi_fail(plg_registry *reg, plg_result code, const char *fmt, ...)
{
    char text[PLGI_ERRMSG_SIZE];
    plgi_errbuf *buf;
    va_list ap;
    if (reg == NULL)
        return code;
    va_start(ap, fmt);
    plgi_vformat(text, sizeof text, fmt, ap);
    va_end(ap);
    buf = plgi_errbuf_get(reg);
    if (buf != NULL)
        memcpy(buf->text, text, sizeof text);
    plgi_log(reg, PLG_LOG_DEBUG, "%s", text);
    return code;
}

static int plgi_strict_config(const plg_registry *reg)
{
    return reg != NULL && reg->desc.strict_config;
}

static size_t plgi_max_config_bytes(const plg_registry *reg)
{
    return reg != NULL ? reg->desc.max_config_bytes : 65536;
}

/* ---------------------------------------------------------------------------------------------
   Semantic versions (semver 2.0.0) and node-semver ranges
   ---------------------------------------------------------------------------------------------
   Nothing here allocates. Numbers are kept as the digits of the text they come from and compared
   by digit count, then digit by digit, so numeric identifiers of any length work. A range is
   parsed and evaluated in one pass over its text: each comparator is desugared into at most two
   primitive comparators (plgi_range_cmp) whose numbers point into the range or into static texts,
   with an optional "+1" (plgi_sv_num.inc) for upper bounds such as ^1.2.3 -> <2.0.0-0.

   Range grammar and semantics follow node-semver 7 (default options: not loose, no
   includePrerelease). Decisions on its corner cases:
   - An empty range, or one of blanks only, is "*". An empty set between or around "||"
     ("||", "1.2.3 ||", "|| 1.2.3") is "*" as well, as in node-semver, so such a range accepts
     every version without a pre-release tag.
   - As in node-semver, when some set of a range is "*" only (every comparator in it is a
     wildcard, e.g. "1.2.3-beta || *"), the whole range means "*": no pre-release version
     satisfies it, even one that another set names exactly.
   - ">=0.0.0" without a pre-release tag counts as "*" (node-semver rewrites it so); this matters
     for the pre-release rule only. We apply it to every spelling ("v" prefix included), node
     only to the literal text.
   - Sets are split at every "||" first, so "1 ||| 2" is an error at the third '|' and a single
     '|' is always an error.
   - Blanks are the ASCII ones (space, \t, \n, \v, \f, \r); node also takes Unicode spaces.
   - Prefixes: a version may be written "v1.2.3" anywhere, including both ends of a hyphen
     range; "=" is the equality operator ("=1.2.3", "=v1.2.3", "= 1.2.3"); after "~", "~>" and
     "^" one "=" is also accepted ("~=1.2.3") as node does. Blanks are allowed between an
     operator and its version (">= 1.2.3", "~ 1.2", "^ 1"). Node's other regex accidents are
     errors here: "< =1.2.3", "~ >1.2", ">==1.2", "vv1.2", "v=1.2", "v 1.2", "=1.2 - 2",
     "1 - =2", and a '*' inside a version ("1.2.3-*1", "*1.2"), which node deletes.
   - In a partial version, every part after a wildcard must be a wildcard too ("1.x.x" yes,
     "1.x.3", "*.1" no), as node-semver 7.7+ checks for plain x-ranges; we also apply it after
     "~" and "^", where node silently turns "~x.1" into "*".
   - A pre-release tag or build metadata may only follow a third part ("1.2.3-rc", "1.2.x-rc";
     the tag of a wildcard version is ignored as in node). Node strips "+build" anywhere before
     parsing ("1.2+abc" means 1.2); here build metadata needs MAJOR.MINOR.PATCH, as range.bnf
     says.
   - Numbers have any length (node rejects those above 2^53 - 1); a version inside a range has
     at most PLG_SEMVER_MAX characters, like a version on its own.
   - A hyphen range is exactly "A - B" (blanks around '-') and is the whole set; "1 - 2 3",
     "1 2 - 3", ">=1 - 2", "1 - " and "1 -2" are errors, as in node.
   - Garbage is an error, never skipped: ">=abc", "1.2.3.4", "^^1", "01", "1.2.3-", "a || 1".
   ------------------------------------------------------------------------------------------- */

#define PLGI_SV_QUOTE_MAX 64 /* characters of an input echoed in a message */

enum { PLGI_SV_OP_NONE, PLGI_SV_OP_EQ, PLGI_SV_OP_LT, PLGI_SV_OP_LE, PLGI_SV_OP_GT, PLGI_SV_OP_GE,
       PLGI_SV_OP_TILDE, PLGI_SV_OP_CARET, PLGI_SV_OP_ANY, PLGI_SV_OP_NOTHING };

static const char *const plgi_semver_parts[3] = { "major", "minor", "patch" };
static const char plgi_semver_zero[] = "0";

static int plgi_sv_digit(char c) { return c >= '0' && c <= '9'; }

static int plgi_sv_alnum(char c)
{
    return plgi_sv_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int plgi_sv_idchar(char c) { return plgi_sv_alnum(c) || c == '-'; }

static int plgi_sv_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int plgi_sv_wild(char c) { return c == 'x' || c == 'X' || c == '*'; }

/* A readable name for s[i], or "the end" when i is at or past end. */
static const char *plgi_sv_describe(char *buf, size_t size, const char *s, size_t i, size_t end)
{
    unsigned char c;
    if (i >= end)
        return "the end";
    c = (unsigned char)s[i];
    if (c == ' ')
        return "a space";
    if (c == '\t')
        return "a tab";
    if (c == '\n' || c == '\r')
        return "a line break";
    if (c == '\'')
        return "\"'\"";
    if (c > 0x20 && c < 0x7f)
        plgi_format(buf, size, "'%c'", (char)c);
    else
        plgi_format(buf, size, "byte 0x%02x", (unsigned)c);
    return buf;
}

/* s[0..n) in double quotes, escaped, cut after PLGI_SV_QUOTE_MAX characters. */
static void plgi_sv_quote(char *buf, size_t size, const char *s, size_t n)
{
    size_t i, shown = n > PLGI_SV_QUOTE_MAX ? PLGI_SV_QUOTE_MAX : n;
    if (buf == NULL || size == 0)
        return;
    buf[0] = '\0';
    plgi_append(buf, size, "\"");
    for (i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            plgi_append(buf, size, "\\%c", (char)c);
        else if (c >= 0x20 && c < 0x7f)
            plgi_append(buf, size, "%c", (char)c);
        else
            plgi_append(buf, size, "\\x%02x", (unsigned)c);
    }
    plgi_append(buf, size, n > shown ? "...\"" : "\"");
}

/* ---- scanning, shared by version texts and the versions inside ranges ---- */

typedef struct plgi_sv_scan {
    const char *s;
    size_t begin, end; /* the version occupies s[begin..end) */
    const char *at;    /* "position" (version texts) or "offset" (ranges) */
    char *why;
    size_t why_size;
} plgi_sv_scan;

/* A number (or, with allow_x, a wildcard) of the given part at *i; advances *i past it. */
static int plgi_sv_number(const plgi_sv_scan *sc, size_t *i, int part, int allow_x, int *is_x)
{
    const char *s = sc->s;
    size_t p = *i;
    char d[24];
    *is_x = 0;
    if (allow_x && p < sc->end && plgi_sv_wild(s[p])) {
        *is_x = 1;
        *i = p + 1;
        return 0;
    }
    if (p >= sc->end || !plgi_sv_digit(s[p])) {
        if (p > sc->begin && s[p - 1] == '.' &&
            (p >= sc->end || s[p] == '.' || s[p] == '-' || s[p] == '+'))
            plgi_format(sc->why, sc->why_size, "the %s version is empty at %s %lu",
                        plgi_semver_parts[part], sc->at, (unsigned long)p);
        else
            plgi_format(sc->why, sc->why_size, "expected %s for the %s version at %s %lu, found %s",
                        allow_x ? "a number, 'x', 'X' or '*'" : "a number",
                        plgi_semver_parts[part], sc->at, (unsigned long)p,
                        plgi_sv_describe(d, sizeof d, s, p, sc->end));
        return -1;
    }
    if (s[p] == '0' && p + 1 < sc->end && plgi_sv_digit(s[p + 1])) {
        plgi_format(sc->why, sc->why_size, "the %s version has a leading zero at %s %lu",
                    plgi_semver_parts[part], sc->at, (unsigned long)p);
        return -1;
    }
    while (p < sc->end && plgi_sv_digit(s[p]))
        p++;
    *i = p;
    return 0;
}

/* s[p] follows the given part but is not what may come next (`expected`). */
static int plgi_sv_after(const plgi_sv_scan *sc, size_t p, int part, int allow_x,
                         const char *expected)
{
    char d[24];
    const char *what = plgi_sv_describe(d, sizeof d, sc->s, p, sc->end);
    if (p < sc->end && plgi_sv_alnum(sc->s[p]))
        plgi_format(sc->why, sc->why_size, "the %s version contains %s at %s %lu; it must be %s",
                    plgi_semver_parts[part], what, sc->at, (unsigned long)p,
                    allow_x ? "a number, 'x', 'X' or '*'" : "a number");
    else
        plgi_format(sc->why, sc->why_size, "found %s at %s %lu after the %s version; expected %s",
                    what, sc->at, (unsigned long)p, plgi_semver_parts[part], expected);
    return -1;
}

/* Dot-separated identifiers of a pre-release tag (build == 0, ends at '+' or the end) or of
   build metadata (build == 1, ends at the end). *i is just after the '-' or '+'. */
static int plgi_sv_idents(const plgi_sv_scan *sc, size_t *i, int build)
{
    const char *s = sc->s;
    const char *what = build ? "build metadata" : "pre-release";
    size_t p = *i;
    unsigned long n = 0;
    char d[24];
    for (;;) {
        size_t start = p, k;
        int numeric = 1;
        n++;
        while (p < sc->end && s[p] != '.' && (build || s[p] != '+')) {
            if (!plgi_sv_idchar(s[p])) {
                plgi_format(sc->why, sc->why_size,
                            "the %s contains %s at %s %lu; identifiers are letters, digits and "
                            "'-', separated by '.'",
                            what, plgi_sv_describe(d, sizeof d, s, p, sc->end), sc->at,
                            (unsigned long)p);
                return -1;
            }
            p++;
        }
        if (p == start) {
            if (n == 1 && (p >= sc->end || s[p] != '.'))
                plgi_format(sc->why, sc->why_size, "the %s is empty at %s %lu", what, sc->at,
                            (unsigned long)p);
            else
                plgi_format(sc->why, sc->why_size, "%s identifier %lu is empty at %s %lu", what, n,
                            sc->at, (unsigned long)p);
            return -1;
        }
        for (k = start; k < p; k++)
            if (!plgi_sv_digit(s[k]))
                numeric = 0;
        if (!build && numeric && p - start > 1 && s[start] == '0') {
            plgi_format(sc->why, sc->why_size,
                        "pre-release identifier \"%.*s\" has a leading zero at %s %lu",
                        (int)(p - start), s + start, sc->at, (unsigned long)start);
            return -1;
        }
        if (p < sc->end && s[p] == '.') {
            p++;
            continue;
        }
        break;
    }
    *i = p;
    return 0;
}

/* ---- comparing ---- */

/* A decimal number without leading zeros, plus inc (0 or 1). */
typedef struct plgi_sv_num {
    const char *d;
    size_t n;
    int inc;
} plgi_sv_num;

/* Length of x's value, and (in *k) where an increment stops carrying: the last digit that is
   not '9', or n when every digit is '9' (the value then grows by one digit). */
static size_t plgi_sv_num_len(const plgi_sv_num *x, size_t *k)
{
    size_t i = x->n;
    *k = x->n;
    if (!x->inc)
        return x->n;
    while (i > 0 && x->d[i - 1] == '9')
        i--;
    if (i == 0)
        return x->n + 1;
    *k = i - 1;
    return x->n;
}

static int plgi_sv_num_digit(const plgi_sv_num *x, size_t k, size_t i)
{
    if (!x->inc)
        return x->d[i];
    if (k == x->n) /* all nines: 1 followed by zeros */
        return i == 0 ? '1' : '0';
    if (i < k)
        return x->d[i];
    if (i == k)
        return x->d[i] + 1;
    return '0';
}

static int plgi_sv_num_cmp(const plgi_sv_num *a, const plgi_sv_num *b)
{
    size_t ka, kb, i;
    size_t la = plgi_sv_num_len(a, &ka), lb = plgi_sv_num_len(b, &kb);
    if (la != lb)
        return la < lb ? -1 : 1;
    for (i = 0; i < la; i++) {
        int da = plgi_sv_num_digit(a, ka, i), db = plgi_sv_num_digit(b, kb, i);
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

static int plgi_sv_ident_numeric(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!plgi_sv_digit(s[i]))
            return 0;
    return n > 0;
}

/* One pre-release identifier against another (semver.org 11.4.1 - 11.4.3). */
static int plgi_sv_ident_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int na = plgi_sv_ident_numeric(a, an), nb = plgi_sv_ident_numeric(b, bn), r;
    if (na && nb) {
        if (an != bn)
            return an < bn ? -1 : 1;
        r = memcmp(a, b, an);
        return r < 0 ? -1 : r > 0;
    }
    if (na != nb)
        return na ? -1 : 1;
    r = memcmp(a, b, an < bn ? an : bn);
    if (r != 0)
        return r < 0 ? -1 : 1;
    return an == bn ? 0 : an < bn ? -1 : 1;
}

/* Pre-release tags (dot-separated, valid); an empty one (none) ranks above any tag. */
static int plgi_sv_pre_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    if (an == 0 || bn == 0)
        return an == bn ? 0 : an == 0 ? 1 : -1;
    for (;;) {
        size_t ia = i, jb = j;
        int r, enda, endb;
        while (i < an && a[i] != '.')
            i++;
        while (j < bn && b[j] != '.')
            j++;
        r = plgi_sv_ident_cmp(a + ia, i - ia, b + jb, j - jb);
        if (r != 0)
            return r;
        enda = i >= an;
        endb = j >= bn;
        if (enda || endb)
            return enda == endb ? 0 : enda ? -1 : 1;
        i++;
        j++;
    }
}

/* The fields of v locate parts inside its NUL-terminated text (a defence against structs that
   plg_semver_parse did not fill). */
static int plgi_semver_sane(const plg_semver *v)
{
    const void *nul;
    size_t len;
    if (v == NULL)
        return 0;
    nul = memchr(v->text, '\0', sizeof v->text);
    if (nul == NULL)
        return 0;
    len = (size_t)((const char *)nul - v->text);
    return v->major_len > 0 && v->minor_len > 0 && v->patch_len > 0 &&
           (size_t)v->major_off + v->major_len <= len &&
           (size_t)v->minor_off + v->minor_len <= len &&
           (size_t)v->patch_off + v->patch_len <= len &&
           (size_t)v->prerelease_off + v->prerelease_len <= len &&
           (size_t)v->build_off + v->build_len <= len;
}

static plgi_sv_num plgi_semver_num(const plg_semver *v, int part)
{
    plgi_sv_num x;
    x.inc = 0;
    if (part == 0) {
        x.d = v->text + v->major_off;
        x.n = v->major_len;
    } else if (part == 1) {
        x.d = v->text + v->minor_off;
        x.n = v->minor_len;
    } else {
        x.d = v->text + v->patch_off;
        x.n = v->patch_len;
    }
    return x;
}

static uint64_t plgi_semver_u64(const plg_semver *v, int part)
{
    plgi_sv_num x;
    uint64_t value = 0;
    size_t i;
    if (!plgi_semver_sane(v))
        return 0;
    x = plgi_semver_num(v, part);
    for (i = 0; i < x.n; i++) {
        uint64_t digit = (uint64_t)(x.d[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return UINT64_MAX;
        value = value * 10 + digit;
    }
    return value;
}

/* ---- public: versions ---- */

PLGI_DEF plg_result plg_semver_parse(const char *text, plg_semver *out, char *message,
                                     size_t message_size)
{
    size_t len = 0, i = 0, at[3], n[3], pre_at = 0, pre_len = 0, build_at = 0, build_len = 0;
    char why[512], quoted[320];
    plgi_sv_scan sc;
    int part, is_x;
    if (message != NULL && message_size > 0)
        message[0] = '\0';
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (text == NULL || out == NULL) {
        plgi_format(message, message_size, "%s is NULL",
                    text == NULL ? "the version text" : "the output plg_semver");
        return PLG_ERR_INVALID_ARGUMENT;
    }
    while (len <= PLG_SEMVER_MAX && text[len] != '\0')
        len++;
    why[0] = '\0';
    if (len == 0) {
        plgi_format(why, sizeof why, "the version is empty");
        goto fail;
    }
    if (len > PLG_SEMVER_MAX) {
        plgi_format(why, sizeof why, "longer than %d characters", PLG_SEMVER_MAX);
        goto fail;
    }
    if (text[0] == 'v' || text[0] == 'V') {
        plgi_format(why, sizeof why,
                    "unexpected '%c' at position 0; a version has no \"v\" prefix", text[0]);
        goto fail;
    }
    sc.s = text;
    sc.begin = 0;
    sc.end = len;
    sc.at = "position";
    sc.why = why;
    sc.why_size = sizeof why;
    for (part = 0; part < 3; part++) {
        at[part] = i;
        if (plgi_sv_number(&sc, &i, part, 0, &is_x) != 0)
            goto fail;
        n[part] = i - at[part];
        if (part == 2)
            break;
        if (i < len && text[i] == '.') {
            i++;
            continue;
        }
        if (i >= len)
            plgi_format(why, sizeof why,
                        "the %s version is missing at position %lu; a version is MAJOR.MINOR.PATCH",
                        plgi_semver_parts[part + 1], (unsigned long)i);
        else
            plgi_sv_after(&sc, i, part, 0, "'.'");
        goto fail;
    }
    if (i < len && text[i] == '-') {
        pre_at = ++i;
        if (plgi_sv_idents(&sc, &i, 0) != 0)
            goto fail;
        pre_len = i - pre_at;
    }
    if (i < len && text[i] == '+') {
        build_at = ++i;
        if (plgi_sv_idents(&sc, &i, 1) != 0)
            goto fail;
        build_len = i - build_at;
    }
    if (i < len) {
        plgi_sv_after(&sc, i, 2, 0, "'-', '+' or the end");
        goto fail;
    }
    memcpy(out->text, text, len);
    out->text[len] = '\0';
    out->major_off = (uint16_t)at[0];
    out->major_len = (uint16_t)n[0];
    out->minor_off = (uint16_t)at[1];
    out->minor_len = (uint16_t)n[1];
    out->patch_off = (uint16_t)at[2];
    out->patch_len = (uint16_t)n[2];
    out->prerelease_off = (uint16_t)pre_at;
    out->prerelease_len = (uint16_t)pre_len;
    out->build_off = (uint16_t)build_at;
    out->build_len = (uint16_t)build_len;
    return PLG_OK;
fail:
    if (message != NULL && message_size > 0) {
        plgi_sv_quote(quoted, sizeof quoted, text, len);
        plgi_format(message, message_size, "%s: %s", quoted, why);
    }
    return PLG_ERR_INVALID_VERSION;
}

PLGI_DEF int plg_semver_compare(const plg_semver *a, const plg_semver *b)
{
    int part, r, sa = plgi_semver_sane(a), sb = plgi_semver_sane(b);
    if (!sa || !sb) /* NULL (or unparsed) sorts first */
        return sa == sb ? 0 : sa ? 1 : -1;
    for (part = 0; part < 3; part++) {
        plgi_sv_num x = plgi_semver_num(a, part), y = plgi_semver_num(b, part);
        r = plgi_sv_num_cmp(&x, &y);
        if (r != 0)
            return r;
    }
    return plgi_sv_pre_cmp(a->text + a->prerelease_off, a->prerelease_len,
                        b->text + b->prerelease_off, b->prerelease_len);
}

PLGI_DEF plg_result plg_semver_compare_text(const char *a, const char *b, int *cmp)
{
    plg_semver va, vb;
    plg_result r;
    if (cmp != NULL)
        *cmp = 0;
    if (a == NULL || b == NULL || cmp == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    r = plg_semver_parse(a, &va, NULL, 0);
    if (r == PLG_OK)
        r = plg_semver_parse(b, &vb, NULL, 0);
    if (r != PLG_OK)
        return r;
    *cmp = plg_semver_compare(&va, &vb);
    return PLG_OK;
}

PLGI_DEF uint64_t plg_semver_major(const plg_semver *v) { return plgi_semver_u64(v, 0); }
PLGI_DEF uint64_t plg_semver_minor(const plg_semver *v) { return plgi_semver_u64(v, 1); }
PLGI_DEF uint64_t plg_semver_patch(const plg_semver *v) { return plgi_semver_u64(v, 2); }

/* ---- ranges ---- */

/* A primitive comparator after desugaring. */
typedef struct plgi_range_cmp {
    int op; /* PLGI_SV_OP_EQ, _LT, _LE, _GT, _GE, _ANY (matches all) or _NOTHING (<0.0.0-0) */
    plgi_sv_num num[3];
    const char *pre;
    size_t pre_len;
} plgi_range_cmp;

/* A version as written in a range: parts from index `wild` on are wildcards or absent. */
typedef struct plgi_range_partial {
    plgi_sv_num num[3];
    int wild; /* 0..3; 3 when complete */
    const char *pre;
    size_t pre_len;
} plgi_range_partial;

typedef struct plgi_range_ctx {
    const char *s;
    size_t len;
    const plg_semver *v; /* NULL: check only */
    char *message;
    size_t message_size;
    int set_ok, set_pre_ok, set_all_any; /* the set being read */
    int any_ok, star_set;                /* the sets read so far */
} plgi_range_ctx;

static int plgi_range_fail(plgi_range_ctx *rx, const char *fmt, ...) PLG_PRINTF(2, 3);
static int plgi_range_fail(plgi_range_ctx *rx, const char *fmt, ...)
{
    char quoted[320];
    size_t used;
    va_list ap;
    if (rx->message == NULL || rx->message_size == 0)
        return -1;
    plgi_sv_quote(quoted, sizeof quoted, rx->s, rx->len);
    plgi_format(rx->message, rx->message_size, "%s: ", quoted);
    used = strlen(rx->message);
    if (used + 1 < rx->message_size) {
        va_start(ap, fmt);
        plgi_vformat(rx->message + used, rx->message_size - used, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static size_t plgi_range_skip_blanks(const char *s, size_t i, size_t end)
{
    while (i < end && plgi_sv_blank(s[i]))
        i++;
    return i;
}

static size_t plgi_range_token_end(const char *s, size_t i, size_t end)
{
    while (i < end && !plgi_sv_blank(s[i]))
        i++;
    return i;
}

static plgi_sv_num plgi_sv_num_make(const char *d, size_t n, int inc)
{
    plgi_sv_num x;
    x.d = d;
    x.n = n;
    x.inc = inc;
    return x;
}

static plgi_sv_num plgi_sv_num_zero(void) { return plgi_sv_num_make(plgi_semver_zero, 1, 0); }

static plgi_sv_num plgi_sv_num_plus1(plgi_sv_num x)
{
    x.inc = 1;
    return x;
}

static int plgi_sv_num_is_zero(const plgi_sv_num *x)
{
    return !x->inc && x->n == 1 && x->d[0] == '0';
}

/* Parses the version s[b..e) (no blanks inside) of a range. */
static int plgi_range_parse_partial(plgi_range_ctx *rx, size_t b, size_t e,
                                    plgi_range_partial *out)
{
    char why[512], quoted[320];
    plgi_sv_scan sc;
    size_t i = b;
    int part, is_x;
    out->wild = 3;
    out->pre = NULL;
    out->pre_len = 0;
    for (part = 0; part < 3; part++)
        out->num[part] = plgi_sv_num_zero();
    if (e - b > PLG_SEMVER_MAX)
        return plgi_range_fail(rx, "version at offset %lu is longer than %d characters",
                               (unsigned long)b, PLG_SEMVER_MAX);
    sc.s = rx->s;
    sc.begin = b;
    sc.end = e;
    sc.at = "offset";
    sc.why = why;
    sc.why_size = sizeof why;
    for (part = 0; part < 3; part++) {
        size_t at = i;
        if (plgi_sv_number(&sc, &i, part, 1, &is_x) != 0)
            goto fail;
        if (is_x) {
            if (out->wild == 3)
                out->wild = part;
        } else if (out->wild != 3) {
            plgi_format(why, sizeof why,
                        "the %s version at offset %lu is a number after a wildcard; every part "
                        "after 'x', 'X' or '*' must be one too",
                        plgi_semver_parts[part], (unsigned long)at);
            goto fail;
        } else {
            out->num[part] = plgi_sv_num_make(rx->s + at, i - at, 0);
        }
        if (i >= e) {
            if (out->wild > part + 1)
                out->wild = part + 1;
            return 0;
        }
        if (part == 2)
            break;
        if (rx->s[i] == '.') {
            i++;
            continue;
        }
        if (rx->s[i] == '-' || rx->s[i] == '+')
            plgi_format(why, sizeof why,
                        "%s at offset %lu needs a full MAJOR.MINOR.PATCH version before it",
                        rx->s[i] == '-' ? "a pre-release tag" : "build metadata",
                        (unsigned long)i);
        else
            plgi_sv_after(&sc, i, part, 1, "'.' or the end of the version");
        goto fail;
    }
    if (rx->s[i] == '-') {
        size_t at = ++i;
        if (plgi_sv_idents(&sc, &i, 0) != 0)
            goto fail;
        out->pre = rx->s + at;
        out->pre_len = i - at;
    }
    if (i < e && rx->s[i] == '+') {
        ++i;
        if (plgi_sv_idents(&sc, &i, 1) != 0)
            goto fail;
    }
    if (i < e) {
        plgi_sv_after(&sc, i, 2, 1, "'-', '+' or the end of the version");
        goto fail;
    }
    if (out->wild != 3) /* node-semver ignores the tag of a wildcard version */
        out->pre_len = 0;
    return 0;
fail:
    plgi_sv_quote(quoted, sizeof quoted, rx->s + b, e - b);
    return plgi_range_fail(rx, "version %s at offset %lu: %s", quoted, (unsigned long)b, why);
}

/* Applies one primitive comparator to the set being read. */
static void plgi_range_emit(plgi_range_ctx *rx, int op, plgi_sv_num major, plgi_sv_num minor,
                            plgi_sv_num patch, const char *pre, size_t pre_len)
{
    plgi_range_cmp c;
    int part, r = 0, pass;
    c.op = op;
    c.num[0] = major;
    c.num[1] = minor;
    c.num[2] = patch;
    c.pre = pre;
    c.pre_len = pre != NULL ? pre_len : 0;
    if (c.op == PLGI_SV_OP_GE && c.pre_len == 0 && plgi_sv_num_is_zero(&c.num[0]) &&
        plgi_sv_num_is_zero(&c.num[1]) && plgi_sv_num_is_zero(&c.num[2]))
        c.op = PLGI_SV_OP_ANY; /* node-semver: ">=0.0.0" is "*" */
    if (c.op != PLGI_SV_OP_ANY)
        rx->set_all_any = 0;
    if (rx->v == NULL || c.op == PLGI_SV_OP_ANY)
        return;
    if (c.op == PLGI_SV_OP_NOTHING) {
        rx->set_ok = 0;
        return;
    }
    for (part = 0; part < 3 && r == 0; part++) {
        plgi_sv_num x = plgi_semver_num(rx->v, part);
        r = plgi_sv_num_cmp(&x, &c.num[part]);
    }
    if (r == 0 && c.pre_len > 0)
        rx->set_pre_ok = 1; /* same major.minor.patch, with a tag */
    if (r == 0)
        r = plgi_sv_pre_cmp(rx->v->text + rx->v->prerelease_off, rx->v->prerelease_len, c.pre,
                         c.pre_len);
    switch (c.op) {
    case PLGI_SV_OP_LT: pass = r < 0; break;
    case PLGI_SV_OP_LE: pass = r <= 0; break;
    case PLGI_SV_OP_GT: pass = r > 0; break;
    case PLGI_SV_OP_GE: pass = r >= 0; break;
    default: pass = r == 0; break;
    }
    if (!pass)
        rx->set_ok = 0;
}

/* Desugars one comparator (operator and partial version), as node-semver does. */
static void plgi_range_desugar(plgi_range_ctx *rx, int op, const plgi_range_partial *p)
{
    plgi_sv_num M = p->num[0], m = p->num[1], pa = p->num[2], z = plgi_sv_num_zero();
    int xM = p->wild == 0, xm = p->wild <= 1, xp = p->wild <= 2;
    const char *zero_tag = plgi_semver_zero;
    if (op == PLGI_SV_OP_TILDE || op == PLGI_SV_OP_CARET) {
        int caret = op == PLGI_SV_OP_CARET, major_zero = plgi_sv_num_is_zero(&M);
        if (xM) {
            plgi_range_emit(rx, PLGI_SV_OP_ANY, z, z, z, NULL, 0);
        } else if (xm) {
            plgi_range_emit(rx, PLGI_SV_OP_GE, M, z, z, NULL, 0);
            plgi_range_emit(rx, PLGI_SV_OP_LT, plgi_sv_num_plus1(M), z, z, zero_tag, 1);
        } else if (xp) {
            plgi_range_emit(rx, PLGI_SV_OP_GE, M, m, z, NULL, 0);
            if (caret && !major_zero)
                plgi_range_emit(rx, PLGI_SV_OP_LT, plgi_sv_num_plus1(M), z, z, zero_tag, 1);
            else
                plgi_range_emit(rx, PLGI_SV_OP_LT, M, plgi_sv_num_plus1(m), z, zero_tag, 1);
        } else {
            plgi_range_emit(rx, PLGI_SV_OP_GE, M, m, pa, p->pre, p->pre_len);
            if (!caret || (major_zero && !plgi_sv_num_is_zero(&m)))
                plgi_range_emit(rx, PLGI_SV_OP_LT, M, plgi_sv_num_plus1(m), z, zero_tag, 1);
            else if (major_zero)
                plgi_range_emit(rx, PLGI_SV_OP_LT, M, m, plgi_sv_num_plus1(pa), zero_tag, 1);
            else
                plgi_range_emit(rx, PLGI_SV_OP_LT, plgi_sv_num_plus1(M), z, z, zero_tag, 1);
        }
        return;
    }
    if (!xp) { /* a complete version: a primitive comparator as it is */
        plgi_range_emit(rx, op == PLGI_SV_OP_NONE ? PLGI_SV_OP_EQ : op, M, m, pa, p->pre,
                        p->pre_len);
        return;
    }
    if (op == PLGI_SV_OP_EQ)
        op = PLGI_SV_OP_NONE;
    if (xM) {
        if (op == PLGI_SV_OP_GT || op == PLGI_SV_OP_LT)
            plgi_range_emit(rx, PLGI_SV_OP_NOTHING, z, z, z, NULL, 0);
        else
            plgi_range_emit(rx, PLGI_SV_OP_ANY, z, z, z, NULL, 0);
    } else if (op != PLGI_SV_OP_NONE) {
        if (xm)
            m = z;
        pa = z;
        if (op == PLGI_SV_OP_GT) { /* >1 is >=2.0.0, >1.2 is >=1.3.0 */
            op = PLGI_SV_OP_GE;
            if (xm)
                M = plgi_sv_num_plus1(M);
            else
                m = plgi_sv_num_plus1(m);
        } else if (op == PLGI_SV_OP_LE) { /* <=1 is <2.0.0-0, <=1.2 is <1.3.0-0 */
            op = PLGI_SV_OP_LT;
            if (xm)
                M = plgi_sv_num_plus1(M);
            else
                m = plgi_sv_num_plus1(m);
        }
        plgi_range_emit(rx, op, M, m, pa, op == PLGI_SV_OP_LT ? zero_tag : NULL, 1);
    } else if (xm) {
        plgi_range_emit(rx, PLGI_SV_OP_GE, M, z, z, NULL, 0);
        plgi_range_emit(rx, PLGI_SV_OP_LT, plgi_sv_num_plus1(M), z, z, zero_tag, 1);
    } else {
        plgi_range_emit(rx, PLGI_SV_OP_GE, M, m, z, NULL, 0);
        plgi_range_emit(rx, PLGI_SV_OP_LT, M, plgi_sv_num_plus1(m), z, zero_tag, 1);
    }
}

/* "A - B": from and to are partial versions. */
static void plgi_range_hyphen(plgi_range_ctx *rx, const plgi_range_partial *from,
                              const plgi_range_partial *to)
{
    plgi_sv_num z = plgi_sv_num_zero();
    if (from->wild == 0)
        plgi_range_emit(rx, PLGI_SV_OP_ANY, z, z, z, NULL, 0);
    else if (from->wild == 1)
        plgi_range_emit(rx, PLGI_SV_OP_GE, from->num[0], z, z, NULL, 0);
    else if (from->wild == 2)
        plgi_range_emit(rx, PLGI_SV_OP_GE, from->num[0], from->num[1], z, NULL, 0);
    else
        plgi_range_emit(rx, PLGI_SV_OP_GE, from->num[0], from->num[1], from->num[2], from->pre,
                        from->pre_len);
    if (to->wild == 0)
        plgi_range_emit(rx, PLGI_SV_OP_ANY, z, z, z, NULL, 0);
    else if (to->wild == 1)
        plgi_range_emit(rx, PLGI_SV_OP_LT, plgi_sv_num_plus1(to->num[0]), z, z, plgi_semver_zero,
                        1);
    else if (to->wild == 2)
        plgi_range_emit(rx, PLGI_SV_OP_LT, to->num[0], plgi_sv_num_plus1(to->num[1]), z,
                        plgi_semver_zero, 1);
    else
        plgi_range_emit(rx, PLGI_SV_OP_LE, to->num[0], to->num[1], to->num[2], to->pre,
                        to->pre_len);
}

/* Reads the operator at s[i] (none: length 0). */
static size_t plgi_range_operator(const char *s, size_t i, size_t end, int *op)
{
    char c = s[i], next = i + 1 < end ? s[i + 1] : '\0';
    *op = PLGI_SV_OP_NONE;
    if (c == '<' || c == '>') {
        if (next == '=') {
            *op = c == '<' ? PLGI_SV_OP_LE : PLGI_SV_OP_GE;
            return 2;
        }
        *op = c == '<' ? PLGI_SV_OP_LT : PLGI_SV_OP_GT;
        return 1;
    }
    if (c == '=') {
        *op = PLGI_SV_OP_EQ;
        return 1;
    }
    if (c == '~') {
        *op = PLGI_SV_OP_TILDE;
        return next == '>' ? 2 : 1;
    }
    if (c == '^') {
        *op = PLGI_SV_OP_CARET;
        return 1;
    }
    return 0;
}

/* A version after its operator: optional '=' (after ~ and ^ only) and 'v', then the partial.
   *i is at its first character and moves past the version. */
static int plgi_range_version(plgi_range_ctx *rx, size_t *i, size_t end, int op, size_t op_at,
                              size_t op_len, plgi_range_partial *out)
{
    const char *s = rx->s;
    size_t b = *i, e;
    char d[24];
    if ((op == PLGI_SV_OP_TILDE || op == PLGI_SV_OP_CARET) && b < end && s[b] == '=')
        b++;
    if (b < end && s[b] == 'v')
        b++;
    e = plgi_range_token_end(s, b, end);
    if (b == e) {
        if (b > *i)
            return plgi_range_fail(rx, "'%c' at offset %lu is not followed by a version",
                                   s[b - 1], (unsigned long)(b - 1));
        return plgi_range_fail(rx, "operator \"%.*s\" at offset %lu has no version", (int)op_len,
                               s + op_at, (unsigned long)op_at);
    }
    if (op_len > 0 && b == *i && (s[b] == '<' || s[b] == '>' || s[b] == '=' || s[b] == '~' ||
                                  s[b] == '^')) {
        if (b > op_at + op_len) /* blanks in between: two operators */
            return plgi_range_fail(rx, "operator \"%.*s\" at offset %lu has no version",
                                   (int)op_len, s + op_at, (unsigned long)op_at);
        return plgi_range_fail(rx,
                               "found %s at offset %lu after operator \"%.*s\"; expected a version",
                               plgi_sv_describe(d, sizeof d, s, b, end), (unsigned long)b,
                               (int)op_len, s + op_at);
    }
    if (plgi_range_parse_partial(rx, b, e, out) != 0)
        return -1;
    *i = e;
    return 0;
}

/* One comparator set, s[b..e) (no "||" inside). */
static int plgi_range_set(plgi_range_ctx *rx, size_t b, size_t e)
{
    const char *s = rx->s;
    size_t i = plgi_range_skip_blanks(s, b, e), count = 0;
    char d[24];
    rx->set_ok = 1;
    rx->set_pre_ok = 0;
    rx->set_all_any = 1;
    while (i < e) {
        size_t op_at = i, op_len;
        int op;
        plgi_range_partial p, to;
        if (s[i] == '-') {
            if (i + 1 < e && !plgi_sv_blank(s[i + 1]))
                return plgi_range_fail(rx, "unexpected '-' at offset %lu; a hyphen range needs "
                                       "blanks on both sides of '-' (\"A - B\")",
                                       (unsigned long)i);
            if (count == 0)
                return plgi_range_fail(rx, "hyphen '-' at offset %lu has no version before it",
                                       (unsigned long)i);
            return plgi_range_fail(rx, "hyphen '-' at offset %lu: a hyphen range is exactly two "
                                   "versions without operators (\"A - B\") and nothing else in "
                                   "its set", (unsigned long)i);
        }
        op_len = plgi_range_operator(s, i, e, &op);
        i += op_len;
        if (op_len > 0)
            i = plgi_range_skip_blanks(s, i, e);
        if (op_len > 0 && i >= e)
            return plgi_range_fail(rx, "operator \"%.*s\" at offset %lu has no version",
                                   (int)op_len, s + op_at, (unsigned long)op_at);
        if (plgi_range_version(rx, &i, e, op, op_at, op_len, &p) != 0)
            return -1;
        i = plgi_range_skip_blanks(s, i, e);
        if (op == PLGI_SV_OP_NONE && count == 0 && i < e && s[i] == '-' &&
            (i + 1 >= e || plgi_sv_blank(s[i + 1]))) {
            size_t hyphen = i;
            i = plgi_range_skip_blanks(s, i + 1, e);
            if (i >= e)
                return plgi_range_fail(rx, "hyphen '-' at offset %lu has no version after it",
                                       (unsigned long)hyphen);
            if (s[i] == '-' || plgi_range_operator(s, i, e, &op) > 0)
                return plgi_range_fail(rx, "found %s at offset %lu; the versions of a "
                                       "hyphen range take no operator",
                                       plgi_sv_describe(d, sizeof d, s, i, e), (unsigned long)i);
            if (plgi_range_version(rx, &i, e, PLGI_SV_OP_NONE, i, 0, &to) != 0)
                return -1;
            i = plgi_range_skip_blanks(s, i, e);
            if (i < e)
                return plgi_range_fail(rx, "found %s at offset %lu; a hyphen range "
                                       "(\"A - B\") must be the whole comparator set",
                                       plgi_sv_describe(d, sizeof d, s, i, e), (unsigned long)i);
            plgi_range_hyphen(rx, &p, &to);
            count++;
            break;
        }
        plgi_range_desugar(rx, op, &p);
        count++;
    }
    if (rx->v != NULL) {
        if (rx->v->prerelease_len > 0 && !rx->set_pre_ok)
            rx->set_ok = 0;
        if (rx->set_ok)
            rx->any_ok = 1;
    }
    if (rx->set_all_any)
        rx->star_set = 1;
    return 0;
}

/* Parses the whole range (always, so that check and satisfies agree) and evaluates it against
   v when v is not NULL. */
static plg_result plgi_range_run(const char *range, const plg_semver *v, int *satisfied,
                                 char *message, size_t message_size)
{
    plgi_range_ctx rx;
    size_t pos = 0;
    rx.s = range;
    rx.len = strlen(range);
    rx.v = v;
    rx.message = message;
    rx.message_size = message_size;
    rx.any_ok = 0;
    rx.star_set = 0;
    rx.set_ok = rx.set_pre_ok = rx.set_all_any = 0;
    for (;;) {
        size_t end = pos;
        while (end < rx.len && !(range[end] == '|' && range[end + 1] == '|'))
            end++;
        if (plgi_range_set(&rx, pos, end) != 0)
            return PLG_ERR_INVALID_RANGE;
        if (end >= rx.len)
            break;
        pos = end + 2;
    }
    if (satisfied != NULL && v != NULL)
        *satisfied = rx.star_set ? v->prerelease_len == 0 : rx.any_ok;
    return PLG_OK;
}

PLGI_DEF plg_result plg_range_check(const char *range, char *message, size_t message_size)
{
    if (message != NULL && message_size > 0)
        message[0] = '\0';
    if (range == NULL) {
        plgi_format(message, message_size, "the range is NULL");
        return PLG_ERR_INVALID_ARGUMENT;
    }
    return plgi_range_run(range, NULL, NULL, message, message_size);
}

PLGI_DEF plg_result plg_range_satisfies(const char *range, const plg_semver *version,
                                        int *satisfied, char *message, size_t message_size)
{
    if (message != NULL && message_size > 0)
        message[0] = '\0';
    if (satisfied != NULL)
        *satisfied = 0;
    if (range == NULL || version == NULL || satisfied == NULL) {
        plgi_format(message, message_size, "%s is NULL",
                    range == NULL ? "the range" : version == NULL ? "the version" :
                                                                    "the result pointer");
        return PLG_ERR_INVALID_ARGUMENT;
    }
    if (!plgi_semver_sane(version)) {
        plgi_format(message, message_size, "the version is not one filled by plg_semver_parse");
        return PLG_ERR_INVALID_ARGUMENT;
    }
    return plgi_range_run(range, version, satisfied, message, message_size);
}

PLGI_DEF plg_result plg_range_satisfies_text(const char *range, const char *version,
                                             int *satisfied)
{
    plg_semver v;
    plg_result r;
    if (satisfied != NULL)
        *satisfied = 0;
    if (range == NULL || version == NULL || satisfied == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    r = plg_semver_parse(version, &v, NULL, 0);
    if (r != PLG_OK)
        return r;
    return plg_range_satisfies(range, &v, satisfied, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------
   Configuration: JSON parser (RFC 8259), schema checking, validation, typed values
   ------------------------------------------------------------------------------------------- */

#include <float.h>

/* Deepest nesting of objects and arrays accepted in a configuration (the top object is 1). */
#define PLGI_JSON_MAX_DEPTH 64
/* Characters of a value or key quoted in a message before it is cut with "...". */
#define PLGI_QUOTE_CHARS 40
/* Buffer for one quoted text: 40 characters escaped at most 6 bytes each, quotes, "...". */
#define PLGI_QUOTE_SIZE 320
/* One problem message. */
#define PLGI_MSG_SIZE 1024

typedef struct plgi_config_entry {
    char *key;              /* copy of the schema key */
    plg_config_type type;
    unsigned flags;
    int is_set;             /* 0 absent, 1 given, 2 default */
    int seen;               /* the key appears in the input (with any value, null included) */
    int given;              /* it appears with a value other than null (valid or not) */
    size_t seen_offset;     /* where it was first given */
    char *string;           /* STRING: string_len + 1 bytes */
    size_t string_len;
    int64_t integer;        /* INTEGER, DURATION */
    double number;          /* NUMBER */
    int boolean;            /* BOOLEAN */
} plgi_config_entry;

struct plg_config {
    plg_registry *reg;      /* allocator of everything below */
    size_t key_count;
    plgi_config_entry *entries;      /* schema order */
    plgi_config_entry **sorted;      /* by key, for binary search */
    plg_config_problem *problems;
    size_t problem_count, problem_cap;
};

/* A converted value before it is stored. */
typedef struct plgi_config_val {
    const char *string;
    size_t string_len;
    int64_t integer;
    double number;
    int boolean;
} plgi_config_val;

/* ---------------------------------------------------------------------------------------------
   Small text helpers
   ------------------------------------------------------------------------------------------- */

/* Length of a well-formed UTF-8 sequence starting at s[0] (n bytes available), 0 if invalid. */
static size_t plgi_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
        if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
        if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

static int plgi_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = plgi_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Writes s (n bytes) escaped so that no control byte, quote or invalid UTF-8 reaches a message or
   log line: \" \\ \n \r \t, \u00XX for other C0/C1 controls and DEL, \xNN for bytes that are not
   UTF-8. At most max_chars characters are written (then "..."); 0 means no limit. With quotes,
   the text is enclosed in double quotes. dst is always NUL-terminated. */
static void plgi_escape(char *dst, size_t dst_size, const char *s, size_t n, size_t max_chars,
                        int quotes)
{
    size_t o = 0, i = 0, chars = 0;
    const unsigned char *u = (const unsigned char *)s;
    if (dst_size == 0)
        return;
    /* Reserve room for the closing quote, "..." and the NUL. */
    if (dst_size < 8) {
        dst[0] = '\0';
        return;
    }
#define PLGI_PUT_(ch)                                                                              \
    do {                                                                                           \
        dst[o++] = (char)(ch);                                                                     \
    } while (0)
    if (quotes)
        PLGI_PUT_('"');
    while (i < n) {
        char tmp[8];
        size_t k, tlen, j;
        unsigned char c = u[i];
        if (max_chars != 0 && chars >= max_chars)
            break;
        k = plgi_utf8_seq(u + i, n - i);
        if (k == 0) {
            plgi_format(tmp, sizeof tmp, "\\x%02x", (unsigned)c);
            k = 1;
        } else if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tmp[2] = '\0';
        } else if (c == '\n') {
            memcpy(tmp, "\\n", 3);
        } else if (c == '\r') {
            memcpy(tmp, "\\r", 3);
        } else if (c == '\t') {
            memcpy(tmp, "\\t", 3);
        } else if (c < 0x20 || c == 0x7f) {
            plgi_format(tmp, sizeof tmp, "\\u%04x", (unsigned)c);
        } else if (c == 0xC2 && u[i + 1] < 0xA0) {
            /* C1 control characters U+0080..U+009F */
            plgi_format(tmp, sizeof tmp, "\\u%04x", (unsigned)u[i + 1]);
        } else {
            memcpy(tmp, s + i, k);
            tmp[k] = '\0';
        }
        tlen = strlen(tmp);
        if (o + tlen + 5 >= dst_size)
            break;
        for (j = 0; j < tlen; j++)
            PLGI_PUT_(tmp[j]);
        i += k;
        chars++;
    }
    if (i < n && o + 4 < dst_size) {
        PLGI_PUT_('.');
        PLGI_PUT_('.');
        PLGI_PUT_('.');
    }
    if (quotes)
        PLGI_PUT_('"');
    dst[o] = '\0';
#undef PLGI_PUT_
}

/* Quoted, escaped, cut to PLGI_QUOTE_CHARS characters. */
static void plgi_quote(char *dst, size_t dst_size, const char *s, size_t n)
{
    plgi_escape(dst, dst_size, s, n, PLGI_QUOTE_CHARS, 1);
}

static int plgi_ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive comparison of s (n bytes) with a lower-case NUL-terminated word. */
static int plgi_text_is(const char *s, size_t n, const char *word)
{
    size_t i;
    if (strlen(word) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (plgi_ascii_lower((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

/* Compares a NUL-terminated key with s (n bytes, may contain NUL) in unsigned byte order. */
static int plgi_keycmp(const char *key, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char a = (unsigned char)key[i], b = (unsigned char)s[i];
        if (a == 0)
            return -1;
        if (a != b)
            return a < b ? -1 : 1;
    }
    return key[n] == '\0' ? 0 : 1;
}

/* ---------------------------------------------------------------------------------------------
   Numbers: the JSON grammar, exact integers, locale-independent doubles
   ------------------------------------------------------------------------------------------- */

/* A number split into its parts: sign, digits of the integer and fraction parts, exponent. */
typedef struct plgi_num {
    int negative;
    const char *int_digits;
    size_t int_len;
    const char *frac_digits;
    size_t frac_len;
    long exponent; /* saturated at +-1e9 */
} plgi_num;

/* Scans the JSON number grammar at s[0..n). Returns the number of bytes used (> 0) or 0 with
   *err_at set to the offending position and *err_what to what was expected there. */
static size_t plgi_num_scan(const char *s, size_t n, plgi_num *num, size_t *err_at,
                            const char **err_what)
{
    size_t i = 0;
    memset(num, 0, sizeof *num);
    if (i < n && s[i] == '-') {
        num->negative = 1;
        i++;
    }
    if (i >= n || s[i] < '0' || s[i] > '9') {
        *err_at = i;
        *err_what = num->negative ? "expected a digit after '-'" : "expected a digit";
        return 0;
    }
    num->int_digits = s + i;
    if (s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') {
            *err_at = i;
            *err_what = "leading zeros are not allowed in numbers";
            return 0;
        }
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    num->int_len = (size_t)(s + i - num->int_digits);
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') {
            *err_at = i;
            *err_what = "expected a digit after the decimal point";
            return 0;
        }
        num->frac_digits = s + i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        num->frac_len = (size_t)(s + i - num->frac_digits);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        long e = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= n || s[i] < '0' || s[i] > '9') {
            *err_at = i;
            *err_what = "expected a digit in the exponent";
            return 0;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (e < 1000000000L)
                e = e * 10 + (s[i] - '0');
            i++;
        }
        if (e > 1000000000L)
            e = 1000000000L;
        num->exponent = eneg ? -e : e;
    }
    return i;
}

/* Parses the whole of s[0..n) as a JSON number; 0 on success. */
static int plgi_num_parse_all(const char *s, size_t n, plgi_num *num)
{
    size_t err_at;
    const char *err_what;
    size_t used = plgi_num_scan(s, n, num, &err_at, &err_what);
    return (used != 0 && used == n) ? 0 : -1;
}

/* Digit k of the concatenation of the integer and fraction digits (k < int_len + frac_len). */
static char plgi_num_digit(const plgi_num *num, size_t k)
{
    return k < num->int_len ? num->int_digits[k] : num->frac_digits[k - num->int_len];
}

/* Exact conversion to int64. Returns PLG_OK, PLG_ERR_CONFIG_TYPE (not integral) or
   PLG_ERR_CONFIG_RANGE (integral but outside int64). */
static plg_result plgi_num_to_int64(const plgi_num *num, int64_t *out)
{
    size_t total = num->int_len + num->frac_len, first = 0, last;
    long long scale; /* power of ten of digit `last` */
    uint64_t mag = 0;
    size_t k;
    while (first < total && plgi_num_digit(num, first) == '0')
        first++;
    if (first == total) {
        *out = 0;
        return PLG_OK;
    }
    last = total; /* one past the last nonzero digit */
    while (plgi_num_digit(num, last - 1) == '0')
        last--;
    /* The digit at index last-1 has power 10^(exponent - frac_len + (total - last)). */
    scale = (long long)num->exponent - (long long)num->frac_len + (long long)(total - last);
    if (scale < 0)
        return PLG_ERR_CONFIG_TYPE;
    if ((long long)(last - first) + scale > 19)
        return PLG_ERR_CONFIG_RANGE;
    for (k = first; k < last; k++) {
        uint64_t d = (uint64_t)(plgi_num_digit(num, k) - '0');
        if (mag > (UINT64_MAX - d) / 10)
            return PLG_ERR_CONFIG_RANGE;
        mag = mag * 10 + d;
    }
    for (; scale > 0; scale--) {
        if (mag > UINT64_MAX / 10)
            return PLG_ERR_CONFIG_RANGE;
        mag *= 10;
    }
    if (num->negative) {
        if (mag > (uint64_t)INT64_MAX + 1u)
            return PLG_ERR_CONFIG_RANGE;
        *out = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return PLG_ERR_CONFIG_RANGE;
        *out = (int64_t)mag;
    }
    return PLG_OK;
}

/* Conversion to double without the locale's decimal point: the digits are handed to strtod as
   "[-]DDDDe[-]N", whose value is exactly the number's. Returns PLG_OK, PLG_ERR_CONFIG_RANGE (not
   finite) or PLG_ERR_NO_MEMORY. */
static plg_result plgi_num_to_double(plg_registry *reg, const plgi_num *num, double *out)
{
    char local[128];
    char *buf = local;
    size_t total = num->int_len + num->frac_len, first = 0, k, o = 0, size;
    long long e;
    double d;
    while (first < total && plgi_num_digit(num, first) == '0')
        first++;
    if (first == total) {
        *out = num->negative ? -0.0 : 0.0;
        return PLG_OK;
    }
    e = (long long)num->exponent - (long long)num->frac_len;
    /* Beyond these the result is infinite or zero anyway; keep the text short. */
    if (e > 100000)
        e = 100000;
    if (e < -(long long)(total - first) - 100000)
        e = -(long long)(total - first) - 100000;
    size = (total - first) + 32;
    if (size > sizeof local) {
        buf = (char *)plgi_alloc(reg, size);
        if (buf == NULL)
            return PLG_ERR_NO_MEMORY;
    }
    if (num->negative)
        buf[o++] = '-';
    for (k = first; k < total; k++)
        buf[o++] = plgi_num_digit(num, k);
    plgi_format(buf + o, size - o, "e%lld", e);
    d = strtod(buf, NULL);
    if (buf != local)
        plgi_free(reg, buf, size);
    if (d > DBL_MAX || d < -DBL_MAX || d != d)
        return PLG_ERR_CONFIG_RANGE;
    *out = d;
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   Text forms of values
   ------------------------------------------------------------------------------------------- */

static void plgi_trim(const char **s, size_t *n)
{
    while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t' || (*s)[0] == '\n' || (*s)[0] == '\r')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\n' ||
                      (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* Duration text: one or more <digits>[.<digits>]<unit> groups, units ms s m h d; or a bare
   JSON number of milliseconds. */
static plg_result plgi_duration_text(const char *s, size_t n, int64_t *out, const char **why)
{
    size_t i = 0;
    uint64_t total = 0;
    plgi_num bare;
    if (n > 0 && s[0] == '-') {
        *why = "must not be negative";
        return PLG_ERR_CONFIG_RANGE;
    }
    if (plgi_num_parse_all(s, n, &bare) == 0) {
        plg_result r = plgi_num_to_int64(&bare, out);
        if (r == PLG_ERR_CONFIG_TYPE)
            *why = "must be a whole number of milliseconds";
        else if (r == PLG_ERR_CONFIG_RANGE)
            *why = "is too large for a duration";
        return r;
    }
    if (n == 0) {
        *why = "must be a duration such as \"250ms\", \"1.5s\" or \"1h30m\"";
        return PLG_ERR_CONFIG_TYPE;
    }
    while (i < n) {
        uint64_t ip = 0, unit, g, d10, u1, frac = 0, pow10 = 1;
        size_t fstart, flen = 0, j;
        int big = 0;
        if (s[i] < '0' || s[i] > '9') {
            *why = "must be a duration such as \"250ms\", \"1.5s\" or \"1h30m\"";
            return PLG_ERR_CONFIG_TYPE;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            uint64_t dg = (uint64_t)(s[i] - '0');
            if (ip > (UINT64_MAX - dg) / 10)
                big = 1;
            else
                ip = ip * 10 + dg;
            i++;
        }
        fstart = i;
        if (i < n && s[i] == '.') {
            i++;
            fstart = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            flen = i - fstart;
            if (flen == 0) {
                *why = "must be a duration such as \"250ms\", \"1.5s\" or \"1h30m\"";
                return PLG_ERR_CONFIG_TYPE;
            }
        }
        if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else if (i < n && s[i] == 's') {
            unit = 1000;
            i++;
        } else if (i < n && s[i] == 'm') {
            unit = 60000;
            i++;
        } else if (i < n && s[i] == 'h') {
            unit = 3600000;
            i++;
        } else if (i < n && s[i] == 'd') {
            unit = 86400000;
            i++;
        } else {
            *why = "must be a duration such as \"250ms\", \"1.5s\" or \"1h30m\" (units ms, s, m, h, d)";
            return PLG_ERR_CONFIG_TYPE;
        }
        /* Fraction without trailing zeros: frac / 10^flen. */
        while (flen > 0 && s[fstart + flen - 1] == '0')
            flen--;
        if (flen > 15) {
            *why = "must be a whole number of milliseconds";
            return PLG_ERR_CONFIG_TYPE;
        }
        for (j = 0; j < flen; j++) {
            frac = frac * 10 + (uint64_t)(s[fstart + j] - '0');
            pow10 *= 10;
        }
        if (flen > 0) {
            /* frac * unit / 10^flen must be whole: with g = gcd(unit, 10^flen), 10^flen/g must
               divide frac; the result is below unit, so nothing overflows. */
            uint64_t a = unit, b = pow10;
            while (b != 0) {
                uint64_t t = a % b;
                a = b;
                b = t;
            }
            g = a;
            d10 = pow10 / g;
            u1 = unit / g;
            if (frac % d10 != 0) {
                *why = "must be a whole number of milliseconds";
                return PLG_ERR_CONFIG_TYPE;
            }
            frac = (frac / d10) * u1;
        }
        if (big || (ip != 0 && ip > (uint64_t)INT64_MAX / unit)) {
            *why = "is too large for a duration";
            return PLG_ERR_CONFIG_RANGE;
        }
        ip = ip * unit + frac;
        if (ip > (uint64_t)INT64_MAX - total) {
            *why = "is too large for a duration";
            return PLG_ERR_CONFIG_RANGE;
        }
        total += ip;
    }
    *out = (int64_t)total;
    return PLG_OK;
}

/* Converts text in a key's type. Returns PLG_OK, PLG_ERR_CONFIG_TYPE or PLG_ERR_CONFIG_RANGE with
   *why a phrase ("must be an integer") or PLG_ERR_NO_MEMORY. For STRING the value points into s. */
static plg_result plgi_value_from_text(plg_registry *reg, plg_config_type type, const char *s,
                                       size_t n, plgi_config_val *v, const char **why)
{
    plgi_num num;
    plg_result r;
    memset(v, 0, sizeof *v);
    *why = "";
    if (type == PLG_CONFIG_STRING) {
        if (!plgi_utf8_valid(s, n)) {
            *why = "must be valid UTF-8";
            return PLG_ERR_CONFIG_TYPE;
        }
        v->string = s;
        v->string_len = n;
        return PLG_OK;
    }
    plgi_trim(&s, &n);
    switch (type) {
    case PLG_CONFIG_INTEGER:
        if (plgi_num_parse_all(s, n, &num) != 0) {
            *why = "must be an integer";
            return PLG_ERR_CONFIG_TYPE;
        }
        r = plgi_num_to_int64(&num, &v->integer);
        if (r == PLG_ERR_CONFIG_TYPE)
            *why = "must be an integer";
        else if (r == PLG_ERR_CONFIG_RANGE)
            *why = "is out of the range of a 64-bit integer";
        return r;
    case PLG_CONFIG_NUMBER:
        if (plgi_num_parse_all(s, n, &num) != 0) {
            *why = "must be a number";
            return PLG_ERR_CONFIG_TYPE;
        }
        r = plgi_num_to_double(reg, &num, &v->number);
        if (r == PLG_ERR_CONFIG_RANGE)
            *why = "is too large for a finite number";
        return r;
    case PLG_CONFIG_BOOLEAN:
        if (plgi_text_is(s, n, "true") || plgi_text_is(s, n, "1") || plgi_text_is(s, n, "yes") ||
            plgi_text_is(s, n, "on")) {
            v->boolean = 1;
            return PLG_OK;
        }
        if (plgi_text_is(s, n, "false") || plgi_text_is(s, n, "0") || plgi_text_is(s, n, "no") ||
            plgi_text_is(s, n, "off")) {
            v->boolean = 0;
            return PLG_OK;
        }
        *why = "must be a boolean (true/false, yes/no, on/off or 1/0)";
        return PLG_ERR_CONFIG_TYPE;
    case PLG_CONFIG_DURATION:
        return plgi_duration_text(s, n, &v->integer, why);
    case PLG_CONFIG_STRING:
    default:
        break;
    }
    *why = "has an unknown type";
    return PLG_ERR_CONFIG_TYPE;
}

static const char *plgi_type_name(plg_config_type type)
{
    switch (type) {
    case PLG_CONFIG_STRING:
        return "a string";
    case PLG_CONFIG_INTEGER:
        return "an integer";
    case PLG_CONFIG_BOOLEAN:
        return "a boolean";
    case PLG_CONFIG_NUMBER:
        return "a number";
    case PLG_CONFIG_DURATION:
        return "a duration";
    }
    return "a value";
}

/* Bounds of a key, parsed. For STRING they bound the length. */
typedef struct plgi_bounds {
    int has_min, has_max;
    plgi_config_val min, max;
} plgi_bounds;

/* Compares a value with a bound in the key's type: <0, 0, >0. */
static int plgi_value_cmp(plg_config_type type, const plgi_config_val *a, const plgi_config_val *b)
{
    switch (type) {
    case PLG_CONFIG_STRING:
        return a->string_len < (uint64_t)b->integer ? -1 : a->string_len > (uint64_t)b->integer;
    case PLG_CONFIG_INTEGER:
    case PLG_CONFIG_DURATION:
        return a->integer < b->integer ? -1 : a->integer > b->integer;
    case PLG_CONFIG_NUMBER:
        return a->number < b->number ? -1 : a->number > b->number;
    case PLG_CONFIG_BOOLEAN:
        return a->boolean - b->boolean;
    }
    return 0;
}

/* Parses a bound: for STRING a non-negative integer (bytes), else text in the type. */
static plg_result plgi_bound_parse(plg_registry *reg, plg_config_type type, const char *text,
                                   plgi_config_val *v, const char **why)
{
    plg_result r;
    if (type == PLG_CONFIG_STRING) {
        r = plgi_value_from_text(reg, PLG_CONFIG_INTEGER, text, strlen(text), v, why);
        if (r == PLG_OK && v->integer < 0) {
            *why = "must not be negative";
            return PLG_ERR_CONFIG_RANGE;
        }
        if (r != PLG_OK && r != PLG_ERR_NO_MEMORY)
            *why = "must be a length in bytes (a non-negative integer)";
        return r;
    }
    return plgi_value_from_text(reg, type, text, strlen(text), v, why);
}

/* Checks a converted value against bounds and allowed values. Returns PLG_OK or
   PLG_ERR_CONFIG_RANGE with the phrase in why (e.g. "must be at most 65535"). */
static plg_result plgi_value_check(const plg_config_key *k, const plgi_bounds *b,
                                   const plgi_config_val *v, char *why, size_t why_size)
{
    char q[PLGI_QUOTE_SIZE];
    const char *unit = k->type == PLG_CONFIG_STRING ? " bytes long" : "";
    if (b->has_min && plgi_value_cmp(k->type, v, &b->min) < 0) {
        plgi_escape(q, sizeof q, k->min, strlen(k->min), PLGI_QUOTE_CHARS, 0);
        plgi_format(why, why_size, "must be at least %s%s", q, unit);
        return PLG_ERR_CONFIG_RANGE;
    }
    if (b->has_max && plgi_value_cmp(k->type, v, &b->max) > 0) {
        plgi_escape(q, sizeof q, k->max, strlen(k->max), PLGI_QUOTE_CHARS, 0);
        plgi_format(why, why_size, "must be at most %s%s", q, unit);
        return PLG_ERR_CONFIG_RANGE;
    }
    if (k->type == PLG_CONFIG_STRING && k->allowed != NULL && k->allowed_count > 0) {
        size_t i;
        for (i = 0; i < k->allowed_count; i++) {
            size_t alen = strlen(k->allowed[i]);
            if (alen == v->string_len && memcmp(k->allowed[i], v->string, alen) == 0)
                return PLG_OK;
        }
        plgi_format(why, why_size, "must be one of");
        for (i = 0; i < k->allowed_count; i++) {
            size_t used = strlen(why);
            if (used + 60 > why_size || i >= 16) {
                plgi_append(why, why_size, ", ...");
                break;
            }
            plgi_quote(q, sizeof q, k->allowed[i], strlen(k->allowed[i]));
            plgi_append(why, why_size, "%s %s", i == 0 ? "" : ",", q);
        }
        return PLG_ERR_CONFIG_RANGE;
    }
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   Schema check
   ------------------------------------------------------------------------------------------- */

/* Builds "<n> <what>s: a; b; c" into dst from a list of messages, cut with "..." if too long. */
static void plgi_join_begin(char *dst, size_t size, size_t count, const char *what)
{
    plgi_format(dst, size, "%lu %s%s: ", (unsigned long)count, what, count == 1 ? "" : "s");
}

static void plgi_join_add(char *dst, size_t size, int first, const char *msg)
{
    size_t used = strlen(dst);
    if (used + 1 >= size)
        return;
    plgi_append(dst, size, "%s%s", first ? "" : "; ", msg);
    if (strlen(dst) + 1 >= size && size > 4)
        memcpy(dst + size - 4, "...", 4);
}

typedef struct plgi_schema_report {
    char text[PLGI_ERRMSG_SIZE];
    size_t count;
} plgi_schema_report;

static void plgi_schema_problem(plgi_schema_report *rep, size_t index, const char *key,
                                const char *fmt, ...) PLG_PRINTF(4, 5);
static void plgi_schema_problem(plgi_schema_report *rep, size_t index, const char *key,
                                const char *fmt, ...)
{
    char msg[PLGI_MSG_SIZE], what[PLGI_MSG_SIZE], q[PLGI_QUOTE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    plgi_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    if (key != NULL) {
        plgi_quote(q, sizeof q, key, strlen(key));
        plgi_format(msg, sizeof msg, "key %s: %s", q, what);
    } else {
        plgi_format(msg, sizeof msg, "key #%lu: %s", (unsigned long)index, what);
    }
    plgi_join_add(rep->text, sizeof rep->text, rep->count == 0, msg);
    rep->count++;
}

PLGI_DEF plg_result plg_schema_check(plg_registry *reg, const plg_config_key *schema,
                                     size_t key_count)
{
    plgi_schema_report *rep;
    size_t i, j;
    plg_result result;
    if (key_count == 0)
        return PLG_OK;
    if (schema == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_SCHEMA,
                         "configuration schema is NULL but has %lu keys", (unsigned long)key_count);
    rep = (plgi_schema_report *)plgi_alloc(reg, sizeof *rep);
    if (rep == NULL)
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "out of memory while checking a schema");
    rep->text[0] = '\0';
    rep->count = 0;
    for (i = 0; i < key_count; i++) {
        const plg_config_key *k = &schema[i];
        char why[256];
        const char *name = NULL, *w;
        int secret = (k->flags & PLG_KEY_SECRET) != 0;
        plgi_bounds b;
        plgi_config_val dv;
        int type_ok = k->type >= PLG_CONFIG_STRING && k->type <= PLG_CONFIG_DURATION;
        if (plgi_check_name(k->key, why, sizeof why) != 0) {
            plgi_schema_problem(rep, i, NULL, "name %s", why);
        } else {
            name = k->key;
            for (j = 0; j < i; j++)
                if (schema[j].key != NULL && strcmp(schema[j].key, k->key) == 0) {
                    plgi_schema_problem(rep, i, name, "declared twice (also key #%lu)",
                                        (unsigned long)j);
                    break;
                }
        }
        if (!type_ok) {
            plgi_schema_problem(rep, i, name, "unknown type %d", (int)k->type);
        }
        if ((k->flags & ~(PLG_KEY_REQUIRED | PLG_KEY_SECRET)) != 0)
            plgi_schema_problem(rep, i, name, "unknown flags 0x%x",
                                k->flags & ~(PLG_KEY_REQUIRED | PLG_KEY_SECRET));
        if ((k->flags & PLG_KEY_REQUIRED) && k->default_value != NULL)
            plgi_schema_problem(rep, i, name, "is required and has a default; a required key "
                                              "must not have one");
        if (k->allowed != NULL || k->allowed_count != 0) {
            if (type_ok && k->type != PLG_CONFIG_STRING)
                plgi_schema_problem(rep, i, name, "allowed values are only for strings");
            else if (k->allowed == NULL)
                plgi_schema_problem(rep, i, name, "allowed_count is %lu but allowed is NULL",
                                    (unsigned long)k->allowed_count);
            else if (k->allowed_count == 0)
                plgi_schema_problem(rep, i, name, "allowed is set but allowed_count is 0");
            else
                for (j = 0; j < k->allowed_count; j++) {
                    if (k->allowed[j] == NULL)
                        plgi_schema_problem(rep, i, name, "allowed value #%lu is NULL",
                                            (unsigned long)j);
                    else if (!plgi_utf8_valid(k->allowed[j], strlen(k->allowed[j])))
                        plgi_schema_problem(rep, i, name, "allowed value #%lu is not valid UTF-8",
                                            (unsigned long)j);
                }
        }
        if (!type_ok)
            continue;
        memset(&b, 0, sizeof b);
        if (k->min != NULL) {
            plg_result r = plgi_bound_parse(reg, k->type, k->min, &b.min, &w);
            char q[PLGI_QUOTE_SIZE];
            if (r == PLG_ERR_NO_MEMORY)
                goto oom;
            plgi_quote(q, sizeof q, k->min, strlen(k->min));
            if (r != PLG_OK)
                plgi_schema_problem(rep, i, name, "min %s %s", q, w);
            else
                b.has_min = 1;
        }
        if (k->max != NULL) {
            plg_result r = plgi_bound_parse(reg, k->type, k->max, &b.max, &w);
            char q[PLGI_QUOTE_SIZE];
            if (r == PLG_ERR_NO_MEMORY)
                goto oom;
            plgi_quote(q, sizeof q, k->max, strlen(k->max));
            if (r != PLG_OK)
                plgi_schema_problem(rep, i, name, "max %s %s", q, w);
            else
                b.has_max = 1;
        }
        if (b.has_min && b.has_max && plgi_value_cmp(k->type == PLG_CONFIG_STRING ?
                                                         PLG_CONFIG_INTEGER : k->type,
                                                     &b.min, &b.max) > 0) {
            char q1[PLGI_QUOTE_SIZE], q2[PLGI_QUOTE_SIZE];
            plgi_quote(q1, sizeof q1, k->min, strlen(k->min));
            plgi_quote(q2, sizeof q2, k->max, strlen(k->max));
            plgi_schema_problem(rep, i, name, "min %s is greater than max %s", q1, q2);
            b.has_min = b.has_max = 0;
        }
        if (k->default_value != NULL) {
            char q[PLGI_QUOTE_SIZE], why2[PLGI_MSG_SIZE];
            plg_result r = plgi_value_from_text(reg, k->type, k->default_value,
                                                strlen(k->default_value), &dv, &w);
            if (r == PLG_ERR_NO_MEMORY)
                goto oom;
            if (secret)
                plgi_format(q, sizeof q, "(secret, not shown)");
            else
                plgi_quote(q, sizeof q, k->default_value, strlen(k->default_value));
            if (r != PLG_OK) {
                plgi_schema_problem(rep, i, name, "default %s %s", q, w);
            } else {
                int allowed_ok = k->allowed != NULL && k->allowed_count > 0;
                for (j = 0; allowed_ok && j < k->allowed_count; j++)
                    if (k->allowed[j] == NULL)
                        allowed_ok = 0;
                if (!allowed_ok && k->type == PLG_CONFIG_STRING) {
                    /* allowed list is broken or absent: check the bounds only */
                    plg_config_key copy = *k;
                    copy.allowed = NULL;
                    copy.allowed_count = 0;
                    if (plgi_value_check(&copy, &b, &dv, why2, sizeof why2) != PLG_OK)
                        plgi_schema_problem(rep, i, name, "default %s %s", q, why2);
                } else if (plgi_value_check(k, &b, &dv, why2, sizeof why2) != PLG_OK) {
                    plgi_schema_problem(rep, i, name, "default %s %s", q, why2);
                }
            }
        }
    }
    if (rep->count == 0) {
        plgi_free(reg, rep, sizeof *rep);
        return PLG_OK;
    }
    {
        char text[PLGI_ERRMSG_SIZE];
        plgi_join_begin(text, sizeof text, rep->count, "schema problem");
        plgi_join_add(text, sizeof text, 1, rep->text);
        plgi_free(reg, rep, sizeof *rep);
        return plgi_fail(reg, PLG_ERR_INVALID_SCHEMA, "%s", text);
    }
oom:
    plgi_free(reg, rep, sizeof *rep);
    result = plgi_fail(reg, PLG_ERR_NO_MEMORY, "out of memory while checking a schema");
    return result;
}

/* ---------------------------------------------------------------------------------------------
   The config object
   ------------------------------------------------------------------------------------------- */

static int plgi_entry_ptr_cmp(const void *a, const void *b)
{
    const plgi_config_entry *ea = *(const plgi_config_entry *const *)a;
    const plgi_config_entry *eb = *(const plgi_config_entry *const *)b;
    return strcmp(ea->key, eb->key);
}

static void plgi_entry_clear_value(plg_config *cfg, plgi_config_entry *e)
{
    if (e->string != NULL)
        plgi_free(cfg->reg, e->string, e->string_len + 1);
    e->string = NULL;
    e->string_len = 0;
    e->integer = 0;
    e->number = 0.0;
    e->boolean = 0;
    e->is_set = 0;
}

static void plgi_config_free_problems(plg_config *cfg)
{
    size_t i;
    for (i = 0; i < cfg->problem_count; i++) {
        plgi_strfree(cfg->reg, (char *)cfg->problems[i].key);
        plgi_strfree(cfg->reg, (char *)cfg->problems[i].message);
    }
    if (cfg->problems != NULL)
        plgi_free(cfg->reg, cfg->problems, cfg->problem_cap * sizeof *cfg->problems);
    cfg->problems = NULL;
    cfg->problem_count = cfg->problem_cap = 0;
}

PLGI_DEF void plg_config_destroy(plg_config *config)
{
    size_t i;
    if (config == NULL)
        return;
    plgi_config_free_problems(config);
    if (config->entries != NULL) {
        for (i = 0; i < config->key_count; i++) {
            plgi_entry_clear_value(config, &config->entries[i]);
            plgi_strfree(config->reg, config->entries[i].key);
        }
        plgi_free(config->reg, config->entries, config->key_count * sizeof *config->entries);
    }
    if (config->sorted != NULL)
        plgi_free(config->reg, config->sorted, config->key_count * sizeof *config->sorted);
    plgi_free(config->reg, config, sizeof *config);
}

/* A config with a copy of the schema's keys and no values; NULL if memory ran out. */
static plg_config *plgi_config_new(plg_registry *reg, const plg_config_key *schema,
                                   size_t key_count)
{
    size_t i;
    plg_config *cfg = (plg_config *)plgi_alloc(reg, sizeof *cfg);
    if (cfg == NULL)
        return NULL;
    memset(cfg, 0, sizeof *cfg);
    cfg->reg = reg;
    if (key_count == 0)
        return cfg;
    if (key_count > ((size_t)-1) / sizeof(plgi_config_entry))
        goto fail;
    cfg->entries = (plgi_config_entry *)plgi_alloc(reg, key_count * sizeof *cfg->entries);
    if (cfg->entries == NULL)
        goto fail;
    memset(cfg->entries, 0, key_count * sizeof *cfg->entries);
    cfg->key_count = key_count;
    cfg->sorted = (plgi_config_entry **)plgi_alloc(reg, key_count * sizeof *cfg->sorted);
    if (cfg->sorted == NULL)
        goto fail;
    for (i = 0; i < key_count; i++) {
        plgi_config_entry *e = &cfg->entries[i];
        e->type = schema[i].type;
        e->flags = schema[i].flags;
        e->seen_offset = PLG_NO_OFFSET;
        e->key = plgi_strdup(reg, schema[i].key);
        if (e->key == NULL)
            goto fail;
        cfg->sorted[i] = e;
    }
    qsort(cfg->sorted, key_count, sizeof *cfg->sorted, plgi_entry_ptr_cmp);
    return cfg;
fail:
    plg_config_destroy(cfg);
    return NULL;
}

/* The entry for a key of n bytes, or NULL. */
static plgi_config_entry *plgi_config_find(const plg_config *cfg, const char *key, size_t n)
{
    size_t lo = 0, hi = cfg->key_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = plgi_keycmp(cfg->sorted[mid]->key, key, n);
        if (c == 0)
            return cfg->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Appends a problem; key (n bytes) is stored escaped. Returns 0, or -1 if memory ran out. */
static int plgi_config_add_problem(plg_config *cfg, plg_result code, int is_warning,
                                   const char *key, size_t key_len, size_t offset, const char *msg)
{
    plg_config_problem *p;
    char keybuf[PLGI_QUOTE_SIZE * 2];
    if (cfg->problem_count == cfg->problem_cap) {
        size_t cap = cfg->problem_cap ? cfg->problem_cap * 2 : 4;
        plg_config_problem *grown;
        if (cap > ((size_t)-1) / sizeof *grown)
            return -1;
        grown = (plg_config_problem *)plgi_alloc(cfg->reg, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        if (cfg->problem_count > 0)
            memcpy(grown, cfg->problems, cfg->problem_count * sizeof *grown);
        if (cfg->problems != NULL)
            plgi_free(cfg->reg, cfg->problems, cfg->problem_cap * sizeof *grown);
        cfg->problems = grown;
        cfg->problem_cap = cap;
    }
    p = &cfg->problems[cfg->problem_count];
    plgi_escape(keybuf, sizeof keybuf, key != NULL ? key : "", key != NULL ? key_len : 0, 100, 0);
    p->code = code;
    p->is_warning = is_warning;
    p->offset = offset;
    p->key = plgi_strdup(cfg->reg, keybuf);
    p->message = plgi_strdup(cfg->reg, msg);
    if (p->key == NULL || p->message == NULL) {
        plgi_strfree(cfg->reg, (char *)p->key);
        plgi_strfree(cfg->reg, (char *)p->message);
        return -1;
    }
    cfg->problem_count++;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   Validation of one given value (shared by JSON and pairs)
   ------------------------------------------------------------------------------------------- */

/* What was given for a key. */
typedef enum plgi_given_kind {
    PLGI_GIVEN_TEXT = 1,   /* a JSON string or a pair's value */
    PLGI_GIVEN_NUMBER = 2, /* a JSON number (raw text) */
    PLGI_GIVEN_TRUE = 3,
    PLGI_GIVEN_FALSE = 4,
    PLGI_GIVEN_OBJECT = 5,
    PLGI_GIVEN_ARRAY = 6
} plgi_given_kind;

/* The state of one parse. */
typedef struct plgi_cfgparse {
    plg_registry *reg;
    plg_config *cfg;
    const plg_config_key *schema;
    int strict;
    int oom;
    size_t error_count;
} plgi_cfgparse;

static void plgi_cfg_problem(plgi_cfgparse *cp, plg_result code, int is_warning, const char *key,
                             size_t key_len, size_t offset, const char *msg)
{
    if (cp->oom)
        return;
    if (plgi_config_add_problem(cp->cfg, code, is_warning, key, key_len, offset, msg) != 0)
        cp->oom = 1;
    else if (!is_warning)
        cp->error_count++;
}

/* A problem with a value: "<"key"> <why> (got <shown>)", or for a secret
   "value of <"key"> is not valid (secret, not shown): it <why>". */
static void plgi_cfg_value_problem(plgi_cfgparse *cp, plg_result code, const plgi_config_entry *e,
                                   size_t offset, const char *why, const char *shown)
{
    char msg[PLGI_MSG_SIZE], qk[PLGI_QUOTE_SIZE];
    plgi_quote(qk, sizeof qk, e->key, strlen(e->key));
    if (e->flags & PLG_KEY_SECRET)
        plgi_format(msg, sizeof msg, "value of %s is not valid (secret, not shown): it %s", qk,
                    why);
    else
        plgi_format(msg, sizeof msg, "%s %s (got %s)", qk, why, shown);
    plgi_cfg_problem(cp, code, 0, e->key, strlen(e->key), offset, msg);
}

/* Validates and stores a value given for a schema key. text/len: the decoded string (TEXT) or
   the raw number; offset: where the value starts. */
static void plgi_cfg_set(plgi_cfgparse *cp, plgi_config_entry *e, plgi_given_kind kind,
                         const char *text, size_t len, size_t offset)
{
    const plg_config_key *k = &cp->schema[e - cp->cfg->entries];
    plgi_config_val v;
    plgi_bounds b;
    const char *why = "";
    char shown[PLGI_QUOTE_SIZE], why2[PLGI_MSG_SIZE];
    plg_result r = PLG_OK;
    plgi_num num;

    switch (kind) {
    case PLGI_GIVEN_TEXT:
        plgi_quote(shown, sizeof shown, text, len);
        break;
    case PLGI_GIVEN_NUMBER:
        plgi_escape(shown, sizeof shown, text, len, PLGI_QUOTE_CHARS, 0);
        break;
    case PLGI_GIVEN_TRUE:
        plgi_format(shown, sizeof shown, "true");
        break;
    case PLGI_GIVEN_FALSE:
        plgi_format(shown, sizeof shown, "false");
        break;
    case PLGI_GIVEN_OBJECT:
        plgi_format(shown, sizeof shown, "an object");
        break;
    case PLGI_GIVEN_ARRAY:
        plgi_format(shown, sizeof shown, "an array");
        break;
    }
    memset(&v, 0, sizeof v);
    if (kind == PLGI_GIVEN_OBJECT || kind == PLGI_GIVEN_ARRAY) {
        plgi_format(why2, sizeof why2, "must be %s, not %s", plgi_type_name(e->type),
                    kind == PLGI_GIVEN_OBJECT ? "an object" : "an array");
        plgi_cfg_value_problem(cp, PLG_ERR_CONFIG_TYPE, e, offset, why2, shown);
        return;
    }
    if (kind == PLGI_GIVEN_TEXT) {
        r = plgi_value_from_text(cp->reg, e->type, text, len, &v, &why);
    } else if (kind == PLGI_GIVEN_TRUE || kind == PLGI_GIVEN_FALSE) {
        if (e->type != PLG_CONFIG_BOOLEAN) {
            r = PLG_ERR_CONFIG_TYPE;
            plgi_format(why2, sizeof why2, "must be %s", plgi_type_name(e->type));
            why = why2;
        } else {
            v.boolean = kind == PLGI_GIVEN_TRUE;
        }
    } else { /* number */
        (void)plgi_num_parse_all(text, len, &num); /* the parser checked the grammar */
        switch (e->type) {
        case PLG_CONFIG_INTEGER:
            r = plgi_num_to_int64(&num, &v.integer);
            why = r == PLG_ERR_CONFIG_TYPE ? "must be an integer"
                                           : "is out of the range of a 64-bit integer";
            break;
        case PLG_CONFIG_DURATION:
            r = plgi_num_to_int64(&num, &v.integer);
            if (r == PLG_ERR_CONFIG_TYPE)
                why = "must be a whole number of milliseconds";
            else if (r == PLG_ERR_CONFIG_RANGE)
                why = num.negative ? "must not be negative" : "is too large for a duration";
            else if (v.integer < 0) {
                r = PLG_ERR_CONFIG_RANGE;
                why = "must not be negative";
            }
            break;
        case PLG_CONFIG_NUMBER:
            r = plgi_num_to_double(cp->reg, &num, &v.number);
            why = "is too large for a finite number";
            break;
        case PLG_CONFIG_STRING:
        case PLG_CONFIG_BOOLEAN:
        default:
            r = PLG_ERR_CONFIG_TYPE;
            plgi_format(why2, sizeof why2, "must be %s", plgi_type_name(e->type));
            why = why2;
            break;
        }
    }
    if (r == PLG_ERR_NO_MEMORY) {
        cp->oom = 1;
        return;
    }
    if (r != PLG_OK) {
        if (why != why2) {
            plgi_format(why2, sizeof why2, "%s", why);
            why = why2;
        }
        plgi_cfg_value_problem(cp, r, e, offset, why2, shown);
        return;
    }
    /* Bounds: the schema was checked, so they parse. */
    memset(&b, 0, sizeof b);
    if (k->min != NULL && plgi_bound_parse(cp->reg, k->type, k->min, &b.min, &why) == PLG_OK)
        b.has_min = 1;
    if (k->max != NULL && plgi_bound_parse(cp->reg, k->type, k->max, &b.max, &why) == PLG_OK)
        b.has_max = 1;
    if (plgi_value_check(k, &b, &v, why2, sizeof why2) != PLG_OK) {
        plgi_cfg_value_problem(cp, PLG_ERR_CONFIG_RANGE, e, offset, why2, shown);
        return;
    }
    plgi_entry_clear_value(cp->cfg, e);
    if (e->type == PLG_CONFIG_STRING) {
        e->string = (char *)plgi_alloc(cp->reg, v.string_len + 1);
        if (e->string == NULL) {
            cp->oom = 1;
            return;
        }
        if (v.string_len > 0)
            memcpy(e->string, v.string, v.string_len);
        e->string[v.string_len] = '\0';
        e->string_len = v.string_len;
    }
    e->integer = v.integer;
    e->number = v.number;
    e->boolean = v.boolean;
    e->is_set = 1;
}

/* Levenshtein distance with adjacent transpositions, ASCII case ignored; stops early (returns
   limit + 1) when the lengths differ by more than limit. */
static size_t plgi_edit_distance(const char *a, size_t n, const char *b, size_t m, size_t limit)
{
    size_t rows[3][PLG_NAME_MAX + 2];
    size_t i, j;
    if (m > PLG_NAME_MAX || (n > m ? n - m : m - n) > limit)
        return limit + 1;
    /* rows[i % 3][j]: distance between a[0..i) and b[0..j) */
    for (j = 0; j <= m; j++)
        rows[0][j] = j;
    for (i = 1; i <= n; i++) {
        size_t *cur = rows[i % 3], *prev = rows[(i + 2) % 3], *prev2 = rows[(i + 1) % 3];
        size_t best = i; /* the row's minimum, which never decreases from row to row */
        cur[0] = i;
        for (j = 1; j <= m; j++) {
            int ca = plgi_ascii_lower((unsigned char)a[i - 1]);
            int cb = plgi_ascii_lower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t d = prev[j - 1] + cost;
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == plgi_ascii_lower((unsigned char)b[j - 2]) &&
                plgi_ascii_lower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
            if (d < best)
                best = d;
        }
        if (best > limit)
            return limit + 1;
    }
    return rows[n % 3][m];
}

/* Handles a key that is not in the schema: warning or error, with a did-you-mean hint. */
static void plgi_cfg_unknown(plgi_cfgparse *cp, const char *key, size_t n, size_t offset)
{
    char msg[PLGI_MSG_SIZE], qk[PLGI_QUOTE_SIZE], qs[PLGI_QUOTE_SIZE];
    size_t i, best = (size_t)-1, best_d = (size_t)-1;
    size_t limit = n <= 3 ? 1 : (n <= 6 ? 2 : 3);
    for (i = 0; i < cp->cfg->key_count; i++) {
        const char *sk = cp->cfg->entries[i].key;
        size_t d = plgi_edit_distance(key, n, sk, strlen(sk), limit);
        if (d <= limit && d < n && d < best_d) {
            best_d = d;
            best = i;
        }
    }
    plgi_quote(qk, sizeof qk, key, n);
    if (best != (size_t)-1) {
        plgi_quote(qs, sizeof qs, cp->cfg->entries[best].key, strlen(cp->cfg->entries[best].key));
        plgi_format(msg, sizeof msg, "unknown key %s (did you mean %s?)", qk, qs);
    } else {
        plgi_format(msg, sizeof msg, "unknown key %s", qk);
    }
    plgi_cfg_problem(cp, PLG_ERR_CONFIG_UNKNOWN_KEY, !cp->strict, key, n, offset, msg);
}

/* A set of the unknown keys seen, to report repeats as duplicates. Open addressing. */
typedef struct plgi_keyset_slot {
    char *key;
    size_t len;
    size_t offset;
} plgi_keyset_slot;

typedef struct plgi_keyset {
    plgi_keyset_slot *slots;
    size_t cap, count;
} plgi_keyset;

static size_t plgi_hash(const char *s, size_t n)
{
    size_t h = 2166136261u, i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void plgi_keyset_free(plg_registry *reg, plgi_keyset *set)
{
    size_t i;
    for (i = 0; i < set->cap; i++)
        if (set->slots[i].key != NULL)
            plgi_free(reg, set->slots[i].key, set->slots[i].len + 1);
    if (set->slots != NULL)
        plgi_free(reg, set->slots, set->cap * sizeof *set->slots);
    set->slots = NULL;
    set->cap = set->count = 0;
}

/* Looks a key up; adds it when absent. Returns the slot of an earlier occurrence, NULL when
   added now, and sets *oom on failure. */
static const plgi_keyset_slot *plgi_keyset_add(plg_registry *reg, plgi_keyset *set,
                                               const char *key, size_t n, size_t offset, int *oom)
{
    size_t i;
    if (set->count * 2 >= set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        plgi_keyset_slot *slots;
        if (cap > ((size_t)-1) / sizeof *slots) {
            *oom = 1;
            return NULL;
        }
        slots = (plgi_keyset_slot *)plgi_alloc(reg, cap * sizeof *slots);
        if (slots == NULL) {
            *oom = 1;
            return NULL;
        }
        memset(slots, 0, cap * sizeof *slots);
        for (i = 0; i < set->cap; i++)
            if (set->slots[i].key != NULL) {
                size_t h = plgi_hash(set->slots[i].key, set->slots[i].len) & (cap - 1);
                while (slots[h].key != NULL)
                    h = (h + 1) & (cap - 1);
                slots[h] = set->slots[i];
            }
        if (set->slots != NULL)
            plgi_free(reg, set->slots, set->cap * sizeof *set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    i = plgi_hash(key, n) & (set->cap - 1);
    while (set->slots[i].key != NULL) {
        if (set->slots[i].len == n && memcmp(set->slots[i].key, key, n) == 0)
            return &set->slots[i];
        i = (i + 1) & (set->cap - 1);
    }
    set->slots[i].key = (char *)plgi_alloc(reg, n + 1);
    if (set->slots[i].key == NULL) {
        *oom = 1;
        return NULL;
    }
    if (n > 0)
        memcpy(set->slots[i].key, key, n);
    set->slots[i].key[n] = '\0';
    set->slots[i].len = n;
    set->slots[i].offset = offset;
    set->count++;
    return NULL;
}

/* A key given twice. */
static void plgi_cfg_duplicate(plgi_cfgparse *cp, const char *key, size_t n, size_t offset,
                               size_t first_offset)
{
    char msg[PLGI_MSG_SIZE], qk[PLGI_QUOTE_SIZE];
    plgi_quote(qk, sizeof qk, key, n);
    if (first_offset != PLG_NO_OFFSET)
        plgi_format(msg, sizeof msg, "key %s is given twice (first at byte %lu)", qk,
                    (unsigned long)first_offset);
    else
        plgi_format(msg, sizeof msg, "key %s is given twice", qk);
    plgi_cfg_problem(cp, PLG_ERR_CONFIG_DUPLICATE_KEY, 0, key, n, offset, msg);
}

/* Looks a given key up. Returns the entry to set, or NULL when the value is to be ignored
   (unknown or duplicate; reported here). */
static plgi_config_entry *plgi_cfg_member(plgi_cfgparse *cp, plgi_keyset *unknown,
                                          const char *key, size_t n, size_t offset)
{
    plgi_config_entry *e = plgi_config_find(cp->cfg, key, n);
    if (e == NULL) {
        const plgi_keyset_slot *prev = plgi_keyset_add(cp->reg, unknown, key, n, offset, &cp->oom);
        if (cp->oom)
            return NULL;
        if (prev != NULL)
            plgi_cfg_duplicate(cp, key, n, offset, prev->offset);
        else
            plgi_cfg_unknown(cp, key, n, offset);
        return NULL;
    }
    if (e->seen) {
        plgi_cfg_duplicate(cp, key, n, offset, e->seen_offset);
        return NULL;
    }
    e->seen = 1;
    e->seen_offset = offset;
    return e;
}

/* After the input: defaults and required keys. */
static void plgi_cfg_finish(plgi_cfgparse *cp)
{
    size_t i;
    for (i = 0; i < cp->cfg->key_count && !cp->oom; i++) {
        plgi_config_entry *e = &cp->cfg->entries[i];
        const plg_config_key *k = &cp->schema[i];
        if (e->given)
            continue;
        if (k->default_value != NULL) {
            plgi_config_val v;
            const char *why;
            plg_result r = plgi_value_from_text(cp->reg, k->type, k->default_value,
                                                strlen(k->default_value), &v, &why);
            if (r == PLG_ERR_NO_MEMORY) {
                cp->oom = 1;
                return;
            }
            if (r != PLG_OK)
                continue; /* cannot happen: the schema was checked */
            plgi_entry_clear_value(cp->cfg, e);
            if (e->type == PLG_CONFIG_STRING) {
                e->string = (char *)plgi_alloc(cp->reg, v.string_len + 1);
                if (e->string == NULL) {
                    cp->oom = 1;
                    return;
                }
                if (v.string_len > 0)
                    memcpy(e->string, v.string, v.string_len);
                e->string[v.string_len] = '\0';
                e->string_len = v.string_len;
            }
            e->integer = v.integer;
            e->number = v.number;
            e->boolean = v.boolean;
            e->is_set = 2;
        } else if (k->flags & PLG_KEY_REQUIRED) {
            char msg[PLGI_MSG_SIZE], qk[PLGI_QUOTE_SIZE];
            plgi_quote(qk, sizeof qk, e->key, strlen(e->key));
            plgi_format(msg, sizeof msg, "required key %s is missing%s", qk,
                        e->seen ? " (it is null)" : "");
            plgi_cfg_problem(cp, PLG_ERR_CONFIG_MISSING_KEY, 0, e->key, strlen(e->key),
                             e->seen ? e->seen_offset : PLG_NO_OFFSET, msg);
        }
    }
}

/* Hands the result over: logs warnings, records the joined message, stores or frees the config. */
static plg_result plgi_cfg_conclude(plgi_cfgparse *cp, int syntax, plg_config **out)
{
    plg_config *cfg = cp->cfg;
    char text[PLGI_ERRMSG_SIZE];
    size_t i;
    int first = 1;
    plg_result result;
    if (cp->oom) {
        plg_config_destroy(cfg);
        return plgi_fail(cp->reg, PLG_ERR_NO_MEMORY, "out of memory while parsing a configuration");
    }
    for (i = 0; i < cfg->problem_count; i++)
        if (cfg->problems[i].is_warning)
            plgi_log(cp->reg, PLG_LOG_WARN, "configuration: %s", cfg->problems[i].message);
    if (cp->error_count == 0) {
        result = PLG_OK;
    } else {
        plgi_join_begin(text, sizeof text, cp->error_count, "configuration problem");
        for (i = 0; i < cfg->problem_count; i++)
            if (!cfg->problems[i].is_warning) {
                plgi_join_add(text, sizeof text, first, cfg->problems[i].message);
                first = 0;
            }
        result = plgi_fail(cp->reg, syntax ? PLG_ERR_CONFIG_SYNTAX : PLG_ERR_CONFIG_INVALID, "%s",
                           text);
    }
    if (out != NULL)
        *out = cfg;
    else
        plg_config_destroy(cfg);
    return result;
}

/* Common start of both parsers: checks arguments and the schema, makes the config. */
static plg_result plgi_cfg_begin(plgi_cfgparse *cp, plg_registry *reg,
                                 const plg_config_key *schema, size_t key_count, unsigned flags)
{
    plg_result r;
    memset(cp, 0, sizeof *cp);
    if ((flags & ~(PLG_CONFIG_STRICT | PLG_CONFIG_LENIENT)) != 0 ||
        flags == (PLG_CONFIG_STRICT | PLG_CONFIG_LENIENT))
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "configuration flags 0x%x: expected 0, PLG_CONFIG_STRICT or "
                         "PLG_CONFIG_LENIENT",
                         flags);
    r = plg_schema_check(reg, schema, key_count);
    if (r != PLG_OK)
        return r;
    cp->reg = reg;
    cp->schema = schema;
    cp->strict = (flags & PLG_CONFIG_STRICT) ? 1
                 : (flags & PLG_CONFIG_LENIENT) ? 0
                                                : plgi_strict_config(reg);
    cp->cfg = plgi_config_new(reg, schema, key_count);
    if (cp->cfg == NULL)
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "out of memory while parsing a configuration");
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   JSON parser
   ------------------------------------------------------------------------------------------- */

typedef struct plgi_json {
    const char *s;
    size_t len, pos;
    char *scratch;         /* decoded strings: the member's key, then its value */
    int failed;
    size_t err_at;
    char err[PLGI_MSG_SIZE];
    const char *key;       /* the top-level key being parsed (decoded), for syntax errors */
    size_t key_len;
} plgi_json;

static void plgi_json_error(plgi_json *j, size_t at, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgi_json_error(plgi_json *j, size_t at, const char *fmt, ...)
{
    char what[PLGI_MSG_SIZE];
    va_list ap;
    if (j->failed)
        return;
    va_start(ap, fmt);
    plgi_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    j->failed = 1;
    j->err_at = at;
    plgi_format(j->err, sizeof j->err, "malformed JSON at byte %lu: %s", (unsigned long)at, what);
}

/* Describes the byte at pos: 'x', byte 0xNN or end of input. */
static void plgi_json_found(const plgi_json *j, size_t pos, char *buf, size_t size)
{
    unsigned char c;
    if (pos >= j->len) {
        plgi_format(buf, size, "end of input");
        return;
    }
    c = (unsigned char)j->s[pos];
    if (c > 0x20 && c < 0x7f)
        plgi_format(buf, size, "'%c'", (char)c);
    else if (c == ' ')
        plgi_format(buf, size, "a space");
    else
        plgi_format(buf, size, "byte 0x%02x", (unsigned)c);
}

/* Reports that something else was expected at the current position. */
static void plgi_json_expected(plgi_json *j, const char *expected)
{
    char found[32];
    if (j->pos < j->len && j->s[j->pos] == '/' && j->pos + 1 < j->len &&
        (j->s[j->pos + 1] == '/' || j->s[j->pos + 1] == '*')) {
        plgi_json_error(j, j->pos, "comments are not allowed in JSON");
        return;
    }
    plgi_json_found(j, j->pos, found, sizeof found);
    plgi_json_error(j, j->pos, "%s, found %s", expected, found);
}

static void plgi_json_ws(plgi_json *j)
{
    while (j->pos < j->len) {
        char c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->pos++;
    }
}

static int plgi_json_hex4(const plgi_json *j, size_t at, unsigned *out)
{
    unsigned v = 0;
    size_t i;
    if (at + 4 > j->len)
        return -1;
    for (i = 0; i < 4; i++) {
        char c = j->s[at + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parses a string at pos (on its opening quote). With out, writes the decoded bytes there and
   their count to *out_len (out has room: decoding never lengthens). Returns 0 or -1. */
static int plgi_json_string(plgi_json *j, char *out, size_t *out_len)
{
    size_t o = 0;
    j->pos++; /* opening quote */
    for (;;) {
        unsigned char c;
        if (j->pos >= j->len) {
            plgi_json_error(j, j->len, "unterminated string");
            return -1;
        }
        c = (unsigned char)j->s[j->pos];
        if (c == '"') {
            j->pos++;
            if (out_len != NULL)
                *out_len = o;
            return 0;
        }
        if (c == '\\') {
            size_t esc = j->pos;
            char e;
            unsigned cp, lo;
            char utf[4];
            size_t ulen, i;
            if (esc + 1 >= j->len) {
                plgi_json_error(j, j->len, "unterminated string");
                return -1;
            }
            e = j->s[esc + 1];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                utf[0] = e;
                ulen = 1;
                j->pos += 2;
                break;
            case 'b':
                utf[0] = '\b';
                ulen = 1;
                j->pos += 2;
                break;
            case 'f':
                utf[0] = '\f';
                ulen = 1;
                j->pos += 2;
                break;
            case 'n':
                utf[0] = '\n';
                ulen = 1;
                j->pos += 2;
                break;
            case 'r':
                utf[0] = '\r';
                ulen = 1;
                j->pos += 2;
                break;
            case 't':
                utf[0] = '\t';
                ulen = 1;
                j->pos += 2;
                break;
            case 'u':
                if (plgi_json_hex4(j, esc + 2, &cp) != 0) {
                    plgi_json_error(j, esc, "invalid \\u escape: expected four hex digits");
                    return -1;
                }
                j->pos = esc + 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (j->pos + 1 < j->len && j->s[j->pos] == '\\' && j->s[j->pos + 1] == 'u' &&
                        plgi_json_hex4(j, j->pos + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        j->pos += 6;
                    } else {
                        plgi_json_error(j, esc,
                                        "unpaired surrogate \\u%04X: a high surrogate must be "
                                        "followed by a low surrogate escape (\\uDC00-\\uDFFF)",
                                        cp);
                        return -1;
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    plgi_json_error(j, esc,
                                    "unpaired surrogate \\u%04X: a low surrogate without a high "
                                    "one before it",
                                    cp);
                    return -1;
                }
                if (cp < 0x80) {
                    utf[0] = (char)cp;
                    ulen = 1;
                } else if (cp < 0x800) {
                    utf[0] = (char)(0xC0 | (cp >> 6));
                    utf[1] = (char)(0x80 | (cp & 0x3F));
                    ulen = 2;
                } else if (cp < 0x10000) {
                    utf[0] = (char)(0xE0 | (cp >> 12));
                    utf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    utf[2] = (char)(0x80 | (cp & 0x3F));
                    ulen = 3;
                } else {
                    utf[0] = (char)(0xF0 | (cp >> 18));
                    utf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    utf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    utf[3] = (char)(0x80 | (cp & 0x3F));
                    ulen = 4;
                }
                break;
            default:
                if ((unsigned char)e > 0x20 && (unsigned char)e < 0x7f)
                    plgi_json_error(j, esc,
                                    "invalid escape sequence '\\%c' (valid are \\\" \\\\ \\/ \\b "
                                    "\\f \\n \\r \\t \\uXXXX)",
                                    e);
                else
                    plgi_json_error(j, esc,
                                    "invalid escape sequence (valid are \\\" \\\\ \\/ \\b \\f \\n "
                                    "\\r \\t \\uXXXX)");
                return -1;
            }
            if (out != NULL)
                for (i = 0; i < ulen; i++)
                    out[o++] = utf[i];
            continue;
        }
        if (c < 0x20) {
            plgi_json_error(j, j->pos,
                            "control character 0x%02x in a string; it must be written as an "
                            "escape",
                            (unsigned)c);
            return -1;
        }
        if (c < 0x80) {
            if (out != NULL)
                out[o++] = (char)c;
            j->pos++;
        } else {
            size_t k = plgi_utf8_seq((const unsigned char *)j->s + j->pos, j->len - j->pos);
            if (k == 0) {
                plgi_json_error(j, j->pos, "invalid UTF-8 byte sequence in a string");
                return -1;
            }
            if (out != NULL) {
                memcpy(out + o, j->s + j->pos, k);
                o += k;
            }
            j->pos += k;
        }
    }
}

/* Parses a literal word at pos. */
static int plgi_json_literal(plgi_json *j, const char *word)
{
    size_t i, n = strlen(word);
    for (i = 0; i < n; i++)
        if (j->pos + i >= j->len || j->s[j->pos + i] != word[i]) {
            char found[32];
            plgi_json_found(j, j->pos + i, found, sizeof found);
            plgi_json_error(j, j->pos + i, "invalid literal: expected %s, found %s", word, found);
            return -1;
        }
    j->pos += n;
    return 0;
}

/* Parses a number at pos; *start receives where it began. */
static int plgi_json_number(plgi_json *j, size_t *start)
{
    plgi_num num;
    size_t err_at = 0;
    const char *what = "";
    size_t used = plgi_num_scan(j->s + j->pos, j->len - j->pos, &num, &err_at, &what);
    if (used == 0) {
        char found[32];
        plgi_json_found(j, j->pos + err_at, found, sizeof found);
        plgi_json_error(j, j->pos + err_at, "%s, found %s", what, found);
        return -1;
    }
    *start = j->pos;
    j->pos += used;
    return 0;
}

/* Validates any value at pos without keeping it; depth is that of a container opened here. */
static int plgi_json_skip(plgi_json *j, int depth)
{
    char c;
    size_t start;
    plgi_json_ws(j);
    if (j->pos >= j->len) {
        plgi_json_expected(j, "expected a value");
        return -1;
    }
    c = j->s[j->pos];
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        int after_comma = 0;
        if (depth > PLGI_JSON_MAX_DEPTH) {
            plgi_json_error(j, j->pos, "nesting deeper than %d levels", PLGI_JSON_MAX_DEPTH);
            return -1;
        }
        j->pos++;
        plgi_json_ws(j);
        if (j->pos < j->len && j->s[j->pos] == close) {
            j->pos++;
            return 0;
        }
        for (;;) {
            plgi_json_ws(j);
            if (after_comma && j->pos < j->len && j->s[j->pos] == close) {
                plgi_json_error(j, j->pos, "trailing comma before '%c' is not allowed", close);
                return -1;
            }
            if (c == '{') {
                if (j->pos >= j->len || j->s[j->pos] != '"') {
                    plgi_json_expected(j, "expected an object key (a string in double quotes)");
                    return -1;
                }
                if (plgi_json_string(j, NULL, NULL) != 0)
                    return -1;
                plgi_json_ws(j);
                if (j->pos >= j->len || j->s[j->pos] != ':') {
                    plgi_json_expected(j, "expected ':' after an object key");
                    return -1;
                }
                j->pos++;
            }
            if (plgi_json_skip(j, depth + 1) != 0)
                return -1;
            plgi_json_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') {
                j->pos++;
                after_comma = 1;
                continue;
            }
            if (j->pos < j->len && j->s[j->pos] == close) {
                j->pos++;
                return 0;
            }
            plgi_json_expected(j, c == '{' ? "expected ',' or '}' in an object"
                                           : "expected ',' or ']' in an array");
            return -1;
        }
    }
    if (c == '"')
        return plgi_json_string(j, NULL, NULL);
    if (c == 't')
        return plgi_json_literal(j, "true");
    if (c == 'f')
        return plgi_json_literal(j, "false");
    if (c == 'n')
        return plgi_json_literal(j, "null");
    if (c == '-' || (c >= '0' && c <= '9'))
        return plgi_json_number(j, &start);
    plgi_json_expected(j, "expected a value");
    return -1;
}

/* Parses the top-level object, validating members against the schema as they come. */
static void plgi_json_parse(plgi_json *j, plgi_cfgparse *cp, plgi_keyset *unknown)
{
    char qk[PLGI_QUOTE_SIZE], what[PLGI_QUOTE_SIZE + 64];
    int after_comma = 0;
    plgi_json_ws(j);
    if (j->pos >= j->len)
        return; /* only whitespace: an empty configuration */
    if (j->len - j->pos >= 3 && (unsigned char)j->s[j->pos] == 0xEF &&
        (unsigned char)j->s[j->pos + 1] == 0xBB && (unsigned char)j->s[j->pos + 2] == 0xBF) {
        plgi_json_error(j, j->pos, "a byte order mark is not allowed; the text must start with "
                                   "'{'");
        return;
    }
    if (j->s[j->pos] != '{') {
        plgi_json_expected(j, "the configuration must be a JSON object: expected '{'");
        return;
    }
    j->pos++;
    plgi_json_ws(j);
    if (j->pos < j->len && j->s[j->pos] == '}') {
        j->pos++;
    } else {
        for (;;) {
            size_t key_off, key_len, val_off, val_len = 0, num_start = 0;
            plgi_given_kind kind = PLGI_GIVEN_TEXT;
            int is_null = 0;
            char c;
            plgi_config_entry *e;
            plgi_json_ws(j);
            j->key = NULL;
            if (after_comma && j->pos < j->len && j->s[j->pos] == '}') {
                plgi_json_error(j, j->pos, "trailing comma before '}' is not allowed");
                return;
            }
            if (j->pos >= j->len || j->s[j->pos] != '"') {
                plgi_json_expected(j, "expected an object key (a string in double quotes)");
                return;
            }
            key_off = j->pos;
            if (plgi_json_string(j, j->scratch, &key_len) != 0)
                return;
            j->key = j->scratch;
            j->key_len = key_len;
            plgi_quote(qk, sizeof qk, j->key, key_len);
            plgi_json_ws(j);
            if (j->pos >= j->len || j->s[j->pos] != ':') {
                plgi_format(what, sizeof what, "expected ':' after object key %s", qk);
                plgi_json_expected(j, what);
                return;
            }
            j->pos++;
            plgi_json_ws(j);
            val_off = j->pos;
            c = j->pos < j->len ? j->s[j->pos] : '\0';
            if (c == '"') {
                if (plgi_json_string(j, j->scratch + key_len, &val_len) != 0)
                    return;
                kind = PLGI_GIVEN_TEXT;
            } else if (c == '{' || c == '[') {
                if (plgi_json_skip(j, 2) != 0)
                    return;
                kind = c == '{' ? PLGI_GIVEN_OBJECT : PLGI_GIVEN_ARRAY;
            } else if (c == 't') {
                if (plgi_json_literal(j, "true") != 0)
                    return;
                kind = PLGI_GIVEN_TRUE;
            } else if (c == 'f') {
                if (plgi_json_literal(j, "false") != 0)
                    return;
                kind = PLGI_GIVEN_FALSE;
            } else if (c == 'n') {
                if (plgi_json_literal(j, "null") != 0)
                    return;
                is_null = 1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (plgi_json_number(j, &num_start) != 0)
                    return;
                kind = PLGI_GIVEN_NUMBER;
                val_len = j->pos - num_start;
            } else {
                plgi_format(what, sizeof what, "expected a value for key %s", qk);
                plgi_json_expected(j, what);
                return;
            }
            /* A complete member: validate it. */
            e = plgi_cfg_member(cp, unknown, j->key, key_len, key_off);
            if (cp->oom)
                return;
            if (e != NULL && !is_null) {
                e->given = 1;
                plgi_cfg_set(cp, e, kind,
                             kind == PLGI_GIVEN_NUMBER ? j->s + num_start : j->scratch + key_len,
                             val_len, val_off);
                if (cp->oom)
                    return;
            }
            plgi_json_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') {
                j->pos++;
                after_comma = 1;
                continue;
            }
            if (j->pos < j->len && j->s[j->pos] == '}') {
                j->pos++;
                break;
            }
            plgi_format(what, sizeof what, "expected ',' or '}' after the value of key %s", qk);
            plgi_json_expected(j, what);
            return;
        }
    }
    j->key = NULL;
    plgi_json_ws(j);
    if (j->pos < j->len) {
        char found[32];
        if (j->s[j->pos] == '/' && j->pos + 1 < j->len &&
            (j->s[j->pos + 1] == '/' || j->s[j->pos + 1] == '*')) {
            plgi_json_error(j, j->pos, "comments are not allowed in JSON");
            return;
        }
        plgi_json_found(j, j->pos, found, sizeof found);
        plgi_json_error(j, j->pos, "unexpected %s after the configuration object", found);
    }
}

PLGI_DEF plg_result plg_config_parse_json(plg_registry *reg, const plg_config_key *schema,
                                          size_t key_count, const char *json, unsigned flags,
                                          plg_config **out)
{
    plgi_cfgparse cp;
    plgi_json j;
    plgi_keyset unknown;
    size_t max = plgi_max_config_bytes(reg), len = 0, i;
    plg_result r;
    if (out != NULL)
        *out = NULL;
    r = plgi_cfg_begin(&cp, reg, schema, key_count, flags);
    if (r != PLG_OK)
        return r;
    memset(&j, 0, sizeof j);
    memset(&unknown, 0, sizeof unknown);
    if (json != NULL)
        while (len <= max && json[len] != '\0')
            len++;
    if (len > max) {
        char msg[PLGI_MSG_SIZE];
        plgi_format(msg, sizeof msg,
                    "configuration text is longer than the limit of %lu bytes (max_config_bytes)",
                    (unsigned long)max);
        plgi_cfg_problem(&cp, PLG_ERR_CONFIG_SYNTAX, 0, "", 0, PLG_NO_OFFSET, msg);
        return plgi_cfg_conclude(&cp, 1, out);
    }
    j.s = json != NULL ? json : "";
    j.len = len;
    j.scratch = (char *)plgi_alloc(reg, len + 1);
    if (j.scratch == NULL) {
        cp.oom = 1;
        return plgi_cfg_conclude(&cp, 0, out);
    }
    plgi_json_parse(&j, &cp, &unknown);
    plgi_keyset_free(reg, &unknown);
    if (j.failed && !cp.oom) {
        /* Whatever was found before the syntax error is moot: report only that. */
        plg_config *cfg = cp.cfg;
        plgi_config_free_problems(cfg);
        for (i = 0; i < cfg->key_count; i++)
            plgi_entry_clear_value(cfg, &cfg->entries[i]);
        cp.error_count = 0;
        plgi_cfg_problem(&cp, PLG_ERR_CONFIG_SYNTAX, 0, j.key != NULL ? j.key : "",
                         j.key != NULL ? j.key_len : 0, j.err_at, j.err);
    } else if (!cp.oom) {
        plgi_cfg_finish(&cp);
    }
    plgi_free(reg, j.scratch, len + 1);
    return plgi_cfg_conclude(&cp, j.failed, out);
}

PLGI_DEF plg_result plg_config_parse_pairs(plg_registry *reg, const plg_config_key *schema,
                                           size_t key_count, const char *const *pairs,
                                           size_t pair_count, unsigned flags, plg_config **out)
{
    plgi_cfgparse cp;
    plgi_keyset unknown;
    size_t i;
    plg_result r;
    if (out != NULL)
        *out = NULL;
    if (pairs == NULL && pair_count > 0)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "pairs is NULL but pair_count is %lu",
                         (unsigned long)pair_count);
    for (i = 0; i < pair_count; i++)
        if (pairs[2 * i] == NULL)
            return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "configuration pair #%lu has a NULL key",
                             (unsigned long)i);
    r = plgi_cfg_begin(&cp, reg, schema, key_count, flags);
    if (r != PLG_OK)
        return r;
    memset(&unknown, 0, sizeof unknown);
    for (i = 0; i < pair_count && !cp.oom; i++) {
        const char *key = pairs[2 * i], *value = pairs[2 * i + 1];
        plgi_config_entry *e = plgi_cfg_member(&cp, &unknown, key, strlen(key), PLG_NO_OFFSET);
        if (e != NULL && value != NULL) {
            e->given = 1;
            plgi_cfg_set(&cp, e, PLGI_GIVEN_TEXT, value, strlen(value), PLG_NO_OFFSET);
        }
    }
    plgi_keyset_free(reg, &unknown);
    if (!cp.oom)
        plgi_cfg_finish(&cp);
    return plgi_cfg_conclude(&cp, 0, out);
}

/* ---------------------------------------------------------------------------------------------
   Problems and getters
   ------------------------------------------------------------------------------------------- */

PLGI_DEF size_t plg_config_problem_count(const plg_config *config)
{
    return config != NULL ? config->problem_count : 0;
}

PLGI_DEF const plg_config_problem *plg_config_problem_at(const plg_config *config, size_t index)
{
    if (config == NULL || index >= config->problem_count)
        return NULL;
    return &config->problems[index];
}

static const plgi_config_entry *plgi_config_lookup(const plg_config *config, const char *key)
{
    if (config == NULL || key == NULL)
        return NULL;
    return plgi_config_find(config, key, strlen(key));
}

PLGI_DEF plg_result plg_config_get(const plg_config *config, const char *key,
                                   plg_config_value *out)
{
    const plgi_config_entry *e;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (config == NULL || key == NULL || out == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    e = plgi_config_lookup(config, key);
    if (e == NULL)
        return PLG_ERR_NOT_FOUND;
    out->type = e->type;
    out->is_set = e->is_set;
    if (!e->is_set)
        return PLG_OK;
    out->string = e->string;
    out->string_len = e->string_len;
    if (e->type == PLG_CONFIG_INTEGER || e->type == PLG_CONFIG_DURATION)
        out->integer = e->integer;
    out->number = e->number;
    out->boolean = e->boolean;
    return PLG_OK;
}

PLGI_DEF int plg_config_is_set(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_lookup(config, key);
    return e != NULL ? e->is_set : 0;
}

/* The entry for key if it is set and of the type, else NULL. */
static const plgi_config_entry *plgi_config_typed(const plg_config *config, const char *key,
                                                  plg_config_type type)
{
    const plgi_config_entry *e = plgi_config_lookup(config, key);
    return (e != NULL && e->is_set && e->type == type) ? e : NULL;
}

PLGI_DEF const char *plg_config_string(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_typed(config, key, PLG_CONFIG_STRING);
    return e != NULL ? e->string : NULL;
}

PLGI_DEF int64_t plg_config_integer(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_typed(config, key, PLG_CONFIG_INTEGER);
    return e != NULL ? e->integer : 0;
}

PLGI_DEF int plg_config_boolean(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_typed(config, key, PLG_CONFIG_BOOLEAN);
    return e != NULL ? e->boolean : 0;
}

PLGI_DEF double plg_config_number(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_typed(config, key, PLG_CONFIG_NUMBER);
    return e != NULL ? e->number : 0.0;
}

PLGI_DEF int64_t plg_config_duration_ms(const plg_config *config, const char *key)
{
    const plgi_config_entry *e = plgi_config_typed(config, key, PLG_CONFIG_DURATION);
    return e != NULL ? e->integer : 0;
}

/* ---------------------------------------------------------------------------------------------
   Formatting
   ------------------------------------------------------------------------------------------- */

typedef struct plgi_out {
    char *buf;
    size_t size, len;
} plgi_out;

static void plgi_out_put(plgi_out *o, const char *s, size_t n)
{
    if (o->buf != NULL && o->size > 0 && o->len < o->size - 1) {
        size_t room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void plgi_out_str(plgi_out *o, const char *s)
{
    plgi_out_put(o, s, strlen(s));
}

/* A JSON string literal. */
static void plgi_out_json_string(plgi_out *o, const char *s, size_t n)
{
    size_t i, run = 0;
    plgi_out_put(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        plgi_out_put(o, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            plgi_out_put(o, "\\\"", 2);
            break;
        case '\\':
            plgi_out_put(o, "\\\\", 2);
            break;
        case '\b':
            plgi_out_put(o, "\\b", 2);
            break;
        case '\f':
            plgi_out_put(o, "\\f", 2);
            break;
        case '\n':
            plgi_out_put(o, "\\n", 2);
            break;
        case '\r':
            plgi_out_put(o, "\\r", 2);
            break;
        case '\t':
            plgi_out_put(o, "\\t", 2);
            break;
        default:
            plgi_format(esc, sizeof esc, "\\u%04x", (unsigned)c);
            plgi_out_put(o, esc, 6);
            break;
        }
    }
    plgi_out_put(o, s + run, n - run);
    plgi_out_put(o, "\"", 1);
}

/* The shortest decimal text that reads back as d (d finite), independent of the locale, as
   JSON: "2.5", "1e+21", "-0", "0.001". size >= 40. */
static void plgi_format_double(double d, char *out, size_t size)
{
    char tmp[64], digits[24], back[48];
    int p, neg = 0, ndig = 0, exp10 = 0, n, k, i;
    size_t o = 0;
    /* The first precision whose correctly rounded digits read back exactly is the shortest. */
    for (p = 1; p <= 17; p++) {
        const char *t;
        int eneg = 0;
        neg = 0;
        ndig = 0;
        exp10 = 0;
        plgi_format(tmp, sizeof tmp, "%.*e", p - 1, d);
        t = tmp;
        if (*t == '-') {
            neg = 1;
            t++;
        }
        /* digits and the locale's decimal point, up to 'e' */
        while (*t != '\0' && *t != 'e' && *t != 'E') {
            if (*t >= '0' && *t <= '9' && ndig < (int)sizeof digits - 1)
                digits[ndig++] = *t;
            t++;
        }
        if (*t == 'e' || *t == 'E') {
            t++;
            if (*t == '-' || *t == '+') {
                eneg = *t == '-';
                t++;
            }
            while (*t >= '0' && *t <= '9') {
                exp10 = exp10 * 10 + (*t - '0');
                t++;
            }
            if (eneg)
                exp10 = -exp10;
        }
        digits[ndig] = '\0';
        plgi_format(back, sizeof back, "%s%se%d", neg ? "-" : "", digits, exp10 - (ndig - 1));
        if (strtod(back, NULL) == d)
            break;
    }
    while (ndig > 1 && digits[ndig - 1] == '0')
        ndig--;
    digits[ndig] = '\0';
    k = ndig;
    n = exp10 + 1; /* the decimal point comes after n digits */
    if (neg)
        out[o++] = '-';
    if (k <= n && n <= 21) {
        for (i = 0; i < k; i++)
            out[o++] = digits[i];
        for (i = k; i < n; i++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        for (i = 0; i < n; i++)
            out[o++] = digits[i];
        out[o++] = '.';
        for (i = n; i < k; i++)
            out[o++] = digits[i];
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (i = n; i < 0; i++)
            out[o++] = '0';
        for (i = 0; i < k; i++)
            out[o++] = digits[i];
    } else {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            for (i = 1; i < k; i++)
                out[o++] = digits[i];
        }
        out[o] = '\0';
        plgi_format(out + o, size - o, "e%c%d", n - 1 >= 0 ? '+' : '-', n - 1 >= 0 ? n - 1 : 1 - n);
        return;
    }
    out[o] = '\0';
}

PLGI_DEF size_t plg_config_format(const plg_config *config, char *buf, size_t size)
{
    plgi_out o;
    size_t i;
    int first = 1;
    o.buf = buf;
    o.size = size;
    o.len = 0;
    if (config == NULL) {
        if (buf != NULL && size > 0)
            buf[0] = '\0';
        return 0;
    }
    plgi_out_put(&o, "{", 1);
    for (i = 0; i < config->key_count; i++) {
        const plgi_config_entry *e = &config->entries[i];
        char num[64];
        if (!e->is_set)
            continue;
        if (!first)
            plgi_out_put(&o, ",", 1);
        first = 0;
        plgi_out_json_string(&o, e->key, strlen(e->key));
        plgi_out_put(&o, ":", 1);
        if (e->flags & PLG_KEY_SECRET) {
            plgi_out_str(&o, "\"<redacted>\"");
            continue;
        }
        switch (e->type) {
        case PLG_CONFIG_STRING:
            plgi_out_json_string(&o, e->string, e->string_len);
            break;
        case PLG_CONFIG_INTEGER:
        case PLG_CONFIG_DURATION:
            plgi_format(num, sizeof num, "%lld", (long long)e->integer);
            plgi_out_str(&o, num);
            break;
        case PLG_CONFIG_BOOLEAN:
            plgi_out_str(&o, e->boolean ? "true" : "false");
            break;
        case PLG_CONFIG_NUMBER:
            plgi_format_double(e->number, num, sizeof num);
            plgi_out_str(&o, num);
            break;
        default: /* not a type: plg_schema_check rejects it */
            plgi_out_str(&o, "null");
            break;
        }
    }
    plgi_out_put(&o, "}", 1);
    if (buf != NULL && size > 0)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

/* ---------------------------------------------------------------------------------------------
   Results, states, version
   ------------------------------------------------------------------------------------------- */

PLGI_DEF const char *plg_result_string(plg_result result)
{
    switch (result) {
#define PLGI_RESULT_CASE_(name, value, text)                                                       \
    case name:                                                                                     \
        return #name ": " text;
        PLG_RESULT_LIST(PLGI_RESULT_CASE_)
#undef PLGI_RESULT_CASE_
    default:
        return "PLG_ERR_UNKNOWN: unknown result code";
    }
}

PLGI_DEF const char *plg_version(void)
{
    return PLG_VERSION_STRING;
}

PLGI_DEF const char *plg_state_name(plg_state state)
{
    switch (state) {
    case PLG_STATE_REGISTERED: return "registered";
    case PLG_STATE_INITIALIZED: return "initialized";
    case PLG_STATE_STARTED: return "started";
    case PLG_STATE_STOPPED: return "stopped";
    case PLG_STATE_SHUT_DOWN: return "shut down";
    case PLG_STATE_FAILED: return "failed";
    default: return "invalid state";
    }
}

/* ---------------------------------------------------------------------------------------------
   Nodes, index and arena
   ------------------------------------------------------------------------------------------- */

#define PLGI_REASON_SIZE 512
#define PLGI_ALIGN 16

/* Rarely touched state, kept out of the node so that a large registry stays dense in cache
   (lookups never touch it). */
typedef struct plgi_cold {
    int leases;               /* atomic: callers between plg_acquire and plg_release */
    int retired;              /* atomic: replaced by plg_reload; plg_acquire goes to the new one */
    struct plgi_library *lib; /* the library the descriptor came from; NULL from memory */
    char *init_json;          /* configuration text init received (NULL: "{}"); for plg_reload */
    plg_semver version;
    char failure[PLGI_REASON_SIZE];        /* written once, before the state becomes failed */
    char callback_error[PLGI_REASON_SIZE]; /* plg_plugin_set_error during a callback */
} plgi_cold;

struct plg_plugin {
    /* What a lookup touches comes first: "type\0name\0" inline, next to its hash. */
    uint64_t hash;
    char key[2 * PLG_NAME_MAX + 2];
    int unregistered;        /* atomic */
    int state;               /* atomic plg_state; written with lock held */
    plg_registry *reg;
    plg_descriptor desc;     /* the registry's copy; type and name point into key */
    plgi_cold *cold;         /* at the start of the arena */
    void *arena;             /* one allocation: cold state, then the copied strings and arrays */
    size_t arena_size;
    uint64_t seq;            /* registration order */
    pthread_mutex_t lock;    /* lifecycle of this plugin */
    void *instance;          /* atomic pointer */
    plg_config *config;      /* atomic pointer; the configuration init received */
    int has_instance;        /* init succeeded and shutdown has not run */
    int mark;                /* dependency walk scratch, under lifecycle_lock */
    int in_cycle;
    char *pending_config;    /* JSON stored by plg_set_config */
    plg_plugin *next;        /* atomic; registration order */
};

/* Open addressing table of live plugins keyed by (type, name). Readers never lock: the table
   pointer and every slot are published with release stores; a full table is replaced by a larger
   copy and the old one retired until the registry is destroyed. */
typedef struct plgi_slot {
    uint64_t hash;           /* written before node is published */
    plg_plugin *node;        /* NULL: empty; PLGI_TOMBSTONE: removed */
} plgi_slot;

struct plgi_table {
    size_t mask;
    size_t used;             /* live + tombstones, writer only */
    plgi_table *retired_next;
    plgi_slot *slots;
};

/* Append-only list of the plugins of one type, republished when it grows. */
typedef struct plgi_vec {
    size_t capacity;
    size_t count;            /* atomic */
    struct plgi_vec *retired_next;
    plg_plugin **items;
} plgi_vec;

struct plgi_type_entry {
    plgi_type_entry *next;   /* immutable once published */
    char *type;
    plgi_vec *vec;           /* atomic pointer */
    plgi_vec *retired;
};

struct plgi_iface {
    plgi_iface *next;
    plg_interface_spec spec; /* id and struct_sizes point into this allocation */
    size_t alloc_size;
};

static char plgi_tombstone_;
#define PLGI_TOMBSTONE ((plg_plugin *)(void *)&plgi_tombstone_)

#define PLGI_LOAD(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define PLGI_STORE(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)

static uint64_t plgi_hash_key(const char *type, const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    const unsigned char *s;
    for (s = (const unsigned char *)type; *s; s++)
        h = (h ^ *s) * 1099511628211ULL;
    h = (h ^ 0xffu) * 1099511628211ULL; /* separator that no name contains */
    for (s = (const unsigned char *)name; *s; s++)
        h = (h ^ *s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static plgi_table *plgi_table_new(plg_registry *reg, size_t capacity)
{
    size_t bytes = sizeof(plgi_table) + capacity * sizeof(plgi_slot);
    plgi_table *t = (plgi_table *)plgi_alloc(reg, bytes);
    if (t == NULL)
        return NULL;
    t->mask = capacity - 1;
    t->used = 0;
    t->retired_next = NULL;
    t->slots = (plgi_slot *)(void *)(t + 1);
    memset(t->slots, 0, capacity * sizeof(plgi_slot));
    return t;
}

static void plgi_table_free(plg_registry *reg, plgi_table *t)
{
    plgi_free(reg, t, sizeof(plgi_table) + (t->mask + 1) * sizeof(plgi_slot));
}

static plg_plugin *plgi_table_find(plgi_table *t, uint64_t hash, const char *type,
                                   const char *name)
{
    size_t i, type_len = strlen(type);
    if (t == NULL)
        return NULL;
    for (i = (size_t)hash & t->mask;; i = (i + 1) & t->mask) {
        plg_plugin *p = PLGI_LOAD(t->slots[i].node);
        if (p == NULL)
            return NULL;
        if (p != PLGI_TOMBSTONE && __atomic_load_n(&t->slots[i].hash, __ATOMIC_RELAXED) == hash &&
            memcmp(p->key, type, type_len + 1) == 0 && strcmp(p->key + type_len + 1, name) == 0)
            return p;
    }
}

/* Writer only. The table always keeps an empty slot, so probing ends. */
static void plgi_table_put(plgi_table *t, plg_plugin *p)
{
    size_t i;
    for (i = (size_t)p->hash & t->mask;; i = (i + 1) & t->mask) {
        if (t->slots[i].node == NULL) {
            t->used++;
            __atomic_store_n(&t->slots[i].hash, p->hash, __ATOMIC_RELAXED);
            PLGI_STORE(t->slots[i].node, p);
            return;
        }
    }
}

/* Writer only: makes room for one more node, replacing the table when 3/4 full. */
static plg_result plgi_table_reserve(plg_registry *reg)
{
    plgi_table *old = reg->table, *t;
    size_t capacity, i;
    if (old != NULL && (old->used + 1) * 4 < (old->mask + 1) * 3)
        return PLG_OK;
    capacity = 64;
    while (capacity * 3 <= (reg->live_count + 1) * 8) /* live at most 3/8 after growth */
        capacity *= 2;
    t = plgi_table_new(reg, capacity);
    if (t == NULL)
        return PLG_ERR_NO_MEMORY;
    if (old != NULL) {
        for (i = 0; i <= old->mask; i++)
            if (old->slots[i].node != NULL && old->slots[i].node != PLGI_TOMBSTONE)
                plgi_table_put(t, old->slots[i].node);
        old->retired_next = reg->retired_tables;
        reg->retired_tables = old;
    }
    PLGI_STORE(reg->table, t);
    return PLG_OK;
}

static plgi_type_entry *plgi_type_find(plg_registry *reg, const char *type)
{
    plgi_type_entry *e;
    for (e = PLGI_LOAD(reg->types); e != NULL; e = e->next)
        if (strcmp(e->type, type) == 0)
            return e;
    return NULL;
}

static plgi_vec *plgi_vec_new(plg_registry *reg, size_t capacity)
{
    plgi_vec *v = (plgi_vec *)plgi_alloc(reg, sizeof(plgi_vec) + capacity * sizeof(plg_plugin *));
    if (v == NULL)
        return NULL;
    v->capacity = capacity;
    v->count = 0;
    v->retired_next = NULL;
    v->items = (plg_plugin **)(void *)(v + 1);
    return v;
}

static void plgi_vec_free(plg_registry *reg, plgi_vec *v)
{
    plgi_free(reg, v, sizeof(plgi_vec) + v->capacity * sizeof(plg_plugin *));
}

/* Writer only: makes sure the type has an entry with room for one more plugin. */
static plg_result plgi_type_reserve(plg_registry *reg, const char *type, plgi_type_entry **out)
{
    plgi_type_entry *e = plgi_type_find(reg, type);
    plgi_vec *v, *bigger;
    if (e == NULL) {
        e = (plgi_type_entry *)plgi_alloc(reg, sizeof *e);
        if (e == NULL)
            return PLG_ERR_NO_MEMORY;
        e->type = plgi_strdup(reg, type);
        e->vec = plgi_vec_new(reg, 8);
        e->retired = NULL;
        if (e->type == NULL || e->vec == NULL) {
            plgi_strfree(reg, e->type);
            if (e->vec != NULL)
                plgi_vec_free(reg, e->vec);
            plgi_free(reg, e, sizeof *e);
            return PLG_ERR_NO_MEMORY;
        }
        e->next = reg->types;
        PLGI_STORE(reg->types, e);
    }
    v = e->vec;
    if (v->count == v->capacity) {
        bigger = plgi_vec_new(reg, v->capacity * 2);
        if (bigger == NULL)
            return PLG_ERR_NO_MEMORY;
        memcpy(bigger->items, v->items, v->count * sizeof(plg_plugin *));
        bigger->count = v->count;
        v->retired_next = e->retired;
        e->retired = v;
        PLGI_STORE(e->vec, bigger);
    }
    *out = e;
    return PLG_OK;
}

typedef struct plgi_arena {
    char *base; /* NULL while measuring */
    size_t used;
} plgi_arena;

static void *plgi_arena_take(plgi_arena *a, size_t size, size_t align)
{
    size_t at = (a->used + align - 1) / align * align;
    a->used = at + size;
    return a->base != NULL ? a->base + at : NULL;
}

static const char *plgi_arena_str(plgi_arena *a, const char *s)
{
    size_t n;
    char *copy;
    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    copy = (char *)plgi_arena_take(a, n, 1);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

/* Copies everything the descriptor points to into the arena (or measures it when a->base is
   NULL). `out` receives the copy with pointers into the arena. */
static void plgi_copy_descriptor(plgi_arena *a, const plg_descriptor *d, plg_descriptor *out)
{
    size_t i, j;
    const char **caps;
    plg_dependency *deps;
    plg_config_key *keys;
    (void)plgi_arena_take(a, sizeof(plgi_cold), PLGI_ALIGN); /* the arena starts with it */
    *out = *d;
    out->abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    out->struct_size = (uint32_t)sizeof(plg_descriptor);
    out->type = plgi_arena_str(a, d->type);
    out->name = plgi_arena_str(a, d->name);
    out->version = plgi_arena_str(a, d->version);
    out->description = plgi_arena_str(a, d->description != NULL ? d->description : "");
    out->host_api_range = plgi_arena_str(a, d->host_api_range);
    caps = (const char **)plgi_arena_take(a, d->capability_count * sizeof(char *), PLGI_ALIGN);
    for (i = 0; i < d->capability_count; i++) {
        const char *c = plgi_arena_str(a, d->capabilities[i]);
        if (caps != NULL)
            caps[i] = c;
    }
    out->capabilities = d->capability_count ? caps : NULL;
    deps = (plg_dependency *)plgi_arena_take(a, d->dependency_count * sizeof(plg_dependency),
                                             PLGI_ALIGN);
    for (i = 0; i < d->dependency_count; i++) {
        const plg_dependency *s = &d->dependencies[i];
        const char *type = plgi_arena_str(a, s->type != NULL ? s->type : d->type);
        const char *name = plgi_arena_str(a, s->name);
        const char *range = plgi_arena_str(a, s->range != NULL ? s->range : "");
        if (deps != NULL) {
            deps[i].type = type;
            deps[i].name = name;
            deps[i].range = range;
            deps[i].optional = s->optional;
        }
    }
    out->dependencies = d->dependency_count ? deps : NULL;
    keys = (plg_config_key *)plgi_arena_take(a, d->config_key_count * sizeof(plg_config_key),
                                             PLGI_ALIGN);
    for (i = 0; i < d->config_key_count; i++) {
        const plg_config_key *s = &d->config_schema[i];
        plg_config_key k = *s;
        const char **allowed;
        k.key = plgi_arena_str(a, s->key);
        k.default_value = plgi_arena_str(a, s->default_value);
        k.min = plgi_arena_str(a, s->min);
        k.max = plgi_arena_str(a, s->max);
        k.description = plgi_arena_str(a, s->description);
        allowed = (const char **)plgi_arena_take(a, s->allowed_count * sizeof(char *), PLGI_ALIGN);
        for (j = 0; j < s->allowed_count; j++) {
            const char *v = plgi_arena_str(a, s->allowed[j]);
            if (allowed != NULL)
                allowed[j] = v;
        }
        k.allowed = s->allowed_count ? allowed : NULL;
        if (keys != NULL)
            keys[i] = k;
    }
    out->config_schema = d->config_key_count ? keys : NULL;
    out->provides.id = plgi_arena_str(a, d->provides.id);
}

/* ---------------------------------------------------------------------------------------------
   Registry lifetime
   ------------------------------------------------------------------------------------------- */

PLGI_DEF plg_result plg_registry_create(const plg_registry_desc *desc, plg_registry **out)
{
    plg_registry_desc d;
    plg_registry *reg;
    plg_semver host;
    char why[256];
    if (out == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    *out = NULL;
    memset(&d, 0, sizeof d);
    if (desc != NULL)
        d = *desc;
    if ((d.allocator.alloc_fn == NULL) != (d.allocator.free_fn == NULL)) {
        if (d.logger.log_fn != NULL)
            d.logger.log_fn(d.logger.user, PLG_LOG_ERROR,
                            "plg_registry_create: allocator needs both alloc_fn and free_fn");
        return PLG_ERR_INVALID_ARGUMENT;
    }
    if (d.allocator.alloc_fn == NULL) {
        d.allocator.alloc_fn = plgi_default_alloc;
        d.allocator.free_fn = plgi_default_free;
        d.allocator.user = NULL;
    }
    if (d.host_api_version == NULL)
        d.host_api_version = "1.0.0";
    if (plg_semver_parse(d.host_api_version, &host, why, sizeof why) != PLG_OK) {
        if (d.logger.log_fn != NULL) {
            char line[512];
            plgi_format(line, sizeof line, "plg_registry_create: host_api_version: %s", why);
            d.logger.log_fn(d.logger.user, PLG_LOG_ERROR, line);
        }
        return PLG_ERR_INVALID_VERSION;
    }
    if (d.max_config_bytes == 0)
        d.max_config_bytes = 65536;
    d.strict_config = d.strict_config ? 1 : 0;
    reg = (plg_registry *)d.allocator.alloc_fn(sizeof *reg, d.allocator.user);
    if (reg == NULL)
        return PLG_ERR_NO_MEMORY;
    memset(reg, 0, sizeof *reg);
    reg->desc = d;
    reg->host_api = host;
    memcpy(reg->host_api_text, host.text, sizeof reg->host_api_text);
    reg->desc.host_api_version = reg->host_api_text;
    if (pthread_key_create(&reg->err_key, plgi_errbuf_release) != 0) {
        d.allocator.free_fn(reg, sizeof *reg, d.allocator.user);
        return PLG_ERR_INTERNAL;
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        pthread_key_delete(reg->err_key);
        d.allocator.free_fn(reg, sizeof *reg, d.allocator.user);
        return PLG_ERR_INTERNAL;
    }
    if (pthread_mutex_init(&reg->lifecycle_lock, NULL) != 0) {
        pthread_mutex_destroy(&reg->lock);
        pthread_key_delete(reg->err_key);
        d.allocator.free_fn(reg, sizeof *reg, d.allocator.user);
        return PLG_ERR_INTERNAL;
    }
    *out = reg;
    return PLG_OK;
}

static void plgi_libraries_free(plg_registry *reg);

static void plgi_node_free(plg_registry *reg, plg_plugin *p)
{
    plg_config_destroy(p->config);
    plgi_strfree(reg, p->pending_config);
    plgi_strfree(reg, p->cold->init_json);
    pthread_mutex_destroy(&p->lock);
    plgi_free(reg, p->arena, p->arena_size);
    plgi_free(reg, p, sizeof *p);
}

PLGI_DEF void plg_registry_destroy(plg_registry *reg)
{
    plg_plugin *p, *next_p;
    plgi_table *t, *next_t;
    plgi_type_entry *e, *next_e;
    plgi_vec *v, *next_v;
    plgi_iface *f, *next_f;
    plgi_errbuf *b, *next_b;
    if (reg == NULL)
        return;
    (void)plg_shutdown_all(reg);
    for (p = reg->first; p != NULL; p = next_p) {
        next_p = p->next;
        plgi_node_free(reg, p);
    }
    if (reg->table != NULL)
        plgi_table_free(reg, reg->table);
    for (t = reg->retired_tables; t != NULL; t = next_t) {
        next_t = t->retired_next;
        plgi_table_free(reg, t);
    }
    for (e = reg->types; e != NULL; e = next_e) {
        next_e = e->next;
        for (v = e->retired; v != NULL; v = next_v) {
            next_v = v->retired_next;
            plgi_vec_free(reg, v);
        }
        plgi_vec_free(reg, e->vec);
        plgi_strfree(reg, e->type);
        plgi_free(reg, e, sizeof *e);
    }
    for (f = reg->ifaces; f != NULL; f = next_f) {
        next_f = f->next;
        plgi_free(reg, f, f->alloc_size);
    }
    plgi_libraries_free(reg); /* after every plugin is shut down and freed */
    /* Threads still alive keep a pointer in the key; deleting the key forgets it without running
       destructors, so their buffers are freed here. */
    pthread_key_delete(reg->err_key);
    for (b = reg->errbufs; b != NULL; b = next_b) {
        next_b = b->next;
        plgi_free(reg, b, sizeof *b);
    }
    pthread_mutex_destroy(&reg->lifecycle_lock);
    pthread_mutex_destroy(&reg->lock);
    reg->desc.allocator.free_fn(reg, sizeof *reg, reg->desc.allocator.user);
}

PLGI_DEF plg_registry_desc plg_registry_resolved(const plg_registry *reg)
{
    plg_registry_desc d;
    if (reg == NULL) {
        memset(&d, 0, sizeof d);
        return d;
    }
    return reg->desc;
}

PLGI_DEF const char *plg_errmsg(const plg_registry *reg)
{
    plgi_errbuf *buf;
    if (reg == NULL)
        return "no registry (NULL)";
    buf = (plgi_errbuf *)pthread_getspecific(reg->err_key);
    return buf != NULL ? buf->text : "";
}

PLGI_DEF void *plg_registry_alloc(plg_registry *reg, size_t size)
{
    return reg != NULL ? plgi_alloc(reg, size) : NULL;
}

PLGI_DEF void plg_registry_free(plg_registry *reg, void *ptr, size_t size)
{
    if (reg != NULL)
        plgi_free(reg, ptr, size);
}

static plg_registry *plgi_default_reg;
static pthread_once_t plgi_default_once = PTHREAD_ONCE_INIT;

static void plgi_default_create(void)
{
    if (plg_registry_create(NULL, &plgi_default_reg) != PLG_OK)
        plgi_default_reg = NULL;
}

PLGI_DEF plg_registry *plg_default_registry(void)
{
    pthread_once(&plgi_default_once, plgi_default_create);
    return plgi_default_reg;
}

/* ---------------------------------------------------------------------------------------------
   Interfaces
   ------------------------------------------------------------------------------------------- */

static const plgi_iface *plgi_iface_find(plg_registry *reg, const char *id)
{
    plgi_iface *f;
    for (f = PLGI_LOAD(reg->ifaces); f != NULL; f = f->next)
        if (strcmp(f->spec.id, id) == 0)
            return f;
    return NULL;
}

PLGI_DEF plg_result plg_declare_interface(plg_registry *reg, const plg_interface_spec *spec)
{
    char why[256];
    size_t versions, id_len, bytes, i;
    plgi_iface *f;
    uint32_t *sizes;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (spec == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_declare_interface: spec is NULL");
    if (plgi_check_name(spec->id, why, sizeof why) != 0)
        return plgi_fail(reg, PLG_ERR_INVALID_NAME, "interface id %s", why);
    if (spec->min_abi_version == 0 || spec->max_abi_version < spec->min_abi_version)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "interface %s: ABI range %u..%u is empty or starts at 0", spec->id,
                         (unsigned)spec->min_abi_version, (unsigned)spec->max_abi_version);
    if (spec->struct_sizes == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "interface %s: struct_sizes is NULL", spec->id);
    versions = (size_t)(spec->max_abi_version - spec->min_abi_version) + 1;
    if (versions > 4096)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "interface %s: ABI range too wide",
                         spec->id);
    id_len = strlen(spec->id) + 1;
    bytes = sizeof *f + versions * sizeof(uint32_t) + id_len;
    f = (plgi_iface *)plgi_alloc(reg, bytes);
    if (f == NULL)
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "interface %s: out of memory", spec->id);
    f->alloc_size = bytes;
    f->spec = *spec;
    sizes = (uint32_t *)(void *)(f + 1);
    for (i = 0; i < versions; i++)
        sizes[i] = spec->struct_sizes[i];
    f->spec.struct_sizes = sizes;
    f->spec.id = (const char *)(sizes + versions);
    memcpy((char *)(sizes + versions), spec->id, id_len);
    pthread_mutex_lock(&reg->lock);
    {
        const plgi_iface *old = plgi_iface_find(reg, spec->id);
        if (old != NULL) {
            int same = old->spec.min_abi_version == spec->min_abi_version &&
                       old->spec.max_abi_version == spec->max_abi_version &&
                       old->spec.validate == spec->validate && old->spec.user == spec->user &&
                       memcmp(old->spec.struct_sizes, sizes, versions * sizeof(uint32_t)) == 0;
            pthread_mutex_unlock(&reg->lock);
            plgi_free(reg, f, bytes);
            if (same)
                return PLG_OK;
            return plgi_fail(reg, PLG_ERR_DUPLICATE,
                             "interface %s is already declared with a different spec", spec->id);
        }
    }
    f->next = reg->ifaces;
    PLGI_STORE(reg->ifaces, f);
    pthread_mutex_unlock(&reg->lock);
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   Registration
   ------------------------------------------------------------------------------------------- */

/* Checks everything a descriptor claims, before anything is copied. */
static plg_result plgi_check_descriptor(plg_registry *reg, const plg_descriptor *d,
                                        plg_semver *version)
{
    char why[256];
    size_t i;
    const char *who;
    if (plgi_check_name(d->type, why, sizeof why) != 0)
        return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin type %s", why);
    if (plgi_check_name(d->name, why, sizeof why) != 0)
        return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin name %s (type %s)", why, d->type);
    who = d->name;
    if (d->version == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_VERSION, "plugin %s/%s: version is missing",
                         d->type, who);
    if (plg_semver_parse(d->version, version, why, sizeof why) != PLG_OK)
        return plgi_fail(reg, PLG_ERR_INVALID_VERSION, "plugin %s/%s: %s", d->type, who, why);
    if (d->init == NULL)
        return plgi_fail(reg, PLG_ERR_MISSING_CALLBACK,
                         "plugin %s/%s: descriptor ABI %u requires an init callback", d->type,
                         who, (unsigned)d->abi_version);
    if (d->shutdown == NULL)
        return plgi_fail(reg, PLG_ERR_MISSING_CALLBACK,
                         "plugin %s/%s: descriptor ABI %u requires a shutdown callback", d->type,
                         who, (unsigned)d->abi_version);
    if (d->capability_count > 0 && d->capabilities == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "plugin %s/%s: capability_count is %lu but capabilities is NULL",
                         d->type, who, (unsigned long)d->capability_count);
    for (i = 0; i < d->capability_count; i++)
        if (plgi_check_name(d->capabilities[i], why, sizeof why) != 0)
            return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin %s/%s: capability %lu %s",
                             d->type, who, (unsigned long)i, why);
    if (d->host_api_range != NULL) {
        int ok = 0;
        if (plg_range_satisfies(d->host_api_range, &reg->host_api, &ok, why, sizeof why) !=
            PLG_OK)
            return plgi_fail(reg, PLG_ERR_INVALID_RANGE, "plugin %s/%s: host_api_range: %s",
                             d->type, who, why);
        if (!ok)
            return plgi_fail(reg, PLG_ERR_HOST_API_MISMATCH,
                             "plugin %s/%s requires host API \"%s\", this host implements %s",
                             d->type, who, d->host_api_range, reg->host_api_text);
    }
    if (d->dependency_count > 0 && d->dependencies == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "plugin %s/%s: dependency_count is %lu but dependencies is NULL",
                         d->type, who, (unsigned long)d->dependency_count);
    for (i = 0; i < d->dependency_count; i++) {
        const plg_dependency *dep = &d->dependencies[i];
        if (dep->type != NULL && plgi_check_name(dep->type, why, sizeof why) != 0)
            return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin %s/%s: dependency %lu type %s",
                             d->type, who, (unsigned long)i, why);
        if (plgi_check_name(dep->name, why, sizeof why) != 0)
            return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin %s/%s: dependency %lu name %s",
                             d->type, who, (unsigned long)i, why);
        if (dep->range != NULL && plg_range_check(dep->range, why, sizeof why) != PLG_OK)
            return plgi_fail(reg, PLG_ERR_INVALID_RANGE, "plugin %s/%s: dependency %s: %s",
                             d->type, who, dep->name, why);
    }
    if (d->config_key_count > 0 || d->config_schema != NULL) {
        plg_result r = plg_schema_check(reg, d->config_schema, d->config_key_count);
        if (r != PLG_OK) {
            char inner[PLGI_ERRMSG_SIZE - 64];
            plgi_format(inner, sizeof inner, "%s", plg_errmsg(reg));
            return plgi_fail(reg, r, "plugin %s/%s: configuration schema: %s", d->type, who,
                             inner);
        }
    }
    if (d->provides.id != NULL || d->provides.vtable != NULL) {
        const plgi_iface *f;
        const plg_interface *in = &d->provides;
        if (plgi_check_name(in->id, why, sizeof why) != 0)
            return plgi_fail(reg, PLG_ERR_INVALID_NAME, "plugin %s/%s: interface id %s",
                             d->type, who, why);
        if (in->vtable == NULL)
            return plgi_fail(reg, PLG_ERR_MISSING_CALLBACK,
                             "plugin %s/%s: interface %s has no vtable", d->type, who, in->id);
        f = plgi_iface_find(reg, in->id);
        if (f != NULL) {
            uint32_t need;
            if (in->abi_version < f->spec.min_abi_version ||
                in->abi_version > f->spec.max_abi_version)
                return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                                 "plugin %s/%s: interface %s abi_version is %u, the host supports "
                                 "%u to %u",
                                 d->type, who, in->id, (unsigned)in->abi_version,
                                 (unsigned)f->spec.min_abi_version,
                                 (unsigned)f->spec.max_abi_version);
            need = f->spec.struct_sizes[in->abi_version - f->spec.min_abi_version];
            if (in->struct_size < need)
                return plgi_fail(reg, PLG_ERR_VTABLE_TOO_SMALL,
                                 "plugin %s/%s: interface %s struct_size is %u bytes, ABI %u "
                                 "needs at least %u",
                                 d->type, who, in->id, (unsigned)in->struct_size,
                                 (unsigned)in->abi_version, (unsigned)need);
            if (f->spec.validate != NULL) {
                plg_result r;
                why[0] = '\0';
                r = f->spec.validate(in, why, sizeof why, f->spec.user);
                if (r != PLG_OK)
                    return plgi_fail(reg, r, "plugin %s/%s: interface %s: %s", d->type, who,
                                     in->id, why[0] ? why : plg_result_string(r));
            }
        }
    }
    return PLG_OK;
}

/* Validates and copies a descriptor into a new node that nothing can see yet (state registered,
   not in the index). On failure the message is set and *out is NULL. */
static plg_result plgi_node_make(plg_registry *reg, const plg_descriptor *desc, plg_plugin **out)
{
    plg_descriptor d;
    plg_semver version;
    plg_plugin *p;
    plgi_arena arena;
    plg_result r;
    *out = NULL;
    if (desc == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_register: descriptor is NULL");
    if (desc->abi_version == 0 || desc->abi_version > PLG_DESCRIPTOR_ABI_VERSION)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "plg_register: descriptor abi_version is %u, this registry supports 1 "
                         "to %u",
                         (unsigned)desc->abi_version, (unsigned)PLG_DESCRIPTOR_ABI_VERSION);
    if (desc->struct_size < sizeof(plg_descriptor))
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "plg_register: descriptor struct_size is %u bytes, ABI %u needs %u",
                         (unsigned)desc->struct_size, (unsigned)desc->abi_version,
                         (unsigned)sizeof(plg_descriptor));
    /* A larger struct comes from a newer header: read only the fields this one knows. */
    memcpy(&d, desc, sizeof d);
    r = plgi_check_descriptor(reg, &d, &version);
    if (r != PLG_OK)
        return r;

    p = (plg_plugin *)plgi_alloc(reg, sizeof *p);
    if (p == NULL)
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "plugin %s/%s: out of memory", d.type, d.name);
    memset(p, 0, sizeof *p);
    arena.base = NULL;
    arena.used = 0;
    plgi_copy_descriptor(&arena, &d, &p->desc);
    p->arena_size = arena.used;
    p->arena = plgi_alloc(reg, arena.used);
    if (p->arena == NULL) {
        plgi_free(reg, p, sizeof *p);
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "plugin %s/%s: out of memory", d.type, d.name);
    }
    arena.base = (char *)p->arena;
    arena.used = 0;
    plgi_copy_descriptor(&arena, &d, &p->desc);
    PLG_ASSERT(arena.used == p->arena_size);
    p->cold = (plgi_cold *)p->arena;
    memset(p->cold, 0, sizeof *p->cold);
    {
        size_t type_len = strlen(d.type), name_len = strlen(d.name);
        memcpy(p->key, d.type, type_len + 1);
        memcpy(p->key + type_len + 1, d.name, name_len + 1);
        p->desc.type = p->key;
        p->desc.name = p->key + type_len + 1;
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        plgi_free(reg, p->arena, p->arena_size);
        plgi_free(reg, p, sizeof *p);
        return plgi_fail(reg, PLG_ERR_INTERNAL, "plugin %s/%s: pthread_mutex_init failed",
                         d.type, d.name);
    }
    p->reg = reg;
    p->cold->version = version;
    p->hash = plgi_hash_key(p->desc.type, p->desc.name);
    p->state = PLG_STATE_REGISTERED;
    *out = p;
    return PLG_OK;
}

/* With reg->lock held: appends p to the registration list (so that plg_registry_destroy frees
   it) without making it visible to lookups. */
static void plgi_node_link_locked(plg_registry *reg, plg_plugin *p)
{
    if (reg->last == NULL)
        PLGI_STORE(reg->first, p);
    else
        PLGI_STORE(reg->last->next, p);
    reg->last = p;
}

/* With reg->lock held: makes a node from plgi_node_make visible to lookups. On failure nothing
   changed and `why` explains it (plgi_fail takes reg->lock, so the caller reports it after
   unlocking); the caller still owns p. */
static plg_result plgi_node_publish_locked(plg_registry *reg, plg_plugin *p, char *why,
                                           size_t why_size)
{
    plg_plugin *dup;
    plgi_type_entry *type_entry;
    plgi_vec *vec;
    dup = plgi_table_find(reg->table, p->hash, p->desc.type, p->desc.name);
    if (dup != NULL) {
        plgi_format(why, why_size, "plugin %s/%s is already registered (version %s; this one is %s)",
                    p->desc.type, p->desc.name, dup->desc.version, p->desc.version);
        return PLG_ERR_DUPLICATE;
    }
    if (reg->desc.max_plugins != 0 && reg->live_count >= reg->desc.max_plugins) {
        plgi_format(why, why_size, "plugin %s/%s: the registry holds its maximum of %lu",
                    p->desc.type, p->desc.name, (unsigned long)reg->desc.max_plugins);
        return PLG_ERR_LIMIT;
    }
    if (plgi_table_reserve(reg) != PLG_OK ||
        plgi_type_reserve(reg, p->desc.type, &type_entry) != PLG_OK) {
        plgi_format(why, why_size, "plugin %s/%s: out of memory", p->desc.type, p->desc.name);
        return PLG_ERR_NO_MEMORY;
    }
    p->seq = reg->next_seq++;
    plgi_table_put(reg->table, p);
    vec = type_entry->vec;
    vec->items[vec->count] = p;
    PLGI_STORE(vec->count, vec->count + 1);
    plgi_node_link_locked(reg, p);
    __atomic_store_n(&reg->live_count, reg->live_count + 1, __ATOMIC_RELEASE);
    return PLG_OK;
}

PLGI_DEF plg_result plg_register(plg_registry *reg, const plg_descriptor *desc, plg_plugin **out)
{
    plg_plugin *p;
    plg_result r;
    char why[PLGI_REASON_SIZE];
    if (out != NULL)
        *out = NULL;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    r = plgi_node_make(reg, desc, &p);
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&reg->lock);
    r = plgi_node_publish_locked(reg, p, why, sizeof why);
    pthread_mutex_unlock(&reg->lock);
    if (r != PLG_OK) {
        plgi_node_free(reg, p);
        return plgi_fail(reg, r, "%s", why);
    }
    plgi_log(reg, PLG_LOG_INFO, "registered %s/%s %s", p->desc.type, p->desc.name,
             p->desc.version);
    if (out != NULL)
        *out = p;
    return PLG_OK;
}

static plg_result plgi_check_handle(plg_registry *reg, const plg_plugin *plugin, const char *fn)
{
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (plugin == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "%s: plugin is NULL", fn);
    if (plugin->reg != reg)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "%s: plugin %s/%s belongs to another registry", fn, plugin->desc.type,
                         plugin->desc.name);
    return PLG_OK;
}

PLGI_DEF plg_result plg_unregister(plg_registry *reg, plg_plugin *plugin)
{
    plgi_table *t;
    size_t i;
    int state;
    plg_result r = plgi_check_handle(reg, plugin, "plg_unregister");
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&plugin->lock);
    state = PLGI_LOAD(plugin->state);
    if (state != PLG_STATE_REGISTERED && state != PLG_STATE_SHUT_DOWN) {
        pthread_mutex_unlock(&plugin->lock);
        return plgi_fail(reg, PLG_ERR_INVALID_STATE,
                         "cannot unregister %s/%s: it is %s (shut it down first)",
                         plugin->desc.type, plugin->desc.name, plg_state_name((plg_state)state));
    }
    pthread_mutex_lock(&reg->lock);
    if (plugin->unregistered) {
        pthread_mutex_unlock(&reg->lock);
        pthread_mutex_unlock(&plugin->lock);
        return plgi_fail(reg, PLG_ERR_NOT_FOUND, "%s/%s is not registered", plugin->desc.type,
                         plugin->desc.name);
    }
    t = reg->table;
    for (i = (size_t)plugin->hash & t->mask; t->slots[i].node != NULL; i = (i + 1) & t->mask)
        if (t->slots[i].node == plugin) {
            PLGI_STORE(t->slots[i].node, PLGI_TOMBSTONE);
            break;
        }
    PLGI_STORE(plugin->unregistered, 1);
    __atomic_store_n(&reg->live_count, reg->live_count - 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg->lock);
    pthread_mutex_unlock(&plugin->lock);
    plgi_log(reg, PLG_LOG_INFO, "unregistered %s/%s", plugin->desc.type, plugin->desc.name);
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   Lookup
   ------------------------------------------------------------------------------------------- */

PLGI_DEF plg_result plg_find(plg_registry *reg, const char *type, const char *name,
                             plg_plugin **out)
{
    plg_plugin *p;
    if (out != NULL)
        *out = NULL;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (type == NULL || name == NULL || out == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_find: type, name and out are required");
    p = plgi_table_find(PLGI_LOAD(reg->table), plgi_hash_key(type, name), type, name);
    if (p == NULL)
        return plgi_fail(reg, PLG_ERR_NOT_FOUND, "no plugin %s/%s is registered", type, name);
    *out = p;
    return PLG_OK;
}

/* Deterministic order: higher priority first, then registration order. */
static int plgi_before(const plg_plugin *a, const plg_plugin *b)
{
    if (a->desc.priority != b->desc.priority)
        return a->desc.priority > b->desc.priority;
    return a->seq < b->seq;
}

/* Keeps the `capacity` first plugins in order in out[0..*kept); returns the total offered. */
static void plgi_offer(plg_plugin *p, plg_plugin **out, size_t capacity, size_t *kept)
{
    size_t i;
    if (capacity == 0 || out == NULL)
        return;
    if (*kept == capacity) {
        if (!plgi_before(p, out[capacity - 1]))
            return;
        (*kept)--;
    }
    for (i = *kept; i > 0 && plgi_before(p, out[i - 1]); i--)
        out[i] = out[i - 1];
    out[i] = p;
    (*kept)++;
}

PLGI_DEF size_t plg_list_type(plg_registry *reg, const char *type, plg_plugin **out,
                              size_t capacity)
{
    plgi_type_entry *e;
    plgi_vec *v;
    size_t n, i, total = 0, kept = 0;
    if (reg == NULL || type == NULL)
        return 0;
    e = plgi_type_find(reg, type);
    if (e == NULL)
        return 0;
    v = PLGI_LOAD(e->vec);
    n = PLGI_LOAD(v->count);
    for (i = 0; i < n; i++) {
        plg_plugin *p = PLGI_LOAD(v->items[i]);
        if (PLGI_LOAD(p->unregistered))
            continue;
        total++;
        plgi_offer(p, out, capacity, &kept);
    }
    return total;
}

PLGI_DEF int plg_plugin_has_capability(const plg_plugin *plugin, const char *capability)
{
    size_t i;
    if (plugin == NULL || capability == NULL)
        return 0;
    for (i = 0; i < plugin->desc.capability_count; i++)
        if (strcmp(plugin->desc.capabilities[i], capability) == 0)
            return 1;
    return 0;
}

PLGI_DEF size_t plg_list_capability(plg_registry *reg, const char *type, const char *capability,
                                    plg_plugin **out, size_t capacity)
{
    plg_plugin *p;
    size_t total = 0, kept = 0;
    if (reg == NULL || capability == NULL)
        return 0;
    for (p = PLGI_LOAD(reg->first); p != NULL; p = PLGI_LOAD(p->next)) {
        if (PLGI_LOAD(p->unregistered) || (type != NULL && strcmp(p->desc.type, type) != 0) ||
            !plg_plugin_has_capability(p, capability))
            continue;
        total++;
        plgi_offer(p, out, capacity, &kept);
    }
    return total;
}

PLGI_DEF plg_result plg_find_version(plg_registry *reg, const char *type, const char *name,
                                     const char *range, plg_plugin **out)
{
    char why[256];
    plg_plugin *best = NULL;
    size_t seen = 0;
    if (out != NULL)
        *out = NULL;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (type == NULL || range == NULL || out == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "plg_find_version: type, range and out are required");
    if (plg_range_check(range, why, sizeof why) != PLG_OK)
        return plgi_fail(reg, PLG_ERR_INVALID_RANGE, "plg_find_version: %s", why);
    if (name != NULL) {
        plg_plugin *p = plgi_table_find(PLGI_LOAD(reg->table), plgi_hash_key(type, name), type,
                                        name);
        int ok = 0;
        if (p == NULL)
            return plgi_fail(reg, PLG_ERR_NOT_FOUND, "no plugin %s/%s is registered", type, name);
        (void)plg_range_satisfies(range, &p->cold->version, &ok, NULL, 0);
        if (!ok)
            return plgi_fail(reg, PLG_ERR_VERSION_MISMATCH,
                             "plugin %s/%s has version %s, which does not satisfy \"%s\"", type,
                             name, p->desc.version, range);
        *out = p;
        return PLG_OK;
    } else {
        plgi_type_entry *e = plgi_type_find(reg, type);
        plgi_vec *v;
        size_t n, i;
        if (e == NULL)
            return plgi_fail(reg, PLG_ERR_NOT_FOUND, "no plugin of type %s is registered", type);
        v = PLGI_LOAD(e->vec);
        n = PLGI_LOAD(v->count);
        for (i = 0; i < n; i++) {
            plg_plugin *p = PLGI_LOAD(v->items[i]);
            int ok = 0;
            if (PLGI_LOAD(p->unregistered))
                continue;
            seen++;
            (void)plg_range_satisfies(range, &p->cold->version, &ok, NULL, 0);
            if (ok && (best == NULL || plg_semver_compare(&p->cold->version, &best->cold->version) > 0))
                best = p;
        }
        if (seen == 0)
            return plgi_fail(reg, PLG_ERR_NOT_FOUND, "no plugin of type %s is registered", type);
        if (best == NULL)
            return plgi_fail(reg, PLG_ERR_VERSION_MISMATCH,
                             "none of the %lu plugins of type %s satisfies \"%s\"",
                             (unsigned long)seen, type, range);
        *out = best;
        return PLG_OK;
    }
}

PLGI_DEF size_t plg_plugin_count(plg_registry *reg)
{
    return reg != NULL ? __atomic_load_n(&reg->live_count, __ATOMIC_ACQUIRE) : 0;
}

/* ---------------------------------------------------------------------------------------------
   Plugin accessors and callback helpers
   ------------------------------------------------------------------------------------------- */

PLGI_DEF const plg_descriptor *plg_plugin_descriptor(const plg_plugin *plugin)
{
    return plugin != NULL ? &plugin->desc : NULL;
}

PLGI_DEF const char *plg_plugin_type(const plg_plugin *plugin)
{
    return plugin != NULL ? plugin->desc.type : NULL;
}

PLGI_DEF const char *plg_plugin_name(const plg_plugin *plugin)
{
    return plugin != NULL ? plugin->desc.name : NULL;
}

PLGI_DEF const char *plg_plugin_version(const plg_plugin *plugin)
{
    return plugin != NULL ? plugin->desc.version : NULL;
}

PLGI_DEF plg_state plg_plugin_state(const plg_plugin *plugin)
{
    return plugin != NULL ? (plg_state)PLGI_LOAD(plugin->state) : (plg_state)0;
}

/* The reason is written once, before the state becomes failed (a failed plugin can only be shut
   down), so reading it after an acquire load of that state needs no lock. This matters: the
   dependency checks read a dependency's reason while holding their own plugin's lock. */
PLGI_DEF size_t plg_plugin_failure(const plg_plugin *plugin, char *buf, size_t size)
{
    int s;
    const char *reason = "";
    if (plugin != NULL) {
        s = PLGI_LOAD(plugin->state);
        if (s == PLG_STATE_FAILED || s == PLG_STATE_SHUT_DOWN)
            reason = plugin->cold->failure;
    }
    if (buf != NULL && size > 0)
        plgi_format(buf, size, "%s", reason);
    return strlen(reason);
}

PLGI_DEF const void *plg_plugin_vtable(const plg_plugin *plugin, const char *interface_id,
                                       uint32_t min_abi_version, uint32_t *abi_version)
{
    if (abi_version != NULL)
        *abi_version = 0;
    if (plugin == NULL || interface_id == NULL || plugin->desc.provides.id == NULL ||
        strcmp(plugin->desc.provides.id, interface_id) != 0 ||
        plugin->desc.provides.abi_version < min_abi_version)
        return NULL;
    if (abi_version != NULL)
        *abi_version = plugin->desc.provides.abi_version;
    return plugin->desc.provides.vtable;
}

PLGI_DEF void *plg_plugin_instance(const plg_plugin *plugin)
{
    return plugin != NULL ? PLGI_LOAD(((plg_plugin *)(uintptr_t)plugin)->instance) : NULL;
}

PLGI_DEF const plg_config *plg_plugin_config(const plg_plugin *plugin)
{
    return plugin != NULL ? PLGI_LOAD(((plg_plugin *)(uintptr_t)plugin)->config) : NULL;
}

PLGI_DEF void *plg_plugin_user_data(const plg_plugin *plugin)
{
    return plugin != NULL ? plugin->desc.user_data : NULL;
}

PLGI_DEF void *plg_registry_user_data(const plg_registry *reg)
{
    return reg != NULL ? reg->desc.user_data : NULL;
}

PLGI_DEF plg_registry *plg_plugin_registry(const plg_plugin *plugin)
{
    return plugin != NULL ? plugin->reg : NULL;
}

PLGI_DEF void plg_plugin_set_error(plg_plugin *self, const char *fmt, ...)
{
    va_list ap;
    if (self == NULL || fmt == NULL)
        return;
    va_start(ap, fmt);
    plgi_vformat(self->cold->callback_error, sizeof self->cold->callback_error, fmt, ap);
    va_end(ap);
}

PLGI_DEF void plg_log(plg_plugin *self, plg_log_level level, const char *fmt, ...)
{
    char text[PLGI_ERRMSG_SIZE];
    va_list ap;
    if (self == NULL || fmt == NULL || self->reg->desc.logger.log_fn == NULL)
        return;
    va_start(ap, fmt);
    plgi_vformat(text, sizeof text, fmt, ap);
    va_end(ap);
    plgi_log(self->reg, level, "%s/%s: %s", self->desc.type, self->desc.name, text);
}

PLGI_DEF void *plg_alloc(plg_plugin *self, size_t size)
{
    return self != NULL ? plgi_alloc(self->reg, size) : NULL;
}

PLGI_DEF void plg_free(plg_plugin *self, void *ptr, size_t size)
{
    if (self != NULL)
        plgi_free(self->reg, ptr, size);
}

/* ---------------------------------------------------------------------------------------------
   Lifecycle
   ------------------------------------------------------------------------------------------- */

/* With p->lock held. */
static void plgi_set_state(plg_plugin *p, plg_state state)
{
    PLGI_STORE(p->state, (int)state);
}

/* With p->lock held: marks p failed with a reason and logs it. */
static void plgi_mark_failed(plg_plugin *p, const char *fmt, ...) PLG_PRINTF(2, 3);
static void plgi_mark_failed(plg_plugin *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plgi_vformat(p->cold->failure, sizeof p->cold->failure, fmt, ap);
    va_end(ap);
    plgi_set_state(p, PLG_STATE_FAILED);
    plgi_log(p->reg, PLG_LOG_ERROR, "%s/%s failed: %s", p->desc.type, p->desc.name, p->cold->failure);
}

/* With p->lock held: the explanation of a callback's failure. */
static const char *plgi_callback_reason(plg_plugin *p, plg_result r)
{
    return p->cold->callback_error[0] ? p->cold->callback_error : plg_result_string(r);
}

static plg_result plgi_illegal(plg_plugin *p, const char *action, const char *needs)
{
    plg_state s = (plg_state)PLGI_LOAD(p->state);
    return plgi_fail(p->reg, PLG_ERR_INVALID_STATE, "cannot %s %s/%s: it is %s; %s needs %s",
                     action, p->desc.type, p->desc.name, plg_state_name(s), action, needs);
}

/* With p->lock held, state registered. */
static plg_result plgi_init_locked(plg_plugin *p, const char *config_json)
{
    plg_registry *reg = p->reg;
    plg_config *cfg = NULL;
    void *instance = NULL;
    plg_result r;
    const char *json = config_json != NULL ? config_json : p->pending_config;
    r = plg_config_parse_json(reg, p->desc.config_schema, p->desc.config_key_count, json, 0,
                              &cfg);
    if (r != PLG_OK) {
        char inner[PLGI_ERRMSG_SIZE - 64];
        plgi_format(inner, sizeof inner, "%s", plg_errmsg(reg));
        plg_config_destroy(cfg);
        return plgi_fail(reg, r, "%s/%s: %s", p->desc.type, p->desc.name, inner);
    }
    if (json != NULL && p->cold->init_json == NULL) { /* kept for plg_reload */
        p->cold->init_json = plgi_strdup(reg, json);
        if (p->cold->init_json == NULL) {
            plg_config_destroy(cfg);
            return plgi_fail(reg, PLG_ERR_NO_MEMORY, "%s/%s: out of memory", p->desc.type,
                             p->desc.name);
        }
    }
    p->cold->callback_error[0] = '\0';
    r = p->desc.init(p, cfg, &instance);
    if (r != PLG_OK) {
        plg_config_destroy(cfg);
        plgi_mark_failed(p, "init returned %s: %s", plg_result_string(r),
                         plgi_callback_reason(p, r));
        return plgi_fail(reg, PLG_ERR_PLUGIN_FAILED, "%s/%s: %s", p->desc.type, p->desc.name,
                         p->cold->failure);
    }
    PLGI_STORE(p->config, cfg);
    PLGI_STORE(p->instance, instance);
    p->has_instance = 1;
    plgi_set_state(p, PLG_STATE_INITIALIZED);
    return PLG_OK;
}

PLGI_DEF plg_result plg_init(plg_registry *reg, plg_plugin *plugin, const char *config_json)
{
    plg_result r = plgi_check_handle(reg, plugin, "plg_init");
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&plugin->lock);
    if (PLGI_LOAD(plugin->unregistered)) /* checked under the lock: unregister takes it too */
        r = plgi_fail(reg, PLG_ERR_NOT_FOUND, "cannot init %s/%s: it was unregistered",
                      plugin->desc.type, plugin->desc.name);
    else if (PLGI_LOAD(plugin->state) != PLG_STATE_REGISTERED)
        r = plgi_illegal(plugin, "init", "registered");
    else
        r = plgi_init_locked(plugin, config_json);
    pthread_mutex_unlock(&plugin->lock);
    return r;
}

PLGI_DEF plg_result plg_set_config(plg_registry *reg, plg_plugin *plugin, const char *config_json)
{
    plg_config *cfg = NULL;
    char *copy;
    plg_result r = plgi_check_handle(reg, plugin, "plg_set_config");
    if (r != PLG_OK)
        return r;
    r = plg_config_parse_json(reg, plugin->desc.config_schema, plugin->desc.config_key_count,
                              config_json, 0, &cfg);
    plg_config_destroy(cfg);
    if (r != PLG_OK) {
        char inner[PLGI_ERRMSG_SIZE - 64];
        plgi_format(inner, sizeof inner, "%s", plg_errmsg(reg));
        return plgi_fail(reg, r, "%s/%s: %s", plugin->desc.type, plugin->desc.name, inner);
    }
    copy = plgi_strdup(reg, config_json != NULL ? config_json : "");
    if (copy == NULL)
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "plg_set_config: out of memory");
    pthread_mutex_lock(&plugin->lock);
    if (PLGI_LOAD(plugin->unregistered)) {
        pthread_mutex_unlock(&plugin->lock);
        plgi_strfree(reg, copy);
        return plgi_fail(reg, PLG_ERR_NOT_FOUND, "cannot configure %s/%s: it was unregistered",
                         plugin->desc.type, plugin->desc.name);
    }
    plgi_strfree(reg, plugin->pending_config);
    plugin->pending_config = copy;
    pthread_mutex_unlock(&plugin->lock);
    return PLG_OK;
}

/* Looks a dependency up among live plugins. */
static plg_plugin *plgi_dep_find(plg_registry *reg, const plg_dependency *dep)
{
    return plgi_table_find(PLGI_LOAD(reg->table), plgi_hash_key(dep->type, dep->name), dep->type,
                           dep->name);
}

/* Why p cannot start now because of its dependencies, or 0 when it can. For an optional
   dependency that is present but failed, p starts anyway. */
static int plgi_deps_block(plg_plugin *p, char *why, size_t size)
{
    size_t i;
    for (i = 0; i < p->desc.dependency_count; i++) {
        const plg_dependency *dep = &p->desc.dependencies[i];
        plg_plugin *d = plgi_dep_find(p->reg, dep);
        int ok = 1;
        plg_state s;
        if (d == NULL) {
            if (dep->optional)
                continue;
            plgi_format(why, size, "dependency %s/%s is not registered", dep->type, dep->name);
            return 1;
        }
        if (dep->range[0] != '\0')
            (void)plg_range_satisfies(dep->range, &d->cold->version, &ok, NULL, 0);
        if (!ok) {
            plgi_format(why, size, "dependency %s/%s has version %s, which does not satisfy \"%s\"",
                        dep->type, dep->name, d->desc.version, dep->range);
            return 1;
        }
        s = (plg_state)PLGI_LOAD(d->state);
        if (s == PLG_STATE_STARTED)
            continue;
        if (dep->optional && s == PLG_STATE_FAILED)
            continue;
        if (s == PLG_STATE_FAILED) {
            char reason[PLGI_REASON_SIZE];
            (void)plg_plugin_failure(d, reason, sizeof reason);
            plgi_format(why, size, "dependency %s/%s failed: %s", dep->type, dep->name, reason);
        } else {
            plgi_format(why, size, "dependency %s/%s is %s, not started", dep->type, dep->name,
                        plg_state_name(s));
        }
        return 1;
    }
    return 0;
}

/* With p->lock held, state initialized or stopped. */
static plg_result plgi_start_locked(plg_plugin *p)
{
    plg_result r = PLG_OK;
    p->cold->callback_error[0] = '\0';
    if (p->desc.start != NULL)
        r = p->desc.start(p, PLGI_LOAD(p->instance));
    if (r != PLG_OK) {
        plgi_mark_failed(p, "start returned %s: %s", plg_result_string(r),
                         plgi_callback_reason(p, r));
        return plgi_fail(p->reg, PLG_ERR_PLUGIN_FAILED, "%s/%s: %s", p->desc.type, p->desc.name,
                         p->cold->failure);
    }
    plgi_set_state(p, PLG_STATE_STARTED);
    return PLG_OK;
}

PLGI_DEF plg_result plg_start(plg_registry *reg, plg_plugin *plugin)
{
    char why[PLGI_REASON_SIZE];
    int s;
    plg_result r = plgi_check_handle(reg, plugin, "plg_start");
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&plugin->lock);
    s = PLGI_LOAD(plugin->state);
    if (s != PLG_STATE_INITIALIZED && s != PLG_STATE_STOPPED)
        r = plgi_illegal(plugin, "start", "initialized or stopped");
    else if (plgi_deps_block(plugin, why, sizeof why))
        r = plgi_fail(reg, PLG_ERR_DEPENDENCY_FAILED, "cannot start %s/%s: %s",
                      plugin->desc.type, plugin->desc.name, why);
    else
        r = plgi_start_locked(plugin);
    pthread_mutex_unlock(&plugin->lock);
    return r;
}

/* With p->lock held, state started. */
static plg_result plgi_stop_locked(plg_plugin *p)
{
    plg_result r = PLG_OK;
    p->cold->callback_error[0] = '\0';
    if (p->desc.stop != NULL)
        r = p->desc.stop(p, PLGI_LOAD(p->instance));
    if (r != PLG_OK) {
        plgi_mark_failed(p, "stop returned %s: %s", plg_result_string(r),
                         plgi_callback_reason(p, r));
        return plgi_fail(p->reg, PLG_ERR_PLUGIN_FAILED, "%s/%s: %s", p->desc.type, p->desc.name,
                         p->cold->failure);
    }
    plgi_set_state(p, PLG_STATE_STOPPED);
    return PLG_OK;
}

PLGI_DEF plg_result plg_stop(plg_registry *reg, plg_plugin *plugin)
{
    plg_result r = plgi_check_handle(reg, plugin, "plg_stop");
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&plugin->lock);
    if (PLGI_LOAD(plugin->state) != PLG_STATE_STARTED)
        r = plgi_illegal(plugin, "stop", "started");
    else
        r = plgi_stop_locked(plugin);
    pthread_mutex_unlock(&plugin->lock);
    return r;
}

/* With p->lock held, state initialized, stopped, failed or registered. */
static void plgi_shutdown_locked(plg_plugin *p)
{
    plg_config *cfg;
    if (p->has_instance) {
        p->cold->callback_error[0] = '\0';
        p->desc.shutdown(p, PLGI_LOAD(p->instance));
        p->has_instance = 0;
    }
    cfg = PLGI_LOAD(p->config);
    PLGI_STORE(p->instance, (void *)NULL);
    PLGI_STORE(p->config, (plg_config *)NULL);
    plg_config_destroy(cfg);
    plgi_set_state(p, PLG_STATE_SHUT_DOWN);
}

PLGI_DEF plg_result plg_shutdown(plg_registry *reg, plg_plugin *plugin)
{
    int s;
    plg_result r = plgi_check_handle(reg, plugin, "plg_shutdown");
    if (r != PLG_OK)
        return r;
    pthread_mutex_lock(&plugin->lock);
    s = PLGI_LOAD(plugin->state);
    if (s != PLG_STATE_INITIALIZED && s != PLG_STATE_STOPPED && s != PLG_STATE_FAILED)
        r = plgi_illegal(plugin, "shut down", "initialized, stopped or failed");
    else
        plgi_shutdown_locked(plugin);
    pthread_mutex_unlock(&plugin->lock);
    return r;
}

/* Dependency order of the live plugins: dependencies before dependents, otherwise registration
   order. Members of a cycle get in_cycle = 1 and the first cycle is described in `cycle`.
   Returns the number of plugins in *order (caller frees count * sizeof pointer), or
   (size_t)-1 when memory ran out. With lifecycle_lock held. */
typedef struct plgi_walk {
    plg_plugin **order;
    size_t count;
    plg_plugin **stack;
    size_t depth;
    size_t capacity; /* of order and stack */
    char cycle[PLGI_ERRMSG_SIZE / 2];
} plgi_walk;

static void plgi_visit(plgi_walk *w, plg_plugin *p)
{
    size_t i;
    p->mark = 1; /* on the current path */
    w->stack[w->depth++] = p;
    for (i = 0; i < p->desc.dependency_count; i++) {
        plg_plugin *d = plgi_dep_find(p->reg, &p->desc.dependencies[i]);
        if (d == NULL)
            continue;
        if (d->mark == 1) {
            size_t j = w->depth;
            while (j > 0 && w->stack[j - 1] != d)
                j--;
            if (w->cycle[0] == '\0') {
                size_t k;
                for (k = j - 1; k < w->depth; k++)
                    plgi_append(w->cycle, sizeof w->cycle, "%s/%s -> ", w->stack[k]->desc.type,
                                w->stack[k]->desc.name);
                plgi_append(w->cycle, sizeof w->cycle, "%s/%s", d->desc.type, d->desc.name);
            }
            for (; j <= w->depth; j++)
                w->stack[j - 1]->in_cycle = 1;
        } else if (d->mark == 0) {
            plgi_visit(w, d);
        }
    }
    w->depth--;
    p->mark = 2;
    w->order[w->count++] = p;
}

static plg_result plgi_walk_begin(plg_registry *reg, plgi_walk *w)
{
    plg_plugin *p;
    size_t n = 0;
    memset(w, 0, sizeof *w);
    for (p = PLGI_LOAD(reg->first); p != NULL; p = PLGI_LOAD(p->next)) {
        p->mark = PLGI_LOAD(p->unregistered) ? 2 : 0;
        p->in_cycle = 0;
        n++;
    }
    w->capacity = n + 1;
    w->order = (plg_plugin **)plgi_alloc(reg, w->capacity * sizeof(plg_plugin *));
    w->stack = (plg_plugin **)plgi_alloc(reg, w->capacity * sizeof(plg_plugin *));
    if (w->order == NULL || w->stack == NULL) {
        plgi_free(reg, w->order, w->capacity * sizeof(plg_plugin *));
        plgi_free(reg, w->stack, w->capacity * sizeof(plg_plugin *));
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "dependency walk: out of memory");
    }
    for (p = PLGI_LOAD(reg->first); p != NULL; p = PLGI_LOAD(p->next))
        if (p->mark == 0)
            plgi_visit(w, p);
    return PLG_OK;
}

static void plgi_walk_end(plg_registry *reg, plgi_walk *w)
{
    plgi_free(reg, w->order, w->capacity * sizeof(plg_plugin *));
    plgi_free(reg, w->stack, w->capacity * sizeof(plg_plugin *));
}

PLGI_DEF plg_result plg_start_all(plg_registry *reg)
{
    plgi_walk w;
    size_t i, failed = 0;
    plg_result first = PLG_OK, r;
    char summary[PLGI_ERRMSG_SIZE];
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&reg->lifecycle_lock);
    r = plgi_walk_begin(reg, &w);
    if (r != PLG_OK) {
        pthread_mutex_unlock(&reg->lifecycle_lock);
        return r;
    }
    summary[0] = '\0';
    for (i = 0; i < w.count; i++) {
        plg_plugin *p = w.order[i];
        char why[PLGI_REASON_SIZE];
        plg_result pr = PLG_OK;
        int s;
        pthread_mutex_lock(&p->lock);
        s = PLGI_LOAD(p->state);
        if (s == PLG_STATE_STARTED || s == PLG_STATE_SHUT_DOWN) {
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        if (s == PLG_STATE_FAILED) {
            pr = PLG_ERR_PLUGIN_FAILED;
        } else if (p->in_cycle) {
            plgi_mark_failed(p, "dependency cycle: %s", w.cycle);
            pr = PLG_ERR_DEPENDENCY_CYCLE;
        } else if (plgi_deps_block(p, why, sizeof why)) {
            plgi_mark_failed(p, "%s", why);
            pr = PLG_ERR_DEPENDENCY_FAILED;
        } else {
            if (s == PLG_STATE_REGISTERED) {
                pr = plgi_init_locked(p, NULL);
                if (pr != PLG_OK && PLGI_LOAD(p->state) != PLG_STATE_FAILED) {
                    /* An invalid stored configuration: the plugin cannot run. */
                    char inner[PLGI_REASON_SIZE];
                    plgi_format(inner, sizeof inner, "%s", plg_errmsg(reg));
                    plgi_mark_failed(p, "%s", inner);
                }
            }
            if (pr == PLG_OK)
                pr = plgi_start_locked(p);
        }
        if (pr != PLG_OK) {
            failed++;
            if (first == PLG_OK || pr == PLG_ERR_DEPENDENCY_CYCLE)
                first = pr; /* a cycle is reported above everything else */
            plgi_append(summary, sizeof summary, "%s%s/%s: %s", failed > 1 ? "; " : "",
                        p->desc.type, p->desc.name, p->cold->failure);
        }
        pthread_mutex_unlock(&p->lock);
    }
    plgi_walk_end(reg, &w);
    pthread_mutex_unlock(&reg->lifecycle_lock);
    if (failed)
        return plgi_fail(reg, first, "%lu plugin%s not started: %s", (unsigned long)failed,
                         failed == 1 ? "" : "s", summary);
    return PLG_OK;
}

/* Stops (and with shutdown also shuts down) in reverse dependency order. */
static plg_result plgi_stop_walk(plg_registry *reg, int shutdown)
{
    plgi_walk w;
    size_t i, failed = 0;
    plg_result r;
    char summary[PLGI_ERRMSG_SIZE];
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&reg->lifecycle_lock);
    r = plgi_walk_begin(reg, &w);
    if (r != PLG_OK) {
        pthread_mutex_unlock(&reg->lifecycle_lock);
        return r;
    }
    summary[0] = '\0';
    for (i = w.count; i-- > 0;) {
        plg_plugin *p = w.order[i];
        int s;
        pthread_mutex_lock(&p->lock);
        s = PLGI_LOAD(p->state);
        if (s == PLG_STATE_STARTED && plgi_stop_locked(p) != PLG_OK) {
            failed++;
            plgi_append(summary, sizeof summary, "%s%s/%s: %s", failed > 1 ? "; " : "",
                        p->desc.type, p->desc.name, p->cold->failure);
        }
        s = PLGI_LOAD(p->state);
        if (shutdown && s != PLG_STATE_SHUT_DOWN)
            plgi_shutdown_locked(p);
        pthread_mutex_unlock(&p->lock);
    }
    plgi_walk_end(reg, &w);
    pthread_mutex_unlock(&reg->lifecycle_lock);
    if (failed)
        return plgi_fail(reg, PLG_ERR_PLUGIN_FAILED, "%lu plugin%s failed to stop: %s",
                         (unsigned long)failed, failed == 1 ? "" : "s", summary);
    return PLG_OK;
}

PLGI_DEF plg_result plg_stop_all(plg_registry *reg)
{
    return plgi_stop_walk(reg, 0);
}

PLGI_DEF plg_result plg_shutdown_all(plg_registry *reg)
{
    return plgi_stop_walk(reg, 1);
}

/* ---------------------------------------------------------------------------------------------
   Health
   ------------------------------------------------------------------------------------------- */

/* With p->lock held. */
static void plgi_health_locked(plg_plugin *p, plg_health_report *out)
{
    int s = PLGI_LOAD(p->state);
    out->message[0] = '\0';
    out->failing = 0;
    if (s == PLG_STATE_FAILED) {
        out->status = PLG_HEALTH_UNHEALTHY;
        plgi_format(out->message, sizeof out->message, "failed: %s", p->cold->failure);
    } else if (s == PLG_STATE_REGISTERED || s == PLG_STATE_SHUT_DOWN) {
        out->status = PLG_HEALTH_UNHEALTHY;
        plgi_format(out->message, sizeof out->message, "not running (%s)",
                    plg_state_name((plg_state)s));
    } else if (p->desc.health == NULL) {
        out->status = PLG_HEALTH_OK;
    } else {
        plg_health_status h = p->desc.health(p, PLGI_LOAD(p->instance), out->message,
                                             sizeof out->message);
        out->message[sizeof out->message - 1] = '\0';
        out->status = (h == PLG_HEALTH_OK || h == PLG_HEALTH_DEGRADED) ? h : PLG_HEALTH_UNHEALTHY;
    }
    if (out->status != PLG_HEALTH_OK)
        out->failing = 1;
}

PLGI_DEF plg_result plg_health(plg_registry *reg, plg_plugin *plugin, plg_health_report *out)
{
    plg_result r = plgi_check_handle(reg, plugin, "plg_health");
    if (r != PLG_OK)
        return r;
    if (out == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_health: out is NULL");
    pthread_mutex_lock(&plugin->lock);
    plgi_health_locked(plugin, out);
    pthread_mutex_unlock(&plugin->lock);
    return PLG_OK;
}

PLGI_DEF plg_result plg_health_all(plg_registry *reg, plg_health_report *out)
{
    plg_plugin *p;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (out == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_health_all: out is NULL");
    out->status = PLG_HEALTH_OK;
    out->failing = 0;
    out->message[0] = '\0';
    for (p = PLGI_LOAD(reg->first); p != NULL; p = PLGI_LOAD(p->next)) {
        plg_health_report one;
        int s;
        if (PLGI_LOAD(p->unregistered))
            continue;
        pthread_mutex_lock(&p->lock);
        s = PLGI_LOAD(p->state);
        if (s != PLG_STATE_STARTED && s != PLG_STATE_FAILED) {
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        plgi_health_locked(p, &one);
        pthread_mutex_unlock(&p->lock);
        if (one.status == PLG_HEALTH_OK)
            continue;
        if (one.status > out->status)
            out->status = one.status;
        plgi_append(out->message, sizeof out->message, "%s%s/%s: %s%s%s",
                    out->failing ? "; " : "", p->desc.type, p->desc.name,
                    one.status == PLG_HEALTH_DEGRADED ? "degraded" : "unhealthy",
                    one.message[0] ? ": " : "", one.message);
        out->failing++;
    }
    return PLG_OK;
}

/* ---------------------------------------------------------------------------------------------
   Automatic registration
   ------------------------------------------------------------------------------------------- */

static pthread_mutex_t plgi_auto_lock = PTHREAD_MUTEX_INITIALIZER;
static plg_result plgi_auto_first_error = PLG_OK;
static char plgi_auto_message[PLGI_REASON_SIZE];

PLGI_DEF plg_result plg_auto_register(const plg_descriptor *desc)
{
    plg_registry *reg = plg_default_registry();
    plg_result r = reg != NULL ? plg_register(reg, desc, NULL) : PLG_ERR_NO_MEMORY;
    if (r != PLG_OK) {
        pthread_mutex_lock(&plgi_auto_lock);
        if (plgi_auto_first_error == PLG_OK) {
            plgi_auto_first_error = r;
            plgi_format(plgi_auto_message, sizeof plgi_auto_message, "%s",
                        reg != NULL ? plg_errmsg(reg) : "out of memory");
        }
        pthread_mutex_unlock(&plgi_auto_lock);
    }
    return r;
}

PLGI_DEF plg_result plg_auto_register_status(char *message, size_t message_size)
{
    plg_result r;
    pthread_mutex_lock(&plgi_auto_lock);
    r = plgi_auto_first_error;
    if (message != NULL && message_size > 0)
        plgi_format(message, message_size, "%s", plgi_auto_message);
    pthread_mutex_unlock(&plgi_auto_lock);
    return r;
}


/* ---------------------------------------------------------------------------------------------
   Time, for drains and timeouts
   ------------------------------------------------------------------------------------------- */

/* Milliseconds from an arbitrary origin: the monotonic clock where the including file's feature
   macros declare it, else the wall clock (strict -std=c99 hides clock_gettime). */
static uint64_t plgi_now_ms(void)
{
    struct timeval tv;
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
#endif
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void plgi_sleep_ms(int ms)
{
    (void)poll(NULL, 0, ms);
}

/* ---------------------------------------------------------------------------------------------
   Supervision
   ------------------------------------------------------------------------------------------- */

PLGI_DEF plg_result plg_mark_failed(plg_registry *reg, plg_plugin *plugin, const char *fmt, ...)
{
    char reason[PLGI_REASON_SIZE];
    va_list ap;
    int s;
    plg_result r = plgi_check_handle(reg, plugin, "plg_mark_failed");
    if (r != PLG_OK)
        return r;
    reason[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        plgi_vformat(reason, sizeof reason, fmt, ap);
        va_end(ap);
    }
    if (reason[0] == '\0')
        plgi_format(reason, sizeof reason, "marked failed by the host");
    pthread_mutex_lock(&plugin->lock);
    s = PLGI_LOAD(plugin->state);
    if (s == PLG_STATE_INITIALIZED || s == PLG_STATE_STARTED || s == PLG_STATE_STOPPED)
        plgi_mark_failed(plugin, "%s", reason);
    else if (s != PLG_STATE_FAILED)
        r = plgi_illegal(plugin, "mark failed", "initialized, started or stopped");
    pthread_mutex_unlock(&plugin->lock);
    return r;
}

/* ---------------------------------------------------------------------------------------------
   Leases
   ---------------------------------------------------------------------------------------------
   The handshake with plg_reload is Dekker's: a caller increments the version's `leases` and then
   reads its `retired` flag; the reloader sets `retired` and then reads `leases`. All four are
   sequentially consistent, so in their single total order one of the two comes second and sees
   the other's write: either the caller sees retired = 1 (it gives the version back untouched and
   looks up again, finding the new version, which was stored in the index before retired was
   set), or the reloader sees the lease and waits for its release. A release is a release-store
   (fetch_sub with release order) that the reloader's load of 0 synchronises with, so everything
   the caller did inside the old version happens before its stop and shutdown.
   ------------------------------------------------------------------------------------------- */

PLGI_DEF plg_result plg_acquire(plg_registry *reg, const char *type, const char *name,
                                plg_lease *out)
{
    uint64_t hash;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (type == NULL || name == NULL || out == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "plg_acquire: type, name and out are required");
    hash = plgi_hash_key(type, name);
    for (;;) {
        plg_plugin *p = plgi_table_find(PLGI_LOAD(reg->table), hash, type, name);
        int s;
        if (p == NULL)
            return plgi_fail(reg, PLG_ERR_NOT_FOUND, "no plugin %s/%s is registered", type, name);
        __atomic_fetch_add(&p->cold->leases, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&p->cold->retired, __ATOMIC_SEQ_CST)) {
            /* Replaced by a reload: the index already names the new version. */
            __atomic_fetch_sub(&p->cold->leases, 1, __ATOMIC_RELEASE);
            continue;
        }
        s = PLGI_LOAD(p->state);
        if (s != PLG_STATE_STARTED) {
            __atomic_fetch_sub(&p->cold->leases, 1, __ATOMIC_RELEASE);
            if (s == PLG_STATE_FAILED)
                return plgi_fail(reg, PLG_ERR_INVALID_STATE, "cannot acquire %s/%s: it failed: %s",
                                 type, name, p->cold->failure);
            return plgi_fail(reg, PLG_ERR_INVALID_STATE, "cannot acquire %s/%s: it is %s, not started",
                             type, name, plg_state_name((plg_state)s));
        }
        out->plugin = p;
        out->vtable = p->desc.provides.vtable;
        out->instance = PLGI_LOAD(p->instance);
        out->abi_version = p->desc.provides.abi_version;
        return PLG_OK;
    }
}

PLGI_DEF void plg_release(plg_lease *lease)
{
    if (lease == NULL || lease->plugin == NULL)
        return;
    __atomic_fetch_sub(&lease->plugin->cold->leases, 1, __ATOMIC_RELEASE);
    memset(lease, 0, sizeof *lease);
}

/* ---------------------------------------------------------------------------------------------
   Plugin libraries
   ------------------------------------------------------------------------------------------- */

PLGI_DEF const char *plg_plugin_library(const plg_plugin *plugin)
{
    return plugin != NULL && plugin->cold->lib != NULL ? plugin->cold->lib->path : NULL;
}

static void plgi_library_free(plg_registry *reg, struct plgi_library *lib, int unload)
{
#if !defined(PLG_NO_DLOPEN)
    if (unload && lib->handle != NULL)
        (void)dlclose(lib->handle);
#else
    (void)unload;
#endif
    plgi_strfree(reg, lib->path);
    plgi_free(reg, lib, sizeof *lib);
}

static void plgi_libraries_free(plg_registry *reg)
{
    struct plgi_library *lib, *next;
    for (lib = reg->libraries; lib != NULL; lib = next) {
        next = lib->next;
        plgi_library_free(reg, lib, (lib->flags & PLG_LOAD_UNLOAD_AT_DESTROY) != 0);
    }
    reg->libraries = NULL;
}

#if !defined(PLG_NO_DLOPEN)

#if defined(O_CLOEXEC)
#define PLGI_O_CLOEXEC O_CLOEXEC
#else
#define PLGI_O_CLOEXEC 0
#endif

/* Copies the library to a file of its own, so that dlopen gives a fresh handle even when the same
   path was loaded before (the loader keys its cache on the path), and so that replacing the
   original in place (cp new.so old.so) can never corrupt the mapped code. The copy is unlinked
   right after dlopen: its mapping outlives the name, and nothing is left behind. */
static plg_result plgi_copy_private(plg_registry *reg, const char *path, const char *dir,
                                    char *out, size_t out_size)
{
    char buf[16384];
    const char *base = strrchr(path, '/');
    int src, dst = -1, attempt, err = 0;
    base = base != NULL ? base + 1 : path;
    if (dir == NULL || dir[0] == '\0') {
        dir = getenv("TMPDIR");
        if (dir == NULL || dir[0] == '\0')
            dir = "/tmp";
    }
    src = open(path, O_RDONLY | PLGI_O_CLOEXEC);
    if (src < 0)
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot open: %s", path, strerror(errno));
    for (attempt = 0; attempt < 100; attempt++) {
        unsigned long seq = __atomic_fetch_add(&reg->copy_seq, 1, __ATOMIC_RELAXED);
        int n = snprintf(out, out_size, "%s/plg-%ld-%lx-%lu-%s", dir, (long)getpid(),
                         (unsigned long)(uintptr_t)reg, seq, base);
        if (n < 0 || (size_t)n >= out_size) {
            close(src);
            return plgi_fail(reg, PLG_ERR_LOAD, "%s: the private copy's path in %s is too long",
                             path, dir);
        }
        dst = open(out, O_WRONLY | O_CREAT | O_EXCL | PLGI_O_CLOEXEC, 0700);
        if (dst >= 0 || errno != EEXIST)
            break;
    }
    if (dst < 0) {
        err = errno;
        close(src);
        return plgi_fail(reg, PLG_ERR_LOAD,
                         "%s: cannot create a private copy in %s: %s (set plg_load_options."
                         "temp_dir or TMPDIR, or load with PLG_LOAD_IN_PLACE)",
                         path, dir, strerror(err));
    }
    for (;;) {
        ssize_t got = read(src, buf, sizeof buf), done = 0;
        if (got == 0)
            break;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        while (done < got) {
            ssize_t w = write(dst, buf + done, (size_t)(got - done));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                err = errno;
                break;
            }
            done += w;
        }
        if (err != 0)
            break;
    }
    close(src);
    if (close(dst) != 0 && err == 0)
        err = errno;
    if (err != 0) {
        unlink(out);
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot write its private copy %s: %s", path,
                         out, strerror(err));
    }
    return PLG_OK;
}

/* Compares the library's ABI block with this host's, field by field, before anything in it is
   used. The first three fields are read only after the magic matched, and header_version only
   after the layout is known to be the same. */
static plg_result plgi_check_library_abi(plg_registry *reg, const char *path,
                                         const plg_library_abi *abi)
{
    const char *built;
    size_t i;
    if (abi == NULL)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH, "%s: the entry function %s returned NULL",
                         path, PLG_LIBRARY_ENTRY_NAME);
    if (abi->magic != PLG_LIBRARY_MAGIC)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "%s: magic is 0x%08lx in the library, 0x%08lx in this host (not a plugin "
                         "library of plugin_registry.h)",
                         path, (unsigned long)abi->magic, (unsigned long)PLG_LIBRARY_MAGIC);
    if (abi->abi_version != PLG_LIBRARY_ABI_VERSION)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "%s: abi_version is %lu in the library, %lu in this host", path,
                         (unsigned long)abi->abi_version, (unsigned long)PLG_LIBRARY_ABI_VERSION);
    if (abi->struct_size != sizeof(plg_library_abi))
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "%s: struct_size is %lu in the library, %lu in this host", path,
                         (unsigned long)abi->struct_size, (unsigned long)sizeof(plg_library_abi));
    if (abi->byte_order != PLG_LIBRARY_BYTE_ORDER)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "%s: byte_order is 0x%08lx in the library, 0x%08lx in this host", path,
                         (unsigned long)abi->byte_order, (unsigned long)PLG_LIBRARY_BYTE_ORDER);
    built = abi->header_version != NULL ? abi->header_version : "(unknown)";
#define PLGI_ABI_FIELD_(field, expected)                                                           \
    do {                                                                                           \
        if ((unsigned long)abi->field != (unsigned long)(expected))                                \
            return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,                                            \
                             "%s: " #field " is %lu in the library, %lu in this host (the "        \
                             "library was built with plugin_registry.h %.32s, this host is %s)",   \
                             path, (unsigned long)abi->field, (unsigned long)(expected), built,    \
                             PLG_VERSION_STRING);                                                  \
    } while (0)
    PLGI_ABI_FIELD_(pointer_size, sizeof(void *));
    PLGI_ABI_FIELD_(size_t_size, sizeof(size_t));
    PLGI_ABI_FIELD_(int_size, sizeof(int));
    PLGI_ABI_FIELD_(enum_size, sizeof(plg_result));
    PLGI_ABI_FIELD_(header_major, PLG_VERSION_MAJOR);
    PLGI_ABI_FIELD_(name_max, PLG_NAME_MAX);
    PLGI_ABI_FIELD_(descriptor_abi, PLG_DESCRIPTOR_ABI_VERSION);
    PLGI_ABI_FIELD_(descriptor_size, sizeof(plg_descriptor));
    PLGI_ABI_FIELD_(config_key_size, sizeof(plg_config_key));
    PLGI_ABI_FIELD_(config_value_size, sizeof(plg_config_value));
    PLGI_ABI_FIELD_(config_problem_size, sizeof(plg_config_problem));
    PLGI_ABI_FIELD_(dependency_size, sizeof(plg_dependency));
#undef PLGI_ABI_FIELD_
    if (abi->plugin_count == 0 || abi->plugin_count > PLG_LIBRARY_MAX_PLUGINS ||
        abi->plugins == NULL)
        return plgi_fail(reg, PLG_ERR_ABI_MISMATCH,
                         "%s: plugin_count is %lu%s; a library exports 1 to %d plugins", path,
                         (unsigned long)abi->plugin_count,
                         abi->plugins == NULL ? " with no plugins array" : "",
                         PLG_LIBRARY_MAX_PLUGINS);
    for (i = 0; i < abi->plugin_count; i++)
        if (abi->plugins[i] == NULL)
            return plgi_fail(reg, PLG_ERR_ABI_MISMATCH, "%s: plugins[%lu] is NULL", path,
                             (unsigned long)i);
    return PLG_OK;
}

#endif /* !PLG_NO_DLOPEN */

/* Opens a library and checks its ABI block. On success the library record is not yet linked
   into the registry. */
static plg_result plgi_library_open(plg_registry *reg, const char *path,
                                    const plg_load_options *options, struct plgi_library **out,
                                    const plg_library_abi **abi_out)
{
#if defined(PLG_NO_DLOPEN)
    (void)options;
    *out = NULL;
    *abi_out = NULL;
    return plgi_fail(reg, PLG_ERR_NOT_SUPPORTED,
                     "%s: cannot load plugin libraries: built with PLG_NO_DLOPEN", path);
#else
    char copy[4096];
    const char *load_path = path;
    unsigned flags = options != NULL ? options->flags : 0;
    struct stat st;
    void *handle, *sym;
    plg_library_entry_fn entry;
    const plg_library_abi *abi;
    struct plgi_library *lib;
    plg_result r;
    *out = NULL;
    *abi_out = NULL;
    if (stat(path, &st) != 0)
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot load: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot load: not a regular file", path);
    if (!(flags & PLG_LOAD_IN_PLACE)) {
        r = plgi_copy_private(reg, path, options != NULL ? options->temp_dir : NULL, copy,
                              sizeof copy);
        if (r != PLG_OK)
            return r;
        load_path = copy;
    }
    /* RTLD_NOW: an unresolved symbol fails here, not as a crash at its first call.
       RTLD_LOCAL: a plugin's symbols never satisfy another plugin's references. */
    handle = dlopen(load_path, RTLD_NOW | RTLD_LOCAL);
    if (load_path == copy)
        (void)unlink(copy);
    if (handle == NULL) {
        const char *e = dlerror();
        char text[1024];
        plgi_format(text, sizeof text, "%s", e != NULL ? e : "unknown error");
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot load: %s%s", path, text,
                         strstr(text, "undefined symbol: plg_") != NULL
                             ? " (the host must export the registry's functions to its plugins: "
                               "link it with -rdynamic)"
                             : "");
    }
    sym = dlsym(handle, PLG_LIBRARY_ENTRY_NAME);
    if (sym == NULL) {
        (void)dlclose(handle);
        return plgi_fail(reg, PLG_ERR_LOAD,
                         "%s: the library has no entry function %s (write "
                         "PLG_EXPORT_PLUGINS(...) in one of its files)",
                         path, PLG_LIBRARY_ENTRY_NAME);
    }
    /* ISO C has no conversion from object to function pointers; POSIX makes them the same size. */
    memcpy(&entry, &sym, sizeof entry);
    abi = entry();
    r = plgi_check_library_abi(reg, path, abi);
    if (r != PLG_OK) {
        (void)dlclose(handle); /* nothing of it ran but the entry function */
        return r;
    }
    lib = (struct plgi_library *)plgi_alloc(reg, sizeof *lib);
    if (lib != NULL) {
        memset(lib, 0, sizeof *lib);
        lib->path = plgi_strdup(reg, path);
    }
    if (lib == NULL || lib->path == NULL) {
        if (lib != NULL)
            plgi_free(reg, lib, sizeof *lib);
        (void)dlclose(handle);
        return plgi_fail(reg, PLG_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    lib->handle = handle;
    lib->flags = flags;
    *out = lib;
    *abi_out = abi;
    return PLG_OK;
#endif
}

/* With reg->lock held: takes a published node out of lookups (it stays in the registration
   list, so its handle stays valid). */
static void plgi_unpublish_locked(plg_registry *reg, plg_plugin *p)
{
    plgi_table *t = reg->table;
    size_t i;
    for (i = (size_t)p->hash & t->mask; t->slots[i].node != NULL; i = (i + 1) & t->mask)
        if (t->slots[i].node == p) {
            PLGI_STORE(t->slots[i].node, PLGI_TOMBSTONE);
            break;
        }
    PLGI_STORE(p->unregistered, 1);
    __atomic_store_n(&reg->live_count, reg->live_count - 1, __ATOMIC_RELEASE);
}

/* Copies the calling thread's message for reg, so that it can be quoted in a new one. */
static void plgi_errmsg_copy(plg_registry *reg, char *buf, size_t size)
{
    plgi_format(buf, size, "%s", plg_errmsg(reg));
}

PLGI_DEF plg_result plg_load(plg_registry *reg, const char *path, const plg_load_options *options,
                             plg_plugin **out, size_t capacity, size_t *count)
{
    struct plgi_library *lib;
    const plg_library_abi *abi;
    plg_plugin **nodes;
    size_t n, i, j, made = 0;
    char inner[PLGI_ERRMSG_SIZE - 128];
    plg_result r;
    if (count != NULL)
        *count = 0;
    if (out != NULL)
        for (i = 0; i < capacity; i++)
            out[i] = NULL;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (path == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_load: path is NULL");
    r = plgi_library_open(reg, path, options, &lib, &abi);
    if (r != PLG_OK)
        return r;
    n = abi->plugin_count;
    nodes = (plg_plugin **)plgi_alloc(reg, n * sizeof *nodes);
    if (nodes == NULL) {
        r = plgi_fail(reg, PLG_ERR_NO_MEMORY, "%s: out of memory", path);
        goto reject;
    }
    for (made = 0; made < n; made++) {
        r = plgi_node_make(reg, abi->plugins[made], &nodes[made]);
        if (r != PLG_OK) {
            plgi_errmsg_copy(reg, inner, sizeof inner);
            r = plgi_fail(reg, r, "%s: plugin %lu of %lu: %s", path, (unsigned long)made + 1,
                          (unsigned long)n, inner);
            goto reject;
        }
        nodes[made]->cold->lib = lib;
        for (j = 0; j < made; j++)
            if (nodes[j]->hash == nodes[made]->hash &&
                strcmp(nodes[j]->desc.type, nodes[made]->desc.type) == 0 &&
                strcmp(nodes[j]->desc.name, nodes[made]->desc.name) == 0) {
                r = plgi_fail(reg, PLG_ERR_DUPLICATE, "%s: exports %s/%s twice", path,
                              nodes[j]->desc.type, nodes[j]->desc.name);
                made++;
                goto reject;
            }
    }
    pthread_mutex_lock(&reg->lock);
    /* All or none: check every plugin before making any visible. */
    for (i = 0; i < n; i++) {
        plg_plugin *dup = plgi_table_find(reg->table, nodes[i]->hash, nodes[i]->desc.type,
                                          nodes[i]->desc.name);
        if (dup != NULL) {
            pthread_mutex_unlock(&reg->lock);
            r = plgi_fail(reg, PLG_ERR_DUPLICATE,
                          "%s: plugin %s/%s is already registered (version %s%s%s; this one is "
                          "%s)",
                          path, dup->desc.type, dup->desc.name, dup->desc.version,
                          dup->cold->lib != NULL ? ", from " : "",
                          dup->cold->lib != NULL ? dup->cold->lib->path : "", nodes[i]->desc.version);
            goto reject;
        }
    }
    if (reg->desc.max_plugins != 0 && reg->live_count + n > reg->desc.max_plugins) {
        pthread_mutex_unlock(&reg->lock);
        r = plgi_fail(reg, PLG_ERR_LIMIT, "%s: %lu more plugins exceed the registry's maximum of %lu",
                      path, (unsigned long)n, (unsigned long)reg->desc.max_plugins);
        goto reject;
    }
    for (i = 0; i < n; i++) {
        r = plgi_node_publish_locked(reg, nodes[i], inner, sizeof inner);
        if (r != PLG_OK)
            break;
    }
    if (r != PLG_OK) { /* out of memory half-way: take back the ones made visible */
        for (j = 0; j < i; j++)
            plgi_unpublish_locked(reg, nodes[j]);
        for (j = i; j < n; j++)
            plgi_node_free(reg, nodes[j]);
    }
    /* Published nodes point into the library, even the ones taken back: keep it. */
    lib->next = reg->libraries;
    reg->libraries = lib;
    pthread_mutex_unlock(&reg->lock);
    if (r != PLG_OK) {
        plgi_free(reg, nodes, n * sizeof *nodes);
        return plgi_fail(reg, r, "%s: %s", path, inner);
    }
    for (i = 0; i < n; i++)
        if (out != NULL && i < capacity)
            out[i] = nodes[i];
    if (count != NULL)
        *count = n;
    plgi_log(reg, PLG_LOG_INFO, "loaded %s: %lu plugin%s, first %s/%s %s", path,
             (unsigned long)n, n == 1 ? "" : "s", nodes[0]->desc.type, nodes[0]->desc.name,
             nodes[0]->desc.version);
    plgi_free(reg, nodes, n * sizeof *nodes);
    return PLG_OK;
reject:
    /* Nothing was made visible and no plugin callback ran: free it all, close the library. */
    for (i = 0; i < made; i++)
        plgi_node_free(reg, nodes[i]);
    if (nodes != NULL)
        plgi_free(reg, nodes, n * sizeof *nodes);
    plgi_library_free(reg, lib, 1);
    return r;
}

#if !defined(PLG_NO_DLOPEN)
static int plgi_str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}
#endif

PLGI_DEF plg_result plg_load_dir(plg_registry *reg, const char *dir,
                                 const plg_load_options *options, size_t *count)
{
#if defined(PLG_NO_DLOPEN)
    (void)options;
    if (count != NULL)
        *count = 0;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    return plgi_fail(reg, PLG_ERR_NOT_SUPPORTED,
                     "%s: cannot load plugin libraries: built with PLG_NO_DLOPEN",
                     dir != NULL ? dir : "(NULL)");
#else
    DIR *d;
    struct dirent *e;
    char **names = NULL, summary[PLGI_ERRMSG_SIZE - 128];
    size_t n = 0, cap = 0, i, total = 0, failed = 0;
    plg_result first = PLG_OK, r = PLG_OK;
    if (count != NULL)
        *count = 0;
    if (reg == NULL)
        return PLG_ERR_INVALID_ARGUMENT;
    if (dir == NULL)
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT, "plg_load_dir: dir is NULL");
    d = opendir(dir);
    if (d == NULL)
        return plgi_fail(reg, PLG_ERR_LOAD, "%s: cannot open the directory: %s", dir,
                         strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), plen = strlen(dir) + 1 + len + 1;
        struct stat st;
        char *full;
        if (len <= 3 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        full = (char *)plgi_alloc(reg, plen);
        if (full == NULL) {
            r = PLG_ERR_NO_MEMORY;
            break;
        }
        plgi_format(full, plen, "%s/%s", dir, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            plgi_free(reg, full, plen);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **bigger = (char **)plgi_alloc(reg, ncap * sizeof *bigger);
            if (bigger == NULL) {
                plgi_free(reg, full, plen);
                r = PLG_ERR_NO_MEMORY;
                break;
            }
            if (n > 0)
                memcpy(bigger, names, n * sizeof *names);
            plgi_free(reg, names, cap * sizeof *names);
            names = bigger;
            cap = ncap;
        }
        names[n++] = full;
    }
    closedir(d);
    if (r == PLG_OK && n > 0)
        qsort(names, n, sizeof *names, plgi_str_ptr_cmp);
    summary[0] = '\0';
    for (i = 0; r == PLG_OK && i < n; i++) {
        size_t c = 0;
        plg_result lr = plg_load(reg, names[i], options, NULL, 0, &c);
        total += c;
        if (lr != PLG_OK) {
            char inner[PLGI_ERRMSG_SIZE / 2];
            plgi_errmsg_copy(reg, inner, sizeof inner);
            if (first == PLG_OK)
                first = lr;
            plgi_append(summary, sizeof summary, "%s%s", failed ? "; " : "", inner);
            failed++;
        }
    }
    for (i = 0; i < n; i++)
        plgi_strfree(reg, names[i]);
    plgi_free(reg, names, cap * sizeof *names);
    if (count != NULL)
        *count = total;
    if (r != PLG_OK)
        return plgi_fail(reg, r, "%s: out of memory while listing the directory", dir);
    if (failed)
        return plgi_fail(reg, first, "%lu of %lu libraries in %s failed (%lu plugins registered): %s",
                         (unsigned long)failed, (unsigned long)n, dir, (unsigned long)total,
                         summary);
    return PLG_OK;
#endif
}

/* ---------------------------------------------------------------------------------------------
   Hot reload
   ---------------------------------------------------------------------------------------------
   1. Check the running version O (started or failed, not already replaced) and take the
      configuration it was initialised with.
   2. Load the new library from a private copy (plgi_library_open: a fresh dlopen handle even
      for the same path), check its ABI block and find the descriptor with O's (type, name).
   3. Make the new node N, linked into the registration list but invisible to lookups.
   4. Under N's lock: init, the state hand-over, the dependency check, start, health (must be
      OK). A failure here shuts N down again; O was never touched.
   5. The switch, under reg->lock: one release store puts N in O's slot of the index (and of its
      type's list). From here plg_find and plg_acquire return N.
   6. Retire O (sequentially consistent store; see "Leases") and wait until no lease is held.
   7. Stop and shut O down, and take it out of the listings.
   The lifecycle lock is held throughout, so reloads and the *_all walks never interleave.
   Callers never wait for any of it: they only ever see O or N.
   ------------------------------------------------------------------------------------------- */

PLGI_DEF plg_result plg_reload(plg_registry *reg, plg_plugin *current, const char *path,
                               const plg_reload_options *options, plg_plugin **out)
{
    plg_reload_options opt;
    plg_plugin *old = current, *neu = NULL;
    struct plgi_library *lib = NULL;
    const plg_library_abi *abi = NULL;
    const plg_descriptor *found = NULL;
    char *json = NULL, *from = NULL, why[PLGI_ERRMSG_SIZE - 256], step[64];
    size_t i;
    int s;
    plg_result r;
    uint64_t t0;
    if (out != NULL)
        *out = NULL;
    r = plgi_check_handle(reg, current, "plg_reload");
    if (r != PLG_OK)
        return r;
    memset(&opt, 0, sizeof opt);
    if (options != NULL)
        opt = *options;
    why[0] = '\0';
    pthread_mutex_lock(&reg->lifecycle_lock);

    /* 1 */
    pthread_mutex_lock(&old->lock);
    s = PLGI_LOAD(old->state);
    if (PLGI_LOAD(old->unregistered) || __atomic_load_n(&old->cold->retired, __ATOMIC_SEQ_CST)) {
        pthread_mutex_unlock(&old->lock);
        pthread_mutex_unlock(&reg->lifecycle_lock);
        return plgi_fail(reg, PLG_ERR_NOT_FOUND,
                         "cannot reload %s/%s %s: it was unregistered or already replaced",
                         old->desc.type, old->desc.name, old->desc.version);
    }
    if (s != PLG_STATE_STARTED && s != PLG_STATE_FAILED) {
        r = plgi_illegal(old, "reload", "started or failed");
        pthread_mutex_unlock(&old->lock);
        pthread_mutex_unlock(&reg->lifecycle_lock);
        return r;
    }
    if (path == NULL && old->cold->lib == NULL) {
        pthread_mutex_unlock(&old->lock);
        pthread_mutex_unlock(&reg->lifecycle_lock);
        return plgi_fail(reg, PLG_ERR_INVALID_ARGUMENT,
                         "cannot reload %s/%s: it was not loaded from a library, so a path is "
                         "required",
                         old->desc.type, old->desc.name);
    }
    from = plgi_strdup(reg, path != NULL ? path : old->cold->lib->path);
    if (opt.config_json != NULL || old->cold->init_json != NULL)
        json = plgi_strdup(reg, opt.config_json != NULL ? opt.config_json : old->cold->init_json);
    pthread_mutex_unlock(&old->lock);
    if (from == NULL || (json == NULL && (opt.config_json != NULL || old->cold->init_json != NULL))) {
        r = plgi_fail(reg, PLG_ERR_NO_MEMORY, "plg_reload: out of memory");
        goto done;
    }

    /* 2 */
    plgi_format(step, sizeof step, "load");
    r = plgi_library_open(reg, from, opt.load, &lib, &abi);
    if (r != PLG_OK) {
        plgi_errmsg_copy(reg, why, sizeof why);
        goto rollback;
    }
    for (i = 0; i < abi->plugin_count && found == NULL; i++)
        if (abi->plugins[i]->type != NULL && abi->plugins[i]->name != NULL &&
            strcmp(abi->plugins[i]->type, old->desc.type) == 0 &&
            strcmp(abi->plugins[i]->name, old->desc.name) == 0)
            found = abi->plugins[i];
    if (found == NULL) {
        plgi_format(why, sizeof why, "%s exports no plugin %s/%s (it exports", from,
                    old->desc.type, old->desc.name);
        for (i = 0; i < abi->plugin_count; i++)
            plgi_append(why, sizeof why, "%s %s/%s", i ? "," : "",
                        abi->plugins[i]->type ? abi->plugins[i]->type : "(NULL)",
                        abi->plugins[i]->name ? abi->plugins[i]->name : "(NULL)");
        plgi_append(why, sizeof why, ")");
        plgi_library_free(reg, lib, 1); /* none of its callbacks ran */
        lib = NULL;
        r = PLG_ERR_NOT_FOUND;
        goto rollback;
    }

    /* 3 */
    r = plgi_node_make(reg, found, &neu);
    if (r != PLG_OK) {
        plgi_errmsg_copy(reg, why, sizeof why);
        plgi_library_free(reg, lib, 1);
        lib = NULL;
        goto rollback;
    }
    neu->cold->lib = lib;
    neu->unregistered = 1; /* invisible until the switch */
    pthread_mutex_lock(&reg->lock);
    plgi_node_link_locked(reg, neu); /* freed with the registry whatever happens next */
    lib->next = reg->libraries;
    reg->libraries = lib;
    pthread_mutex_unlock(&reg->lock);

    /* 4 */
    pthread_mutex_lock(&neu->lock);
    plgi_format(step, sizeof step, "init");
    r = plgi_init_locked(neu, json);
    if (r == PLG_OK && opt.handover != NULL) {
        plgi_format(step, sizeof step, "state hand-over");
        r = opt.handover(old, plg_plugin_instance(old), neu, PLGI_LOAD(neu->instance),
                         opt.handover_user);
        if (r != PLG_OK)
            plgi_fail(reg, r, "the hand-over callback returned %s", plg_result_string(r));
    }
    if (r == PLG_OK) {
        plgi_format(step, sizeof step, "start");
        if (plgi_deps_block(neu, why, sizeof why)) {
            r = PLG_ERR_DEPENDENCY_FAILED;
            plgi_fail(reg, r, "cannot start: %s", why);
        } else {
            r = plgi_start_locked(neu);
        }
    }
    if (r == PLG_OK) {
        plg_health_report rep;
        plgi_format(step, sizeof step, "health check");
        plgi_health_locked(neu, &rep);
        if (rep.status != PLG_HEALTH_OK) {
            r = PLG_ERR_UNHEALTHY;
            plgi_fail(reg, r, "health is %s%s%s",
                      rep.status == PLG_HEALTH_DEGRADED ? "degraded" : "unhealthy",
                      rep.message[0] ? ": " : "", rep.message);
        }
    }
    if (r != PLG_OK) {
        plgi_errmsg_copy(reg, why, sizeof why);
        if (PLGI_LOAD(neu->state) == PLG_STATE_STARTED)
            (void)plgi_stop_locked(neu);
        plgi_shutdown_locked(neu); /* its shutdown callback runs only if its init succeeded */
        pthread_mutex_unlock(&neu->lock);
        goto rollback;
    }
    pthread_mutex_unlock(&neu->lock);

    /* 5 */
    pthread_mutex_lock(&reg->lock);
    {
        plgi_table *t = reg->table;
        plgi_type_entry *e = plgi_type_find(reg, old->desc.type);
        for (i = (size_t)old->hash & t->mask; t->slots[i].node != NULL; i = (i + 1) & t->mask)
            if (t->slots[i].node == old) {
                PLGI_STORE(t->slots[i].node, neu);
                break;
            }
        if (e != NULL) {
            plgi_vec *v = e->vec;
            for (i = 0; i < v->count; i++)
                if (v->items[i] == old)
                    PLGI_STORE(v->items[i], neu);
        }
        neu->seq = old->seq; /* keeps its place among equal priorities */
        PLGI_STORE(neu->unregistered, 0);
    }
    pthread_mutex_unlock(&reg->lock);

    /* 6 */
    t0 = plgi_now_ms();
    __atomic_store_n(&old->cold->retired, 1, __ATOMIC_SEQ_CST);
    {
        unsigned spins = 0;
        while (__atomic_load_n(&old->cold->leases, __ATOMIC_SEQ_CST) != 0) {
            if (opt.drain_timeout_ms != 0 && plgi_now_ms() - t0 >= opt.drain_timeout_ms) {
                int held = __atomic_load_n(&old->cold->leases, __ATOMIC_SEQ_CST);
                r = plgi_fail(reg, PLG_ERR_TIMEOUT,
                              "reloaded %s/%s: version %s is in service, but %d caller%s still "
                              "held version %s after %lu ms; it was left started and out of "
                              "lookups (plg_stop and plg_shutdown it once they are gone)",
                              old->desc.type, old->desc.name, neu->desc.version, held,
                              held == 1 ? "" : "s", old->desc.version,
                              (unsigned long)opt.drain_timeout_ms);
                pthread_mutex_lock(&reg->lock);
                PLGI_STORE(old->unregistered, 1);
                pthread_mutex_unlock(&reg->lock);
                if (out != NULL)
                    *out = neu;
                goto done;
            }
            if (spins < 100) {
                spins++;
                sched_yield();
            } else {
                plgi_sleep_ms(1);
            }
        }
    }

    /* 7 */
    pthread_mutex_lock(&old->lock);
    if (PLGI_LOAD(old->state) == PLG_STATE_STARTED && plgi_stop_locked(old) != PLG_OK)
        plgi_log(reg, PLG_LOG_WARN, "reload of %s/%s: the old version %s failed to stop: %s",
                 old->desc.type, old->desc.name, old->desc.version, old->cold->failure);
    s = PLGI_LOAD(old->state);
    if (s != PLG_STATE_SHUT_DOWN && s != PLG_STATE_REGISTERED)
        plgi_shutdown_locked(old);
    pthread_mutex_unlock(&old->lock);
    pthread_mutex_lock(&reg->lock);
    PLGI_STORE(old->unregistered, 1);
    pthread_mutex_unlock(&reg->lock);
    plgi_log(reg, PLG_LOG_INFO, "reloaded %s/%s from %s: %s -> %s (old version drained in %lu ms)",
             old->desc.type, old->desc.name, from, old->desc.version, neu->desc.version,
             (unsigned long)(plgi_now_ms() - t0));
    if (out != NULL)
        *out = neu;
    r = PLG_OK;
    goto done;

rollback:
    r = plgi_fail(reg, r, "reload of %s/%s from %s failed at %s%s%s: %s; version %s stays in "
                  "service",
                  old->desc.type, old->desc.name, from, step, neu != NULL ? " of version " : "",
                  neu != NULL ? neu->desc.version : "", why, old->desc.version);
    plgi_log(reg, PLG_LOG_WARN, "%s", plg_errmsg(reg));
done:
    pthread_mutex_unlock(&reg->lifecycle_lock);
    plgi_strfree(reg, json);
    plgi_strfree(reg, from);
    return r;
}

/* ---------------------------------------------------------------------------------------------
   Registry description (JSON) for documentation generators
   ------------------------------------------------------------------------------------------- */

#define PLGI_DESCRIBE_FORMAT "plugin-registry-description"
#define PLGI_DESCRIBE_VERSION 1

/* A JSON string, or null for NULL. */
static void plgi_out_json_text(plgi_out *o, const char *s)
{
    if (s == NULL)
        plgi_out_str(o, "null");
    else
        plgi_out_json_string(o, s, strlen(s));
}

static void plgi_out_json_number(plgi_out *o, long long v)
{
    char num[32];
    plgi_format(num, sizeof num, "%lld", v);
    plgi_out_str(o, num);
}

/* A newline and the indentation of depth levels (two spaces each). */
static void plgi_out_indent(plgi_out *o, int depth)
{
    plgi_out_put(o, "\n", 1);
    while (depth-- > 0)
        plgi_out_put(o, "  ", 2);
}

/* `"name": ` at the given depth, after a comma unless it is the object's first member. */
static void plgi_out_member(plgi_out *o, int depth, int first, const char *name)
{
    if (!first)
        plgi_out_put(o, ",", 1);
    plgi_out_indent(o, depth);
    plgi_out_json_string(o, name, strlen(name));
    plgi_out_put(o, ": ", 2);
}

static const char *plgi_describe_type(plg_config_type type)
{
    switch (type) {
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
    return "unknown"; /* not reachable: plg_register checks the schema */
}

static void plgi_describe_key(plgi_out *o, const plg_config_key *k, int depth)
{
    int secret = (k->flags & PLG_KEY_SECRET) != 0;
    size_t i;
    plgi_out_put(o, "{", 1);
    plgi_out_member(o, depth + 1, 1, "key");
    plgi_out_json_text(o, k->key);
    plgi_out_member(o, depth + 1, 0, "type");
    plgi_out_json_text(o, plgi_describe_type(k->type));
    plgi_out_member(o, depth + 1, 0, "required");
    plgi_out_str(o, (k->flags & PLG_KEY_REQUIRED) ? "true" : "false");
    plgi_out_member(o, depth + 1, 0, "secret");
    plgi_out_str(o, secret ? "true" : "false");
    plgi_out_member(o, depth + 1, 0, "default");
    plgi_out_json_text(o, k->default_value == NULL ? NULL : secret ? "<redacted>" : k->default_value);
    plgi_out_member(o, depth + 1, 0, "min");
    plgi_out_json_text(o, k->min);
    plgi_out_member(o, depth + 1, 0, "max");
    plgi_out_json_text(o, k->max);
    plgi_out_member(o, depth + 1, 0, "allowed");
    if (secret || k->allowed == NULL || k->allowed_count == 0) {
        plgi_out_str(o, "null");
    } else {
        plgi_out_put(o, "[", 1);
        for (i = 0; i < k->allowed_count; i++) {
            if (i > 0)
                plgi_out_put(o, ", ", 2);
            plgi_out_json_text(o, k->allowed[i]);
        }
        plgi_out_put(o, "]", 1);
    }
    plgi_out_member(o, depth + 1, 0, "description");
    plgi_out_json_text(o, k->description);
    plgi_out_indent(o, depth);
    plgi_out_put(o, "}", 1);
}

static void plgi_describe_plugin(plgi_out *o, const plg_plugin *p, int depth)
{
    const plg_descriptor *d = &p->desc;
    size_t i;
    plgi_out_put(o, "{", 1);
    plgi_out_member(o, depth + 1, 1, "type");
    plgi_out_json_text(o, d->type);
    plgi_out_member(o, depth + 1, 0, "name");
    plgi_out_json_text(o, d->name);
    plgi_out_member(o, depth + 1, 0, "version");
    plgi_out_json_text(o, d->version);
    plgi_out_member(o, depth + 1, 0, "description");
    plgi_out_json_text(o, d->description);
    plgi_out_member(o, depth + 1, 0, "state");
    plgi_out_json_text(o, plg_state_name(plg_plugin_state(p)));
    plgi_out_member(o, depth + 1, 0, "priority");
    plgi_out_json_number(o, (long long)d->priority);

    plgi_out_member(o, depth + 1, 0, "capabilities");
    plgi_out_put(o, "[", 1);
    for (i = 0; d->capabilities != NULL && i < d->capability_count; i++) {
        if (i > 0)
            plgi_out_put(o, ", ", 2);
        plgi_out_json_text(o, d->capabilities[i]);
    }
    plgi_out_put(o, "]", 1);

    plgi_out_member(o, depth + 1, 0, "host_api_range");
    plgi_out_json_text(o, d->host_api_range != NULL && d->host_api_range[0] ? d->host_api_range
                                                                             : NULL);

    plgi_out_member(o, depth + 1, 0, "dependencies");
    plgi_out_put(o, "[", 1);
    for (i = 0; d->dependencies != NULL && i < d->dependency_count; i++) {
        const plg_dependency *dep = &d->dependencies[i];
        if (i > 0)
            plgi_out_put(o, ",", 1);
        plgi_out_indent(o, depth + 2);
        plgi_out_put(o, "{", 1);
        plgi_out_member(o, depth + 3, 1, "type");
        plgi_out_json_text(o, dep->type != NULL ? dep->type : d->type); /* NULL: its own type */
        plgi_out_member(o, depth + 3, 0, "name");
        plgi_out_json_text(o, dep->name);
        plgi_out_member(o, depth + 3, 0, "range");
        plgi_out_json_text(o, dep->range != NULL && dep->range[0] ? dep->range : NULL);
        plgi_out_member(o, depth + 3, 0, "optional");
        plgi_out_str(o, dep->optional ? "true" : "false");
        plgi_out_indent(o, depth + 2);
        plgi_out_put(o, "}", 1);
    }
    if (i > 0)
        plgi_out_indent(o, depth + 1);
    plgi_out_put(o, "]", 1);

    plgi_out_member(o, depth + 1, 0, "interface");
    if (d->provides.id == NULL) {
        plgi_out_str(o, "null");
    } else {
        plgi_out_put(o, "{", 1);
        plgi_out_member(o, depth + 2, 1, "id");
        plgi_out_json_text(o, d->provides.id);
        plgi_out_member(o, depth + 2, 0, "abi_version");
        plgi_out_json_number(o, (long long)d->provides.abi_version);
        plgi_out_member(o, depth + 2, 0, "struct_size");
        plgi_out_json_number(o, (long long)d->provides.struct_size);
        plgi_out_indent(o, depth + 1);
        plgi_out_put(o, "}", 1);
    }

    plgi_out_member(o, depth + 1, 0, "library");
    plgi_out_json_text(o, plg_plugin_library(p));

    plgi_out_member(o, depth + 1, 0, "config");
    plgi_out_put(o, "[", 1);
    for (i = 0; d->config_schema != NULL && i < d->config_key_count; i++) {
        if (i > 0)
            plgi_out_put(o, ",", 1);
        plgi_out_indent(o, depth + 2);
        plgi_describe_key(o, &d->config_schema[i], depth + 2);
    }
    if (i > 0)
        plgi_out_indent(o, depth + 1);
    plgi_out_put(o, "]", 1);
    plgi_out_indent(o, depth);
    plgi_out_put(o, "}", 1);
}

PLGI_DEF size_t plg_registry_describe_json(plg_registry *reg, char *buf, size_t size)
{
    plgi_out o;
    plg_plugin *p;
    size_t count = 0;
    o.buf = buf;
    o.size = size;
    o.len = 0;
    if (reg == NULL) {
        if (buf != NULL && size > 0)
            buf[0] = '\0';
        return 0;
    }
    plgi_out_put(&o, "{", 1);
    plgi_out_member(&o, 1, 1, "format");
    plgi_out_json_text(&o, PLGI_DESCRIBE_FORMAT);
    plgi_out_member(&o, 1, 0, "format_version");
    plgi_out_json_number(&o, PLGI_DESCRIBE_VERSION);
    plgi_out_member(&o, 1, 0, "registry");
    plgi_out_put(&o, "{", 1);
    plgi_out_member(&o, 2, 1, "library_version");
    plgi_out_json_text(&o, PLG_VERSION_STRING);
    plgi_out_member(&o, 2, 0, "host_api_version");
    plgi_out_json_text(&o, reg->host_api_text);
    plgi_out_indent(&o, 1);
    plgi_out_put(&o, "}", 1);
    plgi_out_member(&o, 1, 0, "plugins");
    plgi_out_put(&o, "[", 1);
    /* Every node ever registered, in registration order; those still in lookups are listed
       (not unregistered, and the version the index holds: a reloaded plugin's retired
       predecessor is left out). */
    for (p = PLGI_LOAD(reg->first); p != NULL; p = PLGI_LOAD(p->next)) {
        if (PLGI_LOAD(p->unregistered) ||
            plgi_table_find(PLGI_LOAD(reg->table), p->hash, p->desc.type, p->desc.name) != p)
            continue;
        if (count++ > 0)
            plgi_out_put(&o, ",", 1);
        plgi_out_indent(&o, 2);
        plgi_describe_plugin(&o, p, 2);
    }
    if (count > 0)
        plgi_out_indent(&o, 1);
    plgi_out_put(&o, "]", 1);
    plgi_out_indent(&o, 0);
    plgi_out_put(&o, "}\n", 2);
    if (buf != NULL && size > 0)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

#endif /* PLUGIN_REGISTRY_IMPLEMENTATION */

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
