"""Properties of the output distributions: pmfs normalise over every bin, log-probabilities match a float64
brute-force computation, tiny-mass bins stay finite, and samples follow the pmf."""

import math

import pytest
import torch

from wavelab.audio import codes_to_companded
from wavelab.distributions import Categorical, DiscretizedMixtureLogistics


def _random_params(M, T, seed=0, scale_range=(-9.0, -1.0)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, M, T, generator=g)
    means = torch.rand(1, M, T, generator=g) * 2.2 - 1.1
    lo, hi = scale_range
    log_scales = torch.rand(1, M, T, generator=g) * (hi - lo) + lo
    return torch.cat([logits, means, log_scales], dim=1)


def _brute_force_log_prob(dist, params, codes):
    """Direct float64 evaluation of the DMoL pmf from logistic CDF differences (no log-space tricks)."""
    p = params.double()
    M = dist.num_components
    w = torch.softmax(p[:, :M], dim=1)
    mu = p[:, M:2 * M]
    s = p[:, 2 * M:].clamp(min=dist.log_scale_min).exp()
    y = codes_to_companded(codes, dist.bits, dtype=torch.float64).unsqueeze(1)
    a = (y + dist.delta - mu) / s
    b = (y - dist.delta - mu) / s
    a = torch.where(codes.unsqueeze(1) == dist.num_bins - 1, torch.full_like(a, math.inf), a)
    b = torch.where(codes.unsqueeze(1) == 0, torch.full_like(b, -math.inf), b)
    # the CDF difference of the side of the bin nearer to the tail, so float64 does not cancel 1 - 1
    mass = torch.where(a + b < 0, torch.sigmoid(a) - torch.sigmoid(b), torch.sigmoid(-b) - torch.sigmoid(-a))
    return torch.log((w * mass).sum(dim=1))


@pytest.mark.parametrize("bits", [8, 16])
def test_dmol_pmf_sums_to_one_over_all_bins(bits):
    dist = DiscretizedMixtureLogistics(num_components=10, bits=bits)
    K = dist.num_bins
    for seed in range(3):
        params = _random_params(10, 1, seed=seed).expand(1, 30, 1).contiguous()
        codes = torch.arange(K).reshape(1, K)
        logp = dist.log_prob(params.expand(1, 30, K), codes)
        total = torch.logsumexp(logp.double(), dim=1)
        assert abs(float(total)) < 1e-4, f"log of total mass {float(total)} (bits={bits}, seed={seed})"


def test_dmol_matches_float64_brute_force():
    dist = DiscretizedMixtureLogistics(num_components=10, bits=16)
    T = 4000
    params = _random_params(10, T, seed=1, scale_range=(-11.0, -2.0))
    codes = torch.randint(0, 2 ** 16, (1, T), generator=torch.Generator().manual_seed(2))
    codes[0, :5] = torch.tensor([0, 1, 32767, 65534, 65535])
    ours = dist.log_prob(params, codes).double()
    ref = _brute_force_log_prob(dist, params, codes)
    finite = ref > -700  # float64 CDF differences themselves underflow beyond exp(-745)
    assert finite.float().mean() > 0.9
    err = (ours[finite] - ref[finite]).abs() / ref[finite].abs().clamp_min(1.0)
    # float32 evaluation in log space: small relative error over the whole range, including bins of mass 1e-100
    # (far tails are limited by float32 rounding of the standardised bin edges, about 1e-7 relative)
    assert float(err.max()) < 1e-3, float(err.max())
    likely = ref > -20.0  # bins a model actually puts its mass on: absolute agreement within float32 rounding
    assert likely.sum() > 100
    assert float((ours[likely] - ref[likely]).abs().max()) < 5e-3
    # the same log-space formula in float64 agrees with the brute force to float64 precision
    ours64 = dist.log_prob(params.double(), codes)
    assert ours64.dtype == torch.float64
    err64 = (ours64[finite] - ref[finite]).abs() / ref[finite].abs().clamp_min(1.0)
    assert float(err64.max()) < 1e-9, float(err64.max())
    assert float(ref[finite].min()) < -100  # the comparison really covers tiny-mass bins


def test_dmol_tiny_mass_bins_are_finite_and_ordered():
    """Far in a sharp component's tail the mass underflows float32 CDF differences; the log-space path stays finite
    and keeps decreasing with distance from the mean, as the logistic tail must."""
    dist = DiscretizedMixtureLogistics(num_components=1, bits=16)
    mean, log_scale = 0.0, math.log(1e-3)
    codes = torch.tensor([[32767 + d for d in (0, 50, 500, 5000, 20000, 32767)]])
    params = torch.tensor([0.0, mean, log_scale]).reshape(1, 3, 1).expand(1, 3, codes.shape[1])
    logp = dist.log_prob(params, codes)[0]
    assert torch.isfinite(logp).all()
    assert (logp[1:] < logp[:-1]).all()
    # naive float32 CDF differences give log(0) = -inf there
    y = codes_to_companded(codes[0], 16)
    naive = torch.log(torch.sigmoid((y + dist.delta) / 1e-3) - torch.sigmoid((y - dist.delta) / 1e-3))
    assert torch.isinf(naive).any()


def test_dmol_gradients_are_finite_in_fp16_params():
    dist = DiscretizedMixtureLogistics(num_components=10, bits=16)
    params = _random_params(10, 64, seed=3).half().requires_grad_(True)
    codes = torch.randint(0, 2 ** 16, (1, 64))
    dist.log_prob(params, codes).sum().backward()
    assert torch.isfinite(params.grad).all()


def test_dmol_samples_follow_pmf():
    """Empirical frequencies of 8-bit samples match the pmf (total variation distance small)."""
    dist = DiscretizedMixtureLogistics(num_components=3, bits=8)
    params = torch.tensor([1.0, 0.0, -1.0, -0.5, 0.1, 0.6, -3.0, -4.0, -2.5]).reshape(1, 9, 1)
    n = 200_000
    samples = dist.sample(params.expand(n, 9, 1), generator=torch.Generator().manual_seed(0)).reshape(-1)
    freq = torch.bincount(samples, minlength=256).double() / n
    pmf = dist.log_prob(params.expand(1, 9, 256), torch.arange(256).reshape(1, 256)).exp().double()[0]
    assert 0.5 * (freq - pmf).abs().sum() < 0.02


def _equal_probability_bins(pmf: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Start codes of contiguous bins of codes holding about ``1 / num_bins`` of the mass each (a code heavier than
    that is a bin of its own, so there may be fewer bins)."""
    K = pmf.shape[0]
    cdf = pmf.cumsum(0)
    last = torch.searchsorted(cdf, torch.linspace(0, 1, num_bins + 1, dtype=torch.float64)[1:-1])
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.unique(last.clamp(max=K - 2)) + 1])


def _binned(values: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Sum a per-code vector over the bins that begin at ``starts``."""
    idx = torch.bucketize(torch.arange(values.shape[0]), starts, right=True) - 1
    return torch.zeros(len(starts), dtype=torch.float64).index_add_(0, idx, values.double())


def test_dmol_16_bit_samples_pass_a_chi_square_test_against_the_exact_pmf():
    """16-bit draws follow the pmf that log_prob gives: a chi-square goodness-of-fit test over equal-probability bins of
    the 65,536 codes (a sharp component a few codes wide, a broad one, and two that spill into the open edge bins),
    the companded mean and variance within 4 standard errors of the pmf's, and no draw on a code of negligible mass.
    Controls: the same draws shifted by one code, and draws at temperature 1.05 / 0.95, are rejected outright."""
    stats = pytest.importorskip("scipy.stats")
    dist = DiscretizedMixtureLogistics(num_components=4, bits=16)
    K = dist.num_bins
    #                        logits               means                   log-scales
    params = torch.tensor([1.0, 0.0, -1.0, -1.5, -0.3, 0.2, 0.97, -1.0, -9.5, -4.0, -3.0, -8.0]).reshape(1, 12, 1)
    pmf = dist.log_prob(params.double().expand(1, 12, K), torch.arange(K).reshape(1, K)).exp()[0]  # float64
    assert abs(float(pmf.sum()) - 1.0) < 1e-9
    assert float(pmf[0]) > 0.01 and float(pmf[-1]) > 0.01  # the edge bins do hold open-ended mass
    n = 500_000

    def draw(temperature=1.0):
        return dist.sample(params.expand(n, 12, 1), temperature=temperature,
                           generator=torch.Generator().manual_seed(0)).reshape(-1)

    samples = draw()
    starts = _equal_probability_bins(pmf, 128)
    expected = n * _binned(pmf, starts)
    assert len(starts) > 40 and float(expected.min()) > 100  # chi-square approximation valid, many bins

    def p_value(s):
        observed = _binned(torch.bincount(s, minlength=K), starts)
        chi2 = float(((observed - expected) ** 2 / expected).sum())
        return float(stats.chi2.sf(chi2, len(starts) - 1))

    p = p_value(samples)
    print(f"16-bit DMoL: chi-square over {len(starts)} bins, p = {p:.3f}")
    assert p > 1e-3
    # the test has power: an off-by-one quantisation or a 5% error in the logistic scale is rejected outright
    assert p_value((samples + 1).clamp(max=K - 1)) < 1e-12
    assert p_value(draw(1.05)) < 1e-12 and p_value(draw(0.95)) < 1e-12
    # moments of the companded value y_k match the pmf's within 4 standard errors
    y = codes_to_companded(torch.arange(K), 16, dtype=torch.float64)
    m = float((pmf * y).sum())
    v = float((pmf * (y - m) ** 2).sum())
    mu4 = float((pmf * (y - m) ** 4).sum())
    ys = codes_to_companded(samples, 16, dtype=torch.float64)
    assert abs(float(ys.mean()) - m) < 4 * math.sqrt(v / n)
    assert abs(float(ys.var()) - v) < 4 * math.sqrt((mu4 - v * v) / n)
    # draws land only where the pmf has mass: the codes below 1e-12 (together < 1e-6 of the mass) are never drawn
    negligible = pmf < 1e-12
    assert int(negligible.sum()) > 10_000 and float(pmf[negligible].sum()) * n < 1e-3
    assert not bool(negligible[samples].any())


def test_dmol_rejects_bad_input():
    dist = DiscretizedMixtureLogistics(num_components=10, bits=16)
    with pytest.raises(ValueError, match="30 parameter channels"):
        dist.log_prob(torch.zeros(1, 29, 5), torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="codes must lie"):
        dist.log_prob(torch.zeros(1, 30, 1), torch.tensor([[65536]]))
    with pytest.raises(ValueError):
        dist.sample(torch.zeros(1, 30, 1), temperature=-1)


def test_dmol_zero_temperature_is_deterministic_mode():
    dist = DiscretizedMixtureLogistics(num_components=2, bits=16)
    params = torch.tensor([5.0, 0.0, 0.25, -0.5, -6.0, -6.0]).reshape(1, 6, 1)
    code = dist.sample(params, temperature=0.0)
    assert int(code) == round((0.25 + 1) / 2 * 65535)


def test_categorical_normalises_and_samples():
    dist = Categorical(bits=8)
    logits = torch.randn(2, 256, 7)
    logp = dist.log_prob(logits.unsqueeze(-1).expand(2, 256, 7, 256).reshape(2, 256, -1),
                         torch.arange(256).repeat(2, 7))
    total = torch.logsumexp(logp.reshape(2, 7, 256), dim=-1)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-5)
    s = dist.sample(logits, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 7) and int(s.min()) >= 0 and int(s.max()) < 256
    assert torch.equal(dist.sample(logits, temperature=0), logits.argmax(1))


def test_categorical_samples_follow_its_pmf():
    dist = Categorical(bits=8)
    logits = torch.linspace(-3, 3, 256).sin().mul(4).reshape(1, 256, 1)
    n = 200_000
    s = dist.sample(logits.expand(n, 256, 1), generator=torch.Generator().manual_seed(0)).reshape(-1)
    freq = torch.bincount(s, minlength=256).double() / n
    pmf = torch.softmax(logits[0, :, 0].double(), 0)
    assert 0.5 * (freq - pmf).abs().sum() < 0.02
