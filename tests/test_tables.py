"""Tests of the book's tables (wavelab.report.tables): records in, a table that renders as HTML out."""

from __future__ import annotations

import re

import pytest

from wavelab.report.papers import PAPER_BPF
from wavelab.report.records import ResultRecord
from wavelab.report.tables import Html, Strong, Table, Tables, group_records, records_table


def rec(**kw) -> ResultRecord:
    base = dict(model="wavenet", config={"Dc": 32, "blocks": 2}, dataset="timit", split="test", bpf_weighted=12.3456,
                bpf_mean=12.5, is_bound=False, steps=1500, frames_seen=48_000_000, wall_time_s=3600.0,
                hardware={"cpu": "Test CPU", "cores": 2, "gpu": None}, commit={"hash": "cd" * 20, "dirty": False},
                seed=0, budget="cpu-budget", run_dir="runs/x", utterances=40, estimator="exact")
    base.update(kw)
    return ResultRecord(**base)


def test_html_is_a_real_table_and_never_pipe_text():
    t = Table.from_rows([["a", 1.5], ["b|c", Strong("2")]], ["name", "value"], caption="A caption", notes="a note")
    page = t._repr_html_()
    assert '<table class="wavelab-table">' in page and "<caption>A caption</caption>" in page
    assert page.count("<tr>") == 4  # header, two rows, the notes
    assert "<strong>2</strong>" in page and "b|c" in page
    assert not re.search(r"^\|", re.sub(r"<[^>]+>", "\n", page), re.M)  # no Markdown pipe row anywhere
    assert not hasattr(t, "_repr_markdown_")  # a notebook must choose the HTML
    md = t.markdown().splitlines()
    assert md[0] == "A caption" and md[2] == "| name | value |" and md[5] == "| b\\|c | **2** |"


def test_table_checks_row_lengths_and_names_columns():
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        Table(["a", "b"], [["1", "2"], ["3"]])
    t = Table.from_rows([{"a": 1, "b": 2}, {"a": 3}])
    assert t.column("a") == ["1", "3"] and t.column("b") == ["2", ""]
    with pytest.raises(KeyError, match="the columns are"):
        t.column("c")
    with pytest.raises(ValueError, match="needs columns"):
        Table.from_rows([[1, 2]])


def test_html_cells_are_inserted_and_text_is_escaped():
    t = Table(["x"], [[Html("<i>y</i>", "y")], ["<script>"]])
    page = t._repr_html_()
    assert "<i>y</i>" in page and "&lt;script&gt;" in page and "<script>" not in page.replace("<style>", "")
    assert t.markdown().splitlines()[-2:] == ["| y |", "| <script> |"]


def test_records_table_puts_the_paper_beside_ours_and_constants_in_the_caption():
    records = [rec(), rec(model="lstm", config={"Dd": 256, "s": 1}, bpf_weighted=13.0, steps=900, wall_time_s=600.0)]
    t = records_table(records, caption="WaveNet against the LSTM")
    assert t.column("model") == ["WaveNet", "LSTM"]  # best first
    assert t.column("ours [bpf]") == ["12.35", "13.00"]
    # the paper's WaveNet figure is for Dc=96, ours is Dc=32: the cell says so
    assert t.column("paper [bpf]") == [f'{PAPER_BPF["wavenet", "timit"]} (Dc=96)', str(PAPER_BPF["lstm", "timit"])]
    assert t.column("ours − paper") == [f"{12.3456 - 10.88:+.2f}", f"{13.0 - 11.11:+.2f}"]
    assert t.column("training") == ["1,500 steps, 60 min", "900 steps, 10 min"]
    # the estimator and budget every row shares move into the caption, as do dataset, split and size
    assert "estimator" not in t.columns and "budget" not in t.columns
    assert "TIMIT test split (40 utterances)" in t.caption and "CPU budget" in t.caption
    assert "exact" in t.caption and t.caption.startswith("WaveNet against the LSTM.")


def test_records_table_marks_bounds_and_keeps_columns_that_differ():
    records = [rec(), rec(model="vrnn", config={"s": 64, "Dz": 256}, bpf_weighted=14.46, is_bound=True,
                          estimator="importance-weighted bound, K=10", budget="gpu",
                          hardware={"gpu": "NVIDIA H200", "gpu_count": 1})]
    t = records_table(records)
    assert t.column("ours [bpf]") == ["12.35", "<= 14.46"] and t.column("paper [bpf]")[1] == "<= 12.54"
    assert t.column("estimator") == ["exact", "IW bound K=10"] and t.column("budget") == ["CPU budget", "GPU"]
    assert "<= marks an upper bound" in t.caption


def test_records_table_never_mixes_units_datasets_or_splits_in_one_table():
    eight_bit = rec(model="sashimi", config={"bits": 8}, bpf_weighted=7.4)
    for mixed, what in (([rec(), eight_bit], "unit"), ([rec(), rec(dataset="librispeech")], "dataset"),
                        ([rec(), rec(split="valid")], "split")):
        tables = records_table(mixed)
        assert isinstance(tables, Tables) and len(tables) == 2, what
        assert [len(t.rows) for t in tables] == [1, 1], what
        assert len({(t.caption, tuple(t.columns)) for t in tables}) == 2, what  # each says what it holds
    with pytest.raises(ValueError, match="at least one"):
        records_table([])
    t = records_table([eight_bit])
    assert t.columns[:2] == ["model", "ours [bits per 8-bit sample]"]  # no 16-bit paper figure beside it
    groups = group_records([eight_bit, rec(dataset="librispeech"), rec()])
    assert list(groups) == [("timit", "test", "bpf"), ("timit", "test", "bits per 8-bit sample"),
                            ("librispeech", "test", "bpf")]


def test_provenance_is_folded_into_details():
    t = records_table([rec(train_split="train", curve_split="valid")], provenance=True)
    cell = t.column("provenance")[0]
    assert isinstance(cell, Html) and cell.html.startswith("<details><summary>cdcdcdc</summary>")
    assert "runs/x" in cell.html and "2 CPU cores (Test CPU)" in cell.html and "valid" in cell.html
    assert "<details>" not in t.markdown() and "commit: cdcdcdcdcd" in t.markdown()
