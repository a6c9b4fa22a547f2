#!/usr/bin/env bash
# examples/taskq: taskq builds as C99 under -Wall -Wextra -Wpedantic -Werror and behaves as its
# --help says, across processes sharing one SQLite file: payloads round-trip byte for byte,
# idempotency keys, priority order, delays, retries with backoff into the dead letters and back,
# two worker processes running each task once, SIGTERM (finish, or abandon after --grace),
# lease extension and lease loss, and one-line errors with exit status 2 or 1.
# Without SQLite only what runs on the memory provider runs, and it says so (in CI: FAIL).
# TASKQ_CFLAGS adds compiler flags (e.g. TASKQ_CFLAGS='-fsanitize=address,undefined').
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
watchdog=
cleanup() {
    local p
    for p in $(jobs -p) $watchdog; do kill -KILL "$p" 2>/dev/null; done # ours, still running
    rm -rf "$tmp"
}
trap cleanup EXIT
# Watchdog for the waits on background workers (wait is interruptible; a bash trap runs then).
trap 'echo "FAIL taskq.sh: still running after 150 s"; echo "taskq: $pass passed, $((fail + 1)) failed"; exit 1' USR1
(for _ in $(seq 1500); do sleep 0.1; done; kill -USR1 $$) &
watchdog=$!
disown $watchdog
pass=0 fail=0
result() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
check() { local what=$1; shift; "$@"; result $? "$what"; }

# --- build -------------------------------------------------------------------------------------
have_sqlite=
if pkg-config --exists sqlite3 2>/dev/null ||
    printf '#include <sqlite3.h>\nint main(void) { return 0; }\n' |
    gcc -x c - -o /dev/null -lsqlite3 >/dev/null 2>&1; then
    have_sqlite=yes
fi
taskq=$tmp/taskq
flags=(-std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -g ${TASKQ_CFLAGS:-})
libs=(-pthread -lm)
[ -n "$have_sqlite" ] && flags+=(-DTASKQ_WITH_SQLITE) && libs+=(-lsqlite3)
if ! gcc "${flags[@]}" examples/taskq/taskq.c -o "$taskq" "${libs[@]}"; then
    result 1 "taskq builds with gcc ${flags[*]}"
    echo "taskq: $pass passed, $fail failed"
    exit 1
fi
result 0 "taskq builds with gcc${have_sqlite:+ and SQLite} under -Wall -Wextra -Wpedantic -Werror"
if command -v clang >/dev/null; then
    clang -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
        ${have_sqlite:+-DTASKQ_WITH_SQLITE} examples/taskq/taskq.c
    result $? "taskq compiles with clang under -Wall -Wextra -Wpedantic -Werror"
fi

# one_error_line STATUS CMD...: CMD exits STATUS with exactly one stderr line, "taskq: ..."
one_error_line() {
    local expected=$1 rc err
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    err=$(cat "$tmp/err")
    [ "$rc" -eq "$expected" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ "${err#taskq: }" != "$err" ] ||
        { echo "   exit $rc (wanted $expected), stderr: $err"; return 1; }
}

# --- help and usage errors (no store needed) ---------------------------------------------------
for sub in enqueue work stats dead result providers demo; do
    "$taskq" "$sub" --help >"$tmp/out" 2>&1 && grep -q "^usage: taskq $sub" "$tmp/out"
    result $? "taskq $sub --help exits 0 with its usage"
done
"$taskq" --help | grep -q PERSISTENCE_DIR && "$taskq" help work | grep -q -- --exit-when-idle
result $? "taskq --help documents the default store; taskq help SUBCOMMAND works"
check "an unknown subcommand is one line and exit 2" one_error_line 2 "$taskq" frobnicate
check "a bad number is one line and exit 2" one_error_line 2 "$taskq" enqueue q x --priority abc
check "a number out of range is one line and exit 2" one_error_line 2 "$taskq" enqueue q x --priority 40000
check "a bad duration is one line and exit 2" one_error_line 2 "$taskq" work q --lease 5x -- true
check "an unknown option is one line and exit 2" one_error_line 2 "$taskq" stats q --frob
check "a bad tenant name is one line and exit 2" one_error_line 2 "$taskq" stats q --tenant 'a b'
check "work without a command is one line and exit 2" one_error_line 2 "$taskq" work q
check "work with a missing command is one line and exit 2" one_error_line 2 "$taskq" work q -- /no/such/cmd
check "an unknown provider is one line and exit 2" one_error_line 2 "$taskq" stats q --provider nosuch
grep -q 'registered: ' "$tmp/err"
result $? "the unknown-provider message lists the registered providers"

# --- memory: the in-process demo -----------------------------------------------------------------
out=$("$taskq" demo --tasks 40 --workers 2 --backoff-base 5ms --backoff-max 20ms 2>&1)
rc=$?
[ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q "^summary: 40 tasks: 39 done (5 of them after a retry), 1 dead, 0 unfinished"
result $? "taskq demo runs the scenario in one process on the memory provider"

if [ -z "$have_sqlite" ]; then
    if [ "${CI:-}" = "true" ]; then
        result 1 "taskq's cross-process tests need SQLite, which CI must install: apt-get install libsqlite3-dev"
    else
        echo "*** SKIPPED: taskq's cross-process tests (SQLite store): libsqlite3-dev not installed; to run them: apt-get install libsqlite3-dev ***"
    fi
    echo "taskq: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi

# --- SQLite: every process below shares $db ----------------------------------------------------
db=$tmp/queue.db
unset PERSISTENCE_PROVIDER PERSISTENCE_DIR
export PERSISTENCE_CONFIG="{\"path\":\"$db\",\"synchronous\":\"NORMAL\"}"
# Foreground runs are bounded, so a hang fails the test instead of stopping it. Background jobs
# call "$taskq" itself: with tq, $! would be a subshell, not taskq.
tq() { timeout -k 5 60 "$taskq" "$@"; }
wait_for_file() { # wait_for_file FILE SECONDS
    local i
    for ((i = 0; i < $2 * 20; i++)); do [ -e "$1" ] && return 0; sleep 0.05; done
    return 1
}
field() { tq result "$1" | sed -n "s/^$2: //p"; } # field ID NAME: a line of taskq result

mkdir -p "$tmp/explicit-dir"
check "an explicit --provider sqlite without a config uses the default file too" \
    bash -c 'env -u PERSISTENCE_CONFIG PERSISTENCE_DIR="$1" "$2" enqueue q x --provider sqlite \
             >/dev/null && [ -f "$1/persistence.sqlite" ]' _ "$tmp/explicit-dir" "$taskq"
PERSISTENCE_DIR=$tmp/default-dir && mkdir -p "$PERSISTENCE_DIR" &&
    env -u PERSISTENCE_CONFIG PERSISTENCE_DIR="$PERSISTENCE_DIR" "$taskq" enqueue q x >/dev/null &&
    [ -f "$PERSISTENCE_DIR/persistence.sqlite" ]
result $? "with nothing configured, the store is persistence.sqlite in \$PERSISTENCE_DIR"
unset PERSISTENCE_DIR

# Payloads are bytes: NUL, high bytes, no trailing newline.
{ printf 'head\0mid\n\001\377'; head -c 2000 /dev/urandom; printf 'tail'; } >"$tmp/payload.bin"
id=$(tq enqueue bin --file "$tmp/payload.bin") &&
    tq work bin --exit-when-idle -q -- cat &&
    tq result "$id" --raw >"$tmp/back.bin" && cmp -s "$tmp/payload.bin" "$tmp/back.bin" &&
    [ "$(field "$id" state)" = completed ]
result $? "a binary payload goes through enqueue --file, a command and result --raw unchanged"
grep -q '\\x00' <(tq result "$id")
result $? "result shows binary bytes escaped"

a=$(tq enqueue idem one --key order-17) && b=$(tq enqueue idem two --key order-17) &&
    c=$(tq enqueue other one --key order-17) &&
    [ "$b" = "$a duplicate" ] && [ "${c% duplicate}" = "$c" ] && [ "$c" != "$a" ]
result $? "an idempotency key gives the same id and \"duplicate\" (per queue)"
tq enqueue idem x --id fixed-1 >/dev/null
check "a task id already taken is one line and exit 2" one_error_line 2 "$taskq" enqueue idem y --id fixed-1
printf 'l1\nl2\n\nl3\n' | tq enqueue lines - --key imp >"$tmp/ids1" &&
    printf 'l1\nl2\n\nl3\n' | tq enqueue lines --stdin --key imp >"$tmp/ids2" &&
    [ "$(wc -l <"$tmp/ids1")" -eq 3 ] && [ "$(grep -c ' duplicate$' "$tmp/ids2")" -eq 3 ] &&
    [ "$(cut -d' ' -f1 "$tmp/ids2")" = "$(cat "$tmp/ids1")" ]
result $? "enqueue --stdin: one task per non-empty line; the same input again is all duplicates"

# Priority: the highest number first, then the order of enqueue.
tq enqueue prio low >/dev/null && tq enqueue prio high --priority 5 >/dev/null &&
    tq enqueue prio mid --priority 2 >/dev/null && tq enqueue prio low2 >/dev/null &&
    tq work prio --exit-when-idle -q -- sh -c 'cat >>"$0"; echo >>"$0"' "$tmp/prio.log" &&
    [ "$(tr '\n' ' ' <"$tmp/prio.log")" = "high mid low low2 " ]
result $? "tasks run by priority, then in enqueue order"

# A delayed task is not claimed before it is due; a worker waits for it when it is due soon.
start=$(date +%s%N)
late=$(tq enqueue delay later --delay 1200ms) && tq enqueue delay now >/dev/null &&
    tq work delay --exit-when-idle --idle-horizon 0 -q -- sh -c 'cat >>"$0"; echo >>"$0"' "$tmp/delay.log" &&
    [ "$(cat "$tmp/delay.log")" = now ] && [ "$(field "$late" state)" = scheduled ] &&
    tq work delay --exit-when-idle -q -- sh -c 'cat >>"$0"; echo >>"$0"' "$tmp/delay.log" &&
    [ "$(tr '\n' ' ' <"$tmp/delay.log")" = "now later " ] &&
    [ $((($(date +%s%N) - start) / 1000000)) -ge 1200 ]
result $? "a delayed task waits for its time (not claimed early, then run once due)"

# Failures: nack with backoff, dead at max attempts, listed, requeued, then done.
dead_id=$(tq enqueue fails payload --max-attempts 3)
tq work fails --exit-when-idle --backoff-base 100ms --backoff-max 400ms -- \
    sh -c 'date +%s%N >>"$0"; echo "attempt $TASKQ_ATTEMPT" >&2; exit 7' "$tmp/fails.log" \
    2>"$tmp/fails.err"
[ "$(wc -l <"$tmp/fails.log")" -eq 3 ] &&
    awk 'NR > 1 { gap = ($1 - prev) / 1000000; if (gap < (NR == 2 ? 50 : 100)) bad = 1 }
         { prev = $1 } END { exit bad }' "$tmp/fails.log" &&
    grep -q 'attempt 1 of 3): exit status 7; retry in' "$tmp/fails.err"
result $? "a failing command is retried after a backoff (>= d/2: 50 ms, then 100 ms)"
[ "$(field "$dead_id" state)" = dead ] && [ "$(field "$dead_id" 'last error')" = "exit status 7" ] &&
    tq dead fails | grep -q "^$dead_id  *3 .*exit status 7$"
result $? "after max attempts the task is dead with its reason, and taskq dead lists it"
tq dead fails --requeue "$dead_id" | grep -q "^requeued $dead_id" &&
    [ "$(field "$dead_id" state)" = ready ] &&
    tq work fails --exit-when-idle -q -- true && [ "$(field "$dead_id" state)" = completed ] &&
    tq dead fails | grep -q '^no dead tasks'
result $? "dead --requeue ID puts it back and it can then complete"
for i in 1 2 3; do tq enqueue fails2 "x$i" --max-attempts 1 >/dev/null; done
tq work fails2 --exit-when-idle -q -- false &&
    tq dead fails2 --all | grep -q '^requeued 3 task(s)' &&
    tq stats fails2 | awk 'NR == 2 { exit !($3 == 3 && $8 == 0) }'
result $? "dead --all requeues every dead task of the queue"
fid=$(tq enqueue fails3 x) &&
    tq work fails3 --exit-when-idle --fail-exit 9 -q -- sh -c 'echo bad input; exit 9' &&
    [ "$(field "$fid" state)" = failed ] &&
    tq result "$fid" | grep -q '^bad input'
result $? "--fail-exit N fails the task for good, its output stored as the error"

# Two worker processes in parallel run every task exactly once.
seq 1 80 | tq enqueue par - >/dev/null
par_pids=()
for w in A B; do
    "$taskq" work par --workers 2 --exit-when-idle --worker-id "w$w" -- \
        sh -c 'echo "$TASKQ_TASK_ID" >>"$0"; sleep 0.01; cat' "$tmp/par.log" 2>"$tmp/par$w.err" &
    par_pids+=($!)
done
wait "${par_pids[@]}"
runs=$(wc -l <"$tmp/par.log") uniq_runs=$(sort -u "$tmp/par.log" | wc -l)
done_a=$(sed -n 's/.*: \([0-9]*\) completed.*/\1/p' "$tmp/parA.err")
done_b=$(sed -n 's/.*: \([0-9]*\) completed.*/\1/p' "$tmp/parB.err")
[ "$runs" -eq 80 ] && [ "$uniq_runs" -eq 80 ] && [ $((done_a + done_b)) -eq 80 ] &&
    tq stats par | awk 'NR == 2 { exit !($6 == 80) }'
result $? "two worker processes run each of 80 tasks exactly once (A: $done_a, B: $done_b)"

# SIGTERM while a command runs: it finishes and its task completes; exit 0.
sid=$(tq enqueue term x)
"$taskq" work term -- sh -c 'touch "$0"; sleep 1; echo finished' "$tmp/term.started" 2>"$tmp/term.err" &
pid=$!
wait_for_file "$tmp/term.started" 5 && kill -TERM $pid && wait $pid &&
    [ "$(field "$sid" state)" = completed ] && [ "$(tq result "$sid" --raw)" = finished ] &&
    grep -q 'stopping' "$tmp/term.err"
result $? "SIGTERM lets the running command finish, completes its task and exits 0"

# ... with a short --grace: the command is killed and the task is ready again.
gid=$(tq enqueue grace x)
"$taskq" work grace --grace 200ms -- sh -c 'touch "$0"; sleep 30' "$tmp/grace.started" 2>"$tmp/grace.err" &
pid=$!
t0=$(date +%s)
wait_for_file "$tmp/grace.started" 5 && kill -TERM $pid && wait $pid &&
    [ $(($(date +%s) - t0)) -lt 5 ] && [ "$(field "$gid" state)" = ready ] &&
    [ "$(field "$gid" attempts)" = "0 of 5" ]
result $? "SIGTERM with --grace 200ms kills the command and gives the task back (ready, attempt not counted)"

# Lease extension: a command three times longer than the lease keeps its task.
lid=$(tq enqueue lease x)
"$taskq" work lease --lease 300ms --max-tasks 1 --worker-id first -- \
    sh -c 'touch "$0"; sleep 1; echo "by $TASKQ_WORKER_ID"' "$tmp/lease.started" 2>/dev/null &
first=$!
wait_for_file "$tmp/lease.started" 5
"$taskq" work lease --lease 300ms --worker-id second -- sh -c 'echo second' 2>"$tmp/second.err" &
second=$!
wait $first
kill -TERM $second && wait $second
[ "$(tq result "$lid" --raw)" = "by first" ] && [ "$(field "$lid" attempts)" = 1 ] &&
    grep -q ': 0 completed' "$tmp/second.err"
result $? "a command running past its lease (300 ms lease, 1 s command) keeps the task: lease extended"

# Lease lost: the worker is frozen past its lease, another takes the task; the first one's
# command is killed when its next extension reports LEASE_LOST.
xid=$(tq enqueue lost x)
"$taskq" work lost --lease 300ms --max-tasks 1 --worker-id frozen -- \
    sh -c 'touch "$0"; sleep 2; echo frozen' "$tmp/lost.started" 2>"$tmp/frozen.err" &
frozen=$!
wait_for_file "$tmp/lost.started" 5 && kill -STOP $frozen
sleep 0.5
timeout 20 "$taskq" work lost --lease 5s --max-tasks 1 --worker-id thawed -q -- sh -c 'echo thawed'
kill -CONT $frozen
wait $frozen
[ "$(tq result "$xid" --raw)" = thawed ] && [ "$(field "$xid" attempts)" = 2 ] &&
    grep -q 'lease lost' "$tmp/frozen.err"
result $? "a worker that lost its lease kills its command and cannot overwrite the new holder's result"

# Store errors at run time: one line, exit 1.
check "result of an unknown task is one line and exit 1" one_error_line 1 "$taskq" result no-such-task
check "result --raw of an unfinished task is one line and exit 1" one_error_line 1 "$taskq" result "$gid" --raw
tq stats nobody-used-this | awk 'NR == 2 { exit !($3 == 0 && $8 == 0) }'
result $? "stats of an unused queue shows zeros"

echo "taskq: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
