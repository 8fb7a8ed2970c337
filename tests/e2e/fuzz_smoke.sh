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
echo "fuzz_smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
