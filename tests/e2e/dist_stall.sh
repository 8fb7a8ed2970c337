#!/bin/sh
# End-to-end tests of a job that can never hang, under mpirun -np 2:
#   - a rank stopped with SIGSTOP in the middle of training, with
#     --stall-timeout 8: the job ends non-zero within the timeout + 30 s, and
#     rank 0 prints one "stall:" line naming the phase it waits in (a step's
#     gradient allreduce or its loss sums) and rank 1 as not heard from.
#     While it waits (measured 2-5 s after the stop), rank 0 uses under
#     20% of a core (its threads sleep between tests of pending requests). It also got one SIGTERM,
#     which it cannot act on: the stall timeout covers that.
#   - the same with rank 1 stopped while validating: the phase is
#     "validation after step 4";
#   - a stop signal that cannot be acted on (rank 0 waits for the stopped
#     rank 1, --stall-timeout 600): a second SIGTERM to rank 0, or SIGUSR1
#     to mpirun, 5 s or more after the first, ends rank 0 at once with exit
#     4 (3) and the job with it; a repeat within 5 s changes nothing.
# The stopped rank is continued and killed whatever happens.
. tests/e2e/lib/common.sh
e2e_setup dist-stall
. tests/e2e/lib/ranks.sh
TIMEOUT=8
LIMIT=$((TIMEOUT + 30))
MPI2="mpirun -np 2 --oversubscribe"
RUN="$BIN --arch resnet20 --stem small --batch-size 12 --lr 0.05 --checkpoint-every 0"

# 20 steps per epoch; a validation split that takes a few seconds
fixture data.h5 --train 240 --val 12
fixture bigval.h5 --train 48 --val 2000

# start LOG PATTERN -- command...: runs the job in the background until LOG
# matches PATTERN; sets pid (mpirun), rank0 and rank1 (their PIDs).
start() {
    log=$1 pattern=$2
    shift 3
    "$@" >"$log" 2>&1 &
    pid=$!
    rank0="" rank1=""
    if wait_for "$pattern" "$log" 120; then
        rank0=$(rank_pid "$pid" 0)
        rank1=$(rank_pid "$pid" 1)
    fi
    [ -n "$rank0" ] && [ -n "$rank1" ] && return 0
    bad "no '$pattern' in $log, or the ranks of mpirun $pid not found"; show "$log"
    exits_within "$pid" 0
    return 1
}

# finish: waits (bounded) for the job; sets code, 124 if it had to be killed
finish() {
    if exits_within "$pid" "$LIMIT"; then
        wait "$pid"
        code=$?
    else
        code=124
    fi
    kill -CONT "$rank1" 2>/dev/null
    kill -KILL "$rank1" 2>/dev/null
}

# stall_case NAME LOG WHEN PHASE -- command...: SIGSTOP rank 1 once LOG
# matches WHEN, then expect the stall line of rank 0 naming PHASE.
stall_case() {
    name=$1 log=$2 when=$3 phase=$4
    shift 5
    start "$log" "$when" -- "$@" || return
    kill -STOP "$rank1"
    kill -TERM "$rank0" # a stop request rank 0 cannot act on while it waits
    sleep 2 # rank 0 may still be computing its share of the validation
    before=$(cpu_ticks "$rank0")
    sleep 3
    after=$(cpu_ticks "$rank0")
    finish
    line=$(grep '^\[rank 0\] stall: ' "$log")
    used=$(((${after:-0} - ${before:-0}) * 100 / $(getconf CLK_TCK) / 3))
    if [ "$code" -eq 0 ] || [ "$code" -eq 124 ]; then
        bad "$name: exit $code (124: still running after $LIMIT s)"; show "$log"
    elif ! echo "$line" | grep -q -- "stall: no progress for [0-9]* s in $phase;"; then
        bad "$name: no '[rank 0] stall: ... in $phase' line"; show "$log"
    elif ! echo "$line" | grep -q -- "not heard from for [0-9.]* s or more: rank 1;"; then
        bad "$name: the stall line does not name rank 1 as silent: $line"
    elif [ -z "$before" ] || [ -z "$after" ] || [ "$used" -ge 20 ]; then
        bad "$name: rank 0 used ${used}% of a core while waiting (ticks $before -> $after)"
    else
        ok "$name: exit $code, rank 0 used ${used}% of a core while waiting: $line"
    fi
}

stall_case "SIGSTOP of rank 1 while training" "$T/train.log" "step 10/2000:" \
    "step [0-9]* (\(gradient allreduce\|loss and signal sums\))" -- \
    $MPI2 $RUN --data "$T/data.h5" --epochs 100 --log-every 10 --val-every 1000 \
    --stall-timeout "$TIMEOUT"
# --log-every 4: the line of step 4 is printed just before both ranks validate
stall_case "SIGSTOP of rank 1 while validating" "$T/val.log" "step 4/400:" \
    "validation after step 4" -- \
    $MPI2 $RUN --data "$T/bigval.h5" --epochs 100 --log-every 4 --stall-timeout "$TIMEOUT"

# twice WHO SIG CODE: SIG to WHO (rank0 or mpirun) while rank 0 waits for the
# stopped rank 1: a repeat 1 s after the first is the same request
# delivered twice and changes nothing; one 6 s after the first ends rank 0
# at once with CODE (mpirun forwards SIGUSR1 to the ranks).
twice() {
    name="second SIG$2 to $1 while rank 0 waits for a stopped rank"
    start "$T/twice-$1.log" "step 10/2000:" -- \
        $MPI2 $RUN --data "$T/data.h5" --epochs 100 --log-every 10 --val-every 1000 \
        --stall-timeout 600 || return
    [ "$1" = mpirun ] && target=$pid || target=$rank0
    kill -STOP "$rank1"
    sleep 1
    kill -"$2" "$target"
    sleep 1
    kill -"$2" "$target"
    sleep 1
    kill -0 "$rank0" 2>/dev/null || bad "$name: a repeat within 5 s ended rank 0"
    sleep 4
    kill -"$2" "$target"
    finish
    if [ "$code" -ne 0 ] && [ "$code" -ne 124 ] && grep -q \
        "^\[rank 0\] second stop signal: exiting at once, without a checkpoint (exit $3)" \
        "$T/twice-$1.log"; then
        ok "$name: rank 0 exited $3, the job $code"
    else
        bad "$name: exit $code (124: still running after $LIMIT s)"; show "$T/twice-$1.log"
    fi
}

twice rank0 TERM 4
twice mpirun USR1 3

echo "dist_stall: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
