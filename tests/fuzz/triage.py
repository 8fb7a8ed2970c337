#!/usr/bin/env python3
"""Groups the findings in a findings folder by likely cause: sanitizer
reports by their kind and first frame in our sources, timeouts and memory
limits by generator and input kinds, other exits by their last error line.

    python3 tests/fuzz/triage.py build-san/fuzz-findings
"""
import os
import re
import sys


def signature(d):
    out = open(os.path.join(d, "output.log"), errors="replace").read()
    head = open(os.path.join(d, "repro.sh"), errors="replace").read().splitlines()
    cat = head[1].split(":")[0].lstrip("# ")
    what = head[2][len("# case: "):] if len(head) > 2 else ""
    frames = [f for f in re.findall(r" in \S+ (src/[\w/]+\.c:\d+)", out) if "error.c" not in f]
    frame = re.search(r"(src/[\w/]+\.c:\d+):\d+: runtime error", out) or (frames and re.search(".*", frames[0]))
    if frame and frame.re.pattern == ".*":
        frame = re.search("(.*)", frames[0])
    if cat in ("asan", "ubsan", "leak", "rss", "signal") and frame:
        kind = re.search(r"ERROR: \w+Sanitizer: ([\w-]+(?: [a-z]+)?)|runtime error: ([^0-9\n]{0,60})", out)
        k = (kind.group(1) or kind.group(2)).strip() if kind else ""
        return "%s %s at %s" % (cat, k, frame.group(1))
    if cat.startswith("exit-") or cat == "silent-exit-2":
        errs = ([ln for ln in out.splitlines() if ln.startswith("[rank")] or
                [ln for ln in out.splitlines() if "error" in ln.lower()] or out.splitlines()[-1:] or [""])
        return "%s: %s" % (cat, re.sub(r"/\S+|\d+", "N", errs[-1])[:120])
    gen = os.path.basename(d).split("-")[2]
    if gen == "folder":  # the entries that can block or explode, not the harmless ones
        odd = sorted(set(re.findall(r"fifo|symlink-loop|self-symlink-dir|parent-symlink|symlink-to-dev|"
                                    r"huge-\w+|many-scans|big-chunk-length", what)))
        return "%s in folder with: %s" % (cat, ",".join(odd) or "(none of the suspects)")
    return "%s in %s: %s" % (cat, gen, re.sub(r"\d+", "N", what)[:140])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "build-san/fuzz-findings"
    groups = {}
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if name.startswith(".") or not os.path.exists(os.path.join(d, "repro.sh")):
            continue
        groups.setdefault(signature(d), []).append(d)
    for sig, dirs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print("%5d  %s\n       e.g. %s" % (len(dirs), sig, dirs[0]))
    print("%d findings in %d groups" % (sum(map(len, groups.values())), len(groups)))


if __name__ == "__main__":
    main()
