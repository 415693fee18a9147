"""Mixed precision keeps the likelihood exact: under autocast the distribution heads (DMoL / categorical parameters, a
flow's log-scales and shifts) and the log-probabilities run in float32, so bf16 changes a model's NLL by less than
1e-3 nats per frame."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wavelab.audio import bin_half_width, mu_law_encode
from wavelab.distributions import Categorical, DiscretizedMixtureLogistics, Float32Linear, float32_head
from wavelab.models import REGISTRY, build_model

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}
TOL = 1e-3  # nats per frame
CASES = [(name, {}) for name in sorted(REGISTRY)] + [("sashimi", {"head": "dmol"})]
IDS = [name + "".join(f"-{v}" for v in extra.values()) for name, extra in CASES]


def _quick(name: str, extra: dict):
    cls = REGISTRY[name][0]
    overrides = dict(cls.quick_overrides()) if hasattr(cls, "quick_overrides") else {}
    torch.manual_seed(0)
    model = build_model(name, **overrides, **extra).eval()
    if hasattr(model, "flows"):  # the flows' output convs start at zero (identity): give them something to do
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for flow in model.flows:
                flow.net.end.weight.normal_(0, 0.05, generator=g)
                flow.net.end.bias.normal_(0, 0.05, generator=g)
    return model


def _batch(bits: int, T: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of two seeded sines plus noise, mu-law encoded; the second row is 301 samples shorter."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(T, dtype=torch.float64)
    x = torch.stack([0.4 * torch.sin(2 * math.pi * 220 * t / 16000),
                     0.25 * torch.sin(2 * math.pi * 97 * t / 16000 + 1.0)])
    x = x + 0.01 * torch.randn(2, T, generator=g, dtype=torch.float64)
    return mu_law_encode(x.clamp(-1, 1), bits), torch.tensor([T, T - 301])


def _noise(name: str, model, codes: torch.Tensor) -> dict:
    """The same posterior / dequantization noise for both precisions."""
    g = torch.Generator().manual_seed(1)
    B, T = codes.shape
    if name in ("vrnn", "srnn"):
        return {"eps": torch.randn(B, -(-T // model.s), model.config.Dz, generator=g)}
    if name == "cwvae":
        return {"eps": [torch.randn(B, -(-T // s), model.config.Dz, generator=g) for s in model.strides]}
    if hasattr(model, "flows"):
        return {"noise": (torch.rand(B, T, generator=g) * 2 - 1) * bin_half_width(model.bits)}
    return {}


def _output_layers(model) -> list[nn.Module]:
    """The layers that produce the output distribution's parameters (or a flow's ``log_s, t``)."""
    if hasattr(model, "flows"):
        return [flow.net.end for flow in model.flows]
    for attr in ("decoder", "phi_dec"):  # LSTM, VRNN, SRNN: MLP decoders; CW-VAE: FrameDecoder
        dec = getattr(model, attr, None)
        if isinstance(dec, nn.Sequential):
            return [dec[-1]]
        if dec is not None and hasattr(dec, "out"):
            return [dec.out]
    head = model.head  # WaveNet: Sequential head; SaShiMi: Linear
    return [head[-1] if isinstance(head, nn.Sequential) else head]


@pytest.mark.parametrize("name, extra", CASES, ids=IDS)
def test_bf16_autocast_nll_matches_float32(name, extra):
    model = _quick(name, extra)
    codes, lengths = _batch(model.bits)
    kw = _noise(name, model, codes)
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for layer in _output_layers(model)]
    with torch.no_grad():
        out32 = model(codes, lengths, **kw)
        seen.clear()
        with torch.autocast(**BF16):
            out16 = model(codes, lengths, **kw)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {torch.float32}, f"{name}: output layer ran in {set(seen)} under autocast"
    assert out16.nll.dtype == torch.float32
    per_frame32 = float(out32.nll.sum() / out32.frames.sum())
    per_frame16 = float(out16.nll.sum() / out16.frames.sum())
    assert math.isfinite(per_frame16)
    assert abs(per_frame16 - per_frame32) < TOL, (name, per_frame32, per_frame16)


def _dmol_params(M: int = 4, T: int = 257) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, M, T, generator=g)
    means = torch.rand(2, M, T, generator=g) * 1.8 - 0.9
    log_scales = torch.rand(2, M, T, generator=g) * 6 - 12.0  # down to a few bins of 16-bit mu-law
    return torch.cat([logits, means, log_scales], dim=1)


def test_dmol_log_prob_casts_bf16_params_up():
    d = DiscretizedMixtureLogistics(4, bits=16)
    p16 = _dmol_params().to(torch.bfloat16)
    codes = torch.randint(0, 2**16, (2, p16.shape[-1]), generator=torch.Generator().manual_seed(4))
    ref = d.log_prob(p16.float(), codes)
    assert ref.dtype == torch.float32
    lp = d.log_prob(p16, codes)
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp, ref, rtol=0, atol=0)
    with torch.autocast(**BF16):
        lp_amp = d.log_prob(p16, codes)
        lp_amp32 = d.log_prob(p16.float(), codes)
    assert lp_amp.dtype == lp_amp32.dtype == torch.float32
    torch.testing.assert_close(lp_amp, ref, rtol=0, atol=0)
    torch.testing.assert_close(lp_amp32, ref, rtol=0, atol=0)
    assert d.log_prob(p16.double(), codes).dtype == torch.float64  # float64 stays float64


def test_categorical_log_prob_casts_bf16_params_up():
    c = Categorical(bits=8)
    g = torch.Generator().manual_seed(5)
    p16 = (4 * torch.randn(2, 256, 100, generator=g)).to(torch.bfloat16)
    codes = torch.randint(0, 256, (2, 100), generator=g)
    ref = c.log_prob(p16.float(), codes)
    with torch.autocast(**BF16):
        lp_amp = c.log_prob(p16, codes)
    for lp in (c.log_prob(p16, codes), lp_amp):
        assert lp.dtype == torch.float32
        torch.testing.assert_close(lp, ref, rtol=0, atol=0)


def test_float32_head_under_autocast():
    torch.manual_seed(0)
    lin, norm = nn.Linear(8, 6), nn.LayerNorm(8)
    x = torch.randn(3, 8)
    with torch.autocast(**BF16):
        assert lin(x).dtype == torch.bfloat16  # what autocast would do
        y = float32_head(lin, x.to(torch.bfloat16))
        y2 = float32_head((norm, lin), x)
        f = Float32Linear(8, 6)
        f.load_state_dict(lin.state_dict())
        y3 = f(x)
    assert y.dtype == y2.dtype == y3.dtype == torch.float32
    torch.testing.assert_close(y, lin(x.to(torch.bfloat16).float()), rtol=0, atol=0)
    torch.testing.assert_close(y2, lin(norm(x)), rtol=0, atol=0)
    torch.testing.assert_close(y3, lin(x), rtol=0, atol=0)
    lin64 = nn.Linear(8, 6).double()
    assert float32_head(lin64, x.double()).dtype == torch.float64
