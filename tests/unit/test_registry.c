/* Unit tests of the registry core: setup, registration checks, lookup, lifecycle, dependencies,
   health, errors, automatic registration. Semantic versions and configuration parsing have their
   own test programs. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include "../test.h"

#include <pthread.h>

/* ---- a counting allocator that also checks the size handed to free ---- */

typedef struct counting_alloc {
    long live_blocks;
    long live_bytes;
    long size_mismatches;
    long fail_after; /* fail the n-th allocation from now when > 0 */
} counting_alloc;

typedef struct block_header {
    size_t size;
    size_t pad;
} block_header;

static void *counting_alloc_fn(size_t size, void *user)
{
    counting_alloc *c = (counting_alloc *)user;
    block_header *h;
    if (c->fail_after > 0 && --c->fail_after == 0)
        return NULL;
    h = (block_header *)malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    c->live_blocks++;
    c->live_bytes += (long)size;
    return h + 1;
}

static void counting_free_fn(void *ptr, size_t size, void *user)
{
    counting_alloc *c = (counting_alloc *)user;
    block_header *h;
    if (ptr == NULL)
        return;
    h = (block_header *)ptr - 1;
    if (h->size != size)
        c->size_mismatches++;
    c->live_blocks--;
    c->live_bytes -= (long)h->size;
    free(h);
}

static plg_registry *counted_registry(counting_alloc *c)
{
    plg_registry_desc d;
    plg_registry *reg = NULL;
    memset(&d, 0, sizeof d);
    memset(c, 0, sizeof *c);
    d.allocator.alloc_fn = counting_alloc_fn;
    d.allocator.free_fn = counting_free_fn;
    d.allocator.user = c;
    if (plg_registry_create(&d, &reg) != PLG_OK)
        return NULL;
    return reg;
}

/* ---- a configurable test plugin that records what happens to it ---- */

typedef struct probe {
    int init_calls, start_calls, stop_calls, shutdown_calls, health_calls;
    plg_result init_result, start_result, stop_result;
    plg_health_status health;
    const char *fail_message;
} probe;

/* Start order across plugins, for dependency tests. */
static char start_log[512];
static char stop_log[512];

static plg_result probe_init(plg_plugin *self, const plg_config *config, void **instance)
{
    probe *p = (probe *)plg_plugin_user_data(self);
    (void)config;
    p->init_calls++;
    if (p->init_result != PLG_OK) {
        if (p->fail_message)
            plg_plugin_set_error(self, "%s", p->fail_message);
        return p->init_result;
    }
    *instance = p;
    return PLG_OK;
}

static plg_result probe_start(plg_plugin *self, void *instance)
{
    probe *p = (probe *)instance;
    p->start_calls++;
    if (p->start_result != PLG_OK) {
        if (p->fail_message)
            plg_plugin_set_error(self, "%s", p->fail_message);
        return p->start_result;
    }
    strcat(start_log, plg_plugin_name(self));
    strcat(start_log, " ");
    return PLG_OK;
}

static plg_result probe_stop(plg_plugin *self, void *instance)
{
    probe *p = (probe *)instance;
    p->stop_calls++;
    strcat(stop_log, plg_plugin_name(self));
    strcat(stop_log, " ");
    return p->stop_result;
}

static void probe_shutdown(plg_plugin *self, void *instance)
{
    probe *p = (probe *)plg_plugin_user_data(self);
    (void)instance;
    p->shutdown_calls++;
}

static plg_health_status probe_health(plg_plugin *self, void *instance, char *msg, size_t size)
{
    probe *p = (probe *)plg_plugin_user_data(self);
    (void)instance;
    p->health_calls++;
    if (p->health != PLG_HEALTH_OK)
        snprintf(msg, size, "queue depth high");
    return p->health;
}

static plg_descriptor probe_desc(const char *type, const char *name, const char *version,
                                 probe *p)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof(plg_descriptor);
    d.type = type;
    d.name = name;
    d.version = version;
    d.description = "a probe";
    d.init = probe_init;
    d.start = probe_start;
    d.stop = probe_stop;
    d.shutdown = probe_shutdown;
    d.health = probe_health;
    d.user_data = p;
    return d;
}

static plg_plugin *must_register(plg_registry *reg, const plg_descriptor *d)
{
    plg_plugin *p = NULL;
    plg_result r = plg_register(reg, d, &p);
    if (r != PLG_OK)
        printf("    register %s/%s: %s: %s\n", d->type, d->name, plg_result_string(r),
               plg_errmsg(reg));
    return p;
}

/* ---- setup ---- */

TEST(registry_defaults_are_resolved)
{
    plg_registry *reg = NULL;
    plg_registry_desc d;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = plg_registry_resolved(reg);
    CHECK_STR(d.host_api_version, "1.0.0");
    CHECK_INT(d.max_config_bytes, 65536);
    CHECK_INT(d.strict_config, 0);
    CHECK_INT(d.max_plugins, 0);
    CHECK(d.allocator.alloc_fn != NULL && d.allocator.free_fn != NULL);
    CHECK_STR(plg_errmsg(reg), "");
    CHECK_STR(plg_version(), PLG_VERSION_STRING);
    CHECK(plg_registry_user_data(reg) == NULL);
    plg_registry_destroy(reg);
    memset(&d, 0, sizeof d);
    d.user_data = &d;
    CHECK_INT(plg_registry_create(&d, &reg), PLG_OK);
    CHECK(plg_registry_user_data(reg) == &d);
    CHECK(plg_registry_user_data(NULL) == NULL);
    plg_registry_destroy(reg);
}

static int log_lines;
static char last_log[1024];
static void capture_log(void *user, plg_log_level level, const char *message)
{
    (void)user;
    (void)level;
    log_lines++;
    snprintf(last_log, sizeof last_log, "%s", message);
}

TEST(registry_create_rejects_bad_setup)
{
    plg_registry_desc d;
    plg_registry *reg = (plg_registry *)&d; /* must be reset to NULL on failure */
    memset(&d, 0, sizeof d);
    d.allocator.alloc_fn = counting_alloc_fn; /* free_fn missing */
    CHECK_INT(plg_registry_create(&d, &reg), PLG_ERR_INVALID_ARGUMENT);
    CHECK(reg == NULL);
    memset(&d, 0, sizeof d);
    d.host_api_version = "1.0";
    d.logger.log_fn = capture_log;
    log_lines = 0;
    CHECK_INT(plg_registry_create(&d, &reg), PLG_ERR_INVALID_VERSION);
    CHECK(log_lines == 1);
    CHECK_CONTAINS(last_log, "host_api_version");
    CHECK_INT(plg_registry_create(NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
}

TEST(allocator_hooks_receive_every_allocation_with_its_size)
{
    counting_alloc c;
    probe pr;
    plg_registry *reg = counted_registry(&c);
    plg_descriptor d;
    plg_plugin *p;
    void *leaked;
    static const char *const caps[] = {"fast", "durable"};
    memset(&pr, 0, sizeof pr);
    d = probe_desc("storage", "alpha", "1.2.3-rc.1+b5", &pr);
    d.capabilities = caps;
    d.capability_count = 2;
    CHECK(reg != NULL);
    p = must_register(reg, &d);
    CHECK(c.live_blocks > 0);
    CHECK_INT(plg_init(reg, p, "{}"), PLG_OK);
    CHECK_INT(plg_start(reg, p), PLG_OK);
    leaked = plg_registry_alloc(reg, 100); /* not freed through the registry: must show */
    CHECK(leaked != NULL);
    CHECK(c.live_bytes >= 100);
    plg_registry_destroy(reg);
    CHECK_INT(c.live_blocks, 1);
    CHECK_INT(c.live_bytes, 100);
    CHECK_INT(c.size_mismatches, 0);
    CHECK_INT(pr.shutdown_calls, 1); /* destroy shut the started plugin down */
    counting_free_fn(leaked, 100, &c);
    CHECK_INT(c.live_blocks, 0);
}

TEST(out_of_memory_is_reported_without_leaks)
{
    counting_alloc c;
    int attempt, succeeded = 0;
    for (attempt = 1; attempt < 40 && !succeeded; attempt++) {
        plg_registry *reg = counted_registry(&c);
        probe pr;
        plg_descriptor d;
        plg_result r;
        memset(&pr, 0, sizeof pr);
        d = probe_desc("storage", "alpha", "1.0.0", &pr);
        c.fail_after = attempt;
        r = plg_register(reg, &d, NULL);
        if (r == PLG_OK)
            succeeded = 1;
        else
            CHECK_INT(r, PLG_ERR_NO_MEMORY);
        c.fail_after = 0;
        plg_registry_destroy(reg);
        CHECK_INT(c.live_blocks, 0);
        CHECK_INT(c.size_mismatches, 0);
    }
    CHECK(succeeded);
}

TEST(registries_are_independent)
{
    plg_registry *a = NULL, *b = NULL;
    probe pa, pb;
    plg_descriptor da, db;
    plg_plugin *found = NULL;
    memset(&pa, 0, sizeof pa);
    memset(&pb, 0, sizeof pb);
    da = probe_desc("t", "same", "1.0.0", &pa);
    db = probe_desc("t", "same", "2.0.0", &pb);
    CHECK_INT(plg_registry_create(NULL, &a), PLG_OK);
    CHECK_INT(plg_registry_create(NULL, &b), PLG_OK);
    CHECK(must_register(a, &da) != NULL);
    CHECK(must_register(b, &db) != NULL);
    CHECK_INT(plg_find(a, "t", "same", &found), PLG_OK);
    CHECK_STR(plg_plugin_version(found), "1.0.0");
    CHECK_INT(plg_find(b, "t", "same", &found), PLG_OK);
    CHECK_STR(plg_plugin_version(found), "2.0.0");
    CHECK_INT(plg_init(b, found, NULL), PLG_OK);
    CHECK_INT(plg_init(a, found, NULL), PLG_ERR_INVALID_ARGUMENT); /* b's plugin, a's registry */
    CHECK_CONTAINS(plg_errmsg(a), "another registry");
    plg_registry_destroy(a);
    plg_registry_destroy(b);
    CHECK(plg_default_registry() != NULL);
    CHECK(plg_default_registry() == plg_default_registry());
}

/* ---- registration ---- */

TEST(descriptor_is_copied_by_the_registry)
{
    plg_registry *reg = NULL;
    char type[16], name[16], version[16], cap[16];
    const char *caps[1];
    probe pr;
    plg_descriptor d;
    plg_plugin *p = NULL;
    memset(&pr, 0, sizeof pr);
    strcpy(type, "codec");
    strcpy(name, "zstd");
    strcpy(version, "1.5.0");
    strcpy(cap, "compress");
    caps[0] = cap;
    d = probe_desc(type, name, version, &pr);
    d.capabilities = caps;
    d.capability_count = 1;
    d.priority = 7;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK(must_register(reg, &d) != NULL);
    memset(type, 'x', sizeof type - 1);
    memset(name, 'y', sizeof name - 1);
    memset(version, 'z', sizeof version - 1);
    memset(cap, 'w', sizeof cap - 1);
    memset(&d, 0xab, sizeof d);
    CHECK_INT(plg_find(reg, "codec", "zstd", &p), PLG_OK);
    CHECK_STR(plg_plugin_type(p), "codec");
    CHECK_STR(plg_plugin_name(p), "zstd");
    CHECK_STR(plg_plugin_version(p), "1.5.0");
    CHECK(plg_plugin_has_capability(p, "compress"));
    CHECK(!plg_plugin_has_capability(p, "decompress"));
    CHECK_INT(plg_plugin_descriptor(p)->priority, 7);
    CHECK_STR(plg_plugin_descriptor(p)->description, "a probe");
    CHECK_INT(plg_plugin_state(p), PLG_STATE_REGISTERED);
    CHECK(plg_plugin_user_data(p) == &pr);
    CHECK(plg_plugin_registry(p) == reg);
    plg_registry_destroy(reg);
}

/* Registers a descriptor expected to be rejected; checks the code and a message fragment. */
static void expect_rejected(const plg_descriptor *d, plg_result code, const char *fragment)
{
    plg_registry *reg = NULL;
    plg_plugin *p = (plg_plugin *)&reg;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(plg_register(reg, d, &p), code);
    CHECK(p == NULL);
    CHECK_CONTAINS(plg_errmsg(reg), fragment);
    CHECK_INT(plg_plugin_count(reg), 0);
    plg_registry_destroy(reg);
}

TEST(registration_rejects_bad_metadata_each_with_its_code)
{
    probe pr;
    plg_descriptor d;
    static const char *const bad_caps[] = {"ok", "not ok"};
    memset(&pr, 0, sizeof pr);

    d = probe_desc("t", "n", "1.0.0", &pr);
    d.abi_version = 0;
    expect_rejected(&d, PLG_ERR_ABI_MISMATCH, "abi_version is 0");
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION + 1;
    expect_rejected(&d, PLG_ERR_ABI_MISMATCH, "supports 1 to 1");
    d = probe_desc("t", "n", "1.0.0", &pr);
    d.struct_size = 16;
    expect_rejected(&d, PLG_ERR_ABI_MISMATCH, "struct_size is 16 bytes");

    d = probe_desc("t", "has space", "1.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "contains ' ' at position 3");
    d = probe_desc("t", "", "1.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "is empty");
    d = probe_desc("t", "-dash", "1.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "must start with a letter or digit");
    d = probe_desc("t", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "1.0.0",
                   &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "65 characters long");
    d = probe_desc("t", NULL, "1.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "missing");
    d = probe_desc("ty/pe", "n", "1.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "plugin type");

    d = probe_desc("t", "n", "1.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_VERSION, "t/n");
    d = probe_desc("t", "n", "01.0.0", &pr);
    expect_rejected(&d, PLG_ERR_INVALID_VERSION, "01.0.0");
    d = probe_desc("t", "n", NULL, &pr);
    expect_rejected(&d, PLG_ERR_INVALID_VERSION, "version is missing");

    d = probe_desc("t", "n", "1.0.0", &pr);
    d.init = NULL;
    expect_rejected(&d, PLG_ERR_MISSING_CALLBACK, "requires an init callback");
    d = probe_desc("t", "n", "1.0.0", &pr);
    d.shutdown = NULL;
    expect_rejected(&d, PLG_ERR_MISSING_CALLBACK, "requires a shutdown callback");

    d = probe_desc("t", "n", "1.0.0", &pr);
    d.capabilities = bad_caps;
    d.capability_count = 2;
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "capability 1");
    d.capabilities = NULL;
    expect_rejected(&d, PLG_ERR_INVALID_ARGUMENT, "capabilities is NULL");

    d = probe_desc("t", "n", "1.0.0", &pr);
    d.host_api_range = ">=2.0.0";
    expect_rejected(&d, PLG_ERR_HOST_API_MISMATCH, "requires host API \">=2.0.0\", this host implements 1.0.0");
    d.host_api_range = ">=banana";
    expect_rejected(&d, PLG_ERR_INVALID_RANGE, "host_api_range");
    d.host_api_range = "^1.0.0";
    {
        plg_registry *reg = NULL;
        CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
        CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
        plg_registry_destroy(reg);
    }

    expect_rejected(NULL, PLG_ERR_INVALID_ARGUMENT, "descriptor is NULL");
}

TEST(registration_checks_dependencies_and_schema)
{
    probe pr;
    plg_descriptor d;
    plg_dependency deps[2];
    plg_config_key schema[1];
    memset(&pr, 0, sizeof pr);
    memset(deps, 0, sizeof deps);
    memset(schema, 0, sizeof schema);

    d = probe_desc("t", "n", "1.0.0", &pr);
    deps[0].name = "base";
    deps[0].range = "^1.2";
    deps[1].name = "other";
    deps[1].range = "~>banana";
    d.dependencies = deps;
    d.dependency_count = 2;
    expect_rejected(&d, PLG_ERR_INVALID_RANGE, "dependency other");
    deps[1].range = NULL;
    deps[1].name = "bad name";
    expect_rejected(&d, PLG_ERR_INVALID_NAME, "dependency 1 name");
    d.dependencies = NULL;
    expect_rejected(&d, PLG_ERR_INVALID_ARGUMENT, "dependencies is NULL");

    d = probe_desc("t", "n", "1.0.0", &pr);
    schema[0].key = "port";
    schema[0].type = PLG_CONFIG_INTEGER;
    schema[0].default_value = "99999";
    schema[0].max = "65535";
    d.config_schema = schema;
    d.config_key_count = 1;
    expect_rejected(&d, PLG_ERR_INVALID_SCHEMA, "port");
}

TEST(duplicate_type_and_name_is_rejected)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d1, d2, d3;
    memset(&pr, 0, sizeof pr);
    d1 = probe_desc("storage", "redis", "1.0.0", &pr);
    d2 = probe_desc("storage", "redis", "2.0.0", &pr);
    d3 = probe_desc("cache", "redis", "2.0.0", &pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(plg_register(reg, &d1, NULL), PLG_OK);
    CHECK_INT(plg_register(reg, &d2, NULL), PLG_ERR_DUPLICATE);
    CHECK_CONTAINS(plg_errmsg(reg), "storage/redis is already registered (version 1.0.0; this one is 2.0.0)");
    CHECK_INT(plg_register(reg, &d3, NULL), PLG_OK); /* same name, other type */
    CHECK_INT(plg_plugin_count(reg), 2);
    plg_registry_destroy(reg);
}

TEST(registry_limit_is_enforced)
{
    plg_registry_desc rd;
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    memset(&rd, 0, sizeof rd);
    memset(&pr, 0, sizeof pr);
    rd.max_plugins = 2;
    CHECK_INT(plg_registry_create(&rd, &reg), PLG_OK);
    d = probe_desc("t", "a", "1.0.0", &pr);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d.name = "b";
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d.name = "c";
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_LIMIT);
    CHECK_CONTAINS(plg_errmsg(reg), "maximum of 2");
    plg_registry_destroy(reg);
}

/* ---- interfaces ---- */

typedef struct math_vtable_v1 {
    int (*add)(int, int);
} math_vtable_v1;
typedef struct math_vtable_v2 {
    int (*add)(int, int);
    int (*mul)(int, int);
} math_vtable_v2;

static int math_add(int a, int b) { return a + b; }
static int math_mul(int a, int b) { return a * b; }

static plg_result math_validate(const plg_interface *iface, char *msg, size_t size, void *user)
{
    const math_vtable_v2 *vt = (const math_vtable_v2 *)iface->vtable;
    (void)user;
    if (vt->add == NULL) {
        snprintf(msg, size, "method add is required");
        return PLG_ERR_MISSING_CALLBACK;
    }
    if (iface->abi_version >= 2 && vt->mul == NULL) {
        snprintf(msg, size, "method mul is required by ABI 2");
        return PLG_ERR_MISSING_CALLBACK;
    }
    return PLG_OK;
}

static void declare_math(plg_registry *reg)
{
    static const uint32_t sizes[] = {sizeof(math_vtable_v1), sizeof(math_vtable_v2)};
    plg_interface_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.id = "math";
    spec.min_abi_version = 1;
    spec.max_abi_version = 2;
    spec.struct_sizes = sizes;
    spec.validate = math_validate;
    CHECK_INT(plg_declare_interface(reg, &spec), PLG_OK);
    CHECK_INT(plg_declare_interface(reg, &spec), PLG_OK); /* identical: idempotent */
    spec.max_abi_version = 1;
    CHECK_INT(plg_declare_interface(reg, &spec), PLG_ERR_DUPLICATE);
    CHECK_CONTAINS(plg_errmsg(reg), "interface math is already declared with a different spec");
}

TEST(interfaces_are_checked_at_registration)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p = NULL;
    math_vtable_v2 full, missing_mul;
    uint32_t abi = 0;
    const math_vtable_v2 *vt;
    memset(&pr, 0, sizeof pr);
    full.add = math_add;
    full.mul = math_mul;
    missing_mul.add = math_add;
    missing_mul.mul = NULL;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    declare_math(reg);

    d = probe_desc("math", "ok", "1.0.0", &pr);
    d.provides.id = "math";
    d.provides.abi_version = 2;
    d.provides.struct_size = sizeof full;
    d.provides.vtable = &full;
    CHECK_INT(plg_register(reg, &d, &p), PLG_OK);
    vt = (const math_vtable_v2 *)plg_plugin_vtable(p, "math", 2, &abi);
    CHECK(vt == &full);
    CHECK_INT(abi, 2);
    CHECK_INT(vt->mul(6, 7), 42);
    CHECK(plg_plugin_vtable(p, "math", 3, NULL) == NULL);
    CHECK(plg_plugin_vtable(p, "other", 1, NULL) == NULL);

    d.name = "too-new";
    d.provides.abi_version = 3;
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_ABI_MISMATCH);
    CHECK_CONTAINS(plg_errmsg(reg), "abi_version is 3, the host supports 1 to 2");
    d.name = "too-small";
    d.provides.abi_version = 2;
    d.provides.struct_size = sizeof(math_vtable_v1);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_VTABLE_TOO_SMALL);
    CHECK_CONTAINS(plg_errmsg(reg), "struct_size is 8 bytes, ABI 2 needs at least 16");
    d.name = "missing-mul";
    d.provides.struct_size = sizeof missing_mul;
    d.provides.vtable = &missing_mul;
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_MISSING_CALLBACK);
    CHECK_CONTAINS(plg_errmsg(reg), "method mul is required by ABI 2");
    d.name = "v1-without-mul"; /* ABI 1 does not need mul */
    d.provides.abi_version = 1;
    d.provides.struct_size = sizeof(math_vtable_v1);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d.name = "no-vtable";
    d.provides.vtable = NULL;
    CHECK_INT(plg_register(reg, &d, NULL), PLG_ERR_MISSING_CALLBACK);
    d.name = "undeclared";
    d.provides.id = "undeclared.iface";
    d.provides.vtable = &full;
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    plg_registry_destroy(reg);
}

/* ---- lookup ---- */

TEST(lookup_by_type_is_ordered_by_priority_then_registration)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *list[8];
    size_t n;
    static const char *const names[] = {"p0", "p5a", "p5b", "pm1", "p9"};
    static const int prios[] = {0, 5, 5, -1, 9};
    static const char *const tagged[] = {"tagged"};
    int i;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    for (i = 0; i < 5; i++) {
        d = probe_desc("codec", names[i], "1.0.0", &pr);
        d.priority = prios[i];
        if (i % 2 == 0) {
            d.capabilities = tagged;
            d.capability_count = 1;
        }
        CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    }
    d = probe_desc("other", "x", "1.0.0", &pr);
    d.capabilities = tagged;
    d.capability_count = 1;
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);

    n = plg_list_type(reg, "codec", list, 8);
    CHECK_INT(n, 5);
    CHECK_STR(plg_plugin_name(list[0]), "p9");
    CHECK_STR(plg_plugin_name(list[1]), "p5a");
    CHECK_STR(plg_plugin_name(list[2]), "p5b");
    CHECK_STR(plg_plugin_name(list[3]), "p0");
    CHECK_STR(plg_plugin_name(list[4]), "pm1");
    /* A smaller array gets the first ones of the same order; the count is still the total. */
    n = plg_list_type(reg, "codec", list, 2);
    CHECK_INT(n, 5);
    CHECK_STR(plg_plugin_name(list[0]), "p9");
    CHECK_STR(plg_plugin_name(list[1]), "p5a");
    CHECK_INT(plg_list_type(reg, "codec", NULL, 0), 5);
    CHECK_INT(plg_list_type(reg, "nope", list, 8), 0);

    n = plg_list_capability(reg, "codec", "tagged", list, 8);
    CHECK_INT(n, 3); /* p0, p5b, p9 */
    CHECK_STR(plg_plugin_name(list[0]), "p9");
    CHECK_STR(plg_plugin_name(list[1]), "p5b");
    CHECK_STR(plg_plugin_name(list[2]), "p0");
    CHECK_INT(plg_list_capability(reg, NULL, "tagged", list, 8), 4);
    CHECK_INT(plg_list_capability(reg, NULL, "absent", list, 8), 0);
    plg_registry_destroy(reg);
}

TEST(lookup_by_name_and_version_range)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p = NULL;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("db", "pg", "1.4.2", &pr);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d = probe_desc("db", "mysql", "2.1.0", &pr);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d = probe_desc("db", "lite", "2.0.0-beta.1", &pr);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);

    CHECK_INT(plg_find(reg, "db", "pg", &p), PLG_OK);
    CHECK_STR(plg_plugin_name(p), "pg");
    CHECK_INT(plg_find(reg, "db", "oracle", &p), PLG_ERR_NOT_FOUND);
    CHECK(p == NULL);
    CHECK_CONTAINS(plg_errmsg(reg), "db/oracle");
    CHECK_INT(plg_find(reg, "cache", "pg", &p), PLG_ERR_NOT_FOUND);

    CHECK_INT(plg_find_version(reg, "db", "pg", "^1.2", &p), PLG_OK);
    CHECK_STR(plg_plugin_name(p), "pg");
    CHECK_INT(plg_find_version(reg, "db", "pg", "^2", &p), PLG_ERR_VERSION_MISMATCH);
    CHECK_CONTAINS(plg_errmsg(reg), "has version 1.4.2, which does not satisfy \"^2\"");
    CHECK_INT(plg_find_version(reg, "db", "oracle", "*", &p), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_find_version(reg, "db", NULL, ">=1.0.0", &p), PLG_OK);
    CHECK_STR(plg_plugin_name(p), "mysql"); /* highest; the beta is excluded by the pre-release rule */
    CHECK_INT(plg_find_version(reg, "db", NULL, "<2.0.0", &p), PLG_OK);
    CHECK_STR(plg_plugin_name(p), "pg");
    CHECK_INT(plg_find_version(reg, "db", NULL, ">=2.0.0-beta.0 <2.0.0", &p), PLG_OK);
    CHECK_STR(plg_plugin_name(p), "lite");
    CHECK_INT(plg_find_version(reg, "db", NULL, ">=3", &p), PLG_ERR_VERSION_MISMATCH);
    CHECK_INT(plg_find_version(reg, "nosuch", NULL, "*", &p), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_find_version(reg, "db", NULL, ">>1", &p), PLG_ERR_INVALID_RANGE);
    plg_registry_destroy(reg);
}

TEST(many_plugins_are_all_found)
{
    plg_registry *reg = NULL;
    probe pr;
    char name[32];
    int i, missing = 0;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    for (i = 0; i < 5000; i++) {
        plg_descriptor d;
        snprintf(name, sizeof name, "plugin-%d", i);
        d = probe_desc(i % 3 ? "a" : "b", name, "1.0.0", &pr);
        if (plg_register(reg, &d, NULL) != PLG_OK)
            missing++;
    }
    CHECK_INT(missing, 0);
    CHECK_INT(plg_plugin_count(reg), 5000);
    for (i = 0; i < 5000; i++) {
        plg_plugin *p = NULL;
        snprintf(name, sizeof name, "plugin-%d", i);
        if (plg_find(reg, i % 3 ? "a" : "b", name, &p) != PLG_OK || strcmp(plg_plugin_name(p), name))
            missing++;
        if (plg_find(reg, i % 3 ? "b" : "a", name, &p) != PLG_ERR_NOT_FOUND)
            missing++;
    }
    CHECK_INT(missing, 0);
    CHECK_INT(plg_list_type(reg, "b", NULL, 0), 1667);
    plg_registry_destroy(reg);
}

TEST(unregister_removes_from_lookups_but_keeps_the_handle)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p = NULL, *q = NULL;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("t", "gone", "1.0.0", &pr);
    p = must_register(reg, &d);
    CHECK_INT(plg_init(reg, p, NULL), PLG_OK);
    CHECK_INT(plg_unregister(reg, p), PLG_ERR_INVALID_STATE); /* initialized: shut down first */
    CHECK_INT(plg_shutdown(reg, p), PLG_OK);
    CHECK_INT(plg_unregister(reg, p), PLG_OK);
    CHECK_INT(plg_unregister(reg, p), PLG_ERR_NOT_FOUND);
    /* A registered plugin that is unregistered cannot be brought up behind the walks' back. */
    d.name = "never-run";
    q = must_register(reg, &d);
    CHECK_INT(plg_unregister(reg, q), PLG_OK);
    CHECK_INT(plg_init(reg, q, NULL), PLG_ERR_NOT_FOUND);
    CHECK_CONTAINS(plg_errmsg(reg), "t/never-run: it was unregistered");
    CHECK_INT(plg_set_config(reg, q, "{}"), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_plugin_state(q), PLG_STATE_REGISTERED);
    CHECK_INT(pr.init_calls, 1);
    d.name = "gone";
    CHECK_STR(plg_plugin_name(p), "gone");
    CHECK_INT(plg_find(reg, "t", "gone", &q), PLG_ERR_NOT_FOUND);
    CHECK_INT(plg_list_type(reg, "t", NULL, 0), 0);
    CHECK_INT(plg_plugin_count(reg), 0);
    d.version = "2.0.0";
    CHECK_INT(plg_register(reg, &d, &q), PLG_OK);
    CHECK(q != p);
    CHECK_INT(plg_find(reg, "t", "gone", &q), PLG_OK);
    CHECK_STR(plg_plugin_version(q), "2.0.0");
    plg_registry_destroy(reg);
}

/* ---- lifecycle ---- */

TEST(lifecycle_follows_the_state_machine)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("t", "life", "1.0.0", &pr);
    p = must_register(reg, &d);

    CHECK_INT(plg_start(reg, p), PLG_ERR_INVALID_STATE);
    CHECK_CONTAINS(plg_errmsg(reg), "cannot start t/life: it is registered");
    CHECK_INT(plg_stop(reg, p), PLG_ERR_INVALID_STATE);
    CHECK_INT(plg_shutdown(reg, p), PLG_ERR_INVALID_STATE);
    CHECK(plg_plugin_instance(p) == NULL);

    CHECK_INT(plg_init(reg, p, NULL), PLG_OK);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_INITIALIZED);
    CHECK(plg_plugin_instance(p) == &pr);
    CHECK(plg_plugin_config(p) != NULL);
    CHECK_INT(plg_init(reg, p, NULL), PLG_ERR_INVALID_STATE);
    CHECK_INT(plg_stop(reg, p), PLG_ERR_INVALID_STATE); /* stop without start */
    CHECK_INT(plg_plugin_state(p), PLG_STATE_INITIALIZED);

    CHECK_INT(plg_start(reg, p), PLG_OK);
    CHECK_INT(plg_start(reg, p), PLG_ERR_INVALID_STATE);
    CHECK_INT(plg_shutdown(reg, p), PLG_ERR_INVALID_STATE); /* started: stop first */
    CHECK_INT(plg_stop(reg, p), PLG_OK);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_STOPPED);
    CHECK_INT(plg_start(reg, p), PLG_OK); /* restart */
    CHECK_INT(plg_stop(reg, p), PLG_OK);
    CHECK_INT(plg_shutdown(reg, p), PLG_OK);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_SHUT_DOWN);
    CHECK_INT(plg_shutdown(reg, p), PLG_ERR_INVALID_STATE); /* double shutdown */
    CHECK_INT(plg_init(reg, p, NULL), PLG_ERR_INVALID_STATE);
    CHECK(plg_plugin_instance(p) == NULL);
    CHECK(plg_plugin_config(p) == NULL);

    CHECK_INT(pr.init_calls, 1);
    CHECK_INT(pr.start_calls, 2);
    CHECK_INT(pr.stop_calls, 2);
    CHECK_INT(pr.shutdown_calls, 1);
    plg_registry_destroy(reg);
    CHECK_INT(pr.shutdown_calls, 1);
}

TEST(failing_callbacks_mark_the_plugin_failed_with_the_reason)
{
    plg_registry *reg = NULL;
    probe bad_init, bad_start, bad_stop;
    plg_descriptor d;
    plg_plugin *p1, *p2, *p3;
    char reason[256];
    plg_health_report h;
    memset(&bad_init, 0, sizeof bad_init);
    memset(&bad_start, 0, sizeof bad_start);
    memset(&bad_stop, 0, sizeof bad_stop);
    bad_init.init_result = PLG_ERR_NOT_FOUND;
    bad_init.fail_message = "socket file /run/x.sock is missing";
    bad_start.start_result = PLG_ERR_PLUGIN_FAILED;
    bad_stop.stop_result = PLG_ERR_INTERNAL;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("t", "bad-init", "1.0.0", &bad_init);
    p1 = must_register(reg, &d);
    d = probe_desc("t", "bad-start", "1.0.0", &bad_start);
    p2 = must_register(reg, &d);
    d = probe_desc("t", "bad-stop", "1.0.0", &bad_stop);
    p3 = must_register(reg, &d);

    CHECK_INT(plg_init(reg, p1, NULL), PLG_ERR_PLUGIN_FAILED);
    CHECK_CONTAINS(plg_errmsg(reg), "socket file /run/x.sock is missing");
    CHECK_INT(plg_plugin_state(p1), PLG_STATE_FAILED);
    CHECK(plg_plugin_failure(p1, reason, sizeof reason) > 0);
    CHECK_CONTAINS(reason, "init returned PLG_ERR_NOT_FOUND");
    CHECK_CONTAINS(reason, "socket file /run/x.sock is missing");
    CHECK_INT(plg_health(reg, p1, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_UNHEALTHY);
    CHECK_CONTAINS(h.message, "socket file");
    CHECK_INT(plg_start(reg, p1), PLG_ERR_INVALID_STATE);
    CHECK_INT(plg_shutdown(reg, p1), PLG_OK);
    CHECK_INT(bad_init.shutdown_calls, 0); /* init never succeeded: nothing to release */

    CHECK_INT(plg_init(reg, p2, NULL), PLG_OK);
    CHECK_INT(plg_start(reg, p2), PLG_ERR_PLUGIN_FAILED);
    CHECK_INT(plg_plugin_state(p2), PLG_STATE_FAILED);
    CHECK(plg_plugin_failure(p2, reason, sizeof reason) > 0);
    CHECK_CONTAINS(reason, "start returned PLG_ERR_PLUGIN_FAILED");
    CHECK_INT(plg_shutdown(reg, p2), PLG_OK);
    CHECK_INT(bad_start.shutdown_calls, 1); /* init had succeeded: shutdown releases it */

    CHECK_INT(plg_init(reg, p3, NULL), PLG_OK);
    CHECK_INT(plg_start(reg, p3), PLG_OK);
    CHECK_INT(plg_stop(reg, p3), PLG_ERR_PLUGIN_FAILED);
    CHECK_INT(plg_plugin_state(p3), PLG_STATE_FAILED);
    CHECK_INT(plg_plugin_failure(p3, NULL, 0) > 0, 1);
    plg_registry_destroy(reg);
    CHECK_INT(bad_stop.shutdown_calls, 1);
}

static plg_result capture_config_init(plg_plugin *self, const plg_config *config, void **instance)
{
    probe *p = (probe *)plg_plugin_user_data(self);
    p->init_calls++;
    *instance = (void *)config;
    return PLG_OK;
}

TEST(init_receives_validated_configuration)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p;
    const plg_config *cfg;
    plg_config_key schema[3];
    memset(&pr, 0, sizeof pr);
    memset(schema, 0, sizeof schema);
    schema[0].key = "addr";
    schema[0].type = PLG_CONFIG_STRING;
    schema[0].flags = PLG_KEY_REQUIRED;
    schema[1].key = "password";
    schema[1].type = PLG_CONFIG_STRING;
    schema[1].flags = PLG_KEY_SECRET;
    schema[1].default_value = "";
    schema[2].key = "pool";
    schema[2].type = PLG_CONFIG_INTEGER;
    schema[2].default_value = "4";
    schema[2].min = "1";
    schema[2].max = "64";
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("persistence", "kv", "1.0.0", &pr);
    d.init = capture_config_init;
    d.config_schema = schema;
    d.config_key_count = 3;
    p = must_register(reg, &d);
    CHECK_INT(plg_init(reg, p, "{\"password\":\"hunter2\",\"pool\":100}"), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_errmsg(reg), "persistence/kv");
    CHECK_CONTAINS(plg_errmsg(reg), "addr");
    CHECK_CONTAINS(plg_errmsg(reg), "pool");
    CHECK_NOT_CONTAINS(plg_errmsg(reg), "hunter2");
    CHECK_INT(pr.init_calls, 0);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_REGISTERED);
    CHECK_INT(plg_init(reg, p, "{\"addr\":"), PLG_ERR_CONFIG_SYNTAX);
    CHECK_INT(plg_plugin_state(p), PLG_STATE_REGISTERED);
    CHECK_INT(plg_init(reg, p, "{\"addr\":\"localhost:6379\",\"password\":\"\"}"), PLG_OK);
    CHECK_INT(pr.init_calls, 1);
    cfg = (const plg_config *)plg_plugin_instance(p);
    CHECK(cfg == plg_plugin_config(p));
    CHECK_STR(plg_config_string(cfg, "addr"), "localhost:6379");
    CHECK_INT(plg_config_integer(cfg, "pool"), 4);
    CHECK_INT(plg_config_is_set(cfg, "pool"), 2);
    plg_registry_destroy(reg);
}

/* ---- dependencies ---- */

static plg_descriptor dep_desc(const char *name, probe *p, const plg_dependency *deps, size_t n)
{
    plg_descriptor d = probe_desc("svc", name, "1.0.0", p);
    d.dependencies = deps;
    d.dependency_count = n;
    return d;
}

TEST(start_all_follows_dependency_order_and_stop_all_reverses_it)
{
    plg_registry *reg = NULL;
    probe pa, pb, pc, pd;
    plg_dependency c_deps[1], b_deps[1], d_deps[2];
    plg_descriptor d;
    memset(&pa, 0, sizeof pa);
    memset(&pb, 0, sizeof pb);
    memset(&pc, 0, sizeof pc);
    memset(&pd, 0, sizeof pd);
    memset(c_deps, 0, sizeof c_deps);
    memset(b_deps, 0, sizeof b_deps);
    memset(d_deps, 0, sizeof d_deps);
    c_deps[0].name = "b";
    b_deps[0].name = "a";
    b_deps[0].range = "^1";
    d_deps[0].name = "c";
    d_deps[1].name = "absent";
    d_deps[1].optional = 1;
    start_log[0] = stop_log[0] = '\0';
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = dep_desc("d", &pd, d_deps, 2);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d = dep_desc("c", &pc, c_deps, 1);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d = dep_desc("b", &pb, b_deps, 1);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    d = dep_desc("a", &pa, NULL, 0);
    CHECK_INT(plg_register(reg, &d, NULL), PLG_OK);
    CHECK_INT(plg_start_all(reg), PLG_OK);
    CHECK_STR(start_log, "a b c d ");
    CHECK_INT(plg_stop_all(reg), PLG_OK);
    CHECK_STR(stop_log, "d c b a ");
    CHECK_INT(plg_start_all(reg), PLG_OK); /* stopped plugins start again */
    CHECK_STR(start_log, "a b c d a b c d ");
    stop_log[0] = '\0';
    CHECK_INT(plg_shutdown_all(reg), PLG_OK);
    CHECK_STR(stop_log, "d c b a ");
    CHECK_INT(pa.shutdown_calls + pb.shutdown_calls + pc.shutdown_calls + pd.shutdown_calls, 4);
    plg_registry_destroy(reg);
}

TEST(failed_or_missing_dependencies_fail_only_their_dependents)
{
    plg_registry *reg = NULL;
    probe base, user, missing_user, old_user, bystander;
    plg_dependency on_base[1], on_missing[1], on_new_base[1];
    plg_descriptor d;
    plg_plugin *p_user, *p_missing, *p_old, *p_by;
    char reason[512];
    plg_health_report h;
    memset(&base, 0, sizeof base);
    memset(&user, 0, sizeof user);
    memset(&missing_user, 0, sizeof missing_user);
    memset(&old_user, 0, sizeof old_user);
    memset(&bystander, 0, sizeof bystander);
    memset(on_base, 0, sizeof on_base);
    memset(on_missing, 0, sizeof on_missing);
    memset(on_new_base, 0, sizeof on_new_base);
    base.start_result = PLG_ERR_PLUGIN_FAILED;
    base.fail_message = "port 5432 refused";
    on_base[0].name = "base";
    on_missing[0].type = "db";
    on_missing[0].name = "ghost";
    on_new_base[0].name = "bystander";
    on_new_base[0].range = ">=2";
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = dep_desc("user", &user, on_base, 1);
    p_user = must_register(reg, &d);
    d = dep_desc("base", &base, NULL, 0);
    CHECK(must_register(reg, &d) != NULL);
    d = dep_desc("missing-user", &missing_user, on_missing, 1);
    p_missing = must_register(reg, &d);
    d = dep_desc("old-user", &old_user, on_new_base, 1);
    p_old = must_register(reg, &d);
    d = dep_desc("bystander", &bystander, NULL, 0);
    p_by = must_register(reg, &d);

    CHECK_INT(plg_start_all(reg), PLG_ERR_PLUGIN_FAILED);
    CHECK_CONTAINS(plg_errmsg(reg), "4 plugins not started");
    CHECK_CONTAINS(plg_errmsg(reg), "port 5432 refused");
    CHECK_INT(plg_plugin_state(p_by), PLG_STATE_STARTED);
    CHECK_INT(plg_plugin_state(p_user), PLG_STATE_FAILED);
    CHECK_INT(user.init_calls, 0);
    plg_plugin_failure(p_user, reason, sizeof reason);
    CHECK_CONTAINS(reason, "dependency svc/base failed: start returned");
    plg_plugin_failure(p_missing, reason, sizeof reason);
    CHECK_CONTAINS(reason, "dependency db/ghost is not registered");
    plg_plugin_failure(p_old, reason, sizeof reason);
    CHECK_CONTAINS(reason, "dependency svc/bystander has version 1.0.0, which does not satisfy \">=2\"");

    CHECK_INT(plg_health_all(reg, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_UNHEALTHY);
    CHECK_INT(h.failing, 4);
    CHECK_CONTAINS(h.message, "svc/base");
    CHECK_CONTAINS(h.message, "svc/user");
    CHECK_NOT_CONTAINS(h.message, "bystander:");
    plg_registry_destroy(reg);
    CHECK_INT(bystander.shutdown_calls, 1);
    CHECK_INT(base.shutdown_calls, 1);
}

TEST(dependency_cycles_are_named_and_isolated)
{
    plg_registry *reg = NULL;
    probe px, py, pz, pw;
    plg_dependency x_deps[1], y_deps[1], w_deps[1];
    plg_descriptor d;
    plg_plugin *x, *y, *z, *w;
    char reason[512];
    memset(&px, 0, sizeof px);
    memset(&py, 0, sizeof py);
    memset(&pz, 0, sizeof pz);
    memset(&pw, 0, sizeof pw);
    memset(x_deps, 0, sizeof x_deps);
    memset(y_deps, 0, sizeof y_deps);
    memset(w_deps, 0, sizeof w_deps);
    x_deps[0].name = "y";
    y_deps[0].name = "x";
    w_deps[0].name = "x";
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = dep_desc("x", &px, x_deps, 1);
    x = must_register(reg, &d);
    d = dep_desc("y", &py, y_deps, 1);
    y = must_register(reg, &d);
    d = dep_desc("z", &pz, NULL, 0);
    z = must_register(reg, &d);
    d = dep_desc("w", &pw, w_deps, 1);
    w = must_register(reg, &d);
    CHECK_INT(plg_start_all(reg), PLG_ERR_DEPENDENCY_CYCLE);
    CHECK_CONTAINS(plg_errmsg(reg), "svc/x -> svc/y -> svc/x");
    CHECK_INT(plg_plugin_state(x), PLG_STATE_FAILED);
    CHECK_INT(plg_plugin_state(y), PLG_STATE_FAILED);
    CHECK_INT(plg_plugin_state(w), PLG_STATE_FAILED);
    CHECK_INT(plg_plugin_state(z), PLG_STATE_STARTED);
    plg_plugin_failure(y, reason, sizeof reason);
    CHECK_CONTAINS(reason, "dependency cycle");
    plg_plugin_failure(w, reason, sizeof reason);
    CHECK_CONTAINS(reason, "dependency svc/x failed");
    CHECK_INT(px.init_calls + py.init_calls + pw.init_calls, 0);
    plg_registry_destroy(reg);
}

TEST(start_refuses_while_a_dependency_is_not_started)
{
    plg_registry *reg = NULL;
    probe pa, pb;
    plg_dependency deps[1];
    plg_descriptor d;
    plg_plugin *a, *b;
    memset(&pa, 0, sizeof pa);
    memset(&pb, 0, sizeof pb);
    memset(deps, 0, sizeof deps);
    deps[0].name = "a";
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = dep_desc("a", &pa, NULL, 0);
    a = must_register(reg, &d);
    d = dep_desc("b", &pb, deps, 1);
    b = must_register(reg, &d);
    CHECK_INT(plg_init(reg, b, NULL), PLG_OK);
    CHECK_INT(plg_start(reg, b), PLG_ERR_DEPENDENCY_FAILED);
    CHECK_CONTAINS(plg_errmsg(reg), "dependency svc/a is registered, not started");
    CHECK_INT(plg_plugin_state(b), PLG_STATE_INITIALIZED);
    CHECK_INT(pb.start_calls, 0);
    CHECK_INT(plg_init(reg, a, NULL), PLG_OK);
    CHECK_INT(plg_start(reg, a), PLG_OK);
    CHECK_INT(plg_start(reg, b), PLG_OK);
    plg_registry_destroy(reg);
}

TEST(start_all_uses_the_stored_configuration)
{
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p, *q;
    plg_config_key schema[1];
    memset(&pr, 0, sizeof pr);
    memset(schema, 0, sizeof schema);
    schema[0].key = "path";
    schema[0].type = PLG_CONFIG_STRING;
    schema[0].flags = PLG_KEY_REQUIRED;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("store", "file", "1.0.0", &pr);
    d.config_schema = schema;
    d.config_key_count = 1;
    p = must_register(reg, &d);
    d.name = "unconfigured";
    q = must_register(reg, &d);
    CHECK_INT(plg_set_config(reg, p, "{\"path\":1}"), PLG_ERR_CONFIG_INVALID);
    CHECK_INT(plg_set_config(reg, p, "{\"path\":\"/var/lib/q\"}"), PLG_OK);
    CHECK_INT(plg_start_all(reg), PLG_ERR_CONFIG_INVALID);
    CHECK_CONTAINS(plg_errmsg(reg), "store/unconfigured");
    CHECK_INT(plg_plugin_state(p), PLG_STATE_STARTED);
    CHECK_STR(plg_config_string(plg_plugin_config(p), "path"), "/var/lib/q");
    CHECK_INT(plg_plugin_state(q), PLG_STATE_FAILED);
    plg_registry_destroy(reg);
}

/* ---- health ---- */

TEST(health_reports_each_plugin_and_names_the_failing_ones)
{
    plg_registry *reg = NULL;
    probe ok, slow;
    plg_descriptor d;
    plg_plugin *p_ok, *p_slow;
    plg_health_report h;
    memset(&ok, 0, sizeof ok);
    memset(&slow, 0, sizeof slow);
    slow.health = PLG_HEALTH_DEGRADED;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    d = probe_desc("q", "ok", "1.0.0", &ok);
    p_ok = must_register(reg, &d);
    d = probe_desc("q", "slow", "1.0.0", &slow);
    p_slow = must_register(reg, &d);

    CHECK_INT(plg_health(reg, p_ok, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_UNHEALTHY);
    CHECK_CONTAINS(h.message, "not running (registered)");
    CHECK_INT(ok.health_calls, 0);
    CHECK_INT(plg_init(reg, p_ok, NULL), PLG_OK);
    CHECK_INT(plg_health(reg, p_ok, &h), PLG_OK); /* health before start asks the plugin */
    CHECK_INT(ok.health_calls, 1);
    CHECK_INT(h.status, PLG_HEALTH_OK);

    CHECK_INT(plg_health_all(reg, &h), PLG_OK); /* nothing started, nothing failed */
    CHECK_INT(h.status, PLG_HEALTH_OK);
    CHECK_INT(h.failing, 0);
    CHECK_INT(plg_start_all(reg), PLG_OK);
    CHECK_INT(plg_health(reg, p_slow, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_DEGRADED);
    CHECK_STR(h.message, "queue depth high");
    CHECK_INT(plg_health_all(reg, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_DEGRADED);
    CHECK_INT(h.failing, 1);
    CHECK_STR(h.message, "q/slow: degraded: queue depth high");
    CHECK_INT(plg_health(reg, p_ok, NULL), PLG_ERR_INVALID_ARGUMENT);
    plg_registry_destroy(reg);
}

/* ---- errors ---- */

TEST(result_strings_are_distinct_and_complete)
{
    int i, j;
    for (i = 0; i < PLG_RESULT_COUNT_; i++) {
        const char *s = plg_result_string((plg_result)i);
        CHECK(s != NULL && strncmp(s, "PLG_", 4) == 0);
        for (j = 0; j < i; j++)
            CHECK(strcmp(s, plg_result_string((plg_result)j)) != 0);
    }
    CHECK_STR(plg_result_string(PLG_OK), "PLG_OK: ok");
    CHECK_CONTAINS(plg_result_string((plg_result)9999), "unknown");
    CHECK_STR(plg_state_name(PLG_STATE_SHUT_DOWN), "shut down");
    CHECK_STR(plg_state_name((plg_state)42), "invalid state");
}

TEST(null_arguments_never_crash)
{
    plg_registry *reg = NULL;
    plg_plugin *p = NULL;
    plg_health_report h;
    char buf[8];
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    plg_registry_destroy(NULL);
    CHECK_STR(plg_errmsg(NULL), "no registry (NULL)");
    CHECK_INT(plg_register(NULL, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_register(reg, NULL, &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_unregister(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_find(reg, NULL, "x", &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_find(reg, "x", NULL, &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_find(reg, "x", "y", NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_find(NULL, "x", "y", &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_find_version(reg, "x", "y", NULL, &p), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_list_type(NULL, "x", NULL, 0), 0);
    CHECK_INT(plg_list_type(reg, NULL, NULL, 0), 0);
    CHECK_INT(plg_list_capability(reg, NULL, NULL, NULL, 0), 0);
    CHECK_INT(plg_plugin_count(NULL), 0);
    CHECK(plg_plugin_descriptor(NULL) == NULL);
    CHECK(plg_plugin_name(NULL) == NULL);
    CHECK(plg_plugin_type(NULL) == NULL);
    CHECK(plg_plugin_version(NULL) == NULL);
    CHECK_INT(plg_plugin_state(NULL), 0);
    CHECK_INT(plg_plugin_has_capability(NULL, "x"), 0);
    CHECK_INT(plg_plugin_failure(NULL, buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    CHECK(plg_plugin_vtable(NULL, "x", 1, NULL) == NULL);
    CHECK(plg_plugin_instance(NULL) == NULL);
    CHECK(plg_plugin_config(NULL) == NULL);
    CHECK(plg_plugin_user_data(NULL) == NULL);
    CHECK(plg_plugin_registry(NULL) == NULL);
    plg_plugin_set_error(NULL, "x");
    plg_log(NULL, PLG_LOG_ERROR, "x");
    CHECK(plg_alloc(NULL, 10) == NULL);
    plg_free(NULL, NULL, 0);
    CHECK(plg_registry_alloc(NULL, 10) == NULL);
    plg_registry_free(NULL, NULL, 0);
    CHECK_INT(plg_init(reg, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_init(NULL, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_set_config(reg, NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_start(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_stop(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_shutdown(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_start_all(NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_stop_all(NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_shutdown_all(NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_health(reg, NULL, &h), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_health_all(NULL, &h), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_health_all(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_declare_interface(reg, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_declare_interface(NULL, NULL), PLG_ERR_INVALID_ARGUMENT);
    CHECK_INT(plg_registry_resolved(NULL).max_config_bytes, 0);
    CHECK_INT(plg_auto_register(NULL), PLG_ERR_INVALID_ARGUMENT);
    plg_registry_destroy(reg);
}

static plg_registry *shared_reg;
static void *fail_in_thread(void *arg)
{
    (void)arg;
    (void)plg_find(shared_reg, "thread", "only", NULL);
    return (void *)plg_errmsg(shared_reg);
}

TEST(error_messages_belong_to_the_calling_thread)
{
    pthread_t t;
    void *other = NULL;
    plg_plugin *p;
    CHECK_INT(plg_registry_create(NULL, &shared_reg), PLG_OK);
    CHECK_INT(plg_find(shared_reg, "main", "thread", &p), PLG_ERR_NOT_FOUND);
    CHECK(pthread_create(&t, NULL, fail_in_thread, NULL) == 0);
    CHECK(pthread_join(t, &other) == 0);
    CHECK_CONTAINS(plg_errmsg(shared_reg), "main/thread");
    plg_registry_destroy(shared_reg);
}

TEST(logger_receives_registry_and_plugin_messages)
{
    plg_registry_desc rd;
    plg_registry *reg = NULL;
    probe pr;
    plg_descriptor d;
    plg_plugin *p;
    memset(&rd, 0, sizeof rd);
    memset(&pr, 0, sizeof pr);
    rd.logger.log_fn = capture_log;
    log_lines = 0;
    CHECK_INT(plg_registry_create(&rd, &reg), PLG_OK);
    d = probe_desc("t", "chatty", "1.0.0", &pr);
    p = must_register(reg, &d);
    CHECK(log_lines >= 1);
    CHECK_CONTAINS(last_log, "registered t/chatty 1.0.0");
    plg_log(p, PLG_LOG_WARN, "disk %d%% full", 93);
    CHECK_STR(last_log, "t/chatty: disk 93% full");
    plg_registry_destroy(reg);
}

/* ---- automatic registration ---- */

static plg_result auto_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)self;
    (void)config;
    *instance = NULL;
    return PLG_OK;
}
static void auto_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static plg_descriptor make_auto(const char *name)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = "auto";
    d.name = name;
    d.version = "0.1.0";
    d.init = auto_init;
    d.shutdown = auto_shutdown;
    return d;
}

/* Constructors run before main; they cannot use a designated-initializer-free helper at file
   scope, so the descriptors are filled in by a constructor of higher priority. */
static plg_descriptor auto_good, auto_bad;
__attribute__((constructor(101))) static void fill_auto_descriptors(void)
{
    auto_good = make_auto("auto-good");
    auto_bad = make_auto("bad name!");
}
PLG_AUTO_REGISTER(auto_good)
PLG_AUTO_REGISTER(auto_bad)

TEST(auto_registration_happens_before_main_and_keeps_failures)
{
    plg_plugin *p = NULL;
    char msg[256];
    CHECK_INT(plg_find(plg_default_registry(), "auto", "auto-good", &p), PLG_OK);
    CHECK_STR(plg_plugin_version(p), "0.1.0");
    CHECK_INT(plg_auto_register_status(msg, sizeof msg), PLG_ERR_INVALID_NAME);
    CHECK_CONTAINS(msg, "plugin name contains ' ' at position 3");
}

int main(void)
{
    RUN(registry_defaults_are_resolved);
    RUN(registry_create_rejects_bad_setup);
    RUN(allocator_hooks_receive_every_allocation_with_its_size);
    RUN(out_of_memory_is_reported_without_leaks);
    RUN(registries_are_independent);
    RUN(descriptor_is_copied_by_the_registry);
    RUN(registration_rejects_bad_metadata_each_with_its_code);
    RUN(registration_checks_dependencies_and_schema);
    RUN(duplicate_type_and_name_is_rejected);
    RUN(registry_limit_is_enforced);
    RUN(interfaces_are_checked_at_registration);
    RUN(lookup_by_type_is_ordered_by_priority_then_registration);
    RUN(lookup_by_name_and_version_range);
    RUN(many_plugins_are_all_found);
    RUN(unregister_removes_from_lookups_but_keeps_the_handle);
    RUN(lifecycle_follows_the_state_machine);
    RUN(failing_callbacks_mark_the_plugin_failed_with_the_reason);
    RUN(init_receives_validated_configuration);
    RUN(start_all_follows_dependency_order_and_stop_all_reverses_it);
    RUN(failed_or_missing_dependencies_fail_only_their_dependents);
    RUN(dependency_cycles_are_named_and_isolated);
    RUN(start_refuses_while_a_dependency_is_not_started);
    RUN(start_all_uses_the_stored_configuration);
    RUN(health_reports_each_plugin_and_names_the_failing_ones);
    RUN(result_strings_are_distinct_and_complete);
    RUN(null_arguments_never_crash);
    RUN(error_messages_belong_to_the_calling_thread);
    RUN(logger_receives_registry_and_plugin_messages);
    RUN(auto_registration_happens_before_main_and_keeps_failures);
    return test_summary();
}
