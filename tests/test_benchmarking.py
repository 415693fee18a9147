"""The benchmark helpers: recomputation time is the sum of per-step costs over the growing context, and the speed
table renders what a benchmark wrote."""

import pytest

import wavelab.report.speed as bm
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


def _cwvae_bench():
    row = lambda cfg, L, strides, fps, ev, gen: {  # noqa: E731
        "config": cfg, "L": L, "strides": strides, "overrides": {"L": L}, "parameters": 1000 * L,
        "frames_per_s": fps, "eval_seconds": ev, "eval_seconds_per_audio_second": ev,
        "generation_seconds": gen, "generation_seconds_per_audio_second": gen}
    return {"created": "2026-01-01T00:00:00Z", "hardware": {"cpu": "X", "torch": "2"}, "threads": 1,
            "commit": {"hash": "abcdef1234567"}, "configs": {"paper": {"Dh": 192, "Dz": 128}}, "s1": 64, "c": 8,
            "batch_size": 2, "segment_length": 32000, "eval_samples": 16000,
            "measurements": [row("paper", 1, [64], 12345.6, 0.5, 0.01234),
                             row("paper", 3, [64, 512, 4096], 9876.7, 0.75, 0.0456)]}


def test_cwvae_speed_table_puts_each_measurement_in_its_row_and_column():
    table = bm.cwvae_speed_table(_cwvae_bench())
    assert table.header[-2:] == ["evaluation (ELBO)", "generation"]
    assert table.rows == [["paper", "1", "64", "1,000", "12,346 frames/s", "0.50 s", "0.012 s"],
                          ["paper", "3", "64, 512, 4,096", "3,000", "9,877 frames/s", "0.75 s", "0.046 s"]]
    md = table.markdown()
    assert "abcdef1234" in md and "Dh=192, Dz=128" in md and "32,000" in md and "SMOKE" not in md
    assert "SMOKE RUN" in bm.cwvae_speed_table({**_cwvae_bench(), "quick": True}).markdown()


def test_cwvae_speed_table_rejects_output_that_is_not_the_scripts():
    bench = _cwvae_bench()
    del bench["measurements"][1]["frames_per_s"]
    with pytest.raises(ValueError, match="frames_per_s"):
        bm.cwvae_speed_table(bench)
    with pytest.raises(ValueError, match="measurements"):
        bm.cwvae_speed_table(_recurrent_bench())


def test_cwvae_speed_script_quick_output_renders(tmp_path):
    import importlib.util
    import json

    from wavelab.settings import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("cwvae_speed", PROJECT_ROOT / "benchmarks" / "cwvae_speed.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "cwvae_speed.json"
    assert script.main(["--quick", "--out", str(out)]) == 0
    bench = json.loads(out.read_text())
    assert bench["quick"] and [m["L"] for m in bench["measurements"]] == [1, 2, 3]
    assert [m["strides"] for m in bench["measurements"]] == [[64], [64, 512], [64, 512, 4096]]
    assert all(m["frames_per_s"] > 0 and m["eval_seconds"] > 0 and m["generation_seconds"] > 0
               for m in bench["measurements"])
    assert len(bm.cwvae_speed_table(bench).rows) == 3


def test_prefix_recompute_time_sums_step_costs_over_the_whole_growing_prefix():
    calls = []

    def step_time(L):
        calls.append(L)
        return 1e-3 * L + 0.5  # affine in the prefix: interpolation is exact

    out = bm.prefix_recompute_generation_time(step_time, num_samples=50, prefixes=(1, 10, 80))
    assert calls == [1, 10, 50]  # prefixes beyond num_samples are dropped, num_samples itself is measured
    assert out["seconds"] == pytest.approx(sum(1e-3 * (t + 1) + 0.5 for t in range(50)))
    assert out["last_step_s"] == pytest.approx(0.55) and set(out["measured"]) == {"1", "10", "50"}
    with pytest.raises(ValueError, match="num_samples"):
        bm.prefix_recompute_generation_time(step_time, 0)


def test_prefix_recompute_step_time_runs_the_convolution_mode():
    import wavelab.models.sashimi  # noqa: F401

    model = build_model("sashimi", d_model=8, n_layers=1, d_state=4, l_max=64)
    assert bm.prefix_recompute_step_time(model, 20, batch_size=2, repeats=1) > 0
    with pytest.raises(ValueError, match="prefix"):
        bm.prefix_recompute_step_time(model, 0, batch_size=1)


def _generation_bench():
    def e(name, model, method, b, n, seconds, estimate=False, params=1000):
        return {"name": name, "model": model, "config": {}, "method": method, "estimate": estimate,
                "parameters": params, "batch_size": b, "num_samples": n, "seconds": seconds,
                "samples_per_s": b * n / seconds}
    return {"created": "2026-01-01T00:00:00Z", "hardware": {"cpu": "X", "cores": 2, "torch": "2"}, "threads": 2,
            "load_average_at_start": [0.31, 0.2, 0.1], "commit": {"hash": "abcdef1234567"}, "sample_rate": 16000,
            "num_samples": 16000, "long_num_samples": 64000, "batch_sizes": [1, 16],
            "reference": {"model": "wavenet", "method": "fast path"},
            "entries": [e("WaveNet", "wavenet", "fast path", 1, 16000, 40.0),
                        e("WaveNet", "wavenet", "fast path", 16, 16000, 64.0),
                        e("WaveFlow h=16", "waveflow", "inverse, 128 sequential steps", 1, 16000, 2.0, params=5228048),
                        e("WaveFlow h=16", "waveflow", "inverse, 128 sequential steps", 16, 16000, 32.0),
                        e("SaShiMi", "sashimi", "recurrent", 1, 64000, 320.0),
                        e("SaShiMi", "sashimi", "convolution-mode recomputation", 1, 16000, 1.6e6, estimate=True)]}


def test_generation_speed_table_renders_rates_and_ratios_to_wavenets_fast_path():
    table = bm.generation_speed_table(_generation_bench())
    assert table.header == ["model", "generation", "audio", "batch 1: samples/s", "batch 1: x WaveNet fast",
                            "batch 16: samples/s", "batch 16: x WaveNet fast", "parameters"]
    wavenet, waveflow, sashimi_rec, sashimi_conv = table.rows
    assert wavenet[3:7] == ["400", "1.0x", "4,000", "1.0x"]
    assert waveflow == ["WaveFlow h=16", "inverse, 128 sequential steps", "1 s", "8,000", "20.0x", "8,000", "2.0x",
                        "5,228,048"]
    assert sashimi_rec[2:7] == ["4 s", "200", "0.50x", "", ""]  # the 4 s run is compared with WaveNet's 1 s rate
    assert sashimi_conv[1] == "convolution-mode recomputation (estimate)" and sashimi_conv[3:5] == ["0.01", "1/40,000"]
    md = table.markdown()
    assert "abcdef1234" in md and "2 threads" in md and "0.31" in md and "SMOKE" not in md
    assert "SMOKE RUN" in bm.generation_speed_table({**_generation_bench(), "quick": True}).markdown()


def test_generation_speed_table_needs_the_wavenet_reference_and_the_scripts_fields():
    bench = _generation_bench()
    bench["entries"] = [e for e in bench["entries"] if not (e["model"] == "wavenet" and e["batch_size"] == 16)]
    with pytest.raises(ValueError, match="no WaveNet fast entry at batch 16"):
        bm.generation_speed_table(bench)
    with pytest.raises(ValueError, match="names no reference"):
        bm.generation_speed_table({k: v for k, v in _generation_bench().items() if k != "reference"})
    bench = _generation_bench()
    del bench["entries"][2]["samples_per_s"]
    with pytest.raises(ValueError, match="samples_per_s"):
        bm.generation_speed_table(bench)
    with pytest.raises(ValueError, match="entries"):
        bm.generation_speed_table(_recurrent_bench())


def _generation_script():
    import importlib.util

    from wavelab.settings import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("generation_speed",
                                                  PROJECT_ROOT / "benchmarks" / "generation_speed.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_generation_speed_script_quick_run_renders(tmp_path):
    """A smoke run of the script: it measures every entry and renders; no measured number is asserted (the claims'
    verdict on a quick run depends on the machine's load, and is only printed as a note)."""
    import json

    script = _generation_script()
    out = tmp_path / "generation_speed.json"
    assert script.main(["--quick", "--threads", "1", "--batch-sizes", "1", "2", "--repeats", "1",
                        "--out", str(out)]) == 0
    bench = json.loads(out.read_text())
    assert bench["quick"] and bench["threads"] == 1 and len(bench["load_average_at_start"]) == 3
    names = {(e["name"], e["method"].split(",")[0], e["num_samples"]) for e in bench["entries"]}
    assert {("WaveFlow h=8", "inverse", 400), ("WaveFlow h=16", "inverse", 400), ("WaveFlow h=64", "inverse", 400),
            ("SaShiMi (quick)", "recurrent", 400), ("SaShiMi (quick)", "recurrent", 1600),
            ("SaShiMi (quick)", "convolution-mode recomputation", 400), ("WaveNet (quick)", "eager step loop", 400),
            ("SaShiMi (quick)", "eager step loop", 400)} <= names
    assert len(bench["entries"]) == 2 * 10 and all(e["samples_per_s"] > 0 for e in bench["entries"])
    assert [e["estimate"] for e in bench["entries"]].count(True) == 2
    assert len(bm.generation_speed_table(bench).rows) == 10


def test_generation_speed_claims_check_reads_the_timings_exactly():
    """The claims' logic on synthetic timings: WaveFlow h=16 >= 10x WaveNet's fast path at batch 1, and SaShiMi's
    recurrent cost per sample constant within 25% between 1 s and 4 s of audio, at every batch size."""
    script = _generation_script()

    def bench(waveflow_b1=16000 / 2.0, drift=(1.0, 1.0)):
        def e(name, model, method, b, n, rate):
            return {"name": name, "model": model, "method": method, "batch_size": b, "num_samples": n,
                    "samples_per_s": rate}
        entries = [e("WaveNet", "wavenet", "fast path", 1, 16000, 400.0),
                   e("WaveNet", "wavenet", "fast path", 2, 16000, 700.0),
                   e("WaveFlow h=16", "waveflow", "inverse, 128 sequential steps", 1, 16000, waveflow_b1),
                   e("WaveFlow h=8", "waveflow", "inverse, 64 sequential steps", 1, 16000, 1.0)]  # not a claim
        for b, d in zip((1, 2), drift):
            entries += [e("SaShiMi", "sashimi", "recurrent", b, 16000, 100.0 * b),
                        e("SaShiMi", "sashimi", "recurrent", b, 64000, 100.0 * b * d)]
        return {"num_samples": 16000, "long_num_samples": 64000, "batch_sizes": [1, 2], "entries": entries}

    assert script.check(bench()) == []
    assert script.check(bench(waveflow_b1=4000.0)) == []                 # exactly 10x: holds
    fails = script.check(bench(waveflow_b1=3999.0))                       # just under 10x: fails
    assert len(fails) == 1 and "WaveFlow h=16" in fails[0] and "10x" in fails[0]
    assert script.check(bench(drift=(0.76, 1.24))) == []                  # within 25%
    fails = script.check(bench(drift=(0.74, 1.0)))
    assert len(fails) == 1 and "batch 1" in fails[0]
    fails = script.check(bench(waveflow_b1=1.0, drift=(0.5, 1.3)))
    assert len(fails) == 3 and "WaveFlow h=16" in fails[0] and "batch 1" in fails[1] and "batch 2" in fails[2]


# --------------------------------------------------------------------------------------------------------------------
# benchmarks/training_speed.py and training_speed_table


def _training_speed_script():
    import importlib.util

    from wavelab.settings import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("training_speed", PROJECT_ROOT / "benchmarks" / "training_speed.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


_TRAINING_ENTRY_FIELDS = {
    "recipe", "recipe_file", "model", "model_overrides", "precision", "deferred_weight_grads", "autocast",
    "parameters", "segment_length",
    "batch_size", "frames_per_step", "steps", "warmup_steps", "timed_steps", "step_seconds", "seconds_per_step",
    "data_seconds_per_step", "frames_per_s", "flops_per_step", "flops_per_frame", "flops_by_op", "uncounted_ops",
    "gflops_per_s", "train_bpf", "bpf_after_steps", "non_finite_steps", "valid_bpf_after_steps", "valid_is_bound",
    "valid_utterances", "valid_frames", "valid_seconds", "flop_count_seconds", "total_seconds"}


def test_training_speed_script_quick_run_writes_every_field(timit_root, tmp_path):
    """A smoke run on two recipes: valid JSON with every field, positive finite figures (no timing is compared), the
    frames of a step = batch x segment, GFLOP/s = FLOPs per step / seconds per step, the FLOP count the same in every
    precision, the deferred weight gradients (``fp32``) training as the recipe does, and the table renders one row per
    entry marked as a smoke run."""
    import json
    import math

    script = _training_speed_script()
    out = tmp_path / "training_speed.json"
    assert script.main(["--quick", "--models", "vrnn-s64", "lstm-s1", "--out", str(out)]) == 0
    bench = json.loads(out.read_text())
    assert bench["quick"] is True and bench["threads"] == 1 and bench["steps"] == 3 and bench["warmup_steps"] == 1
    assert bench["commit"]["hash"] and bench["hardware"]["torch"] and bench["created"].endswith("Z")
    assert bench["command"].startswith("python benchmarks/training_speed.py --quick")
    assert len(bench["load_average_at_start"]) == 3 and len(bench["valid_utterances"]) == 1
    flags = bench["cpu"]["flags"]
    assert bench["cpu"]["bf16"]["supported"] == (flags["amx_bf16"] or flags["avx512_bf16"])
    assert bench["precisions"] == ["recipe", "fp32"] + (["bf16"] if bench["cpu"]["bf16"]["supported"] else [])
    for q in bench["precisions"]:
        c = bench["matmul_ceiling"][script.CEILING_OF[q]]
        assert c["seconds"] > 0 and c["gflops_per_s"] == pytest.approx(2 * 256 ** 3 / c["seconds"] / 1e9)
    entries = bench["entries"]
    assert [(e["recipe"], e["precision"]) for e in entries] == [(r, q) for r in ("lstm-s1", "vrnn-s64")
                                                                for q in bench["precisions"]]
    for e in entries:
        assert set(e) == _TRAINING_ENTRY_FIELDS, set(e) ^ _TRAINING_ENTRY_FIELDS
        assert e["segment_length"] == 2000 and e["batch_size"] == 4 and e["frames_per_step"] == 8000
        assert e["steps"] == 3 and len(e["step_seconds"]) == len(e["train_bpf"]) == 3 and e["timed_steps"] == 2
        assert e["seconds_per_step"] == pytest.approx(sum(e["step_seconds"][1:]) / 2)  # median of the 2 timed
        for k in ("seconds_per_step", "frames_per_s", "flops_per_frame", "gflops_per_s", "bpf_after_steps",
                  "valid_bpf_after_steps", "parameters"):
            assert e[k] > 0 and math.isfinite(e[k]), (e["recipe"], k, e[k])
        assert e["frames_per_s"] == pytest.approx(8000 / e["seconds_per_step"])
        assert e["flops_per_frame"] == e["flops_per_step"] / 8000
        assert e["flops_per_step"] == sum(e["flops_by_op"].values())
        assert e["gflops_per_s"] == pytest.approx(e["flops_per_step"] / e["seconds_per_step"] / 1e9)
        assert e["bpf_after_steps"] == e["train_bpf"][-1] and 10 < e["bpf_after_steps"] < 20  # untrained 16-bit audio
        assert e["non_finite_steps"] == 0 and e["uncounted_ops"] == [] and e["valid_utterances"] == 1
        assert e["autocast"] == ("bfloat16" if e["precision"] == "bf16" else None)
        assert e["deferred_weight_grads"] == (e["precision"] != "recipe")
    lstm = [e for e in entries if e["recipe"] == "lstm-s1"]
    assert any(e["flops_by_op"].get("aten.mkldnn_rnn_layer", 0) > 0 for e in lstm)  # the fused kernel is counted
    for r in ("vrnn-s64", "lstm-s1"):
        # the count does not depend on the precision, even where bf16 takes the unfused LSTM cell (ops differ)
        flops = {e["precision"]: e["flops_per_step"] for e in entries if e["recipe"] == r}
        assert flops.get("bf16", flops["fp32"]) == flops["fp32"]
        # deferred: the same matmuls, plus the gradient into the loop's initial state (one step's, < 0.1%)
        assert flops["recipe"] <= flops["fp32"] <= 1.001 * flops["recipe"]
        # deferring the weight gradients changes only the order of float additions
        same = {e["precision"]: e["train_bpf"] for e in entries if e["recipe"] == r}
        assert same["fp32"] == pytest.approx(same["recipe"], abs=1e-3)
    table = bm.training_speed_table(bench)
    assert len(table.rows) == len(entries) and table.caption.startswith("SMOKE RUN")
    # the gain at equal-step bpf, per recipe, as the book's table reads it
    assert set(bench["gains"]) == {"lstm-s1", "vrnn-s64"}
    for r, g in bench["gains"].items():
        best = next(e for e in entries if e["recipe"] == r and e["precision"] == g["best"])
        base = next(e for e in entries if e["recipe"] == r and e["precision"] == "recipe")
        assert g["gain"] == pytest.approx(best["frames_per_s"] / base["frames_per_s"]) and g["gain"] >= 1
        assert g["valid_bpf"]["best"] <= g["valid_bpf"]["recipe"] + g["max_bpf_loss"]


@pytest.mark.parametrize("name", ["wavenet-dc32-b2", "vrnn-s64"])  # the VRNN samples latents: the RNG streams match
def test_training_speed_steps_are_the_training_loops(name, timit_root, tmp_path):
    """The benchmark's run is the training loop's: from the same recipe, seed and data, its per-step training bpf and
    its validation bpf after the steps equal what wavelab.train.train logs, in float32 and in bf16 autocast."""
    import dataclasses

    from wavelab.data import load_split
    from wavelab.runs import read_metrics
    from wavelab.train import _spread_over_speakers, train

    script = _training_speed_script()
    recipe = script.select_recipes([name])[0]
    train_utts = load_split("timit", "train")
    valid_utts = _spread_over_speakers(load_split("timit", "valid"), 1)
    for precision, amp in (("fp32", "off"), ("bf16", "bf16")):
        e = script.measure(recipe, precision, steps=3, warmup=1, quick=True, train_utterances=train_utts,
                           valid_utterances=valid_utts, runs_dir=tmp_path / "bench")
        cfg = dataclasses.replace(recipe.train_config(tmp_path / precision, quick=True, device="cpu"), amp=amp,
                                  max_steps=3, log_every=1, eval_every=3, eval_subset=1, checkpoint_every=None,
                                  checkpoint_minutes=None)
        train(cfg, progress=False)
        logged = [r["bpf"] for r in read_metrics(cfg.run_dir)]
        assert e["train_bpf"] == pytest.approx(logged, rel=1e-12, abs=0)
        (ev,) = read_metrics(cfg.run_dir, kind="eval")
        assert e["valid_bpf_after_steps"] == pytest.approx(ev["bpf"], rel=1e-12, abs=0)


def test_flop_count_covers_the_fused_lstm_and_does_not_depend_on_the_precision():
    import torch

    script = _training_speed_script()
    B, T, I, H = 2, 30, 5, 8
    x = torch.randn(B, T, I)
    lstm = torch.nn.LSTM(I, H, batch_first=True)
    expected_forward = 2 * B * T * (4 * H * I + 4 * H * H)
    assert script.count_flops(lambda: lstm(x))["flops"] == expected_forward
    cell = torch.nn.LSTMCell(I, H)  # the same matmuls one step at a time, counted by torch's own formulas

    def unrolled(inputs=x):
        h = c = torch.zeros(B, H)
        for t in range(T):
            h, c = cell(inputs[:, t], (h, c))
        return h

    assert script.count_flops(unrolled)["flops"] == expected_forward
    # backward (inputs that need their gradient, as the encoder's output does in training): the fused kernel is
    # counted as the unfused cell's matmuls, so the count does not depend on which path torch takes
    x_grad = x.clone().requires_grad_()
    fused = script.count_flops(lambda: lstm(x_grad)[0][:, -1].sum().backward())
    assert set(fused["by_op"]) == {"aten.mkldnn_rnn_layer", "aten.mkldnn_rnn_layer_backward"}
    assert fused["by_op"]["aten.mkldnn_rnn_layer"] == expected_forward
    assert fused["flops"] == script.count_flops(lambda: unrolled(x_grad).sum().backward())["flops"]

    import wavelab.models.sashimi  # noqa: F401

    for name, overrides in (("lstm", {"s": 1, "Dd": 8, "mlp_layers": 2}), ("wavenet", {"Dc": 4, "blocks": 1,
                            "layers_per_block": 2, "num_components": 1}), ("sashimi", {"d_model": 8, "n_layers": 1,
                            "d_state": 4, "l_max": 64, "head": "dmol"})):
        model = build_model(name, **overrides)
        codes, lengths = torch.randint(0, 2 ** 16, (2, 64)), torch.tensor([64, 50])
        counts = []
        for amp in (False, True):
            with torch.random.fork_rng(devices=[]):
                def step(model=model, amp=amp, codes=codes, lengths=lengths):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                        loss = model(codes, lengths).loss()
                    loss.backward()
                counts.append(script.count_flops(step))
        # the same total whichever kernels run (without AVX-512, bf16 takes the unfused LSTM cell: other ops)
        assert counts[0]["flops"] == counts[1]["flops"] > 0, name
        assert counts[0]["uncounted_ops"] == counts[1]["uncounted_ops"], name
        fft = [op for op in counts[0]["uncounted_ops"] if "fft" in op]
        assert bool(fft) == (name == "sashimi") and counts[0]["uncounted_ops"] == fft, (name, counts[0])


def test_training_speed_recipes_are_the_16_bit_ones_in_book_order():
    script = _training_speed_script()
    assert [r.name for r in script.select_recipes(None)] == [
        "wavenet-dc32-b2", "wavenet-paper", "lstm-s1", "lstm-s64", "vrnn-s64", "srnn-s64", "cwvae-s64-l1",
        "cwvae-s64-l2", "cwvae-s64-l3", "waveflow-h16", "waveglow", "sashimi-16bit"]
    assert [r.name for r in script.select_recipes(["waveglow", "lstm-s1"])] == ["lstm-s1", "waveglow"]
    with pytest.raises(ValueError, match="'sashimi-8bit': its model is not 16-bit"):
        script.select_recipes(["sashimi-8bit"])
    with pytest.raises(ValueError, match="'nope': no such recipe; choose from wavenet-dc32-b2"):
        script.select_recipes(["nope"])


def test_training_speed_reads_bf16_support_from_the_cpu_flags():
    script = _training_speed_script()
    info = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    flags = script.cpu_flags(info)
    assert {"avx2", "avx512_bf16"} <= flags and "amx_bf16" not in flags
    assert script.bf16_support(flags) == {"supported": True, "via": ["avx512_bf16"]}
    assert script.bf16_support({"amx_bf16", "avx512_bf16"})["via"] == ["amx_bf16", "avx512_bf16"]
    assert script.bf16_support({"avx2"}) == {"supported": False, "via": []}


def test_training_speed_quick_run_never_replaces_a_real_measurement(tmp_path):
    import json

    script = _training_speed_script()
    real = tmp_path / "training_speed.json"
    real.write_text(json.dumps({"quick": False, "entries": []}))
    with pytest.raises(SystemExit, match="holds a real"):
        script.main(["--quick", "--out", str(real)])
    assert json.loads(real.read_text()) == {"quick": False, "entries": []}
    with pytest.raises(SystemExit):  # argparse: at least one timed step
        script.main(["--quick", "--steps", "2", "--warmup", "2", "--out", str(tmp_path / "q.json")])
    assert not (tmp_path / "q.json").exists()


def _training_bench(quick=False):
    def e(recipe, precision, fps, gflops, bpf, valid, flops_per_frame=2.5e6, **extra):
        return {"recipe": recipe, "precision": precision, "segment_length": 16000, "batch_size": 2, "steps": 20,
                "warmup_steps": 3, "frames_per_s": fps, "flops_per_frame": flops_per_frame, "gflops_per_s": gflops,
                "bpf_after_steps": bpf, "valid_bpf_after_steps": valid, "uncounted_ops": [], **extra}
    return {"created": "2026-01-01T00:00:00Z", "hardware": {"cpu": "X", "torch": "2"}, "threads": 1,
            "commit": {"hash": "abcdef1234567"}, "load_average_at_start": [0.12, 0.3, 0.2], "quick": quick,
            "cpu": {"bf16": {"supported": True, "via": ["amx_bf16"]}}, "steps": 20, "warmup_steps": 3,
            "valid_utterances": ["a", "b"],
            "matmul_ceiling": {"n": 2048, "repeats": 5, "fp32": {"seconds": 0.2, "gflops_per_s": 80.0},
                               "bf16": {"seconds": 0.02, "gflops_per_s": 800.0}},
            "entries": [e("wavenet-paper", "fp32", 5000.0, 12.5, 14.1234, 13.9876),
                        e("wavenet-paper", "bf16", 9000.0, 22.5, 14.1244, 13.9886),
                        e("vrnn-s64", "fp32", 60000.0, 4.0, 15.5, 15.25, valid_is_bound=True, flops_per_frame=6.7e4),
                        e("vrnn-s64", "bf16", 30000.0, 2.0, None, None, non_finite_steps=2, flops_per_frame=6.7e4),
                        e("sashimi-16bit", "bf16", 100.0, 0.05, 16.0, 16.5, uncounted_ops=["aten._fft_r2c"])]}


def test_training_speed_table_computes_speed_ups_and_fractions_of_the_ceiling():
    table = bm.training_speed_table(_training_bench())
    assert table.header == ["model", "precision", "batch x samples", "frames/s", "speed-up", "MFLOP/frame",
                            "GFLOP/s", "% of matmul ceiling", "train bpf at step 20", "valid bpf after 20 steps"]
    wn32, wn16, vr32, vr16, sa16 = table.rows
    assert wn32 == ["wavenet-paper", "fp32", "2 x 16,000", "5,000", "", "2.50", "12.5", "15.6%", "14.123", "13.988"]
    assert wn16 == ["wavenet-paper", "bf16", "2 x 16,000", "9,000", "1.80x", "2.50", "22.5", "2.81%", "14.124",
                    "13.989"]  # 9,000 / 5,000 frames/s; 22.5 / 800 GFLOP/s (the bf16 ceiling)
    assert vr32[3:] == ["60,000", "", "0.067", "4.00", "5.00%", "15.500", "<= 15.250"]
    assert vr16[4] == "0.50x" and vr16[8:] == ["n/a (2 non-finite steps)", "n/a"]
    assert sa16[0] == "sashimi-16bit *" and sa16[4] == ""  # no fp32 row to compare with
    assert sa16[7] == "0.00625%" and "aten._fft_r2c" in table.notes
    md = table.markdown()
    for text in ("on X (1 threads; load average at start 0.12; bf16 via amx_bf16)", "abcdef1234",
                 "fp32 80.0 GFLOP/s, bf16 800 GFLOP/s", "2048 x 2048", "median of 17 steps after 3 warm-up",
                 "2 validation utterances"):
        assert text in md, text
    assert "SMOKE" not in md
    assert bm.training_speed_table(_training_bench(quick=True)).caption.startswith("SMOKE RUN")


def test_training_speed_table_rejects_output_that_is_not_the_scripts():
    bench = _training_bench()
    del bench["entries"][1]["gflops_per_s"]
    with pytest.raises(ValueError, match="gflops_per_s"):
        bm.training_speed_table(bench)
    bench = _training_bench()
    del bench["matmul_ceiling"]["bf16"]
    with pytest.raises(ValueError, match="no bf16 matmul ceiling"):
        bm.training_speed_table(bench)
    with pytest.raises(ValueError, match="entries"):
        bm.training_speed_table(_recurrent_bench())
    bench = _training_bench()
    for e in bench["entries"]:
        e["valid_bpf_after_steps"] = None
    assert len(bm.training_speed_table(bench).header) == 9  # no validation column without validation figures


def test_training_speed_gain_picks_the_fastest_form_at_equal_step_bpf():
    bench = _training_bench()
    table = bm.training_speed_gain(bench)
    assert table.column("model") == ["wavenet-paper", "vrnn-s64"]  # sashimi: no fp32 (or recipe) row to compare with
    wn, vr = table.rows
    # no "recipe" form in this file: the fp32 row is the baseline; bf16 is 1.8x and 0.001 bpf worse on valid
    assert wn[1:5] == ["5,000", "bf16", "9,000", "1.80x"]
    assert wn[5] == "15.6% / 2.81%"  # 12.5 of the 80 GFLOP/s fp32 ceiling; 22.5 of the 800 bf16 one
    assert wn[6] == "13.988 / 13.989"
    assert vr[2:5] == ["fp32", "60,000", "1.00x"]  # bf16 has no validation figure: not eligible
    # a form more than max_bpf_loss worse on valid is not eligible
    assert bm.training_speed_gain(bench, max_bpf_loss=0.0005).rows[0][2] == "fp32"
    # with a "recipe" form it is the baseline
    recipe = dict(bench["entries"][0], precision="recipe", frames_per_s=2500.0, valid_bpf_after_steps=13.9880)
    bench["entries"].insert(0, recipe)
    wn = bm.training_speed_gain(bench).rows[0]
    assert wn[1:5] == ["2,500", "bf16", "9,000", "3.60x"] and wn[6] == "13.988 / 13.989"
    assert bm.training_speed_table(bench).rows[1][4] == "2.00x"  # fp32 against the recipe row
    for e in bench["entries"]:
        e["valid_bpf_after_steps"] = None
    with pytest.raises(ValueError, match="validation"):
        bm.training_speed_gain(bench)
