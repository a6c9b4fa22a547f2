/* test_plugin_contract.c - runs the plugin contract suite against the example plugins (every case
   must pass) and against deliberately broken plugins (each must be caught by the case meant to
   catch it).

   gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -g -fsanitize=address,undefined \
       -fno-sanitize-recover=all -I. tests/contract/test_plugin_contract.c -o /tmp/pc_test \
       -pthread -lm && /tmp/pc_test
*/
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#define PLUGIN_CONTRACT_IMPLEMENTATION
#include "tests/contract/plugin_contract.h"
#define GREETER_IMPLEMENTATION
#include "examples/plugins/greeter.h"
#define COUNTER_IMPLEMENTATION
#include "examples/plugins/counter.h"

/* Double inclusion after the implementation macros must be harmless. */
#include "tests/contract/plugin_contract.h"
#include "examples/plugins/counter.h"
#include "examples/plugins/greeter.h"

#include "tests/test.h"

#define MAX_CASES 64

static const char *const greeter_valid = "{\"sender\":\"Ada\",\"api_key\":\"k-0123456789\"}";

static plg_result prepare_greeter(plg_registry *reg, void *user)
{
    (void)user;
    return greeter_declare_interface(reg);
}

static void greeter_options(plg_contract_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->valid_config = greeter_valid;
    opt->failing_init_config = "{\"sender\":\"Ada\",\"fail_on\":\"init\"}";
    opt->failing_start_config = "{\"sender\":\"Ada\",\"fail_on\":\"start\"}";
    opt->register_dependencies = prepare_greeter;
}

/* Runs the suite quietly or not and returns the report (results in the caller's array). */
static void run_suite(const plg_descriptor *d, plg_contract_options *opt, plg_contract_report *rep,
                      plg_contract_case_result *results)
{
    memset(rep, 0, sizeof *rep);
    rep->results = results;
    rep->result_capacity = MAX_CASES;
    (void)plg_contract_run(d, opt, rep);
}

/* The case `id` failed; prints its message so that the log shows what was caught. */
static int caught_by(const plg_contract_report *rep, const char *id)
{
    const plg_contract_case_result *r = plg_contract_find_result(rep, id);
    if (r == NULL || r->outcome != PLG_CONTRACT_FAIL)
        return 0;
    printf("    caught by %s: %.300s%s\n", id, r->message, strlen(r->message) > 300 ? "..." : "");
    return 1;
}

/* Every case passed or, only for those listed, was not supported. */
static int all_passed(const plg_contract_report *rep)
{
    size_t i;
    for (i = 0; i < rep->case_count && i < rep->result_capacity; i++)
        if (rep->results[i].outcome == PLG_CONTRACT_FAIL) {
            printf("    unexpected FAIL %s: %s\n", rep->results[i].id, rep->results[i].message);
            return 0;
        }
    return rep->failed == 0;
}

/* ---------------------------------------------------------------------------------------------
   The example plugins pass
   ------------------------------------------------------------------------------------------- */

TEST(greeter_passes_every_case)
{
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    greeter_options(&opt);
    run_suite(greeter_descriptor(), &opt, &rep, results);
    CHECK(all_passed(&rep));
    CHECK_INT(rep.failed, 0);
    CHECK_INT(rep.not_supported, 0);
    CHECK_INT(rep.case_count, plg_contract_case_count());
    CHECK_INT(rep.passed, plg_contract_case_count());
}

TEST(greeter_degraded_passes_every_case)
{
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    greeter_options(&opt);
    opt.valid_config = "{\"sender\":\"Ada\",\"degraded\":true,\"style\":\"loud\",\"repeat\":5,"
                       "\"timeout\":\"1.5s\",\"excited\":\"yes\"}";
    opt.quiet = 1;
    run_suite(greeter_descriptor(), &opt, &rep, results);
    CHECK(all_passed(&rep));
    CHECK_INT(rep.not_supported, 0);
}

TEST(greeter_works)
{
    plg_registry *reg = NULL;
    plg_plugin *p = NULL;
    plg_health_report h;
    const greeter_v1 *vt;
    uint32_t abi = 0;
    char buf[128];
    size_t n;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(greeter_declare_interface(reg), PLG_OK);
    CHECK_INT(greeter_register(reg), PLG_OK);
    CHECK_INT(plg_find(reg, "greeter", "greeter", &p), PLG_OK);
    CHECK_INT(plg_init(reg, p, "{\"sender\":\"Ada\",\"style\":\"polite\"}"), PLG_OK);
    CHECK_INT(plg_start(reg, p), PLG_OK);
    vt = (const greeter_v1 *)plg_plugin_vtable(p, GREETER_V1_ID, 1, &abi);
    CHECK(vt != NULL);
    CHECK_INT(abi, GREETER_V1_ABI_VERSION);
    if (vt != NULL) {
        CHECK_INT(vt->struct_size, sizeof(greeter_v1));
        n = vt->greet(plg_plugin_instance(p), "Grace", buf, sizeof buf);
        CHECK_STR(buf, "Good day, Grace. Kind regards, Ada.");
        CHECK_INT(n, strlen(buf));
        n = vt->greet(plg_plugin_instance(p), "Grace", buf, 5);
        CHECK_STR(buf, "Good");
        CHECK_INT(n, strlen("Good day, Grace. Kind regards, Ada."));
    }
    CHECK_INT(plg_health(reg, p, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_OK);
    CHECK_CONTAINS(h.message, "2 greetings");
    CHECK_INT(plg_stop(reg, p), PLG_OK);
    CHECK_INT(plg_shutdown(reg, p), PLG_OK);
    CHECK_INT(plg_unregister(reg, p), PLG_OK);
    /* degraded by configuration; a loud, repeated, excited greeting */
    CHECK_INT(greeter_register(reg), PLG_OK);
    CHECK_INT(plg_find(reg, "greeter", "greeter", &p), PLG_OK);
    CHECK_INT(plg_init(reg, p, "{\"sender\":\"Ada\",\"degraded\":true,\"style\":\"loud\","
                               "\"repeat\":2}"),
              PLG_OK);
    CHECK_INT(plg_start(reg, p), PLG_OK);
    CHECK_INT(plg_health(reg, p, &h), PLG_OK);
    CHECK_INT(h.status, PLG_HEALTH_DEGRADED);
    vt = (const greeter_v1 *)plg_plugin_vtable(p, GREETER_V1_ID, 1, NULL);
    if (vt != NULL) {
        (void)vt->greet(plg_plugin_instance(p), "you", buf, sizeof buf);
        CHECK_STR(buf, "HEY, you! HEY, you!");
    }
    /* the secret default never shows */
    {
        char text[512];
        (void)plg_config_format(plg_plugin_config(p), text, sizeof text);
        CHECK_CONTAINS(text, "\"api_key\":\"<redacted>\"");
        CHECK_NOT_CONTAINS(text, "greeter-demo-key");
    }
    plg_registry_destroy(reg);
}

TEST(counter_passes_every_case)
{
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    const plg_contract_case_result *r;
    memset(&opt, 0, sizeof opt);
    run_suite(counter_descriptor(), &opt, &rep, results);
    CHECK(all_passed(&rep));
    /* what a minimal plugin does not declare */
    CHECK_INT(rep.not_supported, 6);
    r = plg_contract_find_result(&rep, "PC-IFACE-01");
    CHECK(r != NULL && r->outcome == PLG_CONTRACT_NOT_SUPPORTED);
    r = plg_contract_find_result(&rep, "PC-SCHEMA-01");
    CHECK(r != NULL && r->outcome == PLG_CONTRACT_NOT_SUPPORTED);
    r = plg_contract_find_result(&rep, "PC-HEALTH-02");
    CHECK(r != NULL && r->outcome == PLG_CONTRACT_PASS);
    r = plg_contract_find_result(&rep, "PC-CONFIG-02");
    CHECK(r != NULL && r->outcome == PLG_CONTRACT_PASS);
}

TEST(counter_works)
{
    plg_registry *reg = NULL;
    plg_plugin *p = NULL;
    CHECK_INT(plg_registry_create(NULL, &reg), PLG_OK);
    CHECK_INT(counter_register(reg), PLG_OK);
    CHECK_INT(plg_find(reg, "metrics", "counter", &p), PLG_OK);
    CHECK_INT(counter_add(p, 1), 0); /* not initialized */
    CHECK_INT(plg_init(reg, p, NULL), PLG_OK);
    CHECK_INT(counter_add(p, 3), 3);
    CHECK_INT(counter_add(p, 4), 7);
    CHECK_INT(counter_value(p), 7);
    CHECK_INT(plg_start(reg, p), PLG_OK);
    CHECK_INT(plg_stop(reg, p), PLG_OK);
    CHECK_INT(plg_shutdown(reg, p), PLG_OK);
    CHECK_INT(counter_value(p), 0);
    plg_registry_destroy(reg);
}

/* ---------------------------------------------------------------------------------------------
   A plugin with a dependency, and the suite's options
   ------------------------------------------------------------------------------------------- */

static plg_result reporter_init(plg_plugin *self, const plg_config *config, void **instance)
{
    plg_plugin *counter = NULL;
    (void)config;
    if (plg_find(plg_plugin_registry(self), "metrics", "counter", &counter) != PLG_OK) {
        plg_plugin_set_error(self, "no counter");
        return PLG_ERR_DEPENDENCY_FAILED;
    }
    *instance = counter;
    return PLG_OK;
}

static plg_result reporter_start(plg_plugin *self, void *instance)
{
    (void)self;
    (void)counter_add((plg_plugin *)instance, 1);
    return PLG_OK;
}

static void reporter_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

static const plg_dependency reporter_deps[] = {{"metrics", "counter", "^0.3.0", 0}};

static plg_descriptor reporter_descriptor(void)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = "report";
    d.name = "reporter";
    d.version = "2.0.0-rc.1";
    d.description = "reports to the counter";
    d.dependencies = reporter_deps;
    d.dependency_count = 1;
    d.init = reporter_init;
    d.start = reporter_start;
    d.shutdown = reporter_shutdown;
    return d;
}

static plg_result prepare_reporter(plg_registry *reg, void *user)
{
    (void)user;
    return counter_register(reg);
}

TEST(dependency_option_and_report)
{
    plg_descriptor d = reporter_descriptor();
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    memset(&opt, 0, sizeof opt);
    opt.register_dependencies = prepare_reporter;
    opt.quiet = 1;
    run_suite(&d, &opt, &rep, results);
    CHECK(all_passed(&rep));
    /* the same plugin without its dependency fails PC-META-07 and cannot start */
    opt.register_dependencies = NULL;
    run_suite(&d, &opt, &rep, results);
    CHECK(caught_by(&rep, "PC-META-07"));
    CHECK(caught_by(&rep, "PC-LIFE-02"));
    /* filter, small result array, no report */
    opt.register_dependencies = prepare_reporter;
    opt.filter = "PC-LIFE-0";
    memset(&rep, 0, sizeof rep);
    rep.results = results;
    rep.result_capacity = 2;
    CHECK_INT(plg_contract_run(&d, &opt, &rep), 0);
    CHECK_INT(rep.case_count, 9);
    CHECK_INT(rep.passed, 9);
    CHECK(plg_contract_find_result(&rep, "PC-LIFE-01") != NULL);
    CHECK(plg_contract_find_result(&rep, "PC-LIFE-03") == NULL); /* beyond the capacity */
    CHECK_INT(plg_contract_run(&d, &opt, NULL), 0);
    /* the case list */
    CHECK_STR(plg_contract_case_id(0), "PC-META-01");
    CHECK(plg_contract_case_id(plg_contract_case_count()) == NULL);
    CHECK_STR(plg_contract_outcome_name(PLG_CONTRACT_NOT_SUPPORTED), "NOT SUPPORTED");
    {
        plg_contract_options r = plg_contract_resolved(NULL);
        CHECK_STR(r.valid_config, "{}");
        CHECK_STR(r.host_api_version, "1.0.0");
        CHECK(r.out == stdout);
    }
}

TEST(null_descriptor_fails_without_crashing)
{
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    memset(&opt, 0, sizeof opt);
    opt.quiet = 1;
    run_suite(NULL, &opt, &rep, results);
    CHECK(rep.failed > 0);
    CHECK(caught_by(&rep, "PC-META-01"));
}

/* ---------------------------------------------------------------------------------------------
   Broken plugins. "widget" is correct; each broken one changes one thing.
   ------------------------------------------------------------------------------------------- */

typedef struct widget {
    int64_t level;
    void *conn; /* WIDGET_CONN bytes while started */
} widget;

#define WIDGET_CONN 64

static const plg_config_key widget_schema[] = {
    {"level", PLG_CONFIG_INTEGER, 0, "1", "0", "10", NULL, 0, "how much"},
    {"token", PLG_CONFIG_STRING, PLG_KEY_SECRET, "widget-default-token", NULL, NULL, NULL, 0,
     "access token"},
    {"ratio", PLG_CONFIG_NUMBER, 0, "0.5", "-1e3", "0.75", NULL, 0, "a fraction"},
};

static plg_result widget_init(plg_plugin *self, const plg_config *config, void **instance)
{
    widget *w = (widget *)plg_alloc(self, sizeof *w);
    if (w == NULL)
        return PLG_ERR_NO_MEMORY;
    w->level = plg_config_integer(config, "level");
    w->conn = NULL;
    *instance = w;
    return PLG_OK;
}

static plg_result widget_start(plg_plugin *self, void *instance)
{
    widget *w = (widget *)instance;
    w->conn = plg_alloc(self, WIDGET_CONN);
    return w->conn != NULL ? PLG_OK : PLG_ERR_NO_MEMORY;
}

static plg_result widget_stop(plg_plugin *self, void *instance)
{
    widget *w = (widget *)instance;
    plg_free(self, w->conn, WIDGET_CONN);
    w->conn = NULL;
    return PLG_OK;
}

static void widget_shutdown(plg_plugin *self, void *instance)
{
    widget *w = (widget *)instance;
    plg_free(self, w->conn, WIDGET_CONN);
    plg_free(self, w, sizeof *w);
}

static plg_health_status widget_health(plg_plugin *self, void *instance, char *message,
                                       size_t message_size)
{
    (void)self;
    snprintf(message, message_size, "level %lld", (long long)((widget *)instance)->level);
    return PLG_HEALTH_OK;
}

static const char *const widget_caps[] = {"widgets", "fast-path"};

static plg_descriptor widget_descriptor(void)
{
    plg_descriptor d;
    memset(&d, 0, sizeof d);
    d.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    d.struct_size = sizeof d;
    d.type = "widget";
    d.name = "widget";
    d.version = "1.0.0";
    d.description = "a correct plugin that the broken ones are made from";
    d.capabilities = widget_caps;
    d.capability_count = 2;
    d.host_api_range = ">=1.0.0 <2.0.0";
    d.config_schema = widget_schema;
    d.config_key_count = sizeof widget_schema / sizeof widget_schema[0];
    d.init = widget_init;
    d.start = widget_start;
    d.stop = widget_stop;
    d.shutdown = widget_shutdown;
    d.health = widget_health;
    return d;
}

/* Runs the suite quietly on d and checks that `id` failed. */
static void expect_caught(const plg_descriptor *d, const plg_contract_options *options,
                          const char *id)
{
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    if (options != NULL)
        opt = *options;
    else
        memset(&opt, 0, sizeof opt);
    opt.quiet = 1;
    run_suite(d, &opt, &rep, results);
    CHECK(rep.failed > 0);
    if (!caught_by(&rep, id)) {
        char m[160];
        snprintf(m, sizeof m, "expected a FAIL of %s", id);
        test_fail_line(__FILE__, __LINE__, m);
    }
}

TEST(widget_is_correct)
{
    plg_descriptor d = widget_descriptor();
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    memset(&opt, 0, sizeof opt);
    opt.quiet = 1;
    run_suite(&d, &opt, &rep, results);
    CHECK(all_passed(&rep));
}

/* 1. Shutdown forgets to free the block init allocated with plg_alloc. */
static void leaky_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}

TEST(broken_leaky_shutdown)
{
    plg_descriptor d = widget_descriptor();
    d.shutdown = leaky_shutdown;
    expect_caught(&d, NULL, "PC-LIFE-01");
}

/* 2. Shutdown frees with the wrong size. */
static void wrong_size_shutdown(plg_plugin *self, void *instance)
{
    plg_free(self, ((widget *)instance)->conn, WIDGET_CONN);
    plg_free(self, instance, sizeof(widget) + 8);
}

TEST(broken_wrong_free_size)
{
    plg_descriptor d = widget_descriptor();
    d.shutdown = wrong_size_shutdown;
    expect_caught(&d, NULL, "PC-LIFE-01");
}

/* 3. Health returns a status that is not a plg_health_status (3 still fits the enum's range). */
static plg_health_status bad_status_health(plg_plugin *self, void *instance, char *message,
                                           size_t message_size)
{
    (void)self;
    (void)instance;
    snprintf(message, message_size, "fine, I think");
    return (plg_health_status)3;
}

TEST(broken_health_status)
{
    plg_descriptor d = widget_descriptor();
    d.health = bad_status_health;
    expect_caught(&d, NULL, "PC-HEALTH-02");
}

/* 4. Health fills its message without a terminating NUL. */
static plg_health_status unterminated_health(plg_plugin *self, void *instance, char *message,
                                             size_t message_size)
{
    (void)self;
    (void)instance;
    memset(message, 'A', message_size);
    return PLG_HEALTH_OK;
}

TEST(broken_health_unterminated)
{
    plg_descriptor d = widget_descriptor();
    d.health = unterminated_health;
    expect_caught(&d, NULL, "PC-HEALTH-01");
}

/* 5. Health writes past message_size (the suite's guard bytes catch it; with the registry's own
   buffer it would be a buffer overflow). */
static plg_health_status overflowing_health(plg_plugin *self, void *instance, char *message,
                                            size_t message_size)
{
    (void)self;
    (void)instance;
    memset(message, 'B', message_size + 4);
    message[message_size + 3] = '\0';
    return PLG_HEALTH_OK;
}

TEST(broken_health_overflow)
{
    plg_descriptor d = widget_descriptor();
    d.health = overflowing_health;
    expect_caught(&d, NULL, "PC-HEALTH-03");
}

/* 6. The version is not semver. */
TEST(broken_version)
{
    plg_descriptor d = widget_descriptor();
    d.version = "1.0";
    expect_caught(&d, NULL, "PC-META-03");
}

/* 7. A capability with a space; another declared twice. */
static const char *const bad_caps[] = {"fast path"};
static const char *const dup_caps[] = {"widgets", "widgets"};

TEST(broken_capabilities)
{
    plg_descriptor d = widget_descriptor();
    d.capabilities = bad_caps;
    d.capability_count = 1;
    expect_caught(&d, NULL, "PC-META-05");
    d.capabilities = dup_caps;
    d.capability_count = 2;
    expect_caught(&d, NULL, "PC-META-05");
}

/* 8. A default outside its own bounds. */
static const plg_config_key bad_default_schema[] = {
    {"level", PLG_CONFIG_INTEGER, 0, "500", "0", "100", NULL, 0, "how much"},
};

TEST(broken_schema_default)
{
    plg_descriptor d = widget_descriptor();
    d.config_schema = bad_default_schema;
    d.config_key_count = 1;
    expect_caught(&d, NULL, "PC-SCHEMA-01");
}

/* 9. Init logs the secret token. */
static plg_result secret_logging_init(plg_plugin *self, const plg_config *config, void **instance)
{
    plg_log(self, PLG_LOG_DEBUG, "connecting with token %s", plg_config_string(config, "token"));
    return widget_init(self, config, instance);
}

TEST(broken_secret_in_log)
{
    plg_descriptor d = widget_descriptor();
    d.init = secret_logging_init;
    expect_caught(&d, NULL, "PC-SCHEMA-03");
}

/* 10. Health repeats the secret in its message. */
static plg_health_status secret_health(plg_plugin *self, void *instance, char *message,
                                       size_t message_size)
{
    const plg_config *cfg = plg_plugin_config(self);
    (void)instance;
    snprintf(message, message_size, "using %s", plg_config_string(cfg, "token"));
    return PLG_HEALTH_OK;
}

TEST(broken_secret_in_health)
{
    plg_descriptor d = widget_descriptor();
    d.health = secret_health;
    expect_caught(&d, NULL, "PC-SCHEMA-03");
}

/* 11. A process-wide singleton: a second instance refuses to initialise. */
static int singleton_in_use;

static plg_result singleton_init(plg_plugin *self, const plg_config *config, void **instance)
{
    if (singleton_in_use) {
        plg_plugin_set_error(self, "already in use");
        return PLG_ERR_PLUGIN_FAILED;
    }
    singleton_in_use = 1;
    return widget_init(self, config, instance);
}

static void singleton_shutdown(plg_plugin *self, void *instance)
{
    singleton_in_use = 0;
    widget_shutdown(self, instance);
}

TEST(broken_global_state)
{
    plg_descriptor d = widget_descriptor();
    d.init = singleton_init;
    d.shutdown = singleton_shutdown;
    expect_caught(&d, NULL, "PC-LIFE-09");
    CHECK_INT(singleton_in_use, 0);
}

/* 12. Init fails on request but leaks what it allocated first. */
static plg_result leaky_failing_init(plg_plugin *self, const plg_config *config, void **instance)
{
    plg_result r = widget_init(self, config, instance);
    if (r == PLG_OK && plg_config_integer(config, "level") == 0) {
        plg_plugin_set_error(self, "level 0 is not supported");
        return PLG_ERR_PLUGIN_FAILED; /* *instance is never freed */
    }
    return r;
}

TEST(broken_init_failure_leaks)
{
    plg_descriptor d = widget_descriptor();
    plg_contract_options opt;
    memset(&opt, 0, sizeof opt);
    opt.failing_init_config = "{\"level\":0}";
    d.init = leaky_failing_init;
    expect_caught(&d, &opt, "PC-FAIL-01");
}

/* 13. Metadata: empty description; a host API range this host does not satisfy. */
TEST(broken_metadata)
{
    plg_descriptor d = widget_descriptor();
    d.description = "  ";
    expect_caught(&d, NULL, "PC-META-04");
    d = widget_descriptor();
    d.host_api_range = "^2.0.0";
    expect_caught(&d, NULL, "PC-META-06");
    d = widget_descriptor();
    d.name = "-widget";
    expect_caught(&d, NULL, "PC-META-02");
}

/* 14. An interface whose struct_size is 0 (undeclared interfaces are not checked by the
   registry, so only the suite sees it). */
static const int some_vtable = 0;

TEST(broken_interface)
{
    plg_descriptor d = widget_descriptor();
    d.provides.id = "widget.v1";
    d.provides.abi_version = 1;
    d.provides.struct_size = 0;
    d.provides.vtable = &some_vtable;
    expect_caught(&d, NULL, "PC-IFACE-01");
}

/* 15. Stop forgets the connection start opened: a leak only on the start/stop path, so
   PC-LIFE-01 passes and PC-LIFE-02 fails. */
static plg_result leaky_stop(plg_plugin *self, void *instance)
{
    (void)self;
    ((widget *)instance)->conn = NULL; /* dropped, not freed */
    return PLG_OK;
}

TEST(broken_stop_leaks)
{
    plg_descriptor d = widget_descriptor();
    plg_contract_options opt;
    plg_contract_report rep;
    static plg_contract_case_result results[MAX_CASES];
    const plg_contract_case_result *r;
    d.stop = leaky_stop;
    expect_caught(&d, NULL, "PC-LIFE-02");
    memset(&opt, 0, sizeof opt);
    opt.quiet = 1;
    opt.filter = "PC-LIFE-01";
    run_suite(&d, &opt, &rep, results);
    r = plg_contract_find_result(&rep, "PC-LIFE-01");
    CHECK(r != NULL && r->outcome == PLG_CONTRACT_PASS);
}

int main(void)
{
    RUN(greeter_passes_every_case);
    RUN(greeter_degraded_passes_every_case);
    RUN(greeter_works);
    RUN(counter_passes_every_case);
    RUN(counter_works);
    RUN(dependency_option_and_report);
    RUN(null_descriptor_fails_without_crashing);
    RUN(widget_is_correct);
    RUN(broken_leaky_shutdown);
    RUN(broken_wrong_free_size);
    RUN(broken_health_status);
    RUN(broken_health_unterminated);
    RUN(broken_health_overflow);
    RUN(broken_version);
    RUN(broken_capabilities);
    RUN(broken_schema_default);
    RUN(broken_secret_in_log);
    RUN(broken_secret_in_health);
    RUN(broken_global_state);
    RUN(broken_init_failure_leaks);
    RUN(broken_metadata);
    RUN(broken_interface);
    RUN(broken_stop_leaks);
    return test_summary();
}
