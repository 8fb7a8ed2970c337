#!/bin/sh
# End-to-end tests of random erasing (--random-erase P), docs/training.md:
#   - a 2-rank run with --random-erase 0.5 stopped mid-epoch (step 5 of 8)
#     and resumed ends bitwise equal to an uninterrupted run: the erasing
#     draws are keyed by (seed, epoch, position), so a resume repeats them;
#   - 1 and 2 ranks give the same weights within float32 reduction noise
#     (--sync-bn, one step from a common checkpoint, as
#     tests/e2e/syncbn_exact.sh compares raw weights);
#   - erasing happens in training (P = 1 trains other weights than P = 0,
#     with --aug none too) and never in evaluation (--eval-only prints the
#     same figures with and without the flag);
#   - the flag checks (P outside [0, 1] is exit 2) and the config line.
. tests/e2e/lib/common.sh
e2e_setup random-erase
LIMIT=120

fixture data.h5 --train 64 --val 20
fixture data16.h5 --train 16 --val 16 --size 32

# 64 images / 16 = 4 steps per epoch, 2 epochs.
RUN="$BIN --arch resnet20 --stem small --batch-size 16 --lr 0.05 --log-every 2 --epochs 2
     --data $T/data.h5 --random-erase 0.5"
MPI2="mpirun -np 2 --oversubscribe"
FINAL=step-00000008.h5

run straight -- $MPI2 $RUN --checkpoint-dir "$T/straight"
run stopped -- $MPI2 $RUN --checkpoint-dir "$T/stop" --max-steps 5
if run resumed -- $MPI2 $RUN --checkpoint-dir "$T/stop" --resume auto; then
    grep -q "resumed from .*step-00000005.h5" "$T/resumed.log" &&
        ok "resumed at step 5, mid-epoch" || bad "resumed at step 5, mid-epoch"
fi
compare "$T/straight/$FINAL" "$T/stop/$FINAL" \
    "--random-erase 0.5: stopped at step 5 + resumed = uninterrupted, bitwise" --attrs step

# The config line, and the command line the checkpoint keeps.
grep -q "^config: data=$T/data.h5 aug=cifar random_erase=0.5 drop_last=1 loader_threads=1$" \
    "$T/straight.log" && ok "the config line shows random_erase=0.5" ||
    { bad "the config line shows random_erase=0.5"; show "$T/straight.log"; }
$PYTHON - "$T/straight/$FINAL" <<'PY' && ok "the checkpoint's command_line holds the flag" || bad "the checkpoint's command_line holds the flag"
import h5py, sys
assert "--random-erase 0.5" in h5py.File(sys.argv[1], "r").attrs["command_line"]
PY

# 1 and 2 ranks: one step (global batch 16, --sync-bn) from a common
# 2-step checkpoint, --aug none so that the erasing is the only randomness.
SYNC="$BIN --arch resnet20 --stem small --aug none --sync-bn --data $T/data16.h5 --batch-size 16
      --lr 0.1 --log-every 1 --random-erase 0.5"
run common -- $SYNC --epochs 2 --checkpoint-dir "$T/common"
run one -- $SYNC --epochs 3 --resume "$T/common/step-00000002.h5" --checkpoint-dir "$T/one"
run two -- $MPI2 $SYNC --epochs 3 --resume "$T/common/step-00000002.h5" --checkpoint-dir "$T/two"
compare "$T/two/step-00000003.h5" "$T/one/step-00000003.h5" \
    "1 and 2 ranks erase the same rectangles: the same weights within float32 noise" --rtol 1e-4

# Training erases: the same step from the common checkpoint with P = 1 and
# P = 0 (--aug none: nothing else random) trains other weights.
run none0 -- $SYNC --random-erase 0 --epochs 3 --resume "$T/common/step-00000002.h5" \
    --checkpoint-dir "$T/none0"
run none1 -- $SYNC --random-erase 1 --epochs 3 --resume "$T/common/step-00000002.h5" \
    --checkpoint-dir "$T/none1"
differ "$T/none0/step-00000003.h5" "$T/none1/step-00000003.h5" \
    "--aug none: P = 1 and P = 0 train different weights"
grep -q "^config: data=$T/data16.h5 aug=none drop_last=1 loader_threads=1$" "$T/none0.log" &&
    ok "P = 0: no random_erase on the config line" ||
    { bad "P = 0: no random_erase on the config line"; show "$T/none0.log"; }

# Evaluation never erases: --eval-only figures with P = 1 are P = 0's (on
# 2 ranks, as the straight run validated).
EVAL="$MPI2 $BIN --arch resnet20 --stem small --batch-size 16 --data $T/data.h5 --eval-only
      --init-from $T/straight/$FINAL"
run eval0 -- $EVAL
run eval1 -- $EVAL --random-erase 1
a=$(grep "^val: " "$T/eval0.log")
b=$(grep "^val: " "$T/eval1.log")
[ -n "$a" ] && [ "$a" = "$b" ] && ok "--eval-only is not erased: $a" ||
    bad "--eval-only is not erased: '$a' vs '$b'"
# nor is validation during training: the straight run's last validation
# of its final weights is what --eval-only reports for them
a=$(grep "^val epoch 1 step 8: " "$T/straight.log" | sed 's/^val epoch 1 step 8://')
b=$(grep "^val: " "$T/eval0.log" | sed 's/^val://')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "validation in training is not erased" ||
    bad "validation in training is not erased: '$a' vs '$b'"

# Flag checks.
for p in 1.5 -0.1 nan abc; do
    expect 2 "random-erase: '$p' is not a number in \[0, 1\]" "--random-erase $p: exit 2" -- \
        $RUN --random-erase "$p" --checkpoint-dir "$T/bad"
done
expect 2 "random-erase: '1.5' is not a number in \[0, 1\]" "2 ranks agree on the exit" -- \
    $MPI2 $RUN --random-erase 1.5 --checkpoint-dir "$T/bad"
[ ! -d "$T/bad" ] && ok "a refused flag writes nothing" || bad "a refused flag writes nothing"

echo "random_erase: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
