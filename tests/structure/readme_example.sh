#!/usr/bin/env bash
# The README's example program must work exactly as printed: extract the first ```c block,
# compile it as C99 with gcc and clang under -Wall -Wextra -Wpedantic -Werror, run it, and check
# its output. It must also be the same program as the usage guide at the top of the header.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }

awk '/^```c$/ {on=1; next} /^```$/ && on {exit} on' README.md >"$tmp/readme.c"
awk '/A complete minimal program/ {on=1; next} /^   CONCEPTS$/ {on=0} on' plugin_registry.h | sed -e '1{/^$/d}' |
  sed -e 's/^       //' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$tmp/guide.c"
[ -s "$tmp/readme.c" ]; result $? "README has a C example"
diff -u "$tmp/guide.c" "$tmp/readme.c" >"$tmp/diff" 2>&1; rc=$?
[ $rc -ne 0 ] && cat "$tmp/diff"
result $rc "README example is the header's usage-guide program"
for cc in gcc clang; do
  out=$($cc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. "$tmp/readme.c" -o "$tmp/prog-$cc" -pthread 2>&1 && "$tmp/prog-$cc")
  [ "$out" = "bonjour" ]; rc=$?
  [ $rc -ne 0 ] && echo "    output: $out"
  result $rc "README example compiles with $cc and prints bonjour"
done
echo "readme example: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
