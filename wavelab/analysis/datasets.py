"""Labelled data sets for the latent study: phone spans of one speaker, and time-averaged utterances of all speakers
with their sex and height class (Havtorn et al. 2022, section 3.2; TIMIT speaker metadata, ``spkrinfo.txt``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .features import span_average, time_average

# TIMIT's silence and closure-free non-speech labels: begin/end marker, pause, epenthetic silence.
NON_SPEECH = ("h#", "pau", "epi")
HEIGHT_CLASSES = ("<175", "175-185", ">185")


def height_class(cm: float | None) -> str:
    """The paper's three height classes (section 3.2: "below 175 cm, above 185 cm and in-between").

    Boundary convention: ``"<175"`` for ``cm < 175``, ``"175-185"`` for ``175 <= cm <= 185`` (both ends included),
    ``">185"`` for ``cm > 185``. (TIMIT heights are whole inches, 1 in = 2.54 cm, so no speaker sits exactly on a
    boundary: 5'8" = 172.72, 5'9" = 175.26, 6'0" = 182.88, 6'1" = 185.42 cm.)

    Raises:
        ValueError: ``cm`` is None, not finite or not positive (the speaker's height is unknown).
    """
    if cm is None or not math.isfinite(cm) or cm <= 0:
        raise ValueError(f"height_cm must be a positive number of cm, got {cm!r}; drop speakers without a height")
    if cm < 175.0:
        return HEIGHT_CLASSES[0]
    if cm <= 185.0:
        return HEIGHT_CLASSES[1]
    return HEIGHT_CLASSES[2]


def phone_dataset(features: Sequence[dict], utterances: Sequence, feature_name: str, step: float, offset: float = 0.0,
                  exclude: Sequence[str] = NON_SPEECH, min_count: int = 5,
                  weighted: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per phone occurrence: the feature averaged over the phone's span (:func:`span_average`).

    Phones in ``exclude`` (default TIMIT's non-speech ``h#``, ``pau``, ``epi``) are dropped, and so are phones with
    fewer than ``min_count`` occurrences in the set: a class seen once or twice cannot have a neighbour of its own
    class once it is left out, which makes leave-one-out kNN accuracy meaningless for it (the paper does not say how
    it treated rare phones; for speaker dr1-fvmh0 the default 5 keeps 30 phone types, 293 of the 347 speech spans).

    Args:
        features: per utterance a dict ``{name: [n, D]}`` (from :func:`extract_latents` / :func:`mel_features`).
        utterances: the matching utterances (``phones``: segments with ``start``, ``end``, ``label``; ``id``).
        feature_name: key into each dict (``"z1"``, ``"z2"``, ``"mel"``).
        step, offset: the feature's step grid in samples (see :func:`span_average`).
        exclude: phone labels to drop.
        min_count: minimum occurrences of a phone to keep it (>= 1).
        weighted: duration-weighted span averages (see :func:`span_average`).
    Returns:
        ``(X [m, D] float64, y [m] str phone labels, groups [m] str utterance ids)``.
    Raises:
        ValueError: lengths differ; a missing feature; ``min_count < 1``; nothing left after filtering.
    """
    if len(features) != len(utterances):
        raise ValueError(f"features ({len(features)}) and utterances ({len(utterances)}) must match one to one")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    excluded = set(exclude)
    rows, labels, groups = [], [], []
    for feats, utt in zip(features, utterances):
        if feature_name not in feats:
            raise ValueError(f"feature {feature_name!r} missing for utterance {utt.id}; have {sorted(feats)}")
        segs = [p for p in utt.phones if p.label not in excluded]
        if not segs:
            continue
        X, y = span_average(feats[feature_name], step, segs, offset=offset, weighted=weighted)
        rows.append(X)
        labels += y
        groups += [utt.id] * len(y)
    counts = Counter(labels)
    keep = np.array([counts[label] >= min_count for label in labels], dtype=bool)
    if not keep.any():
        raise ValueError(f"no phone occurs at least min_count={min_count} times (after excluding {sorted(excluded)}); "
                         f"lower min_count or use more utterances")
    X = np.concatenate(rows)[keep]
    return X, np.array(labels, dtype=object)[keep].astype(str), np.array(groups, dtype=object)[keep].astype(str)


@dataclass
class UtteranceSet:
    """Time-averaged features of many utterances with speaker labels.

    Attributes:
        X: ``[N, D]`` float64, one time-averaged feature vector per utterance.
        sex: ``[N]`` str, ``"F"`` / ``"M"``.
        height: ``[N]`` str height class (:func:`height_class`), ``""`` where the speaker's height is unknown.
        height_cm: ``[N]`` float, NaN where unknown.
        groups: ``[N]`` str speaker ids (the groups of leave-one-speaker-out).
        ids: ``[N]`` str utterance ids.
    """

    X: np.ndarray
    sex: np.ndarray
    height: np.ndarray
    height_cm: np.ndarray
    groups: np.ndarray
    ids: np.ndarray

    def subset(self, mask: np.ndarray) -> "UtteranceSet":
        """The rows where boolean ``mask [N]`` is True."""
        return UtteranceSet(self.X[mask], self.sex[mask], self.height[mask], self.height_cm[mask], self.groups[mask],
                            self.ids[mask])


def utterance_dataset(features: Sequence[dict], utterances: Sequence, feature_name: str) -> UtteranceSet:
    """Time-average each utterance's feature (:func:`time_average`, all steps) and attach speaker sex, height class
    and speaker id (for leave-one-speaker-out).

    Raises:
        ValueError: lengths differ or a feature is missing.
    """
    if len(features) != len(utterances):
        raise ValueError(f"features ({len(features)}) and utterances ({len(utterances)}) must match one to one")
    X, sex, height, cm, groups, ids = [], [], [], [], [], []
    for feats, utt in zip(features, utterances):
        if feature_name not in feats:
            raise ValueError(f"feature {feature_name!r} missing for utterance {utt.id}; have {sorted(feats)}")
        X.append(time_average(feats[feature_name]))
        spk = utt.speaker
        sex.append(spk.sex)
        h = spk.height_cm
        known = h is not None and math.isfinite(h) and h > 0
        height.append(height_class(h) if known else "")
        cm.append(float(h) if known else float("nan"))
        groups.append(spk.id)
        ids.append(utt.id)
    return UtteranceSet(np.stack(X), np.array(sex, dtype=str), np.array(height, dtype=str), np.array(cm),
                        np.array(groups, dtype=str), np.array(ids, dtype=str))
