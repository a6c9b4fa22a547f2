#!/usr/bin/env bash
# Structure checks of every public header, the promises users of a drop-in header rely on:
#   1. declarations compile, included twice, with gcc and clang as C99 and C11 and with g++ and
#      clang++ as C++11 and C++17, under -Wall -Wextra -Wpedantic -Werror;
#   2. the implementation compiles in each of those modes, with the header included before the
#      implementation macro, after it, and again;
#   3. two translation units that only include the header plus one implementation unit link
#      into a program that runs (C, C++, and a C implementation under C++ users);
#   4. every external symbol of an implementation object carries an allowed prefix;
#   5. every header's implementation together in one translation unit.
# Prints one line per check and the closing "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
WARN="-Wall -Wextra -Wpedantic -Werror"

# header | implementation macros (its own first, then its dependencies') | allowed symbol prefixes
# | one public function to call from the link test | libraries its implementation links with
HEADERS=(
  "plugin_registry.h|PLUGIN_REGISTRY_IMPLEMENTATION|plg_|plg_version"
  "plugin_isolation.h|PLUGIN_ISOLATION_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|plgiso_ plg_|plgiso_version"
  "persistence.h|PERSISTENCE_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|pers_ plg_|pers_version"
  "backends/sqlite.h|PERSISTENCE_SQLITE_IMPLEMENTATION PERSISTENCE_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|pers_ plg_|pers_sqlite_register|-lsqlite3"
  "backends/redis.h|PERSISTENCE_REDIS_IMPLEMENTATION PERSISTENCE_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|pers_ plg_|pers_redis_register|-lhiredis"
  "backends/memory.h|PERSISTENCE_MEMORY_IMPLEMENTATION PERSISTENCE_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|pers_ plg_|pers_memory_register"
  "tests/contract/plugin_contract.h|PLUGIN_CONTRACT_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|plg_|plg_contract_run"
  "tests/contract/persistence_contract.h|PERSISTENCE_CONTRACT_IMPLEMENTATION PERSISTENCE_MEMORY_IMPLEMENTATION PERSISTENCE_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|pers_ plg_|pers_contract_run"
  "examples/plugins/greeter.h|GREETER_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|greeter_ plg_|greeter_register"
  "examples/plugins/counter.h|COUNTER_IMPLEMENTATION PLUGIN_REGISTRY_IMPLEMENTATION|counter_ plg_|counter_register"
)

COMPILERS=(
  "gcc -std=c99 -x c" "gcc -std=c11 -x c" "clang -std=c99 -x c" "clang -std=c11 -x c"
  "g++ -std=c++11 -x c++" "g++ -std=c++17 -x c++" "clang++ -std=c++11 -x c++" "clang++ -std=c++17 -x c++"
)

check() { # name, command...
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then
    pass=$((pass + 1)); echo "ok $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/out" | head -n 30
  fi
}

defines_for() { local m; for m in $1; do echo "#define $m"; done; }

# A header whose library is missing is skipped loudly, except in CI, where it must be there.
lib_present() { # -lfoo ...
  local l
  for l in "$@"; do
    echo 'int main(void) { return 0; }' | gcc -x c - -o /dev/null "$l" >/dev/null 2>&1 || return 1
  done
}

all_macros=""
all_libs=""
included=()
for entry in "${HEADERS[@]}"; do
  IFS='|' read -r header macros prefixes fn libs <<<"$entry"
  if [ -n "$libs" ] && ! lib_present $libs; then
    if [ "${CI:-}" = "true" ]; then
      fail=$((fail + 1)); echo "FAIL $header: its libraries ($libs) are missing in CI"
    else
      echo "*** SKIPPED: $header: its libraries ($libs) are not installed ***"
    fi
    continue
  fi
  all_libs="$all_libs $libs"
  included+=("$header")
  all_macros="$all_macros $macros"
  tag=$(echo "$header" | tr '/.' '__')

  printf '#include "%s"\n#include "%s"\nint main(void) { return 0; }\n' "$header" "$header" >"$tmp/$tag-decl.c"
  { printf '#include "%s"\n' "$header"; defines_for "$macros"
    printf '#include "%s"\n#include "%s"\nint main(void) { (void)&%s; return 0; }\n' \
      "$header" "$header" "$fn"; } >"$tmp/$tag-impl.c"
  for cc in "${COMPILERS[@]}"; do
    label=$(echo "$cc" | cut -d' ' -f1-2)
    check "$header declarations, included twice ($label)" $cc $WARN -I"$root" -c "$tmp/$tag-decl.c" -o "$tmp/o"
    check "$header implementation, before and after the macro, links ($label)" $cc $WARN -I"$root" "$tmp/$tag-impl.c" -o "$tmp/impl-prog" -pthread -lm $libs
  done

  # Link: two user TUs, one implementation TU.
  for n in 1 2; do
    printf '#include "%s"\ntypedef void (*any_fn)(void);\nany_fn user_tu%s(void);\nany_fn user_tu%s(void) { return (any_fn)&%s; }\n' \
      "$header" "$n" "$n" "$fn" >"$tmp/$tag-tu$n.c"
  done
  printf 'typedef void (*any_fn)(void);\nany_fn user_tu1(void);\nany_fn user_tu2(void);\nint main(void) { return user_tu1() == user_tu2() ? 0 : 1; }\n' >"$tmp/$tag-main.c"
  { defines_for "$macros"; printf '#include "%s"\n' "$header"; } >"$tmp/$tag-implonly.c"
  link_c() { # compiler for users, compiler for the implementation, linker
    local ucc=$1 icc=$2 ld=$3 f
    for f in tu1 tu2; do $ucc $WARN -I"$root" -c "$tmp/$tag-$f.c" -o "$tmp/$tag-$f.o" || return 1; done
    $ucc $WARN -I"$root" -c "$tmp/$tag-main.c" -o "$tmp/$tag-main.o" || return 1
    $icc $WARN -I"$root" -c "$tmp/$tag-implonly.c" -o "$tmp/$tag-implonly.o" || return 1
    $ld "$tmp/$tag-tu1.o" "$tmp/$tag-tu2.o" "$tmp/$tag-main.o" "$tmp/$tag-implonly.o" -o "$tmp/$tag-prog" -pthread -lm $libs || return 1
    "$tmp/$tag-prog"
  }
  export -f link_c 2>/dev/null
  check "$header two user TUs + implementation TU link and run (C99)" link_c "gcc -std=c99 -x c" "gcc -std=c99 -x c" gcc
  check "$header two user TUs + implementation TU link and run (C++17)" link_c "g++ -std=c++17 -x c++" "g++ -std=c++17 -x c++" g++
  check "$header C implementation linked under C++ users (clang)" link_c "clang++ -std=c++11 -x c++" "clang -std=c99 -x c" clang++

  symbols() {
    gcc -std=c99 $WARN -I"$root" -c "$tmp/$tag-implonly.c" -o "$tmp/$tag-sym.o" || return 1
    local bad
    bad=$(nm --defined-only --extern-only "$tmp/$tag-sym.o" | awk '{print $3}' | \
          grep -Ev "^($(echo "$prefixes" | sed 's/ /|/g'))" || true)
    if [ -n "$bad" ]; then echo "external symbols without an allowed prefix ($prefixes):"; echo "$bad"; return 1; fi
  }
  check "$header exports only prefixed symbols ($prefixes)" symbols
done

# Every implementation in one translation unit (each macro once).
{ for m in $(echo "$all_macros" | tr ' ' '\n' | awk 'NF && !seen[$0]++'); do echo "#define $m"; done
  for h in "${included[@]}"; do echo "#include \"$h\""; done
  echo 'int main(void) { return 0; }'; } >"$tmp/all.c"
for cc in "gcc -std=c99 -x c" "clang++ -std=c++17 -x c++"; do
  check "every implementation in one TU ($(echo "$cc" | cut -d' ' -f1-2))" $cc $WARN -I"$root" "$tmp/all.c" -o "$tmp/all" -pthread -lm $all_libs
done

echo
echo "check-headers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
