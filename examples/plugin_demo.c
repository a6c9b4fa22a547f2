/* plugin_demo.c - a tour of plugin_registry.h with the two example plugins: registration and its
   checks, configuration errors reported all at once (secrets hidden), start in dependency order,
   a call through a vtable, health, and an orderly shutdown. Run it with `make demo`. */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#define GREETER_IMPLEMENTATION
#include "examples/plugins/greeter.h"
#define COUNTER_IMPLEMENTATION
#include "examples/plugins/counter.h"

#include <stdio.h>
#include <string.h>

static void print_log(void *user, plg_log_level level, const char *message)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)user;
    if (level <= PLG_LOG_INFO)
        printf("    [log %s] %s\n", names[level], message);
}

/* A plugin that needs the greeter, to show dependency order. */
static plg_result announcer_init(plg_plugin *self, const plg_config *config, void **instance)
{
    (void)config;
    *instance = NULL;
    plg_log(self, PLG_LOG_INFO, "initialised after its dependency");
    return PLG_OK;
}
static void announcer_shutdown(plg_plugin *self, void *instance)
{
    (void)self;
    (void)instance;
}
static const plg_dependency announcer_deps[] = {{"greeter", "greeter", "^1.2", 0}};

int main(void)
{
    plg_registry_desc setup;
    plg_registry *reg = NULL;
    plg_plugin *greeter = NULL, *counter = NULL;
    plg_descriptor announcer, bad;
    plg_health_report health;
    const greeter_v1 *vt;
    char line[128];
    size_t i, n;
    plg_plugin *all[8];
    plg_result r;

    memset(&setup, 0, sizeof setup);
    setup.logger.log_fn = print_log;
    setup.strict_config = 1;
    if (plg_registry_create(&setup, &reg) != PLG_OK)
        return 1;

    printf("1. register plugins\n");
    greeter_declare_interface(reg);
    if (greeter_register(reg) != PLG_OK || counter_register(reg) != PLG_OK) {
        fprintf(stderr, "register: %s\n", plg_errmsg(reg));
        return 1;
    }
    memset(&announcer, 0, sizeof announcer);
    announcer.abi_version = PLG_DESCRIPTOR_ABI_VERSION;
    announcer.struct_size = sizeof announcer;
    announcer.type = "app";
    announcer.name = "announcer";
    announcer.version = "0.3.0";
    announcer.description = "announces greetings";
    announcer.dependencies = announcer_deps;
    announcer.dependency_count = 1;
    announcer.init = announcer_init;
    announcer.shutdown = announcer_shutdown;
    if (plg_register(reg, &announcer, NULL) != PLG_OK)
        return 1;
    bad = announcer;
    bad.name = "sloppy";
    bad.version = "1.0";
    r = plg_register(reg, &bad, NULL);
    printf("   a descriptor with version \"1.0\" is refused: %s\n      %s\n", plg_result_string(r),
           plg_errmsg(reg));

    printf("2. configuration is validated against the schema, every problem at once\n");
    plg_find(reg, "greeter", "greeter", &greeter);
    plg_find(reg, "metrics", "counter", &counter);
    r = plg_set_config(reg, greeter,
                       "{\"style\":\"shouty\",\"repeat\":9,\"api_key\":\"s3cr3t-value\","
                       "\"sendr\":\"Ada\"}");
    printf("   %s\n      %s\n", plg_result_string(r), plg_errmsg(reg));
    if (plg_set_config(reg, greeter, "{\"sender\":\"Ada\",\"style\":\"polite\"}") != PLG_OK)
        return 1;

    printf("3. start everything, dependencies first\n");
    if (plg_start_all(reg) != PLG_OK) {
        fprintf(stderr, "start_all: %s\n", plg_errmsg(reg));
        return 1;
    }
    n = plg_list_type(reg, "greeter", all, 8);
    for (i = 0; i < n; i++)
        printf("   %s/%s %s is %s\n", plg_plugin_type(all[i]), plg_plugin_name(all[i]),
               plg_plugin_version(all[i]), plg_state_name(plg_plugin_state(all[i])));

    printf("4. call the greeter through its vtable\n");
    vt = (const greeter_v1 *)plg_plugin_vtable(greeter, GREETER_V1_ID, 1, NULL);
    if (vt == NULL)
        return 1;
    vt->greet(plg_plugin_instance(greeter), "Grace", line, sizeof line);
    printf("   %s\n", line);
    counter_add(counter, 3);
    printf("   counter is at %llu\n", (unsigned long long)counter_value(counter));

    printf("5. health of everything that runs\n");
    plg_health_all(reg, &health);
    printf("   %s, %lu not OK%s%s\n", health.status == PLG_HEALTH_OK ? "OK" : "NOT OK",
           (unsigned long)health.failing, health.failing ? ": " : "", health.message);

    printf("6. shut down in reverse dependency order\n");
    plg_registry_destroy(reg);
    printf("done\n");
    return 0;
}
