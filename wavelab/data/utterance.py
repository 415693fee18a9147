"""The records every reader returns: segments, speakers and utterances (audio read lazily, cached in memory); and
:class:`Recording`, audio already in memory that evaluation reads the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import audio_info, pcm16_to_codes, read_audio


@dataclass(frozen=True)
class Segment:
    """A labelled span of an utterance, in samples at 16 kHz: ``[start, end)`` (end exclusive), e.g. one phone."""

    start: int
    end: int
    label: str

    @property
    def length(self) -> int:
        """Number of samples, ``end - start``."""
        return self.end - self.start


@dataclass(frozen=True)
class Speaker:
    """A speaker and the metadata the corpora give.

    Attributes:
        id: ``dr<DR>-<sex><ID>`` lower-case for TIMIT (``dr1-fvmh0``), the reader id for LibriSpeech (``"1688"``).
        corpus: ``"timit"`` or ``"librispeech"``.
        sex: ``"F"`` or ``"M"``.
        height_cm: height in cm (TIMIT only, from feet and inches, 1 in = 2.54 cm), else None.
        dialect_region: TIMIT dialect region 1-8, else None.
    """

    id: str
    corpus: str
    sex: str
    height_cm: float | None = None
    dialect_region: int | None = None


@dataclass(eq=False)
class Utterance:
    """One recording with its annotations. Audio is read on first use and cached in this object (never on disk).

    Attributes:
        id: unique within the corpus: ``dr1-fvmh0/sa1`` (TIMIT), ``1688-142285-0000`` (LibriSpeech).
        corpus: ``"timit"`` or ``"librispeech"``.
        path: the audio file.
        speaker: :class:`Speaker`.
        phones: TIMIT phone segments (61-symbol set) in samples; empty for LibriSpeech.
        words: TIMIT word segments in samples; empty for LibriSpeech.
        text: the TIMIT prompt text, None for LibriSpeech (no transcripts in the sample).
        subset: the corpus's own part: ``"train"``/``"test"`` in a full LDC TIMIT tree, the LibriSpeech subset
            (``"train-clean-100"``, ``"test-other"``); None for the NLTK TIMIT sample.
    """

    id: str
    corpus: str
    path: Path
    speaker: Speaker
    phones: tuple[Segment, ...] = ()
    words: tuple[Segment, ...] = ()
    text: str | None = None
    subset: str | None = None
    _num_samples: int | None = field(default=None, init=False, repr=False)
    _audio: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def num_samples(self) -> int:
        """Length T in samples, from the file header (no decoding); cached."""
        if self._num_samples is None:
            self._num_samples = len(self._audio) if self._audio is not None else audio_info(self.path).frames
        return self._num_samples

    @property
    def duration(self) -> float:
        """Length in seconds at 16 kHz."""
        return self.num_samples / 16000.0

    def audio(self) -> np.ndarray:
        """The 16-bit PCM samples, int16 ``[T]`` (read-only; decoded once, then cached in memory).

        Raises:
            wavelab.audio.AudioError: the file is missing, corrupt, truncated, not mono 16 kHz 16-bit.
        """
        if self._audio is None:
            x = read_audio(self.path, expected_sample_rate=16000)
            x.flags.writeable = False
            self._audio = x
            self._num_samples = len(x)
        return self._audio

    def codes(self, bits: int = 16, representation="mulaw") -> torch.Tensor:
        """Codes of the whole utterance, int64 ``[T]``: see :func:`codes_of`.

        Raises:
            ValueError: unknown representation, or one without a ``bits``-bit form.
            wavelab.audio.AudioError: the audio file cannot be read.
        """
        return codes_of(self.audio(), bits, representation)

    def clear_cache(self) -> None:
        """Drop the cached audio (to free memory)."""
        self._audio = None


def codes_of(pcm: np.ndarray, bits: int = 16, representation="mulaw") -> torch.Tensor:
    """The codes a model of ``representation`` reads for int16 PCM ``[T]``: int64 ``[T]`` in ``[0, 2**bits - 1]``.

    ``"mulaw"`` (the default, Havtorn et al.'s input) gives mu-law codes (:func:`wavelab.audio.pcm16_to_codes`);
    ``"linear"`` and ``"pcm16"`` give ``int16 + 32768`` (a name or a :class:`wavelab.representations.Representation`).

    Raises:
        ValueError: unknown representation, or one without a ``bits``-bit form.
    """
    if isinstance(representation, str) and representation == "mulaw":
        return pcm16_to_codes(pcm, bits)
    from ..representations import get_representation

    return get_representation(representation, bits).codes_from_pcm16(pcm)


@dataclass(eq=False)
class Recording:
    """Audio held in memory, with what evaluation, batching and the baselines read of an :class:`Utterance`
    (``id``, ``num_samples``, ``audio()``, ``codes(bits, representation)``): a file scored by
    :mod:`wavelab.scoring`, or a synthetic signal.

    Attributes:
        id: a name for reports (a file's path, say).
        pcm: int16 ``[T]`` samples at 16 kHz.
    """

    id: str
    pcm: np.ndarray

    @property
    def num_samples(self) -> int:
        """Length T in samples."""
        return len(self.pcm)

    def audio(self) -> np.ndarray:
        """The int16 ``[T]`` samples."""
        return self.pcm

    def codes(self, bits: int = 16, representation="mulaw") -> torch.Tensor:
        """Codes of the recording, int64 ``[T]``: see :func:`codes_of`.

        Raises:
            ValueError: unknown representation, or one without a ``bits``-bit form.
        """
        return codes_of(self.pcm, bits, representation)
