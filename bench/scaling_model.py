"""Scaling model for data-parallel resnet-dist on a cluster, from this
machine's measured training throughput (build/bench/results.jsonl, written by
`make bench`): per-step compute time against ring-allreduce time of the
gradients at 64 and 512 ranks on a 100 Gb/s network. Rewrites the generated
section of docs/scaling.md.

usage: scaling_model.py RESULTS.jsonl DOC.md [--cores-per-rank 32]
"""
import argparse
import json
import re
import sys

PARAMS = {"resnet50": 25_557_032, "resnet152": 60_192_808}
LINK_GBIT = 100.0          # network bandwidth per node, Gb/s
LATENCY_S = 5e-6           # per message step of the ring (alpha)
BUCKET_MB = 25.0           # --bucket-mb default
PER_RANK_BATCH = 32        # Goyal et al.: 32 images per worker
BACKWARD_SHARE = 2.0 / 3.0  # backward is about 2/3 of a step (two of three GEMM-sized passes)


def ring_allreduce_s(nbytes, ranks, buckets):
    """Bandwidth term 2 (W-1)/W S/B plus 2 (W-1) latency steps per bucket."""
    bandwidth = LINK_GBIT * 1e9 / 8
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * LATENCY_S * buckets


def measured(results):
    """Images per second per core of our training step, per model."""
    out = {}
    for line in open(results):
        r = json.loads(line)
        # the plain 1-rank runs that succeeded (not the --conv-algo or data-parallel ones)
        if (r.get("side") != "ours" or r.get("ranks") != 1 or r.get("config") not in PARAMS
                or "result" not in r):
            continue
        res = r["result"]
        out[r["config"]] = (res["img_per_s"] / res["threads"], res["threads"], res["batch"])
    return out


def table(results, cores):
    rows = ["| model | ranks | global batch | compute per step (s) | allreduce (s) | "
            "exposed if overlapped (s) | scaling efficiency |",
            "|---|---|---|---|---|---|---|"]
    meas = measured(results)
    for model, nparams in PARAMS.items():
        if model not in meas:
            rows.append(f"| {model} | - | - | not measured in this run | | | |")
            continue
        per_core, threads, batch = meas[model]
        nbytes = 4 * nparams
        buckets = max(1, round(nbytes / (BUCKET_MB * 2**20)))
        compute = PER_RANK_BATCH / (per_core * cores)
        for ranks in (64, 512):
            comm = ring_allreduce_s(nbytes, ranks, buckets)
            exposed = max(0.0, comm - BACKWARD_SHARE * compute)
            eff = compute / (compute + exposed)
            rows.append(f"| {model} | {ranks} | {ranks * PER_RANK_BATCH} | {compute:.3f} | "
                        f"{comm:.3f} | {exposed:.3f} | {100 * eff:.0f}% |")
    notes = [f"Measured here: " + ", ".join(
        f"{m} {v[0]:.2f} img/s per core ({v[1]} threads, batch {v[2]})" for m, v in meas.items())
        + f"; model: {cores} cores per rank, {PER_RANK_BATCH} images per rank, "
          f"{LINK_GBIT:.0f} Gb/s, {LATENCY_S * 1e6:.0f} us per ring step, {BUCKET_MB:.0f} MB buckets."]
    return "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("doc")
    ap.add_argument("--cores-per-rank", type=int, default=32)
    a = ap.parse_args()
    text = open(a.doc).read()
    begin, end = "<!-- scaling:begin -->", "<!-- scaling:end -->"
    if begin not in text or end not in text:
        sys.exit(f"{a.doc}: no {begin} ... {end} section to rewrite")
    new = table(a.results, a.cores_per_rank)
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end),
                  lambda _: begin + "\n" + new + end, text, flags=re.S)
    open(a.doc, "w").write(text)


if __name__ == "__main__":
    main()
