"""Figures of the chapter "Where each model stands" (the campaigns' learning curves, their extrapolations and the
backtests of those) and the book's headline figure on its first page."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _paper_bpf(curve, paper):
    figure = paper.get((curve.label, curve.record.dataset))
    return None if figure is None else figure.bpf


def curves_figure(groups: dict[str, list], paper: dict, figsize_per_row: tuple[float, float] = (10, 2.9)) -> Figure:
    """Validation bpf against training CPU-minutes (left) and against training frames seen (right), one row per
    group of models (e.g. by stack size ``s``), the paper's test figure of each model as a dashed line in its
    colour.  Latent models' curves are upper bounds (negative ELBO): hollow markers.

    Args:
        groups: ``{title: [LearningCurve, ...]}`` (:func:`wavelab.report.curves.equal_budget_curves`).
        paper: :data:`wavelab.report.papers.PAPER_BPF`.
        figsize_per_row: inches of one row.
    Returns:
        the Figure.
    """
    rows = len(groups)
    fig, axes = plt.subplots(rows, 2, figsize=(figsize_per_row[0], figsize_per_row[1] * rows), squeeze=False,
                             sharey="row")
    for (title, curves), (ax_t, ax_f) in zip(groups.items(), axes):
        for i, c in enumerate(curves):
            colour = f"C{i}"
            face = "none" if c.is_bound else colour
            k = c.trained  # the frames axis is logarithmic: the initial model (0 frames) is left out there
            for ax, x, y in ((ax_t, c.cpu_minutes, c.bpf), (ax_f, c.frames_seen[k], c.bpf[k])):
                ax.plot(x, y, "-", color=colour, lw=1.2)
                label = c.name if ax is ax_t else None
                ax.plot(x, y, "o", ms=3.5, color=colour, mfc=face, label=label)
            ref = _paper_bpf(c, paper)
            if ref is not None:
                for ax in (ax_t, ax_f):
                    ax.axhline(ref, color=colour, ls="--", lw=0.8, alpha=0.7)
        ax_t.set_title(title, fontsize=9, loc="left")
        ax_t.set_ylabel("valid bpf")
        ax_f.set_xscale("log")
        ax_t.legend(fontsize=7, ncol=2, loc="upper right")
        top = max(float(np.max(c.bpf[1:])) for c in curves) + 0.3
        refs = [r for r in (_paper_bpf(c, paper) for c in curves) if r is not None]
        ax_t.set_ylim(min(refs + [float(np.min(c.bpf)) for c in curves]) - 0.3, top)
    axes[-1, 0].set_xlabel("training CPU-minutes (one thread)")
    axes[-1, 1].set_xlabel("training frames seen")
    fig.text(0.99, 0.005, "dashed: the paper's test figure; hollow: upper bound (ELBO)", ha="right", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def extrapolation_figure(groups: dict[str, list], fits: dict[str, object], paper: dict,
                         t_max: float = 1e4) -> Figure:
    """The fitted power laws (:func:`wavelab.report.curves.fit_power_law`) carried from the budget out to ``t_max``
    CPU-minutes on a log axis, with their bootstrap bands, the measured points and the paper's figures.  Everything
    right of the measured points is an extrapolation, and the figure says so.

    Args:
        groups: as :func:`curves_figure`.
        fits: ``{curve run: PowerLawFit}`` (:attr:`wavelab.report.curves.LearningCurve.run`); a curve without a fit is
            drawn without one.
        paper: :data:`wavelab.report.papers.PAPER_BPF`.
        t_max: right end of the axis, CPU-minutes.
    Returns:
        the Figure.
    """
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.4), squeeze=False, sharey=True)
    for (title, curves), ax in zip(groups.items(), axes[0]):
        for i, c in enumerate(curves):
            colour = f"C{i}"
            keep = c.trained
            ax.plot(c.cpu_minutes[keep], c.bpf[keep], "o", ms=3, color=colour, mfc="none" if c.is_bound else colour)
            fit = fits.get(c.run)
            if fit is not None:
                t = np.geomspace(c.cpu_minutes[keep].min(), t_max, 200)
                lo, hi = fit.band(t)
                ax.plot(t, fit(t), "-", color=colour, lw=1, label=c.name)
                ax.fill_between(t, lo, hi, color=colour, alpha=0.12, lw=0)
            ref = _paper_bpf(c, paper)
            if ref is not None:
                ax.axhline(ref, color=colour, ls="--", lw=0.8, alpha=0.7)
        budget = max(float(c.cpu_minutes.max()) for c in curves)
        ax.axvspan(budget, t_max, color="0.92", zorder=-1)
        ax.text(budget * 1.3, 0.02, "extrapolation", transform=ax.get_xaxis_transform(), fontsize=7, color="0.4")
        ax.set_xscale("log")
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("training CPU-minutes")
        ax.legend(fontsize=6.5, loc="upper right")
    axes[0, 0].set_ylabel("valid bpf")
    fig.tight_layout()
    return fig


def backtest_figure(curves: list, fits: dict[str, dict[str, object]], columns: int = 3,
                    panel: tuple[float, float] = (3.5, 2.7)) -> Figure:
    """Long runs' learning curves with power laws fitted to their beginnings, carried to their ends: how far a law
    fitted early misses what the run then measured.  One panel per curve.

    Args:
        curves: the long runs' :class:`wavelab.report.curves.LearningCurve` s.
        fits: ``{curve run: {words for what the law was fitted to: (PowerLawFit, minutes fitted)}}``; each law is drawn
            over the whole curve with its bootstrap band, a dotted line at the last minute it was fitted to.
        columns: panels per row.
        panel: inches of one panel.
    Returns:
        the Figure (valid bpf against training CPU-minutes).
    """
    rows = -(-len(curves) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel[0] * columns, panel[1] * rows), squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, curve in zip(axes.flat, curves):
        k = curve.trained
        ax.plot(curve.cpu_minutes[k], curve.bpf[k], "o", color="k", mfc="none" if curve.is_bound else "k", ms=3,
                label="measured")
        for i, (words, (fit, until)) in enumerate(fits.get(curve.run, {}).items()):
            t = np.linspace(min(until, curve.cpu_minutes[k].min()), curve.cpu_minutes.max(), 200)
            lo, hi = fit.band(t)
            ax.plot(t, fit(t), "-", color=f"C{i}", lw=1.1, label=words)
            ax.fill_between(t, lo, hi, color=f"C{i}", alpha=0.15, lw=0)
            ax.axvline(until, color=f"C{i}", ls=":", lw=0.8)
        ax.set_title(curve.name, fontsize=8.5, loc="left")
        ax.tick_params(labelsize=7)
        last = curve.bpf[k]
        ax.set_ylim(float(last.min()) - 0.4, float(np.quantile(last, 0.9)) + 0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training CPU-minutes", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("valid bpf", fontsize=8)
    axes.flat[0].legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def headline_figure(curves: list, paper: dict, equal_minutes: float = 4.0,
                    figsize: tuple[float, float] = (8.5, 3.8)) -> Figure:
    """The book's headline picture: validation bpf against training CPU-minutes for the hour campaign's models, each
    with the paper's test figure for the same model as a dashed line in its colour, and the equal budget marked.

    Args:
        curves: the hour campaign's :class:`wavelab.report.curves.LearningCurve` s.
        paper: :data:`wavelab.report.papers.PAPER_BPF`.
        equal_minutes: the equal campaign's budget (a vertical line).
        figsize: inches.
    Returns:
        the Figure.
    """
    fig, ax = plt.subplots(figsize=figsize)
    end = max(float(c.cpu_minutes.max()) for c in curves)
    for i, c in enumerate(curves):
        k = c.trained
        ax.plot(c.cpu_minutes[k], c.bpf[k], "o-", color=f"C{i}", ms=3, lw=1.2,
                mfc="none" if c.is_bound else f"C{i}", label=c.name)
        ref = _paper_bpf(c, paper)
        if ref is not None:
            ax.axhline(ref, color=f"C{i}", ls="--", lw=0.8, alpha=0.8)
            ax.text(end * 1.01, ref, f"{ref:.2f}", color=f"C{i}", fontsize=7, va="bottom")
    ax.axvline(equal_minutes, color="0.5", ls=":", lw=0.8)
    ax.text(equal_minutes * 1.05, 0.97, "equal budget", transform=ax.get_xaxis_transform(), fontsize=7,
            color="0.4", va="top")
    ax.set_xlim(0, end * 1.08)
    if any(c.is_bound for c in curves):
        ax.text(0.01, 0.02, "hollow: upper bound (negative ELBO)", transform=ax.transAxes, fontsize=7, color="0.4")
    ax.set_xlabel("training CPU-minutes (one thread)")
    ax.set_ylabel("valid bpf")
    ax.set_title("Validation bits per frame against compute; dashed: the paper's test figure (days on a GPU)",
                 fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    fig.tight_layout()
    return fig


__all__ = ["backtest_figure", "curves_figure", "extrapolation_figure", "headline_figure"]
