"""The latent-study runner (scripts/latent_study.py) and the study's accuracy table: the record lookup and the
consistency checks, the output-path guard, and one end-to-end run of the script on a tiny CW-VAE with a synthetic
corpus (the TIMIT study itself takes minutes and is run by hand)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch

import wavelab.analysis
import wavelab.models
from wavelab.analysis import accuracy_table, load_study, run_latent_study
from wavelab.report.records import ResultRecord, write_record
from wavelab.settings import PROJECT_ROOT

torch.set_num_threads(1)

spec = importlib.util.spec_from_file_location("latent_study", PROJECT_ROOT / "scripts" / "latent_study.py")
latent_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(latent_study)


def tiny_study():
    def feat(acc):
        return {"accuracy": acc, "embedding": np.zeros((4, 2))}

    return {"settings": {}, "tasks": {
        "phone": {"schemes": ["loo"], "labels": list("abab"), "groups": list("uuvv"),
                  "chance": {"loo": {"majority": 0.0, "stratified": 0.25}},
                  "features": {"z1": feat({"loo": {1: 0.5, 3: 0.75}}), "mel": feat({"loo": {1: 0.25, 3: 0.75}})}},
        "gender": {"schemes": ["loo", "loso"], "labels": list("FMFM"), "groups": list("abcd"),
                   "chance": {"loo": {"majority": 0.0, "stratified": 1 / 3}, "loso": {"majority": 0.0,
                                                                                    "stratified": 1 / 3}},
                   "features": {"z1": feat({"loo": {1: 1.0}, "loso": {1: 0.5}}),
                                "mel": feat({"loo": {1: 0.5}, "loso": {1: 0.75}})}},
    }}


def test_accuracy_table_marks_the_best_feature_and_leaves_missing_k_blank():
    table = accuracy_table(tiny_study())
    assert '<table class="wavelab-table">' in table._repr_html_() and "<strong>50.0</strong>" in table._repr_html_()
    lines = str(table).splitlines()
    assert lines[0] == "| task | scheme | feature | k=1 | k=3 | chance (majority / stratified) |"
    assert len(lines) == 2 + 2 + 4                    # header, rule, 2 phone rows, 2 schemes x 2 gender rows
    assert lines[2] == "| phone | loo | z1 | **50.0** | **75.0** | 0.0 / 25.0 |"   # ties are both bold
    assert lines[3] == "| phone | loo | mel | 25.0 | **75.0** | 0.0 / 25.0 |"
    assert lines[4] == "| gender | loo | z1 | **100.0** |  | 0.0 / 33.3 |"       # k=3 not evaluated: blank
    assert lines[7] == "| gender | loso | mel | **75.0** |  | 0.0 / 33.3 |"
    assert str(accuracy_table(tiny_study(), ks=[3])).splitlines()[0].count("k=") == 1
    with pytest.raises(ValueError, match="study"):
        accuracy_table({"tasks": {}})


# --------------------------------------------------------------------------------------------------------------------
# the script


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-step quick CW-VAE run and its result record in a results folder of its own."""
    from wavelab.train import TrainConfig, load_run, train

    root = tmp_path_factory.mktemp("study")
    run_dir = root / "runs" / "cwvae-tiny"
    cfg = TrainConfig(model="cwvae", model_overrides=dict(wavelab.models.config_for("cwvae").quick_overrides()),
                      segment_length=256, batch_size=1, max_steps=1, checkpoint_every=None,
                      run_dir=str(run_dir))
    synthetic = _synthetic_corpus()
    train(cfg, utterances=synthetic, progress=False)
    _, _, meta = load_run(run_dir)
    results = root / "results"
    record = ResultRecord(model="cwvae", config=meta["model_config"], dataset="timit", split="test",
                          bpf_weighted=15.0, bpf_mean=15.0, is_bound=True, steps=meta["step"],
                          run_dir=str(run_dir), estimator="ELBO, 1 sample")
    write_record(record, results / "cwvae-timit-tiny.json")
    write_record(dataclasses.replace(record, model="vrnn", created=""), results / "vrnn-other.json")
    return run_dir, results, record


def _synthetic_corpus():
    import sys

    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from test_analysis import synthetic_corpus

    return synthetic_corpus()


def test_find_record_and_consistency(tiny_run):
    run_dir, results, record = tiny_run
    path, found = latent_study.find_record(run_dir, results)
    assert path.name == "cwvae-timit-tiny.json" and found == record
    with pytest.raises(FileNotFoundError, match="--record"):
        latent_study.find_record(run_dir.parent / "elsewhere", results)
    from wavelab.train import load_run

    _, _, meta = load_run(run_dir)
    latent_study.check_consistency(record, meta, run_dir)
    with pytest.raises(ValueError, match="training steps"):
        latent_study.check_consistency(dataclasses.replace(record, steps=record.steps + 1), meta, run_dir)
    with pytest.raises(ValueError, match=r"config differs in \['Dz'\]"):
        latent_study.check_consistency(dataclasses.replace(record, config=dict(record.config, Dz=99)), meta, run_dir)


def test_script_refuses_bad_output_paths(tiny_run, monkeypatch):
    run_dir, results, _ = tiny_run
    monkeypatch.setenv("WAVELAB_RESULTS", str(results))
    with pytest.raises(ValueError, match="result records only"):
        latent_study.main(["--run-dir", str(run_dir), "--out", str(results / "study.json")])
    with pytest.raises(ValueError, match=".json"):
        latent_study.main(["--run-dir", str(run_dir), "--out", str(results / "studies" / "study.txt")])
    with pytest.raises(ValueError, match="num-samples"):
        latent_study.main(["--run-dir", str(run_dir), "--out", str(results / "studies" / "s.json"),
                           "--num-samples", "0"])
    with pytest.raises(ValueError, match="strides"):   # the quick model is not the paper's s1 = 64, s2 = 512
        latent_study.main(["--run-dir", str(run_dir), "--out", str(results / "studies" / "s.json")])


def test_script_end_to_end_with_provenance(tiny_run, monkeypatch, tmp_path):
    run_dir, results, record = tiny_run
    monkeypatch.setenv("WAVELAB_RESULTS", str(results))
    utts = _synthetic_corpus()
    calls = []

    def small_study(model, **kw):   # the real function on a synthetic corpus instead of TIMIT
        calls.append(kw)
        return run_latent_study(model, ks=(1, 3), min_count=2, phone_utterances=utts[:3], speaker_utterances=utts,
                                height_sex=None, **kw)

    monkeypatch.setattr(wavelab.analysis, "run_latent_study", small_study)
    out = tmp_path / "studies" / "study.json"
    study = latent_study.main(["--run-dir", str(run_dir), "--out", str(out), "--quick", "--num-samples", "3",
                               "--no-progress"])
    assert calls == [{"num_samples": 3, "quick": True, "seed": 0, "progress": False}]
    saved = json.loads(out.read_text())
    prov = saved["provenance"]
    assert prov["model"] == "cwvae" and prov["model_config"] == record.config
    assert prov["train_step"] == record.steps and prov["quick"] is True and prov["num_samples"] == 3
    assert prov["record"]["bpf_weighted"] == 15.0 and prov["record_path"].endswith("cwvae-timit-tiny.json")
    assert prov["wall_s"] > 0 and prov["hardware"]["cores"] >= 1 and "hash" in prov["commit"]
    assert prov["train_config"]["max_steps"] == 1
    assert set(study["tasks"]) == {"phone", "gender", "height"} and load_study(out)["settings"]["num_samples"] == 3
