#!/bin/sh
# End-to-end tests of checkpoints under faults, on 2 ranks:
#   - a fresh run in a --checkpoint-dir that holds another run's
#     checkpoints stops with exit 2 and touches nothing; --overwrite
#     replaces them at its first checkpoint;
#   - a NaN in a checkpoint is refused by --resume, --init-from and
#     --eval-only (exit 2, naming file and tensor); an attribute out of
#     range likewise; a diverging run writes no checkpoint (exit 5) and
#     keeps the last good one;
#   - temporaries left by a killed write go at the next start; a symbolic
#     link in their place is refused;
#   - a failure in an epoch's validation keeps that epoch's checkpoint,
#     and the resumed run validates it first and ends as an uninterrupted
#     run does;
#   - kill -9 of the whole job during checkpoint writes (a few rounds of
#     tests/fuzz/ckpt_kill.sh; `make fuzz` runs 20);
#   - a full disk (a small tmpfs) during a checkpoint write: an error naming
#     the file, the previous checkpoints intact, no temporary, every rank
#     ended. Skipped, saying so, where tmpfs cannot be mounted.
. tests/e2e/lib/common.sh
e2e_setup ckpt-faults
MPI2="mpirun -np 2 --oversubscribe"
# --synthetic: one step per epoch, so a checkpoint after every step
SYN="$BIN --synthetic --stem small --crop 16 --num-classes 4 --batch-size 4 --lr 0.05"
LIMIT=60

# has_tmp DIR: whether DIR holds a *.tmp (a link too)
has_tmp() {
    for f in "$1"/*.tmp; do
        if [ -e "$f" ] || [ -L "$f" ]; then return 0; fi
    done
    return 1
}
# sums DIR: a checksum of every file in DIR, names included
sums() { (cd "$1" && ls -A && cat ./*) 2>/dev/null | md5sum; }
# one_error: the output has exactly one "error:" line (rank 0 speaks for all)
one_error() {
    [ "$(grep -c '^error:' "$T/out")" -eq 1 ] && ok "$1: one error line" ||
        { bad "$1: one error line"; show "$T/out"; }
}

# ---- a used --checkpoint-dir --------------------------------------------
expect 0 "step-00000003.h5" "run A" -- $MPI2 $SYN --arch resnet20 --max-steps 3 --keep 3 \
    --checkpoint-dir "$T/used"
cp "$T/used/step-00000003.h5" "$T/used/best.h5"
before=$(sums "$T/used")
expect 2 "--resume auto" "fresh run B in A's directory refused" -- $MPI2 $SYN --arch resnet32 \
    --max-steps 2 --keep 3 --checkpoint-dir "$T/used" && one_error "used directory"
grep -q "step-00000003.h5" "$T/out" && grep -q "overwrite" "$T/out" &&
    ok "the refusal names a checkpoint and --overwrite" || { bad "refusal text"; show "$T/out"; }
[ "$(sums "$T/used")" = "$before" ] && ok "run A's checkpoints untouched" ||
    bad "run A's checkpoints untouched: $(ls "$T/used")"
expect 0 "without --dry-run the run stops here" "--dry-run warns" -- $SYN --arch resnet32 --max-steps 2 --dry-run \
    --checkpoint-dir "$T/used"
expect 2 "exclude each other" "--overwrite with --resume" -- $SYN --arch resnet20 \
    --max-steps 2 --resume auto --overwrite --checkpoint-dir "$T/used"
expect 0 "removed 3 checkpoint(s) of the earlier run" "--overwrite replaces run A" -- \
    $MPI2 $SYN --arch resnet32 --max-steps 2 --keep 3 --overwrite --checkpoint-dir "$T/used"
[ "$(ls "$T/used" | tr '\n' ' ')" = "step-00000001.h5 step-00000002.h5 " ] &&
    ok "only run B's checkpoints are left" || bad "only run B's checkpoints: $(ls "$T/used")"
expect 0 "resumed from $T/used/step-00000002.h5" "--resume auto continues run B" -- \
    $SYN --arch resnet32 --max-steps 3 --keep 3 --resume auto --checkpoint-dir "$T/used"

# ---- bad values in a checkpoint ------------------------------------------
$PYTHON - "$T" <<'PY' || { echo "cannot make datasets"; exit 1; }
import sys
import h5py
import numpy as np

d = sys.argv[1]
rng = np.random.default_rng(5)
x = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
y = (np.arange(48) % 4).astype(np.int32)
for name in ("good", "badval"):
    with h5py.File("%s/%s.h5" % (d, name), "w") as f:
        f.attrs["resnet_dataset_version"] = np.int32(1)
        f.attrs["num_classes"] = np.int32(4)
        f.attrs["mean"] = np.array([0.5, 0.5, 0.5])
        f.attrs["std"] = np.array([0.25, 0.25, 0.25])
        f.attrs["encoding"] = np.bytes_("raw")
        f["train/images"] = x[:32]
        f["train/labels"] = y[:32]
        f.create_dataset("val/images", data=x[32:], chunks=(1, 16, 16, 3), compression="gzip")
        f["val/labels"] = y[32:]
        info = f["val/images"].id.get_chunk_info_by_coord((3, 0, 0, 0))
    if name == "badval":  # one validation record damaged: validation fails there
        with open("%s/%s.h5" % (d, name), "r+b") as fh:
            fh.seek(info.byte_offset)
            fh.write(b"\xff" * info.size)
PY
DATA="$BIN --arch resnet20 --stem small --batch-size 8 --lr 0.05 --log-every 4"
expect 0 "" "a good run on data" -- $MPI2 $DATA --data "$T/good.h5" --epochs 2 \
    --checkpoint-dir "$T/straight"
$PYTHON - "$T/straight/step-00000008.h5" "$T" <<'PY' || { echo "cannot make bad checkpoints"; exit 1; }
import shutil, sys
import h5py
import numpy as np

src, d = sys.argv[1], sys.argv[2]
def variant(name, change):
    shutil.copy(src, "%s/%s.h5" % (d, name))
    with h5py.File("%s/%s.h5" % (d, name), "a") as f:
        change(f)
def nan(f): f["model/layer1.0.conv1.weight"][0, 0, 0, 0] = np.nan
def step(f): f.attrs["step"] = np.int64(-5)
def classes(f): f.attrs["num_classes"] = np.int64(2**32 + 4)
def patience(f): f["scheduler"].attrs["patience"] = np.int64(2**31)
def huge_momentum(f): f["optimizer/momentum/fc.bias"][...] = np.float32(3e38)
def external(f):
    del f["model/fc.bias"]
    f["model/fc.bias"] = h5py.ExternalLink(src, "/model/fc.bias")
for n, c in [("nan", nan), ("step", step), ("classes", classes), ("patience", patience),
             ("diverge", huge_momentum), ("external", external)]:
    variant(n, c)
PY
expect 2 "layer1.0.conv1.weight holds NaN" "NaN refused by --resume" -- $MPI2 $DATA \
    --data "$T/good.h5" --epochs 3 --resume "$T/nan.h5" --checkpoint-dir "$T/n1" &&
    one_error "NaN on resume"
grep -q "$T/nan.h5" "$T/out" && ok "the refusal names the file" || bad "the refusal names the file"
expect 2 "layer1.0.conv1.weight holds NaN" "NaN refused by --init-from" -- $DATA \
    --data "$T/good.h5" --epochs 3 --init-from "$T/nan.h5" --checkpoint-dir "$T/n2"
expect 2 "layer1.0.conv1.weight holds NaN" "NaN refused by --eval-only" -- $DATA \
    --data "$T/good.h5" --eval-only --init-from "$T/nan.h5"
expect 2 "fc.bias is refused: its data is not stored in the file (an external link" \
    "a tensor behind an external link refused" -- $DATA \
    --data "$T/good.h5" --eval-only --init-from "$T/external.h5"
expect 2 "$T/step.h5: root attribute step is -5" "step -5 refused" -- $DATA \
    --data "$T/good.h5" --epochs 3 --resume "$T/step.h5" --checkpoint-dir "$T/n3"
expect 2 "num_classes is 4294967300" "num_classes 2^32+4 refused" -- $DATA \
    --data "$T/good.h5" --epochs 3 --resume "$T/classes.h5" --checkpoint-dir "$T/n4"
expect 2 "patience of /scheduler is 2147483648" "patience 2^31 refused" -- $DATA \
    --data "$T/good.h5" --epochs 3 --resume "$T/patience.h5" --checkpoint-dir "$T/n5"

# fc.bias at -3.3e38 and its momentum at 3e38 (finite, so they load; equal
# biases leave the loss finite) overflow fc.bias to -inf in the first step:
# the checkpoint after it is refused, the run stops with exit 5 and the
# last good checkpoint stays. (Synthetic data: one step per epoch.)
mkdir -p "$T/div"
expect 0 "" "a good synthetic checkpoint" -- $SYN --arch resnet20 --max-steps 1 \
    --checkpoint-dir "$T/div"
$PYTHON - "$T/div/step-00000001.h5" <<'PY'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "a") as f:
    f["optimizer/momentum/fc.bias"][...] = np.float32(3e38)
    f["model/fc.bias"][...] = np.float32(-3.3e38)
PY
before=$(sums "$T/div")
expect 5 "not writing checkpoint $T/div/step-00000002.h5: /model/fc.bias holds" \
    "a diverged state is not written" -- $MPI2 $SYN --arch resnet20 --momentum 1 \
    --max-steps 3 --resume auto --checkpoint-dir "$T/div"
[ "$(sums "$T/div")" = "$before" ] && ok "the last good checkpoint stays, nothing else written" ||
    bad "after the refusal: $(ls -l "$T/div")"

# ---- leftovers -------------------------------------------------------------
cp -r "$T/straight" "$T/left"
echo "half written" >"$T/left/step-00000012.h5.tmp"
echo "half written" >"$T/left/best.h5.tmp"
expect 0 "removed $T/left/step-00000012.h5.tmp" "stale temporaries removed at start" -- \
    $DATA --data "$T/good.h5" --epochs 3 --resume auto --checkpoint-dir "$T/left"
has_tmp "$T/left" && bad "temporaries left: $(ls "$T/left")" ||
    ok "no temporary left after the resumed run"
# (absolute: a relative link resolves from its own folder)
ln -s "$(pwd)/$T/elsewhere.h5" "$T/left/step-00000016.h5.tmp"
expect 2 "symbolic link" "a symbolic link as temporary refused" -- $DATA \
    --data "$T/good.h5" --epochs 4 --resume auto --checkpoint-dir "$T/left"
[ ! -e "$T/elsewhere.h5" ] && ok "nothing written through the link" ||
    bad "nothing written through the link"

# ---- checkpoint before validation -----------------------------------------
# The first validation fails (a damaged record): the epoch's checkpoint is
# already written. Resumed on the intact copy (same fingerprint), the run
# validates that epoch first and ends where the uninterrupted run ends.
$MPI2 $DATA --data "$T/badval.h5" --epochs 2 --checkpoint-dir "$T/val" >"$T/val.log" 2>&1 &
pid=$!
if exits_within "$pid" "$LIMIT"; then
    wait "$pid"; code=$?
else
    code=124
fi
[ "$code" -ne 0 ] && [ "$code" -ne 124 ] && [ -f "$T/val/step-00000004.h5" ] &&
    ok "validation failed (exit $code) after the epoch's checkpoint was written" ||
    { bad "checkpoint before validation: exit $code, $(ls "$T/val")"; show "$T/val.log"; }
expect 0 "val epoch 1" "the resumed run validates the pending epoch" -- $MPI2 $DATA \
    --data "$T/good.h5" --epochs 2 --resume auto --checkpoint-dir "$T/val"
[ "$(grep -c 'val epoch' "$T/out")" -eq 2 ] && ok "both epochs validated once" ||
    { bad "both epochs validated once"; show "$T/out"; }
$PYTHON tests/fixtures/compare_checkpoints.py "$T/straight/step-00000008.h5" \
    "$T/val/step-00000008.h5" --attrs step,epoch,lr,best_metric >"$T/cmp" 2>&1 &&
    ok "interrupted in validation + resumed = uninterrupted: $(head -n 1 "$T/cmp")" ||
    { bad "interrupted in validation + resumed = uninterrupted"; show "$T/cmp"; }
$PYTHON - "$T/straight/best.h5" "$T/val/best.h5" <<'PY' && ok "the same best.h5 and plateau state" || bad "the same best.h5 and plateau state"
import sys
import h5py
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
assert a.attrs["step"] == b.attrs["step"] and a.attrs["best_metric"] == b.attrs["best_metric"]
assert dict(a["scheduler"].attrs) == dict(b["scheduler"].attrs), (dict(a["scheduler"].attrs), dict(b["scheduler"].attrs))
PY

# ---- kill -9 during checkpoint writes --------------------------------------
if BUILD="$BUILD" sh tests/fuzz/ckpt_kill.sh "${CKPT_KILL_ROUNDS:-2}" >"$T/kill.log" 2>&1; then
    ok "kill -9 during checkpoint writes: $(tail -n 1 "$T/kill.log")"
else
    bad "kill -9 during checkpoint writes"; show "$T/kill.log" 20
fi

# ---- a full disk -----------------------------------------------------------
# Checkpoints of resnet20 are about 2.2 MB: room for two and a half.
size=$(stat -c %s "$T/div/step-00000001.h5")
kib=$((size * 5 / 2 / 1024))
mkdir -p "$T/full"
if mount -t tmpfs -o size="${kib}k" tmpfs "$T/full" 2>/dev/null; then
    trap 'umount "$T/full" 2>/dev/null' EXIT INT TERM
    $MPI2 $SYN --arch resnet20 --max-steps 6 --keep 2 --checkpoint-dir "$T/full" \
        >"$T/full.log" 2>&1 &
    pid=$!
    if exits_within "$pid" "$LIMIT"; then
        wait "$pid"; code=$?
    else
        code=124
    fi
    if [ "$code" -ne 0 ] && [ "$code" -ne 124 ] &&
        grep -q "writing checkpoint $T/full/step-0000000[0-9].h5 failed: No space left on device" \
            "$T/full.log"; then
        ok "full disk: exit $code, the error names the checkpoint and the cause"
    else
        bad "full disk: exit $code"; show "$T/full.log"
    fi
    has_tmp "$T/full" && bad "full disk: temporary left: $(ls "$T/full")" ||
        ok "full disk: no temporary left ($(ls "$T/full" | tr '\n' ' '))"
    [ "$(pgrep -fc "checkpoint-dir $T/full")" -eq 0 ] && ok "full disk: no rank left running" ||
        bad "full disk: ranks still running"
    latest=$(ls "$T/full" | tail -n 1)
    expect 0 "resumed from $T/full/$latest" "full disk: the previous checkpoints resume" -- \
        $MPI2 $SYN --arch resnet20 --max-steps 6 --resume auto --dry-run --checkpoint-dir "$T/full"
    umount "$T/full"
    trap - EXIT INT TERM
else
    echo "SKIP: full disk: cannot mount a tmpfs here (needs root); not tested"
fi

echo "ckpt_faults: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
