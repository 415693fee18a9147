"""What the book found: each chapter's measured answer, written from the results records so that it stays true when
the records change.

:func:`chapter_finding` returns a :class:`Finding` for one chapter: the question the chapter asks, an answer that
quotes our figures, the budget they were measured at and how far they are from the paper's, whether the paper's
qualitative claim (an ordering of models) holds in our records, and a verdict from a fixed vocabulary:

- ``"reproduced"``: our figure is within :data:`REPRODUCED_WITHIN` bpf of the paper's (the papers print two decimals);
- ``"not reproduced at this budget"``: it is further away, and the budget (steps, wall time, hardware) says why one
  should not read it as a failure of the method;
- ``"no record"``: the records the chapter needs are missing.

The first page of the book shows :func:`summary` (all chapters); each chapter shows its own finding in its closing
section and asserts it against the numbers it computed.  Figures are read from the whole test split only
(:func:`wavelab.report.records.select`), and a model within :data:`MARGINAL_MARGIN` bpf of the context-free fitted DMoL
(or above it) is said not to have got beyond the marginal distribution of a sample.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..data.splits import JOINED_CORPORA
from ..models import (CWVAEConfig, LSTMConfig, SaShiMiConfig, SRNNConfig, VRNNConfig, WaveFlowConfig, WaveGlowConfig,
                      WaveNetConfig, registry_name)
from .papers import PAPER_BPF, THESIS_LINEAR_BPF
from .records import ResultRecord, load_records, select
from .claims import CLAIMS, by_run, judge, seed_spread
from .studies import load_study
from .tables import (DATASET_NAMES, Table, bpf_text, configuration, hardware_text, paper_text, record_name,
                     training_text)

REPRODUCED_WITHIN = 0.05   # bpf: the papers print two decimals; closer than this is a reproduction
MARGINAL_MARGIN = 0.10     # bpf: a model this close to the fitted DMoL has not learned context
VERDICTS = ("reproduced", "not reproduced at this budget", "no record")
#: the models the papers' claims name, by their config classes (their registry names are the registry's)
WAVENET, LSTM, VRNN, SRNN, CWVAE, WAVEFLOW, WAVEGLOW, SASHIMI = (registry_name(c) for c in (
    WaveNetConfig, LSTMConfig, VRNNConfig, SRNNConfig, CWVAEConfig, WaveFlowConfig, WaveGlowConfig, SaShiMiConfig))
#: runs whose name starts with this train the CW-VAE of the latent study (recipes/latents-*.toml), for longer than the
#: CW-VAE chapter's runs, so that chapter leaves them out of its comparison of L = 1, 2, 3
LATENT_STUDY_RUN_PREFIX = "latents-"

TITLES = {
    "book/data_and_likelihood": "Data, mu-law and the likelihood",
    "book/wavenet": "WaveNet",
    "book/recurrent": "LSTM, VRNN and SRNN",
    "book/cwvae": "The Clockwork VAE",
    "book/latents": "What the latents know",
    "book/waveflow": "WaveFlow",
    "book/sashimi": "SaShiMi",
    "book/standing": "Where each model stands",
    "book/compression": "Likelihood is compression",
}


@dataclass
class Finding:
    """One chapter's measured answer.

    Attributes:
        chapter: the chapter's page as ``_toc.yml`` names it (``"book/wavenet"``, ...; keys of :data:`TITLES`).
        title: the chapter's title.
        question: what the chapter asks, in one sentence.
        answer: our figures and what they mean, in a few sentences (numbers in bpf from the records).
        verdict: one of :data:`VERDICTS`.
        claim: the paper's qualitative claim the chapter tests, in words (``""`` when there is none).
        claim_holds: whether that claim holds in our records (``None`` when there is no claim or no record).
        records: the records the answer quotes.
        paper: the paper's figure (or claim) the chapter measures against, in a few words, for the first page's table.
        ours: our figure in a few words, with its budget and CPU, for the same table.
    """

    chapter: str
    title: str
    question: str
    answer: str
    verdict: str
    claim: str = ""
    claim_holds: bool | None = None
    records: list[ResultRecord] = field(default_factory=list)
    paper: str = ""
    ours: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def claim_text(self) -> str:
        """The claim and whether it holds, e.g. ``"The paper's claim (...) does not hold in our records."``"""
        if not self.claim:
            return ""
        state = {True: "holds", False: "does not hold", None: "is untested"}[self.claim_holds]
        return f"The paper's claim ({self.claim}) {state} in our records."

    def __repr__(self) -> str:
        return f"Finding({self.chapter!r}, {self.verdict!r})"

    def markdown(self) -> str:
        """The finding as Markdown: title, verdict, question, answer and claim."""
        return (f"**{self.title}** ({self.verdict}). *{self.question}* {self.answer} {self.claim_text}").strip()

    def _repr_html_(self) -> str:
        esc = html.escape
        return (f'<div class="wavelab-finding"><p><strong>{esc(self.title)}</strong> '
                f"<em>({esc(self.verdict)})</em>. <em>{esc(self.question)}</em> {esc(self.answer)} "
                f"{esc(self.claim_text)}</p></div>")

    def __str__(self) -> str:
        return self.markdown()


class Summary(list):
    """The findings of every chapter, shown as a list (HTML in a notebook, Markdown by ``str()``)."""

    def __repr__(self) -> str:
        return f"Summary({len(self)} findings)"

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{f._repr_html_()}</li>" for f in self)
        return f'<ul class="wavelab-findings">{items}</ul>'

    def __str__(self) -> str:
        return "\n".join(f"- {f.markdown()}" for f in self)


# --------------------------------------------------------------------------------------------------------------------
# helpers


def _budget(r: ResultRecord) -> str:
    """``"3,839 steps, 50 min on 2 CPU cores (AMD EPYC), CPU budget"``."""
    where = hardware_text(r)
    return f"{training_text(r)}{' on ' + where if where else ''}"


def _cpu(r: ResultRecord) -> str:
    """The training CPU or GPU in two words: ``"Intel Xeon"``, ``"AMD EPYC"``."""
    hw = r.hardware or {}
    name = hw.get("gpu") or hw.get("cpu") or "?"
    return " ".join(w for w in name.replace("(R)", "").replace("(TM)", "").split() if w not in ("Processor", "CPU"))


def _ours(r: ResultRecord, name: str | None = None) -> str:
    """``"<= 14.46 (VRNN s=64; 14 min, AMD EPYC)"``: a record's figure in bpf with what it cost, for the first
    page."""
    took = training_text(r).split(", ")[-1] if r.steps else ""
    return (f"{bpf_text(r.bpf_weighted, r.is_bound)} ({name or record_name(r)}; "
            f"{took + ', ' if took else ''}{_cpu(r)})")


def _papers(pairs) -> str:
    """``"VRNN <= 12.54, LSTM 13.34"`` from ``(name, record)`` pairs (the paper's figure for each record's label)."""
    figs = [(name, PAPER_BPF.get((r.label, "timit"))) for name, r in pairs]
    return ", ".join(f"{name} {fig}" for name, fig in figs if fig is not None)


def _figures(pairs) -> str:
    """``"VRNN <= 14.46, LSTM 14.44"`` from ``(name, record)`` pairs (our figures)."""
    return ", ".join(f"{name} {bpf_text(r.bpf_weighted, r.is_bound)}" for name, r in pairs)


def _best(records, model, estimator: str | None = None, **config) -> ResultRecord | None:
    cands = select(records, model=model, estimator=estimator, **config)
    return min(cands, key=lambda r: r.bpf_weighted) if cands else None


def _paper(label: str, dataset: str = "timit"):
    return PAPER_BPF[(label, dataset)]


def _vs_paper(r: ResultRecord, dataset: str = "timit") -> str:
    """``"<= 14.46 bpf, +1.92 from the paper's <= 12.54"``."""
    fig = PAPER_BPF.get((r.label, dataset))
    ours = f"{bpf_text(r.bpf_weighted, r.is_bound)} bpf"
    return ours if fig is None else f"{ours}, {r.bpf_weighted - fig.bpf:+.2f} from the paper's {paper_text(r, fig)}"


def _verdict(r: ResultRecord | None, dataset: str = "timit") -> str:
    if r is None:
        return "no record"
    fig = PAPER_BPF.get((r.label, dataset))
    if fig is not None and abs(r.bpf_weighted - fig.bpf) <= REPRODUCED_WITHIN:
        return "reproduced"
    return "not reproduced at this budget"


def beyond_marginal(r: ResultRecord, dmol: ResultRecord) -> bool:
    """Whether ``r`` is more than :data:`MARGINAL_MARGIN` bpf below the fitted DMoL ``dmol`` (same dataset and split):
    only then has the model learned something about context."""
    return r.bpf_weighted < dmol.bpf_weighted - MARGINAL_MARGIN


def _marginal_words(r: ResultRecord, dmol: ResultRecord) -> str:
    if beyond_marginal(r, dmol):
        return f"{dmol.bpf_weighted - r.bpf_weighted:.2f} bpf below the context-free fitted DMoL"
    return (f"at the level of the context-free fitted DMoL ({dmol.bpf_weighted:.2f}): it has not got beyond the "
            f"marginal distribution of a sample at this budget")


def _missing(chapter: str, question: str, what: str) -> Finding:
    return Finding(chapter, TITLES[chapter], question, f"No record of {what} on the whole TIMIT test split yet.",
                   "no record")


# --------------------------------------------------------------------------------------------------------------------
# one function per chapter


def _data(records) -> Finding:
    q = "What does a 16-bit sample cost with no model, with a fitted marginal distribution, and with FLAC?"
    uni, dmol, flac, pad = (_best(records, m) for m in ("uniform", "dmol", "flac", "flac+padding"))
    if None in (uni, dmol, flac):
        return _missing("book/data_and_likelihood", q, "the baselines")
    answer = (f"Knowing nothing costs {uni.bpf_weighted:.2f} bpf; the 2-component DMoL fitted to the training split "
              f"costs {dmol.bpf_weighted:.2f} (paper {_paper('dmol')}); FLAC costs {flac.bpf_weighted:.2f} through "
              f"libFLAC"
              + (f" and {pad.bpf_weighted:.2f} with the flac tool's default padding" if pad else "")
              + f" (paper {_paper('flac')}: FLAC's figure depends on how the files are framed). The fitted marginal "
              "saves only "
              f"{uni.bpf_weighted - dmol.bpf_weighted:.2f} bits: the rest of what FLAC saves comes from context.")
    return Finding("book/data_and_likelihood", TITLES["book/data_and_likelihood"], q, answer, _verdict(dmol),
                   records=[r for r in (uni, dmol, flac, pad) if r],
                   paper=f"no model {_paper('uniform')}, DMoL {_paper('dmol')}, FLAC {_paper('flac')}",
                   ours=f"no model {uni.bpf_weighted:.2f}, DMoL {dmol.bpf_weighted:.2f} (fitted to the training "
                        f"split), FLAC {flac.bpf_weighted:.2f}")


def _wavenet(records) -> Finding:
    q = "How close does WaveNet get to the paper's 10.88 bpf on a CPU budget?"
    wavenets, dmol = select(records, model=WAVENET), _best(records, "dmol")
    if not wavenets or dmol is None:
        return _missing("book/wavenet", q, "a WaveNet and the DMoL baseline")
    best = min(wavenets, key=lambda r: r.bpf_weighted)
    paper_cfg = [r for r in wavenets if r.config.get("Dc") == 96 and r.config.get("blocks") == 5]
    answer = (f"The best WaveNet (Dc={best.config.get('Dc')}, {best.config.get('blocks')} blocks) reaches "
              f"{_vs_paper(best)}, after {_budget(best)}; it is {_marginal_words(best, dmol)}.")
    if paper_cfg and paper_cfg[0] is not best:
        p = paper_cfg[0]
        answer += (f" The paper's configuration (Dc=96, 5 blocks) reaches {p.bpf_weighted:.2f} after "
                   f"{training_text(p)}: at this budget the smaller net is ahead.")
    return Finding("book/wavenet", TITLES["book/wavenet"], q, answer, _verdict(best), records=[best] + paper_cfg[:1] * (
        paper_cfg[:1] != [best]), paper=paper_text(best, _paper(WAVENET)),
        ours=_ours(best, configuration(best)))


def _recurrent(records) -> Finding:
    q = "Do latent variables (VRNN, SRNN) beat the LSTM once frames are stacked (s = 64)?"
    lstm = _best(records, LSTM, s=64)
    vrnn = _best(records, VRNN, estimator="ELBO", s=64)
    srnn = _best(records, SRNN, estimator="ELBO", s=64)
    if None in (lstm, vrnn, srnn):
        return _missing("book/recurrent", q, "LSTM, VRNN and SRNN at s = 64")
    latent = min(vrnn, srnn, key=lambda r: r.bpf_weighted)
    holds = latent.bpf_weighted < lstm.bpf_weighted - REPRODUCED_WITHIN
    took = lambda r: training_text(r).split(", ")[-1]  # noqa: E731
    answer = (f"At s = 64 the LSTM reaches {_vs_paper(lstm)} (trained {took(lstm)}); the VRNN's ELBO {_vs_paper(vrnn)} "
              f"({took(vrnn)}); the SRNN's {_vs_paper(srnn)} ({took(srnn)}), all on {hardware_text(latent)}. The "
              f"bounds are " + ("below" if holds else "not below")
              + f" the LSTM's exact figure ({latent.bpf_weighted - lstm.bpf_weighted:+.2f} bpf).")
    s1 = _best(records, LSTM, s=1)
    if s1 is not None:
        answer += f" Without stacking (s = 1) the LSTM reaches {_vs_paper(s1)}."
    verdicts = {_verdict(r) for r in (lstm, vrnn, srnn)}
    verdict = "reproduced" if verdicts == {"reproduced"} else "not reproduced at this budget"
    named = (("VRNN", vrnn), ("SRNN", srnn), ("LSTM", lstm))
    return Finding("book/recurrent", TITLES["book/recurrent"], q, answer, verdict,
                   "at s = 64 the VRNN's and SRNN's bounds are below the LSTM's likelihood", holds,
                   [lstm, vrnn, srnn] + ([s1] if s1 else []), paper=_papers(named),
                   ours=f"{_figures(named)} ({took(lstm)} to {took(vrnn)}, {_cpu(lstm)})")


def _cwvae(records) -> Finding:
    q = "Does a hierarchy of latent variables at slower clocks (L = 2, 3) beat a single layer (L = 1)?"
    # the chapter's runs (recipes/cwvae-s64-l{1,2,3}); the longer run of the latent study is that chapter's
    ours = [r for r in records if not Path(r.run_dir or "").name.startswith(LATENT_STUDY_RUN_PREFIX)]
    cw = {L: _best(ours, CWVAE, estimator="ELBO", s1=64, L=L) for L in (1, 2, 3)}
    dmol = _best(records, "dmol")
    if None in cw.values() or dmol is None:
        return _missing("book/cwvae", q, "the CW-VAE at L = 1, 2 and 3")
    holds = all(cw[L].bpf_weighted < cw[1].bpf_weighted - REPRODUCED_WITHIN for L in (2, 3))
    best = min(cw.values(), key=lambda r: r.bpf_weighted)
    flat = [L for L in (1, 2, 3) if not beyond_marginal(cw[L], dmol)]
    answer = ("The ELBOs are " + "; ".join(f"L = {L}: {_vs_paper(cw[L])}" for L in (1, 2, 3))
              + f", after about {training_text(best).split(', ')[-1]} each on {hardware_text(best)}, "
              f"{', '.join(f'{cw[L].steps:,}' for L in (1, 2, 3))} steps.")
    if flat:
        answer += (f" L = {' and '.join(map(str, flat))} {'is' if len(flat) == 1 else 'are'} at the level of the "
                   f"context-free fitted DMoL ({dmol.bpf_weighted:.2f}): not beyond the marginal distribution.")
    verdicts = {_verdict(r) for r in cw.values()}
    named = [(f"L = {L}", cw[L]) for L in (1, 2, 3)]
    return Finding("book/cwvae", TITLES["book/cwvae"], q, answer,
                   "reproduced" if verdicts == {"reproduced"} else "not reproduced at this budget",
                   "L = 2 and L = 3 give lower bounds than L = 1", holds, list(cw.values()), paper=_papers(named),
                   ours=f"{_figures(named)} ({training_text(best).split(', ')[-1]} each, {_cpu(best)})")


def _latents(records, study: dict | None) -> Finding:
    q = "Do the CW-VAE's latents separate phones and speaker sex better than Mel features, as the paper finds?"
    named = ((study or {}).get("provenance") or {}).get("record") or {}
    if named:  # the record the study was made from (its provenance names it), not any two-layer CW-VAE
        model = next((r for r in select(records, model=CWVAE, estimator="ELBO", s1=64, L=2)
                      if r.label == named.get("label") and r.created == named.get("created")), None)
    else:
        model = _best(records, CWVAE, estimator="ELBO", s1=64, L=2)
    if study is None or model is None:
        return _missing("book/latents", q, "the two-layer CW-VAE and its latent study")

    def best_acc(task: str, feature: str, scheme: str = "loo", key: str = "accuracy") -> float:
        acc = study["tasks"][task]["features"][feature].get(key, {}).get(scheme, {})
        return max(acc.values()) if acc else float("nan")

    def claim(phone: dict, sex: dict) -> bool:
        return phone["z1"] > phone["mel"] and sex["z1"] > sex["mel"]

    feats = ("z1", "z2", "mel")
    # the LDA fitted inside each fold ("accuracy"); speaker sex across speakers: leave-one-speaker-out, so that no
    # utterance of the test speaker is a neighbour
    phone = {f: best_acc("phone", f) for f in feats}
    sex = {f: best_acc("gender", f, "loso") for f in feats}
    holds = claim(phone, sex)
    fmt = lambda d: ", ".join(f"{k} {100 * v:.0f}%" for k, v in d.items())  # noqa: E731
    answer = (f"Best kNN accuracy over k with the LDA fitted inside each fold, phones of one speaker "
              f"(leave-one-out): {fmt(phone)}; speaker sex (leave-one-speaker-out): {fmt(sex)}.")
    if all("accuracy_lda_all" in study["tasks"][t]["features"][f] for t in ("phone", "gender") for f in feats):
        phone_all = {f: best_acc("phone", f, key="accuracy_lda_all") for f in feats}
        sex_all = {f: best_acc("gender", f, "loso", "accuracy_lda_all") for f in feats}
        holds_all = claim(phone_all, sex_all)
        there = "there" + ((" too" if holds else " either") if holds_all == holds else "")
        answer += (f" With the paper's protocol, the LDA fitted to all points before the kNN (which leaks the labels "
                   f"and favours high-dimensional features): phones {fmt(phone_all)}; sex {fmt(sex_all)}; the "
                   f"paper's ordering {'holds' if holds_all else 'does not hold'} {there}.")
    answer += (f" The latents come from the two-layer CW-VAE of {_vs_paper(model)} ({training_text(model)})"
               + (", and carry less than the Mel spectrogram at this budget." if not holds else "."))
    return Finding("book/latents", TITLES["book/latents"], q, answer,
                   "reproduced" if holds else "not reproduced at this budget",
                   "the latent z1 beats Mel features for phones and for speaker sex; z2 loses to Mel for sex", holds,
                   [model], paper="z1 above Mel for phones and for speaker sex",
                   ours=f"phones: z1 {100 * phone['z1']:.0f}%, Mel {100 * phone['mel']:.0f}%; sex: z1 "
                        f"{100 * sex['z1']:.0f}%, Mel {100 * sex['mel']:.0f}% (kNN accuracy; the CW-VAE of "
                        f"{bpf_text(model.bpf_weighted, True)} bpf, {training_text(model).split(', ')[-1]}, "
                        f"{_cpu(model)})")


def _waveflow(records) -> Finding:
    q = "Does WaveFlow's 2-D autoregressive flow (h = 16) fit speech better than WaveGlow's coupling flow?"
    wf, wg = _best(records, WAVEFLOW), _best(records, WAVEGLOW)
    dmol = _best(records, "dmol")
    if None in (wf, wg, dmol):
        return _missing("book/waveflow", q, "WaveFlow and WaveGlow")
    holds = wf.bpf_weighted < wg.bpf_weighted - REPRODUCED_WITHIN
    answer = (f"Under uniform dequantization, WaveFlow (h = {wf.config.get('h')}) reaches "
              f"{bpf_text(wf.bpf_weighted, True)} bpf after {training_text(wf)}; WaveGlow reaches "
              f"{bpf_text(wg.bpf_weighted, True)} after {training_text(wg)}, both on {hardware_text(wf)} "
              f"(WaveGlow's steps are cheaper: it took {wg.steps / max(wf.steps, 1):.1f} times as many). "
              f"WaveFlow is {_marginal_words(wf, dmol)}; WaveGlow is {_marginal_words(wg, dmol)}. The paper reports "
              f"likelihoods on LJ Speech in nats, not on TIMIT, so there is no figure to match.")
    return Finding("book/waveflow", TITLES["book/waveflow"], q, answer, "not reproduced at this budget",
                   "WaveFlow with h = 16 has a higher likelihood than WaveGlow", holds, [wf, wg],
                   paper="WaveFlow above WaveGlow (LJ Speech, nats; no TIMIT figure)",
                   ours=f"{_figures((('WaveFlow', wf), ('WaveGlow', wg)))} ({training_text(wf).split(', ')[-1]} and "
                        f"{training_text(wg).split(', ')[-1]}, {_cpu(wf)})")


def _sashimi(records) -> Finding:
    q = "Does SaShiMi, trained in convolution mode, model speech on a CPU budget?"
    r16 = _best(records, SASHIMI, bits=16)
    r16 = r16 or next((r for r in select(records, model=SASHIMI) if r.config.get("bits", 16) == 16), None)
    r8 = next((r for r in select(records, model=SASHIMI) if r.config.get("bits") == 8), None)
    dmol = _best(records, "dmol")
    if r16 is None or dmol is None:
        return _missing("book/sashimi", q, "a 16-bit SaShiMi")
    answer = (f"On 16-bit mu-law with a DMoL head, SaShiMi reaches {r16.bpf_weighted:.2f} bpf after "
              f"{_budget(r16)}: {_marginal_words(r16, dmol)}.")
    if r8 is not None:
        answer += (f" On 8-bit mu-law with the paper's 256-way softmax it reaches {r8.bpf_weighted:.2f} bits per "
                   f"8-bit sample after {training_text(r8)}; being below the uniform 8 bits shows nothing by itself, "
                   f"and the fair baseline, a histogram of the training codes, has no record yet. The paper's "
                   f"figures are on SC09 and music, not TIMIT, so there is no figure to match.")
    return Finding("book/sashimi", TITLES["book/sashimi"], q, answer, "not reproduced at this budget",
                   records=[r for r in (r16, r8) if r], paper="SC09 and music only (no TIMIT figure)",
                   ours=_ours(r16, "16-bit mu-law, DMoL"))


def _standing(records) -> Finding:
    """The equal-budget campaign (budget ``"cpu-equal"``) and the hour campaign (``"cpu-hour"``): the best model at
    each budget, Table 1's ordering at s = 64 (every latent variable model below the LSTM) at the longest budget that
    has it, and how many of :data:`wavelab.report.claims.CLAIMS` hold at 4 and at 60 CPU-minutes against the
    seed-to-seed spread of the seed runs (``recipes/seeds/``, budget ``"cpu-equal"``, run names ``sd-*``)."""
    q = ("Given the same CPU-minutes of one thread (4 for every model, 60 for Table 1's s = 64 models and the small "
         "WaveNet), which model learns most, and do the papers' orderings hold?")
    own = [r for r in records if not r.estimator.startswith("importance-weighted")]
    seeds = [r for r in own if Path(r.run_dir or "").name.startswith("sd-")]
    equal = [r for r in own if r.budget == "cpu-equal" and r not in seeds]
    hour = [r for r in own if r.budget == "cpu-hour"]
    lstm = _best(equal, LSTM, s=64)
    if not equal or lstm is None:
        return _missing("book/standing", q, "the equal-budget campaign (results/equal/)")
    best = min(equal, key=lambda r: r.bpf_weighted)
    answer = (f"Across {len(equal)} runs of 4 CPU-minutes the best test figure is {record_name(best)}'s "
              f"{_vs_paper(best)}.")
    quoted, holds = [best], None
    for runs, minutes in ((equal, 4), (hour, 60)):
        lstm = _best(runs, LSTM, s=64)
        latent = [r for r in (_best(runs, m, s=64) for m in (VRNN, SRNN)) if r] + select(runs, model=CWVAE, s1=64)
        if lstm is None or not latent:
            continue
        lo, hi = (f(latent, key=lambda r: r.bpf_weighted) for f in (min, max))
        holds = all(r.bpf_weighted < lstm.bpf_weighted for r in latent)
        answer += (f" At {minutes} CPU-minutes and s = 64 the LSTM reaches {lstm.bpf_weighted:.2f} bpf and the latent "
                   f"models {lo.bpf_weighted:.2f} to {hi.bpf_weighted:.2f} (upper bounds).")
        quoted += [lstm, lo, hi]
    ours = f"best: {_ours(best)}"
    if hour:
        spread = max(seed_spread(seeds).values(), default=0.0)
        tested = [c for c in CLAIMS if {c.lower, c.higher} <= set(by_run(hour))]
        at = {m: [judge(c, by_run(runs), spread).state for c in tested] for m, runs in ((4, equal), (60, hour))}
        top = min(hour, key=lambda r: r.bpf_weighted)
        answer += (f" After 60 CPU-minutes the best is {record_name(top)}'s {_vs_paper(top)}. Of the {len(tested)} "
                   f"orderings both campaigns test, {at[4].count('holds')} hold at 4 CPU-minutes and "
                   f"{at[60].count('holds')} at 60, against a seed-to-seed spread of {spread:.2f} bpf.")
        quoted.append(top)
        ours = (f"orderings that hold: {at[4].count('holds')} of {len(tested)} at 4 CPU-min ({_cpu(best)}), "
                f"{at[60].count('holds')} at 60 ({_cpu(top)})")
    return Finding("book/standing", TITLES["book/standing"], q, answer, _verdict(best),
                   "at s = 64 every latent variable model beats the LSTM", holds,
                   list({id(r): r for r in quoted}.values()),
                   paper="Table 1's orderings, after days on a GPU", ours=ours)


#: the test sets the compression finding reads, in the order it reports them, with the words that name them
COMPRESSION_TEST_SETS = {"timit": "the TIMIT sample's test split",
                         "librispeech": "the LibriSpeech sample's test split (test-other)"}


def _compression(records) -> Finding:
    """Issue 12's runs (``pcm16`` and mu-law twins of the equal-budget campaign, the longer ``pcm16`` runs of
    ``results/compression/``) against the pcm16 baselines: what the representation is worth on one recipe, and, on
    each test set of :data:`COMPRESSION_TEST_SETS` that has a ``pcm16`` model's record and the pcm16 FLAC baseline,
    whether the best such model beats FLAC's stream there.  The claim is the authors' thesis, measured on TIMIT, so
    ``claim_holds`` says whether it holds on the TIMIT sample; the answer says, test set by test set, where the model
    is below FLAC and where it is not.  The thesis's linear-PCM figures (not Table 1) are the reference of the
    verdict."""
    q = ("What does the mu-law representation cost, and does a model of the file's own 16-bit samples, trained for "
         "minutes, compress speech better than FLAC and the best adaptive codecs (Monkey's Audio, SAC), on its own "
         "corpus's test speakers and on speech it never heard?")
    trained = [r for r in records if r.run_dir and not r.estimator.startswith("importance-weighted")]
    versus = {}  # test set -> (best pcm16 model there, FLAC's stream there)
    for dataset in COMPRESSION_TEST_SETS:
        pcm16 = select(trained, dataset=dataset, representation="pcm16")
        flac = _best(records, "flac", dataset=dataset, representation="pcm16")
        if pcm16 and flac is not None:
            versus[dataset] = (min(pcm16, key=lambda r: r.bpf_weighted), flac)
    if "timit" not in versus:
        return _missing("book/compression", q, "a pcm16 model and the pcm16 FLAC baseline")
    sentences, quoted, runs_named = [], [], []
    for dataset, (best, flac) in versus.items():
        if best.run_dir in runs_named:
            who = "the same model"
        else:
            name = record_name(best)
            if best.config.get("lpc_order"):
                name += f" with an order-{best.config['lpc_order']} linear predictor"
            if best.config.get("adaptive_residual"):
                name += ", modelling the adaptive NLMS cascade's residual"
            who = f"the best model of the file's own samples, {name} ({_budget_text(best)}),"
            runs_named.append(best.run_dir)
        trained_on = (best.train_config or {}).get("dataset", dataset)
        if trained_on in JOINED_CORPORA:
            joined = " and ".join(DATASET_NAMES.get(c, c) for c in JOINED_CORPORA[trained_on])
            who += (" " if who.endswith(",") else ", ") + f"trained on the {joined} samples together,"
        elif trained_on != dataset:
            who += (" " if who.endswith(",") else ", ") + \
                f"trained on the {DATASET_NAMES.get(trained_on, trained_on)} sample only,"
        side = "below" if best.bpf_weighted < flac.bpf_weighted else "above"
        sentences.append(f"On {COMPRESSION_TEST_SETS[dataset]} {who} needs {best.bpf_weighted:.2f} bpf against "
                         f"{flac.bpf_weighted:.2f} for FLAC's stream: {side} FLAC"
                         + _versus_adaptive_codecs(best.bpf_weighted, dataset))
        quoted += [best, flac]
    timit = select(trained, dataset="timit", representation=None)
    twins = [(m, p) for p in select(timit, representation="pcm16") for m in select(timit) if _twin_runs(m, p)]
    if twins:
        gains = [m.bpf_weighted - p.bpf_weighted for m, p in twins]
        m, p = max(twins, key=lambda mp: mp[0].bpf_weighted - mp[1].bpf_weighted)
        quoted += [m, p]
        sentences.append(f"On the TIMIT sample, with the same recipe and budget, the representation alone is worth "
                         f"{min(gains):.1f} to {max(gains):.1f} bpf ({record_name(p)}: {m.bpf_weighted:.2f} on "
                         f"mu-law codes, {p.bpf_weighted:.2f} on the samples)")
    below = [d for d, (best, flac) in versus.items() if best.bpf_weighted < flac.bpf_weighted]
    if below and len(below) < len(versus):
        sentences.append("A model of the samples beats FLAC on " + " and ".join(COMPRESSION_TEST_SETS[d] for d in below)
                         + " only")
    best_timit, flac_timit = versus["timit"]
    thesis = THESIS_LINEAR_BPF.get((best_timit.label, "timit"))
    verdict = "not reproduced at this budget"
    if thesis is not None and abs(best_timit.bpf_weighted - thesis.bpf) <= REPRODUCED_WITHIN:
        verdict = "reproduced"
    ours = "; ".join(f"{DATASET_NAMES[d]} {best.bpf_weighted:.2f}, FLAC {flac.bpf_weighted:.2f}"
                     for d, (best, flac) in versus.items())
    return Finding("book/compression", TITLES["book/compression"], q, ". ".join(sentences) + ".", verdict,
                   "a DMoL model of the linear 16-bit PCM beats FLAC on TIMIT (the authors' thesis)",
                   best_timit.bpf_weighted < flac_timit.bpf_weighted, quoted,
                   paper=(f"{record_name(best_timit)} {thesis} on linear PCM (thesis)" if thesis else "")
                   + f"; FLAC {_paper('flac')}",
                   ours=f"{ours} ({record_name(best_timit)}; {_budget_text(best_timit)}, {_cpu(best_timit)})")


#: the adaptive codecs the compression finding measures the best model against (keys of the codec benchmark): issue
#: 22's milestone and its goal
ADAPTIVE_CODECS = ("Monkey's Audio -c4000", "SAC 0.7.25 --normal")


def _versus_adaptive_codecs(bpf: float, dataset: str) -> str:
    """``", below Monkey's Audio ... and above SAC ..."``: where ``bpf`` stands against :data:`ADAPTIVE_CODECS` on
    ``dataset``'s test split (``""`` without the codec benchmark), each figure labelled by who measured it."""
    from .codecs import OUTSIDE, codec_figure, load_codec_figures

    try:
        figures = load_codec_figures()
    except (FileNotFoundError, ValueError):
        return ""
    parts = []
    for key in ADAPTIVE_CODECS:
        f = codec_figure(figures, key, dataset)
        if f is not None:
            where = ", measured outside the project" if f.measured_by == OUTSIDE else ""
            parts.append(f"{'below' if bpf < f.bits_per_sample else 'above'} {key} "
                         f"({f.bits_per_sample:.2f}{where})")
    return (", " + " and ".join(parts)) if parts else ""


def _twin_runs(mulaw: ResultRecord, pcm16: ResultRecord) -> bool:
    """Whether two records come from the same recipe and budget in two representations (run names ``NAME`` and
    ``NAME-pcm16``)."""
    return Path(pcm16.run_dir or "").name == Path(mulaw.run_dir or "-").name + "-pcm16"


def _budget_text(r: ResultRecord) -> str:
    minutes = (r.train_config or {}).get("max_minutes")
    return f"{minutes:g} CPU-minutes" if minutes else f"{r.steps} steps"


_CHAPTERS: dict[str, Callable] = {"book/data_and_likelihood": _data, "book/wavenet": _wavenet,
                                  "book/recurrent": _recurrent, "book/cwvae": _cwvae, "book/waveflow": _waveflow,
                                  "book/sashimi": _sashimi, "book/standing": _standing,
                                  "book/compression": _compression}


def _load_study(results_dir: Path) -> dict | None:
    path = results_dir / "studies" / "latent-study.json"
    if not path.exists():
        return None
    return load_study(path)


def chapter_finding(chapter: str, records: list[ResultRecord] | None = None, *, study: dict | None = None,
                    results_dir: str | Path | None = None) -> Finding:
    """The measured answer of one chapter, from the records of the whole TIMIT test split (and, for
    ``"book/compression"``, of every test split of :data:`COMPRESSION_TEST_SETS`).

    Args:
        chapter: a key of :data:`TITLES` (the chapter's page as ``_toc.yml`` names it, ``"book/wavenet"``).
        records: the records to read (default: :func:`wavelab.report.records.load_records` of ``results_dir``); only
            those on the whole TIMIT test split are used.  ``"book/standing"`` reads the campaigns' records among them
            (budgets ``"cpu-equal"`` and ``"cpu-hour"``), or when there are none those of ``<results_dir>/equal/``,
            ``hour/`` and ``seeds/``; ``"book/compression"``
            reads every representation and the whole test split of each corpus, and adds the records of
            ``<results_dir>/equal/`` and ``<results_dir>/compression/`` when ``records`` hold no trained ``pcm16``
            run.
        study: the latent study (``"book/latents"`` only; default: ``<results_dir>/studies/latent-study.json``); its
            record is looked up among ``records`` and the hour campaign's (``<results_dir>/hour/``).
        results_dir: default :func:`wavelab.settings.results_dir`.
    Returns:
        :class:`Finding`.
    Raises:
        KeyError: an unknown chapter (the message lists the chapters).
    """
    if chapter not in TITLES:
        raise KeyError(f"no chapter {chapter!r}; the chapters are {list(TITLES)}")
    from ..settings import results_dir as default_results_dir

    root = Path(results_dir) if results_dir is not None else default_results_dir()
    if chapter == "book/standing":  # the campaigns' records, from their own folders unless given
        records = [r for r in records or [] if r.budget in ("cpu-equal", "cpu-hour")]
        if not records:
            records = [r for folder in ("equal", "hour", "seeds") if (root / folder).is_dir()
                       for r in load_records(root / folder)]
    elif chapter == "book/compression":  # the baselines, with the equal-budget and the longer runs unless given
        records = load_records(root) if records is None else list(records)
        if not any(r.run_dir and r.representation == "pcm16" for r in records):
            records += [r for folder in (root / "equal", root / "compression") if folder.is_dir()
                        for r in load_records(folder)]
    elif records is None:
        records = load_records(root)
    if chapter == "book/latents" and (root / "hour").is_dir():  # the study may read the hour campaign's CW-VAE
        records = list(records) + load_records(root / "hour")
    if chapter == "book/compression":  # every representation, and each test set it was measured on
        test = select(records, split="test", representation=None)
    else:
        test = select(records, dataset="timit", split="test")
    if chapter == "book/latents":
        return _latents(test, study if study is not None else _load_study(root))
    return _CHAPTERS[chapter](test)


def summary(records: list[ResultRecord] | None = None, results_dir: str | Path | None = None) -> Summary:
    """Every chapter's :class:`Finding`, in the book's order (:data:`TITLES`); see :func:`chapter_finding`."""
    from ..settings import results_dir as default_results_dir

    root = Path(results_dir) if results_dir is not None else default_results_dir()
    records = load_records(root) if records is None else records
    return Summary(chapter_finding(c, records, results_dir=root) for c in TITLES)


def findings_table(findings: list[Finding], caption: str = "") -> Table:
    """The first page's table: one row per chapter with its question, the paper's figure, ours (with its budget and
    CPU) and the verdict (:class:`Finding` fields ``question``, ``paper``, ``ours`` and ``verdict``); figures are in
    bpf unless a cell says otherwise.

    Args:
        findings: e.g. :func:`summary`.
        caption: the table's caption.
    Returns:
        a :class:`wavelab.report.tables.Table`; an empty cell where a finding has no paper figure or no record.
    """
    rows = [{"chapter": f.title, "question": f.question, "the paper": f.paper, "ours": f.ours,
             "verdict": f.verdict} for f in findings]
    return Table.from_rows(rows, caption=caption)


__all__ = ["COMPRESSION_TEST_SETS", "Finding", "LATENT_STUDY_RUN_PREFIX", "MARGINAL_MARGIN", "REPRODUCED_WITHIN",
           "Summary", "TITLES", "VERDICTS", "beyond_marginal", "chapter_finding", "findings_table", "summary"]
