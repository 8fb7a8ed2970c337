#!/bin/sh
# docs_commands.sh - the commands and messages in the documentation work as
# shown, so the docs cannot drift from the tools.
#
# 1. Messages: every `error: ...`, `warning: ...` and `[rank R] ...` pattern
#    quoted in docs/troubleshooting.md and docs/training.md (inline code and
#    ```text lines; <...> stands for a value) is one the sources print
#    (status_set, log_warn, fail_local, CHECK, ... in src/, die/echo in jobs/,
#    InputError/die/warn in tools/*.py),
#    and every message users can meet is quoted in docs/troubleshooting.md;
#    example log lines (```text after `<!-- docs_commands: log -->`) are lines
#    log_info prints.
# 2. Commands: every ```sh block of README.md and docs/*.md is extracted
#    (lines joined at a trailing backslash, comment lines dropped) and each
#    command is either run or named as covered elsewhere; a command that is
#    neither fails the test. Blocks run in order (README.md, training.md,
#    troubleshooting.md, then the other pages) in a scratch directory laid out
#    like the repository: build/bin, tests, jobs and tools link to the real ones and
#    datasets/ holds tiny stand-ins under the documented names (resnet_prep
#    synthetic: imagenet-256.h5 8+4 images of 256 px, cifar10-val5k.h5 and
#    fashion-mnist.h5 256+32+32 images; datasets/flowers/{train,val}: a
#    3-class JPEG tree from test_prep_cli --make-tree). A command's exit code
#    must be 0, or N when its line ends in `# exit N`; a ```text block right
#    after an ```sh block is output that must appear. To fit a 2-core machine,
#    cluster-sized commands are changed as little as possible:
#      - mpirun: `-np N` becomes `-np min(N,2)`; --hostfile, --map-by,
#        --bind-to and -x OMP_NUM_THREADS are dropped (other -x and
#        --oversubscribe kept);
#      - resnet_dist with an ImageNet ResNet (resnet18..152, no --stem small):
#        --batch-size becomes 2 images per rank;
#      - resnet_dist training: --max-steps 2 is added; `<!-- docs_commands:
#        dry-run -->` before a block adds --dry-run instead, `as-is` nothing;
#        --bench gets --bench-steps 1 --bench-warmup 0; --eval-only, --dry-run,
#        --help and --version run unchanged;
#      - a ```python block whose first line is `# NAME.py` is saved as NAME.py,
#        with weights="..." replaced by weights=None (nothing can be downloaded
#        here); python3 is $PYTHON.
#    Covered elsewhere, not run here: `make run` and the longer Fashion-MNIST
#    recipes (tests/e2e/make_run.sh runs datasets/run_default.sh and a few
#    steps of datasets/fashion-mnist/long-recipe.sh, best-recipe.sh,
#    ablation.sh and of bench/conv_algo_curves.sh, and recipe_summary.py on
#    their runs), `make test` (this runner), `make bench` and the
#    bench/ scripts (minutes of benchmarks; `make bench` itself), `sbatch
#    jobs/*.slurm` (tests/slurm/test_smoke.sh, test_chain.sh, test_requeue.sh,
#    test_timelimit.sh, test_walkthrough.sh), README.md's `resnet_predict` and
#    `tools/*.py` commands (test_walkthrough.sh, on the checkpoint it trained), docs/dataset-format.md's h5py code and `resnet_prep
#    verify mydata.h5` (tests/e2e/prep_interop.sh runs them), the h5py
#    snippets of docs/checkpoint-format.md (tests/unit/test_checkpoint.c via
#    tests/fixtures/ckpt_interop.py, the same code). datasets/README.md's
#    commands are run by make_run.sh (idx), tests/unit/test_prep_cli.c and
#    prep_mpi.sh (imagenet, cifar, idx, synthetic, verify).
# 3. Mirrored commands (inline in a page; the test greps the page for each so
#    that an edit breaks it): docs/models.md's size command on four rows of its
#    table (parameters and GMACs must match), docs/performance.md's
#    DNNL_VERBOSE command, `ckpt_interop.py load` (checkpoint-format.md,
#    training.md) on a checkpoint written by a training.md command, and
#    training.md's statement of the flags jobs/resnet50.slurm passes (from
#    jobs/common.sh's imagenet_recipe) and jobs/README.md's of SCHEDULE=plateau.
# Needs $BUILD/bin, $PYTHON with torch, torchvision and h5py, gnuplot, bash (jobs/).
# Prints one line per check and "docs_commands: N passed, M failed".
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
PY3=$(command -v python3 || echo "$PYTHON")
REPO=$(pwd)
case $BUILD in /*) BUILDABS=$BUILD ;; *) BUILDABS=$REPO/$BUILD ;; esac
T="$BUILDABS/tmp/e2e-docs-commands"
W="$T/work"
rm -rf "$T" && mkdir -p "$T/blocks" "$T/logs" "$W/bin" "$W/build" || exit 1
# As a user would: each rank takes the cores of the node divided by its ranks.
unset OMP_NUM_THREADS
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
LIMIT=${DOCS_COMMANDS_TIMEOUT:-180}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }
show() { sed 's/^/    /' "$1" | tail -n "${2:-12}"; }
finish() {
    echo "docs_commands: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
start=$(date +%s)
for f in resnet_dist resnet_prep resnet_plot; do
    [ -x "$BUILDABS/bin/$f" ] || { bad "$BUILD/bin/$f is missing (make all)"; finish; }
done

# ---------------------------------------------------------------- messages
if "$PY3" - "$REPO" docs/troubleshooting.md docs/training.md >"$T/messages.log" 2>&1 <<'PY'
import glob, re, sys

root, docs = sys.argv[1], sys.argv[2:]


def c_string_end(s, i):
    i += 1
    while s[i] != '"':
        i += 2 if s[i] == "\\" else 1
    return i + 1


def call_args(src, start):
    """The argument texts of the call whose '(' ends just before start."""
    args, depth, cur, i = [], 1, "", start
    while True:
        c = src[i]
        if c == '"':
            j = c_string_end(src, i)
            cur += src[i:j]
            i = j
            continue
        if c == "'":
            j = src.index("'", i + 2 if src[i + 1] == "\\" else i + 1) + 1
            cur += src[i:j]
            i = j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                return args
        if c == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1


def alternatives(arg):
    """Formats an argument can be: adjacent literals joined; `c ? "x" : "y"` gives both."""
    out, cur, have, i = [], "", False, 0
    while i < len(arg):
        if arg[i] == '"':
            j = c_string_end(arg, i)
            cur += arg[i + 1:j - 1]
            have = True
            i = j
            continue
        if arg[i] == ":" and have:
            out.append(cur)
            cur, have = "", False
        i += 1
    if have:
        out.append(cur)
    return [bytes(x, "latin-1").decode("unicode_escape") for x in out]


logs = []  # (where, format) of every log_info line


def c_formats():
    """(where, format, cover); cover: users can meet it, so the docs must quote it."""
    res = []
    pat = re.compile(r"\b(status_set|log_warn|log_info|fail_local|prep_usage_fail|fprintf|"
                     r"CHECK|SYS_CHECK|snprintf)\s*\(")
    for fn in sorted(glob.glob(root + "/src/**/*.c", recursive=True)):
        src = open(fn).read()
        for m in pat.finditer(src):
            name = m.group(1)
            try:
                args = call_args(src, m.end())
            except (IndexError, ValueError):
                continue
            where = "%s:%d" % (fn[len(root) + 1:], src.count("\n", 0, m.start()) + 1)
            forms, cover = [], True
            if name == "status_set" and len(args) > 2:
                forms = alternatives(args[2])
            elif name == "log_warn":
                forms = alternatives(args[0])
            elif name == "log_info":
                logs.extend((where, f) for f in alternatives(args[0]))
                forms = [f for f in alternatives(args[0]) if f.startswith("error:")]
            elif name == "fprintf" and args[0] == "stderr" and len(args) > 1:
                forms = [f for f in alternatives(args[1]) if f.startswith("error:")]
            elif name == "fail_local" and len(args) > 3:
                call = alternatives(args[2])[0] if args[2].startswith('"') else "%s"
                forms = [call + ": " + f for f in alternatives(args[3])]
            elif name == "prep_usage_fail" and len(args) > 1:
                head, tail = (("resnet_prep: ", " (see resnet_prep --help)") if args[0] == "NULL"
                              else ("resnet_prep %s: ", " (see resnet_prep %s --help)"))
                forms = [head + f + tail for f in alternatives(args[1])]
            elif name == "CHECK" and len(args) > 1:
                forms, cover = [args[0] + ": " + f for f in alternatives(args[1])], False
            elif name == "SYS_CHECK":
                forms, cover = [args[0] + ": %s"], False
            elif name == "snprintf" and len(args) > 2:
                forms, cover = alternatives(args[2]), False
            res += [(where, f.rstrip("\n"), cover) for f in forms]
    return res


def shell_formats():
    """`die CODE "..." "..."` and `echo "error: ..."` in jobs/; expansions become %s."""
    res = []
    for fn in sorted(glob.glob(root + "/jobs/*.sh") + glob.glob(root + "/jobs/*.slurm")):
        text = open(fn).read().replace("\\\n", " ")
        for m in re.finditer(r'(?:\bdie\s+(?:"\$RC"|\d+)|\becho)\s+"', text):
            words, i = [], m.end() - 1
            while i < len(text) and text[i] == '"':
                j, w = i + 1, ""
                while text[j] != '"':
                    if text[j] == "\\":
                        w += text[j + 1]
                        j += 2
                    elif text.startswith("$(", j):
                        depth, j = 1, j + 2
                        while depth:
                            depth += {"(": 1, ")": -1}.get(text[j], 0)
                            j += 1
                        w += "%s"
                    elif text.startswith("${", j):
                        j = text.index("}", j) + 1
                        w += "%s"
                    elif text[j] == "$" and re.match(r"\w", text[j + 1]):
                        j += 1 + len(re.match(r"\w+", text[j + 1:]).group(0))
                        w += "%s"
                    else:
                        w += text[j]
                        j += 1
                words.append(w)
                i = j + 1
                while i < len(text) and text[i] in " \t":
                    i += 1
            msg = " ".join(words)
            if m.group(0).startswith("echo") and not msg.startswith("error:"):
                continue
            where = "%s:%d" % (fn[len(root) + 1:], text.count("\n", 0, m.start()) + 1)
            res.append((where, msg, True))
    return res


CONV = re.compile(r"%[-+ #0]*[0-9*]*(?:\.[0-9*]+)?(?:hh|h|ll|l|z|j|t)?[diouxXeEfgGcsp]")
STAR = None


def fmt_tokens(f):
    """A format as characters and STARs, open at both ends (a message may be wrapped)."""
    out = [STAR]
    for k, piece in enumerate(CONV.split(f.replace("%%", "\x01"))):
        if k:
            out.append(STAR)
        out.extend(piece.replace("\x01", "%"))
    return out + [STAR]


def doc_tokens(d):
    out = []
    for k, piece in enumerate(re.split(r"<[^<>]*>", d)):
        if k:
            out.append(STAR)
        out.extend(piece)
    return out


def letters(f):
    """Letters outside conversions, placeholders and the error:/warning:/[rank R] prefix."""
    f = re.sub(r"^(error: |warning: |\[rank [^\]]*\] ?)", "", f)
    return sum(c.isalpha() for c in re.sub(r"<[^<>]*>", "", CONV.sub("", f)))


def intersect(a, b):
    """Whether one string matches both patterns (characters and STARs)."""
    m, n, seen, todo = len(a), len(b), set(), [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == m and j == n:
            return True
        if i < m and a[i] is STAR:
            todo.append((i + 1, j))
            if j < n:
                todo.append((i, j + 1))
        if j < n and b[j] is STAR:
            todo.append((i, j + 1))
            if i < m:
                todo.append((i + 1, j))
        if i < m and j < n and a[i] is not STAR and b[j] is not STAR and a[i] == b[j]:
            todo.append((i + 1, j + 1))
    return False


doc_logs = []  # lines of ```text blocks marked <!-- docs_commands: log -->


def doc_patterns(path):
    pats, fence, mark = [], None, ""
    for no, line in enumerate(open(path), 1):
        s = line.rstrip("\n")
        if s.startswith("```"):
            fence = None if fence is not None else s[3:].strip()
            is_log, mark = fence == "text" and mark == "log", ""
            continue
        if s.startswith("<!-- docs_commands: "):
            mark = s.split()[2]
        if fence == "text" and is_log and s.strip():
            doc_logs.append(("%s:%d" % (path, no), s.strip()))
            continue
        if fence == "text":
            cands = [s.strip()]
        elif fence is None:
            cands = re.findall(r"`((?:[^`\\]|\\.)+)`", s)
        else:
            continue
        for c in cands:
            c = c.replace("\\|", "|")
            if c.startswith(("error: ", "warning: ", "[rank ")) and letters(c) >= 5:
                pats.append(("%s:%d" % (path, no), c))
    return pats


def tool_formats():
    """InputError("..." % ...) and die("...") (printed as "error: ...") and
    warn("...") in tools/*.py; adjacent literals joined."""
    res = []
    lit = r'"(?:[^"\\\n]|\\.)*"'
    pat = re.compile(r"\b(InputError|die|warn)\(\s*((?:%s\s*)+)" % lit)
    for fn in sorted(glob.glob(root + "/tools/*.py")):
        src = open(fn).read()
        for m in pat.finditer(src):
            msg = "".join(x[1:-1] for x in re.findall(lit, m.group(2)))
            msg = bytes(msg, "latin-1").decode("unicode_escape")
            where = "%s:%d" % (fn[len(root) + 1:], src.count("\n", 0, m.start()) + 1)
            res.append((where, ("warning: " if m.group(1) == "warn" else "error: ") + msg, True))
    return res


formats = [x for x in c_formats() + shell_formats() + tool_formats() if letters(x[1]) >= 5]
ftok = [(w, f, c, fmt_tokens(f), max(CONV.split(f.replace("%%", "%")), key=len).strip())
        for w, f, c in formats]
patterns = [p for d in docs for p in doc_patterns(d)]
bad, covered = 0, set()
for where, d in patterns:
    dt, hit = doc_tokens(d), False
    for k, (w, f, cover, ft, longest) in enumerate(ftok):
        if (not longest or longest in d) and intersect(ft, dt):
            hit = True
            covered.add(k)
    if not hit:
        bad += 1
        print("%s: `%s` matches no message the sources print" % (where, d))
for where, d in doc_logs:
    if not any(intersect(fmt_tokens(f)[1:-1], doc_tokens(d)) for w, f in logs if letters(f) >= 5):
        bad += 1
        print("%s: `%s` is not a line the sources print" % (where, d))
for k, (w, f, cover, ft, longest) in enumerate(ftok):
    if cover and k not in covered:
        bad += 1
        print("%s: message %r is not in docs/troubleshooting.md" % (w, f))
print("%d quoted patterns and %d log lines, %d messages in the sources (%d that users meet), "
      "%d problems" % (len(patterns), len(doc_logs), len(ftok), sum(1 for x in ftok if x[2]), bad))
sys.exit(1 if bad else 0)
PY
then
    ok "messages: $(tail -n 1 "$T/messages.log")"
else
    bad "messages:"; sed 's/^/    /' "$T/messages.log"
fi

# ---------------------------------------------------------------- workspace
ln -s "$BUILDABS/bin" "$W/build/bin"
ln -s "$REPO/tests" "$W/tests"
ln -s "$REPO/jobs" "$W/jobs"
ln -s "$REPO/tools" "$W/tools"
ln -s "$PYTHON" "$W/bin/python3"
PREP="$BUILDABS/bin/resnet_prep"
mkdir -p "$W/datasets/imagenet/data" "$W/datasets/cifar10/data" "$W/datasets/fashion-mnist/data" \
    "$W/datasets/flowers/data"
{
    "$PREP" synthetic --classes 4 --train 8 --val 4 --size 256 \
        --out "$W/datasets/imagenet/data/imagenet-256.h5" &&
        "$PREP" synthetic --classes 10 --train 256 --val 32 --test 32 --size 32 \
            --out "$W/datasets/cifar10/data/cifar10-val5k.h5" &&
        "$PREP" synthetic --classes 10 --train 256 --val 32 --test 32 --size 28 --channels 1 \
            --out "$W/datasets/fashion-mnist/data/fashion-mnist.h5"
} >"$T/logs/standins.log" 2>&1 || { bad "stand-in datasets"; show "$T/logs/standins.log"; finish; }
if [ -x "$BUILDABS/tests/test_prep_cli" ]; then
    "$BUILDABS/tests/test_prep_cli" --make-tree "$T/tree" >>"$T/logs/standins.log" 2>&1 &&
        cp -r "$T/tree/train" "$T/tree/val" "$W/datasets/flowers/"
else # the same shape: 3 class folders of small JPEGs
    "$PYTHON" - "$W/datasets/flowers" <<'PY' >>"$T/logs/standins.log" 2>&1
import os, sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for split, n in (("train", 4), ("val", 1)):
    for c in ("n01", "n02", "n03"):
        os.makedirs(os.path.join(sys.argv[1], split, c))
        for i in range(n):
            img = rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8)
            Image.fromarray(img).save(os.path.join(sys.argv[1], split, c, "%d.JPEG" % i))
PY
fi
[ -d "$W/datasets/flowers/train" ] || { bad "stand-in image folders"; show "$T/logs/standins.log"; finish; }

# ---------------------------------------------------------------- ```sh blocks
# extract DOC NUMBER_OFFSET: writes $T/blocks/NNN.{sh,info,expect,py} and
# $T/blocks/NNN.list (one line per command: RUN/COVERED/UNKNOWN doc:line text).
extract() {
    awk -v doc="$1" -v first="$2" -v out="$T/blocks" -v W="$W" '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    function bfile(ext) { return sprintf("%s/%03d.%s", out, id, ext) }
    # What to do with one command: run it, or where it is covered.
    function classify(c,   w) {
        w = c
        while (w ~ /^[A-Za-z_][A-Za-z_0-9]*=[^ ]* /) sub(/^[^ ]* /, "", w)
        if (w ~ /^make (run|test)( |$)/) return "COVERED make run: tests/e2e/make_run.sh; make test: this runner"
        if (w ~ /^sh (datasets\/fashion-mnist\/(long-recipe|best-recipe|ablation)|bench\/conv_algo_curves)\.sh( |$)/)
            return "COVERED tests/e2e/make_run.sh runs a few steps of it"
        if (w ~ /^python3 datasets\/fashion-mnist\/recipe_summary\.py /)
            return "COVERED tests/e2e/make_run.sh runs it on the runs it makes"
        if (w ~ /^make bench/ || w ~ /^sh bench\// || w ~ /bench\/(update_perf_doc|scaling_model)\.py/)
            return "COVERED benchmarks: make bench (minutes; rewrites docs/performance.md)"
        if (w ~ /^sbatch /) return "COVERED Slurm: tests/slurm/test_*.sh"
        if (w ~ /^(sh tests\/slurm\/multinode\.sh|eval "\$\(sh tests\/slurm\/multinode\.sh|sinfo|squeue)/)
            return "COVERED Slurm: tests/slurm/test_multinode*.sh start and stop this cluster"
        if (doc ~ /README\.md$/ && w ~ /^(build\/bin\/resnet_predict|python3 tools\/)/)
            return "COVERED tests/slurm/test_walkthrough.sh runs it on the checkpoint its jobs trained"
        if (doc ~ /dataset-format\.md$/ && w ~ /^resnet_prep verify mydata\.h5/)
            return "COVERED tests/e2e/prep_interop.sh runs the page'"'"'s h5py code and this"
        if (w ~ /^(mpirun|build\/bin\/resnet_(dist|prep|plot|predict)|resnet_(dist|prep|plot|predict)|python3 (tools\/)?[A-Za-z0-9_.-]+\.py|mkdir|export|kill|wait|until|grep|h5ls|ls|sleep)( |$)/ || w ~ /^[A-Za-z_][A-Za-z_0-9]*=\$!$/)
            return "RUN"
        return "UNKNOWN"
    }
    # The command as run here (see the header of docs_commands.sh).
    function transform(c,   n, w, i, j, m, p, np, opts, ranks, prog, arch, small, big, bs,
                            mode, info, bg, comment, res, k) {
        comment = ""
        if (match(c, / +#.*$/)) { comment = substr(c, RSTART); c = substr(c, 1, RSTART - 1) }
        bg = 0
        if (c ~ / &$/) { bg = 1; sub(/ &$/, "", c) }
        n = split(c, w, / +/)
        m = 0; p = 0
        for (i = 1; i <= n; i++) {
            if (!m && !p && w[i] == "mpirun") m = i
            if (!p && w[i] ~ /resnet_(dist|prep|plot)$/) p = i
        }
        if (!p) return c (bg ? " &" : "")
        ranks = 1
        if (m) {
            np = 1; opts = ""
            for (i = m + 1; i < p; i++) {
                if (w[i] == "-np" || w[i] == "-n") { np = w[i + 1] + 0; i++ }
                else if (w[i] == "--oversubscribe") opts = opts " --oversubscribe"
                else if (w[i] == "-x") { if (w[i + 1] !~ /^OMP_NUM_THREADS/) opts = opts " -x " w[i + 1]; i++ }
                else if (w[i] ~ /^--(hostfile|map-by|bind-to|machinefile)$/) i++
            }
            ranks = np > 2 ? 2 : np
            res = ""
            for (i = 1; i < m; i++) res = res w[i] " "
            res = res "mpirun -np " ranks opts
        } else {
            res = ""
            for (i = 1; i < p; i++) res = res (i > 1 ? " " : "") w[i]
        }
        prog = w[p]
        res = res (res == "" ? "" : " ") prog
        if (prog !~ /resnet_dist$/) {
            for (i = p + 1; i <= n; i++) res = res " " w[i]
            return res (bg ? " &" : "")
        }
        arch = "resnet50"; small = 0; bs = 0; mode = "train"; info = 0
        for (i = p + 1; i <= n; i++) {
            if (w[i] == "--arch") arch = w[i + 1]
            if (w[i] == "--stem" && w[i + 1] == "small") small = 1
            if (w[i] == "--batch-size") bs = i + 1
            if (w[i] ~ /^--(help|version)$/) info = 1
            if (w[i] ~ /^--(eval-only|dry-run|max-steps)$/) mode = "asis"
            if (w[i] == "--bench" && mode == "train") mode = "bench"
        }
        if (info) mode = "asis"
        big = !info && !small && arch ~ /^resnet(18|34|50|101|152)$/
        if (big && bs) w[bs] = 2 * ranks
        for (i = p + 1; i <= n; i++) res = res " " w[i]
        if (big && !bs) res = res " --batch-size " 2 * ranks
        if (mode == "bench") res = res " --bench-steps 1 --bench-warmup 0"
        else if (mode == "train" && directive == "dry-run") res = res " --dry-run"
        else if (mode == "train" && directive != "as-is") res = res " --max-steps 2"
        return res (bg ? " &" : "")
    }
    function flush(   cls, code, t) {
        if (cmd == "") return
        cls = classify(cmd)
        code = 0
        if (match(cmd, /#[ ]*exit[ ]+[0-9]+[ ]*$/)) { t = substr(cmd, RSTART); gsub(/[^0-9]/, "", t); code = t + 0 }
        if (cls == "RUN") {
            t = transform(cmd)
            printf "%s\n__rc=$?; if [ \"$__rc\" -ne %d ]; then echo \"docs_commands: exit $__rc, expected %d: %s:%d\" >&2; exit 1; fi\n", t, code, code, doc, cmdline > bfile("sh")
            printf "RUN %s:%d: %s\n", doc, cmdline, t > bfile("list")
        } else if (cls ~ /^COVERED /)
            printf "COVERED %s:%d: %s  [%s]\n", doc, cmdline, cmd, substr(cls, 9) > bfile("list")
        else
            printf "%s %s:%d: %s\n", cls, doc, cmdline, cmd > bfile("list")
        cmd = ""
    }
    BEGIN { id = first; fence = ""; directive = ""; after_sh = 0 }
    /^<!-- docs_commands: [a-z-]+ -->$/ { pending = $3; next }
    /^```/ {
        if (fence == "") {
            fence = trim(substr($0, 4)); id++; cmd = ""; blockline = NR
            expect_for = (fence == "text" && after_sh) ? id - 1 : 0
            directive = pending; pending = ""
            if (fence == "sh") {
                printf "cd \"%s\" || exit 1\n", W > bfile("sh")
                printf "%s:%d\n", doc, NR > bfile("info")
            } else if (fence == "python") pyfile = ""
            next
        }
        if (fence == "sh") { flush(); after_sh = 1 }
        else after_sh = 0
        if (fence == "python" && pyfile == "")
            printf "%s %s:%d: python block%s\n", (doc ~ /(dataset|checkpoint)-format\.md$/ ? "COVERED" : "UNKNOWN"), doc, blockline, (doc ~ /dataset-format\.md$/ ? "  [tests/e2e/prep_interop.sh runs it]" : doc ~ /checkpoint-format\.md$/ ? "  [tests/unit/test_checkpoint.c: tests/fixtures/ckpt_interop.py, the same h5py code]" : "") > bfile("list")
        close(bfile("sh")); close(bfile("list")); close(bfile("info")); close(bfile("py"))
        close(bfile("pyname")); if (expect_for) close(sprintf("%s/%03d.expect", out, expect_for))
        fence = ""; next
    }
    fence == "" { if (trim($0) != "") after_sh = 0; next }
    fence == "sh" {
        line = $0
        if (cmd == "") {
            if (trim(line) == "" || trim(line) ~ /^#/) next
            cmdline = NR
        }
        if (line ~ /\\$/) { sub(/[ \t]*\\$/, " ", line); cmd = cmd trim(line) " "; next }
        cmd = trim(cmd trim(line)); flush(); next
    }
    fence == "python" {
        if (pyfile == "" && $0 ~ /^# [A-Za-z0-9_.-]+\.py/) {
            pyfile = $2
            printf "PYFILE %s:%d: %s\n", doc, NR, pyfile > bfile("list")
            printf "%s\n", pyfile > bfile("pyname")
        }
        if (pyfile != "") { l = $0; gsub(/weights="[A-Za-z0-9_]+"/, "weights=None", l); print l > bfile("py") }
        next
    }
    fence == "text" && expect_for { if (trim($0) != "") printf "%s\n", trim($0) > sprintf("%s/%03d.expect", out, expect_for) }
    END { print id }
    ' "$1"
}

n=0
for doc in README.md docs/training.md docs/troubleshooting.md docs/*.md; do
    case " $done_docs " in *" $doc "*) continue ;; esac
    done_docs="$done_docs $doc"
    n=$(extract "$doc" "$n") || { bad "cannot read $doc"; finish; }
done
cat "$T"/blocks/*.list >"$T/commands.txt" 2>/dev/null
grep '^UNKNOWN' "$T/commands.txt" | while IFS= read -r line; do
    echo "FAILED: a command the test does not know how to run or where it is covered: ${line#UNKNOWN }"
done
grep '^COVERED' "$T/commands.txt" | sed 's/^COVERED /covered elsewhere: /' | cut -c1-200
unknown=$(grep -c '^UNKNOWN' "$T/commands.txt")
if [ "$unknown" -eq 0 ]; then
    ok "every documented command is run here or covered elsewhere ($(grep -c '^RUN' "$T/commands.txt") run, $(grep -c '^COVERED' "$T/commands.txt") covered)"
else
    fail=$((fail + unknown))
fi

for py in "$T"/blocks/*.py; do
    [ -f "$py" ] && cp "$py" "$W/$(cat "${py%.py}.pyname")"
done
PATH="$W/bin:$W/build/bin:$PATH"
export PATH
for b in "$T"/blocks/*.sh; do
    [ -f "$b" ] || continue
    name=$(basename "$b" .sh)
    where=$(cat "$T/blocks/$name.info")
    grep -q '^RUN ' "$T/blocks/$name.list" 2>/dev/null || continue
    t0=$(date +%s)
    # timeout runs the block in a process group of its own (PGID = its PID):
    # whatever the block left running (a background mpirun) is ended with it.
    timeout -k 5 "$LIMIT" sh "$b" >"$T/logs/$name.log" 2>&1 &
    group=$!
    wait "$group"
    rc=$?
    if kill -0 -"$group" 2>/dev/null; then
        kill -TERM -"$group" 2>/dev/null
        sleep 2
        kill -KILL -"$group" 2>/dev/null
    fi
    took=$(($(date +%s) - t0))
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "    (timed out after $LIMIT s)"
        bad "block at $where (${took} s):"
        grep -E '^(error|warning): |^\[rank ' "$T/logs/$name.log" | head -n 5 | sed 's/^/    /'
        show "$T/logs/$name.log" 3
        continue
    fi
    missing=0
    if [ -f "$T/blocks/$name.expect" ]; then
        while IFS= read -r want; do
            grep -qF -- "$want" "$T/logs/$name.log" || { missing=1; echo "    not in the output: $want"; }
        done <"$T/blocks/$name.expect"
    fi
    if [ "$missing" -eq 0 ]; then
        ok "block at $where: $(grep -c '^RUN ' "$T/blocks/$name.list") commands, ${took} s"
    else
        bad "block at $where: output differs from the page"; show "$T/logs/$name.log"
    fi
done

# What the blocks left behind, as the pages say.
cd "$W" || finish
check() { # NAME command...
    name=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
check "training.md: the Goyal et al. run left best.h5 and a step checkpoint" \
    sh -c 'test -f runs/r50-goyal/best.h5 && ls runs/r50-goyal/step-*.h5'
check "training.md: resnet_plot drew a PNG" \
    test "$(head -c 8 runs/r50-goyal/curves.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
check "training.md: the SIGUSR1 demo stopped with a checkpoint and resumed from it" \
    sh -c 'ls runs/c10-demo/step-*.h5 && grep -q "resumed from runs/c10-demo/step-" '"$T"'/logs/*.log'
check "training.md: --eval-only --split test appended a test record" \
    grep -q '"kind":"test"' runs/c10-r56/metrics.jsonl
check "training.md: the fine-tuning command loaded the exported weights" \
    grep -q "initialised weights from resnet50-imagenet-3.h5" "$T"/logs/*.log
check "troubleshooting.md: SIGUSR1 to mpirun left a checkpoint" sh -c 'ls runs/stop/step-*.h5'

# ---------------------------------------------------------------- mirrored commands
flat() { tr '\n' ' ' <"$REPO/$1" | tr -s ' '; }
# grepdoc PAGE TEXT: the page still shows TEXT (whitespace and line breaks ignored).
grepdoc() { flat "$1" | grep -qF -- "$2" || { bad "$1 no longer shows: $2"; return 1; }; }

# docs/models.md: "Command for any row", on four rows of its table.
cmd='build/bin/resnet_dist --synthetic --arch ARCH --num-classes K --crop S --batch-size 1 --dry-run'
if grepdoc docs/models.md "$cmd"; then
    for arch in resnet18 resnet50 resnet20 resnet110; do
        row=$(grep "^| $arch |" "$REPO/docs/models.md" | tr -d ' ,')
        k=$(echo "$row" | cut -d'|' -f3) s=$(echo "$row" | cut -d'|' -f4)
        params=$(echo "$row" | cut -d'|' -f5) gmacs=$(echo "$row" | cut -d'|' -f6)
        run=$(echo "$cmd" | sed "s/ARCH/$arch/; s/ K / $k /; s/ S / $s /")
        if $run >"$T/logs/models-$arch.log" 2>&1 && grep -q "$arch: $params parameters, $gmacs GMACs per ${s}x$s image" \
            "$T/logs/models-$arch.log"; then
            ok "models.md: $arch: $params parameters, $gmacs GMACs"
        else
            bad "models.md: $run does not print $params parameters, $gmacs GMACs"
            show "$T/logs/models-$arch.log" 4
        fi
    done
fi

# docs/performance.md: looking for slow oneDNN kernels (2 images: see the header).
cmd='DNNL_VERBOSE=1 build/bin/resnet_dist --synthetic --bench --arch resnet50 --batch-size 32 --bench-warmup 0 --bench-steps 1'
if grepdoc docs/performance.md "$cmd"; then
    if DNNL_VERBOSE=1 build/bin/resnet_dist --synthetic --bench --arch resnet50 --bench-warmup 0 \
        --bench-steps 1 --batch-size 2 >"$T/logs/dnnl-verbose.log" 2>&1 &&
        grep -q '^onednn_verbose,exec' "$T/logs/dnnl-verbose.log" &&
        grep -q '"img_per_s"' "$T/logs/dnnl-verbose.log"; then
        ok "performance.md: DNNL_VERBOSE=1 ... --bench lists oneDNN calls"
    else
        bad "performance.md: $cmd"; show "$T/logs/dnnl-verbose.log" 4
    fi
fi

# checkpoint-format.md and training.md: loading a checkpoint back into torchvision.
if grepdoc docs/checkpoint-format.md "ckpt_interop.py load --arch resnet50 FILE" &&
    grepdoc docs/training.md "tests/fixtures/ckpt_interop.py load --arch resnet50 FILE"; then
    check "checkpoint-format.md: ckpt_interop.py load --arch resnet50 on a training.md checkpoint" \
        "$PYTHON" tests/fixtures/ckpt_interop.py load --arch resnet50 runs/r50-goyal/best.h5
fi

# training.md: the flags jobs/resnet50.slurm passes by default (8 ranks x 32).
if command -v bash >/dev/null 2>&1; then
    recipe=$(cd "$REPO" && bash -c '
        . jobs/common.sh >/dev/null 2>&1
        EXTRA=() DATA_RUN="\$DATA" BATCH=256
        imagenet_recipe resnet50 && echo "resnet_dist ${TRAIN_ARGS[*]}"' 2>/dev/null)
    # shellcheck disable=SC2016 # literal $ words, as the page and common.sh show them
    suffix='--checkpoint-dir $CKPT_DIR --resume auto --metrics $METRICS'
    # shellcheck disable=SC2016
    if [ -z "$recipe" ]; then
        bad "jobs/common.sh: imagenet_recipe did not run"
    elif ! grep -qF 'local args=("$@" --checkpoint-dir "$CKPT_DIR" --resume auto --metrics "$METRICS")' \
        "$REPO/jobs/common.sh"; then
        bad "jobs/common.sh: train_with_requeue no longer adds: $suffix"
    elif grepdoc docs/training.md "$recipe $suffix"; then
        ok "training.md shows the flags of jobs/resnet50.slurm: $recipe $suffix"
    fi
fi

# jobs/README.md: SCHEDULE=plateau is section 3's rule with the floor a
# thousandth of the peak rate; 5 warmup epochs above 256 images.
if command -v bash >/dev/null 2>&1; then
    plateau=$(cd "$REPO" && bash -c '
        . jobs/common.sh >/dev/null 2>&1
        EXTRA=() DATA_RUN=x BATCH=1024 SCHEDULE=plateau
        imagenet_recipe resnet50 && echo "${TRAIN_ARGS[*]}"' 2>/dev/null)
    want="--base-lr 0.1 --warmup-epochs 5 --lr-schedule plateau --plateau-metric val_top1 --plateau-factor 0.1 --plateau-patience 5 --plateau-threshold 0.001 --plateau-threshold-mode abs --min-lr 0.0004 "
    case $plateau in
    *"$want"*)
        grepdoc jobs/README.md "(\`--plateau-patience 5 --plateau-threshold 0.001 --plateau-threshold-mode abs\`)" &&
            ok "jobs/README.md: SCHEDULE=plateau at 1024 images: $want" ;;
    *) bad "SCHEDULE=plateau BATCH=1024: imagenet_recipe gives '$plateau', expected it to hold '$want'" ;;
    esac
fi

echo "docs_commands: $(($(date +%s) - start)) s; commands in $T/commands.txt, logs in $T/logs"
# The checkpoints and exports (about 0.6 GB) only help to debug a failure.
[ "$fail" -eq 0 ] && rm -rf "$W/runs" "$W"/*.h5
finish
