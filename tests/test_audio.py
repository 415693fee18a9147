"""Tests of wavelab.audio: the mu-law codec's round trips and the file reader's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavelab.audio import (
    AudioError,
    audio_info,
    bin_half_width,
    mu_law_compress,
    mu_law_decode,
    mu_law_encode,
    pcm16_to_codes,
    read_audio,
)

ALL_INT16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)


# --- mu-law codec ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [8, 16])
def test_encode_decode_is_identity_on_every_code(bits):
    k = torch.arange(2**bits)
    assert torch.equal(mu_law_encode(mu_law_decode(k, bits), bits), k)


@pytest.mark.parametrize("bits", [8, 16])
def test_decode_encode_within_half_a_step_for_every_int16(bits):
    x = ALL_INT16.to(torch.float64) / 32768.0
    k = mu_law_encode(ALL_INT16, bits)
    # companded domain: the code's value is the nearest grid point, at most half a gap away
    y_err = (mu_law_compress(x, bits) - mu_law_compress(mu_law_decode(k, bits, torch.float64), bits)).abs()
    assert y_err.max() <= bin_half_width(bits) * (1 + 1e-9)
    # linear domain: mu-law expansion is convex in |y|, so the error is at most half the larger of the two gaps to
    # the neighbouring decoded values (checked for inner codes; the end codes have only one neighbour)
    grid = mu_law_decode(torch.arange(2**bits), bits, torch.float64)
    gaps = torch.diff(grid)
    inner = (k > 0) & (k < 2**bits - 1)
    ki = k[inner]
    local = torch.maximum(gaps[ki - 1], gaps[ki])
    assert inner.sum() > 0.9 * len(k)
    assert ((grid[ki] - x[inner]).abs() <= local / 2 + 1e-12).all()


@pytest.mark.parametrize("bits", [8, 16])
def test_codec_is_monotonic_and_spans_all_codes(bits):
    k = mu_law_encode(ALL_INT16, bits)  # ALL_INT16 is sorted
    assert (torch.diff(k) >= 0).all()
    assert k.min() == 0 and k.max() == 2**bits - 1
    assert (torch.diff(mu_law_decode(torch.arange(2**bits), bits, torch.float64)) > 0).all()
    assert mu_law_encode(torch.tensor([-1.0, 1.0]), bits).tolist() == [0, 2**bits - 1]


@pytest.mark.parametrize("bits,tol", [(8, 1e-4), (16, 1e-8)])
def test_middle_codes_decode_near_zero(bits, tol):
    middle = torch.tensor([2 ** (bits - 1) - 1, 2 ** (bits - 1)])
    x = mu_law_decode(middle, bits, torch.float64)
    assert (x.abs() < tol).all() and x[0] < 0 < x[1]


@pytest.mark.parametrize("bits", [8, 16])
def test_lookup_table_matches_mu_law_encode(bits):
    assert torch.equal(pcm16_to_codes(ALL_INT16.numpy(), bits), mu_law_encode(ALL_INT16, bits))
    with pytest.raises(TypeError, match="int16"):
        pcm16_to_codes(np.zeros(3, dtype=np.float32), bits)


# --- real files ------------------------------------------------------------------------------------------------------

def test_every_real_file_loads(shared_data):
    files = sorted(p for ext in ("*.wav", "*.flac") for p in shared_data.rglob(ext))
    assert len(files) == 511  # 160 TIMIT + 251 + 100 LibriSpeech
    for path in files:
        info = audio_info(path)
        x = read_audio(path)
        assert x.dtype == np.int16 and x.ndim == 1 and len(x) == info.frames > 0, path
        assert info.header_frames in (None, info.frames), path


def test_nist_sphere_named_wav_reads_like_riff(timit_root):
    path = timit_root / "dr1-fvmh0" / "si836.wav"
    info = audio_info(path)
    assert info.format == "NIST" and info.header_frames == info.frames == 68813
    x = read_audio(path)
    assert len(x) == 68813 and x.min() == -6058 and x.max() == 8163  # sample_min / sample_max in its header
    f = read_audio(path, dtype="float32")
    assert f.dtype == np.float32 and np.allclose(f * 32768, x)


# --- bad input -------------------------------------------------------------------------------------------------------

def _speech_like(n: int = 4000, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, channels)) * 3000).astype(np.int16)
    return x[:, 0] if channels == 1 else x


def _write(path: Path, x: np.ndarray, rate: int = 16000, fmt: str | None = None, subtype: str = "PCM_16") -> Path:
    sf.write(path, x, rate, format=fmt, subtype=subtype)
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_container_is_detected_from_the_header_not_the_name(tmp_path):
    x = _speech_like()
    path = _write(tmp_path / "really_flac.wav", x, fmt="FLAC")
    assert audio_info(path).format == "FLAC"
    assert np.array_equal(read_audio(path), x)


@pytest.mark.parametrize("fmt", ["WAV", "NIST", "FLAC"])
def test_truncated_file_raises(tmp_path, fmt):
    path = _truncate(_write(tmp_path / f"cut.{fmt.lower()}", _speech_like(), fmt=fmt))
    with pytest.raises(AudioError, match=r"cut\.") as err:
        read_audio(path)
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)


def test_truncated_wav_names_promised_frames(tmp_path):
    path = _truncate(_write(tmp_path / "cut.wav", _speech_like(4000)))
    with pytest.raises(AudioError, match=r"cut\.wav is truncated: its header promises 4000 frames"):
        read_audio(path)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: d / "missing.wav", r"missing\.wav does not exist"),
        (lambda d: (d / "garbage.wav").write_bytes(b"this is not audio" * 50) and d / "garbage.wav",
         r"garbage\.wav.*corrupt"),
        (lambda d: (d / "zero.wav").write_bytes(b"") or d / "zero.wav", r"zero\.wav is empty"),
        (lambda d: _write(d / "empty.wav", np.zeros(0, np.int16)), r"empty\.wav is empty"),
        (lambda d: _write(d / "stereo.wav", _speech_like(channels=2)), r"stereo\.wav has 2 channels"),
        (lambda d: _write(d / "rate.wav", _speech_like(), rate=8000), r"rate\.wav has sample rate 8000 Hz"),
        (lambda d: _write(d / "deep.wav", _speech_like(), subtype="PCM_24"), r"deep\.wav stores PCM_24"),
        (lambda d: _write(d / "float.wav", _speech_like() / 32768.0, subtype="FLOAT"), r"float\.wav stores FLOAT"),
    ],
    ids=["missing", "garbage", "zero-bytes", "zero-frames", "stereo", "sample-rate", "24-bit", "float"],
)
def test_bad_files_raise_audio_error_naming_the_file(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(AudioError, match=match):
        read_audio(path)


def test_checks_can_be_relaxed_where_they_do_not_matter(tmp_path):
    x = _speech_like()
    assert len(read_audio(_write(tmp_path / "rate.wav", x, rate=8000), expected_sample_rate=None)) == len(x)
    y = read_audio(_write(tmp_path / "deep.wav", x, subtype="PCM_24"), require_pcm16=False)
    assert np.array_equal(y, x)  # 16-bit values stored in 24 bits come back exactly
    with pytest.raises(ValueError, match="dtype"):
        read_audio(tmp_path / "rate.wav", expected_sample_rate=None, dtype="int32")
