"""Figures of the SaShiMi chapter (``book/sashimi.ipynb``).

Every function takes arrays or training metrics and returns a matplotlib ``Figure``; none calls ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .common import as_array as _array
from .common import waveform_figure  # noqa: F401  (re-exported: the chapters call it from here)


def kernel_figure(kernel, naive, step_sizes) -> Figure:
    """S4 convolution kernels by the Cauchy/Woodbury path (lines) against matrix powers (dots), one panel per channel.

    Args:
        kernel: ``[H, L]`` real kernel taps ``K_k`` from the layer (Cauchy/Woodbury path and inverse FFT).
        naive: ``[H, L]`` the same taps from ``C Abar^k Bbar`` by repeated matrix products (real part used).
        step_sizes: ``[H]`` each channel's step size ``Delta``.
    Returns:
        the figure (lag on a log axis; dots at 40 log-spaced lags).
    """
    K, naive, dts = _array(kernel), np.real(_array(naive)), _array(step_sizes)
    H, L = K.shape
    fig, axes = plt.subplots(1, H, figsize=(13, 2.6), sharey=True, squeeze=False)
    idx = np.unique(np.geomspace(1, L, 40).astype(int)) - 1
    for h, ax in enumerate(axes[0]):
        ax.plot(np.arange(1, L + 1), K[h], lw=0.8, color=f"C{h}", label="Cauchy/Woodbury")
        ax.plot(idx + 1, naive[h, idx], "k.", ms=3, label="matrix powers")
        ax.set_xscale("log")
        ax.set_title(f"channel {h}: $\\Delta$ = {dts[h]:.4f}", fontsize=9)
        ax.set_xlabel("lag k + 1 [samples]")
    axes[0, 0].set_ylabel("$\\bar K_k$")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("S4 kernels at initialisation, one per channel, each with its own step size $\\Delta$", fontsize=10)
    fig.tight_layout()
    return fig


STABILITY_LABELS = {"tied": "tied: $\\Lambda - PP^*$", "untied": "untied: $\\Lambda - PQ^*$"}
_MARKERS = {"tied": "o", "untied": "x"}


def stability_figure(eigenvalues: Mapping[str, object], max_real: Mapping[str, np.ndarray],
                     abar_eigenvalues: Mapping[str, object], log10_state: Mapping[str, np.ndarray],
                     dt: float, sample_rate: int = 16000) -> Figure:
    """Tied against untied state matrices under random drift, in four panels.

    Args:
        eigenvalues: ``"tied"`` / ``"untied"`` -> ``[N]`` complex eigenvalues of ``A`` (first draw).
        max_real: the same keys -> ``[draws]`` largest real part of ``A``'s eigenvalues in each random draw.
        abar_eigenvalues: the same keys -> ``[H, N]`` complex eigenvalues of the bilinear ``Abar`` for each channel's
            step size (first draw).
        log10_state: the same keys -> ``[steps]`` ``log10 ||Abar^k B||`` after an impulse (channel 0, first draw).
        dt: channel 0's step size ``Delta`` (for the title).
        sample_rate: Hz, turns the steps of ``log10_state`` into seconds.
    Returns:
        the figure: eigenvalues of ``A`` (the unstable half-plane shaded), a histogram of ``max_real``, the 40
        largest ``|eig Abar|``, and the state norm against time.
    """
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    (ax_eig, ax_hist), (ax_mu, ax_state) = axes
    lo = min(np.min(v) for v in max_real.values())
    hi = max(np.max(v) for v in max_real.values())
    bins = np.linspace(lo, hi, 40)
    for i, name in enumerate(("tied", "untied")):
        lam, label, mk = _array(eigenvalues[name]), STABILITY_LABELS[name], _MARKERS[name]
        ax_eig.scatter(lam.real, lam.imag, s=14, color=f"C{i}", marker=mk, label=label)
        ax_hist.hist(max_real[name], bins=bins, color=f"C{i}", alpha=0.6, label=label)
        top = np.sort(np.abs(_array(abar_eigenvalues[name])).ravel())[::-1][:40]
        ax_mu.plot(np.arange(1, len(top) + 1), top, mk, ms=4, color=f"C{i}", label=label)
        state = log10_state[name]
        ax_state.plot(np.arange(len(state)) / sample_rate, state, color=f"C{i}", label=label)
    right = max(0.5, 1.2 * float(_array(eigenvalues["untied"]).real.max()))
    ax_eig.axvspan(0, right, color="C3", alpha=0.12, lw=0)
    ax_eig.axvline(0, color="k", lw=0.6)
    ax_eig.set_xscale("symlog", linthresh=1)
    ax_eig.set_yscale("symlog", linthresh=10)
    ax_eig.set_xlim(None, right)
    ax_eig.set_xlabel("Re $\\lambda$")
    ax_eig.set_ylabel("Im $\\lambda$")
    ax_eig.set_title("eigenvalues of $A$, first draw (red: the unstable half-plane)", fontsize=9)
    ax_hist.axvline(0, color="k", lw=0.6)
    ax_hist.set_xlabel("largest Re $\\lambda$ of $A$")
    ax_hist.set_ylabel("draws")
    ax_hist.set_title(f"{len(next(iter(max_real.values())))} random perturbations", fontsize=9)
    ax_mu.axhline(1, color="k", lw=0.6)
    ax_mu.set_xlabel("rank (the 40 largest over all channels)")
    ax_mu.set_ylabel("$|\\mu|$")
    ax_mu.set_title("moduli of the eigenvalues of $\\bar A$, first draw", fontsize=9)
    ax_state.set_xlabel("time [s]")
    ax_state.set_ylabel("$\\log_{10} \\|\\bar A^k \\bar B\\|$")
    ax_state.set_title(f"state after an impulse, first draw (channel 0, $\\Delta$ = {dt:.4f})", fontsize=9)
    for ax in axes.ravel():
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def live_curves_figure(curves: Sequence[tuple[str, Sequence[Mapping], float, str]]) -> Figure:
    """Training losses of live demonstration runs, one panel each (the panels may have different units).

    Args:
        curves: one ``(title, metrics, uniform, unit)`` per panel: training metrics lines
            (:func:`wavelab.train.read_metrics`, each with ``frames_seen`` and ``bpf``), the uniform model's cost in
            that unit (8 bits per 8-bit sample, 16 bpf) and the y-axis label.
    Returns:
        the figure.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 3.3), squeeze=False)
    for ax, (title, tr, uniform, unit) in zip(axes[0], curves):
        ax.plot([r["frames_seen"] for r in tr], [r["bpf"] for r in tr], color="C0")
        ax.axhline(uniform, color="gray", ls="--", lw=0.7)
        ax.annotate(f"uniform ({uniform:g})", (0.01, uniform), xycoords=("axes fraction", "data"), fontsize=8,
                    color="gray", xytext=(0, 2), textcoords="offset points")
        ax.set_xlabel("training samples seen")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def learning_curves_figure(runs: Sequence[tuple[str, Sequence[Mapping], Sequence[Mapping], float, float, str]]
                           ) -> Figure:
    """Learning curves of recorded runs, one panel each (the panels may have different units).

    Args:
        runs: one ``(title, train, evals, record, uniform, unit)`` per panel: training metrics lines (``frames_seen``,
            ``step``, ``bpf``), evaluation lines (``step``, ``bpf``, ``utterances``, ``split``; a line without
            ``split`` was measured on test utterances), the run's figure on the
            whole test split, the uniform model's cost in that unit and the y-axis label.
    Returns:
        the figure (training samples seen on a log axis).
    """
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.6), squeeze=False)
    for ax, (title, tr, ev, record, uniform, unit) in zip(axes[0], runs):
        ax.plot([r["frames_seen"] for r in tr], [r["bpf"] for r in tr], lw=0.8, alpha=0.7, label="training segments")
        for split in dict.fromkeys(e.get("split", "test") for e in ev):
            pts = [e for e in ev if e.get("split", "test") == split]
            frames = [next((t["frames_seen"] for t in tr if t["step"] >= e["step"]), np.nan) for e in pts]
            ax.plot(frames, [e["bpf"] for e in pts], "o-", ms=3, color="C1",
                    label=f"held-out ({pts[0]['utterances']} {split} utterances)")
        ax.axhline(record, color="C2", lw=0.8, ls=":", label=f"record, whole test split: {record:.2f}")
        ax.axhline(uniform, color="gray", ls="--", lw=0.7, label=f"uniform: {uniform:g}")
        ax.set_xscale("log")
        ax.set_xlabel("training samples seen")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
