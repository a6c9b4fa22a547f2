/* tests/dynamic/dyn_build.h - builds the plugin libraries of the dynamic-plugin tests and
   benchmarks at run time, so that `make test` needs no rule per plugin.

   The compiler is $PLG_PLUGIN_CC, else $CC, else cc; extra flags come from $PLG_PLUGIN_CFLAGS
   (e.g. "-fsanitize=thread" to instrument the plugins too; by default they are plain code, which
   every sanitizer accepts inside an instrumented host). Sources are found under the source root:
   $PLG_SOURCE_ROOT, else the current directory when it holds plugin_registry.h (make runs the
   tests from there), else the directory two levels above this file. Libraries go to a fresh
   directory under $TMPDIR (default /tmp), removed by dyn_cleanup().

   Every plugin is compiled like a user would: C99, -Wall -Wextra -Wpedantic -Werror, -fPIC
   -shared, and -fvisibility=hidden, which PLG_EXPORT_PLUGINS must survive.

   Include after defining _POSIX_C_SOURCE (mkdtemp). Everything here is static. */
#ifndef DYN_BUILD_H
#define DYN_BUILD_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__)
#define DYN_UNUSED __attribute__((unused))
#else
#define DYN_UNUSED
#endif

static char dyn_dir[1024];
static char dyn_root_dir[1024];

static const char *dyn_root(void)
{
    const char *env = getenv("PLG_SOURCE_ROOT");
    struct stat st;
    if (dyn_root_dir[0] != '\0')
        return dyn_root_dir;
    if (env != NULL && env[0] != '\0') {
        snprintf(dyn_root_dir, sizeof dyn_root_dir, "%s", env);
    } else if (stat("plugin_registry.h", &st) == 0) {
        snprintf(dyn_root_dir, sizeof dyn_root_dir, ".");
    } else {
        /* __FILE__ is ".../tests/dynamic/dyn_build.h" */
        const char *f = __FILE__;
        const char *cut = strstr(f, "tests/dynamic/dyn_build.h");
        if (cut == f)
            snprintf(dyn_root_dir, sizeof dyn_root_dir, ".");
        else if (cut != NULL)
            snprintf(dyn_root_dir, sizeof dyn_root_dir, "%.*s", (int)(cut - f - 1), f);
        else
            snprintf(dyn_root_dir, sizeof dyn_root_dir, ".");
    }
    return dyn_root_dir;
}

/* The directory the libraries are built in (created on first use); NULL on failure. */
static const char *dyn_outdir(void)
{
    const char *tmp = getenv("TMPDIR");
    if (dyn_dir[0] != '\0')
        return dyn_dir;
    snprintf(dyn_dir, sizeof dyn_dir, "%s/plg-dyn-test-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dyn_dir) == NULL) {
        perror("mkdtemp");
        dyn_dir[0] = '\0';
        return NULL;
    }
    return dyn_dir;
}

/* Path of a built library (static buffer per call site: copy it if you keep several). */
static const char *dyn_lib(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", dyn_outdir(), name);
    return buf;
}

/* Compiles tests/dynamic/plugins/<source> into <outdir>/<out_name> with extra -D flags.
   Returns 0 on success; prints the command and the compiler's output otherwise. */
DYN_UNUSED static int dyn_build(const char *out_name, const char *source, const char *defines)
{
    char cmd[8192];
    const char *cc = getenv("PLG_PLUGIN_CC"), *extra = getenv("PLG_PLUGIN_CFLAGS");
    const char *root = dyn_root(), *dir = dyn_outdir();
    int rc;
    if (dir == NULL)
        return -1;
    if (cc == NULL || cc[0] == '\0')
        cc = getenv("CC");
    if (cc == NULL || cc[0] == '\0')
        cc = "cc";
    snprintf(cmd, sizeof cmd,
             "%s -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -g -fPIC -shared "
             "-fvisibility=hidden %s -I'%s' -I'%s/tests/dynamic/plugins' %s "
             "'%s/tests/dynamic/plugins/%s' -o '%s/%s' 2>&1",
             cc, extra != NULL ? extra : "", root, root, defines != NULL ? defines : "", root,
             source, dir, out_name);
    rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "plugin build failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Copies a built library to another name in the same directory (for in-place replacement). */
DYN_UNUSED static int dyn_copy(const char *from_name, const char *to_path)
{
    char src[1200], tmp[1300], buf[65536];
    FILE *in, *out;
    size_t n;
    snprintf(src, sizeof src, "%s/%s", dyn_outdir(), from_name);
    snprintf(tmp, sizeof tmp, "%s.tmp", to_path);
    in = fopen(src, "rb");
    if (in == NULL)
        return -1;
    out = fopen(tmp, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            fclose(in);
            fclose(out);
            return -1;
        }
    fclose(in);
    if (fclose(out) != 0)
        return -1;
    return rename(tmp, to_path); /* atomic, as a deployment would do it */
}

/* 1 when this program exports the registry's functions to the libraries it loads. */
DYN_UNUSED static int dyn_host_exports_symbols(void)
{
    void *self = dlopen(NULL, RTLD_NOW);
    int ok = self != NULL && dlsym(self, "plg_plugin_set_error") != NULL &&
             dlsym(self, "plg_config_integer") != NULL;
    if (self != NULL)
        dlclose(self);
    if (!ok)
        fprintf(stderr, "this program does not export the registry's functions: link it with "
                        "-rdynamic so that plugin libraries can call them\n");
    return ok;
}

DYN_UNUSED static void dyn_cleanup(void)
{
    char cmd[1200];
    if (dyn_dir[0] == '\0' || getenv("PLG_KEEP_PLUGINS") != NULL)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dyn_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dyn_dir);
    dyn_dir[0] = '\0';
}

#endif
