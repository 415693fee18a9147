"""The portable codec: ``.wlc`` files that decode bit for bit on any machine, from a model that ships with the package.

Every number that reaches the range coder is an integer computed by :mod:`wavelab.fixedpoint` (the network, the
mixture's CDF) and :mod:`wavelab.adaptive` (the NLMS cascade), so encoder and decoder agree on every machine; the
coder is constriction's range coder (Bamler 2022) with ``Categorical(perfect=False)`` models fed integer masses as
float64 (exact below ``2**53``), which it normalises and quantises in IEEE arithmetic without transcendental functions.

**Coding a sample.**  Its 16-bit code is sent as four hexadecimal digits, most significant first; digit ``j`` has a
16-entry pmf, the masses ``C(lo + (i + 1) w) - C(lo + i w)`` of the sixteen runs of codes that the digits already
sent leave open (``w = 2**(12 - 4j)``, :func:`wavelab.fixedpoint.cdf_points`).  The product of the four pmfs is the
integer pmf of the code, so nothing is lost but the coder's 24-bit quantisation.

**Blocks.**  A file is cut into blocks of :data:`BLOCK` samples, each coded by its own network state from silence, so
that the decoder can run the blocks of one file, and of several files, as one batch (the network's step costs
about the same for 1 or 64 streams).  The adaptive cascade of a hybrid model runs over the whole file, unbroken.  The
rate a block boundary costs is measured by ``benchmarks/portable_codec.py``.  The symbols of one file go into one
range-coder stream, ordered by time step, then digit, then block.

Container (``.wlc`` version 2, little-endian)::

    magic        8 bytes   b"WAVELABC"
    version      u16       2 (version 1 is the float codec of :mod:`wavelab.coding`)
    arithmetic   u16       :data:`wavelab.fixedpoint.ARITHMETIC_VERSION` of the encoder
    model        32 bytes  SHA-256 of the integer model and tables (:meth:`IntegerWaveNet.fingerprint`)
    sample_rate  u32       Hz (16,000)
    frames       u64       samples
    block        u32       samples per block
    group        u32       blocks per call of the network (:func:`_schedule`)
    pcm_sha256   32 bytes  SHA-256 of the int16 little-endian PCM
    words        u64       payload length in 32-bit words
    payload      4 * words bytes
    crc32        u32       CRC-32 of every byte before it
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np

from . import adaptive
from .coding import MAGIC, SAMPLE_RATE, CodecError, pcm_sha256, read_wlc_bytes
from .fixedpoint import ARITHMETIC_VERSION, IntegerWaveNet, cdf_points

FORMAT_VERSION = 2
#: samples per block, and blocks per call of the network (see the module and :func:`_schedule`)
BLOCK, GROUP = 4096, 64
#: the longest file (samples; 37 hours at 16 kHz)
MAX_FRAMES = 1 << 31
#: bits per coded digit and digits per sample
DIGIT_BITS, DIGITS = 4, 4
#: the default model: the best codec model of ``results/compression``, quantised (``scripts/make_codec_model.py``)
DEFAULT_MODEL = Path(__file__).resolve().parent / "codec_model" / "wavenet-hybrid.npz"
_HEADER = struct.Struct("<8sHH32sIQII32sQ")
HEADER_BYTES, TRAILER_BYTES = _HEADER.size, 4
_SILENCE = 1 << 15


def load_default_model() -> IntegerWaveNet:
    """The integer model shipped in the package (:data:`DEFAULT_MODEL`).

    Raises:
        CodecError: the file is missing or unreadable (a broken installation).
    """
    try:
        return IntegerWaveNet.load(DEFAULT_MODEL)
    except (FileNotFoundError, ValueError) as e:
        raise CodecError(f"the shipped codec model cannot be read: {e}") from e


@dataclasses.dataclass(frozen=True)
class PortableContainer:
    """A parsed version-2 ``.wlc`` file (see the module)."""

    arithmetic: int
    fingerprint: bytes
    sample_rate: int
    frames: int
    block: int
    group: int
    pcm_sha256: bytes
    words: np.ndarray

    def to_bytes(self) -> bytes:
        """Header, payload and CRC-32 trailer."""
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, self.arithmetic, self.fingerprint, self.sample_rate, self.frames,
                            self.block, self.group, self.pcm_sha256, len(self.words))
        body = head + np.ascontiguousarray(self.words, dtype="<u4").tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, path: str | Path = "<bytes>") -> PortableContainer:
        """Parse and check a file.

        Raises:
            CodecError: not a ``.wlc`` file, another container version (version 1: the float codec) or arithmetic
                version, truncated, trailing bytes, CRC mismatch, or an impossible header; names ``path``.
        """
        if len(data) < 10 or data[:8] != MAGIC:
            raise CodecError(f"{path} is not a wavelab compressed file (no {MAGIC!r} header)")
        (version,) = struct.unpack_from("<H", data, 8)
        if version == 1:
            raise CodecError(f"{path} was written by the float codec (container version 1): it decodes only with "
                             f"the run that wrote it, on a machine with the same arithmetic; use "
                             f"`python -m wavelab decompress --run-dir RUN` there")
        if version != FORMAT_VERSION:
            raise CodecError(f"{path} has container version {version}; this wavelab reads versions 1 and "
                             f"{FORMAT_VERSION}")
        if len(data) < HEADER_BYTES + TRAILER_BYTES:
            raise CodecError(f"{path} is truncated: {len(data)} bytes, shorter than the header")
        _, _, arithmetic, fp, rate, frames, block, group, sha, n_words = _HEADER.unpack_from(data)
        if arithmetic != ARITHMETIC_VERSION:
            raise CodecError(f"{path} was coded with integer arithmetic version {arithmetic}; this wavelab "
                             f"computes version {ARITHMETIC_VERSION}, so a wavelab whose "
                             f"wavelab.fixedpoint.ARITHMETIC_VERSION is {arithmetic} must decode it")
        expected = HEADER_BYTES + 4 * n_words + TRAILER_BYTES
        if len(data) != expected:
            raise CodecError(f"{path} is {'truncated' if len(data) < expected else 'corrupt'}: its header promises "
                             f"{expected} bytes, the file has {len(data)}")
        if zlib.crc32(data[:-TRAILER_BYTES]) != struct.unpack_from("<I", data, expected - TRAILER_BYTES)[0]:
            raise CodecError(f"{path} is corrupt: its CRC-32 does not match its contents")
        if rate != SAMPLE_RATE or not 1 <= frames <= MAX_FRAMES or block < 1 or not 1 <= group <= 4096:
            raise CodecError(f"{path} is corrupt: {frames} samples at {rate} Hz in blocks of {block}, {group} per call")
        words = np.frombuffer(data, dtype="<u4", count=n_words, offset=HEADER_BYTES).astype(np.uint32)
        return cls(arithmetic, fp, rate, frames, block, group, sha, words)


def _blocks(frames: int, block: int) -> list[tuple[int, int]]:
    """``(start, length)`` of each block of a file."""
    return [(s, min(block, frames - s)) for s in range(0, frames, block)]


def _schedule(frames: list[int], block: int, group: int) -> list[list[tuple[int, int, int]]]:
    """The calls of :func:`_run_streams` for a batch of files: each a list of ``(file, start, length)`` blocks.

    A file's blocks are cut into groups of ``group`` consecutive blocks; consecutive groups of different files share a
    call while the call holds at most ``group`` blocks, and two groups of one file never do.  Within a call the blocks
    run longest first (a stable sort), so the order of a file's symbols (call by call: time step, digit, block) is the
    same whichever files it is batched with, and a file decodes alone or in any batch."""
    calls, current, files_in = [], [], set()
    for f, n in enumerate(frames):
        blocks = _blocks(n, block)
        for g in range(0, len(blocks), group):
            unit = [(f, s, m) for s, m in blocks[g:g + group]]
            if current and (f in files_in or len(current) + len(unit) > group):
                calls.append(current)
                current, files_in = [], set()
            current += unit
            files_in.add(f)
    if current:
        calls.append(current)
    return [sorted(c, key=lambda r: -r[2]) for c in calls]


def _digit_points(prefix: np.ndarray, level: int) -> np.ndarray:
    """``[n, 17]`` code boundaries of the sixteen runs open at digit ``level`` given the codes' ``prefix`` (the
    digits sent so far, as the code's value with the rest zero)."""
    width = 1 << (16 - DIGIT_BITS * (level + 1))
    return prefix[:, None] + width * np.arange(17, dtype=np.int64)[None, :]


def _masses(model: IntegerWaveNet, params: np.ndarray, prefix: np.ndarray, level: int) -> np.ndarray:
    """``[n, 16]`` integer masses (as float64, exact) of the sixteen values of digit ``level``."""
    c = cdf_points(model, params, _digit_points(prefix, level))
    return np.diff(c, axis=1).astype(np.float64)


def _run_streams(model: IntegerWaveNet, call: list[tuple[int, int, int]], coder) -> np.ndarray:
    """The loop both sides share, over one call of :func:`_schedule`: step every active block, and for each digit let
    ``coder(level, params, prefix, rows, t)`` send or recover the digits of the active blocks (``rows``: their
    indices in ``call``, longest first).  Returns the codes ``[blocks, longest]``."""
    lens = np.array([r[2] for r in call], dtype=np.int64)
    codes = np.zeros((len(call), int(lens[0])), dtype=np.int64)
    state = model.new_state(len(call))
    prev = np.full(len(call), _SILENCE, dtype=np.int64)
    for t in range(codes.shape[1]):
        n = int(np.count_nonzero(lens > t))
        params = model.step(prev[:n], state)
        prefix = np.zeros(n, dtype=np.int64)
        for level in range(DIGITS):
            digit = coder(level, params, prefix, t)
            prefix += digit << (16 - DIGIT_BITS * (level + 1))
        codes[:n, t] = prefix
        prev = prefix
    return codes


def _codes_of(model: IntegerWaveNet, pcm: np.ndarray) -> np.ndarray:
    """The codes the network models: the samples', or a hybrid's wrapped cascade residual's (int64, 0 .. 65535)."""
    x = pcm.astype(np.int64)
    if model.config.get("adaptive_residual"):
        x = adaptive.wrapped_residual(x)
    return x + _SILENCE


def _pcm_of(model: IntegerWaveNet, codes: np.ndarray) -> np.ndarray:
    x = codes - _SILENCE
    if model.config.get("adaptive_residual"):
        x = adaptive.reconstruct_from_wrapped(x)
    return x.astype(np.int16)


def encode(model: IntegerWaveNet, pcms: list[np.ndarray], block: int = BLOCK, group: int = GROUP,
           progress=None) -> tuple[list[bytes], list[float]]:
    """Compress int16 PCM arrays (16 kHz mono) as one batch.

    Args:
        model: the integer model; pcms: 1-D int16 arrays, each non-empty; block: samples per block; group: blocks
            per call (see :func:`_schedule`); progress: called with the samples of each finished call.
    Returns:
        ``(files, ideal_bits)``: each file's ``.wlc`` bytes and its ideal code length under the integer pmfs (bits).
    Raises:
        CodecError: an array that is not non-empty 1-D int16, or one longer than :data:`MAX_FRAMES`.
    """
    import constriction

    for i, p in enumerate(pcms):
        if not isinstance(p, np.ndarray) or p.dtype != np.int16 or p.ndim != 1 or not 0 < len(p) <= MAX_FRAMES:
            raise CodecError(f"encode: input {i} is not 1-D int16 PCM of 1 to {MAX_FRAMES:,} samples")
    targets = [_codes_of(model, p) for p in pcms]
    family = constriction.stream.model.Categorical(perfect=False)
    encoders = [constriction.stream.queue.RangeEncoder() for _ in pcms]
    ideal = np.zeros(len(pcms))
    for call in _schedule([len(p) for p in pcms], block, group):
        files = np.array([f for f, _, _ in call])
        table = np.zeros((len(call), call[0][2]), dtype=np.int64)  # [blocks, longest]: each block's codes
        for r, (f, s, n) in enumerate(call):
            table[r, :n] = targets[f][s:s + n]

        def send(level, params, prefix, t, files=files, table=table):
            n = len(prefix)
            digit = (table[:n, t] >> (16 - DIGIT_BITS * (level + 1))) & 15
            m = _masses(model, params, prefix, level)
            np.add.at(ideal, files[:n], np.log2(m.sum(1)) - np.log2(m[np.arange(n), digit]))
            for f in np.unique(files[:n]):
                rows = files[:n] == f
                encoders[f].encode(digit[rows].astype(np.int32), family, m[rows])
            return digit

        _run_streams(model, call, send)
        if progress is not None:
            progress(sum(r[2] for r in call))
    out = []
    for p, enc in zip(pcms, encoders):
        c = PortableContainer(ARITHMETIC_VERSION, model.fingerprint(), SAMPLE_RATE, len(p), block, group,
                              pcm_sha256(p), enc.get_compressed())
        out.append(c.to_bytes())
    return out, list(ideal)


def decode(model: IntegerWaveNet, containers: list[PortableContainer], names: list[str] | None = None,
           progress=None) -> list[np.ndarray]:
    """Decompress containers (one batch; they must share a block length and group) into int16 PCM arrays.

    Raises:
        CodecError: a container written by another model or with another block length or group than the batch's, a
            payload that the range decoder rejects or that does not hold exactly its samples, or decoded audio that
            does not match its checksum; the message names the file.
    """
    import constriction

    names = names or [f"file {i}" for i in range(len(containers))]
    fp = model.fingerprint()
    for c, name in zip(containers, names):
        if c.fingerprint != fp:
            raise CodecError(f"{name} was compressed with another model ({c.fingerprint.hex()[:12]}), not with this "
                             f"one ({fp.hex()[:12]}); decompress it with the model that wrote it")
    if len({(c.block, c.group) for c in containers}) > 1:
        raise CodecError("decode: one batch must share one block length and group; decode the files one at a time")
    if not containers:
        return []
    family = constriction.stream.model.Categorical(perfect=False)
    decoders = [constriction.stream.queue.RangeDecoder(c.words) for c in containers]
    full = [np.empty(c.frames, dtype=np.int64) for c in containers]
    for call in _schedule([c.frames for c in containers], containers[0].block, containers[0].group):
        files = np.array([f for f, _, _ in call])

        def receive(level, params, prefix, t, files=files):
            n = len(prefix)
            m = _masses(model, params, prefix, level)
            digit = np.empty(n, dtype=np.int64)
            for f in np.unique(files[:n]):
                rows = files[:n] == f
                try:
                    digit[rows] = decoders[f].decode(family, m[rows])
                except (AssertionError, RuntimeError, ValueError) as e:
                    raise CodecError(f"{names[f]} is corrupt: the range decoder rejects it ({e})") from e
            return digit

        codes = _run_streams(model, call, receive)
        for r, (f, s, n) in enumerate(call):
            full[f][s:s + n] = codes[r, :n]
        if progress is not None:
            progress(sum(r[2] for r in call))
    out = []
    for f, (c, name) in enumerate(zip(containers, names)):
        pcm = _pcm_of(model, full[f])
        if not decoders[f].maybe_exhausted() or pcm_sha256(pcm) != c.pcm_sha256:
            raise CodecError(f"{name} is corrupt: its payload does not decode to the audio its checksum names")
        out.append(pcm)
    return out


def read_portable(path: str | Path) -> PortableContainer:
    """Read and check a version-2 ``.wlc`` file.

    Raises:
        CodecError: missing or unreadable, or any defect :meth:`PortableContainer.from_bytes` finds.
    """
    return PortableContainer.from_bytes(read_wlc_bytes(path), path)


# ----------------------------------------------------------------------------------------------------------------------
# files and folders

#: the audio files a folder is searched for
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclasses.dataclass(frozen=True)
class FileResult:
    """One file through :func:`compress_paths` or :func:`decompress_paths`: its source and target, samples, the
    ``.wlc`` size in bytes and, for compression, what ``flac -8`` would write (bytes, with the ``flac`` tool's
    default padding and seek table: :func:`wavelab.baselines.flac_tool_overhead_bytes`)."""

    source: Path
    target: Path
    frames: int
    wlc_bytes: int
    flac8_bytes: int | None = None


def pair_paths(inputs: list[str | Path], output: str | Path, suffixes: tuple[str, ...], new_suffix: str
               ) -> list[tuple[Path, Path]]:
    """``(source, target)`` for every file to code.  One input file: ``output`` is the target file (or, if it is an
    existing folder, the target goes inside it).  Several inputs or a folder: ``output`` is a folder; a folder's files
    with ``suffixes`` are found recursively and its tree is mirrored, each target named ``stem + new_suffix``.

    Raises:
        CodecError: an input that does not exist, a folder with no such files, or a file where a folder is needed.
    """
    inputs, output = [Path(p) for p in inputs], Path(output)
    for p in inputs:
        if not p.exists():
            raise CodecError(f"{p} does not exist (nothing was written)")
    if len(inputs) == 1 and inputs[0].is_file():
        target = output / (inputs[0].stem + new_suffix) if output.is_dir() else output
        if not target.parent.is_dir():
            raise CodecError(f"cannot write {target}: folder {target.parent} does not exist (nothing was written)")
        return [(inputs[0], target)]
    if output.exists() and not output.is_dir():
        raise CodecError(f"{output} is a file; with several inputs or a folder the output must be a folder")
    pairs = []
    for p in inputs:
        if p.is_file():
            pairs.append((p, output / (p.stem + new_suffix)))
            continue
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        if not found:
            raise CodecError(f"folder {p} holds no {' or '.join(suffixes)} files (nothing was written)")
        pairs += [(f, output / f.relative_to(p).with_suffix(new_suffix)) for f in found]
    return pairs


def _check_targets(pairs: list[tuple[Path, Path]], force: bool) -> None:
    targets = [t for _, t in pairs]
    if len(set(targets)) < len(targets):
        raise CodecError("two inputs would write the same output file (same name in different folders); code them "
                         "separately (nothing was written)")
    for s, t in pairs:
        if t.exists() and s.resolve() == t.resolve():
            raise CodecError(f"{t} is both an input and an output (nothing was written)")
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        which = f"{existing[0]} and {len(existing) - 1} more outputs already exist" if len(existing) > 1 else \
            f"{existing[0]} already exists"
        raise CodecError(f"{which}; pass --force to overwrite (nothing was written)")


def _batches(sizes: list[int]) -> list[list[int]]:
    """Consecutive files grouped until a batch fills one call of the network (``GROUP * BLOCK`` samples)."""
    batches, current, total = [], [], 0
    for i, n in enumerate(sizes):
        current.append(i)
        total += n
        if total >= GROUP * BLOCK:
            batches.append(current)
            current, total = [], 0
    return batches + ([current] if current else [])


def _write(path: Path, data: bytes) -> None:
    from .runs import atomic_write_bytes

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, lambda f: f.write(data))
    except OSError as e:
        raise CodecError(f"cannot write {path}: {e.strerror}") from e


def compress_paths(model: IntegerWaveNet, inputs, output, force: bool = False, progress: bool = True
                   ) -> list[FileResult]:
    """Compress audio files and folders (16 kHz mono 16-bit WAV or FLAC) into ``.wlc`` files (see
    :func:`pair_paths`), in batches, with a progress bar.  Every input is read and checked before anything is written.

    Raises:
        CodecError: see :func:`pair_paths`; an output that exists (without ``force``) or is also an input; an input
            that is not 16 kHz mono 16-bit PCM (:func:`wavelab.audio.read_audio`'s reason, naming the file).
    """
    from tqdm.auto import tqdm

    from .audio import AudioError, read_audio
    from .baselines import flac_bits, flac_tool_overhead_bytes

    pairs = pair_paths(inputs, output, AUDIO_SUFFIXES, ".wlc")
    _check_targets(pairs, force)
    try:
        pcms = [read_audio(s, expected_sample_rate=SAMPLE_RATE) for s, _ in pairs]
    except AudioError as e:
        raise CodecError(f"{e} (nothing was written)") from e
    results = []
    with tqdm(total=sum(map(len, pcms)), unit="sample", unit_scale=True, desc="compress", disable=not progress) as bar:
        for batch in _batches([len(p) for p in pcms]):
            datas, _ = encode(model, [pcms[i] for i in batch], progress=bar.update)
            for i, data in zip(batch, datas):
                _write(pairs[i][1], data)
                flac8 = flac_bits(pcms[i]) // 8 + flac_tool_overhead_bytes(len(pcms[i]))
                results.append(FileResult(pairs[i][0], pairs[i][1], len(pcms[i]), len(data), flac8))
    return results


def decompress_paths(model: IntegerWaveNet, inputs, output, force: bool = False, progress: bool = True
                     ) -> list[FileResult]:
    """Decompress ``.wlc`` files and folders into 16 kHz mono 16-bit WAV files, in batches; every file is read and
    checked before any audio is written, and each output is written once its audio matched its checksum.

    Raises:
        CodecError: see :func:`pair_paths` and :func:`decode`; an output that exists (without ``force``).
    """
    import io

    import soundfile as sf
    from tqdm.auto import tqdm

    pairs = pair_paths(inputs, output, (".wlc",), ".wav")
    _check_targets(pairs, force)
    containers = [read_portable(s) for s, _ in pairs]
    results = []
    total = sum(c.frames for c in containers)
    with tqdm(total=total, unit="sample", unit_scale=True, desc="decompress", disable=not progress) as bar:
        for batch in _batches([c.frames for c in containers]):
            by_layout: dict[tuple[int, int], list[int]] = {}
            for i in batch:
                by_layout.setdefault((containers[i].block, containers[i].group), []).append(i)
            for members in by_layout.values():
                pcms = decode(model, [containers[i] for i in members], [str(pairs[i][0]) for i in members],
                              progress=bar.update)
                for i, pcm in zip(members, pcms):
                    buf = io.BytesIO()
                    sf.write(buf, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
                    _write(pairs[i][1], buf.getvalue())
                    results.append(FileResult(pairs[i][0], pairs[i][1], len(pcm), pairs[i][0].stat().st_size))
    return results


def summary_text(results: list[FileResult]) -> str:
    """One line over all files: samples, ``.wlc`` bytes and bits per sample, and ``flac -8``'s where measured."""
    n = sum(r.frames for r in results)
    wlc = sum(r.wlc_bytes for r in results)
    text = (f"{len(results)} file(s), {n:,} samples ({n / SAMPLE_RATE:,.1f} s): .wlc {wlc:,} bytes = "
            f"{8 * wlc / n:.3f} bits/sample")
    if all(r.flac8_bytes is not None for r in results):
        flac = sum(r.flac8_bytes for r in results)
        text += (f"; flac -8 would write {flac:,} bytes = {8 * flac / n:.3f} bits/sample "
                 f"({100 * (wlc / flac - 1):+.1f}%)")
    return text


__all__ = ["AUDIO_SUFFIXES", "BLOCK", "DEFAULT_MODEL", "FORMAT_VERSION", "GROUP", "FileResult",
           "PortableContainer", "compress_paths", "decode", "decompress_paths", "encode", "load_default_model",
           "pair_paths", "read_portable", "summary_text"]
