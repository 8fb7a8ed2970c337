#!/bin/sh
# End-to-end tests of the image decoder and the dataset reader against
# hostile input:
#   - resnet_prep imagenet: a truncated JPEG does not make the next good image
#     fail (every decode is independent), and a few-KB progressive JPEG whose
#     header claims 40000 x 40000 is skipped with a warning before any pixel
#     memory is allocated (run under a 2 GB address-space limit);
#   - resnet_dist --dry-run refuses, with exit 2 and one line naming the file
#     and the dataset: data stored outside the file (external links, external
#     raw storage, virtual datasets; the targets are FIFOs, so a regression
#     would block: every run is bounded), a FIFO as --data, declared sizes
#     the file or the machine cannot hold, images over --max-pixels, and
#     evaluated images smaller than --crop (checked at start-up, naming the
#     split and the first offending index, also across 2 ranks).
. tests/e2e/lib/common.sh
e2e_setup reader-hostile
PREP="$BUILD/bin/resnet_prep"
LIMIT=60

$PYTHON - "$T" <<'PY' || { echo "cannot make inputs"; exit 1; }
import io, os, sys
import h5py
import numpy as np
from PIL import Image

d = sys.argv[1]
rng = np.random.default_rng(5)


def jpeg(w, h, **kw):
    b = io.BytesIO()
    px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(px).save(b, format="JPEG", quality=90, **kw)
    return b.getvalue()


def bomb():
    """A progressive 64x64 JPEG whose frame header (SOF2) claims 40000 x 40000."""
    p = jpeg(64, 64, progressive=True)
    i = p.index(b"\xff\xc2")
    side = (40000).to_bytes(2, "big")
    return p[:i + 5] + side + side + p[i + 9:]


# Class folders for resnet_prep: a_00trunc sorts before a_1 in its class.
for split, n in (("train", 2), ("val", 1)):
    for c in "ab":
        os.makedirs(f"{d}/in/{split}/{c}")
        for i in range(n):
            open(f"{d}/in/{split}/{c}/{c}_{i + 1}.JPEG", "wb").write(jpeg(40, 36))
open(f"{d}/in/train/a/a_00trunc.JPEG", "wb").write(jpeg(40, 36)[:300])
open(f"{d}/in/train/b/b_bomb.JPEG", "wb").write(bomb())


def root(f, encoding):
    f.attrs["resnet_dataset_version"] = np.int32(1)
    f.attrs["num_classes"] = np.int32(2)
    f.attrs["mean"] = np.array([0.5, 0.5, 0.5])
    f.attrs["std"] = np.array([0.25, 0.25, 0.25])
    f.attrs["encoding"] = np.bytes_(encoding)


def labels(n):
    return (np.arange(n) % 2).astype(np.int32)


def raw(name, val_side=32, **over):
    with h5py.File(f"{d}/{name}", "w") as f:
        root(f, "raw")
        f["train/images"] = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        f["train/labels"] = labels(8)
        f["val/images"] = rng.integers(0, 256, (8, val_side, val_side, 3), dtype=np.uint8)
        f["val/labels"] = labels(8)
        for key, make in over.items():
            del f[key]
            make(f, key)


def jpeg_file(name, val_blobs, test_blobs=None):
    with h5py.File(f"{d}/{name}", "w") as f:
        root(f, "jpeg")
        splits = [("train", [jpeg(32, 32) for _ in range(8)]), ("val", val_blobs)]
        for split, blobs in splits + ([("test", test_blobs)] if test_blobs else []):
            f[split + "/jpeg"] = np.frombuffer(b"".join(blobs), np.uint8)
            f[split + "/offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
            f[split + "/labels"] = labels(len(blobs))


raw("good.h5")
raw("small-val.h5", val_side=16)
raw("ext-link.h5", **{"train/labels": lambda f, k: f.__setitem__(
    k, h5py.ExternalLink("pipe.h5", "/labels"))})
raw("ext-group.h5", **{"val": lambda f, k: f.__setitem__(k, h5py.ExternalLink("pipe.h5", "/"))})
# External raw storage names its file as given (absolute here); the script
# then replaces that file with a FIFO.
raw("ext-raw.h5", **{"train/images": lambda f, k: f.create_dataset(
    k, data=np.zeros((8, 32, 32, 3), np.uint8),
    external=[(os.path.abspath(d + "/raw-pipe.bin"), 0, 8 * 32 * 32 * 3)])})


def virtual(f, k):
    layout = h5py.VirtualLayout(shape=(8, 32, 32, 3), dtype=np.uint8)
    layout[:] = h5py.VirtualSource("good.h5", "val/images", shape=(8, 32, 32, 3))
    f.create_virtual_dataset(k, layout)


raw("virtual.h5", **{"val/images": virtual})
# Huge declared shapes in chunked datasets cost no disk: no chunk is written.
raw("huge-labels.h5", **{"train/labels": lambda f, k: f.create_dataset(
    k, shape=(2**40,), dtype=np.int32, chunks=(1024,))})
raw("huge-gzip-labels.h5", **{"train/labels": lambda f, k: f.create_dataset(
    k, shape=(2**36,), dtype=np.int32, chunks=(1024,), compression="gzip")})
# Labels of as many bytes as the machine has memory, compressed, in a file
# padded to hold that much at deflate's best ratio: only the memory bound
# refuses them. (Skipped on machines with more than 64 GiB.)
mem = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024
if mem <= 64 << 30:
    raw("memory-labels.h5", **{"train/labels": lambda f, k: (
        f.create_dataset(k, shape=(mem // 4,), dtype=np.int32, chunks=(4096,),
                         compression="gzip"),
        f.create_dataset("pad", data=np.zeros(mem // 1000, np.uint8)))})
with h5py.File(f"{d}/huge-images.h5", "w") as f:
    root(f, "raw")
    for split in ("train", "val"):
        f.create_dataset(split + "/images", shape=(1, 2**30, 2**30, 3), dtype=np.uint8,
                         chunks=(1, 64, 64, 3))
        f[split + "/labels"] = labels(1)

good = [jpeg(32, 32) for _ in range(8)]
jpeg_file("good-jpeg.h5", good)
jpeg_file("small-jpeg-5.h5", good[:5] + [jpeg(16, 40)] + good[6:])
jpeg_file("small-jpeg-2-6.h5", good[:2] + [jpeg(20, 20)] + good[3:6] + [jpeg(8, 8)] + good[7:])
jpeg_file("bomb-jpeg.h5", good[:3] + [bomb()] + good[4:])
jpeg_file("small-test.h5", good, good[:1] + [jpeg(12, 30)] + good[2:])
PY
rm -f "$T/raw-pipe.bin"
mkfifo "$T/pipe.h5" "$T/raw-pipe.bin" "$T/fifo.h5" || { echo "cannot make FIFOs"; exit 1; }

# --- resnet_prep imagenet ---------------------------------------------------

# bounded NAME CODE PATTERN -- command...: exit CODE within LIMIT s with a
# line matching PATTERN (a regression that blocks on a FIFO is killed).
bounded() {
    name=$1 code=$2 pattern=$3
    shift 4
    run_within "$name" -- "$@" || return 1
    if [ "$got" -ne "$code" ]; then
        bad "$name: exit $got, expected $code"; show "$T/out"; return 1
    fi
    if ! grep -q -- "$pattern" "$T/out"; then
        bad "$name: output lacks '$pattern'"; show "$T/out"; return 1
    fi
    ok "$name: $(grep -- "$pattern" "$T/out" | head -n 1)"
}

# 2 GB of address space: decoding the bomb would need about 5 GB. GNU time,
# where installed, reports the peak resident set.
TIME=
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f maxrss_kb=%M"
(
    # shellcheck disable=SC3045 # dash and bash both have ulimit -v
    ulimit -v 2000000
    exec $TIME "$PREP" imagenet --train "$T/in/train" --val "$T/in/val" --size 32 \
        --out "$T/prep.h5"
) >"$T/prep.log" 2>&1
code=$?
cp "$T/prep.log" "$T/out"
if [ "$code" -ne 0 ]; then
    bad "prep of the hostile folder: exit $code"; show "$T/out"
else
    if grep -q "a_00trunc.JPEG: truncated or corrupt JPEG" "$T/out" &&
        ! grep -q "a_1.JPEG" "$T/out"; then
        ok "prep: the truncated JPEG is skipped, the next one in its class is kept"
    else
        bad "prep: truncated JPEG and its successor"; show "$T/out"
    fi
    if grep -q "b_bomb.JPEG: JPEG too large (40000 x 40000" "$T/out"; then
        ok "prep: the 40000 x 40000 bomb is skipped with a warning"
    else
        bad "prep: the bomb was not refused by size"; show "$T/out"
    fi
    n=$($PYTHON -c "import h5py, sys; print(len(h5py.File(sys.argv[1])['train/labels']))" \
        "$T/prep.h5")
    if [ "$n" = 4 ]; then
        ok "prep: 4 of 6 training images kept"
    else
        bad "prep: $n training images kept, expected 4"; show "$T/out"
    fi
    rss=$(sed -n 's/^maxrss_kb=//p' "$T/out")
    if [ -z "$TIME" ]; then
        ok "prep: peak RSS not measured (no /usr/bin/time)"
    elif [ -n "$rss" ] && [ "$rss" -lt 500000 ]; then
        ok "prep: peak RSS $rss KB"
    else
        bad "prep: peak RSS ${rss:-unknown} KB"; show "$T/out"
    fi
fi

bounded "prep --max-pixels below the photos' size" 2 \
    "b_1.JPEG: JPEG too large (40 x 36, more than the limit of 1439 pixels" -- \
    "$PREP" imagenet --train "$T/in/train" --val "$T/in/val" --size 32 \
    --out "$T/prep-limit.h5" --max-pixels 1439

# --- resnet_dist --dry-run --------------------------------------------------

RUN="$BIN --arch resnet20 --stem small --batch-size 4 --crop 24 --dry-run"
refused() { # NAME PATTERN FILE [flags]: exit 2, one error line naming FILE
    name=$1 pattern=$2 file=$3
    shift 3
    bounded "$name" 2 "^error: $file: .*$pattern" -- $RUN --data "$file" "$@"
}

bounded "good raw file passes --dry-run" 0 "dry run" -- $RUN --data "$T/good.h5"
bounded "good JPEG file passes --dry-run" 0 "dry run" -- $RUN --data "$T/good-jpeg.h5"
refused "external link to a FIFO" "/train/labels is refused.*(an external link)" \
    "$T/ext-link.h5"
refused "split group is an external link" "/val/.* is refused.*(an external link)" \
    "$T/ext-group.h5"
refused "external raw storage in a FIFO" "/train/images is refused.*(external raw storage)" \
    "$T/ext-raw.h5"
refused "virtual dataset" "/val/images is refused.*(a virtual dataset)" "$T/virtual.h5"
refused "FIFO as --data" "not a regular file" "$T/fifo.h5"
refused "2^40 labels declared" "/train/labels declares shape (1099511627776,)" \
    "$T/huge-labels.h5"
refused "2^36 compressed labels declared" "/train/labels declares shape .* even compressed" \
    "$T/huge-gzip-labels.h5"
if [ -f "$T/memory-labels.h5" ]; then
    refused "labels larger than half the memory" \
        "/train/labels declares .* more than half of this machine's .* bytes of memory" \
        "$T/memory-labels.h5"
fi
refused "2^30 x 2^30 images declared" \
    "/train/images declares images of 1073741824 x 1073741824 pixels" "$T/huge-images.h5"
refused "--max-pixels below the stored size" "/train/images declares images of 32 x 32" \
    "$T/good.h5" --max-pixels 1000
refused "raw val smaller than --crop" "crop 24 is larger than the /val images (16x16)" \
    "$T/small-val.h5"
refused "JPEG val image smaller than --crop" "/val/jpeg image 5 is 16x40, smaller than the crop 24" \
    "$T/small-jpeg-5.h5"
refused "JPEG val bomb" "/val/jpeg image 3 declares 40000 x 40000 pixels" "$T/bomb-jpeg.h5"
bounded "first small JPEG over 2 ranks" 2 "^error: .*/val/jpeg image 2 is 20x20" -- \
    mpirun -np 2 --oversubscribe $RUN --data "$T/small-jpeg-2-6.h5"
bounded "training does not read /test" 0 "dry run" -- $RUN --data "$T/small-test.h5"
# the checkpoint --eval-only needs (it takes the model and the crop from it)
$BIN --arch resnet20 --stem small --batch-size 4 --crop 24 --data "$T/good-jpeg.h5" \
    --max-steps 1 --checkpoint-dir "$T/ckpt" >"$T/ckpt.log" 2>&1 || bad "a checkpoint to evaluate"
refused "--eval-only --split test checks /test" "/test/jpeg image 1 is 12x30" \
    "$T/small-test.h5" --eval-only --split test --init-from "$T/ckpt/step-00000001.h5"

echo "reader_hostile: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
