#!/bin/sh
# resnet_plot on a real metrics file from resnet_dist: a PNG comes out;
# bad input gives one error line and exit 2.
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
T="$BUILD/tmp/e2e-plot"
rm -rf "$T" && mkdir -p "$T"
export OMP_NUM_THREADS=1
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $*"; fi; }

$PYTHON tests/fixtures/make_dataset.py "$T/d.h5" || exit 1
"$BUILD/bin/resnet_dist" --arch resnet20 --stem small --batch-size 16 --data "$T/d.h5" --epochs 3 \
    --plateau-patience 0 --log-every 1 --metrics "$T/m.jsonl" --checkpoint-dir "$T/ck" >"$T/train.log" 2>&1
check grep -q '"kind":"lr"' "$T/m.jsonl"
esc=$(printf '\033')
check test "$(grep -c "$esc" "$T/train.log")" -eq 0   # batch logs: no terminal control codes
"$BUILD/bin/resnet_plot" "$T/m.jsonl" -o "$T/curves.png" >"$T/out" 2>&1
check test "$(head -c 8 "$T/curves.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
check test "$(wc -c <"$T/curves.png")" -gt 10000
# no validation records (a synthetic run): still a plot
"$BUILD/bin/resnet_dist" --synthetic --arch resnet20 --crop 32 --num-classes 10 --batch-size 8 \
    --max-steps 3 --metrics "$T/syn/m.jsonl" --checkpoint-dir "$T/syn/ck" >"$T/syn.log" 2>&1
"$BUILD/bin/resnet_plot" "$T/syn/m.jsonl" -o "$T/syn.png" >"$T/out" 2>&1
check test $? -eq 0
check test "$(grep -c . "$T/out")" -eq 1   # only "wrote ...": no gnuplot warnings
: >"$T/empty.jsonl"
"$BUILD/bin/resnet_plot" "$T/empty.jsonl" -o "$T/x.png" >"$T/out" 2>&1
check test $? -eq 2
check grep -q "empty.jsonl: no training records" "$T/out"
"$BUILD/bin/resnet_plot" "$T/missing.jsonl" >"$T/out" 2>&1
check test $? -eq 2
"$BUILD/bin/resnet_plot" --bogus "$T/m.jsonl" >"$T/out" 2>&1
check test $? -eq 2
# Titles, file names and TMPDIR reach gnuplot as data, never as commands:
# quotes, backquotes, `$`, `@`, backslashes and newlines are plotted as text.
is_png() { test "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"; }
bin=$(cd "$BUILD/bin" && pwd)
plot_in() { # DIR ARGS...: resnet_plot run from DIR, so a stray `touch` would land there
    (cd "$1" && shift && "$bin/resnet_plot" "$@") >"$T/out" 2>&1
}
mkdir -p "$T/inj" "$T/it's tmp"
cp "$T/m.jsonl" "$T/inj/bob's run.jsonl"
plot_in "$T/inj" "bob's run.jsonl" -o "bob's \`touch PWNED3\` \$HOME.png"
check test $? -eq 0
check is_png "$T/inj/bob's \`touch PWNED3\` \$HOME.png"
plot_in "$T/inj" "bob's run.jsonl" -o t1.png --title "x'; system('touch PWNED'); set title 'y"
check test $? -eq 0
check is_png "$T/inj/t1.png"
nl='
'
for title in 'say "hi"; system("touch PWNED2")' "back\\slash\\" "two${nl}lines" \
    '$HOME `touch PWNED4` @x _sub^sup {braces}'; do
    plot_in "$T/inj" "bob's run.jsonl" -o t2.png --title "$title"
    check test $? -eq 0
    check is_png "$T/inj/t2.png"
    rm -f "$T/inj/t2.png"
done
TMPDIR="$(cd "$T/it's tmp" && pwd)" plot_in "$T/inj" "bob's run.jsonl" -o t3.png
check test $? -eq 0
check is_png "$T/inj/t3.png"
check test "$(find "$T" -name 'PWNED*' | wc -l)" -eq 0
# Values gnuplot cannot draw (nan/inf, beyond double, no lr, no top1, losses
# <= 0 on the log scale) are left out instead of failing the plot.
printf '%s\n' '{"kind":"train","step":1,"loss":inf,"top1":nan,"lr":1e400}' \
    '{"kind":"train","step":2,"loss":-1.0,"lr":1e308}' '{"kind":"train","step":nan,"loss":0}' \
    '{"kind":"lr","step":3,"lr":0}' >"$T/odd.jsonl"
"$BUILD/bin/resnet_plot" "$T/odd.jsonl" -o "$T/odd.png" >"$T/out" 2>&1
check test $? -eq 0
check is_png "$T/odd.png"
echo "plot_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
