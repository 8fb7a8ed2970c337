#!/bin/sh
# The `make run` path, shortened: the same script with a few steps, checked
# for a valid checkpoint, metrics with a test record, and a PNG plot; then
# RESUME=1 continues the same run directory; the longer Fashion-MNIST recipes
# (datasets/fashion-mnist/long-recipe.sh, best-recipe.sh) run a few steps of
# their own flags, and so do the direct-against-Winograd curve comparison
# (bench/conv_algo_curves.sh) and the validation ablation
# (datasets/fashion-mnist/ablation.sh), down to their summary tables.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
T="$BUILD/tmp/e2e-make-run"
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*"; fi; }

OMP_NUM_THREADS=1 BUILD=$BUILD RUN_ROOT="$T/runs" DATA_DIR="$T/data" MAX_STEPS=6 EPOCHS=1 \
    sh datasets/run_default.sh >"$T/run.log" 2>&1
check test $? -eq 0
# OMP_NUM_THREADS=1 in the caller's environment leaves the 2 ranks in place.
[ "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" -ge 2 ] && check grep -q "^2 ranks x 1 thread, " "$T/run.log"
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
check grep -q "^- convolutions in Winograd in the winograd runs: [0-9]" "$T/curves/summary.md"
SEED=1 BUILD=$BUILD RUN_ROOT="$T/best" DATA_DIR="$T/data" MAX_STEPS=3 \
    sh datasets/fashion-mnist/best-recipe.sh >"$T/best.log" 2>&1
check test $? -eq 0
check grep -q "^config: schedule=cosine epochs=75 " "$T/best.log"
best_metrics="$(ls -d "$T"/best/seed-1/*/ | head -n 1)metrics.jsonl"
check grep -q -- "--seed 1 " "$best_metrics"
check grep -q '"kind":"test".*"tta_top1"' "$best_metrics"
# The ablation, its mixed variant (the base flags and more) for a few steps,
# down to its table.
BUILD=$BUILD OUT="$T/ablation" DATA_DIR="$T/data" VARIANTS="mix" MAX_STEPS=3 \
    sh datasets/fashion-mnist/ablation.sh >"$T/ablation.log" 2>&1
check test $? -eq 0
check grep -q "^| mix | 0 | 3 | " "$T/ablation/summary.md"
check grep -q "mixup_alpha=0.2 cutmix_alpha=1" "$T/ablation/mix/train.log"
check grep -q "val ema tta top-1 %" "$T/ablation/summary.md"
BUILD=$BUILD OUT="$T/ablation" DATA_DIR="$T/data" VARIANTS="base wide" \
    sh datasets/fashion-mnist/ablation.sh >"$T/ablation-bad.log" 2>&1
check test $? -eq 2
check grep -q "unknown variant 'wide'" "$T/ablation-bad.log"
# Training time adds the segments of a resumed run (10 s + 30 s here) and
# leaves out evaluation-only start-ups; the test figures are the last ones.
mkdir -p "$T/summary/resumed"
cat >"$T/summary/resumed/metrics.jsonl" <<'JSONL'
{"kind":"config","time":1000.0,"total_steps":8,"command_line":"resnet_dist --seed 7"}
{"kind":"train","step":4,"epoch":0,"time":1010.0,"loss":1.0,"top1":0.5}
{"kind":"config","time":2000.0,"total_steps":8,"command_line":"resnet_dist --seed 7 --resume auto"}
{"kind":"val","step":8,"epoch":1,"time":2030.0,"loss":0.5,"top1":0.9,"top5":1.0,"tta_top1":0.91}
{"kind":"config","time":3000.0,"checkpoint":"best.h5","command_line":"resnet_dist --eval-only"}
{"kind":"test","step":8,"epoch":1,"time":3600.0,"loss":0.6,"top1":0.875,"top5":1.0,"tta_top1":0.8825}
JSONL
$PYTHON datasets/fashion-mnist/recipe_summary.py "$T/summary/resumed" >"$T/summary.md"
check grep -q "^| resumed | 7 | 8 | 0.7 | 90.00 | 91.00 | 87.50 | 88.25 |$" "$T/summary.md"
check grep -q "^- mean test tta top-1: 88.25% over 1 run" "$T/summary.md"
# A damaged metrics file is exit 2 naming the file and the line.
mkdir -p "$T/summary/damaged"
printf '{"kind":"config","time":1.0}\n{"kind":"val","step":"8"\n' >"$T/summary/damaged/metrics.jsonl"
$PYTHON datasets/fashion-mnist/recipe_summary.py "$T/summary/damaged" >"$T/damaged.log" 2>&1
check test $? -eq 2
check grep -q "^error: .*damaged/metrics.jsonl:2: not a JSON record" "$T/damaged.log"
echo "make_run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
