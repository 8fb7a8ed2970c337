#!/bin/sh
# ckpt_kill.sh [ROUNDS]: kill -9 of a whole 2-rank job (mpirun and its
# ranks) at a random moment while a checkpoint is being written, ROUNDS
# times (default 20). After each kill, --resume auto must start from a
# valid checkpoint (no file is skipped as damaged) and leave no temporary
# behind. A resnet18 checkpoint (about 90 MB with momentum) is written after
# every step (--synthetic: one step per epoch), so most kills land in a write.
BUILD=${BUILD:-build}
BIN="$BUILD/bin/resnet_dist"
T="$BUILD/tmp/fuzz-ckpt-kill"
ROUNDS=${1:-20}
rm -rf "$T" && mkdir -p "$T"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. tests/e2e/lib/common.sh
RUN="$BIN --synthetic --arch resnet18 --stem small --crop 16 --num-classes 4 --batch-size 2
     --lr 0.01 --keep 2 --checkpoint-dir $T/ckpt"
hits=0

# has_tmp DIR: whether DIR holds a *.tmp
has_tmp() {
    for f in "$1"/*.tmp; do
        if [ -e "$f" ]; then return 0; fi
    done
    return 1
}

# newest_step DIR: the name of the last step-*.h5 (the glob sorts; 8 digits)
newest_step() {
    last=""
    for f in "$1"/step-*.h5; do
        if [ -e "$f" ]; then last=${f##*/}; fi
    done
    echo "$last"
}

# random_sleep MAX_MS
random_sleep() {
    ms=$(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}

# kill_job PID: mpirun and its ranks at once
kill_job() {
    kill -KILL $(pgrep -P "$1") "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

round=1
while [ "$round" -le "$ROUNDS" ]; do
    mpirun -np 2 --oversubscribe $RUN --max-steps 1000000 --resume auto >"$T/run.log" 2>&1 &
    pid=$!
    # wait for a write in progress (a temporary exists), then a random moment
    n=600
    while ! has_tmp "$T/ckpt" && [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.05
        n=$((n - 1))
    done
    random_sleep 250
    has_tmp "$T/ckpt" && hits=$((hits + 1))
    kill_job "$pid"
    before=$(ls "$T/ckpt" | tr '\n' ' ')
    newest=$(newest_step "$T/ckpt")
    step=$(echo "$newest" | sed -n 's/^step-0*\([0-9][0-9]*\)\.h5$/\1/p')
    # one more step: the start removes what the kill left, the step writes
    mpirun -np 2 --oversubscribe $RUN --max-steps $((${step:-0} + 1)) --resume auto \
        >"$T/resume.log" 2>&1
    code=$?
    if [ "$code" -ne 0 ] || grep -qi "skipping" "$T/resume.log" ||
        { [ -n "$newest" ] && ! grep -q "resumed from $T/ckpt/$newest" "$T/resume.log"; } ||
        { [ -z "$newest" ] && ! grep -q "starting fresh" "$T/resume.log"; }; then
        bad "round $round: after the kill ($before) --resume auto: exit $code"; show "$T/resume.log"
    elif has_tmp "$T/ckpt"; then
        bad "round $round: temporaries left after the next start: $(ls "$T/ckpt")"
    else
        ok "round $round: killed with $before; resumed from ${newest:-nothing (fresh)}"
    fi
    round=$((round + 1))
done
echo "ckpt_kill: $pass passed, $fail failed; $hits of $ROUNDS kills during a checkpoint write"
[ "$fail" -eq 0 ]
