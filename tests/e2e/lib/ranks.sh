# shellcheck shell=sh
# ranks.sh - finding and watching the ranks of a job started with mpirun in
# the background (sourced by end-to-end scripts, not run).

# wait_for PATTERN FILE SECONDS: until FILE has a line matching PATTERN
wait_for() {
    n=$(($3 * 10))
    while ! grep -q -- "$1" "$2" 2>/dev/null; do
        [ "$n" -le 0 ] && return 1
        sleep 0.1
        n=$((n - 1))
    done
}

# rank_pid MPIRUN_PID RANK: the PID of that rank among mpirun's children
rank_pid() {
    for c in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# cpu_ticks PID: user + system CPU time so far, in clock ticks
cpu_ticks() {
    sed 's/^[0-9]* ([^)]*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
