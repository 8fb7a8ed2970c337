#!/bin/sh
# prep_mpi.sh - resnet_prep under `mpirun -np 3` writes a file whose content
# (every dataset and attribute, as h5dump prints them) is identical to the
# 1-process run, for ImageNet-style folders (raw and jpeg, with bad files
# skipped), CIFAR-10 and a multi-round synthetic set; verify works under
# mpirun; an error (--strict) exits 2 on every rank and leaves no file.
#
# Needs $BUILD/bin/resnet_prep and $BUILD/tests/test_prep_cli (its
# --make-tree writes the inputs). BUILD defaults to build.
set -u
BUILD=${BUILD:-build}
PREP=$BUILD/bin/resnet_prep
TMP=$BUILD/tmp/prep_mpi
MPIRUN="mpirun -np 3 --oversubscribe"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAILED: $1"; }

for f in "$PREP" "$BUILD/tests/test_prep_cli"; do
    if [ ! -x "$f" ]; then
        echo "prep_mpi: $f is not built"
        echo "prep_mpi: 0 passed, 1 failed"
        exit 1
    fi
done
rm -rf "$TMP"
mkdir -p "$TMP"
"$BUILD/tests/test_prep_cli" --make-tree "$TMP/in" || { echo "prep_mpi: cannot make inputs"; exit 1; }

# same_content NAME ARGS...: run with 1 and with 3 processes, compare dumps.
same_content() {
    name=$1
    shift
    if ! "$PREP" "$@" --out "$TMP/$name-1.h5" >"$TMP/$name-1.log" 2>&1; then
        bad "$name: 1-process run failed (see $TMP/$name-1.log)"
        return
    fi
    if ! $MPIRUN "$PREP" "$@" --out "$TMP/$name-3.h5" >"$TMP/$name-3.log" 2>&1; then
        bad "$name: 3-process run failed (see $TMP/$name-3.log)"
        return
    fi
    # Structure (names, types, shapes) from h5dump's header, values from
    # h5diff: a full text dump of the pixels would take minutes.
    h5dump -H "$TMP/$name-1.h5" | sed 1d >"$TMP/$name-1.dump"
    h5dump -H "$TMP/$name-3.h5" | sed 1d >"$TMP/$name-3.dump"
    if [ -s "$TMP/$name-1.dump" ] && cmp -s "$TMP/$name-1.dump" "$TMP/$name-3.dump" &&
        h5diff "$TMP/$name-1.h5" "$TMP/$name-3.h5" >"$TMP/$name.diff" 2>&1; then
        ok "$name: mpirun -np 3 output identical to 1 process"
    else
        bad "$name: files differ: see $TMP/$name.diff, diff $TMP/$name-1.dump $TMP/$name-3.dump"
    fi
}

same_content inet_raw imagenet --train "$TMP/in/train" --val "$TMP/in/val" --size 24
same_content inet_jpeg imagenet --train "$TMP/in/train" --val "$TMP/in/valflat" \
    --val-labels "$TMP/in/LOC_val_solution.csv" --size 24 --encoding jpeg --quality 85
same_content cifar10 cifar10 --in "$TMP/in/cifar10" --val-split 5
# 64x64x3 images give rounds of 682 per rank: 5000 images take three rounds.
same_content synthetic synthetic --train 5000 --val 300 --test 7 --size 64 --seed 3

# Skipped files are named once (by rank 0), not once per rank.
n=$(grep -c 'skipped .*html.JPEG' "$TMP/inet_raw-3.log")
if [ "$n" = 1 ]; then ok "skip warning printed once"; else bad "skip warning printed $n times"; fi

if $MPIRUN "$PREP" verify "$TMP/inet_jpeg-3.h5" >"$TMP/verify.log" 2>&1 &&
    grep -q 'verify: /val: 4 records OK' "$TMP/verify.log"; then
    ok "verify under mpirun"
else
    bad "verify under mpirun (see $TMP/verify.log)"
fi

$MPIRUN "$PREP" imagenet --train "$TMP/in/train" --val "$TMP/in/val" --size 24 --strict \
    --out "$TMP/strict.h5" >"$TMP/strict.log" 2>&1
rc=$?
n=$(grep -c '^error: .*html.JPEG: not a JPEG or PNG image' "$TMP/strict.log")
if [ "$rc" = 2 ] && [ "$n" = 1 ] && [ ! -e "$TMP/strict.h5" ] &&
    [ -z "$(find "$TMP" -name '*.tmp-*')" ]; then
    ok "--strict under mpirun: exit 2, one message, no file left"
else
    bad "--strict under mpirun: exit $rc, $n messages (see $TMP/strict.log)"
fi

echo "prep_mpi: $passed passed, $failed failed"
[ "$failed" = 0 ]
