#!/bin/sh
# End-to-end test of --sync-bn: W ranks holding b images each compute what
# one rank holding the whole global batch of W*b computes, on the real
# trainer (resnet20, small stem, 32 px, --aug none; every global batch is the
# same images on any number of ranks). Compared tensor by tensor relative to
# the tensor's scale (compare_checkpoints.py --rtol): parameters, BatchNorm
# running statistics and momentum buffers (gradient + weight decay), within
# 1e-4:
#   - after 1 and after 3 steps with the learning rate at 0, so the weights
#     stay put and every step's forward is the same computation on any split:
#     the momentum buffers hold the sum of three steps' gradients, the running
#     statistics three updates with the unbiased global variance; W = 2, 4
#     (global batch 16) and 64 (global batch 64, one image per rank);
#   - one step at learning rate 0.1 from a common 2-step checkpoint (moved
#     weights, non-zero momentum and running statistics); W = 2, 4;
#   - the validation loss after each step (BatchNorm in eval mode, with the
#     running statistics) agrees to 1e-3.
# Three steps of training at a real learning rate are not compared: the
# reductions of the convolutions' weight gradients (per rank, then across
# ranks) round differently from one rank's, weights then differ by an ulp,
# and a ReLU whose input is within that of zero flips; one flip moves the
# gradients below it by ~1e-3. One rank with 1 and with 2 threads differs as
# much after 3 steps, with or without --sync-bn.
. tests/e2e/lib/common.sh
e2e_setup syncbn-exact
LIMIT=180
RTOL=1e-4

# One step per epoch: 16 training images at global batch 16, 64 at 64.
for n in 16 64; do
    fixture data$n.h5 --train $n --val $n --size 32
done

# train NAME RANKS GLOBAL_BATCH LR EPOCHS [flags...]: a checkpoint every
# step into $T/NAME, the log in $T/NAME.log; sets $code (124: killed).
train() {
    name=$1 np=$2 batch=$3 lr=$4 epochs=$5
    shift 5
    mpirun -np "$np" --oversubscribe "$BIN" --arch resnet20 --stem small --aug none \
        --sync-bn --data "$T/data$batch.h5" --batch-size "$batch" --lr "$lr" \
        --epochs "$epochs" --checkpoint-every 1 --keep 0 --log-every 1 \
        --checkpoint-dir "$T/$name" "$@" >"$T/$name.log" 2>&1 &
    pid=$!
    if exits_within "$pid" "$LIMIT"; then
        wait "$pid"
        code=$?
    else
        code=124
    fi
    [ "$code" -eq 0 ] || { bad "$name: exit $code"; show "$T/$name.log"; }
}

# same NAME REF STEP: the checkpoints of step STEP agree within RTOL
same() {
    file=$(printf 'step-%08d.h5' "$3")
    if $PYTHON tests/fixtures/compare_checkpoints.py "$T/$1/$file" "$T/$2/$file" \
        --rtol "$RTOL" >"$T/cmp" 2>&1; then
        ok "$1 = $2 after step $3: $(sed -n 's/^largest relative difference: //p' "$T/cmp")"
    else
        bad "$1 vs $2 after step $3"; show "$T/cmp"
    fi
}

# same_val NAME REF: every validation loss agrees to 1e-3 relative
same_val() {
    sed -n 's/^val .* loss \([0-9.]*\) .*/\1/p' "$T/$1.log" >"$T/val1"
    sed -n 's/^val .* loss \([0-9.]*\) .*/\1/p' "$T/$2.log" >"$T/val2"
    if [ -s "$T/val2" ] && paste "$T/val1" "$T/val2" | awk '
        { d = $1 - $2; if (d < 0) d = -d; if (NF != 2 || d > 1e-3 * $2 + 1e-4) bad = 1 }
        END { exit bad }' && [ "$(wc -l <"$T/val1")" -eq "$(wc -l <"$T/val2")" ]; then
        ok "$1 = $2: validation losses $(tr '\n' ' ' <"$T/val1")"
    else
        bad "$1 vs $2: validation losses $(tr '\n' ' ' <"$T/val1")vs $(tr '\n' ' ' <"$T/val2")"
    fi
}

# Learning rate 0: steps 1 and 3 on 2, 4 and 64 ranks.
train one16 1 16 0 3
train one64 1 64 0 3
for w in 2 4 64; do
    g=16
    [ "$w" -eq 64 ] && g=64
    start=$(date +%s)
    train "w$w" "$w" "$g" 0 3
    echo "  ($w ranks x $((g / w)): $(($(date +%s) - start)) s)"
    same "w$w" "one$g" 1
    same "w$w" "one$g" 3
    same_val "w$w" "one$g"
done

# Learning rate 0.1: step 3 from the same 2-step checkpoint.
train lr2 1 16 0.1 2
from="$T/lr2/step-00000002.h5"
train lr_one16 1 16 0.1 3 --resume "$from"
for w in 2 4; do
    train "lr_w$w" "$w" 16 0.1 3 --resume "$from"
    same "lr_w$w" lr_one16 3
    same_val "lr_w$w" lr_one16
done

echo "syncbn_exact: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
