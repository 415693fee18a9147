"""The benchmark helpers: recomputation time is the sum of per-step costs over the growing context, and the speed
table renders what a benchmark wrote."""

import pytest

import wavelab.benchmarking as bm
from wavelab.models import build_model


def test_recompute_time_sums_step_costs_over_the_growing_context(monkeypatch):
    model = build_model("wavenet", Dc=4, blocks=1, layers_per_block=4, num_components=1)  # R = 17
    R = model.config.receptive_field
    monkeypatch.setattr(bm, "recompute_step_time", lambda m, window, b, repeats=3: 1e-3 * window)  # cost ~ context
    out = bm.recompute_generation_time(model, num_samples=40, batch_size=1, windows=(1, 8))
    expected = 1e-3 * sum(min(t + 1, R) for t in range(40))  # linear costs are interpolated exactly
    assert out["seconds"] == pytest.approx(expected)
    assert out["steady_state_step_s"] == pytest.approx(1e-3 * R)
    assert set(out["measured"]) == {"1", "8", str(R)}


def test_step_time_and_fast_generation_run_on_a_tiny_model():
    model = build_model("wavenet", Dc=4, blocks=1, layers_per_block=3, num_components=1)
    assert bm.recompute_step_time(model, window=16, batch_size=2, repeats=1) > 0
    assert bm.fast_generation_time(model, num_samples=20, batch_size=2) > 0
    assert bm.training_throughput(model, segment_length=64, batch_size=2, steps=1) > 0


def test_speed_table_renders_rows_and_speedups():
    bench = {"created": "2026-01-01T00:00:00Z", "hardware": {"cpu": "X", "torch": "2"}, "threads": 2,
             "commit": {"hash": "abcdef1234567"}, "sample_rate": 16000, "num_samples": 16000,
             "training": [{"name": "paper", "batch_size": 2, "segment_length": 16000, "frames_per_s": 2500.0}],
             "generation": [{"name": "paper", "batch_size": 1, "fast_s": 50.0, "recompute_s": 5000.0}]}
    md = bm.speed_table(bench).markdown()
    assert "2,500 frames/s" in md and "100x" in md and "320 samples/s" in md and "abcdef1234" in md
