"""Representations (mulaw / linear / pcm16): exact codes, pmfs that sum to one and agree with a float64 / mpmath
brute force, every 16-bit model training and evaluating in each, mu-law bit-identical to the code before, baselines,
records and tables per representation."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch

from wavelab.audio import mu_law_compress, pcm16_to_codes
from wavelab.data import Recording
from wavelab.distributions import DiscretizedMixtureLogistics
from wavelab.models import REGISTRY, build_model, quick_config
from wavelab.representations import REPRESENTATIONS, get_representation

REPO = Path(__file__).resolve().parents[1]
K = 65536
ALL_PCM = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)


# --------------------------------------------------------------------------------------------------------------------
# the representation objects


@pytest.mark.parametrize("name", ["linear", "pcm16"])
def test_lossless_codes_round_trip_every_int16_value(name):
    rep = get_representation(name)
    codes = rep.codes_from_pcm16(ALL_PCM)
    assert codes.dtype == torch.int64 and sorted(set(codes.tolist())) == list(range(K))  # a bijection onto the codes
    back = rep.pcm16_from_codes(codes)
    assert back.dtype == np.int16 and np.array_equal(back, ALL_PCM)
    assert rep.lossless and rep.silence_code == 32768


def test_mulaw_codes_are_the_existing_mu_law_codes():
    rep = get_representation("mulaw")
    assert torch.equal(rep.codes_from_pcm16(ALL_PCM), pcm16_to_codes(ALL_PCM))
    assert not rep.lossless
    # about 20k of the 65,536 codes are images of an int16 value (the unreachable codes)
    reached = len(set(rep.codes_from_pcm16(ALL_PCM).tolist()))
    assert 15_000 < reached < 25_000


@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_bins_tile_the_axis_and_hold_their_inputs(name):
    rep = get_representation(name)
    e, w = rep.bin_edges(), rep.bin_widths()
    assert e.shape == (K + 1,) and w.shape == (K,) and bool((e[1:] > e[:-1]).all())
    assert torch.allclose(e[1:] - e[:-1], w, rtol=1e-9, atol=1e-15)
    y = rep.model_input(torch.arange(K), torch.float64)
    assert bool(((y >= e[:-1]) & (y <= e[1:])).all())  # every code's input lies in its own bin
    g = torch.Generator().manual_seed(0)
    inside = e[:-1] + (0.02 + 0.96 * torch.rand(K, generator=g, dtype=torch.float64)) * w
    assert torch.equal(rep.codes_from_values(inside), torch.arange(K))  # quantizing goes back to the bin's code


def test_pcm16_input_is_the_companded_int16_value_and_edges_its_half_steps():
    rep = get_representation("pcm16")
    x = torch.from_numpy(ALL_PCM.astype(np.float64)) / 32768.0
    y = rep.model_input(rep.codes_from_pcm16(ALL_PCM), torch.float64)
    assert torch.allclose(y, mu_law_compress(x, 16), rtol=0, atol=1e-15)  # continuous, not re-quantized
    mpmath.mp.dps = 40
    mu = mpmath.mpf(65535)
    for v in (-32768, -20000, -1, 0, 1, 7, 32767):  # the bin width c((v + 0.5) / 32768) - c((v - 0.5) / 32768)
        c = lambda t: mpmath.sign(t) * mpmath.log1p(mu * abs(t)) / mpmath.log1p(mu)  # noqa: E731
        exact = c(mpmath.mpf(v + 0.5) / 32768) - c(mpmath.mpf(v - 0.5) / 32768)
        assert float(rep.bin_widths()[v + 32768]) == pytest.approx(float(exact), rel=1e-13)
    assert float(rep.bin_widths()[32768]) == pytest.approx(2 * math.log1p(65535 / 65536) / math.log1p(65535))


def test_bad_representations_are_refused_with_their_names():
    with pytest.raises(ValueError, match="unknown representation 'alaw'.*mulaw, linear, pcm16"):
        get_representation("alaw")
    with pytest.raises(ValueError, match="needs bits = 16"):
        get_representation("pcm16", bits=8)
    with pytest.raises(ValueError, match="WaveNetConfig.representation"):
        quick_config("wavenet", representation="ulaw")
    with pytest.raises(ValueError, match="categorical head .* only 'mulaw'"):
        quick_config("sashimi", representation="linear")
    with pytest.raises(TypeError, match="int16"):
        get_representation("linear").codes_from_pcm16(np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 65535\]"):
        get_representation("linear").pcm16_from_codes(torch.tensor([65536]))


# --------------------------------------------------------------------------------------------------------------------
# the DMoL in each representation


def _params(dtype=torch.float64):
    """Three components: a broad one, one at small amplitude, a narrow one near full scale (log-scales in the
    model's domain), as ``[1, 9, K]``."""
    p = torch.tensor([0.3, -0.4, 0.1, 0.02, -0.25, 0.93, -2.5, -4.0, -11.5], dtype=torch.float64)
    return p.reshape(1, -1, 1).expand(1, 9, K).to(dtype)


def _brute_force_pmf(rep, p: torch.Tensor) -> torch.Tensor:
    """``P(k) = sum_m pi_m [sigmoid((e_{k+1} - mu_m)/s_m) - sigmoid((e_k - mu_m)/s_m)]`` in float64, the edge bins
    open (``e_0 = -inf``, ``e_K = +inf``): the textbook formula, straight from the CDF."""
    logits, means, log_s = p[0, :, 0].double().split(3)
    w = torch.softmax(logits, 0)
    e = rep.bin_edges().clone()
    e[0], e[-1] = -math.inf, math.inf
    cdf = torch.sigmoid((e[None, :] - means[:, None]) / log_s.exp()[:, None])
    return (w[:, None] * (cdf[:, 1:] - cdf[:, :-1])).sum(0)


@pytest.mark.parametrize("name", ["pcm16", "linear", "mulaw"])
def test_pmf_sums_to_one_and_matches_the_float64_brute_force(name):
    rep = get_representation(name)
    d = DiscretizedMixtureLogistics(3, 16, representation=name)
    codes = torch.arange(K).reshape(1, K)
    lp = d.log_prob(_params(), codes)[0]
    assert lp.dtype == torch.float64
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-12)  # sums to one over all 65,536 values
    brute = _brute_force_pmf(rep, _params())
    big = brute > 1e-7  # where the textbook difference of two CDFs is itself accurate (to ~1e-9 relative)
    assert int(big.sum()) > 1000
    assert torch.allclose(lp.exp()[big], brute[big], rtol=1e-7, atol=0)
    # float32 (the models' precision) is finite everywhere and close where the mass is
    lp32 = d.log_prob(_params(torch.float32), codes)[0]
    assert bool(torch.isfinite(lp32).all())
    assert float(torch.logsumexp(lp32.double(), 0)) == pytest.approx(0.0, abs=1e-5)
    assert float((lp32.double() - lp)[brute > 1e-6].abs().max()) < 0.01


@pytest.mark.parametrize("name", ["pcm16", "linear"])
def test_log_masses_are_accurate_in_the_tails(name):
    """Bins whose mass is far below float64's resolution of 1 - CDF (down to ~1e-40): the log-mass matches a
    40-digit mpmath evaluation, where the naive difference of CDFs would give 0 (log 0)."""
    rep = get_representation(name)
    d = DiscretizedMixtureLogistics(1, 16, representation=name)
    mean, log_s = 0.0, -4.0
    p = torch.tensor([0.0, mean, log_s], dtype=torch.float64).reshape(1, 3, 1).expand(1, 3, K)
    lp = d.log_prob(p, torch.arange(K).reshape(1, K))[0]
    lp32 = d.log_prob(p.float(), torch.arange(K).reshape(1, K))[0]
    mpmath.mp.dps = 40
    e = rep.bin_edges()
    s = mpmath.e ** mpmath.mpf(log_s)
    sig = lambda t: 1 / (1 + mpmath.e ** (-(mpmath.mpf(float(t)) - mean) / s))  # noqa: E731
    for k in (50000, 60000, 65534, 20000, 5000, 1):
        exact = mpmath.log(sig(e[k + 1]) - sig(e[k]))
        assert float(exact) < -20  # a tail bin
        assert float(lp[k]) == pytest.approx(float(exact), rel=1e-9)
        assert float(lp32[k]) == pytest.approx(float(exact), rel=1e-4)
    assert bool(torch.isfinite(lp32).all())


@pytest.mark.parametrize("name", ["pcm16", "linear"])
def test_draws_land_in_the_bins_with_the_pmf_s_frequencies(name):
    d = DiscretizedMixtureLogistics(1, 16, representation=name)
    rep = get_representation(name)
    centre = float(rep.model_input(torch.tensor([32768 + 3])))
    log_s = math.log(float(rep.bin_widths()[32768 + 3]))  # a component about one bin wide
    p = torch.tensor([0.0, centre, log_s]).reshape(1, 3, 1).expand(1, 3, 200_000)
    draws = d.sample(p, generator=torch.Generator().manual_seed(0))[0]
    codes = torch.arange(32768 - 2, 32768 + 9)
    pmf = d.log_prob(p[:, :, : len(codes)].contiguous(), codes.reshape(1, -1))[0].exp()
    freq = torch.stack([(draws == c).double().mean() for c in codes])
    assert torch.allclose(freq, pmf.double(), atol=4e-3)  # 200k draws: standard error <= 1.2e-3


# --------------------------------------------------------------------------------------------------------------------
# models


def _supported(name: str) -> list[tuple[str, dict]]:
    out = []
    for rep in REPRESENTATIONS:
        if name == "sashimi":
            out.append((rep, {"head": "dmol", "representation": rep}))  # the categorical head is mu-law only
        else:
            out.append((rep, {"representation": rep}))
    return out


CASES = [(name, rep, extra) for name in REGISTRY for rep, extra in _supported(name)]


def _speech_like(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    e = rng.normal(0, 400, n)
    for i in range(2, n):
        x[i] = 1.7 * x[i - 1] - 0.8 * x[i - 2] + e[i]
    return np.clip(x, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("name,rep,extra", CASES, ids=[f"{n}-{r}" for n, r, _ in CASES])
def test_every_16_bit_model_trains_a_step_and_evaluates_in_each_representation(name, rep, extra):
    from wavelab.data import random_segments
    from wavelab.evaluate import evaluate

    torch.manual_seed(0)
    model = build_model(name, config=quick_config(name, **extra))
    assert model.bits == 16 and model.representation.name == rep and model.config.representation == rep
    utts = [Recording(f"u{i}", _speech_like(1200 + 300 * i, i)) for i in range(3)]
    codes, lengths = next(random_segments(utts, 1024, 2, representation=rep))
    if rep != "mulaw":  # the same segments as the mu-law stream of the same seed, in this representation's codes
        mulaw, _ = next(random_segments(utts, 1024, 2))
        assert torch.equal(pcm16_to_codes(model.representation.pcm16_from_codes(codes)), mulaw)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = model(codes, lengths).loss()
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    ev = evaluate(model, utts, seed=0)
    bpf = ev.bpf.weighted
    assert math.isfinite(bpf) and 0 < bpf < 40
    if rep != "mulaw":  # the lossless representations' draws are int16 values of a file
        with torch.inference_mode():
            out = model.eval().sample(64, batch_size=1, generator=torch.Generator().manual_seed(0))
        pcm = model.representation.pcm16_from_codes(out[0])
        assert pcm.dtype == np.int16 and torch.equal(model.representation.codes_from_pcm16(pcm), out[0].cpu())


def test_the_data_path_yields_the_representation_s_codes():
    from wavelab.data import bucket_batches

    u = Recording("u", _speech_like(3000, 1))
    for rep in REPRESENTATIONS:
        batch = next(bucket_batches([u], representation=rep))
        assert torch.equal(batch.codes[0], get_representation(rep).codes_from_pcm16(u.pcm))
    assert torch.equal(next(bucket_batches([u])).codes[0], pcm16_to_codes(u.pcm))  # default: mu-law


@pytest.mark.parametrize("name", ["pcm16", "linear"])
def test_flow_bound_uses_each_bin_s_own_width(name):
    """WaveFlow at initialisation is the identity (zero output convs), so ``log p_cont(x) = log N(x; 0, 1)``: the
    bound must be ``-(log N(x) + log w_k)`` for ``x = e_k + u w_k``, and averaged over noise it must lie above the
    exact ``-log P(k)`` of the Gaussian's mass on the bin (Jensen)."""
    model = build_model("waveflow", config=quick_config("waveflow", representation=name)).double()
    rep = model.representation
    codes = rep.codes_from_pcm16(_speech_like(64, 3)).reshape(1, -1)
    lengths = torch.tensor([64])
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(codes.shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        out = model(codes, lengths, noise=noise)
    e, w = rep.bin_edges(), rep.bin_widths()
    x = e[codes] + noise * w[codes]
    expected = -(-0.5 * x**2 - 0.5 * math.log(2 * math.pi) + torch.log(w[codes])).sum()
    assert float(out.nll[0]) == pytest.approx(float(expected), rel=1e-10)
    # the bound's expectation over u, exactly: E[x^2] = (a^2 + ab + b^2) / 3 on a cell [a, b]
    a, b = e[codes], e[codes + 1]
    expectation = (0.5 * math.log(2 * math.pi) + (a * a + a * b + b * b) / 6 - torch.log(w[codes])).sum()
    exact = -torch.log(torch.special.ndtr(b) - torch.special.ndtr(a)).sum()  # -log P of the Gaussian's bin masses
    assert float(expectation) >= float(exact) - 1e-9  # Jensen: a bound on the discrete NLL
    with torch.no_grad():
        draws = torch.stack([model(codes, lengths, noise=torch.rand(codes.shape, generator=g,
                                                                      dtype=torch.float64)).nll[0] for _ in range(50)])
    assert abs(float(draws.mean()) - float(expectation)) < 5 * float(draws.std()) / math.sqrt(50) + 1e-12
    with pytest.raises(ValueError, match=r"fraction of the code's cell and must lie in \[0, 1\]"):
        model(codes, lengths, noise=noise - 0.5)


REFERENCE = json.loads((REPO / "tests" / "mulaw_reference.json").read_text())
BEFORE = REFERENCE["commit"]  # the last commit before representations existed

# Runs the code of BEFORE (its wavelab package, from git) on the reference runs, in a fresh process that inherits
# this one's CPU dispatch settings: the "before" side of the comparison, computed on the machine that runs the test.
_BEFORE_SIDE = r"""
import json, sys, torch
torch.set_num_threads(1)
from wavelab.data import load_split
from wavelab.evaluate import evaluate
from wavelab.train import load_run
ref = json.loads(open(sys.argv[1]).read())
test = {u.id: u for u in load_split("timit", "test")}
out = {}
for run, r in sorted(ref["runs"].items()):
    model, _, _ = load_run(sys.argv[2] + "/" + run, device="cpu")
    ev = evaluate(model, [test[r["id"]]], seed=0)
    out[run] = [float(ev.nll[0]), ev.bpf.weighted]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def before_side(timit_root, tmp_path_factory) -> dict[str, list[float]]:
    """``{run: [nll, bpf]}`` from the package as it was at :data:`BEFORE` (``git archive``), on this machine."""
    import subprocess
    import sys

    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"commit {BEFORE} is not in this clone's history (a shallow clone?): `git fetch --unshallow`")
    old = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "wavelab"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    env = {**os.environ, "WAVELAB_DATA": str(timit_root.parent), "PYTHONPATH": str(old)}
    r = subprocess.run([sys.executable, "-c", _BEFORE_SIDE, str(REPO / "tests" / "mulaw_reference.json"),
                        str(REPO / "results" / "runs")], capture_output=True, text=True, cwd=old, env=env,
                       timeout=1800)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("run", sorted(REFERENCE["runs"]))
def test_mulaw_exported_runs_evaluate_bit_identically_to_the_code_before(run, before_side, timit_root):
    """The exported runs of results/runs/ give exactly the NLL and bpf the code before representations gave (commit
    :data:`BEFORE`, run from git in a subprocess) on the shortest TIMIT test utterance, seed 0.  Both sides are
    computed here, on the same CPU and dispatch path, so they must agree bit for bit; the figures stored in
    ``tests/mulaw_reference.json`` come from another CPU (an Intel Xeon with AMX) and differ from this machine's in
    the last float32 bit on some CPUs (``benchmarks/dispatch_spread.py`` measures it), so they are not compared."""
    from wavelab.data import load_split
    from wavelab.evaluate import evaluate
    from wavelab.train import load_run

    ref = REFERENCE["runs"][run]
    model, _, meta = load_run(REPO / "results" / "runs" / run, device="cpu")
    assert model.representation.name == "mulaw" and "representation" not in meta["model_config"]
    utt = [u for u in load_split("timit", "test") if u.id == ref["id"]]
    ev = evaluate(model, utt, seed=0)
    assert [float(ev.nll[0]), ev.bpf.weighted] == before_side[run]


# --------------------------------------------------------------------------------------------------------------------
# recipes, records, tables


def test_a_recipe_s_representation_reaches_the_model_config(tmp_path):
    from wavelab.campaign.recipes import load_recipe

    text = (REPO / "recipes" / "lstm-s64.toml").read_text().replace('representation = "mulaw"',
                                                                      'representation = "pcm16"')
    path = tmp_path / "lstm-s64.toml"
    path.write_text(text)
    r = load_recipe(path)
    assert r.representation == "pcm16" and r.overrides()["representation"] == "pcm16"
    assert r.train_config("runs", quick=True).model_overrides["representation"] == "pcm16"
    mulaw = load_recipe(REPO / "recipes" / "lstm-s64.toml")
    assert "representation" not in mulaw.overrides()  # a mu-law recipe's run is what it always was


def test_quick_pcm16_campaign_trains_exports_evaluates_and_records(timit_root, tmp_path):
    from wavelab.campaign.recipes import QUICK_LIMIT, load_recipe, run_recipe
    from wavelab.report.records import read_record
    from wavelab.train import load_run

    text = (REPO / "recipes" / "wavenet-dc32-b2.toml").read_text().replace('representation = "mulaw"',
                                                                            'representation = "pcm16"')
    path = tmp_path / "wavenet-dc32-b2.toml"
    path.write_text(text)
    out = run_recipe(load_recipe(path), runs_dir=tmp_path / "runs", results_dir=tmp_path / "results", quick=True,
                     device="cpu")
    rec = read_record(out.records[0])
    assert rec.representation == "pcm16" and rec.config["representation"] == "pcm16"
    assert rec.utterances == QUICK_LIMIT and math.isfinite(rec.bpf_weighted)
    model, _, _ = load_run(tmp_path / "results" / "runs" / "wavenet-dc32-b2")
    assert model.representation.name == "pcm16"


def _record(model="dmol", rep="mulaw", bpf=15.6, **kw):
    from wavelab.report.records import ResultRecord

    return ResultRecord(model=model, config={}, dataset="timit", split="test", bpf_weighted=bpf, bpf_mean=bpf,
                        is_bound=False, utterances=40, representation=rep, **kw)


def test_records_name_their_representation_and_old_ones_read_as_mulaw(tmp_path):
    from wavelab.report.records import ResultRecord, read_record, select, write_record

    d = _record().to_dict()
    del d["representation"]
    assert ResultRecord.from_dict(d).representation == "mulaw"
    write_record(_record(rep="linear", bpf=10.4), tmp_path / "a.json")
    assert read_record(tmp_path / "a.json").representation == "linear"
    with pytest.raises(ValueError, match="representation must be one of"):
        _record(rep="alaw")
    recs = [_record(), _record(rep="linear", bpf=10.4), _record(rep="pcm16", bpf=10.1)]
    assert select(recs, full_split=False) == recs[:1]  # the paper's setting unless asked
    assert select(recs, full_split=False, representation="linear") == recs[1:2]
    assert select(recs, full_split=False, representation=None) == recs


def test_tables_never_mix_representations_without_saying_so():
    from wavelab.report.tables import records_table

    mulaw_t, linear_t = records_table([_record(rep="linear", bpf=10.4), _record()])  # mu-law first
    assert "representation" not in mulaw_t.caption and "paper [bpf]" in mulaw_t.columns  # the paper's DMoL
    assert "representation: 16-bit linear PCM" in linear_t.caption and "paper [bpf]" not in linear_t.columns
    linear = records_table([_record(rep="linear", bpf=10.4), _record(model="uniform", rep="linear", bpf=16.0)])
    assert "representation" not in linear.columns and "representation: 16-bit linear PCM" in linear.caption
    mulaw = records_table([_record()])
    assert "representation" not in mulaw.columns and "representation" not in mulaw.caption


# --------------------------------------------------------------------------------------------------------------------
# baselines per representation


def test_histogram_baseline_sums_to_one_and_keeps_mass_on_unseen_codes():
    from wavelab.baselines import histogram_log_pmf

    counts = torch.zeros(K, dtype=torch.float64)
    counts[100:200] = torch.arange(100, dtype=torch.float64)
    lp = histogram_log_pmf(counts)
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-12)
    assert float(lp[0].exp()) == pytest.approx(0.5 / (counts.sum() + K / 2))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        histogram_log_pmf(counts, alpha=0)


def test_baselines_per_representation_on_real_speech(timit_root):
    """On real TIMIT speech: the histogram beats uniform in every representation and is the same for linear and
    pcm16 (same codes); the smooth DMoL-2 is far worse on mu-law codes than on linear ones (it spreads mass over
    codes that never occur); FLAC of the mu-law codes costs more than FLAC of the linear PCM."""
    from wavelab.baselines import run_baselines
    from wavelab.data import load_split

    train, test = load_split("timit", "train")[:10], load_split("timit", "test")[:3]
    res = {rep: {r.name: r for r in run_baselines(train, test, representation=rep)} for rep in REPRESENTATIONS}
    for rep, r in res.items():
        assert r["histogram"].bpf.weighted < r["uniform"].bpf.weighted == pytest.approx(16.0)
        assert r["dmol"].bpf.weighted < 16.0
        if rep != "mulaw":
            assert r["dmol"].details["representation"] == rep and "flac-codes" not in r
    assert res["linear"]["histogram"].bpf.weighted == res["pcm16"]["histogram"].bpf.weighted
    assert res["linear"]["dmol"].bpf.weighted < res["mulaw"]["dmol"].bpf.weighted - 2
    assert res["mulaw"]["flac-codes"].bpf.weighted > res["mulaw"]["flac"].bpf.weighted + 2
    assert res["mulaw"]["flac"].bpf.weighted == res["linear"]["flac"].bpf.weighted


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_defaults_to_mulaw_and_names_its_representation(name):
    model = build_model(name, config=quick_config(name))
    assert model.config.representation == "mulaw" and model.representation == get_representation("mulaw", model.bits)
    assert dataclasses.asdict(model.config)["representation"] == "mulaw"


def test_records_table_gives_each_representation_its_own_table():
    from wavelab.report.tables import records_table

    recs = [_record(), _record(model="uniform", bpf=16.0), _record(rep="linear", bpf=10.4),
            _record(rep="pcm16", bpf=10.2)]
    tables = records_table(recs)
    assert [len(t.rows) for t in tables] == [2, 1, 1] and all("representation" not in t.columns for t in tables)
    assert "representation" not in tables[0].caption
    assert "16-bit linear PCM" in tables[1].caption and "pcm16" in tables[2].caption
