/* taskq.c - a command-line task queue over any persistence.h provider.

   Enqueue work from the shell, run any command as the worker, watch the queues:

       taskq enqueue thumbnails 'photo-17.jpg'                       # prints the task id
       taskq enqueue thumbnails --priority 5 --delay 30s --key photo-17 'photo-17.jpg'
       ls *.jpg | taskq enqueue thumbnails --stdin                  # one task per line
       taskq work thumbnails -- ./make-thumbnail.sh                 # runs until SIGINT/SIGTERM
       taskq stats thumbnails
       taskq dead thumbnails                                        # what failed for good, and why
       taskq dead thumbnails --requeue ID                           # (or --all) try again
       taskq result ID                                              # the command's output

   `taskq work` claims tasks and runs COMMAND once per task: the payload on its standard input,
   TASKQ_TASK_ID, TASKQ_TENANT, TASKQ_QUEUE, TASKQ_ATTEMPT (1 on the first run) in its
   environment. Whatever it writes to standard output is the task's result when it exits with
   status 0; any other exit is a failure, retried after an exponential backoff with jitter until
   the task's attempts run out, when the store moves it to the dead letters (persistence.h S6,
   S7). While the command runs, its lease is extended every third of the lease, so a long command
   keeps its task; if the store says the lease is lost (the task went to another worker), the
   command is killed. `taskq <subcommand> --help` documents every option.

   Where the tasks live: PERSISTENCE_PROVIDER and PERSISTENCE_CONFIG, or --provider and --config,
   exactly as pers_open_env reads them (see `taskq --help`). With neither, a build with SQLite
   keeps them in $PERSISTENCE_DIR/persistence.sqlite (else $TMPDIR, else /tmp), which every taskq
   process on the machine shares; a build without SQLite has only the memory provider, which
   forgets everything when the process exits (`taskq demo` runs a whole scenario inside one
   process for that case).

   BUILD (from the repository root; the headers are found relative to this file):

       cc -std=c99 -O2 examples/taskq/taskq.c -o taskq -pthread -lm                  # memory only
       cc -std=c99 -O2 -DTASKQ_WITH_SQLITE examples/taskq/taskq.c -o taskq -pthread -lm -lsqlite3
       add -DTASKQ_WITH_REDIS ... -lhiredis for the Redis provider

   When you copy this file into your own project, change the three backend includes below to
   where you keep the headers.

   DESIGN NOTES (the why behind the code below)
   - Every task runs in its own process group (posix_spawn with POSIX_SPAWN_SETPGROUP), so that
     Ctrl-C in a terminal reaches taskq alone and taskq decides what happens to running commands
     (finish them, or on a second signal kill them and give their tasks back), and so that
     killing a command also kills what it started.
   - Pipes are made close-on-exec while holding the lock under which commands are spawned: with
     several worker threads, a command must never inherit another task's pipe, or that task's
     command would never see the end of its input.
   - Signals only write a byte into a pipe (the one thing a handler may safely do); the main
     thread reads it and tells the workers through a condition variable (those waiting for work)
     and by closing another pipe (those waiting on a command: every poll() wakes up at once).
   - Backoff after a failure: d = min(backoff_max, backoff_base * 2^(attempt - 1)), then a delay
     drawn uniformly from [d/2, d] ("equal jitter"): the guaranteed half keeps retries of a
     failing dependency spaced out, the random half keeps workers that failed together from
     retrying together.
   - A worker with nothing to do sleeps until the next scheduled task is due (claim reports it,
     S18) but at most --poll-max (1 s), because other processes may enqueue at any moment; it
     never spins.

   C99 with POSIX.1-2008 (posix_spawn, poll, pthreads). Exit status: 0 success, 1 a run-time
   failure (the store, the system), 2 bad usage or input; every error is one line on standard
   error starting with "taskq: ". */
#define _POSIX_C_SOURCE 200809L

#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#include "../../backends/memory.h"
#ifdef TASKQ_WITH_SQLITE
#define PERSISTENCE_SQLITE_IMPLEMENTATION
#include "../../backends/sqlite.h"
#endif
#ifdef TASKQ_WITH_REDIS
#define PERSISTENCE_REDIS_IMPLEMENTATION
#include "../../backends/redis.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TASKQ_VERSION "1.0.0"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* =============================================================================================
   Messages: one line each, on standard error, starting with "taskq: "
   ============================================================================================= */

static void print_message(const char *prefix, const char *fmt, va_list ap)
{
    char text[4096];
    size_t i;
    if (vsnprintf(text, sizeof text, fmt, ap) < 0)
        text[0] = '\0';
    /* A store message may carry a newline; the promise is one line per message. */
    for (i = 0; text[i] != '\0'; i++)
        if (text[i] == '\n' || text[i] == '\r')
            text[i] = ' ';
    fprintf(stderr, "taskq: %s%s\n", prefix, text);
}

/* Prints the error and returns exit_code, so that callers can write `return fail(...)`. */
static int fail(int exit_code, const char *fmt, ...) PLG_PRINTF(2, 3);
static int fail(int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message("", fmt, ap);
    va_end(ap);
    return exit_code;
}

static void warn(const char *fmt, ...) PLG_PRINTF(1, 2);
static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message("warning: ", fmt, ap);
    va_end(ap);
}

/* Progress of `taskq work`, for the operator. */
static void note(const char *fmt, ...) PLG_PRINTF(1, 2);
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message("", fmt, ap);
    va_end(ap);
}

/* Bad input is a usage error (2); the store or the system failing is a run-time error (1). */
static int exit_code_for(pers_result rc)
{
    switch (rc) {
    case PERS_ERR_INVALID_ARGUMENT:
    case PERS_ERR_TOO_LARGE:
    case PERS_ERR_NO_PROVIDER:
    case PERS_ERR_CONFIG:
        return EXIT_USAGE;
    default:
        return EXIT_RUNTIME;
    }
}

/* =============================================================================================
   Time and randomness
   ============================================================================================= */

/* For timers inside this process (lease extension, grace): never jumps with the wall clock. */
static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The store's clock (the default of pers_store_desc.clock): due times from claim are in it. */
static int64_t store_now_ms(void)
{
    return pers_wall_clock_ms(NULL);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts;
    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* "2024-05-01T12:00:00.123Z" for a time in ms since the epoch; "-" for none. */
static const char *format_time(int64_t ms, char *buf, size_t size)
{
    struct tm tm;
    time_t secs;
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    secs = (time_t)(ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, size, "%lld", (long long)ms);
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

/* xorshift64*: jitter needs spread, not cryptographic strength; one state per thread. */
static uint64_t random_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static uint64_t random_seed(unsigned salt)
{
    uint64_t seed = (uint64_t)store_now_ms() ^ ((uint64_t)getpid() << 20) ^
                    ((uint64_t)monotonic_ms() << 7) ^
                    ((uint64_t)salt * UINT64_C(0x9E3779B97F4A7C15));
    return seed != 0 ? seed : UINT64_C(88172645463325252);
}

/* See DESIGN NOTES: d = min(max, base * 2^(attempt-1)); the delay is uniform in [d/2, d]. */
static int64_t backoff_delay_ms(int64_t base_ms, int64_t max_ms, uint32_t attempt, uint64_t *rng)
{
    int64_t d = base_ms, half;
    uint32_t i;
    for (i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (d <= 0)
        return 0;
    half = d / 2;
    return half + (int64_t)(random_next(rng) % (uint64_t)(d - half + 1));
}

/* =============================================================================================
   Command-line parsing
   ============================================================================================= */

typedef enum option_kind {
    OPTION_FLAG,     /* int target set to 1 */
    OPTION_STRING,   /* const char * target */
    OPTION_INTEGER,  /* int64_t target, within min..max */
    OPTION_DURATION  /* int64_t target in ms: "250", "250ms", "5s", "2m", "1h"; within min..max */
} option_kind;

typedef struct option_spec {
    const char *name;  /* "--priority" */
    const char *alias; /* "-v", or NULL */
    option_kind kind;
    void *target;
    int64_t min, max;
} option_spec;

/* Options every subcommand that touches the store takes. */
typedef struct common_options {
    const char *provider; /* --provider: overrides PERSISTENCE_PROVIDER */
    const char *config;   /* --config: overrides PERSISTENCE_CONFIG */
    const char *tenant;   /* --tenant, default "default" */
} common_options;

static int parse_integer(const char *command, const char *name, const char *text, int64_t min,
                         int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v = 0;
    int ok = 0;
    /* Digits with an optional '-': strtoll alone would also take leading blanks and a '+'. */
    if (text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) {
        errno = 0;
        v = strtoll(text, &end, 10);
        ok = end != text && *end == '\0' && errno != ERANGE && v >= min && v <= max;
    }
    if (!ok)
        return fail(EXIT_USAGE, "%s: %s: \"%s\" is not an integer in %lld..%lld", command, name,
                    text, (long long)min, (long long)max);
    *out = (int64_t)v;
    return EXIT_OK;
}

static int parse_duration(const char *command, const char *name, const char *text, int64_t min,
                          int64_t max, int64_t *out)
{
    char *end = (char *)text;
    long long v = 0;
    int64_t unit = 1;
    errno = 0;
    if (text[0] >= '0' && text[0] <= '9') /* no sign, no blanks */
        v = strtoll(text, &end, 10);
    if (end != text && errno != ERANGE) {
        if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
            unit = 1;
        else if (strcmp(end, "s") == 0)
            unit = 1000;
        else if (strcmp(end, "m") == 0)
            unit = 60000;
        else if (strcmp(end, "h") == 0)
            unit = 3600000;
        else
            unit = 0;
    }
    if (end == text || errno == ERANGE || unit == 0 || v > max / unit || v * unit < min ||
        v * unit > max)
        return fail(EXIT_USAGE,
                    "%s: %s: \"%s\" is not a duration in %lld..%lld ms (write 250, 250ms, 5s, "
                    "2m or 1h)",
                    command, name, text, (long long)min, (long long)max);
    *out = (int64_t)v * unit;
    return EXIT_OK;
}

/* Matches NAME VALUE and NAME=VALUE at argv[*i]. 1: matched (*i moved past the value);
   0: another argument; -1: NAME without a value. */
static int match_option(int argc, char **argv, int *i, const char *name, int takes_value,
                        const char **value)
{
    const char *arg = argv[*i];
    size_t n;
    if (name == NULL)
        return 0;
    n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (!takes_value)
        return arg[n] == '\0' ? 1 : 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static int apply_option(const char *command, const option_spec *spec, const char *shown,
                        const char *value)
{
    switch (spec->kind) {
    case OPTION_FLAG:
        *(int *)spec->target = 1;
        return EXIT_OK;
    case OPTION_STRING:
        *(const char **)spec->target = value;
        return EXIT_OK;
    case OPTION_INTEGER:
        return parse_integer(command, shown, value, spec->min, spec->max,
                             (int64_t *)spec->target);
    case OPTION_DURATION:
        return parse_duration(command, shown, value, spec->min, spec->max,
                              (int64_t *)spec->target);
    }
    return EXIT_USAGE;
}

/* Parses argv[0..argc) against specs. Positional arguments (anything not starting with '-',
   and "-" itself) go to positionals in order; parsing stops at "--", whose index goes to
   *dashdash (argc when absent). Returns EXIT_OK or EXIT_USAGE (the message printed). */
static int parse_options(const char *command, int argc, char **argv, const option_spec *specs,
                         size_t spec_count, const char **positionals, int *positional_count,
                         int *dashdash)
{
    int i;
    size_t s;
    *positional_count = 0;
    *dashdash = argc;
    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int matched = 0;
        if (strcmp(arg, "--") == 0) {
            *dashdash = i;
            return EXIT_OK;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            positionals[(*positional_count)++] = arg;
            continue;
        }
        for (s = 0; s < spec_count && !matched; s++) {
            const char *value = NULL;
            int takes_value = specs[s].kind != OPTION_FLAG;
            int m = match_option(argc, argv, &i, specs[s].name, takes_value, &value);
            const char *shown = specs[s].name;
            if (m == 0 && specs[s].alias != NULL) {
                m = match_option(argc, argv, &i, specs[s].alias, takes_value, &value);
                shown = specs[s].alias;
            }
            if (m < 0)
                return fail(EXIT_USAGE, "%s: %s needs a value", command, shown);
            if (m > 0) {
                int rc = apply_option(command, &specs[s], shown, value);
                if (rc != EXIT_OK)
                    return rc;
                matched = 1;
            }
        }
        if (!matched)
            return fail(EXIT_USAGE, "%s: unknown option \"%s\" (see taskq %s --help)", command,
                        arg, command);
    }
    return EXIT_OK;
}

/* --help or -h before any "--": the help wins over everything else on the line. */
static int wants_help(int argc, char **argv)
{
    int i;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

static int check_name(const char *command, const char *what, const char *name)
{
    char why[256];
    if (pers_check_name(name, why, sizeof why) != 0)
        return fail(EXIT_USAGE,
                    "%s: %s \"%s\" %s (names are 1..64 of A-Z a-z 0-9 _ . -, starting with a "
                    "letter or digit)",
                    command, what, name, why);
    return EXIT_OK;
}

static int check_key(const char *command, const char *what, const char *key)
{
    char why[256];
    if (pers_check_key(key, why, sizeof why) != 0)
        return fail(EXIT_USAGE, "%s: %s \"%s\" %s (1..128 of A-Z a-z 0-9 _ . : -)", command,
                    what, key, why);
    return EXIT_OK;
}

/* =============================================================================================
   Help texts (arrays of lines: ISO C caps the length of one string literal)
   ============================================================================================= */

static const char *const help_main[] = {
    "usage: taskq [--provider NAME] [--config JSON] SUBCOMMAND [OPTIONS] [ARGS]",
    "",
    "A task queue on the command line, over any persistence.h provider.",
    "",
    "subcommands:",
    "  enqueue QUEUE PAYLOAD      add a task (or many: QUEUE - reads one payload per line)",
    "  work QUEUE... -- COMMAND   run COMMAND for each task, with the payload on its stdin",
    "  stats QUEUE...             ready, scheduled, leased, completed, failed, dead counts",
    "  dead QUEUE                 list dead tasks; --requeue ID or --all puts them back",
    "  result ID                  a task's state and its stored result or error",
    "  providers                  the providers compiled into this taskq",
    "  demo                       a whole scenario inside this one process",
    "  help SUBCOMMAND            the same as taskq SUBCOMMAND --help",
    "",
    "where the tasks live (every subcommand; flags override the environment):",
    "  --provider NAME            instead of $PERSISTENCE_PROVIDER",
    "  --config JSON              instead of $PERSISTENCE_CONFIG: '{\"path\":\"/var/lib/q.db\"}'",
    "                             for sqlite, '{\"addr\":\"localhost:6379\"}' for redis",
    "  --tenant NAME              whose tasks (default \"default\"); tenants never see each other",
    "",
    "  With no provider set, the default is \"sqlite\" when this taskq was built with SQLite,",
    "  else \"memory\" (which forgets everything when the process exits). The default sqlite",
    "  store, with no config set either, is the file persistence.sqlite in $PERSISTENCE_DIR,",
    "  else in $TMPDIR, else in /tmp, whether sqlite was chosen by default or by --provider",
    "  (or PERSISTENCE_PROVIDER). These are the rules of pers_open_env.",
    "",
    "exit status: 0 success, 1 run-time failure, 2 bad usage or input.",
    NULL};

static const char *const help_enqueue[] = {
    "usage: taskq enqueue QUEUE PAYLOAD [OPTIONS]",
    "       taskq enqueue QUEUE --file FILE [OPTIONS]",
    "       taskq enqueue QUEUE - [OPTIONS]        (or --stdin)",
    "",
    "Adds a task and prints its id, followed by \" duplicate\" when the idempotency key",
    "already named a task of this tenant and queue (nothing is added then).",
    "",
    "With - or --stdin every line of standard input is one task (the newline is not part of",
    "it; empty lines are skipped), enqueued in all-or-nothing batches of up to 1000, and the",
    "ids are printed one per line in input order. --key K then gives line N the key K.N, so",
    "feeding the same input again adds nothing. --file FILE enqueues the whole file as one",
    "payload (any bytes, NUL included).",
    "",
    "options:",
    "  --tenant NAME           default \"default\"",
    "  --priority N            -32768..32767, higher is claimed first (default 0)",
    "  --delay DURATION        not before this long from now: 500, 500ms, 30s, 5m, 2h",
    "  --key KEY               idempotency key, unique per tenant and queue",
    "  --max-attempts N        runs before the task is dead (default: the store's, 5)",
    "  --id ID                 choose the task id (default: generated)",
    "  --file FILE             the payload is the content of FILE",
    "  --stdin                 one payload per line of standard input, like -",
    "  --provider, --config    see taskq --help",
    NULL};

static const char *const help_work[] = {
    "usage: taskq work QUEUE [QUEUE...] [OPTIONS] -- COMMAND [ARGS...]",
    "",
    "Claims tasks from the queues (the first queue first; within a queue the highest priority,",
    "then the oldest) and runs COMMAND for each: the payload on its standard input, and in its",
    "environment TASKQ_TASK_ID, TASKQ_TENANT, TASKQ_QUEUE, TASKQ_ATTEMPT (1 on the first",
    "run), TASKQ_MAX_ATTEMPTS and TASKQ_WORKER_ID. Its standard error is taskq's.",
    "",
    "  exit status 0      the task is completed; its standard output is the result",
    "                     (truncated to the store's payload limit, 1 MiB by default)",
    "  --fail-exit N      this exit status fails the task for good (no retry); its output",
    "                     is stored as the error",
    "  anything else      a failure (\"exit status N\", \"killed by signal N\"): the task is",
    "                     retried after a backoff, or dead when its attempts are used up",
    "",
    "The backoff before retry n is uniform in [d/2, d], d = min(max, base * 2^(n-1)).",
    "While COMMAND runs, the lease is extended every lease/3; if the store says it is lost",
    "(another worker has the task), COMMAND is killed and its outcome dropped.",
    "",
    "SIGINT or SIGTERM: claim nothing more, let running commands finish, exit 0. A second",
    "signal, or the end of --grace, kills the running commands (SIGTERM to their process",
    "group, SIGKILL a second later) and gives their tasks back (ready again, the attempt not",
    "counted).",
    "",
    "options:",
    "  --tenant NAME            default \"default\"",
    "  --worker-id NAME         recorded on each task (default HOST-PID; .N per thread)",
    "  --workers N              tasks run at once, one thread each (default 1)",
    "  --lease DURATION         how long a claim lasts unless extended (default 30s)",
    "  --backoff-base DURATION  backoff of the first retry (default 1s)",
    "  --backoff-max DURATION   the longest backoff (default 5m)",
    "  --grace DURATION         after the first signal, abandon running commands after this",
    "                           (default: wait for them)",
    "  --max-tasks N            run at most N tasks, then exit",
    "  --exit-when-idle         exit when nothing is ready, nothing runs here and nothing is",
    "                           scheduled within --idle-horizon",
    "  --idle-horizon DURATION  see --exit-when-idle (default 2s)",
    "  --poll-max DURATION      longest sleep between claims when idle (default 1s)",
    "  --fail-exit N            see above",
    "  -v, --verbose            a line per task; -q, --quiet: errors only",
    "  --provider, --config     see taskq --help",
    NULL};

static const char *const help_stats[] = {
    "usage: taskq stats QUEUE [QUEUE...] [--tenant NAME]",
    "",
    "Prints, for each queue of the tenant, how many tasks are ready, scheduled (delayed or",
    "waiting for a retry), leased (running), completed, failed and dead, as of now. A queue",
    "nobody used shows zeros. (The store keeps no list of queues: name them.)",
    "",
    "options: --tenant NAME, --provider, --config (see taskq --help)",
    NULL};

static const char *const help_dead[] = {
    "usage: taskq dead QUEUE [--tenant NAME]",
    "       taskq dead QUEUE --requeue ID | --all",
    "",
    "Lists the dead tasks of a queue (attempts used up), oldest death first: id, attempts,",
    "when it died and the reason of the last failure. --requeue ID puts one back (ready, its",
    "attempts back to 0); --all puts back every dead task of the queue.",
    "",
    "options: --tenant NAME, --requeue ID, --all, --provider, --config (see taskq --help)",
    NULL};

static const char *const help_result[] = {
    "usage: taskq result ID [--tenant NAME] [--raw]",
    "",
    "Prints the task's state and attempts and, once it is completed or failed, its stored",
    "result or error (bytes outside printable text shown as \\xNN); for a dead task, the",
    "reason of its last failure. --raw prints only the stored bytes, exactly, and fails",
    "(exit 1) when there is no result yet.",
    "",
    "options: --tenant NAME, --raw, --provider, --config (see taskq --help)",
    NULL};

static const char *const help_providers[] = {
    "usage: taskq providers",
    "",
    "Prints the providers compiled into this taskq, one per line (memory always; sqlite with",
    "-DTASKQ_WITH_SQLITE; redis with -DTASKQ_WITH_REDIS).",
    NULL};

static const char *const help_demo[] = {
    "usage: taskq demo [--tasks N] [--workers N] [--backoff-base D] [--backoff-max D]",
    "                  [-- COMMAND [ARGS...]]",
    "",
    "Runs a scenario inside this one process, so that it works on the memory provider too:",
    "enqueues --tasks tasks (default 300) over two tenants, acme (queue thumbnails) and globex",
    "(queue reports), in batches; every tenth fails on its first attempt, a few always fail.",
    "Then --workers threads per tenant (default 3) run COMMAND for each (default: a small",
    "built-in sh script; see examples/taskq/demo_job.sh), until the queues are idle. Prints",
    "some results, the stats, the dead letters and a summary.",
    "",
    "It uses --provider/--config when given, else the memory provider (it ignores",
    "PERSISTENCE_PROVIDER, so as not to mix its tasks into a shared store by accident).",
    NULL};

static void print_help(const char *const *lines)
{
    size_t i;
    for (i = 0; lines[i] != NULL; i++)
        printf("%s\n", lines[i]);
}

/* =============================================================================================
   Opening the store
   ============================================================================================= */

static const char *const compiled_providers[] = {
    "memory",
#ifdef TASKQ_WITH_SQLITE
    "sqlite",
#endif
#ifdef TASKQ_WITH_REDIS
    "redis",
#endif
};

typedef struct taskq_store {
    plg_registry *registry;
    pers_store *store;
    pers_caps caps;
    uint64_t max_payload; /* the limit in force: the smaller of the store's and the backend's */
} taskq_store;

static void store_close(taskq_store *ts)
{
    pers_destroy(ts->store);
    plg_registry_destroy(ts->registry);
    ts->store = NULL;
    ts->registry = NULL;
}

static pers_result register_providers(plg_registry *reg)
{
    pers_result rc = pers_memory_register(reg);
#ifdef TASKQ_WITH_SQLITE
    if (rc == PERS_OK)
        rc = pers_sqlite_register(reg);
#endif
#ifdef TASKQ_WITH_REDIS
    if (rc == PERS_OK)
        rc = pers_redis_register(reg);
#endif
    return rc;
}

/* Opens the store as pers_open_env does, --provider and --config overriding the environment
   (taskq is still single-threaded here, so setenv is safe). A demo without either opens the
   memory provider. Warns when the store will not outlive the process: enqueueing into it from
   the command line would be lost at once. */
static int store_open(const char *command, const common_options *common, int demo,
                      taskq_store *ts)
{
    pers_store_desc desc;
    char why[2048];
    pers_result rc;

    memset(ts, 0, sizeof *ts);
    if (plg_registry_create(NULL, &ts->registry) != PLG_OK)
        return fail(EXIT_RUNTIME, "%s: cannot create the plugin registry (out of memory?)",
                    command);
    rc = register_providers(ts->registry);
    if (rc != PERS_OK) {
        plg_registry_destroy(ts->registry);
        ts->registry = NULL;
        return fail(EXIT_RUNTIME, "%s: cannot register the providers: %s", command,
                    pers_result_string(rc));
    }
    memset(&desc, 0, sizeof desc);
    why[0] = '\0';
    desc.open_message = why;
    desc.open_message_size = sizeof why;
    if (demo && common->provider == NULL && common->config == NULL) {
        rc = pers_open(ts->registry, "memory", NULL, &desc, &ts->store);
    } else {
        if ((common->provider != NULL &&
             setenv("PERSISTENCE_PROVIDER", common->provider, 1) != 0) ||
            (common->config != NULL && setenv("PERSISTENCE_CONFIG", common->config, 1) != 0)) {
            int err = errno;
            store_close(ts);
            return fail(EXIT_RUNTIME, "%s: setenv: %s", command, strerror(err));
        }
        rc = pers_open_env(ts->registry, &desc, &ts->store);
    }
    if (rc != PERS_OK) {
        store_close(ts);
        return fail(exit_code_for(rc), "%s: cannot open the store: %s", command,
                    why[0] != '\0' ? why : pers_result_string(rc));
    }
    if (pers_capabilities(ts->store, &ts->caps) != PERS_OK)
        memset(&ts->caps, 0, sizeof ts->caps);
    ts->max_payload = pers_store_resolved(ts->store).max_payload_bytes;
    if (!demo && !(ts->caps.flags & (PERS_CAP_DURABLE | PERS_CAP_SHARED)))
        warn("provider \"%s\" keeps tasks only inside this process: they are gone when it "
             "exits (build taskq with -DTASKQ_WITH_SQLITE -lsqlite3 for the durable default)",
             pers_store_provider(ts->store));
    return EXIT_OK;
}

/* =============================================================================================
   taskq enqueue
   ============================================================================================= */

typedef struct enqueue_options {
    common_options common;
    int64_t priority, delay_ms, max_attempts;
    const char *key, *id, *file;
    int use_stdin;
} enqueue_options;

static void print_enqueued(const pers_enqueue_res *res)
{
    printf("%s%s\n", res->task_id, res->duplicate ? " duplicate" : "");
}

/* Reads FILE whole, refusing it beyond limit bytes (the store would refuse it anyway, after
   the memory was spent). */
static int read_file_payload(const char *command, const char *path, uint64_t limit, char **data,
                             size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    int rc = EXIT_OK;
    if (f == NULL)
        return fail(EXIT_USAGE, "%s: cannot read %s: %s", command, path, strerror(errno));
    do {
        if (n == cap) {
            size_t bigger_cap = cap == 0 ? 65536 : cap * 2;
            char *bigger = (char *)realloc(buf, bigger_cap);
            if (bigger == NULL) {
                rc = fail(EXIT_RUNTIME, "%s: reading %s: out of memory", command, path);
                break;
            }
            buf = bigger;
            cap = bigger_cap;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > limit) {
            rc = fail(EXIT_USAGE, "%s: %s is larger than the store's payload limit of %llu bytes",
                      command, path, (unsigned long long)limit);
            break;
        }
    } while (got > 0);
    if (rc == EXIT_OK && ferror(f))
        rc = fail(EXIT_RUNTIME, "%s: reading %s: %s", command, path, strerror(errno));
    fclose(f);
    if (rc != EXIT_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return EXIT_OK;
}

/* One chunk of lines from standard input, enqueued as one batch. */
typedef struct line_batch {
    pers_enqueue_req *reqs;
    pers_enqueue_res *res;
    char **lines;           /* owned payloads */
    char (*keys)[PERS_KEY_MAX + 1];
    size_t count, capacity;
    unsigned long first_line, last_line;
} line_batch;

static void line_batch_clear(line_batch *b)
{
    size_t i;
    for (i = 0; i < b->count; i++)
        free(b->lines[i]);
    b->count = 0;
}

/* Enqueues the batch (one tenant and queue: S19) and prints the ids. A backend without
   enqueue_batch gets the requests one by one, which loses only the all-or-nothing. */
static int line_batch_flush(const char *command, taskq_store *ts, line_batch *b,
                            unsigned long *enqueued)
{
    pers_result rc;
    size_t i;
    if (b->count == 0)
        return EXIT_OK;
    rc = pers_enqueue_batch(ts->store, b->reqs, b->count, b->res);
    if (rc == PERS_ERR_NOT_SUPPORTED) {
        for (i = 0; i < b->count; i++) {
            rc = pers_enqueue(ts->store, &b->reqs[i], &b->res[i]);
            if (rc != PERS_OK)
                return fail(exit_code_for(rc),
                            "%s: enqueue of the payload on line %lu failed: %s (%lu task(s) "
                            "before it were enqueued)",
                            command, b->first_line + (unsigned long)i, pers_errmsg(ts->store),
                            *enqueued);
            print_enqueued(&b->res[i]);
            ++*enqueued;
        }
        line_batch_clear(b);
        return EXIT_OK;
    }
    if (rc != PERS_OK)
        return fail(exit_code_for(rc),
                    "%s: the batch of lines %lu..%lu was refused, none of it enqueued: %s (%lu "
                    "task(s) from earlier lines were enqueued)",
                    command, b->first_line, b->last_line, pers_errmsg(ts->store), *enqueued);
    for (i = 0; i < b->count; i++)
        print_enqueued(&b->res[i]);
    *enqueued += (unsigned long)b->count;
    line_batch_clear(b);
    return EXIT_OK;
}

static int enqueue_lines(const char *command, taskq_store *ts, const pers_enqueue_req *model,
                         const char *key_prefix)
{
    line_batch b;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    unsigned long line_no = 0, enqueued = 0;
    int rc = EXIT_OK;

    memset(&b, 0, sizeof b);
    b.capacity = PERS_BATCH_MAX;
    if (ts->caps.max_batch != 0 && ts->caps.max_batch < b.capacity)
        b.capacity = ts->caps.max_batch;
    b.reqs = (pers_enqueue_req *)calloc(b.capacity, sizeof *b.reqs);
    b.res = (pers_enqueue_res *)calloc(b.capacity, sizeof *b.res);
    b.lines = (char **)calloc(b.capacity, sizeof *b.lines);
    b.keys = (char(*)[PERS_KEY_MAX + 1])calloc(b.capacity, sizeof *b.keys);
    if (b.reqs == NULL || b.res == NULL || b.lines == NULL || b.keys == NULL) {
        rc = fail(EXIT_RUNTIME, "%s: out of memory", command);
        goto done;
    }
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        pers_enqueue_req *req;
        line_no++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len == 0)
            continue; /* blank lines are almost always accidents, not empty tasks */
        if (b.count == 0)
            b.first_line = line_no;
        b.last_line = line_no;
        req = &b.reqs[b.count];
        *req = *model;
        b.lines[b.count] = (char *)malloc(len + 1);
        if (b.lines[b.count] == NULL) {
            rc = fail(EXIT_RUNTIME, "%s: out of memory at line %lu", command, line_no);
            goto done;
        }
        memcpy(b.lines[b.count], line, len);
        b.lines[b.count][len] = '\0';
        req->payload = b.lines[b.count];
        req->payload_len = len;
        if (key_prefix != NULL) {
            snprintf(b.keys[b.count], sizeof b.keys[b.count], "%s.%lu", key_prefix, line_no);
            if ((rc = check_key(command, "--key", b.keys[b.count])) != EXIT_OK)
                goto done;
            req->idempotency_key = b.keys[b.count];
        }
        b.count++;
        if (b.count == b.capacity && (rc = line_batch_flush(command, ts, &b, &enqueued)) != EXIT_OK)
            goto done;
    }
    if (ferror(stdin)) {
        rc = fail(EXIT_RUNTIME, "%s: reading standard input: %s (%lu task(s) enqueued)", command,
                  strerror(errno), enqueued);
        goto done;
    }
    rc = line_batch_flush(command, ts, &b, &enqueued);
done:
    line_batch_clear(&b);
    free(line);
    free(b.reqs);
    free(b.res);
    free(b.lines);
    free(b.keys);
    return rc;
}

static int cmd_enqueue(int argc, char **argv, common_options *common)
{
    const char *command = "enqueue";
    enqueue_options o;
    const char **pos;
    int npos, npos_before_dashdash, dashdash, rc, i;
    const char *queue, *payload_arg = NULL;
    taskq_store ts;
    pers_enqueue_req req;
    pers_enqueue_res res;
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tenant", NULL, OPTION_STRING, &common->tenant, 0, 0},
        {"--priority", NULL, OPTION_INTEGER, &o.priority, PERS_PRIORITY_MIN, PERS_PRIORITY_MAX},
        {"--delay", NULL, OPTION_DURATION, &o.delay_ms, 0, PERS_DURATION_MAX_MS},
        {"--key", NULL, OPTION_STRING, &o.key, 0, 0},
        {"--max-attempts", NULL, OPTION_INTEGER, &o.max_attempts, 1, PERS_ATTEMPTS_MAX},
        {"--id", NULL, OPTION_STRING, &o.id, 0, 0},
        {"--file", NULL, OPTION_STRING, &o.file, 0, 0},
        {"--stdin", NULL, OPTION_FLAG, &o.use_stdin, 0, 0},
    };

    if (wants_help(argc, argv))
        return print_help(help_enqueue), EXIT_OK;
    memset(&o, 0, sizeof o);
    pos = (const char **)calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], pos, &npos,
                       &dashdash);
    npos_before_dashdash = npos;
    for (i = dashdash + 1; rc == EXIT_OK && i < argc; i++)
        pos[npos++] = argv[i]; /* after "--" everything is positional: payloads may start with - */
    queue = npos > 0 ? pos[0] : NULL;
    if (npos > 1)
        payload_arg = pos[1];
    if (payload_arg != NULL && strcmp(payload_arg, "-") == 0 && npos_before_dashdash >= 2) {
        o.use_stdin = 1; /* "taskq enqueue QUEUE -"; after "--", "-" is a payload like any other */
        payload_arg = NULL;
    }
    if (rc == EXIT_OK && queue == NULL)
        rc = fail(EXIT_USAGE, "%s: name a queue: taskq enqueue QUEUE PAYLOAD", command);
    else if (rc == EXIT_OK && npos > 2)
        rc = fail(EXIT_USAGE, "%s: one payload per call (got %d arguments after the queue; use "
                              "--stdin for many)",
                  command, npos - 1);
    else if (rc == EXIT_OK && (payload_arg != NULL) + o.use_stdin + (o.file != NULL) != 1)
        rc = fail(EXIT_USAGE, "%s: give exactly one of PAYLOAD, --file FILE and - (--stdin)",
                  command);
    else if (rc == EXIT_OK && o.use_stdin && o.id != NULL)
        rc = fail(EXIT_USAGE, "%s: --id names one task; it cannot go with --stdin", command);
    if (rc == EXIT_OK)
        rc = check_name(command, "queue", queue);
    if (rc == EXIT_OK)
        rc = check_name(command, "--tenant", common->tenant);
    if (rc == EXIT_OK && o.key != NULL)
        rc = check_key(command, "--key", o.key);
    if (rc == EXIT_OK && o.key != NULL && o.use_stdin && strlen(o.key) > PERS_KEY_MAX - 21)
        rc = fail(EXIT_USAGE, "%s: --key: with --stdin each line adds \".LINE\" to it; keep it "
                              "within %d characters",
                  command, PERS_KEY_MAX - 21);
    if (rc == EXIT_OK && o.id != NULL)
        rc = check_key(command, "--id", o.id);
    if (rc == EXIT_OK)
        rc = store_open(command, common, 0, &ts);
    if (rc != EXIT_OK) {
        free(pos);
        return rc;
    }

    memset(&req, 0, sizeof req);
    req.tenant = common->tenant;
    req.queue = queue;
    req.priority = (int32_t)o.priority;
    req.delay_ms = o.delay_ms;
    req.max_attempts = (uint32_t)o.max_attempts;
    if (o.use_stdin) {
        rc = enqueue_lines(command, &ts, &req, o.key);
    } else {
        char *file_data = NULL;
        size_t file_len = 0;
        if (o.file != NULL) {
            rc = read_file_payload(command, o.file, ts.max_payload, &file_data, &file_len);
            req.payload = file_data;
            req.payload_len = file_len;
        } else {
            req.payload = payload_arg;
            req.payload_len = strlen(payload_arg);
        }
        req.idempotency_key = o.key;
        req.task_id = o.id;
        if (rc == EXIT_OK) {
            pers_result prc = pers_enqueue(ts.store, &req, &res);
            if (prc == PERS_OK)
                print_enqueued(&res);
            else
                rc = fail(prc == PERS_ERR_DUPLICATE ? EXIT_USAGE : exit_code_for(prc), "%s: %s",
                          command, pers_errmsg(ts.store));
        }
        free(file_data);
    }
    store_close(&ts);
    free(pos);
    return rc;
}

/* =============================================================================================
   taskq stats, dead, result, providers
   ============================================================================================= */

static int cmd_stats(int argc, char **argv, common_options *common)
{
    const char *command = "stats";
    const char **pos;
    int npos, dashdash, rc, i;
    taskq_store ts;
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tenant", NULL, OPTION_STRING, &common->tenant, 0, 0},
    };
    if (wants_help(argc, argv))
        return print_help(help_stats), EXIT_OK;
    pos = (const char **)calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], pos, &npos,
                       &dashdash);
    if (rc == EXIT_OK && dashdash < argc)
        rc = fail(EXIT_USAGE, "%s: unexpected \"--\"", command);
    if (rc == EXIT_OK && npos == 0)
        rc = fail(EXIT_USAGE, "%s: name the queues: taskq stats QUEUE [QUEUE...] (the store "
                              "keeps no list of them)",
                  command);
    if (rc == EXIT_OK)
        rc = check_name(command, "--tenant", common->tenant);
    for (i = 0; rc == EXIT_OK && i < npos; i++)
        rc = check_name(command, "queue", pos[i]);
    if (rc == EXIT_OK)
        rc = store_open(command, common, 0, &ts);
    if (rc != EXIT_OK) {
        free(pos);
        return rc;
    }
    printf("%-16s %-20s %9s %9s %9s %9s %9s %9s\n", "TENANT", "QUEUE", "READY", "SCHEDULED",
           "LEASED", "COMPLETED", "FAILED", "DEAD");
    for (i = 0; i < npos; i++) {
        pers_stats st;
        pers_result prc = pers_queue_stats(ts.store, common->tenant, pos[i], &st);
        if (prc != PERS_OK) {
            rc = fail(exit_code_for(prc), "%s: %s: %s", command, pos[i], pers_errmsg(ts.store));
            break;
        }
        printf("%-16s %-20s %9llu %9llu %9llu %9llu %9llu %9llu\n", common->tenant, pos[i],
               (unsigned long long)st.ready, (unsigned long long)st.scheduled,
               (unsigned long long)st.leased, (unsigned long long)st.completed,
               (unsigned long long)st.failed, (unsigned long long)st.dead);
    }
    store_close(&ts);
    free(pos);
    return rc;
}

/* Puts back every dead task of the queue. Requeued tasks leave the dead list, so each pass
   reads from the start again; a pass that moves nothing ends the loop (no spinning on a task
   that cannot be requeued). */
static int requeue_all(const char *command, taskq_store *ts, const char *tenant, const char *queue)
{
    unsigned long requeued = 0;
    for (;;) {
        pers_list_req lr;
        pers_task_list list;
        size_t i, moved = 0;
        pers_result prc;
        memset(&lr, 0, sizeof lr);
        lr.tenant = tenant;
        lr.queue = queue;
        lr.limit = PERS_LIST_MAX;
        prc = pers_list_dead(ts->store, &lr, &list);
        if (prc != PERS_OK)
            return fail(exit_code_for(prc), "%s: %s (%lu requeued before)", command,
                        pers_errmsg(ts->store), requeued);
        if (list.count == 0) {
            pers_task_list_free(ts->store, &list);
            break;
        }
        for (i = 0; i < list.count; i++) {
            prc = pers_requeue_dead(ts->store, tenant, list.items[i].id);
            if (prc == PERS_OK)
                moved++;
            else if (prc != PERS_ERR_INVALID_STATE && prc != PERS_ERR_NOT_FOUND) {
                /* Someone else requeuing at the same time is fine; anything else is not. */
                int code = fail(exit_code_for(prc), "%s: requeue %s: %s (%lu requeued before)",
                                command, list.items[i].id, pers_errmsg(ts->store),
                                requeued + (unsigned long)moved);
                pers_task_list_free(ts->store, &list);
                return code;
            }
        }
        pers_task_list_free(ts->store, &list);
        requeued += (unsigned long)moved;
        if (moved == 0)
            break;
    }
    printf("requeued %lu task(s)\n", requeued);
    return EXIT_OK;
}

static int list_dead(const char *command, taskq_store *ts, const char *tenant, const char *queue)
{
    size_t offset = 0, shown = 0, page_count, total;
    for (;;) {
        pers_list_req lr;
        pers_task_list list;
        size_t i;
        pers_result prc;
        memset(&lr, 0, sizeof lr);
        lr.tenant = tenant;
        lr.queue = queue;
        lr.offset = offset;
        lr.limit = PERS_LIST_MAX;
        prc = pers_list_dead(ts->store, &lr, &list);
        if (prc != PERS_OK)
            return fail(exit_code_for(prc), "%s: %s", command, pers_errmsg(ts->store));
        if (offset == 0 && list.count > 0)
            printf("%-32s %8s  %-24s  %s\n", "ID", "ATTEMPTS", "DIED", "LAST ERROR");
        for (i = 0; i < list.count; i++) {
            char when[64];
            const pers_task *t = &list.items[i];
            printf("%-32s %8lu  %-24s  %s\n", t->id, (unsigned long)t->attempts,
                   format_time(t->finished_ms, when, sizeof when),
                   t->last_error != NULL ? t->last_error : "-");
        }
        shown += list.count;
        offset += list.count;
        page_count = list.count;
        total = list.total;
        pers_task_list_free(ts->store, &list); /* zeroes count and total */
        if (page_count == 0 || offset >= total)
            break;
    }
    if (shown == 0)
        printf("no dead tasks in queue %s of tenant %s\n", queue, tenant);
    return EXIT_OK;
}

static int cmd_dead(int argc, char **argv, common_options *common)
{
    const char *command = "dead";
    const char **all_pos;
    const char *requeue_id = NULL;
    int requeue_all_flag = 0, npos, dashdash, rc;
    taskq_store ts;
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tenant", NULL, OPTION_STRING, &common->tenant, 0, 0},
        {"--requeue", NULL, OPTION_STRING, &requeue_id, 0, 0},
        {"--all", NULL, OPTION_FLAG, &requeue_all_flag, 0, 0},
    };
    if (wants_help(argc, argv))
        return print_help(help_dead), EXIT_OK;
    all_pos = (const char **)calloc((size_t)argc + 1, sizeof *all_pos);
    if (all_pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], all_pos, &npos,
                       &dashdash);
    if (rc == EXIT_OK && (npos != 1 || dashdash < argc))
        rc = fail(EXIT_USAGE, "%s: name one queue: taskq dead QUEUE [--requeue ID | --all]",
                  command);
    else if (rc == EXIT_OK && requeue_id != NULL && requeue_all_flag)
        rc = fail(EXIT_USAGE, "%s: --requeue ID and --all exclude each other", command);
    if (rc == EXIT_OK)
        rc = check_name(command, "queue", all_pos[0]);
    if (rc == EXIT_OK)
        rc = check_name(command, "--tenant", common->tenant);
    if (rc == EXIT_OK && requeue_id != NULL)
        rc = check_key(command, "--requeue", requeue_id);
    if (rc == EXIT_OK)
        rc = store_open(command, common, 0, &ts);
    if (rc != EXIT_OK) {
        free(all_pos);
        return rc;
    }
    if (requeue_all_flag) {
        rc = requeue_all(command, &ts, common->tenant, all_pos[0]);
    } else if (requeue_id != NULL) {
        /* requeue_dead takes a tenant and an id: check the queue too, or "dead q --requeue ID"
           would quietly requeue a task of another queue. */
        pers_task task;
        pers_result prc = pers_get_task(ts.store, common->tenant, requeue_id, &task);
        if (prc == PERS_OK && strcmp(task.queue, all_pos[0]) != 0)
            rc = fail(EXIT_USAGE, "%s: task %s is in queue %s, not %s", command, requeue_id,
                      task.queue, all_pos[0]);
        else if (prc == PERS_OK && task.state != PERS_STATE_DEAD)
            rc = fail(EXIT_USAGE, "%s: task %s is %s, not dead", command, requeue_id,
                      pers_state_name(task.state));
        else if (prc != PERS_OK)
            rc = fail(exit_code_for(prc), "%s: task %s: %s", command, requeue_id,
                      pers_errmsg(ts.store));
        if (prc == PERS_OK)
            pers_task_free(ts.store, &task);
        if (rc == EXIT_OK) {
            prc = pers_requeue_dead(ts.store, common->tenant, requeue_id);
            if (prc == PERS_OK)
                printf("requeued %s\n", requeue_id);
            else
                rc = fail(exit_code_for(prc), "%s: requeue %s: %s", command, requeue_id,
                          pers_errmsg(ts.store));
        }
    } else {
        rc = list_dead(command, &ts, common->tenant, all_pos[0]);
    }
    store_close(&ts);
    free(all_pos);
    return rc;
}

/* Writes bytes for a terminal: printable ASCII, newlines and tabs as they are, the rest as
   \xNN, so a binary result cannot upset the terminal. */
static void print_escaped(const unsigned char *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = data[i];
        if ((c >= 0x20 && c < 0x7f && c != '\\') || c == '\n' || c == '\t')
            putchar(c);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else
            printf("\\x%02x", c);
    }
    if (len == 0 || data[len - 1] != '\n')
        putchar('\n');
}

static int cmd_result(int argc, char **argv, common_options *common)
{
    const char *command = "result";
    const char **pos;
    int npos, dashdash, rc, raw = 0;
    taskq_store ts;
    pers_task_result result;
    pers_result prc;
    char when[64];
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tenant", NULL, OPTION_STRING, &common->tenant, 0, 0},
        {"--raw", NULL, OPTION_FLAG, &raw, 0, 0},
    };
    if (wants_help(argc, argv))
        return print_help(help_result), EXIT_OK;
    pos = (const char **)calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], pos, &npos,
                       &dashdash);
    if (rc == EXIT_OK && (npos != 1 || dashdash < argc))
        rc = fail(EXIT_USAGE, "%s: name one task: taskq result ID", command);
    if (rc == EXIT_OK)
        rc = check_key(command, "task id", pos[0]);
    if (rc == EXIT_OK)
        rc = check_name(command, "--tenant", common->tenant);
    if (rc == EXIT_OK)
        rc = store_open(command, common, 0, &ts);
    if (rc != EXIT_OK) {
        free(pos);
        return rc;
    }
    prc = pers_get_result(ts.store, common->tenant, pos[0], &result);
    if (prc == PERS_OK) {
        if (raw) {
            if (result.data_len > 0 && fwrite(result.data, 1, result.data_len, stdout) !=
                                           result.data_len)
                rc = fail(EXIT_RUNTIME, "%s: writing standard output: %s", command,
                          strerror(errno));
        } else {
            printf("id: %s\ntenant: %s\nqueue: %s\nstate: %s\nattempts: %lu\nfinished: %s\n",
                   result.task_id, result.tenant, result.queue, pers_state_name(result.state),
                   (unsigned long)result.attempts,
                   format_time(result.finished_ms, when, sizeof when));
            printf("%s (%lu bytes):\n", result.state == PERS_STATE_FAILED ? "error" : "result",
                   (unsigned long)result.data_len);
            print_escaped((const unsigned char *)result.data, result.data_len);
        }
        pers_task_result_free(ts.store, &result);
    } else if (prc == PERS_ERR_NOT_FOUND || prc == PERS_ERR_NOT_SUPPORTED) {
        /* No result: not finished yet, dead, or no such task. get_task tells which. */
        pers_task task;
        prc = pers_get_task(ts.store, common->tenant, pos[0], &task);
        if (prc == PERS_ERR_NOT_FOUND)
            rc = fail(EXIT_RUNTIME, "%s: no task %s in tenant %s", command, pos[0],
                      common->tenant);
        else if (prc != PERS_OK)
            rc = fail(exit_code_for(prc), "%s: %s", command, pers_errmsg(ts.store));
        else if (raw)
            rc = fail(EXIT_RUNTIME, "%s: task %s is %s: no result%s", command, pos[0],
                      pers_state_name(task.state),
                      task.state == PERS_STATE_DEAD ? " (dead tasks keep only their last error)"
                                                    : " yet");
        else {
            printf("id: %s\ntenant: %s\nqueue: %s\nstate: %s\nattempts: %lu of %lu\n", task.id,
                   task.tenant, task.queue, pers_state_name(task.state),
                   (unsigned long)task.attempts, (unsigned long)task.max_attempts);
            if (task.state == PERS_STATE_SCHEDULED || task.state == PERS_STATE_READY)
                printf("due: %s\n", format_time(task.due_ms, when, sizeof when));
            if (task.state == PERS_STATE_LEASED)
                printf("worker: %s\nlease expires: %s\n", task.worker_id,
                       format_time(task.lease_expires_ms, when, sizeof when));
            if (task.state == PERS_STATE_DEAD)
                printf("died: %s\n", format_time(task.finished_ms, when, sizeof when));
            if (task.last_error != NULL)
                printf("last error: %s\n", task.last_error);
        }
        if (prc == PERS_OK)
            pers_task_free(ts.store, &task);
    } else {
        rc = fail(exit_code_for(prc), "%s: %s", command, pers_errmsg(ts.store));
    }
    store_close(&ts);
    free(pos);
    return rc;
}

static int cmd_providers(int argc, char **argv, common_options *common)
{
    size_t i;
    (void)common;
    if (wants_help(argc, argv))
        return print_help(help_providers), EXIT_OK;
    if (argc > 0)
        return fail(EXIT_USAGE, "providers: takes no arguments (got \"%s\")", argv[0]);
    for (i = 0; i < sizeof compiled_providers / sizeof compiled_providers[0]; i++)
        printf("%s\n", compiled_providers[i]);
    return EXIT_OK;
}

/* =============================================================================================
   Workers: the shared runtime, pools of worker threads, one child process per task
   ============================================================================================= */

typedef struct work_settings {
    const char *tenant;
    const char *const *queues;
    size_t queue_count;
    char *const *command;         /* argv of the command, NULL-terminated */
    const char *worker_id;        /* base name; threads get ".N" when there are several */
    int64_t lease_ms;
    int64_t backoff_base_ms, backoff_max_ms;
    int64_t idle_horizon_ms, poll_max_ms;
    int64_t workers;
    int64_t max_tasks;            /* 0: no limit */
    int64_t fail_exit;            /* -1: none */
    int exit_when_idle;
    int verbosity;                /* 0 errors only, 1 failures, 2 every task */
} work_settings;

/* What every worker thread of the process shares. */
typedef struct runtime {
    pers_store *store;
    uint64_t max_payload;
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* CLOCK_MONOTONIC: idle workers wait on it */
    int stop_claiming;            /* first signal, a fatal store error */
    int abandoning;               /* second signal or --grace over: kill commands, abandon */
    int abandon_pipe[2];          /* [1] is closed to wake every poll() at once */
    int event_pipe[2];            /* signal handler ('S') and exiting workers ('D') -> main */
    int exit_code;                /* EXIT_RUNTIME after a fatal store error */
    int threads_alive;            /* worker threads not yet ended; main waits for 0 */
    pthread_mutex_t spawn_lock;   /* pipe + close-on-exec + posix_spawn, atomically */
} runtime;

typedef struct worker_pool worker_pool;

typedef struct worker {
    worker_pool *pool;
    unsigned index;
    char id[PERS_NAME_MAX + 1];
    uint64_t rng;
    pthread_t thread;
    int started;
} worker;

/* The workers of one tenant and queue list. Counters are guarded by the runtime's lock. */
struct worker_pool {
    runtime *rt;
    work_settings settings;
    worker *workers;
    unsigned busy;                /* threads in a claim or running a task */
    uint64_t finished_tasks;      /* bumped as each task ends, for the idle check */
    int64_t claimed;              /* toward --max-tasks */
    int idle;                     /* --exit-when-idle decided it */
    uint64_t completed, failed, retried, dead, lost, abandoned, store_errors;
};

static int signal_event_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    char c = 'S';
    ssize_t n;
    (void)sig;
    n = write(signal_event_fd, &c, 1); /* non-blocking: a full pipe already holds a wake-up */
    (void)n;
    errno = saved;
}

static int set_fd_flags(int fd, int cloexec, int nonblock)
{
    int fl;
    if (cloexec && ((fl = fcntl(fd, F_GETFD)) < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
        return -1;
    if (nonblock && ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -1;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int runtime_init(runtime *rt, pers_store *store, uint64_t max_payload)
{
    pthread_condattr_t ca;
    struct sigaction sa;
    memset(rt, 0, sizeof *rt);
    rt->store = store;
    rt->max_payload = max_payload;
    rt->abandon_pipe[0] = rt->abandon_pipe[1] = rt->event_pipe[0] = rt->event_pipe[1] = -1;
    if (pipe(rt->abandon_pipe) != 0 || pipe(rt->event_pipe) != 0 ||
        set_fd_flags(rt->abandon_pipe[0], 1, 0) != 0 || set_fd_flags(rt->abandon_pipe[1], 1, 0) ||
        set_fd_flags(rt->event_pipe[0], 1, 1) != 0 || set_fd_flags(rt->event_pipe[1], 1, 1) != 0)
        return -1;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->spawn_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->wake, &ca);
    pthread_condattr_destroy(&ca);

    signal_event_fd = rt->event_pipe[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A command that exits without reading all of its input must not kill taskq with SIGPIPE;
       the command gets SIGPIPE back at spawn (an ignored signal would survive exec). */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

static void runtime_destroy(runtime *rt)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal_event_fd = -1;
    close_fd(&rt->abandon_pipe[0]);
    close_fd(&rt->abandon_pipe[1]);
    close_fd(&rt->event_pipe[0]);
    close_fd(&rt->event_pipe[1]);
    pthread_cond_destroy(&rt->wake);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->spawn_lock);
}

static void runtime_stop_claiming(runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    rt->stop_claiming = 1;
    pthread_cond_broadcast(&rt->wake);
    pthread_mutex_unlock(&rt->lock);
}

static void runtime_abandon(runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    rt->stop_claiming = 1;
    rt->abandoning = 1;
    pthread_cond_broadcast(&rt->wake);
    close_fd(&rt->abandon_pipe[1]); /* every worker polling the read end wakes up */
    pthread_mutex_unlock(&rt->lock);
}

static int runtime_is_abandoning(runtime *rt)
{
    int v;
    pthread_mutex_lock(&rt->lock);
    v = rt->abandoning;
    pthread_mutex_unlock(&rt->lock);
    return v;
}

/* Waits on the runtime's condition for up to ms; the caller holds rt->lock. */
static void runtime_wait_locked(runtime *rt, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&rt->wake, &rt->lock, &ts);
}

/* ---------------------------------------------------------------------------------------------
   One task: the child process
   ------------------------------------------------------------------------------------------- */

/* The command's standard output, up to the store's payload limit. */
typedef struct output_buffer {
    char *data;
    size_t len, cap, limit;
    int truncated;
} output_buffer;

static void output_append(output_buffer *out, const char *src, size_t n)
{
    if (out->len + n > out->limit) {
        n = out->limit - out->len;
        out->truncated = 1;
    }
    if (out->len + n > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;
        char *bigger;
        while (cap < out->len + n)
            cap *= 2;
        if (cap > out->limit)
            cap = out->limit;
        bigger = (char *)realloc(out->data, cap > 0 ? cap : 1);
        if (bigger == NULL) {
            out->truncated = 1;
            return;
        }
        out->data = bigger;
        out->cap = cap;
    }
    if (n > 0) {
        memcpy(out->data + out->len, src, n);
        out->len += n;
    }
}

typedef struct child_process {
    pid_t pid;
    int stdin_fd;   /* our end of its standard input */
    int stdout_fd;  /* our end of its standard output */
} child_process;

/* The environment of a command: ours, without stale TASKQ_ variables, plus the task's. */
typedef struct task_environment {
    char **envp;
    char id[32 + PERS_ID_MAX];
    char tenant[32 + PERS_NAME_MAX];
    char queue[32 + PERS_NAME_MAX];
    char attempt[48];
    char max_attempts[48];
    char worker_id[32 + PERS_NAME_MAX];
} task_environment;

static int is_task_variable(const char *entry)
{
    static const char *const names[] = {"TASKQ_TASK_ID=", "TASKQ_TENANT=", "TASKQ_QUEUE=",
                                        "TASKQ_ATTEMPT=", "TASKQ_MAX_ATTEMPTS=",
                                        "TASKQ_WORKER_ID="};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

static int task_environment_build(task_environment *env, const pers_task *task,
                                  const char *worker_id)
{
    size_t n = 0, i, k = 0;
    while (environ != NULL && environ[n] != NULL)
        n++;
    env->envp = (char **)calloc(n + 7, sizeof *env->envp);
    if (env->envp == NULL)
        return -1;
    for (i = 0; i < n; i++)
        if (!is_task_variable(environ[i]))
            env->envp[k++] = environ[i];
    snprintf(env->id, sizeof env->id, "TASKQ_TASK_ID=%s", task->id);
    snprintf(env->tenant, sizeof env->tenant, "TASKQ_TENANT=%s", task->tenant);
    snprintf(env->queue, sizeof env->queue, "TASKQ_QUEUE=%s", task->queue);
    snprintf(env->attempt, sizeof env->attempt, "TASKQ_ATTEMPT=%lu",
             (unsigned long)task->attempts);
    snprintf(env->max_attempts, sizeof env->max_attempts, "TASKQ_MAX_ATTEMPTS=%lu",
             (unsigned long)task->max_attempts);
    snprintf(env->worker_id, sizeof env->worker_id, "TASKQ_WORKER_ID=%s", worker_id);
    env->envp[k++] = env->id;
    env->envp[k++] = env->tenant;
    env->envp[k++] = env->queue;
    env->envp[k++] = env->attempt;
    env->envp[k++] = env->max_attempts;
    env->envp[k++] = env->worker_id;
    env->envp[k] = NULL;
    return 0;
}

/* Starts the command in its own process group, its stdin and stdout on fresh pipes. Returns 0
   or an errno value. */
static int spawn_command(runtime *rt, char *const *argv, char **envp, child_process *child)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t empty, defaults;
    int err = 0;

    child->pid = -1;
    child->stdin_fd = child->stdout_fd = -1;
    if (posix_spawn_file_actions_init(&actions) != 0)
        return ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return ENOMEM;
    }
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);

    /* Under the lock: no other thread's command can be spawned while these pipes are still
       inheritable (see DESIGN NOTES). */
    pthread_mutex_lock(&rt->spawn_lock);
    if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0) {
        err = errno;
    } else if (set_fd_flags(in_pipe[0], 1, 0) != 0 || set_fd_flags(in_pipe[1], 1, 1) != 0 ||
               set_fd_flags(out_pipe[0], 1, 1) != 0 || set_fd_flags(out_pipe[1], 1, 0) != 0) {
        err = errno;
    } else {
        /* dup2 onto 0 and 1 clears close-on-exec there; the originals close at exec. */
        posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
        err = posix_spawnp(&child->pid, argv[0], &actions, &attr, argv, envp);
    }
    pthread_mutex_unlock(&rt->spawn_lock);

    close_fd(&in_pipe[0]);
    close_fd(&out_pipe[1]);
    if (err != 0) {
        close_fd(&in_pipe[1]);
        close_fd(&out_pipe[0]);
        child->pid = -1;
    } else {
        child->stdin_fd = in_pipe[1];
        child->stdout_fd = out_pipe[0];
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return err;
}

/* 1 when the child has exited (left unreaped, so its process group id cannot be reused). */
static int child_has_exited(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return info.si_pid == pid;
}

static int reap_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* SIGTERM to the command's process group, SIGKILL a second later if it is still there; then
   SIGKILL to whatever it left in its group, and reap it. */
static void kill_child(pid_t pid)
{
    int i;
    kill(-pid, SIGTERM);
    for (i = 0; i < 100 && !child_has_exited(pid); i++)
        sleep_ms(10);
    kill(-pid, SIGKILL);
    (void)reap_child(pid);
}

typedef enum child_outcome {
    CHILD_EXITED,     /* *status holds its wait status */
    CHILD_LEASE_LOST, /* killed: the task belongs to someone else now */
    CHILD_ABANDONED   /* killed: taskq is shutting down */
} child_outcome;

/* Feeds the payload, collects the output, extends the lease, and watches for shutdown, until
   the command exits or has to be killed. */
static child_outcome watch_child(worker *w, child_process *child, const pers_task *task,
                                 const pers_lease *lease, output_buffer *out, int *status)
{
    runtime *rt = w->pool->rt;
    const work_settings *s = &w->pool->settings;
    int64_t extend_every = s->lease_ms / 3 > 0 ? s->lease_ms / 3 : 1;
    int64_t next_extend = monotonic_ms() + extend_every;
    int64_t exit_check_step = 1;
    size_t written = 0;
    char buf[65536];

    if (task->payload_len == 0)
        close_fd(&child->stdin_fd); /* end of input at once */
    for (;;) {
        struct pollfd fds[3];
        nfds_t n = 0;
        int in_at = -1, out_at = -1, stop_at = -1;
        int64_t now, timeout;
        ssize_t got;

        if (child->stdin_fd >= 0) {
            fds[n].fd = child->stdin_fd;
            fds[n].events = POLLOUT;
            in_at = (int)n++;
        }
        if (child->stdout_fd >= 0) {
            fds[n].fd = child->stdout_fd;
            fds[n].events = POLLIN;
            out_at = (int)n++;
        }
        fds[n].fd = rt->abandon_pipe[0];
        fds[n].events = POLLIN;
        stop_at = (int)n++;

        now = monotonic_ms();
        timeout = next_extend - now;
        if (timeout < 0)
            timeout = 0;
        if (child->stdout_fd < 0) {
            /* Output closed: the command is probably exiting; look again soon, then less
               often (1, 2, 4 ... 100 ms). */
            if (timeout > exit_check_step)
                timeout = exit_check_step;
            exit_check_step = exit_check_step * 2 > 100 ? 100 : exit_check_step * 2;
        } else if (timeout > 250) {
            timeout = 250; /* a command may exit while something it started keeps stdout open */
        }
        if (poll(fds, n, (int)timeout) < 0 && errno != EINTR) {
            note("worker %s: poll: %s", w->id, strerror(errno));
            sleep_ms(10);
        }

        if ((fds[stop_at].revents & (POLLIN | POLLHUP | POLLERR)) && runtime_is_abandoning(rt)) {
            kill_child(child->pid);
            return CHILD_ABANDONED;
        }
        if (in_at >= 0 && (fds[in_at].revents & (POLLOUT | POLLERR | POLLHUP))) {
            size_t left = task->payload_len - written;
            ssize_t put = write(child->stdin_fd, (const char *)task->payload + written,
                                left > sizeof buf ? sizeof buf : left);
            if (put > 0)
                written += (size_t)put;
            else if (put < 0 && errno != EAGAIN && errno != EINTR)
                written = task->payload_len; /* EPIPE: it does not want (the rest of) its input */
            if (written == task->payload_len)
                close_fd(&child->stdin_fd);
        }
        if (out_at >= 0 && (fds[out_at].revents & (POLLIN | POLLHUP | POLLERR))) {
            got = read(child->stdout_fd, buf, sizeof buf);
            if (got > 0)
                output_append(out, buf, (size_t)got);
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                close_fd(&child->stdout_fd);
        }
        if (child_has_exited(child->pid)) {
            /* What it wrote before exiting is still in the pipe. */
            while (child->stdout_fd >= 0 && (got = read(child->stdout_fd, buf, sizeof buf)) > 0)
                output_append(out, buf, (size_t)got);
            close_fd(&child->stdin_fd);
            close_fd(&child->stdout_fd);
            *status = reap_child(child->pid);
            return CHILD_EXITED;
        }
        if (monotonic_ms() >= next_extend) {
            pers_result rc = pers_extend_lease(rt->store, lease, s->lease_ms, NULL);
            if (rc == PERS_ERR_LEASE_LOST || rc == PERS_ERR_NOT_FOUND ||
                rc == PERS_ERR_INVALID_STATE) {
                note("worker %s: task %s: lease lost (%s); killing the command", w->id,
                     task->id, pers_errmsg(rt->store));
                kill_child(child->pid);
                return CHILD_LEASE_LOST;
            }
            if (rc != PERS_OK) /* the store is unwell: keep trying; the lease may still hold */
                note("worker %s: task %s: extending the lease: %s", w->id, task->id,
                     pers_errmsg(rt->store));
            next_extend = monotonic_ms() + extend_every;
        }
    }
}

static void count(worker_pool *pool, uint64_t *counter)
{
    pthread_mutex_lock(&pool->rt->lock);
    ++*counter;
    pthread_mutex_unlock(&pool->rt->lock);
}

/* Reports the command's outcome to the store: complete, fail for good, or nack with backoff. */
static void settle_task(worker *w, const pers_task *task, const pers_lease *lease, int status,
                        const output_buffer *out)
{
    worker_pool *pool = w->pool;
    runtime *rt = pool->rt;
    const work_settings *s = &pool->settings;
    pers_result rc;
    char reason[128];

    if (out->truncated)
        warn("worker %s: task %s: output cut to %lu bytes (the store's payload limit)", w->id,
             task->id, (unsigned long)out->len);
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == s->fail_exit)) {
        pers_completion done;
        int failed = WEXITSTATUS(status) != 0;
        memset(&done, 0, sizeof done);
        done.failed = failed;
        done.data = out->data;
        done.data_len = out->len;
        rc = pers_complete(rt->store, lease, &done);
        if (rc == PERS_OK) {
            count(pool, failed ? &pool->failed : &pool->completed);
            if (s->verbosity >= 2 || (failed && s->verbosity >= 1))
                note("worker %s: task %s (%s, attempt %lu): %s", w->id, task->id, task->queue,
                     (unsigned long)task->attempts,
                     failed ? "failed for good (--fail-exit)" : "completed");
        } else if (rc == PERS_ERR_LEASE_LOST) {
            count(pool, &pool->lost);
            note("worker %s: task %s: lease lost before completion; the result is dropped",
                 w->id, task->id);
        } else {
            count(pool, &pool->store_errors);
            note("worker %s: task %s: complete: %s (the task runs again when its lease expires)",
                 w->id, task->id, pers_errmsg(rt->store));
        }
        return;
    }

    if (WIFEXITED(status))
        snprintf(reason, sizeof reason, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(reason, sizeof reason, "wait status %d", status);
    {
        int64_t delay = backoff_delay_ms(s->backoff_base_ms, s->backoff_max_ms, task->attempts,
                                         &w->rng);
        pers_task_state state = PERS_STATE_READY;
        rc = pers_nack(rt->store, lease, delay, reason, &state);
        if (rc == PERS_OK && state == PERS_STATE_DEAD) {
            count(pool, &pool->dead);
            if (s->verbosity >= 1)
                note("worker %s: task %s (%s, attempt %lu of %lu): %s; dead", w->id, task->id,
                     task->queue, (unsigned long)task->attempts,
                     (unsigned long)task->max_attempts, reason);
        } else if (rc == PERS_OK) {
            count(pool, &pool->retried);
            if (s->verbosity >= 1)
                note("worker %s: task %s (%s, attempt %lu of %lu): %s; retry in %lld ms", w->id,
                     task->id, task->queue, (unsigned long)task->attempts,
                     (unsigned long)task->max_attempts, reason, (long long)delay);
        } else if (rc == PERS_ERR_LEASE_LOST) {
            count(pool, &pool->lost);
            note("worker %s: task %s: %s, but the lease was lost meanwhile", w->id, task->id,
                 reason);
        } else {
            count(pool, &pool->store_errors);
            note("worker %s: task %s: nack: %s", w->id, task->id, pers_errmsg(rt->store));
        }
    }
}

static void run_task(worker *w, pers_task *task)
{
    worker_pool *pool = w->pool;
    runtime *rt = pool->rt;
    pers_lease lease;
    task_environment env;
    child_process child;
    output_buffer out;
    int err, status = 0;
    child_outcome outcome;

    lease.tenant = task->tenant;
    lease.task_id = task->id;
    lease.token = task->lease_token;
    memset(&out, 0, sizeof out);
    out.limit = (size_t)(rt->max_payload < (uint64_t)SIZE_MAX ? rt->max_payload : SIZE_MAX);
    if (pool->settings.verbosity >= 2)
        note("worker %s: task %s (%s, attempt %lu): starting", w->id, task->id, task->queue,
             (unsigned long)task->attempts);

    if (task_environment_build(&env, task, w->id) != 0)
        err = ENOMEM;
    else
        err = spawn_command(rt, pool->settings.command, env.envp, &child);
    free(env.envp);
    if (err != 0) {
        /* Not the task's fault: give it back (its attempt does not count). A command that
           cannot be run at all (removed since taskq started, say) stops this taskq, exit 1;
           anything else (no memory, no processes left) may pass, so pause and go on. */
        int hopeless = err == ENOENT || err == EACCES || err == ENOTDIR || err == ENOEXEC;
        note("worker %s: task %s: cannot start %s: %s; task given back%s", w->id, task->id,
             pool->settings.command[0], strerror(err), hopeless ? "; stopping" : "");
        if (pers_abandon(rt->store, &lease) != PERS_OK)
            note("worker %s: task %s: abandon: %s", w->id, task->id, pers_errmsg(rt->store));
        pthread_mutex_lock(&rt->lock);
        pool->abandoned++;
        if (hopeless) {
            rt->exit_code = EXIT_RUNTIME;
            rt->stop_claiming = 1;
            pthread_cond_broadcast(&rt->wake);
        } else if (!rt->stop_claiming) {
            runtime_wait_locked(rt, 1000);
        }
        pthread_mutex_unlock(&rt->lock);
        return;
    }
    outcome = watch_child(w, &child, task, &lease, &out, &status);
    close_fd(&child.stdin_fd); /* still open when the command was killed */
    close_fd(&child.stdout_fd);
    if (outcome == CHILD_EXITED) {
        settle_task(w, task, &lease, status, &out);
    } else if (outcome == CHILD_LEASE_LOST) {
        count(pool, &pool->lost);
    } else {
        pers_result rc = pers_abandon(rt->store, &lease);
        count(pool, &pool->abandoned);
        if (rc == PERS_OK)
            note("worker %s: task %s: command killed, task given back (ready again)", w->id,
                 task->id);
        else
            note("worker %s: task %s: command killed; abandon: %s", w->id, task->id,
                 pers_errmsg(rt->store));
    }
    free(out.data);
}

/* ---------------------------------------------------------------------------------------------
   Worker threads
   ------------------------------------------------------------------------------------------- */

/* Retrying cannot help these: stop claiming and exit 1 once the running tasks are done. */
static int claim_error_is_fatal(pers_result rc)
{
    return rc != PERS_ERR_UNAVAILABLE && rc != PERS_ERR_TIMEOUT && rc != PERS_ERR_NO_MEMORY &&
           rc != PERS_ERR_LIMIT;
}

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    worker_pool *pool = w->pool;
    runtime *rt = pool->rt;
    const work_settings *s = &pool->settings;
    pers_claim_req req;
    int64_t pause_after_error = 100;
    char wake = 'D';
    ssize_t n;

    memset(&req, 0, sizeof req);
    req.tenant = s->tenant;
    req.queues = s->queues;
    req.queue_count = s->queue_count;
    req.worker_id = w->id;
    req.lease_ms = s->lease_ms;
    req.max_tasks = 1; /* one command at a time per thread: claim no more than we can run */

    for (;;) {
        pers_task task;
        pers_claim_res res;
        pers_result rc;
        uint64_t finished_before;
        int64_t now, wait_ms;

        pthread_mutex_lock(&rt->lock);
        if (rt->stop_claiming || pool->idle ||
            (s->max_tasks > 0 && pool->claimed >= s->max_tasks)) {
            pthread_mutex_unlock(&rt->lock);
            break;
        }
        pool->claimed++;
        pool->busy++;
        finished_before = pool->finished_tasks;
        pthread_mutex_unlock(&rt->lock);

        memset(&task, 0, sizeof task);
        rc = pers_claim(rt->store, &req, &task, &res);
        if (rc == PERS_OK && res.count == 1) {
            pause_after_error = 100;
            run_task(w, &task);
            pers_task_free(rt->store, &task);
            pthread_mutex_lock(&rt->lock);
            pool->busy--;
            pool->finished_tasks++;
            pthread_mutex_unlock(&rt->lock);
            continue;
        }

        if (rc != PERS_OK && claim_error_is_fatal(rc)) {
            (void)fail(EXIT_RUNTIME, "worker %s: claim: %s; stopping", w->id,
                       pers_errmsg(rt->store));
            pthread_mutex_lock(&rt->lock);
            pool->claimed--;
            pool->busy--;
            rt->exit_code = EXIT_RUNTIME;
            rt->stop_claiming = 1;
            pthread_cond_broadcast(&rt->wake);
            pthread_mutex_unlock(&rt->lock);
            break;
        }
        if (rc != PERS_OK)
            note("worker %s: claim: %s; trying again in %lld ms", w->id, pers_errmsg(rt->store),
                 (long long)pause_after_error);

        pthread_mutex_lock(&rt->lock);
        pool->claimed--;
        pool->busy--;
        if (rc != PERS_OK) {
            wait_ms = pause_after_error;
            pause_after_error = pause_after_error * 2 > s->poll_max_ms ? s->poll_max_ms
                                                                       : pause_after_error * 2;
        } else {
            /* Nothing ready. Idle means: no thread of this pool busy, none finished a task since
               this claim began (it could have nacked one for a retry the claim did not see), and
               nothing scheduled within the horizon. */
            now = store_now_ms();
            if (s->exit_when_idle && pool->busy == 0 && pool->finished_tasks == finished_before &&
                (res.next_due_ms == PERS_NO_TIME || res.next_due_ms - now > s->idle_horizon_ms)) {
                pool->idle = 1;
                pthread_cond_broadcast(&rt->wake);
                pthread_mutex_unlock(&rt->lock);
                break;
            }
            wait_ms = s->poll_max_ms;
            if (res.next_due_ms != PERS_NO_TIME && res.next_due_ms - now < wait_ms)
                wait_ms = res.next_due_ms - now < 1 ? 1 : res.next_due_ms - now;
        }
        if (!rt->stop_claiming && !pool->idle)
            runtime_wait_locked(rt, wait_ms);
        pthread_mutex_unlock(&rt->lock);
    }

    pthread_mutex_lock(&rt->lock);
    rt->threads_alive--;
    pthread_mutex_unlock(&rt->lock);
    n = write(rt->event_pipe[1], &wake, 1); /* wakes the main thread to count us out */
    (void)n;
    return NULL;
}

/* "host-1234": the first label of the host name, cleaned up to a valid name (S10). */
static void default_worker_id(char *out, size_t size)
{
    char host[256];
    size_t i, n = 0;
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    for (i = 0; host[i] != '\0' && host[i] != '.' && n < 40 && n + 1 < size; i++) {
        char c = host[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (n == 0 && !alnum)
            continue;
        out[n++] = (alnum || c == '_' || c == '-') ? c : '-';
    }
    if (n == 0)
        n = (size_t)snprintf(out, size, "taskq");
    snprintf(out + n, size - n, "-%ld", (long)getpid());
}

static int pool_start(worker_pool *pool, runtime *rt, const work_settings *settings, unsigned salt)
{
    unsigned i, count_threads = (unsigned)settings->workers;
    memset(pool, 0, sizeof *pool);
    pool->rt = rt;
    pool->settings = *settings;
    pool->workers = (worker *)calloc(count_threads, sizeof *pool->workers);
    if (pool->workers == NULL)
        return fail(EXIT_RUNTIME, "work: out of memory");
    for (i = 0; i < count_threads; i++) {
        worker *w = &pool->workers[i];
        int err;
        w->pool = pool;
        w->index = i;
        w->rng = random_seed(salt * 1000u + i);
        if (count_threads == 1)
            snprintf(w->id, sizeof w->id, "%s", settings->worker_id);
        else
            snprintf(w->id, sizeof w->id, "%s.%u", settings->worker_id, i + 1);
        pthread_mutex_lock(&rt->lock);
        rt->threads_alive++;
        pthread_mutex_unlock(&rt->lock);
        err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0) {
            pthread_mutex_lock(&rt->lock);
            rt->threads_alive--;
            pthread_mutex_unlock(&rt->lock);
            runtime_stop_claiming(rt);
            return fail(EXIT_RUNTIME, "work: cannot start worker thread %u: %s", i + 1,
                        strerror(err));
        }
        w->started = 1;
    }
    return EXIT_OK;
}

static void pool_join(worker_pool *pool)
{
    int64_t i;
    if (pool->workers == NULL)
        return;
    for (i = 0; i < pool->settings.workers; i++)
        if (pool->workers[i].started)
            pthread_join(pool->workers[i].thread, NULL);
    free(pool->workers);
    pool->workers = NULL;
}

/* The main thread while workers run: turns signals into "stop claiming" (first) and "abandon"
   (second, or --grace later), and returns when every worker thread has ended. */
static void supervise(runtime *rt, int64_t grace_ms)
{
    int signals = 0;
    int64_t abandon_at = -1;
    for (;;) {
        struct pollfd pfd;
        char buf[64];
        ssize_t got, i;
        int timeout = -1, alive;

        pthread_mutex_lock(&rt->lock);
        alive = rt->threads_alive;
        pthread_mutex_unlock(&rt->lock);
        if (alive == 0)
            return;
        if (abandon_at >= 0) {
            int64_t left = abandon_at - monotonic_ms();
            if (left <= 0) {
                note("grace period over: killing the running commands and giving their tasks "
                     "back");
                runtime_abandon(rt);
                abandon_at = -1;
                continue;
            }
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        pfd.fd = rt->event_pipe[0];
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout) <= 0)
            continue;
        while ((got = read(rt->event_pipe[0], buf, sizeof buf)) > 0) {
            for (i = 0; i < got; i++) {
                if (buf[i] != 'S')
                    continue; /* 'D': a worker ended; the count above says how many are left */
                signals++;
                if (signals == 1) {
                    note("stopping: claiming no more tasks, letting running commands finish "
                         "(signal again to kill them and give their tasks back)");
                    runtime_stop_claiming(rt);
                    if (grace_ms >= 0)
                        abandon_at = monotonic_ms() + grace_ms;
                } else if (signals == 2) {
                    note("second signal: killing the running commands and giving their tasks "
                         "back");
                    runtime_abandon(rt);
                    abandon_at = -1;
                }
            }
        }
    }
}

static void pool_summary(const worker_pool *pool, const char *label)
{
    note("%s: %llu completed, %llu retried, %llu dead, %llu failed for good, %llu lost, %llu "
         "given back%s",
         label, (unsigned long long)pool->completed, (unsigned long long)pool->retried,
         (unsigned long long)pool->dead, (unsigned long long)pool->failed,
         (unsigned long long)pool->lost, (unsigned long long)pool->abandoned,
         pool->store_errors ? " (and store errors, see above)" : "");
}

/* =============================================================================================
   taskq work
   ============================================================================================= */

/* Looks COMMAND up as posix_spawnp will, so that a typo is one clear error at start rather
   than every task failing. */
static int command_exists(const char *name)
{
    const char *path, *p;
    char candidate[PATH_MAX];
    struct stat st;
    if (strchr(name, '/') != NULL)
        return stat(name, &st) == 0 && S_ISREG(st.st_mode) && access(name, X_OK) == 0;
    path = getenv("PATH");
    if (path == NULL)
        path = "/bin:/usr/bin";
    for (p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        int n = len == 0 ? snprintf(candidate, sizeof candidate, "./%s", name)
                         : snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, p, name);
        if (n > 0 && (size_t)n < sizeof candidate && stat(candidate, &st) == 0 &&
            S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
            return 1;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

static int cmd_work(int argc, char **argv, common_options *common)
{
    const char *command = "work";
    const char **pos;
    int npos, dashdash, rc, i, verbose = 0, quiet = 0;
    work_settings s;
    int64_t grace_ms = -1;
    char worker_id[PERS_NAME_MAX + 1];
    const char *worker_id_arg = NULL;
    taskq_store ts;
    runtime rt;
    worker_pool pool;
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tenant", NULL, OPTION_STRING, &common->tenant, 0, 0},
        {"--worker-id", NULL, OPTION_STRING, &worker_id_arg, 0, 0},
        {"--workers", NULL, OPTION_INTEGER, &s.workers, 1, 256},
        {"--lease", NULL, OPTION_DURATION, &s.lease_ms, 3, PERS_DURATION_MAX_MS},
        {"--backoff-base", NULL, OPTION_DURATION, &s.backoff_base_ms, 0, PERS_DURATION_MAX_MS},
        {"--backoff-max", NULL, OPTION_DURATION, &s.backoff_max_ms, 0, PERS_DURATION_MAX_MS},
        {"--grace", NULL, OPTION_DURATION, &grace_ms, 0, PERS_DURATION_MAX_MS},
        {"--max-tasks", NULL, OPTION_INTEGER, &s.max_tasks, 1, INT64_MAX},
        {"--exit-when-idle", NULL, OPTION_FLAG, &s.exit_when_idle, 0, 0},
        {"--idle-horizon", NULL, OPTION_DURATION, &s.idle_horizon_ms, 0, PERS_DURATION_MAX_MS},
        {"--poll-max", NULL, OPTION_DURATION, &s.poll_max_ms, 1, 3600000},
        {"--fail-exit", NULL, OPTION_INTEGER, &s.fail_exit, 1, 255},
        {"--verbose", "-v", OPTION_FLAG, &verbose, 0, 0},
        {"--quiet", "-q", OPTION_FLAG, &quiet, 0, 0},
    };

    if (wants_help(argc, argv))
        return print_help(help_work), EXIT_OK;
    memset(&s, 0, sizeof s);
    s.workers = 1;
    s.lease_ms = 30000;
    s.backoff_base_ms = 1000;
    s.backoff_max_ms = 300000;
    s.idle_horizon_ms = 2000;
    s.poll_max_ms = 1000;
    s.fail_exit = -1;
    pos = (const char **)calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], pos, &npos,
                       &dashdash);
    if (rc == EXIT_OK && npos == 0)
        rc = fail(EXIT_USAGE, "%s: name the queues: taskq work QUEUE [QUEUE...] -- COMMAND",
                  command);
    else if (rc == EXIT_OK && (size_t)npos > PERS_QUEUES_MAX)
        rc = fail(EXIT_USAGE, "%s: at most %u queues (got %d)", command,
                  (unsigned)PERS_QUEUES_MAX, npos);
    else if (rc == EXIT_OK && dashdash + 1 >= argc)
        rc = fail(EXIT_USAGE, "%s: give the command after \"--\": taskq work QUEUE -- COMMAND "
                              "[ARGS...]",
                  command);
    else if (rc == EXIT_OK && s.backoff_base_ms > s.backoff_max_ms)
        rc = fail(EXIT_USAGE, "%s: --backoff-base (%lld ms) is above --backoff-max (%lld ms)",
                  command, (long long)s.backoff_base_ms, (long long)s.backoff_max_ms);
    else if (rc == EXIT_OK && verbose && quiet)
        rc = fail(EXIT_USAGE, "%s: --verbose and --quiet exclude each other", command);
    if (rc == EXIT_OK)
        rc = check_name(command, "--tenant", common->tenant);
    for (i = 0; rc == EXIT_OK && i < npos; i++)
        rc = check_name(command, "queue", pos[i]);
    if (rc == EXIT_OK) {
        if (worker_id_arg != NULL)
            snprintf(worker_id, sizeof worker_id, "%s", worker_id_arg);
        else
            default_worker_id(worker_id, sizeof worker_id);
        rc = check_name(command, "--worker-id", worker_id_arg ? worker_id_arg : worker_id);
        if (rc == EXIT_OK && s.workers > 1 && strlen(worker_id) + 4 > PERS_NAME_MAX)
            rc = fail(EXIT_USAGE, "%s: --worker-id: with --workers each thread adds \".N\"; "
                                  "keep the id within %d characters",
                      command, PERS_NAME_MAX - 4);
    }
    if (rc == EXIT_OK && !command_exists(argv[dashdash + 1]))
        rc = fail(EXIT_USAGE, "%s: command \"%s\" not found%s", command, argv[dashdash + 1],
                  strchr(argv[dashdash + 1], '/') ? " or not executable" : " on PATH");
    if (rc == EXIT_OK)
        rc = store_open(command, common, 0, &ts);
    if (rc != EXIT_OK) {
        free(pos);
        return rc;
    }

    s.tenant = common->tenant;
    s.queues = pos;
    s.queue_count = (size_t)npos;
    s.command = argv + dashdash + 1;
    s.worker_id = worker_id;
    s.verbosity = quiet ? 0 : verbose ? 2 : 1;
    if (runtime_init(&rt, ts.store, ts.max_payload) != 0) {
        rc = fail(EXIT_RUNTIME, "%s: cannot create pipes: %s", command, strerror(errno));
    } else {
        if (s.verbosity >= 2)
            note("worker %s: tenant %s, %d queue(s) from %s, %lld thread(s), store %s", worker_id,
                 s.tenant, npos, pos[0], (long long)s.workers, pers_store_provider(ts.store));
        rc = pool_start(&pool, &rt, &s, 1);
        supervise(&rt, grace_ms);
        pool_join(&pool);
        if (s.verbosity >= 1)
            pool_summary(&pool, worker_id);
        if (rc == EXIT_OK)
            rc = rt.exit_code;
        runtime_destroy(&rt);
    }
    store_close(&ts);
    free(pos);
    return rc;
}

/* =============================================================================================
   taskq demo: the whole scenario in one process (works on the memory provider)
   ============================================================================================= */

/* The built-in job, the same as examples/taskq/demo_job.sh without its log. */
static const char demo_job_script[] =
    "payload=$(cat)\n"
    "case \"$payload\" in\n"
    "*always-fails*) exit 3 ;;\n"
    "*fails-once*) if [ \"$TASKQ_ATTEMPT\" -lt 2 ]; then exit 3; fi ;;\n"
    "esac\n"
    "printf 'done: %s (tenant %s, attempt %s)\\n' \"$payload\" \"$TASKQ_TENANT\" "
    "\"$TASKQ_ATTEMPT\"\n";

typedef struct demo_task {
    char id[PERS_ID_MAX + 1];
    int tenant;     /* index into demo_tenants */
    int kind;       /* 0 fine, 1 fails once, 2 always fails */
} demo_task;

static const char *const demo_tenants[2] = {"acme", "globex"};
static const char *const demo_queues[2] = {"thumbnails", "reports"};

static int demo_enqueue(taskq_store *ts, demo_task *tasks, int64_t total, int64_t *per_tenant)
{
    pers_enqueue_req *reqs;
    pers_enqueue_res *res;
    char (*payloads)[96];
    size_t chunk = PERS_BATCH_MAX, k = 0;
    int t;
    int64_t i;

    if (ts->caps.max_batch != 0 && ts->caps.max_batch < chunk)
        chunk = ts->caps.max_batch;
    reqs = (pers_enqueue_req *)calloc(chunk, sizeof *reqs);
    res = (pers_enqueue_res *)calloc(chunk, sizeof *res);
    payloads = (char(*)[96])calloc(chunk, sizeof *payloads);
    if (reqs == NULL || res == NULL || payloads == NULL) {
        free(reqs);
        free(res);
        free(payloads);
        return fail(EXIT_RUNTIME, "demo: out of memory");
    }
    per_tenant[0] = total * 2 / 3;
    per_tenant[1] = total - per_tenant[0];
    for (t = 0; t < 2; t++) {
        for (i = 0; i < per_tenant[t];) {
            size_t n = 0, j;
            pers_result rc;
            for (; i < per_tenant[t] && n < chunk; i++, n++) {
                demo_task *d = &tasks[k + n];
                d->tenant = t;
                d->kind = i % 37 == 17 ? 2 : i % 10 == 3 ? 1 : 0;
                snprintf(payloads[n], sizeof payloads[n],
                         t == 0 ? "thumbnail photo-%04lld.jpg%s" : "report %04lld%s",
                         (long long)i,
                         d->kind == 2   ? " always-fails"
                         : d->kind == 1 ? " fails-once"
                                        : "");
                memset(&reqs[n], 0, sizeof reqs[n]);
                reqs[n].tenant = demo_tenants[t];
                reqs[n].queue = demo_queues[t];
                reqs[n].payload = payloads[n];
                reqs[n].payload_len = strlen(payloads[n]);
                reqs[n].max_attempts = 3;
            }
            rc = pers_enqueue_batch(ts->store, reqs, n, res);
            if (rc != PERS_OK) {
                int code = fail(exit_code_for(rc), "demo: enqueue: %s", pers_errmsg(ts->store));
                free(reqs);
                free(res);
                free(payloads);
                return code;
            }
            for (j = 0; j < n; j++)
                memcpy(tasks[k + j].id, res[j].task_id, sizeof tasks[k + j].id);
            k += n;
        }
    }
    free(reqs);
    free(res);
    free(payloads);
    return EXIT_OK;
}

/* One line about a task of the demo, as `taskq result` would tell it. */
static void demo_show_task(taskq_store *ts, const demo_task *d)
{
    const char *tenant = demo_tenants[d->tenant];
    pers_task_result r;
    pers_task task;
    if (pers_get_result(ts->store, tenant, d->id, &r) == PERS_OK) {
        size_t len = r.data_len;
        while (len > 0 && ((char *)r.data)[len - 1] == '\n')
            len--;
        printf("   %-6s %s: %s after %lu attempt(s): \"%.*s\"\n", tenant, d->id,
               pers_state_name(r.state), (unsigned long)r.attempts, (int)len,
               (const char *)r.data);
        pers_task_result_free(ts->store, &r);
    } else if (pers_get_task(ts->store, tenant, d->id, &task) == PERS_OK) {
        printf("   %-6s %s: %s after %lu attempt(s), last error \"%s\"\n", tenant, d->id,
               pers_state_name(task.state), (unsigned long)task.attempts,
               task.last_error ? task.last_error : "");
        pers_task_free(ts->store, &task);
    }
}

static int cmd_demo(int argc, char **argv, common_options *common)
{
    const char *command = "demo";
    static char sh_name[] = "sh", dash_c[] = "-c", job_name[] = "taskq-demo-job";
    static char job_script[sizeof demo_job_script];
    char *builtin_job[5];
    const char **pos;
    int npos, dashdash, rc, verbose = 0, t, kind;
    int64_t total = 300, workers = 3, backoff_base = 20, backoff_max = 200, i, per_tenant[2];
    int64_t started, done = 0, retried = 0, dead = 0, unfinished = 0;
    demo_task *tasks = NULL;
    taskq_store ts;
    runtime rt;
    worker_pool pools[2];
    work_settings s;
    const option_spec specs[] = {
        {"--provider", NULL, OPTION_STRING, &common->provider, 0, 0},
        {"--config", NULL, OPTION_STRING, &common->config, 0, 0},
        {"--tasks", NULL, OPTION_INTEGER, &total, 2, 100000},
        {"--workers", NULL, OPTION_INTEGER, &workers, 1, 64},
        {"--backoff-base", NULL, OPTION_DURATION, &backoff_base, 0, 60000},
        {"--backoff-max", NULL, OPTION_DURATION, &backoff_max, 0, 60000},
        {"--verbose", "-v", OPTION_FLAG, &verbose, 0, 0},
    };

    if (wants_help(argc, argv))
        return print_help(help_demo), EXIT_OK;
    pos = (const char **)calloc((size_t)argc + 1, sizeof *pos);
    if (pos == NULL)
        return fail(EXIT_RUNTIME, "%s: out of memory", command);
    rc = parse_options(command, argc, argv, specs, sizeof specs / sizeof specs[0], pos, &npos,
                       &dashdash);
    if (rc == EXIT_OK && npos > 0)
        rc = fail(EXIT_USAGE, "%s: unexpected argument \"%s\"", command, pos[0]);
    else if (rc == EXIT_OK && backoff_base > backoff_max)
        rc = fail(EXIT_USAGE, "%s: --backoff-base is above --backoff-max", command);
    else if (rc == EXIT_OK && dashdash < argc && dashdash + 1 >= argc)
        rc = fail(EXIT_USAGE, "%s: give a command after \"--\"", command);
    else if (rc == EXIT_OK && dashdash + 1 < argc && !command_exists(argv[dashdash + 1]))
        rc = fail(EXIT_USAGE, "%s: command \"%s\" not found", command, argv[dashdash + 1]);
    if (rc == EXIT_OK && (tasks = (demo_task *)calloc((size_t)total, sizeof *tasks)) == NULL)
        rc = fail(EXIT_RUNTIME, "%s: out of memory", command);
    if (rc == EXIT_OK)
        rc = store_open(command, common, 1, &ts);
    if (rc != EXIT_OK) {
        free(tasks);
        free(pos);
        return rc;
    }
    memcpy(job_script, demo_job_script, sizeof job_script);
    builtin_job[0] = sh_name;
    builtin_job[1] = dash_c;
    builtin_job[2] = job_script;
    builtin_job[3] = job_name;
    builtin_job[4] = NULL;

    started = monotonic_ms();
    printf("taskq demo: every step in this one process, on provider \"%s\" (%s)\n",
           pers_store_provider(ts.store),
           ts.caps.flags & PERS_CAP_DURABLE ? "durable" : "nothing survives the process");
    printf("1. enqueue %lld tasks for tenant acme (queue thumbnails) and %lld for tenant globex "
           "(queue reports),\n   in batches; every tenth fails on its first attempt, one in 37 "
           "always fails (3 attempts each)\n",
           (long long)(total * 2 / 3), (long long)(total - total * 2 / 3));
    rc = demo_enqueue(&ts, tasks, total, per_tenant);
    if (rc != EXIT_OK)
        goto done;
    {
        char shown[160] = "the built-in job (like examples/taskq/demo_job.sh)";
        int k;
        if (dashdash + 1 < argc)
            for (shown[0] = '\0', k = dashdash + 1; k < argc; k++)
                snprintf(shown + strlen(shown), sizeof shown - strlen(shown), "%s%s",
                         k > dashdash + 1 ? " " : "", argv[k]);
        printf("2. %lld worker thread(s) per tenant run %s\n   for each task, retrying after "
               "%lld..%lld ms, until nothing is left to do\n",
               (long long)workers, shown, (long long)backoff_base, (long long)backoff_max);
    }
    fflush(stdout);
    if (runtime_init(&rt, ts.store, ts.max_payload) != 0) {
        rc = fail(EXIT_RUNTIME, "%s: cannot create pipes: %s", command, strerror(errno));
        goto done;
    }
    memset(pools, 0, sizeof pools);
    for (t = 0; t < 2 && rc == EXIT_OK; t++) {
        memset(&s, 0, sizeof s);
        s.tenant = demo_tenants[t];
        s.queues = &demo_queues[t];
        s.queue_count = 1;
        s.command = dashdash + 1 < argc ? argv + dashdash + 1 : builtin_job;
        s.worker_id = t == 0 ? "demo-acme" : "demo-globex";
        s.lease_ms = 10000;
        s.backoff_base_ms = backoff_base;
        s.backoff_max_ms = backoff_max;
        s.idle_horizon_ms = 2000;
        s.poll_max_ms = 250;
        s.workers = workers;
        s.fail_exit = -1;
        s.exit_when_idle = 1;
        s.verbosity = verbose ? 2 : 0;
        rc = pool_start(&pools[t], &rt, &s, (unsigned)t + 1);
    }
    supervise(&rt, -1);
    for (t = 0; t < 2; t++)
        pool_join(&pools[t]);
    if (rc == EXIT_OK)
        rc = rt.exit_code;
    runtime_destroy(&rt);

    printf("3. a few results (taskq result ID):\n");
    for (kind = 0; kind < 3; kind++)
        for (i = 0; i < total; i++)
            if (tasks[i].kind == kind) {
                demo_show_task(&ts, &tasks[i]);
                break;
            }
    printf("4. the queues (taskq stats):\n");
    printf("   %-8s %-12s %7s %9s %7s %9s %7s %5s\n", "TENANT", "QUEUE", "READY", "SCHEDULED",
           "LEASED", "COMPLETED", "FAILED", "DEAD");
    for (t = 0; t < 2; t++) {
        pers_stats st;
        if (pers_queue_stats(ts.store, demo_tenants[t], demo_queues[t], &st) == PERS_OK)
            printf("   %-8s %-12s %7llu %9llu %7llu %9llu %7llu %5llu\n", demo_tenants[t],
                   demo_queues[t], (unsigned long long)st.ready, (unsigned long long)st.scheduled,
                   (unsigned long long)st.leased, (unsigned long long)st.completed,
                   (unsigned long long)st.failed, (unsigned long long)st.dead);
    }
    printf("5. dead letters of globex (taskq dead reports --tenant globex):\n");
    {
        pers_list_req lr;
        pers_task_list list;
        size_t k;
        memset(&lr, 0, sizeof lr);
        lr.tenant = demo_tenants[1];
        lr.queue = demo_queues[1];
        if (pers_list_dead(ts.store, &lr, &list) == PERS_OK) {
            if (list.count == 0)
                printf("   none\n");
            for (k = 0; k < list.count; k++)
                printf("   %s  attempts %lu  \"%s\"  payload \"%s\"\n", list.items[k].id,
                       (unsigned long)list.items[k].attempts,
                       list.items[k].last_error ? list.items[k].last_error : "",
                       (const char *)list.items[k].payload);
            pers_task_list_free(ts.store, &list);
        }
    }
    for (i = 0; i < total; i++) {
        pers_task task;
        if (pers_get_task(ts.store, demo_tenants[tasks[i].tenant], tasks[i].id, &task) != PERS_OK) {
            unfinished++;
            continue;
        }
        if (task.state == PERS_STATE_COMPLETED) {
            done++;
            retried += task.attempts > 1;
        } else if (task.state == PERS_STATE_DEAD) {
            dead++;
        } else {
            unfinished++;
        }
        pers_task_free(ts.store, &task);
    }
    printf("summary: %lld tasks: %lld done (%lld of them after a retry), %lld dead, %lld "
           "unfinished, in %.1f s\n",
           (long long)total, (long long)done, (long long)retried, (long long)dead,
           (long long)unfinished, (double)(monotonic_ms() - started) / 1000.0);
    if (rc == EXIT_OK && unfinished > 0)
        rc = fail(EXIT_RUNTIME, "%s: %lld task(s) did not finish", command, (long long)unfinished);
done:
    store_close(&ts);
    free(tasks);
    free(pos);
    return rc;
}

/* =============================================================================================
   main
   ============================================================================================= */

typedef int (*subcommand_fn)(int argc, char **argv, common_options *common);

static const struct subcommand {
    const char *name;
    subcommand_fn run;
    const char *const *help;
} subcommands[] = {
    {"enqueue", cmd_enqueue, help_enqueue}, {"work", cmd_work, help_work},
    {"stats", cmd_stats, help_stats},       {"dead", cmd_dead, help_dead},
    {"result", cmd_result, help_result},    {"providers", cmd_providers, help_providers},
    {"demo", cmd_demo, help_demo},
};

static const struct subcommand *find_subcommand(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(subcommands[i].name, name) == 0)
            return &subcommands[i];
    return NULL;
}

/* A pipe or file opened later must never land on 0, 1 or 2 (a command would read or write
   the wrong thing): if taskq was started with one of them closed, fill it with /dev/null. */
static void ensure_standard_fds(void)
{
    int fd;
    for (fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) < 0)
            return;
}

int main(int argc, char **argv)
{
    common_options common;
    const struct subcommand *sub;
    int i = 1, rc;

    ensure_standard_fds();
    common.provider = NULL;
    common.config = NULL;
    common.tenant = "default";
    /* Options before the subcommand: the store, help, version. */
    while (i < argc && argv[i][0] == '-') {
        const char *value = NULL;
        int m;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return print_help(help_main), EXIT_OK;
        if (strcmp(argv[i], "--version") == 0) {
            printf("taskq %s (persistence.h %s)\n", TASKQ_VERSION, pers_version());
            return EXIT_OK;
        }
        if ((m = match_option(argc, argv, &i, "--provider", 1, &value)) > 0)
            common.provider = value;
        else if (m == 0 && (m = match_option(argc, argv, &i, "--config", 1, &value)) > 0)
            common.config = value;
        if (m < 0)
            return fail(EXIT_USAGE, "%s needs a value", argv[i]);
        if (m == 0)
            return fail(EXIT_USAGE, "unknown option \"%s\" (taskq --help lists the options)",
                        argv[i]);
        i++;
    }
    if (i >= argc)
        return fail(EXIT_USAGE, "name a subcommand: enqueue, work, stats, dead, result, "
                                "providers, demo (taskq --help)");
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc)
            return print_help(help_main), EXIT_OK;
        if ((sub = find_subcommand(argv[i + 1])) == NULL)
            return fail(EXIT_USAGE, "help: unknown subcommand \"%s\"", argv[i + 1]);
        return print_help(sub->help), EXIT_OK;
    }
    sub = find_subcommand(argv[i]);
    if (sub == NULL)
        return fail(EXIT_USAGE, "unknown subcommand \"%s\" (taskq --help lists them)", argv[i]);
    rc = sub->run(argc - i - 1, argv + i + 1, &common);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = fail(EXIT_RUNTIME, "writing standard output: %s", strerror(errno));
    return rc;
}
