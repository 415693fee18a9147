"""Tests of wavelab.adaptive: the backward-adaptive NLMS cascade in integer arithmetic (the decoder rebuilds every
sample bit for bit, from the past only, with the same result on any machine) and its adaptive Laplace residual coder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from wavelab.adaptive import (DEFAULT_CASCADE, Stage, adaptive_scale, bits_per_sample, cascade_reconstruct,
                              cascade_residual, laplace_bits, laplace_log2_pmf, prefilter, reconstruct_from_wrapped,
                              wrapped_residual)


def lcg_samples(n: int, seed: int = 1) -> np.ndarray:
    """Speech-like int16 samples from an integer recurrence (a resonant AR(2) driven by a 32-bit LCG): the same
    integers on every machine and numpy version."""
    out = np.empty(n, dtype=np.int16)
    state, y1, y2 = seed, 0, 0
    for i in range(n):
        state = (1664525 * state + 1013904223) % (1 << 32)
        drive = (state >> 16) - 32768
        y = (58 * y1 - 29 * y2) // 32 + drive // 16  # poles at radius ~0.95
        y = max(-32768, min(32767, y))
        out[i], y1, y2 = y, y, y1
    return out


@pytest.mark.parametrize("name", ["speech-like", "noise", "extremes", "silence"])
def test_the_decoder_rebuilds_every_sample_exactly(name):
    rng = np.random.default_rng(0)
    x = {"speech-like": lcg_samples(6000),
         "noise": rng.integers(-32768, 32768, 4000).astype(np.int16),
         "extremes": np.tile(np.array([32767, -32768, -32768, 32767, 0], dtype=np.int16), 800),
         "silence": np.zeros(3000, dtype=np.int16)}[name]
    for stages, k in ((DEFAULT_CASCADE, 28), ((Stage(8, 3),), 0), ((Stage(1, 0), Stage(2, 16)), 32)):
        r = cascade_residual(x, stages, k)
        assert r.dtype == np.int64 and r.shape == x.shape
        np.testing.assert_array_equal(cascade_reconstruct(r, stages, k), x.astype(np.int64))


@pytest.mark.parametrize("name", ["speech-like", "noise", "extremes", "silence"])
def test_the_samples_come_back_from_the_wrapped_residual(name):
    """The codec sends the residual wrapped into int16; the sample-by-sample decoder rebuilds ``x`` from it, also on
    full-scale noise and alternating extremes, where the unwrapped residual leaves int16 (checked: it does)."""
    rng = np.random.default_rng(1)
    x = {"speech-like": lcg_samples(5000),
         "noise": rng.integers(-32768, 32768, 4000).astype(np.int16),
         "extremes": np.tile(np.array([32767, -32768, -32768, 32767, 0], dtype=np.int16), 800),
         "silence": np.zeros(2000, dtype=np.int16)}[name]
    for stages, k in ((DEFAULT_CASCADE, 28), ((Stage(8, 3),), 0), ((Stage(1, 0), Stage(2, 16)), 32)):
        rw = wrapped_residual(x, stages, k)
        assert rw.min() >= -32768 and rw.max() <= 32767
        np.testing.assert_array_equal(reconstruct_from_wrapped(rw, stages, k), x.astype(np.int64))
    if name in ("noise", "extremes"):
        assert np.abs(cascade_residual(x)).max() > 32767  # the case the wrap exists for
    with pytest.raises(ValueError, match="at most 32767"):
        reconstruct_from_wrapped(np.array([40000]))


def test_prediction_reads_only_the_past():
    x = lcg_samples(3000)
    y = x.copy()
    y[2000:] = -y[2000:]
    np.testing.assert_array_equal(cascade_residual(x)[:2000], cascade_residual(y)[:2000])
    assert not np.array_equal(cascade_residual(x)[2000:], cascade_residual(y)[2000:])
    r = cascade_residual(x)
    s = adaptive_scale(r)
    r2 = r.copy()
    r2[1500:] *= 3
    np.testing.assert_array_equal(adaptive_scale(r2)[:1501], s[:1501])  # scale[n] reads r[:n]


def test_the_residual_is_the_same_integers_on_every_machine():
    """Integer arithmetic only: the residual of a fixed input is a fixed sequence of integers, whatever the CPU, its
    dispatch path or the torch build (this digest was computed once and holds everywhere)."""
    r = cascade_residual(lcg_samples(4000), (Stage(256, 9), Stage(16, 5), Stage(4, 4)), 28)
    assert hashlib.sha256(r.astype("<i8").tobytes()).hexdigest()[:16] == "2b79fa614c89db58"


def test_the_cascade_predicts_a_resonance_and_the_prefilter_is_exact():
    x = lcg_samples(20000)
    r = cascade_residual(x)
    tail = slice(10000, None)  # after convergence
    assert np.mean(r[tail].astype(float) ** 2) < 0.05 * np.mean(x[tail].astype(float) ** 2)
    u = prefilter(np.array([100, 64, -32], dtype=np.int16), k=16)
    np.testing.assert_array_equal(u, [100, 64 - 50, -32 - 32])


def test_the_discretised_laplace_is_a_pmf_and_the_bits_follow_it():
    support = np.arange(-20000, 20001)
    for b in (0.3, 1.0, 37.5, 400.0):
        p = 2.0 ** laplace_log2_pmf(support, np.full(support.shape, b))
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert p[20000] == p.max() and p[20000 + 7] == pytest.approx(p[20000 - 7])
        # the closed form is the difference of the CDF at the bin's edges
        v = support + 0.5
        cdf = np.where(v < 0, 0.5 * np.exp(np.minimum(v, 0) / b), 1 - 0.5 * np.exp(-np.maximum(v, 0) / b))
        big = p[1:] > 1e-6  # where the difference of CDFs has not cancelled away its digits
        np.testing.assert_allclose(p[1:][big], np.diff(cdf)[big], rtol=1e-6)
    x = lcg_samples(8000)
    bps = bits_per_sample(x)
    assert 0 < bps < 16
    r = cascade_residual(x)
    assert bps == pytest.approx(laplace_bits(r, adaptive_scale(r)) / len(x))


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="1-D integer array"):
        cascade_residual(np.zeros(10))
    with pytest.raises(ValueError, match="1-D integer array"):
        cascade_residual(np.zeros((2, 10), dtype=np.int16))
    with pytest.raises(ValueError, match="below 2\\*\\*20"):
        cascade_residual(np.array([1 << 21]))
    with pytest.raises(ValueError, match="needs 1 to 8 Stage"):
        cascade_residual(lcg_samples(10), ())
    with pytest.raises(ValueError, match="order must be"):
        Stage(0, 4)
    with pytest.raises(ValueError, match="mu_shift must be"):
        Stage(4, 17)
    with pytest.raises(ValueError, match="empty recording"):
        bits_per_sample(np.zeros(0, dtype=np.int16))


def test_the_baseline_benchmark_chooses_on_valid_and_checks_every_round_trip(timit_root, librispeech_root, tmp_path):
    """A quick run of benchmarks/adaptive_baseline.py: the chosen candidate is the one with the fewest bits on the
    validation union, every set is reported, and the round trips were exact."""
    import importlib.util
    import json

    from wavelab.settings import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("adaptive_baseline",
                                                  PROJECT_ROOT / "benchmarks" / "adaptive_baseline.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "adaptive_baseline.json"
    assert script.main(["--quick", "--out", str(out)]) == 0
    bench = json.loads(out.read_text())
    assert bench["chosen"] == min(bench["candidates"], key=lambda c: c["valid_bits_per_sample"])
    assert set(bench["sets"]) == {"timit:test", "timit:valid", "librispeech:test", "librispeech:valid"}
    assert all(0 < s["bits_per_sample"] < 16 and s["files"] == 2 for s in bench["sets"].values())
    assert bench["speed_timit_test"]["round_trip_exact"] is True
    assert out.with_suffix(".md").read_text().count("|") > 10


def test_the_wrapped_residual_is_a_bijection_of_the_samples_given_the_prediction():
    from wavelab.adaptive import wrap_int16, wrapped_residual

    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32768, size=10_000)
    P = rng.integers(-(1 << 20), 1 << 20, size=x.size)  # predictions as far off as the cascade allows
    w = wrap_int16(x - P)
    assert w.min() >= -32768 and w.max() <= 32767
    assert np.array_equal(wrap_int16(w + P), x)
    # on white noise at full scale the cascade's residual leaves int16's range, and wraps back into it
    r = cascade_residual(x)
    assert np.abs(r).max() > 32767
    wrapped = wrapped_residual(x)
    assert wrapped.min() >= -32768 and wrapped.max() <= 32767
    assert np.array_equal(wrap_int16(wrapped + (x - r)), x)
