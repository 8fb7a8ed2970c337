#!/bin/sh
# `make run`: prepares Fashion-MNIST (Debian's dataset-fashion-mnist) into
# HDF5 once, then trains a CIFAR-style ResNet-20 with the small stem on it
# under mpirun, one OpenMP thread per core split over the ranks.
set -e
BUILD=${BUILD:-build}
SRC=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
OUT=${DATA_DIR:-datasets/fashion-mnist/data}
DATA="$OUT/fashion-mnist.h5"
RUN="runs/$(date +%Y%m%d-%H%M%S)"
EPOCHS=${EPOCHS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

mkdir -p "$OUT" "$RUN"
if [ ! -f "$DATA" ]; then
    "$BUILD/bin/resnet_prep" idx \
        --train-images "$SRC/train-images-idx3-ubyte.gz" --train-labels "$SRC/train-labels-idx1-ubyte.gz" \
        --test-images "$SRC/t10k-images-idx3-ubyte.gz" --test-labels "$SRC/t10k-labels-idx1-ubyte.gz" \
        --out "$DATA"
fi
cores=$(nproc)
ranks=${RANKS:-2}
[ "$ranks" -gt "$cores" ] && ranks=$cores
threads=$((cores / ranks))
echo "training resnet20 on $DATA with $ranks ranks x $threads threads; run directory $RUN"
mpirun -np "$ranks" --bind-to none -x OMP_NUM_THREADS="$threads" "$BUILD/bin/resnet_dist" \
    --arch resnet20 --stem small --data "$DATA" --batch-size 128 --lr 0.1 \
    --epochs "$EPOCHS" --log-every 50 --checkpoint-dir "$RUN/checkpoints" \
    --metrics "$RUN/metrics.jsonl" ${MAX_STEPS:+--max-steps "$MAX_STEPS"}
echo "checkpoints: $RUN/checkpoints  metrics: $RUN/metrics.jsonl"
