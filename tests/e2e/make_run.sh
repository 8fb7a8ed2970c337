#!/bin/sh
# The `make run` path, shortened: the same script with a few steps, checked
# for a valid checkpoint, metrics with a test record, and a PNG plot; then
# RESUME=1 continues the same run directory; the longer Fashion-MNIST recipe
# (datasets/fashion-mnist/long-recipe.sh) runs a few steps of its own flags,
# and so does the direct-against-Winograd curve comparison
# (bench/conv_algo_curves.sh), down to its summary table.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
T="$BUILD/tmp/e2e-make-run"
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*"; fi; }

BUILD=$BUILD RUN_ROOT="$T/runs" DATA_DIR="$T/data" MAX_STEPS=6 EPOCHS=1 \
    sh datasets/run_default.sh >"$T/run.log" 2>&1
check test $? -eq 0
# The held-out split under the name datasets/README.md gives it, apart from
# the plain file (val = test) that the page's first command makes.
check test -f "$T/data/fashion-mnist-val5k.h5"
check test ! -e "$T/data/fashion-mnist.h5"
run=$(ls -d "$T"/runs/*/ | head -n 1)
run=${run%/}
check test -f "$run/checkpoints/best.h5"
check test -f "$run/checkpoints/step-00000006.h5"
check grep -q '"kind":"test"' "$run/metrics.jsonl"
check test "$(head -c 4 "$run/curves.png" | od -An -tx1 | tr -d ' \n')" = "89504e47"
check grep -q "plot:        $run/curves.png" "$T/run.log"
$PYTHON - "$run/checkpoints/step-00000006.h5" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert f.attrs["step"] == 6 and f["model/conv1.weight"].shape == (16, 1, 3, 3)
PY
check test $? -eq 0
BUILD=$BUILD RUN_ROOT="$T/runs" DATA_DIR="$T/data" MAX_STEPS=8 EPOCHS=1 RESUME=1 \
    sh datasets/run_default.sh >"$T/resume.log" 2>&1
check test $? -eq 0
check grep -q "resumed from .*step-00000006.h5" "$T/resume.log"
check test -f "$run/checkpoints/step-00000008.h5"
BUILD=$BUILD RUN_ROOT="$T/long" DATA_DIR="$T/data" MAX_STEPS=3 \
    sh datasets/fashion-mnist/long-recipe.sh >"$T/long.log" 2>&1
check test $? -eq 0
check grep -q "^config: schedule=plateau epochs=70 " "$T/long.log"
check grep -q "^config: .* weight_decay=0.0005 " "$T/long.log"
check grep -q "training data: cifar augmentation" "$T/long.log"
check grep -q '"kind":"test"' "$(ls -d "$T"/long/*/ | head -n 1)metrics.jsonl"
BUILD=$BUILD OUT="$T/curves" DATA="$T/data/fashion-mnist-val5k.h5" SEEDS=0 MAX_STEPS=3 \
    sh bench/conv_algo_curves.sh >"$T/curves.log" 2>&1
check test $? -eq 0
check grep -q "| winograd | 0 |" "$T/curves/summary.md"
check grep -q "conv_algo=winograd" "$T/curves/winograd-seed0/train.log"
echo "make_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
