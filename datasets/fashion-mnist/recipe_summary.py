#!/usr/bin/env python3
"""Summarises training runs as a Markdown table, one row per run directory
(each holding the metrics.jsonl that --metrics wrote): the seed, the last step
trained, the training time, the last validation top-1 accuracy with its test-
time-augmented and weight-average variants when the run reported them, and
the test accuracy of the last --eval-only on the test split (with its flip
TTA variant); then the mean of the test accuracies. Columns no run has are
left out.

The training time adds up the training segments of a run: a run resumed from
a checkpoint (--resume) counts from each start-up to its last record before
the next start-up, so a stop and a resume cost only the work redone.
Evaluation-only start-ups (--eval-only) are not training time.

usage: recipe_summary.py RUN_DIR [RUN_DIR ...]"""
import json
import os
import re
import sys

NUMBERS = ("time", "step", "top1", "tta_top1", "ema_top1", "ema_tta_top1")
VAL_FIGURES = (("top1", "val"), ("tta_top1", "val tta"), ("ema_top1", "val ema"),
               ("ema_tta_top1", "val ema tta"))


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_records(path):
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{number}: not a JSON record ({e.msg})")
            if not isinstance(record, dict) or not isinstance(record.get("kind"), str) or \
                    any(not isinstance(record.get(k, 0), (int, float)) for k in NUMBERS):
                fail(f"{path}:{number}: not a metrics record (a kind, and numbers for "
                     f"{', '.join(NUMBERS)})")
            if record["kind"] == "config" and "time" not in record:
                fail(f"{path}:{number}: a config record without its time")
            records.append(record)
    return records


def training_seconds(records):
    total, start, last = 0.0, None, None
    for r in records:
        if r.get("kind") == "config":
            if start is not None and last is not None:
                total += last - start
            training = "total_steps" in r
            start, last = (r["time"], None) if training else (None, None)
        elif start is not None and "time" in r:
            last = r["time"]
    if start is not None and last is not None:
        total += last - start
    return total


def seed_of(records):
    for r in records:
        if r.get("kind") == "config" and "total_steps" in r:
            m = re.search(r"--seed[ =](\d+)", r.get("command_line", ""))
            return m.group(1) if m else "0"
    return "-"


def summarise(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(path):
        fail(f"{run} holds no metrics.jsonl")
    records = read_records(path)
    vals = [r for r in records if r.get("kind") == "val"]
    tests = [r for r in records if r.get("kind") == "test"]
    steps = max((r["step"] for r in records if r.get("kind") != "test" and "step" in r), default=0)
    return {
        "run": os.path.basename(os.path.normpath(run)),
        "seed": seed_of(records),
        "steps": steps,
        "minutes": training_seconds(records) / 60.0,
        "val": vals[-1] if vals else {},
        "test": tests[-1] if tests else {},
    }


def percent(record, key):
    return f"{100.0 * record[key]:.2f}" if key in record else "-"


def main():
    if len(sys.argv) < 2:
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        sys.exit(2)
    rows = [summarise(run) for run in sys.argv[1:]]
    shown = [(k, name) for k, name in VAL_FIGURES if any(k in r["val"] for r in rows)]
    head = ["run", "seed", "steps", "training (min)"] + [f"{name} top-1 %" for _, name in shown]
    tests = [(k, name) for k, name in (("top1", "test"), ("tta_top1", "test tta"))
             if any(k in r["test"] for r in rows)]
    head += [f"{name} top-1 %" for _, name in tests]
    print("| " + " | ".join(head) + " |")
    print("|---|--:|" + "--:|" * (len(head) - 2))
    for r in rows:
        cells = [r["run"], r["seed"], str(r["steps"]), f"{r['minutes']:.1f}"]
        cells += [percent(r["val"], k) for k, _ in shown]
        cells += [percent(r["test"], k) for k, _ in tests]
        print("| " + " | ".join(cells) + " |")
    if tests:
        print()
    for key, name in tests:
        got = [100.0 * r["test"][key] for r in rows if key in r["test"]]
        print(f"- mean {name} top-1: {sum(got) / len(got):.2f}% over {len(got)} run(s) "
              f"(min {min(got):.2f}, max {max(got):.2f})")


if __name__ == "__main__":
    main()
