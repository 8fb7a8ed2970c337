#!/bin/sh
# test_timelimit.sh - the job script's own time-limit warning through a real
# Slurm; nothing in this test sends a signal: jobs/resnet18-smoke.slurm with
# its own `#SBATCH --signal=B:USR1@60`, --time=1 and MAX_RESTARTS=0 is warned
# at slurmctld's next time-limit check (every 30 s) and stops with exit 3.
# The whole time-limit cycle (warning, checkpoint, requeue, resume, planned
# final step) runs on two nodes in test_multinode_faults.sh.
# About 40 s.
BUILD=${BUILD:-build}
. tests/slurm/cluster.sh
training_test_start timelimit

# 256 images / batch 16 = 16 steps per epoch.
export DATA="$T/data.h5" ARCH=resnet20 STEM=small BATCH=16 LOG_EVERY=4
export RESNET_DIST_BIN="$BUILD/bin/resnet_dist"
SB="--nodes=1 --ntasks-per-node=2 --cpus-per-task=1"

# The job script's own `#SBATCH --signal=B:USR1@60` line (not
# overridden): with --time=1 the warning is due at once and comes at
# slurmctld's next time-limit check; MAX_RESTARTS=0 turns it into a stop
# with exit 3.
# shellcheck disable=SC2086 # $SB holds several options
id=$(EPOCHS=1000 MAX_RESTARTS=0 CKPT_DIR="$T/own" sbatch --parsable $SB --time=1 --job-name=own \
    --output="$T/own.out" jobs/resnet18-smoke.slurm)
state=$(job_wait "$id" 120)
got="$state $(job_field "$id" ExitCode) restarts $(job_field "$id" Restarts)"
if [ "$got" = "FAILED 3:0 restarts 0" ] && grep -q "received SIGUSR1" "$T/own.out" &&
    grep -q "not requeueing: job $id was restarted 0 times (MAX_RESTARTS=0)" "$T/own.out"; then
    ok "the script's #SBATCH --signal line is honoured: warned, stopped with exit 3"
else
    bad "own --signal line: $got"
    show_log "$T/own.out"
fi
finish slurm_timelimit
