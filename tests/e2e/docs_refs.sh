#!/bin/sh
# docs_refs.sh - what the documentation names exists, so the pages cannot
# drift from the tools (tests/fixtures/docs_refs.py does the reading):
#   - every --flag in README.md, jobs/README.md, datasets/README.md and
#     docs/*.md is in the --help of the tool it belongs to (resnet_dist,
#     resnet_prep and each of its commands, resnet_plot, and resnet_predict
#     and tools/*.py once they exist: until then their flags are checked
#     only where a command names them); flags with no tool before them
#     must be one of ours or a known flag of Slurm or Open MPI;
#   - every environment variable a job script reads is documented in
#     jobs/README.md or docs/slurm.md;
#   - docs/metrics.md lists exactly the record kinds and fields the trainer
#     writes;
#   - relative links (and their #headings) and repository paths in code
#     spans exist; every dataset a command reads (--data) is one a command
#     of the pages makes (--out);
#   - the checker itself fails on planted mistakes of each kind.
# Prints one line per check and "docs_refs: N passed, M failed".
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
T="$BUILD/tmp/e2e-docs-refs"
rm -rf "$T" && mkdir -p "$T/help" || exit 1
T=$(cd "$T" && pwd)
. tests/e2e/lib/common.sh
# shellcheck disable=SC2154 # pass and fail come from lib/common.sh
finish() {
    echo "docs_refs: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
for f in resnet_dist resnet_prep resnet_plot; do
    [ -x "$BUILD/bin/$f" ] || { bad "$BUILD/bin/$f is missing (make all)"; finish; }
done

# The --help of every tool that exists.
"$BUILD/bin/resnet_dist" --help >"$T/help/resnet_dist.txt" 2>&1
"$BUILD/bin/resnet_plot" --help >"$T/help/resnet_plot.txt" 2>&1
"$BUILD/bin/resnet_prep" --help >"$T/help/resnet_prep.txt" 2>&1
for c in imagenet cifar10 cifar100 idx synthetic inspect verify; do
    "$BUILD/bin/resnet_prep" "$c" --help >"$T/help/resnet_prep.$c.txt" 2>&1
done
[ -x "$BUILD/bin/resnet_predict" ] && "$BUILD/bin/resnet_predict" --help >"$T/help/resnet_predict.txt" 2>&1
for py in tools/*.py tests/fuzz/fuzz.py; do
    [ -f "$py" ] && "$PYTHON" "$py" --help >"$T/help/$(echo "$py" | sed 's|/|__|g').txt" 2>&1
done
for h in "$T"/help/resnet_*.txt; do
    grep -q -- '--' "$h" || { bad "$(basename "$h" .txt) --help printed no flags"; show "$h"; }
done

# check NAME EXPECTED_EXIT ARGS...: runs the checker, output in $T/NAME.log.
check() {
    name=$1 want=$2
    shift 2
    "$PYTHON" tests/fixtures/docs_refs.py --help-dir "$T/help" "$@" >"$T/$name.log" 2>&1
    echo $? >"$T/$name.rc"
    [ "$(cat "$T/$name.rc")" -eq "$want" ]
}
docs="--doc README.md --doc jobs/README.md --doc datasets/README.md"
for d in docs/*.md; do docs="$docs --doc $d"; done
jobs=""
for j in jobs/*.slurm jobs/common.sh; do jobs="$jobs --job $j"; done
srcs=""
for s in src/*/*.c; do srcs="$srcs --src $s"; done
# shellcheck disable=SC2086 # one word per file: the paths hold no spaces
if check repo 0 --root . $docs $jobs --vars-doc jobs/README.md --vars-doc docs/slurm.md \
    --metrics-doc docs/metrics.md $srcs; then
    ok "docs: $(tail -n 1 "$T/repo.log")"
    grep '^note: ' "$T/repo.log" | sed 's/^/    /'
else
    bad "docs name what does not exist:"
    sed 's/^/    /' "$T/repo.log"
fi

# The checker can fail: a copy of the pages with planted mistakes.
P="$T/planted"
mkdir -p "$P/docs" "$P/jobs" "$P/src"
cp README.md "$P/" && cp docs/metrics.md docs/training.md "$P/docs/" && cp jobs/README.md jobs/*.slurm jobs/common.sh "$P/jobs/"
cp src/train/train_report.c src/train/train_ckpt.c src/train/train.c "$P/src/"
printf '\n```sh\nbuild/bin/resnet_dist --arch resnet50 --crop-size 224 --data datasets/x/data/never.h5\n```\n' >>"$P/docs/training.md"
printf '\nUse `resnet_prep imagenet --val-label FILE`.\n' >>"$P/README.md"
printf 'x() { echo "${UNDOCUMENTED_KNOB:-1}"; }\n' >>"$P/jobs/common.sh"
sed -i 's/"img_per_s"/"images_per_s"/' "$P/src/train_report.c"
printf '\nSee [the recipe](training.md#no-such-heading).\n' >>"$P/docs/metrics.md"
if check planted 1 --root "$P" --doc README.md --doc docs/training.md --doc docs/metrics.md \
    --job jobs/common.sh --job jobs/resnet18-smoke.slurm --job jobs/resnet50.slurm --vars-doc jobs/README.md --metrics-doc docs/metrics.md \
    --src src/train_report.c --src src/train_ckpt.c --src src/train.c; then
    for want in "docs/training.md:[0-9]*: --crop-size is not in \`resnet_dist --help\`" \
        "README.md:[0-9]*: --val-label is not in \`resnet_prep imagenet --help\`" \
        "read UNDOCUMENTED_KNOB from the environment" \
        '"train" records have the field "images_per_s", not on the page' \
        'field "img_per_s" of "train" is on the page, but the sources do not write it' \
        "link to training.md#no-such-heading: no heading" \
        "reads datasets/x/data/never.h5, which no command of the pages makes"; do
        if grep -q -- "$want" "$T/planted.log"; then
            ok "a planted mistake fails the check: $want"
        else
            bad "a planted mistake went unnoticed: $want"
            sed 's/^/    /' "$T/planted.log"
        fi
    done
else
    bad "the checker did not fail on the planted mistakes (exit $(cat "$T/planted.rc"))"
    sed 's/^/    /' "$T/planted.log"
fi
finish
