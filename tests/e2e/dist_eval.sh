#!/bin/sh
# End-to-end test that validation counts every image exactly once on any
# number of ranks: --eval-only on 1, 2, 3 and 4 ranks over a /val of 23
# images and a /test of 7 (neither divides over 2, 3 or 4 ranks; with a
# global batch of 12 the ranks' shares end in partial batches, and on 4
# ranks the 7 test images are fewer than one batch per rank). Every run must
# report all the images, and the same top-1/top-5 counts and loss as the
# 1-rank run (evaluation-mode BN is per image, so only float rounding of the
# loss may differ; 10 classes, so top-5 is not trivially 1). Validation
# during a 3-rank training run counts all 23.
. tests/e2e/lib/common.sh
e2e_setup dist-eval

fixture data.h5 --train 96 --val 23 --classes 10
$PYTHON - "$T/data.h5" <<'PY' || { echo "cannot add /test"; exit 1; }
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    f.create_dataset("test/images", data=f["val/images"][16:23], chunks=(1, 16, 16, 3))
    f["test/labels"] = f["val/labels"][16:23]
PY
RUN="$BIN --arch resnet20 --stem small --batch-size 12"

# Weights that make varied predictions: 4 epochs of 8 steps.
if mpirun -np 3 --oversubscribe $RUN --lr 0.05 --data "$T/data.h5" --epochs 4 \
    --checkpoint-dir "$T/ckpt" >"$T/train.log" 2>&1 &&
    [ "$(grep -c "val epoch [0-3] step [0-9]*: .*(23 images)" "$T/train.log")" -eq 4 ]; then
    ok "validation during 3-rank training counts 23 images"
else
    bad "validation during 3-rank training counts 23 images"; show "$T/train.log"
fi
CKPT="$T/ckpt/step-00000032.h5"

for split in val test; do
    n=23
    [ "$split" = test ] && n=7
    for np in 1 2 3 4; do
        if mpirun -np "$np" --oversubscribe $RUN --eval-only --split "$split" --data "$T/data.h5" \
            --init-from "$CKPT" --metrics "$T/$split-$np.jsonl" >"$T/out" 2>&1 &&
            grep -q "($n images)" "$T/out"; then
            ok "--eval-only --split $split on $np ranks: $(grep -o "loss.*images)" "$T/out")"
        else
            bad "--eval-only --split $split on $np ranks"; show "$T/out"
        fi
    done
    $PYTHON - "$T" "$split" "$n" <<'PY' && ok "$split: the same totals on 1-4 ranks" || bad "$split: the same totals on 1-4 ranks"
import json, sys
d, split, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {}
for np_ in (1, 2, 3, 4):
    recs = [json.loads(l) for l in open("%s/%s-%d.jsonl" % (d, split, np_))]
    runs[np_] = [r for r in recs if r["kind"] == split][-1]
ref = runs[1]
for np_, r in runs.items():
    for key in ("top1", "top5"):  # fractions of n: counts must match exactly
        assert round(r[key] * n) == round(ref[key] * n), (np_, key, r[key], ref[key])
    assert abs(r["loss"] - ref["loss"]) <= 1e-5 * max(1.0, abs(ref["loss"])), (np_, r, ref)
print("    top-1 %d/%d, top-5 %d/%d, loss %s" % (round(ref["top1"] * n), n,
      round(ref["top5"] * n), n, [runs[k]["loss"] for k in sorted(runs)]))
PY
done

echo "dist_eval: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
