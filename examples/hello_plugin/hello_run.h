/* What both variants do once the plugin is registered: configure, start, call, check health,
   shut down. Returns the process exit status. */
#ifndef HELLO_RUN_H
#define HELLO_RUN_H
#include "hello_plugin.h"
#include <stdio.h>

static int hello_run(plg_registry *reg, const char *config_json)
{
    plg_plugin *p = NULL;
    const hello_vtable *vt;
    plg_health_report health;
    char line[128];
    if (plg_find(reg, "greeter", "hello", &p) != PLG_OK ||
        plg_set_config(reg, p, config_json) != PLG_OK || plg_start_all(reg) != PLG_OK) {
        fprintf(stderr, "hello: %s\n", plg_errmsg(reg));
        return 1;
    }
    vt = (const hello_vtable *)plg_plugin_vtable(p, HELLO_INTERFACE_ID, 1, NULL);
    if (vt == NULL) {
        fprintf(stderr, "hello: no %s interface\n", HELLO_INTERFACE_ID);
        return 1;
    }
    vt->greet(plg_plugin_instance(p), "world", line, sizeof line);
    printf("%s\n", line);
    plg_health(reg, p, &health);
    printf("health: %s (%s)\n", health.status == PLG_HEALTH_OK ? "ok" : "not ok", health.message);
    return plg_shutdown_all(reg) == PLG_OK ? 0 : 1;
}
#endif
