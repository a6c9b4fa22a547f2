/* hello_explicit.c - registers the hello plugin explicitly: the primary path. Usage:
   hello_explicit ['{"greeting":"Bonjour"}'] */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define HELLO_PLUGIN_IMPLEMENTATION
#include "hello_run.h"

int main(int argc, char **argv)
{
    plg_registry *reg = NULL;
    int status;
    if (plg_registry_create(NULL, &reg) != PLG_OK)
        return 1;
    if (plg_register(reg, &hello_descriptor, NULL) != PLG_OK) {
        fprintf(stderr, "hello: %s\n", plg_errmsg(reg));
        plg_registry_destroy(reg);
        return 1;
    }
    status = hello_run(reg, argc > 1 ? argv[1] : NULL);
    plg_registry_destroy(reg);
    return status;
}
