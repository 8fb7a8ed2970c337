#!/bin/sh
# End-to-end tests of resnet_dist: help and flags, training with checkpoints
# and metrics, evaluation, resume, two ranks, and every kind of bad input
# (one clear line, exit 2, existing checkpoints untouched).
. tests/e2e/lib/common.sh
e2e_setup train

COMMON="--arch resnet20 --stem small --batch-size 16 --lr 0.05 --log-every 2"
fixture good.h5

expect 0 "--arch" "help lists flags" -- "$BIN" --help
expect 0 "oneDNN 2.6" "version names libraries" -- "$BIN" --version
expect 2 "unknown flag '--bogus'" "unknown flag" -- "$BIN" --bogus
expect 2 "not a whole number" "malformed number" -- "$BIN" --synthetic --batch-size ten
expect 2 "unknown architecture" "unknown arch" -- "$BIN" --synthetic --arch resnet7
expect 2 "no dataset" "no data" -- "$BIN"
expect 2 "'fast' is neither direct nor winograd" "bad conv algo" -- "$BIN" --synthetic \
    --conv-algo fast
expect 2 "does not divide over 2 ranks" "batch not divisible" -- \
    mpirun -np 2 --oversubscribe "$BIN" --synthetic $COMMON --batch-size 15 --max-steps 1
# with a dataset, the message stays the batch's alone (no file appended to it)
expect 2 "does not divide over 2 ranks$" "batch not divisible, dataset" -- \
    mpirun -np 2 --oversubscribe "$BIN" --data "$T/good.h5" $COMMON --batch-size 15 --max-steps 1

# 64 images in batches of 24: the last partial batch is dropped (the
# default, also asked for by name) or padded.
expect 0 "plan: 2 steps per epoch" "drop last" -- "$BIN" $COMMON --batch-size 24 --data "$T/good.h5" \
    --no-drop-last --drop-last --dry-run --checkpoint-dir "$T/plan"
expect 0 "plan: 3 steps per epoch" "no drop last" -- "$BIN" $COMMON --batch-size 24 \
    --data "$T/good.h5" --no-drop-last --dry-run --checkpoint-dir "$T/plan"

# Training, checkpoints, metrics: 64 images / 16 = 4 steps per epoch.
expect 0 "val epoch 1" "train two epochs" -- "$BIN" $COMMON --data "$T/good.h5" --epochs 2 \
    --checkpoint-dir "$T/a" --metrics "$T/a.jsonl"
cp "$T/out" "$T/a.log"
# lines_say NAME PATTERN...: every pattern (grep -E) matches a line of $T/a.log
lines_say() {
    name=$1
    shift
    for p in "$@"; do
        grep -Eq -- "$p" "$T/a.log" || { bad "$name: no line matches '$p'"; show "$T/a.log" 12; return; }
    done
    ok "$name"
}
# The training and validation lines in the same terms: epoch, global step,
# top-1/top-5 error in per cent.
lines_say "training and validation lines alike" \
    "^train epoch 0 step 4/8: loss [0-9.]+ top-1 error [0-9.]+% top-5 error [0-9.]+% lr " \
    "^val epoch 0 step 4: loss [0-9.]+ top-1 error [0-9.]+% top-5 error [0-9.]+% \(20 images\)$" \
    "^train epoch 1 step 8/8: .* eta [0-9]+:[0-9]{2}:[0-9]{2}$" \
    "^val epoch 1 step 8: "
# Before the first validation the ETA cannot include validations: it says so.
lines_say "eta before the first validation" "^train epoch 0 step 2/8: .* eta [0-9:]+ \+ validations$"
# The settings that decide the run, and none that mislead: resnet20's stem
# is fixed, --max-steps was not given.
lines_say "config lines" "^config: arch=resnet20 num_classes=4 crop=16 " \
    "^config: data=$T/good.h5 aug=cifar drop_last=1 loader_threads=1$" \
    "^config: schedule=plateau epochs=2 warmup_epochs=0 plateau_metric=val_top1 plateau_factor=0.1 plateau_patience=10 plateau_threshold=0.0001 plateau_threshold_mode=rel plateau_cooldown=0 min_lr=0 val_every=1$" \
    "^config: checkpoint_dir=$T/a checkpoint_every=1 checkpoint_minutes=off keep=3 bucket_mb=25$" \
    "^1 rank x 1 thread, resnet20: " "^training data: cifar augmentation, 1 loader thread$"
if grep -q "stem=\|max_steps" "$T/a.log"; then
    bad "no misleading settings: $(grep "^config: arch" "$T/a.log")"
else
    ok "no misleading settings"
fi
[ -f "$T/a/step-00000008.h5" ] && [ -f "$T/a/step-00000004.h5" ] && [ -f "$T/a/best.h5" ] &&
    ok "checkpoints written" || bad "checkpoints written: $(ls "$T/a")"
$PYTHON - "$T/a.jsonl" <<'PY' && ok "metrics records" || bad "metrics records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
kinds = {r["kind"] for r in recs}
assert {"config", "train", "val", "checkpoint"} <= kinds, kinds
val = [r for r in recs if r["kind"] == "val"]
assert len(val) == 2 and all(0 <= r["top1"] <= 1 and 0 <= r["top5"] <= 1 for r in val)
train = [r for r in recs if r["kind"] == "train"]
assert train[-1]["step"] == 8
assert all(0 <= r["top1"] <= 1 and 0 <= r["top5"] <= 1 for r in train), train
PY
$PYTHON - "$T/a/step-00000008.h5" <<'PY' && ok "checkpoint layout" || bad "checkpoint layout"
import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert f["model/conv1.weight"].shape == (16, 3, 3, 3)
assert f["model/layer2.0.conv1.weight"].shape == (32, 16, 3, 3)
assert f["model/fc.weight"].shape == (4, 64) and f["model/fc.bias"].shape == (4,)
assert f["model/bn1.num_batches_tracked"][()] == 8
assert f.attrs["step"] == 8 and f.attrs["arch"] in (b"resnet20", "resnet20")
assert "optimizer/momentum/conv1.weight" in f
PY

expect 0 "top-1 error" "eval only" -- "$BIN" --eval-only --arch resnet20 --stem small \
    --batch-size 6 --data "$T/good.h5" --init-from "$T/a/step-00000008.h5" --metrics "$T/eval.jsonl"
grep -q '"kind":"val"' "$T/eval.jsonl" && ok "eval metrics record" || bad "eval metrics record"

# Interrupted at step 4 then resumed: the same weights as the straight run.
"$BIN" $COMMON --data "$T/good.h5" --epochs 2 --max-steps 4 --checkpoint-dir "$T/b" >"$T/out" 2>&1
expect 0 "resumed from" "resume auto" -- "$BIN" $COMMON --data "$T/good.h5" --epochs 2 \
    --resume auto --checkpoint-dir "$T/b"
$PYTHON - "$T/a/step-00000008.h5" "$T/b/step-00000008.h5" <<'PY' && ok "resume is exact" || bad "resume is exact"
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst = max(float(np.max(np.abs(a["model"][k][()] - b["model"][k][()]))) for k in a["model"])
print("largest difference after resume:", worst)
assert worst == 0.0
PY
# Winograd convolutions write the same checkpoint format, which direct
# convolution evaluates. oneDNN 2.6 has Winograd kernels only on AVX-512
# CPUs (and there not for every shape). With them, training reaches weights
# within a small multiple of the distance direct convolution itself moves
# with another thread count (float sums in another order): rounding, not an
# error (measured: 1.9x; a wrong kernel would be off by the size of the
# weights). Without them, the trainer says that every convolution runs
# direct, and the weights are direct convolution's, bit for bit.
if grep -q avx512bw /proc/cpuinfo; then avx512=1; else avx512=0; fi
expect 0 "conv_algo=winograd" "winograd training" -- "$BIN" $COMMON --data "$T/good.h5" \
    --epochs 2 --conv-algo winograd --checkpoint-dir "$T/w" --metrics "$T/w.jsonl"
if [ $avx512 = 1 ] || grep -q "winograd: \([0-9][0-9]*\) of the \1 3x3 stride-1 convolutions have no" "$T/out"
then ok "winograd fallback reported"; else bad "winograd fallback reported"; show "$T/out"; fi
OMP_NUM_THREADS=2 "$BIN" $COMMON --data "$T/good.h5" --epochs 2 --threads 2 \
    --checkpoint-dir "$T/t2" >"$T/out" 2>&1
$PYTHON - "$T/a/step-00000008.h5" "$T/w/step-00000008.h5" "$T/t2/step-00000008.h5" "$T/w.jsonl" $avx512 <<'PY' && ok "winograd weights as close as rounding" || bad "winograd weights as close as rounding"
import h5py, json, numpy as np, sys
a, w, t = (h5py.File(f, "r")["model"] for f in sys.argv[1:4])
convs = json.loads(open(sys.argv[4]).readline())["winograd_convs"]
keys = [k for k in a if a[k].dtype.kind == "f"]
flat = lambda m: np.concatenate([m[k][()].ravel().astype(np.float64) for k in keys])
base = flat(a)
wino = np.linalg.norm(flat(w) - base) / np.linalg.norm(base)
threads = np.linalg.norm(flat(t) - base) / np.linalg.norm(base)
print(f"{convs} convolutions in Winograd; relative L2 distance from direct, 1 thread, after "
      f"8 steps: winograd {wino:.2e}, direct with 2 threads {threads:.2e}")
if sys.argv[5] == "1":
    assert convs > 0 and 0 < wino <= 4 * threads + 1e-6
else:
    assert convs == 0 and wino == 0
PY
expect 0 "top-1 error" "direct eval of a winograd checkpoint" -- "$BIN" --eval-only --arch resnet20 \
    --stem small --batch-size 6 --data "$T/good.h5" --init-from "$T/w/step-00000008.h5"
expect 0 "starting fresh" "resume auto in empty dir" -- "$BIN" $COMMON --data "$T/good.h5" \
    --max-steps 1 --resume auto --checkpoint-dir "$T/empty"

expect 0 "^2 ranks x 1 thread, resnet20: " "two ranks" -- mpirun -np 2 --oversubscribe "$BIN" \
    $COMMON --data "$T/good.h5" --epochs 1 --checkpoint-dir "$T/c"
expect 0 "img_per_s" "bench json" -- "$BIN" --synthetic --arch resnet20 --stem small --crop 32 \
    --num-classes 10 --batch-size 8 --bench --bench-steps 2 --bench-warmup 1

# Bad datasets.
for kind in float-images rank3 bad-label count-mismatch no-version; do
    fixture "$kind.h5" --kind "$kind"
    expect 2 "$T/$kind.h5" "dataset $kind" -- "$BIN" $COMMON --data "$T/$kind.h5" --max-steps 2 \
        --checkpoint-dir "$T/never"
done
expect 2 "missing.h5" "missing dataset" -- "$BIN" $COMMON --data "$T/missing.h5" --max-steps 1

# Bad checkpoints; the good ones in the directory stay as they were.
cp "$T/a/step-00000008.h5" "$T/missing-tensor.h5"
cp "$T/a/step-00000008.h5" "$T/wrong-shape.h5"
$PYTHON - "$T" <<'PY'
import h5py, numpy as np, sys
d = sys.argv[1]
with h5py.File(d + "/missing-tensor.h5", "a") as f:
    del f["model/layer1.0.conv2.weight"]
with h5py.File(d + "/wrong-shape.h5", "a") as f:
    del f["model/fc.weight"]
    f["model/fc.weight"] = np.zeros((5, 64), np.float32)
PY
head -c 20000 "$T/a/step-00000008.h5" >"$T/truncated.h5"
sums=$(cat "$T"/a/*.h5 | md5sum)
expect 2 "layer1.0.conv2.weight" "checkpoint missing tensor" -- "$BIN" $COMMON --data "$T/good.h5" \
    --max-steps 9 --init-from "$T/missing-tensor.h5" --checkpoint-dir "$T/a"
expect 2 "fc.weight" "checkpoint wrong shape" -- "$BIN" $COMMON --data "$T/good.h5" \
    --max-steps 9 --resume "$T/wrong-shape.h5" --checkpoint-dir "$T/a"
expect 2 "truncated.h5" "checkpoint truncated" -- "$BIN" $COMMON --data "$T/good.h5" \
    --max-steps 9 --resume "$T/truncated.h5" --checkpoint-dir "$T/a"
[ "$(cat "$T"/a/*.h5 | md5sum)" = "$sums" ] && ok "checkpoints untouched" || bad "checkpoints untouched"

# A non-finite loss stops the run with exit 5, naming the step; checkpoints
# stay (--overwrite removes them only at the run's first checkpoint). The
# weights are finite, as a loadable checkpoint's must be, but so large that
# the logits overflow.
$PYTHON - "$T/a/step-00000008.h5" "$T/nan.h5" <<'PY'
import h5py, numpy as np, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    f["model/fc.weight"][...] = np.float32(3e38)
PY
sums=$(cat "$T"/a/*.h5 | md5sum)
expect 5 "loss is not finite at step 1" "non-finite loss" -- "$BIN" $COMMON --data "$T/good.h5" \
    --epochs 3 --init-from "$T/nan.h5" --checkpoint-dir "$T/a" --overwrite
[ "$(cat "$T"/a/*.h5 | md5sum)" = "$sums" ] && ok "checkpoints kept after non-finite loss" ||
    bad "checkpoints kept after non-finite loss"

expect 0 ":::MLLOG" "mllog lines" -- "$BIN" $COMMON --data "$T/good.h5" --max-steps 4 --mllog \
    --aug none --loader-threads 2 --lr-schedule step --lr-steps 1 --checkpoint-dir "$T/mllog"
grep -q '"key": "eval_accuracy"' "$T/out" && ok "mllog eval_accuracy" || bad "mllog eval_accuracy"
cp "$T/out" "$T/a.log"
lines_say "config of a step schedule with --max-steps and no augmentation" \
    "^config: data=$T/good.h5 aug=none drop_last=1 loader_threads=2$" \
    "^config: schedule=step epochs=90 max_steps=4 warmup_epochs=0 lr_steps=1 lr_gamma=0.1 val_every=1$" \
    "^training data: no augmentation, 2 loader threads$"

echo "train_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
