#!/bin/sh
# prep_hostile.sh - resnet_prep against hostile inputs and faults:
#   1. FIFOs (in a class folder, as a label file, as the file to inspect) are
#      skipped or refused at once, never waited on;
#   2. symlink loops in class folders: each folder is walked once, with a
#      warning naming the link, and every image is taken once;
#   3. temporary files: none left after a failure or SIGTERM (1 process and
#      mpirun), stale ones of crashed runs removed at the next start (only
#      this host's, of dead processes, regular files), a symlink planted at
#      the temporary name is refused and its target left alone;
#   4. an existing --out is replaced only with --force, for every command;
#   5. inspect/verify on crafted files (h5py): one "error:" line naming the
#      file and the object, exit 2, no crash (run with BUILD=build-san to
#      have the sanitizers watch);
#   6. a full disk (a 2 MiB tmpfs; skipped with a SKIPPED line where mount is
#      not permitted): a clear error naming the file, the previous --out
#      intact, no temporary file left.
# Every run is bounded by timeout(1), so a regression fails instead of
# hanging. Needs $BUILD/bin/resnet_prep, $BUILD/tests/test_prep_cli (its
# --make-tree writes the image folders) and python3 with h5py.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
PREP="$BUILD/bin/resnet_prep"
T="$BUILD/tmp/e2e-prep-hostile"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
MPI2="mpirun -np 2 --oversubscribe"
LIMIT=${PREP_HOSTILE_LIMIT:-60}
. tests/e2e/lib/common.sh

for f in "$PREP" "$BUILD/tests/test_prep_cli"; do
    if [ ! -x "$f" ]; then
        echo "prep_hostile: $f is not built"
        echo "prep_hostile: 0 passed, 1 failed"
        exit 1
    fi
done
umount "$T/small" 2>/dev/null # left mounted by a run that was killed
rm -rf "$T" && mkdir -p "$T"
T=$(cd "$T" && pwd)
HOST=$(hostname)
"$BUILD/tests/test_prep_cli" --make-tree "$T/in" >/dev/null || { echo "cannot make inputs"; exit 1; }

# leftovers DIR: the temporary files in DIR, if any
leftovers() { find "$1" -name '*.tmp-*' 2>/dev/null; }
# images FILE SPLIT: the record count inspect prints for /SPLIT
images() { "$PREP" inspect "$1" 2>/dev/null | sed -n "s|^/$2 *\([0-9]*\) images.*|\1|p"; }

# ------------------------------------------------------------------ 1. FIFOs
cp -r "$T/in/train" "$T/fifo_train"
mkfifo "$T/fifo_train/n01/pipe.jpg" "$T/fifo_train/n02/pipe.JPEG" "$T/labels.fifo" "$T/in.fifo"
expect 0 "warning: skipped $T/fifo_train/n01/pipe.jpg: not a regular file (a FIFO)" \
    "FIFO in a class folder: skipped with a warning" -- \
    timeout "$LIMIT" "$PREP" imagenet --train "$T/fifo_train" --val "$T/in/val" --size 16 \
    --out "$T/fifo.h5"
expect 2 "error: --val-labels $T/labels.fifo: not a regular file (a FIFO)" \
    "FIFO as --val-labels: refused" -- \
    timeout "$LIMIT" "$PREP" imagenet --train "$T/in/train" --val "$T/in/valflat" --size 16 \
    --val-labels "$T/labels.fifo" --out "$T/fifo2.h5"
expect 2 "error: $T/in.fifo: cannot read: not a regular file (a FIFO)" \
    "FIFO given to inspect: refused" -- timeout "$LIMIT" "$PREP" inspect "$T/in.fifo"

# ---------------------------------------------------------- 2. symlink loops
cp -r "$T/in/train" "$T/loop_train"
timeout "$LIMIT" "$PREP" imagenet --train "$T/loop_train" --val "$T/in/val" --size 16 \
    --out "$T/noloop.h5" >"$T/noloop.log" 2>&1
want=$(images "$T/noloop.h5" train)
ln -s . "$T/loop_train/n01/self"                 # one loop: every image 41 times before
ln -s . "$T/loop_train/n02/l1"                   # two loops: 2^64 paths before
ln -s . "$T/loop_train/n02/l2"
ln -s ../../n03 "$T/loop_train/n01/sub/n03_again"   # a second link to another class
expect 0 "warning: --train $T/loop_train/n01/self: skipped: the same folder as $T/loop_train/n01" \
    "symlink loops: walked once, with a warning naming the link" -- \
    timeout "$LIMIT" "$PREP" imagenet --train "$T/loop_train" --val "$T/in/val" --size 16 \
    --out "$T/loop.h5"
grep -q "warning: --train $T/loop_train/n03: skipped: the same folder as $T/loop_train/n01/sub/n03_again" "$T/out" ||
    grep -q "warning: --train $T/loop_train/n01/sub/n03_again: skipped" "$T/out"
found=$?
got=$(images "$T/loop.h5" train)
if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$found" = 0 ]; then
    ok "symlink loops: $got training images, as without the links"
else
    bad "symlink loops: $got training images, expected ${want:-?} (second link named: $found)"
    show "$T/out"
fi

# ----------------------------------------------------- 3. temporary files
# Stale files of dead processes on this host go; anything else stays.
mkdir -p "$T/stale"
echo victim >"$T/stale/victim"
echo old >"$T/stale/o.h5.tmp-$HOST-99999999"              # dead process: removed
echo live >"$T/stale/o.h5.tmp-$HOST-$$"                   # this shell is alive: kept
echo other >"$T/stale/o.h5.tmp-otherhost-99999998"       # another host's: kept
echo near >"$T/stale/o.h5x.tmp-$HOST-99999997"           # another --out: kept
ln -s victim "$T/stale/o.h5.tmp-$HOST-99999996"          # not a regular file: kept
expect 0 "warning: removed $T/stale/o.h5.tmp-$HOST-99999999: a temporary file left by an earlier run" \
    "stale temporary file of a crashed run removed" -- \
    timeout "$LIMIT" "$PREP" synthetic --train 8 --val 2 --size 8 --out "$T/stale/o.h5"
if [ ! -e "$T/stale/o.h5.tmp-$HOST-99999999" ] && [ -e "$T/stale/o.h5.tmp-$HOST-$$" ] &&
    [ -e "$T/stale/o.h5.tmp-otherhost-99999998" ] && [ -e "$T/stale/o.h5x.tmp-$HOST-99999997" ] &&
    [ -L "$T/stale/o.h5.tmp-$HOST-99999996" ] && [ "$(cat "$T/stale/victim")" = victim ]; then
    ok "only stale temporary files were removed"
else
    bad "sweep removed the wrong files:"; ls -la "$T/stale"
fi

# A symlink planted at the temporary name (exec keeps the shell's pid, so
# the name is known in advance; both the old and the new name are planted).
mkdir -p "$T/plant"
echo precious >"$T/plant/victim"
expect 2 "cannot create the temporary file $T/plant/o.h5.tmp-$HOST-[0-9]*: something is already there (a symlink" \
    "symlink planted at the temporary name: refused" -- \
    timeout "$LIMIT" sh -c 'ln -s victim "$1.tmp-$2-$$"; ln -s victim "$1.tmp-$$"; exec "$3" synthetic --train 8 --val 2 --size 8 --out "$1"' \
    sh "$T/plant/o.h5" "$HOST" "$PREP"
if [ "$(cat "$T/plant/victim")" = precious ] && [ ! -e "$T/plant/o.h5" ]; then
    ok "planted symlink: its target untouched, no output"
else
    bad "planted symlink: target changed or output written"; ls -la "$T/plant"
fi

# Failure paths leave nothing: an input error (--strict), 1 process and 2.
mkdir -p "$T/fail"
for np in 1 2; do
    run=""
    [ "$np" = 2 ] && run=$MPI2
    expect 2 "(--strict: bad images are errors)" "--strict failure, $np process(es): exit 2" -- \
        timeout "$LIMIT" $run "$PREP" imagenet --train "$T/in/train" --val "$T/in/val" --size 16 \
        --strict --out "$T/fail/strict.h5"
    if [ -z "$(leftovers "$T/fail")" ] && [ ! -e "$T/fail/strict.h5" ]; then
        ok "--strict failure, $np process(es): no temporary file left"
    else
        bad "--strict failure, $np process(es): left $(leftovers "$T/fail")"
    fi
done

# SIGTERM while writing: the temporary file goes with the process.
for np in 1 2; do
    run=""
    [ "$np" = 2 ] && run=$MPI2
    rm -rf "$T/sig" && mkdir -p "$T/sig"
    $run "$PREP" synthetic --train 200000 --val 10 --size 32 --out "$T/sig/big.h5" \
        >"$T/sig.log" 2>&1 &
    pid=$!
    n=300
    while [ -z "$(leftovers "$T/sig")" ] && [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        n=$((n - 1))
    done
    seen=$(leftovers "$T/sig")
    kill -TERM "$pid" 2>/dev/null
    exits_within "$pid" 30
    ended=$?
    wait "$pid" 2>/dev/null
    if [ -n "$seen" ] && [ "$ended" = 0 ] && [ -z "$(leftovers "$T/sig")" ] && [ ! -e "$T/sig/big.h5" ]; then
        ok "SIGTERM, $np process(es): temporary file removed"
    else
        bad "SIGTERM, $np process(es): seen '$seen', ended $ended, left '$(leftovers "$T/sig")'"
        show "$T/sig.log"
    fi
done

# --------------------------------------------------------------- 4. --force
mkdir -p "$T/force"
timeout "$LIMIT" "$PREP" synthetic --train 8 --val 2 --size 8 --out "$T/force/o.h5" >/dev/null 2>&1
cp "$T/force/o.h5" "$T/force/copy.h5"
F="$T/force/o.h5"
for cmd in "synthetic --train 8 --val 2 --size 4" "imagenet --train $T/in/train --val $T/in/val" \
    "cifar10 --in $T/in/cifar10" "cifar100 --in $T/in/cifar100" \
    "idx --train-images x --train-labels x --test-images x --test-labels x"; do
    sub=${cmd%% *}
    # shellcheck disable=SC2086 # cmd is a word list
    expect 2 "error: --out $F: already exists; pass --force to replace it" \
        "$sub: existing --out refused without --force" -- timeout "$LIMIT" "$PREP" $cmd --out "$F"
    "$PREP" "$sub" --help | grep -q -- "--force" || bad "$sub --help does not list --force"
done
if cmp -s "$F" "$T/force/copy.h5"; then ok "refused runs left --out unchanged"; else bad "--out changed"; fi
expect 0 "" "--force replaces --out" -- \
    timeout "$LIMIT" "$PREP" synthetic --train 8 --val 2 --size 4 --out "$F" --force
if [ "$(images "$F" train)" = 8 ] && ! cmp -s "$F" "$T/force/copy.h5"; then
    ok "--force: the new file is in place"
else
    bad "--force: --out not replaced"
fi

# ------------------------------------------------- 5. crafted dataset files
if "$PYTHON" - "$T" <<'PY'; then
import sys
import h5py
import numpy as np

d = sys.argv[1]


def base(path, enc="raw", n=4, hw=(8, 8)):
    f = h5py.File(path, "w")
    f.attrs["resnet_dataset_version"] = np.int32(1)
    f.attrs["num_classes"] = np.int32(2)
    f.attrs["mean"] = np.array([0.5, 0.5, 0.5])
    f.attrs["std"] = np.array([0.25, 0.25, 0.25])
    f.attrs["encoding"] = np.bytes_(enc)
    for s in ("train", "val"):
        g = f.create_group(s)
        g["labels"] = np.zeros(n, np.int32)
        g["images"] = np.zeros((n,) + hw + (3,), np.uint8)
    return f


vl = h5py.string_dtype()
with base(d + "/enc_vlen64.h5") as f:  # overflowed the stack
    del f.attrs["encoding"]
    f.attrs.create("encoding", ["raw"] * 64, dtype=vl)
with base(d + "/enc_fixed4096.h5") as f:  # overflowed the heap
    del f.attrs["encoding"]
    f.attrs["encoding"] = np.array([b"raw"] * 4096, dtype="S3")
with base(d + "/zero_h.h5", hw=(0, 8)):  # divided by zero in verify
    pass
with base(d + "/classes_array.h5") as f:
    f.attrs["num_classes"] = np.array([2, 2], np.int32)
with base(d + "/mean_text.h5") as f:
    f.attrs["mean"] = np.bytes_("0.5")
with base(d + "/labels_2d.h5") as f:
    del f["train/labels"]
    f["train/labels"] = np.zeros((4, 1), np.int32)
with base(d + "/labels_float.h5") as f:
    del f["train/labels"]
    f["train/labels"] = np.zeros(4, np.float32)
with base(d + "/names_long.h5") as f:
    f["classes"] = np.array([b"a" * 100000, b"b"], dtype="S100000")
with base(d + "/names_count.h5") as f:
    f["classes"] = np.array([b"a", b"b", b"c"])
with base(d + "/train_external.h5") as f:
    del f["train"]
    f["train"] = h5py.ExternalLink("zero_h.h5", "/train")
with base(d + "/jpeg_huge.h5") as f:
    f.attrs["encoding"] = np.bytes_("jpeg")
    for s in ("train", "val"):
        del f[s + "/images"]
        f.create_dataset(s + "/jpeg", shape=(1 << 40,), dtype=np.uint8, chunks=(1 << 16,))
        f[s + "/offsets"] = np.array([0, 1 << 39, (1 << 39) + 1, (1 << 39) + 2, 1 << 40], np.int64)
PY
    # name [command] expected-pattern
    for c in "enc_vlen64 inspect root attribute encoding is string with 64 elements, expected a string" \
        "enc_fixed4096 verify root attribute encoding is string with 4096 elements, expected a string" \
        "zero_h verify /train/images are 0x8: expected H and W >= 1" \
        "classes_array inspect root attribute num_classes is int32 with 2 elements, expected a scalar int" \
        "mean_text inspect root attribute mean is string with 1 elements, expected float64" \
        "labels_2d verify /train/labels has shape (4, 1), expected int32" \
        "labels_float inspect /train/labels is float32 with 1 dims, expected int32" \
        "names_long inspect /classes holds more than" \
        "names_count inspect /classes has 3 names but num_classes is 2" \
        "train_external verify /train is not a group (or is a link to another file)" \
        "jpeg_huge verify /train image 0 is 549755813888 bytes"; do
        file=${c%% *}
        rest=${c#* }
        sub=${rest%% *}
        what=${rest#* }
        expect 2 "^error: $T/$file.h5: $what" "$sub $file.h5: exit 2 naming the object" -- \
            timeout "$LIMIT" "$PREP" "$sub" "$T/$file.h5"
        if [ "$(grep -c . "$T/out")" != 1 ]; then
            bad "$sub $file.h5: more than one line of output"; show "$T/out"
        fi
    done
else
    bad "cannot write the crafted files (python3 with h5py)"
fi

# ------------------------------------------------------------ 6. disk full
M="$T/small"
mkdir -p "$M"
if mount -t tmpfs -o size=2m tmpfs "$M" 2>"$T/mount.log"; then
    trap 'umount "$M" 2>/dev/null' EXIT INT TERM
    for np in 1 2; do
        run=""
        [ "$np" = 2 ] && run=$MPI2
        rm -f "$M"/*
        timeout "$LIMIT" "$PREP" synthetic --train 8 --val 2 --size 8 --out "$M/o.h5" >/dev/null 2>&1
        cp "$M/o.h5" "$T/small_copy.h5"
        # 200 images of 64x64x3 are 2.4 MiB: more than the file system holds
        expect 1 "error: --out $M/o.h5: writing $M/o.h5.tmp-$HOST-[0-9]* failed (.*the file system is full); it was removed and $M/o.h5 is unchanged" \
            "full disk, $np process(es): exit 1 naming the file" -- \
            timeout "$LIMIT" $run "$PREP" synthetic --train 200 --val 5 --size 64 --out "$M/o.h5" --force
        if cmp -s "$M/o.h5" "$T/small_copy.h5" && [ -z "$(leftovers "$M")" ] &&
            ! grep -q "Segmentation\|AddressSanitizer\|runtime error" "$T/out"; then
            ok "full disk, $np process(es): previous --out intact, no temporary file"
        else
            bad "full disk, $np process(es): --out changed or left: $(ls "$M")"; show "$T/out"
        fi
    done
    umount "$M"
    trap - EXIT INT TERM
else
    echo "SKIPPED: full disk: cannot mount a tmpfs here ($(cat "$T/mount.log")); run as root to test"
fi

echo "prep_hostile: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
