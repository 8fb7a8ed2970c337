#!/bin/sh
# Include directions (docs/architecture.md, "Layers"): every #include "x.h" in
# src/ and include/ must point to the file's own module or to a lower layer:
#   tools (4) -> train (3) -> dist, data, model, optim, prep, plot (2) -> nn (1) -> core (0)
# A header belongs to the module whose directory holds its .c file. Modules on
# one layer do not include each other. The check runs on the repository, then
# on a copy with two planted violations, which it must report.
BUILD=${BUILD:-build}
T="$BUILD/tmp/e2e-include-layers"
rm -rf "$T" && mkdir -p "$T"
. tests/e2e/lib/common.sh

layer_of() {
    case $1 in
    core) echo 0 ;; nn) echo 1 ;; dist | data | model | optim | prep | plot) echo 2 ;;
    train) echo 3 ;; tools) echo 4 ;; *) echo "?" ;;
    esac
}

# module_of ROOT FILE: the src/ directory a source or header belongs to
module_of() {
    case $2 in
    "$1"/src/*) d=${2#"$1"/src/}; echo "${d%%/*}"; return ;;
    esac
    c=$(ls "$1"/src/*/"$(basename "$2" .h)".c 2>/dev/null | head -n 1)
    [ -n "$c" ] && basename "$(dirname "$c")"
}

# check_layers ROOT: one line per include that points the wrong way
check_layers() {
    for f in "$1"/src/*/*.c "$1"/src/*/*.h "$1"/include/*.h; do
        [ -f "$f" ] || continue
        from=$(module_of "$1" "$f")
        for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            hf=$(ls "$1"/include/"$h" "$(dirname "$f")/$h" "$1"/src/*/"$h" 2>/dev/null | head -n 1)
            if [ -z "$hf" ]; then
                echo "${f#"$1"/}: includes $h, which is in no module"
                continue
            fi
            to=$(module_of "$1" "$hf")
            [ "$to" = "$from" ] && continue
            lf=$(layer_of "$from") lt=$(layer_of "$to")
            if [ "$lf" = "?" ] || [ "$lt" = "?" ] || [ "$lt" -ge "$lf" ]; then
                echo "${f#"$1"/}: $from includes $h of $to"
            fi
        done
    done
}

check_layers . >"$T/repo"
if [ -s "$T/repo" ]; then
    bad "includes point down"; show "$T/repo" 40
else
    ok "includes point down ($(cat src/*/*.c src/*/*.h include/*.h | grep -c '#include "') checked)"
fi

# The check can fail: an upward include (nn -> train) and one between two
# modules of the same layer (model -> data).
mkdir -p "$T/copy" && cp -r src include "$T/copy/"
echo '#include "trainer.h"' >>"$T/copy/src/nn/add.c"
echo '#include "dataset.h"' >>"$T/copy/src/model/resnet.c"
check_layers "$T/copy" >"$T/planted"
if grep -q 'src/nn/add.c: nn includes trainer.h of train' "$T/planted" &&
    grep -q 'src/model/resnet.c: model includes dataset.h of data' "$T/planted"; then
    ok "planted violations are reported"
else
    bad "planted violations are reported"; show "$T/planted"
fi

echo "include_layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
