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


#: the portable codec's benchmark (``benchmarks/portable_codec.py``) and the classical baseline's
#: (``benchmarks/adaptive_baseline.py``)
PORTABLE_BENCHMARK = PROJECT_ROOT / "benchmarks" / "results" / "portable_codec.json"
ADAPTIVE_BENCHMARK = PROJECT_ROOT / "benchmarks" / "results" / "adaptive_baseline.json"


def record_figures(record_by_set: dict, key: str, label: str, provenance: str = "",
                   encode_samples_per_s: float | None = None) -> list[CodecFigure]:
    """A model's records (``{dataset: ResultRecord}``, test split) as codec figures measured by the project: its
    likelihood in bits per sample (the size of a range-coded file but for a few bytes per file)."""
    return [CodecFigure(key, label, d, "test", r.bpf_weighted, encode_samples_per_s, None, BY_PROJECT,
                        provenance or (r.notes or "")) for d, r in record_by_set.items()]


def portable_figures(path: str | Path = PORTABLE_BENCHMARK) -> list[CodecFigure]:
    """The portable codec's ``.wlc`` files on each test set of its benchmark, with its one-thread speeds."""
    data = json.loads(Path(path).read_text())
    prov = f"benchmarks/portable_codec.py at {data['commit']['hash'][:10]} on {data['hardware']['cpu']}"
    return [CodecFigure("wavelab portable", f"wavelab portable codec ({data['model']}, .wlc files)",
                        *name.split(":"), r["file_bpf"], r["encode_samples_per_s"], r["decode_samples_per_s"],
                        BY_PROJECT, prov) for name, r in data["sets"].items()]


def adaptive_figures(path: str | Path = ADAPTIVE_BENCHMARK) -> list[CodecFigure]:
    """The classical baseline (``wavelab.adaptive``: the NLMS cascade and the adaptive Laplace coder, ideal code
    lengths) on each set of its benchmark, with its one-thread speed on the TIMIT test split."""
    data = json.loads(Path(path).read_text())
    timing = data.get("speed_timit_test") or {}
    encode, decode = timing.get("encode_samples_per_s"), timing.get("decode_samples_per_s")
    prov = f"benchmarks/adaptive_baseline.py at {data['commit']['hash'][:10]} on {data['hardware']['cpu']}"
    out = []
    for name, r in data["sets"].items():
        dataset, split = name.split(":")
        out.append(CodecFigure("NLMS cascade + Laplace", "NLMS cascade + adaptive Laplace (wavelab.adaptive)",
                               dataset, split, r["bits_per_sample"], encode, decode, BY_PROJECT, prov))
    return out


def pareto_front(figures: list[CodecFigure]) -> list[CodecFigure]:
    """The figures no other one beats at once on rate and encode speed (those with a speed), fastest first."""
    timed = sorted((f for f in figures if f.encode_samples_per_s), key=lambda f: -f.encode_samples_per_s)
    front, best = [], float("inf")
    for f in timed:
        if f.bits_per_sample < best:
            front.append(f)
            best = f.bits_per_sample
    return front


def reference_table(figures: list[CodecFigure], sets: dict[str, str], caption: str = ""):
    """The per-set table: one row per codec (fewest bits on the first set first), a column per test set (``sets``:
    dataset -> column title), the encode speed on one thread and who measured it."""
    from .tables import Table

    keys = list(dict.fromkeys(f.key for f in figures))
    first = {f.key: f for f in figures if (f.dataset, f.split) == (next(iter(sets)), "test")}
    keys.sort(key=lambda k: first[k].bits_per_sample if k in first else float("inf"))
    rows = []
    for k in keys:
        mine = {f.dataset: f for f in figures if f.key == k and f.split == "test"}
        any_f = next(iter(mine.values()))
        speed = any_f.encode_samples_per_s
        rows.append([any_f.label] + [f"{mine[d].bits_per_sample:.3f}" if d in mine else "" for d in sets]
                    + [f"{speed:,.0f}" if speed else "", any_f.measured_by])
    return Table.from_rows(rows, ["codec"] + list(sets.values()) + ["encode samples/s", "measured by"],
                           caption=caption)


__all__ = ["ADAPTIVE_BENCHMARK", "BY_PROJECT", "CODEC_BENCHMARK", "OUTSIDE", "PORTABLE_BENCHMARK",
           "CodecFigure", "adaptive_figures", "best_codec", "codec_figure", "load_codec_figures", "pareto_front",
           "portable_figures", "record_figures", "reference_table"]
