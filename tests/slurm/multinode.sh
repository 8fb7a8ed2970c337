#!/bin/sh
# multinode.sh - a Slurm cluster of several nodes on this machine, to try the
# job scripts by hand (the tests start their own through cluster.sh):
#
#   sh tests/slurm/multinode.sh start [NODES] [NAME]   # default 3 nodes, "manual"
#   eval "$(sh tests/slurm/multinode.sh env [NAME])"   # SLURM_CONF, Open MPI over TCP
#   sbatch --nodes=2 ... jobs/resnet18-smoke.slurm
#   sh tests/slurm/multinode.sh stop [NAME]
#
# Nodes node1..NODES, each slurmd in its own network, UTS and mount namespace
# on a private bridge (10.213.S.0/24); slurmctld and munged in the root
# namespace; everything under $BUILD/slurm/NAME. Both commands can be
# repeated: start first stops what an earlier start of NAME left, stop
# does nothing when nothing runs. Root needed.
BUILD=${BUILD:-build}
. tests/slurm/cluster.sh

env_lines() {
    conf=$CLUSTER_DIR/etc/slurm.conf
    net=$(sed -n 's/^SlurmctldHost=.*(\(.*\)\.1)$/\1/p' "$conf" 2>/dev/null)
    [ -n "$net" ] || { echo "no cluster in $CLUSTER_DIR (start it first)" >&2; return 1; }
    echo "export SLURM_CONF=$conf OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    echo "export OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self,vader OMPI_MCA_btl_tcp_if_include=$net.0/24 OMPI_MCA_oob_tcp_if_include=$net.0/24"
    echo "# node-local storage for STAGE_DIR: $CLUSTER_DIR/node-local (each node its own)"
}

case ${1:-} in
start)
    nodes=${2:-3}
    case $nodes in '' | *[!0-9]* | 0 | 1) echo "start: NODES must be 2 or more" >&2; exit 2 ;; esac
    cluster_start "${3:-manual}" "$nodes" || exit 1
    trap - EXIT INT TERM HUP # leave it running
    env_lines
    ;;
stop)
    mkdir -p "$BUILD/slurm"
    cluster_stop_dir "$(cd "$BUILD/slurm" && pwd)/${2:-manual}"
    ;;
env)
    mkdir -p "$BUILD/slurm"
    CLUSTER_DIR=$(cd "$BUILD/slurm" && pwd)/${2:-manual}
    env_lines
    ;;
*)
    echo "usage: sh tests/slurm/multinode.sh start [NODES] [NAME] | env [NAME] | stop [NAME]" >&2
    exit 2
    ;;
esac
