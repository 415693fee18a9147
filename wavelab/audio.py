"""Audio I/O and the mu-law codec.

The benchmark of Havtorn et al. (section 3, "Data") represents speech as mu-law companded PCM at the original bit depth
of 16 bits: 2^16 discrete values evenly spaced in [-1, 1] with a gap of 2 / (2^16 - 1).  This module converts between

* linear amplitude ``x`` in [-1, 1] (int16 / 32768),
* the companded value ``y = sign(x) ln(1 + mu |x|) / ln(1 + mu)`` with ``mu = 2^bits - 1`` (ITU-T G.711 style), and
* the integer code ``k`` in {0, ..., 2^bits - 1}, whose companded value is ``y_k = -1 + 2 k / (2^bits - 1)``.

Models read ``y_k`` as input and put their output distribution over the codes ``k``: the default representation,
``"mulaw"``.  :mod:`wavelab.representations` adds 16-bit linear PCM codes (``"linear"``) and a pmf over the int16
values with companded input (``"pcm16"``), built on the functions here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SUPPORTED_BITS = (8, 16)


def _check_bits(bits: int) -> int:
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"mu-law bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    return bits


def num_bins(bits: int) -> int:
    """Number of discrete mu-law values, ``2**bits`` (65,536 for the paper's 16-bit audio)."""
    return 2 ** _check_bits(bits)


def bin_half_width(bits: int) -> float:
    """Half the gap between neighbouring companded values, ``1 / (2**bits - 1)`` (the DMoL bin half-width)."""
    return 1.0 / (num_bins(bits) - 1)


def mu_law_compress(x: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Compand linear amplitude to ``y = sign(x) ln(1 + mu|x|) / ln(1 + mu)``, ``mu = 2**bits - 1``.

    Args:
        x: float tensor of any shape, linear amplitude; values are clipped to [-1, 1].
        bits: 8 or 16.
    Returns:
        float tensor of the same shape and dtype, companded values in [-1, 1].
    Raises:
        ValueError: for unsupported ``bits``.
    """
    mu = num_bins(bits) - 1
    x = x.clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_expand(y: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Inverse of :func:`mu_law_compress`: ``x = sign(y) ((1 + mu)^|y| - 1) / mu``. Same shapes and dtype."""
    mu = num_bins(bits) - 1
    y = y.clamp(-1.0, 1.0)
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def companded_to_codes(y: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Quantise companded values in [-1, 1] to the nearest code ``k = round((y + 1) (2**bits - 1) / 2)`` (int64)."""
    k_max = num_bins(bits) - 1
    return torch.round((y.clamp(-1.0, 1.0) + 1.0) * (k_max / 2.0)).long().clamp_(0, k_max)


def codes_to_companded(codes: torch.Tensor, bits: int = 16, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Companded value of each code, ``y_k = -1 + 2 k / (2**bits - 1)``: the model input and DMoL bin centre.

    Args:
        codes: integer tensor of any shape with values in [0, 2**bits - 1].
    Returns:
        tensor of ``dtype`` and the same shape, in [-1, 1].
    """
    k_max = num_bins(bits) - 1
    return codes.to(dtype) * (2.0 / k_max) - 1.0


def mu_law_encode(x: torch.Tensor | np.ndarray, bits: int = 16) -> torch.Tensor:
    """Linear audio to mu-law codes.

    Args:
        x: linear amplitude in [-1, 1] (float tensor or array of any shape), or an int16 array/tensor, which is read as
            ``x / 32768``.
        bits: 8 or 16.
    Returns:
        int64 tensor of the same shape with codes in [0, 2**bits - 1].
    Raises:
        ValueError: for unsupported ``bits``.
    """
    x = torch.as_tensor(x)
    if x.dtype == torch.int16:
        x = x.to(torch.float64) / 32768.0
    elif not x.is_floating_point():
        raise TypeError(f"mu_law_encode expects float audio in [-1, 1] or int16 PCM, got dtype {x.dtype}")
    # float64 so that 16-bit codes are exact for every int16 input
    return companded_to_codes(mu_law_compress(x.to(torch.float64), bits), bits)


def mu_law_decode(codes: torch.Tensor, bits: int = 16, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Mu-law codes to linear amplitude in [-1, 1] (inverse of :func:`mu_law_encode` up to quantisation)."""
    y = codes_to_companded(torch.as_tensor(codes), bits, dtype=torch.float64)
    return mu_law_expand(y, bits).to(dtype)


# ----------------------------------------------------------------------------------------------------------------------
# Reading audio files
# ----------------------------------------------------------------------------------------------------------------------
# Everything goes through soundfile (libsndfile), which decides the container from the file's header, not its name: RIFF
# WAVE, NIST SPHERE (one file of the NLTK TIMIT sample, dr1-fvmh0/si836.wav, is SPHERE despite its .wav name) and FLAC
# all read the same way.  libsndfile silently shortens a truncated WAV or SPHERE file to the frames actually present, so
# the frame count the header promises is read here separately and compared with what was decoded.

import dataclasses as _dataclasses
import os as _os
import re as _re
import struct as _struct
from pathlib import Path as _Path

import soundfile as _sf

PCM_16_SUBTYPE = "PCM_16"


class AudioError(RuntimeError):
    """An audio file that cannot be used: missing, unreadable, truncated, empty, multi-channel, wrong rate or depth.

    The message names the file, says what is wrong and what to do about it.
    """


@_dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, read without decoding the samples.

    Attributes:
        path: the file.
        sample_rate: samples per second (Hz).
        frames: number of frames (samples per channel) that libsndfile can read.
        channels: number of channels.
        format: container as soundfile names it (``"WAV"``, ``"NIST"``, ``"FLAC"``, ...).
        subtype: sample encoding (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ...).
        header_frames: frames the header promises where the container states it (RIFF ``data`` chunk size, SPHERE
            ``sample_count``, FLAC STREAMINFO), else ``None``; larger than ``frames`` for a truncated WAV/SPHERE file.
    """

    path: _Path
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str
    header_frames: int | None = None

    @property
    def duration(self) -> float:
        """Length in seconds, ``frames / sample_rate``."""
        return self.frames / self.sample_rate


def _riff_data_frames(path: _Path, block_align: int) -> int | None:
    """Frames the RIFF ``data`` chunk size promises (None if the chunk is not found or has a streaming placeholder)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], _struct.unpack(endian + "I", chunk[4:])[0]
            if cid == b"data":
                if size in (0, 0xFFFFFFFF) or block_align <= 0:
                    return None  # size left unset by a streaming writer: nothing promised
                return size // block_align
            f.seek(size + (size & 1), _os.SEEK_CUR)


def _nist_sample_count(path: _Path) -> int | None:
    """``sample_count`` from a NIST SPHERE header (None if absent)."""
    with open(path, "rb") as f:
        head = f.read(1024).decode("latin-1", errors="replace")
    m = _re.search(r"^sample_count\s+-i\s+(\d+)", head, flags=_re.MULTILINE)
    return int(m.group(1)) if m else None


def audio_info(path: str | _os.PathLike) -> AudioInfo:
    """Read an audio file's header (rate, frames, channels, container, encoding) without decoding its samples.

    Args:
        path: any file libsndfile reads (RIFF WAV, NIST SPHERE, FLAC, ...), whatever its extension.
    Returns:
        :class:`AudioInfo`.
    Raises:
        AudioError: the file is missing or is not an audio file libsndfile can open.
    """
    path = _Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist (or is not a file); check the path and the data root "
                         f"(set WAVELAB_DATA to the folder holding the corpus)")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes); remove it from the data set or re-create it")
    try:
        info = _sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError with libsndfile's own text
        why = str(e).rstrip(".")
        raise AudioError(f"cannot read audio file {path}: {why}. The file is corrupt or not in a format libsndfile "
                         f"reads (WAV, NIST SPHERE, FLAC); re-download or re-convert it") from e
    header_frames: int | None = info.frames
    if info.format == "WAV" or info.format == "WAVEX":
        block_align = info.channels * {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                                       "PCM_U8": 1, "PCM_S8": 1}.get(info.subtype, 0)
        header_frames = _riff_data_frames(path, block_align)
    elif info.format == "NIST":
        header_frames = _nist_sample_count(path)
    return AudioInfo(path=path, sample_rate=int(info.samplerate), frames=int(info.frames),
                     channels=int(info.channels), format=info.format, subtype=info.subtype,
                     header_frames=header_frames)


def read_audio(path: str | _os.PathLike, expected_sample_rate: int | None = 16000, dtype: str = "int16",
               require_pcm16: bool = True) -> np.ndarray:
    """Read a mono 16-bit PCM audio file (WAV, NIST SPHERE or FLAC, detected from the header) into memory.

    Args:
        path: the audio file.
        expected_sample_rate: required sample rate in Hz (the benchmark's audio is 16 kHz); ``None`` accepts any.
        dtype: ``"int16"`` for the PCM values as stored, or ``"float32"`` / ``"float64"`` for ``int16 / 32768`` in
            [-1, 1).
        require_pcm16: refuse files whose samples are not 16-bit PCM (24-bit, float, 8-bit), since reading them as
            int16 would silently requantise the audio the likelihoods are measured on.
    Returns:
        ``np.ndarray`` of shape ``[T]`` (T samples) and the requested dtype.
    Raises:
        AudioError: missing file; unreadable or corrupt file; truncated file (the header promises more frames than
            the file holds); empty file (0 frames); more than one channel; sample rate other than
            ``expected_sample_rate``; not 16-bit PCM when ``require_pcm16``.
        ValueError: unsupported ``dtype``.
    """
    if dtype not in ("int16", "float32", "float64"):
        raise ValueError(f"read_audio dtype must be 'int16', 'float32' or 'float64', got {dtype!r}")
    info = audio_info(path)
    path = info.path
    if info.channels != 1:
        raise AudioError(f"audio file {path} has {info.channels} channels; wavelab models mono speech. Mix it down "
                         f"first, e.g. `sox {path.name} -c 1 mono.wav` or soundfile + x.mean(axis=1)")
    if expected_sample_rate is not None and info.sample_rate != expected_sample_rate:
        raise AudioError(f"audio file {path} has sample rate {info.sample_rate} Hz, expected {expected_sample_rate} "
                         f"Hz; resample it first (e.g. `sox {path.name} -r {expected_sample_rate} out.wav` or "
                         f"librosa.resample)")
    if require_pcm16 and info.subtype != PCM_16_SUBTYPE:
        raise AudioError(f"audio file {path} stores {info.subtype} samples, not 16-bit PCM; the benchmark measures "
                         f"likelihoods of 16-bit audio. Convert it (e.g. `sox {path.name} -b 16 out.wav`) or pass "
                         f"require_pcm16=False to requantise on reading")
    try:
        x, _ = _sf.read(str(path), dtype="int16", always_2d=False)
    except Exception as e:
        why = str(e).rstrip(".")
        raise AudioError(f"cannot decode audio file {path}: {why}. The file is corrupt or truncated; re-download or "
                         f"re-convert it") from e
    promised = info.header_frames if info.header_frames is not None else info.frames
    if len(x) < promised:
        raise AudioError(f"audio file {path} is truncated: its header promises {promised} frames but only {len(x)} "
                         f"are present; re-download or re-convert it")
    if len(x) == 0:
        raise AudioError(f"audio file {path} is empty (0 frames); remove it from the data set or re-create it")
    if dtype == "int16":
        return x
    return (x.astype(dtype) / np.asarray(32768.0, dtype=dtype)).astype(dtype)


_PCM16_TABLES: dict[int, np.ndarray] = {}


def pcm16_to_codes(x: np.ndarray | torch.Tensor, bits: int = 16) -> torch.Tensor:
    """int16 PCM of any shape -> int64 mu-law codes of the same shape, through a 65,536-entry lookup table.

    Gives exactly ``mu_law_encode(x, bits)`` for int16 input, an order of magnitude faster, and accepts read-only
    arrays.

    Raises:
        TypeError: ``x`` is not int16.
        ValueError: unsupported ``bits``.
    """
    _check_bits(bits)
    x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.dtype != np.int16:
        raise TypeError(f"pcm16_to_codes expects int16 PCM, got dtype {x.dtype}")
    if bits not in _PCM16_TABLES:
        all_pcm = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
        _PCM16_TABLES[bits] = mu_law_encode(all_pcm, bits).numpy()
    return torch.from_numpy(_PCM16_TABLES[bits][x.astype(np.int64) + 32768])
