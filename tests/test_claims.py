"""Tests of wavelab.report.claims (a paper's ordering judged on one campaign's records, against the seed spread) and of
the backtest of wavelab.report.curves (a law fitted early, read where a long run measured)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wavelab.report.claims import CLAIMS, Claim, by_run, claims_table, crossover, crossover_text, judge, seed_spread
from wavelab.report.curves import LearningCurve, backtest, fit_power_law, run_key
from wavelab.report.papers import PAPER_BPF
from wavelab.report.records import ResultRecord

CLAIM = Claim("VRNN below the LSTM at s = 64", "Table 1", "vrnn-s64", "lstm-s64")


def _record(run: str, bpf: float, model: str = "lstm", **kw) -> ResultRecord:
    base = dict(model=model, config={"s": 64}, dataset="timit", split="test", bpf_weighted=bpf, bpf_mean=bpf,
                is_bound=model != "lstm", steps=100, run_dir=f"results/x/runs/{run}", budget="cpu-equal")
    base.update(kw)
    return ResultRecord(**base)


def _curve(run: str, minutes, bpf) -> LearningCurve:
    minutes, bpf = np.asarray(minutes, float), np.asarray(bpf, float)
    return LearningCurve(label=run, record=_record(run, float(bpf[-1])), cpu_minutes=minutes,
                         frames_seen=np.zeros(len(minutes), int), steps=(minutes * 100).astype(int), bpf=bpf,
                         is_bound=False, split="valid", name=run)


def test_run_key_strips_only_a_campaign_prefix():
    assert run_key("eq-lstm-s64") == run_key("results/hour/runs/hr-lstm-s64") == "lstm-s64"
    assert run_key("sd-lstm-s64-seed1") == "lstm-s64-seed1" and run_key("latents-cwvae") == "latents-cwvae"


def test_by_run_keys_the_test_records_and_skips_the_importance_weighted_twin():
    records = [_record("eq-lstm-s64", 14.5), _record("eq-vrnn-s64", 14.8, "vrnn", estimator="ELBO, 1 sample"),
               _record("eq-vrnn-s64", 14.6, "vrnn", estimator="importance-weighted bound, K=100"),
               _record("eq-lstm-s64", 14.0, split="valid"), _record("eq-dmol", 15.6, run_dir=None)]
    got = by_run(records)
    assert sorted(got) == ["lstm-s64", "vrnn-s64"]
    assert got["vrnn-s64"].bpf_weighted == 14.8 and got["lstm-s64"].split == "test"


@pytest.mark.parametrize("vrnn, spread, state", [(14.3, 0.05, "holds"), (14.8, 0.05, "reversed"),
                                                 (14.47, 0.05, "within the seed spread"),
                                                 (14.3, 0.5, "within the seed spread")])
def test_judge_reads_the_gap_against_the_spread(vrnn, spread, state):
    v = judge(CLAIM, by_run([_record("hr-lstm-s64", 14.5), _record("hr-vrnn-s64", vrnn, "vrnn")]), spread)
    assert v.state == state and v.gap == pytest.approx(vrnn - 14.5)
    assert v.text().startswith(state) and f"{vrnn - 14.5:+.2f}" in v.text()


def test_judge_without_a_record_says_so():
    v = judge(CLAIM, by_run([_record("hr-lstm-s64", 14.5)]), 0.05)
    assert v.state == "no record" and v.gap is None and v.text() == "no record"


def test_seed_spread_is_the_largest_difference_between_seeds_of_one_recipe():
    records = [_record("sd-lstm-s64-seed0", 14.50), _record("sd-lstm-s64-seed1", 14.56),
               _record("sd-lstm-s64-seed2", 14.47), _record("sd-vrnn-s64-seed0", 14.8, "vrnn"),
               _record("sd-cwvae-seed0", 15.0, "cwvae"), _record("sd-cwvae-seed1", 15.02, "cwvae")]
    spread = seed_spread(records)
    assert spread == pytest.approx({"lstm-s64": 0.09, "cwvae": 0.02})  # one seed of the VRNN: no spread
    with pytest.raises(ValueError, match="seed 0"):
        seed_spread(records + [_record("sd-lstm-s64-seed0", 14.4)])


def test_crossover_interpolates_the_last_change_of_order():
    t = [0, 3, 6, 9, 12]
    higher = _curve("hr-lstm-s64", t, [17, 14.6, 14.5, 14.4, 14.3])
    crossing = _curve("hr-vrnn-s64", t, [17, 14.9, 14.6, 14.3, 14.1])  # behind by 0.1 at 6, ahead by 0.1 at 9
    assert crossover(crossing, higher) == pytest.approx(7.5)
    assert crossover(_curve("a", t, [17, 14, 14, 14, 14]), higher) == 0.0
    assert crossover(higher, crossing) == math.inf  # the reverse ordering is not reached at the end
    # the order changed twice: the last change counts
    twice = _curve("b", t, [17, 14.5, 14.6, 14.3, 14.2])
    assert crossover(twice, higher) == pytest.approx(6 + 3 * 0.1 / 0.2)
    assert [crossover_text(m, 60) for m in (0.0, math.inf, 23.4)] == ["ahead throughout", "not by 60 min", "at 23 min"]
    with pytest.raises(ValueError, match="share no trained range"):
        crossover(_curve("c", [0, 1, 2], [17, 15, 14]), _curve("d", [0, 5, 6], [17, 15, 14]))


def test_claims_table_shows_both_budgets_and_the_paper_gap():
    short = by_run([_record("eq-lstm-s64", 14.5), _record("eq-vrnn-s64", 14.8, "vrnn")])
    long = by_run([_record("hr-lstm-s64", 14.1), _record("hr-vrnn-s64", 13.9, "vrnn")])
    t = [0, 30, 60]
    curves = {"lstm-s64": _curve("hr-lstm-s64", t, [17, 14.3, 14.1]),
              "vrnn-s64": _curve("hr-vrnn-s64", t, [17, 14.4, 13.9])}
    table = claims_table(CLAIMS[:2], short, long, curves, 0.05, PAPER_BPF)
    assert table.column("4 CPU-min") == ["reversed (+0.30 bpf)", "no record"]
    assert table.column("60 CPU-min") == ["holds (-0.20 bpf)", "no hour run"]
    paper_gap = PAPER_BPF["vrnn s=64", "timit"].bpf - PAPER_BPF["lstm s=64", "timit"].bpf
    assert table.column("paper's gap [bpf]")[0] == f"{paper_gap:+.2f}" and paper_gap < 0
    assert table.column("valid curves cross") == ["at 40 min", ""]  # +0.1 at 30 min, -0.2 at 60


def test_every_claim_names_runs_of_the_campaign_recipes():
    from pathlib import Path

    equal = {run_key(p.stem) for p in (Path(__file__).parents[1] / "recipes" / "equal").glob("*.toml")}
    assert all({c.lower, c.higher} <= equal for c in CLAIMS), [c for c in CLAIMS if not {c.lower, c.higher} <= equal]


def test_backtest_of_an_exact_law_covers_and_of_a_wrong_one_misses():
    t = np.arange(0, 61, 3.0)
    truth = _curve("hr-lstm-s64", t, 12 + 4 / np.sqrt(np.maximum(t, 1e-9)))
    early = fit_power_law(t[t <= 15], truth.bpf[t <= 15], bootstrap=20)
    b = backtest(early, truth, "the hour run's first 15 min")
    assert b.minutes == 60 and b.run == "lstm-s64" and b.covered and abs(b.error) < 1e-3
    wrong = fit_power_law(t[t <= 15], truth.bpf[t <= 15] + 0.3, bootstrap=20)
    miss = backtest(wrong, truth, "shifted")
    assert not miss.covered and miss.error == pytest.approx(0.3, abs=1e-3)
    assert backtest(early, truth, "x", minutes=30).minutes == 30
    with pytest.raises(ValueError, match="no validation point"):
        backtest(early, truth, "x", minutes=31.5)
    with pytest.raises(ValueError, match="tests nothing"):
        backtest(early, truth, "x", minutes=12)


def test_backtest_table_and_coverage_count_per_horizon():
    from wavelab.report.curves import Backtest, backtest_table, coverage

    tests = [Backtest("lstm-s64", "4 min", 60, 14.0, 13.9, 14.1, 14.05),
             Backtest("vrnn-s64", "4 min", 60, 14.2, 14.1, 14.3, 14.5),
             Backtest("lstm-s64", "15 min", 60, 14.1, 14.0, 14.2, 14.05)]
    assert coverage(tests) == {"4 min": (1, 2), "15 min": (1, 1)}
    table = backtest_table(tests, {"lstm-s64": "LSTM s=64"})
    assert table.column("model") == ["LSTM s=64", "vrnn-s64", "LSTM s=64"]
    assert table.column("interval holds it") == ["yes", "no", "yes"]
    assert table.column("predicted [bpf]")[1] == "14.20 [14.10, 14.30]" and table.column("error [bpf]")[1] == "-0.30"


def test_orderings_held_compares_the_predicted_order_with_the_measured_one():
    from wavelab.report.claims import orderings_held

    measured = {"vrnn-s64": 14.4, "lstm-s64": 14.1, "srnn-s64": 14.6}
    assert orderings_held(CLAIMS, {"vrnn-s64": 14.5, "lstm-s64": 14.0, "srnn-s64": 13.9}, measured) == (1, 2)
    assert orderings_held(CLAIMS, {"vrnn-s64": 14.5}, measured) == (0, 0)


def test_a_law_in_steps_is_read_at_the_long_runs_steps():
    """A run on a machine twice as fast per CPU-minute follows the same law in steps: the law fitted in steps to the
    slow machine's short run predicts the fast run, the law in CPU-minutes does not."""
    from wavelab.report.curves import fit_curve

    t = np.arange(0, 61, 3.0)
    steps = 200 * t  # the fast machine: 200 steps per CPU-minute
    truth = _curve("hr-lstm-s64", t, 12 + 40 / np.sqrt(np.maximum(steps, 1e-9)))
    truth.steps = steps.astype(int)
    short_t = np.arange(0, 4.01, 0.5)
    short = _curve("eq-lstm-s64", short_t, 12 + 40 / np.sqrt(np.maximum(100 * short_t, 1e-9)))
    short.steps = (100 * short_t).astype(int)  # the slow machine: 100 steps per CPU-minute
    by_steps = backtest(fit_curve(short, axis="steps", bootstrap=10), truth, "steps", axis="steps")
    by_minutes = backtest(fit_curve(short, bootstrap=10), truth, "minutes")
    assert by_steps.covered and abs(by_steps.error) < 1e-3
    assert by_minutes.error > 0.05  # the slow machine's minutes predict too little progress
    with pytest.raises(ValueError, match="axis must be"):
        fit_curve(short, axis="frames")
