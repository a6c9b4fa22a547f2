#!/usr/bin/env bash
# Shows the static-archive pitfall of PLG_AUTO_REGISTER and checks both documented cures:
# an object whose only job is to auto-register is dropped from a static archive unless the
# archive is linked whole or the generated plg_autoreg_<name> function is referenced.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror"

cat >"$tmp/plugin.c" <<'C'
#include "plugin_registry.h"
static plg_result p_init(plg_plugin *self, const plg_config *config, void **instance)
{ (void)self; (void)config; *instance = NULL; return PLG_OK; }
static void p_shutdown(plg_plugin *self, void *instance) { (void)self; (void)instance; }
static const plg_descriptor archived = {
    .abi_version = PLG_DESCRIPTOR_ABI_VERSION, .struct_size = sizeof(plg_descriptor),
    .type = "demo", .name = "archived", .version = "1.0.0",
    .init = p_init, .shutdown = p_shutdown,
};
PLG_AUTO_REGISTER(archived)
C
cat >"$tmp/main.c" <<'C'
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include <stdio.h>
int main(void)
{
    plg_plugin *p = NULL;
    int found = plg_find(plg_default_registry(), "demo", "archived", &p) == PLG_OK;
    printf("%s\n", found ? "registered" : "missing");
    return 0;
}
C
gcc $WARN -I"$root" -c "$tmp/plugin.c" -o "$tmp/plugin.o" && ar rcs "$tmp/libplugins.a" "$tmp/plugin.o"
gcc $WARN -I"$root" -c "$tmp/main.c" -o "$tmp/main.o"

out=$(gcc "$tmp/main.o" "$tmp/plugin.o" -o "$tmp/a" -pthread && "$tmp/a")
[ "$out" = "registered" ]; result $? "auto-registration from a plain object file works (got: $out)"
out=$(gcc "$tmp/main.o" -L"$tmp" -lplugins -o "$tmp/b" -pthread && "$tmp/b")
[ "$out" = "missing" ]; result $? "the pitfall: from a static archive the plugin is silently dropped (got: $out)"
out=$(gcc "$tmp/main.o" -Wl,--whole-archive -L"$tmp" -lplugins -Wl,--no-whole-archive -o "$tmp/c" -pthread && "$tmp/c")
[ "$out" = "registered" ]; result $? "cure 1: --whole-archive keeps it (got: $out)"
out=$(gcc "$tmp/main.o" -Wl,-u,plg_autoreg_archived -L"$tmp" -lplugins -o "$tmp/d" -pthread && "$tmp/d")
[ "$out" = "registered" ]; result $? "cure 2: -Wl,-u,plg_autoreg_archived keeps it (got: $out)"
echo "static archive: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
