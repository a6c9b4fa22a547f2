/* tests/redis/redis_harness.h - a real redis-server for the Redis backend's tests (no mocks).

   rh_start() picks a free loopback port, makes a temporary data directory, starts
   `redis-server` bound to 127.0.0.1 on that port (no persistence, or `--appendonly yes
   --appendfsync always` when asked) and waits until it answers PING. rh_kill() sends SIGKILL;
   rh_restart() starts it again on the same port with the same data directory (the fault test);
   rh_stop() stops it and removes the directory. rh_connect()/rh_command() give the tests a plain
   hiredis connection for looking at the server side.

   The program must define _XOPEN_SOURCE 700 (fork, kill, mkdtemp, nanosleep) before its first
   include. The server binary is $REDIS_SERVER, else `redis-server` from PATH. When it cannot be
   found, rh_require_server() prints how to install it and returns 0 (the test then skips), except
   under CI=true, where a missing server is a failure.

   Only servers this harness started are ever contacted, always on 127.0.0.1. */
#ifndef REDIS_HARNESS_H
#define REDIS_HARNESS_H

#include <hiredis/hiredis.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>

#if defined(__GNUC__)
#define RH_UNUSED __attribute__((unused))
#else
#define RH_UNUSED
#endif

#define RH_INSTALL_HINT "apt-get install redis-server libhiredis-dev"

typedef struct redis_harness {
    int port;
    pid_t pid;
    int appendonly;            /* 1: --appendonly yes --appendfsync always */
    char dir[256];             /* temporary data directory */
    char server[1024];         /* the redis-server binary */
    const char *extra[16];     /* extra "--name value" arguments (NULL-terminated), e.g. a
                                  requirepass for the authentication tests */
} redis_harness;

RH_UNUSED static void rh_sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

RH_UNUSED static long long rh_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The server binary: $REDIS_SERVER or redis-server found on PATH. 0 if there is none. */
RH_UNUSED static int rh_find_server(char *out, size_t size)
{
    const char *env = getenv("REDIS_SERVER");
    const char *path = getenv("PATH");
    char candidate[1000];
    if (env != NULL && env[0] != '\0') {
        snprintf(out, size, "%s", env);
        return access(out, X_OK) == 0;
    }
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < 900) {
            snprintf(candidate, sizeof candidate, "%.*s/redis-server", (int)n, path);
            if (access(candidate, X_OK) == 0) {
                snprintf(out, size, "%s", candidate);
                return 1;
            }
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

/* 1 when a server binary exists. Otherwise prints how to get one; under CI=true that is a
   failure (the caller should fail), else a skip. *fail receives 1 for the CI case. */
RH_UNUSED static int rh_require_server(int *fail)
{
    char bin[1024];
    const char *ci = getenv("CI");
    *fail = 0;
    if (rh_find_server(bin, sizeof bin))
        return 1;
    if (ci != NULL && strcmp(ci, "true") == 0) {
        printf("FAIL redis-server not found (CI=true, so this is a failure): %s\n",
               RH_INSTALL_HINT);
        *fail = 1;
    } else {
        printf("SKIP the Redis backend tests: redis-server not found; install it with: %s\n",
               RH_INSTALL_HINT);
    }
    return 0;
}

/* A port that was free a moment ago on 127.0.0.1. */
RH_UNUSED static int rh_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

RH_UNUSED static redisContext *rh_connect(const redis_harness *h)
{
    struct timeval tv;
    redisContext *c;
    tv.tv_sec = 2;
    tv.tv_usec = 0;
    c = redisConnectWithTimeout("127.0.0.1", h->port, tv);
    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* Runs one command (printf-style, as redisCommand) on a fresh connection; returns the reply
   (free it with freeReplyObject) or NULL. */
RH_UNUSED static redisReply *rh_command(const redis_harness *h, const char *fmt, ...)
{
    redisContext *c = rh_connect(h);
    redisReply *r;
    va_list ap;
    const char *password = NULL;
    int i;
    if (c == NULL)
        return NULL;
    for (i = 0; h->extra[i] != NULL && h->extra[i + 1] != NULL; i += 2)
        if (strcmp(h->extra[i], "--requirepass") == 0)
            password = h->extra[i + 1];
    if (password != NULL) {
        r = (redisReply *)redisCommand(c, "AUTH %s", password);
        if (r != NULL)
            freeReplyObject(r);
    }
    va_start(ap, fmt);
    r = (redisReply *)redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* Waits until the server answers PING with PONG (not LOADING). 0 on success. */
RH_UNUSED static int rh_wait_ready(const redis_harness *h, long timeout_ms)
{
    long long end = rh_now_ms() + timeout_ms;
    while (rh_now_ms() < end) {
        redisReply *r = rh_command(h, "PING");
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0)
            ok = 1;
        if (r != NULL)
            freeReplyObject(r);
        if (ok)
            return 0;
        if (h->pid > 0 && waitpid(h->pid, NULL, WNOHANG) == h->pid)
            return -1; /* it exited (e.g. the port was taken) */
        rh_sleep_ms(10);
    }
    return -1;
}

RH_UNUSED static int rh_spawn(redis_harness *h)
{
    char port[16], logfile[320];
    const char *argv[48];
    int n = 0, i;
    pid_t pid;
    snprintf(port, sizeof port, "%d", h->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", h->dir);
    argv[n++] = h->server;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = h->dir;
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--protected-mode";
    argv[n++] = "yes";
    argv[n++] = "--appendonly";
    argv[n++] = h->appendonly ? "yes" : "no";
    if (h->appendonly) {
        argv[n++] = "--appendfsync";
        argv[n++] = "always";
    }
    for (i = 0; h->extra[i] != NULL && n < 46; i++)
        argv[n++] = h->extra[i];
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            close(fd);
        }
        execv(h->server, (char *const *)argv);
        _exit(127);
    }
    h->pid = pid;
    if (rh_wait_ready(h, 10000) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        h->pid = 0;
        return -1;
    }
    return 0;
}

/* Starts a server. appendonly: 1 for --appendonly yes --appendfsync always. 0 on success. */
RH_UNUSED static int rh_start(redis_harness *h, int appendonly)
{
    int attempt;
    const char *tmp = getenv("TMPDIR");
    h->appendonly = appendonly;
    h->pid = 0;
    if (!rh_find_server(h->server, sizeof h->server)) {
        printf("    redis-server not found (%s)\n", RH_INSTALL_HINT);
        return -1;
    }
    snprintf(h->dir, sizeof h->dir, "%s/pers-redis-test-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(h->dir) == NULL) {
        printf("    mkdtemp failed: %s\n", strerror(errno));
        return -1;
    }
    for (attempt = 0; attempt < 5; attempt++) {
        h->port = rh_free_port();
        if (h->port > 0 && rh_spawn(h) == 0)
            return 0;
    }
    printf("    redis-server did not start (see %s/redis.log)\n", h->dir);
    return -1;
}

/* SIGKILL, no warning: the fault test's crash. */
RH_UNUSED static void rh_kill(redis_harness *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        h->pid = 0;
    }
}

/* Starts it again on the same port with the same data directory. 0 on success. */
RH_UNUSED static int rh_restart(redis_harness *h)
{
    int attempt;
    rh_kill(h);
    for (attempt = 0; attempt < 50; attempt++) {
        if (rh_spawn(h) == 0)
            return 0;
        rh_sleep_ms(100); /* the port may linger for a moment */
    }
    return -1;
}

/* Stops the server and removes its directory. */
RH_UNUSED static void rh_stop(redis_harness *h)
{
    char cmd[400];
    if (h->pid > 0) {
        int i;
        kill(h->pid, SIGTERM);
        for (i = 0; i < 300 && waitpid(h->pid, NULL, WNOHANG) == 0; i++)
            rh_sleep_ms(10);
        if (i == 300) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
        }
        h->pid = 0;
    }
    if (h->dir[0] != '\0' && strstr(h->dir, "/pers-redis-test-") != NULL &&
        strchr(h->dir, '\'') == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            printf("    could not remove %s\n", h->dir);
    }
    h->dir[0] = '\0';
}

#endif
