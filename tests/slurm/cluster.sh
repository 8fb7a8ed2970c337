# shellcheck shell=sh
# cluster.sh - real Slurm clusters on this machine for the tests in
# tests/slurm/, sourced by them (POSIX sh). munged (as the munge user, with
# its own key, socket and log) and slurmctld run in the root namespace, as
# root, in the foreground, without systemd or cgroups; config, state and logs
# are under $BUILD/slurm/<name>/; the machine's /etc/slurm and /etc/munge are
# not used. Client commands find the cluster through SLURM_CONF, which
# cluster_start exports; jobs inherit it.
#
#   . tests/slurm/cluster.sh
#   cluster_start NAME || exit 1     # one node: slurmd on localhost
#   cluster_start NAME 3 || exit 1   # nodes node1..node3 (below)
#   id=$(sbatch --parsable ...)
#   state=$(job_wait "$id" 120)      # COMPLETED, FAILED, ... or TIMEOUT_WAIT
#   job_field "$id" ExitCode         # 0:0
#   cluster_stop                     # cancels jobs, stops the daemons
#
# cluster_start installs a trap that stops the cluster when the test exits.
# What it started is recorded under $BUILD/slurm/<name>/run/, so that
# cluster_stop_dir (tests/slurm/multinode.sh stop) also works from another
# shell, and a start first clears what a killed earlier run left.
#
# Several nodes: each slurmd runs in its own network, UTS and mount
# namespace (hostname nodeI, address 10.213.S.(10+I) on eth0, one end of a
# veth pair whose other end is on a bridge in the root namespace holding
# 10.213.S.1, where slurmctld listens). Nothing is routed or forwarded out
# of that subnet. Each node has its own spool, pid file, log and TmpFS
# (srun's PMIx plugin keeps its step folders there; shared, the nodes'
# folders collide), and sees its own folder at $CLUSTER_LOCAL, like a
# node-local disk. slurmd is started with nsenter --net and unshare, not
# with `ip netns exec`, which remounts /sys without the cgroup file system
# that slurmd needs.
#
# Fast-requeue settings: a requeued job waits for its credential to expire
# (AuthInfo cred_expire=10 instead of 120 s), the scheduler runs every few
# seconds, KillWait=5. DependencyParameters=kill_invalid_depend cancels a job
# whose afterok can never be met (22.05 ignores it in SchedulerParameters).
# Several nodes: SlurmdTimeout=10, so that a lost node is marked down after
# about 25-30 s.

BUILD=${BUILD:-build}
CLUSTER_DIR=
CLUSTER_PIDS=
CLUSTER_NODES=
CLUSTER_LOCAL=

cluster_log() { echo "cluster: $*" >&2; }

# free_port: a TCP port nobody listens on (the kernel picks it).
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# alive PID: true while PID runs. Reads /proc/PID/stat, because where PID 1
# does not reap (containers, CI) a dead daemon stays a zombie and kill -0
# still succeeds.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
    limit=$(($1 * 5))
    shift
    n=0
    while ! "$@" >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$n" -ge "$limit" ] && return 1
        sleep 0.2
    done
}

# started PID COMMAND...: true once COMMAND succeeds or PID has died.
started() {
    p=$1
    shift
    "$@" || ! alive "$p"
}

# ours PID: true when PID is alive and was started for this cluster (its
# command line names the cluster's folder): a PID recorded by a killed
# earlier run may belong to another process by now.
ours() {
    alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$CLUSTER_DIR/"
}

# record_pid PID: a daemon to stop, in start order, kept in memory and in
# run/pids.
record_pid() {
    CLUSTER_PIDS="${CLUSTER_PIDS:+$CLUSTER_PIDS }$1"
    echo "$1" >>"$CLUSTER_DIR/run/pids"
}

# nodes_idle: every node of the cluster is idle.
nodes_idle() {
    [ "$(sinfo -h -N -o %T 2>/dev/null | grep -c '^idle')" -eq "${CLUSTER_NODES:-1}" ]
}

cluster_requirements() { # NODES (empty for one node)
    for tool in munged mungekey slurmctld slurmd sbatch scontrol runuser ${1:+ip nsenter unshare}; do
        command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
        command -v "$tool" >/dev/null 2>&1 || { cluster_log "$tool is not installed (apt-get install slurm-wlm munge iproute2 util-linux)"; return 1; }
    done
    if [ "$(id -u)" -ne 0 ]; then
        cluster_log "the Slurm tests start slurmd and munged${1:+ and make network namespaces} and need root"
        return 1
    fi
    id munge >/dev/null 2>&1 || { cluster_log "no munge user (apt-get install munge)"; return 1; }
}

# munge_start: munged as the munge user, its key, socket, log and seed in
# $CLUSTER_DIR/munge (mode 755, so that root's slurmd and jobs reach the
# socket). One munged serves every node: the socket is a file path, which
# network namespaces do not separate.
munge_start() {
    m=$CLUSTER_DIR/munge
    chown munge:munge "$m" && chmod 0755 "$m"
    if ! runuser -u munge -- mungekey --create --keyfile="$m/munge.key" >/dev/null 2>&1; then
        dd if=/dev/urandom of="$m/munge.key" bs=1024 count=1 2>/dev/null
        chown munge:munge "$m/munge.key"
    fi
    chmod 0400 "$m/munge.key"
    runuser -u munge -- munged --foreground --origin=127.0.0.1 --socket="$m/munge.socket" \
        --key-file="$m/munge.key" --log-file="$m/munged.log" --pid-file="$m/munged.pid" \
        --seed-file="$m/munged.seed" >"$CLUSTER_DIR/log/munged.out" 2>&1 &
    record_pid "$!"
    wait_for 10 started "$!" test -S "$m/munge.socket"
    if ! test -S "$m/munge.socket"; then
        cluster_log "munged did not start; see $CLUSTER_DIR/log/munged.out and $m/munged.log"
        cat "$CLUSTER_DIR/log/munged.out" "$m/munged.log" >&2 2>/dev/null
        return 1
    fi
}

# conf_write HOST ADDR: the settings every test cluster shares, with
# slurmctld on HOST at ADDR; the caller appends its nodes and partition.
conf_write() {
    d=$CLUSTER_DIR
    cat >"$d/etc/slurm.conf" <<CONF
# Generated by tests/slurm/cluster.sh for a test cluster.
ClusterName=resnettest
SlurmctldHost=$1($2)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket,cred_expire=10
StateSaveLocation=$d/state
# Per node (%n: the node's name).
SlurmdSpoolDir=$d/spool/%n
SlurmdPidFile=$d/run/slurmd-%n.pid
SlurmdLogFile=$d/log/slurmd-%n.log
TmpFS=$d/tmp/%n
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no accounting daemon: exit codes from scontrol and jobcomp.
# Binding (task/affinity) on one node; not on several, whose nodes share
# this machine's cores: each would bind its first rank to the same core.
ProctrackType=proctrack/linuxproc
TaskPlugin=$task_plugin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,sched_interval=10
DependencyParameters=kill_invalid_depend
EnforcePartLimits=ALL
JobRequeue=1
KillWait=5
# Job IDs apart from another test cluster's on this machine (srun's PMIx
# plugin names its folders after them).
FirstJobId=$((ctld_port * 10))
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
CONF
}

# net_pick: S for a subnet 10.213.S.0/24 that no address or route of this
# machine uses, and no link named rdbS or rdS-*: a veth outlives its deleted
# namespace for a moment. Starts from a hash of the folder.
net_pick() {
    s=$(($(printf %s "$CLUSTER_DIR" | cksum | cut -d' ' -f1) % 230 + 20))
    n=0
    while ip -o addr show | grep -q " 10\.213\.$s\." || ip route show | grep -q "^10\.213\.$s\." ||
        ip -o link show | grep -Eq "^[0-9]+: (rdb$s|rd$s-n[0-9]+)[@:]"; do
        s=$((s >= 249 ? 20 : s + 1))
        n=$((n + 1))
        [ "$n" -ge 230 ] && return 1
    done
    echo "$s"
}

# net_start NODES: the bridge rdbS (10.213.S.1) and, for node I, the
# namespace rdS-nodeI with eth0 = 10.213.S.(10+I), the other end of the
# veth rdS-nI on the bridge. Each is recorded in run/net before it is made.
net_start() {
    s=$(net_pick) || { cluster_log "no free subnet 10.213.S.0/24"; return 1; }
    CLUSTER_NET=10.213.$s
    echo "link rdb$s" >>"$CLUSTER_DIR/run/net"
    ip link add "rdb$s" type bridge &&
        ip addr add "$CLUSTER_NET.1/24" dev "rdb$s" &&
        ip link set "rdb$s" up || return 1
    i=1
    while [ "$i" -le "$1" ]; do
        ns=rd$s-node$i
        echo "netns $ns" >>"$CLUSTER_DIR/run/net"
        ip netns add "$ns" &&
            ip link add "rd$s-n$i" type veth peer name eth0 netns "$ns" &&
            ip link set "rd$s-n$i" master "rdb$s" up &&
            ip -n "$ns" addr add "$CLUSTER_NET.$((10 + i))/24" dev eth0 &&
            ip -n "$ns" link set eth0 up &&
            ip -n "$ns" link set lo up || return 1
        i=$((i + 1))
    done
}

# node_netns NODE: the network namespace of nodeI (for ip netns pids/exec).
node_netns() { sed -n "s/^netns \\(.*-$1\\)\$/\\1/p" "$CLUSTER_DIR/run/net" 2>/dev/null; }

# slurmd_start NODE: slurmd of NODE inside its namespaces, hostname NODE,
# its own folder bind-mounted at $CLUSTER_LOCAL.
slurmd_start() {
    mkdir -p "$CLUSTER_DIR/nodes/$1" "$CLUSTER_DIR/spool/$1" "$CLUSTER_DIR/tmp/$1"
    nsenter --net="/run/netns/$(node_netns "$1")" unshare --uts --mount sh -c \
        'hostname "$1" && mount --bind "$2" "$3" && exec slurmd -D -N "$1" -f "$4"' \
        slurmd "$1" "$CLUSTER_DIR/nodes/$1" "$CLUSTER_LOCAL" "$SLURM_CONF" \
        >"$CLUSTER_DIR/log/slurmd-$1.out" 2>&1 &
    record_pid "$!"
}

# cluster_start NAME [NODES]: munged, slurmctld and one slurmd on localhost,
# or NODES slurmds node1..nodeNODES in their namespaces; waits until every
# node is idle.
cluster_start() {
    cluster_requirements "${2:-}" || return 1
    mkdir -p "$BUILD/slurm"
    CLUSTER_DIR=$(cd "$BUILD/slurm" && pwd)/$1
    trap 'cluster_stop' EXIT
    trap 'cluster_stop; exit 130' INT TERM HUP
    cluster_stop_dir "$CLUSTER_DIR" # what a killed earlier run left
    trap 'cluster_stop' EXIT
    trap 'cluster_stop; exit 130' INT TERM HUP
    rm -rf "$CLUSTER_DIR"
    mkdir -p "$CLUSTER_DIR/etc" "$CLUSTER_DIR/state" "$CLUSTER_DIR/spool" \
        "$CLUSTER_DIR/log" "$CLUSTER_DIR/run" "$CLUSTER_DIR/munge" "$CLUSTER_DIR/tmp"
    CLUSTER_NODES=${2:-1}
    munge_start || return 1

    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    d=$CLUSTER_DIR
    if [ -z "${2:-}" ]; then
        CLUSTER_NODE=$(hostname -s)
        mkdir -p "$d/spool/$CLUSTER_NODE" "$d/tmp/$CLUSTER_NODE"
        # The tests run 2-task jobs; a 1-CPU machine advertises 2 (config_overrides).
        if [ "$(nproc)" -ge 2 ]; then
            node_hw=$(slurmd -C 2>/dev/null | head -n 1 | sed 's/^NodeName=[^ ]* //; s/ *RealMemory=[0-9]*//')
        else
            node_hw="CPUs=2"
        fi
        task_plugin=task/affinity
        conf_write "$CLUSTER_NODE" 127.0.0.1
        cat >>"$d/etc/slurm.conf" <<EOF
NodeName=$CLUSTER_NODE NodeAddr=127.0.0.1 $node_hw State=UNKNOWN
PartitionName=test Nodes=$CLUSTER_NODE Default=YES MaxTime=INFINITE State=UP
EOF
    else
        net_start "$2" || { cluster_log "cannot make the namespaces and the bridge"; return 1; }
        CLUSTER_LOCAL=$d/node-local
        mkdir -p "$CLUSTER_LOCAL"
        task_plugin=task/none
        conf_write "$(hostname -s)" "$CLUSTER_NET.1"
        # A lost node is marked down after about 2.5 x SlurmdTimeout.
        echo "SlurmdTimeout=10" >>"$d/etc/slurm.conf"
        i=1
        while [ "$i" -le "$2" ]; do
            # Each node advertises 4 CPUs (config_overrides), so that one
            # node takes as many ranks as the tests spread over three.
            echo "NodeName=node$i NodeAddr=$CLUSTER_NET.$((10 + i)) CPUs=4 State=UNKNOWN" >>"$d/etc/slurm.conf"
            i=$((i + 1))
        done
        echo "PartitionName=test Nodes=node[1-$2] Default=YES MaxTime=INFINITE State=UP" >>"$d/etc/slurm.conf"
    fi
    SLURM_CONF=$d/etc/slurm.conf
    # Jobs inherit the environment: the tests run as root, and so does mpirun.
    export SLURM_CONF OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    slurmctld -D -i -f "$SLURM_CONF" >"$d/log/slurmctld.out" 2>&1 &
    record_pid "$!"
    if ! wait_for 15 started "$!" scontrol ping || ! scontrol ping >/dev/null 2>&1; then
        cluster_log "slurmctld did not answer; see $d/log/slurmctld.log"
        tail -n 20 "$d/log/slurmctld.out" "$d/log/slurmctld.log" >&2 2>/dev/null
        return 1
    fi
    if [ -z "${2:-}" ]; then
        slurmd -D -f "$SLURM_CONF" >"$d/log/slurmd.out" 2>&1 &
        record_pid "$!"
    else
        i=1
        while [ "$i" -le "$2" ]; do
            slurmd_start "node$i"
            i=$((i + 1))
        done
    fi
    if ! wait_for 20 nodes_idle || ! nodes_idle; then
        cluster_log "nodes not idle: $(sinfo -h -N -o '%N %T %E' 2>&1 | tr '\n' ';'); see $d/log/slurmd*"
        tail -n 20 "$d"/log/slurmd*.out "$d"/log/slurmd*.log >&2 2>/dev/null
        return 1
    fi
    cluster_log "up: $(sinfo -h -o '%P %D %C %T %N' 2>&1) (SLURM_CONF=$SLURM_CONF)"
}

# cluster_stop: cancel every job, wait for them to end, kill what is left of
# them (processes started by this cluster carry its SLURM_CONF), then stop
# the slurmds, slurmctld and munged by the PIDs cluster_start recorded, and
# remove the namespaces and the bridge.
cluster_stop() {
    trap - EXIT INT TERM HUP
    [ -n "$CLUSTER_DIR" ] || return 0
    [ -n "$CLUSTER_PIDS" ] || [ -s "$CLUSTER_DIR/run/net" ] || return 0
    if [ -n "${SLURM_CONF:-}" ] && [ -n "$CLUSTER_PIDS" ] && scontrol ping >/dev/null 2>&1; then
        scancel --quiet --full "--user=$(id -un)" 2>/dev/null
        wait_for 20 no_jobs_left || cluster_log "jobs still running after scancel"
    fi
    for p in $(job_processes); do kill -9 "$p" 2>/dev/null; done
    # The slurmds, slurmctld, then munged: in reverse order of starting.
    # munged runs under runuser (the first PID): stop munged itself so that
    # runuser reaps it and exits, instead of leaving it to a PID 1 that may
    # not reap.
    mp=$(cat "$CLUSTER_DIR/munge/munged.pid" 2>/dev/null)
    first=${CLUSTER_PIDS%% *}
    for p in $(echo "$CLUSTER_PIDS" | tr ' ' '\n' | sed '1!G;h;$!d'); do
        ours "$p" || continue
        if [ "$p" = "$first" ] && [ -n "$mp" ] && alive "$mp"; then
            kill "$mp" 2>/dev/null
        else
            kill "$p" 2>/dev/null
        fi
        n=0
        while alive "$p" && [ "$n" -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
        alive "$p" && kill -9 "$p" 2>/dev/null
    done
    # Whatever still runs in a node's namespace, then the namespaces (their
    # veth pairs go with them) and the bridge.
    for ns in $(sed -n 's/^netns //p' "$CLUSTER_DIR/run/net" 2>/dev/null); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    for l in $(sed -n 's/^link //p' "$CLUSTER_DIR/run/net" 2>/dev/null); do
        ip link del "$l" 2>/dev/null
    done
    rm -f "$CLUSTER_DIR/run/net" "$CLUSTER_DIR/run/pids"
    wait 2>/dev/null
    CLUSTER_PIDS=
    cluster_log "stopped"
}

# cluster_stop_dir DIR: stops the cluster whose folder is DIR from what it
# recorded there (from another shell, or after a killed test).
cluster_stop_dir() {
    CLUSTER_DIR=$1
    CLUSTER_PIDS=$(tr "\n" " " 2>/dev/null <"$1/run/pids" | sed 's/ *$//')
    SLURM_CONF=$1/etc/slurm.conf
    export SLURM_CONF
    cluster_stop
}

no_jobs_left() { [ -z "$(squeue -h -o %i 2>/dev/null)" ] && [ -z "$(job_processes)" ]; }

# job_processes: PIDs of processes whose environment names this cluster's
# SLURM_CONF (job scripts, srun, ranks, slurmstepd of this slurmd).
job_processes() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}
        p=${p%/environ}
        [ "$p" = "$$" ] && continue
        case " $CLUSTER_PIDS " in *" $p "*) continue ;; esac
        if tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "SLURM_CONF=$CLUSTER_DIR/etc/slurm.conf" &&
            grep -q "SLURM_JOB_ID=" 2>/dev/null "$e"; then
            alive "$p" && echo "$p"
        fi
    done
}

# job_field JOBID FIELD: one field of `scontrol show job` (JobState, ExitCode,
# Restarts, Reason, ...).
job_field() {
    scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# job_wait JOBID SECONDS: waits until the job reached a final state and prints
# it; prints TIMEOUT_WAIT (return 1) if it did not within SECONDS. Polls
# scontrol itself: `sbatch --wait` reports 0 for a job cancelled before it
# started and backs off to 32 s between polls.
job_wait() {
    end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$end" ]; do
        s=$(job_field "$1" JobState)
        case $s in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
            echo "$s"
            return 0
            ;;
        esac
        sleep 1
    done
    echo TIMEOUT_WAIT
    return 1
}

# job_wait_state JOBID STATE SECONDS: waits until the job is in STATE.
job_wait_state() {
    end=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$end" ]; do
        [ "$(job_field "$1" JobState)" = "$2" ] && return 0
        sleep 0.5
    done
    return 1
}

# wait_log JOBID FILE PATTERN SECONDS: waits until FILE has a line matching
# PATTERN; fails when the job ended or SECONDS passed first.
wait_log() {
    end=$(($(date +%s) + $4))
    while [ "$(date +%s)" -lt "$end" ]; do
        grep -q -- "$3" "$2" 2>/dev/null && return 0
        case $(job_field "$1" JobState) in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 1 ;;
        esac
        sleep 0.3
    done
    return 1
}

# cluster_dump: the daemons' logs' last lines, for a failed test.
cluster_dump() {
    for f in "$CLUSTER_DIR"/log/slurmctld.log "$CLUSTER_DIR"/log/slurmd-*.log; do
        echo "--- last lines of $f"
        tail -n 15 "$f" 2>/dev/null
    done
}

# Results, as the other test scripts print them.
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok: $1"; }
bad() { FAILED=$((FAILED + 1)); echo "FAILED: $1"; }

# check NAME COMMAND...: ok when COMMAND succeeds.
check() {
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# show_log FILE: the last lines of a job log, indented, after a failure.
show_log() { tail -n "${2:-25}" "$1" 2>/dev/null | sed 's/^/    /'; }

# training_test_start NAME [NODES]: for a test of training jobs: a fresh
# folder $T = $BUILD/tmp/slurm-NAME, a dataset of 256 + 32 images of 16 px
# in $T/data.h5 and the cluster started (NODES nodes in namespaces, with
# tcp_only_mpi); on a failure, reports it and finishes as slurm_NAME.
training_test_start() {
    T=$(mkdir -p "$BUILD/tmp" && cd "$BUILD/tmp" && pwd)/slurm-$1
    rm -rf "$T" && mkdir -p "$T"
    if [ ! -x "$BUILD/bin/resnet_dist" ]; then
        bad "$BUILD/bin/resnet_dist is not built"
        finish "slurm_$1"
    fi
    "${PYTHON:-/usr/bin/python3}" tests/fixtures/make_dataset.py "$T/data.h5" --train 256 \
        --val 32 --size 16 || { bad "cannot make the dataset"; finish "slurm_$1"; }
    cluster_start "$1" ${2:+"$2"} || { bad "cluster start"; finish "slurm_$1"; }
    [ -z "${2:-}" ] || tcp_only_mpi
}

# tcp_only_mpi: the Open MPI settings of a cluster without InfiniBand,
# exported for the jobs (sbatch passes them on; srun and mpirun give them to
# every rank): the ob1 messaging layer (not UCX or libfabric), TCP between
# nodes, shared memory (vader) only within one, and only the cluster's
# subnet for MPI traffic and for mpirun's control channel.
tcp_only_mpi() {
    export OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self,vader \
        OMPI_MCA_btl_tcp_if_include="$CLUSTER_NET.0/24" OMPI_MCA_oob_tcp_if_include="$CLUSTER_NET.0/24"
}

# node_kill NODE: kills every process in NODE's network namespace at once
# (its slurmd, slurmstepds and ranks), as when the node loses power; its
# address stays, unanswered.
node_kill() {
    # shellcheck disable=SC2046 # one PID per word
    kill -9 $(ip netns pids "$(node_netns "$1")") 2>/dev/null
}

# rank_hosts NAME: the "ranks per host" lines of job NAME's log (one per
# run): "hosts NAME: node1 x1, node2 x1".
rank_hosts() { sed -n "s/^.*ranks per host: /hosts $1: /p" "$T/$1.out"; }

# host_count NAME: how many hosts the first run of job NAME had ranks on.
host_count() { rank_hosts "$1" | head -n 1 | tr ',' '\n' | grep -c ' x[0-9]'; }

# submit NAME [JOB]: submits JOB (jobs/resnet18-smoke.slurm) with the test's
# sbatch options $SB, CKPT_DIR=$T/NAME and its log in $T/NAME.out; prints the
# job ID.
submit() {
    # shellcheck disable=SC2086 # $SB holds several options
    CKPT_DIR="$T/$1" sbatch --parsable $SB --job-name="$1" --output="$T/$1.out" \
        "${2:-jobs/resnet18-smoke.slurm}"
}

# expect_job ID NAME STATE EXITCODE RESTARTS SECONDS: the job's final state,
# exit code and restart count, waiting at most SECONDS; its log on a mismatch.
expect_job() {
    state=$(job_wait "$1" "$6")
    got="$state $(job_field "$1" ExitCode) restarts $(job_field "$1" Restarts)"
    if [ "$got" = "$3 $4 restarts $5" ]; then
        ok "$2: $got"
    else
        bad "$2: $got, expected $3 $4 restarts $5"
        show_log "$T/$2.out"
        cluster_dump
    fi
}

# warned_job ID NAME PATTERN STATE EXITCODE RESTARTS SECONDS: once job NAME's
# log shows PATTERN (a training progress line), warns it as the time limit
# would (`scancel --signal=USR1 --batch`), then expect_job. Returns 1 if
# training never started (reported, with the log).
warned_job() {
    if ! wait_log "$1" "$T/$2.out" "$3" 120; then
        bad "$2: training did not start"
        show_log "$T/$2.out"
        return 1
    fi
    scancel --signal=USR1 --batch "$1"
    expect_job "$1" "$2" "$4" "$5" "$6" "$7"
}

# finish NAME: stops the cluster, prints "NAME: N passed, M failed", exits.
finish() {
    cluster_stop
    echo "$1: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}
