#!/usr/bin/env bash
# Runs test programs and adds up their closing lines ("<name>: N passed, N failed") into one
# line for the whole suite. A program that ends without that line, or that fails with every case
# passed (a crash, a sanitizer report), counts as one failed case.
# Usage: tests/run.sh [--label NAME] PROGRAM [ARGS...] [--next PROGRAM [ARGS...]]...
set -u
total_pass=0
total_fail=0
run_one() {
    local out rc line p f
    out=$(mktemp)
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E ': [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "FAIL $1: ended (exit $rc) without a summary line"
        total_fail=$((total_fail + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $1: exit status $rc although every case passed"
        total_fail=$((total_fail + 1))
    fi
}
cmd=()
for arg in "$@"; do
    if [ "$arg" = "--next" ]; then
        [ ${#cmd[@]} -gt 0 ] && run_one "${cmd[@]}"
        cmd=()
    else
        cmd+=("$arg")
    fi
done
[ ${#cmd[@]} -gt 0 ] && run_one "${cmd[@]}"
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
