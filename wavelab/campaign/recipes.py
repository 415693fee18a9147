"""Run recipes as data: one TOML file per training run of the book (``recipes/NAME.toml``), and the code that runs it.

A recipe names a run, the model (a :data:`wavelab.models.REGISTRY` name) and its config overrides (the ``--set``
values of ``python -m wavelab train``), the dataset, the waveform representation, the training settings
(:class:`wavelab.train.TrainConfig` field names), the budget label of its records and the evaluations to write.
:func:`run_recipe` trains it into ``runs/NAME`` (resuming a killed run from its checkpoint; a finished run is not
trained again), exports it into ``results/runs/NAME`` (:func:`wavelab.runs.export_run`) and evaluates the export on
the whole test split of the recipe's dataset, writing one results record per evaluation
(:func:`wavelab.report.records.record_from_run`).  ``python -m wavelab campaign RECIPE ...`` runs recipes from the
command line; ``scripts/cpu_budget_runs.sh NAME ...`` runs ``recipes/NAME.toml``.

The format (every key below is required unless marked optional; unknown keys are errors)::

    name = "vrnn-s64"              # the run's name: must equal the file's stem; runs/NAME, results/runs/NAME
    model = "vrnn"                 # registry name
    dataset = "timit"              # one of wavelab.data.DATASETS (a corpus, or "timit+librispeech": both joined)
    representation = "mulaw"       # one of REPRESENTATIONS; reaches the model's config field `representation`
    budget = "cpu-budget"          # the records' budget label, one of wavelab.report.records.BUDGETS

    [model_overrides]              # optional: fields of the model's config dataclass, as `--set KEY=VALUE`
    s = 64                         # (TOML arrays become tuples)

    [train]                        # TrainConfig fields (see TRAIN_KEYS), plus `threads`
    segment_length = 32000
    batch_size = 4
    seed = 0
    max_minutes = 14               # and/or max_steps: at least one
    eval_every = 500
    checkpoint_minutes = 5
    threads = 1

    [[evaluations]]                # one or more: a record results/<record>.json of the test split
    record = "vrnn-timit-s64"
    [[evaluations]]
    record = "vrnn-timit-s64-iw"
    iw_samples = 10                # optional: the importance-weighted bound with K samples (latent models)
    [[evaluations]]
    record = "vrnn-librispeech-s64"
    dataset = "librispeech"        # optional: the test split of another corpus (default: the recipe's dataset;
                                   # required when the recipe's dataset is a joined one)

    [gpu]                          # optional: read only by the GPU campaign (wavelab.campaign.gpu)
    max_batch = 64                 # on CUDA, train with the largest batch that fits (gpu.largest_batch), from
                                   # train.batch_size up to this cap (>= train.batch_size)
    export_dtype = "float16"       # optional, one of EXPORT_DTYPES (default "float32"): the exported weights'
                                   # dtype; the records evaluate the weights as stored

A ``[train]`` key that is left out takes :class:`~wavelab.train.TrainConfig`'s default (TOML has no null, so a
setting whose default is a number cannot be switched off from a recipe).  The training device is not part of a
recipe: it is chosen when the recipe runs (``--device``, default ``auto``).  ``python -m wavelab campaign`` ignores
the ``[gpu]`` table (it trains at ``train.batch_size`` and exports float32 weights); :mod:`wavelab.campaign.gpu` applies
it (a copy of the recipe with the probed batch, and the plan's ``after_export`` and ``notes``, see :class:`RecipePlan`).

Quick mode (``run_recipe(..., quick=True)``, ``campaign --quick``) is a CPU dry run of a recipe's whole path for tests
and CI; it changes exactly these things, and nothing else:

* the model config: the recipe's ``model_overrides`` with the model's ``quick_overrides()`` on top (the tiny sizes
  win, so the dry run stays small whatever the recipe's sizes; settings the quick overrides do not name, such as the
  stack size ``s``, the CW-VAE's ``L`` or SaShiMi's ``head``, stay the recipe's);
* training (:data:`QUICK_TRAIN`): ``max_steps`` = 4 and no ``max_minutes``, ``segment_length`` = 2,000, a log line and
  a checkpoint every 2 steps and no checkpoints by time, and, when the recipe has ``eval_every`` or
  ``eval_every_minutes``, one validation evaluation at the last step on ``eval_subset`` = 1 utterance;
* evaluation: only the first :data:`QUICK_LIMIT` utterances of the test split (noted in the record, so
  :func:`wavelab.report.records.select` leaves it out of full-split tables);
* protection: a quick run refuses (``ValueError``, before training) to replace an exported run or a record in
  ``results_dir`` that belongs to a different run, so ``--quick`` never overwrites the committed results.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import tomllib

#: waveform representations a recipe can name (:data:`wavelab.representations.REPRESENTATIONS`): ``"mulaw"``, the
#: corpus's 16-bit PCM mu-law companded to the model's ``bits`` (8 for SaShiMi's categorical head, 16 otherwise);
#: ``"linear"``, 16-bit linear PCM codes; ``"pcm16"``, a pmf over the int16 values with companded input.  A recipe's
#: representation other than ``"mulaw"`` becomes the model override ``representation`` (:meth:`Recipe.overrides`),
#: so a mu-law recipe's run is exactly what it was before representations existed.
from ..representations import REPRESENTATIONS  # noqa: E402
from ..runs import CHECKPOINT, CONFIG
from ..train import TrainConfig, identity_diffs

#: the ``[train]`` keys: their type (``int``, ``float`` or ``str``) and whether a recipe must give them.  All are
#: :class:`~wavelab.train.TrainConfig` fields except ``threads`` (torch CPU threads for training and evaluation).
#: TrainConfig's ``model``, ``model_overrides`` and ``dataset`` come from the recipe's top level, ``run_dir`` is
#: ``runs_dir/NAME`` and ``device`` is chosen at run time.
TRAIN_KEYS: dict[str, tuple[type, bool]] = {
    "segment_length": (int, True), "batch_size": (int, True), "seed": (int, True),
    "max_steps": (int, False), "max_minutes": (float, False), "clock": (str, False), "lr": (float, False),
    "eval_every": (int, False), "eval_every_minutes": (float, False), "eval_subset": (int, False), "checkpoint_minutes": (float, False),
    "checkpoint_every": (int, False), "log_every": (int, False), "grad_clip": (float, False), "amp": (str, False),
    "threads": (int, False),
}
#: TrainConfig fields a recipe's ``[train]`` table does not hold (see :data:`TRAIN_KEYS`).
NOT_TRAIN_KEYS = ("model", "model_overrides", "dataset", "run_dir", "device")

#: what quick mode sets in the TrainConfig (``eval_every`` becomes ``max_steps`` when the recipe has one).
QUICK_TRAIN: dict[str, Any] = {"max_steps": 4, "max_minutes": None, "segment_length": 2_000, "log_every": 2,
                               "checkpoint_every": 2, "checkpoint_minutes": None, "eval_subset": 1}
#: utterances of the test split a quick run evaluates.
QUICK_LIMIT = 2
#: the split every evaluation of a recipe reads, and the evaluation seed (``python -m wavelab evaluate``'s default).
EVAL_SPLIT = "test"
EVAL_SEED = 0

#: the dtypes a ``[gpu]`` table's ``export_dtype`` can name (the floating weights of the exported checkpoint).
EXPORT_DTYPES = ("float32", "float16")

_TOP_KEYS: dict[str, tuple[type, bool]] = {
    "name": (str, True), "model": (str, True), "dataset": (str, True), "representation": (str, True),
    "budget": (str, True), "model_overrides": (dict, False), "train": (dict, True), "evaluations": (list, True),
    "gpu": (dict, False),
}
_EVAL_KEYS: dict[str, tuple[type, bool]] = {"record": (str, True), "iw_samples": (int, False), "dataset": (str, False)}
_GPU_KEYS: dict[str, tuple[type, bool]] = {"max_batch": (int, True), "export_dtype": (str, False)}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", dict: "a table", list: "an array of tables"}


class RecipeError(ValueError):
    """A recipe file that cannot be run: unreadable, not TOML, an unknown, missing or mistyped key, an unknown model,
    dataset, representation or budget, or a value its model or TrainConfig rejects.  The message is one line,
    ``"<file>: <key>: <problem>"``; attributes ``path`` (the file) and ``key`` (dotted, e.g. ``"train.batch_size"``,
    ``"evaluations[1].iw_samples"``; ``""`` for the file as a whole)."""

    def __init__(self, path: str | Path, key: str, problem: str):
        self.path, self.key, self.problem = Path(path), key, problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


@dataclass
class RecipeEvaluation:
    """One evaluation of a recipe's trained run on the test split of a corpus.

    Attributes:
        record: file name of the record without ``.json``, written as ``results_dir/<record>.json``.
        iw_samples: the importance-weighted bound with this many posterior samples (latent variable models) instead
            of the model's own figure (``None``).
        dataset: the corpus whose test split is evaluated (``None``: the recipe's own): a model heard on speech of
            another corpus.  The record's ``dataset`` is this one; its ``train_config`` names the training corpus.
    """

    record: str
    iw_samples: int | None = None
    dataset: str | None = None


@dataclass
class TrainSettings:
    """A recipe's ``[train]`` table: :class:`~wavelab.train.TrainConfig` fields (same names, units and defaults: a
    key the recipe leaves out takes TrainConfig's default) plus ``threads``.

    Attributes:
        segment_length: samples per training segment.
        batch_size: segments per step.
        seed: the training seed.
        max_steps / max_minutes: the run's total budget in optimizer steps / minutes on ``clock`` (at least one).
        clock: ``"wall"`` or ``"cpu"`` (training CPU-minutes, validation excluded), as TrainConfig.
        lr, eval_every, eval_every_minutes, eval_subset, checkpoint_minutes, checkpoint_every, log_every, grad_clip, amp: as TrainConfig.
        threads: torch CPU threads for training and evaluation (``None``: torch's default).
    """

    segment_length: int
    batch_size: int
    seed: int
    max_steps: int | None = TrainConfig.max_steps
    max_minutes: float | None = TrainConfig.max_minutes
    clock: str = TrainConfig.clock
    lr: float = TrainConfig.lr
    eval_every: int | None = TrainConfig.eval_every
    eval_every_minutes: float | None = TrainConfig.eval_every_minutes
    eval_subset: int = TrainConfig.eval_subset
    checkpoint_minutes: float | None = TrainConfig.checkpoint_minutes
    checkpoint_every: int | None = TrainConfig.checkpoint_every
    log_every: int = TrainConfig.log_every
    grad_clip: float | None = TrainConfig.grad_clip
    amp: str = TrainConfig.amp
    threads: int | None = None


@dataclass
class GpuSettings:
    """A recipe's ``[gpu]`` table, read by the GPU campaign (:mod:`wavelab.campaign.gpu`) only.

    Attributes:
        max_batch: on CUDA the run trains with the largest batch (segments per step) that fits, found by
            :func:`wavelab.campaign.gpu.largest_batch` from ``train.batch_size`` up to this cap (>=
            ``train.batch_size``); on CPU, ``train.batch_size``.
        export_dtype: the dtype of the exported checkpoint's floating weights, one of :data:`EXPORT_DTYPES`
            (``"float16"`` halves the file; the records evaluate the weights as stored).
    """

    max_batch: int
    export_dtype: str = "float32"


@dataclass
class Recipe:
    """One training run of the book with its evaluations (see the module docstring for the file format).

    Attributes:
        name: the run's name (the recipe file's stem): trained into ``runs_dir/NAME``, exported into
            ``results_dir/runs/NAME``.
        model: registry name (:data:`wavelab.models.REGISTRY`).
        dataset: one of :data:`wavelab.data.DATASETS` (a corpus or a joined data set).
        representation: one of :data:`REPRESENTATIONS`.
        budget: the budget label of its records (``"cpu-budget"`` or ``"gpu"``).
        train: the training settings.
        evaluations: the records to write, at least one.
        model_overrides: fields of the model's config to change from the paper's defaults (``--set`` values).
        path: the file it was read from (``None`` for a recipe built in code).
        gpu: the ``[gpu]`` table (``None``: none), for :mod:`wavelab.campaign.gpu`.
    """

    name: str
    model: str
    dataset: str
    representation: str
    budget: str
    train: TrainSettings
    evaluations: list[RecipeEvaluation]
    model_overrides: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    gpu: GpuSettings | None = None

    def overrides(self, quick: bool = False) -> dict[str, Any]:
        """The model config overrides a run uses: the recipe's (with ``representation`` set from the recipe's
        representation when it is not ``"mulaw"``), or in quick mode the same with the model's ``quick_overrides()``
        on top."""
        base = dict(self.model_overrides)
        if self.representation != "mulaw":
            base.setdefault("representation", self.representation)
        if not quick:
            return base
        from ..models import REGISTRY

        return {**base, **REGISTRY[self.model][0].quick_overrides()}

    def train_config(self, runs_dir: str | Path = "runs", quick: bool = False,
                     device: str | None = None) -> TrainConfig:
        """The :class:`~wavelab.train.TrainConfig` of this recipe's run in ``runs_dir/NAME`` on ``device``
        (``None``: ``"auto"``); ``quick`` applies :data:`QUICK_TRAIN` and the quick model overrides."""
        settings = {k: v for k, v in dataclasses.asdict(self.train).items() if k != "threads"}
        cfg = TrainConfig(model=self.model, model_overrides=self.overrides(quick), dataset=self.dataset,
                          run_dir=str(Path(runs_dir) / self.name), device=device or "auto", **settings)
        if quick:
            cfg = dataclasses.replace(cfg, **QUICK_TRAIN)
            if self.train.eval_every is not None or self.train.eval_every_minutes is not None:
                cfg.eval_every, cfg.eval_every_minutes = cfg.max_steps, None
        return cfg

    def record_paths(self, results_dir: str | Path = "results") -> list[Path]:
        """``results_dir/<record>.json`` of every evaluation, in order."""
        return [Path(results_dir) / f"{e.record}.json" for e in self.evaluations]

    @property
    def source(self) -> str:
        """How records name this recipe: its path relative to the project (``recipes/NAME.toml``) when it lies
        inside it, else its absolute path; ``"recipe NAME (built in code)"`` without a path."""
        if self.path is None:
            return f"recipe {self.name} (built in code)"
        from ..settings import PROJECT_ROOT

        p = Path(self.path).resolve()
        try:
            return str(p.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(p)


# --------------------------------------------------------------------------------------------------------------------
# loading


def _check_keys(table: dict[str, Any], spec: dict[str, tuple[type, bool]], path: Path, prefix: str) -> dict[str, Any]:
    """Unknown, missing and mistyped keys of ``table`` against ``spec``; returns the values (ints as floats where a
    number is expected)."""
    where = lambda k: f"{prefix}{k}"  # noqa: E731
    for k in table:
        if k not in spec:
            raise RecipeError(path, where(k), f"unknown key; known keys{' of ' + prefix[:-1] if prefix else ''}: "
                                              f"{', '.join(spec)}")
    out = {}
    for k, (typ, required) in spec.items():
        if k not in table:
            if required:
                raise RecipeError(path, where(k), "missing key")
            continue
        v = table[k]
        ok = isinstance(v, typ) and not isinstance(v, bool)
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            ok, v = True, float(v)
        if not ok:
            raise RecipeError(path, where(k), f"must be {_TYPE_WORDS[typ]}, got {type(v).__name__} {v!r}")
        out[k] = v
    return out


def _tuples(v: Any) -> Any:
    """TOML arrays as tuples (what ``--set KEY=(1,2)`` gives), recursively."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _check_model(path: Path, model: str, overrides: dict[str, Any]) -> None:
    from ..models import REGISTRY, UnknownModelError, check_model_name, config_for

    try:
        check_model_name(model)
    except UnknownModelError as e:
        raise RecipeError(path, "model", str(e)) from e
    fields = [f.name for f in dataclasses.fields(REGISTRY[model][0])]
    for k, v in overrides.items():
        if k not in fields:
            raise RecipeError(path, f"model_overrides.{k}", f"{model} has no such setting; its settings are: "
                                                            f"{', '.join(fields)}")
        if isinstance(v, dict):
            raise RecipeError(path, f"model_overrides.{k}", f"must be a value, got a table {v!r}")
    try:
        config_for(model, **overrides)
    except (TypeError, ValueError) as e:
        raise RecipeError(path, "model_overrides", f"invalid for {model}: {e}") from e


def _check_train(path: Path, cfg: TrainConfig, threads: int | None) -> None:
    if cfg.max_steps is None and cfg.max_minutes is None:
        raise RecipeError(path, "train", "needs a budget: max_minutes and/or max_steps")
    if threads is not None and threads < 1:
        raise RecipeError(path, "train.threads", f"must be >= 1, got {threads}")
    try:
        cfg.validate()
    except ValueError as e:
        m = re.search(r"TrainConfig\.(\w+)", str(e))
        raise RecipeError(path, f"train.{m.group(1)}" if m else "train", str(e)) from e


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate one recipe file (TOML, see the module docstring).

    Everything that can be checked without data or training is checked here, so a campaign fails before its first
    run starts: the keys and their types, the name (the file's stem), the model and its overrides (the model's config
    is built), the dataset, representation and budget, the training settings (:meth:`TrainConfig.validate`), and the
    evaluations (unique plain record names; ``iw_samples`` >= 1 and only for a model with an importance-weighted
    bound).

    Returns:
        the :class:`Recipe`, with ``path`` set.
    Raises:
        RecipeError: the file is missing or not TOML, or any check fails; the message names the file and the key.
    """
    from ..data import DATASETS
    from ..report.records import BUDGETS

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(path, "", "no such recipe file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(path, "", f"cannot read it ({e})") from e
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(path, "", f"not valid TOML ({e})") from e

    top = _check_keys(raw, _TOP_KEYS, path, "")
    name = top["name"]
    if not _NAME.fullmatch(name) or name != path.stem:
        raise RecipeError(path, "name", f"must equal the file's stem {path.stem!r} (letters, digits, '.', '_', '-'), "
                                        f"got {name!r}")
    if top["dataset"] not in DATASETS:
        raise RecipeError(path, "dataset", f"unknown dataset {top['dataset']!r}; known datasets: {', '.join(DATASETS)}")
    if top["representation"] not in REPRESENTATIONS:
        raise RecipeError(path, "representation", f"unknown representation {top['representation']!r}; known: "
                                                  f"{', '.join(REPRESENTATIONS)}")
    if top["budget"] not in BUDGETS:
        raise RecipeError(path, "budget", f"unknown budget {top['budget']!r}; known: {', '.join(BUDGETS)}")
    overrides = {k: _tuples(v) for k, v in top.get("model_overrides", {}).items()}
    if "representation" in overrides and overrides["representation"] != top["representation"]:
        raise RecipeError(path, "model_overrides.representation",
                          f"{overrides['representation']!r} contradicts the recipe's representation "
                          f"{top['representation']!r}; set it once, at the top level")
    if top["representation"] != "mulaw":
        overrides["representation"] = top["representation"]
    _check_model(path, top["model"], overrides)

    settings = TrainSettings(**_check_keys(top["train"], TRAIN_KEYS, path, "train."))
    evaluations = _evaluations(path, top["evaluations"], top["model"], top["dataset"])
    gpu = None
    if "gpu" in top:
        gpu = GpuSettings(**_check_keys(top["gpu"], _GPU_KEYS, path, "gpu."))
        if gpu.max_batch < settings.batch_size:
            raise RecipeError(path, "gpu.max_batch", f"must be >= train.batch_size ({settings.batch_size}), the "
                                                     f"batch the probe starts from; got {gpu.max_batch}")
        if gpu.export_dtype not in EXPORT_DTYPES:
            raise RecipeError(path, "gpu.export_dtype", f"unknown dtype {gpu.export_dtype!r}; known: "
                                                        f"{', '.join(EXPORT_DTYPES)}")

    recipe = Recipe(name=name, model=top["model"], dataset=top["dataset"], representation=top["representation"],
                    budget=top["budget"], train=settings, evaluations=evaluations, model_overrides=overrides,
                    path=path, gpu=gpu)
    _check_train(path, recipe.train_config(), settings.threads)
    return recipe


def _evaluations(path: Path, tables: list, model: str, dataset: str) -> list[RecipeEvaluation]:
    """A recipe's ``[[evaluations]]``, checked: at least one, each a table of known keys, unique plain record names,
    a known corpus (named by every evaluation of a recipe that trains on a joined data set: a record is of one
    corpus's test split), ``iw_samples`` >= 1 and only for a model with an importance-weighted bound.

    Raises:
        RecipeError: naming the file and the evaluation's key.
    """
    from ..data import CORPORA
    from ..models import REGISTRY

    if not tables:
        raise RecipeError(path, "evaluations", "needs at least one [[evaluations]] table")
    evaluations: list[RecipeEvaluation] = []
    for i, table in enumerate(tables):
        key = f"evaluations[{i}]"
        if not isinstance(table, dict):
            raise RecipeError(path, key, f"must be a table, got {type(table).__name__} {table!r}")
        ev = RecipeEvaluation(**_check_keys(table, _EVAL_KEYS, path, f"{key}."))
        if not _NAME.fullmatch(ev.record) or ev.record.endswith(".json"):
            raise RecipeError(path, f"{key}.record", f"must be a plain file name without '.json' "
                                                     f"(letters, digits, '.', '_', '-'), got {ev.record!r}")
        if ev.record in [e.record for e in evaluations]:
            raise RecipeError(path, f"{key}.record", f"{ev.record!r} is written by an earlier evaluation")
        if ev.dataset is None and dataset not in CORPORA:
            raise RecipeError(path, f"{key}.dataset", f"the recipe trains on the joined data set {dataset!r}: name "
                                                      f"the corpus whose test split this record measures, one of "
                                                      f"{', '.join(CORPORA)}")
        if ev.dataset is not None and ev.dataset not in CORPORA:
            raise RecipeError(path, f"{key}.dataset", f"unknown dataset {ev.dataset!r}; known datasets: "
                                                      f"{', '.join(CORPORA)}")
        if ev.iw_samples is not None and ev.iw_samples < 1:
            raise RecipeError(path, f"{key}.iw_samples", f"must be >= 1, got {ev.iw_samples}")
        if ev.iw_samples is not None and not REGISTRY[model][1].has_iw_bound:
            raise RecipeError(path, f"{key}.iw_samples", f"{model} has no importance-weighted bound (no latent "
                                                         f"variables)")
        evaluations.append(ev)
    return evaluations


def load_recipes(paths: list[str | Path]) -> list[Recipe]:
    """:func:`load_recipe` of every path, then the checks across them: no two recipes with the same name (one run
    directory) or writing the same record.

    Raises:
        RecipeError: as :func:`load_recipe`, or a clash (naming the later file and its key).
    """
    recipes = [load_recipe(p) for p in paths]
    names: dict[str, Path] = {}
    records: dict[str, Path] = {}
    for r in recipes:
        if r.name in names:
            raise RecipeError(r.path, "name", f"{r.name!r} is also the name of {names[r.name]} (one run directory)")
        names[r.name] = r.path
        for i, e in enumerate(r.evaluations):
            if e.record in records:
                raise RecipeError(r.path, f"evaluations[{i}].record", f"{e.record!r} is also written by "
                                                                      f"{records[e.record]}")
            records[e.record] = r.path
    return recipes


# --------------------------------------------------------------------------------------------------------------------
# running


@dataclass
class RecipePlan:
    """What :func:`run_recipe` will do for a recipe, worked out (and checked) before any training.

    Attributes:
        recipe: the recipe.
        train_config: the run's TrainConfig (quick settings applied).
        run_dir: where it trains (``runs_dir/NAME``).
        export_dir: where it is exported (``results_dir/runs/NAME``).
        records: the record files, one per evaluation.
        checkpoint_step: the step of the checkpoint in ``run_dir`` (``None``: a fresh run).
        finished: the checkpoint has reached the budget (``max_steps`` or ``max_minutes``): training is skipped.
        quick: quick mode (see the module docstring).
        limit: utterances of the test split evaluated (``None``: all).
        notes: text appended to every record's ``notes`` (``""``: none).
        after_export: called with the export directory after the export and before any evaluation (``None``:
            nothing); it may rewrite the export (the evaluations read what it leaves) and raise to stop the run
            before any record is written.
        evaluate_missing: neither train nor export: evaluate the existing export for the evaluations whose record
            file is missing (the others are kept as they are).
    """

    recipe: Recipe
    train_config: TrainConfig
    run_dir: Path
    export_dir: Path
    records: list[Path]
    checkpoint_step: int | None
    finished: bool
    quick: bool
    limit: int | None
    notes: str = ""
    after_export: Callable[[Path], None] | None = None
    evaluate_missing: bool = False

    def describe(self) -> str:
        """One line: the run, its model and data, the budget, what happens to the run directory, and the outputs."""
        cfg = self.train_config
        budget = " and ".join(b for b in (f"{cfg.max_minutes:g} min" if cfg.max_minutes is not None else "",
                                          f"{cfg.max_steps} steps" if cfg.max_steps is not None else "") if b)
        state = ("fresh run" if self.checkpoint_step is None else
                 f"finished at step {self.checkpoint_step}, not retrained" if self.finished else
                 f"resumes from step {self.checkpoint_step}")
        if self.evaluate_missing:
            missing = [str(p) for p in self.records if not p.exists()]
            return (f"{self.recipe.name}: evaluate the export {self.export_dir} (no training) -> "
                    f"{', '.join(missing) or 'nothing: every record exists'}")
        return (f"{self.recipe.name}{' (quick)' if self.quick else ''}: {cfg.model} on {cfg.dataset} "
                f"({self.recipe.representation}), budget {budget}, {self.run_dir} ({state}) -> {self.export_dir} -> "
                f"{', '.join(str(p) for p in self.records)}")


def plan_recipe(recipe: Recipe, runs_dir: str | Path = "runs", results_dir: str | Path = "results",
                quick: bool = False, device: str | None = None,
                records_dir: str | Path | None = None, evaluate_missing: bool = False) -> RecipePlan:
    """Work out and check what :func:`run_recipe` will do, without training: reads the checkpoint in
    ``runs_dir/NAME`` when there is one.  The export goes to ``results_dir/runs/NAME`` and the records to
    ``records_dir`` (``None``: ``results_dir``).  With ``evaluate_missing`` the plan neither trains nor exports: it
    evaluates the existing export for the evaluations whose record is missing (one added to a finished recipe).

    Raises:
        ValueError: ``runs_dir/NAME`` holds a checkpoint of a different run (other model, overrides, data, segment
            length, batch size, lr or seed); ``device`` is ``"cuda"`` without CUDA; in quick mode, the export
            directory or a record file holds a different run's output (quick mode does not replace it); with
            ``evaluate_missing``, the export is missing or holds a different run.
    """
    import torch

    cfg = recipe.train_config(runs_dir, quick=quick, device=device)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{recipe.source}: device {cfg.device!r} asked for, but CUDA is not available; "
                         f"use --device cpu or auto")
    run_dir, export_dir = Path(cfg.run_dir), Path(results_dir) / "runs" / recipe.name
    step, finished = None, False
    if (run_dir / CHECKPOINT).exists():
        ckpt = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
        diffs = identity_diffs(ckpt["train_config"], cfg)
        if diffs:
            raise ValueError(f"{run_dir} holds a checkpoint of a different run than {recipe.source}"
                             f"{' (quick)' if quick else ''} ({'; '.join(diffs)}); use another runs directory")
        step = int(ckpt["step"])
        spent_s = float(ckpt.get("train_cpu_s", ckpt["wall_s"]) if cfg.clock == "cpu" else ckpt["wall_s"])
        finished = ((cfg.max_steps is not None and step >= cfg.max_steps)
                    or (cfg.max_minutes is not None and spent_s >= cfg.max_minutes * 60))
    records = recipe.record_paths(results_dir if records_dir is None else records_dir)
    if quick:
        _check_quick_targets(recipe, cfg, export_dir, records)
    if evaluate_missing:
        _check_export(recipe, cfg, export_dir)
    return RecipePlan(recipe=recipe, train_config=cfg, run_dir=run_dir, export_dir=export_dir, records=records,
                      checkpoint_step=step, finished=finished, quick=quick, limit=QUICK_LIMIT if quick else None,
                      evaluate_missing=evaluate_missing)


def _check_export(recipe: Recipe, cfg: TrainConfig, export_dir: Path) -> None:
    """The export that ``evaluate_missing`` reads exists and is this recipe's run."""
    try:
        saved = json.loads((export_dir / CONFIG).read_text()).get("train_config") or {}
    except (OSError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{recipe.source}: no readable export at {export_dir} to evaluate ({e}); run the recipe "
                         f"without --evaluate-missing to train and export it") from e
    diffs = identity_diffs(saved, cfg)
    if diffs:
        raise ValueError(f"{export_dir} holds an export of a different run than {recipe.source} ({'; '.join(diffs)})")


def _check_quick_targets(recipe: Recipe, cfg: TrainConfig, export_dir: Path, records: list[Path]) -> None:
    """A quick run replaces only its own earlier output: refuse an export or record of a different run."""
    targets = [(export_dir, export_dir / CONFIG, "holds an export")] + [(p, p, "is a record") for p in records]
    for target, source, what in targets:
        if not target.exists():
            continue
        try:
            saved = json.loads(source.read_text()).get("train_config") or {}
        except (json.JSONDecodeError, OSError, AttributeError) as e:
            raise ValueError(f"{target} exists and is not readable JSON ({e}); a quick run of {recipe.source} does "
                             f"not replace it: give another results directory") from e
        diffs = identity_diffs(saved, cfg)
        if diffs:
            raise ValueError(f"{target} {what} of a different run ({'; '.join(diffs)}); a quick run of "
                             f"{recipe.source} does not replace it: give another results directory")


@dataclass
class RecipeOutcome:
    """What :func:`run_recipe` did.

    Attributes:
        name: the recipe's name.
        run_dir / export_dir: the run directory and its export.
        trained: False when the run had already finished (no step was taken).
        steps: optimizer steps of the run in total.
        stopped_by: ``"max_steps"`` or ``"max_minutes"`` when it trained, else ``None``.
        records: the record files written, one per evaluation (with ``evaluate_missing``: the ones written).
        bpf: the weighted bits per frame of each record, in order.
    """

    name: str
    run_dir: Path
    export_dir: Path
    trained: bool
    steps: int
    stopped_by: str | None
    records: list[Path]
    bpf: list[float]


def run_recipe(recipe: Recipe, runs_dir: str | Path = "runs", results_dir: str | Path = "results",
               quick: bool = False, device: str | None = None, progress: bool = False,
               log: Callable[[str], None] | None = None) -> RecipeOutcome:
    """Train, export and evaluate one recipe.

    1. Train into ``runs_dir/NAME`` with :func:`wavelab.train.train`: a fresh run, or a resume from the checkpoint
       there (a killed run continues where its checkpoint left it); a run whose checkpoint has reached the budget is
       not trained again.
    2. Export it (without optimizer state) into ``results_dir/runs/NAME`` (:func:`wavelab.runs.export_run`).
    3. For every evaluation, evaluate the export on the test split of the dataset (the recipe's, or the
       evaluation's own ``dataset``; all utterances; the first
       :data:`QUICK_LIMIT` in quick mode) with seed :data:`EVAL_SEED`, and write ``results_dir/<record>.json``
       atomically (:func:`wavelab.report.records.record_from_run`, budget from the recipe); the record's ``notes`` name
       the recipe file (:attr:`Recipe.source`).

    Args:
        recipe: from :func:`load_recipe`.
        runs_dir: the parent of run directories.
        results_dir: where the export (``runs/NAME``) and the records go.
        quick: the CPU dry run of the module docstring (tiny model, 4 steps, 2 utterances).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (``None``: ``"auto"``, CUDA when available), for
            training and evaluation.
        progress: tqdm progress bars.
        log: called with a line for each thing done (e.g. ``print``); ``None``: silent.
    Returns:
        :class:`RecipeOutcome`.
    Raises:
        ValueError: as :func:`plan_recipe`, or from training or evaluation (invalid settings, no data).
        FileNotFoundError: the dataset's data is missing.
        wavelab.train.NonFiniteLossError: the loss became NaN (the last good checkpoint is kept).
    """
    return execute_plan(plan_recipe(recipe, runs_dir, results_dir, quick=quick, device=device), progress=progress,
                        log=log)


def execute_plan(plan: RecipePlan, progress: bool = False, log: Callable[[str], None] | None = None) -> RecipeOutcome:
    """Carry out a :class:`RecipePlan` (steps 1-3 of :func:`run_recipe`, which see)."""
    import torch

    from ..data import load_split
    from ..evaluate import evaluate
    from ..report.records import record_from_run, write_record
    from ..runs import export_run, hardware_info
    from ..train import load_run, train

    say = log or (lambda line: None)
    recipe, cfg = plan.recipe, plan.train_config
    threads_before = torch.get_num_threads()
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    try:
        trained, stopped_by, steps = False, None, plan.checkpoint_step
        if plan.evaluate_missing:
            say(f"  {plan.export_dir}: evaluating the export for the records that are missing")
        else:
            if plan.finished:
                say(f"  {plan.run_dir}: finished at step {steps}; not trained again")
            else:
                summary = train(cfg, progress=progress)
                trained, stopped_by, steps = True, summary.stopped_by, summary.steps
                say(f"  trained {plan.run_dir}: {summary.steps} steps, {summary.frames_seen:,} frames, "
                    f"{summary.wall_s:.0f} s, last loss {summary.final_bpf:.3f} bpf (stopped by {summary.stopped_by})")
            export_run(plan.run_dir, plan.export_dir)
            say(f"  exported {plan.run_dir} to {plan.export_dir}")
            if plan.after_export is not None:
                plan.after_export(plan.export_dir)

        eval_device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        model, run_cfg, meta = load_run(plan.export_dir, device=eval_device)
        steps = meta["step"] if plan.evaluate_missing else steps
        base_notes = f"recipe {recipe.source}" + (" (quick dry run, wavelab.campaign.recipes.QUICK_TRAIN)"
                                                  if plan.quick else "")
        if plan.notes:
            base_notes += f"; {plan.notes}"
        bpfs, written, splits = [], [], {}
        for ev_spec, path in zip(recipe.evaluations, plan.records):
            if plan.evaluate_missing and path.exists():
                say(f"  {path} exists; kept")
                continue
            dataset = ev_spec.dataset or recipe.dataset
            if dataset not in splits:  # read once: evaluations of one corpus share its decoded audio
                splits[dataset] = load_split(dataset, EVAL_SPLIT)
            utterances = splits[dataset][: plan.limit]
            estimator = model.estimator(ev_spec.iw_samples)
            ev = evaluate(model, utterances, device=eval_device, progress=progress, iw_samples=ev_spec.iw_samples,
                          seed=EVAL_SEED)
            notes = base_notes
            if plan.limit is not None:
                notes += f"; first {len(utterances)} utterances of the split only"
            if dataset != recipe.dataset:
                notes += f"; trained on {recipe.dataset}, evaluated on {dataset}"
            if plan.evaluate_missing:  # the record's hardware is the training machine's
                notes += f"; evaluated after training, on {hardware_info()['cpu']}"
            record = record_from_run(plan.export_dir, ev, model_name=run_cfg.model,
                                     model_config=meta["model_config"], meta=meta, dataset=dataset,
                                     split=EVAL_SPLIT, split_utterances=len(splits[dataset]),
                                     estimator=estimator, eval_seed=EVAL_SEED,
                                     budget=recipe.budget, notes=notes)
            write_record(record, path)
            bpfs.append(ev.bpf.weighted)
            written.append(path)
            say(f"  wrote {path}: {run_cfg.model} on {dataset} {EVAL_SPLIT} ({estimator}): {ev.bpf}")
    finally:
        torch.set_num_threads(threads_before)
    return RecipeOutcome(name=recipe.name, run_dir=plan.run_dir, export_dir=plan.export_dir, trained=trained,
                         steps=int(steps or 0), stopped_by=stopped_by, records=written, bpf=bpfs)


__all__ = ["EVAL_SEED", "EVAL_SPLIT", "EXPORT_DTYPES", "NOT_TRAIN_KEYS", "QUICK_LIMIT", "QUICK_TRAIN",
           "REPRESENTATIONS", "TRAIN_KEYS", "GpuSettings", "Recipe", "RecipeError", "RecipeEvaluation",
           "RecipeOutcome", "RecipePlan", "TrainSettings", "execute_plan", "load_recipe", "load_recipes",
           "plan_recipe", "run_recipe"]
