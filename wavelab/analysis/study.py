"""The whole latent study of Havtorn et al. 2022, section 3.2, as one function, and its results on disk.

1. Phones: the latents of every utterance of one test speaker (``dr1-fvmh0``, the ``phoneme_study`` split), averaged
   over each phone's span; leave-one-out kNN accuracy versus k in a 5-D LDA subspace, and a 2-D LDA embedding for
   the plot (the paper's figure 3). Baseline: log-Mel frames treated the same way.
2. Speaker sex and height class: the time-averaged latents of every utterance of every speaker (TIMIT train + test
   splits: all 16 speakers of the NLTK sample), kNN accuracy versus k under leave-one-out (the paper's figure 4) and
   leave-one-speaker-out (no utterance of the tested speaker among the neighbours), with LDA embeddings (figures 5,
   6). As in the paper's figure 4 ("the height of male speakers"), height is studied within one sex, male by default.

Every accuracy is measured under two protocols (:func:`~wavelab.analysis.knn.knn_accuracy`'s ``lda_fit``): the LDA
fitted inside each fold (``accuracy``, no label leakage) and the LDA fitted once to all rows before the kNN
(``accuracy_lda_all``, the paper's reading, which leaks labels and favours high-dimensional features).

The result is a plain dict (see :func:`run_latent_study`) that :func:`wavelab.report.studies.save_study` writes as
JSON with provenance, so the book's chapter reads stored numbers instead of running the model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..report.studies import PROTOCOL_KEYS
from .datasets import NON_SPEECH, phone_dataset, utterance_dataset
from .features import MEL_HOP, extract_latents, mel_features, mel_offset, model_strides
from .knn import chance_accuracy, knn_accuracy, lda_embed

DEFAULT_KS = (1, 3, 5, 7, 9, 11, 15, 21)
QUICK_NUM_SAMPLES = 4
QUICK_UTTERANCES_PER_SPEAKER = 3
TASKS = ("phone", "gender", "height")
"""Where each ``lda_fit`` protocol of :func:`~wavelab.analysis.knn.knn_accuracy` is stored in a study's feature:
``"accuracy"`` (LDA fitted inside each fold, ours and the default everywhere) and ``"accuracy_lda_all"`` (LDA fitted
once to all rows, the paper's protocol)."""


def _evaluate_task(X: np.ndarray, y: np.ndarray, groups: np.ndarray, schemes: Sequence[str], ks: Sequence[int],
                   n_components: int) -> dict[str, Any]:
    """Accuracy per protocol and scheme (``{scheme: {k: acc}}``), the feature's shape and a 2-D LDA embedding."""
    fold_min = {"loo": len(y) - 1,
                "loso": len(y) - max(np.unique(groups, return_counts=True)[1])}
    out: dict[str, Any] = {}
    for lda_fit, key in PROTOCOL_KEYS.items():
        out[key] = {}
        for scheme in schemes:
            usable = [k for k in ks if k <= fold_min[scheme]]
            out[key][scheme] = knn_accuracy(X, y, usable, n_components=n_components, groups=groups, scheme=scheme,
                                            lda_fit=lda_fit)
    out.update(n=int(X.shape[0]), dim=int(X.shape[1]), embedding=lda_embed(X, y, n_components=2))
    return out


def _chance(y: np.ndarray, groups: np.ndarray, schemes: Sequence[str]) -> dict[str, dict[str, float]]:
    return {s: {strategy: chance_accuracy(y, groups, s, strategy) for strategy in ("majority", "stratified")}
            for s in schemes}


def _quick_subset(utterances: list, per_speaker: int) -> list:
    """The first ``per_speaker`` utterances (by id) of each speaker."""
    taken: dict[str, int] = {}
    out = []
    for u in sorted(utterances, key=lambda u: u.id):
        n = taken.get(u.speaker.id, 0)
        if n < per_speaker:
            out.append(u)
            taken[u.speaker.id] = n + 1
    return out


def run_latent_study(model, ks: Sequence[int] = DEFAULT_KS, num_samples: int = 100, quick: bool = False,
                     n_components: int = 5, min_count: int = 5, exclude: Sequence[str] = NON_SPEECH,
                     height_sex: str | None = "M", seed: int = 0, progress: bool = False,
                     phone_utterances: Sequence | None = None,
                     speaker_utterances: Sequence | None = None) -> dict[str, Any]:
    """Run the latent study (module docstring) for a trained hierarchical latent model (the two-layer CW-VAE).

    Features: ``z1 ... zL`` from :func:`extract_latents` (posterior means over ``num_samples`` samples) and ``"mel"``
    from :func:`mel_features` (hop 64, window 256, 80 bins). Each utterance is processed once.

    Quick mode (for smoke tests and CPU budgets): ``num_samples`` capped at ``QUICK_NUM_SAMPLES`` (4) and only the
    first ``QUICK_UTTERANCES_PER_SPEAKER`` (3) utterances of each speaker for the sex/height tasks (48 of 160); the
    phone task keeps all of the phone speaker's utterances (rarer phones would drop below ``min_count``).

    Args:
        model: has ``posterior_latents``, ``bits`` and strides (``config.strides`` or ``strides``).
        ks: numbers of neighbours; those exceeding a task's smallest training fold are skipped for that task.
        num_samples: Monte Carlo posterior samples averaged per latent step (paper: 100).
        quick: see above.
        n_components: LDA dimensions for kNN (paper: 5).
        min_count: drop phones seen fewer times (see :func:`phone_dataset`).
        exclude: phone labels to drop (TIMIT non-speech by default).
        height_sex: study height within speakers of this sex (``"M"``, as the paper's figure 4; ``"F"``), or over
            all speakers (``None``; height is then confounded with sex in TIMIT).
        seed, progress: the seed of the posterior sampling; progress bars.
        phone_utterances: default ``load_split("timit", "phoneme_study")``.
        speaker_utterances: default TIMIT ``train`` + ``valid`` + ``test`` (every utterance of the 16 speakers).
    Returns:
        dict with ``"settings"`` (the arguments, strides, feature grids, speaker and utterance counts) and
        ``"tasks"``: for each of ``"phone"``, ``"gender"``, ``"height"``: ``labels`` (list of str, one per example),
        ``groups`` (utterance id for phones, speaker id otherwise), ``schemes`` (``["loo"]`` for phones,
        ``["loo", "loso"]`` otherwise), ``chance`` (``{scheme: {"majority": acc, "stratified": acc}}``, see
        :func:`chance_accuracy`) and ``features``: ``{name: {"accuracy": {scheme: {k: acc}},
        "accuracy_lda_all": {scheme: {k: acc}}, "n": N, "dim": D, "embedding": ndarray [N, <= 2]}}`` for ``name``
        in ``z1, ..., zL, mel``. ``accuracy`` is the LDA fitted inside each fold (``lda_fit="fold"``), and
        ``accuracy_lda_all`` the LDA fitted once to all ``N`` rows (``lda_fit="all"``, the paper's protocol, which
        leaks labels and favours large ``D``; see :func:`knn_accuracy`); :data:`PROTOCOL_KEYS` maps the one to the
        other.
    Raises:
        ValueError: bad arguments (see :func:`knn_accuracy`, :func:`phone_dataset`), a model without latents, or a
            task with fewer than two classes (e.g. one sex only).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if height_sex not in (None, "F", "M"):
        raise ValueError(f"height_sex must be 'F', 'M' or None, got {height_sex!r}")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive numbers of neighbours, got {ks}")
    strides = model_strides(model)
    phone_utts, speaker_utts = _study_utterances(phone_utterances, speaker_utterances, quick)
    if quick:
        num_samples = min(num_samples, QUICK_NUM_SAMPLES)

    # every distinct utterance once
    union = list({u.id: u for u in phone_utts + speaker_utts}.values())
    latents = extract_latents(model, union, num_samples=num_samples, seed=seed, progress=progress)
    feats = {}
    for u, z in zip(union, latents):
        feats[u.id] = dict(z, mel=mel_features(u.audio()))
    names = [f"z{i}" for i in range(1, len(strides) + 1)] + ["mel"]
    grid = {f"z{i}": (float(s), 0.0) for i, s in enumerate(strides, start=1)}
    grid["mel"] = (float(MEL_HOP), mel_offset(MEL_HOP))

    tasks = {"phone": _phone_task([feats[u.id] for u in phone_utts], phone_utts, names, grid, ks, n_components,
                                  exclude, min_count)}
    tasks["gender"], tasks["height"] = _speaker_tasks([feats[u.id] for u in speaker_utts], speaker_utts, names, ks,
                                                      n_components, height_sex)

    settings = {
        "ks": ks, "num_samples": num_samples, "quick": quick, "n_components": n_components, "min_count": min_count,
        "exclude": list(exclude), "height_sex": height_sex, "seed": seed, "bits": int(model.bits),
        "features": names, "grid": {n: {"step": g[0], "offset": g[1]} for n, g in grid.items()},
        "mel": {"hop_length": MEL_HOP, "win_length": 256, "n_mels": 80},
        "phone_speakers": sorted({u.speaker.id for u in phone_utts}),
        "speakers": sorted({u.speaker.id for u in speaker_utts}),
        "utterances": {"phone": len(phone_utts), "speaker": len(speaker_utts)},
        "model": type(model).__name__,
    }
    return {"settings": settings, "tasks": tasks}


def _study_utterances(phone_utterances, speaker_utterances, quick: bool) -> tuple[list, list]:
    """The phone speaker's utterances (default: TIMIT's ``phoneme_study`` split) and every speaker's, each once
    (default: TIMIT ``train`` + ``valid`` + ``test``; in quick mode the first few of each speaker)."""
    if phone_utterances is None or speaker_utterances is None:
        from ..data import load_split

        if phone_utterances is None:
            phone_utterances = load_split("timit", "phoneme_study")
        if speaker_utterances is None:
            speaker_utterances = [u for split in ("train", "valid", "test") for u in load_split("timit", split)]
    speaker_utts = list({u.id: u for u in speaker_utterances}.values())
    if quick:
        speaker_utts = _quick_subset(speaker_utts, QUICK_UTTERANCES_PER_SPEAKER)
    return list(phone_utterances), speaker_utts


def _phone_task(phone_feats, phone_utts, names, grid, ks, n_components, exclude, min_count) -> dict[str, Any]:
    """Task 1 of :func:`run_latent_study`: the phones of one speaker, one example per phone span."""
    phone: dict[str, Any] = {"schemes": ["loo"], "features": {}}
    for name in names:
        X, y, groups = phone_dataset(phone_feats, phone_utts, name, step=grid[name][0], offset=grid[name][1],
                                     exclude=exclude, min_count=min_count)
        phone["features"][name] = _evaluate_task(X, y, groups, ["loo"], ks, n_components)
    phone.update(labels=list(y), groups=list(groups), chance=_chance(y, groups, ["loo"]))
    return phone


def _speaker_tasks(speaker_feats, speaker_utts, names, ks, n_components, height_sex) -> tuple[dict, dict]:
    """Tasks 2 and 3 of :func:`run_latent_study`: speaker sex, and height class (within ``height_sex`` when given),
    from features averaged over each utterance."""
    gender: dict[str, Any] = {"schemes": ["loo", "loso"], "features": {}}
    height: dict[str, Any] = {"schemes": ["loo", "loso"], "features": {}}
    for name in names:
        data = utterance_dataset(speaker_feats, speaker_utts, name)
        gender["features"][name] = _evaluate_task(data.X, data.sex, data.groups, gender["schemes"], ks, n_components)
        mask = data.height != ""
        if height_sex is not None:
            mask &= data.sex == height_sex
        hdata = data.subset(mask)
        height["features"][name] = _evaluate_task(hdata.X, hdata.height, hdata.groups, height["schemes"], ks,
                                                  n_components)
    gender.update(labels=list(data.sex), groups=list(data.groups),
                  chance=_chance(data.sex, data.groups, gender["schemes"]))
    height.update(labels=list(hdata.height), groups=list(hdata.groups),
                  chance=_chance(hdata.height, hdata.groups, height["schemes"]))
    return gender, height
