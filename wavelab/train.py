"""One training loop for every wavelab model.

The loop follows Havtorn et al. (section 3 and appendix C): Adam with learning rate 3e-4 and default betas, no
schedule, mini-batches of 2 random 16,000-sample segments of the training utterances, mixed precision on GPU.  The loss
is the model's :meth:`~wavelab.models.base.ModelOutput.loss`, nats per frame (the negative ELBO for latent variable
models, or their training objective with KL warm-up and free nats, whose schedules read the step a model with
``set_train_step`` is given before every step); the log shows the reported figure (``nll``: the NLL or negative ELBO)
in bits per frame (bpf) too.

A run lives in one directory (file names and atomic writes: :mod:`wavelab.runs`): ``config.json`` (settings and
provenance), ``checkpoint.pt`` (latest checkpoint, replaced atomically) and ``metrics.jsonl`` (training lines,
evaluations on the validation split, events).  The periodic evaluation (``eval_every``) reads the dataset's ``valid``
split; training never reads ``test``.

Starting :func:`train` on a ``run_dir`` that holds a checkpoint resumes it exactly: model, optimizer, gradient scaler,
step, frames seen, wall time and every random number generator are restored, and the data stream continues from the
checkpoint's step (``wavelab.data.random_segments`` makes batch ``i`` a pure function of seed, rank, world size and
``i``).  On CPU a killed-and-resumed run reaches bitwise the same parameters as an uninterrupted one.

Multi-GPU: launched by ``torchrun`` (environment ``WORLD_SIZE`` > 1) the loop joins the process group (NCCL on CUDA,
Gloo on CPU), wraps the model in ``DistributedDataParallel`` and shards the data stream by rank; ``batch_size`` is per
process.  Only rank 0 writes logs and checkpoints; all ranks meet at a barrier around every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .models import DEFAULT_MODEL
from .runs import (CHECKPOINT, CONFIG, METRICS, atomic_write_bytes, atomic_write_json, export_run, git_commit,
                   hardware_info, read_metrics, trim_metrics)

CHECKPOINT_FORMAT = 1

# Fields that define what a run trains; a resumed run must agree on them (budgets and logging may change).
_IDENTITY_FIELDS = ("model", "model_overrides", "dataset", "segment_length", "batch_size", "lr", "seed")
_AMP_CHOICES = ("auto", "bf16", "fp16", "off")
_CLOCKS = ("wall", "cpu")


@dataclass
class TrainConfig:
    """Everything that defines a training run (defaults follow Havtorn et al., appendix C).

    Attributes:
        model: registry name of the model (see :mod:`wavelab.models`).
        model_overrides: fields of the model's config dataclass to change from the paper's defaults, e.g.
            ``{"Dc": 32}``.
        dataset: ``"timit"`` or ``"librispeech"``; the training split of :func:`wavelab.data.load_split` is used when
            :func:`train` gets no utterances.
        segment_length: samples per random training segment (16,000 = 1 s at 16 kHz in the paper).
        batch_size: segments per step and per process (2 in the paper).
        lr: Adam learning rate (3e-4, default betas, constant).
        max_steps: stop after this many optimizer steps in total (counting steps before a resume).
        max_minutes: stop once the run's total training time on ``clock`` (over all resumes) exceeds this budget;
            the step that crosses the budget completes first.  At least one of ``max_steps`` and ``max_minutes`` is
            needed.
        clock: what ``max_minutes`` and ``eval_every_minutes`` measure.  ``"wall"``: wall-clock seconds of the run,
            validation included (how the first CPU-budget runs were made).  ``"cpu"``: CPU seconds of the training
            process (``time.process_time``, all its threads) spent training, with the CPU seconds of the periodic
            validation taken out, so that runs sharing a machine with other work still get the same compute: the
            equal budget of the campaign (``recipes/equal/``).  Both are logged (``wall_s``, ``train_cpu_s``).
        seed: seeds the model initialisation, the data stream and the model's own randomness.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: mixed precision: ``"auto"`` (fp16 autocast with a gradient scaler on CUDA, as the paper's PyTorch AMP;
            off on CPU), ``"bf16"`` (autocast without a scaler), ``"fp16"`` or ``"off"``.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping, as in the paper).
        log_every: write a training line to ``metrics.jsonl`` every this many steps (the mean over those steps).
        checkpoint_every: write a checkpoint every this many steps (``None``: only by time and at the end).
        checkpoint_minutes: also write a checkpoint when this many minutes passed since the last one (``None``: off).
        eval_every: evaluate on the validation split every this many steps (``None``: never), for the learning
            curve; logged as ``"kind": "eval"`` lines with ``"split": "valid"``.
        eval_every_minutes: also evaluate on the validation split every this many minutes of training on ``clock``,
            once before the first step of a fresh run and once at the end of the budget, so learning curves of
            different models share their time axis (``None``: off).
        eval_subset: number of utterances of the dataset's ``valid`` split for ``eval_every``, taken round-robin over
            its speakers (the test split is never read during training).
        run_dir: directory of the run (created when missing).
    """

    model: str = DEFAULT_MODEL
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dataset: str = "timit"
    segment_length: int = 16_000
    batch_size: int = 2
    lr: float = 3e-4
    max_steps: int | None = None
    max_minutes: float | None = None
    clock: str = "wall"
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    grad_clip: float | None = None
    log_every: int = 10
    checkpoint_every: int | None = 1000
    checkpoint_minutes: float | None = 10.0
    eval_every: int | None = None
    eval_every_minutes: float | None = None
    eval_subset: int = 4
    run_dir: str = "runs/default"

    def validate(self) -> None:
        """Check the values; raises ``ValueError`` naming the offending field and what to do."""
        for name in ("segment_length", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_steps", "checkpoint_every", "eval_every"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1 or None, got {v!r}")
        for name in ("max_minutes", "checkpoint_minutes", "grad_clip", "eval_every_minutes"):
            v = getattr(self, name)
            if v is not None and not float(v) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0 or None, got {v!r}")
        if int(self.seed) < 0:
            raise ValueError(f"TrainConfig.seed must be >= 0, got {self.seed!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.max_steps is None and self.max_minutes is None:
            raise ValueError("TrainConfig needs a budget: set max_steps (--steps) and/or max_minutes (--minutes)")
        if self.clock not in _CLOCKS:
            raise ValueError(f"TrainConfig.clock must be one of {_CLOCKS}, got {self.clock!r}")
        if self.amp not in _AMP_CHOICES:
            raise ValueError(f"TrainConfig.amp must be one of {_AMP_CHOICES}, got {self.amp!r}")
        if not isinstance(self.model_overrides, dict):
            raise ValueError(f"TrainConfig.model_overrides must be a dict, got {type(self.model_overrides).__name__}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict such as ``dataclasses.asdict(cfg)`` (unknown keys are ignored, for older runs)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainSummary:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run directory.
        steps: optimizer steps done in total (including those before a resume).
        frames_seen: training frames (samples, summed over processes) the loss covered in total.
        wall_s: training wall-clock time in seconds in total (over all resumes).
        train_cpu_s: CPU seconds the training process spent training, periodic validation excluded (over all
            resumes; see ``TrainConfig.clock``).
        final_loss_nats: frame-weighted mean training loss (nats per frame) over the last logging interval
            (``nan`` if this call made no step).
        final_bpf: the same in bits per frame.
        stopped_by: ``"max_steps"`` or ``"max_minutes"``.
        resumed_from: the checkpoint step this call resumed from (``None`` for a fresh run).
        checkpoint: path of the latest checkpoint.
        model: the trained model (unwrapped from DistributedDataParallel), in train mode, on the training device.
    """

    run_dir: Path
    steps: int
    frames_seen: int
    wall_s: float
    train_cpu_s: float
    final_loss_nats: float
    final_bpf: float
    stopped_by: str
    resumed_from: int | None
    checkpoint: Path
    model: torch.nn.Module | None = field(default=None, repr=False)


class NonFiniteLossError(RuntimeError):
    """The training loss, or (without a gradient scaler) the gradient, became NaN or infinite; the run stops before
    the bad step touches parameters or checkpoints.  Attributes: ``step`` (1-based step that failed), ``loss`` (the
    value), ``checkpoint_step``, ``what`` (``"loss"`` or ``"gradient norm"``)."""

    def __init__(self, step: int, loss: float, run_dir: Path, checkpoint_step: int | None, what: str = "loss"):
        self.step, self.loss, self.checkpoint_step, self.what = step, loss, checkpoint_step, what
        kept = (
            f"the last good checkpoint ({Path(run_dir) / CHECKPOINT}, step {checkpoint_step}) was kept"
            if checkpoint_step is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"non-finite training {what} ({loss}) at step {step} of run {run_dir}; {kept}. "
            "Try a lower learning rate (--lr), gradient clipping (--grad-clip 1.0), turning mixed precision off "
            "(--amp off), or check the model's configuration and the input data; running the same command again "
            "resumes from the checkpoint."
        )


# --------------------------------------------------------------------------------------------------------------------
# small helpers


def _resolve_device(spec: str, local_rank: int) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"TrainConfig.device is {spec!r} but CUDA is not available; use device='cpu' or 'auto'")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _resolve_amp(amp: str, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """``(autocast on, autocast dtype, use GradScaler)``."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return False, None, False
    if amp == "auto":
        # fp16 autocast with a gradient scaler, as the paper's PyTorch AMP: bf16's 8-bit mantissa would round the
        # network's input y_k to ~100 codes of the 2^16 grid (the output heads and log-probabilities run in float32
        # under either, see wavelab.distributions.precision)
        amp = "fp16"
    if amp == "bf16":
        return True, torch.bfloat16, False
    return True, torch.float16, device.type == "cuda"


def _rank_seed(seed: int, rank: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _rng_state(device: torch.device) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def _init_distributed(device_spec: str) -> _Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1 in the environment)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        use_cuda = device_spec != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns = True
    return _Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, owns_group=owns)


def _as_json(x: Any) -> Any:
    """Compare values the way they survive a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(x, default=str))


def _spread_over_speakers(utterances: list, n: int) -> list:
    """The first ``n`` utterances taken round-robin over speakers (first utterance of each speaker, then the second,
    ...), so a small validation subset covers every validation speaker rather than the first one."""
    from .data.splits import round_robin

    by_speaker: dict[str, list] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker.id, []).append(u)
    return round_robin(list(by_speaker.values()))[:n]


def curve_utterances(dataset: str = "timit", n: int = 2) -> list:
    """The utterances a run's periodic validation (``eval_every``, ``eval_every_minutes``) reads by default: the
    first ``n`` (``TrainConfig.eval_subset``) of ``dataset``'s valid split, round-robin over its speakers; for a
    joined data set (:data:`wavelab.data.JOINED_CORPORA`), round-robin over its corpora as well (one of each corpus in
    turn), so the curve reads every corpus.  Figures that draw a reference beside learning curves (FLAC, a
    histogram) measure it on these.

    Raises:
        wavelab.data errors when the split cannot be loaded.
    """
    from . import data as wdata

    from .data.splits import round_robin

    corpora = wdata.JOINED_CORPORA.get(dataset, (dataset,))
    return round_robin([_spread_over_speakers(wdata.load_split(c, "valid"), n) for c in corpora])[:n]


def identity_diffs(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The fields that define a run (model, overrides, data, segment length, batch size, lr, seed) on which a saved
    ``train_config`` dict (a checkpoint's, an export's, a record's) differs from ``cfg``, in words: ``[]`` when it is
    the same run."""
    return [f"{k}: {saved.get(k)!r} there, {getattr(cfg, k)!r} here" for k in _IDENTITY_FIELDS
            if _as_json(saved.get(k)) != _as_json(getattr(cfg, k))]


def _check_resumable(cfg: TrainConfig, saved: dict[str, Any], run_dir: Path) -> None:
    diffs = identity_diffs(saved, cfg)
    if diffs:
        raise ValueError(
            f"{run_dir} holds a checkpoint of a different run ({'; '.join(diffs)}). "
            "Use a new --run-dir, or repeat the original settings to resume it."
        )


# --------------------------------------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig, utterances=None, eval_utterances=None, progress: bool = True) -> TrainSummary:
    """Train ``cfg.model`` on random segments of ``utterances`` (resuming ``cfg.run_dir`` if it holds a checkpoint).

    Args:
        cfg: the run's :class:`TrainConfig`.
        utterances: training utterances (:class:`wavelab.data.Utterance` or anything
            :func:`wavelab.data.random_segments` accepts); default: ``load_split(cfg.dataset, "train")``.
        eval_utterances: utterances for ``cfg.eval_every``; default: ``cfg.eval_subset`` utterances of
            ``load_split(cfg.dataset, "valid")`` spread over its speakers.
        progress: show a tqdm progress bar (rank 0 only, refreshed at most once a second).
    Returns:
        :class:`TrainSummary`.
    Raises:
        ValueError: an invalid config, an empty utterance list, or a ``run_dir`` holding a different run.
        KeyError / TypeError: unknown model name / model override (from :func:`wavelab.models.config_for`).
        NonFiniteLossError: the loss became NaN or infinite (the last good checkpoint is kept).
    """
    cfg.validate()
    dist_info = _init_distributed(cfg.device)
    try:
        return _train(cfg, utterances, eval_utterances, progress, dist_info)
    finally:
        if dist_info.owns_group and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _Progress:
    """Where a run stands: optimizer steps and training frames so far, wall time of earlier sessions, and the steps
    of the checkpoint this session resumed from and of the latest checkpoint written."""

    step: int = 0
    frames_seen: int = 0
    prior_wall_s: float = 0.0
    prior_train_cpu_s: float = 0.0
    resumed_from: int | None = None
    checkpoint_step: int | None = None


@dataclass
class _StepStats:
    """One step's figures, summed over processes (one all-reduce per step)."""

    non_finite: bool
    frames: int
    nll_nats: float
    kl_nats: dict[str, float]
    out_of_time: bool
    checkpoint_due: bool
    eval_due: bool = False


@dataclass
class _Interval:
    """Sums over the steps since the last training log line."""

    nll_nats: float = 0.0
    frames: int = 0
    steps: int = 0
    kl_nats: dict[str, float] = field(default_factory=dict)

    def add(self, s: _StepStats) -> None:
        self.nll_nats += s.nll_nats
        self.frames += s.frames
        self.steps += 1
        for k, v in s.kl_nats.items():
            self.kl_nats[k] = self.kl_nats.get(k, 0.0) + v

    @property
    def loss_nats(self) -> float:
        """Frame-weighted mean reported NLL (or negative ELBO) per frame over the interval, nats."""
        return self.nll_nats / max(self.frames, 1)


def _step_stats(loss: torch.Tensor, out, out_of_time: bool, checkpoint_due: bool, D: _Dist,
                device: torch.device, eval_due: bool = False) -> _StepStats:
    """Gather a step's figures into one float64 vector, all-reduce it across processes, and name its entries."""
    kl_names = sorted(out.kl)
    flag = lambda b: torch.tensor(float(b), dtype=torch.float64, device=device)  # noqa: E731
    vec = torch.stack([
        (~torch.isfinite(loss.detach())).to(torch.float64),
        out.frames.detach().sum().to(torch.float64),
        out.nll.detach().sum().to(torch.float64),
        *[out.kl[k].detach().sum().to(torch.float64) for k in kl_names],
        flag(out_of_time),
        flag(checkpoint_due),
        flag(eval_due),
    ])
    if D.enabled:
        dist.all_reduce(vec)
    v = vec.tolist()
    return _StepStats(non_finite=v[0] > 0, frames=int(v[1]), nll_nats=v[2],
                      kl_nats=dict(zip(kl_names, v[3:3 + len(kl_names)])), out_of_time=v[-3] > 0,
                      checkpoint_due=v[-2] > 0, eval_due=v[-1] > 0)


def _training_data(cfg: TrainConfig, utterances) -> tuple[list, str]:
    """The training utterances and the name of their split (``"train"``, or ``"given"`` when the caller passed them)."""
    from . import data as wdata

    split = "given"
    if utterances is None:
        utterances, split = wdata.load_split(cfg.dataset, "train"), "train"
    utterances = list(utterances)
    if not utterances:
        raise ValueError(f"no training utterances for dataset {cfg.dataset!r}; check the data root (WAVELAB_DATA)")
    return utterances, split


def _validation_data(cfg: TrainConfig, eval_utterances) -> tuple[list | None, str]:
    """The utterances of the periodic evaluation and their split's name: ``cfg.eval_subset`` utterances of the
    dataset's ``valid`` split, round-robin over its speakers (never the test split), unless the caller gives some."""
    if cfg.eval_every is None and cfg.eval_every_minutes is None:
        return None, ""
    if eval_utterances is not None:
        return list(eval_utterances), "given"
    return curve_utterances(cfg.dataset, cfg.eval_subset), "valid"


def _restore(ckpt_path: Path, cfg: TrainConfig, model, optimizer, scaler, use_scaler: bool, D: _Dist,
             device: torch.device) -> _Progress:
    """Load model, optimizer, scaler and RNG states from ``ckpt_path`` when it exists (resume); else seed this
    process's streams for a fresh run.  Returns where the run stands."""
    if not ckpt_path.exists():
        _seed_everything(_rank_seed(cfg.seed, D.rank))
        return _Progress()
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    _check_resumable(cfg, ckpt["train_config"], ckpt_path.parent)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if use_scaler and ckpt["scaler"]:  # empty when the checkpoint was written without fp16 autocast
        scaler.load_state_dict(ckpt["scaler"])
    step = int(ckpt["step"])
    if int(ckpt["world_size"]) == D.world_size:
        _set_rng_state(ckpt["rng"][D.rank], device)
    else:  # a new world size: the data shards change, and the model's own randomness is reseeded
        _seed_everything(_rank_seed(cfg.seed + step, D.rank))
    return _Progress(step=step, frames_seen=int(ckpt["frames_seen"]), prior_wall_s=float(ckpt["wall_s"]),
                     prior_train_cpu_s=float(ckpt.get("train_cpu_s", ckpt["wall_s"])), resumed_from=step,
                     checkpoint_step=step)


def _forward_loss(model, net, codes: torch.Tensor, lengths: torch.Tensor, step: int, device_type: str,
                  amp_dtype: torch.dtype | None, amp_on: bool):
    """The forward half of a training step: the model's schedules set for ``step`` (KL warm-up, free nats), then
    ``net`` (the model, or its DistributedDataParallel wrapper) on ``codes [B, L]`` / ``lengths [B]`` and its
    ``loss()`` under autocast as :func:`_resolve_amp` chose.  Returns ``(output, loss)``."""
    model.set_train_step(step)
    with torch.autocast(device_type=device_type, dtype=amp_dtype, enabled=amp_on):
        out = net(codes, lengths)
        loss = out.loss()
    return out, loss


def _optimizer_step(loss: torch.Tensor, model, optimizer, scaler, cfg: TrainConfig, use_scaler: bool) -> float | None:
    """Backward pass, optional clipping, and the update.  Returns the global gradient norm (``None`` when a gradient
    scaler checks it itself), or ``nan``/``inf`` without touching the parameters when the gradient is not finite."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    grad_norm = None
    if cfg.grad_clip is not None:
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    elif not use_scaler:  # a GradScaler skips non-finite steps itself; without one, check before stepping
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf))
    if not use_scaler and not math.isfinite(grad_norm):  # gradients are all-reduced: every rank agrees
        return grad_norm
    scaler.step(optimizer)
    scaler.update()
    return grad_norm


class _Session:
    """One session of a run (a fresh start or a resume): the model, optimizer and clocks, and the records the loop
    writes (``config.json``, ``metrics.jsonl``, checkpoints).  Setting it up follows a fixed order, so that a resumed
    run draws exactly the random numbers an uninterrupted one would: seed, build, restore (or seed the fresh run),
    fit to the data, wrap for DistributedDataParallel."""

    def __init__(self, cfg: TrainConfig, utterances, eval_utterances, progress: bool, D: _Dist):
        from tqdm.auto import tqdm

        from .models import build_model, config_for

        self.cfg, self.D = cfg, D
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_path = self.run_dir / CHECKPOINT
        self.device = _resolve_device(cfg.device, D.local_rank)
        self.amp_on, self.amp_dtype, self.use_scaler = _resolve_amp(cfg.amp, self.device)
        self.utterances, self.train_split = _training_data(cfg, utterances)
        self.eval_utterances, self.eval_split = _validation_data(cfg, eval_utterances) if D.is_main else (None, "")
        _seed_everything(cfg.seed)  # the model's initialisation is a function of the seed alone (every rank)
        self.model_config = config_for(cfg.model, **cfg.model_overrides)
        self.model = build_model(cfg.model, config=self.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_scaler)
        self.run = _restore(self.ckpt_path, cfg, self.model, self.optimizer, self.scaler, self.use_scaler, D,
                            self.device)
        if self.run.resumed_from is None:
            self.model.fit_to_data(self.utterances)  # data-fitted parts (a linear predictor); a resume restores them
        self.net = self.model
        if D.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.metrics_f = self._open_run_dir() if D.is_main else None
        self.start = self.last_ckpt_time = time.monotonic()
        self.cpu_start, self.eval_cpu_s = time.process_time(), 0.0
        self.budget_clock = self.train_cpu if cfg.clock == "cpu" else self.wall
        self.eval_interval_s = None if cfg.eval_every_minutes is None else cfg.eval_every_minutes * 60
        self.next_eval_s = (None if self.eval_interval_s is None
                            else (math.floor(self.budget_clock() / self.eval_interval_s) + 1) * self.eval_interval_s)
        self.bar = tqdm(total=cfg.max_steps, initial=self.run.step, unit="step", mininterval=1.0, dynamic_ncols=True,
                        disable=not progress or not D.is_main, desc=f"train {cfg.model}")
        self.interval, self.final_loss, self.last_eval_step = _Interval(), math.nan, None

    def _open_run_dir(self):
        """Write ``config.json``, trim the metrics of a resumed run to its checkpoint, open them for appending."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Path(str(self.ckpt_path) + ".tmp").unlink(missing_ok=True)  # a checkpoint cut by a kill
        atomic_write_json({
            "train_config": dataclasses.asdict(cfg), "model": cfg.model,
            "model_config": dataclasses.asdict(self.model_config),
            "parameters": sum(p.numel() for p in self.model.parameters()), "world_size": self.D.world_size,
            "device": str(self.device), "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_on else "off",
            "train_split": self.train_split, "eval_split": self.eval_split, "resumed_from": self.run.resumed_from,
            "hardware": hardware_info(), "commit": git_commit(),
        }, self.run_dir / CONFIG)
        if self.run.resumed_from is not None:
            trim_metrics(self.run_dir / METRICS, self.run.resumed_from)
        return open(self.run_dir / METRICS, "a", buffering=1)

    def wall(self) -> float:
        """Wall seconds of the run, over all its sessions."""
        return self.run.prior_wall_s + time.monotonic() - self.start

    def train_cpu(self) -> float:
        """CPU seconds of this process spent training (periodic validation taken out), over all sessions."""
        return self.run.prior_train_cpu_s + time.process_time() - self.cpu_start - self.eval_cpu_s

    def log(self, rec: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (rank 0 only)."""
        if self.metrics_f is not None:
            self.metrics_f.write(json.dumps(rec) + "\n")
            self.metrics_f.flush()

    def due(self) -> tuple[bool, bool, bool]:
        """``(out_of_time, checkpoint_due, eval_due)`` by the clocks, decided on rank 0 (the step's all-reduce
        tells the others)."""
        cfg, main = self.cfg, self.D.is_main
        out_of_time = main and cfg.max_minutes is not None and self.budget_clock() >= cfg.max_minutes * 60
        ckpt_due = (main and cfg.checkpoint_minutes is not None
                    and time.monotonic() - self.last_ckpt_time >= cfg.checkpoint_minutes * 60)
        eval_due = main and self.next_eval_s is not None and self.budget_clock() >= self.next_eval_s
        return out_of_time, ckpt_due, eval_due

    def fail(self, event: str, key: str, value: float, what: str) -> NonFiniteLossError:
        """Log a non-finite step and make the error to raise (the last good checkpoint stays)."""
        self.log({"kind": "event", "event": event, "step": self.run.step + 1, key: str(value),
                  "checkpoint_step": self.run.checkpoint_step})
        return NonFiniteLossError(self.run.step + 1, value, self.run_dir, self.run.checkpoint_step, what=what)

    def log_training(self, grad_norm: float | None) -> None:
        """The training line of the steps since the last one (frame-weighted mean loss, KL terms, lr)."""
        interval = self.interval
        rec = {"kind": "train", "step": self.run.step, "loss_nats": interval.loss_nats,
               "bpf": interval.loss_nats / math.log(2), "lr": self.optimizer.param_groups[0]["lr"],
               "frames_seen": self.run.frames_seen, "wall_s": self.wall(), "train_cpu_s": self.train_cpu(),
               "steps_in_mean": interval.steps}
        rec.update({f"kl_{k}": v / max(interval.frames, 1) for k, v in interval.kl_nats.items()})
        if grad_norm is not None:
            rec["grad_norm"] = grad_norm
        if self.use_scaler:
            rec["grad_scale"] = float(self.scaler.get_scale())
        self.log(rec)
        self.bar.set_postfix(bpf=f"{rec['bpf']:.3f}", refresh=False)
        self.final_loss, self.interval = interval.loss_nats, _Interval()

    def validate(self) -> None:
        """Evaluate on the validation utterances (rank 0), outside the training RNG stream and off the CPU clock."""
        from .evaluate import evaluate

        if self.D.is_main:
            devices = [self.device] if self.device.type == "cuda" else []
            cpu_before, at_cpu_s, at_wall_s = time.process_time(), self.train_cpu(), self.wall()
            with torch.random.fork_rng(devices=devices):
                ev = evaluate(self.model, self.eval_utterances, device=self.device, seed=self.cfg.seed)
            self.model.train()
            self.eval_cpu_s += time.process_time() - cpu_before
            self.log({"kind": "eval", "split": self.eval_split, "step": self.run.step, "bpf": ev.bpf.weighted,
                      "bpf_mean": ev.bpf.mean, "is_bound": ev.bpf.is_bound, "utterances": ev.bpf.utterances,
                      "frames": ev.bpf.frames, "seed": self.cfg.seed, "wall_s": at_wall_s, "train_cpu_s": at_cpu_s,
                      "frames_seen": self.run.frames_seen})
        self.last_eval_step = self.run.step
        self.D.barrier()

    def schedule_next_eval(self) -> None:
        """Move the next evaluation by the CPU-time (or wall) clock past now, in whole intervals."""
        if self.next_eval_s is not None:
            while self.next_eval_s <= self.budget_clock():
                self.next_eval_s += self.eval_interval_s

    def save_checkpoint(self) -> None:
        """Model, optimizer, scaler, every rank's RNG states and the progress, written atomically by rank 0."""
        D, cfg = self.D, self.cfg
        rng = _rng_state(self.device)
        gathered: list[Any] = [rng]
        if D.enabled:
            gathered = [None] * D.world_size
            dist.all_gather_object(gathered, rng)
        if D.is_main:
            state = {
                "format": CHECKPOINT_FORMAT, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(), "step": self.run.step,
                "frames_seen": self.run.frames_seen, "wall_s": self.wall(), "train_cpu_s": self.train_cpu(),
                "rng": gathered, "world_size": D.world_size, "train_config": dataclasses.asdict(cfg),
                "model_name": cfg.model, "model_config": dataclasses.asdict(self.model_config),
                "torch_version": str(torch.__version__),
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            atomic_write_bytes(self.ckpt_path, lambda f: torch.save(state, f))
        D.barrier()
        self.run.checkpoint_step, self.last_ckpt_time = self.run.step, time.monotonic()

    def close(self) -> None:
        self.bar.close()
        if self.metrics_f is not None:
            self.metrics_f.close()

    def summary(self, stopped_by: str) -> TrainSummary:
        return TrainSummary(run_dir=self.run_dir, steps=self.run.step, frames_seen=self.run.frames_seen,
                            wall_s=self.wall(), train_cpu_s=self.train_cpu(), final_loss_nats=self.final_loss,
                            final_bpf=self.final_loss / math.log(2), stopped_by=stopped_by,
                            resumed_from=self.run.resumed_from, checkpoint=self.ckpt_path, model=self.model)


def _train(cfg: TrainConfig, utterances, eval_utterances, progress: bool, D: _Dist) -> TrainSummary:
    """The training loop: set up a session; then, step by step, a batch, the forward pass and its loss, the
    optimizer step, and the training log, validation and checkpoint when they are due; then the last checkpoint."""
    from . import data as wdata

    s = _Session(cfg, utterances, eval_utterances, progress, D)
    run, model, stopped_by = s.run, s.model, "max_steps"
    try:
        s.log({"kind": "event", "event": "resume" if run.resumed_from is not None else "start", "step": run.step,
               "world_size": D.world_size, "device": str(s.device), "train_split": s.train_split,
               "eval_split": s.eval_split})
        batches = wdata.random_segments(s.utterances, cfg.segment_length, cfg.batch_size, bits=model.bits,
                                        representation=model.representation, seed=cfg.seed, start_step=run.step,
                                        rank=D.rank, world_size=D.world_size)
        model.train()
        if s.eval_interval_s is not None and run.resumed_from is None and s.eval_utterances is not None:
            s.validate()  # the curve's first point: the initial model
        while cfg.max_steps is None or run.step < cfg.max_steps:
            codes, lengths = (x.to(s.device, non_blocking=True) for x in next(batches))
            out, loss = _forward_loss(model, s.net, codes, lengths, run.step, s.device.type, s.amp_dtype, s.amp_on)
            out_of_time, ckpt_due, eval_due = s.due()
            stats = _step_stats(loss, out, out_of_time, ckpt_due, D, s.device, eval_due=eval_due)
            if stats.non_finite:
                bad = float(loss.detach())
                raise s.fail("non_finite_loss", "loss_nats", bad if not math.isfinite(bad) else stats.nll_nats,
                             "loss")
            grad_norm = _optimizer_step(loss, model, s.optimizer, s.scaler, cfg, s.use_scaler)
            if grad_norm is not None and not math.isfinite(grad_norm):
                raise s.fail("non_finite_gradient", "grad_norm", grad_norm, "gradient norm")

            run.step += 1
            run.frames_seen += stats.frames
            s.interval.add(stats)
            s.bar.update(1)
            last = stats.out_of_time or (cfg.max_steps is not None and run.step >= cfg.max_steps)
            if run.step % cfg.log_every == 0 or last:
                s.log_training(grad_norm)
            if ((cfg.eval_every is not None and run.step % cfg.eval_every == 0) or stats.eval_due
                    or (s.eval_interval_s is not None and last and s.last_eval_step != run.step)):
                s.validate()
                s.schedule_next_eval()
            if (cfg.checkpoint_every is not None and run.step % cfg.checkpoint_every == 0) or stats.checkpoint_due:
                s.save_checkpoint()
            if stats.out_of_time:
                stopped_by = "max_minutes"
                break

        if run.checkpoint_step != run.step:
            s.save_checkpoint()
        s.log({"kind": "event", "event": "end", "step": run.step, "stopped_by": stopped_by,
               "frames_seen": run.frames_seen, "wall_s": s.wall(), "train_cpu_s": s.train_cpu()})
    finally:
        s.close()
    return s.summary(stopped_by)


# --------------------------------------------------------------------------------------------------------------------
# loading a finished (or running) run


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Load the latest checkpoint of a run for evaluation, sampling or the book.

    Args:
        run_dir: a directory written by :func:`train`.
        device: where to put the model.
    Returns:
        ``(model, train_config, meta)``: the model in eval mode with the checkpoint's weights, the run's
        :class:`TrainConfig`, and a dict with ``step``, ``frames_seen``, ``wall_s``, ``train_cpu_s``, ``world_size``,
        ``model_name``,
        ``model_config``, ``torch_version``, ``saved_utc`` and ``checkpoint`` (its path).
    Raises:
        FileNotFoundError: ``run_dir`` or its checkpoint is missing (the message says how to make one).
    """
    from .models import build_model, config_for

    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT
    if not path.exists():
        what = "does not exist" if not run_dir.exists() else f"has no {CHECKPOINT}"
        raise FileNotFoundError(
            f"run directory {run_dir} {what}; train first: python -m wavelab train --run-dir {run_dir} --steps N"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = TrainConfig.from_dict(ckpt["train_config"])
    model = build_model(ckpt["model_name"], config=config_for(ckpt["model_name"], **ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    meta = {k: ckpt[k] for k in ("step", "frames_seen", "wall_s", "world_size", "model_name", "model_config",
                                 "torch_version", "saved_utc")}
    meta["train_cpu_s"] = ckpt.get("train_cpu_s")  # None in a checkpoint written without the CPU clock
    meta["checkpoint"] = path
    return model, cfg, meta


__all__ = ["NonFiniteLossError", "TrainConfig", "TrainSummary", "atomic_write_json", "export_run", "identity_diffs",
           "load_run", "read_metrics", "train"]
