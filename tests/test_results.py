"""Tests of result records, provenance and the results table (wavelab.report.records)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from wavelab.models import run_label
from wavelab.report.papers import PAPER_BPF
from wavelab.report.records import ResultRecord, load_records, read_record, record_run_dir, write_record
from wavelab.report.tables import records_table
from wavelab.runs import git_commit, hardware_info


def make_record(**kw) -> ResultRecord:
    base = dict(model="wavenet", config={"Dc": 32, "blocks": 2}, dataset="timit", split="test", bpf_weighted=12.3456,
                bpf_mean=12.5, is_bound=False, steps=1500, frames_seen=48_000_000, wall_time_s=3600.0,
                hardware={"cpu": "Test CPU", "gpu": None}, commit={"hash": "ab" * 20, "dirty": False}, seed=0,
                budget="cpu-budget", run_dir="runs/x")
    base.update(kw)
    return ResultRecord(**base)


def test_write_and_load_roundtrip(tmp_path):
    a = make_record()
    b = make_record(model="cwvae", config={"s": 64, "L": 2}, bpf_weighted=13.0, bpf_mean=13.1, is_bound=True)
    write_record(a, tmp_path / "results" / "a.json")
    write_record(b, tmp_path / "results" / "b.json")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["a.json", "b.json"]  # no temporary files
    loaded = load_records(tmp_path / "results")
    assert loaded == [a, b]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", loaded[0].created)
    # overwriting replaces the file
    write_record(make_record(bpf_weighted=11.0), tmp_path / "results" / "a.json")
    assert read_record(tmp_path / "results" / "a.json").bpf_weighted == 11.0


def test_bad_records_are_named(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_records(tmp_path)
    (tmp_path / "broken.json").write_text(json.dumps({"model": "x"}))
    with pytest.raises(ValueError, match="broken.json.*missing keys.*bpf_weighted"):
        load_records(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_records(tmp_path / "absent")
    with pytest.raises(ValueError, match="budget"):
        make_record(budget="laptop")


def test_record_label_matches_paper_rows():
    assert run_label("wavenet", {"Dc": 96}) == "wavenet"
    assert run_label("lstm", {"s": 64}) == "lstm s=64"
    assert run_label("lstm", {"s": 1}) == "lstm"
    assert run_label("cwvae", {"s1": 64, "L": 2}) == "cwvae s=64 L=2"
    assert PAPER_BPF[("wavenet", "timit")].bpf == 10.88
    assert PAPER_BPF[(run_label("cwvae", {"s": 64, "L": 2}), "timit")].bpf == 12.17
    assert PAPER_BPF[("flac", "librispeech")].bpf == 9.272
    # every latent variable model figure is a bound, every deterministic one is not
    for (label, _), fig in PAPER_BPF.items():
        assert fig.is_bound == (label.split()[0] in ("vrnn", "srnn", "cwvae")), label


def test_records_table_groups_by_dataset_and_folds_provenance():
    records = [make_record(), make_record(dataset="librispeech", bpf_weighted=13.0),
               make_record(model="sashimi", config={"bits": 8}, bpf_weighted=7.4, bpf_mean=7.4)]
    tables = records_table(records, provenance=True)
    assert len(tables) == 3  # TIMIT bpf, TIMIT bits per 8-bit sample, LibriSpeech bpf: never one column
    assert [t.columns[1] if t.columns[0] == "model" else None for t in tables]
    assert "ours [bits per 8-bit sample]" in tables[1].columns and "ours [bpf]" in tables[0].columns
    page = tables._repr_html_()
    assert page.count('<table class="wavelab-table">') == 3 and "<details>" in page and "abababab" in page


def test_hardware_info_and_git_commit(tmp_path):
    hw = hardware_info()
    assert hw["cores"] >= 1 and hw["cpu"] and isinstance(hw["torch"], str)
    assert (hw["gpu"] is None) == (hw["gpu_count"] == 0)

    assert git_commit(tmp_path) == {"hash": None, "dirty": None}  # not a repository

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("commit", "-q", "-m", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == {"hash": head, "dirty": False}
    (tmp_path / "f.txt").write_text("b")
    assert git_commit(tmp_path) == {"hash": head, "dirty": True}


def test_record_run_dir_finds_exported_runs(tmp_path):
    results = tmp_path / "results"
    exported = results / "runs" / "x"
    exported.mkdir(parents=True)
    rec = make_record(run_dir="runs/x")          # relative to the project root, where no such run exists
    with pytest.raises(FileNotFoundError, match="runs/x"):
        record_run_dir(rec, results)
    (exported / "checkpoint.pt").write_bytes(b"")
    assert record_run_dir(rec, results) == exported
    absolute = tmp_path / "elsewhere"
    absolute.mkdir()
    (absolute / "checkpoint.pt").write_bytes(b"")
    assert record_run_dir(make_record(run_dir=str(absolute)), results) == absolute
    with pytest.raises(ValueError, match="no training run"):
        record_run_dir(make_record(model="uniform", run_dir=None), results)


def test_select_is_the_one_query_over_records(monkeypatch):
    from wavelab.report.records import select

    def no_data(*args, **kwargs):
        raise AssertionError("select read the data")

    monkeypatch.setattr("wavelab.data.load_split", no_data)
    whole = dict(utterances=40, split_utterances=40)
    recs = [make_record(**whole),                                                              # 0
            make_record(utterances=4, split_utterances=40, notes="first 4 utterances of the split only"),  # 1
            make_record(model="vrnn", config={"s": 64}, is_bound=True, estimator="ELBO, 1 sample", **whole),
            make_record(model="vrnn", config={"s": 64}, is_bound=True, **whole,
                        estimator="importance-weighted bound, K=100"),                         # 3
            make_record(model="vrnn", config={"s": 1}, is_bound=True, estimator="ELBO, 1 sample", **whole),
            make_record(model="uniform", config={"bits": 16}, **whole, steps=0, run_dir=None),  # 5
            make_record(split="valid", utterances=20, split_utterances=20),                     # 6
            make_record(dataset="librispeech", utterances=None)]                                # 7: no count
    pick = lambda **kw: [recs.index(r) for r in select(recs, **kw)]  # noqa: E731
    assert pick(dataset="timit", split="test") == [0, 2, 3, 4, 5]
    assert pick(dataset="timit", split="test", full_split=False) == [0, 1, 2, 3, 4, 5]
    assert pick(model="vrnn", s=64) == [2, 3] and pick(model="vrnn", s=64, estimator="ELBO") == [2]
    assert pick(model=("wavenet", "uniform"), split="test") == [0, 5, 7]
    assert pick(label="vrnn s=64", estimator="importance-weighted") == [3]
    assert pick(split="valid") == [6] and pick(dataset="librispeech") == [7]
    assert pick(model="wavenet", L=2) == []        # a record without the field does not match
    assert pick(budget="gpu") == []


def test_every_committed_record_knows_the_size_of_its_split():
    """``select`` judges a whole split from the record alone: each committed record of a model or baseline states
    how many utterances its split holds, and that is the split's size in the data."""
    from wavelab.data import load_split
    from wavelab.settings import results_dir

    root = results_dir()
    records = [r for folder in (root, root / "equal", root / "compression") for r in load_records(folder)]
    sizes = {}
    for r in records:
        if r.utterances is None:
            continue
        if (r.dataset, r.split) not in sizes:
            sizes[r.dataset, r.split] = len(load_split(r.dataset, r.split))
        assert r.split_utterances == sizes[r.dataset, r.split], (r.label, r.dataset, r.split)
        assert r.utterances <= r.split_utterances
