#!/bin/sh
# The longer Fashion-MNIST recipe: the paper's CIFAR ResNet-20 with random
# crops and flips for 70 epochs, LR 0.1 cut by 10 whenever validation top-1
# has not improved for 4 epochs. The LR cuts and best.h5 are decided on the
# 5,000 training images held out by `resnet_prep idx --val-split 5000`; the
# test split is only read once, at the end, to evaluate best.h5.
# About 80 minutes of training on 2 cores (docs/performance-history.md).
# Same environment as datasets/run_default.sh (RANKS, RUN_ROOT, RESUME=1, ...).
set -e
cd "$(dirname "$0")/../.."
ARCH=${ARCH:-resnet20} EPOCHS=${EPOCHS:-70} AUG=${AUG:-cifar} WEIGHT_DECAY=${WEIGHT_DECAY:-5e-4} \
    PATIENCE=${PATIENCE:-3} RUN_ROOT=${RUN_ROOT:-runs/fashion-mnist-long} \
    exec sh datasets/run_default.sh
