"""The papers' claims as orderings of two runs, judged at a budget: Table 1 of Havtorn et al. (and the WaveFlow and
SaShiMi claims a CPU can test) at 4 and at 60 CPU-minutes.

A :class:`Claim` says that one run's test bpf is below another's (``lower`` below ``higher``), naming the runs by
:func:`wavelab.report.curves.run_key`, the name their recipes share across campaigns (``"lstm-s64"`` is
``recipes/equal/eq-lstm-s64.toml`` and ``recipes/hour/hr-lstm-s64.toml``).  :func:`judge` compares the two test
records of one campaign and calls the claim

- ``"holds"`` when the gap is in the claim's direction and larger than the seed-to-seed spread,
- ``"reversed"`` when it is the other way by more than the spread,
- ``"within the seed spread"`` otherwise (the campaign cannot tell), and
- ``"no record"`` when either run is missing.

The spread (:func:`seed_spread`) is the largest difference between two seeds of one recipe, measured on the test split
by the runs of ``recipes/seeds/``.  :func:`crossover` reads the CPU-minute at which the validation curves cross
into the claim's order for good.  A latent model's figure is a bound (negative ELBO), so "below" compares its bound
with the other's figure, as the paper's Table 1 does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..models import WaveGlowConfig, registry_name
from .curves import LearningCurve, run_key

STATES = ("holds", "reversed", "within the seed spread", "no record")


@dataclass(frozen=True)
class Claim:
    """One ordering a paper reports.

    Attributes:
        text: the claim in words.
        source: where the paper says it (paper and table).
        lower, higher: :func:`~wavelab.report.curves.run_key` of the run the claim puts below, and of the other.
    """

    text: str
    source: str
    lower: str
    higher: str


TABLE_1 = "Havtorn et al., Table 1"
#: the claims the campaigns test, in the order the book lists them (WaveGlow's recipe is named after the model)
CLAIMS = (
    Claim("VRNN below the LSTM at s = 64", TABLE_1, "vrnn-s64", "lstm-s64"),
    Claim("SRNN below the LSTM at s = 64", TABLE_1, "srnn-s64", "lstm-s64"),
    Claim("CW-VAE L = 1 below the LSTM at s = 64", TABLE_1, "cwvae-s64-l1", "lstm-s64"),
    Claim("CW-VAE L = 2 below L = 1 at s = 64", TABLE_1, "cwvae-s64-l2", "cwvae-s64-l1"),
    Claim("WaveNet (s = 1) below the best s = 64 model (CW-VAE L = 2)", TABLE_1, "wavenet-dc32-b2", "cwvae-s64-l2"),
    Claim("WaveFlow h = 16 below WaveGlow", "Ping et al. (LJ Speech)", "waveflow-h16", registry_name(WaveGlowConfig)),
    Claim("SaShiMi below WaveNet", "Goel et al. (SC09, YouTubeMix)", "sashimi-16bit", "wavenet-paper"),
)


@dataclass
class Verdict:
    """A claim judged on one campaign's test records.

    Attributes:
        claim: the :class:`Claim`.
        gap: ``lower``'s test bpf minus ``higher``'s (negative: in the claim's direction); ``None`` without records.
        spread: the seed-to-seed spread it is judged against, bpf.
    """

    claim: Claim
    gap: float | None
    spread: float

    @property
    def state(self) -> str:
        """One of :data:`STATES`."""
        if self.gap is None:
            return "no record"
        if self.gap < -self.spread:
            return "holds"
        return "reversed" if self.gap > self.spread else "within the seed spread"

    def text(self) -> str:
        """``"holds (-0.21 bpf)"``, ``"no record"``."""
        return self.state if self.gap is None else f"{self.state} ({self.gap:+.2f} bpf)"


def by_run(records) -> dict:
    """The test records of a campaign keyed by :func:`~wavelab.report.curves.run_key` of their run (the model's own
    estimator only: importance-weighted records of the same run are left out)."""
    return {run_key(r.run_dir): r for r in records if _own_test_record(r)}


def _own_test_record(r) -> bool:
    return bool(r.run_dir) and r.split == "test" and not r.estimator.startswith("importance-weighted")


def judge(claim: Claim, records: dict, spread: float) -> Verdict:
    """:class:`Verdict` of ``claim`` on ``records`` (:func:`by_run` of one campaign), against ``spread`` bpf."""
    lower, higher = records.get(claim.lower), records.get(claim.higher)
    gap = None if lower is None or higher is None else lower.bpf_weighted - higher.bpf_weighted
    return Verdict(claim, gap, spread)


def seed_spread(records) -> dict[str, float]:
    """The seed-to-seed spread per recipe: ``{run key without its seed: |bpf(seed a) - bpf(seed b)|}`` from the test
    records of runs named ``...-seedN`` (``recipes/seeds/``), the largest difference where a recipe has more seeds.

    Raises:
        ValueError: two records of one recipe with the same seed.
    """
    seeds: dict[str, dict[int, float]] = {}
    for r in records:
        if not _own_test_record(r):
            continue
        m = re.fullmatch(r"(.+)-seed(\d+)", run_key(r.run_dir))
        if m:
            recipe = seeds.setdefault(m.group(1), {})
            if int(m.group(2)) in recipe:
                raise ValueError(f"two records of {m.group(1)} with seed {m.group(2)}")
            recipe[int(m.group(2))] = r.bpf_weighted
    return {k: max(v.values()) - min(v.values()) for k, v in seeds.items() if len(v) > 1}


def crossover(lower: LearningCurve, higher: LearningCurve) -> float:
    """The CPU-minute after which ``lower``'s validation curve stays below ``higher``'s, by linear interpolation of
    both curves on the union of their trained points within the range they share.

    Returns:
        the minute (interpolated between the last two points where the order changed); ``0.0`` when ``lower`` is below
        at every shared point; ``inf`` when it is not below at the last one.
    Raises:
        ValueError: the curves share no trained range.
    """
    a, b = lower.cpu_minutes[lower.trained], higher.cpu_minutes[higher.trained]
    start, end = max(a.min(), b.min()), min(a.max(), b.max())
    grid = np.union1d(a, b)
    grid = grid[(grid >= start) & (grid <= end)]
    if len(grid) == 0:
        raise ValueError(f"{lower.run} and {higher.run} share no trained range of CPU-minutes")
    d = (np.interp(grid, a, lower.bpf[lower.trained]) - np.interp(grid, b, higher.bpf[higher.trained]))
    if d[-1] >= 0:
        return math.inf
    behind = np.flatnonzero(d >= 0)
    if len(behind) == 0:
        return 0.0
    i = behind[-1]
    return float(grid[i] + (grid[i + 1] - grid[i]) * d[i] / (d[i] - d[i + 1]))


def crossover_text(minutes: float, end: float) -> str:
    """``"at 23 min"``, ``"ahead throughout"``, ``"not by 60 min"`` (``end``: the curves' last minute)."""
    if minutes == 0.0:
        return "ahead throughout"
    return f"not by {end:.0f} min" if not math.isfinite(minutes) else f"at {minutes:.0f} min"


def orderings_held(claims, predicted: dict[str, float], measured: dict[str, float]) -> tuple[int, int]:
    """How many of the claims whose two runs both have a prediction and a measurement are ordered the same way by
    the predictions as by the measurements (``{run key: bpf}`` each, e.g. a law's value at 60 CPU-minutes and the
    validation bpf there): ``(same order, claims compared)``."""
    keys = set(predicted) & set(measured)
    compared = [c for c in claims if {c.lower, c.higher} <= keys]
    same = sum((predicted[c.lower] < predicted[c.higher]) == (measured[c.lower] < measured[c.higher]) for c in compared)
    return same, len(compared)


def claims_table(claims, short: dict, long: dict, curves: dict, spread: float, paper: dict, caption: str = ""):
    """One row per claim: the paper's gap, the verdict at the short budget and at the long one, and the crossover.

    Args:
        claims: e.g. :data:`CLAIMS`.
        short, long: :func:`by_run` of the two campaigns (4 and 60 CPU-minutes).
        curves: the long campaign's validation curves keyed by run key.
        spread: the seed-to-seed spread, bpf.
        paper: figures keyed ``(label, "timit")`` (:data:`wavelab.report.papers.PAPER_BPF`).
        caption: the table's caption.
    Returns:
        a :class:`wavelab.report.tables.Table`.
    """
    from .tables import Table

    rows = []
    for c in claims:
        figs = [paper.get((r.label, "timit")) if r is not None else None
                for r in (short.get(c.lower), short.get(c.higher))]
        crossing = ""
        if c.lower in curves and c.higher in curves:
            lo, hi = curves[c.lower], curves[c.higher]
            crossing = crossover_text(crossover(lo, hi), min(lo.cpu_minutes[-1], hi.cpu_minutes[-1]))
        rows.append({"claim": c.text, "source": c.source,
                     "paper's gap [bpf]": f"{figs[0].bpf - figs[1].bpf:+.2f}" if None not in figs else "",
                     "4 CPU-min": judge(c, short, spread).text(),
                     "60 CPU-min": judge(c, long, spread).text() if c.lower in long and c.higher in long
                     else "no hour run",
                     "valid curves cross": crossing})
    return Table.from_rows(rows, caption=caption)


__all__ = ["CLAIMS", "STATES", "Claim", "Verdict", "by_run", "claims_table", "crossover", "crossover_text", "judge",
           "orderings_held", "seed_spread"]
