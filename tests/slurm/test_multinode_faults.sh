#!/bin/sh
# test_multinode_faults.sh - faults across the nodes of a real Slurm of 3
# nodes on this machine (tests/slurm/cluster.sh), with the training job
# jobs/resnet18-smoke.slurm, a tiny dataset and ResNet-20, 1 rank per node:
#   - node failure: every process of node3 (slurmd, its step, its rank) is
#     killed mid-training. The ranks left wait in the allreduce until
#     --stall-timeout (STALL_TIMEOUT=20) ends the job with exit 1, within
#     20 + 60 s; Slurm marks node3 down; the job, requeued on the 2 nodes
#     left (NumNodes lowered, as an operator would), resumes from the last
#     checkpoint with 2 ranks instead of 3 and finishes the planned steps;
#   - the time limit on a 2-node job, nothing sent by the test: Slurm's
#     warning (--signal=B:USR1@20 with --time=1) reaches the batch script,
#     the ranks on both nodes checkpoint and exit 3, the job requeues
#     itself, resumes at the step it stopped at and ends at the planned
#     final step (sized from the speed measured in the first test).
# Each job's hosts are printed ("hosts NAME: node1 x1, node2 x1", per run).
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
training_test_start multinode-faults 3
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"
# 256 images / batch 12 = 21 steps per epoch; 12 divides over 3 and 2 ranks.
export DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=12 LOG_EVERY=21 STALL_TIMEOUT=20

# last_run_speed METRICS: steps per second of the last run in a metrics file.
last_run_speed() {
    "$PYTHON" - "$1" <<'PY'
import json, sys
run = []
for r in map(json.loads, open(sys.argv[1])):
    run = [] if r["kind"] == "config" else run + [r] if r["kind"] == "train" else run
if len(run) >= 2:
    print("%.2f" % ((run[-1]["step"] - run[0]["step"]) / max(run[-1]["time"] - run[0]["time"], 1e-3)))
PY
}

# final_step DIR STEPS: the newest checkpoint in DIR is at step STEPS.
final_step() {
    "$PYTHON" - "$1" "$2" <<'PY'
import glob, sys
import h5py
last = sorted(glob.glob(sys.argv[1] + "/step-*.h5"))[-1]
with h5py.File(last, "r") as f:
    assert f.attrs["step"] == int(sys.argv[2]), (last, f.attrs["step"])
PY
}

# Node failure. 12 epochs: 252 steps, a checkpoint after each epoch.
SB="--nodes=3 --ntasks-per-node=1 --cpus-per-task=1 --time=10"
id=$(EPOCHS=12 submit nodefail)
if wait_log "$id" "$T/nodefail.out" "^checkpoint .*step-00000021.h5" 120; then
    node_kill node3
    killed=$(date +%s)
    end=$((killed + 20 + 60))
    while [ "$(job_field "$id" JobState)" = RUNNING ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
    took=$(($(date +%s) - killed))
    state=$(job_field "$id" JobState)
    if [ "$state" != RUNNING ]; then
        ok "nodefail: the job ended $took s after node3 died ($state; --stall-timeout 20)"
    else
        bad "nodefail: still running $took s after node3 died"
        show_log "$T/nodefail.out"
    fi
    check "nodefail: the surviving ranks named the silent one" \
        grep -q "^\[rank [01]\] stall: no progress for .* not heard from for .*: rank 2;" "$T/nodefail.out"
    if wait_for 90 sh -c 'sinfo -h -n node3 -o %T | grep -q "^down"'; then
        ok "nodefail: Slurm marked node3 down ($(sinfo -h -n node3 -o '%T, %E'))"
    else
        bad "nodefail: node3 is $(sinfo -h -n node3 -o '%T %E'), not down"
    fi
    # Slurm requeues a --requeue job by itself when the node is marked down
    # while the job runs; if the watchdog ended the job first, it failed
    # (exit 1) and is requeued here. Either way it then waits for 3 nodes:
    # it is given the 2 left.
    wait_for 30 sh -c "scontrol -o show job $id | grep -Eq 'JobState=(PENDING|FAILED|COMPLETED|CANCELLED)'"
    how="requeued by Slurm"
    if [ "$(job_field "$id" JobState)" != PENDING ]; then
        how="$(job_field "$id" JobState) $(job_field "$id" ExitCode), requeued with scontrol requeue"
        scontrol requeue "$id"
    fi
    echo "nodefail: $how"
    rank_hosts nodefail
    scontrol update JobId="$id" NumNodes=2-2 NumTasks=2
    expect_job "$id" nodefail COMPLETED 0:0 1 180
    rank_hosts nodefail
    check "nodefail: first run on 3 hosts" test "$(host_count nodefail)" -eq 3
    check "nodefail: requeued run on node1 and node2, 1 rank each" \
        test "$(rank_hosts nodefail | sed -n 2p)" = "hosts nodefail: node1 x1, node2 x1"
    # The last checkpoint of the first run, and where the second resumed.
    last=$(sed -n '/SLURM_RESTART_COUNT=1/q;s/^checkpoint .*step-0*\([0-9]*\)\.h5.*/\1/p' "$T/nodefail.out" | tail -n 1)
    resumed=$(sed -n 's/^resumed from .*step-0*[0-9]*\.h5 at step \([0-9]*\).*/\1/p' "$T/nodefail.out" | tail -n 1)
    check "nodefail: resumed at step ${resumed:-?}, the last checkpoint before the failure" \
        test -n "$resumed" -a "$resumed" = "$last"
    check "nodefail: 2 ranks after the requeue" grep -q "^2 ranks x 1 thread, " "$T/nodefail.out"
    check "nodefail: final checkpoint at the planned step 252" final_step "$T/nodefail" 252
else
    bad "nodefail: no first checkpoint"
    show_log "$T/nodefail.out"
fi

# The time limit on 2 nodes. About 50 s of training at the speed just
# measured: it must still run when the warning comes. Slurm checks the
# limits every 30 s and warns once the time left is at most the warning
# time plus 30 s: here 10-40 s after the start.
rate=$(last_run_speed "$T/nodefail/metrics.jsonl" 2>/dev/null)
rate=${rate:-20}
epochs=$("$PYTHON" -c "import math; print(max(10, math.ceil($rate * 50 / 21)))")
steps=$((epochs * 21))
echo "training speed with 2 ranks: $rate steps/s; the time-limited job trains $epochs epochs ($steps steps)"
SB="--nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --time=1 --signal=B:USR1@20"
start=$(date +%s)
id=$(EPOCHS=$epochs submit limited)
end=$((start + 150))
while [ "$(job_field "$id" Restarts)" = 0 ] && [ "$(date +%s)" -lt "$end" ]; do
    case $(job_field "$id" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT) break ;; esac
    sleep 1
done
if [ "$(job_field "$id" Restarts)" -ge 1 ] 2>/dev/null; then
    scontrol update JobId="$id" TimeLimit=10 # the second run is not to be warned again
    ok "limited: requeued after $(($(date +%s) - start)) s"
else
    bad "limited: not requeued: $(job_field "$id" JobState) $(job_field "$id" ExitCode)"
    grep -q "training finished" "$T/limited.out" &&
        echo "    the training ended before the warning: faster than measured"
fi
expect_job "$id" limited COMPLETED 0:0 1 240
rank_hosts limited
check "limited: each run on 2 hosts" test "$(rank_hosts limited | grep -c 'node[1-3] x1, node[1-3] x1$')" -eq 2
check "limited: the warning came from Slurm's time limit" grep -q "received SIGUSR1" "$T/limited.out"
stop=$(sed -n 's/^stopping at step \([0-9]*\) on SIGUSR1 (exit 3)$/\1/p' "$T/limited.out" | head -n 1)
check "limited: checkpoint at step ${stop:-?} on the signal" \
    grep -q "^checkpoint $T/limited/step-$(printf %08d "${stop:-0}").h5 (stop requested by a signal)" "$T/limited.out"
check "limited: the ranks on both nodes exited 3" \
    test "$(grep -c "^srun: error: node[12]: task [01]: Exited with exit code 3" "$T/limited.out")" -eq 2
check "limited: requeued itself" grep -q "requeueing job $id (restart 1 of" "$T/limited.out"
check "limited: log shows SLURM_RESTART_COUNT=1" grep -q "SLURM_RESTART_COUNT=1 " "$T/limited.out"
check "limited: resumed at step ${stop:-?}" grep -q "resumed from $T/limited/step-0*${stop:-x}.h5 at step ${stop:-x}" "$T/limited.out"
check "limited: final checkpoint at the planned step $steps" final_step "$T/limited" "$steps"
echo "time-limited job took $(($(date +%s) - start)) s"

finish slurm_multinode_faults
