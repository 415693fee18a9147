"""WaveNet speed on this machine: training throughput, and generation of 1 s of audio with the cached fast path
("Fast WaveNet", Paine et al. 2016) against full recomputation, at batch sizes 1 and 16.

Run from the project root (takes about 10 minutes on 2 CPU cores):

    .venv/bin/python benchmarks/wavenet_speed.py [--threads N] [--out benchmarks/results/wavenet_speed.json]

The fast path is timed end to end with ``model.sample``.  Recomputation is too slow to run for a whole second of audio
with the paper's model on a CPU (hours), so its time is the sum over the 16,000 steps of measured per-step times, each
step recomputing the network over its context (at most the receptive field); see
:func:`wavelab.report.speed.recompute_generation_time`.  The issue requires the fast path to be at least 20x faster
than recomputation at batch 1 for the paper's configuration; the script checks it and exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from wavelab.report.speed import (fast_generation_time, recompute_generation_time, speed_table,
                                  training_throughput)
from wavelab.models import build_model
from wavelab.report.records import utc_now
from wavelab.runs import git_commit, hardware_info

CONFIGS = {
    "paper (Dc=96, 5x10)": {},
    "cpu-budget (Dc=32, 2x10)": {"Dc": 32, "blocks": 2},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seconds", type=float, default=1.0, help="audio to generate per sequence")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    p.add_argument("--out", default="benchmarks/results/wavenet_speed.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = int(args.seconds * 16000)
    out = {"created": utc_now(), "hardware": hardware_info(), "commit": git_commit(), "threads": args.threads,
           "load_average_at_start": os.getloadavg(), "sample_rate": 16000, "num_samples": n,
           "training": [], "generation": []}
    for name, overrides in CONFIGS.items():
        model = build_model("wavenet", **overrides)
        fps = training_throughput(model, segment_length=16000, batch_size=2)
        out["training"].append({"name": name, "config": overrides, "segment_length": 16000, "batch_size": 2,
                                "frames_per_s": fps})
        print(f"{name}: training {fps:,.0f} frames/s", flush=True)
        for b in args.batch_sizes:
            fast = fast_generation_time(model, n, b)
            slow = recompute_generation_time(model, n, b)
            out["generation"].append({"name": name, "config": overrides, "batch_size": b, "fast_s": fast,
                                      "recompute_s": slow["seconds"], "recompute_detail": slow,
                                      "speedup": slow["seconds"] / fast})
            print(f"{name}: batch {b}: fast {fast:.1f} s, recompute {slow['seconds']:.0f} s "
                  f"({slow['seconds'] / fast:.0f}x)", flush=True)
    out["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(speed_table(out).markdown())
    paper_b1 = next(g for g in out["generation"] if g["config"] == {} and g["batch_size"] == 1)
    if paper_b1["speedup"] < 20:
        print(f"FAIL: fast path only {paper_b1['speedup']:.1f}x faster than recomputation at batch 1", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
