#!/bin/sh
# bench/run_bench.sh - `make bench`: resnet_dist --bench side by side with
# PyTorch (torchvision) on this machine, then rewrites the generated section
# of docs/performance.md.
#
# Every measurement runs in a fresh process: ours, then PyTorch in NCHW and
# in channels_last (the faster counts). Results, one JSON object a line, go
# to $BUILD/bench/results.jsonl; each run's output to $BUILD/bench/logs/.
#
# Environment:
#   BUILD          build directory [build]
#   PYTHON         Python for the doc generator, and for PyTorch if it can
#                  import torch (else python3, then /usr/bin/python3) [python3]
#   BENCH_THREADS  OpenMP threads of the 1-rank runs [all cores]
#   BENCH_QUICK=1  one warm-up and two timed steps everywhere (checks the
#                  script; the numbers are noise)
#   BENCH_ONLY     space-separated config names to run [all]; resnet50-mpi is
#                  the 2-rank against 1-rank comparison, resnet50-winograd the
#                  --conv-algo winograd run
#   BENCH_TORCH_MAX_SECONDS  PyTorch stops timing after this, once it has two
#                  timed steps [60]
#   BENCH_DOC      document to update [docs/performance.md]; "none" skips it
set -u

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
OUT=$BUILD/bench
RESULTS=$OUT/results.jsonl
LOGS=$OUT/logs
RD=$BUILD/bin/resnet_dist
GEMM=$OUT/gemm_peak
DOC=${BENCH_DOC:-docs/performance.md}
CORES=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
THREADS=${BENCH_THREADS:-$CORES}
QUICK=${BENCH_QUICK:-0}
ROUND=
TORCH_MAX_SECONDS=${BENCH_TORCH_MAX_SECONDS:-60}
ONLY=${BENCH_ONLY:-}
here=$(dirname "$0")
failures=0

die() { echo "run_bench: $*" >&2; exit 2; }
now() { date +%s; }
load1() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0; }

[ -x "$RD" ] || die "$RD is missing: run 'make' (or 'make bench') first"
[ -x "$GEMM" ] || die "$GEMM is missing: run 'make $GEMM' (or 'make bench') first"

# A Python that can import torch and torchvision, and one for the doc.
TORCH_PY=""
for py in "$PYTHON" python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 &&
        "$py" -c 'import torch, torchvision' >/dev/null 2>&1; then
        TORCH_PY=$py
        break
    fi
done
DOC_PY=$PYTHON
command -v "$DOC_PY" >/dev/null 2>&1 || DOC_PY=${TORCH_PY:-python3}
[ -n "$TORCH_PY" ] || echo "run_bench: warning: no Python here imports torch and torchvision" \
    "(apt-get install python3-torch python3-torchvision); PyTorch columns stay empty" >&2

if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

mkdir -p "$LOGS" || die "cannot create $LOGS"
[ -f "$RESULTS" ] && mv -f "$RESULTS" "$RESULTS.prev"
: >"$RESULTS"

# timed FILE CMD...: runs CMD; with GNU time, its wall, user and system
# seconds (children included) go to FILE.
TIMER=""
[ -x /usr/bin/time ] && TIMER=/usr/bin/time
timed() {
    tf=$1
    shift
    rm -f "$tf"
    if [ -n "$TIMER" ]; then
        "$TIMER" -o "$tf" -f '%e %U %S' "$@"
    else
        "$@"
    fi
}

# record SIDE CONFIG RANKS THREADS LOAD RC LOG OUTFILE [STEPS]: appends one line
# wrapping the run's JSON result (the last line of OUTFILE starting with {"),
# or an error; OUTFILE.time, if there, adds the process's CPU seconds.
record() {
    json=$(grep '^{"' "$8" 2>/dev/null | tail -n 1)
    proc=""
    [ -n "${9:-}" ] && proc=",\"steps\":$9"
    if [ -s "$8.time" ]; then
        # The last line: GNU time puts "Command exited with ..." first.
        # shellcheck disable=SC2034
        proc=$proc$(tail -n 1 "$8.time" | {
            read -r tw tu ts rest &&
                printf ',"proc":{"wall_s":%s,"user_s":%s,"sys_s":%s}' "$tw" "$tu" "$ts"
        })
    fi
    if [ "$6" = 0 ] && [ -n "$json" ]; then
        printf '{"side":"%s","config":"%s","ranks":%s,"threads":%s,"load1":%s%s,"result":%s}\n' \
            "$1" "$2" "$3" "$4" "$5" "$proc" "$json" >>"$RESULTS"
        echo "    $json"
    else
        printf '{"side":"%s","config":"%s","ranks":%s,"threads":%s,"load1":%s,"error":"exit %s, see %s"}\n' \
            "$1" "$2" "$3" "$4" "$5" "$6" "$7" >>"$RESULTS"
        echo "    FAILED (exit $6): see $7" >&2
        tail -n 5 "$7" >&2
        failures=$((failures + 1))
    fi
}

# ours NAME RANKS THREADS ARCH CROP BATCH CLASSES WARMUP STEPS [FLAG...]
ours() {
    name=$1 ranks=$2 thr=$3 arch=$4 crop=$5 batch=$6 classes=$7 warm=$8 nsteps=$9
    log=$LOGS/ours-$name-${ranks}x$thr${ROUND:+-$ROUND}.log
    out=$LOGS/ours-$name-${ranks}x$thr${ROUND:+-$ROUND}.out
    shift 9
    set -- --synthetic --bench --arch "$arch" --crop "$crop" --batch-size "$batch" \
        --num-classes "$classes" --bench-warmup "$warm" --bench-steps "$nsteps" --threads "$thr" "$@"
    ld=$(load1)
    t0=$(now)
    echo "  ours    $name ${ranks}x$thr: $*"
    if [ "$ranks" = 1 ]; then
        timed "$out.time" env OMP_NUM_THREADS="$thr" "$RD" "$@" </dev/null >"$out" 2>"$log"
    else
        timed "$out.time" env OMP_NUM_THREADS="$thr" mpirun -np "$ranks" --oversubscribe --bind-to none \
            -x OMP_NUM_THREADS "$RD" "$@" </dev/null >"$out" 2>"$log"
    fi
    rc=$?
    cat "$out" >>"$log"
    record ours "$name" "$ranks" "$thr" "$ld" "$rc" "$log" "$out" "$nsteps"
    echo "    ($(($(now) - t0)) s)"
}

# torch NAME LAYOUT ARCH CROP BATCH CLASSES WARMUP STEPS
torch_run() {
    name=$1 layout=$2
    log=$LOGS/torch-$name-$layout.log
    out=$LOGS/torch-$name-$layout.out
    if [ -z "$TORCH_PY" ]; then
        echo "no Python with torch" >"$log"
        : >"$out"
        record torch "$name" 1 "$THREADS" "$(load1)" 127 "$log" "$out"
        return
    fi
    ld=$(load1)
    t0=$(now)
    echo "  pytorch $name 1x$THREADS $layout"
    timed "$out.time" env OMP_NUM_THREADS="$THREADS" "$TORCH_PY" "$here/torch_bench.py" --arch "$3" --crop "$4" \
        --batch "$5" --num-classes "$6" --warmup "$7" --steps "$8" --threads "$THREADS" \
        --layout "$layout" --max-seconds "$TORCH_MAX_SECONDS" </dev/null >"$out" 2>"$log"
    rc=$?
    cat "$out" >>"$log"
    record torch "$name" 1 "$THREADS" "$ld" "$rc" "$log" "$out"
    echo "    ($(($(now) - t0)) s)"
}

wanted() {
    [ -z "$ONLY" ] && return 0
    for w in $ONLY; do [ "$w" = "$1" ] && return 0; done
    return 1
}

start=$(now)
start_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
version=$("$RD" --version </dev/null 2>/dev/null | grep -v '^ *$' | head -n 1)
cpu=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
[ -n "$cpu" ] || cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem_gib=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
"$DOC_PY" -c 'import json, sys
k = ["start", "version", "cpu", "cores", "threads", "mem_gib", "load1", "torch_python", "quick"]
m = dict(zip(k, sys.argv[1:]))
for n in ("cores", "threads", "quick"):
    m[n] = int(m[n])
m["mem_gib"] = float(m["mem_gib"] or 0)
m["load1"] = float(m["load1"])
print(json.dumps(dict(side="meta", **m)))' \
    "$start_iso" "$version" "$cpu" "$CORES" "$THREADS" "$mem_gib" "$(load1)" "$TORCH_PY" \
    "$QUICK" >>"$RESULTS" || die "cannot run $DOC_PY"

echo "run_bench: $cpu, $CORES cores; $THREADS threads; results in $RESULTS"
# gemm_peak WHEN: the GEMM peak, measured at the start and at the end (the
# better one counts: other work on the machine only ever lowers it).
gemm_peak() {
    echo "  gemm    dnnl_sgemm peak, $THREADS threads ($1)"
    OMP_NUM_THREADS=$THREADS "$GEMM" --threads "$THREADS" </dev/null \
        >"$LOGS/gemm_peak-$1.out" 2>"$LOGS/gemm_peak-$1.log"
    record gemm "sgemm-$1" 1 "$THREADS" "$(load1)" $? "$LOGS/gemm_peak-$1.log" \
        "$LOGS/gemm_peak-$1.out"
}
gemm_peak start

# name arch crop batch classes warm-up timed-steps. Steps are few for the big
# networks (PyTorch takes 7-12 s a resnet50 or resnet152 step on 2 cores) to
# keep `make bench` near 15 minutes; PyTorch also stops timing after
# $TORCH_MAX_SECONDS once it has 2 timed steps. resnet50, whose speed-up is a
# target, gets more steps: its run-to-run spread here is 10-20%.
CONFIGS="resnet50 resnet50 224 32 1000 1 6
resnet18 resnet18 224 32 1000 1 5
resnet152 resnet152 224 16 1000 1 3
resnet20 resnet20 32 128 10 2 10
resnext50_32x4d resnext50_32x4d 224 32 1000 1 3
wide_resnet50_2 wide_resnet50_2 224 16 1000 1 3
resnet1202 resnet1202 32 32 10 1 3"

while read -r name arch crop batch classes warm steps; do
    [ -n "$name" ] || continue
    wanted "$name" || continue
    if [ "$QUICK" = 1 ]; then warm=1 steps=2; fi
    echo "$name: crop $crop, batch $batch"
    ours "$name" 1 "$THREADS" "$arch" "$crop" "$batch" "$classes" "$warm" "$steps"
    torch_run "$name" nchw "$arch" "$crop" "$batch" "$classes" "$warm" "$steps"
    torch_run "$name" channels_last "$arch" "$crop" "$batch" "$classes" "$warm" "$steps"
done <<EOF
$CONFIGS
EOF

# resnet50 again with Winograd for its 3x3 stride-1 convolutions; it is
# compared with the PyTorch resnet50 runs above.
if wanted resnet50-winograd; then
    steps=6 warm=1
    if [ "$QUICK" = 1 ]; then warm=1 steps=2; fi
    echo "resnet50-winograd: crop 224, batch 32, --conv-algo winograd"
    ours resnet50-winograd 1 "$THREADS" resnet50 224 32 1000 "$warm" "$steps" --conv-algo winograd
fi

# Data parallelism on one machine: 2 ranks x 1 thread against 1 x 2, in
# alternating rounds (1 x 2, 2 x 1, 1 x 2, 2 x 1), since this machine's speed
# drifts by 10-20% over minutes; the ratio is taken over the rounds.
if wanted resnet50-mpi && [ "$THREADS" -ge 2 ] && command -v mpirun >/dev/null 2>&1; then
    echo "resnet50: 2 ranks x $((THREADS / 2)) threads against 1 x $THREADS, alternating"
    steps=4 warm=1
    if [ "$QUICK" = 1 ]; then warm=1 steps=2; fi
    for ROUND in 1 2; do
        ours resnet50-dp 1 "$THREADS" resnet50 224 32 1000 "$warm" "$steps"
        ours resnet50-dp 2 $((THREADS / 2)) resnet50 224 32 1000 "$warm" "$steps"
    done
    ROUND=
fi

# Data path: loader throughput per core (raw and JPEG, rrc augmentation)
# and dataset prep throughput (JPEG folders, 1 and 2 ranks).
if wanted loader; then
    echo "loader: raw and jpeg, rrc to 224"
    if "$OUT/loader_bench" >"$LOGS/loader.out" 2>&1; then
        sed -n 's/^json: //p' "$LOGS/loader.out" >>"$RESULTS"
    else
        failures=$((failures + 1))
        echo "run_bench: loader_bench failed, see $LOGS/loader.out" >&2
    fi
fi
if wanted prep && command -v mpirun >/dev/null 2>&1; then
    echo "prep: resnet_prep imagenet, 1 and 2 ranks"
    BUILD=$BUILD PYTHON=${TORCH_PY:-$PYTHON} RESULTS=$RESULTS sh "$here/prep_bench.sh" \
        >"$LOGS/prep.out" 2>&1 || failures=$((failures + 1))
fi

gemm_peak end

elapsed=$(($(now) - start))
"$DOC_PY" -c 'import json, sys
print(json.dumps({"side": "end", "seconds": int(sys.argv[1]), "load1": float(sys.argv[2]),
                  "failures": int(sys.argv[3])}))' "$elapsed" "$(load1)" "$failures" >>"$RESULTS"
echo "run_bench: $elapsed s, $failures failed run(s)"

if [ "$DOC" != none ]; then
    "$DOC_PY" "$here/update_perf_doc.py" --results "$RESULTS" --doc "$DOC" ||
        failures=$((failures + 1))
    "$DOC_PY" "$here/scaling_model.py" "$RESULTS" "$(dirname "$DOC")/scaling.md" ||
        failures=$((failures + 1))
fi
[ "$failures" = 0 ]
