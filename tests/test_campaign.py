"""Tests of the run recipes (recipes/*.toml), wavelab.campaign.recipes and ``python -m wavelab campaign``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from wavelab.__main__ import main
from wavelab.models import REGISTRY, config_for
from wavelab.campaign.recipes import (NOT_TRAIN_KEYS, QUICK_LIMIT, QUICK_TRAIN, TRAIN_KEYS, RecipeError, TrainSettings,
                             load_recipe, load_recipes, plan_recipe, run_recipe)
from wavelab.report.records import read_record
from wavelab.runs import read_metrics
from wavelab.train import TrainConfig, train

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "recipes").glob("*.toml"))
RESULTS = REPO / "results"
# the equal-budget campaign: recipes/equal/NAME.toml write their records into results/equal/
EQUAL_RECIPES = sorted((REPO / "recipes" / "equal").glob("*.toml"))
EQUAL_RESULTS = RESULTS / "equal"
# issue 12's compression campaign: the longest budget of the best pcm16 model (recipes/compression/ into
# results/compression/)
COMPRESSION_RECIPES = sorted((REPO / "recipes" / "compression").glob("*.toml"))
COMPRESSION_RESULTS = RESULTS / "compression"
# issue 21's hour campaign: equal-budget runs for 60 CPU-minutes (recipes/hour/ into results/hour/)
HOUR_RECIPES = sorted((REPO / "recipes" / "hour").glob("*.toml"))
HOUR_RESULTS = RESULTS / "hour"
# issue 21's seed-to-seed spread: one equal-budget recipe with two seeds (recipes/seeds/ into results/seeds/)
SEED_RECIPES = sorted((REPO / "recipes" / "seeds").glob("*.toml"))
SEED_RESULTS = RESULTS / "seeds"
CAMPAIGNS = [(RECIPES, RESULTS), (EQUAL_RECIPES, EQUAL_RESULTS), (COMPRESSION_RECIPES, COMPRESSION_RESULTS),
             (HOUR_RECIPES, HOUR_RESULTS), (SEED_RECIPES, SEED_RESULTS)]


def _as_json(x):
    return json.loads(json.dumps(x))


# --------------------------------------------------------------------------------------------------------------------
# the committed recipes


@pytest.mark.parametrize("recipes,results", CAMPAIGNS[:3], ids=["cpu-budget", "equal", "compression"])
def test_there_is_a_recipe_per_recorded_run(recipes, results):
    """Every record of a trained run in results/ (results/equal/) is written by exactly one recipe of recipes/
    (recipes/equal/), named after the run it came from (the records' run_dir is results/runs/NAME), and every recipe's
    records exist."""
    writers: dict[str, list[str]] = {}
    for r in load_recipes(recipes):
        for e in r.evaluations:
            writers.setdefault(e.record, []).append(r.name)
    run_records = {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}
    run_records = {k: v for k, v in run_records.items() if v.get("run_dir")}
    assert run_records, "no recorded runs in results/"
    assert set(writers) == set(run_records)
    for record, d in run_records.items():
        assert writers[record] == [Path(d["run_dir"]).name]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads_and_names_a_registered_model(path):
    r = load_recipe(path)
    assert r.name == path.stem and r.path == path
    assert r.model in REGISTRY and r.dataset == "timit" and r.representation == "mulaw" and r.budget == "cpu-budget"
    assert r.train.threads == 1 and r.train.seed == 0 and r.train.checkpoint_minutes in (2.0, 5.0)
    assert r.evaluations and r.train.max_minutes is not None
    # the quick dry run of every recipe builds a valid config
    config_for(r.model, **r.overrides(quick=True))
    quick = r.train_config("runs", quick=True)
    quick.validate()
    assert quick.max_steps == QUICK_TRAIN["max_steps"] and quick.max_minutes is None
    for k, v in REGISTRY[r.model][0].quick_overrides().items():
        assert quick.model_overrides[k] == v


@pytest.mark.parametrize("path", EQUAL_RECIPES, ids=lambda p: p.stem)
def test_equal_budget_recipes_share_one_budget(path):
    """Every run of the equal-budget campaign gets the same budget: 4 CPU-minutes of one thread with validation
    taken out, a validation curve every 0.5 CPU-minute on the same 2 utterances, seed 0; it trains a 16-bit model
    on the training split of the TIMIT or LibriSpeech sample."""
    r = load_recipe(path)
    assert r.name == path.stem and r.name.startswith("eq-") and r.budget == "cpu-equal"
    t = r.train
    assert (t.max_minutes, t.clock, t.max_steps, t.threads, t.seed) == (4.0, "cpu", None, 1, 0)
    assert (t.eval_every_minutes, t.eval_subset, t.eval_every) == (0.5, 2, None)
    assert r.dataset == ("librispeech" if r.name.endswith("-librispeech") else "timit")
    assert config_for(r.model, **r.model_overrides).bits == 16


@pytest.mark.parametrize("path", COMPRESSION_RECIPES, ids=lambda p: p.stem)
def test_compression_recipes_extend_an_equal_budget_run(path):
    """A run of the compression campaign is an equal-budget pcm16 recipe of recipes/equal/ with a longer CPU budget
    (and a sparser curve): every other setting is the same, so the equal run is its first 4 minutes.  A run on the
    joined corpus is such a longer run with only the data (and its validation curve) changed; its hybrid
    (``-nlms-joined``) adds only the adaptive residual, and a longer hybrid (``-nlms-joined-150m``) only minutes."""
    r = load_recipe(path)
    if r.dataset == "timit+librispeech":
        assert {e.dataset for e in r.evaluations} == {"timit", "librispeech"}
        stem, _, minutes = r.name.partition("-joined-")
        if minutes:
            twin = load_recipe(path.with_name(f"{stem}-joined.toml"))
            assert r.train.max_minutes == int(minutes.removesuffix("m")) > twin.train.max_minutes
            _assert_same_run(r, twin, r.model_overrides, {"max_minutes"})
        elif r.model_overrides.get("adaptive_residual"):
            twin = load_recipe(path.with_name(f"{stem.removesuffix('-nlms-joined')}-joined.toml"))
            _assert_same_run(r, twin, {**twin.model_overrides, "adaptive_residual": True}, set())
        else:
            # the TIMIT sample's longest run (NAME-long) on the joined corpus, with the curve on both corpora
            twin = load_recipe(path.with_name(f"{r.name.removesuffix('-joined')}-long.toml"))
            _assert_same_run(r, twin, twin.model_overrides, {"eval_every_minutes", "eval_subset"})
        return
    twin = load_recipe(REPO / "recipes" / "equal" / f"eq-{r.name.removesuffix('-long')}.toml")
    assert r.representation == twin.representation == "pcm16" and r.budget == "cpu-budget"
    assert (r.model, r.dataset, r.model_overrides) == (twin.model, twin.dataset, twin.model_overrides)
    ours, theirs = dataclasses.asdict(r.train), dataclasses.asdict(twin.train)
    assert r.train.max_minutes > twin.train.max_minutes and r.train.clock == "cpu"
    differ = {k for k in ours if ours[k] != theirs[k]}
    assert differ <= {"max_minutes", "eval_every_minutes"}


def _assert_same_run(r, twin, overrides: dict, may_differ: set[str]) -> None:
    """``r`` is ``twin`` with the model overrides ``overrides`` and only the training fields ``may_differ`` changed."""
    assert (r.model, r.representation, r.budget, r.model_overrides) == (
        twin.model, twin.representation, twin.budget, overrides)
    ours, theirs = dataclasses.asdict(r.train), dataclasses.asdict(twin.train)
    assert {k for k in ours if ours[k] != theirs[k]} <= may_differ


def test_hour_campaign_records_come_from_its_recipes():
    """The hour campaign is resumed across sittings, so not every recipe has its records yet; every record there is
    has exactly one recipe, and that recipe's run is the one the record names."""
    writers = {e.record: r.name for r in load_recipes(HOUR_RECIPES) for e in r.evaluations}
    assert len(writers) == sum(len(r.evaluations) for r in load_recipes(HOUR_RECIPES))
    for path in sorted(HOUR_RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        assert path.stem in writers, f"{path}: no recipe of recipes/hour/ writes it"
        assert Path(record["run_dir"]).name == writers[path.stem]


@pytest.mark.parametrize("path", HOUR_RECIPES, ids=lambda p: p.stem)
def test_hour_recipes_extend_an_equal_budget_run(path):
    """A run of the hour campaign is an equal-budget recipe of recipes/equal/ for 60 CPU-minutes with a sparser curve:
    every other setting, and every record it writes, is the equal run's, so the two campaigns' tables pair up."""
    r = load_recipe(path)
    twin = load_recipe(REPO / "recipes" / "equal" / f"eq-{r.name.removeprefix('hr-')}.toml")
    assert r.name.startswith("hr-") and r.budget == "cpu-hour" and twin.budget == "cpu-equal"
    assert (r.model, r.dataset, r.representation, r.model_overrides) == \
        (twin.model, twin.dataset, twin.representation, twin.model_overrides)
    ours, theirs = dataclasses.asdict(r.train), dataclasses.asdict(twin.train)
    assert (r.train.max_minutes, r.train.clock, r.train.threads) == (60.0, "cpu", 1)
    assert {k for k in ours if ours[k] != theirs[k]} == {"max_minutes", "eval_every_minutes"}
    assert r.evaluations == twin.evaluations


@pytest.mark.parametrize("path", SEED_RECIPES, ids=lambda p: p.stem)
def test_seed_recipes_differ_from_their_equal_twin_in_the_seed_alone(path):
    """A run of recipes/seeds/ is an equal-budget recipe with the seed its name says and every other setting the
    same, so that two of them measure the spread of one recipe; its record's name says the seed, and at least two
    seeds of each recipe are there."""
    r = load_recipe(path)
    recipe, seed = r.name.removeprefix("sd-").rsplit("-seed", 1)
    twin = load_recipe(REPO / "recipes" / "equal" / f"eq-{recipe}.toml")
    assert r.name.startswith("sd-") and r.train.seed == int(seed) and r.budget == twin.budget == "cpu-equal"
    assert (r.model, r.dataset, r.representation, r.model_overrides) == \
        (twin.model, twin.dataset, twin.representation, twin.model_overrides)
    ours, theirs = dataclasses.asdict(r.train), dataclasses.asdict(twin.train)
    assert {k for k in ours if ours[k] != theirs[k]} <= {"seed"}
    assert [e.record for e in r.evaluations] == [f"{e.record}-seed{seed}" for e in twin.evaluations]
    assert len([p for p in SEED_RECIPES if p.stem.startswith(f"sd-{recipe}-seed")]) >= 2


RECORDED = [(path, e.record, results) for recipes, results in CAMPAIGNS for path in recipes
            for e in load_recipe(path).evaluations if (results / f"{e.record}.json").exists()]


@pytest.mark.parametrize("path,record,results", RECORDED, ids=[rec for _, rec, _ in RECORDED])
def test_recipe_settings_equal_the_recorded_train_config(path, record, results):
    """The port of the bash script is exact: the recipe's TrainConfig is the one its records say trained them (every
    field: segment_length, batch_size, lr, max_minutes, eval_every, checkpoint_minutes, seed, run_dir, ...), and
    its model config is the recorded one."""
    r = load_recipe(path)
    rec = read_record(results / f"{record}.json")
    theirs = rec.train_config
    # the runs folder is the command line's (--runs-dir: runs/, runs/hour/, ...); the run's own name is the recipe's
    ours = _as_json(dataclasses.asdict(r.train_config(str(Path(theirs["run_dir"]).parent))))
    for key in ("segment_length", "batch_size", "max_minutes", "model", "dataset"):
        assert key in theirs, f"{record} has no train_config.{key}"
    # a field added to TrainConfig after a record was made must hold its default, which is what that run used
    added = {k for k in ours if k not in theirs}
    assert added <= {"clock", "eval_every_minutes"}
    assert all(ours[k] == getattr(TrainConfig, k) for k in added)
    assert {k: v for k, v in ours.items() if k != "model_overrides" and k not in added} == \
        {k: v for k, v in theirs.items() if k != "model_overrides"}
    # model_overrides: the recorded ones, plus at most settings added since that restate what the run used
    # (waveflow-h16: dilation_h_schedule = "cycle", the default when it was recorded)
    assert theirs["model_overrides"].items() <= ours["model_overrides"].items()
    resolved = _as_json(dataclasses.asdict(config_for(r.model, **r.model_overrides)))
    assert {k: resolved.get(k) for k in rec.config} == rec.config
    evaluation = next(e for e in r.evaluations if e.record == record)
    assert rec.model == r.model and rec.budget == r.budget and rec.train_config["dataset"] == r.dataset
    assert rec.dataset == (evaluation.dataset or r.dataset)  # an evaluation may hear another corpus's test split
    iw = evaluation.iw_samples
    assert rec.estimator.startswith("importance-weighted") == (iw is not None)
    if iw is not None:
        assert rec.estimator == f"importance-weighted bound, K={iw}"


def test_train_table_holds_every_train_config_field():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert (set(TRAIN_KEYS) - {"threads"}) | set(NOT_TRAIN_KEYS) == fields
    assert not set(TRAIN_KEYS) & set(NOT_TRAIN_KEYS)
    assert {f.name for f in dataclasses.fields(TrainSettings)} == set(TRAIN_KEYS)
    # a key left out of [train] takes TrainConfig's default
    s = TrainSettings(segment_length=1, batch_size=1, seed=0)
    for k in TRAIN_KEYS.keys() - {"threads", "segment_length", "batch_size", "seed"}:
        assert getattr(s, k) == getattr(TrainConfig(), k), k


# --------------------------------------------------------------------------------------------------------------------
# bad recipes


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def _dump(d: dict) -> str:
    """A small TOML writer for recipe-shaped dicts: scalars, then tables, then arrays of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, (dict, list))
             or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in d.items():
        if isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for table in v:
                lines += [f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in table.items()]
    return "\n".join(lines) + "\n"


def _base() -> dict:
    return tomllib.loads((REPO / "recipes" / "lstm-s64.toml").read_text())


def _write(tmp_path: Path, d: dict, name: str = "lstm-s64") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(_dump(d))
    return p


def test_the_test_writer_round_trips_a_real_recipe(tmp_path):
    for path in RECIPES:
        d = tomllib.loads(path.read_text())
        assert tomllib.loads(_dump(d)) == d
    r = load_recipe(_write(tmp_path, _base()))
    assert r.train_config("runs") == load_recipe(REPO / "recipes" / "lstm-s64.toml").train_config("runs")


def _set(d, dotted, value):
    *parents, last = dotted.split(".")
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()
BAD = [  # (change, value, key named in the error, words of the problem)
    ("colour", "blue", "colour", "unknown key"),
    ("train.batchsize", 4, "train.batchsize", "unknown key"),
    ("evaluations.0.limit", 2, "evaluations[0].limit", "unknown key"),
    ("model", _DELETE, "model", "missing key"),
    ("train.segment_length", _DELETE, "train.segment_length", "missing key"),
    ("evaluations.0.record", _DELETE, "evaluations[0].record", "missing key"),
    ("train.batch_size", "4", "train.batch_size", "must be an integer"),
    ("train.seed", True, "train.seed", "must be an integer"),
    ("train.max_minutes", "8", "train.max_minutes", "must be a number"),
    ("model", 3, "model", "must be a string"),
    ("model_overrides", 64, "model_overrides", "must be a table"),
    ("model", "transformer", "model", "unknown model 'transformer'"),
    ("model_overrides.Dcc", 3, "model_overrides.Dcc", "no such setting"),
    ("dataset", "wsj", "dataset", "unknown dataset 'wsj'"),
    ("representation", "alaw", "representation", "unknown representation 'alaw'"),
    ("model_overrides.representation", "linear", "model_overrides.representation", "contradicts"),
    ("budget", "tpu", "budget", "unknown budget 'tpu'"),
    ("name", "lstm-s65", "name", "must equal the file's stem"),
    ("train.batch_size", 0, "train.batch_size", ">= 1"),
    ("train.max_minutes", _DELETE, "train", "needs a budget"),
    ("evaluations.0.record", "x/y", "evaluations[0].record", "plain file name"),
    ("evaluations.0.iw_samples", 10, "evaluations[0].iw_samples", "no importance-weighted bound"),
    ("evaluations.0.dataset", "wsj", "evaluations[0].dataset", "unknown dataset 'wsj'"),
    ("evaluations.0.dataset", "timit+librispeech", "evaluations[0].dataset", "unknown dataset"),
    ("dataset", "timit+librispeech", "evaluations[0].dataset", "name the corpus"),  # a record is of one corpus
    ("evaluations", [], "evaluations", "at least one"),
]


def test_a_recipe_trains_on_the_joined_corpus_and_records_each_corpus(tmp_path):
    d = _base()
    d["dataset"] = "timit+librispeech"
    d["evaluations"] = [{"record": "a-timit", "dataset": "timit"}, {"record": "a-libri", "dataset": "librispeech"}]
    r = load_recipe(_write(tmp_path, d))
    assert r.train_config("runs").dataset == "timit+librispeech"
    assert [e.dataset for e in r.evaluations] == ["timit", "librispeech"]


@pytest.mark.parametrize("dotted,value,key,problem", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_recipes_raise_recipe_error_naming_file_and_key(tmp_path, dotted, value, key, problem):
    d = _base()
    _set(d, dotted, value)
    path = _write(tmp_path, d)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    err = info.value
    assert isinstance(err, ValueError) and err.key == key and err.path == path
    assert str(err).startswith(f"{path}: {key}: ") and problem in str(err) and "\n" not in str(err)


def test_unreadable_recipes(tmp_path):
    with pytest.raises(RecipeError, match="no such recipe file") as info:
        load_recipe(tmp_path / "missing.toml")
    assert str(tmp_path / "missing.toml") in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(RecipeError, match="not valid TOML") as info:
        load_recipe(bad)
    assert str(bad) in str(info.value)


def test_recipes_of_one_campaign_must_not_clash(tmp_path):
    path = REPO / "recipes" / "lstm-s64.toml"
    with pytest.raises(RecipeError, match="also the name of") as info:
        load_recipes([path, path])
    assert info.value.key == "name"
    d = _base()
    d["name"] = "lstm-other"
    other = _write(tmp_path, d, name="lstm-other")  # writes the same record as lstm-s64
    with pytest.raises(RecipeError, match="also written by") as info:
        load_recipes([path, other])
    assert info.value.key == "evaluations[0].record" and info.value.path == other


# --------------------------------------------------------------------------------------------------------------------
# running recipes (quick mode, on the TIMIT sample)


def test_quick_campaign_writes_records_with_provenance_and_does_not_retrain(timit_root, tmp_path):
    recipe = load_recipe(REPO / "recipes" / "vrnn-s64.toml")
    runs, results = tmp_path / "runs", tmp_path / "results"
    lines: list[str] = []
    out = run_recipe(recipe, runs_dir=runs, results_dir=results, quick=True, device="cpu", log=lines.append)
    assert out.trained and out.steps == QUICK_TRAIN["max_steps"] and out.stopped_by == "max_steps"
    assert out.records == [results / "vrnn-timit-s64.json", results / "vrnn-timit-s64-iw.json"]
    assert any("wrote" in line and "vrnn-timit-s64-iw.json" in line for line in lines)
    export = results / "runs" / "vrnn-s64"
    assert (export / "checkpoint.pt").exists() and (runs / "vrnn-s64" / "checkpoint.pt").exists()
    assert "optimizer" not in torch.load(export / "checkpoint.pt", map_location="cpu", weights_only=True)

    elbo, iw = (read_record(p) for p in out.records)
    for rec in (elbo, iw):
        assert "recipes/vrnn-s64.toml" in rec.notes and "quick" in rec.notes
        assert rec.model == "vrnn" and rec.dataset == "timit" and rec.split == "test" and rec.budget == "cpu-budget"
        assert rec.utterances == QUICK_LIMIT and rec.steps == QUICK_TRAIN["max_steps"] and rec.eval_seed == 0
        assert rec.run_dir == str(export) and rec.train_split == "train" and rec.is_bound
        assert rec.train_config["model_overrides"]["s"] == 64  # the recipe's stack size survives quick mode
        assert rec.train_config["segment_length"] == QUICK_TRAIN["segment_length"]
        assert rec.config["Dd"] == REGISTRY["vrnn"][0].quick_overrides()["Dd"]
    assert elbo.estimator == "ELBO, 1 sample" and iw.estimator == "importance-weighted bound, K=10"
    assert [elbo.bpf_weighted, iw.bpf_weighted] == out.bpf

    # a second call finds the run finished: no step, no new line in the log, the same (seeded) figures
    metrics = (runs / "vrnn-s64" / "metrics.jsonl").read_bytes()
    again = run_recipe(recipe, runs_dir=runs, results_dir=results, quick=True, device="cpu")
    assert not again.trained and again.steps == out.steps and again.stopped_by is None
    assert (runs / "vrnn-s64" / "metrics.jsonl").read_bytes() == metrics
    ckpt = torch.load(runs / "vrnn-s64" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == QUICK_TRAIN["max_steps"]
    assert again.bpf == out.bpf and read_record(out.records[0]).steps == out.steps


def test_an_evaluation_on_another_corpus_added_later_is_evaluated_without_training(timit_root, librispeech_root,
                                                                                    tmp_path, capsys):
    """An evaluation may read another corpus's test split (the record names it; its train_config the training
    corpus), and ``campaign --evaluate-missing`` evaluates the export for the records that are missing only: no
    training, no export, the existing records untouched."""
    d = _base()
    recipe_path = _write(tmp_path, d)
    runs, results = tmp_path / "runs", tmp_path / "results"
    argv = ["campaign", str(recipe_path), "--quick", "--device", "cpu", "--runs-dir", str(runs), "--results-dir",
            str(results), "--no-progress"]
    code = main(argv + ["--evaluate-missing"])
    err = capsys.readouterr().err
    assert code == 2 and "no readable export" in err and not results.exists()  # nothing to evaluate yet
    assert main(argv) == 0
    timit = results / "lstm-timit-s64.json"
    before = timit.read_bytes()
    metrics = (runs / "lstm-s64" / "metrics.jsonl").read_bytes()
    export = (results / "runs" / "lstm-s64" / "checkpoint.pt").read_bytes()

    d["evaluations"].append({"record": "lstm-librispeech-s64", "dataset": "librispeech"})
    recipe_path = _write(tmp_path, d)
    capsys.readouterr()
    assert main(argv + ["--evaluate-missing"]) == 0
    out = capsys.readouterr().out
    assert "no training" in out and "lstm-timit-s64.json exists; kept" in out
    libri = read_record(results / "lstm-librispeech-s64.json")
    assert libri.dataset == "librispeech" and libri.split == "test" and libri.train_config["dataset"] == "timit"
    assert libri.utterances == QUICK_LIMIT and "trained on timit, evaluated on librispeech" in libri.notes
    assert timit.read_bytes() == before and (runs / "lstm-s64" / "metrics.jsonl").read_bytes() == metrics
    assert (results / "runs" / "lstm-s64" / "checkpoint.pt").read_bytes() == export
    # the LibriSpeech figure is the export's own on that split
    from wavelab.data import load_split
    from wavelab.evaluate import evaluate
    from wavelab.train import load_run

    model, _, _ = load_run(results / "runs" / "lstm-s64")
    ev = evaluate(model, load_split("librispeech", "test")[:QUICK_LIMIT], seed=0)
    assert libri.bpf_weighted == ev.bpf.weighted


def test_a_killed_run_resumes_from_its_checkpoint(timit_root, tmp_path):
    recipe = load_recipe(REPO / "recipes" / "lstm-s64.toml")
    runs, results = tmp_path / "runs", tmp_path / "results"
    cfg = recipe.train_config(runs, quick=True, device="cpu")
    train(dataclasses.replace(cfg, max_steps=2))  # a run cut after its checkpoint at step 2
    plan = plan_recipe(recipe, runs, results, quick=True, device="cpu")
    assert plan.checkpoint_step == 2 and not plan.finished and "resumes from step 2" in plan.describe()
    out = run_recipe(recipe, runs_dir=runs, results_dir=results, quick=True, device="cpu")
    assert out.trained and out.steps == QUICK_TRAIN["max_steps"]
    events = [e for e in read_metrics(runs / "lstm-s64", kind="event") if e["event"] in ("start", "resume")]
    assert [(e["event"], e["step"]) for e in events] == [("start", 0), ("resume", 2)]
    assert [r["step"] for r in read_metrics(runs / "lstm-s64")] == [2, 4]
    assert read_record(results / "lstm-timit-s64.json").steps == 4


def test_quick_mode_does_not_replace_another_runs_outputs(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "lstm-s64.toml")
    runs, results = tmp_path / "runs", tmp_path / "results"
    results.mkdir()
    committed = (RESULTS / "lstm-timit-s64.json").read_text()
    (results / "lstm-timit-s64.json").write_text(committed)  # the full run's record
    with pytest.raises(ValueError, match="is a record of a different run") as info:
        run_recipe(recipe, runs_dir=runs, results_dir=results, quick=True, device="cpu")
    assert str(results / "lstm-timit-s64.json") in str(info.value)
    assert (results / "lstm-timit-s64.json").read_text() == committed and not runs.exists()
    # a run directory holding another run's checkpoint is refused too, before anything is written
    with pytest.raises(ValueError, match="holds a checkpoint of a different run"):
        plan_recipe(recipe, runs_dir=RESULTS / "runs", results_dir=tmp_path / "elsewhere", quick=True)


# --------------------------------------------------------------------------------------------------------------------
# the command line


def test_cli_rejects_a_bad_recipe_before_training(tmp_path, capsys):
    d = _base()
    d["train"]["batch_size"] = "four"
    bad = _write(tmp_path, d, name="lstm-s64")
    good = REPO / "recipes" / "vrnn-s64.toml"
    runs = tmp_path / "runs"
    code = main(["campaign", str(good), str(bad), "--quick", "--runs-dir", str(runs),
                 "--results-dir", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {bad}: train.batch_size: must be an integer")
    assert not runs.exists()  # the good recipe before it did not start


def test_cli_exit_status_without_traceback(tmp_path):
    d = _base()
    d["model"] = "transformer"
    bad = _write(tmp_path, d)
    r = subprocess.run([sys.executable, "-m", "wavelab", "campaign", str(bad), "--runs-dir", str(tmp_path / "runs")],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert f"{bad}: model: unknown model 'transformer'" in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").exists(), reason="the wrapper runs .venv/bin/python")
def test_wrapper_script_maps_names_to_recipes():
    r = subprocess.run(["bash", str(REPO / "scripts" / "cpu_budget_runs.sh"), "no-such-run"], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "recipes/no-such-run.toml: no such recipe file" in r.stderr
