"""Figures of the latent-study chapter (``book/latents.ipynb``).

Every function takes arrays or the stored study (:func:`wavelab.analysis.load_study`) and returns a matplotlib
``Figure``, made through pyplot so that ``plt.show()`` in the chapter shows it (none calls ``plt.show``).
Accuracies in the study are fractions; the figures show them in %.  The study's task key ``"gender"`` is the
speaker's sex (TIMIT's field) and is labelled so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

COLORS = {"z1": "C0", "z2": "C2", "mel": "C3"}
"""One colour per feature, in every figure of the chapter."""

TASK_NAMES = {"phone": "phone", "gender": "speaker sex", "height": "height class, male speakers"}
"""Reader-facing names of the study's task keys."""


def latent_trace(x: np.ndarray, mel: np.ndarray, phones: Sequence, single: Mapping[str, np.ndarray],
                 mean: Mapping[str, np.ndarray], spans: Mapping[str, np.ndarray], strides: Sequence[int],
                 speech_phones: Sequence, *, num_samples: int, sample_rate: int = 16000, hop: int = 64,
                 title: str = "") -> Figure:
    """One utterance as the study sees it: waveform, log-Mel frames, and one dimension of each latent layer.

    For each layer the dimension that varies most over the utterance is shown: a single posterior sample (grey),
    the mean of ``num_samples`` samples (colour) and its phone averages (black bars, what the classifier sees).

    Args:
        x: the waveform, float ``[T]`` in [-1, 1].
        mel: log-Mel frames ``[1 + T // hop, n_mels]`` in dB, frame ``i`` centred on sample ``hop * i``.
        phones: every phone span of the utterance (objects with ``start``, ``end`` in samples and ``label``),
            drawn as boundaries and labels.
        single: ``{"z1": [n1, Dz], "z2": [n2, Dz]}``, one posterior sample per step.
        mean: the same keys and shapes, posterior means of ``num_samples`` samples.
        spans: ``{"z1": [P, Dz], "z2": [P, Dz]}``, the means averaged over each of the ``speech_phones``.
        strides: ``[s1, s2]``, samples per step of the two layers.
        speech_phones: the ``P`` phone spans of ``spans`` (the non-speech labels left out).
        num_samples: K of the means, for the legend.
        sample_rate: Hz.
        hop: the Mel hop, samples.
        title: the title of the waveform panel.
    Returns:
        the Figure (4 panels sharing the time axis in seconds).
    """
    T = len(x)
    fig = plt.figure(figsize=(12, 8.5), layout="tight")
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.3, 1.2, 1.2]})
    axes[0].plot(np.arange(T) / sample_rate, x, lw=0.4, color="k")
    top = 0.9 * float(np.abs(x).max())
    for seg in phones:
        for ax in axes:
            ax.axvline(seg.start / sample_rate, color="C1", lw=0.4, alpha=0.5)
        axes[0].text((seg.start + seg.end) / 2 / sample_rate, top, seg.label, ha="center", fontsize=7)
    axes[0].set_ylabel("amplitude")
    axes[0].set_title(title)
    n_mels = mel.shape[1]
    axes[1].imshow(mel.T, aspect="auto", origin="lower", cmap="magma",   # frame i covers [hop i - hop/2, hop i + hop/2)
                   extent=(-hop / 2 / sample_rate, (len(mel) * hop - hop / 2) / sample_rate, 0, n_mels))
    axes[1].set_ylabel("log-Mel bin")
    for ax, (name, s_l), color in zip(axes[2:], zip(("z1", "z2"), strides), ("C0", "C2")):
        d = int(np.argmax(mean[name].var(axis=0)))
        t_steps = np.arange(len(mean[name]) + 1) * s_l / sample_rate
        ax.stairs(single[name][:, d], t_steps, color="0.6", lw=0.6, label="one posterior sample")
        ax.stairs(mean[name][:, d], t_steps, color=color, lw=1.0, label=f"mean of K = {num_samples} samples")
        ax.hlines(spans[name][:, d], [p.start / sample_rate for p in speech_phones],
                  [p.end / sample_rate for p in speech_phones], color="k", lw=2.5, label="phone average")
        ax.set_ylabel(f"{name}, dimension {d}\n(step {s_l} samples)")
        ax.legend(fontsize=7, loc="upper right", ncol=3)
    axes[-1].set_xlabel("time [s]")
    axes[-1].set_xlim(0, T / sample_rate)
    return fig


def phone_lda(embeddings: Mapping[str, np.ndarray], labels: np.ndarray) -> Figure:
    """The phones in the 2-D LDA plane of each feature, each class's label written at its mean.

    Args:
        embeddings: ``{feature: [N, 2]}``, the LDA projections of the ``N`` phone examples (fitted to all of them).
        labels: ``[N]`` phone labels (str).
    Returns:
        the Figure (one panel per feature).
    """
    labels = np.asarray(labels, dtype=str)
    classes = np.unique(labels)
    cmap = colormaps["tab20"]
    fig = plt.figure(figsize=(5 * len(embeddings), 5), layout="tight")
    axes = np.atleast_1d(fig.subplots(1, len(embeddings)))
    for ax, (name, emb) in zip(axes, embeddings.items()):
        for i, c in enumerate(classes):
            pts = emb[labels == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=9, color=cmap(i % 20), marker="o^s"[i // 20 % 3], alpha=0.6)
            ax.text(*pts.mean(axis=0), c, fontsize=8, ha="center", va="center", weight="bold",
                    color=cmap(i % 20))
        ax.set_xlabel(f"LDA 1 ({name})")
        ax.set_ylabel(f"LDA 2 ({name})")
        ax.set_title(f"phones in the LDA plane of {name}\n(labels at the class means)")
    return fig


def _curve(acc: Mapping) -> tuple[list[int], list[float]]:
    ks = sorted(acc, key=int)
    return [int(k) for k in ks], [100 * acc[k] for k in ks]


def phone_accuracy(task: Mapping, features: Sequence[str], *, title: str = "") -> Figure:
    """Leave-one-out kNN accuracy against k for each feature, with the chance levels of the same scheme.

    Args:
        task: the study's ``tasks["phone"]`` (``features[name]["accuracy"]["loo"]``: ``{k: fraction}``;
            ``chance["loo"]``: ``{"majority": fraction, "stratified": fraction}``).
        features: the features to draw, e.g. ``("z1", "z2", "mel")``.
        title: the axes title.
    Returns:
        the Figure (accuracy in %).
    """
    fig = plt.figure(figsize=(8, 4), layout="tight")
    ax = fig.subplots()
    for name in features:
        ks, acc = _curve(task["features"][name]["accuracy"]["loo"])
        ax.plot(ks, acc, "o-", color=COLORS.get(name), label=name)
    for strategy, ls in (("majority", "--"), ("stratified", ":")):
        ax.axhline(100 * task["chance"]["loo"][strategy], color="gray", ls=ls, lw=1, label=f"chance ({strategy})")
    ax.set_xlabel("k (neighbours)")
    ax.set_ylabel("LOO accuracy [%]")
    ax.set_ylim(0, None)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def speaker_accuracy(tasks: Mapping[str, Mapping], features: Sequence[str],
                     chance: Mapping[str, Mapping[str, float]]) -> Figure:
    """kNN accuracy against k for the speaker tasks, under leave-one-out (solid) and leave-one-speaker-out (dashed).

    Args:
        tasks: ``{task key: the study's task}`` (e.g. ``"gender"``, ``"height"``), each with ``labels`` ``[N]``,
            ``groups`` ``[N]`` (speaker ids) and ``features[name]["accuracy"][scheme]`` ``{k: fraction}`` for the
            schemes ``"loo"`` and ``"loso"``.
        features: the features to draw.
        chance: ``{task key: {legend label: fraction}}``, the chance levels drawn as grey lines (dotted, dash-dotted,
            then dashed, in the given order).
    Returns:
        the Figure (one panel per task, accuracy in %).
    """
    fig = plt.figure(figsize=(6.5 * len(tasks), 4.2), layout="tight")
    axes = np.atleast_1d(fig.subplots(1, len(tasks)))
    for ax, (key, t) in zip(axes, tasks.items()):
        for name in features:
            for scheme, ls in (("loo", "-"), ("loso", "--")):
                ks, acc = _curve(t["features"][name]["accuracy"][scheme])
                ax.plot(ks, acc, ls, marker="o", ms=3, color=COLORS.get(name), label=f"{name} {scheme}")
        for (label, value), ls in zip(chance.get(key, {}).items(), (":", "-.", (0, (5, 5)))):
            ax.axhline(100 * value, color="gray", ls=ls, lw=0.9, label=label)
        y = np.asarray(t["labels"], dtype=str)
        counts = ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(y, return_counts=True)))
        ax.set_title(f"{TASK_NAMES.get(key, key)} ({len(y)} utterances of {len(set(t['groups']))} speakers; "
                     f"{counts})", fontsize=9)
        ax.set_xlabel("k (neighbours)")
        ax.set_ylabel("accuracy [%]")
        ax.set_ylim(0, 102)
        ax.legend(fontsize=6.5, ncol=2)
    return fig


def speaker_lda(tasks: Mapping[str, Mapping], features: Sequence[str],
                class_order: Mapping[str, Sequence[str]]) -> Figure:
    """The LDA pictures of the speaker tasks, fitted to all utterances: a histogram of the single direction of a
    two-class task (sex), a scatter of the plane of a three-class one (height).

    Args:
        tasks: ``{task key: the study's task}``, each with ``labels`` ``[N]`` and ``features[name]["embedding"]``
            ``[N, 1]`` or ``[N, 2]``.
        features: the features, one column each.
        class_order: ``{task key: class labels in legend order}``.
    Returns:
        the Figure (one row per task, one column per feature).
    """
    fig = plt.figure(figsize=(14, 3.5 * len(tasks)), layout="tight")
    axes = fig.subplots(len(tasks), len(features), squeeze=False)
    for row, (key, t) in zip(axes, tasks.items()):
        y = np.asarray(t["labels"], dtype=str)
        order = [c for c in class_order.get(key, sorted(set(y))) if c in set(y)]
        for ax, name in zip(row, features):
            emb = np.asarray(t["features"][name]["embedding"])
            bins = np.histogram_bin_edges(emb[:, 0], bins=24)
            for i, c in enumerate(order):
                if emb.shape[1] == 1:
                    ax.hist(emb[y == c, 0], bins=bins, alpha=0.6, color=f"C{i}", label=c)
                else:
                    ax.scatter(emb[y == c, 0], emb[y == c, 1], s=14, alpha=0.7, color=f"C{i}", label=c)
            ax.set_xlabel(f"LDA 1 ({name})")
            ax.set_ylabel("utterances" if emb.shape[1] == 1 else f"LDA 2 ({name})")
            ax.set_title(f"{TASK_NAMES.get(key, key)}: {name}", fontsize=9)
            ax.legend(fontsize=7)
    return fig


PROTOCOL_STYLES = {"accuracy": ("-", "LDA inside each fold"), "accuracy_lda_all": ("--", "LDA on all rows")}
"""Line style and legend of each protocol's accuracies (the study's keys, see
:data:`wavelab.analysis.study.PROTOCOL_KEYS`)."""


def protocol_accuracy(tasks: Mapping[str, Mapping], features: Sequence[str],
                      panels: Sequence[tuple[str, str]] | None = None) -> Figure:
    """kNN accuracy against k under the two LDA protocols: fitted inside each fold (solid, the study's
    ``accuracy``) and fitted once to all rows before the kNN (dashed, ``accuracy_lda_all``, the paper's reading).

    Args:
        tasks: ``{task key: the study's task}``, each with ``labels`` ``[N]``, ``schemes``, ``chance[scheme]`` and
            ``features[name]`` holding both protocols' ``{scheme: {k: fraction}}`` and ``dim`` (``D``).
        features: the features to draw (one colour each, :data:`COLORS`).
        panels: the ``(task key, scheme)`` pairs to draw, one panel each (default: every scheme of every task).
    Returns:
        the Figure (accuracy in %, the stratified chance level of the folds as a grey dotted line).
    """
    if panels is None:
        panels = [(key, s) for key, t in tasks.items() for s in t["schemes"]]
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = plt.figure(figsize=(5.2 * ncols, 3.9 * nrows), layout="tight")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (key, scheme) in zip(axes, panels):
        t = tasks[key]
        for name in features:
            for acc_key, (ls, _) in PROTOCOL_STYLES.items():
                ks, acc = _curve(t["features"][name][acc_key][scheme])
                ax.plot(ks, acc, ls, marker="o", ms=3, color=COLORS.get(name))
        ax.axhline(100 * t["chance"][scheme]["stratified"], color="gray", ls=":", lw=0.9)
        dims = ", ".join(f"{n} {t['features'][n].get('dim', '?')}" for n in features)
        ax.set_title(f"{TASK_NAMES.get(key, key)}, {scheme}\n(N = {len(t['labels'])}; D: {dims})", fontsize=9)
        ax.set_xlabel("k (neighbours)")
        ax.set_ylabel("accuracy [%]")
        ax.set_ylim(0, 102)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=COLORS.get(n), lw=2, label=n) for n in features]
    handles += [plt.Line2D([], [], color="k", ls=ls, label=label) for ls, label in PROTOCOL_STYLES.values()]
    handles.append(plt.Line2D([], [], color="gray", ls=":", label="chance (stratified, of the folds)"))
    if len(panels) < len(axes):  # a free panel holds the legend
        spare = axes[len(panels)]
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(handles=handles, fontsize=9, loc="center")
    else:
        axes[0].legend(handles=handles, fontsize=7)
    return fig
