#!/usr/bin/env bash
# Renders every template of gen/scaffold.py into a temporary directory, as a user would into a
# project of their own, compiles the results and runs the generated tests:
#   1. generation: backend, plugin, middleware (and a second run is byte-identical);
#   2. the generated headers follow the header conventions: declarations included twice,
#      implementation before and after its macro, two user TUs plus an implementation TU link;
#   3. every generated test compiles with gcc and clang, as C and as C++ (gcc C99, clang C11,
#      g++ C++11, clang++ C++17; RENDER_FULL_MATRIX=1 adds the other standard of each), under
#      -Wall -Wextra -Wpedantic -Werror;
#   4. the generated tests run (gcc with AddressSanitizer and UndefinedBehaviorSanitizer, and the
#      g++ C++11 build of step 3), with these expectations:
#        backend skeleton  EXPECTED TO FAIL: exit status 1 (not a crash or a signal), the plugin
#                          contract passes, every persistence contract case is reported by id
#                          and every failed one failed on the skeleton's PERS_ERR_NOT_SUPPORTED;
#        plugin skeleton   passes the plugin contract (exit 0, 0 failed);
#        middleware        wrapped around the memory backend, by name and by vtable, passes the
#                          whole persistence contract suite: 0 failed, 0 not supported;
#   5. generated inside a copy of the library, with relative includes, it builds and passes too;
#   6. docs: the registry description of a program registering all of it is rendered (only once
#      plugin_registry.h has plg_registry_describe_json; skipped before, not counted).
# Prints one line per check and the closing "render_and_build: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
WARN="-Wall -Wextra -Wpedantic -Werror"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
LIMIT=""
command -v timeout >/dev/null && LIMIT="timeout 600"
# Every compiler, each language; RENDER_FULL_MATRIX=1 adds the other standard of each.
MODES=("gcc -std=c99 -x c" "clang -std=c11 -x c" "g++ -std=c++11 -x c++" "clang++ -std=c++17 -x c++")
[ "${RENDER_FULL_MATRIX:-0}" = 1 ] &&
  MODES+=("gcc -std=c11 -x c" "clang -std=c99 -x c" "g++ -std=c++17 -x c++" "clang++ -std=c++11 -x c++")

ok() { pass=$((pass + 1)); echo "ok $1"; }
ko() { # name, log file
  fail=$((fail + 1)); echo "FAIL $1"
  [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/    /' "$2" | tail -n 40
}
check() { # name, command... (output to a log, shown on failure)
  local name=$1 log; shift
  log=$(mktemp -p "$tmp")
  if "$@" >"$log" 2>&1; then ok "$name"; else ko "$name" "$log"; fi
}

proj="$tmp/proj"
gen() { python3 gen/scaffold.py "$@" --out "$proj"; }

# --- 1. generation -------------------------------------------------------------------------------
check "scaffold backend demo_store" gen backend demo_store
check "scaffold plugin demo_notify --type notifier" gen plugin demo_notify --type notifier
check "scaffold middleware demo_trace" gen middleware demo_trace
again="$tmp/again"
python3 gen/scaffold.py backend demo_store --out "$again" >/dev/null 2>&1
python3 gen/scaffold.py plugin demo_notify --type notifier --out "$again" >/dev/null 2>&1
python3 gen/scaffold.py middleware demo_trace --out "$again" >/dev/null 2>&1
check "a second run into another directory is byte-identical" diff -r "$proj" "$again"

# header | its implementation macro | a public function | test program
UNITS=(
  "backends/demo_store.h|PERSISTENCE_DEMO_STORE_IMPLEMENTATION|demo_store_register|tests/test_demo_store_backend.c"
  "plugins/demo_notify.h|DEMO_NOTIFY_PLUGIN_IMPLEMENTATION|demo_notify_register|tests/test_demo_notify_plugin.c"
  "middleware/demo_trace.h|PERSISTENCE_DEMO_TRACE_IMPLEMENTATION|demo_trace_register|tests/test_demo_trace_middleware.c"
)
LIBIMPL="#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION"
INC="-I$proj -I$root"

# --- 2. header conventions -----------------------------------------------------------------------
for unit in "${UNITS[@]}"; do
  IFS='|' read -r header macro fn test <<<"$unit"
  tag=$(echo "$header" | tr '/.' '__')
  printf '#include "%s"\n#include "%s"\nint main(void) { return 0; }\n' "$header" "$header" >"$tmp/$tag-decl.c"
  { printf '#include "%s"\n%s\n#define %s\n' "$header" "$LIBIMPL" "$macro"
    printf '#include "%s"\n#include "%s"\nint main(void) { (void)&%s; return 0; }\n' "$header" "$header" "$fn"
  } >"$tmp/$tag-impl.c"
  for n in 1 2; do
    printf '#include "%s"\ntypedef void (*any_fn)(void);\nany_fn user_tu%s(void);\nany_fn user_tu%s(void) { return (any_fn)&%s; }\n' \
      "$header" "$n" "$n" "$fn" >"$tmp/$tag-tu$n.c"
  done
  printf 'typedef void (*any_fn)(void);\nany_fn user_tu1(void);\nany_fn user_tu2(void);\nint main(void) { return user_tu1() == user_tu2() ? 0 : 1; }\n' >"$tmp/$tag-main.c"
  { printf '%s\n#define %s\n#include "%s"\n' "$LIBIMPL" "$macro" "$header"; } >"$tmp/$tag-implonly.c"
  for mode in "gcc -std=c99 -x c" "clang++ -std=c++17 -x c++"; do
    label=$(echo "$mode" | cut -d' ' -f1-2)
    check "$header: declarations included twice ($label)" \
      $mode $WARN $INC -fsyntax-only "$tmp/$tag-decl.c"
    check "$header: implementation before and after its macro, links ($label)" \
      $mode $WARN $INC "$tmp/$tag-impl.c" -o "$tmp/$tag-impl" -pthread -lm
  done
  link_units() {
    local c
    for c in tu1 tu2 main implonly; do
      gcc -std=c99 $WARN $INC -c "$tmp/$tag-$c.c" -o "$tmp/$tag-$c.o" || return 1
    done
    gcc "$tmp/$tag-tu1.o" "$tmp/$tag-tu2.o" "$tmp/$tag-main.o" "$tmp/$tag-implonly.o" \
      -o "$tmp/$tag-linked" -pthread -lm && "$tmp/$tag-linked"
  }
  check "$header: two user TUs + one implementation TU link and run" link_units
done

# --- 3. compile matrix of the generated tests (in parallel) -----------------------------------------
jobs_max=$(nproc 2>/dev/null || echo 2)
declare -A status=() cxx_bin=() san_bin=()
i=0
for unit in "${UNITS[@]}"; do
  IFS='|' read -r header macro fn test <<<"$unit"
  for mode in "${MODES[@]}"; do
    i=$((i + 1))
    [ "$mode" = "g++ -std=c++11 -x c++" ] && cxx_bin[$test]="$tmp/bin-$i"
    ( $mode $WARN $INC "$proj/$test" -o "$tmp/bin-$i" -pthread -lm >"$tmp/log-$i" 2>&1
      echo $? >"$tmp/rc-$i" ) &
    status[$i]="$test ($(echo "$mode" | cut -d' ' -f1-2))"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 0.2; done
  done
  # The build step 4 runs under the sanitizers, in the same pool.
  i=$((i + 1))
  san_bin[$test]="$tmp/bin-$i"
  ( gcc -std=c99 $WARN -g -O1 $SAN $INC "$proj/$test" -o "$tmp/bin-$i" -pthread -lm \
      >"$tmp/log-$i" 2>&1
    echo $? >"$tmp/rc-$i" ) &
  status[$i]="$test (gcc -std=c99 with ASan+UBSan)"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 0.2; done
done
wait
for k in $(seq 1 $i); do
  if [ "$(cat "$tmp/rc-$k" 2>/dev/null)" = 0 ]; then ok "compiles: ${status[$k]}"
  else ko "compiles: ${status[$k]}" "$tmp/log-$k"; fi
done

# --- 4. running the generated tests --------------------------------------------------------------
# The case ids of both suites, from their case tables.
PC_IDS=$(grep -oE '^\s*\{"PC-[A-Z]+-[0-9]+"' tests/contract/plugin_contract.h | grep -oE 'PC-[A-Z]+-[0-9]+')
PS_IDS=$(grep -oE '^\s*\{"PS-[A-Z]+-[0-9]+"' tests/contract/persistence_contract.h | grep -oE 'PS-[A-Z]+-[0-9]+')

every_case_reported() { # output file, ids...
  local out=$1 id missing=""; shift
  for id in "$@"; do
    grep -qE "^(PASS|FAIL|NOT SUPPORTED) $id " "$out" || missing="$missing $id"
  done
  [ -z "$missing" ] || { echo "not reported:$missing"; return 1; }
}

expect_backend() { # binary
  local out="$tmp/backend.out" rc n bad
  $LIMIT "$1" >"$out" 2>&1; rc=$?
  echo "exit status $rc"; tail -n 3 "$out"
  [ "$rc" -eq 1 ] || { echo "expected exit status 1 (cases fail), got $rc"; return 1; }
  every_case_reported "$out" $PC_IDS $PS_IDS || return 1
  grep -qE '^plugin contract persistence/demo_store: [0-9]+ passed, 0 failed' "$out" ||
    { echo "the plugin contract must pass"; return 1; }
  n=$(grep -cE '^FAIL PS-' "$out")
  [ "$n" -gt 0 ] || { echo "no persistence case failed"; return 1; }
  # Every failure comes from the skeleton's answer, not from a crash, a leak or a hang.
  bad=$(grep -E '^FAIL PS-' "$out" | grep -v 'NOT_SUPPORTED' | cut -c1-200)
  [ -z "$bad" ] || { echo "failures not caused by the TODO stubs:"; echo "$bad"; return 1; }
  grep -qE '^test_demo_store_backend: [0-9]+ passed, [1-9][0-9]* failed$' "$out" ||
    { echo "no closing line with failures"; return 1; }
  echo "$n persistence cases FAIL, $(grep -cE '^NOT SUPPORTED PS-' "$out") NOT SUPPORTED," \
       "passing: $(grep -E '^PASS PS-' "$out" | cut -d' ' -f2 | tr '\n' ' ')"
}

expect_plugin() {
  local out="$tmp/plugin.out" rc
  $LIMIT "$1" >"$out" 2>&1; rc=$?
  tail -n 3 "$out"
  [ "$rc" -eq 0 ] || { echo "expected exit status 0, got $rc"; return 1; }
  every_case_reported "$out" $PC_IDS || return 1
  grep -qE '^plugin contract notifier/demo_notify: [0-9]+ passed, 0 failed' "$out" &&
    grep -qE '^test_demo_notify_plugin: [0-9]+ passed, 0 failed$' "$out"
}

expect_middleware() {
  local out="$tmp/middleware.out" rc
  $LIMIT "$1" >"$out" 2>&1; rc=$?
  tail -n 5 "$out"
  [ "$rc" -eq 0 ] || { echo "expected exit status 0, got $rc"; grep -E '^(FAIL|NOT SUPPORTED)' "$out"; return 1; }
  [ "$(grep -cE '^persistence contract demo_trace over .*: [0-9]+ passed, 0 failed, 0 not supported$' "$out")" -eq 2 ] ||
    { echo "the whole persistence suite must pass twice (by name, by vtable)"; return 1; }
  ! grep -qE '^(FAIL|NOT SUPPORTED) PS-' "$out" && every_case_reported "$out" $PS_IDS &&
    grep -qE '^plugin contract persistence/demo_trace: [0-9]+ passed, 0 failed' "$out"
}

for what in backend plugin middleware; do
  case $what in
    backend) test=tests/test_demo_store_backend.c ;;
    plugin) test=tests/test_demo_notify_plugin.c ;;
    middleware) test=tests/test_demo_trace_middleware.c ;;
  esac
  expectation=$([ $what = backend ] && echo 'expected to fail, each case named' || echo 'passes')
  if [ -x "${san_bin[$test]:-}" ]; then
    check "runs: $what skeleton test under ASan+UBSan ($expectation)" "expect_$what" "${san_bin[$test]}"
  else
    ko "runs: $what skeleton test under ASan+UBSan (it did not build)"
  fi
  if [ -x "${cxx_bin[$test]:-}" ]; then
    check "runs: $what skeleton test built as C++ (g++ -std=c++11)" "expect_$what" "${cxx_bin[$test]}"
  else
    ko "runs: $what skeleton test built as C++ (it did not build)"
  fi
done

# --- 5. inside a copy of the library (relative includes, as in the library's own headers) ----------
lib="$tmp/lib"
mkdir -p "$lib/backends" "$lib/tests/contract"
cp plugin_registry.h persistence.h "$lib/"
cp backends/memory.h "$lib/backends/"
cp tests/contract/plugin_contract.h tests/contract/persistence_contract.h "$lib/tests/contract/"
for h in *.h; do [ -f "$lib/$h" ] || cp "$h" "$lib/"; done
in_lib() {
  python3 gen/scaffold.py middleware demo_trace --library "$lib" --out "$lib" >/dev/null &&
    python3 gen/scaffold.py plugin demo_notify --type notifier --library "$lib" --out "$lib" >/dev/null &&
    grep -q '#include "../persistence.h"' "$lib/middleware/demo_trace.h" &&
    grep -q '#include "../plugin_registry.h"' "$lib/plugins/demo_notify.h" &&
    gcc -std=c99 $WARN -O1 -I"$lib" "$lib/tests/test_demo_trace_middleware.c" -o "$tmp/inlib-mw" -pthread -lm &&
    gcc -std=c99 $WARN -O1 -I"$lib" "$lib/tests/test_demo_notify_plugin.c" -o "$tmp/inlib-pl" -pthread -lm &&
    $LIMIT "$tmp/inlib-mw" >"$tmp/inlib-mw.out" 2>&1 && $LIMIT "$tmp/inlib-pl" >"$tmp/inlib-pl.out" 2>&1
}
check "generated inside the library: relative includes, builds with -I<library> only, passes" in_lib

# --- 6. docs from a real registry ------------------------------------------------------------------
if grep -q 'plg_registry_describe_json' plugin_registry.h; then
  cat >"$tmp/describe.c" <<'EOF'
#define PLUGIN_REGISTRY_IMPLEMENTATION
#define PERSISTENCE_IMPLEMENTATION
#define PERSISTENCE_MEMORY_IMPLEMENTATION
#define PERSISTENCE_DEMO_STORE_IMPLEMENTATION
#define PERSISTENCE_DEMO_TRACE_IMPLEMENTATION
#define DEMO_NOTIFY_PLUGIN_IMPLEMENTATION
#include "backends/memory.h"
#include "backends/demo_store.h"
#include "middleware/demo_trace.h"
#include "plugins/demo_notify.h"
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    plg_registry *reg = NULL;
    size_t n;
    char *text;
    if (plg_registry_create(NULL, &reg) != PLG_OK || pers_memory_register(reg) != PERS_OK ||
        demo_store_register(reg) != PERS_OK || demo_trace_register(reg) != PERS_OK ||
        demo_notify_register(reg) != PLG_OK)
        return 1;
    n = plg_registry_describe_json(reg, NULL, 0);
    text = (char *)malloc(n + 1);
    if (text == NULL || plg_registry_describe_json(reg, text, n + 1) != n)
        return 1;
    fputs(text, stdout);
    free(text);
    plg_registry_destroy(reg);
    return 0;
}
EOF
  docs_e2e() {
    gcc -std=c99 $WARN $INC "$tmp/describe.c" -o "$tmp/describe" -pthread -lm &&
      "$tmp/describe" >"$tmp/registry.json" &&
      python3 gen/scaffold.py docs "$tmp/registry.json" >"$tmp/plugins.md" &&
      grep -q '^### demo_store 0.1.0$' "$tmp/plugins.md" &&
      grep -q '^### demo_trace 0.1.0$' "$tmp/plugins.md" &&
      grep -q '^### demo_notify 0.1.0$' "$tmp/plugins.md" &&
      grep -q '^| `password` | string | none | - | no | yes |' "$tmp/plugins.md" &&
      grep -q '^| `inner_config` | string | \*set, not shown\* |' "$tmp/plugins.md"
  }
  check "docs: plg_registry_describe_json of the generated plugins renders" docs_e2e
else
  echo "skip docs from a real registry: plg_registry_describe_json is not in plugin_registry.h yet"
fi

echo "render_and_build: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
