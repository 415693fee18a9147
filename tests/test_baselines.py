"""The three reference points: uniform is exactly b bits, the fitted DMoL recovers a known mixture, FLAC is lossless
and measures real compression."""

import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.baselines import code_histogram, fit_dmol, flac_bits, uniform_nll
from wavelab.distributions import DiscretizedMixtureLogistics
from wavelab.likelihood import bits_per_frame


def test_uniform_is_exactly_b_bits_per_frame():
    lengths = [16000, 48213, 7]
    assert bits_per_frame(uniform_nll(lengths, 16), lengths).weighted == pytest.approx(16.0, abs=1e-12)
    assert bits_per_frame(uniform_nll(lengths, 8), lengths).mean == pytest.approx(8.0, abs=1e-12)


def test_fit_dmol_recovers_a_known_mixture():
    dist = DiscretizedMixtureLogistics(num_components=2, bits=16)
    true = torch.tensor([0.5, -0.5, 0.02, -0.03, -3.5, -2.0])
    n = 400_000
    codes = dist.sample(true.reshape(1, 6, 1).expand(n, 6, 1), generator=torch.Generator().manual_seed(0))
    counts = code_histogram([codes], bits=16)
    fitted = fit_dmol(counts, num_components=2, bits=16)
    K = dist.num_bins
    true_logpmf = dist.log_prob(true.double().reshape(1, 6, 1).expand(1, 6, K), torch.arange(K).reshape(1, K))[0]
    true_bpf = float(-(counts * true_logpmf).sum() / counts.sum()) / math.log(2)
    # the ML fit is at least as good as the generating parameters on the data it was fitted to
    assert fitted.train_bpf <= true_bpf + 1e-3
    # and it found the same distribution: total variation distance between the pmfs is small
    tv = 0.5 * (fitted.log_pmf().exp() - true_logpmf.exp()).abs().sum()
    assert float(tv) < 0.02
    assert float(fitted.log_pmf().exp().sum()) == pytest.approx(1.0, abs=1e-6)


def test_flac_is_lossless_and_compresses_predictable_audio():
    t = np.arange(32000)
    tone = (8000 * np.sin(2 * np.pi * 220 * t / 16000)).astype(np.int16)
    noise = np.random.default_rng(0).integers(-32768, 32767, size=32000).astype(np.int16)
    assert flac_bits(tone) / len(tone) < 4.0       # a pure tone is highly predictable
    assert flac_bits(noise) / len(noise) > 15.9    # white 16-bit noise is incompressible
    buf = io.BytesIO()
    sf.write(buf, tone, 16000, format="FLAC", subtype="PCM_16", compression_level=1.0)
    buf.seek(0)
    assert np.array_equal(sf.read(buf, dtype="int16")[0], tone)
    with pytest.raises(TypeError):
        flac_bits(tone.astype(np.float32))
