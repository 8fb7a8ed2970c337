#!/bin/sh
# Training curves of --conv-algo direct against winograd: resnet20 on
# Fashion-MNIST (the make-run recipe, but with a fixed cosine schedule so that
# no decision depends on a noisy validation result), for several seeds each.
# Every run evaluates its final weights on the test split; the summary table
# (per-epoch validation error and test accuracy, per seed and algorithm) goes
# to stdout and to $OUT/summary.md.
#
# Environment: SEEDS (default "0 1 2"), EPOCHS (4), RANKS (2), BUILD (build),
# OUT (build/conv-algo-curves), DATA (the make-run Fashion-MNIST file; run
# `make run` once first to prepare it), MAX_STEPS (shortens each run).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SEEDS=${SEEDS:-0 1 2}
EPOCHS=${EPOCHS:-4}
RANKS=${RANKS:-2}
OUT=${OUT:-$BUILD/conv-algo-curves}
DATA=${DATA:-datasets/fashion-mnist/data/fashion-mnist-val5k.h5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f "$DATA" ] || { echo "error: $DATA not found: run 'make run' once to prepare it" >&2; exit 2; }
threads=$(($(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) / RANKS))
[ "$threads" -ge 1 ] || threads=1
mkdir -p "$OUT"

for seed in $SEEDS; do
    for algo in direct winograd; do
        run="$OUT/$algo-seed$seed"
        rm -rf "$run"
        mkdir -p "$run"
        echo "== $algo, seed $seed: $run"
        start=$(date +%s)
        mpirun -np "$RANKS" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
            --arch resnet20 --data "$DATA" --batch-size 128 --lr 0.1 --epochs "$EPOCHS" \
            --lr-schedule cosine --weight-decay 1e-4 --aug none --seed "$seed" --conv-algo "$algo" \
            --log-every 100 --progress lines --checkpoint-dir "$run/checkpoints" \
            --metrics "$run/metrics.jsonl" ${MAX_STEPS:+--max-steps "$MAX_STEPS"} \
            >"$run/train.log" 2>&1
        echo "   trained in $(($(date +%s) - start)) s"
        last=$(ls "$run"/checkpoints/step-*.h5 | sort | tail -n 1)
        mpirun -np "$RANKS" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
            --eval-only --split test --arch resnet20 --data "$DATA" --batch-size 500 \
            --conv-algo "$algo" --init-from "$last" --metrics "$run/metrics.jsonl" \
            >>"$run/train.log" 2>&1
    done
done
/usr/bin/python3 bench/conv_algo_summary.py "$OUT" | tee "$OUT/summary.md"
