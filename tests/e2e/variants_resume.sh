#!/bin/sh
# End-to-end tests of the residual network variants through resnet_dist:
# a stochastic-depth run (and a wrn run with dropout and drop-path)
# interrupted mid-epoch and resumed reaches exactly the weights of an
# uninterrupted run, the flags are live (other weights without them), and
# --list-archs and the flag checks behave.
. tests/e2e/lib/common.sh
e2e_setup variants

# compare A.h5 B.h5 same|differ NAME: the /model tensors of two checkpoints
compare() {
    if $PYTHON - "$1" "$2" "$3" <<'PY'; then ok "$4"; else bad "$4"; fi
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a["model"]) == sorted(b["model"])
worst = max(float(np.max(np.abs(a["model"][k][()].astype(np.float64) - b["model"][k][()])))
            for k in a["model"])
print("largest weight difference:", worst)
assert (worst == 0.0) == (sys.argv[3] == "same"), sys.argv[3]
PY
}

fixture data.h5
# 64 images / 16 = 4 steps per epoch; the interrupted runs stop at step 6, mid-epoch 2.
BASE="--stem small --batch-size 16 --lr 0.05 --log-every 2 --data $T/data.h5 --epochs 2"
DP="--arch resnet20 --drop-path 0.5"
WRN="--arch wrn-10-2 --wrn-dropout 0.3 --drop-path 0.2"

expect 0 "drop_path=0.5" "drop-path straight" -- "$BIN" $BASE $DP --checkpoint-dir "$T/dp-a"
"$BIN" $BASE $DP --max-steps 6 --checkpoint-dir "$T/dp-b" >"$T/out" 2>&1
[ -f "$T/dp-b/step-00000006.h5" ] && ok "drop-path stopped at step 6" ||
    bad "drop-path stopped at step 6: $(ls "$T/dp-b")"
expect 0 "resumed from" "drop-path resumed" -- "$BIN" $BASE $DP --resume auto \
    --checkpoint-dir "$T/dp-b"
compare "$T/dp-a/step-00000008.h5" "$T/dp-b/step-00000008.h5" same "drop-path resume is exact"
expect 0 "" "no drop-path" -- "$BIN" $BASE --arch resnet20 --checkpoint-dir "$T/plain"
compare "$T/dp-a/step-00000008.h5" "$T/plain/step-00000008.h5" differ "drop-path changes training"

expect 0 "wrn_dropout=0.3" "wrn dropout straight" -- "$BIN" $BASE $WRN --checkpoint-dir "$T/wrn-a"
"$BIN" $BASE $WRN --max-steps 6 --checkpoint-dir "$T/wrn-b" >"$T/out" 2>&1
expect 0 "resumed from" "wrn dropout resumed" -- "$BIN" $BASE $WRN --resume auto \
    --checkpoint-dir "$T/wrn-b"
compare "$T/wrn-a/step-00000008.h5" "$T/wrn-b/step-00000008.h5" same "wrn dropout resume is exact"
expect 0 "" "wrn without dropout" -- "$BIN" $BASE --arch wrn-10-2 --checkpoint-dir "$T/wrn-plain"
compare "$T/wrn-a/step-00000008.h5" "$T/wrn-plain/step-00000008.h5" differ \
    "dropout changes training"
$PYTHON - "$T/wrn-a/step-00000008.h5" <<'PY' && ok "wrn checkpoint names" || bad "wrn checkpoint names"
import h5py, sys
m = h5py.File(sys.argv[1], "r")["model"]
assert m["layer1.0.conv1.weight"].shape == (32, 16, 3, 3)
assert m["layer1.0.downsample.0.weight"].shape == (32, 16, 1, 1)
assert "layer1.0.downsample.1.weight" not in m
assert m["bn_final.weight"].shape == (128,) and m["fc.weight"].shape == (4, 128)
assert "bn1.weight" not in m  # the CIFAR pre-activation stem is one conv
PY

expect 0 "36,479,194" "list archs" -- "$BIN" --list-archs
grep -q "^resnext50_32x4d .* 25,028,904 *4.230" "$T/out" && grep -q "^wrn-40-4 " "$T/out" &&
    grep -q "^preact-resnet1001 " "$T/out" && ok "list archs rows" || bad "list archs rows"
expect 0 "wrn-28-10 .* 64 *100 " "list archs at --crop 64 --num-classes 100" -- \
    "$BIN" --list-archs --crop 64 --num-classes 100
expect 0 "preact-resnet1001" "help names the variants" -- "$BIN" --help
expect 2 "not a wrn-D-K network" "wrn-dropout on resnet50" -- "$BIN" --synthetic \
    --wrn-dropout 0.3 --max-steps 1
expect 2 "drop-path" "drop-path out of range" -- "$BIN" --synthetic --drop-path 1.5 --max-steps 1
expect 2 "unknown architecture" "bad wrn depth" -- "$BIN" --synthetic --arch wrn-27-10 --max-steps 1

echo "variants_resume: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
