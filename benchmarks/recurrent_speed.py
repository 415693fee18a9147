"""Recurrent-model speed on this machine: training frames/s of the LSTM, VRNN and SRNN at stack sizes s = 1, 64 and
256 (the paper's configuration, Dd = Dz = 256), and evaluation time per second of audio (exact likelihood or ELBO, and
the importance-weighted bound with K = 10 for the latent models).

Run from the project root (about 5 minutes on 2 CPU cores):

    .venv/bin/python benchmarks/recurrent_speed.py [--threads N] [--out benchmarks/results/recurrent_speed.json]
    .venv/bin/python benchmarks/recurrent_speed.py --quick     # tiny models, a few seconds; writes to the temp dir

Training is timed with :func:`wavelab.report.speed.training_throughput` (forward, backward and an Adam step on random
codes, batch 2, best of a few steps after a warm-up).  A step over a segment of ``L`` samples runs ``L / s``
recurrent steps one after another, so the segment length is chosen per ``s`` (``SEGMENTS``: 2,000 samples at s = 1,
32,000 at s = 64 and 256) to make each measurement last seconds; the JSON names the segment used for every row.
Evaluation runs one utterance of ``--eval-samples`` samples (16,000 = 1 s) through ``evaluate_long`` (what
``python -m wavelab evaluate`` calls) and through ``iw_bound(K)`` in inference mode, timed with
:func:`wavelab.report.speed.evaluation_time`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from wavelab.report.speed import evaluation_time, recurrent_speed_table, training_throughput
from wavelab.models import build_model
from wavelab.report.records import utc_now
from wavelab.runs import git_commit, hardware_info

MODELS = ("lstm", "vrnn", "srnn")
STACKS = (1, 64, 256)
SEGMENTS = {1: 2_000, 64: 32_000, 256: 32_000}  # training segment length (samples) per stack size s
SAMPLE_RATE = 16_000
# --quick: tiny models and short inputs, a smoke test of the script (numbers meaningless)
QUICK = {"overrides": {"Dd": 16, "Dz": 8, "mlp_layers": 2}, "segments": {1: 200, 64: 2_048, 256: 2_048},
         "eval_samples": 1_024, "K": 2}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--eval-samples", type=int, default=SAMPLE_RATE, help="samples of the evaluated utterance")
    p.add_argument("--iw-samples", type=int, default=10, help="K of the importance-weighted bound")
    p.add_argument("--batch-size", type=int, default=2, help="training batch size (paper: 2)")
    p.add_argument("--quick", action="store_true", help="tiny models and inputs: a smoke test of the script")
    p.add_argument("--out", help="default benchmarks/results/recurrent_speed.json "
                                 "(with --quick: recurrent_speed_quick.json in the temp dir)")
    args = p.parse_args(argv)
    if args.threads < 1 or args.eval_samples < 1 or args.iw_samples < 1 or args.batch_size < 1:
        p.error("--threads, --eval-samples, --iw-samples and --batch-size must be positive")
    overrides, segments, n_eval, K = {}, dict(SEGMENTS), args.eval_samples, args.iw_samples
    if args.quick:
        overrides, segments, n_eval, K = QUICK["overrides"], QUICK["segments"], QUICK["eval_samples"], QUICK["K"]
    out_path = Path(args.out or (Path(tempfile.gettempdir()) / "recurrent_speed_quick.json" if args.quick
                                 else "benchmarks/results/recurrent_speed.json"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"created": utc_now(), "hardware": hardware_info(), "commit": git_commit(), "threads": args.threads,
           "load_average_at_start": os.getloadavg(), "sample_rate": SAMPLE_RATE, "quick": args.quick,
           "config": overrides or "paper (Dd = Dz = 256, 3-layer MLPs, DMoL 10 x 2^16)",
           "batch_size": args.batch_size, "eval_samples": n_eval, "iw_samples": K, "training": [], "evaluation": []}
    for s in STACKS:
        for name in MODELS:
            fields = {k: v for k, v in overrides.items() if not (name == "lstm" and k == "Dz")}
            model = build_model(name, s=s, **fields)
            params = sum(q.numel() for q in model.parameters())
            L = segments[s]
            fps = training_throughput(model, segment_length=L, batch_size=args.batch_size, steps=2)
            out["training"].append({"model": name, "s": s, "config": dict(fields, s=s), "parameters": params,
                                    "segment_length": L, "batch_size": args.batch_size, "frames_per_s": fps})
            print(f"{name} s={s}: training {fps:,.0f} frames/s (segment {L}, batch {args.batch_size}, "
                  f"{params:,} parameters)", flush=True)
            estimators = [("exact" if name == "lstm" else "ELBO, 1 sample", None)]
            if hasattr(model, "iw_bound"):
                estimators.append((f"importance-weighted bound, K={K}", K))
            for estimator, k in estimators:
                sec = evaluation_time(model, n_eval, iw_samples=k)
                out["evaluation"].append({"model": name, "s": s, "estimator": estimator, "K": k,
                                          "num_samples": n_eval, "seconds": sec,
                                          "seconds_per_audio_second": sec / (n_eval / SAMPLE_RATE)})
                print(f"{name} s={s}: {estimator}: {sec:.2f} s for {n_eval / SAMPLE_RATE:.2f} s of audio", flush=True)
    out["load_average_at_end"] = os.getloadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print(recurrent_speed_table(out).markdown())
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
