"""The model contract (wavelab.models.base), checked over every entry of the registry in its quick configuration:
the classes, a forward pass on a padded batch, per-utterance NLLs that are finite and blind to the padding, sampling,
and evaluate_long against forward."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wavelab.audio import mu_law_encode, num_bins
from wavelab.models import (REGISTRY, CapabilityError, ModelConfig, ModelOutput, UnknownModelError, WavelabModel,
                            build_model, check_model_name, display_name, quick_config, registry_name)

NAMES = sorted(REGISTRY)
LENGTHS = (1024, 640)  # two utterances, the second right-padded by 384 samples


def model_of(name: str) -> WavelabModel:
    torch.manual_seed(0)
    return build_model(name, config=quick_config(name)).eval()


def speech_like(bits: int, T: int = max(LENGTHS), seed: int = 0) -> torch.Tensor:
    """``[len(LENGTHS), T]`` codes of a seeded sine mixture with noise, each row right-padded with random codes."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 16_000
    rows = []
    for i, n in enumerate(LENGTHS):
        x = 0.3 * np.sin(2 * np.pi * (180 + 70 * i) * t) + 0.1 * np.sin(2 * np.pi * 950 * t) + rng.normal(0, .02, T)
        codes = mu_law_encode(torch.from_numpy(np.clip(x, -1, 1)), bits)
        codes[n:] = torch.from_numpy(rng.integers(0, num_bins(bits), T - n))
        rows.append(codes)
    return torch.stack(rows).to(torch.int64)


def nll(model, codes, lengths, seed=0, long=False) -> torch.Tensor:
    torch.manual_seed(seed)  # latent models and flows draw noise: the same seed, the same draws
    with torch.no_grad():
        out = (model.evaluate_long if long else model)(codes, lengths)
    assert isinstance(out, ModelOutput)
    return out.nll.double()


@pytest.mark.parametrize("name", NAMES)
def test_registry_entries_follow_the_contract(name):
    config_cls, model_cls = REGISTRY[name]
    assert issubclass(model_cls, WavelabModel) and issubclass(config_cls, ModelConfig)
    assert dataclasses.is_dataclass(config_cls)
    quick = config_cls.quick_overrides()
    assert quick, f"{name}: quick_overrides() must give a smaller configuration than the paper's"
    paper, small = build_model(name), model_of(name)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in paper.parameters())
    assert small.bits in (8, 16) and isinstance(small.estimator(), str) and small.estimator()
    if small.has_iw_bound:
        assert small.is_bound and small.estimator(5) == "importance-weighted bound, K=5"
    else:
        with pytest.raises(CapabilityError, match="iw_bound"):
            small.iw_bound(speech_like(small.bits), torch.tensor(LENGTHS), 2)
        with pytest.raises(CapabilityError, match="iw_bound"):
            small.estimator(5)
    if not small.has_posterior_latents:
        with pytest.raises(CapabilityError):
            small.posterior_latents(speech_like(small.bits), torch.tensor(LENGTHS))
        assert small.latent_strides is None
    else:
        assert all(s >= 1 for s in small.latent_strides)
    small.set_train_step(3)  # every model accepts the schedule hook
    small.set_train_step(None)
    assert registry_name(small) == name  # WaveFlow and WaveGlow share a model class: the config tells them apart
    assert check_model_name(name) == name and display_name(name) == config_cls.display_name != ""


@pytest.mark.parametrize("name", NAMES)
def test_forward_on_a_padded_batch_is_finite_and_blind_to_the_padding(name):
    model = model_of(name)
    codes, lengths = speech_like(model.bits), torch.tensor(LENGTHS)
    with torch.no_grad():
        torch.manual_seed(0)
        out = model(codes, lengths)
    assert out.nll.shape == (2,) and out.frames.shape == (2,) and out.is_bound == model.is_bound
    assert bool(torch.isfinite(out.nll).all()) and out.frames.tolist() == list(LENGTHS)
    per_frame = out.nll.double() / out.frames
    assert bool((per_frame > 0).all()), "an NLL (or bound) of discrete codes is positive"
    # other padding content, same shapes (hence the same noise draws): the same per-utterance figures
    other = speech_like(model.bits, seed=1)
    other[0], other[1, : LENGTHS[1]] = codes[0], codes[1, : LENGTHS[1]]
    torch.testing.assert_close(nll(model, other, lengths), out.nll.double(), rtol=1e-5, atol=1e-3)
    if not model.is_bound:  # deterministic: more padding, or none at all, changes nothing either
        longer = torch.cat([codes, torch.zeros(2, 256, dtype=torch.int64)], dim=1)
        torch.testing.assert_close(nll(model, longer, lengths), out.nll.double(), rtol=1e-5, atol=1e-3)
        alone = nll(model, codes[1:, : LENGTHS[1]], lengths[1:])
        torch.testing.assert_close(alone, out.nll.double()[1:], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_sample_returns_valid_codes_of_the_asked_length(name):
    model = model_of(name)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x = model.sample(300, batch_size=2, temperature=1.0, generator=g)
    assert x.shape == (2, 300) and x.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) < num_bins(model.bits)


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_long_equals_forward(name):
    """On utterances that fit one segment, evaluate_long (segments with carried state, or forward itself by default)
    gives forward's figures, with the same noise for the stochastic models."""
    model = model_of(name)
    codes, lengths = speech_like(model.bits), torch.tensor(LENGTHS)
    torch.testing.assert_close(nll(model, codes, lengths, long=True), nll(model, codes, lengths),
                               rtol=1e-4, atol=1e-2)


# the incremental interface: every model that has one, checked against its own full pass
STEPPED = [name for name in NAMES if model_of(name).has_step]


def test_the_exact_autoregressive_models_have_the_incremental_interface_and_the_others_say_so():
    assert set(STEPPED) >= {"wavenet", "lstm", "sashimi"}
    for name in NAMES:
        model = model_of(name)
        if model.has_step:
            assert not model.is_bound and model.step_size >= 1
            continue
        assert model.step_size is None
        with pytest.raises(CapabilityError, match="incremental step"):
            model.default_state(1)
        with pytest.raises(CapabilityError, match="incremental step"):
            model.step(torch.zeros(1, 1, dtype=torch.int64), None)


@pytest.mark.parametrize("name", STEPPED)
def test_each_step_predicts_what_the_full_pass_predicts(name):
    """Run every row through ``default_state`` / ``step`` block by block (a short last block completed with
    silence): the log-likelihood of the codes under the stepped parameters is the full pass's NLL, row by row."""
    model = model_of(name).double()
    codes, lengths = speech_like(model.bits), torch.tensor(LENGTHS)
    n = model.step_size
    B, T = codes.shape
    blocks = -(-T // n)
    padded = torch.full((B, blocks * n), model.silence_code, dtype=torch.int64)
    padded[:, :T] = codes
    state, prev, log_p = model.default_state(B), model.silence_block(B), []
    for t in range(blocks):
        params, state = model.step(prev, state)
        assert params.shape == (B, model.distribution.num_params, n)
        prev = padded[:, t * n:(t + 1) * n]
        log_p.append(model.distribution.log_prob(params, prev))
    log_p = torch.cat(log_p, dim=1)[:, :T].double()
    stepped = -torch.where(torch.arange(T)[None, :] < lengths[:, None], log_p, torch.zeros_like(log_p)).sum(1)
    # float64 models, but heads that compute in float32 (SaShiMi's): agreement to a millionth of the NLL
    torch.testing.assert_close(stepped, nll(model, codes, lengths), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", STEPPED)
def test_sample_is_the_one_generation_loop_over_the_steps(name):
    """``sample`` draws exactly what :meth:`generate` draws from ``default_state`` and ``silence_block`` with the
    same generator, in whole blocks cut to length."""
    model = model_of(name)
    num = 2 * model.step_size + 3
    a = model.sample(num, batch_size=2, generator=torch.Generator().manual_seed(7))
    b = model.generate(num, model.default_state(2), model.silence_block(2),
                       generator=torch.Generator().manual_seed(7))
    assert a.shape == (2, num) and a.dtype == torch.int64 and torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < num_bins(model.bits)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(-1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(4, temperature=-1.0)


def test_an_unknown_model_name_is_refused_with_the_known_ones():
    with pytest.raises(UnknownModelError, match="unknown model 'transformer'; known models: cwvae, lstm"):
        check_model_name("transformer")
    with pytest.raises(KeyError):  # an UnknownModelError is a KeyError
        build_model("transformer")
