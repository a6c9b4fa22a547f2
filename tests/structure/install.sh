#!/usr/bin/env bash
# `make install` into a scratch DESTDIR, then a program built only from the installed headers
# and the flags pkg-config gives for plugin-persistence.pc.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
make -s install PREFIX=/opt/pp DESTDIR="$tmp/root" >"$tmp/log" 2>&1
result $? "make install into a DESTDIR"
pc="$tmp/root/opt/pp/lib/pkgconfig/plugin-persistence.pc"
[ -f "$pc" ] && grep -q "^Version: $(sed -n 's/^#define PLG_VERSION_STRING "\(.*\)"/\1/p' plugin_registry.h)$" "$pc"
result $? "pkg-config file installed with the library's version"
cflags=$(sed -n 's/^Cflags: //p' "$pc" | sed "s|\${includedir}|$tmp/root/opt/pp/include/plugin-persistence|")
libs=$(sed -n 's/^Libs: //p' "$pc")
cat >"$tmp/use.c" <<'C'
#define PLUGIN_REGISTRY_IMPLEMENTATION
#include "plugin_registry.h"
#include <stdio.h>
int main(void) { printf("%s\n", plg_version()); return 0; }
C
out=$(cd "$tmp" && gcc -std=c99 -Wall -Wextra -Werror $cflags use.c -o use $libs && ./use)
[ "$out" = "$(sed -n 's/^#define PLG_VERSION_STRING "\(.*\)"/\1/p' plugin_registry.h)" ]
result $? "a program builds from the installed headers with the pkg-config flags"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
