"""Figures several chapters share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def as_array(x) -> np.ndarray:
    """A tensor (detached, on the CPU) or array-like as a NumPy array, unchanged in shape and dtype."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def waveform_figure(audio, title: str = "", sample_rate: int = 16000,
                    figsize: tuple[float, float] = (10, 1.8)) -> Figure:
    """The raw waveform of a clip (before the players' loudness normalisation), on a fixed [-1, 1] axis so that
    levels compare between figures.

    Args:
        audio: float audio ``[T]`` (NumPy array or tensor), full scale 1.
        title: shown above it (e.g. the model's name and the raw level).
        sample_rate: Hz, for the time axis.
        figsize: inches.
    Returns:
        the Figure (amplitude against seconds).
    """
    x = as_array(audio).astype(np.float32).reshape(-1)
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot(np.arange(len(x)) / sample_rate, x, lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("amplitude")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
