"""Figures of the chapter "Likelihood is compression": the code lattice of each representation and the learning
curves of one model in several representations."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ...baselines import code_histogram
from ...representations import get_representation


def lattice_figure(pcm_arrays, window: int = 12, figsize: tuple[float, float] = (10, 5.6)) -> Figure:
    """The code lattice: where the int16 values near zero land among the 65,536 codes of 16-bit mu-law and of
    linear PCM (top), and how many training samples each code gets (bottom, log scale; empty codes are gaps).

    Args:
        pcm_arrays: int16 ``[T]`` arrays, e.g. the training split's ``Utterance.audio()``.
        window: the top panel shows the int16 values ``-window .. window``.
    Returns:
        the Figure.
    """
    mulaw, linear = get_representation("mulaw"), get_representation("linear")
    pcm_arrays = list(pcm_arrays)
    v = np.arange(-window, window + 1, dtype=np.int16)
    fig = plt.figure(figsize=figsize, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.3])
    ax = top.subplots(1, 1)
    for rep, colour, marker in ((mulaw, "C3", "o"), (linear, "C0", "s")):
        codes = rep.codes_from_pcm16(v).numpy() - 32768
        ax.plot(v, codes, marker, color=colour, ms=4, label=f"{rep.name}: code - 32768")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("int16 sample value v")
    ax.set_ylabel("code - 32768 (symlog)")
    step = int(mulaw.codes_from_pcm16(np.array([1], np.int16))[0]) - 32768
    ax.set_title(f"near zero one int16 step moves the mu-law code by {step:,} codes, the linear code by 1",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    axes = bottom.subplots(1, 2, sharey=True)
    for ax, rep, colour in ((axes[0], mulaw, "C3"), (axes[1], linear, "C0")):
        counts = code_histogram(rep.codes_from_pcm16(x) for x in pcm_arrays).numpy()
        k = np.nonzero(counts)[0]
        ax.vlines(k - 32768, 0.8, counts[k], color=colour, lw=0.4)
        ax.set_yscale("log")
        ax.set_ylim(0.8, None)
        ax.set_xlabel("code - 32768")
        ax.set_title(f"{rep.name}: {len(k):,} of 65,536 codes occur", fontsize=10)
    axes[0].set_ylabel("training samples")
    return fig


def representation_curves_figure(panels: dict[str, dict[str, object]], reference: dict[str, float] | None = None,
                                 ncols: int = 3, log_minutes: tuple[str, ...] = (),
                                 figsize_per_panel: tuple[float, float] = (3.4, 3.0)) -> Figure:
    """Validation bpf against training CPU-minutes, one panel per model, one line per representation (or variant).

    Args:
        panels: ``{panel title: {line label: LearningCurve}}`` (:mod:`wavelab.report.curves`: ``cpu_minutes``, ``bpf``,
            ``steps``, ``is_bound``); latent models' curves are
            upper bounds, drawn hollow.
        reference: ``{label: bpf}`` horizontal lines drawn in every panel (e.g. FLAC and the histogram on the same
            validation utterances).
        ncols: panels per row.
        log_minutes: titles of panels drawn with a logarithmic time axis (runs of very different lengths); the
            initial model's point (step 0) is left out there.
    Returns:
        the Figure.
    """
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(figsize_per_panel[0] * ncols, figsize_per_panel[1] * nrows),
                             squeeze=False, sharey=True, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    colours = {"mulaw": "C3", "linear": "C0", "pcm16": "C2"}
    for ax, (title, lines) in zip(axes.flat, panels.items()):
        log = title in log_minutes
        for i, (label, c) in enumerate(lines.items()):
            colour = colours.get(label, f"C{4 + i}")
            k = c.steps > 0 if log else slice(None)  # the initial model's point sits at ~0 minutes
            ax.plot(c.cpu_minutes[k], c.bpf[k], "-o", ms=3, lw=1.2, color=colour,
                    mfc="none" if c.is_bound else colour, label=label)
        if log:
            ax.set_xscale("log")
        for j, (label, bpf) in enumerate((reference or {}).items()):
            ax.axhline(bpf, color="0.35", ls=("--", ":")[j % 2], lw=1)
            ax.annotate(label, (ax.get_xlim()[1], bpf), xytext=(-2, 2), textcoords="offset points", ha="right",
                        va="bottom", fontsize=7, color="0.3")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training CPU-minutes")
        ax.legend(fontsize=7, loc="upper right")
    for row in axes:
        row[0].set_ylabel("valid bpf")
    axes[0, 0].set_ylim(top=min(17.0, axes[0, 0].get_ylim()[1]))
    return fig


def pmf_figure(distribution, params: torch.Tensor, centre: int, half_width: int = 400,
               figsize: tuple[float, float] = (10, 2.6)) -> Figure:
    """One predicted pmf over the int16 values ``centre - half_width .. centre + half_width`` (the model's
    ``params [3M]``), with the sample that occurred marked.

    Args:
        distribution: the model's :class:`~wavelab.distributions.DiscretizedMixtureLogistics`.
        params: ``[3M]`` DMoL parameters of one sample.
        centre: the int16 value that occurred.
    Returns:
        the Figure.
    """
    v = torch.arange(centre - half_width, centre + half_width + 1).clamp(-32768, 32767)
    codes = v + 32768
    with torch.no_grad():
        log_p = distribution.log_prob(params.view(1, -1, 1).expand(1, -1, len(v)), codes.view(1, -1))[0]
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    ax.fill_between(v.numpy(), log_p.exp().numpy(), step="mid", color="C2", lw=0)
    ax.axvline(centre, color="k", lw=0.8, ls="--")
    p = float(log_p[half_width].exp())
    ax.set_title(f"the model's pmf of the next sample; the sample that came (v = {centre}) costs "
                 f"{-np.log2(p):.2f} bits", fontsize=10)
    ax.set_xlabel("int16 value")
    ax.set_ylabel("probability")
    return fig


def pareto_figure(figures, sets: dict[str, str], ours: tuple[str, ...] = (), realtime: float = 16_000.0,
                  figsize_per_panel: tuple[float, float] = (5.2, 4.2)) -> Figure:
    """Rate against encode speed for every codec, one panel per test set, with the Pareto front (no codec both faster
    and smaller) and the real-time line of 16 kHz audio on one thread.

    Args:
        figures: :class:`wavelab.report.codecs.CodecFigure` s (those without an encode speed are left out).
        sets: ``{dataset: panel title}`` (test splits).
        ours: keys of the project's own models, drawn in red.
    Returns:
        the Figure (filled markers: measured by the project; hollow: measured outside it; labels on the front, on
        ours and on FLAC).
    """
    from ..codecs import OUTSIDE, pareto_front

    fig, axes = plt.subplots(1, len(sets), figsize=(figsize_per_panel[0] * len(sets), figsize_per_panel[1]),
                             layout="constrained", squeeze=False)
    for ax, (dataset, title) in zip(axes[0], sets.items()):
        pts = [f for f in figures if f.dataset == dataset and f.split == "test" and f.encode_samples_per_s]
        front = pareto_front(pts)
        for f in pts:
            colour = "C3" if f.key in ours else "C0"
            hollow = f.measured_by == OUTSIDE
            ax.plot(f.encode_samples_per_s, f.bits_per_sample, "o", ms=6, color=colour,
                    mfc="white" if hollow else colour)
            if f in front or f.key in ours or f.key == "flac-8-nopad":  # the rest: see the chapter's table
                ax.annotate(f.key, (f.encode_samples_per_s, f.bits_per_sample), fontsize=6.5, xytext=(4, 2),
                            textcoords="offset points", color=colour)
        ax.step([f.encode_samples_per_s for f in front], [f.bits_per_sample for f in front], where="post",
                color="0.5", lw=1, ls="--", label="Pareto front")
        ax.axvline(realtime, color="C2", lw=0.8, label="real time (16 kHz, one thread)")
        ax.set_xscale("log")
        ax.set_xlabel("encode speed, samples/s on one thread (log)")
        ax.set_ylabel("bits per sample")
        ax.set_title(title, fontsize=10)
    axes[0][0].legend(fontsize=7, loc="upper right")
    return fig


def utterance_wins_figure(rows: list[dict], ours: str, versus: dict[str, str],
                          figsize: tuple[float, float] = (10, 3.8)) -> Figure:
    """Per utterance, our codec's bits per sample minus each reference's (below zero: ours is smaller), against the
    utterance's loudness; colour by corpus, marker by the speaker's sex.

    Args:
        rows: ``per_utterance`` rows of ``benchmarks/portable_codec.py`` (``samples``, ``rms_dbfs``, ``corpus``,
            ``sex`` and bit counts).
        ours: the row key of our bits (e.g. ``"wlc_bits"``); versus: ``{row key: label}`` of the references.
    """
    fig, axes = plt.subplots(1, len(versus), figsize=figsize, layout="constrained", sharey=True, squeeze=False)
    for ax, (key, label) in zip(axes[0], versus.items()):
        for corpus, colour in (("timit", "C0"), ("librispeech", "C1")):
            for sex, marker in (("F", "o"), ("M", "^")):
                sel = [r for r in rows if r["corpus"] == corpus and r["sex"] == sex]
                if sel:
                    ax.scatter([r["rms_dbfs"] for r in sel], [(r[ours] - r[key]) / r["samples"] for r in sel],
                               s=14, color=colour, marker=marker, alpha=0.75, label=f"{corpus}, {sex}")
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xlabel("utterance loudness, dB below full scale (RMS)")
        ax.set_title(f"ours minus {label}", fontsize=10)
    axes[0][0].set_ylabel("bits per sample (below 0: ours smaller)")
    axes[0][0].legend(fontsize=7)
    return fig
