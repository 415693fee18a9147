"""Figures of the WaveFlow chapter (``book/waveflow.ipynb``).

Every function takes arrays or training metrics and returns a matplotlib ``Figure``; none calls ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import as_array as _array
from .common import waveform_figure  # noqa: F401  (re-exported: the chapters call it from here)


def squeeze_figure(indices, squeezed, title: str = "") -> Figure:
    """The squeeze operation: sample indices of a small matrix beside a squeezed stretch of speech.

    Args:
        indices: ``[h, W]`` integer sample index of each entry of a small squeezed matrix (e.g. ``h = 4``, ``W = 6``).
        squeezed: ``[h, W]`` companded values in [-1, 1] of a squeezed waveform (e.g. ``h = 16``, 100 columns of
            1 ms each).
        title: the right panel's title (e.g. the utterance id).
    Returns:
        the figure (two panels).
    """
    idx, Y = _array(indices).astype(int), _array(squeezed)
    h_small = idx.shape[0]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1, 2.4]})
    ax1.imshow(idx % h_small, cmap="Pastel1", origin="lower", aspect="auto")
    for r in range(idx.shape[0]):
        for c in range(idx.shape[1]):
            ax1.text(c, r, f"{idx[r, c]}", ha="center", va="center", fontsize=10)
    ax1.set_xlabel("column c")
    ax1.set_ylabel("row r")
    ax1.set_title(f"sample index, h = {h_small}, n = {idx.size}")
    im = ax2.imshow(Y, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax2.set_xlabel("column c (1 ms each)")
    ax2.set_ylabel("row r")
    ax2.set_title(title or f"squeezed, h = {Y.shape[0]} (companded value)")
    fig.colorbar(im, ax=ax2, fraction=0.03)
    fig.tight_layout()
    return fig


def dependency_figure(dependent, r0: int, c0: int, orders) -> Figure:
    """Which entries of ``X`` one output ``Z[r0, c0]`` of a flow depends on, beside the flows' row orders.

    Args:
        dependent: ``[h, W]`` booleans, ``dZ[r0, c0] / dX != 0`` (from an autograd Jacobian).
        r0, c0: the output entry's row and column (marked with a red square).
        orders: ``[flows, h']`` the original row read at each position of each flow's row order.
    Returns:
        the figure (two panels).
    """
    dep = _array(dependent).astype(float)
    orders = np.asarray(orders)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1.6, 1]})
    img = dep.copy()
    img[r0, c0] = 2
    ax1.imshow(img, origin="lower", cmap="Greys", vmin=0, vmax=2.5, aspect="auto")
    ax1.plot(c0, r0, "s", mfc="none", mec="C3", ms=11, mew=2)
    ax1.set_xlabel("column of X")
    ax1.set_ylabel("row of X")
    ax1.set_title(f"which X entries move Z[{r0}, {c0}] (one flow, h = {dep.shape[0]})")
    ax2.imshow(orders.T, origin="lower", cmap="viridis", aspect="auto")
    for i in range(orders.shape[0]):
        for j in range(orders.shape[1]):
            ax2.text(i, j, str(orders[i, j]), ha="center", va="center", fontsize=6, color="w")
    ax2.set_xlabel("flow")
    ax2.set_ylabel("position in the flow's row order")
    ax2.set_title(f"original row read (h = {orders.shape[1]})")
    fig.tight_layout()
    return fig


def jacobians_figure(jacobians: Mapping[str, object]) -> Figure:
    """The non-zero pattern of Jacobians ``dz / dx`` in time order, one panel each.

    Args:
        jacobians: title -> ``[n, n]`` Jacobian (``z_i`` along rows, ``x_j`` along columns).
    Returns:
        the figure (one panel per Jacobian).
    """
    fig, axes = plt.subplots(1, len(jacobians), figsize=(4 * len(jacobians), 3.8), squeeze=False)
    for ax, (name, J) in zip(axes[0], jacobians.items()):
        J = _array(J)
        n = J.shape[0]
        ax.imshow(J != 0, cmap="Greys", vmin=0, vmax=1.3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x_j (time)")
        ax.set_ylabel("z_i (time)")
        ax.set_xticks(range(0, n, 4))
        ax.set_yticks(range(0, n, 4))
    fig.tight_layout()
    return fig


def live_curve_figure(curve: Sequence[Mapping], title: str = "live demonstration (not a result)") -> Figure:
    """The training loss of a live run against the training frames seen, with the uniform 16 bpf.

    Args:
        curve: training metrics lines (:func:`wavelab.train.read_metrics`), each with ``frames_seen`` and ``bpf`` (the
            dequantization bound of a training batch, bits per frame).
        title: the axes title.
    Returns:
        the figure.
    """
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([r["frames_seen"] for r in curve], [r["bpf"] for r in curve], "k", lw=1)
    ax.axhline(16.0, color="gray", ls="--", lw=0.7)
    ax.annotate("uniform", (0.01, 16.0), xycoords=("axes fraction", "data"), fontsize=8, color="gray")
    ax.set_xlabel("training frames seen")
    ax.set_ylabel("training loss [bpf, bound]")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def learning_curves_figure(runs: Mapping[str, tuple[Sequence[Mapping], Sequence[Mapping]]]) -> Figure:
    """Learning curves of recorded runs: the training loss as a line, held-out evaluations as dots.

    Args:
        runs: run name -> (training metrics, evaluation metrics), both lists of metrics lines
            (:func:`wavelab.train.read_metrics` with ``kind="train"`` and ``kind="eval"``).  Training lines have
            ``frames_seen``, ``step`` and ``bpf``; evaluation lines have ``step``, ``bpf``, ``utterances`` and
            ``split`` (a line without ``split`` was measured on test utterances).
    Returns:
        the figure (bits per frame, an upper bound, against training frames seen, log scale).
    """
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for i, (name, (tr, ev)) in enumerate(runs.items()):
        ax.plot([t["frames_seen"] for t in tr], [t["bpf"] for t in tr], color=f"C{i}", lw=0.8, alpha=0.6,
                label=f"{name} (training loss)")
        for split in dict.fromkeys(e.get("split", "test") for e in ev):
            pts = [e for e in ev if e.get("split", "test") == split]
            frames = [next((t["frames_seen"] for t in tr if t["step"] >= e["step"]), np.nan) for e in pts]
            ax.plot(frames, [e["bpf"] for e in pts], "o-", color=f"C{i}", ms=3,
                    label=f"{name} (held-out: {pts[0]['utterances']} {split} utterances)")
    ax.axhline(16.0, color="gray", ls="--", lw=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("training frames seen")
    ax.set_ylabel("bits per frame (upper bound)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
