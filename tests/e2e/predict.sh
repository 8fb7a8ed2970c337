#!/bin/sh
# End-to-end tests of checkpoints that describe their model and input:
#   - a few dozen Fashion-MNIST test images written out as PNG and JPEG
#     files (some padded to non-square), class folders 0..9, prepared with
#     `resnet_prep imagenet --size 24` (a resize and a square centre crop),
#     trained for 20 steps at --crop 20;
#   - the checkpoint's root attributes: stem, input_size, resize_size, mean,
#     std, class_names (the folder names, from the dataset's /classes);
#   - `resnet_dist --eval-only --init-from CKPT --data D` needs no
#     --arch/--stem/--crop/--num-classes; a contradicting flag is exit 2
#     with one line naming the file, the attribute and both values; the run
#     prints no epochs, steps in total or LR, names the checkpoint and its
#     step, and its metrics `val` record carries that step; a checkpoint
#     without the new attributes (as older versions wrote) still evaluates
#     with the flags given;
#   - `resnet_predict` on the same image files gives, per image, the
#     probabilities that reproduce eval-only's top-1 and top-5 counts and
#     its loss (the full distribution is printed with --top 10, and the
#     label is the image's folder name); --json lines parse; an unreadable
#     file is skipped with a warning naming it; none readable is exit 2; a
#     bad flag is exit 2 with the usage line.
. tests/e2e/lib/common.sh
e2e_setup predict
PREDICT="$BUILD/bin/resnet_predict"
LIMIT=60
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}

# 200 training and 40 validation images of the test split; validation
# images alternate PNG and JPEG, every third one padded to 28 x 34.
$PYTHON - "$T" "$FMNIST" <<'PY' || { echo "cannot write the image files"; exit 1; }
import gzip, os, sys
import numpy as np
from PIL import Image

d, src = sys.argv[1], sys.argv[2]
if os.path.exists(src + "/t10k-images-idx3-ubyte.gz"):
    with gzip.open(src + "/t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:240]
    with gzip.open(src + "/t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:240]
else:  # no Fashion-MNIST here: class-dependent blobs of the same shape
    rng = np.random.default_rng(1)
    y = np.arange(240) % 10
    yy, xx = np.mgrid[:28, :28]
    x = np.stack([np.clip(200 * np.exp(-((yy - 4 - 2 * c) ** 2 + (xx - 14) ** 2) / 40)
                          + rng.normal(0, 30, (28, 28)), 0, 255) for c in y]).astype(np.uint8)
for i in range(240):
    split = "train" if i < 200 else "val"
    folder = os.path.join(d, "img", split, str(y[i]))
    os.makedirs(folder, exist_ok=True)
    img = x[i]
    if split == "val" and i % 3 == 0:
        img = np.pad(img, ((0, 0), (3, 3)))
    if split == "val" and i % 2:
        Image.fromarray(img).save(os.path.join(folder, "%03d.jpg" % i), quality=95)
    else:
        Image.fromarray(img).save(os.path.join(folder, "%03d.png" % i))
PY
"$BUILD/bin/resnet_prep" imagenet --train "$T/img/train" --val "$T/img/val" --size 24 \
    --out "$T/data.h5" >"$T/prep.log" 2>&1 || { echo "resnet_prep failed"; show "$T/prep.log"; exit 1; }

if $BIN --arch resnet20 --stem small --data "$T/data.h5" --crop 20 --batch-size 20 --epochs 2 \
    --lr 0.01 --checkpoint-dir "$T/ckpt" >"$T/train.log" 2>&1; then
    ok "20 training steps on the prepared image files"
else
    bad "20 training steps on the prepared image files"; show "$T/train.log"
fi
CKPT="$T/ckpt/step-00000020.h5"

$PYTHON - "$CKPT" "$T/data.h5" <<'PY' && ok "checkpoint attributes: stem, input_size, resize_size, mean/std, class_names" || bad "checkpoint attributes"
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as d:
    a = f.attrs
    assert a["stem"] == "small", a["stem"]
    assert int(a["input_size"]) == 20 and int(a["resize_size"]) == 24, dict(a)
    assert np.array_equal(a["mean"], d.attrs["mean"]) and np.array_equal(a["std"], d.attrs["std"])
    assert list(a["class_names"]) == [str(c) for c in range(10)], a["class_names"]
PY

# --eval-only from the checkpoint alone, on 2 ranks.
EVAL="mpirun -np 2 --oversubscribe $BIN --eval-only --init-from $CKPT --data $T/data.h5 --batch-size 8"
if $EVAL --metrics "$T/eval.jsonl" >"$T/eval.log" 2>&1; then
    ok "--eval-only needs no --arch/--stem/--crop/--num-classes"
else
    bad "--eval-only needs no --arch/--stem/--crop/--num-classes"; show "$T/eval.log"
fi
if grep -q "checkpoint $CKPT from step 20 (epoch 1)" "$T/eval.log" &&
    grep -q "^val: loss .*(40 images)" "$T/eval.log" &&
    ! grep -Eiq "epochs=|lr[ =]|learning rate|steps in total|steps per epoch|^epoch |val epoch" "$T/eval.log"; then
    ok "--eval-only prints the checkpoint and its step, the metrics, no epochs or LR"
else
    bad "--eval-only output"; show "$T/eval.log"
fi
grep -q '"kind":"val","step":20,"epoch":1,' "$T/eval.jsonl" &&
    ok "the metrics val record carries the checkpoint's step" ||
    { bad "the metrics val record carries the checkpoint's step"; show "$T/eval.jsonl"; }

for flag in "--arch resnet56:arch is resnet20, but --arch resnet56" \
    "--stem imagenet:stem is small, but --stem imagenet" \
    "--num-classes 9:num_classes is 10, but --num-classes 9" \
    "--crop 16:input_size is 20, but --crop 16"; do
    given=${flag%%:*} want=${flag#*:}
    # shellcheck disable=SC2086 # the flag and its value are two words
    if expect 2 "^error: $CKPT: root attribute $want was given" "--eval-only $given contradicts the checkpoint: exit 2" -- $EVAL $given; then
        [ "$(grep -c "error" "$T/out")" -eq 1 ] && ok "    one error line" || { bad "    one error line"; show "$T/out"; }
    fi
done
expect 0 "^val: loss" "flags that agree with the checkpoint are accepted" -- \
    $EVAL --arch resnet20 --stem small --crop 20 --num-classes 10

# A checkpoint as older versions wrote it: the flags stand in.
cp "$CKPT" "$T/old.h5"
$PYTHON - "$T/old.h5" <<'PY' || bad "cannot strip the attributes"
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    for k in ("stem", "input_size", "resize_size", "mean", "std", "class_names"):
        del f.attrs[k]
PY
expect 0 "^val: loss" "an older checkpoint evaluates with --arch/--stem/--crop" -- \
    $BIN --eval-only --init-from "$T/old.h5" --data "$T/data.h5" --batch-size 8 --arch resnet20 \
    --stem small --crop 20
expect 2 "^error: $T/old.h5: root attribute stem is missing" \
    "resnet_predict refuses a checkpoint that does not describe its input" -- \
    "$PREDICT" --checkpoint "$T/old.h5" "$T/img/val"

# resnet_predict on the validation image files: the same numbers per image.
run_within "resnet_predict --json --top 10" -- "$PREDICT" --checkpoint "$CKPT" --json --top 10 --batch 8 "$T/img/val"
cp "$T/out" "$T/predict.jsonl"
if [ "$got" -eq 0 ] && $PYTHON - "$T/predict.jsonl" "$T/eval.jsonl" <<'PY'; then
import json, math, os, sys
preds = [json.loads(line) for line in open(sys.argv[1])]
ev = [json.loads(line) for line in open(sys.argv[2]) if '"kind":"val"' in line][-1]
assert len(preds) == 40, len(preds)
names = [p["file"] for p in preds]
assert names == sorted(names), "not in sorted order"
top1 = top5 = 0
loss = 0.0
assert len({p["top"][0]["index"] for p in preds}) >= 2, "one class for every image"
for p in preds:
    label = int(os.path.basename(os.path.dirname(p["file"])))
    top = p["top"]
    assert [set(t) for t in top] == [{"index", "class", "prob"}] * 10, top
    assert all(t["class"] == str(t["index"]) for t in top), top
    assert abs(sum(t["prob"] for t in top) - 1) < 1e-4, top
    ranks = [t["index"] for t in top]
    top1 += ranks[0] == label
    top5 += label in ranks[:5]
    loss -= math.log(next(t["prob"] for t in top if t["index"] == label))
loss /= 40
print("    top-1 %d/40 (eval-only %g), top-5 %d/40 (%g), loss %.5f (%.5f)" % (
    top1, ev["top1"] * 40, top5, ev["top5"] * 40, loss, ev["loss"]))
assert top1 == round(ev["top1"] * 40) and top5 == round(ev["top5"] * 40)
assert abs(loss - ev["loss"]) <= 1e-4 * max(1, ev["loss"]), (loss, ev["loss"])
PY
    ok "resnet_predict on the image files reproduces --eval-only's top-1, top-5 and loss"
else
    bad "resnet_predict on the image files reproduces --eval-only's top-1, top-5 and loss"
    show "$T/predict.jsonl"
fi

# Text output, an unreadable file among readable ones, none readable, bad flags.
printf 'not an image\n' >"$T/img/val/3/broken.png"
expect 0 "" "an unreadable file is skipped" -- "$PREDICT" --checkpoint "$CKPT" --top 2 \
    "$T/img/val" "$T/missing.jpg"
grep -q "^warning: $T/img/val/3/broken.png: skipped: not a JPEG or PNG image" "$T/out" &&
    grep -q "^warning: $T/missing.jpg: skipped: No such file or directory" "$T/out" &&
    [ "$(grep -c "^$T/img/val/[0-9]/2..\.\(png\|jpg\)$" "$T/out")" -eq 40 ] &&
    [ "$(grep -c '^  [01]\.[0-9]*  [0-9] ([0-9])$' "$T/out")" -eq 80 ] &&
    ok "    warnings name the files; the 40 readable images get 2 classes each" ||
    { bad "    warnings and text output"; show "$T/out" 14; }
expect 2 "^error: none of the 2 image file(s) could be read" "no readable image: exit 2" -- \
    "$PREDICT" --checkpoint "$CKPT" "$T/img/val/3/broken.png" "$T/missing.jpg"
expect 2 "^usage: resnet_predict --checkpoint CKPT" "an unknown flag: exit 2 with the usage line" -- \
    "$PREDICT" --checkpoint "$CKPT" --bogus "$T/img/val"
expect 2 "^error: --top: '0' is not a whole number" "--top 0: exit 2" -- \
    "$PREDICT" --checkpoint "$CKPT" --top 0 "$T/img/val"
expect 2 "^error: --checkpoint CKPT is required" "no --checkpoint: exit 2" -- "$PREDICT" "$T/img/val"
expect 0 "--json" "--help lists every flag" -- "$PREDICT" --help
for f in --checkpoint --top --batch --version; do
    grep -q -- "$f" "$T/out" || bad "--help lacks $f"
done

echo "predict: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
