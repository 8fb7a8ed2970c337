#!/bin/sh
# resnet_plot on a real metrics file from resnet_dist: a PNG comes out;
# bad input gives one error line and exit 2. What is drawn is checked in the
# gnuplot script and data that --gnuplot-dir keeps (not in pixels): epochs on
# x with steps on the top axis, the test result, records sorted by step, the
# loss axis over the data's range, aligned panels with a narrow LR panel,
# top-5 only where it says something.
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
# A run stopped early in a long epoch: its last x (3/429 epochs) is the
# x range's edge and must stay inside it when written to the data files.
printf '%s\n' '{"kind":"config","steps_per_epoch":429,"total_steps":3}' \
    '{"kind":"train","step":3,"epoch":0,"loss":2.45,"top1":0.12,"top5":0.55,"lr":0.1}' \
    '{"kind":"val","step":3,"epoch":0,"loss":2.62,"top1":0.12,"top5":0.50}' >"$T/short.jsonl"
"$BUILD/bin/resnet_plot" "$T/short.jsonl" -o "$T/short.png" >"$T/out" 2>&1
check test $? -eq 0
check is_png "$T/short.png"

# ---------------------------------------------------------------- what is drawn
# plot_kept METRICS PNG DIR: resnet_plot, keeping the gnuplot script and data in DIR
plot_kept() { "$BUILD/bin/resnet_plot" "$1" -o "$2" --gnuplot-dir "$3" >"$T/out" 2>&1; }
# The real run (4 classes, 3 epochs): x in epochs (step / steps per epoch),
# steps on the top axis; top-5 error is always 0 with 4 classes: left out.
gp="$T/gp-real"
plot_kept "$T/m.jsonl" "$T/real.png" "$gp"
check test $? -eq 0
spe=$(sed -n 's/.*"kind":"config".*"steps_per_epoch":\([0-9]*\).*/\1/p' "$T/m.jsonl" | head -n 1)
check grep -q "^set link x2 via x\*$spe inverse x/$spe\$" "$gp/plot.gp"
check grep -q "^set xlabel 'epoch'" "$gp/plot.gp"
check awk -v spe="$spe" '{ d = $1 - $2 / spe; if (d > 1e-9 || d < -1e-9) bad = 1 } END { exit bad || NR == 0 }' \
    "$gp/train.dat"
check test "$(grep -c 'top-5' "$gp/plot.gp")" -eq 0
# A resumed run (steps 10-700, then again from 500), an --eval-only test of
# the final weights (step 0, another batch size), 10 classes.
$PYTHON - "$T/resumed.jsonl" <<'PY' || exit 1
import json, math, sys
recs = [{"kind": "config", "steps_per_epoch": 100}]
def run(first, last):
    for s in range(first, last + 1, 10):
        recs.append({"kind": "train", "step": s, "loss": 2.3 * math.exp(-s / 400) + 0.3,
                     "top1": 0.1 + s / 1100, "lr": 0.1 if s < 600 else 0.01})
        if s % 100 == 0:
            recs.append({"kind": "val", "step": s, "loss": 0.5 + 1.5 * math.exp(-s / 400),
                         "top1": 0.1 + s / 1200, "top5": 0.5 + s / 2100})
        if s == 600:
            recs.append({"kind": "lr", "step": 600, "lr": 0.01, "reason": "plateau"})
run(10, 700)
recs.append({"kind": "config", "steps_per_epoch": 100})
run(500, 1000)
recs.append({"kind": "config", "steps_per_epoch": 20})
recs.append({"kind": "test", "step": 0, "loss": 0.45, "top1": 0.9075, "top5": 0.995})
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in recs)
PY
gp="$T/gp-resumed"
plot_kept "$T/resumed.jsonl" "$T/resumed.png" "$gp"
check test $? -eq 0
check is_png "$T/resumed.png"
# sorted by step: no curve runs backwards
for f in train val lr; do
    check awk 'NR > 1 && $2 < prev { bad = 1 } { prev = $2 } END { exit bad }' "$gp/$f.dat"
done
check test "$(wc -l <"$gp/train.dat")" -eq 121   # 70 + 51 records, none dropped
# the test result, at the end of training, in epochs of the training run
check test "$(cat "$gp/test.dat")" = "10 1000 9.25 0.5 0.45"
check grep -q "test using 1:3 .*title 'test top-1 error 9.25%'" "$gp/plot.gp"
check grep -q "test using 1:5 .*title 'test loss 0.45'" "$gp/plot.gp"
check grep -q "val using 1:4 .*title 'val top-5 error'" "$gp/plot.gp"
check grep -q "test using 1:4 .*title 'test top-5 error 0.50%'" "$gp/plot.gp"
# one LR change, drawn once although the resumed run logged it again
check test "$(grep -c '^set arrow from 6,' "$gp/plot.gp")" -eq 1
# Panels: one left and right edge for all, in screen coordinates; the LR
# panel (the last) is log-scale and less than half as tall as the others.
check test "$(grep -c 'margin' "$gp/plot.gp" | tr -d ' ')" -eq 8
check test "$(grep -c '^set [lr]margin at screen' "$gp/plot.gp")" -eq 2
check awk '/^set tmargin at screen/ { t[++n] = $5 } /^set bmargin at screen/ { b[n] = $5 }
    END { if (n != 3) exit 1; for (i = 1; i < 3; i++) if (t[3] - b[3] >= (t[i] - b[i]) / 2) exit 1 }' \
    "$gp/plot.gp"
check awk '/^set tmargin/ { p++ } p == 3 && /^set logscale y/ { ok = 1 } END { exit !ok }' "$gp/plot.gp"
# The loss axis spans the data (0.3-2.6 here), not whole decades (0.1-10).
check awk '/^set ylabel .loss./ { on = 1 } on && /^set yrange/ {
        split(substr($3, 2, length($3) - 2), r, ":"); exit !(r[1] > 0.3 && r[1] < 0.5 && r[2] > 2.5 && r[2] < 3) }' \
    "$gp/plot.gp"
check grep -q '^set ytics (0.5, 0.6, 0.8, 1, 1.5, 2)$' "$gp/plot.gp"
"$BUILD/bin/resnet_plot" "$T/resumed.jsonl" -o "$T/x.png" --gnuplot-dir "$T/no/such/dir" >"$T/out" 2>&1
check test $? -eq 2
check grep -q "^error: $T/no/such/dir: cannot write into the --gnuplot-dir folder: No such file" "$T/out"
# Without steps per epoch (no config record) x stays in steps, no top axis.
grep -v '"config"' "$T/resumed.jsonl" >"$T/noconfig.jsonl"
plot_kept "$T/noconfig.jsonl" "$T/noconfig.png" "$T/gp-noconfig"
check test $? -eq 0
check grep -q "^set xlabel 'step'" "$T/gp-noconfig/plot.gp"
check test "$(grep -c 'x2' "$T/gp-noconfig/plot.gp")" -eq 0
echo "plot_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
