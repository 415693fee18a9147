"""Tests of the recurrent models over stacked frames (wavelab.models.lstm, vrnn, srnn) and their latent machinery
(wavelab.models.latent): KL terms, bounds, segment-wise evaluation with carried state, padding, causality, sampling,
training objective and a short training run on a sine."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.helpers import check_iw_bound_against_elbo, mean_se, seeded
from wavelab.audio import mu_law_encode
from wavelab.data import Recording
from wavelab.models import ModelOutput, build_model, config_for
from wavelab.models.latent import free_nats_at, free_nats_kl, gaussian_kl, gaussian_log_prob, kl_weight
from wavelab.models.lstm import LSTMConfig, LSTMModel
from wavelab.models.srnn import SRNN, SRNNConfig
from wavelab.models.vrnn import VRNN, VRNNConfig

torch.set_num_threads(1)
MODELS = ["lstm", "vrnn", "srnn"]
LATENT = ["vrnn", "srnn"]


def tiny(name: str, seed: int = 0, **overrides):
    fields = dict(s=4, Dd=12, mlp_layers=2, num_components=3)
    if name in LATENT:
        fields.update(Dz=6)
    fields.update(overrides)
    torch.manual_seed(seed)
    return build_model(name, **fields)


def sine_batch(B: int = 3, T: int = 50, seed: int = 0, noise: float = 0.05):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)
    freq = torch.rand(B, 1, generator=g) * 0.08 + 0.01
    phase = torch.rand(B, 1, generator=g) * 2 * math.pi
    x = 0.4 * torch.sin(2 * math.pi * freq * t + phase) + noise * torch.randn(B, T, generator=g)
    return mu_law_encode(x.clamp(-1, 1), 16)


def n_steps(T: int, s: int) -> int:
    return -(-T // s)


# ---------------------------------------------------------------------------------------------------- configs


def test_paper_defaults_and_registry():
    for name, cls in [("lstm", LSTMModel), ("vrnn", VRNN), ("srnn", SRNN)]:
        c = config_for(name)
        assert (c.s, c.Dd, c.num_components, c.bits) == (64, 256, 10, 16)
        assert isinstance(build_model(name, s=2, Dd=4, mlp_layers=1, num_components=1, **(
            {"Dz": 2} if name in LATENT else {})), cls)
    assert config_for("lstm").num_layers == 1
    for name in LATENT:
        c = config_for(name)
        assert c.Dz == 256 and c.free_nats == 2.0 and c.free_nats_mode == "per_dim"
    assert config_for("srnn").residual_posterior is True
    model = build_model("vrnn")
    assert model.phi_dec[-1].out_features == 64 * 30 and model.transition.hidden_size == 256


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="s must be a positive integer"):
        LSTMConfig(s=0)
    with pytest.raises(ValueError, match="num_layers"):
        LSTMConfig(num_layers=0)
    with pytest.raises(ValueError, match="bits"):
        VRNNConfig(bits=12)
    with pytest.raises(ValueError, match="free_nats_mode"):
        SRNNConfig(free_nats_mode="per_frame")
    with pytest.raises(ValueError, match="free_nats must be"):
        VRNNConfig(free_nats=-1.0)
    with pytest.raises(ValueError, match="Dz"):
        SRNNConfig(Dz=0)
    with pytest.raises(TypeError, match="VRNNConfig"):
        VRNN(SRNNConfig())


# ---------------------------------------------------------------------------------------------------- Gaussian helpers


def test_gaussian_kl_is_non_negative_and_matches_torch():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(1000, generator=g) * 3, torch.randn(1000, generator=g) * 3
    sd_q, sd_p = torch.rand(1000, generator=g) * 3 + 1e-4, torch.rand(1000, generator=g) * 3 + 1e-4
    kl = gaussian_kl(mu_q, sd_q, mu_p, sd_p)
    torch.testing.assert_close(kl, kl_divergence(Normal(mu_q, sd_q), Normal(mu_p, sd_p)), rtol=1e-4, atol=1e-5)
    assert bool((kl >= 0).all())
    # q = p (and q within rounding of p): exactly zero / non-negative, no cancellation to negative values
    assert bool((gaussian_kl(mu_q, sd_q, mu_q, sd_q) == 0).all())
    near = gaussian_kl(mu_q, sd_q * (1 + 1e-7), mu_q, sd_q)
    assert bool((near >= 0).all())
    z = torch.randn(1000, generator=g)
    torch.testing.assert_close(gaussian_log_prob(z, mu_p, sd_p), Normal(mu_p, sd_p).log_prob(z), rtol=1e-4, atol=1e-4)


def test_free_nats_and_schedules():
    kl = torch.tensor([[0.1, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0]])  # [steps, Dz]
    # per_dim: each dimension floored at lambda / Dz
    torch.testing.assert_close(free_nats_kl(kl, 2.0, "per_dim"), torch.tensor([2.0, 1.0 + 3 * 0.5]))
    # per_step: the step's total floored at lambda
    torch.testing.assert_close(free_nats_kl(kl, 2.0, "per_step"), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(free_nats_kl(kl, 0.0), kl.sum(-1))
    with pytest.raises(ValueError, match="mode"):
        free_nats_kl(kl, 1.0, "per_frame")
    assert [kl_weight(s, 100) for s in (0, 50, 100, 1000)] == [0.0, 0.5, 1.0, 1.0]
    assert kl_weight(None, 100) == 1.0 and kl_weight(7, 0) == 1.0
    assert free_nats_at(0, 2.0, 100) == 2.0 and free_nats_at(50, 2.0, 100) == 2.0
    assert free_nats_at(75, 2.0, 100) == pytest.approx(1.0) and free_nats_at(100, 2.0, 100) == 0.0
    assert free_nats_at(10**6, 2.0, None) == 2.0 and free_nats_at(None, 2.0, 100) == 0.0


# ---------------------------------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("s", [1, 4])
def test_nll_shapes_finite_and_padding_has_no_effect(name, s):
    model = tiny(name, s=s).eval()
    B, T = 3, 22
    codes = sine_batch(B, T)
    lengths = torch.tensor([22, 13, 1])
    n = n_steps(T, s)
    kw = {}
    if name in LATENT:
        eps_long = torch.randn(B, n_steps(T + 9, s), model.config.Dz, generator=torch.Generator().manual_seed(1))
        kw = {"eps": eps_long[:, :n]}
    out = model(codes, lengths, **kw)
    assert isinstance(out, ModelOutput) and out.nll.shape == (B,) and bool(torch.isfinite(out.nll).all())
    assert out.frames.tolist() == lengths.tolist() and out.is_bound == (name in LATENT)
    # other padding values and more padding: same result
    other = codes.clone()
    other[1, 13:] = 0
    other[2, 1:] = 65535
    longer = torch.cat([other, torch.randint(0, 65536, (B, 9))], dim=1)
    out2 = model(other, lengths, **kw)
    out3 = model(longer, lengths, **({"eps": eps_long} if kw else {}))
    torch.testing.assert_close(out2.nll, out.nll)
    torch.testing.assert_close(out3.nll, out.nll, rtol=1e-5, atol=1e-3)
    if name in LATENT:  # the KL is small, so compare it tightly: the posterior must not see padding steps
        torch.testing.assert_close(out3.extras["kl_per_step"][:, :n], out.extras["kl_per_step"], rtol=1e-5, atol=1e-6)
    # a valid sample does matter
    changed = codes.clone()
    changed[1, 12] = (changed[1, 12] + 20000) % 65536
    assert not torch.allclose(model(changed, lengths, **kw).nll[1], out.nll[1])
    if name in LATENT:
        kl = out.kl["kl"]
        per_step, per_dim = out.extras["kl_per_step"], out.extras["kl_per_dim"]
        assert per_step.shape == (B, n) and per_dim.shape == (B, model.config.Dz)
        torch.testing.assert_close(per_step.sum(1), kl)
        torch.testing.assert_close(per_dim.sum(1), kl, rtol=1e-5, atol=1e-4)
        assert bool((per_step[1, n_steps(13, s):] == 0).all()) and bool((per_step[2, 1:] == 0).all())
        # negative ELBO = -log p(x|z) + KL
        torch.testing.assert_close(out.nll, -out.extras["log_px"] + kl)


@pytest.mark.parametrize("name", LATENT)
def test_kl_terms_are_non_negative(name):
    model = tiny(name, s=2).eval()
    codes = sine_batch(4, 40, seed=3)
    lengths = torch.tensor([40, 31, 17, 2])
    for seed in range(3):
        out = model(codes, lengths, generator=torch.Generator().manual_seed(seed))
        assert bool((out.extras["kl_per_step"] >= 0).all()) and bool((out.extras["kl_per_dim"] >= 0).all())
        assert bool((out.kl["kl"] > 0).all())  # a freshly initialised posterior differs from the prior


def test_srnn_backward_states_see_only_the_row_itself():
    """The smoothing state a_t of a row in a padded batch equals that of the row alone: the backward GRU starts at the
    row's own last frame, from zero."""
    model = tiny("srnn", s=3).eval()
    codes = sine_batch(3, 30, seed=2)
    lengths = torch.tensor([30, 16, 4])
    with torch.no_grad():
        batch = model.context(model.prepare(codes, lengths), segment_steps=4)
        for b, L in enumerate(lengths.tolist()):
            n = n_steps(L, 3)
            alone = model.context(model.prepare(codes[b:b + 1, :L], torch.tensor([L])), segment_steps=100)
            torch.testing.assert_close(batch["a"][b, :n], alone["a"][0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(batch["d"][b, :n], alone["d"][0], rtol=1e-5, atol=1e-6)
        # a_t does look ahead: changing the last frame of row 0 changes a at its first step, not d
        changed = codes.clone()
        changed[0, 27:] = (changed[0, 27:] + 30000) % 65536
        other = model.context(model.prepare(changed, lengths), segment_steps=4)
    assert not torch.allclose(other["a"][0, 0], batch["a"][0, 0])
    torch.testing.assert_close(other["d"][0, :9], batch["d"][0, :9])


def test_lstm_is_causal_over_frames():
    model = tiny("lstm", s=4).eval()
    codes = sine_batch(1, 40)
    base = model.logits(codes)
    assert base.shape == (1, model.distribution.num_params, 40)
    k = 5  # change frame k (samples 20 .. 23)
    changed = codes.clone()
    changed[0, 4 * k:4 * k + 4] = (changed[0, 4 * k:4 * k + 4] + 12345) % 65536
    params = model.logits(changed)
    # predictions of frames <= k do not see frame k; those of frames > k do
    torch.testing.assert_close(params[..., :4 * (k + 1)], base[..., :4 * (k + 1)])
    assert not torch.allclose(params[..., 4 * (k + 1):4 * (k + 2)], base[..., 4 * (k + 1):4 * (k + 2)])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("s,segment", [(1, 7), (3, 1), (3, 4), (4, 100)])
def test_segment_evaluation_with_carried_state_equals_whole(name, s, segment):
    model = tiny(name, s=s, seed=2).eval()
    B, T = 3, 45
    codes = sine_batch(B, T, seed=5)
    lengths = torch.tensor([45, 30, 8])
    kw = {}
    if name in LATENT:
        kw = {"eps": torch.randn(B, n_steps(T, s), model.config.Dz, generator=torch.Generator().manual_seed(4))}
    with torch.no_grad():
        whole = model(codes, lengths, **kw)
        parts = model.evaluate_long(codes, lengths, segment_steps=segment, **kw)
    torch.testing.assert_close(parts.nll, whole.nll, rtol=1e-5, atol=1e-3)
    if name in LATENT:
        torch.testing.assert_close(parts.extras["kl_per_step"], whole.extras["kl_per_step"], rtol=1e-4, atol=1e-4)
        # with other noise the one-sample ELBO does change: the equality above is not trivial
        other = model.evaluate_long(codes, lengths, segment_steps=segment, eps=torch.randn_like(kw["eps"]))
        assert not torch.allclose(other.nll, whole.nll)


@pytest.mark.parametrize("name", LATENT)
def test_importance_weighted_bound_is_tighter_than_the_elbo_on_average(name):
    model = tiny(name, s=4, Dz=8, seed=1).eval()
    B, T = 8, 96
    codes = sine_batch(B, T, seed=7)
    lengths = torch.full((B,), T)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([model(codes, lengths, generator=g).nll for _ in range(4)]).mean(0)  # analytic KL
        iw1 = torch.stack([model.iw_bound(codes, lengths, 1, generator=g) for _ in range(4)]).mean(0)
        iw10 = model.iw_bound(codes, lengths, 10, generator=g, segment_steps=5, chunk=4)
    assert iw10.shape == (B,) and bool(torch.isfinite(iw10).all())
    print(f"{name}: mean -ELBO {elbo.mean():.2f}, -L_1 {iw1.mean():.2f}, -L_10 {iw10.mean():.2f} nats")
    assert float(iw10.mean()) < float(elbo.mean()) and float(iw10.mean()) < float(iw1.mean())
    # the K = 1 bound estimates the same ELBO (Monte Carlo KL instead of analytic): close on average
    with torch.no_grad():
        kl = float(model(codes, lengths).kl["kl"].mean())
    assert abs(float(iw1.mean()) - float(elbo.mean())) < 0.5 * kl
    with pytest.raises(ValueError, match="K must be"):
        model.iw_bound(codes, lengths, 0)




IW_LENGTHS = [96, 96, 90, 81, 64, 50, 33, 9]  # rows of different lengths: padded steps must be masked everywhere


@pytest.mark.parametrize("name", LATENT)
def test_one_sample_log_ratio_is_unbiased_for_minus_the_analytic_kl(name):
    """For one posterior draw ``z_t = mu_q + sd_q eps_t``: ``forward`` reports ``-log p(x|z) + KL`` (analytic KL per
    step, at the drawn ``z_<t``) and ``iw_bound(K=1)`` is ``-log w = -log p(x|z) - sum_t [log p(z_t|.) -
    log q(z_t|.)]`` (checked term by term against :meth:`terms` with the same seed).  Their difference,
    ``-(log_ratio + KL)``, has expectation zero: given ``z_<t``, ``E[log p(z_t|.) - log q(z_t|.)] = -KL_t`` and by the
    tower rule ``E[log_ratio] = -E[KL]``.  The Monte Carlo mean over 120 draws is within 4 standard errors of 0, and
    the standard error is small enough to resolve a bias of a tenth of the KL."""
    model = tiny(name, s=4, Dz=8, seed=1).eval()
    B, T = 8, 96
    codes, lengths = sine_batch(B, T, seed=7), torch.tensor(IW_LENGTHS)
    n = n_steps(T, 4)
    diffs, kls = [], []
    with torch.no_grad():
        for r in range(120):
            out = model(codes, lengths, generator=seeded(r))
            iw1 = model.iw_bound(codes, lengths, 1, generator=seeded(r), segment_steps=n)  # one segment: same noise
            if r < 2:
                t = model.terms(codes, lengths, generator=seeded(r))
                torch.testing.assert_close(out.nll, -t.log_px + t.kl)
                torch.testing.assert_close(iw1, -(t.log_px + t.log_ratio), rtol=1e-6, atol=1e-3)
            diffs.append((out.nll.double() - iw1.double()).sum())
            kls.append(out.kl["kl"].double().sum())
    d, se = mean_se(diffs)
    kl, _ = mean_se(kls)
    print(f"{name}: E[-ELBO - (-L_1)] = {d:.3f} +- {se:.3f} nats ({d / se:.2f} se), analytic KL {kl:.2f} nats")
    assert se * math.sqrt(len(diffs)) > 1.0  # the Monte Carlo log-ratio is not the analytic KL draw by draw
    assert 4 * se < 0.1 * kl  # the test resolves a bias of a tenth of the KL
    assert abs(d) < 4 * se


@pytest.mark.parametrize("name", LATENT)
def test_iw_bound_combines_one_sample_weights_and_is_significantly_tighter_than_the_elbo(name):
    """``-L_K = -log (1/K) sum_k w_k`` of the ``K`` one-sample weights (exactly, with ``chunk=1``, which draws the same
    noise as ``K`` calls with ``K = 1``), and on average over seeded draws ``-L_16`` lies below both ``-L_1`` and the
    analytic-KL ``-ELBO`` by more than 3 standard errors of the difference (a bound that ignored ``K`` or averaged
    log-weights would fail)."""
    model = tiny(name, s=4, Dz=8, seed=1).eval()
    B, T, K = 8, 96, 16
    codes, lengths = sine_batch(B, T, seed=7), torch.tensor(IW_LENGTHS)
    check_iw_bound_against_elbo(model, codes, lengths, K, name, segment_steps=5)


# ---------------------------------------------------------------------------------------------------- objective


@pytest.mark.parametrize("name", LATENT)
def test_training_objective_applies_schedules_but_not_to_the_reported_elbo(name):
    model = tiny(name, s=4, free_nats=50.0, free_nats_steps=100, kl_warmup_steps=10, free_nats_mode="per_step")
    codes, lengths = sine_batch(2, 32), torch.tensor([32, 20])
    eps = torch.randn(2, 8, model.config.Dz, generator=torch.Generator().manual_seed(0))
    model.eval()
    reference = model(codes, lengths, eps=eps)
    assert reference.objective is None  # evaluation: loss() is the negative ELBO
    model.train()
    results = {}
    for step in (0, 5, 75, 10**6):
        model.set_train_step(step)
        out = model(codes, lengths, eps=eps)
        torch.testing.assert_close(out.nll, reference.nll)  # the reported bound never changes
        results[step] = out
    log_px = reference.extras["log_px"]
    steps_valid = torch.tensor([8, 5])
    torch.testing.assert_close(results[0].objective, -log_px)  # beta = 0
    # beta = 0.5 and free nats 50 per step (all steps below the floor)
    torch.testing.assert_close(results[5].objective, -log_px + 0.5 * 50.0 * steps_valid, rtol=1e-5, atol=1e-3)
    # beta = 1 and free nats half-annealed (cosine: 25 nats at step 75)
    expected = -log_px + torch.maximum(reference.extras["kl_per_step"], torch.tensor(25.0)).mul(
        (torch.arange(8)[None] < steps_valid[:, None]).float()).sum(1)
    torch.testing.assert_close(results[75].objective, expected, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(results[10**6].objective, reference.nll)  # after annealing: the ELBO itself
    out = results[5]
    assert float(out.loss().detach()) == pytest.approx(float(out.objective.detach().sum() / out.frames.sum()), rel=1e-6)
    model.set_train_step(None)
    torch.testing.assert_close(model(codes, lengths, eps=eps).objective, reference.nll)


# ---------------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("name", MODELS)
def test_sampling_shapes_range_and_reproducibility(name):
    model = tiny(name, s=4).eval()
    a = model.sample(10, batch_size=2, generator=torch.Generator().manual_seed(3))
    b = model.sample(10, batch_size=2, generator=torch.Generator().manual_seed(3))
    c = model.sample(10, batch_size=2, generator=torch.Generator().manual_seed(4))
    assert a.shape == (2, 10) and a.dtype == torch.int64
    assert int(a.min()) >= 0 and int(a.max()) < 2**16
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.sample(0).shape == (1, 0)
    assert model.sample(5, temperature=0.0).shape == (1, 5)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(-1)
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(4, batch_size=0)


def test_lstm_sampling_follows_the_model_conditionals():
    """With temperature 0 (mode of the most likely component) the LSTM's draws are its own argmax predictions: the
    forward pass on the generated codes reproduces the params the sampler used."""
    model = tiny("lstm", s=2).eval()
    x = model.sample(12, generator=torch.Generator().manual_seed(0), temperature=0.0)
    params = model.logits(x)
    again = model.distribution.sample(params, temperature=0.0)
    assert torch.equal(again, x)


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", MODELS)
def test_bad_inputs_name_the_argument(name):
    model = tiny(name)
    codes = sine_batch(2, 16)
    with pytest.raises(ValueError, match="codes must be an int64"):
        model(codes.float(), torch.tensor([16, 16]))
    with pytest.raises(ValueError, match="lengths must be a tensor of shape"):
        model(codes, torch.tensor([16]))
    with pytest.raises(ValueError, match="lengths must lie"):
        model(codes, torch.tensor([17, 16]))
    with pytest.raises(ValueError, match="codes must lie"):
        model(codes + 70000, torch.tensor([16, 16]))
    if name in LATENT:
        with pytest.raises(ValueError, match="eps must have shape"):
            model(codes, torch.tensor([16, 16]), eps=torch.zeros(2, 3, model.config.Dz))


# ---------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", MODELS)
def test_tiny_model_learns_a_sine_below_16_bpf(name):
    extra = {"Dz": 4, "free_nats": 0.5, "free_nats_steps": 30} if name in LATENT else {}
    model = tiny(name, s=4, Dd=16, num_components=2, **extra)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    B, T = 4, 128
    t = torch.arange(T, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)

    def batch():
        phase = torch.rand(B, 1, generator=g) * 2 * math.pi
        return mu_law_encode(0.5 * torch.sin(2 * math.pi * t / 32 + phase), 16), torch.full((B,), T)

    def held_out_bpf():
        model.eval()
        with torch.no_grad():
            out = model(*held_out, generator=torch.Generator().manual_seed(0)) if name in LATENT else model(*held_out)
        model.train()
        return float(out.nll.sum() / out.frames.sum()) / math.log(2)

    held_out = batch()
    before = held_out_bpf()
    for step in range(60):
        model.set_train_step(step)
        loss = model(*batch()).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_bpf()
    print(f"{name}: {before:.2f} -> {after:.2f} bpf")
    assert np.isfinite(after) and after < 15.0 and after < before - 2.0


def sine_utterance(uid: str, T: int, seed: int) -> Recording:
    """A noisy sine in int16, as an utterance."""
    rng = np.random.default_rng(seed)
    x = 8000 * np.sin(2 * np.pi * np.arange(T) * rng.uniform(0.01, 0.05)) + rng.normal(0, 500, T)
    return Recording(uid, np.clip(x, -32768, 32767).astype(np.int16))


def test_train_loop_drives_a_latent_model_and_tells_it_the_step(tmp_path):
    from wavelab.evaluate import evaluate
    from wavelab.train import TrainConfig, read_metrics, train

    utts = [sine_utterance(f"utt{i}", T, i) for i, T in enumerate([200, 257, 300])]
    cfg = TrainConfig(model="vrnn", model_overrides=dict(s=8, Dd=8, Dz=4, mlp_layers=1, num_components=2),
                      segment_length=64, batch_size=2, lr=1e-2, max_steps=3, seed=0, device="cpu", log_every=1,
                      checkpoint_every=None, checkpoint_minutes=None, run_dir=str(tmp_path / "run"))
    summary = train(cfg, utterances=utts, progress=False)
    assert summary.steps == 3 and summary.model.train_step == 2
    recs = read_metrics(tmp_path / "run")
    assert len(recs) == 3 and all(r["kl_kl"] >= 0 and math.isfinite(r["bpf"]) for r in recs)
    model = summary.model
    ev = evaluate(model, utts, max_frames=400)  # evaluate_long in segments of config.eval_segment_steps
    assert ev.is_bound and ev.kl["kl"].shape == (3,) and bool((ev.kl["kl"] >= 0).all())
    iw = evaluate(model, utts, max_frames=400, iw_samples=4)
    assert iw.is_bound and np.isfinite(iw.bpf.weighted)
    with pytest.raises(ValueError, match="iw_bound"):
        evaluate(tiny("lstm"), utts, iw_samples=4)


def test_lstm_with_three_layers_carries_every_layer_state():
    model = tiny("lstm", s=3, num_layers=3).eval()
    assert model.lstm.num_layers == 3 and model.default_state(2)[0].shape == (3, 2, 12)
    codes, lengths = sine_batch(2, 40, seed=9), torch.tensor([40, 25])
    with torch.no_grad():
        torch.testing.assert_close(model.evaluate_long(codes, lengths, segment_steps=2).nll,
                                   model(codes, lengths).nll, rtol=1e-5, atol=1e-3)
