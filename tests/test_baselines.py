"""The three reference points: uniform is exactly b bits, the fitted DMoL recovers a known mixture, FLAC is lossless
and measures real compression."""

import io
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.baselines import (code_histogram, fit_dmol, flac_bits, flac_encode, flac_tool_overhead_bytes,
                               run_baselines, uniform_nll)
from wavelab.data import Recording
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
    encoded = flac_encode(tone)
    assert 8 * len(encoded) == flac_bits(tone)
    decoded, sr = sf.read(io.BytesIO(encoded), dtype="int16")  # lossless: the exact samples come back
    assert sr == 16000 and np.array_equal(decoded, tone)
    with pytest.raises(TypeError):
        flac_bits(tone.astype(np.float32))


@pytest.mark.skipif(shutil.which("flac") is None, reason="the flac command-line tool is not installed")
@pytest.mark.parametrize("seconds", [3.0, 14.5])
def test_flac_tool_overhead_matches_the_flac_tool(tmp_path, seconds):
    """flac -8 writes exactly our stream size plus the padding and seek table we account for."""
    t = np.arange(int(seconds * 16000))
    rng = np.random.default_rng(1)
    audio = (3000 * np.sin(2 * np.pi * 150 * t / 16000) + rng.normal(0, 200, len(t))).astype(np.int16)
    wav = tmp_path / "x.wav"
    sf.write(wav, audio, 16000, subtype="PCM_16")
    sizes = {}
    for name, extra in (("default", []), ("bare", ["--no-padding", "--no-seektable"])):
        out = tmp_path / f"{name}.flac"
        subprocess.run(["flac", "-8", "-f", "-s", *extra, "-o", str(out), str(wav)], check=True)
        sizes[name] = out.stat().st_size
    assert sizes["default"] - sizes["bare"] == flac_tool_overhead_bytes(len(audio))


def test_run_baselines_end_to_end_orders_the_baselines():
    rng = np.random.default_rng(0)

    def ar_speech(n):  # a strongly autocorrelated signal: FLAC's linear prediction wins, the DMoL cannot
        x = np.zeros(n)
        e = rng.normal(0, 300, n)
        for i in range(2, n):
            x[i] = 1.8 * x[i - 1] - 0.85 * x[i - 2] + e[i]
        return np.clip(x, -32768, 32767).astype(np.int16)

    train = [Recording("u", ar_speech(6000)) for _ in range(3)]
    test = [Recording("u", ar_speech(4000)), Recording("u", ar_speech(2500))]
    res = {r.name: r for r in run_baselines(train, test)}
    assert list(res) == ["uniform", "dmol", "flac", "flac+padding", "histogram", "flac-codes"]
    assert res["uniform"].bpf.weighted == pytest.approx(16.0)
    assert res["flac"].bpf.weighted < res["dmol"].bpf.weighted < 16.0
    assert res["flac+padding"].bpf.weighted > res["flac"].bpf.weighted
    assert res["dmol"].bpf.frames == 6500 and res["dmol"].details["train_frames"] == 18000
