"""Figures of the chapter *Recurrent models and latent variables* (``book/recurrent.ipynb``).

The learning curves of recorded runs and the waveforms of samples are drawn by
:func:`wavelab.report.plots.wavenet.learning_curves_figure` and :func:`wavelab.report.plots.wavenet.waveform_figure`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .wavenet import learning_curves_figure, waveform_figure  # noqa: F401  (re-exported for the chapter)

STACK_SIZES = (1, 64, 256)

IW_OFFSET = 1.18
"""The importance-weighted bound's marker sits this factor to the right of its ``s`` on the log-2 axis of
:func:`stack_size_figure`, so that it stays visible beside the ELBO marker of the same weights."""


def frames_figure(audio: np.ndarray, phones: Sequence, frames: np.ndarray, s: int, title: str = "",
                  sample_rate: int = 16000) -> Figure:
    """An utterance as a model with stack size ``s`` reads it: the waveform with phone boundaries, above its frames
    as the columns of an image.

    Args:
        audio: float waveform ``[T]`` in [-1, 1].
        phones: phone segments with ``start``, ``end`` (samples) and ``label``.
        frames: the companded frames ``[n, s]`` (values in [-1, 1]; :func:`wavelab.models.stacking.stack_frames`
            then :func:`wavelab.audio.codes_to_companded`).
        s: samples per frame.
        title: shown above the waveform.
        sample_rate: Hz (only for the axis label: one step = ``s / sample_rate`` seconds).
    Returns:
        the Figure, both panels on the axis of frame index ``t``.
    """
    x = np.asarray(audio, dtype=np.float32)
    frames = np.asarray(frames)
    n = frames.shape[0]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    ax1.plot(np.arange(len(x)) / s, x, lw=0.4, color="k")
    top = 0.9 * float(np.abs(x).max()) if len(x) else 1.0
    for seg in phones:
        ax1.axvline(seg.start / s, color="C1", lw=0.4, alpha=0.6)
        ax1.text((seg.start + seg.end) / 2 / s, top, seg.label, ha="center", fontsize=6)
    ax1.set_ylabel("amplitude")
    ax1.set_title(f"{title} (orange: phone boundaries)" if title else "orange: phone boundaries")
    ax2.imshow(frames.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
               extent=(0, n, 0, s))
    ax2.set_xlabel(f"frame t (one model step = {s} samples = {s / sample_rate * 1000:.0f} ms)")
    ax2.set_ylabel("sample i in frame (companded)")
    fig.tight_layout()
    return fig


def live_training_figure(curves: Mapping[str, Sequence[dict]], uniform_bpf: float = 16.0,
                         title: str = "live demonstration (not a result)") -> Figure:
    """The live runs' training loss and, for the latent models, their KL term.

    Args:
        curves: model name -> its training lines (:func:`wavelab.train.read_metrics`): ``frames_seen``, ``bpf``
            (training loss, bits per frame) and, for a latent model, ``kl_kl`` (KL, nats per frame). Every logged
            point gets a marker, so a run with few logging intervals still shows.
        uniform_bpf: the uniform distribution's figure, drawn as a reference line.
        title: the left panel's title.
    Returns:
        the Figure: training loss (left) and KL (right) against training frames seen; every model keeps its colour in
        both panels.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.5))
    for i, (name, lines) in enumerate(curves.items()):
        frames = [r["frames_seen"] for r in lines]
        ax1.plot(frames, [r["bpf"] for r in lines], "o-", ms=3, color=f"C{i}", label=name)
        if any("kl_kl" in r for r in lines):
            ax2.plot(frames, [r.get("kl_kl", np.nan) for r in lines], "o-", ms=3, color=f"C{i}", label=name)
    ax1.axhline(uniform_bpf, color="gray", ls="--", lw=0.7)
    ax1.annotate("uniform", (0.01, uniform_bpf), xycoords=("axes fraction", "data"), xytext=(0, 2),
                 textcoords="offset points", fontsize=8, color="gray")
    ax1.set_xlabel("training frames seen")
    ax1.set_ylabel("training loss [bpf]")
    ax1.set_title(title)
    ax1.legend()
    ax2.set_xlabel("training frames seen")
    ax2.set_ylabel("KL [nats per frame]")
    ax2.set_title("KL term of the latent models")
    ax2.legend()
    fig.tight_layout()
    return fig


def stack_size_figure(paper: Mapping[str, Sequence[tuple[int, float, bool]]],
                      ours: Sequence[tuple[str, int, float, str]], uniform_bpf: float = 16.0,
                      zoom_s: int | None = 64) -> Figure:
    """Bits per frame against the stack size ``s``: the paper's figures as dashed lines, ours as markers, and an inset
    that spreads out our figures at one ``s``, where they lie too close together to tell apart.

    Args:
        paper: model name -> ``(s, bpf, is_bound)`` of the paper's figures, in increasing ``s``.
        ours: ``(model, s, bpf, kind)`` of our records, ``kind`` ``"IW"`` for an importance-weighted bound and anything
            else (e.g. ``"exact"``, ``"ELBO"``) for the model's own figure. Exact figures and ELBOs are filled squares
            at ``s``; IW bounds are larger hollow triangles at ``s * IW_OFFSET``, so that they stay visible where
            they coincide with the ELBO.
        uniform_bpf: the uniform distribution's figure, drawn as a reference line.
        zoom_s: the stack size whose records the inset shows, one column per model (the ELBO or exact figure left, the
            IW bound right, on a y-axis of a few hundredths of a bit); None or fewer than two such records: no inset.
    Returns:
        the Figure (log-2 axis of ``s`` with ticks at 1, 64 and 256).
    """
    fig, ax = plt.subplots(figsize=(8, 4.6))
    colour = {name: f"C{i}" for i, name in enumerate(paper)}
    for name, figs in paper.items():
        ax.plot([f[0] for f in figs], [f[1] for f in figs], "--", color=colour[name], lw=1, marker="x",
                label=f"{name} (paper{', bound' if any(f[2] for f in figs) else ''})")

    def draw(axis, x, bpf, kind, c):
        if kind == "IW":
            axis.plot(x, bpf, "v", color=c, ms=10, mfc="none", mew=1.5)
        else:
            axis.plot(x, bpf, "s", color=c, ms=7)

    for model, s, bpf, kind in ours:
        draw(ax, s * IW_OFFSET if kind == "IW" else s, bpf, kind, colour.get(model, "k"))
    ax.plot([], [], "ks", ms=7, label="ours: exact / ELBO")
    ax.plot([], [], "kv", ms=10, mfc="none", mew=1.5, label="ours: IW bound")
    ax.axhline(uniform_bpf, color="gray", lw=0.7)
    ax.annotate("uniform", (1.05, uniform_bpf + 0.05), fontsize=8, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(STACK_SIZES))
    ax.set_xticklabels([str(s) for s in STACK_SIZES])
    ax.set_xlabel("stack size s [samples per step]")
    ax.set_ylabel("bits per frame (TIMIT test)")
    ax.legend(fontsize=8, ncol=2, loc="lower right")

    zoomed = [o for o in ours if zoom_s is not None and o[1] == zoom_s]
    if len(zoomed) > 1:
        names = {o[0] for o in zoomed}
        models = [m for m in paper if m in names] + sorted(names - set(paper))
        inset = ax.inset_axes([0.09, 0.5, 0.36, 0.36])
        for model, _, bpf, kind in zoomed:
            x = models.index(model) + (0.15 if kind == "IW" else -0.15)
            draw(inset, x, bpf, kind, colour.get(model, "k"))
        inset.set_xticks(range(len(models)))
        inset.set_xticklabels(models, fontsize=7)
        inset.set_xlim(-0.6, len(models) - 0.4)
        inset.tick_params(axis="y", labelsize=7)
        inset.margins(y=0.25)
        inset.set_title(f"ours at s = {zoom_s}, zoomed [bpf]", fontsize=8)
    fig.tight_layout()
    return fig


def kl_per_step_figure(audio: np.ndarray, phones: Sequence, kl_steps: Mapping[str, tuple[np.ndarray, int]],
                       silence: Sequence[str] = ("h#", "pau", "epi"), title: str = "",
                       sample_rate: int = 16000) -> Figure:
    """An utterance's waveform and, below it, the KL of every step of each latent model, silences shaded.

    Args:
        audio: float waveform ``[T]`` in [-1, 1].
        phones: phone segments with ``start``, ``end`` (samples) and ``label``.
        kl_steps: model name -> (KL of every step ``[n]`` in nats, the model's stack size ``s``; step ``t`` covers
            samples ``t s .. t s + s - 1``).
        silence: the phone labels shaded as silence.
        title: shown above the waveform.
        sample_rate: Hz.
    Returns:
        the Figure, one row for the waveform and one per model, sharing the time axis (seconds).
    """
    x = np.asarray(audio, dtype=np.float32)
    rows = 1 + len(kl_steps)
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.2 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    axes[0].plot(np.arange(len(x)) / sample_rate, x, lw=0.4, color="k")
    axes[0].set_ylabel("amplitude")
    top = 0.9 * float(np.abs(x).max()) if len(x) else 1.0
    for seg in phones:
        if seg.label in silence:
            for ax in axes:
                ax.axvspan(seg.start / sample_rate, seg.end / sample_rate, color="gray", alpha=0.15, lw=0)
        axes[0].text((seg.start + seg.end) / 2 / sample_rate, top, seg.label, ha="center", fontsize=6)
    for ax, (model, (kl, s)) in zip(axes[1:], kl_steps.items()):
        kl = np.asarray(kl, dtype=np.float64)
        ax.step(np.arange(len(kl)) * s / sample_rate, kl, where="post", lw=0.8, color="C3")
        ax.set_ylabel(f"{model} KL\n[nats/step]")
    axes[-1].set_xlabel("time [s]")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def kl_per_dimension_figure(kl_per_dim: Mapping[str, np.ndarray], active_threshold: float = 0.01,
                            free_nats_floor: float | None = None) -> Figure:
    """The KL of every latent dimension, sorted, per latent model.

    Args:
        kl_per_dim: model name -> KL of each latent dimension ``[Dz]`` in nats per step (summed over an utterance and
            divided by its number of steps), in any order (sorted here).
        active_threshold: nats per step above which a dimension counts as active (a grey line; the legend counts them).
        free_nats_floor: the free nats per step and dimension of the training objective (a dotted line), or None.
    Returns:
        the Figure (log KL against the dimension's rank).
    """
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for i, (model, kl) in enumerate(kl_per_dim.items()):
        per = np.sort(np.asarray(kl, dtype=np.float64))[::-1]
        active = int((per > active_threshold).sum())
        ax.semilogy(np.arange(1, len(per) + 1), np.maximum(per, 1e-8), color=f"C{i}",
                    label=f"{model}: {active} of {len(per)} dimensions active")
    if free_nats_floor is not None:
        ax.axhline(free_nats_floor, color="k", ls=":", lw=0.8, label=f"free nats / Dz = {free_nats_floor:.4f} nats")
    ax.axhline(active_threshold, color="gray", lw=0.7, label=f"active: > {active_threshold} nats per step")
    ax.set_xlabel("latent dimension (sorted by KL)")
    ax.set_ylabel("KL [nats per step]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
