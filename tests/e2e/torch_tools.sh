#!/bin/sh
# End-to-end tests of the PyTorch tools (docs/pytorch.md): tools/ckpt_to_torch.py,
# tools/torch_to_ckpt.py and the networks of tools/resnet_torch.py.
#   - round trip: a checkpoint resnet_dist wrote (a CIFAR ResNet with option-A
#     shortcuts; a wrn-D-K pre-activation network trained with dropout and
#     drop-path; torchvision's resnet18 fine-tuned) -> .pt -> .h5 gives the
#     same tensors, bit for bit (tests/fixtures/torch_tools.py check);
#   - the same numbers in both frameworks: the exported .pt, evaluated in
#     PyTorch (eval mode, the dataset's normalisation), has the mean
#     cross-entropy of `resnet_dist --eval-only` to 1e-4 relative and the same
#     top-1 and top-5 counts, on 10 classes;
#   - a state_dict made by torchvision, imported with torch_to_ckpt.py,
#     evaluates in resnet_dist as in PyTorch and trains with --init-from;
#   - every network has resnet_dist's parameter count (--list-archs);
#   - bad input (missing or damaged file, unknown or wrong --arch, a .pt
#     lacking a key, an existing output): one "error:" line naming the file,
#     exit 2, nothing written.
# Needs $PYTHON with torch, torchvision, h5py, numpy and PIL.
. tests/e2e/lib/common.sh
e2e_setup torch-tools
FIX="$PYTHON tests/fixtures/torch_tools.py"
TO_TORCH="$PYTHON tools/ckpt_to_torch.py"
TO_CKPT="$PYTHON tools/torch_to_ckpt.py"

# 16 px, 10 classes (so that top-5 is not trivially every image).
fixture d16.h5 --train 16 --val 20 --size 16 --classes 10
D="$T/d16.h5"

# train NAME FLAGS...: 4 steps of resnet_dist (one epoch, so a validation
# and best.h5 too) into $T/NAME-ckpt.
train() {
    name=$1
    shift
    "$BIN" "$@" --data "$D" --batch-size 4 --max-steps 4 --lr 0.02 \
        --checkpoint-dir "$T/$name-ckpt" >"$T/$name-train.log" 2>&1 &&
        [ -f "$T/$name-ckpt/step-00000004.h5" ] ||
        { bad "$name: resnet_dist training"; show "$T/$name-train.log"; return 1; }
}

# export NAME ARCH CKPT: resnet_dist --eval-only on CKPT into NAME.jsonl,
# CKPT -> NAME.pt -> NAME.h5 with the tools; adds the case to CASES for
# the fixture's check below.
CASES=""
export_case() {
    name=$1 arch=$2 ckpt=$3
    if "$BIN" --arch "$arch" --data "$D" --batch-size 4 --eval-only --init-from "$ckpt" \
        --metrics "$T/$name.jsonl" >"$T/out" 2>&1 &&
        $TO_TORCH "$ckpt" "$T/$name.pt" >>"$T/out" 2>&1 &&
        $TO_CKPT "$T/$name.pt" "$T/$name.h5" --arch "$arch" >>"$T/out" 2>&1; then
        CASES="$CASES $name:$ckpt:$T/$name.pt:$T/$name.h5:$D:$T/$name.jsonl"
    else
        bad "$name: export and import"; show "$T/out"
    fi
}

# The CIFAR ResNet (option-A shortcuts); wrn-D-K (pre-activation, a
# projection of the pre-activated input), trained with dropout and drop-path.
train resnet20 --arch resnet20 && export_case resnet20 resnet20 "$T/resnet20-ckpt/step-00000004.h5"
train wrn --arch wrn-10-2 --wrn-dropout 0.3 --drop-path 0.2 &&
    export_case wrn wrn-10-2 "$T/wrn-ckpt/step-00000004.h5"

# torchvision -> resnet_dist: a torchvision resnet18 state_dict (tv.pt;
# lacks.pt: the same without one key, for the bad inputs below) imported;
# resnet_dist evaluates the imported file as PyTorch evaluates tv.pt, and
# fine-tunes from it; the fine-tuned checkpoint goes back to torchvision's
# model (the ImageNet stem at 16 px: 4 x 4 after the max-pool).
if $FIX torchvision --arch resnet18 --num-classes 10 --drop layer2.0.downsample.1.running_var \
    --drop-out "$T/lacks.pt" "$T/tv.pt" >"$T/out" 2>&1 &&
    $TO_CKPT "$T/tv.pt" "$T/tv.h5" --arch resnet18 >>"$T/out" 2>&1 &&
    "$BIN" --arch resnet18 --data "$D" --batch-size 4 --eval-only --init-from "$T/tv.h5" \
        --metrics "$T/tv.jsonl" >>"$T/out" 2>&1; then
    ok "torchvision resnet18 state_dict imported: $(grep '^torch_to_ckpt' "$T/out" | cut -c1-90)"
    CASES="$CASES imported:$T/tv.h5:$T/tv.pt:$T/tv.h5:$D:$T/tv.jsonl"
    if train tuned --arch resnet18 --init-from "$T/tv.h5" &&
        grep -q "initialised weights from $T/tv.h5" "$T/tuned-train.log"; then
        ok "torchvision resnet18: resnet_dist --init-from trains from the imported file"
        export_case tuned resnet18 "$T/tuned-ckpt/step-00000004.h5"
    fi
else
    bad "torchvision resnet18 state_dict imported"; show "$T/out"
fi

# One process checks every case, and every network's parameter count
# against resnet_dist --list-archs (the largest torchvision networks and the
# 1000-layer ones left out for time; the ones checked have every block kind).
"$BIN" --list-archs >"$T/archs.txt" 2>&1
# shellcheck disable=SC2086 # CASES is a list of words without blanks
$FIX check $CASES --params-list "$T/archs.txt" resnet18,resnet34,resnet50,resnet20,resnet32,\
resnet44,resnet56,resnet110,resnext50_32x4d,preact-resnet18,preact-resnet34,preact-resnet50,\
preact-resnet110,preact-resnet164,wrn-16-4,wrn-16-8,wrn-22-8,wrn-40-2,wrn-40-4 >"$T/check.log" 2>&1
rc=$?
while IFS= read -r line; do
    case $line in
    "ok: "*) ok "${line#ok: }" ;;
    "FAILED: "*) bad "${line#FAILED: }" ;;
    *) echo "    $line" ;;
    esac
done <"$T/check.log"
[ "$rc" -eq 0 ] || grep -q '^FAILED: ' "$T/check.log" || bad "torch_tools.py check: exit $rc"
[ "$(grep -c '^ok: ' "$T/check.log")" -eq 5 ] || bad "torch_tools.py check: expected 5 cases"

# The predict helper prints resnet_predict's JSON from PyTorch.
$PYTHON - "$D" "$T/img" <<'PY' >"$T/out" 2>&1 || bad "cannot write PNGs"
import os, sys, h5py
from PIL import Image
os.makedirs(sys.argv[2])
with h5py.File(sys.argv[1], "r") as f:
    for i in range(3):
        Image.fromarray(f["val/images"][i]).save("%s/%d.png" % (sys.argv[2], i))
PY
if [ -f "$T/resnet20.pt" ] && $FIX predict "$T/resnet20.pt" "$T/img" --arch resnet20 --top 3 \
    --classes-from "$D" >"$T/predict.jsonl" 2>"$T/out" &&
    $PYTHON - "$T/predict.jsonl" <<'PY' >>"$T/out" 2>&1; then
import json, sys
recs = [json.loads(line) for line in open(sys.argv[1])]
assert [r["file"].rsplit("/", 1)[1] for r in recs] == ["0.png", "1.png", "2.png"], recs
for r in recs:
    p = [t["prob"] for t in r["top"]]
    assert len(p) == 3 and p == sorted(p, reverse=True) and 0 < sum(p) <= 1 + 1e-9, r
    assert all(t["class"] == "c%d" % t["index"] for t in r["top"]), r  # the file's /classes
PY
    ok "predict helper: one JSON object per image, top 3 by probability, class names"
else
    bad "predict helper"; show "$T/out"; show "$T/predict.jsonl" 3
fi

# Bad input: exit 2, one "error:" line naming the file, nothing written.
# refused NAME PATTERN OUT -- command...
refused() {
    name=$1 pattern=$2 out=$3
    shift 4
    before=$(ls -A "$T/bad")
    expect 2 "$pattern" "$name" -- "$@" || return
    if [ "$(grep -c '^error: ' "$T/out")" -ne 1 ] || [ "$(ls -A "$T/bad")" != "$before" ] ||
        { [ -n "$out" ] && [ -e "$out" ]; }; then
        bad "$name: expected one error line and nothing written"; show "$T/out"
        ls -A "$T/bad"
    fi
}
mkdir -p "$T/bad"
head -c 5000 /dev/urandom >"$T/bad/damaged.h5"
refused "ckpt_to_torch: missing checkpoint" "error: $T/bad/none.h5: no such file" "$T/bad/x.pt" -- \
    $TO_TORCH "$T/bad/none.h5" "$T/bad/x.pt"
refused "ckpt_to_torch: damaged checkpoint" "error: $T/bad/damaged.h5: cannot open as HDF5" \
    "$T/bad/x.pt" -- $TO_TORCH "$T/bad/damaged.h5" "$T/bad/x.pt"
refused "ckpt_to_torch: a checkpoint of another --arch" \
    "/model/layer1.3.conv1.weight is missing (the model is resnet32" "$T/bad/x.pt" -- \
    $TO_TORCH "$T/resnet20-ckpt/step-00000004.h5" "$T/bad/x.pt" --arch resnet32
refused "torch_to_ckpt: missing .pt" "error: $T/bad/none.pt: no such file" "$T/bad/x.h5" -- \
    $TO_CKPT "$T/bad/none.pt" "$T/bad/x.h5" --arch resnet20
refused "torch_to_ckpt: not a PyTorch file" "error: $T/bad/damaged.h5: torch.load cannot read it" \
    "$T/bad/x.h5" -- $TO_CKPT "$T/bad/damaged.h5" "$T/bad/x.h5" --arch resnet20
refused "torch_to_ckpt: unknown --arch" "error: unknown architecture resnet7" "$T/bad/x.h5" -- \
    $TO_CKPT "$T/resnet20.pt" "$T/bad/x.h5" --arch resnet7
refused "torch_to_ckpt: a resnet18 state_dict as resnet20" \
    "$T/tv.pt: .* tensors the model lacks: layer2.0.downsample" "$T/bad/x.h5" -- \
    $TO_CKPT "$T/tv.pt" "$T/bad/x.h5" --arch resnet20
refused "torch_to_ckpt: a .pt lacking a key" \
    "error: $T/lacks.pt: layer2.0.downsample.1.running_var is missing" "$T/bad/x.h5" -- \
    $TO_CKPT "$T/lacks.pt" "$T/bad/x.h5" --arch resnet18
# An existing output is kept without --force, replaced with it.
cp "$T/wrn.h5" "$T/bad/keep.h5" && sum_before=$(cksum <"$T/bad/keep.h5")
refused "torch_to_ckpt: existing output" "error: $T/bad/keep.h5 exists; give --force" "" -- \
    $TO_CKPT "$T/resnet20.pt" "$T/bad/keep.h5" --arch resnet20
refused "ckpt_to_torch: existing output" "error: $T/bad/keep.h5 exists; give --force" "" -- \
    $TO_TORCH "$T/resnet20-ckpt/step-00000004.h5" "$T/bad/keep.h5"
[ "$(cksum <"$T/bad/keep.h5")" = "$sum_before" ] && ok "the existing output is untouched" ||
    bad "the existing output is untouched"
expect 0 "wrote $T/bad/keep.h5" "--force replaces the output" -- \
    $TO_CKPT "$T/resnet20.pt" "$T/bad/keep.h5" --arch resnet20 --force &&
    { cmp -s "$T/bad/keep.h5" "$T/wrn.h5" && bad "--force: the output is still the old file"; }
if [ "$(ls -A "$T/bad")" = "$(printf 'damaged.h5\nkeep.h5')" ]; then
    ok "no temporary files left"
else
    bad "no temporary files left: $(ls -A "$T/bad" | tr '\n' ' ')"
fi

echo "torch_tools: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
