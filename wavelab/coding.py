"""Likelihood is compression: a lossless codec of a run's codes from a trained autoregressive model and a range coder.

An exact-likelihood model gives, for every sample, a pmf over its ``2**bits`` codes given the samples before it.  An
entropy coder turns those pmfs into a bit stream whose length is, up to a small overhead, the model's code length
``sum_t -log2 p(x_t | x_{<t})`` bits: the bits per frame (bpf) the book reports are file sizes.  This module does it for
real, with the range coder of ``constriction`` (Bamler 2022, https://bamler-lab.github.io/constriction/; a queue:
symbols are decoded in the order they were encoded; ``Categorical(perfect=False)`` models, which quantise each pmf to
the coder's fixed-point precision and keep every symbol's probability above zero), and writes a small container file
(``.wlc``).

**The pmf of a sample** comes from the model's own output distribution (its ``distribution`` attribute, a
:class:`~wavelab.distributions.DiscretizedMixtureLogistics` or a :class:`~wavelab.distributions.Categorical`).  A
2^16-symbol pmf is not materialised per sample: the code ``k`` is split into a coarse part ``c = k >> 8`` and a fine
part ``f = k & 255``, and two exact categorical pmfs of 256 symbols each are coded, ``P(c) = P(codes 256c .. 256c +
255)`` (the mass of the run, from the distribution's ``runs_log_prob``: the mixture CDF for the DMoL) and
``P(f | c) = P(256c + f) / P(c)`` (bin masses).  ``P(c) P(f | c) = P(k)``, so nothing is lost: the code length is the
full pmf's (:func:`coarse_fine_log_pmf`; tested against the full pmf).  For 8-bit models the split is 16 x 16.

**Determinism.**  The decoder must compute bit for bit the same pmfs as the encoder, or it decodes garbage.  Both run
one code path (the model's own incremental ``step``, see :mod:`wavelab.models.base`, and :func:`coarse_fine_log_pmf`
for the pmfs) with the same tensor shapes, in inference mode, on one CPU thread: the decoder necessarily runs
incrementally (one recurrent step per frame of ``s`` samples for the LSTM, one cached WaveNet or recurrent SaShiMi
step per sample), so the encoder runs exactly the same incremental computation instead of one fast forward pass.
A decoder on another machine or torch version could still round differently; the container records the torch
version, and a checksum of the decoded PCM catches any disagreement.

**Supported models**: every model with an exact likelihood and the incremental interface (:func:`supported_models`:
the LSTM at any stack size ``s``, whose step emits ``s`` conditionally independent DMoLs, WaveNet and SaShiMi).
Latent variable models (VRNN, SRNN, CW-VAE) have only a bound on the likelihood and would need bits-back coding, and
the flows no incremental step; they raise :class:`CodecError`.

**Representations.**  :func:`representation_for` picks the run's :mod:`wavelab.representations` object, the one
mapping between int16 PCM and a run's codes.  For a ``mulaw`` run (16-bit mu-law codes) the codec is lossless on the
mu-law codes, so decompression reproduces the mu-law-decoded audio, not the input's int16 samples (equal below about
|x| = 3,000, at most 6 LSBs apart in the loudest samples; re-compressing that output gives the same codes).  For
``linear`` / ``pcm16`` runs (code = int16 + 32768) it reproduces the input's samples bit for bit.

Container (``.wlc``, little-endian)::

    magic        8 bytes   b"WAVELABC"
    version      u16       FORMAT_VERSION
    flags        u16       bit 0: lossless for the input PCM (the representation is lossless)
    represent.   16 bytes  representation name, ASCII, NUL padded ("mulaw", "linear", "pcm16")
    model        32 bytes  SHA-256 of the model's name, settings and weights (:func:`model_fingerprint`)
    torch        16 bytes  torch version of the encoder, ASCII, NUL padded
    sample_rate  u32       Hz
    frames       u64       samples
    pcm_sha256   32 bytes  SHA-256 of the int16 little-endian PCM that decompression writes
    words        u64       payload length in 32-bit words
    payload      4 * words bytes, the range coder's words
    crc32        u32       CRC-32 of every byte before it

:data:`HEADER_BYTES` (128) + 4 bytes of CRC are the fixed overhead per file on top of the coder's payload.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .models import REGISTRY, WavelabModel, registry_name

if TYPE_CHECKING:
    from .representations import Representation

MAGIC = b"WAVELABC"
FORMAT_VERSION = 1
SAMPLE_RATE = 16_000  # Hz: every corpus wavelab trains on (TIMIT, LibriSpeech) is 16 kHz
_HEADER = struct.Struct("<8sHH16s32s16sIQ32sQ")
HEADER_BYTES = _HEADER.size
TRAILER_BYTES = 4
FLAG_LOSSLESS = 1
LN2 = math.log(2.0)


class CodecError(ValueError):
    """A file that cannot be compressed, decompressed or scored, or a run the codec cannot use.  The message names
    the file and says why (a ``ValueError``, reported by the command line as a user error)."""


# --------------------------------------------------------------------------------------------------------------------
# representations: the one place that maps int16 PCM <-> a run's codes


def representation_for(model, run_config: dict | None = None) -> Representation:
    """The representation of a run: the mapping between int16 PCM and the model's codes.

    THE adapter point for representations: the run's ``representation`` setting (``model.config.representation``,
    else ``run_config["representation"]`` / ``run_config["train_config"]["representation"]``, else ``"mulaw"``, the
    paper's) picks ``mulaw`` (:func:`wavelab.audio.pcm16_to_codes`, lossy) or ``linear`` / ``pcm16``
    (code = int16 + 32768, lossless).  The pmf over the codes always comes from ``model.distribution``, whatever
    the representation (see :func:`coarse_fine_log_pmf`).

    Args:
        model: a loaded wavelab model (``bits`` attribute).
        run_config: the run's ``config.json`` as a dict (optional).
    Returns:
        :class:`wavelab.representations.Representation` (``codes_from_pcm16``, ``pcm16_from_codes``,
        ``lossless``).
    Raises:
        CodecError: an unknown representation, or a lossless one on a model whose codes are not 16-bit.
    """
    from .representations import get_representation

    run_config = run_config or {}
    name = getattr(getattr(model, "config", None), "representation", None)
    name = name or run_config.get("representation") or run_config.get("train_config", {}).get("representation")
    try:
        return get_representation(name or "mulaw", model.bits)
    except ValueError as e:
        raise CodecError(f"the codec cannot use this run's representation: {e}") from e


# --------------------------------------------------------------------------------------------------------------------
# pmfs: coarse run of codes, then the code within it


def split_bits(bits: int) -> tuple[int, int]:
    """``(coarse_bits, fine_bits)`` of a ``bits``-bit code: 8 + 8 for 16 bits, 4 + 4 for 8 bits."""
    fine = bits // 2
    return bits - fine, fine


def _runs_log_prob(distribution, params: torch.Tensor, start: torch.Tensor, width: int, count: int) -> torch.Tensor:
    """``[n, count]`` log-masses of runs of codes from the model's distribution (``params [n, P]``, ``start [n]``)."""
    return distribution.runs_log_prob(params.t().unsqueeze(0), start.unsqueeze(0), width, count)[0]


def coarse_log_pmf(distribution, params: torch.Tensor) -> torch.Tensor:
    """Normalised log-pmf of the coarse part ``c = k >> fine_bits`` of each sample's code: the mass of the run of
    codes ``c 2**fine_bits .. (c + 1) 2**fine_bits - 1``.

    Args:
        distribution: the model's output distribution (``bits``, ``runs_log_prob``).
        params: ``[n, P]`` distribution parameters of ``n`` samples.
    Returns:
        float64 ``[n, 2**coarse_bits]`` log-probabilities (nats), each row normalised.
    """
    cb, fb = split_bits(distribution.bits)
    start = torch.zeros(params.shape[0], dtype=torch.int64, device=params.device)
    lm = _runs_log_prob(distribution, params, start, 2 ** fb, 2 ** cb).double()
    return lm - torch.logsumexp(lm, dim=1, keepdim=True)


def fine_log_pmf(distribution, params: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """Normalised log-pmf of the fine part ``f = k & (2**fine_bits - 1)`` given the coarse part of each sample.

    Args:
        distribution: as :func:`coarse_log_pmf`.
        params: ``[n, P]``.
        coarse: int64 ``[n]`` coarse parts.
    Returns:
        float64 ``[n, 2**fine_bits]`` log-probabilities (nats), each row normalised: ``P(k) / P(c)``.
    """
    _, fb = split_bits(distribution.bits)
    lm = _runs_log_prob(distribution, params, coarse.to(torch.int64) << fb, 1, 2 ** fb).double()
    return lm - torch.logsumexp(lm, dim=1, keepdim=True)


def coarse_fine_log_pmf(distribution, params: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Log-probability (nats) the two-stage code assigns to each code: ``log P(c) + log P(f | c)``, float64 ``[n]``.

    Equals the model's own ``distribution.log_prob`` up to float rounding (the coarse and fine pmfs are exact
    factors of the full pmf).  ``params [n, P]``, ``codes`` int64 ``[n]``.
    """
    _, fb = split_bits(distribution.bits)
    c, f = codes >> fb, codes & (2 ** fb - 1)
    lc = coarse_log_pmf(distribution, params).gather(1, c[:, None])[:, 0]
    lf = fine_log_pmf(distribution, params, c).gather(1, f[:, None])[:, 0]
    return lc + lf


# --------------------------------------------------------------------------------------------------------------------
# the network, one step at a time (the same computation in encoder and decoder)


class _Stepper:
    """Runs a model through its incremental interface (:meth:`~wavelab.models.base.WavelabModel.step`):
    :meth:`params` gives the distribution parameters ``[n, P]`` of the next block of ``block`` samples given
    everything pushed so far; :meth:`push` feeds those samples' codes back.

    Raises:
        CodecError: the model cannot be coded with (see :func:`check_supported`).
    """

    def __init__(self, model):
        check_supported(model)
        self.model, self.block = model, model.step_size
        self.state = model.default_state(1)
        self.prev = model.silence_block(1)  # [1, block]

    def params(self) -> torch.Tensor:
        p, self.state = self.model.step(self.prev, self.state)  # [1, P, block]
        return p[0].t()

    def push(self, codes: torch.Tensor) -> None:
        """``codes`` int64 ``[block]``: a whole block (only the last block can be short, and it is never pushed)."""
        self.prev = codes.reshape(1, self.block)


def supported_models() -> list[str]:
    """The registry names of the models the codec can use: those with an incremental step and an exact likelihood
    (see :func:`check_supported`)."""
    return [name for name, (_, cls) in REGISTRY.items()
            if cls.step is not WavelabModel.step and not cls.is_bound]


def check_supported(model) -> str:
    """The model's registry name if the codec can use it: an exact likelihood (a bound would need bits-back coding)
    and the incremental interface (:attr:`~wavelab.models.base.WavelabModel.has_step`).

    Raises:
        CodecError: the model cannot be used, with the reason and the models that can.
    """
    name = registry_name(model)
    if model.is_bound:
        why = "its likelihood is a bound (negative ELBO); a latent variable model needs bits-back coding"
    elif not model.has_step:
        why = "it has no incremental step (default_state / step) to rebuild each pmf from the samples decoded"
    else:
        return name
    raise CodecError(f"the codec does not support {name} models ({why}); supported: {', '.join(supported_models())}")


@contextlib.contextmanager
def _deterministic():
    """One CPU thread and inference mode for the duration (encoder and decoder run identical arithmetic)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(threads)


def _probs(log_pmf: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(log_pmf.exp().numpy())


def encode_codes(model, codes: torch.Tensor) -> tuple[np.ndarray, float]:
    """Range-code a sequence of codes with the model's pmfs.

    Args:
        model: a supported model on the CPU, in eval mode.
        codes: int64 ``[T]`` codes in ``[0, 2**bits - 1]``.
    Returns:
        ``(words, ideal_bits)``: the coder's output (uint32 ``[W]``) and the ideal code length in bits,
        ``sum_t -log2 p(x_t | x_{<t})`` under the pmfs actually coded (coarse + fine).
    Raises:
        CodecError: unsupported model.
    """
    import constriction

    codes = torch.as_tensor(codes, dtype=torch.int64).reshape(-1).cpu()
    _, fb = split_bits(model.bits)
    family = constriction.stream.model.Categorical(perfect=False)
    encoder = constriction.stream.queue.RangeEncoder()
    ideal = 0.0
    with _deterministic():
        stepper = _Stepper(model)
        dist = model.distribution
        T = len(codes)
        for t0 in range(0, T, stepper.block):
            x = codes[t0:t0 + stepper.block]
            params = stepper.params()[: len(x)]
            c, f = x >> fb, x & (2 ** fb - 1)
            lc = coarse_log_pmf(dist, params)
            encoder.encode(c.numpy().astype(np.int32), family, _probs(lc))
            lf = fine_log_pmf(dist, params, c)
            encoder.encode(f.numpy().astype(np.int32), family, _probs(lf))
            ideal -= float(lc.gather(1, c[:, None]).sum() + lf.gather(1, f[:, None]).sum())
            if t0 + stepper.block < T:
                stepper.push(x)
    return encoder.get_compressed(), ideal / LN2


def decode_codes(model, words: np.ndarray, frames: int) -> torch.Tensor:
    """Inverse of :func:`encode_codes`: ``frames`` int64 codes ``[frames]`` from the coder's words (uint32 ``[W]``).

    A range decoder that has consumed all its words goes on decoding from zeros without complaint, so a corrupt
    ``frames`` or payload could make it run for hours.  A valid stream cannot: the coder emits a word whenever its
    range has shrunk by 2**32, so the information of the symbols decoded after the last word was read is at most the
    decoder's 64-bit state plus a word (about 96 bits).  Past :data:`MAX_BITS_AFTER_END` bits (each symbol's
    ``-log2 p``, capped at the coder's 24-bit precision), counted over the blocks that start after the last word was
    read, the data is declared corrupt; so is a stream with words still unread after its last sample.

    Raises:
        CodecError: unsupported model; the data runs out long before ``frames`` samples, or words are left over
            after them; or the range decoder rejects the data.
    """
    import constriction

    _, fb = split_bits(model.bits)
    family = constriction.stream.model.Categorical(perfect=False)
    decoder = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
    out = torch.empty(min(frames, _FIRST_OUT), dtype=torch.int64)  # grown by doubling: ``frames`` may be absurd
    bits_after_end, ended = 0.0, False
    with _deterministic():
        stepper = _Stepper(model)
        dist = model.distribution
        for t0 in range(0, frames, stepper.block):
            n = min(stepper.block, frames - t0)
            params = stepper.params()[:n]
            lc = coarse_log_pmf(dist, params)
            c = _decode(decoder, family, lc)
            lf = fine_log_pmf(dist, params, c)
            f = _decode(decoder, family, lf)
            if ended:  # blocks decoded wholly after the last word was read
                bits_after_end += _capped_bits(lc, c) + _capped_bits(lf, f)
                if bits_after_end > MAX_BITS_AFTER_END:
                    raise CodecError(f"the payload ends after about {t0:,} of the {frames:,} samples it should hold")
            ended = ended or decoder.maybe_exhausted()
            x = (c << fb) | f
            if t0 + n > len(out):
                out = torch.cat([out, torch.empty(max(len(out), t0 + n), dtype=torch.int64)])
            out[t0:t0 + n] = x
            if t0 + n < frames:
                stepper.push(x)
    if not decoder.maybe_exhausted():
        raise CodecError(f"words are left over after the {frames:,} samples the header announces")
    return out[:frames]


MAX_BITS_AFTER_END = 1024.0  # bits: ten times the ~96 a valid stream can hold once its words are consumed
_FIRST_OUT = 1 << 20  # samples the decoder's output buffer starts with
_MAX_SYMBOL_BITS = 24.0  # constriction's Categorical quantises to 24 bits: no symbol costs more


def _decode(decoder, family, log_pmf: torch.Tensor) -> torch.Tensor:
    """One block of symbols ``[n]`` (int64) from ``log_pmf`` ``[n, K]``; the coder's own complaints (it raises
    ``AssertionError`` on data that is invalid for the pmf) become :class:`CodecError`."""
    try:
        return torch.from_numpy(np.asarray(decoder.decode(family, _probs(log_pmf)), dtype=np.int64))
    except (AssertionError, RuntimeError, ValueError, OverflowError) as e:
        raise CodecError(f"the range decoder rejects the data ({e})") from e


def _capped_bits(log_pmf: torch.Tensor, symbols: torch.Tensor) -> float:
    """``sum -log2 p(symbol)`` over a block, each term capped at :data:`_MAX_SYMBOL_BITS`."""
    nats = -log_pmf.gather(1, symbols[:, None])
    return float((nats / LN2).clamp(max=_MAX_SYMBOL_BITS).sum())


# --------------------------------------------------------------------------------------------------------------------
# runs and their fingerprint


def model_fingerprint(model, name: str, model_config: dict, representation: str) -> bytes:
    """SHA-256 (32 bytes) of a model's registry name, settings, representation and every weight (names, dtypes,
    shapes and bytes of its ``state_dict``): a container is decoded only by the model that encoded it."""
    h = hashlib.sha256()
    h.update(json.dumps({"model": name, "config": model_config, "representation": representation},
                        sort_keys=True, default=str).encode())
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


@dataclasses.dataclass
class CodecModel:
    """A run loaded for coding: the model (CPU, eval mode), its name, settings, representation and fingerprint."""

    model: torch.nn.Module
    name: str
    config: dict
    representation: Representation
    fingerprint: bytes
    run_dir: Path | None = None

    @classmethod
    def from_model(cls, model, run_config: dict | None = None, run_dir: Path | None = None) -> CodecModel:
        """Wrap an in-memory model (e.g. a freshly built quick model in a test).

        Raises:
            CodecError: unsupported model or representation.
        """
        name = check_supported(model)
        model = model.cpu().eval()
        config = dataclasses.asdict(model.config) if dataclasses.is_dataclass(model.config) else dict(model.config)
        rep = representation_for(model, run_config)
        return cls(model, name, config, rep, model_fingerprint(model, name, config, rep.name), run_dir)


def load_codec_model(run_dir: str | Path) -> CodecModel:
    """Load a run (its ``checkpoint.pt``) on the CPU for compression, decompression or scoring.

    Raises:
        CodecError: the run directory or its checkpoint is missing, or the model/representation is unsupported.
    """
    from .runs import read_run_config
    from .train import load_run

    run_dir = Path(run_dir)
    try:
        model, _, _ = load_run(run_dir, device="cpu")
    except FileNotFoundError as e:
        raise CodecError(str(e)) from e
    return CodecModel.from_model(model, read_run_config(run_dir), run_dir)


# --------------------------------------------------------------------------------------------------------------------
# the container


@dataclasses.dataclass(frozen=True)
class Container:
    """A parsed ``.wlc`` file (see the module docstring for the layout)."""

    version: int
    lossless: bool
    representation: str
    fingerprint: bytes
    torch_version: str
    sample_rate: int
    frames: int
    pcm_sha256: bytes
    words: np.ndarray

    def to_bytes(self) -> bytes:
        """The file's bytes: header, payload and CRC-32 trailer."""
        head = _HEADER.pack(MAGIC, self.version, FLAG_LOSSLESS if self.lossless else 0,
                            self.representation.encode("ascii"), self.fingerprint,
                            self.torch_version.encode("ascii")[:16], self.sample_rate, self.frames,
                            self.pcm_sha256, len(self.words))
        body = head + np.ascontiguousarray(self.words, dtype="<u4").tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, path: str | Path = "<bytes>") -> Container:
        """Parse and check a container.

        Raises:
            CodecError: too short, bad magic, unsupported version, unknown flags, truncated (or trailing bytes),
                CRC mismatch; the message names ``path``.
        """
        if len(data) < HEADER_BYTES + TRAILER_BYTES:
            if not data.startswith(MAGIC[: len(data)]) or len(data) == 0:
                raise CodecError(f"{path} is not a wavelab compressed file ({len(data)} bytes, no {MAGIC!r} header)")
            raise CodecError(f"{path} is truncated: {len(data)} bytes, shorter than the "
                             f"{HEADER_BYTES + TRAILER_BYTES}-byte header of a wavelab compressed file")
        (magic, version, flags, rep, fingerprint, torch_version, sample_rate, frames, pcm_sha256,
         n_words) = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"{path} is not a wavelab compressed file (starts with {magic!r}, expected {MAGIC!r})")
        if version == 2:
            raise CodecError(f"{path} was written by the portable codec (container version 2, wavelab.portable): "
                             f"decompress it without --run-dir (the shipped model), or with the pcm16 WaveNet run "
                             f"that wrote it")
        if version != FORMAT_VERSION:
            raise CodecError(f"{path} has container format version {version}; this wavelab reads version "
                             f"{FORMAT_VERSION}")
        if flags & ~FLAG_LOSSLESS:
            raise CodecError(f"{path} is corrupt: its header sets unknown flags ({flags:#06x})")
        expected = HEADER_BYTES + 4 * n_words + TRAILER_BYTES
        if len(data) < expected:
            raise CodecError(f"{path} is truncated: its header promises {expected} bytes, the file has {len(data)} "
                             f"(or the header's length field is damaged)")
        if len(data) > expected:
            raise CodecError(f"{path} is corrupt: {len(data) - expected} unexpected bytes after the end of the data "
                             f"(or the header's length field is damaged)")
        (crc,) = struct.unpack_from("<I", data, expected - TRAILER_BYTES)
        if zlib.crc32(data[: expected - TRAILER_BYTES]) != crc:
            raise CodecError(f"{path} is corrupt: its CRC-32 does not match its contents (a changed or damaged byte)")
        words = np.frombuffer(data, dtype="<u4", count=n_words, offset=HEADER_BYTES).astype(np.uint32)
        return cls(version, bool(flags & FLAG_LOSSLESS), rep.rstrip(b"\0").decode("ascii", "replace"), fingerprint,
                   torch_version.rstrip(b"\0").decode("ascii", "replace"), sample_rate, frames, pcm_sha256, words)


def read_container(path: str | Path) -> Container:
    """Read and check a ``.wlc`` file (see :meth:`Container.from_bytes`).

    Raises:
        CodecError: missing or unreadable file, or any defect :meth:`Container.from_bytes` finds.
    """
    return Container.from_bytes(read_wlc_bytes(path), path)


def read_wlc_bytes(path: str | Path) -> bytes:
    """The bytes of a ``.wlc`` file (any container version).

    Raises:
        CodecError: the file is missing or unreadable (names it).
    """
    path = Path(path)
    if not path.is_file():
        raise CodecError(f"compressed file {path} does not exist (or is not a file)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise CodecError(f"cannot read compressed file {path}: {e.strerror}") from e


def pcm_sha256(pcm: np.ndarray) -> bytes:
    """SHA-256 (32 bytes) of int16 PCM as little-endian bytes: the checksum a container stores."""
    return hashlib.sha256(np.ascontiguousarray(pcm, dtype="<i2").tobytes()).digest()


# --------------------------------------------------------------------------------------------------------------------
# files


@dataclasses.dataclass(frozen=True)
class CompressionStats:
    """What :func:`compress_file` / :func:`compress_pcm` measured.

    Attributes:
        frames: samples coded.
        ideal_bits: ``sum_t -log2 p(x_t | x_{<t})`` under the coded pmfs (the model's code length).
        payload_bits: the range coder's output, ``32 * words``.
        file_bits: the whole container, ``payload_bits + 8 * (HEADER_BYTES + TRAILER_BYTES)``.
        representation: the run's representation; lossless: whether decompression gives back the input's PCM.
    """

    frames: int
    ideal_bits: float
    payload_bits: int
    file_bits: int
    representation: str
    lossless: bool

    @property
    def ideal_bpf(self) -> float:
        """Model bits per frame, ``ideal_bits / frames``."""
        return self.ideal_bits / self.frames

    @property
    def file_bpf(self) -> float:
        """Real bits per frame of the file, ``file_bits / frames``."""
        return self.file_bits / self.frames

    @property
    def overhead(self) -> float:
        """Relative coder overhead of the payload, ``payload_bits / ideal_bits - 1``."""
        return self.payload_bits / self.ideal_bits - 1.0


def compress_pcm(codec: CodecModel, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[bytes, CompressionStats]:
    """Compress int16 PCM ``[T]`` into a container's bytes.

    Returns:
        ``(data, stats)``.
    Raises:
        CodecError: not 1-D int16, empty, or ``sample_rate`` is not :data:`SAMPLE_RATE`.
    """
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1 or len(pcm) == 0:
        raise CodecError(f"compress_pcm expects non-empty 1-D int16 PCM, got {pcm.dtype} of shape {pcm.shape}")
    if sample_rate != SAMPLE_RATE:
        raise CodecError(f"audio at {sample_rate} Hz: the models are trained on {SAMPLE_RATE} Hz audio")
    rep = codec.representation
    codes = rep.codes_from_pcm16(pcm)
    words, ideal = encode_codes(codec.model, codes)
    out_pcm = pcm if rep.lossless else rep.pcm16_from_codes(codes)
    container = Container(FORMAT_VERSION, rep.lossless, rep.name, codec.fingerprint, torch.__version__.split("+")[0],
                          sample_rate, len(pcm), pcm_sha256(out_pcm), words)
    data = container.to_bytes()
    stats = CompressionStats(len(pcm), ideal, 32 * len(words), 8 * len(data), rep.name, rep.lossless)
    return data, stats


def decompress_bytes(codec: CodecModel, container: Container, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode a checked container into int16 PCM ``[frames]``.

    Raises:
        CodecError: the container was made by another model or representation, has a sample rate other than
            :data:`SAMPLE_RATE`, a lossless flag its representation contradicts or no samples, its payload does not
            decode to exactly ``frames`` samples (see :func:`decode_codes`), or its decoded PCM does not match the
            stored checksum; the message names ``path``.
    """
    if container.fingerprint != codec.fingerprint:
        where = f" {codec.run_dir}" if codec.run_dir is not None else ""
        raise CodecError(f"{path} was compressed with another model (weights/settings fingerprint "
                         f"{container.fingerprint.hex()[:12]}), not with the run{where} "
                         f"({codec.fingerprint.hex()[:12]}); decompress it with the run that compressed it")
    if container.representation != codec.representation.name:
        raise CodecError(f"{path} holds {container.representation!r} codes, the run uses "
                         f"{codec.representation.name!r}")
    if container.sample_rate != SAMPLE_RATE:
        raise CodecError(f"{path} says its audio is at {container.sample_rate} Hz; the model codes "
                         f"{SAMPLE_RATE} Hz audio, so the file is corrupt or not made by this codec")
    if container.lossless != codec.representation.lossless:
        raise CodecError(f"{path} is corrupt: its lossless flag ({container.lossless}) contradicts its "
                         f"{container.representation} representation")
    if container.frames < 1:
        raise CodecError(f"{path} is corrupt: its header announces {container.frames} samples")
    try:
        codes = decode_codes(codec.model, container.words, container.frames)
    except ValueError as e:  # CodecError is one
        raise CodecError(f"{path} is corrupt: {e}") from e
    pcm = codec.representation.pcm16_from_codes(codes)
    if pcm_sha256(pcm) != container.pcm_sha256:
        here = torch.__version__.split("+")[0]
        hint = (f" it was encoded with torch {container.torch_version}, this is torch {here}"
                if container.torch_version != here else " the file is corrupt, or this machine computed other pmfs "
                                                        "than the encoder's (another CPU or library build)")
        raise CodecError(f"{path}: the decoded audio does not match the file's PCM checksum;{hint}")
    return pcm


def compress_file(codec: CodecModel, in_path: str | Path, out_path: str | Path) -> CompressionStats:
    """``IN.wav -> OUT.wlc``: read a mono 16-bit 16 kHz audio file, code it, write the container atomically.

    Raises:
        CodecError: the input is unusable (:class:`wavelab.audio.AudioError`'s reason, naming the file) or the output
            folder does not exist; nothing is written then.
    """
    from .audio import AudioError, read_audio

    in_path, out_path = Path(in_path), Path(out_path)
    try:
        pcm = read_audio(in_path, expected_sample_rate=SAMPLE_RATE)
    except AudioError as e:
        raise CodecError(str(e)) from e
    data, stats = compress_pcm(codec, pcm)
    _write_atomic(out_path, data)
    return stats


def decompress_file(codec: CodecModel, in_path: str | Path, out_path: str | Path) -> Container:
    """``IN.wlc -> OUT.wav`` (16 kHz mono 16-bit PCM), written atomically after every check passed.

    Returns:
        the :class:`Container` read.
    Raises:
        CodecError: see :func:`read_container` and :func:`decompress_bytes`; nothing is written then.
    """
    import soundfile as sf

    container = read_container(in_path)
    pcm = decompress_bytes(codec, container, in_path)
    buf = io.BytesIO()
    sf.write(buf, pcm, container.sample_rate, format="WAV", subtype="PCM_16")
    _write_atomic(Path(out_path), buf.getvalue())
    return container


def _write_atomic(path: Path, data: bytes) -> None:
    from .runs import atomic_write_bytes

    if not path.parent.is_dir():
        raise CodecError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        atomic_write_bytes(path, lambda f: f.write(data))
    except OSError as e:
        raise CodecError(f"cannot write {path}: {e.strerror}") from e


__all__ = [
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "MAGIC",
    "SAMPLE_RATE",
    "CodecError",
    "CodecModel",
    "CompressionStats",
    "Container",
    "check_supported",
    "coarse_fine_log_pmf",
    "coarse_log_pmf",
    "compress_file",
    "compress_pcm",
    "decode_codes",
    "decompress_bytes",
    "decompress_file",
    "encode_codes",
    "fine_log_pmf",
    "load_codec_model",
    "model_fingerprint",
    "pcm_sha256",
    "read_container",
    "read_wlc_bytes",
    "representation_for",
    "split_bits",
    "supported_models",
]
