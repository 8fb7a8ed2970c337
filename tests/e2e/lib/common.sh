# shellcheck shell=sh
# common.sh - helpers shared by the end-to-end scripts (sourced, not run).
# The sourcing script sets T (its scratch folder), usually with e2e_setup,
# before calling expect.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }
# e2e_setup NAME: the settings the scripts that run resnet_dist share:
# BUILD and PYTHON (overridable), BIN, an emptied scratch folder
# T=$BUILD/tmp/e2e-NAME, one thread per rank and mpirun allowed as root.
e2e_setup() {
    BUILD=${BUILD:-build}
    PYTHON=${PYTHON:-/usr/bin/python3}
    # shellcheck disable=SC2034 # used by the sourcing script
    BIN="$BUILD/bin/resnet_dist"
    T="$BUILD/tmp/e2e-$1"
    rm -rf "$T" && mkdir -p "$T" || exit 1
    export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
}

# fixture FILE [make_dataset.py flags]: a synthetic dataset at $T/FILE; the
# script stops when it cannot be made.
fixture() {
    fixture_file=$T/$1
    shift
    $PYTHON tests/fixtures/make_dataset.py "$fixture_file" "$@" ||
        { echo "cannot make dataset $fixture_file"; exit 1; }
}

# show FILE [LINES]: the end of a log, indented
show() { sed 's/^/    /' "$1" | tail -n "${2:-8}"; }

# expect CODE PATTERN NAME -- command...: exit code and a line matching PATTERN
expect() {
    code=$1 pattern=$2 name=$3
    shift 4
    "$@" >"$T/out" 2>&1
    got=$?
    if [ "$got" -ne "$code" ]; then
        bad "$name: exit $got, expected $code"; show "$T/out"; return 1
    fi
    if [ -n "$pattern" ] && ! grep -q -- "$pattern" "$T/out"; then
        bad "$name: output lacks '$pattern'"; show "$T/out"; return 1
    fi
    ok "$name"
}

# exits_within PID SECONDS: 0 once PID has ended; else kills it and its
# children and returns 1, so a hung job never hangs the test.
exits_within() {
    n=$(($2 * 10))
    while kill -0 "$1" 2>/dev/null && [ "$n" -gt 0 ]; do
        sleep 0.1
        n=$((n - 1))
    done
    kill -0 "$1" 2>/dev/null || return 0
    for c in $(pgrep -P "$1"); do kill -KILL "$c" 2>/dev/null; done
    kill -KILL "$1" 2>/dev/null
    wait "$1"
    return 1
}

# run_within NAME -- command...: output to $T/out, exit code to got; fails
# the case (returns 1) when the job still runs after LIMIT s (set by the
# sourcing script).
run_within() {
    name=$1
    shift 2
    "$@" >"$T/out" 2>&1 &
    pid=$!
    if ! exits_within "$pid" "$LIMIT"; then
        bad "$name: still running after $LIMIT s"; show "$T/out"
        return 1
    fi
    wait "$pid"
    got=$?
}

# run NAME -- command...: run_within, then ok when it exits 0, its output
# kept in $T/NAME.log; else counts a failure and shows the end of it.
run() {
    name=$1
    shift 2
    if run_within "$name" -- "$@"; then
        cp "$T/out" "$T/$name.log"
        [ "$got" -eq 0 ] && return 0
        bad "$name: exit $got"; show "$T/out"
    fi
    return 1
}

# compare A.h5 B.h5 NAME [compare_checkpoints.py flags]: the checkpoints'
# tensors agree (bitwise unless --atol/--rtol); the sourcing script sets PYTHON.
compare() {
    a=$1 b=$2 name=$3
    shift 3
    if $PYTHON tests/fixtures/compare_checkpoints.py "$a" "$b" "$@" >"$T/cmp" 2>&1; then
        ok "$name: $(head -n 1 "$T/cmp")"
    else
        bad "$name"; show "$T/cmp"
    fi
}

# differ A.h5 B.h5 NAME [compare_checkpoints.py flags]: the same tensors with
# other values (beyond --rtol/--atol when given), e.g. a flag that must
# change the training.
differ() {
    a=$1 b=$2 name=$3
    shift 3
    if $PYTHON tests/fixtures/compare_checkpoints.py "$a" "$b" "$@" >"$T/cmp" 2>&1; then
        bad "$name: the checkpoints agree"; show "$T/cmp"
    elif [ "$(grep -c "^mismatch:" "$T/cmp")" -eq 1 ] && grep -q "^mismatch: largest" "$T/cmp"; then
        ok "$name: $(head -n 1 "$T/cmp")"
    else
        bad "$name: cannot compare"; show "$T/cmp"
    fi
}
