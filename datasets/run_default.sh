#!/bin/sh
# `make run`: prepares Fashion-MNIST (Debian's dataset-fashion-mnist) into
# HDF5 once, trains the paper's CIFAR-style ResNet-20 on it under mpirun
# without augmentation (4 epochs are too few for random crops to pay off;
# validation every epoch on 5,000 held-out training images, plateau LR,
# checkpoints), then evaluates the best checkpoint on the test split and
# draws the training curves. Each call makes a new run directory under
# runs/; RESUME=1 continues the newest one.
#
# Environment: EPOCHS (default 4), RANKS (default 2, at most the cores;
# each rank gets cores / RANKS threads, whatever OMP_NUM_THREADS says),
# MAX_STEPS (shortens the run), RESUME (1: continue the newest run), RUN_ROOT
# (runs), DATA_DIR (datasets/fashion-mnist/data; the file is
# fashion-mnist-val5k.h5 there), FASHION_MNIST_DIR (the four IDX files,
# /usr/share/datasets/fashion-mnist), BUILD (build); the recipe itself: ARCH
# (resnet20), AUG (none), WEIGHT_DECAY (1e-4), PATIENCE (0), SEED (0),
# TRAIN_FLAGS (more resnet_dist flags for training, e.g. --lr-schedule cosine)
# and EVAL_FLAGS (for the test evaluation of best.h5, e.g. --tta flip).
set -e
BUILD=${BUILD:-build}
SRC=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
DATA_DIR=${DATA_DIR:-datasets/fashion-mnist/data}
DATA="$DATA_DIR/fashion-mnist-val5k.h5"
RUN_ROOT=${RUN_ROOT:-runs}
EPOCHS=${EPOCHS:-4}
ARCH=${ARCH:-resnet20}
AUG=${AUG:-none}
WEIGHT_DECAY=${WEIGHT_DECAY:-1e-4}
PATIENCE=${PATIENCE:-0}
SEED=${SEED:-0}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ "${RESUME:-0}" = 1 ]; then
    RUN=$(ls -d "$RUN_ROOT"/*/ 2>/dev/null | sort | tail -n 1)
    RUN=${RUN%/}
    [ -n "$RUN" ] || { echo "error: RESUME=1 but $RUN_ROOT/ holds no run to continue" >&2; exit 2; }
    echo "continuing $RUN"
else
    RUN="$RUN_ROOT/$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$DATA_DIR" "$RUN"

if [ ! -f "$DATA" ]; then
    "$BUILD/bin/resnet_prep" idx --val-split 5000 \
        --train-images "$SRC/train-images-idx3-ubyte.gz" --train-labels "$SRC/train-labels-idx1-ubyte.gz" \
        --test-images "$SRC/t10k-images-idx3-ubyte.gz" --test-labels "$SRC/t10k-labels-idx1-ubyte.gz" \
        --out "$DATA"
fi

# nproc alone would report OMP_NUM_THREADS, a per-rank setting, as the cores.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
ranks=${RANKS:-2}
[ "$ranks" -gt "$cores" ] && ranks=$cores
threads=$((cores / ranks))
[ "$threads" -ge 1 ] || threads=1
progress=lines
[ -t 1 ] && progress=bar
echo "training $ARCH on $DATA: $ranks ranks x $threads threads, run directory $RUN"
start=$(date +%s)
mpirun -np "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
    --arch "$ARCH" --data "$DATA" --batch-size 128 --lr 0.1 --epochs "$EPOCHS" \
    --weight-decay "$WEIGHT_DECAY" --plateau-patience "$PATIENCE" --aug "$AUG" --seed "$SEED" \
    --log-every 50 --progress "$progress" \
    --checkpoint-dir "$RUN/checkpoints" --metrics "$RUN/metrics.jsonl" --resume auto \
    ${MAX_STEPS:+--max-steps "$MAX_STEPS"} ${TRAIN_FLAGS:-}
echo "training took $(($(date +%s) - start)) s"

mpirun -np "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
    --eval-only --split test --arch "$ARCH" --data "$DATA" --batch-size 500 \
    --init-from "$RUN/checkpoints/best.h5" --metrics "$RUN/metrics.jsonl" ${EVAL_FLAGS:-}
"$BUILD/bin/resnet_plot" "$RUN/metrics.jsonl" -o "$RUN/curves.png" --title "$ARCH on Fashion-MNIST ($RUN)"
echo "run directory: $RUN"
echo "  checkpoints: $RUN/checkpoints (best: $RUN/checkpoints/best.h5)"
echo "  metrics:     $RUN/metrics.jsonl"
echo "  plot:        $RUN/curves.png"
