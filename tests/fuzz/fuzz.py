#!/usr/bin/env python3
"""Structure-aware fuzzer for resnet_prep, resnet_dist and resnet_plot.

Case i of seed s is a pure function of (s, i): its generator writes input
files (datasets, checkpoints, image folders, CIFAR/IDX files, metrics) into
a fresh folder and runs one command. A case is clean when the command ends
within the time limit with a documented exit code (0, 2; 5 where non-finite
values are the point), under the memory limit, and without a sanitizer
report. Anything else is a finding: its folder is kept with a repro.sh.

    python3 tests/fuzz/fuzz.py --build build-san --cases 10000 --seed 1 --jobs 2
    python3 tests/fuzz/fuzz.py --build build-san --seed 1 --case 4711   # one case again

See docs/reliability.md.
"""
import argparse
import multiprocessing
import os
import random
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")  # numpy on purposely absurd casts
import cases  # noqa: E402
import hdf5_cases  # noqa: E402

SAN_PATTERNS = [
    ("asan", re.compile(r"ERROR: AddressSanitizer: (?!hard rss)")),
    ("rss", re.compile(r"hard rss limit exhausted|rss limit")),
    ("leak", re.compile(r"ERROR: LeakSanitizer")),
    ("ubsan", re.compile(r"runtime error: ")),
]


class Env:
    """What every case needs: binaries, base inputs, limits."""

    def __init__(self, a):
        self.bin = os.path.abspath(os.path.join(a.build, "bin"))
        self.work = os.path.abspath(a.work)
        self.findings = os.path.abspath(a.findings)
        self.base = os.path.join(self.work, "base")
        self.base_data = os.path.join(self.base, "data.h5")
        self.base_ckpt = os.path.join(self.base, "ck", "step-00000001.h5")
        self.timeout, self.rss_mb, self.seed, self.leaks = a.timeout, a.rss_mb, a.seed, a.leaks
        self.build = a.build
        with open(os.path.join(self.bin, "resnet_prep"), "rb") as f:
            self.sanitized = b"__asan_init" in f.read()
        self.repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def child_env(env, case_dir):
    e = dict(os.environ)
    asan = ["hard_rss_limit_mb=%d" % env.rss_mb, "allocator_may_return_null=0",
            "detect_leaks=%d" % env.leaks, "abort_on_error=0", "symbolize=1"]
    if env.leaks:  # full stacks, so that library-internal leaks match tests/lsan.supp
        asan.append("fast_unwind_on_malloc=0")
    e.update({
        "ASAN_OPTIONS": ":".join(asan),
        "UBSAN_OPTIONS": "print_stacktrace=1",
        "LSAN_OPTIONS": "suppressions=%s:print_suppressions=0" % os.path.join(env.repo, "tests", "lsan.supp"),
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_ess_singleton_isolated": "1",  # no orted per run: faster, nothing left behind
        "OMPI_MCA_mca_base_component_disable_dlclose": "1",  # symbolised stacks in MPI plugins
        "OMP_NUM_THREADS": "1",
        "TMPDIR": case_dir,
    })
    return e


ENV_KEYS = ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "OMPI_ALLOW_RUN_AS_ROOT",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "OMPI_MCA_ess_singleton_isolated",
            "OMPI_MCA_mca_base_component_disable_dlclose", "OMP_NUM_THREADS", "TMPDIR"]


def make_base(env):
    """A valid small dataset and a checkpoint the trainer wrote from it (the
    same for every seed, so any case can be rerun alone)."""
    if os.path.exists(env.base_ckpt):
        return
    os.makedirs(env.base, exist_ok=True)
    hdf5_cases.write_dataset(env.base_data, random.Random(0))
    argv = cases._dist(env, "--data", env.base_data, "--max-steps", "1", "--checkpoint-dir",
                       os.path.dirname(env.base_ckpt))
    r = subprocess.run(argv, env=child_env(env, env.base), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    if r.returncode != 0 or not os.path.exists(env.base_ckpt):
        sys.exit("fuzz: could not make the base checkpoint:\n" + r.stdout.decode(errors="replace"))


def _limit_memory(mb):
    """RLIMIT_AS for a build without ASan (whose shadow memory needs a huge
    address space); None lifts the generator's soft limit for ASan builds."""
    def set_limit():
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20) if mb else (hard, hard))
    return set_limit


def classify(env, case, rc, out, case_dir):
    """None for a clean end, else (category, detail)."""
    for cat, pat in SAN_PATTERNS:
        m = pat.search(out)
        if m:
            line = out[max(out.rfind("\n", 0, m.start()), 0):].strip().splitlines()[0]
            return cat, line[:200]
    if rc in (124, 137) or rc == -signal.SIGKILL:
        return "timeout", "no exit within %d s" % env.timeout
    if rc < 0 or rc >= 128:
        return "signal", "killed by signal %d" % (-rc if rc < 0 else rc - 128)
    if rc == 0 and 0 not in case.allowed:
        return "accepted", "exit 0 on an input it must refuse: " + case.what.split("(must refuse: ")[-1].rstrip(")")
    if rc not in case.allowed:
        last = [ln for ln in out.splitlines() if ln.strip()][-1:] or [""]
        return "exit-%d" % rc, last[0][:200]
    if rc == 2 and not re.search(r"error", out, re.I):
        return "silent-exit-2", "exit 2 without an error line"
    if case.sentinel and rc != 0:
        try:
            same = open(case.sentinel, "rb").read() == b"precious"
        except OSError:
            same = False
        if not same:
            return "clobbered-out", "a failed run replaced or removed the existing --out file"
    return None


def run_case(env, i, keep=False):
    rng = random.Random("%d:%d" % (env.seed, i))
    name, gen = cases.pick(rng)
    case_dir = os.path.join(env.work, "case-%d-%d" % (env.seed, i))
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    try:
        case = gen(rng, case_dir, env)
    except Exception as e:  # a generator bug is not a finding of the product
        return i, name, ("generator-error", "%s: %s" % (type(e).__name__, e)), case_dir, None
    start = time.time()
    argv = ["timeout", "-k", "5", str(env.timeout)] + case.argv
    pre = _limit_memory(None if env.sanitized else env.rss_mb)
    try:
        r = subprocess.run(argv, cwd=case_dir, env=child_env(env, case_dir), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=pre,
                           timeout=env.timeout + 30)
        rc, out = r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = 124, (e.stdout or b"").decode(errors="replace")
    took = time.time() - start
    finding = classify(env, case, rc, out, case_dir)
    if finding:
        case_dir = keep_finding(env, i, name, case, finding, rc, out, case_dir)
    elif not keep:
        shutil.rmtree(case_dir, ignore_errors=True)
    return i, name, finding, case_dir, (case, rc, took)


def keep_finding(env, i, name, case, finding, rc, out, case_dir):
    dest = os.path.join(env.findings, "s%d-c%d-%s-%s" % (env.seed, i, name, finding[0]))
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(env.findings, exist_ok=True)
    os.rename(case_dir, dest)  # same file system: FIFOs and symlink loops move as they are
    cmd = [a.replace(case_dir, dest) for a in case.argv]
    e = child_env(env, dest)
    with open(os.path.join(dest, "repro.sh"), "w") as f:
        f.write("#!/bin/sh\n# %s: %s\n# case: %s\n# exit %d\n" % (finding[0], finding[1], case.what, rc))
        f.write("# regenerate and rerun: python3 tests/fuzz/fuzz.py --build %s --seed %d --case %d\n"
                % (env.build, env.seed, i))
        f.write("cd %s\n" % shlex.quote(dest))
        for k in ENV_KEYS:
            f.write("export %s=%s\n" % (k, shlex.quote(e[k])))
        f.write("timeout -k 5 %d %s\n" % (env.timeout, " ".join(shlex.quote(a) for a in cmd)))
    with open(os.path.join(dest, "output.log"), "w") as f:
        f.write(out)
    return dest


_ENV = None


GENERATOR_MEMORY = 4 << 30


def _init(env):
    """A pool worker. Its soft address-space limit turns a generator that
    reads a dataset another mutation made huge into a MemoryError (the
    mutation is skipped) instead of the kernel's OOM killer taking the worker
    and its case with it; the programs under test get the limit lifted."""
    global _ENV
    _ENV = env
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (GENERATOR_MEMORY, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _work(i):
    return run_case(_ENV, i)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build-san"), help="build folder with bin/")
    ap.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", 10000)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 1)))
    ap.add_argument("--first", type=int, default=0, help="index of the first case")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("FUZZ_JOBS", 2)))
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("FUZZ_TIMEOUT", 30)))
    ap.add_argument("--rss-mb", type=int, default=int(os.environ.get("FUZZ_RSS_MB", 2048)))
    ap.add_argument("--leaks", type=int, default=int(os.environ.get("FUZZ_LEAKS", 0)),
                    help="1: LeakSanitizer too (about 3x slower per case)")
    ap.add_argument("--findings", default=os.environ.get("FUZZ_FINDINGS", "build-san/fuzz-findings"))
    ap.add_argument("--work", default=None, help="scratch folder [FINDINGS/.work]")
    ap.add_argument("--max-seconds", type=float, default=float(os.environ.get("FUZZ_MAX_SECONDS", 0)),
                    help="stop starting cases after this long and report the ones done (0: no limit)")
    ap.add_argument("--case", type=int, action="append", help="run only this case (repeatable)")
    ap.add_argument("--only", default=None, help="comma-separated generators: " +
                    ",".join(g[1] for g in cases.GENERATORS))
    a = ap.parse_args()
    a.work = a.work or os.path.join(a.findings, ".work")
    env = Env(a)
    os.makedirs(env.work, exist_ok=True)
    make_base(env)
    ids = a.case or list(range(a.first, a.first + a.cases))
    if a.only:
        only = set(a.only.split(","))
        ids = [i for i in ids if cases.pick(random.Random("%d:%d" % (a.seed, i)))[0] in only]
    print("fuzz: %d cases, seed %d, %d jobs, %s build (%s), limits %d s and %d MB; findings go to %s"
          % (len(ids), a.seed, a.jobs, a.build, "sanitizers" if env.sanitized else "no sanitizers",
             a.timeout, a.rss_mb, env.findings), flush=True)
    start = time.time()
    findings, counts, done, spent = [], {}, 0, {}
    pool = None
    if a.case and len(ids) == 1:
        resource.setrlimit(resource.RLIMIT_AS, (GENERATOR_MEMORY, resource.getrlimit(resource.RLIMIT_AS)[1]))
        results = [run_case(env, ids[0], keep=True)]
    else:
        pool = multiprocessing.Pool(a.jobs, _init, (env,))
        results = pool.imap_unordered(_work, ids, chunksize=1)
    stopped = ""
    for i, name, finding, case_dir, info in results:
        if a.max_seconds and time.time() - start > a.max_seconds:
            if pool:
                pool.terminate()  # cases still running are dropped; their folders stay in the work folder
            stopped = " (stopped after %.0f s by --max-seconds)" % a.max_seconds
            break
        done += 1
        counts[name] = counts.get(name, 0) + 1
        if info:
            spent[name] = spent.get(name, 0) + info[2]
        if finding:
            findings.append((i, name, finding, case_dir, info))
            cmd = "python3 tests/fuzz/fuzz.py --build %s --seed %d --case %d" % (a.build, a.seed, i)
            what = info[0].what if info else ""
            run = " ".join(shlex.quote(x.replace(os.path.join(env.work, "case-%d-%d" % (a.seed, i)), case_dir))
                           for x in info[0].argv) if info else ""
            print("FINDING %s case %d [%s] %s\n    %s\n    command: %s\n    input: %s\n"
                  "    repro: sh %s/repro.sh  or  %s"
                  % (finding[0], i, name, finding[1], what, run, case_dir, case_dir, cmd), flush=True)
        elif a.case:
            print("case %d [%s] clean: %s, exit %d in %.1f s" % (i, name, info[0].what, info[1], info[2]))
        if done % 500 == 0:
            print("fuzz: %d/%d cases, %d findings, %.0f s" % (done, len(ids), len(findings), time.time() - start),
                  flush=True)
    took = time.time() - start
    by_cat = {}
    for _, name, (cat, _), _, _ in findings:
        by_cat[(cat, name)] = by_cat.get((cat, name), 0) + 1
    print("fuzz: %d cases in %.0f s%s (%s), %d findings%s" % (
        done, took, stopped, ", ".join("%s %d (%.1f s each)" % (k, n, spent.get(k, 0) / n) for k, n in sorted(counts.items())),
        len(findings),
        "".join("\n    %4d %s in %s cases" % (n, c, g) for (c, g), n in sorted(by_cat.items()))))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
