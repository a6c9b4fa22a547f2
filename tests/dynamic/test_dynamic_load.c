/* Loading plugin libraries: a good one, and every way a library is refused before any of its
   callbacks runs (wrong magic, wrong ABI fields, missing entry, host range not satisfied, not a
   library at all), loading a directory, duplicates, the load flags, leases and plg_mark_failed.
   The libraries are built at run time from tests/dynamic/plugins/dyn_plugin.c (dyn_build.h).
   The program must be linked with -rdynamic: the plugins call plg_* functions of the host. */
#define _POSIX_C_SOURCE 200809L
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"
#include "dyn_build.h"
#include "plugins/dyn_iface.h"

#include <dirent.h>
#include <errno.h>

static char p_good[1200], p_two[1200], p_magic[1200], p_abi[1200], p_desc_size[1200],
    p_name_max[1200], p_enum[1200], p_count[1200], p_no_entry[1200], p_range[1200],
    p_text[1200], p_a[1200], p_b[1200];
static int built;

static plg_registry *new_registry(void)
{
    plg_registry *reg = NULL;
    plg_registry_desc d;
    memset(&d, 0, sizeof d);
    d.host_api_version = "1.4.0";
    if (plg_registry_create(&d, &reg) != PLG_OK)
        return NULL;
    return reg;
}

static int build_all(void)
{
    FILE *f;
    char path[1200];
    int rc = 0;
    rc |= dyn_build("good.so", "dyn_plugin.c", "");
    rc |= dyn_build("two.so", "dyn_plugin.c", "-DDYN_TWO -DDYN_NAME='\"counter2\"'");
    rc |= dyn_build("magic.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=magic -DDYN_OVERRIDE_VALUE=0xdeadbeefu");
    rc |= dyn_build("abi.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=abi_version -DDYN_OVERRIDE_VALUE=99");
    rc |= dyn_build("desc_size.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=descriptor_size -DDYN_OVERRIDE_VALUE=8");
    rc |= dyn_build("name_max.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=name_max -DDYN_OVERRIDE_VALUE=32");
    rc |= dyn_build("enum.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=enum_size -DDYN_OVERRIDE_VALUE=1");
    rc |= dyn_build("count.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_OVERRIDE_FIELD=plugin_count -DDYN_OVERRIDE_VALUE=0");
    rc |= dyn_build("no_entry.so", "dyn_plugin.c", "-DDYN_REJECT_ME -DDYN_NO_ENTRY");
    rc |= dyn_build("range.so", "dyn_plugin.c",
                    "-DDYN_REJECT_ME -DDYN_HOST_RANGE='\">=2.0.0\"'");
    rc |= dyn_build("a.so", "dyn_plugin.c", "-DDYN_NAME='\"a\"'");
    rc |= dyn_build("b.so", "dyn_plugin.c", "-DDYN_NAME='\"b\"'");
    dyn_lib("good.so", p_good, sizeof p_good);
    dyn_lib("two.so", p_two, sizeof p_two);
    dyn_lib("magic.so", p_magic, sizeof p_magic);
    dyn_lib("abi.so", p_abi, sizeof p_abi);
    dyn_lib("desc_size.so", p_desc_size, sizeof p_desc_size);
    dyn_lib("name_max.so", p_name_max, sizeof p_name_max);
    dyn_lib("enum.so", p_enum, sizeof p_enum);
    dyn_lib("count.so", p_count, sizeof p_count);
    dyn_lib("no_entry.so", p_no_entry, sizeof p_no_entry);
    dyn_lib("range.so", p_range, sizeof p_range);
    dyn_lib("a.so", p_a, sizeof p_a);
    dyn_lib("b.so", p_b, sizeof p_b);
    dyn_lib("text.so", p_text, sizeof p_text);
    f = fopen(p_text, "w");
    if (f == NULL)
        return -1;
    fputs("this is not an ELF file\n", f);
    fclose(f);
    /* the directory case: a.so, b.so, one broken library and a file that is not a .so */
    snprintf(path, sizeof path, "%s/dir", dyn_outdir());
    if (mkdir(path, 0700) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/dir/1-a.so", dyn_outdir());
    rc |= dyn_copy("a.so", path);
    snprintf(path, sizeof path, "%s/dir/2-broken.so", dyn_outdir());
    rc |= dyn_copy("magic.so", path);
    snprintf(path, sizeof path, "%s/dir/3-b.so", dyn_outdir());
    rc |= dyn_copy("b.so", path);
    snprintf(path, sizeof path, "%s/dir/README", dyn_outdir());
    rc |= dyn_copy("good.so", path);
    snprintf(path, sizeof path, "%s/copies", dyn_outdir());
    if (mkdir(path, 0700) != 0)
        return -1;
    return rc;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

TEST(plugins_are_built_and_the_host_exports_its_symbols)
{
    CHECK(built);
    CHECK(dyn_host_exports_symbols());
}

TEST(good_plugin_loads_registers_and_runs)
{
    plg_registry *reg = new_registry();
    plg_plugin *out[4] = {NULL, NULL, NULL, NULL}, *found = NULL;
    plg_load_options opt;
    char copies[1200];
    size_t count = 99;
    const dyn_vtable *vt;
    uint32_t abi = 0;
    plg_lease lease;
    memset(&opt, 0, sizeof opt);
    snprintf(copies, sizeof copies, "%s/copies", dyn_outdir());
    opt.temp_dir = copies;
    CHECK_INT(plg_load(reg, p_good, &opt, out, 4, &count), PLG_OK);
    CHECK_INT(count, 1);
    CHECK(out[0] != NULL && out[1] == NULL);
    CHECK_INT(count_entries(copies), 0); /* the private copy is unlinked once mapped */
    CHECK_STR(plg_plugin_library(out[0]), p_good);
    CHECK_STR(plg_plugin_version(out[0]), "1.0.0");
    CHECK_INT(plg_plugin_state(out[0]), PLG_STATE_REGISTERED);
    CHECK_INT(plg_find(reg, "dyn", "counter", &found), PLG_OK);
    CHECK(found == out[0]);
    CHECK_INT(plg_plugin_count(reg), 1);
    /* Registered like a static plugin: the usual lifecycle, configuration validated. */
    CHECK_INT(plg_init(reg, out[0], "{\"start\": \"x\"}"), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_init(reg, out[0], "{\"start\": 41}"), PLG_OK);
    CHECK_INT(plg_start(reg, out[0]), PLG_OK);
    vt = (const dyn_vtable *)plg_plugin_vtable(out[0], DYN_IFACE_ID, 1, &abi);
    CHECK(vt != NULL);
    CHECK_INT(abi, DYN_IFACE_ABI);
    if (vt != NULL) {
        CHECK_INT(vt->call(plg_plugin_instance(out[0])), 1);
        CHECK_INT(vt->get_state(plg_plugin_instance(out[0])), 41);
    }
    CHECK_INT(plg_acquire(reg, "dyn", "counter", &lease), PLG_OK);
    CHECK(lease.plugin == out[0] && lease.vtable == (const void *)vt);
    CHECK(lease.instance == plg_plugin_instance(out[0]) && lease.abi_version == DYN_IFACE_ABI);
    plg_release(&lease);
    CHECK(lease.plugin == NULL);
    plg_release(&lease); /* twice: harmless */
    plg_registry_destroy(reg);
}

static void check_rejected(const char *path, plg_result code, const char *fragment,
                           const char *fragment2)
{
    plg_registry *reg = new_registry();
    plg_plugin *out[2] = {NULL, NULL};
    size_t count = 7;
    plg_load_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = PLG_LOAD_IN_PLACE;
    CHECK_INT(plg_load(reg, path, &opt, out, 2, &count), code);
    CHECK_INT(count, 0);
    CHECK(out[0] == NULL);
    CHECK_INT(plg_plugin_count(reg), 0);
    CHECK_CONTAINS(plg_errmsg(reg), path);
    CHECK_CONTAINS(plg_errmsg(reg), fragment);
    if (fragment2 != NULL)
        CHECK_CONTAINS(plg_errmsg(reg), fragment2);
#ifdef RTLD_NOLOAD
    { /* a rejected library is closed again */
        void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
        CHECK(h == NULL);
        if (h != NULL)
            dlclose(h);
    }
#endif
    plg_registry_destroy(reg);
}

TEST(wrong_magic_is_rejected_naming_both_values)
{
    check_rejected(p_magic, PLG_ERR_ABI_MISMATCH, "magic is 0xdeadbeef in the library, 0x4c474c50 in this host",
                   NULL);
}

TEST(wrong_abi_version_is_rejected_naming_both_values)
{
    check_rejected(p_abi, PLG_ERR_ABI_MISMATCH, "abi_version is 99 in the library, 1 in this host",
                   NULL);
}

TEST(wrong_build_settings_are_rejected_naming_field_and_values)
{
    char expect[128];
    snprintf(expect, sizeof expect, "descriptor_size is 8 in the library, %lu in this host",
             (unsigned long)sizeof(plg_descriptor));
    check_rejected(p_desc_size, PLG_ERR_ABI_MISMATCH, expect, "plugin_registry.h 0.1.0");
    snprintf(expect, sizeof expect, "name_max is 32 in the library, %d in this host", PLG_NAME_MAX);
    check_rejected(p_name_max, PLG_ERR_ABI_MISMATCH, expect, NULL);
    snprintf(expect, sizeof expect, "enum_size is 1 in the library, %lu in this host",
             (unsigned long)sizeof(plg_result));
    check_rejected(p_enum, PLG_ERR_ABI_MISMATCH, expect, NULL);
    check_rejected(p_count, PLG_ERR_ABI_MISMATCH, "plugin_count is 0", NULL);
}

TEST(missing_entry_is_rejected)
{
    check_rejected(p_no_entry, PLG_ERR_LOAD, "no entry function plg_library_entry_v1",
                   "PLG_EXPORT_PLUGINS");
}

TEST(host_range_not_satisfied_is_rejected_naming_both_values)
{
    check_rejected(p_range, PLG_ERR_HOST_API_MISMATCH, "requires host API \">=2.0.0\"",
                   "implements 1.4.0");
}

TEST(files_that_are_no_plugin_library_are_rejected)
{
    char missing[1300];
    plg_registry *reg = new_registry();
    snprintf(missing, sizeof missing, "%s/missing.so", dyn_outdir());
    CHECK_INT(plg_load(reg, p_text, NULL, NULL, 0, NULL), PLG_ERR_LOAD);
    CHECK_CONTAINS(plg_errmsg(reg), "cannot load");
    CHECK_INT(plg_load(reg, missing, NULL, NULL, 0, NULL), PLG_ERR_LOAD);
    CHECK_CONTAINS(plg_errmsg(reg), "No such file");
    CHECK_INT(plg_load(reg, dyn_outdir(), NULL, NULL, 0, NULL), PLG_ERR_LOAD);
    CHECK_CONTAINS(plg_errmsg(reg), "not a regular file");
    CHECK_INT(plg_plugin_count(reg), 0);
    plg_registry_destroy(reg);
}

TEST(a_library_may_export_several_plugins_all_or_none)
{
    plg_registry *reg = new_registry();
    plg_plugin *out[1] = {NULL};
    size_t count = 0;
    plg_plugin *p = NULL;
    CHECK_INT(plg_load(reg, p_two, NULL, out, 1, &count), PLG_OK);
    CHECK_INT(count, 2); /* more than the capacity: out holds the first */
    CHECK(out[0] != NULL);
    CHECK_INT(plg_find(reg, "dyn", "counter2", &p), PLG_OK);
    CHECK_INT(plg_find(reg, "dyn", "extra", &p), PLG_OK);
    CHECK_INT(plg_start_all(reg), PLG_OK);
    plg_registry_destroy(reg);

    /* dyn/extra already registered: the library is refused whole */
    reg = new_registry();
    CHECK_INT(plg_load(reg, p_two, NULL, NULL, 0, NULL), PLG_OK);
    CHECK_INT(plg_load(reg, p_two, NULL, NULL, 0, &count), PLG_ERR_DUPLICATE);
    CHECK_INT(count, 0);
    CHECK_CONTAINS(plg_errmsg(reg), "already registered");
    CHECK_CONTAINS(plg_errmsg(reg), p_two);
    CHECK_INT(plg_plugin_count(reg), 2);
    plg_registry_destroy(reg);
}

TEST(duplicate_of_a_compiled_in_plugin_is_refused)
{
    plg_registry *reg = new_registry();
    CHECK_INT(plg_load(reg, p_good, NULL, NULL, 0, NULL), PLG_OK);
    CHECK_INT(plg_load(reg, p_good, NULL, NULL, 0, NULL), PLG_ERR_DUPLICATE);
    CHECK_CONTAINS(plg_errmsg(reg), "dyn/counter is already registered");
    CHECK_INT(plg_plugin_count(reg), 1);
    plg_registry_destroy(reg);
}

TEST(a_directory_loads_every_library_and_names_the_ones_that_failed)
{
    plg_registry *reg = new_registry();
    char dir[1200], missing[1300];
    size_t count = 0;
    plg_plugin *p = NULL;
    snprintf(dir, sizeof dir, "%s/dir", dyn_outdir());
    CHECK_INT(plg_load_dir(reg, dir, NULL, &count), PLG_ERR_ABI_MISMATCH);
    CHECK_INT(count, 2);
    CHECK_CONTAINS(plg_errmsg(reg), "1 of 3 libraries");
    CHECK_CONTAINS(plg_errmsg(reg), "2-broken.so: magic is 0xdeadbeef");
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "README");
    CHECK_INT(plg_find(reg, "dyn", "a", &p), PLG_OK);
    CHECK_INT(plg_find(reg, "dyn", "b", &p), PLG_OK);
    snprintf(missing, sizeof missing, "%s/nowhere", dyn_outdir());
    CHECK_INT(plg_load_dir(reg, missing, NULL, &count), PLG_ERR_LOAD);
    CHECK_INT(count, 0);
    CHECK_CONTAINS(plg_errmsg(reg), "cannot open the directory");
    snprintf(missing, sizeof missing, "%s/copies", dyn_outdir());
    CHECK_INT(plg_load_dir(reg, missing, NULL, &count), PLG_OK); /* empty */
    CHECK_INT(count, 0);
    plg_registry_destroy(reg);
}

TEST(in_place_loading_and_unloading_at_destroy)
{
    plg_registry *reg = new_registry();
    plg_load_options opt;
    plg_plugin *p = NULL;
    memset(&opt, 0, sizeof opt);
    opt.flags = PLG_LOAD_IN_PLACE | PLG_LOAD_UNLOAD_AT_DESTROY;
    CHECK_INT(plg_load(reg, p_a, &opt, &p, 1, NULL), PLG_OK);
    CHECK_INT(plg_start_all(reg), PLG_OK);
#ifdef RTLD_NOLOAD
    {
        void *h = dlopen(p_a, RTLD_NOW | RTLD_NOLOAD);
        CHECK(h != NULL); /* loaded from the path itself */
        if (h != NULL)
            dlclose(h);
    }
#endif
    plg_registry_destroy(reg); /* shuts down, then closes the library */
#ifdef RTLD_NOLOAD
    {
        void *h = dlopen(p_a, RTLD_NOW | RTLD_NOLOAD);
        CHECK(h == NULL);
        if (h != NULL)
            dlclose(h);
    }
#endif
    /* A bad temp_dir is reported, naming the cure. */
    reg = new_registry();
    opt.flags = 0;
    opt.temp_dir = "/nonexistent-dir-for-plg";
    CHECK_INT(plg_load(reg, p_a, &opt, NULL, 0, NULL), PLG_ERR_LOAD);
    CHECK_CONTAINS(plg_errmsg(reg), "cannot create a private copy in /nonexistent-dir-for-plg");
    CHECK_CONTAINS(plg_errmsg(reg), "PLG_LOAD_IN_PLACE");
    plg_registry_destroy(reg);
}

static plg_result s_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL;
    return PLG_OK;
}
static void s_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

TEST(acquire_and_mark_failed)
{
    plg_registry *reg = new_registry();
    plg_descriptor d;
    plg_plugin *p = NULL;
    plg_lease lease;
    char reason[256];
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = "svc";
    d.name = "s";
    d.version = "1.0.0";
    d.init = s_init;
    d.shutdown = s_shutdown;
    CHECK_INT(plg_register(reg, &d, &p), PLG_OK);
    CHECK_INT(plg_acquire(reg, "svc", "nope", &lease), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_acquire(reg, "svc", "s", &lease), PLG_ERR_INVALID_STATE);
    CHECK_CONTAINS(plg_errmsg(reg), "it is registered, not started");
    CHECK(lease.plugin == NULL);
    CHECK_INT(plg_mark_failed(reg, p, "broken"), PLG_ERR_INVALID_STATE);
    CHECK_INT(plg_init(reg, p, NULL), PLG_OK);
    CHECK_INT(plg_start(reg, p), PLG_OK);
    CHECK_INT(plg_acquire(reg, "svc", "s", &lease), PLG_OK);
    plg_release(&lease);
    CHECK_INT(plg_mark_failed(reg, p, "watchdog: %d missed heartbeats", 3), PLG_OK);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_FAILED);
    plg_plugin_failure(p, reason, sizeof reason);
    CHECK_STR(reason, "watchdog: 3 missed heartbeats");
    CHECK_INT(plg_mark_failed(reg, p, "second reason"), PLG_OK); /* the first is kept */
    plg_plugin_failure(p, reason, sizeof reason);
    CHECK_STR(reason, "watchdog: 3 missed heartbeats");
    CHECK_INT(plg_acquire(reg, "svc", "s", &lease), PLG_ERR_INVALID_STATE);
    CHECK_CONTAINS(plg_errmsg(reg), "it failed: watchdog");
    CHECK_INT(plg_shutdown(reg, p), PLG_OK);
    plg_registry_destroy(reg);
}

TEST(null_arguments_and_new_result_codes)
{
    plg_registry *reg = new_registry();
    plg_lease lease;
    size_t count = 5;
    plg_plugin *p = (plg_plugin *)&count;
    CHECK_INT(plg_load(NULL, p_good, NULL, NULL, 0, &count), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(count, 0);
    CHECK_INT(plg_load(reg, NULL, NULL, &p, 1, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_INT(plg_load_dir(NULL, "x", NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_load_dir(reg, NULL, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_reload(NULL, NULL, NULL, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_reload(reg, NULL, NULL, NULL, &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_acquire(NULL, "a", "b", &lease), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_acquire(reg, NULL, "b", &lease), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_acquire(reg, "a", "b", NULL), PLG_ERR_INVALID_ARGUMENT);
    plg_release(NULL);
    CHECK_INT(plg_mark_failed(NULL, NULL, "x"), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_mark_failed(reg, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK(plg_plugin_library(NULL) == NULL);
    CHECK_STR(plg_result_string(PLG_ERR_LOAD), "PLG_ERR_LOAD: shared library could not be loaded");
    CHECK_CONTAINS(plg_result_string(PLG_ERR_NOT_SUPPORTED), "PLG_ERR_NOT_SUPPORTED");
    CHECK_CONTAINS(plg_result_string(PLG_ERR_TIMEOUT), "PLG_ERR_TIMEOUT");
    CHECK_CONTAINS(plg_result_string(PLG_ERR_UNHEALTHY), "PLG_ERR_UNHEALTHY");
    CHECK_INT(PLG_ERR_LOAD, 27);
    CHECK_INT(PLG_ERR_UNHEALTHY, 30);
    plg_registry_destroy(reg);
}

int main(void)
{
    built = build_all() == 0;
    RUN(plugins_are_built_and_the_host_exports_its_symbols);
    if (built) {
        RUN(good_plugin_loads_registers_and_runs);
        RUN(wrong_magic_is_rejected_naming_both_values);
        RUN(wrong_abi_version_is_rejected_naming_both_values);
        RUN(wrong_build_settings_are_rejected_naming_field_and_values);
        RUN(missing_entry_is_rejected);
        RUN(host_range_not_satisfied_is_rejected_naming_both_values);
        RUN(files_that_are_no_plugin_library_are_rejected);
        RUN(a_library_may_export_several_plugins_all_or_none);
        RUN(duplicate_of_a_compiled_in_plugin_is_refused);
        RUN(a_directory_loads_every_library_and_names_the_ones_that_failed);
        RUN(in_place_loading_and_unloading_at_destroy);
    }
    RUN(acquire_and_mark_failed);
    RUN(null_arguments_and_new_result_codes);
    dyn_cleanup();
    return test_summary();
}
