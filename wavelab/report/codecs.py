"""The lossless codecs a model is compared with, as one list of figures: what ``benchmarks/lossless_codecs.py`` measured
on the project's splits (the Debian-packaged codecs), and the figures it quotes from ``../shared/anchors/
lossless_codecs.md`` for the codecs that are not packaged (Monkey's Audio, MPEG-4 ALS, SAC, paq8px), labelled as
measured outside the project.  The compression chapter's reference table, its Pareto picture and its finding all read
them through :func:`load_codec_figures`, so no figure is typed twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..settings import PROJECT_ROOT

#: the benchmark's committed output
CODEC_BENCHMARK = PROJECT_ROOT / "benchmarks" / "results" / "lossless_codecs.json"
#: how a figure was obtained (:attr:`CodecFigure.measured_by`)
BY_PROJECT, OUTSIDE = "the project", "outside the project"


@dataclass(frozen=True)
class CodecFigure:
    """One codec's figure on one data set.

    Attributes:
        key: the codec's key in the benchmark (``"flac-8-nopad"``, ``"SAC 0.7.25 --normal"``).
        label: its name and settings, for a table (Markdown).
        dataset: ``"timit"`` or ``"librispeech"``.
        split: ``"test"`` or ``"valid"`` (LibriSpeech's test split is test-other).
        bits_per_sample: whole files, headers included, over the set (bits per sample).
        encode_samples_per_s, decode_samples_per_s: one thread (samples per second); ``None`` where not measured.
        measured_by: :data:`BY_PROJECT` or :data:`OUTSIDE`.
        provenance: the benchmark's commit and hardware, or the anchor file the figure is quoted from.
    """

    key: str
    label: str
    dataset: str
    split: str
    bits_per_sample: float
    encode_samples_per_s: float | None
    decode_samples_per_s: float | None
    measured_by: str
    provenance: str


def load_codec_figures(path: str | Path = CODEC_BENCHMARK) -> list[CodecFigure]:
    """Every codec figure of the benchmark's output, the project's measurements first.

    Raises:
        FileNotFoundError: no benchmark output at ``path`` (run ``benchmarks/lossless_codecs.py``).
        ValueError: the file is not the benchmark's output (names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no codec benchmark; run .venv/bin/python benchmarks/lossless_codecs.py")
    data = json.loads(path.read_text())
    if data.get("benchmark") != "lossless_codecs":
        raise ValueError(f"{path} is not the output of benchmarks/lossless_codecs.py")
    ours = f"benchmarks/lossless_codecs.py at {data['commit']['hash'][:10]} on {data['hardware']['cpu']}"
    figures = []
    for key, codec in data["codecs"].items():
        for name, r in codec.get("results", {}).items():
            dataset, split = name.split(":")
            figures.append(CodecFigure(key, codec["label"], dataset, split, r["bits_per_sample"],
                                       r["encode_samples_per_s"], r["decode_samples_per_s"], BY_PROJECT, ours))
    for codec in data["outside_project"]:
        for name, bits in codec["bits_per_sample"].items():
            if bits is not None:
                dataset, split = name.split(":")
                figures.append(CodecFigure(codec["key"], codec["label"], dataset, split, bits,
                                           codec.get("encode_samples_per_s"), codec.get("decode_samples_per_s"),
                                           OUTSIDE, codec["provenance"]))
    return figures


def codec_figure(figures: list[CodecFigure], key: str, dataset: str, split: str = "test") -> CodecFigure | None:
    """The figure of codec ``key`` on ``dataset``'s ``split``, ``None`` when there is none."""
    return next((f for f in figures if (f.key, f.dataset, f.split) == (key, dataset, split)), None)


def best_codec(figures: list[CodecFigure], dataset: str, split: str = "test",
               min_encode_samples_per_s: float = 0.0) -> CodecFigure | None:
    """The codec with the fewest bits per sample on ``dataset``'s ``split`` among those encoding at least
    ``min_encode_samples_per_s`` (``0``: any speed); ``None`` when no figure qualifies."""
    pool = [f for f in figures if (f.dataset, f.split) == (dataset, split)
            and (f.encode_samples_per_s or 0.0) >= min_encode_samples_per_s]
    return min(pool, key=lambda f: f.bits_per_sample, default=None)


__all__ = ["BY_PROJECT", "CODEC_BENCHMARK", "OUTSIDE", "CodecFigure", "best_codec", "codec_figure",
           "load_codec_figures"]
