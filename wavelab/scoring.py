"""Scoring any recording: a run's likelihood of audio files, in bits per frame (bpf).

``python -m wavelab score --run-dir RUN FILE_OR_FOLDER...`` reads every file (folders: every ``.wav``, ``.flac``,
``.sph`` and ``.nist`` file below them), maps its int16 PCM to the run's codes with the run's representation
(:func:`wavelab.coding.representation_for`, the same mapping the codec uses) and scores it with
:func:`wavelab.evaluate.evaluate` (the model's ``evaluate_long``; the ELBO, an upper bound, for latent variable
models).  The total is Havtorn et al.'s eq. 11: total bits over total frames (see :mod:`wavelab.likelihood`).

A file that cannot be scored (missing, empty, truncated, not audio, stereo, not 16-bit PCM, not 16 kHz) is reported
with its name and the reason from :func:`wavelab.audio.read_audio`, and the others are still scored.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path


AUDIO_SUFFIXES = (".wav", ".flac", ".sph", ".nist")
SAMPLE_RATE = 16_000  # Hz, the rate of every corpus the models are trained on


@dataclasses.dataclass(frozen=True)
class FileScore:
    """One scored file: ``frames`` samples, ``bits`` = -log2 p(file) (or its bound), ``bpf = bits / frames``."""

    path: Path
    frames: int
    bits: float

    @property
    def bpf(self) -> float:
        """Bits per frame of the file."""
        return self.bits / self.frames


@dataclasses.dataclass(frozen=True)
class ScoreFailure:
    """A file (or folder) that could not be scored, and why (a message naming it)."""

    path: Path
    reason: str


@dataclasses.dataclass
class ScoreReport:
    """Result of :func:`score_files`, files in the order given (folders expanded in sorted order).

    Attributes:
        model: the run's model name; representation: the run's representation name.
        is_bound: True when the figures are upper bounds (a latent model's negative ELBO, a flow's dequantization
            bound); estimator: how they are computed (the model's ``estimator()``, as in results records).
        scores: the scored files; failures: the files that could not be scored.
    """

    model: str
    representation: str
    is_bound: bool
    estimator: str
    scores: list[FileScore]
    failures: list[ScoreFailure]

    @property
    def total_bits(self) -> float:
        """Bits over all scored files."""
        return float(sum(s.bits for s in self.scores))

    @property
    def total_frames(self) -> int:
        """Frames (samples) over all scored files."""
        return int(sum(s.frames for s in self.scores))

    @property
    def bpf(self) -> float | None:
        """Eq. 11 of Havtorn et al.: total bits over total frames (``None`` when nothing was scored)."""
        return self.total_bits / self.total_frames if self.scores else None


def collect_audio_files(paths) -> tuple[list[Path], list[ScoreFailure]]:
    """Expand ``paths`` into files: a file is taken as it is (whatever its name), a folder gives every file below it
    with a suffix in :data:`AUDIO_SUFFIXES` (case-insensitive), sorted.

    Returns:
        ``(files, failures)``: a path that does not exist, or a folder without audio files, is a failure.
    """
    files: list[Path] = []
    failures: list[ScoreFailure] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                failures.append(ScoreFailure(p, f"folder {p} holds no audio files ({', '.join(AUDIO_SUFFIXES)})"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            failures.append(ScoreFailure(p, f"{p} does not exist"))
    return files, failures


def score_files(model, paths, run_config: dict | None = None, model_name: str | None = None,
                max_frames: int = 200_000, seed: int = 0) -> ScoreReport:
    """Score audio files with a model.

    Args:
        model: a loaded wavelab model (any: exact likelihoods, or ELBOs for latent variable models).
        paths: files and folders (see :func:`collect_audio_files`).
        run_config: the run's ``config.json`` (for the representation, see :func:`wavelab.coding.representation_for`).
        model_name: the name to report (default: the registry name of the model's class).
        max_frames: frames per forward pass (:func:`wavelab.evaluate.evaluate`).
        seed: seed of stochastic figures (ELBO noise), the same for every file.
    Returns:
        :class:`ScoreReport`.
    Raises:
        CodecError: the run's representation is unknown.
    """
    from .audio import AudioError, read_audio
    from .coding import representation_for
    from .data import Recording
    from .evaluate import evaluate
    from .models import registry_name

    rep = representation_for(model, run_config)
    files, failures = collect_audio_files(paths)
    scores: list[FileScore] = []
    is_bound = bool(model.is_bound)
    for path in files:  # one file at a time: memory stays bounded, and a file's figure never depends on the others
        try:
            pcm = read_audio(path, expected_sample_rate=SAMPLE_RATE)
        except AudioError as e:
            failures.append(ScoreFailure(path, str(e)))
            continue
        try:
            ev = evaluate(model, [Recording(str(path), pcm)], max_frames=max_frames, seed=seed)
        except ValueError as e:  # e.g. a recording too short for the model
            failures.append(ScoreFailure(path, f"cannot score {path}: {e}"))
            continue
        is_bound = is_bound or ev.is_bound
        scores.append(FileScore(path, int(ev.lengths[0]), float(ev.nll[0]) / math.log(2)))
    return ScoreReport(model_name or registry_name(model), rep.name, is_bound, model.estimator(), scores, failures)


def format_report(report: ScoreReport, run_dir: str | os.PathLike | None = None) -> str:
    """The report as the command line prints it: a header naming model and representation, one line per file
    (bpf, bits, frames, path) and the total (eq. 11)."""
    le = "<= " if report.is_bound else ""
    what = f"upper bounds ({report.estimator})" if report.is_bound else "exact likelihoods"
    where = f" ({run_dir})" if run_dir is not None else ""
    lines = [(f"{report.model}{where}, representation {report.representation}: {what}, bits of the "
              f"{report.representation} codes of each file"),
             f"{'bpf':>10} {'bits':>14} {'frames':>11}  file"]
    for s in report.scores:
        lines.append(f"{le + format(s.bpf, '.3f'):>10} {s.bits:>14,.0f} {s.frames:>11,}  {s.path}")
    if report.scores:
        lines.append(f"total: {le}{report.bpf:.3f} bpf (eq. 11: {report.total_bits:,.0f} bits over "
                     f"{report.total_frames:,} frames, {len(report.scores)} file(s))")
    else:
        lines.append("total: no file could be scored")
    if report.failures:
        lines.append(f"{len(report.failures)} file(s) could not be scored (see the errors)")
    return "\n".join(lines)


__all__ = ["AUDIO_SUFFIXES", "FileScore", "ScoreFailure", "ScoreReport", "collect_audio_files", "format_report",
           "score_files"]
