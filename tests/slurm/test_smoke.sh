#!/bin/sh
# test_smoke.sh - the job scripts through a real Slurm (tests/slurm/cluster.sh):
#   - outside Slurm every job script refuses to run, with a clear message;
#   - jobs/resnet18-smoke.slurm (synthetic data, srun --mpi=pmix) completes
#     with exit 0 after a dry run and leaves a checkpoint;
#   - the same with LAUNCHER=mpirun, a dataset staged to STAGE_DIR and a
#     warning signal: the batch script forwards SIGUSR1 to mpirun, the ranks
#     checkpoint, the job requeues, reuses the staged copy and finishes;
#   - with mpirun, `scancel --batch --signal=TERM` stops the job with a
#     checkpoint and exit 4, no requeue;
#   - a missing dataset, a missing binary and a malformed dataset (caught by
#     the dry run) each fail at once with exit 2, a clear line in the log,
#     and no requeue.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
T=$(mkdir -p "$BUILD/tmp" && cd "$BUILD/tmp" && pwd)/slurm-smoke
rm -rf "$T" && mkdir -p "$T"

# Outside Slurm: no cluster needed.
for job in jobs/*.slurm; do
    out=$(env -u SLURM_JOB_ID bash "$job" 2>&1)
    code=$?
    if [ "$code" -eq 2 ] && echo "$out" | grep -q "SLURM_JOB_ID is not set: submit it with" &&
        echo "$out" | grep -q "sbatch"; then
        ok "$job refuses to run outside Slurm"
    else
        bad "$job outside Slurm: exit $code: $out"
    fi
done

if [ ! -x "$BUILD/bin/resnet_dist" ]; then
    bad "$BUILD/bin/resnet_dist is not built"
    finish slurm_smoke
fi
if ! "$PYTHON" tests/fixtures/make_dataset.py "$T/data.h5" --train 128 --val 16 --size 16 ||
    ! "$PYTHON" tests/fixtures/make_dataset.py "$T/rank3.h5" --kind rank3; then
    bad "cannot make the datasets"
    finish slurm_smoke
fi
cluster_start smoke || { bad "cluster start"; finish slurm_smoke; }
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"
SB="--nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10"

# The smoke job as a site would run it, small: synthetic ResNet-18, srun,
# resnet_dist found on PATH.
bin=$(cd "$BUILD/bin" && pwd)
id=$(unset RESNET_DIST_BIN; PATH="$bin:$PATH" STEPS=3 CROP=32 BATCH=4 submit smoke jobs/resnet18-smoke.slurm)
expect_job "$id" smoke COMPLETED 0:0 0 240
check "smoke: checkpoint written" test -f "$T/smoke/step-00000003.h5"
check "smoke: dry run before training" grep -q "^dry run: flags, dataset" "$T/smoke.out"
check "smoke: srun --mpi=pmix, cores bound, resnet_dist from PATH" \
    grep -q "running: srun --mpi=pmix .*--cpu-bind=cores .*--cpus-per-task=1 $bin/resnet_dist " "$T/smoke.out"
check "smoke: log shows SLURM_RESTART_COUNT" grep -q "SLURM_RESTART_COUNT=0 " "$T/smoke.out"
check "smoke: OMP_NUM_THREADS from --cpus-per-task" grep -q "^2 ranks x 1 thread," "$T/smoke.out"
rm -f "$T"/smoke/*.h5 # ResNet-18 with 1000 classes: 90 MB

# mpirun, staged data, warned once: requeue through mpirun's forwarding.
# 48 epochs of 8 steps: long enough to be warned mid-training on a fast machine.
id=$(LAUNCHER=mpirun STAGE_DIR="$T/stage" DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=16 \
    EPOCHS=48 LOG_EVERY=2 submit mpirun jobs/resnet18-smoke.slurm)
warned_job "$id" mpirun "train epoch [0-9]* step [0-9]*/[0-9]*: loss" COMPLETED 0:0 1 240
check "mpirun: launched with mpirun, cores bound" \
    grep -q "running: mpirun -np 2 --map-by slot:PE=1 --bind-to core" "$T/mpirun.out"
check "mpirun: SIGUSR1 forwarded to mpirun" grep -q "forwarding SIGUSR1 to the ranks (mpirun" "$T/mpirun.out"
check "mpirun: ranks stopped with exit 3" grep -q "^stopping at step [0-9]* on SIGUSR1 (exit 3)" "$T/mpirun.out"
check "mpirun: resumed after the requeue" grep -q "^resumed from $T/mpirun/step-" "$T/mpirun.out"
check "mpirun: final checkpoint" test -f "$T/mpirun/step-00000384.h5"
check "mpirun: dataset staged once, reused after the requeue" \
    test "$(grep -c "copied .* to $T/stage/data.h5" "$T/mpirun.out")-$(grep -c "$T/stage/data.h5 is up to date" "$T/mpirun.out")" = 1-1
check "mpirun: ranks read the staged copy" grep -q "data=$T/stage/data.h5 " "$T/mpirun.out"

# mpirun and `scancel --batch --signal=TERM`: the batch script turns it into
# SIGUSR1 for mpirun (which would kill the ranks 1 s after a SIGTERM); the
# ranks checkpoint, and the job stops with exit 4 without a requeue.
id=$(LAUNCHER=mpirun DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=16 EPOCHS=48 LOG_EVERY=2 \
    submit mpirun-term jobs/resnet18-smoke.slurm)
if wait_log "$id" "$T/mpirun-term.out" "train epoch [0-9]* step [0-9]*/[0-9]*: loss" 120; then
    scancel --batch --signal=TERM "$id"
    expect_job "$id" mpirun-term FAILED 4:0 0 120
    check "mpirun-term: checkpoint on the way out" \
        grep -q "(stop requested by a signal)" "$T/mpirun-term.out"
    check "mpirun-term: not requeued" grep -q "stopped on SIGTERM: not requeueing" "$T/mpirun-term.out"
else
    bad "mpirun-term: training did not start"
    show_log "$T/mpirun-term.out"
fi

# Failures: exit 2 at once, one clear line, no requeue.
id=$(DATA="$T/missing.h5" submit nodata jobs/resnet50.slurm)
expect_job "$id" nodata FAILED 2:0 0 60
check "nodata: log names the missing file" \
    grep -q "error: DATA=$T/missing.h5: no such file" "$T/nodata.out"
id=$(DATA="$T/data.h5" RESNET_DIST_BIN="$T/nowhere/resnet_dist" submit nobin jobs/resnet152.slurm)
expect_job "$id" nobin FAILED 2:0 0 60
check "nobin: log names the missing binary" \
    grep -q "error: RESNET_DIST_BIN=$T/nowhere/resnet_dist: no executable resnet_dist there" "$T/nobin.out"
id=$(DATA="$T/rank3.h5" BATCH=2 submit baddata jobs/resnet50.slurm)
expect_job "$id" baddata FAILED 2:0 0 120
check "baddata: the dry run names the file" grep -q "rank3.h5" "$T/baddata.out"
check "baddata: nothing was trained" grep -q "the dry run failed with exit 2: bad usage or bad input" "$T/baddata.out"
sleep 3
check "failed jobs stay failed (no requeue)" \
    test "$(squeue -h -o %i | wc -l)" -eq 0

finish slurm_smoke
