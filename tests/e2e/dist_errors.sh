#!/bin/sh
# End-to-end tests of the two error paths of docs/design.md invariant 3 under
# mpirun -np 3:
#   - a local failure that only one rank meets: a damaged training record
#     (a JPEG that is not one; a gzip chunk of raw images overwritten) passes
#     dataset_open's validation on every rank, and only the rank whose share
#     holds the record reads it. That rank prints one "[rank R] file:line:"
#     line and aborts; the whole job must end non-zero within 30 s.
#   - collective validation (flags, dataset, checkpoint): exactly one
#     "error:" line, from rank 0 (no "[rank R]" prefix), and exit 2.
#   - ranks that would plan different runs: --data naming different files
#     on different ranks (the same relative path in another working
#     directory, as with a stale copy staged on one node, or other paths
#     given per rank), or other flags: exit 2 naming a rank and the
#     difference, before the first step (else they wait for each other
#     forever, bounded here by LIMIT).
# And a clean 3-rank run with the parameter checksum compared every step.
. tests/e2e/lib/common.sh
e2e_setup dist-errors
LIMIT=30
MPI3="mpirun -np 3 --oversubscribe"
RUN="$BIN --arch resnet20 --stem small --batch-size 12 --lr 0.05 --log-every 2"

# Two files whose problem is in one training record only (48 images, 4 steps
# per epoch at batch 12): JPEG image 40 is text; the gzip chunk of raw image
# 5 is overwritten with 0xff bytes. Both are otherwise valid.
$PYTHON - "$T" <<'PY' || { echo "cannot make datasets"; exit 1; }
import io, sys
import h5py
import numpy as np
from PIL import Image

d = sys.argv[1]
rng = np.random.default_rng(3)


def root(f, encoding):
    f.attrs["resnet_dataset_version"] = np.int32(1)
    f.attrs["num_classes"] = np.int32(4)
    f.attrs["mean"] = np.array([0.5, 0.5, 0.5])
    f.attrs["std"] = np.array([0.25, 0.25, 0.25])
    f.attrs["encoding"] = np.bytes_(encoding)


def jpeg_split(f, name, n, bad):
    blobs = []
    for i in range(n):
        img = np.clip(60 + 40 * (i % 4) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
        b = io.BytesIO()
        Image.fromarray(img.astype(np.uint8)).save(b, format="JPEG", quality=90)
        data = b"this is not a JPEG file, only text " * 4 if i == bad else b.getvalue()
        blobs.append(np.frombuffer(data, np.uint8))
    f[name + "/jpeg"] = np.concatenate(blobs)
    f[name + "/offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    f[name + "/labels"] = (np.arange(n) % 4).astype(np.int32)


with h5py.File(d + "/bad-jpeg.h5", "w") as f:
    root(f, "jpeg")
    jpeg_split(f, "train", 48, 40)
    jpeg_split(f, "val", 12, -1)

x = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
y = (np.arange(48) % 4).astype(np.int32)
with h5py.File(d + "/bad-chunk.h5", "w") as f:
    root(f, "raw")
    f.create_dataset("train/images", data=x, chunks=(1, 16, 16, 3), compression="gzip")
    f["train/labels"] = y
    f.create_dataset("val/images", data=x[:12], chunks=(1, 16, 16, 3))
    f["val/labels"] = y[:12]
    info = f["train/images"].id.get_chunk_info_by_coord((5, 0, 0, 0))
with open(d + "/bad-chunk.h5", "r+b") as fh:
    fh.seek(info.byte_offset)
    fh.write(b"\xff" * info.size)
PY
fixture good.h5 --train 48 --val 12
fixture more.h5 --train 72 --val 12
fixture bad-label.h5 --kind bad-label

# local_error NAME PATTERN -- command...: non-zero within LIMIT s and exactly
# one "[rank R]" line, matching PATTERN. (mpirun's own "MPI_ABORT was
# invoked on rank R" banner is not required: Open MPI 4.1 sometimes fails to
# print it, "ORTE_ERROR_LOG: Out of resource in file .../show_help.c".)
local_error() {
    name=$1 pattern=$2
    shift 3
    start=$(date +%s)
    run_within "$name" -- "$@" || return
    took=$(($(date +%s) - start))
    lines=$(grep -c '^\[rank [0-9]*\]' "$T/out")
    rank=$(sed -n 's/^\[rank \([0-9]*\)\].*/\1/p' "$T/out" | head -n 1)
    if [ "$got" -eq 0 ]; then
        bad "$name: exit 0"; show "$T/out"
    elif [ "$lines" -ne 1 ] || ! grep '^\[rank ' "$T/out" | grep -q -- "$pattern"; then
        bad "$name: expected one '[rank R] ... $pattern' line, got $lines"; show "$T/out"
    else
        ok "$name: rank $rank alone, exit $got in ${took} s: $(grep '^\[rank ' "$T/out")"
    fi
}

local_error "damaged JPEG record" "/train/jpeg image 40 is not a JPEG" -- \
    $MPI3 $RUN --crop 16 --data "$T/bad-jpeg.h5" --epochs 3 --checkpoint-dir "$T/c1"
local_error "damaged gzip chunk" "/train/images\[5\]" -- \
    $MPI3 $RUN --data "$T/bad-chunk.h5" --epochs 3 --checkpoint-dir "$T/c2"

# collective NAME PATTERN -- command...: exit 2 within LIMIT s, one "error:"
# line matching PATTERN, no line from another rank.
collective() {
    name=$1 pattern=$2
    shift 3
    run_within "$name" -- "$@" || return
    errors=$(grep -c '^error: ' "$T/out")
    others=$(grep -c '^\[rank ' "$T/out")
    if [ "$got" -ne 2 ] || [ "$errors" -ne 1 ] || [ "$others" -ne 0 ] ||
        ! grep '^error: ' "$T/out" | grep -q -- "$pattern"; then
        bad "$name: exit $got, $errors 'error:' lines, $others '[rank' lines"; show "$T/out"
    else
        ok "$name: $(grep '^error: ' "$T/out")"
    fi
}

collective "malformed number" "not a whole number" -- \
    $MPI3 $RUN --data "$T/good.h5" --batch-size ten
collective "unknown flag" "unknown flag '--bogus'" -- $MPI3 $RUN --data "$T/good.h5" --bogus
collective "batch does not divide over 3 ranks" "does not divide over 3 ranks" -- \
    $MPI3 $RUN --data "$T/good.h5" --batch-size 16
collective "label out of range" "$T/bad-label.h5" -- \
    $MPI3 $RUN --data "$T/bad-label.h5" --max-steps 2 --checkpoint-dir "$T/never"
head -c 20000 /dev/urandom >"$T/step-00000004.h5"
collective "damaged checkpoint" "$T/step-00000004.h5" -- \
    $MPI3 $RUN --data "$T/good.h5" --max-steps 8 --resume "$T/step-00000004.h5" \
    --checkpoint-dir "$T/never"

# The same relative --data path, resolved in a working directory per rank:
# rank 0 finds 48 training images, ranks 1 and 2 find 72.
mkdir -p "$T/node0" "$T/node1" && cp "$T/good.h5" "$T/node0/data.h5" &&
    cp "$T/more.h5" "$T/node1/data.h5" || { echo "cannot stage datasets"; exit 1; }
cat >"$T/staged.sh" <<'EOF'
#!/bin/sh
# runs the command in node0/ for rank 0, node1/ for the others
dir=$(dirname "$0")/node$((OMPI_COMM_WORLD_RANK > 0))
cd "$dir" && exec "$@"
EOF
chmod +x "$T/staged.sh"
abs_t=$(cd "$T" && pwd) abs_bin=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
collective "a stale dataset copy on ranks 1-2" "rank 1 has train count 72, rank 0 has 48 (2 ranks" -- \
    $MPI3 "$abs_t/staged.sh" "$abs_bin" --arch resnet20 --stem small --batch-size 12 --epochs 2 \
    --data data.h5 --checkpoint-dir "$abs_t/never"
collective "other --data files per rank (MPMD)" "rank 1 has train count 72, rank 0 has 48" -- \
    mpirun --oversubscribe -np 1 $RUN --data "$T/good.h5" --epochs 2 --checkpoint-dir "$T/never" \
    : -np 2 $RUN --data "$T/more.h5" --epochs 2 --checkpoint-dir "$T/never"
collective "another --seed per rank (MPMD)" "rank 1 has '--seed 2', rank 0 has '--seed 1' (2 ranks" -- \
    mpirun --oversubscribe -np 1 $RUN --data "$T/good.h5" --checkpoint-dir "$T/never" --seed 1 \
    : -np 2 $RUN --data "$T/good.h5" --checkpoint-dir "$T/never" --seed 2

# A clean run that compares the parameter checksum across ranks every step.
$MPI3 $RUN --data "$T/good.h5" --epochs 2 --check-every 1 --checkpoint-dir "$T/clean" \
    >"$T/out" 2>&1
code=$?
if [ "$code" -eq 0 ] && ! grep -q "differ\|^error\|^\[rank\|MPI_ABORT" "$T/out" && [ -f "$T/clean/step-00000008.h5" ]; then
    ok "--check-every 1 on 3 ranks runs clean"
else
    bad "--check-every 1 on 3 ranks: exit $code"; show "$T/out"
fi

echo "dist_errors: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
