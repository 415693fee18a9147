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


def _recurrent_bench():
    return {"created": "2026-01-01T00:00:00Z", "hardware": {"cpu": "X", "torch": "2"}, "threads": 2,
            "commit": {"hash": "abcdef1234567"}, "config": "paper", "eval_samples": 16000, "iw_samples": 10,
            "training": [{"model": "lstm", "s": 64, "parameters": 1234567, "segment_length": 32000, "batch_size": 2,
                          "frames_per_s": 81234.4},
                         {"model": "vrnn", "s": 1, "parameters": 2000, "segment_length": 2000, "batch_size": 2,
                          "frames_per_s": 580.6}],
            "evaluation": [{"model": "lstm", "s": 64, "estimator": "exact", "K": None, "num_samples": 16000,
                            "seconds": 0.05, "seconds_per_audio_second": 0.05},
                           {"model": "vrnn", "s": 1, "estimator": "ELBO, 1 sample", "K": None, "num_samples": 16000,
                            "seconds": 4.0, "seconds_per_audio_second": 4.0},
                           {"model": "vrnn", "s": 1, "estimator": "importance-weighted bound, K=10", "K": 10,
                            "num_samples": 16000, "seconds": 13.0, "seconds_per_audio_second": 13.0}]}


def test_recurrent_speed_table_puts_each_measurement_in_its_row_and_column():
    table = bm.recurrent_speed_table(_recurrent_bench())
    assert table.header[-1] == "evaluation (IW bound, K=10)"
    lstm, vrnn = table.rows
    assert lstm == ["lstm", "64", "1,234,567", "81,234 frames/s (batch 2 x 32,000)", "0.05 s", "n/a"]
    assert vrnn == ["vrnn", "1", "2,000", "581 frames/s (batch 2 x 2,000)", "4.00 s", "13.00 s"]
    md = table.markdown()
    assert "abcdef1234" in md and "SMOKE" not in md
    assert "SMOKE RUN" in bm.recurrent_speed_table({**_recurrent_bench(), "quick": True}).markdown()


def test_recurrent_speed_table_rejects_an_evaluation_without_its_training_row():
    bench = _recurrent_bench()
    bench["evaluation"].append({"model": "srnn", "s": 256, "estimator": "ELBO, 1 sample", "K": None,
                                "num_samples": 16000, "seconds": 1.0, "seconds_per_audio_second": 1.0})
    with pytest.raises(ValueError, match="srnn s=256"):
        bm.recurrent_speed_table(bench)


def test_evaluation_time_runs_both_estimators_and_refuses_iw_without_latents():
    lstm = build_model("lstm", s=4, Dd=8, mlp_layers=1, num_components=1)
    vrnn = build_model("vrnn", s=4, Dd=8, Dz=4, mlp_layers=1, num_components=1)
    assert bm.evaluation_time(lstm, 64, repeats=1) > 0
    assert bm.evaluation_time(vrnn, 64, iw_samples=3, repeats=1) > 0
    with pytest.raises(ValueError, match="iw_bound"):
        bm.evaluation_time(lstm, 64, iw_samples=3)
    with pytest.raises(ValueError, match="num_samples"):
        bm.evaluation_time(vrnn, 0)
