"""Figures of the chapter *WaveNet* (``book/wavenet.ipynb``); :func:`learning_curves_figure` serves the recurrent
chapter too."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import waveform_figure  # noqa: F401  (re-exported: the chapters call it from here)


def receptive_field_figure(gradient: np.ndarray, receptive_field: int | None = None) -> Figure:
    """The magnitude of the gradient of the last prediction with respect to every input, against the lag.

    Args:
        gradient: ``|d prediction / d input|`` of every input sample ``[T]``, in input order (the last entry is the
            input just before the predicted sample, lag 0).
        receptive_field: ``R`` in samples, marked by a vertical line (None: no line).
    Returns:
        the Figure (log-scale gradient, lags decreasing to the right as in time order).
    """
    g = np.abs(np.asarray(gradient, dtype=np.float64))
    lags = np.arange(len(g))[::-1]
    fig, ax = plt.subplots(figsize=(9, 2.5))
    ax.semilogy(lags, g + 1e-30, lw=0.6)
    right = 1.1 * receptive_field if receptive_field else len(g)
    ax.set_xlim(right, 0)
    ax.set_ylim(1e-12, None)
    if receptive_field:
        ax.axvline(receptive_field - 1, color="gray", ls="--", lw=0.7)
        ax.annotate(f"R - 1 = {receptive_field - 1}", (receptive_field - 1, 1e-11), xytext=(3, 0),
                    textcoords="offset points", fontsize=8, color="gray")
    ax.set_xlabel("lag (samples before the predicted one's input)")
    ax.set_ylabel("|gradient|")
    fig.tight_layout()
    return fig


def _frames_at(train_lines: Sequence[dict], step: int) -> float:
    return next((t["frames_seen"] for t in train_lines if t["step"] >= step), np.nan)


def learning_curves_figure(runs: Mapping[str, str | Path], live: Sequence[dict] | None = None,
                           references: Sequence[tuple[float, str]] = (), ylim: tuple[float, float] | None = None,
                           ylabel: str = "bits per frame", figsize: tuple[float, float] = (10, 3.8),
                           legend_fontsize: int = 8, train_label: str = "training segments") -> Figure:
    """Learning curves of recorded runs: the training loss per logging interval, and as dots the held-out
    evaluations the run logged during training, each labelled with its split.

    Args:
        runs: legend name -> run directory (its ``metrics.jsonl`` is read with :func:`wavelab.train.read_metrics`;
            training lines give ``frames_seen`` and ``bpf``, evaluation lines ``step``, ``bpf``, ``utterances`` and
            ``split``, where a line without a split was measured on test utterances).
        live: training lines ``[{"frames_seen", "bpf"}, ...]`` of a run made in the chapter, drawn dotted black
            (None: none).
        references: ``(bpf, label)`` horizontal reference lines (e.g. the paper's figures), grey dashed.
        ylim: the bits-per-frame range (None: matplotlib's).
        ylabel: the y-axis label.
        figsize, legend_fontsize: the figure's size (inches) and the legend's font size.
        train_label: what the training curve is called in the legend (``"<run> (<train_label>)"``).
    Returns:
        the Figure (bits per frame against training frames seen, log x-axis).
    """
    from ...train import read_metrics

    fig, ax = plt.subplots(figsize=figsize)
    for i, (name, run) in enumerate(runs.items()):
        tr, ev = read_metrics(run), read_metrics(run, kind="eval")
        ax.plot([r["frames_seen"] for r in tr], [r["bpf"] for r in tr], lw=0.8, color=f"C{i}", alpha=0.6,
                label=f"{name} ({train_label})")
        for split in dict.fromkeys(e.get("split", "test") for e in ev):
            pts = [e for e in ev if e.get("split", "test") == split]
            ax.plot([_frames_at(tr, e["step"]) for e in pts], [e["bpf"] for e in pts], "o-", color=f"C{i}", ms=4,
                    label=f"{name} (held-out: {pts[0]['utterances']} {split} utterances)")
    if live:
        ax.plot([r["frames_seen"] for r in live], [r["bpf"] for r in live], "k:", lw=1, label="live run above")
    for y, name in references:
        ax.axhline(y, color="gray", ls="--", lw=0.7)
        ax.annotate(name, (0.01, y), xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                    fontsize=8, color="gray")
    ax.set_xscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("training frames seen")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_fontsize)
    fig.tight_layout()
    return fig
