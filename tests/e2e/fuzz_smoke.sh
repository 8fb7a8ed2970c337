#!/bin/sh
# A fixed-seed slice of the fuzzer (tests/fuzz, docs/reliability.md) on the
# sanitizer build: every case must end with a documented exit code, within
# its time and memory limit and without an ASan/UBSan report. Each finding
# is printed with its input folder and the command that reruns it alone.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SAN=${FUZZ_BUILD:-$BUILD-san}
CASES=${FUZZ_SMOKE_CASES:-200}
T="$BUILD/tmp/e2e-fuzz"
rm -rf "$T" && mkdir -p "$T"
. tests/e2e/lib/common.sh

if make -s all BUILD="$SAN" SANITIZE=address,undefined >"$T/build.log" 2>&1; then
    ok "sanitizer build in $SAN"
else
    bad "sanitizer build in $SAN"; show "$T/build.log"
fi
$PYTHON tests/fuzz/fuzz.py --build "$SAN" --cases "$CASES" --seed 7 --jobs 2 --timeout 30 \
    --findings "$T/findings" >"$T/fuzz.log" 2>&1
rc=$?
grep -v '^fuzz: [0-9]*/' "$T/fuzz.log"
if [ "$rc" -eq 0 ] && grep -q "^fuzz: $CASES cases in .*, 0 findings" "$T/fuzz.log"; then
    ok "$CASES fuzz cases, no findings"
else
    bad "fuzz cases: exit $rc, findings above (inputs and repro.sh in $T/findings)"
fi
# Cases of seed 2 that once found a bug, one per bug (docs/reliability.md):
# inspect/verify on crafted string attributes (122, 129 of prep_inspect.c),
# huge declared dimensions (trainer, dataset reader, RSS), a progressive
# JPEG declaring 40000 x 40000, FIFOs and symlink loops in class folders,
# negative step/epoch and a negative or NaN lr in a checkpoint, an empty
# class folder, an image whose resized long side exceeds JPEG's 65500
# pixels, a FIFO in a CIFAR folder, IDX dims allocated before the file size
# is checked, a virtual dataset that maps onto itself.
REGRESSION="1002 1396 1708 2253 1654 216 3288 3148 2394 3297 103 2032 2245 2057 4181 6561"
set --
for c in $REGRESSION; do set -- "$@" --case "$c"; done
$PYTHON tests/fuzz/fuzz.py --build "$SAN" --seed 2 --jobs 2 --timeout 30 "$@" \
    --findings "$T/regression" >"$T/regression.log" 2>&1
rc=$?
grep -v '^fuzz: [0-9]*/' "$T/regression.log"
n=$(echo $REGRESSION | wc -w)
if [ "$rc" -eq 0 ] && grep -q "^fuzz: $n cases in .*, 0 findings" "$T/regression.log"; then
    ok "$n regression cases, no findings"
else
    bad "regression cases: exit $rc, findings above (inputs and repro.sh in $T/regression)"
fi
echo "fuzz_smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
