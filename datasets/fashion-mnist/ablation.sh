#!/bin/sh
# The validation ablation behind datasets/fashion-mnist/best-recipe.sh
# (docs/accuracy.md): short runs on the Fashion-MNIST file of `make run`,
# one seed each, that change one thing at a time against a base recipe, and
# a Markdown table of their last validation figures. Only the 5,000 held-out
# training images are evaluated; the test split is never read.
#
#   base      resnet20, random crops and flips, weight decay 5e-4, 15
#             epochs: one at LR 0.1 (--warmup-epochs 1), then a cosine
#             schedule; weight average (--model-ema 0.998) and flip TTA
#             reported beside the weights
#   erase     base + --random-erase 0.25
#   mix       base + --mixup-alpha 0.2 --cutmix-alpha 1.0
#   resnet32  base with resnet32 for 10 epochs (about the same time)
#
# Environment: VARIANTS (all four, in this order), OUT
# (runs/fashion-mnist-ablation; one folder per variant, resumed when run
# again), SEED (0), RANKS (2), MAX_STEPS (shortens every run), DATA_DIR
# (datasets/fashion-mnist/data), BUILD (build). About 20 minutes a variant
# on 2 cores.
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DATA="${DATA_DIR:-datasets/fashion-mnist/data}/fashion-mnist-val5k.h5"
OUT=${OUT:-runs/fashion-mnist-ablation}
[ -f "$DATA" ] || { echo "error: $DATA does not exist: make run prepares it" >&2; exit 2; }

BASE="--arch resnet20 --aug cifar --weight-decay 5e-4 --lr-schedule cosine --warmup-epochs 1
      --epochs 15 --model-ema 0.998 --tta flip"
flags_of() {
    case $1 in
    base) echo "$BASE" ;;
    erase) echo "$BASE --random-erase 0.25" ;;
    mix) echo "$BASE --mixup-alpha 0.2 --cutmix-alpha 1.0" ;;
    resnet32) echo "$BASE" | sed 's/resnet20/resnet32/; s/--epochs 15/--epochs 10/' ;;
    *) echo "error: unknown variant '$1' (base, erase, mix, resnet32)" >&2; return 2 ;;
    esac
}
for v in ${VARIANTS:-base erase mix resnet32}; do flags_of "$v" >/dev/null || exit 2; done

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${RANKS:-2}
threads=$(($(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) / ranks))
[ "$threads" -ge 1 ] || threads=1
dirs=
for v in ${VARIANTS:-base erase mix resnet32}; do
    mkdir -p "$OUT/$v"
    echo "ablation $v: $OUT/$v/train.log"
    # shellcheck disable=SC2046 # the flags are words
    mpirun -np "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
        --data "$DATA" --batch-size 128 --lr 0.1 --seed "${SEED:-0}" $(flags_of "$v") \
        --log-every 100 --progress lines --checkpoint-dir "$OUT/$v/checkpoints" \
        --metrics "$OUT/$v/metrics.jsonl" --resume auto ${MAX_STEPS:+--max-steps "$MAX_STEPS"} \
        >"$OUT/$v/train.log" 2>&1 || { echo "error: $v failed, see $OUT/$v/train.log" >&2; exit 1; }
    dirs="$dirs $OUT/$v"
done
# shellcheck disable=SC2086 # one word per run directory
/usr/bin/python3 datasets/fashion-mnist/recipe_summary.py $dirs | tee "$OUT/summary.md"
