#!/bin/sh
# End-to-end test of docs/design.md invariant 3, "no rank dies alone", from the
# outside: `kill -9` one rank of a 3-rank training run (a non-zero rank,
# then rank 0); the job must end non-zero within 30 s, never hang with the
# survivors blocked in a collective. A rank is found among mpirun's
# children by its OMPI_COMM_WORLD_RANK.
. tests/e2e/lib/common.sh
e2e_setup dist-kill
LIMIT=30
. tests/e2e/lib/ranks.sh

# alive PID: still running (not a zombie) 5 s after mpirun has ended
alive() {
    n=50
    while [ "$n" -gt 0 ]; do
        state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
        [ -z "$state" ] || [ "$state" = Z ] && return 1
        sleep 0.1
        n=$((n - 1))
    done
    return 0
}

fixture data.h5 --train 240 --val 20

# kill_case RANK: a long 3-rank run (100 epochs of 20 steps), one rank killed
# after the training line of step 10
kill_case() {
    log="$T/kill$1.log"
    mpirun -np 3 --oversubscribe "$BIN" --arch resnet20 --stem small --batch-size 12 --lr 0.05 \
        --log-every 10 --epochs 100 --data "$T/data.h5" --checkpoint-dir "$T/ckpt$1" \
        >"$log" 2>&1 &
    pid=$!
    victim=""
    if wait_for "step 10/2000:" "$log" 120; then
        victim=$(rank_pid "$pid" "$1")
    fi
    if [ -z "$victim" ]; then
        bad "kill -9 rank $1: no progress line or no rank $1 under mpirun $pid"; show "$log"
        for c in $(pgrep -P "$pid"); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid"
        return
    fi
    survivors=$(pgrep -P "$pid" | grep -vx "$victim")
    start=$(date +%s)
    kill -KILL "$victim"
    if ! exits_within "$pid" "$LIMIT"; then
        bad "kill -9 rank $1: the job still runs after $LIMIT s"; show "$log"
        return
    fi
    wait "$pid"
    code=$?
    took=$(($(date +%s) - start))
    left=""
    for s in $survivors; do
        alive "$s" && left="$left $s"
    done
    if [ "$code" -ne 0 ] && [ -z "$left" ]; then
        ok "kill -9 rank $1 (pid $victim): job ended with exit $code in ${took} s"
    else
        bad "kill -9 rank $1: exit $code after ${took} s, ranks still alive:${left:- none}"
        show "$log"
        for s in $left; do kill -KILL "$s" 2>/dev/null; done
    fi
}

kill_case 1
kill_case 0

echo "dist_kill: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
