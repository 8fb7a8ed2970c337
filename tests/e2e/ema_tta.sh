#!/bin/sh
# End-to-end tests of the weight average (--model-ema) and test-time
# augmentation (--tta flip), docs/training.md:
#   - a 2-rank run stopped mid-epoch (step 5 of 8; the average was updated
#     at step 3, next at 6) and resumed ends with /model, /model_ema and the
#     momentum bitwise equal to an uninterrupted run's;
#   - the same average on 1 and 2 ranks (--sync-bn, one step from a common
#     checkpoint, as tests/e2e/syncbn_exact.sh compares raw weights) within
#     float32 reduction noise;
#   - validation reports the average beside the weights (ema_* fields), or
#     with --model-ema-eval only the average, which best.h5 then follows;
#     a checkpoint without /model_ema resumes with the average started from
#     its weights; --init-from-ema loads /model_ema; the flag checks;
#   - --eval-only --tta flip prints the plain and the tta line; on images
#     that are their own mirror TTA equals the plain figures, on the general
#     set it differs; TTA of a set and of its mirrored copy are equal (the
#     mirror is a left-right flip of every image); 1 and 2 ranks give the
#     same TTA totals.
. tests/e2e/lib/common.sh
e2e_setup ema-tta
LIMIT=120

fixture data.h5 --train 64 --val 20
fixture data16.h5 --train 16 --val 16 --size 32

# 64 images / 16 = 4 steps per epoch, 2 epochs; the average every 3 steps.
RUN="$BIN --arch resnet20 --stem small --batch-size 16 --lr 0.05 --log-every 2 --epochs 2
     --data $T/data.h5 --model-ema 0.9 --model-ema-every 3"
MPI2="mpirun -np 2 --oversubscribe"
FINAL=step-00000008.h5

run straight -- $MPI2 $RUN --checkpoint-dir "$T/straight" --metrics "$T/straight.jsonl"
run stopped -- $MPI2 $RUN --checkpoint-dir "$T/stop" --max-steps 5
if run resumed -- $MPI2 $RUN --checkpoint-dir "$T/stop" --resume auto; then
    grep -q "resumed from .*step-00000005.h5" "$T/resumed.log" &&
        ok "resumed at step 5, mid-epoch" || bad "resumed at step 5, mid-epoch"
fi
compare "$T/straight/$FINAL" "$T/stop/$FINAL" \
    "stopped at step 5 + resumed = uninterrupted, /model_ema included, bitwise" --attrs step
# every rank evaluates its share with its own copy of the average
a=$(grep "^val ema epoch 1 step 8:" "$T/straight.log")
b=$(grep "^val ema epoch 1 step 8:" "$T/resumed.log")
[ -n "$a" ] && [ "$a" = "$b" ] && ok "the resumed run validates the same average on both ranks" ||
    bad "the resumed run validates the same average on both ranks: '$a' vs '$b'"
$PYTHON - "$T/straight/$FINAL" "$T/straight.jsonl" "$T/straight/best.h5" <<'PY' && ok "checkpoint and validation records hold the average" || bad "checkpoint and validation records hold the average"
import h5py, json, sys, numpy as np
f = h5py.File(sys.argv[1], "r")
assert sorted(f["model_ema"]) == sorted(f["model"])
assert f["model_ema"].attrs["decay"] == 0.9 and f["model_ema"].attrs["every"] == 3
assert f["model_ema/bn1.num_batches_tracked"][()] == 6  # copied at the step-6 update
assert f["model/bn1.num_batches_tracked"][()] == 8
assert any(np.any(f["model"][k][()] != f["model_ema"][k][()]) for k in f["model"])
vals = [r for r in map(json.loads, open(sys.argv[2])) if r["kind"] == "val"]
assert len(vals) == 2 and all("ema_top1" in r and "ema_loss" in r and "weights" not in r
                              for r in vals), vals
best = h5py.File(sys.argv[3], "r")
assert best.attrs["best_metric"] == max(r["top1"] for r in vals), "best.h5 follows the weights"
PY
grep -q "^val ema epoch 1 step 8: loss" "$T/straight.log" && ok "a 'val ema' line" ||
    { bad "a 'val ema' line"; show "$T/straight.log"; }

# --model-ema-eval: the average alone is validated; best.h5 follows it.
run ema-eval -- "$BIN" --arch resnet20 --stem small --batch-size 16 --lr 0.05 --epochs 2 \
    --data "$T/data.h5" --model-ema 0.5 --model-ema-eval --checkpoint-dir "$T/ema-eval" \
    --metrics "$T/ema-eval.jsonl"
$PYTHON - "$T/ema-eval/best.h5" "$T/ema-eval.jsonl" <<'PY' && ok "--model-ema-eval: records and best.h5 follow the average" || bad "--model-ema-eval: records and best.h5 follow the average"
import h5py, json, sys
f = h5py.File(sys.argv[1], "r")
vals = [r for r in map(json.loads, open(sys.argv[2])) if r["kind"] == "val"]
assert len(vals) == 2 and all(r.get("weights") == "ema" and "ema_top1" not in r for r in vals)
assert f.attrs["best_metric"] == max(r["top1"] for r in vals)
PY
grep -q "^val epoch 0 step 4: .*(20 images, averaged weights)" "$T/ema-eval.log" &&
    ! grep -q "^val ema" "$T/ema-eval.log" && ok "--model-ema-eval: one line, marked" ||
    { bad "--model-ema-eval: one line, marked"; show "$T/ema-eval.log"; }

# A checkpoint without an average resumes with one started from its weights.
run plain4 -- "$BIN" --arch resnet20 --stem small --batch-size 16 --lr 0.05 --epochs 2 \
    --data "$T/data.h5" --max-steps 4 --checkpoint-dir "$T/old"
expect 0 "holds no weight average (/model_ema): --model-ema starts it" \
    "an old checkpoint resumes under --model-ema" -- $RUN --checkpoint-dir "$T/old" --resume auto
$PYTHON - "$T/old/$FINAL" <<'PY' && ok "the resumed run stores its average" || bad "the resumed run stores its average"
import h5py, sys
assert "model_ema" in h5py.File(sys.argv[1], "r")
PY

# Flag checks and --init-from-ema.
EVAL="$BIN --arch resnet20 --stem small --batch-size 16 --data $T/data.h5 --eval-only"
expect 2 "needs --model-ema DECAY" "--model-ema-eval alone" -- $RUN --model-ema 0 --model-ema-eval
expect 2 "needs --init-from CKPT" "--init-from-ema alone" -- $RUN --init-from-ema
expect 2 "model-ema: the decay must be below 1" "--model-ema 1" -- $RUN --model-ema 1
expect 2 "has no /model_ema group" "--init-from-ema of a checkpoint without one" -- \
    $EVAL --init-from "$T/old/step-00000004.h5" --init-from-ema
$PYTHON - "$T/straight/$FINAL" "$T/ema-only.h5" <<'PY' || bad "cannot write ema-only.h5"
import h5py, sys
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "w") as g:
    f.copy("model_ema", g, name="model")  # the average as a plain checkpoint's /model
PY
run from-ema -- $EVAL --init-from "$T/straight/$FINAL" --init-from-ema
run ema-as-model -- $EVAL --init-from "$T/ema-only.h5"
a=$(grep "^val: " "$T/from-ema.log" | sed 's/^val://')
b=$(grep "^val: " "$T/ema-as-model.log" | sed 's/^val://')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "--init-from-ema evaluates /model_ema:$a" ||
    bad "--init-from-ema evaluates /model_ema: '$a' vs '$b'"

# The same average on 1 and 2 ranks: one step (global batch 16, --sync-bn)
# from a common 2-step checkpoint.
SYNC="$BIN --arch resnet20 --stem small --aug none --sync-bn --data $T/data16.h5 --batch-size 16
      --lr 0.1 --log-every 1 --model-ema 0.5"
run common -- $SYNC --epochs 2 --checkpoint-dir "$T/common"
run one -- $SYNC --epochs 3 --resume "$T/common/step-00000002.h5" --checkpoint-dir "$T/one"
run two -- $MPI2 $SYNC --epochs 3 --resume "$T/common/step-00000002.h5" --checkpoint-dir "$T/two"
compare "$T/two/step-00000003.h5" "$T/one/step-00000003.h5" \
    "1 and 2 ranks: the same weights and average within float32 noise" --rtol 1e-4

# --tta flip under --eval-only on the trained weights.
CKPT="$T/straight/$FINAL"
$PYTHON - "$T/data.h5" "$T/sym.h5" "$T/mirror.h5" <<'PY' || bad "cannot make mirrored sets"
import h5py, shutil, sys
for out, symmetric in ((sys.argv[2], True), (sys.argv[3], False)):
    shutil.copy(sys.argv[1], out)
    with h5py.File(out, "a") as f:
        x = f["val/images"][()]  # (N, H, W, C)
        w = x.shape[2]
        if symmetric:
            x[:, :, w - w // 2:] = x[:, :, :w // 2][:, :, ::-1]
        else:
            x = x[:, :, ::-1]
        f["val/images"][...] = x
PY
for set in data sym mirror; do
    run "tta-$set" -- $EVAL --data "$T/$set.h5" --init-from "$CKPT" --tta flip \
        --metrics "$T/tta-$set.jsonl"
done
grep -q "^val: loss .*(20 images)$" "$T/tta-data.log" &&
    grep -q "^val tta: loss .*(20 images, flip)$" "$T/tta-data.log" &&
    ok "--eval-only --tta flip prints the plain and the tta line" ||
    { bad "--eval-only --tta flip prints the plain and the tta line"; show "$T/tta-data.log"; }
run tta-2 -- $MPI2 $EVAL --init-from "$CKPT" --tta flip --metrics "$T/tta-2.jsonl"
$PYTHON - "$T" <<'PY' && ok "TTA: symmetric = plain, general differs, mirror-invariant, 1 = 2 ranks" || bad "TTA figures"
import json, sys
d = sys.argv[1]
rec = {k: [r for r in map(json.loads, open("%s/tta-%s.jsonl" % (d, k)))
           if r["kind"] == "val"][-1] for k in ("data", "sym", "mirror", "2")}
close = lambda a, b, tol: abs(a - b) <= tol * max(1.0, abs(b))
s = rec["sym"]
assert s["tta_top1"] == s["top1"] and s["tta_top5"] == s["top5"], s
assert close(s["tta_loss"], s["loss"], 1e-9), s
g, m = rec["data"], rec["mirror"]
assert abs(g["tta_loss"] - g["loss"]) > 1e-6, g
assert abs(m["loss"] - g["loss"]) > 1e-6, (m, g)
assert m["tta_top1"] == g["tta_top1"] and m["tta_top5"] == g["tta_top5"], (m, g)
assert close(m["tta_loss"], g["tta_loss"], 1e-12), (m, g)
two = rec["2"]
for k in ("top1", "top5", "tta_top1", "tta_top5"):
    assert round(two[k] * 20) == round(g[k] * 20), (k, two, g)
for k in ("loss", "tta_loss"):
    assert close(two[k], g[k], 1e-5), (k, two, g)
print("    plain loss %.5f top-1 %.2f, tta loss %.5f top-1 %.2f; symmetric: %.5f = %.5f"
      % (g["loss"], g["top1"], g["tta_loss"], g["tta_top1"], s["loss"], s["tta_loss"]))
PY

echo "ema_tta: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
