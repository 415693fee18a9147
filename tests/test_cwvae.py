"""Tests of the Clockwork VAE (wavelab.models.cwvae): clocks and copied states, top-down inference, the ELBO and its
KL terms, exact segment evaluation with carried state, padding, sampling, posterior latent averages, the training
objective and a short training run on a sine."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

import wavelab.models.cwvae  # noqa: F401  (registers "cwvae")
from tests.helpers import check_iw_bound_against_elbo, mean_se, seeded
from wavelab.audio import mu_law_encode
from wavelab.data import Recording
from wavelab.models import build_model, config_for
from wavelab.models.cwvae import CWVAE, CWVAEConfig, stride_factors

torch.set_num_threads(1)

TINY = dict(s1=4, c=2, L=2, Dz=4, Dh=8, enc_blocks=1, dec_blocks=1, kernel_size=3, mlp_layers=2, num_components=2)


def tiny(seed: int = 0, **overrides) -> CWVAE:
    torch.manual_seed(seed)
    return build_model("cwvae", **{**TINY, **overrides}).eval()


def sine_batch(B: int, T: int, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)
    freq = torch.rand(B, 1, generator=g) * 0.08 + 0.01
    phase = torch.rand(B, 1, generator=g) * 2 * math.pi
    x = 0.4 * torch.sin(2 * math.pi * freq * t + phase) + noise * torch.randn(B, T, generator=g)
    return mu_law_encode(x.clamp(-1, 1), 16)


def noise_for(model: CWVAE, B: int, T: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, -(-T // s), model.config.Dz, generator=g) for s in model.strides]


# ---------------------------------------------------------------------------------------------------- config


def test_paper_defaults_strides_and_registry():
    c = config_for("cwvae")
    assert (c.s1, c.c, c.L, c.Dz, c.Dh, c.num_components, c.bits) == (64, 8, 2, 128, 192, 10, 16)
    assert (c.kl_warmup_steps, c.free_nats_steps, c.precision_posterior) == (150_000, 300_000, True)
    assert c.strides == [64, 512]
    assert CWVAEConfig(L=3).strides == [64, 512, 4096] and CWVAEConfig(s1=256, L=3).strides == [256, 2048, 16384]
    assert stride_factors(64) == [4, 4, 4] and stride_factors(8) == [4, 2] and stride_factors(1) == []
    assert math.prod(stride_factors(96)) == 96
    model = build_model("cwvae", **CWVAEConfig.quick_overrides())
    assert isinstance(model, CWVAE) and model.bits == 16 and model.strides == [4, 8]
    assert model.halo % model.strides[-1] == 0 and model.halo >= model.encoder.margin > 0


@pytest.mark.parametrize("field,value", [
    ("s1", 0), ("s1", 10), ("c", 1), ("c", 5), ("L", 0), ("Dz", 0), ("Dh", -1), ("kernel_size", 4),
    ("enc_blocks", -1), ("bits", 12), ("min_sd", 0.0), ("free_nats", -1.0), ("free_nats_mode", "per_layer"),
    ("free_nats_steps", 0), ("kl_warmup_steps", -5), ("eval_segment_steps", 0), ("precision_posterior", 1),
])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        CWVAEConfig(**{field: value})


def test_input_validation():
    model = tiny()
    codes = sine_batch(2, 20)
    with pytest.raises(ValueError, match="codes"):
        model(codes.float(), torch.tensor([20, 20]))
    with pytest.raises(ValueError, match="codes"):
        model(codes + 70000, torch.tensor([20, 20]))
    with pytest.raises(ValueError, match="lengths"):
        model(codes, torch.tensor([20]))
    with pytest.raises(ValueError, match="lengths"):
        model(codes, torch.tensor([21, 3]))
    with pytest.raises(ValueError, match="eps"):
        model(codes, torch.tensor([20, 20]), eps=[torch.zeros(2, 5, 4)])
    with pytest.raises(ValueError, match="segment_steps"):
        model.evaluate_long(codes, torch.tensor([20, 20]), segment_steps=-1)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(-1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(8, temperature=-1.0)
    with pytest.raises(ValueError, match="num_samples"):
        model.posterior_latents(codes, torch.tensor([20, 20]), num_samples=0)
    with pytest.raises(ValueError, match="K"):
        model.iw_bound(codes, torch.tensor([20, 20]), K=0)
    with pytest.raises(ValueError, match="T"):
        model.update_times(-1)


# ---------------------------------------------------------------------------------------------------- clocks


def test_update_times_follow_the_strides():
    model = tiny(L=3)
    times = model.update_times(70)
    assert [t.tolist() for t in times] == [list(range(0, 70, 4)), list(range(0, 70, 8)), list(range(0, 70, 16))]
    states = model.infer(sine_batch(1, 70), torch.tensor([70]))
    assert [st.z.shape[1] for st in states] == [len(t) for t in times] == [18, 9, 5]


def test_context_handed_down_is_copied_between_updates():
    model = tiny(L=3)
    B, T = 2, 61
    codes, lengths = sine_batch(B, T, seed=2), torch.tensor([61, 37])
    states = model.infer(codes, lengths, eps=noise_for(model, B, T))
    c = model.config.c
    assert states[-1].context is None
    for lower, upper in zip(states[:-1], states[1:]):
        n = lower.z.shape[1]
        up = torch.cat([upper.h, upper.z], dim=-1)
        # the context of lower step t is the upper state of the step covering it, floor(t / c)
        expected = up[:, torch.arange(n) // c]
        torch.testing.assert_close(lower.context, expected, rtol=0, atol=0)
        # piecewise constant over c lower steps and changing at the upper layer's update times
        for t in range(n):
            torch.testing.assert_close(lower.context[:, t], lower.context[:, c * (t // c)], rtol=0, atol=0)
        assert not torch.equal(lower.context[:, 0], lower.context[:, c])


def test_frame_local_encoder_changes_only_from_the_changed_window_on():
    """With no residual blocks the encoder sees each step's own window only: changing samples inside top-layer
    window k leaves every latent and KL of the earlier windows unchanged and changes window k."""
    model = tiny(enc_blocks=0, L=2)
    assert model.encoder.margin == 0 and model.halo == 0
    T, sL, k = 64, model.strides[-1], 3
    codes = sine_batch(1, T, seed=4)
    changed = codes.clone()
    changed[0, k * sL + 3] = (changed[0, k * sL + 3] + 20000) % 65536
    eps = noise_for(model, 1, T)
    a, b = model.infer(codes, torch.tensor([T]), eps=eps), model.infer(changed, torch.tensor([T]), eps=eps)
    oa, ob = model(codes, torch.tensor([T]), eps=eps), model(changed, torch.tensor([T]), eps=eps)
    for l, s in enumerate(model.strides):
        before = k * sL // s  # steps of layer l before window k
        torch.testing.assert_close(a[l].z[:, :before], b[l].z[:, :before], rtol=0, atol=0)
        torch.testing.assert_close(oa.extras[f"kl_per_step_z{l + 1}"][:, :before],
                                   ob.extras[f"kl_per_step_z{l + 1}"][:, :before], rtol=0, atol=0)
        assert not torch.allclose(a[l].z[:, before], b[l].z[:, before])


def test_encoder_lookahead_is_bounded_by_its_margin():
    """With residual blocks the encoder looks ``margin`` samples around a step's window; latents of windows that end
    more than ``margin`` samples before a change stay unchanged, the change's own step does not."""
    model = tiny(L=2, enc_blocks=2)
    T, sL = 160, model.strides[-1]
    p = 131
    codes = sine_batch(1, T, seed=5)
    changed = codes.clone()
    changed[0, p] = (changed[0, p] + 30000) % 65536
    eps = noise_for(model, 1, T)
    a, b = model.infer(codes, torch.tensor([T]), eps=eps), model.infer(changed, torch.tensor([T]), eps=eps)
    safe = (p - model.encoder.margin) // sL  # top windows 0 .. safe - 1 end before p - margin
    assert safe >= 1
    for l, s in enumerate(model.strides):
        torch.testing.assert_close(a[l].z[:, :safe * sL // s], b[l].z[:, :safe * sL // s], rtol=0, atol=0)
        assert not torch.allclose(a[l].mu_q[:, p // s], b[l].mu_q[:, p // s])


# ---------------------------------------------------------------------------------------------------- the bound


def test_elbo_decomposes_into_reconstruction_and_per_layer_kl():
    model = tiny(L=3)
    B, T = 3, 53
    codes, lengths = sine_batch(B, T, seed=6), torch.tensor([53, 30, 7])
    eps = noise_for(model, B, T)
    out = model(codes, lengths, eps=eps)
    assert out.is_bound and out.objective is None and torch.equal(out.frames, lengths)
    assert sorted(out.kl) == ["kl_z1", "kl_z2", "kl_z3"]
    kl_sum = sum(out.kl.values())
    torch.testing.assert_close(out.nll, -out.extras["log_px"] + kl_sum)
    assert bool((out.extras["log_px"] < 0).all())
    states = model.infer(codes, lengths, eps=eps)
    for l, s in enumerate(model.strides):
        per_step = out.extras[f"kl_per_step_z{l + 1}"]
        assert per_step.shape == (B, -(-T // s))
        assert bool((per_step >= 0).all()) and bool((out.kl[f"kl_z{l + 1}"] >= 0).all())
        torch.testing.assert_close(per_step.sum(1), out.kl[f"kl_z{l + 1}"])
        steps = -(-lengths // s)
        valid = torch.arange(per_step.shape[1])[None, :] < steps[:, None]
        assert bool((per_step[~valid] == 0).all()) and bool((per_step[valid] > 0).all())
        st = states[l]  # an independent KL from torch.distributions on the same posterior sample's parameters
        ref = kl_divergence(Normal(st.mu_q, st.sd_q), Normal(st.mu_p, st.sd_p)).sum(-1) * valid
        torch.testing.assert_close(per_step, ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(st.z, st.mu_q + st.sd_q * eps[l])


@pytest.mark.parametrize("overrides", [{}, {"L": 3, "enc_blocks": 2, "kernel_size": 5}, {"L": 1}])
def test_segment_evaluation_equals_whole_utterance(overrides):
    model = tiny(**overrides)
    B, T = 3, 83  # not a multiple of any stride
    codes, lengths = sine_batch(B, T, seed=7), torch.tensor([83, 50, 13])
    eps = noise_for(model, B, T)
    whole = model(codes, lengths, eps=eps)
    for steps in (1, 2, 3, 1000):
        seg = model.evaluate_long(codes, lengths, segment_steps=steps, eps=eps)
        torch.testing.assert_close(seg.nll, whole.nll, rtol=2e-6, atol=1e-3)
        for k in whole.kl:
            torch.testing.assert_close(seg.kl[k], whole.kl[k], rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(seg.extras[f"kl_per_step_{k[3:]}"], whole.extras[f"kl_per_step_{k[3:]}"],
                                       rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"kernel_size": 5}, {"L": 3}])
def test_segment_evaluation_needs_the_full_encoder_halo(overrides, monkeypatch):
    """The encoder looks ``margin`` samples beyond every step's window, so segments must be encoded with ``halo``
    samples of context on both sides.  With the model's halo (the smallest multiple of ``s_L`` that covers the margin)
    segment evaluation equals the whole pass; with a smaller one (0, or ``halo - s_L``, still aligned to the grid)
    the result changes far beyond float rounding.  The change is local: steps of the first segment whose encoder reach
    lies inside the samples the shortened window still shows are unchanged."""
    model = tiny(**overrides)
    sL, margin, halo, L = model.strides[-1], model.encoder.margin, model.halo, model.config.L
    assert margin > 0 and halo % sL == 0 and halo - sL < margin <= halo
    B, T = 3, 300  # many segments that lie farther than the halo from both ends
    codes, lengths = sine_batch(B, T, seed=11), torch.tensor([300, 211, 97])
    eps = noise_for(model, B, T)

    def kl_steps(out):
        return [out.extras[f"kl_per_step_z{l + 1}"] for l in range(L)]

    margins = []
    with torch.no_grad():
        whole = model(codes, lengths, eps=eps)
        for steps in (1, 3, 7):
            seg = model.evaluate_long(codes, lengths, segment_steps=steps, eps=eps)
            torch.testing.assert_close(seg.nll, whole.nll, rtol=2e-6, atol=1e-3)
            for a, b in zip(kl_steps(seg), kl_steps(whole)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
            for short in (0, halo - sL):
                monkeypatch.setattr(model, "halo", short)  # _segments reads the window from model.halo
                bad = model.evaluate_long(codes, lengths, segment_steps=steps, eps=eps)
                monkeypatch.undo()
                assert model.halo == halo
                d_kl = max(float((a - b).abs().max()) for a, b in zip(kl_steps(bad), kl_steps(whole)))
                d_nll = float((bad.nll - whole.nll).abs().max())
                margins.append((steps, short, d_kl, d_nll))
                assert d_kl > 100 * 1e-5  # a hundred times the tolerance of the per-step KL equality above
                if short == 0:  # without any halo even the bound itself moves beyond its float tolerance
                    assert not torch.allclose(bad.nll, whole.nll, rtol=2e-6, atol=1e-3)
                # top-layer steps u of segment 0 with (u + 1) s_L + margin <= steps s_L + short saw all they need
                safe = (steps * sL + short - margin) // sL
                for a, b, s in zip(kl_steps(bad), kl_steps(whole), model.strides):
                    n = max(safe, 0) * sL // s
                    torch.testing.assert_close(a[:, :n], b[:, :n], rtol=1e-5, atol=1e-5)
    print(f"cwvae {overrides} margin {margin} halo {halo}: (segment steps, halo, max |d kl_step|, max |d nll|) "
          + ", ".join(f"({s}, {h}, {k:.1e}, {n:.1e})" for s, h, k, n in margins))




def test_one_sample_log_ratio_is_unbiased_for_minus_the_analytic_kl():
    """For one posterior draw ``z`` (all layers), ``forward`` reports ``-log p(x|z) + sum_l KL_l`` (analytic KL at the
    drawn upper layers) and ``iw_bound(K=1)`` is ``-log p(x|z) - [log p(z) - log q(z|x)]``; with the same generator
    seed and one segment both use the same ``z``, so their difference is ``-([log p(z) - log q(z|x)] + sum_l KL_l)``.
    Its expectation is zero: given all that was drawn before ``z^l_t``, ``E[log p(z^l_t|.) - log q(z^l_t|.)] =
    -KL^l_t``, and by the tower rule ``E[log p(z) - log q(z|x)] = -E[sum_l KL_l]``.  Padded steps must be masked in
    both (rows of different lengths)."""
    model = tiny()
    B, T = 4, 96
    codes, lengths = sine_batch(B, T, seed=12), torch.tensor([96, 80, 50, 33])
    diffs, kls = [], []
    with torch.no_grad():
        for r in range(60):
            out = model(codes, lengths, generator=seeded(r))
            iw1 = model.iw_bound(codes, lengths, 1, generator=seeded(r), segment_steps=10 ** 6)
            diffs.append((out.nll.double() - iw1.double()).sum())
            kls.append(sum(out.kl.values()).double().sum())
    d, se = mean_se(diffs)
    kl, _ = mean_se(kls)
    sd = se * math.sqrt(len(diffs))
    print(f"cwvae: E[-ELBO - (-L_1)] = {d:.3f} +- {se:.3f} nats ({d / se:.2f} se), analytic KL {kl:.2f} nats")
    assert sd > 1.0  # the Monte Carlo log-ratio is not the analytic KL draw by draw
    assert 4 * se < 0.1 * kl  # the test resolves a bias of a tenth of the KL
    assert abs(d) < 4 * se


def test_iw_bound_combines_one_sample_weights_and_is_significantly_tighter_than_the_elbo():
    """``-L_K = -log (1/K) sum_k w_k`` of the ``K`` one-sample weights (checked exactly with ``chunk=1``, which draws
    the same noise as ``K`` calls with ``K = 1``), and on average over seeded draws ``-L_16`` lies below both ``-L_1``
    and the analytic-KL ``-ELBO`` by more than 3 standard errors of the difference."""
    model = tiny()
    B, T, K = 4, 96, 16
    codes, lengths = sine_batch(B, T, seed=12), torch.tensor([96, 80, 50, 33])
    check_iw_bound_against_elbo(model, codes, lengths, K, "cwvae")

def test_padding_content_and_batch_composition_do_not_matter():
    model = tiny(L=2, enc_blocks=2)
    T = 57
    codes = sine_batch(3, T, seed=8)
    lengths = torch.tensor([57, 29, 42])
    eps = noise_for(model, 3, T)
    out = model(codes, lengths, eps=eps)
    garbage = codes.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = torch.randint(0, 65536, (T - n,))
    torch.testing.assert_close(model(garbage, lengths, eps=eps).nll, out.nll, rtol=0, atol=0)
    for b, n in enumerate(lengths.tolist()):  # each row alone, cut to its length
        alone = model(codes[b:b + 1, :n], lengths[b:b + 1],
                      eps=[e[b:b + 1, :-(-n // s)] for e, s in zip(eps, model.strides)])
        torch.testing.assert_close(alone.nll, out.nll[b:b + 1], rtol=2e-6, atol=1e-3)
        torch.testing.assert_close(alone.kl["kl_z2"], out.kl["kl_z2"][b:b + 1], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- sampling


def test_sample_shapes_reproducibility_and_temperature():
    model = tiny(L=2)
    x = model.sample(37, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 37) and x.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) < 2 ** 16
    y = model.sample(37, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, y)
    assert not torch.equal(x, model.sample(37, batch_size=3, generator=torch.Generator().manual_seed(1)))
    cold = [model.sample(21, batch_size=2, temperature=0.0, generator=torch.Generator().manual_seed(s))
            for s in (0, 1)]
    assert torch.equal(cold[0], cold[1]) and torch.equal(cold[0][0], cold[0][1])
    assert model.sample(0).shape == (1, 0)
    assert model.sample(5, progress=True).shape == (1, 5)


# ---------------------------------------------------------------------------------------------------- latents


def test_posterior_latents_shapes_and_monte_carlo_average():
    model = tiny(L=2)
    B, T = 2, 45
    codes, lengths = sine_batch(B, T, seed=9), torch.tensor([45, 20])
    lat = model.posterior_latents(codes, lengths, num_samples=3, generator=torch.Generator().manual_seed(0))
    assert [tuple(z.shape) for z in lat] == [(B, 12, 4), (B, 6, 4)]
    assert bool((lat[0][1, 5:] == 0).all()) and bool((lat[1][1, 3:] == 0).all())
    # one sample per pass equals the sample that infer draws from the same generator state
    one = model.posterior_latents(codes, lengths, num_samples=1, generator=torch.Generator().manual_seed(3))
    st = model.infer(codes, lengths, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(one[0][0], st[0].z[0].detach())
    # the average of many samples concentrates: its spread over seeds shrinks like 1 / num_samples
    def spread(n):
        runs = torch.stack([model.posterior_latents(codes, lengths, num_samples=n, chunk=16,
                                                    generator=torch.Generator().manual_seed(s))[0]
                            for s in range(6)])
        return float(runs.var(0).mean())

    assert spread(64) < spread(2) / 8
    # the top layer's first step has no sampled past: its average tends to the posterior mean mu_q
    many = model.posterior_latents(codes, lengths, num_samples=400, chunk=200,
                                   generator=torch.Generator().manual_seed(1))
    tol = 5 * float(st[1].sd_q[:, 0].max().detach()) / math.sqrt(400)
    torch.testing.assert_close(many[1][:, 0], st[1].mu_q[:, 0].detach(), rtol=0, atol=tol)


# ---------------------------------------------------------------------------------------------------- training


def test_training_objective_warm_up_and_scaled_free_nats():
    B, T = 2, 40
    codes, lengths = sine_batch(B, T, seed=10), torch.tensor([40, 27])
    model = tiny(L=2, kl_warmup_steps=10, free_nats=0.0).train()
    eps = noise_for(model, B, T)
    model.set_train_step(None)
    out = model(codes, lengths, eps=eps)
    torch.testing.assert_close(out.objective, out.nll)  # no schedule: the plain negative ELBO
    model.set_train_step(0)
    out = model(codes, lengths, eps=eps)
    torch.testing.assert_close(out.objective, -out.extras["log_px"])  # beta = 0
    model.set_train_step(5)
    out = model(codes, lengths, eps=eps)
    torch.testing.assert_close(out.objective, -out.extras["log_px"] + 0.5 * sum(out.kl.values()))
    # a free-nats floor far above the KL: every valid step of layer l costs free_nats * s_l / s1
    big = tiny(L=2, kl_warmup_steps=0, free_nats=1000.0, free_nats_steps=None).train()
    big.set_train_step(3)
    out = big(codes, lengths, eps=eps)
    floor = sum(1000.0 * s / big.strides[0] * (-(-lengths // s)).float() for s in big.strides)
    torch.testing.assert_close(out.objective, -out.extras["log_px"] + floor)
    big.eval()
    assert big(codes, lengths, eps=eps).objective is None


def test_short_training_run_on_a_sine_beats_uniform_by_far():
    model = tiny(seed=0, L=2, Dz=4, Dh=16, free_nats=0.5, free_nats_steps=40, kl_warmup_steps=0).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    B, T = 4, 128
    t = torch.arange(T, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)

    def batch():
        phase = torch.rand(B, 1, generator=g) * 2 * math.pi
        return mu_law_encode(0.5 * torch.sin(2 * math.pi * t / 32 + phase), 16), torch.full((B,), T)

    held_out = batch()

    def held_out_bpf():
        model.eval()
        with torch.no_grad():
            out = model(*held_out, generator=torch.Generator().manual_seed(0))
        model.train()
        return float(out.nll.sum() / out.frames.sum()) / math.log(2)

    before = held_out_bpf()
    for step in range(60):
        model.set_train_step(step)
        loss = model(*batch()).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_bpf()
    print(f"cwvae: {before:.2f} -> {after:.2f} bpf")
    assert np.isfinite(after) and after < 14.5 and after < before - 2.5


def test_train_loop_and_evaluate_drive_the_model(tmp_path):
    from wavelab.evaluate import evaluate
    from wavelab.train import TrainConfig, train

    rng = np.random.default_rng(0)
    utts = [Recording(f"u{i}", np.clip(8000 * np.sin(0.2 * np.arange(n)) + rng.normal(0, 300, n), -32768,
                                          32767).astype(np.int16)) for i, n in enumerate([90, 131, 160])]
    cfg = TrainConfig(model="cwvae", model_overrides=dict(TINY), segment_length=64, batch_size=2, lr=1e-2,
                      max_steps=2, seed=0, device="cpu", log_every=1, checkpoint_every=None,
                      checkpoint_minutes=None, run_dir=str(tmp_path / "run"))
    summary = train(cfg, utterances=utts, progress=False)
    assert summary.steps == 2 and summary.model.train_step == 1
    ev = evaluate(summary.model, utts, max_frames=400)  # evaluate_long in segments
    assert ev.is_bound and set(ev.kl) == {"kl_z1", "kl_z2"} and all(bool((v >= 0).all()) for v in ev.kl.values())
    iw = summary.model.iw_bound(utts[0].codes(16)[None], torch.tensor([90]), K=4)
    assert iw.shape == (1,) and bool(torch.isfinite(iw).all())
