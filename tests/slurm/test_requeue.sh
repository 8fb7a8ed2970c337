#!/bin/sh
# test_requeue.sh - the requeue protocol of the training jobs through a real
# Slurm (tests/slurm/cluster.sh), with the warning signal delivered by
# `scancel --signal=USR1 --batch` (what `#SBATCH --signal=B:USR1@N` does at the
# time limit; test_timelimit.sh and test_multinode_faults.sh wait for the
# real one):
#   - an uninterrupted run for reference;
#   - the same run warned mid-training: the ranks checkpoint and exit 3, the
#     job requeues itself, resumes with --resume auto and ends with exit 0 at
#     the same final step, with weights identical to the reference;
#   - SIGTERM to the ranks or to the batch script: checkpoint, exit 4, the
#     job ends without a requeue;
#   - MAX_RESTARTS=0: a warned job stops with exit 3 and is not requeued.
# Uses jobs/resnet18-smoke.slurm with a tiny dataset and ResNet-20, and the
# launcher srun --mpi=pmix (test_smoke.sh covers mpirun).
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
training_test_start requeue

# 256 images / batch 16 = 16 steps per epoch, 24 epochs: 384 steps, long
# enough on a fast machine for the warning to arrive mid-training.
STEPS=384
export DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=16 EPOCHS=24 LOG_EVERY=4
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"
SB="--nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10"

# Reference: no interruption.
id=$(submit ref)
expect_job "$id" ref COMPLETED 0:0 0 180
check "ref: final checkpoint step-$STEPS" test -f "$T/ref/step-00000$STEPS.h5"

# Warned after a few steps: checkpoint, exit 3, requeue, resume, finish.
id=$(submit warned)
warned_job "$id" warned "train epoch [0-9]* step [0-9]*/[0-9]*: loss" COMPLETED 0:0 1 240
check "warned: the batch script forwarded SIGUSR1" grep -q "forwarding SIGUSR1 to the ranks" "$T/warned.out"
stop=$(sed -n 's/^stopping at step \([0-9]*\) on SIGUSR1 (exit 3)$/\1/p' "$T/warned.out" | head -n 1)
if [ -n "$stop" ] && [ "$stop" -lt "$STEPS" ]; then
    ok "warned: ranks stopped at step $stop on SIGUSR1 with exit 3"
else
    bad "warned: no 'stopping at step N on SIGUSR1 (exit 3)' line"
fi
check "warned: requeued itself" grep -q "requeueing job $id (restart 1 of at most 20)" "$T/warned.out"
check "warned: log shows SLURM_RESTART_COUNT=1" grep -q "SLURM_RESTART_COUNT=1 " "$T/warned.out"
check "warned: resumed from step $stop" grep -q "resumed from $T/warned/step-0*$stop.h5 at step $stop" "$T/warned.out"
check "warned: dry run before each start" test "$(grep -c '^dry run: ' "$T/warned.out")" -eq 2
if "$PYTHON" - "$T/ref/step-00000$STEPS.h5" "$T/warned/step-00000$STEPS.h5" "$T/warned/metrics.jsonl" <<'PY'; then
import json, sys
import h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["step"] == b.attrs["step"] == 384, (a.attrs["step"], b.attrs["step"])
worst = max(float(np.max(np.abs(a["model"][k][()] - b["model"][k][()]))) for k in a["model"])
print("largest weight difference, warned and requeued vs uninterrupted:", worst)
assert worst == 0.0
steps = [r["step"] for r in map(json.loads, open(sys.argv[3])) if r["kind"] == "train"]
assert steps[-1] == 384, steps
PY
    ok "warned: same final step ($STEPS) and weights as the uninterrupted run"
else
    bad "warned: final checkpoint differs from the uninterrupted run"
fi

# SIGTERM to the ranks (`scancel --signal=TERM JOBID`, how a user stops a
# run and keeps its progress) and to the batch script (`--batch`, forwarded
# by it): checkpoint, exit 4, no requeue.
for how in steps batch; do
    id=$(submit "term-$how")
    if wait_log "$id" "$T/term-$how.out" "train epoch [0-9]* step [0-9]*/[0-9]*: loss" 120; then
        if [ "$how" = batch ]; then
            scancel --signal=TERM --batch "$id"
        else
            scancel --signal=TERM "$id"
        fi
        expect_job "$id" "term-$how" FAILED 4:0 0 120
        check "term-$how: ranks checkpointed and stopped with exit 4" \
            grep -q "^stopping at step [0-9]* on SIGTERM/SIGINT (exit 4)" "$T/term-$how.out"
        check "term-$how: not requeued, says how to continue" \
            grep -q "stopped on SIGTERM: not requeueing; to continue, submit again with CKPT_DIR=$T/term-$how" "$T/term-$how.out"
    else
        bad "term-$how: training did not start"
        show_log "$T/term-$how.out"
    fi
done

# MAX_RESTARTS=0: the warning stops the job (exit 3) without a requeue.
id=$(MAX_RESTARTS=0 submit guard)
if warned_job "$id" guard "train epoch [0-9]* step [0-9]*/[0-9]*: loss" FAILED 3:0 0 120; then
    check "guard: says MAX_RESTARTS stopped it" grep -q "not requeueing: job $id was restarted 0 times (MAX_RESTARTS=0)" "$T/guard.out"
fi

finish slurm_requeue
