"""One training loop for every wavelab model.

The loop follows Havtorn et al. (section 3 and appendix C): Adam with learning rate 3e-4 and default betas, no
schedule, mini-batches of 2 random 16,000-sample segments of the training utterances, mixed precision on GPU.  The loss
is the model's :meth:`~wavelab.models.base.ModelOutput.loss`, nats per frame (the negative ELBO for latent variable
models, or their training objective with KL warm-up and free nats, whose schedules read the step a model with
``set_train_step`` is given before every step); the log shows the reported figure (``nll``: the NLL or negative ELBO)
in bits per frame (bpf) too.

A run lives in one directory (``TrainConfig.run_dir``)::

    run_dir/
      config.json        the TrainConfig, the model's config and provenance (rewritten at every start)
      checkpoint.pt      latest checkpoint, replaced atomically (written to checkpoint.pt.tmp, then os.replace)
      metrics.jsonl      one JSON object per line: training log lines ("kind": "train"), held-out evaluations
                         ("kind": "eval") and events ("kind": "event": start, resume, non-finite loss, end)

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

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT_FORMAT = 1

# Fields that define what a run trains; a resumed run must agree on them (budgets and logging may change).
_IDENTITY_FIELDS = ("model", "model_overrides", "dataset", "segment_length", "batch_size", "lr", "seed")
_AMP_CHOICES = ("auto", "bf16", "fp16", "off")


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
        max_minutes: stop once the run's total wall-clock training time (over all resumes) exceeds this budget; the
            step that crosses the budget completes first.  At least one of ``max_steps`` and ``max_minutes`` is needed.
        seed: seeds the model initialisation, the data stream and the model's own randomness.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: mixed precision: ``"auto"`` (fp16 autocast with a gradient scaler on CUDA, as the paper's PyTorch AMP;
            off on CPU), ``"bf16"`` (autocast without a scaler), ``"fp16"`` or ``"off"``.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping, as in the paper).
        log_every: write a training line to ``metrics.jsonl`` every this many steps (the mean over those steps).
        checkpoint_every: write a checkpoint every this many steps (``None``: only by time and at the end).
        checkpoint_minutes: also write a checkpoint when this many minutes passed since the last one (``None``: off).
        eval_every: evaluate on a held-out subset every this many steps (``None``: never), for the learning curve.
        eval_subset: number of held-out utterances of the dataset's test split for ``eval_every``, taken round-robin
            over its speakers.
        run_dir: directory of the run (created when missing).
    """

    model: str = "wavenet"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dataset: str = "timit"
    segment_length: int = 16_000
    batch_size: int = 2
    lr: float = 3e-4
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    grad_clip: float | None = None
    log_every: int = 10
    checkpoint_every: int | None = 1000
    checkpoint_minutes: float | None = 10.0
    eval_every: int | None = None
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
        for name in ("max_minutes", "checkpoint_minutes", "grad_clip"):
            v = getattr(self, name)
            if v is not None and not float(v) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0 or None, got {v!r}")
        if int(self.seed) < 0:
            raise ValueError(f"TrainConfig.seed must be >= 0, got {self.seed!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.max_steps is None and self.max_minutes is None:
            raise ValueError("TrainConfig needs a budget: set max_steps (--steps) and/or max_minutes (--minutes)")
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


def _atomic_write_bytes(path: Path, write) -> None:
    """Write ``path`` through ``write(file)`` into ``path.tmp`` in the same directory, fsync, then ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file in the same directory + ``os.replace``)."""
    data = (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode()
    _atomic_write_bytes(Path(path), lambda f: f.write(data))


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
        # network's input y_k and the DMoL means to ~100 codes of the 2^16 grid
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
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
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
    ...), so a small held-out subset covers every test speaker rather than the first one."""
    by_speaker: dict[str, list] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker.id, []).append(u)
    rounds = max((len(v) for v in by_speaker.values()), default=0)
    ordered = [v[i] for i in range(rounds) for v in by_speaker.values() if i < len(v)]
    return ordered[:n]


def _check_resumable(cfg: TrainConfig, saved: dict[str, Any], run_dir: Path) -> None:
    diffs = [
        f"{k}: checkpoint has {saved.get(k)!r}, this run asks for {getattr(cfg, k)!r}"
        for k in _IDENTITY_FIELDS
        if _as_json(saved.get(k)) != _as_json(getattr(cfg, k))
    ]
    if diffs:
        raise ValueError(
            f"{run_dir} holds a checkpoint of a different run ({'; '.join(diffs)}). "
            "Use a new --run-dir, or repeat the original settings to resume it."
        )


def _trim_metrics(path: Path, step: int) -> None:
    """After a kill, drop the training and evaluation lines of steps past the checkpoint we resume from (they will be
    redone); events are kept."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if rec.get("kind") == "event" or rec.get("step", 0) <= step:
            kept.append(line)
    data = ("\n".join(kept) + "\n" if kept else "").encode()
    _atomic_write_bytes(path, lambda f: f.write(data))


def read_metrics(run_dir: str | Path, kind: str | None = "train") -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` (those of ``kind`` "train", "eval" or "event"; ``None``: all)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a training run directory?")
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in recs if kind is None or r.get("kind") == kind]


# --------------------------------------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig, utterances=None, eval_utterances=None, progress: bool = True) -> TrainSummary:
    """Train ``cfg.model`` on random segments of ``utterances`` (resuming ``cfg.run_dir`` if it holds a checkpoint).

    Args:
        cfg: the run's :class:`TrainConfig`.
        utterances: training utterances (:class:`wavelab.data.Utterance` or anything
            :func:`wavelab.data.random_segments` accepts); default: ``load_split(cfg.dataset, "train")``.
        eval_utterances: held-out utterances for ``cfg.eval_every``; default: the first ``cfg.eval_subset`` of
            ``load_split(cfg.dataset, "test")``.
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


def _train(cfg: TrainConfig, utterances, eval_utterances, progress: bool, D: _Dist) -> TrainSummary:
    from tqdm.auto import tqdm

    from . import data as wdata
    from .models import build_model, config_for

    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / CHECKPOINT
    device = _resolve_device(cfg.device, D.local_rank)
    amp_on, amp_dtype, use_scaler = _resolve_amp(cfg.amp, device)

    if utterances is None:
        utterances = wdata.load_split(cfg.dataset, "train")
    utterances = list(utterances)
    if not utterances:
        raise ValueError(f"no training utterances for dataset {cfg.dataset!r}; check the data root (WAVELAB_DATA)")

    # model initialisation is a function of the seed alone (identical on every rank)
    _seed_everything(cfg.seed)
    model_config = config_for(cfg.model, **cfg.model_overrides)
    model = build_model(cfg.model, config=model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    step, frames_seen, prior_wall, resumed_from, ckpt_step = 0, 0, 0.0, None, None
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        _check_resumable(cfg, ckpt["train_config"], run_dir)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if use_scaler and ckpt["scaler"]:  # empty when the checkpoint was written without fp16 autocast
            scaler.load_state_dict(ckpt["scaler"])
        step, frames_seen, prior_wall = int(ckpt["step"]), int(ckpt["frames_seen"]), float(ckpt["wall_s"])
        resumed_from = ckpt_step = step
        rng = ckpt["rng"]
        if int(ckpt["world_size"]) == D.world_size:
            _set_rng_state(rng[D.rank], device)
        else:  # a new world size: the data shards change, and the model's own randomness is reseeded
            _seed_everything(_rank_seed(cfg.seed + step, D.rank))
        del ckpt
    else:
        _seed_everything(_rank_seed(cfg.seed, D.rank))

    ddp_model = model
    if D.enabled:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    metrics_f = None
    if D.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        Path(str(ckpt_path) + ".tmp").unlink(missing_ok=True)  # a checkpoint cut by a kill
        from .results import git_commit, hardware_info

        atomic_write_json(
            {
                "train_config": dataclasses.asdict(cfg),
                "model": cfg.model,
                "model_config": dataclasses.asdict(model_config),
                "parameters": sum(p.numel() for p in model.parameters()),
                "world_size": D.world_size,
                "device": str(device),
                "amp": str(amp_dtype).replace("torch.", "") if amp_on else "off",
                "resumed_from": resumed_from,
                "hardware": hardware_info(),
                "commit": git_commit(),
            },
            run_dir / CONFIG,
        )
        if resumed_from is not None:
            _trim_metrics(run_dir / METRICS, resumed_from)
        metrics_f = open(run_dir / METRICS, "a", buffering=1)

    def log(rec: dict[str, Any]) -> None:
        if metrics_f is not None:
            metrics_f.write(json.dumps(rec) + "\n")
            metrics_f.flush()

    log({"kind": "event", "event": "resume" if resumed_from is not None else "start", "step": step,
         "world_size": D.world_size, "device": str(device)})

    stream = wdata.random_segments(
        utterances, cfg.segment_length, cfg.batch_size, bits=model.bits, seed=cfg.seed, start_step=step,
        rank=D.rank, world_size=D.world_size,
    )

    if cfg.eval_every is not None and D.is_main and eval_utterances is None:
        eval_utterances = _spread_over_speakers(wdata.load_split(cfg.dataset, "test"), cfg.eval_subset)

    start = time.monotonic()
    last_ckpt_time = start
    wall = lambda: prior_wall + time.monotonic() - start  # noqa: E731

    def save_checkpoint() -> None:
        nonlocal ckpt_step, last_ckpt_time
        rng = _rng_state(device)
        if D.enabled:
            gathered: list[Any] = [None] * D.world_size
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if D.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "frames_seen": frames_seen,
                "wall_s": wall(),
                "rng": gathered,
                "world_size": D.world_size,
                "train_config": dataclasses.asdict(cfg),
                "model_name": cfg.model,
                "model_config": dataclasses.asdict(model_config),
                "torch_version": str(torch.__version__),
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            _atomic_write_bytes(ckpt_path, lambda f: torch.save(state, f))
        D.barrier()
        ckpt_step, last_ckpt_time = step, time.monotonic()

    bar = tqdm(
        total=cfg.max_steps, initial=step, unit="step", mininterval=1.0, dynamic_ncols=True,
        disable=not progress or not D.is_main, desc=f"train {cfg.model}",
    )
    interval = {"nll": 0.0, "frames": 0, "steps": 0}
    interval_kl: dict[str, float] = {}
    final_loss = math.nan
    stopped_by = "max_steps"
    model.train()
    try:
        while True:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                stopped_by = "max_steps"
                break
            codes, lengths = next(stream)
            codes = codes.to(device, non_blocking=True)
            lengths = lengths.to(device, non_blocking=True)
            if hasattr(model, "set_train_step"):  # schedules inside the objective (KL warm-up, free nats)
                model.set_train_step(step)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_on):
                out = ddp_model(codes, lengths)
                loss = out.loss()
            kl_names = sorted(out.kl)
            # one collective per step: [non-finite, frames, nll sum, kl sums..., out of time, checkpoint due]
            elapsed_total = wall()
            now = time.monotonic()
            stats = torch.stack(
                [
                    (~torch.isfinite(loss.detach())).to(torch.float64),
                    out.frames.detach().sum().to(torch.float64),
                    out.nll.detach().sum().to(torch.float64),
                    *[out.kl[k].detach().sum().to(torch.float64) for k in kl_names],
                    torch.tensor(
                        float(D.is_main and cfg.max_minutes is not None and elapsed_total >= cfg.max_minutes * 60),
                        dtype=torch.float64, device=device),
                    torch.tensor(
                        float(D.is_main and cfg.checkpoint_minutes is not None
                              and now - last_ckpt_time >= cfg.checkpoint_minutes * 60),
                        dtype=torch.float64, device=device),
                ]
            )
            if D.enabled:
                dist.all_reduce(stats)
            s = stats.tolist()
            if s[0] > 0:
                bad = float(loss.detach())
                if math.isfinite(bad):  # the non-finite loss was on another rank
                    bad = s[2]
                log({"kind": "event", "event": "non_finite_loss", "step": step + 1, "loss_nats": str(bad),
                     "checkpoint_step": ckpt_step})
                raise NonFiniteLossError(step + 1, bad, run_dir, ckpt_step)
            out_of_time, ckpt_due = s[-2] > 0, s[-1] > 0

            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            grad_norm = None
            if cfg.grad_clip is not None:
                scaler.unscale_(optimizer)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
            elif not use_scaler:  # a GradScaler skips non-finite steps itself; without one, check before stepping
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf))
            if not use_scaler and not math.isfinite(grad_norm):  # gradients are all-reduced: every rank agrees
                log({"kind": "event", "event": "non_finite_gradient", "step": step + 1, "grad_norm": str(grad_norm),
                     "checkpoint_step": ckpt_step})
                raise NonFiniteLossError(step + 1, grad_norm, run_dir, ckpt_step, what="gradient norm")
            scaler.step(optimizer)
            scaler.update()
            step += 1
            frames_seen += int(s[1])
            interval["nll"] += s[2]
            interval["frames"] += int(s[1])
            interval["steps"] += 1
            for k, v in zip(kl_names, s[3 : 3 + len(kl_names)]):
                interval_kl[k] = interval_kl.get(k, 0.0) + v
            bar.update(1)

            last = out_of_time or (cfg.max_steps is not None and step >= cfg.max_steps)
            if step % cfg.log_every == 0 or last:
                frames = max(interval["frames"], 1)
                final_loss = interval["nll"] / frames
                rec = {
                    "kind": "train", "step": step, "loss_nats": final_loss, "bpf": final_loss / math.log(2),
                    "lr": optimizer.param_groups[0]["lr"], "frames_seen": frames_seen, "wall_s": wall(),
                    "steps_in_mean": interval["steps"],
                }
                rec.update({f"kl_{k}": v / frames for k, v in interval_kl.items()})
                if grad_norm is not None:
                    rec["grad_norm"] = grad_norm
                if use_scaler:
                    rec["grad_scale"] = float(scaler.get_scale())
                log(rec)
                bar.set_postfix(bpf=f"{rec['bpf']:.3f}", refresh=False)
                interval = {"nll": 0.0, "frames": 0, "steps": 0}
                interval_kl = {}

            if cfg.eval_every is not None and step % cfg.eval_every == 0:
                if D.is_main:
                    from .evaluate import evaluate

                    devices = [device] if device.type == "cuda" else []
                    with torch.random.fork_rng(devices=devices):  # keep the training RNG stream untouched
                        ev = evaluate(model, eval_utterances, device=device)
                    model.train()
                    log({"kind": "eval", "step": step, "bpf": ev.bpf.weighted, "bpf_mean": ev.bpf.mean,
                         "is_bound": ev.bpf.is_bound, "utterances": ev.bpf.utterances, "frames": ev.bpf.frames,
                         "wall_s": wall()})
                D.barrier()

            if (cfg.checkpoint_every is not None and step % cfg.checkpoint_every == 0) or ckpt_due:
                save_checkpoint()
            if out_of_time:
                stopped_by = "max_minutes"
                break

        if ckpt_step != step:
            save_checkpoint()
        log({"kind": "event", "event": "end", "step": step, "stopped_by": stopped_by, "frames_seen": frames_seen,
             "wall_s": wall()})
    finally:
        bar.close()
        if metrics_f is not None:
            metrics_f.close()

    return TrainSummary(
        run_dir=run_dir, steps=step, frames_seen=frames_seen, wall_s=wall(), final_loss_nats=final_loss,
        final_bpf=final_loss / math.log(2), stopped_by=stopped_by, resumed_from=resumed_from, checkpoint=ckpt_path,
        model=model,
    )


# --------------------------------------------------------------------------------------------------------------------
# loading a finished (or running) run


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Load the latest checkpoint of a run for evaluation, sampling or the book.

    Args:
        run_dir: a directory written by :func:`train`.
        device: where to put the model.
    Returns:
        ``(model, train_config, meta)``: the model in eval mode with the checkpoint's weights, the run's
        :class:`TrainConfig`, and a dict with ``step``, ``frames_seen``, ``wall_s``, ``world_size``, ``model_name``,
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
    meta["checkpoint"] = path
    return model, cfg, meta


def export_run(run_dir: str | Path, dest: str | Path) -> Path:
    """Copy a run into ``dest`` in a form small enough to keep with the project (e.g. ``results/runs/NAME``).

    ``dest`` gets the run's ``config.json`` and ``metrics.jsonl`` as they are, and a ``checkpoint.pt`` with the model
    weights and the run's metadata but without the optimizer, gradient-scaler and RNG states, so :func:`load_run`
    reads it for evaluation and sampling, while training cannot resume from it (resume from the original run).

    Returns:
        ``dest``.
    Raises:
        FileNotFoundError: ``run_dir`` has no checkpoint.
    """
    import shutil

    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / CHECKPOINT).exists():
        raise FileNotFoundError(f"{run_dir} has no {CHECKPOINT} to export")
    ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scaler", "rng")}
    slim["exported_from"] = str(run_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, METRICS):
        shutil.copyfile(run_dir / name, dest / name)
    _atomic_write_bytes(dest / CHECKPOINT, lambda f: torch.save(slim, f))
    return dest


__all__ = ["NonFiniteLossError", "export_run", "TrainConfig", "TrainSummary", "atomic_write_json", "load_run", "read_metrics",
           "train"]
