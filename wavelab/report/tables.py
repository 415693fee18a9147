"""Tables for the book: results records in, a rendered table out, and one plain table type for everything else.

Every table a chapter shows is a :class:`Table`.  In a notebook and in the rendered book it displays as HTML
(``_repr_html_``: a ``<table class="wavelab-table">`` with a caption), never as Markdown, which the book's notebook
renderer parses as CommonMark, where pipe tables do not exist.  ``str(table)`` and :meth:`Table.markdown` give
GitHub-flavoured Markdown for terminals, scripts and READMEs.

:func:`records_table` is the one query helper for results: records (from :func:`wavelab.report.records.select`) in, the
paper's figure beside each, units in the header (bits per frame of 16-bit audio and bits per 8-bit sample are never
mixed in one column), and the columns every row shares moved into the caption so that the table fits the page.
Its ``provenance`` option folds each record's commit, run, seeds and hardware into a ``<details>`` cell.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..models import REGISTRY, display_name, key_fields
from .papers import PAPER_BPF

# the widest a table may render: the theme's content column holds about this many characters of table text at the
# table font size (sphinx-book-theme, 0.85em); the browser test checks the real width of every rendered table
_STYLE = ("<style>table.wavelab-table{font-size:0.85em;border-collapse:collapse;margin:0.5em 0 1em 0;max-width:100%}"
          "table.wavelab-table caption{caption-side:top;text-align:left;font-size:0.95em;padding-bottom:0.3em;"
          "color:var(--pst-color-text-muted,#555)}"
          "table.wavelab-table th,table.wavelab-table td{padding:0.2em 0.4em;border-bottom:1px solid #ddd;"
          "vertical-align:top}"
          "table.wavelab-table td{overflow-wrap:anywhere}"
          "table.wavelab-table th{text-align:left;border-bottom:2px solid #999;overflow-wrap:normal}"
          "table.wavelab-table th.num{text-align:right}"
          "table.wavelab-table td.num{text-align:right;white-space:nowrap}"
          "table.wavelab-table details summary{cursor:pointer;white-space:nowrap;color:var(--pst-color-link,#0a58ca)}"
          "table.wavelab-table tfoot td{border-bottom:none;font-size:0.9em;color:var(--pst-color-text-muted,#555)}"
          "</style>")


class Strong(str):
    """A cell's text shown in bold (``<strong>`` in HTML, ``**...**`` in Markdown), e.g. the best entry of a column."""


class Html(str):
    """A cell's content that is already HTML (inserted unescaped); its Markdown form is given separately.

    Args:
        html_text: the HTML.
        text: the plain-text / Markdown form (default: ``html_text`` with no markup stripped).
    """

    def __new__(cls, html_text: str, text: str | None = None):
        obj = super().__new__(cls, text if text is not None else html_text)
        obj.html = html_text
        return obj


def _cell_html(value: str) -> str:
    if isinstance(value, Html):
        return value.html
    text = html.escape(str(value))
    return f"<strong>{text}</strong>" if isinstance(value, Strong) else text


def _cell_markdown(value: str) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"**{text}**" if isinstance(value, Strong) and text else text


def _looks_numeric(value: str) -> bool:
    text = str(value).replace("<=", "").replace(",", "").replace("%", "").replace("+", "").replace("−", "-").strip()
    for suffix in (" s", " min", " h", " bpf", " dB"):
        text = text.removesuffix(suffix)
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Table:
    """A table with a caption, rendered as HTML in notebooks and the book, and as Markdown by ``str()``.

    Attributes:
        columns: the header cells.
        rows: the body, one sequence of cell strings per row, each as long as ``columns`` (a :class:`Strong` cell is
            bold; an :class:`Html` cell is inserted as HTML).
        caption: shown above the table (what the table shows, the constants every row shares, units).
        notes: shown under the table (footnotes, sources).
    Raises:
        ValueError: a row's length differs from the header's.
    """

    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    caption: str = ""
    notes: str = ""

    def __post_init__(self):
        self.columns = [str(c) for c in self.columns]
        self.rows = [[c if isinstance(c, str) else str(c) for c in row] for row in self.rows]
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table row {i} has {len(row)} cells, the header has {len(self.columns)}: {row!r}")

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]] | Iterable[dict[str, Any]],
                  columns: Sequence[str] | None = None, caption: str = "", notes: str = "") -> "Table":
        """A :class:`Table` from rows of values (formatted with ``str``) or from dicts keyed by column.

        Args:
            rows: sequences of cells, or dicts (then ``columns`` defaults to the first dict's keys, and a missing
                key is an empty cell).
            columns: the header.
            caption, notes: see :class:`Table`.
        Raises:
            ValueError: no columns given for sequence rows, or a row of the wrong length.
        """
        rows = list(rows)
        if rows and isinstance(rows[0], dict):
            columns = list(columns or rows[0])
            rows = [[r.get(c, "") for c in columns] for r in rows]
        if columns is None:
            raise ValueError("Table.from_rows() needs columns for rows that are not dicts")
        return cls(list(columns), [list(row) for row in rows], caption, notes)

    def column(self, name: str) -> list[str]:
        """The cells of the column headed ``name``. Raises ``KeyError`` naming the columns when there is none."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {self.columns}")
        j = self.columns.index(name)
        return [row[j] for row in self.rows]

    def markdown(self) -> str:
        """GitHub-flavoured Markdown: the caption as a paragraph, the table, then the notes."""
        lines = [self.caption, ""] if self.caption else []
        lines += ["| " + " | ".join(_cell_markdown(c) for c in self.columns) + " |",
                  "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell_markdown(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        numeric = [bool(self.rows) and all(_looks_numeric(row[j]) or not str(row[j]) for row in self.rows)
                   and any(str(row[j]) for row in self.rows) for j in range(len(self.columns))]
        cls = lambda j: ' class="num"' if numeric[j] else ""  # noqa: E731
        head = "".join(f"<th{cls(j)}>{_cell_html(c)}</th>" for j, c in enumerate(self.columns))
        body = "".join("<tr>" + "".join(f"<td{cls(j)}>{_cell_html(c)}</td>" for j, c in enumerate(row)) + "</tr>"
                       for row in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        foot = (f'<tfoot><tr><td colspan="{len(self.columns)}">{html.escape(self.notes)}</td></tr></tfoot>'
                if self.notes else "")
        return (f'{_STYLE}<table class="wavelab-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody>{foot}</table>")

    def __str__(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return f"Table({len(self.rows)} rows x {len(self.columns)} columns: {self.caption[:60]!r})"


# --------------------------------------------------------------------------------------------------------------------
# results records

DATASET_NAMES = {"timit": "TIMIT", "librispeech": "LibriSpeech"}
#: how tables name each baseline of :func:`wavelab.baselines.run_baselines` (registry models name themselves)
BASELINE_NAMES = {"uniform": "uniform", "dmol": "DMoL (fitted)", "flac": "FLAC", "flac+padding": "FLAC (with padding)",
                  "histogram": "histogram (fitted)", "flac-codes": "FLAC (codes as PCM)"}


def name_of(model: str) -> str:
    """How tables name a record's ``model``: a registry model's ``display_name`` (its config class says it), a
    baseline's name from :data:`BASELINE_NAMES`, anything else as it is."""
    return BASELINE_NAMES.get(model) or display_name(model)


#: :func:`name_of` of every model of the registry and every baseline, as the registry stands at import
MODEL_NAMES = {name: name_of(name) for name in (*REGISTRY, *BASELINE_NAMES)}

#: how tables name the waveform representations (:mod:`wavelab.representations`)
REPRESENTATION_NAMES = {"mulaw": "16-bit mu-law", "linear": "16-bit linear PCM",
                        "pcm16": "pcm16 (int16 pmf, companded input)"}

BUDGET_NAMES = {"cpu-budget": "CPU budget", "cpu-equal": "equal CPU budget", "cpu-hour": "hour CPU budget",
                "gpu": "GPU"}


def unit(record) -> str:
    """The unit of a record's figure: ``"bpf"`` (bits per frame of 16-bit audio, the benchmark's unit) or
    ``"bits per 8-bit sample"`` for a model of 8-bit mu-law codes (SaShiMi's own setting), from ``config["bits"]``."""
    bits = (record.config or {}).get("bits", 16)
    return "bpf" if bits in (None, 16) else f"bits per {bits}-bit sample"


def representation_text(record) -> str:
    """A record's waveform representation in words, e.g. ``"16-bit mu-law"`` (records without the field are
    mu-law)."""
    rep = record.representation
    return REPRESENTATION_NAMES.get(rep, rep)


def record_name(record) -> str:
    """A record's model in the papers' spelling with its stack size and latent layers, e.g. ``"CW-VAE s=64 L=2"``."""
    label = record.label
    head, _, rest = label.partition(" ")
    return (name_of(head) + (" " + rest if rest else "")).strip()


def configuration(record) -> str:
    """The key configuration fields of a record (paper symbols, the model config class's ``key_fields``), e.g.
    ``"Dc=96, blocks=5"``; ``""`` for a baseline.  Fields every model of a kind shares (10 layers per WaveNet block,
    10 DMoL components) are left to the folded provenance."""
    cfg = record.config or {}
    return ", ".join(f"{k}={cfg[k]}" for k in key_fields(record.model) if cfg.get(k) is not None)


def bpf_text(value: float | None, is_bound: bool, digits: int = 2) -> str:
    """``"12.34"`` or ``"<= 12.34"`` for an upper bound (negative ELBO, IW bound); ``""`` for ``None``."""
    if value is None:
        return ""
    return f"{'<= ' if is_bound else ''}{value:.{digits}f}"


def duration_text(seconds: float) -> str:
    """Seconds as ``"45 s"``, ``"12 min"`` or ``"3.5 h"``; ``""`` for 0."""
    if not seconds:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def hardware_text(record) -> str:
    """The training hardware in a few words: ``"2 CPU cores (AMD EPYC)"`` or ``"1 GPU (NVIDIA H200)"``."""
    hw = record.hardware or {}
    if hw.get("gpu"):
        return f"{hw.get('gpu_count') or 1} GPU ({hw['gpu']})"
    if hw.get("cpu") or hw.get("cores"):
        cores = hw.get("cores")
        return f"{cores} CPU cores ({hw.get('cpu', '?')})" if cores else f"CPU ({hw.get('cpu', '?')})"
    return ""


_ESTIMATOR_SHORT = (("importance-weighted bound", "IW bound"), ("uniform dequantization bound", "dequantized"),
                    ("ELBO", "ELBO"), ("exact", "exact"))


def estimator_text(record) -> str:
    """A record's estimator in a word or two: ``"exact"``, ``"ELBO"``, ``"IW bound K=10"`` or ``"dequantized"`` (the
    flows' bound under uniform dequantization noise); the full text is in the folded provenance."""
    est = record.estimator or ("bound" if record.is_bound else "exact")
    for prefix, short in _ESTIMATOR_SHORT:
        if est.startswith(prefix):
            k = est.split("K=")[-1].split(",")[0] if "K=" in est else ""
            return f"{short} K={k}" if k else short
    return est


def training_text(record) -> str:
    """Steps and wall time of training, e.g. ``"2,000 steps, 58 min"``, or its CPU time for a run on the CPU clock
    (``"31 steps, 4.0 CPU-min"``, see :attr:`wavelab.train.TrainConfig.clock`); ``""`` for a baseline."""
    if record.steps and getattr(record, "train_cpu_s", None) and (record.train_config or {}).get("clock") == "cpu":
        return f"{record.steps:,} steps, {record.train_cpu_s / 60:.1f} CPU-min"
    if record.steps:
        return f"{record.steps:,} steps, {duration_text(record.wall_time_s)}".rstrip(", ")
    return ""


def paper_config_mismatch(record, figure) -> dict[str, str]:
    """The configuration fields where the paper's figure was measured differently from ``record``: the ``key=value``
    pairs of ``figure.setting`` (e.g. ``"Dc=96"``) whose key the record's config has with another value, as
    ``{key: paper value}``; empty when they agree or the setting names none."""
    import re

    cfg = record.config or {}
    return {k: v for k, v in re.findall(r"\b(\w+)=(\d+)\b", getattr(figure, "setting", "") or "")
            if k in cfg and str(cfg[k]) != v}


def paper_text(record, figure) -> str:
    """The paper's figure for a record's row: ``"10.88"``, or ``"10.88 (Dc=96)"`` when the paper measured it with
    another configuration than the record's (:func:`paper_config_mismatch`); ``""`` for ``None``."""
    if figure is None:
        return ""
    diff = paper_config_mismatch(record, figure)
    return f"{figure}" + (f" ({', '.join(f'{k}={v}' for k, v in diff.items())})" if diff else "")


def _provenance_html(record) -> Html:
    commit = (record.train_commit or record.commit or {}).get("hash", "")
    dirty = (record.train_commit or record.commit or {}).get("dirty")
    items = [("commit", f"{commit[:10]}{' (uncommitted changes)' if dirty else ''}" if commit else "unknown"),
             ("run", record.run_dir or "none"), ("trained on", record.train_split or "-"),
             ("learning curve on", record.curve_split or "-"), ("estimator", record.estimator or "-"),
             ("seed / eval seed", f"{record.seed} / {record.eval_seed}"), ("hardware", hardware_text(record) or "-"),
             ("evaluated", f"{record.utterances} utterances, {record.frames or 0:,} frames, {record.created}")]
    cfg = ", ".join(f"{k}={v}" for k, v in (record.config or {}).items())
    if cfg:
        items.append(("config", cfg))
    tc = record.train_config or {}
    if tc:
        items.append(("training", ", ".join(f"{k}={tc[k]}" for k in ("segment_length", "batch_size", "lr", "amp")
                                            if k in tc)))
    body = "".join(f"<br><b>{html.escape(k)}</b>: {html.escape(str(v))}" for k, v in items)
    text = "; ".join(f"{k}: {v}" for k, v in items)
    return Html(f"<details><summary>{html.escape(commit[:7] or 'details')}</summary>{body}</details>", text)


def records_table(records: Sequence, *, paper: dict | None = None, caption: str = "", provenance: bool = False,
                  sort: bool = True, digits: int = 2, notes: str = "") -> "Table | Tables":
    """The results of ``records`` beside the paper's figures, in tables that fit the page: the one entry point from
    records to a table.

    One :class:`Table` per ``(dataset, split, unit)`` group (:func:`group_records`) and representation (mu-law
    first), so that no table mixes datasets, splits, units or representations; records of one group give a
    :class:`Table`, of several a :class:`Tables` (shown one after another).

    Columns: model, configuration, representation, estimator, ours [unit], paper [unit] (with the paper's
    configuration where it differs from ours, e.g. ``10.88 (Dc=96)``), ours - paper, training (steps, wall time),
    budget; a column whose cells are all equal (the estimator of a table of baselines, the budget of CPU-budget runs)
    moves into the caption instead, together with the dataset, split and number of utterances, which must be shared.
    Representations: a table of records of several representations keeps the representation column, so it never
    mixes them without saying so; a table of one representation other than mu-law names it in the caption (mu-law,
    the paper's, is the default and not repeated).  The paper's figures are shown for mu-law records only.
    With ``provenance=True`` a last column folds each record's commit, run directory, splits, seeds, configuration and
    hardware into a ``<details>`` element.

    Args:
        records: :class:`wavelab.report.records.ResultRecord` objects.
        paper: figures keyed by ``(record.label, dataset)``; default :data:`wavelab.report.papers.PAPER_BPF`.
        caption: the table's subject; the shared constants are appended.
        provenance: add the folded provenance column.
        sort: order rows by the figure, best first (else keep the given order).
        digits: decimals of the figures.
        notes: shown under the table.
    Returns:
        :class:`Table` or :class:`Tables` (HTML in a notebook, Markdown by ``str()``).
    Raises:
        ValueError: no records.
    """
    records = list(records)
    if not records:
        raise ValueError("records_table needs at least one record")
    from ..representations import REPRESENTATIONS

    rep_order = lambda k: (REPRESENTATIONS.index(k) if k in REPRESENTATIONS else 9, k)  # noqa: E731
    groups = [[r for r in g if r.representation == rep] for g in group_records(records).values()
              for rep in sorted({r.representation for r in g}, key=rep_order)]
    tables = Tables(_group_table(g, paper=PAPER_BPF if paper is None else paper, caption=caption,
                                 provenance=provenance, sort=sort, digits=digits, notes=notes) for g in groups)
    return tables[0] if len(tables) == 1 else tables


def _group_table(records: list, *, paper: dict, caption: str, provenance: bool, sort: bool, digits: int,
                 notes: str) -> Table:
    """:func:`records_table` of one group: records of one dataset, split, unit and representation."""
    if sort:
        records = sorted(records, key=lambda r: r.bpf_weighted)
    u = unit(records[0])
    columns = ["model", "configuration", "representation", "estimator", f"ours [{u}]", f"paper [{u}]",
               "ours − paper", "training", "budget"]
    rows = []
    for r in records:
        mulaw = r.representation == "mulaw"
        fig = paper.get((r.label, r.dataset)) if u == "bpf" and mulaw else None
        gap = "" if fig is None else f"{r.bpf_weighted - fig.bpf:+.{digits}f}"
        rows.append([record_name(r), configuration(r), representation_text(r), estimator_text(r),
                     bpf_text(r.bpf_weighted, r.is_bound, digits), paper_text(r, fig), gap,
                     training_text(r), BUDGET_NAMES.get(r.budget, r.budget)])
    shared = []
    for j in reversed(range(len(columns))):
        cells = {row[j] for row in rows}
        if columns[j] in ("estimator", "budget", "configuration", "training", "representation") and len(cells) == 1:
            value = cells.pop()
            if value and not (columns[j] == "representation" and value == REPRESENTATION_NAMES["mulaw"]):
                shared.append(f"{columns[j]}: {value}")
            del columns[j]
            for row in rows:
                del row[j]
        elif columns[j] in ("paper [bpf]", "ours − paper", f"paper [{u}]") and not any(cells):
            del columns[j]
            for row in rows:
                del row[j]
    if provenance:
        columns.append("provenance")
        for row, r in zip(rows, records):
            row.append(_provenance_html(r))
    utts = sorted({r.utterances for r in records if r.utterances is not None})
    where = (f"{DATASET_NAMES.get(records[0].dataset, records[0].dataset)} {records[0].split} split"
             + (f" ({', '.join(map(str, utts))} utterances)" if utts else ""))
    bound_note = "; <= marks an upper bound (negative ELBO or importance-weighted bound)" if any(
        r.is_bound for r in records) else ""
    full_caption = ". ".join(p for p in (caption.rstrip("."), where + "; " + "; ".join(reversed(shared))
                                         if shared else where) if p) + bound_note + "."
    return Table(columns, rows, full_caption, notes)


def group_records(records: Sequence) -> dict[tuple[str, str, str], list]:
    """Records grouped by ``(dataset, split, unit)``, the groups :func:`records_table` accepts, in a stable order
    (TIMIT before LibriSpeech, test before valid, bpf before other units)."""
    groups: dict[tuple[str, str, str], list] = {}
    for r in records:
        groups.setdefault((r.dataset, r.split, unit(r)), []).append(r)
    order = lambda k: (list(DATASET_NAMES).index(k[0]) if k[0] in DATASET_NAMES else 9, k[1] != "test", k[1],  # noqa: E731
                       k[2] != "bpf", k[2])
    return {k: groups[k] for k in sorted(groups, key=order)}


class Tables(list):
    """Several :class:`Table` objects shown one after another (HTML in a notebook, Markdown by ``str()``)."""

    def _repr_html_(self) -> str:
        return "".join(t._repr_html_() for t in self)

    def __str__(self) -> str:
        return "\n\n".join(t.markdown() for t in self)


__all__ = ["BUDGET_NAMES", "REPRESENTATION_NAMES", "Html", "Strong", "Table", "Tables", "bpf_text", "configuration",
           "duration_text", "estimator_text", "group_records", "hardware_text", "record_name", "name_of",
           "paper_config_mismatch", "paper_text", "records_table", "representation_text",
           "training_text", "unit"]
