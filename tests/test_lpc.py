"""Tests of the linear-prediction path (wavelab.models.lpc, WaveNetConfig.lpc_order): the fit, causality, the cached
step, sampling, the codec and the training hook."""

import dataclasses

import numpy as np
import pytest
import torch

from wavelab.models.lpc import LinearPrediction, fit_lpc
from wavelab.models.wavenet import WaveNet, WaveNetConfig
from wavelab.representations import get_representation

torch.set_num_threads(1)


def tiny(seed=0, **overrides) -> WaveNet:
    fields = dict(Dc=8, blocks=2, layers_per_block=3, num_components=3, representation="pcm16", lpc_order=4)
    fields.update(overrides)
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(**fields))


def ar2(n: int, seed: int = 0) -> np.ndarray:
    """int16 samples of the AR(2) process x_t = 1.6 x_{t-1} - 0.8 x_{t-2} + e_t (a resonance near 0.1 cycles)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    e = rng.normal(0, 300, n)
    for t in range(2, n):
        x[t] = 1.6 * x[t - 1] - 0.8 * x[t - 2] + e[t]
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def test_fit_recovers_the_coefficients_of_an_autoregressive_process():
    a = fit_lpc([ar2(20000, 0), ar2(20000, 1)], order=4)
    assert a.shape == (4,)
    np.testing.assert_allclose(a, [1.6, -0.8, 0.0, 0.0], atol=0.03)


@pytest.mark.parametrize("bad,match", [([np.zeros(100, np.int16)], "silent"), ([np.ones(3, np.int16)], "cannot fit"),
                                       ([], "cannot fit")])
def test_fit_refuses_data_without_a_predictor(bad, match):
    with pytest.raises(ValueError, match=match):
        fit_lpc(bad, order=4)


def test_prediction_reads_only_past_samples_and_step_matches_the_full_pass():
    lp = LinearPrediction(3)
    with torch.no_grad():
        lp.a.copy_(torch.tensor([0.5, -0.25, 0.125]))
    x = torch.randn(2, 10)
    pred = lp(x)
    expect = torch.zeros_like(x)
    for t in range(10):
        for j, a in enumerate([0.5, -0.25, 0.125], start=1):
            if t - j >= 0:
                expect[:, t] += a * x[:, t - j]
    torch.testing.assert_close(pred, expect)
    history = torch.cat([torch.zeros(2, 3), x], dim=1)
    for t in range(10):
        torch.testing.assert_close(lp.step(history[:, t:t + 3]), expect[:, t])


def test_zero_coefficients_give_the_plain_model_and_fitted_ones_move_the_means():
    codes = torch.from_numpy(ar2(300).astype(np.int64) + 32768).unsqueeze(0)
    plain = tiny(lpc_order=0)
    with_lpc = tiny()  # same seed: the same network weights, coefficients zero
    with_lpc.load_state_dict({**plain.state_dict(), "lpc.a": torch.zeros(4)})
    torch.testing.assert_close(with_lpc.logits(codes), plain.logits(codes))
    with_lpc.fit_to_data([ar2(20000)])
    M = with_lpc.distribution.num_components
    shift = (with_lpc.logits(codes) - plain.logits(codes))[0, M:2 * M]
    rep = get_representation("pcm16")
    x_hat = with_lpc.lpc(rep.to_linear(codes))
    torch.testing.assert_close(shift, rep.model_value(x_hat).expand(M, -1), rtol=1e-5, atol=1e-5)
    assert with_lpc.config.num_parameters() == sum(p.numel() for p in with_lpc.parameters())


@pytest.mark.parametrize("representation", ["pcm16", "linear"])
def test_pmf_still_sums_to_one_and_cached_steps_equal_the_full_pass(representation):
    model = tiny(representation=representation).double()
    model.fit_to_data([ar2(20000)])
    T = model.receptive_field + 20
    codes = torch.from_numpy(ar2(T, seed=3).astype(np.int64) + 32768).view(1, T).repeat(2, 1)
    codes[1] = torch.randint(0, 2**16, (T,))
    full = model.logits(codes).detach()
    state = model.default_state(2)
    steps, x = [], model.silence_block(2)
    for t in range(T):
        params, state = model.step(x, state)
        steps.append(params)
        x = codes[:, t:t + 1]
    torch.testing.assert_close(torch.cat(steps, dim=-1), full, rtol=1e-7, atol=1e-7)
    P = 9  # a prompt fills the predictor's history too
    state = model.default_state(2, prompt=codes[:, :P])
    steps = [model.step(codes[:, t - 1:t], state)[0] for t in range(P, T)]
    torch.testing.assert_close(torch.cat(steps, dim=-1), full[:, :, P:], rtol=1e-7, atol=1e-7)
    # the shifted mixture is still a pmf over the 65,536 int16 values
    all_codes = torch.arange(2**16).view(1, -1)
    log_p = model.distribution.log_prob(full[:1, :, -1:].expand(-1, -1, 2**16), all_codes)
    torch.testing.assert_close(torch.logsumexp(log_p.double(), dim=-1), torch.zeros(1, dtype=torch.float64),
                               rtol=0, atol=1e-9)


def test_fast_and_naive_sampling_agree_with_the_predictor():
    model = tiny(seed=1).double()
    model.fit_to_data([ar2(20000)])
    fast = model.sample(40, batch_size=2, generator=torch.Generator().manual_seed(5))
    naive = model.sample_naive(40, batch_size=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(fast, naive)


def test_config_refuses_mulaw_and_negative_orders():
    with pytest.raises(ValueError, match="lossless representation"):
        WaveNetConfig(lpc_order=8)
    with pytest.raises(ValueError, match="lpc_order must be an integer >= 0"):
        WaveNetConfig(representation="pcm16", lpc_order=-1)


def test_training_fits_the_predictor_once_and_a_resume_keeps_it(tmp_path):
    from wavelab.train import TrainConfig, load_run, train

    from wavelab.data import Recording

    utts = [Recording(f"ar{seed}", ar2(6000, seed)) for seed in range(3)]
    overrides = dict(Dc=8, blocks=1, layers_per_block=3, num_components=2, representation="pcm16", lpc_order=2)
    cfg = TrainConfig(model="wavenet", model_overrides=overrides, run_dir=str(tmp_path / "run"), max_steps=2,
                      segment_length=500, batch_size=2, device="cpu", lr=1e-12)
    train(cfg, utterances=utts, progress=False)
    a = load_run(tmp_path / "run")[0].lpc.a.detach().double().numpy()
    np.testing.assert_allclose(a, fit_lpc([u.pcm for u in utts], 2), atol=1e-6)  # a tiny lr: the fitted coefficients
    other = [Recording("other", ar2(6000, 9))]
    train(dataclasses.replace(cfg, max_steps=3), utterances=other, progress=False)  # a resume: not refitted
    np.testing.assert_allclose(load_run(tmp_path / "run")[0].lpc.a.detach().double().numpy(), a, atol=1e-6)


def test_codec_round_trip_is_bit_exact_and_codes_the_models_bits():
    import math

    from codec_helpers import speech_pcm

    from wavelab.coding import CodecModel, Container, compress_pcm, decompress_bytes
    from wavelab.models import build_model, quick_config

    torch.manual_seed(0)
    model = build_model("wavenet", config=quick_config("wavenet", representation="pcm16", lpc_order=8))
    model.fit_to_data([speech_pcm(4000, 1)])
    codec = CodecModel.from_model(model, {})
    pcm = speech_pcm(600)
    data, stats = compress_pcm(codec, pcm)
    assert np.array_equal(decompress_bytes(codec, Container.from_bytes(data)), pcm)
    codes = codec.representation.codes_from_pcm16(pcm)
    with torch.no_grad():
        nll_bits = float(model(codes[None], torch.tensor([len(pcm)])).nll) / math.log(2)
    assert stats.ideal_bits == pytest.approx(nll_bits, rel=1e-4)
