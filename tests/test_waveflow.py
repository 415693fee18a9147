"""Tests of wavelab.models.waveflow: squeeze layout, invertibility (cached and naive row-by-row inverse), exact
log-determinants, the autoregressive dependency structure (and the WaveNet limit h = n), padding invariance, the
dequantization bound, a short training run, sampling and config errors."""

import math

import pytest
import torch

import wavelab.models.waveflow  # noqa: F401  (registers "waveflow" and "waveglow")
from wavelab.audio import bin_half_width, codes_to_companded, companded_to_codes, mu_law_encode
from wavelab.models import build_model, config_for
from wavelab.models.waveflow import (
    WAVEFLOW_PRESETS,
    WaveFlow,
    WaveFlowConfig,
    WaveGlowConfig,
    PARAKEET_DILATION_H,
    default_dilation_h,
    flow_permutations,
    parakeet_dilation_h,
)

torch.set_num_threads(1)
DELTA = bin_half_width(16)


def tiny(seed=0, random_output=True, dtype=torch.float64, **overrides) -> WaveFlow:
    """A small model; with ``random_output`` the zero-initialised output convs get random weights, so the flows are
    not the identity."""
    fields = dict(h=4, n_flows=3, n_layers=3, residual_channels=8)
    fields.update(overrides)
    torch.manual_seed(seed)
    model = WaveFlow(WaveFlowConfig(**fields)).to(dtype)
    if random_output:
        for flow in model.flows:
            torch.nn.init.normal_(flow.net.end.weight, std=0.2)
            torch.nn.init.normal_(flow.net.end.bias, std=0.2)
    return model


def sine_batch(B=4, T=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)
    freq = torch.rand(B, 1, generator=g) * 0.04 + 0.01
    phase = torch.rand(B, 1, generator=g) * 2 * math.pi
    return mu_law_encode(0.4 * torch.sin(2 * math.pi * freq * t + phase), 16)


def uniform_noise(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) * DELTA


# ---------------------------------------------------------------------------------------------------- configs


def test_paper_config_parameters_and_registry():
    c = config_for("waveflow")
    assert (c.h, c.n_flows, c.n_layers, c.residual_channels, c.kernel_size) == (16, 8, 8, 64, (3, 3))
    assert (c.coupling, c.permutation, c.bits, c.sigma) == ("autoregressive", "waveflow", 16, 1.0)
    assert c.dilation_w == (1, 2, 4, 8, 16, 32, 64, 128)
    assert c.dilation_h_schedule == "parakeet" and c.dilation_h == (1,) * 8  # official table, h = 16
    # height receptive field of a flow's net covers the h rows: 1 + 2 * 8 = 17 >= 16
    assert 1 + 2 * sum(c.dilation_h) == 17 >= c.h
    model = build_model("waveflow")
    assert isinstance(model, WaveFlow) and len(model.flows) == 8
    C, k, L = 64, 9, 8
    per_flow = (C + C) + L * (C * 2 * C * k + 2 * C) + L * (C * C + C) + (L - 1) * (C * C + C) + (C * 2 + 2)
    assert sum(p.numel() for p in model.parameters()) == 8 * per_flow == 5_228_048
    assert config_for("waveflow", **WAVEFLOW_PRESETS["h16-r128"]).residual_channels == 128

    g = config_for("waveglow")
    assert isinstance(g, WaveGlowConfig) and (g.coupling, g.permutation, g.h, g.n_flows) == ("bipartite", "reverse",
                                                                                          8, 12)
    for name in ("waveflow", "waveglow"):
        quick = build_model(name, **config_for(name).quick_overrides())
        out = quick(sine_batch(2, 20), torch.tensor([20, 13]))
        assert out.nll.shape == (2,) and torch.isfinite(out.nll).all()


def test_default_dilation_h_fits_the_height():
    assert default_dilation_h(8, 8) == (1, 2, 1, 2, 1, 2, 1, 2)
    assert default_dilation_h(32, 8) == (1, 2, 4, 8, 1, 2, 4, 8)
    assert default_dilation_h(64, 8) == (1, 2, 4, 8, 16, 1, 2, 4)
    assert default_dilation_h(2, 3) == (1, 1, 1)
    for h in (4, 8, 16, 32, 64):
        cycle = max(default_dilation_h(h, 8))
        assert 1 + 2 * (2 * cycle - 1) <= h < 1 + 2 * (4 * cycle - 1)  # the largest doubling cycle that fits


# the height dilations per h of the official WaveFlow code (PaddlePaddle/Parakeet parakeet/models/waveflow.py), 8 layers
OFFICIAL_DILATION_H = {
    8: (1, 1, 1, 1, 1, 1, 1, 1),
    16: (1, 1, 1, 1, 1, 1, 1, 1),
    32: (1, 2, 4, 1, 2, 4, 1, 2),
    64: (1, 2, 4, 8, 16, 1, 2, 4),
    128: (1, 2, 4, 8, 16, 32, 64, 1),
}


@pytest.mark.parametrize("h", sorted(OFFICIAL_DILATION_H))
def test_default_height_dilations_are_the_official_table(h):
    expected = OFFICIAL_DILATION_H[h]
    assert PARAKEET_DILATION_H[h] == expected and parakeet_dilation_h(h, 8) == expected
    c = WaveFlowConfig(h=h)
    assert c.dilation_h_schedule == "parakeet" and c.dilation_h == expected
    assert config_for("waveflow", h=h).dilation_h == expected
    assert 1 + 2 * sum(expected) >= h  # the net of a flow reaches every earlier row (kernel height 3)
    assert set(PARAKEET_DILATION_H) == set(OFFICIAL_DILATION_H)


def test_cycle_schedule_keeps_the_previous_default_and_an_explicit_tuple_wins():
    assert WaveFlowConfig(dilation_h_schedule="cycle").dilation_h == (1, 2, 4, 1, 2, 4, 1, 2)  # h = 16
    assert WaveFlowConfig(h=8, dilation_h_schedule="cycle").dilation_h == (1, 2, 1, 2, 1, 2, 1, 2)
    assert WaveFlowConfig(h=32, dilation_h_schedule="cycle").dilation_h == (1, 2, 4, 8, 1, 2, 4, 8)
    for h in (2, 4, 5, 8, 16, 32, 64, 128):
        for n_layers in (2, 3, 8):
            c = WaveFlowConfig(h=h, n_layers=n_layers, dilation_h_schedule="cycle")
            assert c.dilation_h == default_dilation_h(h, n_layers, 3)
    stored = (1, 2, 4, 1, 2, 4, 1, 2)  # e.g. results/runs/waveflow-h16/config.json, recorded before the change
    for schedule in ("parakeet", "cycle"):
        assert WaveFlowConfig(h=16, dilation_h=list(stored), dilation_h_schedule=schedule).dilation_h == stored
        assert WaveFlowConfig(h=64, dilation_h=(1,) * 8, dilation_h_schedule=schedule).dilation_h == (1,) * 8


@pytest.mark.parametrize("schedule", ["doubling", "Parakeet", "", None, 3])
def test_unknown_dilation_h_schedule_is_rejected(schedule):
    with pytest.raises(ValueError, match="dilation_h_schedule"):
        WaveFlowConfig(dilation_h_schedule=schedule)
    with pytest.raises(ValueError, match="dilation_h_schedule"):  # even when dilation_h is given
        WaveFlowConfig(dilation_h=(1,) * 8, dilation_h_schedule=schedule)


def test_parakeet_schedule_outside_the_table():
    # other layer counts repeat / truncate the table's cycle
    assert parakeet_dilation_h(128, 10) == (1, 2, 4, 8, 16, 32, 64, 1, 2, 4)
    assert parakeet_dilation_h(64, 2) == (1, 2) and parakeet_dilation_h(32, 4) == (1, 2, 4, 1)
    assert parakeet_dilation_h(16, 12) == (1,) * 12
    # other heights use the entry of the largest tabulated height below them (all ones under 8)
    assert parakeet_dilation_h(4, 3) == (1, 1, 1) and parakeet_dilation_h(2, 8) == (1,) * 8
    assert parakeet_dilation_h(48, 8) == OFFICIAL_DILATION_H[32]
    assert parakeet_dilation_h(100, 8) == OFFICIAL_DILATION_H[64]
    assert parakeet_dilation_h(4096, 8) == OFFICIAL_DILATION_H[128]
    for h in range(2, 300):
        assert max(parakeet_dilation_h(h, 16)) <= max(1, h // 2)


def test_waveglow_and_kernel_height_one_keep_unit_height_dilations():
    for schedule in ("parakeet", "cycle"):
        assert config_for("waveglow", dilation_h_schedule=schedule).dilation_h == (1,) * 8
        assert WaveGlowConfig(h=32, dilation_h_schedule=schedule).dilation_h == (1,) * 8
        assert WaveGlowConfig(**WaveGlowConfig.quick_overrides()).dilation_h == (1, 1)
        assert WaveFlowConfig(h=64, kernel_size=(1, 3), dilation_h_schedule=schedule).dilation_h == (1,) * 8
        assert WaveFlowConfig(h=64, coupling="bipartite", dilation_h_schedule=schedule).dilation_h == (1,) * 8


def test_project_waveflow_configurations_build():
    # the heights and tiny overrides of benchmarks/generation_speed.py (--quick), the quick overrides, and the presets
    tiny_bench = {"n_flows": 2, "n_layers": 2, "residual_channels": 8}
    configs = [dict(tiny_bench, h=h) for h in (8, 16, 64)] + [WaveFlowConfig.quick_overrides()]
    configs += list(WAVEFLOW_PRESETS.values())
    for fields in configs:
        model = build_model("waveflow", **fields)
        assert len(model.config.dilation_h) == model.config.n_layers
    model = build_model("waveflow", **WaveFlowConfig.quick_overrides())
    out = model(sine_batch(2, 20), torch.tensor([20, 13]))
    assert torch.isfinite(out.nll).all()


@pytest.mark.parametrize("fields", [
    dict(h=32),  # official dilations 1, 2, 4, 1, 2, 4, 1, 2: reach 35 rows
    dict(h=6, n_layers=3, dilation_h=(1, 8, 2)),  # a dilation larger than the height (reads only causal padding)
])
def test_dilated_height_nets_are_causal_cached_and_invertible(fields):
    model = tiny(**dict(dict(n_flows=2, n_layers=8), **fields))
    H, W = model.config.h, 3
    J, log_s = _coupling_jacobian(model.flows[0], H, W)
    for r in range(H):
        dep = J[r, :, :, :]  # [W, H, W]
        assert (dep[:, r + 1:] == 0).all(), "depends on a later row"
        for c in range(W):
            torch.testing.assert_close(dep[c, r, c], torch.exp(log_s[r, c]))
    if model.config.dilation_h == OFFICIAL_DILATION_H[32]:  # every earlier row of the same column is reached
        for r in range(1, H):
            assert (J[r, 1, :r, 1] != 0).all()
    net = model.flows[0].net
    u = torch.randn(2, 1, H, W, dtype=torch.float64)
    mask = torch.ones_like(u)
    log_s, t = net(u, mask)
    caches = net.new_caches(2, H, W, u)
    for r in range(H):
        ls_r, t_r = net.step(u[:, :, r: r + 1], mask[:, :, r: r + 1], r, caches)
        torch.testing.assert_close(ls_r, log_s[:, :, r: r + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(t_r, t[:, :, r: r + 1], rtol=0, atol=1e-12)
    T = H * W - 2
    lengths = torch.tensor([T, T - 5])
    x = torch.rand(2, T, dtype=torch.float64) * 2 - 1
    z, _ = model.transform(x, lengths)
    valid = torch.arange(T)[None] < lengths[:, None]
    torch.testing.assert_close(model.inverse(z, lengths)[valid], x[valid], rtol=0, atol=1e-10)
    torch.testing.assert_close(model.inverse(z, lengths), model.inverse(z, lengths, naive=True), rtol=0, atol=1e-12)


@pytest.mark.parametrize("overrides, field", [
    (dict(h=1), "h"), (dict(n_flows=0), "n_flows"), (dict(residual_channels=-3), "residual_channels"),
    (dict(kernel_size=(3, 2)), "kernel_size"), (dict(kernel_size=3), "kernel_size"),
    (dict(dilation_h=(1, 2)), "dilation_h"), (dict(dilation_w=(1, 0, 1, 1, 1, 1, 1, 1)), "dilation_w"),
    (dict(coupling="affine"), "coupling"), (dict(permutation="random"), "permutation"),
    (dict(bits=12), "bits"), (dict(sigma=0.0), "sigma"),
])
def test_bad_config_is_rejected_with_the_field_name(overrides, field):
    with pytest.raises(ValueError, match=field):
        WaveFlowConfig(**overrides)


def test_config_accepts_lists_from_json_and_rejects_unknown_fields():
    c = WaveFlowConfig(kernel_size=[3, 5], n_layers=2, dilation_h=[1, 2])
    assert c.kernel_size == (3, 5) and c.dilation_h == (1, 2) and c.dilation_w == (1, 2)
    with pytest.raises(TypeError, match="no field"):
        config_for("waveflow", channels=3)


def test_bad_inputs_are_rejected():
    model = tiny()
    codes = sine_batch(2, 12)
    with pytest.raises(ValueError, match="codes"):
        model(codes.float(), torch.tensor([12, 12]))
    with pytest.raises(ValueError, match="lengths"):
        model(codes, torch.tensor([12]))
    with pytest.raises(ValueError, match="lengths"):
        model(codes, torch.tensor([13, 12]))
    with pytest.raises(ValueError, match="codes"):
        model(codes + 2**16, torch.tensor([12, 12]))
    with pytest.raises(ValueError, match="noise"):
        model(codes, torch.tensor([12, 12]), noise=torch.full((2, 12), 3 * DELTA, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(-1)


# ---------------------------------------------------------------------------------------------------- squeeze, orders


def test_squeeze_is_column_major_and_unsqueeze_inverts_it():
    model = tiny(h=4)
    x = torch.arange(1, 11, dtype=torch.float64)[None]  # samples 1..10
    X = model.squeeze(x)
    assert X.shape == (1, 1, 4, 3)
    assert X[0, 0].tolist() == [[1, 5, 9], [2, 6, 10], [3, 7, 0], [4, 8, 0]]  # sample i at (i % h, i // h)
    assert torch.equal(model.unsqueeze(X, 10), x)


def test_permutation_schedule():
    rev, halves = (7, 6, 5, 4, 3, 2, 1, 0), (3, 2, 1, 0, 7, 6, 5, 4)
    assert flow_permutations(8, 4, "waveflow") == [rev, rev, halves, halves]
    assert flow_permutations(8, 3, "reverse") == [rev] * 3
    assert flow_permutations(8, 2, "none") == [tuple(range(8))] * 2
    model = tiny(h=8, n_flows=4)
    # absolute row order of each flow: the permutations applied after each flow accumulate
    assert model.orders == [list(range(8)), list(rev), list(range(8)), list(halves)]
    for order, inverse in zip(model.orders, model.inverse_orders):
        assert [order[j] for j in inverse] == list(range(8))


# ---------------------------------------------------------------------------------------------------- invertibility


@pytest.mark.parametrize("coupling, h", [("autoregressive", 2), ("autoregressive", 4), ("autoregressive", 5),
                                         ("autoregressive", 8), ("bipartite", 2), ("bipartite", 5),
                                         ("bipartite", 8)])
def test_inverse_of_forward_is_identity_and_cached_equals_naive(coupling, h):
    model = tiny(h=h, coupling=coupling, n_flows=4)
    T = 37
    lengths = torch.tensor([T, 30, 9])
    x = torch.rand(3, T, dtype=torch.float64) * 2 - 1
    z, _ = model.transform(x, lengths)
    assert z.abs().max() > 0 and not torch.allclose(z, x)  # the flows are not the identity
    x_cached = model.inverse(z, lengths)
    x_naive = model.inverse(z, lengths, naive=True)
    mask = torch.arange(T)[None] < lengths[:, None]
    torch.testing.assert_close(x_cached[mask], x[mask], rtol=0, atol=1e-12)
    torch.testing.assert_close(x_cached, x_naive, rtol=0, atol=1e-12)
    assert (x_cached[~mask] == 0).all()


def test_cached_row_step_equals_the_full_net_row():
    model = tiny(h=8)
    net = model.flows[0].net
    u = torch.randn(2, 1, 8, 5, dtype=torch.float64)
    mask = torch.ones(2, 1, 8, 5, dtype=torch.float64)
    mask[1, :, 5:, 4] = 0  # a partial last column
    log_s, t = net(u, mask)
    caches = net.new_caches(2, 8, 5, u)
    for r in range(8):
        ls_r, t_r = net.step(u[:, :, r: r + 1], mask[:, :, r: r + 1], r, caches)
        torch.testing.assert_close(ls_r, log_s[:, :, r: r + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(t_r, t[:, :, r: r + 1], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("coupling", ["autoregressive", "bipartite"])
def test_log_det_equals_brute_force_jacobian(coupling):
    model = tiny(h=4, coupling=coupling)
    T = 12  # h = 4, 3 columns
    x = torch.rand(1, T, dtype=torch.float64) * 2 - 1
    for n in (T, 10):  # full, and a partial last column (Jacobian over the valid samples only)
        lengths = torch.tensor([n])
        J = torch.autograd.functional.jacobian(lambda v: model.transform(v, lengths)[0][0], x)[:, 0]  # [T, T]
        _, log_abs_det = torch.linalg.slogdet(J[:n, :n])
        log_det = model.transform(x, lengths)[1]
        assert abs(float(log_det[0].detach())) > 1e-3  # not the identity
        torch.testing.assert_close(log_det[0], log_abs_det, rtol=0, atol=1e-10)
        assert (J[n:] == 0).all() and (J[:, n:] == 0).all()  # padding neither moves nor is moved


def _coupling_jacobian(coupling, H, W):
    x = torch.randn(1, 1, H, W, dtype=torch.float64)
    mask = torch.ones_like(x)
    J = torch.autograd.functional.jacobian(lambda v: coupling(v, mask)[0], x)
    return J.reshape(H, W, H, W), coupling(x, mask)[1][0, 0]


def test_autoregressive_flow_depends_only_on_earlier_rows():
    H, W = 6, 5
    model = tiny(h=H, n_layers=3)
    J, log_s = _coupling_jacobian(model.flows[0], H, W)
    for r in range(H):
        for c in range(W):
            dep = J[r, c]  # [H, W]: d z[r, c] / d x
            assert (dep[r + 1:] == 0).all(), "depends on a later row"
            same_row = dep[r].clone()
            torch.testing.assert_close(same_row[c], torch.exp(log_s[r, c]))
            same_row[c] = 0
            assert (same_row == 0).all(), "depends on another column of its own row"
            if r > 0:  # earlier rows of its own and of neighbouring columns do matter
                assert dep[r - 1, c] != 0 and dep[r - 1, (c + 1) % W] != 0
    # the same structure holds in time order for h < n: z_i depends on x_j only if row(j) < row(i) or j = i
    T = H * W
    rows = torch.arange(T) % H
    Jt = J.permute(1, 0, 3, 2).reshape(T, T)  # time index i = c * H + r
    allowed = (rows[None, :] < rows[:, None]) | torch.eye(T, dtype=torch.bool)
    assert (Jt[~allowed] == 0).all() and (Jt[allowed] != 0).float().mean() > 0.5
    assert (Jt.triu(1) != 0).any()  # with h < n, a sample does depend on later samples (later columns)


def test_bipartite_flow_passes_the_first_half_and_conditions_the_second():
    H, W = 4, 5
    model = tiny(h=H, coupling="bipartite")
    J, log_s = _coupling_jacobian(model.flows[0], H, W)
    eye = torch.eye(H * W, dtype=torch.float64).reshape(H, W, H, W)
    torch.testing.assert_close(J[:2], eye[:2])  # rows 0, 1 unchanged
    for r in (2, 3):
        for c in range(W):
            dep = J[r, c].clone()
            torch.testing.assert_close(dep[r, c], torch.exp(log_s[r, c]))
            dep[r, c] = 0
            assert (dep[2:] == 0).all() and (dep[:2] != 0).any()


def test_h_equals_n_is_autoregressive_over_all_samples_like_wavenet():
    T = 8
    model = tiny(h=T, n_flows=2, permutation="none")
    x = torch.rand(1, T, dtype=torch.float64) * 2 - 1
    lengths = torch.tensor([T])
    J = torch.autograd.functional.jacobian(lambda v: model.transform(v, lengths)[0][0], x)[:, 0]
    assert (J.triu(1) == 0).all()  # z_i independent of x_j for j > i
    assert (J.tril(-1)[torch.ones(T, T, dtype=torch.bool).tril(-1)] != 0).all()  # and dependent on every x_j, j < i
    torch.testing.assert_close(torch.diagonal(J).log().sum(), model.transform(x, lengths)[1][0])
    # the WaveFlow permutation (reverse between the two flows) breaks the time-order triangularity
    reversed_model = tiny(h=T, n_flows=2, permutation="waveflow")
    J2 = torch.autograd.functional.jacobian(lambda v: reversed_model.transform(v, lengths)[0][0], x)[:, 0]
    assert (J2.triu(1) != 0).any()


# ---------------------------------------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("coupling", ["autoregressive", "bipartite"])
def test_padding_and_batch_composition_do_not_change_a_row(coupling):
    model = tiny(h=4, coupling=coupling)
    T = 30
    codes = sine_batch(3, T, seed=1)
    lengths = torch.tensor([T, 17, 22])
    noise = uniform_noise((3, T))
    out = model(codes, lengths, noise=noise)
    garbage = codes.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = torch.randint(0, 2**16, (T - n,))
    noisy_pad = noise.clone()
    noisy_pad[1, 17:] = DELTA
    torch.testing.assert_close(model(garbage, lengths, noise=noisy_pad).nll, out.nll, rtol=0, atol=1e-9)
    for b, n in enumerate(lengths.tolist()):
        alone = model(codes[b: b + 1, :n], lengths[b: b + 1], noise=noise[b: b + 1, :n])
        torch.testing.assert_close(alone.nll, out.nll[b: b + 1], rtol=0, atol=1e-9)
        for key in ("log_det", "log_pz"):
            torch.testing.assert_close(alone.extras[key], out.extras[key][b: b + 1], rtol=0, atol=1e-9)


def test_nll_is_the_dequantization_bound():
    model = tiny(h=4)
    codes, lengths = sine_batch(2, 21), torch.tensor([21, 15])
    noise = uniform_noise((2, 21))
    out = model(codes, lengths, noise=noise)
    assert out.is_bound and torch.equal(out.frames, lengths)
    ex = out.extras
    torch.testing.assert_close(ex["log_p_cont"], ex["log_pz"] + ex["log_det"])
    # nll = -(log p_cont) - frames * log(2 delta), with log(2 delta) = -log(32767.5) ~ -10.397 nats per sample
    torch.testing.assert_close(out.nll, -ex["log_p_cont"] - lengths * math.log(2 * DELTA))
    assert math.log(2 * DELTA) == pytest.approx(-math.log(32767.5))
    # the prior term is the Gaussian log-density of z over the valid samples
    z, log_det = model.transform(model.dequantize(codes, noise), lengths)
    mask = torch.arange(21)[None] < lengths[:, None]
    log_n = torch.distributions.Normal(0.0, 1.0).log_prob(z)
    torch.testing.assert_close(ex["log_pz"], (log_n * mask).sum(1))
    torch.testing.assert_close(ex["log_det"], log_det)

    # at initialisation every flow is the identity: z = x = y + u, log_det = 0
    fresh = tiny(h=4, random_output=False)
    out0 = fresh(codes, lengths, noise=noise)
    x = codes_to_companded(codes, 16, dtype=torch.float64) + noise
    assert torch.equal(out0.extras["log_det"], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(out0.extras["log_pz"], (torch.distributions.Normal(0.0, 1.0).log_prob(x) * mask).sum(1))

    # without given noise, every call (also in eval mode) draws fresh dequantization noise
    model.eval()
    with torch.no_grad():
        a, b = model(codes, lengths).nll, model(codes, lengths).nll
    assert not torch.equal(a, b) and torch.allclose(a, b, rtol=1e-3)


@pytest.mark.parametrize("coupling, max_bpf", [("autoregressive", 15.0), ("bipartite", 15.8)])
def test_short_training_on_a_sine_beats_uniform(coupling, max_bpf):
    torch.manual_seed(0)
    model = WaveFlow(WaveFlowConfig(h=8, n_flows=2, n_layers=3, residual_channels=16, coupling=coupling))
    lengths = torch.full((4,), 256)
    with torch.no_grad():
        start = model(sine_batch(seed=999), lengths)
    start_bpf = float(start.nll.sum() / start.frames.sum()) / math.log(2)
    assert start_bpf > 16.0  # identity flows: a standard normal density is worse than uniform
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        loss = model(sine_batch(seed=step), lengths).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model(sine_batch(seed=999), lengths)  # held-out sines
    bpf = float(out.nll.sum() / out.frames.sum()) / math.log(2)
    print(f"{coupling}: {start_bpf:.2f} -> {bpf:.2f} bpf (bound)")
    assert bpf < max_bpf < 16.0


# ---------------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("coupling", ["autoregressive", "bipartite"])
def test_sample_shape_range_reproducibility(coupling):
    model = tiny(h=4, coupling=coupling, dtype=torch.float32)
    g = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731
    a = model.sample(23, batch_size=2, generator=g(0))
    assert a.shape == (2, 23) and a.dtype == torch.int64
    assert int(a.min()) >= 0 and int(a.max()) <= 2**16 - 1
    assert torch.equal(a, model.sample(23, batch_size=2, generator=g(0)))
    assert not torch.equal(a, model.sample(23, batch_size=2, generator=g(1)))
    # sample = nearest code of inverse(z) for the same draw of z
    z = torch.randn(2, 23, generator=g(0))
    expected = companded_to_codes(model.inverse(z, torch.tensor([23, 23])), 16)
    assert torch.equal(a, expected)
    # temperature 0: z = 0, the same sequence in every row
    cold = model.sample(10, batch_size=3, temperature=0.0)
    assert (cold == cold[:1]).all()
    assert model.sample(0, batch_size=2).shape == (2, 0)
