#!/usr/bin/env bash
# The example programs build as C99 under -Wall -Wextra -Wpedantic -Werror and do what their
# comments say.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
build() { gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. "$1" -o "$2" -pthread -lm; }

for variant in explicit auto; do
  if build examples/hello_plugin/hello_$variant.c "$tmp/hello_$variant"; then
    out=$("$tmp/hello_$variant" '{"greeting":"Bonjour"}' 2>&1)
    printf '%s\n' "$out" | grep -qx "Bonjour, world!" && printf '%s\n' "$out" | grep -q "^health: ok"
    result $? "hello_$variant greets with its configuration and reports healthy"
    out=$("$tmp/hello_$variant" '{"greeting":"Hi","patience":"2h"}' 2>&1); rc=$?
    [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q '"patience" must be at most'
    result $? "hello_$variant refuses an out-of-range duration with one clear line"
  else
    result 1 "hello_$variant builds"
  fi
done
if build examples/plugin_demo.c "$tmp/plugin_demo"; then
  out=$("$tmp/plugin_demo" 2>&1); rc=$?
  [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "Good day, Grace. Kind regards, Ada." &&
    ! printf '%s\n' "$out" | grep -q "s3cr3t-value"
  result $? "plugin_demo runs, calls the greeter, and never prints the secret"
else
  result 1 "plugin_demo builds"
fi
echo "examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
