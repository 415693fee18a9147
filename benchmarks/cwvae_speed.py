"""CW-VAE speed on this machine: training frames/s, evaluation seconds per second of audio (the one-sample ELBO
through ``evaluate_long``) and unconditional generation seconds per second of audio, for L = 1, 2 and 3 latent layers
(s1 = 64, c = 8) in two configurations: the paper's (the authors' code: Dh = 192, Dz = 128) and the CPU-budget one
of the recorded runs (Dh = 96, Dz = 64; scripts/cpu_budget_runs.sh).

Run from the project root (a few minutes on one CPU core; not while training runs share the machine):

    .venv/bin/python benchmarks/cwvae_speed.py [--threads N] [--out benchmarks/results/cwvae_speed.json]
    .venv/bin/python benchmarks/cwvae_speed.py --quick     # tiny models, a few seconds; writes to the temp dir

Training is timed with :func:`wavelab.report.speed.training_throughput` (forward, backward and an Adam step on random
codes, batch 2 x 32,000 samples as in the recorded runs, best of two steps after a warm-up).  Evaluation runs one
utterance of ``--eval-samples`` samples (16,000 = 1 s) through ``evaluate_long`` (what ``python -m wavelab evaluate``
calls) in inference mode (:func:`wavelab.report.speed.evaluation_time`); generation draws ``--eval-samples`` samples
through ``model.sample`` (the prior hierarchy rolled out top-down, then all samples decoded in parallel;
:func:`wavelab.report.speed.fast_generation_time`).  One thread by default, so that the numbers do not depend on what
else the machine runs on its other cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from wavelab.report.speed import cwvae_speed_table, evaluation_time, fast_generation_time, training_throughput
from wavelab.models import build_model
from wavelab.report.records import utc_now
from wavelab.runs import git_commit, hardware_info

LAYERS = (1, 2, 3)
CONFIGS = {"paper": {"Dh": 192, "Dz": 128}, "cpu-budget": {"Dh": 96, "Dz": 64}}
SAMPLE_RATE = 16_000
SEGMENT = 32_000  # training segment (samples), as in the recorded CW-VAE runs
# --quick: tiny models and short inputs, a smoke test of the script (numbers meaningless)
QUICK = {"configs": {"tiny": {"Dh": 16, "Dz": 8, "enc_blocks": 1, "dec_blocks": 1, "kernel_size": 3,
                              "mlp_layers": 2, "num_components": 3}},
         "segment": 8_192, "eval_samples": 4_096}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--eval-samples", type=int, default=SAMPLE_RATE,
                   help="samples of the evaluated utterance and of the generated sample")
    p.add_argument("--segment-length", type=int, default=SEGMENT, help="training segment length in samples")
    p.add_argument("--batch-size", type=int, default=2, help="training batch size (paper and recorded runs: 2)")
    p.add_argument("--quick", action="store_true", help="tiny models and inputs: a smoke test of the script")
    p.add_argument("--out", help="default benchmarks/results/cwvae_speed.json "
                                 "(with --quick: cwvae_speed_quick.json in the temp dir)")
    args = p.parse_args(argv)
    if args.threads < 1 or args.eval_samples < 1 or args.segment_length < 1 or args.batch_size < 1:
        p.error("--threads, --eval-samples, --segment-length and --batch-size must be positive")
    configs, segment, n_eval = CONFIGS, args.segment_length, args.eval_samples
    if args.quick:
        configs, segment, n_eval = QUICK["configs"], QUICK["segment"], QUICK["eval_samples"]
    out_path = Path(args.out or (Path(tempfile.gettempdir()) / "cwvae_speed_quick.json" if args.quick
                                 else "benchmarks/results/cwvae_speed.json"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"created": utc_now(), "hardware": hardware_info(), "commit": git_commit(), "threads": args.threads,
           "load_average_at_start": os.getloadavg(), "sample_rate": SAMPLE_RATE, "quick": args.quick,
           "configs": configs, "s1": 64, "c": 8, "batch_size": args.batch_size, "segment_length": segment,
           "eval_samples": n_eval, "measurements": []}
    for name, overrides in configs.items():
        for L in LAYERS:
            model = build_model("cwvae", s1=64, c=8, L=L, **overrides)
            params = sum(q.numel() for q in model.parameters())
            fps = training_throughput(model, segment_length=segment, batch_size=args.batch_size, steps=2)
            ev = evaluation_time(model, n_eval, repeats=2)
            gen = fast_generation_time(model, n_eval, batch_size=1)
            audio_s = n_eval / SAMPLE_RATE
            out["measurements"].append({
                "config": name, "L": L, "strides": list(model.strides), "overrides": dict(overrides, L=L),
                "parameters": params, "frames_per_s": fps, "eval_seconds": ev,
                "eval_seconds_per_audio_second": ev / audio_s, "generation_seconds": gen,
                "generation_seconds_per_audio_second": gen / audio_s})
            print(f"{name} L={L} ({params:,} parameters): training {fps:,.0f} frames/s; ELBO of "
                  f"{audio_s:.2f} s of audio in {ev:.2f} s; generation of {audio_s:.2f} s in {gen:.2f} s", flush=True)
    out["load_average_at_end"] = os.getloadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print(cwvae_speed_table(out).markdown())
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
