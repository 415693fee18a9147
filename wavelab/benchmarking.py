"""Timing helpers for ``benchmarks/`` and the tables the book renders from their outputs.

All times are wall-clock seconds measured with ``time.perf_counter`` on the machine named in each output's
``hardware`` field; throughputs are in frames (samples) per second.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Minimum wall time in seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def training_throughput(model: torch.nn.Module, segment_length: int, batch_size: int, steps: int = 3,
                        lr: float = 3e-4) -> float:
    """Training frames per second: forward, backward and an Adam step on random codes ``[batch_size,
    segment_length]`` (the best of ``steps`` timed steps after one warm-up step)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    K = 2 ** model.bits
    codes = torch.randint(0, K, (batch_size, segment_length))
    lengths = torch.full((batch_size,), segment_length)

    def step():
        opt.zero_grad(set_to_none=True)
        model(codes, lengths).loss().backward()
        opt.step()

    model.train()
    return batch_size * segment_length / best_time(step, repeats=steps)


@torch.inference_mode()
def fast_generation_time(model, num_samples: int, batch_size: int) -> float:
    """Seconds to generate ``num_samples`` per sequence for ``batch_size`` sequences through ``model.sample``."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model.sample(num_samples, batch_size=batch_size, generator=g)
    return time.perf_counter() - t0


@torch.inference_mode()
def recompute_step_time(model, window: int, batch_size: int, repeats: int = 3) -> float:
    """Seconds for one step of generation by full recomputation: a forward pass over a context of ``window`` samples
    (``model.network`` on ``[batch_size, 1, window]``) whose last output predicts the next sample, plus the draw."""
    model.eval()
    u = torch.rand(batch_size, 1, window) * 0.2 - 0.1

    def step():
        params = model.network(u)[:, :, -1:]
        model.distribution.sample(params)

    return best_time(step, repeats=repeats)


def recompute_generation_time(model, num_samples: int, batch_size: int,
                              windows: tuple[int, ...] = (1, 256, 1024, 2048)) -> dict:
    """Seconds to generate ``num_samples`` by recomputing the network at every step, from measured step times.

    Step ``t`` recomputes a context of ``min(t + 1, R)`` samples (``R`` the receptive field: more context cannot
    change the prediction).  The step time is measured at the context sizes ``windows`` and at ``R``, interpolated
    linearly in between, and summed over ``t = 0 .. num_samples - 1``; the steady state (``t >= R``) is measured
    directly.

    Returns:
        dict with ``seconds`` (the sum), ``steady_state_step_s`` (one step at context ``R``) and ``measured``
        (window -> seconds per step).
    """
    R = model.config.receptive_field
    ws = sorted({w for w in windows if w < R} | {R})
    measured = {w: recompute_step_time(model, w, batch_size) for w in ws}
    t = np.arange(num_samples)
    per_step = np.interp(np.minimum(t + 1, R), ws, [measured[w] for w in ws])
    return {"seconds": float(per_step.sum()), "steady_state_step_s": measured[R],
            "measured": {str(w): s for w, s in measured.items()}}


class SpeedTable:
    """A rendered table (markdown in text and notebooks), built by :func:`speed_table`."""

    def __init__(self, header: list[str], rows: list[list[str]], caption: str = ""):
        self.header, self.rows, self.caption = header, rows, caption

    def markdown(self) -> str:
        """GitHub-flavoured markdown: header, rows, then the caption as a paragraph."""
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + (f"\n\n{self.caption}" if self.caption else "")

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()


def speed_table(bench: dict) -> SpeedTable:
    """Render the output of ``benchmarks/wavenet_speed.py`` (its JSON as a dict) as a table.

    Rows: training throughput per configuration, then generation of ``num_samples`` samples per configuration and
    batch size, fast path against recomputation, with the speed-up.
    """
    rows = []
    for r in bench["training"]:
        rows.append([r["name"], "training", f"batch {r['batch_size']} x {r['segment_length']}",
                     f"{r['frames_per_s']:,.0f} frames/s", "", ""])
    for r in bench["generation"]:
        n, b = bench["num_samples"], r["batch_size"]
        fast, slow = r["fast_s"], r["recompute_s"]
        rows.append([r["name"], f"generate {n / bench['sample_rate']:.0f} s", f"batch {b}",
                     f"fast: {b * n / fast:,.0f} samples/s ({fast:.1f} s)",
                     f"recompute: {b * n / slow:,.1f} samples/s ({slow:,.0f} s)", f"{slow / fast:,.0f}x"])
    hw = bench.get("hardware", {})
    caption = (f"Measured {bench.get('created', '?')} on {hw.get('cpu', '?')} ({bench.get('threads', '?')} threads), "
               f"torch {hw.get('torch', '?')}, commit {bench.get('commit', {}).get('hash', '?')[:10]}. "
               "Recomputation times sum measured per-step times over the growing context (see the script).")
    return SpeedTable(["model", "task", "shape", "throughput", "full recomputation", "speed-up"], rows, caption)
