"""Learning curves of the campaigns, power laws fitted to them (extrapolations, labelled as such), and backtests of
those laws against longer runs.

Every run of ``recipes/equal/`` trained for the same budget, 4 CPU-minutes of one thread (``TrainConfig.clock =
"cpu"``: the process's CPU seconds spent training, validation taken out), and logged its bits per frame on the same
two validation utterances every 0.5 CPU-minute (``eval_every_minutes``), from the initial model (t = 0) to the end of
the budget.  :func:`learning_curve` reads such a curve back from the run behind a record; :func:`fit_power_law` fits

.. math::  b(t) = b_\\infty + A\\, t^{-\\alpha}, \\qquad t > 0 \\text{ in CPU-minutes},

the usual form of a compute scaling law (Kaplan et al. 2020, eq. 1.3, with an irreducible term as in Hoffmann et al.
2022, eq. 2), by bounded least squares, and gives its uncertainty by a parametric bootstrap.  ``minutes_to`` inverts it,

.. math::  t^*(b) = \\left(\\frac{A}{b - b_\\infty}\\right)^{1/\\alpha}, \\quad b > b_\\infty,

the CPU-minutes the fitted law needs to reach a figure ``b`` (the paper's, say); a figure at or below the fitted
asymptote is out of the law's reach (``inf``).  Eight points of one short run fix a curve's near future, not its
asymptote: the book shows every such number as an extrapolation, with its interval.  The hour campaign
(``recipes/hour/``: the same recipes for 60 CPU-minutes, a point every 3) is the truth they are tested against:
:func:`backtest` reads a law fitted to a curve's beginning where the long run measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: where the campaigns' records (and their exported runs, ``runs/NAME``) are, relative to results/: the equal-budget
#: campaign (4 CPU-minutes per run, ``recipes/equal/``), the hour campaign (60, ``recipes/hour/``) and the equal runs
#: again with two seeds (``recipes/seeds/``).
EQUAL_DIR, HOUR_DIR, SEEDS_DIR = "equal", "hour", "seeds"
#: bootstrap resamples of :func:`fit_power_law` and the two-sided interval it reports.
BOOTSTRAP = 200
INTERVAL = 0.9


@dataclass
class LearningCurve:
    """The validation curve of one run.

    Attributes:
        label: :func:`wavelab.report.records.record_label` of the record, e.g. ``"cwvae s=64 L=2"``.
        record: the :class:`wavelab.report.records.ResultRecord` (test split) of the run.
        cpu_minutes: ``[N]`` training CPU-minutes at each point (validation excluded), starting at 0.
        frames_seen: ``[N]`` training frames (samples) seen at each point.
        steps: ``[N]`` optimizer steps at each point.
        bpf: ``[N]`` bits per frame on the validation utterances (an upper bound for latent models).
        is_bound: the figures are negative ELBOs (upper bounds).
        split: the split the curve was measured on (``"valid"``).
        name: how the book names the model, e.g. ``"CW-VAE s=64 L=2"`` (:func:`wavelab.report.tables.record_name`);
            :func:`equal_budget_curves` adds the configuration where two runs would share a name
            (``"WaveNet Dc=32, blocks=2"``).
    """

    label: str
    record: object
    cpu_minutes: np.ndarray
    frames_seen: np.ndarray
    steps: np.ndarray
    bpf: np.ndarray
    is_bound: bool
    split: str
    name: str = ""

    @property
    def run(self) -> str:
        """The name of the run directory behind the curve (unique within a campaign), e.g. ``"eq-lstm-s64"``."""
        return Path(self.record.run_dir).name

    @property
    def trained(self) -> np.ndarray:
        """``[N]`` bool: the points after at least one step (all but the initial model's)."""
        return self.steps > 0


def learning_curve(record, results_dir: str | Path | None = None) -> LearningCurve:
    """The validation curve logged by the run behind ``record`` (its ``metrics.jsonl``, ``"kind": "eval"`` lines).

    Args:
        record: a :class:`wavelab.report.records.ResultRecord` of a trained run.
        results_dir: where to look for the exported run (see :func:`wavelab.report.records.record_run_dir`).
    Returns:
        :class:`LearningCurve` with the points in training order.
    Raises:
        ValueError: a baseline record, or a run that logged no validation points or none on the CPU clock
            (``train_cpu_s``; runs trained without ``TrainConfig.clock``).
        FileNotFoundError: the run is missing.
    """
    from ..runs import read_metrics
    from .records import record_run_dir
    from .tables import record_name

    run_dir = record_run_dir(record, results_dir)
    points = read_metrics(run_dir, kind="eval")
    if not points:
        raise ValueError(f"{run_dir}: the run logged no validation points (train it with eval_every_minutes)")
    if any("train_cpu_s" not in p for p in points):
        raise ValueError(f"{run_dir}: its validation points have no train_cpu_s (a run trained without the CPU clock)")
    points = sorted(points, key=lambda p: p["train_cpu_s"])
    return LearningCurve(
        label=record.label, record=record,
        cpu_minutes=np.array([p["train_cpu_s"] / 60 for p in points]),
        frames_seen=np.array([p.get("frames_seen", 0) for p in points], dtype=np.int64),
        steps=np.array([p["step"] for p in points], dtype=np.int64),
        bpf=np.array([p["bpf"] for p in points]),
        is_bound=bool(points[-1]["is_bound"]), split=str(points[-1].get("split", "")), name=record_name(record),
    )


def campaign_curves(campaign: str = EQUAL_DIR, dataset: str = "timit", results_dir: str | Path | None = None,
                    representation: str | None = "mulaw") -> list[LearningCurve]:
    """The curve of every run of one campaign on ``dataset``, one per run (the record of the model's own estimator;
    importance-weighted records of the same run are skipped), ordered by the final validation bpf.

    Args:
        campaign: the campaign's folder under the results folder: :data:`EQUAL_DIR` (4 CPU-minutes per run),
            :data:`HOUR_DIR` (60 CPU-minutes) or :data:`SEEDS_DIR` (equal runs with other seeds).
        dataset: ``"timit"`` or ``"librispeech"``.
        results_dir: the results folder (default :func:`wavelab.settings.results_dir`).
        representation: only runs of this waveform representation (default ``"mulaw"``, as every run so far;
            ``None``: any), so that one figure never mixes representations.
    Raises:
        FileNotFoundError: no such campaign folder, or a run behind a record is missing.
    """
    from ..settings import results_dir as default_results_dir
    from .records import load_records
    from .tables import configuration

    folder = Path(results_dir or default_results_dir()) / campaign
    records = [r for r in load_records(folder) if r.dataset == dataset and r.steps
               and not r.estimator.startswith("importance-weighted")
               and (representation is None or r.representation == representation)]
    curves = [learning_curve(r, folder) for r in records]
    shared = {c.name for c in curves if sum(d.name == c.name for d in curves) > 1}
    for c in curves:  # two runs of one model (the paper's WaveNet and the small one): say which is which
        if c.name in shared:
            c.name = f"{c.name} {configuration(c.record)}"
    return sorted(curves, key=lambda c: c.bpf[-1])


def equal_budget_curves(dataset: str = "timit", results_dir: str | Path | None = None,
                        representation: str | None = "mulaw") -> list[LearningCurve]:
    """:func:`campaign_curves` of the equal-budget campaign (:data:`EQUAL_DIR`, 4 CPU-minutes per run)."""
    return campaign_curves(EQUAL_DIR, dataset, results_dir, representation)


#: the prefixes of the campaigns' run names (``recipes/equal/eq-*``, ``recipes/hour/hr-*``, ``recipes/seeds/sd-*``)
CAMPAIGN_PREFIXES = ("eq-", "hr-", "sd-")


def run_key(run: str) -> str:
    """A run's name (or run directory) without its campaign's prefix, the name one recipe's runs share across
    campaigns: ``"eq-lstm-s64"`` and ``"runs/hr-lstm-s64"`` are both ``"lstm-s64"``."""
    name = Path(run).name
    return name[3:] if name[:3] in CAMPAIGN_PREFIXES else name


def stack_size(curve: LearningCurve) -> int:
    """The stack size ``s`` of the curve's model (samples per step of the recurrence; 1 for sample-level models)."""
    config = curve.record.config or {}
    return int(config.get("s", config.get("s1", 1)) or 1)


def group_by_stack(curves: list[LearningCurve]) -> dict[str, list[LearningCurve]]:
    """The curves grouped by stack size, in increasing ``s``: ``{"s = 1": [...], "s = 64": [...], ...}`` (the rows
    of Havtorn et al.'s Table 1), each group in the input order."""
    groups: dict[int, list[LearningCurve]] = {}
    for c in curves:
        groups.setdefault(stack_size(c), []).append(c)
    return {f"s = {s}": groups[s] for s in sorted(groups)}


@dataclass
class PowerLawFit:
    """``b(t) = b_inf + A t^-alpha`` fitted to a learning curve (t in CPU-minutes), with bootstrap resamples.

    Attributes:
        b_inf, A, alpha: the least-squares parameters (bits per frame; bits per frame x minutes^alpha; unitless).
        samples: ``[B, 3]`` the parameters refitted on bootstrap resamples of the curve (see :func:`fit_power_law`).
        rmse: root mean square residual of the fit, bits per frame.
        t_max: the last CPU-minute of the data (a prediction beyond it is an extrapolation).
        interval: the probability mass of the intervals (0.9: the 5th to the 95th percentile).
    """

    b_inf: float
    A: float
    alpha: float
    samples: np.ndarray = field(repr=False)
    rmse: float
    t_max: float
    interval: float = INTERVAL

    def __call__(self, t) -> np.ndarray:
        """The fitted bpf at CPU-minutes ``t`` (array or number, > 0)."""
        t = np.asarray(t, dtype=float)
        return self.b_inf + self.A * t ** (-self.alpha)

    def band(self, t) -> tuple[np.ndarray, np.ndarray]:
        """The pointwise interval of the fitted bpf at ``t`` over the bootstrap resamples: ``(low, high)``."""
        t = np.asarray(t, dtype=float)[None, :]
        s = self.samples
        values = s[:, :1] + s[:, 1:2] * t ** (-s[:, 2:3])
        q = (1 - self.interval) / 2
        return np.quantile(values, q, axis=0), np.quantile(values, 1 - q, axis=0)

    def minutes_to(self, target: float) -> float:
        """CPU-minutes the fitted law needs to reach ``target`` bpf (``inf`` if the fitted asymptote is not below
        it; the data's own time if the curve is already there)."""
        return _minutes_to(self.b_inf, self.A, self.alpha, target)

    def minutes_to_interval(self, target: float) -> tuple[float, float]:
        """The bootstrap interval of :meth:`minutes_to` (either end may be ``inf``)."""
        t = np.array([_minutes_to(*p, target) for p in self.samples])
        q = (1 - self.interval) / 2  # "nearest": no interpolation between a finite time and inf
        return float(np.quantile(t, q, method="nearest")), float(np.quantile(t, 1 - q, method="nearest"))

    def b_inf_interval(self) -> tuple[float, float]:
        """The bootstrap interval of the asymptote ``b_inf``."""
        q = (1 - self.interval) / 2
        return float(np.quantile(self.samples[:, 0], q)), float(np.quantile(self.samples[:, 0], 1 - q))


def _minutes_to(b_inf: float, A: float, alpha: float, target: float) -> float:
    if target <= b_inf:
        return math.inf
    if A <= 0:
        return 0.0
    return float((A / (target - b_inf)) ** (1 / alpha))


def _least_squares(t: np.ndarray, b: np.ndarray, start: np.ndarray) -> np.ndarray:
    from scipy.optimize import least_squares

    lo, hi = np.array([0.0, 0.0, 0.01]), np.array([float(b.min()), np.inf, 3.0])
    x0 = np.clip(start, lo, np.where(np.isfinite(hi), hi, start + 1))
    x0[0] = min(x0[0], hi[0] - 1e-6) if hi[0] > 1e-6 else 0.0
    res = least_squares(lambda p: p[0] + p[1] * t ** (-p[2]) - b, x0, bounds=(lo, hi + 1e-9))
    return res.x


def fit_power_law(cpu_minutes, bpf, bootstrap: int = BOOTSTRAP, seed: int = 0,
                  interval: float = INTERVAL) -> PowerLawFit:
    """Fit ``b(t) = b_inf + A t^-alpha`` to the points with ``t > 0`` of a learning curve.

    Bounded least squares (scipy's trust-region reflective): ``0 <= b_inf <= min(b)`` (the asymptote lies below
    every measured point), ``A >= 0``, ``0.01 <= alpha <= 3``.  The uncertainty is a parametric bootstrap: the
    fitted curve plus Gaussian noise, refitted ``bootstrap`` times, where each resample draws its noise scale from
    the scale's posterior given the residuals (``sigma^2 = SSR / chi^2_{N-3}``), since with 8 points the residuals
    fix the noise level poorly.  On synthetic laws with the campaign's grid (``tests/test_curves.py``) the nominal 90%
    intervals of ``b_inf`` and of :meth:`PowerLawFit.minutes_to` cover the truth about 80% of the time: read them
    as optimistic.

    Args:
        cpu_minutes: ``[N]`` CPU-minutes of the points (those at 0 are left out: the power law diverges there).
        bpf: ``[N]`` bits per frame.
        bootstrap: resamples.
        seed: seed of the resampling.
        interval: probability mass of the reported intervals.
    Returns:
        :class:`PowerLawFit`.
    Raises:
        ValueError: fewer than 4 points with ``t > 0`` (3 parameters need more), or lengths that differ.
    """
    t, b = np.asarray(cpu_minutes, dtype=float), np.asarray(bpf, dtype=float)
    if t.shape != b.shape:
        raise ValueError(f"cpu_minutes and bpf differ in length: {t.shape} and {b.shape}")
    keep = t > 0
    t, b = t[keep], b[keep]
    if len(t) < 4:
        raise ValueError(f"fit_power_law needs at least 4 points with t > 0, got {len(t)}")
    start = np.array([0.9 * b.min(), max(b[0] - 0.9 * b.min(), 1e-3) * t[0] ** 0.5, 0.5])
    p = _least_squares(t, b, start)
    fitted = p[0] + p[1] * t ** (-p[2])
    resid = b - fitted
    rng = np.random.default_rng(seed)
    ssr, dof = float(np.sum(resid ** 2)), len(t) - 3
    samples = []
    for _ in range(bootstrap):
        sigma = math.sqrt(ssr / rng.chisquare(dof)) if dof > 0 and ssr > 0 else 0.0
        samples.append(_least_squares(t, fitted + rng.normal(0.0, sigma, len(t)), p))
    samples = np.array(samples)
    return PowerLawFit(b_inf=float(p[0]), A=float(p[1]), alpha=float(p[2]), samples=samples,
                       rmse=float(np.sqrt(np.mean(resid ** 2))), t_max=float(t.max()), interval=interval)


def fit_curve(curve: LearningCurve, until: float | None = None, axis: str = "cpu_minutes", **kwargs) -> PowerLawFit:
    """:func:`fit_power_law` on a curve's points after the first step, up to ``until`` CPU-minutes (``None``: all),
    e.g. to fit the first minutes of a long run and compare the law's prediction with the rest of it.

    Args:
        curve: the :class:`LearningCurve`.
        until: the last CPU-minute fitted (``None``: all).
        axis: ``"cpu_minutes"`` (the law in compute) or ``"steps"`` (the law in optimizer steps, which carries to
            another machine, where a CPU-minute buys another number of steps, as the same law).
        **kwargs: passed to :func:`fit_power_law`.
    Raises:
        ValueError: as :func:`fit_power_law`, or an unknown ``axis``.
    """
    if axis not in ("cpu_minutes", "steps"):
        raise ValueError(f"axis must be 'cpu_minutes' or 'steps', got {axis!r}")
    keep = curve.trained & (curve.cpu_minutes <= (math.inf if until is None else until + 1e-9))
    return fit_power_law(getattr(curve, axis)[keep], curve.bpf[keep], **kwargs)


@dataclass
class Backtest:
    """A power law fitted to the beginning of a curve, read at a later time where a run measured the truth.

    Attributes:
        run: :func:`run_key` of the run (``"lstm-s64"``).
        fitted_to: what the law was fitted to, e.g. ``"the equal run (4 min)"`` or ``"the hour run's first 15 min"``.
        minutes: the CPU-minute the law is read at.
        predicted: the law's bpf there; ``low``, ``high``: its bootstrap interval (:meth:`PowerLawFit.band`).
        measured: the validation bpf the long run measured there.
    """

    run: str
    fitted_to: str
    minutes: float
    predicted: float
    low: float
    high: float
    measured: float

    @property
    def covered(self) -> bool:
        """Whether the interval holds the measured figure (to 1e-6 bpf, so that a noise-free law's point interval
        holds its own value)."""
        return self.low - 1e-6 <= self.measured <= self.high + 1e-6

    @property
    def error(self) -> float:
        """Predicted minus measured, bpf (negative: the law was optimistic)."""
        return self.predicted - self.measured


def backtest(fit: PowerLawFit, truth: LearningCurve, fitted_to: str, minutes: float | None = None,
             axis: str = "cpu_minutes") -> Backtest:
    """Read ``fit`` at a point of a longer curve ``truth`` (default its last point) and set it beside the measurement.

    Args:
        fit: e.g. :func:`fit_curve` of the 4-minute run, or of ``truth`` itself with ``until``.
        truth: the long run's :class:`LearningCurve`.
        fitted_to: words for :attr:`Backtest.fitted_to`.
        minutes: a CPU-minute of ``truth``'s points; ``None``: the last.
        axis: the axis ``fit`` was fitted on (:func:`fit_curve`): the law is read at ``truth``'s CPU-minutes or at
            its steps there.
    Raises:
        ValueError: ``minutes`` is not one of ``truth``'s points, or the law was fitted beyond it (no test).
    """
    i = len(truth.cpu_minutes) - 1 if minutes is None else int(np.argmin(abs(truth.cpu_minutes - minutes)))
    t = float(truth.cpu_minutes[i])
    if minutes is not None and abs(t - minutes) > 0.05:
        raise ValueError(f"{truth.run} has no validation point at {minutes} CPU-minutes (nearest {t:.2f})")
    x = float(getattr(truth, axis)[i])
    if fit.t_max >= x:
        raise ValueError(f"the law was fitted up to {fit.t_max:g} ({axis}): reading it at {x:g} tests nothing")
    lo, hi = fit.band([x])
    return Backtest(run_key(truth.run), fitted_to, t, float(fit(x)), float(lo[0]), float(hi[0]), float(truth.bpf[i]))


def backtest_table(tests: list[Backtest], names: dict[str, str] | None = None, caption: str = ""):
    """One row per :class:`Backtest`: the model, what the law was fitted to, its prediction with the interval, the
    measurement, whether the interval held it, and the error.

    Args:
        tests: e.g. :func:`backtest` of every long run and fit.
        names: ``{run key: how the book names the model}`` (default: the run keys).
        caption: the table's caption.
    Returns:
        a :class:`wavelab.report.tables.Table`.
    """
    from .tables import Table

    names = names or {}
    rows = [{"model": names.get(b.run, b.run), "law fitted to": b.fitted_to, "read at [CPU-min]": f"{b.minutes:.0f}",
             "predicted [bpf]": f"{b.predicted:.2f} [{b.low:.2f}, {b.high:.2f}]", "measured [bpf]": f"{b.measured:.2f}",
             "interval holds it": "yes" if b.covered else "no", "error [bpf]": f"{b.error:+.2f}"} for b in tests]
    return Table.from_rows(rows, caption=caption)


def coverage(tests: list[Backtest]) -> dict[str, tuple[int, int]]:
    """``{what the laws were fitted to: (intervals that held the measurement, backtests)}``, in first-seen order."""
    out: dict[str, tuple[int, int]] = {}
    for b in tests:
        held, n = out.get(b.fitted_to, (0, 0))
        out[b.fitted_to] = (held + b.covered, n + 1)
    return out


def compute_text(minutes: float) -> str:
    """CPU-minutes in the largest fitting unit: ``"40 min"``, ``"3.1 h"``, ``"12 days"``, ``"4 years"``; ``"out of
    reach"`` for ``inf`` (the fitted asymptote is above the target)."""
    if not math.isfinite(minutes):
        return "out of reach"
    for unit, size in (("years", 525_960.0), ("days", 1440.0), ("h", 60.0)):
        if minutes >= 2 * size:
            value = minutes / size
            return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"


def extrapolation_table(curves: list[LearningCurve], fits: dict[str, PowerLawFit], paper: dict | None = None,
                        caption: str = ""):
    """One row per curve: the validation bpf at the end of the budget, the test figure of its record, the fitted
    asymptote with its interval, the paper's test figure, and the CPU-minutes the fitted law needs to reach it (an
    extrapolation, with its interval).

    Args:
        curves: :func:`equal_budget_curves`.
        fits: ``{curve run: PowerLawFit}`` (:attr:`LearningCurve.run`); curves without a fit get empty fitted
            cells.
        paper: figures keyed by ``(label, dataset)``; default :data:`wavelab.report.papers.PAPER_BPF`.
        caption: the table's caption.
    Returns:
        a :class:`wavelab.report.tables.Table`.
    """
    from .papers import PAPER_BPF
    from .tables import Table, bpf_text

    paper = PAPER_BPF if paper is None else paper
    rows = []
    for c in curves:
        fit, figure = fits.get(c.run), paper.get((c.label, c.record.dataset))
        r = c.record
        row = {"model": c.name,
               "valid [bpf]": bpf_text(float(c.bpf[-1]), c.is_bound),
               "test [bpf]": bpf_text(r.bpf_weighted, r.is_bound),
               "fitted asymptote": "", "paper [bpf]": "" if figure is None else str(figure),
               "CPU time to the paper (extrapolated)": ""}
        if fit is not None:
            lo, hi = fit.b_inf_interval()
            row["fitted asymptote"] = f"{fit.b_inf:.2f} [{lo:.2f}, {hi:.2f}]"
            if figure is not None:
                t_lo, t_hi = fit.minutes_to_interval(figure.bpf)
                row["CPU time to the paper (extrapolated)"] = (
                    f"{compute_text(fit.minutes_to(figure.bpf))} [{compute_text(t_lo)}, {compute_text(t_hi)}]")
        rows.append(row)
    return Table.from_rows(rows, caption=caption)


__all__ = ["BOOTSTRAP", "CAMPAIGN_PREFIXES", "EQUAL_DIR", "HOUR_DIR", "INTERVAL", "SEEDS_DIR", "Backtest",
           "LearningCurve", "PowerLawFit", "backtest", "backtest_table", "campaign_curves", "compute_text", "coverage",
           "equal_budget_curves", "extrapolation_table", "fit_curve", "fit_power_law", "group_by_stack",
           "learning_curve", "run_key", "stack_size"]
