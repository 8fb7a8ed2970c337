#!/bin/sh
# End-to-end tests of mixup and cutmix (--mixup-alpha, --cutmix-alpha),
# docs/training.md:
#   - a 2-rank run with both (one of them per step) stopped mid-epoch (step 5
#     of 8) and resumed ends bitwise equal to an uninterrupted run;
#   - 1 and 2 ranks give the same weights within float32 noise (--sync-bn,
#     --aug none, two steps from a common checkpoint, as
#     tests/e2e/syncbn_exact.sh compares raw weights), for mixup and for
#     cutmix, and the mixed runs differ from an unmixed one;
#   - an odd batch per rank and an alpha out of [0, 100] are usage errors
#     (exit 2, one message);
#   - the start-up configuration shows the alphas.
. tests/e2e/lib/common.sh
e2e_setup mixup
LIMIT=120

fixture data.h5 --train 64 --val 20
fixture data16.h5 --train 16 --val 16 --size 32

# 64 images / 16 = 4 steps per epoch, 2 epochs.
RUN="$BIN --arch resnet20 --stem small --batch-size 16 --lr 0.05 --log-every 2 --epochs 2
     --data $T/data.h5 --mixup-alpha 0.2 --cutmix-alpha 1.0 --label-smoothing 0.1"
MPI2="mpirun -np 2 --oversubscribe"
FINAL=step-00000008.h5

run straight -- $MPI2 $RUN --checkpoint-dir "$T/straight"
run stopped -- $MPI2 $RUN --checkpoint-dir "$T/stop" --max-steps 5
if run resumed -- $MPI2 $RUN --checkpoint-dir "$T/stop" --resume auto; then
    grep -q "resumed from .*step-00000005.h5" "$T/resumed.log" &&
        ok "resumed at step 5, mid-epoch" || bad "resumed at step 5, mid-epoch"
fi
compare "$T/straight/$FINAL" "$T/stop/$FINAL" \
    "mixup+cutmix: stopped at step 5 + resumed = uninterrupted, bitwise" --attrs step
grep -q "^config: .* label_smoothing=0.1 mixup_alpha=0.2 cutmix_alpha=1 seed=0$" \
    "$T/straight.log" && ok "the configuration shows the alphas" ||
    { bad "the configuration shows the alphas"; show "$T/straight.log" 20; }

# 1 and 2 ranks: two steps (global batch 16, local 16 and 8) from a common
# 2-step checkpoint; the pairs (2i, 2i+1) are the same samples and the
# step's draw the same on both. (From the third step on, the reduction
# noise of --sync-bn grows past 1e-4 in small BN tensors even unmixed.)
SYNC="$BIN --arch resnet20 --stem small --aug none --sync-bn --data $T/data16.h5 --batch-size 16
      --lr 0.1 --log-every 1"
run common -- $SYNC --epochs 2 --checkpoint-dir "$T/common"
FROM="--epochs 4 --resume $T/common/step-00000002.h5"
run plain -- $SYNC $FROM --checkpoint-dir "$T/plain"
for mode in mixup cutmix; do
    run "$mode-1" -- $SYNC $FROM --$mode-alpha 1.0 --checkpoint-dir "$T/$mode-1"
    run "$mode-2" -- $MPI2 $SYNC $FROM --$mode-alpha 1.0 --checkpoint-dir "$T/$mode-2"
    compare "$T/$mode-2/step-00000004.h5" "$T/$mode-1/step-00000004.h5" \
        "$mode: 1 and 2 ranks give the same weights within float32 noise" --rtol 1e-4
    differ "$T/$mode-1/step-00000004.h5" "$T/plain/step-00000004.h5" \
        "$mode changes the training" --rtol 1e-3
done

# Flag checks.
# (each in its own folder, so that one wrongly accepted run cannot fail the next)
BASE="$BIN --arch resnet20 --stem small --epochs 1 --data $T/data.h5"
expect 2 "the local batch 3 (--batch-size 6 over 2 ranks) must be even" \
    "an odd batch per rank" -- $MPI2 $BASE --checkpoint-dir $T/f1 --batch-size 6 --cutmix-alpha 1.0
[ "$(grep -c "must be even" "$T/out")" -eq 1 ] && ok "2 ranks: the message is printed once" ||
    { bad "2 ranks: the message is printed once"; show "$T/out"; }
expect 2 "the local batch 7 (--batch-size 7 over 1 ranks) must be even" \
    "an odd batch on one rank" -- $BASE --checkpoint-dir $T/f2 --batch-size 7 --mixup-alpha 0.2
expect 2 "mixup-alpha: '-0.5' is not a number in \[0, 100\]" "a negative alpha" -- \
    $BASE --checkpoint-dir $T/f3 --batch-size 8 --mixup-alpha -0.5
expect 2 "cutmix-alpha: '101' is not a number in \[0, 100\]" "an alpha above 100" -- \
    $BASE --checkpoint-dir $T/f4 --batch-size 8 --cutmix-alpha 101

echo "mixup: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
