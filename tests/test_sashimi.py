"""Tests of wavelab.models.sashimi: recurrent generation reproduces the convolution mode, strict causality, likelihood
bookkeeping (pmf, padding), sampling, a short training run, config validation."""

import math

import numpy as np
import pytest
import torch

import wavelab.models.sashimi  # noqa: F401  (registers "sashimi")
from wavelab.audio import mu_law_encode
from wavelab.models import build_model, config_for
from wavelab.models.sashimi import SaShiMi, SaShiMiConfig

torch.set_num_threads(1)


def tiny(head="categorical", layer="s4", seed=0, **overrides) -> SaShiMi:
    fields = dict(d_model=8, n_layers=1, d_state=4, pool=(2, 3), l_max=24, head=head, layer=layer, num_components=3)
    fields.update(overrides)
    torch.manual_seed(seed)
    return SaShiMi(SaShiMiConfig(**fields))


def test_paper_config():
    config = config_for("sashimi")
    assert (config.d_model, config.n_layers, config.pool, config.expand) == (64, 8, (4, 4), 2)
    assert (config.d_state, config.ff_expand, config.layer, config.head, config.bits) == (64, 2, "s4", "categorical", 8)
    assert config.dropout == 0.0 and config.total_pool == 16
    assert config_for("sashimi", head="dmol").bits == 16
    model = build_model("sashimi")
    assert isinstance(model, SaShiMi) and model.head.out_features == 256
    # three levels: 64 channels at 16 kHz, 128 at 4 kHz, 256 at 1 kHz, 8 S4 layers each
    assert [stage.s4_blocks[0].s4.H for stage in model.up_stages] == [64, 128]
    assert model.center.s4_blocks[0].s4.H == 256 and len(model.center.s4_blocks) == 8
    assert [stage.s4_blocks[0].s4.l_max for stage in model.up_stages] == [16000, 4000]
    assert model.center.s4_blocks[0].s4.l_max == 1000
    n = sum(p.numel() for p in model.parameters())
    print(f"SaShiMi paper config: {n:,} parameters")  # the paper reports 4.1M for its SC09 model
    assert 3.5e6 < n < 5.5e6


def test_config_validation():
    with pytest.raises(ValueError, match="bits must be 8"):
        SaShiMiConfig(head="categorical", bits=16)
    with pytest.raises(ValueError, match="bits must be 16"):
        SaShiMiConfig(head="dmol", bits=8)
    with pytest.raises(ValueError, match="head"):
        SaShiMiConfig(head="gaussian")
    with pytest.raises(ValueError, match="layer"):
        SaShiMiConfig(layer="s5")
    with pytest.raises(ValueError, match="l_max"):
        SaShiMiConfig(l_max=1001)
    with pytest.raises(ValueError, match="d_state"):
        SaShiMiConfig(d_state=7)
    with pytest.raises(ValueError, match="pool"):
        SaShiMiConfig(pool=(4, 0))
    with pytest.raises(ValueError, match="d_model"):
        SaShiMiConfig(d_model=0)
    with pytest.raises(ValueError, match="dropout"):
        SaShiMiConfig(dropout=1.0)
    assert SaShiMiConfig(pool=[2, 2], l_max=8).pool == (2, 2)
    quick = config_for("sashimi", **SaShiMiConfig.quick_overrides())
    assert quick.d_model < 64 and quick.l_max % quick.total_pool == 0


@pytest.mark.parametrize("head,layer", [("categorical", "s4"), ("dmol", "s4"), ("categorical", "s4d"), ("dmol", "s4d")])
def test_recurrent_steps_reproduce_the_convolution_mode(head, layer):
    model = tiny(head, layer).double()
    T = 41  # not a multiple of prod(pool) = 6, and longer than l_max = 24
    codes = torch.randint(0, 2**model.bits, (2, T))
    full = model.logits(codes)
    assert full.shape == (2, model.distribution.num_params, T)
    state = model.default_state(2)
    x, steps = model.silence_block(2), []
    for t in range(T):
        params, state = model.step(x, state)
        steps.append(params)
        x = codes[:, t:t + 1]
    assert state.t == T
    torch.testing.assert_close(torch.cat(steps, -1), full, rtol=1e-9, atol=1e-9)


def test_recurrent_steps_match_in_float32_with_the_paper_pooling():
    model = tiny("dmol", pool=(4, 4), l_max=64, d_state=16)
    T = 70
    codes = torch.randint(0, 2**16, (1, T))
    full = model.logits(codes).detach()
    state, x, steps = model.default_state(1), model.silence_block(1), []
    for t in range(T):
        params, state = model.step(x, state)
        steps.append(params)
        x = codes[:, t:t + 1]
    torch.testing.assert_close(torch.cat(steps, -1), full, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("head", ["categorical", "dmol"])
def test_prediction_at_t_depends_only_on_earlier_samples(head):
    model = tiny(head).double()
    codes = torch.randint(0, 2**model.bits, (1, 36))
    base = model.logits(codes)
    for t in (0, 5, 6, 17, 35):  # window edges of both pooling levels included
        changed = codes.clone()
        changed[:, t] = (changed[:, t] + 97) % 2**model.bits
        out = model.logits(changed)
        torch.testing.assert_close(out[:, :, : t + 1], base[:, :, : t + 1], rtol=0, atol=1e-12)
        if t + 1 < codes.shape[1]:
            assert not torch.allclose(out[:, :, t + 1], base[:, :, t + 1])


def test_categorical_pmf_from_the_nll_sums_to_one():
    model = tiny("categorical").double()
    prefix = torch.randint(0, 256, (1, 13))
    rows = torch.cat([prefix.expand(256, -1), torch.arange(256)[:, None]], dim=1)  # every value of x_13
    lengths = torch.full((256,), 14)
    with torch.no_grad():
        nll_full = model(rows, lengths).nll
        nll_prefix = model(rows, torch.full((256,), 13)).nll
    p = torch.exp(nll_prefix - nll_full)  # p(x_13 = v | x_<13)
    assert abs(p.sum().item() - 1.0) < 1e-4  # the categorical log-probs are float32
    assert p.max() < 0.5


@pytest.mark.parametrize("head", ["categorical", "dmol"])
def test_nll_padding_and_lengths(head):
    model = tiny(head)
    codes = torch.randint(0, 2**model.bits, (3, 30))
    lengths = torch.tensor([30, 17, 0])
    out = model(codes, lengths)
    assert out.nll.shape == (3,) and not out.is_bound and torch.equal(out.frames, lengths)
    assert out.nll[2] == 0 and (out.nll[:2] > 0).all()
    repadded = codes.clone()
    repadded[1, 17:] = torch.randint(0, 2**model.bits, (13,))
    torch.testing.assert_close(model(repadded, lengths).nll, out.nll)
    torch.testing.assert_close(model(codes[1:2, :17], torch.tensor([17])).nll, out.nll[1:2])
    log_p = model.distribution.log_prob(model.logits(codes), codes)
    torch.testing.assert_close(out.nll[0], -log_p[0].sum())
    torch.testing.assert_close(out.loss(), out.nll.sum() / 47)


def test_bad_input_is_rejected():
    model = tiny()
    codes = torch.randint(0, 256, (2, 10))
    with pytest.raises(ValueError, match="int64"):
        model(codes.float(), torch.tensor([10, 10]))
    with pytest.raises(ValueError, match="must lie in"):
        model(codes + 256, torch.tensor([10, 10]))
    with pytest.raises(ValueError, match="lengths"):
        model(codes, torch.tensor([10, 11]))
    state = model.default_state(2)
    with pytest.raises(ValueError, match="codes_prev"):
        model.step(torch.zeros(3, 1, dtype=torch.int64), state)
    with pytest.raises(ValueError, match="codes_prev"):
        model.step(torch.zeros(2, dtype=torch.int64), state)
    with pytest.raises(ValueError, match="codes_prev"):
        model.step(torch.full((2, 1), 300), state)
    with pytest.raises(ValueError, match="batch_size"):
        model.default_state(0)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(-1)


@pytest.mark.parametrize("head", ["categorical", "dmol"])
def test_sampling_shapes_range_reproducibility_and_recompute(head):
    model = tiny(head, seed=1).double()
    fast = model.sample(25, batch_size=2, generator=torch.Generator().manual_seed(5))
    assert fast.shape == (2, 25) and fast.dtype == torch.int64
    assert fast.min() >= 0 and fast.max() < 2**model.bits
    again = model.sample(25, batch_size=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(fast, again)
    assert not torch.equal(fast, model.sample(25, batch_size=2, generator=torch.Generator().manual_seed(6)))
    assert not torch.equal(fast[0], fast[1])
    slow = model.sample_recompute(25, batch_size=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(fast, slow)  # recurrent mode and convolution mode draw the same codes


@pytest.mark.parametrize("head,steps,limit", [("categorical", 80, 4.0), ("dmol", 150, 13.0)])
def test_short_training_on_a_sine_beats_uniform(head, steps, limit):
    t = np.arange(480) / 16000.0
    bits = 8 if head == "categorical" else 16
    codes = mu_law_encode(torch.tensor(0.5 * np.sin(2 * math.pi * 440.0 * t)), bits=bits).unsqueeze(0)
    lengths = torch.tensor([codes.shape[1]])
    model = tiny(head, d_model=16, d_state=8, pool=(4, 4), l_max=480)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(codes, lengths).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        bpf = model(codes, lengths).loss().item() / math.log(2)
    print(f"{head}: {bpf:.2f} bits per sample after {steps} steps (uniform: {bits})")
    assert bpf < limit
