"""Generation speed of every model the chapters' listening rooms offer, at batch 1 on one thread, against the limit
the CPU sets on it.

For each exported run (``results/runs/NAME``, the models the rooms load):

- ``samples_per_s``: samples of one unconditional sample per second of wall time, through
  :func:`wavelab.report.widgets.generate` (the room's own path: ``model.sample`` without autograd on one thread),
  one-time set-up included (SaShiMi's discretisation), for a length of about ``--seconds`` of generation;
- ``flops_per_sample``: the floating-point operations of its matrix products and convolutions per generated sample,
  counted by ``torch.utils.flop_counter.FlopCounterMode`` over a short sample (elementwise work is not counted); for
  a model with an incremental step, over the eager loop of that step (:meth:`WavelabModel.steps`, the maths the
  compiled loop of :mod:`wavelab.models.fused` runs), set-up excluded;
- ``weight_bytes_per_sample``: for a model with an incremental step, its parameters' bytes over the step size (every
  step reads every weight; an upper bound for SaShiMi, whose inner stages step every 4th and 16th sample); for the
  others (flows, latent models), left out: they generate in a few wide passes whose weights stay in cache;
- ``read_bandwidth``: bytes per second one thread reads from a buffer the size of the model's weights, measured in
  the same run (so weights that fit in a cache level are read at that level's speed, as the step reads them);
- ``limit_samples_per_s``: ``1 / max(flops_per_sample / matmul rate, weight_bytes_per_sample / read_bandwidth)``,
  with the matmul rate (fp32, one thread, 1024 x 1024 products) measured in the same run; ``of_limit`` is the
  measured speed over it;
- ``real_time``: ``samples_per_s / 16000``.

Run from the project root on a quiet machine (a few minutes):

    .venv/bin/python benchmarks/room_speed.py [--seconds 5] [--runs NAME ...] [--out benchmarks/results/room_speed.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from wavelab.models.base import WavelabModel
from wavelab.report.records import utc_now
from wavelab.report.widgets import generate
from wavelab.runs import atomic_write_json, git_commit, hardware_info
from wavelab.train import load_run

SAMPLE_RATE = 16_000
RUNS = ("wavenet-dc32-b2", "wavenet-paper", "lstm-s1", "lstm-s64", "vrnn-s64", "srnn-s64", "cwvae-s64-l1",
        "cwvae-s64-l2", "cwvae-s64-l3", "waveflow-h16", "waveglow", "sashimi-8bit", "sashimi-16bit")
FLOP_SAMPLES = 4096  # long enough for a whole frame of every stack size and a whole CW-VAE top-layer step


def matmul_rate(n: int = 1024, repeats: int = 5) -> float:
    """fp32 FLOP/s of ``n x n`` matrix products on the current threads (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def read_bandwidth(nbytes: int, repeats: int = 5) -> float:
    """Bytes per second one thread reads when summing a float32 buffer of ``nbytes`` (best of ``repeats``; small
    buffers are summed many times per timing, so the rate is that of the cache level they fit in)."""
    buffer = torch.ones(max(nbytes // 4, 1024))
    inner = max(1, 2 ** 26 // buffer.numel())
    buffer.sum()

    def read():
        for _ in range(inner):
            buffer.sum()

    best = min(_timed(read) for _ in range(repeats))
    return inner * buffer.numel() * 4 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def lstm_flops_per_step(model) -> int:
    """Matrix-product FLOPs of one time step of every ``nn.LSTM`` in ``model``: ``2 * 4H (in + H)`` per layer.  The
    flop counter does not see inside PyTorch's fused LSTM kernel on the CPU (it does count ``nn.GRU``), so these
    are added by hand."""
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.LSTM):
            for layer in range(m.num_layers):
                in_features = m.input_size if layer == 0 else m.hidden_size
                total += 2 * 4 * m.hidden_size * (in_features + m.hidden_size)
    return total


def flops_per_sample(model) -> float:
    """Matrix-product and convolution FLOPs per sample at batch 1: of the eager loop of the model's step when it has
    one (set-up excluded; with :func:`lstm_flops_per_step` added per step), else of ``model.sample``."""
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        if model.has_step:
            state, block = model.default_state(1), model.silence_block(1)
            steps = FLOP_SAMPLES // model.step_size
            with FlopCounterMode(display=False) as counter:
                WavelabModel.steps(model, block, state, steps, 1.0, generator)
            return (counter.get_total_flops() + steps * lstm_flops_per_step(model)) / FLOP_SAMPLES
        else:
            with FlopCounterMode(display=False) as counter:
                model.sample(FLOP_SAMPLES, batch_size=1, generator=generator)
    return counter.get_total_flops() / FLOP_SAMPLES


def measure(name: str, seconds: float) -> dict:
    model = load_run(Path("results/runs") / name)[0].eval()
    probe = 256
    _, wall = generate(model, probe / SAMPLE_RATE)
    n = int(min(max(probe, probe / wall * seconds), 4 * SAMPLE_RATE))
    audio, wall = generate(model, n / SAMPLE_RATE)
    rate = len(audio) / wall
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    step = model.step_size
    return {"run": name, "model": type(model).__name__, "has_step": step is not None, "samples": len(audio),
            "seconds": wall, "samples_per_s": rate, "real_time": rate / SAMPLE_RATE,
            "parameters": sum(p.numel() for p in model.parameters()), "flops_per_sample": flops_per_sample(model),
            "weight_bytes_per_sample": weight_bytes / step if step else None,
            "read_bandwidth": read_bandwidth(weight_bytes)}


def markdown(out: dict) -> str:
    lines = [f"Generation at batch 1 on 1 thread, {out['hardware']['cpu']}, {out['created']} (commit "
             f"{(out['commit'].get('hash') or '?')[:10]}); matmul {out['matmul_flops'] / 1e9:.0f} GFLOP/s, read "
             f"{out['dram_read_bandwidth'] / 1e9:.1f} GB/s from a 256 MiB buffer; load average at start "
             f"{out['load_average_at_start'][0]:.2f}.  Read rate: at the size of the model's weights.  MFLOP: "
             "matrix products and convolutions as torch's flop counter sees them (GRUs included), plus the LSTM's, "
             "which it does not see, by hand.", "",
             "| run | samples/s | x real time | limit samples/s | of limit | MFLOP/sample | weight kB/sample | "
             "read GB/s |",
             "|---|---|---|---|---|---|---|---|"]
    for e in out["entries"]:
        kb = "" if e["weight_bytes_per_sample"] is None else f"{e['weight_bytes_per_sample'] / 1e3:,.1f}"
        lines.append(f"| {e['run']} | {e['samples_per_s']:,.0f} | {e['real_time']:.3f} | "
                     f"{e['limit_samples_per_s']:,.0f} | {e['of_limit']:.3f} | {e['flops_per_sample'] / 1e6:,.2f} | "
                     f"{kb} | {e['read_bandwidth'] / 1e9:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="about how long each model generates (default 5)")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), help="exported runs under results/runs")
    ap.add_argument("--out", default="benchmarks/results/room_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"created": utc_now(), "hardware": hardware_info(), "commit": git_commit(), "threads": 1,
           "load_average_at_start": os.getloadavg(), "matmul_flops": matmul_rate(),
           "dram_read_bandwidth": read_bandwidth(256 * 2 ** 20),
           "entries": []}
    for name in args.runs:
        e = measure(name, args.seconds)
        t_flops = e["flops_per_sample"] / out["matmul_flops"]
        t_bytes = (e["weight_bytes_per_sample"] or 0) / e["read_bandwidth"]
        e["limit_samples_per_s"] = 1 / max(t_flops, t_bytes, 1e-12)
        e["of_limit"] = e["samples_per_s"] / e["limit_samples_per_s"]
        out["entries"].append(e)
        print(f"{name}: {e['samples_per_s']:,.0f} samples/s ({e['real_time']:.3f}x real time), limit "
              f"{e['limit_samples_per_s']:,.0f}, {e['of_limit']:.3f} of it", flush=True)
    out["load_average_at_end"] = os.getloadavg()
    path = Path(args.out)
    atomic_write_json(out, path)
    path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
