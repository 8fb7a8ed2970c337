#!/usr/bin/env python3
"""Summarises bench/conv_algo_curves.sh: for each algorithm and seed, the
validation error after every epoch, the mean training loss of the last epoch
and the test accuracy of the final weights, as a Markdown table; then the
mean and the spread (max - min) over seeds per algorithm, and how many
convolutions the winograd runs had in Winograd (none on CPUs without oneDNN
Winograd kernels, where both algorithms train the same direct network)."""
import json
import os
import re
import sys


def read_run(path):
    val, test, last_epoch_losses = [], None, []
    rows = [json.loads(line) for line in open(path) if line.strip()]
    convs = rows[0].get("winograd_convs") if rows and rows[0]["kind"] == "config" else None
    final_epoch = max((r["epoch"] for r in rows if r["kind"] == "train"), default=0)
    for r in rows:
        if r["kind"] == "val":
            val.append(100.0 * (1.0 - r["top1"]))
        elif r["kind"] == "test":
            test = 100.0 * r["top1"]
        elif r["kind"] == "train" and r["epoch"] == final_epoch:
            last_epoch_losses.append(r["loss"])
    loss = sum(last_epoch_losses) / len(last_epoch_losses) if last_epoch_losses else float("nan")
    return val, loss, test, convs


def main():
    out = sys.argv[1]
    runs = {}
    for name in sorted(os.listdir(out)):
        m = re.fullmatch(r"(direct|winograd)-seed(\d+)", name)
        path = os.path.join(out, name, "metrics.jsonl")
        if m and os.path.exists(path):
            runs[(m.group(1), int(m.group(2)))] = read_run(path)
    if not runs:
        sys.exit(f"error: no finished runs under {out}")
    epochs = max(len(v[0]) for v in runs.values())
    head = ["algorithm", "seed"] + [f"val err % ep {e + 1}" for e in range(epochs)]
    head += ["last-epoch train loss", "test acc %"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 2 + "--:|" * (len(head) - 2))
    for (algo, seed), (val, loss, test, _) in sorted(runs.items()):
        cells = [algo, str(seed)] + [f"{v:.2f}" for v in val] + [""] * (epochs - len(val))
        cells += [f"{loss:.4f}", f"{test:.2f}" if test is not None else "-"]
        print("| " + " | ".join(cells) + " |")
    print()
    for algo in ("direct", "winograd"):
        tests = [r[2] for (a, _), r in runs.items() if a == algo and r[2] is not None]
        finals = [r[0][-1] for (a, _), r in runs.items() if a == algo and r[0]]
        if tests:
            print(f"- {algo}: test accuracy mean {sum(tests) / len(tests):.2f}% "
                  f"(spread {max(tests) - min(tests):.2f}), final validation error mean "
                  f"{sum(finals) / len(finals):.2f}% over {len(tests)} seed(s)")
    convs = sorted({r[3] for (a, _), r in runs.items() if a == "winograd" and r[3] is not None})
    if convs:
        print(f"- convolutions in Winograd in the winograd runs: {', '.join(map(str, convs))}"
              + (" (none: oneDNN has no Winograd kernels on this CPU, so the winograd rows are"
                 " direct convolution)" if convs == [0] else ""))


if __name__ == "__main__":
    main()
