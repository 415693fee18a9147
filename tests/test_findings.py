"""Tests of the book's findings (wavelab.report.findings): verdicts follow the records, never a fixed text."""

from __future__ import annotations

import pytest

from wavelab.report import findings
from wavelab.report.findings import MARGINAL_MARGIN, REPRODUCED_WITHIN, Finding, chapter_finding, summary
from wavelab.report.papers import PAPER_BPF
from wavelab.report.records import ResultRecord


def rec(model, bpf, config=None, estimator="exact", **kw) -> ResultRecord:
    base = dict(model=model, config=config or {}, dataset="timit", split="test", bpf_weighted=bpf, bpf_mean=bpf,
                is_bound=estimator != "exact", steps=100, wall_time_s=600.0, hardware={"cpu": "X", "cores": 2},
                utterances=40, estimator=estimator)
    base.update(kw)
    return ResultRecord(**base)


BASELINES = [rec("uniform", 16.0), rec("dmol", 15.63), rec("flac", 7.42)]


def test_wavenet_verdict_follows_the_distance_to_the_paper():
    paper = PAPER_BPF["wavenet", "timit"].bpf
    near = chapter_finding("book/wavenet", BASELINES + [rec("wavenet", paper + REPRODUCED_WITHIN / 2, {"Dc": 96})])
    far = chapter_finding("book/wavenet", BASELINES + [rec("wavenet", paper + 2.0, {"Dc": 96})])
    assert near.verdict == "reproduced" and far.verdict == "not reproduced at this budget"
    assert f"{paper + 2.0:.2f} bpf, +2.00 from the paper's" in far.answer


def test_a_model_at_the_marginal_level_is_not_said_to_have_learned():
    dmol = 15.63
    flat = rec("sashimi", dmol - MARGINAL_MARGIN / 2, {"bits": 16})
    learned = rec("sashimi", dmol - 3 * MARGINAL_MARGIN, {"bits": 16})
    assert "has not got beyond the marginal" in chapter_finding("book/sashimi", BASELINES + [flat]).answer
    text = chapter_finding("book/sashimi", BASELINES + [learned]).answer
    assert "marginal" not in text and "below the context-free fitted DMoL" in text


def test_the_papers_ordering_claim_is_tested_on_the_records():
    def cw(bpfs):
        return [rec("cwvae", b, {"s1": 64, "L": L}, "ELBO, 1 sample") for L, b in zip((1, 2, 3), bpfs)]

    holds = chapter_finding("book/cwvae", BASELINES + cw([13.0, 12.5, 12.4]))
    fails = chapter_finding("book/cwvae", BASELINES + cw([15.6, 15.0, 15.7]))
    assert holds.claim_holds is True and "holds in our records" in holds.claim_text
    assert fails.claim_holds is False and "does not hold" in fails.claim_text
    assert "L = 1 and 3 are at the level of the context-free fitted DMoL" in fails.answer


def test_missing_records_say_so_and_unknown_chapters_raise():
    f = chapter_finding("book/recurrent", BASELINES)
    assert f.verdict == "no record" and "No record" in f.answer
    with pytest.raises(KeyError, match="the chapters are"):
        chapter_finding("book/wavegrad", BASELINES)
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("wavenet", "WaveNet", "q", "a", "almost")


def test_only_whole_test_split_records_count():
    partial = rec("wavenet", 9.0, {"Dc": 96}, utterances=4, split_utterances=40)  # evaluate --limit 4
    valid = rec("wavenet", 9.0, {"Dc": 96}, split="valid", utterances=20, split_utterances=20)
    whole = rec("wavenet", 13.0, {"Dc": 96}, utterances=40, split_utterances=40)
    f = chapter_finding("book/wavenet", BASELINES + [partial, valid, whole])
    assert [r.bpf_weighted for r in f.records] == [13.0]


def test_summary_of_the_committed_records_covers_every_chapter_and_quotes_them():
    s = summary()
    assert [f.chapter for f in s] == list(findings.TITLES)
    for f in s:
        assert f.verdict in findings.VERDICTS
        for r in f.records:  # every record a finding rests on is quoted in its answer
            assert f"{r.bpf_weighted:.2f}" in f.answer, (f.chapter, r.label)
    page = s._repr_html_()
    assert page.count("<li>") == len(findings.TITLES) and "wavelab-finding" in page


def test_latents_finding_reads_the_record_the_study_names_and_both_protocols():
    def feats(fold, all_):
        return {f: {"accuracy": {s: {1: fold[f]} for s in ("loo", "loso")},
                    "accuracy_lda_all": {s: {1: all_[f]} for s in ("loo", "loso")}} for f in fold}

    fold = {"z1": 0.2, "z2": 0.1, "mel": 0.3}
    leaky = {"z1": 0.9, "z2": 0.8, "mel": 0.7}  # the "all" protocol reverses the order
    cw = {"s1": 64, "L": 2}
    old = rec("cwvae", 14.0, cw, "ELBO, 1 sample", created="2026-01-01T00:00:00Z")
    new = rec("cwvae", 14.5, cw, "ELBO, 1 sample", created="2026-02-01T00:00:00Z")
    study = {"tasks": {"phone": {"features": feats(fold, leaky)}, "gender": {"features": feats(fold, leaky)}},
             "provenance": {"record": {"label": new.label, "created": new.created}}}
    f = chapter_finding("book/latents", BASELINES + [old, new], study=study)
    assert f.records == [new]  # the study's record, although the other one has the lower bound
    assert f.claim_holds is False and f.verdict == "not reproduced at this budget"
    assert "phones z1 90%, z2 80%, mel 70%" in f.answer and "ordering holds there." in f.answer
    gone = dict(study, provenance={"record": {"label": new.label, "created": "elsewhen"}})
    assert chapter_finding("book/latents", BASELINES + [old, new], study=gone).verdict == "no record"


def test_the_equal_budget_finding_tests_table_1s_ordering_on_equal_records(tmp_path):
    """"standing" reads only equal-budget records: the claim (at s = 64 every latent model beats the LSTM) holds or
    fails with their figures, and the CPU-budget records of the chapters are ignored."""
    def equal(model, bpf, config, estimator="exact"):
        return rec(model, bpf, config, estimator, budget="cpu-equal")

    elbo = "ELBO, 1 sample"
    latents = [equal("vrnn", 14.8, {"s": 64}, elbo), equal("srnn", 14.9, {"s": 64}, elbo),
               equal("cwvae", 15.0, {"s1": 64, "L": 2}, elbo)]
    holds = chapter_finding("book/standing", latents + [equal("lstm", 15.2, {"s": 64})], results_dir=tmp_path)
    fails = chapter_finding("book/standing", latents + [equal("lstm", 14.95, {"s": 64})], results_dir=tmp_path)
    assert holds.claim_holds is True and fails.claim_holds is False
    assert "LSTM reaches 15.20" in holds.answer and "14.80 to 15.00" in holds.answer
    assert "VRNN s=64" in holds.answer  # the best run
    # a CPU-budget LSTM far below is not part of the equal-budget comparison
    mixed = chapter_finding("book/standing", latents + [equal("lstm", 15.2, {"s": 64}), rec("lstm", 10.0, {"s": 64})],
                            results_dir=tmp_path)
    assert mixed.claim_holds is True
    assert chapter_finding("book/standing", BASELINES, results_dir=tmp_path).verdict == "no record"


def test_the_compression_finding_compares_the_best_pcm16_model_with_flac_on_the_samples():
    """"compression": the best pcm16 record against the pcm16 FLAC baseline (never the mu-law table's), with the
    representation's worth read from twin runs (NAME and NAME-pcm16) of one recipe."""
    def run(model, bpf, name, representation, config=None):
        return rec(model, bpf, config or {}, representation=representation, run_dir=f"results/equal/runs/{name}",
                   train_config={"max_minutes": 4.0}, budget="cpu-equal")

    flac = rec("flac", 7.42, representation="pcm16")
    twins = [run("lstm", 14.7, "eq-lstm-s1", "mulaw"), run("lstm", 8.7, "eq-lstm-s1-pcm16", "pcm16"),
             run("wavenet", 13.8, "eq-wavenet", "mulaw"), run("wavenet", 8.5, "eq-wavenet-pcm16", "pcm16")]
    f = chapter_finding("book/compression", twins + [flac, rec("flac", 9.9)])  # a mu-law FLAC record is not the reference
    assert f.claim_holds is False and "8.50 bpf against 7.42" in f.answer and "5.3 to 6.0 bpf" in f.answer
    assert f.verdict == "not reproduced at this budget"
    better = chapter_finding("book/compression", twins + [flac, run("wavenet", 7.27, "x-pcm16", "pcm16", {"lpc_order": 16})])
    assert better.claim_holds is True and "order-16 linear predictor" in better.answer
    assert better.verdict == "reproduced"  # within 0.05 bpf of the thesis's 7.246


def test_the_compression_finding_names_each_test_set_and_states_the_claim_only_where_it_holds():
    """Each test set measured (the TIMIT and LibriSpeech samples) gets its own best pcm16 model and its own FLAC
    figure; a model below FLAC on TIMIT and above it on LibriSpeech is said to beat FLAC on TIMIT only."""
    def run(bpf, dataset, trained_on="timit", name="long-pcm16"):
        return rec("wavenet", bpf, {}, representation="pcm16", run_dir=f"results/compression/runs/{name}",
                   train_config={"max_minutes": 60.0, "dataset": trained_on}, dataset=dataset,
                   utterances=40 if dataset == "timit" else 100)

    flacs = [rec("flac", 7.42, representation="pcm16"),
             rec("flac", 8.86, representation="pcm16", dataset="librispeech", utterances=100)]
    f = chapter_finding("book/compression", flacs + [run(7.31, "timit"), run(9.76, "librispeech")])
    assert "TIMIT sample's test split the best model" in f.answer and "7.31 bpf against 7.42" in f.answer
    assert "LibriSpeech sample's test split (test-other) the same model, trained on the TIMIT sample only, needs " \
           "9.76 bpf against 8.86 for FLAC's stream: above FLAC" in f.answer
    assert f.answer.endswith("beats FLAC on the TIMIT sample's test split only.")
    assert f.claim_holds is True and "on TIMIT" in f.claim
    # below FLAC on both: no "only"; a model trained on LibriSpeech is not said to be trained elsewhere
    both = chapter_finding("book/compression", flacs + [run(7.31, "timit"),
                                                    run(8.5, "librispeech", "librispeech", "libri-pcm16")])
    assert "only" not in both.answer and "8.50 bpf against 8.86" in both.answer and "trained on" not in both.answer
    # without a LibriSpeech model there is nothing to say about LibriSpeech
    alone = chapter_finding("book/compression", flacs + [run(7.31, "timit")])
    assert "LibriSpeech" not in alone.answer


def test_the_chapters_are_the_pages_of_the_table_of_contents():
    """Findings are keyed by the chapter's page as ``_toc.yml`` names it, in the book's order."""
    import yaml

    from wavelab.settings import PROJECT_ROOT

    toc = yaml.safe_load((PROJECT_ROOT / "_toc.yml").read_text())
    pages = [c["file"] for c in toc["chapters"]]
    assert list(findings.TITLES) == [p for p in pages if p in findings.TITLES]
    assert set(pages) - set(findings.TITLES) == {"book/results"}  # the table of every record has no finding
    with pytest.raises(KeyError, match="book/wavenet"):
        chapter_finding("wavenet")


def test_the_standing_finding_judges_the_claims_at_4_and_60_minutes_against_the_seed_spread(tmp_path):
    """With hour-campaign records the finding counts the orderings of wavelab.report.claims that hold at each budget,
    against the spread of the seed runs (sd-*), and Table 1's s = 64 claim is read at 60 minutes."""
    def run(model, bpf, config, name, budget, estimator="exact"):
        return rec(model, bpf, config, estimator, budget=budget, run_dir=f"results/x/runs/{name}")

    elbo = "ELBO, 1 sample"
    equal = [run("lstm", 14.55, {"s": 64}, "eq-lstm-s64", "cpu-equal"),
             run("vrnn", 14.83, {"s": 64}, "eq-vrnn-s64", "cpu-equal", elbo)]
    hour = [run("lstm", 14.10, {"s": 64}, "hr-lstm-s64", "cpu-hour"),
            run("vrnn", 13.90, {"s": 64}, "hr-vrnn-s64", "cpu-hour", elbo)]
    seeds = [run("lstm", 14.55, {"s": 64}, "sd-lstm-s64-seed0", "cpu-equal"),
             run("lstm", 14.60, {"s": 64}, "sd-lstm-s64-seed1", "cpu-equal")]
    f = chapter_finding("book/standing", equal + hour + seeds, results_dir=tmp_path)
    assert "Across 2 runs of 4 CPU-minutes" in f.answer  # the seed runs are not campaign runs
    assert "Of the 1 orderings both campaigns test, 0 hold at 4 CPU-minutes and 1 at 60" in f.answer
    assert "seed-to-seed spread of 0.05 bpf" in f.answer
    assert f.claim_holds is True and f.ours.startswith("orderings that hold: 0 of 1 at 4 CPU-min")
    # a gap within the spread does not hold
    wide = seeds[:1] + [run("lstm", 14.95, {"s": 64}, "sd-lstm-s64-seed1", "cpu-equal")]
    assert "0 hold at 4 CPU-minutes and 0 at 60" in chapter_finding("book/standing", equal + hour + wide,
                                                                    results_dir=tmp_path).answer
    # without hour records the claim is read at 4 minutes
    assert chapter_finding("book/standing", equal, results_dir=tmp_path).claim_holds is False


def test_the_findings_table_has_one_row_per_chapter_with_the_papers_figure_and_ours():
    from wavelab.report.findings import findings_table

    s = summary()
    table = findings_table(s, caption="c")
    assert table.columns == ["chapter", "question", "the paper", "ours", "verdict"]
    assert table.column("chapter") == [findings.TITLES[c] for c in findings.TITLES]
    assert table.column("verdict") == [f.verdict for f in s]
    for f, paper, ours in zip(s, table.column("the paper"), table.column("ours")):
        if f.verdict != "no record":  # every chapter with a record names both figures
            assert paper and ours, f.chapter
        for r in f.records[:1]:  # ours quotes the record the answer starts from
            assert f"{r.bpf_weighted:.2f}" in ours or f.chapter in ("book/latents", "book/standing"), f.chapter
