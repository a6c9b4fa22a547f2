/* hello_auto.c - the hello plugin registers itself into the default registry before main().
   Opt-in, and beware static archives: see "Automatic registration" in docs/plugin-registry.md.
   Usage: hello_auto ['{"greeting":"Hola"}'] */
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define HELLO_PLUGIN_IMPLEMENTATION
#include "hello_run.h"

PLG_AUTO_REGISTER(hello_descriptor)

int main(int argc, char **argv)
{
    char why[256];
    if (plg_auto_register_status(why, sizeof why) != PLG_OK) {
        fprintf(stderr, "hello: automatic registration failed: %s\n", why);
        return 1;
    }
    return hello_run(plg_default_registry(), argc > 1 ? argv[1] : NULL);
}
