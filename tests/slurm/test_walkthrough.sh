#!/bin/sh
# test_walkthrough.sh - README.md's "On a cluster" section as a new user
# follows it, through a real Slurm (tests/slurm/cluster.sh), on a tiny
# ImageNet in Kaggle's layout (4 classes x 8 training JPEGs in class folders,
# 8 validation JPEGs in one flat folder, LOC_val_solution.csv), with the
# devkit's label files for the same images:
#   - the prep job (jobs/prep-imagenet.slurm with VAL_LABELS), the smoke job
#     on the prepared file, the training job (jobs/resnet50.slurm shrunk by
#     its variables: EXTRA_ARGS="--arch resnet20", one epoch at crop 32) and
#     the eval job (jobs/eval.slurm), submitted at once as one afterok chain
#     with --kill-on-invalid-dep=yes, each complete with exit 0 in order;
#   - the eval job prints top-1 and top-5 error over every validation image,
#     the very numbers of the training run's validation of that checkpoint;
#     given a checkpoint that does not exist it fails at once with exit 2;
#   - the prep job with the devkit's ground truth in VAL_LABELS and SYNSETS
#     labels the validation images as the CSV does;
#   - resnet_predict classifies a folder of images with the trained
#     checkpoint (--json), and tools/ckpt_to_torch.py converts it for PyTorch;
#   - README.md still shows each of these commands, so the page and this test
#     cannot drift apart.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
. tests/slurm/cluster.sh
T=$(mkdir -p "$BUILD/tmp" && cd "$BUILD/tmp" && pwd)/slurm-walkthrough
rm -rf "$T" && mkdir -p "$T"

# The commands of README.md this test follows (whitespace ignored).
readme=$(tr '\n' ' ' <README.md | tr -s ' ')
for shown in 'VAL_LABELS=$K/LOC_val_solution.csv sbatch --parsable -p cpu -A myproject jobs/prep-imagenet.slurm' \
    'SYNSETS=$D/synsets.txt' \
    'sbatch --parsable -p cpu -A myproject --dependency=afterok:$prep --kill-on-invalid-dep=yes jobs/resnet18-smoke.slurm' \
    'sbatch --parsable -p cpu -A myproject --dependency=afterok:$smoke --kill-on-invalid-dep=yes jobs/resnet50.slurm' \
    'CROP=224 sbatch -p cpu -A myproject --dependency=afterok:$train --kill-on-invalid-dep=yes jobs/eval.slurm' \
    'build/bin/resnet_predict --checkpoint /scratch/$USER/r50/best.h5 --json' \
    'python3 tools/ckpt_to_torch.py /scratch/$USER/r50/best.h5'; do
    echo "$readme" | grep -qF -- "$shown" && ok "README.md shows: $shown" || bad "README.md no longer shows: $shown"
done

for f in resnet_dist resnet_prep; do
    if [ ! -x "$BUILD/bin/$f" ]; then
        bad "$BUILD/bin/$f is not built"
        finish slurm_walkthrough
    fi
done
# Kaggle's layout, tiny: class folders for training, one flat folder and a
# CSV (ImageId,PredictionString: the wnid, then box numbers) for validation.
K="$T/kaggle"
"$PYTHON" - "$K" <<'PY' || { bad "cannot make the JPEG folders"; finish slurm_walkthrough; }
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(0)
train = os.path.join(root, "ILSVRC/Data/CLS-LOC/train")
val = os.path.join(root, "ILSVRC/Data/CLS-LOC/val")
os.makedirs(val)
def image(c):
    h, w = rng.integers(40, 64, 2)
    return Image.fromarray(rng.normal(60 + 40 * c, 30, (h, w, 3)).clip(0, 255).astype(np.uint8))
for c in range(4):
    d = os.path.join(train, "n%08d" % c)
    os.makedirs(d)
    for i in range(8):
        image(c).save(os.path.join(d, "n%08d_%d.JPEG" % (c, i)), quality=90)
with open(os.path.join(root, "LOC_val_solution.csv"), "w") as f:
    f.write("ImageId,PredictionString\n")
    for i in range(8):
        name = "ILSVRC2012_val_%08d" % (i + 1)
        image(i % 4).save(os.path.join(val, name + ".JPEG"), quality=90)
        f.write("%s,n%08d 1 2 30 40 \n" % (name, i % 4))
# The devkit's layout of the same labels: an ID per image in sorted file
# order, and the ID-to-wnid file, whose IDs are not in wnid order.
synsets = ["n%08d" % c for c in (2, 0, 3, 1)]
with open(os.path.join(root, "synsets.txt"), "w") as f:
    f.write("\n".join(synsets) + "\n")
with open(os.path.join(root, "ILSVRC2012_validation_ground_truth.txt"), "w") as f:
    f.writelines("%d\n" % (synsets.index("n%08d" % (i % 4)) + 1) for i in range(8))
PY
cluster_start walkthrough || { bad "cluster start"; finish slurm_walkthrough; }
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist" RESNET_PREP_BIN="$BUILD/bin/resnet_prep"
# README's shape, small: -p is the test cluster's partition; no accounting
# here, so no -A.
SB="-p test --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10"
DEP="--kill-on-invalid-dep=yes"

export DATA="$T/imagenet.h5"
# shellcheck disable=SC2086 # $SB holds several options
prep=$(TRAIN_DIR=$K/ILSVRC/Data/CLS-LOC/train VAL_DIR=$K/ILSVRC/Data/CLS-LOC/val \
    VAL_LABELS=$K/LOC_val_solution.csv SIZE=36 sbatch --parsable $SB \
    --job-name=prep --output="$T/prep.out" jobs/prep-imagenet.slurm)
# shellcheck disable=SC2086
smoke=$(CKPT_DIR="$T/smoke" CROP=32 MAX_STEPS=2 BATCH=4 sbatch --parsable $SB \
    --dependency=afterok:"$prep" $DEP --job-name=smoke --output="$T/smoke.out" jobs/resnet18-smoke.slurm)
# shellcheck disable=SC2086
train=$(CKPT_DIR="$T/r50" CROP=32 BATCH=8 EPOCHS=1 EXTRA_ARGS="--arch resnet20" sbatch --parsable $SB \
    --dependency=afterok:"$smoke" $DEP --job-name=train --output="$T/train.out" jobs/resnet50.slurm)
# shellcheck disable=SC2086
eval=$(CKPT="$T/r50/best.h5" ARCH=resnet20 CROP=32 sbatch --parsable $SB \
    --dependency=afterok:"$train" $DEP --job-name=eval --output="$T/eval.out" jobs/eval.slurm)
check "the chain waits for the prep" test "$(job_field "$eval" JobState)" = PENDING
expect_job "$prep" prep COMPLETED 0:0 0 120
check "prep: flat val folder labelled by VAL_LABELS" \
    grep -q "resnet_prep imagenet .*--val-labels $K/LOC_val_solution.csv" "$T/prep.out"
check "prep: 32 train and 8 val images" "$PYTHON" - "$DATA" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f["train/labels"].shape == (32,) and f["val/labels"].shape == (8,)
    assert sorted(f["val/labels"][:].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
PY
expect_job "$smoke" smoke COMPLETED 0:0 0 180
check "smoke: resnet18" grep -q "^config: arch=resnet18 " "$T/smoke.out"
check "smoke: read the prepared file" grep -q "^config: .*data=$DATA " "$T/smoke.out"
rm -f "$T"/smoke/*.h5
expect_job "$train" train COMPLETED 0:0 0 180
check "train: torchvision's step recipe, then EXTRA_ARGS" grep -q -- \
    "--aug rrc --batch-size 8 --epochs 1 --base-lr 0.1 --warmup-epochs 0 --lr-schedule step --lr-steps 30,60 --lr-gamma 0.1 --momentum 0.9 --weight-decay 1e-4 .* --arch resnet20" "$T/train.out"
check "train: best.h5 after the epoch's validation" test -f "$T/r50/best.h5"
expect_job "$eval" eval COMPLETED 0:0 0 120
check "eval: top-1 and top-5 error over the 8 validation images" \
    grep -q "^val: loss .* top-1 error .*% top-5 error .*% (8 images)" "$T/eval.out"
check "eval: names the checkpoint and its step" grep -q "^eval-only: checkpoint $T/r50/best.h5 from step [0-9]* (epoch 0)" "$T/eval.out"
trained=$(sed -n 's/^val epoch [0-9]* step [0-9]*: \(loss .*\)$/\1/p' "$T/train.out" | tail -n 1)
check "eval: the checkpoint's loss and errors are the training run's last validation ($trained)" \
    grep -qF ": $trained" "$T/eval.out"

# The devkit's layout: VAL_LABELS with the ground truth needs SYNSETS; the
# labels come out as from Kaggle's CSV.
# shellcheck disable=SC2086
id=$(TRAIN_DIR=$K/ILSVRC/Data/CLS-LOC/train VAL_DIR=$K/ILSVRC/Data/CLS-LOC/val SYNSETS=$K/synsets.txt \
    VAL_LABELS=$K/ILSVRC2012_validation_ground_truth.txt DATA="$T/devkit.h5" SIZE=36 VERIFY=0 \
    sbatch --parsable $SB --job-name=devkit --output="$T/devkit.out" jobs/prep-imagenet.slurm)
expect_job "$id" devkit COMPLETED 0:0 0 120
check "devkit: SYNSETS passed as --synsets" grep -q "resnet_prep imagenet .*--synsets $K/synsets.txt" "$T/devkit.out"
check "devkit: the same validation labels as from LOC_val_solution.csv" "$PYTHON" - "$DATA" "$T/devkit.h5" <<'PY'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    assert (a["val/labels"][:] == b["val/labels"][:]).all()
PY

# A checkpoint that is not there: exit 2 at once, one clear line.
# shellcheck disable=SC2086
id=$(CKPT="$T/r50/missing.h5" sbatch --parsable $SB --job-name=nockpt --output="$T/nockpt.out" jobs/eval.slurm)
expect_job "$id" nockpt FAILED 2:0 0 60
check "nockpt: the log names the file" \
    grep -q "error: CKPT=$T/r50/missing.h5: no such readable file" "$T/nockpt.out"

# After the jobs, on the login node: predictions for a folder of images and
# the checkpoint as a PyTorch file.
if [ -x "$BUILD/bin/resnet_predict" ]; then
    if "$BUILD/bin/resnet_predict" --checkpoint "$T/r50/best.h5" --json "$K/ILSVRC/Data/CLS-LOC/val" \
        >"$T/predict.json" 2>"$T/predict.err"; then
        ok "resnet_predict --checkpoint best.h5 --json: a prediction per image"
        check "resnet_predict: 8 images named in its output" \
            test "$(grep -o 'ILSVRC2012_val_0000000[1-8]' "$T/predict.json" | sort -u | wc -l)" -eq 8
    else
        bad "resnet_predict --checkpoint best.h5 --json DIR failed"
        show_log "$T/predict.err"
    fi
else
    bad "$BUILD/bin/resnet_predict is not built"
fi
if [ -f tools/ckpt_to_torch.py ]; then
    if "$PYTHON" tools/ckpt_to_torch.py "$T/r50/best.h5" "$T/r50.pt" >"$T/convert.log" 2>&1 &&
        "$PYTHON" -c 'import sys, torch; sd = torch.load(sys.argv[1]); sd = sd.get("state_dict", sd); assert "fc.weight" in sd' "$T/r50.pt" \
            >>"$T/convert.log" 2>&1; then
        ok "tools/ckpt_to_torch.py: a PyTorch file with fc.weight"
    else
        bad "python3 tools/ckpt_to_torch.py best.h5 OUT.pt"
        show_log "$T/convert.log"
    fi
else
    bad "tools/ckpt_to_torch.py is missing"
fi
rm -f "$T"/r50/*.h5 "$T/r50.pt"

finish slurm_walkthrough
