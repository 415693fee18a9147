"""Figures of the chapter *Data and likelihood* (``book/data_and_likelihood.ipynb``)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def utterance_figure(audio: np.ndarray, phones: Sequence, title: str = "", sample_rate: int = 16000,
                     n_fft: int = 256, hop_length: int = 64, n_mels: int = 80) -> Figure:
    """One utterance: its waveform with the hand-labelled phone segments shaded and named, above its Mel spectrogram.

    Args:
        audio: float waveform ``[T]`` in [-1, 1] (int16 samples / 32768).
        phones: the phone segments, objects with ``start`` and ``end`` (sample indices, end exclusive) and ``label``
            (e.g. :attr:`wavelab.data.Utterance.phones`).
        title: shown above the waveform (e.g. the utterance id and its text).
        sample_rate: Hz.
        n_fft, hop_length, n_mels: settings of the Mel spectrogram (librosa; the defaults are the benchmark's Mel
            baseline: window 256, hop 64, 80 bins), shown in dB relative to its maximum.
    Returns:
        the Figure (two rows sharing the time axis, seconds).
    """
    import librosa
    import librosa.display

    x = np.asarray(audio, dtype=np.float32)
    t = np.arange(len(x)) / sample_rate
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True)
    ax1.plot(t, x, lw=0.4, color="k")
    top = 0.9 * float(np.abs(x).max()) if len(x) else 1.0
    for i, seg in enumerate(phones):
        ax1.axvspan(seg.start / sample_rate, seg.end / sample_rate, color=f"C{i % 2}", alpha=0.12)
        ax1.text((seg.start + seg.end) / 2 / sample_rate, top, seg.label, ha="center", fontsize=7)
    ax1.set_ylabel("amplitude")
    if title:
        ax1.set_title(title)
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sample_rate, hop_length=hop_length,
                             x_axis="time", y_axis="mel", ax=ax2)
    ax2.set_xlabel("time [s]")
    fig.tight_layout()
    return fig


def mu_law_figure(pcm: np.ndarray, companded: np.ndarray, bits: int = 16, bins: int = 400) -> Figure:
    """The mu-law at 16 and 8 bits, and histograms of a set's samples before and after companding.

    Args:
        pcm: int16 samples ``[N]`` (e.g. a whole split, concatenated).
        companded: the companded values ``y_k`` in [-1, 1] of their mu-law codes ``[N]``
            (:func:`wavelab.audio.codes_to_companded`).
        bits: the code width of ``companded`` (named in its panel's title).
        bins: histogram bins (log counts).
    Returns:
        the Figure: the companding curves, the linear-PCM histogram, the code histogram (its gaps are codes that no
        sample uses).
    """
    import torch

    from ...audio import mu_law_compress

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
    lin = np.linspace(-1, 1, 1001)
    axes[0].plot(lin, mu_law_compress(torch.tensor(lin), 16).numpy(), label="16-bit mu-law")
    axes[0].plot(lin, mu_law_compress(torch.tensor(lin), 8).numpy(), label="8-bit mu-law", ls="--")
    axes[0].set_xlabel("linear amplitude x")
    axes[0].set_ylabel("companded y")
    axes[0].legend()
    axes[1].hist(np.asarray(pcm) / 32768, bins=bins, log=True, color="C0")
    axes[1].set_title("linear PCM")
    axes[1].set_xlabel("x")
    axes[2].hist(np.asarray(companded), bins=bins, log=True, color="C1")
    axes[2].set_title(f"{bits}-bit mu-law codes")
    axes[2].set_xlabel("$y_k$")
    axes[1].set_ylabel("samples")
    fig.tight_layout()
    return fig


def cdf_figure(y: np.ndarray, counts: np.ndarray, pmf: np.ndarray, model_label: str = "fitted 2-component DMoL",
               data_label: str = "training split (empirical CDF)") -> Figure:
    """The empirical CDF of a set's codes beside a fitted model's CDF.

    Args:
        y: the companded value of every code ``[K]`` (``K = 2**bits``), increasing.
        counts: how often each code occurs ``[K]``.
        pmf: the model's probability of each code ``[K]`` (sums to one).
        model_label, data_label: legend entries.
    Returns:
        the Figure (cumulative probability against ``y_k``).
    """
    counts = np.asarray(counts, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(y, counts.cumsum() / counts.sum(), lw=1.5, label=data_label)
    ax.plot(y, np.asarray(pmf, dtype=np.float64).cumsum(), lw=1.0, ls="--", label=model_label)
    ax.set_xlabel("companded value $y_k$")
    ax.set_ylabel("cumulative probability")
    ax.legend()
    fig.tight_layout()
    return fig
