"""Figures of the Clockwork VAE chapter (``book/cwvae.ipynb``).

Every function takes arrays or plain records (no model) and returns a matplotlib ``Figure``, made through pyplot so that
``plt.show()`` in the chapter shows it; none calls ``plt.show``.  Times are in samples of 16 kHz audio unless a name says otherwise; waveforms are floats in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.patches import FancyArrowPatch, Rectangle

SILENCE = ("h#", "pau", "epi")
"""TIMIT's non-speech labels, shaded as silence."""


def _arrow(ax, a, b, color, **kw) -> None:
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=8, color=color, shrinkA=7, shrinkB=7, **kw))


def clocks(x: np.ndarray, strides: Sequence[int], times: Sequence[np.ndarray], toy_strides: Sequence[int],
           toy_times: Sequence[np.ndarray], *, sample_rate: int = 16000, title: str = "") -> Figure:
    """The clocks of a CW-VAE and the two passes of inference of a toy hierarchy.

    Panel (a) draws each latent state of the model as a box held for ``s_l`` samples under the waveform, with arrows
    handing the first state of each upper layer down to the steps below it; (b) the ladder encoder of the toy
    hierarchy (bottom-up, reads x once); (c) its top-down inference and the frame-local decoder.

    Args:
        x: the waveform shown in (a), float ``[T_show]`` (scaled to fit; only its shape matters).
        strides: ``s_l`` of the model's layers, samples, bottom layer first (e.g. ``[64, 512, 4096]``).
        times: per layer, the sample indices of its updates (``model.update_times(T_show)``), int ``[n_l]``.
        toy_strides: the toy hierarchy's strides (e.g. ``[1, 2, 4]``), samples.
        toy_times: the toy's update times over its ``T_toy`` samples, per layer.
        sample_rate: Hz, for the time axis of (a) in ms.
        title: the title of (a).
    Returns:
        the Figure (12 x 8 inches).
    """
    fig = plt.figure(figsize=(12, 8))
    gs = GridSpec(2, 2, figure=fig, height_ratios=[1.25, 1], hspace=0.35, wspace=0.12)
    _model_clocks(fig.add_subplot(gs[0, :]), x, strides, times, 1000.0 / sample_rate, title)
    _toy_inference(fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1]), toy_strides, toy_times)
    return fig


def _model_clocks(ax, x: np.ndarray, strides: Sequence[int], times: Sequence[np.ndarray], ms: float,
                  title: str) -> None:
    """Panel (a) of :func:`clocks`: the waveform, each layer's states as boxes held for ``s_l`` samples, and the
    arrows that hand an upper state down (``ms``: milliseconds per sample)."""
    t_show = len(x)
    peak = float(np.abs(x).max()) or 1.0
    ax.plot(np.arange(t_show) * ms, 0.35 * np.asarray(x) / peak, lw=0.4, color="k")
    ax.text(-2, 0, "x", ha="right", va="center")
    for l, (t, s_l) in enumerate(zip(times, strides), start=1):
        t = np.asarray(t)
        for k, u in enumerate(t.tolist()):
            ax.add_patch(Rectangle((u * ms, l - 0.3), s_l * ms, 0.6, facecolor=f"C{l - 1}",
                                   alpha=0.45 if k % 2 == 0 else 0.2, edgecolor="white", lw=0.5))
        ax.plot(t * ms, np.full(len(t), l - 0.3), "|", color=f"C{l - 1}", ms=6)
        ax.text(-2, l, f"$z^{l}$", ha="right", va="center")
        ax.text(t_show * ms + 3, l, f"$s_{l}$ = {s_l:,} samples\n{len(t)} updates", va="center", fontsize=8)
    for l in range(len(times), 1, -1):  # the first upper state is copied to the c steps below it
        s_up, s_lo = strides[l - 1], strides[l - 2]
        for j in range(s_up // s_lo):
            ax.add_patch(FancyArrowPatch((s_up / 2 * ms, l - 0.3), ((j + 0.5) * s_lo * ms, l - 1 + 0.3),
                                         arrowstyle="-|>", mutation_scale=6, color="C4", lw=0.6))
    ax.set_xlim(-12, t_show * ms + 80)
    ax.set_ylim(-0.5, len(times) + 0.5)
    ax.set_yticks([])
    ax.set_xlabel("time [ms]")
    ax.set_title(title)


def _toy_inference(axb, axc, toy_strides: Sequence[int], toy_times: Sequence[np.ndarray]) -> None:
    """Panels (b) and (c) of :func:`clocks`: the toy hierarchy's ladder encoder (bottom-up) and its top-down
    inference with the frame-local decoder."""
    t_toy = max(int(np.asarray(t).max()) + s for t, s in zip(toy_times, toy_strides))

    def centre(l, u):  # the middle of layer l's step that starts at sample u
        return u + (toy_strides[l - 1] - 1) / 2

    for i in range(t_toy):  # (b) ladder encoder, bottom-up
        axb.plot(i, 0, "ks", ms=7)
        _arrow(axb, (i, 0), (centre(1, i), 1), "gray")
    for l, t in enumerate(toy_times, start=1):
        for u in np.asarray(t).tolist():
            axb.plot(centre(l, u), l, "s", color="gray", ms=9)
            if l > 1:
                for v in range(u, u + toy_strides[l - 1], toy_strides[l - 2]):
                    _arrow(axb, (centre(l - 1, v), l - 1), (centre(l, u), l), "gray")
        axb.text(-1, l, f"$e^{l}$", ha="right", va="center")
    axb.text(-1, 0, "$x$", ha="right", va="center")
    axb.set_title("(b) ladder encoder: reads x once, bottom-up", fontsize=10)
    for l, t in enumerate(toy_times, start=1):  # (c) top-down inference over the latents
        for k, u in enumerate(np.asarray(t).tolist()):
            axc.plot(centre(l, u), l, "o", color=f"C{l - 1}", ms=10)
            if k > 0:
                _arrow(axc, (centre(l, u - toy_strides[l - 1]), l), (centre(l, u), l), "k")
            if l > 1:
                for v in range(u, u + toy_strides[l - 1], toy_strides[l - 2]):
                    _arrow(axc, (centre(l, u), l), (centre(l - 1, v), l - 1), "C4")
        axc.text(-1, l, f"$z^{l}$", ha="right", va="center")
    for i in range(t_toy):
        axc.plot(i, 0, "ks", ms=7)
        _arrow(axc, (i, 1), (i, 0), "C3")
    axc.text(-1, 0, "$x$", ha="right", va="center")
    axc.plot([], [], color="k", label="recurrence within a layer ($h^l$)")
    axc.plot([], [], color="C4", label="context copied to the c steps below")
    axc.plot([], [], color="C3", label="decoder $p(x_t | z^1)$: no arrow between x's")
    axc.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2, frameon=False)
    axc.set_title("(c) top-down: layer L first, then each layer below", fontsize=10)
    for a in (axb, axc):
        a.set_xlim(-1.8, t_toy)
        a.set_ylim(-0.5, len(toy_times) + 0.5)
        a.axis("off")


def training_log(log: Sequence[Mapping[str, float]], kl_keys: Sequence[str], *, uniform_bpf: float = 16.0,
                 title: str = "live demonstration (not a result)") -> Figure:
    """The training log of one run: negative ELBO of the training segments and the KL of each layer, per step.

    Args:
        log: the rows of ``metrics.jsonl`` (:func:`wavelab.train.read_metrics`), each with ``"step"``, ``"bpf"`` (bits
            per frame) and the ``kl_keys`` (nats per frame).
        kl_keys: the KL entries, one per layer, e.g. ``["kl_kl_z1", "kl_kl_z2"]`` (the last character is the layer).
        uniform_bpf: the uniform baseline drawn as a dashed line (16 bits per 16-bit frame).
        title: the title of the left panel.
    Returns:
        the Figure (two panels, 12 x 3.4 inches).
    """
    fig = plt.figure(figsize=(12, 3.4), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    steps = [r["step"] for r in log]
    ax1.plot(steps, [r["bpf"] for r in log], color="k")
    ax1.axhline(uniform_bpf, color="gray", ls="--", lw=0.7)
    ax1.annotate("uniform", (0.01, uniform_bpf), xycoords=("axes fraction", "data"), fontsize=8, color="gray")
    ax1.set_xlabel("step")
    ax1.set_ylabel("negative ELBO [bpf]")
    ax1.set_title(title)
    for i, k in enumerate(kl_keys):
        ax2.plot(steps, [r[k] for r in log], color=f"C{i}", label=f"layer {k[-1]}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("KL [nats per frame]")
    ax2.legend()
    return fig


def learning_curves(runs: Mapping[int, tuple[Sequence[Mapping], Sequence[Mapping]]], paper_bpf: Mapping[int, float],
                    *, uniform_bpf: float = 16.0, dmol_bpf: float | None = None) -> Figure:
    """Learning curves of the recorded CW-VAE runs: training negative ELBO with the held-out evaluations, and the KL
    of every layer (solid: layer 1, dashed: 2, dotted: 3).

    Args:
        runs: ``{L: (training rows, evaluation rows)}`` from :func:`wavelab.train.read_metrics` (``kind="eval"`` for
            the second); training rows carry ``"step"``, ``"bpf"`` and ``"kl_kl_z1"`` ... ``"kl_kl_zL"`` (nats per
            frame); evaluation rows ``"step"``, ``"bpf"``, ``"utterances"`` and ``"split"`` (missing: ``"test"``, the
            logs from before the validation split).
        paper_bpf: ``{L: the paper's Table 1 figure}``, bits per frame, drawn dotted in the run's colour.
        uniform_bpf: the uniform baseline, dashed grey.
        dmol_bpf: the context-free fitted DMoL's figure, bits per frame, dash-dotted grey (None: not drawn).
    Returns:
        the Figure (two panels, 13 x 3.8 inches).
    Raises:
        KeyError: a training row lacks the KL of one of its layers.
    """
    fig = plt.figure(figsize=(13, 3.8), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    styles = {1: "-", 2: "--", 3: ":"}
    for i, (L, (tr, ev)) in enumerate(runs.items()):
        ax1.plot([t["step"] for t in tr], [t["bpf"] for t in tr], color=f"C{i}", lw=0.8, alpha=0.6,
                 label=f"L={L} (training)")
        for split in dict.fromkeys(e.get("split", "test") for e in ev):
            pts = [e for e in ev if e.get("split", "test") == split]
            ax1.plot([e["step"] for e in pts], [e["bpf"] for e in pts], "o-", color=f"C{i}", ms=3,
                     label=f"L={L} (held-out: {pts[0]['utterances']} {split} utterances)")
        for l in range(1, L + 1):
            key = f"kl_kl_z{l}"
            ax2.plot([t["step"] for t in tr], [t[key] for t in tr], styles.get(l, "-."), color=f"C{i}", lw=1,
                     label=f"L={L}: layer {l}")
        if L in paper_bpf:
            ax1.axhline(paper_bpf[L], color=f"C{i}", ls=":", lw=0.7)
    ax1.axhline(uniform_bpf, color="gray", ls="--", lw=0.7, label="uniform")
    if dmol_bpf is not None:
        ax1.axhline(dmol_bpf, color="gray", ls="-.", lw=0.8, label="fitted DMoL (test)")
    ax1.set_xlabel("step")
    ax1.set_ylabel("negative ELBO [bpf]")
    ax1.legend(fontsize=7, ncol=2)
    ax1.set_title("dotted: the paper's Table 1 figures", fontsize=9)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("KL [nats per frame]")
    ax2.legend(fontsize=7, ncol=2)
    return fig


def kl_per_step(x: np.ndarray, phones: Sequence, kl_steps: Sequence[np.ndarray], strides: Sequence[int],
                allowance: float, *, sample_rate: int = 16000, title: str = "") -> Figure:
    """The waveform and, below it, the KL of every step of every layer in nats per second of audio, silences shaded.

    Args:
        x: the waveform, float ``[T]``.
        phones: the utterance's phone spans, objects with ``start``, ``end`` (samples) and ``label`` (TIMIT's
            ``h#``, ``pau`` and ``epi`` are shaded as silence).
        kl_steps: per layer, the KL of each step in nats, ``[ceil(T / s_l)]``.
        strides: ``s_l`` of each layer, samples.
        allowance: the free-nats allowance of the training objective, nats per second (the same in every layer),
            drawn dotted.
        sample_rate: Hz.
        title: the title of the waveform panel.
    Returns:
        the Figure (``1 + L`` panels sharing the time axis in seconds).
    """
    n = len(kl_steps)
    fig = plt.figure(figsize=(12, 2.1 * (1 + n)), layout="tight")
    axes = fig.subplots(1 + n, 1, sharex=True)
    axes[0].plot(np.arange(len(x)) / sample_rate, x, lw=0.4, color="k")
    axes[0].set_ylabel("amplitude")
    top = 0.9 * float(np.abs(x).max())
    for seg in phones:
        if seg.label in SILENCE:
            for a in axes:
                a.axvspan(seg.start / sample_rate, seg.end / sample_rate, color="gray", alpha=0.15, lw=0)
        axes[0].text((seg.start + seg.end) / 2 / sample_rate, top, seg.label, ha="center", fontsize=6)
    for l, (kl, s_l) in enumerate(zip(kl_steps, strides), start=1):
        kl = np.asarray(kl, dtype=np.float64)
        axes[l].step(np.arange(len(kl)) * s_l / sample_rate, kl / (s_l / sample_rate), where="post", lw=0.8,
                     color=f"C{l - 1}")
        axes[l].axhline(allowance, color="k", ls=":", lw=0.8)
        axes[l].set_ylabel(f"layer {l} KL\n[nats/s]")
    axes[1].annotate(f"free-nats allowance of the training objective: {allowance:g} nats/s per layer",
                     (0.01, allowance), xycoords=("axes fraction", "data"), xytext=(0, 3),
                     textcoords="offset points", fontsize=8)
    axes[-1].set_xlabel("time [s]")
    axes[0].set_title(title)
    return fig


def waveforms(samples: Mapping[str, np.ndarray], *, sample_rate: int = 16000) -> Figure:
    """The raw waveforms of generated samples (before any loudness normalisation), one panel each.

    Args:
        samples: ``{title: float audio [T]}`` in [-1, 1].
        sample_rate: Hz.
    Returns:
        the Figure (one row per sample, amplitude axis fixed to [-1, 1] so that levels compare).
    """
    fig = plt.figure(figsize=(10, 1.6 * len(samples)), layout="tight")
    axes = np.atleast_1d(fig.subplots(len(samples), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, audio) in zip(axes, samples.items()):
        ax.plot(np.arange(len(audio)) / sample_rate, audio, lw=0.5)
        ax.set_ylim(-1, 1)
        ax.set_ylabel("amplitude")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("time [s]")
    return fig
