"""Batches of codes (mu-law by default, or another :mod:`wavelab.representations` representation) for training (random fixed-length segments) and evaluation (whole utterances bucketed by
length).

Training follows the benchmark (Havtorn et al., section 4): models see random segments of a fixed length L (16,000
samples for WaveNet), drawn afresh every step.  Evaluation scores whole utterances; to waste little compute on padding,
utterances of similar length share a batch.  Padding uses the code of silence (linear 0.0), and ``lengths`` says how
many samples of each row are real.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..audio import mu_law_encode
from ..representations import get_representation
from .utterance import Utterance


def silence_code(bits: int = 16, representation="mulaw") -> int:
    """The code of linear amplitude 0.0 (32768 for every 16-bit representation, 128 for 8-bit mu-law): the padding
    value.

    Raises:
        ValueError: unsupported ``bits`` or an unknown representation.
    """
    if isinstance(representation, str) and representation == "mulaw":
        return int(mu_law_encode(torch.zeros(1, dtype=torch.float64), bits)[0])
    return get_representation(representation, bits).silence_code


def _batch_seed(seed: int, rank: int, world_size: int, step: int) -> int:
    """A 63-bit seed mixed from (seed, rank, world_size, step) by numpy's SeedSequence (well spread, stable)."""
    state = np.random.SeedSequence([seed, rank, world_size, step]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def random_segments(utterances: Sequence[Utterance], segment_length: int, batch_size: int, bits: int = 16,
                    seed: int = 0, start_step: int = 0, rank: int = 0, world_size: int = 1,
                    weighting: str = "uniform", representation="mulaw") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless stream of batches of random segments, for training.

    Each row picks an utterance (``weighting="uniform"``: every utterance equally likely, as when one epoch visits each
    utterance once; ``"length"``: probability proportional to its length, so every sample of the corpus is equally
    likely to be covered) and a uniform random offset in ``[0, T - L]``.  An utterance shorter than L is taken whole
    and right-padded with :func:`silence_code`.  Batch number ``i`` (counting from 0) depends only on
    ``(seed, rank, world_size, i)`` through a ``torch.Generator``, so a run resumed with ``start_step=k`` continues
    exactly the stream of the original run, and each rank of a multi-GPU run gets its own stream.

    Args:
        utterances: the training utterances (audio is decoded on first use and cached in them); anything with
            ``num_samples`` and ``audio() -> int16 [T]`` works.
        segment_length: L, samples per row.
        batch_size: B, rows per batch.
        bits: mu-law bit depth (8 or 16).
        seed, rank, world_size: stream identity; ``0 <= rank < world_size``.
        start_step: index of the first batch yielded.
        weighting: ``"uniform"`` or ``"length"``.
        representation: ``"mulaw"`` (default), ``"linear"`` or ``"pcm16"`` (or a
            :class:`~wavelab.representations.Representation`): which codes the batches hold.  The random stream
            (utterances and offsets) does not depend on it.
    Yields:
        ``(codes, lengths)``: codes int64 ``[B, L]`` in ``[0, 2**bits - 1]``; lengths int64 ``[B]`` in ``[1, L]``.
    Raises:
        ValueError: empty ``utterances``, non-positive ``segment_length``/``batch_size``, negative ``seed`` or
            ``start_step``, ``rank`` outside ``[0, world_size)``, unknown ``weighting`` or representation.
    """
    if len(utterances) == 0:
        raise ValueError("random_segments needs at least one utterance, got an empty list")
    if segment_length < 1 or batch_size < 1:
        raise ValueError(f"segment_length and batch_size must be >= 1, got {segment_length} and {batch_size}")
    if seed < 0 or start_step < 0:
        raise ValueError(f"seed and start_step must be >= 0, got {seed} and {start_step}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if weighting not in ("uniform", "length"):
        raise ValueError(f"weighting must be 'uniform' or 'length', got {weighting!r}")
    rep = get_representation(representation, bits)  # validates bits and the representation
    return _random_segments(list(utterances), segment_length, batch_size, rep, seed, start_step, rank, world_size,
                            weighting)


def _random_segments(utts, L, B, rep, seed, step, rank, world_size, weighting):
    lengths = torch.tensor([u.num_samples for u in utts], dtype=torch.float64)
    pad = rep.silence_code
    while True:
        g = torch.Generator().manual_seed(_batch_seed(seed, rank, world_size, step))
        if weighting == "uniform":
            idx = torch.randint(len(utts), (B,), generator=g)
        else:
            idx = torch.multinomial(lengths, B, replacement=True, generator=g)
        u = torch.rand(B, generator=g, dtype=torch.float64)
        codes = torch.full((B, L), pad, dtype=torch.long)
        lens = torch.empty(B, dtype=torch.long)
        for b, i in enumerate(idx.tolist()):
            x = utts[i].audio()
            offset = int(u[b] * (max(len(x) - L, 0) + 1))
            seg = x[offset:offset + L]
            codes[b, : len(seg)] = rep.codes_from_pcm16(seg)
            lens[b] = len(seg)
        yield codes, lens
        step += 1


@dataclass
class Batch:
    """Whole utterances for evaluation.

    Attributes:
        codes: int64 ``[B, Tmax]`` codes (mu-law by default), right-padded with :func:`silence_code`.
        lengths: int64 ``[B]`` valid samples per row.
        ids: the utterance ids, row by row.
    """

    codes: torch.Tensor
    lengths: torch.Tensor
    ids: list[str]


def bucket_indices(utterances: Sequence[Utterance], max_frames: int = 320_000) -> list[list[int]]:
    """Group utterances of similar length: indices into ``utterances``, every index exactly once.

    Utterances are sorted by length (ties by id) and packed greedily, shortest first, while
    ``rows * longest <= max_frames`` (the padded size of the batch); an utterance longer than ``max_frames`` gets a
    batch of its own.  Uses the file headers only (no decoding).

    Raises:
        ValueError: ``max_frames < 1``.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    order = sorted(range(len(utterances)), key=lambda i: (utterances[i].num_samples, utterances[i].id))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        T = utterances[i].num_samples  # the longest so far, since sorted
        if current and (len(current) + 1) * T > max_frames:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def bucket_batches(utterances: Sequence[Utterance], max_frames: int = 320_000, bits: int = 16,
                   representation="mulaw") -> Iterator[Batch]:
    """Whole utterances in length buckets (see :func:`bucket_indices`), shortest first, for evaluation.

    Args:
        utterances: the utterances to score, each appearing in exactly one batch; anything with ``id``,
            ``num_samples`` and ``codes(bits, representation) -> int64 [T]`` works.
        max_frames: upper bound on ``B * Tmax`` of a batch (one longer utterance alone may exceed it).
        bits: mu-law bit depth (8 or 16).
        representation: ``"mulaw"`` (default), ``"linear"`` or ``"pcm16"``: which codes the batches hold.
    Yields:
        :class:`Batch` with codes int64 ``[B, Tmax]`` (padding only at positions ``>= lengths[b]``).
    Raises:
        ValueError: ``max_frames < 1``, unsupported ``bits`` or an unknown representation.
    """
    rep = get_representation(representation, bits)
    pad = rep.silence_code
    plan = bucket_indices(utterances, max_frames)
    return _bucket_batches(utterances, plan, bits, pad, rep)


def _bucket_batches(utterances, plan, bits, pad, rep):
    for rows in plan:
        utts = [utterances[i] for i in rows]
        lengths = torch.tensor([u.num_samples for u in utts], dtype=torch.long)
        codes = torch.full((len(utts), int(lengths.max())), pad, dtype=torch.long)
        for b, u in enumerate(utts):
            c = u.codes(bits) if rep.name == "mulaw" else u.codes(bits, rep)
            codes[b, : len(c)] = c
        yield Batch(codes=codes, lengths=lengths, ids=[u.id for u in utts])
