#!/bin/sh
# demo.sh - the scenario `make demo` runs with taskq: a few hundred tasks over two tenants,
# several `taskq work` processes in parallel sharing one SQLite file, a job that sometimes fails
# (examples/taskq/demo_job.sh), then results, stats, dead letters and a summary.
#
#   usage: examples/taskq/demo.sh PATH/TO/taskq
#
# Without SQLite compiled into taskq there is no store that separate processes can share, so
# it says so loudly and runs `taskq demo`, the same scenario inside one process on the memory
# backend. Only POSIX sh, date, mktemp, grep, awk and wc are needed.
set -u
taskq=${1:?usage: demo.sh PATH/TO/taskq}
here=$(cd "$(dirname "$0")" && pwd)
job="$here/demo_job.sh"

if ! "$taskq" providers | grep -qx sqlite; then
    cat <<'EOF'
**************************************************************************************
*** SQLite is not available, so this demo runs on the MEMORY backend, inside ONE     ***
*** process: nothing it stores survives the process. The durable default, with       ***
*** workers in separate processes sharing one queue, needs SQLite:                   ***
***                                                                                  ***
***         apt-get install libsqlite3-dev          then run make demo again         ***
**************************************************************************************
EOF
    exec "$taskq" demo -- sh "$job"
fi

now_ms() {
    t=$(date +%s%N 2>/dev/null)
    case $t in
    '' | *N) echo $(($(date +%s) * 1000)) ;; # no %N (BSD date): whole seconds
    *) echo $((t / 1000000)) ;;
    esac
}

# lines PREFIX COUNT: the payloads, one per line; every tenth fails once, one in 37 always.
lines() {
    i=0
    while [ "$i" -lt "$2" ]; do
        extra=
        if [ $((i % 37)) -eq 17 ]; then
            extra=" always-fails"
        elif [ $((i % 10)) -eq 3 ]; then
            extra=" fails-once"
        fi
        printf '%s-%04d%s\n' "$1" "$i" "$extra"
        i=$((i + 1))
    done
}

indent() { sed 's/^/   /'; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/taskq-demo.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# The default store: no provider and no configuration set, a directory for the SQLite file.
unset PERSISTENCE_PROVIDER PERSISTENCE_CONFIG
PERSISTENCE_DIR=$tmp
DEMO_LOG=$tmp/runs.log
export PERSISTENCE_DIR DEMO_LOG
: >"$DEMO_LOG"
started=$(now_ms)

echo "taskq demo: separate processes sharing one SQLite file, the default store"
echo "   PERSISTENCE_DIR=$tmp (so the file is $tmp/persistence.sqlite)"

echo "1. enqueue 200 tasks for tenant acme (queue thumbnails) and 100 for tenant globex"
echo "   (queue reports) from standard input, in batches; at most 3 attempts each"
lines photo 200 | "$taskq" enqueue thumbnails - --tenant acme --max-attempts 3 --key import-1 \
    >"$tmp/acme.ids" || exit 1
lines report 100 | "$taskq" enqueue reports - --tenant globex --max-attempts 3 --key import-1 \
    >"$tmp/globex.ids" || exit 1
echo "   $(wc -l <"$tmp/acme.ids" | tr -d ' ') + $(wc -l <"$tmp/globex.ids" | tr -d ' ') ids," \
    "the first $(head -n 1 "$tmp/acme.ids")"
again=$(lines report 100 | "$taskq" enqueue reports - --tenant globex --max-attempts 3 \
    --key import-1 | grep -c ' duplicate$')
echo "   the same input again (idempotency keys import-1.LINE): $again duplicates, nothing added"

echo "2. four worker processes, two per tenant with two threads each, run demo_job.sh per task"
echo "   (backoff 20..200 ms between attempts; each exits when its queue is idle)"
pids=
for spec in acme:thumbnails acme:thumbnails globex:reports globex:reports; do
    "$taskq" work "${spec#*:}" --tenant "${spec%%:*}" --workers 2 --exit-when-idle \
        --backoff-base 20ms --backoff-max 200ms --poll-max 200ms -- sh "$job" \
        2>>"$tmp/workers.log" &
    pids="$pids $!"
done
status=0
for pid in $pids; do
    wait "$pid" || status=1
done
grep -E ' completed, ' "$tmp/workers.log" | indent
echo "   and $(grep -c 'retry in' "$tmp/workers.log") retries," \
    "$(grep -c '; dead$' "$tmp/workers.log") deaths logged, e.g.:"
grep -m 1 'retry in' "$tmp/workers.log" | indent
grep -m 1 '; dead$' "$tmp/workers.log" | indent

echo "3. results: taskq result ID --tenant acme, for a task, a retried task and a dead one"
for line in 1 4 18; do
    "$taskq" result "$(sed -n "${line}p" "$tmp/acme.ids")" --tenant acme | indent
    echo
done

echo "4. taskq stats"
"$taskq" stats thumbnails --tenant acme | indent
"$taskq" stats reports --tenant globex | sed 1d | indent

echo "5. taskq dead reports --tenant globex, then --all to requeue them"
"$taskq" dead reports --tenant globex | indent
"$taskq" dead reports --tenant globex --all | indent
"$taskq" stats reports --tenant globex | indent

# Every run of the job is a line "ID ATTEMPT ok|failed" in the log.
elapsed=$(($(now_ms) - started))
awk -v ms="$elapsed" '
    $3 == "ok" { done++; ok[$1]++; if ($2 > 1) retried++ }
    $3 == "failed" && $2 == 3 { dead++ }
    END {
        for (id in ok) if (ok[id] > 1) twice++
        printf "summary: %d tasks done (%d of them on a retry), %d dead, %d run twice; %d.%d s\n",
               done, retried, dead, twice, ms / 1000, (ms % 1000) / 100
    }' "$DEMO_LOG"
if [ "$status" -ne 0 ]; then
    echo "demo.sh: a worker process failed; its log:" >&2
    cat "$tmp/workers.log" >&2
    exit 1
fi
