"""Timing helpers for ``benchmarks/`` and the tables the book renders from their outputs.

All times are wall-clock seconds measured with ``time.perf_counter`` on the machine named in each output's
``hardware`` field; throughputs are in frames (samples) per second.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from ..models import display_name
from .tables import Table


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
def eager_generation_time(model, num_samples: int, batch_size: int) -> float:
    """Seconds for what :func:`fast_generation_time` generates, through the eager loop of the model's incremental
    step (:meth:`~wavelab.models.base.WavelabModel.steps` of the base class: ``step`` and ``distribution.sample`` per
    block, in Python), the loop the compiled one of :mod:`wavelab.models.fused` replaces.

    Raises:
        CapabilityError: the model has no incremental step.
    """
    from ..models.base import WavelabModel

    model.eval()
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    state, block = model.default_state(batch_size), model.silence_block(batch_size)
    WavelabModel.steps(model, block, state, -(-num_samples // model.step_size), 1.0, g)
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


class SpeedTable(Table):
    """A benchmark's table (a :class:`wavelab.report.tables.Table`: HTML in notebooks, Markdown by ``str()``), built by
    :func:`speed_table` and its siblings; ``header`` is the column list."""

    def __init__(self, header: list[str], rows: list[list[str]], caption: str = ""):
        super().__init__(list(header), rows, caption)

    @property
    def header(self) -> list[str]:
        return list(self.columns)


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
    own figure through ``model.evaluate_long`` (``forward`` by default; exact NLL or one-sample ELBO), or with ``iw_samples =
    K`` the importance-weighted bound ``model.iw_bound(codes, lengths, K)`` (Burda et al. 2016).  Best of ``repeats``
    timed calls after ``warmup`` untimed ones.  The cost does not depend on the codes' values.

    Raises:
        ValueError: ``num_samples < 1``, or ``iw_samples`` for a model without ``iw_bound``.
    """
    if num_samples < 1:
        raise ValueError(f"evaluation_time: num_samples must be >= 1, got {num_samples}")
    if iw_samples is not None and not model.has_iw_bound:
        raise ValueError(f"evaluation_time: iw_samples={iw_samples} needs a latent variable model with iw_bound; "
                         f"{type(model).__name__} has none")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2 ** model.bits, (1, num_samples), generator=g)
    lengths = torch.tensor([num_samples])
    if iw_samples is not None:
        fn = lambda: model.iw_bound(codes, lengths, iw_samples)  # noqa: E731
    else:
        fn = lambda: model.evaluate_long(codes, lengths)  # noqa: E731
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


# --------------------------------------------------------------------------------------------------------------------
# the Clockwork VAE (benchmarks/cwvae_speed.py)


def cwvae_speed_table(bench: dict) -> SpeedTable:
    """Render the output of ``benchmarks/cwvae_speed.py`` (its JSON as a dict) as a table.

    One row per configuration (``"paper"``: Dh = 192, Dz = 128; ``"cpu-budget"``: Dh = 96, Dz = 64) and number of
    latent layers ``L``: the strides ``s_l = c^(l-1) s1`` in samples, parameters, training throughput in frames
    (samples) per second with the batch it was measured on, and the seconds per second of audio (16 kHz) to evaluate
    the one-sample ELBO (``evaluate_long``) and to generate unconditionally (``model.sample``).  Below 1 s per second
    of audio is faster than real time.

    Raises:
        ValueError: ``bench`` has no ``measurements`` list or an entry lacks one of the fields the script writes
            (re-run benchmarks/cwvae_speed.py).
    """
    fields = ("config", "L", "strides", "parameters", "frames_per_s", "eval_seconds_per_audio_second",
              "generation_seconds_per_audio_second")
    rows_in = bench.get("measurements") if isinstance(bench, dict) else None
    if not isinstance(rows_in, list):
        raise ValueError("cwvae_speed_table: bench must be the JSON of benchmarks/cwvae_speed.py with a "
                         "'measurements' list; re-run benchmarks/cwvae_speed.py")
    rows = []
    for r in rows_in:
        missing = [f for f in fields if f not in r]
        if missing:
            raise ValueError(f"cwvae_speed_table: a measurement lacks {missing}; re-run benchmarks/cwvae_speed.py")
        rows.append([r["config"], str(r["L"]), ", ".join(f"{s:,}" for s in r["strides"]), f"{r['parameters']:,}",
                     f"{r['frames_per_s']:,.0f} frames/s",
                     f"{r['eval_seconds_per_audio_second']:,.2f} s",
                     f"{r['generation_seconds_per_audio_second']:,.3f} s"])
    hw = bench.get("hardware", {})
    configs = "; ".join(f"{k}: " + ", ".join(f"{a}={b}" for a, b in v.items())
                        for k, v in bench.get("configs", {}).items())
    n_eval = bench.get("eval_samples")
    caption = (f"Measured {bench.get('created', '?')} on {hw.get('cpu', '?')} ({bench.get('threads', '?')} threads), "
               f"torch {hw.get('torch', '?')}, commit {(bench.get('commit', {}).get('hash') or '?')[:10]}; "
               f"s1 = {bench.get('s1', '?')}, c = {bench.get('c', '?')}; configurations: {configs or '?'}. "
               f"Training: batch {bench.get('batch_size', '?')} x {bench.get('segment_length', 0):,} samples. "
               f"Evaluation and generation: {n_eval if n_eval is None else f'{n_eval:,}'} samples, seconds per "
               "second of audio (below 1 is faster than real time).")
    if bench.get("quick"):
        caption = "SMOKE RUN (--quick: tiny models, numbers meaningless). " + caption
    return SpeedTable(["config", "L", "strides s_l", "parameters", "training", "evaluation (ELBO)", "generation"],
                      rows, caption)


# --------------------------------------------------------------------------------------------------------------------
# generation speed across models: WaveFlow, WaveGlow, SaShiMi, WaveNet (benchmarks/generation_speed.py)


@torch.inference_mode()
def prefix_recompute_step_time(model, prefix: int, batch_size: int, repeats: int = 2, warmup: int = 0) -> float:
    """Seconds for one step of generation by convolution-mode recomputation: ``model.logits`` over a prefix of
    ``prefix`` codes ``[batch_size, prefix]`` (the whole past, no receptive-field limit), then a draw from the
    distribution of the last position (what ``SaShiMi.sample_recompute`` does at step ``t = prefix - 1``).  Best of
    ``repeats`` timed calls after ``warmup`` untimed ones.

    Raises:
        ValueError: ``prefix < 1`` or ``batch_size < 1``.
    """
    if prefix < 1 or batch_size < 1:
        raise ValueError(f"prefix_recompute_step_time: prefix and batch_size must be >= 1, got {prefix}, {batch_size}")
    model.eval()
    codes = torch.randint(0, 2 ** model.bits, (batch_size, prefix), generator=torch.Generator().manual_seed(0))

    def step():
        params = model.logits(codes)[:, :, -1:]
        model.distribution.sample(params)

    return best_time(step, repeats=repeats, warmup=warmup)


def prefix_recompute_generation_time(step_time: Callable[[int], float], num_samples: int,
                                     prefixes: tuple[int, ...] = (1, 1024, 4096, 8192)) -> dict:
    """Seconds to generate ``num_samples`` samples by recomputing the network over the whole prefix at every step,
    estimated from a few measured steps (the full recomputation would take hours).

    Step ``t`` (``t = 0 .. num_samples - 1``) runs the network on ``t + 1`` inputs.  ``step_time(L)`` is measured at
    each of ``prefixes`` below ``num_samples`` and at ``num_samples`` itself, interpolated linearly in ``L`` in between
    and summed over the steps.  Same method as :func:`recompute_generation_time` for WaveNet, without a receptive
    field: a model whose context is the whole past (SaShiMi's convolution mode) recomputes all of it.

    Args:
        step_time: seconds for one step at prefix length ``L`` (e.g. :func:`prefix_recompute_step_time`).
        num_samples: samples to generate (16,000 = 1 s at 16 kHz).
        prefixes: prefix lengths to measure (those ``>= num_samples`` are dropped).
    Returns:
        dict with ``seconds`` (the estimate), ``last_step_s`` (the step at prefix ``num_samples``) and ``measured``
        (prefix as a string -> seconds per step).
    Raises:
        ValueError: ``num_samples < 1``.
    """
    if num_samples < 1:
        raise ValueError(f"prefix_recompute_generation_time: num_samples must be >= 1, got {num_samples}")
    ps = sorted({p for p in prefixes if 1 <= p < num_samples} | {num_samples})
    measured = {p: step_time(p) for p in ps}
    per_step = np.interp(np.arange(1, num_samples + 1), ps, [measured[p] for p in ps])
    return {"seconds": float(per_step.sum()), "last_step_s": measured[num_samples],
            "measured": {str(p): s for p, s in measured.items()}}


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def _fmt_ratio(x: float) -> str:
    return f"{x:,.1f}x" if x >= 1 else f"{x:.2f}x" if x >= 0.1 else f"1/{1 / x:,.0f}"


def generation_speed_table(bench: dict) -> SpeedTable:
    """Render the output of ``benchmarks/generation_speed.py`` (its JSON as a dict) as a table.

    One row per model, generation method and audio length; for each batch size ``B`` the generation speed in samples
    per second (``B * num_samples / seconds``, all sequences together) and its ratio to the reference the benchmark
    names (``bench["reference"]``: the ``model`` and ``method`` of its entries, WaveNet's fast path, the queue
    method of Paine et al. 2016) at the same batch size (and length, else the main length ``num_samples``: the
    fast path costs the same per sample at any length); then the model's parameters.  Estimated figures (SaShiMi's
    convolution-mode recomputation, summed from timed steps) are marked "estimate" in the method column.

    Raises:
        ValueError: ``bench`` has no ``entries`` list or no ``reference``, an entry lacks a field the script writes,
            or no reference entry exists for a batch size that a ratio needs (re-run benchmarks/generation_speed.py).
    """
    fields = ("name", "model", "method", "estimate", "parameters", "batch_size", "num_samples", "seconds",
              "samples_per_s")
    entries = bench.get("entries") if isinstance(bench, dict) else None
    if not isinstance(entries, list):
        raise ValueError("generation_speed_table: bench must be the JSON of benchmarks/generation_speed.py with an "
                         "'entries' list; re-run benchmarks/generation_speed.py")
    for e in entries:
        missing = [f for f in fields if f not in e]
        if missing:
            raise ValueError(f"generation_speed_table: an entry lacks {missing}; re-run "
                             "benchmarks/generation_speed.py")
    ref = bench.get("reference")
    if not isinstance(ref, dict) or not {"model", "method"} <= set(ref):
        raise ValueError("generation_speed_table: bench names no reference (a 'reference' with 'model' and "
                         "'method'); re-run benchmarks/generation_speed.py")
    ref_name = f"{display_name(ref['model'])} {ref['method'].split()[0]}"  # "WaveNet fast"
    reference = {(e["batch_size"], e["num_samples"]): e["samples_per_s"] for e in entries
                 if e["model"] == ref["model"] and e["method"] == ref["method"]}
    batch_sizes = sorted({e["batch_size"] for e in entries})
    rows, index = [], {}
    sr = bench.get("sample_rate", 16000)
    for e in entries:
        key = (e["name"], e["method"], e["num_samples"])
        if key not in index:
            index[key] = len(rows)
            method = e["method"] + (" (estimate)" if e["estimate"] else "")
            rows.append([e["name"], method, f"{e['num_samples'] / sr:g} s"] + ["", ""] * len(batch_sizes)
                        + [f"{e['parameters']:,}"])
        rate = reference.get((e["batch_size"], e["num_samples"]), reference.get((e["batch_size"], bench.get(
            "num_samples"))))
        if rate is None:
            raise ValueError(f"generation_speed_table: no {ref_name} entry at batch {e['batch_size']} to "
                             f"compare {e['name']} with; re-run benchmarks/generation_speed.py")
        col = 3 + 2 * batch_sizes.index(e["batch_size"])
        rows[index[key]][col] = _fmt_rate(e["samples_per_s"])
        rows[index[key]][col + 1] = _fmt_ratio(e["samples_per_s"] / rate)
    header = ["model", "generation", "audio"]
    for b in batch_sizes:
        header += [f"batch {b}: samples/s", f"batch {b}: x {ref_name}"]
    header.append("parameters")
    hw = bench.get("hardware", {})
    load = bench.get("load_average_at_start")
    caption = (f"Measured {bench.get('created', '?')} on {hw.get('cpu', '?')} ({hw.get('cores', '?')} cores, "
               f"{bench.get('threads', '?')} threads; load average at start "
               f"{'?' if not load else f'{load[0]:.2f}'}), torch {hw.get('torch', '?')}, commit "
               f"{(bench.get('commit', {}).get('hash') or '?')[:10]}. Samples/s count all sequences of the batch "
               "(real time is 16,000 samples/s per sequence). Estimates sum timed steps over the growing prefix "
               "(see the script).")
    if bench.get("quick"):
        caption = "SMOKE RUN (--quick: tiny models, numbers meaningless). " + caption
    return SpeedTable(header, rows, caption)


# --------------------------------------------------------------------------------------------------------------------
# training speed of the book's 16-bit models in float32 and bf16 (benchmarks/training_speed.py)


def _fmt_sig(x: float) -> str:
    """A positive figure to about three significant digits, thousands separated (``1,234``, ``56.7``, ``0.0123``)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3g}"


def baseline_precision(entries: list[dict], recipe: str) -> str:
    """The form a recipe's speed-ups are measured against: ``"recipe"`` (float32 as the recorded runs trained) when
    ``benchmarks/training_speed.py`` measured it, else ``"fp32"`` (files written before the ``recipe`` form)."""
    return "recipe" if any(e["recipe"] == recipe and e["precision"] == "recipe" for e in entries) else "fp32"


#: how much worse (bits per frame, validation, after the same steps) a faster form may be and still count: about the
#: seed-to-seed spread measured on the 4-minute CW-VAE (results/seeds/)
MAX_BPF_LOSS = 0.02


def gain_summary(bench: dict, max_bpf_loss: float = MAX_BPF_LOSS) -> dict[str, dict[str, Any]]:
    """Per recipe of ``benchmarks/training_speed.py``'s output (its JSON as a dict): the recorded recipe's form and
    the fastest form whose validation bpf after the fixed steps is at most ``max_bpf_loss`` bits above it ("equal-step
    bpf"; forms without a validation figure are not eligible), as ``{recipe: {"best": form, "gain": best frames/s /
    recipe frames/s, "frames_per_s": {"recipe": .., "best": ..}, "ceiling_fraction": {..}: GFLOP/s over the matmul
    ceiling of the form's precision, "valid_bpf": {..}, "valid_is_bound": bool}}``.  Recipes without a baseline
    entry with a validation figure are left out.  The script writes it into the JSON as ``gains``.

    Raises:
        ValueError: as :func:`training_speed_table`.
    """
    training_speed_table(bench)  # validates the JSON
    entries, ceiling = bench["entries"], bench["matmul_ceiling"]
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(e["recipe"] for e in entries):
        forms = {e["precision"]: e for e in entries if e["recipe"] == name}
        base = forms.get(baseline_precision(entries, name))
        if base is None or base.get("valid_bpf_after_steps") is None:
            continue
        eligible = [e for e in forms.values() if e.get("valid_bpf_after_steps") is not None
                    and e["valid_bpf_after_steps"] <= base["valid_bpf_after_steps"] + max_bpf_loss]
        best = max(eligible, key=lambda e: e["frames_per_s"])
        pair = {"recipe": base, "best": best}
        out[name] = {
            "best": best["precision"], "gain": best["frames_per_s"] / base["frames_per_s"],
            "frames_per_s": {k: e["frames_per_s"] for k, e in pair.items()},
            "ceiling_fraction": {k: e["gflops_per_s"] / ceiling[ceiling_key(e["precision"])]["gflops_per_s"]
                                 for k, e in pair.items()},
            "valid_bpf": {k: e["valid_bpf_after_steps"] for k, e in pair.items()},
            "valid_is_bound": bool(base.get("valid_is_bound")), "uncounted_ops": bool(base.get("uncounted_ops")),
            "max_bpf_loss": max_bpf_loss}
    return out


def training_speed_gain(bench: dict, max_bpf_loss: float = MAX_BPF_LOSS) -> SpeedTable:
    """:func:`gain_summary` as a table, one row per model: the recipe's frames/s, the best form, its frames/s, the
    gain, both rates as a percentage of the matmul ceiling of their precision, and both validation bpf ("<=" for a
    bound).  A compact form of :func:`training_speed_table` that fits the book's column; see there for the fields.

    Raises:
        ValueError: as :func:`training_speed_table`, or no entry has a validation bpf.
    """
    full = training_speed_table(bench)
    entries = bench["entries"]
    steps = bench.get("steps", entries[0]["steps"] if entries else "?")
    if not any(e.get("valid_bpf_after_steps") is not None for e in entries):
        raise ValueError("training_speed_gain needs the validation bpf after the steps (run the benchmark with "
                         "--valid-utterances >= 1)")
    rows = []
    for name, g in gain_summary(bench, max_bpf_loss).items():
        pct = " / ".join(_fmt_sig(100 * g["ceiling_fraction"][k]) + "%" for k in ("recipe", "best"))
        bound = "<= " if g["valid_is_bound"] else ""
        rows.append([name + (" *" if g["uncounted_ops"] else ""), f"{g['frames_per_s']['recipe']:,.0f}", g["best"],
                     f"{g['frames_per_s']['best']:,.0f}", f"{g['gain']:.2f}x", pct,
                     " / ".join(f"{bound}{g['valid_bpf'][k]:.3f}" for k in ("recipe", "best"))])
    header = ["model", "recipe frames/s", "best form", "its frames/s", "gain", "% of ceiling (recipe / best)",
              f"valid bpf after {steps} steps (recipe / best)"]
    caption = (full.caption + f" Best form: the fastest whose validation bpf is at most {max_bpf_loss} bits above "
               "the recipe's after the same steps.")
    table = SpeedTable(header, rows, caption)
    table.notes = full.notes
    return table


def ceiling_key(precision: str) -> str:
    """The matmul ceiling a ``benchmarks/training_speed.py`` entry is set against: ``"bf16"`` for bf16 rows, else
    ``"fp32"`` (the ``recipe`` and ``fp32`` forms both run in float32)."""
    return "bf16" if precision == "bf16" else "fp32"


def _training_entries(bench: dict) -> tuple[list[dict], dict]:
    """The entries and matmul ceilings of ``benchmarks/training_speed.py``'s JSON, checked.

    Raises:
        ValueError: as :func:`training_speed_table`.
    """
    fields = ("recipe", "precision", "segment_length", "batch_size", "steps", "frames_per_s", "flops_per_frame",
              "gflops_per_s", "bpf_after_steps")
    entries = bench.get("entries") if isinstance(bench, dict) else None
    if not isinstance(entries, list):
        raise ValueError("training_speed_table: bench must be the JSON of benchmarks/training_speed.py with an "
                         "'entries' list; re-run benchmarks/training_speed.py")
    ceiling = bench.get("matmul_ceiling") or {}
    for e in entries:
        missing = [f for f in fields if f not in e]
        if missing:
            raise ValueError(f"training_speed_table: an entry lacks {missing}; re-run benchmarks/training_speed.py")
        key = ceiling_key(e["precision"])
        if not isinstance(ceiling.get(key), dict) or "gflops_per_s" not in ceiling[key]:
            raise ValueError(f"training_speed_table: no {e['precision']} matmul ceiling for {e['recipe']}'s "
                             "entry; re-run benchmarks/training_speed.py")
    return entries, ceiling


def training_speed_table(bench: dict) -> SpeedTable:
    """Render the output of ``benchmarks/training_speed.py`` (its JSON as a dict) as a table.

    One row per recipe (``recipes/NAME.toml``, its recorded model, batch and segment length) and precision
    (``"fp32"``; ``"bf16"``: bfloat16 autocast): training frames (samples) per second; on a bf16 row its speed-up,
    ``bf16 frames/s / fp32 frames/s`` of the same recipe (blank without an fp32 row); MFLOP per frame (forward +
    backward, the JSON's ``flops_per_frame / 1e6``); the achieved GFLOP/s and its percentage of the measured matmul
    ceiling of the row's precision (``100 * gflops_per_s / matmul_ceiling[precision].gflops_per_s``); the training
    bpf at the last of the fixed steps and, when the JSON has them, the validation bpf after those steps ("<=" for a
    bound).  A model marked "*" ran compute-heavy ops the FLOP counter has no formula for (listed in the notes), so
    its FLOPs and GFLOP/s are understated.  The caption names the CPU, threads, load, torch, commit and both ceilings;
    a ``--quick`` output is marked "SMOKE RUN".

    Raises:
        ValueError: ``bench`` has no ``entries`` list, an entry lacks a field the script writes, or an entry's
            precision has no matmul ceiling (re-run benchmarks/training_speed.py).
    """
    entries, ceiling = _training_entries(bench)
    baseline = {e["recipe"]: e for e in entries if e["precision"] == baseline_precision(entries, e["recipe"])}
    with_valid = any(e.get("valid_bpf_after_steps") is not None for e in entries)
    steps = bench.get("steps", entries[0]["steps"] if entries else "?")
    uncounted = sorted({op for e in entries for op in e.get("uncounted_ops") or []})
    rows = []
    for e in entries:
        base = baseline.get(e["recipe"])
        speedup = f"{e['frames_per_s'] / base['frames_per_s']:.2f}x" if base and base is not e else ""
        bpf = "n/a" if e["bpf_after_steps"] is None else f"{e['bpf_after_steps']:.3f}"
        if e.get("non_finite_steps"):
            bpf += f" ({e['non_finite_steps']} non-finite steps)"
        pct = 100 * e["gflops_per_s"] / ceiling[ceiling_key(e["precision"])]["gflops_per_s"]
        row = [e["recipe"] + (" *" if e.get("uncounted_ops") else ""), e["precision"],
               f"{e['batch_size']} x {e['segment_length']:,}", f"{e['frames_per_s']:,.0f}", speedup,
               _fmt_sig(e["flops_per_frame"] / 1e6), _fmt_sig(e["gflops_per_s"]), _fmt_sig(pct) + "%", bpf]
        if with_valid:
            v = e.get("valid_bpf_after_steps")
            row.append("n/a" if v is None else f"{'<= ' if e.get('valid_is_bound') else ''}{v:.3f}")
        rows.append(row)
    header = ["model", "precision", "batch x samples", "frames/s", "speed-up", "MFLOP/frame", "GFLOP/s",
              "% of matmul ceiling", f"train bpf at step {steps}"]
    if with_valid:
        header.append(f"valid bpf after {steps} steps")

    hw = bench.get("hardware", {})
    load = bench.get("load_average_at_start")
    m = ceiling.get("n", "?")
    ceilings = ", ".join(f"{q} {_fmt_sig(c['gflops_per_s'])} GFLOP/s" for q, c in ceiling.items()
                         if isinstance(c, dict) and "gflops_per_s" in c)
    bf16 = (bench.get("cpu") or {}).get("bf16") or {}
    n_valid = len(bench.get("valid_utterances") or [])
    warmup = bench.get("warmup_steps", entries[0].get("warmup_steps", "?") if entries else "?")
    timed = steps - warmup if isinstance(steps, int) and isinstance(warmup, int) else "?"
    caption = (f"Training speed measured {bench.get('created', '?')} on {hw.get('cpu', '?')} "
               f"({bench.get('threads', '?')} threads; load average at start {'?' if not load else f'{load[0]:.2f}'}"
               f"{'; bf16 via ' + ', '.join(bf16['via']) if bf16.get('via') else ''}), torch {hw.get('torch', '?')}, "
               f"commit {(bench.get('commit', {}).get('hash') or '?')[:10]}: each 16-bit model in its recorded "
               f"configuration (recipes/NAME.toml), forward, backward and Adam on real TIMIT training segments, "
               f"median of {timed} steps after {warmup} warm-up. Matmul ceiling ({m} x {m}, same threads): "
               f"{ceilings or '?'}. recipe: float32 as the recorded runs trained; fp32: float32 with the recurrent "
               f"loops' weight gradients formed once per segment (wavelab.models.deferred); bf16: torch.autocast "
               f"with the likelihood heads and the deferred loops in float32; speed-up = frames/s / the recipe "
               f"row's (the fp32 row's where there is no recipe row). FLOPs: matmuls and convolutions of forward + "
               f"backward (torch FlopCounterMode). bpf (bits per frame) after {steps} steps from the same seed on "
               f"the same batches in every precision: train = the loss of the last step"
               + (f", valid = {n_valid} validation utterances after it." if with_valid else "."))
    if bench.get("bf16_not_measured"):
        caption += f" bf16 not measured: {bench['bf16_not_measured']}."
    if bench.get("quick"):
        caption = "SMOKE RUN (--quick: tiny models, numbers meaningless). " + caption
    table = SpeedTable(header, rows, caption)
    if uncounted:
        table.notes = ("* ran ops the FLOP counter has no formula for (" + ", ".join(uncounted) + "): its FLOPs and "
                       "GFLOP/s leave them out.")
    return table
