"""Result records with provenance: what every table and finding of the book is rendered from (never typed by hand).

A :class:`ResultRecord` is one evaluated number: a model (registry name and config) on a dataset split, in bits per
frame (bpf, both the length-weighted figure of Havtorn et al.'s eq. 11 and the per-utterance mean), whether it is a
bound (negative ELBO), how much training it got (steps, frames, wall time), on what hardware, from which commit, with
which seed, and under which budget ("cpu-budget" for the small runs this project can afford on a CPU, "cpu-equal"
for the equal-budget campaign, where every run got the same CPU-minutes on one thread (``recipes/equal/``),
"cpu-hour" for the hour campaign, the same runs for 60 CPU-minutes (``recipes/hour/``), "gpu" for paper-scale
runs).  Records are JSON files, usually under ``results/``.

:func:`select` is the one query over records; it reads only the records it is given.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import run_label
from ..runs import atomic_write_json, git_commit, hardware_info, read_run_config

BUDGETS = ("cpu-budget", "cpu-equal", "cpu-hour", "gpu")


@dataclass
class ResultRecord:
    """One evaluated result.

    Attributes:
        model: registry name (``"wavenet"``, ...) or a baseline's name (``"uniform"``, ``"dmol"``, ``"flac"``).
        config: the model's config as a dict (paper symbols: Dc, s, L, Dz, ...).
        dataset: ``"timit"`` or ``"librispeech"``.
        split: the evaluated split (``"test"``, ...).
        bpf_weighted: bits per frame, total bits over total frames (eq. 11).
        bpf_mean: mean over utterances of per-utterance bits per frame.
        is_bound: True for a negative-ELBO figure (an upper bound, shown with "<=").
        steps: training steps (0 for baselines).
        frames_seen: training frames seen (samples).
        wall_time_s: training wall-clock time in seconds.
        hardware: :func:`hardware_info` of the machine that trained/evaluated.
        commit: :func:`git_commit` at evaluation time (``{"hash": ..., "dirty": ...}``).
        seed: the training seed.
        budget: ``"cpu-budget"``, ``"cpu-equal"`` (the same CPU-minutes per run, see ``recipes/equal/``),
            ``"cpu-hour"`` (those runs for 60 CPU-minutes, ``recipes/hour/``) or ``"gpu"``.
        created: UTC time of the record, ISO 8601.
        run_dir: the training run's directory (``None`` for baselines).
        notes: free text.
        utterances: number of evaluated utterances.
        split_utterances: number of utterances in the evaluated split, so that a record of part of a split
            (``evaluate --limit``) is told apart from one of the whole split without reading the data.
        frames: number of evaluated frames.
        train_config: the run's training settings (segment length, batch size, learning rate, budget, ...), as
            :class:`wavelab.train.TrainConfig` fields; empty for baselines.
        train_commit: :func:`git_commit` of the code that trained the model (``commit`` is the evaluating code's).
        estimator: how the likelihood was computed: ``"exact"``, ``"ELBO, 1 sample"`` (the paper's figure for latent
            models) or ``"importance-weighted bound, K=..."``; empty in a record written without it.
        eval_seed: the seed :func:`wavelab.evaluate.evaluate` drew its noise with (posterior samples, dequantization
            noise); the same seed on the same machine gives the same figure.  ``None`` in a record written without it.
        train_split: the split the model was trained on (``"train"``); records made before the validation split
            existed trained on train + valid and say ``"train+valid"``; empty for baselines.
        train_cpu_s: CPU seconds the training process spent training, periodic validation excluded
            (:attr:`wavelab.train.TrainConfig.clock`); ``None`` for baselines and runs trained without the CPU clock.
        curve_split: the split the run's periodic evaluations (its learning curve, ``--eval-every``) read:
            ``"valid"``; ``"test"`` for runs made before the validation split existed; empty when the run logged none.
        representation: the waveform representation the figure is measured in (:mod:`wavelab.representations`):
            ``"mulaw"`` (16-bit mu-law codes, the paper's; a record without the field reads as it), ``"linear"``
            (16-bit linear PCM codes) or ``"pcm16"`` (a pmf over the int16 values, companded model domain).  For a
            baseline, the representation of the models it is a reference for (the FLAC records' config says which
            PCM was encoded: the linear PCM, or the representation's codes as 16-bit PCM).
    """

    model: str
    config: dict[str, Any]
    dataset: str
    split: str
    bpf_weighted: float
    bpf_mean: float
    is_bound: bool
    steps: int = 0
    frames_seen: int = 0
    wall_time_s: float = 0.0
    hardware: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    budget: str = "cpu-budget"
    created: str = ""
    run_dir: str | None = None
    notes: str = ""
    utterances: int | None = None
    split_utterances: int | None = None
    frames: int | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    train_commit: dict[str, Any] = field(default_factory=dict)
    estimator: str = ""
    eval_seed: int | None = None
    train_split: str = ""
    curve_split: str = ""
    train_cpu_s: float | None = None
    representation: str = "mulaw"

    def __post_init__(self):
        if self.budget not in BUDGETS:
            raise ValueError(f"ResultRecord.budget must be one of {BUDGETS}, got {self.budget!r}")
        from ..representations import REPRESENTATIONS

        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"ResultRecord.representation must be one of {REPRESENTATIONS}, got "
                             f"{self.representation!r}")
        if not self.created:
            self.created = utc_now()

    @property
    def label(self) -> str:
        """The name that matches the paper's rows (:func:`wavelab.models.run_label`): the registry name and what
        the model's config class adds, e.g. ``"lstm s=64"``; a baseline's name as it is."""
        return run_label(self.model, self.config)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> "ResultRecord":
        """Inverse of :meth:`to_dict`. Raises ``ValueError`` naming ``source`` on missing or unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing, unknown = required - set(d), set(d) - names
        if missing or unknown:
            raise ValueError(f"{source} is not a result record: missing keys {sorted(missing)}, "
                             f"unknown keys {sorted(unknown)}")
        return cls(**d)


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. ``2024-05-01T12:00:00Z``."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_record(record: ResultRecord, path: str | Path) -> Path:
    """Write ``record`` as JSON to ``path`` atomically (temporary file in the same directory + ``os.replace``);
    parent directories are created.  Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record.to_dict(), path)
    return path


def read_record(path: str | Path) -> ResultRecord:
    """Read one record. Raises ``ValueError`` naming the file when it is not valid JSON or not a record."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix or remove it") from e
    if not isinstance(d, dict):
        raise ValueError(f"{path} is not a result record (expected a JSON object)")
    return ResultRecord.from_dict(d, source=str(path))


def load_records(results_dir: str | Path = "results") -> list[ResultRecord]:
    """All records ``*.json`` directly in ``results_dir``, sorted by file name.

    Raises:
        FileNotFoundError: ``results_dir`` does not exist.
        ValueError: a JSON file there is not a record (the message names it).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {results_dir} does not exist")
    return [read_record(p) for p in sorted(results_dir.glob("*.json"))]


def record_run_dir(record: ResultRecord, results_dir: str | Path | None = None) -> Path:
    """The directory of the trained run behind ``record`` (it holds ``checkpoint.pt``, ``config.json`` and
    ``metrics.jsonl``; open it with :func:`wavelab.train.load_run`).

    Looked up as the record's ``run_dir`` (absolute, or relative to the project root), then
    ``<results_dir>/runs/<name of run_dir>`` (where :func:`wavelab.runs.export_run` puts committed runs;
    ``results_dir`` defaults to :func:`wavelab.settings.results_dir`).

    Raises:
        ValueError: the record has no run (a baseline).
        FileNotFoundError: none of the candidates holds a checkpoint (the message lists them).
    """
    from ..settings import PROJECT_ROOT
    from ..settings import results_dir as default_results_dir

    if not record.run_dir:
        raise ValueError(f"record {record.label} ({record.model}) has no training run (run_dir is empty)")
    rd = Path(record.run_dir)
    base = Path(results_dir) if results_dir is not None else default_results_dir()
    candidates = [rd if rd.is_absolute() else PROJECT_ROOT / rd, base / "runs" / rd.name]
    for c in candidates:
        if (c / "checkpoint.pt").exists():
            return c
    raise FileNotFoundError(f"the run of record {record.label} ({record.estimator or record.model}) is missing: "
                            f"looked in {[str(c) for c in candidates]}; export it with python -m wavelab export")


def record_from_run(run_dir: str | Path, evaluation, *, model_name: str, model_config: dict[str, Any],
                    meta: dict[str, Any], dataset: str, split: str, split_utterances: int, estimator: str,
                    eval_seed: int, budget: str | None = None, notes: str = "") -> ResultRecord:
    """The results record of a trained run and one evaluation of it: provenance from the run directory's
    ``config.json`` (training settings, commit and hardware of the run), training progress from the checkpoint's
    ``meta`` (as :func:`wavelab.train.load_run` returns it), the figures from ``evaluation``.

    Args:
        run_dir: the run directory (its ``config.json`` is read when present).
        evaluation: a :class:`wavelab.evaluate.Evaluation` (its ``bpf``: weighted, mean, bound, counts).
        model_name, model_config: the registry name and config dict of the evaluated model.
        meta: the checkpoint's ``step``, ``frames_seen``, ``wall_s``.
        dataset, split: what was evaluated.
        split_utterances: how many utterances the split holds (the evaluation may have read fewer).
        estimator: the model's :meth:`~wavelab.models.base.WavelabModel.estimator` for this evaluation.
        eval_seed: the seed of the evaluation.
        budget: ``"cpu-budget"`` or ``"gpu"``; default from the training device recorded in ``config.json``.
        notes: free text.
    Raises:
        ValueError: an unknown budget.
    """
    run_info = read_run_config(run_dir)
    if budget is None:
        budget = "gpu" if str(run_info.get("device", "cpu")).startswith("cuda") else "cpu-budget"
    train_config = run_info.get("train_config", {})
    bpf = evaluation.bpf
    return ResultRecord(
        model=model_name, config=dict(model_config), dataset=dataset, split=split, bpf_weighted=bpf.weighted,
        bpf_mean=bpf.mean, is_bound=bpf.is_bound, steps=int(meta["step"]), frames_seen=int(meta["frames_seen"]),
        wall_time_s=float(meta["wall_s"]), hardware=run_info.get("hardware") or hardware_info(),
        commit=git_commit(), seed=train_config.get("seed"), budget=budget, run_dir=str(run_dir), notes=notes,
        utterances=bpf.utterances, split_utterances=int(split_utterances), frames=bpf.frames, train_config=train_config,
        train_commit=run_info.get("commit", {}), estimator=estimator, eval_seed=int(eval_seed),
        train_split=run_info.get("train_split", "train+valid" if train_config else ""),
        curve_split=run_info.get("eval_split", "test" if train_config.get("eval_every") else ""),
        train_cpu_s=meta.get("train_cpu_s"), representation=str(model_config.get("representation", "mulaw")),
    )


def select(records: list[ResultRecord], *, model: str | tuple[str, ...] | None = None, dataset: str | None = None,
           split: str | None = None, full_split: bool = True, label: str | None = None,
           estimator: str | None = None, budget: str | None = None, representation: str | None = "mulaw",
           **config: Any) -> list[ResultRecord]:
    """The one query over results records, used by the command line, the scripts and every chapter.

    Args:
        records: e.g. :func:`load_records`.
        model: registry or baseline name, or a tuple of names (``None``: any).
        dataset: ``"timit"`` or ``"librispeech"`` (``None``: any).
        split: the evaluated split (``None``: any).
        full_split: keep only records evaluated on every utterance of their split (not ``evaluate --limit``):
            ``utterances == split_utterances``; a record without either count (a baseline) counts as whole.
        label: :func:`record_label`, e.g. ``"cwvae s=64 L=2"``.
        estimator: a prefix of the record's estimator, e.g. ``"ELBO"`` or ``"importance-weighted"``.
        budget: ``"cpu-budget"`` or ``"gpu"``.
        representation: the waveform representation (``"mulaw"`` by default, so that a table of the paper's setting
            never mixes in records of another representation; records without the field are mu-law); ``None``: any.
        **config: model config values the record must have, e.g. ``s=64`` or ``L=2`` (a record without the field
            does not match).
    Returns:
        the matching records, in their input order.
    """
    models = (model,) if isinstance(model, str) else model
    out = []
    for r in records:
        if models is not None and r.model not in models:
            continue
        if (dataset is not None and r.dataset != dataset) or (split is not None and r.split != split):
            continue
        if (label is not None and r.label != label) or (budget is not None and r.budget != budget):
            continue
        if estimator is not None and not r.estimator.startswith(estimator):
            continue
        if representation is not None and r.representation != representation:
            continue
        if any(k not in r.config or r.config[k] != v for k, v in config.items()):
            continue
        if full_split and None not in (r.utterances, r.split_utterances) and r.utterances != r.split_utterances:
            continue
        out.append(r)
    return out


__all__ = ["BUDGETS", "ResultRecord", "load_records", "read_record", "record_from_run", "record_run_dir", "select",
           "utc_now", "write_record"]
