"""Tests of wavelab.report.curves: reading the equal-budget learning curves and the power law fitted to them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wavelab.report.curves import PowerLawFit, fit_curve, fit_power_law, learning_curve
from wavelab.report.records import ResultRecord

T = np.arange(0, 4.01, 0.5)  # the campaign's grid: every 0.5 CPU-minute of a 4-minute budget


def law(t, b_inf=12.0, A=4.0, alpha=0.5):
    return b_inf + A * np.maximum(t, 1e-12) ** (-alpha)


def test_fit_recovers_a_noise_free_law_and_inverts_it():
    b = law(T)
    b[0] = 16.5  # the initial model: left out of the fit (t = 0)
    fit = fit_power_law(T, b, bootstrap=20)
    assert (fit.b_inf, fit.A, fit.alpha) == pytest.approx((12.0, 4.0, 0.5), rel=1e-3)
    assert fit.rmse < 1e-4 and fit.t_max == 4.0
    np.testing.assert_allclose(fit(T[1:]), b[1:], atol=1e-4)
    # 12 + 4 / sqrt(t) = 13  <=>  t = 16 CPU-minutes
    assert fit.minutes_to(13.0) == pytest.approx(16.0, rel=1e-3)
    assert fit.minutes_to(12.0) == math.inf and fit.minutes_to(11.0) == math.inf  # at or below the asymptote


def test_bootstrap_intervals_cover_the_true_law_under_noise():
    """Over 20 noisy draws of a known law on the campaign's grid, the 90% intervals of the asymptote and of the
    minutes to reach 13 bpf cover the truth in most draws (about 80%: the docstring says they are optimistic), and the
    band widens beyond the data."""
    covered_b, covered_t = 0, 0
    for draw in range(20):
        b = law(T) + np.random.default_rng(draw).normal(0, 0.02, len(T))
        fit = fit_power_law(T, b, seed=1, bootstrap=60)
        lo, hi = fit.b_inf_interval()
        t_lo, t_hi = fit.minutes_to_interval(13.0)
        covered_b += lo <= 12.0 <= hi
        covered_t += t_lo <= 16.0 <= t_hi
    assert covered_b >= 13 and covered_t >= 13
    band_lo, band_hi = fit.band(np.array([1.0, 40.0]))
    assert band_hi[1] - band_lo[1] > band_hi[0] - band_lo[0]


def test_the_asymptote_stays_below_every_point_and_a_flat_curve_has_no_slope():
    flat = np.full(len(T), 15.6)
    fit = fit_power_law(T, flat, bootstrap=10)
    assert fit.b_inf <= 15.6 + 1e-9 and fit(8.0) == pytest.approx(15.6, abs=1e-3)
    assert fit.minutes_to(15.0) == math.inf or fit.minutes_to(15.0) > 1e3


def test_fit_rejects_too_few_points_and_mismatched_lengths():
    with pytest.raises(ValueError, match="at least 4 points"):
        fit_power_law([0, 0.5, 1.0, 1.5], [16, 15, 14, 13.5])
    with pytest.raises(ValueError, match="differ in length"):
        fit_power_law([0.5, 1.0], [15.0])
    assert isinstance(fit_power_law(T, law(T), bootstrap=2), PowerLawFit)


def _record(run_dir, **kw) -> ResultRecord:
    base = dict(model="lstm", config={"s": 64}, dataset="timit", split="test", bpf_weighted=14.0, bpf_mean=14.0,
                is_bound=False, steps=30, run_dir=None if run_dir is None else str(run_dir),
                budget="cpu-equal")
    base.update(kw)
    return ResultRecord(**base)


def _run(tmp_path, lines) -> ResultRecord:
    run = tmp_path / "runs" / "eq-lstm-s64"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return _record(run)


def test_learning_curve_reads_the_validation_points_in_training_order(tmp_path):
    lines = [{"kind": "event", "event": "start", "step": 0},
             {"kind": "eval", "split": "valid", "step": 0, "bpf": 16.9, "is_bound": False, "train_cpu_s": 0.0,
              "frames_seen": 0},
             {"kind": "train", "step": 10, "bpf": 15.0, "train_cpu_s": 20.0},
             {"kind": "eval", "split": "valid", "step": 20, "bpf": 14.1, "is_bound": False, "train_cpu_s": 60.0,
              "frames_seen": 2560},
             {"kind": "eval", "split": "valid", "step": 11, "bpf": 15.2, "is_bound": False, "train_cpu_s": 30.0,
              "frames_seen": 1408}]
    c = learning_curve(_run(tmp_path, lines))
    assert c.label == "lstm s=64" and c.split == "valid" and not c.is_bound
    np.testing.assert_allclose(c.cpu_minutes, [0.0, 0.5, 1.0])
    assert list(c.steps) == [0, 11, 20] and list(c.frames_seen) == [0, 1408, 2560]
    np.testing.assert_allclose(c.bpf, [16.9, 15.2, 14.1])


def test_learning_curve_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no training run"):
        learning_curve(_record(None, model="dmol", steps=0))
    with pytest.raises(ValueError, match="trained without the CPU clock"):
        learning_curve(_run(tmp_path / "a", [{"kind": "eval", "step": 5, "bpf": 15.0, "is_bound": False}]))
    with pytest.raises(ValueError, match="no validation points"):
        learning_curve(_run(tmp_path / "b", [{"kind": "train", "step": 5, "bpf": 15.0}]))


def test_fit_curve_leaves_out_the_initial_model_and_can_stop_early(tmp_path):
    t = np.concatenate([[0.0001], T[1:]])  # the initial model's point is logged a moment after t = 0
    lines = [{"kind": "eval", "split": "valid", "step": i * 10, "bpf": float(b), "is_bound": False,
              "train_cpu_s": float(ti * 60), "frames_seen": i * 640} for i, (ti, b) in enumerate(zip(t, law(T)))]
    lines[0]["bpf"] = 17.0
    c = learning_curve(_run(tmp_path, lines))
    assert list(c.trained) == [False] + [True] * (len(T) - 1)
    full = fit_curve(c, bootstrap=5)
    assert (full.b_inf, full.alpha) == pytest.approx((12.0, 0.5), rel=1e-3)  # the 17.0 start does not bend it
    early = fit_curve(c, until=2.0, bootstrap=5)
    assert early.t_max == 2.0
    with pytest.raises(ValueError, match="at least 4 points"):
        fit_curve(c, until=1.5)


def test_two_runs_of_one_model_get_names_that_tell_them_apart(tmp_path):
    import wavelab.report.curves as wc

    folder = tmp_path / "equal"
    for name, dc in (("eq-wavenet-small", 32), ("eq-wavenet-paper", 96)):
        run = folder / "runs" / name
        run.mkdir(parents=True)
        (run / "checkpoint.pt").write_bytes(b"")
        (run / "metrics.jsonl").write_text(json.dumps({"kind": "eval", "split": "valid", "step": 1, "bpf": 15.0,
                                                       "is_bound": False, "train_cpu_s": 30.0}) + "\n")
        r = _record(run, model="wavenet", config={"Dc": dc, "blocks": 2})
        (folder / f"{name}.json").write_text(json.dumps(r.__dict__))
    curves = wc.equal_budget_curves("timit", results_dir=tmp_path)
    assert sorted(c.name for c in curves) == ["WaveNet Dc=32, blocks=2", "WaveNet Dc=96, blocks=2"]
    assert sorted(c.run for c in curves) == ["eq-wavenet-paper", "eq-wavenet-small"]
