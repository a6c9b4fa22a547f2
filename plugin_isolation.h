/* plugin_isolation.h - run a plugin library in a child process, stb-style single header.

   USAGE
   =====
   Declarations by default. In exactly ONE C or C++ file of your program write

       #define PLUGIN_REGISTRY_IMPLEMENTATION    // unless another file already does
       #define PLUGIN_ISOLATION_IMPLEMENTATION
       #include "plugin_isolation.h"

   to compile the implementation there; every other file includes the header plainly. Including
   it again in the same file, before or after the define, is harmless. plugin_isolation.h builds
   on plugin_registry.h (found on the include path as "plugin_registry.h"), which it includes.

   Needs POSIX (posix_spawn, socketpair, poll, setrlimit, waitpid) and threads (-pthread), and
   dlopen in the child (glibc 2.34 and later has it in libc; older systems link with -ldl). Names:
   functions and types start with `plgiso_`, macros and enum values with `PLGISO_`, internals
   with `plgisoi_`. The prefix says "the registry's (plg) isolation layer" while keeping the
   registry's own plg_ namespace to plugin_registry.h, so neither header can take a name the
   other needs.

   An isolated plugin is an ordinary plugin library (PLG_EXPORT_PLUGINS) whose plugin provides
   the interface PLGISO_INTERFACE_ID with a plgiso_vtable: bytes in, bytes out, by method id. The
   host and the plugin agree on the methods; any interface can be carried that way (one method id
   per vtable function, its arguments serialised into the payload). The host starts a helper
   program in a child process with resource limits; the helper loads the library with plg_load
   and serves calls over a socketpair. In the host, the plugin appears in the registry as a proxy
   plugin of the same type, name and version that provides the same interface: plg_acquire it and
   call lease.vtable's `call` exactly as for the same plugin loaded in process.

   The helper is any program whose main() begins with plgiso_child_main(argc, argv). The host
   itself can be the helper: put that line first in its main and use "/proc/self/exe".

   A complete program (C99; the plugin library "echo.so" is shown after it):

       #define PLUGIN_REGISTRY_IMPLEMENTATION
       #define PLUGIN_ISOLATION_IMPLEMENTATION
       #include "plugin_isolation.h"
       #include <stdio.h>

       int main(int argc, char **argv)
       {
           plg_registry *reg = NULL;
           plgiso_plugin *iso = NULL;
           plgiso_desc desc = {0};
           char why[512], out[64];
           size_t out_len = 0;
           plgiso_child_main(argc, argv);           // in the child: serves, then exits
           desc.helper_path = "/proc/self/exe";     // this program is its own helper
           desc.library_path = "./echo.so";
           desc.limits.address_space_bytes = 256u << 20;
           desc.limits.cpu_seconds = 10;
           desc.limits.open_files = 32;
           desc.call_timeout_ms = 1000;
           desc.open_message = why;
           desc.open_message_size = sizeof why;
           if (plg_registry_create(NULL, &reg) != PLG_OK)
               return 1;
           if (plgiso_open(reg, &desc, &iso) != PLGISO_OK) {   // child started, plugin registered
               fprintf(stderr, "%s\n", why);
               return 1;
           }
           if (plg_init(reg, plgiso_node(iso), NULL) != PLG_OK ||
               plg_start(reg, plgiso_node(iso)) != PLG_OK) {
               fprintf(stderr, "%s\n", plg_errmsg(reg));
           } else if (plgiso_call(iso, 1, "hi", 2, out, sizeof out, &out_len) == PLGISO_OK) {
               printf("%.*s\n", (int)out_len, out); // hi
           } else {
               fprintf(stderr, "%s\n", plgiso_errmsg(iso)); // crashed, timed out, ...
           }
           plgiso_close(iso);                       // stops the plugin, ends the child
           plg_registry_destroy(reg);
           return 0;
       }

   echo.so, built with cc -shared -fPIC -I. echo.c -o echo.so (the host links with -rdynamic, so
   that plugins can call plg_* functions):

       #include "plugin_isolation.h"
       #include <string.h>

       static plg_result echo_call(void *instance, uint32_t method, const void *in,
                                   size_t in_len, void *out, size_t out_capacity, size_t *out_len)
       {
           (void)instance;
           if (method != 1 || in_len > out_capacity)
               return PLG_ERR_INVALID_ARGUMENT;
           memcpy(out, in, in_len);
           *out_len = in_len;
           return PLG_OK;
       }
       static plg_result echo_init(plg_plugin *self, const plg_config *config, void **instance)
       {
           (void)self;
           (void)config;
           *instance = NULL;
           return PLG_OK;
       }
       static void echo_shutdown(plg_plugin *self, void *instance)
       {
           (void)self;
           (void)instance;
       }
       static const plgiso_vtable echo_vtable = {echo_call};
       static const plg_descriptor echo = {
           .abi_version = PLG_DESCRIPTOR_ABI_VERSION, .struct_size = sizeof(plg_descriptor),
           .type = "demo", .name = "echo", .version = "1.0.0",
           .init = echo_init, .shutdown = echo_shutdown,
           .provides = {PLGISO_INTERFACE_ID, PLGISO_VTABLE_ABI_VERSION, sizeof(plgiso_vtable),
                        &echo_vtable},
       };
       PLG_EXPORT_PLUGINS(&echo);

   CHILD PROCESS AND FAILURES
   ==========================
   The child is started with posix_spawn (fork + exec, never fork alone: a fork of a threaded
   host copies locks held by threads that do not exist in the child; exec starts clean), with the
   socket on descriptor 3, stdin on /dev/null, stdout and stderr shared with the host. The helper
   closes every other descriptor, applies the limits (before the library is loaded, so they bind
   its constructors too) and loads the library. Every request has a deadline:
     - the child dies (SIGSEGV, abort, exit, CPU limit)  -> PLGISO_ERR_CRASHED / _LIMIT
     - no reply within call_timeout_ms                   -> SIGKILL, PLGISO_ERR_TIMEOUT
     - resident memory above limits.rss_bytes            -> SIGKILL, PLGISO_ERR_LIMIT
   The host never receives a signal for it (sends use MSG_NOSIGNAL) and reaps the child. The next
   call restarts the child (spawn, init, start: back to the state the host gave the proxy) once
   the backoff has passed: backoff_initial_ms after a crash, doubled after each further crash up
   to backoff_max_ms, back to the initial value after a successful call. Calls in between return
   PLGISO_ERR_UNAVAILABLE at once. More than max_restarts crashes within restart_window_ms mark
   the plugin failed for good: the proxy enters the registry's failed state with the reason
   (plg_plugin_failure), plg_acquire refuses it, and calls return PLGISO_ERR_FAILED.
   A crash or a hang during init or start fails that lifecycle call, which marks the proxy
   failed as for any plugin.

   Limits (plgiso_limits; 0 means none): address_space_bytes (RLIMIT_AS: malloc fails beyond it),
   cpu_seconds (RLIMIT_CPU: SIGXCPU, then SIGKILL a second later), open_files (RLIMIT_NOFILE),
   and rss_bytes, which the host checks every rss_check_ms while a call is in flight (Linux,
   /proc/<pid>/statm). A helper built with AddressSanitizer or ThreadSanitizer reserves terabytes
   of address space and cannot run under RLIMIT_AS; use rss_bytes there.

   FRAME FORMAT
   ============
   A stream of frames over a SOCK_STREAM socketpair, one request and its reply at a time, every
   integer little-endian:

       offset  size  field
       0       4     length   payload bytes that follow the 16-byte header
       4       4     call_id  chosen by the host, echoed by the reply
       8       4     method   user methods 0..PLGISO_METHOD_MAX; 0xFFFFFF00.. are control
       12      4     status   request: 0; reply: a plg_result (0 = PLG_OK)
       16      length payload  request: the input; reply: the output, or an error text

   Control methods: SETUP (first frame: protocol version, limits, library path, type, name; the
   reply carries type, name, version and description, NUL-terminated), INIT (payload: the
   configuration JSON), START, STOP, HEALTH (reply: a 4-byte status, then the message), SHUTDOWN.
   A frame longer than max_message_bytes, a reply with the wrong call id or method, or a short
   read is a protocol error: the child is killed and the call fails (PLGISO_ERR_PROTOCOL).

   THREAD SAFETY
   =============
   Calls on one plgiso_plugin serialise on its mutex (the child serves one request at a time; the
   timeout counts from the moment the request is sent). Different isolated plugins run in
   parallel. plgiso_errmsg is per thread. plgiso_close must not run concurrently with other calls
   on the same object, and comes before plg_registry_destroy of its registry.

   COMPILE-TIME OPTIONS
   ====================
   PLGISO_API      decoration of every public function (default: extern)
   PLGISO_STATIC   make every function static
   PLG_NO_DLOPEN   (plugin_registry.h) also disables the child side: plgiso_open fails with
                   PLGISO_ERR_NOT_SUPPORTED

   LICENCE: see the end of the file.
*/
#ifndef PLUGIN_ISOLATION_H
#define PLUGIN_ISOLATION_H

#include "plugin_registry.h"

#include <stddef.h>
#include <stdint.h>

#define PLGISO_VERSION_MAJOR 0
#define PLGISO_VERSION_MINOR 1
#define PLGISO_VERSION_PATCH 0
#define PLGISO_VERSION_STRING "0.1.0"

/* The interface an isolated plugin provides, in the child and (as the proxy) in the host. */
#define PLGISO_INTERFACE_ID "plgiso.call"
#define PLGISO_VTABLE_ABI_VERSION 1u
/* argv[1] of the helper in a child; plgiso_child_main looks for it. */
#define PLGISO_CHILD_ARG "--plgiso-child"
/* The descriptor the child's socket is on. */
#define PLGISO_CHILD_FD 3
/* Highest user method id; ids above are the protocol's own. */
#define PLGISO_METHOD_MAX 0xFFFFFEFFu
#define PLGISO_FRAME_HEADER_SIZE 16
#define PLGISO_PROTOCOL_VERSION 1u

#ifndef PLGISO_API
#if defined(PLGISO_STATIC)
#if defined(__GNUC__)
#define PLGISO_API static __attribute__((unused))
#else
#define PLGISO_API static
#endif
#else
#define PLGISO_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description). Values are part of the ABI: append, never renumber. */
#define PLGISO_RESULT_LIST(X)                                                                      \
    X(PLGISO_OK, 0, "ok")                                                                          \
    X(PLGISO_ERR_INVALID_ARGUMENT, 1, "invalid argument")                                          \
    X(PLGISO_ERR_NO_MEMORY, 2, "out of memory")                                                    \
    X(PLGISO_ERR_NOT_SUPPORTED, 3, "not supported on this platform or build")                      \
    X(PLGISO_ERR_SPAWN, 4, "the child process could not be started")                               \
    X(PLGISO_ERR_LOAD, 5, "the child could not load or set up the plugin")                         \
    X(PLGISO_ERR_CRASHED, 6, "the child process died")                                             \
    X(PLGISO_ERR_TIMEOUT, 7, "no reply in time; the child was killed")                             \
    X(PLGISO_ERR_LIMIT, 8, "the child exceeded a resource limit")                                  \
    X(PLGISO_ERR_UNAVAILABLE, 9, "the child is being restarted (backoff)")                         \
    X(PLGISO_ERR_FAILED, 10, "the plugin crashed too often and is marked failed")                  \
    X(PLGISO_ERR_PLUGIN, 11, "the plugin returned an error")                                       \
    X(PLGISO_ERR_TOO_LARGE, 12, "message larger than the limit or the output buffer")              \
    X(PLGISO_ERR_PROTOCOL, 13, "malformed reply from the child")                                   \
    X(PLGISO_ERR_INVALID_STATE, 14, "the plugin is not started")                                   \
    X(PLGISO_ERR_REGISTRY, 15, "a registry call failed")                                           \
    X(PLGISO_ERR_INTERNAL, 16, "internal error")

typedef enum plgiso_result PLG_ENUM_BASE {
#define PLGISO_RESULT_ENUM_(name, value, text) name = value,
    PLGISO_RESULT_LIST(PLGISO_RESULT_ENUM_)
#undef PLGISO_RESULT_ENUM_
    PLGISO_RESULT_COUNT_
} plgiso_result;

/* The interface of an isolated plugin (PLGISO_INTERFACE_ID). `call` writes at most out_capacity
   bytes to out and their number to *out_len, and returns PLG_OK or a code of its choosing; on
   an error, the bytes it wrote are taken as an explanation (text). In the child, out_capacity is
   max_message_bytes. */
typedef struct plgiso_vtable {
    plg_result (*call)(void *instance, uint32_t method, const void *in, size_t in_len, void *out,
                       size_t out_capacity, size_t *out_len);
} plgiso_vtable;

/* Resource limits of the child; 0 means no limit (inherited). */
typedef struct plgiso_limits {
    uint64_t address_space_bytes; /* RLIMIT_AS */
    uint64_t rss_bytes;           /* resident memory, checked by the host during calls (Linux) */
    uint32_t cpu_seconds;         /* RLIMIT_CPU, for the child's whole life */
    uint32_t open_files;          /* RLIMIT_NOFILE */
} plgiso_limits;

typedef struct plgiso_desc {
    const char *helper_path;     /* required: a program whose main calls plgiso_child_main */
    const char *library_path;    /* required: the plugin library */
    const char *type, *name;     /* which plugin of the library; NULL: its first */
    const char *config_json;     /* the plugin's configuration (validated in the child); "{}" */
    plgiso_limits limits;
    uint32_t call_timeout_ms;    /* per call; default 5000 */
    uint32_t start_timeout_ms;   /* spawn and load, and each lifecycle request; default 10000 */
    uint32_t backoff_initial_ms; /* default 100 */
    uint32_t backoff_max_ms;     /* default 10000 */
    uint32_t max_restarts;       /* crashes tolerated within restart_window_ms; default 5 */
    uint32_t restart_window_ms;  /* default 60000 */
    uint32_t max_message_bytes;  /* largest request or reply payload; default 1 MiB, least 4096 */
    uint32_t rss_check_ms;       /* how often rss_bytes is checked during a call; default 10 */
    char *open_message;          /* where plgiso_open explains a failure (may be NULL) */
    size_t open_message_size;
} plgiso_desc;

typedef struct plgiso_plugin plgiso_plugin;

typedef struct plgiso_stats {
    long pid;               /* the running child, 0 when none */
    uint64_t calls;         /* user calls answered by the plugin (with PLG_OK or its error) */
    uint32_t spawns;        /* children started */
    uint32_t crashes;       /* children that died or were killed (timeouts and limits included) */
    uint32_t timeouts;
    int failed;             /* marked failed after too many crashes */
    uint32_t next_restart_ms; /* while backing off: milliseconds until the next attempt */
} plgiso_stats;

PLGISO_API const char *plgiso_result_string(plgiso_result result);
PLGISO_API const char *plgiso_version(void);
/* The setup plgiso_open would use: every default filled in (strings are not copied). */
PLGISO_API plgiso_desc plgiso_resolved(const plgiso_desc *desc);

/* Starts the child, loads the library there (limits applied first) and registers the proxy
   plugin in reg, in state registered: plg_init and plg_start it (or plg_start_all) as any plugin;
   its init initialises the plugin in the child with desc->config_json. Fails with
   PLGISO_ERR_SPAWN, PLGISO_ERR_LOAD (the child's plg_load message, e.g. an ABI mismatch),
   PLGISO_ERR_CRASHED/_TIMEOUT (the library's constructors), PLGISO_ERR_REGISTRY (plg_register
   refused the proxy, e.g. a duplicate). */
PLGISO_API plgiso_result plgiso_open(plg_registry *reg, const plgiso_desc *desc,
                                     plgiso_plugin **out);
/* The proxy plugin in the registry. */
PLGISO_API plg_plugin *plgiso_node(const plgiso_plugin *iso);
/* One request: method 0..PLGISO_METHOD_MAX, in_len <= max_message_bytes. On PLGISO_OK out holds
   *out_len bytes. PLGISO_ERR_PLUGIN: the plugin returned an error (its code and text in
   plgiso_errmsg). PLGISO_ERR_TOO_LARGE with *out_len set to the reply's size when out is too
   small. The proxy must be started. */
PLGISO_API plgiso_result plgiso_call(plgiso_plugin *iso, uint32_t method, const void *in,
                                     size_t in_len, void *out, size_t out_capacity,
                                     size_t *out_len);
PLGISO_API plgiso_result plgiso_stats_get(plgiso_plugin *iso, plgiso_stats *out);
/* The calling thread's message for its last failed call on iso ("" if none). */
PLGISO_API const char *plgiso_errmsg(const plgiso_plugin *iso);
/* Stops and shuts the proxy down (ending the child), unregisters it and frees iso. NULL is a
   no-op. Before plg_registry_destroy of its registry. */
PLGISO_API void plgiso_close(plgiso_plugin *iso);

/* The child side. Returns 0 at once unless argv[1] is PLGISO_CHILD_ARG; then it serves the host
   on descriptor PLGISO_CHILD_FD and ends the process with exit() (status 0 after an orderly
   shutdown or when the host went away, 2 when the setup failed). Call it first in main. */
PLGISO_API int plgiso_child_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* PLUGIN_ISOLATION_H */

/* =============================================================================================
   Implementation
   ============================================================================================= */
#if defined(PLUGIN_ISOLATION_IMPLEMENTATION) && !defined(PLUGIN_ISOLATION_IMPLEMENTED)
#define PLUGIN_ISOLATION_IMPLEMENTED

/* Included again so that implementation macros defined only before a later include of this
   header reach plugin_registry.h too. */
#include "plugin_registry.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(PLGISO_STATIC)
#define PLGISOI_DEF static
#else
#define PLGISOI_DEF
#endif

#if !defined(PLG_NO_DLOPEN) && (defined(__unix__) || defined(__unix) || defined(__APPLE__))
#define PLGISOI_POSIX 1
#else
#define PLGISOI_POSIX 0
#endif

#if PLGISOI_POSIX
/* All declared by glibc under strict -std=c99 too, except kill (declared below for that case). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __cplusplus
extern "C" {
#endif
extern char **environ; /* POSIX; glibc declares it only for _GNU_SOURCE */
#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
int kill(pid_t pid, int sig); /* strict ISO C mode hides POSIX from <signal.h> */
#endif
#ifdef __cplusplus
}
#endif
#endif

#define PLGISOI_MSG_SIZE 1024
#define PLGISOI_MAX_CRASHES 64 /* crash times remembered for the restart window */

/* Control methods (above PLGISO_METHOD_MAX). */
#define PLGISOI_M_SETUP 0xFFFFFF01u
#define PLGISOI_M_INIT 0xFFFFFF02u
#define PLGISOI_M_START 0xFFFFFF03u
#define PLGISOI_M_STOP 0xFFFFFF04u
#define PLGISOI_M_HEALTH 0xFFFFFF05u
#define PLGISOI_M_SHUTDOWN 0xFFFFFF06u

/* Where the child's plugin should be: what the host asked of the proxy. */
enum { PLGISOI_WANT_LOADED, PLGISOI_WANT_INITIALIZED, PLGISOI_WANT_STARTED };

static void plgisoi_format(char *buf, size_t size, const char *fmt, ...) PLG_PRINTF(3, 4);
static void plgisoi_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || size == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(buf, size, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}

PLGISOI_DEF const char *plgiso_result_string(plgiso_result result)
{
    switch (result) {
#define PLGISOI_RESULT_CASE_(name, value, text)                                                    \
    case name:                                                                                     \
        return #name ": " text;
        PLGISO_RESULT_LIST(PLGISOI_RESULT_CASE_)
#undef PLGISOI_RESULT_CASE_
    default:
        return "PLGISO_ERR_UNKNOWN: unknown result code";
    }
}

PLGISOI_DEF const char *plgiso_version(void)
{
    return PLGISO_VERSION_STRING;
}

PLGISOI_DEF plgiso_desc plgiso_resolved(const plgiso_desc *desc)
{
    plgiso_desc d;
    memset(&d, 0, sizeof d);
    if (desc != NULL)
        d = *desc;
    if (d.config_json == NULL)
        d.config_json = "{}";
    if (d.call_timeout_ms == 0)
        d.call_timeout_ms = 5000;
    if (d.start_timeout_ms == 0)
        d.start_timeout_ms = 10000;
    if (d.backoff_initial_ms == 0)
        d.backoff_initial_ms = 100;
    if (d.backoff_max_ms == 0)
        d.backoff_max_ms = 10000;
    if (d.backoff_max_ms < d.backoff_initial_ms)
        d.backoff_max_ms = d.backoff_initial_ms;
    if (d.max_restarts == 0)
        d.max_restarts = 5;
    if (d.max_restarts > PLGISOI_MAX_CRASHES - 1)
        d.max_restarts = PLGISOI_MAX_CRASHES - 1;
    if (d.restart_window_ms == 0)
        d.restart_window_ms = 60000;
    if (d.max_message_bytes == 0)
        d.max_message_bytes = 1u << 20;
    if (d.max_message_bytes < 4096)
        d.max_message_bytes = 4096; /* room for the handshake and error texts */
    if (d.rss_check_ms == 0)
        d.rss_check_ms = 10;
    return d;
}

#if PLGISOI_POSIX

/* Frame integers are little-endian whatever the host's byte order. */
static void plgisoi_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xffu);
    p[1] = (unsigned char)((v >> 8) & 0xffu);
    p[2] = (unsigned char)((v >> 16) & 0xffu);
    p[3] = (unsigned char)((v >> 24) & 0xffu);
}

static uint32_t plgisoi_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void plgisoi_put64(unsigned char *p, uint64_t v)
{
    plgisoi_put32(p, (uint32_t)(v & 0xffffffffu));
    plgisoi_put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t plgisoi_get64(const unsigned char *p)
{
    return (uint64_t)plgisoi_get32(p) | ((uint64_t)plgisoi_get32(p + 4) << 32);
}

/* ---------------------------------------------------------------------------------------------
   Host side
   ------------------------------------------------------------------------------------------- */

typedef struct plgisoi_errbuf {
    plgiso_plugin *iso;
    struct plgisoi_errbuf *prev, *next;
    char text[PLGISOI_MSG_SIZE];
} plgisoi_errbuf;

struct plgiso_plugin {
    plg_registry *reg;
    plg_plugin *node;           /* the proxy */
    plgiso_desc desc;           /* resolved; the strings below are its copies */
    char *helper, *library, *want_type, *want_name, *config;
    char type[PLG_NAME_MAX + 1], name[PLG_NAME_MAX + 1]; /* from the child's first hello */
    char version[PLG_SEMVER_MAX + 1];
    pthread_mutex_t lock;       /* everything below */
    pthread_mutex_t err_lock;   /* errbufs */
    pthread_key_t err_key;
    plgisoi_errbuf *errbufs;
    int fd;                     /* host end of the socket, -1 without a child */
    pid_t pid;                  /* 0 without a child */
    int phase;                  /* where the child's plugin is: PLGISOI_WANT_* */
    int want;                   /* where the host wants it */
    uint32_t next_call_id;
    int failed;                 /* given up; reason in failure */
    int failure_reported;       /* plg_mark_failed done */
    char failure[PLGISOI_MSG_SIZE];
    char last_crash[PLGISOI_MSG_SIZE];
    uint64_t crash_times[PLGISOI_MAX_CRASHES];
    size_t crash_count;         /* entries in crash_times (a ring, newest at the end) */
    uint32_t backoff_ms;
    uint64_t next_spawn_ms;
    plgiso_stats stats;
    unsigned char *sendbuf;
    size_t sendcap;
    long page_size;
};

static uint64_t plgisoi_now_ms(void)
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

static void plgisoi_errbuf_release(void *value)
{
    plgisoi_errbuf *b = (plgisoi_errbuf *)value;
    plgiso_plugin *iso = b->iso;
    pthread_mutex_lock(&iso->err_lock);
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        iso->errbufs = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&iso->err_lock);
    free(b);
}

/* Records the calling thread's message for iso and returns code. */
static plgiso_result plgisoi_fail(plgiso_plugin *iso, plgiso_result code, const char *fmt, ...)
    PLG_PRINTF(3, 4);
static plgiso_result plgisoi_fail(plgiso_plugin *iso, plgiso_result code, const char *fmt, ...)
{
    plgisoi_errbuf *b;
    va_list ap;
    if (iso == NULL)
        return code;
    b = (plgisoi_errbuf *)pthread_getspecific(iso->err_key);
    if (b == NULL) {
        b = (plgisoi_errbuf *)calloc(1, sizeof *b);
        if (b == NULL)
            return code;
        b->iso = iso;
        if (pthread_setspecific(iso->err_key, b) != 0) {
            free(b);
            return code;
        }
        pthread_mutex_lock(&iso->err_lock);
        b->next = iso->errbufs;
        if (iso->errbufs != NULL)
            iso->errbufs->prev = b;
        iso->errbufs = b;
        pthread_mutex_unlock(&iso->err_lock);
    }
    va_start(ap, fmt);
    if (vsnprintf(b->text, sizeof b->text, fmt, ap) < 0)
        b->text[0] = '\0';
    va_end(ap);
    return code;
}

PLGISOI_DEF const char *plgiso_errmsg(const plgiso_plugin *iso)
{
    plgisoi_errbuf *b;
    if (iso == NULL)
        return "no isolated plugin (NULL)";
    b = (plgisoi_errbuf *)pthread_getspecific(iso->err_key);
    return b != NULL ? b->text : "";
}

static const char *plgisoi_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU (CPU time limit)";
    case SIGPIPE: return "SIGPIPE";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    default: return "a signal";
    }
}

/* Kills (when kill_first) and reaps the child, describing how it ended. */
static void plgisoi_reap(plgiso_plugin *iso, int kill_first, char *how, size_t how_size,
                         int *by_signal)
{
    int status = 0;
    pid_t r;
    *by_signal = 0;
    if (iso->fd >= 0) {
        close(iso->fd);
        iso->fd = -1;
    }
    if (iso->pid <= 0) {
        plgisoi_format(how, how_size, "no child was running");
        return;
    }
    /* Kill only a child that is still ours: once reaped (by us, or by a host that reaps every
       child), its pid may belong to another process. */
    r = kill_first ? waitpid(iso->pid, &status, WNOHANG) : 0;
    if (r == 0) {
        if (kill_first)
            (void)kill(iso->pid, SIGKILL);
        do
            r = waitpid(iso->pid, &status, 0);
        while (r < 0 && errno == EINTR);
    }
    if (r < 0)
        plgisoi_format(how, how_size, "child %ld ended (status unknown: %s)", (long)iso->pid,
                       strerror(errno)); /* SIGCHLD ignored, or reaped by someone else */
    else if (WIFSIGNALED(status)) {
        *by_signal = WTERMSIG(status);
        plgisoi_format(how, how_size, "child %ld was killed by signal %d (%s)", (long)iso->pid,
                       WTERMSIG(status), plgisoi_signal_name(WTERMSIG(status)));
    } else if (WIFEXITED(status))
        plgisoi_format(how, how_size, "child %ld exited with status %d", (long)iso->pid,
                       WEXITSTATUS(status));
    else
        plgisoi_format(how, how_size, "child %ld ended", (long)iso->pid);
    iso->pid = 0;
    iso->phase = PLGISOI_WANT_LOADED;
    iso->stats.pid = 0;
}

/* Resident bytes of the child (0 when unknown). */
static uint64_t plgisoi_rss(plgiso_plugin *iso)
{
    char path[64], text[128];
    unsigned long size = 0, resident = 0;
    int fd;
    ssize_t n;
    plgisoi_format(path, sizeof path, "/proc/%ld/statm", (long)iso->pid);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    if (sscanf(text, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)iso->page_size;
}

/* I/O outcomes below PLGISO_OK's level: */
enum { PLGISOI_IO_OK, PLGISOI_IO_EOF, PLGISOI_IO_TIMEOUT, PLGISOI_IO_ERROR, PLGISOI_IO_RSS };

/* Waits for fd to become ready (events) until deadline, watching the child's memory. */
static int plgisoi_wait(plgiso_plugin *iso, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd pfd;
        uint64_t now = plgisoi_now_ms();
        int wait_ms, rc;
        if (now >= deadline)
            return PLGISOI_IO_TIMEOUT;
        wait_ms = (int)(deadline - now);
        if (iso->desc.limits.rss_bytes != 0 && wait_ms > (int)iso->desc.rss_check_ms)
            wait_ms = (int)iso->desc.rss_check_ms;
        pfd.fd = iso->fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, wait_ms);
        if (rc < 0 && errno != EINTR)
            return PLGISOI_IO_ERROR;
        if (rc > 0)
            return PLGISOI_IO_OK;
        if (iso->desc.limits.rss_bytes != 0 && plgisoi_rss(iso) > iso->desc.limits.rss_bytes)
            return PLGISOI_IO_RSS;
    }
}

static int plgisoi_send_all(plgiso_plugin *iso, const unsigned char *buf, size_t len,
                            uint64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(iso->fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = plgisoi_wait(iso, POLLOUT, deadline);
            if (w != PLGISOI_IO_OK)
                return w;
            continue;
        }
        return (n < 0 && (errno == EPIPE || errno == ECONNRESET)) ? PLGISOI_IO_EOF : PLGISOI_IO_ERROR;
    }
    return PLGISOI_IO_OK;
}

/* Reads exactly len bytes (buf NULL: discards them). */
static int plgisoi_recv_all(plgiso_plugin *iso, unsigned char *buf, size_t len, uint64_t deadline)
{
    unsigned char sink[4096];
    size_t done = 0;
    while (done < len) {
        size_t want = len - done;
        ssize_t n;
        if (buf == NULL && want > sizeof sink)
            want = sizeof sink;
        n = recv(iso->fd, buf != NULL ? buf + done : sink, want, MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            return PLGISOI_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = plgisoi_wait(iso, POLLIN, deadline);
            if (w != PLGISOI_IO_OK)
                return w;
            continue;
        }
        return errno == ECONNRESET ? PLGISOI_IO_EOF : PLGISOI_IO_ERROR;
    }
    return PLGISOI_IO_OK;
}

/* Remembers a crash at `now`; gives up when more than max_restarts fell within the window. */
static void plgisoi_note_crash(plgiso_plugin *iso, const char *what)
{
    uint64_t now = plgisoi_now_ms();
    size_t i, recent = 0;
    iso->stats.crashes++;
    plgisoi_format(iso->last_crash, sizeof iso->last_crash, "%s", what);
    if (iso->crash_count == PLGISOI_MAX_CRASHES) {
        memmove(iso->crash_times, iso->crash_times + 1,
                (PLGISOI_MAX_CRASHES - 1) * sizeof iso->crash_times[0]);
        iso->crash_count--;
    }
    iso->crash_times[iso->crash_count++] = now;
    for (i = 0; i < iso->crash_count; i++)
        if (now - iso->crash_times[i] <= iso->desc.restart_window_ms)
            recent++;
    if (recent > iso->desc.max_restarts) {
        iso->failed = 1;
        plgisoi_format(iso->failure, sizeof iso->failure,
                       "crashed %lu times within %lu ms (more than max_restarts %lu); last: %s",
                       (unsigned long)recent, (unsigned long)iso->desc.restart_window_ms,
                       (unsigned long)iso->desc.max_restarts, what);
        return;
    }
    iso->next_spawn_ms = now + iso->backoff_ms;
    iso->backoff_ms = iso->backoff_ms * 2 > iso->desc.backoff_max_ms ? iso->desc.backoff_max_ms
                                                                     : iso->backoff_ms * 2;
}

/* The child is gone or must go: reap it, classify, remember. Returns the code for the caller and
   writes the message. `during` names the request. */
static plgiso_result plgisoi_child_lost(plgiso_plugin *iso, int io, const char *during,
                                        char *msg, size_t msg_size)
{
    char how[256];
    int sig = 0;
    plgiso_result code;
    if (io == PLGISOI_IO_TIMEOUT) {
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        iso->stats.timeouts++;
        plgisoi_format(msg, msg_size, "%s: no reply in time; the child was killed (%s)", during,
                       how);
        code = PLGISO_ERR_TIMEOUT;
    } else if (io == PLGISOI_IO_RSS) {
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size,
                       "%s: the child used more than its memory limit of %lu bytes (rss_bytes); "
                       "it was killed (%s)",
                       during, (unsigned long)iso->desc.limits.rss_bytes, how);
        code = PLGISO_ERR_LIMIT;
    } else if (io == PLGISOI_IO_EOF) {
        /* The socket closed: normally the child died. Kill it in case it only closed the socket. */
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "%s: the child died: %s", during, how);
        code = sig == SIGXCPU ? PLGISO_ERR_LIMIT : PLGISO_ERR_CRASHED;
    } else {
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "%s: %s; the child was killed (%s)", during,
                       io == PLGISOI_IO_ERROR ? "socket error" : "protocol error", how);
        code = io == PLGISOI_IO_ERROR ? PLGISO_ERR_CRASHED : PLGISO_ERR_PROTOCOL;
    }
    plgisoi_note_crash(iso, msg);
    return code;
}

#define PLGISOI_IO_PROTOCOL 100

/* One request and its reply. The reply payload goes to out (capacity cap) when status is 0,
   else to err (its text, truncated). On a transport failure the child is reaped and the crash
   noted; the message is in msg. */
static plgiso_result plgisoi_roundtrip(plgiso_plugin *iso, uint32_t method, const void *in,
                                       size_t in_len, void *out, size_t cap, size_t *out_len,
                                       int32_t *status, char *msg, size_t msg_size,
                                       uint32_t timeout_ms, const char *during)
{
    unsigned char hdr[PLGISO_FRAME_HEADER_SIZE];
    uint64_t deadline;
    uint32_t id, len;
    int io;
    *status = 0;
    if (out_len != NULL)
        *out_len = 0;
    if (iso->sendcap < PLGISO_FRAME_HEADER_SIZE + in_len) {
        unsigned char *b = (unsigned char *)realloc(iso->sendbuf, PLGISO_FRAME_HEADER_SIZE + in_len);
        if (b == NULL) {
            plgisoi_format(msg, msg_size, "%s: out of memory", during);
            return PLGISO_ERR_NO_MEMORY;
        }
        iso->sendbuf = b;
        iso->sendcap = PLGISO_FRAME_HEADER_SIZE + in_len;
    }
    id = ++iso->next_call_id;
    plgisoi_put32(iso->sendbuf, (uint32_t)in_len);
    plgisoi_put32(iso->sendbuf + 4, id);
    plgisoi_put32(iso->sendbuf + 8, method);
    plgisoi_put32(iso->sendbuf + 12, 0);
    if (in_len > 0)
        memcpy(iso->sendbuf + PLGISO_FRAME_HEADER_SIZE, in, in_len);
    deadline = plgisoi_now_ms() + timeout_ms;
    io = plgisoi_send_all(iso, iso->sendbuf, PLGISO_FRAME_HEADER_SIZE + in_len, deadline);
    if (io == PLGISOI_IO_OK)
        io = plgisoi_recv_all(iso, hdr, sizeof hdr, deadline);
    if (io != PLGISOI_IO_OK)
        return plgisoi_child_lost(iso, io, during, msg, msg_size);
    len = plgisoi_get32(hdr);
    *status = (int32_t)plgisoi_get32(hdr + 12);
    if (plgisoi_get32(hdr + 4) != id || plgisoi_get32(hdr + 8) != method ||
        len > iso->desc.max_message_bytes) {
        plgiso_result r = plgisoi_child_lost(iso, PLGISOI_IO_PROTOCOL, during, msg, msg_size);
        size_t used = strlen(msg);
        plgisoi_format(msg + used, msg_size - used,
                       " [reply call %lu method 0x%lx length %lu; expected call %lu method 0x%lx, "
                       "length at most %lu]",
                       (unsigned long)plgisoi_get32(hdr + 4), (unsigned long)plgisoi_get32(hdr + 8),
                       (unsigned long)len, (unsigned long)id, (unsigned long)method,
                       (unsigned long)iso->desc.max_message_bytes);
        return r;
    }
    if (*status != 0) {
        /* An error reply: its payload is a text. */
        char text[PLGISOI_MSG_SIZE / 2];
        size_t keep = len < sizeof text - 1 ? len : sizeof text - 1;
        io = plgisoi_recv_all(iso, (unsigned char *)text, keep, deadline);
        if (io == PLGISOI_IO_OK)
            io = plgisoi_recv_all(iso, NULL, len - keep, deadline);
        if (io != PLGISOI_IO_OK)
            return plgisoi_child_lost(iso, io, during, msg, msg_size);
        text[keep] = '\0';
        plgisoi_format(msg, msg_size, "%s", text);
        return PLGISO_OK;
    }
    if (out_len != NULL)
        *out_len = len;
    if (len > cap) {
        io = plgisoi_recv_all(iso, NULL, len, deadline);
        if (io != PLGISOI_IO_OK)
            return plgisoi_child_lost(iso, io, during, msg, msg_size);
        plgisoi_format(msg, msg_size, "%s: the reply has %lu bytes, the output buffer %lu", during,
                       (unsigned long)len, (unsigned long)cap);
        return PLGISO_ERR_TOO_LARGE;
    }
    io = plgisoi_recv_all(iso, (unsigned char *)out, len, deadline);
    if (io != PLGISOI_IO_OK)
        return plgisoi_child_lost(iso, io, during, msg, msg_size);
    return PLGISO_OK;
}

/* Starts a child and performs the setup handshake. Does not touch the crash record. */
static plgiso_result plgisoi_spawn(plgiso_plugin *iso, char *msg, size_t msg_size)
{
    int sv[2], rc;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    char *argv[3], child_arg[] = PLGISO_CHILD_ARG;
    unsigned char *setup, hello[2 * (PLG_NAME_MAX + 1) + PLG_SEMVER_MAX + 1 + 512];
    size_t setup_len, hello_len = 0, off;
    int32_t status = 0;
    plgiso_result r;
    const char *t, *n, *v;
    size_t name_at, version_at;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        plgisoi_format(msg, msg_size, "socketpair: %s", strerror(errno));
        return PLGISO_ERR_SPAWN;
    }
    if (sv[1] == PLGISO_CHILD_FD) { /* dup2 onto itself would keep close-on-exec */
        int d = dup(sv[1]);
        if (d < 0) {
            plgisoi_format(msg, msg_size, "dup: %s", strerror(errno));
            close(sv[0]);
            close(sv[1]);
            return PLGISO_ERR_SPAWN;
        }
        (void)fcntl(d, F_SETFD, FD_CLOEXEC);
        close(sv[1]);
        sv[1] = d;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        plgisoi_format(msg, msg_size, "posix_spawn_file_actions_init failed");
        close(sv[0]);
        close(sv[1]);
        return PLGISO_ERR_SPAWN;
    }
    rc = posix_spawn_file_actions_adddup2(&fa, sv[1], PLGISO_CHILD_FD);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    argv[0] = iso->helper;
    argv[1] = child_arg;
    argv[2] = NULL;
    if (rc == 0)
        rc = posix_spawn(&pid, iso->helper, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        plgisoi_format(msg, msg_size, "cannot run the helper %s: %s", iso->helper, strerror(rc));
        return PLGISO_ERR_SPAWN;
    }
    iso->fd = sv[0];
    iso->pid = pid;
    iso->phase = PLGISOI_WANT_LOADED;
    iso->stats.pid = (long)pid;
    iso->stats.spawns++;

    /* SETUP: version, max message, limits, then library, type and name. */
    off = 4 + 4 + 8 + 8 + 4 + 4;
    setup_len = off + strlen(iso->library) + 1 + strlen(iso->want_type) + 1 +
                strlen(iso->want_name) + 1;
    setup = (unsigned char *)malloc(setup_len);
    if (setup == NULL) {
        int sig;
        char how[128];
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "out of memory");
        return PLGISO_ERR_NO_MEMORY;
    }
    plgisoi_put32(setup, PLGISO_PROTOCOL_VERSION);
    plgisoi_put32(setup + 4, iso->desc.max_message_bytes);
    plgisoi_put64(setup + 8, iso->desc.limits.address_space_bytes);
    plgisoi_put64(setup + 16, iso->desc.limits.rss_bytes);
    plgisoi_put32(setup + 24, iso->desc.limits.cpu_seconds);
    plgisoi_put32(setup + 28, iso->desc.limits.open_files);
    memcpy(setup + off, iso->library, strlen(iso->library) + 1);
    off += strlen(iso->library) + 1;
    memcpy(setup + off, iso->want_type, strlen(iso->want_type) + 1);
    off += strlen(iso->want_type) + 1;
    memcpy(setup + off, iso->want_name, strlen(iso->want_name) + 1);
    r = plgisoi_roundtrip(iso, PLGISOI_M_SETUP, setup, setup_len, hello, sizeof hello - 1,
                          &hello_len, &status, msg, msg_size, iso->desc.start_timeout_ms,
                          "starting the child");
    free(setup);
    if (r != PLGISO_OK)
        return r == PLGISO_ERR_TOO_LARGE ? PLGISO_ERR_PROTOCOL : r;
    if (status != 0) {
        char text[PLGISOI_MSG_SIZE];
        int sig;
        char how[128];
        plgisoi_format(text, sizeof text, "%s", msg);
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "%s", text);
        return PLGISO_ERR_LOAD;
    }
    hello[hello_len] = '\0'; /* type, name, version, description, each NUL-terminated */
    t = (const char *)hello;
    name_at = strlen(t) + 1;
    version_at = name_at < hello_len ? name_at + strlen(t + name_at) + 1 : hello_len;
    n = t + (name_at < hello_len ? name_at : hello_len);
    v = t + (version_at < hello_len ? version_at : hello_len);
    if (version_at >= hello_len || strlen(t) > PLG_NAME_MAX || strlen(n) > PLG_NAME_MAX ||
        strlen(v) > PLG_SEMVER_MAX) {
        int sig;
        char how[128];
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "malformed hello from the child");
        return PLGISO_ERR_PROTOCOL;
    }
    if (iso->type[0] == '\0') {
        plgisoi_format(iso->type, sizeof iso->type, "%s", t);
        plgisoi_format(iso->name, sizeof iso->name, "%s", n);
        plgisoi_format(iso->version, sizeof iso->version, "%s", v);
    } else if (strcmp(iso->type, t) != 0 || strcmp(iso->name, n) != 0) {
        int sig;
        char how[128];
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "the library now provides %s/%s instead of %s/%s", t, n,
                       iso->type, iso->name);
        return PLGISO_ERR_LOAD;
    }
    return PLGISO_OK;
}

/* A lifecycle request to the child. `status`/`msg` carry the plugin's own answer. */
static plgiso_result plgisoi_control(plgiso_plugin *iso, uint32_t method, const char *during,
                                     const void *in, size_t in_len, void *out, size_t cap,
                                     size_t *out_len, int32_t *status, char *msg, size_t msg_size)
{
    return plgisoi_roundtrip(iso, method, in, in_len, out, cap, out_len, status, msg, msg_size,
                             iso->desc.start_timeout_ms, during);
}

/* Brings a fresh child to what the host wants: spawn, init, start. A failure is a crash. */
static plgiso_result plgisoi_restart(plgiso_plugin *iso, char *msg, size_t msg_size)
{
    int32_t status = 0;
    plgiso_result r = plgisoi_spawn(iso, msg, msg_size);
    if (r == PLGISO_OK && iso->want >= PLGISOI_WANT_INITIALIZED) {
        r = plgisoi_control(iso, PLGISOI_M_INIT, "restart: init", iso->config,
                            strlen(iso->config), NULL, 0, NULL, &status, msg, msg_size);
        if (r == PLGISO_OK && status == 0)
            iso->phase = PLGISOI_WANT_INITIALIZED;
    }
    if (r == PLGISO_OK && status == 0 && iso->want == PLGISOI_WANT_STARTED) {
        r = plgisoi_control(iso, PLGISOI_M_START, "restart: start", NULL, 0, NULL, 0, NULL,
                            &status, msg, msg_size);
        if (r == PLGISO_OK && status == 0)
            iso->phase = PLGISOI_WANT_STARTED;
    }
    if (r == PLGISO_OK && status != 0) {
        char text[PLGISOI_MSG_SIZE];
        int sig;
        char how[128];
        plgisoi_format(text, sizeof text, "restart: the plugin refused (%s): %s",
                       plg_result_string((plg_result)status), msg);
        plgisoi_reap(iso, 1, how, sizeof how, &sig);
        plgisoi_format(msg, msg_size, "%s", text);
        plgisoi_note_crash(iso, msg);
        return PLGISO_ERR_CRASHED;
    }
    if (r == PLGISO_ERR_SPAWN || r == PLGISO_ERR_LOAD || r == PLGISO_ERR_NO_MEMORY) {
        if (iso->pid > 0) {
            int sig;
            char how[128];
            plgisoi_reap(iso, 1, how, sizeof how, &sig);
        }
        plgisoi_note_crash(iso, msg);
    }
    /* Transport failures were noted by plgisoi_child_lost. */
    return r;
}

/* Makes sure a child in the wanted state is there (iso->lock held). */
static plgiso_result plgisoi_ensure(plgiso_plugin *iso, char *msg, size_t msg_size)
{
    uint64_t now;
    if (iso->pid > 0) {
        char how[256];
        int status = 0, sig = 0;
        pid_t w = waitpid(iso->pid, &status, WNOHANG);
        if (w == 0 && iso->fd >= 0)
            return PLGISO_OK; /* alive */
        if (w == iso->pid) { /* it died between requests; reaped now */
            if (WIFSIGNALED(status))
                plgisoi_format(how, sizeof how, "child %ld was killed by signal %d (%s)",
                               (long)iso->pid, WTERMSIG(status),
                               plgisoi_signal_name(WTERMSIG(status)));
            else
                plgisoi_format(how, sizeof how, "child %ld exited with status %d", (long)iso->pid,
                               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            iso->pid = 0;
        } else if (w == 0) {
            plgisoi_reap(iso, 1, how, sizeof how, &sig);
        } else {
            plgisoi_format(how, sizeof how, "child %ld is gone (status unknown: %s)",
                           (long)iso->pid, strerror(errno));
            iso->pid = 0;
        }
        if (iso->fd >= 0) {
            close(iso->fd);
            iso->fd = -1;
        }
        iso->stats.pid = 0;
        iso->phase = PLGISOI_WANT_LOADED;
        plgisoi_format(msg, msg_size, "between calls: %s", how);
        plgisoi_note_crash(iso, msg);
    }
    if (iso->failed) {
        plgisoi_format(msg, msg_size, "%s/%s is failed: %s", iso->type, iso->name, iso->failure);
        return PLGISO_ERR_FAILED;
    }
    now = plgisoi_now_ms();
    if (now < iso->next_spawn_ms) {
        plgisoi_format(msg, msg_size, "%s/%s is restarting in %lu ms after: %s", iso->type,
                       iso->name, (unsigned long)(iso->next_spawn_ms - now), iso->last_crash);
        return PLGISO_ERR_UNAVAILABLE;
    }
    return plgisoi_restart(iso, msg, msg_size);
}

/* The calling thread reports a transition to failed to the registry, outside iso->lock (the
   proxy's lock comes first in the lock order, as in its callbacks). */
static void plgisoi_report_failure(plgiso_plugin *iso)
{
    char reason[PLGISOI_MSG_SIZE];
    int report = 0;
    pthread_mutex_lock(&iso->lock);
    if (iso->failed && !iso->failure_reported) {
        iso->failure_reported = 1;
        report = 1;
        plgisoi_format(reason, sizeof reason, "%s", iso->failure);
    }
    pthread_mutex_unlock(&iso->lock);
    if (report)
        (void)plg_mark_failed(iso->reg, iso->node, "%s", reason);
}

static plgiso_result plgisoi_call(plgiso_plugin *iso, uint32_t method, const void *in,
                                  size_t in_len, void *out, size_t cap, size_t *out_len,
                                  plg_result *plugin_code)
{
    char msg[PLGISOI_MSG_SIZE], during[64];
    plgiso_result r;
    int32_t status = 0;
    *plugin_code = PLG_OK;
    if (out_len != NULL)
        *out_len = 0;
    if (iso == NULL)
        return PLGISO_ERR_INVALID_ARGUMENT;
    if (out_len == NULL || (in == NULL && in_len > 0) || (out == NULL && cap > 0))
        return plgisoi_fail(iso, PLGISO_ERR_INVALID_ARGUMENT,
                            "plgiso_call: out_len is required, and in/out when their size is not 0");
    if (method > PLGISO_METHOD_MAX)
        return plgisoi_fail(iso, PLGISO_ERR_INVALID_ARGUMENT,
                            "plgiso_call: method 0x%lx is reserved (user methods are 0 to 0x%lx)",
                            (unsigned long)method, (unsigned long)PLGISO_METHOD_MAX);
    if (in_len > iso->desc.max_message_bytes)
        return plgisoi_fail(iso, PLGISO_ERR_TOO_LARGE,
                            "plgiso_call: the request has %lu bytes, max_message_bytes is %lu",
                            (unsigned long)in_len, (unsigned long)iso->desc.max_message_bytes);
    pthread_mutex_lock(&iso->lock);
    if (iso->want != PLGISOI_WANT_STARTED && !iso->failed) {
        pthread_mutex_unlock(&iso->lock);
        return plgisoi_fail(iso, PLGISO_ERR_INVALID_STATE, "%s/%s is not started (%s)", iso->type,
                            iso->name, plg_state_name(plg_plugin_state(iso->node)));
    }
    r = plgisoi_ensure(iso, msg, sizeof msg);
    if (r == PLGISO_OK) {
        plgisoi_format(during, sizeof during, "method %lu", (unsigned long)method);
        r = plgisoi_roundtrip(iso, method, in, in_len, out, cap, out_len, &status, msg,
                              sizeof msg, iso->desc.call_timeout_ms, during);
        if (r == PLGISO_OK || r == PLGISO_ERR_TOO_LARGE) {
            iso->stats.calls++;
            iso->backoff_ms = iso->desc.backoff_initial_ms; /* it works again */
        }
    }
    pthread_mutex_unlock(&iso->lock);
    if (r == PLGISO_OK && status != 0) {
        *plugin_code = (plg_result)status;
        return plgisoi_fail(iso, PLGISO_ERR_PLUGIN, "%s/%s method %lu returned %s%s%s", iso->type,
                            iso->name, (unsigned long)method,
                            plg_result_string((plg_result)status), msg[0] ? ": " : "", msg);
    }
    if (r == PLGISO_OK)
        return PLGISO_OK;
    plgisoi_report_failure(iso);
    return plgisoi_fail(iso, r, "%s/%s: %s", iso->type, iso->name, msg);
}

PLGISOI_DEF plgiso_result plgiso_call(plgiso_plugin *iso, uint32_t method, const void *in,
                                      size_t in_len, void *out, size_t out_capacity,
                                      size_t *out_len)
{
    plg_result code;
    return plgisoi_call(iso, method, in, in_len, out, out_capacity, out_len, &code);
}

/* The proxy's vtable: the same call, with the outcome as a plg_result. */
static plg_result plgisoi_proxy_call(void *instance, uint32_t method, const void *in,
                                     size_t in_len, void *out, size_t out_capacity,
                                     size_t *out_len)
{
    plg_result code;
    size_t dummy;
    plgiso_result r = plgisoi_call((plgiso_plugin *)instance, method, in, in_len, out,
                                   out_capacity, out_len != NULL ? out_len : &dummy, &code);
    switch (r) {
    case PLGISO_OK: return PLG_OK;
    case PLGISO_ERR_PLUGIN: return code;
    case PLGISO_ERR_INVALID_ARGUMENT: return PLG_ERR_INVALID_ARGUMENT;
    case PLGISO_ERR_NO_MEMORY: return PLG_ERR_NO_MEMORY;
    case PLGISO_ERR_TIMEOUT: return PLG_ERR_TIMEOUT;
    case PLGISO_ERR_TOO_LARGE: return PLG_ERR_LIMIT;
    case PLGISO_ERR_INVALID_STATE: return PLG_ERR_INVALID_STATE;
    default: return PLG_ERR_PLUGIN_FAILED; /* crashed, limit, unavailable, failed, protocol */
    }
}

static const plgiso_vtable plgisoi_proxy_vtable = {plgisoi_proxy_call};

/* ---- the proxy's lifecycle callbacks (the registry holds the proxy's lock) ---- */

/* A lifecycle request while the registry drives the proxy. */
static plg_result plgisoi_lifecycle(plg_plugin *self, plgiso_plugin *iso, uint32_t method,
                                    const char *what, const void *in, size_t in_len, int reached)
{
    char msg[PLGISOI_MSG_SIZE];
    int32_t status = 0;
    plgiso_result r;
    pthread_mutex_lock(&iso->lock);
    if ((iso->pid <= 0 || iso->fd < 0) && method == PLGISOI_M_STOP) {
        /* Nothing runs: stopped already. A later start spawns, inits and starts a child. */
        iso->phase = PLGISOI_WANT_LOADED;
        iso->want = reached;
        pthread_mutex_unlock(&iso->lock);
        return PLG_OK;
    }
    if (iso->pid <= 0 || iso->fd < 0) {
        if (iso->failed) {
            plg_plugin_set_error(self, "%s: %s", what, iso->failure);
            pthread_mutex_unlock(&iso->lock);
            return PLG_ERR_PLUGIN_FAILED;
        }
        /* The child died: start a new one (to the phase before this request). */
        r = plgisoi_spawn(iso, msg, sizeof msg);
        if (r == PLGISO_OK && method != PLGISOI_M_INIT && iso->phase < PLGISOI_WANT_INITIALIZED) {
            r = plgisoi_control(iso, PLGISOI_M_INIT, "init", iso->config, strlen(iso->config),
                                NULL, 0, NULL, &status, msg, sizeof msg);
            if (r == PLGISO_OK && status == 0)
                iso->phase = PLGISOI_WANT_INITIALIZED;
        }
        if (r != PLGISO_OK || status != 0) {
            plg_plugin_set_error(self, "%s: the child could not be restarted: %s", what, msg);
            pthread_mutex_unlock(&iso->lock);
            return PLG_ERR_PLUGIN_FAILED;
        }
    }
    r = plgisoi_control(iso, method, what, in, in_len, NULL, 0, NULL, &status, msg, sizeof msg);
    if (r != PLGISO_OK) {
        plg_plugin_set_error(self, "%s in the child failed: %s", what, msg);
        pthread_mutex_unlock(&iso->lock);
        return PLG_ERR_PLUGIN_FAILED;
    }
    if (status != 0) {
        plg_plugin_set_error(self, "%s", msg);
        pthread_mutex_unlock(&iso->lock);
        return (plg_result)status;
    }
    iso->phase = reached;
    iso->want = reached;
    pthread_mutex_unlock(&iso->lock);
    return PLG_OK;
}

static plg_result plgisoi_proxy_init(plg_plugin *self, const plg_config *config, void **instance)
{
    plgiso_plugin *iso = (plgiso_plugin *)plg_plugin_user_data(self);
    plg_result r;
    (void)config;
    r = plgisoi_lifecycle(self, iso, PLGISOI_M_INIT, "init", iso->config, strlen(iso->config),
                          PLGISOI_WANT_INITIALIZED);
    if (r == PLG_OK)
        *instance = iso;
    return r;
}

static plg_result plgisoi_proxy_start(plg_plugin *self, void *instance)
{
    return plgisoi_lifecycle(self, (plgiso_plugin *)instance, PLGISOI_M_START, "start", NULL, 0,
                             PLGISOI_WANT_STARTED);
}

static plg_result plgisoi_proxy_stop(plg_plugin *self, void *instance)
{
    return plgisoi_lifecycle(self, (plgiso_plugin *)instance, PLGISOI_M_STOP, "stop", NULL, 0,
                             PLGISOI_WANT_INITIALIZED);
}

/* Asks the child to shut down and waits up to the start timeout for it to exit. */
static void plgisoi_end_child(plgiso_plugin *iso)
{
    char msg[PLGISOI_MSG_SIZE], how[128];
    int32_t status = 0;
    int sig;
    uint64_t deadline;
    if (iso->pid <= 0)
        return;
    if (iso->fd >= 0 &&
        plgisoi_control(iso, PLGISOI_M_SHUTDOWN, "shutdown", NULL, 0, NULL, 0, NULL, &status, msg,
                        sizeof msg) != PLGISO_OK)
        return; /* the child was lost and reaped */
    if (iso->fd >= 0) {
        close(iso->fd); /* the child exits when it sees the end of the stream */
        iso->fd = -1;
    }
    deadline = plgisoi_now_ms() + iso->desc.start_timeout_ms;
    while (plgisoi_now_ms() < deadline) {
        int st;
        pid_t r = waitpid(iso->pid, &st, WNOHANG);
        if (r == iso->pid || (r < 0 && errno != EINTR)) {
            iso->pid = 0;
            iso->stats.pid = 0;
            iso->phase = PLGISOI_WANT_LOADED;
            return;
        }
        (void)poll(NULL, 0, 1);
    }
    plgisoi_reap(iso, 1, how, sizeof how, &sig);
}

static void plgisoi_proxy_shutdown(plg_plugin *self, void *instance)
{
    plgiso_plugin *iso = (plgiso_plugin *)instance;
    (void)self;
    pthread_mutex_lock(&iso->lock);
    plgisoi_end_child(iso);
    iso->want = PLGISOI_WANT_LOADED;
    pthread_mutex_unlock(&iso->lock);
}

static plg_health_status plgisoi_proxy_health(plg_plugin *self, void *instance, char *message,
                                              size_t size)
{
    plgiso_plugin *iso = (plgiso_plugin *)instance;
    char msg[PLGISOI_MSG_SIZE];
    unsigned char reply[4 + 512];
    size_t len = 0;
    int32_t status = 0;
    plgiso_result r;
    plg_health_status h;
    (void)self;
    pthread_mutex_lock(&iso->lock);
    if (iso->failed) {
        plgisoi_format(message, size, "failed: %s", iso->failure);
        pthread_mutex_unlock(&iso->lock);
        return PLG_HEALTH_UNHEALTHY;
    }
    if (iso->pid <= 0) {
        uint64_t now = plgisoi_now_ms();
        plgisoi_format(message, size, "child not running (restart in %lu ms); last crash: %s",
                       (unsigned long)(iso->next_spawn_ms > now ? iso->next_spawn_ms - now : 0),
                       iso->last_crash);
        pthread_mutex_unlock(&iso->lock);
        return PLG_HEALTH_DEGRADED;
    }
    r = plgisoi_roundtrip(iso, PLGISOI_M_HEALTH, NULL, 0, reply, sizeof reply - 1, &len, &status,
                          msg, sizeof msg, iso->desc.call_timeout_ms, "health");
    pthread_mutex_unlock(&iso->lock);
    if (r != PLGISO_OK || status != 0 || len < 4) {
        plgisoi_format(message, size, "health request failed: %s", msg);
        return PLG_HEALTH_UNHEALTHY;
    }
    reply[len] = '\0';
    h = (plg_health_status)plgisoi_get32(reply);
    plgisoi_format(message, size, "%s", (const char *)reply + 4);
    return h;
}

/* ---- open, close, stats ---- */

static char *plgisoi_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = (char *)malloc(n);
    if (c != NULL)
        memcpy(c, s, n);
    return c;
}

static void plgisoi_free(plgiso_plugin *iso)
{
    plgisoi_errbuf *b, *next;
    pthread_key_delete(iso->err_key);
    for (b = iso->errbufs; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    pthread_mutex_destroy(&iso->err_lock);
    pthread_mutex_destroy(&iso->lock);
    free(iso->helper);
    free(iso->library);
    free(iso->want_type);
    free(iso->want_name);
    free(iso->config);
    free(iso->sendbuf);
    free(iso);
}

PLGISOI_DEF plgiso_result plgiso_open(plg_registry *reg, const plgiso_desc *desc,
                                      plgiso_plugin **out)
{
    plgiso_desc d;
    plgiso_plugin *iso;
    plg_descriptor pd;
    char msg[PLGISOI_MSG_SIZE], description[PLGISOI_MSG_SIZE];
    plgiso_result r;
    if (out != NULL)
        *out = NULL;
    if (desc != NULL && desc->open_message != NULL && desc->open_message_size > 0)
        desc->open_message[0] = '\0';
#define PLGISOI_OPEN_FAIL_(code, ...)                                                              \
    do {                                                                                           \
        if (desc != NULL)                                                                          \
            plgisoi_format(desc->open_message, desc->open_message_size, __VA_ARGS__);              \
        return code;                                                                               \
    } while (0)
    if (reg == NULL || desc == NULL || out == NULL)
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_INVALID_ARGUMENT, "plgiso_open: %s is NULL",
                           reg == NULL ? "reg" : desc == NULL ? "desc" : "out");
    if (desc->helper_path == NULL || desc->library_path == NULL)
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_INVALID_ARGUMENT,
                           "plgiso_open: %s is required%s",
                           desc->helper_path == NULL ? "helper_path" : "library_path",
                           desc->helper_path == NULL
                               ? " (a program whose main calls plgiso_child_main; "
                                 "\"/proc/self/exe\" when it is this one)"
                               : "");
    d = plgiso_resolved(desc);
    iso = (plgiso_plugin *)calloc(1, sizeof *iso);
    if (iso == NULL)
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_NO_MEMORY, "plgiso_open: out of memory");
    iso->fd = -1;
    iso->reg = reg;
    iso->desc = d;
    iso->backoff_ms = d.backoff_initial_ms;
    iso->page_size = sysconf(_SC_PAGESIZE);
    if (iso->page_size <= 0)
        iso->page_size = 4096;
    iso->helper = plgisoi_strdup(d.helper_path);
    iso->library = plgisoi_strdup(d.library_path);
    iso->want_type = plgisoi_strdup(d.type != NULL ? d.type : "");
    iso->want_name = plgisoi_strdup(d.name != NULL ? d.name : "");
    iso->config = plgisoi_strdup(d.config_json);
    if (iso->helper == NULL || iso->library == NULL || iso->want_type == NULL ||
        iso->want_name == NULL || iso->config == NULL) {
        free(iso->helper);
        free(iso->library);
        free(iso->want_type);
        free(iso->want_name);
        free(iso->config);
        free(iso);
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_NO_MEMORY, "plgiso_open: out of memory");
    }
    iso->desc.helper_path = iso->helper;
    iso->desc.library_path = iso->library;
    iso->desc.type = d.type != NULL ? iso->want_type : NULL;
    iso->desc.name = d.name != NULL ? iso->want_name : NULL;
    iso->desc.config_json = iso->config;
    iso->desc.open_message = NULL;
    iso->desc.open_message_size = 0;
    if (pthread_mutex_init(&iso->lock, NULL) != 0 || pthread_mutex_init(&iso->err_lock, NULL) != 0 ||
        pthread_key_create(&iso->err_key, plgisoi_errbuf_release) != 0) {
        /* Resources of a half-made object; the mutexes need no destruction on Linux, but POSIX
           says undefined only for destroying uninitialised ones, so keep it simple and leak
           nothing but them. */
        free(iso->helper);
        free(iso->library);
        free(iso->want_type);
        free(iso->want_name);
        free(iso->config);
        free(iso);
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_INTERNAL, "plgiso_open: cannot create a mutex or key");
    }
    pthread_mutex_lock(&iso->lock);
    r = plgisoi_spawn(iso, msg, sizeof msg);
    pthread_mutex_unlock(&iso->lock);
    if (r != PLGISO_OK) {
        plgisoi_free(iso);
        PLGISOI_OPEN_FAIL_(r, "%s: %s", d.library_path, msg);
    }
    plgisoi_format(description, sizeof description, "isolated in a child process (%s)",
                   d.library_path);
    memset(&pd, 0, sizeof pd);
    pd.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    pd.struct_size = (uint32_t)sizeof pd;
    pd.type = iso->type;
    pd.name = iso->name;
    pd.version = iso->version;
    pd.description = description;
    pd.init = plgisoi_proxy_init;
    pd.start = plgisoi_proxy_start;
    pd.stop = plgisoi_proxy_stop;
    pd.shutdown = plgisoi_proxy_shutdown;
    pd.health = plgisoi_proxy_health;
    pd.provides.id = PLGISO_INTERFACE_ID;
    pd.provides.abi_version = PLGISO_VTABLE_ABI_VERSION;
    pd.provides.struct_size = (uint32_t)sizeof(plgiso_vtable);
    pd.provides.vtable = &plgisoi_proxy_vtable;
    pd.user_data = iso;
    if (plg_register(reg, &pd, &iso->node) != PLG_OK) {
        char inner[PLGISOI_MSG_SIZE / 2];
        plgisoi_format(inner, sizeof inner, "%s", plg_errmsg(reg));
        pthread_mutex_lock(&iso->lock);
        plgisoi_end_child(iso);
        pthread_mutex_unlock(&iso->lock);
        plgisoi_free(iso);
        PLGISOI_OPEN_FAIL_(PLGISO_ERR_REGISTRY, "%s: cannot register the proxy: %s",
                           d.library_path, inner);
    }
#undef PLGISOI_OPEN_FAIL_
    *out = iso;
    return PLGISO_OK;
}

PLGISOI_DEF plg_plugin *plgiso_node(const plgiso_plugin *iso)
{
    return iso != NULL ? iso->node : NULL;
}

PLGISOI_DEF plgiso_result plgiso_stats_get(plgiso_plugin *iso, plgiso_stats *out)
{
    uint64_t now;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (iso == NULL || out == NULL)
        return PLGISO_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&iso->lock);
    *out = iso->stats;
    out->failed = iso->failed;
    now = plgisoi_now_ms();
    out->next_restart_ms =
        iso->pid <= 0 && iso->next_spawn_ms > now ? (uint32_t)(iso->next_spawn_ms - now) : 0;
    pthread_mutex_unlock(&iso->lock);
    return PLGISO_OK;
}

PLGISOI_DEF void plgiso_close(plgiso_plugin *iso)
{
    plg_state s;
    if (iso == NULL)
        return;
    s = plg_plugin_state(iso->node);
    if (s == PLG_STATE_STARTED)
        (void)plg_stop(iso->reg, iso->node);
    s = plg_plugin_state(iso->node);
    if (s == PLG_STATE_INITIALIZED || s == PLG_STATE_STOPPED || s == PLG_STATE_FAILED)
        (void)plg_shutdown(iso->reg, iso->node);
    (void)plg_unregister(iso->reg, iso->node);
    pthread_mutex_lock(&iso->lock);
    plgisoi_end_child(iso); /* when the proxy never got to init */
    pthread_mutex_unlock(&iso->lock);
    plgisoi_free(iso);
}

/* ---------------------------------------------------------------------------------------------
   Child side
   ------------------------------------------------------------------------------------------- */

typedef struct plgisoi_child {
    int fd;
    uint32_t max_message;
    unsigned char *in;   /* request payload */
    unsigned char *out;  /* reply: header, then payload */
    plg_registry *reg;
    plg_plugin *plugin;
    const plgiso_vtable *vt;
} plgisoi_child;

static int plgisoi_child_read(int fd, unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, buf + done, len - done, 0);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

static int plgisoi_child_write(int fd, const unsigned char *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return -1;
    }
    return 0;
}

/* Sends a reply whose payload is already at c->out + header, or a text when status != 0. */
static int plgisoi_child_reply(plgisoi_child *c, uint32_t id, uint32_t method, int32_t status,
                               const void *payload, size_t len)
{
    unsigned char small[PLGISO_FRAME_HEADER_SIZE + 1024];
    unsigned char *frame = c->out != NULL ? c->out : small;
    size_t cap = c->out != NULL ? (size_t)c->max_message : sizeof small - PLGISO_FRAME_HEADER_SIZE;
    if (len > cap)
        len = cap;
    if (payload != NULL && len > 0 && (const unsigned char *)payload != frame + PLGISO_FRAME_HEADER_SIZE)
        memmove(frame + PLGISO_FRAME_HEADER_SIZE, payload, len);
    plgisoi_put32(frame, (uint32_t)len);
    plgisoi_put32(frame + 4, id);
    plgisoi_put32(frame + 8, method);
    plgisoi_put32(frame + 12, (uint32_t)status);
    return plgisoi_child_write(c->fd, frame, PLGISO_FRAME_HEADER_SIZE + len);
}

static int plgisoi_child_text(plgisoi_child *c, uint32_t id, uint32_t method, int32_t status,
                              const char *text)
{
    return plgisoi_child_reply(c, id, method, status, text, strlen(text));
}

/* Closes every descriptor but 0, 1, 2 and the socket. */
static void plgisoi_child_close_fds(int keep)
{
    int fds[1024];
    size_t n = 0, i;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < sizeof fds / sizeof fds[0]) {
            char *end;
            long v = strtol(e->d_name, &end, 10);
            if (*end == '\0' && e->d_name[0] != '\0' && v > 2 && v != keep)
                fds[n++] = (int)v;
        }
        closedir(d); /* its own descriptor is in the list: closing it again fails harmlessly */
        for (i = 0; i < n; i++)
            (void)close(fds[i]);
    } else {
        long max = sysconf(_SC_OPEN_MAX), fd;
        if (max < 0 || max > 65536)
            max = 65536;
        for (fd = 3; fd < max; fd++)
            if (fd != keep)
                (void)close((int)fd);
    }
}

/* Lowers one limit; a value above the current hard limit is clamped to it (only a privileged
   process may raise a hard limit). */
static int plgisoi_child_limit(int resource, const char *name, rlim_t soft, rlim_t hard,
                               char *why, size_t size)
{
    struct rlimit old, rl;
    if (getrlimit(resource, &old) == 0 && old.rlim_max != RLIM_INFINITY) {
        if (hard > old.rlim_max)
            hard = old.rlim_max;
        if (soft > hard)
            soft = hard;
    }
    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    if (setrlimit(resource, &rl) != 0) {
        plgisoi_format(why, size, "setrlimit(%s, %lu): %s", name, (unsigned long)soft,
                       strerror(errno));
        return -1;
    }
    return 0;
}

static int plgisoi_child_limits(uint64_t as, uint32_t cpu, uint32_t files, char *why, size_t size)
{
    if (as != 0 &&
        plgisoi_child_limit(RLIMIT_AS, "RLIMIT_AS", (rlim_t)as, (rlim_t)as, why, size) != 0)
        return -1;
    /* CPU: SIGXCPU at the soft limit, SIGKILL a second later */
    if (cpu != 0 && plgisoi_child_limit(RLIMIT_CPU, "RLIMIT_CPU", (rlim_t)cpu, (rlim_t)cpu + 1,
                                        why, size) != 0)
        return -1;
    if (files != 0 && plgisoi_child_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", (rlim_t)files,
                                          (rlim_t)files, why, size) != 0)
        return -1;
    return 0;
}

/* The setup request: limits, library, plugin. Returns 0 when the child serves from now on. */
static int plgisoi_child_setup(plgisoi_child *c)
{
    unsigned char hdr[PLGISO_FRAME_HEADER_SIZE], *p;
    char why[PLGISOI_MSG_SIZE], hello[2 * (PLG_NAME_MAX + 1) + PLG_SEMVER_MAX + 1 + 512];
    uint32_t len, id, version, max_message, cpu, files;
    uint64_t as;
    const char *library, *type, *name, *end;
    plg_plugin *loaded[PLG_LIBRARY_MAX_PLUGINS];
    size_t count = 0, at;
    uint32_t abi = 0;
    if (plgisoi_child_read(c->fd, hdr, sizeof hdr) != 0)
        return -1;
    len = plgisoi_get32(hdr);
    id = plgisoi_get32(hdr + 4);
    if (plgisoi_get32(hdr + 8) != PLGISOI_M_SETUP || len < 32 || len > 65536)
        return -1;
    p = (unsigned char *)malloc(len + 1);
    if (p == NULL || plgisoi_child_read(c->fd, p, len) != 0) {
        free(p);
        return -1;
    }
    p[len] = '\0';
    version = plgisoi_get32(p);
    max_message = plgisoi_get32(p + 4);
    as = plgisoi_get64(p + 8);
    cpu = plgisoi_get32(p + 24);
    files = plgisoi_get32(p + 28);
    end = (const char *)p + len;
    library = (const char *)p + 32;
    type = library + strlen(library) + 1;
    name = type < end ? type + strlen(type) + 1 : end;
    if (version != PLGISO_PROTOCOL_VERSION || name >= end || max_message == 0) {
        plgisoi_format(why, sizeof why, "child: protocol version %lu, this helper speaks %lu",
                       (unsigned long)version, (unsigned long)PLGISO_PROTOCOL_VERSION);
        (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_ABI_MISMATCH, why);
        free(p);
        return -1;
    }
    c->max_message = max_message;
    plgisoi_child_close_fds(c->fd);
    if (plgisoi_child_limits(as, cpu, files, why, sizeof why) != 0) {
        (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_INTERNAL, why);
        free(p);
        return -1;
    }
    c->in = (unsigned char *)malloc(max_message);
    c->out = (unsigned char *)malloc(PLGISO_FRAME_HEADER_SIZE + (size_t)max_message);
    if (c->in == NULL || c->out == NULL || plg_registry_create(NULL, &c->reg) != PLG_OK) {
        free(c->in);
        free(c->out);
        c->in = c->out = NULL;
        (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_NO_MEMORY,
                                 "child: out of memory for its buffers (address_space_bytes too "
                                 "small?)");
        free(p);
        return -1;
    }
    if (plg_load(c->reg, library, NULL, loaded, PLG_LIBRARY_MAX_PLUGINS, &count) != PLG_OK) {
        (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_LOAD, plg_errmsg(c->reg));
        free(p);
        return -1;
    }
    c->plugin = loaded[0];
    if (type[0] != '\0' || name[0] != '\0') {
        c->plugin = NULL;
        for (at = 0; at < count && at < PLG_LIBRARY_MAX_PLUGINS; at++)
            if ((type[0] == '\0' || strcmp(plg_plugin_type(loaded[at]), type) == 0) &&
                (name[0] == '\0' || strcmp(plg_plugin_name(loaded[at]), name) == 0)) {
                c->plugin = loaded[at];
                break;
            }
        if (c->plugin == NULL) {
            plgisoi_format(why, sizeof why, "%s exports no plugin %s/%s", library,
                           type[0] ? type : "*", name[0] ? name : "*");
            (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_NOT_FOUND, why);
            free(p);
            return -1;
        }
    }
    c->vt = (const plgiso_vtable *)plg_plugin_vtable(c->plugin, PLGISO_INTERFACE_ID,
                                                     PLGISO_VTABLE_ABI_VERSION, &abi);
    if (c->vt == NULL || c->vt->call == NULL) {
        plgisoi_format(why, sizeof why,
                       "plugin %s/%s does not provide the interface %s (ABI %u) with a call "
                       "method",
                       plg_plugin_type(c->plugin), plg_plugin_name(c->plugin),
                       PLGISO_INTERFACE_ID, (unsigned)PLGISO_VTABLE_ABI_VERSION);
        (void)plgisoi_child_text(c, id, PLGISOI_M_SETUP, PLG_ERR_NOT_FOUND, why);
        free(p);
        return -1;
    }
    free(p);
    at = 0;
    plgisoi_format(hello, sizeof hello, "%s", plg_plugin_type(c->plugin));
    at = strlen(hello) + 1;
    plgisoi_format(hello + at, sizeof hello - at, "%s", plg_plugin_name(c->plugin));
    at += strlen(hello + at) + 1;
    plgisoi_format(hello + at, sizeof hello - at, "%s", plg_plugin_version(c->plugin));
    at += strlen(hello + at) + 1;
    plgisoi_format(hello + at, sizeof hello - at, "%.400s",
                   plg_plugin_descriptor(c->plugin)->description);
    at += strlen(hello + at) + 1;
    return plgisoi_child_reply(c, id, PLGISOI_M_SETUP, 0, hello, at) == 0 ? 0 : -1;
}

static int plgisoi_child_serve(plgisoi_child *c)
{
    for (;;) {
        unsigned char hdr[PLGISO_FRAME_HEADER_SIZE];
        uint32_t len, id, method;
        plg_result r;
        if (plgisoi_child_read(c->fd, hdr, sizeof hdr) != 0)
            return 0; /* the host went away */
        len = plgisoi_get32(hdr);
        id = plgisoi_get32(hdr + 4);
        method = plgisoi_get32(hdr + 8);
        if (len > c->max_message)
            return 1; /* the host would never send it: give up on the stream */
        if (plgisoi_child_read(c->fd, c->in, len) != 0)
            return 0;
        switch (method) {
        case PLGISOI_M_INIT: {
            char *json = (char *)malloc((size_t)len + 1);
            if (json == NULL) {
                r = PLG_ERR_NO_MEMORY;
            } else {
                memcpy(json, c->in, len);
                json[len] = '\0';
                r = plg_init(c->reg, c->plugin, json);
                free(json);
            }
            if (plgisoi_child_text(c, id, method, r, r == PLG_OK ? "" : plg_errmsg(c->reg)) != 0)
                return 1;
            break;
        }
        case PLGISOI_M_START:
        case PLGISOI_M_STOP:
            r = method == PLGISOI_M_START ? plg_start(c->reg, c->plugin)
                                          : plg_stop(c->reg, c->plugin);
            if (plgisoi_child_text(c, id, method, r, r == PLG_OK ? "" : plg_errmsg(c->reg)) != 0)
                return 1;
            break;
        case PLGISOI_M_HEALTH: {
            plg_health_report rep;
            unsigned char *payload = c->out + PLGISO_FRAME_HEADER_SIZE;
            size_t n;
            r = plg_health(c->reg, c->plugin, &rep);
            if (r != PLG_OK) {
                if (plgisoi_child_text(c, id, method, r, plg_errmsg(c->reg)) != 0)
                    return 1;
                break;
            }
            plgisoi_put32(payload, (uint32_t)rep.status);
            n = strlen(rep.message);
            if (n > c->max_message - 4)
                n = c->max_message - 4;
            memcpy(payload + 4, rep.message, n);
            if (plgisoi_child_reply(c, id, method, 0, payload, 4 + n) != 0)
                return 1;
            break;
        }
        case PLGISOI_M_SHUTDOWN: {
            plg_state s = plg_plugin_state(c->plugin);
            if (s == PLG_STATE_STARTED)
                (void)plg_stop(c->reg, c->plugin);
            s = plg_plugin_state(c->plugin);
            if (s == PLG_STATE_INITIALIZED || s == PLG_STATE_STOPPED || s == PLG_STATE_FAILED)
                (void)plg_shutdown(c->reg, c->plugin);
            (void)plgisoi_child_text(c, id, method, 0, "");
            return 0;
        }
        default: {
            size_t out_len = 0;
            unsigned char *payload = c->out + PLGISO_FRAME_HEADER_SIZE;
            if (method > PLGISO_METHOD_MAX) {
                r = PLG_ERR_INVALID_ARGUMENT;
                if (plgisoi_child_text(c, id, method, r, "child: unknown control method") != 0)
                    return 1;
                break;
            }
            if (plg_plugin_state(c->plugin) != PLG_STATE_STARTED) {
                if (plgisoi_child_text(c, id, method, PLG_ERR_INVALID_STATE,
                                       "child: the plugin is not started") != 0)
                    return 1;
                break;
            }
            r = c->vt->call(plg_plugin_instance(c->plugin), method, c->in, len, payload,
                            c->max_message, &out_len);
            if (out_len > c->max_message) {
                r = PLG_ERR_INTERNAL;
                out_len = 0;
            }
            if (plgisoi_child_reply(c, id, method, r, payload, out_len) != 0)
                return 1;
            break;
        }
        }
    }
}

PLGISOI_DEF int plgiso_child_main(int argc, char **argv)
{
    plgisoi_child c;
    int rc;
    if (argc < 2 || argv == NULL || argv[1] == NULL || strcmp(argv[1], PLGISO_CHILD_ARG) != 0)
        return 0;
    memset(&c, 0, sizeof c);
    c.fd = PLGISO_CHILD_FD;
    rc = plgisoi_child_setup(&c) == 0 ? plgisoi_child_serve(&c) : 2;
    if (c.reg != NULL)
        plg_registry_destroy(c.reg); /* shuts the plugin down if the host did not */
    free(c.in);
    free(c.out);
    close(c.fd);
    exit(rc);
}

#else /* !PLGISOI_POSIX */

PLGISOI_DEF plgiso_result plgiso_open(plg_registry *reg, const plgiso_desc *desc,
                                      plgiso_plugin **out)
{
    (void)reg;
    if (out != NULL)
        *out = NULL;
    if (desc != NULL && desc->open_message != NULL && desc->open_message_size > 0)
        plgisoi_format(desc->open_message, desc->open_message_size,
                       "plgiso_open: isolation needs POSIX and dlopen (built with PLG_NO_DLOPEN "
                       "or for another platform)");
    return PLGISO_ERR_NOT_SUPPORTED;
}
PLGISOI_DEF plg_plugin *plgiso_node(const plgiso_plugin *iso)
{
    (void)iso;
    return NULL;
}
PLGISOI_DEF plgiso_result plgiso_call(plgiso_plugin *iso, uint32_t method, const void *in,
                                      size_t in_len, void *out, size_t out_capacity,
                                      size_t *out_len)
{
    (void)iso;
    (void)method;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_capacity;
    if (out_len != NULL)
        *out_len = 0;
    return PLGISO_ERR_NOT_SUPPORTED;
}
PLGISOI_DEF plgiso_result plgiso_stats_get(plgiso_plugin *iso, plgiso_stats *out)
{
    (void)iso;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    return PLGISO_ERR_NOT_SUPPORTED;
}
PLGISOI_DEF const char *plgiso_errmsg(const plgiso_plugin *iso)
{
    (void)iso;
    return "isolation is not supported by this build";
}
PLGISOI_DEF void plgiso_close(plgiso_plugin *iso)
{
    (void)iso;
}
PLGISOI_DEF int plgiso_child_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

#endif /* PLGISOI_POSIX */

#endif /* PLUGIN_ISOLATION_IMPLEMENTATION */

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
