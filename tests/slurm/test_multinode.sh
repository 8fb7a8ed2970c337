#!/bin/sh
# test_multinode.sh - the job scripts across the nodes of a real Slurm of 3
# nodes on this machine (tests/slurm/cluster.sh: one network, UTS and mount
# namespace per node, Open MPI over TCP between them):
#   - `sbatch --nodes=2 jobs/resnet18-smoke.slurm` (its defaults but one CPU
#     per rank, 3 steps at 32 px) exits 0 with a checkpoint, its ranks on
#     two hosts;
#   - the same training on 3 nodes x 1 rank and on 1 node x 3 ranks ends
#     with bit-identical weights and momentum and the same validation
#     results;
#   - without TCP (OMPI_MCA_btl=self,vader) a 2-node job fails: the nodes
#     share no memory, TCP carries their traffic;
#   - LAUNCHER=mpirun on 3 nodes with STAGE_DIR on node-local storage: one
#     copy per node, each identical to the source, the ranks read it; warned
#     mid-training, mpirun passes the signal to every node's rank, the job
#     requeues, finds each copy up to date, resumes and finishes;
#   - a stale copy with the source's size and time stamp on one node is
#     kept by the staging, and the ranks' agreement check stops the job
#     with exit 2 before training.
# Each job's hosts are printed ("hosts NAME: node1 x2, node2 x2").
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
training_test_start multinode 3
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"

# The smoke job with its defaults (2 ranks per node, ResNet-18, batch 16
# per rank), one CPU per rank and shrunk to 3 steps at 32 px: its 50 steps
# at 224 px take some 12 minutes on 2 cores.
SB="--nodes=2 --cpus-per-task=1"
id=$(STEPS=3 CROP=32 submit smoke2)
# Meanwhile: the same training on 3 nodes x 1 rank and on 1 node x 3 ranks.
export DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=12 EPOCHS=2 LOG_EVERY=7
SB="--nodes=3 --ntasks-per-node=1 --cpus-per-task=1 --time=10"
id3x1=$(submit 3x1)
SB="--nodes=1 --ntasks-per-node=3 --cpus-per-task=1 --time=10"
id1x3=$(submit 1x3)

expect_job "$id" smoke2 COMPLETED 0:0 0 300
rank_hosts smoke2
check "smoke2: checkpoint written" test -f "$T/smoke2/step-00000003.h5"
check "smoke2: 4 ranks on two hosts, 2 each" grep -q "ranks per host: node1 x2, node2 x2" "$T/smoke2.out"
check "smoke2: the trainer saw 4 ranks" grep -q "^4 ranks x 1 thread, " "$T/smoke2.out"
check "smoke2: Open MPI settings in the log" grep -q "Open MPI settings from the environment: .*OMPI_MCA_btl=tcp,self,vader" "$T/smoke2.out"
rm -f "$T"/smoke2/*.h5 # ResNet-18 with 1000 classes: 90 MB

expect_job "$id3x1" 3x1 COMPLETED 0:0 0 300
expect_job "$id1x3" 1x3 COMPLETED 0:0 0 300
rank_hosts 3x1
rank_hosts 1x3
check "3x1: one rank on each of 3 hosts" test "$(host_count 3x1)" -eq 3
check "1x3: 3 ranks on one host" grep -q "ranks per host: node[1-3] x3" "$T/1x3.out"
if "$PYTHON" - "$T/3x1" "$T/1x3" <<'PY'; then
import json, sys
import h5py, numpy as np
a, b = (h5py.File(d + "/step-00000042.h5", "r") for d in sys.argv[1:])
assert a.attrs["world_size"] == b.attrs["world_size"] == 3
for group in ("model", "optimizer"):
    worst = 0.0
    def diff(name, obj):
        global worst
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
            worst = max(worst, float(np.max(np.abs(obj[()] - b[group][name][()]), initial=0)))
    a[group].visititems(diff)
    print("largest %s difference, 3 nodes x 1 rank vs 1 node x 3 ranks: %g" % (group, worst))
    assert worst == 0.0
def vals(d):
    return [{k: v for k, v in r.items() if k != "time"}
            for r in map(json.loads, open(d + "/metrics.jsonl")) if r["kind"] == "val"]
va, vb = vals(sys.argv[1]), vals(sys.argv[2])
print("validation, 3 x 1:", va)
assert len(va) == 2 and va == vb, vb
PY
    ok "3x1 = 1x3: bit-identical weights and momentum, the same validation results"
else
    bad "3x1 and 1x3 differ"
fi

# Without TCP, the ranks of two nodes cannot reach each other: each node's
# namespace has its own network, and shared memory is for one node only.
SB="--nodes=2 --ntasks-per-node=1 --cpus-per-task=1 --time=10"
id=$(OMPI_MCA_btl=self,vader submit notcp)
state=$(job_wait "$id" 120)
rank_hosts notcp
if [ "$state" = FAILED ] && grep -q "dry run failed" "$T/notcp.out" &&
    grep -q "unable to reach each other" "$T/notcp.out"; then
    ok "notcp: without the TCP transport the 2-node job fails ($state $(job_field "$id" ExitCode))"
else
    bad "notcp: $state $(job_field "$id" ExitCode), expected a failed dry run"
    show_log "$T/notcp.out"
fi

# mpirun across 3 nodes, the dataset staged to each node's own disk, and a
# warning mid-training: mpirun passes it to the ranks on every node, the job
# requeues, finds each node's copy up to date and finishes.
# The nodes share this machine's cores: unbound, not all on core 0.
export LAUNCHER=mpirun MPIRUN_ARGS="--bind-to none" STAGE_DIR="$CLUSTER_LOCAL/stage"
SB="--nodes=3 --ntasks-per-node=1 --cpus-per-task=1 --time=10"
id=$(EPOCHS=12 submit staged)
warned_job "$id" staged "train epoch [0-9]* step [0-9]*/[0-9]*: loss" COMPLETED 0:0 1 240
rank_hosts staged
check "staged: one rank on each of 3 hosts" test "$(host_count staged)" -eq 3
check "staged: launched with mpirun" grep -q "running: mpirun -np 3 " "$T/staged.out"
check "staged: SIGUSR1 forwarded to mpirun" grep -q "forwarding SIGUSR1 to the ranks (mpirun" "$T/staged.out"
stop=$(sed -n 's/^stopping at step \([0-9]*\) on SIGUSR1 (exit 3)$/\1/p' "$T/staged.out" | head -n 1)
check "staged: resumed at step ${stop:-?} after the requeue" \
    grep -q "^resumed from $T/staged/step-0*${stop:-x}.h5 at step ${stop:-x}" "$T/staged.out"
check "staged: final checkpoint at step 252" test -f "$T/staged/step-00000252.h5"
check "staged: copied once on each node, up to date on each after the requeue" \
    test "$(grep -c "^node[1-3]: copied .* to $STAGE_DIR/data.h5" "$T/staged.out")-$(grep -c "^node[1-3]: $STAGE_DIR/data.h5 is up to date" "$T/staged.out")" = 3-3
for n in 1 2 3; do
    check "staged: node$n's copy is the source, byte for byte" \
        cmp -s "$T/data.h5" "$CLUSTER_DIR/nodes/node$n/stage/data.h5"
done
check "staged: no copy outside the nodes' own folders" test ! -e "$STAGE_DIR/data.h5"
check "staged: the ranks read the staged path" grep -q "data=$STAGE_DIR/data.h5 " "$T/staged.out"

# A stale copy on node2 (another dataset, same size and time stamp): the
# staging takes it as up to date; the ranks compare what they opened and
# refuse to train.
"$PYTHON" tests/fixtures/make_dataset.py "$T/other.h5" --train 256 --val 32 --size 16 --seed 7
stale=$CLUSTER_DIR/nodes/node2/stage/data.h5
cp "$T/other.h5" "$stale" && touch -r "$T/data.h5" "$stale"
SB="--nodes=3 --ntasks-per-node=1 --cpus-per-task=1 --time=10"
if [ "$(stat -c %s "$stale")" = "$(stat -c %s "$T/data.h5")" ]; then
    id=$(EPOCHS=1 submit stale)
    expect_job "$id" stale FAILED 2:0 0 120
    rank_hosts stale
    check "stale: node2's copy was taken as up to date" grep -q "^node2: $STAGE_DIR/data.h5 is up to date" "$T/stale.out"
    check "stale: the ranks disagree on the dataset, named in one line" \
        grep -q "error: the ranks disagree: rank 1 has dataset fingerprint" "$T/stale.out"
    if grep -qs '"kind":"train"' "$T/stale/metrics.jsonl"; then bad "stale: it trained"; else ok "stale: nothing was trained"; fi
else
    bad "stale: the other dataset has another size; cannot fake a stale copy"
fi

finish slurm_multinode
