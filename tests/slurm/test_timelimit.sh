#!/bin/sh
# test_timelimit.sh - the real time-limit path through a real Slurm; nothing
# in this test sends a signal:
#   - jobs/resnet18-smoke.slurm with its own `#SBATCH --signal=B:USR1@60`,
#     --time=1 and MAX_RESTARTS=0 is warned at slurmctld's next time-limit
#     check and stops with exit 3 (its speed sizes the next job);
#   - the same job with --time=1 --signal=B:USR1@20 is warned 20-50 s before
#     its limit (Slurm checks every 30 s), the ranks checkpoint and exit 3,
#     the job requeues itself, resumes with --resume auto and finishes at the
#     planned final step with exit 0. While it waits to restart, the test
#     raises its limit to 10 minutes so that the second run is not warned
#     again.
# About 2 minutes.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
training_test_start timelimit

# 256 images / batch 16 = 16 steps per epoch.
export DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=16 LOG_EVERY=4
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"
SB="--nodes=1 --ntasks-per-node=2 --cpus-per-task=1"

# First, the job script's own `#SBATCH --signal=B:USR1@60` line (not
# overridden): with --time=1 the warning is due at once and comes at
# slurmctld's next time-limit check; MAX_RESTARTS=0 turns it into a stop
# with exit 3. Its metrics also give this training's speed on this machine.
# shellcheck disable=SC2086 # $SB holds several options
id=$(EPOCHS=1000 MAX_RESTARTS=0 CKPT_DIR="$T/own" sbatch --parsable $SB --time=1 --job-name=own \
    --output="$T/own.out" jobs/resnet18-smoke.slurm)
state=$(job_wait "$id" 120)
got="$state $(job_field "$id" ExitCode) restarts $(job_field "$id" Restarts)"
if [ "$got" = "FAILED 3:0 restarts 0" ] && grep -q "received SIGUSR1" "$T/own.out" &&
    grep -q "not requeueing: job $id was restarted 0 times (MAX_RESTARTS=0)" "$T/own.out"; then
    ok "the script's #SBATCH --signal line is honoured: warned, stopped with exit 3"
else
    bad "own --signal line: $got"
    show_log "$T/own.out"
fi
# speed METRICS: training steps per second in a metrics file (empty if it
# holds fewer than two progress records).
speed() {
    "$PYTHON" - "$1" <<'PY'
import json, sys
try:
    r = [x for x in map(json.loads, open(sys.argv[1])) if x["kind"] == "train"]
except OSError:
    r = []
if len(r) >= 2:
    print("%.2f" % ((r[-1]["step"] - r[0]["step"]) / max(r[-1]["time"] - r[0]["time"], 1e-3)))
PY
}
rate=$(speed "$T/own/metrics.jsonl")
if [ -z "$rate" ]; then
    # Warned before it trained (during the dry run): measure with a short run.
    # shellcheck disable=SC2086
    id=$(EPOCHS=4 CKPT_DIR="$T/calib" sbatch --parsable $SB --time=10 --job-name=calib \
        --output="$T/calib.out" jobs/resnet18-smoke.slurm)
    job_wait "$id" 180 >/dev/null
    rate=$(speed "$T/calib/metrics.jsonl")
fi
[ -n "$rate" ] || { bad "no training speed measured"; finish slurm_timelimit; }
# About 60 s of training: it must still run when the warning comes (at most
# 40 s after the start).
epochs=$("$PYTHON" -c "import math; print(max(8, math.ceil($rate * 60 / 16)))")
steps=$((epochs * 16))
echo "training speed: $rate steps/s; the time-limited job trains $epochs epochs ($steps steps)"

start=$(date +%s)
# shellcheck disable=SC2086
id=$(EPOCHS=$epochs CKPT_DIR="$T/limited" sbatch --parsable $SB --time=1 --signal=B:USR1@20 --job-name=limited \
    --output="$T/limited.out" jobs/resnet18-smoke.slurm)
# First run: warned by slurmctld, checkpoint, exit 3, requeue.
requeued=0
end=$(($(date +%s) + 150))
while [ "$(date +%s)" -lt "$end" ]; do
    r=$(job_field "$id" Restarts)
    if [ "${r:-0}" -ge 1 ]; then
        requeued=1
        scontrol update JobId="$id" TimeLimit=10
        break
    fi
    case $(job_field "$id" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT) break ;; esac
    sleep 1
done
if [ "$requeued" = 1 ]; then
    ok "requeued after $(($(date +%s) - start)) s"
else
    bad "not requeued: $(job_field "$id" JobState) $(job_field "$id" ExitCode)"
    grep -q "training finished" "$T/limited.out" &&
        echo "    the training ended before the warning: this machine was faster than calibrated"
    show_log "$T/limited.out"
    cluster_dump
fi
state=$(job_wait "$id" 300)
got="$state $(job_field "$id" ExitCode) restarts $(job_field "$id" Restarts)"
if [ "$got" = "COMPLETED 0:0 restarts 1" ]; then ok "finished: $got"; else bad "finished: $got"; show_log "$T/limited.out"; fi
check "the warning came from Slurm's time limit" grep -q "received SIGUSR1" "$T/limited.out"
stop=$(sed -n 's/^stopping at step \([0-9]*\) on SIGUSR1 (exit 3)$/\1/p' "$T/limited.out" | head -n 1)
if [ -n "$stop" ]; then ok "ranks checkpointed at step $stop and exited 3"; else bad "no 'stopping at step N on SIGUSR1' line"; fi
check "requeued itself" grep -q "requeueing job $id (restart 1 of" "$T/limited.out"
check "log shows SLURM_RESTART_COUNT=1" grep -q "SLURM_RESTART_COUNT=1 " "$T/limited.out"
check "resumed from the checkpoint of step $stop" grep -q "resumed from $T/limited/step-0*$stop.h5 at step $stop" "$T/limited.out"
if "$PYTHON" - "$T/limited" "$steps" <<'PY'; then
import glob, sys
import h5py
last = sorted(glob.glob(sys.argv[1] + "/step-*.h5"))[-1]
with h5py.File(last, "r") as f:
    assert f.attrs["step"] == int(sys.argv[2]), (last, f.attrs["step"])
PY
    ok "final checkpoint at the planned step $steps, as an uninterrupted run"
else
    bad "final checkpoint is not at step $steps: $(ls "$T/limited")"
fi
echo "time-limited job took $(($(date +%s) - start)) s"

finish slurm_timelimit
