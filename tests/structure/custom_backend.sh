#!/usr/bin/env bash
# examples/custom_backend, a persistence backend written outside the library (scaffolded with
# gen/scaffold.py, then filled in): the generator still makes what the example started from, the
# example builds as C99 and as C++11 under -Wall -Wextra -Wpedantic -Werror, passes every case of
# the persistence contract suite (none NOT SUPPORTED), and its application program runs.
# The last line, "custom_backend: N passed, N failed", adds the contract cases of main.c to this
# script's own checks. CUSTOM_BACKEND_SANITIZE=1 also runs main.c under ASan + UBSan and TSan.
set -u
cd "$(dirname "$0")/../.."
ex=examples/custom_backend
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
flags=(-Wall -Wextra -Wpedantic -Werror -I. "-I$ex")
build_c() { gcc -std=c99 "${flags[@]}" "$@" -pthread -lm; }
build_cxx() { g++ -x c++ -std=c++11 "${flags[@]}" "$@" -pthread -lm; }

# 1. The generator. The example started as `python3 gen/scaffold.py backend tinyqueue --out
#    examples/custom_backend` (README.md there); its test program was kept as generated.
if python3 -c 'import jinja2' 2>/dev/null; then
  fresh="$tmp/fresh"
  python3 gen/scaffold.py backend tinyqueue --out "$fresh" >"$tmp/gen.log" 2>&1 &&
    [ -f "$fresh/backends/tinyqueue.h" ] && [ -f "$fresh/tests/test_tinyqueue_backend.c" ]
  result $? "the generator writes backends/tinyqueue.h and tests/test_tinyqueue_backend.c"
  if gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -I. "-I$fresh" \
      "$fresh/tests/test_tinyqueue_backend.c" -o "$tmp/skeleton" -pthread -lm \
      2>"$tmp/skel.log"; then
    "$tmp/skeleton" PC- >"$tmp/skel.out" 2>&1
    result $? "a fresh skeleton compiles and passes the plugin contract (PC- cases)"
  else
    cat "$tmp/skel.log"
    result 1 "a fresh skeleton compiles (C99, -Werror)"
  fi
  # In place and without writing: the test program is byte-identical to today's output.
  python3 gen/scaffold.py backend tinyqueue --out "$ex" --dry-run >"$tmp/dry.out" 2>&1
  grep -q "tests/test_tinyqueue_backend.c *unchanged (identical)" "$tmp/dry.out"
  result $? "$ex/tests/test_tinyqueue_backend.c is what the generator writes today (else: \
regenerate it with --force and merge backends/tinyqueue.h from a scratch copy)"
  # The filled-in header covers every vtable member the generator knows today.
  grep -o 'TINYQUEUEI_SAME_TYPE_([a-z_]*)' "$fresh/backends/tinyqueue.h" >"$tmp/want"
  grep -o 'TINYQUEUEI_SAME_TYPE_([a-z_]*)' "$ex/backends/tinyqueue.h" >"$tmp/have"
  if diff "$tmp/want" "$tmp/have" >"$tmp/members.diff"; then
    result 0 "backends/tinyqueue.h has every vtable member of persistence.h"
  else
    sed 's/^/    /' "$tmp/members.diff"
    result 1 "backends/tinyqueue.h has every vtable member of persistence.h (< missing, > gone)"
  fi
else
  result 1 "python3 with jinja2 for gen/scaffold.py (apt-get install python3-jinja2)"
fi

# 2. Builds: C99 and C++11.
for src in main app tests/test_tinyqueue_backend; do
  name=$(basename "$src")
  build_c "$ex/$src.c" -o "$tmp/$name" 2>"$tmp/$name.log"
  rc=$?; [ $rc -ne 0 ] && cat "$tmp/$name.log"
  result $rc "$ex/$src.c builds as C99"
  build_cxx "$ex/$src.c" -o "$tmp/$name-cxx" 2>"$tmp/$name-cxx.log"
  rc=$?; [ $rc -ne 0 ] && cat "$tmp/$name-cxx.log"
  result $rc "$ex/$src.c builds as C++11"
done

# 3. The contract program: every case, none NOT SUPPORTED. Its closing line is folded into ours.
cases_pass=0 cases_fail=0
run_contract() { # label program
  local out="$tmp/contract-$1.out" rc line
  "$2" >"$out" 2>&1
  rc=$?
  line=$(grep -E '^custom_backend: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -z "$line" ]; then
    tail -n 20 "$out"
    result 1 "the contract program ($1) ends with its summary line (exit $rc)"
    return
  fi
  grep -E '^(FAIL|NOT SUPPORTED) ' "$out"
  # The suite's summary, reworded so that ours stays the only "N passed, N failed" line.
  grep -E '^persistence contract tinyqueue: [0-9]+ passed' "$out" |
    sed "s/^/  $1: /; s/, \([0-9]*\) failed/ (\1 failing)/"
  if [ "$1" = C ]; then
    cases_pass=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    cases_fail=$(echo "$line" | sed -E 's/.*, ([0-9]+) failed.*/\1/')
  fi
  ! grep -q '^NOT SUPPORTED ' "$out" && [ $rc -eq 0 ]
  result $? "the contract program ($1) passes every case, none NOT SUPPORTED, exit 0"
}
[ -x "$tmp/main" ] && run_contract C "$tmp/main"
[ -x "$tmp/main-cxx" ] && run_contract C++ "$tmp/main-cxx"
if [ -x "$tmp/test_tinyqueue_backend" ]; then
  "$tmp/test_tinyqueue_backend" >"$tmp/scaffold-test.out" 2>&1
  result $? "the generated test program (plugin and persistence contracts) passes"
fi

# 4. The application program.
if [ -x "$tmp/app" ]; then
  out=$("$tmp/app" 2>&1); rc=$?
  [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -qx 'opened provider "tinyqueue"' &&
    printf '%s\n' "$out" | grep -q ': a duplicate, the first task stands' &&
    printf '%s\n' "$out" | grep -qx 'claimed "password reset for bob" (attempt 2)' &&
    printf '%s\n' "$out" | grep -qx 'stats: 0 ready, 0 leased, 3 completed, 0 dead'
  result $? "app opens tinyqueue by name, enqueues, claims by priority, retries, completes"
  out=$("$tmp/app" nosuch 2>&1); rc=$?
  [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'registered: tinyqueue'
  result $? "app with an unknown provider fails and names the registered one"
fi

# 5. Optional: the contract program under the sanitizers.
if [ "${CUSTOM_BACKEND_SANITIZE:-0}" = 1 ]; then
  if build_c -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
      -fno-sanitize-recover=undefined "$ex/main.c" -o "$tmp/main-asan" 2>"$tmp/asan.log"; then
    ASAN_OPTIONS=detect_leaks=1 "$tmp/main-asan" >"$tmp/asan.out" 2>&1
    rc=$?; [ $rc -ne 0 ] && tail -n 30 "$tmp/asan.out"
    result $rc "the contract program under ASan + UBSan"
  else
    cat "$tmp/asan.log"; result 1 "main.c builds with -fsanitize=address,undefined"
  fi
  if build_c -g -O1 -fsanitize=thread "$ex/main.c" -o "$tmp/main-tsan" 2>"$tmp/tsan.log"; then
    TSAN_OPTIONS=halt_on_error=1 "$tmp/main-tsan" >"$tmp/tsan.out" 2>&1
    rc=$?; [ $rc -ne 0 ] && tail -n 30 "$tmp/tsan.out"
    result $rc "the contract program under TSan"
  else
    cat "$tmp/tsan.log"; result 1 "main.c builds with -fsanitize=thread"
  fi
fi

echo "custom_backend: $((pass + cases_pass)) passed, $((fail + cases_fail)) failed"
[ $((fail + cases_fail)) -eq 0 ]
