"""The latent study on disk and as tables: :func:`save_study` writes what :func:`wavelab.analysis.run_latent_study`
returns as JSON with provenance, :func:`load_study` reads it back, and :func:`accuracy_table` / :func:`protocol_table`
show it (Havtorn et al. 2022, section 3.2 and figures 3-6)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..runs import git_commit, hardware_info
from .records import utc_now
from .tables import Strong, Table

#: the two LDA protocols and the key of their accuracies in a study: fitted inside each fold, or once to all rows
PROTOCOL_KEYS = {"fold": "accuracy", "all": "accuracy_lda_all"}


def _to_json(obj):
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_json(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_study(result: dict[str, Any], path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write a :func:`wavelab.analysis.run_latent_study` result as JSON (numbers, embeddings, labels) with provenance.

    ``provenance`` (e.g. the checkpoint / run directory, training steps, the results record) is stored under
    ``"provenance"`` together with the UTC time, the git commit and the hardware
    (:mod:`wavelab.runs`). Parent folders are created.

    Returns:
        the path written.
    Raises:
        ValueError: ``result`` lacks ``"settings"`` or ``"tasks"``.
    """
    if not isinstance(result, dict) or "settings" not in result or "tasks" not in result:
        raise ValueError("result must be the dict run_latent_study returns (keys 'settings' and 'tasks')")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = {"created": utc_now(), "commit": git_commit(), "hardware": hardware_info()}
    prov.update(result.get("provenance", {}))
    prov.update(provenance or {})
    doc = dict(result, provenance=prov)
    path.write_text(json.dumps(_to_json(doc), indent=1))
    return path


def load_study(path: str | Path) -> dict[str, Any]:
    """Read a study written by :func:`save_study`: the same structure as :func:`wavelab.analysis.run_latent_study`'s
    result (k keys as ints, embeddings as float64 ndarrays ``[N, <= 2]``) plus ``"provenance"``. A study written before
    the ``"all"`` protocol existed loads too; its features lack ``accuracy_lda_all``, ``n`` and ``dim``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a saved latent study.
    """
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or "tasks" not in doc or "settings" not in doc:
        raise ValueError(f"{path} is not a latent study written by save_study (no 'settings'/'tasks')")
    for task in doc["tasks"].values():
        for feat in task["features"].values():
            feat["embedding"] = np.asarray(feat["embedding"], dtype=np.float64)
            for key in PROTOCOL_KEYS.values():  # a study written without the "all" protocol has "accuracy" only
                if key in feat:
                    feat[key] = {s: {int(k): v for k, v in acc.items()} for s, acc in feat[key].items()}
    return doc


def accuracy_table(study: dict[str, Any], ks: Sequence[int] | None = None, caption: str = ""):
    """The kNN accuracies of a study as a :class:`wavelab.report.tables.Table` (HTML in the book, Markdown by
    ``str()`` for the study script's summary).

    One row per task, scheme and feature; one column per k (in %, the best feature of each task, scheme and k in
    bold; empty where that k was not evaluated), and the chance level of the task and scheme (majority /
    stratified, see :func:`~wavelab.analysis.knn.chance_accuracy`).

    Args:
        study: a :func:`wavelab.analysis.run_latent_study` or :func:`load_study` result.
        ks: the columns (default: every k evaluated anywhere in the study).
    Returns:
        :class:`wavelab.report.tables.Table`.
    Raises:
        ValueError: ``study`` has no tasks.
    """
    tasks = study.get("tasks") if isinstance(study, dict) else None
    if not tasks:
        raise ValueError("study must be a run_latent_study / load_study result with at least one task")
    if ks is None:
        ks = sorted({int(k) for task in tasks.values() for feat in task["features"].values()
                     for acc in feat["accuracy"].values() for k in acc})
    # accuracies in % (say so in the caption): short headers keep a table of eight k columns inside the page
    columns = ["task", "scheme", "feature"] + [f"k={k}" for k in ks] + ["chance (majority / stratified)"]
    rows = []
    for tname, task in tasks.items():
        for scheme in task["schemes"]:
            accs = {f: {int(k): v for k, v in feat["accuracy"].get(scheme, {}).items()}
                    for f, feat in task["features"].items()}
            best = {k: max((a[k] for a in accs.values() if a.get(k) is not None), default=None) for k in ks}
            chance = task.get("chance", {}).get(scheme, {})
            chance_text = " / ".join(f"{100 * chance[s]:.1f}" for s in ("majority", "stratified") if s in chance)
            for f, acc in accs.items():
                cells = []
                for k in ks:
                    v = acc.get(k)
                    text = "" if v is None else f"{100 * v:.1f}"
                    cells.append(Strong(text) if v is not None and v == best[k] else text)
                rows.append([tname, scheme, f, *cells, chance_text])
    return Table(columns, rows, caption)


def protocol_table(study: dict[str, Any], ks: Sequence[int] = (1, 5), caption: str = "",
                   task_names: dict[str, str] | None = None):
    """The two LDA protocols side by side: kNN accuracy with the LDA fitted inside each fold (``fold``, the
    study's ``accuracy``) and fitted once to all rows (``all``, the paper's protocol, ``accuracy_lda_all``), as a
    :class:`wavelab.report.tables.Table`.

    One row per task, scheme and feature. Columns: the examples and dimensions of the feature (``N × D``: the "all"
    protocol's leak grows as ``D`` approaches ``N``), for each k in ``ks`` the accuracy in % under both protocols
    (the best feature of the task, scheme, k and protocol in bold), the difference ``all − fold`` averaged over
    every k both protocols evaluated (points), and the stratified chance level of the folds.

    Args:
        study: a :func:`wavelab.analysis.run_latent_study` or :func:`load_study` result made with both protocols.
        ks: the k shown (a k not evaluated for a task gives empty cells).
        caption: the table's caption.
        task_names: reader-facing task names (default: ``"gender"`` shown as ``"sex"``).
    Returns:
        :class:`wavelab.report.tables.Table`.
    Raises:
        ValueError: no tasks, or a feature without ``accuracy_lda_all`` (a study made before the protocol existed:
            run ``scripts/latent_study.py`` again).
    """
    tasks = study.get("tasks") if isinstance(study, dict) else None
    if not tasks:
        raise ValueError("study must be a run_latent_study / load_study result with at least one task")
    names = {"gender": "sex"} if task_names is None else task_names
    keys = PROTOCOL_KEYS
    columns = ["task", "scheme", "feature", "N × D"]
    columns += [f"k={k} {p}" for k in ks for p in keys] + ["all − fold", "chance"]
    rows = []
    for tname, task in tasks.items():
        for fname, feat in task["features"].items():
            if keys["all"] not in feat:
                raise ValueError(f"the study's {tname}/{fname} has no {keys['all']!r}: it was made before the "
                                 f"'all' protocol existed; run scripts/latent_study.py again")
        for scheme in task["schemes"]:
            acc = {(f, p): {int(k): v for k, v in feat[key].get(scheme, {}).items()}
                   for f, feat in task["features"].items() for p, key in keys.items()}
            best = {(p, k): max((a.get(k) for (f, q), a in acc.items() if q == p and a.get(k) is not None),
                                default=None) for p in keys for k in ks}
            stratified = task.get("chance", {}).get(scheme, {}).get("stratified")
            for f, feat in task["features"].items():
                cells = []
                for k in ks:
                    for p in keys:
                        v = acc[f, p].get(k)
                        text = "" if v is None else f"{100 * v:.1f}"
                        cells.append(Strong(text) if v is not None and v == best[p, k] else text)
                common = sorted(set(acc[f, "fold"]) & set(acc[f, "all"]))
                diff = np.mean([acc[f, "all"][k] - acc[f, "fold"][k] for k in common]) if common else None
                shape = f"{feat['n']} × {feat['dim']}" if "n" in feat and "dim" in feat else ""
                rows.append([names.get(tname, tname), scheme, f, shape, *cells,
                             "" if diff is None else f"{100 * diff:+.1f}",
                             "" if stratified is None else f"{100 * stratified:.1f}"])
    return Table.from_rows(rows, columns, caption=caption)


__all__ = ["PROTOCOL_KEYS", "accuracy_table", "load_study", "protocol_table", "save_study"]
