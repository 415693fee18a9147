"""Training speed of every 16-bit model of the book in its recorded configuration and in the faster forms this
project built, at equal steps: frames/s, FLOPs per frame, achieved GFLOP/s beside this CPU's matmul ceiling, and
the likelihood after a fixed number of steps in each form (so a speed-up is not bought with a worse model).

The forms ("precisions"): ``recipe``, float32 as the recorded runs trained (the latent models' recurrent loops form
every weight gradient step by step); ``fp32``, float32 with those weight gradients formed once per segment
(:mod:`wavelab.models.deferred`; the same maths, so the same bpf up to float rounding; models without such a loop
run as in ``recipe``); ``bf16``, bfloat16 autocast (the deferred loops in float32, the rest in bf16 where autocast
casts it).  :func:`wavelab.report.speed.training_speed_gain` picks per
model the fastest form whose validation bpf after the steps is within a tolerance of ``recipe``'s.

Run from the project root on a quiet machine (the default 20 steps of the twelve recipes in the three forms at one
thread: about 60 minutes on a 2-core machine busy with other work, so expect 30-45 on a quiet one; WaveNet at the
paper's size is a quarter of it; ``total_seconds`` in the JSON says what each entry took):

    .venv/bin/python benchmarks/training_speed.py [--threads N] [--steps 20] [--warmup 3] [--models NAME ...]
                                                  [--precisions recipe fp32 bf16]
                                                  [--out benchmarks/results/training_speed.json]
    .venv/bin/python benchmarks/training_speed.py --quick   # tiny models, seconds; writes to the temp dir

What is measured, for every recipe ``recipes/NAME.toml`` whose model is 16-bit (the 8-bit SaShiMi recipe is left
out) or those named by ``--models``, and for each precision:

- The run the recipe records, started fresh exactly as :func:`wavelab.train.train` starts it: the model built from
  the recipe's ``model`` and ``model_overrides`` after seeding with the recipe's seed, Adam at its learning rate, the
  data stream :func:`wavelab.data.random_segments` over the real TIMIT ``train`` split at the recipe's segment length
  and batch size, and every step the training loop's own step: ``set_train_step``, forward and ``loss()`` under
  ``torch.autocast`` as ``TrainConfig.amp`` sets it (``"off"`` for ``recipe`` and ``fp32``; ``"bf16"``:
  bfloat16 autocast without a gradient scaler, the likelihood heads and log-probabilities staying float32, see
  :mod:`wavelab.distributions.precision`), then ``wavelab.train._optimizer_step`` (backward, the gradient-norm check,
  the Adam update).  ``--steps`` steps (default 20) are run; each is timed with ``time.perf_counter`` from the batch
  in hand to the updated parameters (drawing the batch is timed apart: ``data_seconds_per_step``).  The first
  ``--warmup`` steps (default 3) are excluded; ``seconds_per_step`` is the median of the others.
- ``frames_per_s`` = ``batch_size * segment_length / seconds_per_step``: frames are samples of the batch's
  ``[batch_size, segment_length]`` codes (padding of an utterance shorter than a segment included: it is computed).
- ``flops_per_frame``: FLOPs of one forward + backward pass (no optimizer update) on the run's first batch, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions: 2 FLOPs per multiply-add, backward
  included), divided by ``batch_size * segment_length``.  The LSTM's fused oneDNN kernel (``aten.mkldnn_rnn_layer``,
  which the counter has no formula for) is counted here as the unfused cell's matmuls: ``2 * frames * (|W_ih| +
  |W_hh|)`` forward and twice that backward, less the gradient of the initial (zero) state.  Not counted:
  elementwise work, normalisations, the likelihood and Adam, and FFTs (SaShiMi's S4 kernels and convolutions): ops of
  that kind with no formula are listed in ``uncounted_ops``.  The count does not depend on the precision, even where
  bf16 takes the unfused LSTM cell (other ops, the same matmuls); the deferred loops (``fp32``, ``bf16``) add the
  gradient into a loop's initial state, under 0.1%.
- ``gflops_per_s`` = FLOPs per step / ``seconds_per_step`` / 1e9, beside ``matmul_ceiling``: the best of
  ``--matmul-repeats`` ``torch.mm`` of two ``--matmul-n`` square matrices (default 2048) at the same thread count, in
  float32 and in bfloat16, as ``2 n^3 / seconds / 1e9`` GFLOP/s (``recipe`` and ``fp32`` are set against the
  float32 ceiling).
- ``bpf_after_steps``: the training loss the loop logs (``"bpf"`` of ``metrics.jsonl``: the model's reported NLL or
  negative ELBO per frame, in bits) on the last of the ``--steps`` steps (same seed and same batches in both
  precisions; ``train_bpf`` holds every step's), and ``valid_bpf_after_steps``: one evaluation of the model after
  those steps, in float32, with :func:`wavelab.evaluate.evaluate` on ``--valid-utterances`` utterances (default 2)
  of the ``valid`` split taken over its speakers, seed = the recipe's, exactly as the loop's ``eval_every`` does.

bf16 is measured where the CPU supports it natively: ``amx_bf16`` or ``avx512_bf16`` among the flags of
``/proc/cpuinfo`` (``cpu.bf16`` records which).  ``--threads`` defaults to 1, as the recorded runs (``threads = 1``
in the recipes); ``--threads 2`` measures both cores.  The JSON records the commit, hardware, torch version, threads,
the OpenMP/oneDNN environment, the load average before and after, the date and the command;
:func:`wavelab.report.speed.training_speed_table` renders it, and ``gains`` holds per recipe the fastest form at
equal-step bpf with its gain and fraction of the ceiling (:func:`wavelab.report.speed.gain_summary`).  ``--quick``
(the recipes' quick configurations: ``quick_overrides()`` and 2,000-sample segments; 3 steps of which 1 warm-up, a
256 x 256 matmul, one validation utterance) is a smoke test of the script: its output is marked ``"quick": true``,
goes to the temp dir unless ``--out`` is given, and never replaces a file that holds a real (non-quick) measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from wavelab.report.speed import best_time, gain_summary, training_speed_table
from wavelab.models import build_model, config_for, deferred
from wavelab.campaign.recipes import Recipe, load_recipe
from wavelab.report.records import utc_now
from wavelab.runs import git_commit, hardware_info
from wavelab.runs import atomic_write_json
from wavelab.settings import PROJECT_ROOT
from wavelab.train import (
    TrainConfig,
    _forward_loss,
    _optimizer_step,
    _rank_seed,
    _resolve_amp,
    _seed_everything,
    _spread_over_speakers,
)

RECIPES_DIR = PROJECT_ROOT / "recipes"
DEFAULT_OUT = PROJECT_ROOT / "benchmarks" / "results" / "training_speed.json"
QUICK_OUT_NAME = "training_speed_quick.json"
#: the book's order of model families (recipes sort by family, then name)
FAMILIES = ("wavenet", "lstm", "vrnn", "srnn", "cwvae", "waveflow", "waveglow", "sashimi")
#: precision name -> TrainConfig.amp: "recipe" is float32 as the recorded runs trained (every step's weight gradients
#: formed step by step), "fp32" the same with the latent models' loops' weight gradients formed once per segment
#: (wavelab.models.deferred), "bf16" bfloat16 autocast with those loops deferred and in float32
PRECISIONS = {"recipe": "off", "fp32": "off", "bf16": "bf16"}
#: precision name -> wavelab.models.deferred on or off
DEFERRED = {"recipe": False, "fp32": True, "bf16": True}
#: precision name -> the matmul ceiling it is set against
CEILING_OF = {"recipe": "fp32", "fp32": "fp32", "bf16": "bf16"}
#: /proc/cpuinfo flags of native bfloat16 arithmetic (either is enough)
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
#: flags recorded in the JSON
RECORDED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                  "amx_int8")
#: op-name fragments of compute-heavy ops: such an op that runs without a FLOP formula is listed in uncounted_ops
HEAVY_OP_FRAGMENTS = ("fft", "rnn", "lstm", "gru", "conv", "mm", "matmul", "linear", "attention", "einsum")
ENV_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "KMP_AFFINITY", "ONEDNN_MAX_CPU_ISA",
            "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")
DEFAULTS = {"steps": 20, "warmup": 3, "matmul_n": 2048, "matmul_repeats": 5, "valid_utterances": 2}
# --quick: the recipes' quick configurations, few steps, a small matmul: a smoke test (numbers meaningless)
QUICK = {"steps": 3, "warmup": 1, "matmul_n": 256, "matmul_repeats": 2, "valid_utterances": 1}


# --------------------------------------------------------------------------------------------------------------------
# the CPU


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The ``flags`` of the first processor in ``/proc/cpuinfo`` (or of the text ``cpuinfo``); empty when unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_support(flags: set[str]) -> dict[str, Any]:
    """``{"supported": bool, "via": [the BF16_FLAGS present]}``: native bfloat16 arithmetic needs either flag."""
    via = [f for f in BF16_FLAGS if f in flags]
    return {"supported": bool(via), "via": via}


def matmul_ceiling(n: int, dtype: torch.dtype, repeats: int) -> dict[str, Any]:
    """This CPU's dense matmul speed at the current thread count: the best of ``repeats`` ``torch.mm`` of two
    ``[n, n]`` matrices of ``dtype`` after one warm-up.

    Returns:
        ``{"seconds": best seconds per matmul, "gflops_per_s": 2 n^3 / seconds / 1e9}``.
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    seconds = best_time(lambda: torch.mm(a, b), repeats=repeats, warmup=1)
    return {"seconds": seconds, "gflops_per_s": 2 * n ** 3 / seconds / 1e9}


# --------------------------------------------------------------------------------------------------------------------
# counting FLOPs


def _rnn_layer_forward_flops(input_shape, w_ih_shape, w_hh_shape) -> int:
    tokens = math.prod(input_shape[:-1])  # batch x time steps
    return 2 * tokens * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


def _mkldnn_rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten.mkldnn_rnn_layer`` (one LSTM layer through oneDNN, ``input [B, T, I]`` or ``[T, B, I]``, ``W_ih [4H,
    I]``, ``W_hh [4H, H]``): its matmuls, ``2 * B * T * (4H * I + 4H * H)``."""
    return _rnn_layer_forward_flops(input_shape, w_ih_shape, w_hh_shape)


def _mkldnn_rnn_layer_backward_flop(input_shape, w_ih_shape, w_hh_shape, b_ih_shape, b_hh_shape, hx_shape, *args,
                                    out_shape=None, **kwargs) -> int:
    """``aten.mkldnn_rnn_layer_backward``: the matmuls of the unfused cell's backward under autograd, so that the count
    is the same whichever path torch takes (it falls back to the unfused cell where oneDNN lacks a kernel, e.g. bf16
    without AVX-512): the gradients with respect to the weights and the inputs, each a matmul of the forward's size,
    and to every hidden state but the initial one (the constant zero state training starts from), so twice the
    forward's FLOPs less one step's ``2 * B * |W_hh|``."""
    batch = math.prod(hx_shape[:-1])
    return 2 * _rnn_layer_forward_flops(input_shape, w_ih_shape, w_hh_shape) - 2 * batch * math.prod(w_hh_shape)


#: FLOP formulas the counter lacks (torch 2.x): the LSTM's fused oneDNN kernels
CUSTOM_FLOPS = {torch.ops.aten.mkldnn_rnn_layer: _mkldnn_rnn_layer_flop,
                torch.ops.aten.mkldnn_rnn_layer_backward: _mkldnn_rnn_layer_backward_flop}


class _OpLog(TorchDispatchMode):
    """Records the overload packet of every op dispatched while active."""

    def __init__(self):
        super().__init__()
        self.ops: set = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func._overloadpacket)
        return func(*args, **(kwargs or {}))


def count_flops(fn) -> dict[str, Any]:
    """FLOPs of ``fn()`` (e.g. a forward + backward pass) by ``FlopCounterMode`` with :data:`CUSTOM_FLOPS`.

    Returns:
        ``{"flops": total, "by_op": {op name: FLOPs}, "uncounted_ops": [sorted names of compute-heavy ops that ran
        without a FLOP formula (see HEAVY_OP_FRAGMENTS), e.g. aten._fft_r2c]}``.
    """
    counter = FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS)
    log = _OpLog()
    with counter, log:
        fn()
    registry = counter.flop_registry
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    uncounted = sorted(str(op) for op in log.ops if op not in registry
                       and any(f in str(op).split(".")[-1] for f in HEAVY_OP_FRAGMENTS))
    return {"flops": int(counter.get_total_flops()), "by_op": by_op, "uncounted_ops": uncounted}


# --------------------------------------------------------------------------------------------------------------------
# recipes


def sixteen_bit_recipes(recipes_dir: Path = RECIPES_DIR) -> list[Recipe]:
    """The recipes of ``recipes_dir`` whose model is 16-bit, in the book's order (family, then name), each training
    configuration once: a recipe that trains the same model, settings, segment length and batch as an earlier one
    (``latents-cwvae-s64-l2``, the longer run of ``cwvae-s64-l2`` for the latent study) has the same speed."""
    recipes = [load_recipe(p) for p in sorted(Path(recipes_dir).glob("*.toml"))]
    recipes = [r for r in recipes if config_for(r.model, **r.model_overrides).bits == 16]
    order = lambda r: (FAMILIES.index(r.model) if r.model in FAMILIES else len(FAMILIES), r.name)  # noqa: E731
    seen, unique = set(), []
    for r in sorted(recipes, key=order):
        key = (r.model, repr(sorted(r.model_overrides.items())), r.train.segment_length, r.train.batch_size)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def select_recipes(names: list[str] | None, recipes_dir: Path = RECIPES_DIR) -> list[Recipe]:
    """The 16-bit recipes named (all of them for ``None``), in the book's order.

    Raises:
        ValueError: a name that is no recipe, or a recipe whose model is not 16-bit (both name the valid choices).
    """
    recipes = sixteen_bit_recipes(recipes_dir)
    if not names:
        return recipes
    known = {r.name: r for r in recipes}
    for n in names:
        if n not in known:
            path = Path(recipes_dir) / f"{n}.toml"
            why = ("its model is not 16-bit (this benchmark covers the 16-bit models)" if path.exists()
                   else "no such recipe")
            raise ValueError(f"--models: {n!r}: {why}; choose from {', '.join(known)}")
    return [r for r in recipes if r.name in set(names)]


# --------------------------------------------------------------------------------------------------------------------
# one model in one precision


def training_step(model, optimizer, scaler, cfg: TrainConfig, codes, lengths, step: int) -> dict[str, Any]:
    """One step of :func:`wavelab.train.train`'s loop on ``codes [B, L]``, ``lengths [B]``: the loop's own
    ``wavelab.train._forward_loss`` (schedules, forward and ``loss()`` under autocast as ``cfg.amp`` sets it on CPU),
    the loop's non-finite check, and
    ``wavelab.train._optimizer_step`` (backward, gradient-norm check or clipping, Adam update; no update when the
    loss or gradient is not finite).

    Returns:
        ``{"nll_nats": the reported NLL (or negative ELBO) summed over the batch, nats; "frames": frames it covers;
        "finite": loss and gradient finite}``.
    """
    amp_on, amp_dtype, use_scaler = _resolve_amp(cfg.amp, torch.device("cpu"))
    out, loss = _forward_loss(model, model, codes, lengths, step, "cpu", amp_dtype, amp_on)
    nll = float(out.nll.detach().sum().to(torch.float64))
    frames = int(out.frames.detach().sum())
    if not math.isfinite(float(loss.detach())):
        return {"nll_nats": nll, "frames": frames, "finite": False}
    grad_norm = _optimizer_step(loss, model, optimizer, scaler, cfg, use_scaler)
    return {"nll_nats": nll, "frames": frames, "finite": grad_norm is None or math.isfinite(grad_norm)}


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def measure(recipe: Recipe, precision: str, *, steps: int, warmup: int, quick: bool, train_utterances,
            valid_utterances, runs_dir: str | Path) -> dict[str, Any]:
    """Train ``recipe``'s run from scratch for ``steps`` steps in ``precision`` (a key of :data:`PRECISIONS`:
    ``"recipe"``, ``"fp32"`` or ``"bf16"``), timing every step, then evaluate it on ``valid_utterances`` and count
    one step's FLOPs (see the module docstring).

    Raises:
        ValueError: an unknown ``precision``.
    Returns:
        the JSON entry: ``recipe``, ``recipe_file``, ``model``, ``model_overrides``, ``precision``,
        ``deferred_weight_grads`` (:data:`DEFERRED`), ``autocast``,
        ``parameters``, ``segment_length`` and ``batch_size`` (samples, segments), ``frames_per_step``, ``steps``,
        ``warmup_steps``, ``timed_steps``, ``step_seconds`` (every step), ``seconds_per_step`` (median of the timed
        ones), ``data_seconds_per_step`` (median time to draw a batch, not in ``seconds_per_step``),
        ``frames_per_s``, ``flops_per_step``, ``flops_per_frame``, ``flops_by_op``, ``uncounted_ops``,
        ``gflops_per_s``, ``train_bpf`` (every step's training bpf), ``bpf_after_steps`` (the last step's),
        ``non_finite_steps``, ``valid_bpf_after_steps`` / ``valid_is_bound`` / ``valid_utterances`` /
        ``valid_frames`` (``None`` / 0 without validation utterances); ``valid_seconds``, ``flop_count_seconds`` and
        ``total_seconds`` (wall time of the evaluation, of the FLOP count and of the whole entry: for planning runs).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"measure: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    with deferred.enabled(DEFERRED[precision]):
        return _measure(recipe, precision, steps=steps, warmup=warmup, quick=quick,
                        train_utterances=train_utterances, valid_utterances=valid_utterances, runs_dir=runs_dir)


def _measure(recipe: Recipe, precision: str, *, steps: int, warmup: int, quick: bool, train_utterances,
             valid_utterances, runs_dir: str | Path) -> dict[str, Any]:
    from wavelab.data import random_segments
    from wavelab.evaluate import evaluate

    t_start = time.perf_counter()
    base = recipe.train_config(runs_dir, quick=quick, device="cpu")
    cfg = dataclasses.replace(base, amp=PRECISIONS[precision], max_steps=steps, max_minutes=None)
    cfg.validate()
    _, amp_dtype, use_scaler = _resolve_amp(cfg.amp, torch.device("cpu"))

    # as wavelab.train._train starts a fresh run
    _seed_everything(cfg.seed)
    model = build_model(cfg.model, config=config_for(cfg.model, **cfg.model_overrides))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cpu", enabled=use_scaler)
    _seed_everything(_rank_seed(cfg.seed, 0))
    stream = random_segments(train_utterances, cfg.segment_length, cfg.batch_size, bits=model.bits, seed=cfg.seed)

    model.train()
    step_seconds, data_seconds, train_bpf, non_finite = [], [], [], 0
    for step in range(steps):
        t0 = time.perf_counter()
        codes, lengths = next(stream)
        t1 = time.perf_counter()
        r = training_step(model, optimizer, scaler, cfg, codes, lengths, step)
        step_seconds.append(time.perf_counter() - t1)
        data_seconds.append(t1 - t0)
        train_bpf.append(_finite_or_none(r["nll_nats"] / max(r["frames"], 1) / math.log(2)))
        non_finite += not r["finite"]

    t_valid = time.perf_counter()
    valid = None
    if valid_utterances:
        with torch.random.fork_rng(devices=[]):  # as the loop's eval_every: the training RNG stream stays untouched
            valid = evaluate(model, valid_utterances, device="cpu", seed=cfg.seed)
        model.train()

    codes, lengths = next(random_segments(train_utterances, cfg.segment_length, cfg.batch_size, bits=model.bits,
                                          seed=cfg.seed))

    def forward_backward():
        model.set_train_step(0)
        with torch.autocast(device_type="cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = model(codes, lengths).loss()
        loss.backward()

    t_flops = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        flops = count_flops(forward_backward)
    optimizer.zero_grad(set_to_none=True)
    t_end = time.perf_counter()

    frames_per_step = cfg.batch_size * cfg.segment_length
    timed = step_seconds[warmup:]
    sec = statistics.median(timed)
    return {
        "recipe": recipe.name, "recipe_file": recipe.source, "model": cfg.model,
        "model_overrides": json.loads(json.dumps(cfg.model_overrides)), "precision": precision,
        "deferred_weight_grads": DEFERRED[precision],
        "autocast": str(amp_dtype).replace("torch.", "") if amp_dtype is not None else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "segment_length": cfg.segment_length, "batch_size": cfg.batch_size, "frames_per_step": frames_per_step,
        "steps": steps, "warmup_steps": warmup, "timed_steps": len(timed), "step_seconds": step_seconds,
        "seconds_per_step": sec, "data_seconds_per_step": statistics.median(data_seconds),
        "frames_per_s": frames_per_step / sec,
        "flops_per_step": flops["flops"], "flops_per_frame": flops["flops"] / frames_per_step,
        "flops_by_op": flops["by_op"], "uncounted_ops": flops["uncounted_ops"],
        "gflops_per_s": flops["flops"] / sec / 1e9,
        "train_bpf": train_bpf, "bpf_after_steps": train_bpf[-1], "non_finite_steps": non_finite,
        "valid_bpf_after_steps": _finite_or_none(valid.bpf.weighted) if valid else None,
        "valid_is_bound": bool(valid.bpf.is_bound) if valid else None,
        "valid_utterances": len(valid_utterances or []), "valid_frames": int(valid.bpf.frames) if valid else 0,
        "valid_seconds": t_flops - t_valid, "flop_count_seconds": t_end - t_flops, "total_seconds": t_end - t_start,
    }


# --------------------------------------------------------------------------------------------------------------------
# the script


def _check_out(path: Path, quick: bool) -> None:
    """A quick run never replaces a real measurement."""
    if not quick or not path.exists():
        return
    try:
        real = json.loads(path.read_text()).get("quick") is not True
    except (OSError, json.JSONDecodeError, AttributeError):
        real = True
    if real:
        raise SystemExit(f"training_speed.py --quick: {path} holds a real (non-quick) measurement or is not this "
                         "script's JSON; a smoke run does not replace it: give another --out")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", metavar="RECIPE",
                   help="recipe names (recipes/NAME.toml), default: every 16-bit recipe")
    p.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS),
                   help="default: fp32, and bf16 where the CPU has amx_bf16 or avx512_bf16")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the recorded runs)")
    p.add_argument("--steps", type=int, help=f"training steps per model and precision (default {DEFAULTS['steps']})")
    p.add_argument("--warmup", type=int, help=f"first steps left out of the timing (default {DEFAULTS['warmup']})")
    p.add_argument("--valid-utterances", type=int,
                   help=f"validation utterances evaluated after the steps (default {DEFAULTS['valid_utterances']}; "
                        "0: none)")
    p.add_argument("--matmul-n", type=int, help=f"size of the ceiling's square matmul (default {DEFAULTS['matmul_n']})")
    p.add_argument("--matmul-repeats", type=int,
                   help=f"timed matmuls, the best kept (default {DEFAULTS['matmul_repeats']})")
    p.add_argument("--quick", action="store_true", help="the recipes' quick configurations: a smoke test")
    p.add_argument("--out", help=f"default {DEFAULT_OUT.relative_to(PROJECT_ROOT)} "
                                 f"(with --quick: {QUICK_OUT_NAME} in the temp dir)")
    args = p.parse_args(argv)
    settings = dict(QUICK if args.quick else DEFAULTS)
    for k in settings:
        if getattr(args, k) is not None:
            settings[k] = getattr(args, k)
    steps, warmup = settings["steps"], settings["warmup"]
    if args.threads < 1 or settings["matmul_n"] < 1 or settings["matmul_repeats"] < 1:
        p.error("--threads, --matmul-n and --matmul-repeats must be >= 1")
    if warmup < 0 or steps - warmup < 1:
        p.error(f"--steps ({steps}) must exceed --warmup ({warmup}) >= 0: at least one step is timed")
    if settings["valid_utterances"] < 0:
        p.error("--valid-utterances must be >= 0")
    try:
        recipes = select_recipes(args.models)
    except ValueError as e:
        p.error(str(e))

    flags = cpu_flags()
    bf16 = bf16_support(flags)
    if args.precisions is None:
        precisions = ["recipe", "fp32"] + (["bf16"] if bf16["supported"] else [])
    else:
        precisions = [q for q in PRECISIONS if q in args.precisions]
        if "bf16" in precisions and not bf16["supported"]:
            p.error(f"bf16: this CPU has none of {', '.join(BF16_FLAGS)} in /proc/cpuinfo (bf16 would be emulated); "
                    "leave bf16 out of --precisions")
    out_path = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / QUICK_OUT_NAME if args.quick
                                                else DEFAULT_OUT)
    _check_out(out_path, args.quick)

    from wavelab.data import load_split

    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        train_utts = load_split("timit", "train")
        n_valid = settings["valid_utterances"]
        valid_utts = _spread_over_speakers(load_split("timit", "valid"), n_valid) if n_valid else []
        out = {
            "created": utc_now(), "hardware": hardware_info(), "commit": git_commit(), "threads": args.threads,
            "command": shlex.join(["python", "benchmarks/training_speed.py", *argv]),
            "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
            "load_average_at_start": os.getloadavg(), "quick": args.quick, "dataset": "timit",
            "cpu": {"flags": {f: f in flags for f in RECORDED_FLAGS}, "bf16": bf16,
                    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "onednn": torch.backends.mkldnn.is_available()},
            "precisions": precisions, "steps": steps, "warmup_steps": warmup,
            "valid_utterances": [u.id for u in valid_utts],
            "matmul_ceiling": {"n": settings["matmul_n"], "repeats": settings["matmul_repeats"]},
            "entries": [],
        }
        if not bf16["supported"]:
            out["bf16_not_measured"] = f"this CPU has none of {', '.join(BF16_FLAGS)} in /proc/cpuinfo"
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        for q in dict.fromkeys(CEILING_OF[q] for q in precisions):
            out["matmul_ceiling"][q] = matmul_ceiling(settings["matmul_n"], dtypes[q], settings["matmul_repeats"])
            print(f"matmul ceiling {q}: {out['matmul_ceiling'][q]['gflops_per_s']:,.1f} GFLOP/s "
                  f"({settings['matmul_n']}^2, {args.threads} threads)", flush=True)
        with tempfile.TemporaryDirectory() as runs_dir:
            for recipe in recipes:
                for q in precisions:
                    e = measure(recipe, q, steps=steps, warmup=warmup, quick=args.quick,
                                train_utterances=train_utts, valid_utterances=valid_utts, runs_dir=runs_dir)
                    out["entries"].append(e)
                    valid = e["valid_bpf_after_steps"]
                    print(f"{e['recipe']} {q}: {e['frames_per_s']:,.0f} frames/s ({e['seconds_per_step']:.3f} s per "
                          f"step of {e['batch_size']} x {e['segment_length']:,}), "
                          f"{e['flops_per_frame'] / 1e6:,.3f} MFLOP/frame, {e['gflops_per_s']:,.2f} GFLOP/s, "
                          f"bpf after {steps} steps: train {e['bpf_after_steps']}, valid {valid}", flush=True)
        out["load_average_at_end"] = os.getloadavg()
        if valid_utts:
            out["gains"] = gain_summary(out)
    finally:
        torch.set_num_threads(threads_before)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, out_path)
    print(training_speed_table(out).markdown())
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
