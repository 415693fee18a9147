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


# --------------------------------------------------------------------------------------------------------------------
# recurrent models over stacked frames (benchmarks/recurrent_speed.py)


@torch.inference_mode()
def evaluation_time(model, num_samples: int, iw_samples: int | None = None, repeats: int = 2, warmup: int = 0,
                    seed: int = 0) -> float:
    """Seconds to evaluate one utterance of ``num_samples`` random codes (batch 1) in inference mode: the model's
    own figure through ``model.evaluate_long`` (or ``forward``; exact NLL or one-sample ELBO), or with ``iw_samples =
    K`` the importance-weighted bound ``model.iw_bound(codes, lengths, K)`` (Burda et al. 2016).  Best of ``repeats``
    timed calls after ``warmup`` untimed ones.  The cost does not depend on the codes' values.

    Raises:
        ValueError: ``num_samples < 1``, or ``iw_samples`` for a model without ``iw_bound``.
    """
    if num_samples < 1:
        raise ValueError(f"evaluation_time: num_samples must be >= 1, got {num_samples}")
    if iw_samples is not None and not hasattr(model, "iw_bound"):
        raise ValueError(f"evaluation_time: iw_samples={iw_samples} needs a latent variable model with iw_bound; "
                         f"{type(model).__name__} has none")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2 ** model.bits, (1, num_samples), generator=g)
    lengths = torch.tensor([num_samples])
    if iw_samples is not None:
        fn = lambda: model.iw_bound(codes, lengths, iw_samples)  # noqa: E731
    else:
        fn = lambda: getattr(model, "evaluate_long", model)(codes, lengths)  # noqa: E731
    return best_time(fn, repeats=repeats, warmup=warmup)


def recurrent_speed_table(bench: dict) -> SpeedTable:
    """Render the output of ``benchmarks/recurrent_speed.py`` (its JSON as a dict) as a table.

    One row per model and stack size ``s``: parameters, training throughput in frames (samples) per second with the
    segment length it was measured on, and evaluation seconds per second of audio (16 kHz) for the model's own figure
    (exact NLL for the LSTM, one-sample ELBO for VRNN and SRNN) and for the importance-weighted bound (latent models
    only; "n/a" for the LSTM).  A value below 1 s per second of audio is faster than real time.

    Raises:
        ValueError: an evaluation entry names a model and ``s`` with no training entry (the JSON is inconsistent).
    """
    rows, index = [], {}
    for r in bench["training"]:
        index[(r["model"], r["s"])] = len(rows)
        rows.append([r["model"], str(r["s"]), f"{r['parameters']:,}",
                     f"{r['frames_per_s']:,.0f} frames/s (batch {r['batch_size']} x {r['segment_length']:,})",
                     "", "n/a"])
    for e in bench["evaluation"]:
        key = (e["model"], e["s"])
        if key not in index:
            raise ValueError(f"recurrent_speed_table: evaluation of {e['model']} s={e['s']} has no training entry; "
                             "re-run benchmarks/recurrent_speed.py")
        cell = f"{e['seconds_per_audio_second']:,.2f} s"
        rows[index[key]][5 if e.get("K") else 4] = cell
    hw = bench.get("hardware", {})
    K = bench.get("iw_samples", "K")
    caption = (f"Measured {bench.get('created', '?')} on {hw.get('cpu', '?')} ({bench.get('threads', '?')} threads), "
               f"torch {hw.get('torch', '?')}, commit {(bench.get('commit', {}).get('hash') or '?')[:10]}; "
               f"models: {bench.get('config', '?')}. Evaluation: one utterance of {bench.get('eval_samples', '?'):,} "
               f"samples, seconds per second of audio (below 1 is faster than real time).")
    if bench.get("quick"):
        caption = "SMOKE RUN (--quick: tiny models, numbers meaningless). " + caption
    return SpeedTable(["model", "s", "parameters", "training", "evaluation (exact / ELBO)",
                       f"evaluation (IW bound, K={K})"], rows, caption)
