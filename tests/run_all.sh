#!/bin/sh
# Runs every test: unit tests (CMocka), MPI tests under mpirun, end-to-end
# scripts and the Slurm tests. Prints one closing line "N passed, M failed"
# and exits non-zero when anything failed.
BUILD=${BUILD:-build}
export BUILD PYTHON=${PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# Sanitizer builds: full stacks so that library-internal leaks match tests/lsan.supp.
export ASAN_OPTIONS="fast_unwind_on_malloc=0:${ASAN_OPTIONS:-}"
LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
export LSAN_OPTIONS
mkdir -p "$BUILD/logs"
passed=0
failed=0
failures=""

# A hung test must not hang the suite: each gets a limit well above its
# normal time (unit and MPI binaries 5 minutes, scripts 10), then is ended.
run() { # name limit-seconds command...
    name=$1 limit=$2
    shift 2
    start=$(date +%s)
    if timeout -k 10 "$limit" "$@" >"$BUILD/logs/$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS $name ($(($(date +%s) - start)) s)"
    else
        failed=$((failed + 1))
        failures="$failures $name"
        echo "FAIL $name ($(($(date +%s) - start)) s, limit $limit s); last lines of $BUILD/logs/$name.log:"
        tail -n 25 "$BUILD/logs/$name.log" | sed 's/^/    /'
    fi
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run "$(basename "$t")" 300 "$t"
done
for t in "$BUILD"/tests/mpi_*; do
    [ -x "$t" ] || continue
    for np in 2 3 4; do
        run "$(basename "$t")-np$np" 300 mpirun -np "$np" --oversubscribe "$t"
    done
done
for t in tests/e2e/*.sh; do
    [ -f "$t" ] && run "e2e-$(basename "$t" .sh)" 600 sh "$t"
done
for t in tests/slurm/test_*.sh; do
    [ -f "$t" ] && run "slurm-$(basename "$t" .sh)" 600 sh "$t"
done

[ -n "$failures" ] && echo "failed:$failures"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
