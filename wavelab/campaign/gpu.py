"""The GPU campaign: the papers' configurations trained one after another on one CUDA GPU, a short budget each.

``python -m wavelab.campaign.gpu OUT_DIR`` (or ``bash scripts/gpu_campaign.sh OUT_DIR``, which documents the budget
and how to commit the output) runs the recipes ``recipes/gpu/NAME.toml`` of :data:`CAMPAIGN`, in that order.
For each run it

1. finds the batch (segments per step): on CUDA the largest that fits, :func:`largest_batch` over
   :func:`cuda_fits` (a real training step at each trial batch, from the recipe's ``train.batch_size`` up to its
   ``gpu.max_batch``); on CPU the recipe's ``train.batch_size``; a run resumed from a checkpoint keeps the checkpoint's
   batch (a run's batch cannot change);
2. trains it with :func:`wavelab.campaign.recipes.execute_plan` into ``WORK_DIR/NAME`` (default
   ``OUT_DIR/train/NAME``; a killed campaign resumes from the checkpoints there, and a finished run whose records exist
   is skipped), with the recipe's ``amp`` (``"bf16"``: bf16 autocast with the likelihood heads in float32; ``"auto"``
   would mean fp16 with a gradient scaler on CUDA, see :func:`wavelab.train._resolve_amp`) and ``max_minutes``
   (``--minutes`` overrides it);
3. exports it into ``OUT_DIR/runs/NAME`` with its weights stored as the recipe's ``gpu.export_dtype``
   (:func:`store_weights`) and checks the exported checkpoint is at most :data:`MAX_EXPORT_BYTES`
   (:func:`check_export_size`; an oversized export is removed and the run fails before any record is written);
4. evaluates the stored weights on the whole TIMIT test split into ``OUT_DIR/results/<record>.json``.

Budget labels: a record says ``budget = "gpu"`` only when its run trained on CUDA (its ``hardware`` names the GPU). The
CPU dry run (``--device cpu --quick``: tiny models, 4 steps, 2 test utterances, see :mod:`wavelab.campaign.recipes`)
labels its records ``"cpu-budget"`` with the note :data:`DRY_RUN_NOTE`, so a dry run can never pass for a GPU run;
``--device cpu`` without ``--quick`` is refused (the CPU-budget runs are ``recipes/*.toml``).

Nothing is written under the repository's ``results/`` (:func:`check_out_dir`), and every recipe, the output
folder and each run's weight size are checked before the first run trains.  A run that fails while training or
evaluating is reported, the campaign goes on with the next one, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..models import REGISTRY
from ..runs import CHECKPOINT, METRICS, atomic_write_bytes
from ..settings import PROJECT_ROOT
from .recipes import Recipe, RecipePlan, execute_plan, load_recipes, plan_recipe

#: where the campaign's recipes live.
GPU_RECIPES = PROJECT_ROOT / "recipes" / "gpu"


def campaign_recipes(recipes_dir: str | Path = GPU_RECIPES) -> tuple[str, ...]:
    """The names of every recipe ``NAME.toml`` in ``recipes_dir``, in the order the campaign runs them: by their
    model's place in :data:`wavelab.models.REGISTRY`, then by name.  ``()`` when the folder does not exist.

    Raises:
        wavelab.campaign.recipes.RecipeError: a recipe that does not load.
    """
    paths = sorted(Path(recipes_dir).glob("*.toml"))
    order = {name: i for i, name in enumerate(REGISTRY)}
    recipes = load_recipes(paths) if paths else []
    return tuple(r.name for r in sorted(recipes, key=lambda r: (order.get(r.model, len(order)), r.name)))


#: the campaign's recipes (``recipes/gpu/NAME.toml``), in the order they run (:func:`campaign_recipes`).
CAMPAIGN = campaign_recipes()
#: the largest exported checkpoint a run may write, bytes (16 MB, SI: under the 16 MiB a file may have to travel).
MAX_EXPORT_BYTES = 16_000_000
#: a trial batch fits when its training step peaks at most this fraction of the GPU's memory.
HEADROOM = 0.9
#: the campaign's wall-clock budget on one GPU, seconds, and the estimate it is checked against
#: (:func:`campaign_seconds`): start-up once, then per run its training budget plus the batch probe and the export
#: and evaluation.
BUDGET_S = 9 * 60
STARTUP_S = 15   # python and torch imports, the CUDA context, reading the TIMIT sample
PROBE_S = 8      # the batch probe: one training step at max_batch, more when it does not fit
EVAL_S = 12      # final checkpoint, export in float16, evaluation of the 40 test utterances, the record
#: the note every record of a CPU dry run carries (its budget is "cpu-budget").
DRY_RUN_NOTE = "gpu_campaign dry run on CPU, not a GPU run"


class GpuCampaignError(ValueError):
    """A campaign that cannot start: a bad output folder, device, recipe name or option; nothing has been written."""


class NoBatchFitsError(RuntimeError):
    """Not even the smallest batch the probe may use fits on the device."""


class ExportTooLargeError(ValueError):
    """An exported checkpoint over the size limit.  Attributes: ``path``, ``size`` and ``limit`` (bytes)."""

    def __init__(self, path: Path, size: int, limit: int):
        self.path, self.size, self.limit = Path(path), int(size), int(limit)
        super().__init__(f"{path} is {size / 1e6:.2f} MB, over the limit of {limit / 1e6:.2f} MB; store the weights "
                         f"in float16 ([gpu] export_dtype) or use a smaller model")


# --------------------------------------------------------------------------------------------------------------------
# the batch probe


def largest_batch(fits: Callable[[int], bool], start: int, cap: int,
                  log: Callable[[str], None] | None = None) -> int:
    """The largest batch in ``[start, cap]`` for which ``fits`` holds, assuming that a batch that fits means every
    smaller one fits too.

    The search tries ``cap`` first (on a large GPU it usually fits: one trial); otherwise it doubles ``start`` until a
    batch does not fit or the next doubling passes ``cap``, then bisects between the last batch that fit and the
    first that did not.  Each batch is tried at most once.

    Args:
        fits: ``fits(b)`` is True when a training step with ``b`` segments fits (e.g. :func:`cuda_fits`).
        start: the smallest batch to use (the recipe's ``train.batch_size``), >= 1.
        cap: the largest (the recipe's ``gpu.max_batch``), >= ``start``.
        log: called with a line per trial (``None``: silent).
    Returns:
        the batch.
    Raises:
        ValueError: ``start`` < 1 or ``cap`` < ``start``.
        NoBatchFitsError: ``fits(start)`` is False.
    """
    if isinstance(start, bool) or isinstance(cap, bool) or int(start) != start or int(cap) != cap:
        raise ValueError(f"largest_batch needs integer start and cap, got {start!r} and {cap!r}")
    if start < 1 or cap < start:
        raise ValueError(f"largest_batch needs 1 <= start <= cap, got start={start}, cap={cap}")
    tried: dict[int, bool] = {}

    def trial(b: int) -> bool:
        if b not in tried:
            tried[b] = bool(fits(b))
            if log is not None:
                log(f"    batch {b}: {'fits' if tried[b] else 'does not fit'}")
        return tried[b]

    if trial(cap):
        return cap
    if not trial(start):
        raise NoBatchFitsError(f"not even batch {start} fits (the smallest the probe may use)")
    lo, hi = start, cap  # lo fits, hi does not
    while lo * 2 < hi:
        if not trial(lo * 2):
            hi = lo * 2
            break
        lo *= 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if trial(mid):
            lo = mid
        else:
            hi = mid
    return lo


#: messages of CUDA errors that mean "too large for this device" rather than a bug (besides OutOfMemoryError).
_CAPACITY_ERRORS = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
                    "CUDNN_STATUS_NOT_SUPPORTED", "32-bit index")


def cuda_fits(cfg, device, headroom: float = HEADROOM,
              log: Callable[[str], None] | None = None) -> Callable[[int], bool]:
    """``fits(b)`` for :func:`largest_batch` on a CUDA device: one training step of a fresh copy of ``cfg``'s model
    (forward and backward under ``cfg.amp``'s autocast, and an Adam step, so the optimizer state is counted) on a
    batch of ``b`` random segments of ``cfg.segment_length`` samples; it fits when it raises no CUDA out-of-memory
    error (nor another error of :data:`_CAPACITY_ERRORS`, e.g. a tensor past 32-bit indexing) and its peak allocated
    memory is at most ``headroom`` of the device's.  Other errors propagate.  The trial's model, optimizer and
    tensors are freed afterwards; it draws its data from its own generator (the run's random streams are seeded
    by :func:`wavelab.train.train` itself).

    Args:
        cfg: the run's :class:`~wavelab.train.TrainConfig` (model, overrides, segment length, lr, amp).
        device: a CUDA device (``torch.device`` or string).
        headroom: the fraction of the device's memory a step may peak at, in (0, 1].
        log: called with a line per trial: the batch, its peak memory (GB) or error, and its seconds.
    Raises:
        ValueError: ``device`` is not a CUDA device, or CUDA is not available; ``headroom`` outside (0, 1].
    """
    import torch

    from ..models import build_model, config_for
    from ..train import _resolve_amp

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise ValueError(f"cuda_fits needs an available CUDA device, got {device} (CUDA available: "
                         f"{torch.cuda.is_available()}); on CPU the recipe's batch is used")
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom must be in (0, 1], got {headroom}")
    amp_on, amp_dtype, use_scaler = _resolve_amp(cfg.amp, device)
    total = torch.cuda.get_device_properties(device).total_memory

    def fits(batch: int) -> bool:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        model = optimizer = codes = lengths = loss = None
        ok, what, t0 = False, "", time.monotonic()
        try:
            model = build_model(cfg.model, config=config_for(cfg.model, **cfg.model_overrides)).to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
            g = torch.Generator(device=device).manual_seed(0)
            codes = torch.randint(0, 2 ** model.bits, (batch, cfg.segment_length), generator=g, device=device)
            lengths = torch.full((batch,), cfg.segment_length, dtype=torch.long, device=device)
            model.set_train_step(0)
            with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=amp_on):
                loss = model(codes, lengths).loss()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            ok = peak <= headroom * total
            what = f"peak {peak / 1e9:.1f} GB of {total / 1e9:.1f} GB"
        except torch.cuda.OutOfMemoryError:
            ok, what = False, "CUDA out of memory"
        except RuntimeError as e:
            if not any(m in str(e) for m in _CAPACITY_ERRORS):
                raise
            ok, what = False, f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
        model = optimizer = codes = lengths = loss = None  # noqa: F841  (free before the next trial)
        gc.collect()
        torch.cuda.empty_cache()
        if log is not None:
            log(f"    batch {batch}: {'fits' if ok else 'does not fit'} ({what}; {time.monotonic() - t0:.1f} s)")
        return ok

    return fits


# --------------------------------------------------------------------------------------------------------------------
# exported weights


def weights_nbytes(model: str, overrides: dict, dtype: str = "float32") -> int:
    """Bytes of the model's state dict with its float32 tensors stored as ``dtype`` (what :func:`store_weights`
    leaves in an export, without the checkpoint's few kB of metadata).  Builds the model on the CPU.

    Raises:
        KeyError / TypeError: as :func:`wavelab.models.config_for`; ValueError: an unknown dtype.
    """
    import torch

    from ..models import build_model

    itemsize = _dtype(dtype).itemsize
    total = 0
    for v in build_model(model, **overrides).state_dict().values():
        total += v.numel() * (itemsize if v.dtype == torch.float32 else v.element_size())
    return int(total)


def _dtype(name: str):
    import torch

    from .recipes import EXPORT_DTYPES

    if name not in EXPORT_DTYPES:
        raise ValueError(f"unknown export dtype {name!r}; known: {', '.join(EXPORT_DTYPES)}")
    return getattr(torch, name)


def store_weights(export_dir: str | Path, dtype: str) -> None:
    """Rewrite ``export_dir/checkpoint.pt`` (atomically) with the float32 tensors of its model weights stored as
    ``dtype`` (``"float32"``: the file is left as it is); other tensors (integer buffers, complex parameters) are
    kept.  The checkpoint gets ``weights_dtype``.  :func:`wavelab.train.load_run` casts the weights back into the
    model's float32 parameters, so an evaluation reads exactly the stored values.

    Raises:
        FileNotFoundError: no checkpoint there; ValueError: an unknown dtype.
    """
    import torch

    target = _dtype(dtype)
    path = Path(export_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; export the run first")
    if target == torch.float32:
        return
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["model"] = {k: v.to(target) if v.dtype == torch.float32 else v for k, v in ckpt["model"].items()}
    ckpt["weights_dtype"] = dtype
    atomic_write_bytes(path, lambda f: torch.save(ckpt, f))


def check_export_size(export_dir: str | Path, limit: int = MAX_EXPORT_BYTES) -> int:
    """The size in bytes of ``export_dir/checkpoint.pt``, checked against ``limit``.

    Raises:
        FileNotFoundError: no checkpoint there.
        ExportTooLargeError: it is larger than ``limit`` bytes.
    """
    path = Path(export_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; export the run first")
    size = path.stat().st_size
    if size > limit:
        raise ExportTooLargeError(path, size, limit)
    return size


def _finish_export(export_dir: Path, dtype: str, limit: int) -> None:
    """The plan's ``after_export``: store the weights as ``dtype``, then check the size; an oversized export is
    removed (the training run keeps its checkpoint) and the run stops before any record is written."""
    store_weights(export_dir, dtype)
    try:
        check_export_size(export_dir, limit)
    except ExportTooLargeError:
        shutil.rmtree(export_dir, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------------------------------
# checks before a campaign


def check_out_dir(out_dir: str | Path, work_dir: str | Path | None = None) -> None:
    """Refuse an output folder that would put anything under the repository's ``results/`` (or under
    :func:`wavelab.settings.results_dir` when ``WAVELAB_RESULTS`` moves it), or that is the repository itself (its
    ``runs/`` and ``results/`` are the CPU campaign's).  Paths are resolved (symbolic links followed) first.

    Raises:
        GpuCampaignError: naming the path.
    """
    from ..settings import results_dir

    out = Path(out_dir).resolve()
    protected = {(PROJECT_ROOT / "results").resolve(), Path(results_dir()).resolve()}
    if out == PROJECT_ROOT.resolve():
        raise GpuCampaignError(f"OUT_DIR {out_dir} is the repository itself (its results/ and runs/ hold the "
                               f"committed and CPU-budget runs); give a folder of its own, e.g. /tmp/gpu-campaign")
    paths = [out, out / "results", out / "runs"] + ([Path(work_dir).resolve()] if work_dir is not None else [])
    for p in paths:
        for root in protected:
            if p == root or root in p.parents:
                raise GpuCampaignError(f"{p} lies inside {root}, the committed results; the campaign never writes "
                                       f"there: give another OUT_DIR, check its records, then copy them (see "
                                       f"scripts/gpu_campaign.sh)")


def budget_label(device: str) -> tuple[str, str]:
    """The budget label and the note of a campaign's records on ``device``: ``("gpu", "gpu_campaign on <GPU>")`` on
    CUDA, ``("cpu-budget", DRY_RUN_NOTE)`` on CPU."""
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        return "gpu", f"gpu_campaign on {torch.cuda.get_device_name(index)}"
    return "cpu-budget", DRY_RUN_NOTE


def campaign_seconds(minutes: list[float]) -> float:
    """The campaign's estimated wall-clock time in seconds for runs of these training budgets (minutes): start-up
    once, then per run its budget plus the batch probe and the export and evaluation (:data:`STARTUP_S`,
    :data:`PROBE_S`, :data:`EVAL_S`)."""
    return STARTUP_S + sum(60 * m + PROBE_S + EVAL_S for m in minutes)


@dataclass
class GpuRun:
    """One run of the campaign, planned.

    Attributes:
        recipe: the recipe as it runs (budget label, ``max_minutes``, and the batch once known, applied).
        plan: its :class:`~wavelab.campaign.recipes.RecipePlan` (re-made with the batch the probe finds).
        batch_source: ``"checkpoint"`` (a resumed run keeps its batch), ``"recipe"`` (CPU) or ``"probe"`` (CUDA,
            until :func:`run_campaign` probes).
        done: the run finished and its records exist with its step count: :func:`run_campaign` skips it.
        out_dir / work_dir: OUT_DIR and the parent of the training run directories.
        note: the campaign's note for the records (:func:`budget_label`).
    """

    recipe: Recipe
    plan: RecipePlan
    batch_source: str
    out_dir: Path
    work_dir: Path
    note: str
    done: bool = False

    def with_batch(self, batch: int) -> GpuRun:
        """This run with ``batch`` segments per step (the probe's answer), re-planned."""
        recipe = dataclasses.replace(self.recipe, train=dataclasses.replace(self.recipe.train, batch_size=batch))
        plan = _plan(recipe, self.out_dir, self.work_dir, self.plan.quick, self.plan.train_config.device, self.note)
        return dataclasses.replace(self, recipe=recipe, plan=plan, batch_source="probed")


def _plan(recipe: Recipe, out: Path, work: Path, quick: bool, device: str, note: str) -> RecipePlan:
    """The recipe's plan with the campaign's paths, the export's dtype and size check, and the records' note."""
    plan = plan_recipe(recipe, work, out, quick=quick, device=device, records_dir=out / "results")
    dtype, batch = recipe.gpu.export_dtype, recipe.train.batch_size
    how = (f"the largest that fits, at most {recipe.gpu.max_batch}" if device.startswith("cuda") else
           "the recipe's, no probe on CPU")
    return dataclasses.replace(plan, notes=f"{note}; batch {batch} ({how}); weights stored as {dtype}",
                               after_export=lambda d: _finish_export(d, dtype, MAX_EXPORT_BYTES))


def _checkpoint_batch(run_dir: Path) -> int | None:
    import torch

    if not (run_dir / CHECKPOINT).exists():
        return None
    return int(torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)["train_config"]["batch_size"])


def _records_done(plan: RecipePlan) -> bool:
    if not plan.finished or not (plan.export_dir / CHECKPOINT).exists():
        return False
    for p in plan.records:
        try:
            if json.loads(p.read_text()).get("steps") != plan.checkpoint_step:
                return False
        except (OSError, json.JSONDecodeError):
            return False
    return True


def _campaign_order(name: str) -> tuple[int, str]:
    return (CAMPAIGN.index(name) if name in CAMPAIGN else len(CAMPAIGN), name)


def plan_campaign(out_dir: str | Path, names: list[str] | None = None, work_dir: str | Path | None = None,
                  minutes: float | None = None, quick: bool = False, device: str = "cuda",
                  recipes_dir: str | Path = GPU_RECIPES) -> list[GpuRun]:
    """Check everything a campaign needs and plan its runs, writing nothing.

    Args:
        out_dir: OUT_DIR: exports go to ``OUT_DIR/runs/NAME``, records to ``OUT_DIR/results``.
        names: recipe names (``None``: all of :data:`CAMPAIGN`), run in the campaign's order.
        work_dir: parent of the training run directories (``None``: ``OUT_DIR/train``).
        minutes: every run's ``max_minutes`` (``None``: the recipes'); ignored in quick mode (4 steps).
        quick: the dry run of :mod:`wavelab.campaign.recipes` (tiny models, 4 steps, 2 test utterances).
        device: ``"cuda"``, ``"cuda:N"`` or ``"cpu"`` (CPU only with ``quick``).
        recipes_dir: where ``NAME.toml`` are read.
    Returns:
        the runs, in order.
    Raises:
        GpuCampaignError: OUT_DIR inside results/, an unknown name, a recipe that is not a GPU recipe, CPU without
            quick, CUDA asked for but not available, ``minutes`` <= 0, or a run whose exported weights would exceed
            :data:`MAX_EXPORT_BYTES`.
        wavelab.campaign.recipes.RecipeError: a recipe that does not load.
        ValueError: as :func:`wavelab.campaign.recipes.plan_recipe` (a run directory of another run, ...).
    """
    import torch

    out = Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out / "train"
    if not (device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise GpuCampaignError(f"device must be cuda, cuda:N or cpu, got {device!r}")
    if device == "cpu" and not quick:
        raise GpuCampaignError("on CPU the GPU campaign is only a dry run: add --quick (the CPU-budget runs are "
                               "recipes/*.toml, scripts/cpu_budget_runs.sh)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GpuCampaignError(f"device {device} asked for, but CUDA is not available here; the CPU dry run is "
                               f"--device cpu --quick")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise GpuCampaignError(f"--minutes must be a number > 0, got {minutes}")
    check_out_dir(out, work)
    names = list(CAMPAIGN) if names is None else sorted(dict.fromkeys(names), key=_campaign_order)
    known = sorted(p.stem for p in Path(recipes_dir).glob("*.toml"))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise GpuCampaignError(f"unknown GPU recipe(s) {unknown or names}; known: {', '.join(known)}")
    recipes = load_recipes([Path(recipes_dir) / f"{n}.toml" for n in names])
    budget, note = budget_label(device)
    runs = []
    for r in recipes:
        if r.gpu is None or r.budget != "gpu":
            raise GpuCampaignError(f"{r.source} is not a GPU campaign recipe (it needs budget = \"gpu\" and a [gpu] "
                                   f"table)")
        nbytes = weights_nbytes(r.model, r.overrides(quick), r.gpu.export_dtype)
        if nbytes > MAX_EXPORT_BYTES:
            raise GpuCampaignError(f"{r.source}: its weights would be {nbytes / 1e6:.2f} MB as "
                                   f"{r.gpu.export_dtype}, over the export limit of {MAX_EXPORT_BYTES / 1e6:.0f} MB")
        batch = _checkpoint_batch(work / r.name)
        source = "checkpoint" if batch is not None else ("recipe" if device == "cpu" else "probe")
        train = dataclasses.replace(r.train, batch_size=batch or r.train.batch_size,
                                    max_minutes=minutes if minutes is not None else r.train.max_minutes)
        recipe = dataclasses.replace(r, budget=budget, train=train)
        plan = _plan(recipe, out, work, quick, device, note)
        runs.append(GpuRun(recipe=recipe, plan=plan, batch_source=source, out_dir=out, work_dir=work, note=note,
                           done=_records_done(plan)))
    return runs


# --------------------------------------------------------------------------------------------------------------------
# running


@dataclass
class SummaryRow:
    """One line of the campaign's summary: a record it wrote (or a run that failed: ``error`` set)."""

    run: str
    record: str = ""
    model: str = ""
    bpf: float | None = None
    is_bound: bool = False
    steps: int | None = None
    minutes: float | None = None
    batch: int | None = None
    gpu: str = ""
    budget: str = ""
    export_mb: float | None = None
    wall_s: float | None = None
    error: str = ""


def _rows(run: GpuRun, wall_s: float | None) -> list[SummaryRow]:
    size = (run.plan.export_dir / CHECKPOINT).stat().st_size
    rows = []
    for path in run.plan.records:
        d = json.loads(path.read_text())
        rows.append(SummaryRow(
            run=run.recipe.name, record=path.stem, model=d["model"], bpf=d["bpf_weighted"], is_bound=d["is_bound"],
            steps=d["steps"], minutes=d["wall_time_s"] / 60, batch=d["train_config"]["batch_size"],
            gpu=(d.get("hardware") or {}).get("gpu") or "none (CPU)", budget=d["budget"], export_mb=size / 1e6,
            wall_s=wall_s))
    return rows


def summary_table(rows: list[SummaryRow]) -> str:
    """The summary as a fixed-width text table: run, record, model, bpf (``<=`` for a bound), steps, training
    minutes, batch, GPU, budget, exported MB and the run's wall seconds in this campaign (probe, training,
    export, evaluation; ``-`` for a skipped run)."""
    head = ["run", "record", "model", "bpf", "steps", "minutes", "batch", "GPU", "budget", "export MB", "wall s"]
    body = []
    for r in rows:
        if r.error:
            body.append([r.run, "FAILED", r.error[:60]] + [""] * (len(head) - 3))
            continue
        body.append([r.run, r.record, r.model, f"{'<= ' if r.is_bound else ''}{r.bpf:.3f}", str(r.steps),
                     f"{r.minutes:.2f}", str(r.batch), r.gpu, r.budget, f"{r.export_mb:.2f}",
                     "-" if r.wall_s is None else f"{r.wall_s:.0f}"])
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(row) for row in body])


def _describe(i: int, n: int, run: GpuRun) -> str:
    r, cfg = run.recipe, run.plan.train_config
    batch = {"probe": f"batch: largest that fits, {r.train.batch_size}..{r.gpu.max_batch}",
             "recipe": f"batch {cfg.batch_size} (the recipe's; no probe on CPU)",
             "checkpoint": f"batch {cfg.batch_size} (from the checkpoint)"}[run.batch_source]
    state = "done, skipped" if run.done else ("resumes" if run.plan.checkpoint_step is not None else "fresh")
    budget = f"{cfg.max_minutes:g} min" if cfg.max_minutes is not None else f"{cfg.max_steps} steps"
    return (f"[{i}/{n}] {r.name}{' (quick)' if run.plan.quick else ''}: {r.model} on {r.dataset}, segments of "
            f"{cfg.segment_length} samples, {batch}, {budget}, amp {cfg.amp}, {state}; -> {run.plan.export_dir} "
            f"({r.gpu.export_dtype}) -> {', '.join(str(p) for p in run.plan.records)} [budget {r.budget}]")


def run_campaign(runs: list[GpuRun], progress: bool = False,
                 log: Callable[[str], None] = lambda line: print(line, flush=True)) -> list[SummaryRow]:
    """Run the planned runs in order (see the module docstring): probe the batch on CUDA, train, export, evaluate.
    A run that fails is logged (with its traceback, on stderr) and the next one starts; its row has ``error`` set.

    Returns:
        one row per record written (or found done), one per failed run.
    """
    import torch

    rows: list[SummaryRow] = []
    for i, run in enumerate(runs, 1):
        if run.done:
            log(f"[{i}/{len(runs)}] {run.recipe.name}: finished at step {run.plan.checkpoint_step}, records exist; "
                f"skipped")
            rows += _rows(run, None)
            continue
        t0 = time.monotonic()
        try:
            cfg = run.plan.train_config
            if run.batch_source == "probe":
                log(f"[{i}/{len(runs)}] {run.recipe.name}: probing the batch on {cfg.device} "
                    f"({run.recipe.train.batch_size}..{run.recipe.gpu.max_batch}, peak <= {HEADROOM:.0%} of memory)")
                batch = largest_batch(cuda_fits(cfg, cfg.device, log=log), run.recipe.train.batch_size,
                                      run.recipe.gpu.max_batch)
                run = run.with_batch(batch)
                log(f"[{i}/{len(runs)}] {run.recipe.name}: batch {batch} ({time.monotonic() - t0:.1f} s probing)")
            if not (run.plan.run_dir / CHECKPOINT).exists():
                # a run killed before its first checkpoint left a log: the fresh run starts a new one
                (run.plan.run_dir / METRICS).unlink(missing_ok=True)
            outcome = execute_plan(run.plan, progress=progress, log=log)
            wall = time.monotonic() - t0
            rows += _rows(run, wall)
            log(f"[{i}/{len(runs)}] {run.recipe.name}: done, {outcome.steps} steps, {wall:.0f} s in all")
        except Exception as e:  # noqa: BLE001  (report it and go on with the next run)
            traceback.print_exc(file=sys.stderr)
            log(f"[{i}/{len(runs)}] {run.recipe.name}: FAILED: {type(e).__name__}: {e}")
            rows.append(SummaryRow(run=run.recipe.name, error=f"{type(e).__name__}: {e}"))
        finally:
            if torch.cuda.is_available():
                gc.collect()
                torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m wavelab.campaign.gpu`` (``scripts/gpu_campaign.sh``)."""
    p = argparse.ArgumentParser(prog="python -m wavelab.campaign.gpu", description=__doc__.split("\n\n")[0],
                                epilog="scripts/gpu_campaign.sh OUT_DIR ... [--pack DIR] runs this and can pack "
                                       "OUT_DIR for the way back (see its header)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="exports OUT_DIR/runs/NAME, records OUT_DIR/results/*.json")
    p.add_argument("--minutes", type=float, help="every run's training budget in minutes (default: the recipes', "
                                                 "0.7); ignored with --quick")
    p.add_argument("--quick", action="store_true", help="dry run: tiny models, 4 steps, 2 test utterances")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (only with --quick)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only this recipe (repeatable), one of: {', '.join(CAMPAIGN)}")
    p.add_argument("--work-dir", help="parent of the training run directories, with optimizer state (default "
                                      "OUT_DIR/train)")
    p.add_argument("--progress", action="store_true", help="tqdm progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Plan (checking everything), print a line per run and the time estimate, run, print and write
    ``OUT_DIR/summary.txt``.  Returns 0, 1 when a run failed, 2 when the campaign could not start."""
    from .recipes import RecipeError

    args = build_parser().parse_args(argv)
    try:
        runs = plan_campaign(args.out_dir, args.only, args.work_dir, args.minutes, args.quick, args.device)
    except (GpuCampaignError, RecipeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    budget, note = runs[0].recipe.budget, budget_label(args.device)[1]
    minutes = [r.plan.train_config.max_minutes or 0.0 for r in runs if not r.done]
    print(f"gpu campaign: {len(runs)} run(s) on {args.device}{' (quick dry run)' if args.quick else ''}; records "
          f"labelled budget {budget!r} ({note})", flush=True)
    if not args.quick:
        est = campaign_seconds(minutes)
        print(f"estimated {est / 60:.1f} min: {STARTUP_S} s start-up + per run its training budget, {PROBE_S} s "
              f"probe, {EVAL_S} s export and evaluation ({'within' if est <= BUDGET_S else 'OVER'} the "
              f"{BUDGET_S // 60}-minute budget)", flush=True)
    for i, run in enumerate(runs, 1):
        print(_describe(i, len(runs), run), flush=True)
    rows = run_campaign(runs, progress=args.progress)
    table = summary_table(rows)
    print("\nsummary of the records written:\n" + table, flush=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "summary.txt", lambda f: f.write((table + "\n").encode()))
    failed = [r.run for r in rows if r.error]
    if failed:
        print(f"error: {len(failed)} run(s) failed: {', '.join(failed)}; run the same command again to retry them "
              f"(finished runs are skipped)", file=sys.stderr)
        return 1
    return 0


__all__ = ["BUDGET_S", "CAMPAIGN", "DRY_RUN_NOTE", "EVAL_S", "ExportTooLargeError", "GPU_RECIPES", "GpuCampaignError",
           "GpuRun", "HEADROOM", "MAX_EXPORT_BYTES", "NoBatchFitsError", "PROBE_S", "STARTUP_S", "SummaryRow",
           "budget_label", "campaign_recipes", "campaign_seconds", "check_export_size", "check_out_dir", "cuda_fits",
           "largest_batch", "main", "plan_campaign", "run_campaign", "store_weights", "summary_table", "weights_nbytes"]

if __name__ == "__main__":
    sys.exit(main())
