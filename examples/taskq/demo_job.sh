#!/bin/sh
# demo_job.sh - the job `make demo` has taskq run once per task. taskq gives it the payload on
# standard input and TASKQ_TASK_ID, TASKQ_TENANT, TASKQ_QUEUE and TASKQ_ATTEMPT in the
# environment; what it prints is the task's result when it exits 0. Any other exit status is a
# failure that taskq retries with backoff until the task's attempts run out (then it is dead).
#
#   a payload containing "always-fails"  fails every time: the task ends in the dead letters
#   a payload containing "fails-once"    fails on attempt 1 and succeeds on the retry
#   anything else                        succeeds at once
#
# With DEMO_LOG set, each run appends "TASK_ID ATTEMPT ok|failed" to that file (the demo counts
# retries from it; one short line per write, so parallel workers never interleave).
payload=$(cat)
outcome=ok
case "$payload" in
*always-fails*) outcome=failed ;;
*fails-once*) if [ "${TASKQ_ATTEMPT:-1}" -lt 2 ]; then outcome=failed; fi ;;
esac
if [ -n "${DEMO_LOG:-}" ]; then
    echo "$TASKQ_TASK_ID $TASKQ_ATTEMPT $outcome" >>"$DEMO_LOG"
fi
if [ "$outcome" = failed ]; then
    exit 3
fi
printf 'done: %s (tenant %s, attempt %s)\n' "$payload" "$TASKQ_TENANT" "$TASKQ_ATTEMPT"
