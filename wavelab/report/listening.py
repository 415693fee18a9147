"""A chapter's listening section in one call: a real test utterance, then one sample from the run behind each
record, each with a captioned player at the common loudness and its raw waveform, and the listening room that
draws more in JupyterLab.

:func:`listen` generates through each model's ``sample`` (its incremental step where it has one,
:meth:`wavelab.models.base.WavelabModel.generate`), so the chapters' players, the room and the codec share one
generation path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..train import load_run
from .records import ResultRecord, record_run_dir
from .tables import configuration, record_name, unit
from .widgets import (AudioPlayer, ListeningRoom, audio_player, generate, reference_player, rms_dbfs,
                      sample_caption)

#: a sample is "at full scale" where its magnitude exceeds this (full scale is 1)
FULL_SCALE = 0.99


def record_caption(record: ResultRecord, seconds: float, temperature: float = 1.0) -> str:
    """The caption of a sample from the run behind ``record`` (:func:`wavelab.report.widgets.sample_caption`): the
    model in the papers' spelling with its key configuration, the run, the temperature, the record's figure in its
    own unit (bpf, or bits per 8-bit sample) on its split, and the length, e.g. ``"WaveNet (Dc=32, blocks=2) · run
    wavenet-dc32-b2 · temperature 1.0 · 13.83 bpf (test) · 2.00 s"``."""
    config = configuration(record)
    name = record_name(record) + (f" ({config})" if config else "")
    return sample_caption(name, Path(record.run_dir or "").name, temperature, record.bpf_weighted, record.is_bound,
                          seconds=seconds, split=record.split, unit=unit(record))


@dataclass
class Listening:
    """What :func:`listen` made.

    Attributes:
        reference: the real utterance's player (:func:`wavelab.report.widgets.reference_player`).
        records: run name -> the record whose run was sampled.
        models: run name -> the trained model (evaluation mode).
        audio: run name -> the sample, float ``[round(seconds * 16000)]`` at its raw level (full scale 1), before
            the players' normalisation.
        wall_s: run name -> seconds its generation took.
        players: the reference's player, then one per run, in the order of ``records``.
    """

    reference: AudioPlayer
    records: dict[str, ResultRecord] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    audio: dict[str, np.ndarray] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)
    players: list[AudioPlayer] = field(default_factory=list)

    @property
    def reference_level(self) -> float:
        """The raw level of the whole reference utterance, dBFS RMS (gated, :func:`rms_dbfs`)."""
        return rms_dbfs(self.reference.utterance.audio().astype(np.float64) / 32768)

    @property
    def levels(self) -> dict[str, float]:
        """Run name -> the raw level of its sample, dBFS RMS."""
        return {run: rms_dbfs(x) for run, x in self.audio.items()}

    @property
    def full_scale(self) -> dict[str, float]:
        """Run name -> the share of its sample's values at full scale (magnitude above :data:`FULL_SCALE`)."""
        return {run: float((np.abs(x) > FULL_SCALE).mean()) for run, x in self.audio.items()}

    def levels_text(self) -> str:
        """One Markdown sentence: each sample's raw level against the real utterance's, and its share at full
        scale."""
        ref, full = self.reference_level, self.full_scale
        parts = [f"the {record_name(self.records[run])} sample ({run}) is at {level:.1f} dBFS RMS, "
                 f"{level - ref:+.1f} dB against the real utterance, with {100 * full[run]:.1f}% of its "
                 f"samples at full scale" for run, level in self.levels.items()]
        return f"Before normalisation, {'; '.join(parts)}. The real utterance is at {ref:.1f} dBFS RMS."

    def show(self, waveforms: bool = True) -> None:
        """Display every player, each sample's generation speed and, with ``waveforms``, the raw waveforms (the
        reference's too); each figure is closed once shown."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        from .plots.common import waveform_figure

        def waveform(audio: np.ndarray, title: str) -> None:
            if waveforms:
                fig = waveform_figure(audio, title)
                display(fig)
                plt.close(fig)

        start = int(round(self.reference.start_s * 16000))
        display(self.reference)
        waveform(self.reference.utterance.audio()[start:start + len(self.reference.audio)] / 32768,
                 f"{self.reference.utterance.id}: raw waveform (the utterance: {self.reference_level:.1f} dBFS RMS)")
        levels = self.levels
        for run, player in zip(self.records, self.players[1:]):
            n, wall = len(self.audio[run]), self.wall_s[run]
            print(f"{run}: {n:,} samples in {wall:.2f} s ({n / wall:,.0f} samples/s)")
            display(player)
            waveform(self.audio[run], f"{run}: raw waveform, {levels[run]:.1f} dBFS RMS")

    def room(self, max_seconds: float = 2.0, default_seconds: float = 1.0) -> ListeningRoom:
        """The listening room over :attr:`models`, with :attr:`players` as its fallback where no kernel runs."""
        return ListeningRoom(self.models, max_seconds=max_seconds, default_seconds=default_seconds,
                             fallback=self.players)


def listen(records: Iterable[ResultRecord], seconds: float, *, dataset: str = "timit", temperature: float = 1.0,
           seed: int = 0) -> Listening:
    """Load the run behind each record, draw ``seconds`` of audio from it at ``temperature`` (the same ``seed``
    for every run), and make the players: the real utterance of ``dataset``'s test split first.

    Args:
        records: results records of trained runs (:func:`wavelab.report.records.record_run_dir` finds each run).
        seconds: length of every sample and of the reference, seconds (> 0).
        dataset: the corpus of the reference utterance.
        temperature: the sampling temperature (1: the model's own distribution).
        seed: the generator seed of every sample.
    Returns:
        :class:`Listening`.
    Raises:
        ValueError: ``seconds`` not positive, or a record without a run (a baseline).
        FileNotFoundError: a record's run is missing.
    """
    out = Listening(reference_player(dataset, "test", index=0, seconds=seconds))
    out.players.append(out.reference)
    for record in records:
        run_dir = record_run_dir(record)
        model = load_run(run_dir)[0].eval()
        audio, wall = generate(model, seconds, temperature=temperature, seed=seed)
        run = run_dir.name
        out.records[run], out.models[run], out.audio[run], out.wall_s[run] = record, model, audio, wall
        out.players.append(audio_player(audio, caption=record_caption(record, len(audio) / 16000, temperature)))
    return out


__all__ = ["FULL_SCALE", "Listening", "listen", "record_caption"]
