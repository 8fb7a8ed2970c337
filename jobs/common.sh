# shellcheck shell=bash
# common.sh - shared by the Slurm job scripts in jobs/ (sourced, bash).
#
# What every job gets from here:
#   - it refuses to run outside Slurm (require_slurm);
#   - binaries are found, never built: $RESNET_DIST_BIN / $RESNET_PREP_BIN
#     (a file or a directory), then PATH, then <repo>/build/bin (find_tool);
#   - the launcher: `srun --mpi=pmix` (default) or `mpirun` (LAUNCHER=mpirun),
#     one rank per task, OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK, cores bound;
#   - optional staging of the dataset to node-local disk (STAGE_DIR), one copy
#     per node;
#   - the requeue protocol (train_with_requeue): a dry run, then training with
#     --resume auto; the warning signal (SIGUSR1, from `#SBATCH --signal=B:USR1@N`
#     or `scancel --signal=USR1 --batch`) reaches this shell, which forwards it
#     to the ranks; they checkpoint and exit 3; the job then requeues itself
#     with `scontrol requeue` (the last thing it does) unless MAX_RESTARTS
#     restarts were done. Any other exit code ends the job without requeue.
#
# Exit codes of the job scripts (the trainer's, docs in jobs/README.md):
#   0 finished, 1 internal error, 2 bad set-up or input (nothing was run),
#   3 stopped for requeue but not requeued (MAX_RESTARTS reached or requeue
#   refused), 4 stopped on SIGTERM/SIGINT after a checkpoint, 5 non-finite loss.

JOB_NAME=${SLURM_JOB_NAME:-$(basename "${0:-job}")}

log() { printf '%s [%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$JOB_NAME" "$*"; }

# die CODE MESSAGE: one "error:" line in the job log (stderr), exit CODE.
die() {
    local code=$1
    shift
    log "error: $*" >&2
    exit "$code"
}

# require_slurm EXAMPLE: stop with a clear message unless this runs as a batch job.
require_slurm() {
    if [ -z "${SLURM_JOB_ID:-}" ]; then
        echo "error: $JOB_NAME is a Slurm batch script and SLURM_JOB_ID is not set: submit it with" >&2
        echo "    $1" >&2
        echo "(see jobs/README.md; to run without Slurm call resnet_dist under mpirun directly)" >&2
        exit 2
    fi
}

# The repository: the parent of the folder holding this file (for build/bin).
JOBS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$JOBS_DIR")

# find_tool NAME VAR: prints the path of the executable NAME. VAR (e.g.
# RESNET_DIST_BIN) may name the file or its directory; then PATH; then
# <repo>/build/bin. Never builds: compiling belongs on a login node, once.
find_tool() {
    local name=$1 var=$2 given=${!2:-} path
    if [ -n "$given" ]; then
        path=$given
        [ -d "$path" ] && path=$path/$name
        if [ ! -f "$path" ] || [ ! -x "$path" ]; then
            die 2 "$var=$given: no executable $name there"
        fi
    elif path=$(command -v "$name" 2>/dev/null) && [ -n "$path" ]; then
        :
    elif [ -x "$REPO_DIR/build/bin/$name" ]; then
        path=$REPO_DIR/build/bin/$name
    else
        die 2 "$name not found: not in \$$var, not on PATH ($PATH), not in $REPO_DIR/build/bin." \
            "Build it before submitting ('make' in $REPO_DIR on a login node) or set $var=/path/to/$name;" \
            "jobs never build."
    fi
    echo "$path"
}

# tasks_in_allocation: the tasks Slurm lays out on the nodes this run got,
# summed from SLURM_TASKS_PER_NODE (e.g. "2(x3),1" is 7). SLURM_NTASKS keeps
# the count asked at submission, which is wrong once a requeued job runs on
# fewer nodes (its NumNodes lowered after a node failure).
tasks_in_allocation() {
    local total=0 part tasks reps
    for part in ${SLURM_TASKS_PER_NODE//,/ }; do
        tasks=${part%%"("*}
        reps=${part#"$tasks"}
        reps=${reps//[!0-9]/}
        total=$((total + tasks * ${reps:-1}))
    done
    echo "$total"
}

# Resources of the allocation, with the defaults Slurm leaves unset.
NODES=${SLURM_JOB_NUM_NODES:-1}
NTASKS=${SLURM_NTASKS:-1}
[ -n "${SLURM_TASKS_PER_NODE:-}" ] && NTASKS=$(tasks_in_allocation)
CPT=${SLURM_CPUS_PER_TASK:-1}
LAUNCHER=${LAUNCHER:-srun}
MAX_RESTARTS=${MAX_RESTARTS:-20}
export OMP_NUM_THREADS=$CPT
export OMP_PLACES=${OMP_PLACES:-cores} OMP_PROC_BIND=${OMP_PROC_BIND:-close}

# check_common: the choices every job takes from the environment.
check_common() {
    case $LAUNCHER in
    srun | mpirun) ;;
    *) die 2 "LAUNCHER=$LAUNCHER: expected srun (default) or mpirun" ;;
    esac
    case $MAX_RESTARTS in
    '' | *[!0-9]*) die 2 "MAX_RESTARTS=$MAX_RESTARTS: expected a whole number" ;;
    esac
    if [ "$LAUNCHER" = mpirun ]; then
        command -v mpirun >/dev/null 2>&1 || die 2 "LAUNCHER=mpirun but mpirun is not on PATH (load your MPI module)"
    fi
}

# launch_prefix: fills the array LAUNCH with the command that starts one
# rank per Slurm task, each bound to its CPUs.
launch_prefix() {
    if [ "$LAUNCHER" = mpirun ]; then
        # Open MPI reads the nodes and slots from the allocation; PE=N gives
        # each rank N consecutive cores and binds it to them. MPIRUN_MAP
        # replaces the mapping (e.g. ppr:1:socket:PE=32), MPIRUN_ARGS adds
        # flags (e.g. --report-bindings).
        local extra=()
        read -r -a extra <<<"${MPIRUN_ARGS:-}"
        LAUNCH=(mpirun -np "$NTASKS" --map-by "${MPIRUN_MAP:-slot:PE=$CPT}" --bind-to core
            -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND "${extra[@]}")
    else
        # srun does not take --cpus-per-task from sbatch in 22.05+: pass it.
        # block:block keeps each rank's cores together (one socket) rather
        # than dealing them out over the sockets. SRUN_ARGS adds flags (e.g.
        # --cpu-bind=verbose,cores to print the masks).
        local extra=()
        read -r -a extra <<<"${SRUN_ARGS:-}"
        LAUNCH=(srun --mpi=pmix --kill-on-bad-exit=1 --cpu-bind=cores --distribution=block:block
            --nodes="$NODES" --ntasks="$NTASKS" --cpus-per-task="$CPT" "${extra[@]}")
    fi
}

# print_header: what this run is, at the top of each (re)start in the log.
print_header() {
    log "job $SLURM_JOB_ID ($JOB_NAME) on $NODES node(s): ${SLURM_JOB_NODELIST:-?}"
    log "SLURM_RESTART_COUNT=${SLURM_RESTART_COUNT:-0} (MAX_RESTARTS=$MAX_RESTARTS)"
    log "$NTASKS ranks (${SLURM_NTASKS_PER_NODE:-?} per node), OMP_NUM_THREADS=$CPT, launcher $LAUNCHER"
    local limit mca
    limit=$(squeue -h -j "$SLURM_JOB_ID" -o '%l' 2>/dev/null)
    [ -n "$limit" ] && log "time limit $limit; working directory $(pwd)"
    mca=$(env | grep '^OMPI_MCA_' | sort | tr '\n' ' ')
    [ -n "$mca" ] && log "Open MPI settings from the environment: $mca"
    return 0
}

# log_rank_hosts: starts `hostname` with the launcher, as the ranks will be,
# and logs the hosts it ran on with their rank counts: the job's actual
# spread over its nodes.
log_rank_hosts() {
    launch_prefix
    local hosts
    hosts=$("${LAUNCH[@]}" hostname 2>/dev/null | sort | uniq -c |
        awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }')
    log "ranks per host: ${hosts:-unknown (the launcher failed to start hostname)}"
}

# stage_data FILE: with STAGE_DIR set, copies FILE to $STAGE_DIR on every
# node of the job (one task per node, skipped where an identical copy, same
# size and time stamp, is already there: requeues reuse it) and prints the
# path to use; without STAGE_DIR prints FILE.
stage_data() {
    local src=$1
    if [ -z "${STAGE_DIR:-}" ]; then
        echo "$src"
        return
    fi
    local dest
    dest=$STAGE_DIR/$(basename "$src")
    log "staging $src to $dest on each of the $NODES node(s)" >&2
    # shellcheck disable=SC2016 # expanded by the per-node shell
    srun --mpi=none --nodes="$NODES" --ntasks="$NODES" --ntasks-per-node=1 --cpus-per-task=1 \
        --kill-on-bad-exit=1 bash -c '
        set -e
        mkdir -p "$1"
        dest=$1/$(basename "$2")
        if [ "$(stat -c %s.%Y "$dest" 2>/dev/null)" = "$(stat -c %s.%Y "$2")" ]; then
            echo "$(hostname -s): $dest is up to date"
        else
            tmp=$dest.tmp-$SLURM_JOB_ID
            cp --preserve=timestamps "$2" "$tmp"
            mv -f "$tmp" "$dest"
            echo "$(hostname -s): copied $(du -h "$dest" | cut -f1) to $dest"
        fi' stage "$STAGE_DIR" "$src" >&2 ||
        die 2 "staging $src to STAGE_DIR=$STAGE_DIR failed on some node (space? permissions?)"
    echo "$dest"
}

# Signals. The batch shell is what `--signal=B:USR1@N` and
# `scancel --signal=USR1 --batch` reach; it forwards the signal to the
# launcher, which passes it to every rank (srun and mpirun both forward
# SIGUSR1; mpirun's ranks are not reached by a plain --signal=USR1@N).
# To stop a run and keep its progress: `scancel --batch --signal=TERM JOBID`
# (this shell passes it on: exit 4, no requeue). A plain `scancel JOBID` also
# signals srun or mpirun, which then kill the ranks, maybe mid-checkpoint.
STOP_SIGNAL=
CHILD=
CHILD_FORWARD=0
READY_METRICS=
READY_BASE=0

config_records() { # the trainer's "config" records in METRICS so far
    local n
    n=$(grep -c '"kind":"config"' "$METRICS" 2>/dev/null)
    echo "${n:-0}"
}

# ranks_ready: the trainer writes its config record to the metrics file after
# every rank installed its signal handlers; a SIGUSR1 before that would kill
# the ranks instead of stopping them.
ranks_ready() {
    [ -z "$READY_METRICS" ] || [ "$(config_records)" -gt "$READY_BASE" ]
}

on_signal() { # SIG
    log "received SIG$1"
    [ "$STOP_SIGNAL" = TERM ] || STOP_SIGNAL=$1
    [ -n "$CHILD" ] && [ "$CHILD_FORWARD" = 1 ] || return 0
    local waited=0
    while ! ranks_ready && kill -0 "$CHILD" 2>/dev/null && [ "$waited" -lt "${SIGNAL_GRACE:-300}" ]; do
        [ "$waited" -eq 0 ] && log "the ranks are still starting: SIG$1 goes to them once they are up"
        sleep 1
        waited=$((waited + 1))
    done
    if [ "$1" = USR1 ]; then
        log "forwarding SIGUSR1 to the ranks ($LAUNCHER, pid $CHILD)"
        kill -s USR1 "$CHILD" 2>/dev/null || true
    elif [ "$LAUNCHER" = srun ]; then
        # srun turns a SIGTERM or SIGINT it receives into SIGKILL for the
        # ranks: signal the job's steps (not this script) instead.
        log "forwarding SIG$1 to the ranks (scancel --signal=$1 $SLURM_JOB_ID)"
        scancel --signal="$1" "$SLURM_JOB_ID" 2>/dev/null || true
    else
        # mpirun kills its ranks about 1 s after forwarding a SIGTERM, often
        # in the middle of the checkpoint; SIGUSR1 is its reliable path. The
        # exit 3 that follows is taken as a stop, not a requeue.
        log "SIG$1 under mpirun: asking the ranks to checkpoint and stop with SIGUSR1 (pid $CHILD)"
        kill -s USR1 "$CHILD" 2>/dev/null || true
    fi
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

# run_ranks FORWARD COMMAND...: runs COMMAND with the launcher in the
# background and waits for it, through any signals; FORWARD=1 passes
# SIGUSR1/SIGTERM on to the ranks. Sets RC to its exit code.
run_ranks() {
    CHILD_FORWARD=$1
    shift
    launch_prefix
    log "running: ${LAUNCH[*]} $*"
    READY_BASE=$(config_records)
    "${LAUNCH[@]}" "$@" &
    CHILD=$!
    local status
    while :; do
        wait "$CHILD"
        status=$?
        # wait returns early (>128) when a trapped signal arrives; the
        # launcher is then still running: wait again.
        if [ "$status" -le 128 ] || ! kill -0 "$CHILD" 2>/dev/null; then
            break
        fi
    done
    CHILD=
    RC=$status
}

explain_exit() { # CODE: what a trainer exit code means, for the log
    case $1 in
    0) echo "finished" ;;
    1) echo "internal error or abort (see the [rank R] lines above)" ;;
    2) echo "bad usage or bad input (see the error line above)" ;;
    3) echo "stopped on SIGUSR1 after a checkpoint: requeue wanted" ;;
    4) echo "stopped on SIGTERM/SIGINT after a checkpoint: no requeue" ;;
    5) echo "loss is not finite: lower the learning rate or check the data" ;;
    *) echo "killed or crashed (signal $(($1 > 128 ? $1 - 128 : 0)) if > 128)" ;;
    esac
}

# requeue_or_stop: the ranks saved a checkpoint and want to go on. Requeue
# this job (it restarts with the same job ID, environment and log, and
# resumes from CKPT_DIR), unless MAX_RESTARTS restarts were done already.
requeue_or_stop() {
    local restarts=${SLURM_RESTART_COUNT:-0}
    if [ "$restarts" -ge "$MAX_RESTARTS" ]; then
        die 3 "not requeueing: job $SLURM_JOB_ID was restarted $restarts times (MAX_RESTARTS=$MAX_RESTARTS)." \
            "The checkpoints in $CKPT_DIR are kept: to go on, submit again with CKPT_DIR=$CKPT_DIR" \
            "(and a larger MAX_RESTARTS or --time)."
    fi
    log "requeueing job $SLURM_JOB_ID (restart $((restarts + 1)) of at most $MAX_RESTARTS); it will resume from $CKPT_DIR"
    # scontrol requeue ends this script at once: it must be the last thing.
    trap - USR1 TERM INT
    scontrol requeue "$SLURM_JOB_ID" ||
        die 3 "scontrol requeue $SLURM_JOB_ID failed (submitted with --no-requeue, or JobRequeue=0 on this cluster?);" \
            "resubmit with CKPT_DIR=$CKPT_DIR to resume"
    sleep 60 # the requeue kills this script
    exit 3
}

# train_with_requeue BIN ARGS...: the requeue protocol around the trainer.
# ARGS are its flags without --checkpoint-dir, --resume and --metrics, which
# come from CKPT_DIR and METRICS.
train_with_requeue() {
    local bin=$1
    shift
    mkdir -p "$CKPT_DIR" || die 2 "CKPT_DIR=$CKPT_DIR: cannot create it"
    local args=("$@" --checkpoint-dir "$CKPT_DIR" --resume auto --metrics "$METRICS")
    [ -n "${STALL_TIMEOUT:-}" ] && args+=(--stall-timeout "$STALL_TIMEOUT")
    log "checkpoints in $CKPT_DIR, metrics in $METRICS"
    log_rank_hosts

    run_ranks 0 "$bin" "${args[@]}" --dry-run
    [ "$RC" -eq 0 ] || die "$RC" "the dry run failed with exit $RC: $(explain_exit "$RC"); nothing was trained"
    if [ "$STOP_SIGNAL" = USR1 ]; then
        log "the warning signal came before training started"
        requeue_or_stop
    elif [ -n "$STOP_SIGNAL" ]; then
        die 4 "stopped on SIG$STOP_SIGNAL before training started"
    fi

    READY_METRICS=1
    run_ranks 1 "$bin" "${args[@]}"
    log "resnet_dist exited with $RC: $(explain_exit "$RC")"
    if [ "$RC" -eq 3 ] && [ -n "$STOP_SIGNAL" ] && [ "$STOP_SIGNAL" != USR1 ]; then
        RC=4 # a stop asked for with SIGTERM/SIGINT, carried out through SIGUSR1
    fi
    case $RC in
    0) log "training finished: final checkpoint in $CKPT_DIR" ;;
    3) requeue_or_stop ;;
    4) log "stopped on SIG${STOP_SIGNAL:-TERM}: not requeueing; to continue, submit again with CKPT_DIR=$CKPT_DIR" ;;
    esac
    exit "$RC"
}

# Training set-up shared by the training jobs: DATA (must exist), CKPT_DIR
# (default runs/<job name>-<job id> in the submit directory: a requeue keeps
# the job ID and so finds it; set it to continue across submissions),
# METRICS, and BATCH (global; default BATCH_PER_RANK x ranks).
# With DATA_OPTIONAL=1 (the smoke job) an unset DATA is allowed.
setup_training() { # EXAMPLE-COMMAND
    if [ -n "${DATA:-}" ] || [ "${DATA_OPTIONAL:-0}" != 1 ]; then
        [ -n "${DATA:-}" ] || die 2 "DATA is not set: submit with $1"
        [ -e "$DATA" ] || die 2 "DATA=$DATA: no such file (seen from $(hostname -s)); make it with jobs/prep-imagenet.slurm (see jobs/README.md)"
        if [ ! -f "$DATA" ] || [ ! -r "$DATA" ]; then
            die 2 "DATA=$DATA: not a readable file"
        fi
    fi
    CKPT_DIR=${CKPT_DIR:-${SLURM_SUBMIT_DIR:-$(pwd)}/runs/$JOB_NAME-$SLURM_JOB_ID}
    METRICS=${METRICS:-$CKPT_DIR/metrics.jsonl}
    BATCH=${BATCH:-$((${BATCH_PER_RANK:-32} * NTASKS))}
    case $BATCH in
    '' | *[!0-9]* | 0) die 2 "BATCH=$BATCH: expected the global batch size, a positive whole number" ;;
    esac
    [ $((BATCH % NTASKS)) -eq 0 ] ||
        die 2 "BATCH=$BATCH (global) does not divide over $NTASKS ranks: use a multiple of $NTASKS"
    EXTRA=()
    read -r -a EXTRA <<<"${EXTRA_ARGS:-}"
}

# imagenet_recipe ARCH: fills TRAIN_ARGS with a recipe whose result is
# published (docs/training.md, sections 5 and 6). SCHEDULE=step (the
# default) is torchvision's reference recipe: 90 epochs, lr 0.1 x BATCH/256
# (--base-lr), divided by 10 at epochs 30 and 60 (LR_STEPS), momentum 0.9,
# weight decay 1e-4, RandomResizedCrop 224 + flip; torchvision's weights
# trained this way reach 76.13% (resnet50) and 78.31% (resnet152) top-1 at
# a global batch of 256. Above 256 images, WARMUP_EPOCHS defaults to 5
# (Goyal et al.'s gradual warmup, which keeps the accuracy of batch 256 up
# to 8k). SCHEDULE=plateau is He et al.'s "divide by 10 when the error
# plateaus" with the patience, threshold and LR floor of docs/training.md
# section 3: at most three cuts.
imagenet_recipe() {
    local schedule floor warmup
    case ${SCHEDULE:-step} in
    step) schedule=(--lr-schedule step --lr-steps "${LR_STEPS:-30,60}" --lr-gamma 0.1) ;;
    plateau)
        floor=$(awk -v b="$BATCH" 'BEGIN { printf "%g", 0.0001 * b / 256 }')
        schedule=(--lr-schedule plateau --plateau-metric val_top1 --plateau-factor 0.1
            --plateau-patience 5 --plateau-threshold 0.001
            --plateau-threshold-mode abs --min-lr "$floor")
        ;;
    *) die 2 "SCHEDULE=$SCHEDULE: expected step or plateau" ;;
    esac
    warmup=${WARMUP_EPOCHS:-$([ "$BATCH" -gt 256 ] && echo 5 || echo 0)}
    TRAIN_ARGS=(--arch "$1" --data "$DATA_RUN" --crop "${CROP:-224}" --aug rrc --batch-size "$BATCH"
        --epochs "${EPOCHS:-90}" --base-lr 0.1 --warmup-epochs "$warmup" "${schedule[@]}"
        --momentum 0.9 --weight-decay 1e-4
        --checkpoint-minutes "${CHECKPOINT_MINUTES:-30}" --log-every "${LOG_EVERY:-50}")
    [ -n "${MAX_STEPS:-}" ] && TRAIN_ARGS+=(--max-steps "$MAX_STEPS")
    TRAIN_ARGS+=("${EXTRA[@]}")
}
