#!/bin/sh
# test_chain.sh - dataset prep then training, chained with
# --dependency=afterok, through a real Slurm (tests/slurm/cluster.sh):
#   - jobs/prep-imagenet.slurm turns a small class-folder tree of JPEGs into
#     a JPEG-encoded dataset with 2 MPI ranks and verifies it;
#   - jobs/resnet50.slurm, submitted at the same time with
#     --dependency=afterok on the prep, waits for it, then trains two steps
#     with the ImageNet recipe (torchvision's step schedule, linear-scaled
#     lr) on that file;
#   - a prep that fails (missing folder: exit 2, clear log line) makes its
#     afterok dependant be cancelled instead of pending for ever.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
T=$(mkdir -p "$BUILD/tmp" && cd "$BUILD/tmp" && pwd)/slurm-chain
rm -rf "$T" && mkdir -p "$T"

for f in resnet_dist resnet_prep; do
    if [ ! -x "$BUILD/bin/$f" ]; then
        bad "$BUILD/bin/$f is not built"
        finish slurm_chain
    fi
done
# 4 classes x 8 training and 2 validation JPEGs of varying size.
"$PYTHON" - "$T/images" <<'PY' || { bad "cannot make the JPEG folders"; finish slurm_chain; }
import os, sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split, n in (("train", 8), ("val", 2)):
    for c in range(4):
        d = os.path.join(sys.argv[1], split, "n%08d" % c)
        os.makedirs(d)
        for i in range(n):
            h, w = rng.integers(40, 64, 2)
            a = rng.normal(60 + 40 * c, 30, (h, w, 3)).clip(0, 255).astype(np.uint8)
            Image.fromarray(a).save(os.path.join(d, "img%d.JPEG" % i), quality=90)
PY
cluster_start chain || { bad "cluster start"; finish slurm_chain; }
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist" RESNET_PREP_BIN="$BUILD/bin/resnet_prep"
SB="--nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10"

# Prep, then training once the prep succeeded; both submitted now.
export DATA="$T/imagenet.h5"
# shellcheck disable=SC2086 # $SB holds several options
prep=$(TRAIN_DIR="$T/images/train" VAL_DIR="$T/images/val" SIZE=36 sbatch --parsable $SB \
    --job-name=prep --output="$T/prep.out" jobs/prep-imagenet.slurm)
# shellcheck disable=SC2086
train=$(CKPT_DIR="$T/train" CROP=32 BATCH=8 MAX_STEPS=2 sbatch --parsable $SB \
    --dependency=afterok:"$prep" --job-name=train --output="$T/train.out" jobs/resnet50.slurm)
check "train waits for the prep" test "$(job_field "$train" JobState)" = PENDING
expect_job "$prep" prep COMPLETED 0:0 0 120
check "prep: wrote the dataset" test -f "$DATA"
check "prep: ran with 2 ranks under srun --mpi=pmix" \
    grep -q "running: srun --mpi=pmix .*resnet_prep imagenet --train $T/images/train --val $T/images/val --out $DATA --encoding jpeg" "$T/prep.out"
check "prep: verified the file" grep -q "running: .*resnet_prep verify $DATA" "$T/prep.out"
expect_job "$train" train COMPLETED 0:0 0 300
check "prep: jpeg dataset, 32 train and 8 val images" "$PYTHON" - "$DATA" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    enc = f.attrs["encoding"]
    assert (enc.decode() if isinstance(enc, bytes) else enc) == "jpeg"
    assert f["train/labels"].shape == (32,) and f["val/labels"].shape == (8,)
PY
pend=$(date -d "$(job_field "$prep" EndTime)" +%s)
tstart=$(date -d "$(job_field "$train" StartTime)" +%s)
check "train started after the prep ended" test "$tstart" -ge "$pend"
check "train: resnet50" grep -q "^config: arch=resnet50 " "$T/train.out"
check "train: read the prepared file" grep -q "^config: data=$DATA " "$T/train.out"
check "train: ImageNet recipe flags" grep -q -- "--aug rrc --batch-size 8 --epochs 90 --base-lr 0.1 --warmup-epochs 0 --lr-schedule step --lr-steps 30,60 --lr-gamma 0.1 --momentum 0.9 --weight-decay 1e-4 " "$T/train.out"
check "train: lr = 0.1 x 8 / 256" grep -q "^config: .* lr=0.003125 " "$T/train.out"
check "train: checkpoint at step 2" test -f "$T/train/step-00000002.h5"
rm -f "$T"/train/*.h5 # ResNet-50 checkpoints are 190 MB each

# A failing prep: its afterok dependant is cancelled, never run.
# shellcheck disable=SC2086
prep=$(TRAIN_DIR="$T/images/missing" VAL_DIR="$T/images/val" DATA="$T/never.h5" sbatch --parsable $SB \
    --job-name=badprep --output="$T/badprep.out" jobs/prep-imagenet.slurm)
# shellcheck disable=SC2086
train=$(DATA="$T/never.h5" CKPT_DIR="$T/never" sbatch --parsable $SB --dependency=afterok:"$prep" \
    --job-name=orphan --output="$T/orphan.out" jobs/resnet50.slurm)
expect_job "$prep" badprep FAILED 2:0 0 60
check "badprep: log names the missing folder" \
    grep -q "error: TRAIN_DIR=$T/images/missing: no such folder" "$T/badprep.out"
state=$(job_wait "$train" 60)
reason=$(job_field "$train" Reason)
check "orphan: cancelled ($state, $reason), not pending for ever" \
    test "$state" = CANCELLED
check "orphan: never ran" test ! -s "$T/orphan.out"

finish slurm_chain
