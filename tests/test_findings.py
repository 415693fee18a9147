"""Tests of the book's findings (wavelab.findings): verdicts follow the records, never a fixed text."""

from __future__ import annotations

import pytest

from wavelab import findings
from wavelab.findings import MARGINAL_MARGIN, REPRODUCED_WITHIN, Finding, chapter_finding, summary
from wavelab.results import PAPER_BPF, ResultRecord


def rec(model, bpf, config=None, estimator="exact", **kw) -> ResultRecord:
    base = dict(model=model, config=config or {}, dataset="timit", split="test", bpf_weighted=bpf, bpf_mean=bpf,
                is_bound=estimator != "exact", steps=100, wall_time_s=600.0, hardware={"cpu": "X", "cores": 2},
                utterances=40, estimator=estimator)
    base.update(kw)
    return ResultRecord(**base)


BASELINES = [rec("uniform", 16.0), rec("dmol", 15.63), rec("flac", 7.42)]


def test_wavenet_verdict_follows_the_distance_to_the_paper():
    paper = PAPER_BPF["wavenet", "timit"].bpf
    near = chapter_finding("wavenet", BASELINES + [rec("wavenet", paper + REPRODUCED_WITHIN / 2, {"Dc": 96})])
    far = chapter_finding("wavenet", BASELINES + [rec("wavenet", paper + 2.0, {"Dc": 96})])
    assert near.verdict == "reproduced" and far.verdict == "not reproduced at this budget"
    assert f"{paper + 2.0:.2f} bpf, +2.00 from the paper's" in far.answer


def test_a_model_at_the_marginal_level_is_not_said_to_have_learned():
    dmol = 15.63
    flat = rec("sashimi", dmol - MARGINAL_MARGIN / 2, {"bits": 16})
    learned = rec("sashimi", dmol - 3 * MARGINAL_MARGIN, {"bits": 16})
    assert "has not got beyond the marginal" in chapter_finding("sashimi", BASELINES + [flat]).answer
    text = chapter_finding("sashimi", BASELINES + [learned]).answer
    assert "marginal" not in text and "below the context-free fitted DMoL" in text


def test_the_papers_ordering_claim_is_tested_on_the_records():
    def cw(bpfs):
        return [rec("cwvae", b, {"s1": 64, "L": L}, "ELBO, 1 sample") for L, b in zip((1, 2, 3), bpfs)]

    holds = chapter_finding("cwvae", BASELINES + cw([13.0, 12.5, 12.4]))
    fails = chapter_finding("cwvae", BASELINES + cw([15.6, 15.0, 15.7]))
    assert holds.claim_holds is True and "holds in our records" in holds.claim_text
    assert fails.claim_holds is False and "does not hold" in fails.claim_text
    assert "L = 1 and 3 are at the level of the context-free fitted DMoL" in fails.answer


def test_missing_records_say_so_and_unknown_chapters_raise():
    f = chapter_finding("recurrent", BASELINES)
    assert f.verdict == "no record" and "No record" in f.answer
    with pytest.raises(KeyError, match="the chapters are"):
        chapter_finding("wavegrad", BASELINES)
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("wavenet", "WaveNet", "q", "a", "almost")


def test_only_whole_test_split_records_count():
    partial = rec("wavenet", 9.0, {"Dc": 96}, utterances=4)  # evaluate --limit 4: not the whole split
    valid = rec("wavenet", 9.0, {"Dc": 96}, split="valid", utterances=20)
    f = chapter_finding("wavenet", BASELINES + [partial, valid, rec("wavenet", 13.0, {"Dc": 96})])
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
