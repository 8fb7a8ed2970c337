#!/bin/sh
# Dataset prep throughput: `resnet_prep imagenet` on a generated tree of
# ImageNet-sized JPEGs (500x375, 4 classes), --encoding jpeg --size 256, with
# 1 and 2 ranks. Appends one JSON line per run to $RESULTS.
set -u
BUILD=${BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
RESULTS=${RESULTS:-$BUILD/bench/results.jsonl}
IMAGES=${PREP_BENCH_IMAGES:-200}
T=$BUILD/bench/prep
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mkdir -p "$T" "$(dirname "$RESULTS")"
if [ ! -f "$T/tree/.done-$IMAGES" ]; then
    rm -rf "$T/tree"
    "$PY" - "$T/tree" "$IMAGES" <<'PY' || exit 1
import os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:375, 0:500]
for split, count in (("train", n), ("val", max(4, n // 10))):
    for i in range(count):
        cls = "n%08d" % (i % 4)
        os.makedirs(os.path.join(root, split, cls), exist_ok=True)
        # smooth structure plus noise, so JPEG sizes are photo-like
        img = (128 + 60 * np.sin(xx / (7 + i % 13))[..., None] * np.cos(yy / 11)[..., None]
               + rng.normal(0, 25, (375, 500, 3)))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            os.path.join(root, split, cls, "img%05d.JPEG" % i), quality=90)
open(os.path.join(root, ".done-%d" % n), "w").close()
PY
fi
for ranks in 1 2; do
    rm -f "$T/out.h5"
    start=$(date +%s.%N)
    mpirun -np "$ranks" --oversubscribe --bind-to none "$BUILD/bin/resnet_prep" imagenet \
        --train "$T/tree/train" --val "$T/tree/val" --out "$T/out.h5" --size 256 \
        --encoding jpeg >"$T/log-$ranks" 2>&1 || { echo "prep_bench: failed, see $T/log-$ranks" >&2; exit 1; }
    end=$(date +%s.%N)
    total=$(find "$T/tree" -name '*.JPEG' | wc -l)
    "$PY" -c "import json,sys; s=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print(json.dumps({'side':'prep','ranks':int(sys.argv[4]),'images':n,'seconds':round(s,2),'img_per_s':round(n/s,1)}))" \
        "$start" "$end" "$total" "$ranks" | tee -a "$RESULTS"
done
