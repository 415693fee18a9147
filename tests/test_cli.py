"""Tests of the command line (python -m wavelab) on the default data (the TIMIT sample) with a tiny WaveNet."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.__main__ import main
from wavelab.report.records import read_record
from wavelab.train import read_metrics

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
TINY = ["--set", "Dc=8", "--set", "blocks=1", "--set", "layers_per_block=4"]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_evaluate_sample_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, _ = run_cli(capsys, "train", "--model", "wavenet", *TINY, "--steps", 3, "--segment-length", 1000,
                           "--run-dir", run, "--seed", 1, "--log-every", 1, "--no-progress")
    assert code == 0 and "3 steps" in out
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["Dc"] == 8 and config["train_config"]["segment_length"] == 1000
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]

    # extend the run: no --model/--set needed, the saved settings are reused
    code, out, _ = run_cli(capsys, "train", "--run-dir", run, "--steps", 5, "--no-progress")
    assert code == 0 and "5 steps" in out
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3, 4, 5]
    code, _, err = run_cli(capsys, "train", "--run-dir", run, "--no-progress")
    assert code == 2 and "--steps" in err

    record = tmp_path / "results" / "tiny.json"
    code, out, _ = run_cli(capsys, "evaluate", "--run-dir", run, "--split", "test", "--limit", 2, "--record", record,
                           "--no-progress")
    assert code == 0 and "bpf" in out
    rec = read_record(record)
    assert rec.model == "wavenet" and rec.config["Dc"] == 8 and rec.dataset == "timit" and rec.split == "test"
    assert rec.steps == 5 and rec.frames_seen == 5 * 2 * 1000 and rec.budget == "cpu-budget"
    assert rec.utterances == 2 and "first 2 utterances" in rec.notes and not rec.is_bound
    assert rec.train_config["segment_length"] == 1000 and rec.train_config["batch_size"] == 2
    assert rec.train_commit.keys() == {"hash", "dirty"} and rec.estimator == "exact"
    assert 8.0 < rec.bpf_weighted < 20.0  # an untrained 16-bit model: near the uniform 16 bpf
    code, _, err = run_cli(capsys, "evaluate", "--run-dir", run, "--limit", 1, "--iw-samples", 4, "--no-progress")
    assert code == 2 and "iw_bound" in err  # WaveNet has no latent variables to importance-sample

    wav = tmp_path / "s.wav"
    code, out, _ = run_cli(capsys, "sample", "--run-dir", run, "--seconds", 0.01, "--out", wav, "--no-progress")
    assert code == 0
    x, sr = sf.read(wav, dtype="int16")
    info = sf.info(wav)
    assert sr == 16_000 and info.subtype == "PCM_16" and x.shape == (160,)
    assert np.abs(x.astype(np.int32)).max() > 0  # not silence


def test_user_errors_are_clear(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--model", "no-such-model", "--steps", 1, "--run-dir", tmp_path / "r")
    assert code == 2 and "unknown model 'no-such-model'" in err and "wavenet" in err
    code, _, err = run_cli(capsys, "train", "--set", "channels=3", "--steps", 1, "--run-dir", tmp_path / "r")
    assert code == 2 and "channels" in err and "Dc" in err and "layers_per_block" in err
    code, _, err = run_cli(capsys, "train", "--set", "Dc", "--steps", 1, "--run-dir", tmp_path / "r")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run_cli(capsys, "train", *TINY, "--run-dir", tmp_path / "r")
    assert code == 2 and "--steps" in err and "--minutes" in err
    code, _, err = run_cli(capsys, "evaluate", "--run-dir", tmp_path)
    assert code == 2 and "has no checkpoint.pt" in err
    code, _, err = run_cli(capsys, "sample", "--run-dir", tmp_path / "absent", "--out", tmp_path / "x.wav")
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "r").exists()  # nothing was started


def test_baselines_command(tmp_path, monkeypatch, capsys):
    from wavelab.likelihood import bits_per_frame

    calls = []

    def run_baselines(train_utterances, test_utterances, progress=False, representation="mulaw"):
        calls.append((len(train_utterances), len(test_utterances)))
        assert representation == "mulaw"  # the default
        lengths = [u.num_samples for u in test_utterances]
        nll = torch.tensor(lengths, dtype=torch.float64) * 16 * np.log(2)
        return [types.SimpleNamespace(name="uniform", bpf=bits_per_frame(nll, lengths), details={"bits": 16})]

    monkeypatch.setitem(sys.modules, "wavelab.baselines", types.SimpleNamespace(run_baselines=run_baselines))
    code, out, _ = run_cli(capsys, "baselines", "--dataset", "timit", "--results-dir", tmp_path, "--no-progress")
    assert code == 0 and calls == [(100, 40)]  # the fixed TIMIT split: 10 train + 4 test speakers, 10 utterances each
    assert "| uniform" in out and "16.000" in out
    rec = read_record(tmp_path / "baseline-timit-uniform.json")
    assert rec.model == "uniform" and rec.bpf_weighted == pytest.approx(16.0) and rec.utterances == 40
    assert rec.config == {"bits": 16} and rec.split == "test" and rec.steps == 0


def test_module_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "wavelab", "train", "--model", "nope", "--steps", "1", "--run-dir",
                        str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "known models" in r.stderr
    r = subprocess.run([sys.executable, "-m", "wavelab", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "evaluate", "sample", "baselines"))


@pytest.mark.parametrize("name", ["cwvae", "waveflow", "waveglow", "sashimi"])
def test_new_models_train_evaluate_sample_from_the_command_line(name, tmp_path, capsys):
    """Every model of issues 4 and 5 goes through the same three commands on the real TIMIT sample (tiny configs)."""
    run, record, wav = tmp_path / "run", tmp_path / "results" / f"{name}.json", tmp_path / "s.wav"
    code, out, _ = run_cli(capsys, "train", "--model", name, "--quick", "--steps", 2, "--segment-length", 1024,
                           "--run-dir", run, "--no-progress")
    assert code == 0 and "2 steps" in out
    code, out, _ = run_cli(capsys, "evaluate", "--run-dir", run, "--split", "test", "--limit", 1, "--record", record,
                           "--no-progress")
    assert code == 0
    rec = read_record(record)
    bound = name != "sashimi"          # the CW-VAE reports an ELBO, the flows a dequantization bound
    assert rec.model == name and rec.is_bound == bound and np.isfinite(rec.bpf_weighted)
    expected = {"cwvae": "ELBO, 1 sample", "sashimi": "exact"}.get(name, "uniform dequantization bound, 1 noise sample")
    assert rec.estimator == expected
    code, _, _ = run_cli(capsys, "sample", "--run-dir", run, "--seconds", 0.02, "--out", wav)
    assert code == 0
    audio, sr = sf.read(wav)
    assert sr == 16000 and len(audio) == 320 and np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("name, iw", [("vrnn", True), ("cwvae", False), ("waveflow", False)])
def test_evaluate_with_a_seed_writes_identical_bpf(name, iw, tmp_path, capsys):
    """Stochastic figures (a latent model's ELBO and IW bound, a flow's dequantization bound) are reproducible: two
    evaluations with the same seed write bit-for-bit the same bpf, another seed a different one, and the record
    names its seed and split; training's periodic evaluation reads the valid split."""
    run = tmp_path / "run"
    code, _, _ = run_cli(capsys, "train", "--model", name, "--quick", "--steps", 2, "--segment-length", 1024,
                         "--eval-every", 2, "--run-dir", run, "--no-progress")
    assert code == 0
    evals = read_metrics(run, kind="eval")
    assert [e["split"] for e in evals] == ["valid"] and evals[0]["utterances"] == 2
    assert json.loads((run / "config.json").read_text())["train_split"] == "train"
    iw = ["--iw-samples", 3] if iw else []
    recs = {}
    for tag, seed in (("a", 0), ("b", 0), ("c", 1)):
        code, _, _ = run_cli(capsys, "evaluate", "--run-dir", run, "--split", "test", "--limit", 2, "--seed", seed,
                             *iw, "--record", tmp_path / f"{tag}.json", "--no-progress")
        assert code == 0
        recs[tag] = read_record(tmp_path / f"{tag}.json")
    a, b, c = recs["a"], recs["b"], recs["c"]
    assert (a.bpf_weighted, a.bpf_mean) == (b.bpf_weighted, b.bpf_mean) and a.eval_seed == 0 and c.eval_seed == 1
    assert c.bpf_weighted != a.bpf_weighted and a.split == "test" and a.train_split == "train"
    assert a.curve_split == "valid"


def test_export_command_keeps_weights_and_logs_without_optimizer_state(tmp_path, capsys):
    import torch as _torch

    from wavelab.train import load_run

    run, dest = tmp_path / "run", tmp_path / "results" / "runs" / "run"
    code, _, _ = run_cli(capsys, "train", "--model", "wavenet", *TINY, "--steps", 2, "--segment-length", 1000,
                         "--run-dir", run, "--no-progress")
    assert code == 0
    code, out, _ = run_cli(capsys, "export", "--run-dir", run, "--dest", dest)
    assert code == 0 and str(dest) in out
    slim = _torch.load(dest / "checkpoint.pt", weights_only=True)
    assert "optimizer" not in slim and "rng" not in slim and slim["step"] == 2
    assert (dest / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    a, b = load_run(run)[0], load_run(dest)[0]
    assert all(_torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    code, _, err = run_cli(capsys, "export", "--run-dir", tmp_path / "nothing", "--dest", tmp_path / "d")
    assert code == 2 and "nothing" in err and not (tmp_path / "d").exists()
